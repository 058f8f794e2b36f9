import ArgumentParser
import Distributed
import Foundation

/// `goku launch -n N [--hostfile F] [--max-restarts K] -- train …`: runs a goku command on N ranks under `mpirun` and
/// restarts the whole job from its latest checkpoint when a rank dies or hangs (`Launcher`).
struct LaunchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "launch",
        abstract: "Run a goku command (train) on several processes or machines, restarting it when a rank fails.",
        discussion: """
            Example: goku launch -n 4 --max-restarts 3 -- train --config configs/tiny-folder.json --data DIR --output RUN
            Each rank runs the command after `--`; ranks beat a heartbeat after every step, and a rank that dies, or
            makes no progress for --hang-timeout seconds, makes the launcher stop and restart the whole job, which
            resumes from the newest complete checkpoint. Ctrl-C or SIGTERM makes the ranks save a checkpoint and stop.
            Several machines: --hostfile (Open MPI's `host slots=N` lines), with the run folder and datasets on a
            file system every machine sees. Plain `mpirun -n N goku train …` works too, without supervision.
            """)

    @Option(name: .customShort("n"), help: "Ranks (processes) to start.")
    var ranks: Int

    @Option(help: "Open MPI hostfile for several machines.")
    var hostfile: String?

    @Option(help: "Restarts after failures before giving up.")
    var maxRestarts = 3

    @Option(help: "Seconds without progress from a rank before the job counts as hung.")
    var hangTimeout = 300.0

    @Option(help: "Seconds from a start to every rank's first finished step (loading, data preparation).")
    var startupTimeout = 3600.0

    @Option(name: .customLong("mpi-option"), parsing: .unconditionalSingleValue, help: "An extra mpirun argument (repeatable).")
    var mpiOptions: [String] = []

    @Argument(parsing: .captureForPassthrough, help: "The goku command and its options, after --.")
    var command: [String] = []

    func validate() throws {
        guard ranks >= 1 else { throw ValidationError("-n must be at least 1") }
        guard maxRestarts >= 0 else { throw ValidationError("--max-restarts must not be negative") }
        guard hangTimeout > 0, startupTimeout > 0 else { throw ValidationError("the timeouts must be positive") }
        guard !arguments.isEmpty else { throw ValidationError("name the goku command to run after --, e.g. -- train --config FILE") }
        if let hostfile, !FileManager.default.isReadableFile(atPath: hostfile) {
            throw ValidationError("--hostfile \(hostfile) cannot be read")
        }
    }

    /// The command after a leading `--`.
    var arguments: [String] { command.first == "--" ? Array(command.dropFirst()) : command }

    func run() throws {
        let arguments = self.arguments
        // The run folder (train's --output) holds the heartbeats and the launcher's log.
        var folder: URL?
        if let i = arguments.firstIndex(of: "--output"), i + 1 < arguments.count {
            folder = URL(fileURLWithPath: arguments[i + 1])
        } else if let flag = arguments.first(where: { $0.hasPrefix("--output=") }) {
            folder = URL(fileURLWithPath: String(flag.dropFirst("--output=".count)))
        }
        let base = folder ?? FileManager.default.temporaryDirectory.appendingPathComponent("goku-launch-\(getpid())")
        try FileManager.default.createDirectory(at: base, withIntermediateDirectories: true)
        let program = ThisExecutable.path
        let launcher = Launcher(options: .init(
            run: MPIRun(ranks: ranks, hostfile: hostfile, extraOptions: mpiOptions), maxRestarts: maxRestarts,
            hangTimeout: hangTimeout, startupTimeout: startupTimeout,
            heartbeatDirectory: base.appendingPathComponent("heartbeat"), logFile: base.appendingPathComponent("launch.jsonl")))
        switch try launcher.run(program: program, arguments) {
        case .finished: return
        case .stopped(let status): throw ExitCode(status)
        case .failed(let cause): throw ValidationError("the job failed: \(cause)")
        }
    }
}
