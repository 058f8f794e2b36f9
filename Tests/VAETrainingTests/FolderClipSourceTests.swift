import Datasets
import Foundation
import Media
import TensorCore
import TestSupport
import Training
import VAETraining
import VideoIO
import VideoVAE
import XCTest

/// VAE training on a dataset folder: the clips are the files decoded under `MediaFraming` and centre-cropped, each
/// epoch a permutation, the last rows held out; a tiny run trains, resumes exactly and exports.
final class FolderClipSourceTests: XCTestCase {
    /// A (3, T, H, W) clip in [−1, 1] whose pattern depends on `variant`, so that every file differs.
    static func clip(frames: Int, height: Int, width: Int, variant: Int) -> Tensor {
        var scalars = [Float](repeating: 0, count: 3 * frames * height * width)
        for c in 0..<3 {
            for t in 0..<frames {
                for y in 0..<height {
                    for x in 0..<width {
                        let v = (x * (1 + variant) + 2 * t + y * (c + 1) + 11 * variant) % 32
                        scalars[((c * frames + t) * height + y) * width + x] = Float(v) / 16 - 1
                    }
                }
            }
        }
        return Tensor(shape: [3, frames, height, width], scalars: scalars)
    }

    /// The test folder, manifest lines 1–7:
    /// 1 a.mp4, 2 b.mp4 (32×32, 9 frames at 8 fps); 3 still.png (32×32); 4 wide.mp4 (48×32, 9 frames);
    /// 5 short.mp4 (32×32, 3 frames: too short for a 5-frame video, so an image); then held out (2 rows):
    /// 6 c.mp4 (32×32, 9 frames); 7 d.png (32×32).
    static func makeFolder() throws -> URL {
        let folder = try TemporaryFolders.make("goku-vae-folder")
        let videos: [(String, Int, Int, Int)] = [("a", 9, 32, 32), ("b", 9, 32, 32), ("wide", 9, 32, 48), ("short", 3, 32, 32), ("c", 9, 32, 32)]
        for (i, (name, frames, height, width)) in videos.enumerated() {
            try VideoIO.writeMP4(
                clip(frames: frames, height: height, width: width, variant: i), to: folder.appendingPathComponent("\(name).mp4"),
                framesPerSecond: 8)
        }
        for (i, name) in ["still", "d"].enumerated() {
            try ImageFile.write(
                clip(frames: 1, height: 32, width: 32, variant: 7 + i).squeeze(1), to: folder.appendingPathComponent("\(name).png"))
        }
        let files = ["a.mp4", "b.mp4", "still.png", "wide.mp4", "short.mp4", "c.mp4", "d.png"]
        try DatasetFolder.writeManifest(files.map { ManifestEntry(file: $0, caption: "") }, to: folder)
        return folder
    }

    static let options = FolderDataOptions(size: 16, frames: 5, framesPerSecond: 8, heldOutRows: 2, seed: 3)

    /// A file decoded directly: `MediaFraming` with the long side that brings the short side to 16 (32 → 16 for the
    /// squares, 48×32 → 24×16 for the wide file), then the centre 16 columns of the wide one (4 ..< 20).
    static func direct(_ folder: URL, _ file: String, frames: Int) throws -> Tensor {
        let wide = file.hasPrefix("wide")
        let framing = MediaFraming(maxSide: wide ? 24 : 16, multiple: 8, framesPerSecond: 8, maxFrames: frames)
        let clip = try framing.load(folder.appendingPathComponent(file))
        XCTAssertEqual(clip.shape, [3, frames, 16, wide ? 24 : 16], file)
        return wide ? clip.slice(axis: 3, 4, 20) : clip
    }

    /// Which of `candidates` (file → clip) `clip` is, bit for bit; fails unless exactly one.
    func identify(_ clip: Tensor, among candidates: [String: Tensor], _ what: String) -> String? {
        let matches = candidates.filter { $0.value.shape == clip.shape && $0.value.scalars == clip.scalars }.map(\.key)
        XCTAssertEqual(matches.count, 1, "\(what): matches \(matches)")
        return matches.first
    }

