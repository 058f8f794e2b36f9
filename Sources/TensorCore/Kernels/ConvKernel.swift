/// Forward and backward kernels of 3-D convolution (groups 1, dilation 1) by vol2col and BLAS GEMM.
///
/// Per batch element, with K = Cin·kT·kH·kW and P the output positions:
///   forward   out(Cout, P) = W(Cout, K) · col(K, P) + b
///   backward  dW += dY(Cout, P) · col(K, P)ᵀ,  db = Σ dY,  dX = col2vol(Wᵀ(K, Cout) · dY(Cout, P))
/// `col` is built for a chunk of output rows at a time (see `Convolution.columnBufferLimitBytes`), so memory stays
/// bounded whatever the clip size. Column building and scattering run on the pool; the GEMMs run outside any parallel
/// region so that BLAS uses its own threads.
enum ConvKernel {
    /// Writes the column matrix of output rows `rows` of one batch element: col(K, rows.count·Wout).
    /// - Parameters:
    ///   - x: one batch element, (Cin, T, H, W).
    ///   - col: room for K · rows.count · Wout elements.
    static func vol2col<T: TensorScalar>(
        _ x: UnsafePointer<T>, _ g: ConvGeometry, rows: Range<Int>, into col: UnsafeMutablePointer<T>
    ) {
        let width = rows.count * g.ow
        Parallel.forEach(g.columnRows, grain: Swift.max(1, 16384 / Swift.max(width, 1))) { ks in
            for k in ks {
                let kw = k % g.kw, kh = (k / g.kw) % g.kh, kt = (k / (g.kw * g.kh)) % g.kt
                let ci = k / (g.kw * g.kh * g.kt)
                let valid = g.validOutputColumns(kw: kw)
                let offset = kw - g.pw
                for (j, r) in rows.enumerated() {
                    let dst = col + k * width + j * g.ow
                    let t = (r / g.oh) * g.st + kt - g.pt, h = (r % g.oh) * g.sh + kh - g.ph
                    guard t >= 0 && t < g.t && h >= 0 && h < g.h && !valid.isEmpty else {
                        dst.update(repeating: 0, count: g.ow)
                        continue
                    }
                    let src = UnsafePointer(x + ((ci * g.t + t) * g.h + h) * g.w + offset)
                    dst.update(repeating: 0, count: valid.lowerBound)
                    if g.sw == 1 {
                        (dst + valid.lowerBound).update(from: src + valid.lowerBound, count: valid.count)
                    } else {
                        for wo in valid { dst[wo] = src[wo * g.sw] }
                    }
                    (dst + valid.upperBound).update(repeating: 0, count: g.ow - valid.upperBound)
                }
            }
        }
    }

