import Foundation
import VideoIO

/// Runs the curation stages over a folder of videos into an index, resumably and with parallel workers.
///
/// Per source: probe (a failure is the "ffmpeg" stage), metadata filter, shot detection and clipping, then per clip
/// one decode for motion, OCR, aesthetic and pHash, then thresholds and deduplication, then captions for the accepted
/// clips. After every source: balancing over the accepted, captioned clips. Each step commits its rows in one
/// transaction and is skipped when they are already there, so a killed run resumes where it stopped.
public final class CurationPipeline: @unchecked Sendable {
    /// Thresholds and settings.
    public let config: CurationConfig
    /// The index.
    public let index: CurationIndex
    /// Shot refinement encoder.
    public var encoder: any ImageEncoder = ColorEdgeEncoder()
    /// The aesthetic predictor: LAION's when the config names its weights, else nil and the stage is skipped.
    public var aesthetic: (any AestheticScorer)? = nil
    /// Progress lines ("<file>: …"); print by default.
    public var log: @Sendable (String) -> Void = { print($0) }
    private let captioner: Captioner?

    /// Video file extensions taken from the input folder.
    public static let videoExtensions: Set<String> = [
        "mp4", "mov", "mkv", "webm", "avi", "m4v", "mpg", "mpeg", "ts", "flv",
    ]

    /// A pipeline writing into `index`; throws on a bad config.
    public init(config: CurationConfig, index: CurationIndex) throws {
        try config.validate()
        self.config = config
        self.index = index
        captioner = config.captionEndpoint == nil ? nil : try Captioner(config: config)
        if let dino = config.dinoWeights { encoder = try DINOv2Encoder(folder: URL(fileURLWithPath: dino)) }
        if let head = config.aestheticWeights, let clip = config.aestheticCLIP {
            aesthetic = try LAIONAestheticScorer(
                clipFolder: URL(fileURLWithPath: clip), headWeights: URL(fileURLWithPath: head))
        }
    }

