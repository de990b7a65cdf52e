/* Unstructured and N:M weight masks, and the GMP/AGP schedule (see prune.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pare/alloc.h"
#include "pare/data.h"
#include "pare/prune.h"
#include "prune_internal.h"

/* A prunable weight: what it is and along which axis its input dim runs. */
typedef struct weight_ref {
    int value;          /* initializer value index */
    int node;
    int in_axis;        /* the axis N:M groups run along */
} weight_ref;

/* The initializer a layer's weight input v reads: directly or through
 * Identity, or the float weight behind a fake-quant pair
 * DequantizeLinear(QuantizeLinear(w)) as quantization-aware training builds
 * it. Masking that w masks what the layer sees: a zero quantizes to the zero
 * point and dequantizes back to exactly 0. -1 when v is computed otherwise. */
static int resolve_weight(const pare_graph *g, int v)
{
    int r = prune_resolve_init(g, v), dq, q, in;

    if (r >= 0 || v < 0)
        return r;
    dq = g->values[v].producer;
    if (dq < 0 || g->nodes[dq].domain[0] || strcmp(g->nodes[dq].op_type, "DequantizeLinear") ||
        g->nodes[dq].n_inputs < 1 || (in = g->nodes[dq].inputs[0]) < 0)
        return -1;
    q = g->values[in].producer;
    if (q < 0 || g->nodes[q].domain[0] || strcmp(g->nodes[q].op_type, "QuantizeLinear") ||
        g->nodes[q].n_inputs < 1)
        return -1;
    r = prune_resolve_init(g, g->nodes[q].inputs[0]);
    return r >= 0 && g->values[r].init->dtype == PARE_F32 ? r : -1;
}

/* Weights of Conv (input 1), Gemm (B) and MatMul (constant B), in node
 * order, each once, also behind a fake-quant pair (resolve_weight). Norms
 * and biases are never selected. */
static int list_weights(const pare_graph *g, pare_prune_params_type type, weight_ref *out)
{
    int n = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        const pare_node *node = &g->nodes[i];
        int v, axis;
        bool dup = false;
        if (node->domain[0] || node->n_inputs < 2)
            continue;
        if (strcmp(node->op_type, "Conv") == 0)
            axis = 1;
        else if (strcmp(node->op_type, "Gemm") == 0)
            axis = pare_node_attr_int(node, "transB", 0) ? 1 : 0;
        else if (strcmp(node->op_type, "MatMul") == 0)
            axis = 0;
        else
            continue;
        v = resolve_weight(g, node->inputs[1]);
        if (v < 0 || g->values[v].init->dtype != PARE_F32 || g->values[v].init->ndim < 2)
            continue;
        if (type == PARE_PARAMS_CONV1X1) {
            const pare_tensor *t = g->values[v].init;
            if (node->op_type[0] != 'C' || pare_tensor_numel(t) != t->dims[0] * t->dims[1])
                continue;
        }
        if (node->op_type[0] == 'M' && g->values[v].init->ndim != 2)
            continue;
        for (int k = 0; k < n; k++)
            dup |= out[k].value == v;
        if (dup)
            continue;
        out[n++] = (weight_ref){v, i, axis};
    }
    return n;
}

static pare_masks *masks_alloc(const pare_graph *g, const weight_ref *w, int n)
{
    pare_masks *m = pare_calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->masks = pare_calloc((size_t)(n ? n : 1), sizeof *m->masks);
    if (!m->masks) {
        pare_free(m);
        return NULL;
    }
    m->n = n;
    for (int i = 0; i < n; i++) {
        pare_mask *k = &m->masks[i];
        const char *nn = g->nodes[w[i].node].name;
        k->numel = pare_tensor_numel(g->values[w[i].value].init);
        k->tensor = pare_strdup(g->values[w[i].value].name);
        k->node = pare_strdup(nn ? nn : "");
        k->keep = pare_alloc((size_t)(k->numel ? k->numel : 1));
        if (!k->tensor || !k->node || !k->keep) {
            pare_masks_free(m);
            return NULL;
        }
        memset(k->keep, 1, (size_t)k->numel);
    }
    return m;
}

