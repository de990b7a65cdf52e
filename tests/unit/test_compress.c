/* The job runner (pare_compress_run) on LeNet-5 and the 256-image sample:
 * outputs appear all at once, an existing save_dir is refused, a cancel
 * leaves nothing, a dry run writes nothing, unsupported sections and bad
 * names fail with the job's location, the report's JSON. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "pare/alloc.h"
#include "pare/compress.h"
#include "pare/graph.h"
#include "pare/job.h"
#include "pare/prune.h"

#define SAMPLE_DIR PARE_TEST_DATA "/fmnist-sample"

static char tmp[256];

static int setup(void **state)
{
    (void)state;
    snprintf(tmp, sizeof tmp, "/tmp/pare-test-compress-XXXXXX");
    if (!mkdtemp(tmp))
        return -1;
    setenv("PARE_FASHION_MNIST", SAMPLE_DIR, 1);
    return 0;
}

static int teardown(void **state)
{
    char cmd[512];
    (void)state;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    return system(cmd) == 0 ? 0 : -1;
}

static bool exists(const char *dir, const char *name)
{
    char p[1024];
    struct stat st;
    snprintf(p, sizeof p, "%s%s%s", dir, name[0] ? "/" : "", name);
    return stat(p, &st) == 0;
}

/* A job: Global on LeNet-5 and the sample, save_dir = tmp/out, plus extra. */
static pare_job *job_with(const char *extra)
{
    char text[2048];
    pare_job *job = NULL;
    pare_error err = {0};

    snprintf(text, sizeof text,
             "Global:\n"
             "  model: %s/lenet5.onnx\n"
             "  data: fashion-mnist:test\n"
             "  batch_size: 32\n"
             "  eval_limit: 64\n"
             "  save_dir: %s/out\n"
             "%s", PARE_TEST_DATA, tmp, extra);
    if (pare_job_load_string(text, "job.yaml", &job, NULL, &err) != PARE_OK)
        fail_msg("job: %s: %s", err.where, err.msg);
    return job;
}

static void test_ptq_outputs(void **state)
{
    pare_job *job = job_with("QuantPost:\n  batch_nums: 2\n");
    pare_compress_report r;
    pare_error err = {0};
    char dir[512];
    char *json;
    (void)state;

    snprintf(dir, sizeof dir, "%s/out", tmp);
    assert_int_equal(pare_compress_run(job, NULL, &r, &err), PARE_OK);
    assert_true(exists(dir, "model.onnx"));
    assert_true(exists(dir, "config.resolved.yaml"));
    assert_true(exists(dir, "calibration_table.txt"));
    assert_true(exists(dir, "report.json"));
    assert_true(exists(dir, "report.md"));
    assert_true(r.quantized);
    assert_int_equal(r.n_quantized_nodes, 5);
    assert_true(r.has_metric);
    assert_int_equal(r.eval_samples, 64);
    assert_true(r.metric_after > 0.8);
    assert_int_equal(r.params_before, 61706);
    assert_true(r.bytes_after < r.bytes_before);
    assert_int_equal(r.n_stages, 3);
    assert_string_equal(r.stages[1].name, "calibrate");
    assert_int_equal(r.n_layers, 5);
    assert_string_equal(r.layers[0].name, "/conv1/Conv");
    assert_true(r.layers[0].quantized);
    assert_int_equal(r.layers[0].out_after, 6);
    json = pare_compress_report_json(&r);
    assert_non_null(json);
    assert_non_null(strstr(json, "\"quantized\": true"));
    assert_non_null(strstr(json, "\"hpo\": null"));
    pare_free(json);
    pare_compress_report_fini(&r);

    /* a second run: the directory exists now */
    assert_int_equal(pare_compress_run(job, NULL, &r, &err), PARE_EINPUT);
    assert_string_equal(err.msg, "output directory already exists");
    assert_non_null(strstr(err.hint, "--force"));
    pare_compress_report_fini(&r);
    {
        pare_compress_opts o = {.force = true};
        assert_int_equal(pare_compress_run(job, &o, &r, &err), PARE_OK);
        pare_compress_report_fini(&r);
    }
    pare_job_free(job);
}

static bool cancel_in_train(void *user, const pare_progress_event *ev)
{
    int *steps = user;
    if (!strcmp(ev->stage, "train"))
        (*steps)++;
    return *steps < 3;
}

