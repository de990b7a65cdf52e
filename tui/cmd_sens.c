/* pare sens MODEL --prune --data SPEC: pruning sensitivity per channel group,
 * and per-group ratios for a FLOPs target. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "json.h"
#include "progress.h"
#include "pare/alloc.h"
#include "pare/data.h"
#include "pare/exec.h"
#include "pare/graph.h"
#include "pare/metrics.h"
#include "pare/prune.h"
#include "pare/quant.h"
#include "pare/sensitivity.h"

#ifndef PARE_FASHION_MNIST
#define PARE_FASHION_MNIST ""
#endif

int cmd_sens(int argc, char **argv);

static const cli_option sens_options[] = {
    {.name = "prune", .help = "channel-pruning sensitivity (per dependency group)"},
    {.name = "data", .metavar = "SPEC", .help = "dataset (fashion-mnist[:test|:train], idx:, npy:, npz:)"},
    {.name = "ratios", .metavar = "R,R...", .help = "ratios to test (default 0.1,0.2,...,0.9)"},
    {.name = "criterion", .metavar = "C", .help = "channel criterion (default l1_norm)"},
    {.name = "round-to", .metavar = "N", .help = "keep a multiple of N channels per group"},
    {.name = "metric", .metavar = "M", .help = "top1 (needs labels) or cosine (default: top1 with labels)"},
    {.name = "limit", .metavar = "N", .help = "use the first N samples (default 1000)"},
    {.name = "batch", .metavar = "B", .help = "batch size (default 64)"},
    {.name = "threads", .metavar = "N", .help = "threads (default: PARE_THREADS or all cores)"},
    {.name = "cache", .metavar = "FILE", .help = "resumable cache of measured points"},
    {.name = "output", .metavar = "FILE.csv", .help = "write sensitivity.csv", .short_name = 'o'},
    {.name = "json", .metavar = "FILE", .help = "write the sweep as JSON"},
    {.name = "drop-cap", .metavar = "D", .help = "stop a group's sweep once its drop exceeds D"},
    {.name = "proxy", .metavar = "N", .help = "rank groups by output MSE on N batches first"},
    {.name = "target-flops", .metavar = "F", .help = "choose ratios removing this fraction of FLOPs"},
    {.name = "method", .metavar = "M", .help = "paddleslim, budget (default) or measured: what --save writes"},
    {.name = "eval-batches", .metavar = "N", .help = "measured greedy: batches per candidate (default 4)"},
    {.name = "save", .metavar = "OUT.onnx", .help = "with --target-flops: write the model pruned by --method"},
    {.name = "naive", .help = "also time a naive sweep (whole model re-run per point) and compare"},
    {.name = "recover-steps", .metavar = "N", .help = "measure each point after N steps of "
     "self-distillation fine-tuning (recovery-aware)"},
    {.name = "recover-data", .metavar = "SPEC", .help = "--recover-steps: training data (default: "
     "--data, all of it, shuffled)"},
    {.name = "recover-lr", .metavar = "LR", .help = "--recover-steps: AdamW learning rate "
     "(default 1e-3, cosine to 0)"},
    {.name = "quant", .help = "quantization sensitivity (only this layer / all but this layer)"},
    {.name = "algo", .metavar = "A", .help = "--quant: activation ranges abs_max, avg, hist, KL, mse "
     "(default hist)"},
    {.name = "bits", .metavar = "W", .help = "--quant: weight bits, 2..8 (default 8)"},
    {.name = "act-bits", .metavar = "A", .help = "--quant: activation bits, 2..8 (default 8)"},
    {.name = "preset", .metavar = "P", .help = "--quant: onnxruntime (default), tensorrt or u8s8"},
    {.name = "full", .help = "--quant: also quantize Add, Mul, Concat, pooling... (is_full_quantize)"},
    {.name = "batch-nums", .metavar = "N", .help = "--quant: calibration batches of 32 (default 10)"},
    {.name = "target-drop", .metavar = "X", .help = "--quant: revert layers greedily until the drop "
     "is <= X points"},
};
static const char *const sens_positional[] = {"MODEL"};
static const cli_spec sens_spec = {
    .name = "sens",
    .synopsis = "MODEL --prune --data SPEC [--ratios R,...] [--criterion C] [--limit N]\n"
                "                 [--cache FILE] [-o sensitivity.csv] [--json FILE]\n"
                "                 [--target-flops F [--method paddleslim|budget|measured] [--save OUT.onnx]]\n"
                "                 [--naive] [--round-to N]\n"
                "                 [--recover-steps N [--recover-data SPEC] [--recover-lr LR]]\n"
                "       pare sens MODEL --quant --data SPEC [--limit N] [--algo A] [--bits W]\n"
                "                 [--act-bits A] [--target-drop X] [--cache FILE] [-o quant_sens.csv]\n"
                "                 [--json FILE]",
    .summary = "Prunes one channel group at a time at each ratio and measures the metric drop\n"
               "(top-1 with labels, else cosine similarity to the unpruned outputs). Only the\n"
               "part of the model after the group is re-run, on stored activations. With\n"
               "--target-flops, prints the ratios PaddleSlim's shared-threshold method and\n"
               "pare's budgeted allocation choose, with predicted and measured loss, next to\n"
               "a uniform ratio. Ctrl-C stops between points; --cache resumes.\n\n"
               "With --quant: calibrates once, then per quantizable node measures the metric with\n"
               "only that node quantized (PaddleSlim AnalysisPTQ) and with every node but that\n"
               "one quantized (NNCF's revert-one), and ranks both. --target-drop X reverts the\n"
               "node that recovers most, re-measuring after each, until the drop vs fp32 is at\n"
               "most X points (top-1 %, or 100 x cosine), and prints the skip list as YAML.",
    .options = sens_options,
    .n_options = (int)(sizeof sens_options / sizeof sens_options[0]),
    .positional = sens_positional,
    .n_required = 1,
    .n_positional = 1,
    .epilog = "Examples:\n  pare sens resnet8.onnx --prune --data fashion-mnist --limit 1000 "
              "--target-flops 0.5\n"
              "  pare sens resnet8.onnx --quant --data fashion-mnist --limit 1000 --bits 4 "
              "--target-drop 0.5",
};

typedef struct bar_state {
    progress bar;
    bool started;
} bar_state;

static bool on_progress(void *user, const pare_progress_event *ev)
{
    bar_state *b = user;
    if (!b->started) {
        progress_init(&b->bar, "sens", ev->total);
        b->started = true;
    }
    if (ev->detail)
        progress_note(&b->bar, ev->detail);
    progress_update(&b->bar, ev->done);
    return !cli_interrupted();
}

/* Metric of model m on the first `limit` samples (same as the sweep's). */
static pare_status measure_metric(const pare_graph *m, const pare_dataset *ds, int batch, int threads,
                                  bool top1, const pare_graph *ref, double *out, pare_error *err)
{
    pare_exec *x = NULL, *xr = NULL;
    pare_exec_opts opts = {.batch = batch, .n_threads = threads};
    int64_t count = pare_dataset_count(ds);
    int64_t *labels = pare_alloc((size_t)batch * sizeof *labels);
    pare_accuracy acc;
    pare_similarity sim;
    pare_status rc;

    if (!labels)
        return pare_fail(err, PARE_ENOMEM, NULL, "out of memory");
    pare_accuracy_init(&acc, 1);
    pare_similarity_init(&sim);
    rc = pare_exec_new(m, &opts, &x, err);
    if (rc == PARE_OK && !top1)
        rc = pare_exec_new(ref, &opts, &xr, err);
    for (int64_t pos = 0; rc == PARE_OK && pos < count; pos += batch) {
        int64_t n = count - pos < batch ? count - pos : batch;
        rc = pare_dataset_fill(ds, pos, n, pare_exec_input(x, 0), labels, err);
        if (rc == PARE_OK)
            rc = pare_exec_run(x, err);
        if (rc == PARE_OK && top1)
            rc = pare_accuracy_add(&acc, pare_exec_output(x, 0), labels, n, err);
        if (rc == PARE_OK && !top1) {
            rc = pare_dataset_fill(ds, pos, n, pare_exec_input(xr, 0), NULL, err);
            if (rc == PARE_OK)
                rc = pare_exec_run(xr, err);
            if (rc == PARE_OK)
                rc = pare_similarity_add(&sim, pare_exec_output(x, 0), pare_exec_output(xr, 0), n, err);
        }
    }
    if (rc == PARE_OK) {
        pare_similarity_result r;
        pare_similarity_get(&sim, &r);
        *out = top1 ? pare_accuracy_top1(&acc) : r.cosine_mean;
    }
    pare_exec_free(x);
    pare_exec_free(xr);
    pare_free(labels);
    return rc;
}

