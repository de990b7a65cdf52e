/* Resize and Upsample: nearest (every nearest_mode), N-linear and cubic
 * interpolation with every coordinate_transformation_mode. Rows live in
 * shape.c:
 *   Upsample 7-8   scales attribute; 9 scales input (asymmetric coordinates)
 *   Resize 10      scales input, asymmetric coordinates (like Upsample 9)
 *   Resize 11-12   roi, scales, sizes inputs; attributes as in 13
 *   Resize 13-17   roi, scales, sizes optional
 *   Resize 18+     axes, keep_aspect_ratio_policy (antialias unsupported)
 * Before opset 11 nearest picks floor(x) when upsampling and ceil(x) when
 * downsampling, as ONNX Runtime does. Coordinates follow the ONNX reference:
 * align_corners measures the resized length as scale * input length.
 * Nearest moves elements of any dtype; linear and cubic compute in float32.
 * Interpolation is separable: each output is a weighted sum over a small
 * set of taps per axis (1 nearest, 2 linear, 4 cubic), computed once per
 * run into the scratch buffer. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "pare/op.h"

enum rs_mode { RS_NEAREST, RS_LINEAR, RS_CUBIC };
enum rs_coord {
    RC_HALF_PIXEL, RC_HALF_PIXEL_SYMMETRIC, RC_PYTORCH_HALF_PIXEL, RC_ALIGN_CORNERS,
    RC_ASYMMETRIC, RC_TF_HALF_PIXEL_FOR_NN, RC_TF_CROP_AND_RESIZE
};
enum rs_nearest { RN_ROUND_PREFER_FLOOR, RN_ROUND_PREFER_CEIL, RN_FLOOR, RN_CEIL, RN_SIMPLE };

typedef struct resize_cfg {
    int rank;
    enum rs_mode mode;
    enum rs_coord coord;
    enum rs_nearest nearest;
    double cubic_a;
    bool exclude_outside;
    float extrapolation;
    double scale[PARE_MAX_DIMS];
    double roi_start[PARE_MAX_DIMS], roi_end[PARE_MAX_DIMS];
    int64_t out[PARE_MAX_DIMS];
} resize_cfg;

static const char *const mode_names[] = {"nearest", "linear", "cubic"};
static const char *const coord_names[] = {
    "half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners",
    "asymmetric", "tf_half_pixel_for_nn", "tf_crop_and_resize",
};
static const char *const nearest_names[] = {"round_prefer_floor", "round_prefer_ceil", "floor",
                                            "ceil"};

static pare_tensor *arg(const pare_op_ctx *ctx, int i)
{
    return i < ctx->n_in ? ctx->in[i] : NULL;
}

/* An optional input given as an empty tensor counts as absent. */
static const pare_tensor *present(const pare_op_ctx *ctx, int i)
{
    const pare_tensor *t = arg(ctx, i);
    return t && pare_tensor_numel(t) > 0 ? t : NULL;
}

static int pick(pare_op_ctx *ctx, const char *attr, const char *def, const char *const *names,
                int n, int *out)
{
    const char *s = pare_node_attr_string(ctx->node, attr, def);
    *out = 0;
    for (int i = 0; i < n; i++)
        if (!strcmp(s, names[i])) {
            *out = i;
            return PARE_OK;
        }
    return pare_op_fail(ctx, PARE_EINPUT, "unknown %s '%s'", attr, s);
}

static pare_status need_const(pare_op_ctx *ctx, const pare_tensor *t, const char *what)
{
    if (t->data)
        return PARE_OK;
    pare_op_fail(ctx, PARE_EUNSUPPORTED, "input '%s' must be a constant", what);
    pare_error_hint(ctx->err, "pare plans shapes ahead of time; '%s' is computed at run time", what);
    return PARE_EUNSUPPORTED;
}

