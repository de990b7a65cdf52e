/* Attention-head pruning (TransformerPrune): find multi-head attention
 * blocks (fused QKV or separate Q, K, V projections) by their exact op
 * chain, rank heads (weight norms or their measured contribution), and
 * remove them from the QKV weights and biases, the output projection and
 * the Reshape shape constants (see prune.h for the chain). Anything that
 * does not match exactly is reported, never pruned. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pare/alloc.h"
#include "pare/exec.h"
#include "pare/prune.h"
#include "prune_internal.h"

/* ---- matching helpers ------------------------------------------------------------- */

typedef struct matcher {
    const pare_graph *g;
    pare_prune_attn *b;
} matcher;

static bool bad(matcher *m, const char *fmt, ...) PARE_PRINTF(2, 3);

/* Marks the block unprunable with the first reason found; returns false. */
static bool bad(matcher *m, const char *fmt, ...)
{
    va_list ap;
    if (!m->b->prunable)
        return false;
    m->b->prunable = false;
    va_start(ap, fmt);
    vsnprintf(m->b->reason, sizeof m->b->reason, fmt, ap);
    va_end(ap);
    return false;
}

static const char *nlabel(const pare_graph *g, int n)
{
    return g->nodes[n].name && g->nodes[n].name[0] ? g->nodes[n].name : g->nodes[n].op_type;
}

static bool is_op(const pare_graph *g, int n, const char *op)
{
    return n >= 0 && strcmp(g->nodes[n].op_type, op) == 0 && !g->nodes[n].domain[0];
}

/* Producer of value v when it is an `op` node, else -1. */
static int made_by(const pare_graph *g, int v, const char *op)
{
    if (v < 0 || g->values[v].init)
        return -1;
    return is_op(g, g->values[v].producer, op) ? g->values[v].producer : -1;
}

static bool is_activation(const pare_graph *g, int v)
{
    return v >= 0 && !g->values[v].init && prune_resolve_init(g, v) < 0 &&
           made_by(g, v, "Constant") < 0;
}

/* The constant tensor behind v: an initializer or a Constant node's `value`. */
static pare_tensor *const_tensor(const pare_graph *g, int v)
{
    int n;
    const pare_attr *a;
    if (v < 0)
        return NULL;
    if (g->values[v].init)
        return g->values[v].init;
    n = made_by(g, v, "Constant");
    if (n < 0)
        return NULL;
    a = pare_node_attr(&g->nodes[n], "value");
    return a && a->type == PARE_ATTR_TENSOR ? a->t : NULL;
}

/* v is read by exactly one node (which is returned) and is no model output. */
static int sole_reader(matcher *m, int v)
{
    const pare_value *val = &m->g->values[v];
    if (val->is_output) {
        bad(m, "'%s' is a model output", val->name);
        return -1;
    }
    if (val->n_consumers != 1) {
        bad(m, "'%s' is read by %d nodes, not 1", val->name, val->n_consumers);
        return -1;
    }
    return val->consumers[0];
}

static bool perm_is(const pare_graph *g, int n, const int64_t *want, int len)
{
    int k = 0;
    const int64_t *p = pare_node_attr_ints(&g->nodes[n], "perm", &k);
    if (!p || k != len)
        return false;
    for (int i = 0; i < len; i++)
        if (p[i] != want[i])
            return false;
    return true;
}

/* Value v through an optional Mul/Div by a scalar constant: returns the
 * value before it (v itself when there is none). */
static int skip_scale_back(const pare_graph *g, int v)
{
    int n = made_by(g, v, "Mul");
    if (n < 0)
        n = made_by(g, v, "Div");
    if (n < 0 || g->nodes[n].n_inputs != 2)
        return v;
    for (int i = 0; i < 2; i++) {
        const pare_tensor *t = const_tensor(g, g->nodes[n].inputs[1 - i]);
        if (i == 1 && strcmp(g->nodes[n].op_type, "Div") == 0)
            break; /* c / x is no scale */
        if (t && pare_tensor_numel(t) == 1 && is_activation(g, g->nodes[n].inputs[i]))
            return g->nodes[n].inputs[i];
    }
    return v;
}

/* Checks that each value from `from` up to (excluding) `to` along single
 * readers is read once: the scale nodes skipped by skip_scale_back. */
static bool chain_single(matcher *m, int from, int to_node)
{
    for (int hops = 0; hops < 4; hops++) {
        int r = sole_reader(m, from);
        if (r < 0)
            return false;
        if (r == to_node)
            return true;
        from = m->g->nodes[r].outputs[0];
    }
    return bad(m, "unexpected ops between '%s' and '%s'", m->g->values[from].name,
               nlabel(m->g, to_node));
}

/* Scalar int64 constant index of a Gather. */
static bool gather_index(const pare_graph *g, int n, int64_t *idx)
{
    const pare_tensor *t;
    if (g->nodes[n].n_inputs != 2 || pare_node_attr_int(&g->nodes[n], "axis", 0) != 0)
        return false;
    t = const_tensor(g, g->nodes[n].inputs[1]);
    if (!t || t->ndim != 0 || (t->dtype != PARE_I64 && t->dtype != PARE_I32))
        return false;
    *idx = pare_tensor_get_i64(t, 0);
    return true;
}

