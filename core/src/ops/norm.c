/* BatchNormalization, LayerNormalization, InstanceNormalization; float32.
 *
 * BatchNormalization (inference): per channel a = scale / sqrt(var + eps),
 * b = bias - mean * a, then y = x * a + b over each (n, c) plane. Opset 7-8
 * spatial = 0 takes parameters of shape (C, D1, ...) per element instead.
 * Training mode (opset 14+, training_mode = 1) normalizes with the batch's
 * mean and biased variance and writes running_mean / running_var as
 * input * momentum + batch * (1 - momentum), as ONNX's reference does.
 * The older training outputs (opsets 1-13: mean, var, saved_mean, saved_var)
 * are reported as unsupported. While fine-tuning (ctx->training) every
 * opset normalizes with batch statistics, as training_mode = 1 does; the
 * running statistics go to the opset 14+ outputs when the node has them,
 * else they are updated in place in inputs 3 and 4 (the model's
 * initializers), as PyTorch's BatchNorm does with its buffers.
 * Backward (float32) differentiates whichever statistics forward used.
 * LayerNormalization (17): over dims [axis, rank), optional bias and Mean /
 * InvStdDev outputs. InstanceNormalization: per (n, c) plane.
 * Moments are two-pass (mean, then mean of squared deviations) with eight
 * independent float lanes, so the loops vectorize without fast-math. */
#include <math.h>
#include <string.h>

#include "ops/families.h"
#include "ops/nn_util.h"

/* Mean and biased variance of x[0..n), n > 0. */
static void moments(const float *restrict x, int64_t n, float *mean_out, float *var_out)
{
    float acc[8] = {0}, s = 0.0f, mean, v = 0.0f;
    int64_t i = 0;

    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; l++)
            acc[l] += x[i + l];
    for (int l = 0; l < 8; l++)
        s += acc[l];
    for (; i < n; i++)
        s += x[i];
    mean = s / (float)n;
    for (int l = 0; l < 8; l++)
        acc[l] = 0.0f;
    for (i = 0; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; l++) {
            float d = x[i + l] - mean;
            acc[l] += d * d;
        }
    for (int l = 0; l < 8; l++)
        v += acc[l];
    for (; i < n; i++) {
        float d = x[i] - mean;
        v += d * d;
    }
    *mean_out = mean;
    *var_out = v / (float)n;
}

/* y[i] = x[i] * a + b */
static inline void affine_row(const float *restrict x, int64_t n, float a, float b,
                              float *restrict y)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = x[i] * a + b;
}

/* ---- BatchNormalization ---- */

typedef struct bn_geom {
    int64_t N, C, px;        /* batch, channels, elements per plane */
    int per_element;         /* parameters are (C, spatial...) (opset 7-8 spatial = 0) */
    int training;            /* opset 14+ training_mode = 1 */
    float eps, momentum;
} bn_geom;

static pare_status bn_geom_init(pare_op_ctx *ctx, bn_geom *g)
{
    const pare_tensor *x;
    const char *names[5] = {"X", "scale", "B", "input_mean", "input_var"};
    int64_t pn;
    pare_status rc = nn_check_inputs(ctx, 5, 5);

    if (rc == PARE_OK)
        rc = nn_check_output(ctx);
    if (rc != PARE_OK)
        return rc;
    x = ctx->in[0];
    memset(g, 0, sizeof *g);
    if (x->dtype != PARE_F32)
        return nn_bad_dtype(ctx, "BatchNormalization", x->dtype);
    if (x->ndim < 2)
        return pare_op_fail(ctx, PARE_EINPUT, "input 'X' must have rank 2 or more (N, C, ...), "
                            "got %d", x->ndim);
    g->N = x->dims[0];
    g->C = x->dims[1];
    g->px = pare_shape_numel(x->ndim - 2, x->dims + 2);
    g->eps = pare_node_attr_float(ctx->node, "epsilon", 1e-5f);
    g->momentum = pare_node_attr_float(ctx->node, "momentum", 0.9f);
    g->per_element = ctx->opset < 9 && pare_node_attr_int(ctx->node, "spatial", 1) == 0;
    g->training = (ctx->opset >= 14 && pare_node_attr_int(ctx->node, "training_mode", 0) != 0) ||
                  ctx->training;
    if (g->eps < 0.0f)
        return pare_op_fail(ctx, PARE_EINPUT, "attribute 'epsilon' is negative");
    pn = g->per_element ? g->C * g->px : g->C;
    for (int i = 1; i < 5; i++) {
        const pare_tensor *t = ctx->in[i];
        if (t->dtype != PARE_F32)
            return pare_op_fail(ctx, PARE_EINPUT, "input '%s' has dtype '%s', expected 'float32'",
                                names[i], pare_dtype_name(t->dtype));
        if (pare_tensor_numel(t) != pn || (!g->per_element && t->ndim != 1))
            return pare_op_fail(ctx, PARE_EINPUT, "input '%s' must have %lld elements (%s)",
                                names[i], (long long)pn,
                                g->per_element ? "C x spatial" : "one per channel");
    }
    if (ctx->opset < 14) {
        for (int i = 1; i < ctx->n_out; i++)
            if (ctx->out[i])
                return pare_op_fail(ctx, PARE_EUNSUPPORTED,
                                    "training outputs (mean, var, saved_mean, saved_var) before "
                                    "opset 14 not supported");
    } else if (ctx->n_out > 3) {
        return pare_op_fail(ctx, PARE_EINPUT, "expects at most 3 outputs, got %d", ctx->n_out);
    }
    if (g->training && g->per_element)
        return pare_op_fail(ctx, PARE_EUNSUPPORTED, "training with spatial = 0 not supported");
    if (g->training && g->N * g->px == 0)
        return pare_op_fail(ctx, PARE_EINPUT, "training mode needs a non-empty batch");
    return PARE_OK;
}

