import Foundation
import TensorCore

/// The DDPM baseline (Ho et al. 2020) for the paper's RF-versus-DDPM comparison (spec §4.4): ε-prediction over a
/// discrete β schedule, its training loss, and the steps of ancestral and DDIM sampling (`DDPMAncestralSampler`,
/// `DDIMSampler`).
///
/// Steps k = 0…K−1, with k = K−1 the noisiest: x_k = √ᾱ_k·x + √(1 − ᾱ_k)·ε. The transformer is oriented like rectified
/// flow (t = 1 clean), so it receives `modelTime(step:)` = 1 − k/K: the same embedder serves both objectives.
public struct DDPMSchedule: Sendable {
    /// β_k, (K).
    public let betas: [Double]
    /// α_k = 1 − β_k.
    public let alphas: [Double]
    /// ᾱ_k = Π_{i ≤ k} α_i.
    public let alphasCumprod: [Double]

    /// A schedule from its β values, each in (0, 1).
    public init(betas: [Double]) {
        precondition(!betas.isEmpty && betas.allSatisfy { $0 > 0 && $0 < 1 }, "DDPMSchedule: β must lie in (0, 1)")
        self.betas = betas
        alphas = betas.map { 1 - $0 }
        var product = 1.0
        alphasCumprod = alphas.map { a in
            product *= a
            return product
        }
    }

    /// Ho et al.'s linear schedule: β_k from `start` to `end` evenly over K steps (1e-4 … 0.02 over 1000).
    public static func linear(steps: Int = 1000, start: Double = 1e-4, end: Double = 0.02) -> DDPMSchedule {
        precondition(steps > 1, "DDPMSchedule.linear: need at least 2 steps")
        return DDPMSchedule(betas: (0..<steps).map { start + (end - start) * Double($0) / Double(steps - 1) })
    }

    /// Nichol & Dhariwal's cosine schedule: ᾱ(τ) = cos²((τ + s)/(1 + s)·π/2) / cos²(s/(1 + s)·π/2) at τ = (k+1)/K, via
    /// β_k = min(1 − ᾱ((k+1)/K)/ᾱ(k/K), maxBeta); the clip stops the last steps from being all noise at once.
    public static func cosine(steps: Int = 1000, offset s: Double = 0.008, maxBeta: Double = 0.999) -> DDPMSchedule {
        func alphaBar(_ tau: Double) -> Double {
            let c = Foundation.cos((tau + s) / (1 + s) * Double.pi / 2)
            return c * c
        }
        let k = Double(steps)
        return DDPMSchedule(
            betas: (0..<steps).map { i in
                Swift.min(1 - alphaBar(Double(i + 1) / k) / alphaBar(Double(i) / k), maxBeta)
            })
    }

    /// K, the number of steps.
    public var stepCount: Int { betas.count }

    /// The time given to the network for step k: 1 − k/K (1 at the clean end, as in rectified flow).
    public func modelTime(step: Int) -> Double { 1 - Double(step) / Double(stepCount) }

    /// x_k = √ᾱ_k·x + √(1 − ᾱ_k)·ε, the training input; the target is ε.
    public func noised(data: Tensor, noise: Tensor, step: Int) -> Tensor {
        data * alphasCumprod[step].squareRoot() + noise * (1 - alphasCumprod[step]).squareRoot()
    }

    /// The ε-prediction loss, mean squared error over every element.
    public static func loss(predictedNoise: Tensor, noise: Tensor) -> Tensor {
        (predictedNoise - noise).square().mean()
    }

    /// ᾱ before step k (1 before the first).
    func alphaBarPrevious(_ k: Int) -> Double { k > 0 ? alphasCumprod[k - 1] : 1 }

    /// One ancestral step k → k − 1: the posterior mean (x − β_k/√(1 − ᾱ_k)·ε̂)/√α_k plus √β̃_k·z with
    /// β̃_k = (1 − ᾱ_{k−1})/(1 − ᾱ_k)·β_k (zero at k = 0).
    public func ancestralStep(_ x: Tensor, predictedNoise eps: Tensor, step k: Int, noise z: Tensor) -> Tensor {
        let mean = (x - eps * (betas[k] / (1 - alphasCumprod[k]).squareRoot())) / alphas[k].squareRoot()
        let variance = (1 - alphaBarPrevious(k)) / (1 - alphasCumprod[k]) * betas[k]
        return variance > 0 ? mean + z * variance.squareRoot() : mean
    }