/* Direct f32 initializer of rank `ndim` read only by node n. */
static int own_weight(matcher *m, int v, int ndim, const char *what)
{
    const pare_value *val = &m->g->values[v];
    if (!val->init || val->init->dtype != PARE_F32 || val->init->ndim != ndim) {
        bad(m, "the %s '%s' is not a float %d-D initializer", what, val->name, ndim);
        return -1;
    }
    if (val->n_consumers != 1 || val->is_input || val->is_output) {
        bad(m, "the %s '%s' is shared with other nodes", what, val->name);
        return -1;
    }
    return v;
}

/* The int64 shape constant of a Reshape. */
static const pare_tensor *reshape_shape(matcher *m, int n)
{
    const pare_node *node = &m->g->nodes[n];
    const pare_tensor *t = node->n_inputs == 2 ? const_tensor(m->g, node->inputs[1]) : NULL;
    if (!t || t->dtype != PARE_I64 || t->ndim != 1) {
        bad(m, "the shape of '%s' is computed, not an int64 constant", nlabel(m->g, n));
        return NULL;
    }
    if (pare_node_attr_int(&m->g->nodes[n], "allowzero", 0) != 0) {
        bad(m, "'%s' has allowzero set", nlabel(m->g, n));
        return NULL;
    }
    return t;
}

static char *dup_name(const char *s, bool *oom)
{
    char *r = pare_strdup(s ? s : "");
    if (!r)
        *oom = true;
    return r;
}

/* The projection feeding Reshape r: MatMul(x, W [E, cols]) [+ Add(b [cols])].
 * Records it as input projection j of the block. */
static bool match_in_proj(matcher *m, int r, int j, int64_t cols, bool *oom)
{
    const pare_graph *g = m->g;
    pare_prune_attn *b = m->b;
    int add, mm, vw, vb = -1;

    if (sole_reader(m, g->nodes[r].inputs[0]) < 0)
        return false;
    mm = add = made_by(g, g->nodes[r].inputs[0], "Add");
    if (add >= 0) {
        mm = -1;
        if (sole_reader(m, g->nodes[add].outputs[0]) < 0)
            return false;
        for (int i = 0; i < 2 && g->nodes[add].n_inputs == 2; i++)
            if (g->values[g->nodes[add].inputs[i]].init) {
                vb = g->nodes[add].inputs[i];
                mm = made_by(g, g->nodes[add].inputs[1 - i], "MatMul");
            }
        if (vb < 0 || mm < 0)
            return bad(m, "'%s' is not a bias Add after a MatMul", nlabel(g, add));
        if (own_weight(m, vb, 1, "bias") < 0)
            return false;
        if (g->values[vb].init->dims[0] != cols)
            return bad(m, "the bias '%s' has %lld entries, not %lld", g->values[vb].name,
                       (long long)g->values[vb].init->dims[0], (long long)cols);
        b->qkv_bias[j] = dup_name(g->values[vb].name, oom);
    } else {
        mm = made_by(g, g->nodes[r].inputs[0], "MatMul");
    }
    if (mm < 0)
        return bad(m, "'%s' does not read a projection MatMul", nlabel(g, r));
    if (sole_reader(m, g->nodes[mm].outputs[0]) < 0)
        return false;
    b->qkv_node[j] = dup_name(nlabel(g, mm), oom);
    vw = own_weight(m, g->nodes[mm].inputs[1], 2, "projection weight");
    if (vw < 0)
        return false;
    b->qkv_weight[j] = dup_name(g->values[vw].name, oom);
    if (g->values[vw].init->dims[1] != cols)
        return bad(m, "the weight '%s' has %lld columns, not %lld", g->values[vw].name,
                   (long long)g->values[vw].init->dims[1], (long long)cols);
    return true;
}

/* A Reshape whose int64 shape constant has rank `rank`, ends in
 * [.., H, D] (with `three` before them when > 0), and no 0 entries. */
static bool split_shape(matcher *m, int r, int rank, int three, int64_t *H, int64_t *D)
{
    const pare_tensor *sh = reshape_shape(m, r);
    const int64_t *p;
    if (!sh)
        return false;
    p = sh->data;
    for (int i = 0; i < sh->dims[0]; i++)
        if (p[i] == 0)
            return bad(m, "the shape of '%s' copies input dims (0 entries)", nlabel(m->g, r));
    if (sh->dims[0] != rank || p[rank - 2] < 1 || p[rank - 1] < 1 ||
        (three && p[rank - 3] != three))
        return bad(m, "the shape of '%s' is not [.., .., %sheads, head_dim]", nlabel(m->g, r),
                   three ? "3, " : "");
    *H = p[rank - 2];
    *D = p[rank - 1];
    return true;
}

/* Fused QKV: q, k, v are Gathers 0, 1, 2 (axis 0) of
 * Transpose(perm [2, 0, 3, 1, 4]) of Reshape([.., .., 3, H, D]) of one projection. */
