import Foundation
import GokuPipeline
import TextEncoder

/// The Shapes recipe's config fields (`ShapesTrainingRecipe`), in the same flat JSON object as `GokuTrainingConfig`'s:
/// `configs/goku-shapes-64*.json` and a run's `run.json` hold both (`GokuTrainingConfig.read(from:recipeOptions:)`,
/// `GokuRunConfig`). Field names, defaults and meanings are those these fields had in `GokuTrainingConfig`, so older
/// files and run folders read and resume unchanged.
public struct ShapesRecipeOptions: GokuRecipeOptions {
    /// The generated training data (used when `stages` is empty).
    public var data = ShapesTrainingData()
    /// Distinct training samples; their VAE latents are computed once and cached in the run folder.
    public var datasetSize = 4096
    /// Samples packed into one sequence per step (images and videos mixed, Patch n' Pack).
    public var samplesPerStep = 8
    /// The T5 trained from scratch when `textEncoderFolder` is nil; nil uses `ShapesText.encoderConfig`.
    public var textEncoder: T5Config?
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

    /// The defaults.
    public init() {}

    /// Besides the core's: the caption-role settings (the head is not part of the model, and starts fresh when turned
    /// on) and the foreground weighting (which parts of a frame a stage trains most is a choice per stage; nothing in
    /// the checkpoint depends on it).
    public static var changeableOnResume: Set<String> {
        [
            "textRoleLossWeight", "textRolePretrainSteps", "textRolePretrainLearningRate", "textRoleAnchorWeight",
            "textRoleReinitialize", "foregroundLossWeight", "foregroundThreshold", "foregroundOf",
        ]
    }

    /// Checks every field; throws `GokuPipelineError.invalidOption` naming the first bad one.
    public func validate(for config: GokuTrainingConfig) throws {
        func check(_ ok: Bool, _ field: String, _ reason: @autoclosure () -> String) throws {
            if !ok { throw GokuPipelineError.invalidOption(option: field, reason: reason()) }
        }
        try check(datasetSize >= 1, "datasetSize", "must be positive")
        try check(samplesPerStep >= 1, "samplesPerStep", "must be positive")
        try check(foregroundLossWeight >= 0 && foregroundLossWeight.isFinite, "foregroundLossWeight", "must be ≥ 0")
        try check(foregroundThreshold >= 0 && foregroundThreshold.isFinite, "foregroundThreshold", "must be ≥ 0")
        try check(textRoleLossWeight >= 0 && textRoleLossWeight.isFinite, "textRoleLossWeight", "must be ≥ 0")
        try check(textRolePretrainSteps >= 0, "textRolePretrainSteps", "must be ≥ 0")
        try check(textRoleAnchorWeight >= 0 && textRoleAnchorWeight.isFinite, "textRoleAnchorWeight", "must be ≥ 0")
        try check(textRolePretrainLearningRate > 0 && textRolePretrainLearningRate.isFinite, "textRolePretrainLearningRate", "must be positive")
        try check(textRoleLossWeight == 0 || config.textEncoderFolder == nil, "textRoleLossWeight",
            "needs a text encoder trained jointly (no textEncoderFolder)")
        try check(foregroundLossWeight == 0 || config.stages.isEmpty, "foregroundLossWeight",
            "is tuned for the Shapes recipe's black frames; not for dataset folders")
        try check((data.frames - 1) % 4 == 0, "data.frames", "\(data.frames) is not 1 + 4k")
        try check(data.width % 16 == 0 && data.height % 16 == 0, "data.width", "\(data.width)x\(data.height) must be multiples of 16")
        try check((0...1).contains(data.imageFraction), "data.imageFraction", "must be in [0, 1]")
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


/// Whose foreground the Shapes recipe's loss weighting follows.
public enum ForegroundSource: String, Codable, Sendable, CaseIterable {
    /// The data's objects only.
    case data
    /// The data's and those of the model's estimate of the clean latent.
    case dataOrEstimate
}
