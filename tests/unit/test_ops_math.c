/* Element-wise, activation, reduce and quant kernels (core/src/ops/
 * {elementwise,activation,reduce,quant,broadcast}.c): each op is run through
 * the registry (pare_op_find -> infer -> forward) on small nodes built on the
 * stack and compared with naive references written here. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pare/alloc.h"
#include "pare/graph.h"
#include "pare/op.h"
#include "pare/tensor.h"

/* ---- harness ---- */

#define MAX_IO 6

typedef struct run {
    pare_node node;
    pare_attr attrs[8];
    pare_tensor out[MAX_IO];
    pare_tensor *outp[MAX_IO];
    pare_error err;
    double flops;
    pare_status infer_rc;
} run;

static uint32_t rng_state = 12345;
static float frand(float lo, float hi)
{
    rng_state = rng_state * 1664525u + 1013904223u;
    return lo + (hi - lo) * (float)(rng_state >> 8) / (float)(1u << 24);
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

/* Runs op at opset on inputs (NULL = omitted) with n_threads; the outputs
 * are allocated after infer. Returns the first failing status. */
static pare_status run_op_t(run *r, const char *op, int opset, const pare_attr *attrs, int n_attrs,
                            pare_tensor **in, int n_in, int n_out, int n_threads)
{
    const pare_op_def *def = pare_op_find("", op, opset);
    pare_op_ctx ctx;
    pare_status rc;

    memset(r, 0, sizeof *r);
    assert_non_null(def);
    r->node.name = (char *)"n0";
    r->node.op_type = (char *)op;
    r->node.domain = (char *)"";
    for (int i = 0; i < n_attrs; i++)
        r->attrs[i] = attrs[i];
    r->node.attrs = r->attrs;
    r->node.n_attrs = n_attrs;
    r->node.n_inputs = n_in;
    r->node.n_outputs = n_out;
    for (int i = 0; i < n_out; i++) {
        pare_tensor_view(&r->out[i], PARE_UNDEFINED, -1, NULL, NULL);
        r->outp[i] = &r->out[i];
    }
    memset(&ctx, 0, sizeof ctx);
    ctx.node = &r->node;
    ctx.opset = opset;
    ctx.n_in = n_in;
    ctx.in = in;
    ctx.n_out = n_out;
    ctx.out = r->outp;
    ctx.n_threads = n_threads;
    ctx.where = "model.onnx: node 'n0'";
    ctx.err = &r->err;
    rc = def->infer(&ctx);
    r->infer_rc = rc;
    if (rc != PARE_OK)
        return rc;
    for (int i = 0; i < n_out; i++) {
        size_t bytes = pare_tensor_nbytes(&r->out[i]);
        assert_true(r->out[i].ndim >= 0);
        r->out[i].data = pare_alloc_aligned(bytes ? bytes : 1);
        assert_non_null(r->out[i].data);
        memset(r->out[i].data, 0xA5, bytes); /* garbage: forward must write all */
    }
    r->flops = def->flops ? def->flops(&ctx) : 0.0;
    ctx.scratch = ctx.scratch_bytes ? pare_alloc_aligned(ctx.scratch_bytes) : NULL;
    rc = def->forward(&ctx);
    pare_free(ctx.scratch);
    return rc;
}

static pare_status run_op(run *r, const char *op, int opset, const pare_attr *attrs, int n_attrs,
                          pare_tensor **in, int n_in, int n_out)
{
    return run_op_t(r, op, opset, attrs, n_attrs, in, n_in, n_out, 1);
}

static void run_fini(run *r)
{
    for (int i = 0; i < MAX_IO; i++) {
        pare_free(r->out[i].data);
        r->out[i].data = NULL;
    }
}

static pare_tensor *tensor(pare_dtype dt, int ndim, const int64_t *dims, const void *data)
{
    pare_tensor *t = pare_tensor_new(dt, ndim, dims);
    assert_non_null(t);
    if (data)
        memcpy(t->data, data, pare_tensor_nbytes(t));
    return t;
}
static pare_tensor *tf32(int ndim, const int64_t *dims, const float *data)
{
    return tensor(PARE_F32, ndim, dims, data);
}
static pare_tensor *trand(int ndim, const int64_t *dims, float lo, float hi)
{
    pare_tensor *t = tensor(PARE_F32, ndim, dims, NULL);
    float *p = t->data;
    for (int64_t i = 0; i < pare_tensor_numel(t); i++)
        p[i] = frand(lo, hi);
    return t;
}
static pare_tensor *ti64(int ndim, const int64_t *dims, const int64_t *data)
{
    return tensor(PARE_I64, ndim, dims, data);
}
/* A shape carrier: known dims, data only at run time. */
static pare_tensor *shape_only(pare_dtype dt, int ndim, const int64_t *dims)
{
    pare_tensor *t = pare_calloc(1, sizeof *t);
    assert_non_null(t);
    pare_tensor_view(t, dt, ndim, dims, NULL);
    return t;
}

static void free_all(pare_tensor **t, int n)
{
    for (int i = 0; i < n; i++)
        pare_tensor_free(t[i]);
}

static void assert_shape(const pare_tensor *t, int ndim, const int64_t *dims)
{
    assert_int_equal(t->ndim, ndim);
    for (int i = 0; i < ndim; i++)
        assert_int_equal(t->dims[i], dims[i]);
}

/* ONNX backend tolerance: |got - want| <= atol + rtol |want|. */
static void assert_close_tol(const float *got, const float *want, int64_t n, double rtol,
                             double atol)
{
    for (int64_t i = 0; i < n; i++) {
        if (isnan(want[i]) && isnan(got[i]))
            continue;
        if (isinf(want[i]) && got[i] == want[i])
            continue;
        if (!(fabs((double)got[i] - want[i]) <= atol + rtol * fabs((double)want[i]))) {
            print_error("element %lld: got %.9g want %.9g\n", (long long)i, got[i], want[i]);
            fail();
        }
    }
}
static void assert_close(const float *got, const float *want, int64_t n)
{
    assert_close_tol(got, want, n, 1e-5, 1e-6);
}

/* Offset in a tensor of shape (nd, dims) broadcast to out shape, for the
 * output's linear index i. */
static int64_t bcast_offset(int64_t i, int ond, const int64_t *odims, int nd, const int64_t *dims)
{
    int64_t off = 0, stride = 1;
    for (int d = ond - 1; d >= 0; d--) {
        int64_t idx = i % odims[d];
        int k = d - (ond - nd);
        i /= odims[d];
        if (k >= 0) {
            if (dims[k] != 1)
                off += idx * stride;
            stride *= dims[k];
        }
    }
    return off;
}

/* ---- binary arithmetic with broadcasting ---- */

static float ref_bin(const char *op, float a, float b)
{
    if (!strcmp(op, "Add")) return a + b;
    if (!strcmp(op, "Sub")) return a - b;
    if (!strcmp(op, "Mul")) return a * b;
    if (!strcmp(op, "Div")) return a / b;
    if (!strcmp(op, "Pow")) return powf(a, b);
    return NAN;
}

static void check_binary(const char *op, int na, const int64_t *da, int nb, const int64_t *db,
                         int n_threads)
{
    pare_tensor *in[2] = { trand(na, da, 0.5f, 2.0f), trand(nb, db, 0.5f, 2.0f) };
    run r;
    const float *a = in[0]->data, *b = in[1]->data;
    float *want;
    int64_t n;

    assert_int_equal(run_op_t(&r, op, 14, NULL, 0, in, 2, 1, n_threads), PARE_OK);
    n = pare_tensor_numel(&r.out[0]);
    want = malloc((size_t)n * sizeof *want);
    for (int64_t i = 0; i < n; i++)
        want[i] = ref_bin(op, a[bcast_offset(i, r.out[0].ndim, r.out[0].dims, na, da)],
                          b[bcast_offset(i, r.out[0].ndim, r.out[0].dims, nb, db)]);
    assert_close(r.out[0].data, want, n);
    assert_true(r.flops == (double)n);
    free(want);
    run_fini(&r);
    free_all(in, 2);
}

static void test_binary_broadcast_shapes(void **state)
{
    static const struct { int na; int64_t a[4]; int nb; int64_t b[4]; } cases[] = {
        { 3, { 2, 3, 4 }, 3, { 2, 3, 4 } },       /* same shape */
        { 3, { 2, 3, 4 }, 0, { 0 } },             /* scalar right */
        { 1, { 1 }, 3, { 2, 3, 4 } },             /* scalar-like left */
        { 3, { 2, 3, 4 }, 1, { 4 } },             /* row */
        { 4, { 2, 3, 4, 5 }, 3, { 3, 1, 1 } },    /* channel */
        { 4, { 2, 3, 4, 5 }, 4, { 2, 3, 1, 1 } }, /* per (n, c) */
        { 2, { 3, 1 }, 2, { 1, 4 } },             /* both sides */
        { 3, { 2, 1, 4 }, 2, { 3, 1 } },
        { 4, { 1, 3, 1, 5 }, 4, { 2, 1, 4, 1 } },
        { 2, { 5, 1 }, 1, { 7 } },
    };
    static const char *const ops[] = { "Add", "Sub", "Mul", "Div", "Pow" };
    (void)state;
    for (size_t o = 0; o < sizeof ops / sizeof ops[0]; o++)
        for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
            check_binary(ops[o], cases[c].na, cases[c].a, cases[c].nb, cases[c].b, 1);
}

static void test_binary_threaded_paths(void **state)
{
    /* rows >= threads, few long rows (blocked), many short rows */
    static const int64_t a1[] = { 64, 16, 64 }, b1[] = { 64 };
    static const int64_t a2[] = { 1, 200003 }, b2[] = { 1 };
    static const int64_t a3[] = { 3, 70001 }, b3[] = { 3, 1 };
    static const int64_t a4[] = { 20000, 3 }, b4[] = { 20000, 1 };
    static const int64_t a5[] = { 8, 16, 28, 28 }, b5[] = { 16, 1, 1 };
    (void)state;
    check_binary("Add", 3, a1, 1, b1, 2);
    check_binary("Mul", 2, a2, 1, b2, 2);
    check_binary("Sub", 2, a3, 2, b3, 2);
    check_binary("Div", 2, a4, 2, b4, 3);
    check_binary("Add", 4, a5, 3, b5, 2);
}

static void test_binary_int_and_errors(void **state)
{
    static const int64_t d3[] = { 3 }, d1[] = { 1 };
    int64_t a[3] = { 7, -7, INT64_MAX }, b[1] = { 2 };
    int32_t ia[3] = { 7, -7, INT32_MIN }, ib[3] = { 0, 2, -1 };
    pare_tensor *in[2] = { ti64(1, d3, a), ti64(1, d1, b) };
    pare_tensor *in32[2] = { tensor(PARE_I32, 1, d3, ia), tensor(PARE_I32, 1, d3, ib) };
    pare_tensor *mixed[2] = { in[0], in32[1] };
    pare_tensor *half[2] = { tensor(PARE_F16, 1, d3, NULL), tensor(PARE_F16, 1, d3, NULL) };
    static const int64_t d4[] = { 4 };
    pare_tensor *bad[2] = { in[0], ti64(1, d4, NULL) };
    const int64_t *o;
    const int32_t *o32;
    run r;
    (void)state;

    assert_int_equal(run_op(&r, "Add", 13, NULL, 0, in, 2, 1), PARE_OK);
    o = r.out[0].data;
    assert_int_equal(r.out[0].dtype, PARE_I64);
    assert_int_equal(o[0], 9);
    assert_int_equal(o[1], -5);
    assert_int_equal(o[2], INT64_MIN + 1); /* wraps, no UB */
    run_fini(&r);
    assert_int_equal(run_op(&r, "Mul", 13, NULL, 0, in, 2, 1), PARE_OK);
    o = r.out[0].data;
    assert_int_equal(o[0], 14);
    assert_int_equal(o[1], -14);
    run_fini(&r);
    assert_int_equal(run_op(&r, "Div", 13, NULL, 0, in, 2, 1), PARE_OK);
    o = r.out[0].data;
    assert_int_equal(o[0], 3);
    assert_int_equal(o[1], -3); /* truncates toward zero */
    run_fini(&r);
    /* int32: division by zero gives 0, INT_MIN / -1 wraps instead of trapping */
    assert_int_equal(run_op(&r, "Div", 14, NULL, 0, in32, 2, 1), PARE_OK);
    o32 = r.out[0].data;
    assert_int_equal(o32[0], 0);
    assert_int_equal(o32[1], -3);
    assert_int_equal(o32[2], INT32_MIN);
    run_fini(&r);

    assert_int_equal(run_op(&r, "Add", 14, NULL, 0, mixed, 2, 1), PARE_EINPUT);
    assert_string_equal(r.err.msg, "input dtypes differ: 'int64' and 'int32'");
    assert_string_equal(r.err.where, "model.onnx: node 'n0'");
    assert_int_equal(run_op(&r, "Add", 14, NULL, 0, bad, 2, 1), PARE_EINPUT);
    assert_string_equal(r.err.msg, "cannot broadcast shapes [3] and [4]");
    assert_int_equal(run_op(&r, "Mul", 14, NULL, 0, half, 2, 1), PARE_EUNSUPPORTED);
    assert_string_equal(r.err.msg, "dtype 'float16' not supported");
    assert_int_equal(run_op(&r, "Add", 14, NULL, 0, in, 1, 1), PARE_EINPUT);
    assert_string_equal(r.err.msg, "expects 2 inputs, got 1");
    free_all(in, 2);
    free_all(in32, 2);
    free_all(half, 2);
    pare_tensor_free(bad[1]);
}

static void test_small_int_types(void **state)
{
    static const int64_t d[] = { 4 };
    uint8_t a[4] = { 250, 3, 0, 100 }, b[4] = { 10, 3, 1, 7 };
    int8_t c[4] = { -128, 5, -3, 127 }, e[4] = { -1, 5, 7, 1 };
    pare_tensor *u[2] = { tensor(PARE_U8, 1, d, a), tensor(PARE_U8, 1, d, b) };
    pare_tensor *s[2] = { tensor(PARE_I8, 1, d, c), tensor(PARE_I8, 1, d, e) };
    const uint8_t *o;
    const int8_t *q;
    run r;
    (void)state;

    assert_int_equal(run_op(&r, "Add", 14, NULL, 0, u, 2, 1), PARE_OK);
    o = r.out[0].data;
    assert_int_equal(o[0], 4); /* 260 wraps */
    assert_int_equal(o[3], 107);
    run_fini(&r);
    assert_int_equal(run_op(&r, "Sub", 14, NULL, 0, u, 2, 1), PARE_OK);
    o = r.out[0].data;
    assert_int_equal(o[2], 255);
    run_fini(&r);
    assert_int_equal(run_op(&r, "Max", 13, NULL, 0, s, 2, 1), PARE_OK);
    q = r.out[0].data;
    assert_int_equal(q[0], -1);
    assert_int_equal(q[2], 7);
    assert_int_equal(q[3], 127);
    run_fini(&r);
    assert_int_equal(run_op(&r, "Min", 13, NULL, 0, s, 2, 1), PARE_OK);
    q = r.out[0].data;
    assert_int_equal(q[0], -128);
    assert_int_equal(q[2], -3);
    run_fini(&r);
    free_all(u, 2);
    free_all(s, 2);
}

/* Opset < 7: B lines up with A at `axis` (broadcast=1) or shapes must match. */
static void test_binary_legacy_broadcast(void **state)
{
    static const int64_t da[] = { 2, 3, 4 }, db[] = { 3 }, db2[] = { 3, 4 }, bad[] = { 2 };
    pare_tensor *a = trand(3, da, -1, 1), *b = trand(1, db, -1, 1), *b2 = trand(2, db2, -1, 1);
    pare_tensor *bb = trand(1, bad, -1, 1);
    pare_attr bc[2] = { attr_i("broadcast", 1), attr_i("axis", 1) };
    const float *av = a->data, *bv = b->data, *b2v = b2->data;
    float want[24];
    run r;
    (void)state;

    /* axis 1: B[3] runs along A's dim 1 (numpy would align it with dim 2) */
    for (int i = 0; i < 24; i++)
        want[i] = av[i] * bv[(i / 4) % 3];
    assert_int_equal(run_op(&r, "Mul", 6, bc, 2, (pare_tensor *[]){ a, b }, 2, 1), PARE_OK);
    assert_shape(&r.out[0], 3, da);
    assert_close(r.out[0].data, want, 24);
    run_fini(&r);
    /* no axis: suffix matching */
    for (int i = 0; i < 24; i++)
        want[i] = av[i] - b2v[i % 12];
    assert_int_equal(run_op(&r, "Sub", 1, bc, 1, (pare_tensor *[]){ a, b2 }, 2, 1), PARE_OK);
    assert_close(r.out[0].data, want, 24);
    run_fini(&r);
    /* without broadcast=1 the shapes must be equal */
    assert_int_equal(run_op(&r, "Add", 6, NULL, 0, (pare_tensor *[]){ a, b2 }, 2, 1), PARE_EINPUT);
    assert_string_equal(r.err.msg, "shapes [2, 3, 4] and [3, 4] differ and broadcast is not set");
    assert_int_equal(run_op(&r, "Add", 6, bc, 2, (pare_tensor *[]){ a, bb }, 2, 1), PARE_EINPUT);
    assert_string_equal(r.err.msg, "cannot broadcast [2] to [2, 3, 4] at axis 1");
    /* the same B at opset 7 broadcasts numpy style (trailing) and fails */
    assert_int_equal(run_op(&r, "Mul", 7, NULL, 0, (pare_tensor *[]){ a, b }, 2, 1), PARE_EINPUT);
    pare_tensor_free(a);
    pare_tensor_free(b);
    pare_tensor_free(b2);
    pare_tensor_free(bb);
}

static void test_mod_forms(void **state)
{
    static const int64_t d[] = { 6 };
    int64_t a[6] = { -4, 7, 5, 4, -7, 8 }, b[6] = { 3, -3, 8, -2, 3, 0 };
    int64_t want_mod[6] = { 2, -2, 5, 0, 2, 0 };   /* divisor's sign */
    int64_t want_fmod[6] = { -1, 1, 5, 0, -1, 0 }; /* dividend's sign */
    float fa[4] = { -4.3f, 7.2f, 5.0f, 4.3f }, fb[4] = { 2.1f, -3.4f, 8.0f, -2.1f };
    float want_f[4];
    static const int64_t d4[] = { 4 };
    pare_tensor *ia = ti64(1, d, a), *ib = ti64(1, d, b);
    pare_tensor *xa = tf32(1, d4, fa), *xb = tf32(1, d4, fb);
    pare_attr f1 = attr_i("fmod", 1);
    run r;
    (void)state;

    for (int i = 0; i < 4; i++)
        want_f[i] = fmodf(fa[i], fb[i]);
    assert_int_equal(run_op(&r, "Mod", 13, NULL, 0, (pare_tensor *[]){ ia, ib }, 2, 1), PARE_OK);
    assert_memory_equal(r.out[0].data, want_mod, sizeof want_mod);
    run_fini(&r);
    assert_int_equal(run_op(&r, "Mod", 10, &f1, 1, (pare_tensor *[]){ ia, ib }, 2, 1), PARE_OK);
    assert_memory_equal(r.out[0].data, want_fmod, sizeof want_fmod);
    run_fini(&r);
    assert_int_equal(run_op(&r, "Mod", 13, &f1, 1, (pare_tensor *[]){ xa, xb }, 2, 1), PARE_OK);
    assert_close(r.out[0].data, want_f, 4);
    run_fini(&r);
    assert_int_equal(run_op(&r, "Mod", 13, NULL, 0, (pare_tensor *[]){ xa, xb }, 2, 1), PARE_EINPUT);
    assert_string_equal(r.err.msg, "floating-point Mod needs fmod=1");
    pare_tensor_free(ia);
    pare_tensor_free(ib);
    pare_tensor_free(xa);
    pare_tensor_free(xb);
}

/* ---- Pow ---- */

static void test_pow_forms(void **state)
{
    static const int64_t d3[] = { 3 };
    float x[3] = { 1.5f, -2.0f, 4.0f };
    float e2 = 2.0f, eh = 0.5f, e3 = 3.0f, em1 = -1.0f, e0 = 0.0f, e7 = 1.7f;
    float *exps[] = { &e2, &eh, &e3, &em1, &e0, &e7 };
    int32_t ib[3] = { 1, 2, 3 };
    float fe[3] = { 4.0f, 5.0f, 0.5f };
    int64_t le[3] = { 4, 5, 6 };
    pare_tensor *base = tf32(1, d3, x);
    run r;
    (void)state;

    for (size_t k = 0; k < sizeof exps / sizeof exps[0]; k++) {
        pare_tensor *e = tf32(0, NULL, exps[k]);
        pare_tensor *in[2] = { base, e };
        float want[3];
        assert_int_equal(run_op(&r, "Pow", 15, NULL, 0, in, 2, 1), PARE_OK);
        for (int i = 0; i < 3; i++)
            want[i] = powf(x[i], *exps[k]);
        assert_close(r.out[0].data, want, 3);
        run_fini(&r);
        pare_tensor_free(e);
    }
    {
        /* int32 base, float exponent: computed in double, truncated */
        pare_tensor *in[2] = { tensor(PARE_I32, 1, d3, ib), tf32(1, d3, fe) };
        const int32_t *o;
        assert_int_equal(run_op(&r, "Pow", 15, NULL, 0, in, 2, 1), PARE_OK);
        assert_int_equal(r.out[0].dtype, PARE_I32);
        o = r.out[0].data;
        assert_int_equal(o[0], 1);
        assert_int_equal(o[1], 32);
        assert_int_equal(o[2], 1); /* sqrt(3) = 1.73 truncated */
        run_fini(&r);
        free_all(in, 2);
    }
    {
        /* float base, int64 exponent: exponent converted in scratch */
        pare_tensor *in[2] = { base, ti64(1, d3, le) };
        float want[3] = { powf(1.5f, 4), powf(-2.0f, 5), powf(4.0f, 6) };
        assert_int_equal(run_op(&r, "Pow", 12, NULL, 0, in, 2, 1), PARE_OK);
        assert_int_equal(r.out[0].dtype, PARE_F32);
        assert_close(r.out[0].data, want, 3);
        run_fini(&r);
        pare_tensor_free(in[1]);
    }
    pare_tensor_free(base);
}

/* ---- unary math ---- */

typedef double (*ref1)(double);
static double d_neg(double x) { return -x; }
static double d_recip(double x) { return 1.0 / x; }
static double d_sign(double x) { return x > 0 ? 1 : x < 0 ? -1 : 0; }
static double d_round(double x) { return nearbyint(x); }

static void check_unary(const char *op, int opset, ref1 f, float lo, float hi, double rtol)
{
    static const int64_t d[] = { 3, 1001 };
    pare_tensor *in[1] = { trand(2, d, lo, hi) };
    const float *x = in[0]->data;
    float *want = malloc(3003 * sizeof *want);
    run r;

    for (int i = 0; i < 3003; i++)
        want[i] = (float)f(x[i]);
    assert_int_equal(run_op_t(&r, op, opset, NULL, 0, in, 1, 1, 2), PARE_OK);
    assert_shape(&r.out[0], 2, d);
    assert_close_tol(r.out[0].data, want, 3003, rtol, 1e-7);
    run_fini(&r);
    free(want);
    free_all(in, 1);
}

static void test_unary_math(void **state)
{
    (void)state;
    check_unary("Sqrt", 13, sqrt, 0.0f, 100.0f, 1e-6);
    check_unary("Exp", 13, exp, -80.0f, 80.0f, 1e-6);
    check_unary("Exp", 6, exp, -1e-3f, 1e-3f, 1e-6);
    check_unary("Log", 13, log, 1e-6f, 1e4f, 1e-6);
    check_unary("Neg", 13, d_neg, -5.0f, 5.0f, 0);
    check_unary("Abs", 13, fabs, -5.0f, 5.0f, 0);
    check_unary("Reciprocal", 13, d_recip, 0.1f, 5.0f, 1e-6);
    check_unary("Erf", 13, erf, -5.0f, 5.0f, 1e-6);
    check_unary("Erf", 9, erf, -1e-3f, 1e-3f, 1e-6);
    check_unary("Floor", 13, floor, -50.0f, 50.0f, 0);
    check_unary("Ceil", 13, ceil, -50.0f, 50.0f, 0);
    check_unary("Sign", 13, d_sign, -2.0f, 2.0f, 0);
    check_unary("Round", 11, d_round, -50.0f, 50.0f, 0);
}

static void test_unary_special_values(void **state)
{
    static const int64_t d[] = { 8 };
    float x[8] = { 0.5f, 1.5f, 2.5f, -0.5f, -2.5f, NAN, INFINITY, -INFINITY };
    float round_want[8] = { 0.0f, 2.0f, 2.0f, -0.0f, -2.0f, NAN, INFINITY, -INFINITY };
    float exp_want[8];
    float erf_want[8];
    int64_t iv[3] = { -5, 0, INT64_MIN };
    static const int64_t d3[] = { 3 };
    uint8_t bv[3] = { 0, 1, 1 };
    pare_tensor *in[1] = { tf32(1, d, x) };
    pare_tensor *ii[1] = { ti64(1, d3, iv) };
    pare_tensor *bi[1] = { tensor(PARE_BOOL, 1, d3, bv) };
    pare_tensor *fi[1] = { in[0] };
    const int64_t *o;
    const uint8_t *ob;
    run r;
    (void)state;

    for (int i = 0; i < 8; i++) {
        exp_want[i] = expf(x[i]);
        erf_want[i] = erff(x[i]);
    }
    assert_int_equal(run_op(&r, "Round", 11, NULL, 0, in, 1, 1), PARE_OK);
    assert_close_tol(r.out[0].data, round_want, 8, 0, 0);
    run_fini(&r);
    assert_int_equal(run_op(&r, "Exp", 13, NULL, 0, in, 1, 1), PARE_OK);
    assert_close_tol(r.out[0].data, exp_want, 8, 1e-6, 0);
    run_fini(&r);
    assert_int_equal(run_op(&r, "Erf", 13, NULL, 0, in, 1, 1), PARE_OK);
    assert_close_tol(r.out[0].data, erf_want, 8, 1e-6, 0);
    run_fini(&r);
    assert_int_equal(run_op(&r, "Abs", 13, NULL, 0, ii, 1, 1), PARE_OK);
    o = r.out[0].data;
    assert_int_equal(o[0], 5);
    assert_int_equal(o[1], 0);
    assert_int_equal(o[2], INT64_MIN); /* wraps like two's complement */
    run_fini(&r);
    assert_int_equal(run_op(&r, "Neg", 13, NULL, 0, ii, 1, 1), PARE_OK);
    o = r.out[0].data;
    assert_int_equal(o[0], 5);
    run_fini(&r);
    assert_int_equal(run_op(&r, "Not", 1, NULL, 0, bi, 1, 1), PARE_OK);
    ob = r.out[0].data;
    assert_int_equal(r.out[0].dtype, PARE_BOOL);
    assert_int_equal(ob[0], 1);
    assert_int_equal(ob[1], 0);
    run_fini(&r);
    assert_int_equal(run_op(&r, "Not", 1, NULL, 0, fi, 1, 1), PARE_EUNSUPPORTED);
    assert_int_equal(run_op(&r, "Sqrt", 13, NULL, 0, ii, 1, 1), PARE_EUNSUPPORTED);
    assert_string_equal(r.err.msg, "dtype 'int64' not supported");
    free_all(in, 1);
    free_all(ii, 1);
    free_all(bi, 1);
}

static void test_isnan_isinf_shrink_trig(void **state)
{
    static const int64_t d[] = { 6 };
    float x[6] = { 1.0f, NAN, INFINITY, -INFINITY, -0.7f, 0.2f };
    uint8_t want_nan[6] = { 0, 1, 0, 0, 0, 0 }, want_inf[6] = { 0, 0, 1, 1, 0, 0 };
    uint8_t want_pos[6] = { 0, 0, 1, 0, 0, 0 };
    float want_shrink[6] = { 0.5f, 0.0f, INFINITY, -INFINITY, -0.2f, 0.0f }; /* NaN -> 0, as in ONNX */
    float want_sin[6], want_atan[6];
    pare_tensor *in[1] = { tf32(1, d, x) };
    pare_attr pos_only = attr_i("detect_negative", 0);
    pare_attr shrink[2] = { attr_f("lambd", 0.5f), attr_f("bias", 0.5f) };
    run r;
    (void)state;

    for (int i = 0; i < 6; i++) {
        want_sin[i] = sinf(x[i]);
        want_atan[i] = atanf(x[i]);
    }
    assert_int_equal(run_op(&r, "IsNaN", 13, NULL, 0, in, 1, 1), PARE_OK);
    assert_int_equal(r.out[0].dtype, PARE_BOOL);
    assert_memory_equal(r.out[0].data, want_nan, 6);
    run_fini(&r);
    assert_int_equal(run_op(&r, "IsInf", 10, NULL, 0, in, 1, 1), PARE_OK);
    assert_memory_equal(r.out[0].data, want_inf, 6);
    run_fini(&r);
    assert_int_equal(run_op(&r, "IsInf", 20, &pos_only, 1, in, 1, 1), PARE_OK);
    assert_memory_equal(r.out[0].data, want_pos, 6);
    run_fini(&r);
    assert_int_equal(run_op(&r, "Shrink", 9, shrink, 2, in, 1, 1), PARE_OK);
    assert_close(r.out[0].data, want_shrink, 6);
    run_fini(&r);
    assert_int_equal(run_op(&r, "Sin", 7, NULL, 0, in, 1, 1), PARE_OK);
    assert_close(r.out[0].data, want_sin, 6);
    run_fini(&r);
    assert_int_equal(run_op(&r, "Atan", 7, NULL, 0, in, 1, 1), PARE_OK);
    assert_close(r.out[0].data, want_atan, 6);
    run_fini(&r);
    free_all(in, 1);
}

/* ---- comparisons and logic ---- */

static void test_compare_and_logic(void **state)
{
    static const int64_t da[] = { 2, 3 }, db[] = { 3 };
    float a[6] = { 1, 2, 3, 4, 5, 6 }, b[3] = { 2, 2, 7 };
    int64_t ia[6] = { 1, 2, 3, 4, 5, 6 }, ib[3] = { 2, 2, 7 };
    uint8_t ba[6] = { 0, 1, 0, 1, 1, 0 }, bb[3] = { 1, 1, 0 };
    pare_tensor *f[2] = { tf32(2, da, a), tf32(1, db, b) };
    pare_tensor *i[2] = { ti64(2, da, ia), ti64(1, db, ib) };
    pare_tensor *bo[2] = { tensor(PARE_BOOL, 2, da, ba), tensor(PARE_BOOL, 1, db, bb) };
    static const struct { const char *op; int opset; uint8_t want[6]; } cases[] = {
        { "Equal", 13, { 0, 1, 0, 0, 0, 0 } },
        { "Less", 13, { 1, 0, 1, 0, 0, 1 } },
        { "Greater", 13, { 0, 0, 0, 1, 1, 0 } },
        { "LessOrEqual", 16, { 1, 1, 1, 0, 0, 1 } },
        { "GreaterOrEqual", 16, { 0, 1, 0, 1, 1, 0 } },
    };
    static const struct { const char *op; uint8_t want[6]; } logic[] = {
        { "And", { 0, 1, 0, 1, 1, 0 } },
        { "Or", { 1, 1, 0, 1, 1, 0 } },
        { "Xor", { 1, 0, 0, 0, 0, 0 } },
        { "Equal", { 0, 1, 1, 1, 1, 1 } },
    };
    run r;
    (void)state;

    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        for (int k = 0; k < 2; k++) {
            assert_int_equal(run_op(&r, cases[c].op, cases[c].opset, NULL, 0, k ? i : f, 2, 1),
                             PARE_OK);
            assert_int_equal(r.out[0].dtype, PARE_BOOL);
            assert_shape(&r.out[0], 2, da);
            assert_memory_equal(r.out[0].data, cases[c].want, 6);
            run_fini(&r);
        }
    }
    for (size_t c = 0; c < sizeof logic / sizeof logic[0]; c++) {
        assert_int_equal(run_op(&r, logic[c].op, 13, NULL, 0, bo, 2, 1), PARE_OK);
        assert_memory_equal(r.out[0].data, logic[c].want, 6);
        run_fini(&r);
    }
    assert_int_equal(run_op(&r, "And", 7, NULL, 0, f, 2, 1), PARE_EUNSUPPORTED);
    free_all(f, 2);
    free_all(i, 2);
    free_all(bo, 2);
}

