// The row-wise softmax work of the fused attention kernel on AVX-512F, sixteen lanes at a time: the online-softmax
// update of a forward score tile, the recomputed probabilities of the backward pass, and the score gradient.
//
// exp uses the same Cody-Waite reduction and degree-6 polynomial as TensorCore's VectorExp (within about 1 ulp of
// expf on [-87, 0]); arguments below ln(FLT_MIN) give 0 and -inf gives exactly 0, which masked scores rely on. The
// forward update makes one pass for the row maximum and one for exp and the sum together, where the Swift loops make
// three.

#include "CKernels.h"
#include "avx512_common.h"

#include <math.h>

#if GOKU_HAS_X86
#define GOKU_ROWS GOKU_AVX512

/// exp per lane for arguments ≤ 88 (the attention kernels pass x - max ≤ 0): 0 below -87.34 and for -inf.
/// n = round(x·log2 e) by the magic-number addition, r = x - n·ln 2 in two parts, e^r by the polynomial, and the
/// result p·2ⁿ by vscalefps (one instruction, where building 2ⁿ from integer bits takes four).
static inline __m512 GOKU_ROWS exp16(__m512 x) {
    const __m512 magic = _mm512_set1_ps(12582912.0f);
    __mmask16 kept = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-87.33654f), _CMP_GE_OQ);
    __m512 t = _mm512_fmadd_ps(x, _mm512_set1_ps(1.44269504f), magic);
    __m512 n = _mm512_sub_ps(t, magic);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.98756915e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.39819995e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.16657959e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.166666655f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.50000001f));
    p = _mm512_fmadd_ps(_mm512_mul_ps(p, r), r, _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    return _mm512_maskz_scalef_ps(kept, p, n);
}

/// max(previous, the row's largest score).
static inline float GOKU_ROWS running_maximum(const float *row, int cols, float previous) {
    __m512 vmax = _mm512_set1_ps(-INFINITY);
    for (int j = 0; j < cols; j += 16) vmax = _mm512_max_ps(vmax, _mm512_mask_loadu_ps(vmax, goku_lanes(cols - j), row + j));
    float m = _mm512_reduce_max_ps(vmax);
    return previous > m ? previous : m;
}

/// The online-softmax update of one row after its exponentials (relative to the new maximum m) summed to `sum`:
/// what earlier tiles accumulated is rescaled to m (by 0 before the first visible key), and m is stored.
static inline void GOKU_ROWS fold_row(float *row_max, float *row_sum, float *acc, int dh, float m, float sum) {
    // Most tiles after the first leave a row's maximum unchanged: skip the libm call there (expf(0) is exactly 1).
    float correction = *row_max == m ? 1.0f : expf(*row_max - m);
    *row_sum = *row_sum * correction + sum;
    if (correction != 1.0f) {
        __m512 c = _mm512_set1_ps(correction);
        for (int d = 0; d < dh; d += 16) {
            __mmask16 k = goku_lanes(dh - d);
            _mm512_mask_storeu_ps(acc + d, k, _mm512_mul_ps(_mm512_maskz_loadu_ps(k, acc + d), c));
        }
    }
    *row_max = m;
}

GOKU_ROWS static void softmax_tile(float *tile, int rows, int cols, float *row_max, float *row_sum, float *acc,
                                   int dh) {
    for (int i = 0; i < rows; i++) {
        float *row = tile + (size_t)i * (size_t)cols;
        float m = running_maximum(row, cols, row_max[i]);
        if (m == -INFINITY) {
            for (int j = 0; j < cols; j += 16) _mm512_mask_storeu_ps(row + j, goku_lanes(cols - j), _mm512_setzero_ps());
            continue;
        }
        __m512 shift = _mm512_set1_ps(m), vsum = _mm512_setzero_ps();
        for (int j = 0; j < cols; j += 16) {
            __mmask16 k = goku_lanes(cols - j);
            __m512 e = exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, row + j), shift));
            _mm512_mask_storeu_ps(row + j, k, e);
            vsum = _mm512_add_ps(vsum, _mm512_maskz_mov_ps(k, e));
        }
        fold_row(row_max + i, row_sum + i, acc + (size_t)i * (size_t)dh, dh, m, _mm512_reduce_add_ps(vsum));
    }
}

