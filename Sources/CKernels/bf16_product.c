// bfloat16 products of small tiles on AVX-512 BF16 (vdpbf16ps), for the fused attention kernel.
//
// Both operands are first packed into bfloat16 pairs (round to nearest even, as BFloat16 in TensorCore): one 32-bit
// lane holds the values at k = 2q and 2q + 1 of one row of op(A) or one column of op(B). B is packed [q][j], so that
// sixteen consecutive columns of one pair row fill a vector; A is packed [i][q] when its rows run along k in memory
// (a plain conversion) and [q][i] when they run across (a two-row interleave), and the micro-kernel reads either
// through two strides. One vdpbf16ps multiplies a broadcast pair of A by sixteen column pairs of B and adds both
// products into sixteen Float32 accumulators; the micro-kernel keeps 8 rows x 32 columns of C in 16 registers (a
// last block of at most 16 columns, 8 x 16 in 8).
// Packing is vectorised (conversion, two-row interleave, and for a transposed B an in-register 16 x 16 transpose) and
// costs O(k(m + n)) against O(mnk) for the products. k is padded to even, A's rows to a multiple of 16 and B's columns
// to a multiple of 32, all with zeros, so the micro-kernel never branches on sizes; only its stores are masked.

#include "CKernels.h"
#include "avx512_common.h"

#include <stdlib.h>
#include <string.h>

#if GOKU_HAS_X86
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

bool goku_bf16_dot_available(void) {
#if GOKU_HAS_X86
    static int cached = -1;
    if (cached >= 0) return cached;
    unsigned eax, ebx, ecx, edx;
    int ok = 0;
    if (__get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & (1u << 27))) {  // OSXSAVE: XGETBV is usable
        unsigned lo, hi;
        __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
        (void)hi;
        int zmm_state = (lo & 0xe6u) == 0xe6u;  // the OS saves XMM, YMM, opmask and both ZMM halves
        if (zmm_state && __get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx) && (ebx & (1u << 16))  // AVX512F
            && (ebx & (1u << 30))) {                                                            // AVX512BW
            if (__get_cpuid_count(7, 1, &eax, &ebx, &ecx, &edx) && (eax & (1u << 5))) ok = 1;   // AVX512_BF16
        }
    }
    cached = ok;
    return ok;
#else
    return false;
#endif
}

bool goku_avx512_available(void) {
#if GOKU_HAS_X86
    static int cached = -1;
    if (cached < 0) cached = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("fma");
    return cached;
#else
    return false;
#endif
}

/// Per-thread packing buffers, grown as needed (the attention kernel calls from its worker threads).
static _Thread_local uint32_t *packed_a = NULL, *packed_b = NULL;
static _Thread_local size_t packed_a_pairs = 0, packed_b_pairs = 0;

static uint32_t *buffer(uint32_t **p, size_t *pairs, size_t need) {
    if (*pairs < need) {
        free(*p);
        *p = (uint32_t *)aligned_alloc(64, ((need * 4 + 63) / 64) * 64);
        *pairs = *p ? need : 0;
    }
    return *p;
}

#if GOKU_HAS_X86
#define GOKU_BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16")))

/// dst[q * stride + x] = (src[2q][x], src[2q + 1][x]) for q < pairs and x < width (a multiple of 16), reading rows of
/// `src` (row stride `ld`) that exist (r < rows) and columns x < cols, zeros elsewhere.
GOKU_BF16 static void interleave_rows(uint32_t *dst, int stride, int pairs, int width, const float *src, int ld,
                                      int rows, int cols) {
    for (int q = 0; q < pairs; q++) {
        const float *r0 = src + (size_t)(2 * q) * (size_t)ld;
        const float *r1 = 2 * q + 1 < rows ? src + (size_t)(2 * q + 1) * (size_t)ld : NULL;
        uint32_t *out = dst + (size_t)q * (size_t)stride;
        for (int x = 0; x < width; x += 16) {
            __mmask16 m = goku_lanes(cols - x);
            __m256i b0 = (__m256i)_mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(m, r0 + x));
            __m256i b1 = r1 ? (__m256i)_mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(m, r1 + x)) : _mm256_setzero_si256();
            __m256i lo = _mm256_unpacklo_epi16(b0, b1), hi = _mm256_unpackhi_epi16(b0, b1);
            _mm256_storeu_si256((__m256i *)(out + x), _mm256_permute2x128_si256(lo, hi, 0x20));
            _mm256_storeu_si256((__m256i *)(out + x + 8), _mm256_permute2x128_si256(lo, hi, 0x31));
        }
    }
}

