/* Losses: known values, torch reference values, error paths, and every
 * gradient against central differences of the loss itself. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "pare/alloc.h"
#include "pare/loss.h"

static pare_tensor view(float *data, int ndim, const int64_t *dims)
{
    pare_tensor t;
    pare_tensor_view(&t, PARE_F32, ndim, dims, data);
    return t;
}

static void fill(float *x, int64_t n, uint64_t seed, float lo, float hi)
{
    for (int64_t i = 0; i < n; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        x[i] = lo + (hi - lo) * (float)(seed >> 40) / (float)(1 << 24);
    }
}

/* ---- a generic finite-difference check ------------------------------------------ */

/* Evaluates the loss at the current inputs; grads (may be NULL) receive the
   analytic gradients of the inputs under test. */
typedef double (*loss_fn)(void *ctx, pare_tensor *const *grads);

/* Central differences of fn over every element of each input in xs, in
   double: the step actually taken is measured after rounding to float, so
   the quotient is exact up to the loss's own rounding. */
static void fd_check(loss_fn fn, void *ctx, pare_tensor *const *xs, int n_x, double tol)
{
    pare_tensor *grads[4] = {0};

    for (int k = 0; k < n_x; k++)
        grads[k] = pare_tensor_new(PARE_F32, xs[k]->ndim, xs[k]->dims);
    fn(ctx, grads);
    for (int k = 0; k < n_x; k++) {
        float *x = pare_tensor_f32(xs[k]);
        for (int64_t i = 0; i < pare_tensor_numel(xs[k]); i++) {
            float x0 = x[i];
            float hi = x0 + 1e-2f, lo = x0 - 1e-2f;
            double lp, lm, num, ana = pare_tensor_f32(grads[k])[i];
            x[i] = hi;
            lp = fn(ctx, NULL);
            x[i] = lo;
            lm = fn(ctx, NULL);
            x[i] = x0;
            num = (lp - lm) / ((double)hi - (double)lo);
            if (fabs(num - ana) > tol * (1.0 + fabs(num))) {
                print_error("input %d element %lld: analytic %.9g, numeric %.9g\n", k,
                            (long long)i, ana, num);
                fail();
            }
        }
        pare_tensor_free(grads[k]);
    }
}

/* ---- names ---------------------------------------------------------------------------- */

static void test_kind_names_and_parse(void **state)
{
    pare_loss_kind k;
    pare_error err = {0};
    (void)state;

    assert_int_equal(pare_loss_kind_parse("soft_label", &k, &err), PARE_OK);
    assert_int_equal(k, PARE_LOSS_SOFT_LABEL);
    assert_int_equal(pare_loss_kind_parse("MSE", &k, &err), PARE_OK);
    assert_int_equal(k, PARE_LOSS_L2);
    assert_int_equal(pare_loss_kind_parse("l2", &k, &err), PARE_OK);
    assert_int_equal(k, PARE_LOSS_L2);
    assert_int_equal(pare_loss_kind_parse("Cosine", &k, &err), PARE_OK);
    assert_int_equal(k, PARE_LOSS_COSINE);
    assert_int_equal(pare_loss_kind_parse("fsp", &k, &err), PARE_OK);
    assert_int_equal(k, PARE_LOSS_FSP);
    assert_int_equal(pare_loss_kind_parse("cross_entropy", &k, &err), PARE_OK);
    assert_int_equal(k, PARE_LOSS_CROSS_ENTROPY);
    for (int i = 0; i < PARE_LOSS_KIND_COUNT; i++) {
        assert_int_equal(pare_loss_kind_parse(pare_loss_kind_name((pare_loss_kind)i), &k, &err),
                         PARE_OK);
        assert_int_equal(k, i);
    }

    k = PARE_LOSS_FSP;
    assert_int_equal(pare_loss_kind_parse("soft_lable", &k, &err), PARE_EINPUT);
    assert_int_equal(k, PARE_LOSS_FSP);
    assert_string_equal(err.msg, "unknown loss 'soft_lable'");
    assert_string_equal(err.hint, "did you mean 'soft_label'?");
    assert_string_equal(err.where, "");
    assert_int_equal(pare_loss_kind_parse("wasserstein", &k, &err), PARE_EINPUT);
    assert_string_equal(err.hint, "the losses are cross_entropy, soft_label, l2 (mse), cosine, fsp");
}

