import XCTest

import Distributed
import GokuModel
import GokuPipeline
import TensorCore

/// `CostModel` against byte counts worked out by hand for a tiny shape, and its activation count against the tensors
/// a real `GokuBlock` keeps.
final class CostModelTests: XCTestCase {
    /// P_t = 1000 (4 blocks of 200, 200 outside), D 8, 2 heads, F 32, 3 text tokens of width 6.
    let model = ModelShape(
        parameterCount: 1000, blockParameterCount: 200, depth: 4, hiddenSize: 8, headCount: 2, ffnDimension: 32,
        textTokens: 3, textDimension: 6)

    func estimate(_ sharding: ShardingStage, ranks: Int = 4, p: Int = 1, perNode: Int = 8, checkpointing: Bool = false)
        throws -> CostEstimate
    {
        try CostModel.estimate(
            model: model,
            plan: ParallelPlan(
                ranks: ranks, sequenceParallel: p, sharding: sharding, ranksPerNode: perNode,
                activationCheckpointing: checkpointing, tokens: 16))
    }

    // MARK: Communication

    /// DDP: the 4000-byte gradient all-reduce and the 32-byte metrics one; ring wire 2·(3/4) of each.
    func testNoShardingAllReducesTheGradients() throws {
        let e = try estimate(.none)
        XCTAssertEqual(e.payloadBytes, [.allReduce: 4032])
        XCTAssertEqual(e.wireBytes[.allReduce]!, 6048, accuracy: 1e-9)
        XCTAssertEqual(e.communicationSeconds(bandwidth: 6048), 1, accuracy: 1e-12)
    }

    /// ZeRO-1 and ZeRO-2 move the same bytes: reduce-scatter 4000, norm 8 + metrics 32, all-gather 4000.
    func testZeROStagesReduceScatterAndGather() throws {
        for stage in [ShardingStage.optimizer, .gradients] {
            let e = try estimate(stage)
            XCTAssertEqual(e.payloadBytes, [.reduceScatter: 4000, .allReduce: 40, .allGather: 4000], "\(stage)")
            XCTAssertEqual(e.wireBytes[.reduceScatter]!, 3000, accuracy: 1e-9)
            XCTAssertEqual(e.wireBytes[.allGather]!, 3000, accuracy: 1e-9)
            XCTAssertEqual(e.wireBytes[.allReduce]!, 60, accuracy: 1e-9)
        }
    }

    /// FULL_SHARD gathers the parameters twice (forward, backward).
    func testFullShardingGathersTwice() throws {
        let e = try estimate(.full)
        XCTAssertEqual(e.payloadBytes, [.allGather: 8000, .reduceScatter: 4000, .allReduce: 40])
        XCTAssertEqual(e.transfers.first { $0.collective == .allGather }?.calls, 2)
    }

    /// HYBRID_SHARD on 8 ranks in nodes of 4: the FULL_SHARD traffic over 4, the 1000-byte gradient shard all-reduced
    /// over the 2 nodes, the norm over the node, the metrics over all 8.
    func testHybridShardingAddsTheCrossNodeAllReduce() throws {
        let e = try estimate(.hybrid, ranks: 8, perNode: 4)
        XCTAssertEqual(e.payloadBytes, [.allGather: 8000, .reduceScatter: 4000, .allReduce: 1000 + 8 + 32])
        let crossNode = try XCTUnwrap(e.transfers.first { $0.purpose.contains("across nodes") })
        XCTAssertEqual(crossNode.groupSize, 2)
        // 2·(1/2)·1000 + 2·(3/4)·8 + 2·(7/8)·32
        XCTAssertEqual(e.wireBytes[.allReduce]!, 1000 + 12 + 56, accuracy: 1e-9)
        XCTAssertEqual(e.wireBytes[.allGather]!, 6000, accuracy: 1e-9)
    }

    /// Ulysses with P = 2: l = 8 tokens a rank, each all-to-all sends 8·(8/2) elements to the one other rank, 128
    /// bytes; 8 a block (4 forward, 4 backward), 12 with checkpointing's second forward, over 4 blocks.
    func testSequenceParallelAllToAlls() throws {
        let e = try estimate(.none, p: 2)
        XCTAssertEqual(e.dataParallel, 2)
        XCTAssertEqual(e.tokensPerRank, 8)
        XCTAssertEqual(e.tokensPerStep, 32)
        XCTAssertEqual(e.payloadBytes, [.allToAll: 4 * 8 * 128, .allReduce: 4032])
        XCTAssertEqual(e.wireBytes[.allToAll]!, 4096, accuracy: 1e-9)
        let checkpointed = try estimate(.none, p: 2, checkpointing: true)
        XCTAssertEqual(checkpointed.payloadBytes[.allToAll], 4 * 12 * 128)
        XCTAssertEqual(checkpointed.transfers.first { $0.collective == .allToAll }?.calls, 48)
    }