static bool match_fused(matcher *m, int gq, int gk, int gv, int64_t *H, int64_t *D, bool *oom)
{
    const pare_graph *g = m->g;
    static const int64_t perm_split[] = {2, 0, 3, 1, 4};
    int gs[3] = {gq, gk, gv}, tr, r1;

    tr = made_by(g, g->nodes[gq].inputs[0], "Transpose");
    if (tr < 0 || g->nodes[gk].inputs[0] != g->nodes[gq].inputs[0] ||
        g->nodes[gv].inputs[0] != g->nodes[gq].inputs[0])
        return bad(m, "q, k and v of '%s' do not come from one Transpose", m->b->name);
    for (int i = 0; i < 3; i++) {
        int64_t got;
        if (!gather_index(g, gs[i], &got) || got != i)
            return bad(m, "'%s' does not take %s at index %d of axis 0", nlabel(g, gs[i]),
                       i == 0 ? "q" : i == 1 ? "k" : "v", i);
    }
    if (g->values[g->nodes[tr].outputs[0]].n_consumers != 3 ||
        g->values[g->nodes[tr].outputs[0]].is_output)
        return bad(m, "'%s' has readers besides the q, k, v Gathers", nlabel(g, tr));
    if (!perm_is(g, tr, perm_split, 5))
        return bad(m, "'%s' does not have perm [2, 0, 3, 1, 4]", nlabel(g, tr));
    r1 = made_by(g, g->nodes[tr].inputs[0], "Reshape");
    if (r1 < 0)
        return bad(m, "'%s' does not read a Reshape", nlabel(g, tr));
    if (sole_reader(m, g->nodes[r1].outputs[0]) < 0 || !split_shape(m, r1, 5, 3, H, D))
        return false;
    m->b->n_qkv = 1;
    m->b->reshape_heads[0] = dup_name(nlabel(g, r1), oom);
    return match_in_proj(m, r1, 0, 3 * *H * *D, oom);
}

/* Separate projections: q, k, v are Transpose(Reshape([.., .., H, D]) of
 * their own MatMul), the Transpose's perm given per input. */
static bool match_separate(matcher *m, const int tr[3], int64_t *H, int64_t *D, bool *oom)
{
    const pare_graph *g = m->g;
    for (int j = 0; j < 3; j++) {
        int64_t h, d;
        int r = made_by(g, g->nodes[tr[j]].inputs[0], "Reshape");
        if (r < 0)
            return bad(m, "'%s' does not read a Reshape", nlabel(g, tr[j]));
        if (sole_reader(m, g->nodes[r].outputs[0]) < 0 || !split_shape(m, r, 4, 0, &h, &d))
            return false;
        if (j > 0 && (h != *H || d != *D))
            return bad(m, "q, k and v of '%s' split into different heads", m->b->name);
        *H = h;
        *D = d;
        m->b->reshape_heads[j] = dup_name(nlabel(g, r), oom);
        if (!match_in_proj(m, r, j, h * d, oom))
            return false;
    }
    m->b->n_qkv = 3;
    return true;
}

