import Foundation
import RectifiedFlow
import TensorCore
import TestSupport
import XCTest

/// The rectified-flow ODE samplers against closed forms: their step rules on fields whose discrete solution is known,
/// their orders of convergence, the kinds that name them and how those names read and fail.
final class FlowSamplerTests: XCTestCase {
    /// On v = a·x each step multiplies x by a polynomial in h = t_{i+1} − t_i: Euler by 1 + ah, Heun by
    /// 1 + ah + (ah)²/2 (the explicit trapezoid rule is second-order Taylor on a linear field), on any grid.
    func testStepRulesOnALinearFieldAreTheirTaylorPolynomials() {
        let a = -1.7
        let x0 = Tensor(shape: [2], scalars: [1.0, -0.5])
        let field: VelocityField = { x, _ in x * a }
        for times in [FlowSampler.schedule(steps: 7), FlowSampler.schedule(steps: 5, shift: 3)] {
            let hs = zip(times, times.dropFirst()).map { $1 - $0 }
            let euler = hs.reduce(1.0) { $0 * (1 + a * $1) }
            let heun = hs.reduce(1.0) { $0 * (1 + a * $1 + a * a * $1 * $1 / 2) }
            expectClose(
                EulerSampler(times: times).sample(x0, model: field), x0 * euler, rtol: 1e-13, atol: 1e-15, "Euler")
            expectClose(HeunSampler(times: times).sample(x0, model: field), x0 * heun, rtol: 1e-13, atol: 1e-15, "Heun")
        }
    }

    /// v = 2t, whose solution is x0 + 1: Heun (the trapezoid rule on an integrand linear in t) is exact in any number
    /// of steps; Euler takes the left Riemann sum Σ 2(i/N)(1/N) = (N − 1)/N, an error of exactly 1/N.
    func testAFieldLinearInTime() {
        let x0 = Tensor(shape: [3], scalars: [0.25, -1.0, 2.0])
        let field: VelocityField = { x, t in Tensor.zeros(like: x) + 2 * t }
        for steps in [1, 4, 10] {
            expectClose(HeunSampler(steps: steps).sample(x0, model: field), x0 + 1, rtol: 1e-14, atol: 1e-14, "Heun")
            expectClose(
                EulerSampler(steps: steps).sample(x0, model: field), x0 + (1 - 1 / Double(steps)), rtol: 1e-14,
                atol: 1e-14, "Euler, \(steps) steps")
        }
    }

    /// On v = a·x, x(1) = e^a·x(0); halving the step divides Euler's error by 2 and Heun's by 4.
    func testOrdersOfConvergenceOnALinearField() {
        let a = -1.7
        let x0 = Tensor(shape: [2], scalars: [1.0, -0.5])
        let exact = x0 * Foundation.exp(a)
        let field: VelocityField = { x, _ in x * a }
        func error(_ kind: SamplerKind, _ steps: Int) -> Double {
            (kind.sampler(steps: steps).sample(x0, model: field) - exact).abs().max().doubleScalars[0]
        }
        XCTAssertEqual(error(.euler, 100) / error(.euler, 200), 2, accuracy: 0.05, "Euler is first order")
        XCTAssertEqual(error(.heun, 100) / error(.heun, 200), 4, accuracy: 0.05, "Heun is second order")
        XCTAssertLessThan(error(.heun, 200), 1e-5)
    }