/* Scales (or sizes) for axes[0..n): scale for each listed axis. */
static pare_status read_floats(pare_op_ctx *ctx, const pare_tensor *t, const char *what,
                               double *v, int n)
{
    pare_status rc = need_const(ctx, t, what);
    if (rc != PARE_OK)
        return rc;
    if (t->dtype != PARE_F32 && t->dtype != PARE_F64 && t->dtype != PARE_F16)
        return pare_op_fail(ctx, PARE_EINPUT, "'%s' must be float, got %s", what,
                            pare_dtype_name(t->dtype));
    if (pare_tensor_numel(t) != n)
        return pare_op_fail(ctx, PARE_EINPUT, "'%s' has %lld values, expected %d", what,
                            (long long)pare_tensor_numel(t), n);
    for (int i = 0; i < n; i++)
        v[i] = pare_tensor_get_f64(t, i);
    return PARE_OK;
}

static pare_status set_scales(pare_op_ctx *ctx, resize_cfg *c, const double *s, const int *axes,
                              int n)
{
    for (int i = 0; i < n; i++) {
        if (!(s[i] > 0) || !isfinite(s[i]))
            return pare_op_fail(ctx, PARE_EINPUT, "scale %g on axis %d must be positive", s[i],
                                axes[i]);
        c->scale[axes[i]] = s[i];
    }
    return PARE_OK;
}

