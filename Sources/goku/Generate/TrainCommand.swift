import ArgumentParser
import Foundation
import GokuPipeline
import TensorCore

/// `goku train --config FILE --output DIR`: trains the Goku transformer on cached Shapes latents; resumes a run
/// found in the output folder and exports `DIR/model` at the end.
struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train the Goku transformer (joint image + video, packed); resumes the run in --output.",
        discussion: """
            The config is a JSON file of GokuTrainingConfig fields; vaeFolder is required (a trained VAE, e.g. from
            goku vae train). The run folder gets run.json, metrics.jsonl, latents/, checkpoints/ and, at the end,
            model/ (a complete model folder for goku generate --model).
            """)

    @Option(help: "Training config (JSON).")
    var config: String

    @Option(help: "Run folder.")
    var output: String

    @Option(help: "Override the config's step count (a resumed run may be extended).")
    var steps: Int?

    @Option(help: "Override the config's matrix-product precision, fp32 or bf16 (a resumed run may switch).")
    var precision: String?

    @Option(help: "Override the config's textRoleLossWeight: the weight of the text encoder's caption-role loss (a resumed run may turn it on).")
    var textRoleLoss: Double?

    @Flag(help: "Only export the newest checkpoint to OUTPUT/model, without training.")
    var exportOnly = false

    @Option(help: "Worker threads (default: all cores).")
    var threads: Int?

    func run() throws {
        if let threads { Parallel.threadCount = threads }
        var trainingConfig = try GokuTrainingConfig.read(from: URL(fileURLWithPath: config))
        if let steps { trainingConfig.steps = steps }
        if let precision { trainingConfig.precision = precision }
        if let textRoleLoss { trainingConfig.textRoleLossWeight = textRoleLoss }
        let runURL = URL(fileURLWithPath: output)
        let trainer = try GokuTrainer(config: trainingConfig, runDirectory: runURL)
        if exportOnly {
            try trainer.export(to: runURL.appendingPathComponent("model"))
            print("exported step \(trainer.step) to \(runURL.appendingPathComponent("model").path)")
            return
        }
        if trainer.step > 0 { print("resuming \(output) at step \(trainer.step) of \(trainingConfig.steps)") }
        print("transformer: \(trainer.transformer.parameterCount) parameters; text encoder: \(trainer.text.encoder.model.parameterCount); \(trainer.dataset.items.count) cached samples")
        try trainer.run()
        print("model written to \(runURL.appendingPathComponent("model").path)")
    }
}
