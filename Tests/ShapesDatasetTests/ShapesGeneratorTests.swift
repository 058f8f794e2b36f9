import Foundation
import ShapesDataset
import TensorCore
import TestSupport
import XCTest

/// The generator: determinism, layouts that always fit, and anti-aliased rendering against analytic areas.
final class ShapesGeneratorTests: XCTestCase {
    func testDeterministicPerIndexAndThreadCount() throws {
        let g = try ShapesGenerator(seed: 11, width: 40, height: 32, frames: 5, imageFraction: 0.3)
        let a = g.sample(at: 7), b = g.sample(at: 3)
        XCTAssertEqual(g.sample(at: 3).video.scalars, b.video.scalars)
        XCTAssertEqual(g.sample(at: 7).caption, a.caption)
        XCTAssertEqual(g.sample(at: 7).video.scalars, a.video.scalars)
        // Many samples rendered in parallel, with 1 and with several threads, agree with serial rendering.
        let serial = (0..<24).map { g.sample(at: $0).video.scalars }
        let saved = Parallel.threadCount
        defer { Parallel.threadCount = saved }
        for threads in [1, 3] {
            Parallel.threadCount = threads
            var parallel = [[Float]](repeating: [], count: 24)
            parallel.withUnsafeMutableBufferPointer { out in
                Parallel.forEach(24) { range in for i in range { out[i] = g.sample(at: i).video.scalars } }
            }
            XCTAssertEqual(parallel, serial)
        }
        let other = try ShapesGenerator(seed: 12, width: 40, height: 32, frames: 5, imageFraction: 0.3)
        XCTAssertNotEqual((0..<10).map { other.sample(at: $0).caption }, (0..<10).map { g.sample(at: $0).caption })
    }

    func testImageFractionAndShapes() throws {
        let g = try ShapesGenerator(seed: 1, width: 32, height: 24, frames: 9, imageFraction: 0.3)
        let images = (0..<400).filter { g.scene(at: $0).frames == 1 }.count
        XCTAssertEqual(Double(images) / 400, 0.3, accuracy: 0.07)
        let sample = g.sample(at: 0)
        XCTAssertEqual(sample.video.shape, [3, sample.isImage ? 1 : 9, 24, 32])
        for i in 0..<50 where g.scene(at: i).frames == 1 { XCTAssertEqual(g.scene(at: i).attributes.motion, .static) }
        let imagesOnly = try ShapesGenerator(seed: 1, width: 32, height: 32, frames: 1, imageFraction: 0)
        XCTAssertTrue((0..<20).allSatisfy { imagesOnly.scene(at: $0).frames == 1 })
        let videosOnly = try ShapesGenerator(seed: 1, width: 32, height: 32, frames: 3, imageFraction: 0)
        XCTAssertTrue((0..<20).allSatisfy { videosOnly.scene(at: $0).frames == 3 })
        XCTAssertThrowsError(try ShapesGenerator(seed: 0, width: 8, height: 32, frames: 1, imageFraction: 0))
        XCTAssertThrowsError(try ShapesGenerator(seed: 0, width: 32, height: 32, frames: 0, imageFraction: 0))
        XCTAssertThrowsError(try ShapesGenerator(seed: 0, width: 32, height: 32, frames: 3, imageFraction: 1.5))
    }

