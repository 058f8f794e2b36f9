import Curation
import Foundation
import TestSupport
import VideoIO
import XCTest

/// The aesthetic stage through the `AestheticScorer` interface (a stand-in scorer with a known answer), and the
/// refusal to skip silently when weights are named but no predictor exists.
final class CurationAestheticTests: XCTestCase {
    /// Mean brightness on a 0–10 scale: deterministic, so the stored per-clip mean can be checked.
    struct BrightnessScorer: AestheticScorer {
        let name = "brightness-test"
        func score(_ frame: RGBFrame) throws -> Double {
            Double(frame.pixels.reduce(0) { $0 + Int($1) }) / Double(frame.pixels.count) / 25.5
        }
    }

    func testScoresAreKeyframeMeansAndThresholdApplies() throws {
        let output = try TestMedia.folder("curation-aesthetic")
        let index = try CurationIndex(url: output.appendingPathComponent("index.sqlite"))
        let config = CurationMedia.config
        let pipeline = try CurationPipeline(config: config, index: index)
        pipeline.aesthetic = BrightnessScorer()
        pipeline.log = { _ in }
        try pipeline.run(input: try CurationMedia.sources(), jobs: 2)

        let sources = Dictionary(uniqueKeysWithValues: try index.sources().map { ($0.id, $0.path) })
        let analyzer = try ClipAnalyzer(config: config, aesthetic: nil)
        let clips = try index.clips()
        XCTAssertEqual(clips.count, 7)
        for clip in clips {
            let stored = try XCTUnwrap(clip.stages["aesthetic"])
            XCTAssertEqual(stored.status, "done")
            let keyframes = try analyzer.keyframes(URL(fileURLWithPath: sources[clip.sourceId]!), span: clip.span)
            let expected = try keyframes.map { try BrightnessScorer().score($0) }.reduce(0, +) / Double(keyframes.count)
            XCTAssertEqual(stored.score!, expected, accuracy: 1e-9)
        }
        // Dedup now keeps the copy with the higher aesthetic score.
        let repeatID = try index.sources().first { $0.path.hasSuffix("repeat.mp4") }!.id
        let copies = try index.clips(source: repeatID).filter { $0.number != 1 }
        let dropped = copies.first { $0.stage == "dedup" }!, kept = copies.first { $0.status == "accepted" }!
        XCTAssertLessThanOrEqual(dropped.stages["aesthetic"]!.score!, kept.stages["aesthetic"]!.score!)

        var strict = config
        strict.minimumAesthetic = 10.5
        try pipeline.reapply(config: strict)
        let stages = try index.clips().filter { $0.status == "rejected" }.map { $0.stage ?? "" }
        // The four accepted clips and the duplicate (thresholds apply before deduplication); OCR and motion keep theirs.
        XCTAssertEqual(
            stages.sorted(), ["aesthetic", "aesthetic", "aesthetic", "aesthetic", "aesthetic", "motion", "ocr"])
    }

    func testLAIONScorerMatchesTransformers() throws {
        let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")
        let scorer = try LAIONAestheticScorer(
            clipFolder: fixtures.appendingPathComponent("clip_tiny"),
            headWeights: fixtures.appendingPathComponent("aesthetic_mlp.safetensors"))
        let io = try Fixture.load("aesthetic_io", target: "CurationTests")
        expectClose(
            scorer.imageEmbeddings(io.tensor("pixel_values")), io.tensor("image_embeds"), rtol: 1e-4, atol: 1e-4)
        expectClose(scorer.scores(io.tensor("pixel_values")), io.tensor("score").doubleScalars, rtol: 1e-4, atol: 1e-4)

        // From the config, in the pipeline.
        var config = CurationMedia.config
        config.aestheticWeights = fixtures.appendingPathComponent("aesthetic_mlp.safetensors").path
        config.aestheticCLIP = fixtures.appendingPathComponent("clip_tiny").path
        let index = try CurationIndex(url: try TestMedia.folder("laion").appendingPathComponent("i.sqlite"))
        let pipeline = try CurationPipeline(config: config, index: index)
        XCTAssertTrue(pipeline.aesthetic is LAIONAestheticScorer)
        let frame = RGBFrame(width: 4, height: 4, time: 0, pixels: [UInt8](repeating: 128, count: 48))
        XCTAssertTrue(try scorer.score(frame).isFinite)
    }

    func testWeightsWithoutCLIPAreAConfigError() throws {
        var config = CurationMedia.config
        config.aestheticWeights = "/models/aesthetic.safetensors"
        XCTAssertThrowsError(try config.validate()) { XCTAssertTrue("\($0)".contains("aestheticCLIP")) }
        config.aestheticCLIP = "/nonexistent/clip"
        let index = try CurationIndex(url: try TestMedia.folder("laion-missing").appendingPathComponent("i.sqlite"))
        XCTAssertThrowsError(try CurationPipeline(config: config, index: index)) {
            XCTAssertTrue("\($0)".contains("/nonexistent/clip"), "\($0)")
        }
    }
}
