import Foundation
import TensorCore
import TestSupport
import XCTest

/// bfloat16 matrix products through oneDNN: against Float32 products of the same operands rounded to bfloat16 (which
/// the bf16 path must reproduce up to accumulation order), and the weight cache's invalidation. On a CPU where
/// oneDNN has no bf16 kernels (AVX2 without AVX-512: `MixedPrecision.isAvailable` is false), the same tests check the
/// documented fallback instead: bf16 mode computes the Float32 products.
final class MixedPrecisionTests: XCTestCase {
    /// Whether bf16 products run here.
    let bf16 = MixedPrecision.isAvailable

    override func setUpWithError() throws {
        // oneDNN is installed by scripts/setup.sh; without its engine the tests would check nothing of it: a failure.
        guard Convolution.isDNNLAvailable else {
            throw NSError(domain: "oneDNN", code: 1, userInfo: [NSLocalizedDescriptionKey: "oneDNN has no CPU engine here"])
        }
    }

    /// The tensor with every element rounded to bfloat16 (still Float32), or unchanged where bf16 products do not
    /// run (the fallback computes with the operands as they are).
    private func rounded(_ t: Tensor) -> Tensor { bf16 ? t.to(.bfloat16).to(.float32) : t }

    /// The names configs and flags use map to the modes, and nothing else does.
    func testModeNames() {
        XCTAssertEqual(MixedPrecision.Mode(name: "fp32"), .float32)
        XCTAssertEqual(MixedPrecision.Mode(name: "bf16"), .bfloat16)
        XCTAssertNil(MixedPrecision.Mode(name: "fp16"))
        XCTAssertNil(MixedPrecision.Mode(name: "BF16"))
        XCTAssertEqual(MixedPrecision.Mode.names.compactMap(MixedPrecision.Mode.init(name:)), [.float32, .bfloat16])
        XCTAssertEqual([MixedPrecision.Mode.float32, .bfloat16].map(\.name), MixedPrecision.Mode.names)
    }

