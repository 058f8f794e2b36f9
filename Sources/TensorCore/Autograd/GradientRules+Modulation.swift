/// Gradient rules of the fused adaLN ops (`modulatedLayerNorm`, `modulatedRMSNorm`, `gatedResidual`). Each calls
/// the op's backward kernel in `ModulationKernel`, which works from the forward's inputs and saved row statistics.
extension GradientRules {
    /// The modulated LayerNorm (`centered`) or RMSNorm. Gradients come in the order of the op's inputs: x, shift,
    /// scale, then weight where present.
    static func modulatedNorm(
        _ x: Tensor, weight: Tensor?, shift: Tensor, scale: Tensor, scaleRows: [Int], rowIndex: [Int]?, mean: Tensor,
        rstd: Tensor, centered: Bool
    ) -> (Tensor) -> [Tensor?] {
        { g in
            let (dx, dshift, dscale, dw) = Tensor.modulatedNormBackward(
                x, weight: weight, shift: shift, scale: scale, scaleRows: scaleRows, rowIndex: rowIndex, mean: mean,
                rstd: rstd, grad: g, centered: centered,
                need: (x.needsGrad, shift.needsGrad, scale.needsGrad, weight?.needsGrad ?? false))
            return [dx, dshift, dscale] + (weight == nil ? [] : [dw])
        }
    }

    /// x + gate·branch: x gets the incoming gradient unchanged; gate and branch come from one fused pass.
    static func gatedResidual(
        _ x: Tensor, gate: Tensor, branch: Tensor, gateRows: [Int], rowIndex: [Int]?
    ) -> (Tensor) -> [Tensor?] {
        { g in
            let (dgate, dbranch) = Tensor.gatedResidualBackward(
                gate: gate, branch: branch, gateRows: gateRows, rowIndex: rowIndex, grad: g, needGate: gate.needsGrad,
                needBranch: branch.needsGrad)
            return [x.needsGrad ? g : nil, dgate, dbranch]
        }
    }
}
