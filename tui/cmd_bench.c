/* pare bench MODEL [--batch 1,64]: latency, throughput and memory. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "cli.h"
#include "json.h"
#include "pare/alloc.h"
#include "pare/exec.h"
#include "pare/graph.h"

#define BENCH_MAX_BATCHES 16

static const cli_option bench_options[] = {
    {"batch", "B[,B...]", "batch sizes to measure (default 1,64)", false, 0},
    {"threads", "N", "threads (default: PARE_THREADS or all cores)", false, 0},
    {"warmup", "W", "untimed runs before measuring (default 3)", false, 0},
    {"repeat", "R", "timed runs per batch size", false, 0},
    {"seconds", "S", "time budget per batch size when --repeat is not given (default 1)", false, 0},
    {"json", NULL, "print the results as one JSON object", false, 0},
    {"profile", NULL, "also print where the time goes: per op type and the slowest nodes", false, 0},
};
static const char *const bench_positional[] = {"MODEL"};
static const cli_spec bench_spec = {
    .name = "bench",
    .synopsis = "MODEL [--batch 1,64] [--threads N] [--warmup W] [--repeat R | --seconds S] [--json] [--profile]",
    .summary = "Times the model on synthetic inputs for each batch size: latency median and\n"
               "90th percentile, throughput, the plan's memory (activation arena + kernel workspace +\n"
               "constants folded at plan time + weights) and the process's peak resident memory.",
    .options = bench_options,
    .n_options = (int)(sizeof bench_options / sizeof bench_options[0]),
    .positional = bench_positional,
    .n_required = 1,
    .n_positional = 1,
};

typedef struct bench_result {
    int batch;
    int repeats;
    int threads;             /* what the plan used */
    double median_ms, p90_ms, min_ms, mean_ms;
    double images_per_s;
    size_t arena, scratch, folded, weights;
    long max_rss;            /* bytes */
} bench_result;

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Linear interpolation between order statistics; v sorted. */
static double percentile(const double *v, int n, double q)
{
    double pos = q * (n - 1);
    int lo = (int)pos;
    if (lo + 1 >= n)
        return v[n - 1];
    return v[lo] + (pos - lo) * (v[lo + 1] - v[lo]);
}

static bool parse_batches(const char *s, int *out, int *n)
{
    *n = 0;
    while (*s) {
        char *end = NULL;
        long v = strtol(s, &end, 10);
        if (end == s || v < 1 || v > (1 << 20) || (*end && *end != ',') || *n >= BENCH_MAX_BATCHES)
            return false;
        out[(*n)++] = (int)v;
        s = *end ? end + 1 : end;
    }
    return *n > 0;
}

/* Deterministic inputs: floats roughly N(0, 1), integers and bools zero. */
static void fill_inputs(pare_exec *x)
{
    uint64_t st = 0x9E3779B97F4A7C15ull;

    for (int i = 0; i < pare_exec_n_inputs(x); i++) {
        pare_tensor *t = pare_exec_input(x, i);
        if (t->dtype != PARE_F32) {
            memset(t->data, 0, pare_tensor_nbytes(t));
            continue;
        }
        for (int64_t k = 0, n = pare_tensor_numel(t); k < n; k++) {
            double sum = 0;
            for (int j = 0; j < 4; j++) {
                st ^= st << 13;
                st ^= st >> 7;
                st ^= st << 17;
                sum += (double)(st >> 11) * (1.0 / 9007199254740992.0);
            }
            pare_tensor_f32(t)[k] = (float)((sum - 2.0) * 1.7320508);
        }
    }
}

static size_t weight_bytes(const pare_graph *g)
{
    size_t n = 0;
    for (int v = 0; v < g->n_values; v++)
        if (g->values[v].init)
            n += pare_tensor_nbytes(g->values[v].init);
    return n;
}

typedef struct op_time {
    const char *op_type;
    double seconds, flops;
    int nodes;
} op_time;

