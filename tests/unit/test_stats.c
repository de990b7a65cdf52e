/* Model statistics: shapes with the symbolic batch, params, FLOPs, models
 * that cannot be planned, out-of-memory paths. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "pare/alloc.h"
#include "pare/graph.h"
#include "pare/stats.h"

static void set_opset(pare_graph *g, int version)
{
    g->opsets = pare_calloc(1, sizeof *g->opsets);
    g->opsets[0].domain = pare_strdup("");
    g->opsets[0].version = version;
    g->n_opsets = 1;
}

/* A float input [batch, n] with the batch dim named. */
static int add_input(pare_graph *g, const char *name, int64_t n)
{
    pare_error err = {0};
    int v = pare_graph_add_value(g, name, &err);
    assert_true(v >= 0);
    g->values[v].is_input = true;
    g->values[v].dtype = PARE_F32;
    g->values[v].ndim = 2;
    g->values[v].dims[0] = -1;
    g->values[v].dim_names[0] = pare_strdup("batch");
    g->values[v].dims[1] = n;
    g->inputs = pare_realloc(g->inputs, (size_t)(g->n_inputs + 1) * sizeof(int));
    g->inputs[g->n_inputs++] = v;
    return v;
}

static int add_init(pare_graph *g, const char *name, pare_dtype dtype, int ndim,
                    const int64_t *dims)
{
    pare_error err = {0};
    int v = pare_graph_add_value(g, name, &err);
    assert_true(v >= 0);
    g->values[v].init = pare_tensor_new(dtype, ndim, dims);
    assert_non_null(g->values[v].init);
    g->values[v].dtype = dtype;
    return v;
}

static void set_output(pare_graph *g, int v)
{
    g->values[v].is_output = true;
    g->outputs = pare_realloc(g->outputs, (size_t)(g->n_outputs + 1) * sizeof(int));
    g->outputs[g->n_outputs++] = v;
}

static int add_node(pare_graph *g, const char *op, const int *in, int n_in, const char *out_name)
{
    pare_error err = {0};
    int out = pare_graph_add_value(g, out_name, &err);
    assert_true(out >= 0);
    assert_true(pare_graph_add_node(g, op, "", out_name, in, n_in, &out, 1, &err) >= 0);
    return out;
}

static void index_graph(pare_graph *g)
{
    pare_error err = {0};
    assert_int_equal(pare_graph_index(g, &err), PARE_OK);
}

static const char *shape_of(const pare_stats *s, int layer)
{
    static char buf[256];
    return pare_stats_shape_format(s, &s->layers[layer].out, buf, sizeof buf);
}

/* x [batch, 4] -> Reshape([-1, 2]) -> [2*batch, 2] -> Add(b [2]) -> Relu */
static pare_graph *reshape_model(void)
{
    pare_graph *g = pare_graph_new();
    int64_t d1 = 2;
    int x, shape, b, r, a, y;

    set_opset(g, 13);
    x = add_input(g, "x", 4);
    shape = add_init(g, "shape", PARE_I64, 1, &d1);
    ((int64_t *)g->values[shape].init->data)[0] = -1;
    ((int64_t *)g->values[shape].init->data)[1] = 2;
    b = add_init(g, "b", PARE_F32, 1, &d1);
    r = add_node(g, "Reshape", (int[]){x, shape}, 2, "r");
    a = add_node(g, "Add", (int[]){r, b}, 2, "a");
    y = add_node(g, "Relu", &a, 1, "y");
    set_output(g, y);
    index_graph(g);
    return g;
}

static void test_batch_multiples_are_named(void **state)
{
    pare_graph *g = reshape_model();
    pare_stats *s = NULL;
    pare_error err = {0};
    (void)state;

    assert_int_equal(pare_stats_compute(g, &s, &err), PARE_OK);
    assert_true(s->planned);
    assert_string_equal(s->batch_name, "batch");
    assert_int_equal(s->n_layers, 3);
    assert_string_equal(shape_of(s, 0), "[2*batch, 2]");
    assert_int_equal(s->layers[0].out.dims[0], 2);
    assert_int_equal(s->layers[0].out.per_batch[0], 2);
    assert_int_equal(s->layers[0].out.per_batch[1], 0);
    assert_string_equal(shape_of(s, 2), "[2*batch, 2]");
    /* The Reshape's int64 shape counts as an initializer value; b is read by Add. */
    assert_int_equal(s->params, 4);
    assert_int_equal(s->layers[0].params, 2);
    assert_int_equal(s->layers[1].params, 2);
    assert_int_equal(s->layers[2].params, 0);
    assert_int_equal(s->init_bytes, 2 * 8 + 2 * 4);
    /* Add and Relu: one FLOP per output element at batch 1. */
    assert_true(s->flops_complete);
    assert_true(s->layers[1].flops == 4.0);
    assert_true(s->layers[2].flops == 4.0);
    assert_true(s->flops >= 8.0);
    pare_stats_free(s);
    pare_graph_free(g);
}

