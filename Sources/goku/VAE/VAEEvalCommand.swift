import ArgumentParser
import Foundation
import Training
import ShapesRecipe
import VAETraining
import VideoVAE

/// `goku vae eval`: held-out reconstruction PSNR of a VAE folder on Shapes clips and images never trained on (the
/// evaluation stream and caption split of the data seed), or on the held-out rows of a training config's dataset
/// folder, the measure `goku vae train` logs, over as many samples as asked.
struct VAEEvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Held-out PSNR of a VAE on Shapes videos and images (posterior mode, whole clips).",
        discussion: """
            The samples are those `goku vae train` evaluates on for the same data seed, size and frame count: its \
            evaluation log measures the first 8 (evaluationSamples). With --config, the data is that config's: its \
            Shapes options, or the held-out rows of its dataFolder (at most as many samples as they hold).
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

    @Option(help: "A training config (JSON, e.g. a run's run.json): evaluate on its data instead of --seed/--size/--frames.")
    var config: String?

    func validate() throws {
        guard count > 0 else { throw ValidationError("--count must be positive, got \(count)") }
        let (width, height) = try FrameSize.parse(size)
        guard width % 8 == 0, height % 8 == 0 else { throw ValidationError("--size: \(size) is not a multiple of 8") }
        guard frames >= 1 && (frames - 1) % 4 == 0 else { throw ValidationError("--frames must be 1 + 4k, got \(frames)") }
    }

    func run() throws {
        let model = try VideoAutoencoder.load(from: URL(fileURLWithPath: vae))
        var options: ShapesDataOptions
        if let config {
            let training = try VAETrainingConfig.read(from: URL(fileURLWithPath: config))
            if let path = training.dataFolder {
                let split = try FolderClipSplit(directory: URL(fileURLWithPath: path), options: training.folderData)
                let heldOut = split.heldOut, n = min(count, heldOut.videoCount, heldOut.imageCount)
                guard n > 0 else {
                    throw ValidationError("\(path): the held-out rows hold \(heldOut.videoCount) videos and \(heldOut.imageCount) images")
                }
                let result = try measure(model, on: heldOut, samples: n)
                let f = training.folderData
                print(String(format: "%@: held-out PSNR video %.2f dB, image %.2f dB (%d each, %dx%d, %d frames, the last %d rows of %@)",
                    vae, result.videoPSNR, result.imagePSNR, result.samples, f.size, f.size, f.frames, f.heldOutRows, path))
                return
            }
            options = training.resolvedShapes
        } else {
            let (width, height) = try FrameSize.parse(size)
            options = ShapesDataOptions(seed: seed, width: width, height: height, frames: frames)
        }
        let result = try measure(model, on: try ShapesClipSource(options, heldOut: true), samples: count)
        print(String(format: "%@: held-out PSNR video %.2f dB, image %.2f dB (%d each, %dx%d, %d frames, seed %llu)",
            vae, result.videoPSNR, result.imagePSNR, result.samples, options.width, options.height, options.frames,
            options.seed))
    }

    /// The evaluation with a progress bar.
    private func measure(_ model: VideoAutoencoder, on source: ClipSource, samples: Int) throws -> VAEEvaluation {
        let bar = ProgressBar(total: samples, label: "vae eval")
        let result = try VAEEvaluation.measure(model, on: source, samples: samples) { bar.update(completed: $0) }
        bar.finish()
        return result
    }
}
