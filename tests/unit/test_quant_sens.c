/* Which layer hurts: the per-tensor error table (core/src/quant_error.c) and
 * quantization sensitivity with the greedy revert search
 * (core/src/quant_sens.c), on LeNet-5 and the 256-image Fashion-MNIST sample. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "pare/alloc.h"
#include "pare/data.h"
#include "pare/graph.h"
#include "pare/quant.h"

#define SAMPLE_DIR PARE_TEST_DATA "/fmnist-sample"

static pare_graph *load_model(const char *name)
{
    char path[512];
    pare_graph *g = NULL;
    pare_error err = {0};
    snprintf(path, sizeof path, "%s/%s.onnx", PARE_TEST_DATA, name);
    if (pare_graph_load(path, &g, &err) != PARE_OK)
        fail_msg("load %s: %s", path, err.msg);
    return g;
}

/* The first n samples of the 256-image sample. */
static pare_dataset *sample(int64_t n)
{
    pare_dataset *ds = NULL;
    pare_error err = {0};
    pare_data_opts o = {.search_dir = SAMPLE_DIR, .limit = n};
    unsetenv("PARE_FASHION_MNIST");
    if (pare_dataset_open("fashion-mnist", &o, &ds, &err) != PARE_OK)
        fail_msg("sample: %s", err.msg);
    return ds;
}

static void small_opts(pare_quant_opts *o, int bits)
{
    pare_quant_opts_init(o);
    o->weight_bits = bits;
    o->activation_bits = bits;
    o->batch_nums = 2;
    o->batch_size = 32;
    o->n_threads = 1;
}

/* Builds g at `bits` and measures its error table over 2 batches. */
static pare_quant_error_table *table_at(const pare_graph *g, pare_dataset *ds, int bits,
                                        pare_quant_report **rep_out)
{
    pare_quant_opts o;
    pare_quant_calib *c = NULL;
    pare_graph *q = NULL;
    pare_quant_report *rep = NULL;
    pare_quant_error_table *t = NULL;
    pare_error err = {0};

    small_opts(&o, bits);
    if (pare_quant_calibrate(g, ds, &o, NULL, &c, &err) != PARE_OK ||
        pare_quant_build(g, c, &o, &q, &rep, &err) != PARE_OK ||
        pare_quant_error_measure(g, q, rep, ds, &o, 2, NULL, &t, &err) != PARE_OK)
        fail_msg("error table at %d bits: %s", bits, err.msg);
    pare_quant_calib_free(c);
    pare_graph_free(q);
    if (rep_out)
        *rep_out = rep;
    else
        pare_quant_report_free(rep);
    return t;
}

static const pare_quant_error_row *row(const pare_quant_error_table *t, const char *name,
                                       pare_quant_error_kind kind)
{
    for (int i = 0; i < t->n_rows; i++)
        if (t->rows[i].kind == kind && !strcmp(t->rows[i].name, name))
            return &t->rows[i];
    return NULL;
}

