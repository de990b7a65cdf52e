/* The trainer: learning, determinism, checkpoint/resume equivalence, frozen
 * weights, re-initialisation, distillation pairs and adapters, extra trained
 * initializers (rate multiplier, decay, a scalar's gradient, resume), what
 * hooks are told, cancellation and the input errors, on the reference models
 * with small synthetic data. */
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
#include "pare/graph.h"
#include "pare/train.h"

static char tmpdir[64];

static uint64_t rng(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* n random 1x28x28 images; labels = a simple function of the image (the mean
 * brightness of the top half vs the bottom half, 2 classes spread over 10
 * labels by quadrant) so there is something to learn. */
static void write_data(const char *path, int n, bool labels)
{
    int64_t xd[4] = {n, 1, 28, 28}, yd[1] = {n};
    pare_tensor *x = pare_tensor_new(PARE_F32, 4, xd), *y = pare_tensor_new(PARE_I64, 1, yd);
    const char *names[2] = {"x", "y"};
    const pare_tensor *arrays[2] = {x, y};
    pare_error err = {0};
    uint64_t s = 7;

    for (int i = 0; i < n; i++) {
        int cls = (int)(rng(&s) % 10);
        float *img = pare_tensor_f32(x) + (int64_t)i * 784;
        for (int p = 0; p < 784; p++) {
            int r = p / 28, c = p % 28, quad = (r >= 14) * 2 + (c >= 14);
            float noise = (float)(rng(&s) >> 40) / (float)(1 << 24) - 0.5f;
            img[p] = noise + (quad == cls % 4 ? 1.5f : 0.0f) + (cls >= 4 ? 0.3f * (float)(cls - 4) : 0);
        }
        ((int64_t *)y->data)[i] = cls;
    }
    assert_int_equal(pare_npz_save(path, names, arrays, labels ? 2 : 1, &err), PARE_OK);
    pare_tensor_free(x);
    pare_tensor_free(y);
}

static pare_dataset *open_data(const char *file, int batch, bool shuffle)
{
    char spec[256];
    pare_data_opts o = {0};
    pare_dataset *ds = NULL;
    pare_error err = {0};

    snprintf(spec, sizeof spec, "npz:%s/%s", tmpdir, file);
    o.batch_size = batch;
    o.shuffle = shuffle;
    o.seed = 3;
    assert_int_equal(pare_dataset_open(spec, &o, &ds, &err), PARE_OK);
    return ds;
}

static pare_graph *load(const char *name)
{
    char path[512];
    pare_graph *g = NULL;
    pare_error err = {0};

    snprintf(path, sizeof path, "%s/%s", PARE_TEST_DATA, name);
    assert_int_equal(pare_graph_load(path, &g, &err), PARE_OK);
    return g;
}

static const pare_tensor *init_of(const pare_graph *g, const char *name)
{
    int v = pare_graph_find_value(g, name);
    assert_true(v >= 0);
    return g->values[v].init;
}

static bool same_weights(const pare_graph *a, const pare_graph *b)
{
    for (int v = 0; v < a->n_values; v++) {
        const pare_tensor *ta = a->values[v].init, *tb;
        if (!ta)
            continue;
        tb = init_of(b, a->values[v].name);
        if (pare_tensor_nbytes(ta) != pare_tensor_nbytes(tb) ||
            memcmp(ta->data, tb->data, pare_tensor_nbytes(ta)))
            return false;
    }
    return true;
}

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/pare-test-train-XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    {
        char p[128];
        snprintf(p, sizeof p, "%s/train.npz", tmpdir);
        write_data(p, 256, true);
        snprintf(p, sizeof p, "%s/unlabelled.npz", tmpdir);
        write_data(p, 64, false);
    }
    return 0;
}

