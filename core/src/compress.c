/* The job runner: pare_compress_run (see pare/compress.h). Stages in ACT's
 * order: structured prune -> masks -> fine-tune / distil / QAT -> PTQ
 * (+ HPO) -> eval; outputs through a temporary directory renamed at the end. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "compress_internal.h"
#include "pare/alloc.h"
#include "pare/exec.h"
#include "pare/metrics.h"
#include "pare/sensitivity.h"
#include "pare/train.h"
#include "qat.h"

/* ---- small helpers ------------------------------------------------------------ */

bool compress_event(compress_ctx *c, const char *stage, int64_t done, int64_t total,
                    const char *unit, double metric, const char *detail)
{
    pare_progress_event ev = {.stage = stage, .done = done, .total = total, .unit = unit,
                              .loss = NAN, .metric = metric, .detail = detail};
    if (!pare_progress_report(c->opts->progress, &ev))
        c->canceled = true;
    return !c->canceled;
}

void compress_stage(compress_ctx *c, const char *name, double seconds, const char *fmt, ...)
{
    pare_compress_stage *s;
    va_list ap;

    if (c->rep->n_stages >= PARE_COMPRESS_MAX_STAGES)
        return;
    s = &c->rep->stages[c->rep->n_stages++];
    snprintf(s->name, sizeof s->name, "%s", name);
    va_start(ap, fmt);
    vsnprintf(s->detail, sizeof s->detail, fmt, ap);
    va_end(ap);
    s->seconds = seconds;
}

pare_status compress_warn(compress_ctx *c, pare_error *err, const char *fmt, ...)
{
    char buf[512], **w;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    w = pare_realloc(c->rep->warnings, (size_t)(c->rep->n_warnings + 1) * sizeof *w);
    if (!w)
        return pare_fail(err, PARE_ENOMEM, NULL, "out of memory");
    c->rep->warnings = w;
    w[c->rep->n_warnings] = pare_strdup(buf);
    if (!w[c->rep->n_warnings])
        return pare_fail(err, PARE_ENOMEM, NULL, "out of memory");
    c->rep->n_warnings++;
    return PARE_OK;
}

const char *compress_where(const compress_ctx *c, const pare_job_meta *m, char *buf, size_t size)
{
    if (m && m->line > 0)
        snprintf(buf, size, "%s:%d:%d", c->where, m->line, m->col);
    else
        snprintf(buf, size, "%s", c->where);
    return buf;
}

/* err->where = w (truncated to fit). */
void compress_set_where(pare_error *err, const char *w)
{
    size_t n = strlen(w);
    if (n >= sizeof err->where)
        n = sizeof err->where - 1;
    memmove(err->where, w, n);
    err->where[n] = '\0';
}

/* base/p unless p is absolute or base empty. */
void compress_resolve_path(const char *base, const char *p, char *out, size_t size)
{
    size_t nb = 0, np, k = 0;

    out[0] = '\0';
    if (!p)
        return;
    if (p[0] != '/' && base && base[0] && strcmp(base, "."))
        nb = strlen(base);
    if (nb + 2 > size)
        nb = 0;
    np = strlen(p);
    if (nb + np + 2 > size)   /* too long: keep what fits */
        np = size > nb + 2 ? size - nb - 2 : 0;
    if (nb) {
        memcpy(out, base, nb);
        out[nb] = '/';
        k = nb + 1;
    }
    memcpy(out + k, p, np);
    out[k + np] = '\0';
}

/* File names in idx:/npy:/npz: specs resolved against base. */
static pare_status resolve_spec(const compress_ctx *c, const char *spec, char *out, size_t size,
                                pare_error *err)
{
    pare_data_spec s;
    char a[PARE_DATA_PATH_MAX], b[PARE_DATA_PATH_MAX], where[256];
    pare_status rc = pare_data_spec_parse(spec, &s, err);

    if (rc != PARE_OK) {
        compress_set_where(err, compress_where(c, &c->job->global.meta, where, sizeof where));
        pare_error_prefix(err, "Global data spec '%s': ", spec);
        return rc;
    }
    if (s.kind == PARE_DATA_FASHION_MNIST) {
        snprintf(out, size, "%s", spec);
        return PARE_OK;
    }
    compress_resolve_path(c->opts->base_dir, s.path, a, sizeof a);
    compress_resolve_path(c->opts->base_dir, s.labels, b, sizeof b);
    snprintf(out, size, "%s:%s%s%s",
             s.kind == PARE_DATA_IDX ? "idx" : s.kind == PARE_DATA_NPY ? "npy" : "npz", a,
             s.labels[0] ? "," : "", s.labels[0] ? b : "");
    return PARE_OK;
}

/* True when path lies inside dir (both resolved). */
static bool path_inside(const char *path, const char *dir)
{
    char rp[PATH_MAX], rd[PATH_MAX];
    size_t n;

    if (!realpath(path, rp) || !realpath(dir, rd))
        return false;
    n = strlen(rd);
    return !strncmp(rp, rd, n) && (rp[n] == '/' || rp[n] == '\0' || (n == 1 && rd[0] == '/'));
}

static bool dir_exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

static int64_t file_size(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 ? (int64_t)st.st_size : -1;
}

/* ---- data and evaluation ----------------------------------------------------- */

pare_status compress_open_data(compress_ctx *c, const char *spec, int batch, bool shuffle,
                             int64_t limit, pare_dataset **out, pare_error *err)
{
    pare_data_opts d;
    char where[256];

    memset(&d, 0, sizeof d);
    d.batch_size = batch;
    d.shuffle = shuffle;
    d.seed = (uint64_t)c->job->global.seed;
    d.limit = limit;
    d.search_dir = c->opts->search_dir;
    d.where = compress_where(c, &c->job->global.meta, where, sizeof where);
    return pare_dataset_open(spec, &d, out, err);
}

