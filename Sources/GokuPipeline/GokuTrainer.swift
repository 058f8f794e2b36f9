import Checkpoint
import Foundation
import GokuModel
import NN
import Optim
import RectifiedFlow
import TensorCore
import TextEncoder
import Training
import VideoVAE

/// Losses of one step.
public struct GokuStepLosses: Sendable {
    /// The objective (velocity or noise MSE).
    public var loss: Double
    /// Gradient norm before clipping.
    public var gradientNorm: Double
    /// Tokens in the packed sequence.
    public var tokens: Int
    /// The text encoder's caption-role loss (unweighted), when that objective is on and the batch had labels.
    public var textRoleLoss: Double? = nil
}

/// Trains the Goku transformer (`goku train`): joint image and video training on cached VAE latents of the Shapes
/// data, each step one packed sequence (Patch n' Pack) of images and videos with per-sample flow times.
///
/// Text: a pretrained T5 is used frozen; otherwise (the shipped model) a tiny T5 is trained jointly, its gradients
/// flowing through cross-attention, optionally with the caption-role objective beside the flow loss
/// (`CaptionRoleObjective`, after its own short phase, `CaptionRolePretraining`). Objective: rectified flow (x_t = t·x1 + (1 − t)·x0, target x1 − x0, flow times
/// logit-normal and shifted by the token count), or the DDPM ε-prediction baseline with the same model and data.
/// Optimisation: AdamW (weight decay on matrices only), warm-up then cosine, clipping, EMA of every trained weight.
/// State: the run folder's checkpoints hold the weights, EMA, optimizer, random state and data position, so a resumed
/// run continues exactly as an uninterrupted one (tested).
public final class GokuTrainer {
    /// The run's config.
    public let config: GokuTrainingConfig
    /// The run folder.
    public let runDirectory: URL
    /// The model being trained.
    public let transformer: GokuTransformer
    /// The text side.
    public let text: TextConditioning
    /// The VAE (frozen).
    public let vae: VideoAutoencoder
    /// The cached training set.
    public let dataset: LatentDataset
    /// Steps done.
    public private(set) var step = 0
    /// Samples consumed (the data position).
    public private(set) var consumed = 0

    let trainsText: Bool
    /// The model's weights (transformer, and the text encoder when trained): EMA'd and exported.
    let parameters: [(key: String, tensor: Tensor)]
    /// The text encoder's auxiliary objective, when `textRoleLossWeight` > 0.
    public let roleObjective: CaptionRoleObjective?
    /// Everything the optimizer updates and checkpoints save: `parameters` and the role head.
    let optimized: [(key: String, tensor: Tensor)]
    /// Whether the role objective starts with this run (no head in the checkpoint), so its phase is still to run.
    public private(set) var rolePretrainingPending = false
    let optimizer: AdamW
    let ema: ExponentialMovingAverage?
    let schedule: LearningRateSchedule
    let ddpm: DDPMSchedule?
    var generator: RandomGenerator
    let store: CheckpointStore
    /// Opened when training starts (not by `init`), so that exporting from a run that another process is still
    /// training leaves its log alone: opening drops the records past the resumed checkpoint.
    private var log: MetricsLog?
    var previousSeconds = 0.0
    /// The shuffled order of the current epoch (recomputed only when the epoch changes).
    var epochOrder: (epoch: Int, order: [Int])?

