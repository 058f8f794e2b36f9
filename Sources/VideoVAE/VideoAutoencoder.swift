import Checkpoint
import Foundation
import NN
import TensorCore

/// The joint image-video VAE of CogVideoX (diffusers' `AutoencoderKLCogVideoX`), which the Goku paper uses: a
/// causal 3-D convolutional encoder to a diagonal Gaussian posterior and a latent-conditioned decoder, 8× in height
/// and width and 4× in time (1 + 4k frames ↔ 1 + k latent frames; an image is a one-frame clip).
///
/// Keys are diffusers' (`encoder.…`, `decoder.…`, optional `quant_conv`, `post_quant_conv`), so a diffusers folder
/// loads unchanged with `load(from:)`. `encode` and `decode` take batches and are differentiable end to end, so a
/// trainer calls `try vae.encode(video).sample(generator:)` and `try vae.decode(z)` under autograd. The memory
/// options (temporal chunks with a causal-convolution cache, overlapping spatial tiles) live in
/// `VideoAutoencoder+Memory.swift`.
public final class VideoAutoencoder: Module {
    /// The architecture.
    public let config: VideoVAEConfig
    /// Video → posterior parameters.
    public let encoder: Encoder3D
    /// Latent → video.
    public let decoder: Decoder3D
    /// Optional 1×1×1 convolution on the posterior parameters (`use_quant_conv`).
    @ModuleInfo(key: "quant_conv") public var quantConv: SafeConv3d?
    /// Optional 1×1×1 convolution on the latent before decoding (`use_post_quant_conv`).
    @ModuleInfo(key: "post_quant_conv") public var postQuantConv: SafeConv3d?

    /// The weights file of a diffusers folder.
    public static let weightsFileName = "diffusion_pytorch_model.safetensors"

    /// A VAE with PyTorch's default random initialisation.
    /// - Throws: `VideoVAEError.invalidConfig` when `config` does not validate.
    public init(config: VideoVAEConfig, generator: RandomGenerator = RandomGenerator(seed: 0)) throws {
        try config.validate()
        self.config = config
        encoder = Encoder3D(config: config, generator: generator)
        decoder = Decoder3D(config: config, generator: generator)
        let moments = 2 * config.latentChannels, z = config.latentChannels
        _quantConv = ModuleInfo(
            wrappedValue: config.useQuantConv ? SafeConv3d(moments, moments, kernel: 1, generator: generator) : nil,
            key: "quant_conv")
        _postQuantConv = ModuleInfo(
            wrappedValue: config.usePostQuantConv ? SafeConv3d(z, z, kernel: 1, generator: generator) : nil,
            key: "post_quant_conv")
    }

    /// Loads a diffusers folder unchanged: `config.json` and `diffusion_pytorch_model.safetensors` (or its sharded
    /// `.index.json`). Keys are checked strictly: every missing, unexpected or mis-shaped key is listed at once.
    /// - Throws: `VideoVAEError.invalidConfig` naming `config.json` and the field, or a `CheckpointError` naming the
    ///   weights file and the keys.
    public static func load(from folder: URL) throws -> VideoAutoencoder {
        let configURL = folder.appendingPathComponent(ConfigFile.defaultFileName)
        let config = try ConfigFile.read(VideoVAEConfig.self, from: folder)
        let vae: VideoAutoencoder
        do {
            vae = try VideoAutoencoder(config: config)
        } catch VideoVAEError.invalidConfig(_, let field, let reason) {
            throw VideoVAEError.invalidConfig(file: configURL.path, field: field, reason: reason)
        }
        let single = folder.appendingPathComponent(weightsFileName)
        let index = folder.appendingPathComponent(
            weightsFileName.replacingOccurrences(of: ".safetensors", with: ".safetensors.index.json"))
        if FileManager.default.fileExists(atPath: single.path) {
            try vae.loadWeights(from: single, strict: true)
        } else if FileManager.default.fileExists(atPath: index.path) {
            try vae.loadWeights(from: index, strict: true)
        } else {
            throw CheckpointError.io(
                file: single.path, reason: "no such file (a diffusers VAE folder holds \(weightsFileName))")
        }
        return vae
    }

    /// Writes a diffusers folder (`config.json`, `diffusion_pytorch_model.safetensors`), each file atomically.
    public func save(to folder: URL) throws {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try ConfigFile.write(config, to: folder)
        try saveWeights(to: folder.appendingPathComponent(Self.weightsFileName))
    }

