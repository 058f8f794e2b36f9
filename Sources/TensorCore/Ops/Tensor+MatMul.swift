extension Tensor {
    /// Batched matrix product through BLAS: op(a)·op(b) over the last two axes, batch axes broadcast.
    ///
    /// Float32 products inside a `MixedPrecision.bfloat16` scope run through oneDNN with bfloat16 operands and
    /// Float32 accumulation and output; a rank-2 `b` that is a parameter (a leaf that requires a gradient) is then
    /// reordered once and cached until it changes (see `DNNLMatmul`). The gradient products run in the mode of the
    /// forward product.
    /// - Parameters:
    ///   - a: (…, M, K), or (…, K, M) when `transposeA`.
    ///   - b: (…, K, N), or (…, N, K) when `transposeB`.
    /// - Returns: (…, M, N).
    public static func matmul(_ a: Tensor, _ b: Tensor, transposeA: Bool = false, transposeB: Bool = false) -> Tensor {
        precondition(a.rank >= 2 && b.rank >= 2, "matmul: operands need rank ≥ 2, got \(a.shape) and \(b.shape)")
        precondition(a.dtype == b.dtype, "matmul: dtypes \(a.dtype) and \(b.dtype) differ")
        let m = transposeA ? a.shape[a.rank - 1] : a.shape[a.rank - 2]
        let ka = transposeA ? a.shape[a.rank - 2] : a.shape[a.rank - 1]
        let kb = transposeB ? b.shape[b.rank - 1] : b.shape[b.rank - 2]
        let n = transposeB ? b.shape[b.rank - 2] : b.shape[b.rank - 1]
        precondition(ka == kb, "matmul: inner extents differ: \(a.shape)\(transposeA ? "ᵀ" : "") · \(b.shape)\(transposeB ? "ᵀ" : "")")
        let batchA = Array(a.shape.dropLast(2)), batchB = Array(b.shape.dropLast(2))
        let batch = Shape.broadcast(batchA, batchB, op: "matmul")
        let out = Tensor(uninitializedShape: batch + [m, n], dtype: a.dtype)
        let batchCount = batch.reduce(1, *)
        // Matrix offsets of each batch entry in a and b (0 strides on broadcast axes).
        let sa = Shape.broadcastStrides(batchA, to: batch), sb = Shape.broadcastStrides(batchB, to: batch)
        let batchStrides = Shape.strides(batch)
        let mode = MixedPrecision.current
        func run<T: TensorScalar>(_: T.Type) {
            let pa = a.storage.pointer(as: T.self), pb = b.storage.pointer(as: T.self)
            let po = out.storage.pointer(as: T.self)
            let lda = a.shape[a.rank - 1], ldb = b.shape[b.rank - 1]
            if ka == 0 {
                po.update(repeating: 0, count: out.count)
                return
            }
            for i in 0..<batchCount {
                var oa = 0, ob = 0, rem = i
                for d in 0..<batch.count {
                    let idx = rem / batchStrides[d]
                    rem %= batchStrides[d]
                    oa += idx * sa[d]
                    ob += idx * sb[d]
                }
                if T.self == Float.self && mode == .bfloat16 && ka > 0 {
                    let isWeight = b.rank == 2 && batchCount == 1 && b.requiresGrad && b.gradNode == nil
                    let done = DNNLMatmul.gemm(
                        transA: transposeA, transB: transposeB, m: m, n: n, k: ka,
                        a: UnsafeRawPointer(pa + oa * m * ka).assumingMemoryBound(to: Float.self),
                        b: UnsafeRawPointer(pb + ob * ka * n).assumingMemoryBound(to: Float.self),
                        c: UnsafeMutableRawPointer(po + i * m * n).assumingMemoryBound(to: Float.self),
                        weight: isWeight ? b.storage : nil)
                    if done { continue }
                }
                T.gemm(
                    transA: transposeA, transB: transposeB, m: m, n: n, k: ka, alpha: 1,
                    a: pa + oa * m * ka, lda: lda, b: pb + ob * ka * n, ldb: ldb, beta: 0,
                    c: po + i * m * n, ldc: n)
            }
        }
        if a.requireCompute("matmul") { run(Double.self) } else { run(Float.self) }
        return Autograd.record(
            out, op: "matmul", inputs: [a, b],
            rule: GradientRules.matmul(a, b, transposeA: transposeA, transposeB: transposeB, mode: mode))
    }

    /// `self · other` (see `Tensor.matmul`).
    public func matmul(_ other: Tensor, transposeOther: Bool = false) -> Tensor {
        Tensor.matmul(self, other, transposeB: transposeOther)
    }

    /// The affine map of a linear layer: x·Wᵀ + b with PyTorch's weight layout.
    /// - Parameters:
    ///   - x: (…, K).
    ///   - weight: (N, K).
    ///   - bias: (N) or nil.
    /// - Returns: (…, N).
    public static func linear(_ x: Tensor, weight: Tensor, bias: Tensor?) -> Tensor {
        precondition(weight.rank == 2, "linear: weight must be (out, in), got \(weight.shape)")
        precondition(x.shape.last == weight.shape[1], "linear: input \(x.shape) does not end in \(weight.shape[1])")
        let k = weight.shape[1], n = weight.shape[0]
        let rows = x.count / Swift.max(k, 1)
        let y = matmul(x.reshape([rows, k]), weight, transposeB: true)
        let withBias = bias.map { y + $0 } ?? y
        return withBias.reshape(Array(x.shape.dropLast()) + [n])
    }
}
