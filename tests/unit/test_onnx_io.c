/* ONNX load/save: reference models, round trips, extras that must survive,
 * f16 widening, typed fields, external data, every malformed-input error
 * with its message and location, allocation-failure sweeps, and the fuzz
 * regressions. Models are written by a small protobuf encoder below, so the
 * test does not depend on the generated protobuf-c code. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
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
#include "pare/graph.h"

#ifndef PARE_TEST_DATA
#define PARE_TEST_DATA "tests/data"
#endif
#define NODE_TESTS "/usr/share/libonnx-testdata/data/node"
#define FUZZ_REGRESSIONS PARE_TEST_DATA "/../fuzz/regressions"

/* Test hook from core/src/onnx_io.h: above this many bytes pare_graph_save
 * writes weights to "<path>.data" (0 restores the 2 GiB default). */
void onnx_set_external_threshold(size_t bytes);

/* ---- a minimal protobuf writer ---- */

typedef struct pb {
    uint8_t *d;
    size_t n, cap;
} pb;

static void pb_put(pb *b, const void *data, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->d = realloc(b->d, b->cap);
        assert_non_null(b->d);
    }
    if (n)
        memcpy(b->d + b->n, data, n);
    b->n += n;
}

static void pb_varint(pb *b, uint64_t v)
{
    uint8_t byte;
    do {
        byte = (uint8_t)(v & 0x7f);
        v >>= 7;
        if (v)
            byte |= 0x80;
        pb_put(b, &byte, 1);
    } while (v);
}

static void pb_tag(pb *b, unsigned field, unsigned wt)
{
    pb_varint(b, (uint64_t)field << 3 | wt);
}

static void pb_int(pb *b, unsigned field, int64_t v)
{
    pb_tag(b, field, 0);
    pb_varint(b, (uint64_t)v);
}

static void pb_f32(pb *b, unsigned field, float f)
{
    pb_tag(b, field, 5);
    pb_put(b, &f, 4);
}

static void pb_bytes(pb *b, unsigned field, const void *data, size_t n)
{
    pb_tag(b, field, 2);
    pb_varint(b, n);
    pb_put(b, data, n);
}

static void pb_str(pb *b, unsigned field, const char *s)
{
    pb_bytes(b, field, s, strlen(s));
}

/* Appends sub as a length-delimited field and frees it. */
static void pb_msg(pb *b, unsigned field, pb *sub)
{
    pb_bytes(b, field, sub->d, sub->n);
    free(sub->d);
    memset(sub, 0, sizeof *sub);
}

/* ONNX field numbers used below. */
enum {
    M_IR = 1, M_PRODUCER = 2, M_PRODUCER_VERSION = 3, M_DOMAIN = 4, M_MODEL_VERSION = 5,
    M_DOC = 6, M_GRAPH = 7, M_OPSET = 8, M_METADATA = 14, M_TRAINING = 20, M_FUNCTIONS = 25,
    G_NODE = 1, G_NAME = 2, G_INIT = 5, G_DOC = 10, G_INPUT = 11, G_OUTPUT = 12, G_VALUE_INFO = 13,
    G_QUANT = 14, G_SPARSE = 15,
    N_INPUT = 1, N_OUTPUT = 2, N_NAME = 3, N_OP = 4, N_ATTR = 5, N_DOC = 6, N_DOMAIN = 7,
    A_NAME = 1, A_F = 2, A_I = 3, A_S = 4, A_T = 5, A_G = 6, A_FLOATS = 7, A_INTS = 8,
    A_STRINGS = 9, A_DOC = 13, A_TYPE = 20, A_REF = 21,
    T_DIMS = 1, T_TYPE = 2, T_FLOAT = 4, T_INT32 = 5, T_INT64 = 7, T_NAME = 8, T_RAW = 9,
    T_DOUBLE = 10, T_UINT64 = 11, T_DOC = 12, T_EXTERNAL = 13, T_LOCATION = 14,
    V_NAME = 1, V_TYPE = 2, V_DOC = 3,
};

static pb tensor_pb(const char *name, int dtype, int ndim, const int64_t *dims)
{
    pb t = { 0 };
    for (int i = 0; i < ndim; i++)
        pb_int(&t, T_DIMS, dims[i]);
    pb_int(&t, T_TYPE, dtype);
    if (name)
        pb_str(&t, T_NAME, name);
    return t;
}

static pb raw_tensor(const char *name, int dtype, int ndim, const int64_t *dims, const void *raw,
                     size_t len)
{
    pb t = tensor_pb(name, dtype, ndim, dims);
    pb_bytes(&t, T_RAW, raw, len);
    return t;
}

/* ValueInfoProto for a tensor; a -1 dim takes its name from params[i]
 * (NULL: unknown dim), other negative dims are written as they are (bad
 * input). ndim < 0: no shape. */
static pb value_info(const char *name, int elem, int ndim, const int64_t *dims,
                     const char *const *params)
{
    pb vi = { 0 }, type = { 0 }, tt = { 0 }, shape = { 0 };
    pb_str(&vi, V_NAME, name);
    pb_int(&tt, 1, elem);
    if (ndim >= 0) {
        for (int i = 0; i < ndim; i++) {
            pb dim = { 0 };
            if (dims[i] != -1)
                pb_int(&dim, 1, dims[i]);
            else if (params && params[i])
                pb_str(&dim, 2, params[i]);
            pb_msg(&shape, 1, &dim);
        }
        pb_msg(&tt, 2, &shape);
    }
    pb_msg(&type, 1, &tt);
    pb_msg(&vi, V_TYPE, &type);
    return vi;
}

static pb node_pb(const char *op, const char *name, const char *const *in, int n_in,
                  const char *const *out, int n_out)
{
    pb n = { 0 };
    for (int i = 0; i < n_in; i++)
        pb_str(&n, N_INPUT, in[i]);
    for (int i = 0; i < n_out; i++)
        pb_str(&n, N_OUTPUT, out[i]);
    if (name)
        pb_str(&n, N_NAME, name);
    pb_str(&n, N_OP, op);
    return n;
}

static pb attr_int(const char *name, int64_t v)
{
    pb a = { 0 };
    pb_str(&a, A_NAME, name);
    pb_int(&a, A_I, v);
    pb_int(&a, A_TYPE, 2);
    return a;
}

/* ModelProto around graph (consumed): ir 8, opset 13. */
static pb model_pb(pb *graph)
{
    pb m = { 0 }, op = { 0 };
    pb_int(&m, M_IR, 8);
    pb_str(&m, M_PRODUCER, "pare-test");
    if (graph)
        pb_msg(&m, M_GRAPH, graph);
    pb_str(&op, 1, "");
    pb_int(&op, 2, 13);
    pb_msg(&m, M_OPSET, &op);
    return m;
}

/* Graph "x -> Relu(n1) -> y" plus whatever the caller appends. */
static pb relu_graph(void)
{
    static const char *const in[] = { "x" }, *const out[] = { "y" };
    static const int64_t dims[] = { 2, 3 };
    pb g = { 0 }, n = node_pb("Relu", "n1", in, 1, out, 1), vi;
    pb_msg(&g, G_NODE, &n);
    pb_str(&g, G_NAME, "g");
    vi = value_info("x", 1, 2, dims, NULL);
    pb_msg(&g, G_INPUT, &vi);
    vi = value_info("y", 1, 2, dims, NULL);
    pb_msg(&g, G_OUTPUT, &vi);
    return g;
}

/* ---- a minimal protobuf reader, to inspect what pare wrote ---- */

static bool rd_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    *v = 0;
    for (int s = 0; s < 64 && *p < end; s += 7) {
        uint8_t byte = *(*p)++;
        *v |= (uint64_t)(byte & 0x7f) << s;
        if (!(byte & 0x80))
            return true;
    }
    return false;
}

/* The nth occurrence of length-delimited field in a message; false if none. */
static bool pb_find(const uint8_t *buf, size_t len, unsigned field, int nth, const uint8_t **sub,
                    size_t *sub_len)
{
    const uint8_t *p = buf, *end = buf + len;
    while (p < end) {
        uint64_t tag, v;
        assert_true(rd_varint(&p, end, &tag));
        switch (tag & 7) {
        case 0: assert_true(rd_varint(&p, end, &v)); break;
        case 1: p += 8; break;
        case 5: p += 4; break;
        case 2:
            assert_true(rd_varint(&p, end, &v));
            assert_true(v <= (uint64_t)(end - p));
            if ((tag >> 3) == field && nth-- == 0) {
                *sub = p;
                *sub_len = (size_t)v;
                return true;
            }
            p += v;
            break;
        default: fail_msg("bad wire type");
        }
    }
    return false;
}

/* ---- helpers ---- */

static uint8_t *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf;
    long n;

    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc(n > 0 ? (size_t)n : 1);
    assert_non_null(buf);
    *len = fread(buf, 1, (size_t)n, f);
    fclose(f);
    assert_int_equal(*len, (size_t)n);
    return buf;
}

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static char tmp_root[256];

static const char *tmp_path(char *buf, size_t size, const char *name)
{
    if (!tmp_root[0]) {
        snprintf(tmp_root, sizeof tmp_root, "/tmp/pare-onnx-test-XXXXXX");
        assert_non_null(mkdtemp(tmp_root));
    }
    snprintf(buf, size, "%s/%s", tmp_root, name);
    return buf;
}

static int count_matching(const char *dir, const char *needle)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    assert_non_null(d);
    while ((e = readdir(d)))
        n += strstr(e->d_name, needle) != NULL;
    closedir(d);
    return n;
}

static pare_graph *load_ok(const char *path)
{
    pare_graph *g = NULL;
    pare_error err = { 0 };
    pare_status rc = pare_graph_load(path, &g, &err);
    if (rc != PARE_OK)
        fail_msg("%s: %s: %s", path, err.where, err.msg);
    assert_non_null(g);
    return g;
}

static pare_graph *load_pb_ok(pb *m)
{
    pare_graph *g = NULL;
    pare_error err = { 0 };
    pare_status rc = pare_graph_load_buffer(m->d, m->n, "m.onnx", &g, &err);
    if (rc != PARE_OK)
        fail_msg("%s: %s", err.where, err.msg);
    return g;
}

