/* Pruning: dependency groups on the reference models, criteria, the physical
 * shrink (run in the executor), unstructured / N:M masks, GMP schedule,
 * and bad input with location and hint. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "pare/alloc.h"
#include "pare/data.h"
#include "pare/exec.h"
#include "pare/graph.h"
#include "pare/prune.h"

#define MODEL(name) PARE_TEST_DATA "/" name ".onnx"
#define SAMPLE PARE_TEST_DATA "/fmnist-sample"

static pare_graph *load(const char *path)
{
    pare_graph *g = NULL;
    pare_error err = {0};
    assert_int_equal(pare_graph_load(path, &g, &err), PARE_OK);
    return g;
}

static pare_prune_groups *groups_of(const pare_graph *g)
{
    pare_prune_groups *gs = NULL;
    pare_error err = {0};
    assert_int_equal(pare_prune_groups_find(g, &gs, &err), PARE_OK);
    return gs;
}

static bool has_producer(const pare_graph *g, const pare_prune_group *grp, const char *node)
{
    for (int p = 0; p < grp->n_producers; p++)
        if (strcmp(g->nodes[grp->producers[p]].name, node) == 0)
            return true;
    return false;
}

static const pare_prune_member *member(const pare_prune_group *grp, const char *tensor, int axis)
{
    for (int m = 0; m < grp->n_members; m++)
        if (strcmp(grp->members[m].tensor, tensor) == 0 && grp->members[m].axis == axis)
            return &grp->members[m];
    return NULL;
}

/* Runs g on the first n sample images; returns the logits (caller frees). */
static float *run_sample(const pare_graph *g, int n)
{
    pare_dataset *ds = NULL;
    pare_data_opts dopts = {.limit = n};
    pare_exec_opts opts = {.batch = n, .n_threads = 1};
    pare_exec *x = NULL;
    pare_error err = {0};
    float *out;
    const pare_tensor *y;

    assert_int_equal(pare_dataset_open("idx:" SAMPLE "/t10k-images-idx3-ubyte.gz," SAMPLE
                                       "/t10k-labels-idx1-ubyte.gz", &dopts, &ds, &err), PARE_OK);
    assert_int_equal(pare_exec_new(g, &opts, &x, &err), PARE_OK);
    assert_int_equal(pare_dataset_fill(ds, 0, n, pare_exec_input(x, 0), NULL, &err), PARE_OK);
    assert_int_equal(pare_exec_run(x, &err), PARE_OK);
    y = pare_exec_output(x, 0);
    assert_int_equal(y->ndim, 2);
    assert_int_equal(y->dims[0], n);
    assert_int_equal(y->dims[1], 10);
    out = pare_alloc((size_t)pare_tensor_numel(y) * sizeof *out);
    memcpy(out, y->data, (size_t)pare_tensor_numel(y) * sizeof *out);
    pare_exec_free(x);
    pare_dataset_free(ds);
    return out;
}

static const pare_tensor *init_of(const pare_graph *g, const char *name)
{
    int v = pare_graph_find_value(g, name);
    assert_true(v >= 0);
    assert_non_null(g->values[v].init);
    return g->values[v].init;
}

/* ---- groups ----------------------------------------------------------------- */

static void check_resnet_groups(const char *path, bool bn)
{
    pare_graph *g = load(path);
    pare_prune_groups *gs = groups_of(g);
    const pare_prune_group *grp;

    assert_int_equal(gs->n, 7);
    for (int i = 0; i < 6; i++)
        assert_true(gs->groups[i].prunable);
    /* stem output = stage-1 block output: identity shortcut ties them */
    grp = &gs->groups[0];
    assert_string_equal(grp->name, "/stem/stem.0/Conv_output_0");
    assert_int_equal(grp->channels, 16);
    assert_int_equal(grp->n_producers, 2);
    assert_true(has_producer(g, grp, "/stem/stem.0/Conv"));
    assert_true(has_producer(g, grp, "/layer1/conv2/Conv"));
    assert_int_equal(grp->n_consumers, 3); /* layer1.conv1, layer2.conv1, layer2 shortcut */
    if (bn) {
        assert_non_null(member(grp, "layer2.shortcut.0.weight", 1));
        assert_int_equal(member(grp, "stem.1.weight", 0)->role, PARE_MEMBER_NORM_SCALE);
    } else {
        assert_int_equal(grp->n_members, 7); /* 2 x (weight, bias) out, 3 x weight in */
    }
    /* stage 2 and 3: conv2 and the 1x1 shortcut conv are pruned together */
    for (int s = 3; s <= 5; s += 2) {
        grp = &gs->groups[s];
        assert_int_equal(grp->n_producers, 2);
        assert_true(has_producer(g, grp, s == 3 ? "/layer2/conv2/Conv" : "/layer3/conv2/Conv"));
        assert_true(has_producer(g, grp, s == 3 ? "/layer2/shortcut/shortcut.0/Conv"
                                                : "/layer3/shortcut/shortcut.0/Conv"));
    }
    assert_int_equal(gs->groups[3].channels, 32);
    assert_int_equal(gs->groups[5].channels, 64);
    /* GlobalAveragePool -> Flatten -> Gemm: one feature per channel */
    for (int m = 0; m < gs->groups[5].n_members; m++)
        if (gs->groups[5].members[m].role == PARE_MEMBER_IN) {
            assert_int_equal(gs->groups[5].members[m].block, 1);
            assert_int_equal(gs->groups[5].members[m].axis, 1);
        }
    if (bn) {
        /* the BN bias shared through an Identity node is one member, sliced once */
        int n_bias = 0;
        for (int m = 0; m < gs->groups[3].n_members; m++)
            n_bias += strstr(gs->groups[3].members[m].tensor, "bias") != NULL;
        assert_int_equal(n_bias, 1);
    }
    assert_false(gs->groups[6].prunable);
    assert_string_equal(gs->groups[6].reason, "reaches model output 'logits'");
    pare_prune_groups_free(gs);
    pare_graph_free(g);
}

static void test_groups_resnet8(void **state)
{
    (void)state;
    check_resnet_groups(MODEL("resnet8"), false);
}

static void test_groups_resnet8_bn(void **state)
{
    (void)state;
    check_resnet_groups(MODEL("resnet8_bn"), true);
}

