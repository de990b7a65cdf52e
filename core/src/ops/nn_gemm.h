/* Small float32 GEMMs for the conv kernels (core/src/ops/conv.c), summed
 * over kernel taps:
 *
 *   c (m x n) = sum over t < taps of a_t (m x k) * b_t (k x n)
 *
 * all row-major, a_t = a + t * a_tap with row stride lda, b_t = b[t] with
 * row stride ldb, c with row stride ldc (overwritten, never read). A block of
 * c stays in vector registers over every tap and k, so c is written once:
 * the shapes conv issues (m = 16..64 output channels, k = 16..64 input
 * channels, n = a few hundred pixels, 9 taps) run well below what OpenBLAS's
 * small-matrix path reaches with one accumulating call per tap.
 *
 * Output mapping (nn_gemm_out, NULL = plain c): bias[i] is added to row i,
 * and column j of the product goes to column (j / wq) * ow + j % wq of c, or
 * nowhere when j % wq >= ow. Conv's GEMM columns are output rows of wq
 * pixels of which the first ow are real: the mapping writes them compacted
 * straight into y, with the bias, and never touches the other columns.
 *
 * Kernels: AVX-512F (8 x 32 register blocks) and AVX2 + FMA (4 x 16), picked
 * at first use from the CPU's features; a plain loop everywhere else and as
 * the reference twin for tests. The SIMD kernels use fused multiply-add and
 * another summation order, so results differ from the reference by rounding
 * only. Reads b only inside [0, n) of each row (masked loads at the edge).
 * Thread-safe; allocates nothing. Not part of the public API. */
#ifndef PARE_OPS_NN_GEMM_H
#define PARE_OPS_NN_GEMM_H

#include <stdint.h>

enum nn_gemm_isa {
    NN_GEMM_AUTO,   /* the best kernel this CPU runs */
    NN_GEMM_REF,    /* plain loops */
    NN_GEMM_AVX2,   /* AVX2 + FMA */
    NN_GEMM_AVX512  /* AVX-512F */
};

typedef struct nn_gemm_out {
    int64_t wq, ow;     /* columns per group and kept leading columns; wq = ow: dense */
    const float *bias;  /* m values, or NULL */
} nn_gemm_out;

/* c = sum_t a_t * b_t (+ bias, mapped by out, NULL: plain) as above with the
 * best kernel for this CPU. m, n, k, taps >= 0; nothing happens when m or n
 * is 0 (c is the bias or 0 when k or taps is 0). */
void nn_gemm_taps(int64_t m, int64_t n, int64_t k, int64_t taps, const float *a, int64_t lda,
                  int64_t a_tap, const float *const *b, int64_t ldb, float *c, int64_t ldc,
                  const nn_gemm_out *out);

/* The same with a chosen kernel, for tests; returns 0 (and does nothing)
 * when this CPU or build cannot run it. */
int nn_gemm_taps_isa(enum nn_gemm_isa isa, int64_t m, int64_t n, int64_t k, int64_t taps,
                     const float *a, int64_t lda, int64_t a_tap, const float *const *b,
                     int64_t ldb, float *c, int64_t ldc, const nn_gemm_out *out);

#endif
