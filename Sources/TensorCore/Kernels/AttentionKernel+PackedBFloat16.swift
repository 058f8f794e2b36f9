import CKernels

/// The bfloat16 path of `AttentionKernel` on AVX-512 BF16 (or AMX tiles where turned on), with every operand packed
/// once.
///
/// The general bf16 path (`AttentionTile.product` with `bfloat16`) rounds and packs both operands of every tile
/// product: a block of Q is packed again for each key tile, a tile of K and V again for each query block, and the
/// probabilities and score gradients are written in Float32 only to be read back and converted. Here Q, K, V and dO of
/// one (batch, head, segment) are rounded and packed once, into the layouts the micro-kernel reads, and the softmax
/// row work writes P and dS as bfloat16 pairs directly (`goku_attention_softmax_tile_bf16`,
/// `goku_attention_probabilities_bf16`, `goku_attention_score_gradient_bf16`). The products are then pure
/// multiply-adds (`goku_bf16_packed_product`). Rounding, products and accumulation order are those of the general
/// path, so the two give the same numbers (tested).
///
/// Layouts, per (batch, head, segment), with P = ⌈Dh/2⌉ pairs of the head dimension (`PackedLayout`):
/// - rows: [token][pair of d], stride P rounded up to 16, rows padded to a multiple of 16 — op(A) of Q·Kᵀ (Q) and of
///   dO·Vᵀ (dO);
/// - columns: [pair of d][token], P rounded up to 16 pair rows, stride the token count rounded up to 32 — op(B) of Q·Kᵀ
///   (K) and of dO·Vᵀ (V);
/// - pairs: [pair of tokens][d], stride Dh rounded up to 32 — op(B) of P·V (V) and of dS·K (K);
/// - transposed pairs: [d][pair of tokens], Dh rounded up to 16 rows — op(A) of dVᵀ = dOᵀ·P (dO) and dKᵀ = Qᵀ·dS (Q),
///   accumulated per key tile in Float32 scratch and transposed into dV and dK when the tile's queries are done.
/// Token pairs count from the segment's first token, and tiles start at even offsets from it (blocks of 128 and 256),
/// so a tile's pairs never straddle two tiles. Every A is pair-contiguous and every padding pair is zero, so the same
/// operands feed AMX tiles (`goku_bf16_packed_product` switches where `GOKU_ATTENTION_AMX=1` and the CPU has them).
///
/// Work: the forward's items are (batch, head, segment, chunk of query blocks), with K and V packed per item and
/// chunks only as many as keep every thread busy; the backward's items are (batch, head, segment), as in the general
/// path, with the queries' operands packed once per item and the keys' once per key tile. Scratch is per worker thread
/// (about 3.5 MB at 4096 tokens and Dh 72).
extension AttentionKernel {
    /// Whether a bf16 plan runs here now: asked for (`AttentionTile.packsBFloat16Operands`) and AVX-512 BF16 present.
    static var packedBFloat16Active: Bool { AttentionTile.packsBFloat16Operands && AttentionTile.hasBFloat16 }

    /// Sizes of the packed layouts for one head size (pair counts rounded up to 16 where AMX tiles read them).
    struct PackedLayout {
        /// Pairs along the head dimension.
        let dimPairs: Int
        /// Row stride of the `rows` layout and pair rows of the `columns` layout: `dimPairs` rounded up to 16.
        let dimStride: Int
        /// Row stride of the `pairs` layout: Dh rounded up to 32 (the micro-kernel reads 32 columns at a time).
        let pairStride: Int
        /// Rows of the `transposed pairs` layout: Dh rounded up to 16.
        let transposedRows: Int

        init(headDim: Int) {
            dimPairs = (headDim + 1) / 2
            dimStride = roundUp(dimPairs, 16)
            pairStride = roundUp(headDim, 32)
            transposedRows = roundUp(headDim, 16)
        }

        func rowsCount(_ tokens: Int) -> Int { roundUp(tokens, 16) * dimStride }
        func columnsStride(_ tokens: Int) -> Int { roundUp(tokens, 32) }
        func columnsCount(_ tokens: Int) -> Int { dimStride * columnsStride(tokens) }
        func pairRows(_ tokens: Int) -> Int { roundUp((tokens + 1) / 2, 16) }
        func pairsCount(_ tokens: Int) -> Int { pairRows(tokens) * pairStride }
        func transposedStride(_ tokens: Int) -> Int { pairRows(tokens) }
        func transposedCount(_ tokens: Int) -> Int { transposedRows * transposedStride(tokens) }
    }

    @inline(__always)
    static func roundUp(_ x: Int, _ multiple: Int) -> Int { (x + multiple - 1) / multiple * multiple }

