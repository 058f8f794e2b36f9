/// Activation checkpointing: trade compute for memory by recomputing a function in backward.
extension Autograd {
    /// Runs `body` without keeping its intermediate activations; backward recomputes them.
    ///
    /// The forward pass runs with recording off, so only `inputs` and the result stay alive. When the gradient
    /// reaches the result, `body` runs again with recording on (over detached copies of `inputs`) and a nested
    /// backward pushes the gradient through it: parameters used inside `body` receive their gradients directly,
    /// and the copies' gradients are returned for `inputs`.
    ///
    /// `body` must be deterministic (same result when rerun): draw any randomness from generators whose state is
    /// captured outside it.
    /// - Parameters:
    ///   - inputs: the tensors `body` reads that gradients must flow back into (activations).
    ///   - body: the computation; parameters it closes over receive gradients too.
    public static func checkpoint(_ inputs: [Tensor], _ body: @escaping ([Tensor]) -> Tensor) -> Tensor {
        let result = inference { body(inputs) }
        guard isRecording else { return result }
        // The node's inputs are the activations; parameters are reached by the nested backward.
        let node = GradNode(op: "checkpoint", inputs: inputs) { g in
            let copies = inputs.map { x -> Tensor in
                let c = x.detached()
                c.requiresGrad = x.needsGrad
                return c
            }
            let recomputed = recording { body(copies) }
            if recomputed.needsGrad { recomputed.backward(g) }
            return copies.map { $0.requiresGrad ? $0.grad : nil }
        }
        result.gradNode = node
        return result
    }
}
