/* Op kernels of the nn families: Conv, ConvTranspose, Gemm, MatMul, pools,
 * BatchNormalization, LayerNormalization, InstanceNormalization.
 *
 * Each kernel runs through its registry row (infer, then forward on
 * allocated outputs) and is compared with hand-computed values (ONNX's own
 * examples) or with a plain reference written here from the ONNX spec. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "pare/alloc.h"
#include "pare/exec.h"
#include "pare/graph.h"
#include "pare/op.h"
#include "pare/tensor.h"

#include "../../core/src/ops/nn_gemm.h" /* core-private: tested directly */

/* ---- harness ---- */

#define MAX_ATTRS 12

typedef struct test_node {
    pare_node node;
    pare_attr attrs[MAX_ATTRS];
} test_node;

static void tn_init(test_node *t, const char *op)
{
    memset(t, 0, sizeof *t);
    t->node.name = (char *)"n0";
    t->node.op_type = (char *)op;
    t->node.domain = (char *)"";
    t->node.attrs = t->attrs;
}

static pare_attr *tn_next(test_node *t, const char *name, int type)
{
    pare_attr *a;
    assert_true(t->node.n_attrs < MAX_ATTRS);
    a = &t->attrs[t->node.n_attrs++];
    memset(a, 0, sizeof *a);
    a->name = (char *)name;
    a->type = type;
    return a;
}

static void tn_int(test_node *t, const char *name, int64_t v)
{
    tn_next(t, name, PARE_ATTR_INT)->i = v;
}

static void tn_float(test_node *t, const char *name, float v)
{
    tn_next(t, name, PARE_ATTR_FLOAT)->f = v;
}

static void tn_str(test_node *t, const char *name, const char *s)
{
    pare_attr *a = tn_next(t, name, PARE_ATTR_STRING);
    a->s = (char *)s;
    a->s_len = strlen(s);
}

/* ints must outlive the node (static or caller storage) */
static void tn_ints(test_node *t, const char *name, int n, const int64_t *v)
{
    pare_attr *a = tn_next(t, name, PARE_ATTR_INTS);
    a->ints = (int64_t *)v;
    a->n = n;
}

#define MAX_OUT 5

typedef struct run_result {
    pare_tensor *out[MAX_OUT];
    pare_error err;
    size_t scratch_bytes;
    double flops;
} run_result;

static void run_free(run_result *r)
{
    for (int i = 0; i < MAX_OUT; i++)
        pare_tensor_free(r->out[i]);
    memset(r, 0, sizeof *r);
}

/* Runs infer then forward of the row for (op, opset). Output i is present
 * when bit i of out_mask is set. The executor may run a step with fewer
 * threads than it planned with, so infer and forward thread counts differ. */
static pare_status run_op2(const test_node *t, int opset, pare_tensor **in, int n_in, int n_out,
                           unsigned out_mask, int infer_threads, int fwd_threads, run_result *r)
{
    const pare_op_def *def = pare_op_find("", t->node.op_type, opset);
    pare_tensor shapes[MAX_OUT];
    pare_tensor *outs[MAX_OUT] = {NULL};
    pare_op_ctx ctx;
    pare_status rc;

    memset(r, 0, sizeof *r);
    assert_non_null(def);
    assert_true(n_out <= MAX_OUT);
    for (int i = 0; i < n_out; i++) {
        pare_tensor_view(&shapes[i], PARE_UNDEFINED, 0, NULL, NULL);
        shapes[i].ndim = -1;
        outs[i] = out_mask & (1u << i) ? &shapes[i] : NULL;
    }
    memset(&ctx, 0, sizeof ctx);
    ctx.node = &t->node;
    ctx.opset = opset;
    ctx.n_in = n_in;
    ctx.in = in;
    ctx.n_out = n_out;
    ctx.out = outs;
    ctx.n_threads = infer_threads;
    ctx.where = "test.onnx: node 'n0'";
    ctx.err = &r->err;
    rc = def->infer(&ctx);
    if (rc != PARE_OK)
        return rc;
    for (int i = 0; i < n_out; i++) {
        if (!outs[i])
            continue;
        assert_true(shapes[i].ndim >= 0);
        assert_true(shapes[i].dtype != PARE_UNDEFINED);
        r->out[i] = pare_tensor_new(shapes[i].dtype, shapes[i].ndim, shapes[i].dims);
        assert_non_null(r->out[i]);
        /* poison: forward must write every element */
        if (shapes[i].dtype == PARE_F32)
            for (int64_t k = 0; k < pare_tensor_numel(r->out[i]); k++)
                pare_tensor_f32(r->out[i])[k] = NAN;
        outs[i] = r->out[i];
    }
    r->scratch_bytes = ctx.scratch_bytes;
    r->flops = def->flops ? def->flops(&ctx) : 0.0;
    ctx.n_threads = fwd_threads;
    ctx.scratch = ctx.scratch_bytes ? pare_alloc_aligned(ctx.scratch_bytes) : NULL;
    if (ctx.scratch_bytes)
        assert_non_null(ctx.scratch);
    rc = def->forward(&ctx);
    pare_free(ctx.scratch);
    return rc;
}

static pare_status run_op(const test_node *t, int opset, pare_tensor **in, int n_in, int n_out,
                          unsigned out_mask, int n_threads, run_result *r)
{
    return run_op2(t, opset, in, n_in, n_out, out_mask, n_threads, n_threads, r);
}

static pare_tensor *tnew(pare_dtype dt, int ndim, const int64_t *dims)
{
    pare_tensor *t = pare_tensor_new(dt, ndim, dims);
    assert_non_null(t);
    return t;
}

static uint32_t rng_state = 12345u;

static float frand(void)
{
    rng_state = rng_state * 1664525u + 1013904223u;
    return (float)((rng_state >> 8) & 0xffff) / 32768.0f - 1.0f;
}

static pare_tensor *trand(int ndim, const int64_t *dims)
{
    pare_tensor *t = tnew(PARE_F32, ndim, dims);
    for (int64_t i = 0; i < pare_tensor_numel(t); i++)
        pare_tensor_f32(t)[i] = frand();
    return t;
}

static void assert_close_f32(const float *got, const float *want, int64_t n, double tol)
{
    for (int64_t i = 0; i < n; i++) {
        double err = fabs((double)got[i] - (double)want[i]);
        if (!(err <= tol + tol * fabs((double)want[i]))) {
            print_error("element %lld: got %.7g, want %.7g\n", (long long)i, (double)got[i],
                        (double)want[i]);
            fail();
        }
    }
}

static void assert_dims(const pare_tensor *t, int ndim, const int64_t *dims)
{
    assert_int_equal(t->ndim, ndim);
    for (int i = 0; i < ndim; i++)
        assert_int_equal(t->dims[i], dims[i]);
}

/* ---- reference Conv (direct loops from the ONNX definition) ---- */

typedef struct conv_case {
    int nsp;
    int64_t N, C, M, G;
    int64_t in[3], k[3], s[3], d[3];
    int64_t pads[6];          /* begin..., end... (nsp each) */
    const char *auto_pad;     /* NULL = NOTSET */
    int bias;
} conv_case;

/* Output size and begin pads per the spec (independent of the kernel code). */
static void ref_conv_geometry(const conv_case *cc, int64_t *out, int64_t *pb)
{
    for (int i = 0; i < cc->nsp; i++) {
        int64_t dk = (cc->k[i] - 1) * cc->d[i] + 1;
        const char *ap = cc->auto_pad ? cc->auto_pad : "NOTSET";
        if (!strcmp(ap, "SAME_UPPER") || !strcmp(ap, "SAME_LOWER")) {
            int64_t total;
            out[i] = (cc->in[i] + cc->s[i] - 1) / cc->s[i];
            total = (out[i] - 1) * cc->s[i] + dk - cc->in[i];
            if (total < 0)
                total = 0;
            pb[i] = !strcmp(ap, "SAME_UPPER") ? total / 2 : total - total / 2;
        } else if (!strcmp(ap, "VALID")) {
            out[i] = (cc->in[i] - dk) / cc->s[i] + 1;
            pb[i] = 0;
        } else {
            out[i] = (cc->in[i] + cc->pads[i] + cc->pads[cc->nsp + i] - dk) / cc->s[i] + 1;
            pb[i] = cc->pads[i];
        }
    }
}

static float *ref_conv(const conv_case *cc, const float *x, const float *w, const float *b,
                       int64_t *out)
{
    int64_t pb[3], in[3] = {1, 1, 1}, o[3] = {1, 1, 1}, k[3] = {1, 1, 1}, s[3] = {1, 1, 1},
            d[3] = {1, 1, 1}, p[3] = {0, 0, 0};
    int off = 3 - cc->nsp;
    int64_t Cg = cc->C / cc->G, Mg = cc->M / cc->G, opx, ipx, kpx;
    float *y;

    ref_conv_geometry(cc, out, pb);
    for (int i = 0; i < cc->nsp; i++) {
        in[off + i] = cc->in[i];
        o[off + i] = out[i];
        k[off + i] = cc->k[i];
        s[off + i] = cc->s[i];
        d[off + i] = cc->d[i];
        p[off + i] = pb[i];
    }
    opx = o[0] * o[1] * o[2];
    ipx = in[0] * in[1] * in[2];
    kpx = k[0] * k[1] * k[2];
    y = pare_calloc((size_t)(cc->N * cc->M * opx), sizeof(float));
    assert_non_null(y);
    for (int64_t n = 0; n < cc->N; n++)
    for (int64_t m = 0; m < cc->M; m++)
    for (int64_t a = 0; a < o[0]; a++)
    for (int64_t bb = 0; bb < o[1]; bb++)
    for (int64_t c2 = 0; c2 < o[2]; c2++) {
        double acc = b ? b[m] : 0.0;
        int64_t grp = m / Mg;
        for (int64_t c = 0; c < Cg; c++)
        for (int64_t i0 = 0; i0 < k[0]; i0++)
        for (int64_t i1 = 0; i1 < k[1]; i1++)
        for (int64_t i2 = 0; i2 < k[2]; i2++) {
            int64_t z0 = a * s[0] - p[0] + i0 * d[0];
            int64_t z1 = bb * s[1] - p[1] + i1 * d[1];
            int64_t z2 = c2 * s[2] - p[2] + i2 * d[2];
            if (z0 < 0 || z0 >= in[0] || z1 < 0 || z1 >= in[1] || z2 < 0 || z2 >= in[2])
                continue;
            acc += (double)x[((n * cc->C + grp * Cg + c) * ipx) + (z0 * in[1] + z1) * in[2] + z2] *
                   (double)w[(m * Cg + c) * kpx + (i0 * k[1] + i1) * k[2] + i2];
        }
        y[((n * cc->M + m) * o[0] + a) * o[1] * o[2] + bb * o[2] + c2] = (float)acc;
    }
    return y;
}

