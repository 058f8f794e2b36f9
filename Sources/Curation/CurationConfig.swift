import Foundation

/// Every threshold and setting of the curation pipeline. Defaults are the paper's 480p tier (Tables 3 and 4, spec §2);
/// fields the paper leaves open carry the choice made here and why. Saved as JSON beside the index.
public struct CurationConfig: Codable, Sendable, Equatable {
    // Primary filter on metadata (Table 3).
    /// Minimum raw-video duration, seconds (paper: 4).
    public var minimumDuration: Double = 4
    /// Minimum of width and height, pixels (paper: 480).
    public var minimumShorterSide: Int = 480
    /// Minimum bit rate, kilobits per second (paper: 500).
    public var minimumBitRateKbps: Double = 500
    /// Minimum frame rate (paper: 23.976).
    public var minimumFramesPerSecond: Double = 23.976

    // Shot detection and clipping.
    /// PySceneDetect ContentDetector threshold on the mean HSV change between frames, 0–255 scale (its default 27).
    public var contentThreshold: Double = 27
    /// Shortest shot the content detector makes, frames (PySceneDetect's default min_scene_len 15).
    public var minimumShotFrames: Int = 15
    /// Width of the frames the content detector sees (PySceneDetect downscales too; 256 keeps the histogram honest).
    public var detectorWidth: Int = 256
    /// Cosine similarity of adjacent 1-fps frames below which a shot is split (paper: DINO-Sim 0.85 for 480p).
    /// Re-applied to stored scores, a higher value rejects clips holding a less similar pair (stage "similarity")
    /// rather than splitting them again.
    public var similarityThreshold: Double = 0.85
    /// A DINOv2 Hugging Face folder (config.json + model.safetensors, e.g. facebook/dinov2-small) for the 1-fps
    /// refinement, as the paper; nil: the colour-and-edge descriptor (`ColorEdgeEncoder`) with the same threshold.
    public var dinoWeights: String? = nil
    /// Longest clip, seconds (paper: 10). Longer shots are cut into equal pieces no longer than this.
    public var maximumClipDuration: Double = 10
    /// Shortest clip kept, seconds. Not stated by the paper; 2 s gives a motion score and a caption some footing.
    public var minimumClipDuration: Double = 2

    // Model-based filters (Table 4).
    /// Width the per-clip stages decode at (keyframes for OCR, hashes, captions). 480 keeps burned-in text readable.
    public var analysisWidth: Int = 480
    /// Largest text box over frame area above which a clip is dropped (paper: 0.02).
    public var maximumTextCoverage: Double = 0.02
    /// Keyframes per second of clip for OCR, hashes and the aesthetic score (paper: "keyframe per second").
    public var keyframesPerSecond: Double = 1
    /// Lowest motion score kept (paper: 0.3).
    public var minimumMotion: Double = 0.3
    /// Highest motion score kept (paper: 20).
    public var maximumMotion: Double = 20
    /// Width of the grey frames optical flow runs on. The score is in pixels per source frame at this width; the paper
    /// (RAFT) does not state its resolution, 256 is cheap and keeps small motion measurable.
    public var motionWidth: Int = 256
    /// Frame pairs measured per clip, evenly spread.
    public var motionPairs: Int = 8
    /// Lowest mean aesthetic score kept (paper: 4.3). Only applied when aesthetic weights are given.
    public var minimumAesthetic: Double = 4.3
    /// The LAION aesthetic head (safetensors, `layers.<n>.weight/bias`), or nil: the aesthetic stage is recorded as
    /// skipped, its threshold not applied. Needs `aestheticCLIP`.
    public var aestheticWeights: String? = nil
    /// The CLIP model folder for the aesthetic head (ViT-L/14 for LAION's published head).
    public var aestheticCLIP: String? = nil
    /// Largest Hamming distance (of 64 bits) at which two clips' keyframe pHashes count as duplicates. The paper does
    /// not state it; 10 is the usual imagehash cut for "same picture, re-encoded or slightly moved".
    public var duplicateHammingDistance: Int = 10

