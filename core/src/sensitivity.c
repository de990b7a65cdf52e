/* Pruning sensitivity sweep with incremental re-runs and an on-disk cache
 * (see sensitivity.h). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pare/alloc.h"
#include "pare/exec.h"
#include "pare/metrics.h"
#include "pare/sensitivity.h"
#include "pare/train.h"
#include "prune_internal.h"

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- cache ------------------------------------------------------------------- */

typedef struct cache_entry {
    char *key;            /* everything before the value */
    double value;
    int64_t params;
    double flops;
} cache_entry;

typedef struct cache {
    cache_entry *e;
    int n, cap;
    FILE *append;
} cache;

static void cache_fini(cache *c)
{
    for (int i = 0; i < c->n; i++)
        pare_free(c->e[i].key);
    pare_free(c->e);
    if (c->append)
        fclose(c->append);
    memset(c, 0, sizeof *c);
}

static const cache_entry *cache_find(const cache *c, const char *key)
{
    for (int i = 0; i < c->n; i++)
        if (strcmp(c->e[i].key, key) == 0)
            return &c->e[i];
    return NULL;
}

/* Splits a cache line into key and numbers; false for a line that is not one. */
static bool cache_parse(char *line, char **key, double *value, int64_t *params, double *flops)
{
    char *tabs[10];
    int nt = 0;
    char *end;
    if (strncmp(line, "v1\t", 3) != 0)
        return false;
    for (char *p = line; *p && nt < 10; p++)
        if (*p == '\t')
            tabs[nt++] = p;
    if (nt != 9)
        return false;
    *tabs[6] = '\0';
    errno = 0;
    *value = strtod(tabs[6] + 1, &end);
    if (end == tabs[6] + 1 || *end != '\t')
        return false;
    *params = strtoll(tabs[7] + 1, &end, 10);
    if (*end != '\t')
        return false;
    *flops = strtod(tabs[8] + 1, &end);
    if (*end != '\n' && *end != '\0' && *end != '\r')
        return false;
    *key = line;
    return true;
}

static pare_status cache_add(cache *c, const char *key, double value, int64_t params, double flops)
{
    if (c->n == c->cap) {
        int nc = c->cap ? c->cap * 2 : 64;
        void *p = pare_realloc(c->e, (size_t)nc * sizeof *c->e);
        if (!p)
            return PARE_ENOMEM;
        c->e = p;
        c->cap = nc;
    }
    c->e[c->n].key = pare_strdup(key);
    if (!c->e[c->n].key)
        return PARE_ENOMEM;
    c->e[c->n].value = value;
    c->e[c->n].params = params;
    c->e[c->n++].flops = flops;
    return PARE_OK;
}

static pare_status cache_read(cache *c, const char *path, bool must_exist, pare_error *err)
{
    FILE *f = fopen(path, "r");
    char line[4096];
    if (!f) {
        if (errno == ENOENT && !must_exist)
            return PARE_OK;
        return pare_fail(err, PARE_EIO, path, "cannot read the sensitivity cache: %s",
                         strerror(errno));
    }
    while (fgets(line, sizeof line, f)) {
        char *key;
        double v, fl;
        int64_t p;
        if (!cache_parse(line, &key, &v, &p, &fl) || cache_find(c, key))
            continue;
        if (cache_add(c, key, v, p, fl) != PARE_OK) {
            fclose(f);
            return pare_fail(err, PARE_ENOMEM, path, "out of memory reading the cache");
        }
    }
    fclose(f);
    return PARE_OK;
}

static void cache_key(char *buf, size_t size, uint64_t hash, const char *group, double ratio,
                      const char *crit, const char *data, const char *metric)
{
    snprintf(buf, size, "v1\t%016llx\t%s\t%.4f\t%s\t%s\t%s", (unsigned long long)hash, group, ratio,
             crit, data, metric);
}

pare_status pare_sens_cache_merge(const char *const *inputs, int n, const char *output,
                                  pare_error *err)
{
    cache c = {0};
    char tmp[1200];
    FILE *f;
    pare_status rc = PARE_OK;

    for (int i = 0; i < n && rc == PARE_OK; i++)
        rc = cache_read(&c, inputs[i], true, err);
    if (rc != PARE_OK)
        goto done;
    snprintf(tmp, sizeof tmp, "%s.tmp", output);
    f = fopen(tmp, "w");
    if (!f) {
        rc = pare_fail(err, PARE_EIO, output, "cannot write: %s", strerror(errno));
        goto done;
    }
    fprintf(f, "# pare sensitivity cache\n");
    for (int i = 0; i < c.n; i++)
        fprintf(f, "%s\t%.17g\t%lld\t%.17g\n", c.e[i].key, c.e[i].value, (long long)c.e[i].params,
                c.e[i].flops);
    if (fclose(f) != 0 || rename(tmp, output) != 0) {
        remove(tmp);
        rc = pare_fail(err, PARE_EIO, output, "cannot write: %s", strerror(errno));
    }
done:
    cache_fini(&c);
    return rc;
}

/* ---- the sweep ----------------------------------------------------------------- */

typedef struct tap {
    int value;            /* in g */
    pare_tensor shape;    /* at batch B (shape carrier) */
    size_t per_batch;     /* bytes */
    char *data;           /* [nb][per_batch] or NULL when not stored */
} tap;

typedef struct sweep {
    const pare_graph *g;
    const pare_prune_groups *gs;
    const pare_sens_opts *o;
    const char *crit;
    int B, nb, threads;
    int64_t count, sample_numel;
    float *inputs;        /* [nb][B * sample] */
    int64_t *labels;      /* [nb * B] */
    pare_tensor in_shape;
    float *base_out;      /* [nb][out_numel] */
    int64_t out_numel;
    pare_tensor out_shape;
    pare_sens_metric metric;
    tap *taps;            /* per graph value, .value = -1 when none */
    double run_seconds;
} sweep;

static int64_t valid_rows(const sweep *s, int b)
{
    int64_t left = s->count - (int64_t)b * s->B;
    return left < s->B ? left : s->B;
}

/* Nodes a group changes and everything after them (keep), plus constant
 * nodes they need; frontier = runtime values those nodes read from outside. */
