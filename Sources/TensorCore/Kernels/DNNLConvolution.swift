import CDNNL
import Foundation

/// Float32 convolutions (forward, data gradient, weight and bias gradient) through oneDNN's direct convolution
/// primitives, the fast path of `ConvKernel` (which stays the reference and the Float64 path).
///
/// Why: the vol2col + sgemm path spends most of a VAE training step outside the multiply-adds (building and
/// scattering the column matrix, and OpenBLAS packing a column matrix that is used against only Cout = 32…128
/// rows). oneDNN's JIT kernels work on channel-blocked layouts without a column matrix.
///
/// - Layouts: every primitive is created with `format_tag::any`, so oneDNN picks its preferred (blocked) layouts;
///   the engine's plain (N, C, T, H, W) tensors are reordered into those layouts before each call and the results
///   reordered back. The reorders are single memory passes, cheap next to the convolution.
/// - Temporaries live in `TensorStorage` buffers, so that the `StorageCache` reuses them step after step instead of
///   page-faulting fresh memory.
/// - Primitive descriptors and primitives are cached per geometry (training repeats the same shapes); oneDNN's own
///   primitive cache serves the reorders.
/// - Any oneDNN error makes a call return false and the caller runs `ConvKernel` instead, so results never depend on
///   oneDNN being present.
/// - oneDNN runs on its own OpenMP threads (`OMP_NUM_THREADS`, default all cores), not on `Parallel`'s pool.
/// - Mixed precision (`MixedPrecision.bfloat16`): the products read bfloat16 activations, weights and output
///   gradients and accumulate and write Float32 (results, data and weight gradients, bias gradients). The rounding
///   to bfloat16 happens inside the reorder into the blocked layout, so it costs no extra pass over memory. oneDNN
///   picks AMX tiles or AVX-512 BF16 dot products at run time; a CPU where it has neither refuses the primitive and
///   the call falls back to Float32.
enum DNNLConvolution {
    private enum Kind: Int { case forward, backwardData, backwardWeights }

    private struct Key: Hashable {
        let kind: Kind
        let geometry: [Int]
        let bias: Bool
        let bfloat16: Bool
    }

    /// A primitive and its descriptor.
    private final class Primitive {
        let descriptor: dnnl_primitive_desc_t
        let primitive: dnnl_primitive_t

        init(descriptor: dnnl_primitive_desc_t, primitive: dnnl_primitive_t) {
            self.descriptor = descriptor
            self.primitive = primitive
        }

        deinit {
            dnnl_primitive_destroy(primitive)
            dnnl_primitive_desc_destroy(descriptor)
        }

        /// The memory descriptor oneDNN chose for `what` (e.g. `dnnl_query_src_md`).
        func md(_ what: dnnl_query_t) -> dnnl_memory_desc_t? {
            dnnl_primitive_desc_query_md(descriptor, what, 0)?.pointee
        }
    }

    private static var context: DNNLContext? { DNNLContext.shared }
    nonisolated(unsafe) private static var primitives: [Key: Primitive] = [:]
    private static let lock = NSLock()

    /// Whether the fast path is used: `Convolution.usesDNNL` and a oneDNN CPU engine.
    static var isEnabled: Bool { Convolution.usesDNNL && context != nil }

    /// Whether oneDNN created a CPU engine.
    static var isAvailable: Bool { context != nil }

    private static func geometryKey(_ g: ConvGeometry) -> [Int] {
        [
            g.batch, g.inChannels, g.outChannels, g.t, g.h, g.w, g.kt, g.kh, g.kw, g.st, g.sh, g.sw, g.pt, g.ph, g.pw,
        ]
    }

    /// A plain row-major descriptor.
    private static func plain(_ dims: [Int]) -> dnnl_memory_desc_t? {
        var md = dnnl_memory_desc_t()
        let tag: dnnl_format_tag_t = dims.count == 5 ? dnnl_abcde : dnnl_a
        return dnnl_memory_desc_init_by_tag(&md, Int32(dims.count), dims.map { Int64($0) }, dnnl_f32, tag)
            == dnnl_success ? md : nil
    }

    /// A descriptor whose layout oneDNN chooses.
    private static func any(_ dims: [Int], _ type: dnnl_data_type_t = dnnl_f32) -> dnnl_memory_desc_t? {
        var md = dnnl_memory_desc_t()
        return dnnl_memory_desc_init_by_tag(
            &md, Int32(dims.count), dims.map { Int64($0) }, type, dnnl_format_tag_any) == dnnl_success ? md : nil
    }

    private struct Shapes {
        let src: [Int], weights: [Int], dst: [Int], bias: [Int]
        let strides: [Int64], padL: [Int64], padR: [Int64]

