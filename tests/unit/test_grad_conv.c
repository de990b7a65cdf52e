/* Backward of Conv and ConvTranspose (core/src/ops/conv_backward.c),
 * checked against central finite differences (gradcheck.h): plain, strided
 * and padded, dilated, grouped, depthwise, with and without bias, 1-D, 2-D
 * and 3-D, auto_pad, 1x1, pixel tiles, transposed with output_padding and
 * output_shape, and random shapes from a fixed seed. Plus: the result does
 * not depend on the thread count, no dY gives zero gradients, and
 * non-float32 inputs are refused. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "pare/alloc.h"
#include "pare/graph.h"
#include "pare/op.h"
#include "pare/tensor.h"

#include "gradcheck.h"

/* ---- helpers ---- */

#define MAX_T 64

static pare_tensor *g_pool[MAX_T];
static int g_n;

static pare_tensor *keep(pare_tensor *t)
{
    assert_non_null(t);
    assert_true(g_n < MAX_T);
    g_pool[g_n++] = t;
    return t;
}

static int teardown(void **state)
{
    (void)state;
    for (int i = 0; i < g_n; i++)
        pare_tensor_free(g_pool[i]);
    g_n = 0;
    return 0;
}

/* Random float32 tensor in [-1, 1). */
static pare_tensor *ft(int nd, const int64_t *dims, uint64_t seed)
{
    pare_tensor *t = keep(pare_tensor_new(PARE_F32, nd, dims));
    gc_fill(t, seed, -1.0f, 1.0f);
    return t;
}

#define D(...) ((const int64_t[]){__VA_ARGS__})
#define NDIM(...) ((int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)))
#define F(...) ft(NDIM(__VA_ARGS__), D(__VA_ARGS__), __LINE__)

#define AI(nm, v) { .name = (char *)(nm), .type = PARE_ATTR_INT, .i = (v) }
#define AS(nm, v) { .name = (char *)(nm), .type = PARE_ATTR_STRING, .s = (char *)(v), \
                    .s_len = sizeof(v) - 1 }
#define AIS(nm, ...) { .name = (char *)(nm), .type = PARE_ATTR_INTS, \
                       .ints = (int64_t[]){__VA_ARGS__}, .n = NDIM(__VA_ARGS__) }
#define NA(a) ((int)(sizeof(a) / sizeof((a)[0])))
#define L(...) {__VA_ARGS__}

static double check(const char *op, const pare_attr *attrs, int n_attrs, pare_tensor *const *ins,
                    const bool *wants, int n_in)
{
    gc_case c;

    memset(&c, 0, sizeof c);
    c.op_type = op;
    c.opset = 11;
    c.attrs = attrs;
    c.n_attrs = n_attrs;
    c.in = ins;
    c.n_in = n_in;
    c.wants_grad = wants;
    c.n_out = 1;
    return gradcheck(&c);
}

/* Checks every gradient, then each alone (the others NULL: skipped work
 * must not change what is computed). */
#define CHECK(op, attrs, n_attrs, ins)                                                       \
    do {                                                                                     \
        pare_tensor *const in_[] = ins;                                                      \
        const bool all_[] = {true, true, true}, x_[] = {true, false, false},                 \
                   w_[] = {false, true, false}, b_[] = {false, false, true};                 \
        assert_true(check(op, attrs, n_attrs, in_, all_, NA(in_)) <= 2e-2);                  \
        assert_true(check(op, attrs, n_attrs, in_, x_, NA(in_)) <= 2e-2);                    \
        assert_true(check(op, attrs, n_attrs, in_, w_, NA(in_)) <= 2e-2);                    \
        if (NA(in_) > 2)                                                                     \
            assert_true(check(op, attrs, n_attrs, in_, b_, NA(in_)) <= 2e-2);                \
    } while (0)

/* ---- Conv ---- */

