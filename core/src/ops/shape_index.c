/* Index and generator ops: Gather, GatherElements, Tile, Range, Trilu,
 * ArgMax/ArgMin, OneHot, NonZero. Rows live in shape.c. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "pare/op.h"

#include "ops/shape_util.h"

static pare_tensor *arg(const pare_op_ctx *ctx, int i)
{
    return i < ctx->n_in ? ctx->in[i] : NULL;
}

static pare_status need(pare_op_ctx *ctx, int n_in)
{
    for (int i = 0; i < n_in; i++)
        if (!arg(ctx, i))
            return pare_op_fail(ctx, PARE_EINPUT, "expects at least %d input%s, got %d", n_in,
                                n_in > 1 ? "s" : "", i);
    if (ctx->n_out < 1 || !ctx->out[0])
        return pare_op_fail(ctx, PARE_EINPUT, "output 0 is missing");
    if (!pare_dtype_size(ctx->in[0]->dtype))
        return pare_op_fail(ctx, PARE_EUNSUPPORTED, "dtype '%s' not supported",
                            pare_dtype_name(ctx->in[0]->dtype));
    return PARE_OK;
}

static pare_status norm_axis(pare_op_ctx *ctx, int64_t axis, int rank, int *out)
{
    *out = 0;
    if (axis < -(int64_t)rank || axis >= rank)
        return pare_op_fail(ctx, PARE_EINPUT, "axis %lld is out of range for rank %d",
                            (long long)axis, rank);
    *out = (int)(axis < 0 ? axis + rank : axis);
    return PARE_OK;
}

static int64_t numel_range(const int64_t *dims, int from, int to)
{
    int64_t n = 1;
    for (int i = from; i < to; i++)
        n *= dims[i];
    return n;
}

static void set_shape(pare_tensor *t, pare_dtype dtype, int ndim, const int64_t *dims)
{
    t->dtype = dtype;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++)
        t->dims[i] = dims[i];
}

/* Forward re-reads constant inputs (pads, starts...); if they differ from
 * what planning saw, the planned output shape no longer fits: refuse. */
static pare_status check_planned(pare_op_ctx *ctx, const pare_tensor *y, int ndim,
                                 const int64_t *dims, const char *what)
{
    bool same = y->ndim == ndim;
    for (int k = 0; same && k < ndim; k++)
        same = y->dims[k] == dims[k];
    if (same)
        return PARE_OK;
    return pare_op_fail(ctx, PARE_EUNSUPPORTED,
                        "%s changed after planning; the output shape was fixed then", what);
}

/* Work (in bytes moved) above which a copy loop is split across threads. */
#define PARALLEL_BYTES ((int64_t)1 << 18)

static void contiguous_strides(int ndim, const int64_t *dims, int64_t *strides)
{
    int64_t s = 1;
    for (int k = ndim - 1; k >= 0; k--) {
        strides[k] = s;
        s *= dims[k];
    }
}

/* ---- Gather ---- */

pare_status shape_gather_infer(pare_op_ctx *ctx)
{
    pare_status rc = need(ctx, 2);
    const pare_tensor *x, *idx;
    int64_t dims[PARE_MAX_DIMS];
    int axis = 0, nd = 0;
    size_t es;

    if (rc == PARE_OK)
        rc = shape_elem_size(ctx, ctx->in[0], &es);
    if (rc != PARE_OK)
        return rc;
    x = ctx->in[0];
    idx = ctx->in[1];
    if (idx->dtype != PARE_I64 && idx->dtype != PARE_I32)
        return pare_op_fail(ctx, PARE_EINPUT, "indices must be int32 or int64, got %s",
                            pare_dtype_name(idx->dtype));
    if (x->ndim == 0)
        return pare_op_fail(ctx, PARE_EINPUT, "cannot gather from a scalar");
    rc = norm_axis(ctx, pare_node_attr_int(ctx->node, "axis", 0), x->ndim, &axis);
    if (rc != PARE_OK)
        return rc;
    if (x->ndim - 1 + idx->ndim > PARE_MAX_DIMS)
        return pare_op_fail(ctx, PARE_EUNSUPPORTED, "output rank %d is above %d",
                            x->ndim - 1 + idx->ndim, PARE_MAX_DIMS);
    for (int k = 0; k < axis; k++)
        dims[nd++] = x->dims[k];
    for (int k = 0; k < idx->ndim; k++)
        dims[nd++] = idx->dims[k];
    for (int k = axis + 1; k < x->ndim; k++)
        dims[nd++] = x->dims[k];
    set_shape(ctx->out[0], x->dtype, nd, dims);
    ctx->scratch_bytes = (size_t)pare_tensor_numel(idx) * sizeof(int64_t);
    return PARE_OK;
}

