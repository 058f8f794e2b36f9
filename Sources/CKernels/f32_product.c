// Float32 products of small tiles on AVX-512F, for the fused attention kernel.
//
// op(B) is first packed into 32-column panels, [panel][p][32] with the columns past n zero, so the micro-kernel streams
// two whole vectors of B per step of k; op(A) is read in place through two strides (its rows may run along k or
// across it) and broadcast from memory into the multiply-adds. The micro-kernel keeps 12 rows x 32 columns of C in 24
// registers: per step of k, 2 loads of B and 12 broadcasts feed 24 multiply-adds, against 1 load and 8 broadcasts per
// 8 in the 8 x 16 Swift panels it replaces; a last panel of at most 16 columns uses a 12 x 16 variant. Packing a transposed B (the keys of Q.K^T) transposes 16 x 16 blocks in
// registers. Packing costs O(kn) against O(mnk) for the products.

#include "CKernels.h"
#include "avx512_common.h"

#include <stdlib.h>
#include <string.h>

/// Per-thread packing buffer for op(B), grown as needed (the attention kernel calls from its worker threads).
static _Thread_local float *packed_panels = NULL;
static _Thread_local size_t packed_floats = 0;

static float *panel_buffer(size_t need) {
    if (packed_floats < need) {
        free(packed_panels);
        packed_panels = (float *)aligned_alloc(64, ((need * 4 + 63) / 64) * 64);
        packed_floats = packed_panels ? need : 0;
    }
    return packed_panels;
}

#if GOKU_HAS_X86
#define GOKU_F32 GOKU_AVX512

enum { MR = 12, NR = 32, KC = 128 };

/// dst[p * 32 + x] = src[p * ld + x] for x < cols (≤ 32), zeros up to 32, for p < k.
GOKU_F32 static void pack_rows(float *dst, const float *src, int ld, int k, int cols) {
    __mmask16 m0 = goku_lanes(cols), m1 = goku_lanes(cols - 16);
    for (int p = 0; p < k; p++) {
        const float *row = src + (size_t)p * (size_t)ld;
        _mm512_store_ps(dst + (size_t)p * NR, _mm512_maskz_loadu_ps(m0, row));
        _mm512_store_ps(dst + (size_t)p * NR + 16, _mm512_maskz_loadu_ps(m1, row + 16));
    }
}

/// dst[p * 32 + x] = src[x * ld + p] for x < cols (≤ 32) and p < k, zeros for x ≥ cols: rows of `src` run along p.
GOKU_F32 static void pack_transposed(float *dst, const float *src, int ld, int k, int cols) {
    __m512i r[16];
    for (int x0 = 0; x0 < NR; x0 += 16) {
        for (int p0 = 0; p0 < k; p0 += 16) {
            __mmask16 load = goku_lanes(k - p0);
            for (int x = 0; x < 16; x++)
                r[x] = x0 + x < cols ? _mm512_maskz_loadu_epi32(load, src + (size_t)(x0 + x) * (size_t)ld + p0)
                                     : _mm512_setzero_si512();
            goku_transpose16(r);
            int rows = k - p0 < 16 ? k - p0 : 16;
            for (int p = 0; p < rows; p++) _mm512_store_si512((void *)(dst + (size_t)(p0 + p) * NR + x0), r[p]);
        }
    }
}

