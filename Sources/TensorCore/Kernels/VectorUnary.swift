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

    /// grad·op′(x) over `count` contiguous Floats (y = op(x) from the forward), eight lanes at a time: the backward
    /// of the same ops, one pass over memory. GELU-tanh and SiLU recompute their sigmoid with `exp8` instead of
    /// libm's scalar `tanhf`/`expf`.
    static func applyBackward(
        _ op: UnaryOp, x: UnsafePointer<Float>, y: UnsafePointer<Float>, grad: UnsafePointer<Float>,
        _ out: UnsafeMutablePointer<Float>, _ count: Int
    ) {
        @inline(__always) func load(_ p: UnsafePointer<Float>, _ i: Int) -> SIMD8<Float> {
            UnsafeRawPointer(p + i).loadUnaligned(as: SIMD8<Float>.self)
        }
        let blocks = count / 8
        Parallel.forEach(blocks, grain: 2048) { range in
            for b in range {
                let i = b * 8
                let r = load(grad, i) * derivativeLanes(op, load(x, i), load(y, i))
                UnsafeMutableRawPointer(out + i).storeBytes(of: r, as: SIMD8<Float>.self)
            }
        }
        let done = blocks * 8
        if done < count {
            var vx = SIMD8<Float>(repeating: 0), vy = vx, vg = vx
            for i in done..<count {
                vx[i - done] = x[i]
                vy[i - done] = y[i]
                vg[i - done] = grad[i]
            }
            let r = vg * derivativeLanes(op, vx, vy)
            for i in done..<count { out[i] = r[i - done] }
        }
    }

    /// op′(x) per lane, given x and y = op(x).
    @inline(__always)
    static func derivativeLanes(_ op: UnaryOp, _ x: SIMD8<Float>, _ y: SIMD8<Float>) -> SIMD8<Float> {
        switch op {
        case .exp: return y
        case .sigmoid: return y * (1 - y)
        case .silu:
            let s = 1 / (1 + VectorExp.exp8(-x))
            return s * (1 + x * (1 - s))
        case .geluTanh:
            // gelu = x·s with s = sigmoid(2u) = 0.5·(1 + tanh u); ds/du = 2·s·(1 − s).
            let c: Float = 0.797_884_560_802_865_4
            let x2 = x * x
            let u = c * (x + 0.044715 * x2 * x)
            let s = 1 / (1 + VectorExp.exp8(-2 * u))
            let du = c * (1 + 3 * 0.044715 * x2)
            return s + x * (2 * s * (1 - s)) * du
        default: preconditionFailure("VectorUnary: no vector path for \(op)")
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
