/* SGD / Adam / AdamW with PyTorch's update rules (see pare/optim.h).
 *
 * Element arithmetic is done in float with the per-step scalars computed in
 * double and rounded once, as torch does for float32 parameters, so a few
 * steps agree with torch to float rounding. The step counter lives in the
 * "step" state tensor, so checkpoints need no special case. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "pare/alloc.h"
#include "pare/optim.h"

/* Below this many elements a tensor is updated on one thread: forking costs
   more than the update. */
#define OPTIM_PAR_MIN 65536

typedef struct optim_entry {
    char name[32];
    pare_tensor *t;
} optim_entry;

struct pare_optim {
    pare_optim_opts opts;
    int n_params;
    int n_entries;
    optim_entry *entries;  /* [0] = "step"; then the buffers, see state_layout */
    int64_t *step;         /* data of entries[0] */
    pare_tensor *shapes;   /* n_params shape carriers, for checking each step */
};

static const char *const kind_names[] = { "sgd", "adam", "adamw" };

const char *pare_optim_kind_name(pare_optim_kind kind)
{
    if ((int)kind < 0 || (int)kind > PARE_OPTIM_ADAMW)
        return "?";
    return kind_names[kind];
}

void pare_optim_opts_init(pare_optim_opts *o, pare_optim_kind kind)
{
    memset(o, 0, sizeof *o);
    o->kind = kind;
    o->lr = 1e-3;
    o->beta1 = 0.9;
    o->beta2 = 0.999;
    o->eps = 1e-8;
    o->weight_decay = kind == PARE_OPTIM_ADAMW ? 0.01 : 0.0;
}

pare_status pare_optim_opts_parse(const char *name, pare_optim_opts *o, pare_error *err)
{
    static const char *const spellings[] = { "sgd", "momentum", "adam", "adamw" };
    static const pare_optim_kind kinds[] = { PARE_OPTIM_SGD, PARE_OPTIM_SGD, PARE_OPTIM_ADAM,
                                             PARE_OPTIM_ADAMW };
    const char *guess;

    for (int i = 0; i < 4; i++) {
        if (name && strcasecmp(name, spellings[i]) == 0) {
            pare_optim_opts_init(o, kinds[i]);
            if (i == 1)
                o->momentum = 0.9;
            return PARE_OK;
        }
    }
    pare_fail(err, PARE_EINPUT, NULL, "unknown optimizer '%s'", name ? name : "");
    guess = name ? pare_closest_word(name, spellings, 4) : NULL;
    if (guess)
        pare_error_hint(err, "did you mean '%s'?", guess);
    else
        pare_error_hint(err, "the optimizers are sgd, momentum, adam, adamw");
    return PARE_EINPUT;
}

static pare_status check_opts(const pare_optim_opts *o, pare_error *err)
{
    if ((int)o->kind < 0 || (int)o->kind > PARE_OPTIM_ADAMW)
        return pare_fail(err, PARE_EINPUT, NULL, "unknown optimizer kind %d", (int)o->kind);
    if (!(o->momentum >= 0))
        return pare_fail(err, PARE_EINPUT, NULL, "momentum %g must be >= 0", o->momentum);
    if (o->nesterov && o->kind == PARE_OPTIM_SGD && !(o->momentum > 0)) {
        pare_fail(err, PARE_EINPUT, NULL, "nesterov needs momentum > 0");
        pare_error_hint(err, "set momentum (0.9 is usual) or turn nesterov off");
        return PARE_EINPUT;
    }
    if (!(o->beta1 >= 0 && o->beta1 < 1))
        return pare_fail(err, PARE_EINPUT, NULL, "beta1 %g must be in [0, 1)", o->beta1);
    if (!(o->beta2 >= 0 && o->beta2 < 1))
        return pare_fail(err, PARE_EINPUT, NULL, "beta2 %g must be in [0, 1)", o->beta2);
    if (!(o->eps >= 0))
        return pare_fail(err, PARE_EINPUT, NULL, "eps %g must be >= 0", o->eps);
    if (!(o->weight_decay >= 0))
        return pare_fail(err, PARE_EINPUT, NULL, "weight_decay %g must be >= 0", o->weight_decay);
    if (!(o->grad_clip_norm >= 0))
        return pare_fail(err, PARE_EINPUT, NULL, "grad_clip_norm %g must be >= 0 (0 = off)",
                         o->grad_clip_norm);
    return PARE_OK;
}

