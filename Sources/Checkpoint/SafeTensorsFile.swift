import Foundation
import TensorCore

/// A safetensors file opened for reading: memory-mapped, header parsed and fully validated.
///
/// Layout: 8 bytes little-endian header length `n`, then `n` bytes of UTF-8 JSON
/// (`{"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, "__metadata__": {string: string}}`), then
/// the data region. Opening checks everything the reference (Rust) implementation checks, before any tensor data is
/// touched: the header length (≤ 100 MB and inside the file), UTF-8, JSON syntax (strict: duplicate keys are an error),
/// every entry's fields, dtype, shape (non-negative, no overflow) and byte size, and that the tensors' byte ranges tile
/// the data region exactly, without gaps or overlaps, up to its last byte. A file that opens can therefore be read
/// without further bounds checks. Tensor bytes are only read (and converted) by `tensor(_:as:)`.
public final class SafeTensorsFile: TensorSource, @unchecked Sendable {
    /// The largest header accepted (the reference implementation's limit).
    public static let maxHeaderLength = 100_000_000

    /// The file's path, as given (used in error messages).
    public let path: String
    /// The `__metadata__` entries, or nil when the file has none.
    public let metadata: [String: String]?
    /// The tensor names, sorted.
    public let names: [String]
    /// Length in bytes of the JSON header (padding included).
    public let headerLength: Int

    private let entries: [String: SafeTensorsInfo]
    private let file: FileBytes
    private var dataStart: Int { 8 + headerLength }

    /// Opens and validates the file at `url` (memory-mapped).
    /// - Throws: `CheckpointError` naming the file (and the tensor key, for a bad entry).
    public convenience init(url: URL) throws {
        try self.init(file: FileBytes(mapping: url.path))
    }

    /// Validates an in-memory safetensors image; `name` stands for the file name in error messages.
    public convenience init(bytes: [UInt8], name: String) throws {
        try self.init(file: FileBytes(copying: bytes, path: name))
    }

    private init(file: FileBytes) throws {
        self.file = file
        path = file.path
        let header = try SafeTensorsHeader.parse(file.bytes, file: file.path)
        headerLength = header.length
        metadata = header.metadata
        entries = header.entries
        names = header.entries.keys.sorted()
    }

    /// Whether the file holds a tensor called `name`.
    public func contains(_ name: String) -> Bool { entries[name] != nil }

    /// The dtype, shape and byte range of tensor `name`.
    /// - Throws: `CheckpointError.missingTensor` when there is none.
    public func info(_ name: String) throws -> SafeTensorsInfo {
        guard let info = entries[name] else { throw CheckpointError.missingTensor(file: path, key: name) }
        return info
    }

    /// Float32 tensor `name` read with positional reads (`pread`) instead of through the map, for readers that
    /// stream through files much larger than memory: neither its pages nor the neighbours the kernel maps around a
    /// page fault enter the resident set. A tensor stored in another dtype is converted through `tensor(_:as:)`.
    /// - Throws: `CheckpointError` naming the file and key when it is missing or the read fails.
    public func readTensor(_ name: String) throws -> Tensor {
        guard let info = entries[name] else { throw CheckpointError.missingTensor(file: path, key: name) }
        guard info.dtype == .f32 else { return try tensor(name, as: .float32) }
        let tensor = Tensor.zeros(info.shape)
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw CheckpointError.io(file: path, reason: "cannot open: \(systemError())") }
        defer { close(fd) }
        let target = UnsafeMutableRawPointer(tensor.storage.pointer(as: Float.self))
        var done = 0
        while done < info.byteCount {
            let n = pread(fd, target + done, info.byteCount - done, off_t(dataStart + info.dataOffsets.lowerBound + done))
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                throw CheckpointError.io(file: path, reason: "cannot read tensor '\(name)': \(n < 0 ? systemError() : "end of file")")
            }
            done += n
        }
        return tensor
    }

    /// The stored bytes of tensor `name` (valid while this object lives; little-endian, possibly unaligned).
    public func withRawBytes<R>(_ name: String, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        guard let info = entries[name] else { throw CheckpointError.missingTensor(file: path, key: name) }
        let start = dataStart + info.dataOffsets.lowerBound
        return try body(UnsafeRawBufferPointer(rebasing: file.bytes[start..<start + info.byteCount]))
    }

    /// Tensor `name` as a new tensor of `dtype`, converted from the stored type.
    ///
    /// F32, F64, BF16 and F16 convert to any tensor dtype (a matching type is copied bit for bit; narrowing rounds
    /// to nearest even, and F64 → bf16/f16 goes through float32). Integers and BOOL convert by value (exact up to
    /// 2^24 in float32). The F8/F6/F4 formats and C64 throw `unsupportedDType`.
    /// - Parameters:
    ///   - name: the tensor key.
    ///   - dtype: the dtype of the returned tensor (default float32).
    /// - Returns: a tensor of the stored shape, not requiring gradients.
    public func tensor(_ name: String, as dtype: DType) throws -> Tensor {
        guard let info = entries[name] else { throw CheckpointError.missingTensor(file: path, key: name) }
        let start = dataStart + info.dataOffsets.lowerBound
        let raw = UnsafeRawBufferPointer(rebasing: file.bytes[start..<start + info.byteCount])
        guard let tensor = SafeTensorsConversion.makeTensor(raw, stored: info.dtype, shape: info.shape, target: dtype)
        else {
            throw CheckpointError.unsupportedDType(
                file: path, key: name, dtype: info.dtype.rawValue, target: dtype.rawValue)
        }
        return tensor
    }
}

