/// Every gradient rule of the engine, in one place.
///
/// A rule that needs the op's own result captures it `unowned`: the result owns the node that owns the rule, so a
/// strong capture would be a reference cycle; the rule only runs during `backward`, which holds the result.
///
/// Each entry takes what the forward op saw (inputs, sometimes the result) and returns the vector-Jacobian product:
/// a function from the gradient of the result to one gradient per input (nil when an input needs none). Rules are
/// written with tensor ops and run with recording off. Fused kernels (norms, softmax, attention, convolution) keep
/// their backward kernels beside their forward kernels; their rules here call them. Every rule is checked against
/// Float64 finite differences in the tests (`GradientCheck`).
public enum GradientRules {
    static func convert(from source: DType) -> (Tensor) -> [Tensor?] {
        { g in [g.to(source)] }
    }

    static func binary(_ op: BinaryOp, _ a: Tensor, _ b: Tensor, _ out: Tensor) -> (Tensor) -> [Tensor?] {
        { [unowned out] g in
            let ga: Tensor?, gb: Tensor?
            switch op {
            case .add:
                ga = g; gb = g
            case .sub:
                ga = g; gb = -g
            case .mul:
                ga = a.needsGrad ? g * b : nil
                gb = b.needsGrad ? g * a : nil
            case .div:
                ga = a.needsGrad ? g / b : nil
                gb = b.needsGrad ? -(g * out / b) : nil
            case .maximum, .minimum:
                // The gradient goes to `a` where it was chosen (ties included), otherwise to `b`.
                let pickA = Tensor.compareMask(a, b, greaterOrEqual: op == .maximum)
                ga = g * pickA
                gb = g * (1.0 - pickA)
            case .pow:
                ga = a.needsGrad ? g * b * Tensor.binary(.pow, a, b - 1.0) : nil
                gb = b.needsGrad ? g * out * a.log() : nil
            }
            return [ga.map { $0.sumTo(a.shape) }, gb.map { $0.sumTo(b.shape) }]
        }
    }

    static func unary(_ op: UnaryOp, _ x: Tensor, _ y: Tensor) -> (Tensor) -> [Tensor?] {
        { [unowned y] g in [Tensor.unaryBackward(op, x: x, y: y, grad: g)] }
    }

    static func reduce(_ op: ReduceOp, _ x: Tensor, _ out: Tensor) -> (Tensor) -> [Tensor?] {
        { [unowned out] g in
            switch op {
            case .sum:
                return [g.expand(x.shape)]
            case .max:
                // Split equally between tied maxima, as torch.amax does.
                let mask = Tensor.compareMask(x, out.expand(x.shape), equal: true)
                let ties = mask.sumTo(out.shape)
                return [(g / ties).expand(x.shape) * mask]
            }
        }
    }

    static func reshape(to source: [Int]) -> (Tensor) -> [Tensor?] {
        { g in [g.reshape(source)] }
    }

    static func permute(_ order: [Int]) -> (Tensor) -> [Tensor?] {
        var inverse = [Int](repeating: 0, count: order.count)
        for (i, o) in order.enumerated() { inverse[o] = i }
        return { g in [g.permute(inverse)] }
    }

    static func slice(_ source: [Int], axis: Int, start: Int, step: Int) -> (Tensor) -> [Tensor?] {
        { g in
            if step == 1 {
                var pads = [(Int, Int)](repeating: (0, 0), count: source.count)
                pads[axis] = (start, source[axis] - start - g.shape[axis])
                return [g.padded(pads)]
            }
            // Strided slice: scatter every step-th row back.
            let indices = (0..<g.shape[axis]).map { start + $0 * step }
            return [Tensor.scatterAdd(g, axis: axis, indices: indices, extent: source[axis])]
        }
    }

    static func expand(from source: [Int]) -> (Tensor) -> [Tensor?] {
        { g in [g.sumTo(source)] }
    }

    static func repeated(_ source: [Int], _ counts: [Int]) -> (Tensor) -> [Tensor?] {
        { g in
            var split: [Int] = []
            for i in 0..<source.count { split += [counts[i], source[i]] }
            let axes = (0..<source.count).map { 2 * $0 }
            return [g.reshape(split).sum(axes: axes).reshape(source)]
        }
    }

    static func concat(axis: Int, sizes: [Int]) -> (Tensor) -> [Tensor?] {
        { g in g.split(sizes, axis: axis) }
    }

    static func padded(_ before: [Int], _ source: [Int]) -> (Tensor) -> [Tensor?] {
        { g in
            var r = g
            for a in 0..<source.count where g.shape[a] != source[a] {
                r = r.slice(axis: a, before[a], before[a] + source[a])
            }
            return [r]
        }
    }

    static func indexSelect(_ source: [Int], axis: Int, indices: [Int]) -> (Tensor) -> [Tensor?] {
        { g in [Tensor.scatterAdd(g, axis: axis, indices: indices, extent: source[axis])] }
    }