static pare_status resize_config(pare_op_ctx *ctx, bool upsample, resize_cfg *c)
{
    const pare_tensor *x = ctx->in[0];
    int axes[PARE_MAX_DIMS], n_axes = x->ndim, v = 0;
    double vals[PARE_MAX_DIMS];
    pare_status rc;

    memset(c, 0, sizeof *c);
    c->rank = x->ndim;
    for (int k = 0; k < x->ndim; k++) {
        axes[k] = k;
        c->scale[k] = 1.0;
        c->out[k] = x->dims[k];
        c->roi_start[k] = 0.0;
        c->roi_end[k] = 1.0;
    }
    c->cubic_a = -0.75;
    if (upsample || ctx->opset < 11) {
        const char *m = pare_node_attr_string(ctx->node, "mode", "nearest");
        const pare_tensor *st = NULL;
        c->coord = RC_ASYMMETRIC;
        c->nearest = RN_SIMPLE;
        if (!strcmp(m, "nearest"))
            c->mode = RS_NEAREST;
        else if (!strcmp(m, "linear") || !strcmp(m, "bilinear"))
            c->mode = RS_LINEAR;
        else
            return pare_op_fail(ctx, PARE_EINPUT, "unknown mode '%s' (nearest or linear)", m);
        if (upsample && ctx->opset < 9) {
            const pare_attr *a = pare_node_attr(ctx->node, "scales");
            if (!a || a->type != PARE_ATTR_FLOATS)
                return pare_op_fail(ctx, PARE_EINPUT, "attribute 'scales' is required");
            if (a->n != x->ndim)
                return pare_op_fail(ctx, PARE_EINPUT, "'scales' has %d values for rank %d", a->n,
                                    x->ndim);
            for (int i = 0; i < a->n; i++)
                vals[i] = a->floats[i];
        } else {
            st = arg(ctx, 1);
            if (!st)
                return pare_op_fail(ctx, PARE_EINPUT, "input 'scales' is required");
            rc = read_floats(ctx, st, "scales", vals, x->ndim);
            if (rc != PARE_OK)
                return rc;
        }
        rc = set_scales(ctx, c, vals, axes, x->ndim);
        if (rc != PARE_OK)
            return rc;
        for (int k = 0; k < x->ndim; k++)
            c->out[k] = (int64_t)floor((double)x->dims[k] * c->scale[k]);
        return PARE_OK;
    }

    /* opset 11+ */
    if ((rc = pick(ctx, "mode", "nearest", mode_names, 3, &v)) != PARE_OK)
        return rc;
    c->mode = (enum rs_mode)v;
    if ((rc = pick(ctx, "coordinate_transformation_mode", "half_pixel", coord_names, 7, &v)) !=
        PARE_OK)
        return rc;
    c->coord = (enum rs_coord)v;
    if ((rc = pick(ctx, "nearest_mode", "round_prefer_floor", nearest_names, 4, &v)) != PARE_OK)
        return rc;
    c->nearest = (enum rs_nearest)v;
    c->cubic_a = pare_node_attr_float(ctx->node, "cubic_coeff_a", -0.75f);
    c->exclude_outside = pare_node_attr_int(ctx->node, "exclude_outside", 0) != 0;
    c->extrapolation = pare_node_attr_float(ctx->node, "extrapolation_value", 0.0f);
    if (ctx->opset >= 18) {
        const pare_attr *a = pare_node_attr(ctx->node, "axes");
        bool seen[PARE_MAX_DIMS] = {false};
        if (a) {
            if (a->type != PARE_ATTR_INTS || a->n > x->ndim)
                return pare_op_fail(ctx, PARE_EINPUT, "'axes' must list at most %d axes", x->ndim);
            n_axes = a->n;
            for (int i = 0; i < n_axes; i++) {
                int64_t k = a->ints[i] < 0 ? a->ints[i] + x->ndim : a->ints[i];
                if (k < 0 || k >= x->ndim || seen[k])
                    return pare_op_fail(ctx, PARE_EINPUT, "bad axis %lld in 'axes'",
                                        (long long)a->ints[i]);
                seen[k] = true;
                axes[i] = (int)k;
            }
        }
    }
    {
        const pare_tensor *roi = present(ctx, 1), *scales = present(ctx, 2);
        const pare_tensor *sizes = present(ctx, 3);
        if (scales && sizes)
            return pare_op_fail(ctx, PARE_EINPUT, "give 'scales' or 'sizes', not both");
        if (!scales && !sizes)
            return pare_op_fail(ctx, PARE_EINPUT, "one of 'scales' and 'sizes' is required");
        if (c->coord == RC_TF_CROP_AND_RESIZE) {
            double r[2 * PARE_MAX_DIMS];
            if (!roi)
                return pare_op_fail(ctx, PARE_EINPUT, "'roi' is required by tf_crop_and_resize");
            rc = read_floats(ctx, roi, "roi", r, 2 * n_axes);
            if (rc != PARE_OK)
                return rc;
            for (int i = 0; i < n_axes; i++) {
                c->roi_start[axes[i]] = r[i];
                c->roi_end[axes[i]] = r[n_axes + i];
            }
        }
        if (scales) {
            rc = read_floats(ctx, scales, "scales", vals, n_axes);
            if (rc == PARE_OK)
                rc = set_scales(ctx, c, vals, axes, n_axes);
            if (rc != PARE_OK)
                return rc;
            for (int i = 0; i < n_axes; i++) {
                int k = axes[i];
                double len = (double)x->dims[k] * c->scale[k];
                if (c->coord == RC_TF_CROP_AND_RESIZE)
                    len *= c->roi_end[k] - c->roi_start[k];
                c->out[k] = (int64_t)floor(len);
            }
        } else {
            int64_t sz[PARE_MAX_DIMS];
            const char *policy = pare_node_attr_string(ctx->node, "keep_aspect_ratio_policy",
                                                       "stretch");
            rc = need_const(ctx, sizes, "sizes");
            if (rc != PARE_OK)
                return rc;
            if (sizes->dtype != PARE_I64)
                return pare_op_fail(ctx, PARE_EINPUT, "'sizes' must be int64, got %s",
                                    pare_dtype_name(sizes->dtype));
            if (pare_tensor_numel(sizes) != n_axes)
                return pare_op_fail(ctx, PARE_EINPUT, "'sizes' has %lld values, expected %d",
                                    (long long)pare_tensor_numel(sizes), n_axes);
            for (int i = 0; i < n_axes; i++) {
                sz[i] = ((const int64_t *)sizes->data)[i];
                if (sz[i] < 0)
                    return pare_op_fail(ctx, PARE_EINPUT, "'sizes' has a negative value");
            }
            if (ctx->opset < 18 || !strcmp(policy, "stretch")) {
                for (int i = 0; i < n_axes; i++) {
                    int k = axes[i];
                    c->out[k] = sz[i];
                    c->scale[k] = x->dims[k] ? (double)sz[i] / (double)x->dims[k] : 1.0;
                }
            } else if (!strcmp(policy, "not_larger") || !strcmp(policy, "not_smaller")) {
                bool larger = !strcmp(policy, "not_smaller");
                double s = larger ? 0.0 : INFINITY;
                for (int i = 0; i < n_axes; i++) {
                    double r = x->dims[axes[i]] ? (double)sz[i] / (double)x->dims[axes[i]] : 1.0;
                    s = larger ? (r > s ? r : s) : (r < s ? r : s);
                }
                for (int i = 0; i < n_axes; i++) {
                    int k = axes[i];
                    c->scale[k] = s;
                    c->out[k] = (int64_t)floor(s * (double)x->dims[k] + 0.5); /* half up, as ONNX */
                }
            } else {
                return pare_op_fail(ctx, PARE_EINPUT, "unknown keep_aspect_ratio_policy '%s'",
                                    policy);
            }
        }
    }
    if (ctx->opset >= 18 && pare_node_attr_int(ctx->node, "antialias", 0) && c->mode != RS_NEAREST)
        for (int k = 0; k < x->ndim; k++)
            if (c->scale[k] < 1.0)
                return pare_op_fail(ctx, PARE_EUNSUPPORTED,
                                    "antialiased downsampling is not supported");
    return PARE_OK;
}

