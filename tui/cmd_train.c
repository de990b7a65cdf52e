/* pare train MODEL --data SPEC -o OUT.onnx: fine-tuning or training from
 * scratch; pare distill STUDENT [--teacher T] --data SPEC -o OUT.onnx:
 * knowledge distillation. Both run core's trainer (pare/train.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "json.h"
#include "progress.h"
#include "pare/alloc.h"
#include "pare/data.h"
#include "pare/graph.h"
#include "pare/train.h"

#ifndef PARE_FASHION_MNIST
#define PARE_FASHION_MNIST ""
#endif

/* Options of both commands; distill adds DISTILL_OPTIONS. */
#define TRAIN_OPTIONS                                                                             \
    {"data", "SPEC", "training data (fashion-mnist:train, idx:..., npy:..., npz:...)", false, 0}, \
    {"output", "OUT.onnx", "the trained model to write (never the input)", false, 'o'},          \
    {"eval-data", "SPEC", "held-out data evaluated during training (default: none)", false, 0},   \
    {"epochs", "N", "passes over the training data (default 1)", false, 0},                      \
    {"iterations", "N", "optimizer steps instead of epochs", false, 0},                          \
    {"batch", "B", "batch size (default 64)", false, 0},                                         \
    {"limit", "N", "train on the first N samples only", false, 0},                               \
    {"mean", "M[,M...]", "normalisation mean (default from the spec)", false, 0},               \
    {"std", "S[,S...]", "normalisation std (default from the spec)", false, 0},                 \
    {"scale", "K", "pixel scale before mean/std (default 1/255 for 8-bit data)", false, 0},    \
    {"lr", "X", "learning rate (default 1e-3; the peak for onecycle)", false, 0},                 \
    {"optimizer", "NAME", "sgd, momentum, adam (default) or adamw", false, 0},                   \
    {"momentum", "M", "SGD momentum (momentum: 0.9)", false, 0},                                 \
    {"nesterov", NULL, "Nesterov momentum (SGD)", false, 0},                                     \
    {"weight-decay", "W", "weight decay (AdamW: decoupled; default 0, AdamW 0.01)", false, 0},   \
    {"clip-norm", "N", "clip the global gradient norm to N", false, 0},                          \
    {"schedule", "S", "constant (default), piecewise, cosine, linear, onecycle", false, 0},      \
    {"boundaries", "S1,S2...", "piecewise: the steps where the rate changes", false, 0},         \
    {"values", "LR0,LR1...", "piecewise: one more rate than boundaries", false, 0},              \
    {"end-lr", "X", "cosine/linear: the final rate (default 0)", false, 0},                      \
    {"warmup", "N", "linear warm-up steps before the schedule", false, 0},                       \
    {"pct-start", "F", "onecycle: fraction of the steps spent rising (default 0.3)", false, 0},   \
    {"warmup-start-lr", "X", "rate at step 0 of the warm-up (default 0)", false, 0},             \
    {"label-smoothing", "E", "cross-entropy label smoothing (default 0)", false, 0},             \
    {"eval-every", "N", "evaluate every N steps (default: every epoch and at the end)", false, 0}, \
    {"eval-limit", "N", "evaluate on the first N samples only", false, 0},                       \
    {"last", NULL, "save the last weights (default: the best evaluated ones)", false, 0},        \
    {"freeze", "PATTERN", "keep weights matching PATTERN fixed (glob, or substring)", true, 0},  \
    {"reinit", NULL, "start from freshly initialised weights", false, 0},                        \
    {"keep-sparsity", NULL, "weights that are zero stay zero (after pruning)", false, 0},        \
    {"seed", "N", "seed for shuffling, initialisation and dropout (default 0)", false, 0},       \
    {"no-shuffle", NULL, "keep the data in file order", false, 0},                               \
    {"input", "NAME", "the model input the data feeds (default: the only one)", false, 0},       \
    {"checkpoint", "DIR", "write checkpoints into DIR (default OUT.ckpt on Ctrl-C)", false, 0},  \
    {"checkpoint-every", "N", "also every N steps", false, 0},                                   \
    {"resume", "DIR", "continue from the checkpoint in DIR", false, 0},                          \
    {"threads", "N", "threads (default: PARE_THREADS or all cores)", false, 0},                  \
    {"json", NULL, "print the result as one JSON object", false, 0}

