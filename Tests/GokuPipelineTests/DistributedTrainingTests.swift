import Distributed
import Foundation
import GokuModel
import GokuPipeline
import TensorCore
import TestSupport
import Training
import VideoVAE
import XCTest

/// Data-parallel training with the release binary under `goku launch`, against one process on the same global
/// batches: losses and weights, determinism, checkpoints that reshard between rank counts and stages, recovery from a
/// killed and a hung rank, and the cost model's byte counts against the measured ones.
final class DistributedTrainingTests: XCTestCase {
    var goku: URL { TestCommands.releaseGoku }
    private static var work: URL!
    private static var configFile: URL!
    private static var reference: URL!

    /// The tiny models, a packed mixed dataset (videos and images at two resolutions) and a two-stage config with a
    /// checkpoint every 4 steps; then the single-process reference run of 10 steps.
    override func setUpWithError() throws {
        guard FileManager.default.isExecutableFile(atPath: goku.path) else {
            throw CocoaError(.fileNoSuchFile, userInfo: [NSFilePathErrorKey: goku.path + " (needs the release goku binary: run swift build -c release first; scripts/test.sh does)"])
        }
        guard Self.work == nil else { return }
        let work = try TemporaryFolders.make("goku-distributed")
        try TestModels.saveTinyVAE(to: work.appendingPathComponent("vae"))
        try TestModels.saveTinyT5(to: work.appendingPathComponent("t5"))
        try FolderTrainingTests.makeDataset(at: work.appendingPathComponent("dataset"))
        var config = GokuTrainingConfig()
        config.preset = "tiny"
        config.vaeFolder = work.appendingPathComponent("vae").path
        config.textEncoderFolder = work.appendingPathComponent("t5").path
        config.maxTextLength = 12
        config.steps = 10
        config.warmupSteps = 2
        config.emaDecay = 0.9
        config.checkpointEvery = 4
        config.keepCheckpoints = 5
        config.captionDropout = 0.3
        config.latentSampling = .posterior
        config.prefetchBatches = 0
        let data = [DatasetMixtureEntry(path: work.appendingPathComponent("dataset").path)]
        config.stages = [
            TrainingStage(name: "images", steps: 4, datasets: data, tokenBudget: 16, maxSide: 32, maxFrames: 1),
            TrainingStage(name: "joint", steps: 6, datasets: data, tokenBudget: 36, maxSide: 32, maxFrames: 9),
        ]
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        Self.configFile = work.appendingPathComponent("config.json")
        try encoder.encode(config).write(to: Self.configFile)
        Self.work = work
        Self.reference = work.appendingPathComponent("reference")
        try runGoku(["train", "--config", Self.configFile.path, "--output", Self.reference.path, "--threads", "1"])
    }

    @discardableResult
    func runGoku(_ arguments: [String], environment: [String: String] = [:]) throws -> String {
        let result = try TestCommands.run(goku, arguments, environment: environment)
        XCTAssertEqual(result.status, 0, "goku \(arguments.joined(separator: " ")): \(result.output)")
        return result.output
    }

    /// `goku launch -n ranks -- train …` into a new run folder.
    @discardableResult
    func launch(
        _ name: String, ranks: Int, sharding: String, sequenceParallel: Int = 1, steps: Int = 10, extra: [String] = [],
        environment: [String: String] = [:]
    ) throws -> (URL, String) {
        let run = Self.work.appendingPathComponent(name)
        let output = try runGoku(
            ["launch", "-n", "\(ranks)"] + extra + [
                "--", "train", "--config", Self.configFile.path, "--steps", "\(steps)", "--output", run.path,
                "--sharding", sharding, "--sequence-parallel", "\(sequenceParallel)", "--threads", "1",
            ], environment: environment)
        return (run, output)
    }

