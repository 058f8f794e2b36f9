import Foundation
import TensorCore

/// The rectified-flow objective in Goku's convention (spec §4.1): x_t = t·x1 + (1 − t)·x0 with t = 0 pure noise
/// (x0 ~ N(0, I)) and t = 1 data (x1); the model predicts the velocity dx_t/dt = x1 − x0 under an MSE loss.
///
/// This is the opposite orientation to SD3 and diffusers (their σ = 1 is noise): wherever a formula is taken from
/// SD3, σ = 1 − t here.
public enum RectifiedFlow {
    /// The training input and target for one sample at time t.
    /// - Parameters:
    ///   - data: x1, a clean latent (any shape).
    ///   - noise: x0, the same shape, N(0, I).
    ///   - t: flow time in [0, 1].
    /// - Returns: x_t = t·x1 + (1 − t)·x0 and the velocity target x1 − x0.
    public static func trainingPair(data: Tensor, noise: Tensor, t: Double) -> (noisy: Tensor, target: Tensor) {
        precondition(data.shape == noise.shape, "trainingPair: data \(data.shape) and noise \(noise.shape) differ")
        return (data * t + noise * (1 - t), data - noise)
    }

    /// The MSE loss of a batch of samples of different sizes: Σ‖v̂ − v‖² / Σ elements, i.e. the mean over every latent
    /// element of the batch. A packed batch therefore weights samples by their size (a video counts as its frames),
    /// as a per-token loss over the packed sequence does.
    /// - Parameters: predictions: per sample, any shapes; targets: the same shapes.
    /// - Returns: a scalar.
    /// - Parameter elementCount: the divisor, when these are one rank's share of a larger batch (its elements over
    ///   every rank); nil: the elements here.
    public static func loss(predictions: [Tensor], targets: [Tensor], elementCount: Int? = nil) -> Tensor {
        precondition(
            !predictions.isEmpty && predictions.count == targets.count,
            "loss: \(predictions.count) predictions for \(targets.count) targets")
        var total: Tensor?
        var count = 0
        for (p, t) in zip(predictions, targets) {
            precondition(p.shape == t.shape, "loss: prediction \(p.shape) and target \(t.shape) differ")
            let term = (p - t).square().sum()
            total = total.map { $0 + term } ?? term
            count += p.count
        }
        return total! / Double(elementCount ?? count)
    }

    /// The weighted MSE loss: Σ w·‖v̂ − v‖² / Σ w over every latent element, with each sample's weights broadcast over
    /// its prediction (e.g. (1, T, H, W) against (C, T, H, W), a recipe's per-position weights). Normalising
    /// by the weights keeps the loss on the plain loss's scale; with all weights 1 it is `loss(predictions:targets:)`.
    /// - Parameters: predictions, targets: per sample, equal shapes; weights: per sample, broadcastable to them,
    ///   non-negative and not all zero.
    /// - Returns: a scalar.
    public static func weightedLoss(predictions: [Tensor], targets: [Tensor], weights: [Tensor]) -> Tensor {
        precondition(
            !predictions.isEmpty && predictions.count == targets.count && targets.count == weights.count,
            "weightedLoss: \(predictions.count) predictions, \(targets.count) targets, \(weights.count) weights")
        var total: Tensor?
        var weightSum = 0.0
        for ((p, t), w) in zip(zip(predictions, targets), weights) {
            precondition(p.shape == t.shape, "weightedLoss: prediction \(p.shape) and target \(t.shape) differ")
            let term = ((p - t).square() * w).sum()
            total = total.map { $0 + term } ?? term
            weightSum += Double(w.sum().item()) * Double(p.count / w.count)
        }
        precondition(weightSum > 0, "weightedLoss: the weights sum to \(weightSum)")
        return total! / weightSum
    }
}

/// How training draws flow times.
public enum TimestepDistribution: Codable, Equatable, Sendable {
    /// t ~ U[0, 1].
    case uniform
    /// SD3's logit-normal, flipped to this convention: σ = sigmoid(mean + std·n), n ~ N(0, 1), t = 1 − σ. With mean 0
    /// it concentrates samples around t = 0.5, where the velocity is hardest to predict; mean > 0 favours noisier t.
    case logitNormal(mean: Double, std: Double)

