import Checkpoint
import Foundation

/// The T5 encoder's architecture, with the key names of a Hugging Face `config.json` (extra keys are ignored).
///
/// `feed_forward_proj` is what Hugging Face configs carry: "relu" (original T5), "gated-gelu" (T5 v1.1 / Flan-T5,
/// which transformers maps to the tanh approximation `gelu_new`), or more generally "[gated-]act" with act one of
/// relu, gelu (exact), gelu_new, silu. `dense_act_fn` and `is_gated_act`, written by transformers, must agree with it
/// when present.
public struct T5Config: Codable, Equatable, Sendable {
    /// Model width D (2048 for Flan-T5-XL).
    public var dModel: Int
    /// Width of one attention head (64).
    public var dKV: Int
    /// Hidden width of the feed-forward block (5120 for Flan-T5-XL).
    public var dFF: Int
    /// Encoder layers (24).
    public var numLayers: Int
    /// Attention heads (32).
    public var numHeads: Int
    /// Relative-position buckets (32).
    public var relativeAttentionNumBuckets: Int
    /// Distance beyond which all positions share the last bucket (128).
    public var relativeAttentionMaxDistance: Int
    /// Feed-forward kind: "gated-gelu" or "relu" (see the type's notes).
    public var feedForwardProj: String
    /// RMS norm epsilon (1e-6).
    public var layerNormEpsilon: Double
    /// Embedding rows (32128).
    public var vocabSize: Int
    /// The activation transformers derived from `feed_forward_proj` ("gelu_new"), if written.
    public var denseActFn: String?
    /// Whether the feed-forward is gated, if written.
    public var isGatedAct: Bool?

    enum CodingKeys: String, CodingKey {
        case dModel = "d_model", dKV = "d_kv", dFF = "d_ff", numLayers = "num_layers", numHeads = "num_heads"
        case relativeAttentionNumBuckets = "relative_attention_num_buckets"
        case relativeAttentionMaxDistance = "relative_attention_max_distance"
        case feedForwardProj = "feed_forward_proj", layerNormEpsilon = "layer_norm_epsilon", vocabSize = "vocab_size"
        case denseActFn = "dense_act_fn", isGatedAct = "is_gated_act"
    }

    /// A configuration (`isGated` and `activation` are derived from `feedForwardProj`).
    public init(
        dModel: Int, dKV: Int, dFF: Int, numLayers: Int, numHeads: Int, relativeAttentionNumBuckets: Int = 32,
        relativeAttentionMaxDistance: Int = 128, feedForwardProj: String = "gated-gelu", layerNormEpsilon: Double = 1e-6,
        vocabSize: Int = 32128
    ) {
        self.dModel = dModel
        self.dKV = dKV
        self.dFF = dFF
        self.numLayers = numLayers
        self.numHeads = numHeads
        self.relativeAttentionNumBuckets = relativeAttentionNumBuckets
        self.relativeAttentionMaxDistance = relativeAttentionMaxDistance
        self.feedForwardProj = feedForwardProj
        self.layerNormEpsilon = layerNormEpsilon
        self.vocabSize = vocabSize
        // `dense_act_fn` / `is_gated_act` stay nil: they are derived from `feed_forward_proj`, and only checked
        // against it when a config.json carries them (so changing `feedForwardProj` on a preset stays consistent).
        denseActFn = nil
        isGatedAct = nil
    }

    /// google/flan-t5-xl (the text encoder Goku uses): 2048 wide, 24 layers, 32 heads of 64, d_ff 5120, gated GELU.
    public static let flanT5XL = T5Config(dModel: 2048, dKV: 64, dFF: 5120, numLayers: 24, numHeads: 32)
    /// google/flan-t5-small: 512 wide, 8 layers, 6 heads of 64, d_ff 1024, gated GELU.
    public static let flanT5Small = T5Config(dModel: 512, dKV: 64, dFF: 1024, numLayers: 8, numHeads: 6)
    /// A tiny configuration for tests: 32 wide, 2 layers, 4 heads of 8, d_ff 64, 8 buckets, vocabulary 512.
    public static let tiny = T5Config(
        dModel: 32, dKV: 8, dFF: 64, numLayers: 2, numHeads: 4, relativeAttentionNumBuckets: 8,
        relativeAttentionMaxDistance: 16, vocabSize: 512)

