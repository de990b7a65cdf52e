/* Quantization: the QDQ graph, its report, and bias correction. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "pare/alloc.h"
#include "pare/exec.h"
#include "pare/quant.h"
#include "quant_internal.h"

/* ---- report ---- */

static void tensor_fini(pare_quant_tensor *t)
{
    pare_free(t->name);
    pare_free(t->qdq_name);
    pare_free(t->stored_name);
    pare_free(t->scales);
    pare_free(t->zero_points);
}

void pare_quant_report_free(pare_quant_report *r)
{
    if (!r)
        return;
    for (int i = 0; i < r->n_tensors; i++)
        tensor_fini(&r->tensors[i]);
    pare_free(r->tensors);
    for (int i = 0; i < r->n_quantized_nodes; i++)
        pare_free(r->quantized_nodes[i]);
    pare_free(r->quantized_nodes);
    for (int i = 0; i < r->n_skipped_nodes; i++)
        pare_free(r->skipped_nodes[i]);
    pare_free(r->skipped_nodes);
    for (int i = 0; i < r->n_map; i++) {
        pare_free(r->map[i].original);
        pare_free(r->map[i].qdq);
    }
    pare_free(r->map);
    for (int i = 0; i < r->n_warnings; i++)
        pare_free(r->warnings[i]);
    pare_free(r->warnings);
    pare_free(r);
}

const pare_quant_tensor *pare_quant_report_find(const pare_quant_report *r, const char *name)
{
    for (int i = 0; i < r->n_tensors; i++)
        if (!strcmp(r->tensors[i].name, name))
            return &r->tensors[i];
    return NULL;
}

const char *pare_quant_report_map_name(const pare_quant_report *r, const char *name)
{
    for (int i = 0; i < r->n_map; i++)
        if (!strcmp(r->map[i].original, name))
            return r->map[i].qdq;
    return name;
}

/* Appends an entry; takes the arrays (freed on failure). */
static pare_status report_add(pare_quant_report *r, const pare_quant_tensor *t, pare_error *err)
{
    pare_quant_tensor *grown = pare_realloc(r->tensors, (size_t)(r->n_tensors + 1) * sizeof *grown);
    pare_quant_name_map *m = grown ? pare_realloc(r->map, (size_t)(r->n_map + 1) * sizeof *m) : NULL;
    pare_quant_tensor *e;

    if (grown)
        r->tensors = grown;
    if (m)
        r->map = m;
    if (!grown || !m) {
        pare_free(t->scales);
        pare_free(t->zero_points);
        return pare_fail(err, PARE_ENOMEM, NULL, "out of memory");
    }
    e = &r->tensors[r->n_tensors++];
    *e = *t;
    e->name = pare_strdup(t->name);
    e->qdq_name = pare_strdup(t->qdq_name);
    e->stored_name = pare_strdup(t->stored_name);
    r->map[r->n_map].original = pare_strdup(t->name);
    r->map[r->n_map].qdq = pare_strdup(t->qdq_name);
    r->n_map++;
    if (!e->name || !e->qdq_name || !e->stored_name || !r->map[r->n_map - 1].original ||
        !r->map[r->n_map - 1].qdq)
        return pare_fail(err, PARE_ENOMEM, NULL, "out of memory");
    return PARE_OK;
}

/* ---- opset ---- */

/* Ops whose signature changed (an attribute became an input, or similar)
 * at the given opset: raising a model's opset past one of these would change
 * what the node means. */
static const struct { const char *op; int at; } form_changes[] = {
    {"BatchNormalization", 9}, {"Upsample", 10}, {"Slice", 10}, {"TopK", 10},
    {"Clip", 11}, {"Pad", 11}, {"Resize", 11}, {"Dropout", 12},
    {"Squeeze", 13}, {"Unsqueeze", 13}, {"Split", 13}, {"ReduceSum", 13},
    {"Split", 18}, {"ReduceMean", 18}, {"ReduceMax", 18}, {"ReduceMin", 18},
    {"ReduceProd", 18}, {"ReduceL1", 18}, {"ReduceL2", 18}, {"ReduceLogSum", 18},
    {"ReduceLogSumExp", 18}, {"ReduceSumSquare", 18},
};

static pare_status raise_opset(pare_graph *q, int want, pare_error *err)
{
    int have = pare_graph_opset(q, "");

    if (have >= want)
        return PARE_OK;
    for (int n = 0; n < q->n_nodes; n++) {
        const pare_node *node = &q->nodes[n];
        if (node->domain[0])
            continue;
        for (size_t k = 0; k < sizeof form_changes / sizeof *form_changes; k++)
            if (!strcmp(node->op_type, form_changes[k].op) && form_changes[k].at > have &&
                form_changes[k].at <= want) {
                char where[512];
                pare_fail(err, PARE_EUNSUPPORTED, pare_graph_node_where(q, n, where, sizeof where),
                          "cannot raise the model's opset from %d to %d: %s changed form in "
                          "opset %d", have, want, node->op_type, form_changes[k].at);
                pare_error_hint(err, want >= 21 ? "block-wise weights need opset 21: quantize "
                                "per channel instead" : "convert the model to opset 13 first");
                return PARE_EUNSUPPORTED;
            }
    }
    for (int i = 0; i < q->n_opsets; i++)
        if (!q->opsets[i].domain[0] || !strcmp(q->opsets[i].domain, "ai.onnx"))
            q->opsets[i].version = want;
    if (have == 0) {
        pare_opset *grown = pare_realloc(q->opsets, (size_t)(q->n_opsets + 1) * sizeof *grown);
        if (!grown)
            return pare_fail(err, PARE_ENOMEM, NULL, "out of memory");
        q->opsets = grown;
        grown[q->n_opsets].domain = pare_strdup("");
        grown[q->n_opsets].version = want;
        if (!grown[q->n_opsets].domain)
            return pare_fail(err, PARE_ENOMEM, NULL, "out of memory");
        q->n_opsets++;
    }
    return PARE_OK;
}

