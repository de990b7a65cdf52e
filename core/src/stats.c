/* Model statistics: per-layer output shapes, params and FLOPs (see stats.h).
 *
 * Two shape passes, at batch 1 and batch 2, each from an executor plan when
 * one can be built, else from a node-by-node inference that skips what it
 * cannot infer. Comparing the passes tells which dims follow the batch. */
#include <stdio.h>
#include <string.h>

#include "pare/alloc.h"
#include "pare/exec.h"
#include "pare/op.h"
#include "pare/stats.h"

typedef struct shape_pass {
    int n_values, n_nodes;
    pare_tensor *vals;      /* per value: dtype, ndim (-1 unknown), dims, data when constant */
    pare_tensor **owned;    /* per value: folded data owned by the pass */
    double *flops;          /* per node; -1 unknown */
    bool *folded;           /* per node */
} shape_pass;

static void pass_free(shape_pass *p)
{
    if (p->owned)
        for (int v = 0; v < p->n_values; v++)
            pare_tensor_free(p->owned[v]);
    pare_free(p->owned);
    pare_free(p->vals);
    pare_free(p->flops);
    pare_free(p->folded);
    memset(p, 0, sizeof *p);
}

static pare_status pass_alloc(shape_pass *p, const pare_graph *g)
{
    size_t nv = (size_t)(g->n_values ? g->n_values : 1);
    size_t nn = (size_t)(g->n_nodes ? g->n_nodes : 1);

    memset(p, 0, sizeof *p);
    p->n_values = g->n_values;
    p->n_nodes = g->n_nodes;
    p->vals = pare_calloc(nv, sizeof *p->vals);
    p->owned = pare_calloc(nv, sizeof *p->owned);
    p->flops = pare_calloc(nn, sizeof *p->flops);
    p->folded = pare_calloc(nn, sizeof *p->folded);
    if (!p->vals || !p->owned || !p->flops || !p->folded) {
        pass_free(p);
        return PARE_ENOMEM;
    }
    for (int v = 0; v < g->n_values; v++)
        pare_tensor_view(&p->vals[v], PARE_UNDEFINED, -1, NULL, NULL);
    for (int n = 0; n < g->n_nodes; n++)
        p->flops[n] = -1.0;
    return PARE_OK;
}

/* Shapes from an executor plan. Returns the plan's status; plan_err gets
 * its error. */
static pare_status pass_from_exec(shape_pass *p, const pare_graph *g, int batch,
                                  pare_stats *s, pare_error *plan_err)
{
    pare_exec_opts opts = {0};
    pare_exec *x = NULL;
    pare_status rc;

    opts.batch = batch;
    opts.n_threads = 1;
    rc = pare_exec_new(g, &opts, &x, plan_err);
    if (rc != PARE_OK)
        return rc;
    for (int v = 0; v < g->n_values; v++) {
        const pare_tensor *t = pare_exec_value_shape(x, v);
        if (t && t->ndim >= 0 && t->ndim <= PARE_MAX_DIMS)
            pare_tensor_view(&p->vals[v], t->dtype, t->ndim, t->dims, NULL);
    }
    for (int n = 0; n < g->n_nodes; n++) {
        p->flops[n] = pare_exec_node_flops(x, n);
        p->folded[n] = pare_exec_node_is_folded(x, n);
    }
    if (s) {
        s->arena_bytes = pare_exec_arena_bytes(x);
        s->folded_bytes = pare_exec_folded_bytes(x);
    }
    pare_exec_free(x);
    return PARE_OK;
}

/* A declared shape with every dim known once symbolic batch dims take
 * `batch`; false when some dim stays unknown. */
static bool declared_concrete(const pare_value *val, const char *batch_name, int batch,
                              pare_tensor *t)
{
    if (val->ndim < 0 || val->ndim > PARE_MAX_DIMS || val->dtype == PARE_UNDEFINED)
        return false;
    pare_tensor_view(t, val->dtype, val->ndim, val->dims, NULL);
    for (int d = 0; d < val->ndim; d++) {
        if (t->dims[d] >= 0)
            continue;
        if (!val->dim_names[d] || strcmp(val->dim_names[d], batch_name) != 0)
            return false;
        t->dims[d] = batch;
    }
    return true;
}

static bool shape_is_valid(const pare_tensor *t)
{
    if (!t)
        return true;
    if (t->ndim < 0 || t->ndim > PARE_MAX_DIMS || t->dtype == PARE_UNDEFINED)
        return false;
    for (int d = 0; d < t->ndim; d++)
        if (t->dims[d] < 0)
            return false;
    return true;
}

