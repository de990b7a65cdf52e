/* pare eval MODEL --data SPEC: accuracy, similarity to a reference, throughput. */
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

#ifndef PARE_FASHION_MNIST
#define PARE_FASHION_MNIST ""
#endif

static const cli_option eval_options[] = {
    {"data", "SPEC", "dataset: fashion-mnist[:test|:train], idx:IMAGES[,LABELS], npy:FILE[,LABELS], npz:FILE", false, 0},
    {"limit", "N", "use the first N samples only", false, 0},
    {"batch", "B", "batch size (default 64)", false, 0},
    {"threads", "N", "threads (default: PARE_THREADS or all cores)", false, 0},
    {"compare", "REF.onnx", "also run REF and report the similarity of the outputs", false, 0},
    {"mean", "M[,M...]", "normalisation mean, one or one per channel (default from the spec)", false, 0},
    {"std", "S[,S...]", "normalisation std (default from the spec)", false, 0},
    {"scale", "K", "pixel scale applied before mean/std (default 1/255 for 8-bit data)", false, 0},
    {"json", NULL, "print the result as one JSON object", false, 0},
};
static const char *const eval_positional[] = {"MODEL"};
static const cli_spec eval_spec = {
    .name = "eval",
    .synopsis = "MODEL --data SPEC [--limit N] [--batch B] [--threads N] [--compare REF.onnx]\n"
                "                 [--mean M --std S --scale K] [--json]",
    .summary = "Runs the dataset through the model in batches and prints top-1/top-5 accuracy\n"
               "when the data has labels and, with --compare, how close the outputs are to\n"
               "the reference model's (cosine, SNR, max abs error, argmax agreement), plus\n"
               "throughput and elapsed time. Samples are x = (v * scale - mean) / std.\n"
               "Ctrl-C stops between batches and prints the partial result (exit code 1).",
    .options = eval_options,
    .n_options = (int)(sizeof eval_options / sizeof eval_options[0]),
    .positional = eval_positional,
    .n_required = 1,
    .n_positional = 1,
    .epilog = "Fashion-MNIST is looked up in $PARE_FASHION_MNIST, then in " PARE_FASHION_MNIST ".",
};

/* One model, planned for the batch sizes it meets (the full batch and the
 * remainder of the last batch). */
typedef struct runner {
    const char *path;
    const pare_graph *g;
    int threads;
    int input;               /* value index of the one runtime input */
    int fixed_batch;         /* > 0 when the model's batch dim is fixed */
    pare_exec *exec[2];
    int exec_batch[2];
    double run_seconds;
} runner;

static pare_status runner_init(runner *r, const char *path, const pare_graph *g, int threads,
                               pare_error *err)
{
    int n_runtime = 0;

    memset(r, 0, sizeof *r);
    r->path = path;
    r->g = g;
    r->threads = threads;
    r->input = -1;
    for (int i = 0; i < g->n_inputs; i++) {
        if (g->values[g->inputs[i]].init)
            continue;
        if (r->input < 0)
            r->input = g->inputs[i];
        n_runtime++;
    }
    if (n_runtime != 1)
        return pare_fail(err, PARE_EUNSUPPORTED, path,
                         "eval feeds one input; the model has %d", n_runtime);
    if (g->values[r->input].dtype != PARE_F32)
        return pare_fail(err, PARE_EUNSUPPORTED, path, "input '%s' is %s; eval feeds float32",
                         g->values[r->input].name, pare_dtype_name(g->values[r->input].dtype));
    if (g->values[r->input].ndim < 1)
        return pare_fail(err, PARE_EINPUT, path, "input '%s' has no batch dim",
                         g->values[r->input].name);
    if (g->values[r->input].dims[0] > 0)
        r->fixed_batch = (int)g->values[r->input].dims[0];
    if (g->n_outputs < 1)
        return pare_fail(err, PARE_EINPUT, path, "the model has no output");
    return PARE_OK;
}

static void runner_fini(runner *r)
{
    pare_exec_free(r->exec[0]);
    pare_exec_free(r->exec[1]);
}

/* Input shape for batch nb: symbolic dims from the batch and the sample. */
static pare_status input_shape(const runner *r, int nb, const pare_dataset *ds, pare_tensor *shape,
                               pare_error *err)
{
    int64_t sdims[PARE_MAX_DIMS];
    int sndim = pare_dataset_sample_shape(ds, sdims);
    pare_status rc = pare_exec_batch_shape(r->g, r->input, r->fixed_batch > 0 ? r->fixed_batch : nb,
                                           sndim, sdims, shape, err);

    if (rc != PARE_OK)
        pare_error_prefix(err, "%s: ", pare_dataset_spec(ds));
    return rc;
}

