/* Backward kernels of the nn and shape families, checked against central
 * finite differences (gradcheck.h): Gemm, MatMul, pools, normalizations,
 * the byte-moving shape ops, Gather, Pad, Resize / Upsample and Dropout.
 * Plus direct checks that broadcast inputs get gradients of their own shape
 * and that Dropout's training mask is reproducible and scaled. */
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
static float g_eps;     /* finite-difference step; 0 = gradcheck's default */

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
    g_eps = 0.0f;
    return 0;
}

/* Random float32 tensor in [-1, 1). */
static pare_tensor *ft(int nd, const int64_t *dims, uint64_t seed)
{
    pare_tensor *t = keep(pare_tensor_new(PARE_F32, nd, dims));
    gc_fill(t, seed, -1.0f, 1.0f);
    return t;
}

/* float32 tensor whose values are a permutation of k * 0.05 (no two within
 * the finite-difference step: argmax never flips), centred on 0. */
static pare_tensor *ft_distinct(int nd, const int64_t *dims)
{
    pare_tensor *t = keep(pare_tensor_new(PARE_F32, nd, dims));
    int64_t n = pare_tensor_numel(t);
    for (int64_t i = 0; i < n; i++)
        pare_tensor_f32(t)[i] = (float)((i * 37 + 11) % n) * 0.05f - 0.025f * (float)n;
    assert_true(n % 37 != 0);
    return t;
}

static pare_tensor *it(int nd, const int64_t *dims, const int64_t *vals)
{
    pare_tensor *t = keep(pare_tensor_new(PARE_I64, nd, dims));
    memcpy(t->data, vals, (size_t)pare_tensor_numel(t) * sizeof(int64_t));
    return t;
}

static pare_tensor *it1(int n, const int64_t *vals)
{
    int64_t d = n;
    return it(1, &d, vals);
}

static pare_tensor *fc1(int n, const float *vals)
{
    int64_t d = n;
    pare_tensor *t = keep(pare_tensor_new(PARE_F32, 1, &d));
    memcpy(t->data, vals, (size_t)n * sizeof(float));
    return t;
}

#define D(...) ((const int64_t[]){__VA_ARGS__})
#define NDIM(...) ((int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)))
#define F(...) ft(NDIM(__VA_ARGS__), D(__VA_ARGS__), __LINE__)
#define FD(...) ft_distinct(NDIM(__VA_ARGS__), D(__VA_ARGS__))

#define AI(nm, v) { .name = (char *)(nm), .type = PARE_ATTR_INT, .i = (v) }
#define AF(nm, v) { .name = (char *)(nm), .type = PARE_ATTR_FLOAT, .f = (v) }
#define AS(nm, v) { .name = (char *)(nm), .type = PARE_ATTR_STRING, .s = (char *)(v), \
                    .s_len = sizeof(v) - 1 }
#define AIS(nm, ...) { .name = (char *)(nm), .type = PARE_ATTR_INTS, \
                       .ints = (int64_t[]){__VA_ARGS__}, .n = NDIM(__VA_ARGS__) }

/* Runs gradcheck on op with inputs ins (NULL entries omitted) and the given
 * gradient requests; returns the worst relative error. */
static double check(const char *op, int opset, const pare_attr *attrs, int n_attrs,
                    pare_tensor *const *ins, const bool *wants, int n_in, int n_out,
                    bool training)
{
    gc_case c;

    memset(&c, 0, sizeof c);
    c.op_type = op;
    c.opset = opset;
    c.attrs = attrs;
    c.n_attrs = n_attrs;
    c.in = ins;
    c.n_in = n_in;
    c.wants_grad = wants;
    c.n_out = n_out;
    c.training = training;
    c.seed = 77;
    c.eps = g_eps;
    return gradcheck(&c);
}

#define NA(a) ((int)(sizeof(a) / sizeof((a)[0])))
#define CHECK(op, opset, attrs, n_attrs, n_out, training, ins, wants)                          \
    do {                                                                                      \
        pare_tensor *const in_[] = ins;                                                       \
        const bool w_[] = wants;                                                              \
        assert_int_equal(NA(in_), NA(w_));                                                    \
        double e_ = check(op, opset, attrs, n_attrs, in_, w_, NA(in_), n_out, training);      \
        assert_true(e_ <= 2e-2);                                                              \
    } while (0)