GOKU_ROWS static void probabilities(float *p, int rows, int cols, const float *lse) {
    for (int i = 0; i < rows; i++) {
        float *row = p + (size_t)i * (size_t)cols;
        __m512 shift = _mm512_set1_ps(lse[i]);
        for (int j = 0; j < cols; j += 16) {
            __mmask16 k = goku_lanes(cols - j);
            _mm512_mask_storeu_ps(row + j, k, exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, row + j), shift)));
        }
    }
}

GOKU_ROWS static void score_gradient(float *ds, const float *p, int rows, int cols, const float *delta) {
    for (int i = 0; i < rows; i++) {
        float *d = ds + (size_t)i * (size_t)cols;
        const float *pr = p + (size_t)i * (size_t)cols;
        __m512 vd = _mm512_set1_ps(delta[i]);
        for (int j = 0; j < cols; j += 16) {
            __mmask16 k = goku_lanes(cols - j);
            __m512 g = _mm512_sub_ps(_mm512_maskz_loadu_ps(k, d + j), vd);
            _mm512_mask_storeu_ps(d + j, k, _mm512_mul_ps(_mm512_maskz_loadu_ps(k, pr + j), g));
        }
    }
}

// ---- The same row work writing bfloat16 pairs for the packed products (goku_bf16_packed_product) ----

#define GOKU_ROWS_BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16")))

/// Sixteen pairs (lo[x], hi[x]) of two rows' values at the same columns, in column order.
static inline __m512i GOKU_ROWS_BF16 interleave16(__m512 lo, __m512 hi) {
    __m256i b0 = (__m256i)_mm512_cvtneps_pbh(lo), b1 = (__m256i)_mm512_cvtneps_pbh(hi);
    __m256i l = _mm256_unpacklo_epi16(b0, b1), h = _mm256_unpackhi_epi16(b0, b1);
    return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_permute2x128_si256(l, h, 0x20)),
                              _mm256_permute2x128_si256(l, h, 0x31), 1);
}

/// Zeros in pair rows `from` up to `from` rounded up to 16, over the columns up to cols rounded up to 16: the padding
/// AMX tiles read (goku_bf16_packed_product).
static inline void GOKU_ROWS_BF16 zero_pair_rows(uint32_t *pairs, int stride, int from, int cols) {
    int to = (from + 15) / 16 * 16;
    for (int q = from; q < to; q++)
        for (int x = 0; x < cols; x += 16) _mm512_storeu_si512((void *)(pairs + (size_t)q * (size_t)stride + x), _mm512_setzero_si512());
}

GOKU_ROWS_BF16 static void softmax_tile_bf16(const float *tile, int rows, int cols, float *row_max, float *row_sum,
                                             float *acc, int dh, uint32_t *packed, int stride) {
    int pairs = (cols + 1) / 2;
    for (int i = 0; i < rows; i++) {
        const float *row = tile + (size_t)i * (size_t)cols;
        uint32_t *out = packed + (size_t)i * (size_t)stride;
        float m = running_maximum(row, cols, row_max[i]);
        if (m == -INFINITY) {
            for (int q = 0; q < pairs; q += 16) _mm512_storeu_si512((void *)(out + q), _mm512_setzero_si512());
            continue;
        }
        __m512 shift = _mm512_set1_ps(m), vsum = _mm512_setzero_ps();
        for (int j = 0; j < cols; j += 32) {
            __mmask16 k0 = goku_lanes(cols - j), k1 = goku_lanes(cols - j - 16);
            __m512 e0 = _mm512_maskz_mov_ps(k0, exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(k0, row + j), shift)));
            __m512 e1 = _mm512_maskz_mov_ps(k1, exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(k1, row + j + 16), shift)));
            vsum = _mm512_add_ps(_mm512_add_ps(vsum, e0), e1);  // the order of goku_attention_softmax_tile's sum
            _mm512_storeu_si512((void *)(out + j / 2), (__m512i)_mm512_cvtne2ps_pbh(e1, e0));  // zeros past cols
        }
        fold_row(row_max + i, row_sum + i, acc + (size_t)i * (size_t)dh, dh, m, _mm512_reduce_add_ps(vsum));
    }
}

