extension Tensor {
    /// 3-D convolution (cross-correlation, as in PyTorch) with zero padding; groups 1, dilation 1.
    ///
    /// Padding is given per axis as (before, after), so asymmetric padding needs no separate pad op. A causal
    /// temporal convolution, where output frame t sees only input frames ≤ t, pads the past side alone:
    /// `padding: [(kT - 1, 0), (p, p), (p, p)]`. Gradients reach `x` (the unpadded input), `weight` and `bias`.
    /// - Parameters:
    ///   - x: (N, Cin, T, H, W).
    ///   - weight: (Cout, Cin, kT, kH, kW), PyTorch's layout.
    ///   - bias: (Cout) or nil.
    ///   - stride: the strides along T, H, W.
    ///   - padding: zeros added (before, after) along T, H, W.
    /// - Returns: (N, Cout, Tout, Hout, Wout) with Tout = (T + before + after − kT) / sT + 1 (likewise H, W).
    public static func conv3d(
        _ x: Tensor, weight: Tensor, bias: Tensor?, stride: [Int] = [1, 1, 1],
        padding: [(Int, Int)] = [(0, 0), (0, 0), (0, 0)]
    ) -> Tensor {
        precondition(x.rank == 5, "conv3d: input must be (N, Cin, T, H, W), got \(x.shape)")
        precondition(weight.rank == 5, "conv3d: weight must be (Cout, Cin, kT, kH, kW), got \(weight.shape)")
        return convolution(
            x, weight: weight, bias: bias, stride: stride, padding: padding, input5: x.shape, weight5: weight.shape,
            op: "conv3d")
    }

    /// 3-D convolution with the same zero padding on both sides of each axis (see the (before, after) form).
    /// - Parameters:
    ///   - x: (N, Cin, T, H, W).
    ///   - weight: (Cout, Cin, kT, kH, kW).
    ///   - bias: (Cout) or nil.
    ///   - stride: the strides along T, H, W.
    ///   - padding: zeros added on each side along T, H, W.
    /// - Returns: (N, Cout, Tout, Hout, Wout).
    public static func conv3d(
        _ x: Tensor, weight: Tensor, bias: Tensor?, stride: [Int] = [1, 1, 1], padding: [Int]
    ) -> Tensor {
        conv3d(x, weight: weight, bias: bias, stride: stride, padding: padding.map { ($0, $0) })
    }

    /// 2-D convolution (cross-correlation, as in PyTorch) with zero padding; groups 1, dilation 1.
    /// - Parameters:
    ///   - x: (N, Cin, H, W).
    ///   - weight: (Cout, Cin, kH, kW), PyTorch's layout.
    ///   - bias: (Cout) or nil.
    ///   - stride: the strides along H, W.
    ///   - padding: zeros added (before, after) along H, W.
    /// - Returns: (N, Cout, Hout, Wout) with Hout = (H + before + after − kH) / sH + 1 (likewise W).
    public static func conv2d(
        _ x: Tensor, weight: Tensor, bias: Tensor?, stride: [Int] = [1, 1], padding: [(Int, Int)] = [(0, 0), (0, 0)]
    ) -> Tensor {
        precondition(x.rank == 4, "conv2d: input must be (N, Cin, H, W), got \(x.shape)")
        precondition(weight.rank == 4, "conv2d: weight must be (Cout, Cin, kH, kW), got \(weight.shape)")
        precondition(stride.count == 2, "conv2d: need 2 strides, got \(stride)")
        precondition(padding.count == 2, "conv2d: need 2 (before, after) padding pairs, got \(padding)")
        // A 2-D convolution is the 3-D one over a single frame; the memory layouts coincide.
        var input5 = x.shape, weight5 = weight.shape
        input5.insert(1, at: 2)
        weight5.insert(1, at: 2)
        return convolution(
            x, weight: weight, bias: bias, stride: [1] + stride, padding: [(0, 0)] + padding, input5: input5,
            weight5: weight5, op: "conv2d")
    }

    /// 2-D convolution with the same zero padding on both sides of each axis (see the (before, after) form).
    /// - Parameters:
    ///   - x: (N, Cin, H, W).
    ///   - weight: (Cout, Cin, kH, kW).
    ///   - bias: (Cout) or nil.
    ///   - stride: the strides along H, W.
    ///   - padding: zeros added on each side along H, W.
    /// - Returns: (N, Cout, Hout, Wout).
    public static func conv2d(
        _ x: Tensor, weight: Tensor, bias: Tensor?, stride: [Int] = [1, 1], padding: [Int]
    ) -> Tensor {
        conv2d(x, weight: weight, bias: bias, stride: stride, padding: padding.map { ($0, $0) })
    }