static void test_conv_plain(void **state)
{
    (void)state;
    CHECK("Conv", NULL, 0, L(F(2, 3, 6, 6), F(4, 3, 3, 3), F(4)));
    CHECK("Conv", NULL, 0, L(F(3, 2, 5, 7), F(5, 2, 2, 3)));   /* no bias */
    {
        pare_attr a[] = {AIS("kernel_shape", 3, 3), AIS("pads", 1, 1, 1, 1)};
        CHECK("Conv", a, NA(a), L(F(2, 3, 6, 5), F(4, 3, 3, 3), F(4)));
    }
}

static void test_conv_stride_pads(void **state)
{
    (void)state;
    {
        pare_attr a[] = {AIS("strides", 2, 2), AIS("pads", 1, 0, 2, 1)};
        CHECK("Conv", a, NA(a), L(F(2, 3, 7, 8), F(4, 3, 3, 2), F(4)));
    }
    {
        pare_attr a[] = {AIS("strides", 3, 1), AIS("pads", 0, 2, 1, 0)};
        CHECK("Conv", a, NA(a), L(F(2, 2, 9, 6), F(3, 2, 2, 3)));
    }
}

static void test_conv_dilation(void **state)
{
    (void)state;
    {
        pare_attr a[] = {AIS("dilations", 2, 2), AIS("pads", 2, 2, 2, 2)};
        CHECK("Conv", a, NA(a), L(F(1, 2, 8, 8), F(3, 2, 3, 3), F(3)));
    }
    {
        pare_attr a[] = {AIS("dilations", 2, 3), AIS("strides", 2, 1), AIS("pads", 1, 0, 0, 2)};
        CHECK("Conv", a, NA(a), L(F(2, 3, 9, 10), F(2, 3, 2, 3)));
    }
}

static void test_conv_groups(void **state)
{
    (void)state;
    {
        pare_attr a[] = {AI("group", 2), AIS("pads", 1, 1, 1, 1)};
        CHECK("Conv", a, NA(a), L(F(2, 4, 5, 5), F(6, 2, 3, 3), F(6)));
    }
    {
        pare_attr a[] = {AI("group", 3), AIS("strides", 2, 2)};
        CHECK("Conv", a, NA(a), L(F(2, 6, 7, 7), F(3, 2, 3, 3)));
    }
}

static void test_conv_depthwise(void **state)
{
    (void)state;
    {
        pare_attr a[] = {AI("group", 4), AIS("pads", 1, 1, 1, 1)};
        CHECK("Conv", a, NA(a), L(F(2, 4, 6, 6), F(4, 1, 3, 3), F(4)));
    }
    {   /* stride 2, multiplier 2, no bias */
        pare_attr a[] = {AI("group", 4), AIS("strides", 2, 2), AIS("pads", 1, 0, 1, 1)};
        CHECK("Conv", a, NA(a), L(F(3, 4, 7, 6), F(8, 1, 3, 3)));
    }
    {   /* dilated, 1-D */
        pare_attr a[] = {AI("group", 3), AIS("dilations", 2), AIS("pads", 2, 1)};
        CHECK("Conv", a, NA(a), L(F(2, 3, 9), F(3, 1, 3), F(3)));
    }
}

static void test_conv_1d(void **state)
{
    (void)state;
    {
        pare_attr a[] = {AIS("strides", 2), AIS("pads", 1, 1), AIS("dilations", 2)};
        CHECK("Conv", a, NA(a), L(F(2, 3, 11), F(4, 3, 3), F(4)));
    }
}

static void test_conv_3d(void **state)
{
    (void)state;
    {
        pare_attr a[] = {AIS("strides", 1, 2, 1), AIS("pads", 1, 0, 1, 0, 1, 1)};
        CHECK("Conv", a, NA(a), L(F(2, 2, 4, 5, 4), F(3, 2, 2, 3, 2), F(3)));
    }
    {
        pare_attr a[] = {AI("group", 2), AIS("dilations", 2, 1, 1)};
        CHECK("Conv", a, NA(a), L(F(1, 4, 5, 3, 3), F(2, 2, 2, 2, 2)));
    }
}

