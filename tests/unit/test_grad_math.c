/* Backward of the element-wise, activation and reduce kernels
 * (core/src/ops/{elementwise,activation,reduce,broadcast}.c): every op and
 * important attribute form is checked against central finite differences
 * (gradcheck.h) on small random shapes with values kept away from kinks and
 * ties; broadcast reduction, tie rules, missing dout and dtypes are pinned
 * by direct checks. */
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

#define DIMS(...) (const int64_t[]){ __VA_ARGS__ }
#define NDIMS(...) ((int)(sizeof((const int64_t[]){ __VA_ARGS__ }) / sizeof(int64_t)))
/* A float32 tensor of the given dims filled with values in [lo, hi). */
#define RND(seed, lo, hi, ...) rnd(seed, lo, hi, NDIMS(__VA_ARGS__), DIMS(__VA_ARGS__))

static pare_tensor *rnd(uint64_t seed, float lo, float hi, int nd, const int64_t *dims)
{
    pare_tensor *t = pare_tensor_new(PARE_F32, nd, dims);
    assert_non_null(t);
    gc_fill(t, seed, lo, hi);
    return t;
}

static pare_tensor *scalar_f32(float v)
{
    pare_tensor *t = pare_tensor_new(PARE_F32, 0, NULL);
    assert_non_null(t);
    pare_tensor_f32(t)[0] = v;
    return t;
}

static pare_tensor *i64_vec(int n, const int64_t *v)
{
    int64_t d = n;
    pare_tensor *t = pare_tensor_new(PARE_I64, 1, &d);
    assert_non_null(t);
    memcpy(t->data, v, sizeof(int64_t) * (size_t)n);
    return t;
}

/* Moves values within `margin` of `kink` to kink +- 2 margin (keeps sign side). */
static void avoid(pare_tensor *t, float kink, float margin)
{
    float *x = pare_tensor_f32(t);
    for (int64_t i = 0; i < pare_tensor_numel(t); i++)
        if (fabsf(x[i] - kink) < margin)
            x[i] = x[i] >= kink ? kink + 2 * margin : kink - 2 * margin;
}

/* Distinct values 0.1 apart in a scrambled order (no ties for max/min). */
static void distinct(pare_tensor *t)
{
    int64_t n = pare_tensor_numel(t);
    for (int64_t i = 0; i < n; i++)
        pare_tensor_f32(t)[i] = (float)((i * 7919) % n) * 0.1f - (float)n * 0.05f;
}

static pare_attr attr_i(const char *name, int64_t v)
{
    pare_attr a = { .name = (char *)name, .type = PARE_ATTR_INT, .i = v };
    return a;
}
static pare_attr attr_f(const char *name, float v)
{
    pare_attr a = { .name = (char *)name, .type = PARE_ATTR_FLOAT, .f = v };
    return a;
}
static pare_attr attr_s(const char *name, const char *v)
{
    pare_attr a = { .name = (char *)name, .type = PARE_ATTR_STRING, .s = (char *)v,
                    .s_len = strlen(v) };
    return a;
}
static pare_attr attr_ints(const char *name, int64_t *v, int n)
{
    pare_attr a = { .name = (char *)name, .type = PARE_ATTR_INTS, .ints = v, .n = n };
    return a;
}

/* Runs gradcheck on op with inputs (all gradients wanted unless want says
 * otherwise) and frees the inputs. */
static void check(const char *op, int opset, const pare_attr *attrs, int n_attrs, int n_in,
                  pare_tensor **in, const bool *want, float eps)
{
    bool all[GC_MAX_IO];
    gc_case c;

    for (int i = 0; i < n_in; i++)
        all[i] = in[i] && in[i]->dtype == PARE_F32;
    memset(&c, 0, sizeof c);
    c.op_type = op;
    c.opset = opset;
    c.attrs = attrs;
    c.n_attrs = n_attrs;
    c.in = in;
    c.n_in = n_in;
    c.wants_grad = want ? want : all;
    c.n_out = 1;
    c.eps = eps;
    gradcheck(&c);
    for (int i = 0; i < n_in; i++)
        pare_tensor_free(in[i]);
}

#define CHECK(op, opset, attrs, n_attrs, want, eps, ...)                          \
    do {                                                                         \
        pare_tensor *in_[] = { __VA_ARGS__ };                                    \
        check(op, opset, attrs, n_attrs, (int)(sizeof in_ / sizeof in_[0]), in_, want, eps); \
    } while (0)

