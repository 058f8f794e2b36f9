extension Tensor {
    /// 3-D average pooling without padding (PyTorch's `avg_pool3d` with padding 0); a trailing partial window is
    /// dropped, as with `ceil_mode=False`.
    /// - Parameters:
    ///   - x: (N, C, T, H, W).
    ///   - kernel: the window extents along T, H, W.
    ///   - stride: the window steps along T, H, W.
    /// - Returns: (N, C, Tout, Hout, Wout) with Tout = (T − kT) / sT + 1 (likewise H, W).
    public static func avgPool3d(_ x: Tensor, kernel: [Int], stride: [Int]) -> Tensor {
        precondition(x.rank == 5, "avgPool3d: input must be (N, C, T, H, W), got \(x.shape)")
        return averagePool(x, kernel: kernel, stride: stride, op: "avgPool3d")
    }

    /// 2-D average pooling without padding (PyTorch's `avg_pool2d` with padding 0).
    /// - Parameters:
    ///   - x: (N, C, H, W).
    ///   - kernel: the window extents along H, W.
    ///   - stride: the window steps along H, W.
    /// - Returns: (N, C, Hout, Wout) with Hout = (H − kH) / sH + 1 (likewise W).
    public static func avgPool2d(_ x: Tensor, kernel: [Int], stride: [Int]) -> Tensor {
        precondition(x.rank == 4, "avgPool2d: input must be (N, C, H, W), got \(x.shape)")
        return averagePool(x, kernel: kernel, stride: stride, op: "avgPool2d")
    }

    /// Nearest-neighbour upsampling by integer factors over the spatial axes (PyTorch's
    /// `interpolate(mode='nearest')` with integer `scale_factor`): every element is repeated `scale[i]` times along
    /// spatial axis i.
    /// - Parameter scale: one factor ≥ 1 per spatial axis: [sT, sH, sW] for (N, C, T, H, W), [sH, sW] for (N, C, H, W).
    /// - Returns: (N, C, T·sT, H·sH, W·sW) or (N, C, H·sH, W·sW).
    public func upsampleNearest(scale: [Int]) -> Tensor {
        precondition(
            (rank == 4 || rank == 5) && scale.count == rank - 2,
            "upsampleNearest: need (N, C, [T,] H, W) and one factor per spatial axis, got \(shape), scale \(scale)")
        precondition(scale.allSatisfy { $0 >= 1 }, "upsampleNearest: factors must be ≥ 1, got \(scale)")
        let g = PoolGeometry(planes: shape[0] * shape[1], input: spatial3(shape), scale: padded3(scale))
        let outShape = Array(shape.prefix(2)) + zip(shape.dropFirst(2), scale).map { $0 * $1 }
        let out = Tensor(uninitializedShape: outShape, dtype: dtype)
        func run<T: TensorScalar>(_: T.Type) {
            PoolKernel.upsampleForward(storage.pointer(as: T.self), out.storage.pointer(as: T.self), g)
        }
        if requireCompute("upsampleNearest") { run(Double.self) } else { run(Float.self) }
        return Autograd.record(
            out, op: "upsampleNearest", inputs: [self], rule: GradientRules.upsampleNearest(self, geometry: g))
    }

    /// The shared average pooling over the 3-D view (T = 1 for 2-D input).
    private static func averagePool(_ x: Tensor, kernel: [Int], stride: [Int], op: String) -> Tensor {
        let spatial = x.rank - 2
        precondition(
            kernel.count == spatial && stride.count == spatial,
            "\(op): need \(spatial) kernel extents and strides, got kernel \(kernel), stride \(stride)")
        precondition(
            kernel.allSatisfy { $0 >= 1 } && stride.allSatisfy { $0 >= 1 },
            "\(op): kernel \(kernel) and stride \(stride) must be ≥ 1")
        precondition(
            zip(x.shape.dropFirst(2), kernel).allSatisfy { $0 >= $1 },
            "\(op): kernel \(kernel) larger than input \(x.shape)")
        let g = PoolGeometry(
            planes: x.shape[0] * x.shape[1], input: spatial3(x.shape), kernel: padded3(kernel), stride: padded3(stride))
        var outShape = [x.shape[0], x.shape[1], g.ot, g.oh, g.ow]
        if x.rank == 4 { outShape.remove(at: 2) }
        let out = Tensor(uninitializedShape: outShape, dtype: x.dtype)
        func run<T: TensorScalar>(_: T.Type) {
            PoolKernel.avgPoolForward(x.storage.pointer(as: T.self), out.storage.pointer(as: T.self), g)
        }
        if x.requireCompute(op) { run(Double.self) } else { run(Float.self) }
        return Autograd.record(out, op: op, inputs: [x], rule: GradientRules.avgPool(x, geometry: g))
    }

    /// The input gradient of a window op with geometry `g`: average pooling, or nearest upsampling when `upsample`.
    static func poolBackward(_ x: Tensor, gradOut: Tensor, geometry g: PoolGeometry, upsample: Bool) -> Tensor {
        precondition(gradOut.dtype == x.dtype, "pool backward: gradient dtype \(gradOut.dtype) ≠ input \(x.dtype)")
        let dx = Tensor(uninitializedShape: x.shape, dtype: x.dtype)
        func run<T: TensorScalar>(_: T.Type) {
            let src = gradOut.storage.pointer(as: T.self), dst = dx.storage.pointer(as: T.self)
            if upsample { PoolKernel.upsampleBackward(src, dst, g) } else { PoolKernel.avgPoolBackward(src, dst, g) }
        }
        if x.requireCompute("pool backward") { run(Double.self) } else { run(Float.self) }
        return dx
    }
}

/// The spatial extents of (N, C, T, H, W) or (N, C, H, W) as [T, H, W] (T = 1 for the latter).
private func spatial3(_ shape: [Int]) -> [Int] { padded3(Array(shape.dropFirst(2))) }

/// Two per-axis values [h, w] as [1, h, w]; three unchanged.
private func padded3(_ values: [Int]) -> [Int] { values.count == 2 ? [1] + values : values }