/* ---- Where, Expand ---- */

static void test_where(void **state)
{
    static const int64_t dc[] = { 2, 1 }, dx[] = { 1, 3 }, out_dims[] = { 2, 3 };
    uint8_t c[2] = { 1, 0 };
    float x[3] = { 1, 2, 3 }, y = -1;
    int64_t xi[3] = { 10, 20, 30 }, yi = -5;
    pare_tensor *in[3] = { tensor(PARE_BOOL, 2, dc, c), tf32(2, dx, x), tf32(0, NULL, &y) };
    pare_tensor *ii[3] = { in[0], ti64(2, dx, xi), ti64(0, NULL, &yi) };
    pare_tensor *bad[3] = { in[1], in[1], in[2] };
    float want[6] = { 1, 2, 3, -1, -1, -1 };
    int64_t wanti[6] = { 10, 20, 30, -5, -5, -5 };
    run r;
    (void)state;

    assert_int_equal(run_op(&r, "Where", 16, NULL, 0, in, 3, 1), PARE_OK);
    assert_shape(&r.out[0], 2, out_dims);
    assert_close(r.out[0].data, want, 6);
    run_fini(&r);
    assert_int_equal(run_op(&r, "Where", 9, NULL, 0, ii, 3, 1), PARE_OK);
    assert_memory_equal(r.out[0].data, wanti, sizeof wanti);
    run_fini(&r);
    assert_int_equal(run_op(&r, "Where", 9, NULL, 0, bad, 3, 1), PARE_EINPUT);
    assert_string_equal(r.err.msg, "condition must be bool, not 'float32'");
    free_all(in, 3);
    pare_tensor_free(ii[1]);
    pare_tensor_free(ii[2]);
}

