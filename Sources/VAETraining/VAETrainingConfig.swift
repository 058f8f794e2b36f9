import Checkpoint
import Foundation
import Optim
import TensorCore
import VideoVAE

/// Everything `goku vae train` needs: the architecture, the data, the optimisation and the bookkeeping.
///
/// Read from a JSON file (`--config`); every field has a default, so a file names only what it changes. Saved as
/// `run.json` in the output folder, and a resumed run refuses a config that changed anything but `steps`.
public struct VAETrainingConfig: Codable, Equatable, Sendable {
    /// The VAE architecture; nil selects `preset`.
    public var vae: VideoVAEConfig?
    /// A named architecture when `vae` is nil: "small" (the shipped model's), "tiny" or "cogvideox".
    public var preset: String = "small"
    /// A trained VAE (a diffusers folder) whose weights a new run starts from; its architecture must be the one
    /// `vae`/`preset` name. Nil: fresh weights. A resumed run takes its weights from the checkpoint instead.
    public var initializeFrom: String?
    /// Train the encoder (and `quant_conv`) with the decoder, or keep it as initialised and train the decoder alone.
    ///
    /// Why keep it: a diffusion model trained on this VAE's latents reads the same latents only while the encoder
    /// is unchanged. With it fixed (and `initializeFrom` set) the decoder can be trained further, for sharper
    /// reconstructions, and the result still decodes the diffusion model's samples; the export then keeps the
    /// source's scaling factor. It also makes a step cheaper: no backward pass through the encoder.
    public var trainEncoder: Bool = true
    /// Where the Shapes samples come from; nil with `dataFolder` nil means the default Shapes data.
    public var shapes: ShapesDataOptions?
    /// A folder with `manifest.jsonl` (from `goku data shapes` or `goku curate export`) instead of generated Shapes;
    /// how its files become clips, and which rows are held out, is `folderData` (`FolderClipSource`).
    public var dataFolder: String?
    /// Frame size, frames, rate, held-out rows and seed of `dataFolder`'s clips (unused without it).
    public var folderData = FolderDataOptions()
    /// Side in pixels of the square training crops (a multiple of 8), nil to train on whole frames. Held-out
    /// evaluation always uses whole frames.
    public var cropSize: Int?
    /// Spatial crop windows drawn per clip, of which the one whose pixels vary most is trained on (1: a uniform draw).
    ///
    /// Why: Shapes frames are mostly black, and a uniform 32-pixel window of a 64-pixel frame often holds a sliver of
    /// one object or none; preferring busy windows puts more edges and colour into every step. Evaluation is on
    /// whole frames, where the background is the easy part.
    public var cropCandidates: Int = 1
    /// Frames of the training video windows (1 + 4k, at most the clips' length), cut at a random start from each
    /// clip; nil trains on whole clips. Held-out evaluation always uses whole clips.
    public var cropFrames: Int?
    /// The last steps of the run, trained on whole clips and frames instead of crops (0: crops throughout). The
    /// EMA restarts at the raw weights when this phase begins, with its warm-up counted from there.
    ///
    /// Why: the VAE is convolutional but not local: GroupNorm normalises by statistics over the whole clip, and a
    /// busy 32-pixel crop has statistics far from a mostly black 64-pixel frame. Crops are the cheap way to learn the
    /// features; a short phase on whole frames then fits the normalisation to what encoding and decoding will see.
    /// On Shapes 64×64 (held-out PSNR, video / image): from scratch, 28.0 / 29.4 dB after 3000 crop steps and
    /// 30.5 / 32.7 dB after 300 more on whole frames (`configs/vae-shapes-64-wholeframes.json`); training a decoder
    /// further with its encoder fixed, 29.2 / 30.8 dB after 1000 crop steps and 33.0 / 37.0 dB after 500 on whole
    /// frames (`configs/vae-shapes-64-decoder.json`).
    public var wholeFrameSteps: Int = 0
    /// Clips per step (each 1 + 4k frames).
    public var videosPerBatch: Int = 2
    /// Images per step (one-frame clips), trained in the same step as the videos.
    public var imagesPerBatch: Int = 4
    /// Optimizer steps.
    public var steps: Int = 2000
    /// Peak learning rate (AdamW), reached after `warmupSteps`, then constant or cosine.
    public var learningRate: Double = 1e-3
    /// Linear warm-up steps.
    public var warmupSteps: Int = 100
    /// "constant" or "cosine" after warm-up.
    public var decay: LearningRateSchedule.Decay = .cosine
    /// AdamW weight decay, applied to the convolution kernels (every parameter of rank ≥ 2, `WeightDecay`), not to
    /// vectors (biases, GroupNorm scales).
    public var weightDecay: Double = 0.01
    /// Global gradient-norm clip (0 disables).
    public var clipNorm: Double = 1
    /// EMA decay of the weights that are saved at the end (0 disables EMA: the raw weights are saved), with warm-up:
    /// update n uses min(decay, (1 + n) / (10 + n)) (`ExponentialMovingAverage.warmedUpDecay`).
    public var emaDecay: Double = 0.999
    /// Weight of the mean absolute reconstruction error.
    public var l1Weight: Double = 1
    /// Weight of the mean squared reconstruction error.
    public var l2Weight: Double = 1
    /// Weight of an extra squared error on the chroma of the reconstruction error (BT.601 Cb and Cr,
    /// `ReconstructionMetrics.chromaSquaredError`), 0 for none.
    ///
    /// Why: on Shapes (small flat-coloured objects on black) plain L1 + L2 training settles in a colour-blind
    /// minimum: the decoder first learns the objects' brightness and paints them grey, the encoder then drops the
    /// colour it was carrying (unused, it only perturbs the brightness path), and the colour gradient through the
    /// decoder stays near zero, so thousands of steps later the latents of a red and a green square still agree to
    /// 0.1%. Weighting the colour-difference error lifts the colour signal above that of brightness early enough to
    /// keep colour in the latent (measured: same latents for red and green after 400 steps without it, distinct with
    /// weight 8, and +2.4 dB image PSNR at that step).
    public var chromaWeight: Double = 0
    /// Factor on the videos' loss against the images' (each is a mean over its own batch, so 1 gives the two
    /// modalities equal say whatever the batch sizes). Videos are the harder half under 4× temporal compression.
    public var videoLossWeight: Double = 1
    /// Weight of the KL term, per latent element, against N(0, 1). Small: the latent must stay informative.
    public var klWeight: Double = 1e-6
    /// Decode a sample of the posterior (true, the VAE objective) or its mean (false: the reconstruction term sees no
    /// latent noise; the KL term still shapes the means).
    public var samplePosterior: Bool = true
    /// Precision of the convolutions' products in training steps: "fp32", or "bf16" (bfloat16 operands, Float32
    /// accumulation, results and weights; see `MixedPrecision`). Evaluation and export always run in Float32.
    public var precision: String = "fp32"
    /// Seed of initialisation, noise draws and (with `shapes`) nothing else: the data has its own seed.
    public var seed: UInt64 = 0
    /// Steps between checkpoints (0: only at the end).
    public var checkpointEvery: Int = 250
    /// Checkpoints kept.
    public var keepCheckpoints: Int = 2
    /// Steps between held-out evaluations (PSNR), 0 for none until the end.
    public var evaluateEvery: Int = 500
    /// Held-out clips and images per evaluation.
    public var evaluationSamples: Int = 8

