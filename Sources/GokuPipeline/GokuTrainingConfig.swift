import Checkpoint
import Foundation
import GokuModel
import Optim
import RectifiedFlow
import TensorCore
import TextEncoder

/// Everything `goku train` needs. Read from JSON (`--config`); every field has a default except `vaeFolder`, and
/// unknown fields are errors. Saved as `run.json` in the run folder; a resumed run must match it (only `steps`,
/// `precision`, the `textRole…` fields and the flow-time distribution may change: `changeableOnResume`).
public struct GokuTrainingConfig: Codable, Equatable, Sendable {
    /// The transformer; nil selects `preset` with `inChannels` and `textDimension` taken from the VAE and text encoder.
    public var transformer: GokuConfig?
    /// A named transformer when `transformer` is nil: "small" (the shipped model's), "tiny", "goku-1b", ….
    public var preset: String = "small"
    /// Image-to-video conditioning on the first frame (spec §5.4), trained jointly with text-to-video.
    public var imageConditioning = true
    /// Probability that a video is trained with its first frame given (when `imageConditioning`).
    public var firstFrameProbability = 0.5
    /// A trained VAE folder (diffusers layout), e.g. the output of `goku vae train`.
    public var vaeFolder: String = ""
    /// A pretrained Hugging Face T5 folder, used frozen with a caption cache; nil trains `textEncoder` from scratch
    /// jointly with the transformer (the shipped model's choice: a tiny T5 learns the Shapes captions' vocabulary).
    public var textEncoderFolder: String?
    /// The T5 trained from scratch when `textEncoderFolder` is nil; nil uses `ShapesText.encoderConfig`.
    public var textEncoder: T5Config?
    /// Captions are tokenised to this many tokens.
    public var maxTextLength = 24
    /// Training on dataset folders: the stages, in order (`TrainingStage`: mixture, token budget, framing, schedule).
    /// Empty: the Shapes recipe's generated data below (`data`, `datasetSize`, `samplesPerStep`).
    public var stages: [TrainingStage] = []
    /// How a prepared latent becomes x1: the posterior's mode (its mean, the default) or a draw from it.
    public var latentSampling = LatentSampling.mode
    /// Manifest rows that cannot be used are skipped and counted (true) or stop the run before it starts (false).
    public var skipBadRows = false
    /// Prepared batches read ahead on a background thread; 0 holds every prepared sample in memory instead (for
    /// small datasets; `goku bench data` measures streaming against it).
    public var prefetchBatches = 4
    /// Where datasets are prepared when no prepared copy matches: nil puts each in `<dataset>/.prepared/<key>` (or,
    /// when that folder cannot be written, in `<run>/prepared/<key>`).
    public var preparedRoot: String?
    /// The generated training data (Shapes recipe, when `stages` is empty).
    public var data = ShapesTrainingData()
    /// Distinct training samples; their VAE latents are computed once and cached in the run folder.
    public var datasetSize = 4096
    /// Samples packed into one sequence per step (images and videos mixed, Patch n' Pack; Shapes recipe).
    public var samplesPerStep = 8
    /// Optimizer steps of the whole run (with stages: the last stage runs until here).
    public var steps = 10000
    /// Peak learning rate.
    public var learningRate = 3e-4
    /// Linear warm-up steps.
    public var warmupSteps = 200
    /// "constant" or "cosine" after warm-up.
    public var decay: LearningRateSchedule.Decay = .cosine
    /// AdamW weight decay on weight matrices.
    public var weightDecay = 0.0
    /// Global gradient-norm clip (0 disables).
    public var clipNorm = 1.0
    /// EMA decay of the exported weights (0: export the raw weights), with warm-up: update n uses
    /// min(decay, (1 + n) / (10 + n)) (`ExponentialMovingAverage.warmedUpDecay`).
    public var emaDecay = 0.999
    /// Rectified flow (the paper's) or the DDPM ε-prediction baseline.
    public var objective = TrainingObjective.flow
    /// β schedule of the DDPM baseline.
    public var ddpmSchedule = DDPMScheduleKind.linear
    /// How flow times are drawn.
    public var timesteps: TimestepDistribution = .logitNormal(mean: 0, std: 1)
    /// Shift drawn times by the sample's token count (`TimestepShift`), as sampling does.
    public var shiftTimesteps = true
    /// Probability of training a sample on the empty caption (for classifier-free guidance).
    public var captionDropout = 0.1
    /// Recompute each block in backward instead of storing its activations.
    public var activationCheckpointing = false
    /// Precision of the transformer's matrix products in training: "fp32", or "bf16" (bfloat16 operands, Float32
    /// accumulation, master weights and optimizer state; see `MixedPrecision`). Sampling and export are Float32. A
    /// resumed run may switch it (for example, continuing an fp32 run in bf16).
    public var precision = TrainingPrecision.fp32
    /// Weight of the text encoder's auxiliary caption-role loss (`CaptionRoleObjective`) beside the flow loss; 0
    /// disables it. Only for a text encoder trained jointly (`textEncoderFolder` nil). A resumed run may turn it on:
    /// the head starts fresh when the checkpoint has none.
    public var textRoleLossWeight = 0.0
    /// When the caption-role loss starts (a new run, or a resumed one whose checkpoint has no role head), steps of
    /// that objective alone on the text encoder before training goes on (`CaptionRolePretraining`); 0 skips them.
    public var textRolePretrainSteps = 400
    /// Their peak learning rate.
    public var textRolePretrainLearningRate = 1e-3
    /// Whether they start the encoder from fresh weights, held near the old states by the anchor only.
    public var textRoleReinitialize = false
    /// Their anchor weight: how strongly the encoder's states are held where they were (`CaptionRolePretraining`).
    public var textRoleAnchorWeight = 1.0
    /// Extra loss weight of the latent positions that hold objects (`ForegroundWeighting`): 0 trains the plain MSE;
    /// w makes each foreground position count 1 + w times a background one, so small objects' shapes are not a
    /// negligible share of the loss.
    public var foregroundLossWeight = 0.0
    /// The distance from a latent frame's median vector (RMS over channels) above which a position is foreground.
    public var foregroundThreshold = 0.15
    /// Whose objects weigh more: `dataOrEstimate` (the data's and those of the model's estimate of the clean latent, so
    /// drawing an object where there is none costs what missing one does; flow objective) or `data` (the data's only,
    /// which was measured to teach the model to draw extra objects).
    public var foregroundOf = ForegroundSource.dataOrEstimate
    /// Seed of initialisation, data order and noise.
    public var seed: UInt64 = 0
    /// Steps between checkpoints (0: only at the end).
    public var checkpointEvery = 500
    /// Checkpoints kept.
    public var keepCheckpoints = 2
    /// Written into the exported model's `model_index.json`.
    public var sampling = SamplingDefaults()