/* Node-by-node inference without a plan: what can be inferred is. */
static pare_status infer_one(shape_pass *p, const pare_graph *g, int n)
{
    const pare_node *node = &g->nodes[n];
    int opset = pare_graph_opset(g, node->domain);
    const pare_op_def *def = pare_op_find(node->domain, node->op_type, opset);
    pare_tensor **in = NULL, **out = NULL;
    pare_error scratch_err = {0};
    pare_op_ctx ctx;
    char where[512];
    bool foldable = true, ok = def != NULL;
    pare_status rc = PARE_OK;

    for (int i = 0; i < node->n_inputs && ok; i++) {
        int v = node->inputs[i];
        if (v < 0)
            continue;
        if (p->vals[v].ndim < 0)
            ok = false;
        else if (!p->vals[v].data)
            foldable = false;
    }
    if (!ok)
        return PARE_OK;
    if (def->flags & PARE_OP_SHAPE_ONLY)
        foldable = true;
    in = pare_calloc((size_t)(node->n_inputs ? node->n_inputs : 1), sizeof *in);
    out = pare_calloc((size_t)(node->n_outputs ? node->n_outputs : 1), sizeof *out);
    if (!in || !out) {
        rc = PARE_ENOMEM;
        goto out;
    }
    for (int i = 0; i < node->n_inputs; i++)
        in[i] = node->inputs[i] >= 0 ? &p->vals[node->inputs[i]] : NULL;
    for (int i = 0; i < node->n_outputs; i++)
        out[i] = node->outputs[i] >= 0 ? &p->vals[node->outputs[i]] : NULL;
    memset(&ctx, 0, sizeof ctx);
    ctx.node = node;
    ctx.opset = opset;
    ctx.n_in = node->n_inputs;
    ctx.in = in;
    ctx.n_out = node->n_outputs;
    ctx.out = out;
    ctx.n_threads = 1;
    ctx.where = pare_graph_node_where(g, n, where, sizeof where);
    ctx.err = &scratch_err;
    ok = def->infer(&ctx) == PARE_OK;
    for (int i = 0; i < node->n_outputs && ok; i++)
        ok = shape_is_valid(out[i]);
    if (!ok)
        goto out;
    p->flops[n] = def->flops ? def->flops(&ctx) : 0.0;
    if (foldable) {
        void *scratch = ctx.scratch_bytes ? pare_alloc_aligned(ctx.scratch_bytes) : NULL;
        bool have_all = !ctx.scratch_bytes || scratch;
        for (int i = 0; i < node->n_outputs && have_all; i++) {
            int v = node->outputs[i];
            if (v < 0)
                continue;
            p->owned[v] = pare_tensor_new(p->vals[v].dtype, p->vals[v].ndim, p->vals[v].dims);
            have_all = p->owned[v] != NULL;
            if (have_all)
                p->vals[v].data = p->owned[v]->data;
        }
        ctx.scratch = scratch;
        if (!have_all)
            rc = PARE_ENOMEM;
        else if (def->forward(&ctx) == PARE_OK)
            p->folded[n] = true;
        pare_free(scratch);
        if (!p->folded[n]) {
            /* Shapes stay known; the data is not. */
            for (int i = 0; i < node->n_outputs; i++) {
                int v = node->outputs[i];
                if (v < 0)
                    continue;
                pare_tensor_free(p->owned[v]);
                p->owned[v] = NULL;
                p->vals[v].data = NULL;
            }
        }
    }
out:
    if (!ok)
        for (int i = 0; i < node->n_outputs; i++)
            if (node->outputs[i] >= 0)
                pare_tensor_view(&p->vals[node->outputs[i]], PARE_UNDEFINED, -1, NULL, NULL);
    pare_free(in);
    pare_free(out);
    return rc;
}

static pare_status pass_partial(shape_pass *p, const pare_graph *g, int batch,
                                const char *batch_name)
{
    for (int v = 0; v < g->n_values; v++) {
        const pare_value *val = &g->values[v];
        const pare_tensor *init = val->init;
        if (init) {
            pare_tensor_view(&p->vals[v], init->dtype, init->ndim, init->dims, init->data);
        } else if (val->is_input && val->producer < 0 && val->ndim >= 0 &&
                   val->ndim <= PARE_MAX_DIMS && val->dtype != PARE_UNDEFINED) {
            /* As the executor binds inputs: every unknown dim takes the batch. */
            pare_tensor_view(&p->vals[v], val->dtype, val->ndim, val->dims, NULL);
            for (int d = 0; d < val->ndim; d++)
                if (p->vals[v].dims[d] < 0)
                    p->vals[v].dims[d] = batch;
        }
    }
    for (int n = 0; n < g->n_nodes; n++) {
        const pare_node *node = &g->nodes[n];
        pare_status rc = infer_one(p, g, n);
        if (rc != PARE_OK)
            return rc;
        /* Outputs nothing could infer: the file's declaration, if complete. */
        for (int i = 0; i < node->n_outputs; i++) {
            int v = node->outputs[i];
            if (v >= 0 && p->vals[v].ndim < 0 &&
                !declared_concrete(&g->values[v], batch_name, batch, &p->vals[v]))
                pare_tensor_view(&p->vals[v], PARE_UNDEFINED, -1, NULL, NULL);
        }
    }
    return PARE_OK;
}

