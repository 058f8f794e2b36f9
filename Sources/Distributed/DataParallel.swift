import Foundation
import Optim
import TensorCore

/// What each data-parallel rank keeps of the training state (ZeRO's stages).
public enum ShardingStage: String, Codable, Sendable, CaseIterable {
    /// Everything replicated; gradients all-reduced.
    case none
    /// ZeRO-1: the optimizer state (fp32 master weights, AdamW moments) and the EMA sharded; gradients reduce-scattered
    /// (each rank still holds the full gradient during backward), the updated weights all-gathered.
    case optimizer
    /// ZeRO-2: as `optimizer`, and the full gradients are dropped once reduce-scattered.
    case gradients
    /// ZeRO-3 / FSDP FULL_SHARD: the parameters sharded too.
    case full
    /// Full sharding inside a node, replication across nodes.
    case hybrid

    /// Whether the optimizer state lives in shards.
    public var shardsOptimizer: Bool { self != .none }
}

/// Data-parallel training state over a `ProcessGroup`: the trained parameters (full on every rank), and for the
/// sharded stages this rank's row shards of them (`RowSharding`), which the optimizer and the EMA update.
///
/// A step: backward leaves full gradients in `parameters` → `reduceGradients()` (stage `none`: an all-reduce, every
/// rank ends with the sum; sharded stages: a reduce-scatter into the shards' gradients) → `clip` by the global norm
/// (an all-reduce of one number when sharded) → the optimizer updates the shards → `gatherParameters()` all-gathers
/// the updated rows into every rank's full parameters. Each step's loss on a rank is its share of the global loss
/// (divided by the whole global batch's count), so gradients are summed, not averaged.
///
/// Collectives go in buckets of at most `bucketElements` elements, in parameter order, each packed so that every
/// rank's part is contiguous (what reduce-scatter and all-gather need). A gradient a rank did not produce (a
/// parameter its samples did not reach) counts as zeros, so every rank updates the same parameters.
///
/// Not yet: overlapping the reductions with backward (they start after it), and the `full` and `hybrid` stages
/// (parameters gathered per block), which need per-block hooks in the model.
public final class DataParallel {
    /// The data-parallel group.
    public let group: ProcessGroup
    /// The sharding stage.
    public let stage: ShardingStage
    /// The trained parameters, full on every rank.
    public let parameters: [(key: String, tensor: Tensor)]
    /// This rank's row shards of `parameters` (own storage), for the sharded stages; the parameters themselves for
    /// `none`.
    public let shards: [(key: String, tensor: Tensor)]
    /// Most elements per collective call.
    public let bucketElements: Int
    private let buckets: [Range<Int>]

    /// - Throws: `DistributedError.invalidArgument` for a stage not supported yet.
    public init(group: ProcessGroup, stage: ShardingStage, parameters: [(key: String, tensor: Tensor)], bucketElements: Int = 1 << 22) throws {
        guard stage != .full && stage != .hybrid else {
            throw DistributedError.invalidArgument(
                name: "sharding", rank: group.rank,
                reason: "'\(stage.rawValue)' is not supported yet: use none, optimizer or gradients")
        }
        precondition(parameters.allSatisfy { $0.tensor.dtype == .float32 }, "DataParallel: parameters must be float32")
        self.group = group
        self.stage = stage
        self.parameters = parameters
        self.bucketElements = bucketElements
        if stage.shardsOptimizer {
            shards = parameters.map { key, p in
                let shard = Tensor(uninitializedShape: RowSharding.shardShape(p.shape, rank: group.rank, of: group.size))
                RowSharding.copyRows(of: p, into: shard, rank: group.rank, of: group.size)
                shard.requiresGrad = true
                return (key, shard)
            }
        } else {
            shards = parameters
        }
        var buckets: [Range<Int>] = [], start = 0, elements = 0
        for (i, p) in parameters.enumerated() {
            if i > start && elements + p.tensor.count > bucketElements {
                buckets.append(start..<i)
                start = i
                elements = 0
            }
            elements += p.tensor.count
        }
        if start < parameters.count { buckets.append(start..<parameters.count) }
        self.buckets = buckets
    }

