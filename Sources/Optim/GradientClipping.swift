import TensorCore

/// Gradient clipping by global norm, as `torch.nn.utils.clip_grad_norm_`.
public enum GradientClipping {
    /// Scales every gradient by min(1, maxNorm / (‖g‖ + 1e-6)), where ‖g‖ is the L2 norm over all of them.
    /// - Returns: the total norm before clipping (non-finite when a gradient is).
    @discardableResult
    public static func clipGlobalNorm(_ parameters: [Tensor], maxNorm: Double) -> Double {
        var total = 0.0
        for p in parameters {
            guard let g = p.grad else { continue }
            let gp = g.storage.pointer(as: Float.self)
            var s = 0.0
            for j in 0..<g.count { s += Double(gp[j]) * Double(gp[j]) }
            total += s
        }
        let norm = total.squareRoot()
        let coefficient = maxNorm / (norm + 1e-6)
        if coefficient < 1 {
            for p in parameters {
                guard let g = p.grad else { continue }
                let gp = g.storage.pointer(as: Float.self)
                let c = Float(coefficient)
                Parallel.forEach(g.count, grain: 65536) { range in for j in range { gp[j] *= c } }
            }
        }
        return norm
    }
}
