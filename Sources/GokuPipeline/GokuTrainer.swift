import Checkpoint
import Datasets
import Distributed
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
    /// The recipe's auxiliary text loss (unweighted; the Shapes recipe's caption-role loss), when that objective is
    /// on and the batch had labels.
    public var textRoleLoss: Double? = nil
}

/// Trains the Goku transformer (`goku train`): joint image and video training on VAE latents, each step one packed
/// sequence (Patch n' Pack) of images and videos with per-sample flow times, on the generic `TrainingLoop`.
///
/// Data: dataset folders, trained in `stages` (each prepared once per framing by `DatasetPreparer`, streamed from
/// its shards, batched by token budget by `PackingSampler`), or, with no stages, the data of the `GokuTrainingRecipe`
/// given at init (the Shapes recipe's generated clips, in the `ShapesRecipe` target).
/// Text: a pretrained T5 is used frozen (its states stored by the preparation); otherwise (the shipped model) the
/// recipe's T5 is trained jointly, its gradients flowing through cross-attention, optionally with the recipe's
/// auxiliary text objective beside the flow loss (after its own short phase). Objective:
/// rectified flow (x_t = t·x1 + (1 − t)·x0, target x1 − x0, flow times logit-normal and shifted by the token count),
/// or the DDPM ε-prediction baseline with the same model and data.
/// Optimisation (the loop's): AdamW (weight decay on matrices only, `WeightDecay`), warm-up then cosine per stage,
/// clipping, EMA of every trained weight. State: the run folder's checkpoints hold the weights, EMA, optimizer, random
/// state and data position, so a resumed run continues exactly as an uninterrupted one (tested).
public final class GokuTrainer: TrainingTask {
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
    /// The loop: optimizer, EMA, checkpoints, log.
    public let loop: TrainingLoop
    /// Steps done.
    public var step: Int { loop.step }
    /// Samples (a recipe's data) or batches (stages) consumed: the data position.
    public var dataPosition: Int { source.position }
    /// Samples the first stage (or the recipe's data) trains on.
    public var sampleCount: Int { source.sampleCount }

    let source: TrainingBatchSource
    let trainsText: Bool
    /// The model's weights (transformer, and the text encoder when trained): EMA'd and exported.
    let parameters: [(key: String, tensor: Tensor)]
    /// The recipe, when the run has one.
    public let recipe: GokuTrainingRecipe?
    /// The recipe's auxiliary text objective (the Shapes recipe's caption roles, when `textRoleLossWeight` > 0).
    public let auxiliaryTextObjective: GokuAuxiliaryTextObjective?
    /// Whether the auxiliary objective starts with this run (none of its parameters in the checkpoint) and has a
    /// phase before training, still to run.
    public private(set) var textPretrainingPending = false
    /// The recipe's loss weighting, when on.
    let lossWeighting: GokuLossWeighting?
    let ddpm: DDPMSchedule?
    /// The ranks training together.
    public let group: ProcessGroup
    /// This rank's sequence-parallel group (`config.parallel.sequenceParallel` ranks sharing each packed sequence),
    /// when it has more than one rank.
    let sequenceGroup: ProcessGroup?
    /// The states of the empty caption (caption dropout) when text states come prepared.
    private var emptyCaptionStates: Tensor?