/* Loads m (consumed) and expects a failure with code, where and message. */
static void expect_load_error(pb *m, pare_status code, const char *where, const char *msg)
{
    pare_graph *g = (pare_graph *)1;
    pare_error err = { 0 };
    pare_status rc = pare_graph_load_buffer(m->d, m->n, "m.onnx", &g, &err);
    free(m->d);
    memset(m, 0, sizeof *m);
    if (rc != code)
        fail_msg("expected %d (%s), got %d: %s: %s", code, msg, rc, err.where, err.msg);
    assert_null(g);
    assert_int_equal(err.code, code);
    assert_string_equal(err.where, where);
    assert_string_equal(err.msg, msg);
}

static uint8_t *save_ok(const pare_graph *g, size_t *len)
{
    uint8_t *buf = NULL;
    pare_error err = { 0 };
    pare_status rc = pare_graph_save_buffer(g, &buf, len, &err);
    if (rc != PARE_OK)
        fail_msg("save: %s: %s", err.where, err.msg);
    return buf;
}

static bool str_eq(const char *a, const char *b)
{
    return (!a && !b) || (a && b && !strcmp(a, b));
}

static bool bytes_eq(const void *a, size_t na, const void *b, size_t nb)
{
    return na == nb && (!na || !memcmp(a, b, na));
}

static bool tensors_eq(const pare_tensor *a, const pare_tensor *b)
{
    if (!a || !b)
        return a == b;
    return a->dtype == b->dtype && pare_tensor_same_shape(a, b) &&
           bytes_eq(a->data, pare_tensor_nbytes(a), b->data, pare_tensor_nbytes(b));
}

static void assert_attrs_equal(const pare_attr *a, const pare_attr *b)
{
    assert_string_equal(a->name, b->name);
    assert_int_equal(a->type, b->type);
    assert_memory_equal(&a->f, &b->f, sizeof a->f);
    assert_int_equal(a->i, b->i);
    assert_true(bytes_eq(a->s, a->s_len, b->s, b->s_len));
    assert_true(tensors_eq(a->t, b->t));
    assert_int_equal(a->n, b->n);
    assert_true(!a->floats == !b->floats);
    if (a->floats)
        assert_true(bytes_eq(a->floats, (size_t)a->n * 4, b->floats, (size_t)b->n * 4));
    assert_true(!a->ints == !b->ints);
    if (a->ints)
        assert_true(bytes_eq(a->ints, (size_t)a->n * 8, b->ints, (size_t)b->n * 8));
    assert_true(!a->strings == !b->strings);
    for (int k = 0; a->strings && k < a->n; k++)
        assert_string_equal(a->strings[k], b->strings[k]);
    assert_true(bytes_eq(a->opaque, a->opaque_len, b->opaque, b->opaque_len));
}

static const char *vname(const pare_graph *g, int v)
{
    return v < 0 ? "" : g->values[v].name;
}

/* Same model: fields, values (by name), nodes (in order), attributes. */
static void assert_graphs_equal(const pare_graph *a, const pare_graph *b)
{
    assert_int_equal(a->ir_version, b->ir_version);
    assert_int_equal(a->n_opsets, b->n_opsets);
    for (int i = 0; i < a->n_opsets; i++) {
        assert_string_equal(a->opsets[i].domain, b->opsets[i].domain);
        assert_int_equal(a->opsets[i].version, b->opsets[i].version);
    }
    assert_true(str_eq(a->producer_name, b->producer_name));
    assert_true(str_eq(a->producer_version, b->producer_version));
    assert_true(str_eq(a->model_domain, b->model_domain));
    assert_int_equal(a->model_version, b->model_version);
    assert_true(str_eq(a->doc_string, b->doc_string));
    assert_int_equal(a->n_metadata, b->n_metadata);
    for (int i = 0; i < a->n_metadata; i++) {
        assert_string_equal(a->metadata[i].key, b->metadata[i].key);
        assert_string_equal(a->metadata[i].value, b->metadata[i].value);
    }
    assert_true(bytes_eq(a->model_extra, a->model_extra_len, b->model_extra, b->model_extra_len));
    assert_true(str_eq(a->name, b->name));
    assert_true(str_eq(a->graph_doc_string, b->graph_doc_string));
    assert_true(bytes_eq(a->graph_extra, a->graph_extra_len, b->graph_extra, b->graph_extra_len));
    assert_int_equal(a->n_values, b->n_values);
    for (int v = 0; v < a->n_values; v++) {
        const pare_value *x = &a->values[v];
        int w = pare_graph_find_value(b, x->name);
        const pare_value *y;
        assert_true(w >= 0);
        y = &b->values[w];
        assert_int_equal(x->dtype, y->dtype);
        assert_int_equal(x->ndim, y->ndim);
        for (int d = 0; d < x->ndim; d++) {
            assert_int_equal(x->dims[d], y->dims[d]);
            assert_true(str_eq(x->dim_names[d], y->dim_names[d]));
        }
        assert_int_equal(x->is_input, y->is_input);
        assert_int_equal(x->is_output, y->is_output);
        assert_int_equal(x->has_value_info, y->has_value_info);
        assert_true(str_eq(x->doc_string, y->doc_string));
        assert_true(tensors_eq(x->init, y->init));
        assert_int_equal(x->n_consumers, y->n_consumers);
    }
    assert_int_equal(a->n_inputs, b->n_inputs);
    for (int i = 0; i < a->n_inputs; i++)
        assert_string_equal(vname(a, a->inputs[i]), vname(b, b->inputs[i]));
    assert_int_equal(a->n_outputs, b->n_outputs);
    for (int i = 0; i < a->n_outputs; i++)
        assert_string_equal(vname(a, a->outputs[i]), vname(b, b->outputs[i]));
    assert_int_equal(a->n_nodes, b->n_nodes);
    for (int n = 0; n < a->n_nodes; n++) {
        const pare_node *x = &a->nodes[n], *y = &b->nodes[n];
        assert_string_equal(x->name, y->name);
        assert_string_equal(x->op_type, y->op_type);
        assert_string_equal(x->domain, y->domain);
        assert_true(str_eq(x->doc_string, y->doc_string));
        assert_int_equal(x->n_inputs, y->n_inputs);
        for (int i = 0; i < x->n_inputs; i++)
            assert_string_equal(vname(a, x->inputs[i]), vname(b, y->inputs[i]));
        assert_int_equal(x->n_outputs, y->n_outputs);
        for (int i = 0; i < x->n_outputs; i++)
            assert_string_equal(vname(a, x->outputs[i]), vname(b, y->outputs[i]));
        assert_int_equal(x->n_attrs, y->n_attrs);
        for (int k = 0; k < x->n_attrs; k++)
            assert_attrs_equal(&x->attrs[k], &y->attrs[k]);
    }
}

/* load -> save -> load gives the same graph, and saving again the same bytes. */
static void assert_roundtrip(const pare_graph *g)
{
    size_t len1, len2;
    uint8_t *buf1 = save_ok(g, &len1), *buf2;
    pare_graph *g2 = NULL;
    pare_error err = { 0 };

    if (pare_graph_load_buffer(buf1, len1, g->path, &g2, &err) != PARE_OK)
        fail_msg("reload: %s: %s", err.where, err.msg);
    assert_graphs_equal(g, g2);
    buf2 = save_ok(g2, &len2);
    assert_true(bytes_eq(buf1, len1, buf2, len2));
    pare_free(buf1);
    pare_free(buf2);
    pare_graph_free(g2);
}

static int count_op(const pare_graph *g, const char *op)
{
    int n = 0;
    for (int i = 0; i < g->n_nodes; i++)
        n += !strcmp(g->nodes[i].op_type, op);
    return n;
}

/* ---- reference models ---- */

typedef struct op_count {
    const char *op;
    int n;
} op_count;

static void check_reference(const char *file, int64_t params, const op_count *ops)
{
    char path[512];
    pare_graph *g;
    int total = 0, v;

    snprintf(path, sizeof path, "%s/%s", PARE_TEST_DATA, file);
    g = load_ok(path);
    assert_string_equal(g->path, path);
    assert_int_equal(g->ir_version, 7);
    assert_int_equal(pare_graph_opset(g, ""), 13);
    assert_int_equal(pare_graph_param_count(g), params);
    for (; ops->op; ops++) {
        if (count_op(g, ops->op) != ops->n)
            fail_msg("%s: %d %s nodes, expected %d", file, count_op(g, ops->op), ops->op, ops->n);
        total += ops->n;
    }
    assert_int_equal(g->n_nodes, total);
    /* input 'input' [batch, 1, 28, 28], output 'logits' [batch, 10]; the
       initializers are not graph inputs */
    assert_int_equal(g->n_inputs, 1);
    v = g->inputs[0];
    assert_string_equal(g->values[v].name, "input");
    assert_int_equal(g->values[v].dtype, PARE_F32);
    assert_int_equal(g->values[v].ndim, 4);
    assert_int_equal(g->values[v].dims[0], -1);
    assert_string_equal(g->values[v].dim_names[0], "batch");
    assert_int_equal(g->values[v].dims[1], 1);
    assert_int_equal(g->values[v].dims[2], 28);
    assert_int_equal(g->values[v].dims[3], 28);
    assert_null(g->values[v].init);
    assert_int_equal(g->n_outputs, 1);
    v = g->outputs[0];
    assert_string_equal(g->values[v].name, "logits");
    assert_int_equal(g->values[v].ndim, 2);
    assert_string_equal(g->values[v].dim_names[0], "batch");
    assert_int_equal(g->values[v].dims[1], 10);
    assert_int_equal(g->values[v].producer, g->n_nodes - 1);
    for (int i = 0; i < g->n_values; i++)
        if (g->values[i].init) {
            assert_false(g->values[i].is_input);
            assert_int_equal(g->values[i].dtype, g->values[i].init->dtype);
        }
    for (int n = 1; n < g->n_nodes; n++) /* topological: inputs come first */
        for (int i = 0; i < g->nodes[n].n_inputs; i++) {
            int in = g->nodes[n].inputs[i];
            assert_true(in < 0 || g->values[in].producer < n);
        }
    assert_roundtrip(g);
    pare_graph_free(g);
}

static void test_lenet5(void **state)
{
    static const op_count ops[] = {
        { "Conv", 2 }, { "Relu", 4 }, { "MaxPool", 2 }, { "Flatten", 1 }, { "Gemm", 3 }, { NULL, 0 },
    };
    (void)state;
    check_reference("lenet5.onnx", 61706, ops);
}

