/* Activations: Relu, Clip, LeakyRelu, PRelu, Sigmoid, Tanh, HardSigmoid,
 * HardSwish, Gelu, Elu, Selu, Celu, Softplus, Softsign, ThresholdedRelu,
 * Mish, and Softmax / LogSoftmax in both their forms (opset < 13: coerce to
 * 2-D at `axis`; opset >= 13: along one `axis`).
 *
 * Point-wise kernels are row functions over contiguous data (float32; Relu
 * and Clip also take float64 and integers) with attributes passed as `arg`.
 * exp / tanh / erf go through the vectorizable vm_* helpers. */
#include <float.h>
#include <math.h>
#include <omp.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "ops/broadcast.h"
#include "ops/families.h"

#define DT_N 17

typedef struct act_args {
    float alpha, beta, gamma;
} act_args;

/* o[i] = EXPR(a) with alpha, beta, gamma from act_args. */
#define ACT_ROW(NAME, EXPR)                                                      \
    VM_CLONES static void NAME(const void *arg, int64_t n, const void *const *in,          \
                     const int64_t *s, void *out)                                \
    {                                                                            \
        const act_args *p = arg;                                                 \
        const float alpha = p->alpha, beta = p->beta, gamma = p->gamma;          \
        const float *restrict x = in[0];                                         \
        float *restrict o = out;                                                 \
        (void)s;                                                                 \
        (void)alpha;                                                             \
        (void)beta;                                                              \
        (void)gamma;                                                             \
        for (int64_t i = 0; i < n; i++) {                                        \
            const float a = x[i];                                                \
            o[i] = (EXPR);                                                       \
        }                                                                        \
    }

/* NaN propagates through Relu (a < 0 is false for NaN). */
ACT_ROW(relu_f32, a < 0.0f ? 0.0f : a)
ACT_ROW(leaky_relu_f32, vm_sel(a < 0.0f, alpha * a, a))
ACT_ROW(sigmoid_f32, vm_sigmoidf(a))
ACT_ROW(tanh_f32, vm_tanhf(a))
ACT_ROW(hard_sigmoid_f32, vm_clampf(alpha * a + beta, 0.0f, 1.0f))
ACT_ROW(hard_swish_f32, a * vm_clampf(alpha * a + beta, 0.0f, 1.0f))
ACT_ROW(gelu_f32, 0.5f * a * (1.0f + vm_erff(a * 0.70710678118654752f)))
ACT_ROW(gelu_tanh_f32,
        0.5f * a * (1.0f + vm_tanhf(0.79788456080286536f * (a + 0.044715f * a * a * a))))
ACT_ROW(elu_f32, a < 0.0f ? alpha * expm1f(a) : a)
ACT_ROW(selu_f32, a <= 0.0f ? gamma * alpha * expm1f(a) : gamma * a)
ACT_ROW(celu_f32, (a > 0.0f ? a : 0.0f) + (a < 0.0f ? alpha * expm1f(a / alpha) : 0.0f))
ACT_ROW(softplus_f32, a > 0.0f ? a + log1pf(expf(-a)) : log1pf(expf(a)))
ACT_ROW(softsign_f32, a / (1.0f + fabsf(a)))
ACT_ROW(thresholded_relu_f32, a > alpha ? a : 0.0f)
ACT_ROW(mish_f32, a * tanhf(a > 0.0f ? a + log1pf(expf(-a)) : log1pf(expf(a))))

/* Relu for other dtypes. */
#define RELU_T(NAME, T)                                                          \
    VM_CLONES static void NAME(const void *arg, int64_t n, const void *const *in,          \
                     const int64_t *s, void *out)                                \
    {                                                                            \
        const T *restrict x = in[0];                                             \
        T *restrict o = out;                                                     \
        (void)arg;                                                               \
        (void)s;                                                                 \
        for (int64_t i = 0; i < n; i++)                                          \
            o[i] = x[i] < 0 ? 0 : x[i];                                          \
    }
RELU_T(relu_f64, double)
RELU_T(relu_i8, int8_t)
RELU_T(relu_i16, int16_t)
RELU_T(relu_i32, int32_t)
RELU_T(relu_i64, int64_t)

typedef struct act_op {
    bcast_row_fn fns[DT_N];
    int cost;   /* relative cost per element, for the threading threshold */
} act_op;

/* Reads the op's attributes into args; validates them. */
typedef pare_status (*act_attr_fn)(pare_op_ctx *ctx, act_args *args, const act_op **op);

static pare_status act_infer(pare_op_ctx *ctx, act_attr_fn attrs)
{
    const pare_tensor *x;
    act_args args;
    const act_op *op;
    pare_status rc = ew_check_inputs(ctx, 1, 1);

    if (rc == PARE_OK)
        rc = ew_check_output(ctx);
    if (rc == PARE_OK)
        rc = attrs(ctx, &args, &op);
    if (rc != PARE_OK)
        return rc;
    x = ctx->in[0];
    if ((unsigned)x->dtype >= DT_N || !op->fns[x->dtype])
        return ew_bad_dtype(ctx, NULL, x->dtype);
    ew_set_shape(ctx->out[0], x->dtype, x->ndim, x->dims);
    return PARE_OK;
}

