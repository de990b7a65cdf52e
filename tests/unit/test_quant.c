/* Post-training quantization: scale/zero-point rules, observers on known
 * distributions, QDQ graph structure per preset, skip lists, per-channel
 * axes, int32 biases, n-bit clamps, tables, bias correction, the
 * straight-through backward of Q/DQ, and int8 accuracy on the 256-image
 * sample. */
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
#include "pare/exec.h"
#include "pare/graph.h"
#include "pare/metrics.h"
#include "pare/op.h"
#include "pare/quant.h"

#include "gradcheck.h"
#include "quant_fixture.h"

/* ---- helpers ---- */

static uint64_t rng_state = 42;
static double urand(void)
{
    return (double)(gc_rng(&rng_state) >> 11) / 9007199254740992.0;
}
static double nrand(void)
{
    double u = urand(), v = urand();
    if (u < 1e-300)
        u = 1e-300;
    return sqrt(-2.0 * log(u)) * cos(2.0 * M_PI * v);
}


static int count_op(const pare_graph *g, const char *op)
{
    int k = 0;
    for (int n = 0; n < g->n_nodes; n++)
        k += !strcmp(g->nodes[n].op_type, op);
    return k;
}

/* Calibrates and builds; fails the test on error. */
static pare_graph *quantize(const pare_graph *g, pare_dataset *ds, const pare_quant_opts *o,
                            pare_quant_report **rep)
{
    pare_quant_calib *c = NULL;
    pare_graph *q = NULL;
    pare_error err = {0};
    if (pare_quant_calibrate(g, ds, o, NULL, &c, &err) != PARE_OK)
        fail_msg("calibrate: %s: %s (%s)", err.where, err.msg, err.hint);
    if (pare_quant_build(g, c, o, &q, rep, &err) != PARE_OK)
        fail_msg("build: %s: %s (%s)", err.where, err.msg, err.hint);
    pare_quant_calib_free(c);
    return q;
}

static double top1(const pare_graph *g, pare_dataset *ds)
{
    pare_exec *x = NULL;
    pare_exec_opts eo = {.batch = 64};
    pare_error err = {0};
    pare_accuracy acc;
    int64_t labels[64];
    int64_t n = pare_dataset_count(ds);

    if (pare_exec_new(g, &eo, &x, &err) != PARE_OK)
        fail_msg("plan: %s: %s", err.where, err.msg);
    pare_accuracy_init(&acc, 5);
    for (int64_t pos = 0; pos < n; pos += 64) {
        int64_t nb = n - pos < 64 ? n - pos : 64;
        assert_int_equal(pare_dataset_fill(ds, pos, nb, pare_exec_input(x, 0), labels, &err), PARE_OK);
        if (pare_exec_run(x, &err) != PARE_OK)
            fail_msg("run: %s: %s", err.where, err.msg);
        assert_int_equal(pare_accuracy_add(&acc, pare_exec_output(x, 0), labels, nb, &err), PARE_OK);
    }
    pare_exec_free(x);
    return pare_accuracy_top1(&acc);
}


/* ---- scale / zero point ---- */

static void test_qrange(void **state)
{
    int32_t lo, hi;
    (void)state;
    pare_quant_qrange(8, true, true, false, &lo, &hi);
    assert_int_equal(lo, -127);
    assert_int_equal(hi, 127);
    pare_quant_qrange(8, true, false, false, &lo, &hi);
    assert_int_equal(lo, -128);
    assert_int_equal(hi, 127);
    pare_quant_qrange(8, false, false, false, &lo, &hi);
    assert_int_equal(lo, 0);
    assert_int_equal(hi, 255);
    pare_quant_qrange(8, true, true, true, &lo, &hi);
    assert_int_equal(lo, -64);
    assert_int_equal(hi, 64);
    pare_quant_qrange(8, false, false, true, &lo, &hi);
    assert_int_equal(hi, 127);
    pare_quant_qrange(4, true, true, false, &lo, &hi);
    assert_int_equal(lo, -7);
    assert_int_equal(hi, 7);
    pare_quant_qrange(2, true, true, false, &lo, &hi);
    assert_int_equal(lo, -1);
    assert_int_equal(hi, 1);
    pare_quant_qrange(3, false, false, false, &lo, &hi);
    assert_int_equal(hi, 7);
}

static void test_scale_zp_rules(void **state)
{
    float s;
    int32_t z;
    (void)state;
    /* a positive range is widened to include 0: zp at qmin */
    pare_quant_scale_zp(1.0f, 3.0f, 0, 255, false, &s, &z);
    assert_float_equal(s, 3.0f / 255.0f, 1e-9);
    assert_int_equal(z, 0);
    pare_quant_scale_zp(-3.0f, -1.0f, 0, 255, false, &s, &z);
    assert_float_equal(s, 3.0f / 255.0f, 1e-9);
    assert_int_equal(z, 255);
    /* int8 asymmetric: zp = round(-128 - lo / scale) */
    pare_quant_scale_zp(-1.0f, 3.0f, -128, 127, false, &s, &z);
    assert_float_equal(s, 4.0f / 255.0f, 1e-9);
    assert_int_equal(z, -64);
    /* symmetric: zp 0, scale = absmax / 127 */
    pare_quant_scale_zp(-0.5f, 2.54f, -127, 127, true, &s, &z);
    assert_float_equal(s, 0.02f, 1e-7);
    assert_int_equal(z, 0);
    /* tiny or empty ranges: scale 1, zp 0 */
    pare_quant_scale_zp(0.0f, 0.0f, -128, 127, false, &s, &z);
    assert_float_equal(s, 1.0f, 0);
    assert_int_equal(z, 0);
    pare_quant_scale_zp(0.0f, 1e-40f, 0, 255, false, &s, &z);
    assert_float_equal(s, 1.0f, 0);
    assert_int_equal(z, 0);
}

static void test_opts_check_and_names(void **state)
{
    pare_quant_opts o;
    pare_quant_algo a;
    pare_quant_preset p;
    pare_error err = {0};
    (void)state;
    pare_quant_opts_init(&o);
    assert_int_equal(pare_quant_opts_check(&o, &err), PARE_OK);
    o.weight_bits = 9;
    assert_int_equal(pare_quant_opts_check(&o, &err), PARE_EINPUT);
    assert_string_equal(err.where, "weight_bits");
    assert_string_equal(err.msg, "weight_bits 9 is outside 2..8");
    pare_quant_opts_init(&o);
    o.hist_percent = 99.99;
    assert_int_equal(pare_quant_opts_check(&o, &err), PARE_EINPUT);
    assert_string_equal(err.hint, "a fraction: did you mean 0.9999?");
    pare_quant_opts_init(&o);
    o.onnx_format = false;
    assert_int_equal(pare_quant_opts_check(&o, &err), PARE_EUNSUPPORTED);
    assert_int_equal(pare_quant_algo_parse("KL", &a, &err), PARE_OK);
    assert_int_equal(a, PARE_QUANT_KL);
    assert_int_equal(pare_quant_algo_parse("abs_mx", &a, &err), PARE_EINPUT);
    assert_string_equal(err.msg, "unknown quantization algo 'abs_mx' (abs_max, avg, hist, KL, mse)");
    assert_string_equal(err.hint, "did you mean 'abs_max'?");
    assert_int_equal(pare_quant_preset_parse("tensorrt", &p, &err), PARE_OK);
    assert_int_equal(p, PARE_QUANT_PRESET_TENSORRT);
    assert_int_equal(pare_quant_preset_parse("tensort", &p, &err), PARE_EINPUT);
    assert_string_equal(err.hint, "did you mean 'tensorrt'?");
}

