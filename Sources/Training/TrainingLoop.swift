import Checkpoint
import Distributed
import Foundation
import Optim
import TensorCore

/// What a model's trainer gives the generic loop: the step's forward and backward, and its own run state.
public protocol TrainingTask: AnyObject {
    /// Forward and backward of step `step` (0-based): leaves the gradients in the trained parameters' `grad` and
    /// returns the step's metrics; `loss` is required, other names go to the metrics log as they are.
    func computeGradients(step: Int) throws -> [String: Double]
    /// How far the data stream has gone after the last step (samples or batches; saved in the checkpoint).
    var dataPosition: Int { get }
    /// Everything else besides tensors the task needs back on resume (e.g. a stage's epoch and batch).
    func runState() -> [String: String]
}

/// One training loop for every model: steps, gradient reduction, clipping, the learning-rate schedule, AdamW, EMA,
/// progress, the metrics log, periodic asynchronous checkpoints and exact resume.
///
/// A trainer builds its model, hands the loop its parameters, and implements `TrainingTask` (the step's forward and
/// backward on its own data). The loop owns what every run shares:
/// - **the step**: clear gradients → `task.computeGradients` → with several ranks, the step's loss, token and sample
///   counts summed over them and the gradients reduced (`DataParallel`: all-reduced, or reduce-scattered into this
///   rank's shards) → clip by global norm → learning rate of this step → AdamW update (of the shards, then the
///   updated rows all-gathered) → EMA update (`updateEMA`, by default with warm-up; of the shards) → step + 1;
/// - **the ranks** (`group`, data parallel at a `ShardingStage`): each rank's task computes its share of the global
///   batch, with its loss divided by the whole batch's size so that gradients are summed; rank 0 writes the log and
///   the progress and exports; every rank writes its part of each checkpoint (`CheckpointStore`);
/// - **the run**: the metrics log (`metrics.jsonl`, one record per step), the progress bar, a checkpoint every
///   `checkpointEvery` steps written in the background while training goes on (`CheckpointStore`), a last one at the
///   end, then `export`;
/// - **resume**: `resume()` reads the newest checkpoint, restores the optimizer, EMA, the training random generator,
///   the step and the clock, and returns the snapshot so that the task restores its weights (it knows its modules)
///   and its data position (`TrainingState.dataPosition` and `extra`).
/// A resumed run is bit-identical to an uninterrupted one when the task draws all its randomness from `generator`
/// and its data by position; a checkpoint saved by any number of ranks at any sharding stage resumes on any other.
/// A stop request (`StopRequest`: SIGTERM, or SIGUSR1 from `goku launch`) saves a checkpoint between steps and ends
/// `run` early; under `goku launch` each step beats the rank's `Heartbeat`.
public final class TrainingLoop {
    /// Run-wide settings.
    public struct Settings: Sendable {
        /// Steps to train to.
        public var steps: Int
        /// Steps between checkpoints (0: only at the end).
        public var checkpointEvery: Int
        /// Checkpoints kept.
        public var keepCheckpoints: Int
        /// Global gradient-norm clip (0 disables).
        public var clipNorm: Double
        /// The progress bar's label.
        public var label: String

        /// Settings; see the properties.
        public init(steps: Int, checkpointEvery: Int, keepCheckpoints: Int, clipNorm: Double, label: String = "train") {
            self.steps = steps
            self.checkpointEvery = checkpointEvery
            self.keepCheckpoints = keepCheckpoints
            self.clipNorm = clipNorm
            self.label = label
        }
    }

    /// The run folder.
    public let runDirectory: URL
    /// The settings; `steps` may be raised before `run` (an extended run).
    public var settings: Settings
    /// Everything the optimizer updates and checkpoints save (group `model`).
    public let parameters: [(key: String, tensor: Tensor)]
    /// The optimizer.
    public let optimizer: AdamW
    /// The average of the exported weights, if any (group `ema`).
    public let ema: ExponentialMovingAverage?
    /// The learning rate of a step.
    public var learningRate: (Int) -> Double
    /// The ranks training together (a group of one in one process).
    public let group: ProcessGroup
    /// Data parallel over `group` when it has several ranks.
    public let dataParallel: DataParallel?
    /// Folds the weights into the EMA after the update of a step; by default `ema.update(step:)` with warm-up.
    public var updateEMA: (ExponentialMovingAverage, Int) -> Void = { ema, step in ema.update(step: step) }
    /// The training randomness (noise, flow times, dropout): saved and restored with the run.
    public private(set) var generator: RandomGenerator
    /// Steps done.
    public private(set) var step = 0
    /// Training seconds of earlier sessions of this run.
    public private(set) var previousSeconds = 0.0
    /// The checkpoints.
    public let store: CheckpointStore
    private var log: MetricsLog?

