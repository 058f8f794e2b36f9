extension Tensor {
    /// A tensor of `shape` filled with `value`.
    public static func full(_ shape: [Int], _ value: Double, dtype: DType = .float32) -> Tensor {
        let t = Tensor(uninitializedShape: shape, dtype: dtype)
        switch dtype {
        case .float32: t.storage.pointer(as: Float.self).update(repeating: Float(value), count: t.count)
        case .float64: t.storage.pointer(as: Double.self).update(repeating: value, count: t.count)
        case .bfloat16:
            t.storage.pointer(as: UInt16.self).update(repeating: BFloat16.bits(from: Float(value)), count: t.count)
        case .float16:
            t.storage.pointer(as: UInt16.self).update(repeating: Float16Bits.bits(from: Float(value)), count: t.count)
        }
        return t
    }

    /// Zeros of `shape`.
    public static func zeros(_ shape: [Int], dtype: DType = .float32) -> Tensor { full(shape, 0, dtype: dtype) }
    /// Ones of `shape`.
    public static func ones(_ shape: [Int], dtype: DType = .float32) -> Tensor { full(shape, 1, dtype: dtype) }
    /// Zeros with the shape and dtype of `other`.
    public static func zeros(like other: Tensor) -> Tensor { zeros(other.shape, dtype: other.dtype) }

    /// `[start, start+step, …)` below `end`, as a 1-D tensor.
    public static func arange(_ start: Double = 0, _ end: Double, step: Double = 1, dtype: DType = .float32) -> Tensor {
        precondition(step != 0, "arange: step must not be zero")
        let n = Swift.max(0, Int(((end - start) / step).rounded(.up)))
        let values = (0..<n).map { start + Double($0) * step }
        return dtype == .float64
            ? Tensor(shape: [n], scalars: values) : Tensor(shape: [n], scalars: values.map(Float.init)).to(dtype)
    }

    /// Uniform [low, high) values from `generator`.
    public static func rand(
        _ shape: [Int], low: Float = 0, high: Float = 1, generator: RandomGenerator, dtype: DType = .float32
    ) -> Tensor {
        let t = Tensor(uninitializedShape: shape, dtype: .float32)
        generator.fillUniform(t.storage.pointer(as: Float.self), count: t.count, low: low, high: high)
        return dtype == .float32 ? t : t.to(dtype)
    }

    /// Normal values from `generator`.
    public static func randn(
        _ shape: [Int], mean: Float = 0, std: Float = 1, generator: RandomGenerator, dtype: DType = .float32
    ) -> Tensor {
        let t = Tensor(uninitializedShape: shape, dtype: .float32)
        generator.fillNormal(t.storage.pointer(as: Float.self), count: t.count, mean: mean, std: std)
        return dtype == .float32 ? t : t.to(dtype)
    }

    /// A converted copy in `dtype` (bfloat16 and float16 round to nearest even). Differentiable between compute
    /// dtypes; the gradient is converted back.
    public func to(_ target: DType) -> Tensor {
        if target == dtype { return self }
        let out = Tensor(uninitializedShape: shape, dtype: target)
        let n = count
        // Go through Float (or Double when both sides are wide) element by element.
        let src = storage.rawPointer, dst = out.storage.rawPointer
        Parallel.forEach(n, grain: 65536) { range in
            for i in range {
                let v: Double
                switch self.dtype {
                case .float32: v = Double(src.assumingMemoryBound(to: Float.self)[i])
                case .float64: v = src.assumingMemoryBound(to: Double.self)[i]
                case .bfloat16: v = Double(BFloat16.float(fromBits: src.assumingMemoryBound(to: UInt16.self)[i]))
                case .float16: v = Double(Float16Bits.float(fromBits: src.assumingMemoryBound(to: UInt16.self)[i]))
                }
                switch target {
                case .float32: dst.assumingMemoryBound(to: Float.self)[i] = Float(v)
                case .float64: dst.assumingMemoryBound(to: Double.self)[i] = v
                case .bfloat16: dst.assumingMemoryBound(to: UInt16.self)[i] = BFloat16.bits(from: Float(v))
                case .float16: dst.assumingMemoryBound(to: UInt16.self)[i] = Float16Bits.bits(from: Float(v))
                }
            }
        }
        let source = dtype
        return Autograd.record(out, op: "to", inputs: [self], rule: GradientRules.convert(from: source))
    }
}