    // MARK: whole-clip encode and decode

    /// Encodes a batch of clips in one pass (see `encode(_:options:)` for chunks and tiles).
    /// - Parameter video: (B, C, T, H, W) in [−1, 1], T = 1 + 4k, H and W multiples of 8.
    /// - Returns: the posterior over latents (B, Cz, 1 + k, H/8, W/8).
    /// - Throws: `VideoVAEError.invalidInput` when the shape does not fit.
    public func encode(_ video: Tensor) throws -> DiagonalGaussian {
        try validateVideo(video)
        return DiagonalGaussian(parameters: encodeParameters(video, cache: nil))
    }

    /// Decodes a batch of latents in one pass (see `decode(_:options:)` for chunks and tiles).
    /// - Parameter latent: (B, Cz, T, h, w), unscaled (as the encoder produces it).
    /// - Returns: (B, C, 1 + 4(T − 1), 8h, 8w), nominally in [−1, 1] (not clamped).
    /// - Throws: `VideoVAEError.invalidInput` when the shape does not fit.
    public func decode(_ latent: Tensor) throws -> Tensor {
        try validateLatent(latent)
        return decodeLatent(latent, cache: nil)
    }

    /// Encoder (and `quant_conv`) on one piece of a clip.
    func encodeParameters(_ video: Tensor, cache: CausalConvCache?) -> Tensor {
        let h = encoder(video, cache: cache)
        return quantConv.map { $0(h) } ?? h
    }

    /// `post_quant_conv` and decoder on one piece of a latent.
    func decodeLatent(_ latent: Tensor, cache: CausalConvCache?) -> Tensor {
        decoder(postQuantConv.map { $0(latent) } ?? latent, cache: cache)
    }

    // MARK: latent scaling

    /// The latent the diffusion model sees: (z − shift) · scaling (shift 0 when `shift_factor` is null).
    public func scaleLatent(_ z: Tensor) -> Tensor {
        let shifted = config.shiftFactor.map { z - $0 } ?? z
        return shifted * config.scalingFactor
    }

    /// Inverse of `scaleLatent`: z / scaling + shift, the latent to decode.
    public func unscaleLatent(_ z: Tensor) -> Tensor {
        let unscaled = z / config.scalingFactor
        return config.shiftFactor.map { unscaled + $0 } ?? unscaled
    }

    // MARK: validation

    /// Checks a video batch: (B, C, T, H, W) with C input channels, T = 1 + 4k, H and W multiples of 8.
    /// - Throws: `VideoVAEError.invalidInput` saying what is wrong.
    public func validateVideo(_ video: Tensor) throws {
        let s = video.shape, r = config.temporalCompression, f = config.spatialCompression
        guard s.count == 5 else {
            throw VideoVAEError.invalidInput(what: "video", reason: "expected (B, C, T, H, W), got shape \(s)")
        }
        guard s[1] == config.inChannels else {
            throw VideoVAEError.invalidInput(
                what: "video", reason: "has \(s[1]) channels, the VAE takes \(config.inChannels)")
        }
        guard s[2] >= 1, (s[2] - 1) % r == 0 else {
            throw VideoVAEError.invalidInput(
                what: "video",
                reason: "has \(s[2]) frames; the VAE takes 1 + \(r)k frames (1, \(1 + r), \(1 + 2 * r), …)")
        }
        guard s[3] > 0, s[4] > 0, s[3] % f == 0, s[4] % f == 0 else {
            throw VideoVAEError.invalidInput(
                what: "video", reason: "size \(s[3])×\(s[4]) (H×W) is not a positive multiple of \(f) in both axes")
        }
    }

    /// Checks a latent batch: (B, Cz, T, h, w) with Cz latent channels.
    /// - Throws: `VideoVAEError.invalidInput` saying what is wrong.
    public func validateLatent(_ latent: Tensor) throws {
        let s = latent.shape
        guard s.count == 5, s.allSatisfy({ $0 > 0 }) else {
            throw VideoVAEError.invalidInput(
                what: "latent", reason: "expected non-empty (B, C, T, h, w), got shape \(s)")
        }
        guard s[1] == config.latentChannels else {
            throw VideoVAEError.invalidInput(
                what: "latent", reason: "has \(s[1]) channels, the VAE's latent has \(config.latentChannels)")
        }
    }
}
