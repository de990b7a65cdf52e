/* Per-tensor bit widths (pare_quant_opts.tensor_bits, core/src/quant_bits.c):
 * the named weight or activation gets the n-bit range in its Q/DQ, every
 * other tensor 8 bits; node names set both; unknown names warn or fail with
 * a hint; QuantAware honours the same mapping. */
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
#include "pare/graph.h"
#include "pare/job.h"
#include "pare/quant.h"

#include "../../core/src/qat.h"
#include "quant_fixture.h"

static pare_quant_opts small_opts(void)
{
    pare_quant_opts o;
    pare_quant_opts_init(&o);
    o.batch_nums = 2;
    o.batch_size = 32;
    o.algo = PARE_QUANT_ABS_MAX;
    o.n_threads = 1;
    return o;
}

/* Largest |q| of the int8 initializer named name. */
static int max_abs_int8(const pare_graph *g, const char *name)
{
    int v = pare_graph_find_value(g, name), m = 0;
    const pare_tensor *t;

    if (v < 0 || !g->values[v].init)
        fail_msg("no initializer '%s'", name);
    t = g->values[v].init;
    assert_int_equal(t->dtype, PARE_I8);
    for (int64_t k = 0; k < pare_tensor_numel(t); k++) {
        int a = abs(((const int8_t *)t->data)[k]);
        m = a > m ? a : m;
    }
    return m;
}

static void expect_range(const pare_quant_report *r, const char *name, int bits, int32_t qmin,
                         int32_t qmax)
{
    const pare_quant_tensor *t = pare_quant_report_find(r, name);
    if (!t)
        fail_msg("'%s' is not in the report", name);
    if (t->bits != bits || t->qmin != qmin || t->qmax != qmax)
        fail_msg("'%s': %d bits [%d, %d], expected %d bits [%d, %d]", name, t->bits, t->qmin,
                 t->qmax, bits, qmin, qmax);
}

static void test_named_tensors_get_their_range(void **state)
{
    static const pare_quant_bits bits[] = {
        {"conv2.weight", 4},   /* a weight: conv2's weight */
        {"input", 6},          /* an activation */
        {"/fc1/Gemm", 3},      /* a node: fc1's weight and its input */
        {"/fc2/Gemm", 3},      /* a node, but ... */
        {"fc2.weight", 5},     /* ... a value name wins */
    };
    pare_graph *g = load_model("lenet5"), *q = NULL;
    pare_dataset *ds = sample();
    pare_quant_opts o = small_opts();
    pare_quant_calib *c = NULL;
    pare_quant_report *r = NULL;
    pare_error err = {0};
    (void)state;

    o.tensor_bits = bits;
    o.n_tensor_bits = 5;
    assert_int_equal(pare_quant_calibrate(g, ds, &o, NULL, &c, &err), PARE_OK);
    if (pare_quant_build(g, c, &o, &q, &r, &err) != PARE_OK)
        fail_msg("build: %s", err.msg);
    expect_range(r, "conv2.weight", 4, -7, 7);
    expect_range(r, "fc1.weight", 3, -3, 3);
    expect_range(r, "fc2.weight", 5, -15, 15);
    expect_range(r, "input", 6, -32, 31);
    expect_range(r, "/flatten/Flatten_output_0", 3, -4, 3);
    expect_range(r, "/relu3/Relu_output_0", 3, -4, 3);
    /* everything else 8 bits */
    expect_range(r, "conv1.weight", 8, -127, 127);
    expect_range(r, "fc3.weight", 8, -127, 127);
    expect_range(r, "/pool1/MaxPool_output_0", 8, -128, 127);
    /* the stored integers use the range: per-channel abs max maps to qmax */
    assert_int_equal(max_abs_int8(q, "conv2.weight_quantized"), 7);
    assert_int_equal(max_abs_int8(q, "fc1.weight_quantized"), 3);
    assert_int_equal(max_abs_int8(q, "conv1.weight_quantized"), 127);
    /* an activation below 8 bits gets a Clip to its n-bit range */
    {
        int clips = 0;
        for (int n = 0; n < q->n_nodes; n++)
            clips += !strcmp(q->nodes[n].op_type, "Clip");
        assert_true(clips >= 2);
    }
    assert_int_equal(r->n_warnings, 0);
    pare_quant_report_free(r);
    pare_graph_free(q);
    pare_quant_calib_free(c);
    pare_dataset_free(ds);
    pare_graph_free(g);
}

static void test_unknown_and_bad_names(void **state)
{
    pare_quant_bits bits[] = {{"conv2.weigth", 4}};
    pare_graph *g = load_model("lenet5"), *q = NULL;
    pare_quant_opts o = small_opts();
    pare_quant_report *r = NULL;
    pare_error err = {0};
    (void)state;

    o.weight_only = true;   /* no calibration needed */
    o.tensor_bits = bits;
    o.n_tensor_bits = 1;
    assert_int_equal(pare_quant_build(g, NULL, &o, &q, &r, &err), PARE_OK);
    assert_int_equal(r->n_warnings, 1);
    assert_string_equal(r->warnings[0], "tensor_bits: 'conv2.weigth' is not a value or node of "
                                        "the model (did you mean 'conv2.weight'?)");
    expect_range(r, "conv2.weight", 8, -127, 127);
    pare_quant_report_free(r);
    pare_graph_free(q);
    o.strict = true;
    assert_int_equal(pare_quant_build(g, NULL, &o, &q, &r, &err), PARE_EINPUT);
    assert_string_equal(err.where, "tensor_bits");
    assert_string_equal(err.msg, "'conv2.weigth' is not a value or node of the model");
    assert_string_equal(err.hint, "did you mean 'conv2.weight'?");
    bits[0].name = "conv2.weight";
    bits[0].bits = 9;
    assert_int_equal(pare_quant_opts_check(&o, &err), PARE_EINPUT);
    assert_string_equal(err.msg, "tensor_bits: 'conv2.weight' has 9 bits, outside 2..8");
    pare_graph_free(g);
}

/* QuantAware takes the job's tensor_bits: the weight's fake quantization
 * and the exported integers use its range. */
static void test_qat_honours_tensor_bits(void **state)
{
    pare_job *job = NULL;
    pare_graph *g = load_model("lenet5"), *q = NULL;
    pare_dataset *ds = sample();
    qat_state *st = NULL;
    pare_error err = {0};
    (void)state;

    assert_int_equal(pare_job_load_string("QuantAware:\n  tensor_bits: {conv2.weight: 4}\n",
                                          "job.yaml", &job, NULL, &err), PARE_OK);
    if (qat_prepare(g, ds, &job->quant_aware, 32, 2, 1, NULL, &q, &st, &err) != PARE_OK)
        fail_msg("qat_prepare: %s: %s", err.where, err.msg);
    assert_int_equal(qat_export(st, q, &err), PARE_OK);
    assert_int_equal(max_abs_int8(q, "conv2.weight_quantized"), 7);
    assert_int_equal(max_abs_int8(q, "conv1.weight_quantized"), 127);
    qat_free(st);
    pare_graph_free(q);
    pare_job_free(job);
    pare_dataset_free(ds);
    pare_graph_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_named_tensors_get_their_range),
        cmocka_unit_test(test_unknown_and_bad_names),
        cmocka_unit_test(test_qat_honours_tensor_bits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
