import Checkpoint
import Distributed
import Foundation
import GokuModel
import Optim
import RectifiedFlow
import TensorCore
import TextEncoder
import Training

/// Everything the core of `goku train` needs. Read from JSON (`--config`); every field has a default except
/// `vaeFolder`, and unknown fields are errors. Saved as `run.json` in the run folder; a resumed run must match it (only
/// `steps`, `precision`, the flow-time distribution and a few more may change: `changeableOnResume`).
///
/// A training recipe's own settings (the Shapes recipe's data, text encoder, caption-role and foreground fields, in
/// `ShapesRecipeOptions`) are a separate `GokuRecipeOptions` type written in the same flat JSON object: one config file
/// and one `run.json` hold both (`read(from:recipeOptions:)`, `GokuRunConfig`), so a file keeps reading unchanged
/// whichever type a field now belongs to, and an unknown key is named against both.
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
    /// A pretrained Hugging Face T5 folder, used frozen with a caption cache; nil trains the recipe's text encoder
    /// from scratch jointly with the transformer (`GokuTrainingRecipe.textEncoder`; the shipped model's choice: a tiny
    /// T5 learns the Shapes captions' vocabulary).
    public var textEncoderFolder: String?
    /// Captions are tokenised to this many tokens.
    public var maxTextLength = 24
    /// Training on dataset folders: the stages, in order (`TrainingStage`: mixture, token budget, framing, schedule).
    /// Empty: the training recipe's data (`GokuTrainingRecipe.batchSource`; the Shapes recipe's generated clips).
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
    /// Seed of initialisation, data order and noise.
    public var seed: UInt64 = 0
    /// Steps between checkpoints (0: only at the end).
    public var checkpointEvery = 500
    /// Checkpoints kept.
    public var keepCheckpoints = 2
    /// Written into the exported model's `model_index.json`.
    public var sampling = SamplingDefaults()
    /// How the run is spread over the ranks it is started on (`goku launch -n N`, `mpirun`): the sharding stage of
    /// data parallel, and the sequence-parallel degree. The data-parallel degree is the rank count over it.
    public var parallel = ParallelSettings()

    /// The fields a resumed run may change besides `steps`: the matrix-product precision (weights and optimizer state
    /// are Float32 either way), and how flow times are drawn (`timesteps`, `shiftTimesteps`): which noise levels a
    /// stage trains most is a choice per stage, as in multi-stage recipes that move it between resolutions, and
    /// nothing in the checkpoint depends on it. The `sampling` defaults, which only the exported `model_index.json`
    /// reads, may change too, as may how data is read (`prefetchBatches`, `skipBadRows`, `preparedRoot`). A recipe adds
    /// its own (`GokuRecipeOptions.changeableOnResume`).
    public static let changeableOnResume: Set<String> = [
        "precision", "timesteps", "shiftTimesteps", "sampling", "prefetchBatches", "skipBadRows", "preparedRoot", "parallel",
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
        try check(steps >= 1, "steps", "must be positive")
        try check(parallel.sequenceParallel >= 1, "parallel.sequenceParallel", "must be positive")
        try check(parallel.sharding != .full && parallel.sharding != .hybrid, "parallel.sharding",
            "'\(parallel.sharding.rawValue)' is not supported yet: use none, optimizer or gradients")
        try check(learningRate > 0 && learningRate.isFinite, "learningRate", "must be positive")
        try check(warmupSteps >= 0 && weightDecay >= 0 && clipNorm >= 0, "warmupSteps", "warmupSteps, weightDecay and clipNorm must be ≥ 0")
        try check((0..<1).contains(emaDecay), "emaDecay", "must be in [0, 1)")
        try check((0...1).contains(captionDropout), "captionDropout", "must be in [0, 1]")
        try check(checkpointEvery >= 0 && keepCheckpoints >= 1, "checkpointEvery", "checkpointEvery ≥ 0, keepCheckpoints ≥ 1")
        for (i, stage) in stages.enumerated() { try stage.validate(index: i) }
        try check(prefetchBatches >= 0, "prefetchBatches", "must be ≥ 0")
    }

    /// Reads a JSON config of the core fields only; unknown keys (a recipe's too) are errors naming the key and file.
    public static func read(from url: URL) throws -> GokuTrainingConfig {
        try read(from: url, recipeOptions: NoRecipeOptions.self).config
    }

    /// Reads a JSON config holding the core fields and those of a recipe's options in one flat object; a key of
    /// neither type is an error naming the key and file. Each part is validated (`validate`, then the options'
    /// `validate(for:)`).
    public static func read<Options: GokuRecipeOptions>(
        from url: URL, recipeOptions: Options.Type
    ) throws -> (config: GokuTrainingConfig, options: Options) {
        let both: GokuRunConfig<Options>
        do {
            both = try ConfigFile.readStrict(
                GokuRunConfig<Options>.self, from: url, known: GokuRunConfig<Options>.fieldNames,
                defaults: GokuRunConfig(config: GokuTrainingConfig(), options: Options()))
        } catch let error as ConfigReadError {
            throw GokuPipelineError.invalidOption(option: error.subject, reason: error.reason)
        }
        try both.config.validate()
        try both.options.validate(for: both.config)
        return (both.config, both.options)
    }
}