/// The parsed and validated header of a safetensors image.
struct SafeTensorsHeader {
    let length: Int
    let metadata: [String: String]?
    let entries: [String: SafeTensorsInfo]

    /// Parses and validates the header of `bytes` (a whole file), checking the data region's coverage too.
    static func parse(_ bytes: UnsafeRawBufferPointer, file: String) throws -> SafeTensorsHeader {
        guard bytes.count >= 8 else {
            throw CheckpointError.truncated(
                file: file, reason: "file has \(bytes.count) bytes, fewer than the 8-byte header length")
        }
        let announced = UInt64(littleEndian: bytes.loadUnaligned(as: UInt64.self))
        guard announced <= UInt64(SafeTensorsFile.maxHeaderLength) else {
            throw CheckpointError.headerTooLarge(file: file, length: announced)
        }
        let length = Int(announced)
        guard 8 + length <= bytes.count else {
            throw CheckpointError.truncated(
                file: file,
                reason: "header says \(length) bytes but file has \(bytes.count) (needs at least \(8 + length))")
        }
        let headerBytes = UnsafeRawBufferPointer(rebasing: bytes[8..<8 + length]).assumingMemoryBound(to: UInt8.self)
        if let bad = JSONParser.firstInvalidUTF8Offset(headerBytes) {
            throw CheckpointError.invalidHeader(file: file, reason: "not valid UTF-8 (byte \(bad) of the header)")
        }
        // Like the reference implementation: the header must start with '{' (no leading padding).
        guard length > 0, headerBytes[0] == UInt8(ascii: "{") else {
            throw CheckpointError.invalidHeader(file: file, reason: "does not start with '{'")
        }
        let json: JSONValue
        do {
            json = try JSONParser.parse(headerBytes)
        } catch let error as JSONSyntaxError {
            throw CheckpointError.invalidHeader(
                file: file, reason: "JSON error at byte \(error.offset): \(error.message)")
        }
        guard case .object(let members) = json else {
            throw CheckpointError.invalidHeader(file: file, reason: "top level is not a JSON object")
        }
        var metadata: [String: String]?
        var entries: [String: SafeTensorsInfo] = [:]
        for (key, value) in members {
            if key == "__metadata__" {
                metadata = try parseMetadata(value, file: file)
            } else {
                entries[key] = try parseEntry(key, value, file: file)
            }
        }
        try checkCoverage(entries, dataLength: bytes.count - 8 - length, file: file)
        return SafeTensorsHeader(length: length, metadata: metadata, entries: entries)
    }

    private static func parseMetadata(_ value: JSONValue, file: String) throws -> [String: String] {
        guard case .object(let members) = value else {
            throw CheckpointError.invalidHeader(
                file: file, reason: "__metadata__ is \(value.typeName), expected an object")
        }
        var result: [String: String] = [:]
        for (key, item) in members {
            guard case .string(let text) = item else {
                throw CheckpointError.invalidHeader(
                    file: file, reason: "__metadata__ entry '\(key)' is \(item.typeName), expected String")
            }
            result[key] = text
        }
        return result
    }