static pare_status bn_infer(pare_op_ctx *ctx)
{
    bn_geom g;
    pare_status rc = bn_geom_init(ctx, &g);

    if (rc != PARE_OK)
        return rc;
    nn_set_shape(ctx->out[0], PARE_F32, ctx->in[0]->ndim, ctx->in[0]->dims);
    for (int i = 1; i < ctx->n_out; i++)
        if (ctx->out[i])
            nn_set_shape(ctx->out[i], PARE_F32, 1, &g.C);
    ctx->scratch_bytes = (size_t)(2 * (g.per_element ? g.C * g.px : g.C)) * sizeof(float);
    return PARE_OK;
}

/* Sums over one plane in 16 float lanes combined in double: the loops
 * vectorize, and the summation order (so the result) is fixed whatever the
 * thread count. */
#define BN_LANES 16
NN_CLONES static double sum_lanes(const float *restrict x, int64_t n)
{
    float acc[BN_LANES] = {0};
    double s = 0.0;
    int64_t i = 0;

    for (; i + BN_LANES <= n; i += BN_LANES)
        for (int l = 0; l < BN_LANES; l++)
            acc[l] += x[i + l];
    for (int l = 0; l < BN_LANES; l++)
        s += acc[l];
    for (; i < n; i++)
        s += x[i];
    return s;
}

/* sum (x - m)^2, or sum w (x - m) when w is non-NULL */
NN_CLONES static double sum_dev_lanes(const float *restrict x, const float *restrict w, int64_t n, float m)
{
    float acc[BN_LANES] = {0};
    double s = 0.0;
    int64_t i = 0;

    if (w) {
        for (; i + BN_LANES <= n; i += BN_LANES)
            for (int l = 0; l < BN_LANES; l++)
                acc[l] += w[i + l] * (x[i + l] - m);
        for (; i < n; i++)
            s += (double)w[i] * (double)(x[i] - m);
    } else {
        for (; i + BN_LANES <= n; i += BN_LANES)
            for (int l = 0; l < BN_LANES; l++) {
                float d = x[i + l] - m;
                acc[l] += d * d;
            }
        for (; i < n; i++) {
            double d = (double)x[i] - m;
            s += d * d;
        }
    }
    for (int l = 0; l < BN_LANES; l++)
        s += acc[l];
    return s;
}

/* dx = A dy + B (x - m) + C over one plane (dy NULL: zero) */
NN_CLONES static void bn_dx_plane(const float *restrict x, const float *restrict dy, int64_t n,
                                  float m, float A, float B, float C, float *restrict dx)
{
    if (dy)
        for (int64_t i = 0; i < n; i++)
            dx[i] = A * dy[i] + B * (x[i] - m) + C;
    else
        for (int64_t i = 0; i < n; i++)
            dx[i] = B * (x[i] - m) + C;
}

/* Batch mean and biased variance per channel (two passes). */
static void bn_batch_stats(const bn_geom *g, const float *x, float *mean, float *var, int nt)
{
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t c = 0; c < g->C; c++) {
        double s = 0.0, ss = 0.0;
        int64_t count = g->N * g->px;
        float m;
        for (int64_t n = 0; n < g->N; n++)
            s += sum_lanes(x + (n * g->C + c) * g->px, g->px);
        m = (float)(s / (double)count);
        for (int64_t n = 0; n < g->N; n++)
            ss += sum_dev_lanes(x + (n * g->C + c) * g->px, NULL, g->px, m);
        mean[c] = m;
        var[c] = (float)(ss / (double)count);
    }
}