    /// A config with every default.
    public init() {}

    /// The architecture to build.
    public func resolvedVAE() throws -> VideoVAEConfig {
        if let vae { return vae }
        switch preset.lowercased() {
        case "small": return .small
        case "tiny": return .tiny
        case "cogvideox", "cogvideox-2b": return .cogVideoX
        default: throw VAETrainingError.invalidConfig(field: "preset", reason: "unknown preset '\(preset)' (small, tiny, cogvideox)")
        }
    }

    /// The Shapes options in effect.
    public var resolvedShapes: ShapesDataOptions { shapes ?? ShapesDataOptions() }

    /// Checks every field; throws `VAETrainingError.invalidConfig` naming the first bad one.
    public func validate() throws {
        func check(_ ok: Bool, _ field: String, _ reason: String) throws {
            if !ok { throw VAETrainingError.invalidConfig(field: field, reason: reason) }
        }
        let vae = try resolvedVAE()
        try vae.validate()
        try check(videosPerBatch >= 0 && imagesPerBatch >= 0 && videosPerBatch + imagesPerBatch > 0,
            "videosPerBatch", "videosPerBatch and imagesPerBatch must be ≥ 0 and not both 0")
        let (frameWidth, frameHeight, clipFrames) =
            dataFolder != nil
            ? (folderData.size, folderData.size, folderData.frames)
            : (resolvedShapes.width, resolvedShapes.height, resolvedShapes.frames)
        if let cropSize {
            try check(cropSize >= 8 && cropSize % 8 == 0 && cropSize <= min(frameWidth, frameHeight), "cropSize",
                "must be a multiple of 8 no larger than the \(frameWidth)x\(frameHeight) frames, got \(cropSize)")
        }
        try check(cropCandidates >= 1 && cropCandidates <= 64, "cropCandidates", "must be 1 to 64, got \(cropCandidates)")
        if let cropFrames {
            try check(cropFrames >= 1 && (cropFrames - 1) % 4 == 0 && cropFrames <= clipFrames, "cropFrames",
                "must be 1 + 4k and at most the clips' \(clipFrames) frames, got \(cropFrames)")
        }
        try check(steps > 0, "steps", "must be positive, got \(steps)")
        try check(wholeFrameSteps >= 0 && wholeFrameSteps <= steps, "wholeFrameSteps",
            "must be 0 to steps (\(steps)), got \(wholeFrameSteps)")
        try check(wholeFrameSteps == 0 || cropSize != nil || cropFrames != nil, "wholeFrameSteps",
            "has no effect without cropSize or cropFrames: the run already trains on whole clips")
        try check(MixedPrecision.Mode(name: precision) != nil, "precision", "'\(precision)' (\(MixedPrecision.Mode.names.joined(separator: " or ")))")
        try check(learningRate > 0 && learningRate.isFinite, "learningRate", "must be positive, got \(learningRate)")
        try check(warmupSteps >= 0, "warmupSteps", "must be ≥ 0")
        try check(weightDecay >= 0, "weightDecay", "must be ≥ 0")
        try check(clipNorm >= 0, "clipNorm", "must be ≥ 0")
        try check(emaDecay >= 0 && emaDecay < 1, "emaDecay", "must be in [0, 1), got \(emaDecay)")
        try check(
            l1Weight >= 0 && l2Weight >= 0 && klWeight >= 0 && chromaWeight >= 0, "l1Weight", "loss weights must be ≥ 0")
        try check(videoLossWeight > 0 && videoLossWeight.isFinite, "videoLossWeight", "must be positive, got \(videoLossWeight)")
        try check(checkpointEvery >= 0 && evaluateEvery >= 0, "checkpointEvery", "intervals must be ≥ 0")
        try check(keepCheckpoints >= 1, "keepCheckpoints", "must be ≥ 1")
        try check(evaluationSamples >= 1, "evaluationSamples", "must be ≥ 1")
        try check(trainEncoder || initializeFrom != nil, "trainEncoder",
            "false needs initializeFrom (a fixed encoder must come from a trained VAE)")
        if let dataFolder {
            try check(!dataFolder.isEmpty, "dataFolder", "is empty")
            let f = folderData
            try check(f.size >= vae.spatialCompression && f.size % vae.spatialCompression == 0, "folderData.size",
                "\(f.size) must be a positive multiple of \(vae.spatialCompression)")
            try check(f.frames >= 1 && (f.frames - 1) % vae.temporalCompression == 0, "folderData.frames",
                "\(f.frames) must be 1 + \(vae.temporalCompression)k")
            try check(f.framesPerSecond.map { $0.isFinite && $0 > 0 } ?? true, "folderData.framesPerSecond",
                "must be positive, got \(f.framesPerSecond ?? 0)")
            try check(f.heldOutRows >= 1, "folderData.heldOutRows", "must be ≥ 1 (evaluation and the scaling factor need held-out clips), got \(f.heldOutRows)")
        } else {
            let s = resolvedShapes
            try check(s.width % vae.spatialCompression == 0 && s.height % vae.spatialCompression == 0,
                "shapes.width", "\(s.width)x\(s.height) must be multiples of \(vae.spatialCompression)")
            try check((s.frames - 1) % vae.temporalCompression == 0 && s.frames >= 1,
                "shapes.frames", "\(s.frames) must be 1 + \(vae.temporalCompression)k")
        }
    }