static int cmp_op_time(const void *a, const void *b)
{
    const op_time *x = a, *y = b;
    return x->seconds < y->seconds ? 1 : x->seconds > y->seconds ? -1 : 0;
}

/* Per op type: ms per run, share of the run, GFLOP/s; then the slowest nodes. */
static void print_profile(const pare_graph *g, const pare_exec *x, int batch, long runs, FILE *out)
{
    op_time *types = pare_calloc((size_t)(g->n_nodes ? g->n_nodes : 1), sizeof *types);
    int n_types = 0;
    double total = 0;

    if (!types || runs <= 0)
        goto out;
    for (int n = 0; n < g->n_nodes; n++) {
        double sec = pare_exec_node_seconds(x, n);
        int t = 0;
        if (pare_exec_node_is_folded(x, n))
            continue;
        while (t < n_types && strcmp(types[t].op_type, g->nodes[n].op_type))
            t++;
        if (t == n_types)
            types[n_types++].op_type = g->nodes[n].op_type;
        types[t].seconds += sec;
        types[t].flops += pare_exec_node_flops(x, n);
        types[t].nodes++;
        total += sec;
    }
    qsort(types, (size_t)n_types, sizeof *types, cmp_op_time);
    fprintf(out, "\nprofile, batch %d (%ld runs; ms per run)\n", batch, runs);
    fprintf(out, "  %-24s %6s %10s %7s %9s\n", "op", "nodes", "ms", "share", "GFLOP/s");
    for (int t = 0; t < n_types; t++) {
        double ms = types[t].seconds * 1e3 / (double)runs;
        fprintf(out, "  %-24s %6d %10.3f %6.1f%%", types[t].op_type, types[t].nodes, ms,
                total > 0 ? 100.0 * types[t].seconds / total : 0.0);
        if (types[t].flops > 0 && types[t].seconds > 0)
            fprintf(out, " %9.1f\n", types[t].flops * (double)runs / types[t].seconds * 1e-9);
        else
            fprintf(out, " %9s\n", "-");
    }
    {
        /* The five slowest nodes, by a partial selection. */
        int shown[5], n_shown = 0;
        fprintf(out, "  slowest nodes:\n");
        while (n_shown < 5) {
            int best = -1;
            for (int n = 0; n < g->n_nodes; n++) {
                bool taken = false;
                for (int k = 0; k < n_shown; k++)
                    taken |= shown[k] == n;
                if (!taken && !pare_exec_node_is_folded(x, n) &&
                    (best < 0 || pare_exec_node_seconds(x, n) > pare_exec_node_seconds(x, best)))
                    best = n;
            }
            if (best < 0)
                break;
            shown[n_shown++] = best;
            fprintf(out, "    %-40s %-20s %8.3f ms\n", g->nodes[best].name, g->nodes[best].op_type,
                    pare_exec_node_seconds(x, best) * 1e3 / (double)runs);
        }
    }
out:
    pare_free(types);
}