#define DISTILL_OPTIONS                                                                          \
    {"teacher", "T.onnx", "the teacher (default: the student as given: self-distillation)",     \
     false, 0},                                                                                  \
    {"pair", "T:S[:LOSS[:ALPHA]]",                                                               \
     "teacher value T taught to student value S; LOSS soft_label (default), l2, cosine, "       \
     "fsp (T1,T2:S1,S2:fsp); default: the outputs",                                              \
     true, 0},                                                                                   \
    {"temperature", "T", "soft_label temperature (default 1)", false, 0},                        \
    {"task-weight", "W", "weight of the label loss (default 1 with labels, 0 without)", false, 0}, \
    {"adapter", NULL, "learn 1x1 projections for pairs whose channel counts differ", false, 0}

static const cli_option train_options[] = {TRAIN_OPTIONS};
static const cli_option distill_options[] = {TRAIN_OPTIONS, DISTILL_OPTIONS};
static const char *const train_positional[] = {"MODEL"};

#define EPILOG                                                                                   \
    "Ctrl-C stops after the current step and writes a checkpoint (exit code 1); --resume\n"      \
    "continues it with the same weights an uninterrupted run gives. The output is written to\n"  \
    "a temporary name and renamed. Exit codes: 0 done, 1 failed or interrupted, 2 bad input.\n"  \
    "Fashion-MNIST is looked up in $PARE_FASHION_MNIST, then in " PARE_FASHION_MNIST "."

static const cli_spec train_spec = {
    .name = "train",
    .synopsis = "MODEL --data SPEC -o OUT.onnx [--epochs N | --iterations N] [--lr X]\n"
                "                  [--optimizer sgd|momentum|adam|adamw] [--schedule S] [--batch B]\n"
                "                  [--reinit] [--freeze PATTERN]... [--eval-data SPEC] [--resume DIR]",
    .summary = "Trains the model's weights on labelled data with cross-entropy: fine-tuning, or\n"
               "training from scratch with --reinit. The graph is kept as is; only weights and\n"
               "BatchNormalization running statistics change.",
    .options = train_options,
    .n_options = (int)(sizeof train_options / sizeof train_options[0]),
    .positional = train_positional,
    .n_required = 1,
    .n_positional = 1,
    .epilog = EPILOG,
};

static const cli_spec distill_spec = {
    .name = "distill",
    .synopsis = "STUDENT --data SPEC -o OUT.onnx [--teacher T.onnx] [--pair T:S[:LOSS[:ALPHA]]]...\n"
                "                    [--temperature T] [--task-weight W] [--adapter] [train options]",
    .summary = "Knowledge distillation: the student learns from the teacher's values on the same\n"
               "batch. total = task_weight x cross-entropy (with labels) + sum of alpha x loss per\n"
               "pair. Without labels only the pairs teach (label-free distillation).",
    .options = distill_options,
    .n_options = (int)(sizeof distill_options / sizeof distill_options[0]),
    .positional = train_positional,
    .n_required = 1,
    .n_positional = 1,
    .epilog = EPILOG,
};

typedef struct run_state {
    progress bar;
    int64_t start;
    double last_metric;
    const char *metric_name;
    bool tty;
} run_state;

static bool on_progress(void *user, const pare_progress_event *ev)
{
    run_state *s = user;
    char note[64];

    if (strcmp(ev->stage, "train"))
        return !cli_interrupted();
    if (!s->bar.label) {
        int batch = (int)s->bar.rate_scale;
        progress_init(&s->bar, "train", ev->total - s->start);
        s->bar.rate_scale = batch;
        s->bar.rate_unit = " img/s";
    }
    if (!isnan(ev->metric))
        snprintf(note, sizeof note, "loss %.4f %s %.2f%%", ev->loss, s->metric_name,
                 100.0 * ev->metric);
    else
        snprintf(note, sizeof note, "loss %.4f", ev->loss);
    progress_note(&s->bar, note);
    progress_update(&s->bar, ev->done - s->start);
    /* without a terminal: one plain line per evaluation */
    if (!s->tty && !isnan(ev->metric) && ev->metric != s->last_metric) {
        fprintf(stderr, "step %lld/%lld  loss %.4f  %s %.4f\n", (long long)ev->done,
                (long long)ev->total, ev->loss, s->metric_name, ev->metric);
        fflush(stderr);
    }
    s->last_metric = ev->metric;
    return !cli_interrupted();
}