    /// Reads a JSON config file; unknown keys are errors (a typo must not silently fall back to a default).
    public static func read(from url: URL) throws -> VAETrainingConfig {
        let config: VAETrainingConfig
        do {
            // Its decoding gives every absent field its default itself: no defaults to lay the keys over.
            config = try ConfigFile.readStrict(
                VAETrainingConfig.self, from: url, known: Set(CodingKeys.allCases.map(\.rawValue)), defaults: nil)
        } catch let error as ConfigReadError {
            throw VAETrainingError.invalidConfig(field: error.subject, reason: error.reason)
        }
        try config.validate()
        return config
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case vae, preset, initializeFrom, trainEncoder, shapes, dataFolder, folderData, cropSize, cropCandidates, cropFrames, wholeFrameSteps, videosPerBatch, imagesPerBatch, steps, learningRate, warmupSteps, decay
        case weightDecay, clipNorm, emaDecay, l1Weight, l2Weight, chromaWeight, videoLossWeight, klWeight, samplePosterior, precision, seed, checkpointEvery, keepCheckpoints
        case evaluateEvery, evaluationSamples
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = VAETrainingConfig()
        vae = try c.decodeIfPresent(VideoVAEConfig.self, forKey: .vae)
        preset = try c.decodeIfPresent(String.self, forKey: .preset) ?? d.preset
        initializeFrom = try c.decodeIfPresent(String.self, forKey: .initializeFrom)
        trainEncoder = try c.decodeIfPresent(Bool.self, forKey: .trainEncoder) ?? d.trainEncoder
        shapes = try c.decodeIfPresent(ShapesDataOptions.self, forKey: .shapes)
        dataFolder = try c.decodeIfPresent(String.self, forKey: .dataFolder)
        folderData = try c.decodeIfPresent(FolderDataOptions.self, forKey: .folderData) ?? d.folderData
        cropSize = try c.decodeIfPresent(Int.self, forKey: .cropSize)
        cropCandidates = try c.decodeIfPresent(Int.self, forKey: .cropCandidates) ?? d.cropCandidates
        cropFrames = try c.decodeIfPresent(Int.self, forKey: .cropFrames)
        wholeFrameSteps = try c.decodeIfPresent(Int.self, forKey: .wholeFrameSteps) ?? d.wholeFrameSteps
        videosPerBatch = try c.decodeIfPresent(Int.self, forKey: .videosPerBatch) ?? d.videosPerBatch
        imagesPerBatch = try c.decodeIfPresent(Int.self, forKey: .imagesPerBatch) ?? d.imagesPerBatch
        steps = try c.decodeIfPresent(Int.self, forKey: .steps) ?? d.steps
        learningRate = try c.decodeIfPresent(Double.self, forKey: .learningRate) ?? d.learningRate
        warmupSteps = try c.decodeIfPresent(Int.self, forKey: .warmupSteps) ?? d.warmupSteps
        decay = try c.decodeIfPresent(LearningRateSchedule.Decay.self, forKey: .decay) ?? d.decay
        weightDecay = try c.decodeIfPresent(Double.self, forKey: .weightDecay) ?? d.weightDecay
        clipNorm = try c.decodeIfPresent(Double.self, forKey: .clipNorm) ?? d.clipNorm
        emaDecay = try c.decodeIfPresent(Double.self, forKey: .emaDecay) ?? d.emaDecay
        l1Weight = try c.decodeIfPresent(Double.self, forKey: .l1Weight) ?? d.l1Weight
        l2Weight = try c.decodeIfPresent(Double.self, forKey: .l2Weight) ?? d.l2Weight
        chromaWeight = try c.decodeIfPresent(Double.self, forKey: .chromaWeight) ?? d.chromaWeight
        videoLossWeight = try c.decodeIfPresent(Double.self, forKey: .videoLossWeight) ?? d.videoLossWeight
        klWeight = try c.decodeIfPresent(Double.self, forKey: .klWeight) ?? d.klWeight
        samplePosterior = try c.decodeIfPresent(Bool.self, forKey: .samplePosterior) ?? d.samplePosterior
        precision = try c.decodeIfPresent(String.self, forKey: .precision) ?? d.precision
        seed = try c.decodeIfPresent(UInt64.self, forKey: .seed) ?? d.seed
        checkpointEvery = try c.decodeIfPresent(Int.self, forKey: .checkpointEvery) ?? d.checkpointEvery
        keepCheckpoints = try c.decodeIfPresent(Int.self, forKey: .keepCheckpoints) ?? d.keepCheckpoints
        evaluateEvery = try c.decodeIfPresent(Int.self, forKey: .evaluateEvery) ?? d.evaluateEvery
        evaluationSamples = try c.decodeIfPresent(Int.self, forKey: .evaluationSamples) ?? d.evaluationSamples
    }
}