/* Matches the chain around Softmax node s into m->b (prunable on success). */
static void match_block(matcher *m, int s, bool *oom)
{
    const pare_graph *g = m->g;
    pare_prune_attn *b = m->b;
    static const int64_t perm_kt[] = {0, 1, 3, 2}, perm_heads[] = {0, 2, 1, 3},
                         perm_heads_kt[] = {0, 2, 3, 1};
    int qk, av, kt, q, v, t2, r2, proj, vp;
    int64_t axis, H = 0, D = 0, HD;
    const pare_tensor *sh2;

    axis = pare_node_attr_int(&g->nodes[s], "axis", pare_graph_opset(g, "") >= 13 ? -1 : 1);
    if (axis != -1 && axis != 3) {
        bad(m, "'%s' normalizes axis %lld, not the keys axis", nlabel(g, s), (long long)axis);
        return;
    }
    /* backwards: scores = [scale](MatMul(q', kT)) */
    qk = made_by(g, skip_scale_back(g, g->nodes[s].inputs[0]), "MatMul");
    if (qk < 0)
        return (void)bad(m, "'%s' reads more than a scaled MatMul of queries and keys "
                         "(a mask or bias?)", nlabel(g, s));
    if (!chain_single(m, g->nodes[qk].outputs[0], s))
        return;
    /* forwards: MatMul(probs, v) */
    av = sole_reader(m, g->nodes[s].outputs[0]);
    if (av < 0)
        return;
    if (!is_op(g, av, "MatMul") || g->nodes[av].inputs[0] != g->nodes[s].outputs[0])
        return (void)bad(m, "'%s' feeds '%s', not a MatMul with the values", nlabel(g, s),
                         nlabel(g, av));
    b->context = dup_name(g->values[g->nodes[av].outputs[0]].name, oom);
    kt = made_by(g, g->nodes[qk].inputs[1], "Transpose");
    if (kt < 0 || !(perm_is(g, kt, perm_kt, 4) || perm_is(g, kt, perm_heads_kt, 4)))
        return (void)bad(m, "the keys of '%s' are not a Transpose with perm [0, 1, 3, 2]",
                         nlabel(g, qk));
    if (!chain_single(m, g->nodes[kt].outputs[0], qk))
        return;
    q = skip_scale_back(g, g->nodes[qk].inputs[0]);
    v = g->nodes[av].inputs[1];
    if (made_by(g, q, "Gather") >= 0) {
        int gq = made_by(g, q, "Gather"), gv = made_by(g, v, "Gather");
        int gk = perm_is(g, kt, perm_kt, 4)
                     ? made_by(g, skip_scale_back(g, g->nodes[kt].inputs[0]), "Gather") : -1;
        if (gk < 0 || gv < 0)
            return (void)bad(m, "q, k and v of '%s' are not Gathers of one fused projection",
                             nlabel(g, s));
        if (!chain_single(m, g->nodes[gq].outputs[0], qk) ||
            !chain_single(m, g->nodes[gk].outputs[0], kt) ||
            !chain_single(m, g->nodes[gv].outputs[0], av) ||
            !match_fused(m, gq, gk, gv, &H, &D, oom))
            return;
    } else {
        /* k: Transpose [0, 2, 3, 1] straight from the Reshape, or
           Transpose [0, 1, 3, 2] of Transpose [0, 2, 1, 3] */
        int tr[3];
        tr[0] = made_by(g, q, "Transpose");
        tr[1] = perm_is(g, kt, perm_heads_kt, 4)
                    ? kt : made_by(g, skip_scale_back(g, g->nodes[kt].inputs[0]), "Transpose");
        tr[2] = made_by(g, v, "Transpose");
        for (int j = 0; j < 3; j++)
            if (tr[j] < 0 || (tr[j] != kt && !perm_is(g, tr[j], perm_heads, 4)))
                return (void)bad(m, "q, k and v of '%s' are neither Gathers of a fused QKV nor "
                                 "Transposes [0, 2, 1, 3] of separate projections", nlabel(g, s));
        if (!chain_single(m, g->nodes[tr[0]].outputs[0], qk) ||
            (tr[1] != kt && !chain_single(m, g->nodes[tr[1]].outputs[0], kt)) ||
            !chain_single(m, g->nodes[tr[2]].outputs[0], av) ||
            !match_separate(m, tr, &H, &D, oom))
            return;
    }
    b->num_heads = (int)H;
    b->head_dim = (int)D;
    HD = H * D;
    /* after the values: Transpose, Reshape to H*D, projection */
    t2 = sole_reader(m, g->nodes[av].outputs[0]);
    if (t2 < 0)
        return;
    if (!is_op(g, t2, "Transpose") || !perm_is(g, t2, perm_heads, 4))
        return (void)bad(m, "'%s' is not a Transpose with perm [0, 2, 1, 3]", nlabel(g, t2));
    r2 = sole_reader(m, g->nodes[t2].outputs[0]);
    if (r2 < 0)
        return;
    if (!is_op(g, r2, "Reshape") || g->nodes[r2].inputs[0] != g->nodes[t2].outputs[0])
        return (void)bad(m, "'%s' is not a Reshape merging the heads", nlabel(g, r2));
    sh2 = reshape_shape(m, r2);
    if (!sh2)
        return;
    {
        const int64_t *p = sh2->data;
        int64_t r = sh2->dims[0], minus = 0;
        for (int64_t i = 0; i < r; i++)
            minus += p[i] == -1;
        if ((r != 2 && r != 3) || p[r - 1] == 0 || (r == 2 && p[0] == 0) ||
            !(p[r - 1] == HD || (p[r - 1] == -1 && minus == 1)))
            return (void)bad(m, "the shape of '%s' does not end in heads * head_dim (%lld)",
                             nlabel(g, r2), (long long)HD);
        b->merge_has_hd = p[r - 1] == HD;
    }
    b->reshape_merge = dup_name(nlabel(g, r2), oom);
    proj = sole_reader(m, g->nodes[r2].outputs[0]);
    if (proj < 0)
        return;
    if (!is_op(g, proj, "MatMul") || g->nodes[proj].inputs[0] != g->nodes[r2].outputs[0])
        return (void)bad(m, "'%s' is not read by an output projection MatMul", nlabel(g, r2));
    b->proj_node = dup_name(nlabel(g, proj), oom);
    vp = own_weight(m, g->nodes[proj].inputs[1], 2, "projection weight");
    if (vp < 0)
        return;
    b->proj_weight = dup_name(g->values[vp].name, oom);
    if (g->values[vp].init->dims[0] != HD)
        bad(m, "the projection weight '%s' has %lld rows, not %lld", g->values[vp].name,
            (long long)g->values[vp].init->dims[0], (long long)HD);
}

/* A Softmax is an attention candidate when its input is a MatMul of two
 * activations, possibly behind a few element-wise ops (scale, mask): then
 * it is listed, prunable or with the reason why not. */
static bool is_candidate(const pare_graph *g, int s)
{
    static const char *const ew[] = {"Mul", "Div", "Add", "Sub", "Where"};
    int v;
    if (!is_op(g, s, "Softmax") || g->nodes[s].n_inputs < 1)
        return false;
    v = g->nodes[s].inputs[0];
    for (int hops = 0; hops < 4 && v >= 0 && !g->values[v].init; hops++) {
        int n = g->values[v].producer, next = -1;
        if (is_op(g, n, "MatMul"))
            return is_activation(g, g->nodes[n].inputs[0]) &&
                   is_activation(g, g->nodes[n].inputs[1]);
        for (size_t k = 0; n >= 0 && k < sizeof ew / sizeof ew[0]; k++)
            if (is_op(g, n, ew[k]))
                for (int i = 0; i < g->nodes[n].n_inputs && next < 0; i++)
                    if (is_activation(g, g->nodes[n].inputs[i]))
                        next = g->nodes[n].inputs[i];
        v = next;
    }
    return false;
}

