/* Reconstruction (AdaRound): learned rounding of quantized weights.
 *
 * Layer-wise: for each Conv/Gemm/MatMul whose weight the QDQ graph stores as
 * int8, in topological order, collect the layer's input as the QDQ graph
 * computes it (earlier layers already reconstructed) and its fp32 output from
 * the original graph over the calibration batches; then learn, per weight,
 * whether to round down or up. The soft weight is
 *   w~ = s * clamp(floor(w / s) + h(V), qmin, qmax),
 *   h(V) = clamp(sigmoid(V) (zeta - gamma) + gamma, 0, 1), zeta 1.1, gamma -0.1
 * and the loss is mean((layer(x~, w~) - y_fp32)^2) plus
 *   lambda * sum(1 - |2h - 1|^beta), beta annealed from 20 to 2
 * (after a 20 % warm-up without it), which pushes every h to 0 or 1. The
 * layer runs as a one-node graph on the executor's training plan, so its
 * forward and weight gradient are the op registry's kernels. At the end,
 * q = clamp(floor(w / s) + [h >= 0.5], qmin, qmax) replaces the stored int8
 * weight. Memory: one layer's inputs and outputs over the calibration batches.
 *
 * Region-wise (BRECQ): a region is the part of the QDQ graph between some
 * input values and some output values. Its nodes are cut out of a clone of the
 * QDQ graph (activation Q/DQ pairs inside stay: the region sees quantized
 * activations as deployed), every quantized weight inside that no earlier
 * region learned becomes a float parameter holding w~, and all of them learn
 * their rounding together against the MSE of the region's outputs vs the fp32
 * graph's. Quantized layers outside every region are reconstructed
 * layer-wise. Memory: the region's inputs and outputs over the calibration
 * batches and one training plan of the region. */
#include <math.h>
#include <string.h>

#include "pare/alloc.h"
#include "pare/exec.h"
#include "pare/quant.h"
#include "quant_internal.h"

#define AR_ZETA 1.1
#define AR_GAMMA (-0.1)
#define AR_LAMBDA 0.01

typedef struct recon_layer {
    int node;            /* in qdq */
    int wq;              /* qdq value: int8 weight */
    int ws;              /* qdq value: weight scale */
    int64_t axis, block; /* of the weight's DequantizeLinear */
    int32_t qmin, qmax;  /* the integer range the weight was quantized to */
    const char *x_name;  /* qdq value: the layer's input */
    const char *y_name;  /* output name (same in both graphs) */
    int g_node;          /* the node in g */
} recon_layer;

/* A region: value names (borrowed from the options or from g) and the nodes
 * of qdq between them. */
typedef struct recon_region {
    const char *const *in;
    int n_in;
    const char *const *out;
    int n_out;
    const char *own[2];  /* default regions: one input, one output */
    const char *where;
    int index;           /* 1-based, for messages */
    bool *qdq_node;      /* per qdq node: inside */
} recon_region;

/* AdaRound state of one weight. */
typedef struct ar_weight {
    int64_t n;
    const float *wf;     /* fp32 weight */
    const float *sc;     /* scales of its DequantizeLinear */
    int64_t *sidx;       /* scale index per element */
    double *v, *m1, *m2, *base;
    int32_t qmin, qmax;
} ar_weight;

/* Scale index of weight element k for the DequantizeLinear layout. */
static int64_t scale_index(const pare_tensor *w, int64_t axis, int64_t block, int64_t s_n, int64_t k)
{
    int64_t inner, c, o, ci, i;

    if (s_n == 1)
        return 0;
    if (axis < 0)
        axis += w->ndim;
    inner = pare_shape_numel(w->ndim - (int)axis - 1, w->dims + axis + 1);
    c = w->dims[axis];
    i = k % inner;
    ci = (k / inner) % c;
    o = k / (inner * c);
    if (block <= 0)
        return ci;
    return (o * ((c + block - 1) / block) + ci / block) * inner + i;
}

/* The one-node graph: input "x" of x_shape, weight "w" (float copy), bias
 * "b" when the layer has one, output "y". */
