/* Quantization-aware training (core/src/qat.c): the trainable fake-quant
 * graph, scale edits seen by a training plan without re-planning (the
 * contract the QAT hooks rely on), PaddleSlim's moving_average_abs_max rule,
 * and the export back to stored int8/int32 QDQ on LeNet-5 and the 256-image
 * sample. */
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
#include "pare/data.h"
#include "pare/exec.h"
#include "pare/graph.h"
#include "pare/job.h"
#include "pare/train.h"

#include "../../core/src/qat.h"

#define SAMPLE_DIR PARE_TEST_DATA "/fmnist-sample"

static pare_graph *load_lenet(void)
{
    pare_graph *g = NULL;
    pare_error err = {0};
    if (pare_graph_load(PARE_TEST_DATA "/lenet5.onnx", &g, &err) != PARE_OK)
        fail_msg("load lenet5: %s", err.msg);
    return g;
}

static pare_dataset *sample(int batch)
{
    pare_dataset *ds = NULL;
    pare_error err = {0};
    pare_data_opts o = {.search_dir = SAMPLE_DIR, .batch_size = batch};
    setenv("PARE_FASHION_MNIST", SAMPLE_DIR, 1);
    if (pare_dataset_open("fashion-mnist:test", &o, &ds, &err) != PARE_OK)
        fail_msg("open sample: %s", err.msg);
    return ds;
}

/* A QAT graph of LeNet-5 with default QuantAware options. */
static void prepare(pare_graph **g, pare_graph **q, qat_state **st,
                    pare_job_aq_type type)
{
    pare_job *job = pare_job_new();
    pare_dataset *ds = sample(32);
    pare_error err = {0};

    assert_non_null(job);
    job->quant_aware.activation_quantize_type = type;
    *g = load_lenet();
    if (qat_prepare(*g, ds, &job->quant_aware, 32, 2, 1, NULL, q, st, &err) != PARE_OK)
        fail_msg("qat_prepare: %s: %s", err.where, err.msg);
    pare_dataset_free(ds);
    pare_job_free(job);
}

static int count_op(const pare_graph *g, const char *op)
{
    int k = 0;
    for (int n = 0; n < g->n_nodes; n++)
        k += !strcmp(g->nodes[n].op_type, op);
    return k;
}

/* A training plan of q over batch 32, its parameters from pare_train. */
static pare_exec *train_plan(const pare_graph *q)
{
    const char **names = NULL;
    int n = 0;
    pare_exec *x = NULL;
    pare_error err = {0};
    pare_exec_opts o = {.batch = 32, .n_threads = 1, .training = true};

    if (pare_train_param_names(q, &names, &n, &err) != PARE_OK)
        fail_msg("param names: %s", err.msg);
    o.params = names;
    o.n_params = n;
    if (pare_exec_new(q, &o, &x, &err) != PARE_OK)
        fail_msg("training plan: %s: %s", err.where, err.msg);
    pare_free(names);
    pare_exec_set_training(x, false);
    return x;
}

static void run_batch(pare_exec *x, const pare_dataset *ds, float *out, int64_t n_out)
{
    pare_error err = {0};
    if (pare_dataset_fill(ds, 0, 32, pare_exec_input(x, 0), NULL, &err) != PARE_OK ||
        pare_exec_run(x, &err) != PARE_OK)
        fail_msg("run: %s", err.msg);
    if (out)
        memcpy(out, pare_exec_output(x, 0)->data, (size_t)n_out * sizeof *out);
}

static pare_tensor *init_named(pare_graph *g, const char *name)
{
    int v = pare_graph_find_value(g, name);
    assert_true(v >= 0);
    assert_non_null(g->values[v].init);
    return g->values[v].init;
}