    /// Validates one tensor entry on its own: fields, dtype, shape, and that its byte range matches its size.
    private static func parseEntry(_ key: String, _ value: JSONValue, file: String) throws -> SafeTensorsInfo {
        func fail(_ reason: String) -> CheckpointError { .invalidEntry(file: file, key: key, reason: reason) }
        guard case .object = value else {
            throw fail("expected an object with dtype, shape and data_offsets, found \(value.typeName)")
        }
        guard case .string(let dtypeName)? = value["dtype"] else {
            throw fail("'dtype' is \(value["dtype"]?.typeName ?? "missing"), expected String")
        }
        guard let dtype = SafeTensorsDType(rawValue: dtypeName) else {
            throw CheckpointError.unknownDType(file: file, key: key, dtype: dtypeName)
        }
        guard let shape = nonNegativeIntegers(value["shape"]) else {
            throw fail("'shape' must be an array of non-negative integers, found \(describe(value["shape"]))")
        }
        guard let offsets = nonNegativeIntegers(value["data_offsets"]), offsets.count == 2 else {
            throw fail(
                "'data_offsets' must be [begin, end] with non-negative integers, found \(describe(value["data_offsets"]))"
            )
        }
        guard offsets[0] <= offsets[1] else {
            throw fail("data_offsets [\(offsets[0]), \(offsets[1])] end before they begin")
        }
        var elements = 1
        for extent in shape {
            let (product, overflow) = elements.multipliedReportingOverflow(by: extent)
            guard !overflow else { throw fail("shape \(shape) has too many elements") }
            elements = product
        }
        let (bits, overflow) = elements.multipliedReportingOverflow(by: dtype.bitSize)
        guard !overflow else { throw fail("shape \(shape) of \(dtype.rawValue) is too large") }
        guard bits % 8 == 0 else { throw fail("shape \(shape) of \(dtype.rawValue) does not fill whole bytes") }
        guard offsets[1] - offsets[0] == bits / 8 else {
            throw fail(
                "data_offsets [\(offsets[0]), \(offsets[1])] hold \(offsets[1] - offsets[0]) bytes, but shape \(shape) "
                    + "of \(dtype.rawValue) needs \(bits / 8)")
        }
        return SafeTensorsInfo(dtype: dtype, shape: shape, dataOffsets: offsets[0]..<offsets[1])
    }

    /// Checks that the tensors' byte ranges tile `0..<dataLength` exactly (the reference implementation's rule).
    private static func checkCoverage(_ entries: [String: SafeTensorsInfo], dataLength: Int, file: String) throws {
        let ordered = entries.sorted {
            ($0.value.dataOffsets.lowerBound, $0.value.dataOffsets.upperBound, $0.key)
                < ($1.value.dataOffsets.lowerBound, $1.value.dataOffsets.upperBound, $1.key)
        }
        var end = 0
        var previous: String?
        for (key, info) in ordered {
            let range = info.dataOffsets
            if range.lowerBound < end {
                throw CheckpointError.dataNotCovered(
                    file: file,
                    reason:
                        "tensor '\(key)' (bytes \(range.lowerBound)..<\(range.upperBound)) overlaps tensor '\(previous!)'"
                )
            }
            if range.lowerBound > end {
                throw CheckpointError.dataNotCovered(
                    file: file, reason: "bytes \(end)..<\(range.lowerBound) before tensor '\(key)' belong to no tensor")
            }
            end = range.upperBound
            previous = key
        }
        if end > dataLength {
            throw CheckpointError.truncated(
                file: file,
                reason: "tensor '\(previous!)' ends at data byte \(end), but the file has only \(dataLength) data bytes"
            )
        }
        if end < dataLength {
            throw CheckpointError.dataNotCovered(
                file: file, reason: "\(dataLength - end) bytes after the last tensor belong to no tensor")
        }
    }

    private static func nonNegativeIntegers(_ value: JSONValue?) -> [Int]? {
        guard case .array(let items)? = value else { return nil }
        var result: [Int] = []
        for item in items {
            guard case .integer(let n) = item, n >= 0 else { return nil }
            result.append(n)
        }
        return result
    }

    private static func describe(_ value: JSONValue?) -> String {
        guard let value else { return "nothing" }
        switch value {
        case .array(let items):
            return "["
                + items.map { item -> String in
                    switch item {
                    case .integer(let n): return String(n)
                    case .number(let x): return String(x)
                    default: return item.typeName
                    }
                }.joined(separator: ", ") + "]"
        default: return value.typeName
        }
    }
}
