/// Fused scaled dot-product attention in the style of FlashAttention: the score matrix is never materialised.
///
/// Forward: the queries of one (batch, head) are cut into blocks of `queryBlock` rows; each block walks the keys it
/// may see in tiles of `keyBlock`, computing the scores S = scale·Q·Kᵀ of the tile, folding them into a running row
/// maximum m and row sum l (online softmax: earlier partial results are rescaled by exp(m_old − m_new)), and
/// accumulating P·V. The output is acc / l, and the row's logsumexp m + log l is saved, (B, Nh, Lq), so that the
/// backward pass can recompute P = exp(S − lse) tile by tile. See `AttentionKernel+Backward.swift` for the backward.
///
/// Tiles are multiplied by the hand-written panels of `AttentionTile` (measured faster than BLAS here; numbers there),
/// reading q, k and v in place with leading dimension Nh·Dh. Work items are (batch, head, query block), dealt
/// round-robin over the pool.
///
/// A row that sees no key keeps m = −∞ and l = 0: it outputs zeros and saves lse = +∞, which makes every recomputed
/// probability exp(S − ∞) = 0, so its gradients are zero too.
enum AttentionKernel {
    /// Query rows per block (rows of the score tile).
    static let queryBlock = 128
    /// Keys per tile (columns of the score tile).
    static let keyBlock = 256

    /// Pointers of one forward call.
    struct ForwardOperands<T: TensorScalar> {
        let q: UnsafeMutablePointer<T>, k: UnsafeMutablePointer<T>, v: UnsafeMutablePointer<T>
        let out: UnsafeMutablePointer<T>
        /// (B, Nh, Lq).
        let logSumExp: UnsafeMutablePointer<T>
    }

    /// Runs the forward pass.
    /// - Returns: the output (B, Lq, Nh, Dh) and the per-row logsumexp (B, Nh, Lq).
    static func forward(_ plan: AttentionPlan, q: Tensor, k: Tensor, v: Tensor) -> (out: Tensor, logSumExp: Tensor) {
        let out = Tensor(uninitializedShape: q.shape, dtype: q.dtype)
        let logSumExp = Tensor(uninitializedShape: [plan.batch, plan.heads, plan.queryCount], dtype: q.dtype)
        func run<T: TensorScalar>(_: T.Type) {
            let io = ForwardOperands(
                q: q.storage.pointer(as: T.self), k: k.storage.pointer(as: T.self), v: v.storage.pointer(as: T.self),
                out: out.storage.pointer(as: T.self), logSumExp: logSumExp.storage.pointer(as: T.self))
            if let io = io as? ForwardOperands<Float>, plan.bfloat16 && packedBFloat16Active {
                forwardPacked(plan, io)
            } else {
                forward(plan, io)
            }
        }
        if q.dtype == .float64 { run(Double.self) } else { run(Float.self) }
        return (out, logSumExp)
    }

    private static func forward<T: TensorScalar>(_ plan: AttentionPlan, _ io: ForwardOperands<T>) {
        let blocks = plan.queryBlocks(size: queryBlock)
        let heads = plan.batch * plan.heads
        distribute(heads * blocks.count) { items in
            let dh = plan.headDim
            let scratch = UnsafeMutablePointer<T>.allocate(capacity: queryBlock * (keyBlock + dh + 2) + keyBlock * dh)
            defer { scratch.deallocate() }
            for item in items {
                let bh = item / blocks.count, block = blocks[item % blocks.count]
                forwardBlock(
                    plan, io, batch: bh / plan.heads, head: bh % plan.heads, queries: block.queries,
                    keys: plan.segments[block.segment].keys, scratch: scratch)
            }
        }
    }