    /// Opens a run folder (new or to resume), loads the VAE and prepares (or finds) the training data.
    /// - Parameters: recipe: supplies the data of a run without `stages`, the text encoder trained from scratch when
    ///   there is no `textEncoderFolder`, and optionally an auxiliary text objective and a loss weighting (the `goku`
    ///   CLI passes the Shapes recipe). Without one, a run needs both `stages` and `textEncoderFolder`.
    /// - Throws: `GokuPipelineError` for a bad or changed config (`invalidOption` naming `stages` or
    ///   `textEncoderFolder` when a recipe would be needed and there is none); `DatasetError` for bad datasets; the
    ///   parts' errors for unreadable models.
    ///   group: the ranks training together (`ProcessGroup.world()` under `goku launch` or `mpirun`): data parallel over
    ///   them at `config.parallel.sharding`, each rank computing its token-balanced share of every global batch
    ///   (`BatchShare`); rank 0 writes the run config, prepares the data and exports while the others wait.
    ///   exportOnly: opens the run only to export its newest checkpoint (`export(to:)`): without its data (no
    ///   preparation, no latent cache), and without writing anything into the run folder; training it then fails with
    ///   a named error.
    public init(
        config: GokuTrainingConfig, runDirectory: URL, recipe: GokuTrainingRecipe? = nil, showProgress: Bool = true,
        group: ProcessGroup = .single(), exportOnly: Bool = false
    ) throws {
        try config.validate()
        try recipe?.validate(config: config)
        self.group = group
        let p = config.parallel.sequenceParallel
        guard group.size % p == 0 else {
            throw GokuPipelineError.invalidOption(
                option: "parallel.sequenceParallel", reason: "\(p) does not divide the \(group.size) ranks of the job")
        }
        // Ranks r·P ..< (r+1)·P share a sequence; data parallel runs over the W/P groups.
        sequenceGroup = p > 1 ? try group.split(color: group.rank / p, key: group.rank % p) : nil
        if recipe == nil {
            if config.stages.isEmpty {
                throw GokuPipelineError.invalidOption(
                    option: "stages", reason: "is empty and no training recipe supplies the data (the goku CLI's Shapes recipe does)")
            }
            if config.textEncoderFolder == nil {
                throw GokuPipelineError.invalidOption(
                    option: "textEncoderFolder",
                    reason: "is not set and no training recipe supplies a text encoder to train from scratch")
            }
        }
        self.recipe = recipe
        self.config = config
        self.runDirectory = runDirectory
        try FileManager.default.createDirectory(at: runDirectory, withIntermediateDirectories: true)
        if group.rank == 0 && !exportOnly {
            if let recipe {
                try recipe.checkOrWriteRunConfig(config, in: runDirectory)
            } else {
                try GokuRunConfig(config: config, options: NoRecipeOptions()).checkOrWrite(in: runDirectory)
            }
        }

        let vaeFolder = URL(fileURLWithPath: config.vaeFolder)
        vae = try VideoAutoencoder.load(from: vaeFolder)
        vae.setTraining(false)
        for (_, p) in vae.namedParameters() { p.requiresGrad = false }

        let initGenerator = RandomGenerator(seed: config.seed)
        if let folder = config.textEncoderFolder {
            let url = URL(fileURLWithPath: folder)
            text = TextConditioning(try T5TextEncoder.load(from: url, maxLength: config.maxTextLength), tokenizerFolder: url)
            for (_, p) in text.encoder.model.namedParameters() { p.requiresGrad = false }
            trainsText = false
        } else {
            text = TextConditioning(try recipe!.textEncoder(config: config, generator: initGenerator))
            trainsText = true
        }
        var modelConfig = config.transformer ?? GokuConfig.presets[config.preset]!
        if config.transformer == nil {
            modelConfig.inChannels = vae.config.latentChannels
            modelConfig.textDimension = text.dimension
            modelConfig.imageConditioning = config.imageConditioning
        }
        try modelConfig.validate()
        guard modelConfig.headCount % p == 0 else {
            throw GokuPipelineError.invalidOption(
                option: "parallel.sequenceParallel",
                reason: "\(p) does not divide the model's \(modelConfig.headCount) attention heads (Ulysses gives each rank whole heads)")
        }
        transformer = GokuTransformer(modelConfig, generator: initGenerator)
        transformer.activationCheckpointing = config.activationCheckpointing

        var parameters = transformer.namedParameters().map { (key: "transformer." + $0.key, tensor: $0.tensor) }
        var decays = WeightDecay.decayedKeys(of: transformer, prefix: "transformer.")
        if trainsText {
            parameters += text.encoder.model.namedParameters().map { (key: "text_encoder." + $0.key, tensor: $0.tensor) }
            decays.formUnion(WeightDecay.decayedKeys(of: text.encoder.model, prefix: "text_encoder."))
        }
        self.parameters = parameters
        auxiliaryTextObjective = trainsText ? recipe?.auxiliaryTextObjective(config: config, textDimension: text.dimension) : nil
        if let auxiliaryTextObjective { decays.formUnion(auxiliaryTextObjective.decayedKeys) }
        lossWeighting = recipe?.lossWeighting(config: config)
        if group.size > 1 && (trainsText || lossWeighting != nil) {
            throw GokuPipelineError.invalidOption(
                option: "parallel",
                reason: "training on \(group.size) ranks needs a pretrained text encoder (textEncoderFolder) and no recipe loss weighting")
        }
        ddpm = config.objective == .ddpm ? (config.ddpmSchedule == .cosine ? .cosine() : .linear()) : nil

        let starts = config.stages.indices.map { i in config.stages[..<i].reduce(0) { $0 + $1.steps } }
        let stageSchedules = config.stages.enumerated().map { i, stage in
            let end = i + 1 < config.stages.count ? starts[i + 1] : max(config.steps, starts[i] + 1)
            let peak = stage.learningRate ?? config.learningRate
            return LearningRateSchedule(
                peak: peak, warmupSteps: stage.warmupSteps ?? config.warmupSteps, decay: stage.decay ?? config.decay,
                totalSteps: end - starts[i], minimum: peak * 0.05)
        }
        let runSchedule = LearningRateSchedule(
            peak: config.learningRate, warmupSteps: config.warmupSteps, decay: config.decay, totalSteps: config.steps,
            minimum: config.learningRate * 0.05)
        loop = try TrainingLoop(
            runDirectory: runDirectory,
            settings: .init(
                steps: config.steps, checkpointEvery: config.checkpointEvery, keepCheckpoints: config.keepCheckpoints,
                clipNorm: config.clipNorm),
            parameters: parameters + (auxiliaryTextObjective?.namedParameters ?? []),
            optimizer: .init(learningRate: config.learningRate, beta1: 0.9, beta2: 0.999, weightDecay: config.weightDecay),
            decays: decays, emaDecay: config.emaDecay, emaKeys: Set(parameters.map(\.key)),
            generator: RandomGenerator(seed: config.seed &+ 0x5EED), group: group, sharding: config.parallel.sharding,
            readsOnly: exportOnly
        ) { step in
            guard let stage = starts.lastIndex(where: { $0 <= step }) else { return runSchedule(step) }
            return stageSchedules[stage](step - starts[stage])
        }

        let vaeIdentity = try DatasetPreparer.vaeIdentity(ofFolder: vaeFolder)
        // Rank 0 prepares the data; the others then find its prepared copies.
        if group.rank != 0 { try group.barrier() }
        if exportOnly {
            source = NoTrainingData()
        } else if config.stages.isEmpty {
            source = try recipe!.batchSource(
                config: config, vae: vae, vaeIdentity: vaeIdentity, runDirectory: runDirectory, showProgress: showProgress)
        } else {
            let preparer = DatasetPreparer(
                vae: vae, vaeIdentity: vaeIdentity, text: trainsText ? nil : text,
                textIdentity: try config.textEncoderFolder.map { try DatasetPreparer.digest(ofFolder: URL(fileURLWithPath: $0)) })
            let multiple = vae.config.spatialCompression * modelConfig.patchSize[1]
            let readers = try config.stages.map { stage in
                try stage.datasets.map { entry in
                    try Self.preparedData(
                        entry.path, framing: stage.framing(multiple: multiple), preparer: preparer, config: config,
                        runDirectory: runDirectory, showProgress: showProgress)
                }
            }
            source = try StagedBatchSource(
                stages: config.stages, readers: readers, patchSize: modelConfig.patchSize, seed: config.seed &+ 0xDA7A,
                posterior: config.latentSampling == .posterior, prefetchDepth: config.prefetchBatches)
            if !trainsText { emptyCaptionStates = Self.trimmed(text.encode([""])[0]) }
        }
        if group.rank == 0 { try group.barrier() }

        let snapshot = try loop.resume()
        if let auxiliaryTextObjective, auxiliaryTextObjective.hasPretrainingPhase {
            let keys = Set(auxiliaryTextObjective.namedParameters.map(\.key))
            textPretrainingPending = !(snapshot?.groups["model"]?.keys.contains { keys.contains($0) } ?? false)
        }
        if let snapshot {
            try loadPrefixed(snapshot.groups["model"] ?? [:])
            source.restore(position: snapshot.state.dataPosition, state: snapshot.state.extra)
        }
    }

