extension GradientRules {
    /// Scaled dot-product attention: the fused backward kernel recomputes the probabilities from the saved
    /// logsumexp and returns the gradients of q, k and v together.
    static func attention(
        _ plan: AttentionPlan, q: Tensor, k: Tensor, v: Tensor, out: Tensor, logSumExp: Tensor
    ) -> (Tensor) -> [Tensor?] {
        { [unowned out] g in
            let need = (q: q.needsGrad, k: k.needsGrad, v: v.needsGrad)
            let grads = AttentionKernel.backward(
                plan, q: q, k: k, v: v, out: out, logSumExp: logSumExp, gradOut: g, need: need)
            return [need.q ? grads.q : nil, need.k ? grads.k : nil, need.v ? grads.v : nil]
        }
    }

    /// Rotary embedding: the rotation is orthogonal, so the gradient is the incoming one rotated back (by −θ).
    /// The tables are constants and get no gradient.
    static func rope(cos: Tensor, sin: Tensor) -> (Tensor) -> [Tensor?] {
        { g in [Tensor.rotatePairs(g, cos: cos, sin: sin, inverse: true), nil, nil] }
    }
}
