/* The job queue (see jobs.h): one worker thread, jobs in submission order,
 * events through a mutex-protected ring that merges progress events. */
#include "jobs.h"

#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "app.h"
#include "plan.h"
#include "pare/alloc.h"
#include "pare/compress.h"
#include "pare/data.h"
#include "pare/exec.h"
#include "pare/metrics.h"
#include "pare/quant.h"

#define MAX_JOBS 256
#define MAX_EVENTS 256

typedef struct job {
    int id;
    jobs_fn fn;
    void *arg;
    bool cancel;
} job;

struct jobs {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    bool started, quit;
    job list[MAX_JOBS];       /* pending and running, in order */
    int n;
    int next_id;
    int running;              /* id, 0 none */
    jobs_event ev[MAX_EVENTS];
    int n_ev;
    int dropped;              /* events lost while the ring was full */
};

typedef struct run_ctx {
    jobs *q;
    int id;
    double t0;                /* job start */
    char stage[32];
    double stage_t0;          /* stage start */
    int64_t stage_done0;
} run_ctx;

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Under the lock. Progress events of the same job replace the last one. */
static void post(jobs *q, const jobs_event *e)
{
    if (e->kind == JOBS_EV_PROGRESS && q->n_ev > 0 && q->ev[q->n_ev - 1].kind == JOBS_EV_PROGRESS &&
        q->ev[q->n_ev - 1].id == e->id) {
        q->ev[q->n_ev - 1] = *e;
        return;
    }
    if (q->n_ev == MAX_EVENTS) {
        /* drop the oldest progress event; START/DONE are never dropped */
        for (int i = 0; i < q->n_ev; i++)
            if (q->ev[i].kind == JOBS_EV_PROGRESS) {
                memmove(&q->ev[i], &q->ev[i + 1], (size_t)(q->n_ev - i - 1) * sizeof q->ev[0]);
                q->n_ev--;
                q->dropped++;
                break;
            }
        if (q->n_ev == MAX_EVENTS)
            return; /* cannot happen: at most MAX_JOBS START/DONE pairs are pending */
    }
    q->ev[q->n_ev++] = *e;
}

static job *find(jobs *q, int id)
{
    for (int i = 0; i < q->n; i++)
        if (q->list[i].id == id)
            return &q->list[i];
    return NULL;
}

static bool on_progress(void *user, const pare_progress_event *pe)
{
    run_ctx *c = user;
    jobs_event e = {.id = c->id, .kind = JOBS_EV_PROGRESS, .loss = pe->loss, .metric = pe->metric};
    double t = now();
    bool go;

    snprintf(e.stage, sizeof e.stage, "%s", pe->stage ? pe->stage : "");
    snprintf(e.unit, sizeof e.unit, "%s", pe->unit ? pe->unit : "");
    snprintf(e.detail, sizeof e.detail, "%s", pe->detail ? pe->detail : "");
    if (strcmp(c->stage, e.stage) != 0 || pe->done < c->stage_done0) {
        snprintf(c->stage, sizeof c->stage, "%s", e.stage);
        c->stage_t0 = t;
        c->stage_done0 = pe->done;
    }
    e.done = pe->done;
    e.total = pe->total;
    e.rate = t > c->stage_t0 + 1e-3 ? (double)(pe->done - c->stage_done0) / (t - c->stage_t0) : 0;
    e.seconds = t - c->t0;
    pthread_mutex_lock(&c->q->mu);
    post(c->q, &e);
    go = !c->q->quit && !(find(c->q, c->id) && find(c->q, c->id)->cancel);
    pthread_mutex_unlock(&c->q->mu);
    return go;
}

static void *worker(void *arg)
{
    jobs *q = arg;

    pthread_mutex_lock(&q->mu);
    for (;;) {
        job *j = NULL;
        jobs_event e = {0};
        run_ctx c = {.q = q};
        pare_progress prog = {on_progress, &c};
        jobs_fn fn;
        void *farg;
        bool cancel;

        while (!q->quit && q->n == 0)
            pthread_cond_wait(&q->cv, &q->mu);
        if (q->n == 0)
            break; /* quit with nothing left */
        j = &q->list[0];
        fn = j->fn;
        farg = j->arg;
        cancel = j->cancel || q->quit;
        c.id = j->id;
        e.id = j->id;
        q->running = j->id;
        e.loss = e.metric = NAN;
        if (!cancel) {
            e.kind = JOBS_EV_START;
            post(q, &e);
            pthread_mutex_unlock(&q->mu);
            c.t0 = c.stage_t0 = now();
            e.status = fn(farg, &prog, &e.err);
            e.seconds = now() - c.t0;
            pthread_mutex_lock(&q->mu);
        } else {
            e.status = PARE_ECANCELED;
            pare_fail(&e.err, PARE_ECANCELED, NULL, "cancelled before it started");
        }
        e.kind = JOBS_EV_DONE;
        post(q, &e);
        q->running = 0;
        /* the running job is always list[0] */
        memmove(&q->list[0], &q->list[1], (size_t)(q->n - 1) * sizeof q->list[0]);
        q->n--;
    }
    pthread_mutex_unlock(&q->mu);
    return NULL;
}

jobs *jobs_new(void)
{
    jobs *q = pare_calloc(1, sizeof *q);

    if (!q)
        return NULL;
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->cv, NULL);
    q->next_id = 1;
    return q;
}

void jobs_free(jobs *q)
{
    if (!q)
        return;
    pthread_mutex_lock(&q->mu);
    q->quit = true;
    for (int i = 0; i < q->n; i++)
        q->list[i].cancel = true;
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
    if (q->started)
        pthread_join(q->thread, NULL);
    pthread_cond_destroy(&q->cv);
    pthread_mutex_destroy(&q->mu);
    pare_free(q);
}

int jobs_submit(jobs *q, jobs_fn fn, void *arg)
{
    int id = -1;

    pthread_mutex_lock(&q->mu);
    if (!q->started) {
        if (pthread_create(&q->thread, NULL, worker, q) == 0)
            q->started = true;
    }
    if (q->started && q->n < MAX_JOBS) {
        id = q->next_id++;
        q->list[q->n++] = (job){.id = id, .fn = fn, .arg = arg};
        pthread_cond_signal(&q->cv);
    }
    pthread_mutex_unlock(&q->mu);
    return id;
}

void jobs_cancel(jobs *q, int id)
{
    job *j;

    pthread_mutex_lock(&q->mu);
    j = find(q, id);
    if (j)
        j->cancel = true;
    pthread_mutex_unlock(&q->mu);
}

