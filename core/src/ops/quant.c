/* QuantizeLinear, DequantizeLinear and DynamicQuantizeLinear.
 *
 * Forms by opset: 10 per-tensor (scalar scale); 13 per-axis (`axis`, 1-D
 * scale); 19 `saturate` (only meaningful for float8, which pare does not
 * implement); 21 blocked quantization (`block_size`: scale has x's rank and
 * ceil(D_axis / block_size) entries along axis) and, for QuantizeLinear,
 * `output_dtype`.
 *
 * Quantize: y = saturate(round_half_even(x / scale) + zero_point).
 * Dequantize: y = (x - zero_point) * scale.
 * Types: x float32 (or int32) -> uint8 / int8 / uint16 / int16; dequantize
 * from those and int32. Scales are float32. */
#include <math.h>
#include <omp.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "ops/broadcast.h"
#include "ops/families.h"

/* x viewed as (outer, c, inner). Per-tensor: one scale. Per-axis: scale[ci].
 * Blocked: scale has x's shape with ceil(c / block) along the axis, so row
 * (o, ci) reads scale[(o * s_c + ci / block) * inner + i]. */
typedef struct q_layout {
    int64_t outer, c, inner;
    int64_t s_c;        /* scale entries along the axis (1 per-tensor) */
    int64_t block;      /* elements of the axis per scale entry */
    bool blocked;       /* scale varies with outer and inner too */
} q_layout;

/* ---- quantize rows ---- */

#define Q_ROW(NAME, OT, QMIN, QMAX)                                              \
    VM_CLONES static void NAME(const void *vx, int64_t n, const float *restrict s,         \
                     int64_t ss, const void *vzp, void *vy)                      \
    {                                                                            \
        const float *restrict x = vx;                                            \
        OT *restrict y = vy;                                                     \
        const OT *zp = vzp;                                                      \
        if (!ss) {                                                               \
            const float sc = s[0];                                               \
            const float z = zp ? (float)zp[0] : 0.0f;                            \
            for (int64_t i = 0; i < n; i++) {                                    \
                float v = x[i] / sc;                                             \
                v = vm_sel(v == v, v, 0.0f);                                     \
                v = vm_round_even(vm_clampf(v, -4194304.0f, 4194304.0f)) + z;    \
                y[i] = (OT)vm_clampf(v, QMIN, QMAX);                             \
            }                                                                    \
        } else {                                                                 \
            for (int64_t i = 0; i < n; i++) {                                    \
                float v = x[i] / s[i];                                           \
                v = vm_sel(v == v, v, 0.0f);                                     \
                v = vm_round_even(vm_clampf(v, -4194304.0f, 4194304.0f)) +       \
                    (zp ? (float)zp[i] : 0.0f);                                  \
                y[i] = (OT)vm_clampf(v, QMIN, QMAX);                             \
            }                                                                    \
        }                                                                        \
    }
Q_ROW(q_row_u8, uint8_t, 0.0f, 255.0f)
Q_ROW(q_row_i8, int8_t, -128.0f, 127.0f)
Q_ROW(q_row_u16, uint16_t, 0.0f, 65535.0f)
Q_ROW(q_row_i16, int16_t, -32768.0f, 32767.0f)

/* ---- dequantize rows ---- */

#define DQ_ROW(NAME, T)                                                          \
    VM_CLONES static void NAME(const void *vx, int64_t n, const float *restrict s,         \
                     int64_t ss, const void *vzp, void *vy)                      \
    {                                                                            \
        const T *restrict x = vx;                                                \
        float *restrict y = vy;                                                  \
        const T *zp = vzp;                                                       \
        if (!ss) {                                                               \
            const float sc = s[0];                                               \
            const int64_t z = zp ? (int64_t)zp[0] : 0;                           \
            if (sizeof(T) <= 2) {                                                \
                const int32_t z32 = (int32_t)z;                                  \
                for (int64_t i = 0; i < n; i++)                                  \
                    y[i] = (float)((int32_t)x[i] - z32) * sc;                    \
            } else {                                                             \
                for (int64_t i = 0; i < n; i++)                                  \
                    y[i] = (float)((int64_t)x[i] - z) * sc;                      \
            }                                                                    \
        } else {                                                                 \
            for (int64_t i = 0; i < n; i++)                                      \
                y[i] = (float)((int64_t)x[i] - (zp ? (int64_t)zp[i] : 0)) * s[i]; \
        }                                                                        \
    }
