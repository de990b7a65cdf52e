/* Channel dependency groups (see prune.h).
 *
 * Every value that carries prunable channels is attached to a node of a
 * union-find with offsets: channel c of a node is channel c + off of its
 * parent, so a Concat output can own its inputs' channels at their offsets
 * and a residual Add can merge two spaces into one. Members (tensor slices),
 * producers and consumers hang off those nodes; at the end every root with a
 * producer is one group. Anything the walk does not understand marks the
 * space bad with a reason instead of guessing. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pare/alloc.h"
#include "pare/exec.h"
#include "pare/prune.h"
#include "prune_internal.h"

typedef struct uf_node {
    int parent;
    int64_t off;        /* channel c here is channel c + off of parent */
    int64_t size;
    bool bad;
    char reason[256];
} uf_node;

typedef struct raw_member {
    int tensor;         /* initializer value index */
    int axis;
    int64_t block;
    int space;          /* uf node whose channels index the slice */
    pare_member_role role;
    int node;
    bool is_depthwise;
} raw_member;

typedef struct node_ref {
    int node;
    int space;
} node_ref;

typedef struct walk {
    const pare_graph *g;
    pare_exec *x;
    int *sp;            /* per value: uf node or -1 */
    int *ax;            /* per value: channel axis */
    int64_t *blk;       /* per value: entries per channel (Flatten) */
    uf_node *uf;
    int n_uf, cap_uf;
    raw_member *mem;
    int n_mem, cap_mem;
    node_ref *prod, *cons, *dw;
    int n_prod, n_cons, n_dw;
    int cap_prod, cap_cons, cap_dw;
    bool oom;
} walk;

int prune_resolve_init(const pare_graph *g, int v)
{
    for (int hops = 0; v >= 0 && hops < 64; hops++) {
        const pare_value *val = &g->values[v];
        const pare_node *n;
        if (val->init)
            return v;
        if (val->producer < 0)
            return -1;
        n = &g->nodes[val->producer];
        if (strcmp(n->op_type, "Identity") != 0 || n->domain[0] || n->n_inputs < 1)
            return -1;
        v = n->inputs[0];
    }
    return -1;
}

static bool grow(void **arr, int *cap, int need, size_t elem)
{
    void *p;
    int nc;
    if (need <= *cap)
        return true;
    nc = *cap ? *cap * 2 : 16;
    while (nc < need)
        nc *= 2;
    p = pare_realloc(*arr, (size_t)nc * elem);
    if (!p)
        return false;
    *arr = p;
    *cap = nc;
    return true;
}

static int uf_new(walk *w, int64_t size)
{
    if (!grow((void **)&w->uf, &w->cap_uf, w->n_uf + 1, sizeof *w->uf)) {
        w->oom = true;
        return -1;
    }
    memset(&w->uf[w->n_uf], 0, sizeof w->uf[0]);
    w->uf[w->n_uf].parent = w->n_uf;
    w->uf[w->n_uf].size = size;
    return w->n_uf++;
}

/* Root of a, with *off = offset of a's channel 0 in the root. */
static int uf_find(walk *w, int a, int64_t *off)
{
    int64_t o = 0;
    while (w->uf[a].parent != a) {
        o += w->uf[a].off;
        a = w->uf[a].parent;
    }
    *off = o;
    return a;
}

static void uf_bad(walk *w, int a, const char *fmt, ...) PARE_PRINTF(3, 4);
static void uf_bad(walk *w, int a, const char *fmt, ...)
{
    int64_t o;
    int r;
    va_list ap;
    if (a < 0)
        return;
    r = uf_find(w, a, &o);
    if (w->uf[r].bad)
        return;
    w->uf[r].bad = true;
    va_start(ap, fmt);
    vsnprintf(w->uf[r].reason, sizeof w->uf[r].reason, fmt, ap);
    va_end(ap);
}

/* Ties channel c of a to channel c + delta of b. */
static void uf_union(walk *w, int a, int b, int64_t delta)
{
    int64_t oa, ob, d;
    int ra = uf_find(w, a, &oa), rb = uf_find(w, b, &ob);
    if (ra == rb) {
        if (oa != delta + ob)
            uf_bad(w, ra, "channels are tied at two different offsets");
        return;
    }
    d = delta + ob - oa;  /* channel x of ra is channel x + d of rb */
    if (d < 0) {
        int t = ra;
        ra = rb;
        rb = t;
        d = -d;
    }
    w->uf[ra].parent = rb;
    w->uf[ra].off = d;
    if (w->uf[ra].bad && !w->uf[rb].bad) {
        w->uf[rb].bad = true;
        memcpy(w->uf[rb].reason, w->uf[ra].reason, sizeof w->uf[rb].reason);
    }
}

