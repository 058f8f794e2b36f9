import ArgumentParser
import Checkpoint
import Foundation
import Media
import TensorCore
import VAETraining
import VideoVAE

/// `goku vae`: encode videos to latents, decode latents to videos, and reconstruct through the VAE.
struct VAECommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vae", abstract: "The joint image-video VAE: train, eval, encode, decode, reconstruct.",
        subcommands: [VAETrainCommand.self, VAEEvalCommand.self, VAEEncode.self, VAEDecode.self, VAEReconstruct.self])
}

/// Options shared by the `vae` subcommands.
struct VAERunOptions: ParsableArguments {
    @Option(help: "A diffusers AutoencoderKLCogVideoX folder (config.json + diffusion_pytorch_model.safetensors).")
    var vae: String

    @Option(help: "Input file: .safetensors (key 'video' or 'latent'), or .png / .gif for videos.")
    var input: String

    @Option(help: "Output file: .safetensors, or .png (one frame) / .gif for videos.")
    var output: String

    @Option(help: "Frames per second of a written .gif.")
    var framesPerSecond: Double = 8

    @Flag(help: "Process the whole clip at once instead of diffusers' temporal chunks (8 frames / 2 latent frames).")
    var wholeClip = false

    @Option(help: "Spatial tile size in pixels (a multiple of 32); larger inputs are tiled with a quarter overlap.")
    var tile: Int?

    /// The memory options these flags select.
    var memory: VideoVAEMemoryOptions {
        var m: VideoVAEMemoryOptions = wholeClip ? .wholeClip : .chunked
        if let tile { (m.tileHeight, m.tileWidth) = (tile, tile) }
        return m
    }

    /// Checks both file formats (before any work), then loads the VAE folder.
    /// - Parameters: inputKey, outputKey: "video" or "latent", what each file holds.
    func loadVAE(inputKey: String, outputKey: String) throws -> VideoAutoencoder {
        try VAEFiles.checkFormat(input, key: inputKey)
        try VAEFiles.checkFormat(output, key: outputKey)
        return try VideoAutoencoder.load(from: URL(fileURLWithPath: vae))
    }

    /// Runs `body`, naming the input file in a shape error.
    func naming<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let VideoVAEError.invalidInput(what, reason) {
            throw VAECommandError(description: "\(input): \(what) \(reason)")
        }
    }
}

/// An error of the `vae` command line, printed as its message.
struct VAECommandError: Error, CustomStringConvertible {
    /// What went wrong, naming the file and key.
    let description: String
}

/// Tensor files by extension: safetensors (any key) and, for videos, PNG (one frame) and GIF through `Media`.
enum VAEFiles {
    /// Extensions that hold a video; latents are safetensors only.
    static func checkFormat(_ path: String, key: String) throws {
        let ext = URL(fileURLWithPath: path).pathExtension.lowercased()
        if ext == "safetensors" || (key == "video" && (ext == "png" || ext == "gif")) { return }
        throw VAECommandError(
            description: "\(path): unsupported format '.\(ext)' for a \(key); use .safetensors"
                + (key == "video" ? ", .png (one frame) or .gif (MP4 needs FFmpeg, not in this build)" : ""))
    }

    /// Reads a (C, T, H, W) tensor: `key` of a safetensors file, or the frames of a PNG / GIF in [-1, 1].
    static func read(_ path: String, key: String) throws -> Tensor {
        try checkFormat(path, key: key)
        let url = URL(fileURLWithPath: path)
        guard url.pathExtension.lowercased() == "safetensors" else { return try VideoFile.read(url) }
        let file = try SafeTensorsFile(url: url)
        guard file.names.contains(key) else {
            throw VAECommandError(
                description: "\(path): no tensor '\(key)' (found: \(file.names.sorted().joined(separator: ", ")))")
        }
        let t = try StateDict.loadTensors(from: url)[key]!
        guard t.rank == 4 else {
            throw VAECommandError(description: "\(path): tensor '\(key)' has shape \(t.shape), expected (C, T, H, W)")
        }
        return t
    }

