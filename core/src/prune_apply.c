/* Channel criteria (a registry table) and the physical shrink (see prune.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pare/alloc.h"
#include "pare/prune.h"
#include "pare/stats.h"
#include "prune_internal.h"

/* ---- criteria ------------------------------------------------------------------- */

/* Producer weights rank channels: a Conv/Gemm/MatMul out weight (rank >= 2),
 * not a bias and not a depthwise filter (which follows its input). */
static bool is_rank_member(const pare_graph *g, const pare_prune_member *m, const pare_tensor **t)
{
    int v;
    if (m->role != PARE_MEMBER_OUT || m->is_depthwise)
        return false;
    v = pare_graph_find_value(g, m->tensor);
    if (v < 0 || !g->values[v].init || g->values[v].init->dtype != PARE_F32 ||
        g->values[v].init->ndim < 2)
        return false;
    *t = g->values[v].init;
    return true;
}

/* Sum over the member's slice of channel c (local index) of f(w). */
static double slice_norm(const pare_tensor *t, const pare_prune_member *m, int64_t c, int p)
{
    int64_t outer, inner, d = t->dims[m->axis];
    const float *w = pare_tensor_f32(t);
    double s = 0;
    prune_axis_split(t, m->axis, &outer, &inner);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = c * m->block; j < (c + 1) * m->block; j++) {
            const float *row = w + (o * d + j) * inner;
            for (int64_t i = 0; i < inner; i++)
                s += p == 1 ? fabs(row[i]) : (double)row[i] * row[i];
        }
    return s;
}

static pare_status crit_norm(const pare_graph *g, const pare_prune_group *grp, double *scores, int p)
{
    double *acc = pare_calloc((size_t)grp->channels, sizeof *acc);
    if (!acc)
        return PARE_ENOMEM;
    for (int i = 0; i < grp->n_members; i++) {
        const pare_prune_member *m = &grp->members[i];
        const pare_tensor *t;
        if (!is_rank_member(g, m, &t))
            continue;
        for (int64_t c = 0; c < m->count; c++) {
            double s = slice_norm(t, m, c, p);
            acc[m->offset + c] += p == 1 ? s : sqrt(s);
        }
    }
    memcpy(scores, acc, (size_t)grp->channels * sizeof *acc);
    pare_free(acc);
    return PARE_OK;
}

static pare_status crit_l1(const pare_graph *g, const pare_prune_group *grp, uint64_t seed,
                           double *scores, void *user, pare_error *err)
{
    pare_status rc = crit_norm(g, grp, scores, 1);
    return rc ? pare_fail(err, rc, g->path, "out of memory scoring channels") : PARE_OK;
}

static pare_status crit_l2(const pare_graph *g, const pare_prune_group *grp, uint64_t seed,
                           double *scores, void *user, pare_error *err)
{
    pare_status rc = crit_norm(g, grp, scores, 2);
    return rc ? pare_fail(err, rc, g->path, "out of memory scoring channels") : PARE_OK;
}

/* FPGM: a filter close to all others (near the geometric median) is the
 * most replaceable, so the score is its summed distance to the others. */
static pare_status crit_fpgm(const pare_graph *g, const pare_prune_group *grp, uint64_t seed,
                             double *scores, void *user, pare_error *err)
{
    memset(scores, 0, (size_t)grp->channels * sizeof *scores);
    for (int i = 0; i < grp->n_members; i++) {
        const pare_prune_member *m = &grp->members[i];
        const pare_tensor *t;
        int64_t outer, inner, d, len;
        float *vec;
        const float *w;
        if (!is_rank_member(g, m, &t))
            continue;
        prune_axis_split(t, m->axis, &outer, &inner);
        d = t->dims[m->axis];
        w = pare_tensor_f32(t);
        len = outer * m->block * inner;
        vec = pare_alloc((size_t)(m->count * len) * sizeof *vec);
        if (!vec)
            return pare_fail(err, PARE_ENOMEM, g->path, "out of memory scoring channels");
        /* gather each channel's filter as one contiguous vector */
        for (int64_t c = 0; c < m->count; c++) {
            float *dst = vec + c * len;
            for (int64_t o = 0; o < outer; o++)
                for (int64_t j = c * m->block; j < (c + 1) * m->block; j++) {
                    memcpy(dst, w + (o * d + j) * inner, (size_t)inner * sizeof *dst);
                    dst += inner;
                }
        }
        for (int64_t a = 0; a < m->count; a++)
            for (int64_t b = a + 1; b < m->count; b++) {
                double s = 0;
                for (int64_t k = 0; k < len; k++) {
                    double diff = (double)vec[a * len + k] - vec[b * len + k];
                    s += diff * diff;
                }
                s = sqrt(s);
                scores[m->offset + a] += s;
                scores[m->offset + b] += s;
            }
        pare_free(vec);
    }
    return PARE_OK;
}

