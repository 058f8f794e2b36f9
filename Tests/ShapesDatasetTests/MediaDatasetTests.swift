import Foundation
import Media
import ShapesDataset
import TensorCore
import TestSupport
import XCTest

/// Manifest folders: written, read back, and rejected when malformed.
final class MediaDatasetTests: XCTestCase {
    var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("shapes-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: directory) }

    func testWriteAndReadBack() throws {
        let g = try ShapesGenerator(seed: 2, width: 32, height: 24, frames: 5, imageFraction: 0.5)
        var entries: [ManifestEntry] = []
        var videos: [Tensor] = []
        for i in 0..<6 {
            let s = g.sample(at: i)
            let file = "\(i)" + (s.isImage ? ".png" : ".gif")
            try VideoFile.write(s.video, to: directory.appendingPathComponent(file), framesPerSecond: 8)
            entries.append(
                ManifestEntry(
                    file: file, caption: s.caption, attributes: s.attributes, frames: s.video.shape[1], width: 32,
                    height: 24))
            videos.append(s.video)
        }
        try MediaDataset.writeManifest(entries, to: directory)
        let dataset = try MediaDataset(directory: directory)
        XCTAssertEqual(dataset.entries, entries)
        for i in 0..<6 {
            // Files hold 8-bit pixels: within half a level of the rendered values.
            expectClose(try dataset.load(i), videos[i], rtol: 0, atol: 0.5 / 127.5 + 1e-6, "sample \(i)")
        }
    }

    func testBadManifestsNameTheLine() throws {
        let url = directory.appendingPathComponent(MediaDataset.manifestName)
        let good = #"{"caption":"a small red circle","file":"0.png","frames":1,"height":8,"width":8}"#
        for (bad, fragment) in [
            (#"{"caption":"x","file":"0.png"}"#, "not a manifest entry"),
            (#"{"caption":"x","file":"../0.png","frames":1,"height":8,"width":8}"#, "relative path"),
            (#"{"caption":"x","file":"0.png","frames":0,"height":8,"width":8}"#, "positive"),
            ("not json", "not a manifest entry"),
        ] {
            try Data((good + "\n" + bad + "\n").utf8).write(to: url)
            XCTAssertThrowsError(try MediaDataset(directory: directory)) { error in
                XCTAssertTrue("\(error)".contains("manifest.jsonl:2") && "\(error)".contains(fragment), "\(error)")
            }
        }
        try Data((good + "\n").utf8).write(to: url)
        let dataset = try MediaDataset(directory: directory)
        XCTAssertNil(dataset.entries[0].attributes)
        XCTAssertThrowsError(try dataset.load(0)) { XCTAssertTrue("\($0)".contains("0.png"), "\($0)") }
        try ImageFile.write(Tensor.zeros([3, 4, 8]), to: directory.appendingPathComponent("0.png"))
        XCTAssertThrowsError(try dataset.load(0)) { XCTAssertTrue("\($0)".contains("decodes to"), "\($0)") }
    }
}

/// Prompt files: written, read back, and rejected when inconsistent.
final class ShapesPromptFileTests: XCTestCase {
    func testRoundTripAndErrors() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("prompts-\(UUID().uuidString).jsonl")
        defer { try? FileManager.default.removeItem(at: url) }
        let prompts = ShapesPromptSet.sample(count: 30, seed: 2, videoFraction: 0.5).map {
            ShapesPrompt(attributes: $0.attributes, video: $0.isVideo)
        }
        try ShapesPromptFile.write(prompts, to: url)
        XCTAssertEqual(try ShapesPromptFile.read(url), prompts)
        // Caption only: parsed with the grammar; video defaults to true.
        try Data(#"{"caption":"two small blue squares moving up"}"#.utf8).write(to: url)
        let parsed = try ShapesPromptFile.read(url)
        XCTAssertEqual(parsed.first?.attributes.count, 2)
        XCTAssertEqual(parsed.first?.video, true)
        for bad in [
            #"{"caption":"two small blue squares moving sideways"}"#,
            #"{"caption":"a small red circle","attributes":{"objects":[{"shape":"square","color":"red","size":"small"}],"motion":"static"}}"#,
            #"{"caption":"a small red circle moving up","video":false}"#,
        ] {
            try Data(("\n" + bad + "\n").utf8).write(to: url)
            XCTAssertThrowsError(try ShapesPromptFile.read(url)) { XCTAssertTrue("\($0)".contains(":2:"), "\($0)") }
        }
    }
}
