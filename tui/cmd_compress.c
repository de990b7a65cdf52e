/* pare compress -c JOB.yaml: run a YAML compression job headless (PaddleSlim
 * ACT's auto-compression): prune, fine-tune, distil, quantize, evaluate. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "progress.h"
#include "pare/alloc.h"
#include "pare/compress.h"
#include "pare/job.h"

#ifndef PARE_FASHION_MNIST
#define PARE_FASHION_MNIST ""
#endif

static const cli_option compress_options[] = {
    {"config", "JOB.yaml", "the job file (ACT keys: Global, QuantPost, ChannelPrune, ...)", false, 'c'},
    {"force", NULL, "replace an existing save_dir holding an earlier job's output", false, 0},
    {"save-dir", "DIR", "write here instead of Global.save_dir", false, 0},
    {"threads", "N", "threads (default: Global.threads, else PARE_THREADS or all cores)", false, 0},
    {"dry-run", NULL, "check the job, model and data and list the stages; run nothing", false, 0},
    {"json", NULL, "print the report as JSON (the same as report.json)", false, 0},
};
static const cli_spec compress_spec = {
    .name = "compress",
    .synopsis = "-c JOB.yaml [--force] [--save-dir DIR] [--threads N] [--dry-run] [--json]",
    .summary = "Runs the compression stages a YAML job asks for, in PaddleSlim ACT's order:\n"
               "channel pruning (ChannelPrune, Layers, TransformerPrune) and weight masks\n"
               "(UnstructurePrune, ASPPrune) -> fine-tuning with TrainConfig, distilled from the original model\n"
               "with Distillation, quantization-aware with QuantAware -> post-training\n"
               "quantization (QuantPost, HyperParameterOptimization) -> evaluation before and\n"
               "after. save_dir receives model.onnx, config.resolved.yaml, calibration_table.txt\n"
               "(quantized jobs), report.json and report.md, all at once at the end.\n"
               "Relative model, teacher and data file paths are read from the job file's\n"
               "directory; save_dir is relative to the current directory.",
    .options = compress_options,
    .n_options = (int)(sizeof compress_options / sizeof compress_options[0]),
    .positional = NULL,
    .n_required = 0,
    .n_positional = 0,
    .epilog = "Progress: a bar per stage on a terminal; otherwise one line per stage change on\n"
              "stderr, and a training line every TrainConfig.logging_iter steps.\n"
              "Exit codes: 0 done, 1 the job failed or was interrupted (Ctrl-C; nothing is\n"
              "written), 2 a bad job file (every problem printed as file:line:column), bad\n"
              "usage or input. Examples in configs/; the guide is docs/compress.md.\n"
              "Fashion-MNIST is looked up in $PARE_FASHION_MNIST, then in " PARE_FASHION_MNIST ".",
};

#define OPT(name) cli_opt(&compress_spec, name)

typedef struct bar_state {
    progress bar;
    bool plain;        /* not a terminal: one line per stage change */
    char stage[32];
    double last_line;
    long log_every;            /* plain mode: a "train" line every N steps */
    /* stages come back (the trainer's evaluations interrupt "train"): the
       bar keeps each stage's start so its rate and ETA stay right */
    char seen[8][32];
    double seen_t0[8];
    int n_seen;
} bar_state;

static void bar_restart(bar_state *b, const char *stage, int64_t total)
{
    int i;

    progress_finish(&b->bar);
    snprintf(b->stage, sizeof b->stage, "%s", stage);
    progress_init(&b->bar, b->stage, total);
    for (i = 0; i < b->n_seen; i++)
        if (!strcmp(b->seen[i], stage)) {
            b->bar.t0 = b->seen_t0[i];
            return;
        }
    if (b->n_seen < 8) {
        snprintf(b->seen[b->n_seen], sizeof b->seen[0], "%s", stage);
        b->seen_t0[b->n_seen++] = b->bar.t0;
    }
}