static pare_status crit_bn(const pare_graph *g, const pare_prune_group *grp, uint64_t seed,
                           double *scores, void *user, pare_error *err)
{
    bool found = false;
    memset(scores, 0, (size_t)grp->channels * sizeof *scores);
    for (int i = 0; i < grp->n_members; i++) {
        const pare_prune_member *m = &grp->members[i];
        int v = pare_graph_find_value(g, m->tensor);
        const float *gamma;
        if (m->role != PARE_MEMBER_NORM_SCALE || v < 0 || !g->values[v].init ||
            g->values[v].init->dtype != PARE_F32)
            continue;
        found = true;
        gamma = pare_tensor_f32(g->values[v].init);
        for (int64_t c = 0; c < m->count; c++)
            for (int64_t j = c * m->block; j < (c + 1) * m->block; j++)
                scores[m->offset + c] += fabs(gamma[j]);
    }
    if (!found) {
        pare_fail(err, PARE_EINPUT, g->path, "group '%s' has no BatchNormalization for bn_scale",
                  grp->name);
        pare_error_hint(err, "use l1_norm, l2_norm or geometry_median");
        return PARE_EINPUT;
    }
    return PARE_OK;
}

static pare_status crit_random(const pare_graph *g, const pare_prune_group *grp, uint64_t seed,
                               double *scores, void *user, pare_error *err)
{
    uint64_t st = prune_fnv1a(1469598103934665603ull ^ seed, grp->name, strlen(grp->name));
    for (int64_t c = 0; c < grp->channels; c++)
        scores[c] = prune_uniform(&st);
    return PARE_OK;
}

#define MAX_CRITERIA 32
static pare_prune_criterion criteria[MAX_CRITERIA] = {
    {"l1_norm", crit_l1, NULL, "sum of |w| of each channel's filters"},
    {"l2_norm", crit_l2, NULL, "L2 norm of each channel's filters"},
    {"geometry_median", crit_fpgm, NULL, "FPGM: summed distance to the other filters"},
    {"bn_scale", crit_bn, NULL, "|gamma| of the BatchNormalization after the producer"},
    {"random", crit_random, NULL, "uniform random scores from the seed"},
};
static int n_criteria = 5;

int pare_prune_criteria(const pare_prune_criterion **out)
{
    *out = criteria;
    return n_criteria;
}

pare_status pare_prune_criterion_find(const char *name, const pare_prune_criterion **out,
                                      pare_error *err)
{
    const char *names[MAX_CRITERIA];
    const char *guess;
    for (int i = 0; i < n_criteria; i++) {
        if (strcmp(criteria[i].name, name) == 0) {
            *out = &criteria[i];
            return PARE_OK;
        }
        names[i] = criteria[i].name;
    }
    *out = NULL;
    pare_fail(err, PARE_EINPUT, name, "unknown prune criterion '%s'", name);
    guess = pare_closest_word(name, names, n_criteria);
    if (guess)
        pare_error_hint(err, "did you mean '%s'?", guess);
    else
        pare_error_hint(err, "criteria: l1_norm, l2_norm, geometry_median, bn_scale, random");
    return PARE_EINPUT;
}

pare_status pare_prune_criterion_register(const char *name, pare_prune_criterion_fn fn,
                                          void *user, const char *doc, pare_error *err)
{
    const pare_prune_criterion *c;
    char *n, *d;
    if (!name || !fn)
        return pare_fail(err, PARE_EINPUT, NULL, "a criterion needs a name and a function");
    if (pare_prune_criterion_find(name, &c, NULL) == PARE_OK)
        return pare_fail(err, PARE_EINPUT, name, "criterion '%s' is already registered", name);
    if (n_criteria == MAX_CRITERIA)
        return pare_fail(err, PARE_EINPUT, name, "too many criteria (%d)", MAX_CRITERIA);
    n = pare_strdup(name);
    d = pare_strdup(doc ? doc : "");
    if (!n || !d) {
        pare_free(n);
        pare_free(d);
        return pare_fail(err, PARE_ENOMEM, name, "out of memory registering a criterion");
    }
    criteria[n_criteria++] = (pare_prune_criterion){n, fn, user, d};
    return PARE_OK;
}

pare_status pare_prune_score(const pare_graph *g, const pare_prune_group *grp, const char *criterion,
                             uint64_t seed, double *scores, pare_error *err)
{
    const pare_prune_criterion *c;
    pare_status rc = pare_prune_criterion_find(criterion ? criterion : "l1_norm", &c, err);
    if (rc != PARE_OK)
        return rc;
    return c->fn(g, grp, seed, scores, c->user, err);
}