/* ---- graph helpers ---- */

static int add_init(pare_graph *q, const char *base, pare_tensor *t, char *name, size_t size,
                    pare_error *err)
{
    if (!t)
        return pare_fail(err, PARE_ENOMEM, NULL, "out of memory");
    pare_graph_unique_name(q, base, name, size);
    return pare_graph_add_initializer(q, name, t, err);
}

static pare_tensor *scalar_f32(float v)
{
    pare_tensor *t = pare_tensor_new(PARE_F32, 0, NULL);
    if (t)
        pare_tensor_f32(t)[0] = v;
    return t;
}

static pare_tensor *scalar_zp(pare_dtype dt, int32_t z)
{
    pare_tensor *t = pare_tensor_new(dt, 0, NULL);
    if (!t)
        return NULL;
    if (dt == PARE_U8)
        *(uint8_t *)t->data = (uint8_t)z;
    else if (dt == PARE_I8)
        *(int8_t *)t->data = (int8_t)z;
    else
        *(int32_t *)t->data = z;
    return t;
}

/* Adds node op(inputs) -> a new value named base_<Op>_Output; returns the
 * output value index. axis/block < 0: attribute not set. */
static int add_op(pare_graph *q, const char *op, const char *base, const int *in, int n_in,
                  int64_t axis, int64_t block, char *out_name, size_t size, pare_error *err)
{
    char nb[1024], vb[1024];
    int out, n;

    snprintf(nb, sizeof nb, "%s_%s", base, op);
    snprintf(vb, sizeof vb, "%s_%s_Output", base, op);
    pare_graph_unique_name(q, vb, out_name, size);
    out = pare_graph_add_value(q, out_name, err);
    if (out < 0)
        return out;
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
    if (block > 0) {
        pare_attr a = {.name = (char *)"block_size", .type = PARE_ATTR_INT, .i = block};
        pare_status rc = pare_node_add_attr(&q->nodes[n], &a, err);
        if (rc != PARE_OK)
            return rc;
    }
    return out;
}

/* Points input i of every quantized node reading v (at a quantizable slot)
 * to nv. Only original nodes (index < n_orig) are looked at. */
static void rewire(pare_graph *q, const quant_sel *sel, int v, int nv, bool weight_slot)
{
    for (int n = 0; n < sel->n_nodes; n++) {
        pare_node *node = &q->nodes[n];
        int wi = quant_weight_input(node);
        if (!weight_slot && sel->act_all[v]) {
            /* a quantized output: every consumer reads the pair */
            for (int i = 0; i < node->n_inputs; i++)
                if (node->inputs[i] == v)
                    node->inputs[i] = nv;
            continue;
        }
        if (!sel->node_q[n])
            continue;
        for (int i = 0; i < node->n_inputs; i++)
            if (node->inputs[i] == v && quant_input_quantizable(node, i) && (i == wi) == weight_slot)
                node->inputs[i] = nv;
    }
}

/* ---- activation quantization ---- */

typedef struct act_info {
    bool on;
    float lo, hi;
    float scale;
    int32_t zp;
} act_info;

static pare_status quantize_activation(pare_graph *q, const quant_sel *sel, int v, act_info *a,
                                       pare_dtype dt, int bits, int32_t qmin, int32_t qmax,
                                       pare_quant_report *r, pare_error *err)
{
    char name[1024], base[960], sname[1024], zname[1024], qname[1024], dname[1024];
    int in[3], x = v, s, z, qv, dv;
    pare_quant_tensor t;

    snprintf(base, sizeof base, "%s", q->values[v].name);
    if (bits < 8) {
        /* QuantizeLinear saturates at the 8-bit container's limits: clip to
           the n-bit range first so values past the calibrated range do not
           use the container's spare codes */
        int lo_v, hi_v;
        char b1[1024], b2[1024];
        lo_v = add_init(q, (snprintf(b1, sizeof b1, "%s_clip_min", base), b1),
                        scalar_f32((float)(qmin - a->zp) * a->scale), name, sizeof name, err);
        if (lo_v < 0)
            return lo_v;
        hi_v = add_init(q, (snprintf(b2, sizeof b2, "%s_clip_max", base), b2),
                        scalar_f32((float)(qmax - a->zp) * a->scale), name, sizeof name, err);
        if (hi_v < 0)
            return hi_v;
        in[0] = v;
        in[1] = lo_v;
        in[2] = hi_v;
        x = add_op(q, "Clip", base, in, 3, -1, -1, name, sizeof name, err);
        if (x < 0)
            return x;
    }
    snprintf(name, sizeof name, "%s_scale", base);
    s = add_init(q, name, scalar_f32(a->scale), sname, sizeof sname, err);
    if (s < 0)
        return s;
    snprintf(name, sizeof name, "%s_zero_point", base);
    z = add_init(q, name, scalar_zp(dt, a->zp), zname, sizeof zname, err);
    if (z < 0)
        return z;
    in[0] = x;
    in[1] = s;
    in[2] = z;
    qv = add_op(q, "QuantizeLinear", base, in, 3, -1, -1, qname, sizeof qname, err);
    if (qv < 0)
        return qv;
    in[0] = qv;
    dv = add_op(q, "DequantizeLinear", base, in, 3, -1, -1, dname, sizeof dname, err);
    if (dv < 0)
        return dv;
    rewire(q, sel, v, dv, false);
    memset(&t, 0, sizeof t);
    t.name = base;
    t.qdq_name = dname;
    t.stored_name = qname;
    t.kind = PARE_QUANT_ACTIVATION;
    t.dtype = dt;
    t.bits = bits;
    t.qmin = qmin;
    t.qmax = qmax;
    t.axis = -1;
    t.n_scales = 1;
    t.scales = pare_alloc(sizeof *t.scales);
    t.zero_points = pare_alloc(sizeof *t.zero_points);
    t.lo = a->lo;
    t.hi = a->hi;
    t.mse = NAN;
    t.snr_db = NAN;
    if (!t.scales || !t.zero_points) {
        pare_free(t.scales);
        pare_free(t.zero_points);
        return pare_fail(err, PARE_ENOMEM, NULL, "out of memory");
    }
    t.scales[0] = a->scale;
    t.zero_points[0] = a->zp;
    return report_add(r, &t, err);
}