static void print_table(const pare_sens_result *r, const pare_prune_groups *gs, const double *ratios,
                        int nr)
{
    bool top1 = r->metric == PARE_SENS_TOP1;
    printf("baseline %s %.4f on %lld samples; cells: drop%s (baseline - pruned)\n\n",
           top1 ? "top-1" : "cosine", r->baseline, (long long)r->n_samples,
           top1 ? " in points of %" : "");
    printf("%-36s %5s", "group", "ch");
    for (int j = 0; j < nr; j++)
        printf(" %6.2f", ratios[j]);
    printf("\n");
    for (int k = 0; k < r->n_order; k++) {
        int gi = r->order[k];
        pare_sens_point pts[PARE_SENS_MAX_RATIOS];
        int np = pare_sens_group_points(r, gi, pts), p = 0;
        const char *name = gs->groups[gi].name;
        size_t len = strlen(name);
        printf("%-36s %5lld", len > 36 ? name + len - 36 : name, (long long)gs->groups[gi].channels);
        for (int j = 0; j < nr; j++) {
            if (p < np && fabs(pts[p].ratio - ratios[j]) < 1e-9)
                printf(" %6.2f", top1 ? 100.0 * pts[p++].drop : pts[p++].drop);
            else
                printf(" %6s", "-");
        }
        printf("\n");
    }
}

typedef struct choice {
    const char *label;
    double *ratios;
    double predicted;
    double measured;
    double flops_after, threshold;
    bool met;
} choice;