static void test_conv_auto_pad(void **state)
{
    (void)state;
    {
        pare_attr a[] = {AS("auto_pad", "SAME_UPPER"), AIS("strides", 2, 2)};
        CHECK("Conv", a, NA(a), L(F(2, 3, 5, 6), F(2, 3, 3, 3), F(2)));
    }
    {
        pare_attr a[] = {AS("auto_pad", "SAME_LOWER")};
        CHECK("Conv", a, NA(a), L(F(1, 2, 5, 5), F(3, 2, 2, 2)));
    }
    {
        pare_attr a[] = {AS("auto_pad", "VALID"), AIS("strides", 2, 2)};
        CHECK("Conv", a, NA(a), L(F(1, 2, 6, 5), F(3, 2, 3, 3)));
    }
}

static void test_conv_pointwise(void **state)
{
    (void)state;
    CHECK("Conv", NULL, 0, L(F(2, 8, 5, 5), F(6, 8, 1, 1), F(6)));
    {
        pare_attr a[] = {AI("group", 2)};
        CHECK("Conv", a, NA(a), L(F(3, 4, 4, 3), F(6, 2, 1, 1)));
    }
    {   /* 1x1 stride 2 (a shortcut): not the pointwise path */
        pare_attr a[] = {AIS("strides", 2, 2)};
        CHECK("Conv", a, NA(a), L(F(2, 4, 7, 7), F(3, 4, 1, 1), F(3)));
    }
}

/* 16+ channels per group: the weight gradient by one GEMM per tap. */
static void test_conv_wide_groups(void **state)
{
    (void)state;
    {
        pare_attr a[] = {AI("group", 2), AIS("strides", 2, 2), AIS("pads", 1, 1, 1, 1)};
        CHECK("Conv", a, NA(a), L(F(2, 32, 7, 7), F(4, 16, 3, 3), F(4)));
    }
    {
        pare_attr a[] = {AIS("pads", 0, 1, 2, 1), AIS("dilations", 1, 2)};
        CHECK("Conv", a, NA(a), L(F(2, 16, 6, 7), F(3, 16, 2, 3)));
    }
}

/* More than one tile per image (K * pixels over 128K floats): row tiles of
 * the phase planes in 2-D, pixel tiles of im2col in 3-D; more than one
 * image part. */
static void test_conv_tiles(void **state)
{
    (void)state;
    {
        pare_attr a[] = {AIS("pads", 1, 1, 1, 1)};
        CHECK("Conv", a, NA(a), L(F(3, 16, 32, 33), F(2, 16, 3, 3), F(2)));
    }
    {
        pare_attr a[] = {AIS("pads", 1, 1, 1, 1, 1, 1)};
        CHECK("Conv", a, NA(a), L(F(2, 16, 6, 24, 24), F(2, 16, 3, 3, 3), F(2)));
    }
}

/* ---- ConvTranspose ---- */

