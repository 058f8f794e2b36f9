import Foundation
import ShapesDataset
import TensorCore
import XCTest

/// The analytic detector recovers the ground truth of rendered samples and fails on noise.
final class ShapesDetectorTests: XCTestCase {
    func score(width: Int, height: Int, frames: Int, count: Int, seed: UInt64) throws -> ShapesScore {
        let g = try ShapesGenerator(
            seed: seed, width: width, height: height, frames: frames, imageFraction: 0.25, split: .all)
        var score = ShapesScore()
        for i in 0..<count {
            let s = g.sample(at: i)
            let judgement = ShapesJudgement(video: s.video, attributes: s.attributes)
            if !judgement.allCorrect {
                print(
                    "\(width)x\(height) #\(i) \"\(s.caption)\": \(judgement) found",
                    ShapesDetector.detect(s.video, frame: s.video.shape[1] / 2))
            }
            score.add(judgement)
        }
        return score
    }

    func testRecoversGroundTruthAtSeveralSizes() throws {
        for (width, height, frames) in [(64, 64, 9), (96, 64, 5), (128, 128, 3), (48, 48, 5)] {
            let score = try score(
                width: width, height: height, frames: frames, count: 150, seed: UInt64(width + height))
            print("\(width)x\(height)x\(frames): \(score.summary)")
            for category in ShapesScore.categories + ShapesScore.shapeBySize {
                XCTAssertGreaterThanOrEqual(score.accuracy(category) ?? 0, 0.98, "\(category) at \(width)x\(height)")
            }
            XCTAssertEqual(score.meanFlicker, 0, accuracy: 1e-9)
        }
    }

    func testEveryColourShapeAndSizeSingly() {
        for o in ShapesPromptSet.allObjects {
            let scene = SceneAttributes(objects: [o])
            let s = ShapesGenerator.render(scene, width: 64, height: 64, frames: 1, seed: 9)
            XCTAssertTrue(ShapesJudgement(video: s.video, attributes: scene).allCorrect, scene.caption)
        }
    }

    func testFailsOnNoiseAndOnBlankVideos() throws {
        let g = try ShapesGenerator(seed: 4, width: 64, height: 64, frames: 5, imageFraction: 0.2, split: .all)
        var noise = ShapesScore(), blank = ShapesScore()
        let rng = RandomGenerator(seed: 8)
        for i in 0..<40 {
            let s = g.sample(at: i)
            noise.add(
                ShapesJudgement(
                    video: Tensor.rand(s.video.shape, low: -1, high: 1, generator: rng), attributes: s.attributes))
            blank.add(ShapesJudgement(video: Tensor.full(s.video.shape, -1), attributes: s.attributes))
        }
        print("noise: \(noise.summary)")
        print("blank: \(blank.summary)")
        XCTAssertLessThan(noise.overall, 0.35)
        XCTAssertLessThan(noise.promptAccuracy, 0.05)
        XCTAssertLessThan(blank.promptAccuracy, 0.05)
        XCTAssertEqual(blank.accuracy("color"), 0)
    }

    /// Flicker is 0 for rendered clips (moving edges excluded) and the mean change of added background grain.
    func testFlicker() {
        let scene = SceneAttributes(
            objects: Array(repeating: ObjectAttributes(shape: .triangle, color: .green, size: .large), count: 3),
            motion: .right)
        let s = ShapesGenerator.render(scene, width: 64, height: 48, frames: 9, seed: 1)
        XCTAssertEqual(ShapesScore.flicker(s.video), 0)
        // Uniform grain in [0, 0.15] (0…1 scale), new every frame: E|a − b| = 0.15 / 3.
        let grain = Tensor.rand(s.video.shape, low: 0, high: 0.3, generator: RandomGenerator(seed: 2))
        XCTAssertEqual(ShapesScore.flicker(s.video + grain), 0.05, accuracy: 0.004)
        let image = ShapesGenerator.render(
            SceneAttributes(objects: [scene.objects[0]]), width: 32, height: 32, frames: 1)
        XCTAssertEqual(ShapesScore.flicker(image.video), 0)
    }

