/* Private helpers shared by the conv, gemm, pool and norm kernels
 * (core/src/ops/{conv,gemm,pool,norm}.c):
 *
 * - input/output checks and dtype errors with the node as location;
 * - nn_window: the spatial geometry of a Conv or pool node (kernel, strides,
 *   dilations, pads after auto_pad, output size), always held as 3 spatial
 *   dims with unused leading dims set to 1, so one kernel serves 1-D, 2-D and
 *   3-D inputs.
 *
 * Nothing here allocates. Not part of the public API. */
#ifndef PARE_OPS_NN_UTIL_H
#define PARE_OPS_NN_UTIL_H

#include <stdint.h>

#include "pare/op.h"
#include "pare/tensor.h"

/* Hot loops get an AVX2 clone picked at load time (gcc function
 * multiversioning); the default build targets baseline x86-64. No FMA
 * contraction in ISO C mode, so both clones give the same results. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && !defined(__AVX2__) && \
    !defined(PARE_NO_CLONES)
#define NN_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define NN_CLONES
#endif

/* Element count above which cheap per-element loops use OpenMP. */
#define NN_PAR_THRESHOLD 32768

/* Threads for `work` units of cheap work. */
static inline int nn_threads(const pare_op_ctx *ctx, int64_t work)
{
    return work > NN_PAR_THRESHOLD && ctx->n_threads > 1 ? ctx->n_threads : 1;
}

/* The node has between min and max inputs (max < 0: any) and the first min
 * are present; PARE_EINPUT otherwise. */
pare_status nn_check_inputs(pare_op_ctx *ctx, int min, int max);
/* out[0] exists; PARE_EINPUT otherwise. */
pare_status nn_check_output(pare_op_ctx *ctx);
/* Input i is present (not omitted) and has this dtype; a different dtype is
 * PARE_EINPUT "input 'W' has dtype 'int64', expected 'float32'". */
pare_status nn_check_same_dtype(pare_op_ctx *ctx, int i, const char *what, pare_dtype want);
/* PARE_EUNSUPPORTED "<what>: dtype 'float64' not supported". */
pare_status nn_bad_dtype(pare_op_ctx *ctx, const char *what, pare_dtype dtype);
void nn_set_shape(pare_tensor *t, pare_dtype dtype, int ndim, const int64_t *dims);

/* ---- spatial windows (Conv, ConvTranspose, pools) ---- */

#define NN_MAX_SPATIAL 3

typedef struct nn_window {
    int nsp;                          /* spatial dims of the node, 1..3 */
    /* Index 0..2 = (D, H, W); for nsp < 3 the leading entries are 1 / 0. */
    int64_t in[NN_MAX_SPATIAL];
    int64_t out[NN_MAX_SPATIAL];
    int64_t k[NN_MAX_SPATIAL];
    int64_t s[NN_MAX_SPATIAL];
    int64_t d[NN_MAX_SPATIAL];
    int64_t pb[NN_MAX_SPATIAL];       /* pad at the beginning */
    int64_t pe[NN_MAX_SPATIAL];       /* pad at the end */
} nn_window;

enum nn_window_flags {
    NN_WIN_CEIL = 1u << 0,      /* ceil_mode output size (pools) */
};

/* Fills w for a Conv or pool over x (N, C, spatial...) with the given kernel
 * (nsp values) from the node's strides, dilations, pads and auto_pad
 * attributes; computes the output size (ceil_mode with NN_WIN_CEIL, the last
 * window dropped when it would start in the end padding, as PyTorch and ONNX
 * Runtime do). PARE_EINPUT for bad attributes or an empty output;
 * PARE_EUNSUPPORTED for more than 3 spatial dims. */
pare_status nn_window_init(pare_op_ctx *ctx, const pare_tensor *x, const int64_t *kernel,
                           unsigned flags, nn_window *w);

/* Output pixels per image / kernel taps per channel. */
static inline int64_t nn_window_out_numel(const nn_window *w) { return w->out[0] * w->out[1] * w->out[2]; }
static inline int64_t nn_window_in_numel(const nn_window *w) { return w->in[0] * w->in[1] * w->in[2]; }
static inline int64_t nn_window_k_numel(const nn_window *w) { return w->k[0] * w->k[1] * w->k[2]; }

/* Reads an INTS attribute of exactly n values into out (default def for
 * every entry when absent). PARE_EINPUT when the length differs or, with
 * positive, a value is < 1. */
pare_status nn_attr_ints(pare_op_ctx *ctx, const char *name, int n, int64_t def, int positive,
                         int64_t *out);

/* Range [lo, hi) of output positions o in [0, n_out) for which
 * o * s - pb + off lies in [0, n_in). */
static inline void nn_valid_range(int64_t n_out, int64_t n_in, int64_t s, int64_t pb, int64_t off,
                                  int64_t *lo, int64_t *hi)
{
    int64_t start = pb - off; /* need o * s >= start */
    int64_t a = start <= 0 ? 0 : (start + s - 1) / s;
    int64_t end = n_in + pb - off; /* need o * s < end */
    int64_t b = end <= 0 ? 0 : (end + s - 1) / s;
    if (a > n_out)
        a = n_out;
    if (b > n_out)
        b = n_out;
    if (b < a)
        b = a;
    *lo = a;
    *hi = b;
}

#endif