/* Uniform ratio (the same for every swept group) meeting the target, bisected. */
static pare_status uniform_choice(const pare_graph *g, const pare_prune_groups *gs,
                                  const pare_sens_result *r, double target, const pare_prune_opts *po,
                                  double *ratios, double *flops_after, pare_error *err)
{
    double lo = 0, hi = 0.95, f = 0, f0 = r->flops;
    bool *swept = pare_calloc((size_t)(gs->n ? gs->n : 1), sizeof *swept);
    pare_status rc = PARE_OK;
    if (!swept)
        return pare_fail(err, PARE_ENOMEM, NULL, "out of memory");
    for (int k = 0; k < r->n_order; k++)
        swept[r->order[k]] = true;
    for (int it = 0; it < 30 && rc == PARE_OK; it++) {
        double mid = 0.5 * (lo + hi);
        pare_graph *p = NULL;
        for (int i = 0; i < gs->n; i++)
            ratios[i] = swept[i] ? mid : 0;
        rc = pare_prune_apply(g, gs, ratios, po, &p, NULL, err);
        if (rc == PARE_OK)
            rc = pare_prune_measure(p, NULL, &f, err);
        pare_graph_free(p);
        if (rc == PARE_OK && 1.0 - f / f0 >= target)
            hi = mid;
        else
            lo = mid;
    }
    for (int i = 0; i < gs->n; i++)
        ratios[i] = swept[i] ? hi : 0;
    if (rc == PARE_OK) {
        pare_graph *p = NULL;
        rc = pare_prune_apply(g, gs, ratios, po, &p, NULL, err);
        if (rc == PARE_OK)
            rc = pare_prune_measure(p, NULL, flops_after, err);
        pare_graph_free(p);
    }
    pare_free(swept);
    return rc;
}

static int run_targets(const cli_args *args, const pare_graph *g, const pare_prune_groups *gs,
                       const pare_sens_result *r, const pare_dataset *ds, const pare_sens_opts *so,
                       double target, const pare_prune_opts *po)
{
    enum { N_CHOICES = 4 };
    choice ch[N_CHOICES] = {{.label = "paddleslim"}, {.label = "budget"}, {.label = "measured"},
                            {.label = "uniform"}};
    int batch = so->batch, threads = so->n_threads;
    long eval_batches = 4;
    pare_error err = {0};
    const char *method = cli_str(args, cli_opt(&sens_spec, "method"), "budget");
    const char *save = cli_str(args, cli_opt(&sens_spec, "save"), NULL);
    int rc = CLI_OK;
    char a[64];

    if (strcmp(method, "paddleslim") != 0 && strcmp(method, "budget") != 0 &&
        strcmp(method, "measured") != 0)
        return cli_usage_error(&sens_spec, "--method is paddleslim, budget or measured, not '%s'",
                               method);
    if (!cli_get_int(&sens_spec, args, cli_opt(&sens_spec, "eval-batches"), 1, 1 << 20, &eval_batches))
        return CLI_USAGE;
    for (int c = 0; c < N_CHOICES && rc == CLI_OK; c++) {
        pare_graph *p = NULL;
        pare_status st;
        if (c < 3) {
            pare_select_opts sel = {.method = c == 0 ? PARE_SELECT_PADDLESLIM : PARE_SELECT_BUDGET,
                                    .target = target, .prune = *po, .eval_batches = (int)eval_batches};
            pare_select_result sr;
            if (c == 2) {
                bar_state bs = {0};
                pare_progress prog = {on_progress, &bs};
                pare_sens_opts mo = *so;
                mo.progress = &prog;
                cli_sigint_install();
                st = pare_sens_select_measured(g, gs, ds, &mo, &sel, &sr, &err);
                cli_sigint_restore();
                if (bs.started)
                    progress_finish(&bs.bar);
            } else {
                st = pare_prune_select(g, gs, r, &sel, &sr, &err);
            }
            if (st != PARE_OK) {
                rc = cli_report(&err);
                break;
            }
            ch[c].ratios = sr.ratios;
            ch[c].predicted = sr.predicted_loss;
            ch[c].flops_after = sr.flops_after;
            ch[c].threshold = sr.threshold;
            ch[c].met = sr.met;
        } else {
            ch[c].ratios = pare_calloc((size_t)(gs->n ? gs->n : 1), sizeof(double));
            if (!ch[c].ratios || uniform_choice(g, gs, r, target, po, ch[c].ratios,
                                                &ch[c].flops_after, &err) != PARE_OK) {
                rc = ch[c].ratios ? cli_report(&err) : CLI_FAILED;
                break;
            }
            ch[c].predicted = 0;
            for (int i = 0; i < gs->n; i++) {
                pare_sens_point pts[PARE_SENS_MAX_RATIOS];
                int np = pare_sens_group_points(r, i, pts);
                if (ch[c].ratios[i] > 0)
                    ch[c].predicted += pare_sens_predict(pts, np, ch[c].ratios[i]);
            }
            ch[c].met = 1.0 - ch[c].flops_after / r->flops >= target - 1e-9;
            /* the sweep's curves predict the uniform ratios too */
            ch[c].threshold = NAN;
        }
        st = pare_prune_apply(g, gs, ch[c].ratios, po, &p, NULL, &err);
        /* saved as pruned; measured as the sweep measured its points */
        if (st == PARE_OK && save && strcmp(ch[c].label, method) == 0)
            st = pare_graph_save(p, save, &err);
        if (st == PARE_OK)
            st = pare_sens_recover(g, &p, so, &err);
        if (st == PARE_OK)
            st = measure_metric(p, ds, batch, threads, r->metric == PARE_SENS_TOP1, g,
                                &ch[c].measured, &err);
        pare_graph_free(p);
        if (st != PARE_OK)
            rc = cli_report(&err);
    }
    if (rc == CLI_OK) {
        bool top1 = r->metric == PARE_SENS_TOP1;
        double scale = top1 ? 100.0 : 1.0;
        printf("\ntarget: remove %.0f %% of %s FLOPs\n", 100.0 * target,
               cli_fmt_si(r->flops, a, sizeof a));
        printf("%-36s", "group");
        for (int c = 0; c < N_CHOICES; c++)
            printf(" %10s", ch[c].label);
        printf("\n");
        for (int k = 0; k < r->n_order; k++) {
            int gi = r->order[k];
            const char *name = gs->groups[gi].name;
            size_t len = strlen(name);
            printf("%-36s", len > 36 ? name + len - 36 : name);
            for (int c = 0; c < N_CHOICES; c++)
                printf(" %10.3f", ch[c].ratios[gi]);
            printf("\n");
        }
        printf("%-36s", "FLOPs removed %");
        for (int c = 0; c < N_CHOICES; c++)
            printf(" %10.1f", 100.0 * (1.0 - ch[c].flops_after / r->flops));
        printf("\n%-36s", top1 ? "predicted drop (points of %)" : "predicted drop");
        for (int c = 0; c < N_CHOICES; c++)
            printf(" %10.2f", scale * ch[c].predicted);
        if (so->recover_steps > 0)
            printf("\n(predicted and measured after %d recovery steps)", so->recover_steps);
        printf("\n%-36s", top1 ? "measured drop (points of %)" : "measured drop");
        for (int c = 0; c < N_CHOICES; c++)
            printf(" %10.2f", scale * (r->baseline - ch[c].measured));
        printf("\n%-36s", top1 ? "measured top-1 %" : "measured cosine");
        for (int c = 0; c < N_CHOICES; c++)
            printf(" %10.2f", scale * ch[c].measured);
        printf("\n");
        if (!ch[0].met || !ch[1].met || !ch[2].met)
            printf("note: a method could not reach the target with the tested ratios\n");
        printf("(measured greedy: predicted = its drop on the first %ld batches)\n", eval_batches);
        if (save)
            printf("wrote %s (%s ratios)\n", save, method);
    }
    for (int c = 0; c < N_CHOICES; c++)
        pare_free(ch[c].ratios);
    return rc;
}

