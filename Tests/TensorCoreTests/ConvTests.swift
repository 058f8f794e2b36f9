import TensorCore
import TestSupport
import XCTest

/// Direct-loop 3-D convolution in Float64, the independent reference for the GEMM kernels.
/// x (N, Cin, T, H, W), w (Cout, Cin, kT, kH, kW), padding (before, after) per axis.
private func referenceConv3d(
    _ x: Tensor, _ w: Tensor, _ b: Tensor?, stride s: [Int], padding p: [(Int, Int)]
) -> Tensor {
    let (n, cin, t, h, wd) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3], x.shape[4])
    let (cout, kt, kh, kw) = (w.shape[0], w.shape[2], w.shape[3], w.shape[4])
    let ot = (t + p[0].0 + p[0].1 - kt) / s[0] + 1
    let oh = (h + p[1].0 + p[1].1 - kh) / s[1] + 1
    let ow = (wd + p[2].0 + p[2].1 - kw) / s[2] + 1
    let xs = x.doubleScalars, ws = w.doubleScalars, bs = b?.doubleScalars
    var out = [Double](repeating: 0, count: n * cout * ot * oh * ow)
    var index = 0
    for ni in 0..<n {
        for co in 0..<cout {
            for a in 0..<ot {
                for c in 0..<oh {
                    for d in 0..<ow {
                        var acc = bs?[co] ?? 0
                        for ci in 0..<cin {
                            for i in 0..<kt {
                                for j in 0..<kh {
                                    for l in 0..<kw {
                                        let ti = a * s[0] + i - p[0].0, hi = c * s[1] + j - p[1].0
                                        let wi = d * s[2] + l - p[2].0
                                        let inside = ti >= 0 && ti < t && hi >= 0 && hi < h && wi >= 0 && wi < wd
                                        guard inside else { continue }
                                        acc += xs[(((ni * cin + ci) * t + ti) * h + hi) * wd + wi]
                                            * ws[(((co * cin + ci) * kt + i) * kh + j) * kw + l]
                                    }
                                }
                            }
                        }
                        out[index] = acc
                        index += 1
                    }
                }
            }
        }
    }
    return Tensor(shape: [n, cout, ot, oh, ow], scalars: out)
}

final class ConvFixtureTests: XCTestCase {
    /// Runs one fixture case: forward, then backward of Σ output·grad_output.
    private func checkCase(
        _ f: [String: Tensor], suffix: String, _ conv: (Tensor, Tensor, Tensor) -> Tensor,
        file: StaticString = #filePath, line: UInt = #line
    ) {
        let x = f.tensor("x\(suffix)"), w = f.tensor("weight\(suffix)"), b = f.tensor("bias\(suffix)")
        for t in [x, w, b] { t.requiresGrad = true }
        let y = conv(x, w, b)
        expectClose(y, f.tensor("output\(suffix)"), rtol: 1e-4, atol: 1e-4, "output\(suffix)", file: file, line: line)
        (y * f.tensor("grad_output\(suffix)")).sum().backward()
        expectClose(
            x.grad!, f.tensor("grad_x\(suffix)"), rtol: 1e-4, atol: 1e-4, "grad_x\(suffix)", file: file, line: line)
        expectClose(
            w.grad!, f.tensor("grad_weight\(suffix)"), rtol: 1e-4, atol: 1e-4, "grad_weight\(suffix)", file: file,
            line: line)
        expectClose(
            b.grad!, f.tensor("grad_bias\(suffix)"), rtol: 1e-4, atol: 1e-4, "grad_bias\(suffix)", file: file,
            line: line)
    }

    func testConv3dStridedPaddedMatchesPyTorch() throws {
        let f = try Fixture.load("conv3d", target: "TensorCoreTests")
        checkCase(f, suffix: "_a") { x, w, b in
            Tensor.conv3d(x, weight: w, bias: b, stride: [1, 2, 2], padding: [1, 1, 1])
        }
    }

    func testConv3dCausalMatchesPyTorch() throws {
        let f = try Fixture.load("conv3d", target: "TensorCoreTests")
        // Two zero frames on the past side only, one zero row/column on each spatial side.
        checkCase(f, suffix: "_b") { x, w, b in
            Tensor.conv3d(x, weight: w, bias: b, stride: [2, 1, 1], padding: [(2, 0), (1, 1), (1, 1)])
        }
    }

