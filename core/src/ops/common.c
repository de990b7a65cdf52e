#include <stdarg.h>
#include <stdio.h>

#include "pare/op.h"

pare_status pare_op_fail(pare_op_ctx *ctx, pare_status code, const char *fmt, ...)
{
    va_list ap;

    if (!ctx->err)
        return code;
    pare_fail(ctx->err, code, ctx->where, "%s", "");
    va_start(ap, fmt);
    vsnprintf(ctx->err->msg, sizeof ctx->err->msg, fmt, ap);
    va_end(ap);
    return code;
}

pare_status pare_broadcast_shape(int na, const int64_t *a, int nb, const int64_t *b,
                                 int *nout, int64_t *out)
{
    int n = na > nb ? na : nb;

    if (n > PARE_MAX_DIMS)
        return PARE_EINPUT;
    for (int i = 0; i < n; i++) {
        int64_t da = i < n - na ? 1 : a[i - (n - na)];
        int64_t db = i < n - nb ? 1 : b[i - (n - nb)];
        if (da != db && da != 1 && db != 1)
            return PARE_EINPUT;
        out[i] = da == 1 ? db : da;
    }
    *nout = n;
    return PARE_OK;
}