/* ---- direct runner: infer, forward, backward with a given dout ---- */

typedef struct bw {
    pare_node node;
    pare_tensor out;
    pare_tensor *outp[1];
    pare_tensor *din[GC_MAX_IO];
    pare_tensor *dout[1];
    pare_error err;
    pare_status rc;
} bw;

static int bw_threads = 1; /* ctx->n_threads for bw_run */

/* dout_val: every output element's gradient; NAN = no dout (NULL). din
 * entries are allocated for float32 inputs and poisoned with NaN. */
static void bw_run(bw *r, const char *op, int opset, const pare_attr *attrs, int n_attrs,
                   pare_tensor *const *in, int n_in, float dout_val)
{
    pare_op_ctx ctx;
    const pare_op_def *def = pare_op_find("", op, opset);
    void *scratch = NULL;
    size_t sb;

    memset(r, 0, sizeof *r);
    assert_non_null(def);
    assert_non_null(def->backward);
    r->node.name = (char *)"bw";
    r->node.op_type = (char *)op;
    r->node.domain = (char *)"";
    r->node.attrs = (pare_attr *)attrs;
    r->node.n_attrs = n_attrs;
    r->node.n_inputs = n_in;
    r->node.n_outputs = 1;
    r->outp[0] = &r->out;
    memset(&ctx, 0, sizeof ctx);
    ctx.node = &r->node;
    ctx.opset = opset;
    ctx.n_in = n_in;
    ctx.in = in;
    ctx.n_out = 1;
    ctx.out = r->outp;
    ctx.n_threads = bw_threads;
    ctx.where = "bw";
    ctx.err = &r->err;
    assert_int_equal(def->infer(&ctx), PARE_OK);
    r->out.data = pare_alloc_aligned(pare_tensor_nbytes(&r->out) + 4);
    assert_non_null(r->out.data);
    sb = ctx.scratch_bytes;
    if (def->backward_scratch && def->backward_scratch(&ctx) > sb)
        sb = def->backward_scratch(&ctx);
    scratch = sb ? pare_alloc_aligned(sb) : NULL;
    ctx.scratch = scratch;
    ctx.scratch_bytes = sb;
    assert_int_equal(def->forward(&ctx), PARE_OK);
    if (!isnan(dout_val)) {
        r->dout[0] = pare_tensor_new(r->out.dtype, r->out.ndim, r->out.dims);
        assert_non_null(r->dout[0]);
        if (r->out.dtype == PARE_F32)
            for (int64_t k = 0; k < pare_tensor_numel(r->dout[0]); k++)
                pare_tensor_f32(r->dout[0])[k] = dout_val;
    }
    for (int i = 0; i < n_in; i++)
        if (in[i] && in[i]->dtype != PARE_I64 && in[i]->dtype != PARE_BOOL) {
            r->din[i] = pare_tensor_new(in[i]->dtype, in[i]->ndim, in[i]->dims);
            assert_non_null(r->din[i]);
            if (in[i]->dtype == PARE_F32)
                for (int64_t k = 0; k < pare_tensor_numel(r->din[i]); k++)
                    pare_tensor_f32(r->din[i])[k] = NAN;
        }
    ctx.dout = r->dout;
    ctx.din = r->din;
    r->rc = def->backward(&ctx);
    pare_free(scratch);
    pare_free(r->out.data);
}

static void bw_fini(bw *r)
{
    for (int i = 0; i < GC_MAX_IO; i++)
        pare_tensor_free(r->din[i]);
    pare_tensor_free(r->dout[0]);
}

/* ---- binary arithmetic ---- */

static void test_add_sub(void **state)
{
    (void)state;
    CHECK("Add", 14, NULL, 0, NULL, 0, RND(1, -1, 1, 2, 3, 4), RND(2, -1, 1, 2, 3, 4));
    CHECK("Add", 14, NULL, 0, NULL, 0, RND(3, -1, 1, 2, 3, 4), RND(4, -1, 1, 3, 1));
    CHECK("Add", 14, NULL, 0, NULL, 0, RND(5, -1, 1, 3, 1), RND(6, -1, 1, 2, 1, 4));
    CHECK("Sub", 14, NULL, 0, NULL, 0, RND(7, -1, 1, 2, 3, 4), scalar_f32(0.3f));
    CHECK("Sub", 14, NULL, 0, NULL, 0, RND(8, -1, 1, 4), RND(9, -1, 1, 2, 3, 4));
}