static pare_status act_forward(pare_op_ctx *ctx, act_attr_fn attrs)
{
    const pare_tensor *x = ctx->in[0];
    act_args args;
    const act_op *op;
    bcast_plan p;
    const void *ptr[1] = { x->data };
    size_t esz = pare_dtype_size(x->dtype);
    pare_status rc = attrs(ctx, &args, &op);

    if (rc != PARE_OK)
        return rc;
    bcast_plan_flat(&p, 1, pare_tensor_numel(x));
    bcast_run(&p, op->fns[x->dtype], &args, ptr, &esz, ctx->out[0]->data, esz,
              ew_threads(ctx, p.numel * op->cost));
    return PARE_OK;
}

#define ACT_OP(name, attr_fn)                                                    \
    static pare_status name##_infer(pare_op_ctx *ctx) { return act_infer(ctx, attr_fn); } \
    static pare_status name##_forward(pare_op_ctx *ctx) { return act_forward(ctx, attr_fn); }

/* An attribute reader for ops whose attributes are alpha/beta/gamma floats
 * with fixed defaults; op_<name> must be defined first. */
#define SIMPLE_ATTRS(name, A, B, G)                                              \
    static pare_status name##_attrs(pare_op_ctx *ctx, act_args *a, const act_op **op) \
    {                                                                            \
        a->alpha = pare_node_attr_float(ctx->node, "alpha", A);                  \
        a->beta = pare_node_attr_float(ctx->node, "beta", B);                    \
        a->gamma = pare_node_attr_float(ctx->node, "gamma", G);                  \
        *op = &op_##name;                                                        \
        return PARE_OK;                                                          \
    }                                                                            \
    ACT_OP(name, name##_attrs)

#define F32_ONLY(name, fn, cost_) static const act_op op_##name = { .fns = { [PARE_F32] = fn }, .cost = cost_ }

static const act_op op_relu = {
    .fns = { [PARE_F32] = relu_f32, [PARE_F64] = relu_f64, [PARE_I8] = relu_i8,
             [PARE_I16] = relu_i16, [PARE_I32] = relu_i32, [PARE_I64] = relu_i64 },
    .cost = 1,
};
F32_ONLY(leaky_relu, leaky_relu_f32, 1);
F32_ONLY(sigmoid, sigmoid_f32, 4);
F32_ONLY(tanh, tanh_f32, 4);
F32_ONLY(hard_sigmoid, hard_sigmoid_f32, 1);
F32_ONLY(elu, elu_f32, 8);
F32_ONLY(selu, selu_f32, 8);
F32_ONLY(softplus, softplus_f32, 16);
F32_ONLY(softsign, softsign_f32, 2);
F32_ONLY(thresholded_relu, thresholded_relu_f32, 1);
F32_ONLY(mish, mish_f32, 16);
F32_ONLY(hard_swish, hard_swish_f32, 1);
F32_ONLY(celu, celu_f32, 8);
F32_ONLY(gelu, gelu_f32, 4);
F32_ONLY(gelu_tanh, gelu_tanh_f32, 4);

SIMPLE_ATTRS(relu, 0, 0, 0)
SIMPLE_ATTRS(leaky_relu, 0.01f, 0, 0)
SIMPLE_ATTRS(sigmoid, 0, 0, 0)
SIMPLE_ATTRS(tanh, 0, 0, 0)
SIMPLE_ATTRS(hard_sigmoid, 0.2f, 0.5f, 0)
SIMPLE_ATTRS(elu, 1.0f, 0, 0)
SIMPLE_ATTRS(selu, 1.67326319217681884765625f, 0, 1.05070102214813232421875f)
SIMPLE_ATTRS(softplus, 0, 0, 0)
SIMPLE_ATTRS(softsign, 0, 0, 0)
SIMPLE_ATTRS(thresholded_relu, 1.0f, 0, 0)
SIMPLE_ATTRS(mish, 0, 0, 0)

static pare_status hard_swish_attrs(pare_op_ctx *ctx, act_args *a, const act_op **op)
{
    (void)ctx;
    a->alpha = 1.0f / 6.0f;
    a->beta = 0.5f;
    a->gamma = 0;
    *op = &op_hard_swish;
    return PARE_OK;
}
ACT_OP(hard_swish, hard_swish_attrs)

static pare_status celu_attrs(pare_op_ctx *ctx, act_args *a, const act_op **op)
{
    a->alpha = pare_node_attr_float(ctx->node, "alpha", 1.0f);
    a->beta = a->gamma = 0;
    *op = &op_celu;
    if (a->alpha == 0.0f)
        return pare_op_fail(ctx, PARE_EINPUT, "attribute 'alpha' must not be 0");
    return PARE_OK;
}
ACT_OP(celu, celu_attrs)

static pare_status gelu_attrs(pare_op_ctx *ctx, act_args *a, const act_op **op)
{
    const char *approx = pare_node_attr_string(ctx->node, "approximate", "none");

    memset(a, 0, sizeof *a);
    if (!strcmp(approx, "none")) {
        *op = &op_gelu;
    } else if (!strcmp(approx, "tanh")) {
        *op = &op_gelu_tanh;
    } else {
        *op = &op_gelu;
        return pare_op_fail(ctx, PARE_EINPUT,
                            "attribute 'approximate' is '%s', expected 'none' or 'tanh'", approx);
    }
    return PARE_OK;
}
ACT_OP(gelu, gelu_attrs)

/* ---- PRelu: slope broadcasts unidirectionally to X ---- */

VM_CLONES static void prelu_f32(const void *arg, int64_t n, const void *const *in, const int64_t *s,
                      void *out)
{
    const float *restrict x = in[0];
    const float *restrict sl = in[1];
    float *restrict o = out;
    (void)arg;

    if (s[1]) {
        for (int64_t i = 0; i < n; i++)
            o[i] = vm_sel(x[i] < 0.0f, sl[i] * x[i], x[i]);
    } else {
        const float a = sl[0];
        for (int64_t i = 0; i < n; i++)
            o[i] = vm_sel(x[i] < 0.0f, a * x[i], x[i]);
    }
}

/* Slope as the kernel sees it. Opset < 7 (PRelu-6): a slope of more than
 * one element holds one value per channel (dim 1); from 7 it broadcasts
 * unidirectionally, numpy style. */
static void prelu_slope_view(const pare_op_ctx *ctx, pare_tensor *view)
{
    const pare_tensor *x = ctx->in[0], *slope = ctx->in[1];
    int64_t n = pare_tensor_numel(slope);

    pare_tensor_view(view, slope->dtype, slope->ndim, slope->dims, slope->data);
    if (ctx->opset < 7 && x->ndim >= 2 && n > 1 && n == x->dims[1]) {
        view->ndim = x->ndim - 1;
        view->dims[0] = n;
        for (int d = 1; d < view->ndim; d++)
            view->dims[d] = 1;
    }
}

static pare_status prelu_infer(pare_op_ctx *ctx)
{
    const pare_tensor *x, *slope;
    pare_tensor sv;
    int64_t dims[PARE_MAX_DIMS];
    int nd;
    pare_status rc = ew_check_inputs(ctx, 2, 2);

    if (rc == PARE_OK)
        rc = ew_check_output(ctx);
    if (rc != PARE_OK)
        return rc;
    x = ctx->in[0];
    prelu_slope_view(ctx, &sv);
    slope = &sv;
    if (x->dtype != PARE_F32)
        return ew_bad_dtype(ctx, NULL, x->dtype);
    if (slope->dtype != x->dtype)
        return pare_op_fail(ctx, PARE_EINPUT, "slope dtype '%s' differs from input dtype '%s'",
                            pare_dtype_name(slope->dtype), pare_dtype_name(x->dtype));
    rc = ew_broadcast(ctx, x->ndim, x->dims, slope->ndim, slope->dims, &nd, dims);
    if (rc != PARE_OK)
        return rc;
    if (nd != x->ndim || memcmp(dims, x->dims, sizeof(int64_t) * (size_t)nd)) {
        char sx[128], ss[128];
        return pare_op_fail(ctx, PARE_EINPUT, "slope shape %s does not broadcast to input shape %s",
                            pare_shape_format(slope->ndim, slope->dims, ss, sizeof ss),
                            pare_shape_format(x->ndim, x->dims, sx, sizeof sx));
    }
    ew_set_shape(ctx->out[0], x->dtype, x->ndim, x->dims);
    return PARE_OK;
}

static pare_status prelu_forward(pare_op_ctx *ctx)
{
    bcast_plan p;
    pare_tensor sv;
    const pare_tensor *ins[2] = { ctx->in[0], &sv };
    const void *ptr[2] = { ctx->in[0]->data, ctx->in[1]->data };
    size_t esz[2] = { 4, 4 };

    prelu_slope_view(ctx, &sv);
    bcast_plan_tensors(&p, 2, ins, ctx->out[0]);
    bcast_run(&p, prelu_f32, NULL, ptr, esz, ctx->out[0]->data, 4, ew_threads(ctx, p.numel));
    return PARE_OK;
}

/* ---- Clip: attributes min/max (opset 6-10), optional inputs (11+) ---- */

#define CLIP_T(DT, T)                                                            \
    VM_CLONES static void clip_##DT(const void *arg, int64_t n, const void *const *in,     \
                          const int64_t *s, void *out)                           \
    {                                                                            \
        const T *lim = arg;                                                      \
        const T lo = lim[0], hi = lim[1];                                        \
        const T *restrict x = in[0];                                             \
        T *restrict o = out;                                                     \
        (void)s;                                                                 \
        for (int64_t i = 0; i < n; i++) {                                        \
            T v = x[i] < lo ? lo : x[i];                                         \
            o[i] = v > hi ? hi : v;                                              \
        }                                                                        \
    }
