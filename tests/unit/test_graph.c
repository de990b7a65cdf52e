/* Graph IR: building, indexing, topological order and its error paths. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "pare/alloc.h"
#include "pare/graph.h"

/* x -> A -> a -> B -> b, with nodes added in the order given by `reverse`. */
static pare_graph *chain(int reverse)
{
    pare_graph *g = pare_graph_new();
    pare_error err = {0};
    int x, a, b;

    assert_non_null(g);
    x = pare_graph_add_value(g, "x", &err);
    a = pare_graph_add_value(g, "a", &err);
    b = pare_graph_add_value(g, "b", &err);
    assert_true(x >= 0 && a >= 0 && b >= 0);
    g->values[x].is_input = true;
    g->inputs = pare_alloc(sizeof(int));
    g->inputs[0] = x;
    g->n_inputs = 1;
    g->outputs = pare_alloc(sizeof(int));
    g->outputs[0] = b;
    g->n_outputs = 1;
    g->values[b].is_output = true;
    if (reverse) {
        assert_int_equal(pare_graph_add_node(g, "Relu", "", "B", &a, 1, &b, 1, &err), 0);
        assert_int_equal(pare_graph_add_node(g, "Relu", "", "A", &x, 1, &a, 1, &err), 1);
    } else {
        assert_int_equal(pare_graph_add_node(g, "Relu", "", "A", &x, 1, &a, 1, &err), 0);
        assert_int_equal(pare_graph_add_node(g, "Relu", "", "B", &a, 1, &b, 1, &err), 1);
    }
    return g;
}

static void test_index_sorts_and_links(void **state)
{
    pare_graph *g = chain(1);
    pare_error err = {0};
    int a;
    (void)state;

    assert_int_equal(pare_graph_index(g, &err), PARE_OK);
    assert_string_equal(g->nodes[0].name, "A");
    assert_string_equal(g->nodes[1].name, "B");
    a = pare_graph_find_value(g, "a");
    assert_int_equal(g->values[a].producer, 0);
    assert_int_equal(g->values[a].n_consumers, 1);
    assert_int_equal(g->values[a].consumers[0], 1);
    assert_int_equal(pare_graph_find_value(g, "nope"), -1);
    assert_int_equal(pare_graph_find_node(g, "B"), 1);
    pare_graph_free(g);
}

static void test_sorted_graph_keeps_order(void **state)
{
    pare_graph *g = chain(0);
    pare_error err = {0};
    (void)state;

    assert_int_equal(pare_graph_index(g, &err), PARE_OK);
    assert_string_equal(g->nodes[0].name, "A");
    assert_string_equal(g->nodes[1].name, "B");
    pare_graph_free(g);
}

static void test_cycle_is_reported_with_node(void **state)
{
    pare_graph *g = chain(0);
    pare_error err = {0};
    (void)state;

    g->path = pare_strdup("m.onnx");
    /* A now reads b, which B computes from A's output. */
    g->nodes[0].inputs[0] = pare_graph_find_value(g, "b");
    assert_int_equal(pare_graph_index(g, &err), PARE_EINPUT);
    assert_string_equal(err.where, "m.onnx: node 'A' (Relu)");
    assert_string_equal(err.msg, "the graph has a cycle through this node");
    pare_graph_free(g);
}

static void test_dangling_input_is_reported(void **state)
{
    pare_graph *g = chain(0);
    pare_error err = {0};
    int ghost;
    (void)state;

    g->path = pare_strdup("m.onnx");
    ghost = pare_graph_add_value(g, "ghost", &err);
    g->nodes[1].inputs[0] = ghost;
    assert_int_equal(pare_graph_index(g, &err), PARE_EINPUT);
    assert_string_equal(err.where, "m.onnx: node 'B' (Relu)");
    assert_string_equal(err.msg,
                        "input 'ghost' is not produced by any node, graph input or initializer");
    pare_graph_free(g);
}

