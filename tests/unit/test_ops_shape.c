/* Shape and index ops (core/src/ops/shape*.c): every opset form, tricky
 * attributes, dtypes, error paths, and fast kernels against naive twins. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "pare/alloc.h"
#include "pare/op.h"

/* ---- harness: one node, infer then forward ---- */

#define MAX_OUT 6
#define WHERE "test.onnx: node 'n' (op)"

typedef struct run_result {
    pare_tensor *out[MAX_OUT];
    int n_out;
    pare_error err;
    pare_status rc;
    double flops;
} run_result;

static pare_attr A_int(const char *name, int64_t v)
{
    pare_attr a = {0};
    a.name = (char *)name;
    a.type = PARE_ATTR_INT;
    a.i = v;
    return a;
}

static pare_attr A_float(const char *name, float v)
{
    pare_attr a = {0};
    a.name = (char *)name;
    a.type = PARE_ATTR_FLOAT;
    a.f = v;
    return a;
}

static pare_attr A_ints(const char *name, const int64_t *v, int n)
{
    pare_attr a = {0};
    a.name = (char *)name;
    a.type = PARE_ATTR_INTS;
    a.ints = (int64_t *)v;
    a.n = n;
    return a;
}

static pare_attr A_floats(const char *name, const float *v, int n)
{
    pare_attr a = {0};
    a.name = (char *)name;
    a.type = PARE_ATTR_FLOATS;
    a.floats = (float *)v;
    a.n = n;
    return a;
}

static pare_attr A_str(const char *name, const char *s)
{
    pare_attr a = {0};
    a.name = (char *)name;
    a.type = PARE_ATTR_STRING;
    a.s = (char *)s;
    a.s_len = strlen(s);
    return a;
}

static pare_attr A_tensor(const char *name, pare_tensor *t)
{
    pare_attr a = {0};
    a.name = (char *)name;
    a.type = PARE_ATTR_TENSOR;
    a.t = t;
    return a;
}

static pare_tensor *tnew(pare_dtype dt, int nd, const int64_t *dims, const void *data)
{
    pare_tensor *t = pare_tensor_new(dt, nd, dims);
    assert_non_null(t);
    if (data && pare_tensor_nbytes(t))
        memcpy(t->data, data, pare_tensor_nbytes(t));
    return t;
}

/* A shape carrier: what infer sees for a value computed at run time. */
static pare_tensor *tshape(pare_dtype dt, int nd, const int64_t *dims)
{
    pare_tensor *t = pare_calloc(1, sizeof *t);
    assert_non_null(t);
    pare_tensor_view(t, dt, nd, dims, NULL);
    return t;
}

static pare_tensor *ti64(int n, const int64_t *v)
{
    int64_t d = n;
    return tnew(PARE_I64, 1, &d, v);
}

static pare_tensor *tf32(int nd, const int64_t *dims, const float *v)
{
    return tnew(PARE_F32, nd, dims, v);
}

static pare_tensor *scalar(pare_dtype dt, const void *v)
{
    return tnew(dt, 0, NULL, v);
}

static void free_all(pare_tensor **t, int n)
{
    for (int i = 0; i < n; i++)
        pare_tensor_free(t[i]);
}

/* Runs infer, allocates outputs (poisoned, so unwritten bytes show) and
 * scratch, runs forward. Bit i of omit leaves output i out. */
static pare_status run_op_mask(const char *op, int opset, pare_attr *attrs, int n_attrs,
                               pare_tensor **in, int n_in, int n_out, unsigned omit,
                               run_result *r)
{
    pare_node node;
    pare_op_ctx ctx;
    const pare_op_def *def = pare_op_find("", op, opset);

    assert_non_null(def);
    memset(&node, 0, sizeof node);
    node.name = (char *)"n";
    node.op_type = (char *)op;
    node.domain = (char *)"";
    node.attrs = attrs;
    node.n_attrs = n_attrs;
    memset(r, 0, sizeof *r);
    r->n_out = n_out;
    for (int i = 0; i < n_out; i++) {
        if (omit & (1u << i))
            continue;
        r->out[i] = pare_calloc(1, sizeof(pare_tensor));
        assert_non_null(r->out[i]);
        pare_tensor_view(r->out[i], PARE_UNDEFINED, -1, NULL, NULL);
    }
    memset(&ctx, 0, sizeof ctx);
    ctx.node = &node;
    ctx.opset = opset;
    ctx.n_in = n_in;
    ctx.in = in;
    ctx.n_out = n_out;
    ctx.out = r->out;
    ctx.n_threads = 2;
    ctx.where = WHERE;
    ctx.err = &r->err;
    r->rc = def->infer(&ctx);
    if (r->rc != PARE_OK)
        return r->rc;
    for (int i = 0; i < n_out; i++) {
        pare_tensor *t = r->out[i];
        size_t bytes;
        if (!t)
            continue;
        assert_true(t->ndim >= 0 && t->ndim <= PARE_MAX_DIMS);
        assert_int_not_equal(t->dtype, PARE_UNDEFINED);
        bytes = pare_tensor_nbytes(t);
        t->data = pare_alloc_aligned(bytes ? bytes : 1);
        assert_non_null(t->data);
        memset(t->data, 0xab, bytes);
        t->owns_data = true;
    }
    r->flops = def->flops ? def->flops(&ctx) : 0.0;
    ctx.scratch = ctx.scratch_bytes ? pare_alloc_aligned(ctx.scratch_bytes) : NULL;
    r->rc = def->forward(&ctx);
    pare_free(ctx.scratch);
    return r->rc;
}

static pare_status run_op(const char *op, int opset, pare_attr *attrs, int n_attrs,
                          pare_tensor **in, int n_in, int n_out, run_result *r)
{
    return run_op_mask(op, opset, attrs, n_attrs, in, n_in, n_out, 0, r);
}

static void run_free(run_result *r)
{
    for (int i = 0; i < r->n_out; i++)
        pare_tensor_free(r->out[i]);
}

static void assert_dims(const pare_tensor *t, int nd, const int64_t *dims)
{
    assert_int_equal(t->ndim, nd);
    for (int i = 0; i < nd; i++)
        assert_int_equal(t->dims[i], dims[i]);
}

static void assert_f32(const pare_tensor *t, const float *want, int64_t n, float tol)
{
    assert_int_equal(t->dtype, PARE_F32);
    assert_int_equal(pare_tensor_numel(t), n);
    for (int64_t i = 0; i < n; i++) {
        float got = pare_tensor_f32(t)[i];
        if (!(fabsf(got - want[i]) <= tol + 1e-3f * fabsf(want[i]))) {
            print_error("element %lld: got %.7g, want %.7g\n", (long long)i, got, want[i]);
            fail();
        }
    }
}

/* The first n elements only (one row of a larger output). */
static void assert_f32_head(const pare_tensor *t, const float *want, int64_t n, float tol)
{
    assert_int_equal(t->dtype, PARE_F32);
    assert_true(pare_tensor_numel(t) >= n);
    for (int64_t i = 0; i < n; i++) {
        float got = pare_tensor_f32(t)[i];
        if (!(fabsf(got - want[i]) <= tol + 1e-3f * fabsf(want[i]))) {
            print_error("element %lld: got %.7g, want %.7g\n", (long long)i, got, want[i]);
            fail();
        }
    }
}

static void assert_i64(const pare_tensor *t, const int64_t *want, int64_t n)
{
    assert_int_equal(t->dtype, PARE_I64);
    assert_int_equal(pare_tensor_numel(t), n);
    for (int64_t i = 0; i < n; i++)
        assert_int_equal(((const int64_t *)t->data)[i], want[i]);
}

/* Error checks: code, location = the node, lowercase message without a
 * final period containing `part`. */
static void assert_error(const run_result *r, pare_status code, const char *part)
{
    size_t len = strlen(r->err.msg);
    assert_int_equal(r->rc, code);
    assert_string_equal(r->err.where, WHERE);
    assert_true(len > 0);
    assert_true(r->err.msg[len - 1] != '.');
    assert_false(r->err.msg[0] >= 'A' && r->err.msg[0] <= 'Z');
    if (!strstr(r->err.msg, part)) {
        print_error("message '%s' lacks '%s'\n", r->err.msg, part);
        fail();
    }
}

static uint32_t rng_state = 12345;

static float frand(void)
{
    rng_state = rng_state * 1664525u + 1013904223u;
    return (float)(rng_state >> 8) / (float)(1u << 24) * 2.0f - 1.0f;
}

static pare_tensor *trandom(int nd, const int64_t *dims)
{
    pare_tensor *t = tnew(PARE_F32, nd, dims, NULL);
    for (int64_t i = 0; i < pare_tensor_numel(t); i++)
        pare_tensor_f32(t)[i] = frand();
    return t;
}

static void strides_of(int nd, const int64_t *dims, int64_t *s)
{
    int64_t acc = 1;
    for (int k = nd - 1; k >= 0; k--) {
        s[k] = acc;
        acc *= dims[k];
    }
}

static void unravel(int64_t i, int nd, const int64_t *dims, int64_t *idx)
{
    for (int k = nd - 1; k >= 0; k--) {
        idx[k] = i % dims[k];
        i /= dims[k];
    }
}

/* ---- registry ---- */

static void test_every_form_has_a_row_for_opsets_7_to_21(void **state)
{
    static const char *const ops[] = {
        "Flatten", "Reshape", "Transpose", "Concat", "Split", "Slice", "Gather", "GatherElements",
        "Squeeze", "Unsqueeze", "Shape", "Size", "Constant", "ConstantOfShape", "Identity",
        "Dropout", "Cast", "Pad", "Range", "Tile", "Resize", "Trilu", "ArgMax", "ArgMin",
        "OneHot", "NonZero", "CastLike",
    };
    static const int first[] = {7, 7, 7, 7, 7, 7, 7, 11, 7, 7, 7, 7, 7, 9, 7, 7, 7, 7, 11, 7, 10,
                                14, 7, 7, 9, 9, 15};
    (void)state;
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
        for (int opset = first[i]; opset <= 21; opset++) {
            const pare_op_def *d = pare_op_find("", ops[i], opset);
            if (!d) {
                print_error("no row for %s at opset %d\n", ops[i], opset);
                fail();
            }
            assert_non_null(d->infer);
            assert_non_null(d->forward);
        }
    for (int opset = 7; opset <= 9; opset++)
        assert_non_null(pare_op_find("", "Upsample", opset));
    assert_null(pare_op_find("", "Upsample", 10)); /* deprecated */
    /* Where a signature changed, the row changes at the right opset. */
    assert_ptr_not_equal(pare_op_find("", "Squeeze", 12), pare_op_find("", "Squeeze", 13));
    assert_ptr_not_equal(pare_op_find("", "Unsqueeze", 12), pare_op_find("", "Unsqueeze", 13));
    assert_ptr_not_equal(pare_op_find("", "Split", 12), pare_op_find("", "Split", 13));
    assert_ptr_not_equal(pare_op_find("", "Split", 17), pare_op_find("", "Split", 18));
    assert_ptr_not_equal(pare_op_find("", "Slice", 9), pare_op_find("", "Slice", 10));
    assert_ptr_not_equal(pare_op_find("", "Pad", 10), pare_op_find("", "Pad", 11));
    assert_ptr_not_equal(pare_op_find("", "Pad", 17), pare_op_find("", "Pad", 18));
    assert_ptr_not_equal(pare_op_find("", "Resize", 10), pare_op_find("", "Resize", 11));
    assert_ptr_not_equal(pare_op_find("", "Resize", 12), pare_op_find("", "Resize", 13));
    assert_ptr_not_equal(pare_op_find("", "Resize", 17), pare_op_find("", "Resize", 18));
    assert_ptr_not_equal(pare_op_find("", "Dropout", 11), pare_op_find("", "Dropout", 12));
    assert_ptr_not_equal(pare_op_find("", "Shape", 14), pare_op_find("", "Shape", 15));
}

