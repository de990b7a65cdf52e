/* Job files: the YAML that `pare compress -c job.yaml` reads and the TUI saves.
 *
 * The keys follow PaddleSlim ACT (Global, TrainConfig, Distillation, QuantPost,
 * QuantAware, HyperParameterOptimization, ChannelPrune, UnstructurePrune,
 * ASPPrune, TransformerPrune) plus pare's Layers and Sensitivity sections, and
 * PaddleFleetX's `Compress: {pretrained, Quantization, Distillation}` form.
 * One schema table (core/src/job_schema.c) drives parsing, validation,
 * defaults, the writers and the reference in docs/config.md, so the spelling,
 * default and range of every key live in exactly one place.
 *
 * A loaded job is a tree of typed structs, one per section. Every section and
 * nested mapping starts with a pare_job_meta telling whether it appeared in
 * the file and which keys were set explicitly; keys left out hold their
 * defaults. Aliases (ACT's `bias_correction`, `batch_num`, `iterations`,
 * `Quantization`, ...) are folded into the canonical field on load; the
 * writers always use the canonical spelling.
 *
 * Ownership: every string and array in a pare_job belongs to the job and is
 * allocated with pare_alloc; pare_job_free releases them. Code that edits a
 * job in place should prefer pare_job_set, which keeps the ownership and the
 * "set" bits right; direct edits must free the old value with pare_free.
 * Thread-safety: a job is plain data; share it read-only or not at all. */
#ifndef PARE_JOB_H
#define PARE_JOB_H

#include <stdbool.h>
#include <stdint.h>

#include "pare/error.h"

/* ---- building blocks ---------------------------------------------------- */

/* Head of every section and nested mapping. */
typedef struct pare_job_meta {
    bool present;   /* appeared in the file, or was touched through pare_job_set */
    uint64_t set;   /* bit i = schema key i was set explicitly; ask pare_job_is_set */
    int line, col;  /* 1-based source position of the mapping; 0 when not from a file */
} pare_job_meta;

typedef struct pare_job_strs { char **v; int n; } pare_job_strs;
typedef struct pare_job_floats { double *v; int n; } pare_job_floats;
typedef struct pare_job_ints { long *v; int n; } pare_job_ints;
typedef struct pare_job_bools { bool *v; int n; } pare_job_bools;
typedef struct pare_job_enums { int *v; int n; } pare_job_enums;   /* values of one enum */
/* One reconstruction region, ACT's [[input names], [output names]]; line and
   col locate it in the file (0 when not from a file). */
typedef struct pare_job_region { pare_job_strs inputs, outputs; int line, col; } pare_job_region;
typedef struct pare_job_regions { pare_job_region *v; int n; } pare_job_regions;
/* A mapping name -> integer, in file order (tensor_bits). */
typedef struct pare_job_name_ints { char **names; long *v; int n; } pare_job_name_ints;

/* ---- Global ------------------------------------------------------------- */

typedef enum pare_job_metric {
    PARE_JOB_METRIC_TOP1, PARE_JOB_METRIC_TOP5, PARE_JOB_METRIC_COSINE, PARE_JOB_METRIC_SNR
} pare_job_metric;

typedef struct pare_job_global {
    pare_job_meta meta;
    char *model;        /* ONNX model to compress (alias model_filename, FleetX pretrained) */
    char *data;         /* pare data spec, e.g. "fashion-mnist:/path"; kept as text */
    char *eval_data;    /* data spec for evaluation; NULL = the split of `data` */
    char *save_dir;     /* output directory */
    char *input_name;   /* model input fed with the data; NULL = the only input */
    long batch_size;
    long eval_limit;    /* samples evaluated, 0 = all */
    long seed;
    long threads;       /* 0 = all cores */
    pare_job_metric metric;
} pare_job_global;

/* ---- TrainConfig -------------------------------------------------------- */

typedef enum pare_job_lr_type {
    PARE_JOB_LR_CONSTANT, PARE_JOB_LR_PIECEWISE, PARE_JOB_LR_COSINE
} pare_job_lr_type;

/* `learning_rate: 1e-4` or `learning_rate: {type: CosineAnnealingDecay, ...}`.
 * The scalar form sets only .learning_rate (type constant). */
typedef struct pare_job_lr {
    pare_job_meta meta;
    pare_job_lr_type type;
    double learning_rate;      /* base rate */
    long T_max;                /* cosine period in iterations, 0 = the whole run */
    pare_job_floats boundaries; /* PiecewiseDecay: iterations where the rate changes */
    pare_job_floats values;     /* PiecewiseDecay: boundaries.n + 1 rates */
    long warmup_steps;          /* linear warmup length, 0 = none */
    double warmup_start_lr;
} pare_job_lr;