static void test_convt(void **state)
{
    (void)state;
    {   /* stride 2, output_padding, groups */
        pare_attr a[] = {AI("group", 2), AIS("strides", 2, 2), AIS("output_padding", 1, 1),
                         AIS("pads", 1, 1, 1, 1)};
        CHECK("ConvTranspose", a, NA(a), L(F(2, 4, 3, 3), F(4, 3, 3, 3), F(6)));
    }
    {   /* no bias, dilation, asymmetric pads */
        pare_attr a[] = {AIS("dilations", 2, 1), AIS("pads", 0, 1, 1, 0)};
        CHECK("ConvTranspose", a, NA(a), L(F(2, 3, 4, 5), F(3, 2, 2, 3)));
    }
    {   /* output_shape larger than the kernel covers: the end is bias only */
        pare_attr a[] = {AIS("strides", 2, 2), AIS("output_shape", 9, 8)};
        CHECK("ConvTranspose", a, NA(a), L(F(1, 2, 3, 3), F(2, 3, 2, 2), F(3)));
    }
    {
        pare_attr a[] = {AS("auto_pad", "SAME_UPPER"), AIS("strides", 2, 2)};
        CHECK("ConvTranspose", a, NA(a), L(F(2, 2, 3, 4), F(2, 2, 3, 3), F(2)));
    }
    {   /* 1-D, stride 3 */
        pare_attr a[] = {AIS("strides", 3), AIS("output_padding", 2)};
        CHECK("ConvTranspose", a, NA(a), L(F(2, 3, 5), F(3, 2, 4), F(2)));
    }
    {   /* 3-D */
        pare_attr a[] = {AIS("strides", 2, 1, 2), AIS("pads", 0, 1, 0, 1, 0, 0)};
        CHECK("ConvTranspose", a, NA(a), L(F(1, 2, 2, 3, 2), F(2, 2, 2, 3, 2), F(2)));
    }
    /* 1x1 stride 1: the pointwise path */
    CHECK("ConvTranspose", NULL, 0, L(F(2, 4, 3, 5), F(4, 3, 1, 1), F(3)));
    {   /* 1x1 with a larger output_shape: not pointwise */
        pare_attr a[] = {AIS("output_shape", 4, 6)};
        CHECK("ConvTranspose", a, NA(a), L(F(2, 4, 3, 5), F(4, 3, 1, 1), F(3)));
    }
}

/* ---- random shapes ---- */

static int64_t rnd(uint64_t *s, int64_t lo, int64_t hi)
{
    return lo + (int64_t)(gc_rng(s) % (uint64_t)(hi - lo + 1));
}

static void test_random_shapes(void **state)
{
    uint64_t s = 2026;
    int done = 0;
    (void)state;
    while (done < 24) {
        int transposed = done % 3 == 2, nsp = (int)rnd(&s, 1, 2) + (done % 8 == 7);
        int64_t group = rnd(&s, 1, 3), n = rnd(&s, 1, 3);
        int64_t cg = rnd(&s, 1, 3), mg = rnd(&s, 1, 3);
        int64_t k[3], st[3], dl[3], pads[6], in[3], opad[3];
        int64_t xd[5], wd[5];
        int ok = 1;
        for (int i = 0; i < nsp; i++) {
            k[i] = rnd(&s, 1, 3);
            st[i] = rnd(&s, 1, 3);
            dl[i] = rnd(&s, 1, 2);
            pads[i] = rnd(&s, 0, 2);
            pads[nsp + i] = rnd(&s, 0, 2);
            in[i] = rnd(&s, 2, nsp == 3 ? 4 : 8);
            opad[i] = rnd(&s, 0, 1);
            if (opad[i] >= st[i] && opad[i] >= dl[i])
                opad[i] = 0;
            if (transposed) {
                int64_t full = st[i] * (in[i] - 1) + opad[i] + (k[i] - 1) * dl[i] + 1;
                ok &= full - pads[i] - pads[nsp + i] >= 1;
            } else {
                ok &= in[i] + pads[i] + pads[nsp + i] >= (k[i] - 1) * dl[i] + 1;
            }
        }
        if (!ok)
            continue;
        xd[0] = n;
        xd[1] = group * cg;
        wd[0] = transposed ? group * cg : group * mg;
        wd[1] = transposed ? mg : cg;
        for (int i = 0; i < nsp; i++) {
            xd[2 + i] = in[i];
            wd[2 + i] = k[i];
        }
        {
            pare_attr a[] = {
                AI("group", group),
                {.name = (char *)"strides", .type = PARE_ATTR_INTS, .ints = st, .n = nsp},
                {.name = (char *)"dilations", .type = PARE_ATTR_INTS, .ints = dl, .n = nsp},
                {.name = (char *)"pads", .type = PARE_ATTR_INTS, .ints = pads, .n = 2 * nsp},
                {.name = (char *)"output_padding", .type = PARE_ATTR_INTS, .ints = opad,
                 .n = nsp},
            };
            pare_tensor *x = ft(nsp + 2, xd, s + 1), *w = ft(nsp + 2, wd, s + 2);
            pare_tensor *b = ft(1, D(transposed ? group * mg : group * mg), s + 3);
            pare_tensor *const ins[] = {x, w, b};
            const bool all[] = {true, true, true};
            double e = check(transposed ? "ConvTranspose" : "Conv", a, transposed ? 5 : 4, ins,
                             all, done % 2 ? 3 : 2);
            if (!(e <= 2e-2))
                fail_msg("random case %d: worst relative error %g", done, e);
        }
        teardown(NULL);
        done++;
    }
}

