extension Tensor {
    /// Softmax along `axis`: exp(x − max) / Σ exp(x − max), numerically stable, fused in one pass per row.
    /// - Parameter axis: the axis to normalise (default the last). Another axis is moved last and back (two copies).
    /// - Returns: the same shape as `self`; each slice along `axis` sums to 1.
    public func softmax(axis: Int = -1) -> Tensor { softmax(axis: axis, log: false) }

    /// Log-softmax along `axis`: x − max − log Σ exp(x − max), exact even where softmax underflows to 0.
    /// - Parameter axis: the axis to normalise (default the last). Another axis is moved last and back (two copies).
    /// - Returns: the same shape as `self`.
    public func logSoftmax(axis: Int = -1) -> Tensor { softmax(axis: axis, log: true) }

    private func softmax(axis rawAxis: Int, log: Bool) -> Tensor {
        let name = log ? "logSoftmax" : "softmax"
        let a = axis(rawAxis, op: name)
        if rank > 1 && a != rank - 1 {
            // The kernel works on contiguous rows; permute records its own gradient.
            var order = Array(0..<rank)
            order.remove(at: a)
            order.append(a)
            var inverse = [Int](repeating: 0, count: rank)
            for (i, o) in order.enumerated() { inverse[o] = i }
            return permute(order).softmax(axis: -1, log: log).permute(inverse)
        }
        let cols = shape.last ?? 1
        let rows = cols == 0 ? 0 : count / cols
        let out = Tensor(uninitializedShape: shape, dtype: dtype)
        func run<T: TensorScalar>(_: T.Type) {
            SoftmaxKernel.forward(
                storage.pointer(as: T.self), out.storage.pointer(as: T.self), rows: rows, cols: cols, log: log)
        }
        if requireCompute(name) { run(Double.self) } else { run(Float.self) }
        return Autograd.record(out, op: name, inputs: [self], rule: GradientRules.softmax(out, log: log))
    }

    /// The input gradient of softmax (or log-softmax) along the last axis, from its result `y` and the output
    /// gradient `grad` (same shape).
    static func softmaxBackward(_ y: Tensor, _ grad: Tensor, log: Bool) -> Tensor {
        precondition(
            grad.shape == y.shape && grad.dtype == y.dtype,
            "softmax backward: gradient \(grad.shape) \(grad.dtype) for result \(y.shape) \(y.dtype)")
        let cols = y.shape.last ?? 1
        let rows = cols == 0 ? 0 : y.count / cols
        let dx = Tensor(uninitializedShape: y.shape, dtype: y.dtype)
        func run<T: TensorScalar>(_: T.Type) {
            SoftmaxKernel.backward(
                y.storage.pointer(as: T.self), grad.storage.pointer(as: T.self), dx.storage.pointer(as: T.self),
                rows: rows, cols: cols, log: log)
        }
        if y.dtype == .float64 { run(Double.self) } else { run(Float.self) }
        return dx
    }
}