static void test_expand(void **state)
{
    static const int64_t dx[] = { 3, 1 }, ds[] = { 3 }, ds1[] = { 1 }, out_dims[] = { 2, 3, 6 };
    float x[3] = { 1, 2, 3 };
    int64_t shape[3] = { 2, 1, 6 }, shape_small[1] = { 1 };
    pare_tensor *in[2] = { tf32(2, dx, x), ti64(1, ds, shape) };
    pare_tensor *keep[2] = { in[0], ti64(1, ds1, shape_small) };
    pare_tensor *dyn[2] = { in[0], shape_only(PARE_I64, 1, ds) };
    const float *o;
    run r;
    (void)state;

    /* bidirectional: [3,1] with shape [2,1,6] gives [2,3,6] */
    assert_int_equal(run_op(&r, "Expand", 13, NULL, 0, in, 2, 1), PARE_OK);
    assert_shape(&r.out[0], 3, out_dims);
    o = r.out[0].data;
    for (int n = 0; n < 2; n++)
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 6; j++)
                assert_true(o[(n * 3 + i) * 6 + j] == x[i]);
    run_fini(&r);
    /* a shape smaller than the input keeps the input's dims */
    assert_int_equal(run_op(&r, "Expand", 8, NULL, 0, keep, 2, 1), PARE_OK);
    assert_shape(&r.out[0], 2, dx);
    run_fini(&r);
    assert_int_equal(run_op(&r, "Expand", 13, NULL, 0, dyn, 2, 1), PARE_EUNSUPPORTED);
    assert_string_equal(r.err.msg, "shape input must be a constant");
    free_all(in, 2);
    pare_tensor_free(keep[1]);
    pare_tensor_free(dyn[1]);
}

