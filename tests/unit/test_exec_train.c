/* Training plans: gradients through whole models against finite differences,
 * accumulation over several consumers and repeated inputs, BatchNorm running
 * statistics, Dropout reproducibility and the error paths. */
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

static uint64_t rng(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static float uniform(uint64_t *s, float lo, float hi)
{
    return lo + (hi - lo) * (float)(rng(s) >> 40) / (float)(1 << 24);
}

static void fill(pare_tensor *t, uint64_t seed, float lo, float hi)
{
    for (int64_t i = 0; i < pare_tensor_numel(t); i++)
        pare_tensor_f32(t)[i] = uniform(&seed, lo, hi);
}

/* Every float initializer with more than one element. */
static int trainable_names(const pare_graph *g, const char **names, int cap)
{
    int n = 0;
    for (int v = 0; v < g->n_values && n < cap; v++)
        if (g->values[v].init && g->values[v].init->dtype == PARE_F32 &&
            pare_tensor_numel(g->values[v].init) > 1)
            names[n++] = g->values[v].name;
    return n;
}

/* L = sum(out * r): run forward, return L in double. */
static double loss_of(pare_exec *x, const pare_tensor *r)
{
    pare_error err = {0};
    const pare_tensor *out;
    double l = 0.0;

    assert_int_equal(pare_exec_run(x, &err), PARE_OK);
    out = pare_exec_output(x, 0);
    for (int64_t i = 0; i < pare_tensor_numel(out); i++)
        l += (double)pare_tensor_f32(out)[i] * (double)pare_tensor_f32(r)[i];
    return l;
}

/* Gradients of a real model's parameters against central differences, for a
 * few elements of every parameter tensor. BatchNorm uses batch statistics in
 * both directions (the plan stays in training mode); running statistics
 * change on every run but do not enter the training-mode forward. */
static void check_model_grads(const char *file, int batch, double tol)
{
    char path[1024];
    pare_graph *g = NULL;
    pare_exec *x = NULL;
    pare_error err = {0};
    const char *names[256];
    pare_exec_opts opts = {.batch = batch, .n_threads = 1, .training = true};
    pare_tensor *r;
    int out_v, n_params;
    double worst = 0.0;
    uint64_t s = 7;

    snprintf(path, sizeof path, "%s/%s", PARE_TEST_DATA, file);
    assert_int_equal(pare_graph_load(path, &g, &err), PARE_OK);
    n_params = trainable_names(g, names, 256);
    assert_true(n_params > 0);
    opts.params = names;
    opts.n_params = n_params;
    assert_int_equal(pare_exec_new(g, &opts, &x, &err), PARE_OK);
    assert_int_equal(pare_exec_n_params(x), n_params);
    fill(pare_exec_input(x, 0), 3, -1.5f, 1.5f);
    r = pare_tensor_new(PARE_F32, pare_exec_output(x, 0)->ndim, pare_exec_output(x, 0)->dims);
    fill(r, 11, -1.0f, 1.0f);
    loss_of(x, r);
    out_v = g->outputs[0];
    assert_int_equal(pare_exec_backward(x, &out_v, (const pare_tensor *const *)&r, 1, &err), PARE_OK);
    for (int p = 0; p < n_params; p++) {
        int v = pare_exec_param(x, p);
        pare_tensor *w = g->values[v].init;
        const pare_tensor *dw = pare_exec_grad(x, v);
        assert_non_null(dw);
        for (int k = 0; k < 3; k++) {
            int64_t i = (int64_t)(rng(&s) % (uint64_t)pare_tensor_numel(w));
            float keep = pare_tensor_f32(w)[i], h = 1e-2f * fmaxf(1.0f, fabsf(keep));
            double lp, lm, fd, an = pare_tensor_f32(dw)[i], e;
            pare_tensor_f32(w)[i] = keep + h;
            lp = loss_of(x, r);
            pare_tensor_f32(w)[i] = keep - h;
            lm = loss_of(x, r);
            pare_tensor_f32(w)[i] = keep;
            fd = (lp - lm) / (2.0 * (double)h);
            e = fabs(fd - an) / fmax(0.05, fmax(fabs(fd), fabs(an)));
            if (e > worst)
                worst = e;
            if (e > tol)
                fail_msg("%s: d/d %s[%lld]: backward %.6g, finite differences %.6g", file,
                         g->values[v].name, (long long)i, an, fd);
        }
    }
    printf("%s: %d parameters, worst relative gradient error %.2e\n", file, n_params, worst);
    pare_tensor_free(r);
    pare_exec_free(x);
    pare_graph_free(g);
}

static void test_tiny_vit_gradients(void **state)
{
    (void)state;
    check_model_grads("tiny_vit.onnx", 2, 2e-2);
}

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

static int add_node(pare_graph *g, const char *op, const int *in, int n_in, const char *out_name)
{
    pare_error err = {0};
    int out = pare_graph_add_value(g, out_name, &err);
    assert_true(out >= 0);
    assert_true(pare_graph_add_node(g, op, "", out_name, in, n_in, &out, 1, &err) >= 0);
    return out;
}

static int add_weight(pare_graph *g, const char *name, int ndim, const int64_t *dims, uint64_t seed)
{
    pare_error err = {0};
    pare_tensor *t = pare_tensor_new(PARE_F32, ndim, dims);
    int v;
    fill(t, seed, 0.5f, 1.5f);
    v = pare_graph_add_initializer(g, name, t, &err);
    assert_true(v >= 0);
    return v;
}

/* y = (x + p + p) * p, with p read three times by two nodes (twice by one):
 * dL/dp = r * (x + 4p) for L = sum(r * y). */
static void test_repeated_inputs_accumulate(void **state)
{
    pare_graph *g = pare_graph_new();
    pare_exec *x = NULL;
    pare_error err = {0};
    int64_t d = 5;
    const char *params[] = {"p"};
    pare_exec_opts opts = {.n_threads = 1, .training = true, .params = params, .n_params = 1};
    int xv, p, in2[2], a, b, y;
    pare_tensor *r = pare_tensor_new(PARE_F32, 1, &d);
    const pare_tensor *dp;
    (void)state;

    set_opset(g, 13);
    xv = add_input(g, "x", 1, &d);
    p = add_weight(g, "p", 1, &d, 1);
    in2[0] = p, in2[1] = p;
    a = add_node(g, "Add", in2, 2, "a");
    in2[0] = a, in2[1] = xv;
    b = add_node(g, "Add", in2, 2, "b");
    in2[0] = b, in2[1] = p;
    y = add_node(g, "Mul", in2, 2, "y");
    set_output(g, y);
    assert_int_equal(pare_graph_index(g, &err), PARE_OK);
    assert_int_equal(pare_exec_new(g, &opts, &x, &err), PARE_OK);
    fill(pare_exec_input(x, 0), 2, -1.0f, 1.0f);
    fill(r, 3, -1.0f, 1.0f);
    assert_int_equal(pare_exec_run(x, &err), PARE_OK);
    assert_int_equal(pare_exec_backward(x, &y, (const pare_tensor *const *)&r, 1, &err), PARE_OK);
    dp = pare_exec_grad(x, p);
    assert_non_null(dp);
    for (int i = 0; i < 5; i++) {
        float xi = pare_tensor_f32(pare_exec_input(x, 0))[i];
        float pi = pare_tensor_f32(g->values[p].init)[i];
        assert_float_equal(pare_tensor_f32(dp)[i], pare_tensor_f32(r)[i] * (xi + 4.0f * pi), 1e-5);
    }
    /* the input carries no gradient: nothing before it is trained */
    assert_null(pare_exec_grad(x, xv));
    /* the input has no gradient to seed */
    assert_int_equal(pare_exec_backward(x, &xv, (const pare_tensor *const *)&r, 1, &err), PARE_EINPUT);
    assert_string_equal(err.msg, "value 'x' carries no gradient: no trained parameter comes before it");
    /* a second backward overwrites, it does not add */
    assert_int_equal(pare_exec_backward(x, &y, (const pare_tensor *const *)&r, 1, &err), PARE_OK);
    assert_float_equal(pare_tensor_f32(pare_exec_grad(x, p))[0],
                       pare_tensor_f32(r)[0] * (pare_tensor_f32(pare_exec_input(x, 0))[0] +
                                                4.0f * pare_tensor_f32(g->values[p].init)[0]),
                       1e-5);
    pare_tensor_free(r);
    pare_exec_free(x);
    pare_graph_free(g);
}

/* Running statistics follow PyTorch: momentum 0.9 in ONNX terms, unbiased
 * batch variance; inference mode on the same plan uses them. */
static void test_batchnorm_updates_running_stats(void **state)
{
    pare_graph *g = pare_graph_new();
    pare_exec *x = NULL;
    pare_error err = {0};
    int64_t dx[4] = {4, 2, 3, 3}, dc = 2;
    const char *params[] = {"scale", "bias"};
    pare_exec_opts opts = {.n_threads = 1, .training = true, .params = params, .n_params = 2};
    int in[5], y, mean_v, var_v;
    float mean0[2], var0[2];
    (void)state;

    set_opset(g, 13);
    in[0] = add_input(g, "x", 4, dx);
    in[1] = add_weight(g, "scale", 1, &dc, 1);
    in[2] = add_weight(g, "bias", 1, &dc, 2);
    in[3] = mean_v = add_weight(g, "mean", 1, &dc, 3);
    in[4] = var_v = add_weight(g, "var", 1, &dc, 4);
    y = add_node(g, "BatchNormalization", in, 5, "y");
    set_output(g, y);
    assert_int_equal(pare_graph_index(g, &err), PARE_OK);
    memcpy(mean0, g->values[mean_v].init->data, sizeof mean0);
    memcpy(var0, g->values[var_v].init->data, sizeof var0);
    assert_int_equal(pare_exec_new(g, &opts, &x, &err), PARE_OK);
    fill(pare_exec_input(x, 0), 5, -2.0f, 3.0f);
    assert_int_equal(pare_exec_run(x, &err), PARE_OK);
    for (int c = 0; c < 2; c++) {
        const float *xs = pare_tensor_f32(pare_exec_input(x, 0));
        double s = 0.0, ss = 0.0, m, var;
        int cnt = 0;
        for (int n = 0; n < 4; n++)
            for (int i = 0; i < 9; i++, cnt++)
                s += xs[(n * 2 + c) * 9 + i];
        m = s / cnt;
        for (int n = 0; n < 4; n++)
            for (int i = 0; i < 9; i++)
                ss += (xs[(n * 2 + c) * 9 + i] - m) * (xs[(n * 2 + c) * 9 + i] - m);
        var = ss / (cnt - 1);
        assert_float_equal(pare_tensor_f32(g->values[mean_v].init)[c], 0.9 * mean0[c] + 0.1 * m, 1e-5);
        assert_float_equal(pare_tensor_f32(g->values[var_v].init)[c], 0.9 * var0[c] + 0.1 * var, 1e-5);
    }
    memcpy(mean0, g->values[mean_v].init->data, sizeof mean0);
    /* inference mode: statistics read, not written */
    pare_exec_set_training(x, false);
    assert_int_equal(pare_exec_run(x, &err), PARE_OK);
    assert_memory_equal(mean0, g->values[mean_v].init->data, sizeof mean0);
    pare_exec_free(x);
    pare_graph_free(g);
}

/* Same (seed, step) -> same mask; another step -> another mask; dropped
 * elements get no gradient. */
static void test_dropout_is_reproducible(void **state)
{
    pare_graph *g = pare_graph_new();
    pare_exec *x = NULL;
    pare_error err = {0};
    int64_t d = 256;
    const char *params[] = {"p"};
    pare_exec_opts opts = {.n_threads = 1, .training = true, .params = params, .n_params = 1,
                           .seed = 42};
    int in2[2], h, y, p;
    float first[256];
    pare_tensor *r = pare_tensor_new(PARE_F32, 1, &d);
    const pare_tensor *dp;
    int dropped = 0, differs = 0;
    (void)state;

    set_opset(g, 13);
    in2[0] = add_input(g, "x", 1, &d);
    in2[1] = p = add_weight(g, "p", 1, &d, 1);
    h = add_node(g, "Mul", in2, 2, "h");
    y = add_node(g, "Dropout", &h, 1, "y");
    set_output(g, y);
    assert_int_equal(pare_graph_index(g, &err), PARE_OK);
    assert_int_equal(pare_exec_new(g, &opts, &x, &err), PARE_OK);
    fill(pare_exec_input(x, 0), 5, 1.0f, 2.0f);
    for (int i = 0; i < 256; i++)
        pare_tensor_f32(r)[i] = 1.0f;
    pare_exec_set_step(x, 3);
    assert_int_equal(pare_exec_run(x, &err), PARE_OK);
    memcpy(first, pare_exec_output(x, 0)->data, sizeof first);
    assert_int_equal(pare_exec_run(x, &err), PARE_OK);
    assert_memory_equal(first, pare_exec_output(x, 0)->data, sizeof first);
    assert_int_equal(pare_exec_backward(x, &y, (const pare_tensor *const *)&r, 1, &err), PARE_OK);
    dp = pare_exec_grad(x, p);
    for (int i = 0; i < 256; i++) {
        if (first[i] == 0.0f) {
            dropped++;
            assert_true(pare_tensor_f32(dp)[i] == 0.0f);
        } else {
            assert_float_equal(pare_tensor_f32(dp)[i],
                               2.0f * pare_tensor_f32(pare_exec_input(x, 0))[i], 1e-5);
        }
    }
    assert_true(dropped > 80 && dropped < 176); /* ratio 0.5 */
    pare_exec_set_step(x, 4);
    assert_int_equal(pare_exec_run(x, &err), PARE_OK);
    for (int i = 0; i < 256; i++)
        differs += (first[i] == 0.0f) != (pare_tensor_f32(pare_exec_output(x, 0))[i] == 0.0f);
    assert_true(differs > 0);
    pare_tensor_free(r);
    pare_exec_free(x);
    pare_graph_free(g);
}

static void test_training_errors_name_the_problem(void **state)
{
    pare_graph *g = pare_graph_new();
    pare_exec *x = NULL;
    pare_error err = {0};
    int64_t d = 4;
    const char *bad_name[] = {"pp"};
    const char *not_init[] = {"x"};
    const char *params[] = {"p"};
    pare_exec_opts opts = {.n_threads = 1, .training = true, .n_params = 1};
    int in2[2], h, y, xv;
    pare_tensor *r = pare_tensor_new(PARE_F32, 1, &d);
    (void)state;

    set_opset(g, 13);
    in2[0] = xv = add_input(g, "x", 1, &d);
    in2[1] = add_weight(g, "p", 1, &d, 1);
    h = add_node(g, "Mul", in2, 2, "h");
    y = add_node(g, "Sin", &h, 1, "y");
    set_output(g, y);
    assert_int_equal(pare_graph_index(g, &err), PARE_OK);
    opts.params = bad_name;
    assert_int_equal(pare_exec_new(g, &opts, &x, &err), PARE_EINPUT);
    assert_string_equal(err.msg, "no value named 'pp' to train");
    assert_string_equal(err.hint, "did you mean 'p'?");
    opts.params = not_init;
    assert_int_equal(pare_exec_new(g, &opts, &x, &err), PARE_EINPUT);
    assert_non_null(strstr(err.msg, "'x' is not an initializer"));
    opts.params = params;
    assert_int_equal(pare_exec_new(g, &opts, &x, &err), PARE_EUNSUPPORTED);
    assert_non_null(strstr(err.where, "'y' (Sin)"));
    assert_string_equal(err.msg, "op 'Sin' has no backward: gradients cannot flow through it");
    pare_tensor_free(r);
    pare_graph_free(g);
    (void)xv;
    (void)y;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tiny_vit_gradients),
        cmocka_unit_test(test_repeated_inputs_accumulate),
        cmocka_unit_test(test_batchnorm_updates_running_stats),
        cmocka_unit_test(test_dropout_is_reproducible),
        cmocka_unit_test(test_training_errors_name_the_problem),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