/* Position of the runtime input fed with data (Global.input_name). */
static pare_status find_input(compress_ctx *c, pare_error *err)
{
    const pare_graph *g = c->orig;
    const char *want = c->job->global.input_name;
    const char *names[64];
    int k = 0, n_names = 0;
    char where[256];

    c->input = -1;
    for (int i = 0; i < g->n_inputs; i++) {
        const pare_value *v = &g->values[g->inputs[i]];
        if (v->init)
            continue;
        if (n_names < 64)
            names[n_names++] = v->name;
        if (c->input < 0 && (!want || !strcmp(want, v->name)))
            c->input = k;
        k++;
    }
    if (c->input >= 0 && (want || k == 1))
        return PARE_OK;
    compress_where(c, &c->job->global.meta, where, sizeof where);
    if (want) {
        const char *guess = pare_closest_word(want, names, n_names);
        pare_fail(err, PARE_EINPUT, where, "Global.input_name '%s' is not an input of '%s'", want,
                  c->model_path);
        if (guess)
            pare_error_hint(err, "did you mean '%s'?", guess);
        return PARE_EINPUT;
    }
    pare_fail(err, PARE_EINPUT, where, "'%s' has %d inputs; set Global.input_name", c->model_path, k);
    return PARE_EINPUT;
}

/* A plan of g for batch nb with the data input shaped from the dataset. */
static pare_status eval_exec(const compress_ctx *c, const pare_graph *g, int nb, pare_exec **out,
                             pare_error *err)
{
    pare_tensor shapes[16];
    pare_exec_opts eo;
    int64_t sdims[PARE_MAX_DIMS];
    int sndim = pare_dataset_sample_shape(c->eval_ds, sdims), k = 0;

    memset(&eo, 0, sizeof eo);
    for (int i = 0; i < g->n_inputs && k < 16; i++) {
        const pare_value *v = &g->values[g->inputs[i]];
        if (v->init)
            continue;
        pare_tensor_view(&shapes[k], v->dtype, v->ndim, v->dims, NULL);
        if (v->ndim >= 1 && shapes[k].dims[0] < 0)
            shapes[k].dims[0] = nb;
        for (int d = 1; d < v->ndim; d++)
            if (shapes[k].dims[d] < 0 && v->ndim == sndim + 1)
                shapes[k].dims[d] = sdims[d - 1];
        k++;
    }
    eo.batch = nb;
    eo.n_threads = c->threads;
    eo.input_shapes = shapes;
    return pare_exec_new(g, &eo, out, err);
}

pare_status compress_eval(compress_ctx *c, const pare_graph *g, double *metric, pare_error *err)
{
    pare_job_metric m = c->job->global.metric;
    bool sim = m == PARE_JOB_METRIC_COSINE || m == PARE_JOB_METRIC_SNR;
    int64_t total = pare_dataset_count(c->eval_ds), *labels = NULL;
    pare_exec *x = NULL, *xr = NULL;
    pare_accuracy acc;
    pare_similarity s;
    pare_similarity_result sr;
    int batch = c->batch;
    pare_status rc;

    *metric = NAN;
    {
        const pare_value *v = &g->values[g->inputs[0]];
        for (int i = 0; i < g->n_inputs; i++)
            if (!g->values[g->inputs[i]].init) {
                v = &g->values[g->inputs[i]];
                break;
            }
        if (v->ndim >= 1 && v->dims[0] > 0)
            batch = (int)v->dims[0];   /* a fixed batch dim */
    }
    labels = pare_calloc((size_t)batch, sizeof *labels);
    if (!labels)
        return pare_fail(err, PARE_ENOMEM, NULL, "out of memory");
    pare_accuracy_init(&acc, 5);
    pare_similarity_init(&s);
    rc = eval_exec(c, g, batch, &x, err);
    if (rc == PARE_OK && sim)
        rc = eval_exec(c, c->orig, batch, &xr, err);
    for (int64_t pos = 0; pos < total && rc == PARE_OK; pos += batch) {
        int64_t nb = total - pos < batch ? total - pos : batch;
        rc = pare_dataset_fill(c->eval_ds, pos, nb, pare_exec_input(x, c->input), labels, err);
        if (rc == PARE_OK)
            rc = pare_exec_run(x, err);
        if (rc == PARE_OK && !sim)
            rc = pare_accuracy_add(&acc, pare_exec_output(x, 0), labels, nb, err);
        if (rc == PARE_OK && sim) {
            rc = pare_dataset_fill(c->eval_ds, pos, nb, pare_exec_input(xr, c->input), NULL, err);
            if (rc == PARE_OK)
                rc = pare_exec_run(xr, err);
            if (rc == PARE_OK)
                rc = pare_similarity_add(&s, pare_exec_output(x, 0), pare_exec_output(xr, 0), nb,
                                         err);
        }
        if (rc == PARE_OK && !compress_event(c, "eval", pos + nb, total, "sample", NAN, NULL))
            rc = pare_fail(err, PARE_ECANCELED, NULL, "evaluation canceled");
    }
    if (rc == PARE_OK) {
        pare_similarity_get(&s, &sr);
        *metric = m == PARE_JOB_METRIC_TOP1 ? pare_accuracy_top1(&acc)
                : m == PARE_JOB_METRIC_TOP5 ? pare_accuracy_topk(&acc)
                : m == PARE_JOB_METRIC_COSINE ? sr.cosine_mean : sr.snr_db;
    }
    pare_exec_free(x);
    pare_exec_free(xr);
    pare_free(labels);
    return rc;
}

static const char *metric_name(pare_job_metric m)
{
    static const char *const names[] = {"top1", "top5", "cosine", "snr"};
    return (int)m >= 0 && (int)m < 4 ? names[m] : "top1";
}

/* HyperParameterOptimization searches PTQ settings: it implies QuantPost
 * (with its defaults when the section is absent), as in ACT. */
static bool wants_ptq(const pare_job *j)
{
    return j->quant_post.meta.present || j->hpo.meta.present;
}

