/* Quantization-aware training: fake-quant graph, range hooks, QDQ export.
 * See qat.h for the contract. */
#include "qat.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compress_internal.h"
#include "pare/alloc.h"
#include "quant_internal.h"

typedef struct qat_act {
    char *name;                 /* original tensor name */
    char *observed;             /* value whose range is tracked */
    char *scale, *zp;           /* initializers of the Q/DQ pair */
    char *clip_min, *clip_max;  /* the Clip before Q below 8 bits; NULL else */
    pare_dtype dtype;
    int32_t qmin, qmax;
    double state, accum;        /* moving_average_abs_max */
    float running;              /* abs_max */
    float *window;              /* range_abs_max: last window_size maxima */
    int64_t n_window, pos, filled;
    bool neg;                   /* a negative value was seen */
    float lo, hi;               /* current range */
    char *qnode;                /* the pair's QuantizeLinear (or the n-bit Clip before it) */
    /* PACT: Clip(x, Neg(alpha) or 0, alpha) before the pair; alpha is the
       scalar initializer pact_max, trained by pare_train as an extra */
    bool pact;
    char *pact_out, *pact_min, *pact_max;
    float alpha;
} qat_act;

typedef struct qat_weight {
    char *weight;               /* float initializer */
    char *qout;                 /* output of its QuantizeLinear */
    char *scale, *zp;
    int axis;                   /* -1: per tensor */
    int32_t qmin, qmax;
} qat_weight;

typedef struct qat_bias {
    char *bias;                 /* float initializer */
    char *act_scale;            /* scale of the node's input activation */
    char *w_scale;              /* scale of the node's weight */
} qat_bias;

struct qat_state {
    pare_job_aq_type type;
    double rate;
    int64_t window_size;
    bool symmetric;
    int act_bits;
    bool use_pact;
    double pact_lr_mult, pact_decay;
    pare_train_extra *pact_extra;   /* one per PACT activation */
    int n_pact_extra;
    qat_act *acts;
    int n_acts;
    qat_weight *ws;
    int n_ws;
    qat_bias *bs;
    int n_bs;
    int n_quantized_nodes;
    pare_error err;
};

static pare_status oom(pare_error *err)
{
    return pare_fail(err, PARE_ENOMEM, NULL, "out of memory");
}

void qat_free(qat_state *st)
{
    if (!st)
        return;
    for (int i = 0; i < st->n_acts; i++) {
        qat_act *a = &st->acts[i];
        pare_free(a->name);
        pare_free(a->observed);
        pare_free(a->scale);
        pare_free(a->zp);
        pare_free(a->clip_min);
        pare_free(a->clip_max);
        pare_free(a->window);
        pare_free(a->qnode);
        pare_free(a->pact_out);
        pare_free(a->pact_min);
        pare_free(a->pact_max);
    }
    for (int i = 0; i < st->n_ws; i++) {
        pare_free(st->ws[i].weight);
        pare_free(st->ws[i].qout);
        pare_free(st->ws[i].scale);
        pare_free(st->ws[i].zp);
    }
    for (int i = 0; i < st->n_bs; i++) {
        pare_free(st->bs[i].bias);
        pare_free(st->bs[i].act_scale);
        pare_free(st->bs[i].w_scale);
    }
    pare_free(st->pact_extra);
    pare_free(st->acts);
    pare_free(st->ws);
    pare_free(st->bs);
    pare_free(st);
}

const pare_error *qat_error(const qat_state *st)
{
    return &st->err;
}

int qat_n_quantized_nodes(const qat_state *st)
{
    return st->n_quantized_nodes;
}

int qat_n_activations(const qat_state *st)
{
    return st->n_acts;
}

static const char *vname(const pare_graph *g, int v)
{
    return v >= 0 ? g->values[v].name : "";
}

/* Producer node of the value called name, or -1. */
static int producer_of(const pare_graph *g, const char *name)
{
    int v = pare_graph_find_value(g, name);
    return v >= 0 ? g->values[v].producer : -1;
}

/* Scale initializer name of the DequantizeLinear producing value v, or NULL. */
static const char *dq_scale_of(const pare_graph *g, int v)
{
    int p = v >= 0 ? g->values[v].producer : -1;
    if (p < 0 || strcmp(g->nodes[p].op_type, "DequantizeLinear") || g->nodes[p].n_inputs < 2)
        return NULL;
    return vname(g, g->nodes[p].inputs[1]);
}

/* ---- ranges ---------------------------------------------------------------- */

static pare_tensor *init_of(pare_graph *g, const char *name)
{
    int v = name ? pare_graph_find_value(g, name) : -1;
    return v >= 0 ? g->values[v].init : NULL;
}

static void store_zp(pare_tensor *t, int64_t i, int32_t z)
{
    if (t->dtype == PARE_U8)
        ((uint8_t *)t->data)[i] = (uint8_t)z;
    else if (t->dtype == PARE_I8)
        ((int8_t *)t->data)[i] = (int8_t)z;
    else if (t->dtype == PARE_I32)
        ((int32_t *)t->data)[i] = z;
}

