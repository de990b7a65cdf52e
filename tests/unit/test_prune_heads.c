/* Attention-head pruning: detection on tiny_vit, the zero-head identity
 * (pruning heads whose weights are zero changes no output), the exact
 * parameter count after pruning half the heads, a saved and reloaded model
 * that runs, shared shape constants, and patterns pare must refuse. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "pare/alloc.h"
#include "pare/data.h"
#include "pare/exec.h"
#include "pare/graph.h"
#include "pare/prune.h"

#define TINY_VIT PARE_TEST_DATA "/tiny_vit.onnx"
#define BATCH 4
#define SAMPLE PARE_TEST_DATA "/fmnist-sample"

static pare_graph *load(const char *path)
{
    pare_graph *g = NULL;
    pare_error err = {0};
    assert_int_equal(pare_graph_load(path, &g, &err), PARE_OK);
    return g;
}

static pare_prune_heads *heads_of(const pare_graph *g)
{
    pare_prune_heads *hs = NULL;
    pare_error err = {0};
    assert_int_equal(pare_prune_heads_find(g, &hs, &err), PARE_OK);
    return hs;
}

/* Runs g on BATCH fixed pseudo-random images; returns the logits (caller frees). */
static float *run_random(const pare_graph *g)
{
    pare_exec_opts opts = {.batch = BATCH, .n_threads = 1};
    pare_exec *x = NULL;
    pare_error err = {0};
    pare_tensor *in;
    const pare_tensor *y;
    uint64_t st = 12345;
    float *out;

    assert_int_equal(pare_exec_new(g, &opts, &x, &err), PARE_OK);
    in = pare_exec_input(x, 0);
    for (int64_t i = 0; i < pare_tensor_numel(in); i++) {
        st = st * 6364136223846793005ull + 1442695040888963407ull;
        pare_tensor_f32(in)[i] = (float)((double)(st >> 40) / (double)(1ull << 24)) * 2.0f - 1.0f;
    }
    assert_int_equal(pare_exec_run(x, &err), PARE_OK);
    y = pare_exec_output(x, 0);
    assert_int_equal(y->ndim, 2);
    assert_int_equal(y->dims[0], BATCH);
    assert_int_equal(y->dims[1], 10);
    out = pare_alloc((size_t)pare_tensor_numel(y) * sizeof *out);
    assert_non_null(out);
    memcpy(out, y->data, (size_t)pare_tensor_numel(y) * sizeof *out);
    pare_exec_free(x);
    return out;
}

static double max_abs_diff(const float *a, const float *b, int n)
{
    double m = 0;
    for (int i = 0; i < n; i++)
        m = fmax(m, fabs((double)a[i] - b[i]));
    return m;
}

static pare_tensor *init(pare_graph *g, const char *name)
{
    int v = pare_graph_find_value(g, name);
    assert_true(v >= 0);
    assert_non_null(g->values[v].init);
    return g->values[v].init;
}

/* Zeroes head h of block b in g: its q, k, v weight columns and proj rows. */
static void zero_head(pare_graph *g, const pare_prune_attn *b, int h)
{
    pare_tensor *p = init(g, b->proj_weight);
    int64_t D = b->head_dim, HD = (int64_t)b->num_heads * D, parts = b->n_qkv == 1 ? 3 : 1;
    for (int j = 0; j < b->n_qkv; j++) {
        pare_tensor *w = init(g, b->qkv_weight[j]);
        for (int64_t r = 0; r < w->dims[0]; r++)
            for (int64_t part = 0; part < parts; part++)
                for (int64_t d = 0; d < D; d++)
                    pare_tensor_f32(w)[r * w->dims[1] + part * HD + h * D + d] = 0;
    }
    for (int64_t r = h * D; r < (h + 1) * D; r++)
        for (int64_t c = 0; c < p->dims[1]; c++)
            pare_tensor_f32(p)[r * p->dims[1] + c] = 0;
}