static void test_double_producer_is_reported(void **state)
{
    pare_graph *g = chain(0);
    pare_error err = {0};
    (void)state;

    g->nodes[1].outputs[0] = pare_graph_find_value(g, "a");
    assert_int_equal(pare_graph_index(g, &err), PARE_EINPUT);
    assert_non_null(strstr(err.msg, "already produced by node 'A'"));
    pare_graph_free(g);
}

static void test_duplicate_value_name_is_refused(void **state)
{
    pare_graph *g = chain(0);
    pare_error err = {0};
    (void)state;

    assert_int_equal(pare_graph_add_value(g, "a", &err), PARE_EINPUT);
    assert_string_equal(err.msg, "value 'a' already exists");
    pare_graph_free(g);
}

static void test_name_index_survives_growth(void **state)
{
    pare_graph *g = chain(0);
    pare_error err = {0};
    char name[32];
    (void)state;

    assert_int_equal(pare_graph_index(g, &err), PARE_OK);
    for (int i = 0; i < 500; i++) {
        snprintf(name, sizeof name, "v%d", i);
        assert_true(pare_graph_add_value(g, name, &err) >= 0);
    }
    for (int i = 0; i < 500; i += 37) {
        snprintf(name, sizeof name, "v%d", i);
        assert_int_equal(pare_graph_find_value(g, name), 3 + i);
    }
    pare_graph_free(g);
}

static void test_attributes(void **state)
{
    pare_graph *g = chain(0);
    pare_error err = {0};
    int64_t pads[4] = {1, 2, 3, 4};
    pare_attr a = {.name = "pads", .type = PARE_ATTR_INTS, .ints = pads, .n = 4};
    pare_attr f = {.name = "alpha", .type = PARE_ATTR_FLOAT, .f = 0.25f};
    pare_attr s = {.name = "mode", .type = PARE_ATTR_STRING, .s = "edge", .s_len = 4};
    const int64_t *got;
    int n;
    (void)state;

    assert_int_equal(pare_node_add_attr(&g->nodes[0], &a, &err), PARE_OK);
    assert_int_equal(pare_node_add_attr(&g->nodes[0], &f, &err), PARE_OK);
    assert_int_equal(pare_node_add_attr(&g->nodes[0], &s, &err), PARE_OK);
    got = pare_node_attr_ints(&g->nodes[0], "pads", &n);
    assert_int_equal(n, 4);
    assert_int_equal(got[3], 4);
    assert_true(got != pads); /* copied */
    assert_true(pare_node_attr_float(&g->nodes[0], "alpha", 1.0f) == 0.25f);
    assert_int_equal(pare_node_attr_int(&g->nodes[0], "alpha", 7), 7); /* wrong kind: default */
    assert_string_equal(pare_node_attr_string(&g->nodes[0], "mode", "x"), "edge");
    assert_null(pare_node_attr_ints(&g->nodes[0], "strides", &n));
    assert_int_equal(n, 0);
    pare_graph_free(g);
}

static void test_opset_lookup(void **state)
{
    pare_graph *g = pare_graph_new();
    (void)state;

    g->opsets = pare_calloc(2, sizeof *g->opsets);
    g->opsets[0].domain = pare_strdup("ai.onnx");
    g->opsets[0].version = 13;
    g->opsets[1].domain = pare_strdup("com.microsoft");
    g->opsets[1].version = 1;
    g->n_opsets = 2;
    assert_int_equal(pare_graph_opset(g, ""), 13);
    assert_int_equal(pare_graph_opset(g, "ai.onnx"), 13);
    assert_int_equal(pare_graph_opset(g, "com.microsoft"), 1);
    assert_int_equal(pare_graph_opset(g, "ai.onnx.ml"), 0);
    pare_graph_free(g);
}

