import NN
import TensorCore

/// adaLN-Zero modulation (key `linear`): Linear(D, k·D) on SiLU(timestep embedding), producing k per-sample vectors
/// that are then spread to each sample's tokens.
///
/// The layer starts at zero (DiT's adaLN-Zero): every shift, scale and gate is 0, so each block starts as the
/// identity on its residual branches gated by it, and the final layer outputs zero. Modulation is computed per
/// sample (N rows) and gathered to tokens, which is the per-token modulation of Patch n' Pack at N/L of the cost of
/// applying the linear layer to every token.
public final class AdaLNModulation: Module {
    /// Linear(D, count·D), zero-initialised.
    public let linear: Linear
    /// How many vectors of width D it produces (6 in a block, 2 in the final layer).
    public let count: Int

    /// - Parameters: dimension: D; count: vectors produced.
    public init(_ dimension: Int, count: Int, generator: RandomGenerator) {
        linear = Linear(dimension, count * dimension, generator: generator)
        linear.weight.assign(Tensor.zeros(linear.weight.shape))
        linear.bias?.assign(Tensor.zeros([count * dimension]))
        self.count = count
    }

    /// - Parameters:
    ///   - conditioning: SiLU(timestep embedding), (N, D), one row per sample.
    ///   - rows: the sample of each token (`PackedBatch.modulationRows`), nil for a single sample.
    /// - Returns: `count` tensors of (1, L, D) (or (1, 1, D) when the pack holds one sample, broadcast by the ops).
    public func callAsFunction(_ conditioning: Tensor, rows: [Int]?) -> [Tensor] {
        let e = linear(conditioning)  // (N, k·D)
        let perToken =
            rows.map { e.indexSelect(axis: 0, indices: $0).unsqueeze(0) }  // (1, L, k·D)
            ?? e.reshape([1, 1, e.shape[1]])  // (1, 1, k·D)
        return perToken.chunked(count, axis: 2)
    }

    /// The same vectors per sample, for the fused modulation ops, which read each token's row through
    /// `PackedBatch.modulationRows` instead of gathered (1, L, D) copies: no gather, no chunk copies, no scatter of their
    /// gradients, and none of it kept for the backward pass. On the shipped configuration's packed training step
    /// (`goku bench train`, 8 samples, 448 tokens, fp32) the step went from +234 to +149 MiB and from 238–243 to
    /// 205 ms.
    /// - Returns: `count` tensors of (N, D).
    public func perSample(_ conditioning: Tensor) -> [Tensor] {
        linear(conditioning).chunked(count, axis: 1)
    }
}

/// x·(1 + scale) + shift, the adaLN modulation of normalised tokens, composed from separate ops (the unfused path of
/// `GokuBlock.fusedModulation`).
@inline(__always) func modulate(_ x: Tensor, shift: Tensor, scale: Tensor) -> Tensor { x * (scale + 1) + shift }