static void test_resnet8(void **state)
{
    static const op_count ops[] = {
        { "Conv", 9 }, { "Relu", 7 }, { "Add", 3 }, { "GlobalAveragePool", 1 }, { "Flatten", 1 },
        { "Gemm", 1 }, { NULL, 0 },
    };
    (void)state;
    check_reference("resnet8.onnx", 77418, ops);
}

static void test_resnet8_bn(void **state)
{
    static const op_count ops[] = {
        { "Conv", 9 }, { "BatchNormalization", 9 }, { "Relu", 7 }, { "Add", 3 },
        { "GlobalAveragePool", 1 }, { "Flatten", 1 }, { "Gemm", 1 }, { "Identity", 2 }, { NULL, 0 },
    };
    (void)state;
    check_reference("resnet8_bn.onnx", 78330, ops);
}

static void test_tiny_vit(void **state)
{
    static const op_count ops[] = {
        { "Add", 26 }, { "MatMul", 13 }, { "ReduceMean", 11 }, { "Mul", 11 }, { "Transpose", 7 },
        { "Div", 7 }, { "Reshape", 6 }, { "Gather", 6 }, { "Sub", 5 }, { "Pow", 5 }, { "Sqrt", 5 },
        { "Softmax", 2 }, { "Erf", 2 }, { "Gemm", 1 }, { "Constant", 27 }, { NULL, 0 },
    };
    char path[512];
    pare_graph *g;
    int64_t const_floats = 0;
    (void)state;

    check_reference("tiny_vit.onnx", 71946, ops);
    /* 18 float values live in Constant nodes, as decoded TENSOR attributes */
    snprintf(path, sizeof path, "%s/tiny_vit.onnx", PARE_TEST_DATA);
    g = load_ok(path);
    for (int n = 0; n < g->n_nodes; n++) {
        const pare_attr *a;
        if (strcmp(g->nodes[n].op_type, "Constant"))
            continue;
        a = pare_node_attr(&g->nodes[n], "value");
        assert_non_null(a);
        assert_int_equal(a->type, PARE_ATTR_TENSOR);
        assert_non_null(a->t);
        assert_null(a->opaque);
        if (a->t->dtype == PARE_F32)
            const_floats += pare_tensor_numel(a->t);
    }
    assert_int_equal(const_floats, 18);
    pare_graph_free(g);
}

static void test_lenet5_attributes(void **state)
{
    pare_graph *g = load_ok(PARE_TEST_DATA "/lenet5.onnx");
    const pare_node *conv;
    const int64_t *k;
    int n;
    (void)state;

    conv = &g->nodes[0];
    assert_string_equal(conv->op_type, "Conv");
    assert_string_equal(conv->name, "/conv1/Conv");
    assert_string_equal(vname(g, conv->inputs[0]), "input");
    assert_string_equal(vname(g, conv->inputs[1]), "conv1.weight");
    k = pare_node_attr_ints(conv, "kernel_shape", &n);
    assert_int_equal(n, 2);
    assert_int_equal(k[0], 5);
    assert_int_equal(k[1], 5);
    k = pare_node_attr_ints(conv, "pads", &n);
    assert_int_equal(n, 4);
    assert_int_equal(k[0], 2);
    assert_int_equal(pare_node_attr_int(conv, "group", 0), 1);
    for (int i = 0; i < conv->n_attrs; i++)
        assert_null(conv->attrs[i].opaque);
    n = pare_graph_find_value(g, "conv1.weight");
    assert_int_equal(g->values[n].init->ndim, 4);
    assert_int_equal(g->values[n].init->dims[0], 6);
    assert_int_equal(g->values[n].init->dims[2], 5);
    pare_graph_free(g);
}

/* ---- things that must survive a round trip ---- */

static void test_if_subgraph_roundtrip(void **state)
{
    pare_graph *g = load_ok(NODE_TESTS "/test_if/model.onnx");
    const pare_attr *then_branch;
    uint8_t *buf;
    size_t len;
    int n_if;
    (void)state;

    n_if = 0;
    for (int n = 0; n < g->n_nodes; n++)
        if (!strcmp(g->nodes[n].op_type, "If")) {
            then_branch = pare_node_attr(&g->nodes[n], "then_branch");
            assert_non_null(then_branch);
            assert_int_equal(then_branch->type, PARE_ATTR_GRAPH);
            assert_non_null(then_branch->opaque);
            assert_true(then_branch->opaque_len > 10);
            n_if++;
        }
    assert_int_equal(n_if, 1);
    /* metadata added here must be written and read back too */
    g->metadata = pare_calloc(2, sizeof *g->metadata);
    g->metadata[0].key = pare_strdup("author");
    g->metadata[0].value = pare_strdup("pare");
    g->metadata[1].key = pare_strdup("note");
    g->metadata[1].value = pare_strdup("");
    g->n_metadata = 2;
    assert_roundtrip(g);
    /* the serialized then_branch appears verbatim in the saved bytes */
    buf = save_ok(g, &len);
    for (int n = 0; n < g->n_nodes; n++)
        if (!strcmp(g->nodes[n].op_type, "If")) {
            then_branch = pare_node_attr(&g->nodes[n], "then_branch");
            assert_non_null(memmem(buf, len, then_branch->opaque, then_branch->opaque_len));
        }
    pare_free(buf);
    pare_graph_free(g);
}

/* A model using everything pare keeps without modelling it. */
static pb kitchen_sink(void)
{
    static const char *const in[] = { "x", "w" }, *const out[] = { "y" };
    static const char *const params[] = { "batch", NULL };
    static const int64_t xd[] = { -1, -1 }, wd[] = { 2 }, yd[] = { -1, 2 };
    static const float w[] = { 1.5f, -2.0f };
    pb g = { 0 }, m = { 0 }, n, a, t, vi, kv, tmp, op;

    /* node with modelled, opaque and doc-stringed attributes */
    n = node_pb("Custom", "c1", in, 2, out, 1);
    pb_str(&n, N_DOC, "node doc");
    pb_str(&n, N_DOMAIN, "com.example");
    a = attr_int("plain", 3);
    pb_msg(&n, N_ATTR, &a);
    /* fields in field-number order, as protobuf writers emit them */
    a = (pb){ 0 };
    pb_str(&a, A_NAME, "documented");
    pb_int(&a, A_I, 4);
    pb_str(&a, A_DOC, "attribute doc");
    pb_int(&a, A_TYPE, 2);
    pb_msg(&n, N_ATTR, &a);
    a = (pb){ 0 };
    pb_str(&a, A_NAME, "ref");
    pb_int(&a, A_TYPE, 1);
    pb_str(&a, A_REF, "outer_alpha");
    pb_msg(&n, N_ATTR, &a);
    a = (pb){ 0 };                          /* TYPE_PROTO attribute: opaque */
    pb_str(&a, A_NAME, "tp");
    tmp = value_info("unused", 7, 1, wd, NULL);
    {
        const uint8_t *sub;
        size_t sub_len;
        assert_true(pb_find(tmp.d, tmp.n, V_TYPE, 0, &sub, &sub_len));
        pb_bytes(&a, 14, sub, sub_len);
        free(tmp.d);
    }
    pb_int(&a, A_TYPE, 13);
    pb_msg(&n, N_ATTR, &a);
    a = (pb){ 0 };
    pb_str(&a, A_NAME, "names");
    pb_str(&a, A_STRINGS, "a");
    pb_str(&a, A_STRINGS, "b");
    pb_int(&a, A_TYPE, 8);
    pb_msg(&n, N_ATTR, &a);
    a = (pb){ 0 };
    pb_str(&a, A_NAME, "scales");
    pb_f32(&a, A_FLOATS, 0.25f);
    pb_f32(&a, A_FLOATS, -1.0f);
    pb_int(&a, A_TYPE, 6);
    pb_msg(&n, N_ATTR, &a);
    pb_str(&n, 88, "NodeProto field from the future");
    pb_msg(&g, G_NODE, &n);
    pb_str(&g, G_NAME, "sink");
    t = raw_tensor("w", 1, 1, wd, w, sizeof w);
    pb_str(&t, T_DOC, "weight doc");
    pb_msg(&g, G_INIT, &t);
    pb_str(&g, G_DOC, "graph doc");
    vi = value_info("x", 1, 2, xd, params);  /* dims: "batch" and unknown */
    pb_str(&vi, V_DOC, "input doc");
    pb_str(&vi, 77, "ValueInfoProto field from the future");
    pb_msg(&g, G_INPUT, &vi);
    vi = value_info("y", 1, 2, yd, params);
    pb_msg(&g, G_OUTPUT, &vi);
    /* a sequence-typed value_info, which pare keeps as an untyped value */
    vi = (pb){ 0 };
    pb_str(&vi, V_NAME, "seq");
    {
        pb type = { 0 }, seq = { 0 }, elem = { 0 }, tt = { 0 };
        pb_int(&tt, 1, 1);
        pb_msg(&elem, 1, &tt);
        pb_msg(&seq, 1, &elem);
        pb_msg(&type, 4, &seq);
        pb_msg(&vi, V_TYPE, &type);
    }
    pb_msg(&g, G_VALUE_INFO, &vi);
    tmp = (pb){ 0 };                        /* quantization annotation */
    pb_str(&tmp, 1, "y");
    pb_msg(&g, G_QUANT, &tmp);
    tmp = (pb){ 0 };                        /* sparse initializer */
    t = raw_tensor("sp_values", 1, 1, wd, w, sizeof w);
    pb_msg(&tmp, 1, &t);
    pb_int(&tmp, 3, 4);
    pb_msg(&g, G_SPARSE, &tmp);
    pb_int(&g, 99, 12345);                  /* a GraphProto field from the future */

    pb_int(&m, M_IR, 8);
    pb_str(&m, M_PRODUCER, "sink-maker");
    pb_str(&m, M_PRODUCER_VERSION, "9.9");
    pb_str(&m, M_DOMAIN, "org.example");
    pb_int(&m, M_MODEL_VERSION, 42);
    pb_str(&m, M_DOC, "model doc");
    pb_msg(&m, M_GRAPH, &g);
    op = (pb){ 0 };
    pb_str(&op, 1, "");
    pb_int(&op, 2, 13);
    pb_msg(&m, M_OPSET, &op);
    op = (pb){ 0 };
    pb_str(&op, 1, "com.example");
    pb_int(&op, 2, 2);
    pb_msg(&m, M_OPSET, &op);
    kv = (pb){ 0 };
    pb_str(&kv, 1, "k");
    pb_str(&kv, 2, "v");
    pb_msg(&m, M_METADATA, &kv);
    tmp = (pb){ 0 };                        /* training_info with an empty algorithm */
    {
        pb alg = { 0 };
        pb_str(&alg, G_NAME, "train");
        pb_msg(&tmp, 2, &alg);
    }
    pb_msg(&m, M_TRAINING, &tmp);
    tmp = (pb){ 0 };                        /* a local function */
    pb_str(&tmp, 1, "MyFn");
    pb_str(&tmp, 10, "com.example");
    pb_msg(&m, M_FUNCTIONS, &tmp);
    pb_str(&m, 100, "model field from the future");
    return m;
}

