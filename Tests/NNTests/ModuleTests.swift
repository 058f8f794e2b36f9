import NN
import TensorCore
import TestSupport
import XCTest

/// A two-level model whose keys must come out as PyTorch would name them.
private final class Block: Module {
    @ModuleInfo(key: "q_proj") var queryProjection = Linear(4, 4, bias: false)
    let mlp = MLP(4, hidden: 8)
}

private final class Model: Module {
    @ModuleInfo(key: "input_proj") var inputProjection = Linear(3, 4)
    let blocks = [Block(), Block()]
    @ParameterInfo(key: "pos_embed") var positions = Tensor.zeros([1, 4]).asParameter()
    let head: Linear? = nil
}

final class ModuleTests: XCTestCase {
    func testKeyPathsFollowPyTorchNames() {
        let keys = Model().namedParameters().map(\.key)
        XCTAssertEqual(
            keys,
            [
                "input_proj.weight", "input_proj.bias",
                "blocks.0.q_proj.weight", "blocks.0.mlp.fc1.weight", "blocks.0.mlp.fc1.bias",
                "blocks.0.mlp.fc2.weight", "blocks.0.mlp.fc2.bias",
                "blocks.1.q_proj.weight", "blocks.1.mlp.fc1.weight", "blocks.1.mlp.fc1.bias",
                "blocks.1.mlp.fc2.weight", "blocks.1.mlp.fc2.bias",
                "pos_embed",
            ])
        XCTAssertEqual(Model().parameterCount, 3 * 4 + 4 + 2 * (16 + 32 + 8 + 32 + 4) + 4)
    }

    func testLoadCopiesValuesAndReportsEveryMismatch() throws {
        let source = Model(), target = Model()
        var tensors = source.parameterDictionary()
        try target.load(tensors)
        for (key, t) in target.parameterDictionary() {
            XCTAssertEqual(t.scalars, tensors[key]!.scalars, key)
        }
        tensors.removeValue(forKey: "blocks.1.q_proj.weight")
        tensors["extra.weight"] = Tensor.zeros([2])
        tensors["input_proj.bias"] = Tensor.zeros([5])
        XCTAssertThrowsError(try target.load(tensors)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("missing keys: blocks.1.q_proj.weight"), text)
            XCTAssertTrue(text.contains("unexpected keys: extra.weight"), text)
            XCTAssertTrue(text.contains("'input_proj.bias' has shape [5], expected [4]"), text)
        }
    }

    func testFailedLoadChangesNothing() {
        let model = Model()
        let before = model.parameterDictionary().mapValues(\.scalars)
        var tensors = Model().parameterDictionary()
        tensors["input_proj.bias"] = Tensor.zeros([5])
        XCTAssertThrowsError(try model.load(tensors))
        XCTAssertEqual(model.parameterDictionary().mapValues(\.scalars), before)
    }

    func testDropoutKeepsExpectationAndIsIdentityInInference() {
        let d = Dropout(0.25)
        let x = Tensor.ones([20000])
        let y = d(x).scalars
        let zeros = y.filter { $0 == 0 }.count
        XCTAssertEqual(Double(zeros) / 20000, 0.25, accuracy: 0.02)
        XCTAssertEqual(y.reduce(0, +) / 20000, 1, accuracy: 0.03)
        XCTAssertTrue(y.allSatisfy { $0 == 0 || Swift.abs($0 - 1 / 0.75) < 1e-6 })
        d.setTraining(false)
        XCTAssertEqual(d(x).scalars, x.scalars)
    }

    func testMLPGradientsAgainstFiniteDifferences() {
        let mlp = MLP(3, hidden: 5, activation: .geluTanh, generator: RandomGenerator(seed: 3))
        // Check in Float64: convert the parameters.
        let params = mlp.namedParameters().map(\.tensor)
        let wide = params.map { p -> Tensor in
            let t = p.to(.float64).detached()
            t.requiresGrad = true
            return t
        }
        let x = GradientCheck.inputs([[2, 3]])[0]
        GradientCheck.check([x] + wide, "mlp") { xs in
            let h = Tensor.linear(xs[0], weight: xs[1], bias: xs[2]).gelu(approximateTanh: true)
            return Tensor.linear(h, weight: xs[3], bias: xs[4])
        }
    }

    func testInitialisersDrawTheirStatedRanges() {
        let g = RandomGenerator(seed: 5)
        let w = Initializer.xavierUniform([64, 32], generator: g).scalars
        let bound = Float((6.0 / 96.0).squareRoot())
        XCTAssertTrue(w.allSatisfy { Swift.abs($0) <= bound })
        XCTAssertGreaterThan(w.map { Swift.abs($0) }.max()!, bound * 0.95)
        let n = Initializer.normal([20000], std: 0.02, generator: g).scalars
        let mean = n.reduce(0, +) / Float(n.count)
        let std = (n.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Float(n.count)).squareRoot()
        XCTAssertEqual(std, 0.02, accuracy: 0.001)
    }
}
