import Datasets
import Foundation
import TensorCore

/// One clean training example as the step sees it.
public struct TrainingExample {
    /// The scaled latent x1 (C, T, h, w), or the posterior mean when `latentStd` is set.
    public var latent: Tensor
    /// The posterior's standard deviation, when the step draws x1 from the posterior.
    public var latentStd: Tensor?
    /// The caption.
    public var caption: String
    /// The frozen text encoder's states of the caption's tokens (Ltext, D), when prepared.
    public var textStates: Tensor?
    /// Whether it is an image (one latent frame).
    public var isImage: Bool { latent.shape[1] == 1 }

    /// An example; `latentStd` and `textStates` are for prepared data.
    public init(latent: Tensor, latentStd: Tensor? = nil, caption: String, textStates: Tensor? = nil) {
        self.latent = latent
        self.latentStd = latentStd
        self.caption = caption
        self.textStates = textStates
    }
}

/// Where `GokuTrainer` takes each step's examples from, by data position, so a resumed run takes the same ones: the
/// staged dataset folders' `StagedBatchSource`, or a recipe's data (`GokuTrainingRecipe.batchSource`).
public protocol TrainingBatchSource: AnyObject {
    /// The examples of step `step`; advances the position.
    func nextBatch(step: Int) throws -> [TrainingExample]
    /// The position after the last batch taken (saved as `TrainingState.dataPosition`).
    var position: Int { get }
    /// Further position state (saved in `TrainingState.extra`).
    func runState() -> [String: String]
    /// Continues from a saved position.
    func restore(position: Int, state: [String: String])
    /// Every caption of the training data (for an auxiliary text objective's pre-training phase).
    var captions: [String] { get }
    /// Samples available.
    var sampleCount: Int { get }
}

/// The data of a staged run on prepared dataset folders: per stage a `PackingSampler` over its mixture, walked batch
/// by batch through a bounded prefetch queue.
///
/// Position: the stage, and within it the epoch and batch of the next batch (`TrainingState.extra`); `position`
/// counts batches over the whole run. A step in a later stage than the current one starts that stage at its first
/// batch.
final class StagedBatchSource: TrainingBatchSource {
    /// One stage's samples: (reader, sample index) pairs and the sampler over them.
    struct StageData {
        var samples: [(reader: PreparedReader, index: Int)]
        var sampler: PackingSampler
    }

    let stages: [TrainingStage]
    /// First step of each stage.
    let starts: [Int]
    let data: [StageData]
    /// Batches prefetched ahead; 0 reads every sample into memory first (small datasets, and the reference the
    /// streaming path is measured against).
    let prefetchDepth: Int
    /// Per stage, every sample's example when held in memory.
    private var resident: [[TrainingExample]]?
    let posterior: Bool
    private(set) var position: Int
    private var stage: Int
    private var next: BatchPosition
    private var prefetcher: Prefetcher<(after: BatchPosition, examples: [TrainingExample])>?

    /// A source over prepared `readers` (per stage, per dataset of its mixture).
    /// - Throws: `DatasetError.invalidOption` when a stage has no sample of its kinds or a sample exceeds its budget.
    init(
        stages: [TrainingStage], readers: [[PreparedReader]], patchSize: [Int], seed: UInt64, posterior: Bool,
        prefetchDepth: Int = 4
    ) throws {
        self.stages = stages
        self.posterior = posterior
        self.prefetchDepth = prefetchDepth
        var starts: [Int] = [], step = 0
        for s in stages {
            starts.append(step)
            step += s.steps
        }
        self.starts = starts
        var data: [StageData] = []
        for (number, (stage, stageReaders)) in zip(stages, readers).enumerated() {
            var samples: [(PreparedReader, Int)] = [], items: [PackingSampler.Item] = []
            for (mixture, reader) in zip(stage.datasets, stageReaders) {
                for (i, sample) in reader.manifest.samples.enumerated() {
                    switch stage.kinds {
                    case .images where !sample.isImage, .videos where sample.isImage: continue
                    default: break
                    }
                    samples.append((reader, i))
                    items.append(PackingSampler.Item(tokens: sample.tokens(patchSize: patchSize), weight: mixture.weight * sample.weight))
                }
            }
            guard !items.isEmpty else {
                throw DatasetError.invalidOption(
                    option: "stages[\(number)]", reason: "no sample of kind '\(stage.kinds.rawValue)' in its datasets")
            }
            do {
                data.append(StageData(
                    samples: samples,
                    sampler: try PackingSampler(items: items, tokenBudget: stage.tokenBudget, seed: seed &+ UInt64(number))))
            } catch let DatasetError.invalidOption(option, reason) {
                throw DatasetError.invalidOption(option: "stages[\(number)].\(option)", reason: reason)
            }
        }
        self.data = data
        position = 0
        stage = 0
        next = BatchPosition()
        if prefetchDepth == 0 {
            resident = try data.map { stageData in try stageData.samples.map { try Self.example($0.reader, $0.index, posterior: posterior) } }
        }
    }

    /// Sample `index` of `reader` as an example.
    static func example(_ reader: PreparedReader, _ index: Int, posterior: Bool) throws -> TrainingExample {
        let tensors = try reader.tensors(of: index)
        return TrainingExample(
            latent: tensors.mean, latentStd: posterior ? tensors.std : nil, caption: reader.manifest.samples[index].caption,
            textStates: tensors.text)
    }

    var captions: [String] { data.flatMap { $0.samples.map { $0.reader.manifest.samples[$0.index].caption } } }
    var sampleCount: Int { data.first?.samples.count ?? 0 }

    /// The stage of step `step`: the last one started by then.
    func stageIndex(step: Int) -> Int { starts.lastIndex { $0 <= step } ?? 0 }

    /// Restores a saved position.
    func restore(position: Int, state: [String: String]) {
        self.position = position
        stage = state["stage"].flatMap(Int.init) ?? 0
        next = BatchPosition(epoch: state["epoch"].flatMap(Int.init) ?? 0, batch: state["batch"].flatMap(Int.init) ?? 0)
        prefetcher = nil
    }

    func runState() -> [String: String] {
        ["stage": "\(stage)", "epoch": "\(next.epoch)", "batch": "\(next.batch)"]
    }

    func nextBatch(step: Int) throws -> [TrainingExample] {
        let wanted = stageIndex(step: step)
        if wanted != stage {
            stage = wanted
            next = BatchPosition()
            prefetcher = nil
        }
        if let resident {
            var stream = BatchStream(sampler: data[stage].sampler, position: next)
            let items = stream.next().items
            next = stream.position
            position += 1
            return items.map { resident[stage][$0] }
        }
        if prefetcher == nil { prefetcher = startPrefetch() }
        let batch = try prefetcher!.next()
        next = batch.after
        position += 1
        return batch.examples
    }

    /// A prefetcher of the current stage's batches from `next` on.
    private func startPrefetch() -> Prefetcher<(after: BatchPosition, examples: [TrainingExample])> {
        let stageData = data[stage], posterior = self.posterior
        var stream = BatchStream(sampler: stageData.sampler, position: next)
        return Prefetcher(capacity: prefetchDepth) {
            let (_, items) = stream.next()
            let examples = try items.map { try Self.example(stageData.samples[$0].reader, stageData.samples[$0].index, posterior: posterior) }
            return (stream.position, examples)
        }
    }
}
