/* Quantization sensitivity: "only this layer" and "all but this layer"
 * metrics per quantizable node, and the greedy revert-until-the-drop-is-met
 * search (pare_quant_sens_run). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pare/alloc.h"
#include "pare/metrics.h"
#include "pare/quant.h"
#include "quant_internal.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static uint64_t fnv1a(uint64_t h, const void *data, size_t len)
{
    const uint8_t *p = data;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 1099511628211ull;
    }
    return h;
}

/* ---- cache: keys -> metric values, in memory and appended to a file ---------- */

typedef struct qcache {
    char **keys;
    double *values;
    int n, cap;
    FILE *append;
    const char *path;
} qcache;

static int qcache_find(const qcache *c, const char *key)
{
    for (int i = c->n - 1; i >= 0; i--)
        if (!strcmp(c->keys[i], key))
            return i;
    return -1;
}

static pare_status qcache_put(qcache *c, const char *key, double v, pare_error *err)
{
    if (c->n == c->cap) {
        int cap = c->cap ? 2 * c->cap : 64;
        char **k = pare_realloc(c->keys, (size_t)cap * sizeof *k);
        double *d;
        if (!k)
            return pare_fail(err, PARE_ENOMEM, NULL, "out of memory");
        c->keys = k;
        d = pare_realloc(c->values, (size_t)cap * sizeof *d);
        if (!d)
            return pare_fail(err, PARE_ENOMEM, NULL, "out of memory");
        c->values = d;
        c->cap = cap;
    }
    c->keys[c->n] = pare_strdup(key);
    if (!c->keys[c->n])
        return pare_fail(err, PARE_ENOMEM, NULL, "out of memory");
    c->values[c->n++] = v;
    return PARE_OK;
}

/* Reads every "key<TAB>value" line whose key starts with "q1\t" (a missing
 * file is an empty cache), then opens it for appending. */
static pare_status qcache_open(qcache *c, const char *path, pare_error *err)
{
    FILE *f;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    pare_status rc = PARE_OK;

    c->path = path;
    f = fopen(path, "r");
    if (!f && errno != ENOENT)
        return pare_fail(err, PARE_EIO, path, "cannot read the cache: %s", strerror(errno));
    while (f && rc == PARE_OK && (len = getline(&line, &cap, f)) > 0) {
        char *tab, *end;
        double v;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        tab = strrchr(line, '\t');
        if (strncmp(line, "q1\t", 3) || !tab)
            continue;
        *tab = '\0';
        v = strtod(tab + 1, &end);
        if (end == tab + 1 || *end)
            continue; /* a line cut short by an interruption */
        rc = qcache_put(c, line, v, err);
    }
    free(line);
    if (f)
        fclose(f);
    if (rc != PARE_OK)
        return rc;
    c->append = fopen(path, "a");
    if (!c->append)
        return pare_fail(err, PARE_EIO, path, "cannot write the cache: %s", strerror(errno));
    return PARE_OK;
}

static void qcache_fini(qcache *c)
{
    for (int i = 0; i < c->n; i++)
        pare_free(c->keys[i]);
    pare_free(c->keys);
    pare_free(c->values);
    if (c->append)
        fclose(c->append);
}

/* ---- the run ----------------------------------------------------------------------- */

typedef struct qs {
    const pare_graph *g;
    pare_dataset *ds;
    const pare_quant_sens_opts *o;
    const pare_quant_calib *calib;
    pare_quant_sens_result *r;
    qcache cache;
    bool top1;
    int B, nb;
    int64_t count;
    float *ref_out;          /* cosine: [nb][B * out_numel] fp32 outputs */
    int64_t out_numel;
    const char **skip;       /* base skip list + room for every layer */
    int n_base_skip;
    char key_prefix[1024];   /* "q1\thash" */
    char key_suffix[1024];   /* "config\tdata\tmetric" */
    char *names;             /* scratch for joined layer names */
    size_t names_cap;
    int64_t done;            /* points so far, for progress */
    int64_t total;
    const char *stage;
} qs;