static pare_status group_cut(const sweep *s, const pare_exec *base, int gi, bool *keep,
                             bool *frontier, pare_error *err)
{
    const pare_graph *g = s->g;
    const pare_prune_group *grp = &s->gs->groups[gi];
    bool *touched = pare_calloc((size_t)(g->n_values ? g->n_values : 1), sizeof *touched);

    if (!touched)
        return pare_fail(err, PARE_ENOMEM, g->path, "out of memory cutting the model");
    memset(keep, 0, (size_t)g->n_nodes * sizeof *keep);
    memset(frontier, 0, (size_t)g->n_values * sizeof *frontier);
    for (int m = 0; m < grp->n_members; m++) {
        int v = pare_graph_find_value(g, grp->members[m].tensor);
        if (v >= 0)
            touched[v] = true;
    }
    /* topological order: one pass marks the downstream closure */
    for (int n = 0; n < g->n_nodes; n++) {
        const pare_node *node = &g->nodes[n];
        bool hit = false;
        for (int i = 0; i < node->n_inputs; i++)
            hit |= node->inputs[i] >= 0 && touched[node->inputs[i]];
        if (!hit)
            continue;
        keep[n] = true;
        for (int i = 0; i < node->n_outputs; i++)
            if (node->outputs[i] >= 0)
                touched[node->outputs[i]] = true;
    }
    /* constants computed at plan time stay with their consumers */
    for (int n = 0; n < g->n_nodes; n++) {
        const pare_node *node = &g->nodes[n];
        bool all_const = pare_exec_node_is_folded(base, n);
        for (int i = 0; i < node->n_inputs && all_const; i++) {
            int v = node->inputs[i];
            if (v >= 0 && !g->values[v].init &&
                (g->values[v].producer < 0 || !keep[g->values[v].producer]))
                all_const = false;
        }
        if (all_const)
            keep[n] = true;
    }
    for (int n = 0; n < g->n_nodes; n++) {
        const pare_node *node = &g->nodes[n];
        if (!keep[n])
            continue;
        for (int i = 0; i < node->n_inputs; i++) {
            int v = node->inputs[i];
            if (v < 0 || g->values[v].init)
                continue;
            if (g->values[v].producer < 0 || !keep[g->values[v].producer])
                frontier[v] = true;
        }
    }
    for (int i = 0; i < g->n_outputs; i++) {
        int v = g->outputs[i];
        if (g->values[v].producer < 0 || !keep[g->values[v].producer])
            frontier[v] = true;
    }
    pare_free(touched);
    return PARE_OK;
}

/* Builds the plan of the unpruned model; taps every value with tap_me set. */
static pare_status base_exec(const sweep *s, const bool *tap_me, pare_exec **out, pare_error *err)
{
    pare_exec_opts opts = {.batch = s->B, .n_threads = s->threads, .input_shapes = &s->in_shape};
    const char **names = NULL;
    int n = 0;
    pare_status rc;

    if (tap_me) {
        names = pare_alloc((size_t)(s->g->n_values ? s->g->n_values : 1) * sizeof *names);
        if (!names)
            return pare_fail(err, PARE_ENOMEM, s->g->path, "out of memory");
        for (int v = 0; v < s->g->n_values; v++)
            if (tap_me[v])
                names[n++] = s->g->values[v].name;
    }
    opts.taps = names;
    opts.n_taps = n;
    rc = pare_exec_new(s->g, &opts, out, err);
    pare_free(names);
    return rc;
}

static pare_status fill_input(const sweep *s, pare_exec *x, int b)
{
    pare_tensor *in = pare_exec_input(x, 0);
    memcpy(in->data, s->inputs + (size_t)b * (size_t)(s->B * s->sample_numel),
           (size_t)(s->B * s->sample_numel) * sizeof(float));
    return PARE_OK;
}

/* One pass of the unpruned model over every batch: baseline outputs (first
 * time) and the tapped values (tap_me) into s->taps. */
static pare_status base_pass(sweep *s, const bool *tap_me, bool store_outputs, pare_error *err)
{
    pare_exec *x = NULL;
    pare_status rc = base_exec(s, tap_me, &x, err);
    const pare_graph *g = s->g;

    for (int v = 0; rc == PARE_OK && tap_me && v < g->n_values; v++) {
        tap *t = &s->taps[v];
        if (!tap_me[v]) {
            pare_free(t->data);
            t->data = NULL;
            continue;
        }
        if (t->data)
            continue;
        {
            const pare_tensor *sh = pare_exec_value_shape(x, v);
            if (!sh) {
                rc = pare_fail(err, PARE_EINTERNAL, g->path, "no planned shape for '%s'",
                               g->values[v].name);
                break;
            }
            pare_tensor_view(&t->shape, sh->dtype, sh->ndim, sh->dims, NULL);
            t->per_batch = pare_tensor_nbytes(&t->shape);
            t->value = v;
            t->data = pare_alloc(t->per_batch * (size_t)s->nb + 1);
            if (!t->data)
                rc = pare_fail(err, PARE_ENOMEM, g->path, "out of memory storing activations");
        }
    }
    for (int b = 0; rc == PARE_OK && b < s->nb; b++) {
        double t0 = now_seconds();
        fill_input(s, x, b);
        rc = pare_exec_run(x, err);
        s->run_seconds += now_seconds() - t0;
        if (rc != PARE_OK)
            break;
        if (store_outputs) {
            const pare_tensor *y = pare_exec_output(x, 0);
            if (b == 0) {
                pare_tensor_view(&s->out_shape, y->dtype, y->ndim, y->dims, NULL);
                s->out_numel = pare_tensor_numel(y);
                s->base_out = pare_alloc((size_t)(s->out_numel * s->nb) * sizeof(float));
                if (!s->base_out || y->dtype != PARE_F32) {
                    rc = pare_fail(err, y->dtype != PARE_F32 ? PARE_EUNSUPPORTED : PARE_ENOMEM,
                                   g->path, "the model's first output must be float32");
                    break;
                }
            }
            memcpy(s->base_out + (size_t)(b * s->out_numel), y->data,
                   (size_t)s->out_numel * sizeof(float));
        }
        for (int v = 0; tap_me && v < g->n_values; v++) {
            const pare_tensor *t;
            if (!tap_me[v])
                continue;
            t = pare_exec_value(x, g->values[v].name);
            if (!t || pare_tensor_nbytes(t) != s->taps[v].per_batch) {
                rc = pare_fail(err, PARE_EINTERNAL, g->path, "tap '%s' was not kept",
                               g->values[v].name);
                break;
            }
            memcpy(s->taps[v].data + s->taps[v].per_batch * (size_t)b, t->data,
                   s->taps[v].per_batch);
        }
    }
    pare_exec_free(x);
    return rc;
}