    func testMatmulMatchesFloat32OfRoundedOperandsForEveryTransposition() {
        let g = RandomGenerator(seed: 1)
        let (m, k, n) = (37, 70, 29)
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            let a = Tensor.randn(ta ? [k, m] : [m, k], generator: g)
            let b = Tensor.randn(tb ? [n, k] : [k, n], generator: g)
            let mixed = MixedPrecision.bfloat16 { Tensor.matmul(a, b, transposeA: ta, transposeB: tb) }
            let reference = Tensor.matmul(rounded(a), rounded(b), transposeA: ta, transposeB: tb)
            expectClose(mixed, reference, rtol: 1e-4, atol: 1e-4, "bf16 matmul transA \(ta) transB \(tb)")
            // And it is a bf16 product, not a silent Float32 one: it differs from the unrounded product (or, where
            // bf16 products do not run, it is that product exactly).
            let exact = Tensor.matmul(a, b, transposeA: ta, transposeB: tb)
            if bf16 {
                XCTAssertGreaterThan((mixed - exact).abs().max().item(), 1e-4, "transA \(ta) transB \(tb)")
            } else {
                XCTAssertEqual(mixed.scalars, exact.scalars, "fallback: transA \(ta) transB \(tb)")
            }
            // bf16 rounding (2⁻⁹ relative per operand) over K = 70 terms of size ~1: errors of order 2⁻⁸·√K ≈ 0.03.
            expectClose(mixed, exact, rtol: 2e-2, atol: 0.15, "bf16 within bf16 tolerance of fp32")
        }
    }

    func testBatchedMatmul() {
        let g = RandomGenerator(seed: 2)
        let a = Tensor.randn([3, 2, 9, 16], generator: g), b = Tensor.randn([2, 16, 5], generator: g)
        let mixed = MixedPrecision.bfloat16 { Tensor.matmul(a, b) }
        expectClose(mixed, Tensor.matmul(rounded(a), rounded(b)), rtol: 1e-4, atol: 1e-4, "batched bf16 matmul")
    }

    func testLinearForwardAndBackwardInBFloat16() {
        let g = RandomGenerator(seed: 3)
        let x = Tensor.randn([2, 12, 48], generator: g), w = Tensor.randn([40, 48], generator: g)
        let bias = Tensor.randn([40], generator: g), upstream = Tensor.randn([2, 12, 40], generator: g)
        for t in [x, w, bias] { t.requiresGrad = true }
        // Forward inside the scope, backward outside: the gradient products keep the forward's precision.
        let y = MixedPrecision.bfloat16 { Tensor.linear(x, weight: w, bias: bias) }
        y.backward(upstream)
        let (dx, dw, db) = (x.grad!, w.grad!, bias.grad!)

        let xr = rounded(x).detached(), wr = rounded(w).detached(), br = bias.detached()
        for t in [xr, wr, br] { t.requiresGrad = true }
        let yr = Tensor.linear(xr, weight: wr, bias: br)
        yr.backward(upstream)
        expectClose(y, yr, rtol: 1e-4, atol: 1e-4, "linear forward")
        // dX = g·W and dW = gᵀ·x round g (and W, x) to bf16: compare with the rounded-operand products.
        let gr = rounded(upstream).reshape([24, 40])
        expectClose(dx, Tensor.matmul(gr, wr.detached()).reshape([2, 12, 48]), rtol: 1e-4, atol: 1e-4, "dX")
        expectClose(
            dw, Tensor.matmul(gr, xr.detached().reshape([24, 48]), transposeA: true), rtol: 1e-4, atol: 1e-4, "dW")
        expectClose(db, br.grad!, rtol: 1e-6, atol: 1e-6, "db (not a product)")
        // And within bf16 tolerance of the Float32 gradients.
        expectClose(dw, wr.grad!, rtol: 3e-2, atol: 1e-1, "dW vs fp32")
    }

    func testChangedWeightInvalidatesTheCachedReorder() {
        let g = RandomGenerator(seed: 4)
        let x = Tensor.randn([16, 32], generator: g)
        let w = Tensor.randn([24, 32], generator: g)
        w.requiresGrad = true
        let first = MixedPrecision.bfloat16 { Autograd.inference { Tensor.linear(x, weight: w, bias: nil) } }
        expectClose(first, Tensor.matmul(rounded(x), rounded(w), transposeB: true), rtol: 1e-4, atol: 1e-4, "first")
        // The same weight again: the result is unchanged (served from the cache).
        let again = MixedPrecision.bfloat16 { Autograd.inference { Tensor.linear(x, weight: w, bias: nil) } }
        XCTAssertEqual(again.scalars, first.scalars)
        // Change the weight in place: the next product must see the new values.
        let replacement = Tensor.randn([24, 32], generator: g)
        w.assign(replacement)
        let after = MixedPrecision.bfloat16 { Autograd.inference { Tensor.linear(x, weight: w, bias: nil) } }
        expectClose(
            after, Tensor.matmul(rounded(x), rounded(replacement), transposeB: true), rtol: 1e-4, atol: 1e-4,
            "after assign")
        XCTAssertGreaterThan((after - first).abs().max().item(), 1e-2)
    }

    /// The probe agrees with what oneDNN reports: bf16 products need AVX-512 (or AVX2-VNNI) kernels.
    func testAvailabilityMatchesTheInstructionSet() {
        let isa = MixedPrecision.instructionSet ?? ""
        XCTAssertEqual(bf16, isa.hasPrefix("avx512") || isa.hasPrefix("avx2_vnni"), "oneDNN dispatches to \(isa)")
    }

    func testScopeIsRestoredAndFloat32IsTheDefault() {
        XCTAssertEqual(MixedPrecision.current, .float32)
        MixedPrecision.bfloat16 {
            XCTAssertEqual(MixedPrecision.current, .bfloat16)
            MixedPrecision.with(.float32) { XCTAssertEqual(MixedPrecision.current, .float32) }
            XCTAssertEqual(MixedPrecision.current, .bfloat16)
        }
        XCTAssertEqual(MixedPrecision.current, .float32)
    }

    /// bfloat16 convolutions through oneDNN (forward, data, weight and bias gradients; backward outside the scope)
    /// against Float32 vol2col convolutions of the operands rounded to bfloat16: the gradients read the output
    /// gradient rounded to bfloat16 too, so the bias gradient is the sum of rounded values. Geometries of the VAE:
    /// causal 3×3×3, strided with asymmetric padding, 1×1×1, and 2-D (one frame).
    func testConvolutionInBFloat16MatchesFloat32OfRoundedOperands() {
        let cases: [(x: [Int], w: [Int], stride: [Int], padding: [(Int, Int)])] = [
            ([2, 16, 5, 8, 9], [32, 16, 3, 3, 3], [1, 1, 1], [(2, 0), (1, 1), (1, 1)]),
            ([1, 8, 5, 9, 8], [16, 8, 3, 3, 3], [2, 2, 1], [(1, 0), (0, 2), (1, 1)]),
            ([2, 16, 3, 6, 6], [32, 16, 1, 1, 1], [1, 1, 1], [(0, 0), (0, 0), (0, 0)]),
            ([3, 16, 1, 10, 7], [16, 16, 1, 3, 3], [1, 2, 2], [(0, 0), (0, 1), (0, 1)]),
            ([2, 3, 5, 12, 12], [32, 3, 3, 3, 3], [1, 1, 1], [(2, 0), (1, 1), (1, 1)]),
            ([2, 32, 5, 12, 12], [3, 32, 3, 3, 3], [1, 1, 1], [(2, 0), (1, 1), (1, 1)]),
        ]
        let saved = Convolution.usesDNNL
        defer { Convolution.usesDNNL = saved }
        for (i, c) in cases.enumerated() {
            let g = RandomGenerator(seed: UInt64(40 + i))
            let x = Tensor.randn(c.x, generator: g), w = Tensor.randn(c.w, generator: g) * 0.2
            let b = Tensor.randn([c.w[0]], generator: g)
            let outShape = Tensor.conv3d(x, weight: w, bias: b, stride: c.stride, padding: c.padding).shape
            let gy = Tensor.randn(outShape, generator: g)
            func run(_ x: Tensor, _ w: Tensor, _ gy: Tensor, bf16: Bool) -> [Tensor] {
                let (xv, wv, bv) = (x.detached(), w.detached(), b.detached())
                for t in [xv, wv, bv] { t.requiresGrad = true }
                let y = MixedPrecision.with(bf16 ? .bfloat16 : .float32) {
                    Tensor.conv3d(xv, weight: wv, bias: bv, stride: c.stride, padding: c.padding)
                }
                (y * gy).sum().backward()
                return [y, xv.grad!, wv.grad!, bv.grad!]
            }
            Convolution.usesDNNL = true
            let before = Convolution.dnnlCallCount
            let mixed = run(x, w, gy, bf16: true)
            // Without bf16 kernels oneDNN's bf16 primitives fail and both passes fall back to vol2col in Float32.
            XCTAssertEqual(Convolution.dnnlCallCount - before, bf16 ? 2 : 0, "case \(i): forward and backward through oneDNN")
            let exact = run(x, w, gy, bf16: false)
            Convolution.usesDNNL = false
            let reference = run(rounded(x), rounded(w), rounded(gy), bf16: false)
            for (j, name) in ["output", "grad x", "grad weight", "grad bias"].enumerated() {
                expectClose(mixed[j], reference[j], rtol: 1e-4, atol: 2e-4, "case \(i) \(name): bf16 vs rounded fp32")
                // A bf16 product, not a silent Float32 one (the bias gradient is a sum, not a product: skip it).
                if j < 3 && bf16 {
                    XCTAssertGreaterThan(
                        (mixed[j] - exact[j]).abs().max().item(), 1e-4, "case \(i) \(name) differs from fp32")
                }
            }
        }
    }
}