GOKU_ROWS_BF16 static void probabilities_bf16(float *p, int rows, int cols, const float *lse, uint32_t *pairs,
                                              int stride) {
    for (int i = 0; i < rows; i += 2) {
        float *r0 = p + (size_t)i * (size_t)cols, *r1 = i + 1 < rows ? r0 + cols : NULL;
        __m512 s0 = _mm512_set1_ps(lse[i]), s1 = _mm512_set1_ps(r1 ? lse[i + 1] : 0.0f);
        uint32_t *out = pairs + (size_t)(i / 2) * (size_t)stride;
        for (int j = 0; j < cols; j += 16) {
            __mmask16 k = goku_lanes(cols - j);
            __m512 e0 = _mm512_maskz_mov_ps(k, exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, r0 + j), s0)));
            _mm512_mask_storeu_ps(r0 + j, k, e0);
            __m512 e1 = _mm512_setzero_ps();
            if (r1) {
                e1 = _mm512_maskz_mov_ps(k, exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, r1 + j), s1)));
                _mm512_mask_storeu_ps(r1 + j, k, e1);
            }
            _mm512_storeu_si512((void *)(out + j), interleave16(e0, e1));
        }
    }
    zero_pair_rows(pairs, stride, (rows + 1) / 2, cols);
}

GOKU_ROWS_BF16 static void score_gradient_bf16(const float *dp, const float *p, int rows, int cols, const float *delta,
                                               uint32_t *ds_rows, int rows_stride, uint32_t *ds_pairs,
                                               int pairs_stride) {
    for (int i = 0; i < rows; i += 2) {
        int two = i + 1 < rows;
        const float *d0 = dp + (size_t)i * (size_t)cols, *p0 = p + (size_t)i * (size_t)cols;
        const float *d1 = d0 + cols, *p1 = p0 + cols;
        __m512 v0 = _mm512_set1_ps(delta[i]), v1 = _mm512_set1_ps(two ? delta[i + 1] : 0.0f);
        uint32_t *row0 = ds_rows + (size_t)i * (size_t)rows_stride, *row1 = row0 + rows_stride;
        uint32_t *out = ds_pairs + (size_t)(i / 2) * (size_t)pairs_stride;
        for (int j = 0; j < cols; j += 32) {
            __mmask16 k0 = goku_lanes(cols - j), k1 = goku_lanes(cols - j - 16);
            __m512 g00 = _mm512_mul_ps(_mm512_maskz_loadu_ps(k0, p0 + j), _mm512_sub_ps(_mm512_maskz_loadu_ps(k0, d0 + j), v0));
            __m512 g01 = _mm512_mul_ps(_mm512_maskz_loadu_ps(k1, p0 + j + 16),
                                       _mm512_sub_ps(_mm512_maskz_loadu_ps(k1, d0 + j + 16), v0));
            __m512 g10 = _mm512_setzero_ps(), g11 = g10;
            if (two) {
                g10 = _mm512_mul_ps(_mm512_maskz_loadu_ps(k0, p1 + j), _mm512_sub_ps(_mm512_maskz_loadu_ps(k0, d1 + j), v1));
                g11 = _mm512_mul_ps(_mm512_maskz_loadu_ps(k1, p1 + j + 16),
                                    _mm512_sub_ps(_mm512_maskz_loadu_ps(k1, d1 + j + 16), v1));
            }
            _mm512_storeu_si512((void *)(row0 + j / 2), (__m512i)_mm512_cvtne2ps_pbh(g01, g00));  // zeros past cols
            if (two) _mm512_storeu_si512((void *)(row1 + j / 2), (__m512i)_mm512_cvtne2ps_pbh(g11, g10));
            _mm512_storeu_si512((void *)(out + j), interleave16(g00, g10));
            if (cols - j > 16) _mm512_storeu_si512((void *)(out + j + 16), interleave16(g01, g11));
        }
    }
    zero_pair_rows(ds_pairs, pairs_stride, (rows + 1) / 2, cols);
}

