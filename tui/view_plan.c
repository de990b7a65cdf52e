/* Plan: every prune group with its planned ratio, marks, the channels kept,
 * the single-group drop from the sensitivity sweep, and the plan's totals:
 * the predicted drop (a sum of single-group drops) next to the drop `m`
 * measured. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "app.h"

/* Horizontal bar of frac (0..1) in w cells, eighths resolution. */
void view_hbar(grid *g, int x, int y, int w, double frac, uint8_t color)
{
    int eighths = (int)(frac * w * 8 + 0.5), full = eighths / 8, rest = eighths % 8;

    if (eighths > w * 8)
        full = w, rest = 0;
    for (int i = 0; i < full; i++)
        grid_put(g, x + i, y, 0x2588, '#', 0, color);
    if (rest && full < w)
        grid_put(g, x + full, y, 0x2590 - (uint32_t)rest, rest >= 4 ? '+' : ' ', 0, color);
}

static const app_job *measure_job(const app_state *s)
{
    for (int i = 0; i < s->n_jobs; i++)
        if (s->jobs[i].id == s->plan_measure_job)
            return &s->jobs[i];
    return NULL;
}

/* "predicted 10.94 pts (sum of single-group drops)  measured 65.23 pts (no fine-tune)" */
static void draw_drops(const app_state *s, grid *g, int y)
{
    double scale = s->sens && s->sens->metric == PARE_SENS_TOP1 ? 100 : 1;
    const char *unit = scale > 1 ? " pts" : "";
    const app_job *mj = measure_job(s);
    char pred[64], meas[96];

    if (!s->sens)
        snprintf(pred, sizeof pred, "predicted drop - (no sweep: Sens r)");
    else if (isnan(s->plan_loss))
        snprintf(pred, sizeof pred, "predicted drop -");
    else if (isinf(s->plan_loss))
        snprintf(pred, sizeof pred, "predicted drop: beyond the sweep");
    else
        snprintf(pred, sizeof pred, "predicted %.2f%s (sum of single-group drops)", scale * s->plan_loss,
                 unit);
    if (mj && (mj->state == JS_QUEUED || mj->state == JS_RUNNING))
        snprintf(meas, sizeof meas, "measuring... %lld/%lld", (long long)mj->done, (long long)mj->total);
    else if (!isnan(s->plan_measured)) {
        double ms = s->plan_measured_top1 ? 100 : 1;

        bool now = s->plan_measured_key == app_plan_key(s);

        snprintf(meas, sizeof meas, "measured %.2f%s (%s)", ms * s->plan_measured,
                 s->plan_measured_top1 ? " pts" : "", now ? "no fine-tune" : "old plan: m");
        if ((int)(strlen(pred) + 2 + strlen(meas)) > g->w) /* 80 columns: the unit once */
            snprintf(meas, sizeof meas, "measured %.2f (%s)", ms * s->plan_measured,
                     now ? "no fine-tune" : "old plan: m");
    } else
        snprintf(meas, sizeof meas, "m measures it");
    grid_printf(g, 0, y, g->w, 0, GC_DEFAULT, "%s  %s", pred, meas);
}

