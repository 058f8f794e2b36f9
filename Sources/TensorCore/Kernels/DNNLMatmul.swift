import CDNNL
import CKernels
import Foundation

/// bfloat16 matrix products through oneDNN's matmul primitive: C (Float32) = op(A)·op(B) with A and B rounded to
/// bfloat16 and Float32 accumulation. oneDNN picks the instruction set at run time: AMX tiles where the CPU has them,
/// AVX512-BF16 dot products otherwise, and a conversion path on older CPUs.
///
/// - Primitive cache: one primitive per (M, N, K, transposes, weight layout), created on first use and kept.
/// - Weight cache: when the caller names the storage of B (a parameter), B is reordered once into the blocked
///   layout the primitive prefers (`format_tag::any`, converted to bfloat16 in the same reorder) and kept, keyed by
///   the storage's identity and transposition and checked against its `version` (bumped by every in-place write:
///   `assign`, optimizer steps) and its liveness (a weak reference, so a new storage at a freed address never matches
///   a stale entry). A changed weight is reordered again on its next use.
/// - Other operands are rounded to bfloat16 for each call: A into row-major order (a transposed A is transposed in the
///   same pass, so the primitive always reads a plain source), a B that is not a parameter in its own layout (a
///   transpose becomes strides).
///
/// Any oneDNN error makes `gemm` return false, and the caller falls back to Float32 sgemm.
enum DNNLMatmul {
    private struct PrimitiveKey: Hashable {
        let m: Int, n: Int, k: Int, transA: Bool, transB: Bool, packedWeights: Bool
    }

    /// A matmul primitive and the weights layout it expects.
    private final class Primitive {
        let descriptor: dnnl_primitive_desc_t
        let primitive: dnnl_primitive_t
        let weightsDescriptor: dnnl_memory_desc_t

        init(descriptor: dnnl_primitive_desc_t, primitive: dnnl_primitive_t, weightsDescriptor: dnnl_memory_desc_t) {
            self.descriptor = descriptor
            self.primitive = primitive
            self.weightsDescriptor = weightsDescriptor
        }

        deinit {
            dnnl_primitive_destroy(primitive)
            dnnl_primitive_desc_destroy(descriptor)
        }
    }

    private struct WeightKey: Hashable {
        let storage: ObjectIdentifier, transposed: Bool, k: Int, n: Int
    }

    /// A weight reordered into a primitive's layout, valid while its storage lives at the same version.
    private final class PackedWeight {
        weak var storage: TensorStorage?
        let version: Int
        let memory: dnnl_memory_t
        let descriptor: dnnl_memory_desc_t

        init(storage: TensorStorage, memory: dnnl_memory_t, descriptor: dnnl_memory_desc_t) {
            self.storage = storage
            version = storage.version
            self.memory = memory
            self.descriptor = descriptor
        }

        deinit { dnnl_memory_destroy(memory) }
    }

    private static var context: DNNLContext? { DNNLContext.shared }
    nonisolated(unsafe) private static var primitives: [PrimitiveKey: Primitive] = [:]
    nonisolated(unsafe) private static var packed: [WeightKey: PackedWeight] = [:]
    /// Reorders done so far (for tests of the weight cache).
    nonisolated(unsafe) private(set) static var reorderCount = 0
    private static let lock = NSLock()

    /// Whether oneDNN created a CPU engine that can run bfloat16 matrix products: its engine exists on any x86-64
    /// CPU, but its bf16 matmul needs AVX-512 (or AVX2-VNNI-2), so primitive creation fails on an AVX2-only CPU and
    /// every product falls back to Float32 there. Probed once with a small product.
    static let isAvailable: Bool = {
        guard let context else { return false }
        lock.lock()
        defer { lock.unlock() }
        return primitive(PrimitiveKey(m: 16, n: 16, k: 16, transA: false, transB: false, packedWeights: false), context) != nil
    }()

    /// The instruction set oneDNN dispatches to, by oneDNN's name.
    static var instructionSet: String? {
        guard isAvailable else { return nil }
        switch dnnl_get_effective_cpu_isa() {
        case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx"
        case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16"
        case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni"
        case dnnl_cpu_isa_avx512_core: return "avx512_core"
        case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni"
        case dnnl_cpu_isa_avx2: return "avx2"
        case let other: return "isa 0x\(String(other.rawValue, radix: 16))"
        }
    }

    /// A 2-D descriptor of a row-major (rows, cols) matrix, or of the transpose of a row-major (cols, rows) one.
    private static func descriptor(_ rows: Int, _ cols: Int, _ type: dnnl_data_type_t, transposed: Bool)
        -> dnnl_memory_desc_t?
    {
        var md = dnnl_memory_desc_t()
        let dims: [Int64] = [Int64(rows), Int64(cols)]
        let strides: [Int64] = transposed ? [1, Int64(rows)] : [Int64(cols), 1]
        return dnnl_memory_desc_init_by_strides(&md, 2, dims, type, strides) == dnnl_success ? md : nil
    }

