import Foundation
import GokuPipeline
import ShapesRecipe
import XCTest

/// The Shapes recipe's fields live in `ShapesRecipeOptions` but share one flat JSON object with the core config: the
/// shipped configs read unchanged, an unknown key is named against both types, and `run.json` round-trips both.
final class ShapesRecipeOptionsTests: XCTestCase {
    let configs = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("configs")

    func testShippedShapesConfigsRead() throws {
        let (config, recipe) = try ShapesTrainingRecipe.read(from: configs.appendingPathComponent("goku-shapes-64.json"))
        XCTAssertTrue(config.stages.isEmpty)
        XCTAssertEqual(config.steps, 12500)
        XCTAssertEqual(config.learningRate, 0.0005)
        XCTAssertEqual(recipe.options.datasetSize, 8192)
        XCTAssertEqual(recipe.options.samplesPerStep, 16)
        XCTAssertEqual(recipe.options.data.frames, 17)
        XCTAssertEqual(recipe.options.textRolePretrainSteps, 3000)
        XCTAssertTrue(recipe.options.textRoleReinitialize)
        for name in ["goku-shapes-64-foreground.json", "goku-shapes-64-unshifted.json"] {
            XCTAssertNoThrow(try ShapesTrainingRecipe.read(from: configs.appendingPathComponent(name)), name)
        }
        // The core reader alone names the first recipe field it does not know.
        XCTAssertThrowsError(try GokuTrainingConfig.read(from: configs.appendingPathComponent("goku-shapes-64.json"))) {
            XCTAssertTrue("\($0)".contains("data: unknown field"), "\($0)")
        }
    }

    func testUnknownKeysAndRunConfigRoundTrip() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("shapes-options-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let file = folder.appendingPathComponent("c.json")
        try Data(#"{"vaeFolder": "v", "samplesPerStep": 4, "sampelsPerStep": 4}"#.utf8).write(to: file)
        XCTAssertThrowsError(try ShapesTrainingRecipe.read(from: file)) {
            XCTAssertTrue("\($0)".contains("sampelsPerStep"), "\($0)")
        }
        try Data(#"{"vaeFolder": "v", "samplesPerStep": 0}"#.utf8).write(to: file)
        XCTAssertThrowsError(try ShapesTrainingRecipe.read(from: file)) {
            XCTAssertTrue("\($0)".contains("samplesPerStep"), "\($0)")
        }

        var config = GokuTrainingConfig()
        config.vaeFolder = "v"
        var options = ShapesRecipeOptions()
        options.samplesPerStep = 5
        options.foregroundLossWeight = 2
        let run = GokuRunConfig(config: config, options: options)
        try run.checkOrWrite(in: folder)
        let object = try JSONSerialization.jsonObject(with: Data(contentsOf: folder.appendingPathComponent("run.json"))) as! [String: Any]
        XCTAssertEqual(object["samplesPerStep"] as? Int, 5, "flat: the recipe's fields beside the core's")
        XCTAssertEqual(object["vaeFolder"] as? String, "v")
        let decoded = try JSONDecoder().decode(
            GokuRunConfig<ShapesRecipeOptions>.self, from: Data(contentsOf: folder.appendingPathComponent("run.json")))
        XCTAssertEqual(decoded, run)
        // Resuming: a recipe field that may change does; one that may not is refused.
        options.foregroundLossWeight = 3
        XCTAssertNoThrow(try GokuRunConfig(config: config, options: options).checkOrWrite(in: folder))
        options.samplesPerStep = 6
        XCTAssertThrowsError(try GokuRunConfig(config: config, options: options).checkOrWrite(in: folder)) {
            XCTAssertTrue("\($0)".contains("another config"), "\($0)")
        }
    }
}