void pare_masks_free(pare_masks *m)
{
    if (!m)
        return;
    for (int i = 0; i < m->n; i++) {
        pare_free(m->masks[i].tensor);
        pare_free(m->masks[i].node);
        pare_free(m->masks[i].keep);
    }
    pare_free(m->masks);
    pare_free(m);
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* The k-th smallest |w| over the values (k < count): weights strictly below
 * it go; ties at the threshold are broken by order so exactly k go. */
static void mask_smallest(float *key, const float *const *vals, const int64_t *counts,
                          uint8_t *const *keeps, int nt, int64_t k)
{
    int64_t total = 0, below = 0;
    float thr;
    for (int t = 0; t < nt; t++)
        for (int64_t i = 0; i < counts[t]; i++)
            key[total++] = vals[t][i];
    if (k <= 0)
        return;
    qsort(key, (size_t)total, sizeof *key, cmp_float);
    thr = key[k - 1];
    for (int64_t i = 0; i < k; i++)
        below += key[i] < thr;
    k -= below; /* how many at exactly thr still go */
    for (int t = 0; t < nt; t++)
        for (int64_t i = 0; i < counts[t]; i++) {
            if (vals[t][i] < thr) {
                keeps[t][i] = 0;
            } else if (vals[t][i] == thr && k > 0) {
                keeps[t][i] = 0;
                k--;
            }
        }
}

pare_status pare_masks_compute(const pare_graph *g, const pare_unstruct_opts *opts, pare_masks **out,
                               pare_error *err)
{
    weight_ref *w = pare_calloc((size_t)(g->n_nodes ? g->n_nodes : 1), sizeof *w);
    pare_masks *m = NULL;
    float **vals = NULL, *key = NULL;
    int64_t *counts = NULL, total = 0;
    uint8_t **keeps = NULL;
    int n = 0;
    pare_status rc = PARE_OK;

    *out = NULL;
    if (!w)
        return pare_fail(err, PARE_ENOMEM, g->path, "out of memory computing masks");
    if (!(opts->ratio >= 0 && opts->ratio < 1)) {
        rc = pare_fail(err, PARE_EINPUT, g->path, "unstructured ratio %g is outside [0, 1)",
                       opts->ratio);
        goto done;
    }
    if (opts->mode == PARE_UNSTRUCT_THRESHOLD && !(opts->threshold >= 0)) {
        rc = pare_fail(err, PARE_EINPUT, g->path, "threshold %g must be >= 0", opts->threshold);
        goto done;
    }
    n = list_weights(g, opts->params_type, w);
    for (int s = 0; s < opts->n_skip; s++) {
        bool found = false;
        for (int i = 0; i < n; i++)
            if (strcmp(g->values[w[i].value].name, opts->skip[s]) == 0) {
                w[i--] = w[--n];
                found = true;
            }
        if (!found && pare_graph_find_value(g, opts->skip[s]) < 0) {
            const char **names = pare_alloc((size_t)(g->n_values ? g->n_values : 1) * sizeof *names);
            const char *guess = NULL;
            rc = pare_fail(err, PARE_EINPUT, g->path, "no weight '%s' to skip", opts->skip[s]);
            if (names) {
                int k = 0;
                for (int v = 0; v < g->n_values; v++)
                    if (g->values[v].init)
                        names[k++] = g->values[v].name;
                guess = pare_closest_word(opts->skip[s], names, k);
                if (guess)
                    pare_error_hint(err, "did you mean '%s'?", guess);
                pare_free(names);
            }
            goto done;
        }
    }
    /* skip removal swapped entries: back to node order */
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && w[j - 1].node > w[j].node; j--) {
            weight_ref t = w[j];
            w[j] = w[j - 1];
            w[j - 1] = t;
        }
    m = masks_alloc(g, w, n);
    vals = pare_calloc((size_t)(n ? n : 1), sizeof *vals);
    counts = pare_calloc((size_t)(n ? n : 1), sizeof *counts);
    keeps = pare_calloc((size_t)(n ? n : 1), sizeof *keeps);
    if (!m || !vals || !counts || !keeps) {
        rc = pare_fail(err, PARE_ENOMEM, g->path, "out of memory computing masks");
        goto done;
    }
    for (int i = 0; i < n; i++) {
        const pare_tensor *t = g->values[w[i].value].init;
        const float *d = pare_tensor_f32(t);
        counts[i] = m->masks[i].numel;
        keeps[i] = m->masks[i].keep;
        vals[i] = pare_alloc((size_t)(counts[i] ? counts[i] : 1) * sizeof **vals);
        if (!vals[i]) {
            rc = pare_fail(err, PARE_ENOMEM, g->path, "out of memory computing masks");
            goto done;
        }
        if (opts->mode == PARE_UNSTRUCT_RANDOM) {
            uint64_t st = prune_fnv1a(1469598103934665603ull ^ opts->seed, m->masks[i].tensor,
                                      strlen(m->masks[i].tensor));
            for (int64_t k = 0; k < counts[i]; k++)
                vals[i][k] = (float)prune_uniform(&st);
        } else {
            for (int64_t k = 0; k < counts[i]; k++)
                vals[i][k] = fabsf(d[k]);
        }
        total = counts[i] > total ? counts[i] : total;
    }
    if (opts->mode == PARE_UNSTRUCT_THRESHOLD) {
        for (int i = 0; i < n; i++)
            for (int64_t k = 0; k < counts[i]; k++)
                if (vals[i][k] < opts->threshold)
                    keeps[i][k] = 0;
    } else if (opts->global) {
        int64_t all = 0;
        for (int i = 0; i < n; i++)
            all += counts[i];
        key = pare_alloc((size_t)(all ? all : 1) * sizeof *key);
        if (!key) {
            rc = pare_fail(err, PARE_ENOMEM, g->path, "out of memory computing masks");
            goto done;
        }
        mask_smallest(key, (const float *const *)vals, counts, keeps, n,
                      (int64_t)llround(opts->ratio * (double)all));
    } else {
        key = pare_alloc((size_t)(total ? total : 1) * sizeof *key);
        if (!key) {
            rc = pare_fail(err, PARE_ENOMEM, g->path, "out of memory computing masks");
            goto done;
        }
        for (int i = 0; i < n; i++)
            mask_smallest(key, (const float *const *)&vals[i], &counts[i], &keeps[i], 1,
                          (int64_t)llround(opts->ratio * (double)counts[i]));
    }
    for (int i = 0; i < n; i++) {
        m->masks[i].n_pruned = 0;
        for (int64_t k = 0; k < counts[i]; k++)
            m->masks[i].n_pruned += !keeps[i][k];
    }
done:
    for (int i = 0; vals && i < n; i++)
        pare_free(vals[i]);
    pare_free(vals);
    pare_free(counts);
    pare_free(keeps);
    pare_free(key);
    pare_free(w);
    if (rc == PARE_OK)
        *out = m;
    else
        pare_masks_free(m);
    return rc;
}

