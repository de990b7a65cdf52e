/* Quantization: node/tensor selection, calibration runs, calibration tables. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "pare/alloc.h"
#include "pare/exec.h"
#include "pare/quant.h"
#include "quant_internal.h"

/* ---- selection ---- */

static const char *const default_op_types[] = {"Conv", "Gemm", "MatMul"};
/* is_full_quantize adds ops whose inputs ONNX Runtime's QDQ format can
   quantize meaningfully */
static const char *const full_op_types[] = {
    "Conv", "ConvTranspose", "Gemm", "MatMul", "Add", "Mul", "Concat", "MaxPool",
    "AveragePool", "GlobalAveragePool", "Relu", "Sigmoid", "Softmax"};

int quant_weight_input(const pare_node *node)
{
    const char *op = node->op_type;

    if (node->domain[0])
        return -1;
    if (!strcmp(op, "Conv") || !strcmp(op, "ConvTranspose") || !strcmp(op, "Gemm") ||
        !strcmp(op, "MatMul"))
        return node->n_inputs > 1 ? 1 : -1;
    return -1;
}

bool pare_quant_outputs_on(const pare_quant_opts *o)
{
    if (o->quantize_outputs == PARE_QUANT_OUTPUTS_AUTO)
        return o->preset != PARE_QUANT_PRESET_TENSORRT;
    return o->quantize_outputs == PARE_QUANT_OUTPUTS_ON;
}

bool quant_input_quantizable(const pare_node *node, int i)
{
    const char *op = node->op_type;

    if (!strcmp(op, "Conv") || !strcmp(op, "ConvTranspose") || !strcmp(op, "Gemm") ||
        !strcmp(op, "MatMul") || !strcmp(op, "Add") || !strcmp(op, "Mul"))
        return i < 2;
    if (!strcmp(op, "Concat"))
        return true;
    return i == 0;
}

pare_status quant_warn(char ***list, int *n, pare_error *err, const char *fmt, ...)
{
    char buf[768];
    va_list ap;
    char **grown;
    char *s;

    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    grown = pare_realloc(*list, (size_t)(*n + 1) * sizeof *grown);
    if (!grown)
        return pare_fail(err, PARE_ENOMEM, NULL, "out of memory");
    *list = grown;
    s = pare_strdup(buf);
    if (!s)
        return pare_fail(err, PARE_ENOMEM, NULL, "out of memory");
    grown[(*n)++] = s;
    return PARE_OK;
}

void quant_sel_fini(quant_sel *s)
{
    pare_free(s->node_q);
    pare_free(s->node_skipped);
    pare_free(s->act);
    pare_free(s->act_all);
    pare_free(s->weight);
    for (int i = 0; i < s->n_warnings; i++)
        pare_free(s->warnings[i]);
    pare_free(s->warnings);
    memset(s, 0, sizeof *s);
}

static bool is_float(const pare_graph *g, const pare_exec *plan, int v)
{
    const pare_tensor *t;

    if (g->values[v].init)
        return g->values[v].init->dtype == PARE_F32;
    t = plan ? pare_exec_value_shape(plan, v) : NULL;
    return t ? t->dtype == PARE_F32 : g->values[v].dtype == PARE_F32;
}

static bool op_in(const char *op, const char *const *types, int n)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(op, types[i]))
            return true;
    return false;
}

static bool node_matches_pattern(const pare_graph *g, const pare_node *node, const char *pat)
{
    if (node->name && strstr(node->name, pat))
        return true;
    for (int i = 0; i < node->n_outputs; i++)
        if (node->outputs[i] >= 0 && strstr(g->values[node->outputs[i]].name, pat))
            return true;
    for (int i = 0; i < node->n_inputs; i++)
        if (node->inputs[i] >= 0 && g->values[node->inputs[i]].init &&
            strstr(g->values[node->inputs[i]].name, pat))
            return true;
    return false;
}