static void test_detects_tiny_vit_blocks(void **state)
{
    pare_graph *g = load(TINY_VIT);
    pare_prune_heads *hs = heads_of(g);
    (void)state;

    assert_int_equal(hs->n, 2);
    for (int i = 0; i < 2; i++) {
        const pare_prune_attn *b = &hs->blocks[i];
        char want[64];
        assert_true(b->prunable);
        assert_int_equal(b->num_heads, 4);
        assert_int_equal(b->head_dim, 16);
        snprintf(want, sizeof want, "/layers.%d/attn/Softmax", i);
        assert_string_equal(b->name, want);
        snprintf(want, sizeof want, "/layers.%d/attn/Reshape", i);
        assert_string_equal(b->reshape_heads[0], want);
        snprintf(want, sizeof want, "/layers.%d/attn/Reshape_1", i);
        assert_string_equal(b->reshape_merge, want);
        assert_true(b->merge_has_hd);
        snprintf(want, sizeof want, "layers.%d.attn.qkv.bias", i);
        assert_string_equal(b->qkv_bias[0], want);
        snprintf(want, sizeof want, "/layers.%d/attn/proj/MatMul", i);
        assert_string_equal(b->proj_node, want);
        assert_int_equal(init(g, b->qkv_weight[0])->dims[1], 192);
        assert_int_equal(init(g, b->proj_weight)->dims[0], 64);
    }
    pare_prune_heads_free(hs);
    pare_graph_free(g);
}

/* A head whose q/k/v columns and proj rows are zero contributes nothing:
 * pruning it (l1 ranks it last) gives the same outputs. */
static void test_zero_head_prune_is_identity(void **state)
{
    pare_graph *g = load(TINY_VIT), *p = NULL;
    pare_prune_heads *hs = heads_of(g);
    pare_prune_result res;
    pare_error err = {0};
    double ratios[2] = {0.25, 0.25};
    int kept[2];
    float *a, *b;
    (void)state;

    zero_head(g, &hs->blocks[0], 1);
    zero_head(g, &hs->blocks[1], 3);
    assert_int_equal(pare_prune_heads_apply(g, hs, ratios, NULL, &p, kept, &res, &err), PARE_OK);
    assert_int_equal(kept[0], 3);
    assert_int_equal(kept[1], 3);
    assert_int_equal(res.channels_removed, 2);
    /* the zeroed heads went: what is left has no all-zero proj row block */
    assert_int_equal(init(p, hs->blocks[0].proj_weight)->dims[0], 48);
    assert_int_equal(init(p, hs->blocks[0].qkv_weight[0])->dims[1], 144);
    assert_int_equal(init(p, hs->blocks[0].qkv_bias[0])->dims[0], 144);
    for (int64_t r = 0; r < 48; r++) {
        const pare_tensor *pw = init(p, hs->blocks[0].proj_weight);
        double s = 0;
        for (int64_t c = 0; c < pw->dims[1]; c++)
            s += fabs(pare_tensor_f32(pw)[r * pw->dims[1] + c]);
        assert_true(s > 0);
    }
    a = run_random(g);
    b = run_random(p);
    assert_true(max_abs_diff(a, b, BATCH * 10) < 1e-5);
    pare_free(b);
    pare_graph_free(p);
    /* control: removing a live head does change the outputs */
    {
        bool k0[4] = {true, true, false, true}, k1[4] = {true, true, true, true};
        const bool *keep[2] = {k0, k1};
        assert_int_equal(pare_prune_heads_apply_masks(g, hs, keep, &p, &err), PARE_OK);
        b = run_random(p);
        assert_true(max_abs_diff(a, b, BATCH * 10) > 1e-3);
        pare_free(b);
        pare_graph_free(p);
    }
    pare_free(a);
    pare_prune_heads_free(hs);
    pare_graph_free(g);
}

