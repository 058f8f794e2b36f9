import TensorCore

/// Ulysses sequence parallelism's two exchanges (DeepSpeed-Ulysses): a rank holding some tokens of every head trades
/// them for all tokens of some heads before attention, and back after. Both are differentiable; the gradient of each
/// is the other one applied to the incoming gradient. Implemented over a process group by the `Distributed` target.
public protocol SequenceParallelExchange: AnyObject {
    /// P, the ranks sharing one sequence.
    var degree: Int { get }
    /// (B, Lr, Nh, Dh), this rank's tokens of every head → (B, L, Nh/P, Dh), every token of this rank's heads.
    func toHeads(_ x: Tensor) -> Tensor
    /// The inverse of `toHeads`.
    func toTokens(_ x: Tensor) -> Tensor
}

/// Multi-head attention with separate q/k/v/o projections (keys `q_proj`, `k_proj`, `v_proj`, `o_proj`), for
/// self-attention (keys from the same tokens) and cross-attention (keys from a context of width `contextDimension`).
///
/// Options follow the Goku block:
/// - `qkNorm`: RMSNorm on the projected queries and keys (`q_norm`, `k_norm`) — over the whole inner width as in the
///   Goku reference code (`perHead: false`), or per head (`perHead: true`, the more common form);
/// - RoPE: cos/sin tables passed at call time rotate the queries, and the keys unless `ropeOnKeys` is false (the Goku
///   reference rotates only the queries in cross-attention).
public final class Attention: Module {
    @ModuleInfo(key: "q_proj") public var queryProjection: Linear
    @ModuleInfo(key: "k_proj") public var keyProjection: Linear
    @ModuleInfo(key: "v_proj") public var valueProjection: Linear
    @ModuleInfo(key: "o_proj") public var outputProjection: Linear
    @ModuleInfo(key: "q_norm") public var queryNorm: RMSNorm?
    @ModuleInfo(key: "k_norm") public var keyNorm: RMSNorm?
    public let headCount: Int
    public let headDimension: Int
    public let qkNormPerHead: Bool

    /// - Parameters:
    ///   - dimension: D, width of the queries' tokens and of the output.
    ///   - headCount: Nh; D must divide into Nh heads of Dh = D / Nh.
    ///   - contextDimension: width of the keys' tokens (cross-attention); D when nil.
    ///   - qkNorm: add RMSNorm on q and k (ε 1e-6).
    ///   - perHead: normalise q and k per head instead of over the whole inner width.
    public init(
        _ dimension: Int, headCount: Int, contextDimension: Int? = nil, bias: Bool = false, qkNorm: Bool = false,
        perHead: Bool = false, generator: RandomGenerator = DefaultGenerator.shared
    ) {
        precondition(dimension % headCount == 0, "Attention: width \(dimension) not divisible by \(headCount) heads")
        let kv = contextDimension ?? dimension
        self.headCount = headCount
        headDimension = dimension / headCount
        qkNormPerHead = perHead
        queryProjection = Linear(dimension, dimension, bias: bias, generator: generator)
        keyProjection = Linear(kv, dimension, bias: bias, generator: generator)
        valueProjection = Linear(kv, dimension, bias: bias, generator: generator)
        outputProjection = Linear(dimension, dimension, bias: bias, generator: generator)
        let normWidth = perHead ? dimension / headCount : dimension
        queryNorm = qkNorm ? RMSNorm(normWidth) : nil
        keyNorm = qkNorm ? RMSNorm(normWidth) : nil
    }

    /// - Parameters:
    ///   - x: queries' tokens, (B, Lq, D).
    ///   - context: keys' tokens, (B, Lk, Dc); `x` itself when nil (self-attention).
    ///   - mask: key padding and packed segments.
    ///   - rope: (cos, sin) tables of shape (Lq, Dh) (and Lk = Lq when keys are rotated).
    ///   - ropeOnKeys: rotate the keys too.
    ///   - exchange: sequence parallelism (self-attention only): `x` and `rope` are this rank's tokens, and `mask` is
    ///     over the whole sequence; q, k and v are exchanged for every token of 1/P of the heads before the attention
    ///     and the result exchanged back, so the output is this rank's tokens, as without it.
    /// - Returns: (B, Lq, D).
    public func callAsFunction(
        _ x: Tensor, context: Tensor? = nil, mask: AttentionMask = .none, rope: (cos: Tensor, sin: Tensor)? = nil,
        ropeOnKeys: Bool = true, exchange: SequenceParallelExchange? = nil
    ) -> Tensor {
        let kvSource = context ?? x
        let b = x.shape[0], lq = x.shape[1], lk = kvSource.shape[1]
        var q = queryProjection(x), k = keyProjection(kvSource)
        let v = valueProjection(kvSource).reshape([b, lk, headCount, headDimension])  // (B, Lk, Nh, Dh)
        if !qkNormPerHead, let qn = queryNorm, let kn = keyNorm {
            q = qn(q)
            k = kn(k)
        }
        q = q.reshape([b, lq, headCount, headDimension])  // (B, Lq, Nh, Dh)
        k = k.reshape([b, lk, headCount, headDimension])  // (B, Lk, Nh, Dh)
        if qkNormPerHead, let qn = queryNorm, let kn = keyNorm {
            q = qn(q)
            k = kn(k)
        }
        if let rope {
            q = Tensor.applyRoPE(q, cos: rope.cos, sin: rope.sin)
            if ropeOnKeys { k = Tensor.applyRoPE(k, cos: rope.cos, sin: rope.sin) }
        }
        guard let exchange else {
            let out = Tensor.attention(q, k, v, mask: mask)  // (B, Lq, Nh, Dh)
            return outputProjection(out.reshape([b, lq, headCount * headDimension]))
        }
        precondition(context == nil, "Attention: sequence parallelism is for self-attention")
        precondition(headCount % exchange.degree == 0, "Attention: \(headCount) heads do not divide among \(exchange.degree) ranks")
        let out = Tensor.attention(exchange.toHeads(q), exchange.toHeads(k), exchange.toHeads(v), mask: mask)  // (B, L, Nh/P, Dh)
        return outputProjection(exchange.toTokens(out).reshape([b, lq, headCount * headDimension]))
    }
}
