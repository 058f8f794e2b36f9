import GokuModel
import Optim
import RectifiedFlow
import TensorCore
import TestSupport
import XCTest

/// Mixed-precision training of the tiny model: bfloat16 matrix products (Float32 master weights, AdamW state, norms
/// and softmax statistics) follow the Float32 run.
final class MixedPrecisionTrainingTests: XCTestCase {
    /// 100 AdamW steps of the rectified-flow loss from the same initial weights and the same data, noise and
    /// timesteps, once in Float32 and once with `matmulPrecision = .bfloat16`. Tolerance: the mean loss of the last
    /// 20 steps within 10% of the Float32 run's (bf16 operands carry 8 significant bits; over 100 steps the two
    /// runs drift apart by a few percent), and every bf16 loss finite. Checked also that the bf16 run differs from
    /// the Float32 one at all (the products did run in bf16).
    func testBFloat16LossFollowsFloat32Over100Steps() throws {
        guard Convolution.isDNNLAvailable else { return XCTFail("oneDNN has no CPU engine here (scripts/setup.sh installs it)") }
        func train(_ precision: MixedPrecision.Mode) throws -> [Float] {
            let model = GokuTransformer(.tiny, generator: RandomGenerator(seed: 1))
            model.matmulPrecision = precision
            let optimizer = AdamW(model.namedParameters(), options: .init(learningRate: 3e-3, weightDecay: 0))
            let g = RandomGenerator(seed: 2)
            let data = [Tensor.randn([4, 1, 4, 4], generator: g), Tensor.randn([4, 3, 4, 4], generator: g)]
            let texts = [Tensor.randn([3, 24], generator: g), Tensor.randn([3, 24], generator: g)]
            var losses: [Float] = []
            for _ in 0..<100 {
                let ts = TimestepDistribution.logitNormal(mean: 0, std: 1).sample(count: 2, generator: g)
                var samples: [GokuSample] = [], targets: [Tensor] = []
                for i in 0..<2 {
                    let (xt, target) = RectifiedFlow.trainingPair(
                        data: data[i], noise: Tensor.randn(data[i].shape, generator: g), t: ts[i])
                    samples.append(GokuSample(latent: xt, timestep: ts[i], text: texts[i]))
                    targets.append(target)
                }
                model.zeroGrad()
                let loss = RectifiedFlow.loss(predictions: try model.velocity(samples), targets: targets)
                losses.append(loss.item())
                loss.backward()
                optimizer.update()
            }
            return losses
        }
        let fp32 = try train(.float32), bf16 = try train(.bfloat16)
        XCTAssertTrue(bf16.allSatisfy(\.isFinite))
        let late32 = fp32.suffix(20).reduce(0, +) / 20, late16 = bf16.suffix(20).reduce(0, +) / 20
        XCTAssertEqual(late16, late32, accuracy: 0.1 * late32, "last-20 mean loss: bf16 \(late16) vs fp32 \(late32)")
        XCTAssertLessThan(late32, fp32.prefix(20).reduce(0, +) / 20, "the Float32 run learns")
        if MixedPrecision.isAvailable {
            XCTAssertNotEqual(fp32, bf16, "the bf16 run used bf16 products")
        } else {
            XCTAssertEqual(fp32, bf16, "without oneDNN bf16 kernels (AVX2 only) bf16 mode runs the Float32 products")
        }
    }
}
