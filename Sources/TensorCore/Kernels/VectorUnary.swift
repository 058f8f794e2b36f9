/// Float fast paths for the unary ops built on exp, eight lanes at a time (`VectorExp.exp8`, within about 1 ulp of
/// `expf`). libm's scalar `expf`/`tanhf` cannot be vectorised and dominate these ops otherwise.
///
/// GELU (tanh form) uses the identity 0.5·(1 + tanh u) = sigmoid(2u), so gelu(x) = x / (1 + e^(−2u)) with
/// u = √(2/π)·(x + 0.044715·x³): no cancellation near zero, and exact limits at ±∞.
enum VectorUnary {
    /// Whether `op` has a vector path.
    static func supports(_ op: UnaryOp) -> Bool {
        switch op {
        case .exp, .sigmoid, .silu, .geluTanh: return true
        default: return false
        }
    }

    /// y = op(x) over `count` contiguous Floats, split over the thread pool in multiples of eight.
    static func apply(_ op: UnaryOp, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ count: Int) {
        let blocks = count / 8
        Parallel.forEach(blocks, grain: 4096) { range in
            for b in range {
                let v = UnsafeRawPointer(x + b * 8).loadUnaligned(as: SIMD8<Float>.self)
                UnsafeMutableRawPointer(y + b * 8).storeBytes(of: lanes(op, v), as: SIMD8<Float>.self)
            }
        }
        // The tail goes through the same lanes so every element is rounded alike.
        let done = blocks * 8
        if done < count {
            var v = SIMD8<Float>(repeating: 0)
            for i in done..<count { v[i - done] = x[i] }
            let r = lanes(op, v)
            for i in done..<count { y[i] = r[i - done] }
        }
    }

    @inline(__always)
    static func lanes(_ op: UnaryOp, _ v: SIMD8<Float>) -> SIMD8<Float> {
        switch op {
        case .exp: return VectorExp.exp8(v)
        case .sigmoid: return 1 / (1 + VectorExp.exp8(-v))
        case .silu: return v / (1 + VectorExp.exp8(-v))
        case .geluTanh:
            let u = 0.797_884_560_802_865_4 * (v + 0.044715 * v * v * v)
            return v / (1 + VectorExp.exp8(-2 * u))
        default: preconditionFailure("VectorUnary: no vector path for \(op)")
        }
    }
}