/* ---- cross-entropy ----------------------------------------------------------------------- */

static void test_ce_uniform_is_log_c(void **state)
{
    float x[3 * 10], dx[3 * 10];
    int64_t dims[] = { 3, 10 }, labels[] = { 0, 4, 9 };
    pare_tensor t = view(x, 2, dims), dt = view(dx, 2, dims);
    double loss = -1;
    pare_error err = {0};
    (void)state;

    for (int i = 0; i < 30; i++) {
        x[i] = 0.75f;
        dx[i] = 1.0f; /* the gradient is added, not stored */
    }
    assert_int_equal(pare_loss_cross_entropy(&t, labels, 0.0f, 1.0f, &loss, &dt, &err), PARE_OK);
    assert_float_equal(loss, log(10.0), 1e-12);
    for (int b = 0; b < 3; b++)
        for (int c = 0; c < 10; c++)
            assert_float_equal(dx[b * 10 + c], 1.0 + (0.1 - (c == labels[b])) / 3.0, 1e-7);

    /* the weight scales both the value and the gradient */
    memset(dx, 0, sizeof dx);
    assert_int_equal(pare_loss_cross_entropy(&t, labels, 0.0f, 0.5f, &loss, &dt, &err), PARE_OK);
    assert_float_equal(loss, 0.5 * log(10.0), 1e-12);
    assert_float_equal(dx[0], 0.5 * (0.1 - 1.0) / 3.0, 1e-7);
}

static void test_ce_label_smoothing_values(void **state)
{
    float x[] = { 1, 2, 3 };
    float x2[] = { 0.3f, -1.2f, 2.0f, 0.5f, 1.5f, 0.1f, -0.4f, -2.2f };
    int64_t d1[] = { 1, 3 }, d2[] = { 2, 4 }, l1[] = { 0 }, l2[] = { 2, 3 };
    pare_tensor t1 = view(x, 2, d1), t2 = view(x2, 2, d2);
    double loss;
    pare_error err = {0};
    (void)state;

    /* by hand: lse = log(e + e^2 + e^3); loss = -(0.9 + 0.1/3) logp_0 - 0.1/3 (logp_1 + logp_2) */
    {
        double lse = log(exp(1.0) + exp(2.0) + exp(3.0));
        double want = -(0.9 + 0.1 / 3) * (1 - lse) - 0.1 / 3 * ((2 - lse) + (3 - lse));
        assert_int_equal(pare_loss_cross_entropy(&t1, l1, 0.1f, 1.0f, &loss, NULL, &err), PARE_OK);
        assert_float_equal(loss, want, 1e-7);
        assert_float_equal(loss, 2.30760596444438, 1e-7);
    }
    /* torch 1.13: F.cross_entropy(x.double(), [2, 3], label_smoothing=0.2) */
    assert_int_equal(pare_loss_cross_entropy(&t2, l2, 0.2f, 1.0f, &loss, NULL, &err), PARE_OK);
    assert_float_equal(loss, 2.1752410790469776, 1e-6);
}

static void test_ce_bad_label_names_row(void **state)
{
    float x[2 * 10] = {0}, dx[2 * 10] = {0};
    int64_t dims[] = { 2, 10 }, labels[] = { 3, 10 }, neg[] = { -1, 0 };
    pare_tensor t = view(x, 2, dims), dt = view(dx, 2, dims);
    double loss = 42;
    pare_error err = {0};
    (void)state;

    assert_int_equal(pare_loss_cross_entropy(&t, labels, 0.0f, 1.0f, &loss, &dt, &err), PARE_EINPUT);
    assert_string_equal(err.msg, "cross_entropy: label 10 of row 1 is outside [0, 10)");
    assert_string_equal(err.hint, "the model has 10 classes; check the dataset's labels");
    assert_float_equal(loss, 42, 0);
    for (int i = 0; i < 20; i++)
        assert_true(dx[i] == 0.0f);
    assert_int_equal(pare_loss_cross_entropy(&t, neg, 0.0f, 1.0f, &loss, &dt, &err), PARE_EINPUT);
    assert_string_equal(err.msg, "cross_entropy: label -1 of row 0 is outside [0, 10)");

    /* logits must be 2-D, and the gradient must match */
    {
        int64_t d3[] = { 2, 5, 2 }, dg[] = { 2, 9 };
        pare_tensor t3 = view(x, 3, d3), bad = view(dx, 2, dg);
        assert_int_equal(pare_loss_cross_entropy(&t3, labels, 0, 1, &loss, NULL, &err), PARE_EINPUT);
        assert_string_equal(err.msg, "cross_entropy: logits must be (batch, classes), got [2, 5, 2]");
        assert_int_equal(pare_loss_cross_entropy(&t, labels, 0, 1, &loss, &bad, &err), PARE_EINPUT);
        assert_string_equal(err.msg,
                            "cross_entropy: shape mismatch: logits [2, 10] vs gradient of logits [2, 9]");
    }
}

