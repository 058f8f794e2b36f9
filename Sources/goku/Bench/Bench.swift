import ArgumentParser
import Benchmarks
import TensorCore

/// `goku bench`: speed of the engine's kernels beside a reference measured in the same run.
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Benchmarks, each printed beside a reference measured in the same run.",
        subcommands: [
            BenchOps.self, BenchBlock.self, BenchModel.self, BenchTrain.self, BenchSample.self, BenchText.self, BenchVAE.self,
            BenchCurate.self, BenchData.self, BenchParallel.self, BenchUlysses.self,
        ])
}
