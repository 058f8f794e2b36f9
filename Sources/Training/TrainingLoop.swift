import Checkpoint
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
/// - **the step**: clear gradients → `task.computeGradients` → `reduceGradients` (the hook where data-parallel training
///   all-reduces or reduce-scatters; a no-op in one process) → clip by global norm → learning rate of this step →
///   AdamW update → EMA update (`updateEMA`, by default with warm-up) → step + 1;
/// - **the run**: the metrics log (`metrics.jsonl`, one record per step), the progress bar, a checkpoint every
///   `checkpointEvery` steps written in the background while training goes on (`CheckpointStore`), a last one at the
///   end, then `export`;
/// - **resume**: `resume()` reads the newest checkpoint, restores the optimizer, EMA, the training random generator,
///   the step and the clock, and returns the snapshot so that the task restores its weights (it knows its modules)
///   and its data position (`TrainingState.dataPosition` and `extra`).
/// A resumed run is bit-identical to an uninterrupted one when the task draws all its randomness from `generator`
/// and its data by position.
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
    /// Called between backward and clipping with the trained parameters: the gradient-reduction hook.
    public var reduceGradients: ([(key: String, tensor: Tensor)]) throws -> Void = { _ in }
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
    public init(
        runDirectory: URL, settings: Settings, parameters: [(key: String, tensor: Tensor)], optimizer: AdamW.Options,
        decays: Set<String>, emaDecay: Double, emaKeys: Set<String>?, generator: RandomGenerator,
        learningRate: @escaping (Int) -> Double
    ) throws {
        self.runDirectory = runDirectory
        self.settings = settings
        self.parameters = parameters
        self.optimizer = AdamW(parameters, options: optimizer, decayFilter: { decays.contains($0) })
        ema = emaKeys.flatMap { keys in
            emaDecay > 0 ? ExponentialMovingAverage(parameters.filter { keys.contains($0.key) }, decay: emaDecay) : nil
        }
        self.generator = generator
        self.learningRate = learningRate
        store = try CheckpointStore(runDirectory: runDirectory, keepLast: settings.keepCheckpoints)
    }

    /// Restores the newest checkpoint's optimizer, EMA, generator, step and clock; returns its snapshot for the task
    /// (weights and data position), or nil for a new run.
    public func resume() throws -> TrainingSnapshot? {
        guard let url = try store.latest() else { return nil }
        let snapshot = try CheckpointStore.load(from: url)
        try optimizer.loadStateDictionary(snapshot.groups["optimizer"] ?? [:])
        if let ema { try ema.load(snapshot.groups["ema"] ?? [:]) }
        generator = snapshot.state.makeGenerator()
        step = snapshot.state.step
        previousSeconds = snapshot.state.trainingSeconds
        return snapshot
    }

    /// One optimizer step of `task`; returns its metrics plus `grad_norm` and `lr`.
    /// - Throws: the task's errors; `TrainingLoopError.diverged` when the loss is not finite.
    @discardableResult
    public func trainStep(_ task: TrainingTask) throws -> [String: Double] {
        for (_, p) in parameters { p.grad = nil }
        var metrics = try task.computeGradients(step: step)
        guard let loss = metrics["loss"] else { preconditionFailure("TrainingTask.computeGradients must report 'loss'") }
        guard loss.isFinite else { throw TrainingLoopError.diverged(step: step, loss: loss) }
        let trained = parameters.filter { $0.tensor.requiresGrad }
        try reduceGradients(trained)
        metrics["grad_norm"] =
            settings.clipNorm > 0 ? GradientClipping.clipGlobalNorm(trained.map(\.tensor), maxNorm: settings.clipNorm) : 0
        optimizer.options.learningRate = learningRate(step)
        metrics["lr"] = optimizer.options.learningRate
        optimizer.update()
        if let ema { updateEMA(ema, step) }
        step += 1
        return metrics
    }

    /// Trains `task` to `settings.steps` with the log, progress and checkpoints, saves a last checkpoint and calls
    /// `export`.
    /// - Parameters:
    ///   - progressMetrics: the metrics shown on the progress bar, by name.
    ///   - beforeStep: called before each step (e.g. a stage change to announce).
    public func run(
        _ task: TrainingTask, showProgress: Bool = true, output: FileHandle = .standardError,
        progressMetrics: [String] = ["loss"], beforeStep: ((Int) throws -> Void)? = nil, export: () throws -> Void
    ) throws {
        let log = try self.log ?? MetricsLog(url: runDirectory.appendingPathComponent("metrics.jsonl"), resumingAt: step)
        self.log = log
        let bar = ProgressBar(total: settings.steps, label: settings.label, output: output, interactive: showProgress ? nil : false)
        bar.resume(at: step)
        let start = Date()
        var tokensSeen = 0.0
        while step < settings.steps {
            try beforeStep?(step)
            let stepStart = Date()
            var metrics = try trainStep(task)
            metrics["step_seconds"] = Date().timeIntervalSince(stepStart)
            log.append(step: step, metrics)
            var shown = progressMetrics.compactMap { name in metrics[name].map { (name, $0) } }
            if let tokens = metrics["tokens"] {
                tokensSeen += tokens
                shown.append(("tok/s", tokensSeen / Date().timeIntervalSince(start)))
            }
            bar.update(completed: step, metrics: shown)
            if settings.checkpointEvery > 0 && step % settings.checkpointEvery == 0 && step < settings.steps {
                try store.save(snapshot(task, seconds: previousSeconds + Date().timeIntervalSince(start)))
            }
        }
        bar.finish()
        try store.saveNow(snapshot(task, seconds: previousSeconds + Date().timeIntervalSince(start)))
        try export()
    }

    /// The checkpoint of the current step: `model`, `optimizer`, `ema`, and the state.
    public func snapshot(_ task: TrainingTask, seconds: Double) -> TrainingSnapshot {
        var groups: [String: [String: Tensor]] = [
            "model": Dictionary(uniqueKeysWithValues: parameters.map { ($0.key, $0.tensor) }),
            "optimizer": optimizer.stateDictionary(),
        ]
        if let ema { groups["ema"] = ema.shadow }
        return TrainingSnapshot(
            groups: groups,
            state: TrainingState(
                step: step, generator: generator, dataPosition: task.dataPosition, trainingSeconds: seconds,
                extra: task.runState()))
    }

    /// Runs `body` with the EMA weights in the averaged parameters (the raw ones when there is no EMA), then puts the
    /// raw weights back: what exports read.
    public func withExportWeights<R>(_ body: () throws -> R) rethrows -> R {
        guard let ema else { return try body() }
        let averaged = parameters.filter { ema.shadow[$0.key] != nil }
        let raw = Autograd.inference { averaged.map { $0.tensor.detached().copy() } }
        ema.copy(to: averaged)
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