/* ---- observers ---- */

static pare_quant_opts algo_opts(pare_quant_algo a)
{
    pare_quant_opts o;
    pare_quant_opts_init(&o);
    o.algo = a;
    return o;
}

static void test_observer_abs_max_avg(void **state)
{
    pare_quant_observer *ob = pare_quant_observer_new(2048);
    const float b1[] = {-1.0f, 0.5f, 2.0f}, b2[] = {-3.0f, 0.0f, 4.0f}, bad[] = {NAN, 1.0f};
    pare_quant_opts o = algo_opts(PARE_QUANT_ABS_MAX);
    pare_error err = {0};
    float lo, hi;
    (void)state;
    assert_non_null(ob);
    pare_quant_observer_add(ob, b1, 3);
    pare_quant_observer_add(ob, b2, 3);
    assert_int_equal(pare_quant_observer_range(ob, &o, 8, &lo, &hi, &err), PARE_OK);
    assert_float_equal(lo, -3.0f, 0);
    assert_float_equal(hi, 4.0f, 0);
    o.algo = PARE_QUANT_AVG;
    assert_int_equal(pare_quant_observer_range(ob, &o, 8, &lo, &hi, &err), PARE_OK);
    assert_float_equal(lo, -2.0f, 1e-6);
    assert_float_equal(hi, 3.0f, 1e-6);
    assert_int_equal(pare_quant_observer_count(ob), 6);
    pare_quant_observer_add(ob, bad, 2);
    assert_int_equal(pare_quant_observer_nonfinite(ob), 1);
    pare_quant_observer_free(ob);

    /* no histogram: hist-based algos are refused */
    ob = pare_quant_observer_new(0);
    pare_quant_observer_add(ob, b1, 3);
    o.algo = PARE_QUANT_KL;
    assert_int_equal(pare_quant_observer_range(ob, &o, 8, &lo, &hi, &err), PARE_EINPUT);
    assert_string_equal(err.msg, "algo 'KL' needs a histogram the observer does not keep");
    pare_quant_observer_free(ob);
}

static void test_observer_hist_percentile_uniform(void **state)
{
    pare_quant_observer *ob = pare_quant_observer_new(2048);
    pare_quant_opts o = algo_opts(PARE_QUANT_HIST);
    pare_error err = {0};
    float x[10000], lo, hi;
    (void)state;
    /* growing batches: 0..1, then 0..2 (the histogram range doubles) */
    for (int b = 0; b < 10; b++) {
        float top = b < 5 ? 1.0f : 2.0f;
        for (int i = 0; i < 10000; i++)
            x[i] = (float)(urand() * top);
        pare_quant_observer_add(ob, x, 10000);
    }
    /* the mixture's CDF: F(t) = 0.5 t + 0.25 t for t <= 1 -> F(0.8) = 0.6;
       above 1: 0.75 + 0.25 (t - 1) -> F(1.8) = 0.95 */
    o.hist_percent = 0.6;
    assert_int_equal(pare_quant_observer_range(ob, &o, 8, &lo, &hi, &err), PARE_OK);
    assert_float_equal(lo, 0.0f, 1e-3); /* the observed minimum */
    assert_float_equal(hi, 0.8f, 0.01);
    o.hist_percent = 0.95;
    assert_int_equal(pare_quant_observer_range(ob, &o, 8, &lo, &hi, &err), PARE_OK);
    assert_float_equal(hi, 1.8f, 0.01);
    o.hist_percent = 1.0;
    assert_int_equal(pare_quant_observer_range(ob, &o, 8, &lo, &hi, &err), PARE_OK);
    assert_true(hi <= 2.0f && hi > 1.99f);
    pare_quant_observer_free(ob);
}

static void test_observer_kl_gaussian_outliers(void **state)
{
    pare_quant_observer *ob = pare_quant_observer_new(2048);
    pare_quant_opts o = algo_opts(PARE_QUANT_KL);
    pare_error err = {0};
    static float x[100000];
    float lo, hi;
    (void)state;
    for (int i = 0; i < 100000; i++)
        x[i] = (float)nrand();
    x[17] = 40.0f;
    x[99] = -35.0f;
    pare_quant_observer_add(ob, x, 100000);
    assert_int_equal(pare_quant_observer_range(ob, &o, 8, &lo, &hi, &err), PARE_OK);
    printf("KL on N(0,1) with outliers at 40: range [%g, %g]\n", lo, hi);
    assert_true(hi < 12.0f && hi > 2.5f);
    assert_true(lo > -12.0f && lo < -2.5f);
    pare_quant_observer_free(ob);
}

/* Measured MSE of symmetric fake quantization of x with threshold t. */
static double fq_mse(const float *x, int n, float t, int bits)
{
    double qmax = (1 << (bits - 1)) - 1, s = t / qmax, e = 0;
    for (int i = 0; i < n; i++) {
        double q = nearbyint(x[i] / s);
        q = q > qmax ? qmax : q < -qmax ? -qmax : q;
        e += (q * s - x[i]) * (q * s - x[i]);
    }
    return e / n;
}

static void test_observer_mse_heavy_tail(void **state)
{
    pare_quant_observer *ob = pare_quant_observer_new(2048);
    pare_quant_opts o = algo_opts(PARE_QUANT_MSE);
    pare_error err = {0};
    static float x[100000];
    float lo, hi, amax = 0;
    double e_mse, e_abs;
    (void)state;
    /* Laplace-like tail (ratio of gaussians would be Cauchy: too wild) */
    for (int i = 0; i < 100000; i++) {
        double u = urand() - 0.5;
        x[i] = (float)(-copysign(1.0, u) * log(1 - 2 * fabs(u) + 1e-12));
        amax = fabsf(x[i]) > amax ? fabsf(x[i]) : amax;
    }
    pare_quant_observer_add(ob, x, 100000);
    assert_int_equal(pare_quant_observer_range(ob, &o, 4, &lo, &hi, &err), PARE_OK);
    e_mse = fq_mse(x, 100000, hi > -lo ? hi : -lo, 4);
    e_abs = fq_mse(x, 100000, amax, 4);
    printf("4-bit MSE: mse-searched threshold %g -> %g; abs_max %g -> %g\n", hi, e_mse, amax, e_abs);
    assert_true(hi < 0.7f * amax);
    assert_true(e_mse < 0.7 * e_abs);
    pare_quant_observer_free(ob);
}

