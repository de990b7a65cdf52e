/* pare quant MODEL --data SPEC -o OUT.onnx: post-training quantization to a
 * QDQ model, optionally evaluated against the fp32 model. */
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
#include "pare/quant.h"

#ifndef PARE_FASHION_MNIST
#define PARE_FASHION_MNIST ""
#endif

static const cli_option quant_options[] = {
    {"data", "SPEC", "calibration data (e.g. fashion-mnist:train, npy:x.npy)", false, 0},
    {"output", "OUT.onnx", "the quantized (QDQ) model to write", false, 'o'},
    {"algo", "A", "activation ranges: abs_max, avg, hist, KL, mse (default hist)", false, 0},
    {"hist-percent", "P", "percentile for --algo hist, a fraction (default 0.9999)", false, 0},
    {"bits", "W", "weight bits, 2..8 (default 8)", false, 0},
    {"act-bits", "A", "activation bits, 2..8 (default 8)", false, 0},
    {"per-tensor", NULL, "one weight scale per tensor (default: per output channel)", false, 0},
    {"weight-mse", NULL, "search weight clip ranges for the least squared error (low bits)", false, 0},
    {"block-size", "B", "block-wise weight scales along the input axis (opset 21)", false, 0},
    {"preset", "P", "onnxruntime (default), tensorrt or u8s8", false, 0},
    {"uint8", NULL, "uint8 activations (onnxruntime preset; default int8)", false, 0},
    {"symmetric", NULL, "symmetric activation ranges (onnxruntime preset)", false, 0},
    {"reduce-range", NULL, "7-bit weights (set by --preset u8s8)", false, 0},
    {"weight-only", NULL, "quantize weights only", false, 0},
    {"outputs", NULL, "Q/DQ on quantized ops' outputs too (default except --preset tensorrt)",
     false, 0},
    {"inputs-only", NULL, "Q/DQ only on quantized ops' inputs (default for --preset tensorrt)",
     false, 0},
    {"full", NULL, "also quantize Add, Mul, Concat, pooling, Relu... (is_full_quantize)", false, 0},
    {"op-types", "OP", "op types to quantize (default Conv Gemm MatMul)", true, 0},
    {"skip", "NAME", "a value name not to quantize (a weight skips its node)", true, 0},
    {"pattern", "TEXT", "skip nodes whose name or value names contain TEXT", true, 0},
    {"tensor-bits", "NAME=BITS", "bits (2..8) for one weight, activation or node; repeatable",
     true, 0},
    {"strict", NULL, "unknown --skip and --tensor-bits names are errors, not warnings", false, 0},
    {"batch-nums", "N", "calibration batches (default 10; 0 = the whole data)", false, 0},
    {"batch-size", "B", "calibration batch size (default 32)", false, 0},
    {"bias-correction", NULL, "correct the mean output shift of each biased Conv/Gemm", false, 0},
    {"recon", "LEVEL", "reconstruction: layer-wise (bare --recon) or region-wise AdaRound", false, 0},
    {"region", "IN,IN:OUT", "a region-wise region: input names, ':', output names (repeatable)",
     true, 0},
    {"recon-epochs", "N", "reconstruction passes over the calibration batches (default 20)", false, 0},
    {"recon-lr", "LR", "reconstruction learning rate (default 0.05)", false, 0},
    {"table", "FILE", "write calibration_table.txt (name min max per activation)", false, 0},
    {"trt-cache", "FILE", "write a TensorRT calibration.cache", false, 0},
    {"eval", "SPEC", "report fp32 and quantized top-1 on this labelled data", false, 0},
    {"limit", "N", "evaluate on the first N samples only", false, 0},
    {"threads", "N", "threads (default: PARE_THREADS or all cores)", false, 0},
    {"json", NULL, "print the result as one JSON object", false, 0},
    {"error-table", "N", "SQNR/MSE/cosine per tensor over N batches (N optional)", false, 0},
    {"error-csv", "FILE", "write the error table as CSV (implies --error-table)", false, 0},
};
static const char *const quant_positional[] = {"MODEL"};
static const cli_spec quant_spec = {
    .name = "quant",
    .synopsis = "MODEL --data SPEC -o OUT.onnx [--algo A] [--bits W] [--act-bits A]\n"
                "                  [--per-tensor] [--preset P] [--batch-nums N] [--batch-size B]\n"
                "                  [--skip NAME]... [--tensor-bits NAME=BITS]...\n"
                "                  [--bias-correction] [--table FILE]\n"
                "                  [--recon [layer-wise|region-wise] [--region IN,IN:OUT]...]\n"
                "                  [--eval SPEC [--limit N]] [--error-table [N]] [--error-csv FILE]\n"
                "                  [--json]",
    .summary = "Post-training quantization. Runs the model in fp32 over --batch-nums batches of\n"
               "the calibration data, picks a range for every activation that feeds a quantized\n"
               "op (Conv, Gemm, MatMul by default), and writes a model with QuantizeLinear /\n"
               "DequantizeLinear pairs in ONNX Runtime's QDQ format: int8 weights (symmetric,\n"
               "per output channel), int8 or uint8 activations, int32 biases. pare runs the\n"
               "same model, so --eval reports what ONNX Runtime will compute.\n"
               "OUT is written to a temporary name and renamed; it may not be MODEL.",
    .options = quant_options,
    .n_options = (int)(sizeof quant_options / sizeof quant_options[0]),
    .positional = quant_positional,
    .n_required = 1,
    .n_positional = 1,
    .epilog = "--error-table: for every quantized activation and weight, the error of x against\n"
              "DQ(Q(x)); for every output of a quantized node, the quantized model against the fp32\n"
              "model at that value (error accumulated so far). Worst (lowest SQNR) first.\n"
              "Ctrl-C stops calibration between batches; nothing is written then (exit code 1).\n"
              "Fashion-MNIST is looked up in $PARE_FASHION_MNIST, then in " PARE_FASHION_MNIST ".",
};