typedef enum pare_job_optimizer_type {
    PARE_JOB_OPT_SGD, PARE_JOB_OPT_MOMENTUM, PARE_JOB_OPT_ADAM, PARE_JOB_OPT_ADAMW
} pare_job_optimizer_type;

/* `optimizer: AdamW` or `optimizer: {type: Momentum, momentum: 0.9, ...}`. */
typedef struct pare_job_optimizer {
    pare_job_meta meta;
    pare_job_optimizer_type type;
    double weight_decay;   /* after load always equal to TrainConfig.weight_decay */
    double momentum;
    bool use_nesterov;
    double beta1, beta2, epsilon;
} pare_job_optimizer;

typedef struct pare_job_train {
    pare_job_meta meta;
    long epochs;
    long train_iter;          /* alias iterations; 0 = use epochs */
    pare_job_lr learning_rate;
    pare_job_optimizer optimizer;
    double weight_decay;      /* TrainConfig.weight_decay or optimizer.weight_decay */
    double grad_clip_norm;    /* 0 = off */
    long eval_iter;           /* 0 = at the end of each epoch */
    long batch_size;          /* after load: Global.batch_size unless set */
    double label_smoothing;
    pare_job_strs freeze;     /* name patterns of weights kept fixed */
    long logging_iter;
    double origin_metric;     /* metric of the original model; only when set */
} pare_job_train;

/* ---- Distillation ------------------------------------------------------- */

typedef enum pare_job_loss {
    PARE_JOB_LOSS_SOFT_LABEL, PARE_JOB_LOSS_L2, PARE_JOB_LOSS_MSE,
    PARE_JOB_LOSS_COSINE, PARE_JOB_LOSS_FSP
} pare_job_loss;

/* pare's explicit pair form: `pairs: [{teacher: a, student: b, loss, alpha}]`. */
typedef struct pare_job_pair {
    pare_job_meta meta;
    char *teacher, *student;
    pare_job_loss loss;
    double alpha;
} pare_job_pair;

typedef struct pare_job_pairs { pare_job_pair *v; int n; } pare_job_pairs;

/* ACT's form: `node` lists value names. With the default teacher (the original
 * model) each name is both the teacher and the student value; with
 * teacher_model set the list alternates teacher, student (even length).
 * alpha and loss hold one entry for all pairs or one per pair. `node` and
 * `pairs` are exclusive. */
typedef struct pare_job_distill {
    pare_job_meta meta;
    pare_job_floats alpha;   /* a scalar in the file becomes a list of one */
    pare_job_enums loss;     /* pare_job_loss values; scalar accepted */
    pare_job_strs node;
    pare_job_pairs pairs;
    double temperature;
    char *teacher_model;     /* alias teacher_model_dir; NULL = Global.model */
    double task_weight;      /* weight of the task (label) loss */
    bool adapter;
} pare_job_distill;

/* ---- quantization ------------------------------------------------------- */

typedef enum pare_job_algo {
    PARE_JOB_ALGO_ABS_MAX, PARE_JOB_ALGO_AVG, PARE_JOB_ALGO_HIST, PARE_JOB_ALGO_KL,
    PARE_JOB_ALGO_MSE
} pare_job_algo;

typedef enum pare_job_wq_type {
    PARE_JOB_WQ_ABS_MAX, PARE_JOB_WQ_CHANNEL_WISE_ABS_MAX
} pare_job_wq_type;

typedef enum pare_job_act_type { PARE_JOB_ACT_INT8, PARE_JOB_ACT_UINT8 } pare_job_act_type;

typedef enum pare_job_preset {
    PARE_JOB_PRESET_ONNXRUNTIME, PARE_JOB_PRESET_TENSORRT, PARE_JOB_PRESET_U8S8
} pare_job_preset;

typedef enum pare_job_recon {
    PARE_JOB_RECON_NONE, PARE_JOB_RECON_LAYER, PARE_JOB_RECON_REGION
} pare_job_recon;

typedef struct pare_job_quant_post {
    pare_job_meta meta;
    long activation_bits, weight_bits;
    pare_job_algo algo;
    double hist_percent;
    bool bias_correct;            /* alias bias_correction */
    long batch_nums;              /* alias batch_num */
    long batch_size;              /* after load: Global.batch_size unless set */
    bool onnx_format;
    pare_job_strs quantize_op_types, skip_tensor_list, not_quant_pattern;
    pare_job_name_ints tensor_bits; /* weight, activation or node name -> bits */
    bool is_full_quantize;
    pare_job_wq_type weight_quantize_type;
    pare_job_act_type activation_type;
    bool activation_symmetric;
    pare_job_preset preset;
    bool reduce_range;
    pare_job_recon recon_level;
    long recon_epochs;            /* alias epochs */
    double recon_lr;              /* alias lr */
    pare_job_regions regions;     /* [[inputs], [outputs]] per region (region-wise) */
    bool simulate_activation_quant;
    bool weight_only;
    long block_size;              /* 0 = per-channel, else weights in blocks */
    bool calibration_cache;
} pare_job_quant_post;

