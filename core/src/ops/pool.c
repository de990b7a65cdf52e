/* MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool; 1-D, 2-D, 3-D.
 *
 * x (N, C, *in) -> y (N, C, *out), one plane per (n, c), planes in parallel.
 * float32 1-D / 2-D pools without Indices use row kernels (per kernel tap one
 * vectorizable max / add pass over an output row). The generic kernel (3-D,
 * other dtypes, Indices) clips each window's taps to the input once per dim
 * (k_lo..k_hi), so its tap loops carry no bounds tests.
 * MaxPool: float32, float64, int8, uint8 (opset 12); the optional Indices
 * output holds flat indices into x (row-major, or column-major within each
 * plane with storage_order = 1 for 1-D and 2-D). Padding never wins a max.
 * AveragePool: float32, float64; count_include_pad counts the taps that fall
 * in the explicit padding but not those past it (the ceil_mode overhang), as
 * PyTorch and ONNX Runtime do.
 * Backward (float32): MaxPool routes dY to the window's first maximum,
 * AveragePool spreads it with the forward's divisor, GlobalMaxPool to the
 * plane's first maximum. */
#include <float.h>
#include <stdint.h>
#include <string.h>

#include "ops/families.h"
#include "ops/nn_util.h"

typedef struct pool_geom {
    nn_window w;
    int64_t planes;          /* N * C */
    int64_t in_px, out_px;
    int count_include_pad;
    int storage_order;
    int64_t *indices;        /* MaxPool Indices output, or NULL */
} pool_geom;

/* Taps k in [0, k) with 0 <= start + k * d < n, as [*lo, *hi). */
static inline void tap_range(int64_t start, int64_t k, int64_t d, int64_t n, int64_t *lo,
                             int64_t *hi)
{
    int64_t a, b;
    if (d == 1) {
        a = start < 0 ? -start : 0;
        b = n - start;
    } else {
        a = start < 0 ? (-start + d - 1) / d : 0;
        b = n - start <= 0 ? 0 : (n - start + d - 1) / d;
    }
    if (b > k)
        b = k;
    if (a > b)
        a = b;
    *lo = a;
    *hi = b;
}

static pare_status pool_geom_init(pare_op_ctx *ctx, int is_max, pool_geom *g)
{
    const pare_tensor *x;
    int64_t kernel[NN_MAX_SPATIAL];
    int n_k = 0, nsp;
    const int64_t *ks = pare_node_attr_ints(ctx->node, "kernel_shape", &n_k);
    unsigned flags = 0;
    pare_status rc = nn_check_inputs(ctx, 1, 1);

    if (rc == PARE_OK)
        rc = nn_check_output(ctx);
    if (rc != PARE_OK)
        return rc;
    x = ctx->in[0];
    memset(g, 0, sizeof *g);
    nsp = x->ndim - 2;
    if (nsp < 1)
        return pare_op_fail(ctx, PARE_EINPUT, "input must have rank 3 or more (N, C, spatial...), "
                            "got rank %d", x->ndim);
    if (nsp > NN_MAX_SPATIAL)
        return pare_op_fail(ctx, PARE_EUNSUPPORTED, "%d spatial dims not supported (at most %d)",
                            nsp, NN_MAX_SPATIAL);
    if (!ks)
        return pare_op_fail(ctx, PARE_EINPUT, "attribute 'kernel_shape' is required");
    if (n_k != nsp)
        return pare_op_fail(ctx, PARE_EINPUT, "attribute 'kernel_shape' has %d values for %d "
                            "spatial dims", n_k, nsp);
    for (int i = 0; i < nsp; i++)
        kernel[i] = ks[i];
    if (pare_node_attr_int(ctx->node, "ceil_mode", 0))
        flags |= NN_WIN_CEIL;
    rc = nn_window_init(ctx, x, kernel, flags, &g->w);
    if (rc != PARE_OK)
        return rc;
    g->planes = x->dims[0] * x->dims[1];
    g->in_px = nn_window_in_numel(&g->w);
    g->out_px = nn_window_out_numel(&g->w);
    g->count_include_pad = pare_node_attr_int(ctx->node, "count_include_pad", 0) != 0;
    g->storage_order = (int)pare_node_attr_int(ctx->node, "storage_order", 0);
    if (is_max) {
        if (g->storage_order != 0 && g->storage_order != 1)
            return pare_op_fail(ctx, PARE_EINPUT, "attribute 'storage_order' is %d, expected 0 "
                                "or 1", g->storage_order);
        if (ctx->n_out > 1 && ctx->out[1] && g->storage_order == 1 && nsp > 2)
            return pare_op_fail(ctx, PARE_EUNSUPPORTED,
                                "Indices with storage_order 1 on 3-D input not supported");
    }
    return PARE_OK;
}

