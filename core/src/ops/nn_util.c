#include <string.h>

#include "ops/nn_util.h"

pare_status nn_check_inputs(pare_op_ctx *ctx, int min, int max)
{
    if (ctx->n_in < min || (max >= 0 && ctx->n_in > max)) {
        if (min == max)
            return pare_op_fail(ctx, PARE_EINPUT, "expects %d inputs, got %d", min, ctx->n_in);
        if (max < 0)
            return pare_op_fail(ctx, PARE_EINPUT, "expects at least %d inputs, got %d", min,
                                ctx->n_in);
        return pare_op_fail(ctx, PARE_EINPUT, "expects %d to %d inputs, got %d", min, max,
                            ctx->n_in);
    }
    for (int i = 0; i < min; i++)
        if (!ctx->in[i])
            return pare_op_fail(ctx, PARE_EINPUT, "input %d is required but omitted", i);
    return PARE_OK;
}

pare_status nn_check_output(pare_op_ctx *ctx)
{
    if (ctx->n_out < 1 || !ctx->out[0])
        return pare_op_fail(ctx, PARE_EINPUT, "output 0 is required but omitted");
    return PARE_OK;
}

pare_status nn_check_same_dtype(pare_op_ctx *ctx, int i, const char *what, pare_dtype want)
{
    if (i >= ctx->n_in || !ctx->in[i])
        return pare_op_fail(ctx, PARE_EINPUT, "input '%s' is required but omitted", what);
    if (ctx->in[i]->dtype != want)
        return pare_op_fail(ctx, PARE_EINPUT, "input '%s' has dtype '%s', expected '%s'", what,
                            pare_dtype_name(ctx->in[i]->dtype), pare_dtype_name(want));
    return PARE_OK;
}

pare_status nn_bad_dtype(pare_op_ctx *ctx, const char *what, pare_dtype dtype)
{
    return pare_op_fail(ctx, PARE_EUNSUPPORTED, "%s: dtype '%s' not supported", what,
                        pare_dtype_name(dtype));
}

void nn_set_shape(pare_tensor *t, pare_dtype dtype, int ndim, const int64_t *dims)
{
    t->dtype = dtype;
    t->ndim = ndim;
    for (int d = 0; d < ndim; d++)
        t->dims[d] = dims[d];
}

pare_status nn_attr_ints(pare_op_ctx *ctx, const char *name, int n, int64_t def, int positive,
                         int64_t *out)
{
    int got = 0;
    const int64_t *v = pare_node_attr_ints(ctx->node, name, &got);
    const pare_attr *a = pare_node_attr(ctx->node, name);

    if (a && a->type != PARE_ATTR_INTS)
        return pare_op_fail(ctx, PARE_EINPUT, "attribute '%s' must be a list of ints", name);
    if (!v) {
        for (int i = 0; i < n; i++)
            out[i] = def;
        return PARE_OK;
    }
    if (got != n)
        return pare_op_fail(ctx, PARE_EINPUT, "attribute '%s' has %d values, expected %d", name,
                            got, n);
    for (int i = 0; i < n; i++) {
        if (positive && v[i] < 1)
            return pare_op_fail(ctx, PARE_EINPUT, "attribute '%s' has value %lld, must be >= 1",
                                name, (long long)v[i]);
        if (!positive && v[i] < 0)
            return pare_op_fail(ctx, PARE_EINPUT, "attribute '%s' has negative value %lld", name,
                                (long long)v[i]);
        out[i] = v[i];
    }
    return PARE_OK;
}