int jobs_poll(jobs *q, jobs_event *ev, int max)
{
    int n;

    pthread_mutex_lock(&q->mu);
    n = q->n_ev < max ? q->n_ev : max;
    memcpy(ev, q->ev, (size_t)n * sizeof *ev);
    memmove(q->ev, q->ev + n, (size_t)(q->n_ev - n) * sizeof *ev);
    q->n_ev -= n;
    pthread_mutex_unlock(&q->mu);
    return n;
}

bool jobs_busy(jobs *q)
{
    bool busy;

    if (!q)
        return false;
    pthread_mutex_lock(&q->mu);
    busy = q->n > 0 || q->n_ev > 0;
    pthread_mutex_unlock(&q->mu);
    return busy;
}

/* ==== the workbench's jobs: what runs on the worker, and the actions that
 * queue them and apply their events (UI thread) ==== */

/* A job's inputs (copied from the state when queued) and results. */
typedef struct work {
    int kind;                 /* JOB_* */
    pare_graph *g;            /* the model (a clone; owned) */
    pare_graph *planned;      /* the plan's pruned model (owned), NULL without ratios */
    char model_path[1024];    /* the state's, to match results to the open model */
    char data[256], data_dir[1024];
    long limit;
    pare_quant_opts qo;
    char **skip;              /* owned names, qo.skip_tensor_list points here */
    int n_skip;
    pare_quant_bits *tbits;   /* qo.tensor_bits; names owned */
    int n_tbits;
    pare_job *job;            /* JOB_COMPRESS (owned) */
    char save_dir[PATH_MAX];
    /* results */
    pare_prune_groups *gs;
    pare_sens_result *sens;
    bool top1;
    double before, after;
    int64_t params_before, params_after, samples;
    double flops_before, flops_after;
    int n_tensors, n_nodes;
    char **qnames;            /* PTQ: quantized weights (owned) and their SNR */
    double *qsnr;
    int n_q;
    pare_compress_report rep;
    /* JOB_SENS: the group labels the UI shows (owned), for progress details */
    char **labels;
    int n_labels;
    /* JOB_SENS: points so far, for the UI to show while the sweep runs.
       live_mu guards every live_* field: the worker appends, the UI copies. */
    pthread_mutex_t live_mu;
    bool has_live_mu;
    pare_sens_point *live;
    int n_live, cap_live;
    bool live_meta;           /* the fields below are set */
    pare_sens_metric live_metric;
    double live_baseline, live_flops;
    int64_t live_samples, live_params;
    int *live_order;          /* groups in sweep order (n_live_order) */
    int n_live_order;
    int seen;                 /* UI thread: points already copied */
    const pare_progress *outer; /* the job's progress (detail rewriting) */
    /* JOB_MEASURE */
    uint64_t plan_key;
    double predicted;
    /* JOB_QERR: a row per quantized tensor */
    char **ename;
    int *ekind;
    double *esqnr, *ecos;
    int n_e;
    /* JOB_QSENS: a row per quantizable node */
    char **snode;
    double *sdrop;            /* fp32 - only this node quantized, in points (x100) */
    int n_s;
    double sfp32, sfull;      /* x100 */
    bool stop1;
    /* JOB_ACT: the inspected node's first output over the samples */
    int act_node;
    char act_value[1024];
    float *abuf;
    int64_t anumel, acap;
    int andim;
    int64_t adims[PARE_MAX_DIMS];
} work;

static pare_status open_data(const work *w, int batch, pare_dataset **ds, pare_error *err)
{
    pare_data_opts o = {.limit = w->limit, .batch_size = batch,
                        .search_dir = w->data_dir[0] ? w->data_dir : NULL};

    return pare_dataset_open(w->data, &o, ds, err);
}

/* Top-1 (labels) or cosine similarity to ref's outputs of m on ds. */
static pare_status measure(const pare_graph *m, const pare_graph *ref, const pare_dataset *ds,
                           bool top1, const pare_progress *prog, const char *what, double *out,
                           pare_error *err)
{
    enum { BATCH = 64 };
    pare_exec *x = NULL, *xr = NULL;
    pare_exec_opts eo = {.batch = BATCH};
    int64_t count = pare_dataset_count(ds), labels[BATCH];
    pare_accuracy acc;
    pare_similarity sim;
    pare_status rc;

    pare_accuracy_init(&acc, 1);
    pare_similarity_init(&sim);
    rc = pare_exec_new(m, &eo, &x, err);
    if (rc == PARE_OK && !top1)
        rc = pare_exec_new(ref, &eo, &xr, err);
    for (int64_t pos = 0; rc == PARE_OK && pos < count; pos += BATCH) {
        int64_t n = count - pos < BATCH ? count - pos : BATCH;
        pare_progress_event ev = {.stage = "eval", .done = pos / BATCH, .unit = "batch",
                                  .total = (count + BATCH - 1) / BATCH, .loss = NAN,
                                  .metric = top1 ? pare_accuracy_top1(&acc) : NAN, .detail = what};

        if (!pare_progress_report(prog, &ev)) {
            rc = pare_fail(err, PARE_ECANCELED, NULL, "cancelled");
            break;
        }
        rc = pare_dataset_fill(ds, pos, n, pare_exec_input(x, 0), labels, err);
        if (rc == PARE_OK)
            rc = pare_exec_run(x, err);
        if (rc == PARE_OK && top1)
            rc = pare_accuracy_add(&acc, pare_exec_output(x, 0), labels, n, err);
        if (rc == PARE_OK && !top1) {
            rc = pare_dataset_fill(ds, pos, n, pare_exec_input(xr, 0), NULL, err);
            if (rc == PARE_OK)
                rc = pare_exec_run(xr, err);
            if (rc == PARE_OK)
                rc = pare_similarity_add(&sim, pare_exec_output(x, 0), pare_exec_output(xr, 0), n,
                                         err);
        }
    }
    if (rc == PARE_OK) {
        pare_similarity_result r;

        pare_similarity_get(&sim, &r);
        *out = top1 ? pare_accuracy_top1(&acc) : r.cosine_mean;
    }
    pare_exec_free(x);
    pare_exec_free(xr);
    return rc;
}

/* Worker: a sweep point into the live list (the UI copies it in act_tick). */
static void on_point(void *user, const pare_sens_result *r, const pare_sens_point *pt)
{
    work *w = user;

    pthread_mutex_lock(&w->live_mu);
    if (!w->live_meta) {
        w->live_order = pare_calloc((size_t)r->n_order + 1, sizeof *w->live_order);
        if (w->live_order) {
            memcpy(w->live_order, r->order, (size_t)r->n_order * sizeof *w->live_order);
            w->n_live_order = r->n_order;
        }
        w->live_metric = r->metric;
        w->live_baseline = r->baseline;
        w->live_samples = r->n_samples;
        w->live_params = r->params;
        w->live_flops = r->flops;
        w->live_meta = w->live_order != NULL;
    }
    if (w->n_live == w->cap_live) {
        int cap = w->cap_live ? 2 * w->cap_live : 64;
        pare_sens_point *grown = pare_realloc(w->live, (size_t)cap * sizeof *grown);

        if (grown) {
            w->live = grown;
            w->cap_live = cap;
        }
    }
    if (w->n_live < w->cap_live)
        w->live[w->n_live++] = *pt;
    pthread_mutex_unlock(&w->live_mu);
}