#define GATHER_ELEMS(ES)                                                                \
    for (int64_t i = 0; i < n_idx; i++)                                                 \
        memcpy(dst + i * (ES), src + ix[i] * (ES), (ES))

pare_status shape_gather_forward(pare_op_ctx *ctx)
{
    const pare_tensor *x = ctx->in[0], *idx = ctx->in[1];
    pare_tensor *y = ctx->out[0];
    size_t es = pare_dtype_size(x->dtype);
    int64_t n_idx = pare_tensor_numel(idx), outer, inner, dim, *ix = ctx->scratch;
    int axis = 0;

    norm_axis(ctx, pare_node_attr_int(ctx->node, "axis", 0), x->ndim, &axis);
    dim = x->dims[axis];
    for (int64_t i = 0; i < n_idx; i++) {
        int64_t v = pare_tensor_get_i64(idx, i);
        if (v < -dim || v >= dim)
            return pare_op_fail(ctx, PARE_EINPUT, "index %lld is out of range for axis %d of size %lld",
                                (long long)v, axis, (long long)dim);
        ix[i] = v < 0 ? v + dim : v;
    }
    outer = numel_range(x->dims, 0, axis);
    inner = numel_range(x->dims, axis + 1, x->ndim) * (int64_t)es;
    if (!n_idx || !inner)
        return PARE_OK;
#pragma omp parallel for num_threads(ctx->n_threads) if (outer * n_idx * inner > PARALLEL_BYTES) schedule(static)
    for (int64_t o = 0; o < outer; o++) {
        const char *src = (const char *)x->data + o * dim * inner;
        char *dst = (char *)y->data + o * n_idx * inner;
        switch (inner) {
        case 1: GATHER_ELEMS(1); break;
        case 2: GATHER_ELEMS(2); break;
        case 4: GATHER_ELEMS(4); break;
        case 8: GATHER_ELEMS(8); break;
        default:
            for (int64_t i = 0; i < n_idx; i++)
                memcpy(dst + i * inner, src + ix[i] * inner, (size_t)inner);
        }
    }
    return PARE_OK;
}

/* dx = 0, then dx[o, ix[i], :] += dy[o, i, :] (repeated indices add up);
 * the indices get no gradient. float32. */
pare_status shape_gather_backward(pare_op_ctx *ctx)
{
    const pare_tensor *x = ctx->in[0], *idx = ctx->in[1];
    pare_tensor *dx = ctx->din ? ctx->din[0] : NULL, *dy = ctx->dout ? ctx->dout[0] : NULL;
    int64_t n_idx = pare_tensor_numel(idx), outer, inner, dim;
    int axis = 0;
    pare_status rc;

    if (!dx)
        return PARE_OK;
    if (x->dtype != PARE_F32)
        return pare_op_fail(ctx, PARE_EUNSUPPORTED,
                            "backward: dtype '%s' not supported (float32 only)",
                            pare_dtype_name(x->dtype));
    rc = norm_axis(ctx, pare_node_attr_int(ctx->node, "axis", 0), x->ndim, &axis);
    if (rc != PARE_OK)
        return rc;
    memset(dx->data, 0, pare_tensor_nbytes(dx));
    if (!dy)
        return PARE_OK;
    dim = x->dims[axis];
    outer = numel_range(x->dims, 0, axis);
    inner = numel_range(x->dims, axis + 1, x->ndim);
    for (int64_t i = 0; i < n_idx; i++) {
        int64_t v = pare_tensor_get_i64(idx, i);
        if (v < -dim || v >= dim)
            return pare_op_fail(ctx, PARE_EINPUT, "index %lld is out of range for axis %d of size %lld",
                                (long long)v, axis, (long long)dim);
        if (v < 0)
            v += dim;
        for (int64_t o = 0; o < outer; o++) {
            float *d = pare_tensor_f32(dx) + (o * dim + v) * inner;
            const float *g = pare_tensor_f32(dy) + (o * n_idx + i) * inner;
            for (int64_t j = 0; j < inner; j++)
                d[j] += g[j];
        }
    }
    return PARE_OK;
}

