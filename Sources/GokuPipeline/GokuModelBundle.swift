import Checkpoint
import Foundation
import GokuModel
import NN
import RectifiedFlow
import TensorCore
import TextEncoder
import VideoVAE

/// What a model folder says about itself besides the three networks: the size it was trained at and the sampling
/// defaults that go with it (`model_index.json`).
public struct GokuModelIndex: Codable, Equatable, Sendable {
    /// Always "GokuPipeline"; identifies the folder layout.
    public var className = "GokuPipeline"
    /// Layout version (1).
    public var formatVersion = 1
    /// Default frame count, 1 + 4k (17).
    public var frames: Int
    /// Default width in pixels, a multiple of 16.
    public var width: Int
    /// Default height in pixels, a multiple of 16.
    public var height: Int
    /// Captions are tokenised to this many tokens (longer ones are truncated).
    public var maxTextLength: Int
    /// Sampler defaults.
    public var sampling: SamplingDefaults

    enum CodingKeys: String, CodingKey {
        case className = "_class_name", formatVersion = "format_version", frames, width, height
        case maxTextLength = "max_text_length", sampling
    }

    /// An index with the given defaults.
    public init(frames: Int, width: Int, height: Int, maxTextLength: Int, sampling: SamplingDefaults) {
        self.frames = frames
        self.width = width
        self.height = height
        self.maxTextLength = maxTextLength
        self.sampling = sampling
    }
}

/// Sampling settings a model was tuned for; every one can be overridden per generation.
public struct SamplingDefaults: Codable, Equatable, Sendable {
    /// ODE steps.
    public var steps: Int
    /// Classifier-free guidance scale (1: none).
    public var guidance: Double
    /// The sampler, written by name (`"sampler": "euler"`); an unknown name fails to decode, naming it and the valid
    /// ones.
    public var sampler: SamplerKind
    /// Fixed time shift s of the schedule; nil uses the token-count rule the model was trained with.
    public var shift: Double?
    /// The flow times [lo, hi] (0 noise, 1 data) at which guidance is applied; outside it the step takes the
    /// conditional velocity alone. nil: guidance at every step.
    public var guidanceInterval: GuidanceInterval?

    enum CodingKeys: String, CodingKey {
        case steps, guidance, sampler, shift, guidanceInterval = "guidance_interval"
    }

    /// Defaults for a small model.
    public init(
        steps: Int = 30, guidance: Double = 4, sampler: SamplerKind = .euler, shift: Double? = nil,
        guidanceInterval: GuidanceInterval? = nil
    ) {
        self.steps = steps
        self.guidance = guidance
        self.sampler = sampler
        self.shift = shift
        self.guidanceInterval = guidanceInterval
    }
}

/// A complete text-to-video model on disk, laid out like a diffusers pipeline:
///
///     model_index.json
///     transformer/   config.json, model.safetensors               (GokuTransformer)
///     vae/           config.json, diffusion_pytorch_model.safetensors   (AutoencoderKLCogVideoX keys)
///     text_encoder/  config.json, model.safetensors, tokenizer.json     (T5 encoder, Hugging Face keys)
///
/// Each part loads with the tools of its own format, so a diffusers VAE or a Hugging Face T5 can be dropped in.
public final class GokuModelBundle {
    /// Defaults and layout version.
    public let index: GokuModelIndex
    /// The velocity model.
    public let transformer: GokuTransformer
    /// The joint image-video VAE.
    public let vae: VideoAutoencoder
    /// Tokenizer and text encoder.
    public let text: TextConditioning

    /// The file names of the layout.
    public enum Layout {
        public static let index = "model_index.json"
        public static let transformer = "transformer", vae = "vae", textEncoder = "text_encoder"
        public static let transformerWeights = "model.safetensors", textEncoderWeights = "model.safetensors"
    }

    /// Assembles a bundle, checking that the parts fit together.
    /// - Throws: `GokuPipelineError.incompatible` naming the mismatch.
    public init(index: GokuModelIndex, transformer: GokuTransformer, vae: VideoAutoencoder, text: TextConditioning) throws {
        self.index = index
        self.transformer = transformer
        self.vae = vae
        self.text = text
        let t = transformer.config
        guard t.textDimension == text.dimension else {
            throw GokuPipelineError.incompatible(
                "transformer textDimension \(t.textDimension) ≠ text encoder d_model \(text.dimension)")
        }
        guard t.inChannels == vae.config.latentChannels else {
            throw GokuPipelineError.incompatible(
                "transformer inChannels \(t.inChannels) ≠ VAE latent_channels \(vae.config.latentChannels)")
        }
    }

