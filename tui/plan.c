/* The compression plan the workbench edits (per-group prune ratios, quant
 * skips and settings, distillation pairs), its live totals, the actions of
 * the Sensitivity, Plan, Quant and Distill screens, and saving/loading the
 * plan as a job file (pare compress -c FILE). The jobs that run on the
 * worker are in tui/jobs.c. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "plan.h"
#include "pare/alloc.h"
#include "pare/job.h"
#include "pare/quant.h"

static const char *const loss_labels[] = {"soft_label", "l2", "mse", "cosine"};
static const char *const algo_labels[] = {"abs_max", "avg", "hist", "KL", "mse"};

const char *plan_loss_label(int loss)
{
    return loss >= 0 && loss < 4 ? loss_labels[loss] : "fsp";
}

const char *plan_algo_label(int algo)
{
    return algo >= 0 && algo < 5 ? algo_labels[algo] : "?";
}

static int clampi(int v, int lo, int hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

void plan_free(app_state *s)
{
    pare_prune_groups_free(s->groups);
    pare_sens_result_free(s->sens);
    pare_free(s->ratio);
    pare_free(s->marked);
    pare_free(s->node_group);
    pare_free(s->sens_rows);
    pare_free(s->sens_pick);
    pare_free(s->qt);
    pare_free(s->dvalues);
    pare_free(s->pairs);
    pare_free(s->tvalues);
    pare_stats_free(s->teacher_stats);
    pare_graph_free(s->teacher);
    s->teacher = NULL;
    s->teacher_stats = NULL;
    s->teacher_path[0] = '\0';
    s->tvalues = NULL;
    s->n_tvalues = 0;
    s->groups = NULL;
    s->sens = NULL;
    s->ratio = s->sens_pick = NULL;
    s->marked = NULL;
    s->node_group = s->sens_rows = s->dvalues = NULL;
    s->qt = NULL;
    s->pairs = NULL;
    s->n_qt = s->n_dvalues = s->n_pairs = s->n_sens_rows = 0;
    s->plan_cursor = s->plan_top = s->sens_cursor = s->sens_top = 0;
    s->quant_cursor = s->quant_top = s->distill_cursor = s->distill_top = s->pair_cursor = 0;
    s->distill_teacher = -1;
    s->plan_valid = false;
    s->plan_loss = NAN;
    s->plan_measured = NAN;
    s->plan_measure_job = 0;
    pare_sens_result_free(s->sens_prev);
    s->sens_prev = NULL;
    s->sens_live_job = 0;
    s->qerr_bits = 0;
    s->sens_target = 0;
}

static bool is_qop(const char *op)
{
    return !strcmp(op, "Conv") || !strcmp(op, "Gemm") || !strcmp(op, "MatMul");
}

static bool value_is_float_act(const pare_graph *g, int v)
{
    const pare_value *val = &g->values[v];

    return !val->init && (val->dtype == PARE_F32 || val->dtype == PARE_UNDEFINED);
}

/* Tensors that would get Q/DQ: activations and weights of Conv/Gemm/MatMul. */
static bool build_qt(app_state *s)
{
    const pare_graph *g = s->graph;
    int cap = 0, n = 0;
    bool *seen = pare_calloc((size_t)g->n_values + 1, sizeof *seen);

    if (!seen)
        return false;
    for (int i = 0; i < g->n_nodes; i++)
        if (is_qop(g->nodes[i].op_type))
            cap += g->nodes[i].n_inputs;
    s->qt = pare_calloc((size_t)cap + 1, sizeof *s->qt);
    if (!s->qt) {
        pare_free(seen);
        return false;
    }
    for (int i = 0; i < g->n_nodes; i++) {
        const pare_node *nd = &g->nodes[i];

        if (!is_qop(nd->op_type))
            continue;
        for (int k = 0; k < nd->n_inputs; k++) {
            int v = nd->inputs[k];
            bool weight;

            if (v < 0 || seen[v])
                continue;
            /* weights: Conv/Gemm input 1, any MatMul initializer; biases are not listed */
            weight = g->values[v].init && (k == 1 || !strcmp(nd->op_type, "MatMul"));
            if (g->values[v].init && !weight)
                continue;
            if (!weight && !value_is_float_act(g, v))
                continue;
            if (weight && g->values[v].init->dtype != PARE_F32)
                continue;
            seen[v] = true;
            s->qt[n++] = (app_qtensor){.value = v, .node = i, .is_weight = weight, .snr_db = NAN,
                               .err_sqnr = NAN, .err_cos = NAN, .qsens_drop = NAN};
        }
    }
    s->n_qt = n;
    pare_free(seen);
    return true;
}

/* Values a pair can name: node outputs with a known shape. */
static bool pair_values(const pare_graph *g, const pare_stats *st, int **out, int *n_out)
{
    int n = 0;
    int *v = pare_calloc((size_t)g->n_values + 1, sizeof *v);

    if (!v)
        return false;
    for (int i = 0; i < g->n_nodes; i++)
        for (int k = 0; k < g->nodes[i].n_outputs; k++) {
            int o = g->nodes[i].outputs[k];

            if (o >= 0 && st->values[o].ndim > 0)
                v[n++] = o;
        }
    *out = v;
    *n_out = n;
    return true;
}

static bool build_dvalues(app_state *s)
{
    return pair_values(s->graph, s->stats, &s->dvalues, &s->n_dvalues);
}

static const pare_graph *tgraph(const app_state *s)
{
    return s->teacher ? s->teacher : s->graph;
}