static void test_cancel_leaves_nothing(void **state)
{
    pare_job *job = job_with("TrainConfig:\n  train_iter: 1000\n  batch_size: 8\n");
    pare_compress_report r;
    pare_error err = {0};
    int steps = 0;
    pare_progress p = {.report = cancel_in_train, .user = &steps};
    pare_compress_opts o = {.progress = &p};
    char cmd[600];
    (void)state;

    assert_int_equal(pare_compress_run(job, &o, &r, &err), PARE_ECANCELED);
    assert_int_equal(steps, 3);
    assert_false(exists(tmp, "out"));
    /* nothing else in tmp either (no temporary directory left) */
    snprintf(cmd, sizeof cmd, "test -z \"$(ls -A '%s')\"", tmp);
    assert_int_equal(system(cmd), 0);
    pare_compress_report_fini(&r);
    pare_job_free(job);
}

static void test_dry_run_writes_nothing(void **state)
{
    pare_job *job = job_with("ChannelPrune:\n  pruned_ratio: 0.5\n"
                             "TrainConfig:\n  train_iter: 5\n"
                             "QuantPost:\n  batch_nums: 1\n");
    pare_compress_report r;
    pare_compress_opts o = {.dry_run = true};
    pare_error err = {0};
    (void)state;

    assert_int_equal(pare_compress_run(job, &o, &r, &err), PARE_OK);
    assert_true(r.dry_run);
    assert_int_equal(r.n_stages, 3);
    assert_string_equal(r.stages[0].name, "prune");
    assert_string_equal(r.stages[1].name, "train");
    assert_string_equal(r.stages[2].name, "calibrate");
    assert_false(exists(tmp, "out"));
    pare_compress_report_fini(&r);
    pare_job_free(job);
}

static void test_errors_have_job_locations(void **state)
{
    pare_compress_report r;
    pare_error err = {0};
    pare_job *job;
    (void)state;

    job = job_with("TransformerPrune:\n  pruned_ratio: 0.3\n");
    assert_int_equal(pare_compress_run(job, NULL, &r, &err), PARE_EINPUT);
    assert_string_equal(err.where, "job.yaml:8:3");
    assert_non_null(strstr(err.msg, "no attention block"));
    pare_compress_report_fini(&r);
    pare_job_free(job);

    job = job_with("Layers:\n  conv9.weight: 0.5\n");
    assert_int_equal(pare_compress_run(job, NULL, &r, &err), PARE_EINPUT);
    assert_string_equal(err.where, "job.yaml:8:3");
    assert_non_null(strstr(err.msg, "conv9.weight"));
    pare_compress_report_fini(&r);
    pare_job_free(job);

    job = job_with("QuantAware:\n  weight_bits: 8\n");
    assert_int_equal(pare_compress_run(job, NULL, &r, &err), PARE_EINPUT);
    assert_non_null(strstr(err.msg, "TrainConfig"));
    pare_compress_report_fini(&r);
    pare_job_free(job);

    /* a region naming a value the model lacks: located, with a hint */
    job = job_with("QuantPost:\n  recon_level: region-wise\n"
                   "  regions: [[[/relu1/Relu_output], [/conv2/Conv_output_0]]]\n");
    assert_int_equal(pare_compress_run(job, NULL, &r, &err), PARE_EINPUT);
    assert_string_equal(err.where, "job.yaml:9:13");
    assert_string_equal(err.msg, "region 1: '/relu1/Relu_output' is not a value of the model");
    assert_string_equal(err.hint, "did you mean '/relu1/Relu_output_0'?");
    pare_compress_report_fini(&r);
    pare_job_free(job);
    assert_false(exists(tmp, "out"));
}

/* Masks survive fine-tuning: the weights they zero stay zero. */
static void test_masks_survive_training(void **state)
{
    pare_job *job = job_with("UnstructurePrune:\n  ratio: 0.6\n"
                             "TrainConfig:\n  train_iter: 10\n  batch_size: 16\n"
                             "  learning_rate: 0.01\n");
    pare_compress_report r;
    pare_error err = {0};
    (void)state;

    pare_graph *g = NULL;
    const char *ws[] = {"conv1.weight", "conv2.weight", "fc1.weight", "fc2.weight", "fc3.weight"};
    double zeros = 0, total = 0;
    char path[1024];

    assert_int_equal(pare_compress_run(job, NULL, &r, &err), PARE_OK);
    assert_int_equal(r.train_steps, 10);
    assert_float_equal(r.sparsity, 0.6, 0.01);
    /* the saved weights are as sparse as the masks after 10 steps */
    snprintf(path, sizeof path, "%s/out/model.onnx", tmp);
    assert_int_equal(pare_graph_load(path, &g, &err), PARE_OK);
    for (int i = 0; i < 5; i++) {
        int v = pare_graph_find_value(g, ws[i]);
        double n;
        assert_true(v >= 0);
        n = (double)pare_tensor_numel(g->values[v].init);
        zeros += pare_tensor_sparsity(g, ws[i]) * n;
        total += n;
    }
    assert_true(zeros / total >= 0.6 - 1e-3);
    pare_graph_free(g);
    pare_compress_report_fini(&r);
    pare_job_free(job);
}