static void test_extras_survive(void **state)
{
    pb m = kitchen_sink();
    pare_graph *g = load_pb_ok(&m);
    const pare_node *c;
    const pare_attr *a;
    const uint8_t *sub, *graph, *orig_graph;
    size_t sub_len, graph_len, orig_graph_len, len, sub2_len;
    const uint8_t *sub2;
    uint8_t *buf;
    int v;
    (void)state;

    assert_string_equal(g->producer_name, "sink-maker");
    assert_string_equal(g->producer_version, "9.9");
    assert_string_equal(g->model_domain, "org.example");
    assert_int_equal(g->model_version, 42);
    assert_string_equal(g->doc_string, "model doc");
    assert_string_equal(g->graph_doc_string, "graph doc");
    assert_int_equal(g->n_opsets, 2);
    assert_int_equal(pare_graph_opset(g, "com.example"), 2);
    assert_int_equal(g->n_metadata, 1);
    assert_non_null(g->model_extra);
    assert_non_null(g->graph_extra);
    c = &g->nodes[0];
    assert_string_equal(c->domain, "com.example");
    assert_string_equal(c->doc_string, "node doc");
    a = pare_node_attr(c, "plain");
    assert_null(a->opaque);
    assert_int_equal(pare_node_attr_int(c, "plain", 0), 3);
    a = pare_node_attr(c, "documented");     /* decoded and kept verbatim */
    assert_int_equal(a->i, 4);
    assert_non_null(a->opaque);
    a = pare_node_attr(c, "ref");
    assert_non_null(a->opaque);
    a = pare_node_attr(c, "tp");
    assert_int_equal(a->type, 13);
    assert_non_null(a->opaque);
    a = pare_node_attr(c, "names");
    assert_int_equal(a->n, 2);
    assert_string_equal(a->strings[1], "b");
    assert_null(a->opaque);
    v = pare_graph_find_value(g, "x");
    assert_string_equal(g->values[v].doc_string, "input doc");
    assert_string_equal(g->values[v].dim_names[0], "batch");
    assert_null(g->values[v].dim_names[1]);
    assert_int_equal(g->values[v].dims[1], -1);
    v = pare_graph_find_value(g, "seq");
    assert_true(g->values[v].has_value_info);
    assert_int_equal(g->values[v].dtype, PARE_UNDEFINED);
    assert_int_equal(g->values[v].ndim, -1);
    assert_roundtrip(g);

    /* Every unmodelled piece is in the saved bytes exactly as it came. */
    buf = save_ok(g, &len);
    assert_true(pb_find(buf, len, M_GRAPH, 0, &graph, &graph_len));
    assert_true(pb_find(m.d, m.n, M_GRAPH, 0, &orig_graph, &orig_graph_len));
    for (int i = 0; i < 2; i++) {
        static const unsigned fields[] = { M_TRAINING, M_FUNCTIONS };
        assert_true(pb_find(buf, len, fields[i], 0, &sub, &sub_len));
        assert_true(pb_find(m.d, m.n, fields[i], 0, &sub2, &sub2_len));
        assert_true(bytes_eq(sub, sub_len, sub2, sub2_len));
    }
    assert_non_null(memmem(buf, len, "model field from the future", 27));
    for (int i = 0; i < 4; i++) {
        static const unsigned fields[] = { G_QUANT, G_SPARSE, G_VALUE_INFO, G_INPUT };
        assert_true(pb_find(graph, graph_len, fields[i], 0, &sub, &sub_len));
        assert_true(pb_find(orig_graph, orig_graph_len, fields[i], 0, &sub2, &sub2_len));
        assert_true(bytes_eq(sub, sub_len, sub2, sub2_len));
    }
    assert_non_null(memmem(graph, graph_len, "weight doc", 10));
    assert_non_null(memmem(graph, graph_len, "ValueInfoProto field from the future", 36));
    {
        const uint8_t *node;
        size_t node_len;
        assert_true(pb_find(graph, graph_len, G_NODE, 0, &node, &node_len));
        assert_non_null(memmem(node, node_len, "NodeProto field from the future", 31));
    }
    {   /* the future GraphProto field 99 = 12345 */
        static const uint8_t field99[] = { 0x98, 0x06, 0xb9, 0x60 };
        assert_non_null(memmem(graph, graph_len, field99, sizeof field99));
    }
    {   /* attributes: the node is the first one in both */
        const uint8_t *n1, *n2;
        size_t l1, l2;
        assert_true(pb_find(graph, graph_len, G_NODE, 0, &n1, &l1));
        assert_true(pb_find(orig_graph, orig_graph_len, G_NODE, 0, &n2, &l2));
        for (int k = 0; k < 6; k++) {
            assert_true(pb_find(n1, l1, N_ATTR, k, &sub, &sub_len));
            assert_true(pb_find(n2, l2, N_ATTR, k, &sub2, &sub2_len));
            assert_true(bytes_eq(sub, sub_len, sub2, sub2_len));
        }
    }
    pare_free(buf);

    /* Editing a value drops the stale verbatim copy: the edit wins. */
    ((pare_attr *)pare_node_attr(&g->nodes[0], "documented"))->i = 7;
    buf = save_ok(g, &len);
    {
        pare_graph *g2 = NULL;
        pare_error err = { 0 };
        assert_int_equal(pare_graph_load_buffer(buf, len, "m.onnx", &g2, &err), PARE_OK);
        assert_int_equal(pare_node_attr_int(&g2->nodes[0], "documented", 0), 7);
        pare_graph_free(g2);
    }
    pare_free(buf);
    free(m.d);
    pare_graph_free(g);
}

/* ---- data encodings ---- */

static uint16_t f16_bits(float f)
{
    return pare_f32_to_f16(f);
}

static void test_f16_bf16_widened(void **state)
{
    static const int64_t d4[] = { 4 }, d22[] = { 2, 2 };
    static const float want[] = { 1.0f, -2.0f, 0.5f, -256.0f }; /* exact in both */
    uint16_t h[4], bf[4];
    pb g = { 0 }, t, vi, m;
    pare_graph *gr;
    int v;
    (void)state;

    for (int i = 0; i < 4; i++) {
        uint32_t bits;
        h[i] = f16_bits(want[i]);
        memcpy(&bits, &want[i], 4);
        bf[i] = (uint16_t)(bits >> 16);
    }
    t = raw_tensor("h_raw", 10, 2, d22, h, sizeof h);
    pb_msg(&g, G_INIT, &t);
    t = tensor_pb("h_typed", 10, 1, d4);
    for (int i = 0; i < 4; i++)
        pb_int(&t, T_INT32, h[i]);
    pb_msg(&g, G_INIT, &t);
    t = raw_tensor("bf_raw", 16, 1, d4, bf, sizeof bf);
    pb_msg(&g, G_INIT, &t);
    t = tensor_pb("bf_typed", 16, 1, d4);
    for (int i = 0; i < 4; i++)
        pb_int(&t, T_INT32, bf[i]);
    pb_msg(&g, G_INIT, &t);
    vi = value_info("h_raw", 10, 2, d22, NULL); /* also a graph input, declared f16 */
    pb_msg(&g, G_INPUT, &vi);
    vi = value_info("h_raw", 10, 2, d22, NULL);
    pb_msg(&g, G_OUTPUT, &vi);
    m = model_pb(&g);
    gr = load_pb_ok(&m);
    free(m.d);
    for (int k = 0; k < 4; k++) {
        static const char *const names[] = { "h_raw", "h_typed", "bf_raw", "bf_typed" };
        const pare_tensor *t4;
        v = pare_graph_find_value(gr, names[k]);
        assert_true(v >= 0);
        t4 = gr->values[v].init;
        assert_non_null(t4);
        assert_int_equal(t4->dtype, PARE_F32);
        assert_int_equal(gr->values[v].dtype, PARE_F32);
        assert_int_equal(pare_tensor_numel(t4), 4);
        for (int i = 0; i < 4; i++)
            assert_true(pare_tensor_f32(t4)[i] == want[i]);
    }
    v = pare_graph_find_value(gr, "h_raw");
    assert_true(gr->values[v].is_input);
    assert_int_equal(gr->values[v].ndim, 2);
    assert_roundtrip(gr);
    pare_graph_free(gr);
}