#define L(...) {__VA_ARGS__}

/* ---- Gemm, MatMul ---- */

static void test_gemm(void **state)
{
    (void)state;
    {
        pare_attr a[] = {AF("alpha", 0.7f), AF("beta", 1.3f)};
        CHECK("Gemm", 13, a, NA(a), 1, false, L(F(3, 4), F(4, 5), F(5)), L(true, true, true));
    }
    {
        pare_attr a[] = {AI("transA", 1), AI("transB", 1), AF("alpha", -0.5f)};
        CHECK("Gemm", 13, a, NA(a), 1, false, L(F(4, 3), F(5, 4), F(3, 1)),
              L(true, true, true));
    }
    {
        pare_attr a[] = {AI("transA", 1), AF("beta", 0.25f)};
        CHECK("Gemm", 9, a, NA(a), 1, false, L(F(4, 3), F(4, 5), F(3, 5)), L(true, true, true));
    }
    {
        pare_attr a[] = {AI("transB", 1)};
        CHECK("Gemm", 11, a, NA(a), 1, false, L(F(2, 6), F(3, 6)), L(true, true));
        CHECK("Gemm", 11, a, NA(a), 1, false, L(F(2, 6), F(3, 6), F(1, 1)), L(false, true, true));
    }
}

static void test_matmul(void **state)
{
    (void)state;
    CHECK("MatMul", 13, NULL, 0, 1, false, L(F(3, 4), F(4, 2)), L(true, true));
    CHECK("MatMul", 13, NULL, 0, 1, false, L(F(2, 1, 3, 4), F(3, 4, 5)), L(true, true));
    CHECK("MatMul", 13, NULL, 0, 1, false, L(F(2, 3, 4), F(4, 5)), L(true, true));
    CHECK("MatMul", 13, NULL, 0, 1, false, L(F(4), F(2, 4, 3)), L(true, true));
    CHECK("MatMul", 13, NULL, 0, 1, false, L(F(2, 3, 4), F(4)), L(true, true));
    CHECK("MatMul", 9, NULL, 0, 1, false, L(F(4), F(4)), L(true, false));
}

/* Runs infer, forward and backward of one node with dY = 1 everywhere;
 * din[i] allocated with in[i]'s shape when want[i]. */
static void run_dy(const char *op, int opset, const pare_attr *attrs, int n_attrs,
                   pare_tensor *const *in, int n_in, const bool *want, pare_tensor **din,
                   bool training, uint64_t seed, pare_tensor **out0, bool no_dy)
{
    pare_node node;
    pare_op_ctx ctx;
    pare_error err;
    pare_tensor yv, *outs[1], *dy, *dout[1];
    const pare_op_def *def = pare_op_find("", op, opset);
    size_t scratch;

    assert_non_null(def);
    memset(&node, 0, sizeof node);
    memset(&ctx, 0, sizeof ctx);
    memset(&err, 0, sizeof err);
    node.name = (char *)"t";
    node.op_type = (char *)op;
    node.domain = (char *)"";
    node.attrs = (pare_attr *)attrs;
    node.n_attrs = n_attrs;
    node.n_inputs = n_in;
    node.n_outputs = 1;
    pare_tensor_view(&yv, PARE_UNDEFINED, -1, NULL, NULL);
    outs[0] = &yv;
    ctx.node = &node;
    ctx.opset = opset;
    ctx.n_in = n_in;
    ctx.in = in;
    ctx.n_out = 1;
    ctx.out = outs;
    ctx.n_threads = 1;
    ctx.where = "test";
    ctx.err = &err;
    ctx.training = training;
    ctx.seed = seed;
    assert_int_equal(def->infer(&ctx), PARE_OK);
    *out0 = keep(pare_tensor_new(yv.dtype, yv.ndim, yv.dims));
    outs[0] = *out0;
    dy = keep(pare_tensor_new(PARE_F32, yv.ndim, yv.dims));
    for (int64_t k = 0; k < pare_tensor_numel(dy); k++)
        pare_tensor_f32(dy)[k] = 1.0f;
    dout[0] = no_dy ? NULL : dy;
    scratch = ctx.scratch_bytes;
    if (def->backward_scratch && def->backward_scratch(&ctx) > scratch)
        scratch = def->backward_scratch(&ctx);
    ctx.scratch = scratch ? pare_alloc_aligned(scratch) : NULL;
    ctx.scratch_bytes = scratch;
    for (int i = 0; i < n_in; i++) {
        din[i] = want[i] ? keep(pare_tensor_new(PARE_F32, in[i]->ndim, in[i]->dims)) : NULL;
        for (int64_t k = 0; din[i] && k < pare_tensor_numel(din[i]); k++)
            pare_tensor_f32(din[i])[k] = NAN; /* poison: backward must overwrite */
    }
    ctx.dout = dout;
    ctx.din = din;
    assert_int_equal(def->forward(&ctx), PARE_OK);
    assert_int_equal(def->backward(&ctx), PARE_OK);
    pare_free(ctx.scratch);
}