    /// Writes a (C, T, H, W) tensor under `key` (safetensors) or as PNG / GIF frames, atomically.
    static func write(_ tensor: Tensor, to path: String, key: String, framesPerSecond: Double) throws {
        try checkFormat(path, key: key)
        let url = URL(fileURLWithPath: path)
        if url.pathExtension.lowercased() == "safetensors" {
            try SafeTensors.write([key: tensor], metadata: ["format": "pt"], to: url)
        } else {
            try VideoFile.write(tensor, to: url, framesPerSecond: framesPerSecond)
        }
    }
}

/// `goku vae encode`: video → posterior mean latent.
struct VAEEncode: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "encode",
        abstract:
            "Encode a video (key 'video', (C, T, H, W) in [-1, 1]) to its latent (key 'latent', the posterior mode, unscaled)."
    )

    @OptionGroup var options: VAERunOptions

    func run() throws {
        let vae = try options.loadVAE(inputKey: "video", outputKey: "latent")
        let video = try VAEFiles.read(options.input, key: "video")
        let latent = try options.naming {
            try Autograd.inference { try vae.encode(video.unsqueeze(0), options: options.memory).mode }
        }
        try VAEFiles.write(
            latent.squeeze(0), to: options.output, key: "latent", framesPerSecond: options.framesPerSecond)
        print("\(options.input) \(video.shape) → \(options.output) latent \(latent.squeeze(0).shape)")
    }
}

/// `goku vae decode`: latent → video.
struct VAEDecode: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "decode",
        abstract: "Decode a latent (key 'latent', (C, T, h, w), unscaled) to a video (key 'video', clamped to [-1, 1])."
    )

    @OptionGroup var options: VAERunOptions

    func run() throws {
        let vae = try options.loadVAE(inputKey: "latent", outputKey: "video")
        let latent = try VAEFiles.read(options.input, key: "latent")
        let video = try options.naming {
            try Autograd.inference { try vae.decode(latent.unsqueeze(0), options: options.memory) }
        }
        let out = video.squeeze(0).clamp(min: -1, max: 1)
        try VAEFiles.write(out, to: options.output, key: "video", framesPerSecond: options.framesPerSecond)
        print("\(options.input) latent \(latent.shape) → \(options.output) \(out.shape)")
    }
}

/// `goku vae reconstruct`: encode, take the posterior mode, decode; prints the PSNR.
struct VAEReconstruct: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reconstruct", abstract: "Encode, take the posterior mode, decode; prints the reconstruction PSNR."
    )

    @OptionGroup var options: VAERunOptions

    func run() throws {
        let vae = try options.loadVAE(inputKey: "video", outputKey: "video")
        let video = try VAEFiles.read(options.input, key: "video")
        let out = try options.naming {
            try Autograd.inference { () throws -> Tensor in
                let z = try vae.encode(video.unsqueeze(0), options: options.memory).mode
                return try vae.decode(z, options: options.memory).squeeze(0).clamp(min: -1, max: 1)
            }
        }
        try VAEFiles.write(out, to: options.output, key: "video", framesPerSecond: options.framesPerSecond)
        let psnr = ReconstructionMetrics.psnr(out, video)
        print("\(options.input) \(video.shape) → \(options.output); PSNR \(String(format: "%.2f", psnr)) dB")
        let frames = video.shape[1]
        if frames > 1 {
            // Where a clip's error sits in time: the causal first frame is coded alone, the rest in groups of 4.
            let perFrame = (0..<frames).map { t in
                String(format: "%.1f", ReconstructionMetrics.psnr(out.slice(axis: 1, t, t + 1), video.slice(axis: 1, t, t + 1)))
            }
            print("PSNR per frame (dB): \(perFrame.joined(separator: " "))")
        }
    }
}