static void add_ref(walk *w, node_ref **arr, int *n, int *cap, int node, int space)
{
    if (!grow((void **)arr, cap, *n + 1, sizeof **arr)) {
        w->oom = true;
        return;
    }
    (*arr)[*n].node = node;
    (*arr)[(*n)++].space = space;
}

static const pare_tensor *vshape(const walk *w, int v)
{
    return v >= 0 ? pare_exec_value_shape(w->x, v) : NULL;
}

static const char *nname(const walk *w, int n)
{
    const pare_node *node = &w->g->nodes[n];
    return node->name && node->name[0] ? node->name : node->op_type;
}

/* A member tensor given by value v (followed through Identity). A tensor
 * that is not an initializer cannot be sliced: the space goes bad. The same
 * (tensor, axis) reached from two spaces ties them. */
static void add_member(walk *w, int v, int axis, int64_t block, int space, pare_member_role role,
                       int node, bool dw)
{
    int t = prune_resolve_init(w->g, v);
    if (space < 0)
        return;
    if (t < 0) {
        uf_bad(w, space, "'%s' of node '%s' is computed, not a weight pare can slice",
               w->g->values[v].name, nname(w, node));
        return;
    }
    if (axis < 0 || axis >= w->g->values[t].init->ndim) {
        uf_bad(w, space, "weight '%s' has no axis %d", w->g->values[t].name, axis);
        return;
    }
    for (int i = 0; i < w->n_mem; i++)
        if (w->mem[i].tensor == t && w->mem[i].axis == axis) {
            uf_union(w, w->mem[i].space, space, 0);
            return;
        }
    if (!grow((void **)&w->mem, &w->cap_mem, w->n_mem + 1, sizeof *w->mem)) {
        w->oom = true;
        return;
    }
    w->mem[w->n_mem++] = (raw_member){.tensor = t, .axis = axis, .block = block, .space = space,
                                      .role = role, .node = node, .is_depthwise = dw};
}

static void set_space(walk *w, int v, int space, int axis, int64_t block)
{
    if (v < 0)
        return;
    w->sp[v] = space;
    w->ax[v] = axis;
    w->blk[v] = block;
}

/* Every spaced input of node n goes bad with the same reason. */
static void bad_inputs(walk *w, int n, const char *why)
{
    const pare_node *node = &w->g->nodes[n];
    for (int i = 0; i < node->n_inputs; i++) {
        int v = node->inputs[i];
        if (v >= 0 && w->sp[v] >= 0)
            uf_bad(w, w->sp[v], "used by '%s' (%s)%s", nname(w, n), node->op_type, why);
    }
}

static bool is_const(const walk *w, int v)
{
    int p = w->g->values[v].producer;
    return w->g->values[v].init || (p >= 0 && pare_exec_node_is_folded(w->x, p));
}

