/// A contiguous, 64-byte-aligned block of tensor elements.
///
/// Storage is a reference type so that `reshape` can share it without copying. Every in-place write through
/// `Tensor.assign(_:)` or an optimizer bumps `version`, which caches derived from the data (reordered weights, for
/// example) compare against to know that they are stale.
public final class TensorStorage: @unchecked Sendable {
    /// The element type.
    public let dtype: DType
    /// Number of elements.
    public let count: Int
    /// The first byte.
    public let rawPointer: UnsafeMutableRawPointer
    /// Increases on every in-place write.
    public private(set) var version: Int = 0

    /// Allocates uninitialised storage for `count` elements of `dtype`.
    public init(dtype: DType, count: Int) {
        precondition(count >= 0, "TensorStorage: negative element count \(count)")
        self.dtype = dtype
        self.count = count
        rawPointer = StorageCache.allocate(byteCount: max(1, count * dtype.byteCount))
    }

    deinit { StorageCache.release(rawPointer, byteCount: max(1, count * dtype.byteCount)) }

    /// Returns every cached free buffer to the system (see `StorageCache`).
    public static func emptyCache() { StorageCache.empty() }

    /// Size in bytes.
    public var byteCount: Int { count * dtype.byteCount }

    /// Marks the contents as changed.
    public func bumpVersion() { version &+= 1 }

    /// Typed view of the elements.
    @inlinable @inline(__always)
    public func pointer<T>(as type: T.Type) -> UnsafeMutablePointer<T> {
        rawPointer.assumingMemoryBound(to: T.self)
    }
}
