/* Inspect: the selected layer's weight tensors: statistics, a histogram drawn
 * with block characters (ASCII fallback) and per-output-channel L1 norms as a
 * bar chart. The content is a list of lines (app_inspect_lines) scrolled by
 * inspect_top. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "app.h"
#include "pare/tensor.h"

/* A line of content: drawn only when inside the visible window. */
typedef struct cursor {
    grid *g;
    int line;       /* content line being drawn */
    int top;        /* first visible content line */
    int y0, rows;   /* screen window */
} cursor;

static int screen_y(const cursor *c)
{
    int y = c->line - c->top;

    return y >= 0 && y < c->rows ? c->y0 + y : -1;
}

/* Vertical bar cell: fill in eighths (0..8). */
static void vcell(grid *g, int x, int y, int fill)
{
    if (fill <= 0)
        return;
    if (fill >= 8)
        grid_put(g, x, y, 0x2588, '#', 0, GC_ACCENT);
    else
        grid_put(g, x, y, 0x2580 + (uint32_t)fill, fill >= 4 ? '#' : '.', 0, GC_ACCENT);
}

/* Horizontal bar of `eighths` eighths of a cell. */
static void hbar(grid *g, int x, int y, int eighths)
{
    int full = eighths / 8, rest = eighths % 8;

    for (int i = 0; i < full; i++)
        grid_put(g, x + i, y, 0x2588, '#', 0, GC_ACCENT);
    if (rest)
        grid_put(g, x + full, y, 0x2590 - (uint32_t)rest, rest >= 4 ? '+' : ' ', 0, GC_ACCENT);
}

/* The quantization error of a weight from the last error-table job. */
static void draw_quant_line(const app_state *s, const app_weight *w, cursor *c)
{
    int y = screen_y(c);

    c->line++;
    if (y < 0)
        return;
    for (int i = 0; i < s->n_qt; i++)
        if (s->qt[i].value == w->value && s->qt[i].is_weight) {
            if (!isnan(s->qt[i].err_sqnr))
                grid_printf(c->g, 2, y, c->g->w - 2, 0, GC_DEFAULT,
                            "quantized to %d bits (%s): SQNR %.1f dB  cos %.4f", s->qerr_bits,
                            plan_algo_label(s->qerr_algo), s->qt[i].err_sqnr, s->qt[i].err_cos);
            else
                grid_text(c->g, 2, y, c->g->w - 2,
                          "quantization error: m on Quant measures it for the plan's bits", GA_DIM,
                          GC_DEFAULT);
            return;
        }
    grid_text(c->g, 2, y, c->g->w - 2,
              w->ndim == 1 ? "a bias: int32, scale = input scale x weight scale, when quantized"
                           : "not quantized (only Conv, Gemm and MatMul weights are)",
              GA_DIM, GC_DEFAULT);
}

