import Foundation

/// A problem with one manifest row: the manifest file, the 1-based line, the media file and why.
public struct DatasetRowProblem: Error, CustomStringConvertible, Sendable, Equatable {
    /// The manifest's path.
    public var manifest: String
    /// 1-based line number in the manifest.
    public var line: Int
    /// The row's media file as written in the manifest ("" when the line could not be read).
    public var file: String
    /// Why the row cannot be used.
    public var reason: String

    public var description: String {
        "\(manifest):\(line)" + (file.isEmpty ? "" : " (\(file))") + ": \(reason)"
    }
}

/// Errors of dataset folders and prepared datasets; each names the file and what is wrong.
public enum DatasetError: Error, CustomStringConvertible, Sendable {
    /// Rows that cannot be used, found before any work started (`--skip-bad` skips them instead).
    case badRows([DatasetRowProblem], total: Int)
    /// A file or folder that cannot be read or written, or is not what it should be.
    case io(path: String, reason: String)
    /// A prepared folder that is damaged or was made for other models or settings.
    case prepared(path: String, reason: String)
    /// An option out of range (names the option).
    case invalidOption(option: String, reason: String)

    public var description: String {
        switch self {
        case let .badRows(problems, total):
            let shown = problems.prefix(20).map { "  " + $0.description }.joined(separator: "\n")
            let more = problems.count > 20 ? "\n  … and \(problems.count - 20) more" : ""
            return "\(problems.count) of \(total) manifest rows cannot be used (pass --skip-bad to skip and count them):\n"
                + shown + more
        case let .io(path, reason): return "\(path): \(reason)"
        case let .prepared(path, reason): return "prepared dataset \(path): \(reason)"
        case let .invalidOption(option, reason): return "\(option): \(reason)"
        }
    }
}
