extension Tensor {
    /// adaLN modulation of a non-affine LayerNorm, fused: LayerNorm(x)·(1 + scale) + shift, as DiT's
    /// `modulate(norm(x), shift, scale)` with `norm = LayerNorm(D, elementwise_affine=False)`. One pass over memory
    /// forward (it saves the per-row mean and 1/std) and one backward; bit-identical in the forward to the composite
    /// `layerNorm(x) * (scale + 1) + shift`.
    /// - Parameters:
    ///   - x: (…, D).
    ///   - shift: broadcastable to x with last axis D: per token (1, L, D) — the Goku block's packed modulation —,
    ///     per sample (B, 1, D), or (1, 1, D).
    ///   - scale: the same kinds of shape as `shift` (it need not be the same one).
    ///   - eps: added to the variance.
    ///   - rowIndex: per-sample modulation of a packed sequence: shift and scale are (N, D) and row r of x (its
    ///     tokens in order) uses their row `rowIndex[r]`, so that the per-token modulation is never gathered into
    ///     (1, L, D) copies; nil: shift and scale broadcast as above.
    /// - Returns: the shape of x.
    public static func modulatedLayerNorm(
        _ x: Tensor, shift: Tensor, scale: Tensor, eps: Double, rowIndex: [Int]? = nil
    ) -> Tensor {
        modulatedNorm(
            x, weight: nil, shift: shift, scale: scale, eps: eps, centered: true, rowIndex: rowIndex,
            op: "modulatedLayerNorm")
    }

    /// adaLN modulation of an RMSNorm, fused: RMSNorm(x)·weight·(1 + scale) + shift (the Goku block's FFN input).
    /// Same passes, shapes and bit-identity to the composite as `modulatedLayerNorm`.
    /// - Parameters:
    ///   - x: (…, D).
    ///   - weight: (D) learned RMSNorm scale, or nil.
    ///   - shift: broadcastable to x with last axis D (see `modulatedLayerNorm`).
    ///   - scale: broadcastable to x with last axis D.
    ///   - eps: added to the mean of squares.
    ///   - rowIndex: per-sample modulation rows (see `modulatedLayerNorm`).
    /// - Returns: the shape of x.
    public static func modulatedRMSNorm(
        _ x: Tensor, weight: Tensor?, shift: Tensor, scale: Tensor, eps: Double, rowIndex: [Int]? = nil
    ) -> Tensor {
        modulatedNorm(
            x, weight: weight, shift: shift, scale: scale, eps: eps, centered: false, rowIndex: rowIndex,
            op: "modulatedRMSNorm")
    }

    /// The gated residual of an adaLN-Zero block, fused: x + gate·branch in one pass (forward), and one pass for
    /// the gradients of branch and gate (x's gradient is the incoming one).
    /// - Parameters:
    ///   - x: the residual stream, (…, D).
    ///   - gate: broadcastable to x with last axis D: (1, L, D), (B, 1, D) or (1, 1, D); or (N, D) with `rowIndex`.
    ///   - branch: the branch output, the shape of x.
    ///   - rowIndex: per-sample gate rows (see `modulatedLayerNorm`).
    /// - Returns: the shape of x.
    public static func gatedResidual(_ x: Tensor, gate: Tensor, branch: Tensor, rowIndex: [Int]? = nil) -> Tensor {
        precondition(
            branch.shape == x.shape, "gatedResidual: branch \(branch.shape) must have the shape of x \(x.shape)")
        checkModulation(x, gate, name: "gate", rowIndex: rowIndex, op: "gatedResidual")
        precondition(
            branch.dtype == x.dtype, "gatedResidual: dtypes of x (\(x.dtype)) and branch (\(branch.dtype)) differ")
        let d = x.shape.last!, rows = x.count / d
        let gateRows = modulationRows(x.shape, operand: gate.shape, rowIndex: rowIndex)
        let out = Tensor(uninitializedShape: x.shape, dtype: x.dtype)
        func run<T: TensorScalar>(_: T.Type) {
            ModulationKernel.residualForward(
                x.storage.pointer(as: T.self), gate: gate.storage.pointer(as: T.self), gateRows: gateRows,
                branch: branch.storage.pointer(as: T.self), out.storage.pointer(as: T.self), rows: rows, d: d)
        }
        if x.requireCompute("gatedResidual") { run(Double.self) } else { run(Float.self) }
        return Autograd.record(
            out, op: "gatedResidual", inputs: [x, gate, branch],
            rule: GradientRules.gatedResidual(x, gate: gate, branch: branch, gateRows: gateRows, rowIndex: rowIndex))
    }