CLIP_T(F32, float)
CLIP_T(F64, double)
CLIP_T(I8, int8_t)
CLIP_T(U8, uint8_t)
CLIP_T(I16, int16_t)
CLIP_T(U16, uint16_t)
CLIP_T(I32, int32_t)
CLIP_T(U32, uint32_t)
CLIP_T(I64, int64_t)
CLIP_T(U64, uint64_t)

static const bcast_row_fn clip_fns[DT_N] = {
    [PARE_F32] = clip_F32, [PARE_F64] = clip_F64, [PARE_I8] = clip_I8, [PARE_U8] = clip_U8,
    [PARE_I16] = clip_I16, [PARE_U16] = clip_U16, [PARE_I32] = clip_I32, [PARE_U32] = clip_U32,
    [PARE_I64] = clip_I64, [PARE_U64] = clip_U64,
};

/* Fills lim[0] (min) and lim[1] (max) in x's dtype: the type's limits, then
 * the attributes (opset < 11) or the optional scalar inputs. */
#define CLIP_LIMITS(DT, T, LO, HI)                                               \
    case PARE_##DT: {                                                            \
        T *l = lim;                                                              \
        l[0] = LO;                                                               \
        l[1] = HI;                                                               \
        if (ctx->opset < 11) {                                                   \
            l[0] = (T)pare_node_attr_float(ctx->node, "min", (float)(LO));       \
            l[1] = (T)pare_node_attr_float(ctx->node, "max", (float)(HI));       \
        } else {                                                                 \
            if (mn)                                                              \
                l[0] = *(const T *)mn->data;                                     \
            if (mx)                                                              \
                l[1] = *(const T *)mx->data;                                     \
        }                                                                        \
        break;                                                                   \
    }

