/// The element type of a tensor's storage.
///
/// Compute happens in `float32` (or `float64`, used by the gradient checks so that finite differences are exact
/// enough to test every rule tightly). `bfloat16` and `float16` are storage types: convert with
/// `Tensor.to(_:)` before computing.
public enum DType: String, Sendable, CaseIterable, Codable {
    case float32
    case float64
    case bfloat16
    case float16

    /// Bytes per element.
    public var byteCount: Int {
        switch self {
        case .float32: return 4
        case .float64: return 8
        case .bfloat16, .float16: return 2
        }
    }

    /// Whether ops compute in this type directly.
    public var isCompute: Bool { self == .float32 || self == .float64 }
}

/// bfloat16 conversions. The top 16 bits of an IEEE float32, rounded to nearest with ties to even; NaN stays NaN.
public enum BFloat16 {
    /// Rounds a float32 to bfloat16 bits (round to nearest, ties to even; NaN is kept quiet and non-zero).
    @inlinable @inline(__always)
    public static func bits(from value: Float) -> UInt16 {
        let b = value.bitPattern
        if (b & 0x7fff_ffff) > 0x7f80_0000 { return UInt16(truncatingIfNeeded: (b >> 16) | 0x0040) }
        let lsb = (b >> 16) & 1
        let rounded = b &+ 0x7fff &+ lsb
        return UInt16(truncatingIfNeeded: rounded >> 16)
    }

    /// Widens bfloat16 bits to a float32 exactly.
    @inlinable @inline(__always)
    public static func float(fromBits bits: UInt16) -> Float {
        Float(bitPattern: UInt32(bits) << 16)
    }
}

/// IEEE half-precision conversions (used when loading F16 checkpoints).
public enum Float16Bits {
    /// Widens IEEE binary16 bits to a float32 exactly (subnormals, infinities and NaN included).
    @inlinable
    public static func float(fromBits h: UInt16) -> Float {
        let sign = UInt32(h & 0x8000) << 16
        let exponent = Int((h >> 10) & 0x1f)
        let mantissa = UInt32(h & 0x3ff)
        if exponent == 0 {
            if mantissa == 0 { return Float(bitPattern: sign) }
            // Subnormal: value = mantissa · 2^-24.
            let magnitude = Float(mantissa) * Float(sign: .plus, exponent: -24, significand: 1)
            return sign != 0 ? -magnitude : magnitude
        }
        if exponent == 31 { return Float(bitPattern: sign | 0x7f80_0000 | (mantissa << 13)) }
        return Float(bitPattern: sign | UInt32(exponent - 15 + 127) << 23 | (mantissa << 13))
    }

    /// Rounds a float32 to IEEE binary16 bits (round to nearest even, overflow to infinity).
    @inlinable
    public static func bits(from value: Float) -> UInt16 {
        let b = value.bitPattern
        let sign = UInt16((b >> 16) & 0x8000)
        let exponent = Int((b >> 23) & 0xff)
        let mantissa = b & 0x7f_ffff
        if exponent == 0xff { return sign | 0x7c00 | (mantissa != 0 ? 0x200 : 0) }
        let e = exponent - 127 + 15
        if e >= 31 { return sign | 0x7c00 }
        if e <= 0 {
            if e < -10 { return sign }
            let m = mantissa | 0x80_0000
            let shift = UInt32(14 - e)
            var half = m >> shift
            let rem = m & ((1 << shift) - 1)
            let halfway = UInt32(1) << (shift - 1)
            if rem > halfway || (rem == halfway && (half & 1) == 1) { half += 1 }
            return sign | UInt16(half)
        }
        var half = UInt32(e) << 10 | (mantissa >> 13)
        let rem = mantissa & 0x1fff
        if rem > 0x1000 || (rem == 0x1000 && (half & 1) == 1) { half += 1 }
        return sign | UInt16(half)
    }
}
