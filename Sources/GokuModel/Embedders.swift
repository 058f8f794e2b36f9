import Foundation
import NN
import TensorCore

/// The patch embedding: one linear layer over a patch's C·pt·ph·pw features (key `proj`).
///
/// Image-to-video (spec §5.4): the input channels are [noisy latent C, first-frame condition C], so the layer is the
/// "single MLP layer that realigns the doubled channel width". The condition's columns start at zero, so a model made
/// from text-to-video weights (`GokuTransformer.loadTextToVideoWeights`) computes exactly the T2V function until
/// fine-tuning moves them.
public final class PatchEmbed: Module {
    /// Linear(embeddedChannels·pt·ph·pw → D).
    public let proj: Linear

    /// - Parameters: config: the architecture; generator: draws the initial weights.
    public init(_ config: GokuConfig, generator: RandomGenerator) {
        let patch = config.patchVolume
        proj = Linear(config.embeddedChannels * patch, config.hiddenSize, generator: generator)
        // DiT initialises the patch embedding Xavier-uniform over its flattened (D, C·p) view.
        proj.weight.assign(Initializer.xavierUniform(proj.weight.shape, generator: generator))
        proj.bias?.assign(Tensor.zeros([config.hiddenSize]))
        if config.imageConditioning {
            // Columns (C·p ..< 2C·p) read the condition: zero so that I2V starts as T2V.
            let keep = proj.weight.slice(axis: 1, 0, config.inChannels * patch)
            proj.weight.assign(Tensor.concat([keep, Tensor.zeros(keep.shape)], axis: 1))
        }
    }

    /// - Parameter patches: (B, L, embeddedChannels·pt·ph·pw). - Returns: (B, L, D).
    public func callAsFunction(_ patches: Tensor) -> Tensor { proj(patches) }
}

/// Timestep embedding as DiT: sinusoidal features of t·timestepScale, then Linear → SiLU → Linear
/// (keys `linear_1`, `linear_2`).
public final class TimestepEmbedder: Module {
    /// Linear(frequencyEmbeddingSize, D).
    @ModuleInfo(key: "linear_1") public var linear1: Linear
    /// Linear(D, D), after SiLU.
    @ModuleInfo(key: "linear_2") public var linear2: Linear
    /// Width of the sinusoidal features (256).
    public let frequencyEmbeddingSize: Int
    /// Factor on t before the features (1000).
    public let timestepScale: Double

    /// - Parameters: config: the architecture; generator: draws the initial weights (N(0, 0.02) as DiT).
    public init(_ config: GokuConfig, generator: RandomGenerator) {
        frequencyEmbeddingSize = config.frequencyEmbeddingSize
        timestepScale = config.timestepScale
        linear1 = Linear(config.frequencyEmbeddingSize, config.hiddenSize, generator: generator)
        linear2 = Linear(config.hiddenSize, config.hiddenSize, generator: generator)
        for linear in [linear1, linear2] {
            linear.weight.assign(Initializer.normal(linear.weight.shape, std: 0.02, generator: generator))
            linear.bias?.assign(Tensor.zeros([config.hiddenSize]))
        }
    }

    /// The sinusoidal features [cos(s·t·ω_i), sin(s·t·ω_i)], ω_i = 10000^(−i/half), computed in Float64.
    /// - Parameter timesteps: (N) flow times in [0, 1]. - Returns: (N, frequencyEmbeddingSize), float32.
    public static func sinusoidalFeatures(_ timesteps: [Double], size: Int, scale: Double) -> Tensor {
        let half = size / 2
        var values = [Double](repeating: 0, count: timesteps.count * size)
        for (n, t) in timesteps.enumerated() {
            for i in 0..<half {
                let angle = t * scale * Foundation.exp(-Foundation.log(10000) * Double(i) / Double(half))
                values[n * size + i] = Foundation.cos(angle)
                values[n * size + half + i] = Foundation.sin(angle)
            }
        }
        return Tensor(shape: [timesteps.count, size], scalars: values).to(.float32)
    }

    /// - Parameter timesteps: (N) flow times in [0, 1], one per sample. - Returns: (N, D).
    public func callAsFunction(_ timesteps: [Double]) -> Tensor {
        let features = Self.sinusoidalFeatures(timesteps, size: frequencyEmbeddingSize, scale: timestepScale)
        return linear2(linear1(features.to(linear1.weight.dtype)).silu())
    }
}