static pare_status mini_graph(const pare_graph *g, int gn, const pare_tensor *x_shape,
                              pare_graph **out, pare_error *err)
{
    const pare_node *node = &g->nodes[gn];
    pare_graph *m = pare_graph_new();
    int in[3], n_in = 2, xv, yv, nn;
    pare_status rc = PARE_OK;

    *out = NULL;
    if (!m)
        return pare_fail(err, PARE_ENOMEM, NULL, "out of memory");
    m->opsets = pare_calloc((size_t)(g->n_opsets ? g->n_opsets : 1), sizeof *m->opsets);
    if (!m->opsets) {
        pare_graph_free(m);
        return pare_fail(err, PARE_ENOMEM, NULL, "out of memory");
    }
    for (int i = 0; i < g->n_opsets; i++) {
        m->opsets[i].domain = pare_strdup(g->opsets[i].domain);
        m->opsets[i].version = g->opsets[i].version;
        m->n_opsets++;
        if (!m->opsets[i].domain)
            rc = pare_fail(err, PARE_ENOMEM, NULL, "out of memory");
    }
    xv = rc == PARE_OK ? pare_graph_add_value(m, "x", err) : rc;
    if (xv < 0) {
        pare_graph_free(m);
        return xv;
    }
    m->values[xv].is_input = true;
    m->values[xv].dtype = PARE_F32;
    m->values[xv].ndim = x_shape->ndim;
    memcpy(m->values[xv].dims, x_shape->dims, sizeof(int64_t) * (size_t)x_shape->ndim);
    m->inputs = pare_alloc(sizeof(int));
    if (!m->inputs) {
        pare_graph_free(m);
        return pare_fail(err, PARE_ENOMEM, NULL, "out of memory");
    }
    m->inputs[m->n_inputs++] = xv;
    in[0] = xv;
    in[1] = pare_graph_add_initializer(m, "w", pare_tensor_dup(g->values[node->inputs[1]].init), err);
    if (in[1] >= 0 && node->n_inputs > 2 && node->inputs[2] >= 0) {
        in[2] = pare_graph_add_initializer(m, "b", pare_tensor_dup(g->values[node->inputs[2]].init),
                                           err);
        n_in = 3;
    }
    yv = in[1] < 0 ? in[1] : n_in == 3 && in[2] < 0 ? in[2] : pare_graph_add_value(m, "y", err);
    nn = yv < 0 ? yv : pare_graph_add_node(m, node->op_type, "", "layer", in, n_in, &yv, 1, err);
    for (int a = 0; nn >= 0 && a < node->n_attrs && rc == PARE_OK; a++)
        rc = pare_node_add_attr(&m->nodes[nn], &node->attrs[a], err);
    if (nn < 0)
        rc = nn;
    if (rc == PARE_OK) {
        m->outputs = pare_alloc(sizeof(int));
        if (!m->outputs)
            rc = pare_fail(err, PARE_ENOMEM, NULL, "out of memory");
        else {
            m->outputs[m->n_outputs++] = yv;
            m->values[yv].is_output = true;
            rc = pare_graph_index(m, err);
        }
    }
    if (rc != PARE_OK) {
        pare_graph_free(m);
        return rc;
    }
    *out = m;
    return PARE_OK;
}

/* Runs `g` over the calibration batches keeping values `names` of every
 * batch, each in one buffer (bufs[i], n_batches x per-batch elements, shape
 * of one batch in shapes[i]). */
static pare_status collect(const pare_graph *g, pare_dataset *ds, const pare_quant_opts *o,
                           const char *const *names, int n, float **bufs, pare_tensor *shapes,
                           pare_error *err)
{
    pare_exec *x = NULL;
    int batch, nb;
    pare_status rc;

    for (int i = 0; i < n; i++)
        bufs[i] = NULL;
    quant_batches(ds, o, &batch, &nb);
    rc = quant_exec_new(g, ds, batch, names, n, o->n_threads, &x, err);
    for (int b = 0; b < nb && rc == PARE_OK; b++) {
        rc = pare_dataset_fill(ds, (int64_t)b * batch, batch, pare_exec_input(x, 0), NULL, err);
        if (rc == PARE_OK)
            rc = pare_exec_run(x, err);
        for (int i = 0; i < n && rc == PARE_OK; i++) {
            const pare_tensor *t = pare_exec_value(x, names[i]);
            int64_t per;
            if (!t || t->dtype != PARE_F32) {
                rc = pare_fail(err, PARE_EINTERNAL, g->path, "value '%s' was not kept", names[i]);
                break;
            }
            per = pare_tensor_numel(t);
            if (!bufs[i]) {
                pare_tensor_view(&shapes[i], PARE_F32, t->ndim, t->dims, NULL);
                bufs[i] = pare_alloc((size_t)(per * nb) * sizeof(float));
                if (!bufs[i]) {
                    rc = pare_fail(err, PARE_ENOMEM, NULL, "out of memory keeping '%s' for "
                                   "reconstruction", names[i]);
                    break;
                }
            }
            memcpy(bufs[i] + per * b, t->data, (size_t)per * sizeof(float));
        }
    }
    pare_exec_free(x);
    if (rc != PARE_OK)
        for (int i = 0; i < n; i++) {
            pare_free(bufs[i]);
            bufs[i] = NULL;
        }
    return rc;
}

static double h_of(double v)
{
    double h = 1.0 / (1.0 + exp(-v)) * (AR_ZETA - AR_GAMMA) + AR_GAMMA;
    return h < 0 ? 0 : h > 1 ? 1 : h;
}

static void ar_fini(ar_weight *a)
{
    pare_free(a->v);
    pare_free(a->m1);
    pare_free(a->m2);
    pare_free(a->base);
    pare_free(a->sidx);
    memset(a, 0, sizeof *a);
}

/* Starts at the nearest rounding: h(V) = frac(w / s). */
static pare_status ar_init(ar_weight *a, const pare_tensor *wf, const pare_tensor *sc,
                           const recon_layer *L, pare_error *err)
{
    int64_t n = pare_tensor_numel(wf), s_n = pare_tensor_numel(sc);

    memset(a, 0, sizeof *a);
    a->n = n;
    a->wf = pare_tensor_f32(wf);
    a->sc = pare_tensor_f32(sc);
    a->qmin = L->qmin;
    a->qmax = L->qmax;
    a->v = pare_alloc((size_t)n * sizeof *a->v);
    a->m1 = pare_calloc((size_t)n, sizeof *a->m1);
    a->m2 = pare_calloc((size_t)n, sizeof *a->m2);
    a->base = pare_alloc((size_t)n * sizeof *a->base);
    a->sidx = pare_alloc((size_t)n * sizeof *a->sidx);
    if (!a->v || !a->m1 || !a->m2 || !a->base || !a->sidx) {
        ar_fini(a);
        return pare_fail(err, PARE_ENOMEM, NULL, "out of memory");
    }
    for (int64_t k = 0; k < n; k++) {
        double s, r, rest, p;
        a->sidx[k] = scale_index(wf, L->axis, L->block, s_n, k);
        s = a->sc[a->sidx[k]];
        r = s > 0 ? a->wf[k] / s : 0.0;
        a->base[k] = floor(r);
        rest = r - a->base[k];
        p = (rest - AR_GAMMA) / (AR_ZETA - AR_GAMMA);
        p = p < 1e-4 ? 1e-4 : p > 1 - 1e-4 ? 1 - 1e-4 : p;
        a->v[k] = log(p / (1 - p));
    }
    return PARE_OK;
}

