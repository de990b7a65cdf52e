/* The trainer: see pare/train.h. */
#include <errno.h>
#include <fnmatch.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "pare/alloc.h"
#include "pare/metrics.h"
#include "pare/train.h"

/* One distillation pair at run time. */
typedef struct pair_rt {
    const pare_distill_pair *p;
    int t_val, s_val, t_val2, s_val2;   /* graph value indices (-1: unused) */
    int seed, seed2;                    /* index into the trainer's seeds */
    /* learnable 1x1 projection of the student value (NULL: none) */
    pare_tensor *aw, *ab;               /* [Ct, Cs], [Ct] */
    pare_tensor *agw, *agb;             /* their gradients */
    pare_tensor *aout, *adout;          /* projected student value and its gradient */
} pair_rt;

#define MAX_SEEDS 64

typedef struct trainer {
    const pare_train_opts *o;
    pare_graph *g;                      /* the working copy */
    pare_graph *self_teacher;           /* owned copy of the student as given */
    const pare_graph *teacher;
    pare_exec *x, *tx;                  /* student (training plan), teacher (inference) */
    int in_val, t_in_val;               /* fed graph inputs */
    int in_idx, t_in_idx;               /* their runtime input positions */
    int B;
    int64_t batches_per_epoch, total_steps;
    bool has_labels, eval_labels;
    double task_weight;
    int64_t *labels;

    /* optimised tensors: the parameters, then adapter weights */
    int n_params, n_opt;
    int *param_vals;
    pare_tensor **opt_params, **opt_grads;
    pare_optim *optim;
    pare_schedule sched;

    /* opts.extra: value indices and one optimizer each (rate x lr_mult) */
    int n_extra;
    int *extra_vals;
    pare_optim **extra_optim;
    /* with extras the trainer clips gradients itself, over all of them */
    bool clip_here;

    /* keep_sparsity: per parameter, the positions that were zero (NULL: none) */
    uint8_t **zero_masks;

    /* values that training changes (parameters, BatchNorm statistics) */
    int n_mut;
    int *mut_vals;
    pare_tensor **best;

    pair_rt *pairs;
    int n_pairs;
    int n_seeds;
    int seed_vals[MAX_SEEDS];
    pare_tensor *seed_grads[MAX_SEEDS];

    int64_t step, best_step;
    double best_metric, last_metric;
    const char *metric_name;
} trainer;

/* ---- small helpers ---- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static pare_status oom(pare_error *err)
{
    return pare_fail(err, PARE_ENOMEM, NULL, "out of memory while training");
}

/* splitmix64: the trainer's only random source (reinit, adapters). */
static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double uniform01(uint64_t *s)
{
    return (double)(splitmix(s) >> 11) * (1.0 / 9007199254740992.0);
}

static void fill_uniform(pare_tensor *t, double bound, uint64_t *rng)
{
    float *d = pare_tensor_f32(t);
    for (int64_t i = 0; i < pare_tensor_numel(t); i++)
        d[i] = (float)((2.0 * uniform01(rng) - 1.0) * bound);
}

static void fill_const(pare_tensor *t, float v)
{
    float *d = pare_tensor_f32(t);
    for (int64_t i = 0; i < pare_tensor_numel(t); i++)
        d[i] = v;
}

static bool all_finite(const pare_tensor *t)
{
    const float *d = pare_tensor_f32(t);
    if (!t || t->dtype != PARE_F32 || !d)
        return true;
    for (int64_t i = 0; i < pare_tensor_numel(t); i++)
        if (!isfinite(d[i]))
            return false;
    return true;
}

static bool is_param_slot(const pare_node *n, int slot)
{
    const char *op = n->op_type;

    if (n->domain[0] != '\0')
        return slot >= 1;
    if (!strcmp(op, "BatchNormalization"))
        return slot == 1 || slot == 2;
    if (!strcmp(op, "QuantizeLinear") || !strcmp(op, "DequantizeLinear") ||
        !strcmp(op, "Resize") || !strcmp(op, "Pad") || !strcmp(op, "Clip") ||
        !strcmp(op, "Reshape") || !strcmp(op, "Expand") || !strcmp(op, "Tile") ||
        !strcmp(op, "Slice") || !strcmp(op, "Dropout") || !strcmp(op, "Upsample"))
        return slot == 0;
    return true;
}

static bool is_param(const pare_graph *g, int v)
{
    const pare_value *val = &g->values[v];
    bool used = false;

    if (!val->init || val->init->dtype != PARE_F32 || !val->init->data ||
        pare_tensor_numel(val->init) < 2)
        return false;
    for (int c = 0; c < val->n_consumers; c++) {
        const pare_node *n = &g->nodes[val->consumers[c]];
        for (int i = 0; i < n->n_inputs; i++) {
            if (n->inputs[i] != v)
                continue;
            if (!is_param_slot(n, i))
                return false;
            used = true;
        }
    }
    return used;
}

pare_status pare_train_param_names(const pare_graph *g, const char ***names, int *n,
                                   pare_error *err)
{
    const char **out = pare_alloc((size_t)(g->n_values ? g->n_values : 1) * sizeof *out);
    int k = 0;

    if (!out)
        return oom(err);
    for (int v = 0; v < g->n_values; v++)
        if (is_param(g, v))
            out[k++] = g->values[v].name;
    *names = out;
    *n = k;
    return PARE_OK;
}

static bool frozen(const pare_train_opts *o, const char *name)
{
    for (int i = 0; i < o->n_freeze; i++) {
        const char *pat = o->freeze[i];
        if (strpbrk(pat, "*?[") ? fnmatch(pat, name, 0) == 0 : strstr(name, pat) != NULL)
            return true;
    }
    return false;
}

/* ---- re-initialisation (PyTorch's defaults per layer kind) ---- */

static int64_t fan_in_of(const pare_node *n, const pare_tensor *w, bool second_matmul_input)
{
    int64_t numel = pare_tensor_numel(w);

    if (!strcmp(n->op_type, "Gemm"))
        return pare_node_attr_int(n, "transB", 0) ? w->dims[w->ndim - 1] : w->dims[0];
    if (!strcmp(n->op_type, "MatMul"))
        return second_matmul_input ? w->dims[w->ndim - 2] : w->dims[w->ndim - 1];
    if (!strcmp(n->op_type, "ConvTranspose"))
        return numel / w->dims[0];
    return numel / w->dims[0]; /* Conv: C/group x kernel */
}

/* Weight of the linear layer whose output the Add at node n biases, or NULL. */
static const pare_node *matmul_before(const pare_graph *g, const pare_node *n, int *w_slot)
{
    for (int i = 0; i < n->n_inputs; i++) {
        int v = n->inputs[i], p;
        if (v < 0 || g->values[v].init)
            continue;
        p = g->values[v].producer;
        if (p < 0 || strcmp(g->nodes[p].op_type, "MatMul"))
            continue;
        for (int j = 0; j < 2; j++) {
            int wv = g->nodes[p].inputs[j];
            if (wv >= 0 && g->values[wv].init) {
                *w_slot = j;
                return &g->nodes[p];
            }
        }
    }
    return NULL;
}

