/// Gradient rules of convolution, average pooling and nearest upsampling. Their backward kernels live beside the
/// forward kernels (Kernels/ConvKernel.swift, Kernels/PoolKernel.swift).
extension GradientRules {
    /// conv3d / conv2d: gradients of x, weight and (when present) bias, their products in the forward's precision
    /// `mode`. The column matrix is rebuilt from `x` in chunks rather than kept from the forward pass, so that memory
    /// stays bounded.
    static func convolution(
        _ x: Tensor, weight: Tensor, bias: Tensor?, geometry: ConvGeometry, mode: MixedPrecision.Mode = .float32
    ) -> (Tensor) -> [Tensor?] {
        { g in
            let grads = Tensor.convolutionBackward(
                x, weight: weight, gradOut: g, geometry: geometry, needsX: x.needsGrad, needsWeight: weight.needsGrad,
                needsBias: bias?.needsGrad ?? false, mode: mode)
            return bias == nil ? [grads.x, grads.weight] : [grads.x, grads.weight, grads.bias]
        }
    }

    /// avgPool3d / avgPool2d: each window's gradient spread evenly over it.
    static func avgPool(_ x: Tensor, geometry: PoolGeometry) -> (Tensor) -> [Tensor?] {
        { g in [Tensor.poolBackward(x, gradOut: g, geometry: geometry, upsample: false)] }
    }

    /// upsampleNearest: each input element receives the sum over the block it was copied to.
    static func upsampleNearest(_ x: Tensor, geometry: PoolGeometry) -> (Tensor) -> [Tensor?] {
        { g in [Tensor.poolBackward(x, gradOut: g, geometry: geometry, upsample: true)] }
    }
}