typedef struct ce_ctx {
    pare_tensor *x;
    const int64_t *labels;
    float eps, weight;
} ce_ctx;

static double ce_fn(void *p, pare_tensor *const *g)
{
    ce_ctx *c = p;
    double loss = 0;
    pare_error err = {0};
    assert_int_equal(pare_loss_cross_entropy(c->x, c->labels, c->eps, c->weight, &loss,
                                             g ? g[0] : NULL, &err), PARE_OK);
    return loss;
}

static void test_ce_gradient(void **state)
{
    float x[4 * 7];
    int64_t dims[] = { 4, 7 }, labels[] = { 0, 6, 3, 3 };
    pare_tensor t = view(x, 2, dims);
    pare_tensor *xs[] = { &t };
    ce_ctx c = { &t, labels, 0.0f, 1.0f };
    (void)state;

    fill(x, 28, 1, -3, 3);
    fd_check(ce_fn, &c, xs, 1, 1e-4);
    c.eps = 0.15f;
    c.weight = 0.7f;
    fd_check(ce_fn, &c, xs, 1, 1e-4);
}

/* ---- mse ------------------------------------------------------------------------------------ */

typedef struct pair_ctx {
    pare_tensor *a, *b;     /* teacher/target, student/prediction */
    float T, weight;
} pair_ctx;

static double mse_fn(void *p, pare_tensor *const *g)
{
    pair_ctx *c = p;
    double loss = 0;
    pare_error err = {0};
    assert_int_equal(pare_loss_mse(c->b, c->a, c->weight, &loss, g ? g[0] : NULL, &err), PARE_OK);
    return loss;
}

static void test_mse_value_gradient_and_shape_error(void **state)
{
    float p[] = { 1, 2, 3, 4, 5, 6 }, q[] = { 1, 0, 3, 4, 5, 9 }, dp[6] = {0};
    int64_t d23[] = { 2, 3 }, d32[] = { 3, 2 };
    pare_tensor tp = view(p, 2, d23), tq = view(q, 2, d23), bad = view(q, 2, d32);
    pare_tensor dt = view(dp, 2, d23);
    pare_tensor *xs[] = { &tp };
    pair_ctx c = { &tq, &tp, 1, 0.5f };
    double loss = 0;
    pare_error err = {0};
    (void)state;

    assert_int_equal(pare_loss_mse(&tp, &tq, 1.0f, &loss, &dt, &err), PARE_OK);
    assert_float_equal(loss, (4.0 + 9.0) / 6.0, 1e-12);
    assert_float_equal(dp[1], 2.0 * 2.0 / 6.0, 1e-7);
    assert_float_equal(dp[5], 2.0 * -3.0 / 6.0, 1e-7);
    assert_float_equal(dp[0], 0.0, 0);

    assert_int_equal(pare_loss_mse(&tp, &bad, 1.0f, &loss, NULL, &err), PARE_EINPUT);
    assert_string_equal(err.msg, "mse: shape mismatch: prediction [2, 3] vs target [3, 2]");

    fill(q, 6, 7, -1, 1);
    fd_check(mse_fn, &c, xs, 1, 1e-4);
}

/* ---- soft label ---------------------------------------------------------------------------- */

static double soft_fn(void *p, pare_tensor *const *g)
{
    pair_ctx *c = p;
    double loss = 0;
    pare_error err = {0};
    assert_int_equal(pare_loss_soft_label(c->a, c->b, c->T, c->weight, &loss, g ? g[0] : NULL, &err),
                     PARE_OK);
    return loss;
}

