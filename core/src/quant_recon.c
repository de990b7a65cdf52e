/* Layer-wise reconstruction (AdaRound): learned rounding of quantized
 * weights.
 *
 * For each Conv/Gemm/MatMul whose weight the QDQ graph stores as int8, in
 * topological order: collect the layer's input as the QDQ graph computes it
 * (earlier layers already reconstructed) and its fp32 output from the
 * original graph over the calibration batches; then learn, per weight, whether
 * to round down or up. The soft weight is
 *   w~ = s * clamp(floor(w / s) + h(V), qmin, qmax),
 *   h(V) = clamp(sigmoid(V) (zeta - gamma) + gamma, 0, 1), zeta 1.1, gamma -0.1
 * and the loss is mean((layer(x~, w~) - y_fp32)^2) plus
 *   lambda * sum(1 - |2h - 1|^beta), beta annealed from 20 to 2
 * (after a 20 % warm-up without it), which pushes every h to 0 or 1. The
 * layer runs as a one-node graph on the executor's training plan, so its
 * forward and weight gradient are the op registry's kernels. At the end,
 * q = clamp(floor(w / s) + [h >= 0.5], qmin, qmax) replaces the stored int8
 * weight. Memory: one layer's inputs and outputs over the calibration batches. */
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
    const char *x_name;  /* qdq value: the layer's input */
    const char *y_name;  /* output name (same in both graphs) */
    int g_node;          /* the node in g */
} recon_layer;

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

/* Runs `g` over the calibration batches keeping value `name` of every batch
 * in one buffer (*buf, n_batches x per-batch elements). */
static pare_status collect(const pare_graph *g, pare_dataset *ds, const pare_quant_opts *o,
                           const char *name, float **buf, pare_tensor *shape, pare_error *err)
{
    pare_exec *x = NULL;
    int batch, nb;
    int64_t per = 0;
    pare_status rc;

    *buf = NULL;
    quant_batches(ds, o, &batch, &nb);
    rc = quant_exec_new(g, ds, batch, &name, 1, o->n_threads, &x, err);
    for (int b = 0; b < nb && rc == PARE_OK; b++) {
        const pare_tensor *t;
        rc = pare_dataset_fill(ds, (int64_t)b * batch, batch, pare_exec_input(x, 0), NULL, err);
        if (rc == PARE_OK)
            rc = pare_exec_run(x, err);
        if (rc != PARE_OK)
            break;
        t = pare_exec_value(x, name);
        if (!t || t->dtype != PARE_F32) {
            rc = pare_fail(err, PARE_EINTERNAL, g->path, "value '%s' was not kept", name);
            break;
        }
        if (!*buf) {
            per = pare_tensor_numel(t);
            pare_tensor_view(shape, PARE_F32, t->ndim, t->dims, NULL);
            *buf = pare_alloc((size_t)(per * nb) * sizeof(float));
            if (!*buf) {
                rc = pare_fail(err, PARE_ENOMEM, NULL, "out of memory keeping '%s' for "
                               "reconstruction", name);
                break;
            }
        }
        memcpy(*buf + per * b, t->data, (size_t)per * sizeof(float));
    }
    pare_exec_free(x);
    if (rc != PARE_OK) {
        pare_free(*buf);
        *buf = NULL;
    }
    return rc;
}

static double h_of(double v)
{
    double h = 1.0 / (1.0 + exp(-v)) * (AR_ZETA - AR_GAMMA) + AR_GAMMA;
    return h < 0 ? 0 : h > 1 ? 1 : h;
}

