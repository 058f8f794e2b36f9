import ArgumentParser
import TensorCore

/// Options shared by benchmarks.
public struct BenchOptions: ParsableArguments {
    @Option(help: "Worker threads (default: all cores).")
    public var threads: Int?

    @Flag(help: "Smaller sizes and fewer runs, for a quick check.")
    public var quick = false

    public init() {}

    public func apply() {
        if let threads { Parallel.threadCount = threads }
    }
}