typedef struct point_eval {
    pare_accuracy acc;
    pare_similarity sim;
} point_eval;

static void eval_init(point_eval *e)
{
    pare_accuracy_init(&e->acc, 1);
    pare_similarity_init(&e->sim);
}

static pare_status eval_batch(const sweep *s, point_eval *e, const pare_tensor *y, int b,
                              pare_error *err)
{
    pare_tensor ref;
    int64_t n = valid_rows(s, b);
    pare_status rc;
    if (pare_tensor_numel(y) != s->out_numel)
        return pare_fail(err, PARE_EINTERNAL, s->g->path, "the pruned model's output changed size");
    pare_tensor_view(&ref, PARE_F32, s->out_shape.ndim, s->out_shape.dims,
                     s->base_out + (size_t)(b * s->out_numel));
    rc = pare_similarity_add(&e->sim, y, &ref, n, err);
    if (rc == PARE_OK && s->metric == PARE_SENS_TOP1)
        rc = pare_accuracy_add(&e->acc, y, s->labels + (size_t)b * (size_t)s->B, n, err);
    return rc;
}

static double eval_metric(const sweep *s, const point_eval *e)
{
    pare_similarity_result r;
    if (s->metric == PARE_SENS_TOP1)
        return pare_accuracy_top1(&e->acc);
    pare_similarity_get(&e->sim, &r);
    return r.cosine_mean;
}

static double eval_mse(const point_eval *e)
{
    return e->sim.n_values ? e->sim.err_sq / (double)e->sim.n_values : 0;
}

/* Runs pruned model p (a full copy of g with group gi pruned; consumed:
 * cut in place unless naive) over the first n_batches batches. */
static pare_status run_point(sweep *s, const pare_exec *base, int gi, pare_graph *p, int n_batches,
                             point_eval *e, pare_error *err)
{
    const pare_graph *g = s->g;
    bool *keep = NULL, *front = NULL, *remove = NULL;
    int *fv = NULL, nf = 0;
    pare_tensor *shapes = NULL;
    pare_exec *x = NULL;
    pare_exec_opts opts = {.batch = s->B, .n_threads = s->threads};
    pare_status rc = PARE_OK;

    eval_init(e);
    if (s->o->naive || s->o->recover_steps > 0) {
        opts.input_shapes = &s->in_shape;
        rc = pare_exec_new(p, &opts, &x, err);
        for (int b = 0; rc == PARE_OK && b < n_batches; b++) {
            double t0 = now_seconds();
            fill_input(s, x, b);
            rc = pare_exec_run(x, err);
            s->run_seconds += now_seconds() - t0;
            if (rc == PARE_OK)
                rc = eval_batch(s, e, pare_exec_output(x, 0), b, err);
        }
        goto done;
    }
    keep = pare_alloc((size_t)(g->n_nodes ? g->n_nodes : 1));
    remove = pare_alloc((size_t)(g->n_nodes ? g->n_nodes : 1));
    front = pare_alloc((size_t)(g->n_values ? g->n_values : 1));
    fv = pare_alloc((size_t)(g->n_values ? g->n_values : 1) * sizeof *fv);
    shapes = pare_calloc((size_t)(g->n_values ? g->n_values : 1), sizeof *shapes);
    if (!keep || !remove || !front || !fv || !shapes) {
        rc = pare_fail(err, PARE_ENOMEM, g->path, "out of memory cutting the model");
        goto done;
    }
    rc = group_cut(s, base, gi, keep, front, err);
    if (rc != PARE_OK)
        goto done;
    if (p->n_nodes != g->n_nodes || p->n_values < g->n_values) {
        rc = pare_fail(err, PARE_EINTERNAL, g->path, "the pruned copy changed its nodes");
        goto done;
    }
    /* the copy keeps g's value order for the values g has: mark the cut by name */
    for (int v = 0; v < g->n_values; v++) {
        int pv;
        if (!front[v])
            continue;
        pv = pare_graph_find_value(p, g->values[v].name);
        if (pv < 0 || !s->taps[v].data) {
            rc = pare_fail(err, PARE_EINTERNAL, g->path, "frontier value '%s' is missing",
                           g->values[v].name);
            goto done;
        }
        shapes[nf] = s->taps[v].shape;
        fv[nf++] = v;
    }
    for (int i = 0; i < p->n_inputs; i++)
        p->values[p->inputs[i]].is_input = false;
    {
        int *ni = pare_realloc(p->inputs, (size_t)(nf ? nf : 1) * sizeof *ni);
        if (!ni) {
            rc = pare_fail(err, PARE_ENOMEM, g->path, "out of memory cutting the model");
            goto done;
        }
        p->inputs = ni;
    }
    p->n_inputs = nf;
    for (int i = 0; i < nf; i++) {
        int pv = pare_graph_find_value(p, g->values[fv[i]].name);
        p->inputs[i] = pv;
        p->values[pv].is_input = true;
        p->values[pv].dtype = shapes[i].dtype;
    }
    for (int n = 0; n < g->n_nodes; n++)
        remove[n] = !keep[n];
    rc = pare_graph_remove_nodes(p, remove, err);
    if (rc != PARE_OK)
        goto done;
    opts.input_shapes = shapes;
    rc = pare_exec_new(p, &opts, &x, err);
    if (rc == PARE_OK && pare_exec_n_inputs(x) != nf)
        rc = pare_fail(err, PARE_EINTERNAL, g->path, "the cut model has %d inputs, not %d",
                       pare_exec_n_inputs(x), nf);
    for (int b = 0; rc == PARE_OK && b < n_batches; b++) {
        double t0 = now_seconds();
        for (int i = 0; i < nf; i++) {
            const tap *t = &s->taps[fv[i]];
            memcpy(pare_exec_input(x, i)->data, t->data + t->per_batch * (size_t)b, t->per_batch);
        }
        rc = pare_exec_run(x, err);
        s->run_seconds += now_seconds() - t0;
        if (rc == PARE_OK)
            rc = eval_batch(s, e, pare_exec_output(x, 0), b, err);
    }
done:
    pare_exec_free(x);
    pare_free(keep);
    pare_free(remove);
    pare_free(front);
    pare_free(fv);
    pare_free(shapes);
    return rc;
}