/* ---- Tile ---- */

static pare_status tile_repeats(pare_op_ctx *ctx, int64_t *reps)
{
    const pare_tensor *x = ctx->in[0];
    int n = 0;
    pare_status rc = shape_const_ints(ctx, ctx->in[1], "repeats", reps, PARE_MAX_DIMS, &n);

    if (rc != PARE_OK)
        return rc;
    if (n != x->ndim)
        return pare_op_fail(ctx, PARE_EINPUT, "'repeats' has %d values for rank %d", n, x->ndim);
    for (int k = 0; k < n; k++)
        if (reps[k] < 0)
            return pare_op_fail(ctx, PARE_EINPUT, "'repeats' has a negative value %lld",
                                (long long)reps[k]);
    return PARE_OK;
}

pare_status shape_tile_infer(pare_op_ctx *ctx)
{
    pare_status rc = need(ctx, 2);
    int64_t reps[PARE_MAX_DIMS], dims[PARE_MAX_DIMS];
    size_t es;

    if (rc == PARE_OK)
        rc = shape_elem_size(ctx, ctx->in[0], &es);
    if (rc == PARE_OK)
        rc = tile_repeats(ctx, reps);
    if (rc != PARE_OK)
        return rc;
    for (int k = 0; k < ctx->in[0]->ndim; k++)
        dims[k] = ctx->in[0]->dims[k] * reps[k];
    set_shape(ctx->out[0], ctx->in[0]->dtype, ctx->in[0]->ndim, dims);
    return PARE_OK;
}

pare_status shape_tile_forward(pare_op_ctx *ctx)
{
    const pare_tensor *x = ctx->in[0];
    pare_tensor *y = ctx->out[0];
    size_t es = pare_dtype_size(x->dtype);
    int n = x->ndim;
    int64_t in_strides[PARE_MAX_DIMS], rows, in_row, out_row;

    int64_t reps[PARE_MAX_DIMS], want[PARE_MAX_DIMS];
    pare_status rc = tile_repeats(ctx, reps);

    for (int k = 0; rc == PARE_OK && k < n; k++)
        want[k] = x->dims[k] * reps[k];
    if (rc == PARE_OK)
        rc = check_planned(ctx, y, n, want, "'repeats'");
    if (rc != PARE_OK)
        return rc;
    if (pare_tensor_numel(y) == 0)
        return PARE_OK;
    if (n == 0) {
        memcpy(y->data, x->data, es);
        return PARE_OK;
    }
    contiguous_strides(n, x->dims, in_strides);
    rows = numel_range(y->dims, 0, n - 1);
    in_row = x->dims[n - 1] * (int64_t)es;
    out_row = y->dims[n - 1] * (int64_t)es;
#pragma omp parallel for num_threads(ctx->n_threads) if (rows * out_row > PARALLEL_BYTES) schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        int64_t rem = r, off = 0;
        const char *src;
        char *dst = (char *)y->data + r * out_row;
        for (int k = n - 2; k >= 0; k--) {
            int64_t i = rem % y->dims[k];
            rem /= y->dims[k];
            off += (i % x->dims[k]) * in_strides[k];
        }
        src = (const char *)x->data + off * (int64_t)es;
        for (int64_t j = 0; j < out_row; j += in_row)
            memcpy(dst + j, src, (size_t)in_row);
    }
    return PARE_OK;
}

/* ---- Range ---- */

