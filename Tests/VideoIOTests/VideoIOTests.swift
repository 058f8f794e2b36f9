import Foundation
import TensorCore
import TestSupport
import VideoIO
import XCTest

/// Probe, decode, encode and cut against videos made by ffmpeg's lavfi sources.
final class VideoIOTests: XCTestCase {
    func testProbeReadsStreamFacts() throws {
        let folder = try TestMedia.folder("probe")
        let url = folder.appendingPathComponent("a.mp4")
        try TestMedia.make(url, source: "testsrc2=size=320x240:rate=24:duration=2")
        let info = try VideoIO.probe(url)
        XCTAssertEqual(info.width, 320)
        XCTAssertEqual(info.height, 240)
        XCTAssertEqual(info.framesPerSecond, 24, accuracy: 1e-6)
        XCTAssertEqual(info.duration, 2, accuracy: 0.1)
        XCTAssertEqual(info.codec, "h264")
        let size = try FileManager.default.attributesOfItem(atPath: url.path)[.size] as! Int
        XCTAssertEqual(Double(info.bitRate), Double(size * 8) / 2, accuracy: Double(size * 8) / 2 * 0.2)
    }

    func testDecodeSamplesRateAndSize() throws {
        let folder = try TestMedia.folder("decode")
        let url = folder.appendingPathComponent("a.mp4")
        try TestMedia.make(url, source: "testsrc2=size=320x240:rate=24:duration=3")
        let all = try VideoIO.decodeFrames(url)
        XCTAssertEqual(all.count, 72)
        XCTAssertEqual(all[25].time, 25.0 / 24, accuracy: 1e-6)
        let sampled = try VideoIO.decodeFrames(url, options: DecodeOptions(framesPerSecond: 1, width: 80))
        XCTAssertEqual(sampled.map(\.time), [0, 1, 2].map(Double.init), accuracy: 1e-6)
        XCTAssertEqual(sampled[0].width, 80)
        XCTAssertEqual(sampled[0].height, 60)
        let range = try VideoIO.decodeFrames(url, options: DecodeOptions(start: 1, end: 2))
        XCTAssertEqual(range.count, 24)
        XCTAssertEqual(range.first!.time, 1, accuracy: 1e-6)
    }

    func testTensorRoundTripThroughMP4() throws {
        let folder = try TestMedia.folder("tensor")
        let url = folder.appendingPathComponent("t.mp4")
        // A smooth moving gradient: H.264 at crf 18 keeps it within a few levels.
        let (t, h, w) = (6, 48, 64)
        var values = [Float](repeating: 0, count: 3 * t * h * w)
        for c in 0..<3 {
            for f in 0..<t {
                for y in 0..<h {
                    for x in 0..<w {
                        values[((c * t + f) * h + y) * w + x] = Float(
                            sin(Double(x + 3 * f) / 20 + Double(c)) * 0.6 + Double(y) / Double(h) * 0.3)
                    }
                }
            }
        }
        let video = Tensor(shape: [3, t, h, w], scalars: values)
        try VideoIO.writeMP4(video, to: url, framesPerSecond: 24)
        let back = try VideoIO.readVideo(url)
        XCTAssertEqual(back.shape, [3, t, h, w])
        let error = zip(back.scalars, values).map { abs($0 - $1) }.reduce(0, +) / Float(values.count)
        XCTAssertLessThan(error, 0.03, "mean absolute error after H.264")
        XCTAssertEqual(try VideoIO.probe(url).codec, "h264")
    }

    func testCutReencodesSpan() throws {
        let folder = try TestMedia.folder("cut")
        let source = folder.appendingPathComponent("a.mp4")
        try TestMedia.make(source, source: "testsrc2=size=320x240:rate=24:duration=4")
        let clip = folder.appendingPathComponent("clip.mp4")
        let written = try VideoIO.cut(source, start: 1, end: 2.5, to: clip)
        XCTAssertEqual(written, 36)
        let info = try VideoIO.probe(clip)
        XCTAssertEqual(info.duration, 1.5, accuracy: 0.1)
        XCTAssertEqual(try VideoIO.decodeFrames(clip).count, 36)
        // The first frame of the cut is the source's frame at 1 s.
        let a = try VideoIO.decodeFrames(source, options: DecodeOptions(start: 1, maxFrames: 1))[0]
        let b = try VideoIO.decodeFrames(clip, options: DecodeOptions(maxFrames: 1))[0]
        let difference = zip(a.pixels, b.pixels).map { abs(Int($0) - Int($1)) }.reduce(0, +) / a.pixels.count
        XCTAssertLessThan(difference, 6)
    }

    func testCorruptAndMissingFilesThrowNamedErrors() throws {
        let folder = try TestMedia.folder("corrupt")
        let url = folder.appendingPathComponent("bad.mp4")
        try Data((0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 2_654_435_761 >> 7) }).write(to: url)
        XCTAssertThrowsError(try VideoIO.probe(url)) { error in
            XCTAssertTrue("\(error)".contains("bad.mp4"), "\(error)")
        }
        XCTAssertThrowsError(try VideoIO.probe(folder.appendingPathComponent("missing.mp4")))
        // A valid file cut short: the header survives, most frames do not.
        let good = folder.appendingPathComponent("good.mp4")
        try TestMedia.make(
            good, source: "testsrc2=size=320x240:rate=24:duration=2", extra: ["-movflags", "+faststart"])
        let bytes = try Data(contentsOf: good)
        let truncated = folder.appendingPathComponent("truncated.mp4")
        try bytes.prefix(bytes.count / 3).write(to: truncated)
        let frames = (try? VideoIO.decodeFrames(truncated)) ?? []
        XCTAssertLessThan(frames.count, 48)
    }

    func testPNGEncodeDecodesBackExactly() throws {
        var pixels = [UInt8](repeating: 0, count: 17 * 9 * 3)
        for i in 0..<pixels.count { pixels[i] = UInt8(truncatingIfNeeded: i * 37) }
        let frame = RGBFrame(width: 17, height: 9, time: 0, pixels: pixels)
        let png = try ImageCodec.encode(frame, as: .png)
        XCTAssertEqual(Array(png.prefix(8)), [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        let url = try TestMedia.folder("png").appendingPathComponent("x.png")
        try png.write(to: url)
        let back = try VideoIO.decodeFrames(url)
        XCTAssertEqual(back.count, 1)
        XCTAssertEqual(back[0].pixels, pixels)
        let jpeg = try ImageCodec.encode(frame, as: .jpeg(quality: 3))
        XCTAssertEqual(Array(jpeg.prefix(2)), [0xFF, 0xD8])
    }
}

private func XCTAssertEqual(
    _ a: [Double], _ b: [Double], accuracy: Double, file: StaticString = #filePath, line: UInt = #line
) {
    XCTAssertEqual(a.count, b.count, "counts \(a) vs \(b)", file: file, line: line)
    for (x, y) in zip(a, b) { XCTAssertEqual(x, y, accuracy: accuracy, "\(a) vs \(b)", file: file, line: line) }
}