static void test_groups_lenet5_flatten_gemm(void **state)
{
    pare_graph *g = load(MODEL("lenet5"));
    pare_prune_groups *gs = groups_of(g);
    const pare_prune_member *m;
    (void)state;
    assert_int_equal(gs->n, 5);
    assert_int_equal(gs->groups[1].channels, 16);
    /* conv2's 16 channels reach fc1 through Flatten: 5x5 features each */
    m = member(&gs->groups[1], "fc1.weight", 1);
    assert_non_null(m);
    assert_int_equal(m->block, 25);
    assert_int_equal(m->role, PARE_MEMBER_IN);
    assert_int_equal(gs->groups[2].channels, 120);
    assert_non_null(member(&gs->groups[2], "fc1.bias", 0));
    assert_non_null(member(&gs->groups[2], "fc2.weight", 1));
    assert_false(gs->groups[4].prunable);
    pare_prune_groups_free(gs);
    pare_graph_free(g);
}

static void test_groups_tiny_vit_ffn(void **state)
{
    pare_graph *g = load(MODEL("tiny_vit"));
    pare_prune_groups *gs = groups_of(g);
    int ffn = 0;
    (void)state;
    for (int i = 0; i < gs->n; i++) {
        if (strstr(gs->groups[i].name, "fc1/MatMul")) {
            assert_true(gs->groups[i].prunable);
            assert_int_equal(gs->groups[i].channels, 128);
            ffn++;
        }
        if (strstr(gs->groups[i].name, "embed")) {
            assert_false(gs->groups[i].prunable); /* LayerNorm reduces over the stream */
            assert_non_null(strstr(gs->groups[i].reason, "ReduceMean"));
        }
    }
    assert_int_equal(ffn, 2);
    pare_prune_groups_free(gs);
    pare_graph_free(g);
}

/* ---- shrink -------------------------------------------------------------------- */

static void test_shrink_runs_with_right_shapes(void **state)
{
    pare_graph *g = load(MODEL("resnet8_bn")), *p = NULL;
    pare_prune_groups *gs = groups_of(g);
    double ratios[7] = {0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0};
    pare_prune_result res;
    pare_error err = {0};
    float *y;
    (void)state;
    assert_int_equal(pare_prune_apply(g, gs, ratios, NULL, &p, &res, &err), PARE_OK);
    assert_int_equal(init_of(p, "stem.0.weight")->dims[0], 8);
    assert_int_equal(init_of(p, "layer1.conv1.weight")->dims[0], 8);
    assert_int_equal(init_of(p, "layer1.conv1.weight")->dims[1], 8);
    assert_int_equal(init_of(p, "layer2.shortcut.0.weight")->dims[0], 16);
    assert_int_equal(init_of(p, "layer2.shortcut.0.weight")->dims[1], 8);
    assert_int_equal(init_of(p, "layer3.bn2.running_var")->dims[0], 32);
    assert_int_equal(init_of(p, "fc.weight")->dims[1], 32);
    assert_int_equal(init_of(p, "fc.weight")->dims[0], 10);
    assert_int_equal(res.channels_removed, 8 + 8 + 16 + 16 + 32 + 32);
    assert_true(res.params_after < res.params_before / 2 + 1000);
    assert_true(res.flops_after < 0.35 * res.flops_before);
    y = run_sample(p, 4);
    pare_free(y);
    /* round_to 8: every kept count is a multiple of 8 (16 -> 16, 32 -> 24, 64 -> 48) */
    {
        double r3[7] = {0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0};
        pare_graph *q = NULL;
        assert_int_equal(pare_prune_apply(g, gs, r3, &(pare_prune_opts){.round_to = 8}, &q, NULL, &err),
                         PARE_OK);
        assert_int_equal(init_of(q, "stem.0.weight")->dims[0], 16);
        assert_int_equal(init_of(q, "layer2.conv1.weight")->dims[0], 24);
        assert_int_equal(init_of(q, "layer3.conv1.weight")->dims[0], 48);
        assert_int_equal(init_of(q, "fc.weight")->dims[1], 48);
        y = run_sample(q, 2);
        pare_free(y);
        pare_graph_free(q);
    }
    /* it also survives a save/load round trip */
    {
        uint8_t *buf = NULL;
        size_t len = 0;
        pare_graph *q = NULL;
        assert_int_equal(pare_graph_save_buffer(p, &buf, &len, &err), PARE_OK);
        assert_int_equal(pare_graph_load_buffer(buf, len, "pruned", &q, &err), PARE_OK);
        pare_free(buf);
        pare_graph_free(q);
    }
    pare_graph_free(p);
    pare_prune_groups_free(gs);
    pare_graph_free(g);
}

static void test_zero_ratio_is_noop(void **state)
{
    pare_graph *g = load(MODEL("resnet8_bn")), *p = NULL;
    pare_prune_groups *gs = groups_of(g);
    double ratios[7] = {0};
    pare_error err = {0};
    float *a, *b;
    (void)state;
    assert_int_equal(pare_prune_apply(g, gs, ratios, NULL, &p, NULL, &err), PARE_OK);
    assert_int_equal(pare_graph_param_count(p), pare_graph_param_count(g));
    a = run_sample(g, 8);
    b = run_sample(p, 8);
    assert_memory_equal(a, b, 80 * sizeof(float));
    pare_free(a);
    pare_free(b);
    pare_graph_free(p);
    pare_prune_groups_free(gs);
    pare_graph_free(g);
}

/* Zeroes channel c of a group in every producer's weight and bias, so the
 * channel carries exactly 0 through ReLU (BN folded into the convs). */
static void zero_channel(pare_graph *g, const pare_prune_group *grp, int64_t c)
{
    for (int m = 0; m < grp->n_members; m++) {
        const pare_prune_member *pm = &grp->members[m];
        pare_tensor *t;
        int64_t outer = 1, inner = 1, d;
        if (pm->role != PARE_MEMBER_OUT)
            continue;
        t = g->values[pare_graph_find_value(g, pm->tensor)].init;
        for (int k = 0; k < pm->axis; k++)
            outer *= t->dims[k];
        for (int k = pm->axis + 1; k < t->ndim; k++)
            inner *= t->dims[k];
        d = t->dims[pm->axis];
        for (int64_t o = 0; o < outer; o++)
            for (int64_t i = 0; i < inner; i++)
                pare_tensor_f32(t)[(o * d + (c - pm->offset)) * inner + i] = 0.0f;
    }
}