/* "a:b:c" split on single colons ("onnx::Conv_1" keeps its "::"). */
static int split_colons(char *s, char **parts, int max)
{
    int n = 0;
    parts[n++] = s;
    for (char *p = s; *p; p++) {
        if (p[0] == ':' && p[1] == ':') {
            p++;
            continue;
        }
        if (*p == ':') {
            *p = '\0';
            if (n == max)
                return max + 1;
            parts[n++] = p + 1;
        }
    }
    return n;
}

static bool parse_pair(const cli_spec *spec, char *text, pare_distill_pair *p)
{
    char *parts[4], *comma;
    pare_error err = {0};
    int n = split_colons(text, parts, 4);

    memset(p, 0, sizeof *p);
    p->loss = PARE_LOSS_SOFT_LABEL;
    p->alpha = 1.0;
    if (n < 2 || n > 4 || !parts[0][0] || !parts[1][0]) {
        cli_usage_error(spec, "--pair wants TEACHER_VALUE:STUDENT_VALUE[:LOSS[:ALPHA]]");
        return false;
    }
    if (n >= 3 && pare_loss_kind_parse(parts[2], &p->loss, &err) != PARE_OK) {
        cli_usage_error(spec, "%s%s%s%s", err.msg, err.hint[0] ? " (" : "", err.hint,
                        err.hint[0] ? ")" : "");
        return false;
    }
    if (n == 4) {
        char *end;
        p->alpha = strtod(parts[3], &end);
        if (*end || !(p->alpha >= 0)) {
            cli_usage_error(spec, "--pair: alpha '%s' is not a number >= 0", parts[3]);
            return false;
        }
    }
    p->teacher = parts[0];
    p->student = parts[1];
    if (p->loss == PARE_LOSS_FSP) {
        if (!(comma = strchr(parts[0], ','))) {
            cli_usage_error(spec, "an fsp pair is T1,T2:S1,S2:fsp");
            return false;
        }
        *comma = '\0';
        p->teacher2 = comma + 1;
        if (!(comma = strchr(parts[1], ','))) {
            cli_usage_error(spec, "an fsp pair is T1,T2:S1,S2:fsp");
            return false;
        }
        *comma = '\0';
        p->student2 = comma + 1;
    }
    return true;
}

static bool parse_doubles(const char *text, double *out, int max, int *n)
{
    char *end;
    *n = 0;
    while (*text) {
        if (*n == max)
            return false;
        out[(*n)++] = strtod(text, &end);
        if (end == text || (*end && *end != ','))
            return false;
        text = *end ? end + 1 : end;
    }
    return *n > 0;
}