/* The plan for batch nb, built on first use. */
static pare_status runner_exec(runner *r, int nb, const pare_dataset *ds, pare_exec **out,
                               pare_error *err)
{
    pare_exec_opts opts = {0};
    pare_tensor shape;
    int slot;
    pare_status rc;

    if (r->fixed_batch > 0)
        nb = r->fixed_batch;
    for (slot = 0; slot < 2; slot++) {
        if (r->exec[slot] && r->exec_batch[slot] == nb) {
            *out = r->exec[slot];
            return PARE_OK;
        }
        if (!r->exec[slot])
            break;
    }
    if (slot == 2) { /* both used: replace the remainder plan */
        pare_exec_free(r->exec[1]);
        r->exec[1] = NULL;
        slot = 1;
    }
    rc = input_shape(r, nb, ds, &shape, err);
    if (rc != PARE_OK)
        return rc;
    opts.batch = nb;
    opts.n_threads = r->threads;
    opts.input_shapes = &shape;
    rc = pare_exec_new(r->g, &opts, &r->exec[slot], err);
    if (rc != PARE_OK)
        return rc;
    r->exec_batch[slot] = nb;
    *out = r->exec[slot];
    return PARE_OK;
}

/* Fills the input with samples [pos, pos+nb) and runs; the first output in *y. */
static pare_status runner_run(runner *r, const pare_dataset *ds, int64_t pos, int nb,
                              int64_t *labels, const pare_tensor **y, pare_error *err)
{
    pare_exec *x = NULL;
    pare_status rc = runner_exec(r, nb, ds, &x, err);
    double t0;

    if (rc == PARE_OK)
        rc = pare_dataset_fill(ds, pos, nb, pare_exec_input(x, 0), labels, err);
    if (rc != PARE_OK)
        return rc;
    t0 = cli_now();
    rc = pare_exec_run(x, err);
    r->run_seconds += cli_now() - t0;
    *y = pare_exec_output(x, 0);
    return rc;
}

typedef struct eval_result {
    const char *model, *ref, *spec;
    int64_t done, total;
    int batch, threads;
    bool interrupted;
    bool has_labels;
    bool has_top5;
    pare_accuracy acc;
    bool has_sim;
    pare_similarity_result sim;
    double elapsed, model_seconds;
} eval_result;

static void print_text(const eval_result *r)
{
    char a[64], b[64], c[64];

    if (r->interrupted)
        printf("%-12s  after %s of %s samples\n", "interrupted", cli_fmt_count(r->done, a, sizeof a),
               cli_fmt_count(r->total, b, sizeof b));
    printf("%-12s  %s\n", "model", r->model);
    printf("%-12s  %s, %s samples, batch %d, %d thread%s\n", "data", r->spec,
           cli_fmt_count(r->done, a, sizeof a), r->batch, r->threads, r->threads == 1 ? "" : "s");
    if (r->has_labels) {
        printf("%-12s  %.2f %%  (%s / %s)\n", "top-1", 100.0 * pare_accuracy_top1(&r->acc),
               cli_fmt_count(r->acc.top1, a, sizeof a), cli_fmt_count(r->acc.n, b, sizeof b));
        if (r->has_top5)
            printf("%-12s  %.2f %%  (%s / %s)\n", "top-5", 100.0 * pare_accuracy_topk(&r->acc),
                   cli_fmt_count(r->acc.topk, a, sizeof a), cli_fmt_count(r->acc.n, b, sizeof b));
    } else if (!r->has_sim) {
        printf("%-12s  none (the data has no labels; --compare REF.onnx measures similarity)\n",
               "accuracy");
    }
    if (r->has_sim) {
        printf("%-12s  %s\n", "reference", r->ref);
        printf("%-12s  %.6f mean per sample, %.6f global\n", "cosine", r->sim.cosine_mean,
               r->sim.cosine_global);
        printf("%-12s  %s\n", "SNR", pare_snr_format(r->sim.snr_db, c, sizeof c));
        printf("%-12s  %.3g max, %.3g mean\n", "abs error", r->sim.max_abs_err, r->sim.mean_abs_err);
        printf("%-12s  %.2f %% of samples\n", "argmax same", 100.0 * r->sim.argmax_agree);
    }
    printf("%-12s  %s images/s (model only), %.2f s elapsed\n", "throughput",
           cli_fmt_count((int64_t)(r->model_seconds > 0 ? (double)r->done / r->model_seconds : 0),
                         a, sizeof a),
           r->elapsed);
}

