/* Optimizers against PyTorch numbers, hand-derived values, a double-precision
 * reimplementation, clipping, checkpoint state round trips and errors. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <omp.h>

#include "pare/alloc.h"
#include "pare/optim.h"

/* The torch reference problem: a (2, 3) parameter starting at P0 and the
   gradient of step t (0-based) g_t[k] = sin(1 + k + 0.7 t) (k + 1) / 2. */
static const float P0[6] = { 0.5f, -1.0f, 0.25f, 2.0f, -0.75f, 0.0f };

static void ref_grad(int t, float *g)
{
    for (int k = 0; k < 6; k++)
        g[k] = (float)(sin(1.0 + k + 0.7 * t) * (k + 1) * 0.5);
}

typedef struct run_result {
    float p[6];
    double norms[8];
} run_result;

/* Runs `steps` steps at lr 0.1 from P0; lrs/beta1s (may be NULL) per step. */
static run_result run_ref_problem(const pare_optim_opts *opts, int steps, const double *lrs,
                                  const double *beta1s)
{
    run_result r;
    float g[6];
    int64_t dims[] = { 2, 3 };
    pare_tensor p, gt;
    const pare_tensor *cp[] = { &p };
    pare_tensor *pp[] = { &p }, *gp[] = { &gt };
    pare_optim *o = NULL;
    pare_error err = {0};

    memcpy(r.p, P0, sizeof r.p);
    pare_tensor_view(&p, PARE_F32, 2, dims, r.p);
    pare_tensor_view(&gt, PARE_F32, 2, dims, g);
    assert_int_equal(pare_optim_new(opts, 1, cp, &o, &err), PARE_OK);
    for (int t = 0; t < steps; t++) {
        ref_grad(t, g);
        assert_int_equal(pare_optim_step(o, pp, gp, lrs ? lrs[t] : 0.1, beta1s ? beta1s[t] : NAN,
                                         &r.norms[t], &err), PARE_OK);
    }
    assert_int_equal(pare_optim_get_step(o), steps);
    pare_optim_free(o);
    return r;
}

static void assert_params(const float *got, const float *want, double rel)
{
    for (int k = 0; k < 6; k++) {
        if (fabs((double)got[k] - want[k]) > rel * (1e-3 + fabs(want[k]))) {
            print_error("element %d: got %.9g want %.9g\n", k, got[k], want[k]);
            fail();
        }
    }
}

/* Expected values: PyTorch 1.13.0 (Debian python3-torch), float32, three
   steps of the problem above, lr 0.1:
     p = torch.nn.Parameter(torch.tensor(P0).reshape(2, 3)); opt = <optimizer>([p])
     for t in range(3): p.grad = g_t; [clip_grad_norm_([p], 1.0)]; opt.step()
   printed with "%.9g". */
