import Foundation

/// Mixed-precision matrix products: inside a `MixedPrecision.bfloat16 { }` scope, `Tensor.matmul` and
/// `Tensor.linear` on Float32 tensors round their operands to bfloat16 and multiply them through oneDNN with Float32
/// accumulation and a Float32 result (`DNNLMatmul`). Everything else — master weights, optimizer state, norms,
/// softmax statistics, elementwise ops — stays Float32.
///
/// The mode is per thread (a thread-local flag), so concurrent work on other threads is unaffected. A product records
/// the mode it ran in, and its gradient products (input and weight gradients) run in that same mode even when
/// `backward()` is called outside the scope, as PyTorch's autocast does.
///
/// Choice: when oneDNN is missing or refuses a shape, the product silently falls back to Float32 sgemm (the result is
/// then more accurate, never wrong); `isAvailable` says whether the bf16 path exists on this machine.
public enum MixedPrecision {
    /// The precision of matrix products.
    public enum Mode: Sendable {
        /// Float32 operands (OpenBLAS sgemm).
        case float32
        /// bfloat16 operands, Float32 accumulation and output (oneDNN).
        case bfloat16
    }

    private static let key: pthread_key_t = {
        var k = pthread_key_t()
        pthread_key_create(&k, nil)
        return k
    }()

    /// The mode of matrix products on this thread.
    public static var current: Mode {
        pthread_getspecific(key) == nil ? .float32 : .bfloat16
    }

    /// Runs `body` with matrix products in `mode` on this thread, restoring the previous mode afterwards.
    public static func with<R>(_ mode: Mode, _ body: () throws -> R) rethrows -> R {
        let saved = pthread_getspecific(key)
        pthread_setspecific(key, mode == .bfloat16 ? UnsafeRawPointer(bitPattern: 1) : nil)
        defer { pthread_setspecific(key, saved) }
        return try body()
    }

    /// Runs `body` with bfloat16 matrix products (see the type's documentation).
    public static func bfloat16<R>(_ body: () throws -> R) rethrows -> R { try with(.bfloat16, body) }

    /// Whether bfloat16 products run through oneDNN on this machine (false: they fall back to Float32).
    public static var isAvailable: Bool { DNNLMatmul.isAvailable }

    /// The CPU instruction set oneDNN dispatches to (for example "avx512_core_amx" or "avx512_core_bf16"), or nil
    /// without oneDNN.
    public static var instructionSet: String? { DNNLMatmul.instructionSet }
}