/* Buffers per parameter: SGD with momentum 1, Adam/AdamW 2, plain SGD 0. */
static int buffers_per_param(const pare_optim_opts *o)
{
    if (o->kind == PARE_OPTIM_SGD)
        return o->momentum > 0 ? 1 : 0;
    return 2;
}

void pare_optim_free(pare_optim *o)
{
    if (!o)
        return;
    for (int i = 0; i < o->n_entries; i++)
        pare_tensor_free(o->entries[i].t);
    pare_free(o->entries);
    pare_free(o->shapes);
    pare_free(o);
}

pare_status pare_optim_new(const pare_optim_opts *opts, int n_params,
                           const pare_tensor *const *params, pare_optim **out,
                           pare_error *err)
{
    pare_optim *o = NULL;
    int per;
    pare_status rc = check_opts(opts, err);

    *out = NULL;
    if (rc != PARE_OK)
        return rc;
    if (n_params < 0)
        return pare_fail(err, PARE_EINPUT, NULL, "negative parameter count %d", n_params);
    for (int i = 0; i < n_params; i++) {
        if (!params[i] || params[i]->dtype != PARE_F32) {
            char where[32];
            snprintf(where, sizeof where, "param %d", i);
            return pare_fail(err, PARE_EUNSUPPORTED, where, "optimizer parameters must be float32, got %s",
                             params[i] ? pare_dtype_name(params[i]->dtype) : "nothing");
        }
    }
    per = buffers_per_param(opts);
    o = pare_calloc(1, sizeof *o);
    if (o) {
        o->entries = pare_calloc((size_t)(1 + per * n_params), sizeof *o->entries);
        o->shapes = pare_calloc((size_t)(n_params > 0 ? n_params : 1), sizeof *o->shapes);
    }
    if (!o || !o->entries || !o->shapes) {
        pare_optim_free(o);
        return pare_fail(err, PARE_ENOMEM, NULL, "out of memory creating the optimizer");
    }
    o->opts = *opts;
    o->n_params = n_params;
    for (int i = 0; i < n_params; i++)
        pare_tensor_view(&o->shapes[i], PARE_F32, params[i]->ndim, params[i]->dims, NULL);
    {
        int64_t one = 1;
        o->entries[0].t = pare_tensor_new(PARE_I64, 1, &one);
        snprintf(o->entries[0].name, sizeof o->entries[0].name, "step");
        o->n_entries = 1;
        rc = o->entries[0].t ? PARE_OK : PARE_ENOMEM;
    }
    /* Order: all first buffers, then all second ones ("exp_avg.*" then
       "exp_avg_sq.*"), as torch's state_dict groups them per kind. */
    for (int b = 0; rc == PARE_OK && b < per; b++) {
        const char *stem = opts->kind == PARE_OPTIM_SGD ? "momentum_buffer"
                           : b == 0                     ? "exp_avg"
                                                        : "exp_avg_sq";
        for (int i = 0; rc == PARE_OK && i < n_params; i++) {
            optim_entry *e = &o->entries[o->n_entries];
            e->t = pare_tensor_new(PARE_F32, params[i]->ndim, params[i]->dims);
            snprintf(e->name, sizeof e->name, "%s.%d", stem, i);
            if (e->t)
                o->n_entries++;
            else
                rc = PARE_ENOMEM;
        }
    }
    if (rc != PARE_OK) {
        pare_optim_free(o);
        return pare_fail(err, PARE_ENOMEM, NULL, "out of memory for the optimizer state");
    }
    o->step = (int64_t *)o->entries[0].t->data;
    *out = o;
    return PARE_OK;
}

const pare_optim_opts *pare_optim_get_opts(const pare_optim *o)
{
    return &o->opts;
}

/* Buffer b (0 or 1) of parameter i. */
static float *buffer(const pare_optim *o, int b, int i)
{
    return pare_tensor_f32(o->entries[1 + b * o->n_params + i].t);
}