static pare_status pool_infer_common(pare_op_ctx *ctx, int is_max)
{
    pool_geom g;
    const pare_tensor *x;
    int64_t dims[PARE_MAX_DIMS];
    pare_status rc = pool_geom_init(ctx, is_max, &g);

    if (rc != PARE_OK)
        return rc;
    x = ctx->in[0];
    if (is_max) {
        if (x->dtype != PARE_F32 && x->dtype != PARE_F64 &&
            !(ctx->opset >= 12 && (x->dtype == PARE_U8 || x->dtype == PARE_I8)))
            return nn_bad_dtype(ctx, "MaxPool", x->dtype);
    } else if (x->dtype != PARE_F32 && x->dtype != PARE_F64) {
        return nn_bad_dtype(ctx, "AveragePool", x->dtype);
    }
    dims[0] = x->dims[0];
    dims[1] = x->dims[1];
    for (int i = 0; i < g.w.nsp; i++)
        dims[2 + i] = g.w.out[NN_MAX_SPATIAL - g.w.nsp + i];
    nn_set_shape(ctx->out[0], x->dtype, x->ndim, dims);
    if (ctx->n_out > 1 && ctx->out[1]) {
        if (!is_max)
            return pare_op_fail(ctx, PARE_EINPUT, "AveragePool has one output");
        nn_set_shape(ctx->out[1], PARE_I64, x->ndim, dims);
    }
    return PARE_OK;
}

static pare_status maxpool_infer(pare_op_ctx *ctx)
{
    return pool_infer_common(ctx, 1);
}

static pare_status avgpool_infer(pare_op_ctx *ctx)
{
    return pool_infer_common(ctx, 0);
}

/* Flat index of input tap (id, ih, iw) in plane p. */
static inline int64_t max_index(const pool_geom *g, int64_t p, int64_t id, int64_t ih, int64_t iw)
{
    const nn_window *w = &g->w;
    if (g->storage_order == 1) /* column-major within the plane (1-D / 2-D only) */
        return p * g->in_px + iw * w->in[1] + ih;
    return p * g->in_px + (id * w->in[1] + ih) * w->in[2] + iw;
}

#define MAXPOOL_IMPL(T, NAME, LOWEST)                                                      \
    static void NAME(const pool_geom *g, const T *restrict x, T *restrict y, int nt)       \
    {                                                                                      \
        const nn_window *w = &g->w;                                                        \
        _Pragma("omp parallel for num_threads(nt) schedule(static)")                       \
        for (int64_t p = 0; p < g->planes; p++) {                                          \
            const T *xp = x + p * g->in_px;                                                \
            T *yp = y + p * g->out_px;                                                     \
            int64_t *ip = g->indices ? g->indices + p * g->out_px : NULL;                  \
            int64_t o = 0;                                                                 \
            for (int64_t od = 0; od < w->out[0]; od++) {                                   \
                int64_t sd = od * w->s[0] - w->pb[0], d_lo, d_hi;                          \
                tap_range(sd, w->k[0], w->d[0], w->in[0], &d_lo, &d_hi);                   \
                for (int64_t oh = 0; oh < w->out[1]; oh++) {                               \
                    int64_t sh = oh * w->s[1] - w->pb[1], h_lo, h_hi;                      \
                    tap_range(sh, w->k[1], w->d[1], w->in[1], &h_lo, &h_hi);               \
                    for (int64_t ow = 0; ow < w->out[2]; ow++, o++) {                      \
                        int64_t sw = ow * w->s[2] - w->pb[2], w_lo, w_hi;                  \
                        int64_t bd = -1, bh = -1, bw = -1;                                 \
                        T best = LOWEST;                                                   \
                        tap_range(sw, w->k[2], w->d[2], w->in[2], &w_lo, &w_hi);           \
                        for (int64_t kd = d_lo; kd < d_hi; kd++) {                         \
                            int64_t id = sd + kd * w->d[0];                                \
                            for (int64_t kh = h_lo; kh < h_hi; kh++) {                     \
                                int64_t ih = sh + kh * w->d[1];                            \
                                const T *xr = xp + (id * w->in[1] + ih) * w->in[2];        \
                                for (int64_t kw = w_lo; kw < w_hi; kw++) {                 \
                                    T v = xr[sw + kw * w->d[2]];                           \
                                    if (v > best || bd < 0) {                              \
                                        best = v;                                          \
                                        bd = id;                                           \
                                        bh = ih;                                           \
                                        bw = sw + kw * w->d[2];                            \
                                    }                                                      \
                                }                                                          \
                            }                                                              \
                        }                                                                  \
                        yp[o] = best;                                                      \
                        if (ip)                                                            \
                            ip[o] = bd < 0 ? -1 : max_index(g, p, bd, bh, bw);             \
                    }                                                                      \
                }                                                                          \
            }                                                                              \
        }                                                                                  \
    }