static void check_zeroed_channels_prune_exactly(const char *path, int n_groups)
{
    pare_graph *g = load(path), *p = NULL;
    pare_prune_groups *gs = groups_of(g);
    double ratios[8] = {0};
    pare_error err = {0};
    float *a, *b;

    assert_true(gs->n == n_groups);
    for (int i = 0; i < gs->n; i++) {
        const pare_prune_group *grp = &gs->groups[i];
        int64_t k = 0;
        if (!grp->prunable)
            continue;
        /* every fourth channel, starting at 1: a quarter of the group */
        for (int64_t c = 1; c < grp->channels; c += 4, k++)
            zero_channel(g, grp, c);
        ratios[i] = (double)k / (double)grp->channels;
    }
    assert_int_equal(pare_prune_apply(g, gs, ratios, NULL, &p, NULL, &err), PARE_OK);
    a = run_sample(g, 16);
    b = run_sample(p, 16);
    for (int i = 0; i < 160; i++)
        assert_float_equal(a[i], b[i], 1e-4f * (1.0f + fabsf(a[i])));
    assert_true(pare_graph_param_count(p) < pare_graph_param_count(g) * 0.8);
    pare_free(a);
    pare_free(b);
    pare_graph_free(p);
    pare_prune_groups_free(gs);
    pare_graph_free(g);
}

static void test_zeroed_channels_prune_exactly_resnet8(void **state)
{
    (void)state;
    check_zeroed_channels_prune_exactly(MODEL("resnet8"), 7);
}

static void test_zeroed_channels_prune_exactly_lenet5(void **state)
{
    (void)state;
    check_zeroed_channels_prune_exactly(MODEL("lenet5"), 5);
}

/* ---- criteria on a hand-made graph ------------------------------------------ */

static int add_init(pare_graph *g, const char *name, int ndim, const int64_t *dims, const float *v)
{
    pare_error err = {0};
    pare_tensor *t = pare_tensor_new(PARE_F32, ndim, dims);
    int idx;
    memcpy(t->data, v, (size_t)pare_tensor_numel(t) * sizeof(float));
    idx = pare_graph_add_initializer(g, name, t, &err);
    assert_true(idx >= 0);
    return idx;
}

/* x[1,2,2,2] -> Conv(W1 3x2x1x1) -> BN -> Relu -> Conv(W2 1x3x1x1) -> y */
static pare_graph *tiny_graph(void)
{
    pare_graph *g = pare_graph_new();
    pare_error err = {0};
    int64_t xd[4] = {1, 2, 2, 2}, w1d[4] = {3, 2, 1, 1}, w2d[4] = {1, 3, 1, 1}, cd[1] = {3};
    /* filters: c0 = (1, -1) l1 2, c1 = (3, 0) l1 3, c2 = (0.5, 0.5) l1 1 */
    const float w1[6] = {1, -1, 3, 0, 0.5f, 0.5f}, w2[3] = {1, 1, 1};
    const float gamma[3] = {0.2f, -2.0f, 1.0f}, beta[3] = {0, 0, 0}, mean[3] = {0, 0, 0},
                var[3] = {1, 1, 1};
    int x, ins[5], outs[1], h, b, r, y;

    g->opsets = pare_calloc(1, sizeof *g->opsets);
    g->opsets[0].domain = pare_strdup("");
    g->opsets[0].version = 13;
    g->n_opsets = 1;
    x = pare_graph_add_value(g, "x", &err);
    g->values[x].is_input = true;
    g->values[x].dtype = PARE_F32;
    g->values[x].ndim = 4;
    memcpy(g->values[x].dims, xd, sizeof xd);
    g->inputs = pare_alloc(sizeof(int));
    g->inputs[0] = x;
    g->n_inputs = 1;
    ins[0] = x;
    ins[1] = add_init(g, "w1", 4, w1d, w1);
    outs[0] = h = pare_graph_add_value(g, "h", &err);
    assert_true(pare_graph_add_node(g, "Conv", "", "conv1", ins, 2, outs, 1, &err) >= 0);
    ins[0] = h;
    ins[1] = add_init(g, "gamma", 1, cd, gamma);
    ins[2] = add_init(g, "beta", 1, cd, beta);
    ins[3] = add_init(g, "mean", 1, cd, mean);
    ins[4] = add_init(g, "var", 1, cd, var);
    outs[0] = b = pare_graph_add_value(g, "b", &err);
    assert_true(pare_graph_add_node(g, "BatchNormalization", "", "bn", ins, 5, outs, 1, &err) >= 0);
    ins[0] = b;
    outs[0] = r = pare_graph_add_value(g, "r", &err);
    assert_true(pare_graph_add_node(g, "Relu", "", "relu", ins, 1, outs, 1, &err) >= 0);
    ins[0] = r;
    ins[1] = add_init(g, "w2", 4, w2d, w2);
    outs[0] = y = pare_graph_add_value(g, "y", &err);
    assert_true(pare_graph_add_node(g, "Conv", "", "conv2", ins, 2, outs, 1, &err) >= 0);
    g->values[y].is_output = true;
    g->outputs = pare_alloc(sizeof(int));
    g->outputs[0] = y;
    g->n_outputs = 1;
    assert_int_equal(pare_graph_index(g, &err), PARE_OK);
    return g;
}