/// dst[x * stride + q] = (src[x][2q], src[x][2q + 1]) for x < count and q < pairs: each row of `src` (stride `ld`,
/// `k` values) converted along its length; the value past k is zero.
GOKU_BF16 static void convert_rows(uint32_t *dst, int stride, int pairs, const float *src, int ld, int count, int k) {
    for (int x = 0; x < count; x++) {
        const float *row = src + (size_t)x * (size_t)ld;
        uint32_t *out = dst + (size_t)x * (size_t)stride;
        for (int q = 0; q < pairs; q += 16) {
            int p = 2 * q;
            __m512 lo = _mm512_maskz_loadu_ps(goku_lanes(k - p), row + p);
            __m512 hi = _mm512_maskz_loadu_ps(goku_lanes(k - p - 16), row + p + 16);
            _mm512_mask_storeu_epi32(out + q, goku_lanes(pairs - q), (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
        }
    }
}

/// dst[q * stride + x] = (src[x][2q], src[x][2q + 1]) for x < width (a multiple of 16) and q < pairs: rows of `src`
/// (stride `ld`, `k` values; rows from `count` on read as zeros) converted sixteen at a time and transposed in
/// registers.
GOKU_BF16 static void convert_transpose(uint32_t *dst, int stride, int pairs, int width, const float *src, int ld,
                                        int count, int k) {
    __m512i r[16];
    for (int x0 = 0; x0 < width; x0 += 16) {
        for (int q0 = 0; q0 < pairs; q0 += 16) {
            int p = 2 * q0;
            for (int x = 0; x < 16; x++) {
                if (x0 + x >= count) {
                    r[x] = _mm512_setzero_si512();
                    continue;
                }
                const float *row = src + (size_t)(x0 + x) * (size_t)ld + p;
                __m512 lo = _mm512_maskz_loadu_ps(goku_lanes(k - p), row);
                __m512 hi = _mm512_maskz_loadu_ps(goku_lanes(k - p - 16), row + 16);
                r[x] = (__m512i)_mm512_cvtne2ps_pbh(hi, lo);
            }
            goku_transpose16(r);
            int rows = pairs - q0 < 16 ? pairs - q0 : 16;
            for (int q = 0; q < rows; q++) _mm512_storeu_si512((void *)(dst + (size_t)(q0 + q) * (size_t)stride + x0), r[q]);
        }
    }
}

/// 8 rows x 32 columns: C[r][0..cols) (+)= alpha * sum_q A(q, r) . b[q][..] for r < rows, with the pair A(q, r) at
/// a[q * a_pair + r * a_row].
GOKU_BF16 static void block(int rows, int cols, int pairs, const uint32_t *a, int a_pair, int a_row, const uint32_t *b,
                            int b_stride, float alpha, bool accumulate, float *c, int ldc) {
    __m512 c00 = _mm512_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
    __m512 c40 = c00, c41 = c00, c50 = c00, c51 = c00, c60 = c00, c61 = c00, c70 = c00, c71 = c00;
    const uint32_t *a0 = a, *a1 = a + a_row, *a2 = a + 2 * a_row, *a3 = a + 3 * a_row, *a4 = a + 4 * a_row;
    const uint32_t *a5 = a + 5 * a_row, *a6 = a + 6 * a_row, *a7 = a + 7 * a_row;
    for (int q = 0; q < pairs; q++) {
        const uint32_t *bq = b + (size_t)q * (size_t)b_stride;
        size_t o = (size_t)q * (size_t)a_pair;
        __m512bh b0 = (__m512bh)_mm512_loadu_si512((const void *)bq);
        __m512bh b1 = (__m512bh)_mm512_loadu_si512((const void *)(bq + 16));
#define GOKU_ROW(r)                                                   \
    {                                                                 \
        __m512bh av = (__m512bh)_mm512_set1_epi32((int)a##r[o]);      \
        c##r##0 = _mm512_dpbf16_ps(c##r##0, av, b0);                  \
        c##r##1 = _mm512_dpbf16_ps(c##r##1, av, b1);                  \
    }
        GOKU_ROW(0) GOKU_ROW(1) GOKU_ROW(2) GOKU_ROW(3) GOKU_ROW(4) GOKU_ROW(5) GOKU_ROW(6) GOKU_ROW(7)
#undef GOKU_ROW
    }
    const __m512 acc[8][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}, {c60, c61}, {c70, c71}};
    goku_store_rows(acc, rows, cols, alpha, accumulate, c, ldc);
}

/// The same for a last block of at most 16 columns (head size 72 leaves 8): one vector of B per pair, 8 accumulators.
GOKU_BF16 static void half_block(int rows, int cols, int pairs, const uint32_t *a, int a_pair, int a_row,
                                 const uint32_t *b, int b_stride, float alpha, bool accumulate, float *c, int ldc) {
    __m512 c0 = _mm512_setzero_ps(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0, c7 = c0;
    const uint32_t *a0 = a, *a1 = a + a_row, *a2 = a + 2 * a_row, *a3 = a + 3 * a_row, *a4 = a + 4 * a_row;
    const uint32_t *a5 = a + 5 * a_row, *a6 = a + 6 * a_row, *a7 = a + 7 * a_row;
    for (int q = 0; q < pairs; q++) {
        size_t o = (size_t)q * (size_t)a_pair;
        __m512bh b0 = (__m512bh)_mm512_loadu_si512((const void *)(b + (size_t)q * (size_t)b_stride));
#define GOKU_ROW(r) c##r = _mm512_dpbf16_ps(c##r, (__m512bh)_mm512_set1_epi32((int)a##r[o]), b0);
        GOKU_ROW(0) GOKU_ROW(1) GOKU_ROW(2) GOKU_ROW(3) GOKU_ROW(4) GOKU_ROW(5) GOKU_ROW(6) GOKU_ROW(7)
#undef GOKU_ROW
    }
    const __m512 z = _mm512_setzero_ps();
    const __m512 acc[8][2] = {{c0, z}, {c1, z}, {c2, z}, {c3, z}, {c4, z}, {c5, z}, {c6, z}, {c7, z}};
    goku_store_rows(acc, rows, cols, alpha, accumulate, c, ldc);
}

/// The same for a last block of at most 8 columns (head size 72 leaves 8) on 256-bit vectors: where the CPU splits a
/// 512-bit dot product in two halves (AMD Zen 4), this costs half of `half_block`.
GOKU_BF16 static void quarter_block(int rows, int cols, int pairs, const uint32_t *a, int a_pair, int a_row,
                                    const uint32_t *b, int b_stride, float alpha, bool accumulate, float *c, int ldc) {
    __m256 c0 = _mm256_setzero_ps(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0, c7 = c0;
    const uint32_t *a0 = a, *a1 = a + a_row, *a2 = a + 2 * a_row, *a3 = a + 3 * a_row, *a4 = a + 4 * a_row;
    const uint32_t *a5 = a + 5 * a_row, *a6 = a + 6 * a_row, *a7 = a + 7 * a_row;
    for (int q = 0; q < pairs; q++) {
        size_t o = (size_t)q * (size_t)a_pair;
        __m256bh b0 = (__m256bh)_mm256_loadu_si256((const __m256i *)(b + (size_t)q * (size_t)b_stride));
#define GOKU_ROW(r) c##r = _mm256_dpbf16_ps(c##r, (__m256bh)_mm256_set1_epi32((int)a##r[o]), b0);
        GOKU_ROW(0) GOKU_ROW(1) GOKU_ROW(2) GOKU_ROW(3) GOKU_ROW(4) GOKU_ROW(5) GOKU_ROW(6) GOKU_ROW(7)
#undef GOKU_ROW
    }
    const __m256 acc[8] = {c0, c1, c2, c3, c4, c5, c6, c7};
    goku_store_rows8(acc, rows, cols, alpha, accumulate, c, ldc);
}

/// The micro-kernel for the columns from j on: 32, at most 16, or at most 8 of them.
GOKU_BF16 static void columns_block(int rows, int cols, int pairs, const uint32_t *a, int a_pair, int a_row,
                                    const uint32_t *b, int b_stride, float alpha, bool accumulate, float *c, int ldc) {
    (cols <= 8 ? quarter_block : cols <= 16 ? half_block : block)(rows, cols, pairs, a, a_pair, a_row, b, b_stride, alpha,
                                                                  accumulate, c, ldc);
}
#endif

#if GOKU_HAS_X86
// ---- AMX tiles (TDPBF16PS) for the same products, where the CPU has AMX-BF16 and Linux grants the tile state ----
//
// The packed layouts above are AMX's own: a tile of A is 16 rows of op(A) x 16 pairs ([i][q], 64 bytes a row) and a
// tile of B is 16 pair rows x 16 columns ([q][j]), so AMX only needs A always packed [i][q] and the pair count padded
// to a multiple of 16 with zeros. C is computed in 32 x 32 blocks (four 16 x 16 Float32 tiles, two of A, two of B),
// stored through a small buffer and scaled / accumulated into C with masked AVX-512 stores.

#define GOKU_AMX __attribute__((target("amx-tile,amx-bf16,avx512f,avx512bw,avx512vl,avx512dq,avx512bf16")))

// Opt-in (GOKU_ATTENTION_AMX=1): this path has not yet run on AMX hardware. scripts/bench/check_bf16_tiles.c checks
// it against Float64 products of the rounded operands and times it beside the AVX-512 BF16 path; once that passes on
// an AMX machine it can become the default.

/// -1: not decided yet; 0: off (not asked for, no AMX, or no permission); 1: on.
static int amx_state = -1;
/// Whether the AMX path was asked for (GOKU_ATTENTION_AMX=1, or goku_bf16_use_amx(1)).
static int amx_requested = -1;

static bool amx_available(void) {
    if (amx_state >= 0) return amx_state;
    if (amx_requested < 0) {
        const char *env = getenv("GOKU_ATTENTION_AMX");
        amx_requested = env && env[0] == '1';
    }
    int ok = 0;
    unsigned eax, ebx, ecx, edx;
    if (amx_requested && goku_bf16_dot_available() && __get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)
        && (edx & (1u << 22)) && (edx & (1u << 24))) {  // AMX-BF16, AMX-TILE
        unsigned lo, hi;
        __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
        (void)hi;
        // XCR0 bits 17 and 18 (tile config and data) enabled by the OS; then ask Linux for the tile data state
        // (ARCH_REQ_XCOMP_PERM 0x1023, XFEATURE_XTILEDATA 18), without which the first tile instruction faults.
        if ((lo & 0x60000u) == 0x60000u && syscall(SYS_arch_prctl, 0x1023, 18) == 0) ok = 1;
    }
    amx_state = ok;
    return ok;
}

/// Turns the AMX path on (where the CPU and OS allow it) or off, overriding GOKU_ATTENTION_AMX (for the check).
void goku_bf16_use_amx(int on) {
    amx_requested = on != 0;
    amx_state = -1;
    (void)amx_available();
}
int goku_bf16_amx_active(void) { return amx_available(); }

struct goku_tile_config {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
};

/// Loads the tile configuration (eight 16 x 64-byte tiles) on every call: oneDNN's AMX kernels load their own
/// configurations on the same threads, so a cached one could be stale.
GOKU_AMX static void amx_configure(void) {
    struct goku_tile_config cfg __attribute__((aligned(64)));
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int t = 0; t < 8; t++) {
        cfg.rows[t] = 16;
        cfg.colsb[t] = 64;
    }
    _tile_loadconfig(&cfg);
}

/// C[0..rows)[0..cols) (+)= alpha * tile, from a 16 x 16 Float32 buffer.
GOKU_BF16 static void amx_store(const float *tile, int rows, int cols, float alpha, bool accumulate, float *c, int ldc) {
    __mmask16 m = goku_lanes(cols);
    __m512 va = _mm512_set1_ps(alpha);
    for (int r = 0; r < rows; r++) {
        __m512 v = _mm512_mul_ps(_mm512_loadu_ps(tile + 16 * r), va);
        float *out = c + (size_t)r * (size_t)ldc;
        if (accumulate) v = _mm512_add_ps(_mm512_maskz_loadu_ps(m, out), v);
        _mm512_mask_storeu_ps(out, m, v);
    }
}

/// The product on tiles: pa [i][q] (row stride a_row; rows up to m rounded up to 16, pk pairs each, pk a multiple of
/// 16), pb [q][j] (pk rows, stride b_stride; columns up to n rounded up to 16). Pairs past the real reduction must
/// be zeros in both.
GOKU_AMX static void amx_product(int m, int n, int pk, const uint32_t *pa, int a_row, const uint32_t *pb, int b_stride,
                                 float alpha, bool accumulate, float *c, int ldc) {
    amx_configure();
    float out[4][256] __attribute__((aligned(64)));
    const size_t sa = (size_t)a_row * 4, sb = (size_t)b_stride * 4;
    for (int i = 0; i < m; i += 32) {
        int two_rows = m - i > 16;
        const uint32_t *a0 = pa + (size_t)i * (size_t)a_row, *a1 = a0 + 16 * (size_t)a_row;
        for (int j = 0; j < n; j += 32) {
            int two_cols = n - j > 16;
            _tile_zero(0);
            _tile_zero(1);
            _tile_zero(2);
            _tile_zero(3);
            for (int q = 0; q < pk; q += 16) {
                const uint32_t *b = pb + (size_t)q * (size_t)b_stride + j;
                _tile_loadd(4, a0 + q, sa);
                _tile_loadd(6, b, sb);
                _tile_dpbf16ps(0, 4, 6);
                if (two_cols) {
                    _tile_loadd(7, b + 16, sb);
                    _tile_dpbf16ps(1, 4, 7);
                }
                if (two_rows) {
                    _tile_loadd(5, a1 + q, sa);
                    _tile_dpbf16ps(2, 5, 6);
                    if (two_cols) _tile_dpbf16ps(3, 5, 7);
                }
            }
            _tile_stored(0, out[0], 64);
            _tile_stored(1, out[1], 64);
            _tile_stored(2, out[2], 64);
            _tile_stored(3, out[3], 64);
            int rows0 = m - i < 16 ? m - i : 16, rows1 = m - i - 16 < 16 ? m - i - 16 : 16;
            int cols0 = n - j < 16 ? n - j : 16, cols1 = n - j - 16 < 16 ? n - j - 16 : 16;
            float *c0 = c + (size_t)i * (size_t)ldc + j, *c1 = c0 + 16 * (size_t)ldc;
            amx_store(out[0], rows0, cols0, alpha, accumulate, c0, ldc);
            if (two_cols) amx_store(out[1], rows0, cols1, alpha, accumulate, c0 + 16, ldc);
            if (two_rows) {
                amx_store(out[2], rows1, cols0, alpha, accumulate, c1, ldc);
                if (two_cols) amx_store(out[3], rows1, cols1, alpha, accumulate, c1 + 16, ldc);
            }
        }
    }
}

/// pa[i * pk + q] = t[q * m16 + i] for the pair-major packing t of a transposed A: 16 x 16 blocks in registers.
GOKU_BF16 static void pairs_to_rows(uint32_t *pa, int pk, const uint32_t *t, int pairs, int m16) {
    __m512i r[16];
    for (int q0 = 0; q0 < pk; q0 += 16) {
        for (int i0 = 0; i0 < m16; i0 += 16) {
            for (int x = 0; x < 16; x++)
                r[x] = q0 + x < pairs ? _mm512_loadu_si512((const void *)(t + (size_t)(q0 + x) * (size_t)m16 + i0))
                                      : _mm512_setzero_si512();
            goku_transpose16(r);
            for (int x = 0; x < 16; x++) _mm512_storeu_si512((void *)(pa + (size_t)(i0 + x) * (size_t)pk + q0), r[x]);
        }
    }
}
#else
void goku_bf16_use_amx(int on) { (void)on; }
int goku_bf16_amx_active(void) { return 0; }
#endif

/// Per-thread buffer for the pair-major staging of a transposed A on the AMX path.
static _Thread_local uint32_t *staged_a = NULL;
static _Thread_local size_t staged_a_pairs = 0;

bool goku_bf16_product(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float *a, int lda,
                       const float *b, int ldb, bool accumulate, float *c, int ldc) {
#if GOKU_HAS_X86
    if (!goku_bf16_dot_available()) return false;
    if (m <= 0 || n <= 0) return true;
    int pairs = (k + 1) / 2;
    int m16 = (m + 15) / 16 * 16;  // padded rows of op(A): A is packed pair-major, [q][i]
    int n32 = (n + 31) / 32 * 32;  // padded columns of op(B): B is packed [q][j]
    if (amx_available()) {
        int pk = (pairs + 15) / 16 * 16;  // pairs padded to whole tiles, with zeros
        uint32_t *pa = buffer(&packed_a, &packed_a_pairs, (size_t)pk * (size_t)m16);
        uint32_t *pb = buffer(&packed_b, &packed_b_pairs, (size_t)pk * (size_t)n32);
        if (!pa || !pb) return false;
        if (trans_a) {
            uint32_t *t = buffer(&staged_a, &staged_a_pairs, (size_t)pairs * (size_t)m16);
            if (!t) return false;
            interleave_rows(t, m16, pairs, m16, a, lda, k, m);
            pairs_to_rows(pa, pk, t, pairs, m16);
        } else {
            convert_rows(pa, pk, pk, a, lda, m, k);
            memset(pa + (size_t)m * (size_t)pk, 0, (size_t)(m16 - m) * (size_t)pk * 4);
        }
        if (trans_b) {
            convert_transpose(pb, n32, pairs, n32, b, ldb, n, k);
        } else {
            interleave_rows(pb, n32, pairs, n32, b, ldb, k, n);
        }
        memset(pb + (size_t)pairs * (size_t)n32, 0, (size_t)(pk - pairs) * (size_t)n32 * 4);
        amx_product(m, n, pk, pa, pk, pb, n32, alpha, accumulate, c, ldc);
        return true;
    }
    uint32_t *pa = buffer(&packed_a, &packed_a_pairs, (size_t)pairs * (size_t)m16);
    uint32_t *pb = buffer(&packed_b, &packed_b_pairs, (size_t)pairs * (size_t)n32);
    if (!pa || !pb) return false;
    int a_pair, a_row;  // strides of the packed A: pair q of row i at pa[q * a_pair + i * a_row]
    if (trans_a) {
        // op(A)(i, p) = a[p * lda + i]: rows p of `a` run along i; pack [q][i].
        interleave_rows(pa, m16, pairs, m16, a, lda, k, m);
        a_pair = m16;
        a_row = 1;
    } else {
        // Rows of op(A) run along k: pack [i][q]; the padding rows are zero.
        convert_rows(pa, pairs, pairs, a, lda, m, k);
        memset(pa + (size_t)m * (size_t)pairs, 0, (size_t)(m16 - m) * (size_t)pairs * 4);
        a_pair = 1;
        a_row = pairs;
    }
    if (trans_b) {
        // op(B)(p, j) = b[j * ldb + p]: rows j of `b` run along p; convert and transpose to [q][j].
        convert_transpose(pb, n32, pairs, n32, b, ldb, n, k);
    } else {
        interleave_rows(pb, n32, pairs, n32, b, ldb, k, n);
    }
    for (int i = 0; i < m; i += 8) {
        int rows = m - i < 8 ? m - i : 8;
        for (int j = 0; j < n; j += 32) {
            columns_block(rows, n - j, pairs, pa + (size_t)i * (size_t)a_row, a_pair, a_row, pb + j, n32, alpha,
                          accumulate, c + (size_t)i * (size_t)ldc + j, ldc);
        }
    }
    return true;
#else
    (void)trans_a; (void)trans_b; (void)m; (void)n; (void)k; (void)alpha; (void)a; (void)lda; (void)b; (void)ldb;
    (void)accumulate; (void)c; (void)ldc;
    return false;
#endif
}

// ---- Operands packed once, multiplied many times (the bfloat16 attention kernel's own layouts) ----
//
// The fused attention reads every row of Q, K, V and dO in many tile products. Packing each operand once per
// (batch, head, segment) into the layouts the micro-kernels read, and having the softmax rows write the probabilities
// and score gradients as bfloat16 pairs directly (attention_rows.c), leaves the products with no conversion work; on
// the development machine packing inside every product call was about a fifth of the bf16 attention's time.

#if GOKU_HAS_X86
void goku_bf16_pack_rows(uint32_t *dst, int stride, int rows, int padded_rows, const float *src, int ld, int k) {
    if (!goku_bf16_dot_available()) return;
    convert_rows(dst, stride, stride, src, ld, rows, k);
    if (padded_rows > rows) memset(dst + (size_t)rows * (size_t)stride, 0, (size_t)(padded_rows - rows) * (size_t)stride * 4);
}

void goku_bf16_pack_columns(uint32_t *dst, int stride, int pairs, const float *src, int ld, int count, int k) {
    if (!goku_bf16_dot_available()) return;
    convert_transpose(dst, stride, pairs, stride, src, ld, count, k);
}

void goku_bf16_pack_pairs(uint32_t *dst, int stride, int pairs, const float *src, int ld, int rows, int cols) {
    if (!goku_bf16_dot_available()) return;
    interleave_rows(dst, stride, pairs, stride, src, ld, rows, cols);
}

/// dst[x * stride + q] = pair(src[2q][x], src[2q + 1][x]) for x < count and q < stride (a multiple of 16; rows ≥
/// `rows` of `src` read as zeros): 16 pairs of 16 columns built by a two-row interleave, then transposed in registers.
GOKU_BF16 static void interleave_transpose(uint32_t *dst, int stride, int count, const float *src, int ld, int rows) {
    __m512i r[16];
    for (int q0 = 0; q0 < stride; q0 += 16) {
        for (int x0 = 0; x0 < count; x0 += 16) {
            __mmask16 m = goku_lanes(count - x0);
            for (int x = 0; x < 16; x++) {
                int r0 = 2 * (q0 + x), r1 = r0 + 1;
                __m512 lo = r0 < rows ? _mm512_maskz_loadu_ps(m, src + (size_t)r0 * (size_t)ld + x0) : _mm512_setzero_ps();
                __m512 hi = r1 < rows ? _mm512_maskz_loadu_ps(m, src + (size_t)r1 * (size_t)ld + x0) : _mm512_setzero_ps();
                __m256i b0 = (__m256i)_mm512_cvtneps_pbh(lo), b1 = (__m256i)_mm512_cvtneps_pbh(hi);
                __m256i l = _mm256_unpacklo_epi16(b0, b1), h = _mm256_unpackhi_epi16(b0, b1);
                r[x] = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_permute2x128_si256(l, h, 0x20)),
                                          _mm256_permute2x128_si256(l, h, 0x31), 1);
            }
            goku_transpose16(r);
            int n = count - x0 < 16 ? count - x0 : 16;
            for (int x = 0; x < n; x++) _mm512_storeu_si512((void *)(dst + (size_t)(x0 + x) * (size_t)stride + q0), r[x]);
        }
    }
}