static int32_t load_zp(const pare_tensor *t, int64_t i)
{
    if (!t)
        return 0;
    if (t->dtype == PARE_U8)
        return ((const uint8_t *)t->data)[i];
    if (t->dtype == PARE_I8)
        return ((const int8_t *)t->data)[i];
    if (t->dtype == PARE_I32)
        return ((const int32_t *)t->data)[i];
    return 0;
}

/* Writes the activation's current range into g's scale / zero point (and
 * the Clip bounds below 8 bits). */
static void act_write(const qat_state *st, const qat_act *a, pare_graph *g)
{
    pare_tensor *s = init_of(g, a->scale), *z = init_of(g, a->zp);
    float scale;
    int32_t zp;

    if (!s || s->dtype != PARE_F32)
        return;
    pare_quant_scale_zp(a->lo, a->hi, a->qmin, a->qmax, st->symmetric, &scale, &zp);
    pare_tensor_f32(s)[0] = scale;
    if (z)
        store_zp(z, 0, zp);
    if (a->clip_min && a->clip_max) {
        pare_tensor *cmin = init_of(g, a->clip_min), *cmax = init_of(g, a->clip_max);
        int32_t lo = a->qmin, hi = a->qmax; /* the activation's own n-bit range */
        if (cmin && cmin->dtype == PARE_F32)
            pare_tensor_f32(cmin)[0] = (float)(lo - zp) * scale;
        if (cmax && cmax->dtype == PARE_F32)
            pare_tensor_f32(cmax)[0] = (float)(hi - zp) * scale;
    }
}

static void act_set_range(qat_act *a, float amax)
{
    a->lo = a->neg ? -amax : 0.0f;
    a->hi = amax;
}

/* One batch maximum into the activation's estimate (PaddleSlim's rules). */
static void act_update(const qat_state *st, qat_act *a, float batch_max)
{
    float est = batch_max;

    switch (st->type) {
    case PARE_JOB_AQ_MOVING_AVERAGE_ABS_MAX:
        a->state = st->rate * a->state + 1.0;
        a->accum = st->rate * a->accum + batch_max;
        est = (float)(a->accum / a->state);
        break;
    case PARE_JOB_AQ_RANGE_ABS_MAX:
        a->window[a->pos] = batch_max;
        a->pos = (a->pos + 1) % a->n_window;
        if (a->filled < a->n_window)
            a->filled++;
        est = 0.0f;
        for (int64_t i = 0; i < a->filled; i++)
            est = a->window[i] > est ? a->window[i] : est;
        break;
    case PARE_JOB_AQ_ABS_MAX:
        a->running = batch_max > a->running ? batch_max : a->running;
        est = a->running;
        break;
    }
    act_set_range(a, est);
}

/* The smallest clip value PACT keeps: a collapsed clip would zero the
 * activation and give a zero scale. */
#define PACT_ALPHA_MIN 1e-3f

/* Reads alpha from g (where the trainer's optimizer updates it), keeps it
 * above PACT_ALPHA_MIN (writing the clamp back) and makes the pair's range
 * [-alpha or 0, alpha]. */
static pare_status pact_sync(const qat_state *st, qat_act *a, pare_graph *g, pare_error *err)
{
    pare_tensor *t = init_of(g, a->pact_max);
    float *d;

    if (!t || t->dtype != PARE_F32 || pare_tensor_numel(t) != 1)
        return pare_fail(err, PARE_EINTERNAL, a->name, "QAT: the PACT clip value of '%s' is "
                         "missing", a->name);
    d = pare_tensor_f32(t);
    if (!(d[0] > PACT_ALPHA_MIN))
        d[0] = PACT_ALPHA_MIN;   /* also catches NaN */
    a->alpha = d[0];
    act_set_range(a, a->alpha);
    act_write(st, a, g);
    return PARE_OK;
}

pare_status qat_observe(qat_state *st, const pare_exec *x, pare_graph *g, pare_error *err)
{
    for (int i = 0; i < st->n_acts; i++) {
        qat_act *a = &st->acts[i];
        const pare_tensor *t = pare_exec_value(x, a->observed);
        const float *d;
        int64_t n;
        float m = 0.0f;

        if (a->pact) {
            pare_status rc = pact_sync(st, a, g, err);
            if (rc != PARE_OK)
                return rc;
            continue;
        }
        if (!t || t->dtype != PARE_F32 || !t->data)
            return pare_fail(err, PARE_EINTERNAL, a->observed,
                             "QAT: activation '%s' is not kept by the training plan", a->observed);
        d = t->data;
        n = pare_tensor_numel(t);
        for (int64_t k = 0; k < n; k++) {
            float v = fabsf(d[k]);
            if (d[k] < 0.0f)
                a->neg = true;
            if (v > m && isfinite(v))
                m = v;
        }
        act_update(st, a, m);
        act_write(st, a, g);
    }
    return PARE_OK;
}

