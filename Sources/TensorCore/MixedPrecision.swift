import Foundation

/// Mixed-precision products: inside a `MixedPrecision.bfloat16 { }` scope, `Tensor.matmul` and `Tensor.linear` on
/// Float32 tensors round their operands to bfloat16 and multiply them through oneDNN with Float32 accumulation and a
/// Float32 result (`DNNLMatmul`), and `Tensor.conv3d` / `conv2d` do the same through oneDNN's bfloat16 convolutions
/// (`DNNLConvolution`). Everything else — master weights, optimizer state, norms, softmax statistics, elementwise
/// ops — stays Float32.
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

        /// The names configs and flags use: "fp32" and "bf16".
        public static let names = ["fp32", "bf16"]

        /// This mode's name in configs and flags.
        public var name: String { self == .bfloat16 ? "bf16" : "fp32" }

        /// The mode named "fp32" or "bf16"; nil for any other name.
        public init?(name: String) {
            switch name {
            case "fp32": self = .float32
            case "bf16": self = .bfloat16
            default: return nil
            }
        }
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

    /// The reference for benchmarks ("raw oneDNN"): C (M, N) = A·Wᵀ with A already in bfloat16 bits (M, K) and W
    /// (N, K) Float32 from the weight cache, through the same cached primitive the engine uses, without the engine's
    /// per-call rounding of A and tensor allocation. False when oneDNN is unavailable or fails.
    public static func rawProduct(
        m: Int, n: Int, k: Int, aBits: UnsafeMutablePointer<UInt16>, weight: Tensor, c: UnsafeMutablePointer<Float>
    ) -> Bool {
        precondition(
            weight.shape == [n, k] && weight.dtype == .float32, "rawProduct: weight must be Float32 (\(n), \(k))")
        return DNNLMatmul.rawProduct(
            m: m, n: n, k: k, aBits: aBits, b: weight.storage.pointer(as: Float.self), weight: weight.storage,
            transB: true, c: c)
    }

    /// The CPU instruction set oneDNN dispatches to (for example "avx512_core_amx" or "avx512_core_bf16"), or nil
    /// without oneDNN.
    public static var instructionSet: String? { DNNLMatmul.instructionSet }
}