/* ---- training -------------------------------------------------------------------- */

static bool hook_forward(void *user, pare_exec *x, pare_graph *g, const pare_train_step_info *info)
{
    compress_ctx *c = user;
    if (c->qat && qat_observe(c->qat, x, g, &c->hook_err) != PARE_OK)
        return false;
    (void)info;
    return true;
}

/* After each update: masks back on the float weights (behind their
 * QuantizeLinear under QAT), GMP's schedule, then the QAT scales from the
 * masked weights (a zero stays zero through Q/DQ: weight zero points are 0)
 * and from the PACT clip values the optimizer moved. */
static bool hook_step(void *user, pare_exec *x, pare_graph *g, const pare_train_step_info *info)
{
    compress_ctx *c = user;
    (void)x;
    (void)info;
    for (int i = 0; i < c->n_masks; i++)
        if (pare_masks_apply(c->masks[i], g, &c->hook_err) != PARE_OK)
            return false;
    if (c->has_gmp && pare_gmp_step(&c->gmp, g, NULL, &c->hook_err) != PARE_OK)
        return false;
    if (c->qat && (qat_pact_sync(c->qat, g, &c->hook_err) != PARE_OK ||
                   qat_update_weights(c->qat, g, &c->hook_err) != PARE_OK))
        return false;
    return true;
}

static bool train_progress(void *user, const pare_progress_event *ev)
{
    compress_ctx *c = user;
    if (!pare_progress_report(c->opts->progress, ev))
        c->canceled = true;
    return !c->canceled;
}

static pare_loss_kind loss_kind(pare_job_loss l)
{
    switch (l) {
    case PARE_JOB_LOSS_L2:
    case PARE_JOB_LOSS_MSE: return PARE_LOSS_L2;
    case PARE_JOB_LOSS_COSINE: return PARE_LOSS_COSINE;
    case PARE_JOB_LOSS_FSP: return PARE_LOSS_FSP;
    default: return PARE_LOSS_SOFT_LABEL;
    }
}

/* Distillation pairs from `pairs`, `node` or the first outputs. */
static pare_status distill_pairs(compress_ctx *c, const pare_graph *student,
                                 const pare_graph *teacher, pare_distill_pair **out, int *n,
                                 pare_error *err)
{
    const pare_job_distill *d = &c->job->distill;
    pare_distill_pair *p;
    int np;
    char where[256];

    compress_where(c, &d->meta, where, sizeof where);
    if (d->pairs.n)
        np = d->pairs.n;
    else if (d->node.n)
        np = d->teacher_model ? d->node.n / 2 : d->node.n;
    else
        np = 1;
    p = pare_calloc((size_t)np, sizeof *p);
    if (!p)
        return pare_fail(err, PARE_ENOMEM, NULL, "out of memory");
    for (int i = 0; i < np; i++) {
        pare_job_loss l;
        if (d->pairs.n) {
            p[i].teacher = d->pairs.v[i].teacher;
            p[i].student = d->pairs.v[i].student;
            l = d->pairs.v[i].loss;
            p[i].alpha = d->pairs.v[i].alpha;
        } else {
            if (d->node.n && d->teacher_model) {
                p[i].teacher = d->node.v[2 * i];
                p[i].student = d->node.v[2 * i + 1];
            } else if (d->node.n) {
                p[i].teacher = p[i].student = d->node.v[i];
            } else {
                p[i].teacher = teacher->values[teacher->outputs[0]].name;
                p[i].student = student->values[student->outputs[0]].name;
            }
            l = d->loss.n ? (pare_job_loss)d->loss.v[d->loss.n == 1 ? 0 : i] : PARE_JOB_LOSS_SOFT_LABEL;
            p[i].alpha = d->alpha.n ? d->alpha.v[d->alpha.n == 1 ? 0 : i] : 1.0;
        }
        p[i].loss = loss_kind(l);
        if (p[i].loss == PARE_LOSS_FSP) {
            pare_free(p);
            pare_fail(err, PARE_EUNSUPPORTED, where, "Distillation loss 'fsp' needs two layers per "
                      "side, which a job cannot name yet");
            pare_error_hint(err, "use soft_label, l2 or cosine");
            return PARE_EUNSUPPORTED;
        }
    }
    *out = p;
    *n = np;
    return PARE_OK;
}

static pare_status fill_optim(const pare_job_train *t, pare_train_opts *o)
{
    const pare_job_optimizer *op = &t->optimizer;
    const pare_job_lr *lr = &t->learning_rate;

    switch (op->type) {
    case PARE_JOB_OPT_SGD:
        pare_optim_opts_init(&o->optim, PARE_OPTIM_SGD);
        break;
    case PARE_JOB_OPT_MOMENTUM:
        pare_optim_opts_init(&o->optim, PARE_OPTIM_SGD);
        o->optim.momentum = op->momentum;
        o->optim.nesterov = op->use_nesterov;
        break;
    case PARE_JOB_OPT_ADAM:
    case PARE_JOB_OPT_ADAMW:
        pare_optim_opts_init(&o->optim, op->type == PARE_JOB_OPT_ADAM ? PARE_OPTIM_ADAM
                                                                       : PARE_OPTIM_ADAMW);
        o->optim.beta1 = op->beta1;
        o->optim.beta2 = op->beta2;
        o->optim.eps = op->epsilon;
        break;
    }
    o->optim.lr = lr->learning_rate;
    o->optim.weight_decay = t->weight_decay;
    o->optim.grad_clip_norm = t->grad_clip_norm;
    switch (lr->type) {
    case PARE_JOB_LR_PIECEWISE:
        pare_schedule_init(&o->schedule, PARE_SCHED_PIECEWISE, lr->learning_rate);
        o->schedule.n_boundaries = lr->boundaries.n < PARE_SCHED_MAX_PIECES ? lr->boundaries.n
                                                                            : PARE_SCHED_MAX_PIECES;
        for (int i = 0; i < o->schedule.n_boundaries; i++)
            o->schedule.boundaries[i] = (int64_t)lr->boundaries.v[i];
        for (int i = 0; i <= o->schedule.n_boundaries && i < lr->values.n; i++)
            o->schedule.values[i] = lr->values.v[i];
        break;
    case PARE_JOB_LR_COSINE:
        pare_schedule_init(&o->schedule, PARE_SCHED_COSINE, lr->learning_rate);
        o->schedule.total_steps = lr->T_max;
        break;
    default:
        pare_schedule_init(&o->schedule, PARE_SCHED_CONSTANT, lr->learning_rate);
        break;
    }
    o->schedule.warmup_steps = lr->warmup_steps;
    o->schedule.warmup_start_lr = lr->warmup_start_lr;
    return PARE_OK;
}