    /// Opens a run folder (new or to resume), loads the VAE and builds or loads the latent cache.
    /// - Throws: `GokuPipelineError` for a bad or changed config; the parts' errors for unreadable models.
    public init(config: GokuTrainingConfig, runDirectory: URL, showProgress: Bool = true) throws {
        try config.validate()
        self.config = config
        self.runDirectory = runDirectory
        try FileManager.default.createDirectory(at: runDirectory, withIntermediateDirectories: true)
        try RunConfigFile.checkOrWrite(config, in: runDirectory, mayChange: GokuTrainingConfig.changeableOnResume)

        let vaeFolder = URL(fileURLWithPath: config.vaeFolder)
        vae = try VideoAutoencoder.load(from: vaeFolder)
        vae.setTraining(false)
        for (_, p) in vae.namedParameters() { p.requiresGrad = false }

        let initGenerator = RandomGenerator(seed: config.seed)
        if let folder = config.textEncoderFolder {
            text = TextConditioning(try T5TextEncoder.load(from: URL(fileURLWithPath: folder), maxLength: config.maxTextLength))
            for (_, p) in text.encoder.model.namedParameters() { p.requiresGrad = false }
            trainsText = false
        } else {
            let model = T5EncoderModel(config: config.textEncoder ?? ShapesText.encoderConfig, generator: initGenerator)
            text = TextConditioning(T5TextEncoder(tokenizer: try ShapesText.tokenizer(), model: model, maxLength: config.maxTextLength))
            trainsText = true
        }
        var modelConfig = config.transformer ?? GokuConfig.presets[config.preset]!
        if config.transformer == nil {
            modelConfig.inChannels = vae.config.latentChannels
            modelConfig.textDimension = text.dimension
            modelConfig.imageConditioning = config.imageConditioning
        }
        try modelConfig.validate()
        transformer = GokuTransformer(modelConfig, generator: initGenerator)
        transformer.activationCheckpointing = config.activationCheckpointing

        var parameters = transformer.namedParameters().map { (key: "transformer." + $0.key, tensor: $0.tensor) }
        if trainsText {
            parameters += text.encoder.model.namedParameters().map { (key: "text_encoder." + $0.key, tensor: $0.tensor) }
        }
        self.parameters = parameters
        roleObjective = config.textRoleLossWeight > 0
            ? CaptionRoleObjective(dimension: text.dimension, generator: RandomGenerator(seed: config.seed &+ 0x2013)) : nil
        optimized = parameters + (roleObjective?.namedParameters ?? [])
        optimizer = AdamW(
            optimized, options: .init(learningRate: config.learningRate, beta1: 0.9, beta2: 0.999, weightDecay: config.weightDecay),
            decayFilter: { key in key.hasSuffix(".weight") && !key.contains("norm") && !key.contains("embed") && !key.contains("shared") })
        ema = config.emaDecay > 0 ? ExponentialMovingAverage(parameters, decay: config.emaDecay) : nil
        schedule = LearningRateSchedule(
            peak: config.learningRate, warmupSteps: config.warmupSteps, decay: config.decay, totalSteps: config.steps,
            minimum: config.learningRate * 0.05)
        ddpm = config.objective == "ddpm" ? (config.ddpmSchedule == "cosine" ? .cosine() : .linear()) : nil
        generator = RandomGenerator(seed: config.seed &+ 0x5EED)

        dataset = try LatentDataset.loadOrBuild(
            vae: vae, vaeIdentity: try LatentDataset.identity(ofVAEFolder: vaeFolder), data: config.data,
            count: config.datasetSize, folder: runDirectory.appendingPathComponent("latents"), showProgress: showProgress)

        store = try CheckpointStore(runDirectory: runDirectory, keepLast: config.keepCheckpoints)
        let snapshot = try store.latest().map { try CheckpointStore.load(from: $0) }
        rolePretrainingPending = roleObjective != nil && config.textRolePretrainSteps > 0
            && !(snapshot?.groups["model"]?.keys.contains { $0.hasPrefix("text_role_head.") } ?? false)
        if let snapshot {
            try loadPrefixed(snapshot.groups["model"] ?? [:])
            try optimizer.loadStateDictionary(snapshot.groups["optimizer"] ?? [:])
            if let ema { try ema.load(snapshot.groups["ema"] ?? [:]) }
            generator = snapshot.state.makeGenerator()
            step = snapshot.state.step
            consumed = snapshot.state.dataPosition
            previousSeconds = snapshot.state.trainingSeconds
        }
    }

    /// The dataset index of the `position`-th sample drawn: epochs are permutations of the dataset, each fixed by the
    /// seed and the epoch number, so the order depends only on the position (resumable).
    func datasetIndex(at position: Int) -> Int {
        let n = dataset.items.count, epoch = position / n
        if epochOrder?.epoch != epoch {
            var order = Array(0..<n)
            let shuffle = RandomGenerator(seed: config.seed &+ 0xDA7A &+ UInt64(epoch) &* 0x9E37_79B9)
            for i in stride(from: n - 1, to: 0, by: -1) { order.swapAt(i, shuffle.nextInt(below: i + 1)) }
            epochOrder = (epoch, order)
        }
        return epochOrder!.order[position % n]
    }