/* ---- keep masks and the shrink ------------------------------------------------------ */

typedef struct scored {
    double s;
    int64_t i;
} scored;

static int cmp_scored(const void *a, const void *b)
{
    const scored *x = a, *y = b;
    if (x->s != y->s)
        return x->s < y->s ? -1 : 1;
    return (x->i > y->i) - (x->i < y->i);
}

pare_status pare_prune_keep_mask(const pare_graph *g, const pare_prune_group *grp, double ratio,
                                 const pare_prune_opts *opts, bool *keep, pare_error *err)
{
    int64_t c = grp->channels, drop = (int64_t)llround(ratio * (double)c);
    int64_t round_to = opts && opts->round_to > 1 ? opts->round_to : 1;
    double *scores = pare_alloc((size_t)c * sizeof *scores);
    scored *order = pare_alloc((size_t)c * sizeof *order);
    pare_status rc = PARE_OK;

    if (!scores || !order) {
        rc = pare_fail(err, PARE_ENOMEM, g->path, "out of memory pruning '%s'", grp->name);
        goto done;
    }
    if (drop > c - 1)
        drop = c - 1;
    if (round_to > 1 && drop > 0) {
        int64_t kept = (c - drop + round_to - 1) / round_to * round_to;
        drop = c - (kept < c ? kept : c);
    }
    for (int64_t i = 0; i < c; i++)
        keep[i] = true;
    if (drop <= 0)
        goto done;
    rc = pare_prune_score(g, grp, opts ? opts->criterion : NULL, opts ? opts->seed : 0, scores, err);
    if (rc != PARE_OK)
        goto done;
    for (int64_t i = 0; i < c; i++) {
        /* NaN scores go first: such a channel is broken anyway */
        order[i].s = isnan(scores[i]) ? -INFINITY : scores[i];
        order[i].i = i;
    }
    qsort(order, (size_t)c, sizeof *order, cmp_scored);
    for (int64_t i = 0; i < drop; i++)
        keep[order[i].i] = false;
done:
    pare_free(scores);
    pare_free(order);
    return rc;
}

/* Copy of t keeping the entries of `axis` whose channel (entry / block,
 * within [offset, offset + count) of the group) is kept. */
static pare_tensor *slice_tensor(const pare_tensor *t, const pare_prune_member *m, const bool *keep)
{
    int64_t outer, inner, d = t->dims[m->axis], nd = 0, k = 0;
    size_t es = pare_dtype_size(t->dtype);
    int64_t dims[PARE_MAX_DIMS];
    pare_tensor *r;
    const char *src = t->data;
    char *dst;

    for (int64_t c = 0; c < m->count; c++)
        nd += keep[m->offset + c] ? m->block : 0;
    memcpy(dims, t->dims, sizeof dims);
    dims[m->axis] = nd;
    r = pare_tensor_new(t->dtype, t->ndim, dims);
    if (!r)
        return NULL;
    dst = r->data;
    prune_axis_split(t, m->axis, &outer, &inner);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < d; j++) {
            if (!keep[m->offset + j / m->block])
                continue;
            memcpy(dst + (size_t)(k++ * inner) * es, src + (size_t)((o * d + j) * inner) * es,
                   (size_t)inner * es);
        }
    return r;
}

