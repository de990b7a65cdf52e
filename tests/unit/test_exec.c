/* Executor: planning, folding, buffer reuse, taps, errors, batch consistency. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "pare/alloc.h"
#include "pare/exec.h"
#include "pare/graph.h"

static void set_opset(pare_graph *g, int version)
{
    g->opsets = pare_calloc(1, sizeof *g->opsets);
    g->opsets[0].domain = pare_strdup("");
    g->opsets[0].version = version;
    g->n_opsets = 1;
}

static int add_input(pare_graph *g, const char *name, int ndim, const int64_t *dims)
{
    pare_error err = {0};
    int v = pare_graph_add_value(g, name, &err);
    assert_true(v >= 0);
    g->values[v].is_input = true;
    g->values[v].dtype = PARE_F32;
    g->values[v].ndim = ndim;
    memcpy(g->values[v].dims, dims, (size_t)ndim * sizeof *dims);
    g->inputs = pare_realloc(g->inputs, (size_t)(g->n_inputs + 1) * sizeof(int));
    g->inputs[g->n_inputs++] = v;
    return v;
}

static void set_output(pare_graph *g, int v)
{
    g->values[v].is_output = true;
    g->outputs = pare_realloc(g->outputs, (size_t)(g->n_outputs + 1) * sizeof(int));
    g->outputs[g->n_outputs++] = v;
}

static int add_unary(pare_graph *g, const char *op, int in, const char *out_name)
{
    pare_error err = {0};
    int out = pare_graph_add_value(g, out_name, &err);
    assert_true(out >= 0);
    assert_true(pare_graph_add_node(g, op, "", out_name, &in, 1, &out, 1, &err) >= 0);
    return out;
}

/* x: (N, 1024) -> Neg -> Abs -> Neg -> Abs ... eight steps. */
static pare_graph *long_chain(void)
{
    pare_graph *g = pare_graph_new();
    pare_error err = {0};
    int64_t dims[2] = {-1, 1024};
    char name[16];
    int v;

    set_opset(g, 13);
    v = add_input(g, "x", 2, dims);
    g->values[v].dim_names[0] = pare_strdup("batch");
    for (int i = 0; i < 8; i++) {
        snprintf(name, sizeof name, "h%d", i);
        v = add_unary(g, i % 2 ? "Abs" : "Neg", v, name);
    }
    set_output(g, v);
    assert_int_equal(pare_graph_index(g, &err), PARE_OK);
    return g;
}

static void test_buffers_are_reused(void **state)
{
    pare_graph *g = long_chain();
    pare_exec_opts opts = {.batch = 64, .n_threads = 1};
    pare_exec *x = NULL;
    pare_error err = {0};
    size_t one = 64 * 1024 * sizeof(float);
    (void)state;

    assert_int_equal(pare_exec_new(g, &opts, &x, &err), PARE_OK);
    /* Eight activations of one buffer each, but only two are ever live. */
    assert_true(pare_exec_arena_bytes(x) <= 2 * one);
    assert_true(pare_exec_arena_bytes(x) >= one);
    pare_exec_free(x);
    pare_graph_free(g);
}

static void test_run_and_taps(void **state)
{
    pare_graph *g = long_chain();
    const char *taps[] = {"h2"};
    pare_exec_opts opts = {.batch = 3, .n_threads = 1, .taps = taps, .n_taps = 1};
    pare_exec *x = NULL;
    pare_error err = {0};
    const pare_tensor *out, *h2;
    pare_tensor *in;
    (void)state;

    assert_int_equal(pare_exec_new(g, &opts, &x, &err), PARE_OK);
    assert_int_equal(pare_exec_n_inputs(x), 1);
    in = pare_exec_input(x, 0);
    assert_int_equal(in->dims[0], 3);
    assert_int_equal(in->dims[1], 1024);
    for (int64_t i = 0; i < pare_tensor_numel(in); i++)
        pare_tensor_f32(in)[i] = (float)(i % 7) - 3.0f;
    assert_int_equal(pare_exec_run(x, &err), PARE_OK);
    out = pare_exec_output(x, 0);
    h2 = pare_exec_value(x, "h2");
    assert_non_null(h2);
    /* h0 = -x, h1 = |x|, h2 = -|x|, ..., h7 = |x| */
    for (int64_t i = 0; i < pare_tensor_numel(in); i++) {
        float xi = (float)(i % 7) - 3.0f;
        assert_true(pare_tensor_f32(h2)[i] == -fabsf(xi));
        assert_true(pare_tensor_f32(out)[i] == fabsf(xi));
    }
    /* Not tapped, not an output: its buffer was reused. */
    assert_null(pare_exec_value(x, "h4"));
    pare_exec_free(x);
    pare_graph_free(g);
}