/* ---- graphs ---- */

static pare_quant_opts small_opts(void)
{
    pare_quant_opts o;
    pare_quant_opts_init(&o);
    o.batch_nums = 2;
    o.batch_size = 32;
    o.algo = PARE_QUANT_ABS_MAX;
    /* most tests count the pairs on quantized ops' inputs only */
    o.quantize_outputs = PARE_QUANT_OUTPUTS_OFF;
    return o;
}

static void test_lenet5_structure_per_preset(void **state)
{
    pare_graph *g = load_model("lenet5");
    pare_dataset *ds = sample();
    pare_quant_opts o = small_opts();
    pare_quant_report *rep = NULL;
    pare_graph *q;
    const pare_quant_tensor *t;
    (void)state;

    /* default (onnxruntime, Conv/Gemm/MatMul): 5 activations, 5 weights, 5 biases */
    q = quantize(g, ds, &o, &rep);
    assert_int_equal(count_op(q, "QuantizeLinear"), 5);
    assert_int_equal(count_op(q, "DequantizeLinear"), 15);
    assert_int_equal(pare_graph_opset(q, ""), 13);
    assert_int_equal(rep->n_quantized_nodes, 5);
    assert_int_equal(rep->n_tensors, 15);
    assert_int_equal(rep->n_warnings, 0);
    t = pare_quant_report_find(rep, "input");
    assert_non_null(t);
    assert_int_equal(t->kind, PARE_QUANT_ACTIVATION);
    assert_int_equal(t->dtype, PARE_I8);
    assert_int_equal(t->qmin, -128);
    assert_string_equal(pare_quant_report_map_name(rep, "input"), "input_DequantizeLinear_Output");
    /* the graph still has its float input and output names */
    assert_true(pare_graph_find_value(q, "input") >= 0);
    assert_true(pare_graph_find_value(q, "logits") >= 0);
    pare_quant_report_free(rep);
    pare_graph_free(q);

    /* uint8 activations */
    o.activation_unsigned = true;
    q = quantize(g, ds, &o, &rep);
    t = pare_quant_report_find(rep, "input");
    assert_int_equal(t->dtype, PARE_U8);
    assert_int_equal(t->qmax, 255);
    pare_quant_report_free(rep);
    pare_graph_free(q);
    /* uint8 symmetric: zero point at the midpoint */
    o.activation_symmetric = true;
    q = quantize(g, ds, &o, &rep);
    t = pare_quant_report_find(rep, "input");
    assert_int_equal(t->zero_points[0], 128);
    assert_float_equal(t->scales[0], 2.0f * fmaxf(fabsf(t->lo), fabsf(t->hi)) / 255.0f, 1e-7);
    pare_quant_report_free(rep);
    pare_graph_free(q);
    o.activation_symmetric = false;
    o.activation_unsigned = false;

    /* tensorrt: symmetric activations (zp 0); its default layout has pairs
       only on quantized ops' inputs, the other presets' on outputs too */
    o.preset = PARE_QUANT_PRESET_TENSORRT;
    o.quantize_outputs = PARE_QUANT_OUTPUTS_AUTO;
    assert_false(pare_quant_outputs_on(&o));
    o.preset = PARE_QUANT_PRESET_U8S8;
    assert_true(pare_quant_outputs_on(&o));
    o.quantize_outputs = PARE_QUANT_OUTPUTS_OFF;
    o.preset = PARE_QUANT_PRESET_TENSORRT;
    q = quantize(g, ds, &o, &rep);
    assert_int_equal(count_op(q, "QuantizeLinear"), 5);
    for (int i = 0; i < rep->n_tensors; i++)
        assert_int_equal(rep->tensors[i].zero_points[0], 0);
    t = pare_quant_report_find(rep, "input");
    assert_int_equal(t->qmin, -127);
    pare_quant_report_free(rep);
    pare_graph_free(q);

    /* u8s8: uint8 activations and 7-bit weights */
    o.preset = PARE_QUANT_PRESET_U8S8;
    o.reduce_range = true;
    q = quantize(g, ds, &o, &rep);
    assert_int_equal(pare_quant_report_find(rep, "input")->dtype, PARE_U8);
    for (int i = 0; i < rep->n_tensors; i++)
        if (rep->tensors[i].kind == PARE_QUANT_WEIGHT)
            assert_int_equal(rep->tensors[i].qmax, 64);
    pare_quant_report_free(rep);
    pare_graph_free(q);
    o.preset = PARE_QUANT_PRESET_ONNXRUNTIME;
    o.reduce_range = false;

    /* full quantization: Relu and MaxPool inputs too */
    o.is_full_quantize = true;
    q = quantize(g, ds, &o, &rep);
    printf("lenet5 full: %d Q, %d DQ\n", count_op(q, "QuantizeLinear"), count_op(q, "DequantizeLinear"));
    assert_int_equal(count_op(q, "QuantizeLinear"), 11);
    assert_int_equal(rep->n_quantized_nodes, 11);
    pare_quant_report_free(rep);
    pare_graph_free(q);
    o.is_full_quantize = false;

    /* outputs too (ONNX Runtime's default layout): the pairs after conv1,
       conv2, fc1 and fc2 move past their Relu (ORT folds a Relu into a Q
       whose zero point is the lowest code), so each Relu reads its Conv/Gemm
       directly and a Q reads the Relu: input, 4 Relu outputs, pool1 (conv2's
       input) and the flattened fc1 input = 7 Q; logits stays float */
    o.quantize_outputs = PARE_QUANT_OUTPUTS_AUTO;
    q = quantize(g, ds, &o, &rep);
    assert_int_equal(count_op(q, "QuantizeLinear"), 7);
    int n_relu = 0;
    for (int n = 0; n < q->n_nodes; n++)
        if (!strcmp(q->nodes[n].op_type, "Relu")) {
            int p = q->values[q->nodes[n].inputs[0]].producer, y = q->nodes[n].outputs[0];
            assert_true(p >= 0);
            assert_true(!strcmp(q->nodes[p].op_type, "Conv") || !strcmp(q->nodes[p].op_type, "Gemm"));
            assert_int_equal(q->values[y].n_consumers, 1);
            int c = q->values[y].consumers[0];
            assert_string_equal(q->nodes[c].op_type, "QuantizeLinear");
            /* asymmetric int8 after a Relu: zero point at the lowest code */
            t = pare_quant_report_find(rep, q->values[y].name);
            assert_non_null(t);
            assert_int_equal(t->zero_points[0], -128);
            n_relu++;
        }
    assert_int_equal(n_relu, 4);
    assert_string_equal(q->values[q->outputs[0]].name, "logits");
    assert_string_equal(q->nodes[q->values[q->outputs[0]].producer].op_type, "Gemm");
    pare_quant_report_free(rep);
    pare_graph_free(q);
    /* forced on with symmetric activations: no zero point at the lowest
       code, so the pair stays between each Conv/Gemm and its Relu */
    o.quantize_outputs = PARE_QUANT_OUTPUTS_ON;
    o.activation_symmetric = true;
    q = quantize(g, ds, &o, &rep);
    assert_int_equal(count_op(q, "QuantizeLinear"), 9);
    for (int n = 0; n < q->n_nodes; n++)
        if (!strcmp(q->nodes[n].op_type, "Relu")) {
            int p = q->values[q->nodes[n].inputs[0]].producer;
            assert_true(p >= 0);
            assert_string_equal(q->nodes[p].op_type, "DequantizeLinear");
        }
    pare_quant_report_free(rep);
    pare_graph_free(q);
    o.activation_symmetric = false;
    o.quantize_outputs = PARE_QUANT_OUTPUTS_OFF;

    /* weight only: no QuantizeLinear, weights as DQ, biases stay float */
    o.weight_only = true;
    q = quantize(g, ds, &o, &rep);
    assert_int_equal(count_op(q, "QuantizeLinear"), 0);
    assert_int_equal(count_op(q, "DequantizeLinear"), 5);
    pare_quant_report_free(rep);
    pare_graph_free(q);

    pare_dataset_free(ds);
    pare_graph_free(g);
}