const char *quant_closest_name(const pare_graph *g, const char *word)
{
    const char **cands = pare_alloc((size_t)(g->n_values + g->n_nodes + 1) * sizeof *cands);
    const char *near = NULL;
    int n = 0;

    if (!cands)
        return NULL;
    for (int v = 0; v < g->n_values; v++)
        cands[n++] = g->values[v].name;
    for (int i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].name && g->nodes[i].name[0])
            cands[n++] = g->nodes[i].name;
    near = pare_closest_word(word, cands, n);
    pare_free(cands);
    return near;
}

static pare_status unknown_skip(const pare_graph *g, const pare_quant_opts *o, quant_sel *s,
                                const char *name, pare_error *err)
{
    const char *near = quant_closest_name(g, name);
    char hint[320] = "";

    if (near)
        snprintf(hint, sizeof hint, " (did you mean '%s'?)", near);
    if (o->strict) {
        pare_fail(err, PARE_EINPUT, "skip_tensor_list",
                  "'%s' is not a value of the model", name);
        if (near)
            pare_error_hint(err, "did you mean '%s'?", near);
        return PARE_EINPUT;
    }
    return quant_warn(&s->warnings, &s->n_warnings, err,
                      "skip_tensor_list: '%s' is not a value of the model%s", name, hint);
}

/* ONNX Runtime removes a Relu in front of a QuantizeLinear whose zero point
   is the lowest code (its ReluQuantFusion), since the Q then clamps at 0
   anyway. A Q/DQ pair between a quantized Conv and its Relu would instead
   leave a DQ -> Q requantization behind and stop the Conv from fusing into
   QLinearConv, so with asymmetric activations the pair goes on the Relu's
   output only: Conv -> Relu -> Q -> DQ, as ONNX Runtime's quantizer writes it. */
static bool relu_absorbs(const pare_graph *g, const pare_exec *plan, const pare_quant_opts *o,
                         int v, const bool *act_skip)
{
    int n_relu = 0;

    if (o->preset == PARE_QUANT_PRESET_TENSORRT || o->activation_symmetric)
        return false;
    for (int n = 0; n < g->n_nodes; n++) {
        const pare_node *c = &g->nodes[n];
        bool reads = false;
        for (int i = 0; i < c->n_inputs; i++)
            reads |= c->inputs[i] == v;
        if (!reads)
            continue;
        if (strcmp(c->op_type, "Relu") || c->domain[0] || c->n_outputs < 1 ||
            c->outputs[0] < 0)
            return false;
        int y = c->outputs[0];
        if (g->values[y].is_output || act_skip[y] || !is_float(g, plan, y) ||
            g->values[y].n_consumers == 0)
            return false;
        n_relu++;
    }
    return n_relu > 0;
}

static void mark_relu_outputs(const pare_graph *g, int v, quant_sel *s)
{
    for (int n = 0; n < g->n_nodes; n++) {
        const pare_node *c = &g->nodes[n];
        if (c->n_inputs >= 1 && c->inputs[0] == v && !strcmp(c->op_type, "Relu")) {
            s->act[c->outputs[0]] = true;
            s->act_all[c->outputs[0]] = true;
        }
    }
}