    static func losses(_ run: URL) throws -> [Double] {
        try String(contentsOf: run.appendingPathComponent("metrics.jsonl"), encoding: .utf8).split(separator: "\n").map {
            try XCTUnwrap((try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])?["loss"] as? Double)
        }
    }

    static func metrics(_ run: URL) throws -> [[String: Any]] {
        try String(contentsOf: run.appendingPathComponent("metrics.jsonl"), encoding: .utf8).split(separator: "\n").map {
            try XCTUnwrap(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
    }

    /// The last checkpoint's tensors of every group, whole.
    static func finalState(_ run: URL) throws -> [String: [String: Tensor]] {
        let store = try CheckpointStore(runDirectory: run)
        return try CheckpointStore.load(from: XCTUnwrap(try store.latest())).groups
    }

    /// The largest relative difference, ‖a − b‖₂ / ‖b‖₂ per tensor, over the model, EMA and optimizer moments.
    static func worstDifference(_ a: [String: [String: Tensor]], _ b: [String: [String: Tensor]]) throws -> Double {
        var worst = 0.0
        for group in ["model", "ema", "optimizer"] {
            let x = try XCTUnwrap(a[group]), y = try XCTUnwrap(b[group])
            XCTAssertEqual(Set(x.keys), Set(y.keys), group)
            for (key, t) in x {
                let u = t.doubleScalars, v = try XCTUnwrap(y[key]).doubleScalars
                XCTAssertEqual(u.count, v.count, key)
                let scale = max(v.reduce(0) { $0 + $1 * $1 }.squareRoot(), 1e-30)
                worst = max(worst, zip(u, v).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }.squareRoot() / scale)
            }
        }
        return worst
    }

    func assertMatchesReference(_ run: URL, _ label: String) throws {
        let expected = try Self.losses(Self.reference), got = try Self.losses(run)
        XCTAssertEqual(got.count, expected.count, label)
        for (g, e) in zip(got, expected) { XCTAssertEqual(g, e, accuracy: 1e-5 * abs(e), label) }
        let worst = try Self.worstDifference(Self.finalState(run), Self.finalState(Self.reference))
        XCTAssertLessThan(worst, 1e-5, label)
        print("\(label): worst relative difference to one process \(worst)")
        XCTAssertTrue(FileManager.default.fileExists(atPath: run.appendingPathComponent("model/model_index.json").path), label)
    }

    func testTwoAndThreeRanksAtEveryStageMatchOneProcess() throws {
        for ranks in [2, 3] {
            for stage in ["none", "optimizer", "gradients"] {
                let (run, _) = try launch("dp\(ranks)-\(stage)", ranks: ranks, sharding: stage)
                try assertMatchesReference(run, "DP=\(ranks) \(stage)")
            }
        }
    }

    func testSequenceParallelAloneAndWithDataParallelMatchOneProcess() throws {
        let (alone, _) = try launch("sp2", ranks: 2, sharding: "none", sequenceParallel: 2)
        try assertMatchesReference(alone, "SP=2")
        let (both, _) = try launch("dp2-sp2", ranks: 4, sharding: "gradients", sequenceParallel: 2)
        try assertMatchesReference(both, "DP=2 × SP=2 gradients")
        // Ulysses needs whole heads per rank, and groups that divide the job: named errors before anything runs.
        let bad = try TestCommands.run(goku, ["launch", "-n", "3", "--max-restarts", "0", "--", "train", "--config", Self.configFile.path,
            "--output", Self.work.appendingPathComponent("sp3").path, "--sequence-parallel", "3"])
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.output.contains("parallel.sequenceParallel: 3 does not divide the model's 2 attention heads"), bad.output)
        let uneven = try TestCommands.run(goku, ["train", "--config", Self.configFile.path,
            "--output", Self.work.appendingPathComponent("sp-one").path, "--sequence-parallel", "2"])
        XCTAssertNotEqual(uneven.status, 0)
        XCTAssertTrue(uneven.output.contains("parallel.sequenceParallel: 2 does not divide the 1 ranks of the job"), uneven.output)
    }

    func testAFixedRankCountIsBitIdenticalAndBytesMatchTheCostModel() throws {
        let (first, _) = try launch("repeat-a", ranks: 2, sharding: "gradients")
        let (second, _) = try launch("repeat-b", ranks: 2, sharding: "gradients")
        XCTAssertEqual(try Self.losses(first), try Self.losses(second))
        XCTAssertEqual(try Self.worstDifference(Self.finalState(first), Self.finalState(second)), 0)

        // Measured bytes per step against `goku plan`'s cost model for this model at W = 2.
        var architecture = GokuConfig.presets["tiny"]!
        architecture.inChannels = VideoVAEConfig.tiny.latentChannels
        architecture.textDimension = TestModels.tinyT5.dModel
        architecture.imageConditioning = GokuTrainingConfig().imageConditioning
        let shape = ModelShape(architecture, textTokens: 12)
        XCTAssertEqual(shape.parameterCount, try Self.finalState(first)["model"]!.values.reduce(0) { $0 + $1.count })
        let runs = [
            ("gradients", 1, first), ("none", 1, try launch("bytes-none", ranks: 2, sharding: "none").0),
            ("none", 2, try launch("bytes-sp2", ranks: 2, sharding: "none", sequenceParallel: 2).0),
        ]
        for (stage, sequenceParallel, run) in runs {
            for record in try Self.metrics(run) {
                // The cost model's sequence length is that of one sequence-parallel group's pack: here every token.
                let tokens = Int(try XCTUnwrap(record["tokens"] as? Double))
                let plan = ParallelPlan(ranks: 2, sequenceParallel: sequenceParallel, sharding: ShardingStage(rawValue: stage)!, tokens: tokens)
                let predicted = try CostModel.estimate(model: shape, plan: plan).payloadBytes
                for collective in [Collective.allReduce, .reduceScatter, .allGather, .allToAll] {
                    let measured = record["comm_\(collective.rawValue)_bytes"] as? Double ?? 0
                    XCTAssertEqual(Int(measured), predicted[collective] ?? 0, "\(stage) SP=\(sequenceParallel) \(collective) at \(tokens) tokens")
                }
            }
        }
    }

    func testCheckpointsReshardAcrossRankCountsAndStages() throws {
        // The step-8 checkpoint of a 2-rank ZeRO-2 run (its step-10 one removed), continued to step 10 on 3 ranks at
        // ZeRO-1 and in one process.
        let (saved, _) = try launch("reshard-2", ranks: 2, sharding: "gradients")
        // The newest checkpoint as a model folder: the same files the run exported at its end.
        let exported = Self.work.appendingPathComponent("exported")
        try runGoku(["checkpoint", "export", saved.path, "-o", exported.path])
        for part in ["transformer", "vae", "text_encoder"] {
            let names = try FileManager.default.contentsOfDirectory(atPath: saved.appendingPathComponent("model/\(part)").path)
            XCTAssertFalse(names.isEmpty, part)
            for name in names {
                XCTAssertEqual(
                    try Data(contentsOf: exported.appendingPathComponent("\(part)/\(name)")),
                    try Data(contentsOf: saved.appendingPathComponent("model/\(part)/\(name)")), "\(part)/\(name)")
            }
        }
        let notARun = try TestCommands.run(goku, ["checkpoint", "export", Self.work.path, "-o", exported.path])
        XCTAssertNotEqual(notARun.status, 0)
        XCTAssertTrue(notARun.output.contains("is not a training run folder: it has no run.json"), notARun.output)
        for (name, ranks, stage) in [("reshard-to-3", 3, "optimizer"), ("reshard-to-1", 1, "none")] {
            let run = Self.work.appendingPathComponent(name)
            try FileManager.default.copyItem(at: saved, to: run)
            try FileManager.default.removeItem(at: run.appendingPathComponent("checkpoints/" + CheckpointStore.folderName(step: 10)))
            try FileManager.default.removeItem(at: run.appendingPathComponent("model"))
            if ranks == 1 {
                try runGoku(["train", "--config", Self.configFile.path, "--steps", "10", "--output", run.path, "--threads", "1"])
            } else {
                try launch(name, ranks: ranks, sharding: stage)
            }
            let worst = try Self.worstDifference(Self.finalState(run), Self.finalState(Self.reference))
            print("\(name): worst relative difference to one uninterrupted process \(worst)")
            XCTAssertLessThan(worst, 1e-5, name)
        }
    }

    func testRecoversFromAKilledAndAHungRank() throws {
        // A rank killed with SIGKILL while a checkpoint is being written (writes held back 1.5 s so the kill lands
        // inside one), then, in the restarted job, a rank that hangs: the launcher restarts the job each time and it
        // ends where an uninterrupted run does.
        let run = Self.work.appendingPathComponent("recover")
        let process = Process()
        process.executableURL = goku
        process.arguments = [
            "launch", "-n", "2", "--max-restarts", "3", "--hang-timeout", "8", "--", "train", "--config",
            Self.configFile.path, "--output", run.path, "--sharding", "optimizer", "--threads", "1",
        ]
        var env = ProcessInfo.processInfo.environment
        env["GOKU_CHECKPOINT_WRITE_DELAY_MS"] = "1500"
        env[FaultInjection.variable] = "hang:rank=0:step=9:attempt=1"
        process.environment = env
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("goku-recover-\(UUID().uuidString).log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        // Kill rank 1 once a checkpoint write is under way (a partial folder exists) for the first time.
        let checkpoints = run.appendingPathComponent("checkpoints")
        var killed = false
        let deadline = Date().addingTimeInterval(240)
        while process.isRunning && !killed && Date() < deadline {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: checkpoints.path)) ?? []
            if names.contains(where: { $0.hasSuffix(".partial") }),
                let beat = Heartbeat.read(rank: 1, in: run.appendingPathComponent("heartbeat"))
            {
                kill(beat.pid, SIGKILL)
                killed = true
                // No checkpoint is half visible: every step folder is complete.
                for name in (try? FileManager.default.contentsOfDirectory(atPath: checkpoints.path)) ?? [] where name.hasPrefix("step-") {
                    XCTAssertTrue(FileManager.default.fileExists(atPath: checkpoints.appendingPathComponent("\(name)/metadata.json").path))
                }
            }
            usleep(20_000)
        }
        process.waitUntilExit()
        try handle.close()
        let text = try String(contentsOf: log, encoding: .utf8)
        XCTAssertTrue(killed, text)
        XCTAssertEqual(process.terminationStatus, 0, text)
        let events = try String(contentsOf: run.appendingPathComponent("launch.jsonl"), encoding: .utf8)
        XCTAssertTrue(events.contains("a rank failed"), events)
        XCTAssertTrue(events.contains("made no progress"), events)
        let worst = try Self.worstDifference(Self.finalState(run), Self.finalState(Self.reference))
        print("recovered run: worst relative difference to one uninterrupted process \(worst)")
        XCTAssertLessThan(worst, 1e-5)
    }

    /// Two ranks as on two hosts: rank 1 in its own network namespace, joined to this one by a veth pair, Open MPI
    /// starting it through an rsh agent that enters the namespace (as ssh enters another machine), and every byte
    /// between the ranks over TCP (shared memory off). The run folder is shared, as a cluster file system would be.
    func testTwoRanksInSeparateNetworkNamespacesOverTCP() throws {
        let tag = Int(getpid()) % 10000, subnet = "10.213.\(Int(getpid()) % 250)"
        let namespace = "goku-test-\(tag)", outside = "gkt\(tag)a", inside = "gkt\(tag)b"
        func ip(_ arguments: [String]) throws {
            let result = try TestCommands.run(URL(fileURLWithPath: "/usr/sbin/ip"), arguments)
            XCTAssertEqual(result.status, 0, "ip \(arguments.joined(separator: " ")): \(result.output) (this test needs root and CAP_NET_ADMIN)")
            if result.status != 0 { throw CocoaError(.featureUnsupported) }
        }
        try ip(["netns", "add", namespace])
        defer {
            _ = try? TestCommands.run(URL(fileURLWithPath: "/usr/sbin/ip"), ["link", "del", outside])
            _ = try? TestCommands.run(URL(fileURLWithPath: "/usr/sbin/ip"), ["netns", "del", namespace])
        }
        try ip(["link", "add", outside, "type", "veth", "peer", "name", inside])
        try ip(["link", "set", inside, "netns", namespace])
        try ip(["addr", "add", "\(subnet).1/24", "dev", outside])
        try ip(["link", "set", outside, "up"])
        try ip(["netns", "exec", namespace, "ip", "addr", "add", "\(subnet).2/24", "dev", inside])
        try ip(["netns", "exec", namespace, "ip", "link", "set", inside, "up"])
        try ip(["netns", "exec", namespace, "ip", "link", "set", "lo", "up"])

        let folder = try TemporaryFolders.make("goku-netns")
        let agent = folder.appendingPathComponent("agent.sh"), hosts = folder.appendingPathComponent("hosts")
        // Open MPI calls its rsh agent as `agent [options] HOST COMMAND…`.
        try """
            #!/bin/sh
            while [ "${1#-}" != "$1" ]; do shift; done
            host=$1; shift
            [ "$host" = "\(subnet).2" ] || { echo "unknown host $host" >&2; exit 1; }
            exec /usr/sbin/ip netns exec \(namespace) /bin/sh -c "$*"

            """.write(to: agent, atomically: true, encoding: .utf8)
        chmod(agent.path, 0o755)
        try "\(subnet).1 slots=1\n\(subnet).2 slots=1\n".write(to: hosts, atomically: true, encoding: .utf8)
        var options = ["--hostfile", hosts.path]
        for option in ["plm_rsh_agent", agent.path, "btl", "self,tcp", "btl_tcp_if_include", "\(subnet).0/24", "oob_tcp_if_include", "\(subnet).0/24"]
            .chunked() {
            options += ["--mpi-option=--mca", "--mpi-option=\(option.0)", "--mpi-option=\(option.1)"]
        }
        let (run, _) = try launch("netns", ranks: 2, sharding: "gradients", extra: options)
        try assertMatchesReference(run, "DP=2 gradients across network namespaces over TCP")
    }
}

extension Array {
    /// Consecutive pairs: [a, b, c, d] → [(a, b), (c, d)].
    fileprivate func chunked() -> [(Element, Element)] {
        stride(from: 0, to: count - 1, by: 2).map { (self[$0], self[$0 + 1]) }
    }
}
