/* Per-group prune ratios from a sensitivity sweep for a FLOPs/params target
 * (see sensitivity.h): PaddleSlim's shared loss threshold, and a budgeted
 * greedy allocation on monotone curves. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "pare/alloc.h"
#include "pare/sensitivity.h"

/* Drops of pts (ascending ratio), as measured or as their running maximum. */
static void curve(const pare_sens_point *pts, int n, bool monotone, double *d)
{
    double m = -INFINITY;
    for (int i = 0; i < n; i++) {
        m = pts[i].drop > m ? pts[i].drop : m;
        d[i] = monotone ? m : pts[i].drop;
    }
}

double pare_sens_ratio_for_loss(const pare_sens_point *pts, int n, double threshold, bool monotone)
{
    double d[PARE_SENS_MAX_RATIOS];
    if (n <= 0)
        return 0;
    curve(pts, n, monotone, d);
    for (int i = n - 1; i >= 0; i--) {
        if (!(d[i] <= threshold))
            continue;
        if (i == n - 1)
            return pts[i].ratio;
        /* d[i + 1] > threshold >= d[i]: linear towards the next point */
        return pts[i].ratio + (threshold - d[i]) * (pts[i + 1].ratio - pts[i].ratio) / (d[i + 1] - d[i]);
    }
    return 0;
}

double pare_sens_predict(const pare_sens_point *pts, int n, double x)
{
    double d[PARE_SENS_MAX_RATIOS], r0 = 0, d0 = 0;
    if (x <= 0)
        return 0;
    if (n <= 0)
        return INFINITY;
    curve(pts, n, true, d);
    if (x > pts[n - 1].ratio && x <= pts[n - 1].ratio + 1e-9)
        x = pts[n - 1].ratio;  /* grid rounding, not extrapolation */
    for (int i = 0; i < n; i++) {
        double di = d[i] > 0 ? d[i] : 0;  /* a pruned model that scores better predicts no loss */
        if (x <= pts[i].ratio)
            return d0 + (di - d0) * (x - r0) / (pts[i].ratio - r0);
        r0 = pts[i].ratio;
        d0 = di;
    }
    return INFINITY;
}

/* Additive estimate of FLOPs (params) removed by ratio x of a group. */
static double removed_at(const pare_sens_point *pts, int n, double x, bool params)
{
    double r0 = 0, f0 = 0;
    for (int i = 0; i < n; i++) {
        double fi = params ? (double)pts[i].params_removed : pts[i].flops_removed;
        if (x <= pts[i].ratio)
            return f0 + (fi - f0) * (x - r0) / (pts[i].ratio - r0);
        r0 = pts[i].ratio;
        f0 = fi;
    }
    return f0;
}

typedef struct selector {
    const pare_graph *g;
    const pare_prune_groups *gs;
    const pare_select_opts *o;
    pare_sens_point (*pts)[PARE_SENS_MAX_RATIOS];
    int *np;
    int64_t params0;
    double flops0;
} selector;

/* Fraction removed by the ratios, measured on a pruned copy. */
static pare_status measure(const selector *s, const double *ratios, double *frac, double *flops,
                           int64_t *params, pare_error *err)
{
    pare_graph *p = NULL;
    pare_status rc = pare_prune_apply(s->g, s->gs, ratios, &s->o->prune, &p, NULL, err);
    if (rc == PARE_OK)
        rc = pare_prune_measure(p, params, flops, err);
    pare_graph_free(p);
    if (rc == PARE_OK)
        *frac = s->o->params ? 1.0 - (double)*params / (double)s->params0 : 1.0 - *flops / s->flops0;
    return rc;
}

static pare_status select_paddleslim(const selector *s, pare_select_result *out, pare_error *err)
{
    int n = s->gs->n;
    double *try = pare_alloc((size_t)(n ? n : 1) * sizeof *try);
    double lo = 0, hi = 0, frac = 0, fl = 0;
    int64_t pa = 0;
    pare_status rc = PARE_OK;

    if (!try)
        return pare_fail(err, PARE_ENOMEM, s->g->path, "out of memory");
    for (int i = 0; i < n; i++)
        for (int k = 0; k < s->np[i]; k++)
            hi = s->pts[i][k].drop > hi ? s->pts[i][k].drop : hi;
    /* the largest threshold takes every group's largest ratio */
    for (int i = 0; i < n; i++)
        try[i] = pare_sens_ratio_for_loss(s->pts[i], s->np[i], hi, false);
    rc = measure(s, try, &frac, &fl, &pa, err);
    if (rc == PARE_OK && frac < s->o->target) {
        memcpy(out->ratios, try, (size_t)n * sizeof *try);
        out->threshold = hi;
        goto done;
    }
    for (int it = 0; it < 40 && rc == PARE_OK; it++) {
        double mid = 0.5 * (lo + hi);
        for (int i = 0; i < n; i++)
            try[i] = pare_sens_ratio_for_loss(s->pts[i], s->np[i], mid, false);
        rc = measure(s, try, &frac, &fl, &pa, err);
        if (rc != PARE_OK)
            break;
        if (frac >= s->o->target)
            hi = mid;
        else
            lo = mid;
        if (hi - lo < 1e-6)
            break;
    }
    for (int i = 0; i < n; i++)
        out->ratios[i] = pare_sens_ratio_for_loss(s->pts[i], s->np[i], hi, false);
    out->threshold = hi;
done:
    pare_free(try);
    return rc;
}

