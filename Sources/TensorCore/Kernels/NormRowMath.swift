/// Vectorised reductions over contiguous runs, shared by the norm and softmax kernels.
///
/// Sums run in eight `T` lanes (so the loop vectorises and rounding error grows with n/8, not n) over blocks of
/// `block` elements; each block's total is then added to a Float64 accumulator. For Float32 inputs this keeps the
/// statistics of long runs (a GroupNorm group of a video latent holds millions of elements) accurate to about the
/// float32 rounding of one block, at the cost of one conversion per block.
enum RowMath {
    /// Elements summed in `T` lanes before the partial total moves to Float64.
    static let block = 1024

    /// Eight consecutive elements starting at `p + i`.
    @inline(__always)
    static func load<T: TensorScalar>(_ p: UnsafePointer<T>, _ i: Int) -> SIMD8<T> {
        UnsafeRawPointer(p + i).loadUnaligned(as: SIMD8<T>.self)
    }

    /// Σ f(i) over 0..<n, where `vector(i)` gives f at i..<i+8 and `scalar(i)` gives f at i.
    @inline(__always)
    static func accumulate<T: TensorScalar>(
        _ n: Int, _ vector: (Int) -> SIMD8<T>, _ scalar: (Int) -> T
    ) -> Double {
        var total = 0.0
        var start = 0
        while start < n {
            let end = Swift.min(n, start + block)
            var lanes = SIMD8<T>()
            var i = start
            while i + 8 <= end {
                lanes += vector(i)
                i += 8
            }
            var tail: T = 0
            while i < end {
                tail += scalar(i)
                i += 1
            }
            total += Double(lanes.sum() + tail)
            start = end
        }
        return total
    }

    /// The pair (Σ f(i), Σ h(i)) over 0..<n in one pass; `vector` and `scalar` return (f, h).
    @inline(__always)
    static func accumulate2<T: TensorScalar>(
        _ n: Int, _ vector: (Int) -> (SIMD8<T>, SIMD8<T>), _ scalar: (Int) -> (T, T)
    ) -> (Double, Double) {
        var total0 = 0.0, total1 = 0.0
        var start = 0
        while start < n {
            let end = Swift.min(n, start + block)
            var lanes0 = SIMD8<T>(), lanes1 = SIMD8<T>()
            var i = start
            while i + 8 <= end {
                let (a, b) = vector(i)
                lanes0 += a
                lanes1 += b
                i += 8
            }
            var tail0: T = 0, tail1: T = 0
            while i < end {
                let (a, b) = scalar(i)
                tail0 += a
                tail1 += b
                i += 1
            }
            total0 += Double(lanes0.sum() + tail0)
            total1 += Double(lanes1.sum() + tail1)
            start = end
        }
        return (total0, total1)
    }

    /// Σ p[i] over 0..<n.
    @inline(__always)
    static func sum<T: TensorScalar>(_ p: UnsafePointer<T>, _ n: Int) -> Double {
        accumulate(n, { load(p, $0) }, { p[$0] })
    }

    /// Σ (p[i] − center)² over 0..<n (the second pass of a two-pass variance, which has no cancellation).
    @inline(__always)
    static func sumSquaredDeviation<T: TensorScalar>(_ p: UnsafePointer<T>, _ n: Int, center: T) -> Double {
        let c = SIMD8<T>(repeating: center)
        return accumulate(
            n,
            { i in
                let d = load(p, i) - c
                return d * d
            },
            { i in
                let d = p[i] - center
                return d * d
            })
    }

    /// Σ a[i]·b[i] over 0..<n.
    @inline(__always)
    static func dot<T: TensorScalar>(_ a: UnsafePointer<T>, _ b: UnsafePointer<T>, _ n: Int) -> Double {
        accumulate(n, { load(a, $0) * load(b, $0) }, { a[$0] * b[$0] })
    }

    /// The largest element of p[0..<n] (−∞ when n is 0).
    @inline(__always)
    static func max<T: TensorScalar>(_ p: UnsafePointer<T>, _ n: Int) -> T {
        // Generic SIMD comparisons compile to per-lane code; Float gets the concrete SIMD8<Float> operators.
        if T.self == Float.self {
            return unsafeBitCast(maxFloat(UnsafeRawPointer(p).assumingMemoryBound(to: Float.self), n), to: T.self)
        }
        var m = -T.infinity
        for i in 0..<n where p[i] > m { m = p[i] }
        return m
    }

    @inline(__always)
    static func maxFloat(_ p: UnsafePointer<Float>, _ n: Int) -> Float {
        var lanes = SIMD8<Float>(repeating: -.infinity)
        var i = 0
        while i + 8 <= n {
            let v = load(p, i)
            lanes.replace(with: v, where: v .> lanes)
            i += 8
        }
        var m = lanes.max()
        while i < n {
            if p[i] > m { m = p[i] }
            i += 1
        }
        return m
    }
}
