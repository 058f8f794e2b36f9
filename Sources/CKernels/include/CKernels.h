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

/// Whether this CPU has AVX-512 F and BW, and FMA (the rounding functions below use them when it does).
bool goku_avx512_available(void);

/// y[i] = x[i] rounded to bfloat16 bits (round to nearest even on the bit pattern, NaN kept quiet, denormals
/// rounded like any value): the same bits as TensorCore's BFloat16.bits. Vectorised on AVX-512F.
void goku_round_bf16(const float *x, uint16_t *y, size_t count);

/// y (cols x rows, row-major) = x (rows x cols, row stride ld) transposed and rounded as goku_round_bf16, in one pass
/// (16 x 16 blocks transposed in registers on AVX-512F).
void goku_round_bf16_transposed(const float *x, int rows, int cols, int ld, uint16_t *y);

/// Whether goku_bf16_product multiplies on AMX tiles now (asked for with GOKU_ATTENTION_AMX=1 or goku_bf16_use_amx,
/// and granted by the CPU and the OS), and the switch itself (for checks; it overrides the environment).
int goku_bf16_amx_active(void);
void goku_bf16_use_amx(int on);

// ---- bfloat16 operands packed once (for the fused attention's bf16 path) ----
// A pair is one uint32: the bfloat16 values (round to nearest even) at reduction index 2q (low half) and 2q + 1
// (high half). goku_bf16_packed_product reads op(A)'s pair q of row i at a[q * a_pair + i * a_row] and op(B)'s pair q
// of column j at b[q * b_stride + j]. It reads A rows up to m rounded up to 16 and B columns up to n rounded up to
// 32, so those must exist in the buffers (their values do not reach C). Where the AMX path is on
// (goku_bf16_amx_active) and A is pair-contiguous (a_pair = 1), the product runs on AMX tiles, which read pairs up to
// `pairs` rounded up to 16: those of A's rows and B's pair rows past `pairs` must be zeros. The packers and row
// writers here keep that padding. The packers do nothing, and the product returns false writing nothing, when the
// CPU lacks AVX-512 BF16.

/// dst[x * stride + q] = pair(src[x][2q], src[x][2q + 1]) for x < rows and q < stride (values past k are zero): rows
/// of `src` (stride ld) that run along the reduction (op(A) untransposed). Rows rows..<padded_rows become zeros.
void goku_bf16_pack_rows(uint32_t *dst, int stride, int rows, int padded_rows, const float *src, int ld, int k);

/// dst[q * stride + x] = pair(src[x][2q], src[x][2q + 1]) for q < pairs and x < stride (a multiple of 16; rows
/// x ≥ count and values past k are zero): rows of `src` that run along the reduction, transposed (op(B) = Xᵀ).
void goku_bf16_pack_columns(uint32_t *dst, int stride, int pairs, const float *src, int ld, int count, int k);

/// dst[q * stride + x] = pair(src[2q][x], src[2q + 1][x]) for q < pairs and x < stride (a multiple of 16; columns
/// x ≥ cols and rows ≥ `rows` are zero): rows of `src` that run across the reduction (op(B) untransposed, or op(A)
/// transposed, read with a_pair = stride, a_row = 1).
void goku_bf16_pack_pairs(uint32_t *dst, int stride, int pairs, const float *src, int ld, int rows, int cols);

/// dst[x * stride + q] = pair(src[2q][x], src[2q + 1][x]) for x < count and q < stride (a multiple of 16; rows of
/// `src` from `rows` on read as zeros): rows of `src` that run across the reduction, as a pair-contiguous op(A) of the
/// transposed operand (Xᵀ·P with X token-major).
void goku_bf16_pack_pairs_transposed(uint32_t *dst, int stride, int count, const float *src, int ld, int rows);

/// dst[c * ldd + r] += src[r * lds + c] for r < rows and c < cols (16 x 16 blocks transposed in registers on
/// AVX-512F; scalar otherwise).
void goku_transpose_accumulate(const float *src, int rows, int cols, int lds, float *dst, int ldd);

/// C = alpha * op(A) * op(B) (or C += …) over `pairs` packed pairs, Float32 accumulation, on AVX-512 BF16 or AMX.
bool goku_bf16_packed_product(int m, int n, int pairs, const uint32_t *a, int a_pair, int a_row, const uint32_t *b,
                              int b_stride, float alpha, bool accumulate, float *c, int ldc);

/// goku_attention_softmax_tile with the probabilities written as bfloat16 pairs along the keys,
/// packed[i * stride + q] for q < (cols + 1) / 2 and zeros up to that count rounded up to 16 (stride must allow it),
/// instead of back into `tile` (which is left as scratch).
bool goku_attention_softmax_tile_bf16(float *tile, int rows, int cols, float *row_max, float *row_sum, float *acc,
                                      int dh, uint32_t *packed, int stride);

/// goku_attention_probabilities, also writing the probabilities as bfloat16 pairs along the queries,
/// pairs[q * stride + x] = pair(p[2q][x], p[2q + 1][x]) for q < (rows + 1) / 2 and x < cols (a missing row 2q + 1
/// reads as zero; columns up to cols rounded up to 16, and pair rows up to (rows + 1) / 2 rounded up to 16, are
/// zeros): op(B) of dVᵀ += dOᵀ·P.
bool goku_attention_probabilities_bf16(float *p, int rows, int cols, const float *lse, uint32_t *pairs, int stride);

/// dS = p * (dp - delta) per row, written only as bfloat16 pairs: along the keys, ds_rows[i * rows_stride + q] for
/// q < (cols + 1) / 2 (op(A) of dQ += dS·K), and along the queries, ds_pairs[q * pairs_stride + x] for
/// q < (rows + 1) / 2 and x < cols (op(B) of dKᵀ += Qᵀ·dS), both zero-padded as above.
bool goku_attention_score_gradient_bf16(const float *dp, const float *p, int rows, int cols, const float *delta,
                                        uint32_t *ds_rows, int rows_stride, uint32_t *ds_pairs, int pairs_stride);

#endif