/* The soft weight w~ into w. */
static void ar_soft(const ar_weight *a, float *w)
{
    for (int64_t k = 0; k < a->n; k++) {
        double q = a->base[k] + h_of(a->v[k]);
        q = q < a->qmin ? a->qmin : q > a->qmax ? a->qmax : q;
        w[k] = (float)(q * a->sc[a->sidx[k]]);
    }
}

/* The rounding regulariser's schedule at iteration it of iters. */
static void ar_schedule(int it, int iters, double *beta, double *lam)
{
    double warm = 0.2 * iters;

    *beta = 0.0;
    *lam = 0.0;
    if (it >= warm) {
        double t = (it - warm) / (iters - warm > 1 ? iters - warm : 1);
        *beta = 20.0 + (2.0 - 20.0) * t;
        *lam = AR_LAMBDA;
    }
}

/* One Adam step on V from dL/dw~ (dw). */
static void ar_step(ar_weight *a, const float *dw, int it, double beta, double lam, double lr)
{
    double c1 = 1 - pow(0.9, it + 1), c2 = 1 - pow(0.999, it + 1);

    for (int64_t k = 0; k < a->n; k++) {
        double sig = 1.0 / (1.0 + exp(-a->v[k]));
        double hr = sig * (AR_ZETA - AR_GAMMA) + AR_GAMMA, h = h_of(a->v[k]);
        double q = a->base[k] + h, g_v = 0.0;
        if (hr > 0 && hr < 1) {
            double dh = 0.0;
            if (q >= a->qmin && q <= a->qmax)
                dh = (double)dw[k] * a->sc[a->sidx[k]];
            if (lam > 0) {
                double t = 2 * h - 1;
                dh += -lam * beta * pow(fabs(t), beta - 1) * (t > 0 ? 2.0 : t < 0 ? -2.0 : 0.0);
            }
            g_v = dh * sig * (1 - sig) * (AR_ZETA - AR_GAMMA);
        }
        a->m1[k] = 0.9 * a->m1[k] + 0.1 * g_v;
        a->m2[k] = 0.999 * a->m2[k] + 0.001 * g_v * g_v;
        a->v[k] -= lr * (a->m1[k] / c1) / (sqrt(a->m2[k] / c2) + 1e-8);
    }
}

/* The hard rounding into the stored integers. */
static void ar_store(const ar_weight *a, int8_t *q)
{
    for (int64_t k = 0; k < a->n; k++) {
        double r = a->base[k] + (h_of(a->v[k]) >= 0.5 ? 1.0 : 0.0);
        r = r < a->qmin ? a->qmin : r > a->qmax ? a->qmax : r;
        q[k] = (int8_t)r;
    }
}

/* Learns the rounding of one layer and writes it into the int8 weight. */
static pare_status recon_one(const pare_graph *g, pare_graph *qdq, pare_dataset *ds,
                             const pare_quant_opts *o, const recon_layer *L, pare_error *err)
{
    const pare_tensor *wf = g->values[g->nodes[L->g_node].inputs[1]].init;
    float *xs = NULL, *ys = NULL;
    ar_weight a = {0};
    pare_tensor xshape, yshape, *dy = NULL;
    pare_graph *mini = NULL;
    pare_exec *x = NULL;
    pare_exec_opts eo;
    const char *params[1] = {"w"};
    int batch, nb, yv, wv, iters, it = 0;
    pare_status rc;

    quant_batches(ds, o, &batch, &nb);
    rc = collect(qdq, ds, o, &L->x_name, 1, &xs, &xshape, err);
    if (rc == PARE_OK)
        rc = collect(g, ds, o, &L->y_name, 1, &ys, &yshape, err);
    if (rc == PARE_OK)
        rc = mini_graph(g, L->g_node, &xshape, &mini, err);
    if (rc == PARE_OK) {
        memset(&eo, 0, sizeof eo);
        eo.batch = batch;
        eo.n_threads = o->n_threads;
        eo.training = true;
        eo.params = params;
        eo.n_params = 1;
        rc = pare_exec_new(mini, &eo, &x, err);
    }
    if (rc == PARE_OK)
        rc = ar_init(&a, wf, qdq->values[L->ws].init, L, err);
    if (rc != PARE_OK)
        goto out;
    yv = pare_graph_find_value(mini, "y");
    wv = pare_graph_find_value(mini, "w");
    dy = pare_tensor_new(PARE_F32, yshape.ndim, yshape.dims);
    if (!dy) {
        rc = pare_fail(err, PARE_ENOMEM, NULL, "out of memory");
        goto out;
    }
    iters = o->recon_epochs * nb;
    for (int e = 0; e < o->recon_epochs && rc == PARE_OK; e++)
        for (int b = 0; b < nb && rc == PARE_OK; b++, it++) {
            const pare_tensor *y, *dw, *seed = dy;
            int64_t ny;
            double beta, lam;
            ar_schedule(it, iters, &beta, &lam);
            ar_soft(&a, mini->values[wv].init->data);
            memcpy(pare_exec_input(x, 0)->data, xs + pare_tensor_numel(&xshape) * b,
                   (size_t)pare_tensor_numel(&xshape) * sizeof(float));
            rc = pare_exec_run(x, err);
            if (rc != PARE_OK)
                break;
            y = pare_exec_output(x, 0);
            ny = pare_tensor_numel(y);
            for (int64_t k = 0; k < ny; k++)
                pare_tensor_f32(dy)[k] = 2.0f * (pare_tensor_f32(y)[k] - ys[ny * b + k]) / (float)ny;
            rc = pare_exec_backward(x, &yv, &seed, 1, err);
            if (rc != PARE_OK)
                break;
            dw = pare_exec_grad(x, wv);
            ar_step(&a, pare_tensor_f32(dw), it, beta, lam, o->recon_lr);
        }
    if (rc == PARE_OK)
        ar_store(&a, qdq->values[L->wq].init->data);
out:
    pare_exec_free(x);
    pare_graph_free(mini);
    pare_tensor_free(dy);
    pare_free(xs);
    pare_free(ys);
    ar_fini(&a);
    return rc;
}