static const pare_stats *tstats(const app_state *s)
{
    return s->teacher ? s->teacher_stats : s->stats;
}

const int *plan_distill_list(const app_state *s, int *n, const pare_graph **g, const pare_stats **st)
{
    bool teacher = s->teacher && s->distill_teacher < 0;

    *n = teacher ? s->n_tvalues : s->n_dvalues;
    if (g)
        *g = teacher ? s->teacher : s->graph;
    if (st)
        *st = teacher ? s->teacher_stats : s->stats;
    return teacher ? s->tvalues : s->dvalues;
}

int act_teacher_set(app_state *s, const char *path)
{
    pare_graph *g = NULL;
    pare_stats *st = NULL;
    pare_error err = {0};
    int *tv = NULL, ntv = 0;

    if (!s->graph)
        return APP_FX_NONE;
    if (path && path[0] &&
        (pare_graph_load(path, &g, &err) != PARE_OK || pare_stats_compute(g, &st, &err) != PARE_OK ||
         !pair_values(g, st, &tv, &ntv))) {
        if (!err.code)
            pare_fail(&err, PARE_ENOMEM, path, "out of memory");
        app_log_error(s, &err);
        pare_stats_free(st);
        pare_graph_free(g);
        return APP_FX_REDRAW;
    }
    pare_free(s->tvalues);
    pare_stats_free(s->teacher_stats);
    pare_graph_free(s->teacher);
    s->teacher = g;
    s->teacher_stats = st;
    s->tvalues = tv;
    s->n_tvalues = ntv;
    snprintf(s->teacher_path, sizeof s->teacher_path, "%s", g ? path : "");
    s->n_pairs = 0; /* pairs named the old teacher's values */
    s->pair_cursor = 0;
    s->distill_teacher = -1;
    s->distill_cursor = s->distill_top = 0;
    s->distill_on_pairs = false;
    if (g)
        app_log(s, true, "teacher model %s: %d values; pairs cleared", path, ntv);
    else
        app_log(s, true, "teacher: the model itself; pairs cleared");
    return APP_FX_REDRAW;
}

void plan_reset_model(app_state *s)
{
    pare_error err = {0};
    int ng;

    plan_free(s);
    if (!s->graph)
        return;
    if (pare_prune_groups_find(s->graph, &s->groups, &err) != PARE_OK) {
        app_log(s, false, "no prune groups: %s", err.msg);
        s->groups = NULL;
    }
    ng = s->groups ? s->groups->n : 0;
    s->ratio = pare_calloc((size_t)ng + 1, sizeof *s->ratio);
    s->marked = pare_calloc((size_t)ng + 1, sizeof *s->marked);
    s->node_group = pare_calloc((size_t)s->graph->n_nodes + 1, sizeof *s->node_group);
    if (!s->ratio || !s->marked || !s->node_group || !build_qt(s) || !build_dvalues(s)) {
        pare_fail(&err, PARE_ENOMEM, s->model_name, "out of memory building the plan");
        app_log_error(s, &err);
        plan_free(s);
        return;
    }
    for (int i = 0; i < s->graph->n_nodes; i++)
        s->node_group[i] = -1;
    for (int gi = 0; gi < ng; gi++)
        for (int p = 0; p < s->groups->groups[gi].n_producers; p++)
            s->node_group[s->groups->groups[gi].producers[p]] = gi;
    s->plan_step_value = 0.25;
    plan_update_totals(s);
}

int plan_group_of_node(const app_state *s, int node)
{
    return s->node_group && node >= 0 && node < s->graph->n_nodes ? s->node_group[node] : -1;
}

static bool plan_has_ratios(const app_state *s)
{
    for (int i = 0; s->groups && i < s->groups->n; i++)
        if (s->ratio[i] > 0)
            return true;
    return false;
}

/* Predicted drop of the plan: the sum of the groups' drops on their curves. */
static double plan_predict(const app_state *s, const double *ratios)
{
    double loss = 0;

    if (!s->sens || !s->groups || s->sens->n_groups != s->groups->n)
        return NAN;
    for (int i = 0; i < s->groups->n; i++) {
        pare_sens_point pts[PARE_SENS_MAX_RATIOS];
        int np;

        if (ratios[i] <= 0)
            continue;
        np = pare_sens_group_points(s->sens, i, pts);
        if (!np)
            return NAN; /* a group the sweep did not measure */
        loss += pare_sens_predict(pts, np, ratios[i]);
    }
    return loss;
}

void plan_update_totals(app_state *s)
{
    pare_error err = {0};
    pare_graph *p = NULL;

    s->plan_valid = false;
    if (!s->stats)
        return;
    s->plan_params = s->stats->params;
    s->plan_flops = s->stats->flops;
    if (plan_has_ratios(s)) {
        if (pare_prune_apply(s->graph, s->groups, s->ratio, NULL, &p, NULL, &err) != PARE_OK ||
            pare_prune_measure(p, &s->plan_params, &s->plan_flops, &err) != PARE_OK) {
            app_log_error(s, &err);
            pare_graph_free(p);
            return;
        }
        pare_graph_free(p);
    }
    s->plan_valid = true;
    s->plan_loss = plan_predict(s, s->ratio);
}

/* ---- Plan actions ---- */

static bool plan_group_ok(app_state *s, int gi)
{
    const pare_prune_group *grp;

    if (!s->groups || gi < 0 || gi >= s->groups->n)
        return false;
    grp = &s->groups->groups[gi];
    if (!grp->prunable) {
        char label[64];

        app_log(s, true, "'%s' cannot be pruned: %s", app_group_label(s, gi, label, sizeof label),
                grp->reason);
        s->message_is_error = true;
        return false;
    }
    return true;
}