void goku_bf16_pack_pairs_transposed(uint32_t *dst, int stride, int count, const float *src, int ld, int rows) {
    if (!goku_bf16_dot_available()) return;
    interleave_transpose(dst, stride, count, src, ld, rows);
}

bool goku_bf16_packed_product(int m, int n, int pairs, const uint32_t *a, int a_pair, int a_row, const uint32_t *b,
                              int b_stride, float alpha, bool accumulate, float *c, int ldc) {
    if (!goku_bf16_dot_available()) return false;
    if (m <= 0 || n <= 0) return true;
    if (a_pair == 1 && amx_available()) {
        amx_product(m, n, (pairs + 15) / 16 * 16, a, a_row, b, b_stride, alpha, accumulate, c, ldc);
        return true;
    }
    for (int i = 0; i < m; i += 8) {
        int rows = m - i < 8 ? m - i : 8;
        for (int j = 0; j < n; j += 32) {
            columns_block(rows, n - j, pairs, a + (size_t)i * (size_t)a_row, a_pair, a_row, b + j, b_stride, alpha,
                          accumulate, c + (size_t)i * (size_t)ldc + j, ldc);
        }
    }
    return true;
}
#else
void goku_bf16_pack_rows(uint32_t *dst, int stride, int rows, int padded_rows, const float *src, int ld, int k) {
    (void)dst; (void)stride; (void)rows; (void)padded_rows; (void)src; (void)ld; (void)k;
}
void goku_bf16_pack_columns(uint32_t *dst, int stride, int pairs, const float *src, int ld, int count, int k) {
    (void)dst; (void)stride; (void)pairs; (void)src; (void)ld; (void)count; (void)k;
}
void goku_bf16_pack_pairs(uint32_t *dst, int stride, int pairs, const float *src, int ld, int rows, int cols) {
    (void)dst; (void)stride; (void)pairs; (void)src; (void)ld; (void)rows; (void)cols;
}
void goku_bf16_pack_pairs_transposed(uint32_t *dst, int stride, int count, const float *src, int ld, int rows) {
    (void)dst; (void)stride; (void)count; (void)src; (void)ld; (void)rows;
}
bool goku_bf16_packed_product(int m, int n, int pairs, const uint32_t *a, int a_pair, int a_row, const uint32_t *b,
                              int b_stride, float alpha, bool accumulate, float *c, int ldc) {
    (void)m; (void)n; (void)pairs; (void)a; (void)a_pair; (void)a_row; (void)b; (void)b_stride; (void)alpha;
    (void)accumulate; (void)c; (void)ldc;
    return false;
}
#endif

