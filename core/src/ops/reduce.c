/* Reductions: ReduceSum, ReduceMean, ReduceMax, ReduceMin, ReduceProd,
 * ReduceL1, ReduceL2, ReduceSumSquare, ReduceLogSum, ReduceLogSumExp.
 *
 * Two forms each: axes as an attribute (ReduceSum before opset 13, the others
 * before 18) and axes as an optional second input with noop_with_empty_axes.
 *
 * The input is viewed as alternating groups of kept and reduced dims (size-1
 * dims dropped, neighbours with the same role merged). When the innermost
 * group is reduced, each output is a contiguous row reduction (8 independent
 * lanes, so it vectorizes); when it is kept, rows of the input are combined
 * element-wise into rows of the output. Work is split over the outermost group
 * when it is kept, so threads never write the same output. */
#include <math.h>
#include <omp.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "ops/broadcast.h"
#include "ops/families.h"

#define DT_N 17

/* How elements are mapped and combined. */
enum red_kind { K_SUM, K_SUMABS, K_SUMSQ, K_SUMEXP, K_MAX, K_MIN, K_PROD, K_COUNT };
/* What is applied to each combined value. */
enum red_post { P_NONE, P_MEAN, P_SQRT, P_LOG, P_LSE };

/* row: *o = combine(*o, reduce(map(x[0..n)))), ref = &reference or NULL.
 * col: o[i] = combine(o[i], map(x[i])) for i < n, ref = n references. */
typedef void (*red_fn)(const void *x, int64_t n, void *o, const void *ref);
typedef struct red_kernel {
    red_fn row, col;
} red_kernel;

/* maps (v = element, R = reference for K_SUMEXP) */
#define M_ID(v, R) (v)
#define M_ABS(v, R) ((v) < 0 ? -(v) : (v))
#define M_ABS_I(v, R) ((v) < 0 ? (ET)(0 - (uint64_t)(v)) : (v))
#define M_SQ(v, R) ((v) * (v))
#define M_SQ_I(v, R) ((ET)((uint64_t)(v) * (uint64_t)(v)))
#define M_EXPF(v, R) vm_expf((v) - (R))
#define M_EXPD(v, R) exp((v) - (R))
/* combines */
#define C_ADD(a, b) ((a) + (b))
#define C_ADD_I(a, b) ((ET)((uint64_t)(a) + (uint64_t)(b)))
#define C_MUL(a, b) ((a) * (b))
#define C_MUL_I(a, b) ((ET)((uint64_t)(a) * (uint64_t)(b)))
#define C_MAX(a, b) ((b) > (a) || (b) != (b) ? (b) : (a))
#define C_MIN(a, b) ((b) < (a) || (b) != (b) ? (b) : (a))
#define C_MAX_I(a, b) ((b) > (a) ? (b) : (a))
#define C_MIN_I(a, b) ((b) < (a) ? (b) : (a))

#define RED_FNS(SFX, T, INIT, MAP, COMB)                                         \
    VM_CLONES static void row_##SFX(const void *vx, int64_t n, void *vo, const void *vref) \
    {                                                                            \
        typedef T ET;                                                            \
        const T *restrict x = vx;                                                \
        T *o = vo;                                                               \
        const T R = vref ? *(const T *)vref : (T)0;                              \
        T acc[8], r;                                                             \
        int64_t i = 0;                                                           \
        (void)R;                                                                 \
        (void)sizeof(ET);                                                        \
        for (int j = 0; j < 8; j++)                                              \
            acc[j] = INIT;                                                       \
        for (; i + 8 <= n; i += 8)                                               \
            for (int j = 0; j < 8; j++) {                                        \
                const T v = x[i + j];                                            \
                acc[j] = COMB(acc[j], MAP(v, R));                                \
            }                                                                    \
        r = *o;                                                                  \
        for (int j = 0; j < 8; j++)                                              \
            r = COMB(r, acc[j]);                                                 \
        for (; i < n; i++) {                                                     \
            const T v = x[i];                                                    \
            r = COMB(r, MAP(v, R));                                              \
        }                                                                        \
        *o = r;                                                                  \
    }                                                                            \
    VM_CLONES static void col_##SFX(const void *vx, int64_t n, void *vo, const void *vref) \
    {                                                                            \
        typedef T ET;                                                            \
        const T *restrict x = vx;                                                \
        T *restrict o = vo;                                                      \
        const T *restrict rp = vref;                                             \
        (void)rp;                                                                \
        (void)sizeof(ET);                                                        \
        for (int64_t i = 0; i < n; i++) {                                        \
            const T v = x[i];                                                    \
            o[i] = COMB(o[i], MAP(v, rp[i]));                                    \
        }                                                                        \
    }