static void clip_limits(const pare_op_ctx *ctx, void *lim)
{
    const pare_tensor *mn = ctx->n_in > 1 ? ctx->in[1] : NULL;
    const pare_tensor *mx = ctx->n_in > 2 ? ctx->in[2] : NULL;

    switch (ctx->in[0]->dtype) {
    CLIP_LIMITS(F32, float, -FLT_MAX, FLT_MAX)
    CLIP_LIMITS(F64, double, -DBL_MAX, DBL_MAX)
    CLIP_LIMITS(I8, int8_t, INT8_MIN, INT8_MAX)
    CLIP_LIMITS(U8, uint8_t, 0, UINT8_MAX)
    CLIP_LIMITS(I16, int16_t, INT16_MIN, INT16_MAX)
    CLIP_LIMITS(U16, uint16_t, 0, UINT16_MAX)
    CLIP_LIMITS(I32, int32_t, INT32_MIN, INT32_MAX)
    CLIP_LIMITS(U32, uint32_t, 0, UINT32_MAX)
    CLIP_LIMITS(I64, int64_t, INT64_MIN, INT64_MAX)
    CLIP_LIMITS(U64, uint64_t, 0, UINT64_MAX)
    default:
        break;
    }
}

static pare_status clip_infer(pare_op_ctx *ctx)
{
    const pare_tensor *x;
    pare_status rc = ew_check_inputs(ctx, 1, ctx->opset < 11 ? 1 : 3);

    if (rc == PARE_OK)
        rc = ew_check_output(ctx);
    if (rc != PARE_OK)
        return rc;
    x = ctx->in[0];
    if ((unsigned)x->dtype >= DT_N || !clip_fns[x->dtype] ||
        (ctx->opset < 12 && x->dtype != PARE_F32 && x->dtype != PARE_F64))
        return ew_bad_dtype(ctx, NULL, x->dtype);
    for (int i = 1; i < ctx->n_in; i++) {
        const pare_tensor *t = ctx->in[i];
        if (!t)
            continue;
        if (t->dtype != x->dtype)
            return pare_op_fail(ctx, PARE_EINPUT, "%s dtype '%s' differs from input dtype '%s'",
                                i == 1 ? "min" : "max", pare_dtype_name(t->dtype),
                                pare_dtype_name(x->dtype));
        if (pare_tensor_numel(t) != 1)
            return pare_op_fail(ctx, PARE_EINPUT, "%s must be a scalar, got %lld elements",
                                i == 1 ? "min" : "max", (long long)pare_tensor_numel(t));
    }
    ew_set_shape(ctx->out[0], x->dtype, x->ndim, x->dims);
    return PARE_OK;
}

static pare_status clip_forward(pare_op_ctx *ctx)
{
    const pare_tensor *x = ctx->in[0];
    uint64_t lim[2]; /* two elements of x's dtype, at most 8 bytes each */
    bcast_plan p;
    const void *ptr[1] = { x->data };
    size_t esz = pare_dtype_size(x->dtype);

    clip_limits(ctx, lim);
    bcast_plan_flat(&p, 1, pare_tensor_numel(x));
    bcast_run(&p, clip_fns[x->dtype], lim, ptr, &esz, ctx->out[0]->data, esz,
              ew_threads(ctx, p.numel));
    return PARE_OK;
}

/* ---- Softmax / LogSoftmax ---- */

typedef struct softmax_shape {
    int64_t outer, n, inner;   /* x viewed as (outer, n, inner), normalized over n */
} softmax_shape;

static pare_status softmax_shape_of(pare_op_ctx *ctx, softmax_shape *sh)
{
    const pare_tensor *x = ctx->in[0];
    bool legacy = ctx->opset < 13;
    int64_t axis_attr = pare_node_attr_int(ctx->node, "axis", legacy ? 1 : -1);
    int axis;
    pare_status rc;

    if (x->ndim == 0) {
        /* A scalar is a single row of one element in either form. */
        sh->outer = sh->n = sh->inner = 1;
        return axis_attr == 0 || axis_attr == -1 ? PARE_OK :
               pare_op_fail(ctx, PARE_EINPUT, "axis %lld is out of range for rank 0",
                            (long long)axis_attr);
    }
    rc = ew_axis(ctx, axis_attr, x->ndim, 0, &axis);
    if (rc != PARE_OK)
        return rc;
    sh->outer = pare_shape_numel(axis, x->dims);
    if (legacy) {
        /* Coerced to 2-D: (prod(dims[:axis]), prod(dims[axis:])). */
        sh->n = pare_shape_numel(x->ndim - axis, x->dims + axis);
        sh->inner = 1;
    } else {
        sh->n = x->dims[axis];
        sh->inner = pare_shape_numel(x->ndim - axis - 1, x->dims + axis + 1);
    }
    return PARE_OK;
}

