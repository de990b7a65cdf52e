/* Layers: every node with op, output shape, params and FLOPs; cursor, sort
 * marker and a totals line that is always visible. */
#include <stdio.h>
#include <string.h>

#include "app.h"

typedef struct cols {
    int name, op, shape, params, flops, plan; /* widths; plan: ratio, quant, distill */
} cols;

#define PLAN_W 14 /* "ratio quant KD": " 0.25 int8  T" */

static cols layout(int w)
{
    cols c = {0, 8, 19, 7, 8, w >= 76 ? PLAN_W : 0};

    c.name = w - (c.op + c.shape + c.params + c.flops + c.plan + (c.plan ? 5 : 4));
    return c;
}

static const char *sort_mark(const app_state *s, int col, bool utf8)
{
    if (s->sort != col)
        return "";
    if (utf8)
        return s->sort_desc ? "\xe2\x96\xbc" : "\xe2\x96\xb2"; /* ▼ ▲ */
    return s->sort_desc ? "v" : "^";
}

static void header_cell(grid *g, int x, int y, int w, const char *name, const char *mark,
                        bool right)
{
    char buf[64];

    snprintf(buf, sizeof buf, "%s%s", name, mark);
    if (right) {
        int len = 0;
        uint32_t cp;
        const char *p = buf;
        int used;

        while ((used = grid_utf8_decode(p, &cp)) > 0) {
            p += used;
            len++;
        }
        x += w - len > 0 ? w - len : 0;
    }
    grid_text(g, x, y, w, buf, GA_BOLD, GC_HEADER);
}

static void draw_header(const app_state *s, grid *g, int y, cols c)
{
    int x = 0;
    /* ASCII fallback is per cell; the sort mark is one cell either way */
    grid_fill(g, 0, y, g->w, 1, GA_BOLD, GC_HEADER);
    header_cell(g, x, y, c.name, "name", sort_mark(s, SORT_NAME, true), false);
    x += c.name + 1;
    header_cell(g, x, y, c.op, "op", sort_mark(s, SORT_OP, true), false);
    x += c.op + 1;
    header_cell(g, x, y, c.shape, "output shape", "", false);
    x += c.shape + 1;
    header_cell(g, x, y, c.params, "params", sort_mark(s, SORT_PARAMS, true), true);
    x += c.params + 1;
    header_cell(g, x, y, c.flops, "FLOPs", sort_mark(s, SORT_FLOPS, true), true);
    x += c.flops + 1;
    if (c.plan)
        header_cell(g, x, y, c.plan, "ratio quant KD", "", false);
    /* fix the ASCII fallbacks of the marks */
    for (int i = 0; i < g->w; i++) {
        grid_cell *cell = &g->cells[y * g->w + i];

        if (cell->cp == 0x25BC)
            cell->ascii = 'v';
        else if (cell->cp == 0x25B2)
            cell->ascii = '^';
    }
}

static void right_text(grid *g, int x, int y, int w, const char *text, uint8_t attr, uint8_t color)
{
    int len = (int)strlen(text);

    if (len > w)
        len = w;
    grid_text(g, x + w - len, y, len, text, attr, color);
}

void view_layers_draw(const app_state *s, grid *g, int y0, int rows)
{
    cols c = layout(g->w);
    int body = rows - 2, y = y0 + rows - 1;
    char buf[64], buf2[64], label[32], cut[300];

    draw_header(s, g, y0, c);
    if (!s->stats) {
        grid_text(g, 1, y0 + 1, g->w - 1, "no model open: press L for the Log", 0, GC_DEFAULT);
        return;
    }
    for (int r = 0; r < body && s->top + r < s->n_rows; r++) {
        int row = s->top + r, node = s->order[row], x = 0, yy = y0 + 1 + r;
        const pare_layer_stat *ls = &s->stats->layers[node];
        bool cur = row == s->cursor;
        uint8_t attr = cur ? GA_REVERSE : 0, color = cur ? GC_CURSOR : GC_DEFAULT;

        if (cur)
            grid_fill(g, 0, yy, g->w, 1, attr, color);
        grid_text(g, x, yy, c.name, grid_head(app_node_label(s, node, label, sizeof label), c.name, cut,
                                              sizeof cut), attr, color);
        x += c.name + 1;
        grid_text(g, x, yy, c.op, grid_head(s->graph->nodes[node].op_type, c.op, cut, sizeof cut), attr,
                  color);
        x += c.op + 1;
        grid_text(g, x, yy, c.shape,
                  grid_head(pare_stats_shape_format(s->stats, &ls->out, buf, sizeof buf), c.shape, cut,
                            sizeof cut), attr, color);
        x += c.shape + 1;
        right_text(g, x, yy, c.params, ls->params ? grid_fmt_count(ls->params, buf, sizeof buf) : "-",
                   attr, color);
        x += c.params + 1;
        right_text(g, x, yy, c.flops, ls->flops == 0 ? "-" : grid_fmt_si(ls->flops, buf, sizeof buf),
                   attr, color);
        x += c.flops + 1;
        if (c.plan) {
            int gi = plan_group_of_node(s, node), q = plan_quant_of_node(s, node);
            int kd = plan_distill_of_node(s, node);

            if (gi >= 0 && s->ratio[gi] > 0)
                grid_printf(g, x, yy, 5, attr | GA_BOLD, color, "%5.2f", s->ratio[gi]);
            else if (gi >= 0)
                grid_text(g, x, yy, 5, "    .", attr, color);
            if (q == 2)
                grid_text(g, x + 6, yy, 4, "skip", attr, cur ? color : GC_ERROR);
            else if (q)
                grid_printf(g, x + 6, yy, 4, attr, cur ? color : GC_ACCENT, "int%d", s->quant_bits);
            if (kd)
                grid_put(g, x + 12, yy, (uint32_t)kd, (char)kd, attr | GA_BOLD, cur ? color : GC_ACCENT);
        }
    }
    grid_fill(g, 0, y, g->w, 1, GA_BOLD, GC_HEADER);
    grid_printf(g, 0, y, g->w, GA_BOLD, GC_HEADER, "total %d layers  params %s  FLOPs %s%s  row %d/%d",
                s->stats->n_layers, grid_fmt_count(s->stats->params, buf, sizeof buf),
                grid_fmt_si(s->stats->flops, buf2, sizeof buf2),
                s->stats->flops_complete ? "" : "+?", s->n_rows ? s->cursor + 1 : 0, s->n_rows);
    if (s->plan_valid && (s->plan_params != s->stats->params || s->plan_flops != s->stats->flops)) {
        char a[32], b[32];
        int len = snprintf(buf, sizeof buf, "plan %s / %s", grid_fmt_count(s->plan_params, a, sizeof a),
                           grid_fmt_si(s->plan_flops, b, sizeof b));

        grid_text(g, g->w - len, y, len, buf, GA_BOLD, GC_HEADER);
    }
}