/* Half the heads: 2 of 4 per block; each head owns 64 * 3 * 16 QKV weights,
 * 3 * 16 biases and 16 * 64 projection weights. The saved model reloads
 * and runs, and is found again with 2 heads per block. */
static void test_half_heads_params_and_reload(void **state)
{
    pare_graph *g = load(TINY_VIT), *p = NULL, *r = NULL;
    pare_prune_heads *hs = heads_of(g), *hs2;
    pare_prune_result res;
    pare_error err = {0};
    double ratios[2] = {0.5, 0.5};
    const int64_t per_head = 64 * 3 * 16 + 3 * 16 + 16 * 64;
    uint8_t *buf = NULL;
    size_t len = 0;
    float *a, *b;
    (void)state;

    assert_int_equal(pare_prune_heads_apply(g, hs, ratios, NULL, &p, NULL, &res, &err), PARE_OK);
    assert_int_equal(res.params_before, pare_graph_param_count(g));
    assert_int_equal(res.params_before - res.params_after, 4 * per_head);
    assert_true(res.flops_after < res.flops_before);
    assert_int_equal(pare_graph_save_buffer(p, &buf, &len, &err), PARE_OK);
    assert_int_equal(pare_graph_load_buffer(buf, len, "pruned.onnx", &r, &err), PARE_OK);
    a = run_random(p);
    b = run_random(r);
    assert_true(max_abs_diff(a, b, BATCH * 10) == 0);
    for (int i = 0; i < BATCH * 10; i++)
        assert_true(isfinite(a[i]));
    hs2 = heads_of(r);
    assert_int_equal(hs2->n, 2);
    assert_true(hs2->blocks[0].prunable);
    assert_int_equal(hs2->blocks[0].num_heads, 2);
    assert_int_equal(hs2->blocks[1].num_heads, 2);
    pare_prune_heads_free(hs2);
    pare_free(a);
    pare_free(b);
    pare_free(buf);
    pare_graph_free(r);
    pare_graph_free(p);
    pare_prune_heads_free(hs);
    pare_graph_free(g);
}

/* Layer 1's Reshape made to read layer 0's shape constant: pruning only
 * block 0 must copy the constant, not change block 1's. */
static void test_shared_shape_constant_is_copied(void **state)
{
    pare_graph *g = load(TINY_VIT), *p = NULL;
    pare_prune_heads *hs;
    pare_error err = {0};
    double ratios[2] = {0.5, 0};
    int kept[2];
    int r0 = pare_graph_find_node(g, "/layers.0/attn/Reshape");
    int r1 = pare_graph_find_node(g, "/layers.1/attn/Reshape");
    float *a;
    (void)state;

    assert_true(r0 >= 0 && r1 >= 0);
    g->nodes[r1].inputs[1] = g->nodes[r0].inputs[1];
    assert_int_equal(pare_graph_index(g, &err), PARE_OK);
    hs = heads_of(g);
    assert_true(hs->blocks[0].prunable && hs->blocks[1].prunable);
    assert_int_equal(pare_prune_heads_apply(g, hs, ratios, NULL, &p, kept, NULL, &err), PARE_OK);
    assert_int_equal(kept[0], 2);
    assert_int_equal(kept[1], 4);
    {
        int n0 = pare_graph_find_node(p, "/layers.0/attn/Reshape");
        int n1 = pare_graph_find_node(p, "/layers.1/attn/Reshape");
        const pare_tensor *s0 = p->values[p->nodes[n0].inputs[1]].init;
        const pare_tensor *s1 = p->values[p->nodes[n1].inputs[1]].init;
        assert_true(p->nodes[n0].inputs[1] != p->nodes[n1].inputs[1]);
        /* layer 0's now reads a fresh initializer; layer 1's keeps the Constant */
        assert_non_null(s0);
        assert_null(s1);
        assert_int_equal(((const int64_t *)s0->data)[3], 2);
    }
    a = run_random(p);
    pare_free(a);
    pare_graph_free(p);
    pare_prune_heads_free(hs);
    pare_graph_free(g);
}

