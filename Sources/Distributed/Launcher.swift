import Foundation

/// Starts a job's ranks under `mpirun` and keeps it alive (after torchrun's restart-all and MegaScale's heartbeats):
/// when any rank dies (the job exits non-zero: `mpirun` ends the whole job when one rank fails) or stops making
/// progress (its `Heartbeat` older than `hangTimeout`, or none within `startupTimeout` of the start), the whole job is
/// stopped and started again, up to `maxRestarts` times. Each start begins with the ranks' health check (an
/// all-reduce of ones that must equal the world size, done by `goku train`) and resumes from the newest complete
/// checkpoint, which the training loop finds by itself. Every start and failure is logged with its cause, to stderr
/// and to `logFile`.
///
/// SIGINT or SIGTERM to the launcher is passed on as SIGUSR1 through `mpirun` (which forwards it to every rank on
/// every host); the ranks save a checkpoint together and exit, and the launcher does not restart them.
public final class Launcher {
    /// Settings of a supervised job.
    public struct Options: Sendable {
        /// The ranks and `mpirun` options.
        public var run: MPIRun
        /// Restarts after failures before giving up.
        public var maxRestarts: Int
        /// Seconds without a heartbeat from a rank that has started stepping before the job counts as hung.
        public var hangTimeout: Double
        /// Seconds from a start to every rank's first heartbeat (loading, data preparation) before it counts as hung.
        public var startupTimeout: Double
        /// Where the ranks beat (cleared at each start).
        public var heartbeatDirectory: URL
        /// The launcher's log (JSON lines), if any.
        public var logFile: URL?

        public init(
            run: MPIRun, maxRestarts: Int, hangTimeout: Double, startupTimeout: Double, heartbeatDirectory: URL,
            logFile: URL?
        ) {
            self.run = run
            self.maxRestarts = maxRestarts
            self.hangTimeout = hangTimeout
            self.startupTimeout = startupTimeout
            self.heartbeatDirectory = heartbeatDirectory
            self.logFile = logFile
        }
    }

    /// How a job ended.
    public enum Outcome: Equatable, Sendable {
        /// Every rank finished.
        case finished
        /// Stopped on request (its checkpoint saved).
        case stopped(status: Int32)
        /// Failed more often than allowed; the last cause.
        case failed(cause: String)
    }

    /// The variable that tells the ranks which start of the job they are (0 first, then 1 per restart).
    public static let attemptVariable = "GOKU_LAUNCH_ATTEMPT"

    public let options: Options
    private let output: FileHandle
    private var program: String?
    private nonisolated(unsafe) static var interrupted: sig_atomic_t = 0

    public init(options: Options, output: FileHandle = .standardError) {
        self.options = options
        self.output = output
    }

    /// Runs `program arguments` on the ranks until it finishes, is stopped, or fails `maxRestarts + 1` times.
    public func run(program: String, _ arguments: [String]) throws -> Outcome {
        self.program = program
        signal(SIGINT, launcherSignalHandler)
        signal(SIGTERM, launcherSignalHandler)
        var attempt = 0
        while true {
            let outcome = try runOnce(program: program, arguments, attempt: attempt)
            switch outcome {
            case .finished:
                log(["event": "finished", "attempt": "\(attempt)"], "goku launch: the job finished")
                return outcome
            case .stopped:
                log(["event": "stopped", "attempt": "\(attempt)"], "goku launch: stopped on request")
                return outcome
            case .failed(let cause):
                if attempt >= options.maxRestarts {
                    log(["event": "gave_up", "attempt": "\(attempt)", "cause": cause],
                        "goku launch: \(cause); no restarts left (--max-restarts \(options.maxRestarts))")
                    return outcome
                }
                attempt += 1
                log(["event": "restart", "attempt": "\(attempt)", "cause": cause],
                    "goku launch: \(cause); restarting the job from its latest checkpoint (restart \(attempt) of \(options.maxRestarts))")
            }
        }
    }