// ---- Rounding Float32 arrays to bfloat16 bits (the operands of oneDNN's bf16 matrix products) ----
//
// Integer round to nearest even on the bit pattern, NaN kept quiet: the same bits as BFloat16.bits in TensorCore
// (denormals are rounded, not flushed, unlike vcvtneps2bf16). These functions execute AVX512F/BW instructions only,
// so they run wherever goku_avx512_available() holds, with or without AVX-512 BF16.

#if GOKU_HAS_X86

GOKU_BF16 static inline __m512i round_lanes(__m512i v) {
    __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(v, 16), _mm512_set1_epi32(1));
    __m512i r = _mm512_srli_epi32(_mm512_add_epi32(_mm512_add_epi32(v, _mm512_set1_epi32(0x7fff)), lsb), 16);
    __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(v, _mm512_set1_epi32(0x7fffffff)),
                                            _mm512_set1_epi32(0x7f800000));
    return _mm512_mask_mov_epi32(r, nan, _mm512_or_si512(_mm512_srli_epi32(v, 16), _mm512_set1_epi32(0x40)));
}

GOKU_BF16 static void round_avx512(const float *x, uint16_t *y, size_t count) {
    size_t i = 0;
    for (; i + 16 <= count; i += 16)
        _mm256_storeu_si256((__m256i *)(y + i), _mm512_cvtepi32_epi16(round_lanes(_mm512_loadu_si512(x + i))));
    if (i < count) {
        __mmask16 m = goku_lanes((int)(count - i));
        _mm512_mask_cvtepi32_storeu_epi16(y + i, m, round_lanes(_mm512_maskz_loadu_epi32(m, x + i)));
    }
}