static void check_conv_case2(const conv_case *cc, int infer_threads, int fwd_threads)
{
    test_node t;
    int64_t xd[5], wd[5], bd[1], out[3], yd[5];
    pare_tensor *in[3];
    run_result r;
    float *want;
    const char *ap = cc->auto_pad;
    static int64_t kern[3], strides[3], dil[3], pads[6];

    xd[0] = cc->N;
    xd[1] = cc->C;
    wd[0] = cc->M;
    wd[1] = cc->C / cc->G;
    for (int i = 0; i < cc->nsp; i++) {
        xd[2 + i] = cc->in[i];
        wd[2 + i] = cc->k[i];
        kern[i] = cc->k[i];
        strides[i] = cc->s[i];
        dil[i] = cc->d[i];
        pads[i] = cc->pads[i];
        pads[cc->nsp + i] = cc->pads[cc->nsp + i];
    }
    bd[0] = cc->M;
    in[0] = trand(2 + cc->nsp, xd);
    in[1] = trand(2 + cc->nsp, wd);
    in[2] = cc->bias ? trand(1, bd) : NULL;
    tn_init(&t, "Conv");
    tn_ints(&t, "kernel_shape", cc->nsp, kern);
    tn_ints(&t, "strides", cc->nsp, strides);
    tn_ints(&t, "dilations", cc->nsp, dil);
    tn_int(&t, "group", cc->G);
    if (ap)
        tn_str(&t, "auto_pad", ap);
    else
        tn_ints(&t, "pads", 2 * cc->nsp, pads);
    assert_int_equal(run_op2(&t, 13, in, cc->bias ? 3 : 2, 1, 1, infer_threads, fwd_threads, &r),
                     PARE_OK);
    want = ref_conv(cc, pare_tensor_f32(in[0]), pare_tensor_f32(in[1]),
                    in[2] ? pare_tensor_f32(in[2]) : NULL, out);
    yd[0] = cc->N;
    yd[1] = cc->M;
    for (int i = 0; i < cc->nsp; i++)
        yd[2 + i] = out[i];
    assert_dims(r.out[0], 2 + cc->nsp, yd);
    assert_close_f32(pare_tensor_f32(r.out[0]), want, pare_tensor_numel(r.out[0]), 1e-4);
    pare_free(want);
    run_free(&r);
    for (int i = 0; i < 3; i++)
        pare_tensor_free(in[i]);
}

static void check_conv_case(const conv_case *cc, int n_threads)
{
    check_conv_case2(cc, n_threads, n_threads);
}

/* ---- Conv tests ---- */

/* ONNX's basic_conv example: 5x5 ramp, 3x3 ones, with and without padding. */
static void test_conv_onnx_example(void **state)
{
    static const float pad1[25] = {12, 21, 27, 33, 24, 33, 54, 63, 72, 51, 63, 99, 108, 117, 81,
                                   93, 144, 153, 162, 111, 72, 111, 117, 123, 84};
    static const float pad0[9] = {54, 63, 72, 99, 108, 117, 144, 153, 162};
    static const int64_t pads1[4] = {1, 1, 1, 1}, ks[2] = {3, 3};
    int64_t xd[4] = {1, 1, 5, 5}, wd[4] = {1, 1, 3, 3};
    pare_tensor *in[2] = {tnew(PARE_F32, 4, xd), tnew(PARE_F32, 4, wd)};
    test_node t;
    run_result r;
    (void)state;

    for (int i = 0; i < 25; i++)
        pare_tensor_f32(in[0])[i] = (float)i;
    for (int i = 0; i < 9; i++)
        pare_tensor_f32(in[1])[i] = 1.0f;
    tn_init(&t, "Conv");
    tn_ints(&t, "kernel_shape", 2, ks);
    tn_ints(&t, "pads", 4, pads1);
    assert_int_equal(run_op(&t, 11, in, 2, 1, 1, 1, &r), PARE_OK);
    assert_close_f32(pare_tensor_f32(r.out[0]), pad1, 25, 0.0);
    /* flops: 25 outputs x 9 taps x 2 */
    assert_true(r.flops == 450.0);
    run_free(&r);

    tn_init(&t, "Conv");
    assert_int_equal(run_op(&t, 1, in, 2, 1, 1, 1, &r), PARE_OK);
    assert_int_equal(r.out[0]->dims[2], 3);
    assert_close_f32(pare_tensor_f32(r.out[0]), pad0, 9, 0.0);
    run_free(&r);
    pare_tensor_free(in[0]);
    pare_tensor_free(in[1]);
}

static void test_conv_2d_variants(void **state)
{
    static const conv_case cases[] = {
        /* lenet-like 5x5 pad 2, several images (im2col chunking, bias in scatter) */
        {2, 5, 1, 6, 1, {12, 12}, {5, 5}, {1, 1}, {1, 1}, {2, 2, 2, 2}, NULL, 1},
        /* one image, no bias: direct GEMM into y */
        {2, 1, 3, 4, 1, {9, 7}, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, NULL, 0},
        /* asymmetric pads, strides, dilations, groups */
        {2, 3, 4, 6, 2, {9, 11}, {3, 2}, {2, 1}, {1, 2}, {1, 0, 2, 3}, NULL, 1},
        /* pointwise, one image per GEMM and batched */
        {2, 2, 8, 5, 1, {40, 40}, {1, 1}, {1, 1}, {1, 1}, {0, 0, 0, 0}, NULL, 1},
        {2, 7, 8, 5, 1, {4, 4}, {1, 1}, {1, 1}, {1, 1}, {0, 0, 0, 0}, NULL, 1},
        /* 1x1 stride 2 shortcut */
        {2, 3, 4, 8, 1, {7, 7}, {1, 1}, {2, 2}, {1, 1}, {0, 0, 0, 0}, NULL, 1},
        /* depthwise, multiplier 2, strided and padded */
        {2, 2, 6, 6, 6, {8, 9}, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, NULL, 1},
        {2, 2, 3, 6, 3, {8, 9}, {3, 3}, {2, 2}, {1, 1}, {0, 1, 1, 0}, NULL, 0},
        {2, 1, 4, 4, 4, {10, 10}, {3, 3}, {2, 3}, {2, 2}, {2, 2, 2, 2}, NULL, 1},
        /* auto_pad */
        {2, 2, 3, 4, 1, {7, 8}, {3, 4}, {2, 2}, {1, 1}, {0}, "SAME_UPPER", 1},
        {2, 2, 3, 4, 1, {7, 8}, {3, 4}, {2, 2}, {1, 1}, {0}, "SAME_LOWER", 1},
        {2, 2, 3, 4, 1, {7, 8}, {3, 4}, {2, 3}, {1, 1}, {0}, "VALID", 0},
        {2, 2, 4, 4, 4, {7, 8}, {3, 3}, {2, 2}, {1, 1}, {0}, "SAME_LOWER", 1},
        /* one GEMM per tap (16+ channels per group): dilated, strided, grouped */
        {2, 2, 16, 8, 1, {9, 10}, {3, 2}, {2, 1}, {2, 3}, {1, 0, 2, 1}, NULL, 1},
        {2, 2, 32, 8, 2, {7, 7}, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, NULL, 0},
        {2, 1, 16, 4, 1, {9, 9}, {1, 1}, {2, 2}, {1, 1}, {0, 0, 0, 0}, NULL, 1},
        /* output channel blocks and one output row per GEMM */
        {2, 1, 64, 160, 1, {5, 30}, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, NULL, 1},
        /* too deep for GEMM tiles: multi-image chunks, and x read directly */
        {2, 3, 1100, 2, 1, {8, 7}, {4, 4}, {1, 1}, {1, 1}, {0, 0, 1, 0}, NULL, 1},
        {2, 1, 16500, 2, 1, {4, 4}, {1, 1}, {1, 1}, {1, 1}, {0, 0, 0, 0}, NULL, 1},
    };
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_conv_case(&cases[i], 1);
}

static void test_conv_1d_3d(void **state)
{
    static const conv_case cases[] = {
        {1, 2, 3, 4, 1, {11}, {3}, {2}, {1}, {1, 2}, NULL, 1},
        {1, 2, 4, 4, 2, {11}, {2}, {1}, {3}, {0, 0}, NULL, 0},
        {1, 3, 4, 4, 4, {9}, {3}, {1}, {1}, {0}, "SAME_UPPER", 1},
        {3, 2, 2, 3, 1, {4, 5, 6}, {2, 3, 2}, {1, 2, 1}, {1, 1, 2}, {0, 1, 1, 1, 0, 0}, NULL, 1},
        {3, 1, 4, 4, 2, {5, 4, 4}, {3, 1, 2}, {2, 1, 1}, {1, 1, 1}, {0}, "SAME_LOWER", 0},
        {3, 1, 2, 2, 2, {5, 4, 4}, {3, 3, 3}, {1, 1, 1}, {1, 1, 1}, {1, 1, 1, 1, 1, 1}, NULL, 1},
    };
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_conv_case(&cases[i], 1);
}

/* Big enough for the OpenMP paths (im2col, scatter, depthwise). */
static void test_conv_threads(void **state)
{
    static const conv_case cases[] = {
        {2, 9, 16, 16, 1, {28, 28}, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, NULL, 1},
        {2, 4, 16, 16, 16, {28, 28}, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, NULL, 1},
        {2, 3, 32, 64, 1, {14, 14}, {3, 3}, {2, 2}, {1, 1}, {1, 1, 1, 1}, NULL, 0},
    };
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_conv_case(&cases[i], 2);
}

/* Planned for two threads, run on one, and the other way round; batch 1
 * (row tiles) and batch 5. */
static void test_conv_thread_count_changes(void **state)
{
    static const conv_case cases[] = {
        {2, 1, 16, 16, 1, {28, 28}, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, NULL, 1},
        {2, 5, 3, 8, 1, {12, 12}, {3, 3}, {2, 2}, {1, 1}, {1, 1, 1, 1}, NULL, 1},
        {2, 1, 8, 8, 8, {20, 20}, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, NULL, 1},
        {2, 1, 8, 16, 1, {40, 40}, {1, 1}, {1, 1}, {1, 1}, {0, 0, 0, 0}, NULL, 1},
        {3, 1, 4, 4, 1, {6, 6, 6}, {3, 3, 3}, {1, 1, 1}, {1, 1, 1}, {1, 1, 1, 1, 1, 1}, NULL, 1},
    };
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        check_conv_case2(&cases[i], 2, 1);
        check_conv_case2(&cases[i], 1, 2);
        check_conv_case2(&cases[i], 4, 2);
    }
}

static void test_conv_scratch_and_flops(void **state)
{
    static const int64_t pads[4] = {1, 1, 1, 1};
    int64_t xd[4] = {4, 16, 14, 14}, wd[4] = {32, 16, 3, 3}, dwd[4] = {16, 1, 3, 3};
    pare_tensor *in[2] = {trand(4, xd), trand(4, wd)};
    test_node t;
    run_result r;
    (void)state;

    tn_init(&t, "Conv");
    tn_ints(&t, "pads", 4, pads);
    assert_int_equal(run_op(&t, 13, in, 2, 1, 1, 1, &r), PARE_OK);
    /* im2col needs at least one tile's columns: 16*9 rows x 16 pixels */
    assert_true(r.scratch_bytes >= (size_t)(16 * 9 * 16) * sizeof(float));
    assert_true(r.flops == 2.0 * 4 * 32 * 196 * (16 * 9));
    run_free(&r);
    pare_tensor_free(in[1]);
    /* depthwise needs the padded planes of one channel per thread only */
    in[1] = trand(4, dwd);
    tn_int(&t, "group", 16);
    assert_int_equal(run_op(&t, 13, in, 2, 1, 1, 1, &r), PARE_OK);
    assert_true(r.scratch_bytes > 0);
    assert_true(r.scratch_bytes < (size_t)(16 * 16 * 16) * sizeof(float));
    run_free(&r);
    pare_tensor_free(in[0]);
    pare_tensor_free(in[1]);
}

