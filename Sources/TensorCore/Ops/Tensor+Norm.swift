extension Tensor {
    /// Layer normalisation over the last axis: (x − mean)/√(var + eps)·weight + bias, biased variance, as
    /// `torch.nn.functional.layer_norm(x, (D,), weight, bias, eps)`. Fused: one pass forward (which saves the mean and
    /// 1/std of each row) and one backward.
    /// - Parameters:
    ///   - x: (…, D).
    ///   - weight: (D), or nil for a non-affine norm (as in the Goku block's modulated LayerNorm).
    ///   - bias: (D), or nil.
    ///   - eps: added to the variance.
    /// - Returns: (…, D).
    public static func layerNorm(_ x: Tensor, weight: Tensor?, bias: Tensor?, eps: Double) -> Tensor {
        rowNorm(x, weight: weight, bias: bias, eps: eps, centered: true, op: "layerNorm")
    }

    /// RMS normalisation over the last axis: x·rsqrt(mean(x², last axis) + eps)·weight, with no mean subtraction and
    /// no bias (T5's and Goku's RMSNorm). The mean of squares accumulates in eight Float32 lanes per 1024-element
    /// block and across blocks in Float64: T5 computes this variance in float32, and the lanes keep it accurate at
    /// every model width at no cost.
    /// - Parameters:
    ///   - x: (…, D).
    ///   - weight: (D), or nil.
    ///   - eps: added to the mean of squares.
    /// - Returns: (…, D).
    public static func rmsNorm(_ x: Tensor, weight: Tensor?, eps: Double) -> Tensor {
        rowNorm(x, weight: weight, bias: nil, eps: eps, centered: false, op: "rmsNorm")
    }

    /// Group normalisation, as `torch.nn.functional.group_norm`: statistics per (sample, group) over the group's
    /// C/groups channels and all spatial positions (biased variance), then a per-channel affine. Fused forward and
    /// backward.
    /// - Parameters:
    ///   - x: (N, C, *spatial), e.g. (N, C, T, H, W).
    ///   - groups: number of groups; must divide C.
    ///   - weight: (C), or nil.
    ///   - bias: (C), or nil.
    ///   - eps: added to the variance.
    /// - Returns: (N, C, *spatial).
    public static func groupNorm(_ x: Tensor, groups: Int, weight: Tensor?, bias: Tensor?, eps: Double) -> Tensor {
        precondition(x.rank >= 2, "groupNorm: input must be (N, C, *spatial), got \(x.shape)")
        let batch = x.shape[0], channels = x.shape[1]
        precondition(
            groups > 0 && channels % groups == 0, "groupNorm: \(groups) groups do not divide \(channels) channels (x \(x.shape))")
        checkAffine(x, weight, bias, extent: channels, op: "groupNorm")
        let spatial = x.shape[2...].reduce(1, *)
        let out = Tensor(uninitializedShape: x.shape, dtype: x.dtype)
        let mean = Tensor(uninitializedShape: [batch, groups], dtype: x.dtype)
        let rstd = Tensor(uninitializedShape: [batch, groups], dtype: x.dtype)
        func run<T: TensorScalar>(_: T.Type) {
            GroupNormKernel.forward(
                x.storage.pointer(as: T.self), weight: weight?.storage.pointer(as: T.self),
                bias: bias?.storage.pointer(as: T.self), out.storage.pointer(as: T.self),
                mean: mean.storage.pointer(as: T.self), rstd: rstd.storage.pointer(as: T.self), batch: batch,
                groups: groups, channelsPerGroup: channels / groups, spatial: spatial, eps: eps)
        }
        if x.requireCompute("groupNorm") { run(Double.self) } else { run(Float.self) }
        return Autograd.record(
            out, op: "groupNorm", inputs: [x] + [weight, bias].compactMap { $0 },
            rule: GradientRules.groupNorm(x, groups: groups, weight: weight, bias: bias, mean: mean, rstd: rstd))
    }

    /// Stops unless `weight` and `bias` (when present) are vectors of `extent` elements of x's dtype.
    private static func checkAffine(_ x: Tensor, _ weight: Tensor?, _ bias: Tensor?, extent: Int, op: String) {
        for (name, t) in [("weight", weight), ("bias", bias)] {
            guard let t else { continue }
            precondition(t.shape == [extent], "\(op): \(name) must be (\(extent)) for input \(x.shape), got \(t.shape)")
            precondition(t.dtype == x.dtype, "\(op): \(name) dtype \(t.dtype) differs from input dtype \(x.dtype)")
        }
    }

    /// LayerNorm (`centered`) or RMSNorm over the last axis.
    private static func rowNorm(
        _ x: Tensor, weight: Tensor?, bias: Tensor?, eps: Double, centered: Bool, op: String
    ) -> Tensor {
        precondition(x.rank >= 1 && x.shape.last! > 0, "\(op): input must be (…, D) with D > 0, got \(x.shape)")
        let d = x.shape.last!
        checkAffine(x, weight, bias, extent: d, op: op)
        let rows = x.count / d
        let out = Tensor(uninitializedShape: x.shape, dtype: x.dtype)
        let mean = Tensor(uninitializedShape: [rows], dtype: x.dtype)
        let rstd = Tensor(uninitializedShape: [rows], dtype: x.dtype)
        func run<T: TensorScalar>(_: T.Type) {
            RowNormKernel.forward(
                x.storage.pointer(as: T.self), weight: weight?.storage.pointer(as: T.self),
                bias: bias?.storage.pointer(as: T.self), out.storage.pointer(as: T.self),
                mean: mean.storage.pointer(as: T.self), rstd: rstd.storage.pointer(as: T.self), rows: rows, d: d,
                eps: eps, centered: centered)
        }
        if x.requireCompute(op) { run(Double.self) } else { run(Float.self) }
        return Autograd.record(
            out, op: op, inputs: [x] + [weight, bias].compactMap { $0 },
            rule: GradientRules.rowNorm(x, weight: weight, bias: bias, mean: mean, rstd: rstd, centered: centered))
    }

    /// Gradients of LayerNorm/RMSNorm from the saved per-row `mean` and `rstd`; each is computed only when `need…`.
    /// - Returns: dx (…, D), dweight (D), dbias (D).
    static func rowNormBackward(
        _ x: Tensor, weight: Tensor?, mean: Tensor, rstd: Tensor, grad: Tensor, centered: Bool,
        needX: Bool, needWeight: Bool, needBias: Bool
    ) -> (Tensor?, Tensor?, Tensor?) {
        precondition(grad.shape == x.shape && grad.dtype == x.dtype, "norm backward: gradient \(grad.shape) for \(x.shape)")
        let d = x.shape.last!
        let dx = needX ? Tensor(uninitializedShape: x.shape, dtype: x.dtype) : nil
        let dw = needWeight ? Tensor(uninitializedShape: [d], dtype: x.dtype) : nil
        let db = needBias ? Tensor(uninitializedShape: [d], dtype: x.dtype) : nil
        func run<T: TensorScalar>(_: T.Type) {
            RowNormKernel.backward(
                x.storage.pointer(as: T.self), weight: weight?.storage.pointer(as: T.self),
                mean: mean.storage.pointer(as: T.self), rstd: rstd.storage.pointer(as: T.self),
                grad.storage.pointer(as: T.self), dx: dx?.storage.pointer(as: T.self),
                dweight: dw?.storage.pointer(as: T.self), dbias: db?.storage.pointer(as: T.self), rows: x.count / d,
                d: d, centered: centered)
        }
        if x.dtype == .float64 { run(Double.self) } else { run(Float.self) }
        return (dx, dw, db)
    }

    /// Gradients of GroupNorm from the saved per-(n, group) `mean` and `rstd`; each is computed only when `need…`.
    /// - Returns: dx (N, C, *spatial), dweight (C), dbias (C).
    static func groupNormBackward(
        _ x: Tensor, groups: Int, weight: Tensor?, mean: Tensor, rstd: Tensor, grad: Tensor,
        needX: Bool, needWeight: Bool, needBias: Bool
    ) -> (Tensor?, Tensor?, Tensor?) {
        precondition(grad.shape == x.shape && grad.dtype == x.dtype, "groupNorm backward: gradient \(grad.shape) for \(x.shape)")
        let channels = x.shape[1]
        let dx = needX ? Tensor(uninitializedShape: x.shape, dtype: x.dtype) : nil
        let dw = needWeight ? Tensor(uninitializedShape: [channels], dtype: x.dtype) : nil
        let db = needBias ? Tensor(uninitializedShape: [channels], dtype: x.dtype) : nil
        func run<T: TensorScalar>(_: T.Type) {
            GroupNormKernel.backward(
                x.storage.pointer(as: T.self), weight: weight?.storage.pointer(as: T.self),
                mean: mean.storage.pointer(as: T.self), rstd: rstd.storage.pointer(as: T.self),
                grad.storage.pointer(as: T.self), dx: dx?.storage.pointer(as: T.self),
                dweight: dw?.storage.pointer(as: T.self), dbias: db?.storage.pointer(as: T.self),
                batch: x.shape[0], groups: groups, channelsPerGroup: channels / groups,
                spatial: x.shape[2...].reduce(1, *))
        }
        if x.dtype == .float64 { run(Double.self) } else { run(Float.self) }
        return (dx, dw, db)
    }
}