/* ---- regions ---- */

static const char *closest_value(const pare_graph *g, const char *word)
{
    const char **cands = pare_alloc((size_t)(g->n_values + 1) * sizeof *cands);
    const char *near = NULL;
    int n = 0;

    if (!cands)
        return NULL;
    for (int v = 0; v < g->n_values; v++)
        if (!g->values[v].init)
            cands[n++] = g->values[v].name;
    near = pare_closest_word(word, cands, n);
    pare_free(cands);
    return near;
}

static const char *region_where(const recon_region *r)
{
    return r->where ? r->where : "regions";
}

/* Marks in inside[] (per node of gr) the nodes between the region's inputs
 * and outputs. PARE_EINPUT (where = the region) for a name that is not an
 * activation of gr, an output that does not depend on the inputs, or one
 * that also needs a value the inputs do not give (named: the first value
 * on the way back that the inputs do not compute). Scratch: seen and fwd
 * (n_values), stack (2 n_values). */
static pare_status region_nodes(const pare_graph *gr, const recon_region *r, bool *inside,
                                bool *seen, bool *fwd, int *stack, pare_error *err)
{
    const char *const *lists[2] = {r->in, r->out};
    int counts[2] = {r->n_in, r->n_out}, top = 0;

    memset(inside, 0, (size_t)gr->n_nodes * sizeof *inside);
    memset(fwd, 0, (size_t)gr->n_values * sizeof *fwd);
    for (int s = 0; s < 2; s++)
        for (int i = 0; i < counts[s]; i++) {
            int v = pare_graph_find_value(gr, lists[s][i]);
            if (v < 0) {
                const char *near = closest_value(gr, lists[s][i]);
                pare_fail(err, PARE_EINPUT, region_where(r), "region %d: '%s' is not a value of "
                          "the model", r->index, lists[s][i]);
                if (near)
                    pare_error_hint(err, "did you mean '%s'?", near);
                return PARE_EINPUT;
            }
            if (gr->values[v].init)
                return pare_fail(err, PARE_EINPUT, region_where(r), "region %d: '%s' is a weight; "
                                 "regions are bounded by activations", r->index, lists[s][i]);
            if (s == 0 && !fwd[v]) {
                fwd[v] = true;
                stack[top++] = v;
            }
        }
    /* what the inputs compute */
    while (top > 0) {
        int v = stack[--top];
        for (int c = 0; c < gr->values[v].n_consumers; c++) {
            const pare_node *node = &gr->nodes[gr->values[v].consumers[c]];
            for (int i = 0; i < node->n_outputs; i++) {
                int u = node->outputs[i];
                if (u >= 0 && !fwd[u]) {
                    fwd[u] = true;
                    stack[top++] = u;
                }
            }
        }
    }
    for (int o = 0; o < r->n_out; o++) {
        int ov = pare_graph_find_value(gr, r->out[o]);
        for (int i = 0; i < r->n_in; i++)
            if (!strcmp(r->in[i], r->out[o]))
                return pare_fail(err, PARE_EINPUT, region_where(r), "region %d: '%s' is both an "
                                 "input and an output", r->index, r->out[o]);
        if (!fwd[ov]) {
            pare_fail(err, PARE_EINPUT, region_where(r), "region %d: output '%s' does not depend "
                      "on the region's inputs", r->index, r->out[o]);
            pare_error_hint(err, "a region is [[input names], [output names]], the outputs "
                            "computed from the inputs");
            return PARE_EINPUT;
        }
    }
    /* back from the outputs to the inputs; stack holds (value, the first value
       on the way that the inputs do not compute, or -1) */
    memset(seen, 0, (size_t)gr->n_values * sizeof *seen);
    for (int o = 0; o < r->n_out; o++) {
        int ov = pare_graph_find_value(gr, r->out[o]);
        if (!seen[ov]) {
            seen[ov] = true;
            stack[top++] = ov;
            stack[top++] = -1;
        }
    }
    while (top > 0) {
        int outside = stack[--top], v = stack[--top], p;
        bool is_in = false;
        for (int i = 0; i < r->n_in && !is_in; i++)
            is_in = !strcmp(gr->values[v].name, r->in[i]);
        if (is_in || gr->values[v].init)
            continue;
        if (outside < 0 && !fwd[v])
            outside = v;
        p = gr->values[v].producer;
        if (p < 0) {
            pare_fail(err, PARE_EINPUT, region_where(r), "region %d: its outputs also need '%s', "
                      "which its inputs do not compute", r->index, gr->values[outside].name);
            pare_error_hint(err, "add '%s' to the inputs of the region",
                            gr->values[outside].name);
            return PARE_EINPUT;
        }
        inside[p] = true;
        for (int i = 0; i < gr->nodes[p].n_inputs; i++) {
            int u = gr->nodes[p].inputs[i];
            if (u >= 0 && !seen[u]) {
                seen[u] = true;
                stack[top++] = u;
                stack[top++] = outside;
            }
        }
    }
    return PARE_OK;
}

