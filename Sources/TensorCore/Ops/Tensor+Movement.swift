extension Tensor {
    /// The same elements with another shape (one extent may be -1: inferred). Shares storage.
    public func reshape(_ newShape: [Int]) -> Tensor {
        var target = newShape
        if let inferred = newShape.firstIndex(of: -1) {
            let known = newShape.enumerated().filter { $0.offset != inferred }.map(\.element).reduce(1, *)
            precondition(known > 0 && count % known == 0, "reshape: cannot reshape \(shape) to \(newShape)")
            target[inferred] = count / known
        }
        precondition(target.reduce(1, *) == count, "reshape: cannot reshape \(shape) (\(count) elements) to \(newShape)")
        if target == shape { return self }
        let out = Tensor(shape: target, storage: storage)
        let source = shape
        return Autograd.record(out, op: "reshape", inputs: [self], rule: GradientRules.reshape(to: source))
    }

    /// Flattens axes `start...end` into one.
    public func flatten(from start: Int = 0, to end: Int = -1) -> Tensor {
        let s = axis(start), e = axis(end)
        return reshape(Array(shape[..<s]) + [shape[s...e].reduce(1, *)] + Array(shape[(e + 1)...]))
    }

    /// Inserts an axis of extent 1 at `position`.
    public func unsqueeze(_ position: Int) -> Tensor {
        let p = position < 0 ? position + rank + 1 : position
        precondition(p >= 0 && p <= rank, "unsqueeze: position \(position) for shape \(shape)")
        var s = shape
        s.insert(1, at: p)
        return reshape(s)
    }

    /// Removes an axis of extent 1.
    public func squeeze(_ position: Int) -> Tensor {
        let p = axis(position)
        precondition(shape[p] == 1, "squeeze: axis \(position) of \(shape) is not 1")
        var s = shape
        s.remove(at: p)
        return reshape(s)
    }

    /// Reads this tensor through `strides` from `offset` into a new contiguous tensor of `outShape`.
    func gatherStrided(offset: Int, strides: [Int], outShape: [Int]) -> Tensor {
        let out = Tensor(uninitializedShape: outShape, dtype: dtype)
        StridedCopy.run(
            src: storage.rawPointer, offset: offset, strides: strides, shape: outShape, dst: out.storage.rawPointer,
            elementSize: dtype.byteCount)
        return out
    }

    /// Reorders the axes: result axis i is input axis `order[i]`.
    public func permute(_ order: [Int]) -> Tensor {
        let ord = order.map { axis($0, op: "permute") }
        precondition(Set(ord).count == rank && ord.count == rank, "permute: \(order) is not a permutation of \(rank) axes")
        if ord == Array(0..<rank) { return self }
        let st = Shape.strides(shape)
        let out = gatherStrided(offset: 0, strides: ord.map { st[$0] }, outShape: ord.map { shape[$0] })
        return Autograd.record(out, op: "permute", inputs: [self], rule: GradientRules.permute(ord))
    }

    /// Swaps two axes.
    public func transposed(_ a: Int = -2, _ b: Int = -1) -> Tensor {
        var order = Array(0..<rank)
        order.swapAt(axis(a), axis(b))
        return permute(order)
    }

    /// Elements `start..<end` (every `step`-th) along `axis`.
    public func slice(axis rawAxis: Int, _ start: Int, _ end: Int, step: Int = 1) -> Tensor {
        let a = axis(rawAxis)
        precondition(step > 0, "slice: step must be positive")
        precondition(
            0 <= start && start <= end && end <= shape[a],
            "slice: range \(start)..<\(end) out of bounds for axis \(rawAxis) of \(shape)")
        if start == 0 && end == shape[a] && step == 1 { return self }
        var outShape = shape
        outShape[a] = (end - start + step - 1) / step
        var st = Shape.strides(shape)
        let offset = start * st[a]
        st[a] *= step
        let out = gatherStrided(offset: offset, strides: st, outShape: outShape)
        let source = shape
        return Autograd.record(
            out, op: "slice", inputs: [self], rule: GradientRules.slice(source, axis: a, start: start, step: step))
    }

    /// Broadcasts to `target` (NumPy rules), copying.
    public func expand(_ target: [Int]) -> Tensor {
        if shape == target { return self }
        let out = gatherStrided(offset: 0, strides: Shape.broadcastStrides(shape, to: target), outShape: target)
        let source = shape
        return Autograd.record(out, op: "expand", inputs: [self], rule: GradientRules.expand(from: source))
    }

    /// Tiles the tensor `counts[i]` times along axis i (`torch.Tensor.repeat`).
    public func repeated(_ counts: [Int]) -> Tensor {
        precondition(counts.count == rank, "repeated: \(counts.count) counts for rank \(rank)")
        // View as (c0, s0, c1, s1, …) with stride 0 on the copies, then merge pairs.
        var viewShape: [Int] = [], viewStrides: [Int] = []
        let st = Shape.strides(shape)
        for i in 0..<rank {
            viewShape += [counts[i], shape[i]]
            viewStrides += [0, st[i]]
        }
        let out = gatherStrided(offset: 0, strides: viewStrides, outShape: viewShape)
            .reshape(zip(counts, shape).map { $0 * $1 })
        let source = shape
        return Autograd.record(out, op: "repeat", inputs: [self], rule: GradientRules.repeated(source, counts))
    }

    /// Joins tensors along `axis`; all other extents must agree.
    public static func concat(_ tensors: [Tensor], axis rawAxis: Int) -> Tensor {
        precondition(!tensors.isEmpty, "concat: no tensors")
        let first = tensors[0]
        let a = first.axis(rawAxis, op: "concat")
        for t in tensors {
            precondition(t.dtype == first.dtype, "concat: dtypes \(first.dtype) and \(t.dtype) differ")
            precondition(
                t.rank == first.rank && (0..<t.rank).allSatisfy { $0 == a || t.shape[$0] == first.shape[$0] },
                "concat: shapes \(tensors.map(\.shape)) do not agree outside axis \(rawAxis)")
        }
        var outShape = first.shape
        outShape[a] = tensors.map { $0.shape[a] }.reduce(0, +)
        let out = Tensor(uninitializedShape: outShape, dtype: first.dtype)
        let outer = first.shape[..<a].reduce(1, *)
        let innerOut = outShape[a...].reduce(1, *) * first.dtype.byteCount
        var column = 0
        for t in tensors {
            let block = t.shape[a...].reduce(1, *) * t.dtype.byteCount
            let src = t.storage.rawPointer, dst = out.storage.rawPointer + column
            Parallel.forEach(outer, grain: Swift.max(1, 65536 / Swift.max(block, 1))) { range in
                for o in range { (dst + o * innerOut).copyMemory(from: src + o * block, byteCount: block) }
            }
            column += block
        }
        let sizes = tensors.map { $0.shape[a] }
        return Autograd.record(out, op: "concat", inputs: tensors, rule: GradientRules.concat(axis: a, sizes: sizes))
    }

    /// Splits along `axis` into pieces of the given sizes (summing to the axis extent).
    public func split(_ sizes: [Int], axis rawAxis: Int) -> [Tensor] {
        let a = axis(rawAxis)
        precondition(sizes.reduce(0, +) == shape[a], "split: sizes \(sizes) do not sum to \(shape[a]) (axis \(rawAxis) of \(shape))")
        var start = 0
        return sizes.map { n in
            defer { start += n }
            return slice(axis: a, start, start + n)
        }
    }

    /// Splits along `axis` into `parts` equal pieces.
    public func chunked(_ parts: Int, axis rawAxis: Int) -> [Tensor] {
        let a = axis(rawAxis)
        precondition(parts > 0 && shape[a] % parts == 0, "chunked: \(shape[a]) is not divisible into \(parts)")
        return split([Int](repeating: shape[a] / parts, count: parts), axis: a)
    }

    /// Pads with `value`: `padding[i] = (before, after)` for axis i; fewer entries pad the leading axes only.
    public func padded(_ padding: [(Int, Int)], value: Double = 0) -> Tensor {
        precondition(padding.count <= rank, "padded: \(padding.count) pairs for rank \(rank)")
        let pads = padding + [(Int, Int)](repeating: (0, 0), count: rank - padding.count)
        precondition(pads.allSatisfy { $0.0 >= 0 && $0.1 >= 0 }, "padded: negative padding \(padding)")
        if pads.allSatisfy({ $0 == (0, 0) }) { return self }
        let outShape = zip(shape, pads).map { $0 + $1.0 + $1.1 }
        let out = Tensor.full(outShape, value, dtype: dtype)
        // Copy rows of the last axis into place.
        let inner = shape.last ?? 1
        let rows = count / Swift.max(inner, 1)
        let es = dtype.byteCount
        let outStrides = Shape.strides(outShape)
        let lead = Array(shape.dropLast())
        var baseOffset = 0
        for i in 0..<rank { baseOffset += pads[i].0 * outStrides[i] }
        let src = storage.rawPointer, dst = out.storage.rawPointer
        Parallel.forEach(rows, grain: 256) { range in
            for r in range {
                var rem = r, off = baseOffset
                for d in stride(from: lead.count - 1, through: 0, by: -1) {
                    off += (rem % lead[d]) * outStrides[d]
                    rem /= lead[d]
                }
                (dst + off * es).copyMemory(from: src + r * inner * es, byteCount: inner * es)
            }
        }
        return Autograd.record(out, op: "pad", inputs: [self], rule: GradientRules.padded(pads.map { $0.0 }, shape))
    }

    /// Rows `indices` along `axis` (`torch.index_select`); indices may repeat.
    public func indexSelect(axis rawAxis: Int, indices: [Int]) -> Tensor {
        let a = axis(rawAxis)
        for i in indices {
            precondition(i >= 0 && i < shape[a], "indexSelect: index \(i) out of range 0..<\(shape[a]) (axis \(rawAxis))")
        }
        var outShape = shape
        outShape[a] = indices.count
        let out = Tensor(uninitializedShape: outShape, dtype: dtype)
        let outer = shape[..<a].reduce(1, *)
        let block = shape[(a + 1)...].reduce(1, *) * dtype.byteCount
        let src = storage.rawPointer, dst = out.storage.rawPointer
        let n = shape[a]
        Parallel.forEach(outer * indices.count, grain: Swift.max(1, 65536 / Swift.max(block, 1))) { range in
            for k in range {
                let o = k / indices.count, j = k % indices.count
                (dst + k * block).copyMemory(from: src + (o * n + indices[j]) * block, byteCount: block)
            }
        }
        let source = shape
        return Autograd.record(
            out, op: "indexSelect", inputs: [self], rule: GradientRules.indexSelect(source, axis: a, indices: indices))
    }
}