static pare_status check_tensors(const pare_optim *o, pare_tensor *const *params,
                                 pare_tensor *const *grads, pare_error *err)
{
    for (int i = 0; i < o->n_params; i++) {
        const pare_tensor *want = &o->shapes[i];
        char where[32], sa[96], sb[96];
        snprintf(where, sizeof where, "param %d", i);
        if (!params[i] || !grads[i] || !params[i]->data || !grads[i]->data ||
            params[i]->dtype != PARE_F32 || grads[i]->dtype != PARE_F32)
            return pare_fail(err, PARE_EUNSUPPORTED, where,
                             "parameter and gradient must be float32 tensors with data");
        if (!pare_tensor_same_shape(params[i], want) || !pare_tensor_same_shape(grads[i], want)) {
            const pare_tensor *bad = pare_tensor_same_shape(params[i], want) ? grads[i] : params[i];
            pare_shape_format(want->ndim, want->dims, sa, sizeof sa);
            pare_shape_format(bad->ndim, bad->dims, sb, sizeof sb);
            return pare_fail(err, PARE_EINPUT, where, "%s has shape %s, the optimizer was built for %s",
                             bad == grads[i] ? "gradient" : "parameter", sb, sa);
        }
    }
    return PARE_OK;
}

/* Global L2 norm of all gradients: double sums in element order, so the
   value is the same for every thread count. */
static double grad_global_norm(const pare_optim *o, pare_tensor *const *grads)
{
    double ss = 0;
    for (int i = 0; i < o->n_params; i++) {
        const float *g = pare_tensor_f32(grads[i]);
        int64_t n = pare_tensor_numel(grads[i]);
        for (int64_t k = 0; k < n; k++)
            ss += (double)g[k] * g[k];
    }
    return sqrt(ss);
}

static void step_sgd(const pare_optim *o, int i, float *p, float *g, int64_t n, double lr,
                     double momentum, bool first)
{
    const float wd = (float)o->opts.weight_decay, mom = (float)momentum;
    const float neg_lr = (float)-lr;
    const bool nesterov = o->opts.nesterov, has_wd = o->opts.weight_decay != 0;
    float *buf = o->opts.momentum > 0 ? buffer(o, 0, i) : NULL;

#pragma omp parallel for schedule(static) if (n >= OPTIM_PAR_MIN)
    for (int64_t k = 0; k < n; k++) {
        float d = has_wd ? g[k] + wd * p[k] : g[k];
        if (buf) {
            buf[k] = first ? d : mom * buf[k] + d;
            d = nesterov ? d + mom * buf[k] : buf[k];
        }
        p[k] += neg_lr * d;
    }
}

static void step_adam(const pare_optim *o, int i, float *p, float *g, int64_t n, double lr,
                      double b1, int64_t t)
{
    const double b2 = o->opts.beta2;
    const double bc1 = 1.0 - pow(b1, (double)t), bc2 = 1.0 - pow(b2, (double)t);
    const float one_m_b1 = (float)(1.0 - b1), b2f = (float)b2, one_m_b2 = (float)(1.0 - b2);
    const float neg_step = (float)(-lr / bc1), bc2_sqrt = (float)sqrt(bc2);
    const float eps = (float)o->opts.eps, wd = (float)o->opts.weight_decay;
    const float decay = (float)(1.0 - lr * o->opts.weight_decay);
    const bool adamw = o->opts.kind == PARE_OPTIM_ADAMW, has_wd = o->opts.weight_decay != 0;
    float *m = buffer(o, 0, i), *v = buffer(o, 1, i);

#pragma omp parallel for schedule(static) if (n >= OPTIM_PAR_MIN)
    for (int64_t k = 0; k < n; k++) {
        float gk = g[k];
        if (has_wd) {
            if (adamw)
                p[k] *= decay;
            else
                gk += wd * p[k];
        }
        m[k] += one_m_b1 * (gk - m[k]);
        v[k] = v[k] * b2f + one_m_b2 * gk * gk;
        p[k] += neg_step * (m[k] / (sqrtf(v[k]) / bc2_sqrt + eps));
    }
}