static void test_error_table(void **state)
{
    pare_graph *g = load_model("lenet5");
    pare_dataset *ds = sample(128);
    pare_quant_report *rep = NULL;
    pare_quant_error_table *t8 = table_at(g, ds, 8, &rep), *t2 = table_at(g, ds, 2, NULL);
    int n_act = 0, n_w = 0, n_out = 0;
    const pare_quant_error_row *w8, *w2, *a8, *a2;

    (void)state;
    assert_int_equal(t8->n_batches, 2);
    assert_int_equal(t8->n_samples, 64);
    /* one row per quantized activation and weight, and per quantized node's output */
    for (int i = 0; i < rep->n_tensors; i++) {
        n_act += rep->tensors[i].kind == PARE_QUANT_ACTIVATION;
        n_w += rep->tensors[i].kind == PARE_QUANT_WEIGHT;
    }
    for (int i = 0; i < t8->n_rows; i++)
        n_out += t8->rows[i].kind == PARE_QUANT_ERR_OUTPUT;
    assert_int_equal(t8->n_rows, n_act + n_w + n_out);
    assert_int_equal(n_out, rep->n_quantized_nodes);
    /* sorted worst first */
    for (int i = 1; i < t8->n_rows; i++)
        assert_true(t8->rows[i - 1].sqnr_db <= t8->rows[i].sqnr_db);
    for (int i = 1; i < t2->n_rows; i++)
        assert_true(t2->rows[i - 1].sqnr_db <= t2->rows[i].sqnr_db);
    /* a weight: > 30 dB at 8 bits, and the table agrees with the build's report */
    w8 = row(t8, "conv2.weight", PARE_QUANT_ERR_WEIGHT);
    w2 = row(t2, "conv2.weight", PARE_QUANT_ERR_WEIGHT);
    assert_non_null(w8);
    assert_non_null(w2);
    assert_true(w8->sqnr_db > 30);
    assert_true(w2->sqnr_db < w8->sqnr_db - 20);
    assert_true(w8->cosine > 0.999 && w8->cosine <= 1.0 + 1e-12);
    assert_int_equal(w8->bits, 8);
    assert_true(fabs(w8->sqnr_db - pare_quant_report_find(rep, "conv2.weight")->snr_db) < 1e-3);
    assert_true(fabs(w8->mse - pare_quant_report_find(rep, "conv2.weight")->mse) <=
                1e-6 * w8->mse);
    assert_string_equal(w8->node, "/conv2/Conv");
    /* an activation: the model input, fed to conv1 */
    a8 = row(t8, "input", PARE_QUANT_ERR_ACTIVATION);
    a2 = row(t2, "input", PARE_QUANT_ERR_ACTIVATION);
    if (!a8) /* the input may be named otherwise: take the first activation row */
        for (int i = 0; i < t8->n_rows && !a8; i++)
            if (t8->rows[i].kind == PARE_QUANT_ERR_ACTIVATION) {
                a8 = &t8->rows[i];
                a2 = row(t2, a8->name, PARE_QUANT_ERR_ACTIVATION);
            }
    assert_non_null(a8);
    assert_non_null(a2);
    assert_true(a8->sqnr_db > 30);
    assert_true(a2->sqnr_db < a8->sqnr_db);
    assert_true(a8->n_values > 0 && a8->mse >= 0);
    /* accumulated error at the logits is worse at 2 bits */
    for (int i = 0; i < t8->n_rows; i++) {
        const pare_quant_error_row *o8 = &t8->rows[i], *o2;
        if (o8->kind != PARE_QUANT_ERR_OUTPUT)
            continue;
        o2 = row(t2, o8->name, PARE_QUANT_ERR_OUTPUT);
        assert_non_null(o2);
        assert_true(o2->sqnr_db < o8->sqnr_db);
        assert_int_equal(o8->bits, 0);
    }
    pare_quant_error_table_free(t8);
    pare_quant_error_table_free(t2);
    pare_quant_report_free(rep);
    pare_dataset_free(ds);
    pare_graph_free(g);
}

static void test_error_csv(void **state)
{
    pare_graph *g = load_model("lenet5");
    pare_dataset *ds = sample(64);
    pare_quant_error_table *t = table_at(g, ds, 8, NULL);
    char path[] = "/tmp/pare_qerr_XXXXXX", line[256];
    pare_error err = {0};
    int fd = mkstemp(path), lines = 0;
    FILE *f;

    (void)state;
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(pare_quant_error_save_csv(t, path, &err), PARE_OK);
    f = fopen(path, "r");
    assert_non_null(f);
    assert_non_null(fgets(line, sizeof line, f));
    assert_string_equal(line, "kind,name,node,bits,sqnr_db,mse,cosine,n_values\n");
    while (fgets(line, sizeof line, f))
        lines++;
    fclose(f);
    assert_int_equal(lines, t->n_rows);
    /* an unwritable path: PARE_EIO, nothing left behind */
    assert_int_equal(pare_quant_error_save_csv(t, "/nonexistent/dir/e.csv", &err), PARE_EIO);
    assert_string_equal(err.where, "/nonexistent/dir/e.csv");
    remove(path);
    pare_quant_error_table_free(t);
    pare_dataset_free(ds);
    pare_graph_free(g);
}

