/// The sizes of a Goku-style Transformer that `CostModel` needs: how many parameters there are and where they sit
/// (for sharding), and the widths of what a block keeps for backward (for activations).
///
/// A plain value so that this target needs no model code: `GokuPipeline` builds one from a `GokuConfig`
/// (`ModelShape(_:textTokens:)`), and a test or a what-if can write one by hand.
public struct ModelShape: Codable, Equatable, Sendable {
    /// P_t, the trained parameter elements of the whole model (2.0 G for Goku-2B).
    public var parameterCount: Int
    /// Parameter elements of one block (the unit FULL_SHARD gathers at a time).
    public var blockParameterCount: Int
    /// Blocks (28).
    public var depth: Int
    /// D, the token width (1792).
    public var hiddenSize: Int
    /// Nh, attention heads (28); Ulysses splits them over the sequence-parallel ranks.
    public var headCount: Int
    /// F, the FFN's hidden width (4D).
    public var ffnDimension: Int
    /// Lt, text tokens the cross-attention reads in one packed sequence (all samples' captions together; 128).
    public var textTokens: Int
    /// Dc, width of the text states (2048 for Flan-T5-XL).
    public var textDimension: Int
    /// RMSNorm on queries and keys (true in every preset): the projections and their normalised copies are both kept.
    public var qkNorm: Bool
    /// The cross-attention's queries are rotated by RoPE (true in every preset): one more copy of them is kept.
    public var crossAttentionQueryRoPE: Bool

    /// A shape from its parts.
    public init(
        parameterCount: Int, blockParameterCount: Int, depth: Int, hiddenSize: Int, headCount: Int, ffnDimension: Int,
        textTokens: Int, textDimension: Int, qkNorm: Bool = true, crossAttentionQueryRoPE: Bool = true
    ) {
        self.parameterCount = parameterCount
        self.blockParameterCount = blockParameterCount
        self.depth = depth
        self.hiddenSize = hiddenSize
        self.headCount = headCount
        self.ffnDimension = ffnDimension
        self.textTokens = textTokens
        self.textDimension = textDimension
        self.qkNorm = qkNorm
        self.crossAttentionQueryRoPE = crossAttentionQueryRoPE
    }

    /// Parameters outside the blocks (embedders, final layer), which FULL_SHARD keeps gathered beside one block.
    public var nonBlockParameterCount: Int { parameterCount - depth * blockParameterCount }

    /// Checks every field, naming the first bad one.
    /// - Throws: `CostModelError.invalidModel`.
    public func validate() throws {
        func check(_ ok: Bool, _ field: String, _ reason: @autoclosure () -> String) throws {
            if !ok { throw CostModelError.invalidModel(field: field, reason: reason()) }
        }
        for (field, value) in [
            ("parameterCount", parameterCount), ("blockParameterCount", blockParameterCount), ("depth", depth),
            ("hiddenSize", hiddenSize), ("headCount", headCount), ("ffnDimension", ffnDimension),
            ("textDimension", textDimension),
        ] {
            try check(value > 0, field, "must be positive, got \(value)")
        }
        try check(textTokens >= 0, "textTokens", "must be ≥ 0, got \(textTokens)")
        try check(
            hiddenSize % headCount == 0, "headCount", "\(headCount) heads do not divide hiddenSize \(hiddenSize)")
        try check(
            depth * blockParameterCount <= parameterCount, "blockParameterCount",
            "\(depth) blocks of \(blockParameterCount) exceed the \(parameterCount) parameters of the model")
    }
}