static pare_status bn_forward(pare_op_ctx *ctx)
{
    bn_geom g;
    const float *x, *scale, *bias, *mean, *var;
    float *y, *a, *b;
    int64_t pn, planes;
    int nt;
    pare_status rc = bn_geom_init(ctx, &g);

    if (rc != PARE_OK)
        return rc;
    x = pare_tensor_f32(ctx->in[0]);
    scale = pare_tensor_f32(ctx->in[1]);
    bias = pare_tensor_f32(ctx->in[2]);
    mean = pare_tensor_f32(ctx->in[3]);
    var = pare_tensor_f32(ctx->in[4]);
    y = pare_tensor_f32(ctx->out[0]);
    pn = g.per_element ? g.C * g.px : g.C;
    if (ctx->scratch_bytes < (size_t)(2 * pn) * sizeof(float))
        return pare_op_fail(ctx, PARE_EINTERNAL, "batchnorm scratch too small");
    a = ctx->scratch;
    b = a + pn;
    nt = nn_threads(ctx, g.N * g.C * g.px);
    if (g.training) {
        float *rm = ctx->n_out > 1 && ctx->out[1] ? pare_tensor_f32(ctx->out[1]) : NULL;
        float *rv = ctx->n_out > 2 && ctx->out[2] ? pare_tensor_f32(ctx->out[2]) : NULL;
        /* Fine-tuning a model exported for inference: no running-statistics
           outputs, so the statistics are updated in place in the model's
           initializers, with the unbiased batch variance as PyTorch does. */
        bool in_place = ctx->training && !rm && !rv;
        float unbias = g.N * g.px > 1 ? (float)(g.N * g.px) / (float)(g.N * g.px - 1) : 1.0f;
        /* a, b first hold the batch mean and variance */
        bn_batch_stats(&g, x, a, b, g.C > 1 ? nt : 1);
        for (int64_t c = 0; c < g.C; c++) {
            float bm = a[c], bv = b[c];
            if (rm)
                rm[c] = mean[c] * g.momentum + bm * (1.0f - g.momentum);
            if (rv)
                rv[c] = var[c] * g.momentum + bv * (1.0f - g.momentum);
            if (in_place) {
                pare_tensor_f32(ctx->in[3])[c] = mean[c] * g.momentum + bm * (1.0f - g.momentum);
                pare_tensor_f32(ctx->in[4])[c] =
                    var[c] * g.momentum + bv * unbias * (1.0f - g.momentum);
            }
            a[c] = scale[c] / sqrtf(bv + g.eps);
            b[c] = bias[c] - bm * a[c];
        }
    } else {
        for (int64_t i = 0; i < pn; i++) {
            a[i] = scale[i] / sqrtf(var[i] + g.eps);
            b[i] = bias[i] - mean[i] * a[i];
        }
        for (int i = 1; i < ctx->n_out && i < 3; i++)
            if (ctx->out[i])
                memcpy(ctx->out[i]->data, ctx->in[2 + i]->data, (size_t)g.C * sizeof(float));
    }
    planes = g.N * g.C;
    if (g.per_element) {
#pragma omp parallel for num_threads(planes > 1 ? nt : 1) schedule(static)
        for (int64_t p = 0; p < planes; p++) {
            const float *restrict xp = x + p * g.px;
            const float *restrict ap = a + (p % g.C) * g.px, *restrict bp = b + (p % g.C) * g.px;
            float *restrict yp = y + p * g.px;
            for (int64_t i = 0; i < g.px; i++)
                yp[i] = xp[i] * ap[i] + bp[i];
        }
    } else {
#pragma omp parallel for num_threads(planes > 1 ? nt : 1) schedule(static)
        for (int64_t p = 0; p < planes; p++)
            affine_row(x + p * g.px, g.px, a[p % g.C], b[p % g.C], y + p * g.px);
    }
    return PARE_OK;
}


/* Scratch of the backward: per parameter entry mean, inverse std, sum dy,
 * sum dy * xhat. */
static size_t bn_backward_scratch(const pare_op_ctx *ctx)
{
    const pare_tensor *x = ctx->in[0];
    int64_t pn;

    if (!x || x->ndim < 2 || ctx->n_in < 2 || !ctx->in[1])
        return 0;
    pn = pare_tensor_numel(ctx->in[1]);
    return (size_t)(4 * pn) * sizeof(float);
}

/* xhat = (x - mu) * istd with batch statistics (training) or the running
 * ones (inference). dB = sum dy, dscale = sum dy * xhat; training:
 * dx = scale * istd * (dy - mean(dy) - xhat * mean(dy * xhat)) and the
 * running statistics inputs get momentum * the gradient of the running
 * statistics outputs; inference: dx = dy * scale * istd,
 * dmean = -scale * istd * sum dy, dvar = -scale * istd^2 / 2 * sum dy xhat
 * (plus the gradients of the copied statistics outputs). */
