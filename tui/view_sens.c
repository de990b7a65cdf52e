/* Sensitivity: the heat table (group x ratio -> metric drop) of the last
 * sweep, the selected group's curve drawn with block characters, and the
 * ratios pare_prune_select picks for a FLOPs target (t). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "app.h"

/* Shade of a drop in points: blank, light, medium, dark, full. */
static void heat(grid *g, int x, int y, double pts, uint8_t attr, uint8_t color)
{
    static const uint32_t cp[] = {' ', 0x2591, 0x2592, 0x2593, 0x2588};
    static const char ascii[] = {' ', '.', ':', '*', '#'};
    int level = pts < 1 ? 0 : pts < 5 ? 1 : pts < 15 ? 2 : pts < 40 ? 3 : 4;

    grid_put(g, x, y, cp[level], ascii[level], attr, color);
}

/* Ratios of the sweep (from its points; ascending). */
static int sweep_ratios(const pare_sens_result *r, double *ratios)
{
    int n = 0;

    for (int i = 0; i < r->n_points; i++) {
        int k = 0;

        while (k < n && fabs(ratios[k] - r->points[i].ratio) > 1e-9)
            k++;
        if (k == n && n < PARE_SENS_MAX_RATIOS)
            ratios[n++] = r->points[i].ratio;
    }
    for (int i = 1; i < n; i++)
        for (int k = i; k > 0 && ratios[k - 1] > ratios[k]; k--) {
            double t = ratios[k];

            ratios[k] = ratios[k - 1];
            ratios[k - 1] = t;
        }
    return n;
}

static const app_job *running_sweep(const app_state *s)
{
    for (int i = s->n_jobs - 1; i >= 0; i--)
        if (s->jobs[i].kind == JOB_SENS && (s->jobs[i].state == JS_RUNNING || s->jobs[i].state == JS_QUEUED))
            return &s->jobs[i];
    return NULL;
}

static void draw_curve(const app_state *s, grid *g, int y0, int gi, const double *ratios, int nr,
                       double scale)
{
    pare_sens_point pts[PARE_SENS_MAX_RATIOS];
    int np = pare_sens_group_points(s->sens, gi, pts), bars = APP_CURVE_ROWS - 2;
    int cw = (g->w - 8) / (nr ? nr : 1);
    double top = 0;

    cw = cw > 6 ? 6 : cw < 2 ? 2 : cw;
    for (int p = 0; p < np; p++)
        top = pts[p].drop > top ? pts[p].drop : top;
    char label[64], cut[300];

    grid_printf(g, 0, y0, g->w, GA_BOLD, GC_DEFAULT, "curve %s: drop%s vs ratio (top %.2f)",
                grid_tail(app_group_label(s, gi, label, sizeof label), g->w - 40, cut, sizeof cut),
                scale > 1 ? " in points" : "", scale * top);
    for (int k = 0; k < nr; k++) {
        int x = 8 + k * cw, p = 0;
        double drop;
        int level;

        while (p < np && fabs(pts[p].ratio - ratios[k]) > 1e-9)
            p++;
        grid_printf(g, x, y0 + 1 + bars, cw, GA_DIM, GC_DEFAULT, "%.2f", ratios[k]);
        if (p == np)
            continue;
        drop = pts[p].drop > 0 ? pts[p].drop : 0;
        level = top > 0 ? (int)(drop / top * bars * 8 + 0.5) : 0;
        if (pts[p].drop > 0 && level == 0)
            level = 1;
        for (int r = 0; r < bars; r++) {
            int fill = level - (bars - 1 - r) * 8;

            for (int c = 0; c < cw - 1 && fill > 0; c++)
                grid_put(g, x + c, y0 + 1 + r, fill >= 8 ? 0x2588 : 0x2580 + (uint32_t)fill,
                         fill >= 4 ? '#' : '.', 0, GC_ACCENT);
        }
    }
    grid_printf(g, 0, y0 + 1, 7, GA_DIM, GC_DEFAULT, "%6.1f", scale * top);
    grid_printf(g, 0, y0 + bars, 7, GA_DIM, GC_DEFAULT, "%6.1f", 0.0);
}