    /// Training videos are the long clips (a, b, wide) cut to 5 frames, images the still file and the short clip's
    /// first frame plus, being fewer than the videos, the videos' first frames; every sample is the file decoded
    /// through `MediaFraming` directly, each epoch visits every file once, the order is fixed by the seed, and the
    /// held-out rows (c, d) come in manifest order, never among the training clips.
    func testClipsAreTheFilesDecodedThroughMediaFraming() throws {
        let folder = try Self.makeFolder()
        let split = try FolderClipSplit(directory: folder, options: Self.options)
        let training = split.training, heldOut = split.heldOut
        XCTAssertEqual(training.lines, [1, 2, 3, 4, 5])
        XCTAssertEqual(heldOut.lines, [6, 7])
        XCTAssertEqual([training.videoCount, training.imageCount], [3, 5])
        XCTAssertTrue(training.imagesIncludeVideoFrames)
        XCTAssertEqual([heldOut.videoCount, heldOut.imageCount], [1, 1])
        XCTAssertFalse(heldOut.imagesIncludeVideoFrames, "one image for one video is not too few")
        XCTAssertTrue(split.skipped.isEmpty)

        var videos: [String: Tensor] = [:], images: [String: Tensor] = [:]
        for name in ["a", "b", "wide"] {
            videos[name] = try Self.direct(folder, "\(name).mp4", frames: 5)
            images[name + " first frame"] = try Self.direct(folder, "\(name).mp4", frames: 1)
        }
        images["still"] = try Self.direct(folder, "still.png", frames: 1)
        images["short first frame"] = try Self.direct(folder, "short.mp4", frames: 1)

        for (count, stream, candidates) in [(3, "video", videos), (5, "image", images)] {
            var epochs: [[String]] = []
            for epoch in 0..<2 {
                let order = try (0..<count).map { i -> String in
                    let index = epoch * count + i
                    let clip = try stream == "video" ? training.video(at: index) : training.image(at: index)
                    return identify(clip, among: candidates, "\(stream) \(index)") ?? "?"
                }
                XCTAssertEqual(Set(order), Set(candidates.keys), "epoch \(epoch) of the \(stream)s visits each once")
                epochs.append(order)
            }
            // The same split opened again (a resumed process) gives the same order.
            let again = try FolderClipSplit(directory: folder, options: Self.options).training
            for index in [0, count + 1] {
                let a = try stream == "video" ? training.video(at: index) : training.image(at: index)
                let b = try stream == "video" ? again.video(at: index) : again.image(at: index)
                XCTAssertEqual(a.scalars, b.scalars, "\(stream) \(index) is fixed by the seed")
            }
        }
        // Another seed, another order (over two epochs of five images a coincidence has probability 1/14400).
        var reseeded = Self.options
        reseeded.seed = 4
        let other = try FolderClipSplit(directory: folder, options: reseeded).training
        let orders = try [training, other].map { source in
            try (0..<10).map { identify(try source.image(at: $0), among: images, "image \($0)") ?? "?" }
        }
        XCTAssertNotEqual(orders[0], orders[1])

        let c = try Self.direct(folder, "c.mp4", frames: 5), d = try Self.direct(folder, "d.png", frames: 1)
        XCTAssertEqual(try heldOut.video(at: 0).scalars, c.scalars)
        XCTAssertEqual(try heldOut.video(at: 1).scalars, c.scalars, "held-out samples cycle")
        XCTAssertEqual(try heldOut.image(at: 0).scalars, d.scalars)
        XCTAssertNil(videos.values.first { $0.scalars == c.scalars }, "held-out clips are not trained on")
    }

