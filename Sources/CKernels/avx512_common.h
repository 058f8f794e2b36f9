// Pieces shared by the AVX-512 kernels of this target (not part of its public header): the x86 detection, the lane
// mask of a partial vector, the 16 x 16 register transpose, and the scaled, optionally accumulating store of a block
// of C rows held as two vectors each.

#ifndef GOKU_AVX512_COMMON_H
#define GOKU_AVX512_COMMON_H

#include <stdbool.h>
#include <stddef.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define GOKU_HAS_X86 1
#else
#define GOKU_HAS_X86 0
#endif

#if GOKU_HAS_X86
#define GOKU_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma")))

/// The first `count` of 16 lanes (none for count ≤ 0, all for count ≥ 16).
static inline __mmask16 GOKU_AVX512 goku_lanes(int count) {
    return count >= 16 ? (__mmask16)0xffff : count <= 0 ? (__mmask16)0 : (__mmask16)((1u << count) - 1);
}

/// Transposes 16 x 16 32-bit lanes: on return r[c] holds what was column c.
static inline void GOKU_AVX512 goku_transpose16(__m512i r[16]) {
    __m512i a[16], b[16];
    for (int k = 0; k < 8; k++) {
        a[2 * k] = _mm512_unpacklo_epi32(r[2 * k], r[2 * k + 1]);
        a[2 * k + 1] = _mm512_unpackhi_epi32(r[2 * k], r[2 * k + 1]);
    }
    // b[4k + m], 128-bit lane L: column 4L + m of rows 4k ... 4k + 3.
    for (int k = 0; k < 4; k++) {
        b[4 * k] = _mm512_unpacklo_epi64(a[4 * k], a[4 * k + 2]);
        b[4 * k + 1] = _mm512_unpackhi_epi64(a[4 * k], a[4 * k + 2]);
        b[4 * k + 2] = _mm512_unpacklo_epi64(a[4 * k + 1], a[4 * k + 3]);
        b[4 * k + 3] = _mm512_unpackhi_epi64(a[4 * k + 1], a[4 * k + 3]);
    }
    for (int m = 0; m < 4; m++) {
        __m512i u0 = _mm512_shuffle_i32x4(b[m], b[4 + m], 0x44), u1 = _mm512_shuffle_i32x4(b[m], b[4 + m], 0xee);
        __m512i u2 = _mm512_shuffle_i32x4(b[8 + m], b[12 + m], 0x44), u3 = _mm512_shuffle_i32x4(b[8 + m], b[12 + m], 0xee);
        r[m] = _mm512_shuffle_i32x4(u0, u2, 0x88);
        r[4 + m] = _mm512_shuffle_i32x4(u0, u2, 0xdd);
        r[8 + m] = _mm512_shuffle_i32x4(u1, u3, 0x88);
        r[12 + m] = _mm512_shuffle_i32x4(u1, u3, 0xdd);
    }
}

/// C[r][0..cols) = alpha * acc[r] (+ C[r][0..cols) when `accumulate`) for r < rows, each row two vectors (32
/// columns, stores masked to `cols`).
static inline void GOKU_AVX512 goku_store_rows(const __m512 (*acc)[2], int rows, int cols, float alpha, bool accumulate,
                                               float *c, int ldc) {
    __mmask16 m0 = goku_lanes(cols), m1 = goku_lanes(cols - 16);
    __m512 va = _mm512_set1_ps(alpha);
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

/// C[r][0..cols) = alpha * acc[r] (+ C[r][0..cols) when `accumulate`) for r < rows, each row one 256-bit vector (at
/// most 8 columns, stores masked to `cols`): the store of the micro-kernels' last narrow blocks.
static inline void GOKU_AVX512 goku_store_rows8(const __m256 *acc, int rows, int cols, float alpha, bool accumulate,
                                                float *c, int ldc) {
    __mmask8 m = (__mmask8)(cols >= 8 ? 0xff : (1u << cols) - 1);
    __m256 va = _mm256_set1_ps(alpha);
    for (int r = 0; r < rows; r++) {
        float *out = c + (size_t)r * (size_t)ldc;
        __m256 v = _mm256_mul_ps(acc[r], va);
        if (accumulate) v = _mm256_add_ps(_mm256_maskz_loadu_ps(m, out), v);
        _mm256_mask_storeu_ps(out, m, v);
    }
}
#endif

#endif