pare_status pare_train_reinit(pare_graph *g, uint64_t seed, pare_error *err)
{
    uint64_t rng = seed ^ 0x5DEECE66Dull;
    bool *done = pare_calloc((size_t)(g->n_values ? g->n_values : 1), sizeof *done);

    if (!done)
        return oom(err);
    for (int ni = 0; ni < g->n_nodes; ni++) {
        const pare_node *n = &g->nodes[ni];
        const char *op = n->op_type;
        bool linear = !strcmp(op, "Conv") || !strcmp(op, "ConvTranspose") || !strcmp(op, "Gemm");

        for (int i = 0; i < n->n_inputs; i++) {
            int v = n->inputs[i];
            pare_tensor *t;
            if (v < 0 || done[v] || !g->values[v].init || g->values[v].init->dtype != PARE_F32 ||
                !g->values[v].init->data)
                continue;
            t = g->values[v].init;
            if (!strcmp(op, "BatchNormalization") && i >= 1) {
                fill_const(t, i == 1 || i == 4 ? 1.0f : 0.0f);
            } else if (!is_param(g, v)) {
                continue;
            } else if (linear && i == 1) {
                fill_uniform(t, 1.0 / sqrt((double)fan_in_of(n, t, true)), &rng);
            } else if (linear && i == 2) {
                int wv = n->inputs[1];
                if (wv < 0 || !g->values[wv].init)
                    continue;
                fill_uniform(t, 1.0 / sqrt((double)fan_in_of(n, g->values[wv].init, true)), &rng);
            } else if (!strcmp(op, "MatMul")) {
                fill_uniform(t, 1.0 / sqrt((double)fan_in_of(n, t, i == 1)), &rng);
            } else if (!strcmp(op, "LayerNormalization") || !strcmp(op, "InstanceNormalization") ||
                       !strcmp(op, "GroupNormalization")) {
                fill_const(t, i == 1 ? 1.0f : 0.0f);
            } else if (!strcmp(op, "Mul")) {
                fill_const(t, 1.0f); /* a decomposed norm's scale */
            } else if (!strcmp(op, "Add")) {
                int w_slot = 1;
                const pare_node *mm = matmul_before(g, n, &w_slot);
                if (mm) {
                    const pare_tensor *w = g->values[mm->inputs[w_slot]].init;
                    fill_uniform(t, 1.0 / sqrt((double)fan_in_of(mm, w, w_slot == 1)), &rng);
                } else {
                    float *d = pare_tensor_f32(t); /* embeddings: N(0, 0.02) truncated at 2 sigma */
                    for (int64_t k = 0; k < pare_tensor_numel(t); k++) {
                        double z;
                        do {
                            double u1 = uniform01(&rng), u2 = uniform01(&rng);
                            z = sqrt(-2.0 * log(u1 + 1e-300)) * cos(2.0 * M_PI * u2);
                        } while (fabs(z) > 2.0);
                        d[k] = (float)(0.02 * z);
                    }
                }
            } else {
                fill_uniform(t, 0.02, &rng);
            }
            done[v] = true;
        }
    }
    pare_free(done);
    return PARE_OK;
}

/* ---- setup ---- */

static pare_status runtime_input(const pare_graph *g, const char *name, int *val, int *idx,
                                 pare_error *err)
{
    int k = 0, found = -1, found_idx = -1, n_runtime = 0;

    for (int i = 0; i < g->n_inputs; i++) {
        int v = g->inputs[i];
        if (g->values[v].init)
            continue;
        n_runtime++;
        if ((name && !strcmp(g->values[v].name, name)) || (!name && found < 0)) {
            found = v;
            found_idx = k;
        }
        k++;
    }
    if (!name && n_runtime != 1)
        return pare_fail(err, PARE_EINPUT, g->path,
                         "the model has %d inputs; say which one the data feeds", n_runtime);
    if (found < 0)
        return pare_fail(err, PARE_EINPUT, g->path, "the model has no input named '%s'",
                         name ? name : "");
    *val = found;
    *idx = found_idx;
    return PARE_OK;
}

static pare_status new_exec(const pare_graph *g, int in_val, const trainer *t, bool training,
                            const char *const *params, int n_params, const char *const *taps,
                            int n_taps, pare_exec **out, pare_error *err)
{
    pare_exec_opts eo = {0};
    pare_tensor shape;
    int64_t sdims[PARE_MAX_DIMS];
    int sndim = pare_dataset_sample_shape(t->o->train_data, sdims);
    pare_status rc = pare_exec_batch_shape(g, in_val, t->B, sndim, sdims, &shape, err);

    if (rc != PARE_OK)
        return rc;
    eo.batch = t->B;
    eo.n_threads = t->o->n_threads;
    eo.input_shapes = &shape;
    eo.training = training;
    eo.params = params;
    eo.n_params = n_params;
    eo.seed = t->o->seed;
    eo.taps = taps;
    eo.n_taps = n_taps;
    return pare_exec_new(g, &eo, out, err);
}

static pare_status unknown_value(const pare_graph *g, const char *who, const char *name,
                                 pare_error *err)
{
    const char **names = pare_alloc((size_t)(g->n_values ? g->n_values : 1) * sizeof *names);
    const char *close;

    if (!names)
        return oom(err);
    for (int v = 0; v < g->n_values; v++)
        names[v] = g->values[v].name;
    close = pare_closest_word(name, names, g->n_values);
    pare_fail(err, PARE_EINPUT, name, "the %s has no value named '%s'", who, name);
    if (close)
        pare_error_hint(err, "did you mean '%s'?", close);
    else
        pare_error_hint(err, "`pare info --json` lists the value names");
    pare_free(names);
    return PARE_EINPUT;
}

static int add_seed(trainer *t, int v, pare_error *err)
{
    const pare_tensor *shape;

    for (int i = 0; i < t->n_seeds; i++)
        if (t->seed_vals[i] == v)
            return i;
    if (t->n_seeds == MAX_SEEDS)
        return pare_fail(err, PARE_EINPUT, NULL, "more than %d distinct student values in losses",
                         MAX_SEEDS);
    shape = pare_exec_value_shape(t->x, v);
    if (!shape || shape->dtype != PARE_F32)
        return pare_fail(err, PARE_EINPUT, t->g->values[v].name,
                         "student value '%s' is not a float tensor the training plan computes",
                         t->g->values[v].name);
    t->seed_grads[t->n_seeds] = pare_tensor_new(PARE_F32, shape->ndim, shape->dims);
    if (!t->seed_grads[t->n_seeds])
        return oom(err);
    t->seed_vals[t->n_seeds] = v;
    return t->n_seeds++;
}

static pare_status make_adapter(trainer *t, pair_rt *pr, const pare_tensor *ts,
                                const pare_tensor *ss, uint64_t *rng, pare_error *err)
{
    int64_t ct = ts->dims[1], cs = ss->dims[1];
    int64_t wd[2] = {ct, cs};

    pr->aw = pare_tensor_new(PARE_F32, 2, wd);
    pr->ab = pare_tensor_new(PARE_F32, 1, &ct);
    pr->agw = pare_tensor_new(PARE_F32, 2, wd);
    pr->agb = pare_tensor_new(PARE_F32, 1, &ct);
    pr->aout = pare_tensor_new(PARE_F32, ts->ndim, ts->dims);
    pr->adout = pare_tensor_new(PARE_F32, ts->ndim, ts->dims);
    if (!pr->aw || !pr->ab || !pr->agw || !pr->agb || !pr->aout || !pr->adout)
        return oom(err);
    fill_uniform(pr->aw, 1.0 / sqrt((double)cs), rng);
    fill_uniform(pr->ab, 1.0 / sqrt((double)cs), rng);
    (void)t;
    return PARE_OK;
}

static bool adaptable(const pare_tensor *ts, const pare_tensor *ss)
{
    if (ts->ndim != ss->ndim || ts->ndim < 2 || ts->dims[0] != ss->dims[0])
        return false;
    for (int d = 2; d < ts->ndim; d++)
        if (ts->dims[d] != ss->dims[d])
            return false;
    return true;
}