static void draw_weight(const app_state *s, const app_weight *w, cursor *c)
{
    grid *g = c->g;
    char shape[96], num[32];
    int64_t peak = 0;
    int y, cw = g->w >= 70 ? 2 : 1, x0 = 2, hw = APP_HIST_BINS * cw;
    double lmax = 0;

    snprintf(shape, sizeof shape, "[");
    for (int d = 0; d < w->ndim; d++)
        snprintf(shape + strlen(shape), sizeof shape - strlen(shape), "%s%lld", d ? ", " : "",
                 (long long)w->dims[d]);
    snprintf(shape + strlen(shape), sizeof shape - strlen(shape), "]");
    if ((y = screen_y(c)) >= 0) {
        if (w->activation)
            grid_printf(g, 0, y, g->w, GA_BOLD, GC_DEFAULT, "output %s  %s  on %lld samples", w->name,
                        shape, (long long)w->dims[0]);
        else
            grid_printf(g, 0, y, g->w, GA_BOLD, GC_DEFAULT, "%s  float32 %s  %s values", w->name,
                        shape, grid_fmt_count(w->numel, num, sizeof num));
    }
    c->line++;
    if ((y = screen_y(c)) >= 0)
        grid_printf(g, 2, y, g->w - 2, 0, GC_DEFAULT,
                    "min %.4g  max %.4g  mean %.4g  std %.4g  sparsity %.1f%%", w->min, w->max,
                    w->mean, w->std, 100.0 * w->sparsity);
    c->line++;
    if (!w->activation)
        draw_quant_line(s, w, c);
    for (int b = 0; b < APP_HIST_BINS; b++)
        peak = w->hist[b] > peak ? w->hist[b] : peak;
    for (int r = 0; r < APP_HIST_ROWS; r++, c->line++) {
        int base = (APP_HIST_ROWS - 1 - r) * 8;

        if ((y = screen_y(c)) < 0)
            continue;
        for (int b = 0; b < APP_HIST_BINS; b++) {
            int level = peak ? (int)((double)w->hist[b] * APP_HIST_ROWS * 8 / (double)peak + 0.5) : 0;

            if (w->hist[b] > 0 && level == 0)
                level = 1; /* a non-empty bin stays visible */
            for (int k = 0; k < cw; k++)
                vcell(g, x0 + b * cw + k, y, level - base);
        }
    }
    if ((y = screen_y(c)) >= 0) {
        char lo[32], hi[32];
        int len;

        snprintf(lo, sizeof lo, "%.4g", w->min);
        len = snprintf(hi, sizeof hi, "%.4g", w->max);
        grid_text(g, x0, y, -1, lo, GA_DIM, GC_DEFAULT);
        grid_printf(g, x0 + hw / 2 - 6, y, -1, GA_DIM, GC_DEFAULT, "peak %lld", (long long)peak);
        grid_text(g, x0 + hw - len, y, -1, hi, GA_DIM, GC_DEFAULT);
    }
    c->line++;
    if (w->n_channels) {
        int bw = g->w - 22;

        if ((y = screen_y(c)) >= 0)
            grid_printf(g, 2, y, g->w - 2, GA_BOLD, GC_DEFAULT,
                        w->activation ? "per-channel mean |x| (%d channels)"
                                      : "per-output-channel L1 norm (%d channels)", w->n_channels);
        c->line++;
        for (int ch = 0; ch < w->n_channels; ch++)
            lmax = w->l1[ch] > lmax ? w->l1[ch] : lmax;
        for (int ch = 0; ch < w->n_channels; ch++, c->line++) {
            if ((y = screen_y(c)) < 0)
                continue;
            grid_printf(g, 2, y, 6, 0, GC_DEFAULT, "c%d", ch);
            hbar(g, 8, y, lmax > 0 ? (int)(w->l1[ch] / lmax * bw * 8 + 0.5) : 0);
            grid_printf(g, 9 + bw, y, -1, 0, GC_DEFAULT, "%.4g", w->l1[ch]);
        }
    }
    c->line++; /* blank */
}

void view_inspect_draw(const app_state *s, grid *g, int y0, int rows)
{
    cursor c = {g, 0, s->inspect_top, y0 + 1, rows - 2};
    char label[64], shape[64];
    int total = app_inspect_lines(s), last;

    grid_fill(g, 0, y0, g->w, 1, GA_BOLD, GC_HEADER);
    if (s->inspect_node < 0 || !s->graph) {
        grid_text(g, 0, y0, g->w, "Inspect", GA_BOLD, GC_HEADER);
        grid_text(g, 1, y0 + 1, g->w - 1, "no layer selected: press Enter on a layer in Layers", 0,
                  GC_DEFAULT);
        return;
    }
    grid_printf(g, 0, y0, g->w, GA_BOLD, GC_HEADER, "Inspect  %s (%s)  output %s",
                app_node_label(s, s->inspect_node, label, sizeof label),
                s->graph->nodes[s->inspect_node].op_type,
                pare_stats_shape_format(s->stats, &s->stats->layers[s->inspect_node].out, shape,
                                        sizeof shape));
    if (s->act_node == s->inspect_node && s->act.numel) {
        draw_weight(s, &s->act, &c);
    } else {
        int y = screen_y(&c);

        if (y >= 0)
            grid_text(g, 0, y, g->w, "r: run the model on :limit samples for this layer's output "
                      "statistics", GA_DIM, GC_DEFAULT);
        c.line += 2;
    }
    if (!s->n_weights && (c.line - c.top) < c.rows && c.line >= c.top)
        grid_text(g, 1, c.y0 + c.line - c.top, g->w - 1, "this layer has no float weight tensors", 0,
                  GC_DEFAULT);
    for (int i = 0; i < s->n_weights; i++)
        draw_weight(s, &s->weights[i], &c);
    last = s->inspect_top + rows - 2 < total ? s->inspect_top + rows - 2 : total;
    grid_fill(g, 0, y0 + rows - 1, g->w, 1, GA_BOLD, GC_HEADER);
    grid_printf(g, 0, y0 + rows - 1, g->w, GA_BOLD, GC_HEADER, "%d weight tensor%s  lines %d-%d of %d",
                s->n_weights, s->n_weights == 1 ? "" : "s", total ? s->inspect_top + 1 : 0, last,
                total);
}