    /// Adds the column-matrix gradient of output rows `rows` back into the input gradient (the adjoint of `vol2col`).
    ///
    /// Parallel over input channels, so no two threads touch the same element. Within a channel the loop runs over
    /// output rows first and kernel offsets second; as chunks are consecutive row ranges, every input element
    /// receives its contributions in the same order whatever the chunk size.
    /// - Parameters:
    ///   - col: (K, rows.count·Wout).
    ///   - dx: one batch element, (Cin, T, H, W); accumulated into.
    static func col2vol<T: TensorScalar>(
        _ col: UnsafePointer<T>, _ g: ConvGeometry, rows: Range<Int>, into dx: UnsafeMutablePointer<T>
    ) {
        let width = rows.count * g.ow
        let perChannel = g.kt * g.kh * g.kw
        let validColumns = (0..<g.kw).map { g.validOutputColumns(kw: $0) }
        Parallel.forEach(g.inChannels, grain: 1) { channels in
            for ci in channels {
                for (j, r) in rows.enumerated() {
                    let to = r / g.oh, ho = r % g.oh
                    for kt in 0..<g.kt {
                        let t = to * g.st + kt - g.pt
                        if t < 0 || t >= g.t { continue }
                        for kh in 0..<g.kh {
                            let h = ho * g.sh + kh - g.ph
                            if h < 0 || h >= g.h { continue }
                            let rowBase = dx + ((ci * g.t + t) * g.h + h) * g.w
                            for kw in 0..<g.kw {
                                let k = ci * perChannel + (kt * g.kh + kh) * g.kw + kw
                                let src = col + k * width + j * g.ow
                                let dst = rowBase + (kw - g.pw)
                                if g.sw == 1 {
                                    for wo in validColumns[kw] { dst[wo] += src[wo] }
                                } else {
                                    for wo in validColumns[kw] { dst[wo * g.sw] += src[wo] }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// out = conv(x, W) + b.
    /// - Parameters:
    ///   - x: (N, Cin, T, H, W); weight: (Cout, Cin, kT, kH, kW); bias: (Cout) or nil.
    ///   - out: (N, Cout, Tout, Hout, Wout), overwritten.
    static func forward<T: TensorScalar>(
        x: UnsafePointer<T>, weight: UnsafePointer<T>, bias: UnsafePointer<T>?, out: UnsafeMutablePointer<T>,
        _ g: ConvGeometry
    ) {
        let positions = g.outputPositions, rowsK = g.columnRows
        // Start from the bias so that every GEMM accumulates (beta = 1).
        Parallel.forEach(g.batch * g.outChannels, grain: Swift.max(1, 32768 / Swift.max(positions, 1))) { planes in
            for plane in planes {
                let value = bias?[plane % g.outChannels] ?? 0
                out.advanced(by: plane * positions).update(repeating: value, count: positions)
            }
        }
        if g.isPointwise {
            for n in 0..<g.batch {
                T.gemm(
                    transA: false, transB: false, m: g.outChannels, n: positions, k: g.inChannels, alpha: 1,
                    a: weight, lda: g.inChannels, b: x + n * g.inChannels * g.inputVolume, ldb: positions, beta: 1,
                    c: out + n * g.outChannels * positions, ldc: positions)
            }
            return
        }
        let chunkRows = g.rowsPerChunk(elementSize: MemoryLayout<T>.stride)
        let col = UnsafeMutablePointer<T>.allocate(capacity: rowsK * chunkRows * g.ow)
        defer { col.deallocate() }
        for n in 0..<g.batch {
            let xn = x + n * g.inChannels * g.inputVolume, on = out + n * g.outChannels * positions
            for r0 in stride(from: 0, to: g.outputRows, by: chunkRows) {
                let rows = r0..<Swift.min(g.outputRows, r0 + chunkRows)
                let width = rows.count * g.ow
                vol2col(xn, g, rows: rows, into: col)
                T.gemm(
                    transA: false, transB: false, m: g.outChannels, n: width, k: rowsK, alpha: 1,
                    a: weight, lda: rowsK, b: col, ldb: width, beta: 1, c: on + r0 * g.ow, ldc: positions)
            }
        }
    }

    /// Gradients of `forward` for the gradient `gradOut` of its result; each destination that is nil is skipped.
    /// - Parameters:
    ///   - gradOut: (N, Cout, Tout, Hout, Wout).
    ///   - gradX: (N, Cin, T, H, W), overwritten. gradWeight: (Cout, Cin, kT, kH, kW), overwritten.
    ///     gradBias: (Cout), overwritten.
    static func backward<T: TensorScalar>(
        x: UnsafePointer<T>, weight: UnsafePointer<T>, gradOut: UnsafePointer<T>, _ g: ConvGeometry,
        gradX: UnsafeMutablePointer<T>?, gradWeight: UnsafeMutablePointer<T>?, gradBias: UnsafeMutablePointer<T>?
    ) {
        let positions = g.outputPositions, rowsK = g.columnRows
        if let gradBias { sumPlanes(gradOut, g, into: gradBias) }
        if gradX == nil && gradWeight == nil { return }
        gradWeight?.update(repeating: 0, count: g.outChannels * rowsK)
        if g.isPointwise {
            for n in 0..<g.batch {
                let xn = x + n * g.inChannels * g.inputVolume, gn = gradOut + n * g.outChannels * positions
                if let gradWeight {
                    T.gemm(
                        transA: false, transB: true, m: g.outChannels, n: g.inChannels, k: positions, alpha: 1,
                        a: gn, lda: positions, b: xn, ldb: positions, beta: 1, c: gradWeight, ldc: g.inChannels)
                }
                if let gradX {
                    T.gemm(
                        transA: true, transB: false, m: g.inChannels, n: positions, k: g.outChannels, alpha: 1,
                        a: weight, lda: g.inChannels, b: gn, ldb: positions, beta: 0,
                        c: gradX + n * g.inChannels * g.inputVolume, ldc: positions)
                }
            }
            return
        }
        gradX?.update(repeating: 0, count: g.batch * g.inChannels * g.inputVolume)
        // One buffer serves both: the columns of x (for dW) are consumed before the column gradient overwrites them.
        let chunkRows = g.rowsPerChunk(elementSize: MemoryLayout<T>.stride)
        let col = UnsafeMutablePointer<T>.allocate(capacity: rowsK * chunkRows * g.ow)
        defer { col.deallocate() }
        for n in 0..<g.batch {
            let xn = x + n * g.inChannels * g.inputVolume, gn = gradOut + n * g.outChannels * positions
            for r0 in stride(from: 0, to: g.outputRows, by: chunkRows) {
                let rows = r0..<Swift.min(g.outputRows, r0 + chunkRows)
                let width = rows.count * g.ow
                if let gradWeight {
                    vol2col(xn, g, rows: rows, into: col)
                    T.gemm(
                        transA: false, transB: true, m: g.outChannels, n: rowsK, k: width, alpha: 1,
                        a: gn + r0 * g.ow, lda: positions, b: col, ldb: width, beta: 1, c: gradWeight, ldc: rowsK)
                }
                if let gradX {
                    T.gemm(
                        transA: true, transB: false, m: rowsK, n: width, k: g.outChannels, alpha: 1,
                        a: weight, lda: rowsK, b: gn + r0 * g.ow, ldb: positions, beta: 0, c: col, ldc: width)
                    col2vol(col, g, rows: rows, into: gradX + n * g.inChannels * g.inputVolume)
                }
            }
        }
    }

    /// gradBias[co] = Σ over batch and positions of gradOut[n, co, …].
    private static func sumPlanes<T: TensorScalar>(
        _ gradOut: UnsafePointer<T>, _ g: ConvGeometry, into gradBias: UnsafeMutablePointer<T>
    ) {
        let positions = g.outputPositions
        Parallel.forEach(g.outChannels, grain: Swift.max(1, 32768 / Swift.max(positions * g.batch, 1))) { channels in
            for co in channels {
                var total: T = 0
                for n in 0..<g.batch {
                    let plane = gradOut + (n * g.outChannels + co) * positions
                    for p in 0..<positions { total += plane[p] }
                }
                gradBias[co] = total
            }
        }
    }
}