    /// The products of the gradients run in `mode`, the forward product's precision (mixed precision covers the
    /// input- and weight-gradient products too).
    static func matmul(
        _ a: Tensor, _ b: Tensor, transposeA: Bool, transposeB: Bool, mode: MixedPrecision.Mode = .float32
    ) -> (Tensor) -> [Tensor?] {
        { g in MixedPrecision.with(mode) {
            // C = op(A)·op(B). dop(A) = g·op(B)ᵀ, dop(B) = op(A)ᵀ·g, then undo the op.
            var ga: Tensor? = nil, gb: Tensor? = nil
            if a.needsGrad {
                ga = transposeA
                    ? Tensor.matmul(b, g, transposeA: transposeB, transposeB: true)  // (K, M) = op(B)·gᵀ
                    : Tensor.matmul(g, b, transposeB: !transposeB)  // (M, K) = g·op(B)ᵀ
            }
            if b.needsGrad {
                gb = transposeB
                    ? Tensor.matmul(g, a, transposeA: true, transposeB: transposeA)  // (N, K) = gᵀ·op(A)
                    : Tensor.matmul(a, g, transposeA: !transposeA)  // (K, N) = op(A)ᵀ·g
            }
            return [ga.map { $0.sumTo(a.shape) }, gb.map { $0.sumTo(b.shape) }]
        } }
    }
}

extension Tensor {
    /// 1 where `a` is chosen over `b` (a ≥ b, or a ≤ b), as a tensor broadcast to both shapes.
    static func compareMask(_ a: Tensor, _ b: Tensor, greaterOrEqual: Bool) -> Tensor {
        let shape = Shape.broadcast(a.shape, b.shape, op: "compare")
        let out = Tensor(uninitializedShape: shape, dtype: a.dtype)
        func run<T: TensorScalar>(_: T.Type) {
            let sa = Shape.broadcastStrides(a.shape, to: shape), sb = Shape.broadcastStrides(b.shape, to: shape)
            if greaterOrEqual {
                BroadcastKernel.binary(
                    a.storage.pointer(as: T.self), sa, b.storage.pointer(as: T.self), sb,
                    out.storage.pointer(as: T.self), shape) { $0 >= $1 ? 1 : 0 }
            } else {
                BroadcastKernel.binary(
                    a.storage.pointer(as: T.self), sa, b.storage.pointer(as: T.self), sb,
                    out.storage.pointer(as: T.self), shape) { $0 <= $1 ? 1 : 0 }
            }
        }
        if a.dtype == .float64 { run(Double.self) } else { run(Float.self) }
        return out
    }

    /// 1 where a == b.
    static func compareMask(_ a: Tensor, _ b: Tensor, equal: Bool) -> Tensor {
        let shape = Shape.broadcast(a.shape, b.shape, op: "compare")
        let out = Tensor(uninitializedShape: shape, dtype: a.dtype)
        func run<T: TensorScalar>(_: T.Type) {
            BroadcastKernel.binary(
                a.storage.pointer(as: T.self), Shape.broadcastStrides(a.shape, to: shape),
                b.storage.pointer(as: T.self), Shape.broadcastStrides(b.shape, to: shape),
                out.storage.pointer(as: T.self), shape) { ($0 == $1) == equal ? 1 : 0 }
        }
        if a.dtype == .float64 { run(Double.self) } else { run(Float.self) }
        return out
    }

    /// grad · op′(x), fused in one pass (Float exp, sigmoid, SiLU and GELU-tanh through `VectorUnary`'s lanes).
    static func unaryBackward(_ op: UnaryOp, x: Tensor, y: Tensor, grad: Tensor) -> Tensor {
        let out = Tensor(uninitializedShape: x.shape, dtype: x.dtype)
        func run<T: TensorScalar>(_: T.Type) {
            if T.self == Float.self && VectorUnary.supports(op) {
                VectorUnary.applyBackward(
                    op, x: x.storage.pointer(as: Float.self), y: y.storage.pointer(as: Float.self),
                    grad: grad.storage.pointer(as: Float.self), out.storage.pointer(as: Float.self), x.count)
                return
            }
            let px = x.storage.pointer(as: T.self), py = y.storage.pointer(as: T.self)
            let pg = grad.storage.pointer(as: T.self), po = out.storage.pointer(as: T.self)
            Parallel.forEach(x.count, grain: 16384) { range in
                for i in range { po[i] = pg[i] * Pointwise.derivative(op, x: px[i], y: py[i]) }
            }
        }
        if x.dtype == .float64 { run(Double.self) } else { run(Float.self) }
        return out
    }

    /// Zeros with `extent` rows along `axis`, into which `g`'s rows are added at `indices` (repeats accumulate).
    static func scatterAdd(_ g: Tensor, axis: Int, indices: [Int], extent: Int) -> Tensor {
        var outShape = g.shape
        outShape[axis] = extent
        let out = Tensor.zeros(outShape, dtype: g.dtype)
        let outer = g.shape[..<axis].reduce(1, *)
        let inner = g.shape[(axis + 1)...].reduce(1, *)
        func run<T: TensorScalar>(_: T.Type) {
            let src = g.storage.pointer(as: T.self), dst = out.storage.pointer(as: T.self)
            // Parallel over the outer axis only, so repeated indices never race.
            Parallel.forEach(outer, grain: 1) { range in
                for o in range {
                    for (j, index) in indices.enumerated() {
                        let s = src + (o * indices.count + j) * inner, d = dst + (o * extent + index) * inner
                        for i in 0..<inner { d[i] += s[i] }
                    }
                }
            }
        }
        if g.dtype == .float64 { run(Double.self) } else { run(Float.self) }
        return out
    }
}