    /// Bad rows are named with their line and file (here a file smaller than the frames), or skipped and counted;
    /// bad folder options name their field.
    func testBadRowsAndOptionsAreNamed() throws {
        let folder = try TemporaryFolders.make("goku-vae-folder-bad")
        try VideoIO.writeMP4(Self.clip(frames: 9, height: 32, width: 32, variant: 0), to: folder.appendingPathComponent("a.mp4"), framesPerSecond: 8)
        try VideoIO.writeMP4(Self.clip(frames: 9, height: 32, width: 32, variant: 1), to: folder.appendingPathComponent("b.mp4"), framesPerSecond: 8)
        try ImageFile.write(Self.clip(frames: 1, height: 8, width: 32, variant: 2).squeeze(1), to: folder.appendingPathComponent("thin.png"))
        try DatasetFolder.writeManifest(
            ["a.mp4", "thin.png", "missing.mp4", "b.mp4"].map { ManifestEntry(file: $0, caption: "") }, to: folder)
        var options = Self.options
        options.heldOutRows = 1
        XCTAssertThrowsError(try FolderClipSplit(directory: folder, options: options)) { error in
            guard case let DatasetError.badRows(problems, total) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(total, 4)
            XCTAssertEqual(problems.map(\.line), [2, 3])
            XCTAssertEqual(problems.map(\.file), ["thin.png", "missing.mp4"])
            XCTAssertTrue(problems[0].reason.contains("too small"), problems[0].reason)
        }
        options.skipBadRows = true
        let split = try FolderClipSplit(directory: folder, options: options)
        XCTAssertEqual(split.skipped.count, 2)
        XCTAssertEqual([split.training.lines, split.heldOut.lines], [[1], [4]])

        options.heldOutRows = 2
        XCTAssertThrowsError(try FolderClipSplit(directory: folder, options: options)) {
            XCTAssertTrue("\($0)".contains("folderData.heldOutRows"), "\($0)")
        }

        var config = VAETrainingConfig()
        config.preset = "tiny"
        config.dataFolder = folder.path
        config.folderData = Self.options
        config.folderData.frames = 6
        XCTAssertThrowsError(try config.validate()) { XCTAssertTrue("\($0)".contains("folderData.frames"), "\($0)") }
        config.folderData = Self.options
        config.folderData.size = 12
        XCTAssertThrowsError(try config.validate()) { XCTAssertTrue("\($0)".contains("folderData.size"), "\($0)") }
        config.folderData = Self.options
        config.cropSize = 24
        XCTAssertThrowsError(try config.validate()) { XCTAssertTrue("\($0)".contains("cropSize"), "\($0)") }
        let file = folder.appendingPathComponent("config.json")
        try Data(#"{"preset": "tiny", "dataFolder": "x", "folderData": {"sise": 16}}"#.utf8).write(to: file)
        XCTAssertThrowsError(try VAETrainingConfig.read(from: file)) {
            XCTAssertTrue("\($0)".contains("folderData.sise"), "\($0)")
        }
        try Data(#"{"preset": "tiny", "dataFolder": "x", "folderData": {"size": 16, "framesPerSecond": null}}"#.utf8).write(to: file)
        let read = try VAETrainingConfig.read(from: file)
        XCTAssertNil(read.folderData.framesPerSecond, "null keeps every frame")
        XCTAssertEqual(read.folderData.frames, 17)
    }

    private func tinyConfig(folder: URL) -> VAETrainingConfig {
        var config = VAETrainingConfig()
        config.preset = "tiny"
        config.dataFolder = folder.path
        config.folderData = Self.options
        config.videosPerBatch = 1
        config.imagesPerBatch = 2
        config.cropSize = 8
        config.wholeFrameSteps = 1
        config.steps = 4
        config.learningRate = 3e-3
        config.warmupSteps = 2
        config.emaDecay = 0.9
        config.checkpointEvery = 2
        config.evaluateEvery = 2
        config.evaluationSamples = 1
        return config
    }

    /// A tiny run on the folder trains on its clips (whole ones in the last step), and one resumed from the
    /// checkpoint at step 2 ends with the weights, exported VAE and held-out evaluations of the uninterrupted run,
    /// bit for bit. The evaluation log has one record per evaluation: steps 2 and 4. A held-out part smaller than
    /// `evaluationSamples` is refused.
    func testTinyRunOnAFolderResumesExactlyAndExports() throws {
        let data = try Self.makeFolder()
        let runs = try TemporaryFolders.make("goku-vae-folder-runs")
        let null = FileHandle(forWritingAtPath: "/dev/null")!
        let config = tinyConfig(folder: data)
        let straightFolder = runs.appendingPathComponent("straight")
        let straight = try VAETrainer(config: config, runDirectory: straightFolder)
        let split = try XCTUnwrap(straight.folder)
        XCTAssertEqual([split.training.videoCount, split.heldOut.videoCount], [3, 1])
        XCTAssertEqual(try straight.batch(forStep: 1, images: false).shape, [1, 3, 5, 8, 8], "crops")
        XCTAssertEqual(try straight.batch(forStep: 3, images: false).scalars, try split.training.video(at: 3).scalars)
        XCTAssertEqual(
            try straight.batch(forStep: 3, images: true).scalars,
            try (6..<8).flatMap { try split.training.image(at: $0).scalars }, "step 3 trains on images 6 and 7, whole")
        let evaluation = try straight.run(showProgress: false, output: null)
        XCTAssertTrue(evaluation.videoPSNR.isFinite && evaluation.imagePSNR.isFinite)

        let fm = FileManager.default
        let resumedFolder = runs.appendingPathComponent("resumed")
        let checkpoint = "checkpoints/" + CheckpointStore.folderName(step: 2)
        try fm.createDirectory(at: resumedFolder.appendingPathComponent("checkpoints"), withIntermediateDirectories: true)
        try fm.copyItem(at: straightFolder.appendingPathComponent("run.json"), to: resumedFolder.appendingPathComponent("run.json"))
        try fm.copyItem(at: straightFolder.appendingPathComponent(checkpoint), to: resumedFolder.appendingPathComponent(checkpoint))
        let resumed = try VAETrainer(config: config, runDirectory: resumedFolder)
        XCTAssertEqual(resumed.step, 2)
        let resumedEvaluation = try resumed.run(showProgress: false, output: null)

        let a = straight.vae.parameterDictionary(), b = resumed.vae.parameterDictionary()
        for (key, value) in a { XCTAssertEqual(b[key]!.scalars, value.scalars, key) }
        let exportedA = try VideoAutoencoder.load(from: straightFolder.appendingPathComponent("vae"))
        let exportedB = try VideoAutoencoder.load(from: resumedFolder.appendingPathComponent("vae"))
        XCTAssertEqual(exportedA.config.scalingFactor, exportedB.config.scalingFactor)
        XCTAssertTrue(exportedA.config.scalingFactor > 0 && exportedA.config.scalingFactor.isFinite)
        let weightsB = exportedB.parameterDictionary()
        for (key, value) in exportedA.parameterDictionary() { XCTAssertEqual(weightsB[key]!.scalars, value.scalars, "export \(key)") }
        XCTAssertEqual(resumedEvaluation.videoPSNR, evaluation.videoPSNR)
        XCTAssertEqual(resumedEvaluation.imagePSNR, evaluation.imagePSNR)

        func evaluations(_ run: URL) throws -> [[Double]] {
            try MetricsLog.records(in: run.appendingPathComponent("evaluation.jsonl")).map {
                [($0["step"] as! NSNumber).doubleValue, ($0["psnr_video"] as! NSNumber).doubleValue, ($0["psnr_image"] as! NSNumber).doubleValue]
            }
        }
        let logged = try evaluations(straightFolder)
        XCTAssertEqual(logged.map { $0[0] }, [2, 4])
        XCTAssertEqual(try evaluations(resumedFolder), logged, "the resumed run measures step 2 again, the same")
        XCTAssertEqual(logged[1][1], evaluation.videoPSNR, accuracy: 1e-9 * evaluation.videoPSNR)

        var greedy = config
        greedy.evaluationSamples = 2
        XCTAssertThrowsError(try VAETrainer(config: greedy, runDirectory: runs.appendingPathComponent("greedy"))) {
            XCTAssertTrue("\($0)".contains("folderData.heldOutRows"), "\($0)")
        }
    }
}
