#include <omp.h>

#include "ops/broadcast.h"

void bcast_plan_init(bcast_plan *p, int n_in, const int *in_ndim,
                     const int64_t *const *in_dims, int out_ndim, const int64_t *out_dims)
{
    int64_t full[BCAST_MAX_IN][PARE_MAX_DIMS];
    int nd = 0;

    memset(p, 0, sizeof *p);
    p->n_in = n_in;
    p->numel = pare_shape_numel(out_ndim, out_dims);
    /* Strides of each input in output coordinates (0 where it broadcasts). */
    for (int k = 0; k < n_in; k++) {
        int64_t stride = 1;
        int shift = out_ndim - in_ndim[k];
        for (int d = out_ndim - 1; d >= 0; d--) {
            int64_t dim = d >= shift ? in_dims[k][d - shift] : 1;
            full[k][d] = dim == 1 ? 0 : stride;
            stride *= dim;
        }
    }
    /* Drop size-1 output dims, then merge neighbours every input walks alike. */
    for (int d = 0; d < out_ndim; d++) {
        if (out_dims[d] == 1)
            continue;
        if (nd > 0) {
            int merge = 1;
            for (int k = 0; k < n_in; k++)
                if (p->strides[k][nd - 1] != full[k][d] * out_dims[d])
                    merge = 0;
            if (merge) {
                p->dims[nd - 1] *= out_dims[d];
                for (int k = 0; k < n_in; k++)
                    p->strides[k][nd - 1] = full[k][d];
                continue;
            }
        }
        p->dims[nd] = out_dims[d];
        for (int k = 0; k < n_in; k++)
            p->strides[k][nd] = full[k][d];
        nd++;
    }
    if (nd == 0) {
        p->dims[0] = 1;
        nd = 1;
    }
    p->ndim = nd;
    p->inner = p->dims[nd - 1];
    p->rows = p->inner ? p->numel / p->inner : 0;
}

void bcast_plan_tensors(bcast_plan *p, int n_in, const pare_tensor *const *in,
                        const pare_tensor *out)
{
    int nd[BCAST_MAX_IN];
    const int64_t *dims[BCAST_MAX_IN];

    for (int k = 0; k < n_in; k++) {
        nd[k] = in[k]->ndim;
        dims[k] = in[k]->dims;
    }
    bcast_plan_init(p, n_in, nd, dims, out->ndim, out->dims);
}

void bcast_plan_flat(bcast_plan *p, int n_in, int64_t numel)
{
    memset(p, 0, sizeof *p);
    p->n_in = n_in;
    p->ndim = 1;
    p->dims[0] = numel;
    for (int k = 0; k < n_in; k++)
        p->strides[k][0] = 1;
    p->inner = numel;
    p->rows = numel ? 1 : 0;
    p->numel = numel;
}

typedef struct bcast_cursor {
    int64_t idx[PARE_MAX_DIMS];
    int64_t off[BCAST_MAX_IN];
} bcast_cursor;

/* Positions the cursor at the start of row `row` (dims before the last). */
static void cursor_seek(const bcast_plan *p, bcast_cursor *c, int64_t row)
{
    memset(c, 0, sizeof *c);
    for (int d = p->ndim - 2; d >= 0; d--) {
        int64_t i = row % p->dims[d];
        row /= p->dims[d];
        c->idx[d] = i;
        for (int k = 0; k < p->n_in; k++)
            c->off[k] += i * p->strides[k][d];
    }
}

static void cursor_next(const bcast_plan *p, bcast_cursor *c)
{
    for (int d = p->ndim - 2; d >= 0; d--) {
        c->idx[d]++;
        for (int k = 0; k < p->n_in; k++)
            c->off[k] += p->strides[k][d];
        if (c->idx[d] < p->dims[d])
            return;
        for (int k = 0; k < p->n_in; k++)
            c->off[k] -= p->dims[d] * p->strides[k][d];
        c->idx[d] = 0;
    }
}

/* Items [lo, hi) of nblk blocks of blk elements per row. */
static void run_items(const bcast_plan *p, bcast_row_fn fn, const void *arg,
                      const void *const *in, const size_t *in_esz, void *out, size_t out_esz,
                      int64_t blk, int64_t nblk, int64_t lo, int64_t hi)
{
    bcast_cursor c;
    const void *row_in[BCAST_MAX_IN];
    int64_t s[BCAST_MAX_IN];
    const int n_in = p->n_in;
    int64_t row = lo / nblk, b = lo % nblk;

    if (lo >= hi)
        return;
    for (int k = 0; k < n_in; k++)
        s[k] = p->strides[k][p->ndim - 1];
    cursor_seek(p, &c, row);
    for (int64_t it = lo; it < hi; it++) {
        const int64_t start = b * blk;
        const int64_t len = p->inner - start < blk ? p->inner - start : blk;
        for (int k = 0; k < n_in; k++)
            row_in[k] = (const char *)in[k] + (size_t)(c.off[k] + start * s[k]) * in_esz[k];
        fn(arg, len, row_in, s, (char *)out + (size_t)(row * p->inner + start) * out_esz);
        if (++b == nblk) {
            b = 0;
            row++;
            if (it + 1 < hi)
                cursor_next(p, &c);
        }
    }
}

