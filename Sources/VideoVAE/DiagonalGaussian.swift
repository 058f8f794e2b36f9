import TensorCore

/// The encoder's posterior: a Gaussian with diagonal covariance per latent element (diffusers'
/// `DiagonalGaussianDistribution`).
///
/// The log-variance is clamped to [−30, 20] as in diffusers, so `exp` neither underflows to a zero standard deviation
/// nor overflows. Every member is differentiable (sampling by reparameterisation).
public struct DiagonalGaussian {
    /// (B, Cz, T, h, w).
    public let mean: Tensor
    /// Clamped log-variance, (B, Cz, T, h, w).
    public let logVariance: Tensor

    /// Splits the encoder output (B, 2·Cz, T, h, w) into mean (first Cz channels) and log-variance.
    public init(parameters: Tensor) {
        let halves = parameters.chunked(2, axis: 1)
        mean = halves[0]
        logVariance = halves[1].clamp(min: -30, max: 20)
    }

    /// The standard deviation exp(logvar / 2).
    public var standardDeviation: Tensor { (logVariance * 0.5).exp() }

    /// The most likely latent: the mean (diffusers' `mode()`).
    public var mode: Tensor { mean }

    /// A draw mean + σ·ε with ε ~ N(0, 1) from `generator` (reparameterised: gradients reach mean and log-variance).
    public func sample(generator: RandomGenerator) -> Tensor {
        mean + standardDeviation * Tensor.randn(mean.shape, generator: generator, dtype: mean.dtype)
    }

    /// KL(q ‖ N(0, 1)) per sample: ½ Σ (μ² + σ² − 1 − log σ²) over C, T, h, w, shape (B).
    ///
    /// diffusers sums over dims [1, 2, 3], which for 5-D latents leaves the width axis unsummed; this sums over every
    /// non-batch axis, the quantity a VAE loss needs (divide by the element count for a per-element mean).
    public func kl() -> Tensor {
        let terms = mean.square() + logVariance.exp() - 1 - logVariance
        return (terms.flatten(from: 1).sum(axis: 1)) * 0.5
    }
}