    /// Every scene of the grammar fits at several frame sizes: inside the margins over the whole path, objects apart
    /// by the gap, pairs on the named side.
    func testEveryLayoutFits() {
        let scenes = ShapesPromptSet.all(video: true)
        for (width, height) in [(64, 64), (96, 48), (16, 40)] {
            let u = Double(min(width, height))
            let margin = SceneLayout.margin * u - 1e-9, gap = SceneLayout.gap * u - 1e-9
            var rng = ShapesRandom(seed: 5)
            for scene in scenes {
                let layout = SceneLayout(attributes: scene, width: width, height: height, using: &rng)
                for t in [0, 8] {
                    let boxes = scene.objects.indices.map { i -> (Double, Double, Double, Double) in
                        let c = layout.center(i, frame: t, of: 9), e = layout.extents[i] / 2
                        return (c.x - e, c.y - e, c.x + e, c.y + e)
                    }
                    for b in boxes {
                        XCTAssertTrue(
                            b.0 >= margin && b.1 >= margin && b.2 <= Double(width) - margin
                                && b.3 <= Double(height) - margin, "\(scene.caption) at \(width)x\(height): \(b)")
                    }
                    for i in boxes.indices {
                        for j in boxes.indices where j > i {
                            let apart =
                                boxes[j].0 - boxes[i].2 >= gap || boxes[i].0 - boxes[j].2 >= gap
                                || boxes[j].1 - boxes[i].3 >= gap || boxes[i].1 - boxes[j].3 >= gap
                            XCTAssertTrue(apart, "\(scene.caption): objects \(i), \(j) overlap")
                        }
                    }
                }
                if let relation = scene.relation {
                    let dx = layout.centers[0][0] - layout.centers[1][0],
                        dy = layout.centers[0][1] - layout.centers[1][1]
                    switch relation {
                    case .leftOf: XCTAssertTrue(dx < 0 && abs(dy) <= 0.4 * abs(dx) + 1e-9)
                    case .rightOf: XCTAssertTrue(dx > 0 && abs(dy) <= 0.4 * abs(dx) + 1e-9)
                    case .above: XCTAssertTrue(dy < 0 && abs(dx) <= 0.4 * abs(dy) + 1e-9)
                    case .below: XCTAssertTrue(dy > 0 && abs(dx) <= 0.4 * abs(dy) + 1e-9)
                    }
                }
                let travel = (layout.displacement[0] / Double(width), layout.displacement[1] / Double(height))
                let d = scene.motion.direction
                XCTAssertEqual(travel.0, d.x * Motion.travel, accuracy: 1e-12)
                XCTAssertEqual(travel.1, d.y * Motion.travel, accuracy: 1e-12)
            }
        }
    }

    /// Coverage sums to the analytic area (disc π r², square e², triangle e²/2), edges take intermediate values,
    /// and the interior is the exact colour.
    func testAntialiasedCoverageMatchesAnalyticArea() throws {
        for shape in ShapeKind.allCases {
            for size in [64, 128] {
                let scene = SceneAttributes(objects: [ObjectAttributes(shape: shape, color: .white, size: .large)])
                let sample = ShapesGenerator.render(scene, width: size, height: size, frames: 1, seed: 2)
                let v = sample.video.scalars
                let plane = size * size
                let coverage = (0..<plane).map { Double(v[$0] + 1) / 2 }  // white: red channel = coverage
                let e = ShapeSize.large.extent * Double(size)
                let area = e * e * shape.fillRatio
                XCTAssertEqual(coverage.reduce(0, +), area, accuracy: area * 0.02, "\(shape) at \(size)")
                XCTAssertTrue(coverage.contains { $0 > 0.05 && $0 < 0.95 }, "no anti-aliased edge")
                let c = sample.layout.centers[0]
                let centre = Int(c[1] + (shape == .triangle ? e / 4 : 0)) * size + Int(c[0])
                XCTAssertEqual(v[centre], 1)
                XCTAssertEqual(v[0], -1)
            }
        }
        let orange = SceneAttributes(objects: [ObjectAttributes(shape: .square, color: .orange, size: .large)])
        let s = ShapesGenerator.render(orange, width: 32, height: 32, frames: 1)
        let c = s.layout.centers[0], p = Int(c[1]) * 32 + Int(c[0])
        let v = s.video.scalars
        expectClose([v[p], v[1024 + p], v[2048 + p]].map(Double.init), [1, 128 / 127.5 - 1, -1], rtol: 0, atol: 1e-6)
    }

    func testMotionMovesAtSteadySpeedAndStaticStaysStill() throws {
        let moving = SceneAttributes(
            objects: [ObjectAttributes(shape: .circle, color: .red, size: .small)], motion: .left)
        let s = ShapesGenerator.render(moving, width: 64, height: 48, frames: 9, seed: 1)
        let tracks = ShapesDetector.detectAll(s.video).map { $0[0].center[0] }
        let steps = zip(tracks.dropFirst(), tracks).map { $0 - $1 }
        for step in steps { XCTAssertEqual(step, -0.3 * 64 / 8, accuracy: 0.15) }
        let still = ShapesGenerator.render(
            SceneAttributes(objects: moving.objects), width: 64, height: 48, frames: 4, seed: 1
        ).video
        let frames = still.scalars
        let plane = 64 * 48
        for t in 1..<4 {
            XCTAssertEqual(Array(frames[t * plane..<(t + 1) * plane]), Array(frames[0..<plane]))
        }
    }
}
