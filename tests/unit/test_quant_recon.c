/* Region-wise reconstruction (core/src/quant_recon.c): default regions on a
 * residual and a plain network, an explicit region, and the region errors
 * (unknown names with a hint, outputs that do not depend on the inputs or
 * need more inputs). */
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
#include "pare/quant.h"
#include "quant_fixture.h"

static pare_quant_opts small_opts(int weight_bits)
{
    pare_quant_opts o;
    pare_quant_opts_init(&o);
    o.batch_nums = 2;
    o.batch_size = 16;
    o.algo = PARE_QUANT_ABS_MAX;
    o.weight_bits = weight_bits;
    o.recon_epochs = 4;
    o.n_threads = 2;
    return o;
}

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


/* Reconstructs a fresh QDQ graph of g at o; returns the logit MSE after. */
static double reconstruct(const pare_graph *g, pare_dataset *ds, const pare_quant_opts *o,
                          int *n_layers, int *n_regions)
{
    pare_quant_report *rep = NULL;
    pare_graph *q = quantize(g, ds, o, &rep);
    pare_error err = {0};
    double e;

    if (pare_quant_reconstruct(g, q, ds, o, rep, NULL, &err) != PARE_OK)
        fail_msg("reconstruct: %s: %s (%s)", err.where, err.msg, err.hint);
    e = logit_diff(g, q, ds, true);
    *n_layers = rep->n_reconstructed;
    *n_regions = rep->n_recon_regions;
    pare_quant_report_free(rep);
    pare_graph_free(q);
    return e;
}

/* resnet8 at 3-bit weights: the default regions are the three residual
 * blocks (the stem conv and the classifier go layer-wise); learning each
 * block's rounding jointly brings the logits closer to fp32 than nearest
 * rounding. */
static void test_region_wise_residual_blocks(void **state)
{
    pare_graph *g = load_model("resnet8");
    pare_dataset *ds = sample();
    pare_quant_opts o = small_opts(3);
    pare_quant_report *rep = NULL;
    pare_graph *q = quantize(g, ds, &o, &rep);
    double e0 = logit_diff(g, q, ds, true), e_layer, e_region;
    int nl, nr;
    (void)state;

    o.recon_level = PARE_QUANT_RECON_LAYER_WISE;
    e_layer = reconstruct(g, ds, &o, &nl, &nr);
    assert_int_equal(nl, 10);
    assert_int_equal(nr, 0);
    o.recon_level = PARE_QUANT_RECON_REGION_WISE;
    e_region = reconstruct(g, ds, &o, &nl, &nr);
    assert_int_equal(nl, 10);
    assert_int_equal(nr, 3);
    printf("resnet8 W3A8 on the sample, logit MSE: nearest %.4f, layer-wise %.4f, "
           "region-wise %.4f\n", e0, e_layer, e_region);
    assert_true(e_region < e0);
    pare_quant_report_free(rep);
    pare_graph_free(q);
    pare_dataset_free(ds);
    pare_graph_free(g);
}

/* lenet5 has no residual Add: the default regions pair consecutive layers
 * (conv1+conv2, fc1+fc2; fc3 alone). */
static void test_region_wise_pairs(void **state)
{
    pare_graph *g = load_model("lenet5");
    pare_dataset *ds = sample();
    pare_quant_opts o = small_opts(3);
    pare_quant_report *rep = NULL;
    pare_graph *q = quantize(g, ds, &o, &rep);
    double e0 = logit_diff(g, q, ds, true), e1;
    int nl, nr;
    (void)state;

    o.recon_level = PARE_QUANT_RECON_REGION_WISE;
    e1 = reconstruct(g, ds, &o, &nl, &nr);
    printf("lenet5 W3A8 on the sample, logit MSE: nearest %.4f, region-wise %.4f\n", e0, e1);
    assert_int_equal(nl, 5);
    assert_int_equal(nr, 2);
    assert_true(e1 < e0);
    pare_quant_report_free(rep);
    pare_graph_free(q);
    pare_dataset_free(ds);
    pare_graph_free(g);
}