static void test_torch_reference_steps(void **state)
{
    static const struct {
        const char *what;
        pare_optim_kind kind;
        double momentum, wd, clip;
        bool nesterov;
        float want[6];
    } cases[] = {
        { "SGD(lr=0.1)", PARE_OPTIM_SGD, 0, 0, 0, false,
          { 0.374570042f, -1.10811365f, 0.451047719f, 2.505898f, -0.401734859f, -0.307242751f } },
        { "SGD(weight_decay=0.01)", PARE_OPTIM_SGD, 0, 0.01, 0, false,
          { 0.373205245f, -1.10489202f, 0.450261325f, 2.49940133f, -0.400103986f, -0.307288855f } },
        { "SGD(momentum=0.9, weight_decay=0.01)", PARE_OPTIM_SGD, 0.9, 0.01, 0, false,
          { 0.255406201f, -1.29607427f, 0.484977961f, 2.93272519f, 0.135265037f, -0.273409069f } },
        { "SGD(momentum=0.9, nesterov=True)", PARE_OPTIM_SGD, 0.9, 0, 0, true,
          { 0.156769469f, -1.3799746f, 0.663788199f, 3.35613775f, 0.392163694f, -0.553133667f } },
        { "Adam(lr=0.1)", PARE_OPTIM_ADAM, 0, 0, 0, false,
          { 0.201795876f, -1.24568737f, 0.281120151f, 2.29894567f, -0.488369942f, 0.0121411458f } },
        { "Adam(weight_decay=0.01)", PARE_OPTIM_ADAM, 0, 0.01, 0, false,
          { 0.201793492f, -1.24413121f, 0.280724347f, 2.29890966f, -0.488165259f, 0.0120914951f } },
        { "AdamW(weight_decay=0.01)", PARE_OPTIM_ADAMW, 0, 0.01, 0, false,
          { 0.200597376f, -1.24239814f, 0.280516148f, 2.29265213f, -0.486417294f, 0.0119644478f } },
        { "AdamW(weight_decay=0.01) + clip_grad_norm_(1.0)", PARE_OPTIM_ADAMW, 0, 0.01, 1.0, false,
          { 0.202246994f, -1.2463845f, 0.282807648f, 2.29093957f, -0.48386234f, 0.00837272406f } },
    };
    (void)state;

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        pare_optim_opts o;
        run_result r;
        pare_optim_opts_init(&o, cases[i].kind);
        o.momentum = cases[i].momentum;
        o.weight_decay = cases[i].wd;
        o.grad_clip_norm = cases[i].clip;
        o.nesterov = cases[i].nesterov;
        r = run_ref_problem(&o, 3, NULL, NULL);
        print_message("%s\n", cases[i].what);
        assert_params(r.p, cases[i].want, 2e-6);
        if (cases[i].clip > 0) {
            /* torch's clip_grad_norm_ return values (norms before clipping) */
            assert_float_equal(r.norms[0], 3.128802537918091, 1e-5);
            assert_float_equal(r.norms[1], 2.9034454822540283, 1e-5);
            assert_float_equal(r.norms[2], 3.45824933052063, 1e-5);
        }
    }
}

/* PyTorch 1.13.0: Adam(lr=0.1) driven by OneCycleLR(max_lr=0.1, total_steps=10),
   five steps (sched.step() after each opt.step()); the scheduler sets lr and
   betas[0] per step. lrs/beta1s below recompute torch's param_groups values
   (test_schedule checks the schedule itself against torch). */
static void test_torch_adam_with_onecycle_momentum(void **state)
{
    static const float want[6] = { 0.315333545f, -0.976899564f, 0.51039201f, 2.20636225f,
                                   -0.737677455f, -0.24179934f };
    double lrs[5], b1s[5];
    pare_optim_opts o;
    run_result r;
    (void)state;

    /* OneCycle, 10 steps, pct 0.3: phase 1 ends at step 2 */
    for (int t = 0; t < 5; t++) {
        double e1 = 0.3 * 10 - 1, e2 = 9, x, lo = 0.1 / 25, hi = 0.1, mn = lo / 1e4;
        if (t <= e1) {
            x = t / e1;
            lrs[t] = hi + (lo - hi) / 2 * (cos(M_PI * x) + 1);
            b1s[t] = 0.85 + (0.95 - 0.85) / 2 * (cos(M_PI * x) + 1);
        } else {
            x = (t - e1) / (e2 - e1);
            lrs[t] = mn + (hi - mn) / 2 * (cos(M_PI * x) + 1);
            b1s[t] = 0.95 + (0.85 - 0.95) / 2 * (cos(M_PI * x) + 1);
        }
    }
    pare_optim_opts_init(&o, PARE_OPTIM_ADAM);
    r = run_ref_problem(&o, 5, lrs, b1s);
    assert_params(r.p, want, 2e-6);

    /* the same with SGD(lr=0.1, momentum=0.9): torch cycles 'momentum' */
    {
        static const float want_sgd[6] = { 0.213097274f, -1.04612136f, 1.03594983f, 3.22464418f,
                                           -0.405721366f, -1.39053106f };
        pare_optim_opts_init(&o, PARE_OPTIM_SGD);
        o.momentum = 0.9;
        r = run_ref_problem(&o, 5, lrs, b1s);
        assert_params(r.p, want_sgd, 2e-6);
    }
}

