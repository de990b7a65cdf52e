/* The job runner's report (report.json, report.md) and file helpers. */
#include <errno.h>
#include <ftw.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "compress_internal.h"
#include "pare/alloc.h"

void sbuf_printf(sbuf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (!b->ok)
        return;
    for (;;) {
        size_t room = b->cap - b->len;
        va_start(ap, fmt);
        n = b->s ? vsnprintf(b->s + b->len, room, fmt, ap) : -2;
        va_end(ap);
        if (n == -1) {
            b->ok = false;
            return;
        }
        if (n >= 0 && (size_t)n < room) {
            b->len += (size_t)n;
            return;
        }
        {
            size_t cap = b->cap ? b->cap * 2 : 1024;
            char *s;
            while (n >= 0 && cap < b->len + (size_t)n + 1)
                cap *= 2;
            s = pare_realloc(b->s, cap);
            if (!s) {
                b->ok = false;
                return;
            }
            b->s = s;
            b->cap = cap;
            if (b->len == 0)
                b->s[0] = '\0';
        }
    }
}

void sbuf_json_str(sbuf *b, const char *s)
{
    sbuf_printf(b, "\"");
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        if (*p == '"' || *p == '\\')
            sbuf_printf(b, "\\%c", *p);
        else if (*p == '\n')
            sbuf_printf(b, "\\n");
        else if (*p < 0x20)
            sbuf_printf(b, "\\u%04x", *p);
        else
            sbuf_printf(b, "%c", *p);
    }
    sbuf_printf(b, "\"");
}

void sbuf_json_num(sbuf *b, double v)
{
    if (isnan(v))
        sbuf_printf(b, "null");
    else if (isinf(v))
        sbuf_printf(b, "\"%sinf\"", v < 0 ? "-" : "");
    else
        sbuf_printf(b, "%.10g", v);
}

pare_status compress_write_text(const char *path, const char *text, pare_error *err)
{
    char tmp[PARE_COMPRESS_PATH_MAX + 32];
    FILE *f;
    size_t n = strlen(text);
    bool ok;

    snprintf(tmp, sizeof tmp, "%s.tmp%ld", path, (long)getpid());
    f = fopen(tmp, "wb");
    if (!f)
        return pare_fail(err, PARE_EIO, path, "cannot write: %s", strerror(errno));
    ok = fwrite(text, 1, n, f) == n;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        int e = errno;
        remove(tmp);
        return pare_fail(err, PARE_EIO, path, "cannot write: %s", strerror(e));
    }
    return PARE_OK;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)ftw;
    if (flag == FTW_DP)
        rmdir(path);
    else
        unlink(path);
    return 0;
}