static void test_skip_lists(void **state)
{
    pare_graph *g = load_model("lenet5");
    pare_dataset *ds = sample();
    pare_quant_opts o = small_opts();
    pare_quant_report *rep = NULL;
    pare_quant_calib *c = NULL;
    pare_graph *q = NULL;
    pare_error err = {0};
    const char *weight = NULL, *gemm_name = NULL;
    const char *skips[2];
    (void)state;

    for (int n = 0; n < g->n_nodes; n++)
        if (!strcmp(g->nodes[n].op_type, "Gemm")) {
            weight = g->values[g->nodes[n].inputs[1]].name;
            gemm_name = g->nodes[n].name;
            break;
        }
    assert_non_null(weight);
    /* a weight name skips its node; a misspelt name is a warning with a hint */
    {
        char typo[256];
        snprintf(typo, sizeof typo, "%sx", weight);
        skips[0] = weight;
        skips[1] = typo;
        o.skip_tensor_list = skips;
        o.n_skip_tensor_list = 2;
        q = quantize(g, ds, &o, &rep);
        assert_int_equal(rep->n_quantized_nodes, 4);
        assert_int_equal(rep->n_skipped_nodes, 1);
        assert_string_equal(rep->skipped_nodes[0], gemm_name);
        assert_null(pare_quant_report_find(rep, weight));
        assert_int_equal(rep->n_warnings, 1);
        {
            char want[768];
            snprintf(want, sizeof want, "skip_tensor_list: '%s' is not a value of the model "
                     "(did you mean '%s'?)", typo, weight);
            assert_string_equal(rep->warnings[0], want);
        }
        assert_int_equal(count_op(q, "QuantizeLinear"), 4);
        pare_quant_report_free(rep);
        pare_graph_free(q);

        /* strict: the same name is an error */
        o.strict = true;
        assert_int_equal(pare_quant_calibrate(g, ds, &o, NULL, &c, &err), PARE_EINPUT);
        assert_string_equal(err.where, "skip_tensor_list");
        {
            char want[512];
            snprintf(want, sizeof want, "'%s' is not a value of the model", typo);
            assert_string_equal(err.msg, want);
            snprintf(want, sizeof want, "did you mean '%s'?", weight);
            assert_string_equal(err.hint, want);
        }
        assert_null(c);
        o.strict = false;
    }
    /* an activation name: only that tensor stays float; its consumer keeps
       its quantized weight and a float bias */
    skips[0] = "input";
    o.n_skip_tensor_list = 1;
    q = quantize(g, ds, &o, &rep);
    assert_null(pare_quant_report_find(rep, "input"));
    assert_int_equal(count_op(q, "QuantizeLinear"), 4);
    assert_int_equal(count_op(q, "DequantizeLinear"), 4 + 5 + 4);
    pare_quant_report_free(rep);
    pare_graph_free(q);
    /* not_quant_pattern on a node name */
    o.n_skip_tensor_list = 0;
    {
        const char *pats[2] = {gemm_name, "no-such-thing"};
        o.not_quant_pattern = pats;
        o.n_not_quant_pattern = 2;
        q = quantize(g, ds, &o, &rep);
        assert_true(rep->n_skipped_nodes >= 1);
        assert_int_equal(rep->n_warnings, 1);
        assert_string_equal(rep->warnings[0],
                            "not_quant_pattern: 'no-such-thing' matches no node or value name");
        pare_quant_report_free(rep);
        pare_graph_free(q);
    }
    pare_dataset_free(ds);
    pare_graph_free(g);
}

static void test_axes_and_bias_scale(void **state)
{
    pare_graph *g = load_model("lenet5");
    pare_graph *v = load_model("tiny_vit");
    pare_dataset *ds = sample();
    pare_quant_opts o = small_opts();
    pare_quant_report *rep = NULL;
    pare_graph *q;
    (void)state;

    q = quantize(g, ds, &o, &rep);
    for (int n = 0; n < g->n_nodes; n++) {
        const pare_node *node = &g->nodes[n];
        const pare_quant_tensor *w, *b, *x;
        const pare_tensor *wt;
        if (strcmp(node->op_type, "Conv") && strcmp(node->op_type, "Gemm"))
            continue;
        wt = g->values[node->inputs[1]].init;
        w = pare_quant_report_find(rep, g->values[node->inputs[1]].name);
        b = pare_quant_report_find(rep, g->values[node->inputs[2]].name);
        x = pare_quant_report_find(rep, g->values[node->inputs[0]].name);
        assert_non_null(w);
        assert_non_null(b);
        assert_non_null(x);
        if (!strcmp(node->op_type, "Conv"))
            assert_int_equal(w->axis, 0);
        else
            assert_int_equal(w->axis, pare_node_attr_int(node, "transB", 0) ? 0 : 1);
        assert_int_equal(w->n_scales, wt->dims[w->axis]);
        assert_int_equal(w->zero_points[0], 0);
        assert_true(w->snr_db > 30.0);
        assert_int_equal(b->dtype, PARE_I32);
        assert_int_equal(b->n_scales, w->n_scales);
        for (int c = 0; c < w->n_scales; c++)
            assert_float_equal(b->scales[c], x->scales[0] * w->scales[c], 1e-12);
    }
    pare_quant_report_free(rep);
    pare_graph_free(q);

    /* per tensor */
    o.weight_quantize_type = PARE_QUANT_W_ABS_MAX;
    q = quantize(g, ds, &o, &rep);
    for (int i = 0; i < rep->n_tensors; i++) {
        assert_int_equal(rep->tensors[i].axis, -1);
        assert_int_equal(rep->tensors[i].n_scales, 1);
    }
    pare_quant_report_free(rep);
    pare_graph_free(q);

    /* MatMul weights [K, N]: axis 1 */
    o.weight_quantize_type = PARE_QUANT_CHANNEL_WISE_ABS_MAX;
    q = quantize(v, ds, &o, &rep);
    {
        int seen = 0;
        for (int n = 0; n < v->n_nodes; n++) {
            const pare_node *node = &v->nodes[n];
            const pare_quant_tensor *w;
            if (strcmp(node->op_type, "MatMul") || !v->values[node->inputs[1]].init)
                continue;
            w = pare_quant_report_find(rep, v->values[node->inputs[1]].name);
            assert_non_null(w);
            assert_int_equal(w->axis, 1);
            seen++;
        }
        assert_true(seen >= 9);
    }
    pare_quant_report_free(rep);
    pare_graph_free(q);
    pare_dataset_free(ds);
    pare_graph_free(g);
    pare_graph_free(v);
}