static void walk_conv(walk *w, int n)
{
    const pare_node *node = &w->g->nodes[n];
    int xin = node->inputs[0], out = node->outputs[0];
    int wv = node->n_inputs > 1 ? prune_resolve_init(w->g, node->inputs[1]) : -1;
    int bv = node->n_inputs > 2 ? node->inputs[2] : -1;
    int64_t group = pare_node_attr_int(node, "group", 1);
    const pare_tensor *wt;
    int64_t cout, cin;
    int s;

    if (wv < 0 || w->g->values[wv].init->ndim < 3) {
        bad_inputs(w, n, ": its weight is not a constant pare can slice");
        return;
    }
    wt = w->g->values[wv].init;
    cout = wt->dims[0];
    cin = wt->dims[1] * group;
    if (xin >= 0 && w->sp[xin] >= 0 && (w->ax[xin] != 1 || w->blk[xin] != 1))
        uf_bad(w, w->sp[xin], "reaches Conv '%s' on an axis other than its channels", nname(w, n));
    if (group == 1) {
        if (xin >= 0 && w->sp[xin] >= 0) {
            add_member(w, node->inputs[1], 1, 1, w->sp[xin], PARE_MEMBER_IN, n, false);
            add_ref(w, &w->cons, &w->n_cons, &w->cap_cons, n, w->sp[xin]);
        }
        s = uf_new(w, cout);
        if (s < 0)
            return;
        add_member(w, node->inputs[1], 0, 1, s, PARE_MEMBER_OUT, n, false);
        if (bv >= 0)
            add_member(w, bv, 0, 1, s, PARE_MEMBER_OUT, n, false);
        add_ref(w, &w->prod, &w->n_prod, &w->cap_prod, n, s);
        set_space(w, out, s, 1, 1);
        return;
    }
    if (group == cin && group == cout && wt->dims[1] == 1) {
        if (xin >= 0 && w->sp[xin] >= 0) {
            s = w->sp[xin];
        } else {
            s = uf_new(w, cout);
            uf_bad(w, s, "depthwise Conv '%s' ties these channels to the model input",
                   nname(w, n));
        }
        if (s < 0)
            return;
        add_member(w, node->inputs[1], 0, 1, s, PARE_MEMBER_OUT, n, true);
        if (bv >= 0)
            add_member(w, bv, 0, 1, s, PARE_MEMBER_OUT, n, true);
        add_ref(w, &w->dw, &w->n_dw, &w->cap_dw, n, s);
        set_space(w, out, s, 1, 1);
        return;
    }
    if (xin >= 0 && w->sp[xin] >= 0)
        uf_bad(w, w->sp[xin], "read by grouped Conv '%s' (group=%lld)", nname(w, n),
               (long long)group);
    s = uf_new(w, cout);
    uf_bad(w, s, "produced by grouped Conv '%s' (group=%lld)", nname(w, n), (long long)group);
    set_space(w, out, s, 1, 1);
}

/* Gemm and MatMul with a constant 2-D weight. */
static void walk_linear(walk *w, int n, bool gemm)
{
    const pare_node *node = &w->g->nodes[n];
    int a = node->inputs[0], out = node->outputs[0];
    int bv = node->n_inputs > 1 ? prune_resolve_init(w->g, node->inputs[1]) : -1;
    bool trans_b = gemm && pare_node_attr_int(node, "transB", 0);
    bool trans_a = gemm && pare_node_attr_int(node, "transA", 0);
    const pare_tensor *as = vshape(w, a), *os = vshape(w, out);
    int kaxis = trans_b ? 1 : 0, naxis = trans_b ? 0 : 1;
    int s;

    if (bv < 0 || w->g->values[bv].init->ndim != 2 || trans_a || !as || !os) {
        bad_inputs(w, n, gemm ? ": pare prunes Gemm with a constant B and no transA"
                              : ": a product of two activations");
        return;
    }
    if (w->sp[a] >= 0) {
        if (w->ax[a] != as->ndim - 1) {
            uf_bad(w, w->sp[a], "reaches '%s' (%s) on an axis other than its features",
                   nname(w, n), node->op_type);
        } else {
            add_member(w, node->inputs[1], kaxis, w->blk[a], w->sp[a], PARE_MEMBER_IN, n, false);
            add_ref(w, &w->cons, &w->n_cons, &w->cap_cons, n, w->sp[a]);
        }
    }
    s = uf_new(w, w->g->values[bv].init->dims[naxis]);
    if (s < 0)
        return;
    add_member(w, node->inputs[1], naxis, 1, s, PARE_MEMBER_OUT, n, false);
    if (gemm && node->n_inputs > 2 && node->inputs[2] >= 0) {
        const pare_tensor *cs = vshape(w, node->inputs[2]);
        int64_t cn = cs ? pare_tensor_numel(cs) : -1;
        if (cs && cn > 1) {
            if (cs->ndim >= 1 && cs->dims[cs->ndim - 1] == cn)
                add_member(w, node->inputs[2], cs->ndim - 1, 1, s, PARE_MEMBER_OUT, n, false);
            else
                uf_bad(w, s, "Gemm '%s' has a bias C pare cannot slice", nname(w, n));
        }
    }
    add_ref(w, &w->prod, &w->n_prod, &w->cap_prod, n, s);
    set_space(w, out, s, os->ndim - 1, 1);
}

/* Element-wise ops with broadcasting: spaced inputs are tied; a constant
 * with C entries along the channel axis is a member. */