float qat_activation_scale(const qat_state *st, const pare_graph *g, const char *name)
{
    for (int i = 0; i < st->n_acts; i++)
        if (!strcmp(st->acts[i].name, name)) {
            int v = pare_graph_find_value(g, st->acts[i].scale);
            return v >= 0 && g->values[v].init ? pare_tensor_f32(g->values[v].init)[0] : NAN;
        }
    return NAN;
}

/* Per-channel (axis) or per-tensor abs max of w into scales. */
static void weight_scales(const qat_weight *q, const pare_tensor *w, pare_tensor *s)
{
    int64_t n = pare_tensor_numel(w), ns = pare_tensor_numel(s), inner = 1, c = 1;
    const float *wf = pare_tensor_f32(w);
    float *sf = pare_tensor_f32(s);

    if (q->axis >= 0 && q->axis < w->ndim && ns == w->dims[q->axis]) {
        c = w->dims[q->axis];
        for (int d = q->axis + 1; d < w->ndim; d++)
            inner *= w->dims[d];
    }
    for (int64_t k = 0; k < ns; k++)
        sf[k] = 0.0f;
    for (int64_t k = 0; k < n; k++) {
        int64_t ch = c > 1 ? (k / inner) % c : 0;
        float a = fabsf(wf[k]);
        if (ch < ns && a > sf[ch])
            sf[ch] = a;
    }
    for (int64_t k = 0; k < ns; k++) {
        float scale;
        int32_t zp;
        pare_quant_scale_zp(-sf[k], sf[k], q->qmin, q->qmax, true, &scale, &zp);
        sf[k] = scale;
    }
}

pare_status qat_update_weights(qat_state *st, pare_graph *g, pare_error *err)
{
    for (int i = 0; i < st->n_ws; i++) {
        const qat_weight *q = &st->ws[i];
        pare_tensor *w = init_of(g, q->weight), *s = init_of(g, q->scale);
        if (!w || !s || w->dtype != PARE_F32 || s->dtype != PARE_F32)
            return pare_fail(err, PARE_EINTERNAL, q->weight,
                             "QAT: weight '%s' or its scale is missing from the graph", q->weight);
        weight_scales(q, w, s);
    }
    return PARE_OK;
}

void qat_set_pact_opts(qat_state *st, double lr_mult, double decay)
{
    st->pact_lr_mult = lr_mult;
    st->pact_decay = decay;
    for (int i = 0; i < st->n_pact_extra; i++) {
        st->pact_extra[i].lr_mult = lr_mult;
        st->pact_extra[i].weight_decay = decay;
    }
}

const pare_train_extra *qat_pact_extras(const qat_state *st, int *n)
{
    *n = st->n_pact_extra;
    return st->pact_extra;
}

float qat_pact_alpha(const qat_state *st, const char *name)
{
    for (int i = 0; i < st->n_acts; i++)
        if (st->acts[i].pact && !strcmp(st->acts[i].name, name))
            return st->acts[i].alpha;
    return NAN;
}

pare_status qat_pact_sync(qat_state *st, pare_graph *g, pare_error *err)
{
    for (int i = 0; i < st->n_acts; i++) {
        pare_status rc = st->acts[i].pact ? pact_sync(st, &st->acts[i], g, err) : PARE_OK;
        if (rc != PARE_OK)
            return rc;
    }
    return PARE_OK;
}

bool qat_after_forward(void *user, pare_exec *x, pare_graph *g, const pare_train_step_info *info)
{
    qat_state *st = user;
    (void)info;
    return qat_observe(st, x, g, &st->err) == PARE_OK;
}

bool qat_after_step(void *user, pare_exec *x, pare_graph *g, const pare_train_step_info *info)
{
    qat_state *st = user;
    (void)x;
    (void)info;
    return qat_pact_sync(st, g, &st->err) == PARE_OK &&
           qat_update_weights(st, g, &st->err) == PARE_OK;
}

/* ---- building the trainable graph -------------------------------------------- */

static int add_node1(pare_graph *q, const char *op, const char *base, const int *in, int n_in,
                     int axis, char *out_name, size_t size, pare_error *err)
{
    char nb[1024], vb[1024];
    int out, n;

    snprintf(vb, sizeof vb, "%s_%s_Output", base, op);
    pare_graph_unique_name(q, vb, out_name, size);
    out = pare_graph_add_value(q, out_name, err);
    if (out < 0)
        return out;
    snprintf(nb, sizeof nb, "%s_%s", base, op);
    pare_graph_unique_name(q, nb, vb, sizeof vb);
    n = pare_graph_add_node(q, op, "", vb, in, n_in, &out, 1, err);
    if (n < 0)
        return n;
    if (axis >= 0) {
        pare_attr a = {.name = (char *)"axis", .type = PARE_ATTR_INT, .i = axis};
        pare_status rc = pare_node_add_attr(&q->nodes[n], &a, err);
        if (rc != PARE_OK)
            return rc;
    }
    return out;
}

