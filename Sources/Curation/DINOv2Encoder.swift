import Checkpoint
import Foundation
import TensorCore
import VideoIO

/// DINOv2 (a ViT trained by self-distillation) as the shot-refinement `ImageEncoder`, the paper's choice: the
/// embedding is the CLS token after the final layer norm (transformers' `pooler_output`).
///
/// Loads a Hugging Face folder (`config.json` + `model.safetensors`, e.g. facebook/dinov2-small) with either the hub's
/// key names (`attention.attention.query`) or transformers 5's (`attention.q_proj`). Frames are resized (bilinear,
/// squashed, no crop) to the checkpoint's `image_size`, so the position embeddings are used at their trained grid
/// and need no interpolation, and normalised with the ImageNet mean and standard deviation, as the DINOv2 processor
/// does. Forward passes are serialised by a lock: the tensor engine's thread pool is shared by the whole process.
public final class DINOv2Encoder: ImageEncoder, @unchecked Sendable {
    /// The architecture fields read from config.json.
    public struct Configuration: Codable, Sendable, Equatable {
        /// Width D (384 for ViT-S/14).
        public var hiddenSize: Int
        /// Transformer layers (12 for ViT-S/14).
        public var layerCount: Int
        /// Attention heads (6 for ViT-S/14).
        public var headCount: Int
        /// MLP width over D (4).
        public var mlpRatio: Int
        /// Patch side in pixels (14).
        public var patchSize: Int
        /// Input side in pixels the position embeddings were trained for (518).
        public var imageSize: Int
        /// Layer norm epsilon (1e-6).
        public var layerNormEps: Double

        enum CodingKeys: String, CodingKey {
            case hiddenSize = "hidden_size", layerCount = "num_hidden_layers", headCount = "num_attention_heads"
            case mlpRatio = "mlp_ratio", patchSize = "patch_size", imageSize = "image_size"
            case layerNormEps = "layer_norm_eps"
        }
    }

    /// "dinov2-<hidden size>".
    public var name: String { "dinov2-\(configuration.hiddenSize)" }
    /// The architecture.
    public let configuration: Configuration
    private let weights: [String: Tensor]
    private let lock = NSLock()

    /// Loads `folder/config.json` and the weights (any layout `StateDict.open` reads). Throws naming the file and the
    /// field or key when something is missing, mis-shaped or unsupported (SwiGLU variants, other activations).
    public convenience init(folder: URL) throws {
        let configURL = folder.appendingPathComponent("config.json")
        let data: Data
        do { data = try Data(contentsOf: configURL) } catch {
            throw CurationError.file(path: configURL.path, reason: "cannot read")
        }
        let configuration: Configuration
        do { configuration = try JSONDecoder().decode(Configuration.self, from: data) } catch {
            throw CurationError.file(path: configURL.path, reason: "not a DINOv2 config: \(error)")
        }
        if let extra = try? JSONSerialization.jsonObject(with: data) as? [String: Any] {
            if extra["use_swiglu_ffn"] as? Bool == true {
                throw CurationError.file(
                    path: configURL.path, reason: "field 'use_swiglu_ffn': SwiGLU is not supported")
            }
            if let act = extra["hidden_act"] as? String, act != "gelu" {
                throw CurationError.file(path: configURL.path, reason: "field 'hidden_act': \(act) is not supported")
            }
        }
        try self.init(configuration: configuration, source: try StateDict.open(folder))
    }

    /// An encoder from a configuration and a tensor source; every tensor's shape is checked.
    public init(configuration c: Configuration, source: any TensorSource) throws {
        guard c.hiddenSize > 0, c.headCount > 0, c.hiddenSize % c.headCount == 0, c.patchSize > 0,
            c.imageSize % c.patchSize == 0, c.layerCount > 0, c.mlpRatio > 0
        else { throw CurationError.file(path: source.path, reason: "inconsistent DINOv2 configuration \(c)") }
        configuration = c
        let d = c.hiddenSize
        let grid = c.imageSize / c.patchSize
        var expected: [String: [Int]] = [
            "embeddings.cls_token": [1, 1, d], "embeddings.position_embeddings": [1, grid * grid + 1, d],
            "embeddings.patch_embeddings.projection.weight": [d, 3, c.patchSize, c.patchSize],
            "embeddings.patch_embeddings.projection.bias": [d], "layernorm.weight": [d], "layernorm.bias": [d],
        ]
        for i in 0..<c.layerCount {
            let p = "encoder.layer.\(i)."
            for n in ["norm1", "norm2"] {
                expected[p + n + ".weight"] = [d]
                expected[p + n + ".bias"] = [d]
            }
            for n in ["query", "key", "value", "output"] {
                expected[p + n + ".weight"] = [d, d]
                expected[p + n + ".bias"] = [d]
            }
            expected[p + "layer_scale1.lambda1"] = [d]
            expected[p + "layer_scale2.lambda1"] = [d]
            expected[p + "mlp.fc1.weight"] = [d * c.mlpRatio, d]
            expected[p + "mlp.fc1.bias"] = [d * c.mlpRatio]
            expected[p + "mlp.fc2.weight"] = [d, d * c.mlpRatio]
            expected[p + "mlp.fc2.bias"] = [d]
        }
        var loaded: [String: Tensor] = [:]
        for (key, shape) in expected {
            let stored = Self.storedNames(key).first { source.contains($0) }
            guard let stored else {
                throw CurationError.file(path: source.path, reason: "missing tensor '\(Self.storedNames(key)[0])'")
            }
            loaded[key] = try source.tensor(stored, shape: shape)
        }
        weights = loaded
    }

