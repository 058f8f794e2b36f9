import Foundation

/// Switches for gradient recording, and the reverse-mode engine.
public enum Autograd {
    nonisolated(unsafe) private static var disabledDepth = 0

    /// Whether ops currently record a graph.
    @inlinable public static var isRecording: Bool { _isRecording }
    @usableFromInline static var _isRecording: Bool { disabledDepth == 0 }

    /// Runs `body` without recording a graph (inference, optimizer updates, backward passes themselves).
    @discardableResult
    public static func inference<R>(_ body: () throws -> R) rethrows -> R {
        disabledDepth += 1
        defer { disabledDepth -= 1 }
        return try body()
    }

    /// Runs `body` with recording on, even inside `inference` or a backward pass (used by activation checkpointing to
    /// rebuild a graph during backward).
    public static func recording<R>(_ body: () throws -> R) rethrows -> R {
        let saved = disabledDepth
        disabledDepth = 0
        defer { disabledDepth = saved }
        return try body()
    }

    /// Attaches a gradient rule to `result` when recording is on and any input needs a gradient; returns `result`.
    ///
    /// `rule` is one of the entries of `GradientRules`: given the gradient of `result`, it returns one gradient per
    /// input (nil where an input needs none).
    @inlinable
    public static func record(
        _ result: Tensor, op: String, inputs: [Tensor], rule: @autoclosure () -> (Tensor) -> [Tensor?]
    ) -> Tensor {
        guard isRecording, inputs.contains(where: { $0.needsGrad }) else { return result }
        result.gradNode = GradNode(op: op, inputs: inputs, backward: rule())
        return result
    }

    /// Back-propagates from `root`, accumulating into the `grad` of every leaf that requires one. The graph is consumed:
    /// a second `backward` needs the forward pass run again.
    /// - Parameters:
    ///   - root: the tensor to differentiate (usually a scalar loss).
    ///   - seed: the gradient of `root`; ones when nil.
    public static func backward(_ root: Tensor, seed: Tensor? = nil) {
        let seedGrad = seed ?? Tensor.ones(root.shape, dtype: root.dtype)
        precondition(seedGrad.shape == root.shape, "backward: seed shape \(seedGrad.shape) ≠ root shape \(root.shape)")
        guard root.needsGrad else {
            preconditionFailure("backward: the tensor does not depend on anything that requires a gradient")
        }
        // Reverse topological order: a node runs only after every consumer has added its contribution.
        var order: [Tensor] = []
        var visited = Set<ObjectIdentifier>()
        var stack: [(Tensor, Bool)] = [(root, false)]
        while let (t, expanded) = stack.popLast() {
            if expanded { order.append(t); continue }
            if visited.contains(ObjectIdentifier(t)) { continue }
            visited.insert(ObjectIdentifier(t))
            stack.append((t, true))
            if let node = t.gradNode {
                for input in node.inputs where input.needsGrad && !visited.contains(ObjectIdentifier(input)) {
                    stack.append((input, false))
                }
            }
        }
        var grads: [ObjectIdentifier: Tensor] = [ObjectIdentifier(root): seedGrad]
        inference {
            for t in order.reversed() {
                guard let g = grads.removeValue(forKey: ObjectIdentifier(t)) else { continue }
                guard let node = t.gradNode else {
                    if t.requiresGrad { t.grad = t.grad.map { $0 + g } ?? g.detached() }
                    continue
                }
                let inputGrads = node.backward(g)
                // Free the graph as it is consumed (PyTorch's retain_graph=False): activations are released during
                // backward rather than when the root goes out of scope.
                t.gradNode = nil
                precondition(inputGrads.count == node.inputs.count, "backward of \(node.op): wrong gradient count")
                for (input, ig) in zip(node.inputs, inputGrads) {
                    guard let ig, input.needsGrad else { continue }
                    precondition(
                        ig.shape == input.shape,
                        "backward of \(node.op): gradient shape \(ig.shape) ≠ input shape \(input.shape)")
                    let key = ObjectIdentifier(input)
                    grads[key] = grads[key].map { $0 + ig } ?? ig
                }
            }
        }
    }
}

extension Tensor {
    /// Back-propagates from this tensor (see `Autograd.backward`).
    public func backward(_ seed: Tensor? = nil) { Autograd.backward(self, seed: seed) }

    /// Clears the accumulated gradient.
    public func zeroGrad() { grad = nil }
}
