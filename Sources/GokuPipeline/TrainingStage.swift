import Checkpoint
import Datasets
import Foundation
import Optim

/// One dataset folder in a stage's mixture.
public struct DatasetMixtureEntry: Codable, Equatable, Sendable {
    /// A dataset folder (`manifest.jsonl` + media) or a prepared folder (`goku data prepare`).
    public var path: String
    /// Expected appearances of each of its samples per epoch, multiplied by the row's own `weight` (1: once).
    public var weight: Double = 1

    /// An entry; see the properties.
    public init(path: String, weight: Double = 1) {
        self.path = path
        self.weight = weight
    }

    enum CodingKeys: String, CodingKey, CaseIterable { case path, weight }

    public init(from decoder: Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        path = try c.decode(String.self, forKey: .path)
        weight = try c.decodeIfPresent(Double.self, forKey: .weight) ?? 1
    }
}

/// Which samples of its datasets a stage trains on.
public enum SampleKinds: String, Codable, Sendable, CaseIterable {
    /// Images and videos together (joint training).
    case all
    /// Images only (the paper's text-image pairing stage).
    case images
    /// Videos only.
    case videos
}

/// One stage of a staged run (the paper's §6: text-image pairing on images, then joint image and video, then higher
/// resolution and longer clips), trained on dataset folders.
///
/// Each stage has its own data mixture, token budget (`PackingSampler`), framing (resolution cap, frame rate and
/// length: each dataset is prepared once per framing) and learning-rate schedule (warm-up, then constant or cosine to 5%
/// of the peak over the stage). The run moves from stage to stage by itself; a resumed run continues inside its stage at
/// the same batch.
public struct TrainingStage: Codable, Equatable, Sendable {
    /// A name for logs, e.g. "images-64".
    public var name: String
    /// Optimizer steps in this stage; the last stage runs until the run's `steps`.
    public var steps: Int
    /// The data mixture; `goku train --data` replaces it in every stage.
    public var datasets: [DatasetMixtureEntry]
    /// Which samples to train on.
    public var kinds: SampleKinds = .all
    /// Most latent tokens (after patchify) packed into one step, e.g. 1024.
    public var tokenBudget: Int
    /// Longest side of the frames, pixels (the stage's resolution cap), e.g. 64.
    public var maxSide: Int = 256
    /// Frames per second videos are sampled at (nil: their own rate).
    public var framesPerSecond: Double? = 8
    /// Most frames of a clip, 1 + 4k, e.g. 17.
    public var maxFrames: Int = 17
    /// Peak learning rate (nil: the run's `learningRate`).
    public var learningRate: Double?
    /// Warm-up steps at the stage's start (nil: the run's `warmupSteps`).
    public var warmupSteps: Int?
    /// Decay after warm-up (nil: the run's `decay`).
    public var decay: LearningRateSchedule.Decay?

    /// A stage; see the properties.
    public init(
        name: String, steps: Int, datasets: [DatasetMixtureEntry], kinds: SampleKinds = .all, tokenBudget: Int,
        maxSide: Int = 256, framesPerSecond: Double? = 8, maxFrames: Int = 17
    ) {
        self.name = name
        self.steps = steps
        self.datasets = datasets
        self.kinds = kinds
        self.tokenBudget = tokenBudget
        self.maxSide = maxSide
        self.framesPerSecond = framesPerSecond
        self.maxFrames = maxFrames
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case name, steps, datasets, kinds, tokenBudget, maxSide, framesPerSecond, maxFrames, learningRate, warmupSteps
        case decay
    }

    public init(from decoder: Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decodeIfPresent(String.self, forKey: .name) ?? "stage"
        steps = try c.decode(Int.self, forKey: .steps)
        datasets = try c.decodeIfPresent([DatasetMixtureEntry].self, forKey: .datasets) ?? []
        kinds = try c.decodeIfPresent(SampleKinds.self, forKey: .kinds) ?? .all
        tokenBudget = try c.decode(Int.self, forKey: .tokenBudget)
        maxSide = try c.decodeIfPresent(Int.self, forKey: .maxSide) ?? 256
        framesPerSecond = try c.decodeIfPresent(Double.self, forKey: .framesPerSecond) ?? 8
        maxFrames = try c.decodeIfPresent(Int.self, forKey: .maxFrames) ?? 17
        learningRate = try c.decodeIfPresent(Double.self, forKey: .learningRate)
        warmupSteps = try c.decodeIfPresent(Int.self, forKey: .warmupSteps)
        decay = try c.decodeIfPresent(LearningRateSchedule.Decay.self, forKey: .decay)
    }

    /// The framing policy of this stage for a model whose latents are `multiple` pixels a patch.
    public func framing(multiple: Int) -> MediaFraming {
        MediaFraming(maxSide: maxSide, multiple: multiple, framesPerSecond: framesPerSecond, maxFrames: maxFrames)
    }

    /// Throws `GokuPipelineError.invalidOption` naming the stage's first bad field.
    func validate(index: Int) throws {
        func check(_ ok: Bool, _ field: String, _ reason: String) throws {
            if !ok { throw GokuPipelineError.invalidOption(option: "stages[\(index)].\(field)", reason: reason) }
        }
        try check(steps >= 1, "steps", "must be positive")
        try check(!datasets.isEmpty, "datasets", "needs at least one dataset folder (or pass --data)")
        for (i, d) in datasets.enumerated() {
            try check(!d.path.isEmpty, "datasets[\(i)].path", "is empty")
            try check(d.weight.isFinite && d.weight >= 0, "datasets[\(i)].weight", "must be ≥ 0")
        }
        try check(tokenBudget >= 1, "tokenBudget", "must be positive")
        try check(maxSide >= 16, "maxSide", "must be at least 16")
        try check(maxFrames >= 1 && (maxFrames - 1) % 4 == 0, "maxFrames", "\(maxFrames) is not 1 + 4k")
        try check(framesPerSecond.map { $0.isFinite && $0 > 0 } ?? true, "framesPerSecond", "must be positive")
        try check(learningRate.map { $0.isFinite && $0 > 0 } ?? true, "learningRate", "must be positive")
        try check(warmupSteps.map { $0 >= 0 } ?? true, "warmupSteps", "must be ≥ 0")
    }
}