static void test_flags(void **state)
{
    static const char *const alias[] = {"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity",
                                        "Dropout"};
    (void)state;
    for (size_t i = 0; i < sizeof alias / sizeof alias[0]; i++)
        for (int opset = 7; opset <= 21; opset++)
            assert_true(pare_op_find("", alias[i], opset)->flags & PARE_OP_ALIAS);
    for (int opset = 7; opset <= 21; opset++) {
        assert_true(pare_op_find("", "Shape", opset)->flags & PARE_OP_SHAPE_ONLY);
        assert_true(pare_op_find("", "Size", opset)->flags & PARE_OP_SHAPE_ONLY);
        assert_false(pare_op_find("", "Transpose", opset)->flags & PARE_OP_ALIAS);
    }
}

/* ---- Reshape, Flatten, Squeeze, Unsqueeze, Identity ---- */

static void test_reshape_zero_copies_and_minus_one_infers(void **state)
{
    float x[24];
    pare_tensor *in[2];
    run_result r;
    (void)state;

    for (int i = 0; i < 24; i++)
        x[i] = (float)i;
    in[0] = tf32(3, (int64_t[]){2, 3, 4}, x);
    in[1] = ti64(3, (int64_t[]){0, -1, 2});
    assert_int_equal(run_op("Reshape", 13, NULL, 0, in, 2, 1, &r), PARE_OK);
    assert_dims(r.out[0], 3, (int64_t[]){2, 6, 2});
    assert_f32(r.out[0], x, 24, 0);
    run_free(&r);
    pare_tensor_free(in[1]);

    /* allowzero=1 (opset 14): 0 is a real zero; the input must be empty. */
    {
        pare_attr a[] = {A_int("allowzero", 1)};
        pare_tensor *e[2] = {tf32(2, (int64_t[]){0, 3}, NULL), ti64(2, (int64_t[]){3, 0})};
        assert_int_equal(run_op("Reshape", 14, a, 1, e, 2, 1, &r), PARE_OK);
        assert_dims(r.out[0], 2, (int64_t[]){3, 0});
        run_free(&r);
        /* without allowzero, 0 copies the input dim: [3, 3] cannot hold 0 elements */
        run_op("Reshape", 14, NULL, 0, e, 2, 1, &r);
        assert_error(&r, PARE_EINPUT, "cannot reshape [0, 3]");
        run_free(&r);
        free_all(e, 2);
    }
    /* Errors. */
    in[1] = ti64(2, (int64_t[]){-1, -1});
    run_op("Reshape", 13, NULL, 0, in, 2, 1, &r);
    assert_error(&r, PARE_EINPUT, "more than one -1");
    run_free(&r);
    pare_tensor_free(in[1]);
    in[1] = ti64(2, (int64_t[]){5, -1});
    run_op("Reshape", 13, NULL, 0, in, 2, 1, &r);
    assert_error(&r, PARE_EINPUT, "cannot reshape [2, 3, 4]");
    run_free(&r);
    pare_tensor_free(in[1]);
    in[1] = ti64(2, (int64_t[]){5, 5});
    run_op("Reshape", 13, NULL, 0, in, 2, 1, &r);
    assert_error(&r, PARE_EINPUT, "cannot reshape");
    run_free(&r);
    pare_tensor_free(in[1]);
    {
        pare_attr a[] = {A_int("allowzero", 1)};
        in[1] = ti64(3, (int64_t[]){0, -1, 2});
        run_op("Reshape", 14, a, 1, in, 2, 1, &r);
        assert_error(&r, PARE_EINPUT, "both 0 and -1");
        run_free(&r);
        pare_tensor_free(in[1]);
    }
    /* A shape computed at run time cannot be planned. */
    in[1] = tshape(PARE_I64, 1, (int64_t[]){2});
    run_op("Reshape", 13, NULL, 0, in, 2, 1, &r);
    assert_error(&r, PARE_EUNSUPPORTED, "input 'shape' must be a constant");
    assert_true(strlen(r.err.hint) > 0);
    run_free(&r);
    free_all(in, 2);
}

static void test_reshape_opset4_attribute_form(void **state)
{
    float x[6] = {1, 2, 3, 4, 5, 6};
    pare_tensor *in[1] = {tf32(2, (int64_t[]){2, 3}, x)};
    pare_attr a[] = {A_ints("shape", (int64_t[]){3, -1}, 2)};
    run_result r;
    (void)state;

    assert_int_equal(run_op("Reshape", 4, a, 1, in, 1, 1, &r), PARE_OK);
    assert_dims(r.out[0], 2, (int64_t[]){3, 2});
    assert_f32(r.out[0], x, 6, 0);
    run_free(&r);
    free_all(in, 1);
}

/* ALIAS rows: with out sharing in's buffer, forward leaves the bytes alone. */
static void test_alias_forward_in_place_and_copy(void **state)
{
    static const char *const ops[] = {"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity",
                                      "Dropout"};
    float x[6] = {1, 2, 3, 4, 5, 6};
    (void)state;

    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        const pare_op_def *d = pare_op_find("", ops[i], 13);
        pare_tensor *in[2] = {tf32(2, (int64_t[]){1, 6}, x), NULL};
        pare_tensor out, *outp[1] = {&out};
        pare_node node = {0};
        pare_op_ctx ctx = {0};
        pare_error err = {0};
        int n_in = 1;
        float copy[6];

        if (!strcmp(ops[i], "Reshape"))
            in[n_in++] = ti64(1, (int64_t[]){6});
        if (!strcmp(ops[i], "Unsqueeze"))
            in[n_in++] = ti64(1, (int64_t[]){0});
        node.op_type = (char *)ops[i];
        node.domain = (char *)"";
        ctx.node = &node;
        ctx.opset = 13;
        ctx.in = in;
        ctx.n_in = n_in;
        ctx.out = outp;
        ctx.n_out = 1;
        ctx.n_threads = 1;
        ctx.err = &err;
        pare_tensor_view(&out, PARE_UNDEFINED, -1, NULL, NULL);
        assert_int_equal(d->infer(&ctx), PARE_OK);
        assert_int_equal(pare_tensor_numel(&out), 6);
        out.data = in[0]->data; /* the executor shares the buffer */
        assert_int_equal(d->forward(&ctx), PARE_OK);
        assert_memory_equal(in[0]->data, x, sizeof x);
        out.data = copy; /* separate buffers: forward copies */
        assert_int_equal(d->forward(&ctx), PARE_OK);
        assert_memory_equal(copy, x, sizeof x);
        free_all(in, n_in);
    }
}

static void test_flatten_axes(void **state)
{
    pare_tensor *in[1] = {tnew(PARE_I64, 4, (int64_t[]){2, 3, 4, 5}, NULL)};
    run_result r;
    (void)state;

    for (int64_t i = 0; i < 120; i++)
        ((int64_t *)in[0]->data)[i] = i * 1000;
    {
        pare_attr a[] = {A_int("axis", 0)};
        assert_int_equal(run_op("Flatten", 13, a, 1, in, 1, 1, &r), PARE_OK);
        assert_dims(r.out[0], 2, (int64_t[]){1, 120});
        assert_int_equal(((int64_t *)r.out[0]->data)[119], 119000);
        run_free(&r);
    }
    {
        pare_attr a[] = {A_int("axis", -1)};
        assert_int_equal(run_op("Flatten", 13, a, 1, in, 1, 1, &r), PARE_OK);
        assert_dims(r.out[0], 2, (int64_t[]){24, 5});
        run_free(&r);
    }
    assert_int_equal(run_op("Flatten", 9, NULL, 0, in, 1, 1, &r), PARE_OK);
    assert_dims(r.out[0], 2, (int64_t[]){2, 60});
    assert_int_equal(r.out[0]->dtype, PARE_I64);
    run_free(&r);
    {
        pare_attr a[] = {A_int("axis", 5)};
        run_op("Flatten", 13, a, 1, in, 1, 1, &r);
        assert_error(&r, PARE_EINPUT, "axis 5 is out of range for rank 4");
        run_free(&r);
    }
    free_all(in, 1);
}

static void test_squeeze_attribute_and_input_forms(void **state)
{
    pare_tensor *in[2] = {tf32(4, (int64_t[]){1, 3, 1, 2}, NULL), NULL};
    run_result r;
    (void)state;

    /* opset 11: axes attribute, negative allowed */
    {
        pare_attr a[] = {A_ints("axes", (int64_t[]){-2}, 1)};
        assert_int_equal(run_op("Squeeze", 11, a, 1, in, 1, 1, &r), PARE_OK);
        assert_dims(r.out[0], 3, (int64_t[]){1, 3, 2});
        run_free(&r);
    }
    /* no axes: every 1 goes */
    assert_int_equal(run_op("Squeeze", 11, NULL, 0, in, 1, 1, &r), PARE_OK);
    assert_dims(r.out[0], 2, (int64_t[]){3, 2});
    run_free(&r);
    assert_int_equal(run_op("Squeeze", 13, NULL, 0, in, 1, 1, &r), PARE_OK);
    assert_dims(r.out[0], 2, (int64_t[]){3, 2});
    run_free(&r);
    /* opset 13: axes input; the attribute is no longer read */
    in[1] = ti64(1, (int64_t[]){0});
    assert_int_equal(run_op("Squeeze", 13, NULL, 0, in, 2, 1, &r), PARE_OK);
    assert_dims(r.out[0], 3, (int64_t[]){3, 1, 2});
    run_free(&r);
    pare_tensor_free(in[1]);
    in[1] = ti64(1, (int64_t[]){1});
    run_op("Squeeze", 13, NULL, 0, in, 2, 1, &r);
    assert_error(&r, PARE_EINPUT, "cannot squeeze axis 1 of size 3");
    run_free(&r);
    free_all(in, 2);
}