static void test_unknown_tap_has_hint(void **state)
{
    pare_graph *g = long_chain();
    const char *taps[] = {"h22"};
    pare_exec_opts opts = {.taps = taps, .n_taps = 1};
    pare_exec *x = NULL;
    pare_error err = {0};
    (void)state;

    assert_int_equal(pare_exec_new(g, &opts, &x, &err), PARE_EINPUT);
    assert_null(x);
    assert_string_equal(err.msg, "no value named 'h22' to tap");
    assert_string_equal(err.hint, "did you mean 'h2'?");
    pare_graph_free(g);
}

static void test_unknown_op_names_op_and_node(void **state)
{
    pare_graph *g = long_chain();
    pare_exec *x = NULL;
    pare_error err = {0};
    (void)state;

    g->path = pare_strdup("m.onnx");
    pare_free(g->nodes[3].op_type);
    g->nodes[3].op_type = pare_strdup("FancyOp");
    assert_int_equal(pare_exec_new(g, NULL, &x, &err), PARE_EUNSUPPORTED);
    assert_string_equal(err.where, "m.onnx: node 'h3' (FancyOp)");
    assert_string_equal(err.msg, "no kernel for op 'FancyOp'");
    pare_graph_free(g);
}

/* Shape -> Reshape: the shape is folded at plan time; the node reports so. */
static void test_shape_is_folded(void **state)
{
    pare_graph *g = pare_graph_new();
    pare_error err = {0};
    int64_t dims[4] = {-1, 2, 3, 4};
    pare_exec_opts opts = {.batch = 5, .n_threads = 1};
    pare_exec *x = NULL;
    int in, shp, out, ins[2];
    const pare_tensor *s;
    (void)state;

    set_opset(g, 13);
    in = add_input(g, "x", 4, dims);
    shp = add_unary(g, "Shape", in, "s");
    out = pare_graph_add_value(g, "y", &err);
    ins[0] = add_unary(g, "Relu", in, "r");
    ins[1] = shp;
    assert_true(pare_graph_add_node(g, "Reshape", "", "reshape", ins, 2, &out, 1, &err) >= 0);
    set_output(g, out);
    assert_int_equal(pare_graph_index(g, &err), PARE_OK);
    assert_int_equal(pare_exec_new(g, &opts, &x, &err), PARE_OK);
    assert_true(pare_exec_node_is_folded(x, pare_graph_find_node(g, "s")));
    assert_false(pare_exec_node_is_folded(x, pare_graph_find_node(g, "r")));
    s = pare_exec_value(x, "s");
    assert_non_null(s);
    assert_int_equal(s->dtype, PARE_I64);
    assert_int_equal(((int64_t *)s->data)[0], 5);
    assert_int_equal(((int64_t *)s->data)[3], 4);
    assert_int_equal(pare_exec_output(x, 0)->dims[0], 5);
    pare_exec_free(x);
    pare_graph_free(g);
}

static void test_oom_while_planning_is_clean(void **state)
{
    pare_graph *g = long_chain();
    pare_exec_opts opts = {.batch = 2, .n_threads = 1};
    int failures = 0;
    (void)state;

    for (long nth = 1; nth < 400; nth++) {
        pare_exec *x = NULL;
        pare_error err = {0};
        pare_status rc;
        pare_alloc_fail_at(nth);
        rc = pare_exec_new(g, &opts, &x, &err);
        pare_alloc_fail_at(0);
        if (rc == PARE_OK) {
            pare_exec_free(x);
            break;
        }
        assert_int_equal(rc, PARE_ENOMEM);
        assert_null(x);
        failures++;
    }
    assert_true(failures > 10);
    pare_graph_free(g);
}

