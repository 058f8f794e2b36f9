import Foundation
import TensorCore
import TestSupport
import Training
import ShapesRecipe
import VAETraining
import VideoVAE
import XCTest

/// The same few clips every step, so a decreasing loss shows learning rather than easier data.
private struct FixedClips: ClipSource {
    let videos: [Tensor]
    let images: [Tensor]

    init(size: Int, frames: Int) throws {
        let source = try ShapesClipSource(ShapesDataOptions(seed: 3, width: size, height: size, frames: frames))
        videos = try (0..<2).map { try source.video(at: $0) }
        images = try (0..<2).map { try source.image(at: $0) }
    }

    func video(at index: Int) throws -> Tensor { videos[index % videos.count] }
    func image(at index: Int) throws -> Tensor { images[index % images.count] }
}

final class VAETrainerTests: XCTestCase {
    private var folder: URL!

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("goku-vae-train-\(UUID().uuidString)")
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: folder) }

    private func tinyConfig(steps: Int) -> VAETrainingConfig {
        var config = VAETrainingConfig()
        config.preset = "tiny"
        config.shapes = ShapesDataOptions(seed: 5, width: 16, height: 16, frames: 5)
        config.videosPerBatch = 1
        config.imagesPerBatch = 2
        config.steps = steps
        config.learningRate = 3e-3
        config.warmupSteps = 2
        config.emaDecay = 0.9
        config.checkpointEvery = 2
        config.evaluateEvery = 0
        config.evaluationSamples = 1
        return config
    }

    /// On fixed clips the reconstruction error falls well below its starting value.
    func testLossDecreasesOnFixedClips() throws {
        var config = tinyConfig(steps: 40)
        config.decay = .constant
        let clips = try FixedClips(size: 16, frames: 5)
        let trainer = try VAETrainer(config: config, runDirectory: folder, data: clips, heldOut: clips)
        var losses: [Double] = []
        for _ in 0..<40 { losses.append(try trainer.trainStep().l2) }
        let first = losses.prefix(3).reduce(0, +) / 3, last = losses.suffix(3).reduce(0, +) / 3
        XCTAssertLessThan(last, 0.5 * first, "l2 went from \(first) to \(last)")
    }

    /// Four steps straight and two steps, a new process-like trainer, then two more give identical weights; the run
    /// writes a loadable diffusers folder and a metrics log with one line per step (plus the final evaluation).
    func testResumeEqualsUninterruptedRun() throws {
        let straightFolder = folder.appendingPathComponent("straight")
        let straight = try shapesTrainer(tinyConfig(steps: 4), straightFolder)
        try straight.run(showProgress: false, output: FileHandle(forWritingAtPath: "/dev/null")!)

        let resumedFolder = folder.appendingPathComponent("resumed")
        let firstHalf = try shapesTrainer(tinyConfig(steps: 2), resumedFolder)
        try firstHalf.run(showProgress: false, output: FileHandle(forWritingAtPath: "/dev/null")!)
        let secondHalf = try shapesTrainer(tinyConfig(steps: 4), resumedFolder)
        XCTAssertEqual(secondHalf.step, 2)
        try secondHalf.run(showProgress: false, output: FileHandle(forWritingAtPath: "/dev/null")!)

        let a = straight.vae.parameterDictionary(), b = secondHalf.vae.parameterDictionary()
        for (key, value) in a { XCTAssertEqual(b[key]!.scalars, value.scalars, key) }

        let exported = try VideoAutoencoder.load(from: resumedFolder.appendingPathComponent("vae"))
        XCTAssertGreaterThan(exported.config.scalingFactor, 0)
        let lines = try String(contentsOf: resumedFolder.appendingPathComponent("metrics.jsonl"), encoding: .utf8)
            .split(separator: "\n")
        XCTAssertTrue(lines.contains { $0.contains("\"step\":3,") }, "metrics log: \(lines)")
    }

    /// The video weight multiplies the videos' part of the step loss and nothing else: with the images' part held
    /// out (no images), a first step with weight 3 reports three times the loss of weight 1 on the same data and
    /// initial weights; zero or negative weights are refused.
    func testVideoLossWeightScalesTheVideoLoss() throws {
        let clips = try FixedClips(size: 16, frames: 5)
        func firstLoss(_ weight: Double) throws -> VAEStepLosses {
            var config = tinyConfig(steps: 1)
            config.imagesPerBatch = 0
            config.videoLossWeight = weight
            let run = folder.appendingPathComponent("w\(weight)")
            return try VAETrainer(config: config, runDirectory: run, data: clips, heldOut: clips).trainStep()
        }
        let plain = try firstLoss(1), weighted = try firstLoss(3)
        XCTAssertEqual(weighted.l2, plain.l2, accuracy: 1e-9 * plain.l2, "same reconstruction before any update")
        XCTAssertEqual(weighted.total, 3 * plain.total, accuracy: 1e-6 * plain.total)
        var bad = tinyConfig(steps: 1)
        bad.videoLossWeight = 0
        XCTAssertThrowsError(try bad.validate()) { error in
            XCTAssertTrue("\(error)".contains("videoLossWeight"), "\(error)")
        }
    }

    /// A run folder refuses a changed config; unknown fields and bad frame counts are named.
    func testConfigErrors() throws {
        _ = try shapesTrainer(tinyConfig(steps: 2), folder)
        var changed = tinyConfig(steps: 2)
        changed.learningRate = 1
        XCTAssertThrowsError(try shapesTrainer(changed, folder)) { error in
            XCTAssertTrue("\(error)".contains("another config"), "\(error)")
        }

        let file = folder.appendingPathComponent("bad.json")
        try Data(#"{"stepz": 3}"#.utf8).write(to: file)
        XCTAssertThrowsError(try VAETrainingConfig.read(from: file)) { error in
            XCTAssertTrue("\(error)".contains("stepz"), "\(error)")
        }
        try Data(#"{"preset": "tiny", "shapes": {"seed": 1, "width": 16, "height": 16, "frames": 6}}"#.utf8).write(to: file)
        XCTAssertThrowsError(try VAETrainingConfig.read(from: file)) { error in
            XCTAssertTrue("\(error)".contains("shapes.frames"), "\(error)")
        }
    }

    /// A run that starts from a trained VAE with the encoder fixed trains the decoder alone: the exported encoder
    /// (and its latent scaling) is the source's bit for bit, the decoder moved, and the reconstruction error on the
    /// training clips fell. A fixed encoder without a source, and a source of another architecture, are refused.
    func testDecoderTrainsAloneWithTheEncoderFixed() throws {
        let clips = try FixedClips(size: 16, frames: 5)
        let sourceRun = folder.appendingPathComponent("source")
        try VAETrainer(config: tinyConfig(steps: 2), runDirectory: sourceRun, data: clips, heldOut: clips)
            .run(showProgress: false, output: FileHandle(forWritingAtPath: "/dev/null")!)
        let sourceFolder = sourceRun.appendingPathComponent("vae")
        let source = try VideoAutoencoder.load(from: sourceFolder)

        var config = tinyConfig(steps: 12)
        config.initializeFrom = sourceFolder.path
        config.trainEncoder = false
        config.decay = .constant
        let decoderRun = folder.appendingPathComponent("decoder")
        let trainer = try VAETrainer(config: config, runDirectory: decoderRun, data: clips, heldOut: clips)
        var losses: [Double] = []
        for _ in 0..<12 { losses.append(try trainer.trainStep().l2) }
        XCTAssertLessThan(losses.suffix(2).reduce(0, +), losses.prefix(2).reduce(0, +), "l2: \(losses)")
        try trainer.exportVAE(to: decoderRun.appendingPathComponent("vae"))
        let exported = try VideoAutoencoder.load(from: decoderRun.appendingPathComponent("vae"))

        XCTAssertEqual(exported.config.scalingFactor, source.config.scalingFactor)
        let before = source.parameterDictionary(), after = exported.parameterDictionary()
        var decoderMoved = 0
        for (key, value) in before {
            if key.hasPrefix("encoder.") || key.hasPrefix("quant_conv.") {
                XCTAssertEqual(after[key]!.scalars, value.scalars, key)
            } else if after[key]!.scalars != value.scalars {
                decoderMoved += 1
            }
        }
        XCTAssertGreaterThan(decoderMoved, 0, "no decoder weight changed")

        var unanchored = tinyConfig(steps: 1)
        unanchored.trainEncoder = false
        XCTAssertThrowsError(try unanchored.validate()) { error in
            XCTAssertTrue("\(error)".contains("trainEncoder"), "\(error)")
        }
        var mismatched = tinyConfig(steps: 1)
        mismatched.preset = "small"
        mismatched.shapes = ShapesDataOptions(seed: 5, width: 64, height: 64, frames: 5)
        mismatched.initializeFrom = sourceFolder.path
        XCTAssertThrowsError(try shapesTrainer(mismatched, folder.appendingPathComponent("m"))) {
            error in XCTAssertTrue("\(error)".contains("initializeFrom"), "\(error)")
        }
    }

    /// A run with a whole-frame phase trains on crops until its last `wholeFrameSteps` steps and on whole clips
    /// from there; its EMA restarts when the phase begins, so after one whole-frame step the exported (EMA) weights
    /// are the raw weights, which they are not without the phase. The phase needs crops and fits in the run.
    func testWholeFramePhaseEndsTheRun() throws {
        var config = tinyConfig(steps: 3)
        config.cropSize = 8
        config.wholeFrameSteps = 1
        config.checkpointEvery = 0
        let trainer = try shapesTrainer(config, folder.appendingPathComponent("phase"))
        XCTAssertEqual(trainer.wholeFramePhaseStart, 2)
        for step in 0..<3 {
            let side = step < 2 ? 8 : 16
            XCTAssertEqual(try trainer.batch(forStep: step, images: false).shape, [1, 3, 5, side, side], "step \(step)")
            XCTAssertEqual(try trainer.batch(forStep: step, images: true).shape, [2, 3, 1, side, side], "step \(step)")
        }
        try trainer.run(showProgress: false, output: FileHandle(forWritingAtPath: "/dev/null")!)
        func largestGap(_ run: VAETrainer) throws -> Float {
            let exported = try VideoAutoencoder.load(from: run.runDirectory.appendingPathComponent("vae"))
                .parameterDictionary()
            var gap: Float = 0
            for (key, raw) in run.vae.parameterDictionary() {
                for (a, b) in zip(raw.scalars, exported[key]!.scalars) { gap = max(gap, abs(a - b)) }
            }
            return gap
        }
        XCTAssertLessThan(try largestGap(trainer), 1e-6, "the EMA restarted at the raw weights")

        config.wholeFrameSteps = 0
        let cropsOnly = try shapesTrainer(config, folder.appendingPathComponent("crops"))
        XCTAssertNil(cropsOnly.wholeFramePhaseStart)
        try cropsOnly.run(showProgress: false, output: FileHandle(forWritingAtPath: "/dev/null")!)
        XCTAssertGreaterThan(try largestGap(cropsOnly), 1e-4, "without the phase the EMA lags the raw weights")

        config.wholeFrameSteps = 4
        XCTAssertThrowsError(try config.validate()) { XCTAssertTrue("\($0)".contains("wholeFrameSteps"), "\($0)") }
        config.wholeFrameSteps = 1
        config.cropSize = nil
        XCTAssertThrowsError(try config.validate()) { XCTAssertTrue("\($0)".contains("wholeFrameSteps"), "\($0)") }
    }

    /// A run resumed from the checkpoint taken where its whole-frame phase begins ends with the weights and the
    /// exported (EMA) VAE of the uninterrupted run: the phase and the EMA's restart follow the step, not the process.
    func testResumeAtTheWholeFramePhase() throws {
        var config = tinyConfig(steps: 4)
        config.cropSize = 8
        config.wholeFrameSteps = 2
        let fm = FileManager.default
        let straightFolder = folder.appendingPathComponent("straight")
        let straight = try shapesTrainer(config, straightFolder)
        try straight.run(showProgress: false, output: FileHandle(forWritingAtPath: "/dev/null")!)

        let resumedFolder = folder.appendingPathComponent("resumed")
        try fm.createDirectory(at: resumedFolder, withIntermediateDirectories: true)
        for name in ["run.json", "metrics.jsonl"] {
            try fm.copyItem(at: straightFolder.appendingPathComponent(name), to: resumedFolder.appendingPathComponent(name))
        }
        let checkpoint = "checkpoints/" + CheckpointStore.folderName(step: 2)
        try fm.createDirectory(at: resumedFolder.appendingPathComponent("checkpoints"), withIntermediateDirectories: true)
        try fm.copyItem(at: straightFolder.appendingPathComponent(checkpoint), to: resumedFolder.appendingPathComponent(checkpoint))
        let resumed = try shapesTrainer(config, resumedFolder)
        XCTAssertEqual(resumed.step, 2)
        try resumed.run(showProgress: false, output: FileHandle(forWritingAtPath: "/dev/null")!)

        let a = straight.vae.parameterDictionary(), b = resumed.vae.parameterDictionary()
        for (key, value) in a { XCTAssertEqual(b[key]!.scalars, value.scalars, key) }
        let exportedA = try VideoAutoencoder.load(from: straightFolder.appendingPathComponent("vae")).parameterDictionary()
        let exportedB = try VideoAutoencoder.load(from: resumedFolder.appendingPathComponent("vae")).parameterDictionary()
        for (key, value) in exportedA { XCTAssertEqual(exportedB[key]!.scalars, value.scalars, "EMA \(key)") }
    }

    /// Crops are windows of the whole clip, the same for the same index, spread over the frame, and checked.
    func testCropsAreDeterministicWindowsOfTheClip() throws {
        let whole = try ShapesClipSource(ShapesDataOptions(seed: 2, width: 32, height: 24, frames: 5))
        let crops = CroppedClipSource(whole, size: 16, seed: 7)
        var offsets = Set<[Int]>()
        for index in 0..<12 {
            let clip = try whole.video(at: index), crop = try crops.video(at: index)
            XCTAssertEqual(crop.shape, [3, 5, 16, 16])
            XCTAssertEqual(crop.scalars, try crops.video(at: index).scalars, "same index, same crop")
            // Find the window by exhaustive search: exactly the crop's pixels.
            var found: [Int]?
            for top in 0...8 { for left in 0...16 where found == nil {
                if clip.slice(axis: 2, top, top + 16).slice(axis: 3, left, left + 16).scalars == crop.scalars {
                    found = [top, left]
                }
            } }
            offsets.insert(try XCTUnwrap(found, "crop \(index) is not a window of its clip"))
            XCTAssertEqual(try crops.image(at: index).shape, [3, 1, 16, 16])
        }
        XCTAssertGreaterThan(offsets.count, 4, "crop positions vary")

        var config = tinyConfig(steps: 1)
        config.cropSize = 12
        XCTAssertThrowsError(try config.validate()) { XCTAssertTrue("\($0)".contains("cropSize"), "\($0)") }
        config.cropSize = 24
        XCTAssertThrowsError(try config.validate()) { XCTAssertTrue("\($0)".contains("cropSize"), "\($0)") }
        config.cropSize = 8
        XCTAssertNoThrow(try config.validate())
    }

    /// With several candidate windows the busiest is kept: the first candidate is the single draw's window, so the
    /// kept window varies at least as much, and it is still a window of the clip.
    func testCropCandidatesKeepTheBusiestWindow() throws {
        let whole = try ShapesClipSource(ShapesDataOptions(seed: 4, width: 64, height: 64, frames: 5))
        let single = CroppedClipSource(whole, size: 32, seed: 9)
        let busiest = CroppedClipSource(whole, size: 32, candidates: 8, seed: 9)
        var gained = 0
        for index in 0..<12 {
            let a = try single.image(at: index), b = try busiest.image(at: index)
            XCTAssertEqual(b.shape, [3, 1, 32, 32])
            XCTAssertGreaterThanOrEqual(CroppedClipSource.variance(b), CroppedClipSource.variance(a))
            if CroppedClipSource.variance(b) > CroppedClipSource.variance(a) { gained += 1 }
            XCTAssertEqual(b.scalars, try busiest.image(at: index).scalars, "deterministic")
            let clip = try whole.image(at: index)
            var found = false
            for top in 0...32 { for left in 0...32 where !found {
                found = clip.slice(axis: 2, top, top + 32).slice(axis: 3, left, left + 32).scalars == b.scalars
            } }
            XCTAssertTrue(found, "crop \(index) is a window of its image")
        }
        XCTAssertGreaterThan(gained, 3, "more candidates find busier windows")
    }

    /// The chroma term against its closed form: zero for an error equal in the three channels; for a pure red error
    /// of 1, Cb = −0.1687 and Cr = 0.5; its gradient against finite differences.
    func testChromaSquaredError() {
        let grey = Tensor.full([2, 3, 1, 2, 2], 0.3)
        XCTAssertEqual(Double(ReconstructionMetrics.chromaSquaredError(grey).item()), 0, accuracy: 1e-7)
        var red = [Float](repeating: 0, count: 3 * 4)
        for p in 0..<4 { red[p] = 1 }
        let e = Tensor(shape: [1, 3, 1, 2, 2], scalars: red)
        XCTAssertEqual(
            Double(ReconstructionMetrics.chromaSquaredError(e).item()), 0.1687 * 0.1687 + 0.25, accuracy: 1e-6)
        GradientCheck.check(GradientCheck.inputs([[2, 3, 1, 2, 3]], seed: 4), "chroma") {
            ReconstructionMetrics.chromaSquaredError($0[0])
        }
    }

    /// PSNR against its closed form: a uniform error of 0.1 on the [−1, 1] scale is an MSE of 0.0025 on [0, 1].
    func testPSNR() {
        let x = Tensor.rand([3, 2, 4, 4], low: -0.5, high: 0.5, generator: RandomGenerator(seed: 1))
        XCTAssertEqual(ReconstructionMetrics.psnr(x + 0.1, x), 10 * log10(1 / 0.0025), accuracy: 1e-3)
        XCTAssertEqual(ReconstructionMetrics.psnr(x, x), .infinity)
    }

    /// Without a dataset folder or clip sources there is nothing to train on: a clear error, not a default dataset.
    func testNoDataIsAnError() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("vae-nodata-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        XCTAssertThrowsError(try VAETrainer(config: tinyConfig(steps: 1), runDirectory: folder)) { error in
            XCTAssertTrue("\(error)".contains("dataFolder") && "\(error)".contains("no training data"), "\(error)")
        }
    }
}

/// A trainer on the Shapes recipe's clips (what `goku vae train` gives a config without `dataFolder`).
func shapesTrainer(_ config: VAETrainingConfig, _ runDirectory: URL) throws -> VAETrainer {
    try VAETrainer(
        config: config, runDirectory: runDirectory, data: try ShapesClipSource(config.resolvedShapes),
        heldOut: try ShapesClipSource(config.resolvedShapes, heldOut: true))
}