static void test_trainable_structure(void **state)
{
    pare_graph *g, *q;
    qat_state *st;
    const char **names = NULL;
    int n = 0;
    bool w_trained = false, b_trained = false;
    pare_error err = {0};
    (void)state;

    prepare(&g, &q, &st, PARE_JOB_AQ_MOVING_AVERAGE_ABS_MAX);
    /* ONNX Runtime's layout (outputs quantized, each Relu carrying its
       Conv/Gemm's pair): the input, pool1, the flattened fc1 input and the
       four Relu outputs = 7 activation pairs, + 5 weight pairs; biases stay
       float */
    assert_int_equal(qat_n_activations(st), 7);
    assert_int_equal(qat_n_quantized_nodes(st), 5);
    assert_int_equal(count_op(q, "QuantizeLinear"), 12);
    assert_int_equal(count_op(q, "DequantizeLinear"), 12);
    assert_int_equal(init_named(q, "conv1.weight")->dtype, PARE_F32);
    assert_int_equal(init_named(q, "conv1.bias")->dtype, PARE_F32);
    /* the trainer trains the float weights and biases */
    assert_int_equal(pare_train_param_names(q, &names, &n, &err), PARE_OK);
    for (int i = 0; i < n; i++) {
        w_trained |= !strcmp(names[i], "conv1.weight");
        b_trained |= !strcmp(names[i], "fc3.bias");
    }
    pare_free(names);
    assert_true(w_trained);
    assert_true(b_trained);
    qat_free(st);
    pare_graph_free(q);
    pare_graph_free(g);
}

/* The hooks edit scale initializers in place between runs of one plan: the
 * next run must see the new values (no folding, no copies). */
static void test_scale_edits_seen_without_replanning(void **state)
{
    pare_graph *g, *q;
    qat_state *st;
    pare_dataset *ds = sample(32);
    float a[320], b[320], c2[320];
    pare_tensor *s;
    float old;
    double diff = 0, same = 0;
    pare_exec *x;
    (void)state;

    prepare(&g, &q, &st, PARE_JOB_AQ_MOVING_AVERAGE_ABS_MAX);
    x = train_plan(q);
    run_batch(x, ds, a, 320);
    /* an activation scale: coarser input quantization */
    s = init_named(q, "input_scale");
    old = pare_tensor_f32(s)[0];
    pare_tensor_f32(s)[0] = old * 8.0f;
    run_batch(x, ds, b, 320);
    for (int i = 0; i < 320; i++)
        diff += fabs((double)a[i] - b[i]);
    assert_true(diff > 1e-2);
    pare_tensor_f32(s)[0] = old;
    run_batch(x, ds, c2, 320);
    for (int i = 0; i < 320; i++)
        same += fabs((double)a[i] - c2[i]);
    assert_true(same < 1e-6);
    /* a weight scale (per channel) of a trained weight's QuantizeLinear */
    s = init_named(q, "fc3.weight_scale");
    pare_tensor_f32(s)[0] *= 16.0f;
    run_batch(x, ds, b, 320);
    diff = 0;
    for (int i = 0; i < 320; i++)
        diff += fabs((double)a[i] - b[i]);
    assert_true(diff > 1e-3);
    pare_exec_free(x);
    pare_dataset_free(ds);
    qat_free(st);
    pare_graph_free(q);
    pare_graph_free(g);
}

/* moving_average_abs_max: state = r*state + 1, accum = r*accum + max|x|,
 * scale from accum / state (input has negative values: range [-a, a],
 * int8 asymmetric -> scale = 2a / 255). */