static void test_conv_errors(void **state)
{
    int64_t xd[4] = {1, 3, 5, 5}, wd[4] = {4, 2, 3, 3}, wd_ok[4] = {4, 3, 3, 3}, bd[1] = {5};
    static const int64_t ks_bad[2] = {2, 2}, str_bad[2] = {1, 0};
    pare_tensor *x = trand(4, xd), *w = trand(4, wd), *w_ok = trand(4, wd_ok), *b = trand(1, bd);
    pare_tensor *xd64 = tnew(PARE_F64, 4, xd);
    pare_tensor *in[3];
    test_node t;
    run_result r;
    (void)state;

    tn_init(&t, "Conv");
    in[0] = x;
    in[1] = w;
    assert_int_equal(run_op(&t, 13, in, 2, 1, 1, 1, &r), PARE_EINPUT);
    assert_string_equal(r.err.where, "test.onnx: node 'n0'");
    assert_string_equal(r.err.msg, "input has 3 channels but the weight expects 2 x group 1");
    run_free(&r);

    in[1] = w_ok;
    in[2] = b;
    assert_int_equal(run_op(&t, 13, in, 3, 1, 1, 1, &r), PARE_EINPUT);
    assert_string_equal(r.err.msg, "bias must have shape [4]");
    run_free(&r);

    tn_ints(&t, "kernel_shape", 2, ks_bad);
    assert_int_equal(run_op(&t, 13, in, 2, 1, 1, 1, &r), PARE_EINPUT);
    assert_string_equal(r.err.msg, "attribute 'kernel_shape' is 2 in spatial dim 0 but the weight "
                                   "has 3");
    run_free(&r);

    tn_init(&t, "Conv");
    tn_ints(&t, "strides", 2, str_bad);
    assert_int_equal(run_op(&t, 13, in, 2, 1, 1, 1, &r), PARE_EINPUT);
    assert_string_equal(r.err.msg, "attribute 'strides' has value 0, must be >= 1");
    run_free(&r);

    tn_init(&t, "Conv");
    tn_str(&t, "auto_pad", "SAME");
    assert_int_equal(run_op(&t, 13, in, 2, 1, 1, 1, &r), PARE_EINPUT);
    assert_string_equal(r.err.msg, "attribute 'auto_pad' is 'SAME', expected NOTSET, SAME_UPPER, "
                                   "SAME_LOWER or VALID");
    run_free(&r);

    tn_init(&t, "Conv");
    in[0] = xd64;
    assert_int_equal(run_op(&t, 13, in, 2, 1, 1, 1, &r), PARE_EUNSUPPORTED);
    assert_string_equal(r.err.msg, "Conv: dtype 'float64' not supported");
    run_free(&r);

    pare_tensor_free(x);
    pare_tensor_free(w);
    pare_tensor_free(w_ok);
    pare_tensor_free(b);
    pare_tensor_free(xd64);
}

/* ---- ConvTranspose ---- */

typedef struct convt_case {
    int nsp;
    int64_t N, C, Mg, G;
    int64_t in[3], k[3], s[3], d[3];
    int64_t pads[6];
    int64_t opad[3];
    int64_t oshape[3];        /* 0: not given */
    const char *auto_pad;
    int bias;
} convt_case;

/* Scatter form: y[n, m, i*s - pb + k*d] += x[n, c, i] * w[c, m, k]. */
static float *ref_convt(const convt_case *cc, const float *x, const float *w, const float *b,
                        int64_t *out)
{
    int64_t pb[3], in[3] = {1, 1, 1}, o[3] = {1, 1, 1}, k[3] = {1, 1, 1}, s[3] = {1, 1, 1},
            d[3] = {1, 1, 1}, p[3] = {0, 0, 0};
    int off = 3 - cc->nsp;
    int64_t Cg = cc->C / cc->G, M = cc->Mg * cc->G, opx, ipx, kpx;
    const char *ap = cc->auto_pad ? cc->auto_pad : "NOTSET";
    float *y;

    for (int i = 0; i < cc->nsp; i++) {
        int64_t full = cc->s[i] * (cc->in[i] - 1) + cc->opad[i] + (cc->k[i] - 1) * cc->d[i] + 1;
        if (cc->oshape[0] || (strcmp(ap, "NOTSET") && strcmp(ap, "VALID"))) {
            int64_t total;
            out[i] = cc->oshape[0] ? cc->oshape[i] : cc->in[i] * cc->s[i];
            total = full - out[i];
            if (total < 0)
                total = 0;
            pb[i] = !strcmp(ap, "SAME_UPPER") ? total / 2 : total - total / 2;
        } else if (!strcmp(ap, "VALID")) {
            out[i] = full;
            pb[i] = 0;
        } else {
            out[i] = full - cc->pads[i] - cc->pads[cc->nsp + i];
            pb[i] = cc->pads[i];
        }
        in[off + i] = cc->in[i];
        o[off + i] = out[i];
        k[off + i] = cc->k[i];
        s[off + i] = cc->s[i];
        d[off + i] = cc->d[i];
        p[off + i] = pb[i];
    }
    opx = o[0] * o[1] * o[2];
    ipx = in[0] * in[1] * in[2];
    kpx = k[0] * k[1] * k[2];
    y = pare_calloc((size_t)(cc->N * M * opx), sizeof(float));
    assert_non_null(y);
    for (int64_t n = 0; n < cc->N; n++)
        for (int64_t m = 0; m < M; m++)
            for (int64_t i = 0; i < opx; i++)
                y[(n * M + m) * opx + i] = b ? b[m] : 0.0f;
    for (int64_t n = 0; n < cc->N; n++)
    for (int64_t c = 0; c < cc->C; c++)
    for (int64_t mg = 0; mg < cc->Mg; mg++)
    for (int64_t a = 0; a < in[0]; a++)
    for (int64_t bb = 0; bb < in[1]; bb++)
    for (int64_t e = 0; e < in[2]; e++)
    for (int64_t i0 = 0; i0 < k[0]; i0++)
    for (int64_t i1 = 0; i1 < k[1]; i1++)
    for (int64_t i2 = 0; i2 < k[2]; i2++) {
        int64_t z0 = a * s[0] - p[0] + i0 * d[0];
        int64_t z1 = bb * s[1] - p[1] + i1 * d[1];
        int64_t z2 = e * s[2] - p[2] + i2 * d[2];
        int64_t m = (c / Cg) * cc->Mg + mg;
        if (z0 < 0 || z0 >= o[0] || z1 < 0 || z1 >= o[1] || z2 < 0 || z2 >= o[2])
            continue;
        y[(n * M + m) * opx + (z0 * o[1] + z1) * o[2] + z2] +=
            x[(n * cc->C + c) * ipx + (a * in[1] + bb) * in[2] + e] *
            w[(c * cc->Mg + mg) * kpx + (i0 * k[1] + i1) * k[2] + i2];
    }
    return y;
}

static void check_convt_case(const convt_case *cc)
{
    test_node t;
    int64_t xd[5], wd[5], bd[1], out[3], yd[5];
    pare_tensor *in[3];
    run_result r;
    float *want;
    static int64_t strides[3], dil[3], pads[6], opad[3], oshape[3];

    xd[0] = cc->N;
    xd[1] = cc->C;
    wd[0] = cc->C;
    wd[1] = cc->Mg;
    for (int i = 0; i < cc->nsp; i++) {
        xd[2 + i] = cc->in[i];
        wd[2 + i] = cc->k[i];
        strides[i] = cc->s[i];
        dil[i] = cc->d[i];
        pads[i] = cc->pads[i];
        pads[cc->nsp + i] = cc->pads[cc->nsp + i];
        opad[i] = cc->opad[i];
        oshape[i] = cc->oshape[i];
    }
    bd[0] = cc->Mg * cc->G;
    in[0] = trand(2 + cc->nsp, xd);
    in[1] = trand(2 + cc->nsp, wd);
    in[2] = cc->bias ? trand(1, bd) : NULL;
    tn_init(&t, "ConvTranspose");
    tn_ints(&t, "strides", cc->nsp, strides);
    tn_ints(&t, "dilations", cc->nsp, dil);
    tn_ints(&t, "output_padding", cc->nsp, opad);
    tn_int(&t, "group", cc->G);
    if (cc->oshape[0])
        tn_ints(&t, "output_shape", cc->nsp, oshape);
    if (cc->auto_pad)
        tn_str(&t, "auto_pad", cc->auto_pad);
    else if (!cc->oshape[0])
        tn_ints(&t, "pads", 2 * cc->nsp, pads);
    assert_int_equal(run_op(&t, 11, in, cc->bias ? 3 : 2, 1, 1, 1, &r), PARE_OK);
    want = ref_convt(cc, pare_tensor_f32(in[0]), pare_tensor_f32(in[1]),
                     in[2] ? pare_tensor_f32(in[2]) : NULL, out);
    yd[0] = cc->N;
    yd[1] = cc->Mg * cc->G;
    for (int i = 0; i < cc->nsp; i++)
        yd[2 + i] = out[i];
    assert_dims(r.out[0], 2 + cc->nsp, yd);
    assert_close_f32(pare_tensor_f32(r.out[0]), want, pare_tensor_numel(r.out[0]), 1e-4);
    pare_free(want);
    run_free(&r);
    for (int i = 0; i < 3; i++)
        pare_tensor_free(in[i]);
}

/* ONNX's ConvTranspose example: 3x3 ramp, two 3x3 ones filters. */
static void test_convt_onnx_example(void **state)
{
    static const float want[25] = {0, 1, 3, 3, 2, 3, 8, 15, 12, 7, 9, 21, 36,
                                   27, 15, 9, 20, 33, 24, 13, 6, 13, 21, 15, 8};
    int64_t xd[4] = {1, 1, 3, 3}, wd[4] = {1, 2, 3, 3}, yd[4] = {1, 2, 5, 5};
    pare_tensor *in[2] = {tnew(PARE_F32, 4, xd), tnew(PARE_F32, 4, wd)};
    test_node t;
    run_result r;
    (void)state;

    for (int i = 0; i < 9; i++)
        pare_tensor_f32(in[0])[i] = (float)i;
    for (int i = 0; i < 18; i++)
        pare_tensor_f32(in[1])[i] = 1.0f;
    tn_init(&t, "ConvTranspose");
    assert_int_equal(run_op(&t, 1, in, 2, 1, 1, 1, &r), PARE_OK);
    assert_dims(r.out[0], 4, yd);
    assert_close_f32(pare_tensor_f32(r.out[0]), want, 25, 0.0);
    assert_close_f32(pare_tensor_f32(r.out[0]) + 25, want, 25, 0.0);
    run_free(&r);
    pare_tensor_free(in[0]);
    pare_tensor_free(in[1]);
}