static pare_status stage_train(compress_ctx *c, bool dry, pare_error *err)
{
    const pare_job *j = c->job;
    const pare_job_train *t = &j->train;
    pare_train_opts o;
    pare_train_result res;
    pare_dataset *train_ds = NULL;
    pare_distill_pair *pairs = NULL;
    int n_pairs = 0;
    pare_graph *out = NULL, *qg = NULL;
    pare_progress prog = {.report = train_progress, .user = c};
    double t0 = compress_now();
    bool distill = j->distill.meta.present, qat = j->quant_aware.meta.present;
    const pare_graph *teacher = c->teacher ? c->teacher : c->orig;
    pare_status rc = PARE_OK;

    if (dry) {
        /* names are checked against the student as it is now */
        if (distill)
            rc = distill_pairs(c, c->cur, teacher, &pairs, &n_pairs, err);
        if (rc != PARE_OK)
            return rc;
        compress_stage(c, qat ? "qat" : "train", 0, "planned: %s%s", qat ? "quantization-aware "
                       "training" : "fine-tuning", distill ? " with distillation" : "");
        pare_free(pairs);
        return PARE_OK;
    }
    rc = compress_open_data(c, c->data_spec, (int)t->batch_size, true, 0, &train_ds, err);
    if (rc == PARE_OK && qat) {
        pare_dataset *calib = NULL;
        double tq = compress_now();
        rc = compress_open_data(c, c->data_spec, (int)t->batch_size, false, 0, &calib, err);
        if (rc == PARE_OK)
            rc = qat_prepare(c->cur, calib, &j->quant_aware, (int)t->batch_size, 4, c->threads,
                             c->opts->progress, &qg, &c->qat, err);
        pare_dataset_free(calib);
        if (rc == PARE_OK) {
            compress_stage(c, "calibrate", compress_now() - tq, "QAT initial ranges: %d activations, "
                           "%d nodes quantized", qat_n_activations(c->qat),
                           qat_n_quantized_nodes(c->qat));
            pare_graph_free(c->cur);
            c->cur = qg;
        } else if (c->canceled) {
            rc = pare_fail(err, PARE_ECANCELED, NULL, "canceled during calibration");
        }
    }
    /* pairs borrow names from the student: take them from the one trained */
    if (rc == PARE_OK && distill)
        rc = distill_pairs(c, c->cur, teacher, &pairs, &n_pairs, err);
    if (rc == PARE_OK) {
        pare_train_opts_init(&o);
        o.train_data = train_ds;
        o.eval_data = c->eval_ds;
        o.input_name = j->global.input_name;
        o.epochs = t->epochs;
        o.iterations = t->train_iter;
        if (o.epochs <= 0 && o.iterations <= 0)
            o.epochs = 1;
        fill_optim(t, &o);
        o.label_smoothing = (float)t->label_smoothing;
        o.task_weight = distill ? j->distill.task_weight : NAN;
        o.eval_every = t->eval_iter;
        o.eval_limit = 0;
        /* masks and QAT ranges move during training: keep the final weights */
        o.keep_best = !(c->has_gmp || qat);
        o.freeze = (const char *const *)t->freeze.v;
        o.n_freeze = t->freeze.n;
        /* PACT clip values: trained by the same optimizer and schedule */
        if (qat)
            o.extra = qat_pact_extras(c->qat, &o.n_extra);
        o.seed = (uint64_t)j->global.seed;
        o.n_threads = c->threads;
        if (distill) {
            o.teacher = teacher;
            o.pairs = pairs;
            o.n_pairs = n_pairs;
            o.temperature = (float)j->distill.temperature;
            o.adapter = j->distill.adapter;
        }
        o.progress = &prog;
        o.hooks.after_forward = hook_forward;
        o.hooks.after_step = hook_step;
        o.hooks.user = c;
        memset(&res, 0, sizeof res);
        rc = pare_train(c->cur, &o, &out, &res, err);
        if (rc != PARE_OK && c->hook_err.code != PARE_OK)
            *err = c->hook_err;
        if (rc != PARE_OK && c->canceled)
            rc = pare_fail(err, PARE_ECANCELED, NULL, "canceled during training");
    }
    if (rc == PARE_OK) {
        pare_graph_free(c->cur);
        c->cur = out;
        for (int i = 0; i < c->n_masks && rc == PARE_OK; i++)
            rc = pare_masks_apply(c->masks[i], c->cur, err);
        if (rc == PARE_OK && c->has_gmp && c->gmp.masks)
            rc = pare_masks_apply(c->gmp.masks, c->cur, err);
        c->rep->train_steps = res.steps;
        c->rep->train_first_loss = res.first_loss;
        c->rep->train_last_loss = res.last_loss;
        c->rep->sparsity = compress_sparsity(c);
        compress_stage(c, qat ? "qat" : "train", compress_now() - t0,
                       "%lld steps%s%s, loss %.4g -> %.4g%s", (long long)res.steps,
                       qat ? ", quantization-aware" : "", distill ? ", distilled" : "",
                       res.first_loss, res.last_loss,
                       c->has_gmp ? ", GMP masks applied" : "");
    }
    if (rc == PARE_OK && qat) {
        rc = qat_export(c->qat, c->cur, err);
        c->rep->quantized = true;
        c->rep->n_quantized_nodes = qat_n_quantized_nodes(c->qat);
    }
    pare_free(pairs);
    pare_dataset_free(train_ds);
    return rc;
}