static double round_ratio(double r)
{
    r = round(r * 1000.0) / 1000.0;
    return r < 0 ? 0 : r > 0.95 ? 0.95 : r;
}

int act_ratio_set(app_state *s, double ratio)
{
    int gi = s->plan_cursor;
    char label[64];

    if (!plan_group_ok(s, gi))
        return APP_FX_REDRAW;
    if (!(ratio >= 0 && ratio < 1)) {
        app_log(s, true, "a ratio is in [0, 1) (0.3, .3 or 30%%), not %g", ratio);
        s->message_is_error = true;
        return APP_FX_REDRAW;
    }
    s->ratio[gi] = round_ratio(ratio);
    s->plan_step_value = s->ratio[gi];
    plan_update_totals(s);
    app_log(s, true, "%s: ratio %.2f  plan FLOPs %.1f%% of the model",
            app_group_label(s, gi, label, sizeof label), s->ratio[gi],
            s->stats->flops > 0 ? 100.0 * s->plan_flops / s->stats->flops : 0);
    return APP_FX_REDRAW;
}

int act_ratio_add(app_state *s, double delta)
{
    if (!s->groups || !s->groups->n)
        return APP_FX_NONE;
    return act_ratio_set(s, round_ratio(s->ratio[s->plan_cursor] + delta));
}

int act_plan_mark(app_state *s)
{
    if (!s->groups || !s->groups->n)
        return APP_FX_NONE;
    s->marked[s->plan_cursor] = !s->marked[s->plan_cursor];
    if (s->plan_cursor + 1 < s->groups->n)
        s->plan_cursor++;
    return act_move(s, 0);
}

int act_plan_apply_marked(app_state *s)
{
    int n = 0;

    for (int i = 0; s->groups && i < s->groups->n; i++)
        if (s->marked[i] && s->groups->groups[i].prunable) {
            s->ratio[i] = s->plan_step_value;
            n++;
        }
    if (!n) {
        app_log(s, true, "no marked groups: Space marks a row");
        return APP_FX_REDRAW;
    }
    plan_update_totals(s);
    app_log(s, true, "ratio %.2f applied to %d marked group%s", s->plan_step_value, n, n == 1 ? "" : "s");
    return APP_FX_REDRAW;
}

int act_plan_reset(app_state *s)
{
    for (int i = 0; s->groups && i < s->groups->n; i++) {
        s->ratio[i] = 0;
        s->marked[i] = false;
    }
    plan_update_totals(s);
    app_log(s, true, "plan ratios reset");
    return APP_FX_REDRAW;
}

/* Ratios pare_prune_select chooses from the sweep for a FLOPs target. */
static bool select_ratios(app_state *s, double target, double *ratios, double *loss, double *flops)
{
    pare_select_opts so = {.method = PARE_SELECT_BUDGET, .target = target};
    pare_select_result r = {0};
    pare_error err = {0};

    if (!s->sens) {
        app_log(s, true, "no sensitivity table yet: run a sweep on the Sens screen (r)");
        s->message_is_error = true;
        return false;
    }
    if (!(target > 0 && target < 1)) {
        app_log(s, true, "a FLOPs target is a fraction in (0, 1), e.g. 0.3, not %g", target);
        s->message_is_error = true;
        return false;
    }
    if (pare_prune_select(s->graph, s->groups, s->sens, &so, &r, &err) != PARE_OK) {
        app_log_error(s, &err);
        return false;
    }
    memcpy(ratios, r.ratios, (size_t)s->groups->n * sizeof *ratios);
    *loss = r.predicted_loss;
    *flops = r.flops_after;
    if (!r.met)
        app_log(s, false, "target %.0f%% not reached with the tested ratios", 100 * target);
    pare_select_result_fini(&r);
    return true;
}

int act_sens_target(app_state *s, double target)
{
    double loss = 0, flops = 0;

    if (!s->sens_pick)
        s->sens_pick = pare_calloc((size_t)(s->groups ? s->groups->n : 0) + 1, sizeof *s->sens_pick);
    if (!s->sens_pick || !select_ratios(s, target, s->sens_pick, &loss, &flops))
        return APP_FX_REDRAW;
    s->sens_target = target;
    s->sens_pick_loss = loss;
    s->sens_pick_flops = flops;
    {
        char a[32], b[32];

        app_log(s, true, "target -%.0f%% FLOPs: %s -> %s, predicted drop %.2f%s (sum of single-group drops; "
                "f on Plan uses it)",
                100 * target, grid_fmt_si(s->sens->flops, a, sizeof a), grid_fmt_si(flops, b, sizeof b),
                s->sens->metric == PARE_SENS_TOP1 ? 100 * loss : loss,
                s->sens->metric == PARE_SENS_TOP1 ? " pts" : "");
    }
    return APP_FX_REDRAW;
}

int act_plan_fill(app_state *s, double target)
{
    double loss = 0, flops = 0;
    double *r = pare_calloc((size_t)(s->groups ? s->groups->n : 0) + 1, sizeof *r);

    if (!r)
        return APP_FX_NONE;
    if (select_ratios(s, target, r, &loss, &flops)) {
        for (int i = 0; i < s->groups->n; i++)
            s->ratio[i] = round_ratio(r[i]);
        plan_update_totals(s);
        app_log(s, true, "plan filled for -%.0f%% FLOPs from the sensitivity table", 100 * target);
    }
    pare_free(r);
    return APP_FX_REDRAW;
}

/* ---- Sensitivity table order ---- */

