/* The job runner behind `pare compress -c job.yaml`: PaddleSlim ACT's
 * auto-compression loop, headless, on any ONNX model.
 *
 * pare_compress_run runs the stages a job's sections ask for, in ACT's order:
 *
 *   1. eval      the original model's metric (Global.metric on eval data);
 *      sensitivity  with pare's Sensitivity section, a sweep of the
 *                original model's channel groups (pare_sens_run), reported
 *                in sensitivity.csv
 *   2. prune     structured: ChannelPrune (every prunable group, or the
 *                groups of prune_params_name) with Layers' per-group
 *                overrides, physically shrinking tensors; then unstructured
 *                masks: UnstructurePrune (ratio, threshold, mask_file, or a
 *                GMP schedule that raises the ratio during training) and
 *                ASPPrune (N:M). TransformerPrune removes attention heads
 *                (heads_ratio, else pruned_ratio; pare_prune_heads_apply)
 *                and FFN hidden units (the prunable channel groups produced
 *                only by MatMul/Gemm; ffn_ratio, else pruned_ratio).
 *   3. train     TrainConfig fine-tuning (pare_train), distilled when the
 *                Distillation section is present: the teacher is the
 *                original model (Global.model as loaded) unless
 *                Distillation.teacher_model names another; pairs come from
 *                `pairs`, `node`, or default to the first outputs. Masks are
 *                re-applied after every optimizer step; GMP advances there.
 *                QuantAware trains here too (quantization-aware training:
 *                Q/DQ inserted first, ranges updated by hooks, PACT clips
 *                learned with use_pact; core/src/qat.h).
 *   4. calibrate QuantPost (PTQ): calibrate, build the QDQ graph, optional
 *                layer-wise reconstruction and bias correction.
 *      hpo       with HyperParameterOptimization: max_quant_count PTQ trials
 *                over ptq_algo x bias_correct x weight_quantize_type x
 *                hist_percent [lo, hi] x batch_num [lo, hi] (random search
 *                seeded by Global.seed), the best by the metric is kept;
 *                HPO implies QuantPost (its keys at their defaults).
 *   5. eval      the compressed model's metric.
 *
 * Progress events use the stages "eval", "sensitivity", "prune", "train"
 * (and the trainer's "eval"), "calibrate" (also "bias_correct",
 * "reconstruct"), "hpo" and a last "write" before the rename; returning
 * false cancels.
 *
 * Paths: Global.model, Distillation.teacher_model, UnstructurePrune.mask_file
 * and the file names in idx:/npy:/npz: data specs are relative to
 * opts.base_dir (the job file's directory; NULL = the working directory);
 * Global.save_dir is relative to the working directory, like any output path
 * of the CLI. Evaluation data: Global.eval_data, else the test split of a
 * fashion-mnist `data`, else `data` itself; Global.eval_limit samples.
 *
 * Outputs (save_dir): model.onnx, config.resolved.yaml (the job as run,
 * pare_job_save_resolved), calibration_table.txt (PTQ and QAT),
 * calibration.cache (QuantPost.calibration_cache), sensitivity.csv (pare's
 * Sensitivity section: a sweep of the original model, reported, not used to
 * choose ratios), report.json, report.md.
 * They are written into a fresh directory "<save_dir>.tmp-<pid>" beside
 * save_dir, which is renamed to save_dir at the very end; on any error or
 * cancellation it is removed, so save_dir is either the complete result or
 * untouched. An existing save_dir is refused (PARE_EINPUT) unless opts.force,
 * which replaces it only once the new one is complete, and only when it is
 * empty or an earlier job's output (it holds report.json). A save_dir that
 * holds the input model or the teacher is always refused; the input model is
 * only read.
 *
 * Ownership: the job is borrowed for the call; *out belongs to the caller
 * (pare_compress_report_fini). Thread-safety: one run per job and dataset;
 * the progress callback runs on the caller's thread. */
#ifndef PARE_COMPRESS_H
#define PARE_COMPRESS_H

#include <stdbool.h>
#include <stdint.h>

#include "pare/error.h"
#include "pare/job.h"
#include "pare/progress.h"

typedef struct pare_compress_opts {
    const char *base_dir;          /* relative input paths resolve here; NULL = cwd */
    const char *save_dir;          /* overrides Global.save_dir when non-NULL */
    bool force;                    /* replace an existing save_dir */
    bool dry_run;                  /* check model, data and stages; run and write nothing */
    int n_threads;                 /* > 0 overrides Global.threads */
    const char *search_dir;        /* Fashion-MNIST directory after $PARE_FASHION_MNIST */
    const pare_progress *progress;
} pare_compress_opts;

