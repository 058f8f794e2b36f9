import Foundation

/// The architecture of the joint image-video VAE, with the fields and JSON keys of diffusers'
/// `AutoencoderKLCogVideoX` `config.json`, so a diffusers folder loads unchanged.
///
/// Keys absent from a file take diffusers' defaults (as diffusers itself does); keys this type does not know
/// (`_class_name`, `_diffusers_version`, …) are ignored. Values the implementation does not support (another block
/// type, an activation other than SiLU, per-channel `latents_mean`/`latents_std`) are rejected by `validate()`.
public struct VideoVAEConfig: Codable, Equatable, Sendable {
    /// Image channels in, 3.
    public var inChannels: Int
    /// Image channels out, 3.
    public var outChannels: Int
    /// One `"CogVideoXDownBlock3D"` per resolution level.
    public var downBlockTypes: [String]
    /// One `"CogVideoXUpBlock3D"` per resolution level.
    public var upBlockTypes: [String]
    /// Channels per level, e.g. [128, 256, 256, 512]; every level but the last halves height and width.
    public var blockOutChannels: [Int]
    /// Latent channels, 16.
    public var latentChannels: Int
    /// ResNet blocks per encoder level (the decoder has one more per level), 3.
    public var layersPerBlock: Int
    /// Activation: "silu" (alias "swish").
    public var actFn: String
    /// GroupNorm epsilon of the ResNet blocks, 1e-6.
    public var normEps: Double
    /// GroupNorm groups, 32.
    public var normNumGroups: Int
    /// Frames per latent frame after the first, 4 (a power of two).
    public var temporalCompressionRatio: Double
    /// The training height in pixels, 480 (tiling uses tiles of half of it by default).
    public var sampleHeight: Int
    /// The training width in pixels, 720.
    public var sampleWidth: Int
    /// Multiplies latents before the diffusion model sees them, 1.15258426.
    public var scalingFactor: Double
    /// Subtracted from latents before scaling; nil (CogVideoX) means 0.
    public var shiftFactor: Double?
    /// Per-channel latent means: unsupported, must be null.
    public var latentsMean: [Double]?
    /// Per-channel latent standard deviations: unsupported, must be null.
    public var latentsStd: [Double]?
    /// diffusers' hint to run in float32; this implementation always computes in float32.
    public var forceUpcast: Bool
    /// A 1×1×1 convolution after the encoder.
    public var useQuantConv: Bool
    /// A 1×1×1 convolution before the decoder.
    public var usePostQuantConv: Bool
    /// A pipeline-side scaling variant; unsupported, must be false.
    public var invertScaleLatents: Bool

    enum CodingKeys: String, CodingKey {
        case inChannels = "in_channels", outChannels = "out_channels", downBlockTypes = "down_block_types"
        case upBlockTypes = "up_block_types", blockOutChannels = "block_out_channels"
        case latentChannels = "latent_channels", layersPerBlock = "layers_per_block", actFn = "act_fn"
        case normEps = "norm_eps", normNumGroups = "norm_num_groups"
        case temporalCompressionRatio = "temporal_compression_ratio", sampleHeight = "sample_height"
        case sampleWidth = "sample_width", scalingFactor = "scaling_factor", shiftFactor = "shift_factor"
        case latentsMean = "latents_mean", latentsStd = "latents_std", forceUpcast = "force_upcast"
        case useQuantConv = "use_quant_conv", usePostQuantConv = "use_post_quant_conv"
        case invertScaleLatents = "invert_scale_latents"
    }