pare_status pare_prune_apply_masks(const pare_graph *g, const pare_prune_groups *gs,
                                   const bool *const *keep, pare_graph **out, pare_error *err)
{
    pare_graph *c = NULL;
    pare_status rc;
    bool changed = false;

    *out = NULL;
    rc = pare_graph_clone(g, &c, err);
    if (rc != PARE_OK)
        return rc;
    if (c->n_nodes != g->n_nodes) {
        rc = pare_fail(err, PARE_EINTERNAL, g->path, "the copy of the model changed its nodes");
        goto done;
    }
    for (int i = 0; i < gs->n && rc == PARE_OK; i++) {
        const pare_prune_group *grp = &gs->groups[i];
        int64_t kept = 0;
        if (!keep[i])
            continue;
        for (int64_t ch = 0; ch < grp->channels; ch++)
            kept += keep[i][ch];
        if (kept == grp->channels)
            continue;
        if (kept == 0) {
            rc = pare_fail(err, PARE_EINPUT, g->path, "group '%s' would lose every channel",
                           grp->name);
            break;
        }
        changed = true;
        for (int m = 0; m < grp->n_members; m++) {
            const pare_prune_member *pm = &grp->members[m];
            int v = pare_graph_find_value(c, pm->tensor);
            pare_tensor *t;
            if (v < 0 || !c->values[v].init ||
                c->values[v].init->dims[pm->axis] != pm->count * pm->block) {
                rc = pare_fail(err, PARE_EINTERNAL, g->path, "member '%s' of group '%s' "
                               "does not match the model", pm->tensor, grp->name);
                break;
            }
            t = slice_tensor(c->values[v].init, pm, keep[i]);
            if (!t) {
                rc = pare_fail(err, PARE_ENOMEM, g->path, "out of memory pruning '%s'", grp->name);
                break;
            }
            pare_graph_set_initializer(c, v, t);
        }
        for (int d = 0; d < grp->n_depthwise && rc == PARE_OK; d++) {
            pare_node *node = &c->nodes[grp->depthwise[d]];
            for (int a = 0; a < node->n_attrs; a++)
                if (strcmp(node->attrs[a].name, "group") == 0)
                    node->attrs[a].i = kept;
        }
    }
    if (rc == PARE_OK && changed) {
        /* declared shapes of intermediate values may be stale now; the
           executor and ONNX Runtime infer them */
        for (int v = 0; v < c->n_values; v++) {
            pare_value *val = &c->values[v];
            if (val->init || val->is_input || val->is_output)
                continue;
            val->has_value_info = false;
            val->ndim = -1;
        }
        rc = pare_graph_index(c, err);
    }
done:
    if (rc == PARE_OK)
        *out = c;
    else
        pare_graph_free(c);
    return rc;
}

pare_status pare_prune_measure(const pare_graph *g, int64_t *params, double *flops, pare_error *err)
{
    pare_stats *s = NULL;
    pare_status rc = pare_stats_compute(g, &s, err);
    if (rc != PARE_OK)
        return rc;
    if (params)
        *params = s->params;
    if (flops)
        *flops = s->planned ? s->flops : 0;
    pare_stats_free(s);
    return PARE_OK;
}

pare_status pare_prune_apply(const pare_graph *g, const pare_prune_groups *gs, const double *ratios,
                             const pare_prune_opts *opts, pare_graph **out, pare_prune_result *res,
                             pare_error *err)
{
    bool **keep = pare_calloc((size_t)(gs->n ? gs->n : 1), sizeof *keep);
    pare_status rc = PARE_OK;
    const pare_prune_criterion *crit;

    *out = NULL;
    if (res)
        memset(res, 0, sizeof *res);
    if (!keep)
        return pare_fail(err, PARE_ENOMEM, g->path, "out of memory pruning");
    rc = pare_prune_criterion_find(opts && opts->criterion ? opts->criterion : "l1_norm", &crit, err);
    for (int i = 0; i < gs->n && rc == PARE_OK; i++) {
        const pare_prune_group *grp = &gs->groups[i];
        double r = ratios[i];
        if (!(r >= 0 && r < 1)) {
            rc = pare_fail(err, PARE_EINPUT, g->path, "prune ratio %g for group '%s' is "
                           "outside [0, 1)", r, grp->name);
            break;
        }
        if (r == 0)
            continue;
        if (!grp->prunable) {
            rc = pare_fail(err, PARE_EINPUT, g->path, "group '%s' cannot be pruned", grp->name);
            pare_error_hint(err, "%s", grp->reason);
            break;
        }
        keep[i] = pare_alloc((size_t)grp->channels * sizeof **keep);
        if (!keep[i]) {
            rc = pare_fail(err, PARE_ENOMEM, g->path, "out of memory pruning");
            break;
        }
        rc = pare_prune_keep_mask(g, grp, r, opts, keep[i], err);
        if (res && rc == PARE_OK)
            for (int64_t c = 0; c < grp->channels; c++)
                res->channels_removed += !keep[i][c];
    }
    if (rc == PARE_OK)
        rc = pare_prune_apply_masks(g, gs, (const bool *const *)keep, out, err);
    if (rc == PARE_OK && res) {
        pare_error e2 = {0};
        /* FLOPs are best effort: a model pare cannot plan still prunes */
        if (pare_prune_measure(g, &res->params_before, &res->flops_before, &e2) != PARE_OK ||
            pare_prune_measure(*out, &res->params_after, &res->flops_after, &e2) != PARE_OK) {
            res->params_before = pare_graph_param_count(g);
            res->params_after = pare_graph_param_count(*out);
        }
    }
    for (int i = 0; i < gs->n; i++)
        pare_free(keep[i]);
    pare_free(keep);
    if (rc != PARE_OK) {
        pare_graph_free(*out);
        *out = NULL;
    }
    return rc;
}