static void test_nbit_and_blockwise(void **state)
{
    pare_graph *g = load_model("lenet5");
    pare_dataset *ds = sample();
    pare_quant_opts o = small_opts();
    pare_quant_report *rep = NULL;
    pare_graph *q;
    double base, acc;
    (void)state;

    base = top1(g, ds);
    /* 4-bit weights: stored values within +-7; 6-bit activations: a Clip to
       the 6-bit range before each QuantizeLinear */
    o.weight_bits = 4;
    o.activation_bits = 6;
    q = quantize(g, ds, &o, &rep);
    for (int i = 0; i < rep->n_tensors; i++) {
        const pare_quant_tensor *t = &rep->tensors[i];
        if (t->kind == PARE_QUANT_WEIGHT) {
            int v = pare_graph_find_value(q, t->stored_name);
            const int8_t *d;
            assert_true(v >= 0);
            d = q->values[v].init->data;
            assert_int_equal(t->qmax, 7);
            for (int64_t k = 0; k < pare_tensor_numel(q->values[v].init); k++)
                assert_true(d[k] >= -7 && d[k] <= 7);
        } else if (t->kind == PARE_QUANT_ACTIVATION) {
            assert_int_equal(t->qmin, -32);
            assert_int_equal(t->qmax, 31);
        }
    }
    assert_int_equal(count_op(q, "Clip"), 5);
    acc = top1(q, ds);
    printf("lenet5 W4A6 per-channel on the sample: %.2f %% (fp32 %.2f %%)\n", 100 * acc, 100 * base);
    assert_true(acc > base - 0.10);
    pare_quant_report_free(rep);
    pare_graph_free(q);

    /* block-wise weights: opset 21, blocked DequantizeLinear */
    o.weight_bits = 8;
    o.activation_bits = 8;
    o.block_size = 32;
    q = quantize(g, ds, &o, &rep);
    assert_int_equal(pare_graph_opset(q, ""), 21);
    assert_int_equal(rep->opset_before, 13);
    {
        int blocked = 0;
        for (int n = 0; n < q->n_nodes; n++)
            if (!strcmp(q->nodes[n].op_type, "DequantizeLinear") &&
                pare_node_attr_int(&q->nodes[n], "block_size", 0) == 32)
                blocked++;
        assert_int_equal(blocked, 5);
    }
    acc = top1(q, ds);
    printf("lenet5 int8 block-wise (32) on the sample: %.2f %%\n", 100 * acc);
    assert_true(acc > base - 0.01);
    pare_quant_report_free(rep);
    pare_graph_free(q);

    pare_dataset_free(ds);
    pare_graph_free(g);
}

/* MSE-searched weight clipping beats abs max at 3 bits: higher SNR on every
 * weight, and no worse accuracy on the sample. */
static void test_weight_mse_clip(void **state)
{
    pare_graph *g = load_model("lenet5");
    pare_dataset *ds = sample();
    pare_quant_opts o = small_opts();
    pare_quant_report *r1 = NULL, *r2 = NULL;
    pare_graph *q1, *q2;
    double a1, a2;
    (void)state;
    o.weight_bits = 3;
    q1 = quantize(g, ds, &o, &r1);
    o.weight_mse = true;
    q2 = quantize(g, ds, &o, &r2);
    for (int i = 0; i < r1->n_tensors; i++) {
        const pare_quant_tensor *t1 = &r1->tensors[i], *t2;
        if (t1->kind != PARE_QUANT_WEIGHT)
            continue;
        t2 = pare_quant_report_find(r2, t1->name);
        assert_non_null(t2);
        printf("W3 %-12s SNR abs_max %.2f dB, mse clip %.2f dB\n", t1->name, t1->snr_db, t2->snr_db);
        assert_true(t2->snr_db > t1->snr_db);
    }
    a1 = top1(q1, ds);
    a2 = top1(q2, ds);
    printf("lenet5 W3A8 on the sample: abs_max %.2f %%, mse clip %.2f %%\n", 100 * a1, 100 * a2);
    assert_true(a2 >= a1 - 0.01);
    pare_quant_report_free(r1);
    pare_quant_report_free(r2);
    pare_graph_free(q1);
    pare_graph_free(q2);
    pare_dataset_free(ds);
    pare_graph_free(g);
}

static void test_blockwise_refuses_opset_change(void **state)
{
    pare_graph *v = load_model("tiny_vit");
    pare_dataset *ds = sample();
    pare_quant_opts o = small_opts();
    pare_quant_calib *c = NULL;
    pare_graph *q = NULL;
    pare_error err = {0};
    (void)state;
    o.block_size = 16;
    assert_int_equal(pare_quant_calibrate(v, ds, &o, NULL, &c, &err), PARE_OK);
    assert_int_equal(pare_quant_build(v, c, &o, &q, NULL, &err), PARE_EUNSUPPORTED);
    assert_non_null(strstr(err.msg, "cannot raise the model's opset from 13 to 21: ReduceMean "
                                    "changed form in opset 18"));
    assert_string_equal(err.hint, "block-wise weights need opset 21: quantize per channel instead");
    assert_null(q);
    pare_quant_calib_free(c);
    pare_dataset_free(ds);
    pare_graph_free(v);
}

