/// Why an image or video file could not be read or written.
///
/// Every case names the file, so a bad file in a folder of thousands can be found from the message alone.
public enum MediaError: Error, CustomStringConvertible, Equatable {
    /// The file could not be opened, read or written.
    case io(file: String, reason: String)
    /// The bytes are not a valid file of the format (bad signature, checksum, truncated data, bad compressed stream…).
    case corrupt(file: String, reason: String)
    /// A valid file using a feature this reader does not implement, or a format that needs another component.
    case unsupported(file: String, reason: String)
    /// The tensor handed to a writer has the wrong shape or is otherwise unusable for the format.
    case invalidInput(file: String, reason: String)

    /// A one-line message naming the file.
    public var description: String {
        switch self {
        case .io(let file, let reason): return "\(file): \(reason)"
        case .corrupt(let file, let reason): return "\(file): corrupt or truncated file: \(reason)"
        case .unsupported(let file, let reason): return "\(file): unsupported: \(reason)"
        case .invalidInput(let file, let reason): return "\(file): cannot write: \(reason)"
        }
    }
}
