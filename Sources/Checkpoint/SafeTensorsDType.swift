import TensorCore

/// An element type of the safetensors format, named as in the file header ("F32", "BF16", …).
///
/// The cases are every dtype the reference (Rust) implementation defines, in its declaration order: a file holding,
/// say, an `I64` step counter or `F8_E4M3` weights must still open, even though only some types convert to a
/// `Tensor` (see `SafeTensorsFile.tensor(_:as:)`). The order matters when writing: the reference writer places tensors
/// by descending dtype (then by name), and so do we, to produce byte-identical files.
public enum SafeTensorsDType: String, CaseIterable, Sendable {
    case bool = "BOOL"
    case f4 = "F4"
    case f6E2M3 = "F6_E2M3"
    case f6E3M2 = "F6_E3M2"
    case u8 = "U8"
    case i8 = "I8"
    case f8E5M2 = "F8_E5M2"
    case f8E4M3 = "F8_E4M3"
    case f8E8M0 = "F8_E8M0"
    case i16 = "I16"
    case u16 = "U16"
    case f16 = "F16"
    case bf16 = "BF16"
    case i32 = "I32"
    case u32 = "U32"
    case f32 = "F32"
    case c64 = "C64"
    case f64 = "F64"
    case i64 = "I64"
    case u64 = "U64"

    /// Bits per element (4 and 6 for the packed float formats).
    public var bitSize: Int {
        switch self {
        case .f4: return 4
        case .f6E2M3, .f6E3M2: return 6
        case .bool, .u8, .i8, .f8E5M2, .f8E4M3, .f8E8M0: return 8
        case .i16, .u16, .f16, .bf16: return 16
        case .i32, .u32, .f32: return 32
        case .c64, .f64, .i64, .u64: return 64
        }
    }

    /// The tensor dtype stored bit for bit, if any (`F32` ↔ `.float32`, `F64`, `BF16`, `F16`).
    public var tensorDType: DType? {
        switch self {
        case .f32: return .float32
        case .f64: return .float64
        case .bf16: return .bfloat16
        case .f16: return .float16
        default: return nil
        }
    }

    /// The safetensors dtype that stores `dtype` bit for bit.
    public init(_ dtype: DType) {
        switch dtype {
        case .float32: self = .f32
        case .float64: self = .f64
        case .bfloat16: self = .bf16
        case .float16: self = .f16
        }
    }

    /// Whether `SafeTensorsFile.tensor(_:as:)` can convert this type: the four float types, and integers and booleans
    /// (converted by value, so integers beyond 2^24 lose precision in float32).
    public var isConvertible: Bool {
        switch self {
        case .f4, .f6E2M3, .f6E3M2, .f8E5M2, .f8E4M3, .f8E8M0, .c64: return false
        default: return true
        }
    }

    /// Position in the reference implementation's dtype order (used to order tensors when writing).
    var order: Int { Self.allCases.firstIndex(of: self)! }
}

/// Where and how one tensor is stored in a safetensors file.
public struct SafeTensorsInfo: Equatable, Sendable {
    /// The stored element type.
    public let dtype: SafeTensorsDType
    /// Extent of each axis (`[]` for a scalar).
    public let shape: [Int]
    /// The tensor's bytes, relative to the start of the data region (after the header).
    public let dataOffsets: Range<Int>

    /// Number of elements.
    public var elementCount: Int { shape.reduce(1, *) }
    /// Number of stored bytes.
    public var byteCount: Int { dataOffsets.count }
}