RED_FNS(sum_f32, float, 0.0f, M_ID, C_ADD)
RED_FNS(sumabs_f32, float, 0.0f, M_ABS, C_ADD)
RED_FNS(sumsq_f32, float, 0.0f, M_SQ, C_ADD)
RED_FNS(sumexp_f32, float, 0.0f, M_EXPF, C_ADD)
RED_FNS(max_f32, float, -INFINITY, M_ID, C_MAX)
RED_FNS(min_f32, float, INFINITY, M_ID, C_MIN)
RED_FNS(prod_f32, float, 1.0f, M_ID, C_MUL)

RED_FNS(sum_f64, double, 0.0, M_ID, C_ADD)
RED_FNS(sumabs_f64, double, 0.0, M_ABS, C_ADD)
RED_FNS(sumsq_f64, double, 0.0, M_SQ, C_ADD)
RED_FNS(sumexp_f64, double, 0.0, M_EXPD, C_ADD)
RED_FNS(max_f64, double, -INFINITY, M_ID, C_MAX)
RED_FNS(min_f64, double, INFINITY, M_ID, C_MIN)
RED_FNS(prod_f64, double, 1.0, M_ID, C_MUL)

RED_FNS(sum_i32, int32_t, 0, M_ID, C_ADD_I)
RED_FNS(sumabs_i32, int32_t, 0, M_ABS_I, C_ADD_I)
RED_FNS(sumsq_i32, int32_t, 0, M_SQ_I, C_ADD_I)
RED_FNS(max_i32, int32_t, INT32_MIN, M_ID, C_MAX_I)
RED_FNS(min_i32, int32_t, INT32_MAX, M_ID, C_MIN_I)
RED_FNS(prod_i32, int32_t, 1, M_ID, C_MUL_I)

RED_FNS(sum_i64, int64_t, 0, M_ID, C_ADD_I)
RED_FNS(sumabs_i64, int64_t, 0, M_ABS_I, C_ADD_I)
RED_FNS(sumsq_i64, int64_t, 0, M_SQ_I, C_ADD_I)
RED_FNS(max_i64, int64_t, INT64_MIN, M_ID, C_MAX_I)
RED_FNS(min_i64, int64_t, INT64_MAX, M_ID, C_MIN_I)
RED_FNS(prod_i64, int64_t, 1, M_ID, C_MUL_I)

RED_FNS(max_i8, int8_t, INT8_MIN, M_ID, C_MAX_I)
RED_FNS(min_i8, int8_t, INT8_MAX, M_ID, C_MIN_I)
RED_FNS(max_u8, uint8_t, 0, M_ID, C_MAX_I)
RED_FNS(min_u8, uint8_t, UINT8_MAX, M_ID, C_MIN_I)

