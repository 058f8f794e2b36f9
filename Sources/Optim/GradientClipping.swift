import TensorCore

/// Gradient clipping by global norm, as `torch.nn.utils.clip_grad_norm_`.
public enum GradientClipping {
    /// Scales every gradient by min(1, maxNorm / (‖g‖ + 1e-6)), where ‖g‖ is the L2 norm over all of them.
    /// - Returns: the total norm before clipping (non-finite when a gradient is).
    @discardableResult
    public static func clipGlobalNorm(_ parameters: [Tensor], maxNorm: Double) -> Double {
        let total = parameters.reduce(0.0) { sum, p in sum + (p.grad.map(sumOfSquares) ?? 0) }
        let norm = total.squareRoot()
        scale(parameters, by: maxNorm / (norm + 1e-6))
        return norm
    }

    /// Σ g² of a float32 gradient in Double (the global norm's part of one tensor; sharded training sums the parts
    /// of every rank).
    public static func sumOfSquares(_ g: Tensor) -> Double { sumOfSquares(g.storage.pointer(as: Float.self), g.count) }

    /// Multiplies the gradients of `parameters` by `coefficient` when it is below 1.
    public static func scale(_ parameters: [Tensor], by coefficient: Double) {
        guard coefficient < 1 else { return }
        let c = Float(coefficient)
        for p in parameters {
            guard let g = p.grad else { continue }
            let gp = g.storage.pointer(as: Float.self)
            Parallel.forEach(g.count, grain: 65536) { range in for j in range { gp[j] *= c } }
        }
    }

    /// Σ x² in Double, eight partial sums at a time (a fixed order, so the same input always gives the same bits).
    static func sumOfSquares(_ x: UnsafePointer<Float>, _ count: Int) -> Double {
        var lanes = SIMD8<Double>()
        var j = 0
        while j + 8 <= count {
            let v = SIMD8<Double>(UnsafeRawPointer(x + j).loadUnaligned(as: SIMD8<Float>.self))
            lanes = lanes.addingProduct(v, v)
            j += 8
        }
        var s = lanes.sum()
        while j < count {
            s += Double(x[j]) * Double(x[j])
            j += 1
        }
        return s
    }
}
