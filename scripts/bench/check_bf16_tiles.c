// Checks and times the attention kernel's bfloat16 tile products (Sources/CKernels/bf16_product.c) on this CPU:
// the AMX path (where the CPU has AMX-BF16) and the AVX-512 BF16 path, each against a Float64 product of the same
// bfloat16-rounded operands, for every transposition, with and without accumulation, at awkward sizes and at the
// fused attention's tile shapes; then the same for the products on operands packed once (goku_bf16_packed_product,
// the layouts of the bf16 attention kernel). The AMX path is opt-in in the engine (GOKU_ATTENTION_AMX=1) until this check has
// passed on an AMX machine; the check turns it on itself. A host without the Swift toolchain can run it; the XCTest
// suite covers the path the test machine's CPU takes.
//
//   gcc -O2 -I Sources/CKernels/include scripts/bench/check_bf16_tiles.c Sources/CKernels/bf16_product.c
//       -lm -o check_bf16_tiles && ./check_bf16_tiles
#include "CKernels.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static float round_bf16(float x) {
    uint32_t v;
    memcpy(&v, &x, 4);
    v = ((v + 0x7fffu + ((v >> 16) & 1u)) >> 16) << 16;
    memcpy(&x, &v, 4);
    return x;
}

static unsigned long long state = 88172645463325252ull;
static float uniform(void) {
    state ^= state << 13, state ^= state >> 7, state ^= state << 17;
    return (float)((state >> 11) * (1.0 / 9007199254740992.0)) * 2 - 1;
}

/// Worst |c - ref| / (Σ|a||b| + 1e-6) over C = alpha op(A) op(B) (+ c0), against Float64 products of the rounded
/// operands; 1 when a column past n was written.
static double worst_error(int ta, int tb, int m, int n, int k, float alpha, const float *a, int lda, const float *b,
                          int ldb, int accumulate, const float *c, const float *c0, int ldc) {
    double worst = 0;
    for (int i = 0; i < m; i++) {
        for (int j = 0; j < n; j++) {
            double s = 0, mag = 0;
            for (int p = 0; p < k; p++) {
                double x = round_bf16(ta ? a[p * lda + i] : a[i * lda + p]);
                double y = round_bf16(tb ? b[j * ldb + p] : b[p * ldb + j]);
                s += x * y;
                mag += fabs(x * y);
            }
            double ref = alpha * s + (accumulate ? c0[i * ldc + j] : 0);
            double e = fabs(c[i * ldc + j] - ref) / (fabs(alpha) * mag + 1e-6);
            if (e > worst) worst = e;
        }
        if (ldc > n && c[i * ldc + n] != c0[i * ldc + n]) return 1;
    }
    return worst;
}

/// The product on unpacked operands (goku_bf16_product), for C (+)= alpha op(A) op(B).
static double check(int path, int ta, int tb, int m, int n, int k, int accumulate) {
    int lda = ta ? m + 3 : k + 5, ldb = tb ? k + 1 : n + 7, ldc = n + 2;
    float *a = malloc(sizeof(float) * (size_t)(ta ? k : m) * lda), *b = malloc(sizeof(float) * (size_t)(tb ? n : k) * ldb);
    float *c = malloc(sizeof(float) * (size_t)m * ldc), *c0 = malloc(sizeof(float) * (size_t)m * ldc);
    for (int i = 0; i < (ta ? k : m) * lda; i++) a[i] = uniform();
    for (int i = 0; i < (tb ? n : k) * ldb; i++) b[i] = uniform();
    for (int i = 0; i < m * ldc; i++) c[i] = c0[i] = uniform();
    float alpha = 0.37f;
    goku_bf16_use_amx(path);
    if (!goku_bf16_product(ta, tb, m, n, k, alpha, a, lda, b, ldb, accumulate, c, ldc)) return -1;
    double worst = worst_error(ta, tb, m, n, k, alpha, a, lda, b, ldb, accumulate, c, c0, ldc);
    free(a), free(b), free(c), free(c0);
    return worst;
}