/// The generated Shapes data a VAE trains on.
public struct ShapesDataOptions: Codable, Equatable, Sendable {
    /// Data seed (evaluation uses a different stream of the same seed, never seen in training).
    public var seed: UInt64 = 1
    /// Frame size in pixels, multiples of 8.
    public var width: Int = 64
    /// See `width`.
    public var height: Int = 64
    /// Frames per video, 1 + 4k.
    public var frames: Int = 17

    /// The defaults: 64×64, 17 frames.
    public init(seed: UInt64 = 1, width: Int = 64, height: Int = 64, frames: Int = 17) {
        self.seed = seed
        self.width = width
        self.height = height
        self.frames = frames
    }
}

/// How the files of a dataset folder (`VAETrainingConfig.dataFolder`) become clips (`FolderClipSource`); every field
/// has a default, so a config names only what it changes.
public struct FolderDataOptions: Codable, Equatable, Sendable {
    /// Side in pixels of the square frames every file is scaled (shorter side, never up) and centre-cropped to; a
    /// multiple of the VAE's spatial compression. Files smaller than this are bad rows.
    public var size: Int = 64
    /// Frames per training video, 1 + 4k; files holding fewer at `framesPerSecond` give their first frame as an image.
    public var frames: Int = 17
    /// Frames kept per second of video (capped at the file's own rate); nil keeps every frame.
    public var framesPerSecond: Double? = 8
    /// The last usable rows of the manifest, held out from training: the evaluation clips and the sample the latent
    /// scaling factor is measured on. They must give at least `evaluationSamples` videos and as many images (checked
    /// when the run opens).
    public var heldOutRows: Int = 8
    /// Seed of the per-epoch order of the videos and images.
    public var seed: UInt64 = 1
    /// Skip and count unusable rows (missing or undecodable files, frames smaller than `size`) instead of stopping.
    public var skipBadRows: Bool = false

