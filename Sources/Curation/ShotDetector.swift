import Foundation
import VideoIO

/// A time span of a source video, seconds, [start, end).
public struct TimeSpan: Sendable, Equatable, Codable {
    /// Start, seconds.
    public var start: Double
    /// End (exclusive), seconds.
    public var end: Double
    /// end − start.
    public var duration: Double { end - start }

    /// A span.
    public init(start: Double, end: Double) {
        self.start = start
        self.end = end
    }
}

/// Two-stage clip extraction (paper §4.2): content-aware shot boundaries, refinement by 1-fps frame similarity, and
/// clips capped at the maximum duration.
public struct ShotDetector: Sendable {
    /// Thresholds (contentThreshold, minimumShotFrames, detectorWidth, similarityThreshold, maximumClipDuration).
    public var config: CurationConfig
    /// The encoder whose cosine similarity refines the shots (DINOv2 in the paper).
    public var encoder: any ImageEncoder

    /// A detector.
    public init(config: CurationConfig, encoder: any ImageEncoder = ColorEdgeEncoder()) {
        self.config = config
        self.encoder = encoder
    }

    /// The result for one source: the clips, and the lowest adjacent 1-fps similarity inside each (its DINO-Sim score).
    public struct Result: Sendable {
        /// Clips in order.
        public var clips: [TimeSpan]
        /// Per clip, the lowest cosine similarity of adjacent 1-fps frames inside it (1 when it has one sample).
        public var minimumSimilarity: [Double]
        /// Times of the content detector's cuts, before refinement.
        public var contentCuts: [Double]
    }

    /// Decodes `url` once at `detectorWidth` and returns its clips.
    public func detect(_ url: URL, info: VideoInfo) throws -> Result {
        var contentCuts: [Double] = []
        var previous: HSVPlanes? = nil
        var framesSinceCut = 0
        var samples: [(time: Double, embedding: [Float])] = []
        var nextSample = 0.0
        var lastTime = 0.0
        let halfFrame = info.framesPerSecond > 0 ? 0.5 / info.framesPerSecond : 0
        try VideoIO.decode(url, options: DecodeOptions(width: config.detectorWidth)) { frame in
            let planes = HSVPlanes(frame)
            if let previous {
                framesSinceCut += 1
                if previous.contentDifference(planes) >= config.contentThreshold
                    && framesSinceCut >= config.minimumShotFrames
                {
                    contentCuts.append(frame.time)
                    framesSinceCut = 0
                }
            }
            previous = planes
            if frame.time + halfFrame >= nextSample {
                samples.append((frame.time, encoder.embed(frame)))
                nextSample += 1
            }
            lastTime = frame.time
            return true
        }
        let end = max(info.duration, lastTime + (info.framesPerSecond > 0 ? 1 / info.framesPerSecond : 0))
        return Self.split(
            contentCuts: contentCuts, samples: samples, end: end, similarityThreshold: config.similarityThreshold,
            maximumDuration: config.maximumClipDuration)
    }

    /// The clip logic, apart from decoding: shots from the content cuts, each split where adjacent samples inside it
    /// fall below the similarity threshold (the cut placed halfway between the two samples), then pieces longer than
    /// `maximumDuration` cut into the fewest equal parts that fit.
    public static func split(
        contentCuts: [Double], samples: [(time: Double, embedding: [Float])], end: Double, similarityThreshold: Double,
        maximumDuration: Double
    ) -> Result {
        let bounds = [0] + contentCuts + [end]
        var refined: [(TimeSpan, Double)] = []
        for i in 0..<(bounds.count - 1) {
            let shot = TimeSpan(start: bounds[i], end: bounds[i + 1])
            let inside = samples.filter { $0.time >= shot.start && $0.time < shot.end }
            var start = shot.start
            var lowest = 1.0
            for j in 1..<max(1, inside.count) {
                let similarity = cosineSimilarity(inside[j - 1].embedding, inside[j].embedding)
                if similarity < similarityThreshold {
                    let cut = (inside[j - 1].time + inside[j].time) / 2
                    refined.append((TimeSpan(start: start, end: cut), lowest))
                    start = cut
                    lowest = 1
                } else {
                    lowest = min(lowest, similarity)
                }
            }
            refined.append((TimeSpan(start: start, end: shot.end), lowest))
        }
        var clips: [TimeSpan] = []
        var similarity: [Double] = []
        for (span, lowest) in refined where span.duration > 1e-6 {
            let pieces = max(1, Int((span.duration / maximumDuration - 1e-9).rounded(.up)))
            let length = span.duration / Double(pieces)
            for p in 0..<pieces {
                clips.append(TimeSpan(start: span.start + Double(p) * length, end: span.start + Double(p + 1) * length))
                similarity.append(lowest)
            }
        }
        return Result(clips: clips, minimumSimilarity: similarity, contentCuts: contentCuts)
    }
}