    func testConv2dMatchesPyTorch() throws {
        let f = try Fixture.load("conv2d", target: "TensorCoreTests")
        checkCase(f, suffix: "") { x, w, b in Tensor.conv2d(x, weight: w, bias: b, stride: [2, 2], padding: [1, 1]) }
    }
}

final class ConvTests: XCTestCase {
    func testConv3dMatchesDirectLoopWithAsymmetricPadding() {
        let g = RandomGenerator(seed: 3)
        let x = Tensor.randn([2, 3, 5, 7, 6], generator: g), w = Tensor.randn([4, 3, 2, 3, 3], generator: g)
        let b = Tensor.randn([4], generator: g)
        let padding = [(1, 0), (0, 2), (2, 1)]
        let y = Tensor.conv3d(x, weight: w, bias: b, stride: [2, 1, 3], padding: padding)
        let expected = referenceConv3d(x, w, b, stride: [2, 1, 3], padding: padding)
        expectClose(y, expected, rtol: 1e-5, atol: 1e-5, "conv3d vs direct loop")
    }

    func testPointwiseConvMatchesMatmul() {
        let g = RandomGenerator(seed: 4)
        let x = Tensor.randn([2, 5, 3, 4, 6], generator: g), w = Tensor.randn([7, 5, 1, 1, 1], generator: g)
        let y = Tensor.conv3d(x, weight: w, bias: nil)
        // out[n] (Cout, P) = W (Cout, Cin) · x[n] (Cin, P).
        let expected = Tensor.matmul(w.reshape([7, 5]), x.reshape([2, 5, 72])).reshape([2, 7, 3, 4, 6])
        expectClose(y, expected, rtol: 1e-5, atol: 1e-5, "1×1×1 conv vs matmul")
    }

    func testConv3dGradientsStridedAsymmetricPadding() {
        let xs = GradientCheck.inputs([[2, 2, 4, 5, 4], [3, 2, 2, 3, 2], [3]])
        GradientCheck.check(xs, "conv3d stride (2,1,2), padding ((1,0),(0,2),(1,1))") { v in
            Tensor.conv3d(v[0], weight: v[1], bias: v[2], stride: [2, 1, 2], padding: [(1, 0), (0, 2), (1, 1)])
        }
    }

    func testConv3dGradientsCausalWithoutBias() {
        let xs = GradientCheck.inputs([[1, 2, 4, 3, 3], [2, 2, 3, 3, 3]], seed: 2)
        GradientCheck.check(xs, "causal conv3d, no bias") { v in
            Tensor.conv3d(v[0], weight: v[1], bias: nil, padding: [(2, 0), (1, 1), (1, 1)])
        }
    }

    func testConv3dGradientsPointwise() {
        let xs = GradientCheck.inputs([[2, 3, 2, 3, 2], [4, 3, 1, 1, 1], [4]], seed: 5)
        GradientCheck.check(xs, "conv3d 1×1×1") { v in Tensor.conv3d(v[0], weight: v[1], bias: v[2]) }
    }

    func testConv2dGradients() {
        let xs = GradientCheck.inputs([[2, 2, 5, 6], [3, 2, 3, 2], [3]], seed: 6)
        GradientCheck.check(xs, "conv2d stride (2,1), padding ((1,1),(0,1))") { v in
            Tensor.conv2d(v[0], weight: v[1], bias: v[2], stride: [2, 1], padding: [(1, 1), (0, 1)])
        }
    }

    /// Forward and all gradients of a 3×3×3 convolution, with the column buffer limited to `limit` bytes.
    private func convolveWithLimit(
        _ limit: Int, x: Tensor, w: Tensor, b: Tensor, gy: Tensor
    ) -> (y: Tensor, gx: Tensor, gw: Tensor, gb: Tensor) {
        let saved = (Convolution.columnBufferLimitBytes, Convolution.usesDNNL)
        Convolution.columnBufferLimitBytes = limit
        Convolution.usesDNNL = false  // the chunking under test is the vol2col path's
        defer { (Convolution.columnBufferLimitBytes, Convolution.usesDNNL) = saved }
        let xv = x.detached(), wv = w.detached(), bv = b.detached()
        for t in [xv, wv, bv] { t.requiresGrad = true }
        let y = Tensor.conv3d(xv, weight: wv, bias: bv, padding: [1, 1, 1])
        (y * gy).sum().backward()
        return (y, xv.grad!, wv.grad!, bv.grad!)
    }

