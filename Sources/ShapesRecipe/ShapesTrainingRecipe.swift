import Foundation
import GokuPipeline
import NN
import Optim
import TensorCore
import TextEncoder
import Training
import VideoVAE

/// The procedural Shapes world's training recipe (the shipped model's): `GokuTrainer`'s `GokuTrainingRecipe` for runs
/// without `stages` and for a text encoder trained from scratch.
///
/// - Data: `datasetSize` generated Shapes clips (`data`) encoded once by the VAE and cached in `<run>/latents`
///   (`LatentDataset`), `samplesPerStep` of them a step in a seeded order (`ShapesBatchSource`).
/// - Text: the closed caption vocabulary's tokenizer and a tiny T5 (`ShapesText`, or `textEncoder` when set).
/// - Auxiliary text loss: the caption-role objective (`CaptionRoleObjective`, weight `textRoleLossWeight`) with its
///   phase before training (`CaptionRolePretraining`), its head saved under `text_role_head.`.
/// - Loss weighting: `ForegroundWeighting` (`foregroundLossWeight`, `foregroundThreshold`, `foregroundOf`), tuned on the
///   recipe's black frames.
///
/// Its settings are `options` (`ShapesRecipeOptions`, read from the same flat config file as the core config); the
/// core config supplies the seed and text length.
public struct ShapesTrainingRecipe: GokuTrainingRecipe {
    /// The recipe's settings.
    public var options: ShapesRecipeOptions

    /// The recipe with `options`.
    public init(options: ShapesRecipeOptions = ShapesRecipeOptions()) { self.options = options }

    /// Reads a Shapes training config file: the core fields and the recipe's in one flat object (unknown keys named),
    /// both validated.
    public static func read(from url: URL) throws -> (config: GokuTrainingConfig, recipe: ShapesTrainingRecipe) {
        let both = try GokuTrainingConfig.read(from: url, recipeOptions: ShapesRecipeOptions.self)
        return (both.config, ShapesTrainingRecipe(options: both.options))
    }

    public func validate(config: GokuTrainingConfig) throws { try options.validate(for: config) }

    public func checkOrWriteRunConfig(_ config: GokuTrainingConfig, in folder: URL) throws {
        try GokuRunConfig(config: config, options: options).checkOrWrite(in: folder)
    }

    /// The Shapes data's frames and size.
    public var generationSize: (frames: Int, width: Int, height: Int) {
        (options.data.frames, options.data.width, options.data.height)
    }

    public func batchSource(
        config: GokuTrainingConfig, vae: VideoAutoencoder, vaeIdentity: String, runDirectory: URL, showProgress: Bool
    ) throws -> TrainingBatchSource {
        let dataset = try LatentDataset.loadOrBuild(
            vae: vae, vaeIdentity: vaeIdentity, data: options.data, count: options.datasetSize,
            folder: runDirectory.appendingPathComponent("latents"), showProgress: showProgress)
        return ShapesBatchSource(dataset: dataset, samplesPerStep: options.samplesPerStep, seed: config.seed)
    }

    public func textEncoder(config: GokuTrainingConfig, generator: RandomGenerator) throws -> T5TextEncoder {
        let model = T5EncoderModel(config: options.textEncoder ?? ShapesText.encoderConfig, generator: generator)
        return T5TextEncoder(tokenizer: try ShapesText.tokenizer(), model: model, maxLength: config.maxTextLength)
    }

    /// The caption-role objective when `textRoleLossWeight` > 0; its head is initialised from seed + 0x2013.
    public func auxiliaryTextObjective(config: GokuTrainingConfig, textDimension: Int) -> GokuAuxiliaryTextObjective? {
        options.textRoleLossWeight > 0
            ? CaptionRoleTextObjective(options: options, seed: config.seed, textDimension: textDimension) : nil
    }

    /// Foreground weighting when `foregroundLossWeight` > 0.
    public func lossWeighting(config: GokuTrainingConfig) -> GokuLossWeighting? {
        options.foregroundLossWeight > 0
            ? ShapesForegroundLossWeighting(
                weighting: ForegroundWeighting(extraWeight: options.foregroundLossWeight, threshold: options.foregroundThreshold),
                source: options.foregroundOf)
            : nil
    }
}

/// The caption-role objective as `GokuTrainer`'s auxiliary text objective: the head (`CaptionRoleObjective`) and the
/// settings of its phase before training (`CaptionRolePretraining`), from the options' `textRole…` fields.
public final class CaptionRoleTextObjective: GokuAuxiliaryTextObjective {
    /// The head and loss.
    public let objective: CaptionRoleObjective
    /// The weight and phase settings.
    public let options: ShapesRecipeOptions
    /// The run's seed (the phase draws from seed + 0x2014).
    public let seed: UInt64