MAXPOOL_IMPL(float, maxpool_f32, -FLT_MAX)
MAXPOOL_IMPL(double, maxpool_f64, -DBL_MAX)
MAXPOOL_IMPL(uint8_t, maxpool_u8, 0)
MAXPOOL_IMPL(int8_t, maxpool_i8, INT8_MIN)

static inline int64_t padded_taps(int64_t start, int64_t k, int64_t d, int64_t n, int64_t pb,
                                  int64_t pe);

/* ---- 2-D / 1-D float32 fast path ----
 * Per output row: the row starts at -FLT_MAX (or 0), then for each valid
 * kernel row and column one pass over the output positions that tap reaches,
 * y[ow] = max(y[ow], x[ow * sw + off]) (or +=): contiguous or constant-stride
 * loops that vectorize. Averages are then divided by per-position counts. */

#define POOL_FAST_MAX_KW 64
#define POOL_FAST_MAX_OW 4096

static int pool_fast_ok(const pool_geom *g, const pare_tensor *x)
{
    const nn_window *w = &g->w;
    return x->dtype == PARE_F32 && !g->indices && w->k[0] == 1 && w->in[0] == 1 &&
           w->out[0] == 1 && w->k[2] <= POOL_FAST_MAX_KW && w->out[2] <= POOL_FAST_MAX_OW;
}

static NN_CLONES void row_max(float *restrict y, const float *restrict x, int64_t n, int64_t s)
{
    if (s == 1)
        for (int64_t i = 0; i < n; i++)
            y[i] = x[i] > y[i] ? x[i] : y[i];
    else if (s == 2)
        for (int64_t i = 0; i < n; i++)
            y[i] = x[2 * i] > y[i] ? x[2 * i] : y[i];
    else
        for (int64_t i = 0; i < n; i++)
            y[i] = x[i * s] > y[i] ? x[i * s] : y[i];
}

static NN_CLONES void row_add(float *restrict y, const float *restrict x, int64_t n, int64_t s)
{
    if (s == 1)
        for (int64_t i = 0; i < n; i++)
            y[i] += x[i];
    else if (s == 2)
        for (int64_t i = 0; i < n; i++)
            y[i] += x[2 * i];
    else
        for (int64_t i = 0; i < n; i++)
            y[i] += x[i * s];
}

static void pool2d_f32(const pool_geom *g, const float *x, float *y, int is_max, int nt)
{
    const nn_window *w = &g->w;
    int64_t kw_n = w->k[2], OW = w->out[2];
    int64_t a[POOL_FAST_MAX_KW], e[POOL_FAST_MAX_KW];
    float wcount[POOL_FAST_MAX_OW];

    for (int64_t kw = 0; kw < kw_n; kw++)
        nn_valid_range(OW, w->in[2], w->s[2], w->pb[2], kw * w->d[2], &a[kw], &e[kw]);
    if (!is_max)
        for (int64_t ow = 0; ow < OW; ow++) {
            int64_t sw = ow * w->s[2] - w->pb[2], lo, hi;
            if (g->count_include_pad)
                wcount[ow] = (float)padded_taps(sw, kw_n, w->d[2], w->in[2], w->pb[2], w->pe[2]);
            else {
                tap_range(sw, kw_n, w->d[2], w->in[2], &lo, &hi);
                wcount[ow] = (float)(hi - lo);
            }
        }
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
    for (int64_t p = 0; p < g->planes; p++) {
        const float *xp = x + p * g->in_px;
        float *yp = y + p * g->out_px;
        for (int64_t oh = 0; oh < w->out[1]; oh++) {
            int64_t sh = oh * w->s[1] - w->pb[1], h_lo, h_hi;
            float *restrict yr = yp + oh * OW;
            tap_range(sh, w->k[1], w->d[1], w->in[1], &h_lo, &h_hi);
            for (int64_t ow = 0; ow < OW; ow++)
                yr[ow] = is_max ? -FLT_MAX : 0.0f;
            for (int64_t kh = h_lo; kh < h_hi; kh++) {
                const float *xr = xp + (sh + kh * w->d[1]) * w->in[2];
                for (int64_t kw = 0; kw < kw_n; kw++) {
                    int64_t off = kw * w->d[2] - w->pb[2];
                    if (e[kw] <= a[kw])
                        continue;
                    /* a * s + off >= 0 by the valid range */
                    if (is_max)
                        row_max(yr + a[kw], xr + a[kw] * w->s[2] + off, e[kw] - a[kw], w->s[2]);
                    else
                        row_add(yr + a[kw], xr + a[kw] * w->s[2] + off, e[kw] - a[kw], w->s[2]);
                }
            }
            if (!is_max) {
                float hc = g->count_include_pad
                               ? (float)padded_taps(sh, w->k[1], w->d[1], w->in[1], w->pb[1],
                                                    w->pe[1])
                               : (float)(h_hi - h_lo);
                for (int64_t ow = 0; ow < OW; ow++) {
                    float c = hc * wcount[ow];
                    yr[ow] = c > 0.0f ? yr[ow] / c : 0.0f;
                }
            }
        }
    }
}