/* ---- per-layer table --------------------------------------------------------------- */

static int64_t out_channels(const pare_node *node, const pare_tensor *w)
{
    if (!w || w->ndim < 1)
        return 0;
    if (!strcmp(node->op_type, "Gemm"))
        return pare_node_attr_int(node, "transB", 0) ? w->dims[0] : w->dims[w->ndim - 1];
    if (!strcmp(node->op_type, "MatMul"))
        return w->dims[w->ndim - 1];
    if (!strcmp(node->op_type, "ConvTranspose") && w->ndim >= 2)
        return w->dims[1] * pare_node_attr_int(node, "group", 1);
    return w->dims[0];
}

static double zero_fraction(const pare_tensor *t)
{
    int64_t n = pare_tensor_numel(t), z = 0;
    size_t es = pare_dtype_size(t->dtype);
    const unsigned char *d = t->data;

    if (!n || !d || !es)
        return 0.0;
    for (int64_t i = 0; i < n; i++) {
        bool zero = true;
        if (t->dtype == PARE_F32)
            zero = ((const float *)t->data)[i] == 0.0f;
        else
            for (size_t k = 0; k < es; k++)
                zero = zero && d[(size_t)i * es + k] == 0;
        z += zero;
    }
    return (double)z / (double)n;
}

/* The weighted layers of the original model and their state in the final one
 * (matched by node name, weights by name or "<w>_quantized"). */
static pare_status layer_table(compress_ctx *c, pare_error *err)
{
    const pare_graph *g = c->orig, *f = c->cur;
    pare_compress_layer *l = pare_calloc((size_t)g->n_nodes + 1, sizeof *l);
    int n = 0;

    if (!l)
        return pare_fail(err, PARE_ENOMEM, NULL, "out of memory");
    for (int i = 0; i < g->n_nodes; i++) {
        const pare_node *node = &g->nodes[i];
        const pare_tensor *w, *wf = NULL;
        const char *wname;
        char qn[1024];
        int fv, fn;

        if ((strcmp(node->op_type, "Conv") && strcmp(node->op_type, "ConvTranspose") &&
             strcmp(node->op_type, "Gemm") && strcmp(node->op_type, "MatMul")) ||
            node->n_inputs < 2 || node->inputs[1] < 0 || !g->values[node->inputs[1]].init)
            continue;
        wname = g->values[node->inputs[1]].name;
        w = g->values[node->inputs[1]].init;
        snprintf(l[n].name, sizeof l[n].name, "%s", node->name[0] ? node->name : node->op_type);
        snprintf(l[n].op, sizeof l[n].op, "%s", node->op_type);
        l[n].out_before = out_channels(node, w);
        l[n].params_before = pare_tensor_numel(w);
        snprintf(qn, sizeof qn, "%s_quantized", wname);
        fv = pare_graph_find_value(f, qn);
        l[n].quantized = fv >= 0 && f->values[fv].init;
        if (!l[n].quantized)
            fv = pare_graph_find_value(f, wname);
        if (fv >= 0)
            wf = f->values[fv].init;
        fn = node->name[0] ? pare_graph_find_node(f, node->name) : -1;
        if (wf) {
            l[n].out_after = out_channels(fn >= 0 ? &f->nodes[fn] : node, wf);
            l[n].params_after = pare_tensor_numel(wf);
            l[n].sparsity = zero_fraction(wf);
        }
        n++;
    }
    c->rep->layers = l;
    c->rep->n_layers = n;
    return PARE_OK;
}

/* ---- outputs --------------------------------------------------------------------- */

/* Creates the missing parent directories of path (mkdir -p of its dirname). */
static void mkdir_parents(const char *path)
{
    char buf[PARE_COMPRESS_PATH_MAX + 64];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        mkdir(buf, 0777);
        *p = '/';
    }
}

/* value as a double-quoted YAML scalar */
static void yaml_quote(const char *v, char *out, size_t size)
{
    size_t k = 0;
    out[k++] = '"';
    for (; *v && k + 3 < size; v++) {
        if (*v == '"' || *v == '\\')
            out[k++] = '\\';
        out[k++] = *v;
    }
    out[k++] = '"';
    out[k] = '\0';
}

/* Sets Section.key of job to the string v (quoted). */
static pare_status set_str(pare_job *job, const char *section, const char *key, const char *v,
                           pare_error *err)
{
    char q[2 * PARE_COMPRESS_PATH_MAX + 8];
    yaml_quote(v, q, sizeof q);
    return pare_job_set(job, section, key, q, err);
}

/* config.resolved.yaml: the job as run, with the paths it used (absolute
 * where they name files), so the file runs again from anywhere. */
static pare_status save_resolved(compress_ctx *c, const char *path, pare_error *err)
{
    char *text = pare_job_to_yaml(c->job, true, err);
    pare_job *copy = NULL;
    char abs[PATH_MAX];
    pare_status rc;

    if (!text)
        return err && err->code ? err->code : PARE_ENOMEM;
    rc = pare_job_load_string(text, c->where, &copy, NULL, err);
    pare_free(text);
    if (rc == PARE_OK)
        rc = set_str(copy, "Global", "model", realpath(c->model_path, abs) ? abs : c->model_path, err);
    if (rc == PARE_OK && c->teacher_path[0])
        rc = set_str(copy, "Distillation", "teacher_model",
                     realpath(c->teacher_path, abs) ? abs : c->teacher_path, err);
    if (rc == PARE_OK && c->job->unstructure_prune.mask_file) {
        char mp[PARE_COMPRESS_PATH_MAX];
        compress_resolve_path(c->opts->base_dir, c->job->unstructure_prune.mask_file, mp, sizeof mp);
        rc = set_str(copy, "UnstructurePrune", "mask_file", realpath(mp, abs) ? abs : mp, err);
    }
    if (rc == PARE_OK && c->data_spec[0])
        rc = set_str(copy, "Global", "data", c->data_spec, err);
    if (rc == PARE_OK && c->job->global.eval_data)
        rc = set_str(copy, "Global", "eval_data", c->eval_spec, err);
    if (rc == PARE_OK)
        rc = set_str(copy, "Global", "save_dir", c->save_dir, err);
    if (rc == PARE_OK)
        rc = pare_job_save_resolved(copy, path, err);
    pare_job_free(copy);
    return rc;
}