static pare_status resolve_pairs(trainer *t, pare_error *err)
{
    const pare_train_opts *o = t->o;
    uint64_t rng = o->seed ^ 0xADA97E5ull;
    pare_status rc;

    t->pairs = pare_calloc((size_t)(t->n_pairs ? t->n_pairs : 1), sizeof *t->pairs);
    if (!t->pairs)
        return oom(err);
    for (int i = 0; i < t->n_pairs; i++) {
        pair_rt *pr = &t->pairs[i];
        const pare_distill_pair *p = &o->pairs[i];
        const pare_tensor *ts, *ss;
        char a[96], b[96];

        pr->p = p;
        pr->t_val2 = pr->s_val2 = pr->seed2 = -1;
        pr->t_val = pare_graph_find_value(t->teacher, p->teacher);
        if (pr->t_val < 0)
            return unknown_value(t->teacher, "teacher", p->teacher, err);
        pr->s_val = pare_graph_find_value(t->g, p->student);
        if (pr->s_val < 0)
            return unknown_value(t->g, "student", p->student, err);
        if (p->loss == PARE_LOSS_FSP) {
            if (!p->teacher2 || !p->student2)
                return pare_fail(err, PARE_EINPUT, p->teacher,
                                 "an fsp pair needs two teacher and two student values");
            pr->t_val2 = pare_graph_find_value(t->teacher, p->teacher2);
            if (pr->t_val2 < 0)
                return unknown_value(t->teacher, "teacher", p->teacher2, err);
            pr->s_val2 = pare_graph_find_value(t->g, p->student2);
            if (pr->s_val2 < 0)
                return unknown_value(t->g, "student", p->student2, err);
        } else if (p->loss == PARE_LOSS_CROSS_ENTROPY) {
            return pare_fail(err, PARE_EINPUT, p->teacher,
                             "cross_entropy is the task loss; pairs use soft_label, l2, cosine "
                             "or fsp");
        }
        ts = pare_exec_value_shape(t->tx, pr->t_val);
        ss = pare_exec_value_shape(t->x, pr->s_val);
        if (!ts || !ss)
            return pare_fail(err, PARE_EINPUT, p->teacher, "pair %s:%s: a value is not computed",
                             p->teacher, p->student);
        if (p->loss != PARE_LOSS_FSP && !pare_tensor_same_shape(ts, ss)) {
            if (!(o->adapter && adaptable(ts, ss))) {
                pare_fail(err, PARE_EINPUT, p->student,
                          "teacher value '%s' is %s but student value '%s' is %s", p->teacher,
                          pare_shape_format(ts->ndim, ts->dims, a, sizeof a), p->student,
                          pare_shape_format(ss->ndim, ss->dims, b, sizeof b));
                if (adaptable(ts, ss))
                    pare_error_hint(err, "the channel counts differ: an adapter (a learnable "
                                         "1x1 projection on the student side) bridges them");
                else
                    pare_error_hint(err, "pair values of the same shape (see `pare info`)");
                return PARE_EINPUT;
            }
            rc = make_adapter(t, pr, ts, ss, &rng, err);
            if (rc != PARE_OK)
                return rc;
        }
        rc = add_seed(t, pr->s_val, err);
        if (rc < 0)
            return rc;
        pr->seed = rc;
        if (pr->s_val2 >= 0) {
            rc = add_seed(t, pr->s_val2, err);
            if (rc < 0)
                return rc;
            pr->seed2 = rc;
        }
    }
    return PARE_OK;
}

/* ---- adapters: out[b, t, p] = sum_s W[t, s] in[b, s, p] + bias[t] ---- */

static void adapter_forward(pair_rt *pr, const pare_tensor *in)
{
    int64_t B = in->dims[0], cs = in->dims[1], ct = pr->aw->dims[0];
    int64_t P = pare_tensor_numel(in) / (B * cs);
    const float *x = pare_tensor_f32(in), *w = pare_tensor_f32(pr->aw), *bias = pare_tensor_f32(pr->ab);
    float *y = pare_tensor_f32(pr->aout);

    for (int64_t b = 0; b < B; b++)
        for (int64_t o = 0; o < ct; o++) {
            float *yo = y + (b * ct + o) * P;
            for (int64_t p = 0; p < P; p++)
                yo[p] = bias[o];
            for (int64_t s = 0; s < cs; s++) {
                const float *xs = x + (b * cs + s) * P;
                float ws = w[o * cs + s];
                for (int64_t p = 0; p < P; p++)
                    yo[p] += ws * xs[p];
            }
        }
}

/* Adds the input gradient into din; sets the weight gradients. */
static void adapter_backward(pair_rt *pr, const pare_tensor *in, pare_tensor *din)
{
    int64_t B = in->dims[0], cs = in->dims[1], ct = pr->aw->dims[0];
    int64_t P = pare_tensor_numel(in) / (B * cs);
    const float *x = pare_tensor_f32(in), *w = pare_tensor_f32(pr->aw);
    const float *dy = pare_tensor_f32(pr->adout);
    float *dx = pare_tensor_f32(din), *gw = pare_tensor_f32(pr->agw), *gb = pare_tensor_f32(pr->agb);

    memset(gw, 0, pare_tensor_nbytes(pr->agw));
    memset(gb, 0, pare_tensor_nbytes(pr->agb));
    for (int64_t b = 0; b < B; b++)
        for (int64_t o = 0; o < ct; o++) {
            const float *dyo = dy + (b * ct + o) * P;
            for (int64_t p = 0; p < P; p++)
                gb[o] += dyo[p];
            for (int64_t s = 0; s < cs; s++) {
                const float *xs = x + (b * cs + s) * P;
                float *dxs = dx + (b * cs + s) * P;
                float ws = w[o * cs + s], acc = 0.0f;
                for (int64_t p = 0; p < P; p++) {
                    acc += dyo[p] * xs[p];
                    dxs[p] += ws * dyo[p];
                }
                gw[o * cs + s] += acc;
            }
        }
}

/* ---- the step ---- */

static pare_status first_nonfinite(const trainer *t, int64_t step, double loss, pare_error *err)
{
    const pare_graph *g = t->g;

    for (int n = 0; n < g->n_nodes; n++)
        for (int i = 0; i < g->nodes[n].n_outputs; i++) {
            int v = g->nodes[n].outputs[i];
            const pare_tensor *val = v >= 0 ? pare_exec_value_shape(t->x, v) : NULL;
            if (val && val->data && !all_finite(val)) {
                char where[256];
                pare_fail(err, PARE_ENUMERIC, pare_graph_node_where(g, n, where, sizeof where),
                          "the loss is not finite at step %lld (%s): the first non-finite value "
                          "in execution order is '%s'",
                          (long long)step + 1, isnan(loss) ? "NaN" : "Inf", g->values[v].name);
                pare_error_hint(err, "lower the learning rate, or clip gradients");
                return PARE_ENUMERIC;
            }
        }
    pare_fail(err, PARE_ENUMERIC, NULL,
              "the loss is not finite at step %lld (%s) although every activation is",
              (long long)step + 1, isnan(loss) ? "NaN" : "Inf");
    pare_error_hint(err, "lower the learning rate, or clip gradients");
    return PARE_ENUMERIC;
}

static pare_status fill_batch(trainer *t, pare_dataset *ds, int64_t first, int64_t n,
                              pare_error *err)
{
    pare_tensor *in = pare_exec_input(t->x, t->in_idx);
    pare_status rc = pare_dataset_fill(ds, first, n, in, t->labels, err);

    if (rc == PARE_OK && t->tx) {
        pare_tensor *tin = pare_exec_input(t->tx, t->t_in_idx);
        if (pare_tensor_nbytes(tin) != pare_tensor_nbytes(in))
            return pare_fail(err, PARE_EINPUT, t->teacher->path,
                             "the teacher's input does not take the student's samples");
        memcpy(tin->data, in->data, pare_tensor_nbytes(in));
    }
    return rc;
}

/* Forward, losses and their seeds, backward. *loss = the total. */
static pare_status train_step(trainer *t, const pare_train_step_info *info, double *loss,
                              double *task_loss, pare_error *err)
{
    const pare_train_opts *o = t->o;
    int64_t step = info->step;
    double total = 0.0;
    pare_status rc;

    pare_exec_set_step(t->x, (uint64_t)step);
    rc = pare_exec_run(t->x, err);
    if (rc == PARE_OK && t->tx && t->n_pairs)
        rc = pare_exec_run(t->tx, err);
    if (rc != PARE_OK)
        return rc;
    if (o->hooks.after_forward && !o->hooks.after_forward(o->hooks.user, t->x, t->g, info))
        return pare_fail(err, PARE_ECANCELED, NULL, "stopped at step %lld", (long long)step);
    for (int i = 0; i < t->n_seeds; i++)
        memset(t->seed_grads[i]->data, 0, pare_tensor_nbytes(t->seed_grads[i]));
    *task_loss = NAN;
    if (t->task_weight > 0) {
        int out = t->g->outputs[0];
        int s = add_seed(t, out, err); /* found: registered at setup */
        double l = 0.0;
        rc = pare_loss_cross_entropy(pare_exec_output(t->x, 0), t->labels, o->label_smoothing,
                                     (float)t->task_weight, &l, t->seed_grads[s], err);
        if (rc != PARE_OK)
            return rc;
        *task_loss = l / t->task_weight;
        total += l;
    }
    for (int i = 0; i < t->n_pairs; i++) {
        pair_rt *pr = &t->pairs[i];
        const pare_distill_pair *p = pr->p;
        const pare_tensor *tv = pare_exec_value_shape(t->tx, pr->t_val);
        const pare_tensor *sv = pare_exec_value_shape(t->x, pr->s_val);
        const pare_tensor *student = sv;
        pare_tensor *grad = t->seed_grads[pr->seed];
        float w = (float)p->alpha;
        double l = 0.0;

        if (pr->aw) {
            adapter_forward(pr, sv);
            memset(pr->adout->data, 0, pare_tensor_nbytes(pr->adout));
            student = pr->aout;
            grad = pr->adout;
        }
        switch (p->loss) {
        case PARE_LOSS_SOFT_LABEL:
            rc = pare_loss_soft_label(tv, student, o->temperature, w, &l, grad, err);
            break;
        case PARE_LOSS_L2:
            rc = pare_loss_mse(student, tv, w, &l, grad, err);
            break;
        case PARE_LOSS_COSINE:
            rc = pare_loss_cosine(tv, student, w, &l, grad, err);
            break;
        case PARE_LOSS_FSP:
            rc = pare_loss_fsp(tv, pare_exec_value_shape(t->tx, pr->t_val2), sv,
                               pare_exec_value_shape(t->x, pr->s_val2), w, &l, grad,
                               t->seed_grads[pr->seed2], err);
            break;
        default:
            rc = pare_fail(err, PARE_EINPUT, NULL, "loss '%s' cannot be a distillation loss",
                           pare_loss_kind_name(p->loss));
        }
        if (rc != PARE_OK) {
            pare_error_prefix(err, "pair %s:%s: ", p->teacher, p->student);
            return rc;
        }
        if (pr->aw)
            adapter_backward(pr, sv, t->seed_grads[pr->seed]);
        total += l;
    }
    *loss = total;
    if (!isfinite(total))
        return first_nonfinite(t, step, total, err);
    return pare_exec_backward(t->x, t->seed_vals, (const pare_tensor *const *)t->seed_grads,
                              t->n_seeds, err);
}