    /// The fields a resumed run may change besides `steps`: the matrix-product precision (weights and optimizer state
    /// are Float32 either way), the caption-role settings (the head is not part of the model, and starts fresh
    /// when turned on), and how flow times are drawn (`timesteps`, `shiftTimesteps`) and the loss weighted
    /// (`foregroundLossWeight`, `foregroundThreshold`, `foregroundOf`): which noise levels and which parts of a frame a stage trains most
    /// is a choice per stage, as in multi-stage recipes that move it between resolutions, and nothing in the checkpoint
    /// depends on it. The `sampling` defaults, which only the exported `model_index.json` reads, may change too.
    public static let changeableOnResume: Set<String> = [
        "precision", "textRoleLossWeight", "textRolePretrainSteps", "textRolePretrainLearningRate", "textRoleAnchorWeight",
        "textRoleReinitialize", "timesteps", "shiftTimesteps", "foregroundLossWeight", "foregroundThreshold",
        "foregroundOf", "sampling", "prefetchBatches", "skipBadRows", "preparedRoot",
    ]

    /// The defaults.
    public init() {}

    /// Checks every field; throws `GokuPipelineError.invalidOption` naming the first bad one.
    public func validate() throws {
        func check(_ ok: Bool, _ field: String, _ reason: @autoclosure () -> String) throws {
            if !ok { throw GokuPipelineError.invalidOption(option: field, reason: reason()) }
        }
        try check(transformer != nil || GokuConfig.presets[preset] != nil, "preset",
            "unknown preset '\(preset)' (\(GokuConfig.presets.keys.sorted().joined(separator: ", ")))")
        try transformer?.validate()
        try check(!vaeFolder.isEmpty, "vaeFolder", "is required: a trained VAE folder (goku vae train)")
        try check((0...1).contains(firstFrameProbability), "firstFrameProbability", "must be in [0, 1]")
        try check(maxTextLength >= 2 && maxTextLength <= 512, "maxTextLength", "must be 2 to 512")
        try check(datasetSize >= 1, "datasetSize", "must be positive")
        try check(samplesPerStep >= 1, "samplesPerStep", "must be positive")
        try check(steps >= 1, "steps", "must be positive")
        try check(learningRate > 0 && learningRate.isFinite, "learningRate", "must be positive")
        try check(warmupSteps >= 0 && weightDecay >= 0 && clipNorm >= 0, "warmupSteps", "warmupSteps, weightDecay and clipNorm must be ≥ 0")
        try check((0..<1).contains(emaDecay), "emaDecay", "must be in [0, 1)")
        try check((0...1).contains(captionDropout), "captionDropout", "must be in [0, 1]")
        try check(foregroundLossWeight >= 0 && foregroundLossWeight.isFinite, "foregroundLossWeight", "must be ≥ 0")
        try check(foregroundThreshold >= 0 && foregroundThreshold.isFinite, "foregroundThreshold", "must be ≥ 0")
        try check(textRoleLossWeight >= 0 && textRoleLossWeight.isFinite, "textRoleLossWeight", "must be ≥ 0")
        try check(textRolePretrainSteps >= 0, "textRolePretrainSteps", "must be ≥ 0")
        try check(textRoleAnchorWeight >= 0 && textRoleAnchorWeight.isFinite, "textRoleAnchorWeight", "must be ≥ 0")
        try check(textRolePretrainLearningRate > 0 && textRolePretrainLearningRate.isFinite, "textRolePretrainLearningRate", "must be positive")
        try check(textRoleLossWeight == 0 || textEncoderFolder == nil, "textRoleLossWeight",
            "needs a text encoder trained jointly (no textEncoderFolder)")
        try check(checkpointEvery >= 0 && keepCheckpoints >= 1, "checkpointEvery", "checkpointEvery ≥ 0, keepCheckpoints ≥ 1")
        for (i, stage) in stages.enumerated() { try stage.validate(index: i) }
        try check(prefetchBatches >= 0, "prefetchBatches", "must be ≥ 0")
        try check(foregroundLossWeight == 0 || stages.isEmpty, "foregroundLossWeight",
            "is tuned for the Shapes recipe's black frames; not for dataset folders")
        try check((data.frames - 1) % 4 == 0, "data.frames", "\(data.frames) is not 1 + 4k")
        try check(data.width % 16 == 0 && data.height % 16 == 0, "data.width", "\(data.width)x\(data.height) must be multiples of 16")
        try check((0...1).contains(data.imageFraction), "data.imageFraction", "must be in [0, 1]")
    }