#define OPT(name) cli_opt(&quant_spec, name)

static bool on_progress(void *user, const pare_progress_event *ev)
{
    progress *bar = user;
    if (!bar->label || strcmp(bar->label, ev->stage)) {
        progress_finish(bar);
        progress_init(bar, ev->stage, ev->total);
    }
    progress_update(bar, ev->done);
    return !cli_interrupted();
}

/* Top-1 of g on ds (batch 64; the last partial batch padded). */
static pare_status top1(const pare_graph *g, const pare_dataset *ds, int threads, double *out,
                        pare_error *err)
{
    pare_exec *x = NULL;
    pare_exec_opts eo = {.batch = 64, .n_threads = threads};
    pare_accuracy acc;
    int64_t labels[64], n = pare_dataset_count(ds);
    progress bar;
    pare_status rc = pare_exec_new(g, &eo, &x, err);

    pare_accuracy_init(&acc, 5);
    progress_init(&bar, "eval", n);
    for (int64_t pos = 0; pos < n && rc == PARE_OK; pos += 64) {
        int64_t nb = n - pos < 64 ? n - pos : 64;
        if (cli_interrupted()) {
            rc = pare_fail(err, PARE_ECANCELED, NULL, "evaluation interrupted");
            break;
        }
        rc = pare_dataset_fill(ds, pos, nb, pare_exec_input(x, 0), labels, err);
        if (rc == PARE_OK)
            rc = pare_exec_run(x, err);
        if (rc == PARE_OK)
            rc = pare_accuracy_add(&acc, pare_exec_output(x, 0), labels, nb, err);
        progress_update(&bar, pos + nb);
    }
    progress_finish(&bar);
    pare_exec_free(x);
    *out = pare_accuracy_top1(&acc);
    return rc;
}

static int count_op(const pare_graph *g, const char *op)
{
    int k = 0;
    for (int n = 0; n < g->n_nodes; n++)
        k += !strcmp(g->nodes[n].op_type, op);
    return k;
}

static const char *kind_name(pare_quant_kind k)
{
    return k == PARE_QUANT_ACTIVATION ? "activation" : k == PARE_QUANT_WEIGHT ? "weight" : "bias";
}

typedef struct quant_result {
    const char *model, *out, *data, *eval, *table, *trt;
    const pare_quant_opts *o;
    const pare_quant_report *rep;
    const pare_graph *q;
    int64_t samples;
    double calib_s, build_s, recon_s, bc_s, total_s;
    bool has_eval;
    int64_t eval_n;
    double top1_fp32, top1_quant;
    const pare_quant_error_table *errors;  /* NULL unless --error-table */
    double error_s;
} quant_result;

/* name, keeping its end with ".." in front when it is longer than w */
static const char *tail(const char *name, int w, char *buf, size_t size)
{
    size_t len = strlen(name);
    if (len <= (size_t)w)
        return name;
    snprintf(buf, size, "..%s", name + len - (size_t)w + 2);
    return buf;
}

static void fmt_db(double db, char *buf, size_t size)
{
    if (isinf(db))
        snprintf(buf, size, "%s", db > 0 ? "+inf" : "-inf");
    else
        snprintf(buf, size, "%.2f", db);
}

static void print_error_table(const pare_quant_error_table *t, double seconds)
{
    printf("\nerror table  %d rows, %d batches (%lld samples), %.2f s; worst (lowest SQNR) first\n",
           t->n_rows, t->n_batches, (long long)t->n_samples, seconds);
    printf("  activation/weight: x vs DQ(Q(x)); output: quantized vs fp32 model at that value\n\n");
    printf("%-10s  %-32s  %-28s %4s %8s %10s %8s\n", "kind", "tensor", "node", "bits", "SQNR dB",
           "MSE", "cosine");
    for (int i = 0; i < t->n_rows; i++) {
        const pare_quant_error_row *e = &t->rows[i];
        char db[32], bits[8], b1[64], b2[64];
        fmt_db(e->sqnr_db, db, sizeof db);
        if (e->bits)
            snprintf(bits, sizeof bits, "%d", e->bits);
        else
            snprintf(bits, sizeof bits, "-");
        printf("%-10s  %-32s  %-28s %4s %8s %10.3g %8.5f\n", pare_quant_error_kind_name(e->kind),
               tail(e->name, 32, b1, sizeof b1), tail(e->node, 28, b2, sizeof b2), bits, db, e->mse, e->cosine);
    }
}