typedef enum pare_job_aq_type {
    PARE_JOB_AQ_MOVING_AVERAGE_ABS_MAX, PARE_JOB_AQ_RANGE_ABS_MAX, PARE_JOB_AQ_ABS_MAX
} pare_job_aq_type;

typedef struct pare_job_quant_aware {   /* QuantAware, alias Quantization (FleetX) */
    pare_job_meta meta;
    long activation_bits, weight_bits;
    pare_job_wq_type weight_quantize_type;
    pare_job_act_type activation_type;
    bool activation_symmetric;
    pare_job_aq_type activation_quantize_type;
    double moving_rate;
    long window_size;
    bool use_pact;
    pare_job_strs quantize_op_types, skip_tensor_list, not_quant_pattern;
    pare_job_name_ints tensor_bits; /* weight, activation or node name -> bits */
    bool onnx_format;
} pare_job_quant_aware;

typedef struct pare_job_hpo {           /* HyperParameterOptimization */
    pare_job_meta meta;
    pare_job_enums ptq_algo;             /* pare_job_algo values */
    pare_job_bools bias_correct;
    pare_job_enums weight_quantize_type; /* pare_job_wq_type values */
    pare_job_floats hist_percent;        /* [lo, hi] */
    pare_job_ints batch_num;             /* [lo, hi] */
    long max_quant_count;                /* trials */
} pare_job_hpo;

/* ---- pruning ------------------------------------------------------------ */

typedef enum pare_job_criterion {
    PARE_JOB_CRIT_L1_NORM, PARE_JOB_CRIT_L2_NORM, PARE_JOB_CRIT_GEOMETRY_MEDIAN,
    PARE_JOB_CRIT_BN_SCALE, PARE_JOB_CRIT_RANDOM
} pare_job_criterion;

typedef struct pare_job_channel_prune {
    pare_job_meta meta;
    double pruned_ratio;
    pare_job_strs prune_params_name;   /* empty = every prunable group */
    pare_job_criterion criterion;
} pare_job_channel_prune;

typedef struct pare_job_gmp {
    pare_job_meta meta;
    long stable_iterations, pruning_iterations;
    long tunning_iterations;   /* ACT's spelling; tuning_iterations accepted */
    long pruning_steps;
    double initial_ratio;
    long resume_iteration;     /* -1 = start fresh */
} pare_job_gmp;

typedef enum pare_job_prune_strategy {
    PARE_JOB_STRATEGY_BASE, PARE_JOB_STRATEGY_GMP
} pare_job_prune_strategy;
typedef enum pare_job_prune_mode { PARE_JOB_MODE_RATIO, PARE_JOB_MODE_THRESHOLD } pare_job_prune_mode;
typedef enum pare_job_params_type {
    PARE_JOB_PARAMS_ALL, PARE_JOB_PARAMS_CONV1X1_ONLY
} pare_job_params_type;
typedef enum pare_job_mask_criterion {
    PARE_JOB_MASK_L1, PARE_JOB_MASK_RANDOM
} pare_job_mask_criterion;

typedef struct pare_job_unstructure_prune {
    pare_job_meta meta;
    pare_job_prune_strategy prune_strategy;
    pare_job_prune_mode prune_mode;
    double ratio, threshold;
    pare_job_gmp gmp_config;
    pare_job_params_type prune_params_type;   /* spelled null | conv1x1_only */
    bool local_sparsity;
    pare_job_mask_criterion criterion;
    bool global;
    char *mask_file;
} pare_job_unstructure_prune;

typedef struct pare_job_asp_prune {
    pare_job_meta meta;
    pare_job_strs prune_params_name;   /* alias prunable_layers */
    long n, m;                         /* keep n of every m weights, n < m */
} pare_job_asp_prune;

typedef struct pare_job_transformer_prune {
    pare_job_meta meta;
    double pruned_ratio;
    double heads_ratio, ffn_ratio;     /* overrides; only when set */
} pare_job_transformer_prune;

/* ---- pare's own sections ------------------------------------------------ */

/* Layers: value or weight name -> prune ratio, in file order. */
typedef struct pare_job_layers {
    pare_job_meta meta;
    char **names;
    double *ratios;
    int n;
} pare_job_layers;