static const app_state *sort_s;

static double worst_drop(const app_state *s, int gi)
{
    pare_sens_point pts[PARE_SENS_MAX_RATIOS];
    int n = pare_sens_group_points(s->sens, gi, pts);

    return n ? pts[n - 1].drop : -INFINITY;
}

static int cmp_sens(const void *pa, const void *pb)
{
    int a = *(const int *)pa, b = *(const int *)pb, c = 0;

    if (sort_s->sens_sort == 1)
        c = strcmp(sort_s->groups->groups[a].name, sort_s->groups->groups[b].name);
    else if (sort_s->sens_sort == 2) {
        double da = worst_drop(sort_s, a), db = worst_drop(sort_s, b);

        c = (da > db) - (da < db);
    }
    if (sort_s->sens_desc)
        c = -c;
    return c ? c : (a > b) - (a < b);
}

void plan_sens_rows(app_state *s)
{
    int sel = s->n_sens_rows ? s->sens_rows[s->sens_cursor] : -1;

    s->n_sens_rows = 0;
    if (!s->sens)
        return;
    pare_free(s->sens_rows);
    s->sens_rows = pare_calloc((size_t)s->sens->n_order + 1, sizeof *s->sens_rows);
    if (!s->sens_rows)
        return;
    for (int k = 0; k < s->sens->n_order; k++)
        s->sens_rows[s->n_sens_rows++] = s->sens->order[k];
    if (s->sens_sort != 0 || s->sens_desc) {
        sort_s = s;
        qsort(s->sens_rows, (size_t)s->n_sens_rows, sizeof *s->sens_rows, cmp_sens);
        sort_s = NULL;
    }
    s->sens_cursor = 0;
    for (int i = 0; i < s->n_sens_rows; i++)
        if (s->sens_rows[i] == sel)
            s->sens_cursor = i;
}

int act_sens_sort(app_state *s, int column)
{
    static const char *const names[] = {"sweep order", "name", "drop at the largest ratio"};

    if (s->sens_sort == column)
        s->sens_desc = !s->sens_desc;
    else {
        s->sens_sort = column;
        s->sens_desc = column == 2;
    }
    plan_sens_rows(s);
    app_log(s, true, "sensitivity sorted by %s%s", names[column], s->sens_desc ? ", descending" : "");
    return act_move(s, 0);
}

/* ---- Quant ---- */

int plan_quant_of_node(const app_state *s, int node)
{
    int state = 0;

    if (!s->quant_on)
        return 0;
    for (int i = 0; i < s->n_qt; i++) {
        const app_qtensor *q = &s->qt[i];

        if (q->node != node)
            continue;
        if (q->is_weight && q->skip)
            return 2;
        state = 1;
    }
    return state;
}

int act_quant_toggle(app_state *s)
{
    app_qtensor *q;

    if (!s->n_qt)
        return APP_FX_NONE;
    q = &s->qt[s->quant_cursor];
    q->skip = !q->skip;
    s->quant_on = true;
    app_log(s, true, "%s: %s%s", s->graph->values[q->value].name, q->skip ? "skip" : "quantize",
            q->skip && q->is_weight ? " (its whole node stays float)" : "");
    if (s->quant_cursor + 1 < s->n_qt)
        s->quant_cursor++;
    return act_move(s, 0);
}

int act_quant_bits(app_state *s)
{
    s->quant_bits = s->quant_bits == 8 ? 6 : s->quant_bits == 6 ? 4 : 8;
    s->quant_on = true;
    app_log(s, true, "quantize to %d bits (weights and activations)", s->quant_bits);
    return APP_FX_REDRAW;
}

int act_quant_bits_set(app_state *s, double bits)
{
    if (!(bits >= 2 && bits <= 8) || bits != floor(bits)) {
        app_log(s, true, "bits are a whole number from 2 to 8, not %g", bits);
        s->message_is_error = true;
        return APP_FX_REDRAW;
    }
    s->quant_bits = (int)bits;
    s->quant_on = true;
    app_log(s, true, "quantize to %d bits (weights and activations)", s->quant_bits);
    return APP_FX_REDRAW;
}

int act_quant_mode(app_state *s)
{
    s->quant_qat = !s->quant_qat;
    s->quant_on = true;
    app_log(s, true, "%s", s->quant_qat ? "quantization-aware training (QuantAware): the plan trains "
                                          "through fake-quant for :epochs (default 1)"
                                        : "post-training quantization (QuantPost)");
    return APP_FX_REDRAW;
}

int act_quant_tensor_bits_set(app_state *s, double bits)
{
    app_qtensor *q;

    if (!s->n_qt)
        return APP_FX_NONE;
    q = &s->qt[s->quant_cursor];
    if (!(bits == 0 || (bits >= 2 && bits <= 8)) || bits != floor(bits)) {
        app_log(s, true, "bits are a whole number from 2 to 8 (0: the plan's), not %g", bits);
        s->message_is_error = true;
        return APP_FX_REDRAW;
    }
    q->bits = (int)bits;
    s->quant_on = true;
    if (q->bits)
        app_log(s, true, "%s: %d bits (tensor_bits)", s->graph->values[q->value].name, q->bits);
    else
        app_log(s, true, "%s: the plan's %d bits", s->graph->values[q->value].name, s->quant_bits);
    return APP_FX_REDRAW;
}

int act_quant_algo(app_state *s)
{
    s->quant_algo = (s->quant_algo + 1) % 5;
    s->quant_on = true;
    app_log(s, true, "activation ranges: %s", plan_algo_label(s->quant_algo));
    return APP_FX_REDRAW;
}