static void test_soft_label_values(void **state)
{
    float s[] = { 0.3f, -1.2f, 2.0f, 0.5f, 1.5f, 0.1f, -0.4f, -2.2f };
    float t[] = { 1.0f, 0.5f, -0.3f, 0.2f, 0.0f, -1.0f, 2.0f, 1.0f };
    float ds[8] = {0};
    int64_t dims[] = { 2, 4 };
    pare_tensor ts = view(s, 2, dims), tt = view(t, 2, dims), dt = view(ds, 2, dims);
    double loss = -1;
    pare_error err = {0};
    (void)state;

    /* identical logits: zero loss, zero gradient */
    assert_int_equal(pare_loss_soft_label(&ts, &ts, 3.0f, 1.0f, &loss, &dt, &err), PARE_OK);
    assert_float_equal(loss, 0.0, 1e-12);
    for (int i = 0; i < 8; i++)
        assert_float_equal(ds[i], 0.0, 1e-7);

    /* torch 1.13: F.kl_div(log_softmax(s/2), softmax(t/2), reduction='batchmean') * 4 */
    assert_int_equal(pare_loss_soft_label(&tt, &ts, 2.0f, 1.0f, &loss, NULL, &err), PARE_OK);
    assert_float_equal(loss, 1.4812831679450693, 1e-6);
    assert_int_equal(pare_loss_soft_label(&tt, &ts, 2.0f, 0.25f, &loss, NULL, &err), PARE_OK);
    assert_float_equal(loss, 0.25 * 1.4812831679450693, 1e-6);

    assert_int_equal(pare_loss_soft_label(&tt, &ts, 0.0f, 1.0f, &loss, NULL, &err), PARE_EINPUT);
    assert_string_equal(err.msg, "soft_label: temperature 0 must be positive");
}

static void test_soft_label_gradient(void **state)
{
    float s[3 * 5], t[3 * 5], s4[2 * 3 * 2 * 2], t4[2 * 3 * 2 * 2];
    int64_t d2[] = { 3, 5 }, d4[] = { 2, 3, 2, 2 };
    pare_tensor ts = view(s, 2, d2), tt = view(t, 2, d2), ts4 = view(s4, 4, d4), tt4 = view(t4, 4, d4);
    pare_tensor *xs[] = { &ts }, *xs4[] = { &ts4 };
    pair_ctx c = { &tt, &ts, 1.0f, 1.0f }, c4 = { &tt4, &ts4, 2.5f, 0.8f };
    (void)state;

    fill(s, 15, 3, -2, 2);
    fill(t, 15, 4, -2, 2);
    fd_check(soft_fn, &c, xs, 1, 1e-4);
    c.T = 4.0f;
    fd_check(soft_fn, &c, xs, 1, 1e-4);
    fill(s4, 24, 5, -2, 2);
    fill(t4, 24, 6, -2, 2);
    fd_check(soft_fn, &c4, xs4, 1, 1e-4);

    /* rank 4: softmax over axis 1, mean over batch and positions = mean of the
       per-position (B, C) losses */
    {
        double whole, parts = 0;
        pare_error err = {0};
        assert_int_equal(pare_loss_soft_label(&tt4, &ts4, 2.0f, 1.0f, &whole, NULL, &err), PARE_OK);
        for (int b = 0; b < 2; b++)
            for (int k = 0; k < 4; k++) {
                float a[3], z[3];
                int64_t d[] = { 1, 3 };
                pare_tensor va = view(a, 2, d), vz = view(z, 2, d);
                double l;
                for (int ch = 0; ch < 3; ch++) {
                    a[ch] = t4[b * 12 + ch * 4 + k];
                    z[ch] = s4[b * 12 + ch * 4 + k];
                }
                assert_int_equal(pare_loss_soft_label(&va, &vz, 2.0f, 1.0f, &l, NULL, &err), PARE_OK);
                parts += l / 8.0;
            }
        assert_float_equal(whole, parts, 1e-12);
    }
}

/* ---- cosine -------------------------------------------------------------------------------- */

static double cos_fn(void *p, pare_tensor *const *g)
{
    pair_ctx *c = p;
    double loss = 0;
    pare_error err = {0};
    assert_int_equal(pare_loss_cosine(c->a, c->b, c->weight, &loss, g ? g[0] : NULL, &err), PARE_OK);
    return loss;
}