GOKU_ROWS static void transpose_accumulate(const float *src, int rows, int cols, int lds, float *dst, int ldd) {
    __m512i r[16];
    for (int r0 = 0; r0 < rows; r0 += 16) {
        __mmask16 mr = goku_lanes(rows - r0);
        for (int c0 = 0; c0 < cols; c0 += 16) {
            __mmask16 mc = goku_lanes(cols - c0);
            for (int i = 0; i < 16; i++)
                r[i] = r0 + i < rows ? _mm512_maskz_loadu_epi32(mc, src + (size_t)(r0 + i) * (size_t)lds + c0)
                                     : _mm512_setzero_si512();
            goku_transpose16(r);
            int n = cols - c0 < 16 ? cols - c0 : 16;
            for (int c = 0; c < n; c++) {
                float *out = dst + (size_t)(c0 + c) * (size_t)ldd + r0;
                _mm512_mask_storeu_ps(out, mr, _mm512_add_ps(_mm512_maskz_loadu_ps(mr, out), _mm512_castsi512_ps(r[c])));
            }
        }
    }
}
#endif

bool goku_attention_softmax_tile(float *tile, int rows, int cols, float *row_max, float *row_sum, float *acc, int dh) {
#if GOKU_HAS_X86
    if (!goku_avx512_available()) return false;
    softmax_tile(tile, rows, cols, row_max, row_sum, acc, dh);
    return true;
#else
    (void)tile; (void)rows; (void)cols; (void)row_max; (void)row_sum; (void)acc; (void)dh;
    return false;
#endif
}

bool goku_attention_probabilities(float *p, int rows, int cols, const float *lse) {
#if GOKU_HAS_X86
    if (!goku_avx512_available()) return false;
    probabilities(p, rows, cols, lse);
    return true;
#else
    (void)p; (void)rows; (void)cols; (void)lse;
    return false;
#endif
}

bool goku_attention_score_gradient(float *ds, const float *p, int rows, int cols, const float *delta) {
#if GOKU_HAS_X86
    if (!goku_avx512_available()) return false;
    score_gradient(ds, p, rows, cols, delta);
    return true;
#else
    (void)ds; (void)p; (void)rows; (void)cols; (void)delta;
    return false;
#endif
}

bool goku_attention_softmax_tile_bf16(float *tile, int rows, int cols, float *row_max, float *row_sum, float *acc,
                                      int dh, uint32_t *packed, int stride) {
#if GOKU_HAS_X86
    if (!goku_bf16_dot_available()) return false;
    softmax_tile_bf16(tile, rows, cols, row_max, row_sum, acc, dh, packed, stride);
    return true;
#else
    (void)tile; (void)rows; (void)cols; (void)row_max; (void)row_sum; (void)acc; (void)dh; (void)packed; (void)stride;
    return false;
#endif
}

bool goku_attention_probabilities_bf16(float *p, int rows, int cols, const float *lse, uint32_t *pairs, int stride) {
#if GOKU_HAS_X86
    if (!goku_bf16_dot_available()) return false;
    probabilities_bf16(p, rows, cols, lse, pairs, stride);
    return true;
#else
    (void)p; (void)rows; (void)cols; (void)lse; (void)pairs; (void)stride;
    return false;
#endif
}

bool goku_attention_score_gradient_bf16(const float *dp, const float *p, int rows, int cols, const float *delta,
                                        uint32_t *ds_rows, int rows_stride, uint32_t *ds_pairs, int pairs_stride) {
#if GOKU_HAS_X86
    if (!goku_bf16_dot_available()) return false;
    score_gradient_bf16(dp, p, rows, cols, delta, ds_rows, rows_stride, ds_pairs, pairs_stride);
    return true;
#else
    (void)dp; (void)p; (void)rows; (void)cols; (void)delta; (void)ds_rows; (void)rows_stride; (void)ds_pairs;
    (void)pairs_stride;
    return false;
#endif
}

void goku_transpose_accumulate(const float *src, int rows, int cols, int lds, float *dst, int ldd) {
#if GOKU_HAS_X86
    if (goku_avx512_available()) {
        transpose_accumulate(src, rows, cols, lds, dst, ldd);
        return;
    }
#endif
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) dst[(size_t)c * (size_t)ldd + r] += src[(size_t)r * (size_t)lds + c];
}
