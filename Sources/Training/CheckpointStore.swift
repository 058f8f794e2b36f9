import Checkpoint
import Distributed
import Foundation
import TensorCore

/// One saved training checkpoint: groups of named tensors (`model`, `ema`, `optimizer`, …), the run state, and an
/// optional config.
public struct TrainingSnapshot {
    /// Tensor groups by name. A tensor is either whole (held the same on every rank, or in one process) or, when its
    /// `group/key` is in `shardShapes`, this rank's rows of it (`RowSharding`).
    public var groups: [String: [String: Tensor]]
    /// Full shapes of the tensors given as this rank's row shards, by `group/key`.
    public var shardShapes: [String: [Int]]
    /// Step, random state and data position.
    public var state: TrainingState
    /// The model or run config, written as `config.json` when present (raw JSON bytes).
    public var configJSON: Data?

    /// A snapshot of `groups` and `state`.
    public init(groups: [String: [String: Tensor]], state: TrainingState, configJSON: Data? = nil, shardShapes: [String: [Int]] = [:]) {
        self.groups = groups
        self.state = state
        self.configJSON = configJSON
        self.shardShapes = shardShapes
    }
}

/// The checkpoints of a training run, under `<run>/checkpoints/step-00000100/`, in the sharded format
/// (`ShardedCheckpointFormat`: one data file per rank and a global `metadata.json`), written by every rank of the
/// run's process group (one process is a group of one).
///
/// Saving is asynchronous: `save` copies this rank's rows of every tensor (cheap next to a training step) and writes
/// its data file on a background thread while training goes on. The files go to a hidden folder
/// `.step-00000100.partial`; once every rank's file is complete, rank 0 writes `state.json`, `config.json` and, last,
/// `metadata.json`, then renames the folder into place. A run killed at any moment, on any rank, therefore leaves
/// either a whole checkpoint or none, and leftovers are removed when the store opens. With several ranks, when all
/// files are done is decided by the training loop, which sums `localWritePending` over the ranks with each step's
/// metrics and calls `commitIfReady`; in one process the background thread commits by itself. Only the newest
/// `keepLast` are kept.
public final class CheckpointStore: @unchecked Sendable {
    /// The folder holding the `step-*` checkpoints.
    public let directory: URL
    /// How many checkpoints to keep (older ones are deleted after a successful save).
    public let keepLast: Int
    /// The ranks writing together.
    public let group: ProcessGroup

    private let queue = DispatchQueue(label: "goku.checkpoint-writer")
    private let dispatchGroup = DispatchGroup()
    private let lock = NSLock()
    private var pendingError: Error?
    private var writing = false
    /// The save whose data files are written but not yet committed (several ranks).
    private var uncommitted: (snapshot: TrainingSnapshot, entries: [ShardedCheckpointFormat.TensorEntry])?

    /// Opens (creating) `runDirectory/checkpoints`; rank 0 removes unfinished writes unless `removesUnfinished` is
    /// false (a store opened only to read, which must not touch a save that a running job has under way).
    public init(runDirectory: URL, keepLast: Int = 3, group: ProcessGroup = .single(), removesUnfinished: Bool = true) throws {
        precondition(keepLast >= 1, "CheckpointStore: keepLast must be at least 1")
        directory = runDirectory.appendingPathComponent("checkpoints")
        self.keepLast = keepLast
        self.group = group
        let fm = FileManager.default
        try fm.createDirectory(at: directory, withIntermediateDirectories: true)
        if group.rank == 0 && removesUnfinished {
            for name in try fm.contentsOfDirectory(atPath: directory.path) where name.hasPrefix(".step-") {
                try? fm.removeItem(at: directory.appendingPathComponent(name))
            }
        }
    }

    /// The folder name of the checkpoint at `step`.
    public static func folderName(step: Int) -> String { "step-" + String(format: "%08d", step) }

    /// Milliseconds each data file write is held back (`GOKU_CHECKPOINT_WRITE_DELAY_MS`; 0 by default): widens the
    /// window in which a failure hits a write in progress, for the recovery tests.
    static let writeDelay: Double = ProcessInfo.processInfo.environment["GOKU_CHECKPOINT_WRITE_DELAY_MS"].flatMap(Double.init) ?? 0