#define K(name) { row_##name, col_##name }
static const red_kernel kernels[DT_N][K_COUNT] = {
    [PARE_F32] = { [K_SUM] = K(sum_f32), [K_SUMABS] = K(sumabs_f32), [K_SUMSQ] = K(sumsq_f32),
                   [K_SUMEXP] = K(sumexp_f32), [K_MAX] = K(max_f32), [K_MIN] = K(min_f32),
                   [K_PROD] = K(prod_f32) },
    [PARE_F64] = { [K_SUM] = K(sum_f64), [K_SUMABS] = K(sumabs_f64), [K_SUMSQ] = K(sumsq_f64),
                   [K_SUMEXP] = K(sumexp_f64), [K_MAX] = K(max_f64), [K_MIN] = K(min_f64),
                   [K_PROD] = K(prod_f64) },
    [PARE_I32] = { [K_SUM] = K(sum_i32), [K_SUMABS] = K(sumabs_i32), [K_SUMSQ] = K(sumsq_i32),
                   [K_MAX] = K(max_i32), [K_MIN] = K(min_i32), [K_PROD] = K(prod_i32) },
    [PARE_I64] = { [K_SUM] = K(sum_i64), [K_SUMABS] = K(sumabs_i64), [K_SUMSQ] = K(sumsq_i64),
                   [K_MAX] = K(max_i64), [K_MIN] = K(min_i64), [K_PROD] = K(prod_i64) },
    [PARE_I8] = { [K_MAX] = K(max_i8), [K_MIN] = K(min_i8) },
    [PARE_U8] = { [K_MAX] = K(max_u8), [K_MIN] = K(min_u8) },
};

/* Fills n outputs with the identity of kind. */
#define FILL_CASE(DT, T, MAXV)                                                   \
    case PARE_##DT: {                                                            \
        T *p = o, v = kind == K_PROD ? (T)1 : kind == K_MAX ? (T)(-(MAXV)) :     \
                      kind == K_MIN ? (T)(MAXV) : (T)0;                          \
        for (int64_t i = 0; i < n; i++)                                          \
            p[i] = v;                                                            \
        break;                                                                   \
    }
static void fill_identity(pare_dtype dt, int kind, void *o, int64_t n)
{
    switch (dt) {
    FILL_CASE(F32, float, INFINITY)
    FILL_CASE(F64, double, INFINITY)
    case PARE_I32: {
        int32_t *p = o, v = kind == K_PROD ? 1 : kind == K_MAX ? INT32_MIN :
                            kind == K_MIN ? INT32_MAX : 0;
        for (int64_t i = 0; i < n; i++)
            p[i] = v;
        break;
    }
    case PARE_I64: {
        int64_t *p = o, v = kind == K_PROD ? 1 : kind == K_MAX ? INT64_MIN :
                            kind == K_MIN ? INT64_MAX : 0;
        for (int64_t i = 0; i < n; i++)
            p[i] = v;
        break;
    }
    case PARE_I8:
        memset(o, kind == K_MAX ? 0x80 : 0x7f, (size_t)n);
        break;
    case PARE_U8:
        memset(o, kind == K_MAX ? 0 : 0xff, (size_t)n);
        break;
    default:
        break;
    }
}

/* ---- plan: groups of kept / reduced dims ---- */

typedef struct red_plan {
    int k;                               /* groups, >= 1 */
    int64_t size[PARE_MAX_DIMS];
    bool red[PARE_MAX_DIMS];
    int64_t istride[PARE_MAX_DIMS];
    int64_t ostride[PARE_MAX_DIMS];      /* 0 for reduced groups */
    int64_t in_numel, out_numel, count;  /* count = inputs per output */
} red_plan;

