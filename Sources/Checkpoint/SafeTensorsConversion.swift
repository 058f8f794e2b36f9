import TensorCore

/// Conversion of stored safetensors bytes (little-endian, possibly unaligned) into tensors.
enum SafeTensorsConversion {
    /// Elements per parallel chunk.
    private static let grain = 1 << 16

    /// A new tensor of `target` holding `raw` (elements of `stored`, row-major, `shape`), or nil when `stored` cannot
    /// be converted.
    static func makeTensor(_ raw: UnsafeRawBufferPointer, stored: SafeTensorsDType, shape: [Int], target: DType)
        -> Tensor?
    {
        guard stored.isConvertible else { return nil }
        let out = Tensor(uninitializedShape: shape, dtype: target)
        let count = out.count
        guard count > 0 else { return out }
        if stored.tensorDType == target {
            // Same representation: a byte copy (the host is little-endian, like the format).
            out.storage.rawPointer.copyMemory(from: raw.baseAddress!, byteCount: raw.count)
            return out
        }
        let source = raw.baseAddress!
        switch target {
        case .float32: decode(source, stored, into: out.storage.pointer(as: Float.self), count: count)
        case .float64: decode(source, stored, into: out.storage.pointer(as: Double.self), count: count)
        case .bfloat16, .float16:
            // Narrow through float32, chunk by chunk, so no full-size float32 copy is needed.
            let bits = out.storage.pointer(as: UInt16.self)
            let toBFloat16 = target == .bfloat16
            Parallel.forEach(count, grain: grain) { range in
                let chunk = UnsafeMutablePointer<Float>.allocate(capacity: range.count)
                defer { chunk.deallocate() }
                decodeRange(source, stored, into: chunk, base: range.lowerBound, range: range)
                for i in range {
                    let value = chunk[i - range.lowerBound]
                    bits[i] = toBFloat16 ? BFloat16.bits(from: value) : Float16Bits.bits(from: value)
                }
            }
        }
        return out
    }

    /// Decodes `count` elements of `stored` into `destination`, in parallel.
    static func decode<T: TensorScalar>(
        _ source: UnsafeRawPointer, _ stored: SafeTensorsDType, into destination: UnsafeMutablePointer<T>, count: Int
    ) {
        Parallel.forEach(count, grain: grain) { range in
            decodeRange(source, stored, into: destination, base: 0, range: range)
        }
    }

    /// Decodes elements `range` of `stored` into `destination[i - base]`. `stored` must be convertible.
    @inline(__always)
    private static func decodeRange<T: TensorScalar>(
        _ p: UnsafeRawPointer, _ stored: SafeTensorsDType, into destination: UnsafeMutablePointer<T>, base: Int,
        range: Range<Int>
    ) {
        switch stored {
        case .f32: for i in range { destination[i - base] = T(p.loadUnaligned(fromByteOffset: 4 * i, as: Float.self)) }
        case .f64: for i in range { destination[i - base] = T(p.loadUnaligned(fromByteOffset: 8 * i, as: Double.self)) }
        case .bf16:
            for i in range {
                destination[i - base] = T(
                    BFloat16.float(fromBits: p.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))
            }
        case .f16:
            for i in range {
                destination[i - base] = T(
                    Float16Bits.float(fromBits: p.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))
            }
        case .i64: for i in range { destination[i - base] = T(p.loadUnaligned(fromByteOffset: 8 * i, as: Int64.self)) }
        case .u64: for i in range { destination[i - base] = T(p.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self)) }
        case .i32: for i in range { destination[i - base] = T(p.loadUnaligned(fromByteOffset: 4 * i, as: Int32.self)) }
        case .u32: for i in range { destination[i - base] = T(p.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)) }
        case .i16: for i in range { destination[i - base] = T(p.loadUnaligned(fromByteOffset: 2 * i, as: Int16.self)) }
        case .u16: for i in range { destination[i - base] = T(p.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) }
        case .i8: for i in range { destination[i - base] = T(p.load(fromByteOffset: i, as: Int8.self)) }
        case .u8: for i in range { destination[i - base] = T(p.load(fromByteOffset: i, as: UInt8.self)) }
        // Any non-zero byte is true (PyTorch writes 0 and 1).
        case .bool: for i in range { destination[i - base] = p.load(fromByteOffset: i, as: UInt8.self) != 0 ? 1 : 0 }
        case .f4, .f6E2M3, .f6E3M2, .f8E5M2, .f8E4M3, .f8E8M0, .c64:
            preconditionFailure("SafeTensorsConversion: \(stored.rawValue) is not convertible")
        }
    }
}