    /// One rank issues no collective at all.
    func testOneRankMovesNothing() throws {
        XCTAssertTrue(try estimate(.full, ranks: 1).transfers.isEmpty)
    }

    // MARK: Memory

    /// What each stage keeps per rank, W = 4, B = 4.
    func testMemorySharding() throws {
        let none = try estimate(.none).memory
        XCTAssertEqual(
            [none.parameters, none.gatheredParameters, none.gradients, none.optimizerState, none.ema],
            [4000, 0, 4000, 8000, 4000])
        let zero1 = try estimate(.optimizer).memory
        XCTAssertEqual([zero1.parameters, zero1.gradients, zero1.optimizerState, zero1.ema], [4000, 4000, 3000, 1000])
        // ZeRO-2: optimizer state 12·P_t/W, gradients B·P_t/W.
        let zero2 = try estimate(.gradients).memory
        XCTAssertEqual(zero2.optimizerState, 12 * 1000 / 4)
        XCTAssertEqual([zero2.parameters, zero2.gradients, zero2.ema], [4000, 1000, 1000])
        // FULL_SHARD: a 1/W shard at rest plus one block and the 200 non-block parameters gathered.
        let full = try estimate(.full).memory
        XCTAssertEqual(
            [full.parameters, full.gatheredParameters, full.gradients, full.optimizerState, full.ema],
            [1000, 1600, 1000, 3000, 1000])
        // HYBRID_SHARD shards by the node (4), not by W (16).
        let hybrid = try estimate(.hybrid, ranks: 16, perNode: 4).memory
        XCTAssertEqual(
            [hybrid.parameters, hybrid.gradients, hybrid.optimizerState, hybrid.ema], [1000, 1000, 3000, 1000])
        XCTAssertEqual(
            hybrid.total,
            hybrid.parameters + hybrid.gatheredParameters + hybrid.gradients + hybrid.optimizerState + hybrid.ema
                + hybrid.activations)
    }

    /// The activation formula on the tiny shape, worked by hand (l = 16, D 8, F 32, Nh 2, Lt 3, Dc 6, Dh 4):
    /// a block keeps 22·l·D + 3·l·F + 2·l·Nh + 12·l + 3·Lt·D + 2·Lt = 2816 + 1536 + 64 + 192 + 72 + 6 = 4686 elements;
    /// outside the blocks Lt·Dc + 2·l·Dh + 2·l·D + 2·l = 18 + 128 + 256 + 32 = 434.
    func testActivationsByHand() throws {
        XCTAssertEqual(CostModel.blockActivationElements(model, tokens: 16, sequenceParallel: 1), 4686)
        let e = try estimate(.none).memory
        XCTAssertEqual(e.activationsWithoutCheckpointing, (4 * 4686 + 434) * 4)
        // Checkpointed: 4 block inputs (l·D = 128 each) and one block recomputed, less its input.
        XCTAssertEqual(e.activationsWithCheckpointing, (4 * 128 + 4686 - 128 + 434) * 4)
        XCTAssertEqual(e.activations, e.activationsWithoutCheckpointing)
        XCTAssertEqual(try estimate(.none, checkpointing: true).memory.activations, e.activationsWithCheckpointing)
        // P = 2: l = 8, and the all-to-alls' 4 head-sharded copies: 26·8·8 + 3·8·32 + 2·8·2 + 12·8 + 78.
        XCTAssertEqual(CostModel.blockActivationElements(model, tokens: 8, sequenceParallel: 2), 2638)
    }

