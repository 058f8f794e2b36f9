/// Reductions along axes.
public enum ReduceOp: String, Sendable { case sum, max }

extension Tensor {
    /// Normalised, sorted, unique axes; all axes when `axes` is nil.
    func reductionAxes(_ axes: [Int]?, op: String) -> [Int] {
        guard let axes else { return Array(0..<rank) }
        return Array(Set(axes.map { axis($0, op: op) })).sorted()
    }

    /// The shape after reducing `axes` (kept as 1 when `keepDims`).
    static func reducedShape(_ shape: [Int], axes: [Int], keepDims: Bool) -> [Int] {
        var out: [Int] = []
        for (i, d) in shape.enumerated() {
            if axes.contains(i) { if keepDims { out.append(1) } } else { out.append(d) }
        }
        return out
    }

    /// Core reduction. Reduced axes that are not one contiguous block are first moved to the end.
    func reduce(_ op: ReduceOp, axes rawAxes: [Int]?, keepDims: Bool) -> Tensor {
        let axes = reductionAxes(rawAxes, op: op.rawValue)
        let keptShape = Tensor.reducedShape(shape, axes: axes, keepDims: true)
        let finalShape = Tensor.reducedShape(shape, axes: axes, keepDims: keepDims)
        if axes.isEmpty { return keepDims ? self : reshape(finalShape) }
        let contiguous = axes.last! - axes.first! + 1 == axes.count
        let source: Tensor
        let (outer, reduced, inner): (Int, Int, Int)
        if contiguous {
            source = self
            outer = shape[..<axes.first!].reduce(1, *)
            reduced = axes.map { shape[$0] }.reduce(1, *)
            inner = shape[(axes.last! + 1)...].reduce(1, *)
        } else {
            let kept = (0..<rank).filter { !axes.contains($0) }
            source = Autograd.inference { permute(kept + axes) }
            outer = kept.map { shape[$0] }.reduce(1, *)
            reduced = axes.map { shape[$0] }.reduce(1, *)
            inner = 1
        }
        let out = Tensor(uninitializedShape: keptShape, dtype: dtype)
        func run<T: TensorScalar>(_: T.Type) {
            ReduceKernel.run(
                op, source.storage.pointer(as: T.self), out.storage.pointer(as: T.self),
                outer: outer, reduced: reduced, inner: inner)
        }
        if requireCompute(op.rawValue) { run(Double.self) } else { run(Float.self) }
        let result = Autograd.record(
            out, op: op.rawValue, inputs: [self], rule: GradientRules.reduce(op, self, out))
        return keepDims ? result : result.reshape(finalShape)
    }

    /// Sum over `axes` (all when nil).
    public func sum(axes: [Int]? = nil, keepDims: Bool = false) -> Tensor { reduce(.sum, axes: axes, keepDims: keepDims) }
    /// Sum over one axis.
    public func sum(axis: Int, keepDims: Bool = false) -> Tensor { sum(axes: [axis], keepDims: keepDims) }
    /// Mean over `axes` (all when nil).
    public func mean(axes: [Int]? = nil, keepDims: Bool = false) -> Tensor {
        let n = reductionAxes(axes, op: "mean").map { shape[$0] }.reduce(1, *)
        return sum(axes: axes, keepDims: keepDims) * (1.0 / Double(Swift.max(n, 1)))
    }
    /// Mean over one axis.
    public func mean(axis: Int, keepDims: Bool = false) -> Tensor { mean(axes: [axis], keepDims: keepDims) }
    /// Maximum over `axes`; ties share the gradient equally.
    public func max(axes: [Int]? = nil, keepDims: Bool = false) -> Tensor { reduce(.max, axes: axes, keepDims: keepDims) }
    /// Maximum over one axis.
    public func max(axis: Int, keepDims: Bool = false) -> Tensor { max(axes: [axis], keepDims: keepDims) }
    /// Variance over `axes` with `correction` (0: population, 1: unbiased, as `torch.var(correction:)`).
    public func variance(axes: [Int]? = nil, keepDims: Bool = false, correction: Int = 0) -> Tensor {
        let n = reductionAxes(axes, op: "variance").map { shape[$0] }.reduce(1, *)
        let centered = self - mean(axes: axes, keepDims: true)
        return centered.square().sum(axes: axes, keepDims: keepDims) * (1.0 / Double(Swift.max(n - correction, 1)))
    }

    /// Sums a broadcast gradient back down to `target` (the inverse of broadcasting).
    public func sumTo(_ target: [Int]) -> Tensor {
        if shape == target { return self }
        let lead = rank - target.count
        precondition(lead >= 0, "sumTo: cannot reduce \(shape) to \(target)")
        var axes = Array(0..<lead)
        for i in 0..<target.count where target[i] == 1 && shape[i + lead] != 1 { axes.append(i + lead) }
        return sum(axes: axes, keepDims: true).reshape(target)
    }
}

/// Reduces x viewed as (outer, reduced, inner) to (outer, inner).
enum ReduceKernel {
    static func run<T: TensorScalar>(
        _ op: ReduceOp, _ x: UnsafePointer<T>, _ out: UnsafeMutablePointer<T>, outer: Int, reduced: Int, inner: Int
    ) {
        if inner == 1 {
            Parallel.forEach(outer, grain: Swift.max(1, 16384 / Swift.max(reduced, 1))) { range in
                for o in range {
                    let row = x + o * reduced
                    switch op {
                    case .sum:
                        // Four partial sums: fewer dependent adds and better rounding than one running total.
                        var s0: T = 0, s1: T = 0, s2: T = 0, s3: T = 0
                        var j = 0
                        while j + 4 <= reduced {
                            s0 += row[j]; s1 += row[j + 1]; s2 += row[j + 2]; s3 += row[j + 3]
                            j += 4
                        }
                        while j < reduced { s0 += row[j]; j += 1 }
                        out[o] = (s0 + s1) + (s2 + s3)
                    case .max:
                        var m = -T.infinity
                        for j in 0..<reduced where row[j] > m || row[j].isNaN { m = row[j] }
                        out[o] = m
                    }
                }
            }
            return
        }
        Parallel.forEach(outer * inner, grain: 4096) { range in
            // Split the (outer, inner) output space; each output walks its reduced axis.
            var start = range.lowerBound
            while start < range.upperBound {
                let o = start / inner
                let i0 = start % inner
                let i1 = Swift.min(inner, i0 + (range.upperBound - start))
                let dst = out + o * inner
                let base = x + o * reduced * inner
                switch op {
                case .sum:
                    for i in i0..<i1 { dst[i] = 0 }
                    for j in 0..<reduced {
                        let src = base + j * inner
                        for i in i0..<i1 { dst[i] += src[i] }
                    }
                case .max:
                    for i in i0..<i1 { dst[i] = -T.infinity }
                    for j in 0..<reduced {
                        let src = base + j * inner
                        for i in i0..<i1 where src[i] > dst[i] || src[i].isNaN { dst[i] = src[i] }
                    }
                }
                start += i1 - i0
            }
        }
    }
}