/* Worker: the sweep's progress with groups named as the screens name them
 * ("group /layer1/conv1/Conv ratio 0.20", not the group's value name). */
static bool sens_progress(void *user, const pare_progress_event *ev)
{
    work *w = user;
    pare_progress_event e = *ev;
    char detail[160];

    if (ev->detail && !strncmp(ev->detail, "group ", 6) && w->gs)
        for (int i = 0; i < w->gs->n && i < w->n_labels; i++) {
            size_t len = strlen(w->gs->groups[i].name);

            if (!strncmp(ev->detail + 6, w->gs->groups[i].name, len) &&
                !strncmp(ev->detail + 6 + len, " ratio", 6)) {
                snprintf(detail, sizeof detail, "group %s%s", w->labels[i], ev->detail + 6 + len);
                e.detail = detail;
                break;
            }
        }
    return pare_progress_report(w->outer, &e);
}

static pare_status run_sens(work *w, const pare_progress *prog, pare_error *err)
{
    pare_dataset *ds = NULL;
    pare_progress named = {sens_progress, w};
    pare_sens_opts so = {.progress = &named, .on_point = on_point, .on_point_user = w};
    pare_status rc = open_data(w, 64, &ds, err);

    w->outer = prog;

    if (rc == PARE_OK)
        rc = pare_prune_groups_find(w->g, &w->gs, err);
    if (rc == PARE_OK)
        rc = pare_sens_run(w->g, w->gs, ds, &so, &w->sens, err);
    pare_dataset_free(ds);
    return rc;
}

static pare_status run_eval(work *w, const pare_progress *prog, pare_error *err)
{
    pare_dataset *ds = NULL;
    const pare_graph *m = w->planned ? w->planned : w->g;
    pare_status rc = open_data(w, 64, &ds, err);

    if (rc == PARE_OK) {
        w->top1 = pare_dataset_has_labels(ds);
        w->samples = pare_dataset_count(ds);
        rc = measure(w->g, w->g, ds, w->top1, prog, "the model", &w->before, err);
    }
    if (rc == PARE_OK)
        rc = pare_prune_measure(w->g, &w->params_before, &w->flops_before, err);
    if (rc == PARE_OK)
        rc = pare_prune_measure(m, &w->params_after, &w->flops_after, err);
    if (rc == PARE_OK && w->planned)
        rc = measure(m, w->g, ds, w->top1, prog, "the planned model", &w->after, err);
    else
        w->after = w->before;
    pare_dataset_free(ds);
    return rc;
}

static pare_status run_ptq(work *w, const pare_progress *prog, pare_error *err)
{
    pare_dataset *ds = NULL;
    const pare_graph *m = w->planned ? w->planned : w->g;
    pare_quant_calib *calib = NULL;
    pare_quant_report *rep = NULL;
    pare_graph *q = NULL;
    pare_status rc = open_data(w, w->qo.batch_size, &ds, err);

    if (rc == PARE_OK) {
        w->top1 = pare_dataset_has_labels(ds);
        w->samples = pare_dataset_count(ds);
        rc = pare_quant_calibrate(m, ds, &w->qo, prog, &calib, err);
    }
    if (rc == PARE_OK)
        rc = pare_quant_build(m, calib, &w->qo, &q, &rep, err);
    if (rc == PARE_OK) {
        w->n_tensors = rep->n_tensors;
        w->n_nodes = rep->n_quantized_nodes;
        w->qnames = pare_calloc((size_t)rep->n_tensors + 1, sizeof *w->qnames);
        w->qsnr = pare_calloc((size_t)rep->n_tensors + 1, sizeof *w->qsnr);
        for (int i = 0; w->qnames && w->qsnr && i < rep->n_tensors; i++)
            if (rep->tensors[i].kind == PARE_QUANT_WEIGHT &&
                (w->qnames[w->n_q] = pare_strdup(rep->tensors[i].name)) != NULL)
                w->qsnr[w->n_q++] = rep->tensors[i].snr_db;
        rc = measure(w->g, w->g, ds, w->top1, prog, "the model", &w->before, err);
    }
    if (rc == PARE_OK)
        rc = measure(q, w->g, ds, w->top1, prog, "the quantized model", &w->after, err);
    if (rc == PARE_OK)
        rc = pare_prune_measure(w->g, &w->params_before, &w->flops_before, err);
    if (rc == PARE_OK)
        rc = pare_prune_measure(m, &w->params_after, &w->flops_after, err);
    pare_quant_report_free(rep);
    pare_quant_calib_free(calib);
    pare_graph_free(q);
    pare_dataset_free(ds);
    return rc;
}

/* The plan's drop without fine-tuning, on the data (and samples) the sweep
 * used: the unpruned model's metric minus the pruned model's. */
static pare_status run_measure(work *w, const pare_progress *prog, pare_error *err)
{
    pare_dataset *ds = NULL;
    pare_status rc = open_data(w, 64, &ds, err);

    if (rc == PARE_OK) {
        w->top1 = pare_dataset_has_labels(ds);
        w->samples = pare_dataset_count(ds);
        rc = measure(w->g, w->g, ds, w->top1, prog, "the unpruned model", &w->before, err);
    }
    if (rc == PARE_OK)
        rc = measure(w->planned, w->g, ds, w->top1, prog, "the pruned plan", &w->after, err);
    if (rc == PARE_OK)
        rc = pare_prune_measure(w->g, &w->params_before, &w->flops_before, err);
    if (rc == PARE_OK)
        rc = pare_prune_measure(w->planned, &w->params_after, &w->flops_after, err);
    pare_dataset_free(ds);
    return rc;
}

/* Per-tensor quantization error of the plan's PTQ settings: calibrate,
 * build the QDQ graph, pare_quant_error_measure. */
