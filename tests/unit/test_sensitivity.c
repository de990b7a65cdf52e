/* Sensitivity sweep: incremental equals naive, cache resume and merge,
 * early stop, cancellation, ratio selection for a FLOPs target. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "pare/alloc.h"
#include "pare/data.h"
#include "pare/graph.h"
#include "pare/prune.h"
#include "pare/sensitivity.h"

#define MODEL(name) PARE_TEST_DATA "/" name ".onnx"
#define SAMPLE PARE_TEST_DATA "/fmnist-sample"
#define SPEC "idx:" SAMPLE "/t10k-images-idx3-ubyte.gz," SAMPLE "/t10k-labels-idx1-ubyte.gz"

typedef struct fixture {
    pare_graph *g;
    pare_prune_groups *gs;
    pare_dataset *ds;
} fixture;

static void fixture_open(fixture *f, const char *model, int64_t limit, const char *spec)
{
    pare_error err = {0};
    pare_data_opts dopts = {.limit = limit};
    assert_int_equal(pare_graph_load(model, &f->g, &err), PARE_OK);
    assert_int_equal(pare_prune_groups_find(f->g, &f->gs, &err), PARE_OK);
    assert_int_equal(pare_dataset_open(spec, &dopts, &f->ds, &err), PARE_OK);
}

static void fixture_close(fixture *f)
{
    pare_dataset_free(f->ds);
    pare_prune_groups_free(f->gs);
    pare_graph_free(f->g);
}

static const double two_ratios[2] = {0.3, 0.6};

static pare_sens_result *sweep(const fixture *f, const pare_sens_opts *o)
{
    pare_sens_result *r = NULL;
    pare_error err = {0};
    pare_status rc = pare_sens_run(f->g, f->gs, f->ds, o, &r, &err);
    if (rc != PARE_OK)
        fprintf(stderr, "%s: %s (%s)\n", err.where, err.msg, err.hint);
    assert_int_equal(rc, PARE_OK);
    return r;
}

static void test_incremental_equals_naive(void **state)
{
    fixture f;
    pare_sens_opts o = {.ratios = two_ratios, .n_ratios = 2, .batch = 32, .n_threads = 1};
    pare_sens_result *inc, *nai;
    (void)state;
    fixture_open(&f, MODEL("resnet8_bn"), 96, SPEC);
    inc = sweep(&f, &o);
    o.naive = true;
    nai = sweep(&f, &o);
    assert_int_equal(inc->n_points, 12);
    assert_int_equal(nai->n_points, 12);
    assert_int_equal(inc->metric, PARE_SENS_TOP1);
    assert_float_equal(inc->baseline, nai->baseline, 0);
    for (int i = 0; i < 12; i++) {
        assert_int_equal(inc->points[i].group, nai->points[i].group);
        assert_float_equal(inc->points[i].metric, nai->points[i].metric, 1e-12);
        assert_float_equal(inc->points[i].drop, inc->baseline - inc->points[i].metric, 1e-12);
        assert_true(inc->points[i].flops_removed > 0);
        assert_true(inc->points[i].params_removed > 0);
        assert_int_equal(inc->points[i].params_removed, nai->points[i].params_removed);
    }
    /* pruning more of a group removes more */
    for (int i = 0; i < 12; i += 2)
        assert_true(inc->points[i + 1].flops_removed > inc->points[i].flops_removed);
    pare_sens_result_free(inc);
    pare_sens_result_free(nai);
    fixture_close(&f);
}

static void test_cosine_without_labels_matches_naive(void **state)
{
    fixture f;
    pare_sens_opts o = {.ratios = two_ratios + 1, .n_ratios = 1, .batch = 16, .n_threads = 1,
                        .metric = PARE_SENS_COSINE};
    pare_sens_result *inc, *nai;
    (void)state;
    fixture_open(&f, MODEL("lenet5"), 40, SPEC); /* 40 = 2 full batches + a partial one */
    inc = sweep(&f, &o);
    o.naive = true;
    nai = sweep(&f, &o);
    assert_float_equal(inc->baseline, 1.0, 1e-9);
    assert_int_equal(inc->n_points, 4);
    for (int i = 0; i < inc->n_points; i++) {
        assert_float_equal(inc->points[i].metric, nai->points[i].metric, 1e-9);
        assert_true(inc->points[i].metric < 1.0);
    }
    pare_sens_result_free(inc);
    pare_sens_result_free(nai);
    fixture_close(&f);
}