static void walk_elementwise(walk *w, int n)
{
    const pare_node *node = &w->g->nodes[n];
    int out = node->outputs[0];
    const pare_tensor *os = vshape(w, out);
    int oax = -1, first = -1;
    int64_t block = 1;

    if (!os)
        return;
    for (int i = 0; i < node->n_inputs; i++) {
        int v = node->inputs[i];
        const pare_tensor *s = vshape(w, v);
        int a;
        if (v < 0 || w->sp[v] < 0 || !s)
            continue;
        a = w->ax[v] + (os->ndim - s->ndim);
        if (s->dims[w->ax[v]] != os->dims[a] || (oax >= 0 && a != oax) ||
            (first >= 0 && w->blk[v] != block)) {
            uf_bad(w, w->sp[v], "broadcast along its channels in '%s' (%s)", nname(w, n),
                   node->op_type);
            continue;
        }
        if (first < 0) {
            first = v;
            oax = a;
            block = w->blk[v];
        } else {
            uf_union(w, w->sp[v], w->sp[first], 0);
        }
    }
    if (first < 0)
        return;
    for (int i = 0; i < node->n_inputs; i++) {
        int v = node->inputs[i];
        const pare_tensor *s = vshape(w, v);
        int a;
        if (v < 0 || w->sp[v] >= 0)
            continue;
        if (!s) {
            uf_bad(w, w->sp[first], "'%s' (%s) has an input of unknown shape", nname(w, n),
                   node->op_type);
            continue;
        }
        a = oax - (os->ndim - s->ndim);
        if (a < 0 || s->dims[a] == 1)
            continue;
        if (is_const(w, v) && prune_resolve_init(w->g, v) >= 0 && block == 1)
            add_member(w, v, a, 1, w->sp[first], PARE_MEMBER_NORM, n, false);
        else
            uf_bad(w, w->sp[first], "'%s' (%s) combines these channels with '%s', which pare "
                   "does not track", nname(w, n), node->op_type, w->g->values[v].name);
    }
    set_space(w, out, w->sp[first], oax, block);
}

static void walk_concat(walk *w, int n)
{
    const pare_node *node = &w->g->nodes[n];
    int out = node->outputs[0];
    const pare_tensor *os = vshape(w, out);
    int64_t axis = pare_node_attr_int(node, "axis", 0), off = 0;
    int first = -1, s;

    if (!os)
        return;
    if (axis < 0)
        axis += os->ndim;
    for (int i = 0; i < node->n_inputs; i++)
        if (node->inputs[i] >= 0 && w->sp[node->inputs[i]] >= 0) {
            first = node->inputs[i];
            break;
        }
    if (first < 0)
        return;
    if (w->ax[first] != axis) { /* along another axis: channels pass through */
        walk_elementwise(w, n);
        return;
    }
    s = uf_new(w, os->dims[axis]);
    if (s < 0)
        return;
    for (int i = 0; i < node->n_inputs; i++) {
        int v = node->inputs[i];
        const pare_tensor *is = vshape(w, v);
        if (v < 0 || !is)
            continue;
        if (w->sp[v] >= 0 && w->ax[v] == axis && w->blk[v] == 1)
            uf_union(w, w->sp[v], s, off);
        else
            uf_bad(w, s, "Concat '%s' joins channels pare does not track ('%s')", nname(w, n),
                   w->g->values[v].name);
        off += is->dims[axis];
    }
    set_space(w, out, s, (int)axis, 1);
}

static bool axes_of(const walk *w, const pare_node *node, int64_t *axes, int *n_axes)
{
    int n = 0;
    const int64_t *a = pare_node_attr_ints(node, "axes", &n);
    if (!a && node->n_inputs > 1 && node->inputs[1] >= 0) {
        const pare_tensor *t = vshape(w, node->inputs[1]);
        if (!t || !t->data || pare_tensor_numel(t) > PARE_MAX_DIMS)
            return false;
        n = (int)pare_tensor_numel(t);
        for (int i = 0; i < n; i++)
            axes[i] = pare_tensor_get_i64(t, i);
    } else {
        if (n > PARE_MAX_DIMS)
            return false;
        for (int i = 0; i < n; i++)
            axes[i] = a[i];
    }
    *n_axes = n;
    return true;
}

