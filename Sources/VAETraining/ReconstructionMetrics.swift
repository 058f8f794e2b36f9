import Foundation
import TensorCore

/// Reconstruction quality figures.
public enum ReconstructionMetrics {
    /// Peak signal-to-noise ratio in dB of `reconstruction` against `reference`, both in [−1, 1] (the
    /// reconstruction is clamped first, as it would be when written as 8-bit pixels): 10·log10(1 / MSE) on the
    /// [0, 1] scale, i.e. with MSE/4 of the [−1, 1] values. Identical inputs give +∞.
    public static func psnr(_ reconstruction: Tensor, _ reference: Tensor) -> Double {
        precondition(reconstruction.shape == reference.shape, "psnr: shapes \(reconstruction.shape) and \(reference.shape) differ")
        return Autograd.inference {
            let mse = Double((reconstruction.clamp(min: -1, max: 1) - reference).square().mean().item()) / 4
            return mse == 0 ? .infinity : 10 * log10(1 / mse)
        }
    }

    /// The mean squared chroma of an RGB difference `error` (B, 3, …): the BT.601 colour-difference components
    /// Cb = −0.1687 R − 0.3313 G + 0.5 B and Cr = 0.5 R − 0.4187 G − 0.0813 B of the error, each squared and
    /// averaged, then summed. A differentiable loss term; zero when the error is the same in all three channels (a
    /// pure brightness error).
    public static func chromaSquaredError(_ error: Tensor) -> Tensor {
        precondition(error.rank >= 2 && error.shape[1] == 3, "chromaSquaredError: expected (B, 3, …), got \(error.shape)")
        let r = error.slice(axis: 1, 0, 1), g = error.slice(axis: 1, 1, 2), b = error.slice(axis: 1, 2, 3)
        let cb = r * -0.1687 + g * -0.3313 + b * 0.5
        let cr = r * 0.5 + g * -0.4187 + b * -0.0813
        return cb.square().mean() + cr.square().mean()
    }
}
