import TensorCore
import TestSupport
import XCTest

/// The fused adaLN ops against Float64 finite differences and against the unfused composite they replace, and the
/// vectorised unary backward passes against their Float64 scalar formulas.
final class ModulationTests: XCTestCase {
    // MARK: Float64 finite differences

    func testModulatedLayerNormGradients() {
        // Per token (1, L, D), per sample (B, 1, D), one vector (D), and mixed shapes for shift and scale.
        GradientCheck.check(GradientCheck.inputs([[1, 5, 11], [1, 5, 11], [1, 5, 11]], seed: 1), "per token") {
            Tensor.modulatedLayerNorm($0[0], shift: $0[1], scale: $0[2], eps: 1e-6)
        }
        GradientCheck.check(GradientCheck.inputs([[2, 3, 9], [2, 1, 9], [2, 1, 9]], seed: 2), "per sample") {
            Tensor.modulatedLayerNorm($0[0], shift: $0[1], scale: $0[2], eps: 1e-6)
        }
        GradientCheck.check(GradientCheck.inputs([[2, 3, 10], [10], [1, 3, 10]], seed: 3), "mixed shapes") {
            Tensor.modulatedLayerNorm($0[0], shift: $0[1], scale: $0[2], eps: 1e-5)
        }
    }

    func testModulatedRMSNormGradients() {
        GradientCheck.check(GradientCheck.inputs([[1, 4, 13], [1, 4, 13], [1, 4, 13], [13]], seed: 4), "weight") {
            Tensor.modulatedRMSNorm($0[0], weight: $0[3], shift: $0[1], scale: $0[2], eps: 1e-6)
        }
        GradientCheck.check(GradientCheck.inputs([[3, 2, 8], [3, 1, 8], [1, 1, 8]], seed: 5), "no weight") {
            Tensor.modulatedRMSNorm($0[0], weight: nil, shift: $0[1], scale: $0[2], eps: 1e-6)
        }
    }

    func testGatedResidualGradients() {
        GradientCheck.check(GradientCheck.inputs([[1, 6, 7], [1, 6, 7], [1, 6, 7]], seed: 6), "per token") {
            Tensor.gatedResidual($0[0], gate: $0[1], branch: $0[2])
        }
        GradientCheck.check(GradientCheck.inputs([[2, 5, 7], [2, 1, 7], [2, 5, 7]], seed: 7), "per sample") {
            Tensor.gatedResidual($0[0], gate: $0[1], branch: $0[2])
        }
    }

    /// Per-sample modulation of a packed sequence: (N, D) operands read through a token → sample index, rows in any
    /// order and a sample with no token.
    func testRowIndexedModulationGradients() {
        let index = [2, 0, 0, 2, 1, 2, 0]  // 7 tokens of 4 samples; sample 3 owns none
        GradientCheck.check(GradientCheck.inputs([[1, 7, 9], [4, 9], [4, 9]], seed: 20), "layer norm") {
            Tensor.modulatedLayerNorm($0[0], shift: $0[1], scale: $0[2], eps: 1e-6, rowIndex: index)
        }
        GradientCheck.check(GradientCheck.inputs([[1, 7, 9], [4, 9], [4, 9], [9]], seed: 21), "rms norm") {
            Tensor.modulatedRMSNorm($0[0], weight: $0[3], shift: $0[1], scale: $0[2], eps: 1e-6, rowIndex: index)
        }
        GradientCheck.check(GradientCheck.inputs([[1, 7, 9], [4, 9], [1, 7, 9]], seed: 22), "gated residual") {
            Tensor.gatedResidual($0[0], gate: $0[1], branch: $0[2], rowIndex: index)
        }
    }

    /// The index path gives what gathering the rows into (1, L, D) copies gives: the same forward bits, and the
    /// gathered copies' gradients summed back per sample.
    func testRowIndexedModulationMatchesGathered() {
        let index = [1, 1, 0, 2, 2, 2, 0, 1]
        let inputs = randn([[1, 8, 300], [3, 300], [3, 300], [300], [3, 300], [1, 8, 300]], seed: 23)
        func gathered(_ m: Tensor) -> Tensor { m.indexSelect(axis: 0, indices: index).unsqueeze(0) }
        let (yi, gi) = run(inputs) {
            let h = Tensor.modulatedRMSNorm($0[0], weight: $0[3], shift: $0[1], scale: $0[2], eps: 1e-6, rowIndex: index)
            return Tensor.gatedResidual(h, gate: $0[4], branch: $0[5], rowIndex: index)
        }
        let (yg, gg) = run(inputs) {
            let h = Tensor.modulatedRMSNorm(
                $0[0], weight: $0[3], shift: gathered($0[1]), scale: gathered($0[2]), eps: 1e-6)
            return Tensor.gatedResidual(h, gate: gathered($0[4]), branch: $0[5])
        }
        XCTAssertEqual(yi.scalars, yg.scalars, "forward is bit-identical")
        for k in 0..<6 { expectClose(gi[k], gg[k], rtol: 1e-5, atol: 1e-5, "grad \(k)") }
    }

    // MARK: Parity with the unfused composite (Float32)

