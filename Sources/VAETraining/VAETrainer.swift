import Checkpoint
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

/// Trains the joint image-video VAE (`goku vae train`): reconstruction (L1 + L2, optionally a chroma term) plus a
/// small KL term, AdamW with warm-up, gradient clipping, an EMA of the weights, checkpoints that resume exactly, and
/// a JSON-lines log.
///
/// Each step encodes a batch of videos and a batch of images (one-frame clips), samples the posterior, decodes and
/// sums the two losses, so the same weights learn both modalities as the paper's joint VAE does. The run folder holds
/// `run.json` (the config), `metrics.jsonl`, `checkpoints/step-*` and, at the end, `vae/` (a diffusers-format folder
/// with the EMA weights and a latent scaling factor measured on held-out data).
public final class VAETrainer {
    /// The run's config.
    public let config: VAETrainingConfig
    /// The run folder.
    public let runDirectory: URL
    /// The model being trained (raw weights; the EMA is kept apart).
    public let vae: VideoAutoencoder
    /// Steps done.
    public private(set) var step = 0
    /// Wall-clock seconds of training before this process, from the checkpoint.
    public private(set) var previousSeconds = 0.0

    let optimizer: AdamW
    let ema: ExponentialMovingAverage?
    let schedule: LearningRateSchedule
    var generator: RandomGenerator
    /// The training clips as configured (crops when `cropSize` or `cropFrames` is set).
    let data: ClipSource
    /// The same clips whole, for the `wholeFrameSteps` phase.
    let wholeData: ClipSource
    let heldOut: ClipSource
    let store: CheckpointStore
    let log: MetricsLog
    /// The source's latent scaling (factor, shift) when the encoder is kept fixed: the latents, and so their scale,
    /// are the source's.
    let sourceScaling: (factor: Double, shift: Double?)?