static pare_status bn_backward(pare_op_ctx *ctx)
{
    bn_geom g;
    const float *x, *scale, *dy;
    const float *drm, *drv;
    float *mu, *istd, *sdy, *sdx, *dx;
    int64_t pn, m;
    int nt;
    pare_status rc = bn_geom_init(ctx, &g);

    if (rc != PARE_OK)
        return rc;
    pn = g.per_element ? g.C * g.px : g.C;
    /* ctx->scratch holds bn_backward_scratch() bytes by the kernel contract */
    if (!ctx->scratch && pn > 0)
        return pare_op_fail(ctx, PARE_EINTERNAL, "batchnorm backward has no scratch");
    x = pare_tensor_f32(ctx->in[0]);
    scale = pare_tensor_f32(ctx->in[1]);
    mu = ctx->scratch;
    istd = mu + pn;
    sdy = istd + pn;
    sdx = sdy + pn;
    memset(sdy, 0, (size_t)(2 * pn) * sizeof(float));
    nt = g.C > 1 ? nn_threads(ctx, g.N * g.C * g.px) : 1;
    if (g.training) {
        bn_batch_stats(&g, x, mu, istd, nt);
        for (int64_t c = 0; c < pn; c++)
            istd[c] = 1.0f / sqrtf(istd[c] + g.eps);
    } else {
        const float *rm = pare_tensor_f32(ctx->in[3]), *rv = pare_tensor_f32(ctx->in[4]);
        for (int64_t c = 0; c < pn; c++) {
            mu[c] = rm[c];
            istd[c] = 1.0f / sqrtf(rv[c] + g.eps);
        }
    }
    dy = ctx->dout && ctx->dout[0] ? pare_tensor_f32(ctx->dout[0]) : NULL;
    m = g.N * (g.per_element ? 1 : g.px);
    dx = ctx->din[0] ? pare_tensor_f32(ctx->din[0]) : NULL;
    if (!g.per_element) {
        /* per channel, independent: dx = A dy + B (x - mu) + C */
#pragma omp parallel for num_threads(nt) schedule(static)
        for (int64_t c = 0; c < g.C; c++) {
            double a = 0.0, b = 0.0;
            float A, B, C;
            for (int64_t n = 0; dy && n < g.N; n++) {
                const float *xp = x + (n * g.C + c) * g.px, *dyp = dy + (n * g.C + c) * g.px;
                a += sum_lanes(dyp, g.px);
                b += sum_dev_lanes(xp, dyp, g.px, mu[c]);
            }
            sdy[c] = (float)a;
            sdx[c] = (float)b * istd[c];
            if (!dx)
                continue;
            A = scale[c] * istd[c];
            B = g.training ? -A * istd[c] * istd[c] * (float)b / (float)m : 0.0f;
            C = g.training ? -A * (float)a / (float)m : 0.0f;
            for (int64_t n = 0; n < g.N; n++)
                bn_dx_plane(x + (n * g.C + c) * g.px, dy ? dy + (n * g.C + c) * g.px : NULL,
                            g.px, mu[c], A, B, C, dx + (n * g.C + c) * g.px);
        }
    } else {
        /* element i of plane (n, c) uses parameter entry c * px + i */
        if (dy)
            for (int64_t p = 0; p < g.N * g.C; p++) {
                int64_t c = p % g.C;
                const float *xp = x + p * g.px, *dyp = dy + p * g.px;
                for (int64_t i = 0; i < g.px; i++) {
                    int64_t k = c * g.px + i;
                    sdy[k] += dyp[i];
                    sdx[k] += dyp[i] * (xp[i] - mu[k]) * istd[k];
                }
            }
        if (dx)
            for (int64_t p = 0; p < g.N * g.C; p++) {
                int64_t c = p % g.C;
                const float *xp = x + p * g.px;
                for (int64_t i = 0; i < g.px; i++) {
                    int64_t k = c * g.px + i;
                    float gy = dy ? dy[p * g.px + i] : 0.0f;
                    if (g.training) {
                        float xh = (xp[i] - mu[k]) * istd[k];
                        dx[p * g.px + i] = scale[k] * istd[k] *
                                           (gy - sdy[k] / (float)m - xh * sdx[k] / (float)m);
                    } else {
                        dx[p * g.px + i] = gy * scale[k] * istd[k];
                    }
                }
            }
    }
    /* running statistics outputs (opset 14+): training writes
       input * momentum + batch * (1 - momentum), inference copies them */
    drm = ctx->n_out > 1 && ctx->dout && ctx->dout[1] ? pare_tensor_f32(ctx->dout[1]) : NULL;
    drv = ctx->n_out > 2 && ctx->dout && ctx->dout[2] ? pare_tensor_f32(ctx->dout[2]) : NULL;
    if (dx && g.training && (drm || drv))
        for (int64_t p = 0; p < g.N * g.C; p++) {
            int64_t c = p % g.C;
            float a = drm ? (1.0f - g.momentum) * drm[c] / (float)m : 0.0f;
            float b = drv ? 2.0f * (1.0f - g.momentum) * drv[c] / (float)m : 0.0f;
            for (int64_t i = 0; i < g.px; i++)
                dx[p * g.px + i] += a + b * (x[p * g.px + i] - mu[c]);
        }
    for (int64_t k = 0; k < pn; k++) {
        float rmk = drm && k < g.C ? drm[k] : 0.0f, rvk = drv && k < g.C ? drv[k] : 0.0f;
        if (ctx->din[1])
            pare_tensor_f32(ctx->din[1])[k] = sdx[k];
        if (ctx->din[2])
            pare_tensor_f32(ctx->din[2])[k] = sdy[k];
        if (ctx->din[3])
            pare_tensor_f32(ctx->din[3])[k] =
                g.training ? g.momentum * rmk : rmk - scale[k] * istd[k] * sdy[k];
        if (ctx->din[4])
            pare_tensor_f32(ctx->din[4])[k] =
                g.training ? g.momentum * rvk
                           : rvk - 0.5f * scale[k] * istd[k] * istd[k] * sdx[k];
    }
    return PARE_OK;
}

static double bn_flops(const pare_op_ctx *ctx)
{
    /* a multiply and an add per element */
    return ctx->out[0] ? 2.0 * (double)pare_tensor_numel(ctx->out[0]) : 0.0;
}

