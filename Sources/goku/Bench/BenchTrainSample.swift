import ArgumentParser
import Benchmarks
import Foundation
import GokuModel
import GokuPipeline
import NN
import Optim
import RectifiedFlow
import ShapesRecipe
import TensorCore
import TextEncoder
import VideoVAE

/// The shipped model's architecture with random weights: the `small` transformer (image conditioning on), the Shapes
/// T5 and the `small` VAE, as `goku train` builds them.
private func shippedArchitecture(seed: UInt64) throws -> (GokuTransformer, TextConditioning, VideoAutoencoder) {
    let g = RandomGenerator(seed: seed)
    let vae = try VideoAutoencoder(config: .small, generator: g)
    let t5 = T5EncoderModel(config: ShapesText.encoderConfig, generator: g)
    let text = TextConditioning(T5TextEncoder(tokenizer: try ShapesText.tokenizer(), model: t5, maxLength: 24))
    var config = GokuConfig.small
    config.inChannels = vae.config.latentChannels
    config.textDimension = text.dimension
    config.imageConditioning = true
    let transformer = GokuTransformer(config, generator: g)
    // Non-zero adaLN and output weights, so the timed model is a trained-like one rather than the zero-initialised.
    for (key, p) in transformer.namedParameters() where key.contains("adaLN_modulation") || key.contains("norm1.linear") {
        p.assign(Tensor.randn(p.shape, generator: g) * 0.02)
    }
    return (transformer, text, vae)
}

/// `goku bench train`: one full training step of the shipped model's configuration (tiny T5 trained jointly, text
/// encoding, packed forward, loss, backward, clipping, AdamW), as `goku train` runs it, with tokens/s and the memory a
/// step allocates; plain and with activation checkpointing, in fp32 or with bf16 matrix products (`--dtype`, as
/// `goku train --precision bf16`). `--compare-torch` runs `scripts/bench/torch_train_step.py`, the same step in
/// PyTorch (autocast for bf16), and prints the ratios. For one goku-1b-shaped block see `goku bench block`.
struct BenchTrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train", abstract: "One training step of the shipped model's configuration, tokens/s.")

    @OptionGroup var options: BenchOptions

    @Option(help: "Matrix-product precision: fp32, or bf16 (oneDNN, fp32 accumulation and master weights).")
    var dtype: String = "fp32"

    @Flag(help: "Also run scripts/bench/torch_train_step.py (needs .venv-bench or GOKU_TORCH_PYTHON) and print ratios.")
    var compareTorch = false

    func run() throws {
        options.apply()
        guard let precision = MixedPrecision.Mode(name: dtype) else {
            throw ValidationError("--dtype must be \(MixedPrecision.Mode.names.joined(separator: " or ")), got \(dtype)")
        }
        guard precision == .float32 || MixedPrecision.isAvailable else {
            throw ValidationError("--dtype bf16 needs oneDNN (libdnnl), which created no CPU engine here")
        }
        print("goku bench train — \(Parallel.threadCount) threads; BLAS: \(Parallel.blasDescription)")
        let (transformer, text, _) = try shippedArchitecture(seed: 1)
        transformer.matmulPrecision = precision
        let parameters =
            transformer.namedParameters().map { (key: "transformer." + $0.key, tensor: $0.tensor) }
            + text.encoder.model.namedParameters().map { (key: "text_encoder." + $0.key, tensor: $0.tensor) }
        let parameterCount = parameters.reduce(0) { $0 + $1.tensor.count }
        let optimizer = AdamW(parameters, options: .init(learningRate: 1e-4, weightDecay: 0))
        let g = RandomGenerator(seed: 2)
        // 5 videos (17 frames → 5 latent frames) and 3 images at 64×64 (8×8 latents): the default step of 8 samples.
        let shapes = (0..<8).map { $0 < 5 ? [16, 5, 8, 8] : [16, 1, 8, 8] }
        let captions = (0..<8).map { ["a large red circle moving right", "two blue squares", "a small green triangle above a white square"][$0 % 3] }
        let latents = shapes.map { Tensor.randn($0, generator: g) }
        let noise = shapes.map { Tensor.randn($0, generator: g) }
        var tokens = 0
        func step() {
            for (_, p) in parameters { p.grad = nil }
            let conditions = text.encode(captions, differentiable: true)  // fp32, as in `goku train`
            var samples: [GokuSample] = [], targets: [Tensor] = []
            for i in 0..<8 {
                let pair = RectifiedFlow.trainingPair(data: latents[i], noise: noise[i], t: 0.3 + 0.05 * Double(i))
                samples.append(GokuSample(latent: pair.noisy, timestep: 0.3 + 0.05 * Double(i), text: conditions[i].states, textMask: conditions[i].mask))
                targets.append(pair.target)
            }
            let batch = try! PackedBatch(samples: samples, config: transformer.config)
            tokens = batch.layout.tokenCount
            let loss = RectifiedFlow.loss(predictions: batch.unpack(transformer(batch)), targets: targets)
            loss.backward()
            _ = GradientClipping.clipGlobalNorm(parameters.map(\.tensor), maxNorm: 1)
            optimizer.update()
        }
        var times: [Bool: Double] = [:], memory: [Bool: Int] = [:]
        for checkpointing in [false, true] {
            transformer.activationCheckpointing = checkpointing
            step()  // warm-up
            memory[checkpointing] = BenchHarness.stepMemory(step)
            let seconds = BenchHarness.median(minRuns: options.quick ? 3 : 5, minSeconds: options.quick ? 0.5 : 2) { step() }
            times[checkpointing] = seconds * 1000
            print(
                "small model step \(dtype) (\(tokens) tokens, 8 samples, \(parameterCount) parameters"
                    + "\(checkpointing ? ", activation checkpointing" : "")): \(BenchHarness.format(seconds * 1000)) ms,"
                    + " \(BenchHarness.format(Double(tokens) / seconds, 0)) tokens/s, step allocates +\(BenchHarness.mib(memory[checkpointing]!))")
        }
        guard compareTorch else { return }
        for checkpointing in [false, true] {
            let arguments =
                ["--dtype", dtype, "--threads", "\(Parallel.threadCount)", "--reps", options.quick ? "3" : "10"]
                + (checkpointing ? ["--checkpointing"] : [])
            guard let results = try TorchPeer.run(script: "scripts/bench/torch_train_step.py", arguments: arguments),
                let peer = results["train \(dtype)\(checkpointing ? "-checkpointing" : "")"]
            else { return }
            if let count = peer.fields["params"].flatMap(Int.init), count != parameterCount {
                print("  (the peer has \(count) parameters, goku \(parameterCount): the ratio compares different models)")
            }
            let goku = times[checkpointing]!, gokuMiB = Double(memory[checkpointing]!) / 1_048_576
            print(
                "training step \(dtype)\(checkpointing ? ", checkpointing" : ""): goku \(BenchHarness.format(goku)) ms"
                    + " / torch \(BenchHarness.format(peer.ms)) ms = \(BenchHarness.format(goku / peer.ms, 3));"
                    + " step memory goku +\(BenchHarness.format(gokuMiB, 0)) MiB / torch +\(BenchHarness.format(peer.peakMiB ?? 0, 0)) MiB"
                    + " = \(BenchHarness.format(gokuMiB / max(peer.peakMiB ?? 0, 1), 2))")
        }
    }
}