/* One pass at `batch`: a plan if possible, else partial inference. */
static pare_status run_pass(shape_pass *p, const pare_graph *g, int batch,
                            const char *batch_name, pare_stats *s, pare_error *plan_err)
{
    pare_error local = {0};
    pare_status rc = pass_alloc(p, g);

    if (rc != PARE_OK)
        return rc;
    rc = pass_from_exec(p, g, batch, s, plan_err ? plan_err : &local);
    if (rc == PARE_OK)
        return PARE_OK;
    if (rc == PARE_ENOMEM)
        return rc;
    if (s)
        s->planned = false;
    pass_free(p);
    rc = pass_alloc(p, g);
    if (rc == PARE_OK)
        rc = pass_partial(p, g, batch, batch_name);
    return rc;
}

void pare_stats_free(pare_stats *s)
{
    if (!s)
        return;
    pare_free(s->layers);
    pare_free(s->values);
    pare_free(s);
}

void pare_stats_declared_shape(const pare_stats *s, const pare_value *v, pare_stat_shape *out)
{
    memset(out, 0, sizeof *out);
    out->dtype = v->dtype;
    out->ndim = v->ndim >= 0 && v->ndim <= PARE_MAX_DIMS ? v->ndim : -1;
    for (int d = 0; d < out->ndim; d++) {
        out->dims[d] = v->dims[d];
        if (v->dims[d] >= 0)
            continue;
        if (v->dim_names[d] && s && !strcmp(v->dim_names[d], s->batch_name)) {
            out->dims[d] = 1;
            out->per_batch[d] = 1;
        } else {
            out->names[d] = v->dim_names[d];
        }
    }
}

/* Batch name: the first symbolic dim name among runtime inputs. */
static bool find_batch_name(const pare_graph *g, char *name, size_t size)
{
    bool any = false;

    snprintf(name, size, "N");
    for (int i = 0; i < g->n_inputs; i++) {
        const pare_value *val = &g->values[g->inputs[i]];
        if (val->init)
            continue;
        for (int d = 0; d < val->ndim && d < PARE_MAX_DIMS; d++) {
            if (val->dims[d] >= 0)
                continue;
            if (val->dim_names[d] && val->dim_names[d][0] && !any) {
                snprintf(name, size, "%s", val->dim_names[d]);
                return true;
            }
            any = true;
        }
    }
    return any;
}

static void merge_shape(const pare_tensor *t1, const pare_tensor *t2, pare_stat_shape *out)
{
    memset(out, 0, sizeof *out);
    out->dtype = t1->dtype;
    out->ndim = t1->ndim;
    for (int d = 0; d < t1->ndim; d++) {
        int64_t d1 = t1->dims[d];
        out->dims[d] = d1;
        if (!t2 || t2->ndim != t1->ndim)
            continue; /* no second pass: as at batch 1 */
        if (t2->dims[d] == d1)
            continue;
        if (d1 > 0 && t2->dims[d] == 2 * d1)
            out->per_batch[d] = d1;
        else
            out->dims[d] = -1; /* depends on the batch in a way we cannot name */
    }
}

static int64_t constant_node_values(const pare_node *node)
{
    int64_t n = 0;

    if (strcmp(node->op_type, "Constant") != 0 || node->domain[0])
        return 0;
    for (int i = 0; i < node->n_attrs; i++) {
        const pare_attr *a = &node->attrs[i];
        if (a->type == PARE_ATTR_TENSOR && a->t)
            n += pare_tensor_numel(a->t);
        else if (a->type == PARE_ATTR_FLOAT || a->type == PARE_ATTR_INT)
            n += 1;
        else if (a->type == PARE_ATTR_FLOATS || a->type == PARE_ATTR_INTS)
            n += a->n;
    }
    return n;
}

