import Foundation
import RectifiedFlow
import TensorCore
import TestSupport
import XCTest

final class RectifiedFlowTests: XCTestCase {
    func testTrainingPairAndLoss() {
        let data = Tensor(shape: [2], scalars: [1.0, -2.0]), noise = Tensor(shape: [2], scalars: [0.5, 1.0])
        let (xt, target) = RectifiedFlow.trainingPair(data: data, noise: noise, t: 0.25)
        expectClose(xt.doubleScalars, [0.25 * 1 + 0.75 * 0.5, 0.25 * -2 + 0.75 * 1], rtol: 1e-7, atol: 1e-7, "x_t")
        expectClose(target.doubleScalars, [0.5, -3], rtol: 0, atol: 0, "target")
        // Σ‖·‖² / Σ count over samples of different sizes: (1 + 4 + 9) / 3.
        let loss = RectifiedFlow.loss(
            predictions: [Tensor(shape: [1], scalars: [1.0]), Tensor(shape: [2], scalars: [2.0, 3.0])],
            targets: [Tensor.zeros([1], dtype: .float64), Tensor.zeros([2], dtype: .float64)])
        XCTAssertEqual(loss.item(), 14.0 / 3, accuracy: 1e-6)
    }

    /// The weighted loss: Σ w·(p − t)² / Σ w over the broadcast weights, the plain loss when the weights are 1, and its
    /// gradient against central differences in Float64.
    func testWeightedLoss() {
        let predictions = [Tensor(shape: [2, 1, 1, 2], scalars: [1.0, 2.0, 3.0, 4.0]), Tensor(shape: [1, 1, 1, 1], scalars: [5.0])]
        let targets = [Tensor.zeros([2, 1, 1, 2], dtype: .float64), Tensor(shape: [1, 1, 1, 1], scalars: [4.0])]
        // Weights broadcast over the channel axis: positions (3, 1) in the first sample, 2 in the second.
        let weights = [Tensor(shape: [1, 1, 1, 2], scalars: [3.0, 1.0]), Tensor(shape: [1, 1, 1, 1], scalars: [2.0])]
        let loss = RectifiedFlow.weightedLoss(predictions: predictions, targets: targets, weights: weights)
        // (3·1 + 1·4 + 3·9 + 1·16 + 2·1) / (3 + 1 + 3 + 1 + 2)
        XCTAssertEqual(loss.doubleScalars[0], 52.0 / 10, accuracy: 1e-12)
        let ones = weights.map { Tensor.ones($0.shape, dtype: .float64) }
        XCTAssertEqual(
            RectifiedFlow.weightedLoss(predictions: predictions, targets: targets, weights: ones).doubleScalars[0],
            RectifiedFlow.loss(predictions: predictions, targets: targets).doubleScalars[0], accuracy: 1e-12)

        let inputs = GradientCheck.inputs([[3, 2, 2, 2], [3, 2, 2, 2]], seed: 5)
        let w = Tensor(shape: [1, 2, 2, 2], scalars: [1.0, 5, 1, 1, 5, 5, 1, 1])
        GradientCheck.check(inputs, "weightedLoss") {
            RectifiedFlow.weightedLoss(predictions: [$0[0]], targets: [$0[1]], weights: [w])
        }
    }

    func testShiftClosedForms() {
        XCTAssertEqual(TimestepShift.apply(0, shift: 3), 0, accuracy: 1e-12)
        XCTAssertEqual(TimestepShift.apply(1, shift: 3), 1, accuracy: 1e-12)
        XCTAssertEqual(TimestepShift.apply(0.5, shift: 3), 0.25, accuracy: 1e-12)  // 1 − 1.5/2
        XCTAssertEqual(TimestepShift.apply(0.37, shift: 1), 0.37, accuracy: 1e-12)
        let rule = TimestepShift()
        XCTAssertEqual(rule.shift(tokenCount: 256), Foundation.exp(0.5), accuracy: 1e-12)
        XCTAssertEqual(rule.shift(tokenCount: 4096), Foundation.exp(1.15), accuracy: 1e-12)
        XCTAssertEqual(TimestepShift.none.shift(tokenCount: 10_000), 1, accuracy: 1e-12)
        // A (16, 5, 8, 8) latent in (1, 2, 2) patches is 5·4·4 = 80 tokens: log s = 0.5 + 0.65·(80 − 256)/3840.
        XCTAssertEqual(TimestepShift.tokenCount(latentShape: [16, 5, 8, 8], patchSize: [1, 2, 2]), 80)
        XCTAssertEqual(
            rule.shift(latentShape: [16, 5, 8, 8], patchSize: [1, 2, 2]), Foundation.exp(0.5 - 0.65 * 176 / 3840),
            accuracy: 1e-12)
        let grid = FlowSampler.schedule(steps: 4, shift: 3)
        XCTAssertEqual(grid.count, 5)
        XCTAssertEqual(grid[2], 0.25, accuracy: 1e-12)
        XCTAssertTrue(zip(grid, grid.dropFirst()).allSatisfy { $0 < $1 })
    }