static pare_status softmax_infer(pare_op_ctx *ctx)
{
    const pare_tensor *x;
    softmax_shape sh;
    pare_status rc = ew_check_inputs(ctx, 1, 1);

    if (rc == PARE_OK)
        rc = ew_check_output(ctx);
    if (rc != PARE_OK)
        return rc;
    x = ctx->in[0];
    if (x->dtype != PARE_F32)
        return ew_bad_dtype(ctx, NULL, x->dtype);
    rc = softmax_shape_of(ctx, &sh);
    if (rc != PARE_OK)
        return rc;
    ew_set_shape(ctx->out[0], x->dtype, x->ndim, x->dims);
    return PARE_OK;
}

/* One contiguous row of n. */
VM_CLONES static void softmax_row(const float *restrict x, float *restrict y, int64_t n, bool log_out)
{
    const float m = vm_max_f32(x, n);
    float sum;

    for (int64_t j = 0; j < n; j++)
        y[j] = vm_expf(x[j] - m);
    sum = vm_sum_f32(y, n);
    if (log_out) {
        /* (x - m) first: m + log(sum) would lose the low digits of large x */
        const float ls = logf(sum);
        for (int64_t j = 0; j < n; j++)
            y[j] = (x[j] - m) - ls;
    } else {
        const float inv = 1.0f / sum;
        for (int64_t j = 0; j < n; j++)
            y[j] *= inv;
    }
}

#define SOFTMAX_COLS 256

/* A (n, inner) block normalized down its columns, SOFTMAX_COLS at a time. */
VM_CLONES static void softmax_block(const float *x, float *y, int64_t n, int64_t inner, bool log_out)
{
    float m[SOFTMAX_COLS], s[SOFTMAX_COLS];

    for (int64_t c0 = 0; c0 < inner; c0 += SOFTMAX_COLS) {
        const int64_t w = inner - c0 < SOFTMAX_COLS ? inner - c0 : SOFTMAX_COLS;
        for (int64_t c = 0; c < w; c++) {
            m[c] = x[c0 + c];
            s[c] = 0.0f;
        }
        for (int64_t j = 1; j < n; j++) {
            const float *restrict xr = x + j * inner + c0;
            for (int64_t c = 0; c < w; c++)
                m[c] = xr[c] > m[c] || xr[c] != xr[c] ? xr[c] : m[c];
        }
        for (int64_t j = 0; j < n; j++) {
            const float *restrict xr = x + j * inner + c0;
            float *restrict yr = y + j * inner + c0;
            for (int64_t c = 0; c < w; c++) {
                yr[c] = vm_expf(xr[c] - m[c]);
                s[c] += yr[c];
            }
        }
        if (log_out) {
            for (int64_t c = 0; c < w; c++)
                s[c] = logf(s[c]);
            for (int64_t j = 0; j < n; j++) {
                const float *restrict xr = x + j * inner + c0;
                float *restrict yr = y + j * inner + c0;
                for (int64_t c = 0; c < w; c++)
                    yr[c] = (xr[c] - m[c]) - s[c];
            }
        } else {
            for (int64_t c = 0; c < w; c++)
                s[c] = 1.0f / s[c];
            for (int64_t j = 0; j < n; j++) {
                float *restrict yr = y + j * inner + c0;
                for (int64_t c = 0; c < w; c++)
                    yr[c] *= s[c];
            }
        }
    }
}

/* Rows (outer indices) [lo, hi). */
static void softmax_range(const float *x, float *y, const softmax_shape *sh, bool log_out,
                          int64_t lo, int64_t hi)
{
    const int64_t blk = sh->n * sh->inner;

    for (int64_t o = lo; o < hi; o++) {
        if (sh->inner == 1)
            softmax_row(x + o * blk, y + o * blk, sh->n, log_out);
        else
            softmax_block(x + o * blk, y + o * blk, sh->n, sh->inner, log_out);
    }
}

static pare_status softmax_run(pare_op_ctx *ctx, bool log_out)
{
    const float *x = ctx->in[0]->data;
    float *y = ctx->out[0]->data;
    softmax_shape sh;
    int64_t work;
    int nt;
    pare_status rc = softmax_shape_of(ctx, &sh);

    if (rc != PARE_OK)
        return rc;
    if (sh.n == 0)
        return PARE_OK;
    work = sh.outer * sh.n * sh.inner * 4;
    nt = sh.outer > 1 ? ew_threads(ctx, work) : 1;
    if (nt <= 1) {
        softmax_range(x, y, &sh, log_out, 0, sh.outer);
        return PARE_OK;
    }
#pragma omp parallel num_threads(nt)
    {
        int nth = omp_get_num_threads(), tid = omp_get_thread_num();
        softmax_range(x, y, &sh, log_out, sh.outer * tid / nth, sh.outer * (tid + 1) / nth);
    }
    return PARE_OK;
}

static pare_status softmax_forward(pare_op_ctx *ctx) { return softmax_run(ctx, false); }
static pare_status log_softmax_forward(pare_op_ctx *ctx) { return softmax_run(ctx, true); }
#define log_softmax_infer softmax_infer

/* Hardmax: 1 at the first maximum along the axis (same two forms), else 0. */
static pare_status hardmax_forward(pare_op_ctx *ctx)
{
    const float *x = ctx->in[0]->data;
    float *y = ctx->out[0]->data;
    softmax_shape sh;
    pare_status rc = softmax_shape_of(ctx, &sh);

    if (rc != PARE_OK)
        return rc;
    memset(y, 0, (size_t)pare_tensor_numel(ctx->out[0]) * sizeof(float));
    for (int64_t o = 0; o < sh.outer; o++)
        for (int64_t c = 0; c < sh.inner; c++) {
            const float *xr = x + o * sh.n * sh.inner + c;
            int64_t best = 0;
            for (int64_t j = 1; j < sh.n; j++)
                if (xr[j * sh.inner] > xr[best * sh.inner])
                    best = j;
            if (sh.n > 0)
                y[(o * sh.n + best) * sh.inner + c] = 1.0f;
        }
    return PARE_OK;
}
#define hardmax_infer softmax_infer