/* The latest value both a and b are computed from (by producer position),
 * or -1. */
static int common_source(const pare_graph *g, int a, int b, bool *seen_a, bool *seen_b, int *stack)
{
    bool *seen[2] = {seen_a, seen_b};
    int roots[2] = {a, b}, best = -1, best_rank = -2;

    for (int s = 0; s < 2; s++) {
        int top = 0;
        memset(seen[s], 0, (size_t)g->n_values * sizeof *seen[s]);
        stack[top++] = roots[s];
        seen[s][roots[s]] = true;
        while (top > 0) {
            int v = stack[--top], p = g->values[v].producer;
            if (g->values[v].init || p < 0)
                continue;
            for (int i = 0; i < g->nodes[p].n_inputs; i++) {
                int u = g->nodes[p].inputs[i];
                if (u >= 0 && !seen[s][u]) {
                    seen[s][u] = true;
                    stack[top++] = u;
                }
            }
        }
    }
    for (int v = 0; v < g->n_values; v++)
        if (seen_a[v] && seen_b[v] && !g->values[v].init && g->values[v].producer > best_rank) {
            best_rank = g->values[v].producer;
            best = v;
        }
    return best;
}

/* Default regions: every residual block (from the value both branches of an
 * Add start from to the Add's output); without any, consecutive pairs of
 * quantized layers (first input to second output). Regions that are not
 * closed are left out. */
static void default_regions(const pare_graph *g, const recon_layer *layers, int nl,
                            recon_region *regs, int *n_regs, bool *inside, bool *seen,
                            bool *seen2, int *stack)
{
    pare_error quiet = {0};
    bool has_residual = false;
    int n = 0;

    for (int k = 0; k < g->n_nodes; k++) {
        const pare_node *node = &g->nodes[k];
        int a, b, src;
        if (strcmp(node->op_type, "Add") || node->domain[0] || node->n_inputs != 2 ||
            node->n_outputs < 1 || node->inputs[0] < 0 || node->inputs[1] < 0 ||
            node->outputs[0] < 0)
            continue;
        a = node->inputs[0];
        b = node->inputs[1];
        if (g->values[a].init || g->values[b].init)
            continue;
        src = common_source(g, a, b, seen, seen2, stack);
        if (src < 0)
            continue;
        regs[n] = (recon_region){.own = {g->values[src].name, g->values[node->outputs[0]].name}};
        regs[n].in = &regs[n].own[0];
        regs[n].out = &regs[n].own[1];
        regs[n].n_in = regs[n].n_out = 1;
        regs[n].index = n + 1;
        if (region_nodes(g, &regs[n], inside, seen, seen2, stack, &quiet) == PARE_OK) {
            n++;
            has_residual = true;
        }
    }
    for (int i = 0; !has_residual && i + 1 < nl; i++) {
        int xv = g->nodes[layers[i].g_node].inputs[0];
        regs[n] = (recon_region){.own = {g->values[xv].name, layers[i + 1].y_name}};
        regs[n].in = &regs[n].own[0];
        regs[n].out = &regs[n].own[1];
        regs[n].n_in = regs[n].n_out = 1;
        regs[n].index = n + 1;
        if (region_nodes(g, &regs[n], inside, seen, seen2, stack, &quiet) == PARE_OK) {
            n++;
            i++;
        }
    }
    *n_regs = n;
}

/* The region's graph: a clone of qdq keeping only the region's nodes, fed at
 * its inputs (shapes[i]), the weights of the learnt layers as float
 * initializers named pnames[k] in place of their DequantizeLinear. */