        init(_ g: ConvGeometry) {
            src = [g.batch, g.inChannels, g.t, g.h, g.w]
            weights = [g.outChannels, g.inChannels, g.kt, g.kh, g.kw]
            dst = [g.batch, g.outChannels, g.ot, g.oh, g.ow]
            bias = [g.outChannels]
            strides = [g.st, g.sh, g.sw].map { Int64($0) }
            padL = [g.pt, g.ph, g.pw].map { Int64($0) }
            // The padding after each axis that makes oneDNN's output extent match (never negative: input that no
            // window reaches is simply not read).
            padR = [
                Swift.max(0, (g.ot - 1) * g.st + g.kt - g.t - g.pt),
                Swift.max(0, (g.oh - 1) * g.sh + g.kh - g.h - g.ph),
                Swift.max(0, (g.ow - 1) * g.sw + g.kw - g.w - g.pw),
            ].map { Int64($0) }
        }
    }

    private static func makePrimitive(
        _ desc: inout dnnl_convolution_desc_t, hint: dnnl_primitive_desc_t?, _ context: DNNLContext
    ) -> Primitive? {
        var pd: dnnl_primitive_desc_t?
        guard dnnl_primitive_desc_create(&pd, &desc, nil, context.engine, hint) == dnnl_success, let pd else {
            return nil
        }
        var prim: dnnl_primitive_t?
        guard dnnl_primitive_create(&prim, pd) == dnnl_success, let prim else {
            dnnl_primitive_desc_destroy(pd)
            return nil
        }
        return Primitive(descriptor: pd, primitive: prim)
    }

    /// The cached primitive of `kind` for a geometry (the forward one is the hint of the backward ones). In bfloat16
    /// the operands that are read (source, weights, output gradient) are bfloat16 and what is written is Float32.
    private static func primitive(
        _ kind: Kind, _ g: ConvGeometry, bias: Bool, bfloat16: Bool, _ context: DNNLContext
    ) -> Primitive? {
        let key = Key(kind: kind, geometry: geometryKey(g), bias: bias, bfloat16: bfloat16)
        if let p = primitives[key] { return p }
        let s = Shapes(g)
        let low = bfloat16 ? dnnl_bf16 : dnnl_f32
        // The product's inputs in the low precision; its output in Float32 (forward: dst; backward data: diff_src;
        // backward weights: diff_weights), the other side of each descriptor pair in the low precision.
        let srcType = kind == .backwardData ? dnnl_f32 : low
        let dstType = kind == .forward ? dnnl_f32 : low
        let weightsType = kind == .backwardWeights ? dnnl_f32 : low
        guard var src = any(s.src, srcType), var weights = any(s.weights, weightsType),
            var dst = any(s.dst, dstType), var biasMD = plain(s.bias)
        else { return nil }
        var desc = dnnl_convolution_desc_t()
        let made: Primitive?
        switch kind {
        case .forward:
            let status = withUnsafePointer(to: &biasMD) { b in
                dnnl_convolution_forward_desc_init(
                    &desc, dnnl_forward_training, dnnl_convolution_direct, &src, &weights, bias ? b : nil, &dst,
                    s.strides, s.padL, s.padR)
            }
            guard status == dnnl_success else { return nil }
            made = makePrimitive(&desc, hint: nil, context)
        case .backwardData:
            guard let hint = primitive(.forward, g, bias: false, bfloat16: bfloat16, context),
                dnnl_convolution_backward_data_desc_init(
                    &desc, dnnl_convolution_direct, &src, &weights, &dst, s.strides, s.padL, s.padR) == dnnl_success
            else { return nil }
            made = makePrimitive(&desc, hint: hint.descriptor, context)
        case .backwardWeights:
            guard let hint = primitive(.forward, g, bias: false, bfloat16: bfloat16, context) else { return nil }
            let status = withUnsafePointer(to: &biasMD) { b in
                dnnl_convolution_backward_weights_desc_init(
                    &desc, dnnl_convolution_direct, &src, &weights, bias ? b : nil, &dst, s.strides, s.padL, s.padR)
            }
            guard status == dnnl_success else { return nil }
            made = makePrimitive(&desc, hint: hint.descriptor, context)
        }
        guard let made else { return nil }
        primitives[key] = made
        return made
    }

    /// Memory objects of one call; destroyed together, their temporary buffers kept alive until then.
    private final class Arena {
        var memories: [dnnl_memory_t] = []
        var buffers: [TensorStorage] = []
        let context: DNNLContext

        init(_ context: DNNLContext) { self.context = context }

        deinit { for m in memories { dnnl_memory_destroy(m) } }

        func memory(_ md: dnnl_memory_desc_t, _ handle: UnsafeMutableRawPointer) -> dnnl_memory_t? {
            var md = md
            var m: dnnl_memory_t?
            guard dnnl_memory_create(&m, &md, context.engine, handle) == dnnl_success, let m else { return nil }
            memories.append(m)
            return m
        }