static void red_plan_init(red_plan *p, int ndim, const int64_t *dims, const bool *reduce)
{
    int k = 0;
    int64_t s;

    memset(p, 0, sizeof *p);
    p->in_numel = pare_shape_numel(ndim, dims);
    p->count = 1;
    p->out_numel = 1;
    for (int d = 0; d < ndim; d++) {
        if (reduce[d])
            p->count *= dims[d];
        else
            p->out_numel *= dims[d];
        if (dims[d] == 1)
            continue;
        if (k > 0 && p->red[k - 1] == reduce[d]) {
            p->size[k - 1] *= dims[d];
            continue;
        }
        p->size[k] = dims[d];
        p->red[k] = reduce[d];
        k++;
    }
    if (k == 0) {
        p->size[0] = 1;
        p->red[0] = false;
        k = 1;
    }
    p->k = k;
    s = 1;
    for (int g = k - 1; g >= 0; g--) {
        p->istride[g] = s;
        s *= p->size[g];
    }
    s = 1;
    for (int g = k - 1; g >= 0; g--) {
        p->ostride[g] = p->red[g] ? 0 : s;
        if (!p->red[g])
            s *= p->size[g];
    }
}

/* Rows are the index space of groups 0..k-2; the last group is the row. */
static void red_rows(const red_plan *p, const red_kernel *kern, const char *x, char *o,
                     const char *ref, size_t esz, int64_t row_lo, int64_t row_hi)
{
    const int last = p->k - 1;
    const int64_t len = p->size[last];
    int64_t idx[PARE_MAX_DIMS] = {0};
    int64_t ioff = 0, ooff = 0, r = row_lo;

    if (row_lo >= row_hi)
        return;
    for (int g = last - 1; g >= 0; g--) {
        idx[g] = r % p->size[g];
        r /= p->size[g];
        ioff += idx[g] * p->istride[g];
        ooff += idx[g] * p->ostride[g];
    }
    for (int64_t row = row_lo; row < row_hi; row++) {
        if (p->red[last])
            kern->row(x + (size_t)ioff * esz, len, o + (size_t)ooff * esz,
                      ref ? ref + (size_t)ooff * esz : NULL);
        else
            kern->col(x + (size_t)ioff * esz, len, o + (size_t)ooff * esz,
                      ref ? ref + (size_t)ooff * esz : NULL);
        for (int g = last - 1; g >= 0; g--) {
            ioff += p->istride[g];
            ooff += p->ostride[g];
            if (++idx[g] < p->size[g])
                break;
            ioff -= p->size[g] * p->istride[g];
            ooff -= p->size[g] * p->ostride[g];
            idx[g] = 0;
        }
    }
}

/* o (already holding the identity) = combine over the reduced groups. */
static void red_engine(const red_plan *p, const red_kernel *kern, const void *x, void *o,
                       const void *ref, size_t esz, int n_threads)
{
    int64_t rows = 1, per_g0;

    if (p->in_numel == 0)
        return;
    for (int g = 0; g < p->k - 1; g++)
        rows *= p->size[g];
    per_g0 = p->k > 1 ? rows / p->size[0] : 1;
    /* Split over the outermost group only when it is kept (disjoint outputs). */
    if (p->k < 2 || p->red[0] || p->size[0] < 2)
        n_threads = 1;
    if (n_threads > p->size[0])
        n_threads = (int)p->size[0];
    if (n_threads <= 1) {
        red_rows(p, kern, x, o, ref, esz, 0, rows);
        return;
    }
#pragma omp parallel num_threads(n_threads)
    {
        int nth = omp_get_num_threads(), tid = omp_get_thread_num();
        int64_t g0 = p->k > 1 ? p->size[0] : 1;
        int64_t lo = g0 * tid / nth, hi = g0 * (tid + 1) / nth;
        red_rows(p, kern, x, o, ref, esz, lo * per_g0, hi * per_g0);
    }
}

/* ---- post-processing ---- */