/* Metric of graph m on every sample of ds; fills ref_out when store. */
static pare_status eval_graph(qs *s, const pare_graph *m, bool store, double *out, pare_error *err)
{
    pare_exec *x = NULL;
    int64_t *labels = pare_alloc((size_t)s->B * sizeof *labels);
    pare_accuracy acc;
    pare_similarity sim;
    pare_status rc;

    if (!labels)
        return pare_fail(err, PARE_ENOMEM, NULL, "out of memory");
    pare_accuracy_init(&acc, 1);
    pare_similarity_init(&sim);
    rc = quant_exec_new(m, s->ds, s->B, NULL, 0, s->o->quant->n_threads, &x, err);
    for (int b = 0; b < s->nb && rc == PARE_OK; b++) {
        int64_t pos = (int64_t)b * s->B, n = s->count - pos < s->B ? s->count - pos : s->B;
        const pare_tensor *y;
        rc = pare_dataset_fill(s->ds, pos, n, pare_exec_input(x, 0), labels, err);
        if (rc == PARE_OK)
            rc = pare_exec_run(x, err);
        if (rc != PARE_OK)
            break;
        y = pare_exec_output(x, 0);
        if (y->dtype != PARE_F32 || y->ndim < 1 || y->dims[0] != s->B) {
            rc = pare_fail(err, PARE_EUNSUPPORTED, m->path, "output 0 is not a float (batch, ...) "
                           "tensor");
            break;
        }
        if (store) {
            if (!s->ref_out) {
                s->out_numel = pare_tensor_numel(y);
                s->ref_out = pare_alloc((size_t)s->nb * (size_t)s->out_numel * sizeof(float));
                if (!s->ref_out) {
                    rc = pare_fail(err, PARE_ENOMEM, NULL, "out of memory");
                    break;
                }
            }
            memcpy(s->ref_out + (size_t)b * (size_t)s->out_numel, y->data,
                   (size_t)s->out_numel * sizeof(float));
        }
        if (s->top1) {
            rc = pare_accuracy_add(&acc, y, labels, n, err);
        } else {
            pare_tensor ref;
            pare_tensor_view(&ref, PARE_F32, y->ndim, y->dims,
                             s->ref_out + (size_t)b * (size_t)s->out_numel);
            rc = pare_similarity_add(&sim, y, &ref, n, err);
        }
    }
    if (rc == PARE_OK) {
        pare_similarity_result sr;
        pare_similarity_get(&sim, &sr);
        *out = s->top1 ? pare_accuracy_top1(&acc) : sr.cosine_mean;
    }
    pare_exec_free(x);
    pare_free(labels);
    return rc;
}

/* Joins the skip names of the layers set in `in` (graph order) into s->names. */
static pare_status join_names(qs *s, const bool *in, pare_error *err)
{
    size_t len = 1;
    char *p;
    for (int l = 0; l < s->r->n_layers; l++)
        if (in[l])
            len += strlen(s->r->layers[l].skip_name) + 1;
    if (len > s->names_cap) {
        char *n = pare_realloc(s->names, len);
        if (!n)
            return pare_fail(err, PARE_ENOMEM, NULL, "out of memory");
        s->names = n;
        s->names_cap = len;
    }
    p = s->names;
    *p = '\0';
    for (int l = 0; l < s->r->n_layers; l++) {
        size_t k;
        if (!in[l])
            continue;
        if (p != s->names)
            *p++ = ',';
        k = strlen(s->r->layers[l].skip_name);
        memcpy(p, s->r->layers[l].skip_name, k + 1);
        p += k;
    }
    return PARE_OK;
}

/* One point: mode "fp32", "full", "only" (the layers in `set` are the
 * quantized ones: all others are skipped) or "allbut" (the layers in `set`
 * are skipped). Cached by key. */