static bool on_progress(void *user, const pare_progress_event *ev)
{
    bar_state *b = user;

    if (!b->plain) {
        if (!b->bar.label || strcmp(b->stage, ev->stage))
            bar_restart(b, ev->stage, ev->total);
        if (!isnan(ev->loss)) {
            char note[64];
            snprintf(note, sizeof note, "loss %.4g", ev->loss);
            progress_note(&b->bar, note);
        }
        b->bar.total = ev->total;
        progress_update(&b->bar, ev->done);
    } else {
        double now = cli_now();
        bool changed = strcmp(b->stage, ev->stage) != 0;
        bool last = ev->total > 0 && ev->done >= ev->total;
        bool show;
        if (!strcmp(ev->stage, "train")) /* TrainConfig.logging_iter, as ACT logs */
            show = changed || last || (b->log_every > 0 && ev->done % b->log_every == 0);
        else
            show = changed || (last && now - b->last_line > 0.5) || now - b->last_line > 10.0;
        if (show) {
            fprintf(stderr, "pare: %s %lld", ev->stage, (long long)ev->done);
            if (ev->total > 0)
                fprintf(stderr, "/%lld", (long long)ev->total);
            if (ev->unit)
                fprintf(stderr, " %s", ev->unit);
            if (!isnan(ev->loss))
                fprintf(stderr, ", loss %.4g", ev->loss);
            if (!isnan(ev->metric))
                fprintf(stderr, ", metric %.4f", ev->metric);
            if (ev->detail)
                fprintf(stderr, " (%s)", ev->detail);
            fputc('\n', stderr);
            snprintf(b->stage, sizeof b->stage, "%s", ev->stage);
            b->last_line = now;
        }
    }
    return !cli_interrupted();
}

/* Every problem of a job file, one per line: "pare: job.yaml:5:3: msg (hint)". */
static int print_diags(const pare_job_diags *diags, const pare_error *err)
{
    if (diags->n == 0)
        return cli_report(err);
    for (int i = 0; i < diags->n; i++)
        cli_report(&diags->v[i]);
    if (diags->n > 1)
        fprintf(stderr, "pare: %d problems\n", diags->n);
    return CLI_USAGE;
}

static void fmt_metric(const pare_compress_report *r, double v, char *buf, size_t size)
{
    if (isnan(v))
        snprintf(buf, size, "n/a");
    else if (!strcmp(r->metric_name, "snr") && isinf(v))
        snprintf(buf, size, "%sinf dB", v > 0 ? "+" : "-");
    else if (!strcmp(r->metric_name, "snr"))
        snprintf(buf, size, "%.2f dB", v);
    else if (!strcmp(r->metric_name, "cosine"))
        snprintf(buf, size, "%.6f", v);
    else
        snprintf(buf, size, "%.2f %%", 100.0 * v);
}

static void print_text(const pare_compress_report *r)
{
    char a[64], b[64], c[64], d[64];

    for (int i = 0; i < r->n_warnings; i++)
        fprintf(stderr, "pare: warning: %s\n", r->warnings[i]);
    printf("%-12s  %s\n", "model", r->model);
    for (int i = 0; i < r->n_stages; i++)
        printf("%-12s  %s (%.2f s)\n", r->stages[i].name, r->stages[i].detail, r->stages[i].seconds);
    if (r->dry_run) {
        printf("%-12s  nothing run (--dry-run); would write %s\n", "dry run", r->save_dir);
        return;
    }
    if (r->has_metric) {
        fmt_metric(r, r->metric_before, a, sizeof a);
        fmt_metric(r, r->metric_after, b, sizeof b);
        printf("%-12s  %s -> %s on %s (%lld samples)\n", r->metric_name, a, b, r->eval_data,
               (long long)r->eval_samples);
    }
    printf("%-12s  %s -> %s\n", "params", cli_fmt_count(r->params_before, a, sizeof a),
           cli_fmt_count(r->params_after, b, sizeof b));
    printf("%-12s  %s -> %s per sample\n", "FLOPs", cli_fmt_si(r->flops_before, c, sizeof c),
           cli_fmt_si(r->flops_after, d, sizeof d));
    printf("%-12s  %s -> %s\n", "model size", cli_fmt_bytes((double)r->bytes_before, a, sizeof a),
           cli_fmt_bytes((double)r->bytes_after, b, sizeof b));
    if (r->sparsity > 0)
        printf("%-12s  %.2f %% of the pruned weights are zero\n", "sparsity", 100.0 * r->sparsity);
    if (r->n_trials) {
        fmt_metric(r, r->trials[r->best_trial].metric, a, sizeof a);
        printf("%-12s  %d trials, best #%d (%s)\n", "hpo", r->n_trials, r->best_trial, a);
    }
    printf("%-12s  %s (model.onnx, report.md, report.json, config.resolved.yaml%s%s)\n", "wrote",
           r->save_dir, r->quantized ? ", calibration_table.txt" : "",
           r->has_sensitivity ? ", sensitivity.csv" : "");
    printf("%-12s  %.2f s\n", "time", r->seconds);
}

