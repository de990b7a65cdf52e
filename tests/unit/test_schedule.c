/* Learning-rate schedules: values at boundaries vs the formulas, PyTorch's
 * OneCycleLR and CosineAnnealingLR numbers, warm-up, parsing and checks. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "pare/schedule.h"

static void test_parse_names(void **state)
{
    static const struct {
        const char *name;
        pare_schedule_kind kind;
    } ok[] = {
        { "constant", PARE_SCHED_CONSTANT },
        { "piecewise", PARE_SCHED_PIECEWISE },
        { "PiecewiseDecay", PARE_SCHED_PIECEWISE },
        { "cosine", PARE_SCHED_COSINE },
        { "CosineAnnealingDecay", PARE_SCHED_COSINE },
        { "LINEAR", PARE_SCHED_LINEAR },
        { "onecycle", PARE_SCHED_ONECYCLE },
        { "OneCycle", PARE_SCHED_ONECYCLE },
    };
    pare_schedule_kind k;
    pare_error err = {0};
    (void)state;

    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        assert_int_equal(pare_schedule_kind_parse(ok[i].name, &k, &err), PARE_OK);
        assert_int_equal(k, ok[i].kind);
    }
    for (int i = 0; i < PARE_SCHED_KIND_COUNT; i++) {
        assert_int_equal(pare_schedule_kind_parse(pare_schedule_kind_name((pare_schedule_kind)i),
                                                  &k, &err), PARE_OK);
        assert_int_equal(k, i);
    }
    assert_int_equal(pare_schedule_kind_parse("cosin", &k, &err), PARE_EINPUT);
    assert_string_equal(err.msg, "unknown learning-rate schedule 'cosin'");
    assert_string_equal(err.hint, "did you mean 'cosine'?");
    assert_int_equal(pare_schedule_kind_parse("PiecewiseDecy", &k, &err), PARE_EINPUT);
    assert_string_equal(err.hint, "did you mean 'PiecewiseDecay'?");
    assert_int_equal(pare_schedule_kind_parse("exponential", &k, &err), PARE_EINPUT);
    assert_string_equal(err.hint, "the schedules are constant, piecewise, cosine, linear, onecycle");
}

static void test_constant_and_piecewise(void **state)
{
    pare_schedule s;
    pare_error err = {0};
    (void)state;

    pare_schedule_init(&s, PARE_SCHED_CONSTANT, 0.02);
    assert_int_equal(pare_schedule_check(&s, &err), PARE_OK);
    assert_float_equal(pare_schedule_lr(&s, 0), 0.02, 0);
    assert_float_equal(pare_schedule_lr(&s, 1000000), 0.02, 0);
    assert_true(isnan(pare_schedule_beta1(&s, 3)));

    /* PiecewiseDecay(boundaries=[3, 6], values=[0.1, 0.01, 0.001]) */
    pare_schedule_init(&s, PARE_SCHED_PIECEWISE, 0);
    s.n_boundaries = 2;
    s.boundaries[0] = 3;
    s.boundaries[1] = 6;
    s.values[0] = 0.1;
    s.values[1] = 0.01;
    s.values[2] = 0.001;
    assert_int_equal(pare_schedule_check(&s, &err), PARE_OK);
    assert_float_equal(pare_schedule_lr(&s, 0), 0.1, 0);
    assert_float_equal(pare_schedule_lr(&s, 2), 0.1, 0);
    assert_float_equal(pare_schedule_lr(&s, 3), 0.01, 0);
    assert_float_equal(pare_schedule_lr(&s, 5), 0.01, 0);
    assert_float_equal(pare_schedule_lr(&s, 6), 0.001, 0);
    assert_float_equal(pare_schedule_lr(&s, 600), 0.001, 0);

    s.boundaries[1] = 3;
    assert_int_equal(pare_schedule_check(&s, &err), PARE_EINPUT);
    assert_string_equal(err.msg, "piecewise schedule: boundaries must increase from 0, boundary 1 is 3");
    s.n_boundaries = 0;
    assert_int_equal(pare_schedule_check(&s, &err), PARE_EINPUT);
    assert_string_equal(err.msg, "piecewise schedule: 0 boundaries, expected 1 to 32");
    assert_string_equal(err.hint, "give n boundaries and n + 1 values");
}

/* PyTorch 1.13.0 CosineAnnealingLR(SGD(lr=0.1), T_max=10, eta_min=0.001):
   param_groups[0]['lr'] at steps 0..10. */
static void test_cosine_matches_torch(void **state)
{
    static const double want[11] = {
        0.10000000000000001, 0.097577297556610113, 0.090546341221559898, 0.079595369988477424,
        0.065796341221559904, 0.050500000000000003, 0.03520365877844011,  0.021404630011522589,
        0.010453658778440109, 0.0034227024433899004, 0.001,
    };
    pare_schedule s;
    pare_error err = {0};
    (void)state;

    pare_schedule_init(&s, PARE_SCHED_COSINE, 0.1);
    s.total_steps = 10;
    s.end_lr = 0.001;
    assert_int_equal(pare_schedule_check(&s, &err), PARE_OK);
    for (int t = 0; t <= 10; t++)
        assert_float_equal(pare_schedule_lr(&s, t), want[t], 1e-15);
    /* the closed form keeps its period past T_max */
    assert_float_equal(pare_schedule_lr(&s, 15), 0.0505, 1e-15);

    s.total_steps = 0;
    assert_int_equal(pare_schedule_check(&s, &err), PARE_EINPUT);
    assert_string_equal(err.msg, "cosine schedule: total_steps 0 must be positive");
    assert_string_equal(err.hint, "set it to the number of training iterations");
}