/* A real model gives the same logits for an image alone or inside a batch. */
static void test_model_batch_consistency(void **state)
{
    const char *names[] = {"lenet5", "resnet8", "resnet8_bn", "tiny_vit"};
    (void)state;

    for (int m = 0; m < 4; m++) {
        char path[512];
        pare_graph *g = NULL;
        pare_error err = {0};
        pare_exec *xb = NULL, *x1 = NULL;
        pare_exec_opts ob = {.batch = 4, .n_threads = 2}, o1 = {.batch = 1, .n_threads = 1};
        float worst = 0.0f;

        snprintf(path, sizeof path, "%s/%s.onnx", PARE_TEST_DATA, names[m]);
        assert_int_equal(pare_graph_load(path, &g, &err), PARE_OK);
        assert_int_equal(pare_exec_new(g, &ob, &xb, &err), PARE_OK);
        assert_int_equal(pare_exec_new(g, &o1, &x1, &err), PARE_OK);
        for (int64_t i = 0; i < 4 * 784; i++)
            pare_tensor_f32(pare_exec_input(xb, 0))[i] = sinf((float)i * 0.37f) * 1.5f;
        assert_int_equal(pare_exec_run(xb, &err), PARE_OK);
        for (int b = 0; b < 4; b++) {
            const float *lb = pare_tensor_f32(pare_exec_output(xb, 0)) + b * 10;
            const float *l1;
            memcpy(pare_exec_input(x1, 0)->data,
                   pare_tensor_f32(pare_exec_input(xb, 0)) + b * 784, 784 * sizeof(float));
            assert_int_equal(pare_exec_run(x1, &err), PARE_OK);
            l1 = pare_tensor_f32(pare_exec_output(x1, 0));
            for (int k = 0; k < 10; k++) {
                assert_true(isfinite(l1[k]));
                if (fabsf(l1[k] - lb[k]) > worst)
                    worst = fabsf(l1[k] - lb[k]);
            }
        }
        assert_true(worst < 1e-4f);
        assert_true(pare_exec_arena_bytes(xb) > 0);
        pare_exec_free(xb);
        pare_exec_free(x1);
        pare_graph_free(g);
    }
}

/* BatchNormalization after Conv is folded into the Conv's weights: it never
 * runs, and the logits match a plan that runs it (keep_all disables folding). */
static void test_batchnorm_is_folded_into_conv(void **state)
{
    char path[512];
    pare_graph *g = NULL;
    pare_error err = {0};
    pare_exec *folded = NULL, *plain = NULL;
    pare_exec_opts of = {.batch = 3, .n_threads = 1, .profile = true};
    pare_exec_opts op = {.batch = 3, .n_threads = 1, .keep_all = true, .profile = true};
    int n_bn = 0;
    float worst = 0.0f;
    (void)state;

    snprintf(path, sizeof path, "%s/resnet8_bn.onnx", PARE_TEST_DATA);
    assert_int_equal(pare_graph_load(path, &g, &err), PARE_OK);
    assert_int_equal(pare_exec_new(g, &of, &folded, &err), PARE_OK);
    assert_int_equal(pare_exec_new(g, &op, &plain, &err), PARE_OK);
    for (int64_t i = 0; i < 3 * 784; i++) {
        float v = cosf((float)i * 0.11f) * 2.0f;
        pare_tensor_f32(pare_exec_input(folded, 0))[i] = v;
        pare_tensor_f32(pare_exec_input(plain, 0))[i] = v;
    }
    assert_int_equal(pare_exec_run(folded, &err), PARE_OK);
    assert_int_equal(pare_exec_run(plain, &err), PARE_OK);
    for (int n = 0; n < g->n_nodes; n++) {
        if (strcmp(g->nodes[n].op_type, "BatchNormalization"))
            continue;
        n_bn++;
        assert_true(pare_exec_node_seconds(folded, n) == 0.0);
        assert_true(pare_exec_node_seconds(plain, n) > 0.0);
    }
    assert_int_equal(n_bn, 9);
    for (int k = 0; k < 30; k++) {
        float d = fabsf(pare_tensor_f32(pare_exec_output(folded, 0))[k] -
                        pare_tensor_f32(pare_exec_output(plain, 0))[k]);
        if (d > worst)
            worst = d;
    }
    assert_true(worst < 1e-4f);
    pare_exec_free(folded);
    pare_exec_free(plain);
    pare_graph_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buffers_are_reused),
        cmocka_unit_test(test_run_and_taps),
        cmocka_unit_test(test_unknown_tap_has_hint),
        cmocka_unit_test(test_unknown_op_names_op_and_node),
        cmocka_unit_test(test_shape_is_folded),
        cmocka_unit_test(test_oom_while_planning_is_clean),
        cmocka_unit_test(test_model_batch_consistency),
        cmocka_unit_test(test_batchnorm_is_folded_into_conv),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