void view_plan_draw(const app_state *s, grid *g, int y0, int rows)
{
    int n = s->groups ? s->groups->n : 0, list = app_list_rows(s, SCREEN_PLAN);
    int cw = 6, name_w = g->w - (2 + 5 + cw + 6 + 12 + 8 + 5), marked = 0;
    /* wide: the group's value name (the job file's key) as a second column */
    int label_w = name_w >= 64 ? 30 : name_w, value_w = name_w >= 64 ? name_w - 31 : 0;
    char a[32], b[32], c[32], d[32], name[300], cell[300];

    grid_fill(g, 0, y0, g->w, 1, GA_BOLD, GC_HEADER);
    if (value_w)
        grid_printf(g, 0, y0, g->w, GA_BOLD, GC_HEADER, "  %-*s %-*s %5s %*s %5s %-12s %7s", label_w,
                    "prune group (producer)", value_w, "value (job file key)", "ch", cw, "ratio", "keep", "",
                    "1-grp");
    else
        grid_printf(g, 0, y0, g->w, GA_BOLD, GC_HEADER, "  %-*s %5s %*s %5s %-12s %7s", name_w,
                    "prune group (producer)", "ch", cw, "ratio", "keep", "", "1-grp");
    if (!n) {
        grid_text(g, 1, y0 + 1, g->w - 1, s->graph ? "this model has no prune groups" : "no model open",
                  0, GC_DEFAULT);
    }
    for (int r = 0; r < list && s->plan_top + r < n; r++) {
        int gi = s->plan_top + r, yy = y0 + 1 + r, x = 0;
        const pare_prune_group *grp = &s->groups->groups[gi];
        bool cur = gi == s->plan_cursor;
        uint8_t attr = cur ? GA_REVERSE : grp->prunable ? 0 : GA_DIM;
        uint8_t color = cur ? GC_CURSOR : GC_DEFAULT;
        int64_t go = (int64_t)llround(s->ratio[gi] * (double)grp->channels);

        if (cur)
            grid_fill(g, 0, yy, g->w, 1, attr, color);
        if (s->marked[gi])
            grid_put(g, 0, yy, 0x25CF, '*', attr | GA_BOLD, cur ? color : GC_ACCENT); /* ● */
        x = 2;
        grid_text(g, x, yy, label_w,
                  grid_tail(app_group_label(s, gi, name, sizeof name), label_w, cell, sizeof cell),
                  attr, color);
        if (value_w)
            grid_text(g, x + label_w + 1, yy, value_w, grid_tail(grp->name, value_w, cell, sizeof cell),
                      attr | (cur ? 0 : GA_DIM), color);
        x += name_w + 1;
        grid_printf(g, x, yy, 5, attr, color, "%5lld", (long long)grp->channels);
        x += 6;
        if (!grp->prunable) {
            grid_printf(g, x, yy, -1, attr, color, "%*s  fixed: %s", cw, "-", grp->reason);
            continue;
        }
        grid_printf(g, x, yy, cw, attr | (s->ratio[gi] > 0 ? GA_BOLD : 0), color, "%*.2f", cw,
                    s->ratio[gi]);
        x += cw + 1;
        grid_printf(g, x, yy, 5, attr, color, "%5lld", (long long)(grp->channels - go));
        x += 6;
        view_hbar(g, x, yy, 12, s->ratio[gi], cur ? GC_CURSOR : GC_ACCENT);
        x += 13;
        if (s->sens && s->sens->n_groups == n && s->ratio[gi] > 0) {
            pare_sens_point pts[PARE_SENS_MAX_RATIOS];
            int np = pare_sens_group_points(s->sens, gi, pts);
            double drop = np ? pare_sens_predict(pts, np, s->ratio[gi]) : NAN;
            double scale = s->sens->metric == PARE_SENS_TOP1 ? 100 : 1;

            if (isfinite(drop))
                grid_printf(g, x, yy, 7, attr, color, "%7.2f", scale * drop);
            else
                grid_printf(g, x, yy, 7, attr, color, "%7s", np ? ">max" : "?");
        }
    }
    for (int i = 0; i < n; i++)
        marked += s->marked[i];
    if (n && s->plan_cursor < n)
        grid_printf(g, 0, y0 + rows - 3, g->w, GA_DIM, GC_DEFAULT,
                    "value %s  %d marked, a: %.2f  0-9 . type a ratio",
                    grid_tail(s->groups->groups[s->plan_cursor].name, g->w - 44 > 12 ? g->w - 44 : 12,
                              cell, sizeof cell),
                    marked, s->plan_step_value);
    draw_drops(s, g, y0 + rows - 2);
    grid_fill(g, 0, y0 + rows - 1, g->w, 1, GA_BOLD, GC_HEADER);
    if (!s->stats)
        return;
    grid_printf(g, 0, y0 + rows - 1, g->w, GA_BOLD, GC_HEADER,
                "plan: params %s->%s (%+.1f%%)  FLOPs %s->%s (%+.1f%%)",
                grid_fmt_count(s->stats->params, a, sizeof a), grid_fmt_count(s->plan_params, b, sizeof b),
                s->stats->params ? 100.0 * (double)(s->plan_params - s->stats->params) /
                                       (double)s->stats->params : 0,
                grid_fmt_si(s->stats->flops, c, sizeof c), grid_fmt_si(s->plan_flops, d, sizeof d),
                s->stats->flops > 0 ? 100.0 * (s->plan_flops - s->stats->flops) / s->stats->flops : 0);
}