static int mode_taps(enum rs_mode m)
{
    return m == RS_NEAREST ? 1 : m == RS_LINEAR ? 2 : 4;
}

static size_t taps_bytes(const resize_cfg *c)
{
    size_t bytes = 0, t = (size_t)mode_taps(c->mode);
    for (int k = 0; k < c->rank; k++)
        bytes += (size_t)c->out[k] * (t * (sizeof(int64_t) + sizeof(float)) + 1) + 64;
    return bytes;
}

static pare_status infer_common(pare_op_ctx *ctx, bool upsample)
{
    const pare_tensor *x;
    resize_cfg c;
    pare_status rc;

    if (ctx->n_in < 1 || !ctx->in[0] || ctx->n_out < 1 || !ctx->out[0])
        return pare_op_fail(ctx, PARE_EINPUT, "expects an input and an output");
    x = ctx->in[0];
    if (!pare_dtype_size(x->dtype))
        return pare_op_fail(ctx, PARE_EUNSUPPORTED, "dtype '%s' not supported",
                            pare_dtype_name(x->dtype));
    rc = resize_config(ctx, upsample, &c);
    if (rc != PARE_OK)
        return rc;
    if (c.mode != RS_NEAREST && x->dtype != PARE_F32)
        return pare_op_fail(ctx, PARE_EUNSUPPORTED, "dtype '%s' not supported in mode '%s'",
                            pare_dtype_name(x->dtype), mode_names[c.mode]);
    ctx->out[0]->dtype = x->dtype;
    ctx->out[0]->ndim = x->ndim;
    memcpy(ctx->out[0]->dims, c.out, sizeof c.out);
    ctx->scratch_bytes = taps_bytes(&c);
    return PARE_OK;
}

pare_status shape_resize_infer(pare_op_ctx *ctx)
{
    return infer_common(ctx, false);
}

pare_status shape_upsample_infer(pare_op_ctx *ctx)
{
    return infer_common(ctx, true);
}

/* ---- coordinates and taps ---- */