static void test_mul_div(void **state)
{
    (void)state;
    CHECK("Mul", 14, NULL, 0, NULL, 0, RND(10, -1, 1, 2, 1, 4), RND(11, -1, 1, 3, 1));
    CHECK("Mul", 14, NULL, 0, NULL, 0, RND(12, -1, 1, 5), RND(13, -1, 1, 5));
    CHECK("Div", 14, NULL, 0, NULL, 0, RND(14, -1, 1, 2, 3, 4), RND(15, 0.5f, 2, 3, 1));
    CHECK("Div", 14, NULL, 0, NULL, 0, RND(16, -1, 1, 4), RND(17, 0.5f, 2, 2, 3, 4));
}

static void test_pow(void **state)
{
    int64_t two = 2;
    pare_tensor *e;
    bool want[2] = { true, false };

    (void)state;
    CHECK("Pow", 15, NULL, 0, NULL, 0, RND(18, 0.5f, 2, 2, 3), RND(19, -1.5f, 2, 2, 3));
    CHECK("Pow", 15, NULL, 0, NULL, 0, RND(20, 0.5f, 2, 2, 3, 4), RND(21, -1.5f, 2, 4));
    /* scalar exponent 2: the forward's fast path */
    CHECK("Pow", 15, NULL, 0, want, 0, RND(22, -2, 2, 3, 4), scalar_f32(2.0f));
    CHECK("Pow", 15, NULL, 0, NULL, 0, RND(122, 0.5f, 2, 3, 4), scalar_f32(3.0f));
    /* integer exponent: only the base gets a gradient */
    e = pare_tensor_new(PARE_I64, 0, NULL);
    assert_non_null(e);
    memcpy(e->data, &two, sizeof two);
    CHECK("Pow", 15, NULL, 0, want, 0, RND(23, -2, 2, 3, 4), e);
}

static void test_legacy_broadcast(void **state)
{
    pare_attr attrs[2] = { attr_i("broadcast", 1), attr_i("axis", 1) };

    (void)state;
    /* B (3) aligned at axis 1 of A (2, 3, 4) */
    CHECK("Mul", 6, attrs, 2, NULL, 0, RND(24, -1, 1, 2, 3, 4), RND(25, -1, 1, 3));
    CHECK("Sub", 6, attrs, 1, NULL, 0, RND(26, -1, 1, 2, 3, 4), RND(27, -1, 1, 4));
}

/* dB of a broadcast B is the sum over the broadcast dims, in B's shape. */
static void test_broadcast_grad_shape(void **state)
{
    pare_tensor *in[2] = { RND(28, -1, 1, 2, 3, 4), RND(29, -1, 1, 3, 1) };
    bw r;

    (void)state;
    bw_run(&r, "Mul", 14, NULL, 0, in, 2, 1.0f);
    assert_int_equal(r.rc, PARE_OK);
    assert_int_equal(r.din[1]->ndim, 2);
    assert_int_equal(r.din[1]->dims[0], 3);
    assert_int_equal(r.din[1]->dims[1], 1);
    for (int j = 0; j < 3; j++) {
        double want = 0.0;
        for (int n = 0; n < 2; n++)
            for (int k = 0; k < 4; k++)
                want += pare_tensor_f32(in[0])[(n * 3 + j) * 4 + k];
        assert_float_equal(pare_tensor_f32(r.din[1])[j], want, 1e-5);
    }
    /* dA = B broadcast */
    for (int k = 0; k < 24; k++)
        assert_float_equal(pare_tensor_f32(r.din[0])[k], pare_tensor_f32(in[1])[(k / 4) % 3],
                           1e-6);
    bw_fini(&r);
    pare_tensor_free(in[0]);
    pare_tensor_free(in[1]);
}

/* Large broadcast backward split over threads (row blocks) equals the
 * single-threaded result. */
