import Foundation

/// Fused softmax and log-softmax over the rows of a contiguous (rows, cols) matrix: one parallel pass forward and
/// one backward, each row handled while it sits in cache, with a vectorised exp (`VectorExp`).
enum SoftmaxKernel {
    /// Rows per parallel chunk: enough elements that a chunk outweighs its scheduling cost.
    static func grain(cols: Int) -> Int { Swift.max(1, 8192 / Swift.max(cols, 1)) }

    /// y = softmax(x) or log_softmax(x) per row.
    ///
    /// Numerics: the row maximum m is subtracted before `exp`, so no term exceeds 1 and the sum s ≥ 1 never
    /// overflows; log-softmax is then x − m − log s, exact for large negative logits where log(softmax) would
    /// underflow to −∞. A row of all −∞ gives NaN, as in PyTorch.
    static func forward<T: TensorScalar>(
        _ x: UnsafePointer<T>, _ y: UnsafeMutablePointer<T>, rows: Int, cols: Int, log: Bool
    ) {
        Parallel.forEach(rows, grain: grain(cols: cols)) { range in
            for r in range {
                let px = x + r * cols, py = y + r * cols
                let m = RowMath.max(px, cols)
                // exp(x − m) goes to y first: softmax rescales it in place, log-softmax only needs its sum.
                VectorExp.apply(px, shift: -m, py, cols)
                let s = RowMath.sum(UnsafePointer(py), cols)
                if log {
                    let shift = m + T(Foundation.log(s))
                    for i in 0..<cols { py[i] = px[i] - shift }
                } else {
                    let inverse = T(1 / s)
                    for i in 0..<cols { py[i] *= inverse }
                }
            }
        }
    }

    /// dx from the forward result y and the output gradient g, per row:
    /// softmax dx = y∘(g − Σ g∘y); log-softmax dx = g − exp(y)·Σ g.
    static func backward<T: TensorScalar>(
        _ y: UnsafePointer<T>, _ g: UnsafePointer<T>, _ dx: UnsafeMutablePointer<T>, rows: Int, cols: Int, log: Bool
    ) {
        Parallel.forEach(rows, grain: grain(cols: cols)) { range in
            for r in range {
                let py = y + r * cols, pg = g + r * cols, pd = dx + r * cols
                if log {
                    let total = T(RowMath.sum(pg, cols))
                    VectorExp.apply(py, shift: 0, pd, cols)  // softmax = exp(log-softmax)
                    for i in 0..<cols { pd[i] = pg[i] - pd[i] * total }
                } else {
                    let dot = T(RowMath.dot(pg, py, cols))
                    for i in 0..<cols { pd[i] = py[i] * (pg[i] - dot) }
                }
            }
        }
    }
}