/* ---- weight quantization ---- */

/* Per-channel axis of node's weight (ONNX Runtime's defaults). */
static int weight_axis(const pare_node *node, int ndim)
{
    if (!strcmp(node->op_type, "Conv"))
        return 0;
    if (!strcmp(node->op_type, "ConvTranspose"))
        return ndim > 1 ? 1 : 0;
    if (!strcmp(node->op_type, "Gemm"))
        return pare_node_attr_int(node, "transB", 0) ? 0 : 1;
    return ndim - 1; /* MatMul [.., K, N]: N */
}

/* The input (reduction) axis, along which blocks run. */
static int weight_in_axis(const pare_node *node, int ndim)
{
    if (!strcmp(node->op_type, "Conv"))
        return ndim > 1 ? 1 : 0;
    if (!strcmp(node->op_type, "ConvTranspose"))
        return 0;
    if (!strcmp(node->op_type, "Gemm"))
        return pare_node_attr_int(node, "transB", 0) ? 1 : 0;
    return ndim >= 2 ? ndim - 2 : 0;
}

typedef struct w_layout {
    int64_t outer, c, inner;  /* w viewed as (outer, c, inner) around the scale axis */
    int64_t block;            /* elements of the axis per scale (1: per channel) */
    int64_t s_c;              /* scales along the axis */
    bool blocked;             /* scales vary with outer and inner too */
    int axis;                 /* -1: per tensor */
    int64_t n_scales;
} w_layout;

static void w_layout_of(const pare_tensor *w, int axis, int64_t block, w_layout *l)
{
    memset(l, 0, sizeof *l);
    l->axis = axis;
    if (axis < 0) {
        l->outer = 1;
        l->c = 1;
        l->inner = pare_tensor_numel(w);
        l->block = 1;
        l->s_c = 1;
        l->n_scales = 1;
        return;
    }
    l->outer = pare_shape_numel(axis, w->dims);
    l->c = w->dims[axis];
    l->inner = pare_shape_numel(w->ndim - axis - 1, w->dims + axis + 1);
    if (block > 0) {
        l->block = block;
        l->s_c = (l->c + block - 1) / block;
        l->blocked = true;
        l->n_scales = l->outer * l->s_c * l->inner;
    } else {
        l->block = 1;
        l->s_c = l->c;
        l->n_scales = l->c;
    }
}

/* Scale index of element (o, ci, i). */
static inline int64_t w_sidx(const w_layout *l, int64_t o, int64_t ci, int64_t i)
{
    if (l->axis < 0)
        return 0;
    if (!l->blocked)
        return ci;
    return (o * l->s_c + ci / l->block) * l->inner + i;
}

/* Shrinks each amax[s] to the clip c = amax * (1 - k/100), k = 0..80, with
 * the least squared error of symmetric quantization over its elements:
 * below 8 bits, clipping a few large weights buys finer steps for the rest. */
static pare_status weight_mse_clip(const float *wf, const w_layout *l, int32_t qmin, int32_t qmax,
                                   float *amax, pare_error *err)
{
    enum { STEPS = 81 };
    double *e = pare_calloc((size_t)l->n_scales * STEPS, sizeof *e);

    (void)qmin;
    if (!e)
        return pare_fail(err, PARE_ENOMEM, NULL, "out of memory");
    for (int k = 0; k < STEPS; k++) {
        double f = 1.0 - k / 100.0;
        for (int64_t oo = 0, i = 0; oo < l->outer; oo++)
            for (int64_t ci = 0; ci < l->c; ci++)
                for (int64_t in = 0; in < l->inner; in++, i++) {
                    int64_t s = w_sidx(l, oo, ci, in);
                    double c = amax[s] * f, sc = c / qmax, q, d;
                    if (sc <= 0)
                        continue;
                    q = nearbyint(wf[i] / sc);
                    q = q > qmax ? qmax : q < -qmax ? -qmax : q;
                    d = q * sc - wf[i];
                    e[s * STEPS + k] += d * d;
                }
    }
    for (int64_t s = 0; s < l->n_scales; s++) {
        int best = 0;
        for (int k = 1; k < STEPS; k++)
            if (e[s * STEPS + k] < e[s * STEPS + best])
                best = k;
        amax[s] *= (float)(1.0 - best / 100.0);
    }
    pare_free(e);
    return PARE_OK;
}

