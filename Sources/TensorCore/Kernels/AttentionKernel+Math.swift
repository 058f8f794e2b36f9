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

    /// p[j] = exp(p[j] − shift) for j < n, in place through `VectorExp`. Arguments of −∞ (masked scores, or rows
    /// with shift +∞) give exactly 0.
    @inline(__always)
    static func exp<T: TensorScalar>(_ p: UnsafeMutablePointer<T>, _ n: Int, minus shift: T) {
        VectorExp.apply(p, shift: -shift, p, n)
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