static pare_status range_count(pare_op_ctx *ctx, int64_t *count)
{
    const pare_tensor *s = ctx->in[0], *l = ctx->in[1], *d = ctx->in[2];
    const char *names[3] = {"start", "limit", "delta"};

    for (int i = 0; i < 3; i++) {
        const pare_tensor *t = ctx->in[i];
        if (t->dtype != s->dtype)
            return pare_op_fail(ctx, PARE_EINPUT, "'%s' is %s but 'start' is %s", names[i],
                                pare_dtype_name(t->dtype), pare_dtype_name(s->dtype));
        if (pare_tensor_numel(t) != 1)
            return pare_op_fail(ctx, PARE_EINPUT, "'%s' must be a scalar", names[i]);
        if (!t->data) {
            pare_op_fail(ctx, PARE_EUNSUPPORTED, "input '%s' must be a constant", names[i]);
            pare_error_hint(ctx->err, "the output length of Range depends on its inputs' values");
            return PARE_EUNSUPPORTED;
        }
    }
    switch (s->dtype) {
    case PARE_F32:
    case PARE_F64: {
        double a = pare_tensor_get_f64(s, 0), b = pare_tensor_get_f64(l, 0);
        double c = pare_tensor_get_f64(d, 0), n;
        if (c == 0)
            return pare_op_fail(ctx, PARE_EINPUT, "'delta' is 0");
        /* As ONNX Runtime: the difference in the input type, the division in double. */
        if (s->dtype == PARE_F32)
            n = ceil((double)((float)b - (float)a) / c);
        else
            n = ceil((b - a) / c);
        if (!(n < 1e15))
            return pare_op_fail(ctx, PARE_EINPUT, "range is too long");
        *count = n > 0 ? (int64_t)n : 0;
        return PARE_OK;
    }
    case PARE_I16:
    case PARE_I32:
    case PARE_I64: {
        int64_t a = pare_tensor_get_i64(s, 0), b = pare_tensor_get_i64(l, 0);
        int64_t c = pare_tensor_get_i64(d, 0), span;
        if (c == 0)
            return pare_op_fail(ctx, PARE_EINPUT, "'delta' is 0");
        span = b - a;
        if ((span > 0) != (c > 0) || span == 0)
            *count = 0;
        else if (c > 0)
            *count = (span + c - 1) / c;
        else
            *count = (-span + -c - 1) / -c;
        return PARE_OK;
    }
    default:
        return pare_op_fail(ctx, PARE_EUNSUPPORTED, "dtype '%s' not supported",
                            pare_dtype_name(s->dtype));
    }
}

pare_status shape_range_infer(pare_op_ctx *ctx)
{
    pare_status rc = need(ctx, 3);
    int64_t n = 0;

    if (rc == PARE_OK)
        rc = range_count(ctx, &n);
    if (rc == PARE_OK)
        set_shape(ctx->out[0], ctx->in[0]->dtype, 1, &n);
    return rc;
}

pare_status shape_range_forward(pare_op_ctx *ctx)
{
    const pare_tensor *s = ctx->in[0], *d = ctx->in[2];
    pare_tensor *y = ctx->out[0];
    int64_t n = pare_tensor_numel(y), count = 0;
    pare_status rc = range_count(ctx, &count);

    if (rc == PARE_OK)
        rc = check_planned(ctx, y, 1, &count, "'start', 'limit' or 'delta'");
    if (rc != PARE_OK)
        return rc;

    switch (y->dtype) {
    case PARE_F32: {
        float a = *(const float *)s->data, c = *(const float *)d->data, *p = y->data;
        for (int64_t i = 0; i < n; i++)
            p[i] = a + (float)i * c;
        break;
    }
    case PARE_F64: {
        double a = *(const double *)s->data, c = *(const double *)d->data, *p = y->data;
        for (int64_t i = 0; i < n; i++)
            p[i] = a + (double)i * c;
        break;
    }
    case PARE_I16: {
        int16_t a = *(const int16_t *)s->data, c = *(const int16_t *)d->data, *p = y->data;
        for (int64_t i = 0; i < n; i++)
            p[i] = (int16_t)(a + i * c);
        break;
    }
    case PARE_I32: {
        int32_t a = *(const int32_t *)s->data, c = *(const int32_t *)d->data, *p = y->data;
        for (int64_t i = 0; i < n; i++)
            p[i] = (int32_t)(a + i * c);
        break;
    }
    default: {
        int64_t a = *(const int64_t *)s->data, c = *(const int64_t *)d->data, *p = y->data;
        for (int64_t i = 0; i < n; i++)
            p[i] = a + i * c;
    }
    }
    return PARE_OK;
}