static void test_convt_variants(void **state)
{
    static const convt_case cases[] = {
        {2, 2, 3, 2, 1, {4, 5}, {3, 3}, {2, 2}, {1, 1}, {1, 0, 1, 2}, {1, 0}, {0}, NULL, 1},
        {2, 1, 4, 3, 2, {3, 4}, {2, 3}, {3, 2}, {2, 1}, {0, 1, 1, 0}, {0, 1}, {0}, NULL, 0},
        {2, 1, 1, 2, 1, {3, 3}, {3, 3}, {3, 2}, {1, 1}, {0}, {0, 0}, {10, 8}, NULL, 1},
        {2, 1, 1, 2, 1, {3, 3}, {3, 3}, {2, 2}, {1, 1}, {0}, {0, 0}, {0}, "SAME_UPPER", 0},
        {2, 1, 1, 2, 1, {3, 3}, {3, 3}, {2, 2}, {1, 1}, {0}, {0, 0}, {0}, "SAME_LOWER", 0},
        {2, 2, 2, 2, 1, {3, 4}, {2, 2}, {1, 2}, {1, 1}, {0}, {0, 0}, {0}, "VALID", 1},
        {1, 2, 2, 3, 1, {5}, {3}, {2}, {1}, {1, 0}, {1}, {0}, NULL, 1},
        {3, 1, 2, 2, 2, {2, 3, 3}, {2, 2, 3}, {2, 1, 2}, {1, 2, 1}, {0, 1, 0, 0, 0, 1},
         {1, 0, 0}, {0}, NULL, 1},
    };
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_convt_case(&cases[i]);
}

/* ---- Gemm / MatMul ---- */

static void check_gemm(int64_t M, int64_t N, int64_t K, int ta, int tb, float alpha, float beta,
                       int c_ndim, const int64_t *c_dims, int opset)
{
    int64_t ad[2] = {ta ? K : M, ta ? M : K}, bd[2] = {tb ? N : K, tb ? K : N}, yd[2] = {M, N};
    pare_tensor *in[3] = {trand(2, ad), trand(2, bd), c_ndim >= 0 ? trand(c_ndim, c_dims) : NULL};
    const float *a = pare_tensor_f32(in[0]), *b = pare_tensor_f32(in[1]);
    float *want = pare_calloc((size_t)(M * N), sizeof(float));
    test_node t;
    run_result r;

    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            double acc = 0.0, c = 0.0;
            for (int64_t k = 0; k < K; k++)
                acc += (double)(ta ? a[k * M + i] : a[i * K + k]) *
                       (double)(tb ? b[j * K + k] : b[k * N + j]);
            if (in[2]) {
                const pare_tensor *ct = in[2];
                int64_t cm = ct->ndim == 2 ? ct->dims[0] : 1;
                int64_t cn = ct->ndim >= 1 ? ct->dims[ct->ndim - 1] : 1;
                c = pare_tensor_f32(ct)[(cm == 1 ? 0 : i) * cn + (cn == 1 ? 0 : j)];
            }
            want[i * N + j] = (float)(alpha * acc + beta * c);
        }
    tn_init(&t, "Gemm");
    tn_int(&t, "transA", ta);
    tn_int(&t, "transB", tb);
    tn_float(&t, "alpha", alpha);
    tn_float(&t, "beta", beta);
    assert_int_equal(run_op(&t, opset, in, in[2] ? 3 : 2, 1, 1, 1, &r), PARE_OK);
    assert_dims(r.out[0], 2, yd);
    assert_close_f32(pare_tensor_f32(r.out[0]), want, M * N, 1e-5);
    assert_true(r.flops == 2.0 * M * N * K + (in[2] ? (double)(M * N) : 0.0));
    run_free(&r);
    pare_free(want);
    for (int i = 0; i < 3; i++)
        pare_tensor_free(in[i]);
}

static void test_gemm_forms(void **state)
{
    int64_t cmn[2] = {5, 7}, c1n[2] = {1, 7}, cm1[2] = {5, 1}, cn[1] = {7}, c1[1] = {1};
    (void)state;
    check_gemm(5, 7, 3, 0, 0, 1.0f, 1.0f, 2, cmn, 13);
    check_gemm(5, 7, 3, 1, 0, 0.5f, 2.0f, 2, c1n, 13);
    check_gemm(5, 7, 3, 0, 1, 1.0f, -1.0f, 2, cm1, 9);
    check_gemm(5, 7, 3, 1, 1, 0.25f, 0.35f, 1, cn, 7);
    check_gemm(5, 7, 4, 0, 1, 1.0f, 1.0f, 1, c1, 11);
    check_gemm(5, 7, 4, 0, 1, 1.0f, 1.0f, 0, NULL, 13);  /* scalar C */
    check_gemm(5, 7, 4, 1, 0, 1.5f, 1.0f, -1, NULL, 11); /* no C */
    check_gemm(64, 120, 400, 0, 1, 1.0f, 1.0f, 1, (int64_t[]){120}, 13); /* lenet fc1 */
}

static void test_gemm_errors(void **state)
{
    int64_t ad[2] = {3, 4}, bd[2] = {5, 6}, bd_ok[2] = {4, 6}, cd[2] = {2, 6};
    pare_tensor *a = trand(2, ad), *b_bad = trand(2, bd), *b_ok = trand(2, bd_ok),
                *c = trand(2, cd);
    pare_tensor *in[3] = {a, b_bad, NULL};
    test_node t;
    run_result r;
    (void)state;

    tn_init(&t, "Gemm");
    assert_int_equal(run_op(&t, 13, in, 2, 1, 1, 1, &r), PARE_EINPUT);
    assert_string_equal(r.err.msg, "inner dims differ: A' is (3, 4) and B' is (5, 6)");
    run_free(&r);
    in[1] = b_ok;
    /* C is required before opset 11 */
    assert_int_equal(run_op(&t, 9, in, 2, 1, 1, 1, &r), PARE_EINPUT);
    assert_string_equal(r.err.msg, "expects 3 inputs, got 2");
    run_free(&r);
    in[2] = c;
    assert_int_equal(run_op(&t, 13, in, 3, 1, 1, 1, &r), PARE_EINPUT);
    assert_string_equal(r.err.msg, "C of shape (2, 6) does not broadcast to (3, 6)");
    run_free(&r);
    pare_tensor_free(a);
    pare_tensor_free(b_bad);
    pare_tensor_free(b_ok);
    pare_tensor_free(c);
}

static void test_gemm_f64(void **state)
{
    int64_t ad[2] = {2, 3}, bd[2] = {3, 2};
    pare_tensor *in[2] = {tnew(PARE_F64, 2, ad), tnew(PARE_F64, 2, bd)};
    double *a = in[0]->data, *b = in[1]->data, *y;
    test_node t;
    run_result r;
    (void)state;

    for (int i = 0; i < 6; i++) {
        a[i] = i + 1;
        b[i] = 0.5 * i;
    }
    tn_init(&t, "Gemm");
    tn_float(&t, "alpha", 2.0f);
    assert_int_equal(run_op(&t, 13, in, 2, 1, 1, 1, &r), PARE_OK);
    assert_int_equal(r.out[0]->dtype, PARE_F64);
    y = r.out[0]->data;
    /* A = [1 2 3; 4 5 6], B = [0 .5; 1 1.5; 2 2.5]: AB = [8 11; 17 24.5] */
    assert_true(y[0] == 16.0 && y[1] == 22.0 && y[2] == 34.0 && y[3] == 49.0);
    run_free(&r);
    pare_tensor_free(in[0]);
    pare_tensor_free(in[1]);
}

/* numpy matmul reference with broadcasting of batch dims. */
static void check_matmul_threads(int na, const int64_t *ad, int nb, const int64_t *bd, int n_out,
                                 const int64_t *yd, int n_threads)
{
    pare_tensor *in[2] = {trand(na, ad), trand(nb, bd)};
    int64_t M = na == 1 ? 1 : ad[na - 2], K = ad[na - 1], N = nb == 1 ? 1 : bd[nb - 1];
    int ra = na < 2 ? 0 : na - 2, rb = nb < 2 ? 0 : nb - 2;
    int rbatch = n_out - (na > 1) - (nb > 1);
    int64_t nbatch = pare_shape_numel(rbatch, yd);
    float *want = pare_calloc((size_t)(nbatch * M * N + 1), sizeof(float));
    test_node t;
    run_result r;

    for (int64_t bi = 0; bi < nbatch; bi++) {
        /* batch index -> offsets in A and B */
        int64_t rem = bi, oa = 0, ob = 0, sta = 1, stb = 1;
        for (int d = rbatch - 1; d >= 0; d--) {
            int64_t idx = rem % yd[d];
            int ia = d - (rbatch - ra), ib = d - (rbatch - rb);
            rem /= yd[d];
            if (ia >= 0) {
                oa += (ad[ia] == 1 ? 0 : idx) * sta;
                sta *= ad[ia];
            }
            if (ib >= 0) {
                ob += (bd[ib] == 1 ? 0 : idx) * stb;
                stb *= bd[ib];
            }
        }
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++) {
                double acc = 0.0;
                for (int64_t k = 0; k < K; k++)
                    acc += (double)pare_tensor_f32(in[0])[oa * M * K + i * K + k] *
                           (double)pare_tensor_f32(in[1])[ob * K * N + k * N + j];
                want[(bi * M + i) * N + j] = (float)acc;
            }
    }
    tn_init(&t, "MatMul");
    assert_int_equal(run_op(&t, 13, in, 2, 1, 1, n_threads, &r), PARE_OK);
    assert_dims(r.out[0], n_out, yd);
    assert_close_f32(pare_tensor_f32(r.out[0]), want, nbatch * M * N, 1e-5);
    assert_true(r.flops == 2.0 * (double)(nbatch * M * N * K));
    run_free(&r);
    pare_free(want);
    pare_tensor_free(in[0]);
    pare_tensor_free(in[1]);
}

static void check_matmul(int na, const int64_t *ad, int nb, const int64_t *bd, int n_out,
                         const int64_t *yd)
{
    check_matmul_threads(na, ad, nb, bd, n_out, yd, 1);
}