pare_status pare_masks_nm(const pare_graph *g, int n, int m, pare_prune_params_type params_type,
                          pare_masks **out, int *skipped, pare_error *err)
{
    weight_ref *w = pare_calloc((size_t)(g->n_nodes ? g->n_nodes : 1), sizeof *w);
    pare_masks *mk = NULL;
    int nw, nskip = 0;
    pare_status rc = PARE_OK;

    *out = NULL;
    if (skipped)
        *skipped = 0;
    if (!w)
        return pare_fail(err, PARE_ENOMEM, g->path, "out of memory computing N:M masks");
    if (n < 1 || m > 64 || n >= m) {
        rc = pare_fail(err, PARE_EINPUT, g->path, "bad N:M pattern %d:%d", n, m);
        pare_error_hint(err, "N keeps out of every M, 1 <= N < M <= 64 (2:4 is the usual)");
        goto done;
    }
    nw = list_weights(g, params_type, w);
    mk = masks_alloc(g, w, nw);
    if (!mk) {
        rc = pare_fail(err, PARE_ENOMEM, g->path, "out of memory computing N:M masks");
        goto done;
    }
    for (int i = 0; i < nw; i++) {
        const pare_tensor *t = g->values[w[i].value].init;
        const float *d = pare_tensor_f32(t);
        uint8_t *keep = mk->masks[i].keep;
        int64_t outer, inner, len = t->dims[w[i].in_axis];
        if (len % m != 0) {
            nskip++;
            continue;
        }
        prune_axis_split(t, w[i].in_axis, &outer, &inner);
        /* runs of m along the input axis: stride inner */
        for (int64_t o = 0; o < outer; o++)
            for (int64_t r = 0; r < len; r += m)
                for (int64_t in = 0; in < inner; in++) {
                    int64_t base = (o * len + r) * inner + in;
                    for (int drop = 0; drop < m - n; drop++) {
                        int64_t best = -1;
                        for (int k = 0; k < m; k++) {
                            int64_t idx = base + (int64_t)k * inner;
                            if (keep[idx] && (best < 0 || fabsf(d[idx]) < fabsf(d[best])))
                                best = idx;
                        }
                        keep[best] = 0;
                    }
                }
        mk->masks[i].n_pruned = mk->masks[i].numel / m * (m - n);
    }
    if (skipped)
        *skipped = nskip;
done:
    pare_free(w);
    if (rc == PARE_OK)
        *out = mk;
    else
        pare_masks_free(mk);
    return rc;
}