static void attn_fini(pare_prune_attn *b)
{
    pare_free(b->name);
    for (int j = 0; j < 3; j++) {
        pare_free(b->qkv_weight[j]);
        pare_free(b->qkv_bias[j]);
        pare_free(b->qkv_node[j]);
        pare_free(b->reshape_heads[j]);
    }
    pare_free(b->proj_weight);
    pare_free(b->proj_node);
    pare_free(b->reshape_merge);
    pare_free(b->context);
    pare_free(b->importance);
}

void pare_prune_heads_free(pare_prune_heads *hs)
{
    if (!hs)
        return;
    for (int i = 0; i < hs->n; i++)
        attn_fini(&hs->blocks[i]);
    pare_free(hs->blocks);
    pare_free(hs);
}

pare_status pare_prune_heads_find(const pare_graph *g, pare_prune_heads **out, pare_error *err)
{
    pare_prune_heads *hs = pare_calloc(1, sizeof *hs);
    bool oom = !hs;
    int n = 0;

    *out = NULL;
    for (int s = 0; s < g->n_nodes && !oom; s++)
        n += is_candidate(g, s);
    if (!oom && n)
        hs->blocks = pare_calloc((size_t)n, sizeof *hs->blocks);
    if (!oom && n && !hs->blocks)
        oom = true;
    for (int s = 0; s < g->n_nodes && !oom; s++) {
        matcher m = {g, NULL};
        char buf[64];
        if (!is_candidate(g, s))
            continue;
        m.b = &hs->blocks[hs->n++];
        m.b->prunable = true;
        snprintf(buf, sizeof buf, "%s #%d", g->nodes[s].op_type, s);
        m.b->name = dup_name(g->nodes[s].name && g->nodes[s].name[0] ? g->nodes[s].name : buf,
                             &oom);
        match_block(&m, s, &oom);
        if (m.b->prunable && m.b->num_heads < 2)
            bad(&m, "the block has a single head");
    }
    if (oom) {
        pare_prune_heads_free(hs);
        return pare_fail(err, PARE_ENOMEM, g->path, "out of memory finding attention heads");
    }
    *out = hs;
    return PARE_OK;
}

/* ---- scores and keep masks --------------------------------------------------------- */

static const pare_tensor *init_of(const pare_graph *g, const char *name)
{
    int v = name ? pare_graph_find_value(g, name) : -1;
    return v >= 0 ? g->values[v].init : NULL;
}

/* Sum of f(w) over rows [r0, r1) and columns [c0, c1) of a 2-D tensor. */
static double block_sum(const pare_tensor *t, int64_t r0, int64_t r1, int64_t c0, int64_t c1, int p)
{
    const float *w = pare_tensor_f32(t);
    double s = 0;
    for (int64_t r = r0; r < r1; r++)
        for (int64_t c = c0; c < c1; c++) {
            double x = w[r * t->dims[1] + c];
            s += p == 1 ? fabs(x) : x * x;
        }
    return p == 1 ? s : sqrt(s);
}

pare_status pare_prune_heads_score(const pare_graph *g, const pare_prune_attn *b,
                                   const char *criterion, uint64_t seed, double *scores,
                                   pare_error *err)
{
    const char *crit = criterion ? criterion : "l1_norm";
    const pare_tensor *p = init_of(g, b->proj_weight);
    int64_t H = b->num_heads, D = b->head_dim, HD = H * D, parts = b->n_qkv == 1 ? 3 : 1;
    int pw;

    if (strcmp(crit, "activation") == 0) {
        if (!b->importance) {
            pare_fail(err, PARE_EINPUT, g->path, "criterion 'activation' needs data to rank the "
                      "heads of '%s'", b->name);
            pare_error_hint(err, "give --data SPEC (pare prune) or call "
                            "pare_prune_heads_importance first");
            return PARE_EINPUT;
        }
        memcpy(scores, b->importance, (size_t)H * sizeof *scores);
        return PARE_OK;
    }
    if (strcmp(crit, "random") == 0) {
        uint64_t st = prune_fnv1a(1469598103934665603ull ^ seed, b->name, strlen(b->name));
        for (int64_t h = 0; h < H; h++)
            scores[h] = prune_uniform(&st);
        return PARE_OK;
    }
    if (strcmp(crit, "l1_norm") != 0 && strcmp(crit, "l2_norm") != 0) {
        pare_fail(err, PARE_EINPUT, g->path, "criterion '%s' does not rank attention heads", crit);
        pare_error_hint(err, "use l1_norm, l2_norm, random or activation (with data)");
        return PARE_EINPUT;
    }
    if (!b->prunable || !p || p->ndim != 2 || p->dims[0] != HD || p->dtype != PARE_F32)
        return pare_fail(err, PARE_EINPUT, g->path, "attention block '%s' cannot be ranked",
                         b->name);
    for (int j = 0; j < b->n_qkv; j++) {
        const pare_tensor *w = init_of(g, b->qkv_weight[j]);
        if (!w || w->ndim != 2 || w->dims[1] != parts * HD || w->dtype != PARE_F32)
            return pare_fail(err, PARE_EINPUT, g->path, "attention block '%s' cannot be ranked",
                             b->name);
    }
    pw = crit[1] == '1' ? 1 : 2;
    for (int64_t h = 0; h < H; h++) {
        double s = block_sum(p, h * D, (h + 1) * D, 0, p->dims[1], pw);
        for (int j = 0; j < b->n_qkv; j++) {
            const pare_tensor *w = init_of(g, b->qkv_weight[j]);
            for (int64_t part = 0; part < parts; part++)
                s += block_sum(w, 0, w->dims[0], part * HD + h * D, part * HD + (h + 1) * D, pw);
        }
        scores[h] = s;
    }
    return PARE_OK;
}