static void test_matmul_forms(void **state)
{
    (void)state;
    check_matmul(2, (int64_t[]){3, 4}, 2, (int64_t[]){4, 5}, 2, (int64_t[]){3, 5});
    check_matmul(1, (int64_t[]){4}, 2, (int64_t[]){4, 5}, 1, (int64_t[]){5});
    check_matmul(2, (int64_t[]){3, 4}, 1, (int64_t[]){4}, 1, (int64_t[]){3});
    check_matmul(1, (int64_t[]){4}, 1, (int64_t[]){4}, 0, (int64_t[]){0});
    /* Linear on (N, T, K): folded into one GEMM */
    check_matmul(3, (int64_t[]){6, 16, 64}, 2, (int64_t[]){64, 19}, 3, (int64_t[]){6, 16, 19});
    /* attention: (N, H, T, T) x (N, H, T, D) */
    check_matmul(4, (int64_t[]){2, 4, 16, 16}, 4, (int64_t[]){2, 4, 16, 16}, 4,
                 (int64_t[]){2, 4, 16, 16});
    /* broadcast of batch dims both ways */
    check_matmul(4, (int64_t[]){2, 1, 3, 4}, 3, (int64_t[]){5, 4, 2}, 4, (int64_t[]){2, 5, 3, 2});
    check_matmul(2, (int64_t[]){3, 4}, 3, (int64_t[]){5, 4, 2}, 3, (int64_t[]){5, 3, 2});
    check_matmul(1, (int64_t[]){4}, 3, (int64_t[]){2, 4, 3}, 2, (int64_t[]){2, 3});
    check_matmul(3, (int64_t[]){2, 3, 4}, 1, (int64_t[]){4}, 2, (int64_t[]){2, 3});
    /* many small products on two threads, plain and broadcast batches */
    check_matmul_threads(4, (int64_t[]){16, 4, 16, 16}, 4, (int64_t[]){16, 4, 16, 16}, 4,
                         (int64_t[]){16, 4, 16, 16}, 2);
    check_matmul_threads(4, (int64_t[]){8, 1, 16, 16}, 4, (int64_t[]){1, 6, 16, 20}, 4,
                         (int64_t[]){8, 6, 16, 20}, 2);
}

static void test_matmul_int_and_errors(void **state)
{
    int64_t ad[2] = {2, 3}, bd[2] = {3, 2}, bad[2] = {2, 2};
    pare_tensor *in[2] = {tnew(PARE_I64, 2, ad), tnew(PARE_I64, 2, bd)};
    pare_tensor *f = trand(2, ad), *g = trand(2, bad);
    int64_t *a = in[0]->data, *b = in[1]->data, *y;
    test_node t;
    run_result r;
    (void)state;

    for (int i = 0; i < 6; i++) {
        a[i] = i + 1;
        b[i] = i - 2;
    }
    tn_init(&t, "MatMul");
    assert_int_equal(run_op(&t, 9, in, 2, 1, 1, 1, &r), PARE_OK);
    y = r.out[0]->data;
    /* [1 2 3; 4 5 6] x [-2 -1; 0 1; 2 3] = [4 10; 4 19] */
    assert_int_equal(y[0], 4);
    assert_int_equal(y[1], 10);
    assert_int_equal(y[2], 4);
    assert_int_equal(y[3], 19);
    run_free(&r);
    pare_tensor_free(in[1]);
    in[1] = f;
    assert_int_equal(run_op(&t, 13, in, 2, 1, 1, 1, &r), PARE_EINPUT);
    assert_string_equal(r.err.msg, "A has dtype 'int64' but B has 'float32'");
    run_free(&r);
    pare_tensor_free(in[0]);
    in[0] = f;
    in[1] = g;
    assert_int_equal(run_op(&t, 13, in, 2, 1, 1, 1, &r), PARE_EINPUT);
    assert_string_equal(r.err.msg, "inner dims differ: A [2, 3], B [2, 2]");
    run_free(&r);
    pare_tensor_free(f);
    pare_tensor_free(g);
}

/* ---- pools ---- */

typedef struct pool_case {
    int nsp;
    int64_t N, C;
    int64_t in[3], k[3], s[3], d[3];
    int64_t pads[6];
    const char *auto_pad;
    int ceil_mode, count_include_pad;
} pool_case;

/* Reference max / average pool from the spec; also argmax indices. */
static float *ref_pool(const pool_case *pc, int is_max, const float *x, int64_t *out,
                       int64_t **indices)
{
    int64_t in[3] = {1, 1, 1}, o[3] = {1, 1, 1}, k[3] = {1, 1, 1}, s[3] = {1, 1, 1},
            d[3] = {1, 1, 1}, pb[3] = {0, 0, 0}, pe[3] = {0, 0, 0};
    int off = 3 - pc->nsp;
    int64_t planes = pc->N * pc->C, opx, ipx;
    float *y;
    int64_t *ind;
    const char *ap = pc->auto_pad ? pc->auto_pad : "NOTSET";

    for (int i = 0; i < pc->nsp; i++) {
        int64_t dk = (pc->k[i] - 1) * pc->d[i] + 1, j = off + i, b = 0, e = 0, ov;
        if (!strcmp(ap, "SAME_UPPER") || !strcmp(ap, "SAME_LOWER")) {
            int64_t total;
            ov = (pc->in[i] + pc->s[i] - 1) / pc->s[i];
            total = (ov - 1) * pc->s[i] + dk - pc->in[i];
            total = total < 0 ? 0 : total;
            b = !strcmp(ap, "SAME_UPPER") ? total / 2 : total - total / 2;
            e = total - b;
        } else {
            if (!strcmp(ap, "NOTSET")) {
                b = pc->pads[i];
                e = pc->pads[pc->nsp + i];
            }
            if (pc->ceil_mode) {
                double q = (double)(pc->in[i] + b + e - dk) / (double)pc->s[i];
                ov = (int64_t)ceil(q) + 1;
                if ((ov - 1) * pc->s[i] >= pc->in[i] + b)
                    ov--;
            } else {
                ov = (pc->in[i] + b + e - dk) / pc->s[i] + 1;
            }
        }
        out[i] = ov;
        in[j] = pc->in[i];
        o[j] = ov;
        k[j] = pc->k[i];
        s[j] = pc->s[i];
        d[j] = pc->d[i];
        pb[j] = b;
        pe[j] = e;
    }
    opx = o[0] * o[1] * o[2];
    ipx = in[0] * in[1] * in[2];
    y = pare_calloc((size_t)(planes * opx), sizeof(float));
    ind = pare_calloc((size_t)(planes * opx), sizeof(int64_t));
    for (int64_t p = 0; p < planes; p++)
    for (int64_t a = 0; a < o[0]; a++)
    for (int64_t b = 0; b < o[1]; b++)
    for (int64_t c = 0; c < o[2]; c++) {
        double sum = 0.0, best = -INFINITY;
        int64_t n_valid = 0, n_padded = 0, best_i = -1;
        for (int64_t i0 = 0; i0 < k[0]; i0++)
        for (int64_t i1 = 0; i1 < k[1]; i1++)
        for (int64_t i2 = 0; i2 < k[2]; i2++) {
            int64_t z[3] = {a * s[0] - pb[0] + i0 * d[0], b * s[1] - pb[1] + i1 * d[1],
                            c * s[2] - pb[2] + i2 * d[2]};
            int valid = 1, padded = 1;
            for (int q = 0; q < 3; q++) {
                if (z[q] < 0 || z[q] >= in[q])
                    valid = 0;
                if (z[q] < -pb[q] || z[q] >= in[q] + pe[q])
                    padded = 0;
            }
            n_padded += padded;
            if (!valid)
                continue;
            n_valid++;
            {
                int64_t flat = (z[0] * in[1] + z[1]) * in[2] + z[2];
                double v = x[p * ipx + flat];
                sum += v;
                if (v > best) {
                    best = v;
                    best_i = p * ipx + flat;
                }
            }
        }
        {
            int64_t oi = p * opx + (a * o[1] + b) * o[2] + c;
            if (is_max) {
                y[oi] = (float)best;
                ind[oi] = best_i;
            } else {
                y[oi] = (float)(sum / (double)(pc->count_include_pad ? n_padded : n_valid));
            }
        }
    }
    if (indices)
        *indices = ind;
    else
        pare_free(ind);
    return y;
}

/* Indices are requested from MaxPool at opset 8+ unless no_indices. */
static void check_pool_case_ex(const pool_case *pc, int is_max, int opset, int n_threads,
                               int no_indices)
{
    test_node t;
    int64_t xd[5], out[3], yd[5];
    pare_tensor *in[1];
    run_result r;
    float *want;
    int64_t *want_ind = NULL;
    static int64_t kern[3], strides[3], dil[3], pads[6];
    int with_ind = is_max && opset >= 8 && !no_indices;

    xd[0] = pc->N;
    xd[1] = pc->C;
    for (int i = 0; i < pc->nsp; i++) {
        xd[2 + i] = pc->in[i];
        kern[i] = pc->k[i];
        strides[i] = pc->s[i];
        dil[i] = pc->d[i];
        pads[i] = pc->pads[i];
        pads[pc->nsp + i] = pc->pads[pc->nsp + i];
    }
    in[0] = trand(2 + pc->nsp, xd);
    tn_init(&t, is_max ? "MaxPool" : "AveragePool");
    tn_ints(&t, "kernel_shape", pc->nsp, kern);
    tn_ints(&t, "strides", pc->nsp, strides);
    if (opset >= 10 && (is_max || opset >= 19))
        tn_ints(&t, "dilations", pc->nsp, dil);
    if (pc->ceil_mode)
        tn_int(&t, "ceil_mode", 1);
    if (pc->count_include_pad)
        tn_int(&t, "count_include_pad", 1);
    if (pc->auto_pad)
        tn_str(&t, "auto_pad", pc->auto_pad);
    else
        tn_ints(&t, "pads", 2 * pc->nsp, pads);
    assert_int_equal(run_op(&t, opset, in, 1, with_ind ? 2 : 1, with_ind ? 3 : 1, n_threads, &r),
                     PARE_OK);
    want = ref_pool(pc, is_max, pare_tensor_f32(in[0]), out, &want_ind);
    yd[0] = pc->N;
    yd[1] = pc->C;
    for (int i = 0; i < pc->nsp; i++)
        yd[2 + i] = out[i];
    assert_dims(r.out[0], 2 + pc->nsp, yd);
    assert_close_f32(pare_tensor_f32(r.out[0]), want, pare_tensor_numel(r.out[0]), 1e-6);
    if (with_ind) {
        assert_int_equal(r.out[1]->dtype, PARE_I64);
        assert_memory_equal(r.out[1]->data, want_ind, pare_tensor_nbytes(r.out[1]));
    }
    pare_free(want);
    pare_free(want_ind);
    run_free(&r);
    pare_tensor_free(in[0]);
}

static void check_pool_case(const pool_case *pc, int is_max, int opset, int n_threads)
{
    check_pool_case_ex(pc, is_max, opset, n_threads, 0);
}

