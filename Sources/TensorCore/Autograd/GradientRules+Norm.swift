/// Gradient rules of the fused softmax and normalisation ops. Each calls the op's backward kernel, which works from
/// what the forward pass saved (the softmax result; the per-row or per-group mean and 1/std).
extension GradientRules {
    /// Softmax or log-softmax along the last axis, from its result `y`.
    static func softmax(_ y: Tensor, log: Bool) -> (Tensor) -> [Tensor?] {
        { [unowned y] g in [Tensor.softmaxBackward(y, g, log: log)] }
    }

    /// LayerNorm (`centered`) or RMSNorm over the last axis. Gradients come in the order of the op's inputs:
    /// x, then weight and bias where present.
    static func rowNorm(
        _ x: Tensor, weight: Tensor?, bias: Tensor?, mean: Tensor, rstd: Tensor, centered: Bool
    ) -> (Tensor) -> [Tensor?] {
        { g in
            let (dx, dw, db) = Tensor.rowNormBackward(
                x, weight: weight, mean: mean, rstd: rstd, grad: g, centered: centered, needX: x.needsGrad,
                needWeight: weight?.needsGrad ?? false, needBias: bias?.needsGrad ?? false)
            return ordered(dx, weight == nil ? nil : [dw], bias == nil ? nil : [db])
        }
    }

    /// GroupNorm. Gradients come in the order of the op's inputs: x, then weight and bias where present.
    static func groupNorm(
        _ x: Tensor, groups: Int, weight: Tensor?, bias: Tensor?, mean: Tensor, rstd: Tensor
    ) -> (Tensor) -> [Tensor?] {
        { g in
            let (dx, dw, db) = Tensor.groupNormBackward(
                x, groups: groups, weight: weight, mean: mean, rstd: rstd, grad: g, needX: x.needsGrad,
                needWeight: weight?.needsGrad ?? false, needBias: bias?.needsGrad ?? false)
            return ordered(dx, weight == nil ? nil : [dw], bias == nil ? nil : [db])
        }
    }

    /// [dx] followed by the weight and bias slots that exist (a nil slot means the input was absent).
    private static func ordered(_ dx: Tensor?, _ weightSlot: [Tensor?]?, _ biasSlot: [Tensor?]?) -> [Tensor?] {
        [dx] + (weightSlot ?? []) + (biasSlot ?? [])
    }
}
