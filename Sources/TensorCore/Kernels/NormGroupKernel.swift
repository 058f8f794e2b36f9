/// GroupNorm over a contiguous x viewed as (N, G, C/G, S), S the product of the spatial extents: statistics per
/// (n, g) over its C/G·S elements, which are one contiguous block; then a per-channel affine.
///
/// Each block is one unit of parallel work, forward and backward. Statistics are two-pass (mean, then squared
/// deviations) and accumulate in Float64 across 1024-element blocks (see `RowMath`): a group of a video latent can
/// hold millions of elements.
enum GroupNormKernel {
    /// y = (x − μ)·r·w[c] + b[c]; writes μ and r per (n, g) to `mean` and `rstd` (N·G).
    static func forward<T: TensorScalar>(
        _ x: UnsafePointer<T>, weight: UnsafePointer<T>?, bias: UnsafePointer<T>?, _ y: UnsafeMutablePointer<T>,
        mean: UnsafeMutablePointer<T>, rstd: UnsafeMutablePointer<T>, batch: Int, groups: Int, channelsPerGroup cpg: Int,
        spatial: Int, eps: Double
    ) {
        let m = cpg * spatial
        Parallel.forEach(batch * groups, grain: Swift.max(1, 8192 / Swift.max(m, 1))) { range in
            for block in range {
                let group = block % groups
                let px = x + block * m, py = y + block * m
                let mu = T(RowMath.sum(px, m) / Double(m))
                let variance = RowMath.sumSquaredDeviation(px, m, center: mu) / Double(m)
                let rs = T(1 / (variance + eps).squareRoot())
                mean[block] = mu
                rstd[block] = rs
                for j in 0..<cpg {
                    let c = group * cpg + j
                    let scale = rs * (weight?[c] ?? 1), shift = bias?[c] ?? 0
                    let src = px + j * spatial, dst = py + j * spatial
                    for s in 0..<spatial { dst[s] = (src[s] - mu) * scale + shift }
                }
            }
        }
    }

    /// Gradients from the saved statistics; any of `dx`, `dweight` (C), `dbias` (C) may be nil to skip it.
    ///
    /// Per block, with x̂ = (x − μ)·r, ĝ = g·w[c] and M = C/G·S: dx = r·(ĝ − mean(ĝ) − x̂·mean(ĝ∘x̂)). One pass
    /// per channel gathers Σ_s g and Σ_s g·x̂, from which both means follow (weighted by w[c]) and which are also the
    /// per-(n, c) partials of db and dw; a second pass writes dx. The partials are then summed over n.
    static func backward<T: TensorScalar>(
        _ x: UnsafePointer<T>, weight: UnsafePointer<T>?, mean: UnsafePointer<T>, rstd: UnsafePointer<T>,
        _ g: UnsafePointer<T>, dx: UnsafeMutablePointer<T>?, dweight: UnsafeMutablePointer<T>?,
        dbias: UnsafeMutablePointer<T>?, batch: Int, groups: Int, channelsPerGroup cpg: Int, spatial: Int
    ) {
        let m = cpg * spatial, channels = groups * cpg
        // Indexed n·C + c, which is block·cpg + j since block = n·G + g.
        let sumG = UnsafeMutablePointer<Double>.allocate(capacity: batch * channels)
        let sumGX = UnsafeMutablePointer<Double>.allocate(capacity: batch * channels)
        defer {
            sumG.deallocate()
            sumGX.deallocate()
        }
        Parallel.forEach(batch * groups, grain: Swift.max(1, 8192 / Swift.max(m, 1))) { range in
            for block in range {
                let group = block % groups, mu = mean[block], rs = rstd[block]
                let vmu = SIMD8<T>(repeating: mu), vrs = SIMD8<T>(repeating: rs)
                var weightedG = 0.0, weightedGX = 0.0
                for j in 0..<cpg {
                    let px = x + block * m + j * spatial, pg = g + block * m + j * spatial
                    let (a, b) = RowMath.accumulate2(
                        spatial,
                        { i in
                            let gi = RowMath.load(pg, i)
                            return (gi, gi * ((RowMath.load(px, i) - vmu) * vrs))
                        },
                        { i in (pg[i], pg[i] * ((px[i] - mu) * rs)) })
                    sumG[block * cpg + j] = a
                    sumGX[block * cpg + j] = b
                    let w = weight.map { Double($0[group * cpg + j]) } ?? 1
                    weightedG += w * a
                    weightedGX += w * b
                }
                guard let dx else { continue }
                let a = T(weightedG / Double(m)), b = T(weightedGX / Double(m))
                for j in 0..<cpg {
                    let w = weight?[group * cpg + j] ?? 1
                    let offset = block * m + j * spatial
                    let px = x + offset, pg = g + offset, pd = dx + offset
                    for s in 0..<spatial { pd[s] = rs * (pg[s] * w - a - (px[s] - mu) * rs * b) }
                }
            }
        }
        for c in 0..<channels {
            var w = 0.0, b = 0.0
            for n in 0..<batch {
                w += sumGX[n * channels + c]
                b += sumG[n * channels + c]
            }
            dweight?[c] = T(w)
            dbias?[c] = T(b)
        }
    }
}