static pare_status quantize_weight(pare_graph *q, const quant_sel *sel, int v, const pare_node *node,
                                   const pare_quant_opts *o, int bits, pare_quant_report *r,
                                   float **scales_out, int *n_scales_out, pare_error *err)
{
    const pare_tensor *w = q->values[v].init;
    const float *wf = w->data;
    bool per_channel = o->weight_quantize_type == PARE_QUANT_CHANNEL_WISE_ABS_MAX && w->ndim >= 2;
    int axis = -1;
    int64_t block = 0;
    w_layout l;
    int32_t qmin, qmax;
    float *amax = NULL, *scales = NULL;
    pare_tensor *qt = NULL, *st = NULL, *zt = NULL;
    char base[960], name[1024], sname[1024], zname[1024], qname[1024], dname[1024];
    int in[3], qi, si, zi, dv;
    double sum_sq = 0.0, err_sq = 0.0;
    float wlo = 0.0f, whi = 0.0f;
    pare_quant_tensor t;
    int64_t sdims[PARE_MAX_DIMS];
    pare_status rc = PARE_OK;

    if (o->block_size > 0 && w->ndim >= 2) {
        axis = weight_in_axis(node, w->ndim);
        block = o->block_size;
    } else if (per_channel) {
        axis = weight_axis(node, w->ndim);
    }
    w_layout_of(w, axis, block, &l);
    pare_quant_qrange(bits, true, true, o->reduce_range, &qmin, &qmax);
    amax = pare_calloc((size_t)l.n_scales, sizeof *amax);
    scales = pare_alloc((size_t)l.n_scales * sizeof *scales);
    if (!amax || !scales) {
        rc = pare_fail(err, PARE_ENOMEM, NULL, "out of memory");
        goto out;
    }
    for (int64_t oo = 0, k = 0; oo < l.outer; oo++)
        for (int64_t ci = 0; ci < l.c; ci++)
            for (int64_t i = 0; i < l.inner; i++, k++) {
                float a = fabsf(wf[k]);
                int64_t s = w_sidx(&l, oo, ci, i);
                if (a > amax[s])
                    amax[s] = a;
                wlo = wf[k] < wlo ? wf[k] : wlo;
                whi = wf[k] > whi ? wf[k] : whi;
            }
    if (o->weight_mse) {
        rc = weight_mse_clip(wf, &l, qmin, qmax, amax, err);
        if (rc != PARE_OK)
            goto out;
    }
    for (int64_t s = 0; s < l.n_scales; s++) {
        int32_t zp;
        pare_quant_scale_zp(-amax[s], amax[s], qmin, qmax, true, &scales[s], &zp);
    }
    qt = pare_tensor_new(PARE_I8, w->ndim, w->dims);
    if (!qt) {
        rc = pare_fail(err, PARE_ENOMEM, NULL, "out of memory");
        goto out;
    }
    for (int64_t oo = 0, k = 0; oo < l.outer; oo++)
        for (int64_t ci = 0; ci < l.c; ci++)
            for (int64_t i = 0; i < l.inner; i++, k++) {
                float sc = scales[w_sidx(&l, oo, ci, i)];
                float vq = nearbyintf(wf[k] / sc);
                double e;
                vq = vq < (float)qmin ? (float)qmin : vq > (float)qmax ? (float)qmax : vq;
                ((int8_t *)qt->data)[k] = (int8_t)vq;
                e = (double)vq * sc - wf[k];
                err_sq += e * e;
                sum_sq += (double)wf[k] * wf[k];
            }
    /* scale and zero point shapes: scalar, [C], or w's shape with blocks */
    if (axis < 0) {
        st = pare_tensor_new(PARE_F32, 0, NULL);
        zt = pare_tensor_new(PARE_I8, 0, NULL);
    } else if (!l.blocked) {
        st = pare_tensor_new(PARE_F32, 1, &l.c);
        zt = pare_tensor_new(PARE_I8, 1, &l.c);
    } else {
        memcpy(sdims, w->dims, sizeof(int64_t) * (size_t)w->ndim);
        sdims[axis] = l.s_c;
        st = pare_tensor_new(PARE_F32, w->ndim, sdims);
        zt = pare_tensor_new(PARE_I8, w->ndim, sdims);
    }
    if (!st || !zt) {
        rc = pare_fail(err, PARE_ENOMEM, NULL, "out of memory");
        goto out;
    }
    memcpy(st->data, scales, (size_t)l.n_scales * sizeof(float));
    snprintf(base, sizeof base, "%s", q->values[v].name);
    snprintf(name, sizeof name, "%s_quantized", base);
    qi = add_init(q, name, qt, qname, sizeof qname, err);
    qt = NULL;
    if (qi < 0) {
        rc = qi;
        goto out;
    }
    snprintf(name, sizeof name, "%s_scale", base);
    si = add_init(q, name, st, sname, sizeof sname, err);
    st = NULL;
    if (si < 0) {
        rc = si;
        goto out;
    }
    snprintf(name, sizeof name, "%s_zero_point", base);
    zi = add_init(q, name, zt, zname, sizeof zname, err);
    zt = NULL;
    if (zi < 0) {
        rc = zi;
        goto out;
    }
    in[0] = qi;
    in[1] = si;
    in[2] = zi;
    dv = add_op(q, "DequantizeLinear", base, in, 3, axis, block, dname, sizeof dname, err);
    if (dv < 0) {
        rc = dv;
        goto out;
    }
    rewire(q, sel, v, dv, true);
    memset(&t, 0, sizeof t);
    t.name = base;
    t.qdq_name = dname;
    t.stored_name = qname;
    t.kind = PARE_QUANT_WEIGHT;
    t.dtype = PARE_I8;
    t.bits = bits;
    t.qmin = qmin;
    t.qmax = qmax;
    t.axis = axis;
    t.block_size = (int)block;
    t.n_scales = (int)l.n_scales;
    t.scales = pare_alloc((size_t)l.n_scales * sizeof *t.scales);
    t.zero_points = pare_calloc((size_t)l.n_scales, sizeof *t.zero_points);
    t.lo = wlo;
    t.hi = whi;
    t.mse = err_sq / (double)(pare_tensor_numel(w) ? pare_tensor_numel(w) : 1);
    t.snr_db = err_sq > 0 ? 10.0 * log10(sum_sq / err_sq) : INFINITY;
    if (!t.scales || !t.zero_points) {
        pare_free(t.scales);
        pare_free(t.zero_points);
        rc = pare_fail(err, PARE_ENOMEM, NULL, "out of memory");
        goto out;
    }
    memcpy(t.scales, scales, (size_t)l.n_scales * sizeof *t.scales);
    if (r)
        rc = report_add(r, &t, err);
    else {
        pare_free(t.scales);
        pare_free(t.zero_points);
    }
    if (rc == PARE_OK && !l.blocked) {
        *scales_out = scales;
        *n_scales_out = (int)l.n_scales;
        scales = NULL;
    }
out:
    pare_free(amax);
    pare_free(scales);
    pare_tensor_free(qt);
    pare_tensor_free(st);
    pare_tensor_free(zt);
    return rc;
}

