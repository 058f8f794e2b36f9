import Checkpoint
import Foundation

/// The architecture of a Goku Transformer (spec §3): a flat value saved as `config.json` beside the weights.
///
/// Choices the paper leaves open (spec §9), made here and used by every preset:
/// - patch 1×2×2 (t, h, w) over the VAE latent, the reading that reproduces the paper's 220K-token figure (§3.10);
/// - 3D RoPE with the head dimension cut into consecutive t, h, w groups (CogVideoX's 16/24/24 for Dh 64; an even
///   three-way 24/24/24 for Goku-1B's Dh 72), base 10000, images at t = 0;
/// - QK RMSNorm over the whole inner width (not per head), as the reference code, in both attentions;
/// - the cross-attention query is rotated by RoPE as in the reference code (`crossAttentionQueryRoPE`), keys never;
/// - the timestep embedder sees t·`timestepScale` (t·1000): DiT's sinusoidal features were designed for integer steps
///   up to 1000, and scaling t ∈ [0, 1] onto that range keeps their frequency spread useful (the DDPM baseline feeds
///   its steps through the same map, see `DDPMSchedule.modelTime`).
public struct GokuConfig: Codable, Equatable, Sendable {
    /// D, the token width (1152 for Goku-1B).
    public var hiddenSize: Int
    /// Number of Goku blocks (28).
    public var depth: Int
    /// Nh, attention heads; Dh = hiddenSize / headCount (64).
    public var headCount: Int
    /// FFN width / D (4).
    public var mlpRatio: Int
    /// C, latent channels of the VAE (16).
    public var inChannels: Int
    /// Patch extent (t, h, w) in latent cells ([1, 2, 2]).
    public var patchSize: [Int]
    /// Width of the text encoder's states the cross-attention reads (2048 for Flan-T5-XL).
    public var textDimension: Int
    /// Channels of each head given to the t, h and w rotations ([16, 24, 24]); each even, summing to Dh.
    public var ropeAxisDims: [Int]
    /// RoPE frequency base θ (10000).
    public var ropeBase: Double
    /// RMSNorm on queries and keys of both attentions (true).
    public var qkNorm: Bool
    /// Rotate the cross-attention queries by the visual tokens' RoPE angles, as the reference code does (true).
    public var crossAttentionQueryRoPE: Bool
    /// Image-to-video: the first frame's clean latent is concatenated on channels with the noisy latent (false).
    public var imageConditioning: Bool
    /// Predict a variance too (doubles the output channels; false: rectified flow predicts only the velocity).
    public var learnSigma: Bool
    /// Width of the sinusoidal timestep features (256).
    public var frequencyEmbeddingSize: Int
    /// Factor on t ∈ [0, 1] before the sinusoidal features (1000).
    public var timestepScale: Double
    /// ε of every LayerNorm and RMSNorm (1e-6).
    public var normEps: Double

    /// A configuration; unspecified fields take the values every preset uses.
    public init(
        hiddenSize: Int, depth: Int, headCount: Int, mlpRatio: Int = 4, inChannels: Int = 16,
        patchSize: [Int] = [1, 2, 2], textDimension: Int = 2048, ropeAxisDims: [Int], ropeBase: Double = 10000,
        qkNorm: Bool = true, crossAttentionQueryRoPE: Bool = true, imageConditioning: Bool = false,
        learnSigma: Bool = false, frequencyEmbeddingSize: Int = 256, timestepScale: Double = 1000,
        normEps: Double = 1e-6
    ) {
        self.hiddenSize = hiddenSize
        self.depth = depth
        self.headCount = headCount
        self.mlpRatio = mlpRatio
        self.inChannels = inChannels
        self.patchSize = patchSize
        self.textDimension = textDimension
        self.ropeAxisDims = ropeAxisDims
        self.ropeBase = ropeBase
        self.qkNorm = qkNorm
        self.crossAttentionQueryRoPE = crossAttentionQueryRoPE
        self.imageConditioning = imageConditioning
        self.learnSigma = learnSigma
        self.frequencyEmbeddingSize = frequencyEmbeddingSize
        self.timestepScale = timestepScale
        self.normEps = normEps
    }

    // MARK: Presets (spec Table 1)

    /// Goku-1B: 28 blocks, 1152 wide, 16 heads of 72 (the ImageNet pilot; DiT-XL/2's dimensions).
    public static let goku1B = GokuConfig(hiddenSize: 1152, depth: 28, headCount: 16, ropeAxisDims: [24, 24, 24])
    /// Goku-2B: 28 blocks, 1792 wide, 28 heads of 64.
    public static let goku2B = GokuConfig(hiddenSize: 1792, depth: 28, headCount: 28, ropeAxisDims: [16, 24, 24])
    /// Goku-8B: 40 blocks, 3072 wide, 48 heads of 64.
    public static let goku8B = GokuConfig(hiddenSize: 3072, depth: 40, headCount: 48, ropeAxisDims: [16, 24, 24])
    /// The shipped default model's transformer (11.87M parameters: 47 MB in float32, 24 MB stored as bfloat16, which
    /// the 50 MB budget for VAE + text encoder + transformer needs): 8 blocks, 256 wide, 4 heads of 64, reading 256-wide
    /// text states. `textDimension` and `inChannels` must match the text encoder and VAE it
    /// ships with; set them from those models' configs when they differ.
    public static let small = GokuConfig(
        hiddenSize: 256, depth: 8, headCount: 4, textDimension: 256, ropeAxisDims: [16, 24, 24])
    /// A tiny model for tests: 2 blocks, 32 wide, 2 heads of 16, 4 latent channels, 24-wide text.
    public static let tiny = GokuConfig(
        hiddenSize: 32, depth: 2, headCount: 2, inChannels: 4, textDimension: 24, ropeAxisDims: [4, 6, 6])

