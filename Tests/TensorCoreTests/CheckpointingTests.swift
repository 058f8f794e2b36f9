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

final class GraphLifetimeTests: XCTestCase {
    /// A recorded graph must be freed when its root goes away, with or without backward: rules that need an op's
    /// result must not keep it alive through a reference cycle.
    func testGraphIsFreedWithoutBackward() {
        weak var probe: Tensor?
        let w = Tensor.randn([4, 4], generator: RandomGenerator(seed: 1))
        w.requiresGrad = true
        do {
            let h = (w * w).exp()  // binary and unary rules capture their results
            probe = h
            let y = (h / w).softmax(axis: -1).sum(axis: 0).max()
            XCTAssertNotNil(y.gradNode)
        }
        XCTAssertNil(probe, "an intermediate result outlived its graph")
    }

    func testBackwardReleasesActivations() {
        weak var probe: Tensor?
        let w = Tensor.randn([4, 4], generator: RandomGenerator(seed: 2))
        w.requiresGrad = true
        let loss: Tensor
        do {
            let h = w.tanh()
            probe = h
            loss = (h * h).sum()
        }
        XCTAssertNotNil(probe)
        loss.backward()
        XCTAssertNil(probe, "backward should free the graph it consumed")
        XCTAssertNotNil(w.grad)
    }
}