/* q, k, v split with heads and tokens swapped: still a valid model, but
 * not the pattern, so block 0 is not prunable and asking is an error. */
static void test_other_pattern_not_prunable(void **state)
{
    pare_graph *g = load(TINY_VIT), *p = NULL;
    pare_prune_heads *hs;
    pare_error err = {0};
    double ratios[2] = {0.5, 0};
    int t = pare_graph_find_node(g, "/layers.0/attn/Transpose");
    pare_attr *perm = NULL;
    float *a;
    (void)state;

    assert_true(t >= 0);
    for (int i = 0; i < g->nodes[t].n_attrs; i++)
        if (strcmp(g->nodes[t].attrs[i].name, "perm") == 0)
            perm = &g->nodes[t].attrs[i];
    assert_non_null(perm);
    perm->ints[2] = 1; /* [2, 0, 1, 3, 4]: [3, N, T, H, D] */
    perm->ints[3] = 3;
    a = run_random(g); /* still runs */
    pare_free(a);
    hs = heads_of(g);
    assert_int_equal(hs->n, 2);
    assert_false(hs->blocks[0].prunable);
    assert_non_null(strstr(hs->blocks[0].reason, "perm [2, 0, 3, 1, 4]"));
    assert_true(hs->blocks[1].prunable);
    assert_int_equal(pare_prune_heads_apply(g, hs, ratios, NULL, &p, NULL, NULL, &err),
                     PARE_EINPUT);
    assert_null(p);
    assert_non_null(strstr(err.msg, "/layers.0/attn/Softmax"));
    assert_string_equal(err.hint, hs->blocks[0].reason);
    pare_prune_heads_free(hs);
    pare_graph_free(g);
}

/* Softmax over the queries axis is not per-key attention. */
static void test_softmax_axis_not_prunable(void **state)
{
    pare_graph *g = load(TINY_VIT);
    pare_prune_heads *hs;
    int s = pare_graph_find_node(g, "/layers.1/attn/Softmax");
    (void)state;

    assert_true(s >= 0);
    for (int i = 0; i < g->nodes[s].n_attrs; i++)
        if (strcmp(g->nodes[s].attrs[i].name, "axis") == 0)
            g->nodes[s].attrs[i].i = 2;
    hs = heads_of(g);
    assert_true(hs->blocks[0].prunable);
    assert_false(hs->blocks[1].prunable);
    assert_non_null(strstr(hs->blocks[1].reason, "axis 2"));
    pare_prune_heads_free(hs);
    pare_graph_free(g);
}

static void test_bad_criterion_and_ratio(void **state)
{
    pare_graph *g = load(TINY_VIT), *p = NULL;
    pare_prune_heads *hs = heads_of(g);
    pare_prune_opts po = {.criterion = "geometry_median"};
    pare_error err = {0};
    double ratios[2] = {0.5, 0.5}, bad[2] = {1.0, 0};
    (void)state;

    assert_int_equal(pare_prune_heads_apply(g, hs, ratios, &po, &p, NULL, NULL, &err), PARE_EINPUT);
    assert_string_equal(err.msg, "criterion 'geometry_median' does not rank attention heads");
    assert_string_equal(err.hint, "use l1_norm, l2_norm, random or activation (with data)");
    memset(&err, 0, sizeof err);
    assert_int_equal(pare_prune_heads_apply(g, hs, bad, NULL, &p, NULL, NULL, &err), PARE_EINPUT);
    assert_null(p);
    po.criterion = "random";
    assert_int_equal(pare_prune_heads_apply(g, hs, ratios, &po, &p, NULL, NULL, &err), PARE_OK);
    pare_graph_free(p);
    pare_prune_heads_free(hs);
    pare_graph_free(g);
}

