/// An n-dimensional array with reverse-mode automatic differentiation.
///
/// Tensors are eager and contiguous (row-major): every op computes its result at once, and movement ops that change
/// the element order (`permute`, `slice`, …) copy. `reshape` shares storage. A tensor that `requiresGrad` is a leaf
/// of the graph (a parameter); results of ops on such tensors remember how they were made (`gradNode`) while
/// gradient recording is on, so that `backward()` can apply the chain rule. Under `Autograd.inference { … }` no graph is
/// recorded.
///
/// Shape letters used in comments: `B` batch, `T` frames, `H`,`W` height and width, `C` channels, `L` tokens,
/// `D` width, `Nh`/`Dh` heads and head size.
public final class Tensor: @unchecked Sendable {
    /// Extent of each axis.
    public let shape: [Int]
    /// The elements.
    public let storage: TensorStorage
    /// Whether gradients flow into this tensor. Set it on leaves (parameters); results of ops derive it.
    public var requiresGrad: Bool
    /// The accumulated gradient of the last `backward()` calls (leaves only).
    public var grad: Tensor?
    /// How this tensor was made, when recorded for autograd.
    public var gradNode: GradNode?

    /// Wraps existing storage. `shape` must describe exactly `storage.count` elements.
    public init(shape: [Int], storage: TensorStorage, requiresGrad: Bool = false) {
        precondition(shape.allSatisfy { $0 >= 0 }, "Tensor: negative extent in shape \(shape)")
        precondition(
            shape.reduce(1, *) == storage.count,
            "Tensor: shape \(shape) needs \(shape.reduce(1, *)) elements, storage has \(storage.count)")
        self.shape = shape
        self.storage = storage
        self.requiresGrad = requiresGrad
    }

    /// Allocates an uninitialised tensor.
    public convenience init(uninitializedShape shape: [Int], dtype: DType = .float32) {
        self.init(shape: shape, storage: TensorStorage(dtype: dtype, count: shape.reduce(1, *)))
    }

    /// A float32 tensor holding `scalars` in row-major order.
    public convenience init(shape: [Int], scalars: [Float], requiresGrad: Bool = false) {
        precondition(scalars.count == shape.reduce(1, *), "Tensor: \(scalars.count) scalars for shape \(shape)")
        self.init(uninitializedShape: shape, dtype: .float32)
        scalars.withUnsafeBufferPointer { src in
            storage.pointer(as: Float.self).update(from: src.baseAddress!, count: src.count)
        }
        self.requiresGrad = requiresGrad
    }

    /// A float64 tensor holding `scalars` in row-major order.
    public convenience init(shape: [Int], scalars: [Double], requiresGrad: Bool = false) {
        precondition(scalars.count == shape.reduce(1, *), "Tensor: \(scalars.count) scalars for shape \(shape)")
        self.init(uninitializedShape: shape, dtype: .float64)
        scalars.withUnsafeBufferPointer { src in
            storage.pointer(as: Double.self).update(from: src.baseAddress!, count: src.count)
        }
        self.requiresGrad = requiresGrad
    }

    /// A rank-0 float32 tensor.
    public convenience init(_ value: Float) { self.init(shape: [], scalars: [value]) }

    /// The element type.
    @inlinable public var dtype: DType { storage.dtype }
    /// Number of elements.
    @inlinable public var count: Int { storage.count }
    /// Number of axes.
    @inlinable public var rank: Int { shape.count }

    /// Whether gradients must be tracked through this tensor (a leaf that requires them, or a recorded result).
    @inlinable public var needsGrad: Bool { requiresGrad || gradNode != nil }

    /// Elements converted to Float, in row-major order.
    public var scalars: [Float] {
        switch dtype {
        case .float32: return Array(UnsafeBufferPointer(start: storage.pointer(as: Float.self), count: count))
        case .float64: return UnsafeBufferPointer(start: storage.pointer(as: Double.self), count: count).map(Float.init)
        case .bfloat16:
            return UnsafeBufferPointer(start: storage.pointer(as: UInt16.self), count: count).map(BFloat16.float(fromBits:))
        case .float16:
            return UnsafeBufferPointer(start: storage.pointer(as: UInt16.self), count: count).map(Float16Bits.float(fromBits:))
        }
    }

    /// Elements converted to Double, in row-major order.
    public var doubleScalars: [Double] {
        if dtype == .float64 { return Array(UnsafeBufferPointer(start: storage.pointer(as: Double.self), count: count)) }
        return scalars.map(Double.init)
    }

    /// The single element of a one-element tensor.
    public func item() -> Float {
        precondition(count == 1, "item(): tensor of shape \(shape) has \(count) elements")
        return scalars[0]
    }

    /// Normalises a possibly negative axis index.
    @inlinable
    public func axis(_ a: Int, op: String = #function) -> Int {
        let r = a < 0 ? a + rank : a
        precondition(r >= 0 && r < Swift.max(rank, 1), "\(op): axis \(a) out of range for shape \(shape)")
        return r
    }

    /// Calls `body` with a typed pointer to the elements. `T` must match `dtype`.
    @inlinable
    public func withPointer<T, R>(as type: T.Type, _ body: (UnsafeMutablePointer<T>) throws -> R) rethrows -> R {
        try body(storage.pointer(as: T.self))
    }

    /// Overwrites the elements with those of `other` (same shape; converted if the dtypes differ), in place and
    /// outside autograd. Used by optimizers and checkpoint loading.
    public func assign(_ other: Tensor) {
        precondition(other.shape == shape, "assign: shape \(other.shape) into \(shape)")
        let src = other.dtype == dtype ? other : other.to(dtype)
        storage.rawPointer.copyMemory(from: src.storage.rawPointer, byteCount: storage.byteCount)
        storage.bumpVersion()
    }

    /// A new leaf sharing nothing with the graph: same values, no `gradNode`, no gradient.
    public func detached() -> Tensor {
        Tensor(shape: shape, storage: storage)
    }
}

extension Tensor: CustomStringConvertible {
    public var description: String {
        let values = scalars.prefix(8).map { String(format: "%.4g", Double($0)) }.joined(separator: ", ")
        return "Tensor(\(shape), \(dtype), [\(values)\(count > 8 ? ", …" : "")])"
    }
}

extension Tensor {
    /// A new tensor with its own storage and the same values (not recorded by autograd).
    public func copy() -> Tensor {
        let out = Tensor(uninitializedShape: shape, dtype: dtype)
        out.storage.rawPointer.copyMemory(from: storage.rawPointer, byteCount: storage.byteCount)
        return out
    }
}
