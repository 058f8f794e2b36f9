import Checkpoint
import Foundation
import TensorCore
import VideoIO

/// The LAION aesthetic predictor (the paper's aesthetic filter): a CLIP image embedding, L2-normalised, through a
/// stack of linear layers ("improved aesthetic predictor": 768 → 1024 → 128 → 64 → 16 → 1 for ViT-L/14, dropouts
/// between and no activation). Scores are roughly 1–10.
///
/// - CLIP: a Hugging Face folder of `CLIPVisionModelWithProjection` or `CLIPModel` (`config.json` with or without a
///   nested `vision_config`, `model.safetensors` under transformers' names; the text tower is ignored).
/// - Head: a safetensors file with `layers.<n>.weight` / `.bias`, applied in increasing n (convert the published
///   `.pth` with `safetensors.torch.save_file(torch.load(path))`).
/// Frames are resized (bilinear, squashed) to the CLIP input size and normalised with CLIP's mean and standard
/// deviation; the reference pipeline crops the centre instead, which drops the frame's sides. Forward passes are
/// serialised by a lock (the tensor engine's pool is shared by the process).
public final class LAIONAestheticScorer: AestheticScorer, @unchecked Sendable {
    /// The CLIP vision architecture read from config.json.
    public struct Configuration: Sendable, Equatable {
        /// Width D (1024 for ViT-L/14).
        public var hiddenSize: Int
        /// MLP width (4096).
        public var intermediateSize: Int
        /// Layers (24).
        public var layerCount: Int
        /// Heads (16).
        public var headCount: Int
        /// Input side (224).
        public var imageSize: Int
        /// Patch side (14).
        public var patchSize: Int
        /// Embedding size after the projection (768).
        public var projectionSize: Int
        /// Layer norm epsilon (1e-5).
        public var layerNormEps: Double
    }

    /// "laion-aesthetic-clip<hidden size>".
    public var name: String { "laion-aesthetic-clip\(configuration.hiddenSize)" }
    /// The CLIP architecture.
    public let configuration: Configuration
    private let weights: [String: Tensor]
    private let head: [(weight: Tensor, bias: Tensor)]
    private let lock = NSLock()
    static let mean: [Float] = [0.48145466, 0.4578275, 0.40821073]
    static let standardDeviation: [Float] = [0.26862954, 0.26130258, 0.27577711]

    /// Loads the CLIP folder and the head file; errors name the file and the field or tensor.
    public init(clipFolder: URL, headWeights: URL) throws {
        let configURL = clipFolder.appendingPathComponent("config.json")
        guard let data = try? Data(contentsOf: configURL),
            let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        else { throw CurationError.file(path: configURL.path, reason: "cannot read a JSON object") }
        let vision = json["vision_config"] as? [String: Any] ?? json
        func int(_ key: String) throws -> Int {
            guard let value = (vision[key] ?? json[key]) as? Int else {
                throw CurationError.file(path: configURL.path, reason: "field '\(key)' is missing or not an integer")
            }
            return value
        }
        if let act = vision["hidden_act"] as? String, act != "quick_gelu" {
            throw CurationError.file(path: configURL.path, reason: "field 'hidden_act': \(act) is not supported")
        }
        let c = Configuration(
            hiddenSize: try int("hidden_size"), intermediateSize: try int("intermediate_size"),
            layerCount: try int("num_hidden_layers"), headCount: try int("num_attention_heads"),
            imageSize: try int("image_size"), patchSize: try int("patch_size"),
            projectionSize: try int("projection_dim"), layerNormEps: vision["layer_norm_eps"] as? Double ?? 1e-5)
        guard c.hiddenSize % c.headCount == 0, c.imageSize % c.patchSize == 0 else {
            throw CurationError.file(path: configURL.path, reason: "inconsistent CLIP vision configuration \(c)")
        }
        configuration = c
        let source = try StateDict.open(clipFolder)
        let (d, p, l) = (c.hiddenSize, c.patchSize, (c.imageSize / c.patchSize) * (c.imageSize / c.patchSize) + 1)
        var expected: [String: [Int]] = [
            "vision_model.embeddings.class_embedding": [d],
            "vision_model.embeddings.patch_embedding.weight": [d, 3, p, p],
            "vision_model.embeddings.position_embedding.weight": [l, d],
            "visual_projection.weight": [c.projectionSize, d],
        ]
        for n in ["pre_layrnorm", "post_layernorm"] {
            expected["vision_model.\(n).weight"] = [d]
            expected["vision_model.\(n).bias"] = [d]
        }
        for i in 0..<c.layerCount {
            let k = "vision_model.encoder.layers.\(i)."
            for n in ["layer_norm1", "layer_norm2"] {
                expected[k + n + ".weight"] = [d]
                expected[k + n + ".bias"] = [d]
            }
            for n in ["q_proj", "k_proj", "v_proj", "out_proj"] {
                expected[k + "self_attn.\(n).weight"] = [d, d]
                expected[k + "self_attn.\(n).bias"] = [d]
            }
            expected[k + "mlp.fc1.weight"] = [c.intermediateSize, d]
            expected[k + "mlp.fc1.bias"] = [c.intermediateSize]
            expected[k + "mlp.fc2.weight"] = [d, c.intermediateSize]
            expected[k + "mlp.fc2.bias"] = [d]
        }
        var loaded: [String: Tensor] = [:]
        for (key, shape) in expected {
            guard source.contains(key) else {
                throw CurationError.file(path: source.path, reason: "missing tensor '\(key)'")
            }
            loaded[key] = try source.tensor(key, shape: shape)
        }
        weights = loaded

        let headSource = try StateDict.open(headWeights)
        let indices = Set(
            headSource.names.compactMap { name -> Int? in
                let parts = name.split(separator: ".")
                return parts.count == 3 && parts[0] == "layers" ? Int(parts[1]) : nil
            }
        ).sorted()
        guard !indices.isEmpty else {
            throw CurationError.file(path: headWeights.path, reason: "no 'layers.<n>.weight' tensors")
        }
        var layers: [(Tensor, Tensor)] = []
        var width = c.projectionSize
        for n in indices {
            let weight = try headSource.tensor("layers.\(n).weight")
            guard weight.shape.count == 2, weight.shape[1] == width else {
                throw CurationError.file(
                    path: headWeights.path,
                    reason: "tensor 'layers.\(n).weight' has shape \(weight.shape), expected (_, \(width))")
            }
            layers.append((weight, try headSource.tensor("layers.\(n).bias", shape: [weight.shape[0]])))
            width = weight.shape[0]
        }
        guard width == 1 else {
            throw CurationError.file(
                path: headWeights.path, reason: "the last layer gives \(width) outputs, expected 1")
        }
        head = layers
    }