static const pool_case pool_cases[] = {
    {2, 2, 3, {8, 8}, {2, 2}, {2, 2}, {1, 1}, {0, 0, 0, 0}, NULL, 0, 0},
    /* 2x2 stride 2 on odd sizes: the dedicated kernel drops the last row/column */
    {2, 2, 3, {7, 9}, {2, 2}, {2, 2}, {1, 1}, {0, 0, 0, 0}, NULL, 0, 0},
    {2, 1, 2, {7, 9}, {3, 2}, {2, 3}, {1, 1}, {1, 0, 2, 1}, NULL, 0, 0},
    {2, 1, 2, {7, 9}, {3, 2}, {2, 3}, {1, 1}, {1, 0, 2, 1}, NULL, 0, 1},
    {2, 1, 2, {7, 8}, {3, 3}, {2, 2}, {1, 1}, {1, 1, 1, 1}, NULL, 1, 1},
    {2, 1, 2, {4, 4}, {3, 3}, {2, 2}, {1, 1}, {0, 0, 0, 0}, NULL, 1, 0},
    {2, 1, 3, {6, 7}, {2, 3}, {1, 2}, {1, 1}, {0}, "SAME_UPPER", 0, 0},
    {2, 1, 3, {6, 7}, {2, 3}, {1, 2}, {1, 1}, {0}, "SAME_LOWER", 0, 0},
    {2, 1, 3, {6, 7}, {2, 3}, {2, 2}, {1, 1}, {0}, "VALID", 0, 0},
    {1, 2, 2, {11}, {3}, {2}, {1}, {1, 1}, NULL, 0, 0},
    {3, 1, 2, {4, 5, 6}, {2, 2, 3}, {2, 1, 2}, {1, 1, 1}, {0, 1, 1, 1, 0, 1}, NULL, 0, 1},
};

static void test_maxpool(void **state)
{
    static const pool_case dilated[] = {
        {2, 1, 2, {9, 9}, {2, 3}, {1, 2}, {2, 2}, {1, 1, 0, 2}, NULL, 0, 0},
        {2, 1, 2, {9, 10}, {3, 3}, {2, 2}, {2, 1}, {1, 1, 1, 1}, NULL, 1, 0},
    };
    (void)state;
    for (size_t i = 0; i < sizeof pool_cases / sizeof pool_cases[0]; i++) {
        /* with Indices (generic kernel) and without (row kernel for 1-D / 2-D) */
        check_pool_case(&pool_cases[i], 1, pool_cases[i].ceil_mode ? 10 : 12, 1);
        check_pool_case_ex(&pool_cases[i], 1, 12, 1, 1);
        if (!pool_cases[i].ceil_mode)
            check_pool_case(&pool_cases[i], 1, 7, 1);
    }
    for (size_t i = 0; i < sizeof dilated / sizeof dilated[0]; i++) {
        check_pool_case(&dilated[i], 1, 12, 1);
        check_pool_case_ex(&dilated[i], 1, 12, 1, 1);
    }
}

static void test_avgpool(void **state)
{
    static const pool_case dilated = {2, 1, 2, {9, 9}, {2, 3}, {1, 2}, {2, 2}, {1, 1, 0, 2},
                                      NULL, 0, 1};
    (void)state;
    for (size_t i = 0; i < sizeof pool_cases / sizeof pool_cases[0]; i++)
        check_pool_case(&pool_cases[i], 0, pool_cases[i].ceil_mode ? 10 : 11, 1);
    check_pool_case(&dilated, 0, 19, 1);
}

static void test_pool_threads(void **state)
{
    static const pool_case big = {2, 16, 16, {28, 28}, {2, 2}, {2, 2}, {1, 1}, {0, 0, 0, 0},
                                  NULL, 0, 0};
    (void)state;
    check_pool_case(&big, 1, 13, 2);
    check_pool_case_ex(&big, 1, 13, 2, 1);
    check_pool_case(&big, 0, 13, 2);
}

/* ONNX's maxpool_2d_ceil example and its indices; uint8 at opset 12. */
static void test_maxpool_examples(void **state)
{
    static const int64_t ks[2] = {3, 3}, st[2] = {2, 2};
    static const float want[4] = {11, 12, 15, 16};
    int64_t xd[4] = {1, 1, 4, 4};
    pare_tensor *f32 = tnew(PARE_F32, 4, xd);
    pare_tensor *in[1] = {f32};
    pare_tensor *u8 = tnew(PARE_U8, 4, xd);
    test_node t;
    run_result r;
    (void)state;

    for (int i = 0; i < 16; i++) {
        pare_tensor_f32(in[0])[i] = (float)(i + 1);
        ((uint8_t *)u8->data)[i] = (uint8_t)(200 + i);
    }
    tn_init(&t, "MaxPool");
    tn_ints(&t, "kernel_shape", 2, ks);
    tn_ints(&t, "strides", 2, st);
    tn_int(&t, "ceil_mode", 1);
    assert_int_equal(run_op(&t, 12, in, 1, 2, 3, 1, &r), PARE_OK);
    assert_close_f32(pare_tensor_f32(r.out[0]), want, 4, 0.0);
    assert_int_equal(((int64_t *)r.out[1]->data)[0], 10);
    assert_int_equal(((int64_t *)r.out[1]->data)[3], 15);
    run_free(&r);

    /* storage_order 1: column-major index within the plane */
    tn_int(&t, "storage_order", 1);
    assert_int_equal(run_op(&t, 12, in, 1, 2, 3, 1, &r), PARE_OK);
    assert_int_equal(((int64_t *)r.out[1]->data)[0], 2 * 4 + 2); /* (h 2, w 2) */
    assert_int_equal(((int64_t *)r.out[1]->data)[1], 3 * 4 + 2); /* (h 2, w 3) */
    run_free(&r);

    in[0] = u8;
    assert_int_equal(run_op(&t, 12, in, 1, 1, 1, 1, &r), PARE_OK);
    assert_int_equal(r.out[0]->dtype, PARE_U8);
    assert_int_equal(((uint8_t *)r.out[0]->data)[0], 210);
    assert_int_equal(((uint8_t *)r.out[0]->data)[3], 215);
    run_free(&r);
    /* uint8 arrived at opset 12 */
    assert_int_equal(run_op(&t, 11, in, 1, 1, 1, 1, &r), PARE_EUNSUPPORTED);
    assert_string_equal(r.err.msg, "MaxPool: dtype 'uint8' not supported");
    run_free(&r);

    tn_init(&t, "MaxPool");
    assert_int_equal(run_op(&t, 12, in, 1, 1, 1, 1, &r), PARE_EINPUT);
    assert_string_equal(r.err.msg, "attribute 'kernel_shape' is required");
    run_free(&r);
    pare_tensor_free(u8);
    pare_tensor_free(f32);
    {
        /* a kernel larger than the padded input */
        int64_t small[4] = {1, 1, 2, 2};
        static const int64_t k5[2] = {5, 5};
        in[0] = trand(4, small);
        tn_init(&t, "AveragePool");
        tn_ints(&t, "kernel_shape", 2, k5);
        assert_int_equal(run_op(&t, 13, in, 1, 1, 1, 1, &r), PARE_EINPUT);
        assert_string_equal(r.err.msg, "kernel extent 5 is larger than the padded input 2 in "
                                       "spatial dim 0");
        run_free(&r);
        pare_tensor_free(in[0]);
    }
}

static void test_global_pools(void **state)
{
    int64_t xd[4] = {3, 5, 7, 6}, yd[4] = {3, 5, 1, 1}, x3[3] = {2, 3, 40};
    pare_tensor *in[1] = {trand(4, xd)};
    float want_avg[15], want_max[15];
    test_node t;
    run_result r;
    (void)state;

    for (int p = 0; p < 15; p++) {
        double s = 0.0;
        float m = -INFINITY;
        for (int i = 0; i < 42; i++) {
            float v = pare_tensor_f32(in[0])[p * 42 + i];
            s += v;
            m = v > m ? v : m;
        }
        want_avg[p] = (float)(s / 42.0);
        want_max[p] = m;
    }
    tn_init(&t, "GlobalAveragePool");
    assert_int_equal(run_op(&t, 1, in, 1, 1, 1, 1, &r), PARE_OK);
    assert_dims(r.out[0], 4, yd);
    assert_close_f32(pare_tensor_f32(r.out[0]), want_avg, 15, 1e-6);
    run_free(&r);
    tn_init(&t, "GlobalMaxPool");
    assert_int_equal(run_op(&t, 13, in, 1, 1, 1, 1, &r), PARE_OK);
    assert_close_f32(pare_tensor_f32(r.out[0]), want_max, 15, 0.0);
    run_free(&r);
    pare_tensor_free(in[0]);

    in[0] = trand(3, x3);
    tn_init(&t, "GlobalAveragePool");
    assert_int_equal(run_op(&t, 13, in, 1, 1, 1, 1, &r), PARE_OK);
    assert_int_equal(r.out[0]->ndim, 3);
    assert_int_equal(r.out[0]->dims[2], 1);
    {
        double s = 0.0;
        for (int i = 0; i < 40; i++)
            s += pare_tensor_f32(in[0])[40 + i];
        assert_true(fabs(pare_tensor_f32(r.out[0])[1] - s / 40.0) < 1e-6);
    }
    run_free(&r);
    pare_tensor_free(in[0]);
}

/* ---- normalization ---- */

static void test_batchnorm_inference(void **state)
{
    int64_t xd[4] = {2, 3, 4, 5}, cd[1] = {3};
    pare_tensor *in[5] = {trand(4, xd), trand(1, cd), trand(1, cd), trand(1, cd), trand(1, cd)};
    float want[120];
    test_node t;
    run_result r;
    (void)state;

    for (int c = 0; c < 3; c++)
        pare_tensor_f32(in[4])[c] = fabsf(pare_tensor_f32(in[4])[c]) + 0.1f;
    for (int i = 0; i < 120; i++) {
        int c = (i / 20) % 3;
        float x = pare_tensor_f32(in[0])[i];
        want[i] = (float)((x - pare_tensor_f32(in[3])[c]) /
                              sqrt((double)pare_tensor_f32(in[4])[c] + 1e-2) *
                              pare_tensor_f32(in[1])[c] +
                          pare_tensor_f32(in[2])[c]);
    }
    for (int opset = 6; opset <= 15; opset++) {
        tn_init(&t, "BatchNormalization");
        tn_float(&t, "epsilon", 1e-2f);
        assert_int_equal(run_op(&t, opset, in, 5, 1, 1, 1, &r), PARE_OK);
        assert_dims(r.out[0], 4, xd);
        assert_close_f32(pare_tensor_f32(r.out[0]), want, 120, 1e-5);
        assert_true(r.flops == 240.0);
        run_free(&r);
    }
    /* old training outputs are reported, not faked */
    tn_init(&t, "BatchNormalization");
    assert_int_equal(run_op(&t, 9, in, 5, 5, 0x1f, 1, &r), PARE_EUNSUPPORTED);
    run_free(&r);
    for (int i = 0; i < 5; i++)
        pare_tensor_free(in[i]);
}

/* Opset 7 spatial = 0: parameters per (c, h, w). */
static void test_batchnorm_per_element(void **state)
{
    int64_t xd[3] = {3, 2, 4}, pd[2] = {2, 4};
    pare_tensor *in[5] = {trand(3, xd), trand(2, pd), trand(2, pd), trand(2, pd), trand(2, pd)};
    float want[24];
    test_node t;
    run_result r;
    (void)state;

    for (int i = 0; i < 8; i++)
        pare_tensor_f32(in[4])[i] = fabsf(pare_tensor_f32(in[4])[i]) + 0.1f;
    for (int i = 0; i < 24; i++) {
        int j = i % 8;
        want[i] = (pare_tensor_f32(in[0])[i] - pare_tensor_f32(in[3])[j]) /
                      sqrtf(pare_tensor_f32(in[4])[j] + 1e-5f) * pare_tensor_f32(in[1])[j] +
                  pare_tensor_f32(in[2])[j];
    }
    tn_init(&t, "BatchNormalization");
    tn_int(&t, "spatial", 0);
    assert_int_equal(run_op(&t, 7, in, 5, 1, 1, 1, &r), PARE_OK);
    assert_close_f32(pare_tensor_f32(r.out[0]), want, 24, 1e-5);
    run_free(&r);
    /* from opset 9 parameters are per channel: the same inputs are refused */
    assert_int_equal(run_op(&t, 9, in, 5, 1, 1, 1, &r), PARE_EINPUT);
    assert_string_equal(r.err.msg, "input 'scale' must have 2 elements (one per channel)");
    run_free(&r);
    for (int i = 0; i < 5; i++)
        pare_tensor_free(in[i]);
}