/* Optimizer and schedule options into o. */
static bool parse_optim(const cli_spec *spec, const cli_args *a, pare_train_opts *o)
{
#define OPT(name) cli_opt(spec, name)
    pare_error err = {0};
    double d, lr = 1e-3;
    long v;

    if (cli_has(a, OPT("optimizer")) &&
        pare_optim_opts_parse(cli_str(a, OPT("optimizer"), NULL), &o->optim, &err) != PARE_OK) {
        cli_usage_error(spec, "%s%s%s%s", err.msg, err.hint[0] ? " (" : "", err.hint,
                        err.hint[0] ? ")" : "");
        return false;
    }
    if (cli_has(a, OPT("lr")) && !cli_get_double(spec, a, OPT("lr"), 0, &lr))
        return false;
    o->optim.lr = lr;
    if (cli_has(a, OPT("momentum"))) {
        if (!cli_get_double(spec, a, OPT("momentum"), 0, &o->optim.momentum))
            return false;
        if (o->optim.kind != PARE_OPTIM_SGD)
            return cli_usage_error(spec, "--momentum is for sgd") && false;
    }
    o->optim.nesterov = cli_has(a, OPT("nesterov"));
    if (cli_has(a, OPT("weight-decay")) &&
        !cli_get_double(spec, a, OPT("weight-decay"), 0, &o->optim.weight_decay))
        return false;
    if (cli_has(a, OPT("clip-norm")) &&
        !cli_get_double(spec, a, OPT("clip-norm"), 0, &o->optim.grad_clip_norm))
        return false;
    {
        pare_schedule_kind kind = PARE_SCHED_CONSTANT;
        if (cli_has(a, OPT("schedule")) &&
            pare_schedule_kind_parse(cli_str(a, OPT("schedule"), NULL), &kind, &err) != PARE_OK) {
            cli_usage_error(spec, "%s%s%s%s", err.msg, err.hint[0] ? " (" : "", err.hint,
                            err.hint[0] ? ")" : "");
            return false;
        }
        pare_schedule_init(&o->schedule, kind, lr);
    }
    if (cli_has(a, OPT("end-lr")) && !cli_get_double(spec, a, OPT("end-lr"), 0, &o->schedule.end_lr))
        return false;
    if (cli_has(a, OPT("warmup"))) {
        if (!cli_get_int(spec, a, OPT("warmup"), 0, 1L << 40, &v))
            return false;
        o->schedule.warmup_steps = v;
    }
    if (cli_has(a, OPT("pct-start")) &&
        !cli_get_double(spec, a, OPT("pct-start"), 0, &o->schedule.pct_start))
        return false;
    if (cli_has(a, OPT("warmup-start-lr")) &&
        !cli_get_double(spec, a, OPT("warmup-start-lr"), 0, &o->schedule.warmup_start_lr))
        return false;
    if (o->schedule.kind == PARE_SCHED_PIECEWISE) {
        double b[PARE_SCHED_MAX_PIECES];
        int nb = 0, nv = 0;
        if (!parse_doubles(cli_str(a, OPT("boundaries"), ""), b, PARE_SCHED_MAX_PIECES, &nb) ||
            !parse_doubles(cli_str(a, OPT("values"), ""), o->schedule.values,
                           PARE_SCHED_MAX_PIECES + 1, &nv) ||
            nv != nb + 1)
            return cli_usage_error(spec, "--schedule piecewise needs --boundaries S1,S2... and "
                                         "--values with one rate more") &&
                   false;
        o->schedule.n_boundaries = nb;
        for (int i = 0; i < nb; i++)
            o->schedule.boundaries[i] = (int64_t)b[i];
    }
    d = 0;
    if (cli_has(a, OPT("label-smoothing"))) {
        if (!cli_get_double(spec, a, OPT("label-smoothing"), 0, &d) || d >= 1)
            return cli_usage_error(spec, "--label-smoothing must be in [0, 1)") && false;
        o->label_smoothing = (float)d;
    }
    return true;
#undef OPT
}

typedef struct train_cli {
    pare_graph *student, *teacher, *trained;
    pare_dataset *train_ds, *eval_ds;
    pare_distill_pair *pairs;
    char **pair_texts;
    int n_pair_texts;
    char *default_ckpt;
} train_cli;

static void train_cli_fini(train_cli *c)
{
    pare_graph_free(c->student);
    pare_graph_free(c->teacher);
    pare_graph_free(c->trained);
    pare_dataset_free(c->train_ds);
    pare_dataset_free(c->eval_ds);
    for (int i = 0; i < c->n_pair_texts; i++)
        pare_free(c->pair_texts[i]);
    pare_free(c->pair_texts);
    pare_free(c->pairs);
    pare_free(c->default_ckpt);
}