    // MARK: - Packing one head's tokens

    /// `count` tokens from `src` (row stride `ld`), as rows; padding rows zero.
    @inline(__always)
    private static func packRows(
        _ dst: UnsafeMutablePointer<UInt32>, _ layout: PackedLayout, _ src: UnsafePointer<Float>, ld: Int, count: Int,
        dh: Int
    ) {
        goku_bf16_pack_rows(
            dst, Int32(layout.dimStride), Int32(count), Int32(roundUp(count, 16)), src, Int32(ld), Int32(dh))
    }

    /// As columns; the pair rows past `dimPairs` zero.
    @inline(__always)
    private static func packColumns(
        _ dst: UnsafeMutablePointer<UInt32>, _ layout: PackedLayout, _ src: UnsafePointer<Float>, ld: Int, count: Int,
        dh: Int
    ) {
        let stride = layout.columnsStride(count)
        goku_bf16_pack_columns(dst, Int32(stride), Int32(layout.dimPairs), src, Int32(ld), Int32(count), Int32(dh))
        (dst + layout.dimPairs * stride).update(repeating: 0, count: (layout.dimStride - layout.dimPairs) * stride)
    }

    /// As pairs; the pair rows past the last token's zero.
    @inline(__always)
    private static func packPairs(
        _ dst: UnsafeMutablePointer<UInt32>, _ layout: PackedLayout, _ src: UnsafePointer<Float>, ld: Int, count: Int,
        dh: Int
    ) {
        let pairs = (count + 1) / 2
        goku_bf16_pack_pairs(dst, Int32(layout.pairStride), Int32(pairs), src, Int32(ld), Int32(count), Int32(dh))
        (dst + pairs * layout.pairStride).update(
            repeating: 0, count: (layout.pairRows(count) - pairs) * layout.pairStride)
    }

    /// As transposed pairs; the rows past Dh zero.
    @inline(__always)
    private static func packTransposedPairs(
        _ dst: UnsafeMutablePointer<UInt32>, _ layout: PackedLayout, _ src: UnsafePointer<Float>, ld: Int, count: Int,
        dh: Int
    ) {
        let stride = layout.transposedStride(count)
        goku_bf16_pack_pairs_transposed(dst, Int32(stride), Int32(dh), src, Int32(ld), Int32(count))
        (dst + dh * stride).update(repeating: 0, count: (layout.transposedRows - dh) * stride)
    }

    /// C (+)= alpha·op(A)·op(B) on packed operands (see `goku_bf16_packed_product`).
    @inline(__always)
    private static func product(
        m: Int, n: Int, pairs: Int, a: UnsafePointer<UInt32>, aPair: Int, aRow: Int, b: UnsafePointer<UInt32>,
        bStride: Int, alpha: Float, accumulate: Bool, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        let done = goku_bf16_packed_product(
            Int32(m), Int32(n), Int32(pairs), a, Int32(aPair), Int32(aRow), b, Int32(bStride), alpha, accumulate, c,
            Int32(ldc))
        precondition(done, "attention: the packed bf16 products need AVX-512 BF16")
    }

    // MARK: - Forward