/* sum of squares of every element, in order (as the optimizer sums it) */
static double sum_squares(const pare_tensor *g)
{
    const float *d = pare_tensor_f32(g);
    double ss = 0;
    for (int64_t k = 0; k < pare_tensor_numel(g); k++)
        ss += (double)d[k] * d[k];
    return ss;
}

static void scale_grad(pare_tensor *g, float c)
{
    float *d = pare_tensor_f32(g);
    for (int64_t k = 0; k < pare_tensor_numel(g); k++)
        d[k] *= c;
}

/* torch.nn.utils.clip_grad_norm_ over the parameters, adapters and extras. */
static void clip_all(trainer *t, pare_tensor *const *extra_grads)
{
    double ss = 0, coef;

    for (int i = 0; i < t->n_opt; i++)
        ss += sum_squares(t->opt_grads[i]);
    for (int i = 0; i < t->n_extra; i++)
        ss += sum_squares(extra_grads[i]);
    coef = t->o->optim.grad_clip_norm / (sqrt(ss) + 1e-6);
    if (coef >= 1.0)
        return;
    for (int i = 0; i < t->n_opt; i++)
        scale_grad(t->opt_grads[i], (float)coef);
    for (int i = 0; i < t->n_extra; i++)
        scale_grad(extra_grads[i], (float)coef);
}

static bool check_finite(const trainer *t, int v, int64_t step, double lr, pare_error *err)
{
    const char *name = t->g->values[v].name;

    if (all_finite(t->g->values[v].init))
        return true;
    pare_fail(err, PARE_ENUMERIC, name,
              "weight '%s' is not finite at step %lld after the optimizer update", name,
              (long long)step + 1);
    pare_error_hint(err, "lower the learning rate (it is %g at this step), or clip gradients", lr);
    return false;
}

static pare_status update(trainer *t, int64_t step, double lr, double beta1, pare_error *err)
{
    pare_tensor *eg_small[8], **eg = t->n_extra <= 8 ? eg_small
                                                      : pare_alloc((size_t)t->n_extra * sizeof *eg);
    pare_status rc = PARE_OK;

    if (!eg)
        return oom(err);
    /* the exec owns the gradient buffers; the optimizer may scale them (clipping) */
    for (int i = 0; i < t->n_params; i++)
        t->opt_grads[i] = (pare_tensor *)pare_exec_grad(t->x, t->param_vals[i]);
    for (int i = 0; i < t->n_extra; i++)
        eg[i] = (pare_tensor *)pare_exec_grad(t->x, t->extra_vals[i]);
    if (t->clip_here)
        clip_all(t, eg);
    rc = pare_optim_step(t->optim, t->opt_params, t->opt_grads, lr, beta1, NULL, err);
    for (int i = 0; i < t->n_extra && rc == PARE_OK; i++) {
        pare_tensor *p = t->g->values[t->extra_vals[i]].init;
        double mult = t->o->extra[i].lr_mult > 0 ? t->o->extra[i].lr_mult : 1.0;
        rc = pare_optim_step(t->extra_optim[i], &p, &eg[i], lr * mult, beta1, NULL, err);
    }
    if (eg != eg_small)
        pare_free(eg);
    if (rc != PARE_OK)
        return rc;
    for (int i = 0; t->zero_masks && i < t->n_params; i++) {
        const uint8_t *zm = t->zero_masks[i];
        float *w = pare_tensor_f32(t->opt_params[i]);
        for (int64_t k = 0; zm && k < pare_tensor_numel(t->opt_params[i]); k++)
            if (zm[k])
                w[k] = 0.0f;
    }
    for (int i = 0; i < t->n_params; i++)
        if (!check_finite(t, t->param_vals[i], step, lr, err))
            return PARE_ENUMERIC;
    for (int i = 0; i < t->n_extra; i++)
        if (!check_finite(t, t->extra_vals[i], step, lr, err))
            return PARE_ENUMERIC;
    return PARE_OK;
}

/* ---- evaluation ---- */

static pare_status evaluate(trainer *t, double *metric, pare_error *err)
{
    const pare_train_opts *o = t->o;
    pare_dataset *ds = o->eval_data;
    int64_t count = pare_dataset_count(ds);
    pare_accuracy acc;
    pare_similarity sim;
    pare_similarity_result sr;
    pare_status rc = PARE_OK;

    if (o->eval_limit > 0 && o->eval_limit < count)
        count = o->eval_limit;
    pare_accuracy_init(&acc, 1);
    pare_similarity_init(&sim);
    pare_dataset_begin_epoch(ds, 0);
    pare_exec_set_training(t->x, false);
    for (int64_t first = 0; first < count && rc == PARE_OK; first += t->B) {
        int64_t n = count - first < t->B ? count - first : t->B;
        pare_progress_event ev = {.stage = "eval", .done = first / t->B, .unit = "batch",
                                  .total = (count + t->B - 1) / t->B, .loss = NAN,
                                  .metric = NAN};
        if (!pare_progress_report(o->progress, &ev)) {
            rc = pare_fail(err, PARE_ECANCELED, NULL, "stopped at step %lld", (long long)t->step);
            break;
        }
        rc = fill_batch(t, ds, first, n, err);
        if (rc == PARE_OK)
            rc = pare_exec_run(t->x, err);
        if (rc != PARE_OK)
            break;
        if (t->eval_labels) {
            rc = pare_accuracy_add(&acc, pare_exec_output(t->x, 0), t->labels, n, err);
        } else {
            rc = pare_exec_run(t->tx, err);
            if (rc == PARE_OK)
                rc = pare_similarity_add(&sim, pare_exec_output(t->x, 0),
                                         pare_exec_output(t->tx, 0), n, err);
        }
    }
    pare_exec_set_training(t->x, true);
    if (rc != PARE_OK)
        return rc;
    pare_similarity_get(&sim, &sr);
    *metric = t->eval_labels ? pare_accuracy_top1(&acc) : sr.cosine_mean;
    return PARE_OK;
}

static void snapshot_best(trainer *t)
{
    for (int i = 0; i < t->n_mut; i++)
        memcpy(t->best[i]->data, t->g->values[t->mut_vals[i]].init->data,
               pare_tensor_nbytes(t->best[i]));
}

static pare_status eval_point(trainer *t, pare_error *err)
{
    double m;
    pare_status rc = evaluate(t, &m, err);

    if (rc != PARE_OK)
        return rc;
    t->last_metric = m;
    if (t->best_step < 0 || m > t->best_metric) {
        t->best_metric = m;
        t->best_step = t->step;
        snapshot_best(t);
    }
    return PARE_OK;
}

/* ---- checkpoints ---- */