static void test_threaded_matches_serial(void **state)
{
    static const char *const ops[] = { "Mul", "Div", "Where", "PRelu" };
    (void)state;
    for (size_t o = 0; o < sizeof ops / sizeof ops[0]; o++) {
        pare_tensor *in[3];
        int n_in = 2;
        bw r1, r2;
        if (!strcmp(ops[o], "Where")) {
            in[0] = pare_tensor_new(PARE_BOOL, 2, DIMS(1, 300));
            assert_non_null(in[0]);
            for (int k = 0; k < 300; k++)
                ((uint8_t *)in[0]->data)[k] = (uint8_t)(k % 3 == 0);
            in[1] = RND(200, -1, 1, 2, 150, 300);
            in[2] = RND(201, -1, 1, 150, 1);
            n_in = 3;
        } else if (!strcmp(ops[o], "PRelu")) {
            in[0] = RND(202, -1, 1, 2, 150, 300);
            in[1] = RND(203, 0.1f, 0.5f, 150, 1);
        } else {
            in[0] = RND(204, -1, 1, 2, 150, 300);
            in[1] = RND(205, 0.5f, 2, 150, 1);
        }
        bw_threads = 1;
        bw_run(&r1, ops[o], 16, NULL, 0, in, n_in, 0.5f);
        bw_threads = 2;
        bw_run(&r2, ops[o], 16, NULL, 0, in, n_in, 0.5f);
        bw_threads = 1;
        assert_int_equal(r1.rc, PARE_OK);
        assert_int_equal(r2.rc, PARE_OK);
        for (int i = 0; i < n_in; i++) {
            if (!r1.din[i] || r1.din[i]->dtype != PARE_F32)
                continue;
            for (int64_t k = 0; k < pare_tensor_numel(r1.din[i]); k++)
                assert_float_equal(pare_tensor_f32(r1.din[i])[k], pare_tensor_f32(r2.din[i])[k],
                                   1e-4);
        }
        bw_fini(&r1);
        bw_fini(&r2);
        for (int i = 0; i < n_in; i++)
            pare_tensor_free(in[i]);
    }
}

/* ---- unary ---- */

static void test_unary(void **state)
{
    pare_tensor *x;

    (void)state;
    CHECK("Sqrt", 13, NULL, 0, NULL, 0, RND(30, 0.5f, 2, 2, 5));
    CHECK("Exp", 13, NULL, 0, NULL, 0, RND(31, -2, 2, 2, 5));
    CHECK("Log", 13, NULL, 0, NULL, 0, RND(32, 0.5f, 3, 2, 5));
    CHECK("Neg", 13, NULL, 0, NULL, 0, RND(33, -2, 2, 2, 5));
    x = RND(34, -2, 2, 2, 5);
    avoid(x, 0.0f, 0.05f);
    CHECK("Abs", 13, NULL, 0, NULL, 0, x);
    CHECK("Reciprocal", 13, NULL, 0, NULL, 0, RND(35, 0.5f, 2, 2, 5));
    CHECK("Erf", 13, NULL, 0, NULL, 0, RND(36, -2, 2, 2, 5));
}

/* ---- Where, Expand, variadic ---- */

static void test_where(void **state)
{
    pare_tensor *c = pare_tensor_new(PARE_BOOL, 3, DIMS(2, 3, 1));
    bool want[3] = { false, true, true };

    (void)state;
    assert_non_null(c);
    for (int i = 0; i < 6; i++)
        ((uint8_t *)c->data)[i] = (uint8_t)(i % 3 != 1);
    CHECK("Where", 16, NULL, 0, want, 0, c, RND(37, -1, 1, 2, 3, 4), RND(38, -1, 1, 4));
}

static void test_expand(void **state)
{
    bool want[2] = { true, false };

    (void)state;
    CHECK("Expand", 13, NULL, 0, want, 0, RND(39, -1, 1, 3, 1), i64_vec(3, DIMS(2, 3, 4)));
    CHECK("Expand", 13, NULL, 0, want, 0, RND(40, -1, 1, 4), i64_vec(2, DIMS(3, 1)));
}

/* Values k 0.05 + i 0.013: inputs never within 1e-2 of each other. */
static pare_tensor *spaced(uint64_t seed, int i, int nd, const int64_t *dims)
{
    pare_tensor *t = rnd(seed, -20, 20, nd, dims);
    for (int64_t k = 0; k < pare_tensor_numel(t); k++)
        pare_tensor_f32(t)[k] = floorf(pare_tensor_f32(t)[k]) * 0.05f + (float)i * 0.013f;
    return t;
}