    /// The element offset in the modulation operand of the row each row of x uses: by broadcasting, or
    /// `rowIndex[r]`·D.
    private static func modulationRows(_ shape: [Int], operand: [Int], rowIndex: [Int]?) -> [Int] {
        guard let rowIndex else { return ModulationKernel.rowOffsets(shape, operand: operand) }
        let d = shape.last!
        return rowIndex.map { $0 * d }
    }

    /// Stops unless `m` is a modulation operand for x: same dtype, last axis D, rank ≤ x's, every other axis 1 or x's;
    /// with `rowIndex`, (N, D) with one index in 0..<N per row of x.
    private static func checkModulation(_ x: Tensor, _ m: Tensor, name: String, rowIndex: [Int]? = nil, op: String) {
        precondition(x.rank >= 1 && x.shape.last! > 0, "\(op): input must be (…, D) with D > 0, got \(x.shape)")
        precondition(m.dtype == x.dtype, "\(op): dtypes of x (\(x.dtype)) and \(name) (\(m.dtype)) differ")
        if let rowIndex {
            let d = x.shape.last!, rows = x.count / d
            precondition(
                m.rank == 2 && m.shape[1] == d, "\(op): with rowIndex, \(name) must be (N, \(d)), got \(m.shape)")
            precondition(
                rowIndex.count == rows, "\(op): rowIndex has \(rowIndex.count) entries for \(rows) rows of x \(x.shape)")
            precondition(
                rowIndex.allSatisfy { $0 >= 0 && $0 < m.shape[0] },
                "\(op): rowIndex entries must lie in 0..<\(m.shape[0]) (the rows of \(name))")
            return
        }
        let lead = x.rank - m.rank
        let fits =
            m.rank >= 1 && lead >= 0 && m.shape.last == x.shape.last
            && m.shape.indices.allSatisfy { m.shape[$0] == 1 || m.shape[$0] == x.shape[$0 + lead] }
        precondition(fits, "\(op): \(name) \(m.shape) must broadcast to x \(x.shape) with last axis \(x.shape.last!)")
    }

    /// The modulated LayerNorm (`centered`) or RMSNorm.
    private static func modulatedNorm(
        _ x: Tensor, weight: Tensor?, shift: Tensor, scale: Tensor, eps: Double, centered: Bool, rowIndex: [Int]?,
        op: String
    ) -> Tensor {
        checkModulation(x, shift, name: "shift", rowIndex: rowIndex, op: op)
        checkModulation(x, scale, name: "scale", rowIndex: rowIndex, op: op)
        let d = x.shape.last!, rows = x.count / d
        if let weight {
            precondition(weight.shape == [d], "\(op): weight must be (\(d)) for input \(x.shape), got \(weight.shape)")
            precondition(
                weight.dtype == x.dtype, "\(op): weight dtype \(weight.dtype) differs from input dtype \(x.dtype)")
        }
        let shiftRows = modulationRows(x.shape, operand: shift.shape, rowIndex: rowIndex)
        let scaleRows = modulationRows(x.shape, operand: scale.shape, rowIndex: rowIndex)
        let out = Tensor(uninitializedShape: x.shape, dtype: x.dtype)
        let mean = Tensor(uninitializedShape: [rows], dtype: x.dtype)
        let rstd = Tensor(uninitializedShape: [rows], dtype: x.dtype)
        func run<T: TensorScalar>(_: T.Type) {
            ModulationKernel.normForward(
                x.storage.pointer(as: T.self), weight: weight?.storage.pointer(as: T.self),
                shift: shift.storage.pointer(as: T.self), shiftRows: shiftRows,
                scale: scale.storage.pointer(as: T.self), scaleRows: scaleRows, out.storage.pointer(as: T.self),
                mean: mean.storage.pointer(as: T.self), rstd: rstd.storage.pointer(as: T.self), rows: rows, d: d,
                eps: eps, centered: centered)
        }
        if x.requireCompute(op) { run(Double.self) } else { run(Float.self) }
        return Autograd.record(
            out, op: op, inputs: [x, shift, scale] + [weight].compactMap { $0 },
            rule: GradientRules.modulatedNorm(
                x, weight: weight, shift: shift, scale: scale, scaleRows: scaleRows, rowIndex: rowIndex, mean: mean,
                rstd: rstd, centered: centered))
    }