void view_sens_draw(const app_state *s, grid *g, int y0, int rows)
{
    double ratios[PARE_SENS_MAX_RATIOS], scale;
    int nr, list = app_list_rows(s, SCREEN_SENS), name_w, cw = 6, pick = s->sens_pick && s->sens_target > 0;
    const app_job *job = running_sweep(s);
    char buf[32], buf2[32];

    grid_fill(g, 0, y0, g->w, 1, GA_BOLD, GC_HEADER);
    grid_fill(g, 0, y0 + rows - 1, g->w, 1, GA_BOLD, GC_HEADER);
    if (!s->sens || !s->groups || s->sens->n_groups != s->groups->n) {
        grid_text(g, 0, y0, g->w, "Sensitivity", GA_BOLD, GC_HEADER);
        if (job && job->total)
            grid_printf(g, 1, y0 + 1, g->w - 1, 0, GC_DEFAULT, "sweep %s: %lld/%lld %s  %s",
                        job->state == JS_QUEUED ? "queued" : "running", (long long)job->done,
                        (long long)job->total, job->unit, job->detail);
        else if (job)
            grid_printf(g, 1, y0 + 1, g->w - 1, 0, GC_DEFAULT, "sweep %s: measuring the baseline",
                        job->state == JS_QUEUED ? "queued" : "running");
        else {
            grid_printf(g, 1, y0 + 1, g->w - 1, 0, GC_DEFAULT,
                        "no sweep yet: r prunes each group at ratios 0.1..0.9 on %ld samples of %s",
                        s->limit, s->data_spec[0] ? s->data_spec : "(no data: :data SPEC)");
            grid_text(g, 1, y0 + 2, g->w - 1,
                      "and measures the metric drop (a job: it runs in the background, see Jobs)", 0,
                      GC_DEFAULT);
        }
        return;
    }
    scale = s->sens->metric == PARE_SENS_TOP1 ? 100 : 1;
    nr = sweep_ratios(s->sens, ratios);
    if (nr > (g->w - 14 - pick * cw) / cw)
        nr = (g->w - 14 - pick * cw) / cw; /* narrow: the first ratios */
    name_w = g->w - 1 - nr * cw - pick * cw;
    grid_printf(g, 0, y0, name_w, GA_BOLD, GC_HEADER, "group (producer)%s",
                s->sens_sort == 1 ? (s->sens_desc ? " v" : " ^") : "");
    for (int k = 0; k < nr; k++)
        grid_printf(g, name_w + k * cw, y0, cw, GA_BOLD, GC_HEADER, "%5.2f", ratios[k]);
    if (pick)
        grid_text(g, name_w + nr * cw, y0, cw, "  pick", GA_BOLD, GC_HEADER);
    for (int r = 0; r < list && s->sens_top + r < s->n_sens_rows; r++) {
        int row = s->sens_top + r, gi = s->sens_rows[row], yy = y0 + 1 + r;
        pare_sens_point pts[PARE_SENS_MAX_RATIOS];
        int np = pare_sens_group_points(s->sens, gi, pts);
        bool cur = row == s->sens_cursor;
        uint8_t attr = cur ? GA_REVERSE : 0, color = cur ? GC_CURSOR : GC_DEFAULT;

        if (cur)
            grid_fill(g, 0, yy, g->w, 1, attr, color);
        char label[64], cut[300];

        grid_text(g, 0, yy, name_w - 1,
                  grid_tail(app_group_label(s, gi, label, sizeof label), name_w - 1, cut, sizeof cut),
                  attr, color);
        for (int k = 0; k < nr; k++) {
            int p = 0;

            while (p < np && fabs(pts[p].ratio - ratios[k]) > 1e-9)
                p++;
            if (p == np) {
                grid_text(g, name_w + k * cw, yy, cw, "    -", attr, color);
                continue;
            }
            grid_printf(g, name_w + k * cw, yy, cw - 1, attr, color, "%5.1f", scale * pts[p].drop);
            heat(g, name_w + k * cw + cw - 1, yy, scale * pts[p].drop, attr, cur ? color : GC_ERROR);
        }
        if (pick)
            grid_printf(g, name_w + nr * cw, yy, cw, attr | GA_BOLD, color, "%6.2f", s->sens_pick[gi]);
    }
    if (s->n_sens_rows && rows - 2 >= list + APP_CURVE_ROWS)
        draw_curve(s, g, y0 + 1 + list, s->sens_rows[s->sens_cursor], ratios, nr, scale);
    if (job)
        grid_printf(g, 0, y0 + rows - 1, g->w, GA_BOLD, GC_HEADER,
                    "sweep %s: %lld/%lld %s (%s)", job->state == JS_QUEUED ? "queued" : "running",
                    (long long)job->done, (long long)job->total, job->unit,
                    s->sens_live_job == job->id ? "cells fill in as points arrive"
                                                : "the table is the previous sweep's");
    else if (pick)
        grid_printf(g, 0, y0 + rows - 1, g->w, GA_BOLD, GC_HEADER,
                    "target -%.0f%% FLOPs: %s -> %s, drop %.2f%s (sum of 1-group drops)", 100 * s->sens_target,
                    grid_fmt_si(s->sens->flops, buf, sizeof buf),
                    grid_fmt_si(s->sens_pick_flops, buf2, sizeof buf2), scale * s->sens_pick_loss,
                    scale > 1 ? " pts" : "");
    else
        grid_printf(g, 0, y0 + rows - 1, g->w, GA_BOLD, GC_HEADER,
                    "baseline %s %.4f on %lld samples; cells: drop%s  %d groups",
                    scale > 1 ? "top-1" : "cosine", s->sens->baseline, (long long)s->sens->n_samples,
                    scale > 1 ? " in points of %" : "", s->n_sens_rows);
}
