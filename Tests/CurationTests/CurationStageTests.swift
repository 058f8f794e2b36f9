import Curation
import Foundation
import TestSupport
import VideoIO
import XCTest

/// The stages one by one, on lavfi videos and on images with known answers.
final class CurationStageTests: XCTestCase {
    func testContentDetectorFindsTheSceneCut() throws {
        let url = try CurationMedia.sources().appendingPathComponent("cuts.mp4")
        let info = try VideoIO.probe(url)
        let result = try ShotDetector(config: CurationMedia.config).detect(url, info: info)
        XCTAssertEqual(result.contentCuts.count, 1, "\(result.contentCuts)")
        XCTAssertEqual(result.contentCuts.first ?? 0, 2.5, accuracy: 1.0 / 24 + 1e-6)
        XCTAssertEqual(result.clips.count, 2, "\(result.clips)")
        XCTAssertEqual(result.clips.last?.end ?? 0, 5, accuracy: 0.05)
    }

    func testStaticSourceHasNoCut() throws {
        let url = try CurationMedia.sources().appendingPathComponent("static.mp4")
        let result = try ShotDetector(config: CurationMedia.config).detect(url, info: try VideoIO.probe(url))
        XCTAssertEqual(result.clips.count, 1)
        XCTAssertEqual(result.minimumSimilarity[0], 1, accuracy: 1e-6)
    }

    func testRefinementSplitsAtDissimilarSamplesAndCapsLength() throws {
        // 25 s shot; samples 1 s apart; the embedding changes between 12 s and 13 s.
        let samples = (0..<25).map { t in
            (time: Double(t), embedding: t < 13 ? [Float(1), 0.1, 0] : [Float(0), 0.1, 1])
        }
        let result = ShotDetector.split(
            contentCuts: [], samples: samples, end: 25, similarityThreshold: 0.85, maximumDuration: 10)
        // [0, 12.5) → two pieces of 6.25 s; [12.5, 25) → two pieces of 6.25 s.
        XCTAssertEqual(result.clips.map(\.start), [0, 6.25, 12.5, 18.75])
        XCTAssertEqual(result.clips.map(\.end), [6.25, 12.5, 18.75, 25])
        // A content cut at 4 s with no dissimilar samples inside either part.
        let same = (0..<8).map { (time: Double($0), embedding: [Float(1), 0, 0]) }
        let cut = ShotDetector.split(
            contentCuts: [4], samples: same, end: 8, similarityThreshold: 0.85, maximumDuration: 10)
        XCTAssertEqual(cut.clips, [TimeSpan(start: 0, end: 4), TimeSpan(start: 4, end: 8)])
    }

    func testColorEdgeEncoderSeparatesScenes() throws {
        let url = try CurationMedia.sources().appendingPathComponent("cuts.mp4")
        let frames = try VideoIO.decodeFrames(url, options: DecodeOptions(framesPerSecond: 1, width: 160))
        let encoder = ColorEdgeEncoder()
        let e = frames.map { encoder.embed($0) }
        XCTAssertGreaterThan(cosineSimilarity(e[0], e[1]), 0.85, "same scene one second apart")
        XCTAssertLessThan(cosineSimilarity(e[1], e[3]), 0.85, "testsrc2 against mandelbrot")
    }

    func testFarnebackRecoversTranslations() {
        // A smooth pattern moved by a known shift; the flow away from the borders must match. The larger shift is
        // beyond a single level's reach and needs the pyramid.
        let (w, h) = (96, 72)
        func pattern(_ x: Double, _ y: Double) -> Float {
            Float(128 + 60 * sin(x / 7) * cos(y / 9) + 40 * sin((x + y) / 11))
        }
        let a = GreyImage(width: w, height: h, values: (0..<(w * h)).map { pattern(Double($0 % w), Double($0 / w)) })
        for (sx, sy, tolerance) in [(1.5, -0.75, 0.1), (4.0, 2.5, 0.25)] {
            let b = GreyImage(
                width: w, height: h, values: (0..<(w * h)).map { pattern(Double($0 % w) - sx, Double($0 / w) - sy) })
            let (dx, dy) = FarnebackFlow().flow(from: a, to: b)
            var mx = 0.0, my = 0.0, n = 0.0
            for y in 12..<(h - 12) {
                for x in 12..<(w - 12) { mx += Double(dx[y * w + x]); my += Double(dy[y * w + x]); n += 1 }
            }
            XCTAssertEqual(mx / n, sx, accuracy: tolerance)
            XCTAssertEqual(my / n, sy, accuracy: tolerance)
        }
        XCTAssertEqual(FarnebackFlow().meanMagnitude(from: a, to: a), 0, accuracy: 1e-3)
    }

