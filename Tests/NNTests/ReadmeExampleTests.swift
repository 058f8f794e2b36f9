import NN
import Optim
import TensorCore
import XCTest

/// The README's MLP example, verbatim apart from collecting the losses: it must build and it must learn.
final class ReadmeExampleTests: XCTestCase {
    func testReadmeMLPExampleTrains() {
        var losses: [Float] = []
        let g = RandomGenerator(seed: 0)
        let model = MLP(2, hidden: 32, output: 1, activation: .silu, generator: g)
        let optimizer = AdamW(model.namedParameters(), options: .init(learningRate: 1e-2, weightDecay: 0))
        let x = Tensor.rand([256, 2], low: -1, high: 1, generator: g)
        let y = (x.slice(axis: 1, 0, 1) * x.slice(axis: 1, 1, 2)).sin()  // a target to fit: sin(x₀·x₁)
        for _ in 0..<300 {
            model.zeroGrad()
            let loss = (model(x) - y).square().mean()  // MSE
            loss.backward()
            GradientClipping.clipGlobalNorm(model.trainableParameters(), maxNorm: 1)
            optimizer.update()
            losses.append(loss.item())
        }
        XCTAssertLessThan(losses.last!, losses.first! * 0.05, "losses: \(losses.first!) → \(losses.last!)")
    }
}