/* ---- threads, no dY, errors ---- */

typedef struct run {
    pare_node node;
    pare_op_ctx ctx;
    pare_error err;
    pare_tensor *outs[1], *dout[1], *din[3];
    const pare_op_def *def;
} run;

/* infer + forward with n_threads, scratch for backward with n_threads;
 * dY random; din for every input, poisoned. */
static void run_setup(run *r, const char *op, const pare_attr *attrs, int n_attrs,
                      pare_tensor *const *in, int n_in, int n_threads)
{
    pare_tensor yv;
    size_t scratch;

    memset(r, 0, sizeof *r);
    r->def = pare_op_find("", op, 11);
    assert_non_null(r->def);
    r->node.name = (char *)"c";
    r->node.op_type = (char *)op;
    r->node.domain = (char *)"";
    r->node.attrs = (pare_attr *)attrs;
    r->node.n_attrs = n_attrs;
    r->node.n_inputs = n_in;
    r->node.n_outputs = 1;
    pare_tensor_view(&yv, PARE_UNDEFINED, -1, NULL, NULL);
    r->outs[0] = &yv;
    r->ctx.node = &r->node;
    r->ctx.opset = 11;
    r->ctx.n_in = n_in;
    r->ctx.in = in;
    r->ctx.n_out = 1;
    r->ctx.out = r->outs;
    r->ctx.n_threads = n_threads;
    r->ctx.where = "model.onnx: node 'c' (Conv)";
    r->ctx.err = &r->err;
    assert_int_equal(r->def->infer(&r->ctx), PARE_OK);
    r->outs[0] = keep(pare_tensor_new(yv.dtype, yv.ndim, yv.dims));
    r->dout[0] = ft(yv.ndim, yv.dims, 99);
    scratch = r->ctx.scratch_bytes;
    if (r->def->backward_scratch(&r->ctx) > scratch)
        scratch = r->def->backward_scratch(&r->ctx);
    r->ctx.scratch = scratch ? pare_alloc_aligned(scratch) : NULL;
    r->ctx.scratch_bytes = scratch;
    for (int i = 0; i < n_in; i++) {
        r->din[i] = keep(pare_tensor_new(PARE_F32, in[i]->ndim, in[i]->dims));
        for (int64_t k = 0; k < pare_tensor_numel(r->din[i]); k++)
            pare_tensor_f32(r->din[i])[k] = NAN;
    }
    r->ctx.dout = r->dout;
    r->ctx.din = r->din;
    assert_int_equal(r->def->forward(&r->ctx), PARE_OK);
}

static void run_fini(run *r)
{
    pare_free(r->ctx.scratch);
}