static double original_coord(const resize_cfg *c, int k, double x, int64_t in_len, int64_t out_len)
{
    double s = c->scale[k];
    switch (c->coord) {
    case RC_HALF_PIXEL:
        return (x + 0.5) / s - 0.5;
    case RC_HALF_PIXEL_SYMMETRIC: {
        double adj = (double)out_len / (s * (double)in_len), center = (double)in_len / 2.0;
        return center * (1.0 - adj) + (x + 0.5) / s - 0.5;
    }
    case RC_PYTORCH_HALF_PIXEL:
        return out_len > 1 ? (x + 0.5) / s - 0.5 : 0.0;
    case RC_ALIGN_CORNERS: {
        double len = s * (double)in_len; /* as the ONNX reference, not out_len */
        return len == 1.0 ? 0.0 : x * (double)(in_len - 1) / (len - 1.0);
    }
    case RC_ASYMMETRIC:
        return x / s;
    case RC_TF_HALF_PIXEL_FOR_NN:
        return (x + 0.5) / s;
    case RC_TF_CROP_AND_RESIZE: {
        double a = c->roi_start[k], b = c->roi_end[k];
        if (out_len > 1)
            return a * (double)(in_len - 1) + x * (b - a) * (double)(in_len - 1) / (double)(out_len - 1);
        return 0.5 * (a + b) * (double)(in_len - 1);
    }
    }
    return 0.0;
}

static int64_t clamp_index(int64_t i, int64_t n)
{
    return i < 0 ? 0 : i >= n ? n - 1 : i;
}

static int64_t nearest_index(const resize_cfg *c, double x, int k)
{
    switch (c->nearest) {
    case RN_ROUND_PREFER_FLOOR: return (int64_t)ceil(x - 0.5);
    case RN_ROUND_PREFER_CEIL: return (int64_t)floor(x + 0.5);
    case RN_FLOOR: return (int64_t)floor(x);
    case RN_CEIL: return (int64_t)ceil(x);
    case RN_SIMPLE: return c->scale[k] < 1.0 ? (int64_t)ceil(x) : (int64_t)x;
    }
    return 0;
}

static void cubic_coeffs(double r, double a, double *w)
{
    double r1 = r + 1.0, q = 1.0 - r, q1 = 2.0 - r;
    w[0] = ((a * r1 - 5.0 * a) * r1 + 8.0 * a) * r1 - 4.0 * a;
    w[1] = ((a + 2.0) * r - (a + 3.0)) * r * r + 1.0;
    w[2] = ((a + 2.0) * q - (a + 3.0)) * q * q + 1.0;
    w[3] = ((a * q1 - 5.0 * a) * q1 + 8.0 * a) * q1 - 4.0 * a;
}

typedef struct axis_taps {
    int t;              /* taps per output position */
    int64_t *idx;       /* out_len * t source indices (clamped) */
    float *w;           /* out_len * t weights */
    unsigned char *outside; /* out_len flags: extrapolate (tf_crop_and_resize) */
} axis_taps;

static char *align8(char *p)
{
    return (char *)(((uintptr_t)p + 7) & ~(uintptr_t)7);
}