    /// The feed-forward activation.
    public enum FeedForwardActivation: String, Sendable {
        /// max(0, x).
        case relu
        /// Exact (erf) GELU.
        case gelu
        /// Tanh-approximated GELU (transformers' `gelu_new`).
        case geluNew = "gelu_new"
        /// x·sigmoid(x).
        case silu
    }

    /// The parsed `feed_forward_proj`: whether gated and which activation.
    /// - Throws: `CheckpointError.invalidConfig` naming `feed_forward_proj` for anything else.
    public static func parse(_ proj: String) throws -> (gated: Bool, activation: FeedForwardActivation) {
        let gated = proj.hasPrefix("gated-")
        let name = gated ? String(proj.dropFirst(6)) : proj
        // transformers: "gated-gelu" means gelu_new (T5 v1.1's original tanh GELU), plain "gelu" stays exact.
        let activationName = proj == "gated-gelu" ? "gelu_new" : name
        guard let activation = FeedForwardActivation(rawValue: activationName) else {
            throw CheckpointError.invalidConfig(
                file: "config.json", field: "feed_forward_proj",
                reason: "'\(proj)' is not supported (relu, gelu, gelu_new, silu, optionally 'gated-')")
        }
        return (gated, activation)
    }

    /// Whether the feed-forward is gated (`wi_0`, `wi_1`) rather than plain (`wi`).
    public var isGated: Bool { (try? Self.parse(feedForwardProj).gated) ?? false }

    /// The feed-forward activation (ReLU when `feed_forward_proj` is invalid; `validate()` reports that).
    public var activation: FeedForwardActivation { (try? Self.parse(feedForwardProj).activation) ?? .relu }

    /// Checks every field; `file` names the source in errors.
    /// - Throws: `CheckpointError.invalidConfig` naming the field.
    public func validate(file: String = "config.json") throws {
        func bad(_ field: String, _ reason: String) -> CheckpointError {
            .invalidConfig(file: file, field: field, reason: reason)
        }
        for (name, value) in [
            ("d_model", dModel), ("d_kv", dKV), ("d_ff", dFF), ("num_layers", numLayers), ("num_heads", numHeads),
            ("relative_attention_num_buckets", relativeAttentionNumBuckets),
            ("relative_attention_max_distance", relativeAttentionMaxDistance), ("vocab_size", vocabSize),
        ] where value <= 0 {
            throw bad(name, "must be positive, got \(value)")
        }
        // Bidirectional buckets: half per direction, half of those exact, so at least 4 are needed.
        guard relativeAttentionNumBuckets >= 4 else { throw bad("relative_attention_num_buckets", "must be at least 4") }
        guard relativeAttentionMaxDistance > relativeAttentionNumBuckets / 4 else {
            throw bad("relative_attention_max_distance", "must exceed relative_attention_num_buckets / 4")
        }
        guard layerNormEpsilon > 0, layerNormEpsilon.isFinite else {
            throw bad("layer_norm_epsilon", "must be positive and finite, got \(layerNormEpsilon)")
        }
        let parsed: (gated: Bool, activation: FeedForwardActivation)
        do { parsed = try Self.parse(feedForwardProj) } catch {
            throw bad("feed_forward_proj", "'\(feedForwardProj)' is not supported (relu, gelu, gelu_new, silu, optionally 'gated-')")
        }
        if let denseActFn, denseActFn != parsed.activation.rawValue {
            throw bad("dense_act_fn", "'\(denseActFn)' disagrees with feed_forward_proj '\(feedForwardProj)'")
        }
        if let isGatedAct, isGatedAct != parsed.gated {
            throw bad("is_gated_act", "\(isGatedAct) disagrees with feed_forward_proj '\(feedForwardProj)'")
        }
    }

    /// Reads and validates `folder/config.json`.
    public static func read(from folder: URL) throws -> T5Config {
        let config = try ConfigFile.read(T5Config.self, from: folder)
        try config.validate(file: folder.appendingPathComponent(ConfigFile.defaultFileName).path)
        return config
    }
}