static void test_unsqueeze_attribute_and_input_forms(void **state)
{
    pare_tensor *in[2] = {tf32(2, (int64_t[]){3, 4}, NULL), NULL};
    run_result r;
    (void)state;

    {
        pare_attr a[] = {A_ints("axes", (int64_t[]){2, 0}, 2)}; /* unsorted */
        assert_int_equal(run_op("Unsqueeze", 11, a, 1, in, 1, 1, &r), PARE_OK);
        assert_dims(r.out[0], 4, (int64_t[]){1, 3, 1, 4});
        run_free(&r);
        run_op("Unsqueeze", 13, a, 1, in, 1, 1, &r); /* 13 reads the input */
        assert_error(&r, PARE_EINPUT, "'axes' is required");
        run_free(&r);
    }
    in[1] = ti64(2, (int64_t[]){-1, 1});
    assert_int_equal(run_op("Unsqueeze", 13, NULL, 0, in, 2, 1, &r), PARE_OK);
    assert_dims(r.out[0], 4, (int64_t[]){3, 1, 4, 1});
    run_free(&r);
    pare_tensor_free(in[1]);
    in[1] = ti64(2, (int64_t[]){1, -3});
    run_op("Unsqueeze", 13, NULL, 0, in, 2, 1, &r);
    assert_error(&r, PARE_EINPUT, "listed twice");
    run_free(&r);
    free_all(in, 2);
}

static void test_identity_keeps_dtype(void **state)
{
    uint8_t b[3] = {1, 0, 1};
    pare_tensor *in[1] = {tnew(PARE_BOOL, 1, (int64_t[]){3}, b)};
    run_result r;
    (void)state;

    assert_int_equal(run_op("Identity", 14, NULL, 0, in, 1, 1, &r), PARE_OK);
    assert_int_equal(r.out[0]->dtype, PARE_BOOL);
    assert_memory_equal(r.out[0]->data, b, 3);
    run_free(&r);
    free_all(in, 1);
}

/* ---- Dropout ---- */

static void test_dropout_inference_and_masks(void **state)
{
    float x[4] = {1, -2, 3, -4};
    pare_tensor *in[3] = {tf32(2, (int64_t[]){2, 2}, x), NULL, NULL};
    float ratio = 0.3f;
    uint8_t no = 0, yes = 1;
    run_result r;
    (void)state;

    /* opset 7: ratio attribute, mask has the data's dtype */
    {
        pare_attr a[] = {A_float("ratio", 0.5f)};
        assert_int_equal(run_op("Dropout", 7, a, 1, in, 1, 2, &r), PARE_OK);
        assert_f32(r.out[0], x, 4, 0);
        assert_f32(r.out[1], (float[]){1, 1, 1, 1}, 4, 0);
        run_free(&r);
    }
    /* opset 12: ratio and training_mode inputs; mask is bool */
    in[1] = scalar(PARE_F32, &ratio);
    in[2] = scalar(PARE_BOOL, &no);
    assert_int_equal(run_op("Dropout", 12, NULL, 0, in, 3, 2, &r), PARE_OK);
    assert_f32(r.out[0], x, 4, 0);
    assert_int_equal(r.out[1]->dtype, PARE_BOOL);
    assert_memory_equal(r.out[1]->data, ((uint8_t[]){1, 1, 1, 1}), 4);
    run_free(&r);
    /* no mask requested */
    assert_int_equal(run_op_mask("Dropout", 13, NULL, 0, in, 3, 2, 2u, &r), PARE_OK);
    assert_f32(r.out[0], x, 4, 0);
    run_free(&r);
    pare_tensor_free(in[2]);
    in[2] = scalar(PARE_BOOL, &yes);
    run_op("Dropout", 13, NULL, 0, in, 3, 2, &r);
    assert_error(&r, PARE_EUNSUPPORTED, "training mode");
    run_free(&r);
    /* training with ratio 0 drops nothing */
    ratio = 0.0f;
    pare_tensor_free(in[1]);
    in[1] = scalar(PARE_F32, &ratio);
    assert_int_equal(run_op("Dropout", 13, NULL, 0, in, 3, 2, &r), PARE_OK);
    assert_f32(r.out[0], x, 4, 0);
    run_free(&r);
    /* a training flag computed at run time cannot be planned */
    pare_tensor_free(in[2]);
    in[2] = tshape(PARE_BOOL, 0, NULL);
    run_op("Dropout", 13, NULL, 0, in, 3, 2, &r);
    assert_error(&r, PARE_EUNSUPPORTED, "input 'training_mode' must be a constant");
    run_free(&r);
    free_all(in, 3);
}

/* ---- Shape, Size ---- */

static void test_shape_and_size_read_only_dims(void **state)
{
    /* data == NULL: SHAPE_ONLY forward must not touch it */
    pare_tensor *in[1] = {tshape(PARE_F32, 4, (int64_t[]){2, 3, 4, 5})};
    run_result r;
    (void)state;

    assert_int_equal(run_op("Shape", 13, NULL, 0, in, 1, 1, &r), PARE_OK);
    assert_i64(r.out[0], (int64_t[]){2, 3, 4, 5}, 4);
    run_free(&r);
    {
        pare_attr a[] = {A_int("start", 1), A_int("end", -1)};
        assert_int_equal(run_op("Shape", 15, a, 2, in, 1, 1, &r), PARE_OK);
        assert_i64(r.out[0], (int64_t[]){3, 4}, 2);
        run_free(&r);
        /* before opset 15 the attributes do not exist */
        assert_int_equal(run_op("Shape", 14, a, 2, in, 1, 1, &r), PARE_OK);
        assert_int_equal(pare_tensor_numel(r.out[0]), 4);
        run_free(&r);
    }
    {
        pare_attr a[] = {A_int("start", -10), A_int("end", 10)}; /* clamped */
        assert_int_equal(run_op("Shape", 15, a, 2, in, 1, 1, &r), PARE_OK);
        assert_i64(r.out[0], (int64_t[]){2, 3, 4, 5}, 4);
        run_free(&r);
    }
    {
        pare_attr a[] = {A_int("start", 3), A_int("end", 1)}; /* empty */
        assert_int_equal(run_op("Shape", 15, a, 2, in, 1, 1, &r), PARE_OK);
        assert_dims(r.out[0], 1, (int64_t[]){0});
        run_free(&r);
    }
    assert_int_equal(run_op("Size", 13, NULL, 0, in, 1, 1, &r), PARE_OK);
    assert_dims(r.out[0], 0, NULL);
    assert_i64(r.out[0], (int64_t[]){120}, 1);
    run_free(&r);
    free_all(in, 1);
}

/* ---- Constant, ConstantOfShape ---- */

static void test_constant_value_kinds(void **state)
{
    int32_t iv[3] = {7, -8, 9};
    pare_tensor *t = tnew(PARE_I32, 1, (int64_t[]){3}, iv);
    run_result r;
    (void)state;

    {
        pare_attr a[] = {A_tensor("value", t)};
        assert_int_equal(run_op("Constant", 13, a, 1, NULL, 0, 1, &r), PARE_OK);
        assert_int_equal(r.out[0]->dtype, PARE_I32);
        assert_dims(r.out[0], 1, (int64_t[]){3});
        assert_memory_equal(r.out[0]->data, iv, sizeof iv);
        run_free(&r);
    }
    {
        pare_attr a[] = {A_float("value_float", 2.5f)};
        assert_int_equal(run_op("Constant", 13, a, 1, NULL, 0, 1, &r), PARE_OK);
        assert_dims(r.out[0], 0, NULL);
        assert_f32(r.out[0], (float[]){2.5f}, 1, 0);
        run_free(&r);
    }
    {
        pare_attr a[] = {A_floats("value_floats", (float[]){1, 2}, 2)};
        assert_int_equal(run_op("Constant", 13, a, 1, NULL, 0, 1, &r), PARE_OK);
        assert_f32(r.out[0], (float[]){1, 2}, 2, 0);
        run_free(&r);
    }
    {
        pare_attr a[] = {A_int("value_int", -3)};
        assert_int_equal(run_op("Constant", 13, a, 1, NULL, 0, 1, &r), PARE_OK);
        assert_dims(r.out[0], 0, NULL);
        assert_i64(r.out[0], (int64_t[]){-3}, 1);
        run_free(&r);
    }
    {
        pare_attr a[] = {A_ints("value_ints", (int64_t[]){4, 5, 6}, 3)};
        assert_int_equal(run_op("Constant", 13, a, 1, NULL, 0, 1, &r), PARE_OK);
        assert_i64(r.out[0], (int64_t[]){4, 5, 6}, 3);
        run_free(&r);
    }
    {
        pare_attr a[] = {{0}};
        a[0].name = (char *)"sparse_value";
        a[0].type = 11; /* SPARSE_TENSOR, kept opaque by the loader */
        run_op("Constant", 13, a, 1, NULL, 0, 1, &r);
        assert_error(&r, PARE_EUNSUPPORTED, "sparse_value");
        run_free(&r);
    }
    {
        pare_attr a[] = {A_str("value_string", "hello")};
        run_op("Constant", 13, a, 1, NULL, 0, 1, &r);
        assert_error(&r, PARE_EUNSUPPORTED, "value_string");
        run_free(&r);
    }
    run_op("Constant", 13, NULL, 0, NULL, 0, 1, &r);
    assert_error(&r, PARE_EINPUT, "no value attribute");
    run_free(&r);
    pare_tensor_free(t);
}

static void test_constant_of_shape(void **state)
{
    int64_t seven = 7;
    pare_tensor *v = tnew(PARE_I64, 1, (int64_t[]){1}, &seven);
    pare_tensor *in[1] = {ti64(2, (int64_t[]){2, 3})};
    run_result r;
    (void)state;

    assert_int_equal(run_op("ConstantOfShape", 9, NULL, 0, in, 1, 1, &r), PARE_OK);
    assert_dims(r.out[0], 2, (int64_t[]){2, 3});
    assert_f32(r.out[0], (float[]){0, 0, 0, 0, 0, 0}, 6, 0);
    run_free(&r);
    {
        pare_attr a[] = {A_tensor("value", v)};
        assert_int_equal(run_op("ConstantOfShape", 20, a, 1, in, 1, 1, &r), PARE_OK);
        assert_i64(r.out[0], (int64_t[]){7, 7, 7, 7, 7, 7}, 6);
        run_free(&r);
        pare_tensor_free(in[0]);
        in[0] = ti64(1, (int64_t[]){0});
        assert_int_equal(run_op("ConstantOfShape", 20, a, 1, in, 1, 1, &r), PARE_OK);
        assert_dims(r.out[0], 1, (int64_t[]){0});
        run_free(&r);
        pare_tensor_free(in[0]);
        in[0] = tnew(PARE_I64, 1, (int64_t[]){0}, NULL); /* empty shape: a scalar */
        assert_int_equal(run_op("ConstantOfShape", 20, a, 1, in, 1, 1, &r), PARE_OK);
        assert_dims(r.out[0], 0, NULL);
        assert_i64(r.out[0], (int64_t[]){7}, 1);
        run_free(&r);
    }
    pare_tensor_free(in[0]);
    in[0] = tshape(PARE_I64, 1, (int64_t[]){2});
    run_op("ConstantOfShape", 9, NULL, 0, in, 1, 1, &r);
    assert_error(&r, PARE_EUNSUPPORTED, "must be a constant");
    run_free(&r);
    free_all(in, 1);
    pare_tensor_free(v);
}

/* ---- Transpose ---- */