static void test_cosine_values_and_gradient(void **state)
{
    float t[] = { 1, 0, 0, 1, 2, 3 }, s[] = { 0, 1, 0, -1, -2, -3 };
    float x[] = { 0.3f, -1.2f, 2.0f, 0.5f, 1.5f, 0.1f, -0.4f, -2.2f };
    float y[] = { 1.0f, 0.5f, -0.3f, 0.2f, 0.0f, -1.0f, 2.0f, 1.0f };
    int64_t d1[] = { 2, 3 }, d2[] = { 2, 4 }, d4[] = { 3, 2, 2, 2 };
    pare_tensor tt = view(t, 2, d1), ts = view(s, 2, d1), tx = view(x, 2, d2), ty = view(y, 2, d2);
    double loss;
    pare_error err = {0};
    (void)state;

    /* orthogonal (1) and opposite (2) samples: mean 1.5 */
    assert_int_equal(pare_loss_cosine(&tt, &ts, 1.0f, &loss, NULL, &err), PARE_OK);
    assert_float_equal(loss, 1.5, 1e-12);
    assert_int_equal(pare_loss_cosine(&tt, &tt, 1.0f, &loss, NULL, &err), PARE_OK);
    assert_float_equal(loss, 0.0, 1e-12);
    /* torch 1.13: (1 - F.cosine_similarity(y, x)).mean() */
    assert_int_equal(pare_loss_cosine(&ty, &tx, 1.0f, &loss, NULL, &err), PARE_OK);
    assert_float_equal(loss, 1.3764789055461066, 1e-6);
    /* a zero student is guarded, not a nan */
    {
        float z[6] = {0};
        pare_tensor tz = view(z, 2, d1);
        assert_int_equal(pare_loss_cosine(&tt, &tz, 1.0f, &loss, NULL, &err), PARE_OK);
        assert_float_equal(loss, 1.0, 1e-12);
    }
    {
        float a[24], b[24];
        pare_tensor ta = view(a, 4, d4), tb = view(b, 4, d4);
        pare_tensor *xs[] = { &tb };
        pair_ctx c = { &ta, &tb, 1, 0.6f };
        fill(a, 24, 8, -1, 1);
        fill(b, 24, 9, -1, 1);
        fd_check(cos_fn, &c, xs, 1, 1e-4);
    }
}

/* ---- fsp ------------------------------------------------------------------------------------------ */

typedef struct fsp_ctx {
    pare_tensor *ta, *tb, *sa, *sb;
    float weight;
} fsp_ctx;

static double fsp_fn(void *p, pare_tensor *const *g)
{
    fsp_ctx *c = p;
    double loss = 0;
    pare_error err = {0};
    assert_int_equal(pare_loss_fsp(c->ta, c->tb, c->sa, c->sb, c->weight, &loss,
                                   g ? g[0] : NULL, g ? g[1] : NULL, &err), PARE_OK);
    return loss;
}

static void test_fsp_value(void **state)
{
    /* one sample, C1 = 1, C2 = 2, H W = 2 (as 1 x 2) */
    float ta[] = { 1, 2 }, tb[] = { 3, 4, 5, 6 };
    float sa[] = { 1, 1 }, sb[] = { 1, 1, 2, 2 };
    int64_t da[] = { 1, 1, 1, 2 }, db[] = { 1, 2, 1, 2 };
    pare_tensor vta = view(ta, 4, da), vtb = view(tb, 4, db), vsa = view(sa, 4, da), vsb = view(sb, 4, db);
    double loss;
    pare_error err = {0};
    (void)state;

    /* G_t = [(3 + 8) / 2, (5 + 12) / 2] = [5.5, 8.5]; G_s = [1, 2];
       loss = ((4.5)^2 + (6.5)^2) / 2 */
    assert_int_equal(pare_loss_fsp(&vta, &vtb, &vsa, &vsb, 1.0f, &loss, NULL, NULL, &err), PARE_OK);
    assert_float_equal(loss, (4.5 * 4.5 + 6.5 * 6.5) / 2.0, 1e-12);
    assert_int_equal(pare_loss_fsp(&vta, &vtb, &vta, &vtb, 1.0f, &loss, NULL, NULL, &err), PARE_OK);
    assert_float_equal(loss, 0.0, 0);
}