/* Data-driven importance: a zeroed head adds nothing to the projection, so
 * its importance is 0 and `activation` removes it; the others count. */
static void test_activation_importance(void **state)
{
    pare_graph *g = load(TINY_VIT), *p = NULL;
    pare_prune_heads *hs = heads_of(g);
    pare_prune_opts po = {.criterion = "activation"};
    pare_dataset *ds = NULL;
    pare_data_opts dopts = {.limit = 40};
    pare_error err = {0};
    double ratios[2] = {0.25, 0};
    int kept[2];
    float *a, *b;
    (void)state;

    /* without data the criterion cannot rank */
    assert_int_equal(pare_prune_heads_apply(g, hs, ratios, &po, &p, NULL, NULL, &err), PARE_EINPUT);
    assert_non_null(strstr(err.msg, "needs data"));
    zero_head(g, &hs->blocks[0], 2);
    assert_int_equal(pare_dataset_open("idx:" SAMPLE "/t10k-images-idx3-ubyte.gz," SAMPLE
                                       "/t10k-labels-idx1-ubyte.gz", &dopts, &ds, &err), PARE_OK);
    /* 40 samples in batches of 16: the last batch is partial */
    assert_int_equal(pare_prune_heads_importance(g, hs, ds, 0, 16, 1, &err), PARE_OK);
    for (int i = 0; i < 2; i++) {
        assert_non_null(hs->blocks[i].importance);
        for (int h = 0; h < 4; h++) {
            if (i == 0 && h == 2)
                assert_true(hs->blocks[i].importance[h] == 0);
            else
                assert_true(hs->blocks[i].importance[h] > 1e-3);
        }
    }
    memset(&err, 0, sizeof err);
    assert_int_equal(pare_prune_heads_apply(g, hs, ratios, &po, &p, kept, NULL, &err), PARE_OK);
    assert_int_equal(kept[0], 3);
    assert_int_equal(kept[1], 4);
    a = run_random(g);
    b = run_random(p);
    assert_true(max_abs_diff(a, b, BATCH * 10) < 1e-5);
    pare_free(a);
    pare_free(b);
    pare_graph_free(p);
    pare_dataset_free(ds);
    pare_prune_heads_free(hs);
    pare_graph_free(g);
}

/* ---- separate Q, K, V projections, made from tiny_vit by graph surgery ---- */

static int add_node(pare_graph *g, const char *op, const char *name, const int *in, int n_in,
                    int out)
{
    pare_error err = {0};
    int n = pare_graph_add_node(g, op, "", name, in, n_in, &out, 1, &err);
    assert_true(n >= 0);
    return n;
}

static int add_init(pare_graph *g, const char *name, pare_tensor *t)
{
    pare_error err = {0};
    int v = pare_graph_add_initializer(g, name, t, &err);
    assert_true(v >= 0);
    return v;
}

static int add_value(pare_graph *g, const char *name)
{
    pare_error err = {0};
    int v = pare_graph_add_value(g, name, &err);
    assert_true(v >= 0);
    return v;
}

static void rewire(pare_graph *g, int from, int to)
{
    for (int n = 0; n < g->n_nodes; n++)
        for (int i = 0; i < g->nodes[n].n_inputs; i++)
            if (g->nodes[n].inputs[i] == from)
                g->nodes[n].inputs[i] = to;
}

/* Replaces layer L's fused QKV (MatMul, Add, Reshape, Transpose, 3 Gathers)
 * by three MatMul -> Add -> Reshape [-1, 16, 4, 16] -> Transpose [0, 2, 1, 3];
 * with direct_kt the keys use one Transpose [0, 2, 3, 1] instead of
 * [0, 2, 1, 3] then the model's [0, 1, 3, 2]. Same function, same outputs. */