/* 2x2 windows, stride 2, no padding or dilation, every window whole: the
 * pooling after most CNN stages. One pass per output row instead of the
 * generic path's five short passes. Same comparisons in the same order as
 * the generic path, so results (NaN included) are identical. */
static int pool_2x2_ok(const pool_geom *g)
{
    const nn_window *w = &g->w;
    return w->k[0] == 1 && w->in[0] == 1 && w->out[0] == 1 && w->k[1] == 2 && w->k[2] == 2 &&
           w->s[1] == 2 && w->s[2] == 2 && w->d[1] == 1 && w->d[2] == 1 && w->pb[1] == 0 &&
           w->pb[2] == 0 && 2 * w->out[1] <= w->in[1] && 2 * w->out[2] <= w->in[2];
}

static NN_CLONES void maxpool_2x2_f32(const pool_geom *g, const float *x, float *y, int nt)
{
    const nn_window *w = &g->w;
    int64_t OH = w->out[1], OW = w->out[2], W = w->in[2];

#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
    for (int64_t p = 0; p < g->planes; p++) {
        for (int64_t oh = 0; oh < OH; oh++) {
            const float *restrict r0 = x + p * g->in_px + 2 * oh * W;
            const float *restrict r1 = r0 + W;
            float *restrict yr = y + p * g->out_px + oh * OW;
            for (int64_t ow = 0; ow < OW; ow++) {
                float b = -FLT_MAX, v;
                v = r0[2 * ow];
                b = v > b ? v : b;
                v = r0[2 * ow + 1];
                b = v > b ? v : b;
                v = r1[2 * ow];
                b = v > b ? v : b;
                v = r1[2 * ow + 1];
                b = v > b ? v : b;
                yr[ow] = b;
            }
        }
    }
}

static pare_status maxpool_forward(pare_op_ctx *ctx)
{
    pool_geom g;
    const pare_tensor *x;
    pare_status rc = pool_geom_init(ctx, 1, &g);
    int nt;

    if (rc != PARE_OK)
        return rc;
    x = ctx->in[0];
    g.indices = ctx->n_out > 1 && ctx->out[1] ? ctx->out[1]->data : NULL;
    nt = g.planes > 1 ? nn_threads(ctx, g.planes * g.out_px * nn_window_k_numel(&g.w)) : 1;
    if (pool_fast_ok(&g, x) && pool_2x2_ok(&g)) {
        maxpool_2x2_f32(&g, x->data, ctx->out[0]->data, nt);
        return PARE_OK;
    }
    if (pool_fast_ok(&g, x)) {
        pool2d_f32(&g, x->data, ctx->out[0]->data, 1, nt);
        return PARE_OK;
    }
    switch (x->dtype) {
    case PARE_F32:
        maxpool_f32(&g, x->data, ctx->out[0]->data, nt);
        break;
    case PARE_F64:
        maxpool_f64(&g, x->data, ctx->out[0]->data, nt);
        break;
    case PARE_U8:
        maxpool_u8(&g, x->data, ctx->out[0]->data, nt);
        break;
    case PARE_I8:
        maxpool_i8(&g, x->data, ctx->out[0]->data, nt);
        break;
    default:
        return nn_bad_dtype(ctx, "MaxPool", x->dtype);
    }
    return PARE_OK;
}

/* Taps of a window inside [-pb, n + pe): the count_include_pad divisor. */
static inline int64_t padded_taps(int64_t start, int64_t k, int64_t d, int64_t n, int64_t pb,
                                  int64_t pe)
{
    int64_t lo, hi;
    tap_range(start + pb, k, d, n + pb + pe, &lo, &hi);
    return hi - lo;
}