static void build_taps(const resize_cfg *c, const pare_tensor *x, char *scratch, axis_taps *at)
{
    int tmax = mode_taps(c->mode);
    char *p = scratch;

    for (int k = 0; k < c->rank; k++) {
        int64_t in_len = x->dims[k], out_len = c->out[k];
        axis_taps *a = &at[k];
        bool single = true;

        p = align8(p);
        a->t = tmax;
        a->idx = (int64_t *)p;
        p += (size_t)out_len * (size_t)tmax * sizeof(int64_t);
        a->w = (float *)p;
        p += (size_t)out_len * (size_t)tmax * sizeof(float);
        a->outside = (unsigned char *)p;
        p += (size_t)out_len;
        for (int64_t o = 0; o < out_len; o++) {
            double xo = original_coord(c, k, (double)o, in_len, out_len);
            int64_t *ix = a->idx + o * tmax;
            float *w = a->w + o * tmax;
            double fl = floor(xo), r = xo - fl;

            a->outside[o] = c->coord == RC_TF_CROP_AND_RESIZE &&
                            (xo < 0.0 || xo > (double)(in_len - 1));
            for (int t = 0; t < tmax; t++) {
                ix[t] = 0;
                w[t] = 0.0f;
            }
            if (c->mode == RS_NEAREST) {
                ix[0] = clamp_index(nearest_index(c, xo, k), in_len);
                w[0] = 1.0f;
            } else if (r == 0.0) {
                ix[0] = clamp_index((int64_t)fl, in_len);
                w[0] = 1.0f;
            } else if (c->mode == RS_LINEAR) {
                ix[0] = clamp_index((int64_t)fl, in_len);
                ix[1] = clamp_index((int64_t)fl + 1, in_len);
                w[0] = (float)(1.0 - r);
                w[1] = (float)r;
                single = false;
            } else {
                double cw[4], sum = 0.0;
                cubic_coeffs(r, c->cubic_a, cw);
                for (int t = 0; t < 4; t++) {
                    int64_t i = (int64_t)fl - 1 + t;
                    if (c->exclude_outside && (i < 0 || i >= in_len))
                        cw[t] = 0.0;
                    sum += cw[t];
                }
                for (int t = 0; t < 4; t++) {
                    ix[t] = clamp_index((int64_t)fl - 1 + t, in_len);
                    w[t] = (float)(c->exclude_outside && sum != 0.0 ? cw[t] / sum : cw[t]);
                }
                single = false;
            }
            if (a->outside[o])
                single = false;
        }
        if (single && tmax > 1) { /* every position copies one element: compact */
            for (int64_t o = 0; o < out_len; o++)
                a->idx[o] = a->idx[o * tmax];
            for (int64_t o = 0; o < out_len; o++)
                a->w[o] = 1.0f;
            a->t = 1;
        }
    }
}

/* ---- forward ---- */

static void interp_row_f32(float *restrict dst, const float *restrict row, const axis_taps *a,
                           int64_t n, float wc, bool first)
{
    const int t = a->t;
    for (int64_t j = 0; j < n; j++) {
        const int64_t *ix = a->idx + j * t;
        const float *w = a->w + j * t;
        float v = 0.0f;
        for (int q = 0; q < t; q++)
            v += w[q] * row[ix[q]];
        dst[j] = first ? wc * v : dst[j] + wc * v;
    }
}

static void nearest_row(char *restrict dst, const char *restrict row, const int64_t *ix,
                        int64_t n, size_t es)
{
    switch (es) {
    case 1:
        for (int64_t j = 0; j < n; j++)
            dst[j] = row[ix[j]];
        break;
    case 2:
        for (int64_t j = 0; j < n; j++)
            memcpy(dst + 2 * j, row + 2 * ix[j], 2);
        break;
    case 4:
        for (int64_t j = 0; j < n; j++)
            memcpy(dst + 4 * j, row + 4 * ix[j], 4);
        break;
    default:
        for (int64_t j = 0; j < n; j++)
            memcpy(dst + (int64_t)es * j, row + (int64_t)es * ix[j], es);
    }
}

static void store_extrapolation(pare_dtype dtype, float v, unsigned char *out)
{
    switch (dtype) {
    case PARE_F32: memcpy(out, &v, 4); break;
    case PARE_F64: { double d = v; memcpy(out, &d, 8); break; }
    case PARE_F16: { uint16_t h = pare_f32_to_f16(v); memcpy(out, &h, 2); break; }
    case PARE_I64: { int64_t q = (int64_t)v; memcpy(out, &q, 8); break; }
    case PARE_I32: { int32_t q = (int32_t)v; memcpy(out, &q, 4); break; }
    case PARE_I8: case PARE_U8: case PARE_BOOL: out[0] = (unsigned char)(int)v; break;
    default: memset(out, 0, 8);
    }
}