static void print_json(const eval_result *r)
{
    json_writer w;

    json_init(&w, stdout, true);
    json_begin_object(&w);
    json_key(&w, "model");
    json_string(&w, r->model);
    json_key(&w, "data");
    json_string(&w, r->spec);
    json_key(&w, "samples");
    json_int(&w, r->done);
    json_key(&w, "total");
    json_int(&w, r->total);
    json_key(&w, "batch");
    json_int(&w, r->batch);
    json_key(&w, "threads");
    json_int(&w, r->threads);
    json_key(&w, "interrupted");
    json_bool(&w, r->interrupted);
    json_key(&w, "accuracy");
    if (r->has_labels) {
        json_begin_object(&w);
        json_key(&w, "n");
        json_int(&w, r->acc.n);
        json_key(&w, "top1");
        json_double(&w, pare_accuracy_top1(&r->acc));
        json_key(&w, "top1_correct");
        json_int(&w, r->acc.top1);
        json_key(&w, "top5");
        if (r->has_top5)
            json_double(&w, pare_accuracy_topk(&r->acc));
        else
            json_null(&w);
        json_key(&w, "top5_correct");
        json_int(&w, r->acc.topk);
        json_end_object(&w);
    } else {
        json_null(&w);
    }
    json_key(&w, "similarity");
    if (r->has_sim) {
        json_begin_object(&w);
        json_key(&w, "reference");
        json_string(&w, r->ref);
        json_key(&w, "cosine_mean");
        json_double(&w, r->sim.cosine_mean);
        json_key(&w, "cosine_global");
        json_double(&w, r->sim.cosine_global);
        json_key(&w, "snr_db");
        if (isinf(r->sim.snr_db) && r->sim.snr_db > 0)
            json_string(&w, "inf");
        else
            json_double(&w, r->sim.snr_db);
        json_key(&w, "max_abs_err");
        json_double(&w, r->sim.max_abs_err);
        json_key(&w, "mean_abs_err");
        json_double(&w, r->sim.mean_abs_err);
        json_key(&w, "argmax_agree");
        json_double(&w, r->sim.argmax_agree);
        json_end_object(&w);
    } else {
        json_null(&w);
    }
    json_key(&w, "elapsed_s");
    json_double(&w, r->elapsed);
    json_key(&w, "model_s");
    json_double(&w, r->model_seconds);
    json_key(&w, "images_per_s");
    json_double(&w, r->model_seconds > 0 ? (double)r->done / r->model_seconds : 0.0);
    json_end_object(&w);
    json_finish(&w);
}

static bool parse_data_opts(const cli_args *args, pare_data_opts *d, long *batch, long *limit,
                            long *threads)
{
    memset(d, 0, sizeof *d);
    if (!cli_get_int(&eval_spec, args, cli_opt(&eval_spec, "batch"), 1, 1 << 20, batch) ||
        !cli_get_int(&eval_spec, args, cli_opt(&eval_spec, "limit"), 1, LONG_MAX, limit) ||
        !cli_get_int(&eval_spec, args, cli_opt(&eval_spec, "threads"), 1, 1024, threads) ||
        !cli_get_normalisation(&eval_spec, args, d))
        return false;
    d->limit = *limit;
    d->batch_size = (int)*batch;
    d->search_dir = PARE_FASHION_MNIST[0] ? PARE_FASHION_MNIST : NULL;
    return true;
}

static pare_status eval_loop(runner *model, runner *ref, const pare_dataset *ds, int batch,
                             eval_result *res, pare_error *err)
{
    int64_t *labels = pare_alloc((size_t)batch * sizeof *labels);
    pare_similarity sim;
    progress bar;
    pare_status rc = PARE_OK;
    double t0 = cli_now();

    if (!labels)
        return pare_fail(err, PARE_ENOMEM, NULL, "out of memory");
    pare_accuracy_init(&res->acc, 5);
    pare_similarity_init(&sim);
    progress_init(&bar, "eval", res->total);
    cli_sigint_install();
    for (int64_t pos = 0; pos < res->total && rc == PARE_OK; ) {
        int nb = (int)(res->total - pos < batch ? res->total - pos : batch);
        const pare_tensor *y = NULL, *yref = NULL;

        if (cli_interrupted()) {
            res->interrupted = true;
            break;
        }
        rc = runner_run(model, ds, pos, nb, labels, &y, err);
        if (rc == PARE_OK && res->has_labels)
            rc = pare_accuracy_add(&res->acc, y, labels, nb, err);
        if (rc == PARE_OK && ref) {
            rc = runner_run(ref, ds, pos, nb, NULL, &yref, err);
            if (rc == PARE_OK)
                rc = pare_similarity_add(&sim, y, yref, nb, err);
        }
        if (rc != PARE_OK)
            break;
        pos += nb;
        res->done = pos;
        progress_update(&bar, pos);
    }
    cli_sigint_restore();
    progress_finish(&bar);
    res->elapsed = cli_now() - t0;
    res->model_seconds = model->run_seconds;
    if (ref) {
        res->has_sim = true;
        pare_similarity_get(&sim, &res->sim);
    }
    pare_free(labels);
    return rc;
}

