/* See compare.h. */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "pare/alloc.h"
#include "pare/error.h"

#include "compare.h"

static char *msgf(const char *fmt, ...) PARE_PRINTF(1, 2);
static char *msgf(const char *fmt, ...)
{
    va_list ap;
    char *buf;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    buf = pare_alloc((size_t)n + 1);
    if (!buf) {
        fprintf(stderr, "pare_conformance: out of memory\n");
        exit(2);
    }
    va_start(ap, fmt);
    vsnprintf(buf, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return buf;
}

static bool is_float_dtype(pare_dtype t)
{
    return t == PARE_F32 || t == PARE_F64 || t == PARE_F16 || t == PARE_BF16;
}

static void format_index(const pare_tensor *t, int64_t flat, char *buf, size_t size)
{
    int64_t idx[PARE_MAX_DIMS];
    size_t len = 0;

    for (int d = t->ndim - 1; d >= 0; d--) {
        idx[d] = t->dims[d] ? flat % t->dims[d] : 0;
        flat = t->dims[d] ? flat / t->dims[d] : 0;
    }
    len += (size_t)snprintf(buf, size, "[");
    for (int d = 0; d < t->ndim && len < size; d++)
        len += (size_t)snprintf(buf + len, size - len, "%s%" PRId64, d ? ", " : "", idx[d]);
    if (len < size)
        snprintf(buf + len, size - len, "]");
}

bool conf_float_close(double got, double want)
{
    if (isnan(want))
        return isnan(got);
    if (isnan(got))
        return false;
    if (isinf(want) || isinf(got))
        return got == want;
    return fabs(got - want) <= CONF_ATOL + CONF_RTOL * fabs(want);
}

static bool element_equal(const pare_tensor *got, const pare_tensor *want, int64_t i)
{
    if (is_float_dtype(want->dtype))
        return conf_float_close(pare_tensor_get_f64(got, i), pare_tensor_get_f64(want, i));
    if (want->dtype == PARE_U64)
        return ((const uint64_t *)got->data)[i] == ((const uint64_t *)want->data)[i];
    return pare_tensor_get_i64(got, i) == pare_tensor_get_i64(want, i);
}

static void format_element(const pare_tensor *t, int64_t i, char *buf, size_t size)
{
    if (is_float_dtype(t->dtype))
        snprintf(buf, size, "%.9g", pare_tensor_get_f64(t, i));
    else if (t->dtype == PARE_U64)
        snprintf(buf, size, "%" PRIu64, ((const uint64_t *)t->data)[i]);
    else
        snprintf(buf, size, "%" PRId64, pare_tensor_get_i64(t, i));
}

char *conf_compare(const pare_tensor *got, const pare_tensor *want, const char *name)
{
    char a[128], b[128], idx[160];
    int64_t n, first = -1, bad = 0;
    double max_err = 0.0;

    if (got->dtype != want->dtype)
        return msgf("output '%s': dtype %s, expected %s", name, pare_dtype_name(got->dtype),
                    pare_dtype_name(want->dtype));
    if (!pare_tensor_same_shape(got, want))
        return msgf("output '%s': shape %s, expected %s", name,
                    pare_shape_format(got->ndim, got->dims, a, sizeof a),
                    pare_shape_format(want->ndim, want->dims, b, sizeof b));
    if (!pare_dtype_size(want->dtype))
        return msgf("output '%s': dtype %s cannot be compared", name,
                    pare_dtype_name(want->dtype));
    n = pare_tensor_numel(want);
    if (n > 0 && (!got->data || !want->data))
        return msgf("output '%s': no data", name);
    for (int64_t i = 0; i < n; i++) {
        if (element_equal(got, want, i))
            continue;
        if (first < 0)
            first = i;
        bad++;
        if (is_float_dtype(want->dtype)) {
            double e = fabs(pare_tensor_get_f64(got, i) - pare_tensor_get_f64(want, i));
            if (!isnan(max_err) && !(e <= max_err))
                max_err = e; /* a NaN or Inf error sticks */
        }
    }
    if (first < 0)
        return NULL;
    format_index(want, first, idx, sizeof idx);
    format_element(got, first, a, sizeof a);
    format_element(want, first, b, sizeof b);
    if (is_float_dtype(want->dtype))
        return msgf("output '%s' %s: got %s, expected %s (%" PRId64 " of %" PRId64
                    " elements differ, max abs error %.3g)",
                    name, idx, a, b, bad, n, max_err);
    return msgf("output '%s' %s: got %s, expected %s (%" PRId64 " of %" PRId64
                " elements differ)", name, idx, a, b, bad, n);
}