/* ---- GatherElements ---- */

pare_status shape_gather_elements_infer(pare_op_ctx *ctx)
{
    pare_status rc = need(ctx, 2);
    const pare_tensor *x, *idx;
    int axis;

    if (rc != PARE_OK)
        return rc;
    x = ctx->in[0];
    idx = ctx->in[1];
    if (idx->dtype != PARE_I64 && idx->dtype != PARE_I32)
        return pare_op_fail(ctx, PARE_EINPUT, "indices must be int32 or int64, got %s",
                            pare_dtype_name(idx->dtype));
    if (x->ndim < 1 || idx->ndim != x->ndim)
        return pare_op_fail(ctx, PARE_EINPUT, "indices have rank %d but data has rank %d",
                            idx->ndim, x->ndim);
    rc = norm_axis(ctx, pare_node_attr_int(ctx->node, "axis", 0), x->ndim, &axis);
    if (rc != PARE_OK)
        return rc;
    for (int k = 0; k < x->ndim; k++)
        if (k != axis && idx->dims[k] > x->dims[k])
            return pare_op_fail(ctx, PARE_EINPUT,
                                "indices dim %d (%lld) is larger than the data's (%lld)", k,
                                (long long)idx->dims[k], (long long)x->dims[k]);
    set_shape(ctx->out[0], x->dtype, idx->ndim, idx->dims);
    return PARE_OK;
}

pare_status shape_gather_elements_forward(pare_op_ctx *ctx)
{
    const pare_tensor *x = ctx->in[0], *idx = ctx->in[1];
    pare_tensor *y = ctx->out[0];
    size_t es = pare_dtype_size(x->dtype);
    int n = x->ndim, axis = 0;
    int64_t strides[PARE_MAX_DIMS], pos[PARE_MAX_DIMS] = {0}, total = pare_tensor_numel(y);
    int64_t off = 0, dim;

    norm_axis(ctx, pare_node_attr_int(ctx->node, "axis", 0), n, &axis);
    dim = x->dims[axis];
    {
        int64_t s = 1;
        for (int k = n - 1; k >= 0; k--) {
            strides[k] = s;
            s *= x->dims[k];
        }
    }
    /* off tracks the data offset of pos without the axis term. */
    for (int64_t i = 0; i < total; i++) {
        int64_t v = pare_tensor_get_i64(idx, i);
        if (v < -dim || v >= dim)
            return pare_op_fail(ctx, PARE_EINPUT, "index %lld is out of range for axis %d of size %lld",
                                (long long)v, axis, (long long)dim);
        if (v < 0)
            v += dim;
        memcpy((char *)y->data + (size_t)i * es,
               (const char *)x->data + (size_t)(off + v * strides[axis]) * es, es);
        for (int k = n - 1; k >= 0; k--) {
            pos[k]++;
            if (k != axis)
                off += strides[k];
            if (pos[k] < idx->dims[k])
                break;
            if (k != axis)
                off -= strides[k] * pos[k];
            pos[k] = 0;
        }
    }
    return PARE_OK;
}

/* ---- Trilu ---- */

pare_status shape_trilu_infer(pare_op_ctx *ctx)
{
    pare_status rc = need(ctx, 1);
    const pare_tensor *k = arg(ctx, 1);

    if (rc != PARE_OK)
        return rc;
    if (ctx->in[0]->ndim < 2)
        return pare_op_fail(ctx, PARE_EINPUT, "input must have rank 2 or more, got %d",
                            ctx->in[0]->ndim);
    if (k && (pare_tensor_numel(k) != 1 || (k->dtype != PARE_I64 && k->dtype != PARE_I32)))
        return pare_op_fail(ctx, PARE_EINPUT, "'k' must be an int64 scalar");
    set_shape(ctx->out[0], ctx->in[0]->dtype, ctx->in[0]->ndim, ctx->in[0]->dims);
    return PARE_OK;
}

