import ArgumentParser
import Checkpoint
import Foundation
import TensorCore
import VideoVAE

/// `goku vae`: encode videos to latents, decode latents to videos, and reconstruct through the VAE.
struct VAECommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vae", abstract: "The joint image-video VAE: encode, decode, reconstruct.",
        subcommands: [VAEEncode.self, VAEDecode.self, VAEReconstruct.self])
}

/// Options shared by the `vae` subcommands.
struct VAERunOptions: ParsableArguments {
    @Option(help: "A diffusers AutoencoderKLCogVideoX folder (config.json + diffusion_pytorch_model.safetensors).")
    var vae: String

    @Option(help: "Input file (.safetensors; PNG/GIF/MP4 need the Media target).")
    var input: String

    @Option(help: "Output file (.safetensors; PNG/GIF/MP4 need the Media target).")
    var output: String

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
    func loadVAE() throws -> VideoAutoencoder {
        try VAEFiles.checkFormat(input)
        try VAEFiles.checkFormat(output)
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

/// Tensor files by extension: safetensors now; images and videos once the Media target is linked.
enum VAEFiles {
    /// Reads a (C, T, H, W) tensor stored under `key`.
    static func read(_ path: String, key: String) throws -> Tensor {
        let url = URL(fileURLWithPath: path)
        switch url.pathExtension.lowercased() {
        case "safetensors":
            let file = try SafeTensorsFile(url: url)
            guard file.names.contains(key) else {
                throw VAECommandError(description: "\(path): no tensor '\(key)' (found: \(file.names.sorted().joined(separator: ", ")))")
            }
            let t = try StateDict.loadTensors(from: url)[key]!
            guard t.rank == 4 else {
                throw VAECommandError(description: "\(path): tensor '\(key)' has shape \(t.shape), expected (C, T, H, W)")
            }
            return t
        default:
            throw unsupported(path)
        }
    }

    /// Writes a (C, T, H, W) tensor under `key`, atomically.
    static func write(_ tensor: Tensor, to path: String, key: String) throws {
        let url = URL(fileURLWithPath: path)
        switch url.pathExtension.lowercased() {
        case "safetensors": try SafeTensors.write([key: tensor], metadata: ["format": "pt"], to: url)
        default: throw unsupported(path)
        }
    }

    /// Throws unless `path` has an extension this build reads and writes.
    static func checkFormat(_ path: String) throws {
        if URL(fileURLWithPath: path).pathExtension.lowercased() != "safetensors" { throw unsupported(path) }
    }

    static func unsupported(_ path: String) -> VAECommandError {
        VAECommandError(
            description: "\(path): unsupported format '.\(URL(fileURLWithPath: path).pathExtension)'; this build reads and "
                + "writes .safetensors (PNG, GIF and MP4 come with the Media target)")
    }
}

/// `goku vae encode`: video → posterior mean latent.
struct VAEEncode: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "encode",
        abstract: "Encode a video (key 'video', (C, T, H, W) in [-1, 1]) to its latent (key 'latent', the posterior mode, unscaled).")

    @OptionGroup var options: VAERunOptions

    func run() throws {
        let vae = try options.loadVAE()
        let video = try VAEFiles.read(options.input, key: "video")
        let latent = try options.naming {
            try Autograd.inference { try vae.encode(video.unsqueeze(0), options: options.memory).mode }
        }
        try VAEFiles.write(latent.squeeze(0), to: options.output, key: "latent")
        print("\(options.input) \(video.shape) → \(options.output) latent \(latent.squeeze(0).shape)")
    }
}

/// `goku vae decode`: latent → video.
struct VAEDecode: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "decode",
        abstract: "Decode a latent (key 'latent', (C, T, h, w), unscaled) to a video (key 'video', clamped to [-1, 1]).")

    @OptionGroup var options: VAERunOptions

    func run() throws {
        let vae = try options.loadVAE()
        let latent = try VAEFiles.read(options.input, key: "latent")
        let video = try options.naming {
            try Autograd.inference { try vae.decode(latent.unsqueeze(0), options: options.memory) }
        }
        let out = video.squeeze(0).clamp(min: -1, max: 1)
        try VAEFiles.write(out, to: options.output, key: "video")
        print("\(options.input) latent \(latent.shape) → \(options.output) \(out.shape)")
    }
}

/// `goku vae reconstruct`: encode, take the posterior mode, decode; prints the PSNR.
struct VAEReconstruct: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reconstruct", abstract: "Encode, take the posterior mode, decode; prints the reconstruction PSNR.")

    @OptionGroup var options: VAERunOptions

    func run() throws {
        let vae = try options.loadVAE()
        let video = try VAEFiles.read(options.input, key: "video")
        let out = try options.naming {
            try Autograd.inference { () throws -> Tensor in
                let z = try vae.encode(video.unsqueeze(0), options: options.memory).mode
                return try vae.decode(z, options: options.memory).squeeze(0).clamp(min: -1, max: 1)
            }
        }
        try VAEFiles.write(out, to: options.output, key: "video")
        // PSNR on [0, 1] pixels: the [-1, 1] error halves, peak 1.
        let mse = Double(((out - video) * 0.5).square().mean().item())
        print("\(options.input) \(video.shape) → \(options.output); PSNR \(String(format: "%.2f", 10 * log10(1 / max(mse, 1e-12)))) dB")
    }
}