static void run_ones(const char *op, int opset, const pare_attr *attrs, int n_attrs,
                     pare_tensor *const *in, int n_in, const bool *want, pare_tensor **din,
                     bool training, uint64_t seed, pare_tensor **out0)
{
    run_dy(op, opset, attrs, n_attrs, in, n_in, want, din, training, seed, out0, false);
}

/* No gradient flowing out (dout[0] NULL): every requested din is zeroed. */
static void test_no_dout_zeroes(void **state)
{
    pare_tensor *din[5], *y;
    pare_attr pool[] = {AIS("kernel_shape", 2, 2)};
    pare_attr perm[] = {AIS("perm", 1, 0)};
    pare_attr ln[] = {AI("axis", -1)};
    const bool all[] = {true, true, true, true, true};
    struct {
        const char *op;
        int opset;
        pare_attr *a;
        int na;
        int n_in;
    } cases[] = {
        {"Gemm", 13, NULL, 0, 3}, {"MatMul", 13, NULL, 0, 2},
        {"MaxPool", 12, pool, 1, 1}, {"AveragePool", 13, pool, 1, 1},
        {"GlobalAveragePool", 1, NULL, 0, 1}, {"BatchNormalization", 9, NULL, 0, 5},
        {"LayerNormalization", 17, ln, 1, 3}, {"InstanceNormalization", 6, NULL, 0, 3},
        {"Transpose", 13, perm, 1, 1}, {"Identity", 16, NULL, 0, 1},
    };
    (void)state;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        pare_tensor *in[5];
        bool is_mat = !strcmp(cases[c].op, "Gemm") || !strcmp(cases[c].op, "MatMul") ||
                      !strcmp(cases[c].op, "Transpose") || !strcmp(cases[c].op, "Identity");
        if (is_mat) {
            in[0] = F(3, 4);
            in[1] = F(4, 2);
            in[2] = F(2);
        } else if (!strcmp(cases[c].op, "LayerNormalization")) {
            in[0] = F(3, 4);
            in[1] = F(4);
            in[2] = F(4);
        } else {
            in[0] = F(2, 3, 4, 4);
            for (int i = 1; i < 5; i++) {
                in[i] = F(3);
                for (int k = 0; k < 3; k++)
                    pare_tensor_f32(in[i])[k] = 1.0f;
            }
        }
        run_dy(cases[c].op, cases[c].opset, cases[c].a, cases[c].na, in, cases[c].n_in, all, din,
               false, 0, &y, true);
        for (int i = 0; i < cases[c].n_in; i++)
            for (int64_t k = 0; k < pare_tensor_numel(din[i]); k++)
                if (pare_tensor_f32(din[i])[k] != 0.0f)
                    fail_msg("%s: d(input %d)[%lld] is %g without dY", cases[c].op, i,
                             (long long)k, (double)pare_tensor_f32(din[i])[k]);
        teardown(NULL);
    }
}