DQ_ROW(dq_row_u8, uint8_t)
DQ_ROW(dq_row_i8, int8_t)
DQ_ROW(dq_row_u16, uint16_t)
DQ_ROW(dq_row_i16, int16_t)
DQ_ROW(dq_row_i32, int32_t)

/* ---- shared parameter checks ---- */

/* Output dtype of QuantizeLinear: the zero point's, else output_dtype (21+),
 * else uint8. */
static pare_status q_out_dtype(pare_op_ctx *ctx, const pare_tensor *zp, pare_dtype *out)
{
    int64_t od = ctx->opset >= 21 ? pare_node_attr_int(ctx->node, "output_dtype", 0) : 0;

    if (od != 0 && od != PARE_U8 && od != PARE_I8 && od != PARE_U16 && od != PARE_I16)
        return pare_op_fail(ctx, PARE_EUNSUPPORTED, "output_dtype %lld not supported "
                            "(pare quantizes to uint8, int8, uint16, int16)", (long long)od);
    if (zp && od != 0 && zp->dtype != (pare_dtype)od)
        return pare_op_fail(ctx, PARE_EINPUT,
                            "output_dtype '%s' differs from the zero point dtype '%s'",
                            pare_dtype_name((pare_dtype)od), pare_dtype_name(zp->dtype));
    *out = zp ? zp->dtype : od ? (pare_dtype)od : PARE_U8;
    return PARE_OK;
}

/* Works out the granularity from scale (and zero point) shapes. */
static pare_status q_layout_of(pare_op_ctx *ctx, const pare_tensor *x, const pare_tensor *scale,
                               const pare_tensor *zp, q_layout *l)
{
    int64_t block = ctx->opset >= 21 ? pare_node_attr_int(ctx->node, "block_size", 0) : 0;
    int64_t axis_attr = pare_node_attr_int(ctx->node, "axis", 1);
    int64_t sn = pare_tensor_numel(scale);
    char sb[128], xb[128];
    int axis = 0;
    pare_status rc;

    if (scale->dtype != PARE_F32)
        return ew_bad_dtype(ctx, "scale", scale->dtype);
    if (zp && !(sn == 1 && pare_tensor_numel(zp) == 1)) {
        if (zp->ndim != scale->ndim || memcmp(zp->dims, scale->dims, sizeof(int64_t) * (size_t)zp->ndim))
            return pare_op_fail(ctx, PARE_EINPUT, "zero point shape %s differs from scale shape %s",
                                pare_shape_format(zp->ndim, zp->dims, sb, sizeof sb),
                                pare_shape_format(scale->ndim, scale->dims, xb, sizeof xb));
    }
    memset(l, 0, sizeof *l);
    if (block < 0)
        return pare_op_fail(ctx, PARE_EINPUT, "block_size %lld is negative", (long long)block);
    if (block == 0 && sn == 1 && scale->ndim <= 1) {
        /* per-tensor */
        l->outer = 1;
        l->c = 1;
        l->inner = pare_tensor_numel(x);
        l->s_c = 1;
        l->block = 1;
        return PARE_OK;
    }
    if (ctx->opset < 13)
        return pare_op_fail(ctx, PARE_EINPUT, "scale must be a scalar before opset 13, got shape %s",
                            pare_shape_format(scale->ndim, scale->dims, sb, sizeof sb));
    rc = ew_axis(ctx, axis_attr, x->ndim, 0, &axis);
    if (rc != PARE_OK)
        return rc;
    l->outer = pare_shape_numel(axis, x->dims);
    l->c = x->dims[axis];
    l->inner = pare_shape_numel(x->ndim - axis - 1, x->dims + axis + 1);
    if (block == 0) {
        if (scale->ndim != 1 || scale->dims[0] != x->dims[axis])
            return pare_op_fail(ctx, PARE_EINPUT,
                                "scale shape %s does not match input %s along axis %d",
                                pare_shape_format(scale->ndim, scale->dims, sb, sizeof sb),
                                pare_shape_format(x->ndim, x->dims, xb, sizeof xb), axis);
        l->s_c = l->c;
        l->block = 1;
        return PARE_OK;
    }
    /* blocked */
    if (scale->ndim != x->ndim)
        return pare_op_fail(ctx, PARE_EINPUT, "blocked scale must have the input's rank %d, got %s",
                            x->ndim, pare_shape_format(scale->ndim, scale->dims, sb, sizeof sb));
    for (int d = 0; d < x->ndim; d++) {
        int64_t want = d == axis ? (x->dims[d] + block - 1) / block : x->dims[d];
        if (scale->dims[d] != want)
            return pare_op_fail(ctx, PARE_EINPUT,
                                "blocked scale shape %s does not fit input %s with block_size %lld "
                                "on axis %d", pare_shape_format(scale->ndim, scale->dims, sb, sizeof sb),
                                pare_shape_format(x->ndim, x->dims, xb, sizeof xb),
                                (long long)block, axis);
    }
    l->s_c = scale->dims[axis];
    l->block = block;
    l->blocked = true;
    return PARE_OK;
}

