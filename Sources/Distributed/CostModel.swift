/// Per-rank memory and per-step communication of a distributed training run, from the model's sizes and the plan,
/// without running anything (`goku plan`).
///
/// Notation: W ranks, P sequence-parallel degree, DP = W/P, S the shard group (1, W, or a node's ranks; see
/// `ParallelPlan.shardGroupSize`), P_t trained parameter elements, P_b one block's, B bytes an element, L the packed
/// sequence of one SP group, l = ⌈L/P⌉ a rank's tokens, D width, F the FFN width, Nh heads, Lt text tokens, Dc the text
/// width, ⌈x/S⌉ a rank's shard (the largest one when x does not divide).
///
/// **Memory per rank.**
/// - parameters: P_t·B, or ⌈P_t/S⌉·B at rest under FULL_SHARD / HYBRID_SHARD, which also hold one block and the
///   non-block parameters gathered, (P_b + P_t − depth·P_b)·B, since blocks are gathered one at a time;
/// - gradients: P_t·B (none, ZeRO-1), ⌈P_t/S⌉·B (ZeRO-2, FULL_SHARD, HYBRID_SHARD);
/// - optimizer state: AdamW's two fp32 moments, 8·P_t bytes without sharding (the fp32 parameters are their own
///   master weights), or 12·⌈P_t/S⌉ bytes sharded: the rank's fp32 master shard and its moments (`DataParallel`);
/// - EMA: 4·⌈P_t/S⌉ bytes;
/// - activations: `activationElements`, times B.
///
/// Left out: transient buffers (a block's unsharded gradient before its reduce-scatter, bucket and all-to-all
/// buffers, the gradient of the activations in flight), the frozen VAE and text encoder, allocator fragmentation and
/// the framework's own memory.
///
/// **Communication per step** (payload bytes per rank, as `ProcessGroup.traffic` counts them, in the order the step
/// issues them; a collective over a group of one rank is not issued):
/// - P > 1 (Ulysses): per block, 4 all-to-alls in forward (q, k, v before self-attention, its output after), 4 in
///   backward, 4 more with activation checkpointing (the recomputed forward); each sends l·(D/P) elements to each of
///   the P − 1 other ranks: l·D·B·(P − 1)/P bytes;
/// - none: all-reduce of the gradients over W, P_t·B (bucketing changes calls, not bytes);
/// - ZeRO-1/2: reduce-scatter of the gradients P_t·B, all-reduce of the squared gradient norm (one Double, 8 bytes),
///   all-gather of the updated parameters P_t·B;
/// - FULL_SHARD: all-gather of the parameters before forward and again before backward, 2·P_t·B; reduce-scatter of
///   the gradients P_t·B; the 8-byte norm all-reduce;
/// - HYBRID_SHARD: the same over a node's ranks, then an all-reduce of the gradient shard across the nodes (group
///   W/ranksPerNode), ⌈P_t/ranksPerNode⌉·B;
/// - W > 1: one all-reduce of the step's 4 metrics as Doubles, 32 bytes.
public enum CostModel {
    /// Predicts memory and communication of `plan` for `model`.
    /// - Throws: `CostModelError` naming the bad field of either.
    public static func estimate(model: ModelShape, plan: ParallelPlan) throws -> CostEstimate {
        try model.validate()
        try plan.validate(for: model)
        return CostEstimate(
            dataParallel: plan.dataParallel, tokensPerRank: plan.tokensPerRank,
            tokensPerStep: plan.dataParallel * plan.tokens,
            memory: memory(model: model, plan: plan), transfers: transfers(model: model, plan: plan))
    }

    // MARK: Memory

    /// Bytes per rank by part (see the type's notes).
    static func memory(model: ModelShape, plan: ParallelPlan) -> CostEstimate.Memory {
        let b = plan.bytesPerElement, pt = model.parameterCount
        let shard = ceilDiv(pt, plan.shardGroupSize)
        let shardsParameters = plan.sharding == .full || plan.sharding == .hybrid
        let shardsGradients = plan.sharding != .none && plan.sharding != .optimizer
        let l = plan.tokensPerRank, p = plan.sequenceParallel
        let without = activationElements(model, tokens: l, sequenceParallel: p, checkpointing: false) * b
        let with = activationElements(model, tokens: l, sequenceParallel: p, checkpointing: true) * b
        return CostEstimate.Memory(
            parameters: (shardsParameters ? shard : pt) * b,
            gatheredParameters: shardsParameters ? (model.blockParameterCount + model.nonBlockParameterCount) * b : 0,
            gradients: (shardsGradients ? shard : pt) * b,
            optimizerState: plan.sharding == .none ? 8 * pt : 12 * shard,
            ema: 4 * shard,
            activationsWithoutCheckpointing: without,
            activationsWithCheckpointing: with,
            activations: plan.activationCheckpointing ? with : without)
    }