static pare_status run_qerr(work *w, const pare_progress *prog, pare_error *err)
{
    pare_dataset *ds = NULL;
    const pare_graph *m = w->planned ? w->planned : w->g;
    pare_quant_calib *calib = NULL;
    pare_quant_report *rep = NULL;
    pare_quant_error_table *t = NULL;
    pare_graph *q = NULL;
    pare_status rc = open_data(w, w->qo.batch_size, &ds, err);

    if (rc == PARE_OK)
        rc = pare_quant_calibrate(m, ds, &w->qo, prog, &calib, err);
    if (rc == PARE_OK)
        rc = pare_quant_build(m, calib, &w->qo, &q, &rep, err);
    if (rc == PARE_OK)
        rc = pare_quant_error_measure(m, q, rep, ds, &w->qo, 0, prog, &t, err);
    if (rc == PARE_OK) {
        w->samples = t->n_samples;
        w->ename = pare_calloc((size_t)t->n_rows + 1, sizeof *w->ename);
        w->ekind = pare_calloc((size_t)t->n_rows + 1, sizeof *w->ekind);
        w->esqnr = pare_calloc((size_t)t->n_rows + 1, sizeof *w->esqnr);
        w->ecos = pare_calloc((size_t)t->n_rows + 1, sizeof *w->ecos);
        if (!w->ename || !w->ekind || !w->esqnr || !w->ecos)
            rc = pare_fail(err, PARE_ENOMEM, NULL, "out of memory");
        for (int i = 0; rc == PARE_OK && i < t->n_rows; i++) {
            const pare_quant_error_row *row = &t->rows[i];

            if (row->kind == PARE_QUANT_ERR_OUTPUT)
                continue;
            w->ename[w->n_e] = pare_strdup(row->name);
            if (!w->ename[w->n_e]) {
                rc = pare_fail(err, PARE_ENOMEM, NULL, "out of memory");
                break;
            }
            w->ekind[w->n_e] = row->kind;
            w->esqnr[w->n_e] = row->sqnr_db;
            w->ecos[w->n_e++] = row->cosine;
        }
    }
    pare_quant_error_table_free(t);
    pare_quant_report_free(rep);
    pare_quant_calib_free(calib);
    pare_graph_free(q);
    pare_dataset_free(ds);
    return rc;
}

/* The inspected layer's output on the samples, concatenated along the batch. */
static pare_status run_act(work *w, const pare_progress *prog, pare_error *err)
{
    enum { BATCH = 64 };
    pare_dataset *ds = NULL;
    pare_exec *x = NULL;
    const char *taps[1] = {w->act_value};
    pare_exec_opts eo = {.batch = BATCH, .taps = taps, .n_taps = 1};
    int64_t count = 0;
    pare_status rc = open_data(w, BATCH, &ds, err);

    if (rc == PARE_OK) {
        count = pare_dataset_count(ds);
        rc = pare_exec_new(w->g, &eo, &x, err);
    }
    for (int64_t pos = 0; rc == PARE_OK && pos < count; pos += BATCH) {
        int64_t n = count - pos < BATCH ? count - pos : BATCH, per;
        const pare_tensor *t;
        pare_progress_event ev = {.stage = "run", .done = pos / BATCH, .unit = "batch",
                                  .total = (count + BATCH - 1) / BATCH, .loss = NAN,
                                  .metric = NAN, .detail = w->act_value};

        if (!pare_progress_report(prog, &ev)) {
            rc = pare_fail(err, PARE_ECANCELED, NULL, "cancelled");
            break;
        }
        rc = pare_dataset_fill(ds, pos, n, pare_exec_input(x, 0), NULL, err);
        if (rc == PARE_OK)
            rc = pare_exec_run(x, err);
        if (rc != PARE_OK)
            break;
        t = pare_exec_value(x, w->act_value);
        if (!t || t->dtype != PARE_F32 || t->ndim < 1 || t->dims[0] != BATCH) {
            rc = pare_fail(err, PARE_EUNSUPPORTED, w->act_value,
                           "'%s' is not a float tensor with the batch first", w->act_value);
            break;
        }
        per = pare_tensor_numel(t) / BATCH;
        if (w->anumel + n * per > w->acap) {
            int64_t cap = (w->anumel + n * per) * 2;
            float *grown = pare_realloc(w->abuf, (size_t)cap * sizeof *grown);
            if (!grown) {
                rc = pare_fail(err, PARE_ENOMEM, NULL, "out of memory");
                break;
            }
            w->abuf = grown;
            w->acap = cap;
        }
        memcpy(w->abuf + w->anumel, pare_tensor_f32(t), (size_t)(n * per) * sizeof *w->abuf);
        w->anumel += n * per;
        w->andim = t->ndim;
        memcpy(w->adims, t->dims, sizeof w->adims);
    }
    w->adims[0] = count;
    w->samples = count;
    pare_exec_free(x);
    pare_dataset_free(ds);
    return rc;
}

static pare_status run_qsens(work *w, const pare_progress *prog, pare_error *err)
{
    pare_dataset *ds = NULL;
    const pare_graph *m = w->planned ? w->planned : w->g;
    pare_quant_sens_opts so = {.quant = &w->qo, .metric = PARE_QUANT_SENS_AUTO, .batch = 64,
                               .progress = prog};
    pare_quant_sens_result *r = NULL;
    pare_status rc = open_data(w, 64, &ds, err);

    if (rc == PARE_OK)
        rc = pare_quant_sens_run(m, ds, &so, &r, err);
    if (rc == PARE_OK) {
        w->samples = r->n_samples;
        w->stop1 = r->metric == PARE_QUANT_SENS_TOP1;
        w->sfp32 = 100 * r->fp32;
        w->sfull = 100 * r->full;
        w->snode = pare_calloc((size_t)r->n_layers + 1, sizeof *w->snode);
        w->sdrop = pare_calloc((size_t)r->n_layers + 1, sizeof *w->sdrop);
        if (!w->snode || !w->sdrop)
            rc = pare_fail(err, PARE_ENOMEM, NULL, "out of memory");
        /* worst first */
        for (int k = 0; rc == PARE_OK && k < r->n_layers; k++) {
            const pare_quant_sens_layer *L = &r->layers[r->by_only[k]];

            w->snode[w->n_s] = pare_strdup(L->node);
            if (!w->snode[w->n_s]) {
                rc = pare_fail(err, PARE_ENOMEM, NULL, "out of memory");
                break;
            }
            w->sdrop[w->n_s++] = 100 * (r->fp32 - L->only);
        }
    }
    pare_quant_sens_result_free(r);
    pare_dataset_free(ds);
    return rc;
}

static pare_status run_compress(work *w, const pare_progress *prog, pare_error *err)
{
    pare_compress_opts o = {.force = true, .progress = prog,
                            .search_dir = w->data_dir[0] ? w->data_dir : NULL};

    return pare_compress_run(w->job, &o, &w->rep, err);
}

