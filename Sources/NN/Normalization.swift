import TensorCore

/// Layer normalisation over the last axis, optionally with a learned scale and shift (`weight`, `bias`).
/// The Goku block uses it without affine parameters ahead of adaLN modulation.
public final class LayerNorm: Module {
    public let weight: Tensor?
    public let bias: Tensor?
    public let eps: Double

    /// - Parameters:
    ///   - dimension: D, the normalised width.
    ///   - affine: learn `weight` (ones) and `bias` (zeros).
    ///   - eps: added to the variance (1e-5 as PyTorch; 1e-6 in the Goku block).
    public init(_ dimension: Int, eps: Double = 1e-5, affine: Bool = true) {
        weight = affine ? Tensor.ones([dimension]).asParameter() : nil
        bias = affine ? Tensor.zeros([dimension]).asParameter() : nil
        self.eps = eps
    }

    /// - Parameter x: (…, D).
    public func callAsFunction(_ x: Tensor) -> Tensor { Tensor.layerNorm(x, weight: weight, bias: bias, eps: eps) }
}

/// Root-mean-square normalisation over the last axis with a learned scale: x·rsqrt(mean(x²) + ε)·weight.
/// Used for Goku's QK-norm and pre-FFN norm, and as T5's layer norm.
public final class RMSNorm: Module {
    public let weight: Tensor?
    public let eps: Double

    public init(_ dimension: Int, eps: Double = 1e-6, affine: Bool = true) {
        weight = affine ? Tensor.ones([dimension]).asParameter() : nil
        self.eps = eps
    }

    /// - Parameter x: (…, D).
    public func callAsFunction(_ x: Tensor) -> Tensor { Tensor.rmsNorm(x, weight: weight, eps: eps) }
}

/// Group normalisation over (N, C, *spatial) with per-channel scale and shift, as `torch.nn.GroupNorm`.
public final class GroupNorm: Module {
    public let weight: Tensor?
    public let bias: Tensor?
    public let groups: Int
    public let eps: Double

    public init(groups: Int, channels: Int, eps: Double = 1e-6, affine: Bool = true) {
        precondition(groups > 0 && channels % groups == 0, "GroupNorm: \(channels) channels not divisible into \(groups) groups")
        weight = affine ? Tensor.ones([channels]).asParameter() : nil
        bias = affine ? Tensor.zeros([channels]).asParameter() : nil
        self.groups = groups
        self.eps = eps
    }

    /// - Parameter x: (N, C, …).
    public func callAsFunction(_ x: Tensor) -> Tensor {
        Tensor.groupNorm(x, groups: groups, weight: weight, bias: bias, eps: eps)
    }
}