static pare_status region_graph(const pare_graph *qdq, const recon_region *r,
                                const pare_tensor *shapes, const recon_layer *const *learn,
                                int n_learn, const pare_graph *g, pare_graph **out, pare_error *err)
{
    pare_graph *m = NULL;
    bool *remove = NULL;
    int *ins = NULL, *outs = NULL;
    pare_status rc = pare_graph_clone(qdq, &m, err);

    *out = NULL;
    if (rc != PARE_OK)
        return rc;
    remove = pare_calloc((size_t)m->n_nodes + 1, sizeof *remove);
    ins = pare_alloc((size_t)r->n_in * sizeof *ins);
    outs = pare_alloc((size_t)r->n_out * sizeof *outs);
    if (!remove || !ins || !outs) {
        rc = pare_fail(err, PARE_ENOMEM, NULL, "out of memory");
        goto out;
    }
    for (int n = 0; n < m->n_nodes; n++)
        remove[n] = !r->qdq_node[n];
    for (int k = 0; k < n_learn && rc == PARE_OK; k++) {
        const pare_tensor *wf = g->values[g->nodes[learn[k]->g_node].inputs[1]].init;
        int wv = m->nodes[learn[k]->node].inputs[1];
        pare_tensor *t = pare_tensor_new(PARE_F32, wf->ndim, wf->dims);
        if (!t) {
            rc = pare_fail(err, PARE_ENOMEM, NULL, "out of memory");
            break;
        }
        remove[m->values[wv].producer] = true;
        pare_graph_set_initializer(m, wv, t);
        m->values[wv].producer = -1;
    }
    for (int v = 0; v < m->n_values; v++)
        m->values[v].is_input = m->values[v].is_output = false;
    for (int i = 0; i < r->n_in && rc == PARE_OK; i++) {
        pare_value *val = &m->values[pare_graph_find_value(m, r->in[i])];
        ins[i] = pare_graph_find_value(m, r->in[i]);
        val->is_input = true;
        val->dtype = PARE_F32;
        val->ndim = shapes[i].ndim;
        memcpy(val->dims, shapes[i].dims, sizeof(int64_t) * (size_t)shapes[i].ndim);
        for (int d = 0; d < val->ndim; d++) {
            pare_free(val->dim_names[d]);
            val->dim_names[d] = NULL;
        }
    }
    for (int i = 0; i < r->n_out && rc == PARE_OK; i++) {
        outs[i] = pare_graph_find_value(m, r->out[i]);
        m->values[outs[i]].is_output = true;
    }
    if (rc == PARE_OK) {
        pare_free(m->inputs);
        pare_free(m->outputs);
        m->inputs = ins;
        m->n_inputs = r->n_in;
        m->outputs = outs;
        m->n_outputs = r->n_out;
        ins = outs = NULL;
        rc = pare_graph_remove_nodes(m, remove, err);
    }
out:
    pare_free(remove);
    pare_free(ins);
    pare_free(outs);
    if (rc != PARE_OK)
        pare_graph_free(m);
    else
        *out = m;
    return rc;
}

/* Learns the rounding of the not yet reconstructed layers inside region r
 * together. */
static pare_status recon_region_run(const pare_graph *g, pare_graph *qdq, pare_dataset *ds,
                                    const pare_quant_opts *o, const recon_region *r,
                                    const recon_layer *layers, int nl, bool *done, pare_error *err)
{
    const recon_layer **learn = pare_calloc((size_t)nl + 1, sizeof *learn);
    const char **pnames = pare_calloc((size_t)nl + 1, sizeof *pnames);
    ar_weight *aw = pare_calloc((size_t)nl + 1, sizeof *aw);
    float **xs = pare_calloc((size_t)r->n_in, sizeof *xs);
    float **ys = pare_calloc((size_t)r->n_out, sizeof *ys);
    pare_tensor *xsh = pare_calloc((size_t)r->n_in, sizeof *xsh);
    pare_tensor *ysh = pare_calloc((size_t)r->n_out, sizeof *ysh);
    pare_tensor **dy = pare_calloc((size_t)r->n_out, sizeof *dy);
    int *pv = pare_calloc((size_t)nl + 1, sizeof *pv), *yv = pare_calloc((size_t)r->n_out, sizeof *yv);
    pare_graph *m = NULL;
    pare_exec *x = NULL;
    pare_exec_opts eo;
    int n_learn = 0, batch, nb, iters, it = 0;
    int64_t ny_total = 0;
    pare_status rc = PARE_OK;

    if (!learn || !pnames || !aw || !xs || !ys || !xsh || !ysh || !dy || !pv || !yv) {
        rc = pare_fail(err, PARE_ENOMEM, NULL, "out of memory");
        goto out;
    }
    for (int i = 0; i < nl; i++)
        if (!done[i] && r->qdq_node[layers[i].node])
            learn[n_learn++] = &layers[i];
    if (n_learn == 0)
        goto out;
    quant_batches(ds, o, &batch, &nb);
    rc = collect(qdq, ds, o, r->in, r->n_in, xs, xsh, err);
    if (rc == PARE_OK)
        rc = collect(g, ds, o, r->out, r->n_out, ys, ysh, err);
    if (rc == PARE_OK)
        rc = region_graph(qdq, r, xsh, learn, n_learn, g, &m, err);
    for (int k = 0; k < n_learn && rc == PARE_OK; k++) {
        pnames[k] = qdq->values[qdq->nodes[learn[k]->node].inputs[1]].name;
        pv[k] = pare_graph_find_value(m, pnames[k]);
        rc = ar_init(&aw[k], g->values[g->nodes[learn[k]->g_node].inputs[1]].init,
                     qdq->values[learn[k]->ws].init, learn[k], err);
    }
    for (int i = 0; i < r->n_out && rc == PARE_OK; i++) {
        yv[i] = pare_graph_find_value(m, r->out[i]);
        dy[i] = pare_tensor_new(PARE_F32, ysh[i].ndim, ysh[i].dims);
        ny_total += pare_tensor_numel(&ysh[i]);
        if (!dy[i])
            rc = pare_fail(err, PARE_ENOMEM, NULL, "out of memory");
    }
    if (rc == PARE_OK) {
        memset(&eo, 0, sizeof eo);
        eo.batch = batch;
        eo.n_threads = o->n_threads;
        eo.input_shapes = xsh;
        eo.training = true;
        eo.params = pnames;
        eo.n_params = n_learn;
        rc = pare_exec_new(m, &eo, &x, err);
        if (rc != PARE_OK)
            pare_error_prefix(err, "region %d: ", r->index);
    }
    if (rc != PARE_OK)
        goto out;
    /* BatchNormalization, if any, keeps its running statistics */
    pare_exec_set_training(x, false);
    iters = o->recon_epochs * nb;
    for (int e = 0; e < o->recon_epochs && rc == PARE_OK; e++)
        for (int b = 0; b < nb && rc == PARE_OK; b++, it++) {
            double beta, lam;
            ar_schedule(it, iters, &beta, &lam);
            for (int k = 0; k < n_learn; k++)
                ar_soft(&aw[k], m->values[pv[k]].init->data);
            for (int i = 0; i < r->n_in; i++) {
                int64_t per = pare_tensor_numel(&xsh[i]);
                memcpy(pare_exec_input(x, i)->data, xs[i] + per * b, (size_t)per * sizeof(float));
            }
            rc = pare_exec_run(x, err);
            for (int i = 0; i < r->n_out && rc == PARE_OK; i++) {
                const pare_tensor *y = pare_exec_output(x, i);
                int64_t ny = pare_tensor_numel(y);
                for (int64_t k = 0; k < ny; k++)
                    pare_tensor_f32(dy[i])[k] =
                        2.0f * (pare_tensor_f32(y)[k] - ys[i][ny * b + k]) / (float)ny_total;
            }
            if (rc == PARE_OK)
                rc = pare_exec_backward(x, yv, (const pare_tensor *const *)dy, r->n_out, err);
            for (int k = 0; k < n_learn && rc == PARE_OK; k++)
                ar_step(&aw[k], pare_tensor_f32(pare_exec_grad(x, pv[k])), it, beta, lam,
                        o->recon_lr);
        }
    for (int k = 0; k < n_learn && rc == PARE_OK; k++) {
        ar_store(&aw[k], qdq->values[learn[k]->wq].init->data);
        done[learn[k] - layers] = true;
    }
out:
    pare_exec_free(x);
    pare_graph_free(m);
    for (int k = 0; aw && k < n_learn; k++)
        ar_fini(&aw[k]);
    for (int i = 0; i < r->n_in && xs; i++)
        pare_free(xs[i]);
    for (int i = 0; i < r->n_out && ys; i++)
        pare_free(ys[i]);
    for (int i = 0; i < r->n_out && dy; i++)
        pare_tensor_free(dy[i]);
    pare_free(learn);
    pare_free(pnames);
    pare_free(aw);
    pare_free(xs);
    pare_free(ys);
    pare_free(xsh);
    pare_free(ysh);
    pare_free(dy);
    pare_free(pv);
    pare_free(yv);
    return rc;
}