static void walk_reduce(walk *w, int n)
{
    const pare_node *node = &w->g->nodes[n];
    int v = node->inputs[0];
    const pare_tensor *is = vshape(w, v);
    int64_t axes[PARE_MAX_DIMS];
    int n_axes = 0, newax;
    bool keep = pare_node_attr_int(node, "keepdims", 1) != 0;

    if (w->sp[v] < 0 || !is)
        return;
    if (!axes_of(w, node, axes, &n_axes) || n_axes == 0) {
        uf_bad(w, w->sp[v], "reduced over all axes by '%s' (%s)", nname(w, n), node->op_type);
        return;
    }
    newax = w->ax[v];
    for (int i = 0; i < n_axes; i++) {
        int64_t a = axes[i] < 0 ? axes[i] + is->ndim : axes[i];
        if (a == w->ax[v]) {
            uf_bad(w, w->sp[v], "reduced over its channels by '%s' (%s)", nname(w, n),
                   node->op_type);
            return;
        }
        if (a < w->ax[v] && !keep)
            newax--;
    }
    set_space(w, node->outputs[0], w->sp[v], newax, w->blk[v]);
}

static void walk_flatten(walk *w, int n)
{
    const pare_node *node = &w->g->nodes[n];
    int v = node->inputs[0];
    const pare_tensor *is = vshape(w, v);
    int64_t axis = pare_node_attr_int(node, "axis", 1), inner = 1;

    if (w->sp[v] < 0)
        return;
    if (!is || axis != 1 || w->ax[v] != 1) {
        uf_bad(w, w->sp[v], "flattened by '%s' in a way pare does not follow", nname(w, n));
        return;
    }
    for (int d = 2; d < is->ndim; d++)
        inner *= is->dims[d];
    set_space(w, node->outputs[0], w->sp[v], 1, w->blk[v] * inner);
}

/* Reshape [N, C, H, W] -> [N, C*H*W] is a Flatten when the shape constant
 * infers the feature size (-1, or 0 = copy for the batch): nothing in it
 * then changes when C shrinks. A literal C*H*W would have to be rewritten,
 * which pare does not do: the group goes unprunable. */
static void walk_reshape(walk *w, int n)
{
    const pare_node *node = &w->g->nodes[n];
    int v = node->inputs[0], sv = node->n_inputs > 1 ? node->inputs[1] : -1;
    const pare_tensor *is = vshape(w, v), *os = vshape(w, node->outputs[0]);
    const pare_tensor *shape = sv >= 0 && is_const(w, sv) ? vshape(w, sv) : NULL;
    int64_t inner = 1;

    if (w->sp[v] < 0)
        return;
    if (!is || !os || !shape || !shape->data || pare_tensor_numel(shape) != 2 || os->ndim != 2 ||
        w->ax[v] != 1 || is->ndim < 2 || os->dims[0] != is->dims[0] ||
        pare_tensor_get_i64(shape, 1) != -1) {
        uf_bad(w, w->sp[v], "reshaped by '%s' in a way pare does not follow", nname(w, n));
        return;
    }
    for (int d = 2; d < is->ndim; d++)
        inner *= is->dims[d];
    set_space(w, node->outputs[0], w->sp[v], 1, w->blk[v] * inner);
}

static void walk_transpose(walk *w, int n)
{
    const pare_node *node = &w->g->nodes[n];
    int v = node->inputs[0], np = 0;
    const int64_t *perm = pare_node_attr_ints(node, "perm", &np);

    if (w->sp[v] < 0)
        return;
    if (!perm || w->blk[v] != 1) {
        uf_bad(w, w->sp[v], "transposed by '%s' without perm", nname(w, n));
        return;
    }
    for (int j = 0; j < np; j++)
        if (perm[j] == w->ax[v]) {
            set_space(w, node->outputs[0], w->sp[v], j, 1);
            return;
        }
    uf_bad(w, w->sp[v], "transposed by '%s' in a way pare does not follow", nname(w, n));
}

static const char *const passthrough_ops[] = {
    "Relu", "LeakyRelu", "Sigmoid", "Tanh", "Clip", "Identity", "Dropout", "Erf", "Neg", "Abs",
    "Exp", "Log", "Sqrt", "Reciprocal", "HardSigmoid", "HardSwish", "Softplus", "Softsign",
    "Elu", "Selu", "Celu", "Gelu", "Mish", "Cast", "Floor", "Ceil", "Round", "Sign", "Sin",
    "Cos", "ThresholdedRelu", NULL};