static void test_moving_average_rule(void **state)
{
    pare_graph *g, *q;
    qat_state *st;
    pare_dataset *ds = sample(32);
    pare_exec *x;
    pare_error err = {0};
    double a0, m = 0, want;
    const pare_tensor *in;
    (void)state;

    prepare(&g, &q, &st, PARE_JOB_AQ_MOVING_AVERAGE_ABS_MAX);
    a0 = qat_activation_scale(st, q, "input") * 255.0 / 2.0;
    x = train_plan(q);
    run_batch(x, ds, NULL, 0);
    in = pare_exec_value(x, "input");
    assert_non_null(in);
    for (int64_t i = 0; i < pare_tensor_numel(in); i++)
        m = fabs(pare_tensor_f32(in)[i]) > m ? fabs(pare_tensor_f32(in)[i]) : m;
    assert_int_equal(qat_observe(st, x, q, &err), PARE_OK);
    want = (0.9 * a0 + m) / (0.9 + 1.0);
    assert_float_equal(qat_activation_scale(st, q, "input"), 2.0 * want / 255.0, 1e-6);
    /* abs_max keeps the running max instead */
    pare_exec_free(x);
    qat_free(st);
    pare_graph_free(q);
    pare_graph_free(g);

    prepare(&g, &q, &st, PARE_JOB_AQ_ABS_MAX);
    a0 = qat_activation_scale(st, q, "input") * 255.0 / 2.0;
    x = train_plan(q);
    run_batch(x, ds, NULL, 0);
    assert_int_equal(qat_observe(st, x, q, &err), PARE_OK);
    assert_float_equal(qat_activation_scale(st, q, "input"), 2.0 * (m > a0 ? m : a0) / 255.0, 1e-6);
    pare_exec_free(x);
    pare_dataset_free(ds);
    qat_free(st);
    pare_graph_free(q);
    pare_graph_free(g);
}

/* Weight scales follow the float weights: per output channel abs max / 127. */
static void test_weight_scales_follow_weights(void **state)
{
    pare_graph *g, *q;
    qat_state *st;
    pare_tensor *w, *s;
    pare_error err = {0};
    (void)state;

    prepare(&g, &q, &st, PARE_JOB_AQ_MOVING_AVERAGE_ABS_MAX);
    w = init_named(q, "conv1.weight");          /* [6, 1, 5, 5] */
    s = init_named(q, "conv1.weight_scale");    /* [6] */
    assert_int_equal(pare_tensor_numel(s), 6);
    for (int i = 0; i < 25; i++)
        pare_tensor_f32(w)[i] = 0.0f;
    pare_tensor_f32(w)[3] = -2.54f;
    assert_int_equal(qat_update_weights(st, q, &err), PARE_OK);
    assert_float_equal(pare_tensor_f32(s)[0], 2.54f / 127.0f, 1e-7);
    qat_free(st);
    pare_graph_free(q);
    pare_graph_free(g);
}

/* The export (int8 weights, int32 biases) computes what the fake-quant graph
 * computed, up to the int32 rounding of the biases (~1e-5, which may move an
 * activation across one quantization step downstream). */
static void test_export_matches(void **state)
{
    pare_graph *g, *q;
    qat_state *st;
    pare_dataset *ds = sample(32);
    float a[320], b[320];
    pare_exec *x;
    pare_exec_opts o = {.batch = 32, .n_threads = 1};
    pare_error err = {0};
    int agree = 0;
    (void)state;

    prepare(&g, &q, &st, PARE_JOB_AQ_MOVING_AVERAGE_ABS_MAX);
    assert_int_equal(pare_exec_new(q, &o, &x, &err), PARE_OK);
    run_batch(x, ds, a, 320);
    pare_exec_free(x);
    assert_int_equal(qat_export(st, q, &err), PARE_OK);
    assert_int_equal(count_op(q, "QuantizeLinear"), 7);
    assert_int_equal(init_named(q, "conv1.weight_quantized")->dtype, PARE_I8);
    assert_int_equal(init_named(q, "conv1.bias_quantized")->dtype, PARE_I32);
    assert_int_equal(pare_graph_find_value(q, "conv1.weight"), -1);
    assert_int_equal(pare_exec_new(q, &o, &x, &err), PARE_OK);
    run_batch(x, ds, b, 320);
    pare_exec_free(x);
    for (int r = 0; r < 32; r++) {
        int ia = 0, ib = 0;
        for (int c = 1; c < 10; c++) {
            ia = a[r * 10 + c] > a[r * 10 + ia] ? c : ia;
            ib = b[r * 10 + c] > b[r * 10 + ib] ? c : ib;
        }
        agree += ia == ib;
        for (int c = 0; c < 10; c++)
            assert_float_equal(a[r * 10 + c], b[r * 10 + c], 0.25);
    }
    assert_true(agree >= 31);
    pare_dataset_free(ds);
    qat_free(st);
    pare_graph_free(q);
    pare_graph_free(g);
}