static pare_status ensure_dir(const char *dir, pare_error *err)
{
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return pare_fail(err, PARE_EIO, dir, "cannot create the checkpoint directory: %s",
                         strerror(errno));
    return PARE_OK;
}

static pare_tensor *scalar_tensor(pare_dtype dt, double v)
{
    int64_t one = 1;
    pare_tensor *t = pare_tensor_new(dt, 1, &one);
    if (t && dt == PARE_I64)
        ((int64_t *)t->data)[0] = (int64_t)v;
    else if (t)
        ((double *)t->data)[0] = v;
    return t;
}

static int extra_state_count(const trainer *t)
{
    int n = 0;
    for (int i = 0; i < t->n_extra; i++)
        n += pare_optim_state_count(t->extra_optim[i]);
    return n;
}

/* Optimizer state entry i of extra e as "optim.extra.<e>.<name>". */
static pare_status extra_state_get(const trainer *t, int e, int i, char *buf, size_t size,
                                   const pare_tensor **st, pare_error *err)
{
    const char *nm;
    pare_status rc = pare_optim_state_get(t->extra_optim[e], i, &nm, st, err);
    if (rc == PARE_OK)
        snprintf(buf, size, "optim.extra.%d.%s", e, nm);
    return rc;
}

static pare_status save_checkpoint(trainer *t, pare_error *err)
{
    const char *dir = t->o->checkpoint_dir;
    int n_optim = pare_optim_state_count(t->optim);
    int cap = 3 + n_optim + extra_state_count(t) + t->n_mut + 2 * t->n_pairs, n = 0;
    const char **names = pare_calloc((size_t)cap, sizeof *names);
    const pare_tensor **arrays = pare_calloc((size_t)cap, sizeof *arrays);
    char **owned = pare_calloc((size_t)cap, sizeof *owned);
    pare_tensor *scalars[3] = {NULL, NULL, NULL};
    char path[PARE_DATA_PATH_MAX + 32];
    pare_status rc = PARE_OK;

    if (!names || !arrays || !owned)
        rc = oom(err);
    if (rc == PARE_OK)
        rc = ensure_dir(dir, err);
    if (rc == PARE_OK) {
        snprintf(path, sizeof path, "%s/model.onnx", dir);
        rc = pare_graph_save(t->g, path, err);
    }
    if (rc == PARE_OK) {
        scalars[0] = scalar_tensor(PARE_I64, (double)t->step);
        scalars[1] = scalar_tensor(PARE_I64, (double)t->best_step);
        scalars[2] = scalar_tensor(PARE_F64, t->best_metric);
        if (!scalars[0] || !scalars[1] || !scalars[2])
            rc = oom(err);
    }
    if (rc == PARE_OK) {
        names[n] = "step", arrays[n++] = scalars[0];
        names[n] = "best_step", arrays[n++] = scalars[1];
        names[n] = "best_metric", arrays[n++] = scalars[2];
    }
    for (int i = 0; rc == PARE_OK && i < n_optim; i++) {
        const char *nm;
        const pare_tensor *st;
        char buf[96];
        rc = pare_optim_state_get(t->optim, i, &nm, &st, err);
        if (rc != PARE_OK)
            break;
        snprintf(buf, sizeof buf, "optim.%s", nm);
        owned[n] = pare_strdup(buf);
        names[n] = owned[n];
        arrays[n++] = st;
    }
    for (int e = 0; rc == PARE_OK && e < t->n_extra; e++)
        for (int i = 0; rc == PARE_OK && i < pare_optim_state_count(t->extra_optim[e]); i++) {
            const pare_tensor *st;
            char buf[96];
            rc = extra_state_get(t, e, i, buf, sizeof buf, &st, err);
            if (rc != PARE_OK)
                break;
            owned[n] = pare_strdup(buf);
            names[n] = owned[n];
            arrays[n++] = st;
        }
    for (int i = 0; rc == PARE_OK && i < t->n_mut + 2 * t->n_pairs; i++) {
        char buf[64];
        const pare_tensor *a = NULL;
        if (i < t->n_mut) {
            snprintf(buf, sizeof buf, "best.%d", i);
            a = t->best[i];
        } else {
            const pair_rt *pr = &t->pairs[(i - t->n_mut) / 2];
            bool bias = (i - t->n_mut) % 2;
            snprintf(buf, sizeof buf, "adapter.%d.%s", (i - t->n_mut) / 2, bias ? "b" : "w");
            a = bias ? pr->ab : pr->aw;
        }
        if (!a)
            continue;
        owned[n] = pare_strdup(buf);
        names[n] = owned[n];
        arrays[n++] = a;
    }
    if (rc == PARE_OK) {
        snprintf(path, sizeof path, "%s/state.npz", dir);
        rc = pare_npz_save(path, names, arrays, n, err);
    }
    for (int i = 0; owned && i < cap; i++)
        pare_free(owned[i]);
    for (int i = 0; i < 3; i++)
        pare_tensor_free(scalars[i]);
    pare_free(owned);
    pare_free(names);
    pare_free((void *)arrays);
    return rc;
}

static pare_status restore_tensor(const pare_npz *z, const char *name, pare_tensor *into,
                                  const char *dir, pare_error *err)
{
    const pare_tensor *a = pare_npz_find(z, name);

    if (!a || !pare_tensor_same_shape(a, into) || a->dtype != into->dtype)
        return pare_fail(err, PARE_EINPUT, dir,
                         "checkpoint entry '%s' is missing or has another shape: the checkpoint "
                         "is from another model or other options",
                         name);
    memcpy(into->data, a->data, pare_tensor_nbytes(into));
    return PARE_OK;
}

static pare_status resume(trainer *t, pare_error *err)
{
    const char *dir = t->o->resume_dir;
    char path[PARE_DATA_PATH_MAX + 32];
    pare_graph *ck = NULL;
    pare_npz *z = NULL;
    pare_status rc;

    snprintf(path, sizeof path, "%s/model.onnx", dir);
    rc = pare_graph_load(path, &ck, err);
    if (rc != PARE_OK)
        return rc;
    for (int i = 0; rc == PARE_OK && i < t->n_mut; i++) {
        const pare_value *mine = &t->g->values[t->mut_vals[i]];
        int v = pare_graph_find_value(ck, mine->name);
        if (v < 0 || !ck->values[v].init || !pare_tensor_same_shape(ck->values[v].init, mine->init))
            rc = pare_fail(err, PARE_EINPUT, path,
                           "the checkpoint has no weight '%s' of shape as the model's: it is from "
                           "another model",
                           mine->name);
        else
            memcpy(mine->init->data, ck->values[v].init->data, pare_tensor_nbytes(mine->init));
    }
    pare_graph_free(ck);
    if (rc != PARE_OK)
        return rc;
    snprintf(path, sizeof path, "%s/state.npz", dir);
    rc = pare_npz_load(path, &z, err);
    if (rc != PARE_OK)
        return rc;
    {
        const pare_tensor *s = pare_npz_find(z, "step"), *bs = pare_npz_find(z, "best_step"),
                          *bm = pare_npz_find(z, "best_metric");
        if (!s || !bs || !bm) {
            pare_npz_free(z);
            return pare_fail(err, PARE_EINPUT, path, "not a pare training checkpoint");
        }
        t->step = pare_tensor_get_i64(s, 0);
        t->best_step = pare_tensor_get_i64(bs, 0);
        t->best_metric = pare_tensor_get_f64(bm, 0);
    }
    for (int i = 0; rc == PARE_OK && i < pare_optim_state_count(t->optim); i++) {
        const char *nm;
        const pare_tensor *st, *a;
        char buf[96];
        rc = pare_optim_state_get(t->optim, i, &nm, &st, err);
        if (rc != PARE_OK)
            break;
        snprintf(buf, sizeof buf, "optim.%s", nm);
        a = pare_npz_find(z, buf);
        rc = a ? pare_optim_state_set(t->optim, i, a, err)
               : pare_fail(err, PARE_EINPUT, path,
                           "checkpoint has no '%s': it was written with another optimizer", buf);
    }
    for (int e = 0; rc == PARE_OK && e < t->n_extra; e++)
        for (int i = 0; rc == PARE_OK && i < pare_optim_state_count(t->extra_optim[e]); i++) {
            const pare_tensor *st, *a;
            char buf[96];
            rc = extra_state_get(t, e, i, buf, sizeof buf, &st, err);
            if (rc != PARE_OK)
                break;
            a = pare_npz_find(z, buf);
            rc = a ? pare_optim_state_set(t->extra_optim[e], i, a, err)
                   : pare_fail(err, PARE_EINPUT, path,
                               "checkpoint has no '%s': it was written without extra parameter "
                               "'%s' or with another optimizer",
                               buf, t->o->extra[e].name);
        }
    for (int i = 0; rc == PARE_OK && i < t->n_mut; i++) {
        char buf[64];
        snprintf(buf, sizeof buf, "best.%d", i);
        rc = restore_tensor(z, buf, t->best[i], path, err);
    }
    for (int i = 0; rc == PARE_OK && i < t->n_pairs; i++) {
        char buf[64];
        if (!t->pairs[i].aw)
            continue;
        snprintf(buf, sizeof buf, "adapter.%d.w", i);
        rc = restore_tensor(z, buf, t->pairs[i].aw, path, err);
        snprintf(buf, sizeof buf, "adapter.%d.b", i);
        if (rc == PARE_OK)
            rc = restore_tensor(z, buf, t->pairs[i].ab, path, err);
    }
    pare_npz_free(z);
    if (rc == PARE_OK && (t->step < 0 || t->step > t->total_steps))
        rc = pare_fail(err, PARE_EINPUT, dir,
                       "the checkpoint is at step %lld, past this run's %lld steps",
                       (long long)t->step, (long long)t->total_steps);
    return rc;
}

