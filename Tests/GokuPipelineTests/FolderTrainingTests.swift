import Datasets
import Foundation
import GokuModel
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

/// Training on dataset folders in stages: preparation (resumable, keyed), packed batches within each stage's budget,
/// exact resume inside and across stages, bad rows, and the exported model.
final class FolderTrainingTests: XCTestCase {
    private static var folder: URL!
    private let devNull = FileHandle(forWritingAtPath: "/dev/null")!

    override class func setUp() {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("goku-folder-\(UUID().uuidString)")
        try! TestModels.saveTinyVAE(to: vaeFolder)
        try! TestModels.saveTinyT5(to: textFolder)
        try! makeDataset(at: dataset)
    }

    override class func tearDown() { try? FileManager.default.removeItem(at: folder) }

    static var vaeFolder: URL { folder.appendingPathComponent("vae") }
    static var textFolder: URL { folder.appendingPathComponent("t5") }
    static var dataset: URL { folder.appendingPathComponent("dataset") }

    /// Videos and images at two resolutions: 48×32 MP4 clips of 9 and 13 frames at 8 fps, 32×32 PNG images and
    /// 40×24 ones (cropped to 32×16 under a 32-pixel cap).
    static func makeDataset(at url: URL) throws {
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        var entries: [ManifestEntry] = []
        let random = RandomGenerator(seed: 11)
        let words = ["red", "blue", "green", "circle", "square", "moving", "left", "right"]
        func caption(_ i: Int) -> String { "a \(words[i % 3]) \(words[3 + i % 2]) \(words[5]) \(words[6 + i % 2])" }
        for i in 0..<6 {
            let frames = i % 2 == 0 ? 9 : 13
            let clip = Tensor.rand([3, frames, 32, 48], low: -1, high: 1, generator: random)
            try VideoIO.writeMP4(clip, to: url.appendingPathComponent("v\(i).mp4"), framesPerSecond: 8)
            entries.append(ManifestEntry(file: "v\(i).mp4", caption: caption(i)))
        }
        for i in 0..<6 {
            let (h, w) = i < 3 ? (32, 32) : (24, 40)
            try ImageFile.write(Tensor.rand([3, h, w], low: -1, high: 1, generator: random), to: url.appendingPathComponent("i\(i).png"))
            entries.append(ManifestEntry(file: "i\(i).png", caption: caption(i + 1), weight: i == 0 ? 2 : nil))
        }
        try DatasetFolder.writeManifest(entries, to: url)
    }

    func config(steps: Int, dataset: URL = FolderTrainingTests.dataset) -> GokuTrainingConfig {
        var config = GokuTrainingConfig()
        config.preset = "tiny"
        config.vaeFolder = Self.vaeFolder.path
        config.textEncoderFolder = Self.textFolder.path
        config.maxTextLength = 12
        config.steps = steps
        config.warmupSteps = 1
        config.emaDecay = 0.9
        config.checkpointEvery = 2
        config.captionDropout = 0.3
        config.latentSampling = .posterior
        config.sampling = SamplingDefaults(steps: 2, guidance: 2, sampler: .euler)
        // Stage 1: every sample as an image (first frames of videos), 32-pixel cap; stage 2: joint, clips of ≤ 9 frames.
        config.stages = [
            TrainingStage(name: "images", steps: 3, datasets: [.init(path: dataset.path)], tokenBudget: 8, maxSide: 32, maxFrames: 1),
            TrainingStage(name: "joint", steps: 3, datasets: [.init(path: dataset.path)], tokenBudget: 12, maxSide: 32, maxFrames: 9),
        ]
        config.stages[1].learningRate = 5e-4
        return config
    }

