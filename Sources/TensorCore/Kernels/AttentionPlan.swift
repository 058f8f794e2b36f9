/// The validated geometry of one attention call: sizes, scale, and which query and key ranges see each other.
///
/// Segments turn the mask into work: every (query range, key range) pair is attended on its own, so block-diagonal
/// packing costs the sum of the per-segment costs, and key padding becomes per-tile counts, so tiles of padding are
/// skipped whole.
struct AttentionPlan: Sendable {
    /// A query range and the key range it sees.
    struct Segment: Sendable {
        var queries: Range<Int>
        var keys: Range<Int>
    }

    let batch: Int
    let queryCount: Int
    let keyCount: Int
    let heads: Int
    let headDim: Int
    let scale: Double
    /// Independent blocks of the attention matrix (one when there are no segments), in order.
    let segments: [Segment]
    /// (B, Lk) keep flags, 1 = keep; empty when no key is padded.
    let keep: [UInt8]
    /// (B, Lk + 1): number of kept keys before each position of each batch element; empty when `keep` is.
    let keptBefore: [Int32]
    /// Whether the tile products (Q·Kᵀ, P·V and the backward's five) run in bfloat16 with Float32 accumulation
    /// (`AttentionKernel.forwardPacked` on operands packed once, or `AttentionTile.product`); the softmax statistics
    /// and the outputs stay Float32.
    var bfloat16 = false

    /// Distance in elements between consecutive tokens of one head (q, k, v and the output are (B, L, Nh, Dh)).
    var rowStride: Int { heads * headDim }
    var hasPadding: Bool { !keep.isEmpty }

    init(batch: Int, queryCount: Int, keyCount: Int, heads: Int, headDim: Int, scale: Double, mask: AttentionMask) {
        self.batch = batch
        self.queryCount = queryCount
        self.keyCount = keyCount
        self.heads = heads
        self.headDim = headDim
        self.scale = scale
        segments = AttentionPlan.segments(mask, queryCount: queryCount, keyCount: keyCount)
        if let padding = mask.keyPadding {
            precondition(
                padding.count == batch && padding.allSatisfy { $0.count == keyCount },
                "attention: keyPadding must be (B, Lk) = (\(batch), \(keyCount)), got \(padding.count) rows of "
                    + "lengths \(Set(padding.map(\.count)).sorted())")
        }
        // All-true padding is the same as none; dropping it keeps the fast path.
        guard let padding = mask.keyPadding, padding.contains(where: { $0.contains(false) }) else {
            keep = []
            keptBefore = []
            return
        }
        var keep = [UInt8](repeating: 0, count: batch * keyCount)
        var before = [Int32](repeating: 0, count: batch * (keyCount + 1))
        for b in 0..<batch {
            for j in 0..<keyCount {
                keep[b * keyCount + j] = padding[b][j] ? 1 : 0
                before[b * (keyCount + 1) + j + 1] = before[b * (keyCount + 1) + j] + (padding[b][j] ? 1 : 0)
            }
        }
        self.keep = keep
        keptBefore = before
    }

    /// Pairs the query and key segments after checking the offsets.
    private static func segments(_ mask: AttentionMask, queryCount: Int, keyCount: Int) -> [Segment] {
        switch (mask.querySegments, mask.keySegments) {
        case (nil, nil):
            return [Segment(queries: 0..<queryCount, keys: 0..<keyCount)]
        case (let qs?, let ks?):
            validate(qs, length: queryCount, axis: "querySegments")
            validate(ks, length: keyCount, axis: "keySegments")
            precondition(
                qs.count == ks.count,
                "attention: querySegments \(qs) and keySegments \(ks) must have the same number of segments")
            return (0..<qs.count - 1).map { Segment(queries: qs[$0]..<qs[$0 + 1], keys: ks[$0]..<ks[$0 + 1]) }
        default:
            preconditionFailure("attention: querySegments and keySegments must be given together (or neither)")
        }
    }

    private static func validate(_ offsets: [Int], length: Int, axis: String) {
        precondition(offsets.count >= 2, "attention: \(axis) \(offsets) needs at least [0, L]")
        precondition(offsets.first == 0, "attention: \(axis) \(offsets) must start at 0")
        precondition(offsets.last == length, "attention: \(axis) \(offsets) must end at the sequence length \(length)")
        precondition(
            zip(offsets, offsets.dropFirst()).allSatisfy { $0 <= $1 },
            "attention: \(axis) \(offsets) must not decrease")
    }

    /// Number of kept keys of batch element `b` in `range`.
    @inline(__always)
    func keptCount(_ b: Int, _ range: Range<Int>) -> Int {
        if keep.isEmpty { return range.count }
        let base = b * (keyCount + 1)
        return Int(keptBefore[base + range.upperBound] - keptBefore[base + range.lowerBound])
    }

    /// The segments cut into query blocks of at most `size` rows: (segment index, query rows).
    func queryBlocks(size: Int) -> [(segment: Int, queries: Range<Int>)] {
        var blocks: [(segment: Int, queries: Range<Int>)] = []
        for (s, seg) in segments.enumerated() where !seg.queries.isEmpty {
            for start in stride(from: seg.queries.lowerBound, to: seg.queries.upperBound, by: size) {
                blocks.append((s, start..<min(start + size, seg.queries.upperBound)))
            }
        }
        return blocks
    }
}
