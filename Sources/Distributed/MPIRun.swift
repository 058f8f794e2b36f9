import Foundation

/// The `mpirun` command line that starts a job's ranks (Open MPI's launcher), as `goku launch` and the tests run it.
///
/// Choices: `--oversubscribe` when the job has more ranks than this machine has cores and no hostfile (a small
/// machine runs every rank anyway, each with its own threads); `--allow-run-as-root` when running as root (containers);
/// `btl_vader_single_copy_mechanism none` only where cross-memory attach (`process_vm_readv`, which Open MPI's
/// shared-memory transport uses for large messages) is forbidden, as in many containers, where Open MPI would
/// otherwise fail at the first large message (`crossMemoryAttachWorks`; where it works it made a 47 MB all-reduce of
/// two ranks about 1.5× faster); `--bind-to none` so that each rank's compute threads are not pinned to one core; `-x`
/// forwards the variables a rank needs on other hosts (local ranks inherit the environment).
public struct MPIRun: Sendable {
    /// Ranks to start.
    public var ranks: Int
    /// An Open MPI hostfile (`host slots=N` lines), for several machines.
    public var hostfile: String?
    /// Environment variables forwarded to every rank (`-x NAME`).
    public var forwardedVariables: [String]
    /// Further `mpirun` options (e.g. `--mca btl_tcp_if_include eth0`).
    public var extraOptions: [String]

    /// A job of `ranks` ranks.
    public init(ranks: Int, hostfile: String? = nil, forwardedVariables: [String] = [], extraOptions: [String] = []) {
        self.ranks = ranks
        self.hostfile = hostfile
        self.forwardedVariables = forwardedVariables
        self.extraOptions = extraOptions
    }

    /// The `mpirun` executable: `GOKU_MPIRUN` when set, else `mpirun` on the PATH.
    public static var executable: String {
        if let path = ProcessInfo.processInfo.environment["GOKU_MPIRUN"], !path.isEmpty { return path }
        let search = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":")
        for folder in search {
            let candidate = "\(folder)/mpirun"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return "mpirun"
    }

    /// Whether ranks on this machine may read each other's memory (`process_vm_readv`): the call must be allowed
    /// (seccomp filters of containers often refuse it) and Yama's ptrace scope must let siblings read each other
    /// (scope 0, or up to 2 for root).
    public static let crossMemoryAttachWorks: Bool = {
        typealias ProcessVMReadv = @convention(c) (pid_t, UnsafePointer<iovec>?, UInt, UnsafePointer<iovec>?, UInt, UInt) -> Int
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "process_vm_readv") else { return false }
        let readv = unsafeBitCast(symbol, to: ProcessVMReadv.self)
        var source: UInt64 = 0x676F6B75, target: UInt64 = 0
        let read = withUnsafeMutableBytes(of: &source) { s in
            withUnsafeMutableBytes(of: &target) { t in
                var local = iovec(iov_base: t.baseAddress, iov_len: 8), remote = iovec(iov_base: s.baseAddress, iov_len: 8)
                return readv(getpid(), &local, 1, &remote, 1, 0)
            }
        }
        guard read == 8, target == source else { return false }
        guard let text = try? String(contentsOfFile: "/proc/sys/kernel/yama/ptrace_scope", encoding: .utf8),
            let scope = Int(text.trimmingCharacters(in: .whitespacesAndNewlines))
        else { return true }
        return scope == 0 || (scope <= 2 && geteuid() == 0)
    }()

    /// Arguments after `mpirun` that start `program arguments…` on every rank.
    public func arguments(program: String, _ programArguments: [String]) -> [String] {
        var out = ["-n", "\(ranks)"]
        if let hostfile {
            out += ["--hostfile", hostfile]
        } else if ranks > ProcessInfo.processInfo.activeProcessorCount {
            out.append("--oversubscribe")
        }
        if getuid() == 0 { out.append("--allow-run-as-root") }
        out += ["--bind-to", "none"]
        if !Self.crossMemoryAttachWorks { out += ["--mca", "btl_vader_single_copy_mechanism", "none"] }
        for name in forwardedVariables { out += ["-x", name] }
        out += extraOptions
        out.append(program)
        out += programArguments
        return out
    }
}
