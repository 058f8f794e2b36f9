import Foundation
import NN
import TensorCore
import TextEncoder
import VideoVAE

/// What a training world adds to `GokuTrainer` beyond dataset folders and a pretrained text encoder: the seams through
/// which a recipe (the procedural Shapes world's is `ShapesTrainingRecipe`, in the `ShapesRecipe` target) supplies its
/// own data, text encoder, auxiliary text objective and loss weighting, so the core pipeline knows nothing of any one
/// world.
///
/// Decision: one protocol given to the trainer at init, asked once per part while the trainer is built, rather than
/// subclassing the trainer: the trainer keeps the order in which random generators are drawn and parameters are
/// registered, so a recipe changes none of a run's numbers by being a separate type. A recipe carries its own settings
/// (a `GokuRecipeOptions` value, read from the same flat JSON as the core config and recorded beside it in `run.json`);
/// every method also receives the core `GokuTrainingConfig` (seed, text length, stages).
///
/// Without a recipe a run needs `stages` and a `textEncoderFolder`; `GokuTrainer` throws
/// `GokuPipelineError.invalidOption` naming the missing one otherwise.
public protocol GokuTrainingRecipe {
    /// Checks the recipe's settings against the core config; throws `GokuPipelineError.invalidOption` naming the first
    /// bad field. Called first by `GokuTrainer`.
    func validate(config: GokuTrainingConfig) throws

    /// Writes the run's `run.json` (the core config and the recipe's settings as one flat object) into a new run
    /// folder, or checks it against the one there, each side's changeable fields free (`GokuRunConfig.checkOrWrite`).
    func checkOrWriteRunConfig(_ config: GokuTrainingConfig, in folder: URL) throws

    /// The default frame count and size of generation recorded in the exported model of a run without `stages`.
    var generationSize: (frames: Int, width: Int, height: Int) { get }

    /// The training data of a run without `stages`.
    /// - Parameters: vaeIdentity: `DatasetPreparer.vaeIdentity(ofFolder:)` of the run's VAE, for naming caches;
    ///   runDirectory: the run folder, where caches may be kept.
    func batchSource(
        config: GokuTrainingConfig, vae: VideoAutoencoder, vaeIdentity: String, runDirectory: URL, showProgress: Bool
    ) throws -> TrainingBatchSource

    /// The text encoder trained from scratch jointly with the transformer when `textEncoderFolder` is nil: its
    /// tokenizer and a fresh model initialised from `generator` (the trainer's initialisation generator, drawn before
    /// the transformer's weights).
    func textEncoder(config: GokuTrainingConfig, generator: RandomGenerator) throws -> T5TextEncoder

    /// An auxiliary loss on the trained text encoder's states, with its own parameters; nil when the config turns none
    /// on. Only asked when the text encoder is trained (no `textEncoderFolder`).
    func auxiliaryTextObjective(config: GokuTrainingConfig, textDimension: Int) -> GokuAuxiliaryTextObjective?

    /// Per-position weights of the flow loss; nil trains the plain mean squared error.
    func lossWeighting(config: GokuTrainingConfig) -> GokuLossWeighting?
}

/// An auxiliary objective on the jointly trained text encoder's states (the Shapes recipe's caption-role head).
///
/// Its parameters are trained by the same optimizer as the model's, are not EMA'd or exported, and are saved in the
/// checkpoint's `model` group under their keys' prefix (the Shapes head: `text_role_head.`). A checkpoint without
/// them (a run resumed with the objective newly turned on) keeps their fresh initialisation and runs the
/// pre-training phase, when the objective has one.
public protocol GokuAuxiliaryTextObjective: AnyObject {
    /// The objective's weight beside the flow loss.
    var lossWeight: Double { get }
    /// Its trainable parameters, keyed as saved in the checkpoint's `model` group (with the objective's prefix).
    var namedParameters: [(key: String, tensor: Tensor)] { get }
    /// The keys of `namedParameters` that weight decay applies to.
    var decayedKeys: Set<String> { get }
    /// Whether a phase of its own runs before training when its parameters start fresh.
    var hasPretrainingPhase: Bool { get }
    /// The loss on a batch of states (B, Ltext, D) of `captions`; nil when no caption has labels.
    func loss(states: Tensor, captions: [String]) -> Tensor?
    /// Loads its parameters from the `model` group's tensors under their full keys (those of `namedParameters`).
    func load(_ tensors: [String: Tensor]) throws
    /// Runs the pre-training phase on `text`'s encoder and the objective's parameters over the training `captions`.
    /// - Returns: one line summarising it, printed by `GokuTrainer.run`.
    func pretrain(text: TextConditioning, captions: [String], showProgress: Bool, output: FileHandle) throws -> String
}

/// Per-position weights of the flow loss (the Shapes recipe's foreground weighting).
public protocol GokuLossWeighting {
    /// The weights of one sample, broadcastable against its latent (C, T, h, w); computed from values, not recorded
    /// for autograd (`RectifiedFlow.weightedLoss` normalises by their sum).
    /// - Parameters: clean: x1; noisy: x_t; prediction: the model's output for it (detach before use); time: t;
    ///   flow: whether the objective is the flow one (its prediction is a velocity), not the DDPM baseline.
    func weights(clean: Tensor, noisy: Tensor, prediction: Tensor, time: Double, flow: Bool) -> Tensor
}