static pare_status write_outputs(compress_ctx *c, pare_error *err)
{
    char path[PARE_COMPRESS_PATH_MAX + 96];
    char *text;
    pare_status rc;

    mkdir_parents(c->tmp_dir);
    if (mkdir(c->tmp_dir, 0777) != 0)
        return pare_fail(err, PARE_EIO, c->tmp_dir, "cannot create the output directory: %s",
                         strerror(errno));
    snprintf(path, sizeof path, "%s/model.onnx", c->tmp_dir);
    rc = layer_table(c, err);
    if (rc == PARE_OK)
        rc = pare_graph_save(c->cur, path, err);
    c->rep->bytes_after = file_size(path);
    snprintf(path, sizeof path, "%s/config.resolved.yaml", c->tmp_dir);
    if (rc == PARE_OK)
        rc = save_resolved(c, path, err);
    snprintf(path, sizeof path, "%s/calibration_table.txt", c->tmp_dir);
    if (rc == PARE_OK && c->calib)
        rc = pare_quant_write_table(c->calib, &c->qopts, path, err);
    else if (rc == PARE_OK && c->qat)
        rc = qat_write_table(c->qat, path, err);
    snprintf(path, sizeof path, "%s/sensitivity.csv", c->tmp_dir);
    if (rc == PARE_OK && c->sens) {
        rc = pare_sens_save_csv(c->sens, c->sens_groups, c->orig, path, err);
        c->rep->has_sensitivity = rc == PARE_OK;
    }
    snprintf(path, sizeof path, "%s/calibration.cache", c->tmp_dir);
    if (rc == PARE_OK && c->calib && c->job->quant_post.calibration_cache)
        rc = pare_quant_write_trt_cache(c->calib, &c->qopts, path, err);
    c->rep->seconds = compress_now() - c->t_start;
    if (rc == PARE_OK) {
        text = pare_compress_report_json(c->rep);
        snprintf(path, sizeof path, "%s/report.json", c->tmp_dir);
        rc = text ? compress_write_text(path, text, err)
                  : pare_fail(err, PARE_ENOMEM, NULL, "out of memory");
        pare_free(text);
    }
    if (rc == PARE_OK) {
        text = pare_compress_report_markdown(c->rep);
        snprintf(path, sizeof path, "%s/report.md", c->tmp_dir);
        rc = text ? compress_write_text(path, text, err)
                  : pare_fail(err, PARE_ENOMEM, NULL, "out of memory");
        pare_free(text);
    }
    if (rc == PARE_OK && !compress_event(c, "write", 1, 1, NULL, NAN, NULL))
        rc = pare_fail(err, PARE_ECANCELED, NULL, "canceled before the outputs were moved in place");
    /* the new directory replaces save_dir only now */
    if (rc == PARE_OK) {
        char old[PARE_COMPRESS_PATH_MAX + 64];
        bool had = dir_exists(c->save_dir);
        snprintf(old, sizeof old, "%s.old-%ld", c->save_dir, (long)getpid());
        if (had && !c->opts->force)
            rc = pare_fail(err, PARE_EINPUT, c->save_dir, "output directory already exists");
        else if (had && rename(c->save_dir, old) != 0)
            rc = pare_fail(err, PARE_EIO, c->save_dir, "cannot move the old output aside: %s",
                           strerror(errno));
        if (rc == PARE_OK && rename(c->tmp_dir, c->save_dir) != 0) {
            rc = pare_fail(err, PARE_EIO, c->save_dir, "cannot rename '%s' to it: %s", c->tmp_dir,
                           strerror(errno));
            if (had)
                rename(old, c->save_dir);
        }
        if (rc == PARE_OK && had)
            compress_rm_tree(old);
    }
    return rc;
}

/* --force replaces only an empty directory or an earlier job's output. */
static bool replaceable(const char *dir)
{
    char p[PARE_COMPRESS_PATH_MAX + 16];
    DIR *d = opendir(dir);
    struct dirent *e;
    bool empty = true;

    if (!d)
        return false;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            empty = false;
    closedir(d);
    snprintf(p, sizeof p, "%s/report.json", dir);
    return empty || file_size(p) >= 0;
}

/* ---- the run --------------------------------------------------------------------- */