int act_quant_enable(app_state *s)
{
    s->quant_on = !s->quant_on;
    app_log(s, true, "post-training quantization %s the plan", s->quant_on ? "in" : "not in");
    return APP_FX_REDRAW;
}

/* ---- Distill ---- */

int plan_distill_of_node(const app_state *s, int node)
{
    int m = 0;

    for (int i = 0; i < s->n_pairs; i++)
        for (int k = 0; k < s->graph->nodes[node].n_outputs; k++) {
            int v = s->graph->nodes[node].outputs[k];

            if (!s->teacher && v == s->pairs[i].teacher)
                m |= 1;
            if (v == s->pairs[i].student)
                m |= 2;
        }
    return m == 3 ? 'B' : m == 1 ? 'T' : m == 2 ? 'S' : 0;
}

/* Ops that carry their first input's channels to their output. */
static bool passes_channels(const char *op)
{
    static const char *const ops[] = {"Relu", "BatchNormalization", "Clip", "MaxPool", "AveragePool",
                                      "Add", "Sub", "Mul", "Sigmoid", "LeakyRelu", "HardSigmoid",
                                      "HardSwish", "Dropout", "Identity", "Tanh", "Elu", "Selu"};

    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
        if (!strcmp(op, ops[i]))
            return true;
    return false;
}

/* Channels value v has in the planned model (-1: unchanged by the plan). */
static int64_t planned_channels(const app_state *s, int v)
{
    int node = s->graph->values[v].producer;

    for (int steps = 0; node >= 0 && steps < 64; steps++) {
        int gi = s->node_group ? s->node_group[node] : -1;
        const pare_node *nd = &s->graph->nodes[node];

        if (gi >= 0) {
            const pare_prune_group *grp = &s->groups->groups[gi];
            int64_t go = (int64_t)llround(s->ratio[gi] * (double)grp->channels);

            return s->ratio[gi] > 0 ? grp->channels - (go >= grp->channels ? grp->channels - 1 : go) : -1;
        }
        if (!passes_channels(nd->op_type) || nd->n_inputs < 1 || nd->inputs[0] < 0)
            return -1;
        node = s->graph->values[nd->inputs[0]].producer;
    }
    return -1;
}

int plan_pair_compat(const app_state *s, int teacher, int student, char *text, size_t size)
{
    const pare_stat_shape *a = &tstats(s)->values[teacher];
    pare_stat_shape planned = s->stats->values[student], *b = &planned;
    int64_t ch = planned_channels(s, student);
    char sa[64], sb[64];

    if (ch > 0 && b->ndim >= 2)
        b->dims[1] = ch;
    bool same = a->ndim == b->ndim, rest = a->ndim == b->ndim && a->ndim >= 2;

    for (int d = 0; same && d < a->ndim; d++)
        same = a->dims[d] == b->dims[d];
    for (int d = 0; rest && d < a->ndim; d++)
        if (d != 1 && a->dims[d] != b->dims[d])
            rest = false;
    pare_stats_shape_format(tstats(s), a, sa, sizeof sa);
    pare_stats_shape_format(s->stats, b, sb, sizeof sb);
    if (same) {
        snprintf(text, size, "same shape %s", sa);
        return 0;
    }
    if (rest) {
        snprintf(text, size, "channels differ %s vs %s: needs an adapter", sa, sb);
        return 1;
    }
    snprintf(text, size, "incompatible shapes %s vs %s", sa, sb);
    return -1;
}

static bool add_pair(app_state *s, int teacher, int student, int loss, double alpha)
{
    app_pair *grown = pare_realloc(s->pairs, (size_t)(s->n_pairs + 1) * sizeof *grown);

    if (!grown)
        return false;
    s->pairs = grown;
    s->pairs[s->n_pairs++] = (app_pair){teacher, student, loss, alpha};
    s->pair_cursor = s->n_pairs - 1;
    return true;
}

int act_distill_pick(app_state *s)
{
    int v;
    char text[200];

    int n;
    const int *list = plan_distill_list(s, &n, NULL, NULL);

    if (s->distill_on_pairs || !n)
        return APP_FX_NONE;
    v = list[s->distill_cursor < n ? s->distill_cursor : n - 1];
    if (s->distill_teacher < 0) {
        s->distill_teacher = v;
        app_log(s, true, "teacher %s: now Enter on the student value (Esc cancels)",
                tgraph(s)->values[v].name);
        return act_move(s, 0); /* the list may have changed to the student's */
    }
    if (plan_pair_compat(s, s->distill_teacher, v, text, sizeof text) < 0) {
        app_log(s, true, "cannot pair: %s", text);
        s->message_is_error = true;
        return APP_FX_REDRAW;
    }
    if (!add_pair(s, s->distill_teacher, v, 2 /* mse */, 1.0))
        return APP_FX_NONE;
    app_log(s, true, "pair %s -> %s: %s", tgraph(s)->values[s->distill_teacher].name,
            s->graph->values[v].name, text);
    s->distill_teacher = -1;
    return APP_FX_REDRAW;
}

int act_distill_delete(app_state *s)
{
    if (!s->n_pairs)
        return APP_FX_NONE;
    memmove(&s->pairs[s->pair_cursor], &s->pairs[s->pair_cursor + 1],
            (size_t)(s->n_pairs - s->pair_cursor - 1) * sizeof *s->pairs);
    s->n_pairs--;
    s->pair_cursor = clampi(s->pair_cursor, 0, s->n_pairs ? s->n_pairs - 1 : 0);
    if (!s->n_pairs)
        s->distill_on_pairs = false;
    app_log(s, true, "pair deleted, %d left", s->n_pairs);
    return APP_FX_REDRAW;
}