static pare_status measure(qs *s, const char *mode, const bool *set, const char *detail,
                           double *out, pare_error *err)
{
    pare_quant_opts qo = *s->o->quant;
    pare_graph *q = NULL;
    char *key = NULL;
    size_t klen;
    int ns = s->n_base_skip, hit;
    bool only = !strcmp(mode, "only"), allbut = !strcmp(mode, "allbut");
    pare_status rc = PARE_OK;
    pare_progress_event ev = {.stage = s->stage, .total = s->total, .unit = "point",
                              .loss = NAN, .detail = detail};

    if (set)
        rc = join_names(s, set, err);
    if (rc != PARE_OK)
        return rc;
    klen = strlen(s->key_prefix) + strlen(mode) + (set ? strlen(s->names) : 0) +
           strlen(s->key_suffix) + 8;
    key = pare_alloc(klen);
    if (!key)
        return pare_fail(err, PARE_ENOMEM, NULL, "out of memory");
    snprintf(key, klen, "%s\t%s\t%s\t%s", s->key_prefix, mode, set ? s->names : "",
             s->key_suffix);
    hit = qcache_find(&s->cache, key);
    if (hit >= 0) {
        *out = s->cache.values[hit];
        s->r->from_cache++;
    } else {
        if (!strcmp(mode, "fp32")) {
            rc = eval_graph(s, s->g, !s->top1, out, err);
        } else {
            for (int l = 0; l < s->r->n_layers; l++)
                if ((only && !set[l]) || (allbut && set[l]))
                    s->skip[ns++] = s->r->layers[l].skip_name;
            qo.skip_tensor_list = s->skip;
            qo.n_skip_tensor_list = ns;
            qo.strict = false;
            rc = pare_quant_build(s->g, s->calib, &qo, &q, NULL, err);
            if (rc == PARE_OK)
                rc = eval_graph(s, q, false, out, err);
            pare_graph_free(q);
        }
        if (rc == PARE_OK)
            rc = qcache_put(&s->cache, key, *out, err);
        if (rc == PARE_OK && s->cache.append) {
            fprintf(s->cache.append, "%s\t%.17g\n", key, *out);
            if (fflush(s->cache.append) != 0)
                rc = pare_fail(err, PARE_EIO, s->cache.path, "cannot write the cache: %s",
                               strerror(errno));
        }
        if (rc == PARE_OK)
            s->r->computed++;
    }
    pare_free(key);
    if (rc == PARE_OK) {
        ev.done = ++s->done;
        ev.metric = *out;
        if (!pare_progress_report(s->o->progress, &ev))
            rc = pare_fail(err, PARE_ECANCELED, NULL, "quantization sensitivity canceled after "
                           "%lld points", (long long)s->done);
    }
    return rc;
}

void pare_quant_sens_result_free(pare_quant_sens_result *r)
{
    if (!r)
        return;
    for (int i = 0; i < r->n_layers; i++) {
        pare_free(r->layers[i].node);
        pare_free(r->layers[i].op_type);
        pare_free(r->layers[i].skip_name);
    }
    pare_free(r->layers);
    pare_free(r->by_only);
    pare_free(r->by_recovery);
    pare_free(r->skip);
    pare_free(r->skip_metric);
    pare_free(r);
}

/* Ranking key of layer l: drop vs fp32 (by_only) or recovery vs full. */
static double rank_key(const pare_quant_sens_result *r, int l, bool by_only)
{
    const pare_quant_sens_layer *L = &r->layers[l];
    double k = by_only ? r->fp32 - L->only : L->all_but - r->full;
    return isnan(k) ? -INFINITY : k;
}

/* order[0..n) = 0..n-1 sorted by descending key, ties in graph order
 * (insertion sort: stable, and layers are few). */
static void rank(const pare_quant_sens_result *r, int *order, bool by_only)
{
    for (int i = 0; i < r->n_layers; i++) {
        int j = i;
        double k = rank_key(r, i, by_only);
        while (j > 0 && rank_key(r, order[j - 1], by_only) < k) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = i;
    }
}

/* Layers: the nodes pare_quant_build quantizes with the base options. */
static pare_status find_layers(qs *s, pare_error *err)
{
    pare_quant_report *rep = NULL;
    pare_graph *q = NULL;
    pare_quant_sens_result *r = s->r;
    pare_status rc = pare_quant_build(s->g, s->calib, s->o->quant, &q, &rep, err);

    pare_graph_free(q);
    if (rc != PARE_OK)
        return rc;
    if (rep->n_quantized_nodes == 0) {
        rc = pare_fail(err, PARE_EINPUT, s->g->path, "no node of the model is quantized with "
                       "these options");
        pare_error_hint(err, "check --op-types and the skip lists");
    }
    if (rc == PARE_OK) {
        r->layers = pare_calloc((size_t)rep->n_quantized_nodes, sizeof *r->layers);
        r->by_only = pare_calloc((size_t)rep->n_quantized_nodes, sizeof *r->by_only);
        r->by_recovery = pare_calloc((size_t)rep->n_quantized_nodes, sizeof *r->by_recovery);
        r->skip = pare_calloc((size_t)rep->n_quantized_nodes, sizeof *r->skip);
        r->skip_metric = pare_calloc((size_t)rep->n_quantized_nodes, sizeof *r->skip_metric);
        s->skip = pare_calloc((size_t)(s->o->quant->n_skip_tensor_list + rep->n_quantized_nodes),
                              sizeof *s->skip);
        if (!r->layers || !r->by_only || !r->by_recovery || !r->skip || !r->skip_metric ||
            !s->skip)
            rc = pare_fail(err, PARE_ENOMEM, NULL, "out of memory");
    }
    for (int i = 0; i < s->n_base_skip && rc == PARE_OK; i++)
        s->skip[i] = s->o->quant->skip_tensor_list[i];
    for (int i = 0; i < rep->n_quantized_nodes && rc == PARE_OK; i++) {
        int n = pare_graph_find_node(s->g, rep->quantized_nodes[i]);
        const pare_node *node = n >= 0 ? &s->g->nodes[n] : NULL;
        int wi = node ? quant_weight_input(node) : -1;
        const char *skip = rep->quantized_nodes[i];
        pare_quant_sens_layer *L = &r->layers[r->n_layers];
        if (wi >= 0 && wi < node->n_inputs && node->inputs[wi] >= 0 &&
            s->g->values[node->inputs[wi]].init)
            skip = s->g->values[node->inputs[wi]].name;
        L->node = pare_strdup(rep->quantized_nodes[i]);
        L->op_type = pare_strdup(node ? node->op_type : "");
        L->skip_name = pare_strdup(skip);
        L->only = NAN;
        L->all_but = NAN;
        r->n_layers++;
        if (!L->node || !L->op_type || !L->skip_name)
            rc = pare_fail(err, PARE_ENOMEM, NULL, "out of memory");
    }
    pare_quant_report_free(rep);
    return rc;
}

