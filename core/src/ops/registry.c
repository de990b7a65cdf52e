#include <string.h>

#include "ops/families.h"

static const pare_op_def *const families[] = {
    ops_conv, ops_gemm, ops_pool, ops_norm, ops_elementwise,
    ops_activation, ops_reduce, ops_shape, ops_quant,
};
static const char *const family_names[] = {
    "conv", "gemm", "pool", "norm", "elementwise",
    "activation", "reduce", "shape", "quant",
};
#define N_FAMILIES (int)(sizeof families / sizeof families[0])

static int domain_is(const char *a, const char *b)
{
    /* "" and "ai.onnx" name the same default domain. */
    if (!a || !*a || !strcmp(a, "ai.onnx"))
        a = "";
    if (!b || !*b || !strcmp(b, "ai.onnx"))
        b = "";
    return strcmp(a, b) == 0;
}

const pare_op_def *pare_op_find(const char *domain, const char *op_type, int opset)
{
    for (int f = 0; f < N_FAMILIES; f++)
        for (const pare_op_def *d = families[f]; d->op_type; d++)
            if (!strcmp(d->op_type, op_type) && domain_is(d->domain, domain) &&
                opset >= d->since && (d->until == 0 || opset <= d->until))
                return d;
    return NULL;
}

int pare_op_is_known(const char *domain, const char *op_type)
{
    for (int f = 0; f < N_FAMILIES; f++)
        for (const pare_op_def *d = families[f]; d->op_type; d++)
            if (!strcmp(d->op_type, op_type) && domain_is(d->domain, domain))
                return 1;
    return 0;
}

int pare_op_row_count(void)
{
    int n = 0;
    for (int f = 0; f < N_FAMILIES; f++)
        for (const pare_op_def *d = families[f]; d->op_type; d++)
            n++;
    return n;
}

const pare_op_def *pare_op_row(int i)
{
    for (int f = 0; f < N_FAMILIES; f++)
        for (const pare_op_def *d = families[f]; d->op_type; d++)
            if (i-- == 0)
                return d;
    return NULL;
}

const char *pare_op_row_family(int i)
{
    for (int f = 0; f < N_FAMILIES; f++)
        for (const pare_op_def *d = families[f]; d->op_type; d++)
            if (i-- == 0)
                return family_names[f];
    return NULL;
}