/* PACT: a Clip before each pair whose clip value is a scalar initializer the
 * trainer's optimizer updates (qat_pact_extras); the hooks carry it into the
 * pair's range and scale, and the export folds the Neg of the lower bound. */
static void test_pact_learns_clip(void **state)
{
    pare_job *job = pare_job_new();
    pare_graph *g = load_lenet(), *q = NULL, *out = NULL;
    qat_state *st = NULL;
    pare_dataset *ds = sample(16);
    pare_train_opts o;
    pare_train_result r;
    pare_error err = {0};
    float a0, a1, in1;
    int v, n_extra = 0;
    (void)state;

    job->quant_aware.use_pact = true;
    assert_int_equal(qat_prepare(g, ds, &job->quant_aware, 16, 2, 1, NULL, &q, &st, &err), PARE_OK);
    /* a clip per activation pair, each clip value an extra; the input is
       normalised (negative values): its lower bound is Neg(a) */
    assert_int_equal(count_op(q, "Clip"), qat_n_activations(st));
    assert_true(count_op(q, "Neg") >= 1);
    assert_non_null(qat_pact_extras(st, &n_extra));
    assert_int_equal(n_extra, qat_n_activations(st));
    a0 = qat_pact_alpha(st, "/relu3/Relu_output_0");
    assert_true(a0 > 0);
    qat_set_pact_opts(st, 500.0, 1e-4);   /* SGD at 1e-3: the clip values at 0.5 */
    pare_train_opts_init(&o);
    o.train_data = ds;
    o.iterations = 4;
    o.keep_best = false;
    o.n_threads = 1;
    pare_optim_opts_init(&o.optim, PARE_OPTIM_SGD);
    pare_schedule_init(&o.schedule, PARE_SCHED_CONSTANT, 1e-3);
    o.extra = qat_pact_extras(st, &o.n_extra);
    o.hooks.after_forward = qat_after_forward;
    o.hooks.after_step = qat_after_step;
    o.hooks.user = st;
    if (pare_train(q, &o, &out, &r, &err) != PARE_OK)
        fail_msg("train: %s: %s", err.where, err.msg);
    assert_int_equal(r.n_params, 10 + n_extra);   /* weights and biases, and the clip values */
    a1 = qat_pact_alpha(st, "/relu3/Relu_output_0");
    assert_true(a1 != a0);
    v = pare_graph_find_value(out, "/relu3/Relu_output_0_pact_max");
    assert_true(v >= 0);
    assert_float_equal(pare_tensor_f32(out->values[v].init)[0], a1, 0);
    assert_float_equal(qat_activation_scale(st, out, "/relu3/Relu_output_0"), a1 / 255.0f, 1e-6);
    /* the export: no Neg left, the lower bound a constant -a */
    in1 = qat_pact_alpha(st, "input");
    assert_int_equal(qat_export(st, out, &err), PARE_OK);
    assert_int_equal(count_op(out, "Neg"), 0);
    assert_int_equal(count_op(out, "Clip"), n_extra);
    v = pare_graph_find_value(out, "input_pact_min");
    assert_true(v >= 0 && out->values[v].init);
    assert_float_equal(pare_tensor_f32(out->values[v].init)[0], -in1, 0);
    pare_graph_free(out);
    pare_dataset_free(ds);
    qat_free(st);
    pare_graph_free(q);
    pare_graph_free(g);
    pare_job_free(job);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_trainable_structure),
        cmocka_unit_test(test_scale_edits_seen_without_replanning),
        cmocka_unit_test(test_moving_average_rule),
        cmocka_unit_test(test_weight_scales_follow_weights),
        cmocka_unit_test(test_export_matches),
        cmocka_unit_test(test_pact_learns_clip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