    /// One deterministic DDIM step (η = 0) from step k to step `target` (−1 for the clean end):
    /// x̂ = (x − √(1 − ᾱ_k)·ε̂)/√ᾱ_k, then √ᾱ'·x̂ + √(1 − ᾱ')·ε̂.
    public func ddimStep(_ x: Tensor, predictedNoise eps: Tensor, step k: Int, to target: Int) -> Tensor {
        let a = alphasCumprod[k], aNext = target >= 0 ? alphasCumprod[target] : 1
        let clean = (x - eps * (1 - a).squareRoot()) / a.squareRoot()
        return clean * aNext.squareRoot() + eps * (1 - aNext).squareRoot()
    }
}

/// DDPM ancestral sampling (Ho et al. 2020) over every step of a schedule, K−1 down to 0: each step takes the
/// posterior mean and adds fresh noise (`DDPMSchedule.ancestralStep`). Stochastic: the noise comes from `generator`,
/// so a generator in the same state reproduces the sample. The model field returns ε̂ and is called at
/// `modelTime(step: k)`.
public struct DDPMAncestralSampler: Sampler {
    /// The β schedule the model was trained with.
    public let schedule: DDPMSchedule
    /// Draws each step's noise, in step order.
    public let generator: RandomGenerator

    /// A sampler over every step of `schedule`.
    public init(schedule: DDPMSchedule, generator: RandomGenerator) {
        self.schedule = schedule
        self.generator = generator
    }

    public var prediction: SamplerPrediction { .noise }

    public var stepCount: Int { schedule.stepCount }

    public func sample(_ noise: Tensor, model: ModelField, onStep: ((Int) -> Void)?) -> Tensor {
        Autograd.inference {
            var x = noise
            for (i, k) in stride(from: schedule.stepCount - 1, through: 0, by: -1).enumerated() {
                let z = k > 0 ? Tensor.randn(x.shape, generator: generator, dtype: x.dtype) : Tensor.zeros(like: x)
                x = schedule.ancestralStep(x, predictedNoise: model(x, schedule.modelTime(step: k)), step: k, noise: z)
                onStep?(i)
            }
            return x
        }
    }
}

/// Deterministic DDIM sampling (Song et al. 2021, η = 0) on `stepCount` evenly spaced steps of a schedule, from K−1
/// down to 0 and then to the clean end (`DDPMSchedule.ddimStep`). The model field returns ε̂ and is called at
/// `modelTime(step: k)`.
public struct DDIMSampler: Sampler {
    /// The β schedule the model was trained with.
    public let schedule: DDPMSchedule
    /// The schedule's steps visited, K−1 first, decreasing.
    public let steps: [Int]

    /// A sampler over `steps` of the schedule's steps, evenly spaced from K−1 to 0 (rounded; K−1 alone for one).
    public init(schedule: DDPMSchedule, steps: Int) {
        precondition(
            steps > 0 && steps <= schedule.stepCount,
            "DDIMSampler: steps must be in 1...\(schedule.stepCount), got \(steps)")
        self.schedule = schedule
        let last = schedule.stepCount - 1
        self.steps =
            steps == 1
            ? [last]
            : (0..<steps).map { i in Int((Double(last) * Double(steps - 1 - i) / Double(steps - 1)).rounded()) }
    }

    public var prediction: SamplerPrediction { .noise }

    public var stepCount: Int { steps.count }

    public func sample(_ noise: Tensor, model: ModelField, onStep: ((Int) -> Void)?) -> Tensor {
        Autograd.inference {
            var x = noise
            for (i, k) in steps.enumerated() {
                let eps = model(x, schedule.modelTime(step: k))
                x = schedule.ddimStep(x, predictedNoise: eps, step: k, to: i + 1 < steps.count ? steps[i + 1] : -1)
                onStep?(i)
            }
            return x
        }
    }
}