/* Two threads give the same bytes as one. */
static void same_bytes_any_threads(const char *op, const pare_attr *attrs, int n_attrs,
                                   pare_tensor *const *in, int n_in)
{
    run r;
    pare_tensor *one[3];

    run_setup(&r, op, attrs, n_attrs, in, n_in, 2);
    assert_int_equal(r.def->backward(&r.ctx), PARE_OK);
    for (int i = 0; i < n_in; i++) {
        one[i] = keep(pare_tensor_new(PARE_F32, in[i]->ndim, in[i]->dims));
        memcpy(one[i]->data, r.din[i]->data, pare_tensor_nbytes(one[i]));
        for (int64_t k = 0; k < pare_tensor_numel(r.din[i]); k++)
            pare_tensor_f32(r.din[i])[k] = NAN;
    }
    r.ctx.n_threads = 1;
    assert_int_equal(r.def->backward(&r.ctx), PARE_OK);
    for (int i = 0; i < n_in; i++) {
        int64_t n = pare_tensor_numel(one[i]);
        for (int64_t k = 0; k < n; k++)
            if (memcmp(pare_tensor_f32(one[i]) + k, pare_tensor_f32(r.din[i]) + k, 4))
                fail_msg("%s: d(input %d)[%lld] is %.9g with 2 threads, %.9g with 1", op, i,
                         (long long)k, (double)pare_tensor_f32(one[i])[k],
                         (double)pare_tensor_f32(r.din[i])[k]);
    }
    run_fini(&r);
}

static void test_threads_same_result(void **state)
{
    (void)state;
    {
        pare_attr a[] = {AIS("pads", 1, 1, 1, 1)};
        pare_tensor *const in[] = {F(7, 8, 12, 12), F(16, 8, 3, 3), F(16)};
        same_bytes_any_threads("Conv", a, NA(a), in, 3);
    }
    {
        pare_attr a[] = {AI("group", 8), AIS("strides", 2, 2), AIS("pads", 1, 1, 1, 1)};
        pare_tensor *const in[] = {F(5, 8, 11, 11), F(8, 1, 3, 3), F(8)};
        same_bytes_any_threads("Conv", a, NA(a), in, 3);
    }
    {
        pare_tensor *const in[] = {F(6, 16, 9, 9), F(24, 16, 1, 1)};
        same_bytes_any_threads("Conv", NULL, 0, in, 2);
    }
    {   /* 16+ channels, stride 2: tap-major weight gradient parts */
        pare_attr a[] = {AIS("strides", 2, 2), AIS("pads", 1, 1, 1, 1)};
        pare_tensor *const in[] = {F(9, 16, 10, 10), F(32, 16, 3, 3), F(32)};
        same_bytes_any_threads("Conv", a, NA(a), in, 3);
    }
    {   /* 3-D: im2col */
        pare_tensor *const in[] = {F(4, 3, 4, 5, 5), F(4, 3, 2, 2, 2), F(4)};
        same_bytes_any_threads("Conv", NULL, 0, in, 3);
    }
    {
        pare_attr a[] = {AIS("strides", 2, 2), AIS("output_padding", 1, 1)};
        pare_tensor *const in[] = {F(5, 6, 5, 5), F(6, 4, 3, 3), F(4)};
        same_bytes_any_threads("ConvTranspose", a, NA(a), in, 3);
    }
}

static void test_no_dout_zeroes(void **state)
{
    const char *ops[] = {"Conv", "ConvTranspose"};
    (void)state;
    for (int o = 0; o < 2; o++) {
        run r;
        pare_tensor *const in[] = {F(2, 4, 5, 5), F(4, 4, 3, 3), F(4)};
        run_setup(&r, ops[o], NULL, 0, in, 3, 1);
        r.dout[0] = NULL;
        assert_int_equal(r.def->backward(&r.ctx), PARE_OK);
        for (int i = 0; i < 3; i++)
            for (int64_t k = 0; k < pare_tensor_numel(r.din[i]); k++)
                if (pare_tensor_f32(r.din[i])[k] != 0.0f)
                    fail_msg("%s: d(input %d)[%lld] is %g without dY", ops[o], i, (long long)k,
                             (double)pare_tensor_f32(r.din[i])[k]);
        run_fini(&r);
    }
}