int cmd_compress(int argc, char **argv)
{
    cli_args args;
    pare_job *job = NULL;
    pare_job_diags diags = {0};
    pare_error err = {0};
    pare_compress_report rep;
    pare_compress_opts o;
    bar_state bs;
    pare_progress prog = {.report = on_progress, .user = &bs};
    char dir[PARE_COMPRESS_PATH_MAX];
    const char *path, *slash;
    long threads = 0;
    bool sigint = false, have_rep = false;
    int rc = cli_parse(&compress_spec, argc, argv, &args);

    memset(&rep, 0, sizeof rep);
    memset(&bs, 0, sizeof bs);
    if (rc != CLI_OK)
        goto out;
    path = cli_str(&args, OPT("config"), NULL);
    if (!path) {
        rc = cli_usage_error(&compress_spec, "missing -c JOB.yaml");
        goto out;
    }
    if (!cli_get_int(&compress_spec, &args, OPT("threads"), 1, 1024, &threads)) {
        rc = CLI_USAGE;
        goto out;
    }
    if (pare_job_load(path, &job, &diags, &err) != PARE_OK ||
        pare_job_check_runnable(job, &diags, &err) != PARE_OK) {
        rc = print_diags(&diags, &err);
        goto out;
    }
    slash = strrchr(path, '/');
    if (slash)
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path) > 0 ? (int)(slash - path) : 1, path);
    else
        snprintf(dir, sizeof dir, ".");
    memset(&o, 0, sizeof o);
    o.base_dir = dir;
    o.save_dir = cli_str(&args, OPT("save-dir"), NULL);
    o.force = cli_has(&args, OPT("force"));
    o.dry_run = cli_has(&args, OPT("dry-run"));
    o.n_threads = (int)threads;
    o.search_dir = PARE_FASHION_MNIST[0] ? PARE_FASHION_MNIST : NULL;
    o.progress = &prog;
    bs.plain = isatty(STDERR_FILENO) != 1;
    bs.log_every = job->train.logging_iter;
    cli_sigint_install();
    sigint = true;
    rc = pare_compress_run(job, &o, &rep, &err) == PARE_OK ? CLI_OK : -2;
    have_rep = true;
    if (!bs.plain)
        progress_finish(&bs.bar);
    if (rc != CLI_OK) {
        if (err.code == PARE_ECANCELED || cli_interrupted()) {
            fprintf(stderr, "pare: interrupted; nothing was written to %s\n",
                    rep.save_dir[0] ? rep.save_dir : "save_dir");
            rc = CLI_FAILED;
        } else {
            rc = cli_report(&err);
        }
        goto out;
    }
    if (cli_has(&args, OPT("json"))) {
        char *text = pare_compress_report_json(&rep);
        if (!text) {
            fprintf(stderr, "pare: out of memory\n");
            rc = CLI_FAILED;
            goto out;
        }
        fputs(text, stdout);
        pare_free(text);
    } else {
        print_text(&rep);
    }
    fflush(stdout);
    rc = CLI_OK;
out:
    if (sigint)
        cli_sigint_restore();
    if (have_rep)
        pare_compress_report_fini(&rep);
    pare_job_free(job);
    pare_job_diags_fini(&diags);
    cli_args_fini(&args);
    return rc < 0 ? CLI_OK : rc;
}