static void test_fsp_gradient_and_errors(void **state)
{
    /* teacher at 3 x 3, student at 2 x 2: the matrices are (C1, C2) either way */
    float ta[2 * 3 * 9], tb[2 * 2 * 9], sa[2 * 3 * 4], sb[2 * 2 * 4];
    int64_t dta[] = { 2, 3, 3, 3 }, dtb[] = { 2, 2, 3, 3 }, dsa[] = { 2, 3, 2, 2 }, dsb[] = { 2, 2, 2, 2 };
    pare_tensor vta = view(ta, 4, dta), vtb = view(tb, 4, dtb), vsa = view(sa, 4, dsa), vsb = view(sb, 4, dsb);
    pare_tensor *xs[] = { &vsa, &vsb };
    fsp_ctx c = { &vta, &vtb, &vsa, &vsb, 0.9f };
    double loss = 0;
    pare_error err = {0};
    (void)state;

    fill(ta, 54, 11, -1, 1);
    fill(tb, 36, 12, -1, 1);
    fill(sa, 24, 13, -1, 1);
    fill(sb, 16, 14, -1, 1);
    fd_check(fsp_fn, &c, xs, 2, 1e-4);

    /* spatial mismatch inside the student pair */
    assert_int_equal(pare_loss_fsp(&vta, &vtb, &vsa, &vtb, 1.0f, &loss, NULL, NULL, &err), PARE_EINPUT);
    assert_string_equal(err.msg,
                        "fsp: student [2, 3, 2, 2] and student [2, 2, 3, 3] need the same batch and "
                        "spatial size");
    assert_string_equal(err.hint,
                        "pick two layers of the same resolution, (N, C1, H, W) and (N, C2, H, W)");
    /* channel counts must agree between teacher and student */
    assert_int_equal(pare_loss_fsp(&vta, &vtb, &vsb, &vsa, 1.0f, &loss, NULL, NULL, &err), PARE_EINPUT);
    assert_string_equal(err.msg,
                        "fsp: teacher [2, 3, 3, 3] x [2, 2, 3, 3] and student [2, 2, 2, 2] x "
                        "[2, 3, 2, 2] give FSP matrices of different shapes");
}

static void test_non_f32_is_unsupported(void **state)
{
    int32_t d[4] = {0};
    float f[4] = {0};
    int64_t dims[] = { 2, 2 };
    pare_tensor ti, tf = view(f, 2, dims);
    double loss;
    pare_error err = {0};
    (void)state;

    pare_tensor_view(&ti, PARE_I32, 2, dims, d);
    assert_int_equal(pare_loss_mse(&ti, &tf, 1, &loss, NULL, &err), PARE_EUNSUPPORTED);
    assert_string_equal(err.msg, "mse: prediction is int32, expected float32");
}

static void test_out_of_memory_leaves_gradient_alone(void **state)
{
    float s[4] = { 1, 2, 3, 4 }, t[4] = { 4, 3, 2, 1 }, ds[4] = {0};
    int64_t dims[] = { 2, 2, 1, 1 };
    pare_tensor ts = view(s, 4, dims), tt = view(t, 4, dims), dt = view(ds, 4, dims);
    double loss = 5;
    pare_error err = {0};
    (void)state;

    pare_alloc_fail_at(1);
    assert_int_equal(pare_loss_soft_label(&tt, &ts, 1.0f, 1.0f, &loss, &dt, &err), PARE_ENOMEM);
    assert_string_equal(err.msg, "soft_label: out of memory");
    for (long nth = 1; nth <= 2; nth++) {
        pare_alloc_fail_at(nth);
        assert_int_equal(pare_loss_fsp(&tt, &tt, &ts, &ts, 1.0f, &loss, &dt, NULL, &err), PARE_ENOMEM);
    }
    pare_alloc_fail_at(0);
    assert_float_equal(loss, 5, 0);
    for (int i = 0; i < 4; i++)
        assert_true(ds[i] == 0.0f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kind_names_and_parse),
        cmocka_unit_test(test_ce_uniform_is_log_c),
        cmocka_unit_test(test_ce_label_smoothing_values),
        cmocka_unit_test(test_ce_bad_label_names_row),
        cmocka_unit_test(test_ce_gradient),
        cmocka_unit_test(test_mse_value_gradient_and_shape_error),
        cmocka_unit_test(test_soft_label_values),
        cmocka_unit_test(test_soft_label_gradient),
        cmocka_unit_test(test_cosine_values_and_gradient),
        cmocka_unit_test(test_fsp_value),
        cmocka_unit_test(test_fsp_gradient_and_errors),
        cmocka_unit_test(test_non_f32_is_unsupported),
        cmocka_unit_test(test_out_of_memory_leaves_gradient_alone),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