/* Adds, for the first n samples of context ctx [B, H, T, D], the L1 norm of
 * each head's contribution ctx_h(t) . P[h*D .. h*D+D-1, :], averaged over
 * the T tokens, to acc[H]. tmp holds P's columns. */
static void add_contributions(const pare_tensor *ctx, const pare_tensor *p, int64_t n, double *acc,
                              float *tmp)
{
    int64_t H = ctx->dims[1], T = ctx->dims[2], D = ctx->dims[3], E = p->dims[1];
    const float *c = pare_tensor_f32(ctx), *w = pare_tensor_f32(p);
    for (int64_t b = 0; b < n; b++)
        for (int64_t h = 0; h < H; h++)
            for (int64_t t = 0; t < T; t++) {
                const float *x = c + ((b * H + h) * T + t) * D;
                double s = 0;
                memset(tmp, 0, (size_t)E * sizeof *tmp);
                for (int64_t d = 0; d < D; d++) {
                    const float *row = w + (h * D + d) * E;
                    for (int64_t e = 0; e < E; e++)
                        tmp[e] += x[d] * row[e];
                }
                for (int64_t e = 0; e < E; e++)
                    s += fabs(tmp[e]);
                acc[h] += s / (double)T;
            }
}

pare_status pare_prune_heads_importance(const pare_graph *g, pare_prune_heads *hs,
                                        const pare_dataset *ds, int64_t limit, int batch,
                                        int n_threads, pare_error *err)
{
    pare_exec_opts opts = {.batch = batch > 0 ? batch : 64, .n_threads = n_threads};
    const char **taps = pare_calloc((size_t)(hs->n ? hs->n : 1), sizeof *taps);
    int64_t count = pare_dataset_count(ds), seen = 0, max_e = 1;
    float *tmp = NULL;
    pare_exec *x = NULL;
    pare_status rc = PARE_OK;

    if (limit > 0 && limit < count)
        count = limit;
    if (!taps)
        return pare_fail(err, PARE_ENOMEM, g->path, "out of memory ranking heads");
    for (int i = 0; i < hs->n && rc == PARE_OK; i++) {
        pare_prune_attn *b = &hs->blocks[i];
        const pare_tensor *p = init_of(g, b->proj_weight);
        if (!b->prunable)
            continue;
        if (!p || p->ndim != 2 || p->dims[0] != (int64_t)b->num_heads * b->head_dim) {
            rc = pare_fail(err, PARE_EINPUT, g->path, "attention block '%s' was not found on "
                           "this model", b->name);
            break;
        }
        pare_free(b->importance);
        b->importance = pare_calloc((size_t)b->num_heads, sizeof *b->importance);
        if (!b->importance)
            rc = pare_fail(err, PARE_ENOMEM, g->path, "out of memory ranking heads");
        max_e = p->dims[1] > max_e ? p->dims[1] : max_e;
        taps[opts.n_taps++] = b->context;
    }
    opts.taps = taps;
    tmp = rc == PARE_OK ? pare_alloc((size_t)max_e * sizeof *tmp) : NULL;
    if (rc == PARE_OK && !tmp)
        rc = pare_fail(err, PARE_ENOMEM, g->path, "out of memory ranking heads");
    if (rc == PARE_OK)
        rc = pare_exec_new(g, &opts, &x, err);
    for (int64_t pos = 0; rc == PARE_OK && pos < count; pos += opts.batch) {
        int64_t n = count - pos < opts.batch ? count - pos : opts.batch;
        rc = pare_dataset_fill(ds, pos, n, pare_exec_input(x, 0), NULL, err);
        if (rc == PARE_OK)
            rc = pare_exec_run(x, err);
        for (int i = 0; i < hs->n && rc == PARE_OK; i++) {
            pare_prune_attn *b = &hs->blocks[i];
            const pare_tensor *ctx;
            if (!b->prunable)
                continue;
            ctx = pare_exec_value(x, b->context);
            if (!ctx || ctx->dtype != PARE_F32 || ctx->ndim != 4 || ctx->dims[0] < n ||
                ctx->dims[1] != b->num_heads || ctx->dims[3] != b->head_dim) {
                rc = pare_fail(err, PARE_EINPUT, g->path, "the heads' output '%s' is not "
                               "[N, %d, T, %d]", b->context, b->num_heads, b->head_dim);
                break;
            }
            add_contributions(ctx, init_of(g, b->proj_weight), n, b->importance, tmp);
        }
        seen += n;
    }
    for (int i = 0; i < hs->n && rc == PARE_OK; i++)
        for (int h = 0; hs->blocks[i].importance && h < hs->blocks[i].num_heads; h++)
            hs->blocks[i].importance[h] /= (double)(seen ? seen : 1);
    pare_exec_free(x);
    pare_free(tmp);
    pare_free(taps);
    return rc;
}

typedef struct scored {
    double s;
    int i;
} scored;

