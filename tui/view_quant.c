/* Quant: every tensor that would get Q/DQ (activations and weights of
 * Conv/Gemm/MatMul) with its skip state, the plan's PTQ settings, and once
 * `m` measured them each tensor's quantization error (SQNR, cosine). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "app.h"

static const app_job *quant_job(const app_state *s)
{
    for (int i = s->n_jobs - 1; i >= 0; i--)
        if ((s->jobs[i].kind == JOB_QERR || s->jobs[i].kind == JOB_QSENS) &&
            (s->jobs[i].state == JS_RUNNING || s->jobs[i].state == JS_QUEUED))
            return &s->jobs[i];
    return NULL;
}

void view_quant_draw(const app_state *s, grid *g, int y0, int rows)
{
    int err_w = s->qerr_bits ? 13 : 0;  /* " SQNR dB  cos" */
    int sens_w = s->qsens_bits ? 7 : 0; /* "   drop" */
    int read_w = g->w >= 100 + err_w + sens_w ? 24 : g->w >= 76 + err_w + sens_w ? 17 : 0;
    int list = app_list_rows(s, SCREEN_QUANT), skipped = 0;
    int name_w = g->w - (1 + 6 + 1 + (read_w ? read_w + 1 : 0) + 19 + 1 + 9 + err_w + sens_w);
    char label[64], shape[64], cut[300];
    const app_job *job = quant_job(s);
    bool stale = s->qerr_bits && (s->qerr_bits != s->quant_bits || s->qerr_algo != s->quant_algo);
    bool sens_stale = s->qsens_bits &&
                      (s->qsens_bits != s->quant_bits || s->qsens_algo != s->quant_algo);

    grid_fill(g, 0, y0, g->w, 1, GA_BOLD, GC_HEADER);
    grid_printf(g, 0, y0, g->w, GA_BOLD, GC_HEADER, "%-*s %-6s %-*s%s%-19s %-9s%s%s", name_w, "tensor",
                "kind", read_w, read_w ? "read by" : "", read_w ? " " : "", "shape", "quant",
                err_w ? "  SQNR    cos" : "", sens_w ? "   drop" : "");
    if (!s->n_qt)
        grid_text(g, 1, y0 + 1, g->w - 1, "no Conv, Gemm or MatMul inputs to quantize", 0, GC_DEFAULT);
    for (int r = 0; r < list && s->quant_top + r < s->n_qt; r++) {
        int i = s->quant_top + r, yy = y0 + 1 + r, x = 0;
        const app_qtensor *q = &s->qt[i];
        bool cur = i == s->quant_cursor;
        bool node_off = false;
        uint8_t attr = cur ? GA_REVERSE : 0, color = cur ? GC_CURSOR : GC_DEFAULT;
        const char *state;
        char bits_text[16];

        for (int k = 0; k < s->n_qt; k++)
            node_off |= s->qt[k].node == q->node && s->qt[k].is_weight && s->qt[k].skip;
        if (cur)
            grid_fill(g, 0, yy, g->w, 1, attr, color);
        grid_text(g, x, yy, name_w, grid_tail(s->graph->values[q->value].name, name_w, cut, sizeof cut),
                  attr, color);
        x += name_w + 1;
        grid_text(g, x, yy, 6, q->is_weight ? "weight" : "act", attr, color);
        x += 7;
        if (read_w) {
            grid_text(g, x, yy, read_w,
                      grid_tail(app_node_label(s, q->node, label, sizeof label), read_w, cut, sizeof cut),
                      attr, color);
            x += read_w + 1;
        }
        grid_text(g, x, yy, 19,
                  grid_head(pare_stats_shape_format(s->stats, &s->stats->values[q->value], shape,
                                                    sizeof shape), 19, cut, sizeof cut), attr, color);
        x += 20;
        if (q->skip)
            state = q->is_weight ? "skip node" : "skip";
        else if (node_off)
            state = "(float)";
        else if (!s->quant_on)
            state = "off";
        else {
            /* a tensor's own width (tensor_bits) is marked with '*' */
            snprintf(bits_text, sizeof bits_text, "int%d%s", q->bits ? q->bits : s->quant_bits,
                     q->bits ? "*" : "");
            state = bits_text;
        }
        grid_text(g, x, yy, -1, state, attr | (q->skip ? GA_BOLD : 0),
                  cur ? color : q->skip ? GC_ERROR : GC_ACCENT);
        if (isfinite(q->snr_db) && !q->skip && !node_off && s->quant_on)
            grid_printf(g, x + 5, yy, 4, attr, color, "%2.0fdB", q->snr_db);
        x += 9;
        if (err_w && !isnan(q->err_sqnr))
            grid_printf(g, x, yy, err_w, attr | (stale ? GA_DIM : 0), color, " %5.1f %6.4f",
                        q->err_sqnr, q->err_cos);
        else if (err_w)
            grid_text(g, x, yy, err_w, "     -      -", attr | GA_DIM, color);
        x += err_w;
        /* the metric its node loses when only that node is quantized */
        if (sens_w && !isnan(q->qsens_drop))
            grid_printf(g, x, yy, sens_w, attr | (sens_stale ? GA_DIM : 0), color, " %6.2f",
                        q->qsens_drop);
        else if (sens_w)
            grid_text(g, x, yy, sens_w, "      -", attr | GA_DIM, color);
    }
    for (int i = 0; i < s->n_qt; i++)
        skipped += s->qt[i].skip;
    if (job)
        grid_printf(g, 0, y0 + rows - 2, g->w, GA_BOLD, GC_DEFAULT,
                    "%s %s: %s %lld/%lld %s (a job; see Jobs)",
                    job->kind == JOB_QSENS ? "quant sensitivity" : "error table",
                    job->state == JS_QUEUED ? "queued" : "running", job->stage, (long long)job->done,
                    (long long)job->total, job->unit);
    else if (s->qsens_bits && !s->qerr_bits)
        grid_printf(g, 0, y0 + rows - 2, g->w, sens_stale ? GA_BOLD : GA_DIM, GC_DEFAULT,
                    "drop: metric lost with only that layer quantized, %d bits %s%s", s->qsens_bits,
                    plan_algo_label(s->qsens_algo), sens_stale ? "; settings changed: v again" : "");
    else if (s->qerr_bits)
        grid_printf(g, 0, y0 + rows - 2, g->w, stale ? GA_BOLD : GA_DIM, GC_DEFAULT,
                    "SQNR dB, cos: x vs DQ(Q(x)) at %d bits %s%s%s", s->qerr_bits,
                    plan_algo_label(s->qerr_algo), s->qerr_planned ? ", pruned plan" : "",
                    stale ? "; settings changed: m again" : "; m again, digits: bits");
    else
        grid_printf(g, 0, y0 + rows - 2, g->w, GA_DIM, GC_DEFAULT,
                    "m: SQNR/cos  v: sensitivity  digits: bits  F1-F8/Alt+n: screens  dB: SNR of PTQ");
    grid_fill(g, 0, y0 + rows - 1, g->w, 1, GA_BOLD, GC_HEADER);
    grid_printf(g, 0, y0 + rows - 1, g->w, GA_BOLD, GC_HEADER,
                "%s %s  bits %d  algo %s  %d tensors, %d skipped  (e on/off, a QAT)",
                s->quant_qat ? "QAT" : "PTQ", s->quant_on ? "in the plan" : "off", s->quant_bits,
                s->quant_qat ? "moving average" : plan_algo_label(s->quant_algo),
                s->n_qt, skipped);
}
