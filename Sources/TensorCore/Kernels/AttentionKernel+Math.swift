/// Row primitives of the attention kernels: maximum, sum and a shifted exponential over a short contiguous row.
///
/// The exponential is the kernels' hot spot besides the tile products (one per score, Lq·Lk per head), so Float gets
/// a branch-free polynomial that the compiler vectorises; Double (gradient checks) uses the libm `exp`.
enum AttentionMath {
    /// The largest of `p[0..<n]` (−∞ when n is 0).
    @inline(__always)
    static func maximum<T: TensorScalar>(_ p: UnsafePointer<T>, _ n: Int) -> T {
        var lanes = SIMD8<T>(repeating: -.infinity)
        var j = 0
        while j + 8 <= n {
            lanes = pointwiseMax(lanes, UnsafeRawPointer(p + j).loadUnaligned(as: SIMD8<T>.self))
            j += 8
        }
        var m = lanes.max()
        while j < n {
            m = Swift.max(m, p[j])
            j += 1
        }
        return m
    }

    /// Σ p[0..<n], in eight lanes.
    @inline(__always)
    static func sum<T: TensorScalar>(_ p: UnsafePointer<T>, _ n: Int) -> T {
        var lanes = SIMD8<T>(repeating: 0)
        var j = 0
        while j + 8 <= n {
            lanes += UnsafeRawPointer(p + j).loadUnaligned(as: SIMD8<T>.self)
            j += 8
        }
        var s = lanes.sum()
        while j < n {
            s += p[j]
            j += 1
        }
        return s
    }

    /// Σ a[i]·b[i] over `n` elements, in eight lanes.
    @inline(__always)
    static func dot<T: TensorScalar>(_ a: UnsafePointer<T>, _ b: UnsafePointer<T>, _ n: Int) -> T {
        var lanes = SIMD8<T>(repeating: 0)
        var j = 0
        while j + 8 <= n {
            lanes += UnsafeRawPointer(a + j).loadUnaligned(as: SIMD8<T>.self)
                * UnsafeRawPointer(b + j).loadUnaligned(as: SIMD8<T>.self)
            j += 8
        }
        var s = lanes.sum()
        while j < n {
            s += a[j] * b[j]
            j += 1
        }
        return s
    }

    /// p[j] = exp(p[j] − shift) for j < n. Arguments of −∞ (masked scores, or rows with shift +∞) give exactly 0.
    @inline(__always)
    static func exp<T: TensorScalar>(_ p: UnsafeMutablePointer<T>, _ n: Int, minus shift: T) {
        if T.self == Float.self {
            let pf = UnsafeMutableRawPointer(p).assumingMemoryBound(to: Float.self)
            let s = unsafeBitCast(shift, to: Float.self)
            for j in 0..<n { pf[j] = fastExp(pf[j] - s) }
        } else {
            for j in 0..<n { p[j] = T.exp(p[j] - shift) }
        }
    }

    /// exp(x) for Float within about 2 ulp, without branches or calls so that loops over it vectorise.
    ///
    /// Cody–Waite reduction x = n·ln2 + r, |r| ≤ ln2/2, a degree-6 polynomial for eʳ (Cephes' `expf` coefficients),
    /// then 2ⁿ built in the exponent bits. Below −87.3 (where eˣ leaves the normal range) the result is 0, which
    /// also makes exp(−∞) = 0; NaN propagates.
    @inline(__always)
    static func fastExp(_ x: Float) -> Float {
        let lo: Float = -87.33654, hi: Float = 88.72283
        let xc = x < lo ? lo : (x > hi ? hi : x)
        // Adding 1.5·2²³ rounds x·log2(e) to an integer held in the low mantissa bits.
        let shifter: Float = 12_582_912
        let t = xc * 1.442_695_04 + shifter
        let n = t - shifter
        let r = (xc - n * 0.693_359_375) + n * 2.121_944_4e-4
        var poly: Float = 1.987_569_15e-4
        poly = poly * r + 1.398_199_95e-3
        poly = poly * r + 8.333_451_9e-3
        poly = poly * r + 4.166_579_59e-2
        poly = poly * r + 1.666_666_55e-1
        poly = poly * r + 5.000_000_12e-1
        let er = poly * r * r + r + 1
        let scaleBits = (t.bitPattern &- 0x4B40_0000 &+ 127) &<< 23
        let result = er * Float(bitPattern: scaleBits)
        return x < lo ? 0 : result
    }

    /// Sets `value` in column j of a rows×cols tile wherever keep[j] is 0.
    @inline(__always)
    static func fillMasked<T: TensorScalar>(
        _ tile: UnsafeMutablePointer<T>, rows: Int, cols: Int, keep: UnsafePointer<UInt8>, value: T
    ) {
        for j in 0..<cols where keep[j] == 0 {
            for i in 0..<rows { tile[i * cols + j] = value }
        }
    }
}
