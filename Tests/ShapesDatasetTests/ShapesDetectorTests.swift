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
                print("\(width)x\(height) #\(i) \"\(s.caption)\": \(judgement) found",
                      ShapesDetector.detect(s.video, frame: s.video.shape[1] / 2))
            }
            score.add(judgement)
        }
        return score
    }

    func testRecoversGroundTruthAtSeveralSizes() throws {
        for (width, height, frames) in [(64, 64, 9), (96, 64, 5), (128, 128, 3), (48, 48, 5)] {
            let score = try score(width: width, height: height, frames: frames, count: 150, seed: UInt64(width + height))
            print("\(width)x\(height)x\(frames): \(score.summary)")
            for category in ShapesScore.categories {
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
            noise.add(ShapesJudgement(
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
        let image = ShapesGenerator.render(SceneAttributes(objects: [scene.objects[0]]), width: 32, height: 32, frames: 1)
        XCTAssertEqual(ShapesScore.flicker(image.video), 0)
    }

    func testWrongPromptIsCaught() {
        let truth = SceneAttributes(
            objects: [ObjectAttributes(shape: .square, color: .blue, size: .large),
                      ObjectAttributes(shape: .circle, color: .yellow, size: .small)],
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
        XCTAssertFalse(ShapesJudgement(video: s.video, attributes: claim).shape)
        claim = SceneAttributes(objects: [truth.objects[0]], motion: .up)
        XCTAssertFalse(ShapesJudgement(video: s.video, attributes: claim).count)
    }
}