static void test_typed_fields(void **state)
{
    static const int64_t d3[] = { 3 };
    pb g = { 0 }, t, m;
    pare_graph *gr;
    const pare_tensor *x;
    (void)state;

    t = tensor_pb("f", 1, 1, d3);
    pb_f32(&t, T_FLOAT, 1.5f);
    pb_f32(&t, T_FLOAT, -0.0f);
    pb_f32(&t, T_FLOAT, 3e38f);
    pb_msg(&g, G_INIT, &t);
    {   /* packed float_data, as protobuf writers emit it */
        static const float fv[] = { 4.0f, 5.0f, 6.0f };
        t = tensor_pb("fp", 1, 1, d3);
        pb_bytes(&t, T_FLOAT, fv, sizeof fv);
        pb_msg(&g, G_INIT, &t);
    }
    t = tensor_pb("i8", 3, 1, d3);
    pb_int(&t, T_INT32, -128);
    pb_int(&t, T_INT32, 127);
    pb_int(&t, T_INT32, -1);
    pb_msg(&g, G_INIT, &t);
    t = tensor_pb("u8", 2, 1, d3);
    pb_int(&t, T_INT32, 0);
    pb_int(&t, T_INT32, 255);
    pb_int(&t, T_INT32, 7);
    pb_msg(&g, G_INIT, &t);
    t = tensor_pb("i16", 5, 1, d3);
    pb_int(&t, T_INT32, -32768);
    pb_int(&t, T_INT32, 1);
    pb_int(&t, T_INT32, 2);
    pb_msg(&g, G_INIT, &t);
    t = tensor_pb("b", 9, 1, d3);
    pb_int(&t, T_INT32, 1);
    pb_int(&t, T_INT32, 0);
    pb_int(&t, T_INT32, 1);
    pb_msg(&g, G_INIT, &t);
    t = tensor_pb("i64", 7, 1, d3);
    pb_int(&t, T_INT64, INT64_MIN);
    pb_int(&t, T_INT64, 0);
    pb_int(&t, T_INT64, INT64_MAX);
    pb_msg(&g, G_INIT, &t);
    t = tensor_pb("f64", 11, 1, d3);
    {
        double dv[] = { 0.1, -2.5, 1e300 };
        for (int i = 0; i < 3; i++) {
            pb_tag(&t, T_DOUBLE, 1);
            pb_put(&t, &dv[i], 8);
        }
    }
    pb_msg(&g, G_INIT, &t);
    t = tensor_pb("u32", 12, 1, d3);
    pb_int(&t, T_UINT64, 4000000000ll);
    pb_int(&t, T_UINT64, 0);
    pb_int(&t, T_UINT64, 1);
    pb_msg(&g, G_INIT, &t);
    t = tensor_pb("u64", 13, 1, d3);
    pb_int(&t, T_UINT64, -1);
    pb_int(&t, T_UINT64, 2);
    pb_int(&t, T_UINT64, 3);
    pb_msg(&g, G_INIT, &t);
    t = tensor_pb("scalar", 7, 0, NULL);
    pb_int(&t, T_INT64, 42);
    pb_msg(&g, G_INIT, &t);
    {
        static const int64_t d0[] = { 0, 5 };
        t = tensor_pb("empty", 1, 2, d0);
        pb_msg(&g, G_INIT, &t);
    }
    m = model_pb(&g);
    gr = load_pb_ok(&m);
    free(m.d);

#define INIT(name) (gr->values[pare_graph_find_value(gr, name)].init)
    x = INIT("f");
    assert_true(pare_tensor_f32(x)[0] == 1.5f && pare_tensor_f32(x)[2] == 3e38f);
    assert_true(signbit(pare_tensor_f32(x)[1]));
    x = INIT("fp");
    assert_true(pare_tensor_f32(x)[2] == 6.0f);
    x = INIT("i8");
    assert_int_equal(x->dtype, PARE_I8);
    assert_int_equal(((int8_t *)x->data)[0], -128);
    assert_int_equal(((int8_t *)x->data)[2], -1);
    x = INIT("u8");
    assert_int_equal(((uint8_t *)x->data)[1], 255);
    x = INIT("i16");
    assert_int_equal(((int16_t *)x->data)[0], -32768);
    x = INIT("b");
    assert_int_equal(x->dtype, PARE_BOOL);
    assert_memory_equal(x->data, "\1\0\1", 3);
    x = INIT("i64");
    assert_true(((int64_t *)x->data)[0] == INT64_MIN && ((int64_t *)x->data)[2] == INT64_MAX);
    x = INIT("f64");
    assert_true(((double *)x->data)[2] == 1e300);
    x = INIT("u32");
    assert_int_equal(x->dtype, PARE_U32);
    assert_int_equal(((uint32_t *)x->data)[0], 4000000000u);
    x = INIT("u64");
    assert_true(((uint64_t *)x->data)[0] == UINT64_MAX);
    x = INIT("scalar");
    assert_int_equal(x->ndim, 0);
    assert_int_equal(((int64_t *)x->data)[0], 42);
    x = INIT("empty");
    assert_int_equal(pare_tensor_numel(x), 0);
#undef INIT
    assert_roundtrip(gr); /* written back as raw_data, bit-identical */
    pare_graph_free(gr);
}

/* ---- external data ---- */

static pb external_model_shaped(const char *location, const char *offset, const char *length,
                                int ndim, const int64_t *d)
{
    pb g = { 0 }, t = tensor_pb("w", 1, ndim, d), kv, vi;
    static const char *const in[] = { "w" }, *const out[] = { "y" };
    pb n = node_pb("Identity", "id", in, 1, out, 1);

    kv = (pb){ 0 };
    pb_str(&kv, 1, "location");
    pb_str(&kv, 2, location);
    pb_msg(&t, T_EXTERNAL, &kv);
    if (offset) {
        kv = (pb){ 0 };
        pb_str(&kv, 1, "offset");
        pb_str(&kv, 2, offset);
        pb_msg(&t, T_EXTERNAL, &kv);
    }
    if (length) {
        kv = (pb){ 0 };
        pb_str(&kv, 1, "length");
        pb_str(&kv, 2, length);
        pb_msg(&t, T_EXTERNAL, &kv);
    }
    pb_int(&t, T_LOCATION, 1);
    pb_msg(&g, G_INIT, &t);
    pb_msg(&g, G_NODE, &n);
    vi = value_info("y", 1, ndim, d, NULL);
    pb_msg(&g, G_OUTPUT, &vi);
    return model_pb(&g);
}

static pb external_model(const char *location, const char *offset, const char *length)
{
    static const int64_t d[] = { 2, 3 };
    return external_model_shaped(location, offset, length, 2, d);
}

static void expect_file_error(const char *path, pare_status code, const char *where, const char *msg)
{
    pare_graph *g = NULL;
    pare_error err = { 0 };
    pare_status rc = pare_graph_load(path, &g, &err);
    if (rc != code)
        fail_msg("expected %d, got %d: %s: %s", code, rc, err.where, err.msg);
    assert_null(g);
    assert_string_equal(err.where, where);
    assert_string_equal(err.msg, msg);
}

static void test_external_data(void **state)
{
    static const float w[6] = { 1, 2, 3, 4, 5, 6 };
    char path[512], data[512], where[600];
    uint8_t blob[16 + sizeof w];
    pare_graph *g;
    pb m;
    int v;
    (void)state;

    mkdir(tmp_path(data, sizeof data, "ext"), 0755);
    memset(blob, 0xee, 16);
    memcpy(blob + 16, w, sizeof w);
    write_file(tmp_path(data, sizeof data, "ext/w.bin"), blob, sizeof blob);
    tmp_path(path, sizeof path, "ext/model.onnx");
    snprintf(where, sizeof where, "%s: initializer 'w'", path);

    m = external_model("w.bin", "16", "24");
    write_file(path, m.d, m.n);
    g = load_ok(path);
    v = pare_graph_find_value(g, "w");
    assert_memory_equal(g->values[v].init->data, w, sizeof w);
    assert_roundtrip(g); /* saved inline, same weights */
    pare_graph_free(g);
    /* without length: the rest of the file */
    free(m.d);
    m = external_model("w.bin", "16", NULL);
    write_file(path, m.d, m.n);
    g = load_ok(path);
    pare_graph_free(g);
    /* the same bytes from a buffer cannot resolve the side file */
    {
        pare_graph *gb = NULL;
        pare_error err = { 0 };
        assert_int_equal(pare_graph_load_buffer(m.d, m.n, "buf.onnx", &gb, &err), PARE_EUNSUPPORTED);
        assert_string_equal(err.where, "buf.onnx: initializer 'w'");
        assert_string_equal(err.msg, "external data in 'w.bin' needs the model's file path; "
                                     "load the model from its file");
    }
    free(m.d);

    m = external_model("/etc/passwd", NULL, NULL);
    write_file(path, m.d, m.n);
    free(m.d);
    expect_file_error(path, PARE_EINPUT, where,
                      "external data path '/etc/passwd' is absolute; it must be relative to the "
                      "model's folder");
    m = external_model("sub/../../w.bin", NULL, NULL);
    write_file(path, m.d, m.n);
    free(m.d);
    expect_file_error(path, PARE_EINPUT, where, "external data path 'sub/../../w.bin' leaves the model's folder");
    m = external_model("missing.bin", NULL, NULL);
    write_file(path, m.d, m.n);
    free(m.d);
    expect_file_error(path, PARE_EIO, where,
                      "cannot open external data file 'missing.bin': No such file or directory");
    m = external_model("w.bin", "16", "40");
    write_file(path, m.d, m.n);
    free(m.d);
    expect_file_error(path, PARE_EINPUT, where,
                      "external data (offset 16, length 40) runs past the end of 'w.bin' (40 bytes)");
    m = external_model("w.bin", "8", NULL);
    write_file(path, m.d, m.n);
    free(m.d);
    expect_file_error(path, PARE_EINPUT, where, "external data holds 32 bytes but the tensor needs 24");
    m = external_model("w.bin", "-3", NULL);
    write_file(path, m.d, m.n);
    free(m.d);
    expect_file_error(path, PARE_EINPUT, where, "external data offset '-3' is not a number");
    m = external_model("w.bin", "99", NULL);
    write_file(path, m.d, m.n);
    free(m.d);
    expect_file_error(path, PARE_EINPUT, where,
                      "external data offset 99 is past the end of 'w.bin' (40 bytes)");
    {   /* a huge shape is refused before anything is allocated for it */
        static const int64_t huge[] = { 1ll << 39 };
        pare_graph *gb = NULL;
        pare_error err = { 0 };
        m = external_model_shaped("w.bin", NULL, NULL, 1, huge);
        write_file(path, m.d, m.n);
        expect_file_error(path, PARE_EINPUT, where,
                          "external data holds 40 bytes but the tensor needs 2199023255552");
        assert_int_equal(pare_graph_load_buffer(m.d, m.n, "buf.onnx", &gb, &err), PARE_EUNSUPPORTED);
        free(m.d);
    }
}

static void test_save_with_external_data(void **state)
{
    char path[512], data[512];
    pare_graph *g = load_ok(PARE_TEST_DATA "/lenet5.onnx"), *g2;
    pare_error err = { 0 };
    struct stat st_model, st_data;
    (void)state;

    mkdir(tmp_path(path, sizeof path, "big"), 0755);
    tmp_path(path, sizeof path, "big/model.onnx");
    tmp_path(data, sizeof data, "big/model.onnx.data");
    onnx_set_external_threshold(100 * 1000); /* lenet5 is ~250 KB */
    assert_int_equal(pare_graph_save(g, path, &err), PARE_OK);
    onnx_set_external_threshold(0);
    assert_int_equal(stat(path, &st_model), 0);
    assert_int_equal(stat(data, &st_data), 0);
    assert_true(st_model.st_size < 20000);
    assert_true(st_data.st_size >= 61706 * 4);
    assert_int_equal(count_matching(tmp_path(data, sizeof data, "big"), ".tmp"), 0);
    g2 = load_ok(path);
    assert_graphs_equal(g, g2);
    pare_graph_free(g2);
    pare_graph_free(g);
}