/* Runs rows (o, ci) of the layout, cutting long rows into blocks so that
 * per-tensor work spreads over threads too. */
typedef void (*q_apply_fn)(const void *x, int64_t n, const float *s, int64_t ss,
                           const void *zp, void *y);

/* Items [lo, hi): row (o, ci) = item / nblk, block = item % nblk. */
static void q_items(const q_layout *l, q_apply_fn fn, const void *x, size_t xsz,
                    const float *scale, const void *zp, size_t zsz, void *y, size_t ysz,
                    int64_t blk, int64_t nblk, int64_t lo, int64_t hi)
{
    int64_t row = lo / nblk, b = lo % nblk;
    int64_t o = row / l->c, ci = row % l->c;

    for (int64_t it = lo; it < hi; it++) {
        const int64_t start = b * blk;
        const int64_t len = l->inner - start < blk ? l->inner - start : blk;
        const int64_t si = l->blocked ? (o * l->s_c + ci / l->block) * l->inner + start : ci;
        const int64_t off = row * l->inner + start;
        fn((const char *)x + (size_t)off * xsz, len, scale + si, l->blocked ? 1 : 0,
           zp ? (const char *)zp + (size_t)si * zsz : NULL, (char *)y + (size_t)off * ysz);
        if (++b == nblk) {
            b = 0;
            row++;
            if (++ci == l->c) {
                ci = 0;
                o++;
            }
        }
    }
}

static void q_run(const q_layout *l, q_apply_fn fn, const void *x, size_t xsz, const float *scale,
                  const void *zp, size_t zsz, void *y, size_t ysz, int n_threads)
{
    const int64_t rows = l->outer * l->c;
    int64_t blk = l->inner, nblk = 1, items;

    if (rows == 0 || l->inner == 0)
        return;
    if (n_threads > 1 && rows < 4 * (int64_t)n_threads) {
        int64_t want = (4 * (int64_t)n_threads + rows - 1) / rows;
        blk = ((l->inner + want - 1) / want + 63) & ~(int64_t)63;
        nblk = (l->inner + blk - 1) / blk;
    }
    items = rows * nblk;
    if (n_threads <= 1 || items < 2) {
        q_items(l, fn, x, xsz, scale, zp, zsz, y, ysz, blk, nblk, 0, items);
        return;
    }
    if (items < n_threads)
        n_threads = (int)items;
#pragma omp parallel num_threads(n_threads)
    {
        int nth = omp_get_num_threads(), tid = omp_get_thread_num();
        q_items(l, fn, x, xsz, scale, zp, zsz, y, ysz, blk, nblk, items * tid / nth,
                items * (tid + 1) / nth);
    }
}

