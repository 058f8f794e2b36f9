import TensorCore
import TestSupport
import XCTest

final class NormTests: XCTestCase {
    private func leaves(_ tensors: [Tensor]) {
        for t in tensors { t.requiresGrad = true }
    }

    // MARK: PyTorch fixtures

    func testLayerNormMatchesPyTorch() throws {
        let f = try Fixture.load("layer_norm", target: "TensorCoreTests")
        let x = f.tensor("x"), w = f.tensor("weight"), b = f.tensor("bias")
        leaves([x, w, b])
        let y = Tensor.layerNorm(x, weight: w, bias: b, eps: 1e-5)
        expectClose(y, f.tensor("output"), rtol: 1e-5, atol: 1e-5, "layerNorm output")
        (y * f.tensor("grad_output")).sum().backward()
        expectClose(x.grad!, f.tensor("grad_x"), rtol: 1e-5, atol: 1e-5, "layerNorm grad x")
        expectClose(w.grad!, f.tensor("grad_weight"), rtol: 1e-5, atol: 1e-5, "layerNorm grad weight")
        expectClose(b.grad!, f.tensor("grad_bias"), rtol: 1e-5, atol: 1e-5, "layerNorm grad bias")
    }

    func testLayerNormNoAffineMatchesPyTorch() throws {
        let f = try Fixture.load("layer_norm", target: "TensorCoreTests")
        let x = f.tensor("x")
        x.requiresGrad = true
        let y = Tensor.layerNorm(x, weight: nil, bias: nil, eps: 1e-6)
        expectClose(y, f.tensor("output_noaffine"), rtol: 1e-5, atol: 1e-5, "layerNorm (no affine) output")
        (y * f.tensor("grad_output_noaffine")).sum().backward()
        expectClose(x.grad!, f.tensor("grad_x_noaffine"), rtol: 1e-5, atol: 1e-5, "layerNorm (no affine) grad x")
    }

    func testRMSNormMatchesPyTorch() throws {
        let f = try Fixture.load("rms_norm", target: "TensorCoreTests")
        let x = f.tensor("x"), w = f.tensor("weight")
        leaves([x, w])
        let y = Tensor.rmsNorm(x, weight: w, eps: 1e-6)
        expectClose(y, f.tensor("output"), rtol: 1e-5, atol: 1e-5, "rmsNorm output")
        (y * f.tensor("grad_output")).sum().backward()
        expectClose(x.grad!, f.tensor("grad_x"), rtol: 1e-5, atol: 1e-5, "rmsNorm grad x")
        expectClose(w.grad!, f.tensor("grad_weight"), rtol: 1e-5, atol: 1e-5, "rmsNorm grad weight")
    }

    func testGroupNormMatchesPyTorch() throws {
        let f = try Fixture.load("group_norm", target: "TensorCoreTests")
        let x = f.tensor("x"), w = f.tensor("weight"), b = f.tensor("bias")
        XCTAssertEqual(x.shape, [2, 8, 3, 5, 5])
        leaves([x, w, b])
        let y = Tensor.groupNorm(x, groups: 4, weight: w, bias: b, eps: 1e-6)
        expectClose(y, f.tensor("output"), rtol: 1e-5, atol: 1e-5, "groupNorm output")
        (y * f.tensor("grad_output")).sum().backward()
        expectClose(x.grad!, f.tensor("grad_x"), rtol: 1e-5, atol: 1e-5, "groupNorm grad x")
        expectClose(w.grad!, f.tensor("grad_weight"), rtol: 1e-5, atol: 1e-5, "groupNorm grad weight")
        expectClose(b.grad!, f.tensor("grad_bias"), rtol: 1e-5, atol: 1e-5, "groupNorm grad bias")
    }

    // MARK: Float64 finite differences

    func testLayerNormGradients() {
        GradientCheck.check(GradientCheck.inputs([[3, 2, 11], [11], [11]]), "layerNorm affine") {
            Tensor.layerNorm($0[0], weight: $0[1], bias: $0[2], eps: 1e-5)
        }
        GradientCheck.check(GradientCheck.inputs([[4, 9]], seed: 2), "layerNorm no affine") {
            Tensor.layerNorm($0[0], weight: nil, bias: nil, eps: 1e-6)
        }
        GradientCheck.check(GradientCheck.inputs([[4, 9], [9]], seed: 3), "layerNorm weight only") {
            Tensor.layerNorm($0[0], weight: $0[1], bias: nil, eps: 1e-6)
        }
        GradientCheck.check(GradientCheck.inputs([[4, 9], [9]], seed: 4), "layerNorm bias only") {
            Tensor.layerNorm($0[0], weight: nil, bias: $0[1], eps: 1e-6)
        }
    }

    func testRMSNormGradients() {
        GradientCheck.check(GradientCheck.inputs([[3, 2, 13], [13]], seed: 5), "rmsNorm") {
            Tensor.rmsNorm($0[0], weight: $0[1], eps: 1e-6)
        }
        GradientCheck.check(GradientCheck.inputs([[5, 6]], seed: 6), "rmsNorm no weight") {
            Tensor.rmsNorm($0[0], weight: nil, eps: 1e-6)
        }
    }

