/// Fused adaLN kernels over a contiguous (rows, d) matrix: the modulated norm
/// y = norm(x)·w·(1 + scale) + shift and the gated residual y = x + gate·branch, forward and backward.
///
/// Modulation rows are read through per-row offsets (`rowOffsets`): row r of x uses the d elements starting at
/// `offsets[r]` of shift, scale or gate. That one mechanism serves per-token modulation (1, L, D) — offsets r·d,
/// as the Goku block's packed modulation — and per-sample (B, 1, D) or (1, 1, D) modulation, where many rows share
/// one offset.
///
/// Each op reads and writes every element once: the row statistics and the row's gradient sums run over a row that
/// stays in L1 (a 1152-wide Float row is 4.6 KB), so main-memory traffic is that of one elementwise pass. Element
/// loops are plain loops over pointers, which LLVM vectorises under the package's `-target-cpu`; the operation order
/// equals the unfused composite's (norm, then ·(1 + scale), then + shift; gate·branch, then x +), so the forward
/// results are bit-identical to it.
enum ModulationKernel {
    /// The element offset in a broadcast operand of shape `operand` (last axis `d`, broadcastable to `shape`) of the
    /// row used by each of the rows of a contiguous tensor of `shape`.
    static func rowOffsets(_ shape: [Int], operand: [Int]) -> [Int] {
        let d = shape.last!
        let rows = shape.reduce(1, *) / Swift.max(d, 1)
        let strides = Shape.broadcastStrides(operand, to: shape)
        let outer = Array(shape.dropLast())
        var offsets = [Int](repeating: 0, count: rows)
        for r in 0..<rows {
            var rem = r, off = 0
            for a in stride(from: outer.count - 1, through: 0, by: -1) {
                off += (rem % outer[a]) * strides[a]
                rem /= outer[a]
            }
            offsets[r] = off
        }
        return offsets
    }

    // MARK: Modulated norm

    /// y = ((x − μ)·r·w)·(1 + scale) + shift per row; writes μ (0 when not `centered`) and r to `mean`/`rstd`.
    static func normForward<T: TensorScalar>(
        _ x: UnsafePointer<T>, weight: UnsafePointer<T>?, shift: UnsafePointer<T>, shiftRows: [Int],
        scale: UnsafePointer<T>, scaleRows: [Int], _ y: UnsafeMutablePointer<T>, mean: UnsafeMutablePointer<T>,
        rstd: UnsafeMutablePointer<T>, rows: Int, d: Int, eps: Double, centered: Bool
    ) {
        Parallel.forEach(rows, grain: Swift.max(1, 8192 / Swift.max(d, 1))) { range in
            for r in range {
                let px = x + r * d, py = y + r * d
                let mu = centered ? T(RowMath.sum(px, d) / Double(d)) : 0
                let variance = RowMath.sumSquaredDeviation(px, d, center: mu) / Double(d)
                let rs = T(1 / (variance + eps).squareRoot())
                mean[r] = mu
                rstd[r] = rs
                let sh = shift + shiftRows[r], sc = scale + scaleRows[r]
                if let w = weight {
                    for i in 0..<d { py[i] = ((px[i] - mu) * rs * w[i]) * (sc[i] + 1) + sh[i] }
                } else {
                    for i in 0..<d { py[i] = ((px[i] - mu) * rs) * (sc[i] + 1) + sh[i] }
                }
            }
        }
    }

    /// Gradients of the modulated norm from the saved statistics. Any output may be nil to skip it.
    ///
    /// With x̂ = (x − μ)·r, n = x̂∘w and d = g∘(1 + scale): dscale (full, one row per x row) = g∘n; the norm sees
    /// the gradient d, so with ĝ = d∘w, dx = r·(ĝ − mean(ĝ) − x̂·mean(ĝ∘x̂)) (the mean(ĝ) term only when centred) and
    /// dw = Σ_rows d∘x̂, summed per chunk of rows and then over chunks in order (deterministic at any thread count).
    /// dshift is g itself, reduced by the caller.
    static func normBackward<T: TensorScalar>(
        _ x: UnsafePointer<T>, weight: UnsafePointer<T>?, scale: UnsafePointer<T>, scaleRows: [Int],
        mean: UnsafePointer<T>, rstd: UnsafePointer<T>, _ g: UnsafePointer<T>, dx: UnsafeMutablePointer<T>?,
        dscale: UnsafeMutablePointer<T>?, dweight: UnsafeMutablePointer<T>?, rows: Int, d: Int, centered: Bool
    ) {
        let perChunk = RowNormKernel.rowsPerChunk(d: d)
        let chunks = (rows + perChunk - 1) / perChunk
        let partialW = dweight.map { _ in UnsafeMutablePointer<T>.allocate(capacity: chunks * d) }
        defer { partialW?.deallocate() }
        Parallel.forEach(chunks, grain: 1) { range in
            for chunk in range {
                let pw = partialW.map { $0 + chunk * d }
                pw?.update(repeating: 0, count: d)
                for r in (chunk * perChunk)..<Swift.min(rows, (chunk + 1) * perChunk) {
                    let px = x + r * d, pg = g + r * d, sc = scale + scaleRows[r]
                    let mu = mean[r], rs = rstd[r]
                    if let ds = dscale.map({ $0 + r * d }) {
                        if let w = weight {
                            for i in 0..<d { ds[i] = pg[i] * ((px[i] - mu) * rs * w[i]) }
                        } else {
                            for i in 0..<d { ds[i] = pg[i] * ((px[i] - mu) * rs) }
                        }
                    }
                    if let pd = dx.map({ $0 + r * d }) {
                        inputGradientRow(px, pg, sc, weight, pd, d: d, mu: mu, rs: rs, centered: centered)
                    }
                    if let pw {
                        for i in 0..<d { pw[i] += (pg[i] * (sc[i] + 1)) * ((px[i] - mu) * rs) }
                    }
                }
            }
        }
        if let dweight, let partialW { RowNormKernel.sumPartials(partialW, into: dweight, chunks: chunks, d: d) }
    }