static pare_status setup(compress_ctx *c, pare_error *err)
{
    const pare_job *j = c->job;
    char where[256];
    pare_status rc;

    compress_resolve_path(c->opts->base_dir, j->global.model, c->model_path, sizeof c->model_path);
    snprintf(c->save_dir, sizeof c->save_dir, "%s",
             c->opts->save_dir ? c->opts->save_dir : j->global.save_dir);
    {
        size_t n = strlen(c->save_dir);
        while (n > 1 && c->save_dir[n - 1] == '/')
            c->save_dir[--n] = '\0';
    }
    snprintf(c->tmp_dir, sizeof c->tmp_dir, "%s.tmp-%ld", c->save_dir, (long)getpid());
    snprintf(c->rep->model, sizeof c->rep->model, "%s", c->model_path);
    snprintf(c->rep->save_dir, sizeof c->rep->save_dir, "%s", c->save_dir);
    if (j->distill.teacher_model)
        compress_resolve_path(c->opts->base_dir, j->distill.teacher_model, c->teacher_path,
                     sizeof c->teacher_path);
    c->threads = c->opts->n_threads > 0 ? c->opts->n_threads : (int)j->global.threads;
    c->batch = (int)j->global.batch_size;
    compress_where(c, &j->global.meta, where, sizeof where);

    /* methods pare cannot run yet fail before any work */
    if (wants_ptq(j) && !j->quant_post.onnx_format)
        return pare_fail(err, PARE_EUNSUPPORTED,
                         compress_where(c, &j->quant_post.meta, where, sizeof where),
                         "pare writes only the QDQ format (onnx_format: true)");
    if (j->quant_aware.meta.present && !j->train.meta.present)
        return pare_fail(err, PARE_EINPUT,
                         compress_where(c, &j->quant_aware.meta, where, sizeof where),
                         "QuantAware needs a TrainConfig section (quantization-aware training)");
    if (j->distill.meta.present && !j->train.meta.present)
        return pare_fail(err, PARE_EINPUT, compress_where(c, &j->distill.meta, where, sizeof where),
                         "Distillation needs a TrainConfig section");
    if (j->quant_aware.meta.present && wants_ptq(j))
        return pare_fail(err, PARE_EINPUT,
                         compress_where(c, j->quant_post.meta.present ? &j->quant_post.meta
                                                                      : &j->hpo.meta,
                                        where, sizeof where),
                         "QuantPost (or HyperParameterOptimization) and QuantAware both quantize; "
                         "keep one of them");

    /* keys that load but change nothing: say so */
    if (wants_ptq(j) && j->quant_post.simulate_activation_quant &&
        compress_warn(c, err, "QuantPost.simulate_activation_quant (QDrop) is not implemented; "
                      "reconstruction always sees the quantized activations") != PARE_OK)
        return err->code;
    if (wants_ptq(j) && j->quant_post.regions.n &&
        j->quant_post.recon_level != PARE_JOB_RECON_REGION &&
        compress_warn(c, err, "QuantPost.regions is used only by recon_level region-wise; "
                      "ignored") != PARE_OK)
        return err->code;
    if (j->quant_aware.meta.present && j->quant_aware.use_pact &&
        pare_job_is_set(j, "QuantAware", "activation_quantize_type") &&
        compress_warn(c, err, "QuantAware.activation_quantize_type is ignored with use_pact: the "
                      "learned clip value is the range") != PARE_OK)
        return err->code;

    /* outputs: never over the input, never over an existing directory unasked */
    if (dir_exists(c->save_dir)) {
        if (path_inside(c->model_path, c->save_dir) ||
            (c->teacher_path[0] && path_inside(c->teacher_path, c->save_dir))) {
            pare_fail(err, PARE_EINPUT, c->save_dir, "save_dir holds the input model; refusing to "
                      "replace it");
            pare_error_hint(err, "choose another save_dir");
            return PARE_EINPUT;
        }
        if (!c->opts->force) {
            pare_fail(err, PARE_EINPUT, c->save_dir, "output directory already exists");
            pare_error_hint(err, "pass --force to replace it, or choose another save_dir");
            return PARE_EINPUT;
        }
        if (!replaceable(c->save_dir)) {
            pare_fail(err, PARE_EINPUT, c->save_dir, "refusing to replace a directory that is "
                      "not the output of an earlier job (no report.json in it)");
            pare_error_hint(err, "choose another save_dir, or empty it yourself");
            return PARE_EINPUT;
        }
    }

    rc = pare_graph_load(c->model_path, &c->orig, err);
    if (rc == PARE_OK)
        rc = pare_graph_clone(c->orig, &c->cur, err);
    if (rc == PARE_OK && c->teacher_path[0])
        rc = pare_graph_load(c->teacher_path, &c->teacher, err);
    if (rc == PARE_OK)
        rc = find_input(c, err);
    if (rc != PARE_OK)
        return rc;
    c->rep->bytes_before = file_size(c->model_path);

    /* data */
    if (j->global.data) {
        rc = resolve_spec(c, j->global.data, c->data_spec, sizeof c->data_spec, err);
        if (rc != PARE_OK)
            return rc;
    } else if (j->train.meta.present || wants_ptq(j) || j->quant_aware.meta.present) {
        pare_fail(err, PARE_EINPUT, where, "Global.data is needed for training and calibration");
        pare_error_hint(err, "e.g. data: fashion-mnist:train");
        return PARE_EINPUT;
    }
    if (j->global.eval_data) {
        rc = resolve_spec(c, j->global.eval_data, c->eval_spec, sizeof c->eval_spec, err);
    } else if (j->global.data) {
        pare_data_spec s;
        if (pare_data_spec_parse(c->data_spec, &s, err) == PARE_OK && s.kind == PARE_DATA_FASHION_MNIST)
            snprintf(c->eval_spec, sizeof c->eval_spec, "fashion-mnist:test");
        else
            snprintf(c->eval_spec, sizeof c->eval_spec, "%s", c->data_spec);
    }
    if (rc == PARE_OK && c->eval_spec[0]) {
        rc = compress_open_data(c, c->eval_spec, c->batch, false, j->global.eval_limit, &c->eval_ds, err);
        if (rc == PARE_OK && !pare_dataset_has_labels(c->eval_ds) &&
            (j->global.metric == PARE_JOB_METRIC_TOP1 || j->global.metric == PARE_JOB_METRIC_TOP5))
            rc = pare_fail(err, PARE_EINPUT, where, "metric %s needs labelled eval data; '%s' has "
                           "no labels", metric_name(j->global.metric), c->eval_spec);
        if (rc == PARE_OK) {
            snprintf(c->rep->eval_data, sizeof c->rep->eval_data, "%s",
                     pare_dataset_spec(c->eval_ds));
            c->rep->eval_samples = pare_dataset_count(c->eval_ds);
            c->rep->has_metric = true;
        }
    }
    if (rc == PARE_OK && c->data_spec[0]) {
        /* fail early on data the trainer or calibration could not open */
        pare_dataset *probe = NULL;
        rc = compress_open_data(c, c->data_spec, c->batch, false, 1, &probe, err);
        pare_dataset_free(probe);
    }
    return rc;
}

