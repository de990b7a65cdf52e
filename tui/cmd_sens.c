/* pare sens MODEL --prune --data SPEC: pruning sensitivity per channel group,
 * and per-group ratios for a FLOPs target. */
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
};
static const char *const sens_positional[] = {"MODEL"};
static const cli_spec sens_spec = {
    .name = "sens",
    .synopsis = "MODEL --prune --data SPEC [--ratios R,...] [--criterion C] [--limit N]\n"
                "                 [--cache FILE] [-o sensitivity.csv] [--json FILE]\n"
                "                 [--target-flops F [--method paddleslim|budget|measured] [--save OUT.onnx]]\n"
                "                 [--naive] [--round-to N]",
    .summary = "Prunes one channel group at a time at each ratio and measures the metric drop\n"
               "(top-1 with labels, else cosine similarity to the unpruned outputs). Only the\n"
               "part of the model after the group is re-run, on stored activations. With\n"
               "--target-flops, prints the ratios PaddleSlim's shared-threshold method and\n"
               "pare's budgeted allocation choose, with predicted and measured loss, next to\n"
               "a uniform ratio. Ctrl-C stops between points; --cache resumes.",
    .options = sens_options,
    .n_options = (int)(sizeof sens_options / sizeof sens_options[0]),
    .positional = sens_positional,
    .n_required = 1,
    .n_positional = 1,
    .epilog = "Example:\n  pare sens resnet8.onnx --prune --data fashion-mnist --limit 1000 "
              "--target-flops 0.5",
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
        if (st == PARE_OK)
            st = measure_metric(p, ds, batch, threads, r->metric == PARE_SENS_TOP1, g,
                                &ch[c].measured, &err);
        if (st == PARE_OK && save && strcmp(ch[c].label, method) == 0)
            st = pare_graph_save(p, save, &err);
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

int cmd_sens(int argc, char **argv)
{
    cli_args args;
    pare_graph *g = NULL;
    pare_prune_groups *gs = NULL;
    pare_dataset *ds = NULL;
    pare_sens_result *res = NULL, *naive = NULL;
    pare_data_opts dopts = {0};
    pare_sens_opts so = {0};
    pare_error err = {0};
    bar_state bs = {0};
    pare_progress prog = {on_progress, &bs};
    float fr[PARE_SENS_MAX_RATIOS];
    double ratios[PARE_SENS_MAX_RATIOS], cap = 0, target = 0;
    long limit = 1000, batch = 64, threads = 0, proxy = 0, round_to = 0;
    pare_prune_opts po = {0};
    int nr = 0;
    const char *metric;
    int rc = cli_parse(&sens_spec, argc, argv, &args);

    if (rc != CLI_OK)
        goto out;
    if (!cli_has(&args, cli_opt(&sens_spec, "prune"))) {
        rc = cli_usage_error(&sens_spec, "say what to analyse: --prune");
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
    pare_graph_free(g);
    cli_args_fini(&args);
    return rc < 0 ? CLI_OK : rc;
}
