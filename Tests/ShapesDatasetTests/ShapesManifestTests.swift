import Datasets
import Foundation
import Media
import ShapesDataset
import TensorCore
import TestSupport
import XCTest

/// Shapes folders: written as dataset folders with the recipe's ground truth, read back by the generic reader.
final class ShapesManifestTests: XCTestCase {
    var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("shapes-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: directory) }

    func testWriteAndReadBack() throws {
        let g = try ShapesGenerator(seed: 2, width: 32, height: 24, frames: 5, imageFraction: 0.5)
        var entries: [ManifestEntry] = [], attributes: [SceneAttributes?] = []
        var videos: [Tensor] = []
        for i in 0..<6 {
            let s = g.sample(at: i)
            let file = "\(i)" + (s.isImage ? ".png" : ".gif")
            try VideoFile.write(s.video, to: directory.appendingPathComponent(file), framesPerSecond: 8)
            entries.append(ManifestEntry(file: file, caption: s.caption, width: 32, height: 24, frames: s.video.shape[1]))
            attributes.append(s.attributes)
            videos.append(s.video)
        }
        attributes[3] = nil
        try ShapesManifest.write(entries, attributes: attributes, to: directory)
        let folder = try DatasetFolder(directory: directory)
        XCTAssertEqual(folder.rows.map(\.entry), entries)
        let truth = try ShapesManifest.attributes(in: directory)
        XCTAssertEqual(truth.count, 5)
        for i in 0..<6 { XCTAssertEqual(truth[i + 1], attributes[i]) }
        for (i, row) in folder.rows.enumerated() {
            // The files hold 8-bit pixels; read through FFmpeg at their own size: within half a level (GIF frames
            // are exact palette colours).
            let clip = try MediaFraming(maxSide: 64, multiple: 8, framesPerSecond: nil, maxFrames: 5)
                .load(folder.url(of: row), info: row.info)
            XCTAssertEqual(clip.shape, [3, videos[i].shape[1], 24, 32])
            expectClose(clip, videos[i], rtol: 0, atol: 0.5 / 127.5 + 1e-6, "sample \(i)")
        }
    }

    func testBadAttributesNameTheLine() throws {
        let url = directory.appendingPathComponent(DatasetFolder.manifestName)
        let good = #"{"caption":"a small red circle","file":"0.png"}"#
        try Data((good + "\n" + #"{"caption":"x","file":"1.png","attributes":{"objects":[]}}"# + "\n").utf8).write(to: url)
        XCTAssertThrowsError(try ShapesManifest.attributes(in: directory)) { error in
            XCTAssertTrue("\(error)".contains("manifest.jsonl:2"), "\(error)")
        }
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