static pare_status mask_from_array(const pare_graph *g, const char *path, const char *name,
                                   const pare_tensor *a, pare_mask *k, pare_error *err)
{
    int v = pare_graph_find_value(g, name);
    if (v < 0 || !g->values[v].init) {
        const char **names = pare_alloc((size_t)(g->n_values ? g->n_values : 1) * sizeof *names);
        pare_fail(err, PARE_EINPUT, path, "mask '%s' names no weight of the model", name);
        if (names) {
            int n = 0;
            const char *guess;
            for (int i = 0; i < g->n_values; i++)
                if (g->values[i].init)
                    names[n++] = g->values[i].name;
            guess = pare_closest_word(name, names, n);
            if (guess)
                pare_error_hint(err, "did you mean '%s'?", guess);
            pare_free(names);
        }
        return PARE_EINPUT;
    }
    if (pare_tensor_numel(a) != pare_tensor_numel(g->values[v].init))
        return pare_fail(err, PARE_EINPUT, path, "mask '%s' has %lld values, the weight %lld",
                         name, (long long)pare_tensor_numel(a),
                         (long long)pare_tensor_numel(g->values[v].init));
    k->numel = pare_tensor_numel(a);
    k->tensor = pare_strdup(name);
    k->node = pare_strdup("");
    k->keep = pare_alloc((size_t)(k->numel ? k->numel : 1));
    if (!k->tensor || !k->node || !k->keep)
        return pare_fail(err, PARE_ENOMEM, path, "out of memory loading masks");
    for (int64_t i = 0; i < k->numel; i++) {
        k->keep[i] = pare_tensor_get_f64(a, i) != 0;
        k->n_pruned += !k->keep[i];
    }
    return PARE_OK;
}

pare_status pare_masks_load(const pare_graph *g, const char *path, pare_masks **out, pare_error *err)
{
    pare_npz *z = NULL;
    pare_masks *m = pare_calloc(1, sizeof *m);
    pare_status rc;
    size_t len = strlen(path);

    *out = NULL;
    if (!m)
        return pare_fail(err, PARE_ENOMEM, path, "out of memory loading masks");
    if (len < 4 || strcmp(path + len - 4, ".npz") != 0) {
        pare_masks_free(m);
        rc = pare_fail(err, PARE_EINPUT, path, "masks are read from an .npz file");
        pare_error_hint(err, "one array per weight, named after the weight tensor");
        return rc;
    }
    rc = pare_npz_load(path, &z, err);
    if (rc == PARE_OK) {
        m->masks = pare_calloc((size_t)(z->n ? z->n : 1), sizeof *m->masks);
        if (!m->masks)
            rc = pare_fail(err, PARE_ENOMEM, path, "out of memory loading masks");
    }
    for (int i = 0; rc == PARE_OK && i < z->n; i++) {
        m->n++;
        rc = mask_from_array(g, path, z->names[i], z->arrays[i], &m->masks[i], err);
    }
    pare_npz_free(z);
    if (rc == PARE_OK)
        *out = m;
    else
        pare_masks_free(m);
    return rc;
}