void bcast_run(const bcast_plan *p, bcast_row_fn fn, const void *arg,
               const void *const *in, const size_t *in_esz, void *out, size_t out_esz,
               int n_threads)
{
    int64_t blk = p->inner, nblk = 1, items;

    if (p->numel == 0)
        return;
    /* Few long rows: cut rows into blocks so every thread gets work. */
    if (n_threads > 1 && p->rows < 4 * (int64_t)n_threads) {
        int64_t want = (4 * (int64_t)n_threads + p->rows - 1) / p->rows;
        blk = (p->inner + want - 1) / want;
        blk = (blk + 63) & ~(int64_t)63;
        nblk = (p->inner + blk - 1) / blk;
    }
    items = p->rows * nblk;
    if (items < n_threads)
        n_threads = (int)items;
    if (n_threads <= 1) {
        /* no OpenMP region at all: small tensors are the common case */
        run_items(p, fn, arg, in, in_esz, out, out_esz, blk, nblk, 0, items);
        return;
    }
#pragma omp parallel num_threads(n_threads)
    {
        int nth = omp_get_num_threads(), tid = omp_get_thread_num();
        run_items(p, fn, arg, in, in_esz, out, out_esz, blk, nblk, items * tid / nth,
                  items * (tid + 1) / nth);
    }
}

void bcast_reduce_grad(const float *g, int out_ndim, const int64_t *out_dims, float *din,
                       int in_ndim, const int64_t *in_dims)
{
    bcast_plan p;
    bcast_cursor c;
    const int64_t n_in = pare_shape_numel(in_ndim, in_dims);
    const int64_t n_out = pare_shape_numel(out_ndim, out_dims);
    int64_t s;

    if (n_in == n_out) {
        if (g != din && n_in > 0)
            memcpy(din, g, (size_t)n_in * sizeof(float));
        return;
    }
    memset(din, 0, (size_t)n_in * sizeof(float));
    if (n_out == 0)
        return;
    bcast_plan_init(&p, 1, &in_ndim, &in_dims, out_ndim, out_dims);
    s = p.strides[0][p.ndim - 1];
    cursor_seek(&p, &c, 0);
    for (int64_t row = 0; row < p.rows; row++) {
        const float *gr = g + row * p.inner;
        float *d = din + c.off[0];
        if (s) {
            for (int64_t i = 0; i < p.inner; i++)
                d[i] += gr[i];
        } else {
            d[0] += vm_sum_f32(gr, p.inner);
        }
        if (row + 1 < p.rows)
            cursor_next(&p, &c);
    }
}

pare_status ew_check_inputs(pare_op_ctx *ctx, int min, int max)
{
    if (ctx->n_in < min || (max >= 0 && ctx->n_in > max)) {
        if (max == min)
            return pare_op_fail(ctx, PARE_EINPUT, "expects %d input%s, got %d", min,
                                min == 1 ? "" : "s", ctx->n_in);
        if (max < 0)
            return pare_op_fail(ctx, PARE_EINPUT, "expects at least %d input%s, got %d", min,
                                min == 1 ? "" : "s", ctx->n_in);
        return pare_op_fail(ctx, PARE_EINPUT, "expects %d to %d inputs, got %d", min, max,
                            ctx->n_in);
    }
    for (int i = 0; i < min; i++)
        if (!ctx->in[i])
            return pare_op_fail(ctx, PARE_EINPUT, "input %d is required", i);
    return PARE_OK;
}

pare_status ew_check_output(pare_op_ctx *ctx)
{
    if (ctx->n_out < 1 || !ctx->out[0])
        return pare_op_fail(ctx, PARE_EINPUT, "output 0 is required");
    return PARE_OK;
}

void ew_set_shape(pare_tensor *t, pare_dtype dtype, int ndim, const int64_t *dims)
{
    t->dtype = dtype;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++)
        t->dims[i] = dims[i];
}

pare_status ew_bad_dtype(pare_op_ctx *ctx, const char *what, pare_dtype dtype)
{
    if (what && *what)
        return pare_op_fail(ctx, PARE_EUNSUPPORTED, "%s: dtype '%s' not supported", what,
                            pare_dtype_name(dtype));
    return pare_op_fail(ctx, PARE_EUNSUPPORTED, "dtype '%s' not supported",
                        pare_dtype_name(dtype));
}

pare_status ew_axis(pare_op_ctx *ctx, int64_t axis, int rank, int inclusive, int *out)
{
    int64_t hi = inclusive ? rank : rank - 1;

    if (axis < -(int64_t)rank || axis > hi)
        return pare_op_fail(ctx, PARE_EINPUT, "axis %lld is out of range for rank %d",
                            (long long)axis, rank);
    *out = (int)(axis < 0 ? axis + rank : axis);
    return PARE_OK;
}

pare_status ew_broadcast(pare_op_ctx *ctx, int na, const int64_t *a, int nb, const int64_t *b,
                         int *nout, int64_t *out)
{
    char sa[128], sb[128];

    if (pare_broadcast_shape(na, a, nb, b, nout, out) == PARE_OK)
        return PARE_OK;
    return pare_op_fail(ctx, PARE_EINPUT, "cannot broadcast shapes %s and %s",
                        pare_shape_format(na, a, sa, sizeof sa),
                        pare_shape_format(nb, b, sb, sizeof sb));
}

double ew_flops_out(const pare_op_ctx *ctx)
{
    return ctx->n_out > 0 && ctx->out[0] ? (double)pare_tensor_numel(ctx->out[0]) : 0.0;
}

double ew_flops_in(const pare_op_ctx *ctx)
{
    return ctx->n_in > 0 && ctx->in[0] ? (double)pare_tensor_numel(ctx->in[0]) : 0.0;
}