pare_status pare_compress_run(const pare_job *job, const pare_compress_opts *opts,
                              pare_compress_report *out, pare_error *err)
{
    pare_compress_report local;
    pare_compress_report *rep = out ? out : &local;
    pare_compress_opts defaults;
    compress_ctx c;
    pare_error scratch;
    bool dry;
    double t;
    pare_status rc;

    if (!err)
        err = &scratch;
    if (!opts) {
        memset(&defaults, 0, sizeof defaults);
        opts = &defaults;
    }
    dry = opts->dry_run;
    memset(rep, 0, sizeof *rep);
    rep->best_trial = -1;
    rep->dry_run = dry;
    rep->metric_name = metric_name(job->global.metric);
    rep->metric_before = rep->metric_after = NAN;
    memset(&c, 0, sizeof c);
    c.t_start = compress_now();
    c.job = job;
    c.opts = opts;
    c.rep = rep;
    snprintf(c.where, sizeof c.where, "%s", job->source ? job->source : "job");

    rc = pare_job_check_runnable(job, NULL, err);
    if (rc == PARE_OK)
        rc = setup(&c, err);
    if (rc == PARE_OK)
        rc = pare_prune_measure(c.orig, &rep->params_before, &rep->flops_before, err);

    /* a Layers or prune_params_name entry naming no group fails before any work */
    if (rc == PARE_OK && compress_wants_structured(job) && !dry) {
        pare_prune_groups *gs = NULL;
        double *ratios = NULL;
        int n_pruned = 0;
        rc = pare_prune_groups_find(c.cur, &gs, err);
        if (rc == PARE_OK) {
            ratios = pare_calloc((size_t)(gs->n ? gs->n : 1), sizeof *ratios);
            rc = ratios ? compress_prune_ratios(&c, c.cur, gs, ratios, &n_pruned, err)
                        : pare_fail(err, PARE_ENOMEM, NULL, "out of memory");
        }
        pare_free(ratios);
        pare_prune_groups_free(gs);
    }
    /* 1. the original model */
    if (rc == PARE_OK && c.eval_ds && !dry) {
        t = compress_now();
        if (job->global.metric == PARE_JOB_METRIC_COSINE)
            rep->metric_before = 1.0;       /* the reference itself */
        else if (job->global.metric == PARE_JOB_METRIC_SNR)
            rep->metric_before = INFINITY;
        else if (job->train.meta.present && pare_job_is_set(job, "TrainConfig", "origin_metric"))
            rep->metric_before = job->train.origin_metric;
        else
            rc = compress_eval(&c, c.orig, &rep->metric_before, err);
        if (rc == PARE_OK)
            compress_stage(&c, "eval", compress_now() - t, "original model: %s", rep->metric_name);
    }
    /* pare's Sensitivity section: a sweep on the original model */
    if (rc == PARE_OK && job->sensitivity.meta.present)
        rc = compress_stage_sensitivity(&c, dry, err);
    /* 2. pruning */
    if (rc == PARE_OK && compress_wants_structured(job))
        rc = compress_stage_structured(&c, dry, err);
    if (rc == PARE_OK && job->transformer_prune.meta.present)
        rc = compress_stage_transformer(&c, dry, err);
    if (rc == PARE_OK && (job->unstructure_prune.meta.present || job->asp_prune.meta.present))
        rc = compress_stage_masks(&c, dry, err);
    /* the float structure after pruning */
    if (rc == PARE_OK)
        rc = pare_prune_measure(c.cur, &rep->params_after, &rep->flops_after, err);
    /* 3. training, distillation, QAT */
    if (rc == PARE_OK && (job->train.meta.present || job->quant_aware.meta.present))
        rc = stage_train(&c, dry, err);
    /* 4. post-training quantization (+ HPO) */
    if (rc == PARE_OK && wants_ptq(job)) {
        if (dry)
            compress_stage(&c, job->hpo.meta.present ? "hpo" : "calibrate", 0,
                           "planned: post-training quantization%s",
                           job->hpo.meta.present ? " with hyperparameter search" : "");
        else
            rc = compress_ptq(&c, err);
    }
    /* 5. the compressed model */
    if (rc == PARE_OK && c.eval_ds && !dry) {
        t = compress_now();
        rc = compress_eval(&c, c.cur, &rep->metric_after, err);
        if (rc == PARE_OK)
            compress_stage(&c, "eval", compress_now() - t, "compressed model: %s",
                           rep->metric_name);
    }
    if (rc == PARE_OK && !dry)
        rc = write_outputs(&c, err);
    else if (dry)
        rep->seconds = compress_now() - c.t_start;
    if (rc != PARE_OK) {
        if (c.canceled && rc != PARE_ECANCELED)
            rc = pare_fail(err, PARE_ECANCELED, NULL, "the job was canceled");
        compress_rm_tree(c.tmp_dir);
        rep->seconds = compress_now() - c.t_start;
    }
    pare_graph_free(c.orig);
    pare_graph_free(c.cur);
    pare_graph_free(c.teacher);
    pare_dataset_free(c.eval_ds);
    for (int i = 0; i < c.n_masks; i++)
        pare_masks_free(c.masks[i]);
    if (c.has_gmp)
        pare_gmp_fini(&c.gmp);
    qat_free(c.qat);
    pare_quant_calib_free(c.calib);
    pare_sens_result_free(c.sens);
    pare_prune_groups_free(c.sens_groups);
    if (!out)
        pare_compress_report_fini(&local);
    return rc;
}