static pare_quant_sens_result *sens(const pare_graph *g, pare_dataset *ds,
                                    const pare_quant_opts *qo, double target, const char *cache,
                                    const pare_progress *p, pare_status want)
{
    pare_quant_sens_opts so = {.quant = qo, .batch = 64, .search = target >= 0,
                               .target_drop = target, .cache_path = cache, .progress = p};
    pare_quant_sens_result *r = NULL;
    pare_error err = {0};
    pare_status rc = pare_quant_sens_run(g, ds, &so, &r, &err);
    if (rc != want)
        fail_msg("pare_quant_sens_run: %d (%s), expected %d", rc, err.msg, want);
    return r;
}

/* With one quantizable layer X: all-but-X is the fp32 model, only-X the full one. */
static void test_sens_one_layer(void **state)
{
    pare_graph *g = load_model("lenet5");
    pare_dataset *ds = sample(128);
    static const char *const ops[] = {"Gemm"};
    static const char *const skip[] = {"fc1.weight", "fc2.weight"};
    pare_quant_opts qo;
    pare_quant_sens_result *r;

    (void)state;
    small_opts(&qo, 2);
    qo.quantize_op_types = ops;
    qo.n_quantize_op_types = 1;
    qo.skip_tensor_list = skip;
    qo.n_skip_tensor_list = 2;
    r = sens(g, ds, &qo, -1, NULL, NULL, PARE_OK);
    assert_int_equal(r->metric, PARE_QUANT_SENS_TOP1);
    assert_int_equal(r->n_samples, 128);
    assert_int_equal(r->n_layers, 1);
    assert_string_equal(r->layers[0].node, "/fc3/Gemm");
    assert_string_equal(r->layers[0].skip_name, "fc3.weight");
    assert_true(r->layers[0].all_but == r->fp32);
    assert_true(r->layers[0].only == r->full);
    assert_true(!r->has_target && r->n_skip == 0);
    pare_quant_sens_result_free(r);
    /* a negative target is bad input, named */
    {
        pare_quant_sens_opts so = {.quant = &qo, .search = true, .target_drop = -0.5};
        pare_error err = {0};
        r = NULL;
        assert_int_equal(pare_quant_sens_run(g, ds, &so, &r, &err), PARE_EINPUT);
        assert_null(r);
        assert_non_null(strstr(err.msg, "target_drop"));
    }
    pare_dataset_free(ds);
    pare_graph_free(g);
}