/// The same for goku_bf16_packed_product on operands from the packers, in the bf16 attention's layouts: op(A) as rows
/// (goku_bf16_pack_rows) or as transposed pairs (goku_bf16_pack_pairs_transposed), op(B) as columns
/// (goku_bf16_pack_columns) or as pairs (goku_bf16_pack_pairs), pair counts padded to 16 with zeros.
static double check_packed(int path, int ta, int tb, int m, int n, int k, int accumulate) {
    int pairs = (k + 1) / 2, pk = (pairs + 15) / 16 * 16, m16 = (m + 15) / 16 * 16, n32 = (n + 31) / 32 * 32;
    int lda = ta ? m + 3 : k + 5, ldb = tb ? k + 1 : n + 7, ldc = n + 2;
    float *a = malloc(sizeof(float) * (size_t)(ta ? k : m) * lda), *b = malloc(sizeof(float) * (size_t)(tb ? n : k) * ldb);
    float *c = malloc(sizeof(float) * (size_t)m * ldc), *c0 = malloc(sizeof(float) * (size_t)m * ldc);
    uint32_t *pa = calloc((size_t)m16 * pk + 16, 4), *pb = calloc((size_t)pk * n32 + 16, 4);
    for (int i = 0; i < (ta ? k : m) * lda; i++) a[i] = uniform();
    for (int i = 0; i < (tb ? n : k) * ldb; i++) b[i] = uniform();
    for (int i = 0; i < m * ldc; i++) c[i] = c0[i] = uniform();
    float alpha = 0.37f;
    goku_bf16_use_amx(path);
    // op(A) = a (m x k, rows along k) or aᵀ (a is k x m); op(B) = bᵀ (b is n x k) or b (k x n).
    if (ta) goku_bf16_pack_pairs_transposed(pa, pk, m, a, lda, k);
    else goku_bf16_pack_rows(pa, pk, m, m16, a, lda, k);
    if (tb) goku_bf16_pack_columns(pb, n32, pairs, b, ldb, n, k);
    else goku_bf16_pack_pairs(pb, n32, pairs, b, ldb, k, n);
    if (!goku_bf16_packed_product(m, n, pairs, pa, 1, pk, pb, n32, alpha, accumulate, c, ldc)) return -1;
    double worst = worst_error(ta, tb, m, n, k, alpha, a, lda, b, ldb, accumulate, c, c0, ldc);
    free(a), free(b), free(c), free(c0), free(pa), free(pb);
    return worst;
}

static double seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/// GFLOP/s of one thread on a tile product.
static double rate(int path, int ta, int tb, int m, int n, int k) {
    float *a = calloc((size_t)m * k, 4), *b = calloc((size_t)k * n, 4), *c = calloc((size_t)m * n, 4);
    for (int i = 0; i < m * k; i++) a[i] = uniform();
    for (int i = 0; i < k * n; i++) b[i] = uniform();
    goku_bf16_use_amx(path);
    int reps = 0;
    double t0 = seconds(), t;
    do {
        for (int r = 0; r < 50; r++)
            goku_bf16_product(ta, tb, m, n, k, 1, a, ta ? m : k, b, tb ? k : n, 1, c, n);
        reps += 50;
        t = seconds() - t0;
    } while (t < 0.5);
    free(a), free(b), free(c);
    return 2.0 * m * n * k * reps / t / 1e9;
}

/// GFLOP/s of one thread on a product of operands packed beforehand (as the bf16 attention kernel multiplies).
static double rate_packed(int path, int m, int n, int k) {
    int pairs = (k + 1) / 2, pk = (pairs + 15) / 16 * 16, m16 = (m + 15) / 16 * 16, n32 = (n + 31) / 32 * 32;
    float *a = calloc((size_t)m * k, 4), *b = calloc((size_t)k * n, 4), *c = calloc((size_t)m * n, 4);
    uint32_t *pa = calloc((size_t)m16 * pk, 4), *pb = calloc((size_t)pk * n32, 4);
    for (int i = 0; i < m * k; i++) a[i] = uniform();
    for (int i = 0; i < k * n; i++) b[i] = uniform();
    goku_bf16_pack_rows(pa, pk, m, m16, a, k, k);
    goku_bf16_pack_pairs(pb, n32, pairs, b, n, k, n);
    goku_bf16_use_amx(path);
    int reps = 0;
    double t0 = seconds(), t;
    do {
        for (int r = 0; r < 50; r++) goku_bf16_packed_product(m, n, pairs, pa, 1, pk, pb, n32, 1, 1, c, n);
        reps += 50;
        t = seconds() - t0;
    } while (t < 0.5);
    free(a), free(b), free(c), free(pa), free(pb);
    return 2.0 * m * n * k * reps / t / 1e9;
}