/* Hand-derivable cases on one scalar. */
static void test_hand_values(void **state)
{
    float p = 1.0f, g = 0.5f;
    int64_t one = 1;
    pare_tensor tp, tg;
    const pare_tensor *cp[] = { &tp };
    pare_tensor *pp[] = { &tp }, *gp[] = { &tg };
    pare_optim_opts opts;
    pare_optim *o = NULL;
    pare_error err = {0};
    (void)state;

    pare_tensor_view(&tp, PARE_F32, 1, &one, &p);
    pare_tensor_view(&tg, PARE_F32, 1, &one, &g);

    /* SGD momentum 0.9: step 1 buf = g = 0.5, p = 1 - 0.1 * 0.5 = 0.95;
       step 2 (g = 0.5) buf = 0.45 + 0.5 = 0.95, p = 0.95 - 0.095 = 0.855 */
    pare_optim_opts_init(&opts, PARE_OPTIM_SGD);
    opts.momentum = 0.9;
    assert_int_equal(pare_optim_new(&opts, 1, cp, &o, &err), PARE_OK);
    assert_int_equal(pare_optim_step(o, pp, gp, 0.1, NAN, NULL, &err), PARE_OK);
    assert_float_equal(p, 0.95, 1e-7);
    assert_int_equal(pare_optim_step(o, pp, gp, 0.1, NAN, NULL, &err), PARE_OK);
    assert_float_equal(p, 0.855, 1e-7);
    /* a per-step override (OneCycle) replaces the momentum:
       buf = 0.5 * 0.95 + 0.5 = 0.975, p = 0.855 - 0.0975 */
    assert_int_equal(pare_optim_step(o, pp, gp, 0.1, 0.5, NULL, &err), PARE_OK);
    assert_float_equal(p, 0.7575, 1e-6);
    assert_int_equal(pare_optim_step(o, pp, gp, 0.1, 1.0, NULL, &err), PARE_EINPUT);
    assert_string_equal(err.msg, "beta1 1 must be in [0, 1)");
    assert_float_equal(p, 0.7575, 1e-6);
    pare_optim_free(o);

    /* Adam's first step moves by lr * g / (|g| + eps) whatever |g| is */
    p = 1.0f;
    g = 123.0f;
    pare_optim_opts_init(&opts, PARE_OPTIM_ADAM);
    assert_int_equal(pare_optim_new(&opts, 1, cp, &o, &err), PARE_OK);
    assert_int_equal(pare_optim_step(o, pp, gp, 0.01, NAN, NULL, &err), PARE_OK);
    assert_float_equal(p, 0.99, 1e-7);
    pare_optim_free(o);

    /* AdamW with a zero gradient only decays: p *= 1 - lr wd, exactly */
    p = 2.0f;
    g = 0.0f;
    pare_optim_opts_init(&opts, PARE_OPTIM_ADAMW);
    assert_float_equal(opts.weight_decay, 0.01, 0);
    assert_int_equal(pare_optim_new(&opts, 1, cp, &o, &err), PARE_OK);
    assert_int_equal(pare_optim_step(o, pp, gp, 0.5, NAN, NULL, &err), PARE_OK);
    assert_true(p == 2.0f * (float)(1.0 - 0.5 * 0.01));
    pare_optim_free(o);

    /* Adam's L2 decay goes through the moments instead: a first step moves
       by lr regardless of wd (the sign of g + wd p is the sign of p) */
    p = 2.0f;
    pare_optim_opts_init(&opts, PARE_OPTIM_ADAM);
    opts.weight_decay = 0.1;
    assert_int_equal(pare_optim_new(&opts, 1, cp, &o, &err), PARE_OK);
    assert_int_equal(pare_optim_step(o, pp, gp, 0.5, NAN, NULL, &err), PARE_OK);
    assert_float_equal(p, 1.5, 1e-6);
    pare_optim_free(o);
}

