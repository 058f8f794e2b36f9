/// A vectorised exp, eight lanes at a time: the one exp of the softmax, attention and unary Float kernels.
///
/// libm's `expf` is a scalar call the compiler cannot vectorise, and it dominates softmax. For Float this computes
/// exp with Cody–Waite range reduction (x = n·ln2 + r, |r| ≤ ln2/2) and Cephes' degree-6 polynomial for e^r, then
/// scales by 2ⁿ through the exponent bits: within about 1 ulp of `expf` on [−87, 0], about 4× faster. Double
/// lanes call `Foundation.exp` so that Float64 gradient checks stay exact.
enum VectorExp {
    /// exp(x) per lane. Float lanes: x below ln(FLT_MIN) ≈ −87.34 (−∞ included) gives 0 instead of a subnormal,
    /// x above 88 gives +∞ (exp overflows Float at 88.72), NaN stays NaN. Softmax only evaluates x ≤ 0.
    @inline(__always)
    static func exp<T: TensorScalar>(_ x: SIMD8<T>) -> SIMD8<T> {
        if T.self == Float.self {
            return unsafeBitCast(exp8(unsafeBitCast(x, to: SIMD8<Float>.self)), to: SIMD8<T>.self)
        }
        var out = SIMD8<T>()
        for i in 0..<8 { out[i] = T.exp(x[i]) }
        return out
    }

    /// Stores exp(x[i] + shift) to y[i] for i in 0..<n.
    @inline(__always)
    static func apply<T: TensorScalar>(_ x: UnsafePointer<T>, shift: T, _ y: UnsafeMutablePointer<T>, _ n: Int) {
        let vshift = SIMD8<T>(repeating: shift)
        var i = 0
        while i + 8 <= n {
            UnsafeMutableRawPointer(y + i).storeBytes(of: exp(RowMath.load(x, i) + vshift), as: SIMD8<T>.self)
            i += 8
        }
        if i < n {
            // The tail goes through the same lanes, so every element is rounded the same way.
            var lanes = SIMD8<T>(repeating: -T.infinity)
            for j in i..<n { lanes[j - i] = x[j] + shift }
            let e = exp(lanes)
            for j in i..<n { y[j] = e[j - i] }
        }
    }

    @inline(__always)
    static func exp8(_ x: SIMD8<Float>) -> SIMD8<Float> {
        let lowest: Float = -87.33654, highest: Float = 88
        // Clamped with masks: `pointwiseMin`/`pointwiseMax` do not vectorise.
        var xc = x
        xc.replace(with: lowest, where: x .< lowest)
        xc.replace(with: highest, where: x .> highest)
        // n = round(x·log2 e) by the 1.5·2²³ trick: the sum's low mantissa bits hold n (round to nearest even).
        let magic: Float = 12_582_912
        let t = xc * 1.442_695_04 + magic
        let n = t - magic
        let r = xc - n * 0.693_359_375 - n * -2.121_944_4e-4
        var p = SIMD8<Float>(repeating: 1.987_569_15e-4)
        p = p * r + 1.398_199_95e-3
        p = p * r + 8.333_451_9e-3
        p = p * r + 4.166_579_59e-2
        p = p * r + 0.166_666_655
        p = p * r + 0.500_000_01
        p = p * r * r + r + 1
        // 2ⁿ from its exponent bits; n ∈ [−126, 127] after the clamp, so the result is a normal float.
        let nBits = unsafeBitCast(t, to: SIMD8<Int32>.self) &- unsafeBitCast(SIMD8<Float>(repeating: magic), to: SIMD8<Int32>.self)
        let scale = unsafeBitCast((nBits &+ 127) &<< 23, to: SIMD8<Float>.self)
        var result = p * scale
        result.replace(with: 0, where: x .< lowest)
        result.replace(with: Float.infinity, where: x .> highest)
        result.replace(with: x, where: x .!= x)
        return result
    }
}