static void test_variadic(void **state)
{
    (void)state;
    CHECK("Sum", 13, NULL, 0, NULL, 0, RND(41, -1, 1, 2, 3), RND(42, -1, 1, 3),
          RND(43, -1, 1, 2, 1));
    CHECK("Mean", 13, NULL, 0, NULL, 0, RND(44, -1, 1, 2, 3), RND(45, -1, 1, 2, 3));
    CHECK("Max", 13, NULL, 0, NULL, 1e-3f, spaced(46, 0, 2, DIMS(2, 3)),
          spaced(47, 1, 1, DIMS(3)), spaced(48, 2, 2, DIMS(2, 3)));
    CHECK("Min", 13, NULL, 0, NULL, 1e-3f, spaced(49, 0, 2, DIMS(2, 3)),
          spaced(50, 1, 2, DIMS(2, 3)));
}

/* Max with equal inputs: the whole gradient goes to the first. */
static void test_variadic_max_tie(void **state)
{
    pare_tensor *in[2] = { RND(51, -1, 1, 2, 3), NULL };
    bw r;

    (void)state;
    in[1] = pare_tensor_dup(in[0]);
    bw_run(&r, "Max", 13, NULL, 0, in, 2, 1.0f);
    assert_int_equal(r.rc, PARE_OK);
    for (int k = 0; k < 6; k++) {
        assert_float_equal(pare_tensor_f32(r.din[0])[k], 1.0f, 0);
        assert_float_equal(pare_tensor_f32(r.din[1])[k], 0.0f, 0);
    }
    bw_fini(&r);
    pare_tensor_free(in[0]);
    pare_tensor_free(in[1]);
}

/* ---- activations ---- */

static void test_relu_family(void **state)
{
    pare_attr alpha = attr_f("alpha", 0.1f);
    pare_tensor *x;

    (void)state;
    x = RND(52, -1, 1, 2, 3, 4);
    avoid(x, 0.0f, 0.05f);
    CHECK("Relu", 14, NULL, 0, NULL, 0, x);
    x = RND(53, -1, 1, 2, 3, 4);
    avoid(x, 0.0f, 0.05f);
    CHECK("LeakyRelu", 16, &alpha, 1, NULL, 0, x);
    x = RND(54, -1, 1, 2, 3, 4);
    avoid(x, 0.0f, 0.05f);
    CHECK("Elu", 6, &alpha, 1, NULL, 0, x);
    x = RND(55, -1, 1, 2, 3, 4);
    avoid(x, 0.0f, 0.05f);
    CHECK("Selu", 6, NULL, 0, NULL, 0, x);
    x = RND(56, -1, 1, 2, 3, 4);
    avoid(x, 0.0f, 0.05f);
    CHECK("Celu", 12, &alpha, 1, NULL, 0, x);
    x = RND(57, 0, 2, 2, 3, 4);
    avoid(x, 1.0f, 0.05f);
    CHECK("ThresholdedRelu", 10, NULL, 0, NULL, 0, x);
}

static void test_prelu(void **state)
{
    pare_tensor *x;

    (void)state;
    /* per-channel slope (3, 1, 1) broadcast over (2, 3, 2, 2) */
    x = RND(58, -1, 1, 2, 3, 2, 2);
    avoid(x, 0.0f, 0.05f);
    CHECK("PRelu", 16, NULL, 0, NULL, 0, x, RND(59, 0.05f, 0.5f, 3, 1, 1));
    /* same-shape slope */
    x = RND(60, -1, 1, 2, 3);
    avoid(x, 0.0f, 0.05f);
    CHECK("PRelu", 16, NULL, 0, NULL, 0, x, RND(61, 0.05f, 0.5f, 2, 3));
    /* PRelu-6: slope of C values, one per channel */
    x = RND(62, -1, 1, 2, 3, 2);
    avoid(x, 0.0f, 0.05f);
    CHECK("PRelu", 6, NULL, 0, NULL, 0, x, RND(63, 0.05f, 0.5f, 3));
}