    /// Saves `snapshot` in the background; waits for the previous save first (with several ranks, for every rank's
    /// files and its commit: all ranks call `save` at the same step) and rethrows its error.
    /// The tensors are copied before returning, so training may update them at once.
    public func save(_ snapshot: TrainingSnapshot) throws {
        try waitForPendingWrite()
        if uncommitted != nil {
            // The previous save's files are still being written somewhere: every rank is here at the same step, so
            // wait for all of them and commit it first.
            try group.barrier()
            try commitIfReady(pendingOverRanks: 0)
        }
        let ranks = group.size, rank = group.rank
        var entries: [ShardedCheckpointFormat.TensorEntry] = [], tensors: [Tensor] = []
        for (groupName, members) in snapshot.groups {
            for (key, t) in members {
                let name = groupName + "/" + key
                let shape = snapshot.shardShapes[name] ?? t.shape
                entries.append(.init(name: name, shape: shape, dtype: t.dtype))
                tensors.append(t)
            }
        }
        let order = entries.indices.sorted { entries[$0].name < entries[$1].name }
        entries = order.map { entries[$0] }
        // Copy only this rank's rows.
        let copies: [Tensor] = Autograd.inference {
            order.enumerated().map { position, i in
                let t = tensors[i], e = entries[position]
                guard t.shape == e.shape && ranks > 1 else { return t.detached().copy() }
                let rows = RowSharding.rows(RowSharding.rowCount(e.shape), rank: rank, of: ranks)
                let rowBytes = RowSharding.rowSize(e.shape) * e.dtype.byteCount
                let out = Tensor(uninitializedShape: RowSharding.shardShape(e.shape, rank: rank, of: ranks), dtype: e.dtype)
                out.storage.rawPointer.copyMemory(from: t.storage.rawPointer + rows.lowerBound * rowBytes, byteCount: rows.count * rowBytes)
                return out
            }
        }
        var stripped = snapshot
        stripped.groups = [:]
        let frozen = stripped, fileEntries = entries
        lock.lock()
        writing = true
        lock.unlock()
        dispatchGroup.enter()
        queue.async { [self] in
            defer { dispatchGroup.leave() }
            do {
                if Self.writeDelay > 0 { Thread.sleep(forTimeInterval: Self.writeDelay / 1000) }
                let partial = partialFolder(step: frozen.state.step)
                try FileManager.default.createDirectory(at: partial, withIntermediateDirectories: true)
                try ShardedCheckpointFormat.writeDataFile(
                    fileEntries, tensors: copies, rank: rank, of: ranks,
                    to: partial.appendingPathComponent(ShardedCheckpointFormat.dataFileName(rank: rank)))
                if ranks == 1 { try commit(frozen, entries: fileEntries) }
            } catch {
                lock.lock()
                pendingError = error
                lock.unlock()
            }
            lock.lock()
            writing = false
            lock.unlock()
        }
        if ranks > 1 { uncommitted = (frozen, fileEntries) }
    }

    /// 1 while this rank's data file of the last save is still being written, else 0 (summed over the ranks by the
    /// training loop).
    public var localWritePending: Int {
        lock.lock()
        defer { lock.unlock() }
        return writing ? 1 : 0
    }

    /// Commits the pending save once no rank is still writing (`pendingOverRanks` == 0, the sum of
    /// `localWritePending`): rank 0 writes the metadata and moves the folder into place. Rethrows this rank's write
    /// error.
    public func commitIfReady(pendingOverRanks: Int) throws {
        guard let pending = uncommitted, pendingOverRanks == 0 else { return }
        try waitForPendingWrite()
        uncommitted = nil
        if group.rank == 0 { try commit(pending.snapshot, entries: pending.entries) }
    }

    /// Saves `snapshot` and returns once it is committed (every rank must call it).
    public func saveNow(_ snapshot: TrainingSnapshot) throws {
        try save(snapshot)
        try waitForPendingWrite()
        if group.size > 1 {
            try group.barrier()
            try commitIfReady(pendingOverRanks: 0)
            try group.barrier()
        }
    }