static void split_qkv(pare_graph *g, int layer, bool direct_kt)
{
    static const char *const parts[] = {"qkv/MatMul", "qkv/Add", "Reshape", "Transpose", "Gather",
                                        "Gather_1", "Gather_2", "Transpose_1"};
    int nodes[8], n_remove = direct_kt ? 8 : 7, x, gout[3];
    bool *remove;
    const pare_tensor *w, *bias;
    pare_error err = {0};
    char name[128];

    for (int i = 0; i < 8; i++) {
        snprintf(name, sizeof name, "/layers.%d/attn/%s", layer, parts[i]);
        nodes[i] = pare_graph_find_node(g, name);
        assert_true(nodes[i] >= 0);
    }
    x = g->nodes[nodes[0]].inputs[0];
    w = g->values[g->nodes[nodes[0]].inputs[1]].init;
    bias = g->values[g->nodes[nodes[1]].inputs[0]].init;
    assert_non_null(w);
    assert_non_null(bias);
    for (int j = 0; j < 3; j++)
        gout[j] = g->nodes[nodes[4 + j]].outputs[0];
    if (direct_kt)
        gout[1] = g->nodes[nodes[7]].outputs[0];
    for (int j = 0; j < 3; j++) {
        int64_t wd[2] = {64, 64}, bd[1] = {64}, sd[1] = {4};
        static const int64_t shape[4] = {-1, 16, 4, 16};
        int64_t perm[4] = {0, 2, 1, 3};
        pare_tensor *wj = pare_tensor_new(PARE_F32, 2, wd), *bj = pare_tensor_new(PARE_F32, 1, bd);
        pare_tensor *sj = pare_tensor_new(PARE_I64, 1, sd);
        int vw, vb, vs, mo, ao, ro, to, in[2], n;
        pare_attr a = {.name = "perm", .type = PARE_ATTR_INTS, .ints = perm, .n = 4};
        for (int r = 0; r < 64; r++)
            for (int c = 0; c < 64; c++)
                pare_tensor_f32(wj)[r * 64 + c] = pare_tensor_f32(w)[r * 192 + j * 64 + c];
        memcpy(bj->data, pare_tensor_f32(bias) + j * 64, 64 * sizeof(float));
        memcpy(sj->data, shape, sizeof shape);
        snprintf(name, sizeof name, "L%d.%c.weight", layer, "qkv"[j]);
        vw = add_init(g, name, wj);
        snprintf(name, sizeof name, "L%d.%c.bias", layer, "qkv"[j]);
        vb = add_init(g, name, bj);
        snprintf(name, sizeof name, "L%d.%c.shape", layer, "qkv"[j]);
        vs = add_init(g, name, sj);
        snprintf(name, sizeof name, "L%d.%c.mm", layer, "qkv"[j]);
        mo = add_value(g, name);
        snprintf(name, sizeof name, "L%d.%c.add", layer, "qkv"[j]);
        ao = add_value(g, name);
        snprintf(name, sizeof name, "L%d.%c.heads", layer, "qkv"[j]);
        ro = add_value(g, name);
        snprintf(name, sizeof name, "L%d.%c.t", layer, "qkv"[j]);
        to = add_value(g, name);
        in[0] = x;
        in[1] = vw;
        snprintf(name, sizeof name, "/layers.%d/attn/%c/MatMul", layer, "qkv"[j]);
        add_node(g, "MatMul", name, in, 2, mo);
        in[0] = mo;
        in[1] = vb;
        snprintf(name, sizeof name, "/layers.%d/attn/%c/Add", layer, "qkv"[j]);
        add_node(g, "Add", name, in, 2, ao);
        in[0] = ao;
        in[1] = vs;
        snprintf(name, sizeof name, "/layers.%d/attn/%c/Reshape", layer, "qkv"[j]);
        add_node(g, "Reshape", name, in, 2, ro);
        snprintf(name, sizeof name, "/layers.%d/attn/%c/Transpose", layer, "qkv"[j]);
        n = add_node(g, "Transpose", name, &ro, 1, to);
        if (direct_kt && j == 1) {
            perm[2] = 3;
            perm[3] = 1;
        }
        assert_int_equal(pare_node_add_attr(&g->nodes[n], &a, &err), PARE_OK);
        rewire(g, gout[j], to);
    }
    remove = pare_calloc((size_t)g->n_nodes, sizeof *remove);
    assert_non_null(remove);
    for (int i = 0; i < n_remove; i++)
        remove[nodes[i]] = true;
    assert_int_equal(pare_graph_index(g, &err), PARE_OK);
    assert_int_equal(pare_graph_remove_nodes(g, remove, &err), PARE_OK);
    pare_free(remove);
}