    /// The names a tensor may have in a checkpoint: the hub's, then transformers 5's.
    private static func storedNames(_ key: String) -> [String] {
        let renames = [
            (".query.", ".attention.attention.query.", ".attention.q_proj."),
            (".key.", ".attention.attention.key.", ".attention.k_proj."),
            (".value.", ".attention.attention.value.", ".attention.v_proj."),
            (".output.", ".attention.output.dense.", ".attention.o_proj."),
        ]
        for (short, hub, modern) in renames where key.contains(short) && key.hasPrefix("encoder.") {
            return [key.replacingOccurrences(of: short, with: hub), key.replacingOccurrences(of: short, with: modern)]
        }
        return [key]
    }

    /// The model on normalised pixels (B, 3, S, S) with S = imageSize.
    /// - Returns: the last hidden state (B, 1 + N, D) and the pooled CLS token (B, D).
    public func forward(_ pixels: Tensor) -> (lastHiddenState: Tensor, pooled: Tensor) {
        let c = configuration
        precondition(
            pixels.shape.count == 4 && pixels.shape[1] == 3 && pixels.shape[2] == c.imageSize
                && pixels.shape[3] == c.imageSize,
            "DINOv2Encoder.forward: expected (B, 3, \(c.imageSize), \(c.imageSize)), got \(pixels.shape)")
        let (b, d, p) = (pixels.shape[0], c.hiddenSize, c.patchSize)
        let g = c.imageSize / p
        let w = weights
        // Patch embedding: the stride-p convolution as a GEMM over flattened patches.
        let patches = pixels.reshape([b, 3, g, p, g, p]).permute([0, 2, 4, 1, 3, 5]).reshape([b, g * g, 3 * p * p])
        let projection = w["embeddings.patch_embeddings.projection.weight"]!.reshape([d, 3 * p * p])
        var x = Tensor.linear(patches, weight: projection, bias: w["embeddings.patch_embeddings.projection.bias"]!)
        x = Tensor.concat([w["embeddings.cls_token"]!.expand([b, 1, d]), x], axis: 1)  // (B, L, D), L = 1 + N
        x = x + w["embeddings.position_embeddings"]!
        let length = g * g + 1
        let heads = c.headCount
        for i in 0..<c.layerCount {
            let k = "encoder.layer.\(i)."
            func linear(_ input: Tensor, _ name: String) -> Tensor {
                Tensor.linear(input, weight: w[k + name + ".weight"]!, bias: w[k + name + ".bias"]!)
            }
            let h = Tensor.layerNorm(x, weight: w[k + "norm1.weight"], bias: w[k + "norm1.bias"], eps: c.layerNormEps)
            let q = linear(h, "query").reshape([b, length, heads, d / heads])  // (B, L, Nh, Dh)
            let kk = linear(h, "key").reshape([b, length, heads, d / heads])
            let v = linear(h, "value").reshape([b, length, heads, d / heads])
            let attended = Tensor.attention(q, kk, v).reshape([b, length, d])
            x = x + linear(attended, "output") * w[k + "layer_scale1.lambda1"]!
            let h2 = Tensor.layerNorm(x, weight: w[k + "norm2.weight"], bias: w[k + "norm2.bias"], eps: c.layerNormEps)
            x = x + linear(linear(h2, "mlp.fc1").gelu(), "mlp.fc2") * w[k + "layer_scale2.lambda1"]!
        }
        x = Tensor.layerNorm(x, weight: w["layernorm.weight"], bias: w["layernorm.bias"], eps: c.layerNormEps)
        return (x, x.slice(axis: 1, 0, 1).reshape([b, d]))
    }

    /// ImageNet normalisation constants used by the DINOv2 processor.
    static let mean: [Float] = [0.485, 0.456, 0.406]
    static let standardDeviation: [Float] = [0.229, 0.224, 0.225]

    /// The pooled CLS embedding of a frame (resized to imageSize², normalised).
    public func embed(_ frame: RGBFrame) -> [Float] {
        let s = configuration.imageSize
        let pixels = normalizedPixels(frame, size: s, mean: Self.mean, standardDeviation: Self.standardDeviation)
        lock.lock()
        defer { lock.unlock() }
        return forward(Tensor(shape: [1, 3, s, s], scalars: pixels)).pooled.scalars
    }
}