typedef struct pare_job_sensitivity {
    pare_job_meta meta;
    pare_job_floats ratios;
    pare_job_criterion criterion;
    long limit;        /* evaluation samples per point */
    char *cache_dir;   /* NULL = no cache */
} pare_job_sensitivity;

/* ---- the job ------------------------------------------------------------ */

typedef struct pare_job {
    char *source;      /* name used in diagnostics ("job.yaml") */
    pare_job_global global;
    pare_job_train train;
    pare_job_distill distill;
    pare_job_quant_post quant_post;
    pare_job_quant_aware quant_aware;
    pare_job_hpo hpo;
    pare_job_channel_prune channel_prune;
    pare_job_unstructure_prune unstructure_prune;
    pare_job_asp_prune asp_prune;
    pare_job_transformer_prune transformer_prune;
    pare_job_layers layers;
    pare_job_sensitivity sensitivity;
} pare_job;

/* All problems found in one load. Each entry is a filled pare_error: where =
 * "job.yaml:LINE:COL", msg, hint (may be empty). */
typedef struct pare_job_diags {
    pare_error *v;
    int n, cap;
} pare_job_diags;

void pare_job_diags_fini(pare_job_diags *diags);   /* frees the entries; keeps *diags usable */

/* A job with every default filled and no section present; NULL on OOM. */
pare_job *pare_job_new(void);
void pare_job_free(pare_job *job);                 /* NULL is fine */

/* Parses and validates a job file. On success *out is a new job (caller frees)
 * with defaults filled and inherited values (batch sizes, weight decay)
 * resolved. On failure *out is NULL, err holds the first problem and, when
 * diags is non-NULL, diags receives every problem (appended; the caller calls
 * pare_job_diags_fini). Errors: PARE_EINPUT (syntax, unknown key or section,
 * wrong type, out of range, bad choice, duplicate or alias clash), PARE_EIO,
 * PARE_ENOMEM. */
pare_status pare_job_load(const char *path, pare_job **out, pare_job_diags *diags,
                          pare_error *err);

/* Same from memory; `name` is used in locations ("job.yaml:2:3"). */
pare_status pare_job_load_string(const char *text, const char *name, pare_job **out,
                                 pare_job_diags *diags, pare_error *err);

/* The checks that relate keys to each other (Distillation alpha/loss counts
 * against the pairs, node vs pairs, teacher/student alternation, PiecewiseDecay
 * lengths, ASPPrune n < m, weight_decay given twice), on a job in memory: the
 * loader runs them, pare_job_set does not (one key cannot be judged alone), so
 * call this after a series of edits. Locations are the sections' positions.
 * PARE_EINPUT with every problem in diags (when non-NULL). */
pare_status pare_job_validate(const pare_job *job, pare_job_diags *diags, pare_error *err);

/* What `pare compress` needs on top of a valid file: Global with model and
 * save_dir. Reports into diags like the loader; PARE_EINPUT when missing. */
pare_status pare_job_check_runnable(const pare_job *job, pare_job_diags *diags,
                                    pare_error *err);

/* Writers. Both write to a temporary file next to `path` and rename it.
 * save_resolved: every present section with every key in canonical spelling
 * and its final value (defaults filled); loading it gives a job equal to
 * `job` (pare_job_equal). save: present sections with only the keys set
 * explicitly (what the TUI saves as a plan). Errors: PARE_EIO, PARE_ENOMEM. */
pare_status pare_job_save_resolved(const pare_job *job, const char *path, pare_error *err);
pare_status pare_job_save(const pare_job *job, const char *path, pare_error *err);

/* The same text in memory (NUL-terminated, caller frees with pare_free). */
char *pare_job_to_yaml(const pare_job *job, bool resolved, pare_error *err);

/* Sets one key from one line of YAML ("4", "[Conv, Gemm]", "{type: Adam}")
 * with the loader's checks of that key, marks it set and its section present,
 * and re-resolves inherited values. Section and key names may be canonical or
 * aliases; for Layers the key is the value or weight name. Cross-key rules
 * are left to pare_job_validate. Errors: PARE_EINPUT (unknown section or key,
 * bad value; where = "Section.key"), PARE_ENOMEM; on error `job` is
 * unchanged. */
pare_status pare_job_set(pare_job *job, const char *section, const char *key,
                         const char *yaml_value, pare_error *err);

/* Whether a key was set explicitly (false for unknown names). */
bool pare_job_is_set(const pare_job *job, const char *section, const char *key);

/* Same presence of sections and same values of every key (set bits and
 * source positions are not compared). */
bool pare_job_equal(const pare_job *a, const pare_job *b);

/* The config reference (docs/config.md below its intro) generated from the
 * schema table, as Markdown. Caller frees with pare_free; NULL on OOM. */
char *pare_job_schema_markdown(void);

#endif