/* Float32 only: other dtypes are refused, not computed wrong. */
static void test_backward_dtype(void **state)
{
    const pare_op_def *def = pare_op_find("", "MatMul", 13);
    pare_tensor *a = keep(pare_tensor_new(PARE_F64, 2, D(2, 2)));
    pare_tensor *b = keep(pare_tensor_new(PARE_F64, 2, D(2, 2)));
    pare_tensor *da = keep(pare_tensor_new(PARE_F64, 2, D(2, 2)));
    pare_tensor *dy = keep(pare_tensor_new(PARE_F64, 2, D(2, 2)));
    pare_tensor *y = keep(pare_tensor_new(PARE_F64, 2, D(2, 2)));
    pare_tensor *const in[] = {a, b}, *outs[] = {y}, *dins[] = {da, NULL}, *douts[] = {dy};
    pare_node node;
    pare_op_ctx ctx;
    pare_error err;
    (void)state;
    memset(&node, 0, sizeof node);
    memset(&ctx, 0, sizeof ctx);
    memset(&err, 0, sizeof err);
    node.name = (char *)"mm";
    node.op_type = (char *)"MatMul";
    node.domain = (char *)"";
    node.n_inputs = 2;
    node.n_outputs = 1;
    ctx.node = &node;
    ctx.opset = 13;
    ctx.n_in = 2;
    ctx.in = in;
    ctx.n_out = 1;
    ctx.out = outs;
    ctx.n_threads = 1;
    ctx.where = "model.onnx: node 'mm' (MatMul)";
    ctx.err = &err;
    ctx.din = dins;
    ctx.dout = douts;
    assert_non_null(def);
    assert_int_equal(def->backward(&ctx), PARE_EUNSUPPORTED);
    assert_non_null(strstr(err.msg, "float64"));
    assert_string_equal(err.where, "model.onnx: node 'mm' (MatMul)");
}

/* Broadcast inputs: Gemm's C (1, N) gets beta * column sums, MatMul's
 * unbatched B gets the sum over A's batch. */
static void test_broadcast_grad_shape(void **state)
{
    pare_tensor *din[3], *y;
    (void)state;
    {
        pare_attr a[] = {AF("beta", 0.5f)};
        pare_tensor *const in[] = {F(3, 4), F(4, 5), F(1, 5)};
        const bool want[] = {false, false, true};
        run_ones("Gemm", 13, a, NA(a), in, 3, want, din, false, 0, &y);
        assert_int_equal(din[2]->ndim, 2);
        assert_int_equal(din[2]->dims[0], 1);
        assert_int_equal(din[2]->dims[1], 5);
        for (int j = 0; j < 5; j++)
            assert_float_equal(pare_tensor_f32(din[2])[j], 0.5f * 3.0f, 1e-5f);
    }
    {
        pare_tensor *const in[] = {F(2, 3, 4), F(4, 5)};
        const bool want[] = {false, true};
        const float *a;
        run_ones("MatMul", 13, NULL, 0, in, 2, want, din, false, 0, &y);
        a = pare_tensor_f32(in[0]);
        /* dB[k][j] = sum over batch and rows of A[b][i][k] */
        for (int k = 0; k < 4; k++) {
            float s = 0.0f;
            for (int r = 0; r < 6; r++)
                s += a[r * 4 + k];
            for (int j = 0; j < 5; j++)
                assert_float_equal(pare_tensor_f32(din[1])[k * 5 + j], s, 1e-4f);
        }
    }
}

/* ---- pools ---- */

static void test_maxpool(void **state)
{
    (void)state;
    {
        pare_attr a[] = {AIS("kernel_shape", 2, 2), AIS("strides", 2, 2)};
        CHECK("MaxPool", 12, a, NA(a), 1, false, L(FD(2, 2, 4, 6)), L(true));
        /* odd sizes: the last row and column belong to no window */
        CHECK("MaxPool", 12, a, NA(a), 1, false, L(FD(1, 3, 5, 7)), L(true));
    }
    {
        pare_attr a[] = {AIS("kernel_shape", 3, 3), AIS("pads", 1, 1, 1, 1)};
        CHECK("MaxPool", 12, a, NA(a), 1, false, L(FD(1, 2, 5, 5)), L(true));
    }
    {
        pare_attr a[] = {AIS("kernel_shape", 3, 3), AIS("strides", 2, 2), AI("ceil_mode", 1)};
        CHECK("MaxPool", 12, a, NA(a), 1, false, L(FD(1, 2, 6, 6)), L(true));
    }
    {
        pare_attr a[] = {AIS("kernel_shape", 2), AIS("dilations", 2)};
        CHECK("MaxPool", 12, a, NA(a), 1, false, L(FD(2, 3, 9)), L(true));
        /* with the Indices output (int64: no gradient flows from it) */
        CHECK("MaxPool", 12, a, NA(a), 2, false, L(FD(2, 3, 9)), L(true));
    }
}

