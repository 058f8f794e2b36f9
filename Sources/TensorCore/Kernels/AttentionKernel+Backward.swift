/// The backward pass of `AttentionKernel`, recomputing the probabilities tile by tile from the saved logsumexp.
///
/// With D = rowsum(dO∘O), for every (key tile, query tile) pair:
///   P = exp(scale·Q·Kᵀ − lse);  dV += Pᵀ·dO;  dP = dO·Vᵀ;  dS = P∘(dP − D);
///   dQ += scale·dS·K;  dK += scale·dSᵀ·Q.
/// Work is partitioned by (batch, head, segment): such an item owns its rows of dQ, dK and dV outright, so
/// accumulating straight into the (zeroed) outputs needs no locks and no reduction. The cost is parallelism of at
/// most B·Nh·segments items, plenty for the multi-head shapes this engine trains (Nh = 16 on a few cores).
extension AttentionKernel {
    /// Pointers of one backward call.
    struct BackwardOperands<T: TensorScalar> {
        let q: UnsafeMutablePointer<T>, k: UnsafeMutablePointer<T>, v: UnsafeMutablePointer<T>
        let out: UnsafeMutablePointer<T>, logSumExp: UnsafeMutablePointer<T>
        let gradOut: UnsafeMutablePointer<T>
        let gradQ: UnsafeMutablePointer<T>, gradK: UnsafeMutablePointer<T>, gradV: UnsafeMutablePointer<T>
        let needQ: Bool, needK: Bool, needV: Bool
    }

    /// Gradients of q, k and v given the gradient of the output. Those not in `need` come back as zeros untouched
    /// by the kernel (callers drop them).
    /// - Parameters:
    ///   - out: the forward output (B, Lq, Nh, Dh); `logSumExp` the saved (B, Nh, Lq).
    ///   - gradOut: (B, Lq, Nh, Dh).
    static func backward(
        _ plan: AttentionPlan, q: Tensor, k: Tensor, v: Tensor, out: Tensor, logSumExp: Tensor, gradOut: Tensor,
        need: (q: Bool, k: Bool, v: Bool)
    ) -> (q: Tensor, k: Tensor, v: Tensor) {
        precondition(gradOut.shape == out.shape, "attention backward: gradient \(gradOut.shape) ≠ output \(out.shape)")
        let g = gradOut.dtype == out.dtype ? gradOut : gradOut.to(out.dtype)
        let gq = Tensor.zeros(like: q), gk = Tensor.zeros(like: k), gv = Tensor.zeros(like: v)
        func run<T: TensorScalar>(_: T.Type) {
            let io = BackwardOperands(
                q: q.storage.pointer(as: T.self), k: k.storage.pointer(as: T.self), v: v.storage.pointer(as: T.self),
                out: out.storage.pointer(as: T.self), logSumExp: logSumExp.storage.pointer(as: T.self),
                gradOut: g.storage.pointer(as: T.self), gradQ: gq.storage.pointer(as: T.self),
                gradK: gk.storage.pointer(as: T.self), gradV: gv.storage.pointer(as: T.self),
                needQ: need.q, needK: need.k, needV: need.v)
            if let io = io as? BackwardOperands<Float>, plan.bfloat16 && packedBFloat16Active {
                backwardPacked(plan, io)
            } else {
                backward(plan, io)
            }
        }
        if q.dtype == .float64 { run(Double.self) } else { run(Float.self) }
        return (gq, gk, gv)
    }

    private static func backward<T: TensorScalar>(_ plan: AttentionPlan, _ io: BackwardOperands<T>) {
        let segments = plan.segments.filter { !$0.queries.isEmpty && !$0.keys.isEmpty }
        let heads = plan.batch * plan.heads
        let longest = segments.map(\.queries.count).max() ?? 0
        distribute(heads * segments.count) { items in
            let scratch = UnsafeMutablePointer<T>.allocate(capacity: 2 * queryBlock * keyBlock + plan.headDim * keyBlock + longest)
            defer { scratch.deallocate() }
            for item in items {
                let bh = item / segments.count
                backwardSegment(
                    plan, io, batch: bh / plan.heads, head: bh % plan.heads,
                    segment: segments[item % segments.count], scratch: scratch)
            }
        }
    }

