/* Log: every message of the session, scrollable; follows the end until the
 * user scrolls up. */
#include <string.h>

#include "app.h"

void view_log_draw(const app_state *s, grid *g, int y0, int rows)
{
    int body = rows - 2, top = s->log_top;

    if (s->log_follow || top > s->n_log - body)
        top = s->n_log - body;
    if (top < 0)
        top = 0;
    grid_fill(g, 0, y0, g->w, 1, GA_BOLD, GC_HEADER);
    grid_printf(g, 0, y0, g->w, GA_BOLD, GC_HEADER, "Log  %d message%s", s->n_log,
                s->n_log == 1 ? "" : "s");
    for (int r = 0; r < body && top + r < s->n_log; r++) {
        const char *line = s->log[top + r];
        bool err = line[0] == 'e' && !strncmp(line, "error:", 6);

        grid_text(g, 0, y0 + 1 + r, g->w, line, 0, err ? GC_ERROR : GC_DEFAULT);
    }
    grid_fill(g, 0, y0 + rows - 1, g->w, 1, GA_BOLD, GC_HEADER);
    grid_printf(g, 0, y0 + rows - 1, g->w, GA_BOLD, GC_HEADER, "lines %d-%d of %d%s",
                s->n_log ? top + 1 : 0, top + body < s->n_log ? top + body : s->n_log, s->n_log,
                s->log_follow ? "  (following)" : "");
}