int act_distill_loss(app_state *s)
{
    app_pair *p;

    if (!s->n_pairs)
        return APP_FX_NONE;
    p = &s->pairs[s->pair_cursor];
    p->loss = (p->loss + 1) % 4;
    app_log(s, true, "pair %d loss %s", s->pair_cursor + 1, plan_loss_label(p->loss));
    return APP_FX_REDRAW;
}

int act_distill_alpha(app_state *s, double alpha)
{
    if (!s->n_pairs)
        return APP_FX_NONE;
    if (!(alpha > 0 && alpha < 1e6)) {
        app_log(s, true, "alpha is a positive weight, not %g", alpha);
        s->message_is_error = true;
        return APP_FX_REDRAW;
    }
    s->pairs[s->pair_cursor].alpha = alpha;
    app_log(s, true, "pair %d alpha %g", s->pair_cursor + 1, alpha);
    return APP_FX_REDRAW;
}

int act_distill_focus(app_state *s)
{
    if (!s->n_pairs && !s->distill_on_pairs) {
        app_log(s, true, "no pairs yet: Enter on a teacher value, then on a student value");
        return APP_FX_REDRAW;
    }
    s->distill_on_pairs = !s->distill_on_pairs;
    return APP_FX_REDRAW;
}

/* ---- saving and loading the plan ---- */

/* A double-quoted YAML scalar. */
static char *yq(const char *in, char *buf, size_t size)
{
    size_t n = 0;

    if (size < 3)
        return buf;
    buf[n++] = '"';
    for (const char *p = in; *p && n + 3 < size; p++) {
        if (*p == '"' || *p == '\\')
            buf[n++] = '\\';
        buf[n++] = *p;
    }
    buf[n++] = '"';
    buf[n] = '\0';
    return buf;
}

static pare_status set(pare_job *job, const char *sec, const char *key, const char *val,
                       pare_error *err)
{
    return pare_job_set(job, sec, key, val, err);
}

/* Appends to a growing string; false when out of room. */
static bool cat(char **buf, size_t *cap, const char *text)
{
    size_t len = *buf ? strlen(*buf) : 0, need = len + strlen(text) + 1;

    if (need > *cap) {
        size_t nc = need * 2;
        char *grown = pare_realloc(*buf, nc);

        if (!grown)
            return false;
        if (!*buf)
            grown[0] = '\0';
        *buf = grown;
        *cap = nc;
    }
    memcpy(*buf + len, text, strlen(text) + 1);
    return true;
}

