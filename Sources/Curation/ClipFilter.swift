import Foundation
import VideoIO

/// A clip's verdict: accepted, or rejected by a named stage for a reason.
public struct ClipDecision: Sendable, Equatable {
    /// Kept for training.
    public var accepted: Bool
    /// The rejecting stage ("clip_length", "similarity", "motion", "ocr", "aesthetic", "dedup", "caption").
    public var stage: String?
    /// Readable reason with the score and threshold.
    public var reason: String?

    /// Accepted.
    public static let accept = ClipDecision(accepted: true, stage: nil, reason: nil)
    /// Rejected by `stage`.
    public static func reject(_ stage: String, _ reason: String) -> ClipDecision {
        ClipDecision(accepted: false, stage: stage, reason: reason)
    }
}

/// The filters as pure functions of stored scores and a config, so `report`/`export` re-apply other thresholds
/// without recomputing.
public enum ClipFilter {
    /// The primary metadata filter (Table 3); nil when the source passes.
    public static func metadataRejection(_ info: VideoInfo, config: CurationConfig) -> String? {
        if info.duration < config.minimumDuration {
            return String(format: "duration %.2f s < %.2f s", info.duration, config.minimumDuration)
        }
        if info.shorterSide < config.minimumShorterSide {
            return "shorter side \(info.shorterSide) < \(config.minimumShorterSide)"
        }
        if Double(info.bitRate) / 1000 < config.minimumBitRateKbps {
            return String(
                format: "bit rate %.0f kbps < %.0f kbps", Double(info.bitRate) / 1000, config.minimumBitRateKbps)
        }
        if info.framesPerSecond < config.minimumFramesPerSecond - 1e-3 {
            return String(format: "frame rate %.3f < %.3f", info.framesPerSecond, config.minimumFramesPerSecond)
        }
        return nil
    }

    /// Threshold filters on one clip's stored scores, in pipeline order. A skipped stage is not applied; a missing or
    /// failed one rejects (the clip could not be checked).
    public static func decide(_ clip: CurationIndex.Clip, config: CurationConfig) -> ClipDecision {
        if clip.span.duration < config.minimumClipDuration - 1e-6 {
            return .reject(
                "clip_length", String(format: "%.2f s < %.2f s", clip.span.duration, config.minimumClipDuration))
        }
        if clip.similarity < config.similarityThreshold {
            return .reject("similarity", String(format: "%.3f < %.3f", clip.similarity, config.similarityThreshold))
        }
        for name in ["motion", "ocr", "aesthetic"] {
            guard let result = clip.stages[name] else { return .reject(name, "not computed") }
            if result.status == "skipped" { continue }
            guard result.status == "done", let score = result.score else {
                return .reject(name, "failed: \(result.detail ?? "")")
            }
            switch name {
            case "motion" where score < config.minimumMotion:
                return .reject(name, String(format: "%.3f < %.3f", score, config.minimumMotion))
            case "motion" where score > config.maximumMotion:
                return .reject(name, String(format: "%.3f > %.3f", score, config.maximumMotion))
            case "ocr" where score > config.maximumTextCoverage:
                return .reject(name, String(format: "text coverage %.4f > %.4f", score, config.maximumTextCoverage))
            case "aesthetic" where score < config.minimumAesthetic:
                return .reject(name, String(format: "%.2f < %.2f", score, config.minimumAesthetic))
            default: break
            }
        }
        return .accept
    }

    /// Decisions for all clips of one source: thresholds first, then deduplication among the survivors by keyframe
    /// pHashes, keeping the higher aesthetic score (sharpness when the aesthetic stage was skipped); ties keep the
    /// earlier clip. Captions are not considered here.
    public static func decideSource(_ clips: [CurationIndex.Clip], config: CurationConfig) -> [Int64: ClipDecision] {
        var decisions: [Int64: ClipDecision] = [:]
        var survivors: [CurationIndex.Clip] = []
        for clip in clips {
            let decision = decide(clip, config: config)
            decisions[clip.id] = decision
            if decision.accepted { survivors.append(clip) }
        }
        func quality(_ clip: CurationIndex.Clip) -> Double {
            if let aesthetic = clip.stages["aesthetic"], aesthetic.status == "done", let score = aesthetic.score {
                return score
            }
            return clip.stages["phash"]?.score ?? 0
        }
        let ranked = survivors.enumerated().sorted {
            quality($0.element) != quality($1.element)
                ? quality($0.element) > quality($1.element) : $0.offset < $1.offset
        }.map(\.element)
        var kept: [(CurationIndex.Clip, [UInt64])] = []
        for clip in ranked {
            let hashes = hashes(of: clip)
            if let twin = kept.first(where: {
                PerceptualHash.clipDistance($0.1, hashes) <= config.duplicateHammingDistance
            }) {
                decisions[clip.id] = .reject("dedup", "duplicate of clip \(twin.0.number)")
            } else {
                kept.append((clip, hashes))
            }
        }
        return decisions
    }

    /// The keyframe hashes stored by the phash stage (hex, comma-separated).
    static func hashes(of clip: CurationIndex.Clip) -> [UInt64] {
        (clip.stages["phash"]?.detail ?? "").split(separator: ",").compactMap { UInt64($0, radix: 16) }
    }
}