    /// All gradients of one (batch, head, segment).
    /// - Parameter scratch: 2·queryBlock·keyBlock + (segment's query count) elements.
    private static func backwardSegment<T: TensorScalar>(
        _ plan: AttentionPlan, _ io: BackwardOperands<T>, batch b: Int, head h: Int, segment: AttentionPlan.Segment,
        scratch: UnsafeMutablePointer<T>
    ) {
        let dh = plan.headDim, rs = plan.rowStride
        let scale = T(plan.scale)
        let probabilities = scratch, gradScores = scratch + queryBlock * keyBlock
        let transposed = gradScores + queryBlock * keyBlock  // Dh × keyBlock, for products with a transposed operand
        let delta = transposed + dh * keyBlock  // D, indexed from the segment's first query
        let queries = segment.queries, keys = segment.keys
        func queryOffset(_ i: Int) -> Int { ((b * plan.queryCount + i) * plan.heads + h) * dh }
        for i in queries {
            delta[i - queries.lowerBound] = AttentionMath.dot(io.gradOut + queryOffset(i), io.out + queryOffset(i), dh)
        }
        let lse = io.logSumExp + (b * plan.heads + h) * plan.queryCount
        let needScores = io.needQ || io.needK
        for k0 in stride(from: keys.lowerBound, to: keys.upperBound, by: keyBlock) {
            let cols = min(keyBlock, keys.upperBound - k0)
            let kept = plan.keptCount(b, k0..<k0 + cols)
            if kept == 0 { continue }
            let kOffset = ((b * plan.keyCount + k0) * plan.heads + h) * dh
            for q0 in stride(from: queries.lowerBound, to: queries.upperBound, by: queryBlock) {
                let rows = min(queryBlock, queries.upperBound - q0)
                let qOffset = queryOffset(q0)
                let p = probabilities, ds = gradScores
                AttentionTile.product(
                    transA: false, transB: true, m: rows, n: cols, k: dh, alpha: scale, a: io.q + qOffset, lda: rs,
                    b: io.k + kOffset, ldb: rs, accumulate: false, c: p, ldc: cols, scratch: transposed, bfloat16: plan.bfloat16)
                AttentionMath.probabilities(p, rows: rows, cols: cols, logSumExp: lse + q0)
                if kept < cols {
                    plan.keep.withUnsafeBufferPointer {
                        AttentionMath.fillMasked(
                            p, rows: rows, cols: cols, keep: $0.baseAddress! + b * plan.keyCount + k0, value: 0)
                    }
                }
                if io.needV {
                    AttentionTile.product(
                        transA: true, transB: false, m: cols, n: dh, k: rows, alpha: 1, a: p, lda: cols,
                        b: io.gradOut + qOffset, ldb: rs, accumulate: true, c: io.gradV + kOffset, ldc: rs, scratch: transposed, bfloat16: plan.bfloat16)
                }
                if !needScores { continue }
                AttentionTile.product(
                    transA: false, transB: true, m: rows, n: cols, k: dh, alpha: 1, a: io.gradOut + qOffset, lda: rs,
                    b: io.v + kOffset, ldb: rs, accumulate: false, c: ds, ldc: cols, scratch: transposed, bfloat16: plan.bfloat16)
                AttentionMath.scoreGradient(ds, probabilities: p, rows: rows, cols: cols, delta: delta + q0 - queries.lowerBound)
                if io.needQ {
                    AttentionTile.product(
                        transA: false, transB: false, m: rows, n: dh, k: cols, alpha: scale, a: ds, lda: cols,
                        b: io.k + kOffset, ldb: rs, accumulate: true, c: io.gradQ + qOffset, ldc: rs, scratch: transposed, bfloat16: plan.bfloat16)
                }
                if io.needK {
                    AttentionTile.product(
                        transA: true, transB: false, m: cols, n: dh, k: rows, alpha: scale, a: ds, lda: cols,
                        b: io.q + qOffset, ldb: rs, accumulate: true, c: io.gradK + kOffset, ldc: rs, scratch: transposed, bfloat16: plan.bfloat16)
                }
            }
        }
    }
}