static pare_status prune_one(const sweep *s, int gi, double ratio, pare_graph **out, pare_error *err)
{
    double *ratios = pare_calloc((size_t)s->gs->n, sizeof *ratios);
    pare_status rc;
    if (!ratios)
        return pare_fail(err, PARE_ENOMEM, s->g->path, "out of memory");
    ratios[gi] = ratio;
    {
        pare_prune_opts po = {.criterion = s->crit, .seed = s->o->seed, .round_to = s->o->round_to};
        rc = pare_prune_apply(s->g, s->gs, ratios, &po, out, NULL, err);
    }
    pare_free(ratios);
    return rc;
}

pare_status pare_sens_recover(const pare_graph *g, pare_graph **pruned, const pare_sens_opts *o,
                              pare_error *err)
{
    const char *out_name = g->values[g->outputs[0]].name;
    pare_distill_pair pair = {.teacher = out_name, .student = out_name,
                              .loss = PARE_LOSS_SOFT_LABEL, .alpha = 1};
    pare_train_opts to;
    pare_graph *tuned = NULL;
    pare_status rc;

    if (o->recover_steps <= 0)
        return PARE_OK;
    if (!o->recover_data)
        return pare_fail(err, PARE_EINPUT, g->path,
                         "a recovery-aware sweep needs training data to fine-tune on");
    pare_train_opts_init(&to);
    to.train_data = o->recover_data;
    to.iterations = o->recover_steps;
    pare_optim_opts_init(&to.optim, PARE_OPTIM_ADAMW);
    to.optim.lr = o->recover_lr > 0 ? o->recover_lr : 1e-3;
    to.schedule.kind = PARE_SCHED_COSINE;
    to.schedule.lr = to.optim.lr;
    to.schedule.total_steps = o->recover_steps;
    to.schedule.end_lr = 0;
    to.keep_best = false;
    to.seed = o->seed;
    to.n_threads = o->n_threads;
    to.teacher = g;
    to.pairs = &pair;
    to.n_pairs = 1;
    to.temperature = 4;
    rc = pare_train(*pruned, &to, &tuned, NULL, err);
    if (rc != PARE_OK)
        return rc;
    pare_graph_free(*pruned);
    *pruned = tuned;
    return PARE_OK;
}

static pare_status load_data(sweep *s, const pare_dataset *ds, pare_error *err)
{
    int64_t sdims[PARE_MAX_DIMS];
    int sndim = pare_dataset_sample_shape(ds, sdims);
    const pare_graph *g = s->g;
    int in = -1, n_runtime = 0;
    pare_status rc = PARE_OK;

    for (int i = 0; i < g->n_inputs; i++)
        if (!g->values[g->inputs[i]].init) {
            in = in < 0 ? g->inputs[i] : in;
            n_runtime++;
        }
    if (n_runtime != 1)
        return pare_fail(err, PARE_EUNSUPPORTED, g->path,
                         "sensitivity feeds one input; the model has %d", n_runtime);
    s->count = pare_dataset_count(ds);
    if (s->count < 1)
        return pare_fail(err, PARE_EINPUT, pare_dataset_spec(ds), "the dataset is empty");
    s->sample_numel = pare_dataset_sample_numel(ds);
    s->nb = (int)((s->count + s->B - 1) / s->B);
    /* input shape: the model's, with the batch and the sample's dims */
    rc = pare_exec_batch_shape(g, in, s->B, sndim, sdims, &s->in_shape, err);
    if (rc != PARE_OK) {
        pare_error_prefix(err, "%s: ", pare_dataset_spec(ds));
        return rc;
    }
    s->inputs = pare_alloc((size_t)(s->nb * s->B * s->sample_numel) * sizeof(float));
    s->labels = pare_alloc((size_t)(s->nb * s->B) * sizeof(int64_t));
    if (!s->inputs || !s->labels)
        return pare_fail(err, PARE_ENOMEM, g->path, "out of memory loading %lld samples",
                         (long long)s->count);
    for (int b = 0; b < s->nb && rc == PARE_OK; b++) {
        pare_tensor x;
        pare_tensor_view(&x, PARE_F32, s->in_shape.ndim, s->in_shape.dims,
                         s->inputs + (size_t)b * (size_t)(s->B * s->sample_numel));
        rc = pare_dataset_fill(ds, (int64_t)b * s->B, valid_rows(s, b), &x,
                               s->labels + (size_t)b * (size_t)s->B, err);
    }
    return rc;
}

static bool report(const pare_sens_opts *o, int64_t done, int64_t total, double metric,
                   const char *detail)
{
    pare_progress_event ev = {.stage = "sensitivity", .done = done, .total = total,
                              .unit = "point", .loss = NAN, .metric = metric, .detail = detail};
    return pare_progress_report(o->progress, &ev);
}

static pare_status add_point(pare_sens_result *r, const pare_sens_point *pt)
{
    void *p = pare_realloc(r->points, (size_t)(r->n_points + 1) * sizeof *r->points);
    if (!p)
        return PARE_ENOMEM;
    r->points = p;
    r->points[r->n_points++] = *pt;
    return PARE_OK;
}

static const double default_ratios[] = {0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9};

typedef struct proxy_rank {
    double mse;
    int gi;
} proxy_rank;

static int cmp_proxy(const void *a, const void *b)
{
    const proxy_rank *x = a, *y = b;
    if (x->mse != y->mse)
        return x->mse < y->mse ? -1 : 1;
    return x->gi - y->gi;
}