    /// Reads a JSON config; unknown keys are errors naming the key and file.
    public static func read(from url: URL) throws -> GokuTrainingConfig {
        let raw: Data
        do { raw = try Data(contentsOf: url) } catch {
            throw GokuPipelineError.invalidOption(option: url.path, reason: "cannot read: \(error.localizedDescription)")
        }
        guard let object = try? JSONSerialization.jsonObject(with: raw) as? [String: Any] else {
            throw GokuPipelineError.invalidOption(option: url.path, reason: "not a JSON object")
        }
        let known = Set(Mirror(reflecting: GokuTrainingConfig()).children.compactMap(\.label))
        for key in object.keys.sorted() where !known.contains(key) {
            throw GokuPipelineError.invalidOption(option: key, reason: "unknown field in \(url.path)")
        }
        var merged = try JSONSerialization.jsonObject(with: JSONEncoder().encode(GokuTrainingConfig())) as! [String: Any]
        for (key, value) in object { merged[key] = value }
        let config: GokuTrainingConfig
        do {
            config = try ConfigFile.decode(
                GokuTrainingConfig.self, from: JSONSerialization.data(withJSONObject: merged), file: url.path)
        } catch {
            throw GokuPipelineError.invalidOption(option: url.path, reason: "\(error)")
        }
        try config.validate()
        return config
    }
}

/// The Shapes data the transformer trains on.
public struct ShapesTrainingData: Codable, Equatable, Sendable {
    /// Data seed.
    public var seed: UInt64 = 1
    /// Frame size, multiples of 16.
    public var width = 64, height = 64
    /// Frames of a video, 1 + 4k.
    public var frames = 17
    /// Share of images among the samples.
    public var imageFraction = 0.3

    /// The defaults: 64×64, 17 frames, 30% images.
    public init() {}
}

/// The training objective.
public enum TrainingObjective: String, Codable, Sendable, CaseIterable {
    /// Rectified flow: x_t = t·x1 + (1 − t)·x0, target x1 − x0 (the paper's).
    case flow
    /// The DDPM ε-prediction baseline with the same model and data.
    case ddpm
}

/// The β schedule of the DDPM baseline.
public enum DDPMScheduleKind: String, Codable, Sendable, CaseIterable {
    /// Linear β (Ho et al.).
    case linear
    /// Cosine ᾱ (Nichol and Dhariwal).
    case cosine
}

/// The precision of the transformer's matrix products in training.
public enum TrainingPrecision: String, Codable, Sendable, CaseIterable {
    /// Float32 products.
    case fp32
    /// bfloat16 operands with Float32 accumulation (`MixedPrecision.bfloat16`).
    case bf16

    /// The engine's mode.
    public var mode: MixedPrecision.Mode { MixedPrecision.Mode(name: rawValue)! }
}

/// Whose foreground the Shapes recipe's loss weighting follows.
public enum ForegroundSource: String, Codable, Sendable, CaseIterable {
    /// The data's objects only.
    case data
    /// The data's and those of the model's estimate of the clean latent.
    case dataOrEstimate
}

/// How a prepared latent (a VAE posterior) becomes the clean sample x1 of a step.
public enum LatentSampling: String, Codable, Sendable, CaseIterable {
    /// The posterior's mean (deterministic; what the Shapes recipe trains on).
    case mode
    /// A draw mean + std·ε from the training generator (a little augmentation, as CogVideoX's trainers do).
    case posterior
}