    func testWrongPromptIsCaught() {
        let truth = SceneAttributes(
            objects: [
                ObjectAttributes(shape: .square, color: .blue, size: .large),
                ObjectAttributes(shape: .circle, color: .yellow, size: .small),
            ],
            relation: .leftOf, motion: .up)
        let s = ShapesGenerator.render(truth, width: 64, height: 64, frames: 9, seed: 3)
        XCTAssertTrue(ShapesJudgement(video: s.video, attributes: truth).allCorrect)
        var claim = truth
        claim.relation = .rightOf
        XCTAssertEqual(ShapesJudgement(video: s.video, attributes: claim).position, false)
        claim = truth
        claim.motion = .down
        XCTAssertEqual(ShapesJudgement(video: s.video, attributes: claim).motion, false)
        claim = truth
        claim.objects[0].color = .purple
        XCTAssertFalse(ShapesJudgement(video: s.video, attributes: claim).color)
        claim = truth
        claim.objects[1].shape = .triangle
        let wrongSmall = ShapesJudgement(video: s.video, attributes: claim)
        XCTAssertFalse(wrongSmall.shape)
        XCTAssertEqual(
            wrongSmall.objectShapes,
            [
                ObjectShapeVerdict(size: .large, shape: .square, drawn: .square),
                ObjectShapeVerdict(size: .small, shape: .triangle, drawn: .circle),
            ])
        XCTAssertEqual(wrongSmall.objectShapes.map(\.right), [true, false])
        var score = ShapesScore()
        score.add(wrongSmall)
        XCTAssertEqual(score.accuracy("shape.large"), 1)
        XCTAssertEqual(score.accuracy("shape.small"), 0)
        XCTAssertEqual(score.accuracy("shape.small.triangle"), 0)
        XCTAssertEqual(score.accuracy("shape.large.square"), 1)
        XCTAssertNil(score.accuracy("shape.small.circle"))
        XCTAssertTrue(
            score.summary.hasSuffix("objects' shape: small 0.000 of 1 (triangle 0.000), large 1.000 of 1 (square 1.000)"),
            score.summary)
        claim = SceneAttributes(objects: [truth.objects[0]], motion: .up)
        XCTAssertFalse(ShapesJudgement(video: s.video, attributes: claim).count)
    }
}

/// The detector on degraded renders: what generated clips look like (soft edges, grain).
final class ShapesDetectorRobustnessTests: XCTestCase {
    /// A 3×3 box blur of every frame plus Gaussian grain of standard deviation `grain` (on the [-1, 1] scale).
    func degrade(_ video: Tensor, grain: Float, generator: RandomGenerator) -> Tensor {
        let (t, h, w) = (video.shape[1], video.shape[2], video.shape[3])
        let v = video.scalars
        var out = v
        for c in 0..<3 {
            for f in 0..<t {
                let base = (c * t + f) * h * w
                for y in 0..<h {
                    for x in 0..<w {
                        var s: Float = 0, n: Float = 0
                        for yy in max(0, y - 1)...min(h - 1, y + 1) {
                            for xx in max(0, x - 1)...min(w - 1, x + 1) { s += v[base + yy * w + xx]; n += 1 }
                        }
                        out[base + y * w + x] = s / n
                    }
                }
            }
        }
        let noise = Tensor.randn(video.shape, std: grain, generator: generator)
        return (Tensor(shape: video.shape, scalars: out) + noise).clamp(min: -1, max: 1)
    }

    func testBlurAndGrain() throws {
        let g = try ShapesGenerator(seed: 21, width: 64, height: 64, frames: 9, imageFraction: 0.25, split: .all)
        let rng = RandomGenerator(seed: 1)
        var score = ShapesScore()
        for i in 0..<120 {
            let s = g.sample(at: i)
            let degraded = degrade(s.video, grain: 0.1, generator: rng)
            let judgement = ShapesJudgement(video: degraded, attributes: s.attributes)
            if !judgement.shape {
                let found = ShapesDetector.detect(degraded, frame: degraded.shape[1] / 2).map {
                    "\($0.size) \($0.shape)"
                }
                print("degraded \"\(s.caption)\": found \(found)")
            }
            score.add(judgement)
        }
        print("blur + grain 0.1, 64x64x9: \(score.summary)")
        for category in ShapesScore.categories {
            XCTAssertGreaterThanOrEqual(score.accuracy(category) ?? 0, 0.97, category)
        }
        XCTAssertGreaterThan(score.meanFlicker, 0.02)
    }
}