static void test_avgpool(void **state)
{
    (void)state;
    for (int cip = 0; cip < 2; cip++) {
        pare_attr a[] = {AIS("kernel_shape", 3, 3), AIS("strides", 2, 2),
                         AIS("pads", 1, 1, 1, 1), AI("count_include_pad", cip)};
        pare_attr b[] = {AIS("kernel_shape", 3, 3), AIS("strides", 2, 2), AI("ceil_mode", 1),
                         AIS("pads", 1, 0, 1, 0), AI("count_include_pad", cip)};
        CHECK("AveragePool", 13, a, NA(a), 1, false, L(F(2, 2, 5, 6)), L(true));
        CHECK("AveragePool", 13, b, NA(b), 1, false, L(F(1, 2, 6, 7)), L(true));
    }
    {
        pare_attr a[] = {AIS("kernel_shape", 2, 2, 2)};
        CHECK("AveragePool", 13, a, NA(a), 1, false, L(F(1, 2, 3, 3, 4)), L(true));
    }
    CHECK("GlobalAveragePool", 1, NULL, 0, 1, false, L(F(2, 3, 4, 5)), L(true));
    CHECK("GlobalMaxPool", 1, NULL, 0, 1, false, L(FD(2, 3, 2, 3)), L(true));
}

/* ---- normalizations ---- */

static void test_batchnorm(void **state)
{
    (void)state;
    g_eps = 2e-3f; /* normalization is strongly curved: a smaller step */
    {
        pare_tensor *var = F(3);
        for (int c = 0; c < 3; c++)
            pare_tensor_f32(var)[c] = 0.5f + 0.3f * (float)c;
        CHECK("BatchNormalization", 9, NULL, 0, 1, false, L(F(2, 3, 4, 2), F(3), F(3), F(3), var),
              L(true, true, true, true, true));
    }
    {
        /* fine-tuning: batch statistics (opset 13 model, ctx->training) */
        pare_tensor *var = F(3);
        for (int c = 0; c < 3; c++)
            pare_tensor_f32(var)[c] = 1.0f;
        CHECK("BatchNormalization", 13, NULL, 0, 1, true, L(F(2, 3, 3, 2), F(3), F(3), F(3), var),
              L(true, true, true, false, false));
    }
    {
        pare_attr a[] = {AI("training_mode", 1), AF("epsilon", 1e-3f)};
        pare_tensor *var = F(4);
        for (int c = 0; c < 4; c++)
            pare_tensor_f32(var)[c] = 1.0f;
        CHECK("BatchNormalization", 15, a, NA(a), 3, false, L(F(5, 4), F(4), F(4), F(4), var),
              L(true, true, true, false, false));
    }
}

static void test_layernorm(void **state)
{
    (void)state;
    g_eps = 2e-3f;
    {
        CHECK("LayerNormalization", 17, NULL, 0, 1, false, L(F(3, 6), F(6), F(6)),
              L(true, true, true));
    }
    {
        /* normalized dims (3, 4); Scale broadcasts along the 3, B along the 4 */
        pare_attr a[] = {AI("axis", 1)};
        CHECK("LayerNormalization", 17, a, NA(a), 1, false, L(F(2, 3, 4), F(4), F(3, 1)),
              L(true, true, true));
        CHECK("LayerNormalization", 17, a, NA(a), 3, false, L(F(2, 3, 4), F(1, 3, 4)),
              L(true, true));
    }
    CHECK("InstanceNormalization", 6, NULL, 0, 1, false, L(F(2, 3, 4, 3), F(3), F(3)),
          L(true, true, true));
}

/* ---- shape ops ---- */