pare_status pare_optim_step(pare_optim *o, pare_tensor *const *params,
                            pare_tensor *const *grads, double lr, double beta1_override,
                            double *grad_norm, pare_error *err)
{
    bool has_override = !isnan(beta1_override);
    double b1 = has_override ? beta1_override : o->opts.beta1;
    double norm = 0;
    bool need_norm = grad_norm || o->opts.grad_clip_norm > 0;
    pare_status rc = check_tensors(o, params, grads, err);

    if (rc != PARE_OK)
        return rc;
    if (!(b1 >= 0 && b1 < 1))
        return pare_fail(err, PARE_EINPUT, NULL, "beta1 %g must be in [0, 1)", b1);
    if (need_norm)
        norm = grad_global_norm(o, grads);
    if (grad_norm)
        *grad_norm = norm;
    if (o->opts.grad_clip_norm > 0) {
        /* torch: coef = max_norm / (norm + 1e-6), clamped to 1; a non-finite
           norm gives a non-finite coef, which the caller's check catches */
        double coef = o->opts.grad_clip_norm / (norm + 1e-6);
        if (!(coef >= 1.0)) {
            float c = (float)coef;
            for (int i = 0; i < o->n_params; i++) {
                float *g = pare_tensor_f32(grads[i]);
                int64_t n = pare_tensor_numel(grads[i]);
                for (int64_t k = 0; k < n; k++)
                    g[k] *= c;
            }
        }
    }
    for (int i = 0; i < o->n_params; i++) {
        float *p = pare_tensor_f32(params[i]), *g = pare_tensor_f32(grads[i]);
        int64_t n = pare_tensor_numel(params[i]);
        if (o->opts.kind == PARE_OPTIM_SGD)
            step_sgd(o, i, p, g, n, lr, has_override && o->opts.momentum > 0 ? b1 : o->opts.momentum,
                     *o->step == 0);
        else
            step_adam(o, i, p, g, n, lr, b1, *o->step + 1);
    }
    (*o->step)++;
    return PARE_OK;
}

/* ---- state ------------------------------------------------------------------------ */

int pare_optim_state_count(const pare_optim *o)
{
    return o->n_entries;
}

pare_status pare_optim_state_get(const pare_optim *o, int i, const char **name,
                                 const pare_tensor **tensor, pare_error *err)
{
    if (i < 0 || i >= o->n_entries)
        return pare_fail(err, PARE_EINPUT, NULL, "optimizer state entry %d is out of range [0, %d)",
                         i, o->n_entries);
    *name = o->entries[i].name;
    *tensor = o->entries[i].t;
    return PARE_OK;
}

int pare_optim_state_find(const pare_optim *o, const char *name)
{
    for (int i = 0; i < o->n_entries; i++)
        if (strcmp(o->entries[i].name, name) == 0)
            return i;
    return -1;
}

pare_status pare_optim_state_set(pare_optim *o, int i, const pare_tensor *t, pare_error *err)
{
    char sa[96], sb[96];
    pare_tensor *dst;

    if (i < 0 || i >= o->n_entries)
        return pare_fail(err, PARE_EINPUT, NULL, "optimizer state entry %d is out of range [0, %d)",
                         i, o->n_entries);
    dst = o->entries[i].t;
    if (i == 0) {
        double v;
        if (!t || !t->data || pare_tensor_numel(t) != 1 || pare_dtype_size(t->dtype) == 0)
            return pare_fail(err, PARE_EINPUT, o->entries[0].name,
                             "optimizer step must be a single number");
        v = pare_tensor_get_f64(t, 0);
        if (!(v >= 0) || v != floor(v))
            return pare_fail(err, PARE_EINPUT, o->entries[0].name,
                             "optimizer step %g must be a non-negative integer", v);
        *o->step = t->dtype == PARE_I64 ? pare_tensor_get_i64(t, 0) : (int64_t)v;
        return PARE_OK;
    }
    if (!t || !t->data || t->dtype != PARE_F32 || !pare_tensor_same_shape(t, dst)) {
        pare_shape_format(dst->ndim, dst->dims, sa, sizeof sa);
        if (t)
            pare_shape_format(t->ndim, t->dims, sb, sizeof sb);
        return pare_fail(err, PARE_EINPUT, o->entries[i].name,
                         "optimizer state needs float32 %s, got %s %s", sa,
                         t ? pare_dtype_name(t->dtype) : "nothing", t ? sb : "");
    }
    memcpy(dst->data, t->data, pare_tensor_nbytes(t));
    return PARE_OK;
}

int64_t pare_optim_get_step(const pare_optim *o)
{
    return *o->step;
}

void pare_optim_set_step(pare_optim *o, int64_t step)
{
    *o->step = step;
}