/// One Goku Transformer block (spec §3.3; keys `norm1.linear`, `attn1`, `norm2`, `attn2`, `norm3`, `ff`):
///
///     x = x + gate_msa · SelfAttn(LN(x)·(1 + scale_msa) + shift_msa, 3D RoPE on q and k)
///     x = x + CrossAttn(RMSNorm(x), text)                    — no modulation and no gate, as the reference code
///     x = x + gate_mlp · FFN(RMSNorm(x)·(1 + scale_mlp) + shift_mlp)
///
/// LN is non-affine (ε 1e-6); the two RMSNorms learn a scale.
///
/// Zero initialisation: the adaLN linear layer starts at zero, so both gates are 0 and the gated branches vanish; the
/// cross-attention branch has no gate, so its output projection `attn2.o_proj` starts at zero too (PixArt-α does the
/// same for its ungated cross-attention). Every block is then exactly the identity at initialisation, and gradients
/// still reach the zeroed layers (their inputs are not zero), so training moves them first.
public final class GokuBlock: Module {
    /// The six modulation vectors (shift, scale, gate for attention and FFN), `norm1.linear`: Linear(D, 6D).
    @ModuleInfo(key: "norm1") public var adaLNModulation: AdaLNModulation
    /// Self-attention with QK RMSNorm over the full width and 3D RoPE on q and k.
    @ModuleInfo(key: "attn1") public var selfAttention: Attention
    /// RMSNorm (learned scale) before the cross-attention.
    @ModuleInfo(key: "norm2") public var crossAttentionNorm: RMSNorm
    /// Cross-attention to the text states (keys and values from `textDimension`).
    @ModuleInfo(key: "attn2") public var crossAttention: Attention
    /// RMSNorm (learned scale) before the modulated FFN.
    @ModuleInfo(key: "norm3") public var ffnNorm: RMSNorm
    /// Linear(D, 4D) → GELU-tanh → Linear(4D, D) (keys `fc1`, `fc2`).
    @ModuleInfo(key: "ff") public var ffn: MLP
    /// ε of the non-affine LayerNorm.
    public let eps: Double
    /// Rotate the cross-attention queries (see `GokuConfig.crossAttentionQueryRoPE`).
    public let crossAttentionQueryRoPE: Bool
    /// Use the fused adaLN kernels (`Tensor.modulatedLayerNorm`, `modulatedRMSNorm`, `gatedResidual`): one pass over
    /// memory each, forward and backward. True by default; false composes the same maths from separate ops
    /// (norm, ·(1 + scale), + shift, gate·branch, x +), which gives the identical forward result and is kept as
    /// the benchmark's baseline and the tests' reference.
    public var fusedModulation = true
    /// The precision of the block's matrix products: `.bfloat16` runs them through oneDNN with bfloat16 operands and
    /// Float32 accumulation (`MixedPrecision`), `.float32` forces Float32, nil (the default) inherits the caller's
    /// `MixedPrecision` scope. Set on the block rather than only around the call so that activation checkpointing's
    /// recomputation during backward uses it too.
    public var matmulPrecision: MixedPrecision.Mode?

    /// - Parameters: config: the architecture; generator: draws the initial weights.
    public init(_ config: GokuConfig, generator: RandomGenerator) {
        let d = config.hiddenSize
        eps = config.normEps
        crossAttentionQueryRoPE = config.crossAttentionQueryRoPE
        adaLNModulation = AdaLNModulation(d, count: 6, generator: generator)
        selfAttention = Attention(d, headCount: config.headCount, qkNorm: config.qkNorm, generator: generator)
        crossAttentionNorm = RMSNorm(d, eps: config.normEps)
        crossAttention = Attention(
            d, headCount: config.headCount, contextDimension: config.textDimension, qkNorm: config.qkNorm,
            generator: generator)
        ffnNorm = RMSNorm(d, eps: config.normEps)
        ffn = MLP(d, hidden: config.ffnDimension, activation: .geluTanh, generator: generator)
        crossAttention.outputProjection.weight.assign(Tensor.zeros([d, d]))
    }

    /// - Parameters:
    ///   - x: visual tokens, (1, L, D).
    ///   - conditioning: SiLU(timestep embedding), (N, D).
    ///   - batch: the pack: token layout, text states, RoPE tables and attention masks.
    /// - Returns: (1, L, D).
    public func callAsFunction(_ x: Tensor, conditioning: Tensor, batch: PackedBatch) -> Tensor {
        guard let matmulPrecision else { return forward(x, conditioning: conditioning, batch: batch) }
        return MixedPrecision.with(matmulPrecision) { forward(x, conditioning: conditioning, batch: batch) }
    }

