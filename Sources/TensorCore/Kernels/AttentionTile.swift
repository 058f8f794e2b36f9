import CKernels
import Foundation

/// Hand-written products of attention tiles, register-blocked on explicit SIMD vectors: each panel keeps 8 rows × one
/// vector of C (16, 8 or 4 columns) in registers while it streams over k, broadcasting A and loading one row of B.
///
/// Why not BLAS: these tiles are small (≤ 128×256×Dh) and are multiplied from every worker thread at once. OpenBLAS
/// pays packing on each call and, called from two threads, did not scale at all on the development machine (2 cores,
/// Float, B=1, Nh=16, Dh=64): L=1024 forward 0.15–0.20 s with BLAS tiles vs 0.065–0.072 s here, backward 0.18–0.20 s
/// vs 0.10–0.16 s; L=2048 forward 0.62–0.66 s vs 0.22–0.32 s, backward 1.0 s vs 0.37–0.57 s. Single-threaded the two
/// were within noise of each other for Dh=64; at L=4096, Dh=72 BLAS was ahead single-threaded (its packing hides the
/// rows' 32-byte misalignment), but with both cores busy the measurements overlapped.
///
/// In bfloat16 (`AttentionPlan.bfloat16`, inside a `MixedPrecision.bfloat16` scope) the products run in C on AVX-512
/// BF16 dot products (`goku_bf16_product`: operands rounded to bfloat16 while packed, Float32 accumulation), which
/// retire twice the multiply-adds of Float32 FMAs per instruction.
///
/// In Float32 on a CPU with AVX-512 the products run in C too (`goku_f32_product`): B packed into 32-column panels and
/// a 12 × 32 micro-kernel, 24 multiply-adds per 2 loads and 12 broadcasts where the Swift panels below do 8 per 1 and
/// 8. The Swift panels remain the path for Float64 and for CPUs without AVX-512, and the reference the C kernel is
/// tested against.
public enum AttentionTile {
    /// Whether the bfloat16 products exist on this CPU (AVX-512 BF16).
    static let hasBFloat16 = goku_bf16_dot_available()

    /// Whether Float32 tiles use the AVX-512 kernel (where the CPU has it); false runs the Swift panels
    /// (`GOKU_ATTENTION_F32_C=0` at start-up, or set here, for comparisons).
    nonisolated(unsafe) public static var usesFloat32Kernel: Bool =
        ProcessInfo.processInfo.environment["GOKU_ATTENTION_F32_C"] != "0"
    /// Whether bf16 attention packs Q, K, V and dO once per (batch, head, segment) and has the softmax rows write P
    /// and dS as bfloat16 pairs (`AttentionKernel.forwardPacked`); false packs inside every tile product
    /// (`GOKU_ATTENTION_PACKED=0` at start-up, or set here, for comparisons).
    nonisolated(unsafe) public static var packsBFloat16Operands: Bool =
        ProcessInfo.processInfo.environment["GOKU_ATTENTION_PACKED"] != "0"
    /// Whether this CPU can run the Float32 kernel (AVX-512 F and BW).
    public static let hasFloat32Kernel = goku_avx512_available()
    /// Whether Float32 attention work goes to the C kernels now: asked for and possible on this CPU.
    static var float32KernelActive: Bool { usesFloat32Kernel && hasFloat32Kernel }

    /// C = alpha·op(A)·op(B), or C += … when `accumulate`, row-major with gemm's conventions (op transposes when
    /// asked). A transposed B is first copied into `scratch` (k·n elements) so that its rows are contiguous. With
    /// `bfloat16` (Float only) the operands are rounded to bfloat16 and accumulated in Float32.
    @inline(__always)
    static func product<T: TensorScalar>(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: T, a: UnsafePointer<T>, lda: Int,
        b: UnsafePointer<T>, ldb: Int, accumulate: Bool, c: UnsafeMutablePointer<T>, ldc: Int,
        scratch: UnsafeMutablePointer<T>, bfloat16: Bool = false
    ) {
        if bfloat16 && T.self == Float.self
            && goku_bf16_product(
                transA, transB, Int32(m), Int32(n), Int32(k), unsafeBitCast(alpha, to: Float.self),
                UnsafeRawPointer(a).assumingMemoryBound(to: Float.self), Int32(lda),
                UnsafeRawPointer(b).assumingMemoryBound(to: Float.self), Int32(ldb), accumulate,
                UnsafeMutableRawPointer(c).assumingMemoryBound(to: Float.self), Int32(ldc))
        {
            return
        }
        if T.self == Float.self && float32KernelActive
            && goku_f32_product(
                transA, transB, Int32(m), Int32(n), Int32(k), unsafeBitCast(alpha, to: Float.self),
                UnsafeRawPointer(a).assumingMemoryBound(to: Float.self), Int32(lda),
                UnsafeRawPointer(b).assumingMemoryBound(to: Float.self), Int32(ldb), accumulate,
                UnsafeMutableRawPointer(c).assumingMemoryBound(to: Float.self), Int32(ldc))
        {
            return
        }
        var rowsOfB = b, ldRows = ldb
        if transB {
            for j in 0..<n {
                let row = b + j * ldb
                for p in 0..<k { scratch[p * n + j] = row[p] }
            }
            rowsOfB = UnsafePointer(scratch)
            ldRows = n
        }
        multiply(
            m: m, n: n, k: k, alpha: alpha, a: a, aRow: transA ? 1 : lda, aCol: transA ? lda : 1, b: rowsOfB,
            ldb: ldRows, c: c, ldc: ldc, accumulate: accumulate)
    }