    /// Waits for this rank's background write and rethrows its error, if any.
    public func waitForPendingWrite() throws {
        dispatchGroup.wait()
        lock.lock()
        defer { lock.unlock() }
        if let error = pendingError {
            pendingError = nil
            throw error
        }
    }

    /// The complete checkpoints, oldest first, as (step, folder).
    public func checkpoints() throws -> [(step: Int, url: URL)] { try Self.checkpoints(inFolder: directory) }

    /// The complete checkpoints of the run folder `runDirectory`, oldest first, read without changing anything.
    public static func checkpoints(inRun runDirectory: URL) throws -> [(step: Int, url: URL)] {
        let folder = runDirectory.appendingPathComponent("checkpoints")
        guard FileManager.default.fileExists(atPath: folder.path) else { return [] }
        return try checkpoints(inFolder: folder)
    }

    private static func checkpoints(inFolder directory: URL) throws -> [(step: Int, url: URL)] {
        let fm = FileManager.default
        return try fm.contentsOfDirectory(atPath: directory.path).compactMap { name -> (Int, URL)? in
            guard name.hasPrefix("step-"), let step = Int(name.dropFirst(5)) else { return nil }
            let url = directory.appendingPathComponent(name)
            guard fm.fileExists(atPath: url.appendingPathComponent(ShardedCheckpointFormat.metadataName).path) else { return nil }
            return (step, url)
        }.sorted { $0.0 < $1.0 }
    }

    /// The newest complete checkpoint, or nil when there is none.
    public func latest() throws -> URL? { try checkpoints().last?.url }

    /// Reads a checkpoint folder whole: every group's full tensors (whatever rank count wrote it), `state.json` and
    /// `config.json`.
    /// - Throws: `CheckpointError` naming the file when something is missing or malformed.
    public static func load(from folder: URL) throws -> TrainingSnapshot {
        let reader = try ShardedCheckpointReader(folder: folder)
        var groups: [String: [String: Tensor]] = [:]
        for name in reader.names {
            guard let slash = name.firstIndex(of: "/") else { continue }
            groups[String(name[..<slash]), default: [:]][String(name[name.index(after: slash)...])] = try reader.read(name)
        }
        return TrainingSnapshot(groups: groups, state: try readState(folder), configJSON: try readConfig(folder))
    }

    /// The run state of a checkpoint folder.
    public static func readState(_ folder: URL) throws -> TrainingState {
        let stateURL = folder.appendingPathComponent("state.json")
        do {
            return try JSONDecoder().decode(TrainingState.self, from: Data(contentsOf: stateURL))
        } catch {
            throw CheckpointError.io(file: stateURL.path, reason: "missing or malformed training state: \(error)")
        }
    }

    /// The config saved in a checkpoint folder, if any.
    public static func readConfig(_ folder: URL) throws -> Data? {
        let configURL = folder.appendingPathComponent(ConfigFile.defaultFileName)
        return FileManager.default.fileExists(atPath: configURL.path) ? try Data(contentsOf: configURL) : nil
    }

    private func partialFolder(step: Int) -> URL {
        directory.appendingPathComponent(".\(Self.folderName(step: step)).partial")
    }

    /// Rank 0's part: the state, config and metadata (last), then the folder moved into place and old ones pruned.
    private func commit(_ snapshot: TrainingSnapshot, entries: [ShardedCheckpointFormat.TensorEntry]) throws {
        let partial = partialFolder(step: snapshot.state.step)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try AtomicFile.write(try encoder.encode(snapshot.state), to: partial.appendingPathComponent("state.json"))
        if let config = snapshot.configJSON {
            try AtomicFile.write(config, to: partial.appendingPathComponent(ConfigFile.defaultFileName))
        }
        try AtomicFile.write(
            ShardedCheckpointFormat.metadata(step: snapshot.state.step, ranks: group.size, entries: entries),
            to: partial.appendingPathComponent(ShardedCheckpointFormat.metadataName))
        try AtomicFile.replaceFolder(directory.appendingPathComponent(Self.folderName(step: snapshot.state.step)), with: partial)
        for old in try checkpoints().dropLast(keepLast) { try? FileManager.default.removeItem(at: old.url) }
    }
}