    /// A loop over `parameters` (frozen ones, `requiresGrad` false, are saved but not updated).
    /// - Parameters:
    ///   - optimizer: AdamW settings; `learningRate` is replaced each step by `learningRate(step)`.
    ///   - decays: the keys that get weight decay (`WeightDecay.decayedKeys`).
    ///   - emaKeys: the keys averaged for export (nil: no EMA).
    ///   - generator: the training random generator at its start.
    ///   - group: the ranks training together; sharding: what each keeps of the state (`DataParallel`).
    ///   - readsOnly: a loop opened only to resume and export a run, which leaves its folder as it is (a job may be
    ///     writing a checkpoint into it).
    public init(
        runDirectory: URL, settings: Settings, parameters: [(key: String, tensor: Tensor)], optimizer: AdamW.Options,
        decays: Set<String>, emaDecay: Double, emaKeys: Set<String>?, generator: RandomGenerator,
        group: ProcessGroup = .single(), sharding: ShardingStage = .none, readsOnly: Bool = false,
        learningRate: @escaping (Int) -> Double
    ) throws {
        self.runDirectory = runDirectory
        self.settings = settings
        self.parameters = parameters
        self.group = group
        dataParallel = group.size > 1
            ? try DataParallel(group: group, stage: sharding, parameters: parameters.filter { $0.tensor.requiresGrad }) : nil
        // The optimizer and the EMA own the shards at the sharded stages, else the parameters themselves.
        let updated = dataParallel?.stage.shardsOptimizer == true ? dataParallel!.shards : parameters
        self.optimizer = AdamW(updated, options: optimizer, decayFilter: { decays.contains($0) })
        ema = emaKeys.flatMap { keys in
            emaDecay > 0 ? ExponentialMovingAverage(updated.filter { keys.contains($0.key) }, decay: emaDecay) : nil
        }
        self.generator = generator
        self.learningRate = learningRate
        store = try CheckpointStore(
            runDirectory: runDirectory, keepLast: settings.keepCheckpoints, group: group, removesUnfinished: !readsOnly)
        heartbeat = Heartbeat(rank: group.worldRank)
        StopRequest.install()
    }

    private let heartbeat: Heartbeat
    private let fault = FaultInjection.fromEnvironment()
    /// Whether the last `run` ended early on a stop request (after saving a checkpoint).
    public private(set) var stopped = false
    /// Ranks that asked to stop, summed over the group at the last step.
    private var stopsOverRanks = 0

    /// Whether this rank writes the log, the progress and the exports.
    public var isPrimary: Bool { group.rank == 0 }

    /// Keys whose optimizer and EMA tensors are this rank's row shards, with their full shapes.
    private var shardedShapes: [String: [Int]] {
        guard let dataParallel, dataParallel.stage.shardsOptimizer else { return [:] }
        return Dictionary(uniqueKeysWithValues: dataParallel.parameters.map { ($0.key, $0.tensor.shape) })
    }

    /// Restores the newest checkpoint's optimizer, EMA, generator, step and clock; returns its snapshot for the task
    /// (weights and data position), or nil for a new run.
    public func resume() throws -> TrainingSnapshot? {
        guard let url = try store.latest() else { return nil }
        let reader = try ShardedCheckpointReader(folder: url)
        // This rank's rows of what it holds as shards; everything else whole, whatever rank count saved it.
        let shapes = shardedShapes
        func read(_ group: String, _ key: String, shardOf parameter: String? = nil) throws -> Tensor {
            let name = group + "/" + key
            guard let parameter, let shape = shapes[parameter] else { return try reader.read(name) }
            return try reader.read(name, rows: RowSharding.rows(RowSharding.rowCount(shape), rank: self.group.rank, of: self.group.size))
        }
        var model: [String: Tensor] = [:], optimizerState: [String: Tensor] = [:], emaState: [String: Tensor] = [:]
        for name in reader.names {
            let parts = name.split(separator: "/", maxSplits: 1).map(String.init)
            guard parts.count == 2 else { continue }
            switch parts[0] {
            case "model": model[parts[1]] = try read("model", parts[1])
            case "optimizer":
                let parameter = parts[1].hasSuffix(".exp_avg_sq") ? String(parts[1].dropLast(".exp_avg_sq".count))
                    : parts[1].hasSuffix(".exp_avg") ? String(parts[1].dropLast(".exp_avg".count)) : nil
                optimizerState[parts[1]] = try read("optimizer", parts[1], shardOf: parameter)
            case "ema": emaState[parts[1]] = try read("ema", parts[1], shardOf: parts[1])
            default: continue
            }
        }
        let snapshot = TrainingSnapshot(
            groups: ["model": model, "optimizer": optimizerState, "ema": emaState],
            state: try CheckpointStore.readState(url), configJSON: try CheckpointStore.readConfig(url))
        try optimizer.loadStateDictionary(optimizerState)
        if let ema { try ema.load(emaState) }
        if let dataParallel, dataParallel.stage.shardsOptimizer {
            // The shards start from the checkpoint's weights, as the full parameters will once the task loads them.
            for (key, shard) in dataParallel.shards {
                guard let full = model[key], full.shape == shapes[key] else { continue }
                RowSharding.copyRows(of: full, into: shard, rank: group.rank, of: group.size)
            }
        }
        generator = snapshot.state.makeGenerator()
        step = snapshot.state.step
        previousSeconds = snapshot.state.trainingSeconds
        return snapshot
    }