static void naive_transpose(const pare_tensor *x, const int *perm, float *y)
{
    int64_t s[PARE_MAX_DIMS], od[PARE_MAX_DIMS], idx[PARE_MAX_DIMS];
    int n = x->ndim;

    strides_of(n, x->dims, s);
    for (int k = 0; k < n; k++)
        od[k] = x->dims[perm[k]];
    for (int64_t i = 0; i < pare_tensor_numel(x); i++) {
        int64_t off = 0;
        unravel(i, n, od, idx);
        for (int k = 0; k < n; k++)
            off += idx[k] * s[perm[k]];
        y[i] = pare_tensor_f32(x)[off];
    }
}

static void check_transpose(int n, const int64_t *dims, const int *perm)
{
    pare_tensor *in[1] = {trandom(n, dims)};
    int64_t p64[PARE_MAX_DIMS];
    float *want = pare_alloc((size_t)pare_tensor_numel(in[0]) * sizeof(float) + 4);
    pare_attr a[1];
    run_result r;

    for (int k = 0; k < n; k++)
        p64[k] = perm[k];
    a[0] = A_ints("perm", p64, n);
    naive_transpose(in[0], perm, want);
    assert_int_equal(run_op("Transpose", 13, a, 1, in, 1, 1, &r), PARE_OK);
    for (int k = 0; k < n; k++)
        assert_int_equal(r.out[0]->dims[k], dims[perm[k]]);
    assert_memory_equal(r.out[0]->data, want, (size_t)pare_tensor_numel(in[0]) * sizeof(float));
    run_free(&r);
    pare_free(want);
    free_all(in, 1);
}

static void test_transpose_all_4d_permutations_match_naive(void **state)
{
    int perm[4];
    (void)state;

    for (int a = 0; a < 4; a++)
        for (int b = 0; b < 4; b++)
            for (int c = 0; c < 4; c++)
                for (int d = 0; d < 4; d++) {
                    if (a == b || a == c || a == d || b == c || b == d || c == d)
                        continue;
                    perm[0] = a, perm[1] = b, perm[2] = c, perm[3] = d;
                    check_transpose(4, (int64_t[]){2, 3, 4, 5}, perm);
                    check_transpose(4, (int64_t[]){3, 1, 37, 6}, perm);
                }
    /* large enough for the tiled and threaded paths */
    check_transpose(4, (int64_t[]){8, 33, 17, 40}, (int[]){0, 2, 1, 3});
    check_transpose(4, (int64_t[]){8, 33, 17, 40}, (int[]){0, 1, 3, 2});
    check_transpose(4, (int64_t[]){8, 33, 17, 40}, (int[]){0, 3, 1, 2});
    check_transpose(4, (int64_t[]){8, 33, 17, 40}, (int[]){0, 2, 3, 1});
    check_transpose(3, (int64_t[]){64, 197, 48}, (int[]){1, 0, 2});
    check_transpose(2, (int64_t[]){300, 129}, (int[]){1, 0});
    check_transpose(5, (int64_t[]){2, 3, 4, 5, 6}, (int[]){4, 2, 0, 3, 1});
    check_transpose(6, (int64_t[]){2, 3, 2, 3, 2, 3}, (int[]){5, 0, 4, 1, 3, 2});
}

static void test_transpose_default_perm_and_dtypes(void **state)
{
    int64_t v[6] = {1, 2, 3, 4, 5, 6};
    uint16_t h[6] = {1, 2, 3, 4, 5, 6};
    pare_tensor *in[1] = {tnew(PARE_I64, 2, (int64_t[]){2, 3}, v)};
    run_result r;
    (void)state;

    assert_int_equal(run_op("Transpose", 13, NULL, 0, in, 1, 1, &r), PARE_OK);
    assert_dims(r.out[0], 2, (int64_t[]){3, 2});
    assert_i64(r.out[0], (int64_t[]){1, 4, 2, 5, 3, 6}, 6);
    run_free(&r);
    pare_tensor_free(in[0]);
    in[0] = tnew(PARE_F16, 2, (int64_t[]){3, 2}, h);
    assert_int_equal(run_op("Transpose", 13, NULL, 0, in, 1, 1, &r), PARE_OK);
    assert_memory_equal(r.out[0]->data, ((uint16_t[]){1, 3, 5, 2, 4, 6}), 12);
    run_free(&r);
    {
        pare_attr a[] = {A_ints("perm", (int64_t[]){0, 0}, 2)};
        run_op("Transpose", 13, a, 1, in, 1, 1, &r);
        assert_error(&r, PARE_EINPUT, "not a permutation");
        run_free(&r);
    }
    free_all(in, 1);
}

/* ---- Concat, Split ---- */

static void test_concat_axes_and_errors(void **state)
{
    float a[4] = {1, 2, 3, 4}, b[2] = {5, 6}, c[6] = {7, 8, 9, 10, 11, 12};
    pare_tensor *in[3] = {tf32(2, (int64_t[]){2, 2}, a), tf32(2, (int64_t[]){2, 1}, b),
                          tf32(2, (int64_t[]){2, 3}, c)};
    run_result r;
    (void)state;

    {
        pare_attr at[] = {A_int("axis", -1)};
        assert_int_equal(run_op("Concat", 13, at, 1, in, 3, 1, &r), PARE_OK);
        assert_dims(r.out[0], 2, (int64_t[]){2, 6});
        assert_f32(r.out[0], (float[]){1, 2, 5, 7, 8, 9, 3, 4, 6, 10, 11, 12}, 12, 0);
        run_free(&r);
        /* mismatched non-axis dims */
        run_op("Concat", 13, (pare_attr[]){A_int("axis", 0)}, 1, in, 2, 1, &r);
        assert_error(&r, PARE_EINPUT, "does not match");
        run_free(&r);
    }
    run_op("Concat", 13, NULL, 0, in, 2, 1, &r);
    assert_error(&r, PARE_EINPUT, "'axis' is required");
    run_free(&r);
    free_all(in, 3);

    /* axis 0, int64, with an empty input */
    {
        int64_t x[2] = {1, 2}, y[4] = {3, 4, 5, 6};
        pare_tensor *q[3] = {tnew(PARE_I64, 2, (int64_t[]){1, 2}, x),
                             tnew(PARE_I64, 2, (int64_t[]){0, 2}, NULL),
                             tnew(PARE_I64, 2, (int64_t[]){2, 2}, y)};
        pare_attr at[] = {A_int("axis", 0)};
        assert_int_equal(run_op("Concat", 11, at, 1, q, 3, 1, &r), PARE_OK);
        assert_i64(r.out[0], (int64_t[]){1, 2, 3, 4, 5, 6}, 6);
        run_free(&r);
        free_all(q, 3);
    }
}

static void test_split_every_form(void **state)
{
    float x[14];
    pare_tensor *in[2] = {NULL, NULL};
    run_result r;
    (void)state;

    for (int i = 0; i < 14; i++)
        x[i] = (float)i;
    in[0] = tf32(2, (int64_t[]){2, 7}, x);
    /* opset 11: split attribute, negative axis */
    {
        pare_attr a[] = {A_int("axis", -1), A_ints("split", (int64_t[]){2, 5}, 2)};
        assert_int_equal(run_op("Split", 11, a, 2, in, 1, 2, &r), PARE_OK);
        assert_dims(r.out[0], 2, (int64_t[]){2, 2});
        assert_f32(r.out[0], (float[]){0, 1, 7, 8}, 4, 0);
        assert_f32(r.out[1], (float[]){2, 3, 4, 5, 6, 9, 10, 11, 12, 13}, 10, 0);
        run_free(&r);
    }
    /* opset 13: split input */
    in[1] = ti64(3, (int64_t[]){3, 0, 4});
    {
        pare_attr a[] = {A_int("axis", 1)};
        assert_int_equal(run_op("Split", 13, a, 1, in, 2, 3, &r), PARE_OK);
        assert_dims(r.out[1], 2, (int64_t[]){2, 0});
        assert_f32(r.out[0], (float[]){0, 1, 2, 7, 8, 9}, 6, 0);
        assert_f32(r.out[2], (float[]){3, 4, 5, 6, 10, 11, 12, 13}, 8, 0);
        run_free(&r);
        /* an omitted output is skipped */
        assert_int_equal(run_op_mask("Split", 13, a, 1, in, 2, 3, 1u, &r), PARE_OK);
        assert_f32(r.out[2], (float[]){3, 4, 5, 6, 10, 11, 12, 13}, 8, 0);
        run_free(&r);
    }
    pare_tensor_free(in[1]);
    in[1] = NULL;
    /* opset 18: num_outputs, the last chunk smaller (7 = 3 + 3 + 1) */
    {
        pare_attr a[] = {A_int("axis", 1), A_int("num_outputs", 3)};
        assert_int_equal(run_op("Split", 18, a, 2, in, 1, 3, &r), PARE_OK);
        assert_dims(r.out[0], 2, (int64_t[]){2, 3});
        assert_dims(r.out[2], 2, (int64_t[]){2, 1});
        assert_f32(r.out[2], (float[]){6, 13}, 2, 0);
        run_free(&r);
    }
    /* equal parts along axis 0 (default) */
    assert_int_equal(run_op("Split", 13, NULL, 0, in, 1, 2, &r), PARE_OK);
    assert_f32(r.out[1], x + 7, 7, 0);
    run_free(&r);
    {
        pare_attr a[] = {A_int("axis", 1)};
        run_op("Split", 13, a, 1, in, 1, 2, &r);
        assert_error(&r, PARE_EINPUT, "cannot split dim 7 into 2 equal parts");
        run_free(&r);
    }
    {
        pare_attr a[] = {A_int("axis", 1), A_ints("split", (int64_t[]){2, 2}, 2)};
        run_op("Split", 2, a, 2, in, 1, 2, &r);
        assert_error(&r, PARE_EINPUT, "sums to 4");
        run_free(&r);
    }
    free_all(in, 2);
}

/* ---- Slice ---- */

static void naive_slice(const pare_tensor *x, const int64_t *start, const int64_t *step,
                        const int64_t *len, float *y)
{
    int64_t s[PARE_MAX_DIMS], idx[PARE_MAX_DIMS], n = 1;
    strides_of(x->ndim, x->dims, s);
    for (int k = 0; k < x->ndim; k++)
        n *= len[k];
    for (int64_t i = 0; i < n; i++) {
        int64_t off = 0;
        unravel(i, x->ndim, len, idx);
        for (int k = 0; k < x->ndim; k++)
            off += (start[k] + idx[k] * step[k]) * s[k];
        y[i] = pare_tensor_f32(x)[off];
    }
}