#define AVGPOOL_IMPL(T, NAME)                                                              \
    static void NAME(const pool_geom *g, const T *restrict x, T *restrict y, int nt)       \
    {                                                                                      \
        const nn_window *w = &g->w;                                                        \
        _Pragma("omp parallel for num_threads(nt) schedule(static)")                       \
        for (int64_t p = 0; p < g->planes; p++) {                                          \
            const T *xp = x + p * g->in_px;                                                \
            T *yp = y + p * g->out_px;                                                     \
            int64_t o = 0;                                                                 \
            for (int64_t od = 0; od < w->out[0]; od++) {                                   \
                int64_t sd = od * w->s[0] - w->pb[0], d_lo, d_hi;                          \
                int64_t pd = padded_taps(sd, w->k[0], w->d[0], w->in[0], w->pb[0], w->pe[0]); \
                tap_range(sd, w->k[0], w->d[0], w->in[0], &d_lo, &d_hi);                   \
                for (int64_t oh = 0; oh < w->out[1]; oh++) {                               \
                    int64_t sh = oh * w->s[1] - w->pb[1], h_lo, h_hi;                      \
                    int64_t ph = padded_taps(sh, w->k[1], w->d[1], w->in[1], w->pb[1],     \
                                             w->pe[1]);                                    \
                    tap_range(sh, w->k[1], w->d[1], w->in[1], &h_lo, &h_hi);               \
                    for (int64_t ow = 0; ow < w->out[2]; ow++, o++) {                      \
                        int64_t sw = ow * w->s[2] - w->pb[2], w_lo, w_hi, count;           \
                        T sum = 0;                                                         \
                        tap_range(sw, w->k[2], w->d[2], w->in[2], &w_lo, &w_hi);           \
                        for (int64_t kd = d_lo; kd < d_hi; kd++) {                         \
                            int64_t id = sd + kd * w->d[0];                                \
                            for (int64_t kh = h_lo; kh < h_hi; kh++) {                     \
                                int64_t ih = sh + kh * w->d[1];                            \
                                const T *xr = xp + (id * w->in[1] + ih) * w->in[2];        \
                                for (int64_t kw = w_lo; kw < w_hi; kw++)                   \
                                    sum += xr[sw + kw * w->d[2]];                          \
                            }                                                              \
                        }                                                                  \
                        if (g->count_include_pad)                                          \
                            count = pd * ph * padded_taps(sw, w->k[2], w->d[2], w->in[2],  \
                                                          w->pb[2], w->pe[2]);             \
                        else                                                               \
                            count = (d_hi - d_lo) * (h_hi - h_lo) * (w_hi - w_lo);         \
                        yp[o] = count > 0 ? sum / (T)count : (T)0;                         \
                    }                                                                      \
                }                                                                          \
            }                                                                              \
        }                                                                                  \
    }

AVGPOOL_IMPL(float, avgpool_f32)
AVGPOOL_IMPL(double, avgpool_f64)

static pare_status avgpool_forward(pare_op_ctx *ctx)
{
    pool_geom g;
    const pare_tensor *x;
    pare_status rc = pool_geom_init(ctx, 0, &g);
    int nt;

    if (rc != PARE_OK)
        return rc;
    x = ctx->in[0];
    nt = g.planes > 1 ? nn_threads(ctx, g.planes * g.out_px * nn_window_k_numel(&g.w)) : 1;
    if (pool_fast_ok(&g, x))
        pool2d_f32(&g, x->data, ctx->out[0]->data, 0, nt);
    else if (x->dtype == PARE_F32)
        avgpool_f32(&g, x->data, ctx->out[0]->data, nt);
    else if (x->dtype == PARE_F64)
        avgpool_f64(&g, x->data, ctx->out[0]->data, nt);
    else
        return nn_bad_dtype(ctx, "AveragePool", x->dtype);
    return PARE_OK;
}


/* ---- backward (float32) ----
 * MaxPool routes each dY to its window's first maximum (the forward's
 * argmax, padding never wins); AveragePool spreads dY / count over the
 * window's in-bounds taps with the forward's divisor. Planes are
 * independent, so they run in parallel. */
/* 2x2 stride-2 MaxPool without padding (LeNet's): dY to the first maximum of
 * each window, in the generic loop's order (row by row, left to right). */
NN_CLONES static void maxpool2x2_backward_plane(const float *restrict x, const float *restrict dy,
                                                float *restrict dx, int64_t in_w, int64_t oh_n,
                                                int64_t ow_n)
{
    for (int64_t oh = 0; oh < oh_n; oh++)
        for (int64_t ow = 0; ow < ow_n; ow++) {
            int64_t i = 2 * oh * in_w + 2 * ow, best_i = i;
            float best = x[i];
            if (x[i + 1] > best)
                best = x[best_i = i + 1];
            if (x[i + in_w] > best)
                best = x[best_i = i + in_w];
            if (x[i + in_w + 1] > best)
                best_i = i + in_w + 1;
            dx[best_i] += dy[oh * ow_n + ow];
        }
}