    /// One query block against its visible keys.
    /// - Parameter scratch: queryBlock·(keyBlock + Dh + 2) elements.
    private static func forwardBlock<T: TensorScalar>(
        _ plan: AttentionPlan, _ io: ForwardOperands<T>, batch b: Int, head h: Int, queries: Range<Int>,
        keys: Range<Int>, scratch: UnsafeMutablePointer<T>
    ) {
        let dh = plan.headDim, rs = plan.rowStride, rows = queries.count
        let scale = T(plan.scale)
        let tile = scratch  // rows × cols scores, then probabilities
        let acc = tile + queryBlock * keyBlock  // rows × Dh, unnormalised output
        let rowMax = acc + queryBlock * dh, rowSum = rowMax + queryBlock
        let transposed = rowSum + queryBlock  // Dh × keyBlock, for products with a transposed operand
        acc.update(repeating: 0, count: rows * dh)
        rowMax.update(repeating: -.infinity, count: rows)
        rowSum.update(repeating: 0, count: rows)
        let qOffset = ((b * plan.queryCount + queries.lowerBound) * plan.heads + h) * dh
        for k0 in stride(from: keys.lowerBound, to: keys.upperBound, by: keyBlock) {
            let cols = min(keyBlock, keys.upperBound - k0)
            let kept = plan.keptCount(b, k0..<k0 + cols)
            if kept == 0 { continue }
            let kOffset = ((b * plan.keyCount + k0) * plan.heads + h) * dh
            AttentionTile.product(
                transA: false, transB: true, m: rows, n: cols, k: dh, alpha: scale, a: io.q + qOffset, lda: rs,
                b: io.k + kOffset, ldb: rs, accumulate: false, c: tile, ldc: cols, scratch: transposed, bfloat16: plan.bfloat16)
            if kept < cols {
                plan.keep.withUnsafeBufferPointer {
                    AttentionMath.fillMasked(
                        tile, rows: rows, cols: cols, keep: $0.baseAddress! + b * plan.keyCount + k0, value: -.infinity)
                }
            }
            AttentionMath.onlineSoftmax(tile, rows: rows, cols: cols, rowMax: rowMax, rowSum: rowSum, acc: acc, dh: dh)
            AttentionTile.product(
                transA: false, transB: false, m: rows, n: dh, k: cols, alpha: 1, a: tile, lda: cols,
                b: io.v + kOffset, ldb: rs, accumulate: true, c: acc, ldc: dh, scratch: transposed, bfloat16: plan.bfloat16)
        }
        let lse = io.logSumExp + (b * plan.heads + h) * plan.queryCount + queries.lowerBound
        finishRows(
            out: io.out + qOffset, rowStride: rs, logSumExp: lse, acc: acc, rowMax: rowMax, rowSum: rowSum, rows: rows,
            dh: dh)
    }

    /// The end of a query block: each row's output acc / l and its logsumexp m + log l, or zeros and +∞ for a row
    /// that saw no key (l = 0).
    @inline(__always)
    static func finishRows<T: TensorScalar>(
        out: UnsafeMutablePointer<T>, rowStride: Int, logSumExp lse: UnsafeMutablePointer<T>,
        acc: UnsafePointer<T>, rowMax: UnsafePointer<T>, rowSum: UnsafePointer<T>, rows: Int, dh: Int
    ) {
        for i in 0..<rows {
            let o = out + i * rowStride, a = acc + i * dh
            if rowSum[i] == 0 {
                o.update(repeating: 0, count: dh)
                lse[i] = .infinity
            } else {
                let inverse = 1 / rowSum[i]
                for d in 0..<dh { o[d] = a[d] * inverse }
                lse[i] = rowMax[i] + T.log(rowSum[i])
            }
        }
    }

    /// Calls `body` once per worker thread with the work items it owns: 0..<count dealt round-robin, so that items of
    /// uneven cost (segments of different lengths) spread evenly. Each call may set up its own scratch.
    static func distribute(_ count: Int, _ body: (StrideTo<Int>) -> Void) {
        if count <= 0 { return }
        let workers = min(Parallel.threadCount, count)
        Parallel.forEach(workers, grain: 1) { range in
            for w in range { body(stride(from: w, to: count, by: workers)) }
        }
    }
}
