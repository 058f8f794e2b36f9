import Foundation

/// How the math libraries' idle threads wait for work: oneDNN's OpenMP workers and OpenBLAS's pthreads.
///
/// **OpenMP (oneDNN).** libgomp's default is to spin for about 300 000 iterations after every parallel region before
/// sleeping. oneDNN runs one parallel region per convolution, and the engine's own work between two convolutions
/// (norms, SiLU, copies) runs on `Parallel`'s pool and on OpenBLAS's threads, so on a 2-core machine the spinning
/// OpenMP worker took a whole core away from them: a VAE training step spent ~65 % of its CPU time in libgomp's spin
/// loop. With `OMP_WAIT_POLICY=passive` the workers sleep as soon as a region ends; waking them costs microseconds
/// per convolution of milliseconds.
///
/// Sleeping at once is too eager, though: a convolution is several oneDNN regions back to back (reorders in, the
/// primitive, a reorder out), and a VAE step on 32×32 crops runs thousands of them, most only tens of microseconds
/// long, so a futex wake and sleep around each one added ~30 % to the step. `GOMP_SPINCOUNT=10000` (a few
/// microseconds of spinning before sleeping) keeps the worker awake across a convolution's regions and still frees
/// the core between convolutions: 3.2 VAE steps/s against 2.45 with no spinning (same run; 3000 to 30000 spins all
/// measured 3.2), and the default of 300000 spins is the 65 % loss described above.
///
/// **OpenBLAS.** Its idle worker threads call `sched_yield` in a loop for 2²⁸ cycles before they sleep
/// (`OPENBLAS_THREAD_TIMEOUT`, default 28). Between two GEMMs the engine's attention, norms and elementwise work run
/// on `Parallel`'s threads, and the yielding OpenBLAS worker competes with them for the 2 cores: a `perf` profile of
/// the fp32 Goku block (`goku bench block`) put ~7 % of its samples in the scheduler. With
/// `OPENBLAS_THREAD_TIMEOUT=4` (the smallest value: sleep almost at once) the fp32 block ran in 696–722 ms over five
/// runs against 712–838 ms with the default, and the shipped model's training step (`goku bench train`, many small
/// GEMMs, each waking the worker) in 213–223 ms against 222–298 ms.
///
/// Both libraries read their environment once, when they are loaded (before `main`), so the settings only take
/// effect in a fresh process image: `useQuickSleepingThreads()` sets the variables and re-executes the program.
public enum ThreadWaitPolicy {
    /// Spins before an idle OpenMP worker sleeps.
    public static let spinCount = "10000"

    /// Spins-to-sleep exponent for idle OpenBLAS threads (2ⁿ cycles; 4 is OpenBLAS's smallest).
    public static let openBLASTimeout = "4"
    /// Names, comma separated, of the variables `useQuickSleepingThreads` set itself.
    static let markerVariable = "GOKU_THREAD_POLICY_SET"

    /// This process's environment as the user gave it: without the variables `useQuickSleepingThreads` added, for
    /// child processes that should run as they would on their own (the PyTorch peers of the benchmarks).
    public static func userEnvironment() -> [String: String] {
        var env = ProcessInfo.processInfo.environment
        for name in (env[markerVariable] ?? "").split(separator: ",") { env[String(name)] = nil }
        env[markerVariable] = nil
        return env
    }

    /// Re-executes the running program with `OMP_WAIT_POLICY=passive` and `GOMP_SPINCOUNT=10000` unless
    /// `OMP_WAIT_POLICY` is already set, and with `OPENBLAS_THREAD_TIMEOUT=4` unless that is set (the user's choices
    /// are kept, and so is a `GOMP_SPINCOUNT` they set). Call it first thing in `main`, before any other work or
    /// threads. Returns (doing nothing) when both variables are set or when the program cannot be re-executed; never
    /// returns otherwise.
    public static func useQuickSleepingThreads() {
        let setOpenMP = getenv("OMP_WAIT_POLICY") == nil, setOpenBLAS = getenv("OPENBLAS_THREAD_TIMEOUT") == nil
        guard setOpenMP || setOpenBLAS else { return }
        var set: [String] = []
        if setOpenMP {
            setenv("OMP_WAIT_POLICY", "passive", 1)
            set.append("OMP_WAIT_POLICY")
            if getenv("GOMP_SPINCOUNT") == nil {
                setenv("GOMP_SPINCOUNT", spinCount, 1)
                set.append("GOMP_SPINCOUNT")
            }
        }
        if setOpenBLAS {
            setenv("OPENBLAS_THREAD_TIMEOUT", openBLASTimeout, 1)
            set.append("OPENBLAS_THREAD_TIMEOUT")
        }
        setenv(markerVariable, set.joined(separator: ","), 1)
        execv("/proc/self/exe", CommandLine.unsafeArgv)
        // execv returned: it failed. Carry on with the libraries' defaults (slower, same results).
    }
}
