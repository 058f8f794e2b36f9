import Foundation
import NN
import TensorCore

/// T5's layer norm: x·rsqrt(mean(x²) + eps)·weight, no mean subtraction, no bias, the mean of squares in fp32
/// (`Tensor.rmsNorm`). Key: `weight`.
public final class T5LayerNorm: Module {
    /// (D), starts at 1.
    public let weight: Tensor
    /// Added to the mean of squares.
    public let eps: Double

    /// A norm over the last axis of width `dimension`.
    public init(_ dimension: Int, eps: Double) {
        weight = Tensor.ones([dimension]).asParameter()
        self.eps = eps
    }

    /// - Parameter x: (…, D). - Returns: (…, D).
    public func callAsFunction(_ x: Tensor) -> Tensor { Tensor.rmsNorm(x, weight: weight, eps: eps) }
}

/// T5's bidirectional self-attention with a learned, bucketed relative position bias. Keys: `q`, `k`, `v`, `o` and,
/// in the first layer only, `relative_attention_bias` (buckets, Nh).
///
/// No biases and no 1/√Dh scaling: T5 folds the scale into the initialisation of `q`. The attention is composed of
/// matmul + softmax rather than the flash kernel because it needs an additive (Nh, L, L) bias, which the kernel does
/// not take; T5 inputs are short (L ≤ 512), so the (B, Nh, L, L) scores are small, and every op has its gradient.
public final class T5Attention: Module {
    @ModuleInfo(key: "q") var query: Linear
    @ModuleInfo(key: "k") var key: Linear
    @ModuleInfo(key: "v") var value: Linear
    @ModuleInfo(key: "o") var output: Linear
    @ModuleInfo(key: "relative_attention_bias") var relativeAttentionBias: Embedding?
    let config: T5Config

    /// Random weights with transformers' T5 initialisation (normal, std D^-½ for q·(Dh)^-½, k, v, (Nh·Dh)^-½ for o).
    public init(config: T5Config, hasRelativeAttentionBias: Bool, generator: RandomGenerator) {
        self.config = config
        let inner = config.numHeads * config.dKV
        let d = Double(config.dModel)
        func linear(_ out: Int, _ inp: Int, std: Double) -> Linear {
            Linear(weight: Initializer.normal([out, inp], std: std, generator: generator).asParameter(), bias: nil)
        }
        query = linear(inner, config.dModel, std: 1 / (d * Double(config.dKV)).squareRoot())
        key = linear(inner, config.dModel, std: 1 / d.squareRoot())
        value = linear(inner, config.dModel, std: 1 / d.squareRoot())
        output = linear(config.dModel, inner, std: 1 / Double(inner).squareRoot())
        if hasRelativeAttentionBias {
            let table = Embedding(config.relativeAttentionNumBuckets, config.numHeads, generator: generator)
            table.weight.assign(Initializer.normal(table.weight.shape, std: 1 / d.squareRoot(), generator: generator))
            relativeAttentionBias = table
        } else {
            relativeAttentionBias = nil
        }
    }

    /// - Parameters:
    ///   - x: normalised hidden states, (B, L, D).
    ///   - bias: position bias plus padding mask, (B or 1, Nh, L, L), added to the scores.
    /// - Returns: (B, L, D).
    public func callAsFunction(_ x: Tensor, bias: Tensor) -> Tensor {
        let (b, l) = (x.shape[0], x.shape[1])
        let (nh, dh) = (config.numHeads, config.dKV)
        func heads(_ t: Tensor) -> Tensor { t.reshape([b, l, nh, dh]).permute([0, 2, 1, 3]) }  // (B, Nh, L, Dh)
        let q = heads(query(x)), k = heads(key(x)), v = heads(value(x))
        let scores = Tensor.matmul(q, k, transposeB: true) + bias  // (B, Nh, L, L), unscaled as in T5
        let weights = scores.softmax(axis: -1)
        let context = Tensor.matmul(weights, v).permute([0, 2, 1, 3]).reshape([b, l, nh * dh])  // (B, L, Nh·Dh)
        return output(context)
    }

    /// The position bias of a length-`length` sequence, (1, Nh, L, L); needs `relative_attention_bias`.
    public func positionBias(length: Int) -> Tensor {
        guard let table = relativeAttentionBias else { preconditionFailure("positionBias: layer has no bias table") }
        var buckets: [Int] = []
        buckets.reserveCapacity(length * length)
        for i in 0..<length {
            for j in 0..<length {
                buckets.append(
                    Self.bucket(
                        relativePosition: j - i, buckets: config.relativeAttentionNumBuckets,
                        maxDistance: config.relativeAttentionMaxDistance))
            }
        }
        // (L·L, Nh) → (Nh, L, L) → (1, Nh, L, L)
        return table(buckets).reshape([length, length, config.numHeads]).permute([2, 0, 1]).unsqueeze(0)
    }