/* x [batch, 8] -> Relu -> Bogus -> Relu -> y */
static pare_graph *bogus_model(bool declare)
{
    pare_graph *g = pare_graph_new();
    int x, r1, bog, r2;

    set_opset(g, 13);
    x = add_input(g, "x", 8);
    r1 = add_node(g, "Relu", &x, 1, "r1");
    bog = add_node(g, "Bogus", &r1, 1, "bogus");
    r2 = add_node(g, "Relu", &bog, 1, "r2");
    set_output(g, r2);
    if (declare) {
        /* value_info for the unknown op's output: [batch, 8] float32 */
        pare_value *v = &g->values[bog];
        v->has_value_info = true;
        v->dtype = PARE_F32;
        v->ndim = 2;
        v->dims[0] = -1;
        v->dim_names[0] = pare_strdup("batch");
        v->dims[1] = 8;
    }
    index_graph(g);
    return g;
}

static void test_unknown_op_is_browsable(void **state)
{
    pare_graph *g = bogus_model(false);
    pare_stats *s = NULL;
    pare_error err = {0};
    (void)state;

    assert_int_equal(pare_stats_compute(g, &s, &err), PARE_OK);
    assert_false(s->planned);
    assert_int_equal(s->plan_error.code, PARE_EUNSUPPORTED);
    assert_non_null(strstr(s->plan_error.msg, "Bogus"));
    assert_non_null(strstr(s->plan_error.where, "bogus"));
    assert_int_equal(s->n_unknown_ops, 1);
    assert_true(s->layers[0].has_kernel);
    assert_false(s->layers[1].has_kernel);
    /* Before the unknown node: known; from it on: unknown. */
    assert_string_equal(shape_of(s, 0), "[batch, 8]");
    assert_true(s->layers[0].flops == 8.0);
    assert_string_equal(shape_of(s, 1), "?");
    assert_string_equal(shape_of(s, 2), "?");
    assert_true(s->layers[1].flops < 0);
    assert_true(s->layers[2].flops < 0);
    assert_false(s->flops_complete);
    assert_true(s->flops == 8.0);
    pare_stats_free(s);
    pare_graph_free(g);
}

static void test_declared_shape_seeds_what_follows(void **state)
{
    pare_graph *g = bogus_model(true);
    pare_stats *s = NULL;
    pare_error err = {0};
    (void)state;

    assert_int_equal(pare_stats_compute(g, &s, &err), PARE_OK);
    assert_false(s->planned);
    assert_string_equal(shape_of(s, 1), "[batch, 8]");
    /* The Relu after it is inferred again from the declaration. */
    assert_string_equal(shape_of(s, 2), "[batch, 8]");
    assert_true(s->layers[2].flops == 8.0);
    assert_true(s->layers[1].flops < 0);
    assert_false(s->flops_complete);
    pare_stats_free(s);
    pare_graph_free(g);
}

static void test_declared_shape_and_dims(void **state)
{
    pare_graph *g = bogus_model(false);
    pare_stats *s = NULL;
    pare_error err = {0};
    pare_stat_shape sh;
    pare_value v;
    char buf[128];
    (void)state;

    assert_int_equal(pare_stats_compute(g, &s, &err), PARE_OK);
    memset(&v, 0, sizeof v);
    v.dtype = PARE_F32;
    v.ndim = 3;
    v.dims[0] = -1;
    v.dim_names[0] = "batch";
    v.dims[1] = -1;
    v.dim_names[1] = "seq";
    v.dims[2] = -1;
    pare_stats_declared_shape(s, &v, &sh);
    assert_string_equal(pare_stats_shape_format(s, &sh, buf, sizeof buf), "[batch, seq, ?]");
    assert_string_equal(pare_stats_dim_format(s, &sh, 1, buf, sizeof buf), "seq");
    assert_string_equal(pare_stats_dim_format(s, &sh, 7, buf, sizeof buf), "?");
    v.ndim = -1;
    pare_stats_declared_shape(s, &v, &sh);
    assert_string_equal(pare_stats_shape_format(s, &sh, buf, sizeof buf), "?");
    pare_stats_free(s);
    pare_graph_free(g);
}