/* ---- pare sens --quant --------------------------------------------------------------- */

static bool on_quant_progress(void *user, const pare_progress_event *ev)
{
    bar_state *b = user;
    if (!b->started || !b->bar.label || strcmp(b->bar.label, ev->stage)) {
        if (b->started)
            progress_finish(&b->bar);
        progress_init(&b->bar, ev->stage, ev->total);
        b->started = true;
    }
    b->bar.total = ev->total;
    if (ev->detail)
        progress_note(&b->bar, ev->detail);
    progress_update(&b->bar, ev->done);
    return !cli_interrupted();
}

/* The last w characters of name, with ".." in front when cut. */
static const char *name_tail(const char *name, int w, char *buf, size_t size)
{
    size_t len = strlen(name);
    if (len <= (size_t)w)
        return name;
    snprintf(buf, size, "..%s", name + len - (size_t)w + 2);
    return buf;
}

/* A YAML double-quoted scalar. */
static void yaml_quoted(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fputc('\\', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

/* Opens path's temp name for writing; finish_file renames it over path. */
static FILE *open_tmp(const char *path, char *tmp, size_t size)
{
    snprintf(tmp, size, "%s.tmp", path);
    return fopen(tmp, "w");
}

static int finish_tmp(FILE *f, const char *tmp, const char *path)
{
    int bad = f ? ferror(f) : 1;
    if (!f || (fclose(f) != 0) | bad || rename(tmp, path) != 0) {
        pare_error err = {0};
        remove(tmp);
        pare_fail(&err, PARE_EIO, path, "cannot write: %s", strerror(errno));
        return cli_report(&err);
    }
    return CLI_OK;
}

static int reverted_at(const pare_quant_sens_result *r, int l)
{
    for (int k = 0; k < r->n_skip; k++)
        if (r->skip[k] == l)
            return k + 1;
    return 0;
}

static int save_quant_csv(const pare_quant_sens_result *r, const char *path)
{
    char tmp[4096];
    FILE *f = open_tmp(path, tmp, sizeof tmp);
    int *rank_o = pare_calloc((size_t)r->n_layers + 1, sizeof *rank_o);
    int *rank_r = pare_calloc((size_t)r->n_layers + 1, sizeof *rank_r);

    if (f && rank_o && rank_r) {
        for (int k = 0; k < r->n_layers; k++) {
            rank_o[r->by_only[k]] = k + 1;
            rank_r[r->by_recovery[k]] = k + 1;
        }
        fprintf(f, "node,op_type,skip_name,metric,fp32,full,only,only_drop,all_but,recovery,"
                   "rank_only,rank_recovery,reverted\n");
        for (int l = 0; l < r->n_layers; l++) {
            const pare_quant_sens_layer *L = &r->layers[l];
            fprintf(f, "\"%s\",%s,\"%s\",%s,%.9g,%.9g,%.9g,%.9g,%.9g,%.9g,%d,%d,%d\n", L->node,
                    L->op_type, L->skip_name,
                    r->metric == PARE_QUANT_SENS_TOP1 ? "top1" : "cosine", r->fp32, r->full,
                    L->only, r->fp32 - L->only, L->all_but, L->all_but - r->full, rank_o[l],
                    rank_r[l], reverted_at(r, l));
        }
    }
    pare_free(rank_o);
    pare_free(rank_r);
    return finish_tmp(f, tmp, path);
}

static int save_quant_json(const pare_quant_sens_result *r, const char *model, const char *data,
                           const pare_quant_opts *qo, const char *path)
{
    char tmp[4096];
    FILE *f = open_tmp(path, tmp, sizeof tmp);
    json_writer w;

    if (!f)
        return finish_tmp(f, tmp, path);
    json_init(&w, f, true);
    json_begin_object(&w);
    json_key(&w, "model");
    json_string(&w, model);
    json_key(&w, "data");
    json_string(&w, data);
    json_key(&w, "samples");
    json_int(&w, r->n_samples);
    json_key(&w, "metric");
    json_string(&w, r->metric == PARE_QUANT_SENS_TOP1 ? "top1" : "cosine");
    json_key(&w, "algo");
    json_string(&w, pare_quant_algo_name(qo->algo));
    json_key(&w, "weight_bits");
    json_int(&w, qo->weight_bits);
    json_key(&w, "activation_bits");
    json_int(&w, qo->activation_bits);
    json_key(&w, "fp32");
    json_double(&w, r->fp32);
    json_key(&w, "full");
    json_double(&w, r->full);
    json_key(&w, "layers");
    json_begin_array(&w);
    for (int l = 0; l < r->n_layers; l++) {
        const pare_quant_sens_layer *L = &r->layers[l];
        json_begin_object(&w);
        json_key(&w, "node");
        json_string(&w, L->node);
        json_key(&w, "op_type");
        json_string(&w, L->op_type);
        json_key(&w, "skip_name");
        json_string(&w, L->skip_name);
        json_key(&w, "only");
        if (isnan(L->only))
            json_null(&w);
        else
            json_double(&w, L->only);
        json_key(&w, "only_drop");
        if (isnan(L->only))
            json_null(&w);
        else
            json_double(&w, r->fp32 - L->only);
        json_key(&w, "all_but");
        json_double(&w, L->all_but);
        json_key(&w, "recovery");
        json_double(&w, L->all_but - r->full);
        json_end_object(&w);
    }
    json_end_array(&w);
    json_key(&w, "by_only");
    json_begin_array(&w);
    for (int k = 0; k < r->n_layers; k++)
        json_string(&w, r->layers[r->by_only[k]].node);
    json_end_array(&w);
    json_key(&w, "by_recovery");
    json_begin_array(&w);
    for (int k = 0; k < r->n_layers; k++)
        json_string(&w, r->layers[r->by_recovery[k]].node);
    json_end_array(&w);
    json_key(&w, "target");
    if (r->has_target) {
        json_begin_object(&w);
        json_key(&w, "drop");
        json_double(&w, r->target_drop);
        json_key(&w, "met");
        json_bool(&w, r->met);
        json_key(&w, "final");
        json_double(&w, r->final_metric);
        json_key(&w, "skip_tensor_list");
        json_begin_array(&w);
        for (int k = 0; k < r->n_skip; k++)
            json_string(&w, r->layers[r->skip[k]].skip_name);
        json_end_array(&w);
        json_key(&w, "steps");
        json_begin_array(&w);
        for (int k = 0; k < r->n_skip; k++) {
            json_begin_object(&w);
            json_key(&w, "node");
            json_string(&w, r->layers[r->skip[k]].node);
            json_key(&w, "metric");
            json_double(&w, r->skip_metric[k]);
            json_end_object(&w);
        }
        json_end_array(&w);
        json_end_object(&w);
    } else {
        json_null(&w);
    }
    json_key(&w, "computed");
    json_int(&w, r->computed);
    json_key(&w, "from_cache");
    json_int(&w, r->from_cache);
    json_key(&w, "seconds");
    json_double(&w, r->seconds);
    json_end_object(&w);
    json_finish(&w);
    return finish_tmp(f, tmp, path);
}

static void print_quant(const pare_quant_sens_result *r, const pare_quant_opts *qo)
{
    bool top1 = r->metric == PARE_QUANT_SENS_TOP1;
    double sc = 100.0;
    const char *unit = top1 ? "top-1 %" : "cosine x100";
    char b1[64], b2[64];

    printf("metric %s on %lld samples: fp32 %.2f, full W%dA%d (%s) %.2f (drop %.2f points); "
           "%d layers\n", unit, (long long)r->n_samples, sc * r->fp32, qo->weight_bits,
           qo->activation_bits, pare_quant_algo_name(qo->algo), sc * r->full,
           sc * (r->fp32 - r->full), r->n_layers);
    if (!isnan(r->layers[0].only)) {
        printf("\nonly this layer quantized (PaddleSlim AnalysisPTQ), worst first\n");
        printf("%4s  %-36s %-8s %-24s %9s %9s\n", "rank", "layer", "op", "weight", "metric", "drop");
        for (int k = 0; k < r->n_layers; k++) {
            const pare_quant_sens_layer *L = &r->layers[r->by_only[k]];
            printf("%4d  %-36s %-8s %-24s %9.2f %9.2f\n", k + 1, name_tail(L->node, 36, b1, sizeof b1),
                   L->op_type, name_tail(L->skip_name, 24, b2, sizeof b2), sc * L->only,
                   sc * (r->fp32 - L->only));
        }
    }
    printf("\nall but this layer quantized (NNCF revert-one), most recovery first\n");
    printf("%4s  %-36s %-8s %-24s %9s %9s\n", "rank", "layer", "op", "weight", "metric", "recovery");
    for (int k = 0; k < r->n_layers; k++) {
        const pare_quant_sens_layer *L = &r->layers[r->by_recovery[k]];
        printf("%4d  %-36s %-8s %-24s %9.2f %9.2f\n", k + 1, name_tail(L->node, 36, b1, sizeof b1),
               L->op_type, name_tail(L->skip_name, 24, b2, sizeof b2), sc * L->all_but,
               sc * (L->all_but - r->full));
    }
    if (r->has_target) {
        printf("\ntarget: drop <= %.2f points; greedy revert (re-measured after each step)\n",
               sc * r->target_drop);
        printf("%4s  %-36s %9s %9s\n", "step", "reverted layer", "metric", "drop");
        printf("%4d  %-36s %9.2f %9.2f\n", 0, "(full quantization)", sc * r->full,
               sc * (r->fp32 - r->full));
        for (int k = 0; k < r->n_skip; k++)
            printf("%4d  %-36s %9.2f %9.2f\n", k + 1,
                   name_tail(r->layers[r->skip[k]].node, 36, b1, sizeof b1), sc * r->skip_metric[k],
                   sc * (r->fp32 - r->skip_metric[k]));
        printf("%s: %d of %d layers reverted, final drop %.2f points\n",
               r->met ? "met" : "not met", r->n_skip, r->n_layers, sc * (r->fp32 - r->final_metric));
        printf("\n# paste into the job (QuantPost section):\nQuantPost:\n  skip_tensor_list: [");
        for (int k = 0; k < r->n_skip; k++) {
            if (k)
                printf(", ");
            yaml_quoted(stdout, r->layers[r->skip[k]].skip_name);
        }
        printf("]\n");
    }
    printf("\n%lld points measured, %lld from cache, %.2f s\n", (long long)r->computed,
           (long long)r->from_cache, r->seconds);
}

static int run_quant(const cli_args *args)
{
    pare_graph *g = NULL;
    pare_dataset *ds = NULL;
    pare_quant_sens_result *res = NULL;
    pare_quant_opts qo;
    pare_quant_sens_opts so = {0};
    pare_data_opts dopts = {0};
    pare_error err = {0};
    bar_state bs = {0};
    pare_progress prog = {on_quant_progress, &bs};
    long limit = 1000, batch = 64, threads = 0, wbits = 8, abits = 8, bnums = 10;
    double target = -1;
    const char *metric = cli_str(args, cli_opt(&sens_spec, "metric"), "auto");
    int rc = CLI_OK;

    pare_quant_opts_init(&qo);
    if (!cli_has(args, cli_opt(&sens_spec, "data")))
        return cli_usage_error(&sens_spec, "missing --data SPEC");
    if (!cli_get_int(&sens_spec, args, cli_opt(&sens_spec, "limit"), 1, LONG_MAX, &limit) ||
        !cli_get_int(&sens_spec, args, cli_opt(&sens_spec, "batch"), 1, 1 << 16, &batch) ||
        !cli_get_int(&sens_spec, args, cli_opt(&sens_spec, "threads"), 1, 1024, &threads) ||
        !cli_get_int(&sens_spec, args, cli_opt(&sens_spec, "bits"), 2, 8, &wbits) ||
        !cli_get_int(&sens_spec, args, cli_opt(&sens_spec, "act-bits"), 2, 8, &abits) ||
        !cli_get_int(&sens_spec, args, cli_opt(&sens_spec, "batch-nums"), 0, 1 << 20, &bnums) ||
        (cli_has(args, cli_opt(&sens_spec, "target-drop")) &&
         !cli_get_double(&sens_spec, args, cli_opt(&sens_spec, "target-drop"), 0, &target)))
        return CLI_USAGE;
    if (strcmp(metric, "auto") && strcmp(metric, "top1") && strcmp(metric, "cosine"))
        return cli_usage_error(&sens_spec, "--metric is top1 or cosine, not '%s'", metric);
    if ((cli_has(args, cli_opt(&sens_spec, "algo")) &&
         pare_quant_algo_parse(cli_str(args, cli_opt(&sens_spec, "algo"), ""), &qo.algo, &err)) ||
        (cli_has(args, cli_opt(&sens_spec, "preset")) &&
         pare_quant_preset_parse(cli_str(args, cli_opt(&sens_spec, "preset"), ""), &qo.preset,
                                 &err)))
        return cli_usage_error(&sens_spec, "%s%s%s%s", err.msg, err.hint[0] ? " (" : "", err.hint,
                               err.hint[0] ? ")" : "");
    qo.reduce_range = qo.preset == PARE_QUANT_PRESET_U8S8;
    qo.weight_bits = (int)wbits;
    qo.activation_bits = (int)abits;
    qo.batch_nums = (int)bnums;
    qo.is_full_quantize = cli_has(args, cli_opt(&sens_spec, "full"));
    qo.n_threads = (int)threads;
    rc = cli_load_model(args->pos[0], &g);
    if (rc != CLI_OK)
        return rc;
    dopts.limit = limit;
    dopts.batch_size = (int)batch;
    dopts.search_dir = PARE_FASHION_MNIST[0] ? PARE_FASHION_MNIST : NULL;
    if (pare_dataset_open(cli_str(args, cli_opt(&sens_spec, "data"), NULL), &dopts, &ds, &err)) {
        rc = cli_report(&err);
        goto out;
    }
    so.quant = &qo;
    so.metric = metric[0] == 't' ? PARE_QUANT_SENS_TOP1 : metric[0] == 'c' ? PARE_QUANT_SENS_COSINE
                                                                           : PARE_QUANT_SENS_AUTO;
    so.batch = (int)batch;
    so.search = target >= 0;
    so.target_drop = target >= 0 ? target / 100.0 : 0;
    so.cache_path = cli_str(args, cli_opt(&sens_spec, "cache"), NULL);
    so.progress = &prog;
    cli_sigint_install();
    if (pare_quant_sens_run(g, ds, &so, &res, &err) != PARE_OK) {
        if (bs.started)
            progress_finish(&bs.bar);
        cli_sigint_restore();
        rc = cli_report(&err);
        if (err.code == PARE_ECANCELED && so.cache_path)
            fprintf(stderr, "pare: measured points are in %s; run again to resume\n", so.cache_path);
        goto out;
    }
    if (bs.started)
        progress_finish(&bs.bar);
    cli_sigint_restore();
    print_quant(res, &qo);
    if (cli_has(args, cli_opt(&sens_spec, "output")))
        rc = save_quant_csv(res, cli_str(args, cli_opt(&sens_spec, "output"), NULL));
    if (rc == CLI_OK && cli_has(args, cli_opt(&sens_spec, "json")))
        rc = save_quant_json(res, args->pos[0], pare_dataset_spec(ds), &qo,
                             cli_str(args, cli_opt(&sens_spec, "json"), NULL));
out:
    pare_quant_sens_result_free(res);
    pare_dataset_free(ds);
    pare_graph_free(g);
    return rc;
}

int cmd_sens(int argc, char **argv)
{
    cli_args args;
    pare_graph *g = NULL;
    pare_prune_groups *gs = NULL;
    pare_dataset *ds = NULL, *recover_ds = NULL;
    pare_sens_result *res = NULL, *naive = NULL;
    pare_data_opts dopts = {0};
    pare_sens_opts so = {0};
    pare_error err = {0};
    bar_state bs = {0};
    pare_progress prog = {on_progress, &bs};
    float fr[PARE_SENS_MAX_RATIOS];
    double ratios[PARE_SENS_MAX_RATIOS], cap = 0, target = 0;
    long limit = 1000, batch = 64, threads = 0, proxy = 0, round_to = 0, recover_steps = 0;
    double recover_lr = 0;
    pare_prune_opts po = {0};
    int nr = 0;
    const char *metric;
    int rc = cli_parse(&sens_spec, argc, argv, &args);

    if (rc != CLI_OK)
        goto out;
    if (cli_has(&args, cli_opt(&sens_spec, "quant")) && cli_has(&args, cli_opt(&sens_spec, "prune"))) {
        rc = cli_usage_error(&sens_spec, "--prune and --quant are separate runs: give one");
        goto out;
    }
    if (cli_has(&args, cli_opt(&sens_spec, "quant"))) {
        rc = run_quant(&args);
        goto out;
    }
    if (!cli_has(&args, cli_opt(&sens_spec, "prune"))) {
        rc = cli_usage_error(&sens_spec, "say what to analyse: --prune or --quant");
        goto out;
    }
    if (!cli_has(&args, cli_opt(&sens_spec, "data"))) {
        rc = cli_usage_error(&sens_spec, "missing --data SPEC");
        goto out;
    }
    if (!cli_get_int(&sens_spec, &args, cli_opt(&sens_spec, "limit"), 1, LONG_MAX, &limit) ||
        !cli_get_int(&sens_spec, &args, cli_opt(&sens_spec, "batch"), 1, 1 << 16, &batch) ||
        !cli_get_int(&sens_spec, &args, cli_opt(&sens_spec, "threads"), 1, 1024, &threads) ||
        !cli_get_int(&sens_spec, &args, cli_opt(&sens_spec, "proxy"), 0, 1 << 20, &proxy) ||
        !cli_get_int(&sens_spec, &args, cli_opt(&sens_spec, "round-to"), 1, 4096, &round_to) ||
        !cli_get_int(&sens_spec, &args, cli_opt(&sens_spec, "recover-steps"), 1, 1 << 24,
                     &recover_steps) ||
        !cli_get_double(&sens_spec, &args, cli_opt(&sens_spec, "recover-lr"), 0, &recover_lr) ||
        !cli_get_double(&sens_spec, &args, cli_opt(&sens_spec, "drop-cap"), 0, &cap) ||
        !cli_get_double(&sens_spec, &args, cli_opt(&sens_spec, "target-flops"), 0, &target) ||
        !cli_get_floats(&sens_spec, &args, cli_opt(&sens_spec, "ratios"), fr, PARE_SENS_MAX_RATIOS,
                        &nr)) {
        rc = CLI_USAGE;
        goto out;
    }
    if (cli_has(&args, cli_opt(&sens_spec, "target-flops")) && !(target > 0 && target < 1)) {
        rc = cli_usage_error(&sens_spec, "--target-flops wants a fraction in (0, 1), not %g", target);
        goto out;
    }
    for (int i = 0; i < nr; i++)
        ratios[i] = fr[i];
    if (!nr)
        for (nr = 0; nr < 9; nr++)
            ratios[nr] = 0.1 * (nr + 1);
    metric = cli_str(&args, cli_opt(&sens_spec, "metric"), "auto");
    if (strcmp(metric, "auto") && strcmp(metric, "top1") && strcmp(metric, "cosine")) {
        rc = cli_usage_error(&sens_spec, "--metric is top1 or cosine, not '%s'", metric);
        goto out;
    }
    rc = cli_load_model(args.pos[0], &g);
    if (rc != CLI_OK)
        goto out;
    dopts.limit = limit;
    dopts.batch_size = (int)batch;
    dopts.search_dir = PARE_FASHION_MNIST[0] ? PARE_FASHION_MNIST : NULL;
    if (pare_dataset_open(cli_str(&args, cli_opt(&sens_spec, "data"), NULL), &dopts, &ds, &err) ||
        pare_prune_groups_find(g, &gs, &err)) {
        rc = cli_report(&err);
        goto out;
    }
    if (recover_steps > 0) {
        pare_data_opts ropts = dopts;
        ropts.limit = 0;
        ropts.shuffle = true;
        ropts.seed = 1;
        ropts.drop_last = true;
        if (pare_dataset_open(cli_str(&args, cli_opt(&sens_spec, "recover-data"),
                                      cli_str(&args, cli_opt(&sens_spec, "data"), NULL)),
                              &ropts, &recover_ds, &err)) {
            rc = cli_report(&err);
            goto out;
        }
        so.recover_steps = (int)recover_steps;
        so.recover_data = recover_ds;
        so.recover_lr = recover_lr;
    } else if (cli_has(&args, cli_opt(&sens_spec, "recover-data")) ||
               cli_has(&args, cli_opt(&sens_spec, "recover-lr"))) {
        rc = cli_usage_error(&sens_spec, "--recover-data and --recover-lr go with --recover-steps N");
        goto out;
    }
    so.ratios = ratios;
    so.n_ratios = nr;
    so.criterion = cli_str(&args, cli_opt(&sens_spec, "criterion"), "l1_norm");
    so.metric = metric[0] == 't' ? PARE_SENS_TOP1 : metric[0] == 'c' ? PARE_SENS_COSINE
                                                                     : PARE_SENS_AUTO;
    so.round_to = (int)round_to;
    so.batch = (int)batch;
    so.n_threads = (int)threads;
    so.drop_cap = cap;
    so.proxy_batches = (int)proxy;
    so.cache_path = cli_str(&args, cli_opt(&sens_spec, "cache"), NULL);
    so.progress = &prog;
    cli_sigint_install();
    if (pare_sens_run(g, gs, ds, &so, &res, &err) != PARE_OK) {
        if (bs.started)
            progress_finish(&bs.bar);
        cli_sigint_restore();
        rc = cli_report(&err);
        goto out;
    }
    if (bs.started)
        progress_finish(&bs.bar);
    if (cli_has(&args, cli_opt(&sens_spec, "naive"))) {
        pare_sens_opts no = so;
        no.naive = true;
        no.cache_path = NULL;
        no.proxy_batches = 0;
        bs.started = false;
        if (pare_sens_run(g, gs, ds, &no, &naive, &err) != PARE_OK) {
            if (bs.started)
                progress_finish(&bs.bar);
            cli_sigint_restore();
            rc = cli_report(&err);
            goto out;
        }
        if (bs.started)
            progress_finish(&bs.bar);
    }
    cli_sigint_restore();
    print_table(res, gs, ratios, nr);
    printf("\n%lld points measured, %lld from cache, %.2f s (model runs %.2f s)\n",
           (long long)res->computed, (long long)res->from_cache, res->seconds, res->run_seconds);
    if (naive) {
        double maxdiff = 0;
        for (int i = 0; i < naive->n_points; i++)
            for (int j = 0; j < res->n_points; j++)
                if (naive->points[i].group == res->points[j].group &&
                    fabs(naive->points[i].ratio - res->points[j].ratio) < 1e-9)
                    maxdiff = fmax(maxdiff, fabs(naive->points[i].metric - res->points[j].metric));
        printf("naive sweep: %lld points, %.2f s (model runs %.2f s); incremental %.2f s: %.2fx; "
               "max metric difference %.3g\n", (long long)naive->computed, naive->seconds,
               naive->run_seconds, res->seconds, res->seconds > 0 ? naive->seconds / res->seconds : 0,
               maxdiff);
    }
    if (cli_has(&args, cli_opt(&sens_spec, "output")) &&
        pare_sens_save_csv(res, gs, g, cli_str(&args, cli_opt(&sens_spec, "output"), NULL), &err)) {
        rc = cli_report(&err);
        goto out;
    }
    if (cli_has(&args, cli_opt(&sens_spec, "json")) &&
        pare_sens_save_json(res, gs, g, cli_str(&args, cli_opt(&sens_spec, "json"), NULL), &err)) {
        rc = cli_report(&err);
        goto out;
    }
    if (cli_has(&args, cli_opt(&sens_spec, "target-flops")))
    {
        po.criterion = so.criterion;
        po.round_to = so.round_to;
        rc = run_targets(&args, g, gs, res, ds, &so, target, &po);
    }
out:
    pare_sens_result_free(res);
    pare_sens_result_free(naive);
    pare_prune_groups_free(gs);
    pare_dataset_free(ds);
    pare_dataset_free(recover_ds);
    pare_graph_free(g);
    cli_args_fini(&args);
    return rc < 0 ? CLI_OK : rc;
}