static void test_batchnorm_training(void **state)
{
    int64_t xd[4] = {2, 3, 2, 3}, cd[1] = {3};
    pare_tensor *in[5] = {trand(4, xd), trand(1, cd), trand(1, cd), trand(1, cd), trand(1, cd)};
    float want[36], want_rm[3], want_rv[3];
    test_node t;
    run_result r;
    (void)state;

    for (int c = 0; c < 3; c++) {
        double s = 0.0, ss = 0.0, m, v;
        for (int n = 0; n < 2; n++)
            for (int i = 0; i < 6; i++)
                s += pare_tensor_f32(in[0])[(n * 3 + c) * 6 + i];
        m = s / 12.0;
        for (int n = 0; n < 2; n++)
            for (int i = 0; i < 6; i++) {
                double d = pare_tensor_f32(in[0])[(n * 3 + c) * 6 + i] - m;
                ss += d * d;
            }
        v = ss / 12.0;
        for (int n = 0; n < 2; n++)
            for (int i = 0; i < 6; i++) {
                int k = (n * 3 + c) * 6 + i;
                want[k] = (float)((pare_tensor_f32(in[0])[k] - m) / sqrt(v + 1e-5) *
                                      pare_tensor_f32(in[1])[c] +
                                  pare_tensor_f32(in[2])[c]);
            }
        want_rm[c] = (float)(pare_tensor_f32(in[3])[c] * 0.8 + m * 0.2);
        want_rv[c] = (float)(pare_tensor_f32(in[4])[c] * 0.8 + v * 0.2);
    }
    tn_init(&t, "BatchNormalization");
    tn_int(&t, "training_mode", 1);
    tn_float(&t, "momentum", 0.8f);
    assert_int_equal(run_op(&t, 15, in, 5, 3, 7, 1, &r), PARE_OK);
    assert_close_f32(pare_tensor_f32(r.out[0]), want, 36, 1e-4);
    assert_close_f32(pare_tensor_f32(r.out[1]), want_rm, 3, 1e-5);
    assert_close_f32(pare_tensor_f32(r.out[2]), want_rv, 3, 1e-5);
    run_free(&r);
    for (int i = 0; i < 5; i++)
        pare_tensor_free(in[i]);
}

static void check_layernorm(int ndim, const int64_t *xd, int64_t axis, int with_bias,
                            int scale_ndim, const int64_t *sd)
{
    pare_tensor *in[3];
    int a = (int)(axis < 0 ? axis + ndim : axis);
    int64_t rows = pare_shape_numel(a, xd), cols = pare_shape_numel(ndim - a, xd + a);
    int64_t sn;
    float *want = pare_calloc((size_t)(rows * cols), sizeof(float));
    float *want_mean = pare_calloc((size_t)rows, sizeof(float));
    float *want_inv = pare_calloc((size_t)rows, sizeof(float));
    test_node t;
    run_result r;

    in[0] = trand(ndim, xd);
    in[1] = trand(scale_ndim, sd);
    in[2] = with_bias ? trand(scale_ndim, sd) : NULL;
    sn = pare_tensor_numel(in[1]);
    for (int64_t i = 0; i < rows; i++) {
        double s = 0.0, ss = 0.0, m, inv;
        const float *x = pare_tensor_f32(in[0]) + i * cols;
        for (int64_t j = 0; j < cols; j++)
            s += x[j];
        m = s / (double)cols;
        for (int64_t j = 0; j < cols; j++)
            ss += (x[j] - m) * (x[j] - m);
        inv = 1.0 / sqrt(ss / (double)cols + 1e-3);
        for (int64_t j = 0; j < cols; j++) {
            /* scale broadcasts along the trailing dims: index modulo its size */
            int64_t sj = j % sn;
            want[i * cols + j] = (float)((x[j] - m) * inv * pare_tensor_f32(in[1])[sj] +
                                         (in[2] ? pare_tensor_f32(in[2])[sj] : 0.0f));
        }
        want_mean[i] = (float)m;
        want_inv[i] = (float)inv;
    }
    tn_init(&t, "LayerNormalization");
    tn_int(&t, "axis", axis);
    tn_float(&t, "epsilon", 1e-3f);
    assert_int_equal(run_op(&t, 17, in, with_bias ? 3 : 2, 3, 7, 1, &r), PARE_OK);
    assert_dims(r.out[0], ndim, xd);
    assert_close_f32(pare_tensor_f32(r.out[0]), want, rows * cols, 1e-4);
    assert_int_equal(r.out[1]->ndim, ndim);
    assert_int_equal(r.out[1]->dims[ndim - 1], 1);
    assert_close_f32(pare_tensor_f32(r.out[1]), want_mean, rows, 1e-5);
    assert_close_f32(pare_tensor_f32(r.out[2]), want_inv, rows, 1e-4);
    run_free(&r);
    pare_free(want);
    pare_free(want_mean);
    pare_free(want_inv);
    for (int i = 0; i < 3; i++)
        pare_tensor_free(in[i]);
}

static void test_layernorm(void **state)
{
    (void)state;
    check_layernorm(3, (int64_t[]){2, 16, 64}, -1, 1, 1, (int64_t[]){64});
    check_layernorm(3, (int64_t[]){2, 3, 5}, 1, 0, 2, (int64_t[]){3, 5});
    check_layernorm(4, (int64_t[]){2, 3, 4, 5}, 0, 1, 4, (int64_t[]){2, 3, 4, 5});
    check_layernorm(4, (int64_t[]){2, 3, 4, 5}, -2, 1, 1, (int64_t[]){5}); /* broadcast scale */
    check_layernorm(2, (int64_t[]){300, 257}, 1, 1, 1, (int64_t[]){257});
    assert_null(pare_op_find("", "LayerNormalization", 16));
}

static void test_layernorm_errors(void **state)
{
    int64_t xd[2] = {3, 4}, sd[1] = {5};
    pare_tensor *in[2] = {trand(2, xd), trand(1, sd)};
    test_node t;
    run_result r;
    (void)state;

    tn_init(&t, "LayerNormalization");
    assert_int_equal(run_op(&t, 17, in, 2, 1, 1, 1, &r), PARE_EINPUT);
    assert_string_equal(r.err.msg, "input 'Scale' does not broadcast to X");
    run_free(&r);
    tn_int(&t, "axis", 2);
    assert_int_equal(run_op(&t, 17, in, 2, 1, 1, 1, &r), PARE_EINPUT);
    assert_string_equal(r.err.msg, "attribute 'axis' is 2, out of range for rank 2");
    run_free(&r);
    pare_tensor_free(in[0]);
    pare_tensor_free(in[1]);
}

static void test_instancenorm(void **state)
{
    int64_t xd[4] = {2, 3, 5, 4}, cd[1] = {3};
    pare_tensor *in[3] = {trand(4, xd), trand(1, cd), trand(1, cd)};
    float want[120];
    test_node t;
    run_result r;
    (void)state;

    for (int p = 0; p < 6; p++) {
        const float *x = pare_tensor_f32(in[0]) + p * 20;
        double s = 0.0, ss = 0.0, m;
        for (int i = 0; i < 20; i++)
            s += x[i];
        m = s / 20.0;
        for (int i = 0; i < 20; i++)
            ss += (x[i] - m) * (x[i] - m);
        for (int i = 0; i < 20; i++)
            want[p * 20 + i] = (float)((x[i] - m) / sqrt(ss / 20.0 + 1e-5) *
                                           pare_tensor_f32(in[1])[p % 3] +
                                       pare_tensor_f32(in[2])[p % 3]);
    }
    tn_init(&t, "InstanceNormalization");
    assert_int_equal(run_op(&t, 6, in, 3, 1, 1, 1, &r), PARE_OK);
    assert_close_f32(pare_tensor_f32(r.out[0]), want, 120, 1e-4);
    run_free(&r);
    for (int i = 0; i < 3; i++)
        pare_tensor_free(in[i]);
}

/* ---- registry coverage ---- */

static void test_rows_cover_opsets(void **state)
{
    static const char *const ops[] = {
        "Conv", "ConvTranspose", "Gemm", "MatMul", "MaxPool", "AveragePool",
        "GlobalAveragePool", "GlobalMaxPool", "BatchNormalization", "InstanceNormalization",
    };
    (void)state;
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
        for (int opset = 1; opset <= 21; opset++) {
            const pare_op_def *d = pare_op_find("", ops[i], opset);
            if (!d)
                print_error("no row for %s at opset %d\n", ops[i], opset);
            assert_non_null(d);
            assert_true(d->since <= opset && (d->until == 0 || opset <= d->until));
        }
    for (int opset = 17; opset <= 21; opset++)
        assert_non_null(pare_op_find("", "LayerNormalization", opset));
    /* rows start where ONNX changed the op */
    assert_int_equal(pare_op_find("", "Gemm", 11)->since, 11);
    assert_int_equal(pare_op_find("", "BatchNormalization", 14)->since, 14);
    assert_int_equal(pare_op_find("", "BatchNormalization", 16)->since, 15);
    assert_int_equal(pare_op_find("", "MaxPool", 12)->since, 12);
    assert_int_equal(pare_op_find("", "AveragePool", 19)->since, 19);
}

/* ---- through the executor: Conv -> MaxPool -> BatchNormalization ---- */

static int add_init(pare_graph *g, const char *name, pare_tensor *t)
{
    pare_error err = {0};
    int v = pare_graph_add_value(g, name, &err);
    assert_true(v >= 0);
    g->values[v].init = t;
    g->values[v].dtype = t->dtype;
    g->values[v].ndim = t->ndim;
    memcpy(g->values[v].dims, t->dims, (size_t)t->ndim * sizeof(int64_t));
    return v;
}