/* ---- variadic ---- */

static void test_variadic(void **state)
{
    static const int64_t d1[] = { 2, 1 }, d2[] = { 3 }, d3[] = { 2, 3 }, d0[] = { 1 };
    float a[2] = { 1, 10 }, b[3] = { 1, NAN, 3 }, c[6] = { 5, 5, 5, -5, -5, -5 }, s = 100;
    pare_tensor *in[4] = { tf32(2, d1, a), tf32(1, d2, b), tf32(2, d3, c), tf32(1, d0, &s) };
    float sum_want[6], max_want[6], min_want[6], mean_want[6];
    run r;
    (void)state;

    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++) {
            float va = a[i], vb = b[j], vc = c[i * 3 + j];
            sum_want[i * 3 + j] = va + vb + vc + s;
            mean_want[i * 3 + j] = (va + vb + vc + s) / 4;
            max_want[i * 3 + j] = isnan(vb) ? NAN : fmaxf(fmaxf(va, vb), fmaxf(vc, s));
            min_want[i * 3 + j] = isnan(vb) ? NAN : fminf(fminf(va, vb), fminf(vc, s));
        }
    /* 4 inputs: ping-pong through scratch; 3 inputs: the other parity */
    assert_int_equal(run_op(&r, "Sum", 13, NULL, 0, in, 4, 1), PARE_OK);
    assert_shape(&r.out[0], 2, d3);
    assert_close(r.out[0].data, sum_want, 6);
    run_fini(&r);
    assert_int_equal(run_op(&r, "Max", 13, NULL, 0, in, 4, 1), PARE_OK);
    assert_close(r.out[0].data, max_want, 6);
    run_fini(&r);
    assert_int_equal(run_op(&r, "Min", 8, NULL, 0, in, 4, 1), PARE_OK);
    assert_close(r.out[0].data, min_want, 6);
    run_fini(&r);
    assert_int_equal(run_op(&r, "Mean", 13, NULL, 0, in, 4, 1), PARE_OK);
    assert_close(r.out[0].data, mean_want, 6);
    run_fini(&r);
    assert_int_equal(run_op(&r, "Sum", 6, NULL, 0, in, 3, 1), PARE_OK);
    for (int i = 0; i < 6; i++)
        sum_want[i] -= s;
    assert_close(r.out[0].data, sum_want, 6);
    run_fini(&r);
    assert_int_equal(run_op(&r, "Max", 13, NULL, 0, in + 2, 1, 1), PARE_OK);
    assert_close(r.out[0].data, c, 6);
    run_fini(&r);
    free_all(in, 4);
}

/* ---- activations ---- */

typedef double (*act_ref)(double x, double alpha, double beta);
static double r_relu(double x, double a, double b) { (void)a; (void)b; return x > 0 ? x : 0; }
static double r_leaky(double x, double a, double b) { (void)b; return x > 0 ? x : a * x; }
static double r_sigmoid(double x, double a, double b) { (void)a; (void)b; return 1 / (1 + exp(-x)); }
static double r_tanh(double x, double a, double b) { (void)a; (void)b; return tanh(x); }
static double r_hsig(double x, double a, double b) { return fmax(0, fmin(1, a * x + b)); }
static double r_hswish(double x, double a, double b) { (void)a; (void)b; return x * fmax(0, fmin(1, x / 6 + 0.5)); }
static double r_gelu(double x, double a, double b) { (void)a; (void)b; return 0.5 * x * (1 + erf(x / sqrt(2.0))); }
static double r_gelu_tanh(double x, double a, double b)
{
    (void)a; (void)b;
    return 0.5 * x * (1 + tanh(sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)));
}
static double r_elu(double x, double a, double b) { (void)b; return x > 0 ? x : a * (exp(x) - 1); }
static double r_selu(double x, double a, double g) { return x > 0 ? g * x : g * a * (exp(x) - 1); }
static double r_celu(double x, double a, double b) { (void)b; return fmax(0, x) + fmin(0, a * (exp(x / a) - 1)); }
static double r_softplus(double x, double a, double b) { (void)a; (void)b; return log(exp(x) + 1); }
static double r_softsign(double x, double a, double b) { (void)a; (void)b; return x / (1 + fabs(x)); }
static double r_thr(double x, double a, double b) { (void)b; return x > a ? x : 0; }
static double r_mish(double x, double a, double b) { (void)a; (void)b; return x * tanh(log1p(exp(x))); }

static void check_act(const char *op, int opset, const pare_attr *attrs, int n_attrs, act_ref f,
                      double alpha, double beta, float lo, float hi)
{
    static const int64_t d[] = { 2, 3, 700 };
    pare_tensor *in[1] = { trand(3, d, lo, hi) };
    const float *x = in[0]->data;
    float *want = malloc(4200 * sizeof *want);
    run r;

    for (int i = 0; i < 4200; i++)
        want[i] = (float)f(x[i], alpha, beta);
    assert_int_equal(run_op_t(&r, op, opset, attrs, n_attrs, in, 1, 1, 2), PARE_OK);
    assert_shape(&r.out[0], 3, d);
    assert_close_tol(r.out[0].data, want, 4200, 2e-6, 1e-6);
    assert_true(r.flops == 4200.0);
    run_fini(&r);
    free(want);
    free_all(in, 1);
}

static void test_activations(void **state)
{
    pare_attr a_alpha = attr_f("alpha", 0.3f);
    pare_attr hs[2] = { attr_f("alpha", 0.25f), attr_f("beta", 0.4f) };
    pare_attr selu[2] = { attr_f("alpha", 2.0f), attr_f("gamma", 3.0f) };
    pare_attr g_tanh = attr_s("approximate", "tanh");
    pare_attr g_none = attr_s("approximate", "none");
    pare_attr g_bad = attr_s("approximate", "fast");
    pare_attr c_alpha = attr_f("alpha", 2.0f);
    static const int64_t d[] = { 4 };
    pare_tensor *in[1] = { tensor(PARE_F32, 1, d, NULL) };
    run r;
    (void)state;

    check_act("Relu", 14, NULL, 0, r_relu, 0, 0, -3, 3);
    check_act("LeakyRelu", 16, NULL, 0, r_leaky, 0.01, 0, -3, 3);
    check_act("LeakyRelu", 6, &a_alpha, 1, r_leaky, 0.3f, 0, -3, 3);
    check_act("Sigmoid", 13, NULL, 0, r_sigmoid, 0, 0, -20, 20);
    check_act("Tanh", 13, NULL, 0, r_tanh, 0, 0, -10, 10);
    check_act("Tanh", 6, NULL, 0, r_tanh, 0, 0, -0.01f, 0.01f);
    check_act("HardSigmoid", 6, NULL, 0, r_hsig, 0.2f, 0.5f, -5, 5);
    check_act("HardSigmoid", 6, hs, 2, r_hsig, 0.25f, 0.4f, -5, 5);
    check_act("HardSwish", 14, NULL, 0, r_hswish, 0, 0, -5, 5);
    check_act("Gelu", 20, NULL, 0, r_gelu, 0, 0, -6, 6);
    check_act("Gelu", 20, &g_none, 1, r_gelu, 0, 0, -6, 6);
    check_act("Gelu", 20, &g_tanh, 1, r_gelu_tanh, 0, 0, -6, 6);
    check_act("Elu", 6, NULL, 0, r_elu, 1.0, 0, -5, 5);
    check_act("Elu", 6, &a_alpha, 1, r_elu, 0.3f, 0, -5, 5);
    check_act("Selu", 6, NULL, 0, r_selu, 1.67326319217681884765625, 1.05070102214813232421875, -5, 5);
    check_act("Selu", 6, selu, 2, r_selu, 2.0, 3.0, -5, 5);
    check_act("Celu", 12, &c_alpha, 1, r_celu, 2.0, 0, -5, 5);
    check_act("Softplus", 1, NULL, 0, r_softplus, 0, 0, -30, 30);
    check_act("Softsign", 1, NULL, 0, r_softsign, 0, 0, -5, 5);
    check_act("ThresholdedRelu", 10, NULL, 0, r_thr, 1.0, 0, -3, 3);
    check_act("ThresholdedRelu", 10, &a_alpha, 1, r_thr, 0.3f, 0, -3, 3);
    check_act("Mish", 18, NULL, 0, r_mish, 0, 0, -10, 10);

    assert_null(pare_op_find("", "Gelu", 19));
    assert_null(pare_op_find("", "HardSwish", 13));
    assert_int_equal(run_op(&r, "Gelu", 20, &g_bad, 1, in, 1, 1), PARE_EINPUT);
    assert_string_equal(r.err.msg, "attribute 'approximate' is 'fast', expected 'none' or 'tanh'");
    free_all(in, 1);
}

static void test_relu_int_and_nan(void **state)
{
    static const int64_t d[] = { 4 };
    int32_t xi[4] = { -3, 0, 5, INT32_MIN };
    float xf[4] = { -1.0f, NAN, 2.0f, -0.0f };
    pare_tensor *ii[1] = { tensor(PARE_I32, 1, d, xi) };
    pare_tensor *fi[1] = { tf32(1, d, xf) };
    const int32_t *o;
    const float *of;
    run r;
    (void)state;

    assert_int_equal(run_op(&r, "Relu", 14, NULL, 0, ii, 1, 1), PARE_OK);
    o = r.out[0].data;
    assert_int_equal(o[0], 0);
    assert_int_equal(o[2], 5);
    assert_int_equal(o[3], 0);
    run_fini(&r);
    assert_int_equal(run_op(&r, "Relu", 6, NULL, 0, fi, 1, 1), PARE_OK);
    of = r.out[0].data;
    assert_true(of[0] == 0.0f);
    assert_true(isnan(of[1]));
    assert_true(of[2] == 2.0f);
    run_fini(&r);
    free_all(ii, 1);
    free_all(fi, 1);
}