static void test_criteria_on_hand_made_tensor(void **state)
{
    pare_graph *g = tiny_graph();
    pare_prune_groups *gs = groups_of(g);
    const pare_prune_group *grp;
    pare_error err = {0};
    double s[3], s2[3];
    bool keep[3];
    (void)state;
    assert_int_equal(gs->n, 2);
    grp = &gs->groups[0];
    assert_true(grp->prunable);
    assert_int_equal(grp->channels, 3);
    assert_int_equal(pare_prune_score(g, grp, "l1_norm", 0, s, &err), PARE_OK);
    assert_float_equal(s[0], 2.0, 1e-9);
    assert_float_equal(s[1], 3.0, 1e-9);
    assert_float_equal(s[2], 1.0, 1e-9);
    assert_int_equal(pare_prune_score(g, grp, "l2_norm", 0, s, &err), PARE_OK);
    assert_float_equal(s[0], sqrt(2.0), 1e-9);
    assert_float_equal(s[1], 3.0, 1e-9);
    assert_float_equal(s[2], sqrt(0.5), 1e-9);
    /* FPGM: d01 = |(-2,-1)| = sqrt5, d02 = |(0.5,-1.5)| = sqrt2.5, d12 = |(2.5,-0.5)| = sqrt6.5 */
    assert_int_equal(pare_prune_score(g, grp, "geometry_median", 0, s, &err), PARE_OK);
    assert_float_equal(s[0], sqrt(5.0) + sqrt(2.5), 1e-9);
    assert_float_equal(s[1], sqrt(5.0) + sqrt(6.5), 1e-9);
    assert_float_equal(s[2], sqrt(2.5) + sqrt(6.5), 1e-9);
    assert_int_equal(pare_prune_score(g, grp, "bn_scale", 0, s, &err), PARE_OK);
    assert_float_equal(s[0], 0.2, 1e-6);
    assert_float_equal(s[1], 2.0, 1e-6);
    assert_float_equal(s[2], 1.0, 1e-6);
    assert_int_equal(pare_prune_score(g, grp, "random", 7, s, &err), PARE_OK);
    assert_int_equal(pare_prune_score(g, grp, "random", 7, s2, &err), PARE_OK);
    assert_memory_equal(s, s2, sizeof s);
    for (int i = 0; i < 3; i++)
        assert_true(s[i] >= 0 && s[i] < 1);
    assert_int_equal(pare_prune_score(g, grp, "random", 8, s2, &err), PARE_OK);
    assert_memory_not_equal(s, s2, sizeof s);
    /* one third by l1 drops channel 2; by bn_scale channel 0 */
    assert_int_equal(pare_prune_keep_mask(g, grp, 1.0 / 3, &(pare_prune_opts){.criterion = "l1_norm"}, keep, &err), PARE_OK);
    assert_true(keep[0] && keep[1] && !keep[2]);
    assert_int_equal(pare_prune_keep_mask(g, grp, 1.0 / 3, &(pare_prune_opts){.criterion = "bn_scale"}, keep, &err), PARE_OK);
    assert_true(!keep[0] && keep[1] && keep[2]);
    /* rounding: 2 kept of 3 round up to 4, capped at 3: nothing goes */
    assert_int_equal(pare_prune_keep_mask(g, grp, 1.0 / 3, &(pare_prune_opts){.round_to = 4}, keep, &err),
                     PARE_OK);
    assert_true(keep[0] && keep[1] && keep[2]);
    /* 0.99 keeps one channel at least */
    assert_int_equal(pare_prune_keep_mask(g, grp, 0.99, NULL, keep, &err), PARE_OK);
    assert_true(!keep[0] && keep[1] && !keep[2]);
    pare_prune_groups_free(gs);
    pare_graph_free(g);
}

static pare_status crit_reverse_index(const pare_graph *g, const pare_prune_group *grp, uint64_t seed,
                                      double *scores, void *user, pare_error *err)
{
    (void)g;
    (void)seed;
    (void)err;
    *(int *)user += 1;
    for (int64_t c = 0; c < grp->channels; c++)
        scores[c] = (double)(grp->channels - c);
    return PARE_OK;
}

static void test_registered_criterion(void **state)
{
    pare_graph *g = tiny_graph();
    pare_prune_groups *gs = groups_of(g);
    pare_error err = {0};
    static int calls;
    bool keep[3];
    (void)state;
    assert_int_equal(pare_prune_criterion_register("test_reverse", crit_reverse_index, &calls,
                                                   "test", &err), PARE_OK);
    assert_int_equal(pare_prune_criterion_register("test_reverse", crit_reverse_index, &calls,
                                                   "test", &err), PARE_EINPUT);
    assert_int_equal(pare_prune_keep_mask(g, &gs->groups[0], 0.34, &(pare_prune_opts){.criterion = "test_reverse"}, keep, &err),
                     PARE_OK);
    assert_int_equal(calls, 1);
    assert_true(keep[0] && keep[1] && !keep[2]);
    pare_prune_groups_free(gs);
    pare_graph_free(g);
}

/* ---- Concat and depthwise on hand-made graphs ------------------------------------ */

typedef struct builder {
    pare_graph *g;
    int n_init;
    uint64_t seed;
} builder;

static float rnd(builder *b)
{
    b->seed = b->seed * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((double)(b->seed >> 40) / (double)(1ull << 24)) - 0.5f;
}

static builder builder_new(int64_t c, int64_t hw)
{
    builder b = {pare_graph_new(), 0, 42};
    pare_error err = {0};
    int64_t xd[4] = {-1, c, hw, hw};
    int x;
    b.g->opsets = pare_calloc(1, sizeof *b.g->opsets);
    b.g->opsets[0].domain = pare_strdup("");
    b.g->opsets[0].version = 13;
    b.g->n_opsets = 1;
    x = pare_graph_add_value(b.g, "input", &err);
    b.g->values[x].is_input = true;
    b.g->values[x].dtype = PARE_F32;
    b.g->values[x].ndim = 4;
    memcpy(b.g->values[x].dims, xd, sizeof xd);
    b.g->values[x].dim_names[0] = pare_strdup("batch");
    b.g->inputs = pare_alloc(sizeof(int));
    b.g->inputs[0] = x;
    b.g->n_inputs = 1;
    return b;
}