/* The Conv/Gemm/MatMul nodes of qdq with an int8 weight that g holds in
 * float, in order. */
static int find_layers(const pare_graph *g, const pare_graph *qdq, const pare_quant_opts *o,
                       const pare_quant_report *report, recon_layer *layers)
{
    int nl = 0;

    for (int n = 0; n < qdq->n_nodes; n++) {
        const pare_node *node = &qdq->nodes[n];
        const pare_node *dq;
        const pare_quant_tensor *qt;
        int p, wq, gv, gn;
        if (strcmp(node->op_type, "Conv") && strcmp(node->op_type, "Gemm") &&
            strcmp(node->op_type, "MatMul"))
            continue;
        if (node->n_inputs < 2 || node->inputs[0] < 0 || node->inputs[1] < 0 || node->n_outputs < 1)
            continue;
        p = qdq->values[node->inputs[1]].producer;
        if (p < 0)
            continue;
        dq = &qdq->nodes[p];
        if (strcmp(dq->op_type, "DequantizeLinear") || dq->n_inputs < 2)
            continue;
        wq = dq->inputs[0];
        if (wq < 0 || !qdq->values[wq].init || qdq->values[wq].init->dtype != PARE_I8 ||
            !qdq->values[dq->inputs[1]].init)
            continue;
        gv = pare_graph_find_value(g, qdq->values[node->outputs[0]].name);
        gn = gv >= 0 ? g->values[gv].producer : -1;
        if (gn < 0 || g->nodes[gn].n_inputs < 2 || g->nodes[gn].inputs[1] < 0 ||
            !g->values[g->nodes[gn].inputs[1]].init ||
            pare_tensor_numel(g->values[g->nodes[gn].inputs[1]].init) !=
                pare_tensor_numel(qdq->values[wq].init) ||
            (g->nodes[gn].n_inputs > 2 && g->nodes[gn].inputs[2] >= 0 &&
             !g->values[g->nodes[gn].inputs[2]].init))
            continue;
        layers[nl].node = n;
        layers[nl].wq = wq;
        layers[nl].ws = dq->inputs[1];
        layers[nl].axis = pare_node_attr_int(dq, "axis", 1);
        layers[nl].block = pare_node_attr_int(dq, "block_size", 0);
        layers[nl].x_name = qdq->values[node->inputs[0]].name;
        layers[nl].y_name = qdq->values[node->outputs[0]].name;
        layers[nl].g_node = gn;
        qt = report ? pare_quant_report_find(report, g->values[g->nodes[gn].inputs[1]].name) : NULL;
        if (qt && qt->kind == PARE_QUANT_WEIGHT) {
            layers[nl].qmin = qt->qmin;
            layers[nl].qmax = qt->qmax;
        } else {
            pare_quant_qrange(o->weight_bits, true, true, o->reduce_range, &layers[nl].qmin,
                              &layers[nl].qmax);
        }
        nl++;
    }
    return nl;
}