    /// Values drawn from {−3, …, 3}: every product and partial sum of the convolution is then an exact Float32
    /// integer, so results cannot depend on summation order and chunked and whole must agree bit for bit.
    private func smallIntegers(_ shape: [Int], _ g: RandomGenerator) -> Tensor {
        Tensor(shape: shape, scalars: (0..<shape.reduce(1, *)).map { _ in Float(g.nextInt(below: 7) - 3) })
    }

    func testChunkedColumnBufferMatchesUnchunkedExactly() {
        let g = RandomGenerator(seed: 7)
        let x = smallIntegers([2, 4, 5, 8, 9], g), w = smallIntegers([6, 4, 3, 3, 3], g)
        let b = smallIntegers([6], g), gy = smallIntegers([2, 6, 5, 8, 9], g)
        let whole = convolveWithLimit(Int.max, x: x, w: w, b: b, gy: gy)
        // One output row of columns is K·Wout·4 = 108·9·4 bytes. 3 rows per chunk gives 14 chunks per sample (the
        // last one short), several of which straddle two output frames; a limit of 1 byte gives one row per chunk.
        for limit in [3 * 108 * 9 * 4, 1] {
            let chunked = convolveWithLimit(limit, x: x, w: w, b: b, gy: gy)
            for (name, a, e) in [
                ("output", chunked.y, whole.y), ("grad x", chunked.gx, whole.gx), ("grad weight", chunked.gw, whole.gw),
                ("grad bias", chunked.gb, whole.gb),
            ] {
                expectClose(a, e, rtol: 0, atol: 0, "\(name), limit \(limit) bytes vs unchunked")
            }
        }
    }

    func testChunkedColumnBufferMatchesUnchunkedWithinRounding() {
        // With general values BLAS may round differently for different GEMM widths; the results agree to rounding.
        let g = RandomGenerator(seed: 8)
        let x = Tensor.randn([1, 5, 4, 7, 10], generator: g), w = Tensor.randn([3, 5, 3, 3, 3], generator: g)
        let b = Tensor.randn([3], generator: g), gy = Tensor.randn([1, 3, 4, 7, 10], generator: g)
        let whole = convolveWithLimit(Int.max, x: x, w: w, b: b, gy: gy)
        let chunked = convolveWithLimit(2 * 135 * 10 * 4, x: x, w: w, b: b, gy: gy)
        expectClose(chunked.y, whole.y, rtol: 1e-6, atol: 1e-5, "output, chunked vs unchunked")
        expectClose(chunked.gx, whole.gx, rtol: 1e-6, atol: 1e-5, "grad x, chunked vs unchunked")
        expectClose(chunked.gw, whole.gw, rtol: 1e-6, atol: 1e-5, "grad weight, chunked vs unchunked")
        expectClose(chunked.gb, whole.gb, rtol: 0, atol: 0, "grad bias, chunked vs unchunked")
    }

    /// Forward and the requested gradients of one convolution through the oneDNN path or the vol2col path.
    private func convolve(
        dnnl: Bool, x: Tensor, w: Tensor, b: Tensor?, gy: Tensor, stride: [Int], padding: [(Int, Int)],
        gradX: Bool = true, gradW: Bool = true
    ) -> [Tensor] {
        let saved = Convolution.usesDNNL
        Convolution.usesDNNL = dnnl
        defer { Convolution.usesDNNL = saved }
        let xv = x.detached(), wv = w.detached(), bv = b?.detached()
        xv.requiresGrad = gradX
        wv.requiresGrad = gradW
        bv?.requiresGrad = true
        let y = Tensor.conv3d(xv, weight: wv, bias: bv, stride: stride, padding: padding)
        (y * gy).sum().backward()
        return [y] + [xv.grad, wv.grad, bv?.grad].compactMap { $0 }
    }