/* A float initializer named like src's `name` in q (reusing it when q still
 * has it). Returns its value index. */
static int float_init(pare_graph *q, const pare_graph *src, const char *name, pare_error *err)
{
    int v = pare_graph_find_value(q, name), sv;
    char buf[1024];
    pare_tensor *t;

    if (v >= 0 && q->values[v].init && q->values[v].init->dtype == PARE_F32)
        return v;
    sv = pare_graph_find_value(src, name);
    if (sv < 0 || !src->values[sv].init)
        return pare_fail(err, PARE_EINTERNAL, name, "QAT: float tensor '%s' not found", name);
    t = pare_tensor_dup(src->values[sv].init);
    if (!t)
        return oom(err);
    pare_graph_unique_name(q, name, buf, sizeof buf);
    return pare_graph_add_initializer(q, buf, t, err);
}

static char *dup_or_null(const char *s, bool *ok)
{
    char *d = s ? pare_strdup(s) : NULL;
    if (s && !d)
        *ok = false;
    return d;
}

static pare_status make_trainable(const pare_graph *g, pare_graph *q, const pare_quant_report *rep,
                                  qat_state *st, pare_error *err)
{
    bool *remove = NULL;
    pare_status rc = PARE_OK;
    bool ok = true;

    st->acts = pare_calloc((size_t)rep->n_tensors + 1, sizeof *st->acts);
    st->ws = pare_calloc((size_t)rep->n_tensors + 1, sizeof *st->ws);
    st->bs = pare_calloc((size_t)rep->n_tensors + 1, sizeof *st->bs);
    if (!st->acts || !st->ws || !st->bs)
        return oom(err);

    /* activations: keep the pairs, remember their initializers */
    for (int i = 0; i < rep->n_tensors; i++) {
        const pare_quant_tensor *t = &rep->tensors[i];
        qat_act *a = &st->acts[st->n_acts];
        int qn, cn;
        const pare_node *node;

        if (t->kind != PARE_QUANT_ACTIVATION)
            continue;
        qn = producer_of(q, t->stored_name);
        if (qn < 0 || strcmp(q->nodes[qn].op_type, "QuantizeLinear") || q->nodes[qn].n_inputs < 2)
            return pare_fail(err, PARE_EINTERNAL, t->name, "QAT: no QuantizeLinear for '%s'",
                             t->name);
        node = &q->nodes[qn];
        a->name = dup_or_null(t->name, &ok);
        a->scale = dup_or_null(vname(q, node->inputs[1]), &ok);
        a->zp = dup_or_null(node->n_inputs > 2 ? vname(q, node->inputs[2]) : NULL, &ok);
        cn = q->values[node->inputs[0]].producer;
        a->qnode = dup_or_null(node->name, &ok);
        if (cn >= 0 && !strcmp(q->nodes[cn].op_type, "Clip") && q->nodes[cn].n_inputs >= 3) {
            pare_free(a->qnode);
            a->qnode = dup_or_null(q->nodes[cn].name, &ok);
            a->observed = dup_or_null(vname(q, q->nodes[cn].inputs[0]), &ok);
            a->clip_min = dup_or_null(vname(q, q->nodes[cn].inputs[1]), &ok);
            a->clip_max = dup_or_null(vname(q, q->nodes[cn].inputs[2]), &ok);
        } else {
            a->observed = dup_or_null(vname(q, node->inputs[0]), &ok);
        }
        a->dtype = t->dtype;
        a->qmin = t->qmin;
        a->qmax = t->qmax;
        a->neg = t->lo < 0.0f;
        {
            float amax = fabsf(t->lo) > fabsf(t->hi) ? fabsf(t->lo) : fabsf(t->hi);
            a->state = 1.0;
            a->accum = amax;
            a->running = amax;
            a->n_window = st->window_size > 0 ? st->window_size : 1;
            if (a->n_window > 100000)
                a->n_window = 100000;
            a->window = pare_calloc((size_t)a->n_window, sizeof *a->window);
            if (!a->window)
                ok = false;
            else {
                a->window[0] = amax;
                a->pos = 1 % a->n_window;
                a->filled = 1;
            }
            act_set_range(a, amax);
        }
        st->n_acts++;
        if (!ok)
            return oom(err);
    }

    /* PACT: a learned Clip in front of each pair: Clip(x, Neg(alpha), alpha)
       for tensors seen negative, else Clip(x, 0, alpha); alpha is a scalar
       initializer the trainer's optimizer updates (qat_pact_extras), so the
       Clip backward gives it its gradient, through the Neg for the lower
       bound */
    if (st->use_pact) {
        st->pact_extra = pare_calloc((size_t)st->n_acts + 1, sizeof *st->pact_extra);
        if (!st->pact_extra)
            return oom(err);
    }
    for (int i = 0; i < st->n_acts && st->use_pact; i++) {
        qat_act *a = &st->acts[i];
        int xv = pare_graph_find_value(q, a->observed), n = pare_graph_find_node(q, a->qnode);
        int in[3], yv;
        char base[1024], name[1024], out[1024];
        pare_tensor *t0;

        if (xv < 0 || n < 0 || q->nodes[n].inputs[0] != xv)
            return pare_fail(err, PARE_EINTERNAL, a->name, "QAT: no pair found for PACT on '%s'",
                             a->name);
        a->alpha = a->hi > PACT_ALPHA_MIN ? a->hi : PACT_ALPHA_MIN;
        in[0] = xv;
        snprintf(base, sizeof base, "%s_pact_max", a->name);
        pare_graph_unique_name(q, base, name, sizeof name);
        t0 = pare_tensor_new(PARE_F32, 0, NULL);
        if (!t0)
            return oom(err);
        pare_tensor_f32(t0)[0] = a->alpha;
        in[2] = pare_graph_add_initializer(q, name, t0, err);
        if (in[2] < 0)
            return in[2];
        a->pact_max = dup_or_null(name, &ok);
        snprintf(base, sizeof base, "%s_pact", a->name);
        if (a->neg) {
            in[1] = add_node1(q, "Neg", base, &in[2], 1, -1, out, sizeof out, err);
            if (in[1] < 0)
                return in[1];
            a->pact_min = dup_or_null(out, &ok);
        } else {
            snprintf(name, sizeof name, "%s_pact_min", a->name);
            pare_graph_unique_name(q, name, out, sizeof out);
            t0 = pare_tensor_new(PARE_F32, 0, NULL);
            if (!t0)
                return oom(err);
            pare_tensor_f32(t0)[0] = 0.0f;
            in[1] = pare_graph_add_initializer(q, out, t0, err);
            if (in[1] < 0)
                return in[1];
            a->pact_min = dup_or_null(out, &ok);
        }
        yv = add_node1(q, "Clip", base, in, 3, -1, out, sizeof out, err);
        if (yv < 0)
            return yv;
        n = pare_graph_find_node(q, a->qnode);
        q->nodes[n].inputs[0] = yv;
        a->pact_out = dup_or_null(out, &ok);
        a->pact = true;
        st->pact_extra[st->n_pact_extra].name = a->pact_max;
        st->pact_extra[st->n_pact_extra].lr_mult = st->pact_lr_mult;
        st->pact_extra[st->n_pact_extra].weight_decay = st->pact_decay;
        st->n_pact_extra++;
        if (!ok)
            return oom(err);
    }

    /* biases: back to float; the node's input and weight scales noted */
    for (int i = 0; i < rep->n_tensors; i++) {
        const pare_quant_tensor *t = &rep->tensors[i];
        int dv = pare_graph_find_value(q, t->qdq_name), bv, n = -1;
        qat_bias *b = &st->bs[st->n_bs];

        if (t->kind != PARE_QUANT_BIAS || dv < 0)
            continue;
        for (int c = 0; c < q->values[dv].n_consumers; c++) {
            const pare_node *node = &q->nodes[q->values[dv].consumers[c]];
            if (node->n_inputs > 2 && node->inputs[2] == dv)
                n = q->values[dv].consumers[c];
        }
        if (n < 0)
            continue;
        bv = float_init(q, g, t->name, err);
        if (bv < 0)
            return bv;
        q->nodes[n].inputs[2] = bv;
        b->bias = dup_or_null(vname(q, bv), &ok);
        b->act_scale = dup_or_null(dq_scale_of(q, q->nodes[n].inputs[0]), &ok);
        b->w_scale = dup_or_null(dq_scale_of(q, q->nodes[n].inputs[1]), &ok);
        st->n_bs++;
        if (!ok)
            return oom(err);
    }

    /* weights: float -> QuantizeLinear -> the existing DequantizeLinear */
    for (int i = 0; i < rep->n_tensors && rc == PARE_OK; i++) {
        const pare_quant_tensor *t = &rep->tensors[i];
        qat_weight *w = &st->ws[st->n_ws];
        int dq = producer_of(q, t->qdq_name), wv, in[3], qv;
        char qname[1024];

        if (t->kind != PARE_QUANT_WEIGHT || dq < 0)
            continue;
        if (t->block_size > 0)
            return pare_fail(err, PARE_EUNSUPPORTED, t->name, "QAT with block-wise weights");
        wv = float_init(q, g, t->name, err);
        if (wv < 0)
            return wv;
        in[0] = wv;
        in[1] = q->nodes[dq].inputs[1];
        in[2] = q->nodes[dq].n_inputs > 2 ? q->nodes[dq].inputs[2] : -1;
        qv = add_node1(q, "QuantizeLinear", t->name, in, in[2] >= 0 ? 3 : 2, t->axis, qname,
                       sizeof qname, err);
        if (qv < 0)
            return qv;
        dq = producer_of(q, t->qdq_name); /* nodes may have moved */
        q->nodes[dq].inputs[0] = qv;
        w->weight = dup_or_null(vname(q, wv), &ok);
        w->qout = dup_or_null(qname, &ok);
        w->scale = dup_or_null(vname(q, in[1]), &ok);
        w->zp = dup_or_null(in[2] >= 0 ? vname(q, in[2]) : NULL, &ok);
        w->axis = t->axis;
        w->qmin = t->qmin;
        w->qmax = t->qmax;
        st->n_ws++;
        if (!ok)
            return oom(err);
    }
    rc = pare_graph_index(q, err);
    if (rc != PARE_OK)
        return rc;
    /* drop the int32 bias DequantizeLinear nodes nothing reads now */
    remove = pare_calloc((size_t)q->n_nodes + 1, sizeof *remove);
    if (!remove)
        return oom(err);
    for (int n = 0; n < q->n_nodes; n++) {
        const pare_node *node = &q->nodes[n];
        if (!strcmp(node->op_type, "DequantizeLinear") && node->n_outputs == 1 &&
            node->outputs[0] >= 0 && q->values[node->outputs[0]].n_consumers == 0 &&
            !q->values[node->outputs[0]].is_output)
            remove[n] = true;
    }
    rc = pare_graph_remove_nodes(q, remove, err);
    pare_free(remove);
    return rc;
}