static void test_clip(void **state)
{
    pare_attr attrs[2] = { attr_f("min", -0.5f), attr_f("max", 0.4f) };
    bool want_x[3] = { true, false, false };
    pare_tensor *x;

    (void)state;
    /* opset 6: attributes */
    x = RND(64, -1, 1, 3, 5);
    avoid(x, -0.5f, 0.05f);
    avoid(x, 0.4f, 0.05f);
    CHECK("Clip", 6, attrs, 2, NULL, 0, x);
    /* opset 13: min and max inputs, which get gradients too */
    x = RND(65, -1, 1, 3, 5);
    avoid(x, -0.5f, 0.05f);
    avoid(x, 0.4f, 0.05f);
    CHECK("Clip", 13, NULL, 0, NULL, 0, x, scalar_f32(-0.5f), scalar_f32(0.4f));
    /* opset 13: max only (min omitted) */
    x = RND(66, -1, 1, 3, 5);
    avoid(x, 0.4f, 0.05f);
    CHECK("Clip", 13, NULL, 0, NULL, 0, x, NULL, scalar_f32(0.4f));
    /* opset 11: min only, gradient to x only */
    x = RND(67, -1, 1, 3, 5);
    avoid(x, -0.5f, 0.05f);
    CHECK("Clip", 11, NULL, 0, want_x, 0, x, scalar_f32(-0.5f));
    /* no limits at all: identity */
    CHECK("Clip", 13, NULL, 0, NULL, 0, RND(68, -1, 1, 3, 5));
}

static void test_smooth(void **state)
{
    pare_attr hs[2] = { attr_f("alpha", 0.5f), attr_f("beta", 0.5f) };
    pare_attr tanh_form = attr_s("approximate", "tanh");
    pare_tensor *x;

    (void)state;
    CHECK("Sigmoid", 13, NULL, 0, NULL, 0, RND(69, -4, 4, 2, 6));
    CHECK("Tanh", 13, NULL, 0, NULL, 0, RND(70, -3, 3, 2, 6));
    /* kinks at -1 and 1 */
    x = RND(71, -2, 2, 2, 6);
    avoid(x, -1.0f, 0.05f);
    avoid(x, 1.0f, 0.05f);
    CHECK("HardSigmoid", 6, hs, 2, NULL, 0, x);
    /* kinks at -3 and 3 */
    x = RND(72, -5, 5, 3, 6);
    avoid(x, -3.0f, 0.05f);
    avoid(x, 3.0f, 0.05f);
    CHECK("HardSwish", 14, NULL, 0, NULL, 0, x);
    CHECK("Gelu", 20, NULL, 0, NULL, 0, RND(73, -3, 3, 2, 6));
    CHECK("Gelu", 20, &tanh_form, 1, NULL, 0, RND(74, -3, 3, 2, 6));
    CHECK("Softplus", 1, NULL, 0, NULL, 0, RND(75, -3, 3, 2, 6));
    x = RND(76, -3, 3, 2, 6);
    avoid(x, 0.0f, 0.05f);
    CHECK("Softsign", 1, NULL, 0, NULL, 0, x);
}

static void test_softmax(void **state)
{
    pare_attr ax1 = attr_i("axis", 1), ax0 = attr_i("axis", 0);
    const char *ops[2] = { "Softmax", "LogSoftmax" };

    (void)state;
    for (int k = 0; k < 2; k++) {
        /* opset 13: one axis, default last; axis 1 of 3-D has inner > 1 */
        CHECK(ops[k], 13, NULL, 0, NULL, 0, RND(77 + (uint64_t)k, -2, 2, 2, 3, 4));
        CHECK(ops[k], 13, &ax1, 1, NULL, 0, RND(79 + (uint64_t)k, -2, 2, 2, 3, 4));
        CHECK(ops[k], 13, &ax0, 1, NULL, 0, RND(81 + (uint64_t)k, -2, 2, 3, 4));
        /* opset 11: coerced to 2-D at axis (default 1): normalized over 3 x 4 */
        CHECK(ops[k], 11, NULL, 0, NULL, 0, RND(83 + (uint64_t)k, -2, 2, 2, 3, 4));
        CHECK(ops[k], 11, &ax1, 1, NULL, 0, RND(85 + (uint64_t)k, -2, 2, 2, 3, 4));
    }
}

/* ---- reductions ---- */

