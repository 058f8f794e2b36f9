import Foundation
import TensorCore

/// Everything besides tensors that a training run needs to continue exactly where it stopped.
///
/// Saved as `state.json` in each checkpoint, and written last: a checkpoint folder is complete when it has one.
public struct TrainingState: Codable, Equatable, Sendable {
    /// Optimizer steps taken.
    public var step: Int
    /// The training random generator's seed and offset (Philox: the pair fixes every later draw).
    public var randomSeed: UInt64
    /// See `randomSeed`.
    public var randomOffset: UInt64
    /// How far the data stream has gone (samples or batches consumed; the data loader defines it).
    public var dataPosition: Int
    /// Wall-clock seconds spent training before this checkpoint, summed over resumed runs.
    public var trainingSeconds: Double
    /// Free-form values a trainer wants back (e.g. the config's name); not interpreted here.
    public var extra: [String: String]

    /// A state at `step` with the generator's current position.
    public init(
        step: Int, generator: RandomGenerator, dataPosition: Int, trainingSeconds: Double = 0,
        extra: [String: String] = [:]
    ) {
        self.step = step
        (randomSeed, randomOffset) = generator.state
        self.dataPosition = dataPosition
        self.trainingSeconds = trainingSeconds
        self.extra = extra
    }

    /// A generator positioned where the saved one was.
    public func makeGenerator() -> RandomGenerator { RandomGenerator(seed: randomSeed, offset: randomOffset) }
}