static void test_prelu(void **state)
{
    static const int64_t dx[] = { 2, 3, 4, 5 }, ds[] = { 3, 1, 1 }, dbad[] = { 3, 1 };
    static const int64_t ds2[] = { 5 };
    pare_tensor *x = trand(4, dx, -2, 2);
    pare_tensor *slopes[2] = { trand(3, ds, 0.1f, 0.5f), trand(1, ds2, 0.1f, 0.5f) };
    pare_tensor *bad[2] = { x, trand(2, dbad, 0.1f, 0.5f) };
    pare_tensor *big[2] = { trand(1, ds2, -1, 1), x }; /* slope bigger than x */
    float want[120];
    run r;
    (void)state;

    for (int k = 0; k < 2; k++) {
        pare_tensor *in[2] = { x, slopes[k] };
        const float *xv = x->data, *sv = slopes[k]->data;
        for (int i = 0; i < 120; i++) {
            float s = sv[bcast_offset(i, 4, dx, slopes[k]->ndim, slopes[k]->dims)];
            want[i] = xv[i] < 0 ? s * xv[i] : xv[i];
        }
        assert_int_equal(run_op(&r, "PRelu", k ? 9 : 16, NULL, 0, in, 2, 1), PARE_OK);
        assert_shape(&r.out[0], 4, dx);
        assert_close(r.out[0].data, want, 120);
        run_fini(&r);
    }
    assert_int_equal(run_op(&r, "PRelu", 16, NULL, 0, bad, 2, 1), PARE_EINPUT);
    assert_int_equal(run_op(&r, "PRelu", 16, NULL, 0, big, 2, 1), PARE_EINPUT);
    assert_string_equal(r.err.msg,
                        "slope shape [2, 3, 4, 5] does not broadcast to input shape [5]");
    pare_tensor_free(x);
    free_all(slopes, 2);
    pare_tensor_free(bad[1]);
    pare_tensor_free(big[0]);
}

static void test_prelu_opset6_per_channel(void **state)
{
    /* PRelu-6: a slope of C values applies per channel (dim 1), not trailing */
    static const int64_t dx[] = { 2, 3, 4 }, ds[] = { 3 };
    float sl[3] = { 0.1f, 0.2f, 0.3f };
    pare_tensor *x = trand(3, dx, -2, 2), *s = tf32(1, ds, sl);
    const float *xv = x->data;
    float want[24];
    run r;
    (void)state;

    for (int i = 0; i < 24; i++)
        want[i] = xv[i] < 0 ? sl[(i / 4) % 3] * xv[i] : xv[i];
    assert_int_equal(run_op(&r, "PRelu", 6, NULL, 0, (pare_tensor *[]){ x, s }, 2, 1), PARE_OK);
    assert_close(r.out[0].data, want, 24);
    run_fini(&r);
    /* opset 7: [3] aligns with the last dim (4) and is rejected */
    assert_int_equal(run_op(&r, "PRelu", 7, NULL, 0, (pare_tensor *[]){ x, s }, 2, 1), PARE_EINPUT);
    pare_tensor_free(x);
    pare_tensor_free(s);
}

/* ---- Clip ---- */

static void test_clip_forms(void **state)
{
    static const int64_t d[] = { 5 };
    float x[5] = { -3, -1, 0, 1, 3 };
    float lo = -1.5f, hi = 2.0f, lo2 = 2.0f, hi2 = 1.0f;
    int8_t xi[5] = { -128, -10, 0, 10, 127 }, ilo = -5, ihi = 100;
    pare_tensor *fx = tf32(1, d, x), *flo = tf32(0, NULL, &lo), *fhi = tf32(0, NULL, &hi);
    pare_tensor *flo2 = tf32(0, NULL, &lo2), *fhi2 = tf32(0, NULL, &hi2);
    pare_tensor *ix = tensor(PARE_I8, 1, d, xi), *ilo_t = tensor(PARE_I8, 0, NULL, &ilo);
    pare_tensor *ihi_t = tensor(PARE_I8, 0, NULL, &ihi);
    pare_attr attrs[2] = { attr_f("min", -1.5f), attr_f("max", 2.0f) };
    float want_both[5] = { -1.5f, -1, 0, 1, 2 };
    float want_max[5] = { -3, -1, 0, 1, 2 };
    float want_min[5] = { -1.5f, -1, 0, 1, 3 };
    float want_swap[5] = { 1, 1, 1, 1, 1 };
    int8_t want_i[5] = { -5, -5, 0, 10, 100 };
    int8_t want_i_min[5] = { -5, -5, 0, 10, 127 };
    run r;
    (void)state;

    /* opset 6: attributes */
    assert_int_equal(run_op(&r, "Clip", 6, attrs, 2, &fx, 1, 1), PARE_OK);
    assert_close(r.out[0].data, want_both, 5);
    run_fini(&r);
    assert_int_equal(run_op(&r, "Clip", 6, attrs + 1, 1, &fx, 1, 1), PARE_OK);
    assert_close(r.out[0].data, want_max, 5);
    run_fini(&r);
    assert_int_equal(run_op(&r, "Clip", 6, NULL, 0, &fx, 1, 1), PARE_OK);
    assert_close(r.out[0].data, x, 5);
    run_fini(&r);
    {
        /* opset 11+: optional inputs, either may be omitted */
        pare_tensor *both[3] = { fx, flo, fhi };
        pare_tensor *max_only[3] = { fx, NULL, fhi };
        pare_tensor *min_only[2] = { fx, flo };
        pare_tensor *swapped[3] = { fx, flo2, fhi2 };
        pare_tensor *ints[3] = { ix, ilo_t, ihi_t };
        pare_tensor *ints_min[2] = { ix, ilo_t };
        pare_tensor *mixed[3] = { fx, ilo_t, NULL };
        assert_int_equal(run_op(&r, "Clip", 11, NULL, 0, both, 3, 1), PARE_OK);
        assert_close(r.out[0].data, want_both, 5);
        run_fini(&r);
        assert_int_equal(run_op(&r, "Clip", 13, NULL, 0, max_only, 3, 1), PARE_OK);
        assert_close(r.out[0].data, want_max, 5);
        run_fini(&r);
        assert_int_equal(run_op(&r, "Clip", 12, NULL, 0, min_only, 2, 1), PARE_OK);
        assert_close(r.out[0].data, want_min, 5);
        run_fini(&r);
        assert_int_equal(run_op(&r, "Clip", 13, NULL, 0, swapped, 3, 1), PARE_OK);
        assert_close(r.out[0].data, want_swap, 5); /* min > max: everything is max */
        run_fini(&r);
        assert_int_equal(run_op(&r, "Clip", 12, NULL, 0, ints, 3, 1), PARE_OK);
        assert_memory_equal(r.out[0].data, want_i, 5);
        run_fini(&r);
        assert_int_equal(run_op(&r, "Clip", 13, NULL, 0, ints_min, 2, 1), PARE_OK);
        assert_memory_equal(r.out[0].data, want_i_min, 5);
        run_fini(&r);
        assert_int_equal(run_op(&r, "Clip", 11, NULL, 0, ints, 3, 1), PARE_EUNSUPPORTED);
        assert_int_equal(run_op(&r, "Clip", 13, NULL, 0, mixed, 3, 1), PARE_EINPUT);
        assert_string_equal(r.err.msg, "min dtype 'int8' differs from input dtype 'float32'");
        assert_int_equal(run_op(&r, "Clip", 6, NULL, 0, both, 3, 1), PARE_EINPUT);
        assert_int_equal(run_op(&r, "Clip", 13, NULL, 0, (pare_tensor *[]){ fx, fx }, 2, 1),
                         PARE_EINPUT);
        assert_string_equal(r.err.msg, "min must be a scalar, got 5 elements");
    }
    pare_tensor_free(fx);
    pare_tensor_free(flo);
    pare_tensor_free(fhi);
    pare_tensor_free(flo2);
    pare_tensor_free(fhi2);
    pare_tensor_free(ix);
    pare_tensor_free(ilo_t);
    pare_tensor_free(ihi_t);
}

/* ---- Softmax / LogSoftmax ---- */

/* Reference: normalize x viewed as (outer, n, inner) over n. */
static void ref_softmax(const float *x, float *y, int64_t outer, int64_t n, int64_t inner, int log_out)
{
    for (int64_t o = 0; o < outer; o++)
        for (int64_t c = 0; c < inner; c++) {
            double m = -INFINITY, s = 0;
            for (int64_t j = 0; j < n; j++)
                m = fmax(m, x[(o * n + j) * inner + c]);
            for (int64_t j = 0; j < n; j++)
                s += exp(x[(o * n + j) * inner + c] - m);
            for (int64_t j = 0; j < n; j++) {
                double v = x[(o * n + j) * inner + c] - m;
                y[(o * n + j) * inner + c] = (float)(log_out ? v - log(s) : exp(v) / s);
            }
        }
}

static void check_softmax(const char *op, int opset, int has_axis, int64_t axis, int ndim,
                          const int64_t *dims, int64_t outer, int64_t n, int64_t inner, int threads)
{
    pare_tensor *in[1] = { trand(ndim, dims, -10, 10) };
    pare_attr a = attr_i("axis", axis);
    int64_t total = pare_tensor_numel(in[0]);
    float *want = malloc((size_t)total * sizeof *want);
    run r;

    ref_softmax(in[0]->data, want, outer, n, inner, !strcmp(op, "LogSoftmax"));
    assert_int_equal(run_op_t(&r, op, opset, &a, has_axis, in, 1, 1, threads), PARE_OK);
    assert_shape(&r.out[0], ndim, dims);
    assert_close_tol(r.out[0].data, want, total, 1e-5, 1e-6);
    assert_true(r.flops == 4.0 * (double)total);
    run_fini(&r);
    free(want);
    free_all(in, 1);
}

static void test_softmax_forms(void **state)
{
    static const int64_t d[] = { 2, 3, 4 };
    static const int64_t wide[] = { 3, 5, 300 };
    static const int64_t big[] = { 64, 4, 16, 16 };
    (void)state;
    for (int lg = 0; lg < 2; lg++) {
        const char *op = lg ? "LogSoftmax" : "Softmax";
        /* opset 13: along one axis, default -1 */
        check_softmax(op, 13, 0, 0, 3, d, 6, 4, 1, 1);
        check_softmax(op, 13, 1, 1, 3, d, 2, 3, 4, 1);
        check_softmax(op, 13, 1, 0, 3, d, 1, 2, 12, 1);
        check_softmax(op, 13, 1, -2, 3, d, 2, 3, 4, 1);
        check_softmax(op, 13, 1, 1, 3, wide, 3, 5, 300, 2); /* inner > 256 columns */
        /* opset < 13: coerced to 2-D at axis, default 1 */
        check_softmax(op, 11, 0, 0, 3, d, 2, 12, 1, 1);
        check_softmax(op, 11, 1, 2, 3, d, 6, 4, 1, 1);
        check_softmax(op, 1, 1, 0, 3, d, 1, 24, 1, 1);
        check_softmax(op, 12, 1, -1, 3, d, 6, 4, 1, 1);
        check_softmax(op, 13, 0, 0, 4, big, 64 * 4 * 16, 16, 1, 2);
    }
}

