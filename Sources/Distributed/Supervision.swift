import Foundation

/// What a rank tells its supervisor (`goku launch`) that it is making progress: after every training step it
/// rewrites `rank-NNNNN` in the folder named by `GOKU_HEARTBEAT_DIR` with its pid, step and time. A rank whose file
/// stops changing for longer than the launcher's timeout is hung (stuck in a collective, a deadlock, a dead
/// filesystem), and the launcher restarts the job. Without the variable (plain `mpirun`, one process) it does nothing.
public struct Heartbeat: Sendable {
    /// The environment variable naming the folder.
    public static let variable = "GOKU_HEARTBEAT_DIR"
    /// The folder, when supervised.
    public let directory: URL?
    /// This process's rank in the job.
    public let rank: Int

    /// The heartbeat of rank `rank`, in the folder the launcher named (if any).
    public init(rank: Int, directory: URL? = ProcessInfo.processInfo.environment[Heartbeat.variable].map { URL(fileURLWithPath: $0) }) {
        self.rank = rank
        self.directory = directory
    }

    /// The file of rank `rank` in `directory`.
    public static func file(rank: Int, in directory: URL) -> URL {
        directory.appendingPathComponent("rank-" + String(format: "%05d", rank))
    }

    /// Records that step `step` is done (a small file replaced by rename, so a reader never sees half of it).
    public func beat(step: Int) {
        guard let directory else { return }
        let url = Self.file(rank: rank, in: directory)
        let temporary = directory.appendingPathComponent(".rank-\(rank).tmp")
        let line = "\(getpid()) \(step) \(Date().timeIntervalSince1970)\n"
        if FileManager.default.createFile(atPath: temporary.path, contents: Data(line.utf8)) {
            rename(temporary.path, url.path)
        }
    }

    /// A rank's last beat: its pid, step and the time it was written.
    public static func read(rank: Int, in directory: URL) -> (pid: Int32, step: Int, time: Date)? {
        guard let text = try? String(contentsOf: file(rank: rank, in: directory), encoding: .utf8) else { return nil }
        let parts = text.split(whereSeparator: { $0 == " " || $0 == "\n" })
        guard parts.count >= 3, let pid = Int32(parts[0]), let step = Int(parts[1]), let time = Double(parts[2]) else { return nil }
        return (pid, step, Date(timeIntervalSince1970: time))
    }
}

/// A request to stop training cleanly: SIGTERM (a scheduler's preemption notice, `kill`) or SIGUSR1 (what
/// `goku launch` sends through `mpirun`, which forwards it to every rank on every host). The training loop looks at it
/// between steps; with several ranks they agree on it with the step's metrics, save a checkpoint together and exit.
public enum StopRequest {
    private nonisolated(unsafe) static var flag: sig_atomic_t = 0
    private nonisolated(unsafe) static var installed = false

    /// Installs the handlers (once).
    public static func install() {
        guard !installed else { return }
        installed = true
        signal(SIGTERM, stopSignalHandler)
        signal(SIGUSR1, stopSignalHandler)
    }

    /// Whether a stop was requested.
    public static var isRequested: Bool { flag != 0 }

    static func set() { flag = 1 }
}

private func stopSignalHandler(_: Int32) { StopRequest.set() }

/// Failures injected on purpose to test recovery, from `GOKU_FAULT_INJECTION` = `KIND:rank=R:step=S[:attempt=A]`
/// with KIND `hang` (the rank stops making progress before step S) or `exit` (it dies with status 1 before step S),
/// optionally only in start A of a supervised job (`Launcher.attemptVariable`). Each fires once per run folder (a
/// marker file remembers it), so the restarted job runs through. Not for production.
public struct FaultInjection: Sendable {
    /// The variable.
    public static let variable = "GOKU_FAULT_INJECTION"
    public enum Kind: String, Sendable { case hang, exit }
    public let kind: Kind
    public let rank: Int
    public let step: Int
    public let attempt: Int?

    /// The injection configured for this process, if any.
    public static func fromEnvironment() -> FaultInjection? {
        guard let spec = ProcessInfo.processInfo.environment[variable], !spec.isEmpty else { return nil }
        let parts = spec.split(separator: ":")
        guard parts.count == 3 || parts.count == 4, let kind = Kind(rawValue: String(parts[0])), parts[1].hasPrefix("rank="),
            parts[2].hasPrefix("step="), let rank = Int(parts[1].dropFirst(5)), let step = Int(parts[2].dropFirst(5))
        else { return nil }
        var attempt: Int?
        if parts.count == 4 {
            guard parts[3].hasPrefix("attempt="), let a = Int(parts[3].dropFirst(8)) else { return nil }
            attempt = a
        }
        return FaultInjection(kind: kind, rank: rank, step: step, attempt: attempt)
    }

    /// Fires when this is the rank and the step and it has not fired before in `runDirectory`.
    public func fireIfDue(rank: Int, step: Int, runDirectory: URL) {
        guard rank == self.rank, step == self.step else { return }
        if let attempt, ProcessInfo.processInfo.environment[Launcher.attemptVariable].flatMap(Int.init) != attempt { return }
        let marker = runDirectory.appendingPathComponent(".fault-injected-\(kind.rawValue)-\(rank)-\(step)")
        guard !FileManager.default.fileExists(atPath: marker.path) else { return }
        FileManager.default.createFile(atPath: marker.path, contents: nil)
        switch kind {
        case .exit:
            FileHandle.standardError.write(Data("fault injection: rank \(rank) exits before step \(step)\n".utf8))
            exit(1)
        case .hang:
            FileHandle.standardError.write(Data("fault injection: rank \(rank) hangs before step \(step)\n".utf8))
            while true { sleep(3600) }
        }
    }
}