static void test_tables(void **state)
{
    pare_graph *g = load_model("lenet5");
    pare_dataset *ds = sample();
    pare_quant_opts o = small_opts();
    pare_quant_calib *c = NULL;
    pare_error err = {0};
    char dir[] = "/tmp/pare-quant-XXXXXX", path[256], line[512];
    FILE *f;
    int lines = 0, comments = 0;
    (void)state;
    assert_non_null(mkdtemp(dir));
    assert_int_equal(pare_quant_calibrate(g, ds, &o, NULL, &c, &err), PARE_OK);
    assert_int_equal(pare_quant_calib_count(c), 5);
    assert_int_equal(pare_quant_calib_samples(c), 64);
    snprintf(path, sizeof path, "%s/calibration_table.txt", dir);
    assert_int_equal(pare_quant_write_table(c, &o, path, &err), PARE_OK);
    f = fopen(path, "r");
    assert_non_null(f);
    while (fgets(line, sizeof line, f)) {
        char name[256];
        float lo, hi;
        if (line[0] == '#') {
            comments++;
            continue;
        }
        assert_int_equal(sscanf(line, "%255s %g %g", name, &lo, &hi), 3);
        assert_true(lo <= hi);
        lines++;
    }
    fclose(f);
    assert_true(comments >= 3);
    assert_int_equal(lines, 5);
    remove(path);

    snprintf(path, sizeof path, "%s/calibration.cache", dir);
    assert_int_equal(pare_quant_write_trt_cache(c, &o, path, &err), PARE_OK);
    f = fopen(path, "r");
    assert_non_null(f);
    assert_non_null(fgets(line, sizeof line, f));
    assert_string_equal(line, "TRT-8600-EntropyCalibration2\n");
    lines = 0;
    while (fgets(line, sizeof line, f)) {
        char *colon = strrchr(line, ':');
        unsigned bits;
        float scale, lo, hi;
        int i;
        assert_non_null(colon);
        *colon = '\0';
        assert_int_equal(sscanf(colon + 1, " %8x", &bits), 1);
        memcpy(&scale, &bits, sizeof scale);
        i = pare_quant_calib_find(c, line);
        assert_true(i >= 0);
        assert_int_equal(pare_quant_observer_range(pare_quant_calib_observer(c, i), &o, 8, &lo, &hi,
                                                   &err), PARE_OK);
        assert_float_equal(scale, fmaxf(fabsf(lo), fabsf(hi)) / 127.0f, 1e-9);
        lines++;
    }
    fclose(f);
    assert_int_equal(lines, 5);
    remove(path);
    /* unwritable path: EIO naming it, nothing left behind */
    assert_int_equal(pare_quant_write_table(c, &o, "/nonexistent-dir/t.txt", &err), PARE_EIO);
    assert_string_equal(err.where, "/nonexistent-dir/t.txt");
    rmdir(dir);
    pare_quant_calib_free(c);
    pare_dataset_free(ds);
    pare_graph_free(g);
}

static bool cancel_after_one(void *user, const pare_progress_event *ev)
{
    int *calls = user;
    (*calls)++;
    assert_string_equal(ev->stage, "calibrate");
    return ev->done < 1;
}

static void test_calibrate_cancel_and_errors(void **state)
{
    pare_graph *g = load_model("lenet5");
    pare_dataset *ds = sample();
    pare_quant_opts o = small_opts();
    pare_quant_calib *c = NULL;
    pare_graph *q = NULL;
    pare_error err = {0};
    int calls = 0;
    pare_progress p = {.report = cancel_after_one, .user = &calls};
    (void)state;
    assert_int_equal(pare_quant_calibrate(g, ds, &o, &p, &c, &err), PARE_ECANCELED);
    assert_int_equal(calls, 1);
    assert_null(c);
    /* building without a calibration needs weight_only */
    assert_int_equal(pare_quant_build(g, NULL, &o, &q, NULL, &err), PARE_EINPUT);
    assert_string_equal(err.msg, "activation 'input' has no calibration range");
    assert_string_equal(err.hint, "calibrate with the same quantize_op_types and skip lists");
    o.weight_only = true;
    assert_int_equal(pare_quant_build(g, NULL, &o, &q, NULL, &err), PARE_OK);
    pare_graph_free(q);
    pare_dataset_free(ds);
    pare_graph_free(g);
}

/* ---- accuracy on the sample ---- */

static void test_accuracy_sample(void **state)
{
    const char *models[] = {"lenet5", "resnet8"};
    pare_dataset *ds = sample();
    (void)state;
    for (int m = 0; m < 2; m++) {
        pare_graph *g = load_model(models[m]);
        pare_quant_opts o;
        pare_quant_report *rep = NULL;
        pare_graph *q;
        double a32, a8;
        pare_quant_opts_init(&o);
        o.batch_nums = 8;
        o.batch_size = 32;
        o.algo = PARE_QUANT_ABS_MAX;
        q = quantize(g, ds, &o, &rep);
        a32 = top1(g, ds);
        a8 = top1(q, ds);
        printf("%s on the 256-image sample: fp32 %.2f %%, int8 per-channel abs_max %.2f %%\n",
               models[m], 100 * a32, 100 * a8);
        assert_true(a8 >= a32 - 0.01);
        pare_quant_report_free(rep);
        pare_graph_free(q);
        pare_graph_free(g);
    }
    pare_dataset_free(ds);
}

static void test_bias_correction(void **state)
{
    pare_graph *g = load_model("resnet8");
    pare_dataset *ds = sample();
    pare_quant_opts o = small_opts();
    pare_quant_report *rep = NULL;
    pare_graph *q;
    pare_error err = {0};
    pare_exec *xf = NULL, *xq = NULL;
    pare_exec_opts eo = {.batch = 64};
    double before, after;
    (void)state;
    o.weight_bits = 4;
    o.weight_quantize_type = PARE_QUANT_W_ABS_MAX;
    q = quantize(g, ds, &o, &rep);

    /* mean output shift of the logits vs fp32, before and after */
    for (int pass = 0; pass < 2; pass++) {
        double shift = 0;
        assert_int_equal(pare_exec_new(g, &eo, &xf, &err), PARE_OK);
        assert_int_equal(pare_exec_new(q, &eo, &xq, &err), PARE_OK);
        for (int b = 0; b < 4; b++) {
            const float *yf, *yq;
            assert_int_equal(pare_dataset_fill(ds, b * 64, 64, pare_exec_input(xf, 0), NULL, &err), PARE_OK);
            assert_int_equal(pare_dataset_fill(ds, b * 64, 64, pare_exec_input(xq, 0), NULL, &err), PARE_OK);
            assert_int_equal(pare_exec_run(xf, &err), PARE_OK);
            assert_int_equal(pare_exec_run(xq, &err), PARE_OK);
            yf = pare_exec_output(xf, 0)->data;
            yq = pare_exec_output(xq, 0)->data;
            for (int k = 0; k < 640; k++)
                shift += fabs((double)yq[k] - yf[k]);
        }
        pare_exec_free(xf);
        pare_exec_free(xq);
        if (pass == 0) {
            before = shift / 2560;
            assert_int_equal(pare_quant_bias_correct(g, q, ds, &o, rep, NULL, &err), PARE_OK);
            assert_int_equal(rep->n_bias_corrected, 10);
        } else {
            after = shift / 2560;
        }
    }
    printf("resnet8 W4 per-tensor: mean |logit error| %.4f before bias correction, %.4f after\n",
           before, after);
    assert_true(after < before);
    pare_quant_report_free(rep);
    pare_graph_free(q);
    pare_dataset_free(ds);
    pare_graph_free(g);
}

/* AdaRound at 3 bits: the logits move closer to fp32 than with nearest
 * rounding, and accuracy on the sample does not drop. */