static int cmp_scored(const void *a, const void *b)
{
    const scored *x = a, *y = b;
    if (x->s != y->s)
        return x->s < y->s ? -1 : 1;
    return (x->i > y->i) - (x->i < y->i);
}

pare_status pare_prune_heads_keep_mask(const pare_graph *g, const pare_prune_attn *b, double ratio,
                                       const pare_prune_opts *opts, bool *keep, pare_error *err)
{
    int H = b->num_heads;
    int64_t drop = llround(ratio * (double)H);
    double scores[256];
    scored order[256];
    pare_status rc;

    if (H < 1 || H > 256)
        return pare_fail(err, PARE_EINPUT, g->path, "attention block '%s' has %d heads (1..256)",
                         b->name, H);
    for (int h = 0; h < H; h++)
        keep[h] = true;
    if (drop > H - 1)
        drop = H - 1;
    if (drop <= 0)
        return PARE_OK;
    rc = pare_prune_heads_score(g, b, opts ? opts->criterion : NULL, opts ? opts->seed : 0, scores,
                                err);
    if (rc != PARE_OK)
        return rc;
    for (int h = 0; h < H; h++) {
        order[h].s = isnan(scores[h]) ? -INFINITY : scores[h];
        order[h].i = h;
    }
    qsort(order, (size_t)H, sizeof *order, cmp_scored);
    for (int64_t i = 0; i < drop; i++)
        keep[order[i].i] = false;
    return PARE_OK;
}

/* ---- the shrink ---------------------------------------------------------------------- */

/* Keeps the columns (axis 1 of a 2-D tensor, or entries of a 1-D one) or
 * rows (axis 0, 2-D) of kept heads: index i of the [parts * H * D] axis
 * belongs to head (i % (H*D)) / D. */
static pare_tensor *slice_heads(const pare_tensor *t, int axis, int64_t parts, int64_t H, int64_t D,
                                const bool *keep, int64_t kept)
{
    int64_t dims[PARE_MAX_DIMS], rows, cols, HD = H * D;
    bool by_col = t->ndim == 1 || axis == 1;   /* else rows of a 2-D tensor */
    const float *src = pare_tensor_f32(t);
    float *dst;
    pare_tensor *r;

    memcpy(dims, t->dims, sizeof dims);
    dims[axis] = parts * kept * D;
    r = pare_tensor_new(PARE_F32, t->ndim, dims);
    if (!r)
        return NULL;
    dst = pare_tensor_f32(r);
    rows = t->ndim == 2 ? t->dims[0] : 1;
    cols = t->ndim == 2 ? t->dims[1] : t->dims[0];
    for (int64_t i = 0; i < rows; i++) {
        if (!by_col && !keep[(i % HD) / D])
            continue;
        for (int64_t j = 0; j < cols; j++)
            if (!by_col || keep[(j % HD) / D])
                *dst++ = src[i * cols + j];
    }
    return r;
}

/* Replaces the initializer `name` of c by its head slice. */
static pare_status shrink(pare_graph *c, const char *name, int axis, int64_t parts,
                          const pare_prune_attn *b, const bool *keep, int64_t kept, pare_error *err)
{
    int v = pare_graph_find_value(c, name);
    int64_t want = parts * b->num_heads * b->head_dim;
    pare_tensor *t;
    if (v < 0 || !c->values[v].init || c->values[v].init->dtype != PARE_F32 ||
        c->values[v].init->dims[axis] != want)
        return pare_fail(err, PARE_EINTERNAL, c->path, "'%s' of attention block '%s' does not "
                         "match the model", name, b->name);
    t = slice_heads(c->values[v].init, axis, parts, b->num_heads, b->head_dim, keep, kept);
    if (!t)
        return pare_fail(err, PARE_ENOMEM, c->path, "out of memory pruning '%s'", b->name);
    pare_graph_set_initializer(c, v, t);
    return PARE_OK;
}

/* Sets entry `at` (< 0: counted from the end) of the int64 shape constant
 * of Reshape `node` (a name) from `from` to `to`: in place when the Reshape
 * is its only reader, else on a fresh initializer the Reshape alone reads. */
static pare_status set_shape(pare_graph *c, const char *node, int at, int64_t from, int64_t to,
                             pare_error *err)
{
    int n = pare_graph_find_node(c, node), v;
    pare_tensor *t;
    char base[256], buf[256];
    if (n < 0 || c->nodes[n].n_inputs != 2)
        return pare_fail(err, PARE_EINTERNAL, c->path, "Reshape '%s' is gone", node);
    v = c->nodes[n].inputs[1];
    t = const_tensor(c, v);
    if (t && t->ndim == 1 && at < 0)
        at += (int)t->dims[0];
    if (!t || t->dtype != PARE_I64 || t->ndim != 1 || at < 0 || at >= t->dims[0] ||
        ((int64_t *)t->data)[at] != from)
        return pare_fail(err, PARE_EINTERNAL, c->path, "the shape of '%s' does not match", node);
    if (c->values[v].n_consumers == 1 && !c->values[v].is_output) {
        ((int64_t *)t->data)[at] = to;
        return PARE_OK;
    }
    t = pare_tensor_dup(t);
    if (!t)
        return pare_fail(err, PARE_ENOMEM, c->path, "out of memory pruning '%s'", node);
    ((int64_t *)t->data)[at] = to;
    snprintf(base, sizeof base, "%s_pruned_shape", node);
    v = pare_graph_add_initializer(c, pare_graph_unique_name(c, base, buf, sizeof buf), t, err);
    if (v < 0)
        return (pare_status)v;
    c->nodes[n].inputs[1] = v;
    return pare_graph_index(c, err);
}