/* Conv 3x3 pad 1 with bias: in -> out channels (group g) */
static int conv(builder *b, const char *name, int in, int64_t cin, int64_t cout, int64_t group)
{
    pare_error err = {0};
    int64_t wd[4] = {cout, cin / group, 3, 3}, bd[1] = {cout};
    float w[4096], bias[64];
    char wn[64], bn[64];
    int ins[3], out;
    pare_attr pads = {.name = "pads", .type = PARE_ATTR_INTS, .n = 4}, ga = {.name = "group",
                                                                            .type = PARE_ATTR_INT};
    int64_t pv[4] = {1, 1, 1, 1};
    for (int64_t i = 0; i < cout * (cin / group) * 9; i++)
        w[i] = rnd(b);
    for (int64_t i = 0; i < cout; i++)
        bias[i] = rnd(b);
    snprintf(wn, sizeof wn, "%s.w", name);
    snprintf(bn, sizeof bn, "%s.b", name);
    ins[0] = in;
    ins[1] = add_init(b->g, wn, 4, wd, w);
    ins[2] = add_init(b->g, bn, 1, bd, bias);
    out = pare_graph_add_value(b->g, name, &err);
    assert_true(pare_graph_add_node(b->g, "Conv", "", name, ins, 3, &out, 1, &err) >= 0);
    pads.ints = pv;
    ga.i = group;
    assert_int_equal(pare_node_add_attr(&b->g->nodes[b->g->n_nodes - 1], &pads, &err), PARE_OK);
    assert_int_equal(pare_node_add_attr(&b->g->nodes[b->g->n_nodes - 1], &ga, &err), PARE_OK);
    return out;
}

static int op(builder *b, const char *type, const char *name, const int *ins, int n)
{
    pare_error err = {0};
    int out = pare_graph_add_value(b->g, name, &err);
    assert_true(pare_graph_add_node(b->g, type, "", name, ins, n, &out, 1, &err) >= 0);
    return out;
}

static pare_graph *builder_done(builder *b, int y)
{
    pare_error err = {0};
    b->g->values[y].is_output = true;
    b->g->outputs = pare_alloc(sizeof(int));
    b->g->outputs[0] = y;
    b->g->n_outputs = 1;
    assert_int_equal(pare_graph_index(b->g, &err), PARE_OK);
    return b->g;
}

static float *run_random(const pare_graph *g, int64_t numel_per_sample, int n)
{
    pare_exec_opts opts = {.batch = n, .n_threads = 1};
    pare_exec *x = NULL;
    pare_error err = {0};
    builder r = {NULL, 0, 7};
    float *out;
    const pare_tensor *y;
    assert_int_equal(pare_exec_new(g, &opts, &x, &err), PARE_OK);
    for (int64_t i = 0; i < numel_per_sample * n; i++)
        pare_tensor_f32(pare_exec_input(x, 0))[i] = rnd(&r);
    assert_int_equal(pare_exec_run(x, &err), PARE_OK);
    y = pare_exec_output(x, 0);
    out = pare_alloc((size_t)pare_tensor_numel(y) * sizeof *out);
    memcpy(out, y->data, (size_t)pare_tensor_numel(y) * sizeof *out);
    pare_exec_free(x);
    return out;
}

static void test_concat_offsets(void **state)
{
    /* input(1) -> A (2 ch) and B (3 ch) -> Concat (5) -> Relu -> C (1 ch) */
    builder b = builder_new(1, 4);
    int a, bb, cat, r, y, ins[2];
    pare_graph *g, *p = NULL;
    pare_prune_groups *gs;
    pare_error err = {0};
    double ratios[4] = {0};
    bool keep[5] = {true, false, true, false, true};
    const bool *keeps[4] = {NULL, NULL, NULL, NULL};
    float *o1, *o2;
    int gi = -1;
    (void)state;
    a = conv(&b, "A", 0, 1, 2, 1);
    bb = conv(&b, "B", 0, 1, 3, 1);
    ins[0] = a;
    ins[1] = bb;
    cat = op(&b, "Concat", "cat", ins, 2);
    {
        pare_attr ax = {.name = "axis", .type = PARE_ATTR_INT, .i = 1};
        assert_int_equal(pare_node_add_attr(&b.g->nodes[b.g->n_nodes - 1], &ax, &err), PARE_OK);
    }
    r = op(&b, "Relu", "relu", &cat, 1);
    y = conv(&b, "C", r, 5, 1, 1);
    g = builder_done(&b, y);
    gs = groups_of(g);
    for (int i = 0; i < gs->n; i++)
        if (gs->groups[i].channels == 5)
            gi = i;
    assert_true(gi >= 0);
    assert_true(gs->groups[gi].prunable);
    assert_int_equal(gs->groups[gi].n_producers, 2);
    assert_int_equal(member(&gs->groups[gi], "A.w", 0)->offset, 0);
    assert_int_equal(member(&gs->groups[gi], "A.w", 0)->count, 2);
    assert_int_equal(member(&gs->groups[gi], "B.w", 0)->offset, 2);
    assert_int_equal(member(&gs->groups[gi], "B.b", 0)->count, 3);
    assert_int_equal(member(&gs->groups[gi], "C.w", 1)->count, 5);
    /* channels 1 and 3 (A's second, B's second) go */
    keeps[gi] = keep;
    assert_int_equal(pare_prune_apply_masks(g, gs, keeps, &p, &err), PARE_OK);
    assert_int_equal(init_of(p, "A.w")->dims[0], 1);
    assert_int_equal(init_of(p, "B.w")->dims[0], 2);
    assert_int_equal(init_of(p, "C.w")->dims[1], 3);
    /* and with those channels' filters zeroed first, the outputs match */
    {
        pare_graph *z = NULL;
        pare_tensor *aw, *bw, *ab, *bbias;
        assert_int_equal(pare_graph_clone(g, &z, &err), PARE_OK);
        aw = z->values[pare_graph_find_value(z, "A.w")].init;
        ab = z->values[pare_graph_find_value(z, "A.b")].init;
        bw = z->values[pare_graph_find_value(z, "B.w")].init;
        bbias = z->values[pare_graph_find_value(z, "B.b")].init;
        memset(pare_tensor_f32(aw) + 9, 0, 9 * sizeof(float));
        pare_tensor_f32(ab)[1] = 0;
        memset(pare_tensor_f32(bw) + 9, 0, 9 * sizeof(float));
        pare_tensor_f32(bbias)[1] = 0;
        o1 = run_random(z, 16, 3);
        o2 = run_random(p, 16, 3);
        for (int i = 0; i < 48; i++)
            assert_float_equal(o1[i], o2[i], 1e-5);
        pare_free(o1);
        pare_free(o2);
        pare_graph_free(z);
    }
    ratios[gi] = 0.4;
    pare_graph_free(p);
    assert_int_equal(pare_prune_apply(g, gs, ratios, NULL, &p, NULL, &err), PARE_OK);
    assert_int_equal(init_of(p, "C.w")->dims[1], 3);
    pare_graph_free(p);
    pare_prune_groups_free(gs);
    pare_graph_free(g);
}

