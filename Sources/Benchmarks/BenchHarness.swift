import Foundation
import TensorCore

/// Timing and memory measurement for `goku bench`.
///
/// Each case runs once to warm up, then repeatedly until both `minRuns` runs and `minSeconds` have passed; the
/// median is reported (these machines are shared and noisy, so medians and same-run ratios are what to quote).
public enum BenchHarness {
    /// Median seconds of `body` over repeated runs.
    public static func median(minRuns: Int = 5, minSeconds: Double = 1.0, maxRuns: Int = 50, _ body: () -> Void) -> Double {
        body()  // warm-up
        var times: [Double] = []
        let start = Date()
        while times.count < minRuns || (Date().timeIntervalSince(start) < minSeconds && times.count < maxRuns) {
            let t0 = DispatchTime.now().uptimeNanoseconds
            body()
            times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
        }
        times.sort()
        return times[times.count / 2]
    }

    /// Resets the kernel's peak-RSS counter for this process (Linux `clear_refs` 5); false when unsupported.
    @discardableResult
    public static func resetPeakMemory() -> Bool {
        guard let handle = FileHandle(forWritingAtPath: "/proc/self/clear_refs") else { return false }
        defer { try? handle.close() }
        do { try handle.write(contentsOf: Data("5".utf8)) } catch { return false }
        return true
    }

    /// Peak resident memory of this process since the last reset, in bytes (VmHWM).
    public static func peakMemory() -> Int {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") })
        else { return 0 }
        let kb = Int(line.split(separator: " ").dropFirst().first ?? "0") ?? 0
        return kb * 1024
    }

    /// Current resident memory (VmRSS), in bytes.
    public static func residentMemory() -> Int {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") })
        else { return 0 }
        return (Int(line.split(separator: " ").dropFirst().first ?? "0") ?? 0) * 1024
    }

    /// What one run of `body` allocates: its peak resident memory above the resident memory before it, with the
    /// engine's buffer cache emptied and the C heap trimmed first (so memory kept from earlier cases neither hides nor
    /// inflates it).
    public static func stepMemory(_ body: () -> Void) -> Int {
        TensorStorage.emptyCache()
        // glibc keeps freed heap pages mapped (and raises its mmap threshold after large frees), which would hide
        // the second case's allocations; give them back first.
        // (malloc_trim is in <malloc.h>, which the Glibc module does not export: look it up.)
        if let symbol = dlsym(nil, "malloc_trim") {
            typealias Trim = @convention(c) (Int) -> Int32
            _ = unsafeBitCast(symbol, to: Trim.self)(0)
        }
        let base = residentMemory()
        resetPeakMemory()
        body()
        return peakMemory() - base
    }

    public static func format(_ value: Double, _ digits: Int = 1) -> String { String(format: "%.\(digits)f", value) }
    public static func mib(_ bytes: Int) -> String { String(format: "%.0f MiB", Double(bytes) / 1_048_576) }
}