    /// C[i, j] (+)= alpha·Σₚ A(i, p)·B[p, j] with A(i, p) = a[i·aRow + p·aCol].
    @inline(__always)
    static func multiply<T: TensorScalar>(
        m: Int, n: Int, k: Int, alpha: T, a: UnsafePointer<T>, aRow: Int, aCol: Int, b: UnsafePointer<T>, ldb: Int,
        c: UnsafeMutablePointer<T>, ldc: Int, accumulate: Bool
    ) {
        var i = 0
        while i < m {
            let rows = min(8, m - i)
            let ai = a + i * aRow, ci = c + i * ldc
            var j = 0
            while j + 16 <= n {
                panel(SIMD16<T>.self, rows, k, alpha, ai, aRow, aCol, b + j, ldb, ci + j, ldc, accumulate)
                j += 16
            }
            if j + 8 <= n {
                panel(SIMD8<T>.self, rows, k, alpha, ai, aRow, aCol, b + j, ldb, ci + j, ldc, accumulate)
                j += 8
            }
            if j + 4 <= n {
                panel(SIMD4<T>.self, rows, k, alpha, ai, aRow, aCol, b + j, ldb, ci + j, ldc, accumulate)
                j += 4
            }
            while j < n {
                for r in 0..<rows {
                    var s: T = 0
                    for p in 0..<k { s += ai[r * aRow + p * aCol] * b[p * ldb + j] }
                    let out = ci + r * ldc + j
                    out.pointee = accumulate ? out.pointee + alpha * s : alpha * s
                }
                j += 1
            }
            i += 8
        }
    }

    /// Up to 8 rows × one vector of columns, in 8 accumulators. Missing rows repeat the last one and are not stored.
    @inline(__always)
    static func panel<V: SIMD>(
        _: V.Type, _ rows: Int, _ k: Int, _ alpha: V.Scalar, _ a: UnsafePointer<V.Scalar>, _ aRow: Int, _ aCol: Int,
        _ b: UnsafePointer<V.Scalar>, _ ldb: Int, _ c: UnsafeMutablePointer<V.Scalar>, _ ldc: Int, _ accumulate: Bool
    ) where V.Scalar: TensorScalar {
        let last = rows - 1
        let a0 = a, a1 = a + min(1, last) * aRow, a2 = a + min(2, last) * aRow, a3 = a + min(3, last) * aRow
        let a4 = a + min(4, last) * aRow, a5 = a + min(5, last) * aRow, a6 = a + min(6, last) * aRow
        let a7 = a + min(7, last) * aRow
        var c0 = V(), c1 = V(), c2 = V(), c3 = V(), c4 = V(), c5 = V(), c6 = V(), c7 = V()
        for p in 0..<k {
            let bv = UnsafeRawPointer(b + p * ldb).loadUnaligned(as: V.self)
            let o = p * aCol
            c0 = c0.addingProduct(bv, a0[o])
            c1 = c1.addingProduct(bv, a1[o])
            c2 = c2.addingProduct(bv, a2[o])
            c3 = c3.addingProduct(bv, a3[o])
            c4 = c4.addingProduct(bv, a4[o])
            c5 = c5.addingProduct(bv, a5[o])
            c6 = c6.addingProduct(bv, a6[o])
            c7 = c7.addingProduct(bv, a7[o])
        }
        @inline(__always) func store(_ v: V, _ r: Int) {
            let out = UnsafeMutableRawPointer(c + r * ldc)
            let value = accumulate ? out.loadUnaligned(as: V.self).addingProduct(v, alpha) : v * alpha
            out.storeBytes(of: value, as: V.self)
        }
        store(c0, 0)
        if rows > 1 { store(c1, 1) }
        if rows > 2 { store(c2, 2) }
        if rows > 3 { store(c3, 3) }
        if rows > 4 { store(c4, 4) }
        if rows > 5 { store(c5, 5) }
        if rows > 6 { store(c6, 6) }
        if rows > 7 { store(c7, 7) }
    }
}