/* ---- QuantizeLinear ---- */

static pare_status quantize_infer(pare_op_ctx *ctx)
{
    const pare_tensor *x, *scale, *zp;
    pare_dtype ot = PARE_U8;
    q_layout l;
    pare_status rc = ew_check_inputs(ctx, 2, 3);

    if (rc == PARE_OK)
        rc = ew_check_output(ctx);
    if (rc != PARE_OK)
        return rc;
    x = ctx->in[0];
    scale = ctx->in[1];
    zp = ctx->n_in > 2 ? ctx->in[2] : NULL;
    if (x->dtype != PARE_F32 && x->dtype != PARE_I32)
        return ew_bad_dtype(ctx, NULL, x->dtype);
    if (zp && zp->dtype != PARE_U8 && zp->dtype != PARE_I8 &&
        !(ctx->opset >= 21 && (zp->dtype == PARE_U16 || zp->dtype == PARE_I16)))
        return ew_bad_dtype(ctx, "zero point", zp->dtype);
    rc = q_out_dtype(ctx, zp, &ot);
    if (rc == PARE_OK)
        rc = q_layout_of(ctx, x, scale, zp, &l);
    if (rc != PARE_OK)
        return rc;
    ew_set_shape(ctx->out[0], ot, x->ndim, x->dims);
    if (x->dtype == PARE_I32)
        ctx->scratch_bytes = (size_t)pare_tensor_numel(x) * sizeof(float);
    return PARE_OK;
}

static pare_status quantize_forward(pare_op_ctx *ctx)
{
    const pare_tensor *x = ctx->in[0], *scale = ctx->in[1];
    const pare_tensor *zp = ctx->n_in > 2 ? ctx->in[2] : NULL;
    pare_tensor *y = ctx->out[0];
    const float *xf = x->data;
    q_layout l;
    q_apply_fn fn;
    pare_status rc = q_layout_of(ctx, x, scale, zp, &l);
    int64_t n = pare_tensor_numel(x);

    if (rc != PARE_OK)
        return rc;
    if (x->dtype == PARE_I32) {
        float *tmp = ctx->scratch;
        const int32_t *xi = x->data;
        for (int64_t i = 0; i < n; i++)
            tmp[i] = (float)xi[i];
        xf = tmp;
    }
    switch (y->dtype) {
    case PARE_U8: fn = q_row_u8; break;
    case PARE_I8: fn = q_row_i8; break;
    case PARE_U16: fn = q_row_u16; break;
    default: fn = q_row_i16; break;
    }
    q_run(&l, fn, xf, sizeof(float), scale->data, zp ? zp->data : NULL,
          zp ? pare_dtype_size(zp->dtype) : 0, y->data, pare_dtype_size(y->dtype),
          ew_threads(ctx, n * 2));
    return PARE_OK;
}

/* ---- DequantizeLinear ---- */

static pare_status dequantize_infer(pare_op_ctx *ctx)
{
    const pare_tensor *x, *scale, *zp;
    q_layout l;
    pare_status rc = ew_check_inputs(ctx, 2, 3);

    if (rc == PARE_OK)
        rc = ew_check_output(ctx);
    if (rc != PARE_OK)
        return rc;
    x = ctx->in[0];
    scale = ctx->in[1];
    zp = ctx->n_in > 2 ? ctx->in[2] : NULL;
    if (x->dtype != PARE_U8 && x->dtype != PARE_I8 && x->dtype != PARE_I32 &&
        x->dtype != PARE_U16 && x->dtype != PARE_I16)
        return ew_bad_dtype(ctx, NULL, x->dtype);
    if (zp && zp->dtype != x->dtype)
        return pare_op_fail(ctx, PARE_EINPUT, "zero point dtype '%s' differs from input dtype '%s'",
                            pare_dtype_name(zp->dtype), pare_dtype_name(x->dtype));
    if (ctx->opset >= 23 && pare_node_attr_int(ctx->node, "output_dtype", 0) > 1)
        return pare_op_fail(ctx, PARE_EUNSUPPORTED, "output_dtype other than float32 not supported");
    rc = q_layout_of(ctx, x, scale, zp, &l);
    if (rc != PARE_OK)
        return rc;
    ew_set_shape(ctx->out[0], PARE_F32, x->ndim, x->dims);
    return PARE_OK;
}