static pare_status set_keys(qs *s, pare_error *err)
{
    const pare_quant_opts *q = s->o->quant;
    uint8_t *buf = NULL;
    size_t len = 0;
    uint64_t h = 1469598103934665603ull;
    char extra[64] = "";
    pare_status rc = pare_graph_save_buffer(s->g, &buf, &len, err);

    if (rc != PARE_OK)
        return rc;
    s->r->model_hash = fnv1a(h, buf, len);
    pare_free(buf);
    /* base exclusions change what "full" means: a hash of them */
    if (q->n_skip_tensor_list || q->n_not_quant_pattern || q->n_quantize_op_types) {
        h = 1469598103934665603ull;
        for (int i = 0; i < q->n_skip_tensor_list; i++)
            h = fnv1a(h, q->skip_tensor_list[i], strlen(q->skip_tensor_list[i]) + 1);
        h = fnv1a(h, "|", 1);
        for (int i = 0; i < q->n_not_quant_pattern; i++)
            h = fnv1a(h, q->not_quant_pattern[i], strlen(q->not_quant_pattern[i]) + 1);
        h = fnv1a(h, "|", 1);
        for (int i = 0; i < q->n_quantize_op_types; i++)
            h = fnv1a(h, q->quantize_op_types[i], strlen(q->quantize_op_types[i]) + 1);
        snprintf(extra, sizeof extra, "/x%08llx", (unsigned long long)(h & 0xffffffffu));
    }
    snprintf(s->key_prefix, sizeof s->key_prefix, "q1\t%016llx",
             (unsigned long long)s->r->model_hash);
    snprintf(s->key_suffix, sizeof s->key_suffix, "%s/W%dA%d/%s/%s%s%s%s%s/b%dx%d\t%s:%lld\t%s",
             pare_quant_algo_name(q->algo), q->weight_bits, q->activation_bits,
             pare_quant_preset_name(q->preset),
             q->block_size > 0 ? "block" :
             q->weight_quantize_type == PARE_QUANT_CHANNEL_WISE_ABS_MAX ? "pc" : "pt",
             q->is_full_quantize ? "/full" : "", q->weight_only ? "/wo" : "",
             q->activation_unsigned ? "/u8" : "", extra, q->batch_nums, q->batch_size,
             pare_dataset_spec(s->ds), (long long)s->count, s->top1 ? "top1" : "cosine");
    return PARE_OK;
}

/* Greedy revert: add the layer whose reverting gives the best metric. */
static pare_status greedy(qs *s, pare_error *err)
{
    pare_quant_sens_result *r = s->r;
    bool *set = pare_calloc((size_t)r->n_layers, sizeof *set);
    double cur = r->full;
    pare_status rc = PARE_OK;

    if (!set)
        return pare_fail(err, PARE_ENOMEM, NULL, "out of memory");
    s->stage = "revert";
    while (rc == PARE_OK && r->fp32 - cur > r->target_drop && r->n_skip < r->n_layers) {
        int best = -1;
        double best_m = -INFINITY;
        s->done = 0;
        s->total = r->n_layers - r->n_skip;
        for (int l = 0; l < r->n_layers && rc == PARE_OK; l++) {
            double m;
            if (set[l])
                continue;
            set[l] = true;
            rc = measure(s, "allbut", set, r->layers[l].node, &m, err);
            set[l] = false;
            if (rc == PARE_OK && r->n_skip == 0)
                r->layers[l].all_but = m;
            if (rc == PARE_OK && (best < 0 || m > best_m)) {
                best = l;
                best_m = m;
            }
        }
        if (rc != PARE_OK)
            break;
        set[best] = true;
        r->skip[r->n_skip] = best;
        r->skip_metric[r->n_skip++] = best_m;
        cur = best_m;
    }
    r->final_metric = cur;
    r->met = r->fp32 - cur <= r->target_drop;
    pare_free(set);
    return rc;
}