static void red_post(pare_dtype dt, int post, void *o, const void *ref, int64_t n, int64_t count)
{
    if (post == P_NONE)
        return;
    if (dt == PARE_F32) {
        float *y = o;
        const float *m = ref;
        const float inv = 1.0f / (float)count;
        for (int64_t i = 0; i < n; i++) {
            switch (post) {
            case P_MEAN: y[i] = count ? y[i] * inv : NAN; break;
            case P_SQRT: y[i] = sqrtf(y[i]); break;
            case P_LOG: y[i] = logf(y[i]); break;
            case P_LSE: y[i] = logf(y[i]) + (isfinite(m[i]) ? m[i] : 0.0f); break;
            default: break;
            }
        }
    } else if (dt == PARE_F64) {
        double *y = o;
        const double *m = ref;
        for (int64_t i = 0; i < n; i++) {
            switch (post) {
            case P_MEAN: y[i] = y[i] / (double)count; break;
            case P_SQRT: y[i] = sqrt(y[i]); break;
            case P_LOG: y[i] = log(y[i]); break;
            case P_LSE: y[i] = log(y[i]) + (isfinite(m[i]) ? m[i] : 0.0); break;
            default: break;
            }
        }
    } else if (post == P_MEAN && dt == PARE_I32) {
        int32_t *y = o;
        for (int64_t i = 0; i < n; i++)
            y[i] = count ? (int32_t)(y[i] / count) : 0;
    } else if (post == P_MEAN && dt == PARE_I64) {
        int64_t *y = o;
        for (int64_t i = 0; i < n; i++)
            y[i] = count ? y[i] / count : 0;
    }
}

/* ---- ops ---- */

typedef struct red_op {
    int kind;              /* K_MAX first then K_SUMEXP for LogSumExp */
    int post;
    bool float_only;
    int input_axes_since;  /* opset from which axes is an input */
} red_op;

/* Reads axes (attribute or constant input) into reduce[]; *noop when the
 * input form has empty axes and noop_with_empty_axes is set. */
static pare_status red_axes(pare_op_ctx *ctx, const red_op *op, bool *reduce, bool *noop)
{
    const pare_tensor *x = ctx->in[0];
    int r = x->ndim;
    const int64_t *axes = NULL;
    int n_axes = 0;

    *noop = false;
    if (ctx->opset >= op->input_axes_since) {
        const pare_tensor *a = ctx->n_in > 1 ? ctx->in[1] : NULL;
        if (pare_node_attr(ctx->node, "axes"))
            return pare_op_fail(ctx, PARE_EINPUT,
                                "axes is an input from opset %d, not an attribute",
                                op->input_axes_since);
        if (a) {
            if (a->dtype != PARE_I64 || a->ndim > 1)
                return pare_op_fail(ctx, PARE_EINPUT, "axes must be a 1-D int64 tensor");
            n_axes = (int)pare_tensor_numel(a);
            if (n_axes > 0 && !a->data)
                return pare_op_fail(ctx, PARE_EUNSUPPORTED, "axes input must be a constant");
            axes = a->data;
        }
        if (n_axes == 0 && pare_node_attr_int(ctx->node, "noop_with_empty_axes", 0))
            *noop = true;
    } else {
        if (ctx->n_in > 1)
            return pare_op_fail(ctx, PARE_EINPUT, "expects 1 input before opset %d, got %d",
                                op->input_axes_since, ctx->n_in);
        axes = pare_node_attr_ints(ctx->node, "axes", &n_axes);
    }
    for (int d = 0; d < r; d++)
        reduce[d] = n_axes == 0 && !*noop;
    for (int i = 0; i < n_axes; i++) {
        int ax;
        pare_status rc = ew_axis(ctx, axes[i], r, 0, &ax);
        if (rc != PARE_OK)
            return rc;
        if (reduce[ax])
            return pare_op_fail(ctx, PARE_EINPUT, "axis %lld is listed twice",
                                (long long)axes[i]);
        reduce[ax] = true;
    }
    return PARE_OK;
}