/* int32 bias of node n: scale[c] = s_in * s_w[c] (s_w per tensor: one scale). */
static pare_status quantize_bias(pare_graph *q, int n, int b, float s_in, const float *s_w,
                                 int n_sw, pare_quant_report *r, char ***warn, int *n_warn,
                                 pare_error *err)
{
    const pare_tensor *bt = q->values[b].init;
    const float *bf = bt->data;
    int64_t nb = pare_tensor_numel(bt);
    pare_tensor *qt = NULL, *st = NULL, *zt = NULL;
    float *bs = NULL;
    char base[960], name[1024], sname[1024], zname[1024], qname[1024], dname[1024];
    int in[3], qi, si, zi, dv, clipped = 0;
    double sum_sq = 0, err_sq = 0;
    float lo = 0, hi = 0;
    pare_quant_tensor t;
    pare_status rc = PARE_OK;

    if (bt->ndim != 1 || (n_sw != 1 && n_sw != nb))
        return PARE_OK; /* unusual bias shape: stays float */
    bs = pare_alloc((size_t)n_sw * sizeof *bs);
    qt = pare_tensor_new(PARE_I32, 1, bt->dims);
    st = n_sw == 1 ? pare_tensor_new(PARE_F32, 0, NULL) : pare_tensor_new(PARE_F32, 1, bt->dims);
    zt = n_sw == 1 ? pare_tensor_new(PARE_I32, 0, NULL) : pare_tensor_new(PARE_I32, 1, bt->dims);
    if (!bs || !qt || !st || !zt) {
        rc = pare_fail(err, PARE_ENOMEM, NULL, "out of memory");
        goto out;
    }
    for (int i = 0; i < n_sw; i++)
        bs[i] = pare_tensor_f32(st)[i] = s_in * s_w[i];
    for (int64_t i = 0; i < nb; i++) {
        float sc = bs[n_sw == 1 ? 0 : i];
        double v = sc > 0 ? nearbyint((double)bf[i] / sc) : 0.0, e;
        if (v > 2147483647.0 || v < -2147483648.0) {
            clipped++;
            v = v > 0 ? 2147483647.0 : -2147483648.0;
        }
        ((int32_t *)qt->data)[i] = (int32_t)v;
        e = v * sc - bf[i];
        err_sq += e * e;
        sum_sq += (double)bf[i] * bf[i];
        lo = bf[i] < lo ? bf[i] : lo;
        hi = bf[i] > hi ? bf[i] : hi;
    }
    snprintf(base, sizeof base, "%s", q->values[b].name);
    if (clipped) {
        rc = quant_warn(warn, n_warn, err, "bias '%s': %d value%s clipped to the int32 range "
                        "(input scale x weight scale is too small)", base, clipped,
                        clipped == 1 ? "" : "s");
        if (rc != PARE_OK)
            goto out;
    }
    snprintf(name, sizeof name, "%s_quantized", base);
    qi = add_init(q, name, qt, qname, sizeof qname, err);
    qt = NULL;
    if (qi < 0) {
        rc = qi;
        goto out;
    }
    snprintf(name, sizeof name, "%s_scale", base);
    si = add_init(q, name, st, sname, sizeof sname, err);
    st = NULL;
    if (si < 0) {
        rc = si;
        goto out;
    }
    snprintf(name, sizeof name, "%s_zero_point", base);
    zi = add_init(q, name, zt, zname, sizeof zname, err);
    zt = NULL;
    if (zi < 0) {
        rc = zi;
        goto out;
    }
    in[0] = qi;
    in[1] = si;
    in[2] = zi;
    dv = add_op(q, "DequantizeLinear", base, in, 3, n_sw == 1 ? -1 : 0, -1, dname, sizeof dname, err);
    if (dv < 0) {
        rc = dv;
        goto out;
    }
    q->nodes[n].inputs[2] = dv;
    memset(&t, 0, sizeof t);
    t.name = base;
    t.qdq_name = dname;
    t.stored_name = qname;
    t.kind = PARE_QUANT_BIAS;
    t.dtype = PARE_I32;
    t.bits = 32;
    t.qmin = INT32_MIN;
    t.qmax = INT32_MAX;
    t.axis = n_sw == 1 ? -1 : 0;
    t.n_scales = n_sw;
    t.scales = bs;
    bs = NULL;
    t.zero_points = pare_calloc((size_t)n_sw, sizeof *t.zero_points);
    t.lo = lo;
    t.hi = hi;
    t.mse = err_sq / (double)(nb ? nb : 1);
    t.snr_db = err_sq > 0 ? 10.0 * log10(sum_sq / err_sq) : INFINITY;
    if (!t.zero_points) {
        pare_free(t.scales);
        rc = pare_fail(err, PARE_ENOMEM, NULL, "out of memory");
        goto out;
    }
    if (r)
        rc = report_add(r, &t, err);
    else {
        pare_free(t.scales);
        pare_free(t.zero_points);
    }
out:
    pare_free(bs);
    pare_tensor_free(qt);
    pare_tensor_free(st);
    pare_tensor_free(zt);
    return rc;
}

