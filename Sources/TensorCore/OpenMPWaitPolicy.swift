import Foundation

/// How idle OpenMP threads (oneDNN's workers: `DNNLConvolution`, `DNNLMatmul`) wait for work.
///
/// libgomp's default is to spin for about 300 000 iterations after every parallel region before sleeping. oneDNN
/// runs one parallel region per convolution, and the engine's own work between two convolutions (norms, SiLU,
/// copies) runs on `Parallel`'s pool and on OpenBLAS's threads, so on a 2-core machine the spinning OpenMP worker
/// took a whole core away from them: a VAE training step spent ~65 % of its CPU time in libgomp's spin loop.
/// With `OMP_WAIT_POLICY=passive` the workers sleep as soon as a region ends; waking them costs microseconds per
/// convolution of milliseconds.
///
/// Sleeping at once is too eager, though: a convolution is several oneDNN regions back to back (reorders in, the
/// primitive, a reorder out), and a VAE step on 32×32 crops runs thousands of them, most only tens of microseconds
/// long, so a futex wake and sleep around each one added ~30 % to the step. `GOMP_SPINCOUNT=10000` (a few
/// microseconds of spinning before sleeping) keeps the worker awake across a convolution's regions and still frees
/// the core between convolutions: 3.2 VAE steps/s against 2.45 with no spinning (same run; 3000 to 30000 spins all
/// measured 3.2), and the default of 300000 spins is the 65 % loss described above.
///
/// libgomp reads its environment once, when it is loaded (before `main`), so the setting only takes effect in a
/// fresh process image: `usePassiveWaitPolicy()` sets the variables and re-executes the program.
public enum OpenMPWaitPolicy {
    /// Spins before an idle OpenMP worker sleeps.
    public static let spinCount = "10000"

    /// Re-executes the running program with `OMP_WAIT_POLICY=passive` and `GOMP_SPINCOUNT=10000` unless
    /// `OMP_WAIT_POLICY` is already set (the user's choice is kept, and so is a `GOMP_SPINCOUNT` they set). Call it
    /// first thing in `main`, before any other work or threads. Returns (doing nothing) when the variable is set or
    /// when the program cannot be re-executed; never returns otherwise.
    public static func usePassiveWaitPolicy() {
        guard getenv("OMP_WAIT_POLICY") == nil else { return }
        setenv("OMP_WAIT_POLICY", "passive", 1)
        setenv("GOMP_SPINCOUNT", spinCount, 0)
        execv("/proc/self/exe", CommandLine.unsafeArgv)
        // execv returned: it failed. Carry on with libgomp's default policy (slower, same results).
    }
}
