/* Pad: modes constant, reflect, edge and wrap; negative pads crop.
 * Rows live in shape.c, one per form:
 *   1      attribute 'paddings', 'value'
 *   2-10   attribute 'pads', 'value'
 *   11-17  inputs pads, constant_value
 *   18+    inputs pads, constant_value, axes
 * Element-size generic, so every storable dtype pads. */
#include <stdint.h>
#include <string.h>

#include "pare/op.h"

#include "ops/shape_util.h"

enum pad_mode { PAD_CONSTANT, PAD_REFLECT, PAD_EDGE, PAD_WRAP };

typedef struct pad_plan {
    int rank;
    enum pad_mode mode;
    int64_t begin[PARE_MAX_DIMS], end[PARE_MAX_DIMS], out[PARE_MAX_DIMS];
    unsigned char value[8]; /* the constant, in the data's dtype */
} pad_plan;

static pare_tensor *arg(const pare_op_ctx *ctx, int i)
{
    return i < ctx->n_in ? ctx->in[i] : NULL;
}

static void store_scalar(pare_dtype dtype, double v, void *out)
{
    switch (dtype) {
    case PARE_F32: { float f = (float)v; memcpy(out, &f, 4); break; }
    case PARE_F64: memcpy(out, &v, 8); break;
    case PARE_F16: { uint16_t h = pare_f32_to_f16((float)v); memcpy(out, &h, 2); break; }
    case PARE_BF16: {
        float f = (float)v;
        uint32_t b;
        uint16_t h;
        memcpy(&b, &f, 4);
        h = (uint16_t)(b >> 16);
        memcpy(out, &h, 2);
        break;
    }
    case PARE_I8: case PARE_U8: { uint8_t b = (uint8_t)(int64_t)v; memcpy(out, &b, 1); break; }
    case PARE_BOOL: { uint8_t b = v != 0; memcpy(out, &b, 1); break; }
    case PARE_I16: case PARE_U16: { uint16_t h = (uint16_t)(int64_t)v; memcpy(out, &h, 2); break; }
    case PARE_I32: case PARE_U32: { uint32_t w = (uint32_t)(int64_t)v; memcpy(out, &w, 4); break; }
    case PARE_I64: case PARE_U64: { int64_t q = (int64_t)v; memcpy(out, &q, 8); break; }
    default: memset(out, 0, 8);
    }
}