static void test_oom_while_building_is_clean(void **state)
{
    (void)state;
    for (long nth = 1; nth < 64; nth++) {
        pare_graph *g = pare_graph_new();
        pare_error err = {0};
        int x, y = -1, rc;
        assert_non_null(g);
        pare_alloc_fail_at(nth);
        x = pare_graph_add_value(g, "x", &err);
        if (x >= 0) {
            g->values[x].is_input = true;
            y = pare_graph_add_value(g, "y", &err);
        }
        rc = y >= 0 ? pare_graph_add_node(g, "Relu", "", "r", &x, 1, &y, 1, &err) : y;
        if (rc >= 0)
            rc = pare_graph_index(g, &err);
        pare_alloc_fail_at(0);
        if (rc < 0)
            assert_int_equal(err.code, PARE_ENOMEM);
        pare_graph_free(g);
    }
}

static void test_closest_word(void **state)
{
    const char *const keys[] = {"weight_bits", "activation_bits", "test", "train"};
    (void)state;

    assert_string_equal(pare_closest_word("weight_bit", keys, 4), "weight_bits");
    assert_string_equal(pare_closest_word("tset", keys, 4), "test"); /* a swap is one edit */
    assert_string_equal(pare_closest_word("TRAIN", keys, 4), "train");
    assert_null(pare_closest_word("zzzz", keys, 4));
}

/* Bypass B (b := Mul(a, w)), then drop the old node: its output value goes,
 * the new initializer stays, names resolve to the new indices. */
static void test_edit_add_initializer_and_remove_node(void **state)
{
    pare_graph *g = chain(0), *copy = NULL;
    pare_error err = {0};
    int64_t one = 1;
    pare_tensor *w = pare_tensor_new(PARE_F32, 1, &one);
    bool remove[3] = {false, true, false};
    char name[64];
    int a, b, wv, in[2], out;
    (void)state;

    assert_int_equal(pare_graph_index(g, &err), PARE_OK);
    assert_non_null(w);
    ((float *)w->data)[0] = 2.0f;
    assert_string_equal(pare_graph_unique_name(g, "a", name, sizeof name), "a_1");
    wv = pare_graph_add_initializer(g, "w", w, &err);
    assert_true(wv >= 0);
    assert_int_equal(g->values[wv].ndim, 1);
    a = pare_graph_find_value(g, "a");
    b = pare_graph_find_value(g, "b");
    out = pare_graph_add_value(g, "b2", &err);
    in[0] = a;
    in[1] = wv;
    assert_int_equal(pare_graph_add_node(g, "Mul", "", "M", in, 2, &out, 1, &err), 2);
    g->outputs[0] = out;
    g->values[b].is_output = false;
    g->values[out].is_output = true;
    assert_int_equal(pare_graph_remove_nodes(g, remove, &err), PARE_OK);
    assert_int_equal(g->n_nodes, 2);
    assert_int_equal(pare_graph_find_value(g, "b"), -1);
    assert_int_equal(g->n_values, 4);
    out = pare_graph_find_value(g, "b2");
    assert_int_equal(g->outputs[0], out);
    assert_string_equal(g->nodes[g->values[out].producer].name, "M");
    assert_int_equal(g->values[pare_graph_find_value(g, "w")].n_consumers, 1);
    /* a clone is independent of the original */
    assert_int_equal(pare_graph_clone(g, &copy, &err), PARE_OK);
    ((float *)copy->values[pare_graph_find_value(copy, "w")].init->data)[0] = 5.0f;
    assert_true(((float *)g->values[pare_graph_find_value(g, "w")].init->data)[0] == 2.0f);
    assert_int_equal(copy->n_nodes, 2);
    pare_graph_free(copy);
    pare_graph_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_index_sorts_and_links),
        cmocka_unit_test(test_sorted_graph_keeps_order),
        cmocka_unit_test(test_cycle_is_reported_with_node),
        cmocka_unit_test(test_dangling_input_is_reported),
        cmocka_unit_test(test_double_producer_is_reported),
        cmocka_unit_test(test_duplicate_value_name_is_refused),
        cmocka_unit_test(test_name_index_survives_growth),
        cmocka_unit_test(test_attributes),
        cmocka_unit_test(test_opset_lookup),
        cmocka_unit_test(test_oom_while_building_is_clean),
        cmocka_unit_test(test_closest_word),
        cmocka_unit_test(test_edit_add_initializer_and_remove_node),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