/// A training recipe's own config fields, read from and written to the same flat JSON object as
/// `GokuTrainingConfig`'s (a config file, and `run.json`). Every field needs a default (`init()`), and its names must
/// differ from the core's.
public protocol GokuRecipeOptions: Codable, Equatable, Sendable {
    /// The defaults.
    init()
    /// The fields a resumed run may change besides the core's `GokuTrainingConfig.changeableOnResume`.
    static var changeableOnResume: Set<String> { get }
    /// Checks every field, also against the core config; throws `GokuPipelineError.invalidOption` naming the first
    /// bad one.
    func validate(for config: GokuTrainingConfig) throws
}

/// How a run is spread over its ranks. A resumed run may change it (checkpoints reshard on load).
public struct ParallelSettings: Codable, Equatable, Sendable {
    /// What each data-parallel rank keeps of the training state: `none`, `optimizer` (ZeRO-1), `gradients` (ZeRO-2).
    public var sharding = ShardingStage.none
    /// Ranks that split each packed sequence (Ulysses); 1 for none. It must divide the rank count and the model's
    /// attention heads.
    public var sequenceParallel = 1

    /// The defaults: replicated state, no sequence parallel.
    public init(sharding: ShardingStage = .none, sequenceParallel: Int = 1) {
        self.sharding = sharding
        self.sequenceParallel = sequenceParallel
    }

    enum CodingKeys: String, CodingKey, CaseIterable { case sharding, sequenceParallel }

    public init(from decoder: Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        sharding = try c.decodeIfPresent(ShardingStage.self, forKey: .sharding) ?? .none
        sequenceParallel = try c.decodeIfPresent(Int.self, forKey: .sequenceParallel) ?? 1
    }
}

/// The options of no recipe: no fields (a run on dataset folders with a pretrained text encoder).
public struct NoRecipeOptions: GokuRecipeOptions {
    /// No fields.
    public init() {}
    /// Nothing to change.
    public static var changeableOnResume: Set<String> { [] }
    /// Nothing to check.
    public func validate(for config: GokuTrainingConfig) throws {}
}

/// The core config and a recipe's options as the one flat JSON object of a config file and of `run.json`: both types
/// encode their fields into the same object, and each decodes its own from it (the other's keys are ignored there).
public struct GokuRunConfig<Options: GokuRecipeOptions>: Codable, Equatable {
    /// The core fields.
    public var config: GokuTrainingConfig
    /// The recipe's fields.
    public var options: Options

    /// Both parts.
    public init(config: GokuTrainingConfig, options: Options) {
        self.config = config
        self.options = options
    }

    /// Decodes both parts from one object.
    public init(from decoder: Decoder) throws {
        config = try GokuTrainingConfig(from: decoder)
        options = try Options(from: decoder)
    }

    /// Encodes both parts into one object.
    public func encode(to encoder: Encoder) throws {
        try config.encode(to: encoder)
        try options.encode(to: encoder)
    }

    /// The keys of both parts (every field of each, optional ones included).
    public static var fieldNames: Set<String> {
        Set(Mirror(reflecting: GokuTrainingConfig()).children.compactMap(\.label))
            .union(Mirror(reflecting: Options()).children.compactMap(\.label))
    }

    /// The fields a resumed run may change besides `steps`: the core's and the recipe's.
    public static var changeableOnResume: Set<String> {
        GokuTrainingConfig.changeableOnResume.union(Options.changeableOnResume)
    }

    /// Writes both into a new run folder's `run.json`, or checks them against the one there (`RunConfigFile`).
    public func checkOrWrite(in folder: URL) throws {
        try RunConfigFile.checkOrWrite(
            self, in: folder, mayChange: Self.changeableOnResume,
            defaults: GokuRunConfig(config: GokuTrainingConfig(), options: Options()))
    }
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

/// How a prepared latent (a VAE posterior) becomes the clean sample x1 of a step.
public enum LatentSampling: String, Codable, Sendable, CaseIterable {
    /// The posterior's mean (deterministic; what the Shapes recipe trains on).
    case mode
    /// A draw mean + std·ε from the training generator (a little augmentation, as CogVideoX's trainers do).
    case posterior
}
