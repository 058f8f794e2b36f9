import Foundation
import TensorCore
import TestSupport
import VideoVAE
import XCTest

/// The fixture folder of this target.
func fixtureURL(_ name: String, file: StaticString = #filePath) -> URL {
    URL(fileURLWithPath: "\(file)").deletingLastPathComponent().appendingPathComponent("Fixtures")
        .appendingPathComponent(name)
}

/// The tiny diffusers VAE of the fixtures (loaded once).
let tinyVAE: VideoAutoencoder = {
    do { return try VideoAutoencoder.load(from: fixtureURL("tiny")) } catch { fatalError("tiny VAE fixture: \(error)") }
}()

/// Parity with a reference: |a − e| ≤ rtol·(|e| + max|e|), i.e. 1e-4 relative to each element and to the tensor's
/// scale (elements near zero are judged against the scale, not against themselves).
func expectParity(
    _ actual: Tensor, _ expected: Tensor, rtol: Double = 1e-4, _ message: String,
    file: StaticString = #filePath, line: UInt = #line
) {
    let scale = expected.doubleScalars.map(Swift.abs).max() ?? 0
    expectClose(actual, expected, rtol: rtol, atol: rtol * scale, message, file: file, line: line)
}

/// max|a − b| / max|b|.
func relativeMaxError(_ a: Tensor, _ b: Tensor) -> Double {
    let scale = b.doubleScalars.map(Swift.abs).max() ?? 1
    return zip(a.doubleScalars, b.doubleScalars).map { Swift.abs($0 - $1) }.max()! / scale
}

/// ‖a − b‖ / ‖b‖ (root-mean-square error relative to the reference's root mean square).
func relativeRMSError(_ a: Tensor, _ b: Tensor) -> Double {
    let d = zip(a.doubleScalars, b.doubleScalars).map { ($0 - $1) * ($0 - $1) }.reduce(0, +)
    let n = b.doubleScalars.map { $0 * $0 }.reduce(0, +)
    return (d / max(n, 1e-30)).squareRoot()
}