    /// CLIP image embeddings (B, projection) of normalised pixels (B, 3, S, S).
    public func imageEmbeddings(_ pixels: Tensor) -> Tensor {
        let c = configuration
        precondition(
            pixels.shape.count == 4 && pixels.shape[1] == 3 && pixels.shape[2] == c.imageSize
                && pixels.shape[3] == c.imageSize,
            "LAIONAestheticScorer: expected (B, 3, \(c.imageSize), \(c.imageSize)), got \(pixels.shape)")
        let (b, d, p) = (pixels.shape[0], c.hiddenSize, c.patchSize)
        let g = c.imageSize / p
        let length = g * g + 1
        let heads = c.headCount
        let w = weights
        // Patch embedding (a bias-free stride-p convolution) as a GEMM over flattened patches.
        let patches = pixels.reshape([b, 3, g, p, g, p]).permute([0, 2, 4, 1, 3, 5]).reshape([b, g * g, 3 * p * p])
        var x = Tensor.linear(
            patches, weight: w["vision_model.embeddings.patch_embedding.weight"]!.reshape([d, 3 * p * p]), bias: nil)
        let cls = w["vision_model.embeddings.class_embedding"]!.reshape([1, 1, d]).expand([b, 1, d])
        x = Tensor.concat([cls, x], axis: 1) + w["vision_model.embeddings.position_embedding.weight"]!  // (B, L, D)
        func norm(_ t: Tensor, _ name: String) -> Tensor {
            Tensor.layerNorm(t, weight: w[name + ".weight"], bias: w[name + ".bias"], eps: c.layerNormEps)
        }
        x = norm(x, "vision_model.pre_layrnorm")
        for i in 0..<c.layerCount {
            let k = "vision_model.encoder.layers.\(i)."
            func linear(_ t: Tensor, _ name: String) -> Tensor {
                Tensor.linear(t, weight: w[k + name + ".weight"]!, bias: w[k + name + ".bias"]!)
            }
            let h = norm(x, k + "layer_norm1")
            let q = linear(h, "self_attn.q_proj").reshape([b, length, heads, d / heads])  // (B, L, Nh, Dh)
            let kk = linear(h, "self_attn.k_proj").reshape([b, length, heads, d / heads])
            let v = linear(h, "self_attn.v_proj").reshape([b, length, heads, d / heads])
            x = x + linear(Tensor.attention(q, kk, v).reshape([b, length, d]), "self_attn.out_proj")
            let m = linear(norm(x, k + "layer_norm2"), "mlp.fc1")
            x = x + linear(m * (m * 1.702).sigmoid(), "mlp.fc2")  // quick GELU
        }
        let pooled = norm(x.slice(axis: 1, 0, 1).reshape([b, d]), "vision_model.post_layernorm")
        return Tensor.linear(pooled, weight: w["visual_projection.weight"]!, bias: nil)
    }

    /// Aesthetic scores (B) of normalised pixels (B, 3, S, S).
    public func scores(_ pixels: Tensor) -> [Double] {
        let embeddings = imageEmbeddings(pixels)
        var x = embeddings / (embeddings * embeddings).sum(axis: 1, keepDims: true).sqrt()
        for layer in head { x = Tensor.linear(x, weight: layer.weight, bias: layer.bias) }
        return x.scalars.map(Double.init)
    }

    /// The score of one frame.
    public func score(_ frame: RGBFrame) throws -> Double {
        let s = configuration.imageSize
        let pixels = normalizedPixels(frame, size: s, mean: Self.mean, standardDeviation: Self.standardDeviation)
        lock.lock()
        defer { lock.unlock() }
        return scores(Tensor(shape: [1, 3, s, s], scalars: pixels))[0]
    }
}