    func testPerceptualHashDistances() throws {
        let frames = try VideoIO.decodeFrames(
            try CurationMedia.sources().appendingPathComponent("cuts.mp4"), options: DecodeOptions(framesPerSecond: 1))
        let a = frames[0], b = frames[3]
        XCTAssertEqual(PerceptualHash.distance(PerceptualHash.hash(a), PerceptualHash.hash(a)), 0)
        var brighter = a
        brighter.pixels = a.pixels.map { UInt8(min(255, Int($0) + 12)) }
        XCTAssertLessThanOrEqual(PerceptualHash.distance(PerceptualHash.hash(a), PerceptualHash.hash(brighter)), 4)
        XCTAssertGreaterThan(PerceptualHash.distance(PerceptualHash.hash(a), PerceptualHash.hash(b)), 16)
        XCTAssertEqual(PerceptualHash.clipDistance([1, 2], [2, 1]), 0)
        XCTAssertEqual(PerceptualHash.clipDistance([], [1]), 64)
    }

    func testTextCoverageSeesBurnedInText() throws {
        let folder = try CurationMedia.sources()
        let ocr = try TextCoverage()
        let text = try VideoIO.decodeFrames(
            folder.appendingPathComponent("text.mp4"), options: DecodeOptions(maxFrames: 1))[0]
        let coverage = ocr.coverage(text)
        // The text line is about 250×26 pixels on 320×240: about 8 % of the frame.
        XCTAssertGreaterThan(coverage, 0.04)
        XCTAssertLessThan(coverage, 0.2)
        let plain = try VideoIO.decodeFrames(
            folder.appendingPathComponent("cuts.mp4"), options: DecodeOptions(start: 3, maxFrames: 1))[0]
        XCTAssertLessThan(ocr.coverage(plain), 0.02)
    }

    func testMetadataFilterNamesTheFailedCriterion() {
        let config = CurationConfig()
        let good = VideoInfo(
            duration: 6, framesPerSecond: 23.976, width: 854, height: 480, bitRate: 900_000, codec: "h264")
        XCTAssertNil(ClipFilter.metadataRejection(good, config: config))
        var info = good
        info.duration = 3.9
        XCTAssertTrue(ClipFilter.metadataRejection(info, config: config)!.contains("duration"))
        info = good
        info.height = 360
        XCTAssertTrue(ClipFilter.metadataRejection(info, config: config)!.contains("shorter side 360"))
        info = good
        info.bitRate = 499_000
        XCTAssertTrue(ClipFilter.metadataRejection(info, config: config)!.contains("bit rate"))
        info = good
        info.framesPerSecond = 15
        XCTAssertTrue(ClipFilter.metadataRejection(info, config: config)!.contains("frame rate"))
    }

    func testBalancerEvensCategories() {
        let balancer = Balancer(humanWeight: 2)
        XCTAssertEqual(balancer.category(of: "A woman walks her dog in the city"), "human")
        XCTAssertEqual(balancer.category(of: "Snowy mountain landscape under a blue sky"), "scenery")
        XCTAssertEqual(balancer.category(of: "Nothing matches here"), "other")
        let weights = balancer.weights(categories: ["human", "scenery", "scenery", "scenery"])
        XCTAssertEqual(weights.reduce(0, +) / 4, 1, accuracy: 1e-12)
        // Category totals: human 2 shares, scenery 1 share split over three clips.
        XCTAssertEqual(weights[0] / (weights[1] * 3), 2, accuracy: 1e-12)
    }

    func testConfigValidationNamesTheField() throws {
        var config = CurationConfig()
        config.maximumTextCoverage = 2
        XCTAssertThrowsError(try config.validate()) { XCTAssertTrue("\($0)".contains("maximumTextCoverage")) }
        let folder = try TestMedia.folder("config")
        let url = folder.appendingPathComponent("c.json")
        try Data(#"{"minimumMotion": "fast"}"#.utf8).write(to: url)
        XCTAssertThrowsError(try CurationConfig.read(from: url)) {
            XCTAssertTrue("\($0)".contains("minimumMotion") && "\($0)".contains("c.json"), "\($0)")
        }
        try Data(#"{"minimumShorterSide": 720}"#.utf8).write(to: url)
        let read = try CurationConfig.read(from: url)
        XCTAssertEqual(read.minimumShorterSide, 720)
        XCTAssertEqual(read.maximumMotion, 20)
        XCTAssertEqual(CurationConfig.tier720p.similarityThreshold, 0.90)
    }
}