    /// Gradients of the modulated norm; each is computed only when `need…`. dshift and dscale come back reduced to
    /// the shapes of shift and scale.
    /// - Returns: dx, dshift, dscale, dweight.
    static func modulatedNormBackward(
        _ x: Tensor, weight: Tensor?, shift: Tensor, scale: Tensor, scaleRows: [Int], rowIndex: [Int]?, mean: Tensor,
        rstd: Tensor, grad: Tensor, centered: Bool, need: (x: Bool, shift: Bool, scale: Bool, weight: Bool)
    ) -> (Tensor?, Tensor?, Tensor?, Tensor?) {
        precondition(
            grad.shape == x.shape && grad.dtype == x.dtype,
            "modulated norm backward: gradient \(grad.shape) for \(x.shape)")
        let d = x.shape.last!
        let dx = need.x ? Tensor(uninitializedShape: x.shape, dtype: x.dtype) : nil
        let dscaleFull = need.scale ? Tensor(uninitializedShape: x.shape, dtype: x.dtype) : nil
        let dw = need.weight ? Tensor(uninitializedShape: [d], dtype: x.dtype) : nil
        func run<T: TensorScalar>(_: T.Type) {
            ModulationKernel.normBackward(
                x.storage.pointer(as: T.self), weight: weight?.storage.pointer(as: T.self),
                scale: scale.storage.pointer(as: T.self), scaleRows: scaleRows, mean: mean.storage.pointer(as: T.self),
                rstd: rstd.storage.pointer(as: T.self), grad.storage.pointer(as: T.self),
                dx: dx?.storage.pointer(as: T.self), dscale: dscaleFull?.storage.pointer(as: T.self),
                dweight: dw?.storage.pointer(as: T.self), rows: x.count / d, d: d, centered: centered)
        }
        if x.dtype == .float64 { run(Double.self) } else { run(Float.self) }
        return (
            dx, need.shift ? reduceModulation(grad, to: shift.shape, rowIndex: rowIndex) : nil,
            dscaleFull.map { reduceModulation($0, to: scale.shape, rowIndex: rowIndex) }, dw
        )
    }

    /// Gradients of the gated residual: dbranch = g·gate, dgate = Σ g∘branch over the rows sharing a gate row.
    /// - Returns: dgate, dbranch.
    static func gatedResidualBackward(
        gate: Tensor, branch: Tensor, gateRows: [Int], rowIndex: [Int]?, grad: Tensor, needGate: Bool, needBranch: Bool
    ) -> (Tensor?, Tensor?) {
        let d = branch.shape.last!
        let dbranch = needBranch ? Tensor(uninitializedShape: branch.shape, dtype: branch.dtype) : nil
        let dgateFull = needGate ? Tensor(uninitializedShape: branch.shape, dtype: branch.dtype) : nil
        func run<T: TensorScalar>(_: T.Type) {
            ModulationKernel.residualBackward(
                grad.storage.pointer(as: T.self), gate: gate.storage.pointer(as: T.self), gateRows: gateRows,
                branch: branch.storage.pointer(as: T.self), dbranch: dbranch?.storage.pointer(as: T.self),
                dgate: dgateFull?.storage.pointer(as: T.self), rows: branch.count / d, d: d)
        }
        if branch.dtype == .float64 { run(Double.self) } else { run(Float.self) }
        return (dgateFull.map { reduceModulation($0, to: gate.shape, rowIndex: rowIndex) }, dbranch)
    }

    /// A full-size (x-shaped) gradient summed down to a modulation operand's shape (no copy when they match), or with
    /// `rowIndex` summed per modulation row: row r of `full` into row rowIndex[r] of the (N, D) result.
    private static func reduceModulation(_ full: Tensor, to shape: [Int], rowIndex: [Int]?) -> Tensor {
        if let rowIndex {
            let d = shape[1]
            return scatterAdd(full.reshape([rowIndex.count, d]), axis: 0, indices: rowIndex, extent: shape[0])
        }
        if full.count == shape.reduce(1, *) { return full.reshape(shape) }
        return full.sumTo(shape)
    }
}