/* An additive mask before the Softmax: listed, not prunable, with why. */
static void test_masked_scores_not_prunable(void **state)
{
    pare_graph *g = load(TINY_VIT);
    pare_prune_heads *hs;
    pare_error err = {0};
    int s = pare_graph_find_node(g, "/layers.0/attn/Softmax"), scores, mask, masked, in[2];
    int64_t md[1] = {1};
    pare_tensor *m = pare_tensor_new(PARE_F32, 1, md);
    float *a;
    (void)state;

    assert_true(s >= 0);
    assert_non_null(m);
    pare_tensor_f32(m)[0] = 0;
    scores = g->nodes[s].inputs[0];
    mask = add_init(g, "mask", m);
    masked = add_value(g, "masked_scores");
    in[0] = scores;
    in[1] = mask;
    add_node(g, "Add", "/layers.0/attn/mask/Add", in, 2, masked);
    s = pare_graph_find_node(g, "/layers.0/attn/Softmax");
    g->nodes[s].inputs[0] = masked;
    assert_int_equal(pare_graph_index(g, &err), PARE_OK);
    a = run_random(g);
    pare_free(a);
    hs = heads_of(g);
    assert_int_equal(hs->n, 2);
    assert_false(hs->blocks[0].prunable);
    assert_non_null(strstr(hs->blocks[0].reason, "a mask or bias?"));
    assert_true(hs->blocks[1].prunable);
    pare_prune_heads_free(hs);
    pare_graph_free(g);
}

static void test_separate_qkv(void **state)
{
    pare_graph *orig = load(TINY_VIT), *g = load(TINY_VIT), *p = NULL, *r = NULL;
    pare_prune_heads *hs;
    pare_prune_result res;
    pare_error err = {0};
    double quarter[2] = {0.25, 0.25}, half[2] = {0.5, 0.5};
    const int64_t per_head = 64 * 3 * 16 + 3 * 16 + 16 * 64;
    uint8_t *buf = NULL;
    size_t len = 0;
    float *a, *b;
    (void)state;

    split_qkv(g, 0, false);
    split_qkv(g, 1, true);
    a = run_random(orig);
    b = run_random(g);
    assert_true(max_abs_diff(a, b, BATCH * 10) < 1e-5); /* the surgery kept the function */
    pare_free(a);
    pare_free(b);
    hs = heads_of(g);
    assert_int_equal(hs->n, 2);
    for (int i = 0; i < 2; i++) {
        char want[64];
        assert_true(hs->blocks[i].prunable);
        assert_int_equal(hs->blocks[i].n_qkv, 3);
        assert_int_equal(hs->blocks[i].num_heads, 4);
        assert_int_equal(hs->blocks[i].head_dim, 16);
        snprintf(want, sizeof want, "L%d.k.weight", i);
        assert_string_equal(hs->blocks[i].qkv_weight[1], want);
        snprintf(want, sizeof want, "/layers.%d/attn/v/Reshape", i);
        assert_string_equal(hs->blocks[i].reshape_heads[2], want);
    }
    /* zeroed heads go without changing outputs */
    zero_head(g, &hs->blocks[0], 3);
    zero_head(g, &hs->blocks[1], 0);
    assert_int_equal(pare_prune_heads_apply(g, hs, quarter, NULL, &p, NULL, &res, &err), PARE_OK);
    assert_int_equal(res.params_before - res.params_after, 2 * per_head);
    assert_int_equal(init(p, "L0.q.weight")->dims[1], 48);
    assert_int_equal(init(p, "L1.v.bias")->dims[0], 48);
    a = run_random(g);
    b = run_random(p);
    assert_true(max_abs_diff(a, b, BATCH * 10) < 1e-5);
    pare_free(a);
    pare_free(b);
    pare_graph_free(p);
    /* half: saved, reloaded, runs */
    assert_int_equal(pare_prune_heads_apply(g, hs, half, NULL, &p, NULL, &res, &err), PARE_OK);
    assert_int_equal(res.params_before - res.params_after, 4 * per_head);
    assert_int_equal(pare_graph_save_buffer(p, &buf, &len, &err), PARE_OK);
    assert_int_equal(pare_graph_load_buffer(buf, len, "split.onnx", &r, &err), PARE_OK);
    a = run_random(r);
    pare_free(a);
    pare_free(buf);
    pare_graph_free(r);
    pare_graph_free(p);
    pare_prune_heads_free(hs);
    pare_graph_free(g);
    pare_graph_free(orig);
}