/* ---- build ---- */

static void act_types(const pare_quant_opts *o, pare_dtype *dt, bool *symmetric)
{
    switch (o->preset) {
    case PARE_QUANT_PRESET_TENSORRT:
        *dt = PARE_I8;
        *symmetric = true;
        break;
    case PARE_QUANT_PRESET_U8S8:
        *dt = PARE_U8;
        *symmetric = false;
        break;
    default:
        *dt = o->activation_unsigned ? PARE_U8 : PARE_I8;
        *symmetric = o->activation_symmetric;
        break;
    }
}

static pare_status names_copy(char ***dst, int *n, const pare_graph *g, const bool *flags,
                              pare_error *err)
{
    int k = 0;
    for (int i = 0; i < g->n_nodes; i++)
        k += flags[i];
    *dst = pare_calloc((size_t)k + 1, sizeof **dst);
    if (!*dst)
        return pare_fail(err, PARE_ENOMEM, NULL, "out of memory");
    for (int i = 0; i < g->n_nodes; i++) {
        if (!flags[i])
            continue;
        (*dst)[*n] = pare_strdup(g->nodes[i].name ? g->nodes[i].name : "");
        if (!(*dst)[*n])
            return pare_fail(err, PARE_ENOMEM, NULL, "out of memory");
        (*n)++;
    }
    return PARE_OK;
}

pare_status pare_quant_build(const pare_graph *g, const pare_quant_calib *calib,
                             const pare_quant_opts *o, pare_graph **qdq,
                             pare_quant_report **report, pare_error *err)
{
    pare_exec *plan = NULL;
    pare_exec_opts eo;
    quant_sel sel;
    pare_graph *q = NULL;
    pare_quant_report *r = pare_calloc(1, sizeof *r);
    act_info *acts = NULL;
    float **wscales = NULL;
    int *wn = NULL, *abits = NULL, *wbits = NULL;
    pare_dtype adt;
    bool asym_sym;
    int32_t aqmin, aqmax;
    pare_status rc;

    *qdq = NULL;
    if (report)
        *report = NULL;
    memset(&sel, 0, sizeof sel);
    if (!r)
        return pare_fail(err, PARE_ENOMEM, g->path, "out of memory");
    rc = pare_quant_opts_check(o, err);
    if (rc == PARE_OK) {
        memset(&eo, 0, sizeof eo);
        eo.n_threads = 1;
        rc = pare_exec_new(g, &eo, &plan, err);
    }
    if (rc == PARE_OK)
        rc = quant_select(g, plan, o, &sel, err);
    if (rc != PARE_OK)
        goto out;
    r->warnings = sel.warnings;
    r->n_warnings = sel.n_warnings;
    sel.warnings = NULL;
    sel.n_warnings = 0;
    rc = names_copy(&r->quantized_nodes, &r->n_quantized_nodes, g, sel.node_q, err);
    if (rc == PARE_OK)
        rc = names_copy(&r->skipped_nodes, &r->n_skipped_nodes, g, sel.node_skipped, err);
    if (rc != PARE_OK)
        goto out;
    act_types(o, &adt, &asym_sym);
    acts = pare_calloc((size_t)g->n_values + 1, sizeof *acts);
    wscales = pare_calloc((size_t)g->n_values + 1, sizeof *wscales);
    wn = pare_calloc((size_t)g->n_values + 1, sizeof *wn);
    abits = pare_calloc((size_t)g->n_values + 1, sizeof *abits);
    wbits = pare_calloc((size_t)g->n_values + 1, sizeof *wbits);
    if (!acts || !wscales || !wn || !abits || !wbits) {
        rc = pare_fail(err, PARE_ENOMEM, g->path, "out of memory");
        goto out;
    }
    rc = quant_tensor_bits(g, o, abits, wbits, &r->warnings, &r->n_warnings, err);
    if (rc != PARE_OK)
        goto out;
    /* activation ranges from the calibration */
    for (int v = 0; v < g->n_values && rc == PARE_OK; v++) {
        int ci;
        if (!sel.act[v])
            continue;
        ci = calib ? pare_quant_calib_find(calib, g->values[v].name) : -1;
        if (ci < 0) {
            rc = pare_fail(err, PARE_EINPUT, g->path, "activation '%s' has no calibration range",
                           g->values[v].name);
            pare_error_hint(err, "calibrate with the same quantize_op_types and skip lists");
            break;
        }
        acts[v].on = true;
        rc = pare_quant_observer_range(pare_quant_calib_observer(calib, ci), o, abits[v],
                                       &acts[v].lo, &acts[v].hi, err);
    }
    if (rc != PARE_OK)
        goto out;
    /* TensorRT: a Concat's inputs share one scale (the union of ranges) */
    if (o->preset == PARE_QUANT_PRESET_TENSORRT) {
        for (int n = 0; n < g->n_nodes; n++) {
            const pare_node *node = &g->nodes[n];
            float lo = 0, hi = 0;
            if (!sel.node_q[n] || strcmp(node->op_type, "Concat"))
                continue;
            for (int i = 0; i < node->n_inputs; i++) {
                int v = node->inputs[i];
                if (v >= 0 && acts[v].on) {
                    lo = acts[v].lo < lo ? acts[v].lo : lo;
                    hi = acts[v].hi > hi ? acts[v].hi : hi;
                }
            }
            for (int i = 0; i < node->n_inputs; i++) {
                int v = node->inputs[i];
                if (v >= 0 && acts[v].on) {
                    acts[v].lo = lo;
                    acts[v].hi = hi;
                }
            }
        }
    }
    for (int v = 0; v < g->n_values; v++)
        if (acts[v].on) {
            pare_quant_qrange(abits[v], adt == PARE_I8, asym_sym, false, &aqmin, &aqmax);
            pare_quant_scale_zp(acts[v].lo, acts[v].hi, aqmin, aqmax, asym_sym, &acts[v].scale,
                                &acts[v].zp);
        }
    rc = pare_graph_clone(g, &q, err);
    if (rc == PARE_OK) {
        r->opset_before = pare_graph_opset(q, "");
        rc = raise_opset(q, o->block_size > 0 ? 21 : 13, err);
        r->opset_after = pare_graph_opset(q, "");
    }
    for (int v = 0; v < g->n_values && rc == PARE_OK; v++)
        if (acts[v].on) {
            pare_quant_qrange(abits[v], adt == PARE_I8, asym_sym, false, &aqmin, &aqmax);
            rc = quantize_activation(q, &sel, v, &acts[v], adt, abits[v], aqmin, aqmax, r, err);
        }
    for (int v = 0; v < g->n_values && rc == PARE_OK; v++) {
        int first = -1;
        if (!sel.weight[v])
            continue;
        for (int n = 0; n < g->n_nodes && first < 0; n++)
            if (sel.node_q[n] && quant_weight_input(&g->nodes[n]) >= 0 &&
                g->nodes[n].inputs[quant_weight_input(&g->nodes[n])] == v)
                first = n;
        if (first < 0)
            continue;
        rc = quantize_weight(q, &sel, v, &g->nodes[first], o, wbits[v], r, &wscales[v], &wn[v],
                             err);
    }
    /* int32 biases of Conv/Gemm whose input and weight are both quantized */
    for (int n = 0; n < g->n_nodes && rc == PARE_OK; n++) {
        const pare_node *node = &g->nodes[n];
        int x, w, b;
        if (!sel.node_q[n] || (strcmp(node->op_type, "Conv") && strcmp(node->op_type, "Gemm")) ||
            node->n_inputs < 3)
            continue;
        x = node->inputs[0];
        w = node->inputs[1];
        b = node->inputs[2];
        if (x < 0 || w < 0 || b < 0 || !acts[x].on || !wscales[w] || !g->values[b].init ||
            g->values[b].init->dtype != PARE_F32)
            continue;
        if (!strcmp(node->op_type, "Gemm") && (pare_node_attr_float(node, "alpha", 1.0f) != 1.0f ||
                                               pare_node_attr_float(node, "beta", 1.0f) != 1.0f))
            continue;
        rc = quantize_bias(q, n, b, acts[x].scale, wscales[w], wn[w], r, &r->warnings,
                           &r->n_warnings, err);
    }
    if (rc == PARE_OK)
        rc = pare_graph_remove_nodes(q, NULL, err);
    if (rc == PARE_OK)
        rc = pare_graph_index(q, err);
out:
    if (wscales)
        for (int v = 0; v < g->n_values; v++)
            pare_free(wscales[v]);
    pare_free(wscales);
    pare_free(wn);
    pare_free(acts);
    pare_free(abits);
    pare_free(wbits);
    quant_sel_fini(&sel);
    pare_exec_free(plan);
    if (rc == PARE_OK) {
        *qdq = q;
        if (report)
            *report = r;
        else
            pare_quant_report_free(r);
    } else {
        pare_graph_free(q);
        pare_quant_report_free(r);
    }
    return rc;
}