static void test_alias_ops(void **state)
{
    (void)state;
    {
        pare_attr a[] = {AI("axis", 2)};
        CHECK("Flatten", 13, a, NA(a), 1, false, L(F(2, 3, 2, 2)), L(true));
    }
    CHECK("Reshape", 14, NULL, 0, 1, false, L(F(2, 3, 4), it1(2, D(4, -1))), L(true, false));
    CHECK("Squeeze", 13, NULL, 0, 1, false, L(F(2, 1, 3), it1(1, D(1))), L(true, false));
    CHECK("Unsqueeze", 13, NULL, 0, 1, false, L(F(2, 3), it1(2, D(0, -1))), L(true, false));
    CHECK("Identity", 16, NULL, 0, 1, false, L(F(5)), L(true));
}

static void test_transpose_concat_split(void **state)
{
    (void)state;
    {
        pare_attr a[] = {AIS("perm", 2, 0, 1)};
        CHECK("Transpose", 13, a, NA(a), 1, false, L(F(2, 3, 4)), L(true));
        CHECK("Transpose", 13, NULL, 0, 1, false, L(F(5, 6)), L(true));
    }
    {
        pare_attr a[] = {AI("axis", 1)};
        CHECK("Concat", 13, a, NA(a), 1, false, L(F(2, 1, 3), F(2, 4, 3), F(2, 2, 3)),
              L(true, false, true));
    }
    {
        pare_attr a[] = {AI("axis", -1)};
        CHECK("Split", 13, a, NA(a), 2, false, L(F(3, 7), it1(2, D(2, 5))), L(true, false));
        CHECK("Split", 13, a, NA(a), 3, false, L(F(2, 6)), L(true));
    }
}

static void test_slice_gather(void **state)
{
    (void)state;
    CHECK("Slice", 13, NULL, 0, 1, false,
          L(F(4, 5, 6), it1(2, D(1, -1)), it1(2, D(4, 0)), it1(2, D(0, 2)), it1(2, D(2, -2))),
          L(true, false, false, false, false));
    CHECK("Slice", 13, NULL, 0, 1, false, L(F(7, 3), it1(1, D(5)), it1(1, D(-100)),
                                            it1(1, D(0)), it1(1, D(-3))),
          L(true, false, false, false, false));
    {
        pare_attr a[] = {AI("axis", 1)};
        CHECK("Gather", 13, a, NA(a), 1, false, L(F(2, 4, 3), it(2, D(2, 2), D(0, 3, -1, 0))),
              L(true, false));
        CHECK("Gather", 13, NULL, 0, 1, false, L(F(5, 2), it1(4, D(4, 4, 1, -5))), L(true, false));
    }
}

static void test_pad(void **state)
{
    float zero = 0.0f;
    (void)state;
    {
        /* the constant's gradient is the sum of dy over the padding */
        CHECK("Pad", 13, NULL, 0, 1, false,
              L(F(2, 3, 4), it1(6, D(0, 1, 2, 0, 2, -1)), fc1(1, &zero)), L(true, false, true));
    }
    {
        pare_attr a[] = {AS("mode", "reflect")};
        CHECK("Pad", 13, a, NA(a), 1, false, L(F(1, 3, 4), it1(6, D(0, 2, 3, 0, 1, 2))),
              L(true, false));
    }
    {
        pare_attr a[] = {AS("mode", "edge"), AIS("pads", 1, 2, 2, 1)};
        CHECK("Pad", 2, a, NA(a), 1, false, L(F(3, 4)), L(true));
    }
    {
        pare_attr a[] = {AS("mode", "wrap")};
        CHECK("Pad", 19, a, NA(a), 1, false, L(F(3, 4), it1(4, D(1, 3, 2, 0))), L(true, false));
    }
}

