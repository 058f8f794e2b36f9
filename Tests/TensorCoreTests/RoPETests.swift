import Foundation
import TensorCore
import TestSupport
import XCTest

final class RoPETests: XCTestCase {
    func testMatchesPyTorch() throws {
        let f = try Fixture.load("rope", target: "TensorCoreTests")
        let x = f.tensor("x")  // (B, L, Nh, Dh) = (2, 6, 3, 8)
        x.requiresGrad = true
        let out = Tensor.applyRoPE(x, cos: f.tensor("cos"), sin: f.tensor("sin"))
        expectClose(out, f.tensor("output"), rtol: 1e-5, atol: 1e-6, "rope output")
        (out * f.tensor("grad_output")).sum().backward()
        expectClose(x.grad!, f.tensor("grad_x"), rtol: 1e-5, atol: 1e-6, "rope grad x")
    }

    func testTablesMatchPyTorch() throws {
        let f = try Fixture.load("rope", target: "TensorCoreTests")
        let tables = Tensor.ropeTables(positions: (0..<6).map { [$0] }, axisDims: [8], dtype: .float32)
        expectClose(tables.cos, f.tensor("cos"), rtol: 1e-6, atol: 1e-7, "cos table")
        expectClose(tables.sin, f.tensor("sin"), rtol: 1e-6, atol: 1e-7, "sin table")
    }

    /// Two axes of 2 and 4 channels: channels 0-1 follow axis 0 at full frequency; channels 2-3 and 4-5 follow
    /// axis 1 at frequencies 1 and base^(−1/2).
    func testTablesSplitChannelsByAxis() {
        let tables = Tensor.ropeTables(positions: [[3, 5]], axisDims: [2, 4], base: 100, dtype: .float64)
        let angles = [3.0, 3.0, 5.0, 5.0, 0.5, 0.5]
        expectClose(tables.cos.doubleScalars, angles.map { Foundation.cos($0) }, rtol: 1e-12, atol: 1e-12, "cos")
        expectClose(tables.sin.doubleScalars, angles.map { Foundation.sin($0) }, rtol: 1e-12, atol: 1e-12, "sin")
    }

    func testGradient() {
        let x = GradientCheck.inputs([[2, 3, 2, 6]])
        let tables = Tensor.ropeTables(
            positions: [[0, 1], [2, 0], [1, 3]], axisDims: [2, 4], base: 50, dtype: .float64)
        GradientCheck.check(x, "rope") { Tensor.applyRoPE($0[0], cos: tables.cos, sin: tables.sin) }
    }

    /// The Float vector path (Dh 72, the goku-1b head, with 3D tables) forward and backward against the Float64
    /// scalar path.
    func testVectorPathMatchesFloat64() {
        let g = RandomGenerator(seed: 6)
        let positions = (0..<10).map { [$0 / 4, ($0 / 2) % 2, $0 % 2 + 3] }
        let t32 = Tensor.ropeTables(positions: positions, axisDims: [24, 24, 24], dtype: .float32)
        let t64 = Tensor.ropeTables(positions: positions, axisDims: [24, 24, 24], dtype: .float64)
        let x = Tensor.randn([1, 10, 3, 72], generator: g), upstream = Tensor.randn([1, 10, 3, 72], generator: g)
        let x32 = x.copy(), x64 = x.to(.float64)
        x32.requiresGrad = true
        x64.requiresGrad = true
        let y32 = Tensor.applyRoPE(x32, cos: t32.cos, sin: t32.sin)
        let y64 = Tensor.applyRoPE(x64, cos: t64.cos, sin: t64.sin)
        expectClose(y32, y64, rtol: 1e-6, atol: 1e-6, "forward")
        y32.backward(upstream)
        y64.backward(upstream.to(.float64))
        expectClose(x32.grad!, x64.grad!, rtol: 1e-6, atol: 1e-6, "backward")
    }

    /// Rank 3 (L, Nh, Dh) and rank 5 inputs rotate each (L, Nh, Dh) block like rank 4.
    func testOtherRanks() {
        let g = RandomGenerator(seed: 5)
        let x = Tensor.randn([2, 2, 4, 3, 6], generator: g)
        let tables = Tensor.ropeTables(positions: (0..<4).map { [$0 * 7] }, axisDims: [6])
        let five = Tensor.applyRoPE(x, cos: tables.cos, sin: tables.sin)
        let four = Tensor.applyRoPE(x.reshape([4, 4, 3, 6]), cos: tables.cos, sin: tables.sin)
        let three = Tensor.applyRoPE(x.reshape([4, 4, 3, 6]).slice(axis: 0, 1, 2).reshape([4, 3, 6]), cos: tables.cos, sin: tables.sin)
        expectClose(five.reshape([4, 4, 3, 6]), four, rtol: 0, atol: 0, "rank 5")
        expectClose(three, four.slice(axis: 0, 1, 2).reshape([4, 3, 6]), rtol: 0, atol: 0, "rank 3")
        // Position 0 is the identity.
        expectClose(four.slice(axis: 1, 0, 1), x.reshape([4, 4, 3, 6]).slice(axis: 1, 0, 1), rtol: 0, atol: 0, "position 0")
    }
}
