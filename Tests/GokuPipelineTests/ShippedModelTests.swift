import Foundation
import GokuPipeline
import ShapesDataset
import ShapesRecipe
import TensorCore
import XCTest

/// The model committed at `models/goku-shapes`: found from the checkout, within the size budget, and generating
/// deterministically.
final class ShippedModelTests: XCTestCase {
    /// The repository root (this file is Tests/GokuPipelineTests/ShippedModelTests.swift).
    private var repository: URL {
        URL(fileURLWithPath: "\(#filePath)").deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
    }

    func testShippedModelIsFoundAndFitsTheBudget() throws {
        let model = repository.appendingPathComponent(DefaultModel.relativePath)
        let previous = FileManager.default.currentDirectoryPath
        XCTAssertTrue(FileManager.default.changeCurrentDirectoryPath(repository.appendingPathComponent("Sources").path))
        defer { _ = FileManager.default.changeCurrentDirectoryPath(previous) }
        let found = try XCTUnwrap(DefaultModel.locate(environment: [:]), "models/goku-shapes not found from Sources/")
        XCTAssertEqual(found.standardizedFileURL.path, model.standardizedFileURL.path)

        var bytes = 0
        let files = try XCTUnwrap(FileManager.default.enumerator(at: model, includingPropertiesForKeys: [.fileSizeKey]))
        for case let file as URL in files {
            bytes += try file.resourceValues(forKeys: [.fileSizeKey]).fileSize ?? 0
        }
        XCTAssertLessThanOrEqual(bytes, 50 * 1024 * 1024, "the shipped model is \(bytes) bytes")
    }

    /// A 64×64 image in four steps: the right shape, finite, in range, the same for the same seed and different for
    /// another seed.
    func testShippedModelGeneratesDeterministically() throws {
        let bundle = try GokuModelBundle.load(from: repository.appendingPathComponent(DefaultModel.relativePath))
        XCTAssertEqual(bundle.index.width, 64)
        XCTAssertEqual(bundle.index.frames, 17)
        var options = GenerationOptions(prompt: "a large red circle")
        options.frames = 1
        options.steps = 4
        options.seed = 3
        let first = try bundle.generate(options).video
        XCTAssertEqual(first.shape, [3, 1, 64, 64])
        XCTAssertTrue(first.scalars.allSatisfy { $0.isFinite && $0 >= -1 && $0 <= 1 })
        XCTAssertEqual(try bundle.generate(options).video.scalars, first.scalars, "same seed, same image")
        options.seed = 4
        XCTAssertNotEqual(try bundle.generate(options).video.scalars, first.scalars, "another seed, another image")
    }

    /// The shipped model follows prompts it never trained on: 16 held-out prompts (half videos) at 10 sampling steps,
    /// judged by the analytic detector (measured: colour 0.94, position 1.00, overall 0.90 with the shipped decoder). A guard below those figures, so
    /// that a model replaced by a worse one, or a change that breaks generation's conditioning, fails here.
    func testShippedModelFollowsHeldOutPrompts() throws {
        let bundle = try GokuModelBundle.load(from: repository.appendingPathComponent(DefaultModel.relativePath))
        let prompts = ShapesPromptSet.sample(count: 16, seed: 11, videoFraction: 0.5, split: .evaluation)
        var options = GenerationOptions(prompt: "a large red circle")
        options.steps = 10
        let score = try bundle.evaluateShapes(prompts: prompts, options: options)
        print("shipped model, 16 held-out prompts at 10 steps: \(score.summary)")
        XCTAssertGreaterThanOrEqual(score.accuracy("color") ?? 0, 0.75, score.summary)
        XCTAssertGreaterThanOrEqual(score.accuracy("position") ?? 0, 0.6, score.summary)
        XCTAssertGreaterThanOrEqual(score.overall, 0.7, score.summary)
    }

    /// The shipped text encoder knows word order: a pair caption's object words change state when the objects swap
    /// places or the relation flips (`goku eval text`: 1.062 and 1.065 for the shipped encoder, trained with the caption-role
    /// objective; 0.000 and 0.049 for the one trained by the flow loss alone, which left the transformer unable to tell
    /// left from right).
    func testShippedTextEncoderKnowsWordOrder() throws {
        let bundle = try GokuModelBundle.load(from: repository.appendingPathComponent(DefaultModel.relativePath))
        var rng = ShapesRandom(seed: 0)
        let scenes = (0..<200).map { _ in ShapesPromptSet.random(using: &rng, video: false, split: .evaluation) }
        let probe = TextOrderProbe.measure(text: bundle.text, scenes: scenes)
        XCTAssertGreaterThan(probe.pairs, 30)
        XCTAssertGreaterThan(probe.swappedObjects, 0.3, probe.summary)
        XCTAssertGreaterThan(probe.flippedRelation, 0.3, probe.summary)
    }

    /// The ceilings `goku eval shapes --reference` reports: the detector reads every attribute of the ground-truth
    /// renders, and the shipped VAE's reconstructions keep nearly all of them (measured on the 64-prompt default set:
    /// overall 0.963, shape 0.875; what they lose is small moving circles, drawn squarish), so a low score of a
    /// generation is mostly the transformer's and not the VAE's or the detector's.
    func testReferenceScoresBoundTheEvaluation() throws {
        let bundle = try GokuModelBundle.load(from: repository.appendingPathComponent(DefaultModel.relativePath))
        let prompts = ShapesPromptSet.sample(count: 8, seed: 5, videoFraction: 0.5, split: .evaluation)
        let options = GenerationOptions(prompt: "")
        let rendered = try bundle.evaluateShapesReference(prompts: prompts, options: options, reconstructed: false)
        XCTAssertEqual(rendered.overall, 1, rendered.summary)
        let reconstructed = try bundle.evaluateShapesReference(prompts: prompts, options: options, reconstructed: true)
        XCTAssertGreaterThanOrEqual(reconstructed.overall, 0.8, reconstructed.summary)
        XCTAssertLessThanOrEqual(reconstructed.overall, rendered.overall)
    }
}