static pare_status run_work(void *arg, const pare_progress *prog, pare_error *err)
{
    work *w = arg;

    switch (w->kind) {
    case JOB_SENS: return run_sens(w, prog, err);
    case JOB_EVAL: return run_eval(w, prog, err);
    case JOB_PTQ: return run_ptq(w, prog, err);
    case JOB_MEASURE: return run_measure(w, prog, err);
    case JOB_QERR: return run_qerr(w, prog, err);
    case JOB_QSENS: return run_qsens(w, prog, err);
    case JOB_ACT: return run_act(w, prog, err);
    default: return run_compress(w, prog, err);
    }
}

void plan_job_work_free(app_job *j)
{
    work *w = j->work;

    if (!w)
        return;
    pare_graph_free(w->g);
    pare_graph_free(w->planned);
    for (int i = 0; i < w->n_skip; i++)
        pare_free(w->skip[i]);
    pare_free(w->skip);
    for (int i = 0; i < w->n_tbits; i++)
        pare_free((char *)w->tbits[i].name);
    pare_free(w->tbits);
    pare_job_free(w->job);
    for (int i = 0; i < w->n_q; i++)
        pare_free(w->qnames[i]);
    pare_free(w->qnames);
    pare_free(w->qsnr);
    for (int i = 0; i < w->n_s; i++)
        pare_free(w->snode[i]);
    pare_free(w->snode);
    pare_free(w->sdrop);
    pare_free(w->abuf);
    pare_prune_groups_free(w->gs);
    pare_sens_result_free(w->sens);
    if (w->kind == JOB_COMPRESS)
        pare_compress_report_fini(&w->rep);
    for (int i = 0; i < w->n_labels; i++)
        pare_free(w->labels[i]);
    pare_free(w->labels);
    if (w->has_live_mu)
        pthread_mutex_destroy(&w->live_mu);
    pare_free(w->live);
    pare_free(w->live_order);
    for (int i = 0; i < w->n_e; i++)
        pare_free(w->ename[i]);
    pare_free(w->ename);
    pare_free(w->ekind);
    pare_free(w->esqnr);
    pare_free(w->ecos);
    pare_free(w);
    j->work = NULL;
}

bool app_jobs_busy(const app_state *s)
{
    for (int i = 0; i < s->n_jobs; i++)
        if (s->jobs[i].state == JS_QUEUED || s->jobs[i].state == JS_RUNNING)
            return true;
    return false;
}

static app_job *job_find(app_state *s, int id)
{
    for (int i = 0; i < s->n_jobs; i++)
        if (s->jobs[i].id == id)
            return &s->jobs[i];
    return NULL;
}

/* Queues w (taking it) under a name; false on failure (w freed). */
static bool submit(app_state *s, work *w, const char *name)
{
    app_job tmp = {.work = w};
    app_job *j;
    int id;

    if (!s->queue)
        s->queue = jobs_new();
    if (s->n_jobs == s->cap_jobs) {
        int cap = s->cap_jobs ? 2 * s->cap_jobs : 16;
        app_job *grown = pare_realloc(s->jobs, (size_t)cap * sizeof *grown);

        if (grown) {
            s->jobs = grown;
            s->cap_jobs = cap;
        }
    }
    id = s->queue && s->n_jobs < s->cap_jobs ? jobs_submit(s->queue, run_work, w) : -1;
    if (id < 0) {
        pare_error err = {0};

        plan_job_work_free(&tmp);
        pare_fail(&err, PARE_ENOMEM, name, "cannot start the job");
        app_log_error(s, &err);
        return false;
    }
    j = &s->jobs[s->n_jobs++];
    memset(j, 0, sizeof *j);
    j->id = id;
    j->kind = w->kind;
    j->state = JS_QUEUED;
    j->work = w;
    j->loss = j->metric = NAN;
    snprintf(j->name, sizeof j->name, "%s", name);
    app_log(s, true, "queued job %d: %s (Jobs screen: 7)", id, name);
    return true;
}

static work *work_new(app_state *s, int kind)
{
    work *w;
    pare_error err = {0};

    if (!s->graph)
        return NULL;
    if (!s->data_spec[0]) {
        app_log(s, true, "no data set: start with --data SPEC or type :data fashion-mnist:test");
        s->message_is_error = true;
        return NULL;
    }
    w = pare_calloc(1, sizeof *w);
    if (!w || pare_graph_clone(s->graph, &w->g, &err) != PARE_OK) {
        pare_fail(&err, PARE_ENOMEM, s->model_name, "out of memory");
        app_log_error(s, &err);
        pare_free(w);
        return NULL;
    }
    w->kind = kind;
    snprintf(w->model_path, sizeof w->model_path, "%s", s->model_path);
    snprintf(w->data, sizeof w->data, "%s", s->data_spec);
    snprintf(w->data_dir, sizeof w->data_dir, "%s", s->data_dir);
    w->limit = s->limit;
    return w;
}

int act_sens_run(app_state *s)
{
    work *w = work_new(s, JOB_SENS);
    app_job tmp = {.work = w};
    char name[96], label[64];
    int ng = s->groups ? s->groups->n : 0;

    if (!w)
        return APP_FX_REDRAW;
    w->labels = pare_calloc((size_t)ng + 1, sizeof *w->labels);
    for (int i = 0; w->labels && i < ng; i++)
        if ((w->labels[w->n_labels] = pare_strdup(app_group_label(s, i, label, sizeof label))) != NULL)
            w->n_labels++;
    if (!w->labels || w->n_labels < ng || pthread_mutex_init(&w->live_mu, NULL) != 0) {
        pare_error err = {0};

        plan_job_work_free(&tmp);
        pare_fail(&err, PARE_ENOMEM, s->model_name, "out of memory");
        app_log_error(s, &err);
        return APP_FX_REDRAW;
    }
    w->has_live_mu = true;
    snprintf(name, sizeof name, "sensitivity sweep, %ld samples", s->limit);
    submit(s, w, name);
    return APP_FX_REDRAW;
}

/* <model>.plan.out in the working directory: x writes there */
static void compress_dir(const app_state *s, char *out, size_t size)
{
    const char *dot = strrchr(s->model_name, '.');

    snprintf(out, size, "%.*s.plan.out",
             dot ? (int)(dot - s->model_name) > 200 ? 200 : (int)(dot - s->model_name) : 200,
             s->model_name);
}