GOKU_BF16 static void round_transposed_avx512(const float *x, int rows, int cols, int ld, uint16_t *y) {
    __m512i r[16];
    for (int r0 = 0; r0 < rows; r0 += 16) {
        __mmask16 store = goku_lanes(rows - r0);
        for (int c0 = 0; c0 < cols; c0 += 16) {
            __mmask16 load = goku_lanes(cols - c0);
            for (int i = 0; i < 16; i++)
                r[i] = r0 + i < rows ? round_lanes(_mm512_maskz_loadu_epi32(load, x + (size_t)(r0 + i) * (size_t)ld + c0))
                                     : _mm512_setzero_si512();
            goku_transpose16(r);
            int n = cols - c0 < 16 ? cols - c0 : 16;
            for (int c = 0; c < n; c++)
                _mm512_mask_cvtepi32_storeu_epi16(y + (size_t)(c0 + c) * (size_t)rows + r0, store, r[c]);
        }
    }
}
#endif

static inline uint16_t round_one(float value) {
    uint32_t v;
    memcpy(&v, &value, 4);
    if ((v & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((v >> 16) | 0x40);
    return (uint16_t)((v + 0x7fffu + ((v >> 16) & 1u)) >> 16);
}

void goku_round_bf16(const float *x, uint16_t *y, size_t count) {
#if GOKU_HAS_X86
    if (goku_avx512_available()) {
        round_avx512(x, y, count);
        return;
    }
#endif
    for (size_t i = 0; i < count; i++) y[i] = round_one(x[i]);
}

void goku_round_bf16_transposed(const float *x, int rows, int cols, int ld, uint16_t *y) {
#if GOKU_HAS_X86
    if (goku_avx512_available()) {
        round_transposed_avx512(x, rows, cols, ld, y);
        return;
    }
#endif
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) y[(size_t)c * (size_t)rows + r] = round_one(x[(size_t)r * (size_t)ld + c]);
}