/* Pads, mode and constant for this node's opset form. */
static pare_status pad_plan_make(pare_op_ctx *ctx, pad_plan *p)
{
    const pare_tensor *x = ctx->in[0];
    const char *mode = pare_node_attr_string(ctx->node, "mode", "constant");
    int64_t pads[2 * PARE_MAX_DIMS], axes[PARE_MAX_DIMS];
    int n_pads = 0, n_axes = x->ndim;
    bool seen[PARE_MAX_DIMS] = {false};
    pare_status rc;

    memset(p, 0, sizeof *p);
    p->rank = x->ndim;
    if (!strcmp(mode, "constant"))
        p->mode = PAD_CONSTANT;
    else if (!strcmp(mode, "reflect"))
        p->mode = PAD_REFLECT;
    else if (!strcmp(mode, "edge"))
        p->mode = PAD_EDGE;
    else if (!strcmp(mode, "wrap"))
        p->mode = PAD_WRAP;
    else
        return pare_op_fail(ctx, PARE_EINPUT, "unknown mode '%s'", mode);
    for (int k = 0; k < x->ndim; k++)
        axes[k] = k;

    if (ctx->opset < 11) {
        const char *name = ctx->opset < 2 ? "paddings" : "pads";
        const pare_attr *a = pare_node_attr(ctx->node, name);
        if (!a || a->type != PARE_ATTR_INTS)
            return pare_op_fail(ctx, PARE_EINPUT, "attribute '%s' is required", name);
        if (a->n > 2 * PARE_MAX_DIMS)
            return pare_op_fail(ctx, PARE_EINPUT, "'%s' has too many values", name);
        n_pads = a->n;
        memcpy(pads, a->ints, (size_t)n_pads * sizeof *pads);
        store_scalar(x->dtype, pare_node_attr_float(ctx->node, "value", 0.0f), p->value);
    } else {
        const pare_tensor *cv = arg(ctx, 2), *ax = ctx->opset >= 18 ? arg(ctx, 3) : NULL;
        if (!arg(ctx, 1))
            return pare_op_fail(ctx, PARE_EINPUT, "input 'pads' is required");
        rc = shape_const_ints(ctx, ctx->in[1], "pads", pads, 2 * PARE_MAX_DIMS, &n_pads);
        if (rc == PARE_OK && ax)
            rc = shape_const_ints(ctx, ax, "axes", axes, PARE_MAX_DIMS, &n_axes);
        if (rc != PARE_OK)
            return rc;
        if (cv && pare_tensor_numel(cv) > 0) {
            if (cv->dtype != x->dtype)
                return pare_op_fail(ctx, PARE_EINPUT, "'constant_value' is %s but the data is %s",
                                    pare_dtype_name(cv->dtype), pare_dtype_name(x->dtype));
            if (pare_tensor_numel(cv) != 1)
                return pare_op_fail(ctx, PARE_EINPUT, "'constant_value' must be a scalar");
            if (cv->data) /* NULL at plan time when computed: only forward needs it */
                memcpy(p->value, cv->data, pare_dtype_size(x->dtype));
        }
    }
    if (n_pads != 2 * n_axes)
        return pare_op_fail(ctx, PARE_EINPUT, "'pads' has %d values, expected %d (2 per axis)",
                            n_pads, 2 * n_axes);
    for (int i = 0; i < n_axes; i++) {
        int64_t a = axes[i];
        if (a < -(int64_t)x->ndim || a >= x->ndim)
            return pare_op_fail(ctx, PARE_EINPUT, "axis %lld is out of range for rank %d",
                                (long long)a, x->ndim);
        if (a < 0)
            a += x->ndim;
        if (seen[a])
            return pare_op_fail(ctx, PARE_EINPUT, "axis %lld is listed twice", (long long)axes[i]);
        seen[a] = true;
        p->begin[a] = pads[i];
        p->end[a] = pads[i + n_axes];
    }
    for (int k = 0; k < x->ndim; k++) {
        int64_t d = x->dims[k];
        p->out[k] = d + p->begin[k] + p->end[k];
        if (p->out[k] < 0)
            return pare_op_fail(ctx, PARE_EINPUT, "pads on axis %d crop more than its %lld elements",
                                k, (long long)d);
        if (d == 0 && p->out[k] > 0 && p->mode != PAD_CONSTANT)
            return pare_op_fail(ctx, PARE_EINPUT, "cannot pad empty axis %d in mode '%s'", k, mode);
    }
    return PARE_OK;
}

static pare_status pad_infer(pare_op_ctx *ctx)
{
    pad_plan p;
    size_t bytes = 0;
    pare_status rc;

    if (ctx->n_in < 1 || !ctx->in[0] || ctx->n_out < 1 || !ctx->out[0])
        return pare_op_fail(ctx, PARE_EINPUT, "expects an input and an output");
    if (!pare_dtype_size(ctx->in[0]->dtype))
        return pare_op_fail(ctx, PARE_EUNSUPPORTED, "dtype '%s' not supported",
                            pare_dtype_name(ctx->in[0]->dtype));
    rc = pad_plan_make(ctx, &p);
    if (rc != PARE_OK)
        return rc;
    ctx->out[0]->dtype = ctx->in[0]->dtype;
    ctx->out[0]->ndim = p.rank;
    for (int k = 0; k < p.rank; k++) {
        ctx->out[0]->dims[k] = p.out[k];
        bytes += (size_t)p.out[k] * sizeof(int64_t);
    }
    ctx->scratch_bytes = bytes;
    return PARE_OK;
}

