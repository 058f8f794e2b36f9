import ArgumentParser
import Benchmarks
import Foundation
import GokuModel
import GokuPipeline
import NN
import Optim
import RectifiedFlow
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
/// encoding, packed forward, loss, backward, clipping, AdamW), as `goku train` runs it, with tokens/s; plain and with
/// activation checkpointing. For one goku-1b-shaped block see `goku bench block` and `goku bench model`.
struct BenchTrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train", abstract: "One training step of the shipped model's configuration, tokens/s.")

    @OptionGroup var options: BenchOptions

    func run() throws {
        options.apply()
        print("goku bench train — \(Parallel.threadCount) threads; BLAS: \(Parallel.blasDescription)")
        let (transformer, text, _) = try shippedArchitecture(seed: 1)
        let parameters =
            transformer.namedParameters().map { (key: "transformer." + $0.key, tensor: $0.tensor) }
            + text.encoder.model.namedParameters().map { (key: "text_encoder." + $0.key, tensor: $0.tensor) }
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
            let conditions = text.encode(captions, differentiable: true)
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
        for checkpointing in [false, true] {
            transformer.activationCheckpointing = checkpointing
            step()  // warm-up
            _ = BenchHarness.resetPeakMemory()
            let seconds = BenchHarness.median(minRuns: options.quick ? 3 : 5, minSeconds: options.quick ? 0.5 : 2) { step() }
            print(
                "small model step (\(tokens) tokens, 8 samples\(checkpointing ? ", activation checkpointing" : "")): "
                    + "\(BenchHarness.format(seconds * 1000)) ms, \(BenchHarness.format(Double(tokens) / seconds, 0)) tokens/s, "
                    + "peak RSS \(BenchHarness.mib(BenchHarness.peakMemory()))")
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