static pare_status dequantize_forward(pare_op_ctx *ctx)
{
    const pare_tensor *x = ctx->in[0], *scale = ctx->in[1];
    const pare_tensor *zp = ctx->n_in > 2 ? ctx->in[2] : NULL;
    q_layout l;
    q_apply_fn fn;
    pare_status rc = q_layout_of(ctx, x, scale, zp, &l);

    if (rc != PARE_OK)
        return rc;
    switch (x->dtype) {
    case PARE_U8: fn = dq_row_u8; break;
    case PARE_I8: fn = dq_row_i8; break;
    case PARE_U16: fn = dq_row_u16; break;
    case PARE_I16: fn = dq_row_i16; break;
    default: fn = dq_row_i32; break;
    }
    q_run(&l, fn, x->data, pare_dtype_size(x->dtype), scale->data, zp ? zp->data : NULL,
          zp ? pare_dtype_size(zp->dtype) : 0, ctx->out[0]->data, sizeof(float),
          ew_threads(ctx, pare_tensor_numel(x)));
    return PARE_OK;
}

/* ---- straight-through backward (QAT) ----
 *
 * The pair DQ(Q(x)) is fake quantization; its gradient is the clipped
 * straight-through estimator, split between the two ops by their true
 * derivatives away from rounding:
 *   Q:  q = round(x / s) + zp   ->  dx = dq / s where qmin <= q <= qmax
 *                                   (before saturation), 0 where it clipped;
 *                                   ds += dq * (-x / s^2) where in range
 *   DQ: y = (q - zp) * s        ->  dq = dy * s;  ds += dy * (q - zp)
 * Composed: dx = dy inside the representable range and 0 outside, and the
 * scale (shared by the pair) gets LSQ's gradient dy * (round(x/s) - x/s)
 * inside and dy * (qmax - zp) / (qmin - zp) where clipped. The gradient of
 * the integer tensor q is carried in a float32 buffer: the executor must
 * give Q's output and DQ's input a float32 gradient (an integer dtype here
 * is PARE_EUNSUPPORTED). Zero points get no gradient (a din for one is
 * zeroed). */

static int64_t q_scale_index(const q_layout *l, int64_t o, int64_t ci, int64_t i)
{
    if (l->blocked)
        return (o * l->s_c + ci / l->block) * l->inner + i;
    return l->s_c == 1 ? 0 : ci;
}

static double q_zp_at(const pare_tensor *zp, int64_t si)
{
    if (!zp)
        return 0.0;
    return pare_tensor_get_f64(zp, pare_tensor_numel(zp) == 1 ? 0 : si);
}

static pare_status q_float_grad(pare_op_ctx *ctx, const pare_tensor *g, const char *what)
{
    if (g && g->dtype != PARE_F32)
        return pare_op_fail(ctx, PARE_EUNSUPPORTED, "the gradient of %s must be a float32 buffer, "
                            "got %s", what, pare_dtype_name(g->dtype));
    return PARE_OK;
}

static void q_zero_zp_grad(pare_op_ctx *ctx)
{
    if (ctx->n_in > 2 && ctx->din[2])
        memset(ctx->din[2]->data, 0, pare_tensor_nbytes(ctx->din[2]));
}