static void print_result(const cli_args *a, const cli_spec *spec, const pare_train_result *r,
                         const pare_train_opts *o, const char *model, const char *out, int B,
                         double total_s)
{
#define OPT(name) cli_opt(spec, name)
    char buf[32];

    if (cli_has(a, OPT("json"))) {
        json_writer w;
        json_init(&w, stdout, true);
        json_begin_object(&w);
        json_key(&w, "command"), json_string(&w, spec->name);
        json_key(&w, "model"), json_string(&w, model);
        json_key(&w, "output"), json_string(&w, out);
        json_key(&w, "data"), json_string(&w, pare_dataset_spec(o->train_data));
        json_key(&w, "eval_data"), json_string(&w, o->eval_data ? pare_dataset_spec(o->eval_data) : NULL);
        json_key(&w, "batch"), json_int(&w, B);
        json_key(&w, "steps"), json_int(&w, r->steps);
        json_key(&w, "start_step"), json_int(&w, r->start_step);
        json_key(&w, "params"), json_int(&w, r->n_params);
        json_key(&w, "param_values"), json_int(&w, r->n_param_values);
        json_key(&w, "first_loss"), json_double(&w, r->first_loss);
        json_key(&w, "last_loss"), json_double(&w, r->last_loss);
        json_key(&w, "last_task_loss"), json_double(&w, r->last_task_loss);
        json_key(&w, "metric"), json_string(&w, r->metric_name);
        json_key(&w, "metric_first"), json_double(&w, r->metric_first);
        json_key(&w, "metric_best"), json_double(&w, r->metric_best);
        json_key(&w, "metric_last"), json_double(&w, r->metric_last);
        json_key(&w, "best_step"), json_int(&w, r->best_step);
        json_key(&w, "saved"), json_string(&w, o->keep_best && r->best_step >= 0 ? "best" : "last");
        json_key(&w, "train_seconds"), json_double(&w, r->seconds);
        json_key(&w, "total_seconds"), json_double(&w, total_s);
        json_key(&w, "images_per_s"), json_double(&w, r->images_per_s);
        json_end_object(&w);
        json_finish(&w);
        return;
    }
    printf("%s %s -> %s\n", spec->name, model, out);
    printf("  steps        %lld%s (batch %d, %s trained values)\n", (long long)r->steps,
           r->start_step ? " (resumed)" : "", B, cli_fmt_count(r->n_param_values, buf, sizeof buf));
    printf("  loss         %.4f -> %.4f\n", r->first_loss, r->last_loss);
    if (r->metric_name) {
        printf("  %-12s %s%.2f%% -> best %.2f%% at step %lld, last %.2f%%\n", r->metric_name,
               isnan(r->metric_first) ? "" : "", 100.0 * r->metric_first, 100.0 * r->metric_best,
               (long long)r->best_step, 100.0 * r->metric_last);
        printf("  saved        the %s weights\n", o->keep_best && r->best_step >= 0 ? "best" : "last");
    }
    printf("  throughput   %.0f img/s, %.1f s training, %.1f s in all\n", r->images_per_s,
           r->seconds, total_s);
#undef OPT
}

