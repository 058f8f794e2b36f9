import TensorCore
import TestSupport
import XCTest

final class SmokeTests: XCTestCase {
    func testAddBroadcast() {
        let a = Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6] as [Float])
        let b = Tensor(shape: [3], scalars: [10, 20, 30] as [Float])
        expectClose(a + b, Tensor(shape: [2, 3], scalars: [11, 22, 33, 14, 25, 36] as [Float]))
    }

    func testMulGradient() {
        let x = GradientCheck.inputs([[2, 3], [3]])
        GradientCheck.check(x, "mul") { $0[0] * $0[1] }
    }
}

final class LinearFixtureTests: XCTestCase {
    func testLinearMatchesPyTorch() throws {
        let f = try Fixture.load("linear", target: "TensorCoreTests")
        let x = f.tensor("x"), w = f.tensor("weight"), b = f.tensor("bias")
        for t in [x, w, b] { t.requiresGrad = true }
        let y = Tensor.linear(x, weight: w, bias: b)
        expectClose(y, f.tensor("output"), rtol: 1e-5, atol: 1e-5, "linear output")
        (y * f.tensor("grad_output")).sum().backward()
        expectClose(x.grad!, f.tensor("grad_x"), rtol: 1e-5, atol: 1e-5, "grad x")
        expectClose(w.grad!, f.tensor("grad_weight"), rtol: 1e-5, atol: 1e-5, "grad weight")
        expectClose(b.grad!, f.tensor("grad_bias"), rtol: 1e-5, atol: 1e-5, "grad bias")
    }
}
