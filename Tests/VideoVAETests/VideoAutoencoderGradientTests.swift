import Foundation
import TensorCore
import TestSupport
import VideoVAE
import XCTest

/// The training loss's gradients through the whole VAE against diffusers (float64 autograd) on the tiny fixture
/// folder: every parameter and the input, for a reparameterised posterior sample with a fixed ε.
final class VideoAutoencoderGradientTests: XCTestCase {
    func testLossGradientsMatchDiffusers() throws {
        let f = try Fixture.load("gradients", target: "VideoVAETests")
        let vae = try VideoAutoencoder.load(from: fixtureURL("tiny"))
        vae.setTraining(true)
        let x = f.tensor("video")
        x.requiresGrad = true
        let posterior = try vae.encode(x)
        let z = posterior.mean + posterior.standardDeviation * f.tensor("eps")
        let error = try vae.decode(z) - x
        let kl = posterior.kl().sum() / Double(posterior.mean.count)
        let loss = error.abs().mean() + error.square().mean() + kl * 0.01
        loss.backward()
        XCTAssertEqual(Double(loss.item()), f.tensor("loss").doubleScalars[0], accuracy: 1e-5, "loss")
        expectParity(try XCTUnwrap(x.grad), f.tensor("grad.video"), rtol: 1e-3, "input gradient")
        let parameters = vae.namedParameters()
        XCTAssertEqual(parameters.count, f.keys.filter { $0.hasPrefix("grad.") }.count - 1, "parameter count")
        for (name, parameter) in parameters {
            let grad = try XCTUnwrap(parameter.grad, "no gradient for \(name)")
            expectParity(grad, f.tensor("grad." + name), rtol: 1e-3, "gradient of \(name)")
        }
    }
}