static const char *const pool_ops[] = {"MaxPool", "AveragePool", "GlobalAveragePool",
                                       "GlobalMaxPool", "LpPool", "GlobalLpPool", NULL};
static const char *const binary_ops[] = {"Add", "Sub", "Mul", "Div", "Max", "Min", "Pow",
                                         "Sum", "Mean", "PRelu", NULL};
static const char *const reduce_ops[] = {"ReduceMean", "ReduceMax", "ReduceMin", "ReduceSum",
                                         "ReduceL1", "ReduceL2", "ReduceProd", NULL};

static bool in_list(const char *op, const char *const *list)
{
    for (int i = 0; list[i]; i++)
        if (strcmp(op, list[i]) == 0)
            return true;
    return false;
}

static void walk_node(walk *w, int n)
{
    const pare_node *node = &w->g->nodes[n];
    const char *op = node->op_type;
    bool any = false;

    if (node->domain[0] && strcmp(node->domain, "ai.onnx") != 0) {
        bad_inputs(w, n, ", an op outside ai.onnx");
        return;
    }
    if (strcmp(op, "Conv") == 0) {
        walk_conv(w, n);
        return;
    }
    if (strcmp(op, "Gemm") == 0 || strcmp(op, "MatMul") == 0) {
        walk_linear(w, n, op[0] == 'G');
        return;
    }
    for (int i = 0; i < node->n_inputs; i++)
        any |= node->inputs[i] >= 0 && w->sp[node->inputs[i]] >= 0;
    if (!any || pare_exec_node_is_folded(w->x, n))
        return;
    if (strcmp(op, "BatchNormalization") == 0) {
        int v = node->inputs[0];
        if (w->sp[v] < 0 || w->ax[v] != 1 || node->n_inputs < 5) {
            bad_inputs(w, n, ": BatchNormalization reads them as a parameter");
            return;
        }
        for (int i = 1; i < 5; i++)
            add_member(w, node->inputs[i], 0, w->blk[v], w->sp[v],
                       i == 1 ? PARE_MEMBER_NORM_SCALE : PARE_MEMBER_NORM, n, false);
        set_space(w, node->outputs[0], w->sp[v], 1, w->blk[v]);
        return;
    }
    if (in_list(op, passthrough_ops) || in_list(op, pool_ops)) {
        int v = node->inputs[0];
        if (w->sp[v] < 0) {
            bad_inputs(w, n, ": channels as a parameter");
            return;
        }
        if (in_list(op, pool_ops) && w->ax[v] != 1) {
            uf_bad(w, w->sp[v], "pooled by '%s' along its channels", nname(w, n));
            return;
        }
        set_space(w, node->outputs[0], w->sp[v], w->ax[v], w->blk[v]);
        return;
    }
    if (in_list(op, binary_ops)) {
        walk_elementwise(w, n);
        return;
    }
    if (strcmp(op, "Concat") == 0) {
        walk_concat(w, n);
        return;
    }
    if (in_list(op, reduce_ops)) {
        walk_reduce(w, n);
        return;
    }
    if (strcmp(op, "Flatten") == 0) {
        walk_flatten(w, n);
        return;
    }
    if (strcmp(op, "Transpose") == 0) {
        walk_transpose(w, n);
        return;
    }
    if (strcmp(op, "Reshape") == 0) {
        walk_reshape(w, n);
        return;
    }
    bad_inputs(w, n, ", which pare cannot prune through");
}

/* ---- groups from the walk ---------------------------------------------------- */

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