pare_status pare_sens_run(const pare_graph *g, const pare_prune_groups *gs, const pare_dataset *ds,
                          const pare_sens_opts *o, pare_sens_result **out, pare_error *err)
{
    sweep s;
    cache c = {0};
    pare_sens_result *r = pare_calloc(1, sizeof *r);
    const double *ratios = o->ratios ? o->ratios : default_ratios;
    int nr = o->ratios ? o->n_ratios : 9;
    bool *sel = pare_calloc((size_t)(gs->n ? gs->n : 1), sizeof *sel);
    bool *tap_union = pare_calloc((size_t)(g->n_values ? g->n_values : 1), sizeof *tap_union);
    bool *keep = pare_alloc((size_t)(g->n_nodes ? g->n_nodes : 1));
    bool *front = pare_alloc((size_t)(g->n_values ? g->n_values : 1));
    proxy_rank *rank = pare_calloc((size_t)(gs->n ? gs->n : 1), sizeof *rank);
    pare_exec *base = NULL;
    char data_key[PARE_DATA_PATH_MAX + 64], key[4096], detail[300], crit_key[160];
    const char *metric_name;
    int64_t total = 0, done_pts = 0;
    bool union_mode = false;
    double t_start = now_seconds();
    pare_status rc = PARE_OK;

    *out = NULL;
    memset(&s, 0, sizeof s);
    s.g = g;
    s.gs = gs;
    s.o = o;
    s.crit = o->criterion ? o->criterion : "l1_norm";
    s.B = o->batch > 0 ? o->batch : 64;
    s.threads = o->n_threads;
    s.taps = pare_calloc((size_t)(g->n_values ? g->n_values : 1), sizeof *s.taps);
    if (!r || !sel || !tap_union || !keep || !front || !rank || !s.taps) {
        rc = pare_fail(err, PARE_ENOMEM, g->path, "out of memory starting the sweep");
        goto done;
    }
    /* arguments */
    if (nr < 1 || nr > PARE_SENS_MAX_RATIOS) {
        rc = pare_fail(err, PARE_EINPUT, g->path, "give 1 to %d ratios", PARE_SENS_MAX_RATIOS);
        goto done;
    }
    for (int i = 0; i < nr; i++)
        if (!(ratios[i] > 0 && ratios[i] < 1) || (i && ratios[i] <= ratios[i - 1])) {
            rc = pare_fail(err, PARE_EINPUT, g->path, "sensitivity ratio %g: ratios must be "
                           "ascending, in (0, 1)", ratios[i]);
            goto done;
        }
    {
        const pare_prune_criterion *crit;
        rc = pare_prune_criterion_find(s.crit, &crit, err);
        if (rc != PARE_OK)
            goto done;
    }
    for (int i = 0; i < gs->n; i++) {
        sel[i] = o->only ? o->only[i] : gs->groups[i].prunable;
        if (sel[i] && !gs->groups[i].prunable) {
            rc = pare_fail(err, PARE_EINPUT, g->path, "group '%s' cannot be pruned",
                           gs->groups[i].name);
            pare_error_hint(err, "%s", gs->groups[i].reason);
            goto done;
        }
    }
    s.metric = o->metric == PARE_SENS_AUTO
                   ? (pare_dataset_has_labels(ds) ? PARE_SENS_TOP1 : PARE_SENS_COSINE)
                   : o->metric;
    if (s.metric == PARE_SENS_TOP1 && !pare_dataset_has_labels(ds)) {
        rc = pare_fail(err, PARE_EINPUT, pare_dataset_spec(ds), "top-1 needs labels; the data has none");
        pare_error_hint(err, "use the cosine metric (output similarity to the unpruned model)");
        goto done;
    }
    metric_name = s.metric == PARE_SENS_TOP1 ? "top1" : "cosine";
    /* rounding changes what a ratio prunes: part of the key */
    if (o->round_to > 1)
        snprintf(crit_key, sizeof crit_key, "%s/round%d", s.crit, o->round_to);
    else
        snprintf(crit_key, sizeof crit_key, "%s", s.crit);
    if (o->recover_steps > 0) {
        size_t len = strlen(crit_key);
        if (!o->recover_data) { /* before any work */
            rc = pare_fail(err, PARE_EINPUT, g->path,
                           "a recovery-aware sweep needs training data to fine-tune on");
            goto done;
        }
        snprintf(crit_key + len, sizeof crit_key - len, "/ft%d@%g:%s", o->recover_steps,
                 o->recover_lr > 0 ? o->recover_lr : 1e-3, pare_dataset_spec(o->recover_data));
    }
    rc = load_data(&s, ds, err);
    if (rc != PARE_OK)
        goto done;
    snprintf(data_key, sizeof data_key, "%s:%lld", pare_dataset_spec(ds), (long long)s.count);
    {
        uint8_t *buf = NULL;
        size_t len = 0;
        rc = pare_graph_save_buffer(g, &buf, &len, err);
        if (rc != PARE_OK)
            goto done;
        r->model_hash = prune_fnv1a(1469598103934665603ull, buf, len);
        pare_free(buf);
    }
    if (o->cache_path) {
        rc = cache_read(&c, o->cache_path, false, err);
        if (rc != PARE_OK)
            goto done;
        c.append = fopen(o->cache_path, "a");
        if (!c.append) {
            rc = pare_fail(err, PARE_EIO, o->cache_path, "cannot write the sensitivity cache: %s",
                           strerror(errno));
            goto done;
        }
    }
    /* result skeleton */
    r->n_groups = gs->n;
    r->metric = s.metric;
    r->n_samples = s.count;
    r->group_names = pare_calloc((size_t)(gs->n ? gs->n : 1), sizeof *r->group_names);
    r->proxy = pare_alloc((size_t)(gs->n ? gs->n : 1) * sizeof *r->proxy);
    r->order = pare_alloc((size_t)(gs->n ? gs->n : 1) * sizeof *r->order);
    if (!r->group_names || !r->proxy || !r->order) {
        rc = pare_fail(err, PARE_ENOMEM, g->path, "out of memory");
        goto done;
    }
    for (int i = 0; i < gs->n; i++) {
        r->proxy[i] = NAN;
        r->group_names[i] = pare_strdup(gs->groups[i].name);
        if (!r->group_names[i]) {
            rc = pare_fail(err, PARE_ENOMEM, g->path, "out of memory");
            goto done;
        }
        if (sel[i])
            r->order[r->n_order++] = i;
    }
    rc = pare_prune_measure(g, &r->params, &r->flops, err);
    if (rc != PARE_OK)
        goto done;
    /* frontiers: stored for every group at once when they fit */
    rc = base_exec(&s, NULL, &base, err);
    if (rc != PARE_OK)
        goto done;
    if (!o->naive && o->recover_steps <= 0) {
        size_t bytes = 0, budget = o->max_tap_bytes ? o->max_tap_bytes : ((size_t)1 << 30);
        for (int k = 0; k < r->n_order && rc == PARE_OK; k++) {
            rc = group_cut(&s, base, r->order[k], keep, front, err);
            for (int v = 0; v < g->n_values; v++)
                tap_union[v] |= front[v];
        }
        if (rc != PARE_OK)
            goto done;
        for (int v = 0; v < g->n_values; v++) {
            const pare_tensor *sh = pare_exec_value_shape(base, v);
            if (tap_union[v] && sh)
                bytes += pare_tensor_nbytes(sh) * (size_t)s.nb;
        }
        union_mode = bytes <= budget;
    }
    rc = base_pass(&s, union_mode ? tap_union : NULL, true, err);
    if (rc != PARE_OK)
        goto done;
    {
        point_eval e;
        eval_init(&e);
        for (int b = 0; rc == PARE_OK && b < s.nb; b++) {
            pare_tensor y;
            pare_tensor_view(&y, PARE_F32, s.out_shape.ndim, s.out_shape.dims,
                             s.base_out + (size_t)(b * s.out_numel));
            rc = eval_batch(&s, &e, &y, b, err);
        }
        if (rc != PARE_OK)
            goto done;
        r->baseline = eval_metric(&s, &e);
    }
    if (c.append) {
        cache_key(key, sizeof key, r->model_hash, "<baseline>", 0, crit_key, data_key, metric_name);
        if (!cache_find(&c, key)) {
            fprintf(c.append, "%s\t%.17g\t0\t0\n", key, r->baseline);
            fflush(c.append);
            if (cache_add(&c, key, r->baseline, 0, 0) != PARE_OK) {
                rc = pare_fail(err, PARE_ENOMEM, g->path, "out of memory");
                goto done;
            }
        }
    }
    total = (int64_t)r->n_order * nr + (o->proxy_batches > 0 ? r->n_order : 0);
    /* cheap proxy: output error at the largest ratio on a few batches */
    if (o->proxy_batches > 0) {
        for (int k = 0; k < r->n_order && rc == PARE_OK; k++) {
            int gi = r->order[k];
            pare_graph *p = NULL;
            point_eval e;
            if (!union_mode) {
                rc = group_cut(&s, base, gi, keep, front, err);
                if (rc == PARE_OK)
                    rc = base_pass(&s, front, false, err);
            }
            if (rc == PARE_OK)
                rc = prune_one(&s, gi, ratios[nr - 1], &p, err);
            if (rc == PARE_OK)
                rc = run_point(&s, base, gi, p, o->proxy_batches < s.nb ? o->proxy_batches : s.nb,
                               &e, err);
            pare_graph_free(p);
            if (rc != PARE_OK)
                break;
            r->proxy[gi] = eval_mse(&e);
            rank[k].gi = gi;
            rank[k].mse = r->proxy[gi];
            snprintf(detail, sizeof detail, "proxy %s", gs->groups[gi].name);
            if (!report(o, ++done_pts, total, NAN, detail))
                rc = pare_fail(err, PARE_ECANCELED, g->path, "sensitivity sweep canceled");
        }
        if (rc != PARE_OK)
            goto done;
        qsort(rank, (size_t)r->n_order, sizeof *rank, cmp_proxy);
        for (int k = 0; k < r->n_order; k++)
            r->order[k] = rank[k].gi;
    }
    for (int k = 0; k < r->n_order && rc == PARE_OK; k++) {
        int gi = r->order[k];
        bool taps_ready = union_mode || o->naive || o->recover_steps > 0;
        for (int j = 0; j < nr && rc == PARE_OK; j++) {
            pare_sens_point pt = {.group = gi, .ratio = ratios[j]};
            const cache_entry *ce;
            cache_key(key, sizeof key, r->model_hash, gs->groups[gi].name, ratios[j], crit_key,
                      data_key, metric_name);
            ce = c.append ? cache_find(&c, key) : NULL;
            if (ce) {
                pt.metric = ce->value;
                pt.params_removed = ce->params;
                pt.flops_removed = ce->flops;
                pt.cached = true;
                r->from_cache++;
            } else {
                pare_graph *p = NULL;
                point_eval e;
                int64_t params = 0;
                double flops = 0;
                if (!taps_ready) {
                    rc = group_cut(&s, base, gi, keep, front, err);
                    if (rc == PARE_OK)
                        rc = base_pass(&s, front, false, err);
                    taps_ready = true;
                }
                if (rc == PARE_OK)
                    rc = prune_one(&s, gi, ratios[j], &p, err);
                if (rc == PARE_OK)
                    rc = pare_prune_measure(p, &params, &flops, err);
                if (rc == PARE_OK)
                    rc = pare_sens_recover(g, &p, o, err);
                if (rc == PARE_OK)
                    rc = run_point(&s, base, gi, p, s.nb, &e, err);
                pare_graph_free(p);
                if (rc != PARE_OK)
                    break;
                pt.metric = eval_metric(&s, &e);
                pt.params_removed = r->params - params;
                pt.flops_removed = r->flops - flops;
                r->computed++;
                if (c.append) {
                    fprintf(c.append, "%s\t%.17g\t%lld\t%.17g\n", key, pt.metric,
                            (long long)pt.params_removed, pt.flops_removed);
                    fflush(c.append);
                    if (cache_add(&c, key, pt.metric, pt.params_removed, pt.flops_removed) != PARE_OK) {
                        rc = pare_fail(err, PARE_ENOMEM, g->path, "out of memory");
                        break;
                    }
                }
            }
            pt.drop = r->baseline - pt.metric;
            if (add_point(r, &pt) != PARE_OK) {
                rc = pare_fail(err, PARE_ENOMEM, g->path, "out of memory");
                break;
            }
            if (o->on_point)
                o->on_point(o->on_point_user, r, &r->points[r->n_points - 1]);
            snprintf(detail, sizeof detail, "group %s ratio %.2f", gs->groups[gi].name, ratios[j]);
            if (!report(o, ++done_pts, total, pt.metric, detail)) {
                rc = pare_fail(err, PARE_ECANCELED, g->path, "sensitivity sweep canceled");
                break;
            }
            if (o->drop_cap > 0 && pt.drop > o->drop_cap) {
                done_pts += nr - 1 - j;  /* the rest of this group is skipped */
                break;
            }
        }
    }
done:
    if (r) {
        r->seconds = now_seconds() - t_start;
        r->run_seconds = s.run_seconds;
    }
    pare_exec_free(base);
    for (int v = 0; s.taps && v < g->n_values; v++)
        pare_free(s.taps[v].data);
    pare_free(s.taps);
    pare_free(s.inputs);
    pare_free(s.labels);
    pare_free(s.base_out);
    cache_fini(&c);
    pare_free(sel);
    pare_free(tap_union);
    pare_free(keep);
    pare_free(front);
    pare_free(rank);
    if (rc == PARE_OK)
        *out = r;
    else
        pare_sens_result_free(r);
    return rc;
}