static void cache_path(char *buf, size_t size, const char *tag)
{
    snprintf(buf, size, "/tmp/pare-test-sens-%ld-%s.txt", (long)getpid(), tag);
    remove(buf);
}

static void test_cache_resume_and_merge(void **state)
{
    fixture f;
    char a[128], b[128], c[128];
    pare_sens_opts o = {.ratios = two_ratios, .n_ratios = 1, .batch = 32, .n_threads = 1};
    pare_sens_result *r1, *r2, *r3;
    const char *ins[2] = {a, b};
    pare_error err = {0};
    (void)state;
    fixture_open(&f, MODEL("resnet8"), 64, SPEC);
    cache_path(a, sizeof a, "a");
    cache_path(b, sizeof b, "b");
    cache_path(c, sizeof c, "c");
    o.cache_path = a;
    r1 = sweep(&f, &o);
    assert_int_equal(r1->computed, 6);
    assert_int_equal(r1->from_cache, 0);
    r2 = sweep(&f, &o); /* a second run computes nothing new */
    assert_int_equal(r2->computed, 0);
    assert_int_equal(r2->from_cache, 6);
    for (int i = 0; i < 6; i++) {
        assert_true(r2->points[i].cached);
        assert_float_equal(r2->points[i].metric, r1->points[i].metric, 0);
        assert_float_equal(r2->points[i].flops_removed, r1->points[i].flops_removed, 0);
    }
    pare_sens_result_free(r2);
    /* another criterion is another key */
    o.criterion = "l2_norm";
    r2 = sweep(&f, &o);
    assert_int_equal(r2->computed, 6);
    pare_sens_result_free(r2);
    o.criterion = NULL;
    /* the other ratio in a second file, then merged: the full sweep is cached */
    o.ratios = two_ratios + 1;
    o.cache_path = b;
    r2 = sweep(&f, &o);
    assert_int_equal(r2->computed, 6);
    assert_int_equal(pare_sens_cache_merge(ins, 2, c, &err), PARE_OK);
    o.ratios = two_ratios;
    o.n_ratios = 2;
    o.cache_path = c;
    r3 = sweep(&f, &o);
    assert_int_equal(r3->computed, 0);
    assert_int_equal(r3->from_cache, 12);
    assert_int_equal(pare_sens_cache_merge(ins, 2, "/nonexistent-dir/x.txt", &err), PARE_EIO);
    ins[1] = "/nonexistent-dir/y.txt";
    assert_int_equal(pare_sens_cache_merge(ins, 2, c, &err), PARE_EIO);
    assert_string_equal(err.where, "/nonexistent-dir/y.txt");
    pare_sens_result_free(r1);
    pare_sens_result_free(r2);
    pare_sens_result_free(r3);
    remove(a);
    remove(b);
    remove(c);
    fixture_close(&f);
}

static void test_early_stop_and_proxy(void **state)
{
    fixture f;
    static const double r9[3] = {0.3, 0.6, 0.9};
    pare_sens_opts o = {.ratios = r9, .n_ratios = 3, .batch = 32, .n_threads = 1,
                        .drop_cap = 0.05, .proxy_batches = 1};
    pare_sens_result *r;
    (void)state;
    fixture_open(&f, MODEL("resnet8"), 64, SPEC);
    r = sweep(&f, &o);
    assert_true(r->n_points < 18);
    for (int k = 0; k < r->n_order; k++) {
        pare_sens_point pts[PARE_SENS_MAX_RATIOS];
        int n = pare_sens_group_points(r, r->order[k], pts);
        assert_true(n >= 1);
        /* only the last point of a stopped group exceeds the cap */
        for (int i = 0; i + 1 < n; i++)
            assert_true(pts[i].drop <= 0.05);
        if (k > 0)
            assert_true(r->proxy[r->order[k]] >= r->proxy[r->order[k - 1]]);
    }
    pare_sens_result_free(r);
    fixture_close(&f);
}