    /// dx for one row: r·(ĝ − a − x̂·b), ĝ = g∘(1 + scale)∘w, a = mean(ĝ) (0 when not centred), b = mean(ĝ∘x̂).
    @inline(__always)
    static func inputGradientRow<T: TensorScalar>(
        _ px: UnsafePointer<T>, _ pg: UnsafePointer<T>, _ sc: UnsafePointer<T>, _ weight: UnsafePointer<T>?,
        _ pd: UnsafeMutablePointer<T>, d: Int, mu: T, rs: T, centered: Bool
    ) {
        let vmu = SIMD8<T>(repeating: mu), vrs = SIMD8<T>(repeating: rs), one = SIMD8<T>(repeating: 1)
        let sums: (Double, Double)
        if let w = weight {
            sums = RowMath.accumulate2(
                d,
                { i in
                    let gh = RowMath.load(pg, i) * (RowMath.load(sc, i) + one) * RowMath.load(w, i)
                    return (gh, gh * ((RowMath.load(px, i) - vmu) * vrs))
                },
                { i in
                    let gh = pg[i] * (sc[i] + 1) * w[i]
                    return (gh, gh * ((px[i] - mu) * rs))
                })
        } else {
            sums = RowMath.accumulate2(
                d,
                { i in
                    let gh = RowMath.load(pg, i) * (RowMath.load(sc, i) + one)
                    return (gh, gh * ((RowMath.load(px, i) - vmu) * vrs))
                },
                { i in
                    let gh = pg[i] * (sc[i] + 1)
                    return (gh, gh * ((px[i] - mu) * rs))
                })
        }
        let a = centered ? T(sums.0 / Double(d)) : 0, b = T(sums.1 / Double(d))
        if let w = weight {
            for i in 0..<d { pd[i] = rs * (pg[i] * (sc[i] + 1) * w[i] - a - (px[i] - mu) * rs * b) }
        } else {
            for i in 0..<d { pd[i] = rs * (pg[i] * (sc[i] + 1) - a - (px[i] - mu) * rs * b) }
        }
    }

    // MARK: Gated residual

    /// y = x + gate·branch per row.
    static func residualForward<T: TensorScalar>(
        _ x: UnsafePointer<T>, gate: UnsafePointer<T>, gateRows: [Int], branch: UnsafePointer<T>,
        _ y: UnsafeMutablePointer<T>, rows: Int, d: Int
    ) {
        Parallel.forEach(rows, grain: Swift.max(1, 16384 / Swift.max(d, 1))) { range in
            for r in range {
                let px = x + r * d, pb = branch + r * d, py = y + r * d, pgate = gate + gateRows[r]
                for i in 0..<d { py[i] = px[i] + pgate[i] * pb[i] }
            }
        }
    }

    /// dbranch = g·gate and the full (one row per x row) dgate = g∘branch, in one pass; either may be nil.
    static func residualBackward<T: TensorScalar>(
        _ g: UnsafePointer<T>, gate: UnsafePointer<T>, gateRows: [Int], branch: UnsafePointer<T>,
        dbranch: UnsafeMutablePointer<T>?, dgate: UnsafeMutablePointer<T>?, rows: Int, d: Int
    ) {
        Parallel.forEach(rows, grain: Swift.max(1, 16384 / Swift.max(d, 1))) { range in
            for r in range {
                let pg = g + r * d, pb = branch + r * d, pgate = gate + gateRows[r]
                if let db = dbranch.map({ $0 + r * d }) {
                    if let dg = dgate.map({ $0 + r * d }) {
                        for i in 0..<d {
                            let gi = pg[i]
                            db[i] = gi * pgate[i]
                            dg[i] = gi * pb[i]
                        }
                    } else {
                        for i in 0..<d { db[i] = pg[i] * pgate[i] }
                    }
                } else if let dg = dgate.map({ $0 + r * d }) {
                    for i in 0..<d { dg[i] = pg[i] * pb[i] }
                }
            }
        }
    }
}