static void test_softmax_large_and_errors(void **state)
{
    static const int64_t d[] = { 1, 3 };
    float x[3] = { 10000, 10001, 10002 };
    float want[3], want_log[3];
    pare_tensor *in[1] = { tf32(2, d, x) };
    pare_attr bad = attr_i("axis", 2);
    run r;
    (void)state;

    ref_softmax(x, want, 1, 3, 1, 0);
    ref_softmax(x, want_log, 1, 3, 1, 1);
    assert_int_equal(run_op(&r, "Softmax", 13, NULL, 0, in, 1, 1), PARE_OK);
    assert_close(r.out[0].data, want, 3);
    run_fini(&r);
    assert_int_equal(run_op(&r, "LogSoftmax", 13, NULL, 0, in, 1, 1), PARE_OK);
    assert_close(r.out[0].data, want_log, 3);
    run_fini(&r);
    assert_int_equal(run_op(&r, "Softmax", 13, &bad, 1, in, 1, 1), PARE_EINPUT);
    assert_string_equal(r.err.msg, "axis 2 is out of range for rank 2");
    free_all(in, 1);
}

static void test_hardmax_forms(void **state)
{
    static const int64_t d[] = { 2, 2, 3 };
    float x[12] = { 1, 5, 5, 0, 2, 1, /* */ 3, 3, 3, 9, 0, 0 };
    /* opset 13, axis -1: first maximum of each row of 3 */
    float want_last[12] = { 0, 1, 0, 0, 1, 0, 1, 0, 0, 1, 0, 0 };
    /* opset 11, default axis 1: coerced to (2, 6) */
    float want_legacy[12] = { 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0 };
    /* opset 13, axis 1: down the middle dim */
    float want_mid[12] = { 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 0, 0 };
    pare_tensor *in[1] = { tf32(3, d, x) };
    pare_attr ax1 = attr_i("axis", 1);
    run r;
    (void)state;

    assert_int_equal(run_op(&r, "Hardmax", 13, NULL, 0, in, 1, 1), PARE_OK);
    assert_close(r.out[0].data, want_last, 12);
    run_fini(&r);
    assert_int_equal(run_op(&r, "Hardmax", 11, NULL, 0, in, 1, 1), PARE_OK);
    assert_close(r.out[0].data, want_legacy, 12);
    run_fini(&r);
    assert_int_equal(run_op(&r, "Hardmax", 13, &ax1, 1, in, 1, 1), PARE_OK);
    assert_close(r.out[0].data, want_mid, 12);
    run_fini(&r);
    free_all(in, 1);
}

/* ---- reductions ---- */

enum { RS_SUM, RS_MEAN, RS_MAX, RS_MIN, RS_PROD, RS_L1, RS_L2, RS_SSQ, RS_LOGSUM, RS_LSE };
static const char *const red_names[] = {
    "ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
    "ReduceSumSquare", "ReduceLogSum", "ReduceLogSumExp",
};

/* Naive reduction over the flagged axes of a row-major tensor. */
static void ref_reduce(int kind, const float *x, int nd, const int64_t *dims, const int *red,
                       float *y, int64_t out_n)
{
    double *acc = malloc((size_t)out_n * sizeof *acc);
    double *mx = malloc((size_t)out_n * sizeof *mx);
    int64_t *cnt = calloc((size_t)out_n, sizeof *cnt);
    int64_t total = pare_shape_numel(nd, dims);

    for (int64_t o = 0; o < out_n; o++) {
        acc[o] = kind == RS_PROD ? 1 : kind == RS_MAX ? -INFINITY : kind == RS_MIN ? INFINITY : 0;
        mx[o] = -INFINITY;
    }
    for (int pass = 0; pass < 2; pass++)
        for (int64_t i = 0; i < total; i++) {
            int64_t rem = i, o = 0, ostride = 1;
            double v = x[i];
            for (int d = nd - 1; d >= 0; d--) {
                int64_t idx = rem % dims[d];
                rem /= dims[d];
                if (!red[d]) {
                    o += idx * ostride;
                    ostride *= dims[d];
                }
            }
            if (pass == 0) {
                mx[o] = fmax(mx[o], v);
                cnt[o]++;
                continue;
            }
            switch (kind) {
            case RS_SUM: case RS_MEAN: case RS_LOGSUM: acc[o] += v; break;
            case RS_MAX: acc[o] = fmax(acc[o], v); break;
            case RS_MIN: acc[o] = fmin(acc[o], v); break;
            case RS_PROD: acc[o] *= v; break;
            case RS_L1: acc[o] += fabs(v); break;
            case RS_L2: case RS_SSQ: acc[o] += v * v; break;
            case RS_LSE: acc[o] += exp(v - mx[o]); break;
            }
        }
    for (int64_t o = 0; o < out_n; o++) {
        double v = acc[o];
        switch (kind) {
        case RS_MEAN: v /= (double)cnt[o]; break;
        case RS_L2: v = sqrt(v); break;
        case RS_LOGSUM: v = log(v); break;
        case RS_LSE: v = log(v) + mx[o]; break;
        }
        y[o] = (float)v;
    }
    free(acc);
    free(mx);
    free(cnt);
}

/* Runs kind over axes (n_axes < 0: none given) in the attribute form (opset
 * 11) and the input form (opset 18, 13 for ReduceSum), keepdims 0 and 1. */
static void check_reduce(int kind, int nd, const int64_t *dims, const int64_t *axes, int n_axes,
                         int threads)
{
    int red[PARE_MAX_DIMS] = {0};
    int64_t out_dims[PARE_MAX_DIMS], out_keep[PARE_MAX_DIMS];
    int ond = 0;
    int64_t out_n = 1;
    float lo = kind == RS_PROD ? 0.8f : kind == RS_LOGSUM ? 0.1f : -3.0f;
    float hi = kind == RS_PROD ? 1.2f : 3.0f;
    pare_tensor *x = trand(nd, dims, lo, hi);
    int64_t ad[1] = { n_axes > 0 ? n_axes : 0 };
    pare_tensor *axes_t = n_axes > 0 ? ti64(1, ad, axes) : NULL;
    float *want;

    for (int i = 0; i < n_axes; i++)
        red[axes[i] < 0 ? axes[i] + nd : axes[i]] = 1;
    for (int d = 0; d < nd; d++) {
        if (n_axes <= 0)
            red[d] = 1;
        out_keep[d] = red[d] ? 1 : dims[d];
        if (!red[d]) {
            out_dims[ond++] = dims[d];
            out_n *= dims[d];
        }
    }
    want = malloc((size_t)out_n * sizeof *want);
    ref_reduce(kind, x->data, nd, dims, red, want, out_n);
    for (int form = 0; form < 2; form++)
        for (int keep = 0; keep < 2; keep++) {
            int opset = form == 0 ? 11 : kind == RS_SUM ? 13 : 18;
            pare_attr attrs[2] = { attr_i("keepdims", keep), attr_ints("axes", (int64_t *)axes, n_axes) };
            pare_tensor *in[2] = { x, axes_t };
            run r;
            int n_attrs = form == 0 && n_axes > 0 ? 2 : 1;
            int n_in = form == 1 && axes_t ? 2 : 1;
            assert_int_equal(run_op_t(&r, red_names[kind], opset, attrs, n_attrs, in, n_in, 1, threads),
                             PARE_OK);
            if (keep)
                assert_shape(&r.out[0], nd, out_keep);
            else
                assert_shape(&r.out[0], ond, out_dims);
            assert_close_tol(r.out[0].data, want, out_n, 2e-5, 1e-5);
            assert_true(r.flops == (double)pare_tensor_numel(x));
            run_fini(&r);
        }
    free(want);
    pare_tensor_free(x);
    pare_tensor_free(axes_t);
}

static void test_reduce_all_kinds(void **state)
{
    static const int64_t d3[] = { 3, 4, 5 };
    static const int64_t d4[] = { 2, 3, 1, 7 };
    static const int64_t ax_last[] = { -1 }, ax_mid[] = { 1 }, ax_first[] = { 0 };
    static const int64_t ax_02[] = { 0, 2 }, ax_13[] = { 1, 3 }, ax_2[] = { 2 };
    (void)state;
    for (int k = RS_SUM; k <= RS_LSE; k++) {
        check_reduce(k, 3, d3, ax_last, 1, 1);   /* innermost reduced */
        check_reduce(k, 3, d3, ax_mid, 1, 1);    /* innermost kept */
        check_reduce(k, 3, d3, ax_first, 1, 1);  /* outermost reduced */
        check_reduce(k, 3, d3, ax_02, 2, 1);     /* alternating */
        check_reduce(k, 3, d3, NULL, 0, 1);      /* all */
        check_reduce(k, 4, d4, ax_13, 2, 1);
        check_reduce(k, 4, d4, ax_2, 1, 1);      /* only a size-1 axis */
    }
}

static void test_reduce_threaded(void **state)
{
    static const int64_t big[] = { 64, 16, 64 };
    static const int64_t wide[] = { 4, 40000 };
    static const int64_t ax_last[] = { -1 }, ax_mid[] = { 1 }, ax_first[] = { 0 };
    (void)state;
    check_reduce(RS_MEAN, 3, big, ax_last, 1, 2);
    check_reduce(RS_MEAN, 3, big, ax_mid, 1, 2);
    check_reduce(RS_MAX, 3, big, ax_first, 1, 2);
    check_reduce(RS_LSE, 3, big, ax_mid, 1, 2);
    check_reduce(RS_SUM, 2, wide, ax_last, 1, 3);
}