void pare_sens_result_free(pare_sens_result *r)
{
    if (!r)
        return;
    for (int i = 0; r->group_names && i < r->n_groups; i++)
        pare_free(r->group_names[i]);
    pare_free(r->group_names);
    pare_free(r->points);
    pare_free(r->proxy);
    pare_free(r->order);
    pare_free(r);
}

static int cmp_point_ratio(const void *a, const void *b)
{
    const pare_sens_point *x = a, *y = b;
    return (x->ratio > y->ratio) - (x->ratio < y->ratio);
}

int pare_sens_group_points(const pare_sens_result *r, int gi, pare_sens_point *pts)
{
    int n = 0;
    for (int i = 0; i < r->n_points && n < PARE_SENS_MAX_RATIOS; i++)
        if (r->points[i].group == gi)
            pts[n++] = r->points[i];
    qsort(pts, (size_t)n, sizeof *pts, cmp_point_ratio);
    return n;
}

/* ---- outputs ------------------------------------------------------------------------ */

static void group_layers(const pare_prune_groups *gs, const pare_graph *g, int gi, char *buf,
                         size_t size)
{
    const pare_prune_group *grp = &gs->groups[gi];
    size_t len = 0;
    buf[0] = '\0';
    for (int p = 0; p < grp->n_producers && len < size; p++) {
        const pare_node *n = &g->nodes[grp->producers[p]];
        len += (size_t)snprintf(buf + len, size - len, "%s%s", p ? "|" : "",
                                n->name && n->name[0] ? n->name : n->op_type);
    }
}