static void test_resize(void **state)
{
    const float up[] = {1.0f, 1.0f, 2.0f, 3.0f};
    const float down[] = {1.0f, 1.0f, 0.6f, 0.5f};
    (void)state;
    {
        pare_attr a[] = {AS("mode", "nearest")};
        CHECK("Resize", 13, a, NA(a), 1, false, L(F(1, 2, 3, 2), NULL, fc1(4, up)),
              L(true, false, false));
    }
    {
        pare_attr a[] = {AS("mode", "linear")};
        CHECK("Resize", 13, a, NA(a), 1, false, L(F(1, 2, 3, 2), NULL, fc1(4, up)),
              L(true, false, false));
        CHECK("Resize", 13, a, NA(a), 1, false, L(F(1, 2, 5, 6), NULL, fc1(4, down)),
              L(true, false, false));
    }
    {
        pare_attr a[] = {AS("mode", "linear"), AS("coordinate_transformation_mode", "align_corners")};
        CHECK("Resize", 13, a, NA(a), 1, false,
              L(F(1, 1, 3, 4), NULL, NULL, it1(4, D(1, 1, 5, 7))), L(true, false, false, false));
    }
    {
        pare_attr a[] = {AS("mode", "cubic")};
        CHECK("Resize", 13, a, NA(a), 1, false, L(F(1, 1, 4, 4), NULL, fc1(4, up)),
              L(true, false, false));
    }
    {
        pare_attr a[] = {AS("mode", "nearest")};
        CHECK("Upsample", 9, a, NA(a), 1, false, L(F(1, 2, 2, 3), fc1(4, up)), L(true, false));
    }
}

/* ---- Dropout ---- */

static void test_dropout(void **state)
{
    const float ratio = 0.3f;
    pare_tensor *din[2], *y;
    (void)state;
    /* training: the gradient reproduces the forward's mask (same seed) */
    CHECK("Dropout", 13, NULL, 0, 1, true, L(F(4, 50), fc1(1, &ratio)), L(true, false));
    {
        pare_attr a[] = {AF("ratio", 0.5f)};
        CHECK("Dropout", 10, a, NA(a), 2, true, L(F(3, 7)), L(true));
        CHECK("Dropout", 10, a, NA(a), 1, false, L(F(3, 7)), L(true));
    }
    {
        pare_tensor *const in[] = {F(2000), fc1(1, &ratio)};
        const bool want[] = {true, false};
        int64_t dropped = 0;
        run_ones("Dropout", 13, NULL, 0, in, 2, want, din, true, 99, &y);
        for (int64_t i = 0; i < 2000; i++) {
            float x = pare_tensor_f32(in[0])[i], yi = pare_tensor_f32(y)[i];
            float g = pare_tensor_f32(din[0])[i];
            if (yi == 0.0f && x != 0.0f) {
                dropped++;
                assert_float_equal(g, 0.0f, 0.0f);
            } else {
                assert_float_equal(yi, x / 0.7f, 1e-5f);
                assert_float_equal(g, 1.0f / 0.7f, 1e-5f);
            }
        }
        /* about 30 % dropped: 600 +- 5 sigma (sigma ~ 20.5) */
        assert_in_range(dropped, 500, 700);
    }
    {
        /* another seed draws another mask */
        pare_tensor *const in[] = {F(200), fc1(1, &ratio)};
        const bool want[] = {false, false};
        pare_tensor *y1, *y2;
        int differ = 0;
        run_ones("Dropout", 13, NULL, 0, in, 2, want, din, true, 1, &y1);
        run_ones("Dropout", 13, NULL, 0, in, 2, want, din, true, 2, &y2);
        for (int i = 0; i < 200; i++)
            differ += pare_tensor_f32(y1)[i] != pare_tensor_f32(y2)[i];
        assert_true(differ > 20);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_gemm, teardown),
        cmocka_unit_test_teardown(test_matmul, teardown),
        cmocka_unit_test_teardown(test_broadcast_grad_shape, teardown),
        cmocka_unit_test_teardown(test_maxpool, teardown),
        cmocka_unit_test_teardown(test_avgpool, teardown),
        cmocka_unit_test_teardown(test_batchnorm, teardown),
        cmocka_unit_test_teardown(test_layernorm, teardown),
        cmocka_unit_test_teardown(test_alias_ops, teardown),
        cmocka_unit_test_teardown(test_transpose_concat_split, teardown),
        cmocka_unit_test_teardown(test_slice_gather, teardown),
        cmocka_unit_test_teardown(test_pad, teardown),
        cmocka_unit_test_teardown(test_resize, teardown),
        cmocka_unit_test_teardown(test_dropout, teardown),
        cmocka_unit_test_teardown(test_no_dout_zeroes, teardown),
        cmocka_unit_test_teardown(test_backward_dtype, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