pare_status quant_select(const pare_graph *g, const pare_exec *plan, const pare_quant_opts *o,
                         quant_sel *s, pare_error *err)
{
    const char *const *types = o->quantize_op_types;
    int n_types = o->n_quantize_op_types;
    bool *cand = NULL, *act_skip = NULL;
    pare_status rc = PARE_OK;

    memset(s, 0, sizeof *s);
    s->n_nodes = g->n_nodes;
    s->n_values = g->n_values;
    s->node_q = pare_calloc((size_t)g->n_nodes + 1, sizeof *s->node_q);
    s->node_skipped = pare_calloc((size_t)g->n_nodes + 1, sizeof *s->node_skipped);
    s->act = pare_calloc((size_t)g->n_values + 1, sizeof *s->act);
    s->act_all = pare_calloc((size_t)g->n_values + 1, sizeof *s->act_all);
    s->weight = pare_calloc((size_t)g->n_values + 1, sizeof *s->weight);
    cand = pare_calloc((size_t)g->n_nodes + 1, sizeof *cand);
    act_skip = pare_calloc((size_t)g->n_values + 1, sizeof *act_skip);
    if (!s->node_q || !s->node_skipped || !s->act || !s->act_all || !s->weight || !cand ||
        !act_skip) {
        rc = pare_fail(err, PARE_ENOMEM, g->path, "out of memory selecting tensors to quantize");
        goto out;
    }
    if (!types) {
        types = o->is_full_quantize ? full_op_types : default_op_types;
        n_types = o->is_full_quantize ? (int)(sizeof full_op_types / sizeof *full_op_types)
                                      : (int)(sizeof default_op_types / sizeof *default_op_types);
    }
    for (int n = 0; n < g->n_nodes; n++) {
        const pare_node *node = &g->nodes[n];
        if (node->domain[0])
            continue;
        if (op_in(node->op_type, types, n_types) ||
            (o->is_full_quantize && o->quantize_op_types &&
             op_in(node->op_type, full_op_types,
                   (int)(sizeof full_op_types / sizeof *full_op_types))))
            cand[n] = true;
        /* with outputs quantized, a Relu after a quantized node is covered by
           the pair on its output (relu_absorbs) */
        if (cand[n] && !strcmp(node->op_type, "Relu") && pare_quant_outputs_on(o) &&
            o->preset != PARE_QUANT_PRESET_TENSORRT && !o->activation_symmetric)
            cand[n] = false;
        /* TensorRT wants both inputs of residual Adds and every Concat input
           quantized so the whole block runs in int8 */
        if (o->preset == PARE_QUANT_PRESET_TENSORRT && !o->weight_only &&
            (!strcmp(node->op_type, "Concat") ||
             (!strcmp(node->op_type, "Add") && node->n_inputs == 2 && node->inputs[0] >= 0 &&
              node->inputs[1] >= 0 && !g->values[node->inputs[0]].init &&
              !g->values[node->inputs[1]].init)))
            cand[n] = true;
    }
    /* skip_tensor_list */
    for (int k = 0; k < o->n_skip_tensor_list && rc == PARE_OK; k++) {
        const char *name = o->skip_tensor_list[k];
        int v = pare_graph_find_value(g, name);
        int nn = v < 0 ? pare_graph_find_node(g, name) : -1;
        if (v < 0 && nn < 0) {
            rc = unknown_skip(g, o, s, name, err);
            continue;
        }
        if (nn >= 0) {
            if (cand[nn]) {
                cand[nn] = false;
                s->node_skipped[nn] = true;
            }
            continue;
        }
        if (!g->values[v].init) {
            act_skip[v] = true;
            continue;
        }
        for (int n = 0; n < g->n_nodes; n++)
            for (int i = 0; i < g->nodes[n].n_inputs; i++)
                if (g->nodes[n].inputs[i] == v && cand[n]) {
                    cand[n] = false;
                    s->node_skipped[n] = true;
                }
    }
    /* not_quant_pattern */
    for (int k = 0; k < o->n_not_quant_pattern && rc == PARE_OK; k++) {
        const char *pat = o->not_quant_pattern[k];
        bool hit = false;
        for (int n = 0; n < g->n_nodes; n++)
            if (node_matches_pattern(g, &g->nodes[n], pat)) {
                hit = true;
                if (cand[n]) {
                    cand[n] = false;
                    s->node_skipped[n] = true;
                }
            }
        if (!hit)
            rc = quant_warn(&s->warnings, &s->n_warnings, err,
                            "not_quant_pattern: '%s' matches no node or value name", pat);
    }
    if (rc != PARE_OK)
        goto out;
    for (int n = 0; n < g->n_nodes; n++) {
        const pare_node *node = &g->nodes[n];
        int wi = quant_weight_input(node);
        if (!cand[n])
            continue;
        for (int i = 0; i < node->n_inputs; i++) {
            int v = node->inputs[i];
            if (v < 0 || !quant_input_quantizable(node, i) || !is_float(g, plan, v))
                continue;
            if (g->values[v].init) {
                if (i == wi) {
                    s->weight[v] = true;
                    s->node_q[n] = true;
                }
                continue;
            }
            if (o->weight_only || act_skip[v])
                continue;
            s->act[v] = true;
            s->node_q[n] = true;
        }
    }
    /* outputs of quantized nodes: with a Q/DQ pair on both sides ONNX Runtime
       fuses DQ -> Conv -> Q into QLinearConv (integer arithmetic, faster);
       graph outputs stay float so the model's interface does not change */
    for (int n = 0; n < g->n_nodes && pare_quant_outputs_on(o) && !o->weight_only; n++) {
        const pare_node *node = &g->nodes[n];
        if (!s->node_q[n])
            continue;
        for (int i = 0; i < node->n_outputs; i++) {
            int v = node->outputs[i];
            if (v < 0 || g->values[v].is_output || act_skip[v] || !is_float(g, plan, v) ||
                g->values[v].n_consumers == 0)
                continue;
            if (relu_absorbs(g, plan, o, v, act_skip)) {
                mark_relu_outputs(g, v, s);
                continue;
            }
            s->act[v] = true;
            s->act_all[v] = true;
        }
    }
out:
    pare_free(cand);
    pare_free(act_skip);
    return rc;
}

