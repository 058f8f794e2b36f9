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
}