    /// The presets by their CLI names (`--preset goku-2b`).
    public static let presets: [String: GokuConfig] = [
        "goku-1b": .goku1B, "goku-2b": .goku2B, "goku-8b": .goku8B, "small": .small, "tiny": .tiny,
    ]

    // MARK: Derived sizes

    /// Dh, the width of one head.
    public var headDimension: Int { hiddenSize / headCount }
    /// Latent cells per patch, pt·ph·pw.
    public var patchVolume: Int { patchSize.reduce(1, *) }
    /// Channels entering the patch embedding: C, or 2C with image conditioning.
    public var embeddedChannels: Int { imageConditioning ? 2 * inChannels : inChannels }
    /// Channels predicted per latent cell: C, or 2C when a variance is learnt.
    public var outChannels: Int { learnSigma ? 2 * inChannels : inChannels }
    /// The FFN's hidden width, mlpRatio·D.
    public var ffnDimension: Int { mlpRatio * hiddenSize }

    /// The number of parameters of a model with this configuration, counted from the layer sizes without allocating.
    /// Must equal `GokuTransformer(config).parameterCount` (tested).
    public var parameterCount: Int {
        let d = hiddenSize
        let patchEmbed = embeddedChannels * patchVolume * d + d
        let timestep = frequencyEmbeddingSize * d + d + d * d + d
        let patchOut = patchVolume * outChannels
        let finalLayer = d * 2 * d + 2 * d + d * patchOut + patchOut
        return patchEmbed + timestep + depth * blockParameterCount + finalLayer
    }

    /// The parameters of one `GokuBlock` (the unit a sharded trainer gathers at a time).
    public var blockParameterCount: Int {
        let d = hiddenSize, ctx = textDimension
        let norms = qkNorm ? 2 * d : 0
        let adaLN = d * 6 * d + 6 * d
        let selfAttention = 4 * d * d + norms
        let crossAttention = 2 * d * d + 2 * ctx * d + norms
        let ffn = d * ffnDimension + ffnDimension + ffnDimension * d + d
        return adaLN + selfAttention + d + crossAttention + d + ffn  // + norm2, norm3 weights
    }

    /// Checks every field, naming the first bad one.
    /// - Throws: `GokuConfigError.invalidField`.
    public func validate() throws {
        func check(_ ok: Bool, _ field: String, _ reason: @autoclosure () -> String) throws {
            if !ok { throw GokuConfigError.invalidField(field, reason()) }
        }
        try check(hiddenSize > 0, "hiddenSize", "must be positive, got \(hiddenSize)")
        try check(depth > 0, "depth", "must be positive, got \(depth)")
        try check(headCount > 0, "headCount", "must be positive, got \(headCount)")
        try check(
            hiddenSize % headCount == 0, "headCount", "\(headCount) heads do not divide hiddenSize \(hiddenSize)")
        try check(mlpRatio > 0, "mlpRatio", "must be positive, got \(mlpRatio)")
        try check(inChannels > 0, "inChannels", "must be positive, got \(inChannels)")
        try check(
            patchSize.count == 3 && patchSize.allSatisfy { $0 > 0 }, "patchSize",
            "must be three positive extents (t, h, w), got \(patchSize)")
        try check(textDimension > 0, "textDimension", "must be positive, got \(textDimension)")
        try check(
            ropeAxisDims.count == 3 && ropeAxisDims.allSatisfy { $0 > 0 && $0 % 2 == 0 }, "ropeAxisDims",
            "must be three positive even widths (t, h, w), got \(ropeAxisDims)")
        try check(
            ropeAxisDims.reduce(0, +) == headDimension, "ropeAxisDims",
            "\(ropeAxisDims) sums to \(ropeAxisDims.reduce(0, +)), not the head dimension \(headDimension)")
        try check(ropeBase > 1 && ropeBase.isFinite, "ropeBase", "must be a finite number > 1, got \(ropeBase)")
        try check(
            frequencyEmbeddingSize > 0 && frequencyEmbeddingSize % 2 == 0, "frequencyEmbeddingSize",
            "must be positive and even, got \(frequencyEmbeddingSize)")
        try check(
            timestepScale > 0 && timestepScale.isFinite, "timestepScale", "must be positive, got \(timestepScale)")
        try check(normEps > 0 && normEps < 1, "normEps", "must lie in (0, 1), got \(normEps)")
    }

    /// Reads and validates `config.json` in `folder`.
    /// - Throws: `CheckpointError.invalidConfig` naming the file and field.
    public static func load(from folder: URL) throws -> GokuConfig {
        let config = try ConfigFile.read(GokuConfig.self, from: folder)
        do {
            try config.validate()
        } catch GokuConfigError.invalidField(let field, let reason) {
            throw CheckpointError.invalidConfig(
                file: folder.appendingPathComponent(ConfigFile.defaultFileName).path, field: field, reason: reason)
        }
        return config
    }

    /// Writes `config.json` into `folder` atomically.
    public func save(to folder: URL) throws { try ConfigFile.write(self, to: folder) }
}

/// A configuration field out of range.
public enum GokuConfigError: Error, Equatable, CustomStringConvertible {
    /// `field` is the property name; `reason` says what is wrong.
    case invalidField(String, String)

    /// "GokuConfig.depth: must be positive, got 0".
    public var description: String {
        switch self {
        case .invalidField(let field, let reason): return "GokuConfig.\(field): \(reason)"
        }
    }
}