    /// The oneDNN fast path against the vol2col path on the geometries the models use (causal 3×3×3, strided,
    /// asymmetric padding, 1×1×1, a single frame, no bias, bias-only and data-only gradients). Small-integer data
    /// makes every sum exact, so the two must agree bit for bit; random data checks ordinary rounding.
    func testDNNLConvolutionMatchesVol2col() {
        let cases: [(x: [Int], w: [Int], stride: [Int], padding: [(Int, Int)], bias: Bool)] = [
            ([2, 4, 5, 8, 9], [6, 4, 3, 3, 3], [1, 1, 1], [(2, 0), (1, 1), (1, 1)], true),
            ([1, 3, 5, 9, 8], [5, 3, 3, 3, 3], [2, 2, 1], [(1, 0), (0, 2), (1, 1)], true),
            ([2, 5, 3, 6, 6], [7, 5, 1, 1, 1], [1, 1, 1], [(0, 0), (0, 0), (0, 0)], true),
            ([3, 4, 1, 10, 7], [4, 4, 1, 3, 3], [1, 2, 2], [(0, 0), (0, 1), (0, 1)], false),
            ([1, 16, 4, 8, 8], [32, 16, 3, 3, 3], [1, 1, 1], [(2, 0), (1, 1), (1, 1)], true),
        ]
        XCTAssertTrue(Convolution.isDNNLAvailable, "oneDNN created no CPU engine: the fast path is untested")
        let callsBefore = Convolution.dnnlCallCount
        defer { XCTAssertGreaterThan(Convolution.dnnlCallCount, callsBefore, "oneDNN never completed a call") }
        for (i, c) in cases.enumerated() {
            let g = RandomGenerator(seed: UInt64(20 + i))
            let x = smallIntegers(c.x, g), w = smallIntegers(c.w, g), b = c.bias ? smallIntegers([c.w[0]], g) : nil
            let outShape = Tensor.conv3d(x, weight: w, bias: b, stride: c.stride, padding: c.padding).shape
            let gy = smallIntegers(outShape, g)
            let exactA = convolve(dnnl: false, x: x, w: w, b: b, gy: gy, stride: c.stride, padding: c.padding)
            let before = Convolution.dnnlCallCount
            let exactB = convolve(dnnl: true, x: x, w: w, b: b, gy: gy, stride: c.stride, padding: c.padding)
            XCTAssertEqual(Convolution.dnnlCallCount - before, 2, "case \(i): forward and backward through oneDNN")
            XCTAssertEqual(exactA.count, exactB.count)
            for (j, (a, e)) in zip(exactB, exactA).enumerated() {
                expectClose(a, e, rtol: 0, atol: 0, "case \(i) result \(j), integers: oneDNN vs vol2col")
            }
            let rx = Tensor.randn(c.x, generator: g), rw = Tensor.randn(c.w, generator: g) * 0.2
            let rb = c.bias ? Tensor.randn([c.w[0]], generator: g) : nil, rgy = Tensor.randn(outShape, generator: g)
            let randA = convolve(dnnl: false, x: rx, w: rw, b: rb, gy: rgy, stride: c.stride, padding: c.padding)
            let randB = convolve(dnnl: true, x: rx, w: rw, b: rb, gy: rgy, stride: c.stride, padding: c.padding)
            for (j, (a, e)) in zip(randB, randA).enumerated() {
                expectClose(a, e, rtol: 1e-4, atol: 1e-4, "case \(i) result \(j), random: oneDNN vs vol2col")
            }
            // Only some gradients asked for: the data gradient alone, then the weight and bias gradients alone.
            for (gx, gw) in [(true, false), (false, true)] {
                let a = convolve(
                    dnnl: false, x: x, w: w, b: b, gy: gy, stride: c.stride, padding: c.padding, gradX: gx, gradW: gw)
                let e = convolve(
                    dnnl: true, x: x, w: w, b: b, gy: gy, stride: c.stride, padding: c.padding, gradX: gx, gradW: gw)
                XCTAssertEqual(a.count, e.count)
                for (j, (u, v)) in zip(e, a).enumerated() {
                    expectClose(u, v, rtol: 0, atol: 0, "case \(i) result \(j), gradX \(gx) gradW \(gw)")
                }
            }
        }
    }
}