static pare_status forward_common(pare_op_ctx *ctx, bool upsample)
{
    const pare_tensor *x = ctx->in[0];
    pare_tensor *y = ctx->out[0];
    size_t es = pare_dtype_size(x->dtype);
    axis_taps at[PARE_MAX_DIMS];
    int64_t in_strides[PARE_MAX_DIMS], rows, inner;
    unsigned char extra[8];
    resize_cfg c;
    int n;
    pare_status rc = resize_config(ctx, upsample, &c);

    if (rc != PARE_OK)
        return rc;
    n = c.rank;
    for (int k = 0; k < n; k++)
        if (y->dims[k] != c.out[k])
            return pare_op_fail(ctx, PARE_EUNSUPPORTED, "'scales' or 'sizes' changed after "
                                "planning; the output shape was fixed then");
    if (pare_tensor_numel(y) == 0)
        return PARE_OK;
    if (n == 0) {
        memcpy(y->data, x->data, es);
        return PARE_OK;
    }
    build_taps(&c, x, ctx->scratch, at);
    store_extrapolation(x->dtype, c.extrapolation, extra);
    {
        int64_t s = 1;
        for (int k = n - 1; k >= 0; k--) {
            in_strides[k] = s;
            s *= x->dims[k];
        }
    }
    inner = c.out[n - 1];
    rows = 1;
    for (int k = 0; k < n - 1; k++)
        rows *= c.out[k];
#pragma omp parallel for num_threads(ctx->n_threads) if (rows * inner > 32768) schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        int64_t idx[PARE_MAX_DIMS], rem = r, tap[PARE_MAX_DIMS];
        char *dst = (char *)y->data + r * inner * (int64_t)es;
        const axis_taps *ai = &at[n - 1];
        bool outside = false, first = true;

        for (int k = n - 2; k >= 0; k--) {
            idx[k] = rem % c.out[k];
            rem /= c.out[k];
            outside |= at[k].outside[idx[k]] != 0;
            tap[k] = 0;
        }
        if (outside) {
            for (int64_t j = 0; j < inner; j++)
                memcpy(dst + j * (int64_t)es, extra, es);
            continue;
        }
        /* Sum over every combination of outer-axis taps. */
        for (;;) {
            int64_t off = 0;
            float wc = 1.0f;
            int k;
            for (k = 0; k < n - 1; k++) {
                const axis_taps *a = &at[k];
                off += a->idx[idx[k] * a->t + tap[k]] * in_strides[k];
                wc *= a->w[idx[k] * a->t + tap[k]];
            }
            if (c.mode == RS_NEAREST) {
                nearest_row(dst, (const char *)x->data + off * (int64_t)es, ai->idx, inner, es);
            } else if (wc != 0.0f || first) {
                interp_row_f32((float *)dst, (const float *)x->data + off, ai, inner, wc, first);
                first = false;
            }
            for (k = n - 2; k >= 0; k--) {
                if (++tap[k] < at[k].t)
                    break;
                tap[k] = 0;
            }
            if (k < 0)
                break;
        }
        if (c.coord == RC_TF_CROP_AND_RESIZE)
            for (int64_t j = 0; j < inner; j++)
                if (ai->outside[j])
                    memcpy(dst + j * (int64_t)es, extra, es);
    }
    return PARE_OK;
}

pare_status shape_resize_forward(pare_op_ctx *ctx)
{
    return forward_common(ctx, false);
}

pare_status shape_upsample_forward(pare_op_ctx *ctx)
{
    return forward_common(ctx, true);
}

/* ---- backward ----
 * The adjoint of the interpolation: each dy element adds dy * (product of
 * its taps' weights) to every x element it read (nearest: one element);
 * extrapolated outputs (tf_crop_and_resize) read no element. roi, scales
 * and sizes get zero gradients. float32. */