static void test_sens_rankings_and_targets(void **state)
{
    pare_graph *g = load_model("lenet5");
    pare_dataset *ds = sample(128);
    pare_quant_opts qo;
    pare_quant_sens_result *r, *big, *zero;

    (void)state;
    small_opts(&qo, 2);
    qo.activation_bits = 8;
    r = sens(g, ds, &qo, -1, NULL, NULL, PARE_OK);
    assert_int_equal(r->n_layers, 5); /* conv1, conv2, fc1, fc2, fc3 */
    assert_true(r->fp32 > r->full);
    for (int k = 0; k < r->n_layers; k++) {
        const pare_quant_sens_layer *L = &r->layers[k];
        assert_true(L->only >= 0 && L->only <= 1 && L->all_but >= 0 && L->all_but <= 1);
        if (k) {
            const pare_quant_sens_layer *a = &r->layers[r->by_only[k - 1]],
                                        *b = &r->layers[r->by_only[k]];
            const pare_quant_sens_layer *c = &r->layers[r->by_recovery[k - 1]],
                                        *d = &r->layers[r->by_recovery[k]];
            assert_true(r->fp32 - a->only >= r->fp32 - b->only);
            assert_true(c->all_but - r->full >= d->all_but - r->full);
        }
    }
    /* a drop everything meets: nothing reverted */
    big = sens(g, ds, &qo, 1.0, NULL, NULL, PARE_OK);
    assert_true(big->has_target && big->met);
    assert_int_equal(big->n_skip, 0);
    assert_true(big->final_metric == big->full);
    /* no drop allowed: revert until the drop is 0 or everything is reverted */
    zero = sens(g, ds, &qo, 0, NULL, NULL, PARE_OK);
    assert_true(zero->n_skip >= 1);
    assert_true(zero->fp32 - zero->final_metric <= 0 || zero->n_skip == zero->n_layers);
    if (zero->n_skip == zero->n_layers)
        assert_true(zero->final_metric == zero->fp32);
    assert_true(zero->met == (zero->fp32 - zero->final_metric <= 0));
    /* the first reverted layer is the one whose reverting recovers most */
    assert_int_equal(zero->skip[0], zero->by_recovery[0]);
    assert_true(zero->skip_metric[0] == zero->layers[zero->skip[0]].all_but);
    for (int k = 0; k < zero->n_skip; k++)
        for (int j = 0; j < k; j++)
            assert_int_not_equal(zero->skip[j], zero->skip[k]);
    pare_quant_sens_result_free(r);
    pare_quant_sens_result_free(big);
    pare_quant_sens_result_free(zero);
    pare_dataset_free(ds);
    pare_graph_free(g);
}

static int cancel_after;
static bool stop_after(void *user, const pare_progress_event *ev)
{
    (void)user;
    if (strcmp(ev->stage, "quant_sens"))
        return true;
    return --cancel_after > 0;
}

/* Ctrl-C between points keeps them in the cache; a second run resumes. */
static void test_sens_cache_resume(void **state)
{
    pare_graph *g = load_model("lenet5");
    pare_dataset *ds = sample(64);
    pare_quant_opts qo;
    pare_progress stop = {stop_after, NULL};
    char path[] = "/tmp/pare_qsens_XXXXXX";
    int fd = mkstemp(path);
    pare_quant_sens_result *a, *b, *full;

    (void)state;
    assert_true(fd >= 0);
    close(fd);
    small_opts(&qo, 4);
    cancel_after = 3;
    a = sens(g, ds, &qo, -1, path, &stop, PARE_ECANCELED);
    assert_null(a);
    b = sens(g, ds, &qo, 0.02, path, NULL, PARE_OK);
    assert_true(b->from_cache >= 3);
    assert_true(b->computed > 0);
    full = sens(g, ds, &qo, 0.02, path, NULL, PARE_OK);
    assert_int_equal(full->computed, 0);
    assert_int_equal(full->from_cache, b->computed + b->from_cache);
    assert_true(full->fp32 == b->fp32 && full->full == b->full);
    assert_int_equal(full->n_skip, b->n_skip);
    for (int k = 0; k < b->n_layers; k++) {
        assert_true(full->layers[k].only == b->layers[k].only);
        assert_true(full->layers[k].all_but == b->layers[k].all_but);
    }
    /* another bit width is another key: nothing from the cache */
    qo.weight_bits = 8;
    pare_quant_sens_result_free(b);
    b = sens(g, ds, &qo, -1, path, NULL, PARE_OK);
    assert_int_equal(b->from_cache, 0);
    pare_quant_sens_result_free(b);
    pare_quant_sens_result_free(full);
    remove(path);
    pare_dataset_free(ds);
    pare_graph_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_error_table),
        cmocka_unit_test(test_error_csv),
        cmocka_unit_test(test_sens_one_layer),
        cmocka_unit_test(test_sens_rankings_and_targets),
        cmocka_unit_test(test_sens_cache_resume),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
