import Foundation
import VideoIO

/// Computes a clip's stored scores from one decode of its span: motion (Farnebäck), OCR coverage (Tesseract), the
/// aesthetic score (when a scorer is given) and the keyframe pHashes with sharpness. One instance per worker thread.
public final class ClipAnalyzer {
    /// Thresholds and sizes.
    public let config: CurationConfig
    private let text: TextCoverage
    private let aesthetic: (any AestheticScorer)?
    private let flow = FarnebackFlow()

    /// An analyzer; throws if Tesseract's model cannot be loaded.
    public init(config: CurationConfig, aesthetic: (any AestheticScorer)?) throws {
        self.config = config
        self.aesthetic = aesthetic
        text = try TextCoverage()
    }

    /// Keyframes of a span: one per `1 / keyframesPerSecond` seconds from its start, at `analysisWidth`.
    public func keyframes(_ url: URL, span: TimeSpan) throws -> [RGBFrame] {
        try VideoIO.decodeFrames(
            url,
            options: DecodeOptions(
                framesPerSecond: config.keyframesPerSecond, width: config.analysisWidth, start: span.start,
                end: span.end))
    }

    /// Every stage result for one clip ("motion", "ocr", "aesthetic", "phash"); a decode failure fails them all.
    public func analyze(_ url: URL, span: TimeSpan, framesPerSecond: Double) -> [String: CurationIndex.StageResult] {
        var keyframes: [RGBFrame] = []
        var motions: [Double] = []
        let rate = framesPerSecond > 0 ? framesPerSecond : 25
        let frameCount = max(2, Int(span.duration * rate))
        let pairs = min(config.motionPairs, frameCount - 1)
        // Pair k starts at frame ⌊(k + ½)·(n − 1)/pairs⌋ of the span and ends at the next frame.
        let pairStarts = Set((0..<pairs).map { Int((Double($0) + 0.5) * Double(frameCount - 1) / Double(pairs)) })
        var previousGrey: GreyImage? = nil
        var index = 0
        var nextKeyframe = span.start
        let halfFrame = 0.5 / rate
        do {
            try VideoIO.decode(
                url, options: DecodeOptions(width: config.analysisWidth, start: span.start, end: span.end)
            ) { frame in
                if frame.time + halfFrame >= nextKeyframe {
                    keyframes.append(frame)
                    nextKeyframe += 1 / config.keyframesPerSecond
                }
                if pairStarts.contains(index) || previousGrey != nil {
                    let height = max(
                        8, Int((Double(frame.height) * Double(config.motionWidth) / Double(frame.width)).rounded()))
                    let grey = GreyImage(frame).resized(width: config.motionWidth, height: height)
                    if let previous = previousGrey {
                        motions.append(flow.meanMagnitude(from: previous, to: grey))
                        previousGrey = nil
                    }
                    if pairStarts.contains(index) { previousGrey = grey }
                }
                index += 1
                return true
            }
        } catch {
            let failed = CurationIndex.StageResult(status: "failed", detail: "\(error)")
            return ["motion": failed, "ocr": failed, "aesthetic": failed, "phash": failed]
        }
        var results: [String: CurationIndex.StageResult] = [:]
        results["motion"] =
            motions.isEmpty
            ? .init(status: "failed", detail: "fewer than two frames")
            : .init(status: "done", score: motions.reduce(0, +) / Double(motions.count))
        results["ocr"] = .init(status: "done", score: keyframes.map { text.coverage($0) }.max() ?? 0)
        if let aesthetic {
            do {
                let scores = try keyframes.map { try aesthetic.score($0) }
                results["aesthetic"] = .init(
                    status: "done", score: scores.reduce(0, +) / Double(max(1, scores.count)), detail: aesthetic.name)
            } catch {
                results["aesthetic"] = .init(status: "failed", detail: "\(error)")
            }
        } else {
            results["aesthetic"] = .init(status: "skipped", detail: "no aesthetic weights given")
        }
        let hashes = keyframes.map { String(PerceptualHash.hash($0), radix: 16) }.joined(separator: ",")
        let sharpness = keyframes.map { GreyImage($0).laplacianVariance }.reduce(0, +) / Double(max(1, keyframes.count))
        results["phash"] = .init(status: keyframes.isEmpty ? "failed" : "done", score: sharpness, detail: hashes)
        return results
    }
}
