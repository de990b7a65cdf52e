/* Jobs: every job with a progress bar (step, rate, ETA, live loss/metric);
 * the selected job's status below; Enter shows its result. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "app.h"

static const char *const state_names[] = {"queued", "running", "done", "failed", "cancelled"};

static void fmt_time(double sec, char *buf, size_t size)
{
    int t = (int)(sec + 0.5);

    if (!(sec >= 0) || sec > 360000)
        snprintf(buf, size, "-");
    else if (t >= 3600)
        snprintf(buf, size, "%d:%02d:%02d", t / 3600, t / 60 % 60, t % 60);
    else
        snprintf(buf, size, "%d:%02d", t / 60, t % 60);
}

static void draw_result(const app_state *s, grid *g, int y0, int rows)
{
    const app_job *j = &s->jobs[s->jobs_cursor];

    grid_printf(g, 0, y0 + 1, g->w, GA_BOLD, GC_DEFAULT, "job %d: %s  (%s, %.1f s)", j->id, j->name,
                state_names[j->state], j->seconds);
    if (j->state == JS_FAILED)
        grid_text(g, 2, y0 + 3, g->w - 2, j->error, 0, GC_ERROR);
    else if (!j->n_result)
        grid_text(g, 2, y0 + 3, g->w - 2, j->state == JS_DONE ? "no result" : "no result yet", 0,
                  GC_DEFAULT);
    for (int i = 0; i < j->n_result && 3 + i < rows - 1; i++)
        grid_text(g, 2, y0 + 3 + i, g->w - 2, j->result[i], 0, GC_DEFAULT);
}

void view_jobs_draw(const app_state *s, grid *g, int y0, int rows)
{
    int list = app_list_rows(s, SCREEN_JOBS), name_w = g->w - (1 + 9 + 1 + 14 + 1 + 11 + 1 + 8 + 1 + 6);
    int top = s->jobs_cursor >= list ? s->jobs_cursor - list + 1 : 0, running = 0;
    char a[32], b[32];

    grid_fill(g, 0, y0, g->w, 1, GA_BOLD, GC_HEADER);
    grid_printf(g, 0, y0, g->w, GA_BOLD, GC_HEADER, "%-*s %-9s %-14s %11s %8s %6s", name_w, "job", "state",
                "progress", "step", "rate", "ETA");
    for (int i = 0; i < s->n_jobs; i++)
        running += s->jobs[i].state == JS_RUNNING || s->jobs[i].state == JS_QUEUED;
    grid_fill(g, 0, y0 + rows - 1, g->w, 1, GA_BOLD, GC_HEADER);
    grid_printf(g, 0, y0 + rows - 1, g->w, GA_BOLD, GC_HEADER,
                "%d job%s, %d active  e eval  p PTQ  x compress  c cancel  Enter result", s->n_jobs,
                s->n_jobs == 1 ? "" : "s", running);
    if (!s->n_jobs) {
        grid_text(g, 1, y0 + 1, g->w - 1, "no jobs yet: e evaluates the model and the plan, p runs PTQ,",
                  0, GC_DEFAULT);
        grid_text(g, 1, y0 + 2, g->w - 1, "x runs the whole plan (pare compress); r on Sens runs a sweep",
                  0, GC_DEFAULT);
        return;
    }
    if (s->job_detail) {
        draw_result(s, g, y0, rows);
        return;
    }
    for (int r = 0; r < list && top + r < s->n_jobs; r++) {
        const app_job *j = &s->jobs[top + r];
        int yy = y0 + 1 + r, x = 0;
        bool cur = top + r == s->jobs_cursor;
        uint8_t attr = cur ? GA_REVERSE : 0, color = cur ? GC_CURSOR : GC_DEFAULT;
        double frac = j->total > 0 ? (double)j->done / (double)j->total : 0;

        if (cur)
            grid_fill(g, 0, yy, g->w, 1, attr, color);
        grid_printf(g, x, yy, name_w, attr, color, "%d %s", j->id, j->name);
        x += name_w + 1;
        grid_text(g, x, yy, 9, state_names[j->state], attr | GA_BOLD,
                  cur ? color : j->state == JS_FAILED ? GC_ERROR : j->state == JS_DONE ? GC_ACCENT
                                                                                        : GC_DEFAULT);
        x += 10;
        for (int k = 0; k < 14; k++)
            grid_put(g, x + k, yy, 0x2591, '.', attr, color); /* ░ track */
        view_hbar(g, x, yy, 14, j->state == JS_DONE ? 1.0 : frac, cur ? GC_CURSOR : GC_ACCENT);
        x += 15;
        if (j->total > 0)
            grid_printf(g, x, yy, 11, attr, color, "%11s",
                        (snprintf(a, sizeof a, "%lld/%lld", (long long)j->done, (long long)j->total), a));
        x += 12;
        if (j->rate > 0 && j->state == JS_RUNNING) {
            /* counts down between progress events (act_tick moves seconds) */
            double eta = j->total > j->done ? (double)(j->total - j->done) / j->rate : 0;

            eta -= j->seconds - j->event_seconds;
            grid_printf(g, x, yy, 8, attr, color, "%6.1f/s", j->rate);
            fmt_time(eta > 0 ? eta : 0, b, sizeof b);
            grid_printf(g, x + 9, yy, 6, attr, color, "%6s", b);
        } else if (j->state == JS_RUNNING) {
            fmt_time(j->seconds, b, sizeof b); /* no rate yet: the elapsed time */
            grid_printf(g, x + 9, yy, 6, attr | GA_DIM, color, "%6s", b);
        } else if (j->state >= JS_DONE) {
            fmt_time(j->seconds, b, sizeof b);
            grid_printf(g, x + 9, yy, 6, attr, color, "%6s", b);
        }
    }
    {
        const app_job *j = &s->jobs[s->jobs_cursor];
        int py = y0 + rows - 1 - APP_JOB_PANE;

        if (list >= rows - 2)
            return;
        fmt_time(j->seconds, b, sizeof b);
        grid_printf(g, 0, py, g->w, GA_BOLD, GC_DEFAULT, "job %d  %s  stage %s  %.1f s%s%s", j->id,
                    state_names[j->state], j->stage[0] ? j->stage : "-", j->seconds,
                    j->state == JS_RUNNING ? "  elapsed " : "", j->state == JS_RUNNING ? b : "");
        grid_printf(g, 2, py + 1, g->w - 2, 0, GC_DEFAULT, "%s", j->detail[0] ? j->detail : "");
        a[0] = b[0] = '\0';
        if (!isnan(j->loss))
            snprintf(a, sizeof a, "loss %.4g  ", j->loss);
        if (!isnan(j->metric))
            snprintf(b, sizeof b, "metric %.4f", j->metric);
        grid_printf(g, 2, py + 2, g->w - 2, 0, GC_DEFAULT, "%s%s", a, b);
        if (j->state == JS_FAILED)
            grid_text(g, 2, py + 3, g->w - 2, j->error, 0, GC_ERROR);
        else if (j->state == JS_DONE && j->n_result)
            grid_printf(g, 2, py + 3, g->w - 2, 0, GC_DEFAULT, "%s  (Enter: the result)", j->result[0]);
    }
}