/* ---- saving files ---- */

static void test_save_file(void **state)
{
    char path[512], dir[512];
    pare_graph *g = load_ok(PARE_TEST_DATA "/resnet8.onnx"), *g2;
    pare_error err = { 0 };
    uint8_t *buf, *file;
    size_t len, flen;
    (void)state;

    mkdir(tmp_path(dir, sizeof dir, "save"), 0755);
    tmp_path(path, sizeof path, "save/out.onnx");
    write_file(path, "old", 3);
    assert_int_equal(pare_graph_save(g, path, &err), PARE_OK);
    file = read_file(path, &flen);
    buf = save_ok(g, &len);
    assert_true(bytes_eq(buf, len, file, flen)); /* the file holds what save_buffer gives */
    assert_int_equal(count_matching(dir, ".tmp"), 0);
    g2 = load_ok(path);
    pare_graph_free(g2);
    pare_free(buf);
    free(file);

    /* a folder that does not exist: EIO, nothing written */
    tmp_path(path, sizeof path, "save/nope/out.onnx");
    assert_int_equal(pare_graph_save(g, path, &err), PARE_EIO);
    assert_string_equal(err.where, path);
    {
        char msg[700];
        snprintf(msg, sizeof msg, "cannot create a temporary file beside '%s': No such file or directory",
                 path);
        assert_string_equal(err.msg, msg);
    }

    /* a graph that cannot be saved leaves the old file alone */
    tmp_path(path, sizeof path, "save/out.onnx");
    {
        pare_tensor *keep;
        char where[600];
        int v = 0;
        while (!g->values[v].init)
            v++;
        keep = g->values[v].init;
        g->values[v].init = pare_calloc(1, sizeof(pare_tensor));
        pare_tensor_view(g->values[v].init, PARE_STRING, 1, keep->dims, NULL);
        assert_int_equal(pare_graph_save(g, path, &err), PARE_EUNSUPPORTED);
        snprintf(where, sizeof where, "%s: initializer '%s'", path, g->values[v].name);
        assert_string_equal(err.where, where);
        assert_string_equal(err.msg, "cannot save a string initializer");
        pare_tensor_free(g->values[v].init);
        g->values[v].init = keep;
    }
    g2 = load_ok(path); /* still the earlier save */
    assert_graphs_equal(g, g2);
    pare_graph_free(g2);
    assert_int_equal(count_matching(dir, ".tmp"), 0);
    pare_graph_free(g);
}

static void test_tensor_load_pb(void **state)
{
    pare_tensor *t = NULL;
    pare_error err = { 0 };
    char *name = NULL, path[512];
    (void)state;

    assert_int_equal(pare_tensor_load_pb(NODE_TESTS "/test_relu/test_data_set_0/input_0.pb", &t,
                                         &name, &err), PARE_OK);
    assert_string_equal(name, "x");
    assert_int_equal(t->dtype, PARE_F32);
    assert_int_equal(t->ndim, 3);
    assert_int_equal(t->dims[0], 3);
    assert_int_equal(t->dims[1], 4);
    assert_int_equal(t->dims[2], 5);
    pare_tensor_free(t);
    pare_free(name);
    assert_int_equal(pare_tensor_load_pb(NODE_TESTS "/test_relu/test_data_set_0/output_0.pb", &t,
                                         NULL, &err), PARE_OK);
    for (int64_t i = 0; i < pare_tensor_numel(t); i++)
        assert_true(pare_tensor_f32(t)[i] >= 0.0f);
    pare_tensor_free(t);

    tmp_path(path, sizeof path, "bad.pb");
    write_file(path, "\x08", 1);
    assert_int_equal(pare_tensor_load_pb(path, &t, &name, &err), PARE_EINPUT);
    assert_null(t);
    assert_null(name);
    assert_string_equal(err.where, path);
    assert_string_equal(err.msg, "truncated file: field 1 at offset 0 runs past the end of the data");
    write_file(path, "", 0);
    assert_int_equal(pare_tensor_load_pb(path, &t, &name, &err), PARE_EINPUT);
    assert_string_equal(err.msg, "empty file");
    assert_int_equal(pare_tensor_load_pb("/nonexistent/x.pb", &t, &name, &err), PARE_EIO);
    assert_string_equal(err.msg, "cannot open: No such file or directory");
}

/* ---- malformed input: one message each ---- */

static void test_bad_files(void **state)
{
    char path[512], where[600];
    uint8_t *lenet;
    size_t len;
    pare_graph *g = NULL;
    pare_error err = { 0 };
    pb m = { 0 };
    (void)state;

    tmp_path(path, sizeof path, "empty.onnx");
    write_file(path, "", 0);
    expect_file_error(path, PARE_EINPUT, path, "empty file");
    expect_file_error("/nonexistent/model.onnx", PARE_EIO, "/nonexistent/model.onnx",
                      "cannot open: No such file or directory");
    expect_file_error("/tmp", PARE_EIO, "/tmp", "cannot read: it is a directory");
    assert_int_equal(pare_graph_load_buffer("", 0, "m.onnx", &g, &err), PARE_EINPUT);
    assert_string_equal(err.msg, "empty file");

    /* truncated: cut lenet5 in the middle of its graph */
    lenet = read_file(PARE_TEST_DATA "/lenet5.onnx", &len);
    tmp_path(path, sizeof path, "truncated.onnx");
    write_file(path, lenet, len / 2);
    expect_file_error(path, PARE_EINPUT, path,
                      "truncated file: field 7 at offset 19 runs past the end of the data");
    assert_int_equal(pare_graph_load(path, &g, &err), PARE_EINPUT);
    assert_string_equal(err.hint, "the file was probably cut short while copying or downloading");
    /* truncated inside a varint at the very end */
    pb_put(&m, lenet, 19);
    pb_put(&m, "\x3a\xff", 2);
    expect_load_error(&m, PARE_EINPUT, "m.onnx",
                      "truncated file: field 7 at offset 19 runs past the end of the data");
    free(lenet);

    pb_put(&m, "hello, this is not a model\n", 27);
    expect_load_error(&m, PARE_EINPUT, "m.onnx",
                      "not an ONNX model: the bytes at offset 0 are not a protobuf ModelProto field");
    pb_put(&m, "\x08\x07\x12\x03" "abc", 7);  /* ir_version and a producer, nothing else */
    expect_load_error(&m, PARE_EINPUT, "m.onnx", "model has no graph");
    {   /* a valid TensorProto is not a model */
        uint8_t *pbf = read_file(NODE_TESTS "/test_relu/test_data_set_0/input_0.pb", &len);
        assert_int_equal(pare_graph_load_buffer(pbf, len, "in.pb", &g, &err), PARE_EINPUT);
        assert_string_equal(err.msg,
                            "not an ONNX model: the bytes at offset 6 are not a protobuf ModelProto field");
        assert_string_equal(err.hint, "is this an ONNX file?");
        free(pbf);
    }
    {   /* no opset_import */
        pb gr = relu_graph();
        pb_int(&m, M_IR, 8);
        pb_msg(&m, M_GRAPH, &gr);
        expect_load_error(&m, PARE_EINPUT, "m.onnx", "model imports no operator set");
    }
    {   /* nested graph attribute bytes that are not a GraphProto */
        pb gr = relu_graph(), n = node_pb("If", "branchy", NULL, 0, NULL, 0), a = { 0 };
        pb_str(&a, A_NAME, "then_branch");
        pb_bytes(&a, A_G, "\x0f\x0f\x0f", 3);
        pb_int(&a, A_TYPE, 5);
        pb_msg(&n, N_ATTR, &a);
        pb_msg(&gr, G_NODE, &n);
        m = model_pb(&gr);
        snprintf(where, sizeof where, "corrupt protobuf data at offset %zu inside a GraphProto",
                 (size_t)(memmem(m.d, m.n, "\x0f\x0f\x0f", 3) - (void *)m.d));
        expect_load_error(&m, PARE_EINPUT, "m.onnx", where);
    }
    {   /* subgraphs nested 200 deep */
        pb gr = relu_graph();
        for (int i = 0; i < 200; i++) {
            pb outer = { 0 }, n = node_pb("If", NULL, NULL, 0, NULL, 0), a = { 0 };
            pb_str(&a, A_NAME, "then_branch");
            pb_msg(&a, A_G, &gr);
            pb_int(&a, A_TYPE, 5);
            pb_msg(&n, N_ATTR, &a);
            pb_msg(&outer, G_NODE, &n);
            gr = outer;
        }
        m = model_pb(&gr);
        expect_load_error(&m, PARE_EINPUT, "m.onnx",
                          "protobuf messages nest more than 96 levels deep (subgraphs nested too deeply)");
    }
    {   /* ...while 20 levels load fine, kept as opaque GRAPH attributes */
        pb gr = relu_graph();
        pare_graph *deep;
        for (int i = 0; i < 20; i++) {
            pb outer = relu_graph(), n = node_pb("If", NULL, NULL, 0, NULL, 0), a = { 0 };
            pb_str(&a, A_NAME, "then_branch");
            pb_msg(&a, A_G, &gr);
            pb_int(&a, A_TYPE, 5);
            pb_msg(&n, N_ATTR, &a);
            pb_msg(&outer, G_NODE, &n);
            gr = outer;
        }
        m = model_pb(&gr);
        deep = load_pb_ok(&m);
        assert_int_equal(deep->n_nodes, 2);
        assert_roundtrip(deep);
        pare_graph_free(deep);
        free(m.d);
    }
}

/* Graph "x -> Relu -> y" with one extra initializer (consumed). */
static pb model_with_init(pb *t)
{
    pb g = relu_graph();
    pb_msg(&g, G_INIT, t);
    return model_pb(&g);
}