    /// The defaults: 64-pixel squares, 17 frames at 8 fps, 8 held-out rows.
    public init(
        size: Int = 64, frames: Int = 17, framesPerSecond: Double? = 8, heldOutRows: Int = 8, seed: UInt64 = 1,
        skipBadRows: Bool = false
    ) {
        self.size = size
        self.frames = frames
        self.framesPerSecond = framesPerSecond
        self.heldOutRows = heldOutRows
        self.seed = seed
        self.skipBadRows = skipBadRows
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case size, frames, framesPerSecond, heldOutRows, seed, skipBadRows
    }

    /// Decodes with a default for every missing field; unknown fields are errors naming the field.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = FolderDataOptions()
        size = try c.decodeIfPresent(Int.self, forKey: .size) ?? d.size
        frames = try c.decodeIfPresent(Int.self, forKey: .frames) ?? d.frames
        framesPerSecond = c.contains(.framesPerSecond)
            ? try c.decodeIfPresent(Double.self, forKey: .framesPerSecond) : d.framesPerSecond
        heldOutRows = try c.decodeIfPresent(Int.self, forKey: .heldOutRows) ?? d.heldOutRows
        seed = try c.decodeIfPresent(UInt64.self, forKey: .seed) ?? d.seed
        skipBadRows = try c.decodeIfPresent(Bool.self, forKey: .skipBadRows) ?? d.skipBadRows
        let known = Set(CodingKeys.allCases.map(\.rawValue))
        let all = try decoder.container(keyedBy: AnyKey.self)
        if let unknown = all.allKeys.first(where: { !known.contains($0.stringValue) }) {
            throw VAETrainingError.invalidConfig(field: "folderData.\(unknown.stringValue)", reason: "unknown field")
        }
    }

    /// Encodes every field; a nil `framesPerSecond` as null, so that it reads back as nil rather than the default.
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(size, forKey: .size)
        try c.encode(frames, forKey: .frames)
        try c.encode(framesPerSecond, forKey: .framesPerSecond)
        try c.encode(heldOutRows, forKey: .heldOutRows)
        try c.encode(seed, forKey: .seed)
        try c.encode(skipBadRows, forKey: .skipBadRows)
    }

    private struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }
}

/// A training run that cannot start: a bad config field, named. (A run whose loss stops being a number stops with
/// the loop's `TrainingLoopError.diverged`.)
public enum VAETrainingError: Error, CustomStringConvertible {
    /// A config field is invalid.
    case invalidConfig(field: String, reason: String)

    public var description: String {
        switch self {
        case .invalidConfig(let field, let reason): return "VAE training config: '\(field)': \(reason)"
        }
    }
}
