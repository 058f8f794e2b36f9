#ifndef GOKU_CKERNELS_H
#define GOKU_CKERNELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/// Whether this CPU (and the OS) supports the AVX-512 BF16 dot-product instruction (vdpbf16ps) that
/// goku_bf16_product uses.
bool goku_bf16_dot_available(void);

/// C = alpha * op(A) * op(B), or C += alpha * op(A) * op(B) when `accumulate`, with A and B rounded to bfloat16
/// (round to nearest even) and Float32 accumulation: row-major, gemm's conventions (op(A) is m x k, read as
/// A[i * lda + p], or A[p * lda + i] when `trans_a`; op(B) is k x n, read as B[p * ldb + j], or B[j * ldb + p] when
/// `trans_b`). Returns false, writing nothing, when the CPU lacks AVX-512 BF16.
bool goku_bf16_product(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float *a, int lda,
                       const float *b, int ldb, bool accumulate, float *c, int ldc);

/// C = alpha * op(A) * op(B), or C += alpha * op(A) * op(B) when `accumulate`, in Float32 on AVX-512F, with gemm's
/// conventions as goku_bf16_product. Returns false, writing nothing, when the CPU lacks AVX-512 F and BW.
bool goku_f32_product(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float *a, int lda,
                      const float *b, int ldb, bool accumulate, float *c, int ldc);

/// The online-softmax update of one forward attention tile (rows x cols scores, row stride cols), on AVX-512F: per row,
/// m = max(row_max, max of the row); the row becomes exp(score - m) (all zeros when m is -inf, leaving that row's
/// state alone); row_sum = row_sum * exp(row_max - m) + the row's sum; the row's dh accumulated outputs in `acc`
/// (row stride dh) are scaled by the same factor; row_max = m. Returns false, writing nothing, without AVX-512.
bool goku_attention_softmax_tile(float *tile, int rows, int cols, float *row_max, float *row_sum, float *acc, int dh);

/// p[i][j] = exp(p[i][j] - lse[i]) for a rows x cols tile (row stride cols): the backward pass's recomputed
/// probabilities (lse = +inf gives zeros). Returns false, writing nothing, without AVX-512.
bool goku_attention_probabilities(float *p, int rows, int cols, const float *lse);

/// ds[i][j] = p[i][j] * (ds[i][j] - delta[i]) for rows x cols tiles (row stride cols): the score gradient from the
/// probability gradient. Returns false, writing nothing, without AVX-512.
bool goku_attention_score_gradient(float *ds, const float *p, int rows, int cols, const float *delta);

/// Whether this CPU has AVX-512 F and BW (the rounding functions below use them when it does).
bool goku_avx512_available(void);

/// y[i] = x[i] rounded to bfloat16 bits (round to nearest even on the bit pattern, NaN kept quiet, denormals
/// rounded like any value): the same bits as TensorCore's BFloat16.bits. Vectorised on AVX-512F.
void goku_round_bf16(const float *x, uint16_t *y, size_t count);

/// y (cols x rows, row-major) = x (rows x cols, row stride ld) transposed and rounded as goku_round_bf16, in one pass
/// (16 x 16 blocks transposed in registers on AVX-512F).
void goku_round_bf16_transposed(const float *x, int rows, int cols, int ld, uint16_t *y);

#endif
