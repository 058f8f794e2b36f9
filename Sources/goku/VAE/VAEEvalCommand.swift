import ArgumentParser
import Foundation
import Training
import VAETraining
import VideoVAE

/// `goku vae eval`: held-out reconstruction PSNR of a VAE folder on Shapes clips and images never trained on (the
/// evaluation stream and caption split of the data seed), the measure `goku vae train` logs, over as many samples
/// as asked.
struct VAEEvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Held-out PSNR of a VAE on Shapes videos and images (posterior mode, whole clips).",
        discussion: """
            The samples are those `goku vae train` evaluates on for the same data seed, size and frame count: its \
            metrics log measures the first 8 (evaluationSamples).
            """)

    @Option(help: "A diffusers AutoencoderKLCogVideoX folder (config.json + diffusion_pytorch_model.safetensors).")
    var vae: String

    @Option(help: "Held-out videos and images to measure (each).")
    var count = 64

    @Option(help: "Shapes data seed (the training config's shapes.seed).")
    var seed: UInt64 = 1

    @Option(help: "Frame size WIDTHxHEIGHT, multiples of 8.")
    var size = "64x64"

    @Option(help: "Frames per video, 1 + 4k.")
    var frames = 17

    func validate() throws {
        guard count > 0 else { throw ValidationError("--count must be positive, got \(count)") }
        let (width, height) = try FrameSize.parse(size)
        guard width % 8 == 0, height % 8 == 0 else { throw ValidationError("--size: \(size) is not a multiple of 8") }
        guard frames >= 1 && (frames - 1) % 4 == 0 else { throw ValidationError("--frames must be 1 + 4k, got \(frames)") }
    }

    func run() throws {
        let model = try VideoAutoencoder.load(from: URL(fileURLWithPath: vae))
        let (width, height) = try FrameSize.parse(size)
        let source = try ShapesClipSource(
            ShapesDataOptions(seed: seed, width: width, height: height, frames: frames), heldOut: true)
        let bar = ProgressBar(total: count, label: "vae eval")
        let result = try VAEEvaluation.measure(model, on: source, samples: count) { bar.update(completed: $0) }
        bar.finish()
        print(String(format: "%@: held-out PSNR video %.2f dB, image %.2f dB (%d each, %dx%d, %d frames, seed %llu)",
            vae, result.videoPSNR, result.imagePSNR, result.samples, width, height, frames, seed))
    }
}