    /// Loads a model folder.
    /// - Throws: `GokuPipelineError.missingModel` when `folder` is not a model folder; the parts' own errors (naming
    ///   the file and field) when one is malformed.
    public static func load(from folder: URL) throws -> GokuModelBundle {
        let fm = FileManager.default
        let indexURL = folder.appendingPathComponent(Layout.index)
        guard fm.fileExists(atPath: indexURL.path) else {
            throw GokuPipelineError.missingModel(
                folder: folder.path, reason: "no \(Layout.index) (a Goku model folder has model_index.json, transformer/, vae/, text_encoder/)")
        }
        let index: GokuModelIndex
        do { index = try JSONDecoder().decode(GokuModelIndex.self, from: Data(contentsOf: indexURL)) } catch {
            throw GokuPipelineError.missingModel(folder: indexURL.path, reason: "malformed: \(error)")
        }
        guard index.formatVersion == 1 else {
            throw GokuPipelineError.missingModel(folder: indexURL.path, reason: "format_version \(index.formatVersion) is not supported (1)")
        }
        let transformerFolder = folder.appendingPathComponent(Layout.transformer)
        let config = try GokuConfig.load(from: transformerFolder)
        let transformer = GokuTransformer(config)
        try transformer.loadWeights(from: transformerFolder.appendingPathComponent(Layout.transformerWeights), strict: true)
        let vae = try VideoAutoencoder.load(from: folder.appendingPathComponent(Layout.vae))
        let textFolder = folder.appendingPathComponent(Layout.textEncoder)
        let encoder = try T5TextEncoder.load(from: textFolder, maxLength: index.maxTextLength)
        let bundle = try GokuModelBundle(
            index: index, transformer: transformer, vae: vae, text: TextConditioning(encoder, tokenizerFolder: textFolder))
        bundle.setInference()
        return bundle
    }

    /// The same model decoding with `decoder`: a VAE with this model's encoder and latent space and another decoder
    /// (one trained further with the encoder fixed, `VAETrainingConfig.trainEncoder` false). The transformer's
    /// samples are latents of this model's VAE, so the replacement must share its latent shape, compression and
    /// scaling, and its encoder (`encoder.*`, `quant_conv.*`) must be this model's, up to the bfloat16 rounding of a
    /// model folder's weights (a relative 2⁻⁸ per weight).
    /// - Throws: `GokuPipelineError.incompatible` naming the first setting or encoder weight that differs.
    public func replacingDecoder(with decoder: VideoAutoencoder) throws -> GokuModelBundle {
        let old = vae.config, new = decoder.config
        let checks: [(String, Bool)] = [
            ("latent_channels", old.latentChannels == new.latentChannels),
            ("spatial compression", old.spatialCompression == new.spatialCompression),
            ("temporal_compression_ratio", old.temporalCompression == new.temporalCompression),
            ("scaling_factor", abs(old.scalingFactor - new.scalingFactor) <= 1e-6 * abs(old.scalingFactor)),
            ("shift_factor", old.shiftFactor == new.shiftFactor),
        ]
        if let (name, _) = checks.first(where: { !$0.1 }) {
            throw GokuPipelineError.incompatible(
                "the VAE's \(name) differs from the model's; the transformer's latents would be decoded wrongly")
        }
        let ours = vae.parameterDictionary(), theirs = decoder.parameterDictionary()
        for key in ours.keys.sorted() where key.hasPrefix("encoder.") || key.hasPrefix("quant_conv.") {
            guard let other = theirs[key], other.shape == ours[key]!.shape,
                zip(ours[key]!.scalars, other.scalars).allSatisfy({ abs($0 - $1) <= 0x1p-8 * max(abs($0), abs($1)) })
            else {
                throw GokuPipelineError.incompatible(
                    "the VAE's encoder weight \(key) differs from the model's: it was not trained on this model's latents")
            }
        }
        decoder.setTraining(false)
        return try GokuModelBundle(index: index, transformer: transformer, vae: decoder, text: text)
    }

    /// Writes the folder; each file is written atomically. `weightsDType` (e.g. bf16) halves the size on disk of the
    /// transformer and the VAE (the text encoder stays float32: it is small); weights are widened back to float32 on
    /// load, so only their rounding changes.
    public func save(to folder: URL, weightsDType: DType? = nil) throws {
        let fm = FileManager.default
        try fm.createDirectory(at: folder, withIntermediateDirectories: true)
        let transformerFolder = folder.appendingPathComponent(Layout.transformer)
        try fm.createDirectory(at: transformerFolder, withIntermediateDirectories: true)
        try transformer.config.save(to: transformerFolder)
        try transformer.saveWeights(
            to: transformerFolder.appendingPathComponent(Layout.transformerWeights), as: weightsDType)
        let vaeFolder = folder.appendingPathComponent(Layout.vae)
        try fm.createDirectory(at: vaeFolder, withIntermediateDirectories: true)
        try ConfigFile.write(vae.config, to: vaeFolder)
        try vae.saveWeights(to: vaeFolder.appendingPathComponent(VideoAutoencoder.weightsFileName), as: weightsDType)
        try text.save(to: folder.appendingPathComponent(Layout.textEncoder))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let temporary = folder.appendingPathComponent(".\(Layout.index).tmp")
        try encoder.encode(index).write(to: temporary)
        let target = folder.appendingPathComponent(Layout.index)
        if fm.fileExists(atPath: target.path) { try fm.removeItem(at: target) }
        try fm.moveItem(at: temporary, to: target)
    }

    /// Every network in evaluation mode.
    public func setInference() {
        transformer.setTraining(false)
        vae.setTraining(false)
        text.encoder.model.setTraining(false)
    }
}

/// A model folder or a generation request that cannot be used.
public enum GokuPipelineError: Error, CustomStringConvertible, Equatable {
    /// The folder is missing or is not a model folder.
    case missingModel(folder: String, reason: String)
    /// The parts of a model do not fit together.
    case incompatible(String)
    /// A generation option is invalid; names the option.
    case invalidOption(option: String, reason: String)

    public var description: String {
        switch self {
        case .missingModel(let folder, let reason): return "\(folder): \(reason)"
        case .incompatible(let reason): return "incompatible model parts: \(reason)"
        case .invalidOption(let option, let reason): return "\(option): \(reason)"
        }
    }
}
