import Foundation
import TensorCore
import TestSupport
import VideoVAE
import XCTest

/// The posterior against closed forms.
final class DiagonalGaussianTests: XCTestCase {
    /// Parameters (1, 2·2, 1, 1, 2): mean channels [[0, 1], [2, −1]], log-variance channels [[0, 0], [log 4, −40]].
    let parameters = Tensor(
        shape: [1, 4, 1, 1, 2], scalars: [0, 1, 2, -1, 0, 0, Float(Foundation.log(4.0)), -40] as [Float])

    func testSplitClampAndMode() {
        let q = DiagonalGaussian(parameters: parameters)
        XCTAssertEqual(q.mode.scalars, [0, 1, 2, -1])
        // −40 is clamped to −30, as diffusers.
        expectClose(
            q.logVariance,
            Tensor(shape: [1, 2, 1, 1, 2], scalars: [0, 0, Float(Foundation.log(4.0)), -30] as [Float]),
            rtol: 1e-6, atol: 1e-6, "log-variance")
        expectClose(q.standardDeviation.doubleScalars, [1, 1, 2, Foundation.exp(-15)], rtol: 1e-5, atol: 1e-12, "σ")
    }

    /// KL = ½ Σ (μ² + σ² − 1 − log σ²) over every non-batch axis.
    func testKL() {
        let q = DiagonalGaussian(parameters: parameters)
        let terms: [Double] = [0, 1, 4 + 4 - 1 - Foundation.log(4.0), 1 + Foundation.exp(-30) - 1 + 30]
        expectClose(q.kl().doubleScalars, [0.5 * terms.reduce(0, +)], rtol: 1e-5, atol: 1e-5, "kl")
    }

    /// A sample is mean + σ·ε with ε the generator's normal draws.
    func testSampleReparameterised() {
        let q = DiagonalGaussian(parameters: parameters)
        let eps = Tensor.randn([1, 2, 1, 1, 2], generator: RandomGenerator(seed: 5))
        let expected = q.mean + q.standardDeviation * eps
        XCTAssertEqual(q.sample(generator: RandomGenerator(seed: 5)).scalars, expected.scalars)
    }
}