static void test_reconstruct_layer_wise(void **state)
{
    pare_graph *g = load_model("lenet5");
    pare_dataset *ds = sample();
    pare_quant_opts o = small_opts();
    pare_quant_report *rep = NULL;
    pare_graph *q;
    pare_error err = {0};
    double a0, a1, e0, e1;
    (void)state;
    o.weight_bits = 3;
    o.batch_nums = 4;
    o.recon_level = PARE_QUANT_RECON_LAYER_WISE;
    q = quantize(g, ds, &o, &rep);
    a0 = top1(q, ds);
    e0 = logit_diff(g, q, ds, false);
    assert_int_equal(pare_quant_reconstruct(g, q, ds, &o, rep, NULL, &err), PARE_OK);
    assert_int_equal(rep->n_reconstructed, 5);
    a1 = top1(q, ds);
    e1 = logit_diff(g, q, ds, false);
    printf("lenet5 W3A8 on the sample: nearest rounding %.2f %% (|logit err| %.4f), "
           "AdaRound %.2f %% (%.4f)\n", 100 * a0, e0, 100 * a1, e1);
    assert_true(e1 < e0);
    assert_true(a1 >= a0 - 0.01);
    /* bad settings are input errors */
    o.recon_epochs = 0;
    assert_int_equal(pare_quant_reconstruct(g, q, ds, &o, rep, NULL, &err), PARE_EINPUT);
    assert_string_equal(err.msg, "reconstruction needs epochs >= 1 and lr > 0 (got 0, 0.05)");
    pare_quant_report_free(rep);
    pare_graph_free(q);
    pare_dataset_free(ds);
    pare_graph_free(g);
}

/* ---- straight-through backward ---- */

/* Runs Q then DQ (per-axis on axis 1) on x and back-propagates dy; returns
 * dx and the summed scale gradient. */
static void qdq_backward(const pare_tensor *x, const pare_tensor *scale, const pare_tensor *zp,
                         const pare_tensor *dy, pare_tensor *dx, pare_tensor *dscale)
{
    const pare_op_def *qd = pare_op_find("", "QuantizeLinear", 13);
    const pare_op_def *dd = pare_op_find("", "DequantizeLinear", 13);
    pare_node qn = {.name = (char *)"q", .op_type = (char *)"QuantizeLinear", .domain = (char *)""};
    pare_node dn = {.name = (char *)"dq", .op_type = (char *)"DequantizeLinear", .domain = (char *)""};
    pare_tensor yq, y, *qin[3], *qout[1], *din[3], *dout[1], *qdin[3] = {0}, *qdout[1];
    pare_tensor *dq_f32 = pare_tensor_new(PARE_F32, x->ndim, x->dims);
    pare_tensor *ds2 = pare_tensor_new(PARE_F32, scale->ndim, scale->dims);
    pare_error err = {0};
    pare_op_ctx c = {0};
    assert_non_null(qd);
    assert_non_null(dd);
    assert_non_null(qd->backward);
    assert_non_null(dd->backward);
    pare_tensor_view(&yq, PARE_UNDEFINED, -1, NULL, NULL);
    pare_tensor_view(&y, PARE_UNDEFINED, -1, NULL, NULL);
    /* forward Q */
    qin[0] = (pare_tensor *)x;
    qin[1] = (pare_tensor *)scale;
    qin[2] = (pare_tensor *)zp;
    qout[0] = &yq;
    c.node = &qn;
    c.opset = 13;
    c.n_in = 3;
    c.in = qin;
    c.n_out = 1;
    c.out = qout;
    c.n_threads = 1;
    c.where = "q";
    c.err = &err;
    assert_int_equal(qd->infer(&c), PARE_OK);
    yq.data = pare_alloc(pare_tensor_nbytes(&yq));
    assert_int_equal(qd->forward(&c), PARE_OK);
    /* forward DQ */
    {
        pare_op_ctx d = c;
        pare_tensor *din_in[3] = {&yq, (pare_tensor *)scale, (pare_tensor *)zp};
        pare_tensor *dout_out[1] = {&y};
        d.node = &dn;
        d.in = din_in;
        d.out = dout_out;
        assert_int_equal(dd->infer(&d), PARE_OK);
        y.data = pare_alloc(pare_tensor_nbytes(&y));
        assert_int_equal(dd->forward(&d), PARE_OK);
        /* DQ backward: gradient for its integer input is carried in float */
        dout[0] = (pare_tensor *)dy;
        din[0] = dq_f32;
        din[1] = ds2;
        din[2] = NULL;
        d.dout = dout;
        d.din = din;
        assert_int_equal(dd->backward(&d), PARE_OK);
    }
    /* Q backward with that gradient */
    qdout[0] = dq_f32;
    qdin[0] = dx;
    qdin[1] = dscale;
    c.dout = qdout;
    c.din = qdin;
    assert_int_equal(qd->backward(&c), PARE_OK);
    for (int64_t i = 0; i < pare_tensor_numel(dscale); i++)
        pare_tensor_f32(dscale)[i] += pare_tensor_f32(ds2)[i];
    pare_free(yq.data);
    pare_free(y.data);
    pare_tensor_free(dq_f32);
    pare_tensor_free(ds2);
}

static void test_ste_backward(void **state)
{
    const int64_t xd[2] = {2, 3}, sd[1] = {3};
    pare_tensor *x = pare_tensor_new(PARE_F32, 2, xd), *dy = pare_tensor_new(PARE_F32, 2, xd);
    pare_tensor *dx = pare_tensor_new(PARE_F32, 2, xd);
    pare_tensor *s = pare_tensor_new(PARE_F32, 1, sd), *ds = pare_tensor_new(PARE_F32, 1, sd);
    pare_tensor *zp = pare_tensor_new(PARE_I8, 1, sd);
    /* scales 0.1 (range [-12.8, 12.7]), 0.01 ([-1.28, 1.27]), 1 */
    const float xv[6] = {0.33f, 1.234f, -3.3f, 20.0f, -2.0f, 100.4f};
    (void)state;
    pare_tensor_f32(s)[0] = 0.1f;
    pare_tensor_f32(s)[1] = 0.01f;
    pare_tensor_f32(s)[2] = 1.0f;
    memcpy(x->data, xv, sizeof xv);
    for (int i = 0; i < 6; i++)
        pare_tensor_f32(dy)[i] = (float)(i + 1);
    qdq_backward(x, s, zp, dy, dx, ds);
    /* in range: d(DQ(Q(x)))/dx = 1; outside: 0 (axis 1: columns share a scale) */
    assert_float_equal(pare_tensor_f32(dx)[0], 1.0f, 1e-5);  /* 0.33 in [-12.8, 12.7] */
    assert_float_equal(pare_tensor_f32(dx)[1], 2.0f, 1e-5);  /* 1.234 in [-1.28, 1.27] */
    assert_float_equal(pare_tensor_f32(dx)[2], 3.0f, 1e-5);  /* -3.3 in [-128, 127] */
    assert_float_equal(pare_tensor_f32(dx)[3], 0.0f, 0);     /* 20 > 12.7 */
    assert_float_equal(pare_tensor_f32(dx)[4], 0.0f, 0);     /* -2 < -1.28 */
    assert_float_equal(pare_tensor_f32(dx)[5], 6.0f, 1e-5);  /* 100.4 in range */
    /* LSQ scale gradient: dy (round(x/s) - x/s) inside, dy (qmax|qmin - zp) clipped */
    assert_float_equal(pare_tensor_f32(ds)[0], 1.0f * (3.0f - 3.3f) + 4.0f * 127.0f, 1e-3);
    assert_float_equal(pare_tensor_f32(ds)[1], 2.0f * (123.0f - 123.4f) + 5.0f * -128.0f, 1e-2);
    assert_float_equal(pare_tensor_f32(ds)[2], 3.0f * (-3.0f + 3.3f) + 6.0f * (100.0f - 100.4f), 1e-3);
    pare_tensor_free(x);
    pare_tensor_free(dy);
    pare_tensor_free(dx);
    pare_tensor_free(s);
    pare_tensor_free(ds);
    pare_tensor_free(zp);
}