int act_job_start(app_state *s, int kind)
{
    work *w = work_new(s, kind);
    pare_error err = {0};
    app_job tmp = {0};
    char name[96];
    bool ratios = false;

    if (!w)
        return APP_FX_REDRAW;
    tmp.work = w;
    for (int i = 0; s->groups && i < s->groups->n; i++)
        ratios |= s->ratio[i] > 0;
    if (kind == JOB_MEASURE && !ratios) {
        app_log(s, true, "no ratios in the plan yet: nothing to measure (+, digits or f set them)");
        s->message_is_error = true;
        plan_job_work_free(&tmp);
        return APP_FX_REDRAW;
    }
    if (kind == JOB_ACT) {
        const pare_node *nd = s->inspect_node >= 0 ? &s->graph->nodes[s->inspect_node] : NULL;

        if (!nd || nd->n_outputs < 1 || nd->outputs[0] < 0) {
            plan_job_work_free(&tmp);
            return APP_FX_NONE;
        }
        w->act_node = s->inspect_node;
        snprintf(w->act_value, sizeof w->act_value, "%s", s->graph->values[nd->outputs[0]].name);
    }
    if (kind == JOB_MEASURE && s->sens && s->sens_data[0]) {
        /* the sweep's data and samples: its drops and this one compare */
        snprintf(w->data, sizeof w->data, "%s", s->sens_data);
        w->limit = s->sens_limit;
    }
    if (kind == JOB_MEASURE) {
        w->plan_key = app_plan_key(s);
        w->predicted = s->plan_loss;
    }
    if (kind != JOB_COMPRESS && kind != JOB_ACT && ratios &&
        pare_prune_apply(s->graph, s->groups, s->ratio, NULL, &w->planned, NULL, &err) != PARE_OK) {
        app_log_error(s, &err);
        plan_job_work_free(&tmp);
        return APP_FX_REDRAW;
    }
    if (kind == JOB_PTQ || kind == JOB_QERR || kind == JOB_QSENS) {
        pare_quant_opts_init(&w->qo);
        w->qo.weight_bits = w->qo.activation_bits = s->quant_bits;
        w->qo.algo = (pare_quant_algo)s->quant_algo;
        w->skip = pare_calloc((size_t)s->n_qt + 1, sizeof *w->skip);
        for (int i = 0; w->skip && i < s->n_qt; i++)
            if (s->qt[i].skip)
                w->skip[w->n_skip++] = pare_strdup(s->graph->values[s->qt[i].value].name);
        w->qo.skip_tensor_list = (const char *const *)w->skip;
        w->qo.n_skip_tensor_list = w->n_skip;
        w->tbits = pare_calloc((size_t)s->n_qt + 1, sizeof *w->tbits);
        for (int i = 0; w->tbits && i < s->n_qt; i++)
            if (s->qt[i].bits && !s->qt[i].skip) {
                char *tname = pare_strdup(s->graph->values[s->qt[i].value].name);
                if (!tname)
                    break;
                w->tbits[w->n_tbits].name = tname;
                w->tbits[w->n_tbits++].bits = s->qt[i].bits;
            }
        w->qo.tensor_bits = w->tbits;
        w->qo.n_tensor_bits = w->n_tbits;
        if (!w->skip || !w->tbits) {
            plan_job_work_free(&tmp);
            return APP_FX_NONE;
        }
    }
    if (kind == JOB_COMPRESS) {
        /* not written: names save_dir <model>.plan.out, as `s` would */
        char path[320];

        compress_dir(s, path, sizeof path);
        snprintf(path + strlen(path) - 4, sizeof path - (strlen(path) - 4), ".yaml");
        if (plan_to_job(s, path, &w->job, &err) != PARE_OK) {
            app_log_error(s, &err);
            plan_job_work_free(&tmp);
            return APP_FX_REDRAW;
        }
        snprintf(w->save_dir, sizeof w->save_dir, "%s", w->job->global.save_dir);
    }
    snprintf(name, sizeof name, "%s%s, %ld samples",
             kind == JOB_EVAL ? "eval" : kind == JOB_PTQ ? "PTQ" : kind == JOB_MEASURE ? "measure"
             : kind == JOB_QERR ? "quant error table" : kind == JOB_QSENS ? "quant sensitivity"
             : kind == JOB_ACT ? "layer output statistics" : "compress: the plan's stages",
             kind != JOB_COMPRESS && kind != JOB_ACT && ratios ? " of the pruned plan" : "", w->limit);
    if (submit(s, w, name) && kind == JOB_MEASURE)
        s->plan_measure_job = s->jobs[s->n_jobs - 1].id;
    return APP_FX_REDRAW;
}

int act_job_compress(app_state *s, bool replace)
{
    char dir[300];
    struct stat st;

    if (!s->graph)
        return APP_FX_NONE;
    compress_dir(s, dir, sizeof dir);
    if (!replace && s->data_spec[0] && stat(dir, &st) == 0) {
        s->prompt = PROMPT_OVERWRITE;
        snprintf(s->prompt_buf, sizeof s->prompt_buf, "%.200s", dir);
        return APP_FX_REDRAW;
    }
    return act_job_start(s, JOB_COMPRESS);
}

int act_job_cancel(app_state *s)
{
    app_job *j;

    if (!s->n_jobs)
        return APP_FX_NONE;
    j = &s->jobs[s->jobs_cursor];
    if (j->state != JS_QUEUED && j->state != JS_RUNNING) {
        app_log(s, true, "job %d is not running", j->id);
        return APP_FX_REDRAW;
    }
    jobs_cancel(s->queue, j->id);
    app_log(s, true, "cancelling job %d", j->id);
    return APP_FX_REDRAW;
}

int act_job_detail(app_state *s)
{
    if (!s->n_jobs)
        return APP_FX_NONE;
    s->job_detail = !s->job_detail;
    return APP_FX_REDRAW;
}

static void result_line(app_job *j, const char *fmt, ...) PARE_PRINTF(2, 3);
static void result_line(app_job *j, const char *fmt, ...)
{
    va_list ap;

    if (j->n_result >= APP_JOB_LINES)
        return;
    va_start(ap, fmt);
    vsnprintf(j->result[j->n_result++], sizeof j->result[0], fmt, ap);
    va_end(ap);
}

static void before_after(app_job *j, bool top1, double before, double after, int64_t pb,
                         int64_t pa, double fb, double fa)
{
    char a[32], b[32];

    result_line(j, "%-16s %14s %14s %9s", "", "before", "after", "change");
    if (top1)
        result_line(j, "%-16s %12.2f %% %12.2f %% %+8.2f", "top-1", 100 * before, 100 * after,
                    100 * (after - before));
    else
        result_line(j, "%-16s %14.4f %14.4f %+9.4f", "cosine", before, after, after - before);
    result_line(j, "%-16s %14s %14s %+8.1f%%", "params", grid_fmt_count(pb, a, sizeof a),
                grid_fmt_count(pa, b, sizeof b), pb ? 100.0 * (double)(pa - pb) / (double)pb : 0);
    result_line(j, "%-16s %14s %14s %+8.1f%%", "FLOPs", grid_fmt_si(fb, a, sizeof a),
                grid_fmt_si(fa, b, sizeof b), fb > 0 ? 100.0 * (fa - fb) / fb : 0);
}