pare_status shape_trilu_forward(pare_op_ctx *ctx)
{
    const pare_tensor *x = ctx->in[0], *kt = arg(ctx, 1);
    pare_tensor *y = ctx->out[0];
    size_t es = pare_dtype_size(x->dtype);
    int64_t k = kt ? pare_tensor_get_i64(kt, 0) : 0;
    int64_t N = x->dims[x->ndim - 2], M = x->dims[x->ndim - 1];
    int64_t mats = numel_range(x->dims, 0, x->ndim - 2), rows = mats * N;
    bool upper = pare_node_attr_int(ctx->node, "upper", 1) != 0;

    for (int64_t r = 0; r < rows; r++) {
        int64_t i = r % N, cut;
        const char *src = (const char *)x->data + (size_t)(r * M) * es;
        char *dst = (char *)y->data + (size_t)(r * M) * es;
        /* upper keeps j >= i + k; lower keeps j <= i + k */
        cut = upper ? i + k : i + k + 1;
        cut = cut < 0 ? 0 : cut > M ? M : cut;
        if (upper) {
            memset(dst, 0, (size_t)cut * es);
            if (M > cut)
                memcpy(dst + (size_t)cut * es, src + (size_t)cut * es, (size_t)(M - cut) * es);
        } else {
            if (cut)
                memcpy(dst, src, (size_t)cut * es);
            memset(dst + (size_t)cut * es, 0, (size_t)(M - cut) * es);
        }
    }
    return PARE_OK;
}

/* ---- ArgMax, ArgMin ---- */

static pare_status argminmax_axis(pare_op_ctx *ctx, int *axis)
{
    const pare_tensor *x = ctx->in[0];
    int rank = x->ndim ? x->ndim : 1;
    return norm_axis(ctx, pare_node_attr_int(ctx->node, "axis", 0), rank, axis);
}

pare_status shape_argminmax_infer(pare_op_ctx *ctx)
{
    pare_status rc = need(ctx, 1);
    const pare_tensor *x;
    int64_t dims[PARE_MAX_DIMS];
    int axis = 0, nd = 0;

    if (rc == PARE_OK)
        rc = argminmax_axis(ctx, &axis);
    if (rc != PARE_OK)
        return rc;
    x = ctx->in[0];
    switch (x->dtype) {
    case PARE_F32: case PARE_F64: case PARE_I8: case PARE_U8: case PARE_I16: case PARE_U16:
    case PARE_I32: case PARE_U32: case PARE_I64: case PARE_U64:
        break;
    default:
        return pare_op_fail(ctx, PARE_EUNSUPPORTED, "dtype '%s' not supported",
                            pare_dtype_name(x->dtype));
    }
    if (x->ndim > 0 && x->dims[axis] == 0)
        return pare_op_fail(ctx, PARE_EINPUT, "cannot take the arg of an empty axis %d", axis);
    for (int k = 0; k < x->ndim; k++) {
        if (k != axis)
            dims[nd++] = x->dims[k];
        else if (pare_node_attr_int(ctx->node, "keepdims", 1))
            dims[nd++] = 1;
    }
    set_shape(ctx->out[0], PARE_I64, nd, dims);
    return PARE_OK;
}

/* For every (outer, inner) position scan the axis; better = strict
 * comparison, or non-strict with select_last_index. */
#define ARG_SCAN(T, BETTER)                                                             \
    do {                                                                                \
        const T *p = x->data;                                                           \
        _Pragma("omp parallel for num_threads(nt) if (outer * A * inner > 65536)")      \
        for (int64_t o = 0; o < outer; o++)                                             \
            for (int64_t j = 0; j < inner; j++) {                                       \
                const T *q = p + o * A * inner + j;                                     \
                T best = q[0];                                                          \
                int64_t bi = 0;                                                         \
                for (int64_t a = 1; a < A; a++) {                                       \
                    T v = q[a * inner];                                                 \
                    if (BETTER(v, best) || (last && v == best)) {                       \
                        best = v;                                                       \
                        bi = a;                                                         \
                    }                                                                   \
                }                                                                       \
                out[o * inner + j] = bi;                                                \
            }                                                                           \
    } while (0)

#define GT(a, b) ((a) > (b))
#define LT(a, b) ((a) < (b))