/* ---- bias correction ---- */

typedef struct bc_target {
    int node;            /* in qdq */
    int bias_q;          /* qdq value: the int32 bias initializer */
    int bias_scale;      /* qdq value: its scale (scalar or [C]) */
    const char *out;     /* output value name (same in both graphs) */
    int64_t c;           /* channels */
    double *fmean;       /* fp32 per-channel output mean */
} bc_target;

/* Per-channel mean of x: (N, C, ...) into sum[C] (adds), counting rows. */
static void channel_sums(const pare_tensor *x, double *sum, int64_t c, int64_t *count)
{
    int64_t n = x->dims[0], inner = pare_tensor_numel(x) / (n * c);
    const float *d = x->data;

    for (int64_t i = 0; i < n; i++)
        for (int64_t ch = 0; ch < c; ch++) {
            double s = 0;
            const float *row = d + (i * c + ch) * inner;
            for (int64_t k = 0; k < inner; k++)
                s += row[k];
            sum[ch] += s;
        }
    *count += n * inner;
}

/* Runs g over the calibration batches and adds the per-channel sums of the
 * targets' outputs (all targets, or only target `only` when >= 0). */
static pare_status bc_means(const pare_graph *g, pare_dataset *ds, const pare_quant_opts *o,
                            bc_target *t, int nt, int only, double **sums, pare_error *err)
{
    const char **taps = pare_alloc((size_t)(nt + 1) * sizeof *taps);
    int64_t *counts = pare_calloc((size_t)nt + 1, sizeof *counts);
    pare_exec *x = NULL;
    int batch, nb, ntap = 0;
    pare_status rc = PARE_OK;

    if (!taps || !counts)
        rc = pare_fail(err, PARE_ENOMEM, NULL, "out of memory");
    for (int i = 0; i < nt && rc == PARE_OK; i++)
        if (only < 0 || i == only)
            taps[ntap++] = t[i].out;
    quant_batches(ds, o, &batch, &nb);
    if (rc == PARE_OK)
        rc = quant_exec_new(g, ds, batch, taps, ntap, o->n_threads, &x, err);
    for (int b = 0; b < nb && rc == PARE_OK; b++) {
        rc = pare_dataset_fill(ds, (int64_t)b * batch, batch, pare_exec_input(x, 0), NULL, err);
        if (rc == PARE_OK)
            rc = pare_exec_run(x, err);
        for (int i = 0; i < nt && rc == PARE_OK; i++) {
            const pare_tensor *y;
            if (only >= 0 && i != only)
                continue;
            y = pare_exec_value(x, t[i].out);
            if (!y || y->dtype != PARE_F32 || y->ndim < 2 || y->dims[1] != t[i].c)
                rc = pare_fail(err, PARE_EINTERNAL, g->path, "output '%s' of a biased layer is "
                               "not a (N, %lld, ...) float tensor", t[i].out, (long long)t[i].c);
            else
                channel_sums(y, sums[i], t[i].c, &counts[i]);
        }
    }
    for (int i = 0; i < nt && rc == PARE_OK; i++)
        if ((only < 0 || i == only) && counts[i] > 0)
            for (int64_t ch = 0; ch < t[i].c; ch++)
                sums[i][ch] /= (double)counts[i];
    pare_exec_free(x);
    pare_free(taps);
    pare_free(counts);
    return rc;
}