    /// One optimizer step of `task`; returns its metrics plus `grad_norm` and `lr`.
    /// - Throws: the task's errors; `TrainingLoopError.diverged` when the loss is not finite.
    @discardableResult
    public func trainStep(_ task: TrainingTask) throws -> [String: Double] {
        fault?.fireIfDue(rank: group.worldRank, step: step, runDirectory: runDirectory)
        let trafficBefore = group.traffic
        for (_, p) in parameters { p.grad = nil }
        if let dataParallel { for (_, s) in dataParallel.shards { s.grad = nil } }
        var metrics = try task.computeGradients(step: step)
        guard metrics["loss"] != nil else { preconditionFailure("TrainingTask.computeGradients must report 'loss'") }
        if dataParallel != nil {
            // One all-reduce per step: the loss (each rank's share of the global loss), tokens, samples, and a
            // control word: ranks still writing the last checkpoint + (ranks + 1) × ranks asking to stop.
            let control = Double(store.localWritePending + (StopRequest.isRequested ? group.size + 1 : 0))
            let sums = try group.allReduce([metrics["loss"]!, metrics["tokens"] ?? 0, metrics["samples"] ?? 0, control])
            metrics["loss"] = sums[0]
            if metrics["tokens"] != nil { metrics["tokens"] = sums[1] }
            if metrics["samples"] != nil { metrics["samples"] = sums[2] }
            let word = Int(sums[3])
            stopsOverRanks = word / (group.size + 1)
            try store.commitIfReady(pendingOverRanks: word % (group.size + 1))
        } else {
            stopsOverRanks = StopRequest.isRequested ? 1 : 0
        }
        let loss = metrics["loss"]!
        guard loss.isFinite else { throw TrainingLoopError.diverged(step: step, loss: loss) }
        if let dataParallel {
            let start = Date()
            try dataParallel.reduceGradients()
            metrics["grad_norm"] = try dataParallel.clip(maxNorm: settings.clipNorm)
            metrics["reduce_seconds"] = Date().timeIntervalSince(start)
        } else {
            let trained = parameters.filter { $0.tensor.requiresGrad }
            metrics["grad_norm"] =
                settings.clipNorm > 0 ? GradientClipping.clipGlobalNorm(trained.map(\.tensor), maxNorm: settings.clipNorm) : 0
        }
        optimizer.options.learningRate = learningRate(step)
        metrics["lr"] = optimizer.options.learningRate
        optimizer.update()
        if let dataParallel, dataParallel.stage.shardsOptimizer {
            let start = Date()
            try dataParallel.gatherParameters()
            metrics["gather_seconds"] = Date().timeIntervalSince(start)
        }
        if let ema { updateEMA(ema, step) }
        step += 1
        for (collective, bytes) in group.traffic where bytes != trafficBefore[collective] {
            metrics["comm_\(collective.rawValue)_bytes"] = Double(bytes - (trafficBefore[collective] ?? 0))
        }
        heartbeat.beat(step: step)
        return metrics
    }