/// `goku bench sample`: seconds per sampling step and per generated clip for the shipped model's architecture (random
/// weights) at 64×64, a 17-frame clip and an image, with classifier-free guidance (conditional and unconditional
/// packed in one pass) and without.
struct BenchSample: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sample", abstract: "Seconds per sampling step and per generated clip (shipped architecture).")

    @OptionGroup var options: BenchOptions

    func run() throws {
        options.apply()
        print("goku bench sample — \(Parallel.threadCount) threads; BLAS: \(Parallel.blasDescription)")
        let (transformer, text, vae) = try shippedArchitecture(seed: 1)
        let index = GokuModelIndex(frames: 17, width: 64, height: 64, maxTextLength: 24, sampling: SamplingDefaults())
        let bundle = try GokuModelBundle(index: index, transformer: transformer, vae: vae, text: text)
        bundle.setInference()
        let steps = options.quick ? 4 : 20
        for (frames, guidance) in [(17, 4.0), (17, 1.0), (1, 4.0)] {
            var request = GenerationOptions(prompt: "a large red circle moving right")
            request.frames = frames
            request.steps = steps
            request.guidance = guidance
            _ = try bundle.generate(request)  // warm-up
            var stepTimes: [Double] = []
            var last = Date()
            let start = Date()
            _ = try bundle.generate(request) { _, _ in
                stepTimes.append(Date().timeIntervalSince(last))
                last = Date()
            }
            let total = Date().timeIntervalSince(start)
            let rest = stepTimes.dropFirst().sorted()  // the first step also encodes the prompt
            let perStep = rest.isEmpty ? total : rest[rest.count / 2]
            print(
                "\(frames == 1 ? "image" : "\(frames)-frame clip") 64×64, cfg \(guidance): "
                    + "\(BenchHarness.format(perStep * 1000)) ms/step, \(BenchHarness.format(total, 2)) s per output "
                    + "(\(steps) steps + text + VAE decode)")
        }
    }
}
