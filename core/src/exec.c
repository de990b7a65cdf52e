#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pare/alloc.h"
#include "pare/exec.h"
#include "pare/op.h"

/* OpenBLAS's pthread build exports this; it is not in cblas.h everywhere. */
void openblas_set_num_threads(int num_threads);

enum value_state {
    VALUE_UNUSED = 0,
    VALUE_CONST,    /* initializer or folded at plan time */
    VALUE_INPUT,    /* runtime graph input, own buffer */
    VALUE_RUNTIME,  /* computed by a step, lives in the arena */
    VALUE_PARAM     /* trained initializer: read at every run, never folded */
};

typedef struct exec_step {
    int node;
    const pare_op_def *def;
    pare_tensor **in;
    pare_tensor **out;
    int n_in, n_out;
    size_t scratch_bytes;
    int n_threads;      /* 1 for steps too small to repay waking other threads */
} exec_step;

/* Below this many FLOPs a step runs on one thread: a fork/join costs a few
   microseconds on an idle machine and up to a scheduler time slice on a busy
   one, more than splitting ~40 us of work saves. */
#define PARALLEL_MIN_FLOPS 1e6

struct pare_exec {
    const pare_graph *g;
    int n_threads;
    pare_tensor *vals;          /* per graph value: shape and data pointer */
    unsigned char *state;       /* enum value_state per value */
    bool *kept;                 /* value readable after a run */
    pare_tensor **owned;        /* per value: folded constants and input buffers */
    char **where;               /* per node: "model.onnx: node 'x' (Op)" */
    double *flops;              /* per node */
    double *seconds;            /* per node, with opts.profile; NULL otherwise */
    bool *folded;               /* per node */
    exec_step *steps;
    int n_steps;
    pare_tensor **rewritten;    /* weights made at plan time by fusions (owned) */
    int n_rewritten;
    int (*fused)[2];            /* {conv output, BN output}: one buffer, BN folded away */
    int n_fused;
    int *inputs, n_inputs;      /* value indices of runtime inputs */
    int *outputs, n_outputs;
    void *arena;
    size_t arena_bytes;
    void *scratch;
    size_t scratch_bytes;
    size_t folded_bytes;
    /* training plans */
    bool training_plan;
    bool training;              /* forward mode of the next run */
    uint64_t seed, step;
    int *params, n_params;
    bool *needs_grad;           /* per value: on a path from a parameter */
    bool *step_backward;        /* per step: some input needs a gradient */
    pare_tensor **grad;         /* per value needing one (owned) */
    pare_tensor **grad_tmp;     /* per value: second contribution, made on demand */
    bool *grad_live;            /* per value: grad holds a contribution this pass */
    size_t grad_bytes;
};

