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

    /// Foreground positions are those far from their frame's per-channel median: an object on a flat background is
    /// found in each frame wherever it moves, the threshold is on the RMS over channels, and the weights are
    /// 1 + extra there and 1 elsewhere.
    func testForegroundWeighting() {
        // (C 2, T 2, 3×3): background (0.5, −1) everywhere, one object per frame, at a different place each frame.
        var values = [Float](repeating: 0, count: 2 * 2 * 9)
        for c in 0..<2 { for f in 0..<2 { for p in 0..<9 { values[(c * 2 + f) * 9 + p] = c == 0 ? 0.5 : -1 } } }
        values[(0 * 2 + 0) * 9 + 4] += 0.3  // frame 0, centre: RMS over channels 0.3 / √2 ≈ 0.212
        values[(1 * 2 + 0) * 9 + 4] += 0.0
        values[(0 * 2 + 1) * 9 + 0] += 0.1  // frame 1, corner: RMS √((0.01 + 0.04) / 2) ≈ 0.158
        values[(1 * 2 + 1) * 9 + 0] -= 0.2
        values[(0 * 2 + 1) * 9 + 8] += 0.1  // frame 1, other corner: RMS 0.1 / √2 ≈ 0.071
        let latent = Tensor(shape: [2, 2, 3, 3], scalars: values)

        let weighting = ForegroundWeighting(extraWeight: 4, threshold: 0.15)
        var expected = [Float](repeating: 0, count: 18)
        expected[4] = 1
        expected[9] = 1
        XCTAssertEqual(weighting.foregroundMask(of: latent).shape, [1, 2, 3, 3])
        XCTAssertEqual(weighting.foregroundMask(of: latent).scalars, expected)
        XCTAssertEqual(weighting.weights(for: latent).scalars, expected.map { 1 + 4 * $0 })
        // A higher threshold keeps only the centre; one above every distance finds nothing.
        XCTAssertEqual(ForegroundWeighting(extraWeight: 1, threshold: 0.18).foregroundMask(of: latent).scalars.reduce(0, +), 1)
        XCTAssertEqual(ForegroundWeighting(extraWeight: 1, threshold: 0.25).foregroundMask(of: latent).scalars.reduce(0, +), 0)
        // With the model's estimate, its objects weigh too: here one at a background position of frame 1.
        var drawn = values
        drawn[(0 * 2 + 1) * 9 + 5] += 0.5
        XCTAssertEqual(
            weighting.weights(for: latent, estimate: Tensor(shape: [2, 2, 3, 3], scalars: drawn)).scalars,
            expected.enumerated().map { 1 + 4 * ($0.offset == 9 + 5 ? 1 : $0.element) })
        XCTAssertEqual(weighting.weights(for: latent, estimate: latent).scalars, expected.map { 1 + 4 * $0 })
        XCTAssertTrue(weighting.isValid)
        XCTAssertFalse(ForegroundWeighting(extraWeight: -1).isValid)
        XCTAssertFalse(ForegroundWeighting(extraWeight: 1, threshold: .nan).isValid)
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

    /// Data that is one point x*: the exact field (x* − x)/(1 − t) is constant along its straight paths, so Euler
    /// lands on x* from any noise, in any number of steps, on any schedule.
    func testEulerIsExactOnAPointMass() {
        let target = Tensor(shape: [3], scalars: [0.5, -1.25, 2.0]).to(.float64)
        let noise = Tensor.randn([3], generator: RandomGenerator(seed: 2)).to(.float64)
        let field: VelocityField = { x, t in (target - x) / (1 - t) }
        for (steps, shift) in [(1, 1.0), (5, 3.0), (17, 0.5)] {
            let x1 = FlowSampler.euler(
                noise, schedule: FlowSampler.schedule(steps: steps, shift: shift), velocity: field)
            expectClose(x1, target, rtol: 1e-12, atol: 1e-12, "Euler, \(steps) steps, shift \(shift)")
        }
    }

    /// Gaussian data N(μ, s²): the rectified-flow marginals are N(tμ, σ_t²), σ_t² = t²s² + (1 − t)², the exact
    /// velocity is μ + σ_t'/σ_t·(x − tμ), and the ODE maps noise x0 to μ + s·x0.
    func testSamplersOnGaussianDataConvergeAtTheirOrder() {
        let mu = 1.5, s = 0.3
        let field: VelocityField = { x, t in
            let sigma = (t * t * s * s + (1 - t) * (1 - t)).squareRoot()
            let dSigma = (t * s * s - (1 - t)) / sigma
            return (x - t * mu) * (dSigma / sigma) + mu
        }
        let noise = Tensor.randn([8], generator: RandomGenerator(seed: 3)).to(.float64)
        let exact = noise * s + mu
        func error(_ sampler: (Tensor, [Double], VelocityField, ((Int) -> Void)?) -> Tensor, _ steps: Int) -> Double {
            let x = sampler(noise, FlowSampler.schedule(steps: steps, shift: 2), field, nil)
            return (x - exact).abs().max().doubleScalars[0]
        }
        let heun = { error(FlowSampler.heun, $0) }, euler = { error(FlowSampler.euler, $0) }
        // The shifted grid takes long steps near t = 1, where σ_t bends fastest, so the asymptotic ratios (4 and 2)
        // show from ~80 steps on (3.79 and 1.98 at 80 → 160, the same as a float64 NumPy integration).
        let heunRatio = heun(80) / heun(160), eulerRatio = euler(80) / euler(160)
        XCTAssertEqual(heunRatio, 4, accuracy: 0.4, "Heun is second order")
        XCTAssertEqual(eulerRatio, 2, accuracy: 0.1, "Euler is first order")
        XCTAssertLessThan(heun(160), 1e-4)
    }

    /// A linear field v = a·x from t = 0 to 1: x(1) = e^a·x(0).
    func testHeunOnALinearField() {
        let a = -1.7
        let x0 = Tensor(shape: [2], scalars: [1.0, -0.5])
        let exact = x0 * Foundation.exp(a)
        let field: VelocityField = { x, _ in x * a }
        let errors = [10, 20, 40].map { steps in
            (FlowSampler.heun(x0, schedule: FlowSampler.schedule(steps: steps), velocity: field) - exact).abs().max()
                .doubleScalars[0]
        }
        XCTAssertEqual(errors[0] / errors[1], 4, accuracy: 0.4)
        XCTAssertEqual(errors[1] / errors[2], 4, accuracy: 0.4)
    }

    /// v = v_u + w·(v_c − v_u), evaluated on fields with a closed form.
    func testClassifierFreeGuidance() {
        var calls = 0
        let guided = FlowSampler.guided(
            conditional: { x, _ in x * 2.0 },
            unconditional: { x, t in
                calls += 1; return x + t
            }, scale: 3)
        let x = Tensor(shape: [2], scalars: [1.0, 2.0])
        // (x + t) + 3·(2x − x − t) = 4x − 2t.
        expectClose(guided(x, 0.5).doubleScalars, [3, 7], rtol: 1e-6, atol: 1e-6, "guided velocity")
        XCTAssertEqual(calls, 1)
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

    /// With the exact ε of a point mass x* (ε̂ = (x − √ᾱ·x*)/√(1 − ᾱ)), DDIM and ancestral sampling both end on x*.
    func testSamplersRecoverAPointMass() {
        let target = Tensor(shape: [4], scalars: [0.3, -0.7, 1.1, 0.0]).to(.float64)
        for schedule in [DDPMSchedule.linear(steps: 50, start: 1e-3, end: 0.2), .cosine(steps: 50)] {
            let exactNoise: (Tensor, Int) -> Tensor = { x, k in
                let a = schedule.alphasCumprod[k]
                return (x - target * a.squareRoot()) / (1 - a).squareRoot()
            }
            let start = Tensor.randn([4], generator: RandomGenerator(seed: 4)).to(.float64)
            let ddim = schedule.sampleDDIM(start, steps: 7, predictNoise: exactNoise)
            expectClose(ddim, target, rtol: 1e-9, atol: 1e-9, "DDIM")
            let ancestral = schedule.sampleAncestral(
                start, generator: RandomGenerator(seed: 5), predictNoise: exactNoise)
            expectClose(ancestral, target, rtol: 1e-9, atol: 1e-9, "ancestral")
        }
    }
}