static void test_clipping(void **state)
{
    float p[2] = { 0, 0 }, q[1] = { 0 }, g[2] = { 3, 0 }, h[1] = { 4 };
    int64_t d2 = 2, d1 = 1;
    pare_tensor tp, tq, tg, th;
    const pare_tensor *cp[] = { &tp, &tq };
    pare_tensor *pp[] = { &tp, &tq }, *gp[] = { &tg, &th };
    pare_optim_opts opts;
    pare_optim *o = NULL;
    double norm = 0;
    pare_error err = {0};
    (void)state;

    pare_tensor_view(&tp, PARE_F32, 1, &d2, p);
    pare_tensor_view(&tq, PARE_F32, 1, &d1, q);
    pare_tensor_view(&tg, PARE_F32, 1, &d2, g);
    pare_tensor_view(&th, PARE_F32, 1, &d1, h);
    pare_optim_opts_init(&opts, PARE_OPTIM_SGD);
    opts.grad_clip_norm = 1.0;
    assert_int_equal(pare_optim_new(&opts, 2, cp, &o, &err), PARE_OK);
    /* global norm over both tensors: 5; scaled by 1 / (5 + 1e-6) in place */
    assert_int_equal(pare_optim_step(o, pp, gp, 1.0, NAN, &norm, &err), PARE_OK);
    assert_float_equal(norm, 5.0, 1e-12);
    assert_float_equal(g[0], 3.0 / (5.0 + 1e-6), 1e-7);
    assert_float_equal(h[0], 4.0 / (5.0 + 1e-6), 1e-7);
    assert_float_equal(p[0], -0.6, 1e-6);
    assert_float_equal(q[0], -0.8, 1e-6);
    /* under the limit: untouched */
    g[0] = 0.3f;
    h[0] = 0.4f;
    assert_int_equal(pare_optim_step(o, pp, gp, 1.0, NAN, &norm, &err), PARE_OK);
    assert_float_equal(norm, 0.5, 1e-7);
    assert_true(g[0] == 0.3f && h[0] == 0.4f);
    pare_optim_free(o);
}

/* Saving every state entry after 3 steps and loading it into a fresh
   optimizer gives bit-identical subsequent steps. */
static void state_roundtrip(pare_optim_kind kind, double momentum)
{
    enum { N = 6 };
    float a[N], b[2];
    float a2[N] = {0}, b2[2] = {0};   /* parameters at the checkpoint */
    float fa[N], fb[2];               /* after 5 uninterrupted steps */
    float ga[N], gb[2];
    int64_t da[] = { 2, 3 }, db[] = { 2 };
    pare_tensor ta, tb, tga, tgb;
    const pare_tensor *cp[] = { &ta, &tb };
    pare_tensor *pp[] = { &ta, &tb }, *gp[] = { &tga, &tgb };
    pare_tensor *saved[8] = {0};
    pare_optim_opts opts;
    pare_optim *o = NULL, *o2 = NULL;
    int n_state;
    pare_error err = {0};

    memcpy(a, P0, sizeof a);
    b[0] = 0.5f;
    b[1] = -0.5f;
    pare_tensor_view(&ta, PARE_F32, 2, da, a);
    pare_tensor_view(&tb, PARE_F32, 1, db, b);
    pare_tensor_view(&tga, PARE_F32, 2, da, ga);
    pare_tensor_view(&tgb, PARE_F32, 1, db, gb);
    pare_optim_opts_init(&opts, kind);
    opts.momentum = momentum;
    opts.weight_decay = 0.05;
    assert_int_equal(pare_optim_new(&opts, 2, cp, &o, &err), PARE_OK);
    n_state = pare_optim_state_count(o);
    for (int t = 0; t < 5; t++) {
        if (t == 3) {
            /* checkpoint: every entry and the parameters */
            for (int i = 0; i < n_state; i++) {
                const char *name;
                const pare_tensor *st;
                assert_int_equal(pare_optim_state_get(o, i, &name, &st, &err), PARE_OK);
                saved[i] = pare_tensor_dup(st);
            }
            memcpy(a2, a, sizeof a);
            memcpy(b2, b, sizeof b);
        }
        ref_grad(t, ga);
        gb[0] = (float)t;
        gb[1] = 1.0f - (float)t;
        assert_int_equal(pare_optim_step(o, pp, gp, 0.05, NAN, NULL, &err), PARE_OK);
    }
    /* resume from the checkpoint in a fresh optimizer */
    memcpy(fa, a, sizeof a);
    memcpy(fb, b, sizeof b);
    {
        memcpy(a, a2, sizeof a);
        memcpy(b, b2, sizeof b);
        assert_int_equal(pare_optim_new(&opts, 2, cp, &o2, &err), PARE_OK);
        assert_int_equal(pare_optim_state_count(o2), n_state);
        for (int i = 0; i < n_state; i++)
            assert_int_equal(pare_optim_state_set(o2, i, saved[i], &err), PARE_OK);
        assert_int_equal(pare_optim_get_step(o2), 3);
        for (int t = 3; t < 5; t++) {
            ref_grad(t, ga);
            gb[0] = (float)t;
            gb[1] = 1.0f - (float)t;
            assert_int_equal(pare_optim_step(o2, pp, gp, 0.05, NAN, NULL, &err), PARE_OK);
        }
        assert_memory_equal(a, fa, sizeof a);
        assert_memory_equal(b, fb, sizeof b);
    }
    for (int i = 0; i < n_state; i++)
        pare_tensor_free(saved[i]);
    pare_optim_free(o);
    pare_optim_free(o2);
}

