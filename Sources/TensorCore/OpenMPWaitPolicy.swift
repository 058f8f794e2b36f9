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
/// libgomp reads its environment once, when it is loaded (before `main`), so the setting only takes effect in a
/// fresh process image: `usePassiveWaitPolicy()` sets the variable and re-executes the program.
public enum OpenMPWaitPolicy {
    /// Re-executes the running program with `OMP_WAIT_POLICY=passive` unless the variable is already set (a value
    /// the user chose is kept). Call it first thing in `main`, before any other work or threads. Returns (doing
    /// nothing) when the variable is set or when the program cannot be re-executed; never returns otherwise.
    public static func usePassiveWaitPolicy() {
        guard getenv("OMP_WAIT_POLICY") == nil else { return }
        setenv("OMP_WAIT_POLICY", "passive", 1)
        execv("/proc/self/exe", CommandLine.unsafeArgv)
        // execv returned: it failed. Carry on with libgomp's default policy (slower, same results).
    }
}