static void test_reduce_sum_mean(void **state)
{
    int64_t ax02[2] = { 0, 2 }, axm1[1] = { -1 };
    pare_attr a02[2] = { attr_ints("axes", ax02, 2), attr_i("keepdims", 0) };
    pare_attr keep0 = attr_i("keepdims", 0);
    pare_attr noop = attr_i("noop_with_empty_axes", 1);
    pare_attr am1 = attr_ints("axes", axm1, 1);
    bool want[2] = { true, false };

    (void)state;
    /* axes attribute (opset 11), keepdims 0 */
    CHECK("ReduceSum", 11, a02, 2, NULL, 0, RND(87, -1, 1, 2, 3, 4));
    /* axes input (opset 13) */
    CHECK("ReduceSum", 13, &keep0, 1, want, 0, RND(88, -1, 1, 2, 3, 4), i64_vec(1, DIMS(1)));
    /* all axes */
    CHECK("ReduceSum", 13, NULL, 0, NULL, 0, RND(89, -1, 1, 2, 3, 4));
    /* empty axes with noop_with_empty_axes: identity */
    CHECK("ReduceSum", 13, &noop, 1, NULL, 0, RND(90, -1, 1, 2, 3));
    CHECK("ReduceMean", 13, &am1, 1, NULL, 0, RND(91, -1, 1, 2, 3, 4));
    CHECK("ReduceMean", 13, NULL, 0, NULL, 0, RND(92, -1, 1, 2, 3, 4));
    CHECK("ReduceMean", 18, NULL, 0, want, 0, RND(93, -1, 1, 2, 3, 4), i64_vec(2, DIMS(0, -1)));
}

static void test_reduce_max_min(void **state)
{
    int64_t ax1[1] = { 1 };
    pare_attr a1 = attr_ints("axes", ax1, 1);
    pare_attr keep0 = attr_i("keepdims", 0);
    bool want[2] = { true, false };
    pare_tensor *x;

    (void)state;
    x = RND(94, 0, 1, 2, 3, 4);
    distinct(x);
    CHECK("ReduceMax", 13, &a1, 1, NULL, 1e-2f, x);
    x = RND(95, 0, 1, 2, 3, 4);
    distinct(x);
    CHECK("ReduceMax", 18, &keep0, 1, want, 1e-2f, x, i64_vec(2, DIMS(0, 2)));
    x = RND(96, 0, 1, 2, 3, 4);
    distinct(x);
    CHECK("ReduceMin", 13, NULL, 0, NULL, 1e-2f, x);
    x = RND(97, 0, 1, 4, 5);
    distinct(x);
    CHECK("ReduceMin", 18, NULL, 0, want, 1e-2f, x, i64_vec(1, DIMS(-1)));
}

/* Ties: the first maximum in row-major order gets the whole gradient. */
static void test_reduce_max_tie(void **state)
{
    int64_t ax1[1] = { 1 };
    pare_attr a1 = attr_ints("axes", ax1, 1);
    pare_tensor *in[1] = { RND(98, 0, 1, 2, 3) };
    static const float x[6] = { 1, 5, 5, 2, 2, 0 };
    static const float want[6] = { 0, 2, 0, 2, 0, 0 };
    bw r;

    (void)state;
    memcpy(in[0]->data, x, sizeof x);
    bw_run(&r, "ReduceMax", 13, &a1, 1, in, 1, 2.0f);
    assert_int_equal(r.rc, PARE_OK);
    for (int k = 0; k < 6; k++)
        assert_float_equal(pare_tensor_f32(r.din[0])[k], want[k], 0);
    bw_fini(&r);
    pare_tensor_free(in[0]);
}

static void test_reduce_norms(void **state)
{
    int64_t ax1[1] = { 1 };
    pare_attr a1 = attr_ints("axes", ax1, 1);
    pare_tensor *x;

    (void)state;
    CHECK("ReduceL2", 13, &a1, 1, NULL, 0, RND(99, -1, 1, 2, 3, 4));
    CHECK("ReduceL2", 13, NULL, 0, NULL, 0, RND(100, -1, 1, 3, 4));
    x = RND(101, -1, 1, 2, 3, 4);
    avoid(x, 0.0f, 0.05f);
    CHECK("ReduceL1", 13, &a1, 1, NULL, 0, x);
    CHECK("ReduceSumSquare", 13, &a1, 1, NULL, 0, RND(102, -1, 1, 2, 3, 4));
    CHECK("ReduceLogSum", 13, &a1, 1, NULL, 0, RND(103, 0.5f, 2, 2, 3, 4));
    CHECK("ReduceLogSumExp", 13, &a1, 1, NULL, 0, RND(104, -2, 2, 2, 3, 4));
}

/* ---- contract details ---- */