pare_status pare_quant_bias_correct(const pare_graph *g, pare_graph *qdq, pare_dataset *ds,
                                    const pare_quant_opts *o, pare_quant_report *report,
                                    const pare_progress *progress, pare_error *err)
{
    bc_target *t = pare_calloc((size_t)qdq->n_nodes + 1, sizeof *t);
    double **fsum = pare_calloc((size_t)qdq->n_nodes + 1, sizeof *fsum);
    double **qsum = pare_calloc((size_t)qdq->n_nodes + 1, sizeof *qsum);
    int nt = 0, batch, nb, done = 0;
    pare_status rc = PARE_OK;

    if (!t || !fsum || !qsum) {
        rc = pare_fail(err, PARE_ENOMEM, NULL, "out of memory");
        goto out;
    }
    quant_batches(ds, o, &batch, &nb);
    if (nb < 1) {
        rc = pare_fail(err, PARE_EINPUT, pare_dataset_spec(ds), "the calibration dataset is empty");
        goto out;
    }
    /* layers whose bias is a DequantizeLinear of an int32 initializer */
    for (int n = 0; n < qdq->n_nodes; n++) {
        const pare_node *node = &qdq->nodes[n];
        int b, p, out;
        const pare_node *dq;
        if ((strcmp(node->op_type, "Conv") && strcmp(node->op_type, "Gemm")) ||
            node->n_inputs < 3 || node->inputs[2] < 0 || node->n_outputs < 1)
            continue;
        b = node->inputs[2];
        p = qdq->values[b].producer;
        if (p < 0)
            continue;
        dq = &qdq->nodes[p];
        if (strcmp(dq->op_type, "DequantizeLinear") || dq->n_inputs < 2 || dq->inputs[0] < 0 ||
            !qdq->values[dq->inputs[0]].init || qdq->values[dq->inputs[0]].init->dtype != PARE_I32 ||
            !qdq->values[dq->inputs[1]].init)
            continue;
        out = node->outputs[0];
        if (pare_graph_find_value(g, qdq->values[out].name) < 0)
            continue;
        t[nt].node = n;
        t[nt].bias_q = dq->inputs[0];
        t[nt].bias_scale = dq->inputs[1];
        t[nt].out = qdq->values[out].name;
        t[nt].c = pare_tensor_numel(qdq->values[dq->inputs[0]].init);
        fsum[nt] = pare_calloc((size_t)t[nt].c, sizeof(double));
        qsum[nt] = pare_calloc((size_t)t[nt].c, sizeof(double));
        if (!fsum[nt] || !qsum[nt]) {
            nt++;
            rc = pare_fail(err, PARE_ENOMEM, NULL, "out of memory");
            goto out;
        }
        nt++;
    }
    if (nt == 0)
        goto out;
    pare_dataset_begin_epoch(ds, 0); /* the batches calibration saw */
    rc = bc_means(g, ds, o, t, nt, -1, fsum, err);
    /* in topological order: each correction is measured with the earlier
       layers already corrected (a new plan each time: biases are folded) */
    for (int i = 0; i < nt && rc == PARE_OK; i++) {
        pare_tensor *bq = qdq->values[t[i].bias_q].init;
        const pare_tensor *sc = qdq->values[t[i].bias_scale].init;
        int32_t *qi = bq->data;
        int64_t ns = pare_tensor_numel(sc);
        pare_progress_event ev = {.stage = "bias_correct", .done = i + 1, .total = nt,
                                  .unit = "layer", .loss = NAN, .metric = NAN, .detail = t[i].out};
        memset(qsum[i], 0, (size_t)t[i].c * sizeof(double));
        rc = bc_means(qdq, ds, o, t, nt, i, qsum, err);
        if (rc != PARE_OK)
            break;
        for (int64_t ch = 0; ch < t[i].c; ch++) {
            double s = pare_tensor_f32(sc)[ns == 1 ? 0 : ch];
            double shift = qsum[i][ch] - fsum[i][ch];
            double v = s > 0 ? nearbyint(((double)qi[ch] * s - shift) / s) : qi[ch];
            if (v > 2147483647.0)
                v = 2147483647.0;
            if (v < -2147483648.0)
                v = -2147483648.0;
            qi[ch] = (int32_t)v;
        }
        done++;
        if (!pare_progress_report(progress, &ev))
            rc = pare_fail(err, PARE_ECANCELED, NULL, "bias correction canceled after %d of %d "
                           "layers", i + 1, nt);
    }
out:
    if (report && rc == PARE_OK)
        report->n_bias_corrected = done;
    for (int i = 0; i < nt; i++) {
        pare_free(fsum[i]);
        pare_free(qsum[i]);
    }
    pare_free(fsum);
    pare_free(qsum);
    pare_free(t);
    return rc;
}
