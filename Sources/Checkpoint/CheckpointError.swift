/// Why a checkpoint file, folder or config could not be read or written.
///
/// Every case names the file (its path as given) and, where one is involved, the tensor key or config field, so that
/// the message alone says what to fix: `model.safetensors: tensor 'blocks.0.attn.q_proj.weight' has shape [8, 8],
/// expected [16, 16]`.
public enum CheckpointError: Error, CustomStringConvertible, Equatable {
    /// The file could not be opened, read, written or renamed (`reason` is the system's message).
    case io(file: String, reason: String)
    /// The file ends before the 8-byte header length, the header, or the data region it announces.
    case truncated(file: String, reason: String)
    /// The announced header length exceeds the 100 MB limit of the safetensors format.
    case headerTooLarge(file: String, length: UInt64)
    /// The header is not valid UTF-8 JSON, or its top level is not the expected object.
    case invalidHeader(file: String, reason: String)
    /// A tensor entry of the header is malformed (not an object, missing field, bad shape, bad offsets, …).
    case invalidEntry(file: String, key: String, reason: String)
    /// A tensor entry names a dtype the safetensors format does not define.
    case unknownDType(file: String, key: String, dtype: String)
    /// The tensors' byte ranges do not tile the data region exactly (gaps, overlaps, or bytes left over).
    case dataNotCovered(file: String, reason: String)
    /// No tensor with this name.
    case missingTensor(file: String, key: String)
    /// The stored dtype cannot be converted to the requested one.
    case unsupportedDType(file: String, key: String, dtype: String, target: String)
    /// A tensor has a different shape than expected.
    case shapeMismatch(file: String, key: String, found: [Int], expected: [Int])
    /// A checkpoint does not match the expected set of keys and shapes (all problems listed at once).
    case stateDictMismatch(file: String, missing: [String], unexpected: [String], mismatched: [ShapeMismatch])
    /// A sharded checkpoint's index (`model.safetensors.index.json`) is malformed or disagrees with its shards.
    case invalidIndex(file: String, reason: String)
    /// A config file could not be decoded: `field` is the dotted path of the offending field ("" for the whole file).
    case invalidConfig(file: String, field: String, reason: String)
    /// A tensor cannot be written (`reason` says why).
    case invalidTensor(file: String, key: String, reason: String)

    /// One key whose shape differs between a checkpoint and its expected layout.
    public struct ShapeMismatch: Equatable, Sendable {
        /// The tensor key.
        public let key: String
        /// The shape stored in the checkpoint.
        public let found: [Int]
        /// The shape the model expects.
        public let expected: [Int]

        /// A mismatch record.
        public init(key: String, found: [Int], expected: [Int]) {
            self.key = key
            self.found = found
            self.expected = expected
        }
    }

    /// The file (or folder) the error is about.
    public var file: String {
        switch self {
        case .io(let file, _), .truncated(let file, _), .headerTooLarge(let file, _), .invalidHeader(let file, _),
            .invalidEntry(let file, _, _), .unknownDType(let file, _, _), .dataNotCovered(let file, _),
            .missingTensor(let file, _), .unsupportedDType(let file, _, _, _), .shapeMismatch(let file, _, _, _),
            .stateDictMismatch(let file, _, _, _), .invalidIndex(let file, _), .invalidConfig(let file, _, _),
            .invalidTensor(let file, _, _):
            return file
        }
    }

    /// The message: the file, then the key or field, then what is wrong.
    public var description: String {
        switch self {
        case .io(let file, let reason): return "\(file): \(reason)"
        case .truncated(let file, let reason): return "\(file): truncated: \(reason)"
        case .headerTooLarge(let file, let length):
            return "\(file): header length \(length) bytes exceeds the 100000000-byte limit (not a safetensors file?)"
        case .invalidHeader(let file, let reason): return "\(file): invalid header: \(reason)"
        case .invalidEntry(let file, let key, let reason): return "\(file): tensor '\(key)': \(reason)"
        case .unknownDType(let file, let key, let dtype): return "\(file): tensor '\(key)' has unknown dtype '\(dtype)'"
        case .dataNotCovered(let file, let reason): return "\(file): data region: \(reason)"
        case .missingTensor(let file, let key): return "\(file): no tensor named '\(key)'"
        case .unsupportedDType(let file, let key, let dtype, let target):
            return "\(file): tensor '\(key)' has dtype \(dtype), which cannot be converted to \(target)"
        case .shapeMismatch(let file, let key, let found, let expected):
            return "\(file): tensor '\(key)' has shape \(found), expected \(expected)"
        case .stateDictMismatch(let file, let missing, let unexpected, let mismatched):
            var lines = ["\(file): checkpoint does not match the model:"]
            if !missing.isEmpty {
                lines.append("  missing keys (\(missing.count)): " + missing.map { "'\($0)'" }.joined(separator: ", "))
            }
            if !unexpected.isEmpty {
                lines.append(
                    "  unexpected keys (\(unexpected.count)): " + unexpected.map { "'\($0)'" }.joined(separator: ", "))
            }
            for m in mismatched { lines.append("  tensor '\(m.key)' has shape \(m.found), expected \(m.expected)") }
            return lines.joined(separator: "\n")
        case .invalidIndex(let file, let reason): return "\(file): invalid index: \(reason)"
        case .invalidConfig(let file, let field, let reason):
            return field.isEmpty ? "\(file): \(reason)" : "\(file): field '\(field)': \(reason)"
        case .invalidTensor(let file, let key, let reason): return "\(file): tensor '\(key)': \(reason)"
        }
    }
}