static void csv_field(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

static pare_status finish_file(FILE *f, const char *tmp, const char *path, pare_error *err)
{
    if (ferror(f) | (fclose(f) != 0) || rename(tmp, path) != 0) {
        remove(tmp);
        return pare_fail(err, PARE_EIO, path, "cannot write: %s", strerror(errno));
    }
    return PARE_OK;
}

pare_status pare_sens_save_csv(const pare_sens_result *r, const pare_prune_groups *gs,
                               const pare_graph *g, const char *path, pare_error *err)
{
    char tmp[1200], layers[2048];
    FILE *f;
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    f = fopen(tmp, "w");
    if (!f)
        return pare_fail(err, PARE_EIO, path, "cannot write: %s", strerror(errno));
    fprintf(f, "group,layers,ratio,metric,drop,params_removed,flops_removed\n");
    for (int i = 0; i < r->n_points; i++) {
        const pare_sens_point *p = &r->points[i];
        group_layers(gs, g, p->group, layers, sizeof layers);
        csv_field(f, r->group_names[p->group]);
        fputc(',', f);
        csv_field(f, layers);
        fprintf(f, ",%.4f,%.6f,%.6f,%lld,%.0f\n", p->ratio, p->metric, p->drop,
                (long long)p->params_removed, p->flops_removed);
    }
    return finish_file(f, tmp, path, err);
}

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch < 0x20)
            fprintf(f, "\\u%04x", ch);
        else
            fputc(ch, f);
    }
    fputc('"', f);
}

static void json_num(FILE *f, double v)
{
    if (isfinite(v))
        fprintf(f, "%.17g", v);
    else
        fputs("null", f);
}

pare_status pare_sens_save_json(const pare_sens_result *r, const pare_prune_groups *gs,
                                const pare_graph *g, const char *path, pare_error *err)
{
    char tmp[1200], layers[2048];
    FILE *f;
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    f = fopen(tmp, "w");
    if (!f)
        return pare_fail(err, PARE_EIO, path, "cannot write: %s", strerror(errno));
    fprintf(f, "{\n  \"metric\": \"%s\",\n  \"baseline\": ",
            r->metric == PARE_SENS_TOP1 ? "top1" : "cosine");
    json_num(f, r->baseline);
    fprintf(f, ",\n  \"samples\": %lld,\n  \"params\": %lld,\n  \"flops\": ", (long long)r->n_samples,
            (long long)r->params);
    json_num(f, r->flops);
    fprintf(f, ",\n  \"seconds\": ");
    json_num(f, r->seconds);
    fprintf(f, ",\n  \"groups\": [");
    for (int k = 0; k < r->n_order; k++) {
        int gi = r->order[k];
        group_layers(gs, g, gi, layers, sizeof layers);
        fprintf(f, "%s\n    {\"group\": ", k ? "," : "");
        json_str(f, r->group_names[gi]);
        fprintf(f, ", \"layers\": ");
        json_str(f, layers);
        fprintf(f, ", \"channels\": %lld, \"proxy_mse\": ", (long long)gs->groups[gi].channels);
        json_num(f, r->proxy[gi]);
        fprintf(f, ", \"points\": [");
        for (int i = 0, n = 0; i < r->n_points; i++) {
            const pare_sens_point *p = &r->points[i];
            if (p->group != gi)
                continue;
            fprintf(f, "%s\n      {\"ratio\": %.4f, \"metric\": ", n++ ? "," : "", p->ratio);
            json_num(f, p->metric);
            fprintf(f, ", \"drop\": ");
            json_num(f, p->drop);
            fprintf(f, ", \"params_removed\": %lld, \"flops_removed\": ", (long long)p->params_removed);
            json_num(f, p->flops_removed);
            fprintf(f, "}");
        }
        fprintf(f, "]}");
    }
    fprintf(f, "\n  ]\n}\n");
    return finish_file(f, tmp, path, err);
}

/* ---- measured greedy selection ------------------------------------------------------- */

static pare_status measured_metric(sweep *s, const double *ratios, const pare_prune_opts *po,
                                   int n_batches, double *metric, double *flops, int64_t *params,
                                   pare_error *err)
{
    pare_graph *p = NULL;
    point_eval e;
    pare_status rc = pare_prune_apply(s->g, s->gs, ratios, po, &p, NULL, err);
    if (rc == PARE_OK)
        rc = pare_prune_measure(p, params, flops, err);
    if (rc == PARE_OK)
        rc = run_point(s, NULL, 0, p, n_batches, &e, err);
    if (rc == PARE_OK)
        *metric = eval_metric(s, &e);
    pare_graph_free(p);
    return rc;
}

