import Checkpoint
import Foundation
import NN
import TensorCore

/// The T5 encoder stack (`transformers.T5EncoderModel`): token embedding, blocks of pre-norm self-attention with a
/// shared relative position bias and feed-forward, final norm. Keys are Hugging Face's: `shared.weight`,
/// `encoder.block.N.layer.0.SelfAttention.q.weight`, …, `encoder.final_layer_norm.weight`.
///
/// The relative position bias is computed once, by the first block's table, and added in every block (as in T5),
/// together with the padding mask: padded keys get `-Float.greatestFiniteMagnitude` (transformers adds
/// `finfo(float32).min`), so their softmax weight is exactly 0. Padded query positions are computed like any other
/// (they attend to the real tokens); callers mask them.
public final class T5EncoderModel: Module {
    /// The architecture.
    public let config: T5Config
    /// Token embedding (vocab, D), key `shared.weight`.
    @ModuleInfo(key: "shared") public var shared: Embedding
    /// The encoder proper, key `encoder`.
    @ModuleInfo(key: "encoder") var stack: T5Stack

    /// A model with random weights (transformers' initialisation, embedding N(0, 1)).
    public init(config: T5Config, generator: RandomGenerator = RandomGenerator(seed: 0)) {
        self.config = config
        shared = Embedding(config.vocabSize, config.dModel, generator: generator)
        stack = T5Stack(config: config, generator: generator)
    }

    /// The last hidden states of a batch of token ids.
    /// - Parameters:
    ///   - ids: (B, L) token ids, every row the same length, each id in 0..<vocab_size.
    ///   - attentionMask: (B, L), 1 for tokens and 0 for padding; nil attends to every position.
    /// - Returns: (B, L, D).
    public func encode(ids: [[Int]], attentionMask: [[Int]]? = nil) -> Tensor {
        let b = ids.count
        let l = ids.first?.count ?? 0
        precondition(b > 0 && l > 0 && ids.allSatisfy { $0.count == l }, "T5EncoderModel: ids must be (B, L), L > 0")
        let flat = ids.flatMap { $0 }
        precondition(flat.allSatisfy { (0..<config.vocabSize).contains($0) }, "T5EncoderModel: id out of vocabulary")
        let x = shared(flat, shape: [b, l])  // (B, L, D)
        var bias = stack.block[0].attentionLayer.selfAttention.positionBias(length: l)  // (1, Nh, L, L)
        if let attentionMask {
            precondition(attentionMask.count == b && attentionMask.allSatisfy { $0.count == l }, "mask must be (B, L)")
            let blocked = -Float.greatestFiniteMagnitude
            let additive = Tensor(
                shape: [b, 1, 1, l], scalars: attentionMask.flatMap { $0 }.map { $0 != 0 ? Float(0) : blocked })
            bias = bias + additive  // (B, Nh, L, L)
        }
        return stack(x, bias: bias)
    }

    /// Loads a Hugging Face model folder: `config.json` and `model.safetensors` or a sharded
    /// `model.safetensors.index.json`; F32, BF16 and F16 weights are converted to F32. The embedding may be stored as
    /// `shared.weight` or `encoder.embed_tokens.weight`; decoder and `lm_head` weights (a full T5 checkpoint) are
    /// ignored.
    /// - Throws: `CheckpointError` naming the file and the field or tensor (bad config, missing or mis-shaped weight).
    public static func load(from folder: URL) throws -> T5EncoderModel {
        let config = try T5Config.read(from: folder)
        let model = T5EncoderModel(config: config, generator: RandomGenerator(seed: 0))
        try model.loadWeights(from: StateDict.open(folder))
        return model
    }

    /// Copies the weights of `source` into the model (every parameter required, shapes checked).
    public func loadWeights(from source: any TensorSource) throws {
        var missing: [String] = []
        var mismatched: [CheckpointError.ShapeMismatch] = []
        var loaded: [(Tensor, Tensor)] = []
        for (key, parameter) in namedParameters() {
            var name = key
            if key == "shared.weight" && !source.contains(key) && source.contains("encoder.embed_tokens.weight") {
                name = "encoder.embed_tokens.weight"
            }
            guard source.contains(name) else {
                missing.append(key)
                continue
            }
            let info = try source.info(name)
            guard info.shape == parameter.shape else {
                mismatched.append(.init(key: name, found: info.shape, expected: parameter.shape))
                continue
            }
            loaded.append((parameter, try source.tensor(name, as: .float32)))
        }
        guard missing.isEmpty && mismatched.isEmpty else {
            throw CheckpointError.stateDictMismatch(
                file: source.path, missing: missing, unexpected: [], mismatched: mismatched)
        }
        for (parameter, value) in loaded { parameter.assign(value) }
    }
}

/// The `encoder` part: `block` and `final_layer_norm` (dropout is the identity at inference and not modelled).
final class T5Stack: Module {
    var block: [T5Block]
    @ModuleInfo(key: "final_layer_norm") var finalLayerNorm: T5LayerNorm

    init(config: T5Config, generator: RandomGenerator) {
        block = (0..<config.numLayers).map { T5Block(config: config, hasRelativeAttentionBias: $0 == 0, generator: generator) }
        finalLayerNorm = T5LayerNorm(config.dModel, eps: config.layerNormEpsilon)
    }

    /// - Parameters: x: (B, L, D); bias: (B or 1, Nh, L, L). - Returns: (B, L, D).
    func callAsFunction(_ x: Tensor, bias: Tensor) -> Tensor {
        var h = x
        for layer in block { h = layer(h, bias: bias) }
        return finalLayerNorm(h)
    }
}