static pare_status bench_one(const pare_graph *g, int batch, int threads, long warmup, long repeat,
                             double seconds, bool profile, bench_result *r, pare_error *err)
{
    pare_exec_opts opts = {0};
    pare_exec *x = NULL;
    double *times = NULL, t_start;
    long cap = repeat > 0 ? repeat : 1024, n = 0;
    struct rusage ru;
    pare_status rc;

    memset(r, 0, sizeof *r);
    r->batch = batch;
    opts.batch = batch;
    opts.n_threads = threads;
    opts.profile = profile;
    rc = pare_exec_new(g, &opts, &x, err);
    if (rc != PARE_OK)
        return rc;
    times = pare_alloc((size_t)cap * sizeof *times);
    if (!times) {
        rc = pare_fail(err, PARE_ENOMEM, NULL, "out of memory");
        goto out;
    }
    fill_inputs(x);
    for (long i = 0; i < warmup && rc == PARE_OK; i++)
        rc = pare_exec_run(x, err);
    pare_exec_profile_reset(x);
    t_start = cli_now();
    while (rc == PARE_OK && !cli_interrupted()) {
        double t0;
        if (repeat > 0 ? n >= repeat : (n >= 3 && cli_now() - t_start >= seconds))
            break;
        if (n == cap) {
            double *bigger = pare_realloc(times, (size_t)cap * 2 * sizeof *times);
            if (!bigger) {
                rc = pare_fail(err, PARE_ENOMEM, NULL, "out of memory");
                break;
            }
            times = bigger;
            cap *= 2;
        }
        t0 = cli_now();
        rc = pare_exec_run(x, err);
        times[n++] = (cli_now() - t0) * 1e3;
    }
    if (rc != PARE_OK || n == 0)
        goto out;
    qsort(times, (size_t)n, sizeof *times, cmp_double);
    r->repeats = (int)n;
    r->median_ms = percentile(times, (int)n, 0.5);
    r->p90_ms = percentile(times, (int)n, 0.9);
    r->min_ms = times[0];
    for (long i = 0; i < n; i++)
        r->mean_ms += times[i] / (double)n;
    r->images_per_s = r->median_ms > 0 ? batch * 1e3 / r->median_ms : 0;
    r->threads = pare_exec_threads(x);
    r->arena = pare_exec_arena_bytes(x);
    r->folded = pare_exec_folded_bytes(x);
    r->scratch = pare_exec_scratch_bytes(x);
    r->weights = weight_bytes(g);
    if (getrusage(RUSAGE_SELF, &ru) == 0)
        r->max_rss = ru.ru_maxrss * 1024L;
    if (profile)
        print_profile(g, x, batch, n, stderr);
out:
    pare_free(times);
    pare_exec_free(x);
    return rc;
}

static void print_json(const char *path, int threads, long warmup, const bench_result *res, int n,
                       bool interrupted)
{
    json_writer w;

    json_init(&w, stdout, true);
    json_begin_object(&w);
    json_key(&w, "model");
    json_string(&w, path);
    json_key(&w, "threads");
    json_int(&w, threads);
    json_key(&w, "warmup");
    json_int(&w, warmup);
    json_key(&w, "interrupted");
    json_bool(&w, interrupted);
    json_key(&w, "results");
    json_begin_array(&w);
    for (int i = 0; i < n; i++) {
        const bench_result *r = &res[i];
        json_begin_object(&w);
        json_key(&w, "batch");
        json_int(&w, r->batch);
        json_key(&w, "repeats");
        json_int(&w, r->repeats);
        json_key(&w, "latency_ms");
        json_begin_object(&w);
        json_key(&w, "median");
        json_double(&w, r->median_ms);
        json_key(&w, "p90");
        json_double(&w, r->p90_ms);
        json_key(&w, "min");
        json_double(&w, r->min_ms);
        json_key(&w, "mean");
        json_double(&w, r->mean_ms);
        json_end_object(&w);
        json_key(&w, "images_per_s");
        json_double(&w, r->images_per_s);
        json_key(&w, "memory");
        json_begin_object(&w);
        json_key(&w, "arena_bytes");
        json_int(&w, (int64_t)r->arena);
        json_key(&w, "scratch_bytes");
        json_int(&w, (int64_t)r->scratch);
        json_key(&w, "folded_bytes");
        json_int(&w, (int64_t)r->folded);
        json_key(&w, "weight_bytes");
        json_int(&w, (int64_t)r->weights);
        json_key(&w, "plan_bytes");
        json_int(&w, (int64_t)(r->arena + r->scratch + r->folded + r->weights));
        json_key(&w, "max_rss_bytes");
        json_int(&w, r->max_rss);
        json_end_object(&w);
        json_end_object(&w);
    }
    json_end_array(&w);
    json_end_object(&w);
    json_finish(&w);
}