#define PARE_COMPRESS_MAX_STAGES 16
#define PARE_COMPRESS_PATH_MAX 1024

/* One stage as run (or, for a dry run, as planned). */
typedef struct pare_compress_stage {
    char name[16];                 /* "eval", "prune", "train", "qat", "calibrate", "hpo" */
    char detail[256];              /* what it did ("12 groups, ratio 0.25") */
    double seconds;
} pare_compress_stage;

/* One HyperParameterOptimization trial. */
typedef struct pare_compress_trial {
    int algo;                      /* pare_job_algo */
    bool bias_correct;
    int weight_quantize_type;      /* pare_job_wq_type */
    double hist_percent;
    int batch_nums;
    double metric;
    double seconds;
} pare_compress_trial;

/* One weighted layer (Conv, ConvTranspose, Gemm, MatMul with an initializer
 * weight) of the original model and what became of it. */
typedef struct pare_compress_layer {
    char name[128];                /* node name (op type when unnamed) */
    char op[24];
    int64_t out_before, out_after; /* output channels (weight dim 0; Gemm per transB) */
    int64_t params_before, params_after;  /* weight elements */
    double sparsity;               /* zero weights after, in [0, 1] */
    bool quantized;                /* its weight is stored int8 */
} pare_compress_layer;

typedef struct pare_compress_report {
    char model[PARE_COMPRESS_PATH_MAX];     /* input model as resolved */
    char save_dir[PARE_COMPRESS_PATH_MAX];
    char eval_data[256];                    /* spec evaluated on; "" without evaluation */
    const char *metric_name;                /* "top1", "top5", "cosine", "snr"; static */
    bool has_metric;
    int64_t eval_samples;
    double metric_before, metric_after;
    int64_t params_before, params_after;    /* float structure before quantization */
    double flops_before, flops_after;       /* per sample */
    int64_t bytes_before, bytes_after;      /* model file sizes */
    double sparsity;                        /* masked weights (unstructured/N:M); 0 else */
    int n_stages;
    pare_compress_stage stages[PARE_COMPRESS_MAX_STAGES];
    /* training (n_train_steps 0 when no training ran) */
    int64_t train_steps;
    double train_first_loss, train_last_loss;
    /* quantization */
    bool quantized;
    int n_quantized_nodes;
    int n_trials;
    pare_compress_trial *trials;            /* HPO trials (owned) */
    int best_trial;                         /* -1 without HPO */
    int n_layers;
    pare_compress_layer *layers;            /* per-layer table (owned) */
    bool has_sensitivity;                   /* sensitivity.csv written (Sensitivity section) */
    int n_warnings;
    char **warnings;                        /* owned */
    bool dry_run;
    double seconds;
} pare_compress_report;

/* Runs the job. out may be NULL. opts may be NULL (defaults: paths as
 * written, no force, no dry run, Global.threads, no progress). On success save_dir holds the outputs
 * (unless dry_run) and *out describes them. Errors:
 *   PARE_EINPUT: not runnable (pare_job_check_runnable), a save_dir that
 *     force may not replace, TransformerPrune
 *     on a model without an attention block pare can match, an existing
 *     save_dir without force, a save_dir holding the input model, a Layers or
 *     prune_params_name entry that names no group (where = the job's
 *     line:column, did-you-mean), GMP or QuantAware without TrainConfig,
 *     metric top1/top5 on unlabelled data, data that does not fit the model;
 *   PARE_EUNSUPPORTED: recon_level region-wise, the fsp loss in a job,
 *     onnx_format false;
 *   PARE_EIO, PARE_ENOMEM; the stages' own errors (executor, trainer,
 *     quantizer, PARE_ENUMERIC);
 *   PARE_ECANCELED: progress returned false; nothing is left in save_dir.
 * On error *out holds the stages run so far (still call _fini). */
pare_status pare_compress_run(const pare_job *job, const pare_compress_opts *opts,
                              pare_compress_report *out, pare_error *err);

void pare_compress_report_fini(pare_compress_report *r);

/* The report as the JSON document written to report.json / report.md
 * (NUL-terminated; caller frees with pare_free). NULL on OOM. */
char *pare_compress_report_json(const pare_compress_report *r);
char *pare_compress_report_markdown(const pare_compress_report *r);

#endif