#define ARG_DISPATCH(BETTER)                                                            \
    switch (x->dtype) {                                                                 \
    case PARE_F32: ARG_SCAN(float, BETTER); break;                                      \
    case PARE_F64: ARG_SCAN(double, BETTER); break;                                     \
    case PARE_I8: ARG_SCAN(int8_t, BETTER); break;                                      \
    case PARE_U8: ARG_SCAN(uint8_t, BETTER); break;                                     \
    case PARE_I16: ARG_SCAN(int16_t, BETTER); break;                                    \
    case PARE_U16: ARG_SCAN(uint16_t, BETTER); break;                                   \
    case PARE_I32: ARG_SCAN(int32_t, BETTER); break;                                    \
    case PARE_U32: ARG_SCAN(uint32_t, BETTER); break;                                   \
    case PARE_I64: ARG_SCAN(int64_t, BETTER); break;                                    \
    case PARE_U64: ARG_SCAN(uint64_t, BETTER); break;                                   \
    default: break;                                                                     \
    }

static pare_status argminmax_forward(pare_op_ctx *ctx, bool is_max)
{
    const pare_tensor *x = ctx->in[0];
    int64_t *out = ctx->out[0]->data, outer, inner, A;
    int axis = 0, nt = ctx->n_threads > 0 ? ctx->n_threads : 1;
    bool last = ctx->opset >= 12 && pare_node_attr_int(ctx->node, "select_last_index", 0) != 0;

    argminmax_axis(ctx, &axis);
    if (x->ndim == 0) {
        out[0] = 0;
        return PARE_OK;
    }
    outer = numel_range(x->dims, 0, axis);
    A = x->dims[axis];
    inner = numel_range(x->dims, axis + 1, x->ndim);
    if (is_max) {
        ARG_DISPATCH(GT)
    } else {
        ARG_DISPATCH(LT)
    }
    return PARE_OK;
}

pare_status shape_argmax_forward(pare_op_ctx *ctx)
{
    return argminmax_forward(ctx, true);
}

pare_status shape_argmin_forward(pare_op_ctx *ctx)
{
    return argminmax_forward(ctx, false);
}

double shape_argminmax_flops(const pare_op_ctx *ctx)
{
    return (double)pare_tensor_numel(ctx->in[0]);
}

/* ---- OneHot ---- */

static pare_status onehot_depth(pare_op_ctx *ctx, int64_t *depth)
{
    const pare_tensor *d = ctx->in[1];
    double v;

    if (pare_tensor_numel(d) != 1)
        return pare_op_fail(ctx, PARE_EINPUT, "'depth' must have one element");
    if (!d->data) {
        pare_op_fail(ctx, PARE_EUNSUPPORTED, "input 'depth' must be a constant");
        pare_error_hint(ctx->err, "the output shape of OneHot depends on 'depth'");
        return PARE_EUNSUPPORTED;
    }
    v = pare_tensor_get_f64(d, 0);
    if (!(v >= 1 && v < 1e12))
        return pare_op_fail(ctx, PARE_EINPUT, "'depth' must be positive, got %g", v);
    *depth = (int64_t)v;
    return PARE_OK;
}

pare_status shape_onehot_infer(pare_op_ctx *ctx)
{
    pare_status rc = need(ctx, 3);
    const pare_tensor *ind, *values;
    int64_t depth = 0, dims[PARE_MAX_DIMS], axis;
    int rank;

    if (rc == PARE_OK)
        rc = onehot_depth(ctx, &depth);
    if (rc != PARE_OK)
        return rc;
    ind = ctx->in[0];
    values = ctx->in[2];
    if (!pare_dtype_size(values->dtype))
        return pare_op_fail(ctx, PARE_EUNSUPPORTED, "dtype '%s' not supported",
                            pare_dtype_name(values->dtype));
    if (pare_tensor_numel(values) != 2)
        return pare_op_fail(ctx, PARE_EINPUT, "'values' must hold [off, on]");
    rank = ind->ndim + 1;
    if (rank > PARE_MAX_DIMS)
        return pare_op_fail(ctx, PARE_EUNSUPPORTED, "output rank %d is above %d", rank,
                            PARE_MAX_DIMS);
    axis = pare_node_attr_int(ctx->node, "axis", -1);
    if (axis < -rank || axis >= rank)
        return pare_op_fail(ctx, PARE_EINPUT, "axis %lld is out of range for rank %d",
                            (long long)axis, rank);
    if (axis < 0)
        axis += rank;
    for (int k = 0, j = 0; k < rank; k++)
        dims[k] = k == axis ? depth : ind->dims[j++];
    set_shape(ctx->out[0], values->dtype, rank, dims);
    return PARE_OK;
}