static void print_text(const quant_result *r)
{
    int n_act = 0, n_w = 0, n_b = 0;
    double worst = INFINITY;
    const char *worst_name = NULL;

    for (int i = 0; i < r->rep->n_tensors; i++) {
        const pare_quant_tensor *t = &r->rep->tensors[i];
        n_act += t->kind == PARE_QUANT_ACTIVATION;
        n_w += t->kind == PARE_QUANT_WEIGHT;
        n_b += t->kind == PARE_QUANT_BIAS;
        if (t->kind == PARE_QUANT_WEIGHT && t->snr_db < worst) {
            worst = t->snr_db;
            worst_name = t->name;
        }
    }
    printf("%-12s  %s\n", "model", r->model);
    printf("%-12s  %s, %lld samples, algo %s\n", "calibration", r->data, (long long)r->samples,
           pare_quant_algo_name(r->o->algo));
    printf("%-12s  preset %s, W%d A%d, weights %s%s\n", "scheme",
           pare_quant_preset_name(r->o->preset), r->o->weight_bits, r->o->activation_bits,
           r->o->block_size > 0 ? "block-wise"
           : r->o->weight_quantize_type == PARE_QUANT_CHANNEL_WISE_ABS_MAX ? "per channel"
                                                                            : "per tensor",
           r->o->weight_only ? ", weight only" : "");
    printf("%-12s  %d nodes quantized, %d skipped; %d activations, %d weights, %d biases\n",
           "quantized", r->rep->n_quantized_nodes, r->rep->n_skipped_nodes, n_act, n_w, n_b);
    printf("%-12s  %d QuantizeLinear, %d DequantizeLinear, opset %d -> %d\n", "graph",
           count_op(r->q, "QuantizeLinear"), count_op(r->q, "DequantizeLinear"),
           r->rep->opset_before, r->rep->opset_after);
    if (worst_name)
        printf("%-12s  %.1f dB (%s)\n", "worst weight", worst, worst_name);
    if (r->o->recon_level == PARE_QUANT_RECON_REGION_WISE)
        printf("%-12s  %d layers, %d regions (AdaRound, %d epochs)\n", "reconstruct",
               r->rep->n_reconstructed, r->rep->n_recon_regions, r->o->recon_epochs);
    else if (r->o->recon_level != PARE_QUANT_RECON_NONE)
        printf("%-12s  %d layers (AdaRound, %d epochs)\n", "reconstruct", r->rep->n_reconstructed,
               r->o->recon_epochs);
    if (r->o->bias_correct)
        printf("%-12s  %d layers\n", "bias corr.", r->rep->n_bias_corrected);
    if (r->rep->n_warnings)
        printf("%-12s  %d (on stderr)\n", "warnings", r->rep->n_warnings);
    printf("%-12s  %s\n", "wrote", r->out);
    if (r->table)
        printf("%-12s  %s\n", "table", r->table);
    if (r->trt)
        printf("%-12s  %s\n", "trt cache", r->trt);
    if (r->has_eval) {
        printf("%-12s  %s, %lld samples\n", "eval", r->eval, (long long)r->eval_n);
        printf("%-12s  %.2f %%\n", "top-1 fp32", 100.0 * r->top1_fp32);
        printf("%-12s  %.2f %%  (%+.2f pp)\n", "top-1 quant", 100.0 * r->top1_quant,
               100.0 * (r->top1_quant - r->top1_fp32));
    }
    printf("%-12s  %.2f s (calibrate %.2f s, build %.2f s, reconstruct %.2f s, bias correction "
           "%.2f s)\n", "time", r->total_s, r->calib_s, r->build_s, r->recon_s, r->bc_s);
    if (r->errors)
        print_error_table(r->errors, r->error_s);
}