/* ---- setup and teardown ---- */

void pare_train_opts_init(pare_train_opts *o)
{
    memset(o, 0, sizeof *o);
    o->epochs = 1;
    pare_optim_opts_init(&o->optim, PARE_OPTIM_ADAM);
    pare_schedule_init(&o->schedule, PARE_SCHED_CONSTANT, o->optim.lr);
    o->task_weight = NAN;
    o->keep_best = true;
    o->temperature = 1.0f;
}

static void trainer_fini(trainer *t)
{
    pare_exec_free(t->x);
    pare_exec_free(t->tx);
    pare_graph_free(t->self_teacher);
    pare_optim_free(t->optim);
    for (int i = 0; i < t->n_extra && t->extra_optim; i++)
        pare_optim_free(t->extra_optim[i]);
    pare_free(t->extra_optim);
    pare_free(t->extra_vals);
    for (int i = 0; i < t->n_pairs && t->pairs; i++) {
        pair_rt *pr = &t->pairs[i];
        pare_tensor_free(pr->aw);
        pare_tensor_free(pr->ab);
        pare_tensor_free(pr->agw);
        pare_tensor_free(pr->agb);
        pare_tensor_free(pr->aout);
        pare_tensor_free(pr->adout);
    }
    pare_free(t->pairs);
    for (int i = 0; i < t->n_seeds; i++)
        pare_tensor_free(t->seed_grads[i]);
    for (int i = 0; i < t->n_mut && t->best; i++)
        pare_tensor_free(t->best[i]);
    pare_free(t->best);
    for (int i = 0; t->zero_masks && i < t->n_params; i++)
        pare_free(t->zero_masks[i]);
    pare_free(t->zero_masks);
    pare_free(t->mut_vals);
    pare_free(t->param_vals);
    pare_free(t->opt_params);
    pare_free(t->opt_grads);
    pare_free(t->labels);
}

static pare_status check_opts(const pare_train_opts *o, pare_error *err)
{
    if (!o->train_data)
        return pare_fail(err, PARE_EINPUT, NULL, "no training data");
    if (o->iterations < 0 || o->epochs < 0 || (o->iterations == 0 && o->epochs == 0))
        return pare_fail(err, PARE_EINPUT, "epochs", "the run has no steps: give epochs >= 1 or "
                                                    "iterations >= 1");
    if (o->eval_every < 0 || o->eval_limit < 0)
        return pare_fail(err, PARE_EINPUT, "eval", "eval interval and limit must be >= 0");
    if (o->n_pairs > 0 && o->temperature <= 0)
        return pare_fail(err, PARE_EINPUT, "temperature", "the temperature must be > 0");
    if (!(isnan(o->task_weight) || o->task_weight >= 0))
        return pare_fail(err, PARE_EINPUT, "task_weight", "the task weight must be >= 0");
    return PARE_OK;
}

/* Labels, losses and teacher: which combination is meaningful. */
static pare_status setup_losses(trainer *t, const pare_graph *student, pare_error *err)
{
    const pare_train_opts *o = t->o;
    const char *spec = pare_dataset_spec(o->train_data);
    pare_status rc;

    t->has_labels = pare_dataset_has_labels(o->train_data);
    t->task_weight = isnan(o->task_weight) ? (t->has_labels ? 1.0 : 0.0) : o->task_weight;
    if (t->task_weight > 0 && !t->has_labels) {
        pare_fail(err, PARE_EINPUT, spec, "the training data has no labels, so there is no task "
                                          "loss to weight");
        pare_error_hint(err, "set the task weight to 0 for label-free distillation");
        return PARE_EINPUT;
    }
    t->teacher = o->teacher;
    if (!t->teacher && o->n_pairs > 0) {
        rc = pare_graph_clone(student, &t->self_teacher, err);
        if (rc != PARE_OK)
            return rc;
        t->teacher = t->self_teacher;
    }
    if (t->task_weight == 0 && !t->teacher) {
        pare_fail(err, PARE_EINPUT, spec,
                  "the training data has no labels and there is no teacher to distil from");
        pare_error_hint(err, "give labelled data, or a teacher and pairs (label-free "
                             "distillation)");
        return PARE_EINPUT;
    }
    t->eval_labels = o->eval_data && pare_dataset_has_labels(o->eval_data);
    if (o->eval_data && !t->eval_labels && !t->teacher) {
        /* the reference for output similarity: the model as given */
        rc = pare_graph_clone(student, &t->self_teacher, err);
        if (rc != PARE_OK)
            return rc;
        t->teacher = t->self_teacher;
    }
    t->metric_name = o->eval_data ? (t->eval_labels ? "top1" : "cosine") : NULL;
    return PARE_OK;
}

static bool is_extra(const trainer *t, int v)
{
    for (int i = 0; i < t->n_extra; i++)
        if (t->extra_vals[i] == v)
            return true;
    return false;
}

static pare_status unknown_extra(const pare_graph *g, const char *name, pare_error *err)
{
    const char **names = pare_alloc((size_t)(g->n_values ? g->n_values : 1) * sizeof *names);
    const char *close;
    int n = 0;

    if (!names)
        return oom(err);
    for (int v = 0; v < g->n_values; v++)
        if (g->values[v].init)
            names[n++] = g->values[v].name;
    close = pare_closest_word(name, names, n);
    pare_fail(err, PARE_EINPUT, name, "extra parameter '%s' is not an initializer of the model",
              name);
    if (close)
        pare_error_hint(err, "did you mean '%s'?", close);
    else
        pare_error_hint(err, "`pare info --json` lists the initializers");
    pare_free(names);
    return PARE_EINPUT;
}

/* opts.extra: float32 initializers, each once, with a usable rate and decay. */
static pare_status setup_extras(trainer *t, pare_error *err)
{
    const pare_train_opts *o = t->o;

    if (o->n_extra < 0 || (o->n_extra > 0 && !o->extra))
        return pare_fail(err, PARE_EINPUT, "extra", "n_extra is %d without a list", o->n_extra);
    t->extra_vals = pare_calloc((size_t)(o->n_extra ? o->n_extra : 1), sizeof *t->extra_vals);
    if (!t->extra_vals)
        return oom(err);
    for (int i = 0; i < o->n_extra; i++) {
        const pare_train_extra *e = &o->extra[i];
        const char *name = e->name ? e->name : "";
        int v = pare_graph_find_value(t->g, name);
        const pare_tensor *init = v >= 0 ? t->g->values[v].init : NULL;

        if (!init)
            return unknown_extra(t->g, name, err);
        if (init->dtype != PARE_F32 || !init->data)
            return pare_fail(err, PARE_EINPUT, name, "extra parameter '%s' has dtype '%s'; only "
                             "float32 tensors are trained", name, pare_dtype_name(init->dtype));
        if (is_extra(t, v))
            return pare_fail(err, PARE_EINPUT, name, "extra parameter '%s' is listed twice", name);
        if (!(e->lr_mult >= 0 && isfinite(e->lr_mult)))
            return pare_fail(err, PARE_EINPUT, name, "extra parameter '%s': lr_mult %g must be a "
                             "finite number >= 0", name, e->lr_mult);
        if (!(isnan(e->weight_decay) || (e->weight_decay >= 0 && isfinite(e->weight_decay))))
            return pare_fail(err, PARE_EINPUT, name, "extra parameter '%s': weight_decay %g must be "
                             ">= 0 (NAN: the optimizer's)", name, e->weight_decay);
        t->extra_vals[t->n_extra++] = v;
    }
    return PARE_OK;
}

