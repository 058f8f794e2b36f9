import ArgumentParser
import Benchmarks
import TensorCore

/// `goku-bench`: the compute benchmarks of `goku bench` (block, ops, model) in a program that links only the
/// engine (TensorCore, NN, GokuModel; OpenBLAS and oneDNN), not the media and curation stack (FFmpeg, Tesseract,
/// SQLite). It runs on a benchmark host that has the two math libraries and nothing else of the project's set-up,
/// e.g. a machine with AMX next to a PyTorch install, for `goku-bench block --compare-torch`.
@main
struct GokuBench: ParsableCommand {
    /// The thread wait policy of `goku` (`ThreadWaitPolicy`), so that both programs measure the same engine.
    static func main() {
        ThreadWaitPolicy.useQuickSleepingThreads()
        main(nil)
    }

    static let configuration = CommandConfiguration(
        commandName: "goku-bench",
        abstract: "The engine benchmarks of `goku bench` (block, ops, model), without the media stack.",
        subcommands: [BenchBlock.self, BenchOps.self, BenchModel.self])
}
