/* Quant: every tensor that would get Q/DQ (activations and weights of
 * Conv/Gemm/MatMul) with its skip state, and the plan's PTQ settings. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "app.h"

void view_quant_draw(const app_state *s, grid *g, int y0, int rows)
{
    int read_w = g->w >= 76 ? 17 : 0; /* narrow: no "read by" column */
    int list = app_list_rows(s, SCREEN_QUANT), skipped = 0;
    int name_w = g->w - (1 + 6 + 1 + (read_w ? read_w + 1 : 0) + 19 + 1 + 9);
    char label[64], shape[64];

    grid_fill(g, 0, y0, g->w, 1, GA_BOLD, GC_HEADER);
    grid_printf(g, 0, y0, g->w, GA_BOLD, GC_HEADER, "%-*s %-6s %-*s%s%-19s %s", name_w, "tensor", "kind", read_w,
                read_w ? "read by" : "", read_w ? " " : "", "shape", "quant");
    if (!s->n_qt)
        grid_text(g, 1, y0 + 1, g->w - 1, "no Conv, Gemm or MatMul inputs to quantize", 0, GC_DEFAULT);
    for (int r = 0; r < list && s->quant_top + r < s->n_qt; r++) {
        int i = s->quant_top + r, yy = y0 + 1 + r, x = 0;
        const app_qtensor *q = &s->qt[i];
        bool cur = i == s->quant_cursor;
        bool node_off = false;
        uint8_t attr = cur ? GA_REVERSE : 0, color = cur ? GC_CURSOR : GC_DEFAULT;
        const char *state;

        for (int k = 0; k < s->n_qt; k++)
            node_off |= s->qt[k].node == q->node && s->qt[k].is_weight && s->qt[k].skip;
        if (cur)
            grid_fill(g, 0, yy, g->w, 1, attr, color);
        grid_text(g, x, yy, name_w, view_tail(s->graph->values[q->value].name, name_w), attr, color);
        x += name_w + 1;
        grid_text(g, x, yy, 6, q->is_weight ? "weight" : "act", attr, color);
        x += 7;
        if (read_w) {
            grid_printf(g, x, yy, read_w, attr, color, "%s",
                        view_tail(app_node_label(s, q->node, label, sizeof label), read_w));
            x += read_w + 1;
        }
        grid_text(g, x, yy, 19, pare_stats_shape_format(s->stats, &s->stats->values[q->value], shape,
                                                      sizeof shape), attr, color);
        x += 20;
        if (q->skip)
            state = q->is_weight ? "skip node" : "skip";
        else if (node_off)
            state = "(float)";
        else if (!s->quant_on)
            state = "off";
        else
            state = s->quant_bits == 8 ? "int8" : s->quant_bits == 6 ? "int6" : "int4";
        grid_text(g, x, yy, -1, state, attr | (q->skip ? GA_BOLD : 0),
                  cur ? color : q->skip ? GC_ERROR : GC_ACCENT);
        if (isfinite(q->snr_db) && !q->skip && !node_off && s->quant_on)
            grid_printf(g, x + 5, yy, -1, attr, color, "%2.0fdB", q->snr_db);
    }
    for (int i = 0; i < s->n_qt; i++)
        skipped += s->qt[i].skip;
    grid_printf(g, 0, y0 + rows - 2, g->w, GA_DIM, GC_DEFAULT,
                "skip a weight: its node stays float; an activation: only its Q/DQ. dB: weight SNR");
    grid_fill(g, 0, y0 + rows - 1, g->w, 1, GA_BOLD, GC_HEADER);
    grid_printf(g, 0, y0 + rows - 1, g->w, GA_BOLD, GC_HEADER,
                "PTQ %s  bits %d  algo %s  %d tensors, %d skipped  (e: on/off)",
                s->quant_on ? "in the plan" : "off", s->quant_bits, plan_algo_label(s->quant_algo),
                s->n_qt, skipped);
}