static void test_slice_inputs_negative_steps_and_clamping(void **state)
{
    pare_tensor *in[5] = {trandom(3, (int64_t[]){4, 5, 6}), NULL, NULL, NULL, NULL};
    float want[120];
    run_result r;
    (void)state;

    /* starts [-1, 1], ends [INT64_MIN, 100], axes [2, -3], steps [-2, 2] */
    in[1] = ti64(2, (int64_t[]){-1, 1});
    in[2] = ti64(2, (int64_t[]){INT64_MIN, 100});
    in[3] = ti64(2, (int64_t[]){2, -3});
    in[4] = ti64(2, (int64_t[]){-2, 2});
    naive_slice(in[0], (int64_t[]){1, 0, 5}, (int64_t[]){2, 1, -2}, (int64_t[]){2, 5, 3}, want);
    assert_int_equal(run_op("Slice", 13, NULL, 0, in, 5, 1, &r), PARE_OK);
    assert_dims(r.out[0], 3, (int64_t[]){2, 5, 3});
    assert_f32(r.out[0], want, 30, 0);
    run_free(&r);
    free_all(in + 1, 4);

    /* full reverse with ends -INF-like and default axes, steps -1 */
    in[1] = ti64(3, (int64_t[]){-1, -1, -1});
    in[2] = ti64(3, (int64_t[]){-1000, -1000, -1000});
    in[3] = ti64(3, (int64_t[]){0, 1, 2});
    in[4] = ti64(3, (int64_t[]){-1, -1, -1});
    naive_slice(in[0], (int64_t[]){3, 4, 5}, (int64_t[]){-1, -1, -1}, (int64_t[]){4, 5, 6}, want);
    assert_int_equal(run_op("Slice", 13, NULL, 0, in, 5, 1, &r), PARE_OK);
    assert_f32(r.out[0], want, 120, 0);
    run_free(&r);
    free_all(in + 1, 4);

    /* start past the end: empty */
    in[1] = ti64(1, (int64_t[]){10});
    in[2] = ti64(1, (int64_t[]){1000});
    assert_int_equal(run_op("Slice", 10, NULL, 0, in, 3, 1, &r), PARE_OK);
    assert_dims(r.out[0], 3, (int64_t[]){0, 5, 6});
    run_free(&r);
    free_all(in + 1, 2);

    /* step 0 */
    in[1] = ti64(1, (int64_t[]){0});
    in[2] = ti64(1, (int64_t[]){2});
    in[3] = ti64(1, (int64_t[]){1});
    in[4] = ti64(1, (int64_t[]){0});
    run_op("Slice", 13, NULL, 0, in, 5, 1, &r);
    assert_error(&r, PARE_EINPUT, "step on axis 1 is 0");
    run_free(&r);
    free_all(in, 5);
}

static void test_slice_opset1_attributes(void **state)
{
    int64_t v[12];
    pare_tensor *in[1];
    run_result r;
    (void)state;

    for (int i = 0; i < 12; i++)
        v[i] = i;
    in[0] = tnew(PARE_I64, 2, (int64_t[]){3, 4}, v);
    {
        pare_attr a[] = {A_ints("starts", (int64_t[]){1, -3}, 2),
                         A_ints("ends", (int64_t[]){INT64_MAX, 3}, 2),
                         A_ints("axes", (int64_t[]){0, 1}, 2)};
        assert_int_equal(run_op("Slice", 9, a, 3, in, 1, 1, &r), PARE_OK);
        assert_i64(r.out[0], (int64_t[]){5, 6, 9, 10}, 4);
        run_free(&r);
    }
    {
        pare_attr a[] = {A_ints("starts", (int64_t[]){2}, 1), A_ints("ends", (int64_t[]){3}, 1)};
        assert_int_equal(run_op("Slice", 1, a, 2, in, 1, 1, &r), PARE_OK);
        assert_i64(r.out[0], (int64_t[]){8, 9, 10, 11}, 4);
        run_free(&r);
    }
    free_all(in, 1);
}

/* ---- Gather, GatherElements ---- */

static void test_gather_axes_and_negative_indices(void **state)
{
    float x[12];
    int32_t idx32[4] = {2, -1, 0, 1};
    pare_tensor *in[2];
    run_result r;
    (void)state;

    for (int i = 0; i < 12; i++)
        x[i] = (float)i;
    in[0] = tf32(2, (int64_t[]){3, 4}, x);
    in[1] = tnew(PARE_I32, 2, (int64_t[]){2, 2}, idx32);
    /* axis 0: rows */
    assert_int_equal(run_op("Gather", 13, NULL, 0, in, 2, 1, &r), PARE_OK);
    assert_dims(r.out[0], 3, (int64_t[]){2, 2, 4});
    assert_f32(r.out[0], (float[]){8, 9, 10, 11, 8, 9, 10, 11, 0, 1, 2, 3, 4, 5, 6, 7}, 16, 0);
    run_free(&r);
    pare_tensor_free(in[1]);
    /* axis 1, int64 scalar index: a rank drop */
    {
        int64_t one = -3;
        pare_attr a[] = {A_int("axis", -1)};
        in[1] = scalar(PARE_I64, &one);
        assert_int_equal(run_op("Gather", 11, a, 1, in, 2, 1, &r), PARE_OK);
        assert_dims(r.out[0], 1, (int64_t[]){3});
        assert_f32(r.out[0], (float[]){1, 5, 9}, 3, 0);
        run_free(&r);
        pare_tensor_free(in[1]);
        one = 4;
        in[1] = scalar(PARE_I64, &one);
        run_op("Gather", 11, a, 1, in, 2, 1, &r);
        assert_error(&r, PARE_EINPUT, "index 4 is out of range");
        run_free(&r);
    }
    free_all(in, 2);
}

