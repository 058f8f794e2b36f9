import ArgumentParser
import Benchmarks
import Foundation
import GokuPipeline
import ShapesRecipe
import TensorCore
import Training

/// `goku bench data`: training steps fed by the streaming data path (prepared shards, bounded prefetch) beside the
/// same steps fed from memory, same config, data and batches.
struct BenchData: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data",
        abstract: "Training steps/s streaming prepared shards vs. the same data held in memory.",
        discussion: """
            Trains --steps steps twice from scratch in a temporary folder on the config's last stage with --data
            (prepared on first use): once reading shards through the prefetch queue (prefetchBatches 4), once with
            every sample read into memory first (prefetchBatches 0). Reports each path's steps/s after --warmup
            steps, their ratio, and each run's peak resident memory growth.
            """)

    @Option(help: "Training config with stages (the last stage is used).")
    var config = "configs/tiny-folder.json"

    @Option(help: "Dataset folder (or prepared folder).")
    var data: String

    @Option(help: "Steps timed per path.")
    var steps = 200

    @Option(help: "Steps not timed at the start of each run.")
    var warmup = 10

    @Option(help: "Worker threads (default: all cores).")
    var threads: Int?

    func run() throws {
        if let threads { Parallel.threadCount = threads }
        guard steps > warmup, warmup >= 0 else { throw ValidationError("--steps must exceed --warmup ≥ 0") }
        let read = try ShapesTrainingRecipe.read(from: URL(fileURLWithPath: config))
        var base = read.config
        let recipe = read.recipe
        guard var stage = base.stages.last else { throw ValidationError("\(config) has no stages") }
        stage.datasets = [DatasetMixtureEntry(path: data)]
        stage.steps = steps
        base.stages = [stage]
        base.steps = steps
        base.checkpointEvery = 0
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("goku-bench-data-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: scratch) }
        print("goku bench data — \(Parallel.threadCount) threads; preset \(base.preset), stage '\(stage.name)': \(stage.tokenBudget) tokens a step, ≤ \(stage.maxSide) px, ≤ \(stage.maxFrames) frames; \(steps) steps, \(warmup) warm-up")
        var rates: [Double] = []
        for (name, prefetch) in [("streaming (prefetch 4)", 4), ("in memory", 0)] {
            var run = base
            run.prefetchBatches = prefetch
            let folder = scratch.appendingPathComponent("\(prefetch)")
            _ = BenchHarness.resetPeakMemory()
            let before = BenchHarness.residentMemory()
            let trainer = try GokuTrainer(config: run, runDirectory: folder, recipe: recipe, showProgress: false)
            try trainer.run(showProgress: false, output: FileHandle(forWritingAtPath: "/dev/null")!)
            let peak = BenchHarness.peakMemory()
            let records = try MetricsLog.records(in: folder.appendingPathComponent("metrics.jsonl")).dropFirst(warmup)
            let seconds = records.reduce(0.0) { $0 + (($1["step_seconds"] as? NSNumber)?.doubleValue ?? 0) }
            let tokens = records.reduce(0.0) { $0 + (($1["tokens"] as? NSNumber)?.doubleValue ?? 0) }
            let rate = Double(records.count) / seconds
            rates.append(rate)
            print("\(name.padding(toLength: 24, withPad: " ", startingAt: 0)) \(BenchHarness.format(rate, 2)) steps/s, \(BenchHarness.format(tokens / seconds, 0)) tokens/s; \(trainer.sampleCount) samples; peak RSS +\(BenchHarness.mib(max(0, peak - before)))")
        }
        print("streaming / in memory: \(BenchHarness.format(rates[0] / rates[1], 3))")
    }
}