static void test_bad_initializers(void **state)
{
    static const int64_t d23[] = { 2, 3 }, dneg[] = { -1, 3 };
    static const int64_t dover[] = { 1ll << 31, 1ll << 31, 1ll << 31 };
    static const int64_t dbig[] = { 1ll << 21, 1ll << 20 };
    static const int64_t d9[] = { 1, 1, 1, 1, 1, 1, 1, 1, 1 };
    static const float six[6] = { 0 };
    const char *w = "m.onnx: initializer 'w'";
    pb t, m;
    (void)state;

    t = raw_tensor("w", 1, 2, d23, six, 10);
    m = model_with_init(&t);
    expect_load_error(&m, PARE_EINPUT, w, "raw_data holds 10 bytes but shape [2, 3] of float32 needs 24");
    t = raw_tensor("w", 1, 2, dneg, six, 12);
    m = model_with_init(&t);
    expect_load_error(&m, PARE_EINPUT, w, "dimension 0 is negative (-1)");
    t = raw_tensor("w", 1, 3, dover, six, 4);
    m = model_with_init(&t);
    expect_load_error(&m, PARE_EINPUT, w,
                      "shape [2147483648, 2147483648, 2147483648] has too many elements (limit 2^40)");
    t = raw_tensor("w", 1, 2, dbig, six, 4);
    m = model_with_init(&t);
    expect_load_error(&m, PARE_EINPUT, w, "shape [2097152, 1048576] has too many elements (limit 2^40)");
    t = raw_tensor("w", 99, 2, d23, six, 24);
    m = model_with_init(&t);
    expect_load_error(&m, PARE_EINPUT, w, "unknown data type 99");
    t = raw_tensor("w", 0, 2, d23, six, 24);
    m = model_with_init(&t);
    expect_load_error(&m, PARE_EINPUT, w, "tensor has no data type");
    t = raw_tensor("w", 1, 9, d9, six, 4);
    m = model_with_init(&t);
    expect_load_error(&m, PARE_EUNSUPPORTED, w, "tensor has 9 dimensions; pare supports at most 8");
    t = raw_tensor("w", 14, 2, d23, six, 24);
    m = model_with_init(&t);
    expect_load_error(&m, PARE_EUNSUPPORTED, w, "tensor of data type complex64 is not supported");
    t = tensor_pb("w", 8, 1, d23);
    pb_str(&t, 6, "a string");
    m = model_with_init(&t);
    expect_load_error(&m, PARE_EUNSUPPORTED, w, "tensor of data type string is not supported");
    t = tensor_pb("w", 1, 2, d23);
    m = model_with_init(&t);
    expect_load_error(&m, PARE_EINPUT, w, "tensor has no data (shape [2, 3] needs 6 values)");
    t = tensor_pb("w", 1, 1, d23);
    pb_int(&t, T_INT64, 5);
    pb_int(&t, T_INT64, 6);
    m = model_with_init(&t);
    expect_load_error(&m, PARE_EINPUT, w, "float32 tensor stores data in int64_data");
    t = tensor_pb("w", 1, 2, d23);
    pb_f32(&t, T_FLOAT, 1.0f);
    m = model_with_init(&t);
    expect_load_error(&m, PARE_EINPUT, w, "float_data holds 1 values but shape [2, 3] needs 6");
    t = raw_tensor("w", 1, 1, d23, six, 8);
    pb_f32(&t, T_FLOAT, 1.0f);
    pb_f32(&t, T_FLOAT, 1.0f);
    m = model_with_init(&t);
    expect_load_error(&m, PARE_EINPUT, w,
                      "tensor has more than one data source (raw_data, float_data, external data)");
    t = raw_tensor("", 1, 2, d23, six, 24);
    m = model_with_init(&t);
    expect_load_error(&m, PARE_EINPUT, "m.onnx", "initializer #0 has no name");
    {   /* a buffer without a location is called "model", as in pare_graph_node_where */
        pare_graph *g = NULL;
        pare_error err = { 0 };
        t = raw_tensor("w", 1, 2, dneg, six, 12);
        m = model_with_init(&t);
        assert_int_equal(pare_graph_load_buffer(m.d, m.n, NULL, &g, &err), PARE_EINPUT);
        assert_string_equal(err.where, "model: initializer 'w'");
        assert_null(g);
        free(m.d);
    }
    {
        pb g = relu_graph();
        t = raw_tensor("w", 1, 2, d23, six, 24);
        pb_msg(&g, G_INIT, &t);
        t = raw_tensor("w", 1, 2, d23, six, 24);
        pb_msg(&g, G_INIT, &t);
        m = model_pb(&g);
        expect_load_error(&m, PARE_EINPUT, w, "initializer is defined twice");
    }
    {   /* declared as a graph input with another type / shape */
        static const int64_t d32[] = { 3, 2 };
        pb g = relu_graph(), vi;
        t = raw_tensor("w", 1, 2, d23, six, 24);
        pb_msg(&g, G_INIT, &t);
        vi = value_info("w", 7, 2, d23, NULL);
        pb_msg(&g, G_INPUT, &vi);
        m = model_pb(&g);
        expect_load_error(&m, PARE_EINPUT, w, "initializer is float32 but its graph input declares int64");
        g = relu_graph();
        t = raw_tensor("w", 1, 2, d23, six, 24);
        pb_msg(&g, G_INIT, &t);
        vi = value_info("w", 1, 2, d32, NULL);
        pb_msg(&g, G_INPUT, &vi);
        m = model_pb(&g);
        expect_load_error(&m, PARE_EINPUT, w,
                          "initializer has shape [2, 3] but its graph input declares [3, 2]");
    }
}

static void test_bad_graphs(void **state)
{
    static const int64_t d23[] = { 2, 3 }, dneg[] = { 2, -7 };
    static const int64_t d9[] = { 1, 1, 1, 1, 1, 1, 1, 1, 1 };
    pb g, n, m, vi, a;
    (void)state;

    {   /* a node input nobody produces */
        static const char *const in[] = { "ghost" }, *const out[] = { "z" };
        g = relu_graph();
        n = node_pb("Relu", "n2", in, 1, out, 1);
        pb_msg(&g, G_NODE, &n);
        m = model_pb(&g);
        expect_load_error(&m, PARE_EINPUT, "m.onnx: node 'n2' (Relu)",
                          "input 'ghost' is not produced by any node, graph input or initializer");
    }
    {   /* a cycle: a = Add(x, b), b = Relu(a) */
        static const char *const in1[] = { "x", "b" }, *const out1[] = { "a" };
        static const char *const in2[] = { "a" }, *const out2[] = { "b" };
        g = relu_graph();
        n = node_pb("Add", "A", in1, 2, out1, 1);
        pb_msg(&g, G_NODE, &n);
        n = node_pb("Relu", "B", in2, 1, out2, 1);
        pb_msg(&g, G_NODE, &n);
        m = model_pb(&g);
        expect_load_error(&m, PARE_EINPUT, "m.onnx: node 'A' (Add)", "the graph has a cycle through this node");
    }
    {   /* two producers of y */
        static const char *const in[] = { "x" }, *const out[] = { "y" };
        g = relu_graph();
        n = node_pb("Sigmoid", "n2", in, 1, out, 1);
        pb_msg(&g, G_NODE, &n);
        m = model_pb(&g);
        expect_load_error(&m, PARE_EINPUT, "m.onnx: node 'n2' (Sigmoid)",
                          "value 'y' is already produced by node 'n1'");
    }
    {   /* a node writing a graph input */
        static const char *const in[] = { "y" }, *const out[] = { "x" };
        g = relu_graph();
        n = node_pb("Neg", "n2", in, 1, out, 1);
        pb_msg(&g, G_NODE, &n);
        m = model_pb(&g);
        expect_load_error(&m, PARE_EINPUT, "m.onnx: node 'n2' (Neg)",
                          "output 'x' is also a graph input or initializer");
    }
    {
        static const char *const in[] = { "x" }, *const out[] = { "z" };
        g = relu_graph();
        n = node_pb("", "nop", in, 1, out, 1);
        pb_msg(&g, G_NODE, &n);
        m = model_pb(&g);
        expect_load_error(&m, PARE_EINPUT, "m.onnx: node 'nop' ()", "node has no op_type");
    }
    {   /* unnamed node: located by index */
        static const char *const in[] = { "x" }, *const out[] = { "z" };
        g = relu_graph();
        n = node_pb("Relu", NULL, in, 1, out, 1);
        a = attr_int("alpha", 1);
        pb_msg(&n, N_ATTR, &a);
        a = attr_int("alpha", 2);
        pb_msg(&n, N_ATTR, &a);
        pb_msg(&g, G_NODE, &n);
        m = model_pb(&g);
        expect_load_error(&m, PARE_EINPUT, "m.onnx: node #1 (Relu)", "attribute 'alpha' appears twice");
    }
    {   /* Constant whose tensor is malformed */
        static const char *const out[] = { "c" };
        static const float two[2] = { 0 };
        pb t = raw_tensor(NULL, 1, 2, d23, two, 8);
        g = relu_graph();
        n = node_pb("Constant", "k", NULL, 0, out, 1);
        a = (pb){ 0 };
        pb_str(&a, A_NAME, "value");
        pb_msg(&a, A_T, &t);
        pb_int(&a, A_TYPE, 4);
        pb_msg(&n, N_ATTR, &a);
        pb_msg(&g, G_NODE, &n);
        m = model_pb(&g);
        expect_load_error(&m, PARE_EINPUT, "m.onnx: node 'k' (Constant)",
                          "attribute 'value': raw_data holds 8 bytes but shape [2, 3] of float32 needs 24");
    }
    {
        static const char *const in[] = { "x" }, *const out[] = { "z" };
        g = relu_graph();
        n = node_pb("Relu", "r", in, 1, out, 1);
        a = attr_int("", 1);
        pb_msg(&n, N_ATTR, &a);
        pb_msg(&g, G_NODE, &n);
        m = model_pb(&g);
        expect_load_error(&m, PARE_EINPUT, "m.onnx: node 'r' (Relu)", "attribute has no name");
    }
    g = relu_graph();
    vi = value_info("nobody", 1, 2, d23, NULL);
    pb_msg(&g, G_OUTPUT, &vi);
    m = model_pb(&g);
    expect_load_error(&m, PARE_EINPUT, "m.onnx", "graph output 'nobody' is not produced by any node");
    g = relu_graph();
    vi = value_info("x", 1, 2, d23, NULL);
    pb_msg(&g, G_INPUT, &vi);
    m = model_pb(&g);
    expect_load_error(&m, PARE_EINPUT, "m.onnx: input 'x'", "graph input is listed twice");
    g = relu_graph();
    vi = value_info("", 1, 2, d23, NULL);
    pb_msg(&g, G_OUTPUT, &vi);
    m = model_pb(&g);
    expect_load_error(&m, PARE_EINPUT, "m.onnx", "graph output #1 has no name");
    g = relu_graph();
    vi = value_info("y", 1, 2, dneg, NULL);
    pb_msg(&g, G_VALUE_INFO, &vi);
    m = model_pb(&g);
    /* y's type comes from graph.output first; this value_info is not used */
    {
        pare_graph *ok = load_pb_ok(&m);
        pare_graph_free(ok);
        free(m.d);
    }
    g = (pb){ 0 };
    {
        static const char *const in[] = { "x" }, *const out[] = { "y" };
        n = node_pb("Relu", "n1", in, 1, out, 1);
        pb_msg(&g, G_NODE, &n);
        vi = value_info("x", 1, 2, dneg, NULL);
        pb_msg(&g, G_INPUT, &vi);
        m = model_pb(&g);
        expect_load_error(&m, PARE_EINPUT, "m.onnx: input 'x'", "dimension 1 is negative (-7)");
        g = (pb){ 0 };
        n = node_pb("Relu", "n1", in, 1, out, 1);
        pb_msg(&g, G_NODE, &n);
        vi = value_info("x", 1, 9, d9, NULL);
        pb_msg(&g, G_INPUT, &vi);
        m = model_pb(&g);
        expect_load_error(&m, PARE_EUNSUPPORTED, "m.onnx: input 'x'",
                          "value has rank 9; pare supports at most 8 dimensions");
        g = (pb){ 0 };
        n = node_pb("Relu", "n1", in, 1, out, 1);
        pb_msg(&g, G_NODE, &n);
        vi = value_info("y", 77, 2, d23, NULL);
        pb_msg(&g, G_OUTPUT, &vi);
        m = model_pb(&g);
        expect_load_error(&m, PARE_EINPUT, "m.onnx: output 'y'", "unknown data type 77");
    }
    {   /* empty names mark omitted optional inputs and outputs */
        static const char *const in[] = { "x", "", "x" }, *const out[] = { "z", "" };
        pare_graph *gr;
        g = relu_graph();
        n = node_pb("Clip", "clip", in, 3, out, 2);
        pb_msg(&g, G_NODE, &n);
        m = model_pb(&g);
        gr = load_pb_ok(&m);
        free(m.d);
        {
            int k = pare_graph_find_node(gr, "clip");
            assert_int_equal(gr->nodes[k].n_inputs, 3);
            assert_int_equal(gr->nodes[k].inputs[1], -1);
            assert_int_equal(gr->nodes[k].outputs[1], -1);
        }
        assert_int_equal(pare_graph_find_value(gr, ""), -1);
        assert_roundtrip(gr);
        pare_graph_free(gr);
    }
}

