import Foundation
import TensorCore

/// Batches by token budget (NaViT's Patch n' Pack): every step gets samples of mixed kinds, resolutions and lengths
/// whose tokens sum to at most `tokenBudget`, with no buckets and no padding.
///
/// An epoch is a deterministic function of (seed, epoch): each sample appears ⌊w⌋ times plus once more with
/// probability w − ⌊w⌋ (w its weight, 1 by default, so every sample exactly once), in an order shuffled by a
/// counter-based generator; the shuffled samples are packed first-fit into a few open batches (`openBatches`), and
/// the oldest open batch is emitted when none has room. First-fit over a small window fills batches better than
/// closing a batch at the first sample that does not fit (measured by `fill`), while the order stays random. A batch
/// is therefore named by (epoch, index) alone, so a resumed run sees the same batches, and a global batch can later be
/// cut into per-rank shares without changing it.
public struct PackingSampler: Sendable {
    /// One sample: its token count and sampling weight.
    public struct Item: Sendable, Equatable {
        /// Tokens the sample adds to a packed sequence.
        public var tokens: Int
        /// Expected appearances per epoch (1 by default).
        public var weight: Double
        /// An item.
        public init(tokens: Int, weight: Double = 1) {
            self.tokens = tokens
            self.weight = weight
        }
    }

    /// The samples, by index.
    public let items: [Item]
    /// Most tokens in one batch.
    public let tokenBudget: Int
    /// Seed of every epoch's repeats and order.
    public let seed: UInt64
    /// Batches kept open for first-fit packing.
    public let openBatches: Int

    /// A sampler over `items`.
    /// - Throws: `DatasetError.invalidOption` for a non-positive budget, an item larger than the budget (naming it),
    ///   a negative weight, or no item with a positive weight.
    public init(items: [Item], tokenBudget: Int, seed: UInt64, openBatches: Int = 8) throws {
        guard tokenBudget > 0 else { throw DatasetError.invalidOption(option: "tokenBudget", reason: "must be positive") }
        guard openBatches >= 1 else { throw DatasetError.invalidOption(option: "openBatches", reason: "must be positive") }
        for (i, item) in items.enumerated() {
            guard item.tokens > 0 else {
                throw DatasetError.invalidOption(option: "tokens", reason: "sample \(i) has \(item.tokens) tokens")
            }
            guard item.tokens <= tokenBudget else {
                throw DatasetError.invalidOption(
                    option: "tokenBudget",
                    reason: "sample \(i) has \(item.tokens) tokens, more than the budget of \(tokenBudget): raise the "
                        + "budget or lower the stage's resolution cap or frame count")
            }
            guard item.weight.isFinite, item.weight >= 0 else {
                throw DatasetError.invalidOption(option: "weight", reason: "sample \(i) has weight \(item.weight)")
            }
        }
        guard items.contains(where: { $0.weight > 0 }) else {
            throw DatasetError.invalidOption(option: "datasets", reason: "no sample with a positive weight")
        }
        self.items = items
        self.tokenBudget = tokenBudget
        self.seed = seed
        self.openBatches = openBatches
    }

    /// The batches of epoch `epoch`, each a list of item indices, in the order training takes them.
    public func batches(epoch: Int) -> [[Int]] {
        let random = RandomGenerator(seed: seed &+ 0xBA7C_4E5 &+ UInt64(epoch) &* 0x9E37_79B9_7F4A_7C15)
        var drawn: [Int] = []
        drawn.reserveCapacity(items.count)
        for (i, item) in items.enumerated() {
            let whole = Int(item.weight.rounded(.down))
            drawn.append(contentsOf: repeatElement(i, count: whole))
            let fraction = item.weight - Double(whole)
            if fraction > 0 && Double(random.nextUniform()) < fraction { drawn.append(i) }
        }
        for i in stride(from: drawn.count - 1, to: 0, by: -1) { drawn.swapAt(i, random.nextInt(below: i + 1)) }

        var done: [[Int]] = []
        var open: [(items: [Int], tokens: Int)] = []
        for i in drawn {
            let tokens = items[i].tokens
            if let slot = open.firstIndex(where: { $0.tokens + tokens <= tokenBudget }) {
                open[slot].items.append(i)
                open[slot].tokens += tokens
                continue
            }
            if open.count == openBatches { done.append(open.removeFirst().items) }
            open.append(([i], tokens))
        }
        done.append(contentsOf: open.map(\.items))
        return done
    }

    /// The share of the budget the batches of `epoch` fill on average, in (0, 1].
    public func fill(epoch: Int) -> Double {
        let batches = batches(epoch: epoch)
        let tokens = batches.reduce(0) { $0 + $1.reduce(0) { $0 + items[$1].tokens } }
        return Double(tokens) / Double(batches.count * tokenBudget)
    }
}

/// A position in a stream of packed batches: the epoch and the batch within it.
public struct BatchPosition: Codable, Equatable, Sendable {
    /// The epoch.
    public var epoch: Int
    /// The batch within the epoch.
    public var batch: Int
    /// A position.
    public init(epoch: Int = 0, batch: Int = 0) {
        self.epoch = epoch
        self.batch = batch
    }
}

/// Walks a `PackingSampler` epoch after epoch, keeping the current epoch's batches.
public struct BatchStream: Sendable {
    /// The sampler.
    public let sampler: PackingSampler
    /// The next batch's position.
    public private(set) var position: BatchPosition
    private var epochBatches: (epoch: Int, batches: [[Int]])?

    /// A stream starting at `position`.
    public init(sampler: PackingSampler, position: BatchPosition = BatchPosition()) {
        self.sampler = sampler
        self.position = position
    }

    /// The batch at the current position and the position after it; advances.
    public mutating func next() -> (position: BatchPosition, items: [Int]) {
        while true {
            if epochBatches?.epoch != position.epoch {
                epochBatches = (position.epoch, sampler.batches(epoch: position.epoch))
            }
            let batches = epochBatches!.batches
            if position.batch < batches.count {
                let here = position
                position.batch += 1
                return (here, batches[here.batch])
            }
            position = BatchPosition(epoch: position.epoch + 1, batch: 0)
        }
    }
}

/// How a global packed batch is cut among data-parallel ranks: by tokens, so that each rank's forward and backward
/// take about the same time. Samples go, largest first (ties by position), to the rank with the fewest tokens so far
/// (ties to the lower rank); each rank keeps its samples in batch order. A function of the token counts alone, so
/// every rank computes the same cut without talking to the others, and the ranks together cover the batch exactly
/// once. A rank may get no sample when the batch has fewer samples than ranks.
public enum BatchShare {
    /// The positions in the batch of each rank's samples.
    public static func cut(tokens: [Int], ranks: Int) -> [[Int]] {
        precondition(ranks >= 1, "BatchShare: ranks must be positive")
        var load = [Int](repeating: 0, count: ranks), shares = [[Int]](repeating: [], count: ranks)
        let order = tokens.indices.sorted { tokens[$0] != tokens[$1] ? tokens[$0] > tokens[$1] : $0 < $1 }
        for i in order {
            let rank = load.indices.min { load[$0] != load[$1] ? load[$0] < load[$1] : $0 < $1 }!
            load[rank] += tokens[i]
            shares[rank].append(i)
        }
        return shares.map { $0.sorted() }
    }
}
