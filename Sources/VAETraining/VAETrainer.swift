import Checkpoint
import Datasets
import Foundation
import NN
import Optim
import TensorCore
import Training
import VideoVAE

/// The losses of one training step (means over the step's videos and images).
public struct VAEStepLosses: Sendable {
    /// The weighted objective that was minimised.
    public var total: Double
    /// Mean absolute error of the reconstructions, [−1, 1] scale.
    public var l1: Double
    /// Mean squared error of the reconstructions.
    public var l2: Double
    /// KL per latent element.
    public var kl: Double
    /// Mean squared chroma (Cb, Cr) error, 0 when `chromaWeight` is 0.
    public var chroma: Double
    /// Gradient norm before clipping.
    public var gradientNorm: Double
}

/// Held-out reconstruction quality: PSNR in dB of decode(mode(encode(x))) against x.
public struct VAEEvaluation: Codable, Sendable {
    /// Mean PSNR over held-out videos.
    public var videoPSNR: Double
    /// Mean PSNR over held-out images.
    public var imagePSNR: Double
    /// Samples of each kind.
    public var samples: Int

    /// Mean PSNR of the posterior mode's reconstruction over the first `samples` videos and images of `source`.
    /// - Parameter progress: called after each sample with the number done.
    public static func measure(
        _ vae: VideoAutoencoder, on source: ClipSource, samples: Int, progress: ((Int) -> Void)? = nil
    ) throws -> VAEEvaluation {
        precondition(samples > 0, "VAEEvaluation: samples must be positive")
        return try Autograd.inference {
            var video = 0.0, image = 0.0
            for i in 0..<samples {
                let v = try source.video(at: i).unsqueeze(0)
                video += ReconstructionMetrics.psnr(try vae.decode(try vae.encode(v).mode), v)
                let m = try source.image(at: i).unsqueeze(0)
                image += ReconstructionMetrics.psnr(try vae.decode(try vae.encode(m).mode), m)
                progress?(i + 1)
            }
            return VAEEvaluation(videoPSNR: video / Double(samples), imagePSNR: image / Double(samples), samples: samples)
        }
    }
}

/// Trains the joint image-video VAE (`goku vae train`) as a task of the generic `TrainingLoop`: reconstruction
/// (L1 + L2, optionally a chroma term) plus a small KL term.
///
/// Each step encodes a batch of videos and a batch of images (one-frame clips), samples the posterior, decodes and
/// sums the two losses, so the same weights learn both modalities as the paper's joint VAE does. The loop owns what
/// every trainer shares: AdamW (β2 0.99; weight decay on the convolution kernels only, `WeightDecay`), warm-up then
/// constant or cosine learning rate (down to a tenth of the peak), clipping, the EMA of the trained weights, the
/// metrics log, progress, checkpoints and exact resume. This class keeps what is the VAE's: the losses, crops and
/// the closing whole-frame phase (`wholeFrameSteps`), held-out evaluation, and the export with a measured latent
/// scale.
///
/// Data: generated Shapes clips, or a dataset folder (`dataFolder`, `FolderClipSource`: its last rows are held out).
/// Sample `i` of each stream is fixed by `i` (step `s` trains on samples `s·n ..< (s + 1)·n`), so the data position
/// is the step. The run folder holds `run.json` (the config), `metrics.jsonl` (one record per step),
/// `evaluation.jsonl` (held-out PSNR every `evaluateEvery` steps and at the end), `checkpoints/step-*` and, at the
/// end, `vae/` (a diffusers-format folder with the EMA weights and a latent scaling factor measured on held-out data).
public final class VAETrainer: TrainingTask {
    /// The run's config.
    public let config: VAETrainingConfig
    /// The run folder.
    public let runDirectory: URL
    /// The model being trained (raw weights; the EMA is the loop's).
    public let vae: VideoAutoencoder
    /// The loop: optimizer, EMA, checkpoints, log.
    public let loop: TrainingLoop
    /// Steps done.
    public var step: Int { loop.step }
    /// Wall-clock seconds of training before this process, from the checkpoint.
    public var previousSeconds: Double { loop.previousSeconds }
    /// The dataset folder's split when the run trains on `dataFolder` (for its counts and skipped rows).
    public let folder: FolderClipSplit?