static void sens_live_drop(app_state *s, const app_job *j);

/* A finished job's results into its lines (and, for a sweep, into the state). */
static void job_finish(app_state *s, app_job *j)
{
    work *w = j->work;

    bool same = !strcmp(w->model_path, s->model_path);

    switch (j->kind) {
    case JOB_SENS:
        if (same && s->groups && w->sens->n_groups == s->groups->n) {
            if (s->sens_live_job == j->id) {
                pare_sens_result_free(s->sens_prev); /* replaced by this sweep */
                s->sens_prev = NULL;
                s->sens_live_job = 0;
            } else
                s->sens_cursor = s->sens_top = 0;
            pare_sens_result_free(s->sens);
            s->sens = w->sens;
            w->sens = NULL;
            snprintf(s->sens_data, sizeof s->sens_data, "%s", w->data);
            s->sens_limit = w->limit;
            plan_sens_rows(s);
            plan_update_totals(s);
            result_line(j, "baseline %s %.4f on %lld samples", s->sens->metric == PARE_SENS_TOP1
                        ? "top-1" : "cosine", s->sens->baseline, (long long)s->sens->n_samples);
            result_line(j, "%lld points in %.1f s: see the Sens screen", (long long)s->sens->computed,
                        s->sens->seconds);
        } else {
            sens_live_drop(s, j);
            result_line(j, "the sweep's groups do not match the open model");
        }
        break;
    case JOB_EVAL:
    case JOB_PTQ:
        result_line(j, "%s on %lld samples of %s", j->kind == JOB_EVAL ? "evaluation" : "PTQ",
                    (long long)w->samples, w->data);
        before_after(j, w->top1, w->before, w->after, w->params_before, w->params_after,
                     w->flops_before, w->flops_after);
        if (j->kind == JOB_PTQ) {
            result_line(j, "%d tensors quantized in %d nodes, %d bits, %s, %d skipped", w->n_tensors,
                        w->n_nodes, w->qo.weight_bits, pare_quant_algo_name(w->qo.algo), w->n_skip);
            for (int i = 0; same && i < s->n_qt; i++)
                for (int k = 0; k < w->n_q; k++)
                    if (!strcmp(w->qnames[k], s->graph->values[s->qt[i].value].name))
                        s->qt[i].snr_db = w->qsnr[k];
            if (same && w->n_q)
                result_line(j, "weight SNR per tensor: see the Quant screen");
        }
        break;
    case JOB_MEASURE:
        result_line(j, "the plan's drop on %lld samples of %s (the sweep's)", (long long)w->samples,
                    w->data);
        if (w->top1)
            result_line(j, "measured (no fine-tune) %.2f pts; predicted %.2f pts (sum of single-group "
                        "drops)", 100 * (w->before - w->after), 100 * w->predicted);
        else
            result_line(j, "measured (no fine-tune) %.4f; predicted %.4f (sum of single-group drops)",
                        w->before - w->after, w->predicted);
        before_after(j, w->top1, w->before, w->after, w->params_before, w->params_after,
                     w->flops_before, w->flops_after);
        if (same) {
            s->plan_measured = w->before - w->after;
            s->plan_measured_top1 = w->top1;
            s->plan_measured_key = w->plan_key;
        }
        break;
    case JOB_QERR:
        result_line(j, "quantization error of %d tensors on %lld samples, %d bits, %s%s", w->n_e,
                    (long long)w->samples, w->qo.weight_bits, pare_quant_algo_name(w->qo.algo),
                    w->planned ? ", the pruned plan" : "");
        for (int k = 0; k < w->n_e && k < 4; k++)
            result_line(j, "%-8s %-40.40s SQNR %6.1f dB  cos %.4f",
                        w->ekind[k] == PARE_QUANT_ERR_WEIGHT ? "weight" : "act", w->ename[k], w->esqnr[k],
                        w->ecos[k]);
        if (!same)
            break;
        for (int i = 0; i < s->n_qt; i++) {
            s->qt[i].err_sqnr = s->qt[i].err_cos = NAN;
            for (int k = 0; k < w->n_e; k++)
                if ((w->ekind[k] == PARE_QUANT_ERR_WEIGHT) == s->qt[i].is_weight &&
                    !strcmp(w->ename[k], s->graph->values[s->qt[i].value].name)) {
                    s->qt[i].err_sqnr = w->esqnr[k];
                    s->qt[i].err_cos = w->ecos[k];
                }
        }
        s->qerr_bits = w->qo.weight_bits;
        s->qerr_algo = (int)w->qo.algo;
        s->qerr_planned = w->planned != NULL;
        result_line(j, "(worst first; every tensor: see the Quant screen)");
        break;
    case JOB_ACT:
        result_line(j, "output %s of %s on %lld samples", w->act_value,
                    s->graph && w->act_node < s->graph->n_nodes ? s->graph->nodes[w->act_node].name : "?",
                    (long long)w->samples);
        if (!same || !w->anumel)
            break;
        {
            pare_tensor t;
            app_weight a;

            pare_tensor_view(&t, PARE_F32, w->andim, w->adims, w->abuf);
            if (!app_tensor_stats(&a, w->act_value, -1, &t, true)) {
                pare_free(a.name);
                pare_free(a.l1);
                break;
            }
            pare_free(s->act.name);
            pare_free(s->act.l1);
            s->act = a;
            s->act_node = w->act_node;
            result_line(j, "min %.4g  max %.4g  mean %.4g  std %.4g  zeros %.1f%% (see Inspect)", a.min,
                        a.max, a.mean, a.std, 100 * a.sparsity);
        }
        break;
    case JOB_QSENS:
        result_line(j, "quantization sensitivity of %d layers on %lld samples, %d bits, %s%s", w->n_s,
                    (long long)w->samples, w->qo.weight_bits, pare_quant_algo_name(w->qo.algo),
                    w->planned ? ", the pruned plan" : "");
        result_line(j, "%s: fp32 %.2f, everything quantized %.2f", w->stop1 ? "top-1 %" : "cosine x100",
                    w->sfp32, w->sfull);
        for (int k = 0; k < w->n_s && k < 4; k++)
            result_line(j, "only %-40.40s quantized: %+.2f", w->snode[k], -w->sdrop[k]);
        if (!same)
            break;
        for (int i = 0; i < s->n_qt; i++) {
            const char *node = s->graph->nodes[s->qt[i].node].name;

            s->qt[i].qsens_drop = NAN;
            for (int k = 0; node && k < w->n_s; k++)
                if (!strcmp(w->snode[k], node))
                    s->qt[i].qsens_drop = w->sdrop[k];
        }
        s->qsens_bits = w->qo.weight_bits;
        s->qsens_algo = (int)w->qo.algo;
        result_line(j, "(worst first; every layer: the drop column on the Quant screen)");
        break;
    default:
        result_line(j, "wrote %s", w->rep.save_dir);
        before_after(j, w->rep.has_metric && w->rep.metric_name && !strcmp(w->rep.metric_name, "top1"),
                     w->rep.metric_before, w->rep.metric_after, w->rep.params_before,
                     w->rep.params_after, w->rep.flops_before, w->rep.flops_after);
        for (int i = 0; i < w->rep.n_stages; i++)
            result_line(j, "stage %s: %s (%.1f s)", w->rep.stages[i].name, w->rep.stages[i].detail,
                        w->rep.stages[i].seconds);
        break;
    }
}