    /// Sums the gradients over the group: into every full gradient (`none`) or into this rank's shards' gradients.
    public func reduceGradients() throws {
        for bucket in buckets {
            let params = bucket.map { parameters[$0].tensor }
            if !stage.shardsOptimizer {
                var buffer = [Float](repeating: 0, count: params.reduce(0) { $0 + $1.count })
                var offset = 0
                for p in params {
                    if let g = p.grad { buffer.withUnsafeMutableBufferPointer { ($0.baseAddress! + offset).update(from: g.storage.pointer(as: Float.self), count: p.count) } }
                    offset += p.count
                }
                try buffer.withUnsafeMutableBufferPointer { try group.allReduce($0) }
                offset = 0
                for p in params {
                    let g = Tensor(uninitializedShape: p.shape)
                    buffer.withUnsafeBufferPointer { g.storage.pointer(as: Float.self).update(from: $0.baseAddress! + offset, count: p.count) }
                    p.grad = g
                    offset += p.count
                }
                continue
            }
            let (input, counts) = packByRank(params) { $0.grad }
            var own = [Float](repeating: 0, count: counts[group.rank])
            try input.withUnsafeBufferPointer { i in try own.withUnsafeMutableBufferPointer { try group.reduceScatter(i, counts: counts, into: $0) } }
            var offset = 0
            for index in bucket {
                let shard = shards[index].tensor
                let g = Tensor(uninitializedShape: shard.shape)
                if shard.count > 0 {
                    own.withUnsafeBufferPointer { g.storage.pointer(as: Float.self).update(from: $0.baseAddress! + offset, count: shard.count) }
                }
                shard.grad = g
                offset += shard.count
                if stage == .gradients { parameters[index].tensor.grad = nil }
            }
        }
    }

    /// Clips the reduced gradients by their global norm (as `GradientClipping.clipGlobalNorm` does in one process)
    /// and returns the norm before clipping; `maxNorm` 0 only measures it.
    public func clip(maxNorm: Double) throws -> Double {
        let tensors = shards.map(\.tensor)
        var squares = tensors.reduce(0.0) { total, p in total + (p.grad.map { GradientClipping.sumOfSquares($0) } ?? 0) }
        if stage.shardsOptimizer { squares = try group.allReduce([squares])[0] }
        let norm = squares.squareRoot()
        if maxNorm > 0 { GradientClipping.scale(tensors, by: maxNorm / (norm + 1e-6)) }
        return norm
    }

    /// Copies every rank's updated shards into the full parameters (nothing to do for `none`).
    public func gatherParameters() throws {
        guard stage.shardsOptimizer else { return }
        for bucket in buckets {
            try allGatherRows(bucket.map { shards[$0].tensor }, into: bucket.map { parameters[$0].tensor })
        }
    }

    /// Gathers full tensors from every rank's row shards of them (e.g. the EMA's shards for export); `shapes` are the
    /// full shapes, `shards` this rank's rows of each.
    public func gather(_ shards: [Tensor], shapes: [[Int]]) throws -> [Tensor] {
        let full = shapes.map { Tensor(uninitializedShape: $0) }
        try allGatherRows(shards.map { $0.to(.float32) }, into: full)
        return full
    }

    /// One all-gather: this rank's rows of each tensor (`shards`, float32) go out, and every rank's rows land in
    /// `full`.
    private func allGatherRows(_ shards: [Tensor], into full: [Tensor]) throws {
        let counts = (0..<group.size).map { rank in full.reduce(0) { $0 + RowSharding.elements($1.shape, rank: rank, of: group.size).count } }
        var own = [Float](), output = [Float](repeating: 0, count: counts.reduce(0, +))
        own.reserveCapacity(counts[group.rank])
        for s in shards { own.append(contentsOf: UnsafeBufferPointer(start: s.storage.pointer(as: Float.self), count: s.count)) }
        try own.withUnsafeBufferPointer { o in try output.withUnsafeMutableBufferPointer { try group.allGather(o, counts: counts, into: $0) } }
        var offset = 0
        for rank in 0..<group.size {
            for t in full {
                let range = RowSharding.elements(t.shape, rank: rank, of: group.size)
                if !range.isEmpty {
                    output.withUnsafeBufferPointer { (t.storage.pointer(as: Float.self) + range.lowerBound).update(from: $0.baseAddress! + offset, count: range.count) }
                }
                offset += range.count
            }
        }
        for t in full { t.storage.bumpVersion() }
    }

    /// The bucket's tensors (by `value`, zeros when nil) laid out rank by rank: rank 0's rows of each tensor, then
    /// rank 1's, …; with the element count of each rank's part.
    private func packByRank(_ params: [Tensor], value: (Tensor) -> Tensor?) -> ([Float], [Int]) {
        var out = [Float](), counts = [Int]()
        out.reserveCapacity(params.reduce(0) { $0 + $1.count })
        for rank in 0..<group.size {
            var count = 0
            for p in params {
                let range = RowSharding.elements(p.shape, rank: rank, of: group.size)
                if let v = value(p) {
                    out.append(contentsOf: UnsafeBufferPointer(start: v.storage.pointer(as: Float.self) + range.lowerBound, count: range.count))
                } else {
                    out.append(contentsOf: repeatElement(0, count: range.count))
                }
                count += range.count
            }
            counts.append(count)
        }
        return (out, counts)
    }
}
