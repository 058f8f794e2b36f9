import ArgumentParser
import Foundation
import GokuModel
import TensorCore

/// `goku bench model`: the Goku Transformer's forward and backward.
///
/// - One Goku-1B-shaped block (D 1152, 16 heads, 2048-wide text) at 1024 video tokens and 77 text tokens, plain and
///   with activation checkpointing (checked to give the same gradients first), beside its linear layers run alone
///   forward and backward (the GEMM floor; ratio = floor / block), timed in the same run.
/// - The `small` preset on a packed batch (a 17-frame 64×64 video and four 64×64 images as 8×-VAE latents), beside
///   the same samples run one by one (checked to give the same velocities first).
public struct BenchModel: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "model", abstract: "Goku block and small-model forward + backward, tokens/s.")

    @OptionGroup var options: BenchOptions

    public init() {}

    public func run() throws {
        options.apply()
        print("goku bench model — \(Parallel.threadCount) threads; BLAS: \(Parallel.blasDescription)")
        try benchBlock()
        try benchPacked()
    }

    func benchBlock() throws {
        var config = GokuConfig.goku1B
        config.depth = 1
        let tokens = options.quick ? 256 : 1024, textTokens = 77
        let g = RandomGenerator(seed: 1)
        let block = GokuBlock(config, generator: g)
        // Random modulation weights so the gates are not zero (a trained block, not a fresh one).
        let ada = block.adaLNModulation.linear.weight
        ada.assign(Tensor.randn(ada.shape, generator: g) * 0.02)
        let grid = [tokens / 256, 16, 16]
        let sample = GokuSample(
            latent: Tensor.zeros([config.inChannels, grid[0], 32, 32]), timestep: 0.5,
            text: Tensor.randn([textTokens, config.textDimension], generator: g))
        let batch = try PackedBatch(samples: [sample], config: config)
        let x = Tensor.randn([1, tokens, config.hiddenSize], generator: g)
        x.requiresGrad = true
        let c = Tensor.randn([1, config.hiddenSize], generator: g)
        let w = Tensor.randn([1, tokens, config.hiddenSize], generator: g)
        func step(checkpointed: Bool) {
            block.zeroGrad()
            x.grad = nil
            let out =
                checkpointed
                ? Autograd.checkpoint([x]) { block($0[0], conditioning: c, batch: batch) }
                : block(x, conditioning: c, batch: batch)
            (out * w).sum().backward()
        }
        step(checkpointed: false)
        let plainGrad = block.selfAttention.queryProjection.weight.grad!.copy()
        step(checkpointed: true)
        let diff = (block.selfAttention.queryProjection.weight.grad! - plainGrad).abs().max().item()
        let scale = plainGrad.abs().max().item()
        guard diff <= 1e-4 * scale else {
            throw ValidationError("checkpointed gradient differs from the plain one by \(diff) (scale \(scale))")
        }
        // The GEMM floor: the block's linear layers alone, forward and backward through the same kernels (each is a
        // forward product plus the input- and weight-gradient products), on inputs of the block's shapes.
        let d = config.hiddenSize, f = config.ffnDimension, dt = config.textDimension
        let layers: [(rows: Int, input: Int, output: Int)] = [
            (1, d, 6 * d), (tokens, d, d), (tokens, d, d), (tokens, d, d), (tokens, d, d),  // adaLN, attn1
            (tokens, d, d), (textTokens, dt, d), (textTokens, dt, d), (tokens, d, d),  // attn2
            (tokens, d, f), (tokens, f, d),  // FFN
        ]
        let operands = layers.map { l -> (Tensor, Tensor) in
            let input = Tensor.randn([l.rows, l.input], generator: g),
                weight = Tensor.randn([l.output, l.input], generator: g)
            input.requiresGrad = true
            weight.requiresGrad = true
            return (input, weight)
        }
        let flops = 3 * layers.reduce(0.0) { $0 + 2 * Double($1.rows * $1.input * $1.output) }
        let gemmTime = BenchHarness.median(minRuns: 3, minSeconds: 2) {
            for (input, weight) in operands {
                input.grad = nil
                weight.grad = nil
                Tensor.linear(input, weight: weight, bias: nil).sum().backward()
            }
        }
        for checkpointed in [false, true] {
            let time = BenchHarness.median(minRuns: 3, minSeconds: 2) { step(checkpointed: checkpointed) }
            print(
                "goku-1b block fwd+bwd, \(tokens) tokens + \(textTokens) text\(checkpointed ? ", checkpointed" : ""):"
                    + " \(BenchHarness.format(time * 1e3)) ms, \(BenchHarness.format(Double(tokens) / time, 0)) tokens/s,"
                    + " \(BenchHarness.format(flops / time / 1e9)) linear-layer GFLOP/s"
                    + " | linear layers alone \(BenchHarness.format(gemmTime * 1e3)) ms"
                    + " | ratio \(BenchHarness.format(gemmTime / time, 3))")
        }
    }

    func benchPacked() throws {
        let config = GokuConfig.small
        let model = GokuTransformer(config, generator: RandomGenerator(seed: 2))
        let g = RandomGenerator(seed: 3)
        let c = config.inChannels
        // 17 frames at 64×64 → latent (C, 5, 8, 8); images → (C, 1, 8, 8); 77 text tokens each.
        let shapes = [[c, 5, 8, 8]] + [[Int]](repeating: [c, 1, 8, 8], count: 4)
        let samples = shapes.map {
            GokuSample(
                latent: Tensor.randn($0, generator: g), timestep: Double(g.nextUniform()),
                text: Tensor.randn([77, config.textDimension], generator: g))
        }
        for (_, p) in model.namedParameters() { p.assign(Tensor.randn(p.shape, generator: g) * 0.02) }
        let batch = try PackedBatch(samples: samples, config: config)
        let packed = Autograd.inference { batch.unpack(model(batch)) }
        for (i, s) in samples.enumerated() {
            let single = Autograd.inference { try! model.velocity([s])[0] }
            let diff = (single - packed[i]).abs().max().item()
            guard diff <= 1e-4 * (single.abs().max().item() + 1e-6) else {
                throw ValidationError("packed and per-sample velocities of sample \(i) differ by \(diff)")
            }
        }
        let tokens = batch.layout.tokenCount
        let packedTime = BenchHarness.median {
            model.zeroGrad()
            model(batch).square().mean().backward()
        }
        let singleTime = BenchHarness.median {
            model.zeroGrad()
            for s in samples { try! model.velocity([s])[0].square().mean().backward() }
        }
        print(
            "small model fwd+bwd, packed \(samples.count) samples (\(tokens) tokens):"
                + " \(BenchHarness.format(packedTime * 1e3)) ms, \(BenchHarness.format(Double(tokens) / packedTime, 0)) tokens/s"
                + " | one by one \(BenchHarness.format(singleTime * 1e3)) ms | ratio \(BenchHarness.format(singleTime / packedTime, 2))"
        )
    }
}