static void test_gather_elements(void **state)
{
    float x[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    int64_t idx[6] = {1, 2, 0, 2, 0, -3};
    pare_tensor *in[2] = {tf32(2, (int64_t[]){3, 3}, x), tnew(PARE_I64, 2, (int64_t[]){2, 3}, idx)};
    run_result r;
    (void)state;

    assert_int_equal(run_op("GatherElements", 13, NULL, 0, in, 2, 1, &r), PARE_OK);
    assert_f32(r.out[0], (float[]){4, 8, 3, 7, 2, 3}, 6, 0);
    run_free(&r);
    {
        pare_attr a[] = {A_int("axis", 1)};
        assert_int_equal(run_op("GatherElements", 13, a, 1, in, 2, 1, &r), PARE_OK);
        assert_f32(r.out[0], (float[]){2, 3, 1, 6, 4, 4}, 6, 0);
        run_free(&r);
    }
    free_all(in, 2);
}

/* ---- Cast ---- */

static void test_cast_conversions(void **state)
{
    float x[6] = {-1.7f, 2.9f, 0.0f, -0.0f, 300.5f, NAN};
    pare_tensor *in[1] = {tf32(1, (int64_t[]){6}, x)};
    run_result r;
    (void)state;

    {
        pare_attr a[] = {A_int("to", PARE_I32)};
        assert_int_equal(run_op("Cast", 13, a, 1, in, 1, 1, &r), PARE_OK);
        assert_int_equal(r.out[0]->dtype, PARE_I32);
        assert_int_equal(((int32_t *)r.out[0]->data)[0], -1); /* toward zero */
        assert_int_equal(((int32_t *)r.out[0]->data)[1], 2);
        assert_int_equal(((int32_t *)r.out[0]->data)[4], 300);
        assert_true(r.flops == 6.0);
        run_free(&r);
    }
    {
        pare_attr a[] = {A_int("to", PARE_BOOL)};
        assert_int_equal(run_op("Cast", 13, a, 1, in, 1, 1, &r), PARE_OK);
        assert_memory_equal(r.out[0]->data, ((uint8_t[]){1, 1, 0, 0, 1, 1}), 6);
        run_free(&r);
    }
    {
        pare_attr a[] = {A_int("to", PARE_F16)};
        assert_int_equal(run_op("Cast", 13, a, 1, in, 1, 1, &r), PARE_OK);
        assert_true(fabsf(pare_f16_to_f32(((uint16_t *)r.out[0]->data)[1]) - 2.9f) < 2e-3f);
        assert_true(isnan(pare_f16_to_f32(((uint16_t *)r.out[0]->data)[5])));
        run_free(&r);
    }
    {
        pare_attr a[] = {A_int("to", PARE_F64)};
        assert_int_equal(run_op("Cast", 13, a, 1, in, 1, 1, &r), PARE_OK);
        assert_true(((double *)r.out[0]->data)[0] == (double)-1.7f);
        run_free(&r);
    }
    /* Cast-1 names the type */
    {
        pare_attr a[] = {A_str("to", "INT64")};
        assert_int_equal(run_op("Cast", 5, a, 1, in, 1, 1, &r), PARE_OK);
        assert_int_equal(r.out[0]->dtype, PARE_I64);
        assert_int_equal(((int64_t *)r.out[0]->data)[0], -1);
        run_free(&r);
    }
    {
        pare_attr a[] = {A_int("to", PARE_STRING)};
        run_op("Cast", 13, a, 1, in, 1, 1, &r);
        assert_error(&r, PARE_EUNSUPPORTED, "dtype 'string' not supported");
        run_free(&r);
    }
    free_all(in, 1);

    /* integers: int64 -> float, negative -> uint8 wraps, bool -> float */
    {
        int64_t v[3] = {-1, 16777217, 255};
        pare_tensor *q[1] = {tnew(PARE_I64, 1, (int64_t[]){3}, v)};
        pare_attr a[] = {A_int("to", PARE_U8)};
        assert_int_equal(run_op("Cast", 13, a, 1, q, 1, 1, &r), PARE_OK);
        assert_memory_equal(r.out[0]->data, ((uint8_t[]){255, 1, 255}), 3);
        run_free(&r);
        a[0] = A_int("to", PARE_F32);
        assert_int_equal(run_op("Cast", 13, a, 1, q, 1, 1, &r), PARE_OK);
        assert_f32(r.out[0], (float[]){-1.0f, 16777216.0f, 255.0f}, 3, 0);
        run_free(&r);
        free_all(q, 1);
    }
    {
        uint8_t b[2] = {0, 1};
        pare_tensor *q[1] = {tnew(PARE_BOOL, 1, (int64_t[]){2}, b)};
        pare_attr a[] = {A_int("to", PARE_F32)};
        assert_int_equal(run_op("Cast", 13, a, 1, q, 1, 1, &r), PARE_OK);
        assert_f32(r.out[0], (float[]){0, 1}, 2, 0);
        run_free(&r);
        free_all(q, 1);
    }
}

static void test_cast_bfloat16_rounding_by_opset(void **state)
{
    /* 0.48033666f = 0x3EF5EE5A... : truncation gives 0x3EF5, RNE 0x3EF6 */
    float x[1] = {0.48033666610717773f};
    pare_tensor *in[1] = {tf32(1, (int64_t[]){1}, x)};
    pare_attr a[] = {A_int("to", PARE_BF16)};
    run_result r;
    (void)state;

    assert_int_equal(run_op("Cast", 13, a, 1, in, 1, 1, &r), PARE_OK);
    assert_int_equal(((uint16_t *)r.out[0]->data)[0], 16117);
    run_free(&r);
    assert_int_equal(run_op("Cast", 19, a, 1, in, 1, 1, &r), PARE_OK);
    assert_int_equal(((uint16_t *)r.out[0]->data)[0], 16118);
    run_free(&r);
    /* and back: bf16 widens exactly */
    {
        uint16_t h = 16118;
        pare_tensor *q[1] = {tnew(PARE_BF16, 1, (int64_t[]){1}, &h)};
        pare_attr b[] = {A_int("to", PARE_F32)};
        assert_int_equal(run_op("Cast", 13, b, 1, q, 1, 1, &r), PARE_OK);
        assert_true(pare_tensor_f32(r.out[0])[0] == pare_bf16_to_f32(16118));
        run_free(&r);
        free_all(q, 1);
    }
    free_all(in, 1);
}

static void test_castlike(void **state)
{
    float x[2] = {1.9f, -2.5f};
    int64_t like = 0;
    pare_tensor *in[2] = {tf32(1, (int64_t[]){2}, x), scalar(PARE_I64, &like)};
    run_result r;
    (void)state;

    assert_int_equal(run_op("CastLike", 15, NULL, 0, in, 2, 1, &r), PARE_OK);
    assert_i64(r.out[0], (int64_t[]){1, -2}, 2);
    run_free(&r);
    free_all(in, 2);
}

/* ---- Pad ---- */

/* numpy.pad semantics for one axis: source index or -1 (constant). */
static int64_t naive_pad_src(const char *mode, int64_t i, int64_t d)
{
    if (i >= 0 && i < d)
        return i;
    if (!strcmp(mode, "edge"))
        return i < 0 ? 0 : d - 1;
    if (!strcmp(mode, "wrap"))
        return ((i % d) + d) % d;
    if (!strcmp(mode, "reflect")) {
        while (i < 0 || i >= d) /* bounce */
            i = i < 0 ? -i : 2 * (d - 1) - i;
        return i;
    }
    return -1;
}

static void naive_pad(const pare_tensor *x, const char *mode, const int64_t *pads, float value,
                      float *y, int64_t *od)
{
    int n = x->ndim;
    int64_t s[PARE_MAX_DIMS], idx[PARE_MAX_DIMS], total = 1;
    strides_of(n, x->dims, s);
    for (int k = 0; k < n; k++) {
        od[k] = x->dims[k] + pads[k] + pads[k + n];
        total *= od[k];
    }
    for (int64_t i = 0; i < total; i++) {
        int64_t off = 0;
        bool outside = false;
        unravel(i, n, od, idx);
        for (int k = 0; k < n; k++) {
            int64_t j = naive_pad_src(mode, idx[k] - pads[k], x->dims[k]);
            if (j < 0)
                outside = true;
            else
                off += j * s[k];
        }
        y[i] = outside ? value : pare_tensor_f32(x)[off];
    }
}

static void check_pad(int opset, const char *mode, int n, const int64_t *dims, const int64_t *pads,
                      float value)
{
    pare_tensor *in[3] = {trandom(n, dims), NULL, NULL};
    int64_t od[PARE_MAX_DIMS];
    float want[4096];
    pare_attr a[3];
    int na = 0, n_in = 1;
    run_result r;

    naive_pad(in[0], mode, pads, value, want, od);
    a[na++] = A_str("mode", mode);
    if (opset < 11) {
        a[na++] = A_ints("pads", pads, 2 * n);
        a[na++] = A_float("value", value);
    } else {
        in[1] = ti64(2 * n, pads);
        in[2] = scalar(PARE_F32, &value);
        n_in = 3;
    }
    assert_int_equal(run_op("Pad", opset, a, na, in, n_in, 1, &r), PARE_OK);
    assert_dims(r.out[0], n, od);
    assert_f32(r.out[0], want, pare_tensor_numel(r.out[0]), 0);
    run_free(&r);
    free_all(in, 3);
}

static void test_pad_modes_match_numpy(void **state)
{
    static const char *const modes[] = {"constant", "reflect", "edge"};
    (void)state;

    for (int m = 0; m < 3; m++) {
        check_pad(2, modes[m], 2, (int64_t[]){3, 4}, (int64_t[]){1, 2, 2, 1}, 1.5f);
        check_pad(11, modes[m], 2, (int64_t[]){3, 4}, (int64_t[]){0, 3, 1, 0}, -2.0f);
        check_pad(13, modes[m], 4, (int64_t[]){2, 3, 5, 6}, (int64_t[]){0, 0, 2, 3, 0, 0, 1, 2},
                  0.0f);
        /* negative pads crop */
        check_pad(13, modes[m], 2, (int64_t[]){4, 5}, (int64_t[]){-1, 2, 1, -2}, 7.0f);
    }
    check_pad(19, "wrap", 2, (int64_t[]){3, 4}, (int64_t[]){2, 5, 1, 3}, 0.0f);
    /* reflect wider than the axis bounces (numpy) */
    check_pad(13, "reflect", 1, (int64_t[]){3}, (int64_t[]){5, 6}, 0.0f);
    check_pad(13, "edge", 3, (int64_t[]){1, 1, 1}, (int64_t[]){1, 1, 1, 1, 1, 1}, 0.0f);
}

static void test_pad_other_forms_and_errors(void **state)
{
    int64_t v[4] = {1, 2, 3, 4};
    pare_tensor *in[4] = {tnew(PARE_I64, 2, (int64_t[]){2, 2}, v), NULL, NULL, NULL};
    run_result r;
    (void)state;

    /* opset 1: 'paddings' */
    {
        pare_attr a[] = {A_ints("paddings", (int64_t[]){0, 1, 0, 0}, 4), A_float("value", 9.0f)};
        assert_int_equal(run_op("Pad", 1, a, 2, in, 1, 1, &r), PARE_OK);
        assert_i64(r.out[0], (int64_t[]){9, 1, 2, 9, 3, 4}, 6);
        run_free(&r);
    }
    /* opset 18: axes input; int64 constant_value */
    {
        int64_t cv = -5;
        in[1] = ti64(2, (int64_t[]){1, 0});
        in[2] = scalar(PARE_I64, &cv);
        in[3] = ti64(1, (int64_t[]){-1});
        assert_int_equal(run_op("Pad", 18, NULL, 0, in, 4, 1, &r), PARE_OK);
        assert_dims(r.out[0], 2, (int64_t[]){2, 3});
        assert_i64(r.out[0], (int64_t[]){-5, 1, 2, -5, 3, 4}, 6);
        run_free(&r);
        free_all(in + 1, 3);
    }
    /* wrong count of pads */
    in[1] = ti64(3, (int64_t[]){1, 1, 1});
    run_op("Pad", 11, NULL, 0, in, 2, 1, &r);
    assert_error(&r, PARE_EINPUT, "'pads' has 3 values, expected 4");
    run_free(&r);
    pare_tensor_free(in[1]);
    /* runtime pads */
    in[1] = tshape(PARE_I64, 1, (int64_t[]){4});
    run_op("Pad", 11, NULL, 0, in, 2, 1, &r);
    assert_error(&r, PARE_EUNSUPPORTED, "input 'pads' must be a constant");
    run_free(&r);
    pare_tensor_free(in[1]);
    /* reflect needs data on the axis */
    {
        pare_tensor *e[2] = {tf32(2, (int64_t[]){0, 2}, NULL), ti64(4, (int64_t[]){1, 0, 0, 0})};
        pare_attr a[] = {A_str("mode", "reflect")};
        run_op("Pad", 11, a, 1, e, 2, 1, &r);
        assert_error(&r, PARE_EINPUT, "cannot pad empty axis 0");
        run_free(&r);
        free_all(e, 2);
    }
    {
        pare_attr a[] = {A_str("mode", "mirror")};
        in[1] = ti64(4, (int64_t[]){0, 0, 0, 0});
        run_op("Pad", 11, a, 1, in, 2, 1, &r);
        assert_error(&r, PARE_EINPUT, "unknown mode 'mirror'");
        run_free(&r);
    }
    free_all(in, 2);
}

/* ---- Range, Tile ---- */

static void test_range(void **state)
{
    float fs = 1.0f, fl = 2.0f, fd = 0.3f;
    int32_t is = 10, il = 4, id = -3;
    pare_tensor *in[3] = {scalar(PARE_F32, &fs), scalar(PARE_F32, &fl), scalar(PARE_F32, &fd)};
    run_result r;
    (void)state;

    assert_int_equal(run_op("Range", 11, NULL, 0, in, 3, 1, &r), PARE_OK);
    assert_dims(r.out[0], 1, (int64_t[]){4});
    assert_f32(r.out[0], (float[]){1.0f, 1.3f, 1.6f, 1.9f}, 4, 1e-6f);
    run_free(&r);
    free_all(in, 3);
    in[0] = scalar(PARE_I32, &is);
    in[1] = scalar(PARE_I32, &il);
    in[2] = scalar(PARE_I32, &id);
    assert_int_equal(run_op("Range", 11, NULL, 0, in, 3, 1, &r), PARE_OK);
    assert_int_equal(r.out[0]->dtype, PARE_I32);
    assert_memory_equal(r.out[0]->data, ((int32_t[]){10, 7}), 8);
    run_free(&r);
    pare_tensor_free(in[2]);
    id = 0;
    in[2] = scalar(PARE_I32, &id);
    run_op("Range", 11, NULL, 0, in, 3, 1, &r);
    assert_error(&r, PARE_EINPUT, "'delta' is 0");
    run_free(&r);
    pare_tensor_free(in[1]);
    in[1] = tshape(PARE_I32, 0, NULL);
    run_op("Range", 11, NULL, 0, in, 3, 1, &r);
    assert_error(&r, PARE_EUNSUPPORTED, "input 'limit' must be a constant");
    run_free(&r);
    free_all(in, 3);
}

static void test_tile_matches_naive(void **state)
{
    pare_tensor *in[2] = {trandom(3, (int64_t[]){2, 3, 4}), ti64(3, (int64_t[]){3, 1, 2})};
    float want[144];
    int64_t od[3] = {6, 3, 8}, idx[3], s[3];
    run_result r;
    (void)state;

    strides_of(3, in[0]->dims, s);
    for (int64_t i = 0; i < 144; i++) {
        int64_t off = 0;
        unravel(i, 3, od, idx);
        for (int k = 0; k < 3; k++)
            off += (idx[k] % in[0]->dims[k]) * s[k];
        want[i] = pare_tensor_f32(in[0])[off];
    }
    assert_int_equal(run_op("Tile", 13, NULL, 0, in, 2, 1, &r), PARE_OK);
    assert_dims(r.out[0], 3, od);
    assert_f32(r.out[0], want, 144, 0);
    run_free(&r);
    pare_tensor_free(in[1]);
    in[1] = ti64(3, (int64_t[]){1, 0, 1});
    assert_int_equal(run_op("Tile", 6, NULL, 0, in, 2, 1, &r), PARE_OK);
    assert_dims(r.out[0], 3, (int64_t[]){2, 0, 4});
    run_free(&r);
    pare_tensor_free(in[1]);
    in[1] = ti64(2, (int64_t[]){1, 2});
    run_op("Tile", 13, NULL, 0, in, 2, 1, &r);
    assert_error(&r, PARE_EINPUT, "'repeats' has 2 values for rank 3");
    run_free(&r);
    free_all(in, 2);
}

/* ---- Resize, Upsample ---- */

static const float ramp16[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};

/* Resize (opset 11+) with optional scales or sizes; attrs as given. */
static pare_status resize(int opset, pare_attr *a, int na, const int64_t *xdims, const float *x,
                          const float *scales, const int64_t *sizes, const float *roi,
                          run_result *r)
{
    pare_tensor *in[4] = {tf32(4, xdims, x), NULL, NULL, NULL};
    pare_status rc;

    in[1] = roi ? tf32(1, (int64_t[]){8}, roi) : tf32(1, (int64_t[]){0}, NULL);
    if (scales)
        in[2] = tf32(1, (int64_t[]){4}, scales);
    else
        in[2] = tf32(1, (int64_t[]){0}, NULL);
    if (sizes)
        in[3] = ti64(4, sizes);
    rc = run_op("Resize", opset, a, na, in, sizes ? 4 : 3, 1, r);
    free_all(in, 4);
    return rc;
}

static void test_resize_linear_half_pixel_and_align_corners(void **state)
{
    run_result r;
    (void)state;

    {
        pare_attr a[] = {A_str("mode", "linear")};
        assert_int_equal(resize(13, a, 1, (int64_t[]){1, 1, 2, 2}, (float[]){1, 2, 3, 4},
                                (float[]){1, 1, 2, 2}, NULL, NULL, &r), PARE_OK);
        assert_dims(r.out[0], 4, (int64_t[]){1, 1, 4, 4});
        assert_f32(r.out[0], (float[]){1, 1.25f, 1.75f, 2, 1.5f, 1.75f, 2.25f, 2.5f, 2.5f, 2.75f,
                                       3.25f, 3.5f, 3, 3.25f, 3.75f, 4}, 16, 1e-6f);
        assert_true(r.flops > 0);
        run_free(&r);
    }
    {
        /* scales 0.6: align_corners measures the resized length as 2.4 */
        pare_attr a[] = {A_str("mode", "linear"),
                         A_str("coordinate_transformation_mode", "align_corners")};
        assert_int_equal(resize(11, a, 2, (int64_t[]){1, 1, 2, 4}, ramp16,
                                (float[]){1, 1, 0.6f, 0.6f}, NULL, NULL, &r), PARE_OK);
        assert_dims(r.out[0], 4, (int64_t[]){1, 1, 1, 2});
        assert_f32(r.out[0], (float[]){1.0f, 3.142857f}, 2, 1e-5f);
        run_free(&r);
    }
    {
        /* pytorch_half_pixel with an output length of 1 samples index 0 */
        pare_attr a[] = {A_str("mode", "linear"),
                         A_str("coordinate_transformation_mode", "pytorch_half_pixel")};
        assert_int_equal(resize(13, a, 2, (int64_t[]){1, 1, 4, 4}, ramp16, NULL,
                                (int64_t[]){1, 1, 3, 1}, NULL, &r), PARE_OK);
        assert_f32(r.out[0], (float[]){1.6666666f, 7.0f, 12.333333f}, 3, 1e-5f);
        run_free(&r);
    }
}

static void test_resize_nearest_modes(void **state)
{
    run_result r;
    (void)state;

    {
        pare_attr a[] = {A_str("coordinate_transformation_mode", "asymmetric"),
                         A_str("nearest_mode", "round_prefer_ceil")};
        const float row0[8] = {1, 2, 2, 3, 3, 4, 4, 4};
        assert_int_equal(resize(13, a, 2, (int64_t[]){1, 1, 4, 4}, ramp16, NULL,
                                (int64_t[]){1, 1, 8, 8}, NULL, &r), PARE_OK);
        assert_f32_head(r.out[0], row0, 8, 0);
        assert_true(r.flops == 0.0);
        run_free(&r);
    }
    {
        pare_attr a[] = {A_str("coordinate_transformation_mode", "align_corners"),
                         A_str("nearest_mode", "floor")};
        const float row0[8] = {1, 1, 1, 2, 2, 3, 3, 4};
        assert_int_equal(resize(13, a, 2, (int64_t[]){1, 1, 4, 4}, ramp16, NULL,
                                (int64_t[]){1, 1, 8, 8}, NULL, &r), PARE_OK);
        assert_f32_head(r.out[0], row0, 8, 0);
        /* rows follow the same rule: output row 3 is input row 1 */
        assert_f32_head(r.out[0], (float[]){1, 1, 1, 2, 2, 3, 3, 4}, 8, 0);
        assert_true(pare_tensor_f32(r.out[0])[3 * 8] == 5.0f);
        run_free(&r);
    }
    {
        pare_attr a[] = {A_str("coordinate_transformation_mode", "half_pixel"),
                         A_str("nearest_mode", "ceil")};
        const float row0[8] = {1, 2, 2, 3, 3, 4, 4, 4};
        assert_int_equal(resize(13, a, 2, (int64_t[]){1, 1, 4, 4}, ramp16, NULL,
                                (int64_t[]){1, 1, 8, 8}, NULL, &r), PARE_OK);
        assert_f32_head(r.out[0], row0, 8, 0);
        run_free(&r);
    }
    {
        pare_attr a[] = {A_str("coordinate_transformation_mode", "tf_half_pixel_for_nn")};
        assert_int_equal(resize(11, a, 1, (int64_t[]){1, 1, 4, 4}, ramp16, NULL,
                                (int64_t[]){1, 1, 3, 2}, NULL, &r), PARE_OK);
        assert_f32(r.out[0], (float[]){6, 8, 10, 12, 14, 16}, 6, 0);
        run_free(&r);
    }
    /* default (half_pixel, round_prefer_floor) downsampling by 0.6 */
    assert_int_equal(resize(13, NULL, 0, (int64_t[]){1, 1, 2, 4}, ramp16,
                            (float[]){1, 1, 0.6f, 0.6f}, NULL, NULL, &r), PARE_OK);
    assert_f32(r.out[0], (float[]){1, 3}, 2, 0);
    run_free(&r);
    /* nearest moves any dtype: int64 */
    {
        int64_t v[4] = {10, 20, 30, 40};
        pare_tensor *in[3] = {tnew(PARE_I64, 2, (int64_t[]){2, 2}, v),
                              tf32(1, (int64_t[]){0}, NULL), tf32(1, (int64_t[]){2}, (float[]){1, 2})};
        assert_int_equal(run_op("Resize", 13, NULL, 0, in, 3, 1, &r), PARE_OK);
        assert_i64(r.out[0], (int64_t[]){10, 10, 20, 20, 30, 30, 40, 40}, 8);
        run_free(&r);
        free_all(in, 3);
    }
}

static void test_resize_cubic_and_crop(void **state)
{
    run_result r;
    (void)state;

    {
        pare_attr a[] = {A_str("mode", "cubic"), A_float("cubic_coeff_a", -0.5f),
                         A_int("exclude_outside", 1)};
        const float row0[8] = {0.55882353f, 0.81494206f, 1.35698247f, 1.89705884f,
                               2.39705873f, 2.93713522f, 3.47917557f, 3.73529410f};
        assert_int_equal(resize(13, a, 3, (int64_t[]){1, 1, 4, 4}, ramp16,
                                (float[]){1, 1, 2, 2}, NULL, NULL, &r), PARE_OK);
        assert_f32_head(r.out[0], row0, 8, 1e-5f);
        run_free(&r);
    }
    {
        pare_attr a[] = {A_str("mode", "cubic")};
        assert_int_equal(resize(13, a, 1, (int64_t[]){1, 1, 4, 4}, ramp16,
                                (float[]){1, 1, 0.8f, 0.8f}, NULL, NULL, &r), PARE_OK);
        assert_f32(r.out[0], (float[]){1.47119141f, 2.78125f, 4.08251953f, 6.71142578f,
                                       8.02148438f, 9.32275391f, 11.9165039f, 13.2265625f,
                                       14.5278320f}, 9, 1e-5f);
        run_free(&r);
    }
    {
        pare_attr a[] = {A_str("mode", "linear"),
                         A_str("coordinate_transformation_mode", "tf_crop_and_resize"),
                         A_float("extrapolation_value", 10.0f)};
        assert_int_equal(resize(13, a, 3, (int64_t[]){1, 1, 4, 4}, ramp16, NULL,
                                (int64_t[]){1, 1, 3, 3},
                                (float[]){0, 0, 0.4f, 0.6f, 1, 1, 1.2f, 1.7f}, &r), PARE_OK);
        assert_f32(r.out[0], (float[]){7.6f, 10, 10, 12.4f, 10, 10, 10, 10, 10}, 9, 1e-5f);
        run_free(&r);
    }
}

/* Bilinear half_pixel against a direct double-precision formula. */
static void test_resize_bilinear_matches_naive(void **state)
{
    const int64_t N = 2, C = 3, H = 5, W = 7, OH = 12, OW = 4;
    pare_tensor *in[4] = {trandom(4, (int64_t[]){N, C, H, W}), tf32(1, (int64_t[]){0}, NULL),
                          tf32(1, (int64_t[]){0}, NULL), ti64(4, (int64_t[]){N, C, OH, OW})};
    pare_attr a[] = {A_str("mode", "linear")};
    float *want = pare_alloc((size_t)(N * C * OH * OW) * sizeof(float));
    const float *x = pare_tensor_f32(in[0]);
    run_result r;
    (void)state;

    for (int64_t nc = 0; nc < N * C; nc++)
        for (int64_t i = 0; i < OH; i++)
            for (int64_t j = 0; j < OW; j++) {
                double yo = (i + 0.5) * H / OH - 0.5, xo = (j + 0.5) * W / OW - 0.5;
                int64_t y0 = (int64_t)floor(yo), x0 = (int64_t)floor(xo);
                double fy = yo - y0, fx = xo - x0, v = 0;
                for (int dy = 0; dy < 2; dy++)
                    for (int dx = 0; dx < 2; dx++) {
                        int64_t yy = y0 + dy < 0 ? 0 : y0 + dy >= H ? H - 1 : y0 + dy;
                        int64_t xx = x0 + dx < 0 ? 0 : x0 + dx >= W ? W - 1 : x0 + dx;
                        v += (dy ? fy : 1 - fy) * (dx ? fx : 1 - fx) * x[(nc * H + yy) * W + xx];
                    }
                want[(nc * OH + i) * OW + j] = (float)v;
            }
    assert_int_equal(run_op("Resize", 13, a, 1, in, 4, 1, &r), PARE_OK);
    assert_f32(r.out[0], want, N * C * OH * OW, 1e-6f);
    run_free(&r);
    pare_free(want);
    free_all(in, 4);
}

static void test_resize_old_forms_and_upsample(void **state)
{
    const float want[24] = {1, 1, 1, 2, 2, 2, 1, 1, 1, 2, 2, 2,
                            3, 3, 3, 4, 4, 4, 3, 3, 3, 4, 4, 4};
    pare_tensor *in[2] = {tf32(4, (int64_t[]){1, 1, 2, 2}, (float[]){1, 2, 3, 4}),
                          tf32(1, (int64_t[]){4}, (float[]){1, 1, 2, 3})};
    run_result r;
    (void)state;

    /* Resize-10: X, scales */
    assert_int_equal(run_op("Resize", 10, NULL, 0, in, 2, 1, &r), PARE_OK);
    assert_dims(r.out[0], 4, (int64_t[]){1, 1, 4, 6});
    assert_f32(r.out[0], want, 24, 0);
    run_free(&r);
    /* Upsample-9: scales input */
    assert_int_equal(run_op("Upsample", 9, NULL, 0, in, 2, 1, &r), PARE_OK);
    assert_f32(r.out[0], want, 24, 0);
    run_free(&r);
    /* Upsample-7: scales attribute */
    {
        pare_attr a[] = {A_floats("scales", (float[]){1, 1, 2, 3}, 4)};
        assert_int_equal(run_op("Upsample", 7, a, 1, in, 1, 1, &r), PARE_OK);
        assert_f32(r.out[0], want, 24, 0);
        run_free(&r);
    }
    /* Upsample-9 linear is asymmetric: x / scale, clamped */
    {
        pare_attr a[] = {A_str("mode", "linear")};
        pare_tensor_free(in[1]);
        in[1] = tf32(1, (int64_t[]){4}, (float[]){1, 1, 1, 2});
        assert_int_equal(run_op("Upsample", 9, a, 1, in, 2, 1, &r), PARE_OK);
        assert_f32(r.out[0], (float[]){1, 1.5f, 2, 2, 3, 3.5f, 4, 4}, 8, 1e-6f);
        run_free(&r);
    }
    free_all(in, 2);
}

static void test_resize_opset18_axes_and_policy(void **state)
{
    pare_tensor *in[4] = {trandom(4, (int64_t[]){1, 2, 4, 6}), tf32(1, (int64_t[]){0}, NULL),
                          tf32(1, (int64_t[]){0}, NULL), ti64(2, (int64_t[]){3, 3})};
    run_result r;
    (void)state;

    {
        pare_attr a[] = {A_ints("axes", (int64_t[]){2, 3}, 2),
                         A_str("keep_aspect_ratio_policy", "not_larger")};
        assert_int_equal(run_op("Resize", 18, a, 2, in, 4, 1, &r), PARE_OK);
        assert_dims(r.out[0], 4, (int64_t[]){1, 2, 2, 3}); /* scale min(3/4, 3/6) */
        run_free(&r);
    }
    {
        pare_attr a[] = {A_ints("axes", (int64_t[]){-2, -1}, 2),
                         A_str("keep_aspect_ratio_policy", "not_smaller")};
        assert_int_equal(run_op("Resize", 19, a, 2, in, 4, 1, &r), PARE_OK);
        assert_dims(r.out[0], 4, (int64_t[]){1, 2, 3, 5}); /* scale 3/4, 4.5 rounds up */
        run_free(&r);
    }
    {
        pare_attr a[] = {A_str("mode", "linear"), A_int("antialias", 1),
                         A_ints("axes", (int64_t[]){2, 3}, 2)};
        run_op("Resize", 18, a, 3, in, 4, 1, &r);
        assert_error(&r, PARE_EUNSUPPORTED, "antialias");
        run_free(&r);
    }
    free_all(in, 4);
}

static void test_resize_errors(void **state)
{
    int8_t v[4] = {1, 2, 3, 4};
    pare_tensor *in[4] = {tnew(PARE_I8, 4, (int64_t[]){1, 1, 2, 2}, v),
                          tf32(1, (int64_t[]){0}, NULL),
                          tf32(1, (int64_t[]){4}, (float[]){1, 1, 2, 2}),
                          ti64(4, (int64_t[]){1, 1, 4, 4})};
    run_result r;
    (void)state;

    {
        pare_attr a[] = {A_str("mode", "linear")};
        run_op("Resize", 13, a, 1, in, 3, 1, &r);
        assert_error(&r, PARE_EUNSUPPORTED, "dtype 'int8' not supported in mode 'linear'");
        run_free(&r);
    }
    run_op("Resize", 13, NULL, 0, in, 4, 1, &r);
    assert_error(&r, PARE_EINPUT, "not both");
    run_free(&r);
    pare_tensor_free(in[2]);
    in[2] = tshape(PARE_F32, 1, (int64_t[]){4});
    run_op("Resize", 13, NULL, 0, in, 3, 1, &r);
    assert_error(&r, PARE_EUNSUPPORTED, "input 'scales' must be a constant");
    run_free(&r);
    {
        pare_attr a[] = {A_str("coordinate_transformation_mode", "diagonal")};
        run_op("Resize", 13, a, 1, in, 4, 1, &r);
        assert_error(&r, PARE_EINPUT, "unknown coordinate_transformation_mode 'diagonal'");
        run_free(&r);
    }
    free_all(in, 4);
}

/* ---- Trilu, ArgMax/ArgMin, OneHot, NonZero ---- */

static void test_trilu(void **state)
{
    float x[12];
    int64_t k = -1;
    pare_tensor *in[2];
    run_result r;
    (void)state;

    for (int i = 0; i < 12; i++)
        x[i] = (float)(i + 1);
    in[0] = tf32(2, (int64_t[]){3, 4}, x);
    in[1] = scalar(PARE_I64, &k);
    assert_int_equal(run_op("Trilu", 14, NULL, 0, in, 1, 1, &r), PARE_OK);
    assert_f32(r.out[0], (float[]){1, 2, 3, 4, 0, 6, 7, 8, 0, 0, 11, 12}, 12, 0);
    run_free(&r);
    {
        pare_attr a[] = {A_int("upper", 0)};
        assert_int_equal(run_op("Trilu", 14, a, 1, in, 2, 1, &r), PARE_OK);
        assert_f32(r.out[0], (float[]){0, 0, 0, 0, 5, 0, 0, 0, 9, 10, 0, 0}, 12, 0);
        run_free(&r);
    }
    free_all(in, 2);
}

static void test_argmax_argmin(void **state)
{
    float x[6] = {1, 5, 5, 7, 0, 7};
    pare_tensor *in[1] = {tf32(2, (int64_t[]){2, 3}, x)};
    run_result r;
    (void)state;

    {
        pare_attr a[] = {A_int("axis", 1), A_int("keepdims", 0)};
        assert_int_equal(run_op("ArgMax", 13, a, 2, in, 1, 1, &r), PARE_OK);
        assert_dims(r.out[0], 1, (int64_t[]){2});
        assert_i64(r.out[0], (int64_t[]){1, 0}, 2);
        run_free(&r);
    }
    {
        pare_attr a[] = {A_int("axis", -1), A_int("select_last_index", 1)};
        assert_int_equal(run_op("ArgMax", 13, a, 2, in, 1, 1, &r), PARE_OK);
        assert_dims(r.out[0], 2, (int64_t[]){2, 1});
        assert_i64(r.out[0], (int64_t[]){2, 2}, 2);
        run_free(&r);
    }
    assert_int_equal(run_op("ArgMin", 11, NULL, 0, in, 1, 1, &r), PARE_OK);
    assert_dims(r.out[0], 2, (int64_t[]){1, 3});
    assert_i64(r.out[0], (int64_t[]){0, 1, 0}, 3);
    run_free(&r);
    free_all(in, 1);
}

static void test_onehot(void **state)
{
    int64_t idx[3] = {0, -1, 5}, depth = 3;
    float values[2] = {0.5f, 2.0f};
    pare_tensor *in[3] = {tnew(PARE_I64, 1, (int64_t[]){3}, idx), scalar(PARE_I64, &depth),
                          tf32(1, (int64_t[]){2}, values)};
    run_result r;
    (void)state;

    assert_int_equal(run_op("OneHot", 11, NULL, 0, in, 3, 1, &r), PARE_OK);
    assert_dims(r.out[0], 2, (int64_t[]){3, 3});
    assert_f32(r.out[0], (float[]){2, .5f, .5f, .5f, .5f, 2, .5f, .5f, .5f}, 9, 0);
    run_free(&r);
    {
        pare_attr a[] = {A_int("axis", 0)};
        assert_int_equal(run_op("OneHot", 11, a, 1, in, 3, 1, &r), PARE_OK);
        assert_f32(r.out[0], (float[]){2, .5f, .5f, .5f, .5f, .5f, .5f, 2, .5f}, 9, 0);
        run_free(&r);
    }
    free_all(in, 3);
}

static void test_nonzero(void **state)
{
    int32_t x[6] = {0, 3, 0, -1, 2, 0};
    pare_tensor *in[1] = {tnew(PARE_I32, 2, (int64_t[]){2, 3}, x)};
    run_result r;
    (void)state;

    assert_int_equal(run_op("NonZero", 13, NULL, 0, in, 1, 1, &r), PARE_OK);
    assert_dims(r.out[0], 2, (int64_t[]){2, 3});
    assert_i64(r.out[0], (int64_t[]){0, 1, 1, 1, 0, 1}, 6);
    run_free(&r);
    pare_tensor_free(in[0]);
    in[0] = tshape(PARE_I32, 2, (int64_t[]){2, 3});
    run_op("NonZero", 13, NULL, 0, in, 1, 1, &r);
    assert_error(&r, PARE_EUNSUPPORTED, "must be a constant");
    run_free(&r);
    free_all(in, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_form_has_a_row_for_opsets_7_to_21),
        cmocka_unit_test(test_flags),
        cmocka_unit_test(test_reshape_zero_copies_and_minus_one_infers),
        cmocka_unit_test(test_reshape_opset4_attribute_form),
        cmocka_unit_test(test_alias_forward_in_place_and_copy),
        cmocka_unit_test(test_flatten_axes),
        cmocka_unit_test(test_squeeze_attribute_and_input_forms),
        cmocka_unit_test(test_unsqueeze_attribute_and_input_forms),
        cmocka_unit_test(test_identity_keeps_dtype),
        cmocka_unit_test(test_dropout_inference_and_masks),
        cmocka_unit_test(test_shape_and_size_read_only_dims),
        cmocka_unit_test(test_constant_value_kinds),
        cmocka_unit_test(test_constant_of_shape),
        cmocka_unit_test(test_transpose_all_4d_permutations_match_naive),
        cmocka_unit_test(test_transpose_default_perm_and_dtypes),
        cmocka_unit_test(test_concat_axes_and_errors),
        cmocka_unit_test(test_split_every_form),
        cmocka_unit_test(test_slice_inputs_negative_steps_and_clamping),
        cmocka_unit_test(test_slice_opset1_attributes),
        cmocka_unit_test(test_gather_axes_and_negative_indices),
        cmocka_unit_test(test_gather_elements),
        cmocka_unit_test(test_cast_conversions),
        cmocka_unit_test(test_cast_bfloat16_rounding_by_opset),
        cmocka_unit_test(test_castlike),
        cmocka_unit_test(test_pad_modes_match_numpy),
        cmocka_unit_test(test_pad_other_forms_and_errors),
        cmocka_unit_test(test_range),
        cmocka_unit_test(test_tile_matches_naive),
        cmocka_unit_test(test_resize_linear_half_pixel_and_align_corners),
        cmocka_unit_test(test_resize_nearest_modes),
        cmocka_unit_test(test_resize_cubic_and_crop),
        cmocka_unit_test(test_resize_bilinear_matches_naive),
        cmocka_unit_test(test_resize_old_forms_and_upsample),
        cmocka_unit_test(test_resize_opset18_axes_and_policy),
        cmocka_unit_test(test_resize_errors),
        cmocka_unit_test(test_trilu),
        cmocka_unit_test(test_argmax_argmin),
        cmocka_unit_test(test_onehot),
        cmocka_unit_test(test_nonzero),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
