import CKernels

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

    /// Whether the row work below runs in C on AVX-512 for Float (`AttentionTile.usesFloat32Kernel`).
    @inline(__always)
    private static func vectorised<T: TensorScalar>(_: T.Type) -> Bool {
        T.self == Float.self && AttentionTile.float32KernelActive
    }

    @inline(__always)
    private static func floats<T>(_ p: UnsafeMutablePointer<T>) -> UnsafeMutablePointer<Float> {
        UnsafeMutableRawPointer(p).assumingMemoryBound(to: Float.self)
    }

    /// The online-softmax update of a forward tile of scores (rows × cols, row stride cols): per row, the new maximum
    /// m, the row replaced by exp(score − m), the running sum and the accumulated outputs `acc` (rows × dh) rescaled
    /// by exp(m_old − m), and m stored. A row whose maximum is still −∞ (no visible key yet) becomes zeros.
    @inline(__always)
    static func onlineSoftmax<T: TensorScalar>(
        _ tile: UnsafeMutablePointer<T>, rows: Int, cols: Int, rowMax: UnsafeMutablePointer<T>,
        rowSum: UnsafeMutablePointer<T>, acc: UnsafeMutablePointer<T>, dh: Int
    ) {
        if vectorised(T.self)
            && goku_attention_softmax_tile(
                floats(tile), Int32(rows), Int32(cols), floats(rowMax), floats(rowSum), floats(acc), Int32(dh))
        {
            return
        }
        for i in 0..<rows {
            let row = tile + i * cols
            let m = Swift.max(rowMax[i], maximum(row, cols))
            if m == -.infinity {
                row.update(repeating: 0, count: cols)
                continue
            }
            exp(row, cols, minus: m)
            // Rescale what earlier tiles accumulated to the new maximum (0 before the first visible key).
            let correction = T.exp(rowMax[i] - m)
            rowSum[i] = rowSum[i] * correction + sum(row, cols)
            if correction != 1 {
                let a = acc + i * dh
                for d in 0..<dh { a[d] *= correction }
            }
            rowMax[i] = m
        }
    }

    /// The backward pass's probabilities: p[i][j] = exp(S[i][j] − lse[i]) in place over a rows × cols tile.
    @inline(__always)
    static func probabilities<T: TensorScalar>(
        _ p: UnsafeMutablePointer<T>, rows: Int, cols: Int, logSumExp lse: UnsafePointer<T>
    ) {
        if vectorised(T.self)
            && goku_attention_probabilities(
                floats(p), Int32(rows), Int32(cols), UnsafeRawPointer(lse).assumingMemoryBound(to: Float.self))
        {
            return
        }
        for i in 0..<rows { exp(p + i * cols, cols, minus: lse[i]) }
    }

    /// The score gradient dS = P ∘ (dP − D) in place over dP (rows × cols), D per row.
    @inline(__always)
    static func scoreGradient<T: TensorScalar>(
        _ ds: UnsafeMutablePointer<T>, probabilities p: UnsafeMutablePointer<T>, rows: Int, cols: Int,
        delta: UnsafeMutablePointer<T>
    ) {
        if vectorised(T.self)
            && goku_attention_score_gradient(floats(ds), floats(p), Int32(rows), Int32(cols), floats(delta))
        {
            return
        }
        for i in 0..<rows {
            let d = delta[i], pr = p + i * cols, dr = ds + i * cols
            for j in 0..<cols { dr[j] = pr[j] * (dr[j] - d) }
        }
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
