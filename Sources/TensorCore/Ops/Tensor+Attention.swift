/// Which (query, key) pairs of a scaled dot-product attention may see each other.
///
/// Two independent restrictions, combined with AND:
/// - `keyPadding`: per batch element, which keys exist (padding at the end of a shorter text, for example).
///   Queries are never masked by it: a padded query position still attends to the kept keys of its batch element.
/// - `querySegments` / `keySegments`: packed variable-length sequences. Both are offsets `[0, e₁, …, L]` cutting the
///   query and key axes into the same number of contiguous segments; query token in segment s sees only the keys of
///   key segment s (block-diagonal attention). Self-attention passes the same offsets twice (`init(segments:)`);
///   packed cross-attention pairs, for example, each sample's visual tokens with that sample's text tokens. The
///   segments apply alike to every batch element. Empty segments are allowed.
///
/// A query row that sees no key at all (every key of its batch padded, or an empty key segment) outputs zeros and
/// receives a zero gradient, rather than the NaN of a softmax over nothing.
public struct AttentionMask: Sendable {
    /// (B, Lk): `true` keeps the key. nil keeps every key.
    public var keyPadding: [[Bool]]?
    /// Segment offsets along the query axis (`[0, …, Lq]`), or nil for one segment.
    public var querySegments: [Int]?
    /// Segment offsets along the key axis (`[0, …, Lk]`), or nil for one segment.
    public var keySegments: [Int]?

    /// Every query sees every key.
    public static let none = AttentionMask()

    /// A mask from its parts; `querySegments` and `keySegments` must be given together.
    /// - Parameters:
    ///   - keyPadding: (B, Lk), `true` = keep.
    ///   - querySegments: offsets `[0, …, Lq]`.
    ///   - keySegments: offsets `[0, …, Lk]`, as many segments as `querySegments`.
    public init(keyPadding: [[Bool]]? = nil, querySegments: [Int]? = nil, keySegments: [Int]? = nil) {
        self.keyPadding = keyPadding
        self.querySegments = querySegments
        self.keySegments = keySegments
    }

    /// Block-diagonal self-attention over packed sequences.
    /// - Parameter segments: offsets `[0, …, L]`, e.g. `[0, 5, 9, 13]` for sequences of 5, 4 and 4 tokens.
    public init(segments: [Int]) {
        self.init(querySegments: segments, keySegments: segments)
    }

    /// Key padding from the number of valid (leading) keys of each batch element.
    /// - Parameters:
    ///   - keyLengths: (B): batch element b keeps keys `0..<keyLengths[b]`.
    ///   - keyCount: Lk.
    public init(keyLengths: [Int], keyCount: Int) {
        precondition(
            keyLengths.allSatisfy { $0 >= 0 && $0 <= keyCount },
            "AttentionMask: key lengths \(keyLengths) must lie in 0...\(keyCount)")
        self.init(keyPadding: keyLengths.map { n in (0..<keyCount).map { $0 < n } })
    }

    /// Whether the mask restricts nothing.
    public var isNone: Bool { keyPadding == nil && querySegments == nil && keySegments == nil }
}

extension Tensor {
    /// Scaled dot-product attention, softmax(scale·Q·Kᵀ + mask)·V, by a fused, tiled kernel that never forms the
    /// Lq×Lk score matrix (see `AttentionKernel`).
    ///
    /// The layout is the one a projection gives after a reshape (B, L, Nh·Dh) → (B, L, Nh, Dh), so models need no
    /// permute copies. Any head size Dh ≥ 1 works. Rows that see no key output zeros with zero gradient (see
    /// `AttentionMask`). Differentiable in q, k and v.
    /// - Parameters:
    ///   - q: (B, Lq, Nh, Dh).
    ///   - k: (B, Lk, Nh, Dh).
    ///   - v: (B, Lk, Nh, Dh).
    ///   - scale: the factor on Q·Kᵀ; 1/√Dh when nil.
    ///   - mask: key padding and/or packed segments.
    /// - Returns: (B, Lq, Nh, Dh).
    public static func attention(
        _ q: Tensor, _ k: Tensor, _ v: Tensor, scale: Double? = nil, mask: AttentionMask = .none
    ) -> Tensor {
        precondition(
            q.rank == 4 && k.rank == 4 && v.rank == 4,
            "attention: q, k, v must be (B, L, Nh, Dh), got \(q.shape), \(k.shape), \(v.shape)")
        precondition(
            k.shape == v.shape, "attention: k \(k.shape) and v \(v.shape) must have the same shape (B, Lk, Nh, Dh)")
        precondition(
            q.shape[0] == k.shape[0] && q.shape[2] == k.shape[2] && q.shape[3] == k.shape[3],
            "attention: q \(q.shape) and k \(k.shape) must agree in B, Nh and Dh")
        precondition(q.shape[3] >= 1, "attention: head size must be at least 1, got \(q.shape)")
        precondition(
            q.dtype == k.dtype && k.dtype == v.dtype, "attention: dtypes \(q.dtype), \(k.dtype), \(v.dtype) differ")
        _ = q.requireCompute("attention")
        var plan = AttentionPlan(
            batch: q.shape[0], queryCount: q.shape[1], keyCount: k.shape[1], heads: q.shape[2], headDim: q.shape[3],
            scale: scale ?? 1 / Double(q.shape[3]).squareRoot(), mask: mask)
        plan.bfloat16 = q.dtype == .float32 && MixedPrecision.current == .bfloat16 && AttentionTile.hasBFloat16
        let (out, logSumExp) = AttentionKernel.forward(plan, q: q, k: k, v: v)
        return Autograd.record(
            out, op: "attention", inputs: [q, k, v],
            rule: GradientRules.attention(plan, q: q, k: k, v: v, out: out, logSumExp: logSumExp))
    }
}
