import Foundation
import ShapesDataset
import XCTest

/// Captions: the grammar, its inverse, JSON records and the held-out split.
final class SceneAttributesTests: XCTestCase {
    func testCaptionExamples() {
        let red = ObjectAttributes(shape: .circle, color: .red, size: .large)
        XCTAssertEqual(SceneAttributes(objects: [red], motion: .right).caption, "a large red circle moving right")
        let blue = ObjectAttributes(shape: .square, color: .blue, size: .small)
        XCTAssertEqual(SceneAttributes(objects: [blue, blue]).caption, "two small blue squares")
        let yellow = ObjectAttributes(shape: .triangle, color: .yellow, size: .small)
        let green = ObjectAttributes(shape: .circle, color: .green, size: .large)
        XCTAssertEqual(
            SceneAttributes(objects: [yellow, green], relation: .leftOf).caption,
            "a small yellow triangle to the left of a large green circle")
        XCTAssertEqual(
            SceneAttributes(objects: [yellow, green], relation: .below, motion: .up).caption,
            "a small yellow triangle below a large green circle, both moving up")
    }

    /// Every record of the grammar has its own caption, and the caption reads back to the record.
    func testEveryCaptionParsesBackToItsRecord() throws {
        let all = ShapesPromptSet.all(video: true)
        XCTAssertEqual(all.count, 5 * (48 + 96 + 48 * 42 * 4))
        XCTAssertEqual(Set(all.map(\.caption)).count, all.count, "captions are not unique")
        for scene in all {
            XCTAssertEqual(try SceneAttributes(caption: scene.caption), scene, scene.caption)
        }
        for bad in [
            "", "a red circle", "two large red circle", "a large red circle moving sideways",
            "a large red circle to the left of a large red square", "four small blue squares",
            "a large red circle near a small blue square", "a large red circle moving right now",
        ] {
            XCTAssertThrowsError(try SceneAttributes(caption: bad), bad)
        }
    }

    func testJSONRecord() throws {
        let scene = SceneAttributes(
            objects: [
                ObjectAttributes(shape: .circle, color: .red, size: .large),
                ObjectAttributes(shape: .square, color: .cyan, size: .small),
            ],
            relation: .above, motion: .down)
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let json = String(decoding: try encoder.encode(scene), as: UTF8.self)
        XCTAssertEqual(
            json,
            #"{"motion":"down","objects":[{"color":"red","shape":"circle","size":"large"},"#
                + #"{"color":"cyan","shape":"square","size":"small"}],"relation":"above"}"#)
        XCTAssertEqual(try JSONDecoder().decode(SceneAttributes.self, from: Data(json.utf8)), scene)
        let invalid = SceneAttributes(objects: [scene.objects[0], scene.objects[0]], relation: .leftOf)
        XCTAssertThrowsError(try invalid.validate())
    }

    func testHeldOutSplit() {
        let all = ShapesPromptSet.all(video: true)
        let heldOut = all.filter(ShapesPromptSet.isHeldOut)
        let share = Double(heldOut.count) / Double(all.count)
        XCTAssertEqual(share, 0.1, accuracy: 0.02)
        // Both captions of one pair scene fall on the same side.
        for scene in all where scene.relation == .leftOf {
            let swapped = SceneAttributes(objects: scene.objects.reversed(), relation: .rightOf, motion: scene.motion)
            XCTAssertEqual(ShapesPromptSet.isHeldOut(scene), ShapesPromptSet.isHeldOut(swapped))
        }
        let evaluation = ShapesPromptSet.sample(count: 200, seed: 1, videoFraction: 0.7)
        XCTAssertEqual(evaluation.count, 200)
        XCTAssertEqual(evaluation.filter(\.isVideo).count, 140)
        XCTAssertTrue(evaluation.allSatisfy { ShapesPromptSet.isHeldOut($0.attributes) })
        XCTAssertTrue(evaluation.filter { !$0.isVideo }.allSatisfy { $0.attributes.motion == .static })
        XCTAssertEqual(Set(evaluation.map(\.attributes.caption)).count, 200)
        XCTAssertEqual(
            evaluation.map(\.attributes),
            ShapesPromptSet.sample(count: 200, seed: 1, videoFraction: 0.7).map(\.attributes))
        // The training generator never draws a held-out caption.
        let generator = try! ShapesGenerator(seed: 3, width: 32, height: 32, frames: 5, imageFraction: 0.3)
        for i in 0..<300 { XCTAssertFalse(ShapesPromptSet.isHeldOut(generator.scene(at: i).attributes)) }
    }
}