static void test_linear(void **state)
{
    pare_schedule s;
    pare_error err = {0};
    (void)state;

    pare_schedule_init(&s, PARE_SCHED_LINEAR, 0.1);
    s.total_steps = 100;
    s.end_lr = 0.0;
    assert_int_equal(pare_schedule_check(&s, &err), PARE_OK);
    assert_float_equal(pare_schedule_lr(&s, 0), 0.1, 0);
    assert_float_equal(pare_schedule_lr(&s, 25), 0.075, 1e-15);
    assert_float_equal(pare_schedule_lr(&s, 100), 0.0, 1e-15);
    assert_float_equal(pare_schedule_lr(&s, 1000), 0.0, 1e-15);
    s.end_lr = -1;
    assert_int_equal(pare_schedule_check(&s, &err), PARE_EINPUT);
    assert_string_equal(err.msg, "linear schedule: end learning rate -1 must be >= 0");
}

/* PyTorch 1.13.0 OneCycleLR(Adam(lr=0.1), max_lr=0.1, total_steps=100) with
   its defaults: param_groups[0]['lr'] and ['betas'][0] at the given steps. */
static void test_onecycle_matches_torch(void **state)
{
    static const struct {
        int step;
        double lr, beta1;
    } want[] = {
        { 0, 0.0040000000000000036, 0.94999999999999996 },
        { 10, 0.029516394846410082, 0.92342042203498953 },
        { 29, 0.10000000000000001, 0.84999999999999998 },
        { 30, 0.099949653528452434, 0.85005034667293422 },
        { 50, 0.079389345057573196, 0.87061073738537631 },
        { 99, 3.9999999999999998e-07, 0.94999999999999996 },
    };
    pare_schedule s;
    pare_error err = {0};
    (void)state;

    pare_schedule_init(&s, PARE_SCHED_ONECYCLE, 0.1);
    s.total_steps = 100;
    assert_int_equal(pare_schedule_check(&s, &err), PARE_OK);
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        assert_float_equal(pare_schedule_lr(&s, want[i].step), want[i].lr, 1e-15);
        assert_float_equal(pare_schedule_beta1(&s, want[i].step), want[i].beta1, 1e-15);
    }
    /* past the end: the final values hold */
    assert_float_equal(pare_schedule_lr(&s, 150), 4e-7, 1e-18);
    assert_float_equal(pare_schedule_beta1(&s, 150), 0.95, 1e-15);
    s.cycle_momentum = false;
    assert_true(isnan(pare_schedule_beta1(&s, 10)));

    s.pct_start = 1.0;
    assert_int_equal(pare_schedule_check(&s, &err), PARE_EINPUT);
    assert_string_equal(err.msg, "onecycle schedule: pct_start 1 must be in (0, 1)");
    s.pct_start = 0.3;
    s.total_steps = 2;
    assert_int_equal(pare_schedule_check(&s, &err), PARE_EINPUT);
    assert_string_equal(err.msg,
                        "onecycle schedule: 2 total steps with pct_start 0.3 leave an empty phase");
}

/* LinearWarmup(CosineAnnealingDecay(0.1, T_max=10), warmup_steps=5,
   start_lr=0.001, end_lr=0.1): ramps, then the cosine from its step 0. */
static void test_warmup_wraps_any_kind(void **state)
{
    pare_schedule s;
    pare_error err = {0};
    (void)state;

    pare_schedule_init(&s, PARE_SCHED_COSINE, 0.1);
    s.total_steps = 10;
    s.warmup_steps = 5;
    s.warmup_start_lr = 0.001;
    assert_int_equal(pare_schedule_check(&s, &err), PARE_OK);
    assert_float_equal(pare_schedule_lr(&s, 0), 0.001, 1e-15);
    assert_float_equal(pare_schedule_lr(&s, 2), 0.001 + (0.1 - 0.001) * 2 / 5, 1e-15);
    assert_float_equal(pare_schedule_lr(&s, 5), 0.1, 1e-15);
    assert_float_equal(pare_schedule_lr(&s, 10), 0.05, 1e-15);
    assert_float_equal(pare_schedule_lr(&s, 15), 0.0, 1e-15);

    /* a warm-up in front of OneCycle delays its momentum cycle too */
    pare_schedule_init(&s, PARE_SCHED_ONECYCLE, 0.1);
    s.total_steps = 100;
    s.warmup_steps = 10;
    assert_float_equal(pare_schedule_lr(&s, 0), 0.0, 0);
    assert_float_equal(pare_schedule_beta1(&s, 3), 0.95, 1e-15);
    assert_float_equal(pare_schedule_lr(&s, 39), 0.1, 1e-15);
    assert_float_equal(pare_schedule_beta1(&s, 39), 0.85, 1e-15);

    s.warmup_steps = -1;
    assert_int_equal(pare_schedule_check(&s, &err), PARE_EINPUT);
    assert_string_equal(err.msg, "warm-up: -1 steps from 0: both must be >= 0");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_names),
        cmocka_unit_test(test_constant_and_piecewise),
        cmocka_unit_test(test_cosine_matches_torch),
        cmocka_unit_test(test_linear),
        cmocka_unit_test(test_onecycle_matches_torch),
        cmocka_unit_test(test_warmup_wraps_any_kind),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