    /// One optimizer step on the next packed batch.
    @discardableResult
    public func trainStep() throws -> GokuStepLosses {
        transformer.setTraining(true)
        text.encoder.model.setTraining(trainsText)
        for (_, p) in optimized { p.grad = nil }
        let items = (0..<config.samplesPerStep).map { dataset.items[datasetIndex(at: consumed + $0)] }
        consumed += items.count

        let captions = items.map { config.captionDropout > 0 && Double(generator.nextUniform()) < config.captionDropout ? "" : $0.caption }
        let encoded = text.encodeBatch(captions, differentiable: trainsText)
        let conditions = text.perCaption(encoded)
        let roleLoss = roleObjective?.loss(states: encoded.states, captions: captions)
        var samples: [GokuSample] = [], targets: [Tensor] = []
        let weighting = config.foregroundLossWeight > 0
            ? ForegroundWeighting(extraWeight: config.foregroundLossWeight, threshold: config.foregroundThreshold) : nil
        let times = config.timesteps.sample(count: items.count, generator: generator)
        for (i, item) in items.enumerated() {
            let x1 = item.latent
            let noise = Tensor.randn(x1.shape, generator: generator)
            var first: Tensor?
            if transformer.config.imageConditioning && !item.isImage
                && Double(generator.nextUniform()) < config.firstFrameProbability
            {
                first = x1.slice(axis: 1, 0, 1)  // (C, 1, h, w): the clean first latent frame
            }
            let noisy: Tensor, target: Tensor, time: Double
            if let ddpm {
                let k = generator.nextInt(below: ddpm.stepCount)
                (noisy, target, time) = (ddpm.noised(data: x1, noise: noise, step: k), noise, ddpm.modelTime(step: k))
            } else {
                let tokens = x1.shape[1...].enumerated().reduce(1) { $0 * $1.element / transformer.config.patchSize[$1.offset] }
                let t = config.shiftTimesteps ? TimestepShift.apply(times[i], shift: TimestepShift().shift(tokenCount: tokens)) : times[i]
                let pair = RectifiedFlow.trainingPair(data: x1, noise: noise, t: t)
                (noisy, target, time) = (pair.noisy, pair.target, t)
            }
            samples.append(GokuSample(latent: noisy, timestep: time, text: conditions[i].states, textMask: conditions[i].mask, firstFrame: first))
            targets.append(target)
        }
        let batch = try PackedBatch(samples: samples, config: transformer.config)
        let prediction = MixedPrecision.with(MixedPrecision.Mode(name: config.precision) ?? .float32) { transformer(batch) }
        let predictions = batch.unpack(prediction)
        let loss: Tensor
        if let weighting {
            // The model's estimate of x1 from a flow prediction: x_t + (1 − t)·v̂ (values only, not recorded).
            let fromEstimate = config.foregroundOf == "dataOrEstimate" && ddpm == nil
            let weights = items.indices.map { i in
                let estimate = fromEstimate
                    ? Autograd.inference { samples[i].latent + predictions[i].detached() * (1 - samples[i].timestep) } : nil
                return weighting.weights(for: items[i].latent, estimate: estimate)
            }
            loss = RectifiedFlow.weightedLoss(predictions: predictions, targets: targets, weights: weights)
        } else {
            loss = RectifiedFlow.loss(predictions: predictions, targets: targets)
        }
        if let roleLoss {
            (loss + roleLoss * Tensor(Float(config.textRoleLossWeight))).backward()
        } else {
            loss.backward()
        }
        let value = Double(loss.item())
        guard value.isFinite else { throw GokuPipelineError.invalidOption(option: "learningRate", reason: "training diverged at step \(step) (loss \(value))") }
        let trained = optimized.map(\.tensor).filter(\.requiresGrad)
        let norm = config.clipNorm > 0 ? GradientClipping.clipGlobalNorm(trained, maxNorm: config.clipNorm) : 0
        optimizer.options.learningRate = schedule(step)
        optimizer.update()
        ema?.update(step: step)
        step += 1
        return GokuStepLosses(
            loss: value, gradientNorm: norm, tokens: batch.layout.tokenCount, textRoleLoss: roleLoss.map { Double($0.item()) })
    }

    /// Runs the caption-role phase (`CaptionRolePretraining`) when the role objective starts with this run; the EMA
    /// of the text encoder restarts at the weights it leaves. Nothing when it is not pending.
    public func pretrainTextRoles(showProgress: Bool = true, output: FileHandle = .standardError) throws -> CaptionRolePretraining.Report? {
        guard rolePretrainingPending, let roleObjective else { return nil }
        var phase = CaptionRolePretraining(
            steps: config.textRolePretrainSteps, learningRate: config.textRolePretrainLearningRate, seed: config.seed &+ 0x2014)
        phase.anchorWeight = config.textRoleAnchorWeight
        phase.reinitialize = config.textRoleReinitialize
        let bar = ProgressBar(total: phase.steps, label: "text roles", output: output, interactive: showProgress ? nil : false)
        let report = try phase.run(text: text, objective: roleObjective, captions: dataset.items.map(\.caption), progress: bar)
        ema?.restart { $0.hasPrefix("text_encoder.") }
        rolePretrainingPending = false
        return report
    }

