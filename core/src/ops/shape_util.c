#include "ops/shape_util.h"

pare_status shape_elem_size(pare_op_ctx *ctx, const pare_tensor *t, size_t *es)
{
    *es = pare_dtype_size(t->dtype);
    if (!*es)
        return pare_op_fail(ctx, PARE_EUNSUPPORTED, "dtype '%s' not supported",
                            pare_dtype_name(t->dtype));
    return PARE_OK;
}

pare_status shape_const_ints(pare_op_ctx *ctx, const pare_tensor *t, const char *what,
                             int64_t *v, int max, int *n)
{
    int64_t count;

    if (!t->data) {
        pare_op_fail(ctx, PARE_EUNSUPPORTED, "input '%s' must be a constant", what);
        pare_error_hint(ctx->err, "pare plans shapes ahead of time; '%s' is computed at run time",
                        what);
        return PARE_EUNSUPPORTED;
    }
    if (t->dtype != PARE_I64 && t->dtype != PARE_I32)
        return pare_op_fail(ctx, PARE_EINPUT, "input '%s' must be int64, got %s", what,
                            pare_dtype_name(t->dtype));
    if (t->ndim > 1)
        return pare_op_fail(ctx, PARE_EINPUT, "input '%s' must be 1-D, got rank %d", what, t->ndim);
    count = pare_tensor_numel(t);
    if (count > max)
        return pare_op_fail(ctx, PARE_EINPUT, "input '%s' has %lld values, at most %d allowed",
                            what, (long long)count, max);
    for (int64_t i = 0; i < count; i++)
        v[i] = pare_tensor_get_i64(t, i);
    *n = (int)count;
    return PARE_OK;
}