/* ---- LayerNormalization ---- */

typedef struct ln_geom {
    int axis;
    int64_t rows, cols;
    float eps;
} ln_geom;

/* A parameter (Scale or B) that broadcasts to x's dims [axis, rank) with
 * only 1s before axis. */
static pare_status ln_check_param(pare_op_ctx *ctx, const pare_tensor *p, const char *what,
                                  const ln_geom *g)
{
    const pare_tensor *x = ctx->in[0];
    int shift = x->ndim - p->ndim;

    if (p->dtype != PARE_F32)
        return pare_op_fail(ctx, PARE_EINPUT, "input '%s' has dtype '%s', expected 'float32'", what,
                            pare_dtype_name(p->dtype));
    if (shift < 0)
        return pare_op_fail(ctx, PARE_EINPUT, "input '%s' has rank %d, more than X's %d", what,
                            p->ndim, x->ndim);
    for (int d = 0; d < p->ndim; d++) {
        int xd = d + shift;
        if (p->dims[d] != 1 && p->dims[d] != x->dims[xd])
            return pare_op_fail(ctx, PARE_EINPUT, "input '%s' does not broadcast to X", what);
        if (xd < g->axis && p->dims[d] != 1)
            return pare_op_fail(ctx, PARE_EUNSUPPORTED,
                                "input '%s' varies along dims before axis %d", what, g->axis);
    }
    return PARE_OK;
}

static pare_status ln_geom_init(pare_op_ctx *ctx, ln_geom *g)
{
    const pare_tensor *x;
    int64_t axis = pare_node_attr_int(ctx->node, "axis", -1);
    pare_status rc = nn_check_inputs(ctx, 2, 3);

    if (rc == PARE_OK)
        rc = nn_check_output(ctx);
    if (rc != PARE_OK)
        return rc;
    x = ctx->in[0];
    memset(g, 0, sizeof *g);
    if (x->dtype != PARE_F32)
        return nn_bad_dtype(ctx, "LayerNormalization", x->dtype);
    if (x->ndim < 1)
        return pare_op_fail(ctx, PARE_EINPUT, "input 'X' must have rank 1 or more");
    if (axis < -x->ndim || axis >= x->ndim)
        return pare_op_fail(ctx, PARE_EINPUT, "attribute 'axis' is %lld, out of range for rank %d",
                            (long long)axis, x->ndim);
    g->axis = (int)(axis < 0 ? axis + x->ndim : axis);
    g->rows = pare_shape_numel(g->axis, x->dims);
    g->cols = pare_shape_numel(x->ndim - g->axis, x->dims + g->axis);
    g->eps = pare_node_attr_float(ctx->node, "epsilon", 1e-5f);
    if (pare_node_attr_int(ctx->node, "stash_type", 1) != 1)
        return pare_op_fail(ctx, PARE_EUNSUPPORTED, "stash_type other than float32 not supported");
    rc = ln_check_param(ctx, ctx->in[1], "Scale", g);
    if (rc == PARE_OK && ctx->n_in > 2 && ctx->in[2])
        rc = ln_check_param(ctx, ctx->in[2], "B", g);
    if (rc == PARE_OK && g->cols == 0 && g->rows > 0)
        rc = pare_op_fail(ctx, PARE_EINPUT, "normalized dims are empty");
    return rc;
}

static pare_status ln_infer(pare_op_ctx *ctx)
{
    ln_geom g;
    const pare_tensor *x;
    int64_t dims[PARE_MAX_DIMS];
    pare_status rc = ln_geom_init(ctx, &g);

    if (rc != PARE_OK)
        return rc;
    x = ctx->in[0];
    nn_set_shape(ctx->out[0], PARE_F32, x->ndim, x->dims);
    for (int d = 0; d < x->ndim; d++)
        dims[d] = d < g.axis ? x->dims[d] : 1;
    for (int i = 1; i < ctx->n_out && i < 3; i++)
        if (ctx->out[i])
            nn_set_shape(ctx->out[i], PARE_F32, x->ndim, dims);
    ctx->scratch_bytes = (size_t)(2 * g.cols) * sizeof(float);
    return PARE_OK;
}

/* Expands parameter p (broadcasting to the normalized dims) into cols floats. */
static void ln_expand(const pare_tensor *x, int axis, const pare_tensor *p, float *out)
{
    int nd = x->ndim - axis;
    int64_t idx[PARE_MAX_DIMS] = {0}, strides[PARE_MAX_DIMS];
    int64_t cols = pare_shape_numel(nd, x->dims + axis), st = 1;
    const float *pd = pare_tensor_f32(p);

    for (int d = nd - 1; d >= 0; d--) {
        int pdim = p->ndim - (nd - d);
        int64_t size = pdim >= 0 ? p->dims[pdim] : 1;
        strides[d] = size == 1 ? 0 : st;
        st *= size;
    }
    for (int64_t i = 0; i < cols; i++) {
        int64_t off = 0;
        for (int d = 0; d < nd; d++)
            off += idx[d] * strides[d];
        out[i] = pd[off];
        for (int d = nd - 1; d >= 0; d--) {
            if (++idx[d] < x->dims[axis + d])
                break;
            idx[d] = 0;
        }
    }
}