static bool maxpool2x2_ok(const nn_window *w)
{
    return w->in[0] == 1 && w->k[0] == 1 && w->k[1] == 2 && w->k[2] == 2 && w->s[1] == 2 &&
           w->s[2] == 2 && w->d[1] == 1 && w->d[2] == 1 && !w->pb[1] && !w->pb[2] &&
           !w->pe[1] && !w->pe[2] && w->out[1] * 2 <= w->in[1] && w->out[2] * 2 <= w->in[2];
}

static pare_status pool_backward_common(pare_op_ctx *ctx, int is_max)
{
    pool_geom g;
    pare_status rc = pool_geom_init(ctx, is_max, &g);
    const nn_window *w;
    const float *x, *dy;
    float *dx;
    int nt;

    if (rc != PARE_OK)
        return rc;
    if (!ctx->din || !ctx->din[0])
        return PARE_OK;
    if (ctx->in[0]->dtype != PARE_F32)
        return nn_bad_dtype(ctx, is_max ? "MaxPool backward" : "AveragePool backward",
                            ctx->in[0]->dtype);
    dx = pare_tensor_f32(ctx->din[0]);
    memset(dx, 0, pare_tensor_nbytes(ctx->din[0]));
    if (!ctx->dout || !ctx->dout[0])
        return PARE_OK;
    w = &g.w;
    x = pare_tensor_f32(ctx->in[0]);
    dy = pare_tensor_f32(ctx->dout[0]);
    nt = g.planes > 1 ? nn_threads(ctx, g.planes * g.out_px * nn_window_k_numel(w)) : 1;
    if (is_max && maxpool2x2_ok(w)) {
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
        for (int64_t p = 0; p < g.planes; p++)
            maxpool2x2_backward_plane(x + p * g.in_px, dy + p * g.out_px, dx + p * g.in_px,
                                      w->in[2], w->out[1], w->out[2]);
        return PARE_OK;
    }
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
    for (int64_t p = 0; p < g.planes; p++) {
        const float *xp = x + p * g.in_px;
        const float *dyp = dy + p * g.out_px;
        float *dxp = dx + p * g.in_px;
        int64_t o = 0;
        for (int64_t od = 0; od < w->out[0]; od++) {
            int64_t sd = od * w->s[0] - w->pb[0], d_lo, d_hi, pd;
            tap_range(sd, w->k[0], w->d[0], w->in[0], &d_lo, &d_hi);
            pd = padded_taps(sd, w->k[0], w->d[0], w->in[0], w->pb[0], w->pe[0]);
            for (int64_t oh = 0; oh < w->out[1]; oh++) {
                int64_t sh = oh * w->s[1] - w->pb[1], h_lo, h_hi, ph;
                tap_range(sh, w->k[1], w->d[1], w->in[1], &h_lo, &h_hi);
                ph = padded_taps(sh, w->k[1], w->d[1], w->in[1], w->pb[1], w->pe[1]);
                for (int64_t ow = 0; ow < w->out[2]; ow++, o++) {
                    int64_t sw = ow * w->s[2] - w->pb[2], w_lo, w_hi, count, best_i = -1;
                    float best = -FLT_MAX, gv = dyp[o];
                    tap_range(sw, w->k[2], w->d[2], w->in[2], &w_lo, &w_hi);
                    if (is_max) {
                        for (int64_t kd = d_lo; kd < d_hi; kd++)
                            for (int64_t kh = h_lo; kh < h_hi; kh++) {
                                int64_t row = ((sd + kd * w->d[0]) * w->in[1] +
                                               sh + kh * w->d[1]) * w->in[2];
                                for (int64_t kw = w_lo; kw < w_hi; kw++) {
                                    int64_t i = row + sw + kw * w->d[2];
                                    if (xp[i] > best || best_i < 0) {
                                        best = xp[i];
                                        best_i = i;
                                    }
                                }
                            }
                        if (best_i >= 0)
                            dxp[best_i] += gv;
                        continue;
                    }
                    if (g.count_include_pad)
                        count = pd * ph * padded_taps(sw, w->k[2], w->d[2], w->in[2], w->pb[2],
                                                      w->pe[2]);
                    else
                        count = (d_hi - d_lo) * (h_hi - h_lo) * (w_hi - w_lo);
                    if (count <= 0)
                        continue;
                    gv /= (float)count;
                    for (int64_t kd = d_lo; kd < d_hi; kd++)
                        for (int64_t kh = h_lo; kh < h_hi; kh++) {
                            int64_t row = ((sd + kd * w->d[0]) * w->in[1] + sh + kh * w->d[1]) *
                                          w->in[2];
                            for (int64_t kw = w_lo; kw < w_hi; kw++)
                                dxp[row + sw + kw * w->d[2]] += gv;
                        }
                }
            }
        }
    }
    return PARE_OK;
}