int main(void) {
    if (!goku_bf16_dot_available()) {
        printf("no AVX-512 BF16 on this CPU: nothing to check\n");
        return 0;
    }
    goku_bf16_use_amx(1);
    int amx = goku_bf16_amx_active();
    printf("AMX tiles: %s\n", amx ? "available" : "not available (AVX-512 BF16 path only)");
    int sizes[][3] = {{1, 1, 1}, {37, 29, 70}, {16, 16, 32}, {33, 17, 31}, {128, 256, 72}, {128, 72, 256}, {70, 45, 3}};
    int failures = 0;
    for (int path = amx; path >= 0; path--) {
        double worst = 0;
        for (unsigned s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
            for (int ta = 0; ta < 2; ta++)
                for (int tb = 0; tb < 2; tb++)
                    for (int acc = 0; acc < 2; acc++) {
                        double e = check(path, ta, tb, sizes[s][0], sizes[s][1], sizes[s][2], acc);
                        if (e < 0 || e > 1e-4) {
                            printf("FAIL %s m %d n %d k %d transA %d transB %d accumulate %d: error %g\n",
                                   path ? "amx" : "avx512-bf16", sizes[s][0], sizes[s][1], sizes[s][2], ta, tb, acc, e);
                            failures++;
                        }
                        if (e > worst) worst = e;
                    }
        printf("%s: worst relative error %.2e over %zu cases\n", path ? "amx" : "avx512-bf16", worst,
               sizeof sizes / sizeof sizes[0] * 8);
        worst = 0;
        for (unsigned s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
            for (int ta = 0; ta < 2; ta++)
                for (int tb = 0; tb < 2; tb++)
                    for (int acc = 0; acc < 2; acc++) {
                        double e = check_packed(path, ta, tb, sizes[s][0], sizes[s][1], sizes[s][2], acc);
                        if (e < 0 || e > 1e-4) {
                            printf("FAIL packed %s m %d n %d k %d transA %d transB %d accumulate %d: error %g\n",
                                   path ? "amx" : "avx512-bf16", sizes[s][0], sizes[s][1], sizes[s][2], ta, tb, acc, e);
                            failures++;
                        }
                        if (e > worst) worst = e;
                    }
        printf("%s, packed operands: worst relative error %.2e over %zu cases\n", path ? "amx" : "avx512-bf16", worst,
               sizeof sizes / sizeof sizes[0] * 8);
    }
    // The fused attention's tiles (query block 128, key block 256, head width 72): S = Q·Kᵀ, O += P·V, and the
    // backward's dV += Pᵀ·dO.
    int shapes[][5] = {{0, 1, 128, 256, 72}, {0, 0, 128, 72, 256}, {1, 0, 256, 72, 128}};
    const char *names[] = {"Q·Kᵀ 128×256×72", "P·V 128×72×256", "Pᵀ·dO 256×72×128"};
    for (int s = 0; s < 3; s++) {
        double slow = rate(0, shapes[s][0], shapes[s][1], shapes[s][2], shapes[s][3], shapes[s][4]);
        if (amx) {
            double fast = rate(1, shapes[s][0], shapes[s][1], shapes[s][2], shapes[s][3], shapes[s][4]);
            printf("%s, 1 thread: amx %.1f GFLOP/s, avx512-bf16 %.1f GFLOP/s, amx %.2fx\n", names[s], fast, slow, fast / slow);
        } else {
            printf("%s, 1 thread: avx512-bf16 %.1f GFLOP/s\n", names[s], slow);
        }
    }
    // Packed beforehand: S = Q·Kᵀ and dP (128×256×72), O += P·V and dQ (128×72×256), dVᵀ and dKᵀ (72×256×128).
    int packed[][3] = {{128, 256, 72}, {128, 72, 256}, {72, 256, 128}};
    for (int s = 0; s < 3; s++) {
        double slow = rate_packed(0, packed[s][0], packed[s][1], packed[s][2]);
        if (amx) {
            double fast = rate_packed(1, packed[s][0], packed[s][1], packed[s][2]);
            printf("packed %d×%d×%d, 1 thread: amx %.1f GFLOP/s, avx512-bf16 %.1f GFLOP/s, amx %.2fx\n", packed[s][0],
                   packed[s][1], packed[s][2], fast, slow, fast / slow);
        } else {
            printf("packed %d×%d×%d, 1 thread: avx512-bf16 %.1f GFLOP/s\n", packed[s][0], packed[s][1], packed[s][2], slow);
        }
    }
    printf(failures ? "FAILED: %d cases\n" : "all cases within 1e-4\n", failures);
    return failures != 0;
}