    /// Activation elements one rank keeps for backward.
    ///
    /// The engine keeps every input of every recorded op until backward (`GradNode.inputs`), plus the row statistics
    /// and attention logsumexps the rules close over, so the count follows the ops of `GokuBlock` (fused adaLN path)
    /// on l tokens, with n = 1 for QK-norm and r = 1 for rotated cross-attention queries (both 1 in every preset):
    /// - token-wide, (18 + 3n + r)·l·D: the block input; self-attention's modulated LayerNorm output, q and k as
    ///   projected, normalised (n) and rotated, v, the attention output and the output projection (the gated branch);
    ///   the residual after it, its RMSNorm, the cross-attention's q as projected, normalised (n) and rotated (r), its
    ///   attention output and output projection (the residual add keeps it); the residual after that, the modulated
    ///   RMSNorm, fc2's product before its bias and after it (the gated branch). With P > 1, 4·l·D more: the
    ///   all-to-alls' head-sharded q, k, v and attention output are kept beside the sequence-sharded ones they came
    ///   from or go to;
    /// - FFN-wide, 3·l·F: fc1's product before its bias, after it (GELU's input), and GELU's output (fc2's input);
    /// - 2·l·Nh attention logsumexps (fp32, counted at B), (6 + 6n)·l norm means and inverse deviations;
    /// - the text keys as projected and normalised (n) and the values, (2 + n)·Lt·D, with 2n·Lt norm statistics: the
    ///   text is not sequence-sharded, every rank keeps it whole.
    ///
    /// Per-sample tensors (adaLN modulation, timestep embedding) and those a few channels wide (patch input, velocity
    /// output) are left out. Outside the blocks: the text states Lt·Dc and the RoPE cos and sin tables 2·l·Dh, which
    /// every block reads, and the final layer's input and modulated LayerNorm (2·l·D + 2·l). Without checkpointing:
    /// depth blocks. With checkpointing: each block keeps only its input (l·D), and one block at a time is recomputed
    /// in backward, which adds its saved set less its input.
    /// - Parameters:
    ///   - tokens: l, the rank's tokens.
    ///   - sequenceParallel: P.
    ///   - checkpointing: activation checkpointing per block.
    public static func activationElements(
        _ model: ModelShape, tokens l: Int, sequenceParallel: Int, checkpointing: Bool
    ) -> Int {
        let block = blockActivationElements(model, tokens: l, sequenceParallel: sequenceParallel)
        let d = model.hiddenSize
        let ropeTables = 2 * l * (d / model.headCount)
        let outside = model.textTokens * model.textDimension + ropeTables + 2 * l * d + 2 * l
        let blocks = checkpointing ? model.depth * l * d + (block - l * d) : model.depth * block
        return blocks + outside
    }

    /// Elements one block keeps for backward on l tokens (see `activationElements`).
    public static func blockActivationElements(_ model: ModelShape, tokens l: Int, sequenceParallel: Int) -> Int {
        let n = model.qkNorm ? 1 : 0, r = model.crossAttentionQueryRoPE ? 1 : 0
        let d = model.hiddenSize, lt = model.textTokens
        let tokenWide = 18 + 3 * n + r + (sequenceParallel > 1 ? 4 : 0)
        return tokenWide * l * d + 3 * l * model.ffnDimension + 2 * l * model.headCount + (6 + 6 * n) * l
            + (2 + n) * lt * d + 2 * n * lt
    }

    // MARK: Communication

    /// The collectives of one step (see the type's notes).
    static func transfers(model: ModelShape, plan: ParallelPlan) -> [CostEstimate.Transfer] {
        let w = plan.ranks, b = plan.bytesPerElement, gradientBytes = model.parameterCount * b
        var out: [CostEstimate.Transfer] = []
        func add(_ collective: Collective, _ purpose: String, group: Int, calls: Int, bytes: Int) {
            guard group > 1 else { return }
            out.append(
                .init(collective: collective, purpose: purpose, groupSize: group, calls: calls, payloadBytes: bytes))
        }
        let p = plan.sequenceParallel
        if p > 1 {
            let perCall = plan.tokensPerRank * (model.hiddenSize / p) * (p - 1) * b
            let perBlock = plan.activationCheckpointing ? 12 : 8
            add(
                .allToAll, "q, k, v and attention output (Ulysses)", group: p, calls: model.depth * perBlock,
                bytes: model.depth * perBlock * perCall)
        }
        switch plan.sharding {
        case .none:
            add(.allReduce, "gradients", group: w, calls: 1, bytes: gradientBytes)
        case .optimizer, .gradients:
            add(.reduceScatter, "gradients", group: w, calls: 1, bytes: gradientBytes)
            add(.allReduce, "gradient norm", group: w, calls: 1, bytes: 8)
            add(.allGather, "updated parameters", group: w, calls: 1, bytes: gradientBytes)
        case .full, .hybrid:
            let group = plan.shardGroupSize
            add(.allGather, "parameters (forward, backward)", group: group, calls: 2, bytes: 2 * gradientBytes)
            add(.reduceScatter, "gradients", group: group, calls: 1, bytes: gradientBytes)
            if plan.sharding == .hybrid {
                add(
                    .allReduce, "gradient shard across nodes", group: w / group, calls: 1,
                    bytes: ceilDiv(model.parameterCount, group) * b)
            }
            add(.allReduce, "gradient norm", group: group, calls: 1, bytes: 8)
        }
        add(.allReduce, "step metrics", group: w, calls: 1, bytes: 4 * 8)
        return out
    }

    /// ⌈a/b⌉ for positive b.
    static func ceilDiv(_ a: Int, _ b: Int) -> Int { (a + b - 1) / b }
}