/* Learns the rounding of one layer and writes it into the int8 weight. */
static pare_status recon_one(const pare_graph *g, pare_graph *qdq, pare_dataset *ds,
                             const pare_quant_opts *o, const recon_layer *L, pare_error *err)
{
    const pare_tensor *wf = g->values[g->nodes[L->g_node].inputs[1]].init;
    pare_tensor *wq = qdq->values[L->wq].init;
    const pare_tensor *sc = qdq->values[L->ws].init;
    int64_t n = pare_tensor_numel(wf), s_n = pare_tensor_numel(sc);
    float *xs = NULL, *ys = NULL;
    double *v = NULL, *m1 = NULL, *m2 = NULL, *base = NULL;
    int64_t *sidx = NULL;
    pare_tensor xshape, yshape, *dy = NULL;
    pare_graph *mini = NULL;
    pare_exec *x = NULL;
    pare_exec_opts eo;
    const char *params[1] = {"w"};
    int batch, nb, yv, wv, iters, it = 0;
    int32_t qmin, qmax;
    pare_status rc;

    /* the n-bit range the weight was quantized to */
    pare_quant_qrange(o->weight_bits, true, true, o->reduce_range, &qmin, &qmax);
    quant_batches(ds, o, &batch, &nb);
    rc = collect(qdq, ds, o, L->x_name, &xs, &xshape, err);
    if (rc == PARE_OK)
        rc = collect(g, ds, o, L->y_name, &ys, &yshape, err);
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
    if (rc != PARE_OK)
        goto out;
    yv = pare_graph_find_value(mini, "y");
    wv = pare_graph_find_value(mini, "w");
    v = pare_alloc((size_t)n * sizeof *v);
    m1 = pare_calloc((size_t)n, sizeof *m1);
    m2 = pare_calloc((size_t)n, sizeof *m2);
    base = pare_alloc((size_t)n * sizeof *base);
    sidx = pare_alloc((size_t)n * sizeof *sidx);
    dy = pare_tensor_new(PARE_F32, yshape.ndim, yshape.dims);
    if (!v || !m1 || !m2 || !base || !sidx || !dy) {
        rc = pare_fail(err, PARE_ENOMEM, NULL, "out of memory");
        goto out;
    }
    /* start at the nearest rounding: h(V) = frac(w / s) */
    for (int64_t k = 0; k < n; k++) {
        double s, r, rest, p;
        sidx[k] = scale_index(wf, L->axis, L->block, s_n, k);
        s = pare_tensor_f32(sc)[sidx[k]];
        r = s > 0 ? pare_tensor_f32(wf)[k] / s : 0.0;
        base[k] = floor(r);
        rest = r - base[k];
        p = (rest - AR_GAMMA) / (AR_ZETA - AR_GAMMA);
        p = p < 1e-4 ? 1e-4 : p > 1 - 1e-4 ? 1 - 1e-4 : p;
        v[k] = log(p / (1 - p));
    }
    iters = o->recon_epochs * nb;
    for (int e = 0; e < o->recon_epochs && rc == PARE_OK; e++)
        for (int b = 0; b < nb && rc == PARE_OK; b++, it++) {
            float *w = mini->values[wv].init->data;
            const pare_tensor *y, *dw;
            int64_t ny;
            double warm = 0.2 * iters, beta = 0.0, lam = 0.0;
            if (it >= warm) {
                double t = (it - warm) / (iters - warm > 1 ? iters - warm : 1);
                beta = 20.0 + (2.0 - 20.0) * t;
                lam = AR_LAMBDA;
            }
            for (int64_t k = 0; k < n; k++) {
                double q = base[k] + h_of(v[k]);
                q = q < qmin ? qmin : q > qmax ? qmax : q;
                w[k] = (float)(q * pare_tensor_f32(sc)[sidx[k]]);
            }
            memcpy(pare_exec_input(x, 0)->data, xs + pare_tensor_numel(&xshape) * b,
                   (size_t)pare_tensor_numel(&xshape) * sizeof(float));
            rc = pare_exec_run(x, err);
            if (rc != PARE_OK)
                break;
            y = pare_exec_output(x, 0);
            ny = pare_tensor_numel(y);
            for (int64_t k = 0; k < ny; k++)
                pare_tensor_f32(dy)[k] = 2.0f * (pare_tensor_f32(y)[k] - ys[ny * b + k]) / (float)ny;
            {
                const pare_tensor *seed = dy;
                rc = pare_exec_backward(x, &yv, &seed, 1, err);
            }
            if (rc != PARE_OK)
                break;
            dw = pare_exec_grad(x, wv);
            /* Adam on V */
            for (int64_t k = 0; k < n; k++) {
                double sig = 1.0 / (1.0 + exp(-v[k]));
                double hr = sig * (AR_ZETA - AR_GAMMA) + AR_GAMMA, h = h_of(v[k]);
                double q = base[k] + h, g_v = 0.0;
                if (hr > 0 && hr < 1) {
                    double dh = 0.0;
                    if (q >= qmin && q <= qmax)
                        dh = (double)pare_tensor_f32(dw)[k] * pare_tensor_f32(sc)[sidx[k]];
                    if (lam > 0) {
                        double a = 2 * h - 1;
                        dh += -lam * beta * pow(fabs(a), beta - 1) * (a > 0 ? 2.0 : a < 0 ? -2.0 : 0.0);
                    }
                    g_v = dh * sig * (1 - sig) * (AR_ZETA - AR_GAMMA);
                }
                m1[k] = 0.9 * m1[k] + 0.1 * g_v;
                m2[k] = 0.999 * m2[k] + 0.001 * g_v * g_v;
                v[k] -= o->recon_lr * (m1[k] / (1 - pow(0.9, it + 1))) /
                        (sqrt(m2[k] / (1 - pow(0.999, it + 1))) + 1e-8);
            }
        }
    if (rc == PARE_OK)
        for (int64_t k = 0; k < n; k++) {
            double q = base[k] + (h_of(v[k]) >= 0.5 ? 1.0 : 0.0);
            q = q < qmin ? qmin : q > qmax ? qmax : q;
            ((int8_t *)wq->data)[k] = (int8_t)q;
        }
out:
    pare_exec_free(x);
    pare_graph_free(mini);
    pare_tensor_free(dy);
    pare_free(xs);
    pare_free(ys);
    pare_free(v);
    pare_free(m1);
    pare_free(m2);
    pare_free(base);
    pare_free(sidx);
    return rc;
}

pare_status pare_quant_reconstruct(const pare_graph *g, pare_graph *qdq, pare_dataset *ds,
                                   const pare_quant_opts *o, pare_quant_report *report,
                                   const pare_progress *progress, pare_error *err)
{
    recon_layer *layers = pare_calloc((size_t)qdq->n_nodes + 1, sizeof *layers);
    int nl = 0, batch, nb;
    pare_status rc = PARE_OK;

    if (!layers)
        return pare_fail(err, PARE_ENOMEM, NULL, "out of memory");
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
    pare_dataset_begin_epoch(ds, 0); /* the batches calibration saw */
    for (int n = 0; n < qdq->n_nodes; n++) {
        const pare_node *node = &qdq->nodes[n];
        const pare_node *dq;
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
        nl++;
    }
    for (int i = 0; i < nl && rc == PARE_OK; i++) {
        pare_progress_event ev = {.stage = "reconstruct", .done = i + 1, .total = nl,
                                  .unit = "layer", .loss = NAN, .metric = NAN,
                                  .detail = layers[i].y_name};
        rc = recon_one(g, qdq, ds, o, &layers[i], err);
        if (rc == PARE_OK && !pare_progress_report(progress, &ev))
            rc = pare_fail(err, PARE_ECANCELED, NULL, "reconstruction canceled after %d of %d "
                           "layers", i + 1, nl);
    }
    if (rc == PARE_OK && report)
        report->n_reconstructed = nl;
out:
    pare_free(layers);
    return rc;
}