/* DequantizeLinear is linear in its scale: finite differences agree. */
static void test_dq_scale_gradcheck(void **state)
{
    const int64_t xd[2] = {3, 4}, sd[1] = {4};
    pare_tensor *x = pare_tensor_new(PARE_I8, 2, xd), *s = pare_tensor_new(PARE_F32, 1, sd);
    pare_tensor *zp = pare_tensor_new(PARE_I8, 1, sd);
    pare_tensor *ins[3] = {x, s, zp};
    const bool wants[3] = {false, true, false};
    const pare_attr axis = {.name = (char *)"axis", .type = PARE_ATTR_INT, .i = 1};
    gc_case c = {.op_type = "DequantizeLinear", .opset = 13, .attrs = &axis, .n_attrs = 1,
                 .in = ins, .n_in = 3, .wants_grad = wants, .n_out = 1, .eps = 1e-3f};
    (void)state;
    for (int i = 0; i < 12; i++)
        ((int8_t *)x->data)[i] = (int8_t)(i * 17 - 100);
    for (int i = 0; i < 4; i++) {
        pare_tensor_f32(s)[i] = 0.05f * (float)(i + 1);
        ((int8_t *)zp->data)[i] = (int8_t)(i - 2);
    }
    assert_true(gradcheck(&c) < 5e-3);
    pare_tensor_free(x);
    pare_tensor_free(s);
    pare_tensor_free(zp);
}

/* Q backward refuses an integer gradient buffer for its output. */
static void test_q_backward_needs_float_grad(void **state)
{
    const pare_op_def *qd = pare_op_find("", "QuantizeLinear", 13);
    const int64_t xd[1] = {4};
    pare_tensor *x = pare_tensor_new(PARE_F32, 1, xd), *s = pare_tensor_new(PARE_F32, 0, NULL);
    pare_tensor *y = pare_tensor_new(PARE_U8, 1, xd), *gy = pare_tensor_new(PARE_U8, 1, xd);
    pare_tensor *gx = pare_tensor_new(PARE_F32, 1, xd);
    pare_tensor *in[2] = {x, s}, *out[1] = {y}, *dout[1] = {gy}, *din[2] = {gx, NULL};
    pare_node n = {.name = (char *)"q", .op_type = (char *)"QuantizeLinear", .domain = (char *)""};
    pare_error err = {0};
    pare_op_ctx c = {.node = &n, .opset = 13, .n_in = 2, .in = in, .n_out = 1, .out = out,
                     .n_threads = 1, .where = "model.onnx: node 'q' (QuantizeLinear)", .err = &err,
                     .dout = dout, .din = din};
    (void)state;
    pare_tensor_f32(s)[0] = 1.0f;
    assert_int_equal(qd->backward(&c), PARE_EUNSUPPORTED);
    assert_string_equal(err.msg, "the gradient of the quantized output must be a float32 buffer, "
                                 "got uint8");
    assert_string_equal(err.where, "model.onnx: node 'q' (QuantizeLinear)");
    pare_tensor_free(x);
    pare_tensor_free(s);
    pare_tensor_free(y);
    pare_tensor_free(gy);
    pare_tensor_free(gx);
}

/* Every allocation of a build may fail: ENOMEM (or success), never a crash
 * or a leak (the sanitizer build checks leaks). */
static void test_build_survives_allocation_failures(void **state)
{
    pare_graph *g = load_model("lenet5");
    pare_dataset *ds = sample();
    pare_quant_opts o = small_opts();
    pare_quant_calib *c = NULL;
    pare_error err = {0};
    long before, total;
    int failures = 0;
    (void)state;
    assert_int_equal(pare_quant_calibrate(g, ds, &o, NULL, &c, &err), PARE_OK);
    before = pare_alloc_count();
    {
        pare_graph *q = NULL;
        pare_quant_report *r = NULL;
        assert_int_equal(pare_quant_build(g, c, &o, &q, &r, &err), PARE_OK);
        pare_graph_free(q);
        pare_quant_report_free(r);
    }
    total = pare_alloc_count() - before;
    for (long nth = 1; nth <= total; nth += 1 + total / 300) {
        pare_graph *q = NULL;
        pare_quant_report *r = NULL;
        pare_status rc;
        pare_alloc_fail_at(nth);
        rc = pare_quant_build(g, c, &o, &q, &r, &err);
        pare_alloc_fail_at(0);
        if (rc != PARE_OK) {
            assert_int_equal(rc, PARE_ENOMEM);
            assert_null(q);
            assert_null(r);
            failures++;
        }
        pare_graph_free(q);
        pare_quant_report_free(r);
    }
    assert_true(failures > 0);
    pare_quant_calib_free(c);
    pare_dataset_free(ds);
    pare_graph_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_qrange),
        cmocka_unit_test(test_scale_zp_rules),
        cmocka_unit_test(test_opts_check_and_names),
        cmocka_unit_test(test_observer_abs_max_avg),
        cmocka_unit_test(test_observer_hist_percentile_uniform),
        cmocka_unit_test(test_observer_kl_gaussian_outliers),
        cmocka_unit_test(test_observer_mse_heavy_tail),
        cmocka_unit_test(test_lenet5_structure_per_preset),
        cmocka_unit_test(test_skip_lists),
        cmocka_unit_test(test_axes_and_bias_scale),
        cmocka_unit_test(test_nbit_and_blockwise),
        cmocka_unit_test(test_weight_mse_clip),
        cmocka_unit_test(test_blockwise_refuses_opset_change),
        cmocka_unit_test(test_tables),
        cmocka_unit_test(test_calibrate_cancel_and_errors),
        cmocka_unit_test(test_accuracy_sample),
        cmocka_unit_test(test_bias_correction),
        cmocka_unit_test(test_reconstruct_layer_wise),
        cmocka_unit_test(test_ste_backward),
        cmocka_unit_test(test_dq_scale_gradcheck),
        cmocka_unit_test(test_q_backward_needs_float_grad),
        cmocka_unit_test(test_build_survives_allocation_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
