import TensorCore
import TestSupport
import XCTest

final class CheckpointingTests: XCTestCase {
    /// Recomputing in backward must give exactly the gradients of the plain graph, for inputs and captured weights.
    func testCheckpointedGradientsEqualPlainGradients() {
        let g = RandomGenerator(seed: 11)
        let x = Tensor.randn([3, 4], generator: g).asLeaf()
        let w = Tensor.randn([5, 4], generator: g).asLeaf()
        let b = Tensor.randn([5], generator: g).asLeaf()
        func body(_ xs: [Tensor]) -> Tensor { Tensor.linear(xs[0], weight: w, bias: b).tanh().square() }

        body([x]).sum().backward()
        let plain = [x.grad!.scalars, w.grad!.scalars, b.grad!.scalars]
        for t in [x, w, b] { t.grad = nil }

        let y = Autograd.checkpoint([x]) { body($0) }
        XCTAssertEqual(y.gradNode?.op, "checkpoint")
        (y * 1.0).sum().backward()
        XCTAssertEqual(x.grad!.scalars, plain[0])
        XCTAssertEqual(w.grad!.scalars, plain[1])
        XCTAssertEqual(b.grad!.scalars, plain[2])
    }

    func testInferenceRecordsNoGraph() {
        let w = Tensor.ones([2, 2]).asLeaf()
        let y = Autograd.inference { w * 2.0 }
        XCTAssertNil(y.gradNode)
        XCTAssertFalse(y.needsGrad)
        XCTAssertNotNil((w * 2.0).gradNode)
    }

    func testGradientsAccumulateAcrossBackwardCalls() {
        let w = Tensor(shape: [3], scalars: [1, 2, 3] as [Float]).asLeaf()
        (w * 2.0).sum().backward()
        (w * 3.0).sum().backward()
        XCTAssertEqual(w.grad!.scalars, [5, 5, 5])
        w.zeroGrad()
        XCTAssertNil(w.grad)
    }

    func testSharedSubexpressionGetsSummedGradient() {
        let x = GradientCheck.inputs([[4]])
        GradientCheck.check(x, "shared") { xs in
            let h = xs[0].tanh()
            return h * h + h.exp()
        }
    }
}

extension Tensor {
    fileprivate func asLeaf() -> Tensor {
        requiresGrad = true
        return self
    }
}