static bool cancel_after_two(void *user, const pare_progress_event *ev)
{
    (void)ev;
    return ++*(int *)user < 2;
}

static void test_cancel_and_bad_input(void **state)
{
    fixture f;
    int calls = 0;
    pare_progress p = {cancel_after_two, &calls};
    pare_sens_opts o = {.ratios = two_ratios, .n_ratios = 2, .batch = 32, .n_threads = 1,
                        .progress = &p};
    pare_sens_result *r = NULL;
    pare_error err = {0};
    static const double bad[2] = {0.5, 0.4};
    bool only[7] = {false};
    (void)state;
    fixture_open(&f, MODEL("resnet8"), 32, SPEC);
    assert_int_equal(pare_sens_run(f.g, f.gs, f.ds, &o, &r, &err), PARE_ECANCELED);
    assert_null(r);
    assert_int_equal(calls, 2);
    o.progress = NULL;
    o.ratios = bad;
    assert_int_equal(pare_sens_run(f.g, f.gs, f.ds, &o, &r, &err), PARE_EINPUT);
    assert_string_equal(err.msg, "sensitivity ratio 0.4: ratios must be ascending, in (0, 1)");
    o.ratios = two_ratios;
    only[6] = true;
    o.only = only;
    assert_int_equal(pare_sens_run(f.g, f.gs, f.ds, &o, &r, &err), PARE_EINPUT);
    assert_string_equal(err.msg, "group 'logits' cannot be pruned");
    assert_string_equal(err.hint, "reaches model output 'logits'");
    o.only = NULL;
    o.criterion = "fpgm";
    assert_int_equal(pare_sens_run(f.g, f.gs, f.ds, &o, &r, &err), PARE_EINPUT);
    assert_string_equal(err.msg, "unknown prune criterion 'fpgm'");
    fixture_close(&f);
}

static void test_selection_meets_flops_target(void **state)
{
    fixture f;
    static const double r5[5] = {0.1, 0.3, 0.5, 0.7, 0.9};
    pare_sens_opts o = {.ratios = r5, .n_ratios = 5, .batch = 32, .n_threads = 1};
    pare_sens_result *r;
    pare_error err = {0};
    (void)state;
    fixture_open(&f, MODEL("resnet8"), 64, SPEC);
    r = sweep(&f, &o);
    for (int m = 0; m < 2; m++) {
        pare_select_opts so = {.method = m ? PARE_SELECT_BUDGET : PARE_SELECT_PADDLESLIM,
                               .target = 0.4};
        pare_select_result s;
        assert_int_equal(pare_prune_select(f.g, f.gs, r, &so, &s, &err), PARE_OK);
        assert_true(s.met);
        assert_true(s.flops_after <= 0.6 * s.flops_before + 1e-6);
        assert_float_equal(s.ratios[6], 0.0, 0); /* the unprunable group */
        for (int i = 0; i < 6; i++)
            assert_true(s.ratios[i] >= 0 && s.ratios[i] <= 0.9 + 1e-9);
        assert_true(s.predicted_loss >= 0);
        if (m == 0)
            assert_true(isfinite(s.threshold));
        pare_select_result_fini(&s);
        /* params target too */
        so.params = true;
        assert_int_equal(pare_prune_select(f.g, f.gs, r, &so, &s, &err), PARE_OK);
        assert_true(s.met);
        assert_true((double)s.params_after <= 0.6 * (double)s.params_before + 1);
        pare_select_result_fini(&s);
    }
    {
        pare_select_opts so = {.method = PARE_SELECT_BUDGET, .target = 1.5};
        pare_select_result s;
        assert_int_equal(pare_prune_select(f.g, f.gs, r, &so, &s, &err), PARE_EINPUT);
        assert_string_equal(err.msg, "reduction target 1.5 is outside (0, 1)");
    }
    pare_sens_result_free(r);
    fixture_close(&f);
}

