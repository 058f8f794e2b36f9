/// One way to run a training step on a cluster: how many ranks, how a sequence is split over them (Ulysses sequence
/// parallelism), how the state is sharded, and whether blocks are recomputed in backward.
///
/// The ranks form DP = ranks / P data-parallel groups of P sequence-parallel ranks; each group trains one packed
/// sequence of `tokens` tokens per step, every rank holding L/P of them. Gradients and sharded state go over all
/// `ranks` (a sequence-parallel rank sees other tokens, so its gradient differs from its neighbours').
public struct ParallelPlan: Codable, Equatable, Sendable {
    /// W, processes (GPUs) in the job.
    public var ranks: Int
    /// P, the Ulysses degree: ranks that share one packed sequence (1: none). Must divide `ranks` and the heads.
    public var sequenceParallel: Int
    /// How parameters, gradients and optimizer state are split.
    public var sharding: ShardingStage
    /// Ranks in one FULL_SHARD group under `.hybrid` (the GPUs of a node, 8); ignored by the other stages.
    public var ranksPerNode: Int
    /// Recompute each block in backward, keeping only its input (as `GokuTransformer.activationCheckpointing`).
    public var activationCheckpointing: Bool
    /// L, tokens of the packed sequence one sequence-parallel group trains per step (a data-parallel rank's step).
    public var tokens: Int
    /// B, bytes of a parameter, gradient and activation element (4: fp32, as the trainer keeps them). Optimizer
    /// state and EMA are fp32 whatever B is.
    public var bytesPerElement: Int

    /// A plan; unspecified fields are plain data parallelism in fp32 without checkpointing.
    public init(
        ranks: Int, sequenceParallel: Int = 1, sharding: ShardingStage = .none, ranksPerNode: Int = 8,
        activationCheckpointing: Bool = false, tokens: Int, bytesPerElement: Int = 4
    ) {
        self.ranks = ranks
        self.sequenceParallel = sequenceParallel
        self.sharding = sharding
        self.ranksPerNode = ranksPerNode
        self.activationCheckpointing = activationCheckpointing
        self.tokens = tokens
        self.bytesPerElement = bytesPerElement
    }

    /// DP, the number of sequence-parallel groups, each training its own packed sequence.
    public var dataParallel: Int { ranks / sequenceParallel }

    /// Tokens each rank holds between attentions, ⌈L/P⌉ (a sequence that does not divide is padded, as Ulysses does).
    public var tokensPerRank: Int { (tokens + sequenceParallel - 1) / sequenceParallel }

    /// Ranks the sharded state is split over: 1 without sharding, W for ZeRO-1/2 and FULL_SHARD, a node's ranks for
    /// HYBRID_SHARD.
    public var shardGroupSize: Int {
        switch sharding {
        case .none: 1
        case .optimizer, .gradients, .full: ranks
        case .hybrid: ranksPerNode
        }
    }

    /// Checks the plan against itself and the model, naming the first bad field.
    /// - Throws: `CostModelError.invalidPlan`.
    public func validate(for model: ModelShape) throws {
        func check(_ ok: Bool, _ field: String, _ reason: @autoclosure () -> String) throws {
            if !ok { throw CostModelError.invalidPlan(field: field, reason: reason()) }
        }
        try check(ranks > 0, "ranks", "must be positive, got \(ranks)")
        try check(sequenceParallel > 0, "sequenceParallel", "must be positive, got \(sequenceParallel)")
        try check(tokens > 0, "tokens", "must be positive, got \(tokens)")
        try check(bytesPerElement > 0, "bytesPerElement", "must be positive, got \(bytesPerElement)")
        try check(
            ranks % sequenceParallel == 0, "sequenceParallel",
            "\(ranks) ranks do not divide into sequence-parallel groups of \(sequenceParallel)")
        try check(
            model.headCount % sequenceParallel == 0, "sequenceParallel",
            "Ulysses splits the heads over the group, but \(model.headCount) heads do not divide by \(sequenceParallel)"
        )
        if sharding == .hybrid {
            try check(ranksPerNode > 0, "ranksPerNode", "must be positive, got \(ranksPerNode)")
            try check(
                ranks % ranksPerNode == 0, "ranksPerNode",
                "\(ranks) ranks do not divide into nodes of \(ranksPerNode) for hybrid sharding")
        }
    }
}

/// A model shape or plan the cost model cannot use.
public enum CostModelError: Error, Equatable, CustomStringConvertible {
    /// A `ModelShape` field out of range.
    case invalidModel(field: String, reason: String)
    /// A `ParallelPlan` field out of range or inconsistent with the model.
    case invalidPlan(field: String, reason: String)

    /// "ParallelPlan.sequenceParallel: 12 ranks do not divide into sequence-parallel groups of 8".
    public var description: String {
        switch self {
        case let .invalidModel(field, reason): "ModelShape.\(field): \(reason)"
        case let .invalidPlan(field, reason): "ParallelPlan.\(field): \(reason)"
        }
    }
}