pare_status shape_pad1_infer(pare_op_ctx *ctx)
{
    return pad_infer(ctx);
}

pare_status shape_pad2_infer(pare_op_ctx *ctx)
{
    return pad_infer(ctx);
}

pare_status shape_pad11_infer(pare_op_ctx *ctx)
{
    return pad_infer(ctx);
}

pare_status shape_pad18_infer(pare_op_ctx *ctx)
{
    return pad_infer(ctx);
}

/* Source index of output position o on an axis of size d, -1 = constant. */
static int64_t pad_source(enum pad_mode mode, int64_t i, int64_t d)
{
    if (i >= 0 && i < d)
        return i;
    switch (mode) {
    case PAD_EDGE:
        return i < 0 ? 0 : d - 1;
    case PAD_WRAP:
        i %= d;
        return i < 0 ? i + d : i;
    case PAD_REFLECT: {
        int64_t period = 2 * (d - 1);
        if (d == 1)
            return 0;
        i %= period;
        if (i < 0)
            i += period;
        return i < d ? i : period - i;
    }
    default:
        return -1;
    }
}

static void fill_value(char *dst, int64_t n, const unsigned char *value, size_t es, bool zero)
{
    if (zero) {
        memset(dst, 0, (size_t)n * es);
        return;
    }
    for (int64_t i = 0; i < n; i++)
        memcpy(dst + (size_t)i * es, value, es);
}

pare_status shape_pad_forward(pare_op_ctx *ctx)
{
    const pare_tensor *x = ctx->in[0];
    pare_tensor *y = ctx->out[0];
    size_t es = pare_dtype_size(x->dtype);
    int64_t *maps[PARE_MAX_DIMS], in_strides[PARE_MAX_DIMS], rows, inner, lo, hi, chunk, n_chunks;
    int64_t *cursor = ctx->scratch;
    bool zero = true;
    int n;
    pad_plan p;
    pare_status rc = pad_plan_make(ctx, &p);

    if (rc != PARE_OK)
        return rc;
    n = p.rank;
    for (int k = 0; k < n; k++)
        if (y->dims[k] != p.out[k])
            return pare_op_fail(ctx, PARE_EUNSUPPORTED,
                                "'pads' changed after planning; the output shape was fixed then");
    if (pare_tensor_numel(y) == 0)
        return PARE_OK;
    if (n == 0) {
        memcpy(y->data, x->data, es);
        return PARE_OK;
    }
    for (size_t b = 0; b < es; b++)
        zero &= p.value[b] == 0;
    {
        int64_t s = 1;
        for (int k = n - 1; k >= 0; k--) {
            in_strides[k] = s;
            s *= x->dims[k];
        }
    }
    for (int k = 0; k < n; k++) {
        maps[k] = cursor;
        cursor += p.out[k];
        for (int64_t o = 0; o < p.out[k]; o++)
            maps[k][o] = x->dims[k] ? pad_source(p.mode, o - p.begin[k], x->dims[k]) : -1;
    }
    inner = p.out[n - 1];
    lo = p.begin[n - 1] > 0 ? p.begin[n - 1] : 0;
    hi = p.begin[n - 1] + x->dims[n - 1];
    if (hi > inner)
        hi = inner;
    if (hi < lo)
        hi = lo;
    rows = 1;
    for (int k = 0; k < n - 1; k++)
        rows *= p.out[k];
    chunk = (4096 + inner - 1) / inner;
    n_chunks = (rows + chunk - 1) / chunk;
#pragma omp parallel for num_threads(ctx->n_threads) if (rows * inner * (int64_t)es > ((int64_t)1 << 18)) schedule(static)
    for (int64_t c = 0; c < n_chunks; c++) {
        int64_t idx[PARE_MAX_DIMS], r0 = c * chunk, r1 = r0 + chunk < rows ? r0 + chunk : rows;
        int64_t rem = r0;
        for (int k = n - 2; k >= 0; k--) {
            idx[k] = rem % p.out[k];
            rem /= p.out[k];
        }
        for (int64_t r = r0; r < r1; r++) {
            char *dst = (char *)y->data + r * inner * (int64_t)es;
            const int64_t *m = maps[n - 1];
            const char *src;
            int64_t off = 0;
            bool outside = false;
            for (int k = 0; k < n - 1; k++) {
                int64_t i = maps[k][idx[k]];
                if (i < 0)
                    outside = true;
                else
                    off += i * in_strides[k];
            }
            if (outside) {
                fill_value(dst, inner, p.value, es, zero);
            } else {
                src = (const char *)x->data + off * (int64_t)es;
                for (int64_t o = 0; o < lo; o++) {
                    if (m[o] < 0)
                        memcpy(dst + o * (int64_t)es, p.value, es);
                    else
                        memcpy(dst + o * (int64_t)es, src + m[o] * (int64_t)es, es);
                }
                if (hi > lo)
                    memcpy(dst + lo * (int64_t)es, src + (lo - p.begin[n - 1]) * (int64_t)es,
                           (size_t)(hi - lo) * es);
                for (int64_t o = hi; o < inner; o++) {
                    if (m[o] < 0)
                        memcpy(dst + o * (int64_t)es, p.value, es);
                    else
                        memcpy(dst + o * (int64_t)es, src + m[o] * (int64_t)es, es);
                }
            }
            for (int k = n - 2; k >= 0; k--) {
                if (++idx[k] < p.out[k])
                    break;
                idx[k] = 0;
            }
        }
    }
    return PARE_OK;
}