static void print_json(const quant_result *r)
{
    json_writer w;

    json_init(&w, stdout, true);
    json_begin_object(&w);
    json_key(&w, "model");
    json_string(&w, r->model);
    json_key(&w, "output");
    json_string(&w, r->out);
    json_key(&w, "data");
    json_string(&w, r->data);
    json_key(&w, "samples");
    json_int(&w, r->samples);
    json_key(&w, "algo");
    json_string(&w, pare_quant_algo_name(r->o->algo));
    json_key(&w, "preset");
    json_string(&w, pare_quant_preset_name(r->o->preset));
    json_key(&w, "weight_bits");
    json_int(&w, r->o->weight_bits);
    json_key(&w, "activation_bits");
    json_int(&w, r->o->activation_bits);
    json_key(&w, "opset");
    json_int(&w, r->rep->opset_after);
    json_key(&w, "quantize_linear");
    json_int(&w, count_op(r->q, "QuantizeLinear"));
    json_key(&w, "dequantize_linear");
    json_int(&w, count_op(r->q, "DequantizeLinear"));
    json_key(&w, "bias_corrected");
    json_int(&w, r->rep->n_bias_corrected);
    json_key(&w, "quantized_nodes");
    json_begin_array(&w);
    for (int i = 0; i < r->rep->n_quantized_nodes; i++)
        json_string(&w, r->rep->quantized_nodes[i]);
    json_end_array(&w);
    json_key(&w, "skipped_nodes");
    json_begin_array(&w);
    for (int i = 0; i < r->rep->n_skipped_nodes; i++)
        json_string(&w, r->rep->skipped_nodes[i]);
    json_end_array(&w);
    json_key(&w, "tensors");
    json_begin_array(&w);
    for (int i = 0; i < r->rep->n_tensors; i++) {
        const pare_quant_tensor *t = &r->rep->tensors[i];
        json_begin_object(&w);
        json_key(&w, "name");
        json_string(&w, t->name);
        json_key(&w, "qdq_name");
        json_string(&w, t->qdq_name);
        json_key(&w, "kind");
        json_string(&w, kind_name(t->kind));
        json_key(&w, "dtype");
        json_string(&w, pare_dtype_name(t->dtype));
        json_key(&w, "bits");
        json_int(&w, t->bits);
        json_key(&w, "axis");
        json_int(&w, t->axis);
        json_key(&w, "n_scales");
        json_int(&w, t->n_scales);
        json_key(&w, "scale");
        json_double(&w, t->scales[0]);
        json_key(&w, "zero_point");
        json_int(&w, t->zero_points[0]);
        json_key(&w, "min");
        json_double(&w, t->lo);
        json_key(&w, "max");
        json_double(&w, t->hi);
        json_key(&w, "snr_db");
        if (isnan(t->snr_db))
            json_null(&w);
        else if (isinf(t->snr_db))
            json_string(&w, "inf");
        else
            json_double(&w, t->snr_db);
        json_end_object(&w);
    }
    json_end_array(&w);
    json_key(&w, "warnings");
    json_begin_array(&w);
    for (int i = 0; i < r->rep->n_warnings; i++)
        json_string(&w, r->rep->warnings[i]);
    json_end_array(&w);
    json_key(&w, "eval");
    if (r->has_eval) {
        json_begin_object(&w);
        json_key(&w, "data");
        json_string(&w, r->eval);
        json_key(&w, "n");
        json_int(&w, r->eval_n);
        json_key(&w, "top1_fp32");
        json_double(&w, r->top1_fp32);
        json_key(&w, "top1_quant");
        json_double(&w, r->top1_quant);
        json_end_object(&w);
    } else {
        json_null(&w);
    }
    json_key(&w, "calibrate_s");
    json_double(&w, r->calib_s);
    json_key(&w, "build_s");
    json_double(&w, r->build_s);
    json_key(&w, "reconstruct_s");
    json_double(&w, r->recon_s);
    json_key(&w, "reconstructed");
    json_int(&w, r->rep->n_reconstructed);
    json_key(&w, "recon_regions");
    json_int(&w, r->rep->n_recon_regions);
    json_key(&w, "bias_correction_s");
    json_double(&w, r->bc_s);
    json_key(&w, "error_table");
    if (r->errors) {
        json_begin_array(&w);
        for (int i = 0; i < r->errors->n_rows; i++) {
            const pare_quant_error_row *e = &r->errors->rows[i];
            json_begin_object(&w);
            json_key(&w, "kind");
            json_string(&w, pare_quant_error_kind_name(e->kind));
            json_key(&w, "name");
            json_string(&w, e->name);
            json_key(&w, "node");
            json_string(&w, e->node);
            json_key(&w, "bits");
            json_int(&w, e->bits);
            json_key(&w, "sqnr_db");
            if (isinf(e->sqnr_db))
                json_string(&w, e->sqnr_db > 0 ? "inf" : "-inf");
            else
                json_double(&w, e->sqnr_db);
            json_key(&w, "mse");
            json_double(&w, e->mse);
            json_key(&w, "cosine");
            json_double(&w, e->cosine);
            json_key(&w, "n_values");
            json_int(&w, e->n_values);
            json_end_object(&w);
        }
        json_end_array(&w);
        json_key(&w, "error_table_batches");
        json_int(&w, r->errors->n_batches);
        json_key(&w, "error_table_s");
        json_double(&w, r->error_s);
    } else {
        json_null(&w);
    }
    json_key(&w, "elapsed_s");
    json_double(&w, r->total_s);
    json_end_object(&w);
    json_finish(&w);
}