int cmd_eval(int argc, char **argv)
{
    cli_args args;
    pare_graph *g = NULL, *gref = NULL;
    pare_dataset *ds = NULL;
    pare_data_opts dopts;
    runner model = {0}, ref = {0};
    eval_result res;
    pare_error err = {0};
    long batch = 64, limit = 0, threads = 0;
    bool have_model = false, have_ref = false;
    int rc = cli_parse(&eval_spec, argc, argv, &args);

    memset(&res, 0, sizeof res);
    if (rc != CLI_OK)
        goto out;
    if (!cli_has(&args, cli_opt(&eval_spec, "data"))) {
        rc = cli_usage_error(&eval_spec, "missing --data SPEC");
        goto out;
    }
    if (!parse_data_opts(&args, &dopts, &batch, &limit, &threads)) {
        rc = CLI_USAGE;
        goto out;
    }
    rc = cli_load_model(args.pos[0], &g);
    if (rc == CLI_OK && cli_has(&args, cli_opt(&eval_spec, "compare")))
        rc = cli_load_model(cli_str(&args, cli_opt(&eval_spec, "compare"), NULL), &gref);
    if (rc != CLI_OK)
        goto out;
    if (pare_dataset_open(cli_str(&args, cli_opt(&eval_spec, "data"), NULL), &dopts, &ds, &err) ||
        runner_init(&model, args.pos[0], g, (int)threads, &err)) {
        rc = cli_report(&err);
        goto out;
    }
    have_model = true;
    if (gref) {
        if (runner_init(&ref, cli_str(&args, cli_opt(&eval_spec, "compare"), NULL), gref,
                        (int)threads, &err)) {
            rc = cli_report(&err);
            goto out;
        }
        have_ref = true;
    }
    if (model.fixed_batch > 0 && model.fixed_batch != batch) {
        if (cli_has(&args, cli_opt(&eval_spec, "batch")))
            fprintf(stderr, "pare: note: %s has a fixed batch of %d; using it\n", args.pos[0],
                    model.fixed_batch);
        batch = model.fixed_batch;
    }
    res.model = args.pos[0];
    res.ref = gref ? cli_str(&args, cli_opt(&eval_spec, "compare"), NULL) : NULL;
    res.spec = pare_dataset_spec(ds);
    res.total = pare_dataset_count(ds);
    res.batch = (int)batch;
    res.has_labels = pare_dataset_has_labels(ds);
    {
        /* Plan the full batch first: a bad model fails before any work. */
        pare_exec *x = NULL;
        int first = (int)(res.total < batch ? res.total : batch);
        if (first < 1) {
            pare_fail(&err, PARE_EINPUT, res.spec, "the dataset is empty");
            rc = cli_report(&err);
            goto out;
        }
        if (runner_exec(&model, first, ds, &x, &err) != PARE_OK ||
            (have_ref && runner_exec(&ref, first, ds, &x, &err) != PARE_OK)) {
            rc = cli_report(&err);
            goto out;
        }
        res.threads = pare_exec_threads(model.exec[0]);
        res.has_top5 = pare_tensor_numel(pare_exec_output(model.exec[0], 0)) / first > 5;
    }
    if (eval_loop(&model, have_ref ? &ref : NULL, ds, (int)batch, &res, &err) != PARE_OK) {
        rc = cli_report(&err);
        goto out;
    }
    if (cli_has(&args, cli_opt(&eval_spec, "json")))
        print_json(&res);
    else
        print_text(&res);
    fflush(stdout);
    rc = res.interrupted ? CLI_FAILED : CLI_OK;
out:
    if (have_model)
        runner_fini(&model);
    if (have_ref)
        runner_fini(&ref);
    pare_dataset_free(ds);
    pare_graph_free(g);
    pare_graph_free(gref);
    cli_args_fini(&args);
    return rc < 0 ? CLI_OK : rc;
}
