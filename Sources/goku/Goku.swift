import ArgumentParser
import TensorCore

/// The `goku` command: generation, training, data curation, evaluation, serving and benchmarks.
@main
struct Goku: ParsableCommand {
    /// Lets oneDNN's and OpenBLAS's idle threads sleep soon (see `ThreadWaitPolicy`), then parses and runs.
    static func main() {
        ThreadWaitPolicy.useQuickSleepingThreads()
        main(nil)
    }

    static let configuration = CommandConfiguration(
        commandName: "goku",
        abstract: "Goku: rectified-flow Transformers for joint image and video generation.",
        version: GokuVersion.string,
        subcommands: [
            GenerateCommand.self, TrainCommand.self, LaunchCommand.self, PlanCommand.self, EvalCommand.self, VAECommand.self,
            TextCommand.self, ModelCommand.self, DataCommand.self, CheckpointCommand.self, Curate.self, Bench.self, Info.self,
        ])
}

enum GokuVersion {
    static let string = "0.1.0"
}