/* ---- datasets and plans ---- */

void quant_batches(const pare_dataset *ds, const pare_quant_opts *o, int *batch, int *n_batches)
{
    int64_t count = pare_dataset_count(ds);
    int64_t bs = o->batch_size < count ? o->batch_size : count;
    int64_t nb = bs > 0 ? count / bs : 0;

    if (o->batch_nums > 0 && nb > o->batch_nums)
        nb = o->batch_nums;
    *batch = (int)bs;
    *n_batches = (int)nb;
}

pare_status quant_exec_new(const pare_graph *g, const pare_dataset *ds, int batch,
                           const char *const *taps, int n_taps, int n_threads,
                           pare_exec **out, pare_error *err)
{
    pare_exec_opts eo;
    pare_tensor shape;
    int input = -1, n_runtime = 0;
    int64_t sdims[PARE_MAX_DIMS];
    int sndim = pare_dataset_sample_shape(ds, sdims);
    pare_status rc;

    *out = NULL;
    for (int i = 0; i < g->n_inputs; i++) {
        if (g->values[g->inputs[i]].init)
            continue;
        if (input < 0)
            input = g->inputs[i];
        n_runtime++;
    }
    if (n_runtime != 1)
        return pare_fail(err, PARE_EUNSUPPORTED, g->path,
                         "calibration feeds one input; the model has %d", n_runtime);
    rc = pare_exec_batch_shape(g, input, batch, sndim, sdims, &shape, err);
    if (rc != PARE_OK) {
        pare_error_prefix(err, "%s: ", pare_dataset_spec(ds));
        return rc;
    }
    memset(&eo, 0, sizeof eo);
    eo.batch = batch;
    eo.n_threads = n_threads;
    eo.input_shapes = &shape;
    eo.taps = taps;
    eo.n_taps = n_taps;
    return pare_exec_new(g, &eo, out, err);
}

/* ---- calibration ---- */

struct pare_quant_calib {
    int n;
    char **names;
    pare_quant_observer **obs;
    int64_t samples;
};

void pare_quant_calib_free(pare_quant_calib *c)
{
    if (!c)
        return;
    for (int i = 0; i < c->n; i++) {
        pare_free(c->names[i]);
        pare_quant_observer_free(c->obs[i]);
    }
    pare_free(c->names);
    pare_free(c->obs);
    pare_free(c);
}

int pare_quant_calib_count(const pare_quant_calib *c) { return c->n; }
const char *pare_quant_calib_name(const pare_quant_calib *c, int i) { return c->names[i]; }
const pare_quant_observer *pare_quant_calib_observer(const pare_quant_calib *c, int i)
{
    return c->obs[i];
}
int64_t pare_quant_calib_samples(const pare_quant_calib *c) { return c->samples; }

int pare_quant_calib_find(const pare_quant_calib *c, const char *name)
{
    for (int i = 0; i < c->n; i++)
        if (!strcmp(c->names[i], name))
            return i;
    return -1;
}

/* The activations to observe: those quant_select marks, in graph value order
 * (inputs and node outputs as they appear). */
