import Foundation
import TensorCore

/// Writing safetensors files.
///
/// The output is byte-identical to Python's `safetensors.torch.save_file` (safetensors 0.8) for the same tensors and
/// metadata: tensors are ordered by descending dtype in the reference implementation's order (F64, F32, BF16, F16),
/// then by name (UTF-8 byte order); the header is compact JSON escaped like `serde_json`, `__metadata__` first, padded
/// with spaces to a multiple of 8 bytes; the data follow in header order. Two documented differences, both cases where
/// Python's output is not reproducible or not valid: metadata keys are written sorted (Python writes them in the random
/// order of a Rust `HashMap`, so with two or more keys its own output varies from run to run), and a file with metadata
/// but no tensors gets a valid header (Python 0.8 writes `{},"__metadata__":{…}}`, which no reader accepts).
public enum SafeTensors {
    /// Writes `tensors` to `url` atomically (temporary file in the same directory, fsync, rename).
    /// - Parameters:
    ///   - tensors: the state dict; values may have any dtype.
    ///   - metadata: the `__metadata__` entries (nil writes none; Python writers usually set `["format": "pt"]`).
    ///   - dtype: when set, every tensor is converted to it on the way (round to nearest even when narrowing);
    ///     otherwise each tensor is stored in its own dtype.
    ///   - url: the target file; an existing file is replaced only once the new one is complete.
    /// - Throws: `CheckpointError` naming the file (and the key, for an invalid name).
    public static func write(
        _ tensors: [String: Tensor], metadata: [String: String]? = nil, as dtype: DType? = nil, to url: URL
    ) throws {
        let layout = try Layout(tensors, metadata: metadata, dtype: dtype, file: url.path)
        try AtomicFile.write(to: url) { writer in
            try writer.write(layout.header)
            for entry in layout.entries {
                let stored = storedForm(entry.tensor, entry.dtype)
                try withExtendedLifetime(stored) {
                    try writer.write(UnsafeRawBufferPointer(start: stored.storage.rawPointer, count: entry.byteCount))
                }
            }
        }
    }

    /// The complete file image `write` would produce, in memory.
    public static func encode(
        _ tensors: [String: Tensor], metadata: [String: String]? = nil, as dtype: DType? = nil
    ) throws -> [UInt8] {
        let layout = try Layout(tensors, metadata: metadata, dtype: dtype, file: "<memory>")
        var bytes = layout.header
        bytes.reserveCapacity(layout.header.count + layout.dataLength)
        for entry in layout.entries {
            let stored = storedForm(entry.tensor, entry.dtype)
            withExtendedLifetime(stored) {
                bytes.append(
                    contentsOf: UnsafeRawBufferPointer(start: stored.storage.rawPointer, count: entry.byteCount))
            }
        }
        return bytes
    }

    /// `tensor` in `dtype` (itself when it already is), converted outside autograd.
    private static func storedForm(_ tensor: Tensor, _ dtype: DType) -> Tensor {
        tensor.dtype == dtype ? tensor : Autograd.inference { tensor.to(dtype) }
    }

    /// The order, offsets and header bytes of a file.
    struct Layout {
        struct Entry {
            let name: String
            let tensor: Tensor
            let dtype: DType
            let byteCount: Int
        }
        let entries: [Entry]
        let header: [UInt8]
        var dataLength: Int { entries.reduce(0) { $0 + $1.byteCount } }

        init(_ tensors: [String: Tensor], metadata: [String: String]?, dtype: DType?, file: String) throws {
            if tensors["__metadata__"] != nil {
                throw CheckpointError.invalidTensor(
                    file: file, key: "__metadata__", reason: "the name is reserved for the metadata")
            }
            entries = tensors.map { name, tensor in
                let stored = dtype ?? tensor.dtype
                return Entry(name: name, tensor: tensor, dtype: stored, byteCount: tensor.count * stored.byteCount)
            }.sorted { a, b in
                let (orderA, orderB) = (SafeTensorsDType(a.dtype).order, SafeTensorsDType(b.dtype).order)
                if orderA != orderB { return orderA > orderB }
                return a.name.utf8.lexicographicallyPrecedes(b.name.utf8)
            }
            header = Self.encodeHeader(entries, metadata: metadata)
        }

        /// Compact JSON, `__metadata__` first, padded with spaces to a multiple of 8, prefixed by its length.
        private static func encodeHeader(_ entries: [Entry], metadata: [String: String]?) -> [UInt8] {
            var parts: [String] = []
            if let metadata {
                let items = metadata.sorted { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
                    .map { SerdeJSON.quoted($0.key) + ":" + SerdeJSON.quoted($0.value) }
                parts.append("\"__metadata__\":{" + items.joined(separator: ",") + "}")
            }
            var offset = 0
            for entry in entries {
                let shape = entry.tensor.shape.map(String.init).joined(separator: ",")
                parts.append(
                    SerdeJSON.quoted(entry.name) + ":{\"dtype\":\"\(SafeTensorsDType(entry.dtype).rawValue)\","
                        + "\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(offset + entry.byteCount)]}")
                offset += entry.byteCount
            }
            var json = Array(("{" + parts.joined(separator: ",") + "}").utf8)
            json.append(contentsOf: repeatElement(UInt8(ascii: " "), count: (8 - json.count % 8) % 8))
            var bytes = withUnsafeBytes(of: UInt64(json.count).littleEndian) { Array($0) }
            bytes.append(contentsOf: json)
            return bytes
        }
    }
}