    /// The objective of `options`, its head initialised from `seed` + 0x2013.
    public init(options: ShapesRecipeOptions, seed: UInt64, textDimension: Int) {
        self.options = options
        self.seed = seed
        objective = CaptionRoleObjective(dimension: textDimension, generator: RandomGenerator(seed: seed &+ 0x2013))
    }

    public var lossWeight: Double { options.textRoleLossWeight }
    public var namedParameters: [(key: String, tensor: Tensor)] { objective.namedParameters }
    public var decayedKeys: Set<String> { WeightDecay.decayedKeys(of: objective.head, prefix: CaptionRoleObjective.prefix) }
    /// Whether `textRolePretrainSteps` > 0.
    public var hasPretrainingPhase: Bool { options.textRolePretrainSteps > 0 }

    public func loss(states: Tensor, captions: [String]) -> Tensor? { objective.loss(states: states, captions: captions) }

    public func load(_ tensors: [String: Tensor]) throws {
        let prefix = CaptionRoleObjective.prefix
        try objective.head.load(Dictionary(uniqueKeysWithValues: tensors.compactMap { key, value in
            key.hasPrefix(prefix) ? (String(key.dropFirst(prefix.count)), value) : nil
        }))
    }

    /// Runs `CaptionRolePretraining` with the options' settings (seed + 0x2014).
    public func pretrain(text: TextConditioning, captions: [String], showProgress: Bool, output: FileHandle) throws -> String {
        var phase = CaptionRolePretraining(
            steps: options.textRolePretrainSteps, learningRate: options.textRolePretrainLearningRate, seed: seed &+ 0x2014)
        phase.anchorWeight = options.textRoleAnchorWeight
        phase.reinitialize = options.textRoleReinitialize
        let bar = ProgressBar(total: phase.steps, label: "text roles", output: output, interactive: showProgress ? nil : false)
        let report = try phase.run(text: text, objective: objective, captions: captions, progress: bar)
        return String(
            format: "text roles: loss %.4f, anchor %.4f, object words' roles %.1f%% right",
            report.roleLoss, report.anchor, 100 * report.objectWordAccuracy)
    }
}

/// `ForegroundWeighting` as `GokuTrainer`'s loss weighting: the data's foreground, and with `dataOrEstimate` (flow
/// objective only) also that of the model's estimate of the clean latent, x_t + (1 − t)·v̂.
public struct ShapesForegroundLossWeighting: GokuLossWeighting {
    /// The weighting.
    public var weighting: ForegroundWeighting
    /// Whose objects weigh more.
    public var source: ForegroundSource

    /// A weighting of `source`'s objects.
    public init(weighting: ForegroundWeighting, source: ForegroundSource) {
        self.weighting = weighting
        self.source = source
    }

    public func weights(clean: Tensor, noisy: Tensor, prediction: Tensor, time: Double, flow: Bool) -> Tensor {
        let estimate = source == .dataOrEstimate && flow
            ? Autograd.inference { noisy + prediction.detached() * (1 - time) } : nil
        return weighting.weights(for: clean, estimate: estimate)
    }
}

/// The Shapes recipe's data: the cached latents of `LatentDataset`, `samplesPerStep` a step, each epoch a
/// permutation fixed by the seed and the epoch number.
public final class ShapesBatchSource: TrainingBatchSource {
    let dataset: LatentDataset
    let samplesPerStep: Int
    let seed: UInt64
    public private(set) var position: Int
    /// The shuffled order of the current epoch (recomputed only when the epoch changes).
    private var epochOrder: (epoch: Int, order: [Int])?

    public init(dataset: LatentDataset, samplesPerStep: Int, seed: UInt64) {
        self.dataset = dataset
        self.samplesPerStep = samplesPerStep
        self.seed = seed
        position = 0
    }

    public var captions: [String] { dataset.items.map(\.caption) }
    public var sampleCount: Int { dataset.items.count }
    public func runState() -> [String: String] { [:] }
    public func restore(position: Int, state: [String: String]) { self.position = position }

    /// The dataset index of the `position`-th sample drawn.
    func datasetIndex(at position: Int) -> Int {
        let n = dataset.items.count, epoch = position / n
        if epochOrder?.epoch != epoch {
            var order = Array(0..<n)
            let shuffle = RandomGenerator(seed: seed &+ 0xDA7A &+ UInt64(epoch) &* 0x9E37_79B9)
            for i in stride(from: n - 1, to: 0, by: -1) { order.swapAt(i, shuffle.nextInt(below: i + 1)) }
            epochOrder = (epoch, order)
        }
        return epochOrder!.order[position % n]
    }

    public func nextBatch(step: Int) throws -> [TrainingExample] {
        let items = (0..<samplesPerStep).map { dataset.items[datasetIndex(at: position + $0)] }
        position += items.count
        return items.map { TrainingExample(latent: $0.latent, caption: $0.caption) }
    }
}