static void test_state_roundtrip_is_bit_exact(void **state)
{
    (void)state;
    state_roundtrip(PARE_OPTIM_ADAMW, 0);
    state_roundtrip(PARE_OPTIM_ADAM, 0);
    state_roundtrip(PARE_OPTIM_SGD, 0.9);
    state_roundtrip(PARE_OPTIM_SGD, 0);
}

static void test_state_names_and_errors(void **state)
{
    float a[6] = {0}, b[2] = {0};
    int64_t da[] = { 2, 3 }, db[] = { 2 }, d3 = 3, one = 1;
    pare_tensor ta, tb, bad;
    const pare_tensor *cp[] = { &ta, &tb };
    pare_optim_opts opts;
    pare_optim *o = NULL;
    const char *name;
    const pare_tensor *st;
    pare_error err = {0};
    (void)state;

    pare_tensor_view(&ta, PARE_F32, 2, da, a);
    pare_tensor_view(&tb, PARE_F32, 1, db, b);
    pare_optim_opts_init(&opts, PARE_OPTIM_ADAMW);
    assert_int_equal(pare_optim_new(&opts, 2, cp, &o, &err), PARE_OK);
    assert_int_equal(pare_optim_state_count(o), 5);
    {
        static const char *const want[] = { "step", "exp_avg.0", "exp_avg.1", "exp_avg_sq.0",
                                            "exp_avg_sq.1" };
        for (int i = 0; i < 5; i++) {
            assert_int_equal(pare_optim_state_get(o, i, &name, &st, &err), PARE_OK);
            assert_string_equal(name, want[i]);
            assert_int_equal(pare_optim_state_find(o, want[i]), i);
        }
    }
    assert_int_equal(pare_optim_state_get(o, 0, &name, &st, &err), PARE_OK);
    assert_int_equal(st->dtype, PARE_I64);
    assert_int_equal(pare_optim_state_find(o, "momentum_buffer.0"), -1);
    assert_int_equal(pare_optim_state_get(o, 5, &name, &st, &err), PARE_EINPUT);
    assert_string_equal(err.msg, "optimizer state entry 5 is out of range [0, 5)");

    pare_tensor_view(&bad, PARE_F32, 1, &d3, a);
    assert_int_equal(pare_optim_state_set(o, 2, &bad, &err), PARE_EINPUT);
    assert_string_equal(err.where, "exp_avg.1");
    assert_string_equal(err.msg, "optimizer state needs float32 [2], got float32 [3]");

    /* the step accepts any one-element number (npz may hand back f64) */
    {
        double seven = 7;
        pare_tensor s;
        pare_tensor_view(&s, PARE_F64, 1, &one, &seven);
        assert_int_equal(pare_optim_state_set(o, 0, &s, &err), PARE_OK);
        assert_int_equal(pare_optim_get_step(o), 7);
        seven = -1;
        assert_int_equal(pare_optim_state_set(o, 0, &s, &err), PARE_EINPUT);
        assert_string_equal(err.msg, "optimizer step -1 must be a non-negative integer");
    }
    pare_optim_set_step(o, 11);
    assert_int_equal(pare_optim_get_step(o), 11);
    pare_optim_free(o);
}