    /// The prepared copy of the dataset at `path` under `framing`: `path` itself when it is a prepared folder of these
    /// models and framing, else the copy found by its key, else a new one prepared now.
    static func preparedData(
        _ path: String, framing: MediaFraming, preparer: DatasetPreparer, config: GokuTrainingConfig, runDirectory: URL,
        showProgress: Bool
    ) throws -> PreparedReader {
        let url = URL(fileURLWithPath: path)
        let fm = FileManager.default
        if fm.fileExists(atPath: url.appendingPathComponent(PreparedDataset.indexName).path) {
            let reader = try PreparedReader(directory: url)
            let identity = reader.manifest.identity
            guard identity.vae == preparer.vaeIdentity, identity.textEncoder == preparer.textIdentity,
                identity.framing == framing
            else {
                throw DatasetError.prepared(
                    path: path, reason: "was prepared with another VAE, text encoder or framing than this run's "
                        + "(framing \(identity.framing), the stage wants \(framing)): pass the dataset folder instead")
            }
            return reader
        }
        let manifestURL = url.appendingPathComponent(DatasetFolder.manifestName)
        let manifest: Data
        do { manifest = try Data(contentsOf: manifestURL) } catch {
            throw DatasetError.io(path: manifestURL.path, reason: "not a dataset folder: cannot read its manifest.jsonl")
        }
        let key = preparer.identity(manifestBytes: manifest, framing: framing).key
        var candidates = [config.preparedRoot.map { URL(fileURLWithPath: $0).appendingPathComponent(key) }
            ?? DatasetPreparer.defaultLocation(dataset: url, key: key)]
        candidates.append(runDirectory.appendingPathComponent("prepared").appendingPathComponent(key))
        for candidate in candidates {
            if let reader = try? PreparedReader(directory: candidate), reader.manifest.key == key { return reader }
        }
        let folder = try DatasetFolder(
            directory: url, options: .init(requireCaptions: true, skipBad: config.skipBadRows, framing: framing))
        if !folder.skipped.isEmpty {
            FileHandle.standardError.write(Data("\(path): skipped \(folder.skipped.count) bad rows of \(folder.skipped.count + folder.rows.count)\n".utf8))
        }
        // The dataset's own .prepared folder when it can be written, else the run folder's.
        let output = candidates.first { Self.isWritable($0) } ?? candidates.last!
        return try preparer.prepare(folder, framing: framing, output: output, showProgress: showProgress)
    }