/* Options from the command line; false after printing a usage error. */
static bool parse_opts(const cli_args *a, pare_quant_opts *o, long *threads, long *limit)
{
    long v;
    double d;
    pare_error err = {0};

    pare_quant_opts_init(o);
    if (cli_has(a, OPT("algo")) && pare_quant_algo_parse(cli_str(a, OPT("algo"), ""), &o->algo,
                                                         &err) != PARE_OK) {
        cli_usage_error(&quant_spec, "%s%s%s%s", err.msg, err.hint[0] ? " (" : "", err.hint,
                        err.hint[0] ? ")" : "");
        return false;
    }
    if (cli_has(a, OPT("preset")) &&
        pare_quant_preset_parse(cli_str(a, OPT("preset"), ""), &o->preset, &err) != PARE_OK) {
        cli_usage_error(&quant_spec, "%s%s%s%s", err.msg, err.hint[0] ? " (" : "", err.hint,
                        err.hint[0] ? ")" : "");
        return false;
    }
    if (o->preset == PARE_QUANT_PRESET_U8S8)
        o->reduce_range = true;
    if (cli_has(a, OPT("hist-percent"))) {
        if (!cli_get_double(&quant_spec, a, OPT("hist-percent"), 0, &d))
            return false;
        o->hist_percent = d;
    }
    v = 8;
    if (!cli_get_int(&quant_spec, a, OPT("bits"), 2, 8, &v))
        return false;
    o->weight_bits = (int)v;
    v = 8;
    if (!cli_get_int(&quant_spec, a, OPT("act-bits"), 2, 8, &v))
        return false;
    o->activation_bits = (int)v;
    v = 0;
    if (!cli_get_int(&quant_spec, a, OPT("block-size"), 2, 1 << 20, &v))
        return false;
    o->block_size = (int)v;
    v = o->batch_nums;
    if (!cli_get_int(&quant_spec, a, OPT("batch-nums"), 0, INT_MAX, &v))
        return false;
    o->batch_nums = (int)v;
    v = o->batch_size;
    if (!cli_get_int(&quant_spec, a, OPT("batch-size"), 1, 1 << 16, &v))
        return false;
    o->batch_size = (int)v;
    if (!cli_get_int(&quant_spec, a, OPT("threads"), 1, 1024, threads) ||
        !cli_get_int(&quant_spec, a, OPT("limit"), 1, LONG_MAX, limit))
        return false;
    o->n_threads = (int)*threads;
    if (cli_has(a, OPT("per-tensor")))
        o->weight_quantize_type = PARE_QUANT_W_ABS_MAX;
    o->activation_unsigned = cli_has(a, OPT("uint8"));
    o->activation_symmetric = cli_has(a, OPT("symmetric"));
    o->reduce_range = o->reduce_range || cli_has(a, OPT("reduce-range"));
    o->weight_only = cli_has(a, OPT("weight-only"));
    o->weight_mse = cli_has(a, OPT("weight-mse"));
    if (cli_has(a, OPT("outputs")) && cli_has(a, OPT("inputs-only"))) {
        cli_usage_error(&quant_spec, "--outputs and --inputs-only contradict each other");
        return false;
    }
    o->quantize_outputs = cli_has(a, OPT("outputs"))       ? PARE_QUANT_OUTPUTS_ON
                          : cli_has(a, OPT("inputs-only")) ? PARE_QUANT_OUTPUTS_OFF
                                                           : PARE_QUANT_OUTPUTS_AUTO;
    o->is_full_quantize = cli_has(a, OPT("full"));
    o->strict = cli_has(a, OPT("strict"));
    o->bias_correct = cli_has(a, OPT("bias-correction"));
    o->recon_level = PARE_QUANT_RECON_NONE;
    if (cli_has(a, OPT("recon"))) {
        const char *lv = cli_str(a, OPT("recon"), "layer-wise");
        if (!strcmp(lv, "layer-wise"))
            o->recon_level = PARE_QUANT_RECON_LAYER_WISE;
        else if (!strcmp(lv, "region-wise"))
            o->recon_level = PARE_QUANT_RECON_REGION_WISE;
        else {
            static const char *const levels[] = {"layer-wise", "region-wise"};
            const char *near = pare_closest_word(lv, levels, 2);
            cli_usage_error(&quant_spec, "--recon takes layer-wise or region-wise, got '%s'%s%s%s",
                            lv, near ? " (did you mean '" : "", near ? near : "", near ? "'?)" : "");
            return false;
        }
    }
    if (a->n_multi[OPT("region")] && o->recon_level != PARE_QUANT_RECON_REGION_WISE) {
        cli_usage_error(&quant_spec, "--region needs --recon region-wise");
        return false;
    }
    v = o->recon_epochs;
    if (!cli_get_int(&quant_spec, a, OPT("recon-epochs"), 1, 100000, &v))
        return false;
    o->recon_epochs = (int)v;
    if (cli_has(a, OPT("recon-lr"))) {
        if (!cli_get_double(&quant_spec, a, OPT("recon-lr"), 0, &d))
            return false;
        o->recon_lr = d;
    }
    o->quantize_op_types = a->multi[OPT("op-types")];
    o->n_quantize_op_types = a->n_multi[OPT("op-types")];
    o->skip_tensor_list = a->multi[OPT("skip")];
    o->n_skip_tensor_list = a->n_multi[OPT("skip")];
    o->not_quant_pattern = a->multi[OPT("pattern")];
    o->n_not_quant_pattern = a->n_multi[OPT("pattern")];
    if (pare_quant_opts_check(o, &err) != PARE_OK) {
        cli_usage_error(&quant_spec, "%s%s%s%s", err.msg, err.hint[0] ? " (" : "", err.hint,
                        err.hint[0] ? ")" : "");
        return false;
    }
    return true;
}

