import NN
import Optim
import TensorCore
import TestSupport
import XCTest

final class OptimizerTests: XCTestCase {
    /// One AdamW step on a scalar, computed by hand from the update rule.
    func testAdamWFirstStepByHand() {
        let p = Tensor(shape: [1], scalars: [1.0] as [Float]).asParameter()
        let opt = AdamW([("p", p)], options: .init(learningRate: 0.1, weightDecay: 0.5))
        p.grad = Tensor(shape: [1], scalars: [2.0] as [Float])
        opt.update()
        // decay: 1·(1 − 0.1·0.5) = 0.95; m̂ = 2, v̂ = 4 → step 0.1·2/(2 + 1e-8).
        XCTAssertEqual(p.item(), 0.95 - 0.1, accuracy: 1e-6)
        XCTAssertEqual(opt.step, 1)
    }

    func testStateRoundTripContinuesIdentically() throws {
        func run(resumeAt: Int?) -> [Float] {
            let p = Tensor(shape: [3], scalars: [1, -2, 3] as [Float]).asParameter()
            var opt = AdamW([("p", p)], options: .init(learningRate: 0.05))
            for step in 0..<6 {
                if step == resumeAt {
                    let state = opt.stateDictionary().mapValues { $0.copy() }
                    opt = AdamW([("p", p)], options: .init(learningRate: 0.05))
                    try! opt.loadStateDictionary(state)
                }
                p.grad = p * 2.0 - 1.0
                opt.update()
            }
            return p.scalars
        }
        XCTAssertEqual(run(resumeAt: nil), run(resumeAt: 3))
    }

    func testClipGlobalNorm() {
        let a = Tensor.zeros([2]).asParameter(), b = Tensor.zeros([1]).asParameter()
        a.grad = Tensor(shape: [2], scalars: [3, 0] as [Float])
        b.grad = Tensor(shape: [1], scalars: [4] as [Float])
        let norm = GradientClipping.clipGlobalNorm([a, b], maxNorm: 1)
        XCTAssertEqual(norm, 5, accuracy: 1e-9)
        XCTAssertEqual(a.grad!.scalars[0], 0.6, accuracy: 1e-5)
        XCTAssertEqual(b.grad!.scalars[0], 0.8, accuracy: 1e-5)
        // Below the limit nothing changes.
        XCTAssertEqual(GradientClipping.clipGlobalNorm([a, b], maxNorm: 10), 1, accuracy: 1e-5)
        XCTAssertEqual(b.grad!.scalars[0], 0.8, accuracy: 1e-5)
    }

    func testSchedules() {
        let cosine = LearningRateSchedule(peak: 1, warmupSteps: 10, decay: .cosine, totalSteps: 110, minimum: 0.1)
        XCTAssertEqual(cosine(0), 0.1, accuracy: 1e-12)
        XCTAssertEqual(cosine(9), 1, accuracy: 1e-12)
        XCTAssertEqual(cosine(10), 1, accuracy: 1e-12)
        XCTAssertEqual(cosine(60), 0.55, accuracy: 1e-12)
        XCTAssertEqual(cosine(110), 0.1, accuracy: 1e-12)
        XCTAssertEqual(cosine(500), 0.1, accuracy: 1e-12)
        let constant = LearningRateSchedule(peak: 2e-4, warmupSteps: 4)
        XCTAssertEqual(constant(1), 1e-4, accuracy: 1e-12)
        XCTAssertEqual(constant(1000), 2e-4, accuracy: 1e-12)
    }

    func testEMA() throws {
        let w = Tensor(shape: [2], scalars: [0, 10] as [Float]).asParameter()
        let ema = ExponentialMovingAverage([("w", w)], decay: 0.9)
        w.assign(Tensor(shape: [2], scalars: [10, 0] as [Float]))
        ema.update()
        expectClose(ema.shadow["w"]!, Tensor(shape: [2], scalars: [1, 9] as [Float]), "shadow")
        let target = Tensor.zeros([2])
        ema.copy(to: [("w", target)])
        expectClose(target, Tensor(shape: [2], scalars: [1, 9] as [Float]), "copied")
        XCTAssertThrowsError(try ema.load(["w": Tensor.zeros([3])]))
    }

    /// With warm-up the first updates use (1 + n) / (10 + n) until it reaches `decay`: 0.1 at update 0, so the
    /// average moves 90% of the way to the new weights, then the plain decay from update 89 on (0.9 = 90/100).
    func testEMAWarmUp() throws {
        let w = Tensor(shape: [1], scalars: [0] as [Float]).asParameter()
        let ema = ExponentialMovingAverage([("w", w)], decay: 0.9)
        XCTAssertEqual(ema.warmedUpDecay(step: 0), 0.1, accuracy: 1e-12)
        XCTAssertEqual(ema.warmedUpDecay(step: 10), 11.0 / 20.0, accuracy: 1e-12)
        XCTAssertEqual(ema.warmedUpDecay(step: 89), 0.9, accuracy: 1e-12)
        XCTAssertEqual(ema.warmedUpDecay(step: 5000), 0.9, accuracy: 1e-12)
        w.assign(Tensor(shape: [1], scalars: [10] as [Float]))
        ema.update(step: 0)
        XCTAssertEqual(ema.shadow["w"]!.scalars[0], 9, accuracy: 1e-5)
        w.assign(Tensor(shape: [1], scalars: [20] as [Float]))
        ema.update(step: 1)  // decay 2/11
        XCTAssertEqual(ema.shadow["w"]!.scalars[0], Float(2.0 / 11.0 * 9 + 9.0 / 11.0 * 20), accuracy: 1e-4)
    }
}