static pare_status ln_forward(pare_op_ctx *ctx)
{
    ln_geom g;
    const float *x, *scale, *bias;
    float *y, *mean_out, *inv_out, *sbuf;
    const pare_tensor *bt;
    pare_status rc = ln_geom_init(ctx, &g);
    int nt;

    if (rc != PARE_OK)
        return rc;
    if (ctx->scratch_bytes < (size_t)(2 * g.cols) * sizeof(float))
        return pare_op_fail(ctx, PARE_EINTERNAL, "layernorm scratch too small");
    x = pare_tensor_f32(ctx->in[0]);
    y = pare_tensor_f32(ctx->out[0]);
    mean_out = ctx->n_out > 1 && ctx->out[1] ? pare_tensor_f32(ctx->out[1]) : NULL;
    inv_out = ctx->n_out > 2 && ctx->out[2] ? pare_tensor_f32(ctx->out[2]) : NULL;
    bt = ctx->n_in > 2 ? ctx->in[2] : NULL;
    sbuf = ctx->scratch;
    if (pare_tensor_numel(ctx->in[1]) == g.cols) {
        scale = pare_tensor_f32(ctx->in[1]);
    } else {
        ln_expand(ctx->in[0], g.axis, ctx->in[1], sbuf);
        scale = sbuf;
    }
    if (!bt) {
        bias = NULL;
    } else if (pare_tensor_numel(bt) == g.cols) {
        bias = pare_tensor_f32(bt);
    } else {
        ln_expand(ctx->in[0], g.axis, bt, sbuf + g.cols);
        bias = sbuf + g.cols;
    }
    nt = g.rows > 1 ? nn_threads(ctx, g.rows * g.cols) : 1;
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t r = 0; r < g.rows; r++) {
        const float *restrict xr = x + r * g.cols;
        float *restrict yr = y + r * g.cols;
        float mean, var, inv;
        moments(xr, g.cols, &mean, &var);
        inv = 1.0f / sqrtf(var + g.eps);
        if (bias)
            for (int64_t i = 0; i < g.cols; i++)
                yr[i] = (xr[i] - mean) * inv * scale[i] + bias[i];
        else
            for (int64_t i = 0; i < g.cols; i++)
                yr[i] = (xr[i] - mean) * inv * scale[i];
        if (mean_out)
            mean_out[r] = mean;
        if (inv_out)
            inv_out[r] = inv;
    }
    return PARE_OK;
}


/* Sums full (cols values over the normalized dims) into p's shape: the
 * adjoint of ln_expand. */
static void ln_reduce(const pare_tensor *x, int axis, const pare_tensor *p, const float *full,
                      float *out)
{
    int nd = x->ndim - axis;
    int64_t idx[PARE_MAX_DIMS] = {0}, strides[PARE_MAX_DIMS];
    int64_t cols = pare_shape_numel(nd, x->dims + axis), st = 1;

    memset(out, 0, pare_tensor_nbytes(p));
    for (int d = nd - 1; d >= 0; d--) {
        int pdim = p->ndim - (nd - d);
        int64_t size = pdim >= 0 ? p->dims[pdim] : 1;
        strides[d] = size == 1 ? 0 : st;
        st *= size;
    }
    for (int64_t i = 0; i < cols; i++) {
        int64_t off = 0;
        for (int d = 0; d < nd; d++)
            off += idx[d] * strides[d];
        out[off] += full[i];
        for (int d = nd - 1; d >= 0; d--) {
            if (++idx[d] < x->dims[axis + d])
                break;
            idx[d] = 0;
        }
    }
}

/* Gradient terms of row r's Mean and InvStdDev outputs (0 without one). */
static inline float dmean_r(const float *dmo, int64_t r, int64_t cols)
{
    return dmo ? dmo[r] / (float)cols : 0.0f;
}

static inline float dinv_r(const float *dio, int64_t r, int64_t cols)
{
    return dio ? dio[r] / (float)cols : 0.0f;
}

static size_t ln_backward_scratch(const pare_op_ctx *ctx)
{
    const pare_tensor *x = ctx->in[0];
    int64_t axis = pare_node_attr_int(ctx->node, "axis", -1);

    if (!x || x->ndim < 1 || axis < -x->ndim || axis >= x->ndim)
        return 0;
    if (axis < 0)
        axis += x->ndim;
    return (size_t)(3 * pare_shape_numel(x->ndim - (int)axis, x->dims + axis)) * sizeof(float);
}

/* Per row: xhat = (x - mean) * inv, g = dy * scale,
 * dx = inv * (g - mean(g) - xhat * mean(g * xhat)); dScale and dB sum
 * dy * xhat and dy over the rows, then over Scale's / B's broadcast dims.
 * The Mean and InvStdDev outputs add dMean / cols and
 * -dInv * inv^2 * xhat / cols. */
