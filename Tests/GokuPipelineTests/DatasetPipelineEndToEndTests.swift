import Curation
import Datasets
import Foundation
import GokuPipeline
import Media
import ShapesRecipe
import TensorCore
import TestSupport
import TextEncoder
import Training
import VideoIO
import VideoVAE
import XCTest

/// The whole data path with the release binary, as a user runs it: ffmpeg-made videos → `goku curate run` and
/// `export` → captions written into the manifest, images added → `goku data prepare` (killed, then resumed) →
/// `goku train` (two stages, images then joint, at two resolutions; killed, then resumed) → `goku generate` from the
/// run's exported model. Each kill is a SIGKILL mid-work; the resumed results equal an uninterrupted run's bit for bit.
final class DatasetPipelineEndToEndTests: XCTestCase {
    let root = TestCommands.root
    var goku: URL { TestCommands.releaseGoku }

    @discardableResult
    func runGoku(_ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = goku
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        try process.run()
        let text = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0, "goku \(arguments.joined(separator: " ")): \(text)")
        return text
    }

    /// Starts `goku arguments`, SIGKILLs it as soon as `appeared` exists, and returns whether it was killed before it
    /// finished by itself.
    func killGoku(_ arguments: [String], when appeared: URL) throws -> Bool {
        let process = Process()
        process.executableURL = goku
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(300)
        while process.isRunning && Date() < deadline {
            if FileManager.default.fileExists(atPath: appeared.path) {
                kill(process.processIdentifier, SIGKILL)
                break
            }
            usleep(200)
        }
        process.waitUntilExit()
        return process.terminationReason == .uncaughtSignal
    }

    func testCurateExportPrepareTrainGenerateWithKills() throws {
        guard FileManager.default.isExecutableFile(atPath: goku.path) else {
            return XCTFail("needs the release goku binary: run swift build -c release first (scripts/test.sh does)")
        }
        let work = try TestMedia.folder("data-path")
        // Sources: two shots with a hard cut (320×240), and one 400×240 shot of another aspect ratio.
        let media = work.appendingPathComponent("media")
        try FileManager.default.createDirectory(at: media, withIntermediateDirectories: true)
        try TestMedia.ffmpeg([
            "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=24:duration=2.5", "-f", "lavfi", "-i",
            "mandelbrot=size=320x240:rate=24", "-t", "5", "-filter_complex", "[0][1]concat=n=2:v=1[v]", "-map", "[v]",
            "-c:v", "libx264", "-pix_fmt", "yuv420p", media.appendingPathComponent("cuts.mp4").path,
        ])
        try TestMedia.make(
            media.appendingPathComponent("wide.mp4"), source: "testsrc=size=400x240:rate=24:duration=3",
            extra: ["-vf", "hue=H=2*PI*t"])
        var curation = CurationConfig()
        curation.minimumShorterSide = 200
        curation.minimumBitRateKbps = 50
        curation.minimumDuration = 2
        curation.detectorWidth = 128
        curation.analysisWidth = 160
        curation.motionWidth = 64
        curation.motionPairs = 2
        curation.minimumClipDuration = 1
        curation.minimumMotion = 0
        curation.maximumTextCoverage = 1
        let curationConfig = work.appendingPathComponent("curation.json")
        try JSONEncoder().encode(curation).write(to: curationConfig)
        let curated = work.appendingPathComponent("curated")
        try runGoku(["curate", "run", "--input", media.path, "--output", curated.path, "--config", curationConfig.path])
        try runGoku(["curate", "export", "--output", curated.path])

        // A user's captions for the exported clips, and images of their own beside them.
        let dataset = curated.appendingPathComponent("dataset")
        let exported = try DatasetFolder(directory: dataset, options: .init(requireCaptions: false))
        XCTAssertGreaterThanOrEqual(exported.rows.count, 3, "curation kept the shots")
        var entries = exported.rows.map(\.entry)
        for i in entries.indices { entries[i].caption = "a colourful test pattern, shot \(i)" }
        let random = RandomGenerator(seed: 5)
        for i in 0..<4 {
            let file = "still\(i).png"
            try ImageFile.write(Tensor.rand([3, 48, 48], low: -1, high: 1, generator: random), to: dataset.appendingPathComponent(file))
            entries.append(ManifestEntry(file: file, caption: "a still picture \(i)"))
        }
        try DatasetFolder.writeManifest(entries, to: dataset)

        // Tiny models: a VAE and a frozen T5 of random weights.
        let vae = work.appendingPathComponent("vae"), t5 = work.appendingPathComponent("t5")
        try TestModels.saveTinyVAE(to: vae)
        try TestModels.saveTinyT5(to: t5)

        // Prepare the joint stage's framing, killed after its first shard, then resumed; the same bytes as a whole run.
        let prepare = [
            "data", "prepare", dataset.path, "--vae", vae.path, "--text-encoder", t5.path, "--max-text-length", "12",
            "--max-side", "64", "--max-frames", "9", "--fps", "8", "--shard-mib", "0.002",
        ]
        let whole = work.appendingPathComponent("prepared-whole"), resumed = work.appendingPathComponent("prepared-resumed")
        try runGoku(prepare + ["--output", whole.path])
        let killed = try killGoku(prepare + ["--output", resumed.path], when: resumed.appendingPathComponent("shard-00000.safetensors"))
        try runGoku(prepare + ["--output", resumed.path])
        let names = try FileManager.default.contentsOfDirectory(atPath: whole.path).filter { !$0.hasPrefix(".") }.sorted()
        XCTAssertTrue(names.contains("shard-00001.safetensors"), "several shards: \(names)")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: resumed.path).filter { !$0.hasPrefix(".") }.sorted(), names)
        for name in names where name != PreparedDataset.indexName && name != PreparedDataset.planName {
            XCTAssertEqual(try Data(contentsOf: resumed.appendingPathComponent(name)), try Data(contentsOf: whole.appendingPathComponent(name)), name)
        }
        print("prepare killed mid-run: \(killed)")

        // Train: images (every sample's first frame) then joint clips; 64-pixel cap, so 64×48 clips, 80×48 → 64×32
        // ones and 48×48 images.
        var config = GokuTrainingConfig()
        config.preset = "tiny"
        config.vaeFolder = vae.path
        config.textEncoderFolder = t5.path
        config.maxTextLength = 12
        config.steps = 120
        config.warmupSteps = 2
        config.emaDecay = 0.9
        config.checkpointEvery = 10
        config.sampling = SamplingDefaults(steps: 2, guidance: 2, sampler: .euler)
        config.stages = [
            TrainingStage(name: "images", steps: 40, datasets: [.init(path: "unused")], tokenBudget: 48, maxSide: 64, maxFrames: 1),
            TrainingStage(name: "joint", steps: 80, datasets: [.init(path: "unused")], tokenBudget: 96, maxSide: 64, maxFrames: 9),
        ]
        let configURL = work.appendingPathComponent("train.json")
        let encoder = JSONEncoder()
        encoder.outputFormatting = .prettyPrinted
        try encoder.encode(config).write(to: configURL)
        let train = ["train", "--config", configURL.path, "--data", dataset.path, "--threads", "1"]
        let straight = work.appendingPathComponent("run-straight"), interrupted = work.appendingPathComponent("run-killed")
        try runGoku(train + ["--output", straight.path])
        // Killed once inside each stage: after its checkpoint at step 20, and at step 60.
        var kills = 0
        for step in [20, 60] {
            let marker = interrupted.appendingPathComponent("checkpoints/step-000000\(step)/state.json")
            if try killGoku(train + ["--output", interrupted.path], when: marker) { kills += 1 }
        }
        try runGoku(train + ["--output", interrupted.path])
        print("train killed mid-run: \(kills) of 2")
        for part in ["transformer/model.safetensors", "model_index.json"] {
            XCTAssertEqual(
                try Data(contentsOf: interrupted.appendingPathComponent("model/\(part)")),
                try Data(contentsOf: straight.appendingPathComponent("model/\(part)")), part)
        }
        let records = try MetricsLog.records(in: interrupted.appendingPathComponent("metrics.jsonl"))
        XCTAssertEqual(records.map { ($0["step"] as! NSNumber).intValue }, Array(1...120), "one record per step after resuming")

        // Generate from the exported model: the last stage's size and length.
        let output = work.appendingPathComponent("clip.gif")
        try runGoku(["generate", "a colourful test pattern", "--model", straight.appendingPathComponent("model").path, "-o", output.path, "--seed", "1"])
        XCTAssertEqual(try VideoFile.read(output).shape, [3, 9, 64, 64])
    }
}
