import Datasets
import Foundation
import TensorCore
import TestSupport
import VideoIO
import XCTest

/// Dataset folders: every bad row reported with its line and file before work starts, or skipped and counted; the
/// framing policy's sizes and frame counts.
final class DatasetFolderTests: XCTestCase {
    var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("dataset-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: directory) }

    /// A (3, T, H, W) clip of a gradient moving right, in [-1, 1].
    static func clip(frames: Int, height: Int, width: Int) -> Tensor {
        var scalars = [Float](repeating: 0, count: 3 * frames * height * width)
        for c in 0..<3 {
            for t in 0..<frames {
                for y in 0..<height {
                    for x in 0..<width {
                        let v = Float((x + 3 * t + y * c) % 64) / 32 - 1
                        scalars[((c * frames + t) * height + y) * width + x] = v
                    }
                }
            }
        }
        return Tensor(shape: [3, frames, height, width], scalars: scalars)
    }

    func testBadRowsAreReportedWithLineAndFile() throws {
        try VideoIO.writeMP4(Self.clip(frames: 9, height: 48, width: 64), to: directory.appendingPathComponent("a.mp4"), framesPerSecond: 8)
        try Data("not an image".utf8).write(to: directory.appendingPathComponent("broken.png"))
        let lines = [
            #"{"file":"a.mp4","caption":"a gradient"}"#,
            #"{"file":"missing.mp4","caption":"gone"}"#,
            #"{"file":"broken.png","caption":"broken"}"#,
            #"{"file":"a.mp4","caption":"  "}"#,
            "",
            #"{"caption":"no file"}"#,
            #"{"file":"../a.mp4","caption":"outside"}"#,
            #"{"file":"a.mp4","caption":"heavy","weight":-2}"#,
            "[1, 2]",
        ]
        try Data(lines.joined(separator: "\n").utf8).write(to: directory.appendingPathComponent(DatasetFolder.manifestName))
        XCTAssertThrowsError(try DatasetFolder(directory: directory)) { error in
            guard case let DatasetError.badRows(problems, total) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(total, 8)
            XCTAssertEqual(problems.map(\.line), [2, 3, 4, 6, 7, 8, 9])
            XCTAssertEqual(problems[0].file, "missing.mp4")
            XCTAssertTrue(problems[0].reason.contains("missing file"))
            XCTAssertTrue(problems[1].reason.contains("undecodable"), problems[1].reason)
            XCTAssertTrue(problems[2].reason.contains("empty caption"))
            XCTAssertTrue(problems[3].reason.contains("\"file\""), problems[3].reason)
            XCTAssertTrue(problems[4].reason.contains("relative path"))
            XCTAssertTrue(problems[5].reason.contains("weight"))
            XCTAssertTrue("\(error)".contains("manifest.jsonl:2 (missing.mp4): missing file"), "\(error)")
            XCTAssertTrue("\(error)".contains("--skip-bad"))
        }
        let skipping = try DatasetFolder(directory: directory, options: .init(skipBad: true))
        XCTAssertEqual(skipping.rows.map(\.line), [1])
        XCTAssertEqual(skipping.skipped.count, 7)
        XCTAssertEqual(skipping.rows[0].info.width, 64)
        // Without required captions the blank one is usable.
        let blank = try DatasetFolder(directory: directory, options: .init(requireCaptions: false, skipBad: true))
        XCTAssertEqual(blank.rows.map(\.line), [1, 4])
    }

    func testFramingGeometryAndFrames() throws {
        let framing = MediaFraming(maxSide: 64, multiple: 16, framesPerSecond: 8, maxFrames: 17)
        // Landscape 1920×1080 → 64×36 → crop 64×32; portrait 100×300 → 21×64 → 16×64; small 40×40 kept → 32×32.
        XCTAssertEqual(framing.geometry(width: 1920, height: 1080).map { [$0.scaledWidth, $0.scaledHeight, $0.width, $0.height] }, [64, 36, 64, 32])
        XCTAssertEqual(framing.geometry(width: 100, height: 300).map { [$0.scaledWidth, $0.scaledHeight, $0.width, $0.height] }, [21, 64, 16, 64])
        XCTAssertEqual(framing.geometry(width: 40, height: 40).map { [$0.width, $0.height] }, [32, 32])
        XCTAssertNil(framing.geometry(width: 10, height: 400))
        XCTAssertEqual([1, 4, 5, 8, 9, 16, 17, 40].map(framing.frameCount(available:)), [1, 1, 5, 5, 9, 13, 17, 17])
        XCTAssertThrowsError(try MediaFraming(maxFrames: 16).validate()) { XCTAssertTrue("\($0)".contains("1 + 4k")) }

        // A 3-second 16 fps 96×48 video under the policy: 8 fps → 17 frames kept of 24, scaled to 64×32 (already a
        // multiple). The frames are every other source frame: compare with the source decoded at 8 fps and that size.
        let url = directory.appendingPathComponent("v.mp4")
        try VideoIO.writeMP4(Self.clip(frames: 48, height: 48, width: 96), to: url, framesPerSecond: 16)
        let clip = try framing.load(url)
        XCTAssertEqual(clip.shape, [3, 17, 32, 64])
        let reference = VideoIO.tensor(from: try VideoIO.decodeFrames(url, options: DecodeOptions(framesPerSecond: 8, width: 64, height: 32)))
        XCTAssertEqual(reference.shape[1], 24)
        expectClose(clip, reference.slice(axis: 1, 0, 17), rtol: 0, atol: 0)
        // Centre crop of a size that is not a multiple: 80×48 at cap 64 → 64×38 → crop rows 3..<35.
        let odd = directory.appendingPathComponent("odd.png")
        try VideoIO.writeMP4(Self.clip(frames: 1, height: 48, width: 80), to: directory.appendingPathComponent("one.mp4"), framesPerSecond: 8)
        let frame = try VideoIO.decodeFrames(directory.appendingPathComponent("one.mp4"))[0]
        try ImageCodec.encode(frame, as: .png).write(to: odd)
        let image = try framing.load(odd)
        XCTAssertEqual(image.shape, [3, 1, 32, 64])
        let scaled = VideoIO.tensor(from: try VideoIO.decodeFrames(odd, options: DecodeOptions(width: 64, height: 38)))
        expectClose(image, scaled.slice(axis: 2, 3, 35), rtol: 0, atol: 0)
    }
}