pare_status qat_prepare(const pare_graph *g, pare_dataset *calib, const pare_job_quant_aware *qa,
                        int batch_size, int calib_batches, int n_threads,
                        const pare_progress *progress, pare_graph **out, qat_state **st_out,
                        pare_error *err)
{
    pare_quant_opts o;
    pare_quant_calib *c = NULL;
    pare_quant_report *rep = NULL;
    pare_quant_bits *bits = NULL;
    pare_graph *q = NULL;
    qat_state *st = NULL;
    pare_status rc;

    *out = NULL;
    *st_out = NULL;
    if (!qa->onnx_format)
        return pare_fail(err, PARE_EUNSUPPORTED, "QuantAware.onnx_format",
                         "pare writes only the QDQ format (onnx_format: true)");
    pare_quant_opts_init(&o);
    o.activation_bits = (int)qa->activation_bits;
    o.weight_bits = (int)qa->weight_bits;
    o.algo = PARE_QUANT_ABS_MAX;
    o.batch_nums = calib_batches;
    o.batch_size = batch_size;
    o.weight_quantize_type = qa->weight_quantize_type == PARE_JOB_WQ_ABS_MAX
                                 ? PARE_QUANT_W_ABS_MAX : PARE_QUANT_CHANNEL_WISE_ABS_MAX;
    o.activation_unsigned = qa->activation_type == PARE_JOB_ACT_UINT8;
    o.activation_symmetric = qa->activation_symmetric;
    o.quantize_op_types = qa->quantize_op_types.n ? (const char *const *)qa->quantize_op_types.v
                                                  : NULL;
    o.n_quantize_op_types = qa->quantize_op_types.n;
    o.skip_tensor_list = (const char *const *)qa->skip_tensor_list.v;
    o.n_skip_tensor_list = qa->skip_tensor_list.n;
    o.not_quant_pattern = (const char *const *)qa->not_quant_pattern.v;
    o.n_not_quant_pattern = qa->not_quant_pattern.n;
    o.n_threads = n_threads;

    st = pare_calloc(1, sizeof *st);
    if (!st)
        return oom(err);
    st->type = qa->activation_quantize_type;
    st->rate = qa->moving_rate;
    st->window_size = qa->window_size;
    st->symmetric = qa->activation_symmetric;
    st->act_bits = (int)qa->activation_bits;
    st->use_pact = qa->use_pact;
    st->pact_lr_mult = 1.0;
    st->pact_decay = 1e-4;
    rc = quant_bits_from_job(&qa->tensor_bits, &o, &bits, err);
    if (rc == PARE_OK)
        rc = pare_quant_calibrate(g, calib, &o, progress, &c, err);
    if (rc == PARE_OK)
        rc = pare_quant_build(g, c, &o, &q, &rep, err);
    if (rc == PARE_OK) {
        st->n_quantized_nodes = rep->n_quantized_nodes;
        rc = make_trainable(g, q, rep, st, err);
    }
    if (rc == PARE_OK) {
        for (int i = 0; i < st->n_acts; i++)
            act_write(st, &st->acts[i], q);
        rc = qat_update_weights(st, q, err);
    }
    pare_quant_report_free(rep);
    pare_quant_calib_free(c);
    pare_free(bits);
    if (rc != PARE_OK) {
        pare_graph_free(q);
        qat_free(st);
        return rc;
    }
    *out = q;
    *st_out = st;
    return PARE_OK;
}