static pare_status quantize_backward(pare_op_ctx *ctx)
{
    const pare_tensor *x = ctx->in[0], *scale = ctx->in[1];
    const pare_tensor *zp = ctx->n_in > 2 ? ctx->in[2] : NULL;
    const pare_tensor *dq = ctx->dout[0];
    pare_tensor *dx = ctx->din[0], *ds = ctx->din[1];
    double qmin, qmax;
    q_layout l;
    pare_status rc = q_layout_of(ctx, x, scale, zp, &l);

    if (rc == PARE_OK)
        rc = q_float_grad(ctx, dq, "the quantized output");
    if (rc == PARE_OK && (x->dtype != PARE_F32 || (dx && dx->dtype != PARE_F32)))
        rc = pare_op_fail(ctx, PARE_EUNSUPPORTED, "backward needs a float32 input");
    if (rc != PARE_OK)
        return rc;
    switch (ctx->out[0]->dtype) {
    case PARE_U8: qmin = 0; qmax = 255; break;
    case PARE_I8: qmin = -128; qmax = 127; break;
    case PARE_U16: qmin = 0; qmax = 65535; break;
    default: qmin = -32768; qmax = 32767; break;
    }
    if (ds)
        memset(ds->data, 0, pare_tensor_nbytes(ds));
    q_zero_zp_grad(ctx);
    for (int64_t o = 0, k = 0; o < l.outer; o++)
        for (int64_t ci = 0; ci < l.c; ci++)
            for (int64_t i = 0; i < l.inner; i++, k++) {
                int64_t si = q_scale_index(&l, o, ci, i);
                float s = pare_tensor_f32(scale)[si];
                float xv = pare_tensor_f32(x)[k];
                float g = dq ? pare_tensor_f32(dq)[k] : 0.0f;
                double v = vm_round_even(vm_clampf(xv / s, -4194304.0f, 4194304.0f)) + q_zp_at(zp, si);
                bool in = v >= qmin && v <= qmax && xv == xv;
                if (dx)
                    pare_tensor_f32(dx)[k] = in ? g / s : 0.0f;
                if (ds && in)
                    pare_tensor_f32(ds)[si] += g * (-xv / (s * s));
            }
    return PARE_OK;
}

static pare_status dequantize_backward(pare_op_ctx *ctx)
{
    const pare_tensor *x = ctx->in[0], *scale = ctx->in[1];
    const pare_tensor *zp = ctx->n_in > 2 ? ctx->in[2] : NULL;
    const pare_tensor *dy = ctx->dout[0];
    pare_tensor *dq = ctx->din[0], *ds = ctx->din[1];
    q_layout l;
    pare_status rc = q_layout_of(ctx, x, scale, zp, &l);

    if (rc == PARE_OK)
        rc = q_float_grad(ctx, dq, "the quantized input");
    if (rc != PARE_OK)
        return rc;
    if (ds)
        memset(ds->data, 0, pare_tensor_nbytes(ds));
    q_zero_zp_grad(ctx);
    for (int64_t o = 0, k = 0; o < l.outer; o++)
        for (int64_t ci = 0; ci < l.c; ci++)
            for (int64_t i = 0; i < l.inner; i++, k++) {
                int64_t si = q_scale_index(&l, o, ci, i);
                float s = pare_tensor_f32(scale)[si];
                float g = dy ? pare_tensor_f32(dy)[k] : 0.0f;
                if (dq)
                    pare_tensor_f32(dq)[k] = g * s;
                if (ds)
                    pare_tensor_f32(ds)[si] += g * (float)(pare_tensor_get_f64(x, k) - q_zp_at(zp, si));
            }
    return PARE_OK;
}

/* ---- DynamicQuantizeLinear (uint8) ---- */

