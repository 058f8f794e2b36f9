import Curation
import Foundation
import TensorCore
import TestSupport
import VideoIO
import XCTest

/// The DINOv2 encoder against transformers' Dinov2Model (tiny random weights under the hub's key names; fixtures by
/// scripts/reference/make_curation_fixtures.py), and as the shot detector's encoder.
final class DINOv2EncoderTests: XCTestCase {
    private var folder: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/dinov2_tiny")
    }

    func testForwardMatchesTransformers() throws {
        let encoder = try DINOv2Encoder(folder: folder)
        XCTAssertEqual(encoder.configuration.imageSize, 16)
        let io = try Fixture.load("dinov2_tiny_io", target: "CurationTests")
        let (hidden, pooled) = encoder.forward(io.tensor("pixel_values"))
        expectClose(hidden, io.tensor("last_hidden_state"), rtol: 1e-4, atol: 1e-4, "last_hidden_state")
        expectClose(pooled, io.tensor("pooler_output"), rtol: 1e-4, atol: 1e-4, "pooler_output")
    }

    func testMissingTensorIsNamed() throws {
        let broken = try TestMedia.folder("dinov2-broken")
        try FileManager.default.copyItem(
            at: folder.appendingPathComponent("config.json"), to: broken.appendingPathComponent("config.json"))
        XCTAssertThrowsError(try DINOv2Encoder(folder: broken)) { XCTAssertTrue("\($0)".contains("model.safetensors")) }
        var config = try String(contentsOf: folder.appendingPathComponent("config.json"), encoding: .utf8)
        config = config.replacingOccurrences(of: "\"use_swiglu_ffn\": false", with: "\"use_swiglu_ffn\": true")
        try config.write(to: broken.appendingPathComponent("config.json"), atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try DINOv2Encoder(folder: broken)) { XCTAssertTrue("\($0)".contains("use_swiglu_ffn")) }
    }

    func testEmbedsFramesForTheShotDetector() throws {
        let encoder = try DINOv2Encoder(folder: folder)
        let url = try CurationMedia.sources().appendingPathComponent("cuts.mp4")
        let frames = try VideoIO.decodeFrames(url, options: DecodeOptions(framesPerSecond: 1, width: 64))
        let e = frames.map { encoder.embed($0) }
        XCTAssertEqual(e[0].count, 32)
        XCTAssertEqual(cosineSimilarity(e[0], encoder.embed(frames[0])), 1, accuracy: 1e-6)
        // The detector takes it in place of the colour-and-edge descriptor.
        let result = try ShotDetector(config: CurationMedia.config, encoder: encoder).detect(
            url, info: try VideoIO.probe(url))
        XCTAssertEqual(result.contentCuts.count, 1)
        XCTAssertGreaterThanOrEqual(result.clips.count, 2)
        // …and the pipeline takes it from the config.
        var config = CurationMedia.config
        config.dinoWeights = folder.path
        let index = try CurationIndex(url: try TestMedia.folder("dinov2-run").appendingPathComponent("i.sqlite"))
        XCTAssertTrue(try CurationPipeline(config: config, index: index).encoder is DINOv2Encoder)
    }
}