/* ---- export -------------------------------------------------------------------- */

static pare_status export_weight(const qat_weight *q, pare_graph *g, bool *remove,
                                 pare_error *err)
{
    int qn = producer_of(g, q->qout), qv = pare_graph_find_value(g, q->qout), iv;
    const pare_tensor *w = init_of(g, q->weight), *s = init_of(g, q->scale), *z = init_of(g, q->zp);
    pare_tensor *t;
    int64_t n, ns, inner = 1, c = 1;
    char base[1024], name[1024];

    if (qn < 0 || qv < 0 || !w || !s)
        return pare_fail(err, PARE_EINTERNAL, q->weight, "QAT export: weight '%s' lost its "
                         "QuantizeLinear", q->weight);
    n = pare_tensor_numel(w);
    ns = pare_tensor_numel(s);
    if (q->axis >= 0 && q->axis < w->ndim && ns == w->dims[q->axis]) {
        c = w->dims[q->axis];
        for (int d = q->axis + 1; d < w->ndim; d++)
            inner *= w->dims[d];
    }
    t = pare_tensor_new(z ? z->dtype : PARE_U8, w->ndim, w->dims);
    if (!t)
        return oom(err);
    for (int64_t k = 0; k < n; k++) {
        int64_t ch = c > 1 ? (k / inner) % c : 0;
        float sc = pare_tensor_f32(s)[ch < ns ? ch : 0];
        int32_t zp = load_zp(z, ch < ns && z && pare_tensor_numel(z) == ns ? ch : 0);
        /* in float, as the QuantizeLinear kernel computes it */
        float v = sc > 0 ? nearbyintf(pare_tensor_f32(w)[k] / sc) + (float)zp : (float)zp;
        int32_t lo = t->dtype == PARE_I8 ? -128 : 0, hi = t->dtype == PARE_I8 ? 127 : 255;
        v = v < (float)lo ? (float)lo : v > (float)hi ? (float)hi : v;
        store_zp(t, k, (int32_t)v);
    }
    snprintf(base, sizeof base, "%s_quantized", q->weight);
    pare_graph_unique_name(g, base, name, sizeof name);
    iv = pare_graph_add_initializer(g, name, t, err);
    if (iv < 0)
        return iv;
    qv = pare_graph_find_value(g, q->qout);
    for (int k = 0; k < g->values[qv].n_consumers; k++) {
        pare_node *node = &g->nodes[g->values[qv].consumers[k]];
        for (int i = 0; i < node->n_inputs; i++)
            if (node->inputs[i] == qv)
                node->inputs[i] = iv;
    }
    remove[qn] = true;
    return PARE_OK;
}