    /// The shared convolution: checks the operands, runs the kernel on the 5-D view of the storage, records the rule.
    /// `input5`/`weight5` are the shapes of `x` and `weight` as (N, Cin, T, H, W) and (Cout, Cin, kT, kH, kW).
    private static func convolution(
        _ x: Tensor, weight: Tensor, bias: Tensor?, stride: [Int], padding: [(Int, Int)], input5: [Int],
        weight5: [Int], op: String
    ) -> Tensor {
        precondition(stride.count == 3, "\(op): need 3 strides, got \(stride)")
        precondition(padding.count == 3, "\(op): need 3 (before, after) padding pairs, got \(padding)")
        precondition(stride.allSatisfy { $0 >= 1 }, "\(op): strides must be ≥ 1, got \(stride)")
        precondition(padding.allSatisfy { $0.0 >= 0 && $0.1 >= 0 }, "\(op): negative padding \(padding)")
        precondition(
            x.dtype == weight.dtype && (bias?.dtype ?? x.dtype) == x.dtype,
            "\(op): dtypes differ: x \(x.dtype), weight \(weight.dtype), bias \(bias.map { "\($0.dtype)" } ?? "none")")
        precondition(
            input5[1] == weight5[1] && input5[1] > 0 && weight5[0] > 0,
            "\(op): input \(x.shape) has \(input5[1]) channels, weight \(weight.shape) expects \(weight5[1])")
        for a in 0..<3 {
            precondition(
                input5[a + 2] + padding[a].0 + padding[a].1 >= weight5[a + 2] && weight5[a + 2] > 0,
                "\(op): kernel \(weight.shape) larger than input \(x.shape) padded by \(padding)")
        }
        if let bias {
            precondition(bias.shape == [weight5[0]], "\(op): bias must be (\(weight5[0])), got \(bias.shape)")
        }
        let g = ConvGeometry(input: input5, weight: weight5, stride: stride, padding: padding)
        var outShape = [g.batch, g.outChannels, g.ot, g.oh, g.ow]
        if x.rank == 4 { outShape.remove(at: 2) }
        let out = Tensor(uninitializedShape: outShape, dtype: x.dtype)
        func run<T: TensorScalar>(_: T.Type) {
            ConvKernel.forward(
                x: x.storage.pointer(as: T.self), weight: weight.storage.pointer(as: T.self),
                bias: bias.map { UnsafePointer($0.storage.pointer(as: T.self)) }, out: out.storage.pointer(as: T.self),
                g)
        }
        let mode = MixedPrecision.current
        if x.requireCompute(op) {
            run(Double.self)
        } else if !DNNLConvolution.forward(
            x: x.storage.pointer(as: Float.self), weight: weight.storage.pointer(as: Float.self),
            bias: bias.map { UnsafePointer($0.storage.pointer(as: Float.self)) },
            out: out.storage.pointer(as: Float.self), g, precision: mode)
        {
            run(Float.self)
        }
        return Autograd.record(
            out, op: op, inputs: [x, weight] + (bias.map { [$0] } ?? []),
            rule: GradientRules.convolution(x, weight: weight, bias: bias, geometry: g, mode: mode))
    }

    /// Gradients of a convolution with geometry `g` for the gradient `gradOut` of its result, their products in
    /// `mode` (the forward's: see `MixedPrecision`).
    /// - Returns: the gradients of x, weight and bias (shaped like them), each nil when its `needs…` is false.
    static func convolutionBackward(
        _ x: Tensor, weight: Tensor, gradOut: Tensor, geometry g: ConvGeometry, needsX: Bool, needsWeight: Bool,
        needsBias: Bool, mode: MixedPrecision.Mode = .float32
    ) -> (x: Tensor?, weight: Tensor?, bias: Tensor?) {
        let gx = needsX ? Tensor(uninitializedShape: x.shape, dtype: x.dtype) : nil
        let gw = needsWeight ? Tensor(uninitializedShape: weight.shape, dtype: x.dtype) : nil
        let gb = needsBias ? Tensor(uninitializedShape: [g.outChannels], dtype: x.dtype) : nil
        func run<T: TensorScalar>(_: T.Type) {
            ConvKernel.backward(
                x: x.storage.pointer(as: T.self), weight: weight.storage.pointer(as: T.self),
                gradOut: gradOut.storage.pointer(as: T.self), g, gradX: gx?.storage.pointer(as: T.self),
                gradWeight: gw?.storage.pointer(as: T.self), gradBias: gb?.storage.pointer(as: T.self))
        }
        precondition(gradOut.dtype == x.dtype, "conv backward: gradient dtype \(gradOut.dtype) ≠ input \(x.dtype)")
        if x.requireCompute("conv backward") {
            run(Double.self)
        } else if !DNNLConvolution.backward(
            x: x.storage.pointer(as: Float.self), weight: weight.storage.pointer(as: Float.self),
            gradOut: gradOut.storage.pointer(as: Float.self), g, gradX: gx?.storage.pointer(as: Float.self),
            gradWeight: gw?.storage.pointer(as: Float.self), gradBias: gb?.storage.pointer(as: Float.self),
            precision: mode)
        {
            run(Float.self)
        }
        return (gx, gw, gb)
    }
}