    /// Trains `task` to `settings.steps` with the log, progress and checkpoints, saves a last checkpoint and calls
    /// `export` (on every rank: `withExportWeights` is collective when the EMA is sharded; only rank 0 should write).
    /// Returns early, after saving a checkpoint, when a stop was requested (`stopped`).
    /// - Parameters:
    ///   - progressMetrics: the metrics shown on the progress bar, by name.
    ///   - beforeStep: called before each step (e.g. a stage change to announce).
    public func run(
        _ task: TrainingTask, showProgress: Bool = true, output: FileHandle = .standardError,
        progressMetrics: [String] = ["loss"], beforeStep: ((Int) throws -> Void)? = nil, export: () throws -> Void
    ) throws {
        if isPrimary && log == nil {
            log = try MetricsLog(url: runDirectory.appendingPathComponent("metrics.jsonl"), resumingAt: step)
        }
        let bar = isPrimary
            ? ProgressBar(total: settings.steps, label: settings.label, output: output, interactive: showProgress ? nil : false) : nil
        bar?.resume(at: step)
        let start = Date()
        var tokensSeen = 0.0
        stopped = false
        while step < settings.steps {
            try beforeStep?(step)
            let stepStart = Date()
            var metrics = try trainStep(task)
            metrics["step_seconds"] = Date().timeIntervalSince(stepStart)
            if stopsOverRanks == 0 && settings.checkpointEvery > 0 && step % settings.checkpointEvery == 0 && step < settings.steps {
                // The time the loop is blocked by a save (copying this rank's rows; the write goes on behind).
                let saveStart = Date()
                try store.save(snapshot(task, seconds: previousSeconds + Date().timeIntervalSince(start)))
                metrics["checkpoint_stall_seconds"] = Date().timeIntervalSince(saveStart)
            }
            log?.append(step: step, metrics)
            var shown = progressMetrics.compactMap { name in metrics[name].map { (name, $0) } }
            if let tokens = metrics["tokens"] {
                tokensSeen += tokens
                shown.append(("tok/s", tokensSeen / Date().timeIntervalSince(start)))
            }
            bar?.update(completed: step, metrics: shown)
            if stopsOverRanks > 0 { break }
        }
        bar?.finish()
        try store.saveNow(snapshot(task, seconds: previousSeconds + Date().timeIntervalSince(start)))
        heartbeat.beat(step: step)
        if stopsOverRanks > 0 && step < settings.steps {
            stopped = true
            if isPrimary { output.write(Data("stopped at step \(step) on request; its checkpoint is saved, and the same command resumes\n".utf8)) }
            return
        }
        try export()
        heartbeat.beat(step: step)
        try group.barrier()
    }

    /// The checkpoint of the current step: `model`, `optimizer`, `ema`, and the state.
    public func snapshot(_ task: TrainingTask, seconds: Double) -> TrainingSnapshot {
        var groups: [String: [String: Tensor]] = [
            "model": Dictionary(uniqueKeysWithValues: parameters.map { ($0.key, $0.tensor) }),
            "optimizer": optimizer.stateDictionary(),
        ]
        if let ema { groups["ema"] = ema.shadow }
        var shapes: [String: [Int]] = [:]
        for (key, shape) in shardedShapes {
            shapes["optimizer/\(key).exp_avg"] = shape
            shapes["optimizer/\(key).exp_avg_sq"] = shape
            shapes["ema/\(key)"] = shape
        }
        return TrainingSnapshot(
            groups: groups,
            state: TrainingState(
                step: step, generator: generator, dataPosition: task.dataPosition, trainingSeconds: seconds,
                extra: task.runState()), configJSON: nil, shardShapes: shapes)
    }

    /// Runs `body` with the EMA weights in the averaged parameters (the raw ones when there is no EMA), then puts the
    /// raw weights back: what exports read. Every rank must call it when the EMA is sharded (it gathers it).
    public func withExportWeights<R>(_ body: () throws -> R) throws -> R {
        guard let ema else { return try body() }
        var averaged = parameters.filter { ema.shadow[$0.key] != nil }
        var values = averaged.map { ema.shadow[$0.key]! }
        if let dataParallel, dataParallel.stage.shardsOptimizer {
            // The EMA lives in shards: gather it whole on every rank first.
            let full = Dictionary(uniqueKeysWithValues: dataParallel.parameters.map { ($0.key, $0.tensor) })
            averaged = ema.shadow.keys.sorted().compactMap { key in full[key].map { (key: key, tensor: $0) } }
            values = try dataParallel.gather(averaged.map { ema.shadow[$0.key]! }, shapes: averaged.map(\.tensor.shape))
        }
        let raw = Autograd.inference { averaged.map { $0.tensor.detached().copy() } }
        for (p, v) in zip(averaged, values) { p.tensor.assign(v) }
        defer { for (p, r) in zip(averaged, raw) { p.tensor.assign(r) } }
        return try body()
    }
}

/// A training run that cannot go on.
public enum TrainingLoopError: Error, CustomStringConvertible {
    /// The loss became NaN or infinite.
    case diverged(step: Int, loss: Double)

    public var description: String {
        switch self {
        case let .diverged(step, loss):
            return "learningRate: training diverged at step \(step) (loss \(loss)); lower the learning rate or clip harder"
        }
    }
}