/* No dout: the gradient is zero, and din is still overwritten. */
static void test_no_dout_zeroes(void **state)
{
    pare_tensor *in[2] = { RND(105, -1, 1, 2, 3), RND(106, -1, 1, 3) };
    pare_tensor *x[1] = { RND(107, -1, 1, 2, 3) };
    bw r;

    (void)state;
    bw_run(&r, "Add", 14, NULL, 0, in, 2, NAN);
    assert_int_equal(r.rc, PARE_OK);
    for (int k = 0; k < 3; k++)
        assert_float_equal(pare_tensor_f32(r.din[1])[k], 0.0f, 0);
    bw_fini(&r);
    bw_run(&r, "Softmax", 13, NULL, 0, x, 1, NAN);
    assert_int_equal(r.rc, PARE_OK);
    for (int k = 0; k < 6; k++)
        assert_float_equal(pare_tensor_f32(r.din[0])[k], 0.0f, 0);
    bw_fini(&r);
    pare_tensor_free(in[0]);
    pare_tensor_free(in[1]);
    pare_tensor_free(x[0]);
}

/* Non-float32 data: backward says so instead of computing garbage. */
static void test_other_dtypes_unsupported(void **state)
{
    pare_tensor *in[1] = { pare_tensor_new(PARE_F64, 1, DIMS(4)) };
    pare_tensor *ii[2] = { pare_tensor_new(PARE_I32, 1, DIMS(4)),
                           pare_tensor_new(PARE_I32, 1, DIMS(4)) };
    bw r;

    (void)state;
    bw_run(&r, "Relu", 14, NULL, 0, in, 1, 1.0f);
    assert_int_equal(r.rc, PARE_EUNSUPPORTED);
    assert_non_null(strstr(r.err.msg, "float64"));
    bw_fini(&r);
    bw_run(&r, "ReduceSum", 13, NULL, 0, in, 1, 1.0f);
    assert_int_equal(r.rc, PARE_EUNSUPPORTED);
    bw_fini(&r);
    bw_run(&r, "Mul", 14, NULL, 0, ii, 2, 1.0f);
    assert_int_equal(r.rc, PARE_EUNSUPPORTED);
    bw_fini(&r);
    pare_tensor_free(in[0]);
    pare_tensor_free(ii[0]);
    pare_tensor_free(ii[1]);
}

/* The rows this module owns are trainable; ReduceProd and Hardmax are not. */
static void test_rows_trainable(void **state)
{
    static const char *const yes[] = { "Add", "Sub", "Mul", "Div", "Pow", "Sqrt", "Exp", "Log",
                                       "Neg", "Abs", "Reciprocal", "Erf", "Where", "Expand",
                                       "Sum", "Mean", "Max", "Min", "Relu", "Clip", "LeakyRelu",
                                       "PRelu", "Sigmoid", "Tanh", "HardSigmoid", "HardSwish",
                                       "Softmax", "LogSoftmax", "Elu", "Softplus", "ReduceMean",
                                       "ReduceSum", "ReduceMax", "ReduceL2" };
    (void)state;
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
        for (int opset = 7; opset <= 21; opset++) {
            const pare_op_def *d = pare_op_find("", yes[i], opset);
            if (d && !d->backward)
                fail_msg("%s at opset %d has no backward", yes[i], opset);
        }
    assert_null(pare_op_find("", "ReduceProd", 13)->backward);
    assert_null(pare_op_find("", "Hardmax", 13)->backward);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_add_sub),
        cmocka_unit_test(test_mul_div),
        cmocka_unit_test(test_pow),
        cmocka_unit_test(test_legacy_broadcast),
        cmocka_unit_test(test_broadcast_grad_shape),
        cmocka_unit_test(test_threaded_matches_serial),
        cmocka_unit_test(test_unary),
        cmocka_unit_test(test_where),
        cmocka_unit_test(test_expand),
        cmocka_unit_test(test_variadic),
        cmocka_unit_test(test_variadic_max_tie),
        cmocka_unit_test(test_relu_family),
        cmocka_unit_test(test_prelu),
        cmocka_unit_test(test_clip),
        cmocka_unit_test(test_smooth),
        cmocka_unit_test(test_softmax),
        cmocka_unit_test(test_reduce_sum_mean),
        cmocka_unit_test(test_reduce_max_min),
        cmocka_unit_test(test_reduce_max_tie),
        cmocka_unit_test(test_reduce_norms),
        cmocka_unit_test(test_no_dout_zeroes),
        cmocka_unit_test(test_other_dtypes_unsupported),
        cmocka_unit_test(test_rows_trainable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
