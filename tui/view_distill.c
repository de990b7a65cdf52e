/* Distill: the values a pair can name (top), the pairs (bottom). Enter on
 * a value picks the teacher, then the student; while a teacher is picked
 * every row shows whether its shape fits. */
#include <stdio.h>
#include <string.h>

#include "app.h"

void view_distill_draw(const app_state *s, grid *g, int y0, int rows)
{
    int op_w = g->w >= 76 ? 12 : 0; /* narrow: no op column */
    int list = app_list_rows(s, SCREEN_DISTILL), name_w = g->w - (22 + 1 + (op_w ? op_w + 1 : 0) + 20);
    int py = y0 + 1 + list, n;
    char shape[64], text[200], label[300], cut[300];
    const pare_graph *lg;
    const pare_stats *ls;
    const int *vals = plan_distill_list(s, &n, &lg, &ls);
    const pare_graph *tg = s->teacher ? s->teacher : s->graph;

    grid_fill(g, 0, y0, g->w, 1, GA_BOLD, GC_HEADER);
    grid_printf(g, 0, y0, g->w, GA_BOLD, GC_HEADER, "%-*s %-22s %-*s%s%s", name_w, "value", "shape",
                op_w, op_w ? "op" : "", op_w ? " " : "", s->distill_teacher >= 0 ? "fits the teacher?" : "");
    for (int r = 0; r < list && s->distill_top + r < n; r++) {
        int i = s->distill_top + r, v = vals[i], yy = y0 + 1 + r, x = 0;
        int prod = lg->values[v].producer;
        bool is_t = v == s->distill_teacher && lg == tg;
        bool cur = i == s->distill_cursor && !s->distill_on_pairs;
        uint8_t attr = cur ? GA_REVERSE : 0, color = cur ? GC_CURSOR : GC_DEFAULT;

        if (cur)
            grid_fill(g, 0, yy, g->w, 1, attr, color);
        if (is_t)
            attr |= GA_BOLD;
        grid_text(g, x, yy, name_w, grid_tail(lg->values[v].name, name_w, cut, sizeof cut), attr, color);
        x += name_w + 1;
        grid_text(g, x, yy, 22, grid_head(pare_stats_shape_format(ls, &ls->values[v], shape, sizeof shape),
                                          22, cut, sizeof cut), attr, color);
        x += 23;
        if (op_w) {
            grid_text(g, x, yy, op_w, prod >= 0 ? grid_head(lg->nodes[prod].op_type, op_w, cut, sizeof cut) : "",
                      attr, color);
            x += op_w + 1;
        }
        if (is_t)
            grid_text(g, x, yy, -1, "TEACHER", attr, cur ? color : GC_ACCENT);
        else if (s->distill_teacher >= 0) {
            int c = plan_pair_compat(s, s->distill_teacher, v, text, sizeof text);

            grid_text(g, x, yy, -1, c == 0 ? "same shape" : c > 0 ? "adapter" : "no",
                      attr, cur ? color : c < 0 ? GC_ERROR : GC_ACCENT);
        }
    }
    grid_fill(g, 0, py, g->w, 1, GA_BOLD, s->distill_on_pairs ? GC_HEADER : GC_DEFAULT);
    grid_printf(g, 0, py, g->w, GA_BOLD, s->distill_on_pairs ? GC_HEADER : GC_DEFAULT,
                "pairs %d  (teacher: %s, student: the plan)%s", s->n_pairs,
                s->teacher ? (strrchr(s->teacher_path, '/') ? strrchr(s->teacher_path, '/') + 1
                                                            : s->teacher_path)
                           : "the unpruned model",
                s->distill_on_pairs || !s->n_pairs ? "" : "  l edits");
    if (!s->n_pairs)
        grid_text(g, 1, py + 1, g->w - 1, "none yet: Enter on a teacher value, then on a student value",
                  GA_DIM, GC_DEFAULT);
    for (int k = 0, first = s->pair_cursor >= APP_PAIR_ROWS ? s->pair_cursor - APP_PAIR_ROWS + 1 : 0;
         k < APP_PAIR_ROWS && first + k < s->n_pairs && py + 1 + k < y0 + rows - 1; k++) {
        int i = first + k, yy = py + 1 + k;
        const app_pair *p = &s->pairs[i];
        bool cur = s->distill_on_pairs && i == s->pair_cursor;
        uint8_t attr = cur ? GA_REVERSE : 0, color = cur ? GC_CURSOR : GC_DEFAULT;
        int c = plan_pair_compat(s, p->teacher, p->student, text, sizeof text), w = (g->w - 34) / 2;

        if (cur)
            grid_fill(g, 0, yy, g->w, 1, attr, color);
        snprintf(label, sizeof label, "%s", grid_tail(tg->values[p->teacher].name, w, cut, sizeof cut));
        grid_printf(g, 0, yy, g->w, attr, color, "%d %s%*s -> %s%*s %-10s a=%-5g %s", i + 1, label,
                    w - grid_utf8_len(label), "",
                    grid_tail(s->graph->values[p->student].name, w, cut, sizeof cut),
                    w - grid_utf8_len(grid_tail(s->graph->values[p->student].name, w, cut, sizeof cut)), "",
                    plan_loss_label(p->loss), p->alpha, c == 0 ? "" : "adapter");
    }
    grid_fill(g, 0, y0 + rows - 1, g->w, 1, GA_BOLD, GC_HEADER);
    if (s->distill_teacher >= 0)
        grid_printf(g, 0, y0 + rows - 1, g->w, GA_BOLD, GC_HEADER, "teacher %s: Enter on the student (Esc cancels)",
                    grid_tail(tg->values[s->distill_teacher].name, g->w - 40, cut, sizeof cut));
    else
        grid_printf(g, 0, y0 + rows - 1, g->w, GA_BOLD, GC_HEADER,
                    "%d %svalues  Enter: teacher then student  / search  c loss  a alpha  d del", n,
                    s->teacher ? "teacher " : "");
}