static void print_text(const char *path, int threads, const bench_result *res, int n)
{
    char a[32], b[32], c[32];

    printf("model    %s\nthreads  %d\n\n", path, threads);
    printf("%6s  %7s  %12s  %12s  %12s  %12s  %10s\n", "batch", "runs", "median ms", "p90 ms",
           "images/s", "plan memory", "max RSS");
    for (int i = 0; i < n; i++) {
        const bench_result *r = &res[i];
        printf("%6d  %7d  %12.3f  %12.3f  %12s  %12s  %10s\n", r->batch, r->repeats, r->median_ms,
               r->p90_ms, cli_fmt_count((int64_t)llround(r->images_per_s), a, sizeof a),
               cli_fmt_bytes((double)(r->arena + r->scratch + r->folded + r->weights), b, sizeof b),
               cli_fmt_bytes((double)r->max_rss, c, sizeof c));
    }
}

int cmd_bench(int argc, char **argv)
{
    cli_args args;
    pare_graph *g = NULL;
    pare_error err = {0};
    bench_result res[BENCH_MAX_BATCHES];
    int batches[BENCH_MAX_BATCHES] = {1, 64}, n_batches = 2, done = 0, used_threads = 0;
    long threads = 0, warmup = 3, repeat = 0;
    double seconds = 1.0;
    bool interrupted;
    int rc = cli_parse(&bench_spec, argc, argv, &args);

    if (rc != CLI_OK)
        goto out;
    if (cli_has(&args, cli_opt(&bench_spec, "batch")) &&
        !parse_batches(cli_str(&args, cli_opt(&bench_spec, "batch"), ""), batches, &n_batches)) {
        rc = cli_usage_error(&bench_spec, "--batch wants up to %d comma-separated sizes >= 1, not '%s'",
                             BENCH_MAX_BATCHES, cli_str(&args, cli_opt(&bench_spec, "batch"), ""));
        goto out;
    }
    if (cli_has(&args, cli_opt(&bench_spec, "repeat")) && cli_has(&args, cli_opt(&bench_spec, "seconds"))) {
        rc = cli_usage_error(&bench_spec, "give --repeat or --seconds, not both");
        goto out;
    }
    if (!cli_get_int(&bench_spec, &args, cli_opt(&bench_spec, "threads"), 1, 1024, &threads) ||
        !cli_get_int(&bench_spec, &args, cli_opt(&bench_spec, "warmup"), 0, 1000000, &warmup) ||
        !cli_get_int(&bench_spec, &args, cli_opt(&bench_spec, "repeat"), 1, 100000000, &repeat) ||
        !cli_get_double(&bench_spec, &args, cli_opt(&bench_spec, "seconds"), 0, &seconds)) {
        rc = CLI_USAGE;
        goto out;
    }
    rc = cli_load_model(args.pos[0], &g);
    if (rc != CLI_OK)
        goto out;
    cli_sigint_install();
    for (int i = 0; i < n_batches && !cli_interrupted(); i++) {
        if (bench_one(g, batches[i], (int)threads, warmup, repeat, seconds,
                      cli_has(&args, cli_opt(&bench_spec, "profile")), &res[i], &err) != PARE_OK)
            break;
        done++;
    }
    interrupted = cli_interrupted();
    cli_sigint_restore();
    if (done < n_batches && !interrupted) {
        rc = cli_report(&err);
        goto out;
    }
    used_threads = done ? res[0].threads : (int)threads;
    if (cli_has(&args, cli_opt(&bench_spec, "json")))
        print_json(args.pos[0], used_threads, warmup, res, done, interrupted);
    else
        print_text(args.pos[0], used_threads, res, done);
    if (interrupted)
        fprintf(stderr, "pare: interrupted\n");
    rc = interrupted ? CLI_FAILED : CLI_OK;
out:
    pare_graph_free(g);
    cli_args_fini(&args);
    return rc < 0 ? CLI_OK : rc;
}