static void test_measured_greedy_meets_target(void **state)
{
    fixture f;
    pare_sens_opts so = {.batch = 32, .n_threads = 1};
    pare_select_opts o = {.target = 0.3, .eval_batches = 1, .step = 0.125};
    pare_select_result s;
    pare_error err = {0};
    (void)state;
    fixture_open(&f, MODEL("resnet8"), 64, SPEC);
    assert_int_equal(pare_sens_select_measured(f.g, f.gs, f.ds, &so, &o, &s, &err), PARE_OK);
    assert_true(s.met);
    assert_true(s.flops_after <= 0.7 * s.flops_before + 1e-6);
    assert_float_equal(s.ratios[6], 0.0, 0);
    /* ratios are whole channels: ratio * C is an integer */
    for (int i = 0; i < 6; i++) {
        double ch = s.ratios[i] * (double)f.gs->groups[i].channels;
        assert_float_equal(ch, round(ch), 1e-9);
    }
    assert_true(isnan(s.threshold));
    pare_select_result_fini(&s);
    o.target = 0;
    assert_int_equal(pare_sens_select_measured(f.g, f.gs, f.ds, &so, &o, &s, &err), PARE_EINPUT);
    assert_null(s.ratios);
    fixture_close(&f);
}

static void test_monotone_curves_never_pass_a_violation(void **state)
{
    /* a noisy curve: 0.3 violates a 0.1 threshold, 0.4 looks fine again */
    pare_sens_point p[5] = {
        {.ratio = 0.1, .drop = 0.01}, {.ratio = 0.2, .drop = 0.04}, {.ratio = 0.3, .drop = 0.2},
        {.ratio = 0.4, .drop = 0.05}, {.ratio = 0.5, .drop = 0.5},
    };
    double raw, mono;
    (void)state;
    raw = pare_sens_ratio_for_loss(p, 5, 0.1, false);
    mono = pare_sens_ratio_for_loss(p, 5, 0.1, true);
    /* PaddleSlim's scan from the top stops at 0.4 and interpolates towards 0.5 */
    assert_float_equal(raw, 0.4 + 0.05 * 0.1 / 0.45, 1e-12);
    assert_true(raw > 0.3);
    /* the running max makes 0.3 and everything after it a violation */
    assert_float_equal(mono, 0.2 + 0.06 * 0.1 / 0.16, 1e-12);
    assert_true(mono < 0.3);
    assert_float_equal(pare_sens_ratio_for_loss(p, 5, 0.001, true), 0.0, 0);
    assert_float_equal(pare_sens_ratio_for_loss(p, 5, 1.0, true), 0.5, 0);
    /* predicted loss: monotone, linear from (0, 0) */
    assert_float_equal(pare_sens_predict(p, 5, 0.05), 0.005, 1e-12);
    assert_float_equal(pare_sens_predict(p, 5, 0.35), 0.2, 1e-12);
    assert_float_equal(pare_sens_predict(p, 5, 0.45), 0.35, 1e-12);
    assert_true(isinf(pare_sens_predict(p, 5, 0.6)));
    for (double x = 0.0; x < 0.5; x += 0.01)
        assert_true(pare_sens_predict(p, 5, x + 0.01) >= pare_sens_predict(p, 5, x));
}

static void test_outputs_csv_json(void **state)
{
    fixture f;
    pare_sens_opts o = {.ratios = two_ratios, .n_ratios = 1, .batch = 32, .n_threads = 1};
    pare_sens_result *r;
    pare_error err = {0};
    char csv[128], json[128], line[512];
    FILE *fp;
    int lines = 0;
    (void)state;
    fixture_open(&f, MODEL("lenet5"), 32, SPEC);
    r = sweep(&f, &o);
    cache_path(csv, sizeof csv, "csv");
    cache_path(json, sizeof json, "json");
    assert_int_equal(pare_sens_save_csv(r, f.gs, f.g, csv, &err), PARE_OK);
    assert_int_equal(pare_sens_save_json(r, f.gs, f.g, json, &err), PARE_OK);
    fp = fopen(csv, "r");
    assert_non_null(fp);
    assert_non_null(fgets(line, sizeof line, fp));
    assert_string_equal(line, "group,layers,ratio,metric,drop,params_removed,flops_removed\n");
    assert_non_null(fgets(line, sizeof line, fp));
    assert_int_equal(strncmp(line, "\"/conv1/Conv_output_0\",\"/conv1/Conv\",0.3000,", 44), 0);
    lines = 2;
    while (fgets(line, sizeof line, fp))
        lines++;
    fclose(fp);
    assert_int_equal(lines, 1 + 4);
    fp = fopen(json, "r");
    assert_non_null(fp);
    assert_non_null(fgets(line, sizeof line, fp));
    assert_string_equal(line, "{\n");
    fclose(fp);
    assert_int_equal(pare_sens_save_csv(r, f.gs, f.g, "/nonexistent-dir/s.csv", &err), PARE_EIO);
    remove(csv);
    remove(json);
    pare_sens_result_free(r);
    fixture_close(&f);
}