static pare_status setup_params(trainer *t, pare_error *err)
{
    const char **names = NULL;
    int n = 0, k = 0;
    pare_status rc = setup_extras(t, err);

    if (rc == PARE_OK)
        rc = pare_train_param_names(t->g, &names, &n, err);
    if (rc != PARE_OK)
        return rc;
    for (int i = 0; i < n; i++)
        if (!frozen(t->o, names[i]) && !is_extra(t, pare_graph_find_value(t->g, names[i])))
            names[k++] = names[i];
    if (k == 0 && t->n_extra == 0) {
        pare_free(names);
        return pare_fail(err, PARE_EINPUT, t->g->path,
                         n ? "nothing to train: every parameter is frozen"
                           : "nothing to train: the model has no float weights");
    }
    t->n_params = k;
    t->param_vals = pare_alloc((size_t)(k ? k : 1) * sizeof *t->param_vals);
    if (!t->param_vals) {
        pare_free(names);
        return oom(err);
    }
    for (int i = 0; i < k; i++)
        t->param_vals[i] = pare_graph_find_value(t->g, names[i]);
    if (t->n_extra > 0) {
        /* the exec differentiates the parameters and the extras */
        const char **all = pare_alloc((size_t)(k + t->n_extra) * sizeof *all);
        if (!all) {
            pare_free(names);
            return oom(err);
        }
        memcpy(all, names, (size_t)k * sizeof *all);
        for (int i = 0; i < t->n_extra; i++)
            all[k + i] = t->g->values[t->extra_vals[i]].name;
        pare_free(names);
        names = all;
    }
    rc = new_exec(t->g, t->in_val, t, true, names, k + t->n_extra, NULL, 0, &t->x, err);
    pare_free(names);
    return rc;
}

/* Parameters, then BatchNorm running statistics: what best snapshots keep. */
static pare_status setup_mutable(trainer *t, pare_error *err)
{
    const pare_graph *g = t->g;

    t->mut_vals = pare_alloc((size_t)(t->n_params + t->n_extra + 2 * g->n_nodes + 1) *
                             sizeof *t->mut_vals);
    if (!t->mut_vals)
        return oom(err);
    for (int i = 0; i < t->n_params; i++)
        t->mut_vals[t->n_mut++] = t->param_vals[i];
    for (int i = 0; i < t->n_extra; i++)
        t->mut_vals[t->n_mut++] = t->extra_vals[i];
    for (int n = 0; n < g->n_nodes; n++) {
        const pare_node *nd = &g->nodes[n];
        if (strcmp(nd->op_type, "BatchNormalization") || nd->n_inputs < 5)
            continue;
        for (int i = 3; i < 5; i++) {
            int v = nd->inputs[i];
            bool seen = false;
            if (v < 0 || !g->values[v].init || g->values[v].init->dtype != PARE_F32)
                continue;
            for (int j = 0; j < t->n_mut; j++)
                seen = seen || t->mut_vals[j] == v;
            if (!seen)
                t->mut_vals[t->n_mut++] = v;
        }
    }
    t->best = pare_calloc((size_t)(t->n_mut ? t->n_mut : 1), sizeof *t->best);
    if (!t->best)
        return oom(err);
    for (int i = 0; i < t->n_mut; i++) {
        t->best[i] = pare_tensor_dup(g->values[t->mut_vals[i]].init);
        if (!t->best[i])
            return oom(err);
    }
    return PARE_OK;
}

static pare_status setup_teacher(trainer *t, pare_error *err)
{
    const pare_train_opts *o = t->o;
    const char **taps;
    int n_taps = 0;
    pare_status rc;

    if (!t->teacher)
        return PARE_OK;
    rc = runtime_input(t->teacher, NULL, &t->t_in_val, &t->t_in_idx, err);
    if (rc != PARE_OK)
        return rc;
    taps = pare_calloc((size_t)(2 * o->n_pairs + 1), sizeof *taps);
    if (!taps)
        return oom(err);
    for (int i = 0; i < o->n_pairs; i++) {
        if (pare_graph_find_value(t->teacher, o->pairs[i].teacher) >= 0)
            taps[n_taps++] = o->pairs[i].teacher;
        if (o->pairs[i].teacher2 && pare_graph_find_value(t->teacher, o->pairs[i].teacher2) >= 0)
            taps[n_taps++] = o->pairs[i].teacher2;
    }
    rc = new_exec(t->teacher, t->t_in_val, t, false, NULL, 0, taps, n_taps, &t->tx, err);
    pare_free(taps);
    if (rc != PARE_OK)
        pare_error_prefix(err, "teacher: ");
    return rc;
}

static pare_status setup_zero_masks(trainer *t, pare_error *err)
{
    t->zero_masks = pare_calloc((size_t)(t->n_params ? t->n_params : 1), sizeof *t->zero_masks);
    if (!t->zero_masks)
        return oom(err);
    for (int i = 0; i < t->n_params; i++) {
        const pare_tensor *w = t->g->values[t->param_vals[i]].init;
        const float *d = pare_tensor_f32(w);
        int64_t n = pare_tensor_numel(w), zeros = 0;
        for (int64_t k = 0; k < n; k++)
            zeros += d[k] == 0.0f;
        if (!zeros)
            continue;
        t->zero_masks[i] = pare_alloc((size_t)n);
        if (!t->zero_masks[i])
            return oom(err);
        for (int64_t k = 0; k < n; k++)
            t->zero_masks[i][k] = d[k] == 0.0f;
    }
    return PARE_OK;
}

static pare_status setup_optim(trainer *t, pare_error *err)
{
    pare_optim_opts main_opts = t->o->optim;
    int n_adapt = 0, k;
    pare_status rc;

    for (int i = 0; i < t->n_pairs; i++)
        n_adapt += t->pairs[i].aw ? 2 : 0;
    t->n_opt = t->n_params + n_adapt;
    t->opt_params = pare_calloc((size_t)(t->n_opt ? t->n_opt : 1), sizeof *t->opt_params);
    t->opt_grads = pare_calloc((size_t)(t->n_opt ? t->n_opt : 1), sizeof *t->opt_grads);
    if (!t->opt_params || !t->opt_grads)
        return oom(err);
    for (k = 0; k < t->n_params; k++)
        t->opt_params[k] = t->g->values[t->param_vals[k]].init;
    for (int i = 0; i < t->n_pairs; i++) {
        if (!t->pairs[i].aw)
            continue;
        t->opt_params[k] = t->pairs[i].aw;
        t->opt_grads[k++] = t->pairs[i].agw;
        t->opt_params[k] = t->pairs[i].ab;
        t->opt_grads[k++] = t->pairs[i].agb;
    }
    t->sched = t->o->schedule;
    if (t->sched.total_steps == 0)
        t->sched.total_steps = t->total_steps - t->sched.warmup_steps > 0
                                   ? t->total_steps - t->sched.warmup_steps
                                   : 1;
    if (pare_schedule_check(&t->sched, err) != PARE_OK)
        return PARE_EINPUT;
    /* torch clips over every parameter group together: with extras (each in
       its own optimizer) the trainer clips, the optimizers do not */
    t->clip_here = t->n_extra > 0 && main_opts.grad_clip_norm > 0;
    if (t->clip_here)
        main_opts.grad_clip_norm = 0;
    rc = pare_optim_new(&main_opts, t->n_opt, (const pare_tensor *const *)t->opt_params, &t->optim,
                        err);
    if (rc == PARE_OK && t->n_extra > 0) {
        t->extra_optim = pare_calloc((size_t)t->n_extra, sizeof *t->extra_optim);
        if (!t->extra_optim)
            rc = oom(err);
    }
    for (int i = 0; i < t->n_extra && rc == PARE_OK; i++) {
        pare_optim_opts eo = main_opts;
        const pare_tensor *p = t->g->values[t->extra_vals[i]].init;
        if (!isnan(t->o->extra[i].weight_decay))
            eo.weight_decay = t->o->extra[i].weight_decay;
        eo.grad_clip_norm = 0;
        rc = pare_optim_new(&eo, 1, &p, &t->extra_optim[i], err);
        if (rc != PARE_OK)
            pare_error_prefix(err, "extra parameter '%s': ", t->o->extra[i].name);
    }
    return rc;
}