pare_status pare_stats_compute(const pare_graph *g, pare_stats **out, pare_error *err)
{
    pare_stats *s = pare_calloc(1, sizeof *s);
    shape_pass p1 = {0}, p2 = {0};
    bool *counted = NULL, has_batch;
    pare_status rc = PARE_OK;

    *out = NULL;
    if (!s)
        return pare_fail(err, PARE_ENOMEM, g->path, "out of memory computing model statistics");
    s->n_layers = g->n_nodes;
    s->n_values = g->n_values;
    s->layers = pare_calloc((size_t)(g->n_nodes ? g->n_nodes : 1), sizeof *s->layers);
    s->values = pare_calloc((size_t)(g->n_values ? g->n_values : 1), sizeof *s->values);
    counted = pare_calloc((size_t)(g->n_values ? g->n_values : 1), sizeof *counted);
    if (!s->layers || !s->values || !counted) {
        rc = PARE_ENOMEM;
        goto done;
    }
    has_batch = find_batch_name(g, s->batch_name, sizeof s->batch_name);
    s->planned = true;
    rc = run_pass(&p1, g, 1, s->batch_name, s, &s->plan_error);
    if (rc == PARE_OK && has_batch)
        rc = run_pass(&p2, g, 2, s->batch_name, NULL, NULL);
    if (rc != PARE_OK)
        goto done;
    if (s->planned)
        pare_error_clear(&s->plan_error);

    for (int v = 0; v < g->n_values; v++) {
        const pare_value *val = &g->values[v];
        if (p1.vals[v].ndim >= 0)
            merge_shape(&p1.vals[v], has_batch ? &p2.vals[v] : NULL, &s->values[v]);
        else
            pare_stats_declared_shape(s, val, &s->values[v]);
        if (val->init) {
            s->params += pare_tensor_numel(val->init);
            s->init_bytes += pare_tensor_nbytes(val->init);
        }
    }
    s->flops_complete = true;
    for (int n = 0; n < g->n_nodes; n++) {
        const pare_node *node = &g->nodes[n];
        pare_layer_stat *l = &s->layers[n];

        l->node = n;
        l->flops = p1.flops[n];
        l->folded = p1.folded[n];
        l->has_kernel = pare_op_find(node->domain, node->op_type,
                                     pare_graph_opset(g, node->domain)) != NULL;
        if (!l->has_kernel)
            s->n_unknown_ops++;
        for (int i = 0; i < node->n_inputs; i++) {
            int v = node->inputs[i];
            if (v >= 0 && g->values[v].init && !counted[v]) {
                counted[v] = true;
                l->params += pare_tensor_numel(g->values[v].init);
            }
        }
        if (node->n_outputs > 0 && node->outputs[0] >= 0)
            l->out = s->values[node->outputs[0]];
        else
            l->out.ndim = -1;
        s->constant_values += constant_node_values(node);
        if (l->folded)
            continue;
        if (l->flops < 0)
            s->flops_complete = false;
        else
            s->flops += l->flops;
    }
done:
    pass_free(&p1);
    pass_free(&p2);
    pare_free(counted);
    if (rc != PARE_OK) {
        pare_stats_free(s);
        return pare_fail(err, PARE_ENOMEM, g->path, "out of memory computing model statistics");
    }
    *out = s;
    return PARE_OK;
}

char *pare_stats_dim_format(const pare_stats *s, const pare_stat_shape *sh, int d,
                            char *buf, size_t size)
{
    const char *bname = s && s->batch_name[0] ? s->batch_name : "N";

    if (!size)
        return buf;
    if (d < 0 || d >= sh->ndim)
        snprintf(buf, size, "?");
    else if (sh->per_batch[d] == 1)
        snprintf(buf, size, "%s", bname);
    else if (sh->per_batch[d] > 1)
        snprintf(buf, size, "%lld*%s", (long long)sh->per_batch[d], bname);
    else if (sh->dims[d] >= 0)
        snprintf(buf, size, "%lld", (long long)sh->dims[d]);
    else if (sh->names[d] && sh->names[d][0])
        snprintf(buf, size, "%s", sh->names[d]);
    else
        snprintf(buf, size, "?");
    return buf;
}

char *pare_stats_shape_format(const pare_stats *s, const pare_stat_shape *sh,
                              char *buf, size_t size)
{
    size_t len = 0;

    if (!size)
        return buf;
    if (sh->ndim < 0) {
        snprintf(buf, size, "?");
        return buf;
    }
    buf[0] = '\0';
    len = (size_t)snprintf(buf, size, "[");
    for (int d = 0; d < sh->ndim && len < size; d++) {
        char dim[96];
        int k = snprintf(buf + len, size - len, "%s%s", d ? ", " : "",
                         pare_stats_dim_format(s, sh, d, dim, sizeof dim));
        if (k < 0)
            break;
        len += (size_t)k;
    }
    if (len < size)
        snprintf(buf + len, size - len, "]");
    return buf;
}