    /// Draws `count` flow times in [0, 1].
    public func sample(count: Int, generator: RandomGenerator) -> [Double] {
        switch self {
        case .uniform:
            return Tensor.rand([count], generator: generator).doubleScalars
        case .logitNormal(let mean, let std):
            return Tensor.randn([count], generator: generator).doubleScalars.map { n in
                1 - 1 / (1 + Foundation.exp(-(mean + std * n)))
            }
        }
    }
}

/// A time shift that moves sampling and training towards the noisy end for larger inputs (SD3 §5.3.2; Flux's
/// token-count rule), in this convention.
///
/// With σ = 1 − t, SD3 maps σ ↦ s·σ / (1 + (s − 1)·σ); here t ↦ 1 − s(1 − t) / (1 + (s − 1)(1 − t)), so s > 1 keeps
/// more of the schedule near t = 0 (noise). s depends on the token count as in Flux: log s is linear in the number of
/// tokens, from `baseShift` at `baseTokens` to `maxShift` at `maxTokens` (extrapolated beyond). Larger inputs have
/// more redundant pixels, so the same noise level destroys less of their signal; the shift compensates.
public struct TimestepShift: Codable, Equatable, Sendable {
    /// Token count of the base resolution (256: a 256×256 image at 8× VAE and 2×2 patches).
    public var baseTokens: Int
    /// log s at `baseTokens` (0.5).
    public var baseShift: Double
    /// Token count of the largest training input (4096).
    public var maxTokens: Int
    /// log s at `maxTokens` (1.15).
    public var maxShift: Double

    /// A rule; the defaults are Flux's.
    public init(baseTokens: Int = 256, baseShift: Double = 0.5, maxTokens: Int = 4096, maxShift: Double = 1.15) {
        self.baseTokens = baseTokens
        self.baseShift = baseShift
        self.maxTokens = maxTokens
        self.maxShift = maxShift
    }

    /// No shift at any size (s = 1).
    public static let none = TimestepShift(baseShift: 0, maxShift: 0)

    /// s for an input of `tokenCount` tokens.
    public func shift(tokenCount: Int) -> Double {
        let slope = (maxShift - baseShift) / Double(Swift.max(1, maxTokens - baseTokens))
        return Foundation.exp(baseShift + slope * Double(tokenCount - baseTokens))
    }

    /// s for a latent of shape (C, T, H, W) cut into patches of `patchSize` (pt, ph, pw), which makes
    /// `tokenCount(latentShape:patchSize:)` tokens: the shift that training and sampling give the same input.
    public func shift(latentShape: [Int], patchSize: [Int]) -> Double {
        shift(tokenCount: Self.tokenCount(latentShape: latentShape, patchSize: patchSize))
    }

    /// The tokens of a latent (C, T, H, W) in patches (pt, ph, pw): T/pt · H/ph · W/pw.
    public static func tokenCount(latentShape: [Int], patchSize: [Int]) -> Int {
        precondition(
            latentShape.count == patchSize.count + 1,
            "tokenCount: latent \(latentShape) is (C, T, H, W) and patch \(patchSize) is (pt, ph, pw)")
        return latentShape[1...].enumerated().reduce(1) { $0 * $1.element / patchSize[$1.offset] }
    }

    /// t shifted by s: 1 − s(1 − t) / (1 + (s − 1)(1 − t)). Fixes 0 and 1; s = 1 is the identity.
    public static func apply(_ t: Double, shift s: Double) -> Double {
        let sigma = 1 - t
        return 1 - s * sigma / (1 + (s - 1) * sigma)
    }
}

/// Caption dropout for classifier-free guidance: a sample's text is replaced by the empty prompt with probability p,
/// so one model learns both the conditional and the unconditional velocity.
public struct CaptionDropout: Codable, Equatable, Sendable {
    /// Probability of dropping a caption (0.1 is common).
    public var probability: Double

    /// - Parameter probability: in [0, 1].
    public init(probability: Double) {
        precondition((0...1).contains(probability), "CaptionDropout: probability \(probability) is not in [0, 1]")
        self.probability = probability
    }

    /// Whether to drop the next caption.
    public func shouldDrop(generator: RandomGenerator) -> Bool {
        probability > 0 && Double(generator.nextUniform()) < probability
    }
}
