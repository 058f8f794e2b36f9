import Foundation

/// Reuses freed tensor buffers of the same size.
///
/// A fresh allocation of a large buffer costs a page fault per 4 KiB on first touch, which for the output of a
/// 4096×4608 GEMM is about 10% of the GEMM itself; training allocates the same sizes every step. Freed buffers of at
/// least `minimumBytes` are kept, keyed by exact byte count, up to `capacityBytes` in total (GOKU_CACHE_MIB, default
/// 1024; 0 disables), and handed out again before asking the system for memory.
enum StorageCache {
    static let minimumBytes = 64 * 1024
    nonisolated(unsafe) static var capacityBytes: Int = {
        if let s = ProcessInfo.processInfo.environment["GOKU_CACHE_MIB"], let mib = Int(s), mib >= 0 {
            return mib * 1_048_576
        }
        return 1024 * 1_048_576
    }()
    nonisolated(unsafe) private static var free: [Int: [UnsafeMutableRawPointer]] = [:]
    nonisolated(unsafe) private static var cachedBytes = 0
    private static let lock = NSLock()

    /// A 64-byte-aligned buffer of `byteCount` bytes (contents undefined).
    static func allocate(byteCount: Int) -> UnsafeMutableRawPointer {
        if byteCount >= minimumBytes {
            lock.lock()
            if var list = free[byteCount], let p = list.popLast() {
                free[byteCount] = list.isEmpty ? nil : list
                cachedBytes -= byteCount
                lock.unlock()
                return p
            }
            lock.unlock()
        }
        return UnsafeMutableRawPointer.allocate(byteCount: byteCount, alignment: 64)
    }

    /// Returns a buffer obtained from `allocate(byteCount:)`.
    static func release(_ pointer: UnsafeMutableRawPointer, byteCount: Int) {
        if byteCount >= minimumBytes {
            lock.lock()
            if cachedBytes + byteCount <= capacityBytes {
                free[byteCount, default: []].append(pointer)
                cachedBytes += byteCount
                lock.unlock()
                return
            }
            lock.unlock()
        }
        pointer.deallocate()
    }

    /// Gives every cached buffer back to the system.
    static func empty() {
        lock.lock()
        for (_, list) in free { for p in list { p.deallocate() } }
        free = [:]
        cachedBytes = 0
        lock.unlock()
    }
}