static int default_threads(void)
{
    const char *env = getenv("PARE_THREADS");
    long n = env ? strtol(env, NULL, 10) : 0;

    if (n <= 0)
        n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void set_blas_threads(int n)
{
    static int current;
    if (current != n) {
        openblas_set_num_threads(n);
        current = n;
    }
}

void pare_exec_free(pare_exec *x)
{
    if (!x)
        return;
    if (x->owned)
        for (int v = 0; v < x->g->n_values; v++)
            pare_tensor_free(x->owned[v]);
    if (x->where)
        for (int n = 0; n < x->g->n_nodes; n++)
            pare_free(x->where[n]);
    for (int s = 0; s < x->n_steps; s++) {
        pare_free(x->steps[s].in);
        pare_free(x->steps[s].out);
    }
    pare_free(x->steps);
    for (int i = 0; i < x->n_rewritten; i++)
        pare_tensor_free(x->rewritten[i]);
    pare_free(x->rewritten);
    pare_free(x->fused);
    pare_free(x->owned);
    pare_free(x->where);
    pare_free(x->vals);
    pare_free(x->state);
    pare_free(x->kept);
    pare_free(x->flops);
    pare_free(x->seconds);
    pare_free(x->folded);
    pare_free(x->inputs);
    pare_free(x->outputs);
    pare_free(x->arena);
    pare_free(x->scratch);
    if (x->grad)
        for (int v = 0; v < x->g->n_values; v++) {
            pare_tensor_free(x->grad[v]);
            pare_tensor_free(x->grad_tmp[v]);
        }
    pare_free(x->grad);
    pare_free(x->grad_tmp);
    pare_free(x->grad_live);
    pare_free(x->needs_grad);
    pare_free(x->step_backward);
    pare_free(x->params);
    pare_free(x);
}

static pare_status oom(pare_error *err, const pare_graph *g)
{
    return pare_fail(err, PARE_ENOMEM, g->path, "out of memory planning the model");
}

/* Shapes of runtime inputs: given by the caller or taken from the graph. */
static pare_status bind_inputs(pare_exec *x, const pare_exec_opts *opts, pare_error *err)
{
    const pare_graph *g = x->g;
    int batch = opts->batch > 0 ? opts->batch : 1;

    x->inputs = pare_alloc((size_t)(g->n_inputs ? g->n_inputs : 1) * sizeof(int));
    if (!x->inputs)
        return oom(err, g);
    for (int i = 0; i < g->n_inputs; i++) {
        int v = g->inputs[i];
        const pare_value *val = &g->values[v];
        pare_tensor *t = &x->vals[v];
        char shape[128];

        if (val->init)
            continue; /* an initializer listed as input: a constant */
        if (opts->input_shapes) {
            const pare_tensor *s = &opts->input_shapes[x->n_inputs];
            pare_tensor_view(t, s->dtype ? s->dtype : val->dtype, s->ndim, s->dims, NULL);
        } else {
            if (val->ndim < 0)
                return pare_fail(err, PARE_EINPUT, g->path,
                                 "input '%s' has no known rank; give its shape", val->name);
            pare_tensor_view(t, val->dtype, val->ndim, val->dims, NULL);
            for (int d = 0; d < val->ndim; d++)
                if (t->dims[d] < 0)
                    t->dims[d] = batch;
        }
        if (t->dtype == PARE_UNDEFINED || !pare_dtype_size(t->dtype))
            return pare_fail(err, PARE_EUNSUPPORTED, g->path,
                             "input '%s' has dtype '%s', which pare cannot feed", val->name,
                             pare_dtype_name(t->dtype));
        for (int d = 0; d < t->ndim; d++)
            if (t->dims[d] < 0)
                return pare_fail(err, PARE_EINPUT, g->path, "input '%s' has an unknown dim: %s",
                                 val->name, pare_shape_format(t->ndim, t->dims, shape, sizeof shape));
        x->owned[v] = pare_tensor_new(t->dtype, t->ndim, t->dims);
        if (!x->owned[v])
            return pare_fail(err, PARE_ENOMEM, g->path, "out of memory for input '%s' %s", val->name,
                             pare_shape_format(t->ndim, t->dims, shape, sizeof shape));
        /* data stays NULL until planning ends: inference must not take the
           zero-filled buffer for a known value */
        x->state[v] = VALUE_INPUT;
        x->inputs[x->n_inputs++] = v;
    }
    return PARE_OK;
}

/* Looks up a node's kernel, with a message that tells unknown from
 * known-at-another-opset. */
static pare_status find_kernel(const pare_exec *x, int n, const pare_op_def **def, pare_error *err)
{
    const pare_node *node = &x->g->nodes[n];
    int opset = pare_graph_opset(x->g, node->domain);

    *def = pare_op_find(node->domain, node->op_type, opset);
    if (*def)
        return PARE_OK;
    if (pare_op_is_known(node->domain, node->op_type)) {
        pare_fail(err, PARE_EUNSUPPORTED, x->where[n],
                  "op '%s' has no kernel for opset %d", node->op_type, opset);
        return PARE_EUNSUPPORTED;
    }
    pare_fail(err, PARE_EUNSUPPORTED, x->where[n], "no kernel for op '%s'%s%s%s", node->op_type,
              node->domain[0] ? " in domain '" : "", node->domain, node->domain[0] ? "'" : "");
    pare_error_hint(err, "`pare ops` lists the supported ops; the model can still be browsed");
    return PARE_EUNSUPPORTED;
}

static pare_status infer_node(pare_exec *x, int n, exec_step *step, pare_error *err)
{
    const pare_graph *g = x->g;
    const pare_node *node = &g->nodes[n];
    pare_op_ctx ctx;
    pare_status rc;
    bool foldable = true;

    step->node = n;
    step->n_in = node->n_inputs;
    step->n_out = node->n_outputs;
    step->in = pare_calloc((size_t)(node->n_inputs ? node->n_inputs : 1), sizeof(pare_tensor *));
    step->out = pare_calloc((size_t)(node->n_outputs ? node->n_outputs : 1), sizeof(pare_tensor *));
    if (!step->in || !step->out)
        return oom(err, g);
    for (int i = 0; i < node->n_inputs; i++) {
        int v = node->inputs[i];
        if (v < 0)
            continue;
        if (x->state[v] == VALUE_UNUSED)
            return pare_fail(err, PARE_EINTERNAL, x->where[n],
                             "input '%s' is used before it is computed", g->values[v].name);
        step->in[i] = &x->vals[v];
        if (x->state[v] != VALUE_CONST && !(step->def->flags & PARE_OP_SHAPE_ONLY))
            foldable = false;
    }
    for (int i = 0; i < node->n_outputs; i++) {
        int v = node->outputs[i];
        if (v < 0)
            continue;
        pare_tensor_view(&x->vals[v], PARE_UNDEFINED, -1, NULL, NULL);
        step->out[i] = &x->vals[v];
    }
    memset(&ctx, 0, sizeof ctx);
    ctx.node = node;
    ctx.opset = pare_graph_opset(g, node->domain);
    ctx.n_in = step->n_in;
    ctx.in = step->in;
    ctx.n_out = step->n_out;
    ctx.out = step->out;
    ctx.n_threads = x->n_threads;
    ctx.where = x->where[n];
    ctx.err = err;
    rc = step->def->infer(&ctx);
    if (rc != PARE_OK)
        return rc;
    for (int i = 0; i < node->n_outputs; i++) {
        pare_tensor *t = step->out[i];
        if (!t)
            continue;
        if (t->ndim < 0 || t->ndim > PARE_MAX_DIMS || t->dtype == PARE_UNDEFINED)
            return pare_fail(err, PARE_EINTERNAL, x->where[n],
                             "shape inference left output %d undefined", i);
        for (int d = 0; d < t->ndim; d++)
            if (t->dims[d] < 0)
                return pare_fail(err, PARE_EINPUT, x->where[n],
                                 "output %d has a negative dim %lld", i, (long long)t->dims[d]);
    }
    step->scratch_bytes = ctx.scratch_bytes;
    x->flops[n] = step->def->flops ? step->def->flops(&ctx) : 0.0;
    step->n_threads = x->flops[n] >= PARALLEL_MIN_FLOPS ? x->n_threads : 1;

    if (!foldable) {
        for (int i = 0; i < node->n_outputs; i++)
            if (node->outputs[i] >= 0)
                x->state[node->outputs[i]] = VALUE_RUNTIME;
        return PARE_OK;
    }
    /* Everything it reads is known now: run it once and keep the result. */
    for (int i = 0; i < node->n_outputs; i++) {
        int v = node->outputs[i];
        if (v < 0)
            continue;
        x->owned[v] = pare_tensor_new(x->vals[v].dtype, x->vals[v].ndim, x->vals[v].dims);
        if (!x->owned[v])
            return oom(err, g);
        x->vals[v].data = x->owned[v]->data;
        x->folded_bytes += pare_tensor_nbytes(&x->vals[v]);
    }
    ctx.scratch = ctx.scratch_bytes ? pare_alloc_aligned(ctx.scratch_bytes) : NULL;
    if (ctx.scratch_bytes && !ctx.scratch)
        return oom(err, g);
    rc = step->def->forward(&ctx);
    pare_free(ctx.scratch);
    if (rc != PARE_OK)
        return rc;
    for (int i = 0; i < node->n_outputs; i++)
        if (node->outputs[i] >= 0)
            x->state[node->outputs[i]] = VALUE_CONST;
    x->folded[n] = true;
    return PARE_OK;
}

typedef struct buffer_group {
    size_t bytes;
    int first, last;    /* step range in which the buffer is live */
    size_t offset;
} buffer_group;

static int cmp_group_size(const void *a, const void *b, void *groups_v)
{
    const buffer_group *groups = groups_v;
    int ia = *(const int *)a, ib = *(const int *)b;
    if (groups[ia].bytes != groups[ib].bytes)
        return groups[ia].bytes < groups[ib].bytes ? 1 : -1;
    return ia - ib;
}

static int cmp_size_t_pair(const void *a, const void *b)
{
    const size_t *pa = a, *pb = b;
    return pa[0] < pb[0] ? -1 : pa[0] > pb[0];
}

/* Liveness-based placement: each runtime value (or alias group) is live from
 * the step producing it to its last reader; buffers whose live ranges do not
 * overlap share arena bytes. Greedy by size, first fit by offset. */
static pare_status place_buffers(pare_exec *x, const bool *keep, pare_error *err)
{
    const pare_graph *g = x->g;
    int nv = g->n_values;
    int *group_of = pare_alloc((size_t)(nv ? nv : 1) * sizeof(int));
    buffer_group *groups = pare_calloc((size_t)(nv ? nv : 1), sizeof *groups);
    int *order = pare_alloc((size_t)(nv ? nv : 1) * sizeof(int));
    size_t *busy = pare_alloc((size_t)(nv ? nv : 1) * 2 * sizeof(size_t));
    int n_groups = 0;
    pare_status rc = PARE_OK;

    if (!group_of || !groups || !order || !busy) {
        rc = oom(err, g);
        goto out;
    }
    for (int v = 0; v < nv; v++)
        group_of[v] = -1;
    for (int s = 0; s < x->n_steps; s++) {
        const exec_step *st = &x->steps[s];
        const pare_node *node = &g->nodes[st->node];
        for (int i = 0; i < node->n_inputs; i++) {
            int v = node->inputs[i];
            if (v >= 0 && group_of[v] >= 0 && groups[group_of[v]].last < s)
                groups[group_of[v]].last = s;
        }
        for (int i = 0; i < node->n_outputs; i++) {
            int v = node->outputs[i], in0;
            if (v < 0)
                continue;
            in0 = node->n_inputs ? node->inputs[0] : -1;
            if (i == 0 && (st->def->flags & PARE_OP_ALIAS) && !x->training_plan && in0 >= 0 &&
                group_of[in0] >= 0 &&
                pare_tensor_nbytes(&x->vals[v]) == pare_tensor_nbytes(&x->vals[in0])) {
                group_of[v] = group_of[in0];
            } else {
                group_of[v] = n_groups;
                groups[n_groups].bytes = (pare_tensor_nbytes(&x->vals[v]) + 63) & ~(size_t)63;
                groups[n_groups].first = s;
                groups[n_groups].last = s;
                n_groups++;
            }
            if (keep[v])
                groups[group_of[v]].last = x->n_steps;
            for (int f = 0; f < x->n_fused; f++)
                if (x->fused[f][0] == v) {
                    group_of[x->fused[f][1]] = group_of[v];
                    if (keep[x->fused[f][1]])
                        groups[group_of[v]].last = x->n_steps;
                }
        }
    }
    for (int i = 0; i < n_groups; i++)
        order[i] = i;
    qsort_r(order, (size_t)n_groups, sizeof *order, cmp_group_size, groups);
    x->arena_bytes = 0;
    for (int k = 0; k < n_groups; k++) {
        buffer_group *gr = &groups[order[k]];
        int n_busy = 0;
        size_t offset = 0;
        for (int j = 0; j < k; j++) {
            const buffer_group *o = &groups[order[j]];
            if (o->first <= gr->last && gr->first <= o->last) {
                busy[2 * n_busy] = o->offset;
                busy[2 * n_busy + 1] = o->offset + o->bytes;
                n_busy++;
            }
        }
        qsort(busy, (size_t)n_busy, 2 * sizeof(size_t), cmp_size_t_pair);
        for (int j = 0; j < n_busy; j++) {
            if (offset + gr->bytes <= busy[2 * j])
                break;
            if (busy[2 * j + 1] > offset)
                offset = busy[2 * j + 1];
        }
        gr->offset = offset;
        if (offset + gr->bytes > x->arena_bytes)
            x->arena_bytes = offset + gr->bytes;
    }
    x->arena = pare_alloc_aligned(x->arena_bytes ? x->arena_bytes : 64);
    if (!x->arena) {
        rc = pare_fail(err, PARE_ENOMEM, g->path, "out of memory for %zu bytes of activations",
                       x->arena_bytes);
        goto out;
    }
    for (int v = 0; v < nv; v++)
        if (group_of[v] >= 0)
            x->vals[v].data = (char *)x->arena + groups[group_of[v]].offset;
out:
    pare_free(group_of);
    pare_free(groups);
    pare_free(order);
    pare_free(busy);
    return rc;
}

/* "no value named 'x' to <what>" with a did-you-mean over all value names. */
static pare_status unknown_value(const pare_exec *x, const char *name, const char *what,
                                 pare_error *err)
{
    const pare_graph *g = x->g;
    const char **names = pare_alloc((size_t)(g->n_values ? g->n_values : 1) * sizeof(char *));
    const char *guess;

    if (!names)
        return oom(err, g);
    for (int k = 0; k < g->n_values; k++)
        names[k] = g->values[k].name;
    guess = pare_closest_word(name, names, g->n_values);
    pare_fail(err, PARE_EINPUT, g->path, "no value named '%s' to %s", name, what);
    if (guess)
        pare_error_hint(err, "did you mean '%s'?", guess);
    pare_free(names);
    return PARE_EINPUT;
}

static pare_status mark_taps(pare_exec *x, const pare_exec_opts *opts, bool *keep, pare_error *err)
{
    const pare_graph *g = x->g;

    for (int i = 0; i < opts->n_taps; i++) {
        int v = pare_graph_find_value(g, opts->taps[i]);
        if (v < 0)
            return unknown_value(x, opts->taps[i], "tap", err);
        keep[v] = true;
    }
    for (int i = 0; i < g->n_outputs; i++)
        keep[g->outputs[i]] = true;
    if (opts->keep_all || opts->training)
        for (int v = 0; v < g->n_values; v++)
            keep[v] = true;
    return PARE_OK;
}

/* Trained initializers become VALUE_PARAM: not constants for folding, data
 * bound only after planning (like inputs) so no kernel takes it as known. */
static pare_status bind_params(pare_exec *x, const pare_exec_opts *opts, pare_error *err)
{
    const pare_graph *g = x->g;

    x->params = pare_alloc((size_t)(opts->n_params ? opts->n_params : 1) * sizeof(int));
    if (!x->params)
        return oom(err, g);
    for (int i = 0; i < opts->n_params; i++) {
        int v = pare_graph_find_value(g, opts->params[i]);
        if (v < 0)
            return unknown_value(x, opts->params[i], "train", err);
        if (!g->values[v].init)
            return pare_fail(err, PARE_EINPUT, g->path,
                             "'%s' is not an initializer: only weights can be trained",
                             opts->params[i]);
        if (g->values[v].init->dtype != PARE_F32)
            return pare_fail(err, PARE_EINPUT, g->path,
                             "parameter '%s' has dtype '%s'; only float32 weights are trained",
                             opts->params[i], pare_dtype_name(g->values[v].init->dtype));
        if (x->state[v] == VALUE_PARAM)
            continue;
        x->state[v] = VALUE_PARAM;
        x->vals[v].data = NULL;
        x->params[x->n_params++] = v;
    }
    return PARE_OK;
}

/* Inference BatchNormalization right after a Conv with constant weights is
 * folded into the Conv: w'[m] = w[m] * a[m], b' = (b - mean) * a + beta with
 * a = scale / sqrt(var + eps). The BN step disappears and its output shares
 * the Conv's buffer, saving a full pass over the activation. Only when the
 * Conv's output feeds nothing else and is not kept. */
static pare_status fold_batchnorms(pare_exec *x, const bool *keep, pare_error *err)
{
    const pare_graph *g = x->g;
    int kept_steps = 0;

    for (int s = 0; s < x->n_steps; s++) {
        exec_step *bn = &x->steps[s];
        const pare_node *bn_node = &g->nodes[bn->node];
        exec_step *conv = NULL;
        const pare_tensor *w, *cb, *scale, *beta, *mean, *var;
        pare_tensor *nw = NULL, *nb = NULL, **grown_t;
        int (*grown_f)[2];
        int conv_out, bn_out;
        float eps;
        int64_t m_out, per_m;

        x->steps[kept_steps++] = *bn;
        if (strcmp(bn_node->op_type, "BatchNormalization") || bn_node->domain[0] ||
            bn->n_in != 5 || bn_node->n_outputs < 1 || bn_node->outputs[0] < 0 ||
            pare_node_attr_int(bn_node, "training_mode", 0) != 0 ||
            pare_node_attr_int(bn_node, "spatial", 1) != 1 || bn_node->inputs[0] < 0)
            continue;
        for (int o = 1; o < bn_node->n_outputs; o++)
            if (bn_node->outputs[o] >= 0)
                goto next;
        conv_out = bn_node->inputs[0];
        bn_out = bn_node->outputs[0];
        if (g->values[conv_out].producer < 0 || g->values[conv_out].n_consumers != 1 ||
            keep[conv_out] || x->state[conv_out] != VALUE_RUNTIME)
            continue;
        for (int k = kept_steps - 2; k >= 0 && !conv; k--)
            if (x->steps[k].node == g->values[conv_out].producer)
                conv = &x->steps[k];
        if (!conv || g->nodes[conv->node].outputs[0] != conv_out ||
            strcmp(g->nodes[conv->node].op_type, "Conv") || g->nodes[conv->node].domain[0])
            continue;
        w = conv->in[1];
        cb = conv->n_in > 2 ? conv->in[2] : NULL;
        scale = bn->in[1], beta = bn->in[2], mean = bn->in[3], var = bn->in[4];
        if (!w || w->dtype != PARE_F32 || w->ndim < 1 || x->vals[conv_out].dtype != PARE_F32)
            continue;
        m_out = w->dims[0];
        for (int i = 1; i < 5; i++)
            if (!bn->in[i] || bn->in[i]->dtype != PARE_F32 || !bn->in[i]->data ||
                pare_tensor_numel(bn->in[i]) != m_out)
                goto next;
        if (!w->data || (cb && (!cb->data || cb->dtype != PARE_F32 || pare_tensor_numel(cb) != m_out)))
            continue;
        /* Only constants reach here: no input of the conv or BN is a runtime value. */
        if (x->state[g->nodes[conv->node].inputs[1]] != VALUE_CONST ||
            (cb && x->state[g->nodes[conv->node].inputs[2]] != VALUE_CONST))
            continue;
        nw = pare_tensor_dup(w);
        nb = pare_tensor_new(PARE_F32, 1, &m_out);
        grown_t = pare_realloc(x->rewritten, (size_t)(x->n_rewritten + 2) * sizeof *grown_t);
        if (grown_t)
            x->rewritten = grown_t;
        grown_f = pare_realloc(x->fused, (size_t)(x->n_fused + 1) * sizeof *grown_f);
        if (grown_f)
            x->fused = grown_f;
        if (!nw || !nb || !grown_t || !grown_f) {
            pare_tensor_free(nw);
            pare_tensor_free(nb);
            return oom(err, g);
        }
        x->rewritten[x->n_rewritten++] = nw;
        x->rewritten[x->n_rewritten++] = nb;
        eps = pare_node_attr_float(bn_node, "epsilon", 1e-5f);
        per_m = pare_tensor_numel(w) / m_out;
        for (int64_t m = 0; m < m_out; m++) {
            float a = pare_tensor_f32(scale)[m] / sqrtf(pare_tensor_f32(var)[m] + eps);
            float b0 = cb ? pare_tensor_f32(cb)[m] : 0.0f;
            for (int64_t k = 0; k < per_m; k++)
                pare_tensor_f32(nw)[m * per_m + k] *= a;
            pare_tensor_f32(nb)[m] = (b0 - pare_tensor_f32(mean)[m]) * a + pare_tensor_f32(beta)[m];
        }
        if (conv->n_in < 3) {
            pare_tensor **in = pare_realloc(conv->in, 3 * sizeof *in);
            if (!in)
                return oom(err, g);
            conv->in = in;
            conv->n_in = 3;
        }
        conv->in[1] = nw;
        conv->in[2] = nb;
        x->fused[x->n_fused][0] = conv_out;
        x->fused[x->n_fused][1] = bn_out;
        x->n_fused++;
        pare_free(bn->in);
        pare_free(bn->out);
        kept_steps--;
    next:;
    }
    x->n_steps = kept_steps;
    return PARE_OK;
}

static pare_status plan_gradients(pare_exec *x, pare_error *err);

pare_status pare_exec_new(const pare_graph *g, const pare_exec_opts *opts_in,
                          pare_exec **out, pare_error *err)
{
    pare_exec_opts defaults = {0};
    const pare_exec_opts *opts = opts_in ? opts_in : &defaults;
    pare_exec *x = pare_calloc(1, sizeof *x);
    size_t nv = (size_t)(g->n_values ? g->n_values : 1), nn = (size_t)(g->n_nodes ? g->n_nodes : 1);
    bool *keep = NULL;
    pare_status rc = PARE_OK;

    *out = NULL;
    if (!x)
        return oom(err, g);
    x->g = g;
    x->n_threads = opts->n_threads > 0 ? opts->n_threads : default_threads();
    x->vals = pare_calloc(nv, sizeof *x->vals);
    x->state = pare_calloc(nv, 1);
    x->kept = pare_calloc(nv, sizeof *x->kept);
    x->owned = pare_calloc(nv, sizeof *x->owned);
    x->where = pare_calloc(nn, sizeof *x->where);
    x->flops = pare_calloc(nn, sizeof *x->flops);
    x->folded = pare_calloc(nn, sizeof *x->folded);
    x->steps = pare_calloc(nn, sizeof *x->steps);
    x->outputs = pare_alloc((size_t)(g->n_outputs ? g->n_outputs : 1) * sizeof(int));
    keep = pare_calloc(nv, sizeof *keep);
    if (opts->profile && !(x->seconds = pare_calloc(nn, sizeof *x->seconds))) {
        rc = oom(err, g);
        goto fail;
    }
    if (!x->vals || !x->state || !x->kept || !x->owned || !x->where || !x->flops ||
        !x->folded || !x->steps || !x->outputs || !keep) {
        rc = oom(err, g);
        goto fail;
    }
    for (int n = 0; n < g->n_nodes; n++) {
        char buf[512];
        x->where[n] = pare_strdup(pare_graph_node_where(g, n, buf, sizeof buf));
        if (!x->where[n]) {
            rc = oom(err, g);
            goto fail;
        }
    }
    for (int v = 0; v < g->n_values; v++) {
        const pare_tensor *init = g->values[v].init;
        if (!init)
            continue;
        pare_tensor_view(&x->vals[v], init->dtype, init->ndim, init->dims, init->data);
        x->state[v] = VALUE_CONST;
    }
    rc = bind_inputs(x, opts, err);
    if (rc == PARE_OK && opts->training) {
        x->training_plan = x->training = true;
        x->seed = opts->seed;
        rc = bind_params(x, opts, err);
    }
    if (rc == PARE_OK)
        rc = mark_taps(x, opts, keep, err);
    for (int n = 0; n < g->n_nodes && rc == PARE_OK; n++) {
        exec_step *st = &x->steps[x->n_steps];
        rc = find_kernel(x, n, &st->def, err);
        if (rc == PARE_OK)
            rc = infer_node(x, n, st, err);
        if (rc != PARE_OK || x->folded[n]) {
            pare_free(st->in);
            pare_free(st->out);
            memset(st, 0, sizeof *st);
        } else {
            x->n_steps++;
            if (st->scratch_bytes > x->scratch_bytes)
                x->scratch_bytes = st->scratch_bytes;
        }
    }
    for (int i = 0; i < x->n_inputs; i++)
        x->vals[x->inputs[i]].data = x->owned[x->inputs[i]]->data;
    for (int i = 0; i < x->n_params; i++)
        x->vals[x->params[i]].data = g->values[x->params[i]].init->data;
    if (rc == PARE_OK && !opts->keep_all && !opts->training)
        rc = fold_batchnorms(x, keep, err);
    if (rc == PARE_OK)
        rc = place_buffers(x, keep, err);
    if (rc == PARE_OK && opts->training)
        rc = plan_gradients(x, err);
    if (rc == PARE_OK && x->scratch_bytes) {
        x->scratch = pare_alloc_aligned(x->scratch_bytes);
        if (!x->scratch)
            rc = oom(err, g);
    }
    if (rc != PARE_OK)
        goto fail;
    for (int i = 0; i < g->n_outputs; i++)
        x->outputs[x->n_outputs++] = g->outputs[i];
    for (int v = 0; v < g->n_values; v++)
        x->kept[v] = x->state[v] == VALUE_CONST || x->state[v] == VALUE_INPUT ||
                     x->state[v] == VALUE_PARAM ||
                     (x->state[v] == VALUE_RUNTIME && keep[v]);
    pare_free(keep);
    *out = x;
    return PARE_OK;
fail:
    pare_free(keep);
    pare_exec_free(x);
    return rc;
}

pare_status pare_exec_batch_shape(const pare_graph *g, int input, int batch, int sample_ndim,
                                  const int64_t *sample_dims, pare_tensor *shape,
                                  pare_error *err)
{
    const pare_value *val = &g->values[input];
    int64_t row = 1, sample_numel = pare_shape_numel(sample_ndim, sample_dims);
    char a[128], b[128];

    if (val->ndim < 1)
        return pare_fail(err, PARE_EINPUT, g->path, "input '%s' has no batch dim", val->name);
    pare_tensor_view(shape, PARE_F32, val->ndim, val->dims, NULL);
    shape->dims[0] = batch;
    for (int d = 1; d < val->ndim; d++) {
        if (shape->dims[d] < 0 && val->ndim == sample_ndim + 1)
            shape->dims[d] = sample_dims[d - 1];
        if (shape->dims[d] < 0)
            return pare_fail(err, PARE_EUNSUPPORTED, g->path,
                             "input '%s' has symbolic dim %d that the data cannot fill",
                             val->name, d);
        row *= shape->dims[d];
    }
    if (row != sample_numel)
        return pare_fail(err, PARE_EINPUT, g->path, "input '%s' %s does not fit samples %s",
                         val->name, pare_shape_format(val->ndim, val->dims, a, sizeof a),
                         pare_shape_format(sample_ndim, sample_dims, b, sizeof b));
    return PARE_OK;
}

/* splitmix64's finalizer: per-node seeds from (plan seed, step, node). */
static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void step_ctx(const pare_exec *x, const exec_step *st, pare_op_ctx *ctx)
{
    const pare_node *node = &x->g->nodes[st->node];

    ctx->node = node;
    ctx->opset = pare_graph_opset(x->g, node->domain);
    ctx->n_in = st->n_in;
    ctx->in = st->in;
    ctx->n_out = st->n_out;
    ctx->out = st->out;
    ctx->scratch = x->scratch;
    ctx->scratch_bytes = st->scratch_bytes;
    ctx->n_threads = st->n_threads;
    ctx->where = x->where[st->node];
    ctx->training = x->training;
    ctx->seed = x->training_plan ? mix64(mix64(x->seed ^ mix64(x->step)) + (uint64_t)st->node) : 0;
}

pare_status pare_exec_run(pare_exec *x, pare_error *err)
{
    pare_op_ctx ctx;

    /* One thread pool: kernels parallelise with OpenMP (and call OpenBLAS
       from inside their parallel regions), so OpenBLAS's own threads would
       only compete with them for the same cores. */
    set_blas_threads(1);
    memset(&ctx, 0, sizeof ctx);
    ctx.err = err;
    for (int s = 0; s < x->n_steps; s++) {
        const exec_step *st = &x->steps[s];
        pare_status rc;

        step_ctx(x, st, &ctx);
        if (x->seconds) {
            double t0 = now_seconds();
            rc = st->def->forward(&ctx);
            x->seconds[st->node] += now_seconds() - t0;
        } else {
            rc = st->def->forward(&ctx);
        }
        if (rc != PARE_OK)
            return rc;
    }
    return PARE_OK;
}

/* ---- training ---- */

/* Which values need gradients (those downstream of a parameter), which steps
 * run backward, gradient buffers, and the workspace backward needs. An op
 * without backward on such a path is an error now rather than a silently
 * untrained parameter later. */
static pare_status plan_gradients(pare_exec *x, pare_error *err)
{
    const pare_graph *g = x->g;
    size_t nv = (size_t)(g->n_values ? g->n_values : 1);
    pare_op_ctx ctx;

    x->needs_grad = pare_calloc(nv, sizeof *x->needs_grad);
    x->grad_live = pare_calloc(nv, sizeof *x->grad_live);
    x->grad = pare_calloc(nv, sizeof *x->grad);
    x->grad_tmp = pare_calloc(nv, sizeof *x->grad_tmp);
    x->step_backward = pare_calloc((size_t)(x->n_steps ? x->n_steps : 1), sizeof *x->step_backward);
    if (!x->needs_grad || !x->grad_live || !x->grad || !x->grad_tmp || !x->step_backward)
        return oom(err, g);
    for (int i = 0; i < x->n_params; i++)
        x->needs_grad[x->params[i]] = true;
    memset(&ctx, 0, sizeof ctx);
    ctx.err = err;
    for (int s = 0; s < x->n_steps; s++) {
        const exec_step *st = &x->steps[s];
        const pare_node *node = &g->nodes[st->node];
        bool any_in = false, float_out = false;

        for (int i = 0; i < node->n_inputs; i++)
            if (node->inputs[i] >= 0 && x->needs_grad[node->inputs[i]])
                any_in = true;
        for (int i = 0; i < node->n_outputs; i++)
            if (node->outputs[i] >= 0 && (x->vals[node->outputs[i]].dtype == PARE_F32 ||
                                          (st->def->flags & PARE_OP_INT_GRAD)))
                float_out = true;
        if (!any_in || !float_out || (st->def->flags & PARE_OP_SHAPE_ONLY))
            continue;
        if (!st->def->backward) {
            pare_fail(err, PARE_EUNSUPPORTED, x->where[st->node],
                      "op '%s' has no backward: gradients cannot flow through it",
                      node->op_type);
            pare_error_hint(err, "freeze the parameters before this node, or see `pare ops` "
                                 "for the ops that train");
            return PARE_EUNSUPPORTED;
        }
        x->step_backward[s] = true;
        for (int i = 0; i < node->n_outputs; i++)
            if (node->outputs[i] >= 0 && (x->vals[node->outputs[i]].dtype == PARE_F32 ||
                                          (st->def->flags & PARE_OP_INT_GRAD)))
                x->needs_grad[node->outputs[i]] = true;
        if (st->def->backward_scratch) {
            size_t b;
            step_ctx(x, st, &ctx);
            b = st->def->backward_scratch(&ctx);
            if (b > x->scratch_bytes)
                x->scratch_bytes = b;
        }
    }
    for (int v = 0; v < g->n_values; v++) {
        if (!x->needs_grad[v])
            continue;
        x->grad[v] = pare_tensor_new(PARE_F32, x->vals[v].ndim, x->vals[v].dims);
        if (!x->grad[v])
            return pare_fail(err, PARE_ENOMEM, g->path, "out of memory for gradients");
        x->grad_bytes += pare_tensor_nbytes(x->grad[v]);
    }
    return PARE_OK;
}

void pare_exec_set_step(pare_exec *x, uint64_t step)
{
    x->step = step;
}

void pare_exec_set_training(pare_exec *x, bool on)
{
    x->training = on && x->training_plan;
}

static void add_into(float *restrict dst, const float *restrict src, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        dst[i] += src[i];
}

/* A second buffer for value v's gradient (the first holds what earlier
 * consumers contributed). dup: the value is read twice by one node, whose
 * kernel writes both din entries: give the repeat its own buffer. */
static pare_tensor *grad_extra(pare_exec *x, int v, pare_tensor **dup)
{
    pare_tensor **slot = dup ? dup : &x->grad_tmp[v];
    if (!*slot)
        *slot = pare_tensor_new(PARE_F32, x->grad[v]->ndim, x->grad[v]->dims);
    return *slot;
}

pare_status pare_exec_backward(pare_exec *x, const int *values, const pare_tensor *const *grads,
                               int n, pare_error *err)
{
    const pare_graph *g = x->g;
    pare_tensor *dout[16], *din[16], *dups[16] = {0};
    pare_op_ctx ctx;
    pare_status rc = PARE_OK;

    if (!x->training_plan)
        return pare_fail(err, PARE_EINPUT, g->path, "backward needs a training plan");
    memset(x->grad_live, 0, (size_t)g->n_values * sizeof *x->grad_live);
    for (int i = 0; i < n; i++) {
        int v = values[i];
        const pare_tensor *gt = grads[i];
        if (v < 0 || v >= g->n_values || !x->grad[v])
            return pare_fail(err, PARE_EINPUT, g->path,
                             "value '%s' carries no gradient: no trained parameter comes before it",
                             v >= 0 && v < g->n_values ? g->values[v].name : "?");
        if (gt->dtype != PARE_F32 || pare_tensor_numel(gt) != pare_tensor_numel(x->grad[v]))
            return pare_fail(err, PARE_EINPUT, g->path,
                             "gradient for '%s' has %lld elements, the value has %lld",
                             g->values[v].name, (long long)pare_tensor_numel(gt),
                             (long long)pare_tensor_numel(x->grad[v]));
        if (x->grad_live[v])
            add_into(pare_tensor_f32(x->grad[v]), pare_tensor_f32(gt), pare_tensor_numel(gt));
        else
            memcpy(x->grad[v]->data, gt->data, pare_tensor_nbytes(x->grad[v]));
        x->grad_live[v] = true;
    }
    set_blas_threads(1);
    memset(&ctx, 0, sizeof ctx);
    ctx.err = err;
    for (int s = x->n_steps - 1; s >= 0 && rc == PARE_OK; s--) {
        const exec_step *st = &x->steps[s];
        const pare_node *node = &g->nodes[st->node];
        bool any = false;

        if (!x->step_backward[s])
            continue;
        if (node->n_inputs > 16 || node->n_outputs > 16)
            return pare_fail(err, PARE_EUNSUPPORTED, x->where[st->node],
                             "training through a node with more than 16 inputs or outputs");
        for (int i = 0; i < node->n_outputs; i++) {
            int v = node->outputs[i];
            dout[i] = v >= 0 && x->grad[v] && x->grad_live[v] ? x->grad[v] : NULL;
            any |= dout[i] != NULL;
        }
        if (!any)
            continue;
        for (int i = 0; i < node->n_inputs; i++) {
            int v = node->inputs[i];
            bool repeat = false;
            din[i] = NULL;
            if (v < 0 || !x->grad[v])
                continue;
            for (int j = 0; j < i; j++)
                repeat |= node->inputs[j] == v;
            if (repeat)
                din[i] = grad_extra(x, v, &dups[i]);
            else if (x->grad_live[v])
                din[i] = grad_extra(x, v, NULL);
            else
                din[i] = x->grad[v];
            if (!din[i])
                return pare_fail(err, PARE_ENOMEM, g->path, "out of memory for gradients");
            if (dups[i] && pare_tensor_numel(dups[i]) != pare_tensor_numel(x->grad[v])) {
                pare_tensor_free(dups[i]);
                dups[i] = NULL;
                din[i] = grad_extra(x, v, &dups[i]);
                if (!din[i])
                    return pare_fail(err, PARE_ENOMEM, g->path, "out of memory for gradients");
            }
        }
        step_ctx(x, st, &ctx);
        ctx.dout = dout;
        ctx.din = din;
        rc = st->def->backward(&ctx);
        for (int i = 0; i < node->n_inputs && rc == PARE_OK; i++) {
            int v = node->inputs[i];
            if (!din[i])
                continue;
            if (din[i] != x->grad[v])
                add_into(pare_tensor_f32(x->grad[v]), pare_tensor_f32(din[i]),
                         pare_tensor_numel(din[i]));
            x->grad_live[v] = true;
        }
    }
    for (int i = 0; i < 16; i++)
        pare_tensor_free(dups[i]);
    for (int i = 0; i < x->n_params && rc == PARE_OK; i++) {
        int v = x->params[i];
        if (!x->grad_live[v]) {
            memset(x->grad[v]->data, 0, pare_tensor_nbytes(x->grad[v]));
            x->grad_live[v] = true;
        }
    }
    return rc;
}

const pare_tensor *pare_exec_grad(const pare_exec *x, int v)
{
    if (!x->grad || v < 0 || v >= x->g->n_values || !x->grad_live[v])
        return NULL;
    return x->grad[v];
}

int pare_exec_n_params(const pare_exec *x)
{
    return x->n_params;
}

int pare_exec_param(const pare_exec *x, int i)
{
    return i >= 0 && i < x->n_params ? x->params[i] : -1;
}

size_t pare_exec_grad_bytes(const pare_exec *x)
{
    return x->grad_bytes;
}

double pare_exec_node_seconds(const pare_exec *x, int n)
{
    return x->seconds && n >= 0 && n < x->g->n_nodes ? x->seconds[n] : 0.0;
}

void pare_exec_profile_reset(pare_exec *x)
{
    if (x->seconds)
        memset(x->seconds, 0, (size_t)x->g->n_nodes * sizeof *x->seconds);
}

int pare_exec_n_inputs(const pare_exec *x)
{
    return x->n_inputs;
}

pare_tensor *pare_exec_input(pare_exec *x, int i)
{
    return i >= 0 && i < x->n_inputs ? &x->vals[x->inputs[i]] : NULL;
}

int pare_exec_n_outputs(const pare_exec *x)
{
    return x->n_outputs;
}

const pare_tensor *pare_exec_output(const pare_exec *x, int i)
{
    return i >= 0 && i < x->n_outputs ? &x->vals[x->outputs[i]] : NULL;
}

const pare_tensor *pare_exec_value(const pare_exec *x, const char *name)
{
    int v = pare_graph_find_value(x->g, name);
    return v >= 0 && x->kept[v] ? &x->vals[v] : NULL;
}

const pare_tensor *pare_exec_value_shape(const pare_exec *x, int v)
{
    if (v < 0 || v >= x->g->n_values || x->state[v] == VALUE_UNUSED)
        return NULL;
    return &x->vals[v];
}

double pare_exec_node_flops(const pare_exec *x, int n)
{
    return n >= 0 && n < x->g->n_nodes ? x->flops[n] : 0.0;
}

bool pare_exec_node_is_folded(const pare_exec *x, int n)
{
    return n >= 0 && n < x->g->n_nodes && x->folded[n];
}

size_t pare_exec_arena_bytes(const pare_exec *x)
{
    return x->arena_bytes;
}

size_t pare_exec_folded_bytes(const pare_exec *x)
{
    return x->folded_bytes;
}

size_t pare_exec_scratch_bytes(const pare_exec *x)
{
    return x->scratch_bytes;
}

int pare_exec_threads(const pare_exec *x)
{
    return x->n_threads;
}