static pare_status red_infer(pare_op_ctx *ctx, const red_op *op)
{
    const pare_tensor *x;
    bool reduce[PARE_MAX_DIMS], noop;
    int64_t dims[PARE_MAX_DIMS];
    int nd = 0;
    bool keep = pare_node_attr_int(ctx->node, "keepdims", 1) != 0;
    pare_status rc = ew_check_inputs(ctx, 1, 2);

    if (rc == PARE_OK)
        rc = ew_check_output(ctx);
    if (rc != PARE_OK)
        return rc;
    x = ctx->in[0];
    if ((unsigned)x->dtype >= DT_N || !kernels[x->dtype][op->kind].row ||
        (op->post == P_LSE && !kernels[x->dtype][K_SUMEXP].row) ||
        (op->float_only && x->dtype != PARE_F32 && x->dtype != PARE_F64))
        return ew_bad_dtype(ctx, NULL, x->dtype);
    rc = red_axes(ctx, op, reduce, &noop);
    if (rc != PARE_OK)
        return rc;
    for (int d = 0; d < x->ndim; d++) {
        if (!reduce[d])
            dims[nd++] = x->dims[d];
        else if (keep)
            dims[nd++] = 1;
    }
    ew_set_shape(ctx->out[0], x->dtype, nd, dims);
    if (op->post == P_LSE)
        ctx->scratch_bytes = (size_t)pare_shape_numel(nd, dims) * pare_dtype_size(x->dtype);
    return PARE_OK;
}

static pare_status red_forward(pare_op_ctx *ctx, const red_op *op)
{
    const pare_tensor *x = ctx->in[0];
    pare_tensor *y = ctx->out[0];
    bool reduce[PARE_MAX_DIMS], noop;
    red_plan p;
    size_t esz = pare_dtype_size(x->dtype);
    int nt;
    pare_status rc = red_axes(ctx, op, reduce, &noop);

    if (rc != PARE_OK)
        return rc;
    red_plan_init(&p, x->ndim, x->dims, reduce);
    nt = ew_threads(ctx, p.in_numel * (op->post == P_LSE ? 4 : 1));
    if (op->post == P_LSE) {
        fill_identity(x->dtype, K_MAX, ctx->scratch, p.out_numel);
        red_engine(&p, &kernels[x->dtype][K_MAX], x->data, ctx->scratch, NULL, esz, nt);
        fill_identity(x->dtype, K_SUM, y->data, p.out_numel);
        red_engine(&p, &kernels[x->dtype][K_SUMEXP], x->data, y->data, ctx->scratch, esz, nt);
    } else {
        fill_identity(x->dtype, op->kind, y->data, p.out_numel);
        red_engine(&p, &kernels[x->dtype][op->kind], x->data, y->data, NULL, esz, nt);
    }
    red_post(x->dtype, op->post, y->data, ctx->scratch, p.out_numel, p.count);
    return PARE_OK;
}

/* ---- backward (float32) ----
 *
 * dx OVERWRITTEN element by element from the output element it fed: input
 * dims are walked with the output's strides (0 on reduced dims). ReduceMax /
 * ReduceMin give the whole gradient of an output to the FIRST maximum /
 * minimum in row-major order (ties: the others get 0); a byte per output in
 * scratch marks which outputs are taken. ReduceProd has no backward. */
/* dr[i] = EXPR over a row of the last dim; o = the output element fed. */
#define RB_LOOP(EXPR)                                                            \
    for (int64_t i = 0; i < inner; i++) {                                        \
        const int64_t o = ooff + i * ost;                                        \
        dr[i] = (EXPR);                                                          \
    }                                                                            \
    break

