/// What `CostModel.estimate` predicts for one rank and one training step: memory by part, and the collectives with
/// their payload (what `ProcessGroup.traffic` counts) and ring wire bytes.
public struct CostEstimate: Codable, Equatable, Sendable {
    /// Bytes one rank holds at the peak of a step, by part.
    public struct Memory: Codable, Equatable, Sendable {
        /// Parameters at rest: all of them, or this rank's shard under FULL_SHARD and HYBRID_SHARD.
        public var parameters: Int
        /// FULL_SHARD's gathered working set: one block's parameters plus the non-block ones (0 for other stages).
        public var gatheredParameters: Int
        /// Gradients: all of them (none, ZeRO-1), or this rank's shard.
        public var gradients: Int
        /// AdamW state in fp32: master weights and the two moments, 12 bytes a parameter, sharded from ZeRO-1 on.
        public var optimizerState: Int
        /// The EMA weights in fp32, 4 bytes a parameter, sharded like the optimizer state.
        public var ema: Int
        /// Activations kept for backward when every block keeps its saved tensors.
        public var activationsWithoutCheckpointing: Int
        /// Activations kept with activation checkpointing: each block's input, and one block's saved tensors while it
        /// is recomputed.
        public var activationsWithCheckpointing: Int
        /// The activations of the plan's choice.
        public var activations: Int

        /// The sum of the parts, with the plan's activations.
        public var total: Int { parameters + gatheredParameters + gradients + optimizerState + ema + activations }
    }

    /// One kind of collective call in a step: the same collective over the same group for the same purpose.
    public struct Transfer: Codable, Equatable, Sendable {
        /// The collective.
        public var collective: Collective
        /// What it moves ("gradients", "parameters (forward and backward)", "q, k, v, attention output", …).
        public var purpose: String
        /// n, ranks in its group.
        public var groupSize: Int
        /// Calls per step (buckets and per-block calls counted as the work they do: one for a whole-model transfer).
        public var calls: Int
        /// Bytes this rank contributes per step, summed over `calls`, as `ProcessGroup.traffic` counts them.
        public var payloadBytes: Int

        /// Bytes a ring algorithm puts on this rank's link: all-reduce 2(n−1)/n·payload (reduce-scatter then
        /// all-gather), reduce-scatter and all-gather (n−1)/n·payload, all-to-all the payload itself (it already
        /// counts only what goes to other ranks), broadcast the payload.
        public var wireBytes: Double {
            let n = Double(groupSize), payload = Double(payloadBytes)
            switch collective {
            case .allReduce: return 2 * (n - 1) / n * payload
            case .reduceScatter, .allGather: return (n - 1) / n * payload
            case .allToAll, .broadcast: return payload
            case .barrier: return 0
            }
        }

        /// Seconds on the wire at `bandwidth` bytes per second (no latency, no overlap with compute).
        public func seconds(bandwidth: Double) -> Double { wireBytes / bandwidth }
    }

    /// The plan's data-parallel degree, ranks / P.
    public var dataParallel: Int
    /// Tokens each rank holds between attentions, ⌈L/P⌉.
    public var tokensPerRank: Int
    /// Tokens trained per step by the whole job, DP·L.
    public var tokensPerStep: Int
    /// Memory per rank.
    public var memory: Memory
    /// The collectives of one step, in the order the step issues them.
    public var transfers: [Transfer]

    /// Payload bytes per step by collective: the quantity `ProcessGroup.traffic` accumulates over one step.
    public var payloadBytes: [Collective: Int] {
        transfers.reduce(into: [:]) { $0[$1.collective, default: 0] += $1.payloadBytes }
    }

    /// Ring wire bytes per step by collective.
    public var wireBytes: [Collective: Double] {
        transfers.reduce(into: [:]) { $0[$1.collective, default: 0] += $1.wireBytes }
    }

    /// Estimated seconds of communication per step at `bandwidth` bytes per second per rank, summed over every
    /// collective: an upper bound where the step overlaps communication with compute, as FSDP does.
    public func communicationSeconds(bandwidth: Double) -> Double {
        transfers.reduce(0) { $0 + $1.seconds(bandwidth: bandwidth) }
    }
}

/// Lets `[Collective: …]` encode as a JSON object keyed by the collective's name.
extension Collective: CodingKeyRepresentable {}
