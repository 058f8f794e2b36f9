import ArgumentParser
import Foundation
import GokuPipeline
import Media
import TensorCore
import Training

/// `goku generate "PROMPT" -o OUT`: text (and optionally a first frame) to an image or a clip.
struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Generate an image or a video from a prompt (PNG for one frame, GIF or MP4 otherwise).",
        discussion: "Without --model, the shipped Shapes model (models/goku-shapes) is used.")

    @Argument(help: "What to generate, e.g. \"a large red circle moving right\".")
    var prompt: String

    @OptionGroup var sampling: ModelSamplingOptions

    @Option(help: "Frames, 1 + 4k (1: an image). Default: the model's.")
    var frames: Int?

    @Option(help: "Size WxH, multiples of 16. Default: the model's.")
    var size: String?

    @Option(help: "Negative prompt: what guidance steers away from.")
    var negative: String?

    @Option(help: "Noise seed; the same seed gives the same output.")
    var seed: UInt64 = 0

    @Option(help: "First frame (PNG) for image-to-video.")
    var image: String?

    @Option(help: "Frames per second of a GIF or MP4.")
    var fps: Double = 8

    @Option(name: [.short, .customLong("output")], help: "Output file: .png (one frame), .gif or .mp4.")
    var output: String

    func run() throws {
        var options = GenerationOptions(prompt: prompt)
        options.frames = frames
        if let size { (options.width, options.height) = try FrameSize.parse(size) }
        try sampling.apply(to: &options)
        options.negativePrompt = negative
        options.seed = seed
        let outputURL = URL(fileURLWithPath: output)
        let ext = outputURL.pathExtension.lowercased()
        guard ["png", "gif", "mp4"].contains(ext) else {
            throw ValidationError("output '\(output)': use .png (one frame), .gif or .mp4")
        }
        let bundle = try sampling.loadModel()
        if let image {
            let picture = try ImageFile.read(URL(fileURLWithPath: image))  // (3, H, W)
            options.width = options.width ?? picture.shape[2]
            options.height = options.height ?? picture.shape[1]
            options.firstFrame = picture.unsqueeze(1)
        }
        let frameCount = options.frames ?? bundle.index.frames
        if ext == "png" && frameCount != 1 {
            throw ValidationError("output '\(output)' is a PNG: pass --frames 1, or write .gif / .mp4 for \(frameCount) frames")
        }
        if bundle.text.tokenCount(prompt) > bundle.text.maxLength {
            FileHandle.standardError.write(Data("warning: the prompt is longer than \(bundle.text.maxLength) tokens and was truncated\n".utf8))
        }
        let bar = ProgressBar(total: options.steps ?? bundle.index.sampling.steps, label: "sample")
        bar.unit = "steps"
        let result = try bundle.generate(options) { done, _ in bar.update(completed: done) }
        bar.finish()
        if ext == "png" {
            try ImageFile.write(result.video.squeeze(1), to: outputURL)
        } else {
            try VideoFile.write(result.video, to: outputURL, framesPerSecond: fps)
        }
        print("wrote \(output) (\(result.frames) frame\(result.frames == 1 ? "" : "s"), \(result.width)x\(result.height), \(result.steps) \(result.sampler) steps, cfg \(result.guidance)\(result.guidanceInterval.map { " at t in [\($0.lower), \($0.upper)]" } ?? ""), seed \(seed))")
    }

}