/* --tensor-bits NAME=BITS values; the names are copies in *text. */
static bool parse_tensor_bits(const cli_args *a, pare_quant_bits **out, char **text, int *n_out)
{
    int n = a->n_multi[OPT("tensor-bits")];
    size_t len = 0, pos = 0;

    *out = NULL;
    *text = NULL;
    *n_out = 0;
    if (n == 0)
        return true;
    for (int i = 0; i < n; i++)
        len += strlen(a->multi[OPT("tensor-bits")][i]) + 1;
    *out = pare_calloc((size_t)n, sizeof **out);
    *text = pare_alloc(len);
    if (!*out || !*text) {
        fprintf(stderr, "pare quant: out of memory\n");
        goto fail;
    }
    for (int i = 0; i < n; i++) {
        const char *src = a->multi[OPT("tensor-bits")][i];
        char *t = *text + pos, *eq, *end;
        long bits;
        memcpy(t, src, strlen(src) + 1);
        pos += strlen(src) + 1;
        eq = strrchr(t, '=');
        if (!eq || eq == t) {
            cli_usage_error(&quant_spec, "--tensor-bits '%s' is not NAME=BITS", src);
            goto fail;
        }
        *eq = '\0';
        bits = strtol(eq + 1, &end, 10);
        if (end == eq + 1 || *end || bits < 2 || bits > 8) {
            cli_usage_error(&quant_spec, "--tensor-bits '%s': BITS must be an integer in 2..8",
                            src);
            goto fail;
        }
        (*out)[i].name = t;
        (*out)[i].bits = (int)bits;
    }
    *n_out = n;
    return true;
fail:
    pare_free(*out);
    pare_free(*text);
    *out = NULL;
    *text = NULL;
    return false;
}

/* --region values as regions: "IN1,IN2:OUT1" gives inputs IN1, IN2 and
 * output OUT1. The names point into one copy of the text; free with
 * regions_fini. */
typedef struct cli_regions {
    pare_quant_region *v;
    const char **names;
    char *text;
    int n;
} cli_regions;

static void regions_fini(cli_regions *r)
{
    pare_free(r->v);
    pare_free(r->names);
    pare_free(r->text);
    memset(r, 0, sizeof *r);
}

static bool parse_regions(const cli_args *a, cli_regions *r)
{
    int n = a->n_multi[OPT("region")], k = 0;
    size_t len = 0, pos = 0;

    memset(r, 0, sizeof *r);
    if (n == 0)
        return true;
    for (int i = 0; i < n; i++)
        len += strlen(a->multi[OPT("region")][i]) + 1;
    r->v = pare_calloc((size_t)n, sizeof *r->v);
    r->names = pare_calloc(len + (size_t)n, sizeof *r->names);
    r->text = pare_alloc(len);
    if (!r->v || !r->names || !r->text) {
        regions_fini(r);
        fprintf(stderr, "pare quant: out of memory\n");
        return false;
    }
    for (int i = 0; i < n; i++) {
        const char *src = a->multi[OPT("region")][i];
        char *t = r->text + pos, *colon;
        pare_quant_region *g = &r->v[i];
        memcpy(t, src, strlen(src) + 1);
        pos += strlen(src) + 1;
        colon = strchr(t, ':');
        if (!colon || colon == t || !colon[1] || strchr(colon + 1, ':')) {
            cli_usage_error(&quant_spec, "--region '%s' is not IN1,IN2:OUT1 (input names, ':', "
                            "output names)", src);
            regions_fini(r);
            return false;
        }
        *colon = '\0';
        for (int side = 0; side < 2; side++) {
            char *p = side ? colon + 1 : t;
            const char **first = &r->names[k];
            int cnt = 0;
            for (char *tok = p;; ) {
                char *comma = strchr(tok, ',');
                if (comma)
                    *comma = '\0';
                if (!*tok) {
                    cli_usage_error(&quant_spec, "--region '%s' has an empty name", src);
                    regions_fini(r);
                    return false;
                }
                r->names[k++] = tok;
                cnt++;
                if (!comma)
                    break;
                tok = comma + 1;
            }
            if (side) {
                g->outputs = first;
                g->n_outputs = cnt;
            } else {
                g->inputs = first;
                g->n_inputs = cnt;
            }
        }
        g->where = "--region";
    }
    r->n = n;
    return true;
}

