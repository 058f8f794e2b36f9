// bfloat16 products of small tiles on AVX-512 BF16 (vdpbf16ps), for the fused attention kernel.
//
// Both operands are first packed into bfloat16 pairs (round to nearest even, as BFloat16 in TensorCore): element
// (q, x) of a packed operand is one 32-bit lane holding the values at k = 2q and 2q + 1 for row (or column) x, and
// lanes of consecutive x are consecutive. One vdpbf16ps then multiplies a broadcast pair of A by sixteen column pairs
// of B and adds both products into sixteen Float32 accumulators. The micro-kernel keeps 8 rows x 32 columns of C in
// 16 registers. Packing is vectorised (two-row interleave, or conversion along a row and a scatter) and costs
// O(k(m + n)) against O(mnk) for the products. k is padded to even, A's rows to a multiple of 16 and B's columns to a
// multiple of 32, all with zeros, so the micro-kernel never branches on sizes; only its stores are masked.

#include "CKernels.h"

#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#define GOKU_HAS_X86 1
#else
#define GOKU_HAS_X86 0
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

static inline __mmask16 GOKU_BF16 first(int count) {
    return count >= 16 ? (__mmask16)0xffff : count <= 0 ? (__mmask16)0 : (__mmask16)((1u << count) - 1);
}

/// dst[q * stride + x] = (src[2q][x], src[2q + 1][x]) for q < pairs and x < width (a multiple of 16), reading rows of
/// `src` (row stride `ld`) that exist (r < rows) and columns x < cols, zeros elsewhere.
GOKU_BF16 static void interleave_rows(uint32_t *dst, int stride, int pairs, int width, const float *src, int ld,
                                      int rows, int cols) {
    for (int q = 0; q < pairs; q++) {
        const float *r0 = src + (size_t)(2 * q) * (size_t)ld;
        const float *r1 = 2 * q + 1 < rows ? src + (size_t)(2 * q + 1) * (size_t)ld : NULL;
        uint32_t *out = dst + (size_t)q * (size_t)stride;
        for (int x = 0; x < width; x += 16) {
            __mmask16 m = first(cols - x);
            __m256i b0 = (__m256i)_mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(m, r0 + x));
            __m256i b1 = r1 ? (__m256i)_mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(m, r1 + x)) : _mm256_setzero_si256();
            __m256i lo = _mm256_unpacklo_epi16(b0, b1), hi = _mm256_unpackhi_epi16(b0, b1);
            _mm256_storeu_si256((__m256i *)(out + x), _mm256_permute2x128_si256(lo, hi, 0x20));
            _mm256_storeu_si256((__m256i *)(out + x + 8), _mm256_permute2x128_si256(lo, hi, 0x31));
        }
    }
}

/// dst[q * stride + x] = (src[x][2q], src[x][2q + 1]) for x < count and q < pairs: each row of `src` (stride `ld`,
/// `k` values) converted along its length and scattered down a column of `dst`; the value past k is zero.
GOKU_BF16 static void convert_scatter(uint32_t *dst, int stride, int pairs, const float *src, int ld, int count, int k) {
    __m512i lanes = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                                       _mm512_set1_epi32(stride));
    for (int x = 0; x < count; x++) {
        const float *row = src + (size_t)x * (size_t)ld;
        for (int q = 0; q < pairs; q += 16) {
            int p = 2 * q;
            __m512 lo = _mm512_maskz_loadu_ps(first(k - p), row + p);
            __m512 hi = _mm512_maskz_loadu_ps(first(k - p - 16), row + p + 16);
            __m512i v = (__m512i)_mm512_cvtne2ps_pbh(hi, lo);
            _mm512_mask_i32scatter_epi32(dst + (size_t)q * (size_t)stride + x, first(pairs - q), lanes, v, 4);
        }
    }
}