static double softmax_flops(const pare_op_ctx *ctx)
{
    /* max, subtract + exp, sum, scale */
    return 4.0 * ew_flops_out(ctx);
}

/* ---- backward (float32) ----
 *
 * Kernels OVERWRITE the non-NULL din entries; no incoming gradient (dout
 * NULL) zeroes them. At kinks the one-sided choice is: Relu 0 at x = 0,
 * LeakyRelu / PRelu the x >= 0 side, Clip passes the gradient on the closed
 * range [min, max]. */

static void act_zero_grads(pare_op_ctx *ctx)
{
    for (int i = 0; i < ctx->n_in; i++)
        if (ctx->din[i] && ctx->din[i]->data)
            memset(ctx->din[i]->data, 0, pare_tensor_nbytes(ctx->din[i]));
}

enum act_grad {
    AG_RELU, AG_LEAKY, AG_SIGMOID, AG_TANH, AG_HSIG, AG_HSWISH, AG_GELU, AG_GELU_TANH,
    AG_ELU, AG_SELU, AG_CELU, AG_SOFTPLUS, AG_SOFTSIGN, AG_THRESH
};

#define AG_LOOP(EXPR)                                                            \
    for (int64_t i = 0; i < n; i++) {                                            \
        const float a = x[i], yv = y[i];                                         \
        (void)a;                                                                 \
        (void)yv;                                                                \
        dx[i] = g[i] * (EXPR);                                                   \
    }                                                                            \
    break

/* 1 where lo < v < hi, else 0 (branch-free). */
VM_INLINE float vm_inside(float v, float lo, float hi) { return vm_sel(v > lo, vm_sel(v < hi, 1.0f, 0.0f), 0.0f); }

VM_CLONES static void act_grad_run(int kind, const act_args *p, int64_t n, const float *x,
                                   const float *y, const float *g, float *dx)
{
    const float alpha = p->alpha, beta = p->beta, gamma = p->gamma;
    const float c = 0.79788456080286536f, k = 0.044715f;

    switch (kind) {
    case AG_RELU: AG_LOOP(vm_sel(a > 0.0f, 1.0f, 0.0f));
    case AG_LEAKY: AG_LOOP(vm_sel(a < 0.0f, alpha, 1.0f));
    case AG_SIGMOID: AG_LOOP(yv * (1.0f - yv));
    case AG_TANH: AG_LOOP(1.0f - yv * yv);
    case AG_HSIG: AG_LOOP(alpha * vm_inside(alpha * a + beta, 0.0f, 1.0f));
    case AG_HSWISH:
        AG_LOOP(vm_clampf(alpha * a + beta, 0.0f, 1.0f) +
                alpha * a * vm_inside(alpha * a + beta, 0.0f, 1.0f));
    case AG_GELU:
        /* Phi(x) + x phi(x) */
        AG_LOOP(0.5f * (1.0f + vm_erff(a * 0.70710678118654752f)) +
                a * 0.39894228040143268f * vm_expf(-0.5f * a * a));
    case AG_GELU_TANH:
        /* 0.5 (1 + t) + 0.5 x (1 - t^2) c (1 + 3 k x^2), t = tanh(c (x + k x^3)) */
        for (int64_t i = 0; i < n; i++) {
            const float a = x[i];
            const float t = vm_tanhf(c * (a + k * a * a * a));
            dx[i] = g[i] * (0.5f * (1.0f + t) + 0.5f * a * (1.0f - t * t) * c * (1.0f + 3.0f * k * a * a));
        }
        break;
    case AG_ELU: AG_LOOP(vm_sel(a < 0.0f, alpha * vm_expf(a), 1.0f));
    case AG_SELU: AG_LOOP(vm_sel(a <= 0.0f, gamma * alpha * vm_expf(a), gamma));
    case AG_CELU: AG_LOOP(vm_sel(a < 0.0f, vm_expf(a / alpha), 1.0f));
    case AG_SOFTPLUS: AG_LOOP(vm_sigmoidf(a));
    case AG_SOFTSIGN: AG_LOOP(1.0f / ((1.0f + fabsf(a)) * (1.0f + fabsf(a))));
    case AG_THRESH: AG_LOOP(vm_sel(a > alpha, 1.0f, 0.0f));
    default:
        break;
    }
}

static pare_status act_backward(pare_op_ctx *ctx, act_attr_fn attrs, int kind)
{
    const pare_tensor *x = ctx->in[0];
    act_args args;
    const act_op *op;
    pare_status rc;

    if (!ctx->din[0])
        return PARE_OK;
    if (x->dtype != PARE_F32)
        return ew_bad_dtype(ctx, "backward", x->dtype);
    rc = attrs(ctx, &args, &op);
    if (rc != PARE_OK)
        return rc;
    if (!ctx->dout[0]) {
        act_zero_grads(ctx);
        return PARE_OK;
    }
    if (op == &op_gelu_tanh)
        kind = AG_GELU_TANH;
    act_grad_run(kind, &args, pare_tensor_numel(x), x->data, ctx->out[0]->data,
                 ctx->dout[0]->data, ctx->din[0]->data);
    return PARE_OK;
}