/* Every allocation of find + apply failing in turn: ENOMEM, no leak, no
 * crash (run under ASan). */
static void test_out_of_memory(void **state)
{
    pare_graph *g = load(TINY_VIT);
    bool k0[4] = {true, false, true, false}, k1[4] = {false, true, true, true};
    const bool *keep[2] = {k0, k1};
    long start, total;
    (void)state;

    start = pare_alloc_count();
    {
        pare_prune_heads *hs = heads_of(g);
        pare_graph *p = NULL;
        pare_error err = {0};
        assert_int_equal(pare_prune_heads_apply_masks(g, hs, keep, &p, &err), PARE_OK);
        pare_graph_free(p);
        pare_prune_heads_free(hs);
    }
    total = pare_alloc_count() - start;
    assert_true(total > 50);
    for (long nth = 1; nth <= total; nth += 1 + total / 400) {
        pare_prune_heads *hs = NULL;
        pare_graph *p = NULL;
        pare_error err = {0};
        pare_status rc;
        pare_alloc_fail_at(nth);
        rc = pare_prune_heads_find(g, &hs, &err);
        if (rc == PARE_OK)
            rc = pare_prune_heads_apply_masks(g, hs, keep, &p, &err);
        pare_alloc_fail_at(0);
        if (rc != PARE_OK) {
            assert_int_equal(rc, PARE_ENOMEM);
            assert_null(p);
        }
        pare_graph_free(p);
        pare_prune_heads_free(hs);
    }
    pare_graph_free(g);
}

/* A CNN has no attention: zero blocks, not an error. */
static void test_no_attention(void **state)
{
    pare_graph *g = load(PARE_TEST_DATA "/resnet8.onnx");
    pare_prune_heads *hs = heads_of(g);
    (void)state;
    assert_int_equal(hs->n, 0);
    pare_prune_heads_free(hs);
    pare_graph_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_detects_tiny_vit_blocks),
        cmocka_unit_test(test_zero_head_prune_is_identity),
        cmocka_unit_test(test_half_heads_params_and_reload),
        cmocka_unit_test(test_shared_shape_constant_is_copied),
        cmocka_unit_test(test_other_pattern_not_prunable),
        cmocka_unit_test(test_softmax_axis_not_prunable),
        cmocka_unit_test(test_masked_scores_not_prunable),
        cmocka_unit_test(test_bad_criterion_and_ratio),
        cmocka_unit_test(test_activation_importance),
        cmocka_unit_test(test_separate_qkv),
        cmocka_unit_test(test_out_of_memory),
        cmocka_unit_test(test_no_attention),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