static pare_status red_backward(pare_op_ctx *ctx, const red_op *op)
{
    const pare_tensor *xt = ctx->in[0];
    bool reduce[PARE_MAX_DIMS], noop;
    int64_t ostride[PARE_MAX_DIMS], idx[PARE_MAX_DIMS] = {0};
    int64_t s = 1, count = 1, n, inner, ost, ooff = 0;
    const float *x, *y, *g;
    float *dx;
    uint8_t *taken = ctx->scratch;
    const int nd = xt->ndim;
    enum { RG_SCALE, RG_LOG, RG_LSE, RG_ABS, RG_L2, RG_SQ, RG_EXT } gk;
    float scale;
    pare_status rc;

    if (!ctx->din[0])
        return PARE_OK;
    if (xt->dtype != PARE_F32)
        return ew_bad_dtype(ctx, "backward", xt->dtype);
    rc = red_axes(ctx, op, reduce, &noop);
    if (rc != PARE_OK)
        return rc;
    n = pare_tensor_numel(xt);
    dx = ctx->din[0]->data;
    if (!ctx->dout[0]) {
        memset(dx, 0, (size_t)n * sizeof(float));
        return PARE_OK;
    }
    for (int d = nd - 1; d >= 0; d--) {
        ostride[d] = reduce[d] ? 0 : s;
        if (reduce[d])
            count *= xt->dims[d];
        else
            s *= xt->dims[d];
    }
    gk = op->post == P_LSE ? RG_LSE : op->post == P_LOG ? RG_LOG : op->post == P_SQRT ? RG_L2 :
         op->kind == K_MAX || op->kind == K_MIN ? RG_EXT : op->kind == K_SUMABS ? RG_ABS :
         op->kind == K_SUMSQ ? RG_SQ : RG_SCALE;
    scale = op->post == P_MEAN ? 1.0f / (float)count : 1.0f;
    if (gk == RG_EXT)
        memset(taken, 0, (size_t)pare_tensor_numel(ctx->out[0]));
    x = xt->data;
    y = ctx->out[0]->data;
    g = ctx->dout[0]->data;
    inner = nd > 0 ? xt->dims[nd - 1] : 1;
    ost = nd > 0 ? ostride[nd - 1] : 0;
    for (int64_t base = 0; base < n && inner > 0; base += inner) {
        const float *xr = x + base;
        float *dr = dx + base;
        switch (gk) {
        case RG_SCALE: RB_LOOP(g[o] * scale);
        case RG_LOG: RB_LOOP(g[o] / expf(y[o]));
        case RG_LSE: RB_LOOP(g[o] * expf(xr[i] - y[o]));
        case RG_ABS: RB_LOOP(xr[i] > 0.0f ? g[o] : xr[i] < 0.0f ? -g[o] : 0.0f);
        case RG_L2: RB_LOOP(y[o] > 0.0f ? g[o] * xr[i] / y[o] : 0.0f);
        case RG_SQ: RB_LOOP(2.0f * g[o] * xr[i]);
        case RG_EXT:
            for (int64_t i = 0; i < inner; i++) {
                const int64_t o = ooff + i * ost;
                dr[i] = 0.0f;
                if (!taken[o] && xr[i] == y[o]) {
                    taken[o] = 1;
                    dr[i] = g[o];
                }
            }
            break;
        }
        /* next row of the last dim: advance the odometer over dims [0, nd-1) */
        for (int d = nd - 2; d >= 0; d--) {
            ooff += ostride[d];
            if (++idx[d] < xt->dims[d])
                break;
            ooff -= xt->dims[d] * ostride[d];
            idx[d] = 0;
        }
    }
    return PARE_OK;
}

static size_t red_bscratch(const pare_op_ctx *ctx)
{
    return (size_t)pare_tensor_numel(ctx->out[0]);
}

#define RED_OP(name, kind, post, float_only, since)                              \
    static const red_op op_##name = { kind, post, float_only, since };           \
    static pare_status name##_infer(pare_op_ctx *ctx) { return red_infer(ctx, &op_##name); } \
    static pare_status name##_forward(pare_op_ctx *ctx) { return red_forward(ctx, &op_##name); }
#define RED_BACKWARD(name)                                                       \
    static pare_status name##_backward(pare_op_ctx *ctx) { return red_backward(ctx, &op_##name); }