    /// The block's maths, in the caller's matmul precision.
    func forward(_ x: Tensor, conditioning: Tensor, batch: PackedBatch) -> Tensor {
        guard fusedModulation else {
            let m = adaLNModulation(conditioning, rows: batch.modulationRows)
            let (shiftMSA, scaleMSA, gateMSA, shiftMLP, scaleMLP, gateMLP) = (m[0], m[1], m[2], m[3], m[4], m[5])
            let h = modulate(layerNorm(x), shift: shiftMSA, scale: scaleMSA)
            var x = x + gateMSA * selfAttention(h, mask: batch.selfAttentionMask, rope: batch.rope, exchange: batch.exchange)
            x = x + attendToText(crossAttentionNorm(x), batch: batch)
            x = x + gateMLP * ffn(modulate(ffnNorm(x), shift: shiftMLP, scale: scaleMLP))
            return x
        }
        let m = adaLNModulation.perSample(conditioning), rows = batch.modulationRows
        let (shiftMSA, scaleMSA, gateMSA, shiftMLP, scaleMLP, gateMLP) = (m[0], m[1], m[2], m[3], m[4], m[5])
        let h = Tensor.modulatedLayerNorm(x, shift: shiftMSA, scale: scaleMSA, eps: eps, rowIndex: rows)
        let attended = selfAttention(h, mask: batch.selfAttentionMask, rope: batch.rope, exchange: batch.exchange)
        var x = Tensor.gatedResidual(x, gate: gateMSA, branch: attended, rowIndex: rows)
        x = x + attendToText(crossAttentionNorm(x), batch: batch)
        let f = Tensor.modulatedRMSNorm(
            x, weight: ffnNorm.weight, shift: shiftMLP, scale: scaleMLP, eps: ffnNorm.eps, rowIndex: rows)
        return Tensor.gatedResidual(x, gate: gateMLP, branch: ffn(f), rowIndex: rows)
    }

    /// The non-affine LayerNorm ahead of the modulated self-attention.
    func layerNorm(_ x: Tensor) -> Tensor { Tensor.layerNorm(x, weight: nil, bias: nil, eps: eps) }

    /// Cross-attention of the visual tokens to their own sample's text (keys never rotated; queries as configured).
    func attendToText(_ h: Tensor, batch: PackedBatch) -> Tensor {
        crossAttention(
            h, context: batch.text, mask: batch.crossAttentionMask, rope: crossAttentionQueryRoPE ? batch.rope : nil,
            ropeOnKeys: false)
    }
}

/// The final layer (keys `adaLN_modulation.linear`, `linear`): non-affine LayerNorm, adaLN shift and scale, and a
/// linear map to pt·ph·pw·outChannels per token. Both linear layers start at zero (adaLN-Zero): the initial model
/// predicts a zero velocity.
public final class FinalLayer: Module {
    /// Shift and scale: Linear(D, 2D), zero-initialised.
    @ModuleInfo(key: "adaLN_modulation") public var adaLNModulation: AdaLNModulation
    /// Linear(D, pt·ph·pw·outChannels), zero-initialised.
    public let linear: Linear
    /// ε of the LayerNorm.
    public let eps: Double

    /// - Parameters: config: the architecture; generator: unused by the zero weights, kept for symmetry.
    public init(_ config: GokuConfig, generator: RandomGenerator) {
        let d = config.hiddenSize, out = config.patchVolume * config.outChannels
        eps = config.normEps
        linear = Linear(d, out, generator: generator)
        linear.weight.assign(Tensor.zeros(linear.weight.shape))
        linear.bias?.assign(Tensor.zeros([out]))
        adaLNModulation = AdaLNModulation(d, count: 2, generator: generator)
    }

    /// - Parameters: x: (1, L, D); conditioning: (N, D); rows: each token's sample (`PackedBatch.modulationRows`).
    /// - Returns: (1, L, p·outChannels).
    public func callAsFunction(_ x: Tensor, conditioning: Tensor, rows: [Int]?) -> Tensor {
        let m = adaLNModulation.perSample(conditioning)
        return linear(Tensor.modulatedLayerNorm(x, shift: m[0], scale: m[1], eps: eps, rowIndex: rows))
    }
}
