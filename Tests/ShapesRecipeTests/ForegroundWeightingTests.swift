import Foundation
import ShapesRecipe
import TensorCore
import XCTest

final class ForegroundWeightingTests: XCTestCase {
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
}