static pare_status ln_backward(pare_op_ctx *ctx)
{
    ln_geom g;
    const float *x, *scale, *dy, *dmo, *dio;
    float *sbuf, *dsf, *dbf, *dx;
    pare_status rc = ln_geom_init(ctx, &g);

    if (rc != PARE_OK)
        return rc;
    /* ctx->scratch holds ln_backward_scratch() bytes by the kernel contract */
    if (!ctx->scratch && g.cols > 0)
        return pare_op_fail(ctx, PARE_EINTERNAL, "layernorm backward has no scratch");
    sbuf = ctx->scratch;
    dsf = sbuf + g.cols;
    dbf = dsf + g.cols;
    memset(dsf, 0, (size_t)(2 * g.cols) * sizeof(float));
    x = pare_tensor_f32(ctx->in[0]);
    if (pare_tensor_numel(ctx->in[1]) == g.cols) {
        scale = pare_tensor_f32(ctx->in[1]);
    } else {
        ln_expand(ctx->in[0], g.axis, ctx->in[1], sbuf);
        scale = sbuf;
    }
    dy = ctx->dout && ctx->dout[0] ? pare_tensor_f32(ctx->dout[0]) : NULL;
    dmo = ctx->n_out > 1 && ctx->dout && ctx->dout[1] ? pare_tensor_f32(ctx->dout[1]) : NULL;
    dio = ctx->n_out > 2 && ctx->dout && ctx->dout[2] ? pare_tensor_f32(ctx->dout[2]) : NULL;
    dx = ctx->din[0] ? pare_tensor_f32(ctx->din[0]) : NULL;
    for (int64_t r = 0; r < g.rows; r++) {
        const float *xr = x + r * g.cols;
        float mean, var, inv;
        double sg = 0.0, sgx = 0.0;
        if (!dy && !dmo && !dio) {
            if (dx)
                memset(dx + r * g.cols, 0, (size_t)g.cols * sizeof(float));
            continue;
        }
        moments(xr, g.cols, &mean, &var);
        inv = 1.0f / sqrtf(var + g.eps);
        for (int64_t i = 0; i < g.cols; i++) {
            float xh = (xr[i] - mean) * inv, gy = dy ? dy[r * g.cols + i] : 0.0f;
            sg += gy * scale[i];
            sgx += gy * scale[i] * xh;
            dsf[i] += gy * xh;
            dbf[i] += gy;
        }
        if (dx)
            for (int64_t i = 0; i < g.cols; i++) {
                float xh = (xr[i] - mean) * inv;
                dx[r * g.cols + i] = inv * ((dy ? dy[r * g.cols + i] : 0.0f) * scale[i] -
                                            (float)(sg / (double)g.cols) -
                                            xh * (float)(sgx / (double)g.cols)) +
                                     dmean_r(dmo, r, g.cols) - dinv_r(dio, r, g.cols) * inv *
                                                                   inv * xh;
            }
    }
    if (ctx->din[1])
        ln_reduce(ctx->in[0], g.axis, ctx->in[1], dsf, pare_tensor_f32(ctx->din[1]));
    if (ctx->n_in > 2 && ctx->din[2])
        ln_reduce(ctx->in[0], g.axis, ctx->in[2], dbf, pare_tensor_f32(ctx->din[2]));
    return PARE_OK;
}

static double ln_flops(const pare_op_ctx *ctx)
{
    /* mean, deviation, square-add, scale and shift: about 5 per element */
    return ctx->out[0] ? 5.0 * (double)pare_tensor_numel(ctx->out[0]) : 0.0;
}

/* ---- InstanceNormalization ---- */

static pare_status in_check(pare_op_ctx *ctx)
{
    const pare_tensor *x;
    pare_status rc = nn_check_inputs(ctx, 3, 3);

    if (rc == PARE_OK)
        rc = nn_check_output(ctx);
    if (rc != PARE_OK)
        return rc;
    x = ctx->in[0];
    if (x->dtype != PARE_F32)
        return nn_bad_dtype(ctx, "InstanceNormalization", x->dtype);
    if (x->ndim < 3)
        return pare_op_fail(ctx, PARE_EINPUT, "input must have rank 3 or more (N, C, spatial...), "
                            "got %d", x->ndim);
    for (int i = 1; i < 3; i++) {
        const pare_tensor *t = ctx->in[i];
        if (t->dtype != PARE_F32)
            return pare_op_fail(ctx, PARE_EINPUT, "input '%s' has dtype '%s', expected 'float32'",
                                i == 1 ? "scale" : "B", pare_dtype_name(t->dtype));
        if (t->ndim != 1 || t->dims[0] != x->dims[1])
            return pare_op_fail(ctx, PARE_EINPUT, "input '%s' must have shape [%lld]",
                                i == 1 ? "scale" : "B", (long long)x->dims[1]);
    }
    if (pare_shape_numel(x->ndim - 2, x->dims + 2) == 0)
        return pare_op_fail(ctx, PARE_EINPUT, "input has an empty spatial dim");
    return PARE_OK;
}

static pare_status in_infer(pare_op_ctx *ctx)
{
    pare_status rc = in_check(ctx);

    if (rc == PARE_OK)
        nn_set_shape(ctx->out[0], PARE_F32, ctx->in[0]->ndim, ctx->in[0]->dims);
    return rc;
}