static void test_parse_and_option_errors(void **state)
{
    pare_optim_opts o;
    pare_optim *opt = (pare_optim *)&o;
    float a[2] = {0};
    int64_t d = 2;
    pare_tensor t;
    const pare_tensor *cp[] = { &t };
    pare_error err = {0};
    (void)state;

    assert_int_equal(pare_optim_opts_parse("Momentum", &o, &err), PARE_OK);
    assert_int_equal(o.kind, PARE_OPTIM_SGD);
    assert_float_equal(o.momentum, 0.9, 0);
    assert_int_equal(pare_optim_opts_parse("SGD", &o, &err), PARE_OK);
    assert_int_equal(o.kind, PARE_OPTIM_SGD);
    assert_float_equal(o.momentum, 0.0, 0);
    assert_int_equal(pare_optim_opts_parse("AdamW", &o, &err), PARE_OK);
    assert_int_equal(o.kind, PARE_OPTIM_ADAMW);
    assert_float_equal(o.weight_decay, 0.01, 0);
    assert_float_equal(o.beta1, 0.9, 0);
    assert_float_equal(o.beta2, 0.999, 0);
    assert_float_equal(o.eps, 1e-8, 0);
    assert_int_equal(pare_optim_opts_parse("adam", &o, &err), PARE_OK);
    assert_float_equal(o.weight_decay, 0.0, 0);
    assert_string_equal(pare_optim_kind_name(PARE_OPTIM_ADAMW), "adamw");

    assert_int_equal(pare_optim_opts_parse("adamm", &o, &err), PARE_EINPUT);
    assert_string_equal(err.msg, "unknown optimizer 'adamm'");
    assert_string_equal(err.hint, "did you mean 'adam'?");
    assert_int_equal(pare_optim_opts_parse("lbfgs", &o, &err), PARE_EINPUT);
    assert_string_equal(err.hint, "the optimizers are sgd, momentum, adam, adamw");
    assert_int_equal(o.kind, PARE_OPTIM_ADAM); /* untouched on failure */

    pare_tensor_view(&t, PARE_F32, 1, &d, a);
    pare_optim_opts_init(&o, PARE_OPTIM_SGD);
    o.nesterov = true;
    assert_int_equal(pare_optim_new(&o, 1, cp, &opt, &err), PARE_EINPUT);
    assert_null(opt);
    assert_string_equal(err.msg, "nesterov needs momentum > 0");
    assert_string_equal(err.hint, "set momentum (0.9 is usual) or turn nesterov off");
    pare_optim_opts_init(&o, PARE_OPTIM_ADAM);
    o.beta2 = 1.0;
    assert_int_equal(pare_optim_new(&o, 1, cp, &opt, &err), PARE_EINPUT);
    assert_string_equal(err.msg, "beta2 1 must be in [0, 1)");
    pare_optim_opts_init(&o, PARE_OPTIM_ADAM);
    o.grad_clip_norm = -1;
    assert_int_equal(pare_optim_new(&o, 1, cp, &opt, &err), PARE_EINPUT);
    assert_string_equal(err.msg, "grad_clip_norm -1 must be >= 0 (0 = off)");
}

static void test_step_shape_errors_change_nothing(void **state)
{
    float a[2] = { 1, 2 }, g[3] = { 1, 1, 1 };
    int64_t d2 = 2, d3 = 3;
    pare_tensor t, tg;
    const pare_tensor *cp[] = { &t };
    pare_tensor *pp[] = { &t }, *gp[] = { &tg };
    pare_optim_opts o;
    pare_optim *opt = NULL;
    pare_error err = {0};
    (void)state;

    pare_tensor_view(&t, PARE_F32, 1, &d2, a);
    pare_tensor_view(&tg, PARE_F32, 1, &d3, g);
    pare_optim_opts_init(&o, PARE_OPTIM_SGD);
    assert_int_equal(pare_optim_new(&o, 1, cp, &opt, &err), PARE_OK);
    assert_int_equal(pare_optim_step(opt, pp, gp, 0.1, NAN, NULL, &err), PARE_EINPUT);
    assert_string_equal(err.where, "param 0");
    assert_string_equal(err.msg, "gradient has shape [3], the optimizer was built for [2]");
    assert_true(a[0] == 1.0f && a[1] == 2.0f);
    assert_int_equal(pare_optim_get_step(opt), 0);
    pare_optim_free(opt);
}