    /// The cached primitive for a shape (created on first use).
    private static func primitive(_ key: PrimitiveKey, _ context: DNNLContext) -> Primitive? {
        if let p = primitives[key] { return p }
        guard var src = descriptor(key.m, key.k, dnnl_bf16, transposed: key.transA),
            var dst = descriptor(key.m, key.n, dnnl_f32, transposed: false)
        else { return nil }
        var weights = dnnl_memory_desc_t()
        if key.packedWeights {
            let dims: [Int64] = [Int64(key.k), Int64(key.n)]
            guard dnnl_memory_desc_init_by_tag(&weights, 2, dims, dnnl_bf16, dnnl_format_tag_any) == dnnl_success
            else { return nil }
        } else {
            guard let w = descriptor(key.k, key.n, dnnl_bf16, transposed: key.transB) else { return nil }
            weights = w
        }
        var desc = dnnl_matmul_desc_t()
        guard dnnl_matmul_desc_init(&desc, &src, &weights, nil, &dst) == dnnl_success else { return nil }
        var pd: dnnl_primitive_desc_t?
        guard dnnl_primitive_desc_create(&pd, &desc, nil, context.engine, nil) == dnnl_success, let pd else {
            return nil
        }
        var prim: dnnl_primitive_t?
        guard dnnl_primitive_create(&prim, pd) == dnnl_success, let prim,
            let chosen = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0)
        else {
            dnnl_primitive_desc_destroy(pd)
            return nil
        }
        let p = Primitive(descriptor: pd, primitive: prim, weightsDescriptor: chosen.pointee)
        primitives[key] = p
        return p
    }

    /// B (K, N) of `storage` reordered (and rounded to bfloat16) into `layout`, from the cache when still valid.
    private static func packedWeight(
        _ b: UnsafePointer<Float>, storage: TensorStorage, transposed: Bool, k: Int, n: Int, layout: dnnl_memory_desc_t,
        _ context: DNNLContext
    ) -> dnnl_memory_t? {
        let key = WeightKey(storage: ObjectIdentifier(storage), transposed: transposed, k: k, n: n)
        var wanted = layout
        if let entry = packed[key], entry.storage === storage, entry.version == storage.version {
            var have = entry.descriptor
            if dnnl_memory_desc_equal(&have, &wanted) != 0 { return entry.memory }
        }
        guard var source = descriptor(k, n, dnnl_f32, transposed: transposed) else { return nil }
        var from: dnnl_memory_t?, to: dnnl_memory_t?
        guard dnnl_memory_create(&from, &source, context.engine, UnsafeMutableRawPointer(mutating: b)) == dnnl_success,
            let from
        else { return nil }
        defer { dnnl_memory_destroy(from) }
        // UInt.max as the handle is DNNL_MEMORY_ALLOCATE: the memory object allocates (and frees) its own buffer.
        guard
            dnnl_memory_create(&to, &wanted, context.engine, UnsafeMutableRawPointer(bitPattern: UInt.max))
                == dnnl_success, let to
        else {
            return nil
        }
        var rpd: dnnl_primitive_desc_t?, reorder: dnnl_primitive_t?
        guard
            dnnl_reorder_primitive_desc_create(&rpd, &source, context.engine, &wanted, context.engine, nil)
                == dnnl_success,
            let rpd
        else {
            dnnl_memory_destroy(to)
            return nil
        }
        defer { dnnl_primitive_desc_destroy(rpd) }
        guard dnnl_primitive_create(&reorder, rpd) == dnnl_success, let reorder else {
            dnnl_memory_destroy(to)
            return nil
        }
        defer { dnnl_primitive_destroy(reorder) }
        let args = [
            dnnl_exec_arg_t(arg: GOKU_DNNL_ARG_FROM, memory: from), dnnl_exec_arg_t(arg: GOKU_DNNL_ARG_TO, memory: to),
        ]
        guard dnnl_primitive_execute(reorder, context.stream, 2, args) == dnnl_success,
            dnnl_stream_wait(context.stream) == dnnl_success
        else {
            dnnl_memory_destroy(to)
            return nil
        }
        reorderCount += 1
        // Drop entries whose storage is gone before adding one.
        packed = packed.filter { $0.value.storage != nil }
        packed[key] = PackedWeight(storage: storage, memory: to, descriptor: wanted)
        return to
    }

    /// Rounds `count` Floats to bfloat16 bits (round to nearest even, NaN kept quiet, as `BFloat16.bits`) on the
    /// calling thread (`goku_round_bf16`: AVX-512 where the CPU has it): oneDNN's OpenMP workers are still spinning
    /// right after a product, and a second thread pool competing with them for the cores costs more than the pass.
    static func roundToBFloat16(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<UInt16>, _ count: Int) {
        goku_round_bf16(x, y, count)
    }

    /// C (M, N, row-major, Float32) = op(A)·op(B) in bfloat16 with Float32 accumulation; false when oneDNN is
    /// unavailable or fails (C is then unspecified and the caller recomputes it).
    /// - Parameters:
    ///   - a: op(A) is (M, K): A is row-major (M, K), or (K, M) when `transA`.
    ///   - b: op(B) is (K, N): B is row-major (K, N), or (N, K) when `transB`.
    ///   - weight: the storage B lives in when B is a whole parameter whose reorder may be cached; nil otherwise.
    static func gemm(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>,
        c: UnsafeMutablePointer<Float>, weight: TensorStorage?
    ) -> Bool {
        guard isAvailable, let context else { return false }
        lock.lock()
        defer { lock.unlock() }
        // A is always handed over row-major: a transposed A is transposed while it is rounded (one pass either way),
        // so every product runs the primitive for a plain source, whose AMX/AVX-512 kernels need no copy of it.
        let key = PrimitiveKey(m: m, n: n, k: k, transA: false, transB: transB, packedWeights: weight != nil)
        guard let p = primitive(key, context), var srcMD = descriptor(m, k, dnnl_bf16, transposed: false),
            var dstMD = descriptor(m, n, dnnl_f32, transposed: false)
        else { return false }
        let aBits = TensorStorage(dtype: .bfloat16, count: m * k)
        if transA {
            goku_round_bf16_transposed(a, Int32(k), Int32(m), Int32(m), aBits.pointer(as: UInt16.self))
        } else {
            roundToBFloat16(a, aBits.pointer(as: UInt16.self), m * k)
        }
        var src: dnnl_memory_t?, dst: dnnl_memory_t?
        guard dnnl_memory_create(&src, &srcMD, context.engine, aBits.rawPointer) == dnnl_success, let src else {
            return false
        }
        defer { dnnl_memory_destroy(src) }
        guard dnnl_memory_create(&dst, &dstMD, context.engine, c) == dnnl_success, let dst else { return false }
        defer { dnnl_memory_destroy(dst) }
        var bBits: TensorStorage? = nil
        var plainWeights: dnnl_memory_t? = nil
        defer { if let plainWeights { dnnl_memory_destroy(plainWeights) } }
        let weights: dnnl_memory_t
        if let weight {
            guard
                let w = packedWeight(
                    b, storage: weight, transposed: transB, k: k, n: n, layout: p.weightsDescriptor, context)
            else { return false }
            weights = w
        } else {
            let bits = TensorStorage(dtype: .bfloat16, count: k * n)
            roundToBFloat16(b, bits.pointer(as: UInt16.self), k * n)
            bBits = bits
            var md = p.weightsDescriptor
            guard dnnl_memory_create(&plainWeights, &md, context.engine, bits.rawPointer) == dnnl_success,
                let plainWeights
            else { return false }
            weights = plainWeights
        }
        let args = [
            dnnl_exec_arg_t(arg: GOKU_DNNL_ARG_SRC, memory: src),
            dnnl_exec_arg_t(arg: GOKU_DNNL_ARG_WEIGHTS, memory: weights),
            dnnl_exec_arg_t(arg: GOKU_DNNL_ARG_DST, memory: dst),
        ]
        let ok =
            dnnl_primitive_execute(p.primitive, context.stream, 3, args) == dnnl_success
            && dnnl_stream_wait(context.stream) == dnnl_success
        withExtendedLifetime((aBits, bBits)) {}
        return ok
    }

    /// Runs an already-created primitive on operands already in bfloat16 (the packed weight from the cache): the
    /// "raw oneDNN" reference of `goku bench ops`, without the engine's per-call rounding of A.
    static func rawProduct(
        m: Int, n: Int, k: Int, aBits: UnsafeMutablePointer<UInt16>, b: UnsafePointer<Float>, weight: TensorStorage,
        transB: Bool, c: UnsafeMutablePointer<Float>
    ) -> Bool {
        guard let context else { return false }
        lock.lock()
        defer { lock.unlock() }
        let key = PrimitiveKey(m: m, n: n, k: k, transA: false, transB: transB, packedWeights: true)
        guard let p = primitive(key, context), var srcMD = descriptor(m, k, dnnl_bf16, transposed: false),
            var dstMD = descriptor(m, n, dnnl_f32, transposed: false),
            let weights = packedWeight(
                b, storage: weight, transposed: transB, k: k, n: n, layout: p.weightsDescriptor, context)
        else { return false }
        var src: dnnl_memory_t?, dst: dnnl_memory_t?
        guard dnnl_memory_create(&src, &srcMD, context.engine, aBits) == dnnl_success, let src else { return false }
        defer { dnnl_memory_destroy(src) }
        guard dnnl_memory_create(&dst, &dstMD, context.engine, c) == dnnl_success, let dst else { return false }
        defer { dnnl_memory_destroy(dst) }
        let args = [
            dnnl_exec_arg_t(arg: GOKU_DNNL_ARG_SRC, memory: src),
            dnnl_exec_arg_t(arg: GOKU_DNNL_ARG_WEIGHTS, memory: weights),
            dnnl_exec_arg_t(arg: GOKU_DNNL_ARG_DST, memory: dst),
        ]
        return dnnl_primitive_execute(p.primitive, context.stream, 3, args) == dnnl_success
            && dnnl_stream_wait(context.stream) == dnnl_success
    }
}