    func testStagedRunResumesExactlyInsideAndAcrossStages() throws {
        let straightRun = Self.folder.appendingPathComponent("straight")
        let straight = try GokuTrainer(config: config(steps: 7), runDirectory: straightRun, showProgress: false)
        XCTAssertEqual(straight.sampleCount, 12)
        try straight.run(showProgress: false, output: devNull)

        // Metrics: each step within its stage's budget; stage 1 packs images only (one latent frame: 2×1 patches of
        // 2×2 for 32×16, 2×2 for 32×32), stage 2 mixes in clips.
        let records = try MetricsLog.records(in: straightRun.appendingPathComponent("metrics.jsonl"))
        XCTAssertEqual(records.count, 7)
        for record in records {
            let step = (record["step"] as! NSNumber).intValue, tokens = (record["tokens"] as! NSNumber).intValue
            XCTAssertLessThanOrEqual(tokens, step <= 3 ? 8 : 12, "step \(step)")
        }
        XCTAssertEqual((records[3]["lr"] as! NSNumber).doubleValue, 5e-4 / 1, accuracy: 1e-12, "stage 2 warms up to its own peak")

        for stop in [2, 3, 5] {
            let run = Self.folder.appendingPathComponent("resumed-\(stop)")
            try GokuTrainer(config: config(steps: stop), runDirectory: run, showProgress: false).run(showProgress: false, output: devNull)
            let resumed = try GokuTrainer(config: config(steps: 7), runDirectory: run, showProgress: false)
            XCTAssertEqual(resumed.step, stop)
            try resumed.run(showProgress: false, output: devNull)
            for (key, value) in straight.transformer.parameterDictionary() {
                XCTAssertEqual(resumed.transformer.parameterDictionary()[key]!.scalars, value.scalars, "stop \(stop): \(key)")
            }
            XCTAssertEqual(
                try Data(contentsOf: run.appendingPathComponent("model/transformer/model.safetensors")),
                try Data(contentsOf: straightRun.appendingPathComponent("model/transformer/model.safetensors")), "stop \(stop)")
        }

        // The exported model generates at the last stage's size and length.
        let bundle = try GokuModelBundle.load(from: straightRun.appendingPathComponent("model"))
        XCTAssertEqual([bundle.index.frames, bundle.index.height, bundle.index.width], [9, 32, 32])
        var options = GenerationOptions(prompt: "a red circle moving left")
        options.seed = 3
        XCTAssertEqual(try bundle.generate(options).video.shape, [3, 9, 32, 32])
    }