/* Every allocation of pare_optim_new can fail: ENOMEM, nothing leaks
   (the sanitizer build checks the leaks). */
static void test_out_of_memory(void **state)
{
    float a[6] = {0}, b[2] = {0};
    int64_t da[] = { 2, 3 }, db[] = { 2 };
    pare_tensor ta, tb;
    const pare_tensor *cp[] = { &ta, &tb };
    pare_optim_opts opts;
    int failures = 0;
    (void)state;

    pare_tensor_view(&ta, PARE_F32, 2, da, a);
    pare_tensor_view(&tb, PARE_F32, 1, db, b);
    pare_optim_opts_init(&opts, PARE_OPTIM_ADAMW);
    for (long nth = 1; nth < 64; nth++) {
        pare_optim *o = NULL;
        pare_error err = {0};
        pare_status rc;
        pare_alloc_fail_at(nth);
        rc = pare_optim_new(&opts, 2, cp, &o, &err);
        pare_alloc_fail_at(0);
        if (rc == PARE_OK) {
            assert_non_null(o);
            pare_optim_free(o);
            break;
        }
        assert_int_equal(rc, PARE_ENOMEM);
        assert_null(o);
        failures++;
    }
    assert_true(failures >= 6); /* optimizer, entries, shapes, 5 state tensors */
}

/* Large tensors go through OpenMP; the result must not depend on it. */
static void test_thread_count_does_not_change_results(void **state)
{
    enum { N = 200000 };
    float *p1 = test_malloc(N * sizeof(float)), *p2 = test_malloc(N * sizeof(float));
    float *g = test_malloc(N * sizeof(float)), *g2 = test_malloc(N * sizeof(float));
    int64_t d = N;
    int saved = omp_get_max_threads();
    (void)state;

    for (int kind = PARE_OPTIM_SGD; kind <= PARE_OPTIM_ADAMW; kind++) {
        float *ps[2] = { p1, p2 };
        for (int run = 0; run < 2; run++) {
            pare_tensor tp, tg;
            const pare_tensor *cp[] = { &tp };
            pare_tensor *pp[] = { &tp }, *gp[] = { &tg };
            pare_optim_opts o;
            pare_optim *opt = NULL;
            pare_error err = {0};
            omp_set_num_threads(run == 0 ? 1 : 3);
            for (int i = 0; i < N; i++)
                ps[run][i] = (float)sin(i * 0.001);
            pare_tensor_view(&tp, PARE_F32, 1, &d, ps[run]);
            pare_tensor_view(&tg, PARE_F32, 1, &d, g2);
            pare_optim_opts_init(&o, (pare_optim_kind)kind);
            o.momentum = kind == PARE_OPTIM_SGD ? 0.9 : 0;
            o.grad_clip_norm = 10;
            assert_int_equal(pare_optim_new(&o, 1, cp, &opt, &err), PARE_OK);
            for (int t = 0; t < 3; t++) {
                for (int i = 0; i < N; i++)
                    g[i] = (float)cos(i * 0.003 + t);
                memcpy(g2, g, N * sizeof(float));
                assert_int_equal(pare_optim_step(opt, pp, gp, 0.01, NAN, NULL, &err), PARE_OK);
            }
            pare_optim_free(opt);
        }
        assert_memory_equal(p1, p2, N * sizeof(float));
    }
    omp_set_num_threads(saved);
    test_free(p1);
    test_free(p2);
    test_free(g);
    test_free(g2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_torch_reference_steps),
        cmocka_unit_test(test_torch_adam_with_onecycle_momentum),
        cmocka_unit_test(test_hand_values),
        cmocka_unit_test(test_clipping),
        cmocka_unit_test(test_state_roundtrip_is_bit_exact),
        cmocka_unit_test(test_state_names_and_errors),
        cmocka_unit_test(test_parse_and_option_errors),
        cmocka_unit_test(test_step_shape_errors_change_nothing),
        cmocka_unit_test(test_out_of_memory),
        cmocka_unit_test(test_thread_count_does_not_change_results),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