static void test_shared_initializer_counts_once(void **state)
{
    pare_graph *g = pare_graph_new();
    pare_stats *s = NULL;
    pare_error err = {0};
    int64_t d = 8;
    int x, w, a1, a2;
    (void)state;

    set_opset(g, 13);
    x = add_input(g, "x", 8);
    w = add_init(g, "w", PARE_F32, 1, &d);
    a1 = add_node(g, "Add", (int[]){x, w}, 2, "a1");
    a2 = add_node(g, "Mul", (int[]){a1, w}, 2, "a2");
    set_output(g, a2);
    index_graph(g);
    assert_int_equal(pare_stats_compute(g, &s, &err), PARE_OK);
    assert_int_equal(s->params, 8);
    assert_int_equal(s->layers[0].params, 8);
    assert_int_equal(s->layers[1].params, 0);
    pare_stats_free(s);
    pare_graph_free(g);
}

static void test_no_symbolic_batch(void **state)
{
    pare_graph *g = reshape_model();
    pare_stats *s = NULL;
    pare_error err = {0};
    int x = pare_graph_find_value(g, "x");
    (void)state;

    /* A fixed [3, 4] input: nothing follows a batch. */
    g->values[x].dims[0] = 3;
    pare_free(g->values[x].dim_names[0]);
    g->values[x].dim_names[0] = NULL;
    assert_int_equal(pare_stats_compute(g, &s, &err), PARE_OK);
    assert_string_equal(shape_of(s, 0), "[6, 2]");
    assert_string_equal(s->batch_name, "N");
    pare_stats_free(s);
    pare_graph_free(g);
}

static void test_lenet5(void **state)
{
    pare_graph *g = NULL;
    pare_stats *s = NULL;
    pare_error err = {0};
    (void)state;

    assert_int_equal(pare_graph_load(PARE_TEST_DATA "/lenet5.onnx", &g, &err), PARE_OK);
    assert_int_equal(pare_stats_compute(g, &s, &err), PARE_OK);
    assert_true(s->planned);
    assert_int_equal(s->n_layers, 12);
    assert_int_equal(s->params, 61706);
    assert_string_equal(shape_of(s, 0), "[batch, 6, 28, 28]");
    assert_int_equal(s->layers[0].params, 6 * 25 + 6);
    /* conv1: 6x28x28 outputs, 25 multiply-adds each */
    assert_true(s->layers[0].flops >= 2.0 * 6 * 28 * 28 * 25);
    assert_true(s->layers[0].flops <= 2.0 * 6 * 28 * 28 * 26);
    assert_string_equal(shape_of(s, 6), "[batch, 400]");
    assert_string_equal(shape_of(s, 11), "[batch, 10]");
    assert_true(s->flops > 833040 && s->flops < 833040 * 1.1);
    assert_true(s->arena_bytes > 0);
    pare_stats_free(s);
    pare_graph_free(g);
}

/* Every allocation failing in turn: ENOMEM or success, never a crash or leak. */
static void test_out_of_memory(void **state)
{
    pare_graph *g = bogus_model(true);
    int failures = 0, successes = 0;
    (void)state;

    for (long nth = 1; nth < 400; nth++) {
        pare_stats *s = NULL;
        pare_error err = {0};
        pare_status rc;
        pare_alloc_fail_at(nth);
        rc = pare_stats_compute(g, &s, &err);
        pare_alloc_fail_at(0);
        if (rc == PARE_OK) {
            assert_non_null(s);
            successes++;
        } else {
            assert_int_equal(rc, PARE_ENOMEM);
            assert_null(s);
            failures++;
        }
        pare_stats_free(s);
    }
    assert_true(failures > 0);
    assert_true(successes > 0);
    pare_graph_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batch_multiples_are_named),
        cmocka_unit_test(test_unknown_op_is_browsable),
        cmocka_unit_test(test_declared_shape_seeds_what_follows),
        cmocka_unit_test(test_declared_shape_and_dims),
        cmocka_unit_test(test_shared_initializer_counts_once),
        cmocka_unit_test(test_no_symbolic_batch),
        cmocka_unit_test(test_lenet5),
        cmocka_unit_test(test_out_of_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
