import TensorCore
import TestSupport
import XCTest

final class PoolTests: XCTestCase {
    func testAvgPool3dMatchesPyTorch() throws {
        let f = try Fixture.load("pool_upsample", target: "TensorCoreTests")
        let x = f.tensor("x")
        x.requiresGrad = true
        let y = Tensor.avgPool3d(x, kernel: [2, 2, 2], stride: [2, 2, 2])
        expectClose(y, f.tensor("avgpool"), rtol: 1e-5, atol: 1e-6, "avgpool")
        (y * f.tensor("grad_output_avgpool")).sum().backward()
        expectClose(x.grad!, f.tensor("grad_x_avgpool"), rtol: 1e-5, atol: 1e-6, "grad x avgpool")
    }

    func testUpsampleNearestMatchesPyTorch() throws {
        let f = try Fixture.load("pool_upsample", target: "TensorCoreTests")
        let x = f.tensor("x")
        x.requiresGrad = true
        let y = x.upsampleNearest(scale: [1, 2, 2])
        expectClose(y, f.tensor("upsample"), rtol: 0, atol: 0, "upsample")
        (y * f.tensor("grad_output_upsample")).sum().backward()
        expectClose(x.grad!, f.tensor("grad_x_upsample"), rtol: 1e-5, atol: 1e-6, "grad x upsample")
    }

    func testAvgPool2dOverlappingWindows() {
        // 1×1×3×4, kernel (2,3) stride (1,1): neighbouring windows overlap.
        let x = Tensor(shape: [1, 1, 3, 4], scalars: (0..<12).map(Float.init))
        let y = Tensor.avgPool2d(x, kernel: [2, 3], stride: [1, 1])
        // Window (r, c) covers rows r, r+1 and columns c…c+2: mean = 4r + c + 3.
        expectClose(y, Tensor(shape: [1, 1, 2, 2], scalars: [3, 4, 7, 8] as [Float]), "avgPool2d values")
    }

    func testUpsampleNearest2dValues() {
        let x = Tensor(shape: [1, 1, 2, 2], scalars: [1, 2, 3, 4] as [Float])
        let y = x.upsampleNearest(scale: [2, 3])
        let expected: [Float] = [
            1, 1, 1, 2, 2, 2,
            1, 1, 1, 2, 2, 2,
            3, 3, 3, 4, 4, 4,
            3, 3, 3, 4, 4, 4,
        ]
        expectClose(y, Tensor(shape: [1, 1, 4, 6], scalars: expected), rtol: 0, atol: 0, "upsample 2-D values")
    }

    func testAvgPool3dGradientsOverlapping() {
        let xs = GradientCheck.inputs([[2, 2, 4, 5, 5]])
        GradientCheck.check(xs, "avgPool3d kernel (2,3,3) stride (1,2,1)") { v in
            Tensor.avgPool3d(v[0], kernel: [2, 3, 3], stride: [1, 2, 1])
        }
    }

    func testAvgPool2dGradients() {
        let xs = GradientCheck.inputs([[2, 3, 5, 6]], seed: 2)
        GradientCheck.check(xs, "avgPool2d kernel (2,2) stride (2,2)") { v in
            Tensor.avgPool2d(v[0], kernel: [2, 2], stride: [2, 2])
        }
    }

    func testUpsampleNearest3dGradients() {
        let xs = GradientCheck.inputs([[2, 2, 2, 3, 2]], seed: 3)
        GradientCheck.check(xs, "upsampleNearest scale (2,1,3)") { v in v[0].upsampleNearest(scale: [2, 1, 3]) }
    }

    func testUpsampleNearest2dGradients() {
        let xs = GradientCheck.inputs([[1, 2, 3, 2]], seed: 4)
        GradientCheck.check(xs, "upsampleNearest scale (2,2)") { v in v[0].upsampleNearest(scale: [2, 2]) }
    }
}
