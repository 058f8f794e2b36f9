import Distributed
import GokuModel

extension ModelShape {
    /// The cost model's view of a Goku Transformer: its parameter counts (`GokuConfig.parameterCount`, of which
    /// `blockParameterCount` per block) and the widths of what its blocks keep for backward.
    /// - Parameters:
    ///   - config: the architecture.
    ///   - textTokens: text tokens in one packed sequence (a caption's `maxTextLength` per sample it packs).
    public init(_ config: GokuConfig, textTokens: Int) {
        self.init(
            parameterCount: config.parameterCount, blockParameterCount: config.blockParameterCount, depth: config.depth,
            hiddenSize: config.hiddenSize, headCount: config.headCount, ffnDimension: config.ffnDimension,
            textTokens: textTokens, textDimension: config.textDimension, qkNorm: config.qkNorm,
            crossAttentionQueryRoPE: config.crossAttentionQueryRoPE)
    }
}
