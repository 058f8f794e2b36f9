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
        let video = (Tensor.rand([3, 2, 160, 160], low: 0, high: 6, generator: g)).scalars.map { Float(Int($0)) / 2.5 - 1 }
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

    func testUnsupportedAndBadInput() {
        let mp4 = temporary.appendingPathComponent("clip.mp4")
        XCTAssertThrowsError(try VideoFile.write(Tensor.zeros([3, 2, 4, 4]), to: mp4, framesPerSecond: 8)) { error in
            XCTAssertTrue("\(error)".contains("FFmpeg") && "\(error)".contains("clip.mp4"), "\(error)")
        }
        XCTAssertThrowsError(try VideoFile.read(mp4)) { XCTAssertTrue("\($0)".contains("FFmpeg")) }
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