    /// The token-wide coefficients (22·D + 3·F a token, and the RoPE tables' 2·Dh outside the block) against what a
    /// real tiny `GokuBlock` keeps: the distinct storages reachable from its output through the recorded graph,
    /// parameters excluded, at two sequence lengths with the same text and samples so that only the per-token part
    /// differs. Row statistics and logsumexps live in the gradient rules' closures, out of the graph's sight.
    func testTokenWideActivationsMatchAGokuBlock() throws {
        let config = GokuConfig.tiny
        let block = GokuBlock(config, generator: RandomGenerator(seed: 1))
        let parameters = Set(block.namedParameters().map { ObjectIdentifier($0.tensor.storage) })
        func keptElements(frames: Int) throws -> Int {
            let g = RandomGenerator(seed: 2)
            let sample = GokuSample(
                latent: Tensor.randn([config.inChannels, frames, 4, 4], generator: g), timestep: 0.5,
                text: Tensor.randn([3, config.textDimension], generator: g))
            let batch = try PackedBatch(samples: [sample], config: config)
            let x = Tensor.randn([1, batch.layout.tokenCount, config.hiddenSize], generator: g)
            x.requiresGrad = true
            let c = Tensor.randn([1, config.hiddenSize], generator: g)
            let out = block(x, conditioning: c, batch: batch)
            var seen = Set<ObjectIdentifier>(), visited = Set<ObjectIdentifier>(), stack = [out], total = 0
            while let t = stack.popLast() {
                guard visited.insert(ObjectIdentifier(t)).inserted else { continue }
                let storage = ObjectIdentifier(t.storage)
                if t !== out, !parameters.contains(storage), seen.insert(storage).inserted { total += t.count }
                stack += t.gradNode?.inputs ?? []
            }
            return total
        }
        let tokensPerFrame = 4  // a 4×4 latent in 2×2 patches
        let perToken = (try keptElements(frames: 3) - keptElements(frames: 1)) / (2 * tokensPerFrame)
        let d = config.hiddenSize, headDimension = config.headDimension
        XCTAssertEqual(perToken, 22 * d + 3 * config.ffnDimension + 2 * headDimension)
    }

    // MARK: Errors and the Goku presets

    /// Plans that cannot run are refused, naming the field.
    func testBadPlansAreRefused() {
        func refusal(_ plan: ParallelPlan, _ shape: ModelShape? = nil) -> CostModelError? {
            do {
                _ = try CostModel.estimate(model: shape ?? model, plan: plan)
                return nil
            } catch { return error as? CostModelError }
        }
        XCTAssertEqual(refusal(ParallelPlan(ranks: 0, tokens: 16))?.field, "ranks")
        XCTAssertEqual(refusal(ParallelPlan(ranks: 6, sequenceParallel: 4, tokens: 16))?.field, "sequenceParallel")
        // 2 heads do not split over 4 ranks.
        let heads = refusal(ParallelPlan(ranks: 8, sequenceParallel: 4, tokens: 16))
        XCTAssertEqual(heads?.field, "sequenceParallel")
        XCTAssertTrue(heads?.description.contains("2 heads") ?? false, "\(String(describing: heads))")
        XCTAssertEqual(
            refusal(ParallelPlan(ranks: 12, sharding: .hybrid, ranksPerNode: 8, tokens: 16))?.field, "ranksPerNode")
        XCTAssertEqual(refusal(ParallelPlan(ranks: 4, tokens: 0))?.field, "tokens")
        XCTAssertEqual(refusal(ParallelPlan(ranks: 4, tokens: 16, bytesPerElement: 0))?.field, "bytesPerElement")
        var shape = model
        shape.blockParameterCount = 300
        XCTAssertEqual(
            refusal(ParallelPlan(ranks: 4, tokens: 16), shape),
            .invalidModel(
                field: "blockParameterCount", reason: "4 blocks of 300 exceed the 1000 parameters of the model"))
        // Hybrid's node size only matters to hybrid.
        XCTAssertNil(refusal(ParallelPlan(ranks: 12, sharding: .full, ranksPerNode: 8, tokens: 16)))
    }

    /// A shape built from a preset carries the preset's parameter counts, and the per-block count is a real block's.
    func testShapeFromGokuConfig() throws {
        for (name, config) in GokuConfig.presets {
            let shape = ModelShape(config, textTokens: 128)
            XCTAssertEqual(shape.parameterCount, config.parameterCount, name)
            XCTAssertEqual(shape.depth, config.depth, name)
            XCTAssertEqual(shape.ffnDimension, 4 * config.hiddenSize, name)
            XCTAssertNoThrow(try shape.validate(), name)
        }
        let tiny = GokuConfig.tiny
        XCTAssertEqual(
            ModelShape(tiny, textTokens: 3).blockParameterCount,
            GokuBlock(tiny, generator: RandomGenerator(seed: 0)).parameterCount)
        XCTAssertEqual(GokuTransformer(tiny).parameterCount, tiny.parameterCount)
    }
}

extension CostModelError {
    /// The field named, for the tests.
    var field: String {
        switch self {
        case let .invalidModel(field, _), let .invalidPlan(field, _): field
        }
    }
}