    func testPreparationIsKeyedFoundAgainAndResumable() throws {
        let run = Self.folder.appendingPathComponent("keyed")
        try GokuTrainer(config: config(steps: 1), runDirectory: run, showProgress: false).run(showProgress: false, output: devNull)
        let prepared = Self.dataset.appendingPathComponent(".prepared")
        let keys = try FileManager.default.contentsOfDirectory(atPath: prepared.path).sorted()
        XCTAssertEqual(keys.count, 2, "one prepared copy per stage framing: \(keys)")
        let index = prepared.appendingPathComponent(keys[0]).appendingPathComponent(PreparedDataset.indexName)
        let stamp = try FileManager.default.attributesOfItem(atPath: index.path)[.modificationDate] as! Date
        try GokuTrainer(config: config(steps: 1), runDirectory: Self.folder.appendingPathComponent("keyed-2"), showProgress: false)
        XCTAssertEqual(try FileManager.default.attributesOfItem(atPath: index.path)[.modificationDate] as! Date, stamp, "found, not prepared again")

        // A prepared folder given directly must match the stage's framing.
        var direct = config(steps: 1)
        for i in direct.stages.indices { direct.stages[i].datasets = [.init(path: prepared.appendingPathComponent(keys[0]).path)] }
        XCTAssertThrowsError(try GokuTrainer(config: direct, runDirectory: Self.folder.appendingPathComponent("direct"), showProgress: false)) {
            XCTAssertTrue("\($0)".contains("framing"), "\($0)")
        }

        // Preparation stopped after its first shard finishes later with the same bytes as an uninterrupted one.
        let preparer = try DatasetPreparer(vaeFolder: Self.vaeFolder, textEncoderFolder: Self.textFolder, maxTextLength: 12)
        preparer.shardBytes = 4096
        let framing = MediaFraming(maxSide: 32, multiple: 16, framesPerSecond: 8, maxFrames: 9)
        let folder = try DatasetFolder(directory: Self.dataset)
        let whole = Self.folder.appendingPathComponent("prepared-whole"), split = Self.folder.appendingPathComponent("prepared-split")
        _ = try preparer.prepare(folder, framing: framing, output: whole, showProgress: false)
        let plan = try preparer.plan(folder, framing: framing, output: split)
        XCTAssertGreaterThan(plan.shards.count, 2)
        try preparer.encodeShards(plan, folder: folder, output: split, selecting: { $0 == 0 }, showProgress: false)
        XCTAssertThrowsError(try preparer.finish(plan, output: split)) { XCTAssertTrue("\($0)".contains("shard-00001"), "\($0)") }
        XCTAssertThrowsError(try PreparedReader(directory: split)) { XCTAssertTrue("\($0)".contains("unfinished"), "\($0)") }
        _ = try preparer.prepare(folder, framing: framing, output: split, showProgress: false)
        for name in try FileManager.default.contentsOfDirectory(atPath: whole.path) where name.hasSuffix(".safetensors") {
            XCTAssertEqual(
                try Data(contentsOf: split.appendingPathComponent(name)), try Data(contentsOf: whole.appendingPathComponent(name)), name)
        }
        let reader = try PreparedReader(directory: whole)
        XCTAssertEqual(reader.manifest.samples.filter(\.isImage).count, 6)
        XCTAssertEqual(reader.manifest.samples.map { $0.latentShape! }.filter { !$0.isEmpty && $0[1] > 1 }.map { $0[1] }, [3, 3, 3, 3, 3, 3])
        XCTAssertEqual(reader.manifest.samples[9].latentShape, [4, 1, 2, 4], "40×24 → 32×16 → 4×2 latent")
        let sample = try reader.tensors(of: 0)
        XCTAssertEqual(sample.text?.shape[1], 24)
        // Another text encoder length or framing is another key; writing into a folder planned for one is refused.
        let other = MediaFraming(maxSide: 48, multiple: 16, framesPerSecond: 8, maxFrames: 9)
        XCTAssertThrowsError(try preparer.plan(folder, framing: other, output: whole)) { XCTAssertTrue("\($0)".contains("another preparation"), "\($0)") }
    }

    func testBadRowsStopTheRunBeforeTrainingUnlessSkipped() throws {
        let bad = Self.folder.appendingPathComponent("bad-dataset")
        try FileManager.default.copyItem(at: Self.dataset, to: bad)
        try? FileManager.default.removeItem(at: bad.appendingPathComponent(".prepared"))
        let manifest = bad.appendingPathComponent(DatasetFolder.manifestName)
        var text = try String(contentsOf: manifest, encoding: .utf8)
        text += #"{"file":"gone.mp4","caption":"a missing clip"}"# + "\n" + #"{"file":"i1.png","caption":""}"# + "\n"
        try Data(text.utf8).write(to: manifest)
        let run = Self.folder.appendingPathComponent("bad-run")
        XCTAssertThrowsError(try GokuTrainer(config: config(steps: 1, dataset: bad), runDirectory: run, showProgress: false)) { error in
            XCTAssertTrue("\(error)".contains("manifest.jsonl:13 (gone.mp4): missing file"), "\(error)")
            XCTAssertTrue("\(error)".contains("manifest.jsonl:14 (i1.png): empty caption"), "\(error)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: run.appendingPathComponent("checkpoints/step-00000001").path))
        var skipping = config(steps: 1, dataset: bad)
        skipping.skipBadRows = true
        let trainer = try GokuTrainer(config: skipping, runDirectory: Self.folder.appendingPathComponent("bad-skipped"), showProgress: false)
        XCTAssertEqual(trainer.sampleCount, 12)
    }
}
