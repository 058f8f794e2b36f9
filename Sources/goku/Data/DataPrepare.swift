import ArgumentParser
import Checkpoint
import Datasets
import Foundation
import GokuModel
import GokuPipeline
import ShapesRecipe
import TensorCore
import VideoVAE

/// `goku data prepare DIR`: encodes a dataset folder once into VAE latents (and text states of a frozen encoder) in
/// safetensors shards that training streams.
struct DataPrepare: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prepare",
        abstract: "Encode a dataset folder (manifest.jsonl + media) into prepared latent shards for training.",
        discussion: """
            Each file is scaled so its longest side is at most --max-side (never up), centre-cropped to multiples of
            --multiple, and a video sampled at --fps to at most --max-frames frames, cut to 1 + 4k (see MediaFraming).
            The output (default DIR/.prepared/KEY, KEY naming the models, framing and manifest) is resumable: run the
            same command again after a kill and only missing shards are encoded. --jobs N runs N worker processes.
            goku train finds the prepared copy by itself when its stage has the same framing.
            """)

    @Argument(help: "The dataset folder (manifest.jsonl + media).")
    var dataset: String

    @Option(help: "A training config: prepare for its VAE, frozen text encoder and every stage's framing, where goku train looks.")
    var config: String?

    @Option(help: "A trained VAE folder (diffusers layout).")
    var vae = "models/goku-shapes/vae"

    @Option(help: "A frozen T5 folder whose text states to store (omit to keep captions as text only).")
    var textEncoder: String?

    @Option(help: "Tokens per caption when text states are stored.")
    var maxTextLength = 24

    @Option(help: "Longest side after scaling, pixels.")
    var maxSide = 256

    @Option(help: "Width and height are cut to multiples of this (VAE downsampling × patch size).")
    var multiple = 16

    @Option(help: "Frames per second videos are sampled at (0: their own rate).")
    var fps = 8.0

    @Option(help: "Most frames per clip, 1 + 4k.")
    var maxFrames = 17

    @Option(help: "Output folder (default: DATASET/.prepared/KEY).")
    var output: String?

    @Option(help: "Target shard size in MiB (fractions allowed).")
    var shardMib = 256.0

    @Option(help: "Worker processes.")
    var jobs = 1

    @Flag(help: "Skip manifest rows that cannot be used (missing or undecodable files, empty captions) and count them.")
    var skipBad = false

    @Option(help: "Worker threads per process (default: all cores divided among the jobs).")
    var threads: Int?

    @Option(help: .hidden) var worker: Int?

    func validate() throws {
        guard jobs >= 1 && jobs <= 256 else { throw ValidationError("--jobs must be 1 to 256, got \(jobs)") }
        guard shardMib > 0 && shardMib.isFinite else { throw ValidationError("--shard-mib must be positive") }
        guard fps >= 0 && fps.isFinite else { throw ValidationError("--fps must be ≥ 0") }
        guard maxTextLength >= 2 && maxTextLength <= 512 else { throw ValidationError("--max-text-length must be 2 to 512") }
        if let worker, !(0..<jobs).contains(worker) { throw ValidationError("--worker must be in 0..<\(jobs)") }
    }

    func run() throws {
        Parallel.threadCount = threads ?? max(1, Parallel.threadCount / jobs)
        if let config {
            // Each of the config's framings, as `goku train` would prepare them.
            guard output == nil, worker == nil else { throw ValidationError("--config prepares into the dataset's .prepared folder; drop --output") }
            let training = try ShapesTrainingRecipe.read(from: URL(fileURLWithPath: config)).config
            guard !training.stages.isEmpty else { throw ValidationError("\(config) has no stages") }
            let vaeConfig = try ConfigFile.read(VideoVAEConfig.self, from: URL(fileURLWithPath: training.vaeFolder))
            let patch = (training.transformer ?? GokuConfig.presets[training.preset]!).patchSize[1]
            var seen: Set<MediaFraming> = []
            for stage in training.stages {
                let framing = stage.framing(multiple: vaeConfig.spatialCompression * patch)
                guard seen.insert(framing).inserted else { continue }
                var one = self
                one.config = nil
                one.vae = training.vaeFolder
                one.textEncoder = training.textEncoderFolder
                one.maxTextLength = training.maxTextLength
                one.maxSide = framing.maxSide
                one.multiple = framing.multiple
                one.fps = framing.framesPerSecond ?? 0
                one.maxFrames = framing.maxFrames
                print("stage '\(stage.name)':")
                try one.run()
            }
            return
        }
        let framing = MediaFraming(maxSide: maxSide, multiple: multiple, framesPerSecond: fps > 0 ? fps : nil, maxFrames: maxFrames)
        do { try framing.validate() } catch { throw ValidationError("\(error)") }
        let datasetURL = URL(fileURLWithPath: dataset)
        let folder = try DatasetFolder(directory: datasetURL, options: .init(skipBad: skipBad, framing: framing))
        let preparer = try DatasetPreparer(
            vaeFolder: URL(fileURLWithPath: vae), textEncoderFolder: textEncoder.map { URL(fileURLWithPath: $0) },
            maxTextLength: maxTextLength)
        preparer.shardBytes = max(1, Int(shardMib * 1_048_576))
        let key = preparer.identity(of: folder, framing: framing).key
        let outputURL = output.map { URL(fileURLWithPath: $0) } ?? DatasetPreparer.defaultLocation(dataset: datasetURL, key: key)
        let plan = try preparer.plan(folder, framing: framing, output: outputURL)
        if let worker {
            try preparer.encodeShards(plan, folder: folder, output: outputURL, selecting: { $0 % jobs == worker }, showProgress: false)
            return
        }
        if worker == nil && !folder.skipped.isEmpty {
            print("skipped \(folder.skipped.count) bad rows of \(folder.skipped.count + folder.rows.count):")
            for problem in folder.skipped.prefix(10) { print("  \(problem)") }
        }
        let start = Date()
        print("preparing \(folder.rows.count) samples in \(plan.shards.count) shards into \(outputURL.path)")
        if jobs == 1 {
            try preparer.encodeShards(plan, folder: folder, output: outputURL)
        } else {
            try runWorkers(output: outputURL)
        }
        let reader = try preparer.finish(plan, output: outputURL)
        let images = reader.manifest.samples.filter(\.isImage).count
        print(String(
            format: "prepared %d samples (%d images, %d videos) in %.1f s: %@", reader.manifest.samples.count, images,
            reader.manifest.samples.count - images, Date().timeIntervalSince(start), outputURL.path))
    }

    /// Starts `jobs` copies of this command as workers on the same plan and waits for them all.
    func runWorkers(output: URL) throws {
        let perJob = max(1, Parallel.threadCount)
        var processes: [Process] = []
        for k in 0..<jobs {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: ThisExecutable.path)
            var arguments = ["data", "prepare", dataset, "--vae", vae, "--max-text-length", "\(maxTextLength)",
                "--max-side", "\(maxSide)", "--multiple", "\(multiple)", "--fps", "\(fps)", "--max-frames", "\(maxFrames)",
                "--output", output.path, "--shard-mib", "\(shardMib)", "--jobs", "\(jobs)", "--worker", "\(k)",
                "--threads", "\(perJob)"]
            if let textEncoder { arguments += ["--text-encoder", textEncoder] }
            if skipBad { arguments.append("--skip-bad") }
            process.arguments = arguments
            try process.run()
            processes.append(process)
        }
        var failed: [Int] = []
        for (k, process) in processes.enumerated() {
            process.waitUntilExit()
            if process.terminationStatus != 0 { failed.append(k) }
        }
        guard failed.isEmpty else {
            throw ValidationError("prepare workers \(failed) failed; run the same command again to finish the missing shards")
        }
    }
}
