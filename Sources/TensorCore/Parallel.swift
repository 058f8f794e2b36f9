import CBLAS
import CKernels
import Dispatch
import Foundation

/// The engine's one fixed pool of worker threads, sized to the cores, and the BLAS thread setting beside it.
///
/// Work is split with `Parallel.forEach`: the range is cut into at most `threadCount` contiguous chunks of at least
/// `grain` items, which run on GCD's pool (itself sized to the cores). BLAS runs its own threads; so that the two
/// never oversubscribe the cores, a kernel that calls BLAS from inside a parallel region wraps the region in
/// `Parallel.withSingleThreadedBLAS`, and BLAS is otherwise given `threadCount` threads.
public enum Parallel {
    nonisolated(unsafe) private static var _threadCount: Int = {
        if let s = ProcessInfo.processInfo.environment["GOKU_NUM_THREADS"], let n = Int(s), n > 0 { return n }
        return max(1, ProcessInfo.processInfo.activeProcessorCount)
    }()
    nonisolated(unsafe) private static var configured = false

    /// Worker threads used by elementwise, reduction and attention kernels, and by BLAS outside parallel regions.
    /// Set from `GOKU_NUM_THREADS` when present, else the number of active cores.
    public static var threadCount: Int {
        get { configureOnce(); return _threadCount }
        set {
            _threadCount = max(1, newValue)
            openblas_set_num_threads(Int32(_threadCount))
            configured = true
        }
    }

    private static func configureOnce() {
        if !configured {
            configured = true
            openblas_set_num_threads(Int32(_threadCount))
            if let warning = blasCoreWarning { FileHandle.standardError.write(Data("goku: \(warning)\n".utf8)) }
        }
    }

    /// Runs `body` over `0..<count` split into contiguous chunks, in parallel when the work is large enough.
    /// - Parameters:
    ///   - count: number of items.
    ///   - grain: the least number of items worth a chunk of its own.
    ///   - body: called once per chunk with its half-open range; chunks never overlap.
    @inlinable
    public static func forEach(_ count: Int, grain: Int = 1, _ body: (Range<Int>) -> Void) {
        if count <= 0 { return }
        let workers = min(threadCount, max(1, count / max(1, grain)))
        if workers <= 1 {
            body(0..<count)
            return
        }
        let chunk = (count + workers - 1) / workers
        DispatchQueue.concurrentPerform(iterations: workers) { w in
            let start = w * chunk
            let end = min(count, start + chunk)
            if start < end { body(start..<end) }
        }
    }

    /// Runs `body` with BLAS limited to one thread, for kernels that call BLAS from several of the pool's threads.
    @inlinable
    public static func withSingleThreadedBLAS<R>(_ body: () throws -> R) rethrows -> R {
        let n = threadCount
        if n <= 1 { return try body() }
        openblas_set_num_threads(1)
        defer { openblas_set_num_threads(Int32(n)) }
        return try body()
    }

    /// A short description of the BLAS library in use (OpenBLAS's build configuration and the kernel it picked).
    public static var blasDescription: String {
        configureOnce()
        let config = openblas_get_config().map { String(cString: $0) } ?? "OpenBLAS"
        let core = openblas_get_corename().map { String(cString: $0) } ?? "unknown"
        return "\(config.trimmingCharacters(in: .whitespaces)) (core \(core), \(openblas_get_num_threads()) threads)"
            + (blasCoreWarning.map { " — \($0)" } ?? "")
    }

    /// OpenBLAS kernels that use AVX-512.
    static let avx512BLASCores: Set<String> = ["skylakex", "cooperlake", "sapphirerapids"]

    /// A warning when OpenBLAS's run-time dispatch chose kernels without AVX-512 on a CPU that has it (a virtual
    /// machine that masks the CPU model can lead it to pick e.g. `Prescott`, about 8× slower), else nil. The choice is
    /// made when the library loads, so only the environment can change it: `OPENBLAS_CORETYPE=SkylakeX`.
    public static var blasCoreWarning: String? {
        guard goku_avx512_available(), let name = openblas_get_corename().map({ String(cString: $0) }),
            !avx512BLASCores.contains(name.lowercased())
        else { return nil }
        return "warning: this CPU has AVX-512 but OpenBLAS chose its \(name) kernels; set OPENBLAS_CORETYPE=SkylakeX"
    }
}