static pare_status setup(trainer *t, const pare_graph *student, pare_error *err)
{
    const pare_train_opts *o = t->o;
    int64_t count = pare_dataset_count(o->train_data);
    pare_status rc;

    t->B = pare_dataset_batch_size(o->train_data);
    if (count < t->B)
        return pare_fail(err, PARE_EINPUT, pare_dataset_spec(o->train_data),
                         "the training data has %lld samples, fewer than one batch of %d",
                         (long long)count, t->B);
    /* full batches only: BatchNorm statistics of a tiny last batch hurt */
    t->batches_per_epoch = count / t->B;
    t->total_steps = o->iterations > 0 ? o->iterations : o->epochs * t->batches_per_epoch;
    t->best_step = -1;
    t->best_metric = NAN;
    t->last_metric = NAN;
    t->labels = pare_calloc((size_t)t->B, sizeof *t->labels);
    if (!t->labels)
        return oom(err);
    rc = setup_losses(t, student, err);
    if (rc == PARE_OK)
        rc = pare_graph_clone(student, &t->g, err);
    if (rc == PARE_OK && o->reinit)
        rc = pare_train_reinit(t->g, o->seed, err);
    if (rc == PARE_OK)
        rc = runtime_input(t->g, o->input_name, &t->in_val, &t->in_idx, err);
    if (rc == PARE_OK)
        rc = setup_params(t, err);
    if (rc == PARE_OK && o->keep_sparsity)
        rc = setup_zero_masks(t, err);
    if (rc == PARE_OK)
        rc = setup_mutable(t, err);
    if (rc == PARE_OK)
        rc = setup_teacher(t, err);
    t->n_pairs = o->n_pairs;
    if (rc == PARE_OK)
        rc = resolve_pairs(t, err);
    if (rc == PARE_OK && t->task_weight > 0) {
        const pare_tensor *y = pare_exec_output(t->x, 0);
        if (!y || y->ndim != 2)
            return pare_fail(err, PARE_EINPUT, t->g->path,
                             "the task loss needs logits [batch, classes] as the first output");
        rc = add_seed(t, t->g->outputs[0], err) < 0 ? PARE_EINPUT : PARE_OK;
    }
    if (rc == PARE_OK)
        rc = setup_optim(t, err);
    if (rc == PARE_OK && o->resume_dir)
        rc = resume(t, err);
    return rc;
}

/* ---- the run ---- */

static bool eval_due(const trainer *t)
{
    const pare_train_opts *o = t->o;
    if (!o->eval_data)
        return false;
    if (t->step == t->total_steps)
        return true;
    return o->eval_every > 0 ? t->step % o->eval_every == 0 : t->step % t->batches_per_epoch == 0;
}

pare_status pare_train(const pare_graph *student, const pare_train_opts *opts, pare_graph **out,
                       pare_train_result *res, pare_error *err)
{
    trainer t;
    pare_train_result r;
    double t_train = 0.0;
    int64_t samples = 0;
    bool evaluated_last = false;
    pare_status rc = check_opts(opts, err);

    memset(&t, 0, sizeof t);
    memset(&r, 0, sizeof r);
    t.o = opts;
    *out = NULL;
    r.first_loss = r.last_loss = r.last_task_loss = NAN;
    r.metric_first = r.metric_best = r.metric_last = NAN;
    if (rc == PARE_OK)
        rc = setup(&t, student, err);
    if (rc != PARE_OK)
        goto done;
    r.start_step = t.step;
    r.metric_name = t.metric_name;
    r.n_params = t.n_params + t.n_extra;
    for (int i = 0; i < t.n_params; i++)
        r.n_param_values += pare_tensor_numel(t.opt_params[i]);
    for (int i = 0; i < t.n_extra; i++)
        r.n_param_values += pare_tensor_numel(t.g->values[t.extra_vals[i]].init);
    if (opts->eval_data && !opts->resume_dir) {
        rc = eval_point(&t, err);
        if (rc != PARE_OK)
            goto done;
        r.metric_first = t.last_metric;
    }
    while (t.step < t.total_steps) {
        int64_t epoch = t.step / t.batches_per_epoch, pos = t.step % t.batches_per_epoch;
        double t0 = now_s(), loss = NAN, task_loss = NAN;
        pare_progress_event ev = {.stage = "train", .unit = "step", .total = t.total_steps};
        pare_train_step_info info = {.step = t.step, .lr = pare_schedule_lr(&t.sched, t.step),
                                     .beta1 = pare_schedule_beta1(&t.sched, t.step),
                                     .loss = NAN};

        if (pos == 0 || t.step == r.start_step)
            pare_dataset_begin_epoch(opts->train_data, epoch);
        rc = fill_batch(&t, opts->train_data, pos * t.B, t.B, err);
        if (rc == PARE_OK)
            rc = train_step(&t, &info, &loss, &task_loss, err);
        if (rc == PARE_OK)
            rc = update(&t, t.step, info.lr, info.beta1, err);
        info.loss = loss;
        if (rc == PARE_OK && opts->hooks.after_step &&
            !opts->hooks.after_step(opts->hooks.user, t.x, t.g, &info))
            rc = pare_fail(err, PARE_ECANCELED, NULL, "stopped at step %lld", (long long)t.step);
        if (rc != PARE_OK)
            goto done;
        t_train += now_s() - t0;
        samples += t.B;
        t.step++;
        if (isnan(r.first_loss))
            r.first_loss = loss;
        r.last_loss = loss;
        r.last_task_loss = task_loss;
        evaluated_last = false;
        if (eval_due(&t)) {
            rc = eval_point(&t, err);
            if (rc != PARE_OK)
                goto done;
            evaluated_last = true;
        }
        if (opts->checkpoint_dir && opts->checkpoint_every > 0 &&
            t.step % opts->checkpoint_every == 0 && t.step < t.total_steps) {
            rc = save_checkpoint(&t, err);
            if (rc != PARE_OK)
                goto done;
        }
        ev.done = t.step;
        ev.loss = loss;
        ev.metric = t.last_metric;
        if (!pare_progress_report(opts->progress, &ev)) {
            rc = pare_fail(err, PARE_ECANCELED, NULL, "stopped at step %lld", (long long)t.step);
            goto done;
        }
    }
    if (opts->eval_data && !evaluated_last && t.step > r.start_step) {
        rc = eval_point(&t, err);
        if (rc != PARE_OK)
            goto done;
    }
    if (opts->checkpoint_dir && opts->checkpoint_every >= 0) {
        rc = save_checkpoint(&t, err);
        if (rc != PARE_OK)
            goto done;
    }
    if (opts->keep_best && t.best_step >= 0)
        for (int i = 0; i < t.n_mut; i++)
            memcpy(t.g->values[t.mut_vals[i]].init->data, t.best[i]->data,
                   pare_tensor_nbytes(t.best[i]));
    *out = t.g;
    t.g = NULL;
done:
    if (rc == PARE_ECANCELED && t.optim && opts->checkpoint_dir) {
        pare_error ck_err = {0};
        /* a checkpoint of the last finished step; the batch in flight is redone */
        if (save_checkpoint(&t, &ck_err) != PARE_OK) {
            char msg[512];
            pare_error_format(&ck_err, msg, sizeof msg);
            pare_error_hint(err, "the checkpoint could not be written: %s", msg);
        }
    }
    r.steps = t.step;
    r.metric_best = t.best_metric;
    r.metric_last = t.last_metric;
    r.best_step = t.best_step;
    r.seconds = t_train;
    r.images_per_s = t_train > 0 ? (double)samples / t_train : 0.0;
    if (res)
        *res = r;
    trainer_fini(&t); /* the execs read their graphs while being freed */
    pare_graph_free(t.g);
    return rc;
}