static pare_status build_groups(walk *w, pare_prune_groups *gs, pare_error *err)
{
    const pare_graph *g = w->g;
    int *gid = pare_alloc((size_t)(w->n_uf ? w->n_uf : 1) * sizeof *gid);
    int64_t *extent = pare_calloc((size_t)(w->n_uf ? w->n_uf : 1), sizeof *extent);
    pare_status rc = PARE_OK;

    if (!gid || !extent) {
        rc = pare_fail(err, PARE_ENOMEM, g->path, "out of memory finding prune groups");
        goto done;
    }
    for (int i = 0; i < w->n_uf; i++) {
        int64_t off;
        int r = uf_find(w, i, &off);
        gid[i] = -1;
        if (off + w->uf[i].size > extent[r])
            extent[r] = off + w->uf[i].size;
    }
    /* groups in the order of their first producer */
    for (int p = 0; p < w->n_prod; p++) {
        int64_t off;
        int r = uf_find(w, w->prod[p].space, &off);
        if (gid[r] < 0) {
            pare_prune_group *grp;
            const char *name = g->values[g->nodes[w->prod[p].node].outputs[0]].name;
            void *nb = pare_realloc(gs->groups, (size_t)(gs->n + 1) * sizeof *gs->groups);
            if (!nb) {
                rc = pare_fail(err, PARE_ENOMEM, g->path, "out of memory finding prune groups");
                goto done;
            }
            gs->groups = nb;
            grp = &gs->groups[gs->n];
            memset(grp, 0, sizeof *grp);
            grp->id = gs->n;
            grp->name = pare_strdup(name);
            grp->channels = extent[r];
            grp->prunable = !w->uf[r].bad;
            snprintf(grp->reason, sizeof grp->reason, "%s", w->uf[r].reason);
            gid[r] = gs->n++;
            if (!grp->name) {
                rc = pare_fail(err, PARE_ENOMEM, g->path, "out of memory finding prune groups");
                goto done;
            }
        }
    }
    for (int i = 0; i < gs->n; i++) {
        pare_prune_group *grp = &gs->groups[i];
        int nm = 0, np = 0, nc = 0, nd = 0;
        for (int m = 0; m < w->n_mem; m++) {
            int64_t off;
            if (gid[uf_find(w, w->mem[m].space, &off)] == i)
                nm++;
        }
        grp->members = pare_calloc((size_t)(nm ? nm : 1), sizeof *grp->members);
        grp->producers = pare_calloc((size_t)(w->n_prod ? w->n_prod : 1), sizeof(int));
        grp->consumers = pare_calloc((size_t)(w->n_cons ? w->n_cons : 1), sizeof(int));
        grp->depthwise = pare_calloc((size_t)(w->n_dw ? w->n_dw : 1), sizeof(int));
        if (!grp->members || !grp->producers || !grp->consumers || !grp->depthwise) {
            rc = pare_fail(err, PARE_ENOMEM, g->path, "out of memory finding prune groups");
            goto done;
        }
        for (int m = 0; m < w->n_mem; m++) {
            int64_t off;
            const raw_member *rm = &w->mem[m];
            const pare_tensor *t = g->values[rm->tensor].init;
            pare_prune_member *pm;
            if (gid[uf_find(w, rm->space, &off)] != i)
                continue;
            pm = &grp->members[grp->n_members++];
            pm->tensor = pare_strdup(g->values[rm->tensor].name);
            if (!pm->tensor) {
                rc = pare_fail(err, PARE_ENOMEM, g->path, "out of memory finding prune groups");
                goto done;
            }
            pm->axis = rm->axis;
            pm->offset = off;
            pm->count = w->uf[rm->space].size;
            pm->block = rm->block;
            pm->role = rm->role;
            pm->node = rm->node;
            pm->is_depthwise = rm->is_depthwise;
            if (t->dims[rm->axis] != pm->count * pm->block && grp->prunable) {
                grp->prunable = false;
                snprintf(grp->reason, sizeof grp->reason,
                         "weight '%s' has %lld entries on axis %d, not %lld channels x %lld",
                         pm->tensor, (long long)t->dims[rm->axis], rm->axis,
                         (long long)pm->count, (long long)pm->block);
            }
        }
        for (int p = 0; p < w->n_prod; p++) {
            int64_t off;
            if (gid[uf_find(w, w->prod[p].space, &off)] == i)
                grp->producers[np++] = w->prod[p].node;
        }
        for (int p = 0; p < w->n_cons; p++) {
            int64_t off;
            if (gid[uf_find(w, w->cons[p].space, &off)] == i)
                grp->consumers[nc++] = w->cons[p].node;
        }
        for (int p = 0; p < w->n_dw; p++) {
            int64_t off;
            if (gid[uf_find(w, w->dw[p].space, &off)] == i)
                grp->depthwise[nd++] = w->dw[p].node;
        }
        qsort(grp->producers, (size_t)np, sizeof(int), cmp_int);
        qsort(grp->consumers, (size_t)nc, sizeof(int), cmp_int);
        grp->n_producers = np;
        grp->n_consumers = nc;
        grp->n_depthwise = nd;
    }
done:
    pare_free(gid);
    pare_free(extent);
    return rc;
}