static void test_depthwise_follows_its_input(void **state)
{
    /* input(1) -> A (4 ch) -> Relu -> depthwise D (group 4) -> Relu -> C (2 ch) */
    builder b = builder_new(1, 5);
    int a, r1, d, r2, y;
    pare_graph *g, *p = NULL;
    pare_prune_groups *gs;
    pare_error err = {0};
    double ratios[2] = {0.5, 0};
    float *o;
    (void)state;
    a = conv(&b, "A", 0, 1, 4, 1);
    r1 = op(&b, "Relu", "r1", &a, 1);
    d = conv(&b, "D", r1, 4, 4, 4);
    r2 = op(&b, "Relu", "r2", &d, 1);
    y = conv(&b, "C", r2, 4, 2, 1);
    g = builder_done(&b, y);
    gs = groups_of(g);
    assert_int_equal(gs->n, 2);
    assert_true(gs->groups[0].prunable);
    assert_int_equal(gs->groups[0].n_depthwise, 1);
    assert_true(member(&gs->groups[0], "D.w", 0)->is_depthwise);
    assert_non_null(member(&gs->groups[0], "C.w", 1));
    assert_int_equal(pare_prune_apply(g, gs, ratios, NULL, &p, NULL, &err), PARE_OK);
    assert_int_equal(init_of(p, "D.w")->dims[0], 2);
    assert_int_equal(init_of(p, "D.w")->dims[1], 1);
    assert_int_equal(pare_node_attr_int(&p->nodes[pare_graph_find_node(p, "D")], "group", 0), 2);
    o = run_random(p, 25, 2);
    pare_free(o);
    pare_graph_free(p);
    pare_prune_groups_free(gs);
    pare_graph_free(g);
}

static void test_reshape_to_features(void **state)
{
    /* input(1, 3x3) -> A (4 ch) -> Relu -> Reshape [0, -1] -> Gemm (2 out, transB) */
    builder b = builder_new(1, 3);
    int a, r, rs, y, ins[3];
    int64_t sd[1] = {2}, wd[2] = {2, 36}, bd[1] = {2};
    float w[72], bias[2] = {0.1f, -0.1f};
    pare_graph *g, *p = NULL;
    pare_prune_groups *gs;
    pare_error err = {0};
    double ratios[2] = {0.5, 0};
    pare_attr tb = {.name = "transB", .type = PARE_ATTR_INT, .i = 1};
    float *o;
    (void)state;
    for (int i = 0; i < 72; i++)
        w[i] = rnd(&b);
    a = conv(&b, "A", 0, 1, 4, 1);
    r = op(&b, "Relu", "r", &a, 1);
    {
        pare_tensor *t = pare_tensor_new(PARE_I64, 1, sd);
        ((int64_t *)t->data)[0] = 0;
        ((int64_t *)t->data)[1] = -1;
        ins[0] = r;
        ins[1] = pare_graph_add_initializer(b.g, "shape", t, &err);
    }
    rs = op(&b, "Reshape", "reshape", ins, 2);
    ins[0] = rs;
    ins[1] = add_init(b.g, "fc.w", 2, wd, w);
    ins[2] = add_init(b.g, "fc.b", 1, bd, bias);
    y = op(&b, "Gemm", "fc", ins, 3);
    assert_int_equal(pare_node_add_attr(&b.g->nodes[b.g->n_nodes - 1], &tb, &err), PARE_OK);
    g = builder_done(&b, y);
    gs = groups_of(g);
    assert_int_equal(gs->n, 2);
    assert_true(gs->groups[0].prunable);
    assert_int_equal(member(&gs->groups[0], "fc.w", 1)->block, 9);
    assert_int_equal(pare_prune_apply(g, gs, ratios, NULL, &p, NULL, &err), PARE_OK);
    assert_int_equal(init_of(p, "fc.w")->dims[1], 18);
    o = run_random(p, 9, 2);
    pare_free(o);
    pare_graph_free(p);
    pare_prune_groups_free(gs);
    pare_graph_free(g);
}

static void test_tiny_vit_ffn_prune_runs(void **state)
{
    pare_graph *g = load(MODEL("tiny_vit")), *p = NULL;
    pare_prune_groups *gs = groups_of(g);
    double ratios[16] = {0};
    pare_error err = {0};
    float *y;
    (void)state;
    assert_true(gs->n <= 16);
    for (int i = 0; i < gs->n; i++)
        ratios[i] = gs->groups[i].prunable ? 0.5 : 0;
    assert_int_equal(pare_prune_apply(g, gs, ratios, NULL, &p, NULL, &err), PARE_OK);
    for (int v = 0; v < p->n_values; v++)
        if (p->values[v].init && strstr(p->values[v].name, "fc1.bias"))
            assert_int_equal(p->values[v].init->dims[0], 64);
    y = run_sample(p, 4);
    pare_free(y);
    pare_graph_free(p);
    pare_prune_groups_free(gs);
    pare_graph_free(g);
}

/* ---- errors ------------------------------------------------------------------------- */