/* Inputs that are not float32 are refused with the node as location. */
static void test_backward_dtype(void **state)
{
    const pare_op_def *def = pare_op_find("", "Conv", 11);
    pare_tensor *x = keep(pare_tensor_new(PARE_F64, 4, D(1, 1, 3, 3)));
    pare_tensor *w = keep(pare_tensor_new(PARE_F64, 4, D(1, 1, 2, 2)));
    pare_tensor *y = keep(pare_tensor_new(PARE_F64, 4, D(1, 1, 2, 2)));
    pare_tensor *dy = keep(pare_tensor_new(PARE_F64, 4, D(1, 1, 2, 2)));
    pare_tensor *dx = keep(pare_tensor_new(PARE_F64, 4, D(1, 1, 3, 3)));
    pare_tensor *const in[] = {x, w}, *outs[] = {y}, *dins[] = {dx, NULL}, *douts[] = {dy};
    pare_node node;
    pare_op_ctx ctx;
    pare_error err;
    (void)state;
    memset(&node, 0, sizeof node);
    memset(&ctx, 0, sizeof ctx);
    memset(&err, 0, sizeof err);
    node.name = (char *)"c";
    node.op_type = (char *)"Conv";
    node.domain = (char *)"";
    node.n_inputs = 2;
    node.n_outputs = 1;
    ctx.node = &node;
    ctx.opset = 11;
    ctx.n_in = 2;
    ctx.in = in;
    ctx.n_out = 1;
    ctx.out = outs;
    ctx.n_threads = 1;
    ctx.where = "model.onnx: node 'c' (Conv)";
    ctx.err = &err;
    ctx.din = dins;
    ctx.dout = douts;
    assert_non_null(def);
    assert_int_equal(def->backward(&ctx), PARE_EUNSUPPORTED);
    assert_string_equal(err.msg, "Conv backward: dtype 'float64' not supported");
    assert_string_equal(err.where, "model.onnx: node 'c' (Conv)");
    assert_int_equal(err.code, PARE_EUNSUPPORTED);
}

/* A gradient buffer of the wrong size is an internal error, never a write
 * out of bounds. */
static void test_backward_bad_buffer(void **state)
{
    run r;
    pare_tensor *const in[] = {F(2, 3, 5, 5), F(4, 3, 3, 3)};
    (void)state;
    run_setup(&r, "Conv", NULL, 0, in, 2, 1);
    r.din[1] = F(4, 3, 3, 2);
    assert_int_equal(r.def->backward(&r.ctx), PARE_EINTERNAL);
    assert_string_equal(r.err.msg, "gradient buffers do not match the node's shapes");
    assert_string_equal(r.err.where, "model.onnx: node 'c' (Conv)");
    run_fini(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_conv_plain, teardown),
        cmocka_unit_test_teardown(test_conv_stride_pads, teardown),
        cmocka_unit_test_teardown(test_conv_dilation, teardown),
        cmocka_unit_test_teardown(test_conv_groups, teardown),
        cmocka_unit_test_teardown(test_conv_depthwise, teardown),
        cmocka_unit_test_teardown(test_conv_1d, teardown),
        cmocka_unit_test_teardown(test_conv_3d, teardown),
        cmocka_unit_test_teardown(test_conv_auto_pad, teardown),
        cmocka_unit_test_teardown(test_conv_pointwise, teardown),
        cmocka_unit_test_teardown(test_conv_wide_groups, teardown),
        cmocka_unit_test_teardown(test_conv_tiles, teardown),
        cmocka_unit_test_teardown(test_convt, teardown),
        cmocka_unit_test_teardown(test_random_shapes, teardown),
        cmocka_unit_test_teardown(test_threads_same_result, teardown),
        cmocka_unit_test_teardown(test_no_dout_zeroes, teardown),
        cmocka_unit_test_teardown(test_backward_dtype, teardown),
        cmocka_unit_test_teardown(test_backward_bad_buffer, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