static void test_exec_small_cnn(void **state)
{
    static const int64_t pads[4] = {1, 1, 1, 1}, k2[2] = {2, 2};
    int64_t xd[4] = {-1, 2, 8, 8}, wd[4] = {4, 2, 3, 3}, bd[1] = {4}, cd[1] = {4};
    pare_graph *g = pare_graph_new();
    pare_error err = {0};
    pare_exec_opts opts = {.batch = 3, .n_threads = 2};
    pare_exec *x = NULL;
    pare_attr a;
    int vx, vw, vb, vs, vbb, vm, vv, vc, vp, vy, ins[5];
    int nc, np, nb;
    const pare_tensor *y;
    pare_tensor *xin;
    conv_case cc = {2, 3, 2, 4, 1, {8, 8}, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, NULL, 1};
    float *conv_ref;
    int64_t co[3];
    pare_tensor *w = trand(4, wd), *b = trand(1, bd);
    (void)state;

    g->opsets = pare_calloc(1, sizeof *g->opsets);
    g->opsets[0].domain = pare_strdup("");
    g->opsets[0].version = 13;
    g->n_opsets = 1;
    vx = pare_graph_add_value(g, "x", &err);
    g->values[vx].is_input = true;
    g->values[vx].dtype = PARE_F32;
    g->values[vx].ndim = 4;
    memcpy(g->values[vx].dims, xd, sizeof xd);
    g->inputs = pare_calloc(1, sizeof(int));
    g->inputs[g->n_inputs++] = vx;
    vw = add_init(g, "w", w);
    vb = add_init(g, "b", b);
    vs = add_init(g, "scale", trand(1, cd));
    vbb = add_init(g, "shift", trand(1, cd));
    vm = add_init(g, "mean", trand(1, cd));
    vv = add_init(g, "var", trand(1, cd));
    for (int c = 0; c < 4; c++)
        pare_tensor_f32(g->values[vv].init)[c] = 0.5f + 0.25f * (float)c;
    vc = pare_graph_add_value(g, "c", &err);
    vp = pare_graph_add_value(g, "p", &err);
    vy = pare_graph_add_value(g, "y", &err);
    ins[0] = vx;
    ins[1] = vw;
    ins[2] = vb;
    nc = pare_graph_add_node(g, "Conv", "", "conv", ins, 3, &vc, 1, &err);
    np = pare_graph_add_node(g, "MaxPool", "", "pool", &vc, 1, &vp, 1, &err);
    ins[0] = vp;
    ins[1] = vs;
    ins[2] = vbb;
    ins[3] = vm;
    ins[4] = vv;
    nb = pare_graph_add_node(g, "BatchNormalization", "", "bn", ins, 5, &vy, 1, &err);
    assert_true(nc >= 0 && np >= 0 && nb >= 0);
    memset(&a, 0, sizeof a);
    a.name = (char *)"pads";
    a.type = PARE_ATTR_INTS;
    a.ints = (int64_t *)pads;
    a.n = 4;
    assert_int_equal(pare_node_add_attr(&g->nodes[nc], &a, &err), PARE_OK);
    a.name = (char *)"kernel_shape";
    a.ints = (int64_t *)k2;
    a.n = 2;
    assert_int_equal(pare_node_add_attr(&g->nodes[np], &a, &err), PARE_OK);
    a.name = (char *)"strides";
    assert_int_equal(pare_node_add_attr(&g->nodes[np], &a, &err), PARE_OK);
    g->values[vy].is_output = true;
    g->outputs = pare_calloc(1, sizeof(int));
    g->outputs[g->n_outputs++] = vy;
    assert_int_equal(pare_graph_index(g, &err), PARE_OK);

    assert_int_equal(pare_exec_new(g, &opts, &x, &err), PARE_OK);
    assert_true(pare_exec_node_flops(x, pare_graph_find_node(g, "conv")) == 2.0 * 3 * 4 * 64 * 18);
    xin = pare_exec_input(x, 0);
    for (int64_t i = 0; i < pare_tensor_numel(xin); i++)
        pare_tensor_f32(xin)[i] = frand();
    assert_int_equal(pare_exec_run(x, &err), PARE_OK);
    y = pare_exec_output(x, 0);
    assert_int_equal(y->dims[0], 3);
    assert_int_equal(y->dims[1], 4);
    assert_int_equal(y->dims[2], 4);
    assert_int_equal(y->dims[3], 4);
    conv_ref = ref_conv(&cc, pare_tensor_f32(xin), pare_tensor_f32(w), pare_tensor_f32(b), co);
    for (int n = 0; n < 3; n++)
        for (int c = 0; c < 4; c++)
            for (int i = 0; i < 4; i++)
                for (int j = 0; j < 4; j++) {
                    const float *cp = conv_ref + (n * 4 + c) * 64;
                    float m = cp[(2 * i) * 8 + 2 * j];
                    float want;
                    m = fmaxf(m, cp[(2 * i) * 8 + 2 * j + 1]);
                    m = fmaxf(m, cp[(2 * i + 1) * 8 + 2 * j]);
                    m = fmaxf(m, cp[(2 * i + 1) * 8 + 2 * j + 1]);
                    want = (m - pare_tensor_f32(g->values[vm].init)[c]) /
                               sqrtf(pare_tensor_f32(g->values[vv].init)[c] + 1e-5f) *
                               pare_tensor_f32(g->values[vs].init)[c] +
                           pare_tensor_f32(g->values[vbb].init)[c];
                    assert_close_f32(pare_tensor_f32(y) + ((n * 4 + c) * 4 + i) * 4 + j, &want, 1,
                                     1e-4);
                }
    pare_free(conv_ref);
    pare_exec_free(x);
    pare_graph_free(g);
}

/* ---- nn_gemm_taps (core-private micro-kernels for conv) ---- */

/* Every kernel this CPU runs against a naive triple loop in double on odd
 * shapes (m, n, k off the register blocks), row strides wider than the rows,
 * taps at scattered offsets, and output mappings (bias, dropped columns);
 * every other float of c stays untouched. */
static void test_nn_gemm_taps_odd_shapes(void **state)
{
    enum { MAXM = 19, MAXK = 21, MAXT = 3, LDA = 24, LDB = 83, LDC = 80 };
    static float a[MAXT * MAXM * LDA], b[MAXT * 11 + MAXK * LDB + LDB], c[MAXM * LDC];
    static double want[MAXM * LDC], mag[MAXM * LDC];
    static const float bias[MAXM] = {0.5f, -1.0f, 2.0f, 0.25f, -0.75f, 1.5f, 3.0f, -2.0f, 0.1f,
                                     0.2f, 0.3f, 0.4f, 0.5f, 0.6f, 0.7f, 0.8f, 0.9f, -0.9f, 1.1f};
    const int64_t ms[] = {1, 3, 4, 7, 8, 9, 17, 19};
    const int64_t ns[] = {1, 5, 8, 15, 16, 17, 31, 32, 33, 47, 64, 75};
    const int64_t ks[] = {0, 1, 3, 16, 21};
    const nn_gemm_out outs[] = {{0, 0, NULL}, {7, 5, bias}, {3, 1, NULL}, {16, 14, bias},
                                {30, 28, NULL}};
    const enum nn_gemm_isa isas[] = {NN_GEMM_AUTO, NN_GEMM_REF, NN_GEMM_AVX2, NN_GEMM_AVX512};
    int ran = 0;
    (void)state;

    for (size_t i = 0; i < sizeof a / sizeof a[0]; i++)
        a[i] = (float)((int)(i * 37 % 101) - 50) / 50.0f;
    for (size_t i = 0; i < sizeof b / sizeof b[0]; i++)
        b[i] = (float)((int)(i * 53 % 97) - 48) / 48.0f;
    for (size_t s = 0; s < sizeof isas / sizeof isas[0]; s++)
    for (size_t oi = 0; oi < sizeof outs / sizeof outs[0]; oi++)
    for (int64_t taps = 1; taps <= MAXT; taps += 2)
    for (size_t mi = 0; mi < sizeof ms / sizeof ms[0]; mi++)
    for (size_t ni = 0; ni < sizeof ns / sizeof ns[0]; ni++)
    for (size_t ki = 0; ki < sizeof ks / sizeof ks[0]; ki++) {
        int64_t m = ms[mi], n = ns[ni], k = ks[ki], a_tap = MAXM * LDA;
        const nn_gemm_out *o = outs[oi].wq ? &outs[oi] : NULL;
        int64_t wq = o ? o->wq : n, ow = o ? o->ow : n;
        const float *bt[MAXT];
        for (int64_t t = 0; t < taps; t++)
            bt[t] = b + t * 11 + (taps - 1 - t) * LDB / 2; /* overlapping, unaligned */
        for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
            c[i] = 1234.5f;
            want[i] = 1234.5;
            mag[i] = 0.0;
        }
        if (!nn_gemm_taps_isa(isas[s], m, n, k, taps, a, LDA, a_tap, bt, LDB, c, LDC, o))
            break; /* this CPU lacks the kernel */
        ran++;
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++) {
                int64_t q = j / wq * ow + j % wq;
                if (j % wq >= ow)
                    continue;
                want[i * LDC + q] = o && o->bias ? o->bias[i] : 0.0;
                for (int64_t t = 0; t < taps; t++)
                    for (int64_t kk = 0; kk < k; kk++) {
                        double p = (double)a[t * a_tap + i * LDA + kk] * bt[t][kk * LDB + j];
                        want[i * LDC + q] += p;
                        mag[i * LDC + q] += fabs(p);
                    }
            }
        for (int64_t i = 0; i < MAXM * LDC; i++)
            if (fabs(c[i] - want[i]) > 1e-6 * (mag[i] + 1.0))
                fail_msg("isa %d out %d m %lld n %lld k %lld taps %lld: c[%lld] = %g, want %g",
                         (int)isas[s], (int)oi, (long long)m, (long long)n, (long long)k,
                         (long long)taps, (long long)i, c[i], want[i]);
    }
    assert_true(ran > 0);
    /* nothing to do: c untouched */
    c[0] = 7.0f;
    assert_int_equal(nn_gemm_taps_isa(NN_GEMM_REF, 0, 5, 3, 1, a, LDA, 0, (const float *const *)&a,
                                      LDB, c, LDC, NULL), 1);
    assert_true(c[0] == 7.0f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conv_onnx_example),
        cmocka_unit_test(test_conv_2d_variants),
        cmocka_unit_test(test_conv_1d_3d),
        cmocka_unit_test(test_conv_threads),
        cmocka_unit_test(test_conv_thread_count_changes),
        cmocka_unit_test(test_conv_scratch_and_flops),
        cmocka_unit_test(test_conv_errors),
        cmocka_unit_test(test_convt_onnx_example),
        cmocka_unit_test(test_convt_variants),
        cmocka_unit_test(test_gemm_forms),
        cmocka_unit_test(test_gemm_errors),
        cmocka_unit_test(test_gemm_f64),
        cmocka_unit_test(test_matmul_forms),
        cmocka_unit_test(test_matmul_int_and_errors),
        cmocka_unit_test(test_maxpool),
        cmocka_unit_test(test_avgpool),
        cmocka_unit_test(test_pool_threads),
        cmocka_unit_test(test_maxpool_examples),
        cmocka_unit_test(test_global_pools),
        cmocka_unit_test(test_batchnorm_inference),
        cmocka_unit_test(test_batchnorm_per_element),
        cmocka_unit_test(test_batchnorm_training),
        cmocka_unit_test(test_layernorm),
        cmocka_unit_test(test_layernorm_errors),
        cmocka_unit_test(test_instancenorm),
        cmocka_unit_test(test_rows_cover_opsets),
        cmocka_unit_test(test_exec_small_cnn),
        cmocka_unit_test(test_nn_gemm_taps_odd_shapes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