static pare_status export_bias(const qat_bias *b, pare_graph *g, pare_error *err)
{
    int bv = pare_graph_find_value(g, b->bias), node = -1, in[3], dv;
    const pare_tensor *bt = bv >= 0 ? g->values[bv].init : NULL;
    const pare_tensor *sa = init_of(g, b->act_scale), *sw = init_of(g, b->w_scale);
    pare_tensor *qt, *st, *zt;
    int64_t nb, nsw;
    char base[1024], name[1024], out[1024];

    if (!bt || !sa || !sw || bt->ndim != 1 || bt->dtype != PARE_F32)
        return PARE_OK; /* stays float */
    nb = pare_tensor_numel(bt);
    nsw = pare_tensor_numel(sw);
    if (nsw != 1 && nsw != nb)
        return PARE_OK;
    for (int k = 0; k < g->values[bv].n_consumers; k++) {
        const pare_node *n = &g->nodes[g->values[bv].consumers[k]];
        if (n->n_inputs > 2 && n->inputs[2] == bv)
            node = g->values[bv].consumers[k];
    }
    if (node < 0)
        return PARE_OK;
    qt = pare_tensor_new(PARE_I32, 1, bt->dims);
    st = nsw == 1 ? pare_tensor_new(PARE_F32, 0, NULL) : pare_tensor_new(PARE_F32, 1, bt->dims);
    zt = nsw == 1 ? pare_tensor_new(PARE_I32, 0, NULL) : pare_tensor_new(PARE_I32, 1, bt->dims);
    if (!qt || !st || !zt) {
        pare_tensor_free(qt);
        pare_tensor_free(st);
        pare_tensor_free(zt);
        return oom(err);
    }
    memset(zt->data, 0, pare_tensor_nbytes(zt));
    for (int64_t i = 0; i < nsw; i++)
        pare_tensor_f32(st)[i] = pare_tensor_f32(sa)[0] * pare_tensor_f32(sw)[i];
    for (int64_t i = 0; i < nb; i++) {
        float sc = pare_tensor_f32(st)[nsw == 1 ? 0 : i];
        double v = sc > 0 ? nearbyint((double)pare_tensor_f32(bt)[i] / sc) : 0.0;
        v = v > 2147483647.0 ? 2147483647.0 : v < -2147483648.0 ? -2147483648.0 : v;
        ((int32_t *)qt->data)[i] = (int32_t)v;
    }
    snprintf(base, sizeof base, "%s_quantized", b->bias);
    pare_graph_unique_name(g, base, name, sizeof name);
    in[0] = pare_graph_add_initializer(g, name, qt, err);
    snprintf(base, sizeof base, "%s_scale", b->bias);
    pare_graph_unique_name(g, base, name, sizeof name);
    in[1] = in[0] < 0 ? in[0] : pare_graph_add_initializer(g, name, st, err);
    snprintf(base, sizeof base, "%s_zero_point", b->bias);
    pare_graph_unique_name(g, base, name, sizeof name);
    in[2] = in[1] < 0 ? in[1] : pare_graph_add_initializer(g, name, zt, err);
    if (in[0] < 0 || in[1] < 0 || in[2] < 0) {
        if (in[0] < 0)
            pare_tensor_free(st);
        if (in[1] < 0)
            pare_tensor_free(zt);
        return in[0] < 0 ? in[0] : in[1] < 0 ? in[1] : in[2];
    }
    dv = add_node1(g, "DequantizeLinear", b->bias, in, 3, nsw == 1 ? -1 : 0, out, sizeof out, err);
    if (dv < 0)
        return dv;
    g->nodes[node].inputs[2] = dv;
    return PARE_OK;
}