static void test_reduce_axes_rules(void **state)
{
    static const int64_t d[] = { 2, 3 }, d0[] = { 0 }, d1[] = { 1 }, d2[] = { 2 };
    float x[6] = { 1, 2, 3, 4, 5, 6 };
    int64_t one = 1, dup[2] = { 1, -1 }, far = 2;
    int64_t xi[6] = { 1, 2, 3, 4, 5, 6 };
    pare_tensor *fx = tf32(2, d, x), *ix = ti64(2, d, xi);
    pare_tensor *empty = ti64(1, d0, NULL), *axis1 = ti64(1, d1, &one);
    pare_tensor *dup_t = ti64(1, d2, dup), *far_t = ti64(1, d1, &far);
    pare_tensor *dyn = shape_only(PARE_I64, 1, d1);
    pare_attr noop = attr_i("noop_with_empty_axes", 1);
    pare_attr keep0 = attr_i("keepdims", 0);
    pare_attr axes_attr = attr_ints("axes", &one, 1);
    float sum_all = 21, mean_rows[2] = { 2, 5 };
    int64_t isum[2] = { 6, 15 };
    static const int64_t scalar_keep[] = { 1, 1 };
    run r;
    (void)state;

    /* empty axes: reduce everything, or nothing with noop_with_empty_axes */
    assert_int_equal(run_op(&r, "ReduceSum", 13, NULL, 0, (pare_tensor *[]){ fx, empty }, 2, 1), PARE_OK);
    assert_shape(&r.out[0], 2, scalar_keep);
    assert_close(r.out[0].data, &sum_all, 1);
    run_fini(&r);
    assert_int_equal(run_op(&r, "ReduceSum", 13, &noop, 1, (pare_tensor *[]){ fx, empty }, 2, 1), PARE_OK);
    assert_shape(&r.out[0], 2, d);
    assert_close(r.out[0].data, x, 6);
    run_fini(&r);
    assert_int_equal(run_op(&r, "ReduceMean", 18, &noop, 1, &fx, 1, 1), PARE_OK);
    assert_close(r.out[0].data, x, 6);
    run_fini(&r);
    assert_int_equal(run_op(&r, "ReduceMean", 18, &keep0, 1, (pare_tensor *[]){ fx, axis1 }, 2, 1), PARE_OK);
    assert_shape(&r.out[0], 1, d2);
    assert_close(r.out[0].data, mean_rows, 2);
    run_fini(&r);
    /* integers */
    assert_int_equal(run_op(&r, "ReduceSum", 11, (pare_attr[]){ axes_attr, keep0 }, 2, &ix, 1, 1), PARE_OK);
    assert_int_equal(r.out[0].dtype, PARE_I64);
    assert_memory_equal(r.out[0].data, isum, sizeof isum);
    run_fini(&r);
    /* errors */
    assert_int_equal(run_op(&r, "ReduceSum", 13, NULL, 0, (pare_tensor *[]){ fx, dyn }, 2, 1),
                     PARE_EUNSUPPORTED);
    assert_string_equal(r.err.msg, "axes input must be a constant");
    assert_int_equal(run_op(&r, "ReduceMax", 18, NULL, 0, (pare_tensor *[]){ fx, dup_t }, 2, 1),
                     PARE_EINPUT);
    assert_string_equal(r.err.msg, "axis -1 is listed twice");
    assert_int_equal(run_op(&r, "ReduceMax", 18, NULL, 0, (pare_tensor *[]){ fx, far_t }, 2, 1),
                     PARE_EINPUT);
    assert_string_equal(r.err.msg, "axis 2 is out of range for rank 2");
    assert_int_equal(run_op(&r, "ReduceMean", 13, NULL, 0, (pare_tensor *[]){ fx, axis1 }, 2, 1),
                     PARE_EINPUT);
    assert_int_equal(run_op(&r, "ReduceMean", 18, &axes_attr, 1, &fx, 1, 1), PARE_EINPUT);
    assert_int_equal(run_op(&r, "ReduceL2", 18, NULL, 0, &ix, 1, 1), PARE_EUNSUPPORTED);
    assert_string_equal(r.err.msg, "dtype 'int64' not supported");
    /* rows exist for every opset from 1 (attr) and 13/18 (input) */
    assert_ptr_not_equal(pare_op_find("", "ReduceSum", 12), pare_op_find("", "ReduceSum", 13));
    assert_ptr_not_equal(pare_op_find("", "ReduceMean", 17), pare_op_find("", "ReduceMean", 18));
    assert_ptr_equal(pare_op_find("", "ReduceMean", 13), pare_op_find("", "ReduceMean", 7));
    pare_tensor_free(fx);
    pare_tensor_free(ix);
    pare_tensor_free(empty);
    pare_tensor_free(axis1);
    pare_tensor_free(dup_t);
    pare_tensor_free(far_t);
    pare_free(dyn);
}

static void test_reduce_nan_and_empty(void **state)
{
    static const int64_t d[] = { 2, 3 }, dz[] = { 2, 0 };
    float x[6] = { 1, NAN, 3, 4, 5, 6 };
    pare_tensor *fx = tf32(2, d, x), *zx = tf32(2, dz, NULL);
    pare_attr ax = attr_ints("axes", (int64_t[]){ 1 }, 1);
    const float *o;
    run r;
    (void)state;

    assert_int_equal(run_op(&r, "ReduceMax", 13, &ax, 1, &fx, 1, 1), PARE_OK);
    o = r.out[0].data;
    assert_true(isnan(o[0]));
    assert_true(o[1] == 6.0f);
    run_fini(&r);
    assert_int_equal(run_op(&r, "ReduceMin", 13, &ax, 1, &fx, 1, 1), PARE_OK);
    o = r.out[0].data;
    assert_true(isnan(o[0]));
    assert_true(o[1] == 4.0f);
    run_fini(&r);
    /* reducing an empty axis gives the identity */
    assert_int_equal(run_op(&r, "ReduceSum", 11, &ax, 1, &zx, 1, 1), PARE_OK);
    o = r.out[0].data;
    assert_true(o[0] == 0.0f && o[1] == 0.0f);
    run_fini(&r);
    assert_int_equal(run_op(&r, "ReduceProd", 11, &ax, 1, &zx, 1, 1), PARE_OK);
    o = r.out[0].data;
    assert_true(o[0] == 1.0f && o[1] == 1.0f);
    run_fini(&r);
    pare_tensor_free(fx);
    pare_tensor_free(zx);
}

/* ---- quantization ---- */

static void test_quantize_per_tensor(void **state)
{
    static const int64_t d[] = { 10 };
    float x[10] = { 0, 2.5f, 3.5f, -2.5f, -3.5f, 1000, -1000, 1.2f, NAN, 5 };
    float s = 1.0f, s2 = 2.0f;
    uint8_t zp = 10;
    int8_t zpi = -3;
    uint8_t want_u8[10] = { 10, 12, 14, 8, 6, 255, 0, 11, 10, 15 };
    int8_t want_i8[10] = { -3, -1, 1, -5, -7, 127, -128, -2, -3, 2 };
    uint8_t want_nozp[10] = { 0, 1, 2, 0, 0, 255, 0, 1, 0, 2 };
    pare_tensor *fx = tf32(1, d, x), *fs = tf32(0, NULL, &s), *fs2 = tf32(0, NULL, &s2);
    pare_tensor *zu = tensor(PARE_U8, 0, NULL, &zp), *zi = tensor(PARE_I8, 0, NULL, &zpi);
    run r;
    (void)state;

    /* round half to even, then zero point, then saturate */
    assert_int_equal(run_op(&r, "QuantizeLinear", 10, NULL, 0, (pare_tensor *[]){ fx, fs, zu }, 3, 1), PARE_OK);
    assert_int_equal(r.out[0].dtype, PARE_U8);
    assert_memory_equal(r.out[0].data, want_u8, 10);
    run_fini(&r);
    assert_int_equal(run_op(&r, "QuantizeLinear", 13, NULL, 0, (pare_tensor *[]){ fx, fs, zi }, 3, 1), PARE_OK);
    assert_int_equal(r.out[0].dtype, PARE_I8);
    assert_memory_equal(r.out[0].data, want_i8, 10);
    run_fini(&r);
    /* a [1] scale with a scalar zero point is still per-tensor */
    {
        static const int64_t d1[] = { 1 };
        pare_tensor *s1 = tf32(1, d1, &s);
        assert_int_equal(run_op(&r, "QuantizeLinear", 13, NULL, 0, (pare_tensor *[]){ fx, s1, zu }, 3, 1), PARE_OK);
        assert_memory_equal(r.out[0].data, want_u8, 10);
        run_fini(&r);
        pare_tensor_free(s1);
    }
    /* no zero point: uint8 with zero point 0; 2.5 / 2 = 1.25 -> 1, 3.5 / 2 = 1.75 -> 2 */
    assert_int_equal(run_op(&r, "QuantizeLinear", 19, NULL, 0, (pare_tensor *[]){ fx, fs2 }, 2, 1), PARE_OK);
    assert_int_equal(r.out[0].dtype, PARE_U8);
    assert_memory_equal(r.out[0].data, want_nozp, 10);
    run_fini(&r);
    pare_tensor_free(fx);
    pare_tensor_free(fs);
    pare_tensor_free(fs2);
    pare_tensor_free(zu);
    pare_tensor_free(zi);
}

static void test_quantize_per_axis_and_blocked(void **state)
{
    static const int64_t dx[] = { 2, 3, 4 }, dc[] = { 3 };
    static const int64_t dblk[] = { 2, 2, 4 }; /* axis 1: 3 elements, block 2 -> 2 scales */
    float sc[3] = { 0.5f, 1.0f, 2.0f };
    int8_t zc[3] = { 1, -1, 0 };
    pare_tensor *x = trand(3, dx, -20, 20);
    pare_tensor *s = tf32(1, dc, sc), *z = tensor(PARE_I8, 1, dc, zc);
    pare_tensor *sb = trand(3, dblk, 0.5f, 2.0f), *zb = tensor(PARE_I8, 3, dblk, NULL);
    pare_attr axis1 = attr_i("axis", 1), axis_neg = attr_i("axis", -2);
    pare_attr blk[2] = { attr_i("axis", 1), attr_i("block_size", 2) };
    pare_attr od_i8 = attr_i("output_dtype", PARE_I8);
    pare_attr od_u8 = attr_i("output_dtype", PARE_U8);
    pare_attr od_f8 = attr_i("output_dtype", 17);
    const float *xv = x->data, *sbv = sb->data;
    int8_t *zbv = zb->data;
    int8_t want[24];
    run r;
    (void)state;

    for (int i = 0; i < 16; i++)
        zbv[i] = (int8_t)(i % 5 - 2);
    for (int n = 0; n < 2; n++)
        for (int c = 0; c < 3; c++)
            for (int k = 0; k < 4; k++) {
                int i = (n * 3 + c) * 4 + k;
                float v = nearbyintf(xv[i] / sc[c]) + zc[c];
                want[i] = (int8_t)fminf(127, fmaxf(-128, v));
            }
    assert_int_equal(run_op(&r, "QuantizeLinear", 13, &axis1, 1, (pare_tensor *[]){ x, s, z }, 3, 1), PARE_OK);
    assert_memory_equal(r.out[0].data, want, 24);
    run_fini(&r);
    assert_int_equal(run_op(&r, "QuantizeLinear", 21, &axis_neg, 1, (pare_tensor *[]){ x, s, z }, 3, 1), PARE_OK);
    assert_memory_equal(r.out[0].data, want, 24);
    run_fini(&r);
    /* per-axis needs opset 13 */
    assert_int_equal(run_op(&r, "QuantizeLinear", 10, NULL, 0, (pare_tensor *[]){ x, s, z }, 3, 1), PARE_EINPUT);
    assert_string_equal(r.err.msg, "scale must be a scalar before opset 13, got shape [3]");
    /* blocked (opset 21): scale index along axis = c / block_size */
    for (int n = 0; n < 2; n++)
        for (int c = 0; c < 3; c++)
            for (int k = 0; k < 4; k++) {
                int i = (n * 3 + c) * 4 + k, si = (n * 2 + c / 2) * 4 + k;
                float v = nearbyintf(xv[i] / sbv[si]) + zbv[si];
                want[i] = (int8_t)fminf(127, fmaxf(-128, v));
            }
    assert_int_equal(run_op(&r, "QuantizeLinear", 21, blk, 2, (pare_tensor *[]){ x, sb, zb }, 3, 1), PARE_OK);
    assert_memory_equal(r.out[0].data, want, 24);
    run_fini(&r);
    assert_int_equal(run_op(&r, "QuantizeLinear", 21, blk, 1, (pare_tensor *[]){ x, sb, zb }, 3, 1), PARE_EINPUT);
    assert_int_equal(run_op(&r, "QuantizeLinear", 19, blk, 2, (pare_tensor *[]){ x, sb, zb }, 3, 1), PARE_EINPUT);
    /* output_dtype without zero point; mismatch; float8 */
    assert_int_equal(run_op(&r, "QuantizeLinear", 21, (pare_attr[]){ axis1, od_i8 }, 2, (pare_tensor *[]){ x, s }, 2, 1), PARE_OK);
    assert_int_equal(r.out[0].dtype, PARE_I8);
    run_fini(&r);
    assert_int_equal(run_op(&r, "QuantizeLinear", 21, (pare_attr[]){ axis1, od_u8 }, 2, (pare_tensor *[]){ x, s, z }, 3, 1), PARE_EINPUT);
    assert_string_equal(r.err.msg, "output_dtype 'uint8' differs from the zero point dtype 'int8'");
    assert_int_equal(run_op(&r, "QuantizeLinear", 21, &od_f8, 1, (pare_tensor *[]){ x, s }, 2, 1), PARE_EUNSUPPORTED);
    pare_tensor_free(x);
    pare_tensor_free(s);
    pare_tensor_free(z);
    pare_tensor_free(sb);
    pare_tensor_free(zb);
}

