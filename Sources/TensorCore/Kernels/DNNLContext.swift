import CDNNL

/// The process's oneDNN CPU engine and stream, shared by every oneDNN kernel (bf16 matmul, convolution).
///
/// Created once on first use; nil when oneDNN cannot create a CPU engine, in which case the kernels report
/// themselves unavailable and their callers fall back to the OpenBLAS paths. Primitives are executed on the one
/// in-order stream; the engine's kernels run on oneDNN's own OpenMP threads.
final class DNNLContext: @unchecked Sendable {
    /// The CPU engine.
    let engine: dnnl_engine_t
    /// The in-order stream primitives run on.
    let stream: dnnl_stream_t

    /// The shared context, or nil without a usable oneDNN.
    nonisolated(unsafe) static let shared = DNNLContext()

    private init?() {
        var engine: dnnl_engine_t?
        guard dnnl_engine_create(&engine, dnnl_cpu, 0) == dnnl_success, let engine else { return nil }
        var stream: dnnl_stream_t?
        guard dnnl_stream_create(&stream, engine, UInt32(dnnl_stream_default_flags.rawValue)) == dnnl_success,
            let stream
        else {
            dnnl_engine_destroy(engine)
            return nil
        }
        self.engine = engine
        self.stream = stream
    }
}