/* The plan as a job (caller frees). */
pare_status plan_to_job(const app_state *s, const char *path, pare_job **out, pare_error *err)
{
    pare_job *job = pare_job_new();
    char q[2200], v[64], abs[PATH_MAX], dir[PATH_MAX + 16];
    char *list = NULL;
    size_t cap = 0;
    pare_status rc = PARE_OK;
    const char *slash;

    *out = NULL;
    if (!job)
        return pare_fail(err, PARE_ENOMEM, path, "out of memory");
    if (!realpath(s->model_path, abs))
        snprintf(abs, sizeof abs, "%s", s->model_path);
    rc = set(job, "Global", "model", yq(abs, q, sizeof q), err);
    /* fashion-mnist: train (and calibrate) on the train split, evaluate on
       the workbench's split */
    if (rc == PARE_OK && s->data_spec[0] && !strncmp(s->data_spec, "fashion-mnist", 13)) {
        rc = set(job, "Global", "data", "fashion-mnist:train", err);
        if (rc == PARE_OK)
            rc = set(job, "Global", "eval_data", yq(s->data_spec, q, sizeof q), err);
    } else if (rc == PARE_OK && s->data_spec[0])
        rc = set(job, "Global", "data", yq(s->data_spec, q, sizeof q), err);
    /* outputs next to the job file: plan.yaml -> plan.out/ */
    slash = strrchr(path, '.');
    snprintf(dir, sizeof dir, "%.*s.out", slash && !strchr(slash, '/') ? (int)(slash - path)
                                                                       : (int)strlen(path), path);
    if (rc == PARE_OK)
        rc = set(job, "Global", "save_dir", yq(dir, q, sizeof q), err);
    if (rc == PARE_OK && s->limit > 0) {
        snprintf(v, sizeof v, "%ld", s->limit);
        rc = set(job, "Global", "eval_limit", v, err);
    }
    for (int i = 0; rc == PARE_OK && s->groups && i < s->groups->n; i++)
        if (s->ratio[i] > 0) {
            snprintf(v, sizeof v, "%.3g", s->ratio[i]);
            rc = set(job, "Layers", s->groups->groups[i].name, v, err);
        }
    if (rc == PARE_OK && s->quant_on) {
        const char *sec = s->quant_qat ? "QuantAware" : "QuantPost";

        snprintf(v, sizeof v, "%d", s->quant_bits);
        rc = set(job, sec, "weight_bits", v, err);
        if (rc == PARE_OK)
            rc = set(job, sec, "activation_bits", v, err);
        /* QAT learns its activation ranges (moving average); no algo */
        if (rc == PARE_OK && !s->quant_qat)
            rc = set(job, sec, "algo", plan_algo_label(s->quant_algo), err);
        if (rc == PARE_OK && !cat(&list, &cap, "["))
            rc = pare_fail(err, PARE_ENOMEM, path, "out of memory");
        for (int i = 0, n = 0; rc == PARE_OK && i < s->n_qt; i++)
            if (s->qt[i].skip) {
                if ((n++ && !cat(&list, &cap, ", ")) ||
                    !cat(&list, &cap, yq(s->graph->values[s->qt[i].value].name, q, sizeof q)))
                    rc = pare_fail(err, PARE_ENOMEM, path, "out of memory");
            }
        if (rc == PARE_OK && !cat(&list, &cap, "]"))
            rc = pare_fail(err, PARE_ENOMEM, path, "out of memory");
        if (rc == PARE_OK && strcmp(list, "[]") != 0)
            rc = set(job, sec, "skip_tensor_list", list, err);
        pare_free(list);
        list = NULL;
        cap = 0;
        if (!cat(&list, &cap, "{"))
            rc = pare_fail(err, PARE_ENOMEM, path, "out of memory");
        for (int i = 0, n = 0; rc == PARE_OK && i < s->n_qt; i++)
            if (s->qt[i].bits && !s->qt[i].skip) {
                snprintf(v, sizeof v, ": %d", s->qt[i].bits);
                if ((n++ && !cat(&list, &cap, ", ")) ||
                    !cat(&list, &cap, yq(s->graph->values[s->qt[i].value].name, q, sizeof q)) ||
                    !cat(&list, &cap, v))
                    rc = pare_fail(err, PARE_ENOMEM, path, "out of memory");
            }
        if (rc == PARE_OK && !cat(&list, &cap, "}"))
            rc = pare_fail(err, PARE_ENOMEM, path, "out of memory");
        if (rc == PARE_OK && strcmp(list, "{}") != 0)
            rc = set(job, sec, "tensor_bits", list, err);
        pare_free(list);
        list = NULL;
        cap = 0;
    }
    if (rc == PARE_OK && s->n_pairs) {
        if (!cat(&list, &cap, "["))
            rc = pare_fail(err, PARE_ENOMEM, path, "out of memory");
        for (int i = 0; rc == PARE_OK && i < s->n_pairs; i++) {
            char t[2200], st[2200], e[64];

            snprintf(e, sizeof e, "loss: %s, alpha: %g}", plan_loss_label(s->pairs[i].loss),
                     s->pairs[i].alpha);
            if ((i && !cat(&list, &cap, ", ")) || !cat(&list, &cap, "{teacher: ") ||
                !cat(&list, &cap, yq(tgraph(s)->values[s->pairs[i].teacher].name, t, sizeof t)) ||
                !cat(&list, &cap, ", student: ") ||
                !cat(&list, &cap, yq(s->graph->values[s->pairs[i].student].name, st, sizeof st)) ||
                !cat(&list, &cap, ", ") || !cat(&list, &cap, e))
                rc = pare_fail(err, PARE_ENOMEM, path, "out of memory");
        }
        if (rc == PARE_OK && !cat(&list, &cap, "]"))
            rc = pare_fail(err, PARE_ENOMEM, path, "out of memory");
        if (rc == PARE_OK)
            rc = set(job, "Distillation", "pairs", list, err);
        pare_free(list);
        if (rc == PARE_OK && s->teacher) {
            if (!realpath(s->teacher_path, abs))
                snprintf(abs, sizeof abs, "%s", s->teacher_path);
            rc = set(job, "Distillation", "teacher_model", yq(abs, q, sizeof q), err);
        }
        for (int i = 0; rc == PARE_OK && i < s->n_pairs; i++)
            if (plan_pair_compat(s, s->pairs[i].teacher, s->pairs[i].student, q, sizeof q) > 0) {
                rc = set(job, "Distillation", "adapter", "true", err);
                break;
            }
    }
    if (rc == PARE_OK &&
        (s->n_pairs || s->ft_epochs > 0 || s->ft_iters > 0 || (s->quant_on && s->quant_qat))) {
        if (s->ft_iters > 0) {
            snprintf(v, sizeof v, "%ld", s->ft_iters);
            rc = set(job, "TrainConfig", "train_iter", v, err);
        } else {
            snprintf(v, sizeof v, "%ld", s->ft_epochs > 0 ? s->ft_epochs : 1);
            rc = set(job, "TrainConfig", "epochs", v, err);
        }
    }
    if (rc == PARE_OK)
        rc = pare_job_validate(job, NULL, err);
    if (rc == PARE_OK)
        *out = job;
    else
        pare_job_free(job);
    return rc;
}

int act_plan_save(app_state *s, const char *path)
{
    pare_job *job = NULL;
    pare_error err = {0};
    int nr = 0, nskip = 0;

    if (!s->graph)
        return APP_FX_NONE;
    if (!path || !path[0]) {
        app_log(s, true, "save where? :w FILE.yaml");
        s->message_is_error = true;
        return APP_FX_REDRAW;
    }
    if (plan_to_job(s, path, &job, &err) != PARE_OK || pare_job_save(job, path, &err) != PARE_OK) {
        app_log_error(s, &err);
        pare_job_free(job);
        return APP_FX_REDRAW;
    }
    pare_job_free(job);
    for (int i = 0; s->groups && i < s->groups->n; i++)
        nr += s->ratio[i] > 0;
    for (int i = 0; i < s->n_qt; i++)
        nskip += s->qt[i].skip;
    app_log(s, true, "saved %s: %d ratio%s, %s, %d pair%s (run: pare compress -c %s)", path, nr,
            nr == 1 ? "" : "s", s->quant_on ? (nskip ? "PTQ with skips" : "PTQ") : "no PTQ",
            s->n_pairs, s->n_pairs == 1 ? "" : "s", path);
    return APP_FX_REDRAW;
}