    /// A configuration; the defaults are diffusers' (the CogVideoX-2b VAE).
    public init(
        inChannels: Int = 3, outChannels: Int = 3, blockOutChannels: [Int] = [128, 256, 256, 512],
        latentChannels: Int = 16, layersPerBlock: Int = 3, actFn: String = "silu", normEps: Double = 1e-6,
        normNumGroups: Int = 32, temporalCompressionRatio: Double = 4, sampleHeight: Int = 480, sampleWidth: Int = 720,
        scalingFactor: Double = 1.15258426, shiftFactor: Double? = nil, useQuantConv: Bool = false,
        usePostQuantConv: Bool = false
    ) {
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.downBlockTypes = Array(repeating: "CogVideoXDownBlock3D", count: blockOutChannels.count)
        self.upBlockTypes = Array(repeating: "CogVideoXUpBlock3D", count: blockOutChannels.count)
        self.blockOutChannels = blockOutChannels
        self.latentChannels = latentChannels
        self.layersPerBlock = layersPerBlock
        self.actFn = actFn
        self.normEps = normEps
        self.normNumGroups = normNumGroups
        self.temporalCompressionRatio = temporalCompressionRatio
        self.sampleHeight = sampleHeight
        self.sampleWidth = sampleWidth
        self.scalingFactor = scalingFactor
        self.shiftFactor = shiftFactor
        self.latentsMean = nil
        self.latentsStd = nil
        self.forceUpcast = true
        self.useQuantConv = useQuantConv
        self.usePostQuantConv = usePostQuantConv
        self.invertScaleLatents = false
    }