    /// The training clips as configured (crops when `cropSize` or `cropFrames` is set).
    let data: ClipSource
    /// The same clips whole, for the `wholeFrameSteps` phase.
    let wholeData: ClipSource
    let heldOut: ClipSource
    /// The source's latent scaling (factor, shift) when the encoder is kept fixed: the latents, and so their scale,
    /// are the source's.
    let sourceScaling: (factor: Double, shift: Double?)?

    /// Opens a run folder: a new run writes `run.json`; an existing one must have the same config (except `steps`)
    /// and resumes from its newest checkpoint.
    /// - Parameters: data and heldOut: override the clip sources (tests); by default the configured Shapes data or
    ///   dataset folder.
    /// - Throws: `VAETrainingError` for a bad or incompatible config, `DatasetError` for a bad dataset folder,
    ///   checkpoint errors for unreadable checkpoints.
    public init(config: VAETrainingConfig, runDirectory: URL, data: ClipSource? = nil, heldOut: ClipSource? = nil) throws {
        try config.validate()
        self.config = config
        self.runDirectory = runDirectory
        try FileManager.default.createDirectory(at: runDirectory, withIntermediateDirectories: true)
        try RunConfigFile.checkOrWrite(config, in: runDirectory)

        // A resumed run's weights are in its checkpoint; a new one may start from a trained VAE, loaded before the
        // loop is built so that the EMA starts at those weights.
        let resuming = try CheckpointStore(runDirectory: runDirectory, keepLast: config.keepCheckpoints).latest() != nil
        vae = try VideoAutoencoder(config: try config.resolvedVAE(), generator: RandomGenerator(seed: config.seed))
        if let source = config.initializeFrom.map({ URL(fileURLWithPath: $0) }) {
            if !resuming {
                let initial = try VideoAutoencoder.load(from: source)
                do {
                    try vae.load(initial.parameterDictionary())
                } catch {
                    throw VAETrainingError.invalidConfig(
                        field: "initializeFrom", reason: "\(source.path) does not fit the configured architecture: \(error)")
                }
            }
            let sourceConfig = try ConfigFile.read(VideoVAEConfig.self, from: source)
            sourceScaling = config.trainEncoder ? nil : (sourceConfig.scalingFactor, sourceConfig.shiftFactor)
        } else {
            sourceScaling = nil
        }
        if !config.trainEncoder {
            vae.encoder.setTrainable(false)
            vae.quantConv?.setTrainable(false)
        }

        folder = try config.dataFolder.flatMap { path in
            data != nil && heldOut != nil
                ? nil : try FolderClipSplit(directory: URL(fileURLWithPath: path), options: config.folderData)
        }
        guard let whole: ClipSource = data ?? folder?.training, let heldOutSource = heldOut ?? folder?.heldOut else {
            throw VAETrainingError.invalidConfig(
                field: "dataFolder",
                reason: "no training data: give a dataset folder (dataFolder, goku vae train --data), or clip sources "
                    + "(the Shapes recipe's, which goku vae train uses for a config without dataFolder)")
        }
        wholeData = whole
        self.data =
            config.cropSize != nil || config.cropFrames != nil
            ? CroppedClipSource(
                whole, size: config.cropSize, frames: config.cropFrames, candidates: config.cropCandidates,
                seed: config.seed) : whole
        self.heldOut = heldOutSource
        if let folder { try Self.check(folder, config: config) }

        let parameters = vae.namedParameters()
        let schedule = LearningRateSchedule(
            peak: config.learningRate, warmupSteps: config.warmupSteps, decay: config.decay,
            totalSteps: config.steps, minimum: config.learningRate * 0.1)
        loop = try TrainingLoop(
            runDirectory: runDirectory,
            settings: .init(
                steps: config.steps, checkpointEvery: config.checkpointEvery, keepCheckpoints: config.keepCheckpoints,
                clipNorm: config.clipNorm, label: "vae train"),
            parameters: parameters,
            optimizer: .init(learningRate: config.learningRate, beta1: 0.9, beta2: 0.99, weightDecay: config.weightDecay),
            decays: WeightDecay.decayedKeys(of: vae),
            // Over the trained weights only: a fixed encoder is exported bit for bit as it was loaded.
            emaDecay: config.emaDecay, emaKeys: Set(parameters.filter(\.tensor.requiresGrad).map(\.key)),
            generator: RandomGenerator(seed: config.seed &+ 1), learningRate: { schedule($0) })
        // The EMA restarts at the raw weights when the whole-frame phase begins, its warm-up counted from there.
        let phaseStart = wholeFramePhaseStart
        loop.updateEMA = { ema, step in
            let start = phaseStart.map { step >= $0 ? $0 : 0 } ?? 0
            if step == start && start > 0 { ema.restart { _ in true } }
            ema.update(step: step - start)
        }
        if let snapshot = try loop.resume() { try vae.load(snapshot.groups["model"] ?? [:]) }
    }