/* An explicit region: the whole of layer2. */
static void test_region_explicit(void **state)
{
    static const char *const in[] = {"/layer1/relu2/Relu_output_0"};
    static const char *const out[] = {"/layer2/Add_output_0"};
    pare_quant_region r = {.inputs = in, .n_inputs = 1, .outputs = out, .n_outputs = 1,
                           .where = "job.yaml:9:5"};
    pare_graph *g = load_model("resnet8");
    pare_dataset *ds = sample();
    pare_quant_opts o = small_opts(3);
    pare_quant_report *rep = NULL;
    pare_graph *q = quantize(g, ds, &o, &rep);
    double e0 = logit_diff(g, q, ds, true), e1;
    int nl, nr;
    (void)state;

    o.recon_level = PARE_QUANT_RECON_REGION_WISE;
    o.regions = &r;
    o.n_regions = 1;
    e1 = reconstruct(g, ds, &o, &nl, &nr);
    printf("resnet8 W3A8, layer2 as one region: logit MSE %.4f -> %.4f\n", e0, e1);
    assert_int_equal(nl, 10);
    assert_int_equal(nr, 1);
    assert_true(e1 < e0);
    pare_quant_report_free(rep);
    pare_graph_free(q);
    pare_dataset_free(ds);
    pare_graph_free(g);
}

static void expect_region_error(const pare_graph *g, const pare_graph *q0, pare_dataset *ds,
                                const char *in, const char *out, const char *msg, const char *hint)
{
    const char *ins[1] = {in}, *outs[1] = {out};
    pare_quant_region r = {.inputs = ins, .n_inputs = 1, .outputs = outs, .n_outputs = 1,
                           .where = "job.yaml:12:7"};
    pare_quant_opts o = small_opts(4);
    pare_graph *q = NULL;
    pare_error err = {0};

    assert_int_equal(pare_graph_clone(q0, &q, &err), PARE_OK);
    o.recon_level = PARE_QUANT_RECON_REGION_WISE;
    o.regions = &r;
    o.n_regions = 1;
    assert_int_equal(pare_quant_reconstruct(g, q, ds, &o, NULL, NULL, &err), PARE_EINPUT);
    assert_string_equal(err.where, "job.yaml:12:7");
    assert_string_equal(err.msg, msg);
    assert_string_equal(err.hint, hint);
    pare_graph_free(q);
}

static void test_region_errors(void **state)
{
    pare_graph *g = load_model("resnet8");
    pare_dataset *ds = sample();
    pare_quant_opts o = small_opts(4);
    pare_quant_report *rep = NULL;
    pare_graph *q = quantize(g, ds, &o, &rep);
    (void)state;

    expect_region_error(g, q, ds, "/layer1/relu2/Relu_output", "/layer2/Add_output_0",
                        "region 1: '/layer1/relu2/Relu_output' is not a value of the model",
                        "did you mean '/layer1/relu2/Relu_output_0'?");
    expect_region_error(g, q, ds, "/layer2/Add_output_0", "/layer1/relu2/Relu_output_0",
                        "region 1: output '/layer1/relu2/Relu_output_0' does not depend on the "
                        "region's inputs",
                        "a region is [[input names], [output names]], the outputs computed from "
                        "the inputs");
    /* the shortcut branch does not start at the region's input */
    expect_region_error(g, q, ds, "/layer2/relu1/Relu_output_0", "/layer2/Add_output_0",
                        "region 1: its outputs also need '/layer2/shortcut/shortcut.0/"
                        "Conv_output_0', which its inputs do not compute",
                        "add '/layer2/shortcut/shortcut.0/Conv_output_0' to the inputs of the "
                        "region");
    expect_region_error(g, q, ds, "/layer2/Add_output_0", "/layer2/Add_output_0",
                        "region 1: '/layer2/Add_output_0' is both an input and an output", "");
    pare_quant_report_free(rep);
    pare_graph_free(q);
    pare_dataset_free(ds);
    pare_graph_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_region_wise_residual_blocks),
        cmocka_unit_test(test_region_wise_pairs),
        cmocka_unit_test(test_region_explicit),
        cmocka_unit_test(test_region_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