    /// Data that is one point x*: the exact field (x* − x)/(1 − t) is constant along its straight paths, so Euler
    /// lands on x* from any noise, in any number of steps, on any schedule.
    func testEulerIsExactOnAPointMass() {
        let target = Tensor(shape: [3], scalars: [0.5, -1.25, 2.0]).to(.float64)
        let noise = Tensor.randn([3], generator: RandomGenerator(seed: 2)).to(.float64)
        let field: VelocityField = { x, t in (target - x) / (1 - t) }
        for (steps, shift) in [(1, 1.0), (5, 3.0), (17, 0.5)] {
            let x1 = EulerSampler(steps: steps, shift: shift).sample(noise, model: field)
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
        func error(_ kind: SamplerKind, _ steps: Int) -> Double {
            (kind.sampler(steps: steps, shift: 2).sample(noise, model: field) - exact).abs().max().doubleScalars[0]
        }
        // The shifted grid takes long steps near t = 1, where σ_t bends fastest, so the asymptotic ratios (4 and 2)
        // show from ~80 steps on (3.79 and 1.98 at 80 → 160, the same as a float64 NumPy integration).
        XCTAssertEqual(error(.heun, 80) / error(.heun, 160), 4, accuracy: 0.4, "Heun is second order")
        XCTAssertEqual(error(.euler, 80) / error(.euler, 160), 2, accuracy: 0.1, "Euler is first order")
        XCTAssertLessThan(error(.heun, 160), 1e-4)
    }

    /// Euler evaluates the field once per step at the step's start, Heun twice, at both ends; `onStep` reports every
    /// step in order.
    func testEvaluationTimesAndProgress() {
        let times = FlowSampler.schedule(steps: 4, shift: 3)
        for (kind, expected) in [
            (SamplerKind.euler, Array(times.dropLast())),
            (.heun, zip(times, times.dropFirst()).flatMap { [$0, $1] }),
        ] {
            var seen: [Double] = [], steps: [Int] = []
            let sampler = kind.sampler(steps: 4, shift: 3)
            _ = sampler.sample(
                Tensor.zeros([1], dtype: .float64),
                model: { x, t in
                    seen.append(t)
                    return x
                }, onStep: { steps.append($0) })
            XCTAssertEqual(seen, expected, "\(kind)")
            XCTAssertEqual(steps, [0, 1, 2, 3], "\(kind)")
            XCTAssertEqual(sampler.stepCount, 4)
            XCTAssertEqual(sampler.prediction, .velocity)
        }
    }

    /// Each kind builds its sampler over `FlowSampler.schedule(steps:shift:)`; the kinds are written by their names.
    func testKindsBuildTheirSamplers() throws {
        let euler = try XCTUnwrap(SamplerKind.euler.sampler(steps: 6, shift: 2.5) as? EulerSampler)
        XCTAssertEqual(euler.times, FlowSampler.schedule(steps: 6, shift: 2.5))
        let heun = try XCTUnwrap(SamplerKind.heun.sampler(steps: 3) as? HeunSampler)
        XCTAssertEqual(heun.times, FlowSampler.schedule(steps: 3))
        XCTAssertEqual(SamplerKind.allCases.map(\.rawValue), ["euler", "heun"])
        XCTAssertEqual(SamplerKind.heun.description, "heun")
    }

    /// JSON keeps the spelling `"sampler": "euler"` both ways, reads names in any case as before, and refuses an
    /// unknown name by naming it and the valid ones.
    func testKindsRoundTripThroughJSONAndUnknownNamesAreNamed() throws {
        struct Holder: Codable, Equatable { var sampler: SamplerKind }
        for kind in SamplerKind.allCases {
            let json = try JSONEncoder().encode(Holder(sampler: kind))
            XCTAssertEqual(String(decoding: json, as: UTF8.self), #"{"sampler":"\#(kind.rawValue)"}"#)
            XCTAssertEqual(try JSONDecoder().decode(Holder.self, from: json), Holder(sampler: kind))
        }
        XCTAssertEqual(try JSONDecoder().decode(Holder.self, from: Data(#"{"sampler":"Heun"}"#.utf8)).sampler, .heun)
        XCTAssertThrowsError(try JSONDecoder().decode(Holder.self, from: Data(#"{"sampler":"rk4"}"#.utf8))) { error in
            guard case DecodingError.dataCorrupted(let context) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(context.codingPath.map(\.stringValue), ["sampler"])
            XCTAssertEqual(context.debugDescription, "unknown sampler 'rk4' (valid: euler, heun)")
        }

        XCTAssertEqual(try SamplerKind(parsing: "EULER"), .euler)
        XCTAssertThrowsError(try SamplerKind(parsing: "rk4")) { error in
            XCTAssertEqual((error as? SamplerKind.UnknownName)?.name, "rk4")
            XCTAssertEqual("\(error)", "unknown sampler 'rk4' (valid: euler, heun)")
        }
    }
}

/// Classifier-free guidance and its interval, on fields with closed forms.
final class GuidanceTests: XCTestCase {
    private let x = Tensor(shape: [2], scalars: [1.0, 2.0])

    /// Inside the interval: f_u + w·(f_c − f_u), the unconditional field evaluated once.
    func testGuidedFieldIsTheCombination() {
        var calls = 0
        let guided = ClassifierFreeGuidance(scale: 3).field(
            conditional: { x, _ in x * 2.0 },
            unconditional: { x, t in
                calls += 1
                return x + t
            })
        // (x + t) + 3·(2x − x − t) = 4x − 2t.
        expectClose(guided(x, 0.5).doubleScalars, [3, 7], rtol: 1e-15, atol: 1e-15, "guided field")
        XCTAssertEqual(calls, 1)
    }

    /// With scale 1, and outside the interval, the field is the conditional one, bit for bit, and the unconditional
    /// field is never evaluated; the interval's bounds belong to it.
    func testNoGuidanceAtScaleOneOrOutsideTheInterval() {
        let conditional: ModelField = { x, t in x * 0.3 + t }
        var calls = 0
        let unconditional: ModelField = { x, _ in
            calls += 1
            return x * -7.0
        }
        let plain = ClassifierFreeGuidance(scale: 1).field(conditional: conditional, unconditional: unconditional)
        for t in [0.0, 0.3, 1.0] { XCTAssertEqual(plain(x, t).doubleScalars, conditional(x, t).doubleScalars) }

        let interval = GuidanceInterval(lower: 0.2, upper: 0.4)
        let limited = ClassifierFreeGuidance(scale: 5, interval: interval)
        let field = limited.field(conditional: conditional, unconditional: unconditional)
        for t in [0.0, 0.19, 0.41, 1.0] { XCTAssertEqual(field(x, t).doubleScalars, conditional(x, t).doubleScalars) }
        XCTAssertEqual(calls, 0)
        for t in [0.2, 0.3, 0.4] {
            XCTAssertTrue(limited.applies(at: t))
            expectClose(
                field(x, t), limited.combine(conditional: conditional(x, t), unconditional: x * -7.0), rtol: 0, atol: 0,
                "t = \(t)")
        }
        XCTAssertEqual(calls, 3)
        XCTAssertFalse(ClassifierFreeGuidance(scale: 1, interval: interval).applies(at: 0.3))
    }

    /// The packed form (both branches from one call) is the same field, and asks for the unconditional branch
    /// exactly where guidance applies.
    func testPackedFieldMatchesTheTwoFieldForm() {
        let guidance = ClassifierFreeGuidance(scale: 2.5, interval: GuidanceInterval(lower: 0, upper: 0.5))
        var asked: [Bool] = []
        let packed = guidance.field { x, t, unconditional in
            asked.append(unconditional)
            return (x * 2.0 + t, unconditional ? x - t : nil)
        }
        let separate = guidance.field(conditional: { x, t in x * 2.0 + t }, unconditional: { x, t in x - t })
        for t in [0.0, 0.25, 0.5, 0.75] {
            XCTAssertEqual(packed(x, t).doubleScalars, separate(x, t).doubleScalars, "t = \(t)")
        }
        XCTAssertEqual(asked, [true, true, true, false])
    }

    /// Euler on a guided field with an interval: f_c = 1, f_u = 0, so the velocity is w inside the interval and 1
    /// outside; on ten uniform steps the interval [0, 0.45] holds the five steps that start at 0 … 0.4, and
    /// x(1) = x(0) + 0.5·w + 0.5.
    func testASamplerIntegratesTheGuidedField() {
        let w = 3.0
        let field = ClassifierFreeGuidance(scale: w, interval: GuidanceInterval(lower: 0, upper: 0.45)).field(
            conditional: { x, _ in Tensor.ones(x.shape, dtype: x.dtype) },
            unconditional: { x, _ in Tensor.zeros(like: x) })
        let x1 = EulerSampler(steps: 10).sample(x, model: field)
        expectClose(x1, x + (0.5 * w + 0.5), rtol: 1e-14, atol: 1e-14, "Euler")
    }

    /// "LO,HI" parses, bounds are checked, and JSON holds [lo, hi].
    func testIntervalParsingAndJSON() throws {
        XCTAssertEqual(GuidanceInterval(parsing: " 0, 0.7"), GuidanceInterval(lower: 0, upper: 0.7))
        XCTAssertNil(GuidanceInterval(parsing: "0.7"))
        XCTAssertTrue(GuidanceInterval(lower: 0.3, upper: 0.3).isValid)
        XCTAssertFalse(GuidanceInterval(lower: 0.5, upper: 0.2).isValid)
        XCTAssertFalse(GuidanceInterval(lower: 0, upper: 1.5).isValid)
        let json = try JSONEncoder().encode(GuidanceInterval(lower: 0.25, upper: 0.5))
        XCTAssertEqual(String(decoding: json, as: UTF8.self), "[0.25,0.5]")
        XCTAssertEqual(
            try JSONDecoder().decode(GuidanceInterval.self, from: json), GuidanceInterval(lower: 0.25, upper: 0.5))
        XCTAssertThrowsError(try JSONDecoder().decode(GuidanceInterval.self, from: Data("[0.25]".utf8)))
    }
}

/// The DDPM baseline's samplers: values of the same protocol, calling their ε-model at the schedule's model times.
final class DDPMSamplerTests: XCTestCase {
    /// With the exact ε of a point mass x* (ε̂ = (x − √ᾱ·x*)/√(1 − ᾱ)), DDIM and ancestral sampling both end on x*.
    func testSamplersRecoverAPointMass() {
        let target = Tensor(shape: [4], scalars: [0.3, -0.7, 1.1, 0.0]).to(.float64)
        for schedule in [DDPMSchedule.linear(steps: 50, start: 1e-3, end: 0.2), .cosine(steps: 50)] {
            let exactNoise: ModelField = { x, t in
                let k = Int(((1 - t) * Double(schedule.stepCount)).rounded())  // t = modelTime(step: k) = 1 − k/K
                let a = schedule.alphasCumprod[k]
                return (x - target * a.squareRoot()) / (1 - a).squareRoot()
            }
            let start = Tensor.randn([4], generator: RandomGenerator(seed: 4)).to(.float64)
            for steps in [1, 7, 50] {
                let ddim = DDIMSampler(schedule: schedule, steps: steps).sample(start, model: exactNoise)
                expectClose(ddim, target, rtol: 1e-9, atol: 1e-9, "DDIM, \(steps) steps")
            }
            let ancestral = DDPMAncestralSampler(schedule: schedule, generator: RandomGenerator(seed: 5))
                .sample(start, model: exactNoise)
            expectClose(ancestral, target, rtol: 1e-9, atol: 1e-9, "ancestral")
        }
    }

    /// DDIM visits K−1 … 0 evenly (rounded), ancestral every step; both give the model 1 − k/K and report each step.
    func testStepsAndModelTimes() {
        let schedule = DDPMSchedule.linear(steps: 10, start: 0.01, end: 0.2)
        let ddim = DDIMSampler(schedule: schedule, steps: 4)
        XCTAssertEqual(ddim.steps, [9, 6, 3, 0])
        XCTAssertEqual(DDIMSampler(schedule: schedule, steps: 1).steps, [9])
        XCTAssertEqual(DDIMSampler(schedule: schedule, steps: 3).steps, [9, 5, 0])  // 4.5 rounds away from zero
        let ancestral = DDPMAncestralSampler(schedule: schedule, generator: RandomGenerator(seed: 1))
        for (sampler, ks) in [(ddim as any Sampler, [9, 6, 3, 0]), (ancestral, Array((0..<10).reversed()))] {
            var times: [Double] = [], reported: [Int] = []
            _ = sampler.sample(
                Tensor.zeros([1], dtype: .float64),
                model: { x, t in
                    times.append(t)
                    return x
                }, onStep: { reported.append($0) })
            XCTAssertEqual(times, ks.map { schedule.modelTime(step: $0) })
            XCTAssertEqual(reported, Array(0..<ks.count))
            XCTAssertEqual(sampler.stepCount, ks.count)
            XCTAssertEqual(sampler.prediction, .noise)
        }
    }

    /// Ancestral sampling is its steps in order, K−1 down to 0, with one fresh draw of the generator for every step
    /// but the last: replayed by hand on a three-step schedule with the same seed, it is equal bit for bit.
    func testAncestralSamplingIsItsStepsInOrder() {
        let schedule = DDPMSchedule.linear(steps: 3, start: 0.1, end: 0.3)
        let model: ModelField = { x, t in x * 0.5 + t }
        let start = Tensor(shape: [3], scalars: [0.4, -1.0, 0.9])
        let sampled = DDPMAncestralSampler(schedule: schedule, generator: RandomGenerator(seed: 9))
            .sample(start, model: model)
        let g = RandomGenerator(seed: 9)
        var x = start
        for k in [2, 1, 0] {
            let z = k > 0 ? Tensor.randn([3], generator: g, dtype: .float64) : Tensor.zeros([3], dtype: .float64)
            x = schedule.ancestralStep(x, predictedNoise: model(x, schedule.modelTime(step: k)), step: k, noise: z)
        }
        XCTAssertEqual(sampled.doubleScalars, x.doubleScalars)
        // The last step adds no noise: β̃_0 = 0.
        let mean = schedule.ancestralStep(start, predictedNoise: start, step: 0, noise: start * 100.0)
        expectClose(mean, (start - start * (0.1 / 0.1.squareRoot())) / 0.9.squareRoot(), rtol: 1e-14, atol: 1e-14)
    }
}
