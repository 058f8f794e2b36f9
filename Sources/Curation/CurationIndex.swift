import Foundation
import GRDB
import VideoIO

/// The SQLite index of a curation run (through GRDB): one row per source video, one per clip, and one per clip and
/// stage holding that stage's status ("done", "skipped", "failed") and score, so filters can be re-applied with other
/// thresholds without recomputing anything. Every step's rows are written in one transaction, which is what makes a
/// killed run resumable: a step is either wholly in the index or redone.
public final class CurationIndex: @unchecked Sendable {
    /// The database (serialised; safe to share between worker threads).
    public let database: DatabaseQueue
    /// The file.
    public let url: URL

    /// Opens (creating if needed) the index at `url`.
    public init(url: URL) throws {
        self.url = url
        do {
            var configuration = Configuration()
            configuration.busyMode = .timeout(30)
            database = try DatabaseQueue(path: url.path, configuration: configuration)
            try migrator.migrate(database)
        } catch {
            throw CurationError.file(path: url.path, reason: "cannot open the index: \(error)")
        }
    }

    private var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(
                sql: """
                    CREATE TABLE source (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        path TEXT NOT NULL UNIQUE,
                        status TEXT NOT NULL DEFAULT 'pending',   -- pending, probed, clipped, done, failed, rejected
                        stage TEXT,                               -- the stage that failed or rejected it
                        reason TEXT,
                        duration REAL, fps REAL, width INTEGER, height INTEGER, bitrate INTEGER, codec TEXT
                    );
                    CREATE TABLE clip (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        sourceId INTEGER NOT NULL REFERENCES source(id),
                        number INTEGER NOT NULL,
                        start REAL NOT NULL,
                        end REAL NOT NULL,
                        similarity REAL NOT NULL,                 -- lowest adjacent 1-fps similarity inside the clip
                        status TEXT NOT NULL DEFAULT 'pending',   -- pending, accepted, rejected
                        stage TEXT,
                        reason TEXT,
                        category TEXT,
                        weight REAL,
                        UNIQUE(sourceId, number)
                    );
                    CREATE TABLE stage (
                        clipId INTEGER NOT NULL REFERENCES clip(id),
                        name TEXT NOT NULL,                       -- motion, ocr, aesthetic, phash, caption
                        status TEXT NOT NULL,                     -- done, skipped, failed
                        score REAL,
                        detail TEXT,
                        PRIMARY KEY (clipId, name)
                    );
                    """)
        }
        return migrator
    }

    /// Adds sources not yet in the index (by path); returns how many were new.
    @discardableResult
    public func addSources(_ paths: [String]) throws -> Int {
        try database.write { db in
            var added = 0
            for path in paths {
                try db.execute(sql: "INSERT OR IGNORE INTO source (path) VALUES (?)", arguments: [path])
                added += db.changesCount
            }
            return added
        }
    }

    /// A source row.
    public struct Source: Sendable {
        /// Row id.
        public var id: Int64
        /// File path.
        public var path: String
        /// pending, probed, clipped, done, failed, rejected.
        public var status: String
        /// Probe result, once probed.
        public var info: VideoInfo?
    }

    /// Sources whose processing is not finished (pending, probed or clipped).
    public func unfinishedSources() throws -> [Source] {
        try database.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM source WHERE status IN ('pending','probed','clipped') ORDER BY id")
                .map(Self.source)
        }
    }

    /// Every source.
    public func sources() throws -> [Source] {
        try database.read { db in try Row.fetchAll(db, sql: "SELECT * FROM source ORDER BY id").map(Self.source) }
    }

    private static func source(_ row: Row) -> Source {
        var info: VideoInfo? = nil
        if let duration: Double = row["duration"] {
            info = VideoInfo(
                duration: duration, framesPerSecond: row["fps"], width: row["width"], height: row["height"],
                bitRate: row["bitrate"], codec: row["codec"])
        }
        return Source(id: row["id"], path: row["path"], status: row["status"], info: info)
    }

    /// Records a probe result (status → probed).
    public func recordProbe(source: Int64, info: VideoInfo) throws {
        try database.write { db in
            try db.execute(
                sql:
                    "UPDATE source SET status='probed', duration=?, fps=?, width=?, height=?, bitrate=?, codec=? WHERE id=?",
                arguments: [
                    info.duration, info.framesPerSecond, info.width, info.height, info.bitRate, info.codec, source,
                ])
        }
    }

    /// Ends a source: status "done", "failed" (with the stage and reason) or "rejected".
    public func finishSource(_ source: Int64, status: String, stage: String? = nil, reason: String? = nil) throws {
        try database.write { db in
            try db.execute(
                sql: "UPDATE source SET status=?, stage=?, reason=? WHERE id=?",
                arguments: [status, stage, reason, source])
        }
    }

    /// Stores a source's clips and marks it clipped, in one transaction.
    public func recordClips(source: Int64, result: ShotDetector.Result) throws {
        try database.write { db in
            for (number, span) in result.clips.enumerated() {
                try db.execute(
                    sql: "INSERT INTO clip (sourceId, number, start, end, similarity) VALUES (?, ?, ?, ?, ?)",
                    arguments: [source, number, span.start, span.end, result.minimumSimilarity[number]])
            }
            try db.execute(sql: "UPDATE source SET status='clipped' WHERE id=?", arguments: [source])
        }
    }

    /// A clip row with its stage results.
    public struct Clip: Sendable {
        /// Row id.
        public var id: Int64
        /// Source row id.
        public var sourceId: Int64
        /// Position within the source.
        public var number: Int
        /// Span in the source, seconds.
        public var span: TimeSpan
        /// Lowest adjacent 1-fps similarity.
        public var similarity: Double
        /// pending, accepted, rejected.
        public var status: String
        /// Rejecting stage.
        public var stage: String?
        /// Rejection reason.
        public var reason: String?
        /// Balancing category.
        public var category: String?
        /// Sampling weight.
        public var weight: Double?
        /// Stage name → result.
        public var stages: [String: StageResult]
    }

    /// One stage's outcome for one clip.
    public struct StageResult: Sendable, Equatable {
        /// done, skipped or failed.
        public var status: String
        /// The score (nil when skipped or failed).
        public var score: Double?
        /// Extra text: hashes, a caption, an error.
        public var detail: String?

        /// A result.
        public init(status: String, score: Double? = nil, detail: String? = nil) {
            self.status = status
            self.score = score
            self.detail = detail
        }
    }

    /// Clips of one source (or of all sources when nil), in order, with their stage results.
    public func clips(source: Int64? = nil) throws -> [Clip] {
        try database.read { db in
            let rows: [Row]
            let stageRows: [Row]
            if let source {
                rows = try Row.fetchAll(
                    db, sql: "SELECT * FROM clip WHERE sourceId=? ORDER BY number", arguments: [source])
                stageRows = try Row.fetchAll(
                    db, sql: "SELECT stage.* FROM stage JOIN clip ON clip.id = stage.clipId WHERE clip.sourceId=?",
                    arguments: [source])
            } else {
                rows = try Row.fetchAll(db, sql: "SELECT * FROM clip ORDER BY sourceId, number")
                stageRows = try Row.fetchAll(db, sql: "SELECT * FROM stage")
            }
            var stages: [Int64: [String: StageResult]] = [:]
            for row in stageRows {
                stages[row["clipId"], default: [:]][row["name"]] = StageResult(
                    status: row["status"], score: row["score"], detail: row["detail"])
            }
            return rows.map { row in
                Clip(
                    id: row["id"], sourceId: row["sourceId"], number: row["number"],
                    span: TimeSpan(start: row["start"], end: row["end"]), similarity: row["similarity"],
                    status: row["status"], stage: row["stage"], reason: row["reason"], category: row["category"],
                    weight: row["weight"], stages: stages[row["id"]] ?? [:])
            }
        }
    }

    /// Stores several stage results of one clip in one transaction. A result already stored is an error: no clip is
    /// processed twice.
    public func recordStages(clip: Int64, _ results: [String: StageResult]) throws {
        try database.write { db in
            for (name, result) in results.sorted(by: { $0.key < $1.key }) {
                try db.execute(
                    sql: "INSERT INTO stage (clipId, name, status, score, detail) VALUES (?, ?, ?, ?, ?)",
                    arguments: [clip, name, result.status, result.score, result.detail])
            }
        }
    }

    /// Sets clips' decisions: id → (status, stage, reason).
    public func recordDecisions(_ decisions: [Int64: ClipDecision]) throws {
        try database.write { db in
            for (id, decision) in decisions {
                try db.execute(
                    sql: "UPDATE clip SET status=?, stage=?, reason=? WHERE id=?",
                    arguments: [decision.accepted ? "accepted" : "rejected", decision.stage, decision.reason, id])
            }
        }
    }

    /// Sets balancing categories and weights: id → (category, weight).
    public func recordBalance(_ values: [Int64: (String, Double)]) throws {
        try database.write { db in
            try db.execute(sql: "UPDATE clip SET category=NULL, weight=NULL")
            for (id, (category, weight)) in values {
                try db.execute(
                    sql: "UPDATE clip SET category=?, weight=? WHERE id=?", arguments: [category, weight, id])
            }
        }
    }
}