/// 12 rows x 32 columns: C[r][0..cols) (+)= alpha * sum_p A(r, p) * panel[p][..] for r < rows, with A(r, p) at
/// a[r * a_row + p * a_col]. Missing rows read the last row and are not stored.
GOKU_F32 static void block(int rows, int cols, int k, const float *a, int a_row, int a_col, const float *panel,
                           float alpha, bool accumulate, float *c, int ldc) {
    const float *ar[MR];
    for (int r = 0; r < MR; r++) ar[r] = a + (size_t)(r < rows ? r : rows - 1) * (size_t)a_row;
    __m512 c00 = _mm512_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
    __m512 c40 = c00, c41 = c00, c50 = c00, c51 = c00, c60 = c00, c61 = c00, c70 = c00, c71 = c00;
    __m512 c80 = c00, c81 = c00, c90 = c00, c91 = c00, ca0 = c00, ca1 = c00, cb0 = c00, cb1 = c00;
    const float *a0 = ar[0], *a1 = ar[1], *a2 = ar[2], *a3 = ar[3], *a4 = ar[4], *a5 = ar[5];
    const float *a6 = ar[6], *a7 = ar[7], *a8 = ar[8], *a9 = ar[9], *aa = ar[10], *ab = ar[11];
    for (int p = 0; p < k; p++) {
        __m512 b0 = _mm512_load_ps(panel + (size_t)p * NR), b1 = _mm512_load_ps(panel + (size_t)p * NR + 16);
        size_t o = (size_t)p * (size_t)a_col;
#define GOKU_ROW(r)                                     \
    {                                                   \
        __m512 av = _mm512_set1_ps(a##r[o]);            \
        c##r##0 = _mm512_fmadd_ps(av, b0, c##r##0);     \
        c##r##1 = _mm512_fmadd_ps(av, b1, c##r##1);     \
    }
        GOKU_ROW(0) GOKU_ROW(1) GOKU_ROW(2) GOKU_ROW(3) GOKU_ROW(4) GOKU_ROW(5)
        GOKU_ROW(6) GOKU_ROW(7) GOKU_ROW(8) GOKU_ROW(9) GOKU_ROW(a) GOKU_ROW(b)
#undef GOKU_ROW
    }
    const __m512 acc[MR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51},
                               {c60, c61}, {c70, c71}, {c80, c81}, {c90, c91}, {ca0, ca1}, {cb0, cb1}};
    goku_store_rows(acc, rows, cols, alpha, accumulate, c, ldc);
}