static void test_bad_inputs_have_where_and_hint(void **state)
{
    pare_graph *g = load(MODEL("resnet8")), *p = NULL;
    pare_prune_groups *gs = groups_of(g);
    double ratios[7] = {0};
    pare_error err = {0};
    (void)state;

    ratios[1] = 1.0;
    assert_int_equal(pare_prune_apply(g, gs, ratios, NULL, &p, NULL, &err), PARE_EINPUT);
    assert_null(p);
    assert_string_equal(err.msg, "prune ratio 1 for group '/layer1/conv1/Conv_output_0' is "
                                 "outside [0, 1)");
    assert_string_equal(err.where, MODEL("resnet8"));
    ratios[1] = -0.1;
    assert_int_equal(pare_prune_apply(g, gs, ratios, NULL, &p, NULL, &err), PARE_EINPUT);
    ratios[1] = 0;
    ratios[6] = 0.5;
    assert_int_equal(pare_prune_apply(g, gs, ratios, NULL, &p, NULL, &err), PARE_EINPUT);
    assert_string_equal(err.msg, "group 'logits' cannot be pruned");
    assert_string_equal(err.hint, "reaches model output 'logits'");
    ratios[6] = 0;
    ratios[0] = 0.5;
    assert_int_equal(pare_prune_apply(g, gs, ratios, &(pare_prune_opts){.criterion = "l1_nrom"}, &p, NULL, &err), PARE_EINPUT);
    assert_string_equal(err.msg, "unknown prune criterion 'l1_nrom'");
    assert_string_equal(err.hint, "did you mean 'l1_norm'?");
    assert_int_equal(pare_prune_apply(g, gs, ratios, &(pare_prune_opts){.criterion = "bn_scale"}, &p, NULL, &err), PARE_EINPUT);
    assert_string_equal(err.msg, "group '/stem/stem.0/Conv_output_0' has no BatchNormalization "
                                 "for bn_scale");

    assert_int_equal(pare_prune_groups_lookup(gs, g, "/layer1/conv1/Conv", "cli", &err), 1);
    assert_int_equal(pare_prune_groups_lookup(gs, g, gs->groups[4].members[0].tensor, "cli", &err), 4);
    assert_int_equal(pare_prune_groups_lookup(gs, g, "/layer1/conv1/Conv_output_9", "cli", &err),
                     PARE_EINPUT);
    assert_string_equal(err.where, "cli");
    assert_string_equal(err.msg, "no prune group '/layer1/conv1/Conv_output_9'");
    assert_string_equal(err.hint, "did you mean '/layer1/conv1/Conv_output_0'?");
    pare_prune_groups_free(gs);
    pare_graph_free(g);
}

/* ---- unstructured --------------------------------------------------------------- */

static void test_unstructured_local_vs_global(void **state)
{
    pare_graph *g = load(MODEL("lenet5")), *c = NULL;
    pare_unstruct_opts o = {.mode = PARE_UNSTRUCT_L1, .ratio = 0.5};
    pare_masks *m = NULL;
    pare_error err = {0};
    bool differs = false;
    (void)state;

    assert_int_equal(pare_masks_compute(g, &o, &m, &err), PARE_OK);
    assert_int_equal(m->n, 5); /* conv1, conv2, fc1, fc2, fc3 weights; no biases */
    for (int i = 0; i < m->n; i++)
        assert_int_equal(m->masks[i].n_pruned, (int64_t)llround(0.5 * (double)m->masks[i].numel));
    assert_int_equal(pare_graph_clone(g, &c, &err), PARE_OK);
    assert_int_equal(pare_masks_apply(m, c, &err), PARE_OK);
    assert_float_equal(pare_tensor_sparsity(c, "fc1.weight"), 0.5, 1e-4);
    assert_float_equal(pare_tensor_sparsity(c, "fc1.bias"), 0.0, 1e-9);
    /* the zeroed weights are the smallest: every kept |w| >= every pruned |w| */
    {
        const pare_tensor *t = g->values[pare_graph_find_value(g, "fc2.weight")].init;
        const pare_mask *k = &m->masks[3];
        float max_pruned = 0, min_kept = INFINITY;
        assert_string_equal(k->tensor, "fc2.weight");
        for (int64_t i = 0; i < k->numel; i++) {
            float a = fabsf(pare_tensor_f32(t)[i]);
            if (k->keep[i])
                min_kept = fminf(min_kept, a);
            else
                max_pruned = fmaxf(max_pruned, a);
        }
        assert_true(min_kept >= max_pruned);
    }
    pare_masks_free(m);
    pare_graph_free(c);

    o.global = true;
    assert_int_equal(pare_masks_compute(g, &o, &m, &err), PARE_OK);
    assert_float_equal(pare_masks_sparsity(m), 0.5, 1e-4);
    for (int i = 0; i < m->n; i++)
        differs |= fabs((double)m->masks[i].n_pruned / (double)m->masks[i].numel - 0.5) > 0.05;
    assert_true(differs); /* one ranking across layers: per-layer sparsity varies */
    pare_masks_free(m);

    o.global = false;
    o.params_type = PARE_PARAMS_CONV1X1;
    assert_int_equal(pare_masks_compute(g, &o, &m, &err), PARE_OK);
    assert_int_equal(m->n, 0);
    pare_masks_free(m);

    o.params_type = PARE_PARAMS_ALL;
    o.ratio = 1.0;
    assert_int_equal(pare_masks_compute(g, &o, &m, &err), PARE_EINPUT);
    o.ratio = 0.3;
    {
        const char *skip[1] = {"fc1.weigth"};
        o.skip = skip;
        o.n_skip = 1;
        assert_int_equal(pare_masks_compute(g, &o, &m, &err), PARE_EINPUT);
        assert_string_equal(err.msg, "no weight 'fc1.weigth' to skip");
        assert_string_equal(err.hint, "did you mean 'fc1.weight'?");
        skip[0] = "fc1.weight";
        assert_int_equal(pare_masks_compute(g, &o, &m, &err), PARE_OK);
        assert_int_equal(m->n, 4);
        pare_masks_free(m);
    }
    pare_graph_free(g);
}

static void test_nm_2_4_pattern(void **state)
{
    pare_graph *g = load(MODEL("lenet5"));
    pare_masks *m = NULL;
    pare_error err = {0};
    int skipped = -1;
    (void)state;
    assert_int_equal(pare_masks_nm(g, 2, 4, PARE_PARAMS_ALL, &m, &skipped, &err), PARE_OK);
    assert_int_equal(skipped, 2); /* conv1 (1 input) and conv2 (6 inputs) */
    for (int i = 0; i < m->n; i++) {
        const pare_mask *k = &m->masks[i];
        const pare_tensor *t = g->values[pare_graph_find_value(g, k->tensor)].init;
        if (t->ndim != 2)
            continue;
        /* Gemm with transB: weight [out, in], runs of 4 along the last axis */
        assert_int_equal(k->n_pruned, k->numel / 2);
        for (int64_t s = 0; s < k->numel; s += 4) {
            int kept = 0;
            float min_kept = INFINITY, max_pruned = 0;
            for (int j = 0; j < 4; j++) {
                float a = fabsf(pare_tensor_f32(t)[s + j]);
                kept += k->keep[s + j];
                if (k->keep[s + j])
                    min_kept = fminf(min_kept, a);
                else
                    max_pruned = fmaxf(max_pruned, a);
            }
            assert_int_equal(kept, 2);
            assert_true(min_kept >= max_pruned);
        }
    }
    pare_masks_free(m);
    assert_int_equal(pare_masks_nm(g, 4, 4, PARE_PARAMS_ALL, &m, NULL, &err), PARE_EINPUT);
    assert_string_equal(err.msg, "bad N:M pattern 4:4");
    assert_null(m);
    pare_graph_free(g);
}