    /// Opens a run folder: a new run writes `run.json`; an existing one must have the same config (except `steps`)
    /// and resumes from its newest checkpoint.
    /// - Parameters: data and heldOut: override the clip sources (tests); by default the configured Shapes data.
    /// - Throws: `VAETrainingError` for a bad or incompatible config, checkpoint errors for unreadable checkpoints.
    public init(config: VAETrainingConfig, runDirectory: URL, data: ClipSource? = nil, heldOut: ClipSource? = nil) throws {
        try config.validate()
        self.config = config
        self.runDirectory = runDirectory
        let fm = FileManager.default
        try fm.createDirectory(at: runDirectory, withIntermediateDirectories: true)
        try RunConfigFile.checkOrWrite(config, in: runDirectory)

        store = try CheckpointStore(runDirectory: runDirectory, keepLast: config.keepCheckpoints)
        let latest = try store.latest()
        vae = try VideoAutoencoder(config: try config.resolvedVAE(), generator: RandomGenerator(seed: config.seed))
        if let source = config.initializeFrom.map({ URL(fileURLWithPath: $0) }) {
            if latest == nil {  // a resumed run's weights are in its checkpoint
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
        let isNormOrBias: (String) -> Bool = { key in
            key.hasSuffix(".bias") || key.contains("norm")
        }
        optimizer = AdamW(
            vae.namedParameters(),
            options: .init(learningRate: config.learningRate, beta1: 0.9, beta2: 0.99, weightDecay: config.weightDecay),
            decayFilter: { !isNormOrBias($0) })
        // Over the trained weights only: a fixed encoder is exported bit for bit as it was loaded.
        ema =
            config.emaDecay > 0
            ? ExponentialMovingAverage(vae.namedParameters().filter(\.tensor.requiresGrad), decay: config.emaDecay) : nil
        schedule = LearningRateSchedule(
            peak: config.learningRate, warmupSteps: config.warmupSteps, decay: config.decay,
            totalSteps: config.steps, minimum: config.learningRate * 0.1)
        generator = RandomGenerator(seed: config.seed &+ 1)
        let whole: ClipSource
        if let data {
            whole = data
        } else if config.dataFolder != nil {
            throw VAETrainingError.invalidConfig(field: "dataFolder", reason: "folder data needs a clip source (see ManifestClipSource)")
        } else {
            whole = try ShapesClipSource(config.resolvedShapes)
        }
        wholeData = whole
        self.data =
            config.cropSize != nil || config.cropFrames != nil
            ? CroppedClipSource(
                whole, size: config.cropSize, frames: config.cropFrames, candidates: config.cropCandidates,
                seed: config.seed) : whole
        self.heldOut = try heldOut ?? ShapesClipSource(config.resolvedShapes, heldOut: true)

        var resumedStep: Int?
        if let latest {
            let snapshot = try CheckpointStore.load(from: latest)
            try vae.load(snapshot.groups["model"] ?? [:])
            try optimizer.loadStateDictionary(snapshot.groups["optimizer"] ?? [:])
            if let ema { try ema.load(snapshot.groups["ema"] ?? [:]) }
            generator = snapshot.state.makeGenerator()
            step = snapshot.state.step
            previousSeconds = snapshot.state.trainingSeconds
            resumedStep = step
        }
        log = try MetricsLog(url: runDirectory.appendingPathComponent("metrics.jsonl"), resumingAt: resumedStep ?? 0)
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

    /// One optimizer step on the next batch of videos and images.
    @discardableResult
    public func trainStep() throws -> VAEStepLosses {
        vae.setTraining(true)
        vae.zeroGrad()
        var totals = (loss: 0.0, l1: 0.0, l2: 0.0, kl: 0.0, chroma: 0.0, parts: 0.0)
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
        guard totals.loss.isFinite else { throw VAETrainingError.diverged(step: step, loss: totals.loss) }
        let norm =
            config.clipNorm > 0
            ? GradientClipping.clipGlobalNorm(vae.trainableParameters(), maxNorm: config.clipNorm) : 0
        optimizer.options.learningRate = schedule(step)
        optimizer.update()
        // The EMA's warm-up counts from the whole-frame phase's start once it has begun.
        let emaStart = inWholeFramePhase(step) ? wholeFramePhaseStart! : 0
        if step == emaStart && emaStart > 0 { ema?.restart { _ in true } }
        ema?.update(step: step - emaStart)
        step += 1
        let n = totals.parts
        return VAEStepLosses(
            total: totals.loss / n, l1: totals.l1 / n, l2: totals.l2 / n, kl: totals.kl / n, chroma: totals.chroma / n,
            gradientNorm: norm)
    }

    /// Trains until `config.steps`, with checkpoints, evaluations, a progress bar and the metrics log; then writes
    /// the final checkpoint and the `vae/` folder.
    /// - Returns: the final held-out evaluation.
    @discardableResult
    public func run(showProgress: Bool = true, output: FileHandle = .standardError) throws -> VAEEvaluation {
        let bar = ProgressBar(total: config.steps, label: "vae train", output: output, interactive: showProgress ? nil : false)
        bar.resume(at: step)
        let start = Date()
        while step < config.steps {
            let losses = try trainStep()
            var metrics: [String: Double] = [
                "loss": losses.total, "l1": losses.l1, "l2": losses.l2, "kl": losses.kl, "chroma": losses.chroma,
                "grad_norm": losses.gradientNorm, "lr": optimizer.options.learningRate,
            ]
            if config.evaluateEvery > 0 && step % config.evaluateEvery == 0 && step < config.steps {
                let evaluation = try evaluate()
                metrics["psnr_video"] = evaluation.videoPSNR
                metrics["psnr_image"] = evaluation.imagePSNR
            }
            log.append(step: step, metrics)
            bar.update(completed: step, metrics: [("loss", losses.total), ("l1", losses.l1)])
            if config.checkpointEvery > 0 && step % config.checkpointEvery == 0 && step < config.steps {
                try store.save(snapshot(seconds: previousSeconds + Date().timeIntervalSince(start)))
            }
        }
        bar.finish()
        try store.saveNow(snapshot(seconds: previousSeconds + Date().timeIntervalSince(start)))
        let evaluation = try evaluate()
        log.append(step: step, ["psnr_video": evaluation.videoPSNR, "psnr_image": evaluation.imagePSNR])
        try exportVAE(to: runDirectory.appendingPathComponent("vae"))
        return evaluation
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

    /// Runs `body` with the EMA weights in the model, restoring the raw ones after.
    private func withExportWeights<R>(_ body: () throws -> R) throws -> R {
        guard let ema else { return try body() }
        let raw = Autograd.inference { vae.parameterDictionary().mapValues { $0.detached().copy() } }
        ema.copy(to: vae.namedParameters())
        defer { for (key, p) in vae.namedParameters() { p.assign(raw[key]!) } }
        vae.setTraining(false)
        defer { vae.setTraining(true) }
        return try body()
    }

    private func snapshot(seconds: Double) throws -> TrainingSnapshot {
        var groups: [String: [String: Tensor]] = [
            "model": vae.parameterDictionary(), "optimizer": optimizer.stateDictionary(),
        ]
        if let ema { groups["ema"] = ema.shadow }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return TrainingSnapshot(
            groups: groups,
            state: TrainingState(step: step, generator: generator, dataPosition: step, trainingSeconds: seconds),
            configJSON: try encoder.encode(vae.config))
    }
}