    func testTimestepDistributions() {
        let g = RandomGenerator(seed: 1)
        let uniform = TimestepDistribution.uniform.sample(count: 20000, generator: g)
        XCTAssertEqual(uniform.reduce(0, +) / 20000, 0.5, accuracy: 0.01)
        let logit = TimestepDistribution.logitNormal(mean: 0, std: 1).sample(count: 20000, generator: g)
        XCTAssertTrue(logit.allSatisfy { $0 > 0 && $0 < 1 })
        XCTAssertEqual(logit.reduce(0, +) / 20000, 0.5, accuracy: 0.01)
        // Median of t is 1 − sigmoid(mean): mean 1 (SD3's σ) puts most samples near the noise end.
        let noisy = TimestepDistribution.logitNormal(mean: 1, std: 1).sample(count: 20001, generator: g).sorted()
        XCTAssertEqual(noisy[10000], 1 - 1 / (1 + Foundation.exp(-1)), accuracy: 0.01)
        let dropout = CaptionDropout(probability: 0.2)
        let drops = (0..<10000).filter { _ in dropout.shouldDrop(generator: g) }.count
        XCTAssertEqual(Double(drops) / 10000, 0.2, accuracy: 0.015)
        XCTAssertFalse(CaptionDropout(probability: 0).shouldDrop(generator: g))
    }
}

final class DDPMTests: XCTestCase {
    func testLinearScheduleClosedForm() {
        let small = DDPMSchedule.linear(steps: 3, start: 0.1, end: 0.3)
        expectClose(small.betas, [0.1, 0.2, 0.3], rtol: 1e-12, atol: 1e-12, "β")
        expectClose(small.alphasCumprod, [0.9, 0.72, 0.504], rtol: 1e-12, atol: 1e-12, "ᾱ")
        let standard = DDPMSchedule.linear()
        XCTAssertEqual(standard.stepCount, 1000)
        XCTAssertEqual(standard.betas[0], 1e-4, accuracy: 1e-15)
        XCTAssertEqual(standard.betas[999], 0.02, accuracy: 1e-15)
        XCTAssertEqual(standard.betas[500], 1e-4 + (0.02 - 1e-4) * 500 / 999, accuracy: 1e-15)
        // log ᾱ_K = Σ log(1 − β_k); ᾱ at the end of Ho et al.'s schedule is about 4.0e-5.
        XCTAssertEqual(standard.alphasCumprod[999], 4.04e-5, accuracy: 0.05e-5)
    }

    func testCosineScheduleClosedForm() {
        let schedule = DDPMSchedule.cosine(steps: 1000)
        func f(_ tau: Double) -> Double {
            let c = Foundation.cos((tau + 0.008) / 1.008 * Double.pi / 2)
            return c * c
        }
        for k in [0, 1, 10, 250, 500, 900, 990] {
            XCTAssertEqual(schedule.alphasCumprod[k], f(Double(k + 1) / 1000) / f(0), accuracy: 1e-10, "ᾱ_\(k)")
        }
        XCTAssertEqual(schedule.betas[999], 0.999, accuracy: 1e-12, "the last β is clipped")
    }

    func testNoisedAndModelTime() {
        let schedule = DDPMSchedule.linear(steps: 3, start: 0.1, end: 0.3)
        let x = schedule.noised(
            data: Tensor(shape: [1], scalars: [2.0]), noise: Tensor(shape: [1], scalars: [1.0]), step: 1)
        XCTAssertEqual(Double(x.item()), 2 * 0.72.squareRoot() + 0.28.squareRoot(), accuracy: 1e-6)
        XCTAssertEqual(schedule.modelTime(step: 0), 1)
        XCTAssertEqual(schedule.modelTime(step: 2), 1.0 / 3, accuracy: 1e-12)
        XCTAssertEqual(
            DDPMSchedule.loss(
                predictedNoise: Tensor(shape: [2], scalars: [1.0, 3.0]), noise: Tensor.zeros([2], dtype: .float64)
            ).item(), 5)
    }
}