/* Adjoint of the forward for every mode: each dy element goes to its
 * source element of x (reflect, edge and wrap sources add up), or to the
 * constant_value input's gradient when it reads the constant. float32. */
pare_status shape_pad_backward(pare_op_ctx *ctx)
{
    const pare_tensor *x = ctx->in[0];
    pare_tensor *dx = ctx->din ? ctx->din[0] : NULL, *dy = ctx->dout ? ctx->dout[0] : NULL;
    pare_tensor *dv = ctx->din && ctx->opset >= 11 && ctx->n_in > 2 ? ctx->din[2] : NULL;
    int64_t idx[PARE_MAX_DIMS] = {0}, in_strides[PARE_MAX_DIMS], n, s = 1;
    double dconst = 0.0;
    pad_plan p;
    pare_status rc;

    if (!dx && !dv)
        return PARE_OK;
    if (x->dtype != PARE_F32)
        return pare_op_fail(ctx, PARE_EUNSUPPORTED,
                            "backward: dtype '%s' not supported (float32 only)",
                            pare_dtype_name(x->dtype));
    rc = pad_plan_make(ctx, &p);
    if (rc != PARE_OK)
        return rc;
    if (dx)
        memset(dx->data, 0, pare_tensor_nbytes(dx));
    for (int k = p.rank - 1; k >= 0; k--) {
        in_strides[k] = s;
        s *= x->dims[k];
    }
    n = dy ? pare_shape_numel(p.rank, p.out) : 0;
    for (int64_t i = 0; i < n; i++) {
        int64_t off = 0;
        bool outside = false;
        for (int k = 0; k < p.rank && !outside; k++) {
            int64_t src = x->dims[k] ? pad_source(p.mode, idx[k] - p.begin[k], x->dims[k]) : -1;
            if (src < 0)
                outside = true;
            else
                off += src * in_strides[k];
        }
        if (outside)
            dconst += pare_tensor_f32(dy)[i];
        else if (dx)
            pare_tensor_f32(dx)[off] += pare_tensor_f32(dy)[i];
        for (int k = p.rank - 1; k >= 0; k--) {
            if (++idx[k] < p.out[k])
                break;
            idx[k] = 0;
        }
    }
    if (dv && dv->dtype == PARE_F32 && pare_tensor_numel(dv) == 1)
        pare_tensor_f32(dv)[0] = (float)dconst;
    return PARE_OK;
}
