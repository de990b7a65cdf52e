/* Private helpers shared by the element-wise, activation, reduce and quant
 * kernels (core/src/ops/{elementwise,activation,reduce,quant}.c):
 *
 * - bcast_plan: numpy multidirectional broadcasting of up to three inputs to
 *   one output, with adjacent dims collapsed so that the common cases (same
 *   shape, scalar operand, row or channel broadcast) become one contiguous
 *   inner loop per row, with no per-element index arithmetic.
 * - bcast_run: calls a row kernel over every row (in parallel above a size
 *   threshold), giving it row pointers and the inner strides (0 or 1).
 * - vm_*: scalar math written so that loops calling them vectorize
 *   (no libm calls, no branches): exp, erf, tanh; and row sums / maxima
 *   with independent lanes (gcc does not vectorize float reductions without
 *   -ffast-math).
 *
 * Nothing here allocates or fails. Not part of the public API. */
#ifndef PARE_OPS_BROADCAST_H
#define PARE_OPS_BROADCAST_H

#include <stdint.h>
#include <string.h>

#include "pare/op.h"
#include "pare/tensor.h"

#define BCAST_MAX_IN 3
/* Element count above which element-wise loops use OpenMP. */
#define EW_PAR_THRESHOLD 32768

typedef struct bcast_plan {
    int n_in;
    int ndim;                                       /* collapsed rank, >= 1 */
    int64_t dims[PARE_MAX_DIMS];                    /* collapsed output dims */
    int64_t strides[BCAST_MAX_IN][PARE_MAX_DIMS];   /* in elements; 0 = broadcast */
    int64_t inner;                                  /* dims[ndim - 1] */
    int64_t rows;                                   /* numel / inner */
    int64_t numel;
} bcast_plan;

/* Plans the broadcast of n_in (<= BCAST_MAX_IN) input shapes to the output
 * shape, which must be their broadcast (or, for unidirectional broadcasting,
 * a shape each input broadcasts to). */
void bcast_plan_init(bcast_plan *p, int n_in, const int *in_ndim,
                     const int64_t *const *in_dims, int out_ndim, const int64_t *out_dims);
/* Same, reading shapes from tensors. */
void bcast_plan_tensors(bcast_plan *p, int n_in, const pare_tensor *const *in,
                        const pare_tensor *out);
/* Every input has numel elements laid out like the output. */
void bcast_plan_flat(bcast_plan *p, int n_in, int64_t numel);

/* Row kernel: n elements; in[k] points at input k's first element of the row,
 * s[k] is its inner stride (0 or 1); out at the row's first output element.
 * arg is the caller's constant data (attributes). */
typedef void (*bcast_row_fn)(const void *arg, int64_t n, const void *const *in,
                             const int64_t *s, void *out);

/* Runs fn over the whole output. esz = element sizes of inputs and output.
 * n_threads > 1 splits the rows (or, for few rows, blocks of a row). */
void bcast_run(const bcast_plan *p, bcast_row_fn fn, const void *arg,
               const void *const *in, const size_t *in_esz, void *out, size_t out_esz,
               int n_threads);

/* Backward of a broadcast: din (in_ndim, in_dims) = g (out_ndim, out_dims)
 * summed over the dims where the input was broadcast, so a broadcast input
 * gets its gradient in its own shape. OVERWRITES din; when the two shapes
 * hold the same number of elements this is a copy (g == din is allowed then,
 * otherwise they must not overlap). The input shape must broadcast to the
 * output shape. float32. */
void bcast_reduce_grad(const float *g, int out_ndim, const int64_t *out_dims, float *din,
                       int in_ndim, const int64_t *in_dims);

/* Threads to use for `work` elements of cheap element-wise work. */
static inline int ew_threads(const pare_op_ctx *ctx, int64_t work) { return work > EW_PAR_THRESHOLD && ctx->n_threads > 1 ? ctx->n_threads : 1; }

/* ---- small helpers for infer ---- */

/* Checks that the node has between min and max inputs (max < 0: no limit)
 * and that the first `min` are present; fails with PARE_EINPUT. */
pare_status ew_check_inputs(pare_op_ctx *ctx, int min, int max);
/* out[0] must exist: PARE_EINPUT otherwise. */
pare_status ew_check_output(pare_op_ctx *ctx);
void ew_set_shape(pare_tensor *t, pare_dtype dtype, int ndim, const int64_t *dims);
/* PARE_EUNSUPPORTED "dtype 'float16' not supported" (prefixed by what). */
pare_status ew_bad_dtype(pare_op_ctx *ctx, const char *what, pare_dtype dtype);
/* Normalizes axis in [-rank, rank) (or [-rank, rank] when `inclusive`) to
 * [0, rank); PARE_EINPUT naming the attribute otherwise. */
pare_status ew_axis(pare_op_ctx *ctx, int64_t axis, int rank, int inclusive, int *out);
/* Broadcast of two shapes with a clear error. */
pare_status ew_broadcast(pare_op_ctx *ctx, int na, const int64_t *a, int nb, const int64_t *b,
                         int *nout, int64_t *out);
/* flops: one per element of out[0] / of in[0]. */
double ew_flops_out(const pare_op_ctx *ctx);
double ew_flops_in(const pare_op_ctx *ctx);

/* Hot row kernels get an AVX2 clone chosen at load time (gcc function
 * multiversioning via ifunc); the default build targets baseline x86-64
 * (SSE2). Elementwise results are identical in both clones (no FMA
 * contraction in ISO C mode, reductions use explicit lanes). The vm_*
 * helpers are always_inline so that they are compiled into each clone. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && !defined(__AVX2__) && \
    !defined(PARE_NO_CLONES)
#define VM_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define VM_CLONES
#endif
#define VM_INLINE static inline __attribute__((always_inline))

/* ---- vectorizable float math ---- */