void compress_rm_tree(const char *dir)
{
    if (dir && dir[0])
        nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

double compress_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void pare_compress_report_fini(pare_compress_report *r)
{
    if (!r)
        return;
    pare_free(r->trials);
    pare_free(r->layers);
    r->layers = NULL;
    r->n_layers = 0;
    for (int i = 0; i < r->n_warnings; i++)
        pare_free(r->warnings[i]);
    pare_free(r->warnings);
    r->trials = NULL;
    r->warnings = NULL;
    r->n_trials = r->n_warnings = 0;
}

static const char *const algo_names[] = {"abs_max", "avg", "hist", "KL", "mse"};
static const char *const wq_names[] = {"abs_max", "channel_wise_abs_max"};

static const char *algo_name(int a)
{
    return a >= 0 && a < 5 ? algo_names[a] : "?";
}

static const char *wq_name(int w)
{
    return w >= 0 && w < 2 ? wq_names[w] : "?";
}

char *pare_compress_report_json(const pare_compress_report *r)
{
    sbuf b = {.ok = true};

    sbuf_printf(&b, "{\n  \"model\": ");
    sbuf_json_str(&b, r->model);
    sbuf_printf(&b, ",\n  \"save_dir\": ");
    sbuf_json_str(&b, r->save_dir);
    sbuf_printf(&b, ",\n  \"dry_run\": %s", r->dry_run ? "true" : "false");
    sbuf_printf(&b, ",\n  \"metric\": ");
    if (r->has_metric) {
        sbuf_printf(&b, "{\"name\": ");
        sbuf_json_str(&b, r->metric_name);
        sbuf_printf(&b, ", \"data\": ");
        sbuf_json_str(&b, r->eval_data);
        sbuf_printf(&b, ", \"samples\": %lld, \"before\": ", (long long)r->eval_samples);
        sbuf_json_num(&b, r->metric_before);
        sbuf_printf(&b, ", \"after\": ");
        sbuf_json_num(&b, r->metric_after);
        sbuf_printf(&b, "}");
    } else {
        sbuf_printf(&b, "null");
    }
    sbuf_printf(&b, ",\n  \"params\": {\"before\": %lld, \"after\": %lld}",
                (long long)r->params_before, (long long)r->params_after);
    sbuf_printf(&b, ",\n  \"flops\": {\"before\": ");
    sbuf_json_num(&b, r->flops_before);
    sbuf_printf(&b, ", \"after\": ");
    sbuf_json_num(&b, r->flops_after);
    sbuf_printf(&b, "}");
    sbuf_printf(&b, ",\n  \"bytes\": {\"before\": %lld, \"after\": %lld}",
                (long long)r->bytes_before, (long long)r->bytes_after);
    sbuf_printf(&b, ",\n  \"sparsity\": ");
    sbuf_json_num(&b, r->sparsity);
    sbuf_printf(&b, ",\n  \"quantized\": %s, \"quantized_nodes\": %d", r->quantized ? "true" : "false",
                r->n_quantized_nodes);
    sbuf_printf(&b, ",\n  \"train\": ");
    if (r->train_steps > 0) {
        sbuf_printf(&b, "{\"steps\": %lld, \"first_loss\": ", (long long)r->train_steps);
        sbuf_json_num(&b, r->train_first_loss);
        sbuf_printf(&b, ", \"last_loss\": ");
        sbuf_json_num(&b, r->train_last_loss);
        sbuf_printf(&b, "}");
    } else {
        sbuf_printf(&b, "null");
    }
    sbuf_printf(&b, ",\n  \"stages\": [");
    for (int i = 0; i < r->n_stages; i++) {
        sbuf_printf(&b, "%s\n    {\"name\": ", i ? "," : "");
        sbuf_json_str(&b, r->stages[i].name);
        sbuf_printf(&b, ", \"detail\": ");
        sbuf_json_str(&b, r->stages[i].detail);
        sbuf_printf(&b, ", \"seconds\": ");
        sbuf_json_num(&b, r->stages[i].seconds);
        sbuf_printf(&b, "}");
    }
    sbuf_printf(&b, "%s],\n  \"hpo\": ", r->n_stages ? "\n  " : "");
    if (r->n_trials) {
        sbuf_printf(&b, "{\"best\": %d, \"trials\": [", r->best_trial);
        for (int i = 0; i < r->n_trials; i++) {
            const pare_compress_trial *t = &r->trials[i];
            sbuf_printf(&b, "%s\n    {\"algo\": ", i ? "," : "");
            sbuf_json_str(&b, algo_name(t->algo));
            sbuf_printf(&b, ", \"bias_correct\": %s, \"weight_quantize_type\": ",
                        t->bias_correct ? "true" : "false");
            sbuf_json_str(&b, wq_name(t->weight_quantize_type));
            sbuf_printf(&b, ", \"hist_percent\": ");
            sbuf_json_num(&b, t->hist_percent);
            sbuf_printf(&b, ", \"batch_nums\": %d, \"metric\": ", t->batch_nums);
            sbuf_json_num(&b, t->metric);
            sbuf_printf(&b, ", \"seconds\": ");
            sbuf_json_num(&b, t->seconds);
            sbuf_printf(&b, "}");
        }
        sbuf_printf(&b, "\n  ]}");
    } else {
        sbuf_printf(&b, "null");
    }
    sbuf_printf(&b, ",\n  \"sensitivity_csv\": %s", r->has_sensitivity ? "true" : "false");
    sbuf_printf(&b, ",\n  \"layers\": [");
    for (int i = 0; i < r->n_layers; i++) {
        const pare_compress_layer *l = &r->layers[i];
        sbuf_printf(&b, "%s\n    {\"name\": ", i ? "," : "");
        sbuf_json_str(&b, l->name);
        sbuf_printf(&b, ", \"op\": ");
        sbuf_json_str(&b, l->op);
        sbuf_printf(&b, ", \"channels\": {\"before\": %lld, \"after\": %lld}, "
                        "\"params\": {\"before\": %lld, \"after\": %lld}, \"sparsity\": ",
                    (long long)l->out_before, (long long)l->out_after,
                    (long long)l->params_before, (long long)l->params_after);
        sbuf_json_num(&b, l->sparsity);
        sbuf_printf(&b, ", \"quantized\": %s}", l->quantized ? "true" : "false");
    }
    sbuf_printf(&b, "%s]", r->n_layers ? "\n  " : "");
    sbuf_printf(&b, ",\n  \"warnings\": [");
    for (int i = 0; i < r->n_warnings; i++) {
        sbuf_printf(&b, "%s", i ? ", " : "");
        sbuf_json_str(&b, r->warnings[i]);
    }
    sbuf_printf(&b, "],\n  \"seconds\": ");
    sbuf_json_num(&b, r->seconds);
    sbuf_printf(&b, "\n}\n");
    if (!b.ok) {
        pare_free(b.s);
        return NULL;
    }
    return b.s;
}

static void md_metric(sbuf *b, const char *name, double v)
{
    if (isnan(v))
        sbuf_printf(b, "n/a");
    else if (isinf(v))
        sbuf_printf(b, "%sinf dB", v < 0 ? "-" : "+");
    else if (!strcmp(name, "snr"))
        sbuf_printf(b, "%.2f dB", v);
    else if (!strcmp(name, "cosine"))
        sbuf_printf(b, "%.6f", v);
    else
        sbuf_printf(b, "%.2f %%", 100.0 * v);
}

char *pare_compress_report_markdown(const pare_compress_report *r)
{
    sbuf b = {.ok = true};

    sbuf_printf(&b, "# pare compress report\n\n");
    sbuf_printf(&b, "- model: `%s`\n- output: `%s`\n", r->model, r->save_dir);
    if (r->has_metric)
        sbuf_printf(&b, "- evaluation: %s on `%s`, %lld samples\n", r->metric_name, r->eval_data,
                    (long long)r->eval_samples);
    sbuf_printf(&b, "- total time: %.2f s\n\n", r->seconds);
    sbuf_printf(&b, "| | before | after |\n|---|---|---|\n");
    if (r->has_metric) {
        sbuf_printf(&b, "| %s | ", r->metric_name);
        md_metric(&b, r->metric_name, r->metric_before);
        sbuf_printf(&b, " | ");
        md_metric(&b, r->metric_name, r->metric_after);
        sbuf_printf(&b, " |\n");
    }
    sbuf_printf(&b, "| params | %lld | %lld |\n", (long long)r->params_before,
                (long long)r->params_after);
    sbuf_printf(&b, "| FLOPs per sample | %.0f | %.0f |\n", r->flops_before, r->flops_after);
    sbuf_printf(&b, "| model file (bytes) | %lld | %lld |\n", (long long)r->bytes_before,
                (long long)r->bytes_after);
    if (r->sparsity > 0)
        sbuf_printf(&b, "| weight sparsity | 0 %% | %.2f %% |\n", 100.0 * r->sparsity);
    if (r->quantized)
        sbuf_printf(&b, "| quantized nodes | 0 | %d |\n", r->n_quantized_nodes);
    sbuf_printf(&b, "\n## Stages\n\n| stage | what | seconds |\n|---|---|---|\n");
    for (int i = 0; i < r->n_stages; i++)
        sbuf_printf(&b, "| %s | %s | %.2f |\n", r->stages[i].name, r->stages[i].detail,
                    r->stages[i].seconds);
    if (r->n_layers) {
        sbuf_printf(&b, "\n## Layers\n\n| layer | op | channels | weights | sparsity | int8 |\n"
                        "|---|---|---|---|---|---|\n");
        for (int i = 0; i < r->n_layers; i++) {
            const pare_compress_layer *l = &r->layers[i];
            sbuf_printf(&b, "| %s | %s | %lld -> %lld | %lld -> %lld | %.1f %% | %s |\n", l->name,
                        l->op, (long long)l->out_before, (long long)l->out_after,
                        (long long)l->params_before, (long long)l->params_after,
                        100.0 * l->sparsity, l->quantized ? "yes" : "no");
        }
    }
    if (r->train_steps > 0)
        sbuf_printf(&b, "\nTraining: %lld steps, loss %.4g -> %.4g.\n", (long long)r->train_steps,
                    r->train_first_loss, r->train_last_loss);
    if (r->n_trials) {
        sbuf_printf(&b, "\n## HyperParameterOptimization trials\n\n"
                        "| # | algo | bias_correct | weight_quantize_type | hist_percent | batch_nums "
                        "| %s | seconds |\n|---|---|---|---|---|---|---|---|\n", r->metric_name);
        for (int i = 0; i < r->n_trials; i++) {
            const pare_compress_trial *t = &r->trials[i];
            sbuf_printf(&b, "| %d%s | %s | %s | %s | %.5g | %d | ", i, i == r->best_trial ? " (best)" : "",
                        algo_name(t->algo), t->bias_correct ? "true" : "false",
                        wq_name(t->weight_quantize_type), t->hist_percent, t->batch_nums);
            md_metric(&b, r->metric_name, t->metric);
            sbuf_printf(&b, " | %.2f |\n", t->seconds);
        }
    }
    if (r->n_warnings) {
        sbuf_printf(&b, "\n## Warnings\n\n");
        for (int i = 0; i < r->n_warnings; i++)
            sbuf_printf(&b, "- %s\n", r->warnings[i]);
    }
    if (!b.ok) {
        pare_free(b.s);
        return NULL;
    }
    return b.s;
}