    static func forwardPacked(_ plan: AttentionPlan, _ io: ForwardOperands<Float>) {
        let layout = PackedLayout(headDim: plan.headDim)
        let heads = plan.batch * plan.heads
        // Segments whose queries see no key still get items: their rows output zeros (and save lse = +∞).
        let segments = plan.segments.enumerated().filter { !$0.element.queries.isEmpty }
        // Chunks of query blocks per (head, segment): enough items for every thread to have a few.
        let wanted = max(1, (4 * Parallel.threadCount + heads * segments.count - 1) / max(1, heads * segments.count))
        var items: [(bh: Int, segment: Int, queries: Range<Int>)] = []
        for bh in 0..<heads {
            for (s, segment) in segments {
                let blocks = (segment.queries.count + queryBlock - 1) / queryBlock
                let chunks = min(wanted, blocks), perChunk = (blocks + chunks - 1) / chunks
                for start in stride(from: 0, to: blocks, by: perChunk) {
                    let lo = segment.queries.lowerBound + start * queryBlock
                    let hi = min(segment.queries.upperBound, lo + perChunk * queryBlock)
                    items.append((bh, s, lo..<hi))
                }
            }
        }
        let longestKeys = segments.map(\.element.keys.count).max() ?? 0
        let dh = plan.headDim
        distribute(items.count) { mine in
            let keysColumns = UnsafeMutablePointer<UInt32>.allocate(capacity: layout.columnsCount(longestKeys))
            let valuePairs = UnsafeMutablePointer<UInt32>.allocate(capacity: layout.pairsCount(longestKeys))
            let queryRows = UnsafeMutablePointer<UInt32>.allocate(capacity: layout.rowsCount(queryBlock))
            let probabilities = UnsafeMutablePointer<UInt32>.allocate(capacity: queryBlock * keyBlock / 2)
            let floats = UnsafeMutablePointer<Float>.allocate(capacity: queryBlock * (keyBlock + dh + 2))
            defer {
                for p in [keysColumns, valuePairs, queryRows, probabilities] { p.deallocate() }
                floats.deallocate()
            }
            var packedFor: (bh: Int, segment: Int)? = nil
            for index in mine {
                let item = items[index]
                let b = item.bh / plan.heads, h = item.bh % plan.heads
                let keys = plan.segments[item.segment].keys
                if !keys.isEmpty && (packedFor?.bh != item.bh || packedFor?.segment != item.segment) {
                    let k0 = UnsafePointer(io.k + ((b * plan.keyCount + keys.lowerBound) * plan.heads + h) * dh)
                    let v0 = UnsafePointer(io.v + ((b * plan.keyCount + keys.lowerBound) * plan.heads + h) * dh)
                    packColumns(keysColumns, layout, k0, ld: plan.rowStride, count: keys.count, dh: dh)
                    packPairs(valuePairs, layout, v0, ld: plan.rowStride, count: keys.count, dh: dh)
                    packedFor = (item.bh, item.segment)
                }
                for q0 in stride(from: item.queries.lowerBound, to: item.queries.upperBound, by: queryBlock) {
                    forwardPackedBlock(
                        plan, io, layout, batch: b, head: h, queries: q0..<min(q0 + queryBlock, item.queries.upperBound),
                        keys: keys, keysColumns: keysColumns, valuePairs: valuePairs, queryRows: queryRows,
                        probabilities: probabilities, floats: floats)
                }
            }
        }
    }

    /// One query block against its segment's packed keys and values.
    private static func forwardPackedBlock(
        _ plan: AttentionPlan, _ io: ForwardOperands<Float>, _ layout: PackedLayout, batch b: Int, head h: Int,
        queries: Range<Int>, keys: Range<Int>, keysColumns: UnsafePointer<UInt32>, valuePairs: UnsafePointer<UInt32>,
        queryRows: UnsafeMutablePointer<UInt32>, probabilities: UnsafeMutablePointer<UInt32>,
        floats: UnsafeMutablePointer<Float>
    ) {
        let dh = plan.headDim, rs = plan.rowStride, rows = queries.count
        let tile = floats, acc = tile + queryBlock * keyBlock
        let rowMax = acc + queryBlock * dh, rowSum = rowMax + queryBlock
        acc.update(repeating: 0, count: rows * dh)
        rowMax.update(repeating: -.infinity, count: rows)
        rowSum.update(repeating: 0, count: rows)
        let qOffset = ((b * plan.queryCount + queries.lowerBound) * plan.heads + h) * dh
        packRows(queryRows, layout, io.q + qOffset, ld: rs, count: rows, dh: dh)
        let keysStride = layout.columnsStride(keys.count), pStride = keyBlock / 2
        for k0 in stride(from: keys.lowerBound, to: keys.upperBound, by: keyBlock) {
            let cols = min(keyBlock, keys.upperBound - k0)
            let kept = plan.keptCount(b, k0..<k0 + cols)
            if kept == 0 { continue }
            let offset = k0 - keys.lowerBound
            product(
                m: rows, n: cols, pairs: layout.dimPairs, a: queryRows, aPair: 1, aRow: layout.dimStride,
                b: keysColumns + offset, bStride: keysStride, alpha: Float(plan.scale), accumulate: false, c: tile,
                ldc: cols)
            if kept < cols {
                plan.keep.withUnsafeBufferPointer {
                    AttentionMath.fillMasked(
                        tile, rows: rows, cols: cols, keep: $0.baseAddress! + b * plan.keyCount + k0, value: -.infinity)
                }
            }
            _ = goku_attention_softmax_tile_bf16(
                tile, Int32(rows), Int32(cols), rowMax, rowSum, acc, Int32(dh), probabilities, Int32(pStride))
            product(
                m: rows, n: dh, pairs: (cols + 1) / 2, a: probabilities, aPair: 1, aRow: pStride,
                b: valuePairs + offset / 2 * layout.pairStride, bStride: layout.pairStride, alpha: 1, accumulate: true,
                c: acc, ldc: dh)
        }
        let lse = io.logSumExp + (b * plan.heads + h) * plan.queryCount + queries.lowerBound
        finishRows(
            out: io.out + qOffset, rowStride: rs, logSumExp: lse, acc: acc, rowMax: rowMax, rowSum: rowSum, rows: rows,
            dh: dh)
    }