pare_status pare_prune_groups_find(const pare_graph *g, pare_prune_groups **out, pare_error *err)
{
    walk w;
    pare_exec_opts opts = {.batch = 1, .n_threads = 1};
    pare_prune_groups *gs = pare_calloc(1, sizeof *gs);
    int nv = g->n_values ? g->n_values : 1;
    pare_status rc;

    *out = NULL;
    memset(&w, 0, sizeof w);
    w.g = g;
    w.sp = pare_alloc((size_t)nv * sizeof *w.sp);
    w.ax = pare_calloc((size_t)nv, sizeof *w.ax);
    w.blk = pare_calloc((size_t)nv, sizeof *w.blk);
    if (!gs || !w.sp || !w.ax || !w.blk) {
        rc = pare_fail(err, PARE_ENOMEM, g->path, "out of memory finding prune groups");
        goto done;
    }
    for (int v = 0; v < g->n_values; v++)
        w.sp[v] = -1;
    /* shapes come from a plan: the walk needs C, H, W of every value */
    rc = pare_exec_new(g, &opts, &w.x, err);
    if (rc != PARE_OK) {
        pare_error_prefix(err, "while finding prune groups: ");
        goto done;
    }
    for (int n = 0; n < g->n_nodes && !w.oom; n++)
        walk_node(&w, n);
    for (int i = 0; i < g->n_outputs && !w.oom; i++) {
        int v = g->outputs[i];
        if (w.sp[v] >= 0)
            uf_bad(&w, w.sp[v], "reaches model output '%s'", g->values[v].name);
    }
    if (w.oom) {
        rc = pare_fail(err, PARE_ENOMEM, g->path, "out of memory finding prune groups");
        goto done;
    }
    rc = build_groups(&w, gs, err);
done:
    pare_exec_free(w.x);
    pare_free(w.sp);
    pare_free(w.ax);
    pare_free(w.blk);
    pare_free(w.uf);
    pare_free(w.mem);
    pare_free(w.prod);
    pare_free(w.cons);
    pare_free(w.dw);
    if (rc == PARE_OK)
        *out = gs;
    else
        pare_prune_groups_free(gs);
    return rc;
}

void pare_prune_groups_free(pare_prune_groups *gs)
{
    if (!gs)
        return;
    for (int i = 0; i < gs->n; i++) {
        pare_prune_group *grp = &gs->groups[i];
        pare_free(grp->name);
        for (int m = 0; m < grp->n_members; m++)
            pare_free(grp->members[m].tensor);
        pare_free(grp->members);
        pare_free(grp->producers);
        pare_free(grp->consumers);
        pare_free(grp->depthwise);
    }
    pare_free(gs->groups);
    pare_free(gs);
}

int pare_prune_groups_lookup(const pare_prune_groups *gs, const pare_graph *g, const char *name,
                             const char *where, pare_error *err)
{
    const char **names;
    const char *guess;

    for (int i = 0; i < gs->n; i++)
        if (strcmp(gs->groups[i].name, name) == 0)
            return i;
    for (int i = 0; i < gs->n; i++) {
        const pare_prune_group *grp = &gs->groups[i];
        for (int p = 0; p < grp->n_producers; p++) {
            const char *nn = g->nodes[grp->producers[p]].name;
            if (nn && strcmp(nn, name) == 0)
                return i;
        }
        for (int m = 0; m < grp->n_members; m++)
            if (grp->members[m].role == PARE_MEMBER_OUT && strcmp(grp->members[m].tensor, name) == 0)
                return i;
    }
    pare_fail(err, PARE_EINPUT, where, "no prune group '%s'", name);
    names = pare_alloc((size_t)(gs->n ? gs->n : 1) * sizeof *names);
    if (names) {
        for (int i = 0; i < gs->n; i++)
            names[i] = gs->groups[i].name;
        guess = pare_closest_word(name, names, gs->n);
        if (guess)
            pare_error_hint(err, "did you mean '%s'?", guess);
        else
            pare_error_hint(err, "`pare prune --show-groups MODEL` lists the groups");
        pare_free(names);
    }
    return PARE_EINPUT;
}