    // Captioning through an OpenAI-compatible chat API.
    /// Base URL up to and including `/v1`, e.g. "http://127.0.0.1:8000/v1"; nil: the caption stage is skipped.
    public var captionEndpoint: String? = nil
    /// Environment variable holding the API key (sent as a Bearer token when set).
    public var captionAPIKeyVariable: String = "OPENAI_API_KEY"
    /// Model captioning keyframes (paper: InternVL2.0).
    public var keyframeModel: String = "internvl2"
    /// Model captioning the whole clip from evenly sampled frames (paper: Tarsier2).
    public var clipModel: String = "tarsier2"
    /// Model merging and refining the captions (paper: Qwen2).
    public var refineModel: String = "qwen2"
    /// Prompt for the keyframe caption.
    public var keyframePrompt: String = "Describe these video keyframes in detail: subjects, setting, colours, style."
    /// Prompt for the whole-clip caption.
    public var clipPrompt: String =
        "These are frames of one video clip in order. Describe the action and the camera motion."
    /// Prompt for the refinement; "{keyframes}" and "{clip}" are replaced by the two captions.
    public var refinePrompt: String =
        "Merge these two descriptions of one video into a single dense, accurate caption.\nKeyframes: {keyframes}\nClip: {clip}"
    /// Frames sent for the whole-clip caption.
    public var clipFrames: Int = 8
    /// Seconds before a request times out.
    public var requestTimeout: Double = 60
    /// Retries after a failed request (timeouts, HTTP 429 and 5xx), with exponential back-off.
    public var maximumRetries: Int = 4
    /// First back-off delay, seconds (doubles each retry).
    public var retryDelay: Double = 1
    /// Requests per minute across all workers.
    public var requestsPerMinute: Double = 60

    // Balancing.
    /// Extra weight for the "human" category (the paper up-weights human content as the hardest to model).
    public var humanWeight: Double = 1.5

    /// The paper's 480p tier (the defaults).
    public static let tier480p = CurationConfig()

    /// The paper's 720p tier.
    public static var tier720p: CurationConfig {
        var config = CurationConfig()
        config.minimumShorterSide = 720
        config.similarityThreshold = 0.90
        config.minimumAesthetic = 4.5
        config.maximumTextCoverage = 0.01
        config.minimumMotion = 0.5
        config.maximumMotion = 15
        return config
    }

    /// The defaults.
    public init() {}

    /// Throws `CurationError.invalidConfig` naming the first bad field.
    public func validate() throws {
        func check(_ ok: Bool, _ field: String, _ why: String) throws {
            if !ok { throw CurationError.invalidConfig(field: field, reason: why) }
        }
        try check(minimumDuration >= 0, "minimumDuration", "must be ≥ 0")
        try check(minimumShorterSide >= 0, "minimumShorterSide", "must be ≥ 0")
        try check(minimumBitRateKbps >= 0, "minimumBitRateKbps", "must be ≥ 0")
        try check(minimumFramesPerSecond >= 0, "minimumFramesPerSecond", "must be ≥ 0")
        try check(contentThreshold > 0, "contentThreshold", "must be > 0")
        try check(minimumShotFrames >= 1, "minimumShotFrames", "must be ≥ 1")
        try check(detectorWidth >= 16, "detectorWidth", "must be ≥ 16")
        try check((0...1).contains(similarityThreshold), "similarityThreshold", "must be in [0, 1]")
        try check(maximumClipDuration > 0, "maximumClipDuration", "must be > 0")
        try check(
            minimumClipDuration >= 0 && minimumClipDuration <= maximumClipDuration, "minimumClipDuration",
            "must be in [0, maximumClipDuration]")
        try check(analysisWidth >= 32, "analysisWidth", "must be ≥ 32")
        try check((0...1).contains(maximumTextCoverage), "maximumTextCoverage", "must be in [0, 1]")
        try check(keyframesPerSecond > 0, "keyframesPerSecond", "must be > 0")
        try check(minimumMotion >= 0 && maximumMotion >= minimumMotion, "maximumMotion", "must be ≥ minimumMotion ≥ 0")
        try check(motionWidth >= 32, "motionWidth", "must be ≥ 32")
        try check(motionPairs >= 1, "motionPairs", "must be ≥ 1")
        try check(aestheticWeights == nil || aestheticCLIP != nil, "aestheticCLIP", "must be set with aestheticWeights")
        try check((0...64).contains(duplicateHammingDistance), "duplicateHammingDistance", "must be in [0, 64]")
        if let captionEndpoint {
            try check(URL(string: captionEndpoint)?.scheme != nil, "captionEndpoint", "is not a URL")
        }
        try check(clipFrames >= 1, "clipFrames", "must be ≥ 1")
        try check(requestTimeout > 0, "requestTimeout", "must be > 0")
        try check(maximumRetries >= 0, "maximumRetries", "must be ≥ 0")
        try check(retryDelay >= 0, "retryDelay", "must be ≥ 0")
        try check(requestsPerMinute > 0, "requestsPerMinute", "must be > 0")
        try check(humanWeight > 0, "humanWeight", "must be > 0")
    }