/* `--error-table` takes an optional N: a copy of argv with "0" (the default)
 * after a bare --error-table. NULL on OOM; free with pare_free. */
static char **expand_error_table(int argc, char **argv, int *new_argc)
{
    static char zero[] = "0", layer_wise[] = "layer-wise";
    char **v = pare_calloc((size_t)argc * 2 + 1, sizeof *v);
    bool options = true;
    int n = 0;

    if (!v)
        return NULL;
    for (int i = 0; i < argc; i++) {
        const char *next = i + 1 < argc ? argv[i + 1] : NULL;
        v[n++] = argv[i];
        if (!strcmp(argv[i], "--"))
            options = false;
        if (options && i > 0 && !strcmp(argv[i], "--error-table") &&
            !(next && next[0] >= '0' && next[0] <= '9' && next[strspn(next, "0123456789")] == '\0'))
            v[n++] = zero;
        /* a bare --recon is layer-wise */
        if (options && i > 0 && !strcmp(argv[i], "--recon") &&
            !(next && next[0] != '-'))
            v[n++] = layer_wise;
    }
    *new_argc = n;
    return v;
}

int cmd_quant(int argc, char **argv)
{
    cli_args args;
    pare_graph *g = NULL, *q = NULL;
    pare_dataset *ds = NULL, *eval_ds = NULL;
    pare_quant_calib *calib = NULL;
    pare_quant_report *rep = NULL;
    pare_quant_opts o;
    pare_data_opts dopts;
    pare_error err = {0};
    quant_result res;
    progress bar;
    pare_progress prog = {.report = on_progress, .user = &bar};
    long threads = 0, limit = 0;
    const char *out_path;
    double t0 = cli_now(), t;
    bool sigint = false;
    pare_quant_error_table *errors = NULL;
    long error_batches = 0;
    cli_regions regions = {0};
    pare_quant_bits *tbits = NULL;
    char *tbits_text = NULL;
    int xargc = 0;
    char **xargv = expand_error_table(argc, argv, &xargc);
    int rc = xargv ? cli_parse(&quant_spec, xargc, xargv, &args) : CLI_FAILED;

    memset(&res, 0, sizeof res);
    memset(&bar, 0, sizeof bar);
    if (!xargv) {
        memset(&args, 0, sizeof args);
        fprintf(stderr, "pare quant: out of memory\n");
    }
    if (rc != CLI_OK)
        goto out;
    if (!cli_get_int(&quant_spec, &args, OPT("error-table"), 0, INT_MAX, &error_batches)) {
        rc = CLI_USAGE;
        goto out;
    }
    if (!cli_has(&args, OPT("data"))) {
        rc = cli_usage_error(&quant_spec, "missing --data SPEC (calibration data)");
        goto out;
    }
    out_path = cli_str(&args, OPT("output"), NULL);
    if (!out_path) {
        rc = cli_usage_error(&quant_spec, "missing -o OUT.onnx");
        goto out;
    }
    if (!parse_opts(&args, &o, &threads, &limit) || !parse_regions(&args, &regions) ||
        !parse_tensor_bits(&args, &tbits, &tbits_text, &o.n_tensor_bits)) {
        rc = CLI_USAGE;
        goto out;
    }
    o.regions = regions.v;
    o.n_regions = regions.n;
    o.tensor_bits = tbits;
    /* the input is never overwritten, nor are the outputs written over each other */
    if (cli_same_file(args.pos[0], out_path) ||
        (cli_has(&args, OPT("table")) && cli_same_file(args.pos[0], cli_str(&args, OPT("table"), ""))) ||
        (cli_has(&args, OPT("trt-cache")) &&
         cli_same_file(args.pos[0], cli_str(&args, OPT("trt-cache"), ""))) ||
        (cli_has(&args, OPT("error-csv")) &&
         cli_same_file(args.pos[0], cli_str(&args, OPT("error-csv"), "")))) {
        pare_fail(&err, PARE_EINPUT, out_path, "refusing to overwrite the input model");
        pare_error_hint(&err, "write to another file");
        rc = cli_report(&err);
        goto out;
    }
    rc = cli_load_model(args.pos[0], &g);
    if (rc != CLI_OK)
        goto out;
    memset(&dopts, 0, sizeof dopts);
    dopts.search_dir = PARE_FASHION_MNIST[0] ? PARE_FASHION_MNIST : NULL;
    if (pare_dataset_open(cli_str(&args, OPT("data"), NULL), &dopts, &ds, &err) != PARE_OK) {
        rc = cli_report(&err);
        goto out;
    }
    if (cli_has(&args, OPT("eval"))) {
        dopts.limit = limit;
        if (pare_dataset_open(cli_str(&args, OPT("eval"), NULL), &dopts, &eval_ds, &err) != PARE_OK) {
            rc = cli_report(&err);
            goto out;
        }
        if (!pare_dataset_has_labels(eval_ds)) {
            pare_fail(&err, PARE_EINPUT, pare_dataset_spec(eval_ds), "--eval needs labelled data");
            rc = cli_report(&err);
            goto out;
        }
    }
    cli_sigint_install();
    sigint = true;
    progress_init(&bar, "calibrate", 0);
    t = cli_now();
    if (!o.weight_only || o.bias_correct || o.recon_level != PARE_QUANT_RECON_NONE) {
        if (pare_quant_calibrate(g, ds, &o, &prog, &calib, &err) != PARE_OK) {
            progress_finish(&bar);
            rc = cli_report(&err);
            goto out;
        }
        res.samples = pare_quant_calib_samples(calib);
    }
    res.calib_s = cli_now() - t;
    t = cli_now();
    if (pare_quant_build(g, calib, &o, &q, &rep, &err) != PARE_OK) {
        progress_finish(&bar);
        rc = cli_report(&err);
        goto out;
    }
    res.build_s = cli_now() - t;
    for (int i = 0; i < rep->n_warnings; i++)
        fprintf(stderr, "pare: warning: %s\n", rep->warnings[i]);
    if (o.recon_level != PARE_QUANT_RECON_NONE) {
        t = cli_now();
        if (pare_quant_reconstruct(g, q, ds, &o, rep, &prog, &err) != PARE_OK) {
            progress_finish(&bar);
            rc = cli_report(&err);
            goto out;
        }
        res.recon_s = cli_now() - t;
    }
    if (o.bias_correct) {
        t = cli_now();
        if (pare_quant_bias_correct(g, q, ds, &o, rep, &prog, &err) != PARE_OK) {
            progress_finish(&bar);
            rc = cli_report(&err);
            goto out;
        }
        res.bc_s = cli_now() - t;
    }
    if (cli_has(&args, OPT("error-table")) || cli_has(&args, OPT("error-csv"))) {
        t = cli_now();
        if (pare_quant_error_measure(g, q, rep, ds, &o, (int)error_batches, &prog, &errors,
                                     &err) != PARE_OK) {
            progress_finish(&bar);
            rc = cli_report(&err);
            goto out;
        }
        res.error_s = cli_now() - t;
        res.errors = errors;
    }
    progress_finish(&bar);
    if (pare_graph_save(q, out_path, &err) != PARE_OK ||
        (errors && cli_has(&args, OPT("error-csv")) &&
         pare_quant_error_save_csv(errors, cli_str(&args, OPT("error-csv"), NULL), &err) !=
             PARE_OK) ||
        (cli_has(&args, OPT("table")) && calib &&
         pare_quant_write_table(calib, &o, cli_str(&args, OPT("table"), NULL), &err) != PARE_OK) ||
        (cli_has(&args, OPT("trt-cache")) && calib &&
         pare_quant_write_trt_cache(calib, &o, cli_str(&args, OPT("trt-cache"), NULL), &err) !=
             PARE_OK)) {
        rc = cli_report(&err);
        goto out;
    }
    if (eval_ds) {
        if (top1(g, eval_ds, (int)threads, &res.top1_fp32, &err) != PARE_OK ||
            top1(q, eval_ds, (int)threads, &res.top1_quant, &err) != PARE_OK) {
            rc = cli_report(&err);
            goto out;
        }
        res.has_eval = true;
        res.eval = pare_dataset_spec(eval_ds);
        res.eval_n = pare_dataset_count(eval_ds);
    }
    res.model = args.pos[0];
    res.out = out_path;
    res.data = pare_dataset_spec(ds);
    res.table = calib ? cli_str(&args, OPT("table"), NULL) : NULL;
    res.trt = calib ? cli_str(&args, OPT("trt-cache"), NULL) : NULL;
    res.o = &o;
    res.rep = rep;
    res.q = q;
    res.total_s = cli_now() - t0;
    if (cli_has(&args, OPT("json")))
        print_json(&res);
    else
        print_text(&res);
    fflush(stdout);
    rc = CLI_OK;
out:
    if (sigint)
        cli_sigint_restore();
    pare_quant_error_table_free(errors);
    regions_fini(&regions);
    pare_free(tbits);
    pare_free(tbits_text);
    pare_quant_report_free(rep);
    pare_quant_calib_free(calib);
    pare_graph_free(q);
    pare_graph_free(g);
    pare_dataset_free(ds);
    pare_dataset_free(eval_ds);
    cli_args_fini(&args);
    pare_free(xargv);
    return rc < 0 ? CLI_OK : rc;
}