static int find_value(const app_state *s, const char *name)
{
    return name ? pare_graph_find_value(s->graph, name) : -1;
}

int act_plan_load(app_state *s, const char *path)
{
    pare_job *job = NULL;
    pare_error err = {0};
    int missing = 0;

    if (!s->graph)
        return APP_FX_NONE;
    if (pare_job_load(path, &job, NULL, &err) != PARE_OK) {
        app_log_error(s, &err);
        return APP_FX_REDRAW;
    }
    if (job->global.model) {
        char a[PATH_MAX], b[PATH_MAX];

        if (!realpath(s->model_path, a) || !realpath(job->global.model, b) || strcmp(a, b) != 0)
            app_log(s, false, "%s was made for %s; applying it to %s", path, job->global.model,
                    s->model_name);
    }
    for (int i = 0; s->groups && i < s->groups->n; i++) {
        s->ratio[i] = 0;
        if (job->channel_prune.meta.present && s->groups->groups[i].prunable)
            s->ratio[i] = job->channel_prune.pruned_ratio;
    }
    for (int i = 0; i < job->layers.n; i++) {
        int gi = s->groups ? pare_prune_groups_lookup(s->groups, s->graph, job->layers.names[i],
                                                      path, &err) : -1;

        if (gi >= 0 && job->layers.ratios[i] >= 0 && job->layers.ratios[i] < 1)
            s->ratio[gi] = job->layers.ratios[i];
        else {
            app_log(s, false, "%s: Layers '%s' names no prune group of %s%s%s", path,
                    job->layers.names[i], s->model_name, err.hint[0] ? ": " : "", err.hint);
            missing++;
        }
    }
    s->quant_qat = job->quant_aware.meta.present;
    s->quant_on = job->quant_post.meta.present || s->quant_qat;
    for (int i = 0; i < s->n_qt; i++) {
        s->qt[i].skip = false;
        s->qt[i].bits = 0;
    }
    if (s->quant_on) {
        const pare_job_name_ints *tb =
            s->quant_qat ? &job->quant_aware.tensor_bits : &job->quant_post.tensor_bits;

        for (int k = 0; k < tb->n; k++) {
            int v = find_value(s, tb->names[k]), hit = 0;

            for (int i = 0; i < s->n_qt; i++)
                if (s->qt[i].value == v) {
                    s->qt[i].bits = (int)tb->v[k];
                    hit = 1;
                }
            if (!hit) {
                app_log(s, false, "%s: tensor_bits '%s' is no quantized tensor", path, tb->names[k]);
                missing++;
            }
        }
        const pare_job_strs *sk =
            s->quant_qat ? &job->quant_aware.skip_tensor_list : &job->quant_post.skip_tensor_list;

        s->quant_bits = (int)(s->quant_qat ? job->quant_aware.weight_bits : job->quant_post.weight_bits);
        if (!s->quant_qat)
            s->quant_algo = (int)job->quant_post.algo;
        for (int k = 0; k < sk->n; k++) {
            int v = find_value(s, sk->v[k]), hit = 0;

            for (int i = 0; i < s->n_qt; i++)
                if (s->qt[i].value == v) {
                    s->qt[i].skip = true;
                    hit = 1;
                }
            if (!hit) {
                app_log(s, false, "%s: skip_tensor_list '%s' is no quantized tensor", path, sk->v[k]);
                missing++;
            }
        }
    }
    if (job->distill.teacher_model && job->distill.teacher_model[0] &&
        strcmp(job->distill.teacher_model, s->teacher_path) != 0) {
        char tp[PATH_MAX + 1100];
        const char *slash = strrchr(path, '/');

        /* relative to the job file's directory, as pare compress reads it */
        if (job->distill.teacher_model[0] != '/' && slash)
            snprintf(tp, sizeof tp, "%.*s/%s", (int)(slash - path), path, job->distill.teacher_model);
        else
            snprintf(tp, sizeof tp, "%s", job->distill.teacher_model);
        act_teacher_set(s, tp);
    } else if (!job->distill.teacher_model && s->teacher)
        act_teacher_set(s, "");
    s->n_pairs = 0;
    for (int i = 0; i < job->distill.pairs.n; i++) {
        const pare_job_pair *p = &job->distill.pairs.v[i];
        int t = p->teacher ? pare_graph_find_value(tgraph(s), p->teacher) : -1;
        int st = find_value(s, p->student);

        if (t < 0 || st < 0 || !add_pair(s, t, st, (int)p->loss, p->alpha)) {
            app_log(s, false, "%s: pair %s -> %s: no such value", path, p->teacher, p->student);
            missing++;
        }
    }
    for (int i = 0; !s->teacher && i < job->distill.node.n; i++) {
        int v = find_value(s, job->distill.node.v[i]);

        if (v < 0 || !add_pair(s, v, v, job->distill.loss.n ? job->distill.loss.v[0] : 0,
                               job->distill.alpha.n ? job->distill.alpha.v[0] : 1.0)) {
            app_log(s, false, "%s: node %s: no such value", path, job->distill.node.v[i]);
            missing++;
        }
    }
    s->pair_cursor = 0;
    if (job->train.meta.present) {
        s->ft_epochs = job->train.epochs;
        s->ft_iters = job->train.train_iter;
    }
    pare_job_free(job);
    plan_update_totals(s);
    app_log(s, true, "plan loaded from %s%s", path,
            missing ? " (some names did not match: see the Log)" : "");
    s->message_is_error = missing > 0;
    return APP_FX_REDRAW;
}