static pare_status calib_targets(const pare_graph *g, const pare_dataset *ds,
                                 const pare_quant_opts *o, pare_quant_calib *c, pare_error *err)
{
    pare_exec *plan = NULL;
    quant_sel sel;
    pare_status rc = quant_exec_new(g, ds, 1, NULL, 0, 1, &plan, err);

    memset(&sel, 0, sizeof sel);
    if (rc == PARE_OK)
        rc = quant_select(g, plan, o, &sel, err);
    if (rc == PARE_OK) {
        int n = 0;
        for (int v = 0; v < g->n_values; v++)
            n += sel.act[v];
        c->names = pare_calloc((size_t)n + 1, sizeof *c->names);
        c->obs = pare_calloc((size_t)n + 1, sizeof *c->obs);
        if (!c->names || !c->obs)
            rc = pare_fail(err, PARE_ENOMEM, g->path, "out of memory");
        for (int v = 0; v < g->n_values && rc == PARE_OK; v++) {
            if (!sel.act[v])
                continue;
            c->names[c->n] = pare_strdup(g->values[v].name);
            c->obs[c->n] = pare_quant_observer_new(o->hist_bins);
            if (!c->names[c->n] || !c->obs[c->n]) {
                pare_free(c->names[c->n]);
                pare_quant_observer_free(c->obs[c->n]);
                c->names[c->n] = NULL;
                c->obs[c->n] = NULL;
                rc = pare_fail(err, PARE_ENOMEM, g->path, "out of memory");
                break;
            }
            c->n++;
        }
    }
    quant_sel_fini(&sel);
    pare_exec_free(plan);
    return rc;
}

pare_status pare_quant_calibrate(const pare_graph *g, pare_dataset *ds, const pare_quant_opts *o,
                                 const pare_progress *progress, pare_quant_calib **out,
                                 pare_error *err)
{
    pare_quant_calib *c = pare_calloc(1, sizeof *c);
    pare_exec *x = NULL;
    int batch = 0, n_batches = 0;
    pare_status rc;

    *out = NULL;
    if (!c)
        return pare_fail(err, PARE_ENOMEM, g->path, "out of memory");
    rc = pare_quant_opts_check(o, err);
    if (rc == PARE_OK) {
        quant_batches(ds, o, &batch, &n_batches);
        if (n_batches < 1)
            rc = pare_fail(err, PARE_EINPUT, pare_dataset_spec(ds),
                           "the calibration dataset is empty");
    }
    if (rc == PARE_OK)
        rc = calib_targets(g, ds, o, c, err);
    if (rc == PARE_OK)
        rc = quant_exec_new(g, ds, batch, (const char *const *)c->names, c->n, o->n_threads, &x, err);
    if (rc == PARE_OK)
        pare_dataset_begin_epoch(ds, 0);
    for (int b = 0; b < n_batches && rc == PARE_OK; b++) {
        pare_progress_event ev = {.stage = "calibrate", .done = b + 1, .total = n_batches,
                                  .unit = "batch", .loss = NAN, .metric = NAN};
        rc = pare_dataset_fill(ds, (int64_t)b * batch, batch, pare_exec_input(x, 0), NULL, err);
        if (rc == PARE_OK)
            rc = pare_exec_run(x, err);
        for (int i = 0; i < c->n && rc == PARE_OK; i++) {
            const pare_tensor *t = pare_exec_value(x, c->names[i]);
            if (!t || t->dtype != PARE_F32) {
                rc = pare_fail(err, PARE_EINTERNAL, g->path, "activation '%s' was not kept",
                               c->names[i]);
                break;
            }
            pare_quant_observer_add(c->obs[i], t->data, pare_tensor_numel(t));
            if (pare_quant_observer_nonfinite(c->obs[i])) {
                rc = pare_fail(err, PARE_ENUMERIC, g->path,
                               "activation '%s' holds NaN or Inf in calibration batch %d",
                               c->names[i], b + 1);
                pare_error_hint(err, "check the data's normalisation (mean/std/scale)");
            }
        }
        if (rc == PARE_OK) {
            c->samples += batch;
            if (!pare_progress_report(progress, &ev))
                rc = pare_fail(err, PARE_ECANCELED, NULL, "calibration canceled after %d of %d "
                               "batches", b + 1, n_batches);
        }
    }
    pare_exec_free(x);
    if (rc == PARE_OK)
        *out = c;
    else
        pare_quant_calib_free(c);
    return rc;
}