    /// Checks that a dataset folder's split can feed the run: videos and images to train on, and enough held-out
    /// ones for `evaluationSamples`.
    static func check(_ folder: FolderClipSplit, config: VAETrainingConfig) throws {
        let training = folder.training, heldOut = folder.heldOut, f = config.folderData
        let rate = f.framesPerSecond.map { "\($0) fps" } ?? "the files' rate"
        if config.videosPerBatch > 0 && training.videoCount == 0 {
            throw VAETrainingError.invalidConfig(
                field: "dataFolder",
                reason: "\(training.directory.path) has no training video of \(f.frames) frames at \(rate) (folderData.frames)")
        }
        if config.imagesPerBatch > 0 && training.imageCount == 0 {
            throw VAETrainingError.invalidConfig(field: "dataFolder", reason: "\(training.directory.path) has no training image")
        }
        if heldOut.videoCount < config.evaluationSamples || heldOut.imageCount < config.evaluationSamples {
            throw VAETrainingError.invalidConfig(
                field: "folderData.heldOutRows",
                reason: "the \(f.heldOutRows) held-out rows give \(heldOut.videoCount) videos of \(f.frames) frames and "
                    + "\(heldOut.imageCount) images, fewer than evaluationSamples (\(config.evaluationSamples)) of each")
        }
    }

    /// The first step of the whole-frame phase (`wholeFrameSteps`), nil when the run has none.
    public var wholeFramePhaseStart: Int? {
        config.wholeFrameSteps > 0 ? config.steps - config.wholeFrameSteps : nil
    }

    /// Whether step `step` is in the whole-frame phase.
    func inWholeFramePhase(_ step: Int) -> Bool { wholeFramePhaseStart.map { step >= $0 } ?? false }

    /// The videos (or images) that step `step` trains on, (B, 3, T, H, W): crops as configured, whole clips in the
    /// whole-frame phase.
    public func batch(forStep step: Int, images: Bool) throws -> Tensor {
        let count = images ? config.imagesPerBatch : config.videosPerBatch
        return try (inWholeFramePhase(step) ? wholeData : data).batch(start: step * count, count: count, images: images)
    }

    /// Steps of data consumed: the streams are indexed by step, so the step is the whole data position.
    public var dataPosition: Int { loop.step }

    /// Nothing beyond the step: the phase, crops and clips all follow from it.
    public func runState() -> [String: String] { [:] }

    /// Forward and backward of step `step` on its videos and images; reports `loss` (the mean of the two parts'
    /// objectives), `l1`, `l2`, `kl` and `chroma` (means of the parts).
    public func computeGradients(step: Int) throws -> [String: Double] {
        vae.setTraining(true)
        var totals = (loss: 0.0, l1: 0.0, l2: 0.0, kl: 0.0, chroma: 0.0, parts: 0.0)
        let generator = loop.generator
        for (count, images) in [(config.videosPerBatch, false), (config.imagesPerBatch, true)] where count > 0 {
            let x = try batch(forStep: step, images: images)
            let (posterior, reconstruction) = try MixedPrecision.with(MixedPrecision.Mode(name: config.precision) ?? .float32) {
                let posterior = config.trainEncoder ? try vae.encode(x) : try Autograd.inference { try vae.encode(x) }
                let z = config.samplePosterior ? posterior.sample(generator: generator) : posterior.mean
                return (posterior, try vae.decode(z))
            }
            let error = reconstruction - x
            let l1 = error.abs().mean(), l2 = error.square().mean()
            let kl = posterior.kl().sum() / Double(posterior.mean.count)  // per latent element
            var loss = l1 * config.l1Weight + l2 * config.l2Weight
            if config.trainEncoder { loss = loss + kl * config.klWeight }  // else a constant
            if config.chromaWeight > 0 {
                let chroma = ReconstructionMetrics.chromaSquaredError(error)
                loss = loss + chroma * config.chromaWeight
                totals.chroma += Double(chroma.item())
            }
            if !images && config.videoLossWeight != 1 { loss = loss * config.videoLossWeight }
            loss.backward()
            totals.loss += Double(loss.item())
            totals.l1 += Double(l1.item())
            totals.l2 += Double(l2.item())
            totals.kl += Double(kl.item())
            totals.parts += 1
        }
        let n = totals.parts
        return [
            "loss": totals.loss / n, "l1": totals.l1 / n, "l2": totals.l2 / n, "kl": totals.kl / n,
            "chroma": totals.chroma / n,
        ]
    }