    /// Video files directly or deeper under `folder`, sorted by path.
    public static func videoFiles(in folder: URL) throws -> [String] {
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder.path, isDirectory: &isFolder), isFolder.boolValue,
            let walker = FileManager.default.enumerator(at: folder, includingPropertiesForKeys: nil)
        else {
            throw CurationError.file(path: folder.path, reason: "not a readable folder")
        }
        var paths: [String] = []
        for case let url as URL in walker where videoExtensions.contains(url.pathExtension.lowercased()) {
            paths.append(url.standardizedFileURL.path)
        }
        return paths.sorted()
    }

    /// Adds the videos under `input` and processes every unfinished source with `jobs` workers, then balances.
    public func run(input: URL, jobs: Int = 1) throws {
        let added = try index.addSources(Self.videoFiles(in: input))
        let pending = try index.unfinishedSources()
        log("curate: \(added) new sources, \(pending.count) to process, \(max(1, jobs)) workers")
        let queue = SharedWorkQueue(count: pending.count)
        let workers = max(1, min(jobs, pending.count))
        // Plain threads rather than concurrentPerform, whose width is the core count: workers spend much of their time
        // waiting on the caption API, so more workers than cores is useful.
        let group = DispatchGroup()
        for _ in 0..<workers {
            group.enter()
            let thread = Thread { [self] in
                defer { group.leave() }
                let analyzer: ClipAnalyzer
                do { analyzer = try ClipAnalyzer(config: config, aesthetic: aesthetic) } catch {
                    queue.fail(error)
                    return
                }
                while let i = queue.take() {
                    do { try process(pending[i], analyzer: analyzer) } catch { queue.fail(error) }
                }
            }
            thread.stackSize = 8 << 20
            thread.start()
        }
        group.wait()
        if let error = queue.firstError { throw error }
        try balance()
    }

    /// Processes one source from wherever it stopped.
    func process(_ source: CurationIndex.Source, analyzer: ClipAnalyzer) throws {
        let url = URL(fileURLWithPath: source.path)
        let name = url.lastPathComponent
        var info = source.info
        if info == nil {
            do {
                let probed = try VideoIO.probe(url)
                try index.recordProbe(source: source.id, info: probed)
                info = probed
            } catch let error as VideoIOError {
                try index.finishSource(source.id, status: "failed", stage: "ffmpeg", reason: error.reason)
                log("\(name): ffmpeg error: \(error.reason)")
                return
            }
        }
        guard let info else { return }
        if let reason = ClipFilter.metadataRejection(info, config: config) {
            try index.finishSource(source.id, status: "rejected", stage: "metadata", reason: reason)
            log("\(name): rejected by metadata: \(reason)")
            return
        }
        if source.status != "clipped" {
            do {
                let result = try ShotDetector(config: config, encoder: encoder).detect(url, info: info)
                try index.recordClips(source: source.id, result: result)
            } catch let error as VideoIOError {
                try index.finishSource(source.id, status: "failed", stage: "ffmpeg", reason: error.reason)
                log("\(name): ffmpeg error: \(error.reason)")
                return
            }
        }
        for clip in try index.clips(source: source.id) {
            let missing = ["motion", "ocr", "aesthetic", "phash"].filter { clip.stages[$0] == nil }
            guard !missing.isEmpty else { continue }
            let results = analyzer.analyze(url, span: clip.span, framesPerSecond: info.framesPerSecond)
            try index.recordStages(clip: clip.id, results.filter { missing.contains($0.key) })
        }
        var decisions = try decisions(source: source.id, config: config)
        if let captioner {
            for clip in try index.clips(source: source.id)
            where decisions[clip.id]?.accepted == true && clip.stages["caption"] == nil {
                let result: CurationIndex.StageResult
                do {
                    let keyframes = try analyzer.keyframes(url, span: clip.span)
                    let spread = try VideoIO.decodeFrames(
                        url,
                        options: DecodeOptions(
                            framesPerSecond: Double(config.clipFrames) / max(clip.span.duration, 1e-3),
                            width: config.analysisWidth, start: clip.span.start, end: clip.span.end,
                            maxFrames: config.clipFrames))
                    let caption = try captioner.caption(
                        keyframes: keyframes, clipFrames: spread, motion: clip.stages["motion"]?.score)
                    result = .init(status: "done", detail: caption)
                } catch {
                    result = .init(status: "failed", detail: "\(error)")
                }
                try index.recordStages(clip: clip.id, ["caption": result])
            }
            decisions = try self.decisions(source: source.id, config: config)
        }
        try index.recordDecisions(decisions)
        try index.finishSource(source.id, status: "done")
        let accepted = decisions.values.filter(\.accepted).count
        log("\(name): \(decisions.count) clips, \(accepted) accepted")
    }

    /// Decisions for a source's clips from the stored scores; a clip whose caption failed is rejected by "caption".
    public func decisions(source: Int64, config: CurationConfig) throws -> [Int64: ClipDecision] {
        let clips = try index.clips(source: source)
        var decisions = ClipFilter.decideSource(clips, config: config)
        for clip in clips where decisions[clip.id]?.accepted == true {
            if let caption = clip.stages["caption"], caption.status == "failed" {
                decisions[clip.id] = .reject("caption", caption.detail ?? "failed")
            }
        }
        return decisions
    }

    /// Re-applies `config`'s thresholds to every clipped source from the stored scores (nothing is recomputed) and
    /// rebalances. Sources rejected by the metadata filter stay rejected: their clips were never cut.
    public func reapply(config: CurationConfig) throws {
        for source in try index.sources() where source.status == "done" {
            try index.recordDecisions(try decisions(source: source.id, config: config))
        }
        try balance()
    }

    /// Categories from captions and weights evening them out, over the accepted clips.
    public func balance() throws {
        let accepted = try index.clips().filter { $0.status == "accepted" }
        let balancer = Balancer(humanWeight: config.humanWeight)
        let categories = accepted.map { balancer.category(of: $0.stages["caption"]?.detail ?? "") }
        let weights = balancer.weights(categories: categories)
        var values: [Int64: (String, Double)] = [:]
        for (i, clip) in accepted.enumerated() { values[clip.id] = (categories[i], weights[i]) }
        try index.recordBalance(values)
    }
}

/// The sources' indices handed to curation workers one at a time, and the first error any of them met (after which
/// no more are handed out).
private final class SharedWorkQueue: @unchecked Sendable {
    private let lock = NSLock()
    private var next = 0
    private var error: Error?
    private let count: Int

    init(count: Int) { self.count = count }

    /// The next index, or nil when all are taken or a worker failed.
    func take() -> Int? {
        lock.lock()
        defer { lock.unlock() }
        guard next < count, error == nil else { return nil }
        next += 1
        return next - 1
    }

    /// Records a failure (the first one wins).
    func fail(_ failure: Error) {
        lock.lock()
        if error == nil { error = failure }
        lock.unlock()
    }

    var firstError: Error? {
        lock.lock()
        defer { lock.unlock() }
        return error
    }
}
