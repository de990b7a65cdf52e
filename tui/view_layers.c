/* Layers: every node with op, output shape, params and FLOPs (a table, or in
 * tree mode a tree of name scopes with their sums); cursor, sort
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

/* tree: no sort marks (the tree keeps graph order) */
static void draw_header(const app_state *s, grid *g, int y, cols c, bool tree)
{
    int x = 0;
    /* ASCII fallback is per cell; the sort mark is one cell either way */
    grid_fill(g, 0, y, g->w, 1, GA_BOLD, GC_HEADER);
    header_cell(g, x, y, c.name, tree ? "scope / name" : "name",
                tree ? "" : sort_mark(s, SORT_NAME, true), false);
    x += c.name + 1;
    header_cell(g, x, y, c.op, "op", tree ? "" : sort_mark(s, SORT_OP, true), false);
    x += c.op + 1;
    header_cell(g, x, y, c.shape, tree ? "shape / nodes" : "output shape", "", false);
    x += c.shape + 1;
    header_cell(g, x, y, c.params, "params", tree ? "" : sort_mark(s, SORT_PARAMS, true), true);
    x += c.params + 1;
    header_cell(g, x, y, c.flops, "FLOPs", tree ? "" : sort_mark(s, SORT_FLOPS, true), true);
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

/* A node's cells after the name: op, output shape, params, FLOPs, plan. */
static void node_cells(const app_state *s, grid *g, cols c, int x, int yy, int node, bool cur)
{
    const pare_layer_stat *ls = &s->stats->layers[node];
    uint8_t attr = cur ? GA_REVERSE : 0, color = cur ? GC_CURSOR : GC_DEFAULT;
    char buf[64], cut[300];

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

static void draw_table(const app_state *s, grid *g, cols c, int y0, int body)
{
    char label[32], cut[300];

    for (int r = 0; r < body && s->top + r < s->n_rows; r++) {
        int row = s->top + r, node = s->order[row], yy = y0 + 1 + r;
        bool cur = row == s->cursor;
        uint8_t attr = cur ? GA_REVERSE : 0, color = cur ? GC_CURSOR : GC_DEFAULT;

        if (cur)
            grid_fill(g, 0, yy, g->w, 1, attr, color);
        grid_text(g, 0, yy, c.name, grid_head(app_node_label(s, node, label, sizeof label), c.name, cut,
                                              sizeof cut), attr, color);
        node_cells(s, g, c, c.name + 1, yy, node, cur);
    }
}

/* Tree mode: a row per visible scope or node, indented two cells a level;
 * a scope shows its marker (open / closed), node count and sums. */
static void draw_tree(const app_state *s, grid *g, cols c, int y0, int body)
{
    const layers_tree *t = s->tree;
    int top = layers_tree_top(s);
    char label[300], cut[300], buf[64];

    for (int r = 0; r < body && top + r < t->n_rows; r++) {
        int row = top + r, yy = y0 + 1 + r, x = c.name + 1;
        const layers_tree_item *it = &t->items[t->rows[row]];
        bool cur = row == t->cursor;
        uint8_t attr = cur ? GA_REVERSE : 0, color = cur ? GC_CURSOR : GC_DEFAULT;
        int indent = 2 * it->depth;

        if (indent > c.name - 6)
            indent = c.name - 6 > 0 ? c.name - 6 : 0;
        if (cur)
            grid_fill(g, 0, yy, g->w, 1, attr, color);
        if (it->node >= 0) {
            if (it->label)
                snprintf(label, sizeof label, "%.*s", it->len, it->label);
            else
                app_node_label(s, it->node, label, sizeof label);
            grid_text(g, indent + 2, yy, c.name - indent - 2,
                      grid_head(label, c.name - indent - 2, cut, sizeof cut), attr, color);
            node_cells(s, g, c, x, yy, it->node, cur);
            continue;
        }
        if (it->open)
            grid_put(g, indent, yy, 0x25BE, '-', attr | GA_BOLD, color); /* ▾ */
        else
            grid_put(g, indent, yy, 0x25B8, '+', attr | GA_BOLD, color); /* ▸ */
        snprintf(label, sizeof label, "/%.*s", it->len, it->label);
        grid_text(g, indent + 2, yy, c.name - indent - 2,
                  grid_head(label, c.name - indent - 2, cut, sizeof cut), attr | GA_BOLD, color);
        x += c.op + 1;
        grid_printf(g, x, yy, c.shape, attr, color, "%d node%s", it->n_nodes, it->n_nodes == 1 ? "" : "s");
        x += c.shape + 1;
        right_text(g, x, yy, c.params, it->params ? grid_fmt_count(it->params, buf, sizeof buf) : "-",
                   attr, color);
        x += c.params + 1;
        if (it->flops > 0) {
            grid_fmt_si(it->flops, buf, sizeof buf);
            if (it->flops_partial)
                strncat(buf, "+?", sizeof buf - strlen(buf) - 1);
        } else
            snprintf(buf, sizeof buf, "%s", it->flops_partial ? "?" : "-");
        right_text(g, x, yy, c.flops, buf, attr, color);
    }
}

void view_layers_draw(const app_state *s, grid *g, int y0, int rows)
{
    cols c = layout(g->w);
    int body = rows - 2, y = y0 + rows - 1;
    bool tree = s->tree_on && s->tree;
    char buf[64], buf2[64];

    draw_header(s, g, y0, c, tree);
    if (!s->stats) {
        grid_text(g, 1, y0 + 1, g->w - 1, "no model open: press L for the Log", 0, GC_DEFAULT);
        return;
    }
    if (tree)
        draw_tree(s, g, c, y0, body);
    else
        draw_table(s, g, c, y0, body);
    grid_fill(g, 0, y, g->w, 1, GA_BOLD, GC_HEADER);
    grid_printf(g, 0, y, g->w, GA_BOLD, GC_HEADER, "total %d layers  params %s  FLOPs %s%s  row %d/%d",
                s->stats->n_layers, grid_fmt_count(s->stats->params, buf, sizeof buf),
                grid_fmt_si(s->stats->flops, buf2, sizeof buf2),
                s->stats->flops_complete ? "" : "+?",
                tree ? (s->tree->n_rows ? s->tree->cursor + 1 : 0) : s->n_rows ? s->cursor + 1 : 0,
                tree ? s->tree->n_rows : s->n_rows);
    if (s->plan_valid && (s->plan_params != s->stats->params || s->plan_flops != s->stats->flops)) {
        char a[32], b[32];
        int len = snprintf(buf, sizeof buf, "plan %s / %s", grid_fmt_count(s->plan_params, a, sizeof a),
                           grid_fmt_si(s->plan_flops, b, sizeof b));

        grid_text(g, g->w - len, y, len, buf, GA_BOLD, GC_HEADER);
    }
}