static pare_status select_budget(const selector *s, pare_select_result *out, pare_error *err)
{
    int n = s->gs->n;
    double step = s->o->step > 0 ? s->o->step : 0.05;
    pare_status rc = PARE_OK;

    for (int i = 0; i < n; i++)
        out->ratios[i] = 0;
    for (int guard = 0; guard < 100000; guard++) {
        int best = -1;
        double best_cost = INFINITY, best_gain = 0, est = 0, next_r = 0;
        for (int i = 0; i < n; i++)
            est += removed_at(s->pts[i], s->np[i], out->ratios[i], s->o->params);
        if (est >= s->o->target * (s->o->params ? (double)s->params0 : s->flops0)) {
            double frac = 0, fl = 0;
            int64_t pa = 0;
            rc = measure(s, out->ratios, &frac, &fl, &pa, err);
            if (rc != PARE_OK || frac >= s->o->target)
                break;
        }
        for (int i = 0; i < n; i++) {
            double cur = out->ratios[i], nx, dl, df, cost;
            if (s->np[i] == 0)
                continue;
            /* the next grid ratio that removes anything: with channel
               rounding, small steps may remove nothing */
            nx = cur;
            df = 0;
            while (!(df > 0)) {
                nx += step;
                if (nx > s->pts[i][s->np[i] - 1].ratio + 1e-9)
                    break;
                df = removed_at(s->pts[i], s->np[i], nx, s->o->params) -
                     removed_at(s->pts[i], s->np[i], cur, s->o->params);
            }
            dl = pare_sens_predict(s->pts[i], s->np[i], nx) -
                 pare_sens_predict(s->pts[i], s->np[i], cur);
            if (!(df > 0) || !isfinite(dl))
                continue;
            cost = dl / df;
            if (cost < best_cost || (cost == best_cost && df > best_gain)) {
                best = i;
                best_cost = cost;
                best_gain = df;
                next_r = nx;
            }
        }
        if (best < 0)
            break;   /* nothing left to prune: the target is out of reach */
        out->ratios[best] = next_r;
    }
    out->threshold = NAN;
    return rc;
}

pare_status pare_prune_select(const pare_graph *g, const pare_prune_groups *gs,
                              const pare_sens_result *r, const pare_select_opts *o,
                              pare_select_result *out, pare_error *err)
{
    selector s = {g, gs, o, NULL, NULL, 0, 0};
    double frac = 0;
    pare_status rc;

    memset(out, 0, sizeof *out);
    if (!(o->target > 0 && o->target < 1))
        return pare_fail(err, PARE_EINPUT, g->path, "reduction target %g is outside (0, 1)", o->target);
    if (r->n_groups != gs->n)
        return pare_fail(err, PARE_EINPUT, g->path, "the sensitivity result has %d groups, the "
                         "model %d", r->n_groups, gs->n);
    for (int i = 0; i < gs->n; i++)
        if (strcmp(r->group_names[i], gs->groups[i].name) != 0)
            return pare_fail(err, PARE_EINPUT, g->path, "the sensitivity result is for another "
                             "model (group '%s' vs '%s')", r->group_names[i], gs->groups[i].name);
    out->n_groups = gs->n;
    out->ratios = pare_calloc((size_t)(gs->n ? gs->n : 1), sizeof *out->ratios);
    s.pts = pare_alloc((size_t)(gs->n ? gs->n : 1) * sizeof *s.pts);
    s.np = pare_calloc((size_t)(gs->n ? gs->n : 1), sizeof *s.np);
    if (!out->ratios || !s.pts || !s.np) {
        rc = pare_fail(err, PARE_ENOMEM, g->path, "out of memory");
        goto done;
    }
    for (int i = 0; i < gs->n; i++)
        s.np[i] = gs->groups[i].prunable ? pare_sens_group_points(r, i, s.pts[i]) : 0;
    rc = pare_prune_measure(g, &s.params0, &s.flops0, err);
    if (rc == PARE_OK && ((o->params && s.params0 <= 0) || (!o->params && !(s.flops0 > 0))))
        rc = pare_fail(err, PARE_EUNSUPPORTED, g->path, "cannot count the model's %s",
                       o->params ? "params" : "FLOPs");
    if (rc != PARE_OK)
        goto done;
    rc = o->method == PARE_SELECT_PADDLESLIM ? select_paddleslim(&s, out, err)
                                             : select_budget(&s, out, err);
    if (rc != PARE_OK)
        goto done;
    out->flops_before = s.flops0;
    out->params_before = s.params0;
    rc = measure(&s, out->ratios, &frac, &out->flops_after, &out->params_after, err);
    out->met = rc == PARE_OK && frac >= o->target - 1e-12;
    out->predicted_loss = 0;
    for (int i = 0; i < gs->n; i++)
        if (out->ratios[i] > 0)
            out->predicted_loss += pare_sens_predict(s.pts[i], s.np[i], out->ratios[i]);
done:
    pare_free(s.pts);
    pare_free(s.np);
    if (rc != PARE_OK)
        pare_select_result_fini(out);
    return rc;
}

void pare_select_result_fini(pare_select_result *s)
{
    pare_free(s->ratios);
    s->ratios = NULL;
    s->n_groups = 0;
}
