import Foundation

/// The `mpirun` command line that starts a job's ranks (Open MPI's launcher), as `goku launch` and the tests run it.
///
/// Choices: `--oversubscribe` when the job has more ranks than this machine has cores and no hostfile (a small
/// machine runs every rank anyway, each with its own threads); `--allow-run-as-root` when running as root (containers);
/// `btl_vader_single_copy_mechanism none` because containers usually forbid the cross-memory attach that Open MPI's
/// shared-memory transport would otherwise try; `--bind-to none` so that each rank's compute threads are not pinned
/// to one core; `-x` forwards the variables a rank needs on other hosts (local ranks inherit the environment).
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

    /// Arguments after `mpirun` that start `program arguments…` on every rank.
    public func arguments(program: String, _ programArguments: [String]) -> [String] {
        var out = ["-n", "\(ranks)"]
        if let hostfile {
            out += ["--hostfile", hostfile]
        } else if ranks > ProcessInfo.processInfo.activeProcessorCount {
            out.append("--oversubscribe")
        }
        if getuid() == 0 { out.append("--allow-run-as-root") }
        out += ["--bind-to", "none", "--mca", "btl_vader_single_copy_mechanism", "none"]
        for name in forwardedVariables { out += ["-x", name] }
        out += extraOptions
        out.append(program)
        out += programArguments
        return out
    }
}