/* A trained PACT lower bound Neg(alpha) becomes the constant -alpha, so the
 * exported Clip reads two initializers, as ONNX Runtime folds them anyway. */
static pare_status export_pact(const qat_act *a, pare_graph *g, bool *remove, pare_error *err)
{
    int mv = pare_graph_find_value(g, a->pact_min), neg = mv >= 0 ? g->values[mv].producer : -1;
    int clip = producer_of(g, a->pact_out), iv;
    const pare_tensor *alpha = init_of(g, a->pact_max);
    pare_tensor *t;
    char base[1024], name[1024];

    if (neg < 0 || strcmp(g->nodes[neg].op_type, "Neg"))
        return PARE_OK;   /* [0, alpha]: the bound is a constant already */
    if (clip < 0 || !alpha || g->nodes[clip].n_inputs < 3)
        return pare_fail(err, PARE_EINTERNAL, a->name, "QAT export: the PACT clip of '%s' is "
                         "missing", a->name);
    t = pare_tensor_new(PARE_F32, 0, NULL);
    if (!t)
        return oom(err);
    pare_tensor_f32(t)[0] = -pare_tensor_f32(alpha)[0];
    snprintf(base, sizeof base, "%s_pact_min", a->name);
    pare_graph_unique_name(g, base, name, sizeof name);
    iv = pare_graph_add_initializer(g, name, t, err);
    if (iv < 0)
        return iv;
    clip = producer_of(g, a->pact_out);
    g->nodes[clip].inputs[1] = iv;
    remove[neg] = true;
    return PARE_OK;
}

pare_status qat_export(const qat_state *st, pare_graph *g, pare_error *err)
{
    bool *remove = NULL;
    pare_status rc = pare_graph_index(g, err);

    /* biases first: they read the weight scales, which stay */
    for (int i = 0; i < st->n_bs && rc == PARE_OK; i++)
        rc = export_bias(&st->bs[i], g, err);
    if (rc == PARE_OK)
        rc = pare_graph_index(g, err);
    if (rc == PARE_OK) {
        remove = pare_calloc((size_t)g->n_nodes + 1, sizeof *remove);
        if (!remove)
            rc = oom(err);
    }
    for (int i = 0; i < st->n_ws && rc == PARE_OK; i++)
        rc = export_weight(&st->ws[i], g, remove, err);
    for (int i = 0; i < st->n_acts && rc == PARE_OK; i++)
        if (st->acts[i].pact)
            rc = export_pact(&st->acts[i], g, remove, err);
    if (rc == PARE_OK)
        rc = pare_graph_remove_nodes(g, remove, err);
    pare_free(remove);
    return rc;
}

pare_status qat_write_table(const qat_state *st, const char *path, pare_error *err)
{
    size_t cap = 512 + (size_t)st->n_acts * 1100;
    char *buf = pare_alloc(cap);
    size_t len;
    pare_status rc;

    if (!buf)
        return oom(err);
    len = (size_t)snprintf(buf, cap,
        "# pare calibration table\n"
        "# quantization-aware training, activation_bits %d, ranges as trained\n"
        "# one line per activation tensor: <name> <min> <max>\n"
        "# min/max: the float range, before it is widened to include 0 and turned\n"
        "# into a scale and zero point\n", st->act_bits);
    for (int i = 0; i < st->n_acts && len < cap; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%s %.9g %.9g\n", st->acts[i].name,
                                st->acts[i].lo, st->acts[i].hi);
    rc = compress_write_text(path, buf, err);
    pare_free(buf);
    return rc;
}