        /// A memory of layout `md` backed by a fresh (cache-served) buffer.
        func temporary(_ md: dnnl_memory_desc_t) -> dnnl_memory_t? {
            var md = md
            let bytes = dnnl_memory_desc_get_size(&md)
            let storage = TensorStorage(dtype: .float32, count: (bytes + 3) / 4)
            buffers.append(storage)
            return memory(md, storage.rawPointer)
        }

        func reorder(
            _ from: dnnl_memory_t, _ fromMD: dnnl_memory_desc_t, _ to: dnnl_memory_t, _ toMD: dnnl_memory_desc_t
        )
            -> Bool
        {
            var a = fromMD, b = toMD
            var rpd: dnnl_primitive_desc_t?
            guard dnnl_reorder_primitive_desc_create(&rpd, &a, context.engine, &b, context.engine, nil) == dnnl_success,
                let rpd
            else { return false }
            defer { dnnl_primitive_desc_destroy(rpd) }
            var r: dnnl_primitive_t?
            guard dnnl_primitive_create(&r, rpd) == dnnl_success, let r else { return false }
            defer { dnnl_primitive_destroy(r) }
            let args = [
                dnnl_exec_arg_t(arg: GOKU_DNNL_ARG_FROM, memory: from),
                dnnl_exec_arg_t(arg: GOKU_DNNL_ARG_TO, memory: to),
            ]
            return dnnl_primitive_execute(r, context.stream, 2, args) == dnnl_success
        }

        /// The plain tensor at `pointer` as a memory of layout `wanted`: itself when the layouts agree, otherwise a
        /// reordered copy.
        func input(_ pointer: UnsafeRawPointer, dims: [Int], wanted: dnnl_memory_desc_t) -> dnnl_memory_t? {
            guard var plainMD = DNNLConvolution.plain(dims),
                let user = memory(plainMD, UnsafeMutableRawPointer(mutating: pointer))
            else { return nil }
            var w = wanted
            if dnnl_memory_desc_equal(&plainMD, &w) != 0 { return user }
            guard let copy = temporary(wanted), reorder(user, plainMD, copy, wanted) else { return nil }
            return copy
        }

        /// A memory of layout `wanted` for a result to land in the plain tensor at `pointer`, and the step that
        /// copies it there after the primitive ran (nil when the primitive writes the plain tensor directly).
        func output(_ pointer: UnsafeMutableRawPointer, dims: [Int], wanted: dnnl_memory_desc_t)
            -> (memory: dnnl_memory_t, finish: (() -> Bool)?)?
        {
            guard var plainMD = DNNLConvolution.plain(dims), let user = memory(plainMD, pointer) else { return nil }
            var w = wanted
            if dnnl_memory_desc_equal(&plainMD, &w) != 0 { return (user, nil) }
            guard let temp = temporary(wanted) else { return nil }
            let md = plainMD
            return (temp, { self.reorder(temp, wanted, user, md) })
        }

        func execute(_ p: Primitive, _ args: [dnnl_exec_arg_t]) -> Bool {
            dnnl_primitive_execute(p.primitive, context.stream, Int32(args.count), args) == dnnl_success
        }

        func wait() -> Bool { dnnl_stream_wait(context.stream) == dnnl_success }
    }

    /// out = conv(x, W) + b, written in Float32 (products in bfloat16 when `precision` says so); false when oneDNN
    /// is disabled, unavailable or fails (`out` is then unspecified and the caller computes it with `ConvKernel`).
    static func forward(
        x: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
        out: UnsafeMutablePointer<Float>, _ g: ConvGeometry, precision: MixedPrecision.Mode = .float32
    ) -> Bool {
        guard isEnabled, let context else { return false }
        lock.lock()
        defer { lock.unlock() }
        guard let p = primitive(.forward, g, bias: bias != nil, bfloat16: precision == .bfloat16, context),
            let srcMD = p.md(dnnl_query_src_md), let weightsMD = p.md(dnnl_query_weights_md),
            let dstMD = p.md(dnnl_query_dst_md)
        else { return false }
        let s = Shapes(g)
        let arena = Arena(context)
        guard let src = arena.input(x, dims: s.src, wanted: srcMD),
            let weights = arena.input(weight, dims: s.weights, wanted: weightsMD),
            let dst = arena.output(out, dims: s.dst, wanted: dstMD)
        else { return false }
        var args = [
            dnnl_exec_arg_t(arg: GOKU_DNNL_ARG_SRC, memory: src),
            dnnl_exec_arg_t(arg: GOKU_DNNL_ARG_WEIGHTS, memory: weights),
            dnnl_exec_arg_t(arg: GOKU_DNNL_ARG_DST, memory: dst.memory),
        ]
        if let bias {
            guard let biasMD = plain(s.bias), let b = arena.memory(biasMD, UnsafeMutableRawPointer(mutating: bias))
            else { return false }
            args.append(dnnl_exec_arg_t(arg: GOKU_DNNL_ARG_BIAS, memory: b))
        }
        guard arena.execute(p, args) else { return false }
        if let finish = dst.finish, !finish() { return false }
        guard arena.wait() else { return false }
        Convolution.dnnlCallCount += 1
        return true
    }

