#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pare/error.h"

static void copy_where(pare_error *err, const char *where)
{
    snprintf(err->where, sizeof err->where, "%s", where ? where : "");
}

pare_status pare_fail(pare_error *err, pare_status code, const char *where,
                      const char *fmt, ...)
{
    va_list ap;

    if (!err)
        return code;
    err->code = code;
    copy_where(err, where);
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    err->hint[0] = '\0';
    return code;
}

void pare_error_hint(pare_error *err, const char *fmt, ...)
{
    va_list ap;

    if (!err)
        return;
    va_start(ap, fmt);
    vsnprintf(err->hint, sizeof err->hint, fmt, ap);
    va_end(ap);
}

void pare_error_prefix(pare_error *err, const char *fmt, ...)
{
    char prefix[256], old[sizeof err->msg];
    va_list ap;

    if (!err)
        return;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof old);
    {
        size_t lp = strnlen(prefix, sizeof prefix), lo = strnlen(old, sizeof old - 1);
        if (lp > sizeof err->msg - 1)
            lp = sizeof err->msg - 1;
        if (lo > sizeof err->msg - 1 - lp)
            lo = sizeof err->msg - 1 - lp;
        memcpy(err->msg, prefix, lp);
        memcpy(err->msg + lp, old, lo);
        err->msg[lp + lo] = '\0';
    }
}

void pare_error_clear(pare_error *err)
{
    if (err)
        memset(err, 0, sizeof *err);
}

size_t pare_error_format(const pare_error *err, char *buf, size_t size)
{
    int n;

    if (!size)
        return 0;
    if (!err) {
        buf[0] = '\0';
        return 0;
    }
    n = snprintf(buf, size, "%s%s%s%s%s%s", err->where, err->where[0] ? ": " : "",
                 err->msg[0] ? err->msg : pare_status_name(err->code),
                 err->hint[0] ? " (" : "", err->hint, err->hint[0] ? ")" : "");
    if (n < 0)
        return 0;
    return (size_t)n < size ? (size_t)n : size - 1;
}

const char *pare_status_name(pare_status code)
{
    switch (code) {
    case PARE_OK: return "ok";
    case PARE_EINPUT: return "bad input";
    case PARE_EIO: return "i/o error";
    case PARE_ENOMEM: return "out of memory";
    case PARE_EUNSUPPORTED: return "unsupported";
    case PARE_ECANCELED: return "canceled";
    case PARE_ENUMERIC: return "non-finite number";
    case PARE_EINTERNAL: return "internal error";
    }
    return "unknown error";
}

void pare_assert_failed(const char *cond, const char *file, int line)
{
    fprintf(stderr, "pare: internal error: assertion '%s' failed at %s:%d\n", cond, file, line);
    abort();
}

/* Optimal string alignment distance (a swap of neighbours is one edit),
 * case-insensitive, on short words. */
static int edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    int rows[3][128];

    if (la >= 127 || lb >= 127)
        return 1 << 20;
    for (size_t j = 0; j <= lb; j++)
        rows[0][j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        /* row i lives in rows[i % 3] */
        int *prev2 = rows[(i + 1) % 3], *prev = rows[(i + 2) % 3], *cur = rows[i % 3];
        int ca = a[i - 1] | 0x20;
        cur[0] = (int)i;
        for (size_t j = 1; j <= lb; j++) {
            int cb = b[j - 1] | 0x20;
            int best = prev[j - 1] + (ca != cb);
            if (prev[j] + 1 < best)
                best = prev[j] + 1;
            if (cur[j - 1] + 1 < best)
                best = cur[j - 1] + 1;
            if (i > 1 && j > 1 && ca == (b[j - 2] | 0x20) && (a[i - 2] | 0x20) == cb &&
                prev2[j - 2] + 1 < best)
                best = prev2[j - 2] + 1;
            cur[j] = best;
        }
    }
    return rows[la % 3][lb];
}

const char *pare_closest_word(const char *word, const char *const *candidates, int n)
{
    const char *best = NULL;
    int best_d = 1 << 20;
    size_t len = strlen(word);
    int limit = len <= 4 ? 1 : len <= 8 ? 2 : 3;

    for (int i = 0; i < n; i++) {
        int d;
        if (!candidates[i])
            continue;
        d = edit_distance(word, candidates[i]);
        /* A prefix or containment match is a good guess for long names. */
        if (d > limit && len >= 4 && strstr(candidates[i], word))
            d = limit;
        if (d < best_d) {
            best_d = d;
            best = candidates[i];
        }
    }
    return best_d <= limit ? best : NULL;
}