pare_status nn_window_init(pare_op_ctx *ctx, const pare_tensor *x, const int64_t *kernel,
                           unsigned flags, nn_window *w)
{
    int nsp = x->ndim - 2;
    int off;
    int64_t s[NN_MAX_SPATIAL], d[NN_MAX_SPATIAL], pads[2 * NN_MAX_SPATIAL];
    const char *auto_pad = pare_node_attr_string(ctx->node, "auto_pad", "NOTSET");
    pare_status rc;

    if (nsp < 1)
        return pare_op_fail(ctx, PARE_EINPUT, "input must have rank 3 or more (N, C, spatial...), "
                            "got rank %d", x->ndim);
    if (nsp > NN_MAX_SPATIAL)
        return pare_op_fail(ctx, PARE_EUNSUPPORTED, "%d spatial dims not supported (at most %d)",
                            nsp, NN_MAX_SPATIAL);
    rc = nn_attr_ints(ctx, "strides", nsp, 1, 1, s);
    if (rc == PARE_OK)
        rc = nn_attr_ints(ctx, "dilations", nsp, 1, 1, d);
    if (rc == PARE_OK)
        rc = nn_attr_ints(ctx, "pads", 2 * nsp, 0, 0, pads);
    if (rc != PARE_OK)
        return rc;
    if (!auto_pad[0])
        auto_pad = "NOTSET";
    if (strcmp(auto_pad, "NOTSET") && strcmp(auto_pad, "VALID") &&
        strcmp(auto_pad, "SAME_UPPER") && strcmp(auto_pad, "SAME_LOWER"))
        return pare_op_fail(ctx, PARE_EINPUT, "attribute 'auto_pad' is '%s', expected NOTSET, "
                            "SAME_UPPER, SAME_LOWER or VALID", auto_pad);

    memset(w, 0, sizeof *w);
    w->nsp = nsp;
    off = NN_MAX_SPATIAL - nsp;
    for (int i = 0; i < NN_MAX_SPATIAL; i++) {
        w->in[i] = w->out[i] = w->k[i] = w->s[i] = w->d[i] = 1;
        w->pb[i] = w->pe[i] = 0;
    }
    for (int i = 0; i < nsp; i++) {
        int j = off + i;
        int64_t in = x->dims[2 + i], k = kernel[i], dk, out;

        if (k < 1)
            return pare_op_fail(ctx, PARE_EINPUT, "kernel size %lld in spatial dim %d must be >= 1",
                                (long long)k, i);
        if (in < 1)
            return pare_op_fail(ctx, PARE_EINPUT, "input spatial dim %d is empty", i);
        dk = (k - 1) * d[i] + 1;
        w->in[j] = in;
        w->k[j] = k;
        w->s[j] = s[i];
        w->d[j] = d[i];
        if (!strcmp(auto_pad, "SAME_UPPER") || !strcmp(auto_pad, "SAME_LOWER")) {
            int64_t total;
            out = (in + s[i] - 1) / s[i];
            total = (out - 1) * s[i] + dk - in;
            if (total < 0)
                total = 0;
            if (!strcmp(auto_pad, "SAME_UPPER")) {
                w->pb[j] = total / 2;
                w->pe[j] = total - total / 2;
            } else {
                w->pe[j] = total / 2;
                w->pb[j] = total - total / 2;
            }
        } else {
            int64_t span;
            if (!strcmp(auto_pad, "NOTSET")) {
                w->pb[j] = pads[i];
                w->pe[j] = pads[nsp + i];
            }
            span = in + w->pb[j] + w->pe[j] - dk;
            if (span < 0)
                return pare_op_fail(ctx, PARE_EINPUT,
                                    "kernel extent %lld is larger than the padded input %lld in "
                                    "spatial dim %d", (long long)dk,
                                    (long long)(in + w->pb[j] + w->pe[j]), i);
            if (flags & NN_WIN_CEIL) {
                out = (span + s[i] - 1) / s[i] + 1;
                /* The last window must start inside the input or the begin pad. */
                if ((out - 1) * s[i] >= in + w->pb[j])
                    out--;
            } else {
                out = span / s[i] + 1;
            }
        }
        if (out < 1)
            return pare_op_fail(ctx, PARE_EINPUT, "output spatial dim %d would be empty", i);
        w->out[j] = out;
    }
    return PARE_OK;
}