/* Sensitivity: the sweep lands in sensitivity.csv; the pruned layers show
 * in the per-layer table. */
static void test_sensitivity_and_layers(void **state)
{
    pare_job *job = job_with("Sensitivity:\n  ratios: [0.5]\n  limit: 32\n"
                             "Layers:\n  /conv2/Conv: 0.5\n");
    pare_compress_report r;
    pare_error err = {0};
    char dir[512];
    (void)state;

    snprintf(dir, sizeof dir, "%s/out", tmp);
    assert_int_equal(pare_compress_run(job, NULL, &r, &err), PARE_OK);
    assert_true(r.has_sensitivity);
    assert_true(exists(dir, "sensitivity.csv"));
    assert_string_equal(r.stages[1].name, "sensitivity");
    assert_int_equal(r.layers[1].out_before, 16);
    assert_int_equal(r.layers[1].out_after, 8);
    assert_int_equal(r.layers[0].out_after, 6);
    pare_compress_report_fini(&r);
    pare_job_free(job);
}

/* QAT distilled from the float original: default pairs (the outputs), the
 * export quantized, the ranges in the table. */
static void test_qat_distilled(void **state)
{
    pare_job *job = job_with("QuantAware:\n  activation_quantize_type: range_abs_max\n"
                             "  window_size: 3\n"
                             "Distillation:\n  loss: soft_label\n  temperature: 2\n"
                             "TrainConfig:\n  train_iter: 6\n  batch_size: 16\n");
    pare_compress_report r;
    pare_error err = {0};
    char dir[512];
    (void)state;

    snprintf(dir, sizeof dir, "%s/out", tmp);
    assert_int_equal(pare_compress_run(job, NULL, &r, &err), PARE_OK);
    assert_true(r.quantized);
    assert_int_equal(r.train_steps, 6);
    assert_true(exists(dir, "calibration_table.txt"));
    assert_true(r.metric_after > 0.8);
    assert_string_equal(r.stages[1].name, "calibrate");
    assert_string_equal(r.stages[2].name, "qat");
    pare_compress_report_fini(&r);
    pare_job_free(job);
}

/* GMP during QAT: the masks find the float weights behind their fake-quant
 * pairs, and the exported int8 weights are as sparse as the masks. */
static void test_gmp_with_qat(void **state)
{
    pare_job *job = job_with("UnstructurePrune:\n  prune_strategy: gmp\n  ratio: 0.5\n"
                             "  gmp_config: {stable_iterations: 0, pruning_iterations: 4,\n"
                             "               pruning_steps: 2, tunning_iterations: 2,\n"
                             "               initial_ratio: 0.3}\n"
                             "QuantAware:\n  weight_bits: 8\n"
                             "TrainConfig:\n  train_iter: 6\n  batch_size: 16\n");
    const char *ws[] = {"conv1.weight", "conv2.weight", "fc1.weight", "fc2.weight", "fc3.weight"};
    pare_compress_report r;
    pare_error err = {0};
    pare_graph *g = NULL;
    double zeros = 0, total = 0;
    char path[1024];
    (void)state;

    if (pare_compress_run(job, NULL, &r, &err) != PARE_OK)
        fail_msg("%s: %s", err.where, err.msg);
    assert_true(r.quantized);
    assert_int_equal(r.train_steps, 6);
    assert_float_equal(r.sparsity, 0.5, 0.01);
    snprintf(path, sizeof path, "%s/out/model.onnx", tmp);
    assert_int_equal(pare_graph_load(path, &g, &err), PARE_OK);
    for (int i = 0; i < 5; i++) {
        char qn[64];
        int v;
        snprintf(qn, sizeof qn, "%s_quantized", ws[i]);
        v = pare_graph_find_value(g, qn);
        assert_true(v >= 0 && g->values[v].init);
        assert_int_equal(g->values[v].init->dtype, PARE_I8);
        zeros += pare_tensor_sparsity(g, qn) * (double)pare_tensor_numel(g->values[v].init);
        total += (double)pare_tensor_numel(g->values[v].init);
    }
    /* int8 rounding may add zeros, never remove masked ones */
    assert_true(zeros / total >= 0.5 - 1e-3);
    pare_graph_free(g);
    pare_compress_report_fini(&r);
    pare_job_free(job);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ptq_outputs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_leaves_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dry_run_writes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors_have_job_locations, setup, teardown),
        cmocka_unit_test_setup_teardown(test_masks_survive_training, setup, teardown),
        cmocka_unit_test_setup_teardown(test_qat_distilled, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gmp_with_qat, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sensitivity_and_layers, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
