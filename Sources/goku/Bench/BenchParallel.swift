import ArgumentParser
import Foundation

/// `goku bench parallel`: data-parallel training on R ranks of one thread each against one process of R threads,
/// same config, data and global batches; and the time a checkpoint save blocks the loop.
struct BenchParallel: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "parallel",
        abstract: "Training steps/s on R ranks (goku launch, 1 thread each) vs. one process with R threads; checkpoint stall.",
        discussion: """
            Runs this binary three times in a temporary folder on --config with --data (prepared on first use, before
            the timed runs): one process with --ranks threads, then `goku launch -n RANKS -- train --threads 1`, both
            without checkpoints, alternated --repeats times; then one process of the --stall-preset model saving a checkpoint every
            --checkpoint-every steps. Reports steps/s
            after --warmup steps (the median over the repeats of each run's median step time, rank 0's), their ratio, and the median time a save blocks the
            loop against the median step.
            """)

    @Option(help: "Training config with stages.")
    var config = "configs/tiny-folder.json"

    @Option(help: "Dataset folder (or prepared folder).")
    var data: String

    @Option(help: "Ranks, and threads of the one-process run.")
    var ranks = 2

    @Option(help: "Steps per run.")
    var steps = 60

    @Option(help: "Steps not timed at the start of each run.")
    var warmup = 10

    @Option(help: "Runs of each throughput side, alternated (this machine is shared: the medians are compared).")
    var repeats = 3

    @Option(help: "Steps between checkpoints in the stall run.")
    var checkpointEvery = 5

    @Option(help: "Model preset of the checkpoint-stall run (small: the shipped model's transformer).")
    var stallPreset = "small"

    @Option(help: "Sharding stage of the data-parallel run: none, optimizer or gradients.")
    var sharding = "none"

    func run() throws {
        guard steps > warmup, warmup >= 0 else { throw ValidationError("--steps must exceed --warmup ≥ 0") }
        guard ranks >= 2 else { throw ValidationError("--ranks must be at least 2") }
        guard checkpointEvery >= 1 else { throw ValidationError("--checkpoint-every must be positive") }
        guard repeats >= 1 else { throw ValidationError("--repeats must be positive") }
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("goku-bench-parallel-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: scratch) }
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        let program = ThisExecutable.path

        // The config with checkpoints off (the throughput runs) and every --checkpoint-every steps (the stall run).
        guard var object = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: config))) as? [String: Any] else {
            throw ValidationError("\(config) is not a JSON object")
        }
        func write(_ name: String, checkpointEvery: Int, preset: String? = nil) throws -> String {
            object["checkpointEvery"] = checkpointEvery
            if let preset { object["preset"] = preset }
            let url = scratch.appendingPathComponent(name)
            try JSONSerialization.data(withJSONObject: object).write(to: url)
            return url.path
        }
        let plain = try write("plain.json", checkpointEvery: 0)
        let saving = try write("saving.json", checkpointEvery: checkpointEvery, preset: stallPreset)

        func train(_ name: String, config: String, threads: Int, launchRanks: Int? = nil) throws -> [[String: Any]] {
            let run = scratch.appendingPathComponent(name)
            var arguments = [
                "train", "--config", config, "--data", data, "--steps", "\(steps)", "--output", run.path, "--threads", "\(threads)",
            ]
            if let launchRanks { arguments = ["launch", "-n", "\(launchRanks)", "--max-restarts", "0", "--"] + arguments + ["--sharding", sharding] }
            let process = Process()
            process.executableURL = URL(fileURLWithPath: program)
            process.arguments = arguments
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            process.waitUntilExit()
            guard process.terminationStatus == 0 else {
                throw ValidationError("goku \(arguments.joined(separator: " ")) failed with status \(process.terminationStatus)")
            }
            let lines = try String(contentsOf: run.appendingPathComponent("metrics.jsonl"), encoding: .utf8).split(separator: "\n")
            return lines.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        }
        func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }
        func stepSeconds(_ records: [[String: Any]]) -> Double {
            median(records.dropFirst(warmup).compactMap { ($0["step_seconds"] as? NSNumber)?.doubleValue })
        }

        print("goku bench parallel — \(config), \(steps) steps (\(warmup) warm-up), \(ProcessInfo.processInfo.activeProcessorCount) cores")
        _ = try train("prepare", config: plain, threads: ranks)  // prepares the data once, untimed
        var ones: [Double] = [], dps: [Double] = []
        for i in 0..<repeats {
            ones.append(stepSeconds(try train("one-\(i)", config: plain, threads: ranks)))
            dps.append(stepSeconds(try train("dp-\(i)", config: plain, threads: 1, launchRanks: ranks)))
        }
        let one = median(ones), dp = median(dps)
        print(String(format: "  1 process × %d threads      %8.2f steps/s", ranks, 1 / one))
        print(String(format: "  %d ranks × 1 thread (%@)  %8.2f steps/s   ratio %.3f (goal ≥ 0.9)", ranks, sharding, 1 / dp, one / dp))
        let records = try train("saving", config: saving, threads: ranks)
        let stalls = records.compactMap { ($0["checkpoint_stall_seconds"] as? NSNumber)?.doubleValue }
        guard !stalls.isEmpty else { throw ValidationError("no checkpoint was saved in \(steps) steps") }
        let stall = median(stalls), step = stepSeconds(records)
        print(String(format: "  checkpoint stall per save (%@)  %8.2f ms (median of %d; median step %.2f ms, %.1f%%)", stallPreset, stall * 1000, stalls.count, step * 1000, 100 * stall / step))
    }
}