pare_status pare_sens_select_measured(const pare_graph *g, const pare_prune_groups *gs,
                                      const pare_dataset *ds, const pare_sens_opts *sens,
                                      const pare_select_opts *opts, pare_select_result *out,
                                      pare_error *err)
{
    sweep s;
    pare_sens_opts local = *sens;
    int64_t *removed = pare_calloc((size_t)(gs->n ? gs->n : 1), sizeof *removed);
    double *cand = pare_calloc((size_t)(gs->n ? gs->n : 1), sizeof *cand);
    double step = opts->step > 0 ? opts->step : 0.05, base_metric, cur_metric, cur_amount;
    double flops0 = 0, amount0;
    int64_t params0 = 0, evals = 0;
    int nb;
    pare_status rc = PARE_OK;

    memset(out, 0, sizeof *out);
    memset(&s, 0, sizeof s);
    local.naive = true;
    s.g = g;
    s.gs = gs;
    s.o = &local;
    s.crit = opts->prune.criterion ? opts->prune.criterion : "l1_norm";
    s.B = sens->batch > 0 ? sens->batch : 64;
    s.threads = sens->n_threads;
    out->n_groups = gs->n;
    out->threshold = NAN;
    out->ratios = pare_calloc((size_t)(gs->n ? gs->n : 1), sizeof *out->ratios);
    if (!removed || !cand || !out->ratios) {
        rc = pare_fail(err, PARE_ENOMEM, g->path, "out of memory");
        goto done;
    }
    if (!(opts->target > 0 && opts->target < 1)) {
        rc = pare_fail(err, PARE_EINPUT, g->path, "reduction target %g is outside (0, 1)",
                       opts->target);
        goto done;
    }
    s.metric = sens->metric == PARE_SENS_AUTO
                   ? (pare_dataset_has_labels(ds) ? PARE_SENS_TOP1 : PARE_SENS_COSINE)
                   : sens->metric;
    if (s.metric == PARE_SENS_TOP1 && !pare_dataset_has_labels(ds)) {
        rc = pare_fail(err, PARE_EINPUT, pare_dataset_spec(ds), "top-1 needs labels; the data has none");
        goto done;
    }
    for (int i = 0; i < gs->n; i++)
        if (sens->only && sens->only[i] && !gs->groups[i].prunable) {
            rc = pare_fail(err, PARE_EINPUT, g->path, "group '%s' cannot be pruned",
                           gs->groups[i].name);
            pare_error_hint(err, "%s", gs->groups[i].reason);
            goto done;
        }
    rc = load_data(&s, ds, err);
    if (rc == PARE_OK)
        rc = base_pass(&s, NULL, true, err);
    if (rc == PARE_OK)
        rc = pare_prune_measure(g, &params0, &flops0, err);
    if (rc != PARE_OK)
        goto done;
    nb = opts->eval_batches > 0 && opts->eval_batches < s.nb ? opts->eval_batches : s.nb;
    {
        point_eval e;
        eval_init(&e);
        for (int b = 0; rc == PARE_OK && b < nb; b++) {
            pare_tensor y;
            pare_tensor_view(&y, PARE_F32, s.out_shape.ndim, s.out_shape.dims,
                             s.base_out + (size_t)(b * s.out_numel));
            rc = eval_batch(&s, &e, &y, b, err);
        }
        if (rc != PARE_OK)
            goto done;
        base_metric = cur_metric = eval_metric(&s, &e);
    }
    amount0 = opts->params ? (double)params0 : flops0;
    cur_amount = amount0;
    out->flops_before = flops0;
    out->params_before = params0;
    while (rc == PARE_OK && 1.0 - cur_amount / amount0 < opts->target) {
        int best = -1;
        double best_cost = INFINITY, best_metric = 0, best_amount = 0, cand_best = 0;
        for (int i = 0; i < gs->n && rc == PARE_OK; i++) {
            const pare_prune_group *grp = &gs->groups[i];
            int64_t k = (int64_t)llround(step * (double)grp->channels);
            double m = 0, f = 0, amount, cost;
            int64_t pa = 0;
            char detail[300];
            if (!grp->prunable || (sens->only && !sens->only[i]))
                continue;
            k = k < 1 ? 1 : k;
            if (opts->prune.round_to > 1 && k < opts->prune.round_to)
                k = opts->prune.round_to;  /* smaller steps would round away */
            if (removed[i] + k > grp->channels - 1)
                continue;
            memcpy(cand, out->ratios, (size_t)gs->n * sizeof *cand);
            cand[i] = (double)(removed[i] + k) / (double)grp->channels;
            rc = measured_metric(&s, cand, &opts->prune, nb, &m, &f, &pa, err);
            if (rc != PARE_OK)
                break;
            amount = opts->params ? (double)pa : f;
            snprintf(detail, sizeof detail, "try %s at %.2f", grp->name, cand[i]);
            if (!report(sens, ++evals, 0, m, detail)) {
                rc = pare_fail(err, PARE_ECANCELED, g->path, "ratio search canceled");
                break;
            }
            if (!(amount < cur_amount))
                continue;
            cost = (cur_metric - m) / (cur_amount - amount);
            if (cost < best_cost) {
                best = i;
                best_cost = cost;
                best_metric = m;
                best_amount = amount;
                cand_best = cand[i];
            }
        }
        if (rc != PARE_OK || best < 0)
            break;
        removed[best] = (int64_t)llround(cand_best * (double)gs->groups[best].channels);
        out->ratios[best] = (double)removed[best] / (double)gs->groups[best].channels;
        cur_metric = best_metric;
        cur_amount = best_amount;
    }
    if (rc != PARE_OK)
        goto done;
    out->met = 1.0 - cur_amount / amount0 >= opts->target - 1e-12;
    out->predicted_loss = base_metric - cur_metric;
    {
        pare_graph *p = NULL;
        rc = pare_prune_apply(g, gs, out->ratios, &opts->prune, &p, NULL, err);
        if (rc == PARE_OK)
            rc = pare_prune_measure(p, &out->params_after, &out->flops_after, err);
        pare_graph_free(p);
    }
done:
    pare_free(removed);
    pare_free(cand);
    pare_free(s.inputs);
    pare_free(s.labels);
    pare_free(s.base_out);
    if (rc != PARE_OK)
        pare_select_result_fini(out);
    return rc;
}