/* ---- out of memory ---- */

static void sweep_load(const uint8_t *buf, size_t len, int *steps)
{
    for (long n = 1;; n++) {
        pare_graph *g = (pare_graph *)1;
        pare_error err = { 0 };
        pare_status rc;

        pare_alloc_fail_at(n);
        rc = pare_graph_load_buffer(buf, len, "m.onnx", &g, &err);
        pare_alloc_fail_at(0);
        if (rc == PARE_OK) {
            assert_non_null(g);
            pare_graph_free(g);
            *steps = (int)n;
            return;
        }
        if (rc != PARE_ENOMEM)
            fail_msg("allocation %ld failing gave %d: %s: %s", n, rc, err.where, err.msg);
        assert_null(g);
        assert_int_equal(err.code, PARE_ENOMEM);
    }
}

static void sweep_save(const pare_graph *g, int *steps)
{
    for (long n = 1;; n++) {
        uint8_t *buf = (uint8_t *)1;
        size_t len = 1;
        pare_error err = { 0 };
        pare_status rc;

        pare_alloc_fail_at(n);
        rc = pare_graph_save_buffer(g, &buf, &len, &err);
        pare_alloc_fail_at(0);
        if (rc == PARE_OK) {
            pare_free(buf);
            *steps = (int)n;
            return;
        }
        assert_int_equal(rc, PARE_ENOMEM);
        assert_null(buf);
        assert_int_equal(len, 0);
    }
}

static void test_alloc_failures(void **state)
{
    size_t len;
    uint8_t *buf = read_file(PARE_TEST_DATA "/lenet5.onnx", &len);
    pare_graph *g;
    pb m;
    int steps = 0;
    (void)state;

    sweep_load(buf, len, &steps);
    assert_true(steps > 50); /* every allocation of a real load was failed once */
    free(buf);
    g = load_ok(PARE_TEST_DATA "/lenet5.onnx");
    sweep_save(g, &steps);
    assert_true(steps > 20);
    pare_graph_free(g);
    /* opaque attributes, extras, overrides and notes */
    m = kitchen_sink();
    sweep_load(m.d, m.n, &steps);
    g = load_pb_ok(&m);
    sweep_save(g, &steps);
    pare_graph_free(g);
    free(m.d);
    /* a file load, including the path copy */
    for (long n = 1;; n++) {
        pare_error err = { 0 };
        pare_status rc;
        g = NULL;
        pare_alloc_fail_at(n);
        rc = pare_graph_load(NODE_TESTS "/test_if/model.onnx", &g, &err);
        pare_alloc_fail_at(0);
        if (rc == PARE_OK) {
            pare_graph_free(g);
            break;
        }
        assert_int_equal(rc, PARE_ENOMEM);
    }
}

/* pare_graph_save failing at every allocation, weights in a side file:
 * nothing appears at the target, no temporary file is left behind. */
static void test_save_file_alloc_failures(void **state)
{
    static const int64_t d[] = { 600 };
    static float w[600];
    char dir[512], path[512], data[512];
    pb t, m;
    pare_graph *g, *g2;
    struct stat st;
    long n;
    (void)state;

    for (int i = 0; i < 600; i++)
        w[i] = (float)i * 0.5f;
    t = raw_tensor("w", 1, 1, d, w, sizeof w);
    m = model_with_init(&t);
    g = load_pb_ok(&m);
    free(m.d);
    mkdir(tmp_path(dir, sizeof dir, "oom"), 0755);
    tmp_path(path, sizeof path, "oom/model.onnx");
    tmp_path(data, sizeof data, "oom/model.onnx.data");
    onnx_set_external_threshold(100);
    for (n = 1;; n++) {
        pare_error err = { 0 };
        pare_status rc;
        pare_alloc_fail_at(n);
        rc = pare_graph_save(g, path, &err);
        pare_alloc_fail_at(0);
        if (rc == PARE_OK)
            break;
        assert_int_equal(rc, PARE_ENOMEM);
        assert_int_not_equal(stat(path, &st), 0);
        assert_int_equal(count_matching(dir, ".tmp"), 0);
    }
    onnx_set_external_threshold(0);
    assert_true(n > 10);
    assert_int_equal(stat(data, &st), 0);
    assert_int_equal(st.st_size, sizeof w);
    g2 = load_ok(path);
    assert_graphs_equal(g, g2);
    pare_graph_free(g2);
    pare_graph_free(g);
}

/* ---- every ONNX backend node test model, and the fuzz regressions ---- */

/* Every model of ONNX's backend tests (node, pytorch-converted,
 * pytorch-operator, simple) loads and round-trips. */
static void test_backend_test_models(void **state)
{
    static const char *const sets[] = { "node", "pytorch-converted", "pytorch-operator", "simple" };
    int loaded = 0;
    (void)state;

    for (int k = 0; k < 4; k++) {
        char dir[300];
        DIR *d;
        struct dirent *e;

        snprintf(dir, sizeof dir, "%s/../%s", NODE_TESTS, sets[k]);
        d = opendir(dir);
        if (!d)
            skip();
        while ((e = readdir(d))) {
            char path[700];
            pare_graph *g = NULL;
            pare_error err = { 0 };
            struct stat st;

            snprintf(path, sizeof path, "%s/%s/model.onnx", dir, e->d_name);
            if (strncmp(e->d_name, "test_", 5) || stat(path, &st))
                continue;
            if (pare_graph_load(path, &g, &err) != PARE_OK)
                fail_msg("%s: %s", err.where, err.msg);
            assert_roundtrip(g);
            pare_graph_free(g);
            loaded++;
        }
        closedir(d);
    }
    assert_true(loaded > 1000);
}

static void test_fuzz_regressions(void **state)
{
    DIR *d = opendir(FUZZ_REGRESSIONS);
    struct dirent *e;
    int n = 0;
    (void)state;

    assert_non_null(d);
    while ((e = readdir(d))) {
        char path[600];
        uint8_t *buf, *out = NULL;
        size_t len, out_len;
        pare_graph *g = NULL;
        pare_error err = { 0 };

        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "%s/%s", FUZZ_REGRESSIONS, e->d_name);
        buf = read_file(path, &len);
        assert_non_null(buf);
        if (pare_graph_load_buffer(buf, len, e->d_name, &g, &err) == PARE_OK) {
            if (pare_graph_save_buffer(g, &out, &out_len, &err) == PARE_OK)
                pare_free(out);
            pare_graph_free(g);
        } else {
            assert_null(g);
            assert_true(err.msg[0] != '\0');
        }
        free(buf);
        n++;
    }
    closedir(d);
    assert_true(n > 0);
}

static int cleanup(void **state)
{
    char cmd[300];
    (void)state;
    if (tmp_root[0]) {
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_root);
        if (system(cmd) != 0)
            return -1;
    }
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lenet5),
        cmocka_unit_test(test_resnet8),
        cmocka_unit_test(test_resnet8_bn),
        cmocka_unit_test(test_tiny_vit),
        cmocka_unit_test(test_lenet5_attributes),
        cmocka_unit_test(test_if_subgraph_roundtrip),
        cmocka_unit_test(test_extras_survive),
        cmocka_unit_test(test_f16_bf16_widened),
        cmocka_unit_test(test_typed_fields),
        cmocka_unit_test(test_external_data),
        cmocka_unit_test(test_save_with_external_data),
        cmocka_unit_test(test_save_file),
        cmocka_unit_test(test_tensor_load_pb),
        cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_bad_initializers),
        cmocka_unit_test(test_bad_graphs),
        cmocka_unit_test(test_alloc_failures),
        cmocka_unit_test(test_save_file_alloc_failures),
        cmocka_unit_test(test_backend_test_models),
        cmocka_unit_test(test_fuzz_regressions),
    };
    return cmocka_run_group_tests(tests, NULL, cleanup);
}