pare_status pare_quant_reconstruct(const pare_graph *g, pare_graph *qdq, pare_dataset *ds,
                                   const pare_quant_opts *o, pare_quant_report *report,
                                   const pare_progress *progress, pare_error *err)
{
    bool region_wise = o->recon_level == PARE_QUANT_RECON_REGION_WISE;
    int cap = region_wise ? (o->n_regions > 0 ? o->n_regions : g->n_nodes + qdq->n_nodes) : 0;
    int big = (g->n_values > qdq->n_values ? g->n_values : qdq->n_values) + 1;
    int bign = (g->n_nodes > qdq->n_nodes ? g->n_nodes : qdq->n_nodes) + 1;
    recon_layer *layers = pare_calloc((size_t)qdq->n_nodes + 1, sizeof *layers);
    recon_region *regs = pare_calloc((size_t)cap + 1, sizeof *regs);
    bool *done = pare_calloc((size_t)qdq->n_nodes + 1, sizeof *done);
    bool *inside = pare_calloc((size_t)bign, sizeof *inside);
    bool *seen = pare_calloc((size_t)big, sizeof *seen);
    bool *seen2 = pare_calloc((size_t)big, sizeof *seen2);
    int *stack = pare_calloc((size_t)big * 2, sizeof *stack);
    int nl = 0, nr = 0, batch, nb, units = 0, unit = 0, region_runs = 0;
    pare_status rc = PARE_OK;

    if (!layers || !regs || !done || !inside || !seen || !seen2 || !stack) {
        rc = pare_fail(err, PARE_ENOMEM, NULL, "out of memory");
        goto out;
    }
    if (o->recon_epochs < 1 || !(o->recon_lr > 0)) {
        rc = pare_fail(err, PARE_EINPUT, "recon_level", "reconstruction needs epochs >= 1 and "
                       "lr > 0 (got %d, %g)", o->recon_epochs, o->recon_lr);
        goto out;
    }
    quant_batches(ds, o, &batch, &nb);
    if (nb < 1) {
        rc = pare_fail(err, PARE_EINPUT, pare_dataset_spec(ds), "the calibration dataset is empty");
        goto out;
    }
    nl = find_layers(g, qdq, o, report, layers);
    /* regions: checked on g (the user's names), then found in qdq */
    if (region_wise && o->n_regions > 0) {
        for (int i = 0; i < o->n_regions && rc == PARE_OK; i++) {
            const pare_quant_region *q = &o->regions[i];
            regs[i] = (recon_region){.in = q->inputs, .n_in = q->n_inputs, .out = q->outputs,
                                     .n_out = q->n_outputs, .where = q->where, .index = i + 1};
            if (q->n_inputs < 1 || q->n_outputs < 1)
                rc = pare_fail(err, PARE_EINPUT, region_where(&regs[i]), "region %d needs at "
                               "least one input and one output", i + 1);
            else
                rc = region_nodes(g, &regs[i], inside, seen, seen2, stack, err);
            nr = i + 1;
        }
    } else if (region_wise) {
        default_regions(g, layers, nl, regs, &nr, inside, seen, seen2, stack);
    }
    for (int i = 0; i < nr && rc == PARE_OK; i++) {
        regs[i].qdq_node = pare_calloc((size_t)qdq->n_nodes + 1, sizeof *regs[i].qdq_node);
        if (!regs[i].qdq_node)
            rc = pare_fail(err, PARE_ENOMEM, NULL, "out of memory");
        else
            rc = region_nodes(qdq, &regs[i], regs[i].qdq_node, seen, seen2, stack, err);
    }
    if (rc != PARE_OK)
        goto out;
    /* units of work: each region with a layer to learn, each layer outside */
    {
        bool *counted = done; /* scratch: cleared below */
        for (int i = 0; i < nr; i++) {
            bool any = false;
            for (int l = 0; l < nl; l++)
                if (!counted[l] && regs[i].qdq_node[layers[l].node]) {
                    counted[l] = true;
                    any = true;
                }
            units += any;
        }
        for (int l = 0; l < nl; l++)
            units += !counted[l];
        memset(done, 0, (size_t)qdq->n_nodes * sizeof *done);
    }
    pare_dataset_begin_epoch(ds, 0); /* the batches calibration saw */
    for (int l = 0; l < nl && rc == PARE_OK; l++) {
        const char *detail = layers[l].y_name;
        int r = -1;
        if (done[l])
            continue;
        for (int i = 0; i < nr && r < 0; i++)
            if (regs[i].qdq_node[layers[l].node])
                r = i;
        if (r >= 0) {
            rc = recon_region_run(g, qdq, ds, o, &regs[r], layers, nl, done, err);
            detail = regs[r].out[0];
            region_runs++;
        } else {
            rc = recon_one(g, qdq, ds, o, &layers[l], err);
            done[l] = true;
        }
        unit++;
        if (rc == PARE_OK) {
            pare_progress_event ev = {.stage = "reconstruct", .done = unit, .total = units,
                                      .unit = region_wise ? "region" : "layer", .loss = NAN,
                                      .metric = NAN, .detail = detail};
            if (!pare_progress_report(progress, &ev))
                rc = pare_fail(err, PARE_ECANCELED, NULL, "reconstruction canceled after %d of "
                               "%d %s", unit, units, region_wise ? "regions" : "layers");
        }
    }
    if (rc == PARE_OK && report) {
        report->n_reconstructed = nl;
        report->n_recon_regions = region_runs;
    }
out:
    for (int i = 0; regs && i < nr; i++)
        pare_free(regs[i].qdq_node);
    pare_free(layers);
    pare_free(regs);
    pare_free(done);
    pare_free(inside);
    pare_free(seen);
    pare_free(seen2);
    pare_free(stack);
    return rc;
}