    /// T5's bidirectional bucket of `relativePosition` (key minus query): half the buckets per direction; within a
    /// direction, distances below a quarter of the buckets get their own bucket, larger ones share logarithmically
    /// spaced buckets up to `maxDistance`. Computed in Float32 like transformers, so boundaries round the same way.
    public static func bucket(relativePosition: Int, buckets: Int, maxDistance: Int) -> Int {
        let half = buckets / 2
        var result = relativePosition > 0 ? half : 0
        let n = abs(relativePosition)
        let maxExact = half / 2
        if n < maxExact { return result + n }
        let ratio = Float(n) / Float(maxExact)
        let scale = Float(Foundation.log(Double(maxDistance) / Double(maxExact)))
        let large = maxExact + Int(Foundation.log(ratio) / scale * Float(half - maxExact))
        result += min(large, half - 1)
        return result
    }
}

/// T5's feed-forward block (`DenseReluDense`): `wo(act(wi_0 x) · wi_1 x)` when gated (v1.1 / Flan), `wo(act(wi x))`
/// otherwise. No biases.
public final class T5FeedForward: Module {
    @ModuleInfo(key: "wi") var input: Linear?
    @ModuleInfo(key: "wi_0") var gateInput: Linear?
    @ModuleInfo(key: "wi_1") var linearInput: Linear?
    @ModuleInfo(key: "wo") var output: Linear
    let activation: T5Config.FeedForwardActivation

    /// Random weights with transformers' initialisation (std D^-½ in, d_ff^-½ out).
    public init(config: T5Config, generator: RandomGenerator) {
        activation = config.activation
        func linear(_ out: Int, _ inp: Int) -> Linear {
            Linear(
                weight: Initializer.normal([out, inp], std: 1 / Double(inp).squareRoot(), generator: generator)
                    .asParameter(), bias: nil)
        }
        if config.isGated {
            input = nil
            gateInput = linear(config.dFF, config.dModel)
            linearInput = linear(config.dFF, config.dModel)
        } else {
            input = linear(config.dFF, config.dModel)
            gateInput = nil
            linearInput = nil
        }
        output = linear(config.dModel, config.dFF)
    }

    private func act(_ x: Tensor) -> Tensor {
        switch activation {
        case .relu: x.relu()
        case .gelu: x.gelu()
        case .geluNew: x.gelu(approximateTanh: true)
        case .silu: x.silu()
        }
    }

    /// - Parameter x: (B, L, D). - Returns: (B, L, D).
    public func callAsFunction(_ x: Tensor) -> Tensor {
        if let gateInput, let linearInput { return output(act(gateInput(x)) * linearInput(x)) }
        return output(act(input!(x)))
    }
}

/// `layer.0` of a T5 block: pre-norm self-attention with a residual. Keys: `SelfAttention`, `layer_norm`.
public final class T5SelfAttentionLayer: Module {
    @ModuleInfo(key: "SelfAttention") var selfAttention: T5Attention
    @ModuleInfo(key: "layer_norm") var layerNorm: T5LayerNorm

    init(config: T5Config, hasRelativeAttentionBias: Bool, generator: RandomGenerator) {
        selfAttention = T5Attention(config: config, hasRelativeAttentionBias: hasRelativeAttentionBias, generator: generator)
        layerNorm = T5LayerNorm(config.dModel, eps: config.layerNormEpsilon)
    }
}

/// `layer.1` of a T5 block: pre-norm feed-forward with a residual. Keys: `DenseReluDense`, `layer_norm`.
public final class T5FeedForwardLayer: Module {
    @ModuleInfo(key: "DenseReluDense") var feedForward: T5FeedForward
    @ModuleInfo(key: "layer_norm") var layerNorm: T5LayerNorm

    init(config: T5Config, generator: RandomGenerator) {
        feedForward = T5FeedForward(config: config, generator: generator)
        layerNorm = T5LayerNorm(config.dModel, eps: config.layerNormEpsilon)
    }
}

/// One encoder block: `layer.0` (attention) and `layer.1` (feed-forward).
public final class T5Block: Module {
    @ModuleInfo(key: "layer.0") var attentionLayer: T5SelfAttentionLayer
    @ModuleInfo(key: "layer.1") var feedForwardLayer: T5FeedForwardLayer

    /// A block; only the first has the relative-attention-bias table.
    public init(config: T5Config, hasRelativeAttentionBias: Bool, generator: RandomGenerator) {
        attentionLayer = T5SelfAttentionLayer(
            config: config, hasRelativeAttentionBias: hasRelativeAttentionBias, generator: generator)
        feedForwardLayer = T5FeedForwardLayer(config: config, generator: generator)
    }

    /// x + attention(norm(x)), then + feedForward(norm(x)).
    /// - Parameters: x: (B, L, D); bias: (B or 1, Nh, L, L). - Returns: (B, L, D).
    public func callAsFunction(_ x: Tensor, bias: Tensor) -> Tensor {
        let h = x + attentionLayer.selfAttention(attentionLayer.layerNorm(x), bias: bias)
        return h + feedForwardLayer.feedForward(feedForwardLayer.layerNorm(h))
    }
}