/* Recovery-aware points fine-tune each pruned copy before measuring: the
 * stem of resnet8 at 0.6 breaks the model at once and recovers most of it
 * in a few steps; without training data the sweep refuses; recovered points
 * get their own cache key, so plain points are never read for them. */
static void test_recovery_aware_points(void **state)
{
    fixture f;
    static const double r06[1] = {0.6};
    bool only[64] = {0};
    char path[128];
    pare_error err = {0};
    pare_data_opts topts = {.batch_size = 32, .shuffle = true, .seed = 3, .drop_last = true};
    pare_dataset *train = NULL;
    pare_sens_opts o = {.ratios = r06, .n_ratios = 1, .batch = 32, .n_threads = 1, .only = only};
    pare_sens_result *plain, *rec, *again, *r = NULL;
    (void)state;
    fixture_open(&f, MODEL("resnet8"), 128, SPEC);
    assert_true(f.gs->n <= 64);
    {
        /* normalised as the model was trained (Fashion-MNIST mean and std) */
        pare_data_opts nopts = {.limit = 128, .n_mean = 1, .mean = {0.2860f}, .n_std = 1,
                                .std = {0.3530f}};
        pare_dataset_free(f.ds);
        assert_int_equal(pare_dataset_open(SPEC, &nopts, &f.ds, &err), PARE_OK);
        topts.n_mean = topts.n_std = 1;
        topts.mean[0] = 0.2860f;
        topts.std[0] = 0.3530f;
    }
    for (int i = 0; i < f.gs->n; i++)
        only[i] = !strcmp(f.gs->groups[i].name, "/stem/stem.0/Conv_output_0");
    /* the stem with layer1's residual stream: the most fragile group */
    cache_path(path, sizeof path, "recover");
    o.cache_path = path;
    plain = sweep(&f, &o);
    o.recover_steps = 20;
    assert_int_equal(pare_sens_run(f.g, f.gs, f.ds, &o, &r, &err), PARE_EINPUT);
    assert_null(r);
    assert_int_equal(pare_dataset_open(SPEC, &topts, &train, &err), PARE_OK);
    o.recover_data = train;
    o.recover_lr = 2e-3;
    rec = sweep(&f, &o);
    assert_int_equal(rec->n_points, 1);
    assert_int_equal(rec->computed, 1); /* not the plain point from the cache */
    printf("resnet8 stem at 0.6 on 128 samples: drop %.1f pp at once, %.1f pp after 20 steps\n",
           100 * plain->points[0].drop, 100 * rec->points[0].drop);
    assert_true(plain->points[0].drop > 0.2);
    assert_true(rec->points[0].drop < plain->points[0].drop / 2);
    assert_int_equal(rec->points[0].params_removed, plain->points[0].params_removed);
    /* the same recovery options read the recovered point back */
    again = sweep(&f, &o);
    assert_int_equal(again->from_cache, 1);
    assert_float_equal(again->points[0].metric, rec->points[0].metric, 0);
    remove(path);
    pare_sens_result_free(plain);
    pare_sens_result_free(rec);
    pare_sens_result_free(again);
    pare_dataset_free(train);
    fixture_close(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_incremental_equals_naive),
        cmocka_unit_test(test_cosine_without_labels_matches_naive),
        cmocka_unit_test(test_cache_resume_and_merge),
        cmocka_unit_test(test_early_stop_and_proxy),
        cmocka_unit_test(test_cancel_and_bad_input),
        cmocka_unit_test(test_selection_meets_flops_target),
        cmocka_unit_test(test_measured_greedy_meets_target),
        cmocka_unit_test(test_monotone_curves_never_pass_a_violation),
        cmocka_unit_test(test_outputs_csv_json),
        cmocka_unit_test(test_recovery_aware_points),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