static int teardown(void **state)
{
    char cmd[128];
    (void)state;
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Base options: 32-sample batches, Adam 3e-3, n steps. */
static void base_opts(pare_train_opts *o, pare_dataset *train, int64_t steps)
{
    pare_train_opts_init(o);
    o->train_data = train;
    o->iterations = steps;
    o->optim.lr = 3e-3;
    pare_schedule_init(&o->schedule, PARE_SCHED_CONSTANT, 3e-3);
    o->n_threads = 1;
    o->seed = 11;
}

static void test_learns_and_reports(void **state)
{
    pare_graph *g = load("lenet5.onnx"), *out = NULL;
    pare_dataset *train = open_data("train.npz", 32, true), *eval = open_data("train.npz", 32, false);
    pare_train_opts o;
    pare_train_result r;
    pare_error err = {0};
    (void)state;

    base_opts(&o, train, 40);
    o.eval_data = eval;
    o.eval_every = 20;
    o.reinit = true;
    assert_int_equal(pare_train(g, &o, &out, &r, &err), PARE_OK);
    assert_int_equal(r.steps, 40);
    assert_string_equal(r.metric_name, "top1");
    assert_true(r.first_loss > 2.0);              /* ~ln 10 from fresh weights */
    assert_true(r.last_loss < 0.5 * r.first_loss);
    assert_true(r.metric_best > 0.5);             /* far above chance (0.1) */
    assert_true(r.metric_best >= r.metric_first);
    assert_int_equal(r.n_params, 10);             /* 5 layers: weight + bias */
    assert_int_equal(r.n_param_values, 61706);
    assert_true(r.images_per_s > 0);
    /* the graph is the input's: same nodes, same value names */
    assert_int_equal(out->n_nodes, g->n_nodes);
    assert_false(same_weights(g, out));
    pare_graph_free(out);
    pare_graph_free(g);
    pare_dataset_free(train);
    pare_dataset_free(eval);
}

/* Same seed: identical weights. 5 steps + checkpoint + resume to 10 = 10 steps
 * in one go, bit for bit, with BatchNorm running statistics and Adam state. */
static void test_deterministic_and_resumable(void **state)
{
    pare_graph *g = load("resnet8_bn.onnx"), *a = NULL, *b = NULL, *half = NULL, *c = NULL;
    pare_dataset *train = open_data("train.npz", 16, true);
    pare_train_opts o;
    pare_error err = {0};
    char ck[128];
    (void)state;

    base_opts(&o, train, 10);
    o.keep_best = false;
    assert_int_equal(pare_train(g, &o, &a, NULL, &err), PARE_OK);
    assert_int_equal(pare_train(g, &o, &b, NULL, &err), PARE_OK);
    assert_true(same_weights(a, b));
    assert_false(same_weights(g, a));
    /* and with two threads (kernels split work in a fixed way) */
    {
        pare_graph *t2a = NULL, *t2b = NULL;
        o.n_threads = 2;
        assert_int_equal(pare_train(g, &o, &t2a, NULL, &err), PARE_OK);
        assert_int_equal(pare_train(g, &o, &t2b, NULL, &err), PARE_OK);
        assert_true(same_weights(t2a, t2b));
        o.n_threads = 1;
        pare_graph_free(t2a);
        pare_graph_free(t2b);
    }
    /* running statistics moved */
    assert_memory_not_equal(init_of(g, "layer1.bn1.running_mean")->data,
                            init_of(a, "layer1.bn1.running_mean")->data, 16 * sizeof(float));

    snprintf(ck, sizeof ck, "%s/ck", tmpdir);
    o.iterations = 5;
    o.checkpoint_dir = ck;
    assert_int_equal(pare_train(g, &o, &half, NULL, &err), PARE_OK);
    o.iterations = 10;
    o.checkpoint_dir = NULL;
    o.resume_dir = ck;
    assert_int_equal(pare_train(g, &o, &c, NULL, &err), PARE_OK);
    assert_true(same_weights(a, c));

    /* a checkpoint of another model is refused */
    {
        pare_graph *l = load("lenet5.onnx"), *x = NULL;
        pare_dataset *t2 = open_data("train.npz", 16, true);
        o.train_data = t2;
        assert_int_equal(pare_train(l, &o, &x, NULL, &err), PARE_EINPUT);
        assert_non_null(strstr(err.msg, "another model"));
        assert_null(x);
        pare_graph_free(l);
        pare_dataset_free(t2);
    }
    pare_graph_free(a);
    pare_graph_free(b);
    pare_graph_free(half);
    pare_graph_free(c);
    pare_graph_free(g);
    pare_dataset_free(train);
}

static void test_freeze(void **state)
{
    pare_graph *g = load("lenet5.onnx"), *out = NULL;
    pare_dataset *train = open_data("train.npz", 32, true);
    const char *freeze[] = {"conv*", "fc3.bias"};
    pare_train_opts o;
    pare_train_result r;
    pare_error err = {0};
    (void)state;

    base_opts(&o, train, 3);
    o.freeze = freeze;
    o.n_freeze = 2;
    assert_int_equal(pare_train(g, &o, &out, &r, &err), PARE_OK);
    assert_int_equal(r.n_params, 5);
    assert_memory_equal(init_of(g, "conv1.weight")->data, init_of(out, "conv1.weight")->data,
                        150 * sizeof(float));
    assert_memory_equal(init_of(g, "fc3.bias")->data, init_of(out, "fc3.bias")->data,
                        10 * sizeof(float));
    assert_memory_not_equal(init_of(g, "fc3.weight")->data, init_of(out, "fc3.weight")->data,
                            840 * sizeof(float));
    pare_graph_free(out);

    /* everything frozen: nothing to train */
    {
        const char *all[] = {"*"};
        o.freeze = all;
        o.n_freeze = 1;
        assert_int_equal(pare_train(g, &o, &out, NULL, &err), PARE_EINPUT);
        assert_non_null(strstr(err.msg, "frozen"));
    }
    pare_graph_free(g);
    pare_dataset_free(train);
}

/* keep_sparsity: zeros of the given weights survive every update */
static void test_keep_sparsity(void **state)
{
    pare_graph *g = load("lenet5.onnx"), *out = NULL;
    pare_dataset *train = open_data("train.npz", 32, true);
    pare_train_opts o;
    pare_error err = {0};
    float *w = pare_tensor_f32(init_of(g, "fc1.weight"));
    const float *after;
    int64_t n = pare_tensor_numel(init_of(g, "fc1.weight")), moved = 0;
    (void)state;

    for (int64_t i = 0; i < n; i += 2)
        w[i] = 0.0f;
    base_opts(&o, train, 5);
    o.keep_sparsity = true;
    assert_int_equal(pare_train(g, &o, &out, NULL, &err), PARE_OK);
    after = pare_tensor_f32(init_of(out, "fc1.weight"));
    for (int64_t i = 0; i < n; i++) {
        if (i % 2 == 0)
            assert_true(after[i] == 0.0f);
        else
            moved += after[i] != w[i];
    }
    assert_true(moved > n / 4);
    pare_graph_free(out);
    /* without it the zeros fill in */
    o.keep_sparsity = false;
    assert_int_equal(pare_train(g, &o, &out, NULL, &err), PARE_OK);
    after = pare_tensor_f32(init_of(out, "fc1.weight"));
    moved = 0;
    for (int64_t i = 0; i < n; i += 2)
        moved += after[i] != 0.0f;
    assert_true(moved > n / 4);
    pare_graph_free(out);
    pare_graph_free(g);
    pare_dataset_free(train);
}

static void test_param_selection_and_reinit(void **state)
{
    pare_graph *g = load("resnet8_bn.onnx");
    const char **names = NULL;
    int n = 0;
    pare_error err = {0};
    const pare_tensor *mean, *w;
    (void)state;

    assert_int_equal(pare_train_param_names(g, &names, &n, &err), PARE_OK);
    for (int i = 0; i < n; i++)
        assert_null(strstr(names[i], "running_")); /* statistics are not trained */
    /* 9 convs, 9 BN (scale, bias) and the Gemm (weight, bias); two BN biases are
       shared through Identity in this export, so 2 fewer initializers */
    assert_int_equal(n, 9 + 2 * 9 + 2 - 2);
    pare_free(names);

    assert_int_equal(pare_train_reinit(g, 5, &err), PARE_OK);
    mean = init_of(g, "layer1.bn1.running_mean");
    for (int i = 0; i < 16; i++)
        assert_true(pare_tensor_f32(mean)[i] == 0.0f);
    w = init_of(g, "fc.weight");
    for (int64_t i = 0; i < pare_tensor_numel(w); i++)
        assert_true(fabsf(pare_tensor_f32(w)[i]) <= 1.0f / 8.0f); /* 1/sqrt(64) */
    pare_graph_free(g);
}

/* Self-distillation on the logits starts at zero loss and keeps the outputs;
 * a teacher of another architecture teaches through an adapter. */
static void test_distill_pairs(void **state)
{
    pare_graph *s = load("lenet5.onnx"), *t = load("resnet8.onnx"), *out = NULL;
    pare_dataset *unl = open_data("unlabelled.npz", 32, true);
    pare_dataset *eval = open_data("unlabelled.npz", 32, false);
    pare_distill_pair pairs[2] = {
        {.teacher = "logits", .student = "logits", .loss = PARE_LOSS_SOFT_LABEL, .alpha = 1.0},
        {.teacher = "/stem/stem.2/Relu_output_0", .student = "/relu1/Relu_output_0",
         .loss = PARE_LOSS_L2, .alpha = 0.5},
    };
    pare_train_opts o;
    pare_train_result r;
    pare_error err = {0};
    (void)state;

    base_opts(&o, unl, 4);
    o.pairs = pairs;
    o.n_pairs = 1;
    o.eval_data = eval;
    assert_int_equal(pare_train(s, &o, &out, &r, &err), PARE_OK);
    assert_string_equal(r.metric_name, "cosine");
    assert_true(fabs(r.first_loss) < 1e-6);
    assert_true(r.metric_best > 0.999);
    pare_graph_free(out);

    /* different widths: refused without the adapter, trained with it */
    o.teacher = t;
    o.n_pairs = 2;
    assert_int_equal(pare_train(s, &o, &out, &r, &err), PARE_EINPUT);
    assert_non_null(strstr(err.msg, "but student value"));
    assert_non_null(strstr(err.hint, "adapter"));
    o.adapter = true;
    o.iterations = 12;
    assert_int_equal(pare_train(s, &o, &out, &r, &err), PARE_OK);
    assert_true(r.last_loss < r.first_loss);
    pare_graph_free(out);
    pare_graph_free(s);
    pare_graph_free(t);
    pare_dataset_free(unl);
    pare_dataset_free(eval);
}

static void test_input_errors(void **state)
{
    pare_graph *g = load("lenet5.onnx"), *out = NULL;
    pare_dataset *train = open_data("train.npz", 32, true), *unl = open_data("unlabelled.npz", 32, true);
    pare_distill_pair bad = {.teacher = "logits", .student = "logitz", .loss = PARE_LOSS_L2,
                             .alpha = 1.0};
    pare_train_opts o;
    pare_error err = {0};
    (void)state;

    base_opts(&o, train, 2);
    o.pairs = &bad;
    o.n_pairs = 1;
    assert_int_equal(pare_train(g, &o, &out, NULL, &err), PARE_EINPUT);
    assert_non_null(strstr(err.msg, "the student has no value named 'logitz'"));
    assert_non_null(strstr(err.hint, "did you mean 'logits'?"));

    base_opts(&o, unl, 2);
    assert_int_equal(pare_train(g, &o, &out, NULL, &err), PARE_EINPUT);
    assert_non_null(strstr(err.msg, "no labels and there is no teacher"));
    o.task_weight = 1.0;
    o.pairs = &bad;
    bad.student = "logits";
    o.n_pairs = 1;
    assert_int_equal(pare_train(g, &o, &out, NULL, &err), PARE_EINPUT);
    assert_non_null(strstr(err.msg, "no labels, so there is no task loss"));

    base_opts(&o, train, 0);
    o.epochs = 0;
    assert_int_equal(pare_train(g, &o, &out, NULL, &err), PARE_EINPUT);
    assert_null(out);
    pare_graph_free(g);
    pare_dataset_free(train);
    pare_dataset_free(unl);
}

static void test_nonfinite_stops(void **state)
{
    pare_graph *g = load("lenet5.onnx"), *out = NULL;
    pare_dataset *train = open_data("train.npz", 32, true);
    pare_train_opts o;
    pare_error err = {0};
    (void)state;

    base_opts(&o, train, 20);
    pare_optim_opts_init(&o.optim, PARE_OPTIM_SGD);
    pare_schedule_init(&o.schedule, PARE_SCHED_CONSTANT, 1e12);
    assert_int_equal(pare_train(g, &o, &out, NULL, &err), PARE_ENUMERIC);
    assert_non_null(strstr(err.msg, "is not finite at step"));
    assert_null(out);
    pare_graph_free(g);
    pare_dataset_free(train);
}

/* lenet5 with Clip(input, Neg(a), a) in front of conv1, a a scalar
 * initializer: PACT's shape (two consumers of a, one through Neg). */
static pare_graph *clipped_lenet(float a)
{
    pare_graph *g = load("lenet5.onnx");
    pare_error err = {0};
    pare_tensor *t = pare_tensor_new(PARE_F32, 0, NULL);
    int x = pare_graph_find_value(g, "input"), av, nv, cv, ins[3], clip;

    assert_non_null(t);
    pare_tensor_f32(t)[0] = a;
    av = pare_graph_add_initializer(g, "a", t, &err);
    nv = pare_graph_add_value(g, "minus_a", &err);
    cv = pare_graph_add_value(g, "input_clipped", &err);
    assert_true(x >= 0 && av >= 0 && nv >= 0 && cv >= 0);
    for (int n = 0; n < g->n_nodes; n++)
        for (int i = 0; i < g->nodes[n].n_inputs; i++)
            if (g->nodes[n].inputs[i] == x)
                g->nodes[n].inputs[i] = cv;
    assert_true(pare_graph_add_node(g, "Neg", "", "neg_a", &av, 1, &nv, 1, &err) >= 0);
    ins[0] = x, ins[1] = nv, ins[2] = av;
    clip = pare_graph_add_node(g, "Clip", "", "clip_input", ins, 3, &cv, 1, &err);
    assert_true(clip >= 0);
    assert_int_equal(pare_graph_index(g, &err), PARE_OK);
    return g;
}

static float scalar_of(const pare_graph *g, const char *name)
{
    return pare_tensor_f32(init_of(g, name))[0];
}

/* An extra's rate is the schedule's x lr_mult and its decay its own; the
 * other weights take exactly the step they take without extras. */
static void test_extra_rate_and_decay(void **state)
{
    pare_graph *g = load("lenet5.onnx"), *a = NULL, *b = NULL, *c = NULL;
    pare_dataset *train = open_data("train.npz", 32, true);
    pare_train_extra half = {.name = "fc3.bias", .lr_mult = 0.5, .weight_decay = 0};
    pare_train_extra decay = {.name = "fc3.bias", .lr_mult = 0, .weight_decay = 0.2};
    const float *b0 = pare_tensor_f32(init_of(g, "fc3.bias")), *ba, *bb, *bc;
    const double lr = 0.05;
    pare_train_opts o;
    pare_train_result r;
    pare_error err = {0};
    (void)state;

    base_opts(&o, train, 1);
    pare_optim_opts_init(&o.optim, PARE_OPTIM_SGD);
    pare_schedule_init(&o.schedule, PARE_SCHED_CONSTANT, lr);
    o.keep_best = false;
    assert_int_equal(pare_train(g, &o, &a, &r, &err), PARE_OK);
    assert_int_equal(r.n_params, 10);
    o.extra = &half;
    o.n_extra = 1;
    assert_int_equal(pare_train(g, &o, &b, &r, &err), PARE_OK);
    assert_int_equal(r.n_params, 10);   /* fc3.bias counted once, as an extra */
    assert_int_equal(r.n_param_values, 61706);
    o.extra = &decay;
    assert_int_equal(pare_train(g, &o, &c, &r, &err), PARE_OK);
    ba = pare_tensor_f32(init_of(a, "fc3.bias"));
    bb = pare_tensor_f32(init_of(b, "fc3.bias"));
    bc = pare_tensor_f32(init_of(c, "fc3.bias"));
    for (int i = 0; i < 10; i++) {
        assert_true(ba[i] != b0[i]);
        /* half the step; the step plus lr x decay x w */
        assert_float_equal(b0[i] - bb[i], 0.5 * (b0[i] - ba[i]), 1e-6);
        assert_float_equal(bc[i] - ba[i], -lr * 0.2 * b0[i], 1e-6);
    }
    /* every other weight as without extras, bit for bit */
    assert_memory_equal(init_of(a, "fc3.weight")->data, init_of(b, "fc3.weight")->data,
                        840 * sizeof(float));
    assert_memory_equal(init_of(a, "conv1.weight")->data, init_of(c, "conv1.weight")->data,
                        150 * sizeof(float));
    pare_graph_free(a);
    pare_graph_free(b);
    pare_graph_free(c);
    pare_graph_free(g);
    pare_dataset_free(train);
}

/* The first step's loss with clip value a (what the trainer reports). */
static double loss_at(float a, pare_dataset *train)
{
    pare_graph *g = clipped_lenet(a), *out = NULL;
    pare_train_extra e = {.name = "a", .lr_mult = 1, .weight_decay = 0};
    pare_train_opts o;
    pare_train_result r;
    pare_error err = {0};

    base_opts(&o, train, 1);
    o.extra = &e;
    o.n_extra = 1;
    assert_int_equal(pare_train(g, &o, &out, &r, &err), PARE_OK);
    pare_graph_free(out);
    pare_graph_free(g);
    return r.first_loss;
}

/* A scalar extra reached through Clip's max and, through Neg, its min: the
 * trainer's SGD step is -lr x the finite-difference slope of the loss. */
static void test_extra_scalar_gets_its_gradient(void **state)
{
    const float a0 = 0.8f, eps = 0.01f;
    const double lr = 1e-3;
    pare_graph *g = clipped_lenet(a0), *out = NULL;
    pare_dataset *train = open_data("train.npz", 32, true);
    pare_train_extra e = {.name = "a", .lr_mult = 1, .weight_decay = 0};
    pare_train_opts o;
    pare_train_result r;
    pare_error err = {0};
    double fd, step_grad;
    (void)state;

    base_opts(&o, train, 1);
    pare_optim_opts_init(&o.optim, PARE_OPTIM_SGD);
    pare_schedule_init(&o.schedule, PARE_SCHED_CONSTANT, lr);
    o.extra = &e;
    o.n_extra = 1;
    o.keep_best = false;
    assert_int_equal(pare_train(g, &o, &out, &r, &err), PARE_OK);
    assert_int_equal(r.n_params, 11);
    assert_int_equal(r.n_param_values, 61707);
    step_grad = ((double)a0 - scalar_of(out, "a")) / lr;
    fd = (loss_at(a0 + eps, train) - loss_at(a0 - eps, train)) / (2.0 * eps);
    assert_true(fabs(fd) > 1e-2);   /* the clip matters on this data */
    assert_float_equal(step_grad, fd, 0.05 * fabs(fd) + 1e-3);
    pare_graph_free(out);
    pare_graph_free(g);
    pare_dataset_free(train);
}

/* 5 steps + checkpoint + resume to 10 = 10 steps in one go, bit for bit,
 * with an extra in its own Adam state and gradients clipped over all. */
static void test_extra_resumable(void **state)
{
    pare_graph *g = clipped_lenet(0.8f), *a = NULL, *half = NULL, *c = NULL;
    pare_dataset *train = open_data("train.npz", 16, true);
    pare_train_extra e = {.name = "a", .lr_mult = 10, .weight_decay = 1e-4};
    pare_train_opts o;
    pare_error err = {0};
    char ck[128], ck0[128];
    (void)state;

    base_opts(&o, train, 10);
    o.keep_best = false;
    o.optim.grad_clip_norm = 0.5;
    o.extra = &e;
    o.n_extra = 1;
    assert_int_equal(pare_train(g, &o, &a, NULL, &err), PARE_OK);
    assert_true(scalar_of(a, "a") != 0.8f);
    snprintf(ck, sizeof ck, "%s/ck_extra", tmpdir);
    o.iterations = 5;
    o.checkpoint_dir = ck;
    assert_int_equal(pare_train(g, &o, &half, NULL, &err), PARE_OK);
    o.iterations = 10;
    o.checkpoint_dir = NULL;
    o.resume_dir = ck;
    assert_int_equal(pare_train(g, &o, &c, NULL, &err), PARE_OK);
    assert_true(same_weights(a, c));
    pare_graph_free(c);
    c = NULL;

    /* a checkpoint written without the extra has no state for it */
    snprintf(ck0, sizeof ck0, "%s/ck_no_extra", tmpdir);
    o.extra = NULL;
    o.n_extra = 0;
    o.iterations = 5;
    o.resume_dir = NULL;
    o.checkpoint_dir = ck0;
    assert_int_equal(pare_train(g, &o, &c, NULL, &err), PARE_OK);
    pare_graph_free(c);
    c = NULL;
    o.extra = &e;
    o.n_extra = 1;
    o.iterations = 10;
    o.checkpoint_dir = NULL;
    o.resume_dir = ck0;
    assert_int_equal(pare_train(g, &o, &c, NULL, &err), PARE_EINPUT);
    assert_non_null(strstr(err.msg, "optim.extra.0."));
    assert_null(c);
    pare_graph_free(a);
    pare_graph_free(half);
    pare_graph_free(g);
    pare_dataset_free(train);
}

static void test_extra_errors(void **state)
{
    pare_graph *g = load("lenet5.onnx"), *out = NULL;
    pare_dataset *train = open_data("train.npz", 32, true);
    pare_train_extra e[2] = {{.name = "fc3.bais", .lr_mult = 1}, {.name = "fc3.bias"}};
    pare_train_opts o;
    pare_error err = {0};
    int64_t two = 2;
    pare_tensor *shape = pare_tensor_new(PARE_I64, 1, &two);
    (void)state;

    base_opts(&o, train, 1);
    o.extra = e;
    o.n_extra = 1;
    assert_int_equal(pare_train(g, &o, &out, NULL, &err), PARE_EINPUT);
    assert_string_equal(err.where, "fc3.bais");
    assert_string_equal(err.msg, "extra parameter 'fc3.bais' is not an initializer of the model");
    assert_string_equal(err.hint, "did you mean 'fc3.bias'?");
    assert_null(out);

    e[0].name = "fc3.bias";
    o.n_extra = 2;
    assert_int_equal(pare_train(g, &o, &out, NULL, &err), PARE_EINPUT);
    assert_string_equal(err.msg, "extra parameter 'fc3.bias' is listed twice");

    o.n_extra = 1;
    e[0].lr_mult = -1;
    assert_int_equal(pare_train(g, &o, &out, NULL, &err), PARE_EINPUT);
    assert_string_equal(err.where, "fc3.bias");
    assert_non_null(strstr(err.msg, "lr_mult -1"));

    assert_non_null(shape);
    assert_true(pare_graph_add_initializer(g, "some_shape", shape, &err) >= 0);
    e[0].name = "some_shape";
    e[0].lr_mult = 1;
    assert_int_equal(pare_train(g, &o, &out, NULL, &err), PARE_EINPUT);
    assert_string_equal(err.msg, "extra parameter 'some_shape' has dtype 'int64'; only float32 "
                                 "tensors are trained");
    assert_null(out);
    pare_graph_free(g);
    pare_dataset_free(train);
}

/* Hooks are told the step, the rate the update uses, and (after it) the loss. */
typedef struct hook_log {
    int n_fwd, n_step;
    int64_t steps[8];
    double lr_fwd[8], lr_step[8], loss_fwd[8], loss_step[8];
} hook_log;

static bool log_forward(void *user, pare_exec *x, pare_graph *g, const pare_train_step_info *in)
{
    hook_log *l = user;
    (void)x;
    (void)g;
    l->lr_fwd[l->n_fwd] = in->lr;
    l->loss_fwd[l->n_fwd++] = in->loss;
    return true;
}

static bool log_step(void *user, pare_exec *x, pare_graph *g, const pare_train_step_info *in)
{
    hook_log *l = user;
    (void)x;
    (void)g;
    l->steps[l->n_step] = in->step;
    l->lr_step[l->n_step] = in->lr;
    l->loss_step[l->n_step++] = in->loss;
    return true;
}

static void test_hooks_get_step_and_rate(void **state)
{
    pare_graph *g = load("lenet5.onnx"), *out = NULL;
    pare_dataset *train = open_data("train.npz", 32, true);
    pare_train_opts o;
    pare_train_result r;
    pare_error err = {0};
    hook_log log;
    (void)state;

    memset(&log, 0, sizeof log);
    base_opts(&o, train, 6);
    pare_schedule_init(&o.schedule, PARE_SCHED_COSINE, 1e-2);
    o.schedule.total_steps = 6;
    o.schedule.warmup_steps = 2;
    o.schedule.warmup_start_lr = 1e-4;
    o.hooks.after_forward = log_forward;
    o.hooks.after_step = log_step;
    o.hooks.user = &log;
    assert_int_equal(pare_train(g, &o, &out, &r, &err), PARE_OK);
    assert_int_equal(log.n_fwd, 6);
    assert_int_equal(log.n_step, 6);
    for (int i = 0; i < 6; i++) {
        double want = pare_schedule_lr(&o.schedule, i);
        assert_int_equal(log.steps[i], i);
        assert_true(log.lr_fwd[i] == want && log.lr_step[i] == want);
        assert_true(isnan(log.loss_fwd[i]));
        assert_true(isfinite(log.loss_step[i]));
    }
    assert_true(log.lr_step[0] == 1e-4);
    assert_true(log.loss_step[5] == r.last_loss);
    pare_graph_free(out);
    pare_graph_free(g);
    pare_dataset_free(train);
}

static int cancel_at;
static bool cancel_report(void *user, const pare_progress_event *ev)
{
    (void)user;
    return !(ev->stage && !strcmp(ev->stage, "train") && ev->done >= cancel_at);
}

static void test_cancel_writes_checkpoint(void **state)
{
    pare_graph *g = load("lenet5.onnx"), *out = NULL, *ckm = NULL;
    pare_dataset *train = open_data("train.npz", 32, true);
    pare_progress prog = {.report = cancel_report};
    pare_train_opts o;
    pare_train_result r;
    pare_error err = {0};
    char ck[128], path[160];
    (void)state;

    snprintf(ck, sizeof ck, "%s/cancel", tmpdir);
    base_opts(&o, train, 50);
    o.progress = &prog;
    o.checkpoint_dir = ck;
    o.checkpoint_every = -1;
    cancel_at = 3;
    assert_int_equal(pare_train(g, &o, &out, &r, &err), PARE_ECANCELED);
    assert_null(out);
    assert_int_equal(r.steps, 3);
    assert_non_null(strstr(err.msg, "stopped at step 3"));
    snprintf(path, sizeof path, "%s/model.onnx", ck);
    assert_int_equal(pare_graph_load(path, &ckm, &err), PARE_OK);
    assert_false(same_weights(g, ckm));
    snprintf(path, sizeof path, "%s/state.npz", ck);
    assert_int_equal(access(path, R_OK), 0);
    pare_graph_free(ckm);
    pare_graph_free(g);
    pare_dataset_free(train);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_learns_and_reports),
        cmocka_unit_test(test_deterministic_and_resumable),
        cmocka_unit_test(test_freeze),
        cmocka_unit_test(test_keep_sparsity),
        cmocka_unit_test(test_param_selection_and_reinit),
        cmocka_unit_test(test_distill_pairs),
        cmocka_unit_test(test_input_errors),
        cmocka_unit_test(test_nonfinite_stops),
        cmocka_unit_test(test_cancel_writes_checkpoint),
        cmocka_unit_test(test_extra_rate_and_decay),
        cmocka_unit_test(test_extra_scalar_gets_its_gradient),
        cmocka_unit_test(test_extra_resumable),
        cmocka_unit_test(test_extra_errors),
        cmocka_unit_test(test_hooks_get_step_and_rate),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
