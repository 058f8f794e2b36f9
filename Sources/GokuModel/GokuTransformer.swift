import Checkpoint
import Foundation
import NN
import TensorCore

/// The Goku Transformer: predicts the rectified-flow velocity of packed image and video latents given text.
///
/// Keys: `x_embedder.proj`, `t_embedder.linear_{1,2}`, `blocks.N.…` (see `GokuBlock`), `final_layer.…`.
///
///     tokens = PatchEmbed(patchify(x_t))          one linear layer per patch
///     c      = SiLU(TimestepEmbedder(t))           per sample
///     tokens = block(tokens, c, text)              × depth
///     v      = unpatchify(FinalLayer(tokens, c))
///
/// No absolute position embedding: positions enter only through 3D RoPE, which is what lets one model take any
/// resolution and length (spec §3.6).
public final class GokuTransformer: Module {
    /// Patch features → D.
    @ModuleInfo(key: "x_embedder") public var patchEmbed: PatchEmbed
    /// Flow time → D.
    @ModuleInfo(key: "t_embedder") public var timestepEmbedder: TimestepEmbedder
    /// The `depth` Goku blocks.
    public let blocks: [GokuBlock]
    /// Tokens → velocity patches.
    @ModuleInfo(key: "final_layer") public var finalLayer: FinalLayer
    /// The architecture.
    public let config: GokuConfig
    /// Recompute each block's activations in backward instead of keeping them (spec §6.2): memory per block drops
    /// to its input, for about one more forward pass of compute. A run option, not part of the architecture.
    public var activationCheckpointing = false
    /// The precision of the model's matrix products (see `GokuBlock.matmulPrecision`; nil inherits the caller's
    /// `MixedPrecision` scope). `.bfloat16` is mixed-precision training: Float32 master weights and optimizer state,
    /// bfloat16 operands for the products, Float32 accumulation, norms and softmax statistics. A run option, not part
    /// of the architecture; setting it sets every block's.
    public var matmulPrecision: MixedPrecision.Mode? {
        didSet { for block in blocks { block.matmulPrecision = matmulPrecision } }
    }

    /// A freshly initialised model (adaLN-Zero: it predicts zero velocity and every block is the identity).
    /// - Parameters: config: a validated configuration; generator: draws the initial weights.
    public init(_ config: GokuConfig, generator: RandomGenerator = RandomGenerator(seed: 0)) {
        self.config = config
        // Weights are drawn in order: embedders, blocks, final layer (plain stored properties must be set before the
        // wrapped ones, hence the locals).
        let embed = PatchEmbed(config, generator: generator)
        let timeEmbed = TimestepEmbedder(config, generator: generator)
        blocks = (0..<config.depth).map { _ in
            let block = GokuBlock(config, generator: generator)
            // DiT's Xavier-uniform init for the transformer's linear layers (biases zero); the zero-initialised ones
            // (adaLN, cross-attention output) were set by the block and are left alone.
            for linear in [
                block.selfAttention.queryProjection, block.selfAttention.keyProjection,
                block.selfAttention.valueProjection, block.selfAttention.outputProjection,
                block.crossAttention.queryProjection, block.crossAttention.keyProjection,
                block.crossAttention.valueProjection, block.ffn.fc1, block.ffn.fc2,
            ] {
                linear.weight.assign(Initializer.xavierUniform(linear.weight.shape, generator: generator))
                linear.bias?.assign(Tensor.zeros([linear.outputCount]))
            }
            return block
        }
        patchEmbed = embed
        timestepEmbedder = timeEmbed
        finalLayer = FinalLayer(config, generator: generator)
    }

    /// The velocity of every token of a pack.
    /// - Parameter batch: packed samples (see `PackedBatch`).
    /// - Returns: (1, L, pt·ph·pw·outChannels); `batch.unpack` turns it into per-sample latents.
    public func callAsFunction(_ batch: PackedBatch) -> Tensor {
        guard let matmulPrecision else { return forward(batch) }
        return MixedPrecision.with(matmulPrecision) { forward(batch) }
    }

    /// The model's maths, in the caller's matmul precision.
    private func forward(_ batch: PackedBatch) -> Tensor {
        var x = patchEmbed(batch.patches)  // (1, L, D)
        let c = timestepEmbedder(batch.timesteps).silu()  // (N, D)
        for block in blocks {
            if activationCheckpointing {
                x = Autograd.checkpoint([x, c]) { inputs in block(inputs[0], conditioning: inputs[1], batch: batch) }
            } else {
                x = block(x, conditioning: c, batch: batch)
            }
        }
        return finalLayer(x, conditioning: c, rows: batch.modulationRows)
    }

    /// The velocity of each sample: packs them, runs the model and unpacks.
    /// - Returns: per sample, (outChannels, T, H, W).
    public func velocity(_ samples: [GokuSample]) throws -> [Tensor] {
        let batch = try PackedBatch(samples: samples, config: config)
        return batch.unpack(self(batch))
    }

    /// The velocity field of one latent under classifier-free guidance, v = v_u + w·(v_c − v_u), for a sampler:
    /// the conditional and unconditional inputs are packed into one forward pass (their attention stays separate),
    /// so a guided step costs one call on twice the tokens rather than two calls.
    /// - Parameters:
    ///   - text: the prompt's states, (Ltext, textDimension), and its mask.
    ///   - unconditionalText: the empty prompt's states, or a negative prompt's, which guidance steers away from.
    ///   - scale: w; at 1 only the conditional velocity is computed.
    ///   - firstFrame: the image-to-video condition, (C, 1, H, W), given to both branches.
    /// - Returns: (x_t (C, T, H, W), t) → velocity (C, T, H, W); it stops on inputs that do not fit the config (the
    ///   sampler's own tensors, checked once by the caller through `PackedBatch`).
    public func guidedVelocity(
        text: Tensor, textMask: [Bool]? = nil, unconditionalText: Tensor, unconditionalMask: [Bool]? = nil,
        scale: Double, firstFrame: Tensor? = nil
    ) -> (Tensor, Double) -> Tensor {
        { [self] x, t in
            let conditional = GokuSample(latent: x, timestep: t, text: text, textMask: textMask, firstFrame: firstFrame)
            guard scale != 1 else { return try! velocity([conditional])[0] }
            var unconditional = conditional
            unconditional.text = unconditionalText
            unconditional.textMask = unconditionalMask
            let v = try! velocity([conditional, unconditional])
            return v[1] + (v[0] - v[1]) * scale
        }
    }

    /// Loads the weights of a text-to-video model into this image-to-video model: every tensor is copied, and the
    /// patch embedding's weight (D, C·p) is widened to (D, 2C·p) with zero columns for the first-frame condition, so
    /// the I2V model computes exactly the T2V function until fine-tuning moves those columns.
    /// - Throws: `ModuleLoadError` when keys or shapes differ beyond that column.
    public func loadTextToVideoWeights(_ tensors: [String: Tensor]) throws {
        var tensors = tensors
        let key = "x_embedder.proj.weight"
        if config.imageConditioning, let w = tensors[key], w.rank == 2,
            w.shape[1] * 2 == patchEmbed.proj.weight.shape[1]
        {
            tensors[key] = Tensor.concat([w, Tensor.zeros(w.shape, dtype: w.dtype)], axis: 1)
        }
        try load(tensors)
    }
}