    /// Reads and validates a config file; missing fields take their defaults.
    public static func read(from url: URL) throws -> CurationConfig {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw CurationError.file(path: url.path, reason: "cannot read: \(error.localizedDescription)")
        }
        let config: CurationConfig
        do { config = try JSONDecoder().decode(CurationConfig.self, from: data) } catch let DecodingError.typeMismatch(
            _, context),
            let DecodingError.dataCorrupted(context)
        {
            let field = context.codingPath.map(\.stringValue).joined(separator: ".")
            throw CurationError.file(path: url.path, reason: "field '\(field)': \(context.debugDescription)")
        } catch {
            throw CurationError.file(path: url.path, reason: "\(error)")
        }
        do { try config.validate() } catch let CurationError.invalidConfig(field, reason) {
            throw CurationError.file(path: url.path, reason: "field '\(field)' \(reason)")
        }
        return config
    }

    /// Missing keys decode to the defaults, so a config file only needs the fields it changes.
    public init(from decoder: Decoder) throws {
        let defaults = CurationConfig()
        let values = try decoder.container(keyedBy: CodingKeys.self)
        func value<T: Decodable>(_ key: CodingKeys, _ fallback: T) throws -> T {
            try values.decodeIfPresent(T.self, forKey: key) ?? fallback
        }
        minimumDuration = try value(.minimumDuration, defaults.minimumDuration)
        minimumShorterSide = try value(.minimumShorterSide, defaults.minimumShorterSide)
        minimumBitRateKbps = try value(.minimumBitRateKbps, defaults.minimumBitRateKbps)
        minimumFramesPerSecond = try value(.minimumFramesPerSecond, defaults.minimumFramesPerSecond)
        contentThreshold = try value(.contentThreshold, defaults.contentThreshold)
        minimumShotFrames = try value(.minimumShotFrames, defaults.minimumShotFrames)
        detectorWidth = try value(.detectorWidth, defaults.detectorWidth)
        similarityThreshold = try value(.similarityThreshold, defaults.similarityThreshold)
        dinoWeights = try value(.dinoWeights, defaults.dinoWeights)
        maximumClipDuration = try value(.maximumClipDuration, defaults.maximumClipDuration)
        minimumClipDuration = try value(.minimumClipDuration, defaults.minimumClipDuration)
        analysisWidth = try value(.analysisWidth, defaults.analysisWidth)
        maximumTextCoverage = try value(.maximumTextCoverage, defaults.maximumTextCoverage)
        keyframesPerSecond = try value(.keyframesPerSecond, defaults.keyframesPerSecond)
        minimumMotion = try value(.minimumMotion, defaults.minimumMotion)
        maximumMotion = try value(.maximumMotion, defaults.maximumMotion)
        motionWidth = try value(.motionWidth, defaults.motionWidth)
        motionPairs = try value(.motionPairs, defaults.motionPairs)
        minimumAesthetic = try value(.minimumAesthetic, defaults.minimumAesthetic)
        aestheticWeights = try value(.aestheticWeights, defaults.aestheticWeights)
        aestheticCLIP = try value(.aestheticCLIP, defaults.aestheticCLIP)
        duplicateHammingDistance = try value(.duplicateHammingDistance, defaults.duplicateHammingDistance)
        captionEndpoint = try value(.captionEndpoint, defaults.captionEndpoint)
        captionAPIKeyVariable = try value(.captionAPIKeyVariable, defaults.captionAPIKeyVariable)
        keyframeModel = try value(.keyframeModel, defaults.keyframeModel)
        clipModel = try value(.clipModel, defaults.clipModel)
        refineModel = try value(.refineModel, defaults.refineModel)
        keyframePrompt = try value(.keyframePrompt, defaults.keyframePrompt)
        clipPrompt = try value(.clipPrompt, defaults.clipPrompt)
        refinePrompt = try value(.refinePrompt, defaults.refinePrompt)
        clipFrames = try value(.clipFrames, defaults.clipFrames)
        requestTimeout = try value(.requestTimeout, defaults.requestTimeout)
        maximumRetries = try value(.maximumRetries, defaults.maximumRetries)
        retryDelay = try value(.retryDelay, defaults.retryDelay)
        requestsPerMinute = try value(.requestsPerMinute, defaults.requestsPerMinute)
        humanWeight = try value(.humanWeight, defaults.humanWeight)
    }
}

/// Errors of the curation pipeline that stop a command (per-file failures are recorded in the index instead).
public enum CurationError: Error, CustomStringConvertible {
    /// A config field out of range.
    case invalidConfig(field: String, reason: String)
    /// A file (config, index, input folder) that cannot be used.
    case file(path: String, reason: String)
    /// The caption API failed after its retries.
    case captioning(reason: String)

    /// A readable message naming the file or field.
    public var description: String {
        switch self {
        case let .invalidConfig(field, reason): return "curation config: field '\(field)' \(reason)"
        case let .file(path, reason): return "\(path): \(reason)"
        case let .captioning(reason): return "captioning: \(reason)"
        }
    }
}