    /// Trains to `config.steps` with checkpoints, progress and the metrics log, then exports the model folder
    /// `<run>/model` (EMA weights, transformer in bf16). Starts with the caption-role phase when it is pending.
    public func run(showProgress: Bool = true, output: FileHandle = .standardError) throws {
        if let report = try pretrainTextRoles(showProgress: showProgress, output: output) {
            output.write(Data(String(
                format: "text roles: loss %.4f, anchor %.4f, object words' roles %.1f%% right\n",
                report.roleLoss, report.anchor, 100 * report.objectWordAccuracy).utf8))
        }
        let log = try self.log ?? MetricsLog(url: runDirectory.appendingPathComponent("metrics.jsonl"), resumingAt: step)
        self.log = log
        let bar = ProgressBar(total: config.steps, label: "train", output: output, interactive: showProgress ? nil : false)
        bar.resume(at: step)
        let start = Date()
        var tokensSeen = 0
        while step < config.steps {
            let stepStart = Date()
            let losses = try trainStep()
            tokensSeen += losses.tokens
            let seconds = Date().timeIntervalSince(stepStart)
            var record = [
                "loss": losses.loss, "grad_norm": losses.gradientNorm, "lr": optimizer.options.learningRate,
                "tokens": Double(losses.tokens), "step_seconds": seconds,
            ]
            record["text_role_loss"] = losses.textRoleLoss
            log.append(step: step, record)
            bar.update(completed: step, metrics: [("loss", losses.loss), ("tok/s", Double(tokensSeen) / Date().timeIntervalSince(start))])
            if config.checkpointEvery > 0 && step % config.checkpointEvery == 0 && step < config.steps {
                try store.save(snapshot(seconds: previousSeconds + Date().timeIntervalSince(start)))
            }
        }
        bar.finish()
        try store.saveNow(snapshot(seconds: previousSeconds + Date().timeIntervalSince(start)))
        try export(to: runDirectory.appendingPathComponent("model"))
    }

    /// Writes a model folder with the EMA weights (the raw ones when there is no EMA), the transformer and VAE in
    /// bfloat16 by default (the shipped model must stay under 50 MB).
    public func export(to folder: URL, weightsDType: DType? = .bfloat16) throws {
        let raw = Autograd.inference { parameters.map { $0.tensor.detached().copy() } }
        if let ema { ema.copy(to: parameters) }
        defer { for (p, r) in zip(parameters, raw) { p.tensor.assign(r) } }
        let index = GokuModelIndex(
            frames: config.data.frames, width: config.data.width, height: config.data.height,
            maxTextLength: config.maxTextLength, sampling: config.sampling)
        let bundle = try GokuModelBundle(index: index, transformer: transformer, vae: vae, text: text)
        try bundle.save(to: folder, weightsDType: weightsDType)
    }

    private func snapshot(seconds: Double) throws -> TrainingSnapshot {
        var groups: [String: [String: Tensor]] = [
            "model": Dictionary(uniqueKeysWithValues: optimized.map { ($0.key, $0.tensor) }),
            "optimizer": optimizer.stateDictionary(),
        ]
        if let ema { groups["ema"] = ema.shadow }
        return TrainingSnapshot(
            groups: groups,
            state: TrainingState(step: step, generator: generator, dataPosition: consumed, trainingSeconds: seconds))
    }

    private func loadPrefixed(_ tensors: [String: Tensor]) throws {
        func part(_ prefix: String) -> [String: Tensor] {
            Dictionary(uniqueKeysWithValues: tensors.compactMap { key, value in
                key.hasPrefix(prefix) ? (String(key.dropFirst(prefix.count)), value) : nil
            })
        }
        try transformer.load(part("transformer."))
        if trainsText { try text.encoder.model.load(part("text_encoder.")) }
        // A checkpoint from before the role loss was turned on has no head: it keeps its fresh initialisation.
        if let roleObjective, case let head = part("text_role_head."), !head.isEmpty { try roleObjective.head.load(head) }
    }
}