    /// One start of the job, and how it ended.
    private func runOnce(program: String, _ arguments: [String], attempt: Int) throws -> Outcome {
        let fm = FileManager.default
        try? fm.removeItem(at: options.heartbeatDirectory)
        try fm.createDirectory(at: options.heartbeatDirectory, withIntermediateDirectories: true)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: MPIRun.executable)
        var run = options.run
        run.forwardedVariables += [Heartbeat.variable, Self.attemptVariable]
        process.arguments = run.arguments(program: program, arguments)
        var environment = ProcessInfo.processInfo.environment
        environment[Heartbeat.variable] = options.heartbeatDirectory.path
        environment[Self.attemptVariable] = "\(attempt)"
        process.environment = environment
        log(["event": "start", "attempt": "\(attempt)", "ranks": "\(options.run.ranks)"],
            attempt == 0 ? "goku launch: starting \(options.run.ranks) ranks" : "goku launch: start \(attempt + 1)")
        do { try process.run() } catch {
            throw DistributedError.initialization(reason: "cannot start \(MPIRun.executable): \(error.localizedDescription)")
        }
        let started = Date()
        var stopSent = false
        while process.isRunning {
            Thread.sleep(forTimeInterval: 0.2)
            if Self.interrupted != 0 && !stopSent {
                stopSent = true
                log(["event": "stop_requested"], "goku launch: stopping; the ranks save a checkpoint first")
                kill(process.processIdentifier, SIGUSR1)
            }
            if stopSent { continue }
            if let hang = hangCause(started: started) {
                stop(process)
                return .failed(cause: hang)
            }
        }
        process.waitUntilExit()
        let status = process.terminationStatus
        if stopSent { return .stopped(status: status) }
        if status == 0 && process.terminationReason == .exit { return .finished }
        let how = process.terminationReason == .uncaughtSignal ? "was killed by signal \(status)" : "exited with status \(status)"
        return .failed(cause: "the job \(how) (a rank failed)")
    }

    /// Why the running job counts as hung, if it does.
    private func hangCause(started: Date) -> String? {
        let now = Date()
        var missing: [Int] = []
        for rank in 0..<options.run.ranks {
            guard let beat = Heartbeat.read(rank: rank, in: options.heartbeatDirectory) else {
                missing.append(rank)
                continue
            }
            let silent = now.timeIntervalSince(beat.time)
            if silent > options.hangTimeout {
                return "rank \(rank) made no progress for \(Int(silent)) s after step \(beat.step) (hang timeout \(Int(options.hangTimeout)) s)"
            }
        }
        if !missing.isEmpty && now.timeIntervalSince(started) > options.startupTimeout {
            return "rank \(missing[0]) did not finish a step within \(Int(options.startupTimeout)) s of the start (startup timeout)"
        }
        return nil
    }

    /// Ends a hung job: mpirun asked first, then every local rank and mpirun killed.
    private func stop(_ process: Process) {
        kill(process.processIdentifier, SIGTERM)
        let deadline = Date().addingTimeInterval(5)
        while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.1) }
        killLocalRanks()
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    /// SIGKILL to the ranks of this host that have beaten and still run the program (a hung rank may ignore
    /// everything else).
    private func killLocalRanks() {
        for rank in 0..<options.run.ranks {
            guard let beat = Heartbeat.read(rank: rank, in: options.heartbeatDirectory), beat.pid > 0,
                let command = try? String(contentsOfFile: "/proc/\(beat.pid)/cmdline", encoding: .utf8),
                command.contains(program ?? "\u{0}")
            else { continue }
            kill(beat.pid, SIGKILL)
        }
    }

    private func log(_ fields: [String: String], _ message: String) {
        output.write(Data((message + "\n").utf8))
        guard let logFile = options.logFile else { return }
        var record = fields
        record["time"] = ISO8601DateFormatter().string(from: Date())
        guard let json = try? JSONSerialization.data(withJSONObject: record, options: [.sortedKeys]) else { return }
        if !FileManager.default.fileExists(atPath: logFile.path) { FileManager.default.createFile(atPath: logFile.path, contents: nil) }
        if let handle = try? FileHandle(forWritingTo: logFile) {
            handle.seekToEndOfFile()
            handle.write(json + Data("\n".utf8))
            try? handle.close()
        }
    }

    fileprivate static func setInterrupted() { interrupted = 1 }
}

private func launcherSignalHandler(_: Int32) { Launcher.setInterrupted() }