    /// Decodes a diffusers config; absent keys take diffusers' defaults.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = VideoVAEConfig()
        inChannels = try c.decodeIfPresent(Int.self, forKey: .inChannels) ?? d.inChannels
        outChannels = try c.decodeIfPresent(Int.self, forKey: .outChannels) ?? d.outChannels
        downBlockTypes = try c.decodeIfPresent([String].self, forKey: .downBlockTypes) ?? d.downBlockTypes
        upBlockTypes = try c.decodeIfPresent([String].self, forKey: .upBlockTypes) ?? d.upBlockTypes
        blockOutChannels = try c.decodeIfPresent([Int].self, forKey: .blockOutChannels) ?? d.blockOutChannels
        latentChannels = try c.decodeIfPresent(Int.self, forKey: .latentChannels) ?? d.latentChannels
        layersPerBlock = try c.decodeIfPresent(Int.self, forKey: .layersPerBlock) ?? d.layersPerBlock
        actFn = try c.decodeIfPresent(String.self, forKey: .actFn) ?? d.actFn
        normEps = try c.decodeIfPresent(Double.self, forKey: .normEps) ?? d.normEps
        normNumGroups = try c.decodeIfPresent(Int.self, forKey: .normNumGroups) ?? d.normNumGroups
        temporalCompressionRatio =
            try c.decodeIfPresent(Double.self, forKey: .temporalCompressionRatio) ?? d.temporalCompressionRatio
        sampleHeight = try c.decodeIfPresent(Int.self, forKey: .sampleHeight) ?? d.sampleHeight
        sampleWidth = try c.decodeIfPresent(Int.self, forKey: .sampleWidth) ?? d.sampleWidth
        scalingFactor = try c.decodeIfPresent(Double.self, forKey: .scalingFactor) ?? d.scalingFactor
        shiftFactor = try c.decodeIfPresent(Double.self, forKey: .shiftFactor)
        latentsMean = try c.decodeIfPresent([Double].self, forKey: .latentsMean)
        latentsStd = try c.decodeIfPresent([Double].self, forKey: .latentsStd)
        forceUpcast = try c.decodeIfPresent(Bool.self, forKey: .forceUpcast) ?? d.forceUpcast
        useQuantConv = try c.decodeIfPresent(Bool.self, forKey: .useQuantConv) ?? d.useQuantConv
        usePostQuantConv = try c.decodeIfPresent(Bool.self, forKey: .usePostQuantConv) ?? d.usePostQuantConv
        invertScaleLatents = try c.decodeIfPresent(Bool.self, forKey: .invertScaleLatents) ?? d.invertScaleLatents
    }

    /// Encodes every key, `shift_factor`, `latents_mean` and `latents_std` as JSON null when nil (as diffusers).
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(inChannels, forKey: .inChannels)
        try c.encode(outChannels, forKey: .outChannels)
        try c.encode(downBlockTypes, forKey: .downBlockTypes)
        try c.encode(upBlockTypes, forKey: .upBlockTypes)
        try c.encode(blockOutChannels, forKey: .blockOutChannels)
        try c.encode(latentChannels, forKey: .latentChannels)
        try c.encode(layersPerBlock, forKey: .layersPerBlock)
        try c.encode(actFn, forKey: .actFn)
        try c.encode(normEps, forKey: .normEps)
        try c.encode(normNumGroups, forKey: .normNumGroups)
        try c.encode(temporalCompressionRatio, forKey: .temporalCompressionRatio)
        try c.encode(sampleHeight, forKey: .sampleHeight)
        try c.encode(sampleWidth, forKey: .sampleWidth)
        try c.encode(scalingFactor, forKey: .scalingFactor)
        try c.encode(shiftFactor, forKey: .shiftFactor)
        try c.encode(latentsMean, forKey: .latentsMean)
        try c.encode(latentsStd, forKey: .latentsStd)
        try c.encode(forceUpcast, forKey: .forceUpcast)
        try c.encode(useQuantConv, forKey: .useQuantConv)
        try c.encode(usePostQuantConv, forKey: .usePostQuantConv)
        try c.encode(invertScaleLatents, forKey: .invertScaleLatents)
    }

    // MARK: presets

    /// The CogVideoX-2b VAE (diffusers' defaults): 4 levels [128, 256, 256, 512], 16 latent channels, 8×8×4.
    public static let cogVideoX = VideoVAEConfig()

    /// A tiny configuration for tests: 4 levels [8, 8, 8, 16] (so still 8×8 spatial and 4× temporal), 4 latent
    /// channels, one ResNet per level, 4 groups.
    public static let tiny = VideoVAEConfig(
        blockOutChannels: [8, 8, 8, 16], latentChannels: 4, layersPerBlock: 1, normNumGroups: 4, sampleHeight: 16,
        sampleWidth: 24, scalingFactor: 1)

    /// The small VAE of the shipped model, trained on 64×64 Shapes clips: 4 levels [32, 64, 64, 128] (8×8×4),
    /// 16 latent channels as CogVideoX and Goku, one ResNet per level, 16 groups.
    public static let small = VideoVAEConfig(
        blockOutChannels: [32, 64, 64, 128], latentChannels: 16, layersPerBlock: 1, normNumGroups: 16,
        sampleHeight: 64, sampleWidth: 64, scalingFactor: 1)

    // MARK: derived

    /// Height and width reduction, 2^(levels − 1): 8 for four levels.
    public var spatialCompression: Int { 1 << (blockOutChannels.count - 1) }

    /// Temporal reduction as an integer, 4.
    public var temporalCompression: Int { Int(temporalCompressionRatio) }

    /// How many levels halve time: log2(temporal compression).
    public var temporalLevels: Int { Int(log2(temporalCompressionRatio).rounded()) }

    /// Latent frames for `frames` input frames (1 + 4k → 1 + k).
    public func latentFrames(forFrames frames: Int) -> Int { 1 + (frames - 1) / temporalCompression }

    /// Checks every field, naming the first bad one.
    /// - Throws: `VideoVAEError.invalidConfig` with the JSON key of the bad field.
    public func validate() throws {
        func fail(_ field: CodingKeys, _ reason: String) -> VideoVAEError {
            .invalidConfig(file: nil, field: field.rawValue, reason: reason)
        }
        if inChannels <= 0 { throw fail(.inChannels, "must be positive, got \(inChannels)") }
        if outChannels <= 0 { throw fail(.outChannels, "must be positive, got \(outChannels)") }
        let levels = blockOutChannels.count
        if levels == 0 { throw fail(.blockOutChannels, "must not be empty") }
        if let bad = blockOutChannels.first(where: { $0 <= 0 }) {
            throw fail(.blockOutChannels, "channels must be positive, got \(bad)")
        }
        if downBlockTypes.count != levels {
            throw fail(.downBlockTypes, "has \(downBlockTypes.count) entries, block_out_channels has \(levels)")
        }
        if let bad = downBlockTypes.first(where: { $0 != "CogVideoXDownBlock3D" }) {
            throw fail(.downBlockTypes, "unsupported block type '\(bad)' (only CogVideoXDownBlock3D)")
        }
        if upBlockTypes.count != levels {
            throw fail(.upBlockTypes, "has \(upBlockTypes.count) entries, block_out_channels has \(levels)")
        }
        if let bad = upBlockTypes.first(where: { $0 != "CogVideoXUpBlock3D" }) {
            throw fail(.upBlockTypes, "unsupported block type '\(bad)' (only CogVideoXUpBlock3D)")
        }
        if latentChannels <= 0 { throw fail(.latentChannels, "must be positive, got \(latentChannels)") }
        if layersPerBlock <= 0 { throw fail(.layersPerBlock, "must be positive, got \(layersPerBlock)") }
        if actFn != "silu" && actFn != "swish" { throw fail(.actFn, "unsupported activation '\(actFn)' (only silu)") }
        if !(normEps > 0) || !normEps.isFinite { throw fail(.normEps, "must be positive, got \(normEps)") }
        if normNumGroups <= 0 { throw fail(.normNumGroups, "must be positive, got \(normNumGroups)") }
        if let bad = blockOutChannels.first(where: { $0 % normNumGroups != 0 }) {
            throw fail(.normNumGroups, "\(bad) channels are not divisible into \(normNumGroups) groups")
        }
        let ratio = temporalCompressionRatio
        guard ratio >= 1, ratio.isFinite, ratio == ratio.rounded(), Int(ratio).nonzeroBitCount == 1 else {
            throw fail(.temporalCompressionRatio, "must be a power of two ≥ 1, got \(ratio)")
        }
        if temporalLevels > levels - 1 {
            throw fail(
                .temporalCompressionRatio,
                "\(Int(ratio))× needs \(temporalLevels) downsampling levels, the model has \(levels - 1)")
        }
        if sampleHeight <= 0 { throw fail(.sampleHeight, "must be positive, got \(sampleHeight)") }
        if sampleWidth <= 0 { throw fail(.sampleWidth, "must be positive, got \(sampleWidth)") }
        if !scalingFactor.isFinite || scalingFactor == 0 {
            throw fail(.scalingFactor, "must be finite and non-zero, got \(scalingFactor)")
        }
        if let shift = shiftFactor, !shift.isFinite { throw fail(.shiftFactor, "must be finite, got \(shift)") }
        if latentsMean != nil { throw fail(.latentsMean, "per-channel latent statistics are unsupported (use null)") }
        if latentsStd != nil { throw fail(.latentsStd, "per-channel latent statistics are unsupported (use null)") }
        if invertScaleLatents { throw fail(.invertScaleLatents, "unsupported (use false)") }
    }
}

/// Why the VAE could not be built, loaded or run on an input.
public enum VideoVAEError: Error, CustomStringConvertible, Equatable {
    /// A configuration field is bad; `file` is the config file when the config came from one.
    case invalidConfig(file: String?, field: String, reason: String)
    /// An input tensor does not fit the VAE (`what` names it: "video", "latent").
    case invalidInput(what: String, reason: String)

    /// A one-line message naming the file, field or input.
    public var description: String {
        switch self {
        case .invalidConfig(let file, let field, let reason):
            return "\(file ?? "VAE config"): field '\(field)': \(reason)"
        case .invalidInput(let what, let reason):
            return "\(what): \(reason)"
        }
    }
}
