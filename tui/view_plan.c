/* Plan: every prune group with its planned ratio, marks, the channels kept,
 * the predicted drop from the sensitivity sweep, and the plan's totals. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "app.h"

/* Name shown in w cells: the tail when too long (the end is what differs). */
const char *view_tail(const char *name, int w)
{
    int len = (int)strlen(name);

    return w > 1 && len > w ? name + len - w : name;
}

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

void view_plan_draw(const app_state *s, grid *g, int y0, int rows)
{
    int n = s->groups ? s->groups->n : 0, list = app_list_rows(s, SCREEN_PLAN);
    int cw = 6, name_w = g->w - (2 + 5 + cw + 6 + 12 + 8 + 5), marked = 0;
    char a[32], b[32], c[32], d[32];

    grid_fill(g, 0, y0, g->w, 1, GA_BOLD, GC_HEADER);
    grid_printf(g, 0, y0, g->w, GA_BOLD, GC_HEADER, "  %-*s %5s %*s %5s %-12s %7s", name_w, "prune group",
                "ch", cw, "ratio", "keep", "", "drop");
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
        grid_text(g, x, yy, name_w, view_tail(grp->name, name_w), attr, color);
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
    grid_printf(g, 0, y0 + rows - 2, g->w, GA_DIM, GC_DEFAULT,
                "%d marked  a applies %.2f  %s", marked, s->plan_step_value,
                s->sens ? "drop: predicted from the sweep" : "no sweep yet (Sens: r) for predicted drops");
    grid_fill(g, 0, y0 + rows - 1, g->w, 1, GA_BOLD, GC_HEADER);
    if (!s->stats)
        return;
    {
        double scale = s->sens && s->sens->metric == PARE_SENS_TOP1 ? 100 : 1;
        char loss[48];

        if (isnan(s->plan_loss))
            snprintf(loss, sizeof loss, "-");
        else if (isinf(s->plan_loss))
            snprintf(loss, sizeof loss, "beyond the sweep");
        else
            snprintf(loss, sizeof loss, "%.2f%s", scale * s->plan_loss, scale > 1 ? " pts" : "");
        grid_printf(g, 0, y0 + rows - 1, g->w, GA_BOLD, GC_HEADER,
                    "plan: params %s->%s (%+.1f%%)  FLOPs %s->%s (%+.1f%%)  drop %s",
                    grid_fmt_count(s->stats->params, a, sizeof a),
                    grid_fmt_count(s->plan_params, b, sizeof b),
                    s->stats->params ? 100.0 * (double)(s->plan_params - s->stats->params) /
                                           (double)s->stats->params : 0,
                    grid_fmt_si(s->stats->flops, c, sizeof c), grid_fmt_si(s->plan_flops, d, sizeof d),
                    s->stats->flops > 0 ? 100.0 * (s->plan_flops - s->stats->flops) / s->stats->flops : 0,
                    loss);
    }
}