    /// Whether `folder` exists and can be written, or can be created.
    static func isWritable(_ folder: URL) -> Bool {
        var url = folder
        while !FileManager.default.fileExists(atPath: url.path) && url.path != "/" { url.deleteLastPathComponent() }
        return FileManager.default.isWritableFile(atPath: url.path)
    }

    /// The states of an encoding's real tokens, (Ltext, D).
    static func trimmed(_ encoded: (states: Tensor, mask: [Bool])) -> Tensor {
        encoded.states.slice(axis: 0, 0, encoded.mask.filter { $0 }.count)
    }

    /// Forward and backward of one step on the next packed batch (the loop clips, updates and averages).
    public func computeGradients(step: Int) throws -> [String: Double] {
        transformer.setTraining(true)
        text.encoder.model.setTraining(trainsText)
        // The global batch; with several ranks this one computes only its token-balanced share (`BatchShare`), while
        // every rank draws the randomness of the whole batch in the same order, so that the ranks together compute
        // exactly the single-process step. Each rank reads the whole batch's prepared latents (a few kilobytes a
        // sample, next to the step's compute): the cut and the draws then need nothing from the source but its batch.
        let items = try source.nextBatch(step: step)
        let patch = transformer.config.patchSize
        // Data parallel over the sequence-parallel groups: every rank of a group takes the group's share.
        let groups = group.size / (sequenceGroup?.size ?? 1), groupIndex = group.rank / (sequenceGroup?.size ?? 1)
        let mine = groups > 1
            ? BatchShare.cut(
                tokens: items.map { TimestepShift.tokenCount(latentShape: $0.latent.shape, patchSize: patch) }, ranks: groups)[groupIndex]
            : Array(items.indices)
        let isMine = Set(mine)
        let generator = loop.generator

        let captions = items.map { config.captionDropout > 0 && Double(generator.nextUniform()) < config.captionDropout ? "" : $0.caption }
        var conditions: [Int: (states: Tensor, mask: [Bool]?)] = [:]
        var roleLoss: Tensor?
        if let empty = emptyCaptionStates, items.allSatisfy({ $0.textStates != nil }) {
            for i in mine { conditions[i] = (captions[i].isEmpty ? empty : items[i].textStates!, nil) }
        } else {
            let encoded = text.encodeBatch(mine.map { captions[$0] }, differentiable: trainsText)
            for (i, c) in zip(mine, text.perCaption(encoded)) { conditions[i] = (c.states, c.mask) }
            roleLoss = auxiliaryTextObjective?.loss(states: encoded.states, captions: mine.map { captions[$0] })
        }
        var samples: [GokuSample] = [], targets: [Tensor] = [], clean: [Tensor] = []
        let times = config.timesteps.sample(count: items.count, generator: generator)
        for (i, item) in items.enumerated() {
            guard isMine.contains(i) else {
                // Another rank's sample: advance the generator past its draws.
                let blocks = UInt64((item.latent.count + 3) / 4)
                if item.latentStd != nil { _ = generator.reserve(blocks: blocks) }
                _ = generator.reserve(blocks: blocks)
                if transformer.config.imageConditioning && !item.isImage { _ = generator.nextUniform() }
                if let ddpm { _ = generator.nextInt(below: ddpm.stepCount) }
                continue
            }
            var x1 = item.latent
            if let std = item.latentStd { x1 = x1 + std * Tensor.randn(x1.shape, generator: generator) }
            clean.append(x1)
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
                let shift = TimestepShift().shift(latentShape: x1.shape, patchSize: transformer.config.patchSize)
                let t = config.shiftTimesteps ? TimestepShift.apply(times[i], shift: shift) : times[i]
                let pair = RectifiedFlow.trainingPair(data: x1, noise: noise, t: t)
                (noisy, target, time) = (pair.noisy, pair.target, t)
            }
            let condition = conditions[i]!
            samples.append(GokuSample(latent: noisy, timestep: time, text: condition.states, textMask: condition.mask, firstFrame: first))
            targets.append(target)
        }
        guard !samples.isEmpty else {
            // Fewer samples than ranks: this rank adds nothing to the step (its gradients count as zeros).
            return ["loss": 0, "tokens": 0, "samples": 0]
        }
        let batch = try PackedBatch(samples: samples, config: transformer.config)
        // With several ranks, losses are divided by the whole batch's elements: the ranks' losses sum to the global one.
        let elements = group.size > 1 ? items.reduce(0) { $0 + $1.latent.count } : nil
        let loss: Tensor
        var tokens = batch.layout.tokenCount, sampleCount = samples.count
        if let sequenceGroup {
            // Ulysses: this rank computes its rows of the pack, and its loss on those rows' targets (patchified as the
            // model's output is laid out).
            let rows = RowSharding.rows(tokens, rank: sequenceGroup.rank, of: sequenceGroup.size)
            let shard = batch.sequenceShard(rows, exchange: UlyssesExchange(group: sequenceGroup, tokens: tokens))
            let prediction = MixedPrecision.with(config.precision.mode) { transformer(shard) }
            let packedTargets = Tensor.concat(targets.map { Patchify.patchify($0, patchSize: patch) }, axis: 0)
            loss = RectifiedFlow.loss(
                predictions: [prediction.squeeze(0)], targets: [packedTargets.slice(axis: 0, rows.lowerBound, rows.upperBound)],
                elementCount: elements)
            tokens = rows.count
            if sequenceGroup.rank != 0 { sampleCount = 0 }  // counted once per group
        } else {
            let prediction = MixedPrecision.with(config.precision.mode) { transformer(batch) }
            let predictions = batch.unpack(prediction)
            if let lossWeighting {
                let weights = samples.indices.map { i in
                    lossWeighting.weights(
                        clean: clean[i], noisy: samples[i].latent, prediction: predictions[i], time: samples[i].timestep,
                        flow: ddpm == nil)
                }
                loss = RectifiedFlow.weightedLoss(predictions: predictions, targets: targets, weights: weights)
            } else {
                loss = RectifiedFlow.loss(predictions: predictions, targets: targets, elementCount: elements)
            }
        }
        if let roleLoss, let auxiliaryTextObjective {
            (loss + roleLoss * Tensor(Float(auxiliaryTextObjective.lossWeight))).backward()
        } else {
            loss.backward()
        }
        var metrics = ["loss": Double(loss.item()), "tokens": Double(tokens), "samples": Double(sampleCount)]
        metrics["text_role_loss"] = roleLoss.map { Double($0.item()) }
        return metrics
    }

    /// The data position and stage state saved beside the weights.
    public func runState() -> [String: String] { source.runState() }

    /// One optimizer step on the next packed batch.
    @discardableResult
    public func trainStep() throws -> GokuStepLosses {
        let metrics = try loop.trainStep(self)
        return GokuStepLosses(
            loss: metrics["loss"]!, gradientNorm: metrics["grad_norm"]!, tokens: Int(metrics["tokens"]!),
            textRoleLoss: metrics["text_role_loss"])
    }

    /// Runs the auxiliary text objective's phase before training (the Shapes recipe's caption-role phase) when it
    /// starts with this run; the EMA of the text encoder restarts at the weights it leaves. Nothing when it is not
    /// pending.
    /// - Returns: the phase's summary line, or nil when nothing ran.
    @discardableResult
    public func pretrainText(showProgress: Bool = true, output: FileHandle = .standardError) throws -> String? {
        guard textPretrainingPending, let auxiliaryTextObjective else { return nil }
        let summary = try auxiliaryTextObjective.pretrain(
            text: text, captions: source.captions, showProgress: showProgress, output: output)
        loop.ema?.restart { $0.hasPrefix("text_encoder.") }
        textPretrainingPending = false
        return summary
    }

    /// Trains to `config.steps` with checkpoints, progress and the metrics log, then exports the model folder
    /// `<run>/model` (EMA weights, transformer in bf16). Starts with the auxiliary text objective's phase when it is
    /// pending.
    public func run(showProgress: Bool = true, output: FileHandle = .standardError) throws {
        if let summary = try pretrainText(showProgress: showProgress, output: output) {
            output.write(Data((summary + "\n").utf8))
        }
        var announced = -1
        try loop.run(self, showProgress: showProgress, output: output) { step in
            guard let staged = self.source as? StagedBatchSource else { return }
            let stage = staged.stageIndex(step: step)
            if stage != announced {
                announced = stage
                let s = self.config.stages[stage]
                output.write(Data("stage \(stage + 1)/\(self.config.stages.count) '\(s.name)' from step \(step): \(staged.data[stage].samples.count) samples, \(s.tokenBudget) tokens a step, at most \(s.maxSide) px\n".utf8))
            }
        } export: {
            try export(to: runDirectory.appendingPathComponent("model"))
        }
    }

    /// Writes a model folder with the EMA weights (the raw ones when there is no EMA), the transformer and VAE in
    /// bfloat16 by default (the shipped model must stay under 50 MB). Its default size and length for generation are
    /// the recipe's (`GokuTrainingRecipe.generationSize`, the Shapes data's), or those of the last stage's cap.
    public func export(to folder: URL, weightsDType: DType? = .bfloat16) throws {
        var frames = 1, width = 0, height = 0
        if let recipe { (frames, width, height) = recipe.generationSize }
        if let last = config.stages.last {
            let multiple = vae.config.spatialCompression * transformer.config.patchSize[1]
            width = last.maxSide / multiple * multiple
            height = width
            frames = last.kinds == .images ? 1 : last.maxFrames
        }
        let index = GokuModelIndex(
            frames: frames, width: width, height: height, maxTextLength: config.maxTextLength, sampling: config.sampling)
        try loop.withExportWeights {
            guard loop.isPrimary else { return }
            let bundle = try GokuModelBundle(index: index, transformer: transformer, vae: vae, text: text)
            try bundle.save(to: folder, weightsDType: weightsDType)
        }
    }

    private func loadPrefixed(_ tensors: [String: Tensor]) throws {
        func part(_ prefix: String) -> [String: Tensor] {
            Dictionary(uniqueKeysWithValues: tensors.compactMap { key, value in
                key.hasPrefix(prefix) ? (String(key.dropFirst(prefix.count)), value) : nil
            })
        }
        try transformer.load(part("transformer."))
        if trainsText { try text.encoder.model.load(part("text_encoder.")) }
        // A checkpoint from before the auxiliary objective was turned on has none of its parameters: they keep their
        // fresh initialisation.
        if let auxiliaryTextObjective {
            let keys = Set(auxiliaryTextObjective.namedParameters.map(\.key))
            let own = tensors.filter { keys.contains($0.key) }
            if !own.isEmpty { try auxiliaryTextObjective.load(own) }
        }
    }
}

/// The data of a trainer opened only to export (`GokuTrainer(exportOnly: true)`): none.
final class NoTrainingData: TrainingBatchSource {
    func nextBatch(step: Int) throws -> [TrainingExample] {
        throw GokuPipelineError.invalidOption(option: "data", reason: "this run was opened without its data, to export only")
    }
    var position: Int { 0 }
    func runState() -> [String: String] { [:] }
    func restore(position: Int, state: [String: String]) {}
    var captions: [String] { [] }
    var sampleCount: Int { 0 }
}