    /// Runs `f` on fresh leaf copies of `inputs` with a fixed upstream gradient; returns the output and the grads.
    private func run(_ inputs: [Tensor], _ f: ([Tensor]) -> Tensor) -> (Tensor, [Tensor]) {
        let leaves = inputs.map { t -> Tensor in
            let c = t.copy()
            c.requiresGrad = true
            return c
        }
        let y = f(leaves)
        let upstream = Tensor.randn(y.shape, generator: RandomGenerator(seed: 77))
        (y * upstream).sum().backward()
        return (y.detached(), leaves.map { $0.grad! })
    }

    private func randn(_ shapes: [[Int]], seed: UInt64) -> [Tensor] {
        let g = RandomGenerator(seed: seed)
        return shapes.map { Tensor.randn($0, generator: g) }
    }

    func testModulatedNormsMatchComposite() {
        // 1152 wide (the goku-1b width) with a row longer than one vector block, per token and per sample.
        for (shapes, label) in [
            ([[1, 6, 1152], [1, 6, 1152], [1, 6, 1152], [1152]], "per token"),
            ([[2, 3, 1152], [2, 1, 1152], [2, 1, 1152], [1152]], "per sample"),
        ] {
            let inputs = randn(shapes, seed: 8)
            let (yf, gf) = run(Array(inputs.prefix(3))) {
                Tensor.modulatedLayerNorm($0[0], shift: $0[1], scale: $0[2], eps: 1e-6)
            }
            let (yc, gc) = run(Array(inputs.prefix(3))) {
                Tensor.layerNorm($0[0], weight: nil, bias: nil, eps: 1e-6) * ($0[2] + 1) + $0[1]
            }
            XCTAssertEqual(yf.scalars, yc.scalars, "modulatedLayerNorm forward is bit-identical (\(label))")
            for k in 0..<3 {
                expectClose(gf[k], gc[k], rtol: 1e-4, atol: 1e-4, "modulatedLayerNorm grad \(k) (\(label))")
            }

            let (yr, gr) = run(inputs) {
                Tensor.modulatedRMSNorm($0[0], weight: $0[3], shift: $0[1], scale: $0[2], eps: 1e-6)
            }
            let (yrc, grc) = run(inputs) { Tensor.rmsNorm($0[0], weight: $0[3], eps: 1e-6) * ($0[2] + 1) + $0[1] }
            XCTAssertEqual(yr.scalars, yrc.scalars, "modulatedRMSNorm forward is bit-identical (\(label))")
            for k in 0..<4 {
                expectClose(gr[k], grc[k], rtol: 1e-4, atol: 1e-3, "modulatedRMSNorm grad \(k) (\(label))")
            }
        }
    }

    func testGatedResidualMatchesComposite() {
        for shapes in [[[1, 5, 1152], [1, 5, 1152], [1, 5, 1152]], [[3, 4, 40], [3, 1, 40], [3, 4, 40]]] {
            let inputs = randn(shapes, seed: 9)
            let (yf, gf) = run(inputs) { Tensor.gatedResidual($0[0], gate: $0[1], branch: $0[2]) }
            let (yc, gc) = run(inputs) { $0[0] + $0[1] * $0[2] }
            XCTAssertEqual(yf.scalars, yc.scalars, "gatedResidual forward is bit-identical \(shapes[1])")
            for k in 0..<3 { expectClose(gf[k], gc[k], rtol: 1e-5, atol: 1e-5, "gatedResidual grad \(k) \(shapes[1])") }
        }
    }

    func testOnlyRequestedGradientsAreComputed() {
        let x = Tensor.randn([1, 3, 8], generator: RandomGenerator(seed: 10))
        let shift = Tensor.randn([1, 3, 8], generator: RandomGenerator(seed: 11))
        let scale = Tensor.randn([1, 1, 8], generator: RandomGenerator(seed: 12))
        scale.requiresGrad = true
        Tensor.modulatedLayerNorm(x, shift: shift, scale: scale, eps: 1e-6).sum().backward()
        XCTAssertNil(x.grad)
        XCTAssertNil(shift.grad)
        XCTAssertEqual(scale.grad?.shape, [1, 1, 8])
    }

    // MARK: Vectorised unary backward

    func testVectorisedUnaryBackwardMatchesFloat64() {
        // 1003 elements: 125 full eight-lane blocks and a tail; values over the range where GELU and SiLU bend.
        let x = Tensor.randn([1003], std: 3, generator: RandomGenerator(seed: 13))
        let upstream = Tensor.randn([1003], generator: RandomGenerator(seed: 14))
        for (name, f) in [
            ("geluTanh", { (t: Tensor) in t.gelu(approximateTanh: true) }), ("silu", { $0.silu() }),
            ("sigmoid", { $0.sigmoid() }), ("exp", { $0.exp() }),
        ] as [(String, (Tensor) -> Tensor)] {
            let x32 = x.copy(), x64 = x.to(.float64)
            x32.requiresGrad = true
            x64.requiresGrad = true
            (f(x32) * upstream).sum().backward()
            (f(x64) * upstream.to(.float64)).sum().backward()
            expectClose(x32.grad!, x64.grad!, rtol: 1e-5, atol: 1e-6, "\(name) backward, Float32 lanes vs Float64")
        }
    }
}
