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
            total += sumOfSquares(g.storage.pointer(as: Float.self), g.count)
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