    /// One optimizer step (the loop's) on the next batch of videos and images.
    /// - Throws: the data's errors; `TrainingLoopError.diverged` when the loss is not finite.
    @discardableResult
    public func trainStep() throws -> VAEStepLosses {
        let m = try loop.trainStep(self)
        return VAEStepLosses(
            total: m["loss"]!, l1: m["l1"]!, l2: m["l2"]!, kl: m["kl"]!, chroma: m["chroma"]!, gradientNorm: m["grad_norm"]!)
    }

    /// Trains until `config.steps` with the loop (checkpoints, progress, the metrics log), evaluating every
    /// `evaluateEvery` steps; then writes the final checkpoint, evaluates and writes the `vae/` folder.
    ///
    /// Evaluations go to `evaluation.jsonl` (the loop writes `metrics.jsonl`), each under the step count of the
    /// weights it measured. One at step k runs before step k + 1 trains, after the checkpoint at k, so a run resumed
    /// at k measures it again: the log drops records from step k on when it opens.
    /// - Returns: the final held-out evaluation.
    @discardableResult
    public func run(showProgress: Bool = true, output: FileHandle = .standardError) throws -> VAEEvaluation {
        let log = try MetricsLog(
            url: runDirectory.appendingPathComponent("evaluation.jsonl"), resumingAt: max(loop.step - 1, 0))
        func record(_ evaluation: VAEEvaluation, step: Int) {
            log.append(step: step, ["psnr_video": evaluation.videoPSNR, "psnr_image": evaluation.imagePSNR])
        }
        var final: VAEEvaluation?
        try loop.run(self, showProgress: showProgress, output: output, progressMetrics: ["loss", "l1"]) { step in
            if self.config.evaluateEvery > 0 && step > 0 && step % self.config.evaluateEvery == 0 {
                record(try self.evaluate(), step: step)
            }
        } export: {
            let evaluation = try evaluate()
            record(evaluation, step: loop.step)
            try exportVAE(to: runDirectory.appendingPathComponent("vae"))
            final = evaluation
        }
        return final!
    }

    /// Held-out PSNR of the weights that would be exported (the EMA when there is one).
    public func evaluate(samples: Int? = nil) throws -> VAEEvaluation {
        let n = samples ?? config.evaluationSamples
        return try withExportWeights { try VAEEvaluation.measure(vae, on: heldOut, samples: n) }
    }

    /// Writes a diffusers-format folder with the export weights and `scaling_factor` = 1 / (standard deviation of
    /// held-out latent means), so the diffusion model sees latents of unit variance (the rule Stable Diffusion's
    /// factor came from; CogVideoX ships its own measured value). The shift stays null as in CogVideoX. With the
    /// encoder kept fixed, the source's factor and shift are kept instead.
    public func exportVAE(to folder: URL) throws {
        try withExportWeights {
            var exported = vae.config
            (exported.scalingFactor, exported.shiftFactor) = try sourceScaling ?? (1 / heldOutLatentDeviation(), nil)
            let copy = try VideoAutoencoder(config: exported)
            try copy.load(vae.parameterDictionary())
            try copy.save(to: folder)
        }
    }

    /// The standard deviation of the held-out clips' and images' latent means.
    private func heldOutLatentDeviation() throws -> Double {
        var sum = 0.0, sumSquares = 0.0, count = 0.0
        try Autograd.inference {
            for i in 0..<max(config.evaluationSamples, 4) {
                for clip in [try heldOut.video(at: i), try heldOut.image(at: i)] {
                    let z = try vae.encode(clip.unsqueeze(0)).mode
                    for value in z.scalars {
                        sum += Double(value)
                        sumSquares += Double(value) * Double(value)
                    }
                    count += Double(z.count)
                }
            }
        }
        let mean = sum / count
        return max((sumSquares / count - mean * mean).squareRoot(), 1e-6)
    }

    /// Runs `body` in inference mode with the export weights in the model (the loop's `withExportWeights`).
    private func withExportWeights<R>(_ body: () throws -> R) throws -> R {
        try loop.withExportWeights {
            vae.setTraining(false)
            defer { vae.setTraining(true) }
            return try body()
        }
    }
}
