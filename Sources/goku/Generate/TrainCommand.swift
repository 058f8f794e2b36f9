import ArgumentParser
import Distributed
import Foundation
import GokuPipeline
import ShapesRecipe
import TensorCore

/// `goku train --config FILE --output DIR [--data DIR,…]`: trains the Goku transformer, on dataset folders in stages
/// or on the Shapes recipe's data; resumes a run found in the output folder and exports `DIR/model` at the end.
struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train the Goku transformer (joint image + video, packed); resumes the run in --output.",
        discussion: """
            The config is a JSON file of GokuTrainingConfig and ShapesRecipeOptions fields in one object; vaeFolder is
            required. Without "stages", the run trains the Shapes recipe's generated data. With "stages", the run trains
            on dataset folders (manifest.jsonl + media), preparing each one the first time (goku data prepare); --data
            replaces every stage's datasets. The run folder gets run.json, metrics.jsonl, checkpoints/ and, at the end,
            model/ (a complete model folder for goku generate --model).
            """)

    @Option(help: "Training config (JSON).")
    var config: String

    @Option(help: "Run folder.")
    var output: String

    @Option(help: "Dataset folders (comma-separated; dataset or prepared folders), replacing every stage's datasets.")
    var data: String?

    @Option(help: "Override the config's step count (a resumed run may be extended).")
    var steps: Int?

    @Option(help: "Override the config's matrix-product precision, fp32 or bf16 (a resumed run may switch).")
    var precision: String?

    @Option(help: "Override the config's textRoleLossWeight: the weight of the text encoder's caption-role loss (a resumed run may turn it on).")
    var textRoleLoss: Double?

    @Option(help: "Override the config's parallel.sharding: none, optimizer (ZeRO-1) or gradients (ZeRO-2), with several ranks.")
    var sharding: String?

    @Option(help: "Override the config's parallel.sequenceParallel.")
    var sequenceParallel: Int?

    @Flag(help: "Skip manifest rows that cannot be used (missing or undecodable files, empty captions) and count them.")
    var skipBad = false

    @Flag(help: "Only export the newest checkpoint to OUTPUT/model, without training.")
    var exportOnly = false

    @Option(help: "Worker threads (default: all cores).")
    var threads: Int?

    func run() throws {
        if let threads { Parallel.threadCount = threads }
        // The ranks of the job (one process unless started by goku launch or mpirun), checked with an all-reduce.
        let group = try ProcessGroup.world()
        do {
            try train(group: group)
        } catch {
            guard group.isDistributed else { throw error }
            // Stop every rank at once rather than leave the others waiting in a collective.
            FileHandle.standardError.write(Data("Error on rank \(group.rank): \(error)\n".utf8))
            group.abort()
        }
    }

    func train(group: ProcessGroup) throws {
        if group.isDistributed {
            let sum = try group.allReduce([Int64(1)])[0]
            guard sum == Int64(group.size) else {
                throw ValidationError("health check failed: an all-reduce of ones gave \(sum) on \(group.size) ranks")
            }
        }
        func say(_ line: String) { if group.rank == 0 { print(line) } }
        // The core fields and the Shapes recipe's, from one flat file; the recipe supplies what a run without stages
        // or without a pretrained text encoder needs.
        var (trainingConfig, recipe) = try ShapesTrainingRecipe.read(from: URL(fileURLWithPath: config))
        if let steps { trainingConfig.steps = steps }
        if let precision {
            guard let value = TrainingPrecision(rawValue: precision) else {
                throw ValidationError("--precision must be fp32 or bf16, not '\(precision)'")
            }
            trainingConfig.precision = value
        }
        if let textRoleLoss { recipe.options.textRoleLossWeight = textRoleLoss }
        if skipBad { trainingConfig.skipBadRows = true }
        if let sharding {
            guard let stage = ShardingStage(rawValue: sharding) else {
                throw ValidationError("--sharding must be one of \(ShardingStage.allCases.map(\.rawValue).joined(separator: ", ")), not '\(sharding)'")
            }
            trainingConfig.parallel.sharding = stage
        }
        if let sequenceParallel { trainingConfig.parallel.sequenceParallel = sequenceParallel }
        if let data {
            let folders = data.split(separator: ",").map { String($0) }.filter { !$0.isEmpty }
            guard !folders.isEmpty else { throw ValidationError("--data names no folder") }
            guard !trainingConfig.stages.isEmpty else {
                throw ValidationError("--data needs a config with stages (e.g. configs/tiny-folder.json); \(config) trains the Shapes recipe")
            }
            for i in trainingConfig.stages.indices {
                trainingConfig.stages[i].datasets = folders.map { DatasetMixtureEntry(path: $0) }
            }
        }
        try trainingConfig.validate()
        try recipe.validate(config: trainingConfig)
        let runURL = URL(fileURLWithPath: output)
        let trainer = try GokuTrainer(
            config: trainingConfig, runDirectory: runURL, recipe: recipe, group: group, exportOnly: exportOnly)
        if exportOnly {
            try trainer.export(to: runURL.appendingPathComponent("model"))
            say("exported step \(trainer.step) to \(runURL.appendingPathComponent("model").path)")
            return
        }
        if group.isDistributed {
            say("\(group.size) ranks, data parallel, sharding '\(trainingConfig.parallel.sharding.rawValue)'")
        }
        if trainer.step > 0 { say("resuming \(output) at step \(trainer.step) of \(trainingConfig.steps)") }
        say("transformer: \(trainer.transformer.parameterCount) parameters; text encoder: \(trainer.text.encoder.model.parameterCount); \(trainer.sampleCount) training samples")
        try trainer.run(showProgress: group.rank == 0)
        if trainer.loop.stopped { return }
        say("model written to \(runURL.appendingPathComponent("model").path)")
    }
}