/* ---- tables ---- */

static pare_status write_file(const char *path, const char *text, size_t len, pare_error *err)
{
    char tmp[4096];
    FILE *f;
    bool ok;

    if (snprintf(tmp, sizeof tmp, "%s.tmp%ld", path, (long)getpid()) >= (int)sizeof tmp)
        return pare_fail(err, PARE_EIO, path, "path too long");
    f = fopen(tmp, "wb");
    if (!f)
        return pare_fail(err, PARE_EIO, path, "cannot write: %s", strerror(errno));
    ok = fwrite(text, 1, len, f) == len;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        int e = errno;
        remove(tmp);
        return pare_fail(err, PARE_EIO, path, "cannot write: %s", strerror(e));
    }
    return PARE_OK;
}

/* Grows buf by a formatted line. */
static pare_status buf_printf(char **buf, size_t *len, size_t *cap, pare_error *err,
                              const char *fmt, ...) PARE_PRINTF(5, 6);
static pare_status buf_printf(char **buf, size_t *len, size_t *cap, pare_error *err,
                              const char *fmt, ...)
{
    va_list ap;
    int n;

    for (;;) {
        va_start(ap, fmt);
        n = vsnprintf(*buf ? *buf + *len : NULL, *buf ? *cap - *len : 0, fmt, ap);
        va_end(ap);
        if (n < 0)
            return pare_fail(err, PARE_EINTERNAL, NULL, "format error");
        if (*buf && *len + (size_t)n < *cap) {
            *len += (size_t)n;
            return PARE_OK;
        }
        {
            size_t want = (*cap ? *cap * 2 : 4096) + (size_t)n + 1;
            char *grown = pare_realloc(*buf, want);
            if (!grown)
                return pare_fail(err, PARE_ENOMEM, NULL, "out of memory");
            *buf = grown;
            *cap = want;
        }
    }
}

pare_status pare_quant_write_table(const pare_quant_calib *c, const pare_quant_opts *o,
                                   const char *path, pare_error *err)
{
    char *buf = NULL;
    size_t len = 0, cap = 0;
    pare_status rc = buf_printf(&buf, &len, &cap, err,
        "# pare calibration table\n"
        "# algo %s, activation_bits %d, %lld calibration samples\n"
        "# one line per activation tensor: <name> <min> <max>\n"
        "# min/max: the float range the algorithm chose, before it is widened to\n"
        "# include 0 and turned into a scale and zero point\n",
        pare_quant_algo_name(o->algo), o->activation_bits, (long long)c->samples);

    for (int i = 0; i < c->n && rc == PARE_OK; i++) {
        float lo, hi;
        rc = pare_quant_observer_range(c->obs[i], o, o->activation_bits, &lo, &hi, err);
        if (rc == PARE_OK)
            rc = buf_printf(&buf, &len, &cap, err, "%s %.9g %.9g\n", c->names[i], lo, hi);
    }
    if (rc == PARE_OK)
        rc = write_file(path, buf, len, err);
    pare_free(buf);
    return rc;
}

pare_status pare_quant_write_trt_cache(const pare_quant_calib *c, const pare_quant_opts *o,
                                       const char *path, pare_error *err)
{
    char *buf = NULL;
    size_t len = 0, cap = 0;
    pare_status rc = buf_printf(&buf, &len, &cap, err, "TRT-8600-EntropyCalibration2\n");

    for (int i = 0; i < c->n && rc == PARE_OK; i++) {
        float lo, hi, amax, scale;
        uint32_t bits;
        rc = pare_quant_observer_range(c->obs[i], o, o->activation_bits, &lo, &hi, err);
        if (rc != PARE_OK)
            break;
        amax = fabsf(lo) > fabsf(hi) ? fabsf(lo) : fabsf(hi);
        scale = amax / 127.0f;
        memcpy(&bits, &scale, sizeof bits);
        rc = buf_printf(&buf, &len, &cap, err, "%s: %08x\n", c->names[i], bits);
    }
    if (rc == PARE_OK)
        rc = write_file(path, buf, len, err);
    pare_free(buf);
    return rc;
}