    /// The gradients of `forward` (each nil destination skipped, the others overwritten), written in Float32 with
    /// products in `precision`; false when oneDNN is disabled, unavailable or fails (the destinations are then
    /// unspecified and the caller computes them with `ConvKernel`).
    static func backward(
        x: UnsafePointer<Float>, weight: UnsafePointer<Float>, gradOut: UnsafePointer<Float>, _ g: ConvGeometry,
        gradX: UnsafeMutablePointer<Float>?, gradWeight: UnsafeMutablePointer<Float>?,
        gradBias: UnsafeMutablePointer<Float>?, precision: MixedPrecision.Mode = .float32
    ) -> Bool {
        let bfloat16 = precision == .bfloat16
        guard isEnabled, let context else { return false }
        lock.lock()
        defer { lock.unlock() }
        let s = Shapes(g)
        let arena = Arena(context)
        // The reordered gradOut, shared by both primitives when they want the same layout.
        var reorderedGradOut: (md: dnnl_memory_desc_t, memory: dnnl_memory_t)? = nil
        func diffDst(_ wanted: dnnl_memory_desc_t) -> dnnl_memory_t? {
            if var have = reorderedGradOut?.md {
                var w = wanted
                if dnnl_memory_desc_equal(&have, &w) != 0 { return reorderedGradOut?.memory }
            }
            guard let m = arena.input(gradOut, dims: s.dst, wanted: wanted) else { return nil }
            reorderedGradOut = (wanted, m)
            return m
        }
        if let gradX {
            guard let p = primitive(.backwardData, g, bias: false, bfloat16: bfloat16, context),
                let dsMD = p.md(dnnl_query_diff_src_md), let wMD = p.md(dnnl_query_weights_md),
                let ddMD = p.md(dnnl_query_diff_dst_md),
                let dd = diffDst(ddMD), let w = arena.input(weight, dims: s.weights, wanted: wMD),
                let ds = arena.output(gradX, dims: s.src, wanted: dsMD)
            else { return false }
            let args = [
                dnnl_exec_arg_t(arg: GOKU_DNNL_ARG_DIFF_DST, memory: dd),
                dnnl_exec_arg_t(arg: GOKU_DNNL_ARG_WEIGHTS, memory: w),
                dnnl_exec_arg_t(arg: GOKU_DNNL_ARG_DIFF_SRC, memory: ds.memory),
            ]
            guard arena.execute(p, args) else { return false }
            if let finish = ds.finish, !finish() { return false }
        }
        if gradWeight != nil || gradBias != nil {
            // oneDNN always computes the weight gradient; a caller that wants only the bias gets it in a scratch
            // buffer.
            let scratch = gradWeight == nil ? TensorStorage(dtype: .float32, count: s.weights.reduce(1, *)) : nil
            let dW = gradWeight ?? scratch!.pointer(as: Float.self)
            guard let p = primitive(.backwardWeights, g, bias: gradBias != nil, bfloat16: bfloat16, context),
                let srcMD = p.md(dnnl_query_src_md), let dwMD = p.md(dnnl_query_diff_weights_md),
                let ddMD = p.md(dnnl_query_diff_dst_md),
                let dd = diffDst(ddMD), let src = arena.input(x, dims: s.src, wanted: srcMD),
                let dw = arena.output(dW, dims: s.weights, wanted: dwMD)
            else { return false }
            var args = [
                dnnl_exec_arg_t(arg: GOKU_DNNL_ARG_SRC, memory: src),
                dnnl_exec_arg_t(arg: GOKU_DNNL_ARG_DIFF_DST, memory: dd),
                dnnl_exec_arg_t(arg: GOKU_DNNL_ARG_DIFF_WEIGHTS, memory: dw.memory),
            ]
            if let gradBias {
                guard let biasMD = plain(s.bias), let b = arena.memory(biasMD, gradBias) else { return false }
                args.append(dnnl_exec_arg_t(arg: GOKU_DNNL_ARG_DIFF_BIAS, memory: b))
            }
            guard arena.execute(p, args) else { return false }
            if let finish = dw.finish, !finish() { return false }
            if let scratch { arena.buffers.append(scratch) }
        }
        guard arena.wait() else { return false }
        Convolution.dnnlCallCount += 1
        return true
    }
}
