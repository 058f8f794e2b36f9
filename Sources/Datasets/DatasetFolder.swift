import Foundation
import VideoIO

/// A dataset folder: `manifest.jsonl` (one `ManifestEntry` a line) and the media files it names.
///
/// Opening reads every line and checks every row before any work starts: the JSON, the fields, that the file exists
/// inside the folder, that FFmpeg can open it and decode its first frame (its probe is kept for planning), and, with a
/// framing policy, that it is large enough to frame. Bad rows are reported with the manifest line and the file; by
/// default any bad row stops with `DatasetError.badRows` listing them, with `skipBad` they are skipped and counted
/// (`skipped`).
public struct DatasetFolder: Sendable {
    /// The manifest's file name inside the folder.
    public static let manifestName = "manifest.jsonl"

    /// A usable row.
    public struct Row: Sendable {
        /// 1-based manifest line.
        public var line: Int
        /// The entry.
        public var entry: ManifestEntry
        /// What FFmpeg found in the file (size, rate, duration).
        public var info: VideoInfo
    }

    /// How a folder is opened.
    public struct Options: Sendable {
        /// Rows with an empty caption are bad (true for text-to-video training).
        public var requireCaptions = true
        /// Skip and count bad rows instead of stopping.
        public var skipBad = false
        /// When set, rows too small to frame under this policy are bad.
        public var framing: MediaFraming?

        /// Defaults: captions required, bad rows stop, no framing check.
        public init(requireCaptions: Bool = true, skipBad: Bool = false, framing: MediaFraming? = nil) {
            self.requireCaptions = requireCaptions
            self.skipBad = skipBad
            self.framing = framing
        }
    }

    /// The folder.
    public let directory: URL
    /// The usable rows, in manifest order.
    public let rows: [Row]
    /// The rows skipped (`Options.skipBad`).
    public let skipped: [DatasetRowProblem]
    /// The manifest's bytes, part of a prepared copy's identity.
    public let manifestBytes: Data

    /// The manifest file.
    public var manifestURL: URL { directory.appendingPathComponent(Self.manifestName) }

    /// Opens and checks `directory`.
    /// - Throws: `DatasetError.io` when the manifest cannot be read; `DatasetError.badRows` for bad rows unless
    ///   `options.skipBad`.
    public init(directory: URL, options: Options = Options()) throws {
        self.directory = directory
        let manifest = directory.appendingPathComponent(Self.manifestName)
        let bytes: Data
        do { bytes = try Data(contentsOf: manifest) } catch {
            throw DatasetError.io(path: manifest.path, reason: "cannot read the manifest: \(error.localizedDescription)")
        }
        manifestBytes = bytes
        var rows: [Row] = [], problems: [DatasetRowProblem] = []
        let decoder = JSONDecoder()
        let lines = String(decoding: bytes, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
        for (index, raw) in lines.enumerated() {
            let text = raw.trimmingCharacters(in: .whitespacesAndNewlines)
            if text.isEmpty { continue }
            func bad(_ file: String, _ reason: String) {
                problems.append(DatasetRowProblem(manifest: manifest.path, line: index + 1, file: file, reason: reason))
            }
            let entry: ManifestEntry
            do { entry = try decoder.decode(ManifestEntry.self, from: Data(text.utf8)) } catch {
                bad("", "not a manifest entry (needs at least \"file\" and \"caption\"): \(Self.describe(error))")
                continue
            }
            if let reason = entry.problem(requireCaption: options.requireCaptions) {
                bad(entry.file, reason)
                continue
            }
            let url = directory.appendingPathComponent(entry.file)
            guard FileManager.default.fileExists(atPath: url.path) else {
                bad(entry.file, "missing file")
                continue
            }
            let info: VideoInfo
            do {
                info = try VideoIO.probe(url)
                // A container can probe well and still hold no decodable picture: decode the first frame, small.
                var frames = 0
                try VideoIO.decode(url, options: DecodeOptions(width: 16, height: 16, maxFrames: 1)) { _ in
                    frames += 1
                    return false
                }
                guard frames == 1 else { throw DatasetError.io(path: url.path, reason: "no decodable frame") }
            } catch {
                bad(entry.file, "undecodable media: \(error)")
                continue
            }
            if let framing = options.framing, framing.geometry(width: info.width, height: info.height) == nil {
                bad(entry.file, "\(info.width)×\(info.height) is too small to frame (sides ≥ \(framing.multiple) pixels)")
                continue
            }
            rows.append(Row(line: index + 1, entry: entry, info: info))
        }
        if !problems.isEmpty && !options.skipBad {
            throw DatasetError.badRows(problems, total: rows.count + problems.count)
        }
        self.rows = rows
        skipped = problems
    }

    /// The media file of a row.
    public func url(of row: Row) -> URL { directory.appendingPathComponent(row.entry.file) }

    /// Writes a manifest atomically (temporary file, then rename); `extra` adds a recipe's own keys per line.
    public static func writeManifest(
        _ entries: [ManifestEntry], extra: [[String: any Encodable]]? = nil, to directory: URL
    ) throws {
        precondition(extra == nil || extra!.count == entries.count, "writeManifest: one extra per entry")
        var text = ""
        for (i, entry) in entries.enumerated() { text += try entry.jsonLine(extra: extra?[i] ?? [:]) + "\n" }
        let url = directory.appendingPathComponent(manifestName)
        do { try Data(text.utf8).write(to: url, options: .atomic) } catch {
            throw DatasetError.io(path: url.path, reason: "cannot write: \(error.localizedDescription)")
        }
    }

    /// A decoding error in one line: the missing key or the mistyped field.
    static func describe(_ error: Error) -> String {
        switch error {
        case let DecodingError.keyNotFound(key, _): return "missing \"\(key.stringValue)\""
        case let DecodingError.typeMismatch(_, context), let DecodingError.valueNotFound(_, context):
            return "\"\(context.codingPath.map(\.stringValue).joined(separator: "."))\" has the wrong type"
        case DecodingError.dataCorrupted: return "not valid JSON"
        default: return "\(error)"
        }
    }
}