static pare_status maxpool_backward(pare_op_ctx *ctx)
{
    return pool_backward_common(ctx, 1);
}

static pare_status avgpool_backward(pare_op_ctx *ctx)
{
    return pool_backward_common(ctx, 0);
}

static double pool_flops(const pare_op_ctx *ctx)
{
    int n = 0;
    const int64_t *ks = pare_node_attr_ints(ctx->node, "kernel_shape", &n);
    double taps = 1.0;

    if (!ctx->out[0])
        return 0.0;
    for (int i = 0; i < n; i++)
        taps *= (double)ks[i];
    return (double)pare_tensor_numel(ctx->out[0]) * taps;
}

/* ---- global pools ---- */

static pare_status global_infer(pare_op_ctx *ctx)
{
    const pare_tensor *x;
    int64_t dims[PARE_MAX_DIMS];
    pare_status rc = nn_check_inputs(ctx, 1, 1);

    if (rc == PARE_OK)
        rc = nn_check_output(ctx);
    if (rc != PARE_OK)
        return rc;
    x = ctx->in[0];
    if (x->dtype != PARE_F32 && x->dtype != PARE_F64)
        return nn_bad_dtype(ctx, ctx->node->op_type, x->dtype);
    if (x->ndim < 3)
        return pare_op_fail(ctx, PARE_EINPUT, "input must have rank 3 or more (N, C, spatial...), "
                            "got rank %d", x->ndim);
    for (int d = 0; d < x->ndim; d++)
        dims[d] = d < 2 ? x->dims[d] : 1;
    if (pare_shape_numel(x->ndim - 2, x->dims + 2) == 0)
        return pare_op_fail(ctx, PARE_EINPUT, "input has an empty spatial dim");
    nn_set_shape(ctx->out[0], x->dtype, x->ndim, dims);
    return PARE_OK;
}

#define GLOBAL_IMPL(T, NAME, IS_MAX)                                                       \
    static void NAME(int64_t planes, int64_t px, const T *restrict x, T *restrict y, int nt) \
    {                                                                                      \
        _Pragma("omp parallel for num_threads(nt) schedule(static)")                       \
        for (int64_t p = 0; p < planes; p++) {                                             \
            const T *restrict xp = x + p * px;                                             \
            T acc[8];                                                                      \
            T r;                                                                           \
            int64_t i = 0;                                                                 \
            for (int l = 0; l < 8; l++)                                                    \
                acc[l] = IS_MAX ? xp[0] : (T)0;                                            \
            for (; i + 8 <= px; i += 8)                                                    \
                for (int l = 0; l < 8; l++)                                                \
                    acc[l] = IS_MAX ? (xp[i + l] > acc[l] ? xp[i + l] : acc[l])            \
                                    : acc[l] + xp[i + l];                                  \
            r = acc[0];                                                                    \
            for (int l = 1; l < 8; l++)                                                    \
                r = IS_MAX ? (acc[l] > r ? acc[l] : r) : r + acc[l];                       \
            for (; i < px; i++)                                                            \
                r = IS_MAX ? (xp[i] > r ? xp[i] : r) : r + xp[i];                          \
            y[p] = IS_MAX ? r : r / (T)px;                                                 \
        }                                                                                  \
    }

GLOBAL_IMPL(float, gavg_f32, 0)
GLOBAL_IMPL(double, gavg_f64, 0)
GLOBAL_IMPL(float, gmax_f32, 1)
GLOBAL_IMPL(double, gmax_f64, 1)

static pare_status global_forward(pare_op_ctx *ctx, int is_max)
{
    const pare_tensor *x = ctx->in[0];
    int64_t planes = x->dims[0] * x->dims[1];
    int64_t px = pare_shape_numel(x->ndim - 2, x->dims + 2);
    int nt = planes > 1 ? nn_threads(ctx, planes * px) : 1;

    if (x->dtype == PARE_F32)
        (is_max ? gmax_f32 : gavg_f32)(planes, px, x->data, ctx->out[0]->data, nt);
    else if (x->dtype == PARE_F64)
        (is_max ? gmax_f64 : gavg_f64)(planes, px, x->data, ctx->out[0]->data, nt);
    else
        return nn_bad_dtype(ctx, ctx->node->op_type, x->dtype);
    return PARE_OK;
}