#define ACT_BACKWARD(name, kind)                                                 \
    static pare_status name##_backward(pare_op_ctx *ctx) { return act_backward(ctx, name##_attrs, kind); }
ACT_BACKWARD(relu, AG_RELU)
ACT_BACKWARD(leaky_relu, AG_LEAKY)
ACT_BACKWARD(sigmoid, AG_SIGMOID)
ACT_BACKWARD(tanh, AG_TANH)
ACT_BACKWARD(hard_sigmoid, AG_HSIG)
ACT_BACKWARD(hard_swish, AG_HSWISH)
ACT_BACKWARD(gelu, AG_GELU)
ACT_BACKWARD(elu, AG_ELU)
ACT_BACKWARD(selu, AG_SELU)
ACT_BACKWARD(celu, AG_CELU)
ACT_BACKWARD(softplus, AG_SOFTPLUS)
ACT_BACKWARD(softsign, AG_SOFTSIGN)
ACT_BACKWARD(thresholded_relu, AG_THRESH)

/* PRelu: dx = g (x >= 0) or g slope (x < 0); dslope = g x where x < 0,
 * summed to the slope's shape (through scratch when it broadcasts). */
static void prelu_grad_row(const void *arg, int64_t n, const void *const *in, const int64_t *s,
                           void *out)
{
    const float *x = in[0], *sl = in[1], *g = in[2];
    const int which = *(const int *)arg;
    float *o = out;

    if (which == 0) {
        for (int64_t i = 0; i < n; i++)
            o[i] = x[i] < 0.0f ? g[i] * sl[i * s[1]] : g[i];
    } else {
        for (int64_t i = 0; i < n; i++)
            o[i] = x[i] < 0.0f ? g[i] * x[i] : 0.0f;
    }
}

static pare_status prelu_backward(pare_op_ctx *ctx)
{
    const pare_tensor *x = ctx->in[0];
    pare_tensor sv;
    const pare_tensor *ins[3] = { x, &sv, x };

    if (!ctx->din[0] && !ctx->din[1])
        return PARE_OK;
    if (x->dtype != PARE_F32)
        return ew_bad_dtype(ctx, "backward", x->dtype);
    if (!ctx->dout[0]) {
        act_zero_grads(ctx);
        return PARE_OK;
    }
    prelu_slope_view(ctx, &sv);
    for (int w = 0; w < 2; w++) {
        const void *ptr[3] = { x->data, ctx->in[1]->data, ctx->dout[0]->data };
        size_t esz[3] = { 4, 4, 4 };
        const pare_tensor *t = w == 0 ? x : &sv;
        bcast_plan p;
        float *full;

        if (!ctx->din[w])
            continue;
        full = pare_tensor_numel(t) == pare_tensor_numel(x) ? ctx->din[w]->data : ctx->scratch;
        bcast_plan_tensors(&p, 3, ins, x);
        bcast_run(&p, prelu_grad_row, &w, ptr, esz, full, 4, ew_threads(ctx, p.numel));
        bcast_reduce_grad(full, x->ndim, x->dims, ctx->din[w]->data, t->ndim, t->dims);
    }
    return PARE_OK;
}

static size_t prelu_bscratch(const pare_op_ctx *ctx)
{
    return (size_t)pare_tensor_numel(ctx->in[0]) * sizeof(float);
}

/* Clip: dx = g on [min, max], 0 outside; the optional min / max inputs
 * (opset >= 11) get the sum of g where x is below / above them. */
static pare_status clip_backward(pare_op_ctx *ctx)
{
    const pare_tensor *x = ctx->in[0];
    float lim[2];
    const float *xv = x->data, *g;
    float *dx;
    double dmin = 0.0, dmax = 0.0;
    int64_t n = pare_tensor_numel(x);

    if (x->dtype != PARE_F32)
        return ew_bad_dtype(ctx, "backward", x->dtype);
    if (!ctx->dout[0]) {
        act_zero_grads(ctx);
        return PARE_OK;
    }
    clip_limits(ctx, lim);
    g = ctx->dout[0]->data;
    dx = ctx->din[0] ? ctx->din[0]->data : NULL;
    for (int64_t i = 0; i < n; i++) {
        const float a = xv[i];
        const bool lo = a < lim[0], hi = !lo && a > lim[1];
        if (dx)
            dx[i] = lo || hi ? 0.0f : g[i];
        dmin += lo ? g[i] : 0.0f;
        dmax += hi ? g[i] : 0.0f;
    }
    if (ctx->n_in > 1 && ctx->in[1] && ctx->din[1])
        pare_tensor_f32(ctx->din[1])[0] = (float)dmin;
    if (ctx->n_in > 2 && ctx->in[2] && ctx->din[2])
        pare_tensor_f32(ctx->din[2])[0] = (float)dmax;
    return PARE_OK;
}

/* Softmax: dx = y (g - sum(g y)); LogSoftmax: dx = g - exp(y) sum(g), the
 * sums along the normalized axis (either opset form, via softmax_shape). */