    // MARK: - Backward

    /// One worker's packed operands and tiles for the backward pass, sized for the longest segment.
    private struct BackwardScratch {
        let queryRows, gradRows, keysColumns, valuesColumns, keyPairs: UnsafeMutablePointer<UInt32>
        /// dOᵀ and Qᵀ, the A operands of dVᵀ and dKᵀ.
        let gradTransposed, queryTransposed: UnsafeMutablePointer<UInt32>
        /// P and dS as pairs along the queries ([pair of queries][key], stride keyBlock), dS as pairs along the keys.
        let probabilityPairs, scorePairs, scoreRows: UnsafeMutablePointer<UInt32>
        /// P and dP (queryBlock × keyBlock each), D for the segment's queries, then dVᵀ and dKᵀ of one key tile
        /// (Dh × keyBlock each).
        let floats: UnsafeMutablePointer<Float>

        init(_ layout: PackedLayout, queries: Int, headDim: Int) {
            func words(_ n: Int) -> UnsafeMutablePointer<UInt32> { .allocate(capacity: n) }
            queryRows = words(layout.rowsCount(queries))
            gradRows = words(layout.rowsCount(queries))
            keysColumns = words(layout.columnsCount(keyBlock))
            valuesColumns = words(layout.columnsCount(keyBlock))
            keyPairs = words(layout.pairsCount(keyBlock))
            gradTransposed = words(layout.transposedCount(queries))
            queryTransposed = words(layout.transposedCount(queries))
            probabilityPairs = words(queryBlock / 2 * keyBlock)
            scorePairs = words(queryBlock / 2 * keyBlock)
            scoreRows = words(queryBlock * keyBlock / 2)
            floats = .allocate(capacity: 2 * queryBlock * keyBlock + queries + 2 * headDim * keyBlock)
        }

        func deallocate() {
            for p in [
                queryRows, gradRows, keysColumns, valuesColumns, keyPairs, gradTransposed, queryTransposed,
                probabilityPairs, scorePairs, scoreRows,
            ] { p.deallocate() }
            floats.deallocate()
        }
    }

    static func backwardPacked(_ plan: AttentionPlan, _ io: BackwardOperands<Float>) {
        let layout = PackedLayout(headDim: plan.headDim)
        let segments = plan.segments.filter { !$0.queries.isEmpty && !$0.keys.isEmpty }
        let heads = plan.batch * plan.heads
        let longestQueries = segments.map(\.queries.count).max() ?? 0
        distribute(heads * segments.count) { items in
            let scratch = BackwardScratch(layout, queries: longestQueries, headDim: plan.headDim)
            defer { scratch.deallocate() }
            for item in items {
                let bh = item / segments.count
                backwardPackedSegment(
                    plan, io, layout, batch: bh / plan.heads, head: bh % plan.heads,
                    segment: segments[item % segments.count], scratch: scratch)
            }
        }
    }