static int run(int argc, char **argv, const cli_spec *spec, bool distill)
{
#define OPT(name) cli_opt(spec, name)
    cli_args args;
    train_cli c;
    pare_train_opts o;
    pare_train_result r;
    pare_data_opts dopts;
    pare_error err = {0};
    run_state st;
    pare_progress prog = {.report = on_progress, .user = &st};
    const char *out_path;
    long batch = 64, v;
    int n_pairs = 0;
    double t0 = cli_now();
    bool sigint = false;
    pare_status prc;
    int rc = cli_parse(spec, argc, argv, &args);

    memset(&c, 0, sizeof c);
    memset(&st, 0, sizeof st);
    pare_train_opts_init(&o);
    if (rc != CLI_OK)
        goto out;
    rc = CLI_USAGE;
    if (!cli_has(&args, OPT("data"))) {
        cli_usage_error(spec, "--data is required (the training data)");
        goto out;
    }
    out_path = cli_str(&args, OPT("output"), NULL);
    if (!out_path) {
        cli_usage_error(spec, "-o OUT.onnx is required");
        goto out;
    }
    if (cli_same_file(args.pos[0], out_path) ||
        (distill && cli_has(&args, OPT("teacher")) &&
         cli_same_file(cli_str(&args, OPT("teacher"), ""), out_path))) {
        pare_fail(&err, PARE_EINPUT, out_path, "refusing to overwrite an input model");
        pare_error_hint(&err, "write the trained model to another file");
        rc = cli_report(&err);
        goto out;
    }
    if ((cli_has(&args, OPT("batch")) && !cli_get_int(spec, &args, OPT("batch"), 1, 1 << 20, &batch)) ||
        !parse_optim(spec, &args, &o))
        goto out;
    if (cli_has(&args, OPT("epochs"))) {
        if (!cli_get_int(spec, &args, OPT("epochs"), 1, 1L << 30, &v))
            goto out;
        o.epochs = v;
    }
    if (cli_has(&args, OPT("iterations"))) {
        if (!cli_get_int(spec, &args, OPT("iterations"), 1, 1L << 40, &v))
            goto out;
        o.iterations = v;
    }
    if (cli_has(&args, OPT("eval-every"))) {
        if (!cli_get_int(spec, &args, OPT("eval-every"), 1, 1L << 40, &v))
            goto out;
        o.eval_every = v;
    }
    if (cli_has(&args, OPT("eval-limit"))) {
        if (!cli_get_int(spec, &args, OPT("eval-limit"), 1, 1L << 40, &v))
            goto out;
        o.eval_limit = v;
    }
    if (cli_has(&args, OPT("seed"))) {
        if (!cli_get_int(spec, &args, OPT("seed"), 0, 1L << 62, &v))
            goto out;
        o.seed = (uint64_t)v;
    }
    if (cli_has(&args, OPT("threads"))) {
        if (!cli_get_int(spec, &args, OPT("threads"), 1, 1024, &v))
            goto out;
        o.n_threads = (int)v;
    }
    if (cli_has(&args, OPT("checkpoint-every"))) {
        if (!cli_get_int(spec, &args, OPT("checkpoint-every"), 1, 1L << 40, &v))
            goto out;
        o.checkpoint_every = v;
    }
    o.keep_best = !cli_has(&args, OPT("last"));
    o.reinit = cli_has(&args, OPT("reinit"));
    o.keep_sparsity = cli_has(&args, OPT("keep-sparsity"));
    if (o.reinit && o.keep_sparsity) {
        cli_usage_error(spec, "--keep-sparsity keeps the zeros of the given weights; --reinit "
                              "replaces them");
        goto out;
    }
    o.freeze = args.multi[OPT("freeze")];
    o.n_freeze = args.n_multi[OPT("freeze")];
    o.input_name = cli_str(&args, OPT("input"), NULL);
    o.resume_dir = cli_str(&args, OPT("resume"), NULL);
    o.checkpoint_dir = cli_str(&args, OPT("checkpoint"), NULL);
    if (!o.checkpoint_dir) {
        /* Ctrl-C still leaves something to resume */
        size_t len = strlen(out_path) + 6;
        c.default_ckpt = pare_alloc(len);
        if (!c.default_ckpt)
            goto out;
        snprintf(c.default_ckpt, len, "%s.ckpt", out_path);
        o.checkpoint_dir = c.default_ckpt;
        o.checkpoint_every = -1;
    }
    if (distill) {
        double d;
        n_pairs = args.n_multi[OPT("pair")];
        c.pairs = pare_calloc((size_t)(n_pairs ? n_pairs : 1), sizeof *c.pairs);
        c.pair_texts = pare_calloc((size_t)(n_pairs ? n_pairs : 1), sizeof *c.pair_texts);
        if (!c.pairs || !c.pair_texts)
            goto out;
        for (int i = 0; i < n_pairs; i++) {
            c.pair_texts[i] = pare_strdup(args.multi[OPT("pair")][i]);
            c.n_pair_texts = i + 1;
            if (!c.pair_texts[i] || !parse_pair(spec, c.pair_texts[i], &c.pairs[i]))
                goto out;
        }
        if (cli_has(&args, OPT("temperature"))) {
            if (!cli_get_double(spec, &args, OPT("temperature"), 0, &d) || d <= 0) {
                cli_usage_error(spec, "--temperature must be > 0");
                goto out;
            }
            o.temperature = (float)d;
        }
        if (cli_has(&args, OPT("task-weight"))) {
            if (!cli_get_double(spec, &args, OPT("task-weight"), 0, &d))
                goto out;
            o.task_weight = d;
        }
        o.adapter = cli_has(&args, OPT("adapter"));
    }

    rc = cli_load_model(args.pos[0], &c.student);
    if (rc != CLI_OK)
        goto out;
    if (distill && cli_has(&args, OPT("teacher"))) {
        rc = cli_load_model(cli_str(&args, OPT("teacher"), NULL), &c.teacher);
        if (rc != CLI_OK)
            goto out;
    }
    if (distill && n_pairs == 0) {
        /* default: the outputs, soft_label */
        const pare_graph *t = c.teacher ? c.teacher : c.student;
        c.pairs[0].teacher = t->values[t->outputs[0]].name;
        c.pairs[0].student = c.student->values[c.student->outputs[0]].name;
        c.pairs[0].loss = PARE_LOSS_SOFT_LABEL;
        c.pairs[0].alpha = 1.0;
        n_pairs = 1;
    }
    o.teacher = c.teacher;
    o.pairs = c.pairs;
    o.n_pairs = n_pairs;

    memset(&dopts, 0, sizeof dopts);
    if (!cli_get_normalisation(spec, &args, &dopts)) {
        rc = CLI_USAGE;
        goto out;
    }
    dopts.search_dir = PARE_FASHION_MNIST[0] ? PARE_FASHION_MNIST : NULL;
    dopts.batch_size = (int)batch;
    if (cli_has(&args, OPT("limit"))) {
        if (!cli_get_int(spec, &args, OPT("limit"), 1, 1L << 40, &v)) {
            rc = CLI_USAGE;
            goto out;
        }
        dopts.limit = v;
    }
    dopts.shuffle = !cli_has(&args, OPT("no-shuffle"));
    dopts.seed = o.seed;
    if (pare_dataset_open(cli_str(&args, OPT("data"), NULL), &dopts, &c.train_ds, &err) != PARE_OK) {
        rc = cli_report(&err);
        goto out;
    }
    if (cli_has(&args, OPT("eval-data"))) {
        dopts.limit = 0;
        dopts.shuffle = false;
        if (pare_dataset_open(cli_str(&args, OPT("eval-data"), NULL), &dopts, &c.eval_ds, &err) !=
            PARE_OK) {
            rc = cli_report(&err);
            goto out;
        }
    }
    o.train_data = c.train_ds;
    o.eval_data = c.eval_ds;
    o.progress = &prog;
    st.tty = isatty(STDERR_FILENO) == 1;
    st.bar.rate_scale = (double)batch;
    st.last_metric = NAN;
    st.metric_name = c.eval_ds ? (pare_dataset_has_labels(c.eval_ds) ? "top1" : "cosine") : "";

    cli_sigint_install();
    sigint = true;
    prc = pare_train(c.student, &o, &c.trained, &r, &err);
    if (st.bar.label)
        progress_finish(&st.bar);
    if (prc == PARE_ECANCELED) {
        fprintf(stderr, "pare %s: %s; the checkpoint is in %s: resume with --resume %s\n",
                spec->name, err.msg, o.checkpoint_dir, o.checkpoint_dir);
        if (err.hint[0])
            fprintf(stderr, "pare %s: %s\n", spec->name, err.hint);
        rc = CLI_FAILED;
        goto out;
    }
    if (prc != PARE_OK) {
        rc = cli_report(&err);
        goto out;
    }
    if (pare_graph_save(c.trained, out_path, &err) != PARE_OK) {
        rc = cli_report(&err);
        goto out;
    }
    print_result(&args, spec, &r, &o, args.pos[0], out_path, (int)batch, cli_now() - t0);
    fflush(stdout);
    rc = CLI_OK;
out:
    if (sigint)
        cli_sigint_restore();
    train_cli_fini(&c);
    cli_args_fini(&args);
    return rc;
#undef OPT
}

int cmd_train(int argc, char **argv)
{
    return run(argc, argv, &train_spec, false);
}

int cmd_distill(int argc, char **argv)
{
    return run(argc, argv, &distill_spec, true);
}
