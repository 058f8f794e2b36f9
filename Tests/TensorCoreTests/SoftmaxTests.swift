import TensorCore
import TestSupport
import XCTest

final class SoftmaxTests: XCTestCase {
    func testSoftmaxMatchesPyTorch() throws {
        let f = try Fixture.load("softmax", target: "TensorCoreTests")
        let x = f.tensor("x")
        x.requiresGrad = true
        let y = x.softmax()
        expectClose(y, f.tensor("softmax"), rtol: 1e-5, atol: 1e-5, "softmax")
        (y * f.tensor("grad_output_softmax")).sum().backward()
        expectClose(x.grad!, f.tensor("grad_x_softmax"), rtol: 1e-5, atol: 1e-5, "softmax grad x")
    }

    func testLogSoftmaxMatchesPyTorch() throws {
        let f = try Fixture.load("softmax", target: "TensorCoreTests")
        let x = f.tensor("x")
        x.requiresGrad = true
        let y = x.logSoftmax(axis: 2)
        expectClose(y, f.tensor("log_softmax"), rtol: 1e-5, atol: 1e-5, "log_softmax")
        (y * f.tensor("grad_output_log_softmax")).sum().backward()
        expectClose(x.grad!, f.tensor("grad_x_log_softmax"), rtol: 1e-5, atol: 1e-5, "log_softmax grad x")
    }

    func testGradientsLastAxis() {
        GradientCheck.check(GradientCheck.inputs([[3, 7]]), "softmax") { $0[0].softmax() }
        GradientCheck.check(GradientCheck.inputs([[3, 7]], seed: 2), "logSoftmax") { $0[0].logSoftmax() }
        // A row longer than one SIMD block of eight, with a tail.
        GradientCheck.check(GradientCheck.inputs([[2, 19]], seed: 3), "softmax long rows") { $0[0].softmax() }
    }

    func testGradientsOtherAxes() {
        GradientCheck.check(GradientCheck.inputs([[2, 3, 4]], seed: 4), "softmax axis 1") { $0[0].softmax(axis: 1) }
        GradientCheck.check(GradientCheck.inputs([[3, 2, 4]], seed: 5), "logSoftmax axis 0") {
            $0[0].logSoftmax(axis: 0)
        }
    }

    func testNonLastAxisMatchesPermutedReference() {
        let x = Tensor.randn([2, 5, 3], generator: RandomGenerator(seed: 7))
        let viaAxis = x.softmax(axis: 1)
        let reference = x.permute([0, 2, 1]).softmax().permute([0, 2, 1])
        expectClose(viaAxis, reference, rtol: 0, atol: 0, "softmax(axis: 1)")
        // Each slice along axis 1 sums to 1.
        expectClose(viaAxis.sum(axis: 1), Tensor.ones([2, 3]), rtol: 1e-6, atol: 1e-6, "sums along axis 1")
    }

    func testHandComputedValues() {
        let x = Tensor(shape: [2, 3], scalars: [0, 1, 2, 5, 5, 5] as [Double])
        let e: [Double] = [1, M_E, M_E * M_E]
        let s: Double = e.reduce(0, +)
        let logS: Double = Foundation.log(s), third: Double = 1.0 / 3
        let expectedSoftmax: [Double] = e.map { $0 / s } + [third, third, third]
        let expectedLog: [Double] = [-logS, 1 - logS, 2 - logS, -Foundation.log(3.0), -Foundation.log(3.0), -Foundation.log(3.0)]
        expectClose(x.softmax().doubleScalars, expectedSoftmax, rtol: 1e-14, atol: 0, "softmax")
        expectClose(x.logSoftmax().doubleScalars, expectedLog, rtol: 1e-14, atol: 1e-15, "logSoftmax")
    }

    func testLargeLogitsStayFinite() {
        // Without subtracting the row maximum exp(1000) overflows.
        let x = Tensor(shape: [1, 3], scalars: [1000, 999, -1000] as [Float])
        let y = x.softmax()
        XCTAssertTrue(y.scalars.allSatisfy { $0.isFinite }, "\(y)")
        expectClose(y, Tensor(shape: [1, 3], scalars: [0.7310586, 0.26894143, 0] as [Float]), rtol: 1e-6, atol: 1e-7)
        // Log-softmax stays exact where softmax underflows to 0.
        let l = x.logSoftmax().scalars
        XCTAssertEqual(Double(l[2]), -2000 - Foundation.log1p(Foundation.exp(-1.0)), accuracy: 1e-3)
    }

    func testFloat32AccuracyOverTheWholeExpRange() {
        // Rows [0, x1…x15] with x spread over [−87, 0]: checks the vectorised exp against Float64 to a few ulp (the
        // Float32 row sum adds its own rounding, which log-softmax sees as an absolute error near 0).
        let rows = 4000
        let g = RandomGenerator(seed: 12)
        var values: [Float] = []
        for _ in 0..<rows { values += [0] + (0..<15).map { _ in -87 * g.nextUniform() } }
        let x = Tensor(shape: [rows, 16], scalars: values)
        let x64 = x.to(.float64)
        expectClose(x.softmax(), x64.softmax(), rtol: 5e-7, atol: 0, "softmax float32")
        expectClose(x.logSoftmax(), x64.logSoftmax(), rtol: 3e-7, atol: 5e-7, "logSoftmax float32")
    }

    func testMaskedAndNaNEntries() {
        let x = Tensor(shape: [2, 10], scalars: [0, -.infinity, 1, -.infinity, 2, 3, 4, 5, 6, -.infinity, 0, .nan, 1, 2, 3, 4, 5, 6, 7, 8] as [Float])
        let y = x.softmax().scalars
        XCTAssertEqual([y[1], y[3], y[9]], [0, 0, 0], "−∞ logits get exactly 0")
        XCTAssertEqual(Double(y[0..<10].reduce(0, +)), 1, accuracy: 1e-6)
        XCTAssertTrue(y[10..<20].allSatisfy { $0.isNaN }, "NaN spreads over its row")
        XCTAssertEqual(x.logSoftmax().scalars[1], -.infinity)
    }

    func testLongRowsFloat32MatchFloat64() {
        let x = Tensor.randn([3, 4099], std: 4, generator: RandomGenerator(seed: 11))
        expectClose(x.softmax(), x.to(.float64).softmax(), rtol: 1e-5, atol: 1e-9, "softmax float32")
        expectClose(x.logSoftmax(), x.to(.float64).logSoftmax(), rtol: 1e-5, atol: 1e-5, "logSoftmax float32")
    }
}