    /// All gradients of one (batch, head, segment) from its packed operands: the queries' operands packed once for
    /// the segment, the keys' once per key tile. dV and dK of a key tile accumulate transposed (Dh × keys: the
    /// products' A is then dOᵀ or Qᵀ, pair-contiguous, and the head dimension fills whole row blocks) and are
    /// transposed into their rows when the tile's query loop ends.
    private static func backwardPackedSegment(
        _ plan: AttentionPlan, _ io: BackwardOperands<Float>, _ layout: PackedLayout, batch b: Int, head h: Int,
        segment: AttentionPlan.Segment, scratch s: BackwardScratch
    ) {
        let dh = plan.headDim, rs = plan.rowStride, scale = Float(plan.scale)
        let queries = segment.queries, keys = segment.keys, nq = queries.count
        let p = s.floats, dp = p + queryBlock * keyBlock, delta = dp + queryBlock * keyBlock
        let gradVT = delta + nq, gradKT = gradVT + dh * keyBlock
        func queryOffset(_ i: Int) -> Int { ((b * plan.queryCount + i) * plan.heads + h) * dh }
        for i in queries {
            delta[i - queries.lowerBound] = AttentionMath.dot(io.gradOut + queryOffset(i), io.out + queryOffset(i), dh)
        }
        let needScores = io.needQ || io.needK
        let qPointer = UnsafePointer(io.q + queryOffset(queries.lowerBound))
        let gPointer = UnsafePointer(io.gradOut + queryOffset(queries.lowerBound))
        packRows(s.queryRows, layout, qPointer, ld: rs, count: nq, dh: dh)
        if io.needV { packTransposedPairs(s.gradTransposed, layout, gPointer, ld: rs, count: nq, dh: dh) }
        if needScores { packRows(s.gradRows, layout, gPointer, ld: rs, count: nq, dh: dh) }
        if io.needK { packTransposedPairs(s.queryTransposed, layout, qPointer, ld: rs, count: nq, dh: dh) }
        let transposedStride = layout.transposedStride(nq), rowsStride = keyBlock / 2
        let lse = io.logSumExp + (b * plan.heads + h) * plan.queryCount
        for k0 in stride(from: keys.lowerBound, to: keys.upperBound, by: keyBlock) {
            let cols = min(keyBlock, keys.upperBound - k0)
            let kept = plan.keptCount(b, k0..<k0 + cols)
            if kept == 0 { continue }
            let kOffset = ((b * plan.keyCount + k0) * plan.heads + h) * dh
            let kPointer = UnsafePointer(io.k + kOffset), vPointer = UnsafePointer(io.v + kOffset)
            let keysStride = layout.columnsStride(cols)
            packColumns(s.keysColumns, layout, kPointer, ld: rs, count: cols, dh: dh)
            if needScores { packColumns(s.valuesColumns, layout, vPointer, ld: rs, count: cols, dh: dh) }
            if io.needQ { packPairs(s.keyPairs, layout, kPointer, ld: rs, count: cols, dh: dh) }
            if io.needV { gradVT.update(repeating: 0, count: dh * keyBlock) }
            if io.needK { gradKT.update(repeating: 0, count: dh * keyBlock) }
            for q0 in stride(from: queries.lowerBound, to: queries.upperBound, by: queryBlock) {
                let rows = min(queryBlock, queries.upperBound - q0)
                let queryAt = q0 - queries.lowerBound, queryPairs = (rows + 1) / 2
                product(
                    m: rows, n: cols, pairs: layout.dimPairs, a: s.queryRows + queryAt * layout.dimStride, aPair: 1,
                    aRow: layout.dimStride, b: s.keysColumns, bStride: keysStride, alpha: scale, accumulate: false,
                    c: p, ldc: cols)
                if kept < cols {
                    plan.keep.withUnsafeBufferPointer {
                        AttentionMath.fillMasked(
                            p, rows: rows, cols: cols, keep: $0.baseAddress! + b * plan.keyCount + k0, value: -.infinity)
                    }
                }
                _ = goku_attention_probabilities_bf16(
                    p, Int32(rows), Int32(cols), lse + q0, s.probabilityPairs, Int32(keyBlock))
                if io.needV {
                    product(
                        m: dh, n: cols, pairs: queryPairs, a: s.gradTransposed + queryAt / 2, aPair: 1,
                        aRow: transposedStride, b: s.probabilityPairs, bStride: keyBlock, alpha: 1, accumulate: true,
                        c: gradVT, ldc: keyBlock)
                }
                if !needScores { continue }
                product(
                    m: rows, n: cols, pairs: layout.dimPairs, a: s.gradRows + queryAt * layout.dimStride, aPair: 1,
                    aRow: layout.dimStride, b: s.valuesColumns, bStride: keysStride, alpha: 1, accumulate: false,
                    c: dp, ldc: cols)
                _ = goku_attention_score_gradient_bf16(
                    dp, p, Int32(rows), Int32(cols), delta + queryAt, s.scoreRows, Int32(rowsStride), s.scorePairs,
                    Int32(keyBlock))
                if io.needQ {
                    product(
                        m: rows, n: dh, pairs: (cols + 1) / 2, a: s.scoreRows, aPair: 1, aRow: rowsStride,
                        b: s.keyPairs, bStride: layout.pairStride, alpha: scale, accumulate: true,
                        c: io.gradQ + queryOffset(q0), ldc: rs)
                }
                if io.needK {
                    product(
                        m: dh, n: cols, pairs: queryPairs, a: s.queryTransposed + queryAt / 2, aPair: 1,
                        aRow: transposedStride, b: s.scorePairs, bStride: keyBlock, alpha: scale, accumulate: true,
                        c: gradKT, ldc: keyBlock)
                }
            }
            if io.needV {
                goku_transpose_accumulate(gradVT, Int32(dh), Int32(cols), Int32(keyBlock), io.gradV + kOffset, Int32(rs))
            }
            if io.needK {
                goku_transpose_accumulate(gradKT, Int32(dh), Int32(cols), Int32(keyBlock), io.gradK + kOffset, Int32(rs))
            }
        }
    }
}