static pare_status in_forward(pare_op_ctx *ctx)
{
    const pare_tensor *xt = ctx->in[0];
    const float *x, *scale, *bias;
    float *y, eps = pare_node_attr_float(ctx->node, "epsilon", 1e-5f);
    int64_t C, planes, px;
    int nt;
    pare_status rc = in_check(ctx);

    if (rc != PARE_OK)
        return rc;
    x = pare_tensor_f32(xt);
    scale = pare_tensor_f32(ctx->in[1]);
    bias = pare_tensor_f32(ctx->in[2]);
    y = pare_tensor_f32(ctx->out[0]);
    C = xt->dims[1];
    planes = xt->dims[0] * C;
    px = pare_shape_numel(xt->ndim - 2, xt->dims + 2);
    nt = planes > 1 ? nn_threads(ctx, planes * px) : 1;
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t p = 0; p < planes; p++) {
        float mean, var, a;
        moments(x + p * px, px, &mean, &var);
        a = scale[p % C] / sqrtf(var + eps);
        affine_row(x + p * px, px, a, bias[p % C] - mean * a, y + p * px);
    }
    return PARE_OK;
}


/* Per (n, c) plane as LayerNormalization over the plane with a per-channel
 * scale; dscale[c] and dB[c] sum over the batch. */
static pare_status in_backward(pare_op_ctx *ctx)
{
    const pare_tensor *xt = ctx->in[0];
    const float *x, *scale, *dy;
    float *dx, *ds, *db, eps = pare_node_attr_float(ctx->node, "epsilon", 1e-5f);
    int64_t C, planes, px;
    pare_status rc = in_check(ctx);

    if (rc != PARE_OK)
        return rc;
    x = pare_tensor_f32(xt);
    scale = pare_tensor_f32(ctx->in[1]);
    C = xt->dims[1];
    planes = xt->dims[0] * C;
    px = pare_shape_numel(xt->ndim - 2, xt->dims + 2);
    dy = ctx->dout && ctx->dout[0] ? pare_tensor_f32(ctx->dout[0]) : NULL;
    dx = ctx->din[0] ? pare_tensor_f32(ctx->din[0]) : NULL;
    ds = ctx->din[1] ? pare_tensor_f32(ctx->din[1]) : NULL;
    db = ctx->din[2] ? pare_tensor_f32(ctx->din[2]) : NULL;
    if (ds)
        memset(ds, 0, (size_t)C * sizeof(float));
    if (db)
        memset(db, 0, (size_t)C * sizeof(float));
    for (int64_t p = 0; p < planes; p++) {
        const float *xp = x + p * px, *dyp = dy ? dy + p * px : NULL;
        float mean, var, inv, sc = scale[p % C];
        double sg = 0.0, sgx = 0.0;
        if (!dyp) {
            if (dx)
                memset(dx + p * px, 0, (size_t)px * sizeof(float));
            continue;
        }
        moments(xp, px, &mean, &var);
        inv = 1.0f / sqrtf(var + eps);
        for (int64_t i = 0; i < px; i++) {
            float xh = (xp[i] - mean) * inv;
            sg += dyp[i];
            sgx += dyp[i] * xh;
        }
        if (ds)
            ds[p % C] += (float)sgx;
        if (db)
            db[p % C] += (float)sg;
        if (dx)
            for (int64_t i = 0; i < px; i++) {
                float xh = (xp[i] - mean) * inv;
                dx[p * px + i] = sc * inv * (dyp[i] - (float)(sg / (double)px) -
                                             xh * (float)(sgx / (double)px));
            }
    }
    return PARE_OK;
}

#define BN_ROW(lo, hi, what)                                                              \
    { .domain = "", .op_type = "BatchNormalization", .since = lo, .until = hi,             \
      .infer = bn_infer, .forward = bn_forward, .backward = bn_backward,                 \
      .backward_scratch = bn_backward_scratch, .flops = bn_flops, .notes = what }

const pare_op_def ops_norm[] = {
    BN_ROW(1, 5, "float32; inference form only"),
    BN_ROW(6, 6, "float32; inference form only"),
    BN_ROW(7, 8, "float32; inference form only; spatial = 0 supported"),
    BN_ROW(9, 13, "float32; inference form only; fine-tuning normalizes with batch statistics "
                   "(running statistics not updated)"),
    BN_ROW(14, 14, "float32; training_mode = 1 with running_mean / running_var"),
    BN_ROW(15, 0, "float32; training_mode = 1 with running_mean / running_var"),
    { .domain = "", .op_type = "LayerNormalization", .since = 17, .until = 0,
      .infer = ln_infer, .forward = ln_forward, .backward = ln_backward,
      .backward_scratch = ln_backward_scratch, .flops = ln_flops,
      .notes = "float32; stash_type 1 only" },
    { .domain = "", .op_type = "InstanceNormalization", .since = 1, .until = 5,
      .infer = in_infer, .forward = in_forward,
      .backward = in_backward, .flops = ln_flops, .notes = "float32" },
    { .domain = "", .op_type = "InstanceNormalization", .since = 6, .until = 0,
      .infer = in_infer, .forward = in_forward,
      .backward = in_backward, .flops = ln_flops, .notes = "float32" },
    { .op_type = NULL },
};
