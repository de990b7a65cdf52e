#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pare/alloc.h"

static long alloc_count;
static long fail_at_count; /* 0: off; else the alloc_count value that fails */

static int injected_failure(void)
{
    alloc_count++;
    return fail_at_count && alloc_count == fail_at_count;
}

void pare_alloc_fail_at(long nth)
{
    fail_at_count = nth > 0 ? alloc_count + nth : 0;
}

long pare_alloc_count(void)
{
    return alloc_count;
}

void *pare_alloc(size_t size)
{
    if (injected_failure())
        return NULL;
    return malloc(size ? size : 1);
}

void *pare_calloc(size_t count, size_t size)
{
    if (injected_failure())
        return NULL;
    if (!count || !size)
        return calloc(1, 1);
    return calloc(count, size);
}

void *pare_realloc(void *ptr, size_t size)
{
    if (injected_failure())
        return NULL;
    return realloc(ptr, size ? size : 1);
}

void *pare_alloc_aligned(size_t size)
{
    void *p = NULL;

    if (injected_failure())
        return NULL;
    if (size > SIZE_MAX - 64)
        return NULL;
    /* Round up so vector loads past the last element stay inside the block. */
    size = size ? (size + 63) & ~(size_t)63 : 64;
    if (posix_memalign(&p, 64, size))
        return NULL;
    return p;
}

void pare_free(void *ptr)
{
    free(ptr);
}

char *pare_strndup(const char *s, size_t n)
{
    char *d;
    size_t len = 0;

    if (!s)
        return NULL;
    while (len < n && s[len])
        len++;
    d = pare_alloc(len + 1);
    if (!d)
        return NULL;
    memcpy(d, s, len);
    d[len] = '\0';
    return d;
}

char *pare_strdup(const char *s)
{
    return s ? pare_strndup(s, strlen(s)) : NULL;
}