/// 8 rows x 32 columns: C[r][0..cols) (+)= alpha * sum_q a[q][r] . b[q][..] for r < rows.
GOKU_BF16 static void block(int rows, int cols, int pairs, const uint32_t *a, int a_stride, const uint32_t *b,
                            int b_stride, float alpha, bool accumulate, float *c, int ldc) {
    __m512 c00 = _mm512_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
    __m512 c40 = c00, c41 = c00, c50 = c00, c51 = c00, c60 = c00, c61 = c00, c70 = c00, c71 = c00;
    for (int q = 0; q < pairs; q++) {
        const uint32_t *bq = b + (size_t)q * (size_t)b_stride, *aq = a + (size_t)q * (size_t)a_stride;
        __m512bh b0 = (__m512bh)_mm512_loadu_si512((const void *)bq);
        __m512bh b1 = (__m512bh)_mm512_loadu_si512((const void *)(bq + 16));
#define GOKU_ROW(r)                                                   \
    {                                                                 \
        __m512bh av = (__m512bh)_mm512_set1_epi32((int)aq[r]);        \
        c##r##0 = _mm512_dpbf16_ps(c##r##0, av, b0);                  \
        c##r##1 = _mm512_dpbf16_ps(c##r##1, av, b1);                  \
    }
        GOKU_ROW(0) GOKU_ROW(1) GOKU_ROW(2) GOKU_ROW(3) GOKU_ROW(4) GOKU_ROW(5) GOKU_ROW(6) GOKU_ROW(7)
#undef GOKU_ROW
    }
    __mmask16 m0 = first(cols), m1 = first(cols - 16);
    __m512 va = _mm512_set1_ps(alpha);
    __m512 acc[8][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}, {c60, c61}, {c70, c71}};
    for (int r = 0; r < rows; r++) {
        float *out = c + (size_t)r * (size_t)ldc;
        __m512 v0 = _mm512_mul_ps(acc[r][0], va), v1 = _mm512_mul_ps(acc[r][1], va);
        if (accumulate) {
            v0 = _mm512_add_ps(_mm512_maskz_loadu_ps(m0, out), v0);
            v1 = _mm512_add_ps(_mm512_maskz_loadu_ps(m1, out + 16), v1);
        }
        _mm512_mask_storeu_ps(out, m0, v0);
        _mm512_mask_storeu_ps(out + 16, m1, v1);
    }
}
#endif

bool goku_bf16_product(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float *a, int lda,
                       const float *b, int ldb, bool accumulate, float *c, int ldc) {
#if GOKU_HAS_X86
    if (!goku_bf16_dot_available()) return false;
    if (m <= 0 || n <= 0) return true;
    int pairs = (k + 1) / 2;
    int m16 = (m + 15) / 16 * 16;  // padded rows of op(A): A is packed pair-major, [q][i]
    int n32 = (n + 31) / 32 * 32;  // padded columns of op(B): B is packed [q][j]
    uint32_t *pa = buffer(&packed_a, &packed_a_pairs, (size_t)pairs * (size_t)m16);
    uint32_t *pb = buffer(&packed_b, &packed_b_pairs, (size_t)pairs * (size_t)n32);
    if (!pa || !pb) return false;
    if (trans_a) {
        // op(A)(i, p) = a[p * lda + i]: rows p of `a` run along i.
        interleave_rows(pa, m16, pairs, m16, a, lda, k, m);
    } else {
        if (m < m16) memset(pa, 0, (size_t)pairs * (size_t)m16 * 4);
        convert_scatter(pa, m16, pairs, a, lda, m, k);
    }
    if (trans_b) {
        // op(B)(p, j) = b[j * ldb + p]: rows j of `b` run along p.
        if (n < n32) memset(pb, 0, (size_t)pairs * (size_t)n32 * 4);
        convert_scatter(pb, n32, pairs, b, ldb, n, k);
    } else {
        interleave_rows(pb, n32, pairs, n32, b, ldb, k, n);
    }
    if (k == 0) pairs = 0;
    for (int i = 0; i < m; i += 8) {
        int rows = m - i < 8 ? m - i : 8;
        for (int j = 0; j < n; j += 32) {
            block(rows, n - j, pairs, pa + i, m16, pb + j, n32, alpha, accumulate, c + (size_t)i * (size_t)ldc + j,
                  ldc);
        }
    }
    return true;
#else
    (void)trans_a; (void)trans_b; (void)m; (void)n; (void)k; (void)alpha; (void)a; (void)lda; (void)b; (void)ldb;
    (void)accumulate; (void)c; (void)ldc;
    return false;
#endif
}