static pare_status softmax_backward_run(pare_op_ctx *ctx, bool log_out)
{
    softmax_shape sh;
    const float *y, *g;
    float *dx;
    pare_status rc;

    if (!ctx->din[0])
        return PARE_OK;
    if (ctx->in[0]->dtype != PARE_F32)
        return ew_bad_dtype(ctx, "backward", ctx->in[0]->dtype);
    rc = softmax_shape_of(ctx, &sh);
    if (rc != PARE_OK)
        return rc;
    if (!ctx->dout[0]) {
        act_zero_grads(ctx);
        return PARE_OK;
    }
    y = ctx->out[0]->data;
    g = ctx->dout[0]->data;
    dx = ctx->din[0]->data;
    for (int64_t o = 0; o < sh.outer; o++)
        for (int64_t c = 0; c < sh.inner; c++) {
            const int64_t base = o * sh.n * sh.inner + c, st = sh.inner;
            double s = 0.0;
            if (log_out) {
                for (int64_t j = 0; j < sh.n; j++)
                    s += g[base + j * st];
                for (int64_t j = 0; j < sh.n; j++)
                    dx[base + j * st] = g[base + j * st] - expf(y[base + j * st]) * (float)s;
            } else {
                for (int64_t j = 0; j < sh.n; j++)
                    s += (double)g[base + j * st] * y[base + j * st];
                for (int64_t j = 0; j < sh.n; j++)
                    dx[base + j * st] = y[base + j * st] * (g[base + j * st] - (float)s);
            }
        }
    return PARE_OK;
}

static pare_status softmax_backward(pare_op_ctx *ctx) { return softmax_backward_run(ctx, false); }
static pare_status log_softmax_backward(pare_op_ctx *ctx) { return softmax_backward_run(ctx, true); }

/* ---- table ---- */

#define ROW(op, since_, until_, fn, notes_)                                      \
    { .domain = "", .op_type = op, .since = since_, .until = until_,             \
      .infer = fn##_infer, .forward = fn##_forward, .flops = ew_flops_out, .notes = notes_ }
#define ROW_F(op, since_, until_, fn, flops_, notes_)                            \
    { .domain = "", .op_type = op, .since = since_, .until = until_,             \
      .infer = fn##_infer, .forward = fn##_forward, .flops = flops_, .notes = notes_ }
#define ROW_B(op, since_, until_, fn, notes_)                                    \
    { .domain = "", .op_type = op, .since = since_, .until = until_,             \
      .infer = fn##_infer, .forward = fn##_forward, .backward = fn##_backward,   \
      .flops = ew_flops_out, .notes = notes_ }

const pare_op_def ops_activation[] = {
    ROW_B("Relu", 6, 0, relu, "float32, float64, int8-int64"),
    ROW_B("Clip", 6, 10, clip, "min/max attributes; float32, float64"),
    ROW_B("Clip", 11, 11, clip, "min/max optional scalar inputs; float32, float64"),
    ROW_B("Clip", 12, 0, clip, "min/max optional scalar inputs; all numeric dtypes"),
    ROW_B("LeakyRelu", 6, 0, leaky_relu, "float32"),
    { .domain = "", .op_type = "PRelu", .since = 6, .until = 6, .infer = prelu_infer,
      .forward = prelu_forward, .backward = prelu_backward, .backward_scratch = prelu_bscratch,
      .flops = ew_flops_out, .notes = "slope scalar or one value per channel (dim 1); float32" },
    { .domain = "", .op_type = "PRelu", .since = 7, .until = 0, .infer = prelu_infer,
      .forward = prelu_forward, .backward = prelu_backward, .backward_scratch = prelu_bscratch,
      .flops = ew_flops_out, .notes = "slope broadcasts unidirectionally; float32" },
    ROW_B("Sigmoid", 6, 0, sigmoid, "float32"),
    ROW_B("Tanh", 6, 0, tanh, "float32"),
    ROW_B("HardSigmoid", 6, 0, hard_sigmoid, "float32"),
    ROW_B("HardSwish", 14, 0, hard_swish, "float32"),
    ROW_B("Gelu", 20, 0, gelu, "approximate 'none' (erf) or 'tanh'; float32"),
    ROW_B("Elu", 6, 0, elu, "float32"),
    ROW_B("Selu", 6, 0, selu, "float32"),
    ROW_B("Celu", 12, 0, celu, "float32"),
    ROW_B("Softplus", 1, 0, softplus, "float32"),
    ROW_B("Softsign", 1, 0, softsign, "float32"),
    ROW_B("ThresholdedRelu", 10, 0, thresholded_relu, "float32"),
    ROW("Mish", 18, 0, mish, "float32"),
    { .domain = "", .op_type = "Softmax", .since = 1, .until = 12, .infer = softmax_infer,
      .forward = softmax_forward, .backward = softmax_backward, .flops = softmax_flops,
      .notes = "input coerced to 2-D at axis (default 1); float32" },
    { .domain = "", .op_type = "Softmax", .since = 13, .until = 0, .infer = softmax_infer,
      .forward = softmax_forward, .backward = softmax_backward, .flops = softmax_flops,
      .notes = "along axis (default -1); float32" },
    { .domain = "", .op_type = "LogSoftmax", .since = 1, .until = 12, .infer = log_softmax_infer,
      .forward = log_softmax_forward, .backward = log_softmax_backward, .flops = softmax_flops,
      .notes = "input coerced to 2-D at axis (default 1); float32" },
    { .domain = "", .op_type = "LogSoftmax", .since = 13, .until = 0, .infer = log_softmax_infer,
      .forward = log_softmax_forward, .backward = log_softmax_backward, .flops = softmax_flops,
      .notes = "along axis (default -1); float32" },
    ROW("Hardmax", 1, 12, hardmax, "input coerced to 2-D at axis (default 1); float32"),
    ROW("Hardmax", 13, 0, hardmax, "along axis (default -1); float32"),
    { .op_type = NULL },
};