static void test_dequantize(void **state)
{
    static const int64_t d[] = { 4 }, dx[] = { 2, 3, 2 }, dc[] = { 3 }, db[] = { 2, 2, 2 };
    uint8_t xu[4] = { 0, 3, 128, 255 }, zu = 128;
    int32_t xi[4] = { -1000, 0, 7, 2000000000 };
    int8_t xa[12], za[3] = { 1, 0, -2 }, zb[8];
    float s = 0.5f, sc[3] = { 1, 2, 4 }, sb[8];
    float want_u[4] = { -64, -62.5f, 0, 63.5f };
    float want_i[4] = { -500, 0, 3.5f, 1e9f };
    float want_a[12], want_b[12];
    pare_tensor *tu = tensor(PARE_U8, 1, d, xu), *tzu = tensor(PARE_U8, 0, NULL, &zu);
    pare_tensor *ts = tf32(0, NULL, &s), *tsc = tf32(1, dc, sc);
    pare_tensor *tzc = tensor(PARE_I8, 1, dc, za);
    pare_tensor *ti = tensor(PARE_I32, 1, d, xi);
    pare_tensor *ta, *tsb, *tzb;
    pare_attr axis1 = attr_i("axis", 1);
    pare_attr blk[2] = { attr_i("axis", 1), attr_i("block_size", 2) };
    run r;
    (void)state;

    for (int i = 0; i < 12; i++)
        xa[i] = (int8_t)(i * 11 - 60);
    for (int i = 0; i < 8; i++) {
        zb[i] = (int8_t)(i - 4);
        sb[i] = 0.25f * (float)(i + 1);
    }
    ta = tensor(PARE_I8, 3, dx, xa);
    tsb = tf32(3, db, sb);
    tzb = tensor(PARE_I8, 3, db, zb);
    for (int n = 0; n < 2; n++)
        for (int c = 0; c < 3; c++)
            for (int k = 0; k < 2; k++) {
                int i = (n * 3 + c) * 2 + k, si = (n * 2 + c / 2) * 2 + k;
                want_a[i] = (float)(xa[i] - za[c]) * sc[c];
                want_b[i] = (float)(xa[i] - zb[si]) * sb[si];
            }
    assert_int_equal(run_op(&r, "DequantizeLinear", 10, NULL, 0, (pare_tensor *[]){ tu, ts, tzu }, 3, 1), PARE_OK);
    assert_int_equal(r.out[0].dtype, PARE_F32);
    assert_close(r.out[0].data, want_u, 4);
    run_fini(&r);
    assert_int_equal(run_op(&r, "DequantizeLinear", 13, NULL, 0, (pare_tensor *[]){ ti, ts }, 2, 1), PARE_OK);
    assert_close(r.out[0].data, want_i, 4);
    run_fini(&r);
    assert_int_equal(run_op(&r, "DequantizeLinear", 13, &axis1, 1, (pare_tensor *[]){ ta, tsc, tzc }, 3, 1), PARE_OK);
    assert_close(r.out[0].data, want_a, 12);
    run_fini(&r);
    assert_int_equal(run_op(&r, "DequantizeLinear", 21, blk, 2, (pare_tensor *[]){ ta, tsb, tzb }, 3, 1), PARE_OK);
    assert_close(r.out[0].data, want_b, 12);
    run_fini(&r);
    assert_int_equal(run_op(&r, "DequantizeLinear", 13, &axis1, 1, (pare_tensor *[]){ ta, tsc, tzu }, 3, 1), PARE_EINPUT);
    assert_string_equal(r.err.msg, "zero point dtype 'uint8' differs from input dtype 'int8'");
    assert_int_equal(run_op(&r, "DequantizeLinear", 13, NULL, 0, (pare_tensor *[]){ ts, ts }, 2, 1), PARE_EUNSUPPORTED);
    assert_string_equal(r.err.msg, "dtype 'float32' not supported");
    pare_tensor_free(tu);
    pare_tensor_free(tzu);
    pare_tensor_free(ts);
    pare_tensor_free(tsc);
    pare_tensor_free(tzc);
    pare_tensor_free(ti);
    pare_tensor_free(ta);
    pare_tensor_free(tsb);
    pare_tensor_free(tzb);
}

static void test_quant_roundtrip_threaded(void **state)
{
    /* per-tensor on a long tensor: the rows are cut into blocks for threads */
    static const int64_t d[] = { 300001 };
    pare_tensor *x = trand(1, d, -3, 3);
    float s = 6.0f / 255.0f;
    uint8_t zp = 128;
    pare_tensor *ts = tf32(0, NULL, &s), *tz = tensor(PARE_U8, 0, NULL, &zp);
    const float *xv = x->data;
    run q, dq;
    (void)state;

    assert_int_equal(run_op_t(&q, "QuantizeLinear", 13, NULL, 0, (pare_tensor *[]){ x, ts, tz }, 3, 1, 2), PARE_OK);
    assert_int_equal(run_op_t(&dq, "DequantizeLinear", 13, NULL, 0, (pare_tensor *[]){ &q.out[0], ts, tz }, 3, 1, 2), PARE_OK);
    for (int64_t i = 0; i < d[0]; i++) {
        const float *y = dq.out[0].data;
        float want = (fminf(255, fmaxf(0, nearbyintf(xv[i] / s) + 128)) - 128) * s;
        if (fabsf(y[i] - want) > 1e-6f) {
            print_error("element %lld: got %g want %g\n", (long long)i, y[i], want);
            fail();
        }
    }
    run_fini(&q);
    run_fini(&dq);
    pare_tensor_free(x);
    pare_tensor_free(ts);
    pare_tensor_free(tz);
}

static void test_dynamic_quantize(void **state)
{
    /* from the ONNX operator documentation example */
    static const int64_t d[] = { 6 };
    float x[6] = { 0, 2, -3, -2.5f, 1.34f, 0.5f };
    uint8_t want_y[6] = { 153, 255, 0, 26, 221, 179 };
    float want_s = 0.0196078438f;
    pare_tensor *in[1] = { tf32(1, d, x) };
    run r;
    (void)state;

    assert_int_equal(run_op(&r, "DynamicQuantizeLinear", 11, NULL, 0, in, 1, 3), PARE_OK);
    assert_memory_equal(r.out[0].data, want_y, 6);
    assert_close(r.out[1].data, &want_s, 1);
    assert_int_equal(*(uint8_t *)r.out[2].data, 153);
    run_fini(&r);
    free_all(in, 1);
}

/* ---- registry coverage ---- */

static void test_rows_cover_opsets(void **state)
{
    static const struct { const char *op; int first; } ops[] = {
        { "Add", 7 }, { "Sub", 7 }, { "Mul", 7 }, { "Div", 7 }, { "Pow", 7 }, { "Sqrt", 7 },
        { "Exp", 7 }, { "Log", 7 }, { "Neg", 7 }, { "Abs", 7 }, { "Reciprocal", 7 },
        { "Erf", 9 }, { "Equal", 7 }, { "Where", 9 }, { "Expand", 8 }, { "Less", 7 },
        { "Greater", 7 }, { "Not", 7 }, { "And", 7 }, { "Or", 7 }, { "Sum", 7 }, { "Max", 7 },
        { "Min", 7 }, { "Mean", 7 }, { "Relu", 7 }, { "Clip", 7 }, { "LeakyRelu", 7 },
        { "PRelu", 7 }, { "Sigmoid", 7 }, { "Tanh", 7 }, { "HardSigmoid", 7 },
        { "HardSwish", 14 }, { "Gelu", 20 }, { "Softmax", 7 }, { "LogSoftmax", 7 },
        { "Elu", 7 }, { "Selu", 7 }, { "Softplus", 7 }, { "ReduceMean", 7 },
        { "ReduceSum", 7 }, { "ReduceMax", 7 }, { "ReduceMin", 7 }, { "ReduceProd", 7 },
        { "ReduceL2", 7 }, { "QuantizeLinear", 10 }, { "DequantizeLinear", 10 },
        { "Hardmax", 7 }, { "Mod", 10 }, { "IsNaN", 9 }, { "IsInf", 10 }, { "Shrink", 9 },
        { "Sin", 7 }, { "Cos", 7 }, { "Floor", 7 }, { "Ceil", 7 }, { "Round", 11 }, { "Sign", 9 },
    };
    (void)state;
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        for (int v = 7; v <= 21; v++) {
            const pare_op_def *def = pare_op_find("", ops[i].op, v);
            if (v < ops[i].first) {
                assert_null(def);
                continue;
            }
            if (!def)
                print_error("no row for %s at opset %d\n", ops[i].op, v);
            assert_non_null(def);
            assert_non_null(def->infer);
            assert_non_null(def->forward);
            assert_non_null(def->flops);
        }
    }
    /* the two Softmax forms are separate rows */
    assert_ptr_not_equal(pare_op_find("", "Softmax", 12), pare_op_find("", "Softmax", 13));
    assert_ptr_not_equal(pare_op_find("", "Clip", 10), pare_op_find("", "Clip", 11));
    assert_ptr_not_equal(pare_op_find("", "Add", 6), pare_op_find("", "Add", 7));
    assert_non_null(pare_op_find("", "Add", 1));
    assert_non_null(pare_op_find("", "PRelu", 6));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_binary_broadcast_shapes),
        cmocka_unit_test(test_binary_threaded_paths),
        cmocka_unit_test(test_binary_int_and_errors),
        cmocka_unit_test(test_small_int_types),
        cmocka_unit_test(test_binary_legacy_broadcast),
        cmocka_unit_test(test_mod_forms),
        cmocka_unit_test(test_pow_forms),
        cmocka_unit_test(test_unary_math),
        cmocka_unit_test(test_unary_special_values),
        cmocka_unit_test(test_isnan_isinf_shrink_trig),
        cmocka_unit_test(test_compare_and_logic),
        cmocka_unit_test(test_where),
        cmocka_unit_test(test_expand),
        cmocka_unit_test(test_variadic),
        cmocka_unit_test(test_activations),
        cmocka_unit_test(test_relu_int_and_nan),
        cmocka_unit_test(test_prelu),
        cmocka_unit_test(test_prelu_opset6_per_channel),
        cmocka_unit_test(test_clip_forms),
        cmocka_unit_test(test_softmax_forms),
        cmocka_unit_test(test_softmax_large_and_errors),
        cmocka_unit_test(test_hardmax_forms),
        cmocka_unit_test(test_reduce_all_kinds),
        cmocka_unit_test(test_reduce_threaded),
        cmocka_unit_test(test_reduce_axes_rules),
        cmocka_unit_test(test_reduce_nan_and_empty),
        cmocka_unit_test(test_quantize_per_tensor),
        cmocka_unit_test(test_quantize_per_axis_and_blocked),
        cmocka_unit_test(test_dequantize),
        cmocka_unit_test(test_quant_roundtrip_threaded),
        cmocka_unit_test(test_dynamic_quantize),
        cmocka_unit_test(test_rows_cover_opsets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