static void test_gmp_schedule(void **state)
{
    pare_gmp s = {.stable_iterations = 10, .pruning_iterations = 100, .tunning_iterations = 50,
                  .pruning_steps = 10, .initial_ratio = 0.1, .final_ratio = 0.8};
    pare_gmp_state st;
    pare_graph *g = load(MODEL("lenet5"));
    pare_error err = {0};
    double r = -1;
    (void)state;
    assert_float_equal(pare_gmp_ratio(&s, 0), 0.0, 1e-12);
    assert_float_equal(pare_gmp_ratio(&s, 9), 0.0, 1e-12);
    assert_float_equal(pare_gmp_ratio(&s, 10), 0.1, 1e-12);
    assert_float_equal(pare_gmp_ratio(&s, 19), 0.1, 1e-12);   /* held for one period */
    assert_float_equal(pare_gmp_ratio(&s, 60), 0.8 - 0.7 * 0.125, 1e-12);
    assert_float_equal(pare_gmp_ratio(&s, 100), 0.8 - 0.7 * 0.001, 1e-12);
    assert_float_equal(pare_gmp_ratio(&s, 110), 0.8, 1e-12);
    assert_float_equal(pare_gmp_ratio(&s, 1000), 0.8, 1e-12);
    for (int64_t t = 11; t < 110; t++)
        assert_true(pare_gmp_ratio(&s, t) >= pare_gmp_ratio(&s, t - 1));

    s.resume_iteration = 60;
    s.opts.mode = PARE_UNSTRUCT_L1;
    assert_int_equal(pare_gmp_init(&st, &s, &err), PARE_OK);
    assert_int_equal(pare_gmp_step(&st, g, &r, &err), PARE_OK);
    assert_float_equal(r, 0.8 - 0.7 * 0.125, 1e-12);
    assert_float_equal(pare_tensor_sparsity(g, "fc1.weight"), r, 1e-3);
    for (int i = 0; i < 60; i++)
        assert_int_equal(pare_gmp_step(&st, g, &r, &err), PARE_OK);
    assert_float_equal(r, 0.8, 1e-12);
    assert_float_equal(pare_tensor_sparsity(g, "fc1.weight"), 0.8, 1e-3);
    pare_gmp_fini(&st);

    s.pruning_steps = 0;
    assert_int_equal(pare_gmp_init(&st, &s, &err), PARE_EINPUT);
    s.pruning_steps = 10;
    s.initial_ratio = 0.9;
    assert_int_equal(pare_gmp_init(&st, &s, &err), PARE_EINPUT);
    assert_string_equal(err.msg, "initial_ratio 0.9 is above the final ratio 0.8");
    pare_graph_free(g);
}

static void test_masks_from_npz(void **state)
{
    pare_graph *g = load(MODEL("lenet5"));
    pare_masks *m = NULL;
    pare_error err = {0};
    char path[64];
    int64_t dims[2] = {84, 120};
    pare_tensor *t = pare_tensor_new(PARE_F32, 2, dims);
    const char *names[1] = {"fc2.weight"};
    const pare_tensor *arrs[1] = {t};
    (void)state;
    for (int i = 0; i < 84 * 120; i++)
        pare_tensor_f32(t)[i] = (float)(i % 3 != 0);
    snprintf(path, sizeof path, "/tmp/pare-test-prune-%ld.npz", (long)getpid());
    assert_int_equal(pare_npz_save(path, names, arrs, 1, &err), PARE_OK);
    assert_int_equal(pare_masks_load(g, path, &m, &err), PARE_OK);
    assert_int_equal(m->n, 1);
    assert_int_equal(m->masks[0].n_pruned, 84 * 40);
    assert_int_equal(pare_masks_apply(m, g, &err), PARE_OK);
    assert_float_equal(pare_tensor_sparsity(g, "fc2.weight"), 1.0 / 3, 1e-3);
    pare_masks_free(m);
    names[0] = "fc2.wieght";
    assert_int_equal(pare_npz_save(path, names, arrs, 1, &err), PARE_OK);
    assert_int_equal(pare_masks_load(g, path, &m, &err), PARE_EINPUT);
    assert_string_equal(err.msg, "mask 'fc2.wieght' names no weight of the model");
    assert_string_equal(err.hint, "did you mean 'fc2.weight'?");
    remove(path);
    pare_tensor_free(t);
    pare_graph_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_groups_resnet8),
        cmocka_unit_test(test_groups_resnet8_bn),
        cmocka_unit_test(test_groups_lenet5_flatten_gemm),
        cmocka_unit_test(test_groups_tiny_vit_ffn),
        cmocka_unit_test(test_shrink_runs_with_right_shapes),
        cmocka_unit_test(test_zero_ratio_is_noop),
        cmocka_unit_test(test_zeroed_channels_prune_exactly_resnet8),
        cmocka_unit_test(test_zeroed_channels_prune_exactly_lenet5),
        cmocka_unit_test(test_criteria_on_hand_made_tensor),
        cmocka_unit_test(test_registered_criterion),
        cmocka_unit_test(test_concat_offsets),
        cmocka_unit_test(test_depthwise_follows_its_input),
        cmocka_unit_test(test_reshape_to_features),
        cmocka_unit_test(test_tiny_vit_ffn_prune_runs),
        cmocka_unit_test(test_bad_inputs_have_where_and_hint),
        cmocka_unit_test(test_unstructured_local_vs_global),
        cmocka_unit_test(test_nm_2_4_pattern),
        cmocka_unit_test(test_gmp_schedule),
        cmocka_unit_test(test_masks_from_npz),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
