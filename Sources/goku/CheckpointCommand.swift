import ArgumentParser
import Foundation
import GokuPipeline
import ShapesRecipe
import Training

/// `goku checkpoint export RUN -o MODEL_DIR`: the newest complete checkpoint of a training run as a model folder.
struct CheckpointCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "checkpoint", abstract: "Work with a training run's checkpoints.", subcommands: [Export.self])

    struct Export: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a run's newest complete checkpoint (any rank count and sharding) as a model folder.",
            discussion: """
                Reads RUN/run.json and the newest checkpoint under RUN/checkpoints, whatever number of ranks saved it
                and at whatever sharding stage, and writes the EMA weights as a model folder for goku generate
                --model (the transformer in bfloat16), without reading the training data or changing the run folder (a
                job may go on training in it).
                """)

        @Argument(help: "The run folder (goku train --output).")
        var runFolder: String

        @Option(name: .shortAndLong, help: "The model folder to write.")
        var output: String

        func run() throws {
            let runURL = URL(fileURLWithPath: runFolder)
            let configURL = runURL.appendingPathComponent(RunConfigFile.fileName)
            guard FileManager.default.fileExists(atPath: configURL.path) else {
                throw ValidationError("\(runFolder) is not a training run folder: it has no \(RunConfigFile.fileName)")
            }
            guard try !CheckpointStore.checkpoints(inRun: runURL).isEmpty else {
                throw ValidationError("\(runFolder) has no complete checkpoint under checkpoints/")
            }
            let (config, recipe) = try ShapesTrainingRecipe.read(from: configURL)
            let trainer = try GokuTrainer(config: config, runDirectory: runURL, recipe: recipe, showProgress: false, exportOnly: true)
            try trainer.export(to: URL(fileURLWithPath: output))
            print("exported step \(trainer.step) of \(runFolder) to \(output)")
        }
    }
}