static pare_status dyn_quantize_infer(pare_op_ctx *ctx)
{
    const pare_tensor *x;
    pare_status rc = ew_check_inputs(ctx, 1, 1);

    if (rc != PARE_OK)
        return rc;
    if (ctx->n_out < 3 || !ctx->out[0] || !ctx->out[1] || !ctx->out[2])
        return pare_op_fail(ctx, PARE_EINPUT, "expects 3 outputs (y, y_scale, y_zero_point)");
    x = ctx->in[0];
    if (x->dtype != PARE_F32)
        return ew_bad_dtype(ctx, NULL, x->dtype);
    ew_set_shape(ctx->out[0], PARE_U8, x->ndim, x->dims);
    ew_set_shape(ctx->out[1], PARE_F32, 0, NULL);
    ew_set_shape(ctx->out[2], PARE_U8, 0, NULL);
    return PARE_OK;
}

static pare_status dyn_quantize_forward(pare_op_ctx *ctx)
{
    const pare_tensor *x = ctx->in[0];
    const float *xf = x->data;
    int64_t n = pare_tensor_numel(x);
    float lo = 0.0f, hi = 0.0f, scale, zpf;
    uint8_t zp;
    q_layout l = { .outer = 1, .c = 1, .inner = n, .s_c = 1, .block = 1 };

    for (int64_t i = 0; i < n; i++) {
        lo = xf[i] < lo ? xf[i] : lo;
        hi = xf[i] > hi ? xf[i] : hi;
    }
    scale = (hi - lo) / 255.0f;
    zpf = scale > 0.0f ? nearbyintf(vm_clampf(-lo / scale, 0.0f, 255.0f)) : 0.0f;
    zp = (uint8_t)zpf;
    *(float *)ctx->out[1]->data = scale;
    *(uint8_t *)ctx->out[2]->data = zp;
    if (scale > 0.0f)
        q_run(&l, q_row_u8, xf, sizeof(float), &scale, &zp, 1, ctx->out[0]->data, 1,
              ew_threads(ctx, n * 2));
    else
        memset(ctx->out[0]->data, 0, (size_t)n);
    return PARE_OK;
}

/* ---- table ---- */

#define ROW(op, since_, until_, fn, notes_)                                      \
    { .domain = "", .op_type = op, .since = since_, .until = until_,             \
      .infer = fn##_infer, .forward = fn##_forward, .flops = ew_flops_out, .notes = notes_ }
/* Q and DQ rows with the straight-through backward */
#define ROW_BW(op, since_, until_, fn, notes_)                                   \
    { .domain = "", .op_type = op, .since = since_, .until = until_,             \
      .infer = fn##_infer, .forward = fn##_forward, .backward = fn##_backward,   \
      .flags = PARE_OP_INT_GRAD, .flops = ew_flops_out, .notes = notes_ }

const pare_op_def ops_quant[] = {
    ROW_BW("QuantizeLinear", 10, 12, quantize, "per-tensor; float32/int32 to uint8/int8"),
    ROW_BW("QuantizeLinear", 13, 18, quantize, "per-tensor or per-axis; float32/int32 to uint8/int8"),
    ROW_BW("QuantizeLinear", 19, 20, quantize,
        "per-tensor or per-axis; saturate ignored (no float8); float32 scales only"),
    ROW_BW("QuantizeLinear", 21, 0, quantize,
        "per-tensor, per-axis or blocked; output_dtype uint8/int8/uint16/int16 (no int4, float8)"),
    ROW_BW("DequantizeLinear", 10, 12, dequantize, "per-tensor; uint8/int8/int32 to float32"),
    ROW_BW("DequantizeLinear", 13, 18, dequantize, "per-tensor or per-axis; uint8/int8/int32"),
    ROW_BW("DequantizeLinear", 19, 20, dequantize,
        "per-tensor or per-axis; float32 scales only (no float8)"),
    ROW_BW("DequantizeLinear", 21, 0, dequantize,
        "per-tensor, per-axis or blocked; uint8/int8/uint16/int16/int32 (no int4, float8)"),
    ROW("DynamicQuantizeLinear", 11, 0, dyn_quantize, "uint8"),
    { .op_type = NULL },
};