pare_status shape_onehot_forward(pare_op_ctx *ctx)
{
    const pare_tensor *ind = ctx->in[0], *values = ctx->in[2];
    pare_tensor *y = ctx->out[0];
    size_t es = pare_dtype_size(values->dtype);
    const char *off = values->data, *on = (const char *)values->data + es;
    int64_t depth = 0, axis = pare_node_attr_int(ctx->node, "axis", -1), outer, inner, n;
    int rank = ind->ndim + 1;
    pare_status rc = onehot_depth(ctx, &depth);

    if (rc != PARE_OK)
        return rc;
    if (axis < 0)
        axis += rank;
    if (y->dims[axis] != depth)
        return pare_op_fail(ctx, PARE_EUNSUPPORTED,
                            "'depth' changed after planning; the output shape was fixed then");
    outer = numel_range(ind->dims, 0, (int)axis);
    inner = numel_range(ind->dims, (int)axis, ind->ndim);
    n = pare_tensor_numel(y);
    for (int64_t i = 0; i < n; i++)
        memcpy((char *)y->data + (size_t)i * es, off, es);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < inner; j++) {
            int64_t v = (int64_t)pare_tensor_get_f64(ind, o * inner + j);
            if (v < 0)
                v += depth;
            if (v < 0 || v >= depth)
                continue;
            memcpy((char *)y->data + (size_t)((o * depth + v) * inner + j) * es, on, es);
        }
    return PARE_OK;
}

/* ---- NonZero ---- */

static int64_t count_nonzero(const pare_tensor *x)
{
    int64_t n = pare_tensor_numel(x), c = 0;
    for (int64_t i = 0; i < n; i++)
        c += pare_tensor_get_f64(x, i) != 0.0;
    return c;
}

pare_status shape_nonzero_infer(pare_op_ctx *ctx)
{
    pare_status rc = need(ctx, 1);
    const pare_tensor *x;
    int64_t dims[2];

    if (rc != PARE_OK)
        return rc;
    x = ctx->in[0];
    if (x->dtype == PARE_STRING || x->dtype == PARE_UNDEFINED)
        return pare_op_fail(ctx, PARE_EUNSUPPORTED, "dtype '%s' not supported",
                            pare_dtype_name(x->dtype));
    if (!x->data) {
        pare_op_fail(ctx, PARE_EUNSUPPORTED, "input must be a constant");
        pare_error_hint(ctx->err, "the output shape of NonZero depends on its input's values");
        return PARE_EUNSUPPORTED;
    }
    dims[0] = x->ndim ? x->ndim : 1;
    dims[1] = count_nonzero(x);
    set_shape(ctx->out[0], PARE_I64, 2, dims);
    return PARE_OK;
}

pare_status shape_nonzero_forward(pare_op_ctx *ctx)
{
    const pare_tensor *x = ctx->in[0];
    pare_tensor *y = ctx->out[0];
    int64_t n = pare_tensor_numel(x), nnz = y->dims[1], c = 0, *out = y->data;
    int rank = x->ndim;

    if (count_nonzero(x) != nnz)
        return pare_op_fail(ctx, PARE_EUNSUPPORTED,
                            "input changed after planning; NonZero's output shape is fixed");
    for (int64_t i = 0; i < n; i++) {
        int64_t rem = i;
        if (pare_tensor_get_f64(x, i) == 0.0)
            continue;
        if (rank == 0)
            out[c] = 0;
        for (int k = rank - 1; k >= 0; k--) {
            out[k * nnz + c] = rem % x->dims[k];
            rem /= x->dims[k];
        }
        c++;
    }
    return PARE_OK;
}

double shape_range_flops(const pare_op_ctx *ctx)
{
    return ctx->out[0] ? (double)pare_tensor_numel(ctx->out[0]) : 0.0;
}