pare_status pare_masks_apply(const pare_masks *m, pare_graph *g, pare_error *err)
{
    for (int i = 0; i < m->n; i++) {
        const pare_mask *k = &m->masks[i];
        int v = pare_graph_find_value(g, k->tensor);
        float *d;
        if (v < 0 || !g->values[v].init || g->values[v].init->dtype != PARE_F32 ||
            pare_tensor_numel(g->values[v].init) != k->numel)
            return pare_fail(err, PARE_EINPUT, g->path, "mask for '%s' does not fit the model",
                             k->tensor);
        d = pare_tensor_f32(g->values[v].init);
        for (int64_t j = 0; j < k->numel; j++)
            if (!k->keep[j])
                d[j] = 0.0f;
    }
    return PARE_OK;
}

double pare_tensor_sparsity(const pare_graph *g, const char *tensor)
{
    int v = pare_graph_find_value(g, tensor);
    const pare_tensor *t;
    int64_t zeros = 0, n;
    if (v < 0 || !g->values[v].init)
        return -1;
    t = g->values[v].init;
    n = pare_tensor_numel(t);
    for (int64_t i = 0; i < n; i++)
        zeros += pare_tensor_get_f64(t, i) == 0;
    return n ? (double)zeros / (double)n : 0;
}

double pare_masks_sparsity(const pare_masks *m)
{
    int64_t z = 0, n = 0;
    for (int i = 0; m && i < m->n; i++) {
        z += m->masks[i].n_pruned;
        n += m->masks[i].numel;
    }
    return n ? (double)z / (double)n : 0;
}

/* ---- GMP / AGP ----------------------------------------------------------------- */

double pare_gmp_ratio(const pare_gmp *s, int64_t t)
{
    int64_t period, k;
    double f;
    if (t < s->stable_iterations)
        return 0.0;
    if (t >= s->stable_iterations + s->pruning_iterations)
        return s->final_ratio;
    period = s->pruning_iterations / s->pruning_steps;
    if (period < 1)
        period = 1;
    k = (t - s->stable_iterations) / period;
    f = 1.0 - (double)k / (double)s->pruning_steps;
    return s->final_ratio + (s->initial_ratio - s->final_ratio) * f * f * f;
}

pare_status pare_gmp_init(pare_gmp_state *st, const pare_gmp *s, pare_error *err)
{
    memset(st, 0, sizeof *st);
    if (s->stable_iterations < 0 || s->pruning_iterations < 0 || s->tunning_iterations < 0 ||
        s->resume_iteration < 0)
        return pare_fail(err, PARE_EINPUT, "gmp", "iteration counts must be >= 0");
    if (s->pruning_steps < 1 || s->pruning_steps > (s->pruning_iterations ? s->pruning_iterations : 1))
        return pare_fail(err, PARE_EINPUT, "gmp", "pruning_steps %lld must be in [1, "
                         "pruning_iterations]", (long long)s->pruning_steps);
    if (!(s->initial_ratio >= 0 && s->initial_ratio < 1) || !(s->final_ratio >= 0 && s->final_ratio < 1))
        return pare_fail(err, PARE_EINPUT, "gmp", "ratios must be in [0, 1)");
    if (s->initial_ratio > s->final_ratio)
        return pare_fail(err, PARE_EINPUT, "gmp", "initial_ratio %g is above the final ratio %g",
                         s->initial_ratio, s->final_ratio);
    st->sched = *s;
    st->iteration = s->resume_iteration;
    return PARE_OK;
}

pare_status pare_gmp_step(pare_gmp_state *st, pare_graph *g, double *ratio, pare_error *err)
{
    double r = pare_gmp_ratio(&st->sched, st->iteration);
    pare_status rc = PARE_OK;

    st->iteration++;
    if (r != st->ratio || (!st->masks && r > 0)) {
        pare_unstruct_opts o = st->sched.opts;
        pare_masks *m = NULL;
        o.ratio = r;
        rc = pare_masks_compute(g, &o, &m, err);
        if (rc != PARE_OK)
            return rc;
        pare_masks_free(st->masks);
        st->masks = m;
        st->ratio = r;
    }
    if (st->masks)
        rc = pare_masks_apply(st->masks, g, err);
    if (ratio)
        *ratio = st->ratio;
    return rc;
}

void pare_gmp_fini(pare_gmp_state *st)
{
    pare_masks_free(st->masks);
    st->masks = NULL;
}
