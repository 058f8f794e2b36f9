import Foundation
import GokuModel
import RectifiedFlow
import TensorCore
import VideoVAE

/// One generation request. Fields left nil take the model's defaults (`model_index.json`).
public struct GenerationOptions: Sendable {
    /// What to generate.
    public var prompt: String
    /// What to steer away from (the unconditional side of guidance); nil uses the empty prompt.
    public var negativePrompt: String?
    /// Frames, 1 + 4k (1 makes an image).
    public var frames: Int?
    /// Width in pixels, a multiple of 16 (8× VAE times the 2× patch).
    public var width: Int?
    /// Height in pixels, a multiple of 16.
    public var height: Int?
    /// ODE steps.
    public var steps: Int?
    /// Classifier-free guidance scale (1: none, one model evaluation per step).
    public var guidance: Double?
    /// The sampler; nil takes the model's.
    public var sampler: SamplerKind?
    /// Time shift s of the sampling schedule (`TimestepShift.apply`; 1: uniform steps, larger: more steps near the
    /// noise); nil takes the model's, or the token-count rule it was trained with.
    public var shift: Double?
    /// Flow times at which guidance applies (`GuidanceInterval`); nil takes the model's (by default every step).
    public var guidanceInterval: GuidanceInterval?
    /// Noise seed: the same seed and options give the same output.
    public var seed: UInt64 = 0
    /// Image-to-video: the first frame, (3, 1, H, W) in [−1, 1] at the output size.
    public var firstFrame: Tensor?

    /// A request for `prompt` with the model's defaults.
    public init(prompt: String) { self.prompt = prompt }
}

/// What a generation produced and how.
public struct GenerationResult {
    /// (3, T, H, W) in [−1, 1].
    public var video: Tensor
    /// The options after defaults were applied.
    public var frames: Int, width: Int, height: Int, steps: Int, guidance: Double, sampler: SamplerKind
    /// The flow times at which guidance applied (nil: every step).
    public var guidanceInterval: GuidanceInterval?
    /// Whether the prompt was longer than the text length and cut.
    public var promptTruncated: Bool
}

extension GokuModelBundle {
    /// Generates a clip (or an image when `frames` is 1): noise → ODE in latent space with classifier-free guidance
    /// → VAE decode.
    ///
    /// With guidance the conditional and unconditional inputs are packed into one sequence (Patch n' Pack), so each
    /// step is one forward pass over both. The noise is drawn from `RandomGenerator(seed:)` and the whole computation
    /// is deterministic, so a seed reproduces its output on any thread count.
    /// - Parameter onStep: called after each ODE step with (done, total).
    /// - Throws: `GokuPipelineError.invalidOption` naming the option (empty prompt, a size that is not a multiple of
    ///   16, a frame count that is not 1 + 4k, an image without an image-conditioned model, …).
    public func generate(_ options: GenerationOptions, onStep: ((Int, Int) -> Void)? = nil) throws -> GenerationResult {
        let frames = options.frames ?? index.frames
        let width = options.width ?? index.width, height = options.height ?? index.height
        let steps = options.steps ?? index.sampling.steps
        let guidance = options.guidance ?? index.sampling.guidance
        let kind = options.sampler ?? index.sampling.sampler
        let interval = options.guidanceInterval ?? index.sampling.guidanceInterval
        try validate(
            options, frames: frames, width: width, height: height, steps: steps, guidance: guidance, interval: interval)

        let r = vae.config.temporalCompression, f = vae.config.spatialCompression
        let latentShape = [vae.config.latentChannels, 1 + (frames - 1) / r, height / f, width / f]
        let condition = text.encode([options.prompt])[0]
        let unconditional = guidance != 1 ? text.encode([options.negativePrompt ?? ""])[0] : nil
        let firstFrame: Tensor? = try options.firstFrame.map { image in
            try Autograd.inference { vae.scaleLatent(try vae.encode(image.unsqueeze(0)).mode).squeeze(0) }  // (C, 1, h, w)
        }

        let noise = Tensor.randn(latentShape, generator: RandomGenerator(seed: options.seed))
        let shift =
            options.shift ?? index.sampling.shift
            ?? TimestepShift().shift(latentShape: latentShape, patchSize: transformer.config.patchSize)
        let guidanceRule = ClassifierFreeGuidance(scale: guidance, interval: interval)
        let velocity = guidanceRule.field { [transformer] x, t, guided in
            var samples = [GokuSample(latent: x, timestep: t, text: condition.states, textMask: condition.mask, firstFrame: firstFrame)]
            if guided, let u = unconditional {
                samples.append(GokuSample(latent: x, timestep: t, text: u.states, textMask: u.mask, firstFrame: firstFrame))
            }
            // Shapes were validated above, so packing cannot fail.
            let v = try! transformer.velocity(samples)
            return (v[0], v.count == 2 ? v[1] : nil)
        }
        var done = 0
        let report: (Int) -> Void = { _ in
            done += 1
            onStep?(done, steps)
        }
        let latent = kind.sampler(steps: steps, shift: shift).sample(noise, model: velocity, onStep: report)
        let video = try Autograd.inference {
            try vae.decode(vae.unscaleLatent(latent).unsqueeze(0)).squeeze(0).clamp(min: -1, max: 1)
        }
        return GenerationResult(
            video: video, frames: frames, width: width, height: height, steps: steps, guidance: guidance,
            sampler: kind, guidanceInterval: interval, promptTruncated: text.tokenCount(options.prompt) > text.maxLength)
    }

    private func validate(
        _ o: GenerationOptions, frames: Int, width: Int, height: Int, steps: Int, guidance: Double,
        interval: GuidanceInterval?
    ) throws {
        func fail(_ option: String, _ reason: String) -> GokuPipelineError { .invalidOption(option: option, reason: reason) }
        let r = vae.config.temporalCompression
        let multiple = vae.config.spatialCompression * transformer.config.patchSize[1]
        guard !o.prompt.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
            throw fail("prompt", "is empty; describe what to generate")
        }
        guard frames >= 1, (frames - 1) % r == 0, frames <= 1 + 4 * 256 else {
            throw fail("frames", "\(frames) is not 1 + \(r)k (1, 5, 9, 13, 17, …)")
        }
        guard ((1 + (frames - 1) / r) % transformer.config.patchSize[0]) == 0 else {
            throw fail("frames", "\(frames) frames give a latent length that the temporal patch does not divide")
        }
        guard width >= multiple, height >= multiple, width % multiple == 0, height % multiple == 0,
            width <= 4096, height <= 4096
        else {
            throw fail("size", "\(width)x\(height) must be multiples of \(multiple), from \(multiple) to 4096")
        }
        guard steps >= 1, steps <= 1000 else { throw fail("steps", "\(steps) must be 1 to 1000") }
        guard guidance.isFinite, guidance >= 0 else { throw fail("cfg", "\(guidance) must be ≥ 0") }
        if let shift = o.shift, !(shift.isFinite && shift > 0) { throw fail("shift", "\(shift) must be positive") }
        if let interval, !interval.isValid { throw fail("cfg-interval", "\(interval) must satisfy 0 ≤ lo ≤ hi ≤ 1") }
        if let image = o.firstFrame {
            guard transformer.config.imageConditioning else {
                throw fail("image", "this model has no image conditioning (train with imageConditioning: true)")
            }
            guard image.shape == [3, 1, height, width] else {
                throw fail("image", "shape \(image.shape) does not match the output size \(width)x\(height)")
            }
        }
    }
}