/* Branch-free select and clamps. Plain ternaries on floats followed by more
 * arithmetic are turned into branches that gcc will not if-convert under
 * -ftrapping-math (the default), so loops calling these would not vectorize. */
VM_INLINE float vm_bits_to_f32(uint32_t u) { float f; memcpy(&f, &u, sizeof f); return f; }
VM_INLINE uint32_t vm_f32_to_bits(float f) { uint32_t u; memcpy(&u, &f, sizeof u); return u; }
VM_INLINE float vm_sel(int cond, float a, float b)
{
    uint32_t m = 0u - (uint32_t)(cond != 0);
    return vm_bits_to_f32((vm_f32_to_bits(a) & m) | (vm_f32_to_bits(b) & ~m));
}
/* lo/hi when x is below/above them; NaN passes through. */
VM_INLINE float vm_clampf(float x, float lo, float hi)
{
    x = vm_sel(x < lo, lo, x);
    return vm_sel(x > hi, hi, x);
}

/* exp(x) within ~2 ulp for x in [-86.6, 88.72]; 0 below (at most 2e-38
 * off), inf above, NaN kept. Cephes polynomial after the reduction
 * x = n ln2 + r, |r| <= ln2 / 2. */
VM_INLINE float vm_expf(float x)
{
    /* Clamp (a NaN becomes the upper bound here and is restored below). */
    float xc = vm_sel(x < 88.72283f, x, 88.72283f);
    xc = vm_sel(xc > -87.0f, xc, -87.0f);
    float n = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = xc - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * (r * r) + r + 1.0f;
    /* 2^n as 2^(n-1) * 2: n is in [-126, 128], so the biased exponent n + 126
     * is in [0, 254]; 0 (x near -87) gives 0. */
    int32_t e = (int32_t)n + 126;
    float y = p * vm_bits_to_f32((uint32_t)e << 23) * 2.0f;
    /* above the range: inf; NaN: NaN */
    return vm_sel(x <= 88.72283f, y, x + __builtin_inff());
}

/* erf(x), rational approximation x P(x^2) / Q(x^2) on [-4, 4] (as in Eigen
 * and XLA), saturating to +-1 beyond; relative error ~1e-7. */
VM_INLINE float vm_erff(float x)
{
    float xc = vm_clampf(x, -4.0f, 4.0f);
    float x2 = xc * xc;
    float p = -2.72614225801306e-10f;
    p = p * x2 + 2.77068142495902e-08f;
    p = p * x2 + -2.10102402082508e-06f;
    p = p * x2 + -5.69250639462346e-05f;
    p = p * x2 + -7.34990630326855e-04f;
    p = p * x2 + -2.95459980854025e-03f;
    p = p * x2 + -1.60960333262415e-02f;
    p = p * xc;
    float q = -1.45660718464996e-05f;
    q = q * x2 + -2.13374055278905e-04f;
    q = q * x2 + -1.68282697438203e-03f;
    q = q * x2 + -7.37332916720468e-03f;
    q = q * x2 + -1.42647390514189e-02f;
    return p / q;
}

/* tanh(x): odd polynomial for |x| < 0.625 (Cephes), else
 * sign(x) (1 - 2 / (exp(2|x|) + 1)). */
VM_INLINE float vm_tanhf(float x)
{
    float ax = vm_bits_to_f32(vm_f32_to_bits(x) & 0x7fffffffu);
    float z = x * x;
    float small = ((((-5.70498872745e-3f * z + 2.06390887954e-2f) * z - 5.37397155531e-2f) * z +
                    1.33314422036e-1f) * z - 3.33332819422e-1f) * z * x + x;
    float e = vm_expf(2.0f * ax);
    float big = 1.0f - 2.0f / (e + 1.0f);
    /* copy the sign of x onto big */
    big = vm_bits_to_f32(vm_f32_to_bits(big) | (vm_f32_to_bits(x) & 0x80000000u));
    return vm_sel(ax < 0.625f, small, big);
}

/* 1 / (1 + exp(-x)). */
VM_INLINE float vm_sigmoidf(float x) { return 1.0f / (1.0f + vm_expf(-x)); }

/* Row sum and maximum of n >= 1 floats with 8 independent lanes, combined as
 * a tree: vectorizes without fast-math. The maximum does not look for NaN
 * (softmax, its user, gets NaN through exp anyway). */
VM_INLINE float vm_sum_f32(const float *x, int64_t n)
{
    float a[8] = {0};
    int64_t i = 0;
    float s;

    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++)
            a[j] += x[i + j];
    s = ((a[0] + a[4]) + (a[1] + a[5])) + ((a[2] + a[6]) + (a[3] + a[7]));
    for (; i < n; i++)
        s += x[i];
    return s;
}

VM_INLINE float vm_max2(float a, float b) { return a > b ? a : b; }

VM_INLINE float vm_max_f32(const float *x, int64_t n)
{
    float m;
    int64_t i;

    if (n < 8) {
        m = x[0];
        for (i = 1; i < n; i++)
            m = vm_max2(x[i], m);
        return m;
    }
    float a[8];
    for (int j = 0; j < 8; j++)
        a[j] = x[j];
    for (i = 8; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++)
            a[j] = vm_max2(x[i + j], a[j]);
    m = vm_max2(vm_max2(vm_max2(a[0], a[4]), vm_max2(a[1], a[5])),
                vm_max2(vm_max2(a[2], a[6]), vm_max2(a[3], a[7])));
    for (; i < n; i++)
        m = vm_max2(x[i], m);
    return m;
}

/* Rounds half to even for |x| < 2^22 (callers clamp first). */
VM_INLINE float vm_round_even(float x) { return (x + 12582912.0f) - 12582912.0f; }

#endif