static pare_status gavg_forward(pare_op_ctx *ctx)
{
    return global_forward(ctx, 0);
}

static pare_status gmax_forward(pare_op_ctx *ctx)
{
    return global_forward(ctx, 1);
}


/* dx = dy / px over each plane (float32). */
static pare_status gavg_backward(pare_op_ctx *ctx)
{
    const pare_tensor *x = ctx->in[0];
    int64_t planes, px;
    float *dx;

    if (!ctx->din || !ctx->din[0])
        return PARE_OK;
    if (x->dtype != PARE_F32)
        return nn_bad_dtype(ctx, "GlobalAveragePool backward", x->dtype);
    planes = x->dims[0] * x->dims[1];
    px = pare_shape_numel(x->ndim - 2, x->dims + 2);
    dx = pare_tensor_f32(ctx->din[0]);
    for (int64_t p = 0; p < planes; p++) {
        float v = ctx->dout && ctx->dout[0] ? pare_tensor_f32(ctx->dout[0])[p] / (float)px : 0.0f;
        for (int64_t i = 0; i < px; i++)
            dx[p * px + i] = v;
    }
    return PARE_OK;
}


/* dx = dy at each plane's first maximum, 0 elsewhere (float32). */
static pare_status gmax_backward(pare_op_ctx *ctx)
{
    const pare_tensor *x = ctx->in[0];
    int64_t planes, px;
    float *dx;

    if (!ctx->din || !ctx->din[0])
        return PARE_OK;
    if (x->dtype != PARE_F32)
        return nn_bad_dtype(ctx, "GlobalMaxPool backward", x->dtype);
    planes = x->dims[0] * x->dims[1];
    px = pare_shape_numel(x->ndim - 2, x->dims + 2);
    dx = pare_tensor_f32(ctx->din[0]);
    memset(dx, 0, pare_tensor_nbytes(ctx->din[0]));
    if (!ctx->dout || !ctx->dout[0])
        return PARE_OK;
    for (int64_t p = 0; p < planes; p++) {
        const float *xp = pare_tensor_f32(x) + p * px;
        int64_t best = 0;
        for (int64_t i = 1; i < px; i++)
            if (xp[i] > xp[best])
                best = i;
        dx[p * px + best] = pare_tensor_f32(ctx->dout[0])[p];
    }
    return PARE_OK;
}

static double global_flops(const pare_op_ctx *ctx)
{
    return ctx->in[0] ? (double)pare_tensor_numel(ctx->in[0]) : 0.0;
}

#define MAXPOOL_ROW(lo, hi, what)                                                         \
    { .domain = "", .op_type = "MaxPool", .since = lo, .until = hi, .infer = maxpool_infer, \
      .forward = maxpool_forward, .backward = maxpool_backward, .flops = pool_flops,       \
      .notes = what }
#define AVGPOOL_ROW(lo, hi, what)                                                         \
    { .domain = "", .op_type = "AveragePool", .since = lo, .until = hi,                    \
      .infer = avgpool_infer, .forward = avgpool_forward, .backward = avgpool_backward,   \
      .flops = pool_flops, .notes = what }

const pare_op_def ops_pool[] = {
    MAXPOOL_ROW(1, 7, "float32, float64"),
    MAXPOOL_ROW(8, 9, "float32, float64; Indices output"),
    MAXPOOL_ROW(10, 10, "float32, float64; Indices output; ceil_mode, dilations"),
    MAXPOOL_ROW(11, 11, "float32, float64; Indices output; ceil_mode, dilations"),
    MAXPOOL_ROW(12, 0, "float32, float64, int8, uint8; Indices output (storage_order 1 up to "
                       "2-D); ceil_mode, dilations; gradient to the first maximum"),
    AVGPOOL_ROW(1, 6, "float32, float64"),
    AVGPOOL_ROW(7, 9, "float32, float64; count_include_pad"),
    AVGPOOL_ROW(10, 10, "float32, float64; count_include_pad, ceil_mode"),
    AVGPOOL_ROW(11, 18, "float32, float64; count_include_pad, ceil_mode"),
    AVGPOOL_ROW(19, 0, "float32, float64; count_include_pad, ceil_mode, dilations"),
    { .domain = "", .op_type = "GlobalAveragePool", .since = 1, .until = 0,
      .infer = global_infer, .forward = gavg_forward,
      .backward = gavg_backward, .flops = global_flops,
      .notes = "float32, float64" },
    { .domain = "", .op_type = "GlobalMaxPool", .since = 1, .until = 0,
      .infer = global_infer, .forward = gmax_forward,
      .backward = gmax_backward, .flops = global_flops,
      .notes = "float32, float64" },
    { .op_type = NULL },
};