pare_status pare_prune_heads_apply_masks(const pare_graph *g, const pare_prune_heads *hs,
                                         const bool *const *keep, pare_graph **out,
                                         pare_error *err)
{
    pare_graph *c = NULL;
    pare_status rc;
    bool changed = false;

    *out = NULL;
    rc = pare_graph_clone(g, &c, err);
    if (rc != PARE_OK)
        return rc;
    for (int i = 0; i < hs->n && rc == PARE_OK; i++) {
        const pare_prune_attn *b = &hs->blocks[i];
        int64_t kept = 0, H = b->num_heads, D = b->head_dim;
        if (!keep[i])
            continue;
        for (int h = 0; h < H; h++)
            kept += keep[i][h];
        if (kept == H)
            continue;
        if (!b->prunable) {
            rc = pare_fail(err, PARE_EINPUT, g->path, "attention block '%s' cannot be pruned",
                           b->name);
            pare_error_hint(err, "%s", b->reason);
            break;
        }
        if (kept == 0) {
            rc = pare_fail(err, PARE_EINPUT, g->path, "attention block '%s' would lose every head",
                           b->name);
            break;
        }
        changed = true;
        for (int j = 0; j < b->n_qkv && rc == PARE_OK; j++) {
            int64_t parts = b->n_qkv == 1 ? 3 : 1;
            rc = shrink(c, b->qkv_weight[j], 1, parts, b, keep[i], kept, err);
            if (rc == PARE_OK && b->qkv_bias[j])
                rc = shrink(c, b->qkv_bias[j], 0, parts, b, keep[i], kept, err);
            if (rc == PARE_OK)
                rc = set_shape(c, b->reshape_heads[j], -2, H, kept, err);
        }
        if (rc == PARE_OK)
            rc = shrink(c, b->proj_weight, 0, 1, b, keep[i], kept, err);
        if (rc == PARE_OK && b->merge_has_hd)
            rc = set_shape(c, b->reshape_merge, -1, H * D, kept * D, err);
    }
    if (rc == PARE_OK && changed) {
        /* declared shapes of the attention values are stale now */
        for (int v = 0; v < c->n_values; v++) {
            pare_value *val = &c->values[v];
            if (val->init || val->is_input || val->is_output)
                continue;
            val->has_value_info = false;
            val->ndim = -1;
        }
        rc = pare_graph_index(c, err);
    }
    if (rc == PARE_OK)
        *out = c;
    else
        pare_graph_free(c);
    return rc;
}

pare_status pare_prune_heads_apply(const pare_graph *g, const pare_prune_heads *hs,
                                   const double *ratios, const pare_prune_opts *opts,
                                   pare_graph **out, int *kept, pare_prune_result *res,
                                   pare_error *err)
{
    bool **keep = pare_calloc((size_t)(hs->n ? hs->n : 1), sizeof *keep);
    pare_status rc = PARE_OK;

    *out = NULL;
    if (res)
        memset(res, 0, sizeof *res);
    if (!keep)
        return pare_fail(err, PARE_ENOMEM, g->path, "out of memory pruning heads");
    for (int i = 0; i < hs->n && rc == PARE_OK; i++) {
        const pare_prune_attn *b = &hs->blocks[i];
        double r = ratios[i];
        if (kept)
            kept[i] = b->num_heads;
        if (!(r >= 0 && r < 1)) {
            rc = pare_fail(err, PARE_EINPUT, g->path, "head ratio %g for attention block '%s' "
                           "is outside [0, 1)", r, b->name);
            break;
        }
        if (r == 0)
            continue;
        if (!b->prunable) {
            rc = pare_fail(err, PARE_EINPUT, g->path, "attention block '%s' cannot be pruned",
                           b->name);
            pare_error_hint(err, "%s", b->reason);
            break;
        }
        keep[i] = pare_alloc((size_t)b->num_heads * sizeof **keep);
        if (!keep[i]) {
            rc = pare_fail(err, PARE_ENOMEM, g->path, "out of memory pruning heads");
            break;
        }
        rc = pare_prune_heads_keep_mask(g, b, r, opts, keep[i], err);
        for (int h = 0; rc == PARE_OK && h < b->num_heads; h++) {
            if (kept)
                kept[i] -= !keep[i][h];
            if (res)
                res->channels_removed += !keep[i][h];
        }
    }
    if (rc == PARE_OK)
        rc = pare_prune_heads_apply_masks(g, hs, (const bool *const *)keep, out, err);
    if (rc == PARE_OK && res) {
        pare_error e2 = {0};
        if (pare_prune_measure(g, &res->params_before, &res->flops_before, &e2) != PARE_OK ||
            pare_prune_measure(*out, &res->params_after, &res->flops_after, &e2) != PARE_OK) {
            res->params_before = pare_graph_param_count(g);
            res->params_after = pare_graph_param_count(*out);
            res->flops_before = res->flops_after = 0;
        }
    }
    for (int i = 0; i < hs->n; i++)
        pare_free(keep[i]);
    pare_free(keep);
    return rc;
}