pare_status pare_quant_sens_run(const pare_graph *g, pare_dataset *ds,
                                const pare_quant_sens_opts *opts, pare_quant_sens_result **out,
                                pare_error *err)
{
    qs s;
    pare_quant_calib *calib = NULL;
    pare_quant_sens_result *r = pare_calloc(1, sizeof *r);
    bool *set = NULL;
    double t0 = now_s();
    pare_status rc = PARE_OK;

    *out = NULL;
    memset(&s, 0, sizeof s);
    if (!r)
        return pare_fail(err, PARE_ENOMEM, NULL, "out of memory");
    s.g = g;
    s.ds = ds;
    s.o = opts;
    s.r = r;
    s.B = opts->batch > 0 ? opts->batch : 64;
    s.count = pare_dataset_count(ds);
    s.nb = (int)((s.count + s.B - 1) / s.B);
    s.n_base_skip = opts->quant->n_skip_tensor_list;
    s.top1 = opts->metric == PARE_QUANT_SENS_TOP1 ||
             (opts->metric == PARE_QUANT_SENS_AUTO && pare_dataset_has_labels(ds));
    r->metric = s.top1 ? PARE_QUANT_SENS_TOP1 : PARE_QUANT_SENS_COSINE;
    r->n_samples = s.count;
    r->has_target = opts->search;
    r->target_drop = opts->target_drop;
    rc = pare_quant_opts_check(opts->quant, err);
    if (rc == PARE_OK && opts->search && !(opts->target_drop >= 0))
        rc = pare_fail(err, PARE_EINPUT, NULL, "target_drop must be >= 0, not %g",
                       opts->target_drop);
    if (rc == PARE_OK && s.top1 && !pare_dataset_has_labels(ds))
        rc = pare_fail(err, PARE_EINPUT, pare_dataset_spec(ds), "top-1 needs labelled data");
    if (rc == PARE_OK && s.count < 1)
        rc = pare_fail(err, PARE_EINPUT, pare_dataset_spec(ds), "the dataset is empty");
    if (rc == PARE_OK)
        rc = set_keys(&s, err);
    if (rc == PARE_OK && opts->cache_path)
        rc = qcache_open(&s.cache, opts->cache_path, err);
    if (rc == PARE_OK)
        rc = pare_quant_calibrate(g, ds, opts->quant, opts->progress, &calib, err);
    s.calib = calib;
    if (rc == PARE_OK)
        rc = find_layers(&s, err);
    if (rc == PARE_OK) {
        set = pare_calloc((size_t)r->n_layers, sizeof *set);
        if (!set)
            rc = pare_fail(err, PARE_ENOMEM, NULL, "out of memory");
    }
    s.stage = "quant_sens";
    s.total = 2 + (opts->skip_only ? 1 : 2) * (int64_t)r->n_layers;
    if (rc == PARE_OK)
        rc = measure(&s, "fp32", NULL, "fp32", &r->fp32, err);
    if (rc == PARE_OK)
        rc = measure(&s, "full", NULL, "full", &r->full, err);
    for (int l = 0; l < r->n_layers && rc == PARE_OK; l++) {
        set[l] = true;
        if (!opts->skip_only)
            rc = measure(&s, "only", set, r->layers[l].node, &r->layers[l].only, err);
        if (rc == PARE_OK)
            rc = measure(&s, "allbut", set, r->layers[l].node, &r->layers[l].all_but, err);
        set[l] = false;
    }
    if (rc == PARE_OK) {
        rank(r, r->by_only, true);
        rank(r, r->by_recovery, false);
    }
    if (rc == PARE_OK && r->has_target)
        rc = greedy(&s, err);
    r->seconds = now_s() - t0;
    pare_free(set);
    pare_free(s.skip);
    pare_free(s.ref_out);
    pare_free(s.names);
    qcache_fini(&s.cache);
    pare_quant_calib_free(calib);
    if (rc == PARE_OK)
        *out = r;
    else
        pare_quant_sens_result_free(r);
    return rc;
}