    func testGroupNormGradients() {
        GradientCheck.check(GradientCheck.inputs([[2, 6, 3, 2], [6], [6]], seed: 7), "groupNorm affine") {
            Tensor.groupNorm($0[0], groups: 3, weight: $0[1], bias: $0[2], eps: 1e-6)
        }
        GradientCheck.check(GradientCheck.inputs([[2, 4, 2, 3, 2]], seed: 8), "groupNorm no affine") {
            Tensor.groupNorm($0[0], groups: 2, weight: nil, bias: nil, eps: 1e-5)
        }
        // One channel per group (InstanceNorm) and a single group (LayerNorm over C·S).
        GradientCheck.check(GradientCheck.inputs([[2, 3, 5], [3]], seed: 9), "groupNorm groups = C") {
            Tensor.groupNorm($0[0], groups: 3, weight: $0[1], bias: nil, eps: 1e-6)
        }
        GradientCheck.check(GradientCheck.inputs([[1, 4, 3], [4], [4]], seed: 10), "groupNorm 1 group") {
            Tensor.groupNorm($0[0], groups: 1, weight: $0[1], bias: $0[2], eps: 1e-6)
        }
    }

    func testOnlyTheInputsThatNeedGradientsGetThem() {
        let x = Tensor.randn([3, 8], generator: RandomGenerator(seed: 12))
        let w = Tensor.randn([8], generator: RandomGenerator(seed: 13))
        let b = Tensor.randn([8], generator: RandomGenerator(seed: 14))
        w.requiresGrad = true
        Tensor.layerNorm(x, weight: w, bias: b, eps: 1e-5).sum().backward()
        XCTAssertNil(x.grad)
        XCTAssertNil(b.grad)
        XCTAssertEqual(w.grad?.shape, [8])
    }

    // MARK: Numerics

    func testLayerNormStatisticsAgainstDirectFormula() {
        // A large mean beside a small spread stresses the variance; rows longer than one 1024-element block.
        let x = Tensor.randn([3, 2500], mean: 300, std: 0.5, generator: RandomGenerator(seed: 15))
        let x64 = x.to(.float64)
        let centered = x64 - x64.mean(axis: -1, keepDims: true)
        let reference = centered / (centered.square().mean(axis: -1, keepDims: true) + 1e-5).sqrt()
        expectClose(Tensor.layerNorm(x, weight: nil, bias: nil, eps: 1e-5), reference, rtol: 0, atol: 5e-4, "float32")
        expectClose(Tensor.layerNorm(x64, weight: nil, bias: nil, eps: 1e-5), reference, rtol: 0, atol: 1e-10, "float64")
    }

    func testRMSNormAgainstDirectFormula() {
        let x = Tensor.randn([4, 3000], std: 3, generator: RandomGenerator(seed: 16))
        let w = Tensor.randn([3000], generator: RandomGenerator(seed: 17))
        let x64 = x.to(.float64)
        let reference = x64 * (x64.square().mean(axis: -1, keepDims: true) + 1e-6).rsqrt() * w.to(.float64)
        expectClose(Tensor.rmsNorm(x, weight: w, eps: 1e-6), reference, rtol: 1e-5, atol: 1e-5, "rmsNorm float32")
    }

    func testGroupNormLargeGroupsFloat32MatchFloat64() {
        let x = Tensor.randn([1, 4, 60_000], mean: 2, generator: RandomGenerator(seed: 18))
        let w = Tensor.randn([4], generator: RandomGenerator(seed: 19))
        let b = Tensor.randn([4], generator: RandomGenerator(seed: 20))
        let y32 = Tensor.groupNorm(x, groups: 2, weight: w, bias: b, eps: 1e-6)
        let y64 = Tensor.groupNorm(x.to(.float64), groups: 2, weight: w.to(.float64), bias: b.to(.float64), eps: 1e-6)
        expectClose(y32, y64, rtol: 1e-5, atol: 1e-5, "groupNorm float32 vs float64")
    }

    func testWeightGradientIsIdenticalAtAnyThreadCount() {
        let saved = Parallel.threadCount
        defer { Parallel.threadCount = saved }
        let x = Tensor.randn([700, 64], generator: RandomGenerator(seed: 21))
        let g = Tensor.randn([700, 64], generator: RandomGenerator(seed: 22))
        func grads(threads: Int) -> [[Float]] {
            Parallel.threadCount = threads
            let w = Tensor.ones([64]), b = Tensor.zeros([64])
            w.requiresGrad = true
            b.requiresGrad = true
            (Tensor.layerNorm(x, weight: w, bias: b, eps: 1e-5) * g).sum().backward()
            return [w.grad!.scalars, b.grad!.scalars]
        }
        XCTAssertEqual(grads(threads: 1), grads(threads: 2))
    }
}
