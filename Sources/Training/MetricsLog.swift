import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A JSON-lines metrics log: one object per record, `{"step": 12, "time": 3.21, "loss": 0.53, ...}`.
///
/// Each record is appended and flushed at once, so a killed run loses nothing it reported. When a run resumes from
/// step N, records after step N (written after the checkpoint it resumes from) are dropped first, so the log of a
/// resumed run reads like that of an uninterrupted one.
public final class MetricsLog {
    /// The file.
    public let url: URL
    private let handle: FileHandle

    /// Opens (creating if needed) the log at `url`. With `resumingAt`, drops records whose step is above it.
    /// - Throws: when the file cannot be created, read or written; a line that is not a JSON object is an error
    ///   naming the file and line.
    public init(url: URL, resumingAt step: Int? = nil) throws {
        self.url = url
        let fm = FileManager.default
        try fm.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        if let step, fm.fileExists(atPath: url.path) {
            let kept = try Self.records(in: url).filter { ($0["step"] as? NSNumber)?.intValue ?? 0 <= step }
            var text = ""
            for record in kept { text += try Self.encode(record) + "\n" }
            let temporary = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).tmp")
            try Data(text.utf8).write(to: temporary)
            guard rename(temporary.path, url.path) == 0 else {
                throw MetricsLogError(file: url.path, reason: "cannot replace the log: \(String(cString: strerror(errno)))")
            }
        }
        if !fm.fileExists(atPath: url.path) { _ = fm.createFile(atPath: url.path, contents: nil) }
        guard let handle = FileHandle(forWritingAtPath: url.path) else {
            throw MetricsLogError(file: url.path, reason: "cannot open for writing")
        }
        handle.seekToEndOfFile()
        self.handle = handle
    }

    deinit { try? handle.close() }

    /// Appends one record: `step`, the wall-clock `time` (seconds since 1970) and the metrics.
    public func append(step: Int, _ metrics: [String: Double]) {
        var record: [String: Any] = ["step": step, "time": Date().timeIntervalSince1970]
        for (key, value) in metrics { record[key] = value.isFinite ? value : String(describing: value) }
        guard let line = try? Self.encode(record) else { return }
        handle.write(Data((line + "\n").utf8))
    }

    /// Every record of a log file, in order.
    public static func records(in url: URL) throws -> [[String: Any]] {
        let text = try String(contentsOf: url, encoding: .utf8)
        var out: [[String: Any]] = []
        for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: true).enumerated() {
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
                throw MetricsLogError(file: url.path, reason: "line \(number + 1) is not a JSON object")
            }
            out.append(object)
        }
        return out
    }

    private static func encode(_ record: [String: Any]) throws -> String {
        let data = try JSONSerialization.data(withJSONObject: record, options: [.sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }
}

/// A metrics log that cannot be read or written.
public struct MetricsLogError: Error, CustomStringConvertible {
    /// The log file.
    public let file: String
    /// What went wrong.
    public let reason: String
    public var description: String { "\(file): \(reason)" }
}