RED_OP(sum, K_SUM, P_NONE, false, 13)
RED_OP(mean, K_SUM, P_MEAN, false, 18)
RED_OP(max, K_MAX, P_NONE, false, 18)
RED_OP(min, K_MIN, P_NONE, false, 18)
RED_OP(prod, K_PROD, P_NONE, false, 18)
RED_OP(l1, K_SUMABS, P_NONE, false, 18)
RED_OP(l2, K_SUMSQ, P_SQRT, true, 18)
RED_OP(sum_square, K_SUMSQ, P_NONE, false, 18)
RED_OP(log_sum, K_SUM, P_LOG, true, 18)
RED_OP(log_sum_exp, K_MAX, P_LSE, true, 18)
RED_BACKWARD(sum)
RED_BACKWARD(mean)
RED_BACKWARD(max)
RED_BACKWARD(min)
RED_BACKWARD(l1)
RED_BACKWARD(l2)
RED_BACKWARD(sum_square)
RED_BACKWARD(log_sum)
RED_BACKWARD(log_sum_exp)

/* ---- table ---- */

#define ROW(op, since_, until_, fn, notes_)                                      \
    { .domain = "", .op_type = op, .since = since_, .until = until_,             \
      .infer = fn##_infer, .forward = fn##_forward, .backward = fn##_backward,    \
      .backward_scratch = red_bscratch, .flops = ew_flops_in, .notes = notes_ }
/* No backward. */
#define ROW_NB(op, since_, until_, fn, notes_)                                   \
    { .domain = "", .op_type = op, .since = since_, .until = until_,             \
      .infer = fn##_infer, .forward = fn##_forward, .flops = ew_flops_in, .notes = notes_ }
#define ATTR_NOTE "axes attribute"
#define INPUT_NOTE "axes optional constant input, noop_with_empty_axes"
#define EXT_NOTE "; gradient to the first extremum (row-major) on ties"

const pare_op_def ops_reduce[] = {
    ROW("ReduceSum", 1, 12, sum, ATTR_NOTE "; float32, float64, int32, int64"),
    ROW("ReduceSum", 13, 0, sum, INPUT_NOTE "; float32, float64, int32, int64"),
    ROW("ReduceMean", 1, 17, mean, ATTR_NOTE "; integer means truncate"),
    ROW("ReduceMean", 18, 0, mean, INPUT_NOTE "; integer means truncate"),
    ROW("ReduceMax", 1, 17, max, ATTR_NOTE "; float32, float64, int8, uint8, int32, int64" EXT_NOTE),
    ROW("ReduceMax", 18, 0, max, INPUT_NOTE "; float32, float64, int8, uint8, int32, int64" EXT_NOTE),
    ROW("ReduceMin", 1, 17, min, ATTR_NOTE "; float32, float64, int8, uint8, int32, int64" EXT_NOTE),
    ROW("ReduceMin", 18, 0, min, INPUT_NOTE "; float32, float64, int8, uint8, int32, int64" EXT_NOTE),
    ROW_NB("ReduceProd", 1, 17, prod, ATTR_NOTE),
    ROW_NB("ReduceProd", 18, 0, prod, INPUT_NOTE),
    ROW("ReduceL1", 1, 17, l1, ATTR_NOTE),
    ROW("ReduceL1", 18, 0, l1, INPUT_NOTE),
    ROW("ReduceL2", 1, 17, l2, ATTR_NOTE "; float32, float64"),
    ROW("ReduceL2", 18, 0, l2, INPUT_NOTE "; float32, float64"),
    ROW("ReduceSumSquare", 1, 17, sum_square, ATTR_NOTE),
    ROW("ReduceSumSquare", 18, 0, sum_square, INPUT_NOTE),
    ROW("ReduceLogSum", 1, 17, log_sum, ATTR_NOTE "; float32, float64"),
    ROW("ReduceLogSum", 18, 0, log_sum, INPUT_NOTE "; float32, float64"),
    ROW("ReduceLogSumExp", 1, 17, log_sum_exp, ATTR_NOTE "; float32, float64"),
    ROW("ReduceLogSumExp", 18, 0, log_sum_exp, INPUT_NOTE "; float32, float64"),
    { .op_type = NULL },
};
