import ArgumentParser
import Foundation
import TensorCore
import ShapesRecipe
import VAETraining

/// `goku vae train`: trains the joint image-video VAE on Shapes clips or a dataset folder (`dataFolder`), resuming a
/// run found in the output folder.
struct VAETrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train the VAE (L1 + L2 + KL, AdamW, EMA); resumes the run in --output if there is one.",
        discussion: """
            The config is a JSON file of VAETrainingConfig fields (every field optional), e.g. configs/vae-shapes-64.json.
            With "dataFolder" it trains on a dataset folder (manifest.jsonl): frames scaled and centre-cropped to \
            folderData.size squares, videos cut to folderData.frames, the last folderData.heldOutRows rows held out.
            The output folder gets run.json, metrics.jsonl, evaluation.jsonl, checkpoints/ and, at the end, vae/ \
            (diffusers format).
            """)

    @Option(help: "Training config (JSON). Without it, the defaults (the shipped model's recipe).")
    var config: String?

    @Option(help: "Run folder: checkpoints, metrics and the trained vae/ go here.")
    var output: String

    @Option(help: "Override the config's step count (a resumed run may be extended).")
    var steps: Int?

    @Option(help: "A dataset folder (manifest.jsonl + media) to train on instead of the config's data.")
    var data: String?

    @Option(help: "Worker threads (default: all cores).")
    var threads: Int?

    func run() throws {
        if let threads { Parallel.threadCount = threads }
        var trainingConfig = try config.map { try VAETrainingConfig.read(from: URL(fileURLWithPath: $0)) } ?? VAETrainingConfig()
        if let steps { trainingConfig.steps = steps }
        if let data {
            trainingConfig.dataFolder = data
            trainingConfig.shapes = nil
        }
        try trainingConfig.validate()
        let outputURL = URL(fileURLWithPath: output)
        // Without a dataset folder the clips come from the Shapes recipe (the shipped VAE's data).
        let shapes = trainingConfig.dataFolder == nil ? trainingConfig.resolvedShapes : nil
        let trainer = try VAETrainer(
            config: trainingConfig, runDirectory: outputURL, data: try shapes.map { try ShapesClipSource($0) },
            heldOut: try shapes.map { try ShapesClipSource($0, heldOut: true) })
        if trainer.step > 0 { print("resuming \(output) at step \(trainer.step) of \(trainingConfig.steps)") }
        if let folder = trainer.folder {
            let t = folder.training, h = folder.heldOut
            print("data: \(t.directory.path): \(t.videoCount) videos and \(t.imageCount) images to train on"
                + (t.imagesIncludeVideoFrames ? " (images include the videos' first frames)" : "")
                + ", \(h.videoCount) videos and \(h.imageCount) images held out")
            if !folder.skipped.isEmpty {
                print("skipped \(folder.skipped.count) bad rows, e.g. \(folder.skipped[0])")
            }
        }
        print("VAE: \(trainer.vae.parameterCount) parameters, \(trainingConfig.videosPerBatch) videos + \(trainingConfig.imagesPerBatch) images per step")
        let evaluation = try trainer.run()
        print(String(format: "held-out PSNR: video %.2f dB, image %.2f dB (%d each); trained VAE in %@", evaluation.videoPSNR,
            evaluation.imagePSNR, evaluation.samples, outputURL.appendingPathComponent("vae").path))
    }
}