static pare_status backward_common(pare_op_ctx *ctx, bool upsample)
{
    const pare_tensor *x = ctx->in[0], *dy = ctx->dout ? ctx->dout[0] : NULL;
    pare_tensor *dx = ctx->din ? ctx->din[0] : NULL;
    axis_taps at[PARE_MAX_DIMS];
    int64_t in_strides[PARE_MAX_DIMS], idx[PARE_MAX_DIMS] = {0}, tap[PARE_MAX_DIMS], total;
    resize_cfg c;
    int n;
    pare_status rc;

    for (int i = 1; ctx->din && i < ctx->n_in; i++)
        if (ctx->din[i] && ctx->din[i]->data)
            memset(ctx->din[i]->data, 0, pare_tensor_nbytes(ctx->din[i]));
    if (!dx)
        return PARE_OK;
    if (x->dtype != PARE_F32)
        return pare_op_fail(ctx, PARE_EUNSUPPORTED,
                            "backward: dtype '%s' not supported (float32 only)",
                            pare_dtype_name(x->dtype));
    rc = resize_config(ctx, upsample, &c);
    if (rc != PARE_OK)
        return rc;
    memset(dx->data, 0, pare_tensor_nbytes(dx));
    n = c.rank;
    total = pare_shape_numel(n, c.out);
    if (!dy || total == 0)
        return PARE_OK;
    if (n == 0) {
        pare_tensor_f32(dx)[0] = pare_tensor_f32(dy)[0];
        return PARE_OK;
    }
    build_taps(&c, x, ctx->scratch, at);
    {
        int64_t st = 1;
        for (int k = n - 1; k >= 0; k--) {
            in_strides[k] = st;
            st *= x->dims[k];
        }
    }
    for (int64_t i = 0; i < total; i++) {
        float g = pare_tensor_f32(dy)[i];
        bool outside = false;
        int k;
        for (k = 0; k < n; k++) {
            outside |= at[k].outside[idx[k]] != 0;
            tap[k] = 0;
        }
        while (!outside && g != 0.0f) {
            int64_t off = 0;
            float wc = 1.0f;
            for (k = 0; k < n; k++) {
                const axis_taps *a = &at[k];
                off += a->idx[idx[k] * a->t + tap[k]] * in_strides[k];
                wc *= a->w[idx[k] * a->t + tap[k]];
            }
            pare_tensor_f32(dx)[off] += wc * g;
            for (k = n - 1; k >= 0; k--) {
                if (++tap[k] < at[k].t)
                    break;
                tap[k] = 0;
            }
            if (k < 0)
                break;
        }
        for (k = n - 1; k >= 0; k--) {
            if (++idx[k] < c.out[k])
                break;
            idx[k] = 0;
        }
    }
    return PARE_OK;
}

pare_status shape_resize_backward(pare_op_ctx *ctx)
{
    return backward_common(ctx, false);
}

pare_status shape_upsample_backward(pare_op_ctx *ctx)
{
    return backward_common(ctx, true);
}

/* Nearest moves data (0); linear and cubic: 2 flops per tap per output,
 * with 2 or 4 taps on every axis whose length changes. */
double shape_resize_flops(const pare_op_ctx *ctx)
{
    const pare_tensor *x = ctx->in[0], *y = ctx->out[0];
    const char *m = pare_node_attr_string(ctx->node, "mode", "nearest");
    double taps = 1.0, per = !strcmp(m, "cubic") ? 4.0 : 2.0;

    if (!strcmp(m, "nearest") || !y)
        return 0.0;
    for (int k = 0; k < x->ndim && k < y->ndim; k++)
        if (x->dims[k] != y->dims[k])
            taps *= per;
    return 2.0 * taps * (double)pare_tensor_numel(y);
}
