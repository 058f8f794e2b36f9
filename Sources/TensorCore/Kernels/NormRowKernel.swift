/// LayerNorm and RMSNorm over the last axis of a contiguous (rows, d) matrix, forward and backward.
///
/// Both compute y = (x − μ)·r·w + b with r = 1/√(σ² + eps) per row. LayerNorm centres: μ = mean(x), σ² the biased
/// variance. RMSNorm does not: μ = 0, σ² = mean(x²), and it has no bias. One kernel with a `centered` flag serves
/// both. The forward pass saves μ and r per row for the backward pass.
///
/// Precision: row statistics are accumulated in eight `T` lanes per 1024-element block and the blocks in Float64
/// (see `RowMath`). For Float32 inputs that matches T5's choice of computing the RMSNorm variance in float32, while
/// staying accurate for rows far longer than any model width.
enum RowNormKernel {
    /// Rows per chunk of the backward pass. Fixed by `d` alone (not by the thread count), so the weight and bias
    /// gradients, which are summed per chunk and then over chunks in order, are identical at any thread count.
    static func rowsPerChunk(d: Int) -> Int { Swift.max(1, 16384 / Swift.max(d, 1)) }

    /// y = (x − μ)·r·w + b per row; writes μ (0 when not `centered`) and r to `mean` and `rstd` (rows).
    static func forward<T: TensorScalar>(
        _ x: UnsafePointer<T>, weight: UnsafePointer<T>?, bias: UnsafePointer<T>?, _ y: UnsafeMutablePointer<T>,
        mean: UnsafeMutablePointer<T>, rstd: UnsafeMutablePointer<T>, rows: Int, d: Int, eps: Double, centered: Bool
    ) {
        Parallel.forEach(rows, grain: Swift.max(1, 8192 / Swift.max(d, 1))) { range in
            for r in range {
                let px = x + r * d, py = y + r * d
                // Two passes over the row (mean, then squared deviations): no cancellation, and the row is in cache.
                let mu = centered ? T(RowMath.sum(px, d) / Double(d)) : 0
                let variance = RowMath.sumSquaredDeviation(px, d, center: mu) / Double(d)
                let rs = T(1 / (variance + eps).squareRoot())
                mean[r] = mu
                rstd[r] = rs
                switch (weight, bias) {
                case let (w?, b?): for i in 0..<d { py[i] = (px[i] - mu) * rs * w[i] + b[i] }
                case let (w?, nil): for i in 0..<d { py[i] = (px[i] - mu) * rs * w[i] }
                case let (nil, b?): for i in 0..<d { py[i] = (px[i] - mu) * rs + b[i] }
                case (nil, nil): for i in 0..<d { py[i] = (px[i] - mu) * rs }
                }
            }
        }
    }

    /// Gradients from the saved statistics; any of `dx`, `dweight` (d), `dbias` (d) may be nil to skip it.
    ///
    /// With x̂ = (x − μ)·r and ĝ = g∘w: dx = r·(ĝ − mean(ĝ) − x̂·mean(ĝ∘x̂)) (the mean(ĝ) term only when centred),
    /// dw = Σ_rows g∘x̂, db = Σ_rows g. Each chunk of rows accumulates its own dw/db partials while it computes dx;
    /// the partials are then summed over chunks.
    static func backward<T: TensorScalar>(
        _ x: UnsafePointer<T>, weight: UnsafePointer<T>?, mean: UnsafePointer<T>, rstd: UnsafePointer<T>,
        _ g: UnsafePointer<T>, dx: UnsafeMutablePointer<T>?, dweight: UnsafeMutablePointer<T>?,
        dbias: UnsafeMutablePointer<T>?, rows: Int, d: Int, centered: Bool
    ) {
        let perChunk = rowsPerChunk(d: d)
        let chunks = (rows + perChunk - 1) / perChunk
        let partialW = dweight.map { _ in UnsafeMutablePointer<T>.allocate(capacity: chunks * d) }
        let partialB = dbias.map { _ in UnsafeMutablePointer<T>.allocate(capacity: chunks * d) }
        defer {
            partialW?.deallocate()
            partialB?.deallocate()
        }
        Parallel.forEach(chunks, grain: 1) { range in
            for chunk in range {
                let pw = partialW.map { $0 + chunk * d }, pb = partialB.map { $0 + chunk * d }
                pw?.update(repeating: 0, count: d)
                pb?.update(repeating: 0, count: d)
                for r in (chunk * perChunk)..<Swift.min(rows, (chunk + 1) * perChunk) {
                    let px = x + r * d, pg = g + r * d, mu = mean[r], rs = rstd[r]
                    if let dx {
                        inputGradientRow(px, pg, weight, dx + r * d, d: d, mu: mu, rs: rs, centered: centered)
                    }
                    if let pw { for i in 0..<d { pw[i] += pg[i] * ((px[i] - mu) * rs) } }
                    if let pb { for i in 0..<d { pb[i] += pg[i] } }
                }
            }
        }
        if let dweight, let partialW { sumPartials(partialW, into: dweight, chunks: chunks, d: d) }
        if let dbias, let partialB { sumPartials(partialB, into: dbias, chunks: chunks, d: d) }
    }

    /// dx for one row: r·(ĝ − a − x̂·b) with a = mean(ĝ) (0 when not centred) and b = mean(ĝ∘x̂).
    @inline(__always)
    static func inputGradientRow<T: TensorScalar>(
        _ px: UnsafePointer<T>, _ pg: UnsafePointer<T>, _ weight: UnsafePointer<T>?, _ pd: UnsafeMutablePointer<T>,
        d: Int, mu: T, rs: T, centered: Bool
    ) {
        let vmu = SIMD8<T>(repeating: mu), vrs = SIMD8<T>(repeating: rs)
        let sums: (Double, Double)
        if let w = weight {
            sums = RowMath.accumulate2(
                d,
                { i in
                    let gh = RowMath.load(pg, i) * RowMath.load(w, i)
                    return (gh, gh * ((RowMath.load(px, i) - vmu) * vrs))
                },
                { i in
                    let gh = pg[i] * w[i]
                    return (gh, gh * ((px[i] - mu) * rs))
                })
        } else {
            sums = RowMath.accumulate2(
                d, { i in (RowMath.load(pg, i), RowMath.load(pg, i) * ((RowMath.load(px, i) - vmu) * vrs)) },
                { i in (pg[i], pg[i] * ((px[i] - mu) * rs)) })
        }
        let a = centered ? T(sums.0 / Double(d)) : 0, b = T(sums.1 / Double(d))
        if let w = weight {
            for i in 0..<d { pd[i] = rs * (pg[i] * w[i] - a - (px[i] - mu) * rs * b) }
        } else {
            for i in 0..<d { pd[i] = rs * (pg[i] - a - (px[i] - mu) * rs * b) }
        }
    }

    /// out[c] = Σ_k partials[k·d + c], summed in chunk order.
    static func sumPartials<T: TensorScalar>(
        _ partials: UnsafeMutablePointer<T>, into out: UnsafeMutablePointer<T>, chunks: Int, d: Int
    ) {
        Parallel.forEach(d, grain: 4096) { cols in
            for c in cols { out[c] = 0 }
            for k in 0..<chunks {
                let src = partials + k * d
                for c in cols { out[c] += src[c] }
            }
        }
    }
}
