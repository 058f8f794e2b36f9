import Foundation
import Media
import TensorCore
import TestSupport
import XCTest

/// PNG and GIF against files written and decoded by Pillow, round trips, and bad files.
final class MediaFileTests: XCTestCase {
    static let fixtures: URL = {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")
    }()

    var temporary: URL!

    override func setUpWithError() throws {
        temporary = FileManager.default.temporaryDirectory.appendingPathComponent("media-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: temporary, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: temporary)
    }

    /// Expected bytes (H, W, 3) or (T, H, W, 3) from the fixture, as a tensor in [-1, 1] laid out (3, …).
    func expectedTensor(_ key: String) throws -> Tensor {
        let t = try Fixture.load("media_expected", target: "MediaTests").tensor(key)
        let channelsFirst = t.rank == 3 ? t.permute([2, 0, 1]) : t.permute([3, 0, 1, 2])
        return channelsFirst / 127.5 - 1
    }

    func testPNGFixturesDecodeExactly() throws {
        for name in ["rgb", "rgba", "grey", "grey16", "bilevel", "palette"] {
            let image = try ImageFile.read(Self.fixtures.appendingPathComponent("\(name).png"))
            expectClose(image, try expectedTensor(name), rtol: 0, atol: 1e-6, name)
        }
    }

    func testGIFFixtureDecodesExactly() throws {
        let video = try VideoFile.read(Self.fixtures.appendingPathComponent("anim.gif"))
        XCTAssertEqual(video.shape, [3, 3, 10, 12])
        expectClose(video, try expectedTensor("anim"), rtol: 0, atol: 1e-6, "anim.gif")
        let animation = try GIFCodec.decode(
            [UInt8](try Data(contentsOf: Self.fixtures.appendingPathComponent("anim.gif"))), file: "anim.gif")
        XCTAssertEqual(animation.delays, [10, 10, 10])
        let noise = try VideoFile.read(Self.fixtures.appendingPathComponent("noise.gif"))
        expectClose(noise, try expectedTensor("noise"), rtol: 0, atol: 1e-6, "noise.gif")
    }

    func testInterlacedPNGIsRejectedClearly() {
        let url = Self.fixtures.appendingPathComponent("interlaced.png")
        XCTAssertThrowsError(try ImageFile.read(url)) { error in
            XCTAssertEqual(error as? MediaError, .unsupported(file: url.path, reason: "interlaced (Adam7) PNG"))
        }
    }

    func testHugeHeadersAreRefusedBeforeAllocating() throws {
        let png = Self.fixtures.appendingPathComponent("huge.png")
        XCTAssertThrowsError(try ImageFile.read(png)) { XCTAssertTrue("\($0)".contains("60000×60000"), "\($0)") }
        // A GIF whose logical screen is 65535×65535, with one 1×1 frame.
        var gif = Array("GIF89a".utf8) + [0xFF, 0xFF, 0xFF, 0xFF, 0x80, 0, 0] + [0, 0, 0, 255, 255, 255]
        gif += [0x2C, 0, 0, 0, 0, 1, 0, 1, 0, 0, 2, 2, 0x4C, 0x01, 0, 0x3B]
        let url = temporary.appendingPathComponent("huge.gif")
        try Data(gif).write(to: url)
        XCTAssertThrowsError(try VideoFile.read(url)) { XCTAssertTrue("\($0)".contains("65535×65535"), "\($0)") }
        // The same GIF with a 2×2 screen decodes (so the refusal above is the size, not the stream).
        gif[6...9] = [2, 0, 2, 0]
        try Data(gif).write(to: url)
        XCTAssertEqual(try VideoFile.read(url).shape, [3, 1, 2, 2])
    }

    func testPNGRoundTripIsExactForBytes() throws {
        let g = RandomGenerator(seed: 3)
        // Values on the byte grid survive exactly; others round to the nearest byte.
        let bytes = (Tensor.rand([3, 17, 23], low: 0, high: 255.99, generator: g)).scalars.map { $0.rounded(.down) }
        let image = Tensor(shape: [3, 17, 23], scalars: bytes.map { $0 / 127.5 - 1 })
        let url = temporary.appendingPathComponent("round.png")
        try ImageFile.write(image, to: url)
        expectClose(try ImageFile.read(url), image, rtol: 0, atol: 1e-6, "PNG round trip")
        // Out-of-range values clamp.
        try ImageFile.write(Tensor(shape: [3, 1, 2], scalars: [-3, 3, 0.999, -0.999, 2, -2]), to: url)
        XCTAssertEqual(try ImageFile.read(url).scalars, [-1, 1, 1, -1, 1, -1])
    }

    func testGIFRoundTripExactPalette() throws {
        // A few colours and their blends with black: fewer than 256, so the palette is exact.
        var values: [Float] = []
        let g = RandomGenerator(seed: 4)
        let picks = Tensor.rand([5 * 9 * 14], low: 0, high: 40, generator: g).scalars
        for c in 0..<3 {
            for p in picks { values.append(Float((Int(p) * (c + 3)) % 40) / 20 - 1) }
        }
        let video = Tensor(shape: [3, 5, 9, 14], scalars: values)
        let expected = RGBImage.video(try RGBImage.frames(of: video))
        let url = temporary.appendingPathComponent("clip.gif")
        try VideoFile.write(video, to: url, framesPerSecond: 8)
        expectClose(try VideoFile.read(url), expected, rtol: 0, atol: 1e-6, "GIF round trip")
        let animation = try GIFCodec.decode([UInt8](try Data(contentsOf: url)), file: "clip.gif")
        XCTAssertEqual(animation.delays, [13, 13, 13, 13, 13])
    }

    func testGIFColorCubeIsClose() throws {
        // Random colours (thousands of them) go through the 6×7×6 cube: error at most half a level without
        // dithering; dithered, each channel within one level and the local mean close to the input.
        let g = RandomGenerator(seed: 5)
        let video = Tensor.rand([3, 2, 16, 16], low: -1, high: 1, generator: g)
        let url = temporary.appendingPathComponent("cube.gif")
        try VideoFile.write(video, to: url, framesPerSecond: 10, palette: .colorCube(dithering: false))
        let plain = try VideoFile.read(url)
        let step = Float(2.0 / 5.0)  // red and blue: 6 levels over [-1, 1]
        let maxError = zip(plain.scalars, video.scalars).map { Swift.abs($0 - $1) }.max()!
        XCTAssertLessThanOrEqual(maxError, step / 2 + 0.01)
        try VideoFile.write(video, to: url, framesPerSecond: 10, palette: .colorCube(dithering: true))
        let dithered = try VideoFile.read(url)
        let ditherError = zip(dithered.scalars, video.scalars).map { Swift.abs($0 - $1) }.max()!
        XCTAssertLessThanOrEqual(ditherError, step + 0.01)
        // Dithering preserves a flat mid-grey's mean better than rounding does.
        let flat = Tensor.full([3, 1, 8, 8], 0.1)
        try VideoFile.write(flat, to: url, framesPerSecond: 10, palette: .colorCube(dithering: true))
        XCTAssertEqual(try VideoFile.read(url).mean().item(), 0.1, accuracy: 0.03)
    }

    func testLargeGIFExercisesCodeTableReset() throws {
        // Noise over many pixels fills the 4096-entry LZW table several times.
        let g = RandomGenerator(seed: 6)
        let video = (Tensor.rand([3, 2, 160, 160], low: 0, high: 6, generator: g)).scalars.map {
            Float(Int($0)) / 2.5 - 1
        }
        let tensor = Tensor(shape: [3, 2, 160, 160], scalars: video)
        let url = temporary.appendingPathComponent("big.gif")
        try VideoFile.write(tensor, to: url, framesPerSecond: 24)
        expectClose(try VideoFile.read(url), tensor, rtol: 0, atol: 1e-6, "large GIF")
    }

    func testPNGAsOneFrameVideo() throws {
        let image = Tensor(shape: [3, 2, 2], scalars: (0..<12).map { Float($0) / 11 * 2 - 1 })
        let url = temporary.appendingPathComponent("one.png")
        try VideoFile.write(image.unsqueeze(1), to: url, framesPerSecond: 1)
        let expected = RGBImage.video([try RGBImage(image)])
        expectClose(try VideoFile.read(url), expected, rtol: 0, atol: 1e-6)
        XCTAssertThrowsError(try VideoFile.write(Tensor.zeros([3, 2, 2, 2]), to: url, framesPerSecond: 1))
    }

    /// An MP4 written through FFmpeg (H.264 4:2:0, lossy) of smooth content reads back with the same shape and nearly the same pixels.
    func testMP4RoundTrip() throws {
        let (t, h, w) = (6, 32, 48)
        var values: [Float] = []
        for c in 0..<3 {
            for f in 0..<t {
                for y in 0..<h {
                    for x in 0..<w { values.append(0.8 * Float(sin(Double(x) / 9 + Double(y) / 13 + Double(f) / 3 + Double(c)))) }
                }
            }
        }
        let video = Tensor(shape: [3, t, h, w], scalars: values)
        let url = temporary.appendingPathComponent("clip.mp4")
        try VideoFile.write(video, to: url, framesPerSecond: 8)
        let back = try VideoFile.read(url)
        XCTAssertEqual(back.shape, [3, t, h, w])
        let error = (back - video).abs().mean().item()
        XCTAssertLessThan(error, 0.04, "mean absolute error \(error) after H.264")
        XCTAssertEqual(try VideoFile.readFrames(url).count, t)
    }

    func testUnsupportedAndBadInput() {
        let missing = temporary.appendingPathComponent("missing.mp4")
        XCTAssertThrowsError(try VideoFile.read(missing)) { XCTAssertTrue("\($0)".contains("missing.mp4"), "\($0)") }
        XCTAssertThrowsError(
            try VideoFile.write(Tensor.zeros([3, 2, 16, 16]), to: temporary.appendingPathComponent("clip.webm"), framesPerSecond: 8)
        ) { XCTAssertTrue("\($0)".contains(".mp4"), "\($0)") }
        let png = temporary.appendingPathComponent("x.png")
        XCTAssertThrowsError(try ImageFile.write(Tensor.zeros([4, 2, 2]), to: png)) { error in
            XCTAssertTrue("\(error)".contains("(3, H, W)"), "\(error)")
        }
        XCTAssertThrowsError(try ImageFile.read(temporary.appendingPathComponent("missing.png"))) { error in
            XCTAssertTrue("\(error)".contains("missing.png"), "\(error)")
        }
    }

    /// Every truncation and a garbage file give a `MediaError` naming the file (never a crash or a silent success).
    func testTruncatedAndGarbageFiles() throws {
        for name in ["rgb.png", "palette.png", "anim.gif"] {
            let bytes = [UInt8](try Data(contentsOf: Self.fixtures.appendingPathComponent(name)))
            let url = temporary.appendingPathComponent(name)
            for length in stride(from: 0, to: bytes.count, by: max(1, bytes.count / 40)) + [bytes.count - 1] {
                try Data(bytes[0..<length]).write(to: url)
                XCTAssertThrowsError(try VideoFile.read(url), "\(name) cut at \(length)") { error in
                    guard let media = error as? MediaError else { return XCTFail("\(error)") }
                    XCTAssertTrue("\(media)".contains(url.path), "\(media)")
                }
            }
            // Flipped bytes in the middle: PNG's CRCs catch every one; GIF has no checksum, so a flip may decode
            // to other pixels, but it must never crash.
            for offset in stride(from: 8, to: bytes.count - 1, by: 7) {
                var damaged = bytes
                damaged[offset] ^= 0x5A
                try Data(damaged).write(to: url)
                if name.hasSuffix(".png") {
                    XCTAssertThrowsError(try VideoFile.read(url), "\(name) flipped at \(offset)")
                } else {
                    _ = try? VideoFile.read(url)
                }
            }
        }
        let g = RandomGenerator(seed: 7)
        let garbage = Tensor.rand([300], low: 0, high: 255, generator: g).scalars.map { UInt8($0) }
        for name in ["garbage.png", "garbage.gif"] {
            let url = temporary.appendingPathComponent(name)
            try Data(garbage).write(to: url)
            XCTAssertThrowsError(try VideoFile.read(url)) { XCTAssertTrue("\($0)".contains(name)) }
        }
    }
}