/// The same for a last panel of at most 16 columns (Dh 72 leaves 8): one vector of B per step and 12 accumulators,
/// so no multiply-adds are spent on the zero columns of the second half.
GOKU_F32 static void half_block(int rows, int cols, int k, const float *a, int a_row, int a_col, const float *panel,
                                float alpha, bool accumulate, float *c, int ldc) {
    const float *ar[MR];
    for (int r = 0; r < MR; r++) ar[r] = a + (size_t)(r < rows ? r : rows - 1) * (size_t)a_row;
    __m512 c0 = _mm512_setzero_ps(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0, c7 = c0, c8 = c0;
    __m512 c9 = c0, ca = c0, cb = c0;
    const float *a0 = ar[0], *a1 = ar[1], *a2 = ar[2], *a3 = ar[3], *a4 = ar[4], *a5 = ar[5];
    const float *a6 = ar[6], *a7 = ar[7], *a8 = ar[8], *a9 = ar[9], *aa = ar[10], *ab = ar[11];
    for (int p = 0; p < k; p++) {
        __m512 b0 = _mm512_load_ps(panel + (size_t)p * NR);
        size_t o = (size_t)p * (size_t)a_col;
#define GOKU_ROW(r) c##r = _mm512_fmadd_ps(_mm512_set1_ps(a##r[o]), b0, c##r);
        GOKU_ROW(0) GOKU_ROW(1) GOKU_ROW(2) GOKU_ROW(3) GOKU_ROW(4) GOKU_ROW(5)
        GOKU_ROW(6) GOKU_ROW(7) GOKU_ROW(8) GOKU_ROW(9) GOKU_ROW(a) GOKU_ROW(b)
#undef GOKU_ROW
    }
    const __m512 z = _mm512_setzero_ps();
    const __m512 acc[MR][2] = {{c0, z}, {c1, z}, {c2, z}, {c3, z}, {c4, z}, {c5, z},
                               {c6, z}, {c7, z}, {c8, z}, {c9, z}, {ca, z}, {cb, z}};
    goku_store_rows(acc, rows, cols, alpha, accumulate, c, ldc);
}

/// The same for a last panel of at most 8 columns on 256-bit vectors: where the CPU splits a 512-bit multiply-add in
/// two halves (AMD Zen 4), the 8 zero columns of `half_block`'s vector cost as much as the 8 real ones.
GOKU_F32 static void quarter_block(int rows, int cols, int k, const float *a, int a_row, int a_col, const float *panel,
                                   float alpha, bool accumulate, float *c, int ldc) {
    const float *ar[MR];
    for (int r = 0; r < MR; r++) ar[r] = a + (size_t)(r < rows ? r : rows - 1) * (size_t)a_row;
    __m256 c0 = _mm256_setzero_ps(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0, c7 = c0, c8 = c0;
    __m256 c9 = c0, ca = c0, cb = c0;
    const float *a0 = ar[0], *a1 = ar[1], *a2 = ar[2], *a3 = ar[3], *a4 = ar[4], *a5 = ar[5];
    const float *a6 = ar[6], *a7 = ar[7], *a8 = ar[8], *a9 = ar[9], *aa = ar[10], *ab = ar[11];
    for (int p = 0; p < k; p++) {
        __m256 b0 = _mm256_load_ps(panel + (size_t)p * NR);
        size_t o = (size_t)p * (size_t)a_col;
#define GOKU_ROW(r) c##r = _mm256_fmadd_ps(_mm256_set1_ps(a##r[o]), b0, c##r);
        GOKU_ROW(0) GOKU_ROW(1) GOKU_ROW(2) GOKU_ROW(3) GOKU_ROW(4) GOKU_ROW(5)
        GOKU_ROW(6) GOKU_ROW(7) GOKU_ROW(8) GOKU_ROW(9) GOKU_ROW(a) GOKU_ROW(b)
#undef GOKU_ROW
    }
    const __m256 acc[MR] = {c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, ca, cb};
    goku_store_rows8(acc, rows, cols, alpha, accumulate, c, ldc);
}
#endif

bool goku_f32_product(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float *a, int lda,
                      const float *b, int ldb, bool accumulate, float *c, int ldc) {
#if GOKU_HAS_X86
    if (!goku_avx512_available()) return false;
    if (m <= 0 || n <= 0) return true;
    int panels = (n + NR - 1) / NR;
    float *pb = panel_buffer((size_t)panels * (size_t)k * NR);
    if (!pb) return false;
    for (int j = 0; j < panels; j++) {
        float *panel = pb + (size_t)j * (size_t)k * NR;
        int cols = n - j * NR < NR ? n - j * NR : NR;
        if (trans_b) {
            pack_transposed(panel, b + (size_t)j * NR * (size_t)ldb, ldb, k, cols);
        } else {
            pack_rows(panel, b + (size_t)j * NR, ldb, k, cols);
        }
    }
    int a_row = trans_a ? 1 : lda, a_col = trans_a ? lda : 1;
    // Each panel is cut along k into KC-row pieces (16 KB) that stay in L1 while every row block of A passes over
    // them; the pieces after the first accumulate.
    for (int j = 0; j < panels; j++) {
        const float *panel = pb + (size_t)j * (size_t)k * NR;
        for (int p0 = 0; p0 < k; p0 += KC) {
            int depth = k - p0 < KC ? k - p0 : KC;
            for (int i = 0; i < m; i += MR) {
                int rows = m - i < MR ? m - i : MR;
                (n - j * NR <= 8 ? quarter_block : n - j * NR <= 16 ? half_block : block)(
                    rows, n - j * NR, depth, a + (size_t)i * (size_t)a_row + (size_t)p0 * (size_t)a_col, a_row, a_col,
                    panel + (size_t)p0 * NR, alpha, accumulate || p0 > 0, c + (size_t)i * (size_t)ldc + (size_t)j * NR,
                    ldc);
            }
        }
    }
    return true;
#else
    (void)trans_a; (void)trans_b; (void)m; (void)n; (void)k; (void)alpha; (void)a; (void)lda; (void)b; (void)ldb;
    (void)accumulate; (void)c; (void)ldc;
    return false;
#endif
}