/* UI thread: the running sweep's new points into s->sens (the table before
 * it waits in s->sens_prev until the sweep ends). */
static void sens_live(app_state *s, app_job *j)
{
    work *w = j->work;
    pare_sens_result *r;
    int n;

    if (!w || j->kind != JOB_SENS || !w->has_live_mu || !s->groups || strcmp(w->model_path, s->model_path))
        return;
    pthread_mutex_lock(&w->live_mu);
    n = w->n_live;
    if (n > w->seen && w->live_meta) {
        if (s->sens_live_job != j->id) {
            /* the first point: a fresh table */
            r = pare_calloc(1, sizeof *r);
            if (r)
                r->order = pare_calloc((size_t)w->n_live_order + 1, sizeof *r->order);
            if (!r || !r->order) {
                pare_sens_result_free(r);
                pthread_mutex_unlock(&w->live_mu);
                return;
            }
            r->n_groups = s->groups->n;
            r->metric = w->live_metric;
            r->baseline = w->live_baseline;
            r->n_samples = w->live_samples;
            r->params = w->live_params;
            r->flops = w->live_flops;
            if (s->sens_live_job == 0) {
                pare_sens_result_free(s->sens_prev);
                s->sens_prev = s->sens;
            } else
                pare_sens_result_free(s->sens); /* an earlier live sweep's */
            s->sens = r;
            s->sens_live_job = j->id;
            s->sens_cursor = s->sens_top = 0;
            s->n_sens_rows = 0;
        }
        r = s->sens;
        {
            pare_sens_point *grown = pare_realloc(r->points, (size_t)(r->n_points + n - w->seen) *
                                                                 sizeof *grown);

            if (!grown) {
                pthread_mutex_unlock(&w->live_mu);
                return;
            }
            r->points = grown;
        }
        for (int k = w->seen; k < n; k++) {
            const pare_sens_point *pt = &w->live[k];
            bool known = false;

            r->points[r->n_points++] = *pt;
            r->computed++;
            for (int i = 0; i < r->n_order && !known; i++)
                known = r->order[i] == pt->group;
            if (!known && r->n_order < w->n_live_order)
                r->order[r->n_order++] = pt->group;
            w->seen = k + 1;
        }
        plan_sens_rows(s);
        s->plan_loss = NAN; /* partial: recomputed when the sweep ends */
    }
    pthread_mutex_unlock(&w->live_mu);
}

/* UI thread: a sweep that did not finish gives the table before it back. */
static void sens_live_drop(app_state *s, const app_job *j)
{
    if (s->sens_live_job != j->id)
        return;
    pare_sens_result_free(s->sens);
    s->sens = s->sens_prev;
    s->sens_prev = NULL;
    s->sens_live_job = 0;
    s->n_sens_rows = 0;
    s->sens_cursor = s->sens_top = 0;
    plan_sens_rows(s);
    plan_update_totals(s);
}

int act_tick(app_state *s)
{
    jobs_event ev[64];
    int n, fx = APP_FX_NONE;
    double t = app_now();

    /* elapsed and ETA tick between events: redraw when a shown second changes */
    for (int i = 0; i < s->n_jobs; i++) {
        app_job *j = &s->jobs[i];

        if (j->state == JS_RUNNING && j->t_start > 0) {
            double sec = t - j->t_start;

            if ((long)sec != (long)j->seconds)
                fx = APP_FX_REDRAW;
            j->seconds = sec;
        }
    }
    if (!s->queue)
        return fx;
    while ((n = jobs_poll(s->queue, ev, 64)) > 0)
        for (int i = 0; i < n; i++) {
            app_job *j = job_find(s, ev[i].id);

            if (!j)
                continue;
            fx = APP_FX_REDRAW;
            if (ev[i].kind == JOBS_EV_START) {
                j->state = JS_RUNNING;
                j->t_start = t;
                continue;
            }
            j->seconds = ev[i].seconds;
            if (j->t_start <= 0 || ev[i].kind == JOBS_EV_PROGRESS)
                j->t_start = t - ev[i].seconds; /* the worker's clock */
            if (ev[i].kind == JOBS_EV_PROGRESS) {
                snprintf(j->stage, sizeof j->stage, "%s", ev[i].stage);
                snprintf(j->unit, sizeof j->unit, "%s", ev[i].unit);
                snprintf(j->detail, sizeof j->detail, "%s", ev[i].detail);
                j->done = ev[i].done;
                j->total = ev[i].total;
                j->rate = ev[i].rate;
                j->loss = ev[i].loss;
                j->metric = ev[i].metric;
                j->event_seconds = ev[i].seconds;
                sens_live(s, j);
                continue;
            }
            if (ev[i].status == PARE_OK) {
                j->state = JS_DONE;
                if (j->total)
                    j->done = j->total;
                job_finish(s, j);
                app_log(s, true, "job %d done: %s (%.1f s)", j->id, j->name, j->seconds);
            } else if (ev[i].status == PARE_ECANCELED) {
                j->state = JS_CANCELED;
                sens_live_drop(s, j);
                app_log(s, true, "job %d cancelled: %s", j->id, j->name);
            } else {
                char buf[1024];

                j->state = JS_FAILED;
                sens_live_drop(s, j);
                pare_error_format(&ev[i].err, buf, sizeof buf);
                snprintf(j->error, sizeof j->error, "%.*s", (int)sizeof j->error - 1, buf);
                app_log(s, true, "error: job %d failed: %s", j->id, buf);
                s->message_is_error = true;
            }
            if (j->id == s->plan_measure_job)
                s->plan_measure_job = 0;
            plan_job_work_free(j);
        }
    return fx;
}
