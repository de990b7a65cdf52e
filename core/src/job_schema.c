/* The job schema table: every section and key of a job file, with its
 * spelling, aliases, type, default, limits and documentation. The loader,
 * the writers, pare_job_equal and the Markdown reference all read these rows,
 * so adding a key here is the whole change. */
#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "job_schema.h"
#include "pare/alloc.h"

/* Enum fields are written through int pointers. */
static_assert(sizeof(pare_job_metric) == sizeof(int), "enums must be int-sized");
static_assert(sizeof(pare_job_preset) == sizeof(int), "enums must be int-sized");

static const char *const metric_choices[] = {"top1", "top5", "cosine", "snr", NULL};
static const char *const lr_choices[] = {"constant", "PiecewiseDecay", "CosineAnnealingDecay", NULL};
static const char *const opt_choices[] = {"SGD", "Momentum", "Adam", "AdamW", NULL};
static const char *const loss_choices[] = {"soft_label", "l2", "mse", "cosine", "fsp", NULL};
static const char *const algo_choices[] = {"abs_max", "avg", "hist", "KL", "mse", NULL};
static const char *const wq_choices[] = {"abs_max", "channel_wise_abs_max", NULL};
static const char *const act_choices[] = {"int8", "uint8", NULL};
static const char *const preset_choices[] = {"onnxruntime", "tensorrt", "u8s8", NULL};
static const char *const recon_choices[] = {"none", "layer-wise", "region-wise", NULL};
static const char *const aq_choices[] = {"moving_average_abs_max", "range_abs_max", "abs_max", NULL};
static const char *const crit_choices[] = {"l1_norm", "l2_norm", "geometry_median", "bn_scale",
                                           "random", NULL};
static const char *const strategy_choices[] = {"base", "gmp", NULL};
static const char *const mode_choices[] = {"ratio", "threshold", NULL};
/* "null" also matches YAML null and Python's None, as ACT writes it. */
static const char *const params_type_choices[] = {"null", "conv1x1_only", NULL};
static const char *const mask_crit_choices[] = {"l1", "random", NULL};

#define AT(type, field) .off = offsetof(type, field)
#define RANGE(lo, hi) .min = (lo), .max = (hi), .flags = JK_MIN | JK_MAX
#define AT_LEAST(lo) .min = (lo), .flags = JK_MIN
#define RATIO .min = 0, .max = 1, .flags = JK_MIN | JK_MAX | JK_MAX_EXCL
#define SCHEMA(nm, type, rows, scalar)                                         \
    { .name = nm, .keys = rows, .n_keys = (int)(sizeof rows / sizeof rows[0]), \
      .size = sizeof(type), .scalar_key = scalar }

/* ---- Global ---- */
static const job_key global_keys[] = {
    {.name = "model", .alias = "model_filename", .type = JT_STR, AT(pare_job_global, model),
     .flags = JK_OPTIONAL, .doc = "ONNX model to compress (required by `pare compress`)"},
    {.name = "data", .type = JT_STR, AT(pare_job_global, data), .flags = JK_OPTIONAL,
     .doc = "data spec for calibration and training, e.g. `fashion-mnist` or `fashion-mnist:/path`"},
    {.name = "eval_data", .type = JT_STR, AT(pare_job_global, eval_data), .flags = JK_OPTIONAL,
     .doc = "data spec for evaluation; unset = the test split of `data`"},
    {.name = "save_dir", .type = JT_STR, AT(pare_job_global, save_dir), .flags = JK_OPTIONAL,
     .doc = "output directory (required by `pare compress`)"},
    {.name = "input_name", .type = JT_STR, AT(pare_job_global, input_name), .flags = JK_OPTIONAL,
     .doc = "model input the data feeds; unset = the model's only input"},
    {.name = "batch_size", .type = JT_INT, AT(pare_job_global, batch_size), .def = "64",
     AT_LEAST(1), .doc = "batch size; TrainConfig and QuantPost inherit it"},
    {.name = "eval_limit", .type = JT_INT, AT(pare_job_global, eval_limit), .def = "0",
     AT_LEAST(0), .doc = "samples evaluated, 0 = all"},
    {.name = "seed", .type = JT_INT, AT(pare_job_global, seed), .def = "1",
     .doc = "seed for shuffling, sampling and initialisation"},
    {.name = "threads", .type = JT_INT, AT(pare_job_global, threads), .def = "0",
     AT_LEAST(0), .doc = "worker threads, 0 = all cores"},
    {.name = "metric", .type = JT_ENUM, AT(pare_job_global, metric), .def = "top1",
     .choices = metric_choices,
     .doc = "evaluation metric; cosine and snr compare with the original model's outputs"},
};

/* ---- TrainConfig ---- */
static const job_key lr_keys[] = {
    {.name = "type", .type = JT_ENUM, AT(pare_job_lr, type), .def = "constant",
     .choices = lr_choices, .doc = "schedule"},
    {.name = "learning_rate", .type = JT_FLOAT, AT(pare_job_lr, learning_rate), .def = "0.0001",
     .min = 0, .flags = JK_MIN | JK_MIN_EXCL, .doc = "base learning rate"},
    {.name = "T_max", .type = JT_INT, AT(pare_job_lr, T_max), .def = "0", AT_LEAST(0),
     .doc = "CosineAnnealingDecay period in iterations, 0 = the whole run"},
    {.name = "boundaries", .type = JT_FLOATS, AT(pare_job_lr, boundaries), AT_LEAST(0),
     .doc = "PiecewiseDecay: iterations where the rate changes"},
    {.name = "values", .type = JT_FLOATS, AT(pare_job_lr, values), AT_LEAST(0),
     .doc = "PiecewiseDecay: one rate more than boundaries"},
    {.name = "warmup_steps", .type = JT_INT, AT(pare_job_lr, warmup_steps), .def = "0",
     AT_LEAST(0), .doc = "linear warmup iterations, 0 = none"},
    {.name = "warmup_start_lr", .type = JT_FLOAT, AT(pare_job_lr, warmup_start_lr), .def = "0",
     AT_LEAST(0), .doc = "rate at the start of the warmup"},
};
static const job_schema lr_schema = SCHEMA("TrainConfig.learning_rate", pare_job_lr, lr_keys, 1);

static const job_key opt_keys[] = {
    {.name = "type", .type = JT_ENUM, AT(pare_job_optimizer, type), .def = "AdamW",
     .choices = opt_choices, .doc = "optimizer"},
    {.name = "weight_decay", .type = JT_FLOAT, AT(pare_job_optimizer, weight_decay), .def = "0",
     AT_LEAST(0), .doc = "same as TrainConfig.weight_decay (set one of them)"},
    {.name = "momentum", .type = JT_FLOAT, AT(pare_job_optimizer, momentum), .def = "0.9",
     .min = 0, .max = 1, .flags = JK_MIN | JK_MAX | JK_MAX_EXCL, .doc = "SGD/Momentum momentum"},
    {.name = "use_nesterov", .type = JT_BOOL, AT(pare_job_optimizer, use_nesterov), .def = "false",
     .doc = "Nesterov momentum"},
    {.name = "beta1", .type = JT_FLOAT, AT(pare_job_optimizer, beta1), .def = "0.9",
     .min = 0, .max = 1, .flags = JK_MIN | JK_MAX | JK_MAX_EXCL, .doc = "Adam/AdamW beta1"},
    {.name = "beta2", .type = JT_FLOAT, AT(pare_job_optimizer, beta2), .def = "0.999",
     .min = 0, .max = 1, .flags = JK_MIN | JK_MAX | JK_MAX_EXCL, .doc = "Adam/AdamW beta2"},
    {.name = "epsilon", .type = JT_FLOAT, AT(pare_job_optimizer, epsilon), .def = "1e-08",
     .min = 0, .flags = JK_MIN | JK_MIN_EXCL, .doc = "Adam/AdamW epsilon"},
};
static const job_schema opt_schema =
    SCHEMA("TrainConfig.optimizer", pare_job_optimizer, opt_keys, 0);

/* ACT spells the optimizer `optimizer_builder: {optimizer: {type, ...},
 * weight_decay}`; these rows write TrainConfig's own fields. */
static const job_schema train_schema;
static const job_key opt_builder_keys[] = {
    {.name = "optimizer", .type = JT_SUB, AT(pare_job_train, optimizer), .sub = &opt_schema,
     .doc = "TrainConfig.optimizer"},
    {.name = "weight_decay", .type = JT_FLOAT, AT(pare_job_train, weight_decay), AT_LEAST(0),
     .doc = "TrainConfig.weight_decay"},
};
static const job_schema opt_builder_schema = {
    .name = "TrainConfig.optimizer_builder", .keys = opt_builder_keys,
    .n_keys = (int)(sizeof opt_builder_keys / sizeof opt_builder_keys[0]),
    .size = sizeof(pare_job_train), .scalar_key = -1, .parent = &train_schema};

static const job_key train_keys[] = {
    {.name = "epochs", .type = JT_INT, AT(pare_job_train, epochs), .def = "0", AT_LEAST(0),
     .doc = "training epochs"},
    {.name = "train_iter", .alias = "iterations", .type = JT_INT, AT(pare_job_train, train_iter),
     .def = "0", AT_LEAST(0), .doc = "training iterations; 0 = use epochs"},
    {.name = "learning_rate", .type = JT_SUB, AT(pare_job_train, learning_rate), .sub = &lr_schema,
     .doc = "a number, or a mapping (see TrainConfig.learning_rate)"},
    {.name = "optimizer", .type = JT_SUB, AT(pare_job_train, optimizer), .sub = &opt_schema,
     .doc = "a name, or a mapping (see TrainConfig.optimizer)"},
    {.name = "optimizer_builder", .type = JT_SUB, .off = 0, .sub = &opt_builder_schema,
     .flags = JK_COMPAT,
     .doc = "ACT's spelling: `{optimizer: {type: ...}, weight_decay: ...}` sets `optimizer` and "
            "`weight_decay`; written back as those keys"},
    {.name = "weight_decay", .type = JT_FLOAT, AT(pare_job_train, weight_decay), .def = "0",
     AT_LEAST(0), .doc = "decoupled (AdamW) or L2 weight decay"},
    {.name = "grad_clip_norm", .type = JT_FLOAT, AT(pare_job_train, grad_clip_norm), .def = "0",
     AT_LEAST(0), .doc = "clip the global gradient norm, 0 = off"},
    {.name = "eval_iter", .type = JT_INT, AT(pare_job_train, eval_iter), .def = "0", AT_LEAST(0),
     .doc = "evaluate every N iterations, 0 = at the end of each epoch"},
    {.name = "batch_size", .type = JT_INT, AT(pare_job_train, batch_size), .min = 1,
     .flags = JK_MIN | JK_INHERIT, .doc = "training batch size"},
    {.name = "label_smoothing", .type = JT_FLOAT, AT(pare_job_train, label_smoothing), .def = "0",
     RATIO, .doc = "label smoothing of the task loss"},
    {.name = "freeze", .type = JT_STRS, AT(pare_job_train, freeze), .flags = JK_SCALAR_OK,
     .doc = "name patterns of weights kept fixed"},
    {.name = "logging_iter", .type = JT_INT, AT(pare_job_train, logging_iter), .def = "50",
     AT_LEAST(1), .doc = "log every N iterations"},
    {.name = "origin_metric", .type = JT_FLOAT, AT(pare_job_train, origin_metric),
     .flags = JK_OPTIONAL, .doc = "metric of the original model (skips measuring it)"},
};

/* ---- Distillation ---- */
static const job_key pair_keys[] = {
    {.name = "teacher", .type = JT_STR, AT(pare_job_pair, teacher), .flags = JK_REQUIRED,
     .doc = "value name in the teacher"},
    {.name = "student", .type = JT_STR, AT(pare_job_pair, student), .flags = JK_REQUIRED,
     .doc = "value name in the student"},
    {.name = "loss", .type = JT_ENUM, AT(pare_job_pair, loss), .def = "soft_label",
     .choices = loss_choices, .doc = "loss between the two values"},
    {.name = "alpha", .type = JT_FLOAT, AT(pare_job_pair, alpha), .def = "1", AT_LEAST(0),
     .doc = "weight of this pair's loss"},
};
static const job_schema pair_schema = SCHEMA("Distillation.pairs", pare_job_pair, pair_keys, -1);

static const job_key distill_keys[] = {
    {.name = "alpha", .type = JT_FLOATS, AT(pare_job_distill, alpha), .def = "1", .min = 0,
     .flags = JK_MIN | JK_SCALAR_OK, .doc = "loss weight, one for all pairs or one per pair"},
    {.name = "loss", .type = JT_ENUMS, AT(pare_job_distill, loss), .def = "soft_label",
     .flags = JK_SCALAR_OK, .choices = loss_choices,
     .doc = "loss, one for all pairs or one per pair"},
    {.name = "node", .type = JT_STRS, AT(pare_job_distill, node), .flags = JK_SCALAR_OK,
     .doc = "value names; with teacher_model they alternate teacher, student; empty = the outputs"},
    {.name = "pairs", .type = JT_PAIRS, AT(pare_job_distill, pairs), .sub = &pair_schema,
     .doc = "explicit pairs (see Distillation.pairs); excludes `node`"},
    {.name = "temperature", .type = JT_FLOAT, AT(pare_job_distill, temperature), .def = "1",
     .min = 0, .flags = JK_MIN | JK_MIN_EXCL, .doc = "soft_label temperature"},
    {.name = "teacher_model", .alias = "teacher_model_dir", .type = JT_STR,
     AT(pare_job_distill, teacher_model), .flags = JK_OPTIONAL,
     .doc = "teacher ONNX model; unset = the original model"},
    {.name = "task_weight", .type = JT_FLOAT, AT(pare_job_distill, task_weight), .def = "1",
     AT_LEAST(0), .doc = "weight of the task (label) loss"},
    {.name = "adapter", .type = JT_BOOL, AT(pare_job_distill, adapter), .def = "false",
     .doc = "learn a 1x1 adapter when pair shapes differ"},
};

/* ---- QuantPost ---- */
static const job_key qpost_keys[] = {
    {.name = "activation_bits", .type = JT_INT, AT(pare_job_quant_post, activation_bits),
     .def = "8", RANGE(2, 8), .doc = "activation bits"},
    {.name = "weight_bits", .type = JT_INT, AT(pare_job_quant_post, weight_bits), .def = "8",
     RANGE(2, 8), .doc = "weight bits"},
    {.name = "algo", .type = JT_ENUM, AT(pare_job_quant_post, algo), .def = "hist",
     .choices = algo_choices, .doc = "activation calibration (case-sensitive, as in ACT)"},
    {.name = "hist_percent", .type = JT_FLOAT, AT(pare_job_quant_post, hist_percent),
     .def = "0.9999", .min = 0, .max = 1, .flags = JK_MIN | JK_MIN_EXCL | JK_MAX,
     .doc = "hist: fraction of the histogram kept"},
    {.name = "bias_correct", .alias = "bias_correction", .type = JT_BOOL,
     AT(pare_job_quant_post, bias_correct), .def = "false", .doc = "correct the bias shift"},
    {.name = "batch_nums", .alias = "batch_num", .type = JT_INT, AT(pare_job_quant_post, batch_nums),
     .def = "10", AT_LEAST(1), .doc = "calibration batches"},
    {.name = "batch_size", .type = JT_INT, AT(pare_job_quant_post, batch_size), .min = 1,
     .flags = JK_MIN | JK_INHERIT, .doc = "calibration batch size"},
    {.name = "onnx_format", .type = JT_BOOL, AT(pare_job_quant_post, onnx_format), .def = "true",
     .doc = "QuantizeLinear/DequantizeLinear pairs (the only export pare writes)"},
    {.name = "quantize_op_types", .type = JT_STRS, AT(pare_job_quant_post, quantize_op_types),
     .def = "Conv,Gemm,MatMul", .flags = JK_SCALAR_OK, .doc = "ONNX op types to quantize"},
    {.name = "skip_tensor_list", .type = JT_STRS, AT(pare_job_quant_post, skip_tensor_list),
     .flags = JK_SCALAR_OK, .doc = "weights or node names left in float"},
    {.name = "not_quant_pattern", .type = JT_STRS, AT(pare_job_quant_post, not_quant_pattern),
     .flags = JK_SCALAR_OK, .doc = "node name patterns left in float"},
    {.name = "tensor_bits", .type = JT_NAME_INTS, AT(pare_job_quant_post, tensor_bits),
     RANGE(2, 8), .doc = "bits per weight, activation or node name (a node: weight and inputs)"},
    {.name = "is_full_quantize", .type = JT_BOOL, AT(pare_job_quant_post, is_full_quantize),
     .def = "false", .doc = "quantize every supported op type"},
    {.name = "weight_quantize_type", .type = JT_ENUM,
     AT(pare_job_quant_post, weight_quantize_type), .def = "channel_wise_abs_max",
     .choices = wq_choices, .doc = "per-tensor or per-channel weights"},
    {.name = "activation_type", .type = JT_ENUM, AT(pare_job_quant_post, activation_type),
     .def = "int8", .choices = act_choices, .doc = "activation integer type"},
    {.name = "activation_symmetric", .type = JT_BOOL,
     AT(pare_job_quant_post, activation_symmetric), .def = "false",
     .doc = "symmetric activation ranges"},
    {.name = "preset", .type = JT_ENUM, AT(pare_job_quant_post, preset), .def = "onnxruntime",
     .choices = preset_choices, .doc = "export conventions of the target runtime"},
    {.name = "reduce_range", .type = JT_BOOL, AT(pare_job_quant_post, reduce_range),
     .def = "false", .doc = "7-bit weights for x86 without VNNI"},
    {.name = "recon_level", .type = JT_ENUM, AT(pare_job_quant_post, recon_level), .def = "none",
     .choices = recon_choices, .doc = "reconstruction after calibration"},
    {.name = "recon_epochs", .alias = "epochs", .type = JT_INT, AT(pare_job_quant_post, recon_epochs),
     .def = "10", AT_LEAST(1), .doc = "reconstruction epochs"},
    {.name = "recon_lr", .alias = "lr", .type = JT_FLOAT, AT(pare_job_quant_post, recon_lr),
     .def = "0.1", .min = 0, .flags = JK_MIN | JK_MIN_EXCL, .doc = "reconstruction learning rate"},
    {.name = "regions", .type = JT_REGIONS, AT(pare_job_quant_post, regions),
     .doc = "region-wise: [[input names], [output names]] per region; none: residual blocks"},
    {.name = "simulate_activation_quant", .type = JT_BOOL,
     AT(pare_job_quant_post, simulate_activation_quant), .def = "false",
     .doc = "quantize activations during reconstruction (QDrop)"},
    {.name = "weight_only", .type = JT_BOOL, AT(pare_job_quant_post, weight_only), .def = "false",
     .doc = "quantize weights only"},
    {.name = "block_size", .type = JT_INT, AT(pare_job_quant_post, block_size), .def = "0",
     AT_LEAST(0), .doc = "block-wise weight scales, 0 = off"},
    {.name = "calibration_cache", .type = JT_BOOL, AT(pare_job_quant_post, calibration_cache),
     .def = "false", .doc = "also write TensorRT's calibration.cache"},
};

/* ---- QuantAware ---- */
static const job_key qaware_keys[] = {
    {.name = "activation_bits", .type = JT_INT, AT(pare_job_quant_aware, activation_bits),
     .def = "8", RANGE(2, 8), .doc = "activation bits"},
    {.name = "weight_bits", .type = JT_INT, AT(pare_job_quant_aware, weight_bits), .def = "8",
     RANGE(2, 8), .doc = "weight bits"},
    {.name = "weight_quantize_type", .type = JT_ENUM,
     AT(pare_job_quant_aware, weight_quantize_type), .def = "channel_wise_abs_max",
     .choices = wq_choices, .doc = "per-tensor or per-channel weights"},
    {.name = "activation_type", .type = JT_ENUM, AT(pare_job_quant_aware, activation_type),
     .def = "int8", .choices = act_choices, .doc = "activation integer type"},
    {.name = "activation_symmetric", .type = JT_BOOL,
     AT(pare_job_quant_aware, activation_symmetric), .def = "false",
     .doc = "symmetric activation ranges"},
    {.name = "activation_quantize_type", .type = JT_ENUM,
     AT(pare_job_quant_aware, activation_quantize_type), .def = "moving_average_abs_max",
     .choices = aq_choices, .doc = "activation observer"},
    {.name = "moving_rate", .type = JT_FLOAT, AT(pare_job_quant_aware, moving_rate), .def = "0.9",
     .min = 0, .max = 1, .flags = JK_MIN | JK_MIN_EXCL | JK_MAX | JK_MAX_EXCL,
     .doc = "moving_average_abs_max decay"},
    {.name = "window_size", .type = JT_INT, AT(pare_job_quant_aware, window_size),
     .def = "10000", AT_LEAST(1), .doc = "range_abs_max window"},
    {.name = "use_pact", .type = JT_BOOL, AT(pare_job_quant_aware, use_pact), .def = "false",
     .doc = "learn activation clipping (PACT)"},
    {.name = "quantize_op_types", .type = JT_STRS, AT(pare_job_quant_aware, quantize_op_types),
     .def = "Conv,Gemm,MatMul", .flags = JK_SCALAR_OK, .doc = "ONNX op types to quantize"},
    {.name = "skip_tensor_list", .type = JT_STRS, AT(pare_job_quant_aware, skip_tensor_list),
     .flags = JK_SCALAR_OK, .doc = "weights or node names left in float"},
    {.name = "not_quant_pattern", .type = JT_STRS, AT(pare_job_quant_aware, not_quant_pattern),
     .flags = JK_SCALAR_OK, .doc = "node name patterns left in float"},
    {.name = "tensor_bits", .type = JT_NAME_INTS, AT(pare_job_quant_aware, tensor_bits),
     RANGE(2, 8), .doc = "bits per weight, activation or node name (a node: weight and inputs)"},
    {.name = "onnx_format", .type = JT_BOOL, AT(pare_job_quant_aware, onnx_format), .def = "true",
     .doc = "QuantizeLinear/DequantizeLinear pairs"},
};

/* ---- HyperParameterOptimization ---- */
static const job_key hpo_keys[] = {
    {.name = "ptq_algo", .type = JT_ENUMS, AT(pare_job_hpo, ptq_algo), .def = "KL,hist,avg,mse",
     .flags = JK_SCALAR_OK, .choices = algo_choices, .doc = "calibration algorithms tried"},
    {.name = "bias_correct", .alias = "bias_correction", .type = JT_BOOLS,
     AT(pare_job_hpo, bias_correct), .def = "true,false", .flags = JK_SCALAR_OK,
     .doc = "bias correction settings tried"},
    {.name = "weight_quantize_type", .type = JT_ENUMS, AT(pare_job_hpo, weight_quantize_type),
     .def = "channel_wise_abs_max", .flags = JK_SCALAR_OK, .choices = wq_choices,
     .doc = "weight quantization types tried"},
    {.name = "hist_percent", .type = JT_FLOATS, AT(pare_job_hpo, hist_percent),
     .def = "0.98,0.999", .min = 0, .max = 1, .flags = JK_MIN | JK_MIN_EXCL | JK_MAX | JK_RANGE2,
     .doc = "[lo, hi] range sampled for hist_percent"},
    {.name = "batch_num", .alias = "batch_nums", .type = JT_INTS, AT(pare_job_hpo, batch_num),
     .def = "10,30", .min = 1, .flags = JK_MIN | JK_RANGE2,
     .doc = "[lo, hi] range sampled for the calibration batches"},
    {.name = "max_quant_count", .type = JT_INT, AT(pare_job_hpo, max_quant_count), .def = "20",
     AT_LEAST(1), .doc = "trials"},
};

/* ---- pruning ---- */
static const job_key cprune_keys[] = {
    {.name = "pruned_ratio", .type = JT_FLOAT, AT(pare_job_channel_prune, pruned_ratio),
     .def = "0.25", RATIO, .doc = "fraction of channels removed from each group"},
    {.name = "prune_params_name", .type = JT_STRS, AT(pare_job_channel_prune, prune_params_name),
     .flags = JK_SCALAR_OK, .doc = "weights whose groups are pruned; empty = all"},
    {.name = "criterion", .type = JT_ENUM, AT(pare_job_channel_prune, criterion), .def = "l1_norm",
     .choices = crit_choices, .doc = "channel ranking"},
};

static const job_key gmp_keys[] = {
    {.name = "stable_iterations", .type = JT_INT, AT(pare_job_gmp, stable_iterations), .def = "0",
     AT_LEAST(0), .doc = "iterations before pruning starts"},
    {.name = "pruning_iterations", .type = JT_INT, AT(pare_job_gmp, pruning_iterations),
     .def = "0", AT_LEAST(0), .doc = "iterations over which the ratio grows"},
    {.name = "tunning_iterations", .alias = "tuning_iterations", .type = JT_INT,
     AT(pare_job_gmp, tunning_iterations), .def = "0", AT_LEAST(0),
     .doc = "iterations of fine-tuning at the final ratio (ACT's spelling)"},
    {.name = "pruning_steps", .type = JT_INT, AT(pare_job_gmp, pruning_steps), .def = "1",
     AT_LEAST(1), .doc = "times the ratio is raised"},
    {.name = "initial_ratio", .type = JT_FLOAT, AT(pare_job_gmp, initial_ratio), .def = "0.15",
     RATIO, .doc = "ratio at the first step"},
    {.name = "resume_iteration", .type = JT_INT, AT(pare_job_gmp, resume_iteration), .def = "-1",
     AT_LEAST(-1), .doc = "iteration to resume from, -1 = start fresh"},
};
static const job_schema gmp_schema = SCHEMA("UnstructurePrune.gmp_config", pare_job_gmp, gmp_keys, -1);

static const job_key uprune_keys[] = {
    {.name = "prune_strategy", .type = JT_ENUM, AT(pare_job_unstructure_prune, prune_strategy),
     .def = "base", .choices = strategy_choices, .doc = "one-shot or gradual (GMP)"},
    {.name = "prune_mode", .type = JT_ENUM, AT(pare_job_unstructure_prune, prune_mode),
     .def = "ratio", .choices = mode_choices, .doc = "by ratio or by magnitude threshold"},
    {.name = "ratio", .type = JT_FLOAT, AT(pare_job_unstructure_prune, ratio), .def = "0.5",
     RATIO, .doc = "fraction of weights zeroed"},
    {.name = "threshold", .type = JT_FLOAT, AT(pare_job_unstructure_prune, threshold),
     .def = "0.01", AT_LEAST(0), .doc = "threshold mode: weights below it are zeroed"},
    {.name = "gmp_config", .type = JT_SUB, AT(pare_job_unstructure_prune, gmp_config),
     .sub = &gmp_schema, .doc = "gradual schedule (see UnstructurePrune.gmp_config)"},
    {.name = "prune_params_type", .type = JT_ENUM,
     AT(pare_job_unstructure_prune, prune_params_type), .def = "null",
     .choices = params_type_choices, .doc = "null = every weight, or 1x1 convolutions only"},
    {.name = "local_sparsity", .type = JT_BOOL, AT(pare_job_unstructure_prune, local_sparsity),
     .def = "false", .doc = "ratio mode: the ratio holds per weight, not overall"},
    {.name = "criterion", .type = JT_ENUM, AT(pare_job_unstructure_prune, criterion), .def = "l1",
     .choices = mask_crit_choices, .doc = "weight ranking"},
    {.name = "global", .type = JT_BOOL, AT(pare_job_unstructure_prune, global), .def = "true",
     .doc = "rank weights across layers"},
    {.name = "mask_file", .type = JT_STR, AT(pare_job_unstructure_prune, mask_file),
     .flags = JK_OPTIONAL, .doc = "load masks from this file instead of computing them"},
};

static const job_key asp_keys[] = {
    {.name = "prune_params_name", .alias = "prunable_layers", .type = JT_STRS,
     AT(pare_job_asp_prune, prune_params_name), .flags = JK_SCALAR_OK,
     .doc = "weights pruned N:M; empty = all eligible"},
    {.name = "n", .type = JT_INT, AT(pare_job_asp_prune, n), .def = "2", AT_LEAST(1),
     .doc = "weights kept in each group of m"},
    {.name = "m", .type = JT_INT, AT(pare_job_asp_prune, m), .def = "4", AT_LEAST(2),
     .doc = "group size"},
};

static const job_key tprune_keys[] = {
    {.name = "pruned_ratio", .type = JT_FLOAT, AT(pare_job_transformer_prune, pruned_ratio),
     .def = "0.25", RATIO, .doc = "fraction of heads and FFN units removed"},
    {.name = "heads_ratio", .type = JT_FLOAT, AT(pare_job_transformer_prune, heads_ratio),
     .min = 0, .max = 1, .flags = JK_MIN | JK_MAX | JK_MAX_EXCL | JK_OPTIONAL,
     .doc = "override for attention heads"},
    {.name = "ffn_ratio", .type = JT_FLOAT, AT(pare_job_transformer_prune, ffn_ratio),
     .min = 0, .max = 1, .flags = JK_MIN | JK_MAX | JK_MAX_EXCL | JK_OPTIONAL,
     .doc = "override for FFN hidden units"},
};

static const job_key sens_keys[] = {
    {.name = "ratios", .type = JT_FLOATS, AT(pare_job_sensitivity, ratios),
     .def = "0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9", .min = 0, .max = 1,
     .flags = JK_MIN | JK_MIN_EXCL | JK_MAX | JK_MAX_EXCL | JK_SCALAR_OK,
     .doc = "prune ratios measured for each group"},
    {.name = "criterion", .type = JT_ENUM, AT(pare_job_sensitivity, criterion), .def = "l1_norm",
     .choices = crit_choices, .doc = "channel ranking"},
    {.name = "limit", .type = JT_INT, AT(pare_job_sensitivity, limit), .def = "1000", AT_LEAST(0),
     .doc = "evaluation samples per point, 0 = all"},
    {.name = "cache_dir", .type = JT_STR, AT(pare_job_sensitivity, cache_dir), .flags = JK_OPTIONAL,
     .doc = "directory of cached results; unset = no cache"},
};

static const job_schema global_schema = SCHEMA("Global", pare_job_global, global_keys, -1);
static const job_schema train_schema = SCHEMA("TrainConfig", pare_job_train, train_keys, -1);
static const job_schema distill_schema = SCHEMA("Distillation", pare_job_distill, distill_keys, -1);
static const job_schema qpost_schema = SCHEMA("QuantPost", pare_job_quant_post, qpost_keys, -1);
static const job_schema qaware_schema = SCHEMA("QuantAware", pare_job_quant_aware, qaware_keys, -1);
static const job_schema hpo_schema =
    SCHEMA("HyperParameterOptimization", pare_job_hpo, hpo_keys, -1);
static const job_schema cprune_schema =
    SCHEMA("ChannelPrune", pare_job_channel_prune, cprune_keys, -1);
static const job_schema uprune_schema =
    SCHEMA("UnstructurePrune", pare_job_unstructure_prune, uprune_keys, -1);
static const job_schema asp_schema = SCHEMA("ASPPrune", pare_job_asp_prune, asp_keys, -1);
static const job_schema tprune_schema =
    SCHEMA("TransformerPrune", pare_job_transformer_prune, tprune_keys, -1);
static const job_schema sens_schema = SCHEMA("Sensitivity", pare_job_sensitivity, sens_keys, -1);

const job_section job_sections[] = {
    {"Global", NULL, offsetof(pare_job, global), &global_schema,
     "Model, data, output and evaluation shared by every method."},
    {"TrainConfig", NULL, offsetof(pare_job, train), &train_schema,
     "Fine-tuning for QuantAware, pruning and Distillation."},
    {"Distillation", NULL, offsetof(pare_job, distill), &distill_schema,
     "Teacher/student pairs and their losses. Without `node` or `pairs` the model outputs "
     "are paired."},
    {"QuantPost", NULL, offsetof(pare_job, quant_post), &qpost_schema,
     "Post-training quantization (PTQ) to QDQ ONNX."},
    {"QuantAware", "Quantization", offsetof(pare_job, quant_aware), &qaware_schema,
     "Quantization-aware training (QAT)."},
    {"HyperParameterOptimization", NULL, offsetof(pare_job, hpo), &hpo_schema,
     "Search over PTQ settings; the best trial by the eval metric is kept."},
    {"ChannelPrune", NULL, offsetof(pare_job, channel_prune), &cprune_schema,
     "Structured channel pruning that physically shrinks the tensors."},
    {"UnstructurePrune", NULL, offsetof(pare_job, unstructure_prune), &uprune_schema,
     "Unstructured (mask) pruning, one-shot or gradual."},
    {"ASPPrune", NULL, offsetof(pare_job, asp_prune), &asp_schema, "N:M (2:4) sparsity."},
    {"TransformerPrune", NULL, offsetof(pare_job, transformer_prune), &tprune_schema,
     "Attention head and FFN pruning."},
    {"Layers", NULL, offsetof(pare_job, layers), NULL,
     "pare's per-layer prune ratios: a mapping of value or weight name to a ratio in [0, 1). "
     "Entries override ChannelPrune.pruned_ratio for their group."},
    {"Sensitivity", NULL, offsetof(pare_job, sensitivity), &sens_schema,
     "Per-group sensitivity analysis (pare)."},
};
const int job_n_sections = (int)(sizeof job_sections / sizeof job_sections[0]);

const job_section *job_section_find(const char *name)
{
    for (int i = 0; i < job_n_sections; i++)
        if (!strcmp(job_sections[i].name, name) ||
            (job_sections[i].alias && !strcmp(job_sections[i].alias, name)))
            return &job_sections[i];
    return NULL;
}

int job_key_find(const job_schema *s, const char *name)
{
    for (int i = 0; i < s->n_keys; i++)
        if (!strcmp(s->keys[i].name, name) || (s->keys[i].alias && !strcmp(s->keys[i].alias, name)))
            return i;
    return -1;
}

int job_n_choices(const job_key *k)
{
    int n = 0;
    while (k->choices && k->choices[n])
        n++;
    return n;
}

const char *job_choice_name(const job_key *k, int value)
{
    return value >= 0 && value < job_n_choices(k) ? k->choices[value] : "?";
}

static int choice_index(const job_key *k, const char *text)
{
    for (int i = 0; k->choices && k->choices[i]; i++)
        if (!strcmp(k->choices[i], text))
            return i;
    return -1;
}

/* Items of a default list: "a,b,c" -> count and the i-th item copied to buf. */
static int def_count(const char *def)
{
    int n = 1;
    if (!def || !*def)
        return 0;
    for (const char *p = def; *p; p++)
        n += *p == ',';
    return n;
}

static void def_item(const char *def, int i, char *buf, size_t size)
{
    const char *p = def, *end;
    size_t len;

    while (i-- > 0)
        p = strchr(p, ',') + 1;
    end = strchr(p, ',');
    len = end ? (size_t)(end - p) : strlen(p);
    if (len >= size)
        len = size - 1;
    memcpy(buf, p, len);
    buf[len] = '\0';
}

pare_status job_fields_default(const job_schema *s, void *base)
{
    for (int i = 0; i < s->n_keys; i++) {
        const job_key *k = &s->keys[i];
        void *f = JOB_FIELD(base, k);
        int n = def_count(k->def);
        char item[64];

        if (k->flags & JK_COMPAT)
            continue;

        switch (k->type) {
        case JT_STR:
            *(char **)f = NULL;
            if (k->def && !(*(char **)f = pare_strdup(k->def)))
                return PARE_ENOMEM;
            break;
        case JT_INT: *(long *)f = k->def ? strtol(k->def, NULL, 10) : 0; break;
        case JT_FLOAT: *(double *)f = k->def ? strtod(k->def, NULL) : 0.0; break;
        case JT_BOOL: *(bool *)f = k->def && !strcmp(k->def, "true"); break;
        case JT_ENUM: *(int *)f = k->def ? choice_index(k, k->def) : 0; break;
        case JT_STRS: {
            pare_job_strs *l = f;
            l->n = 0;
            l->v = n ? pare_calloc((size_t)n, sizeof *l->v) : NULL;
            if (n && !l->v)
                return PARE_ENOMEM;
            for (int j = 0; j < n; j++, l->n++) {
                def_item(k->def, j, item, sizeof item);
                if (!(l->v[j] = pare_strdup(item)))
                    return PARE_ENOMEM;
            }
            break;
        }
        case JT_FLOATS: {
            pare_job_floats *l = f;
            l->v = n ? pare_calloc((size_t)n, sizeof *l->v) : NULL;
            l->n = l->v ? n : 0;
            if (n && !l->v)
                return PARE_ENOMEM;
            for (int j = 0; j < n; j++) {
                def_item(k->def, j, item, sizeof item);
                l->v[j] = strtod(item, NULL);
            }
            break;
        }
        case JT_INTS: {
            pare_job_ints *l = f;
            l->v = n ? pare_calloc((size_t)n, sizeof *l->v) : NULL;
            l->n = l->v ? n : 0;
            if (n && !l->v)
                return PARE_ENOMEM;
            for (int j = 0; j < n; j++) {
                def_item(k->def, j, item, sizeof item);
                l->v[j] = strtol(item, NULL, 10);
            }
            break;
        }
        case JT_BOOLS: {
            pare_job_bools *l = f;
            l->v = n ? pare_calloc((size_t)n, sizeof *l->v) : NULL;
            l->n = l->v ? n : 0;
            if (n && !l->v)
                return PARE_ENOMEM;
            for (int j = 0; j < n; j++) {
                def_item(k->def, j, item, sizeof item);
                l->v[j] = !strcmp(item, "true");
            }
            break;
        }
        case JT_ENUMS: {
            pare_job_enums *l = f;
            l->v = n ? pare_calloc((size_t)n, sizeof *l->v) : NULL;
            l->n = l->v ? n : 0;
            if (n && !l->v)
                return PARE_ENOMEM;
            for (int j = 0; j < n; j++) {
                def_item(k->def, j, item, sizeof item);
                l->v[j] = choice_index(k, item);
            }
            break;
        }
        case JT_REGIONS: {
            pare_job_regions *l = f;
            l->v = NULL;
            l->n = 0;
            break;
        }
        case JT_SUB: {
            pare_status rc = job_fields_default(k->sub, f);
            if (rc != PARE_OK)
                return rc;
            break;
        }
        case JT_PAIRS: {
            pare_job_pairs *l = f;
            l->v = NULL;
            l->n = 0;
            break;
        }
        case JT_NAME_INTS: {
            pare_job_name_ints *l = f;
            l->names = NULL;
            l->v = NULL;
            l->n = 0;
            break;
        }
        }
    }
    return PARE_OK;
}

void job_field_free(const job_key *k, void *f)
{
    if (k->flags & JK_COMPAT)
        return;
    switch (k->type) {
    case JT_STR:
        pare_free(*(char **)f);
        *(char **)f = NULL;
        break;
    case JT_STRS: {
        pare_job_strs *l = f;
        for (int j = 0; j < l->n; j++)
            pare_free(l->v[j]);
        pare_free(l->v);
        l->v = NULL;
        l->n = 0;
        break;
    }
#define FREE_LIST(T)                                                           \
    do {                                                                       \
        T *l = f;                                                              \
        pare_free(l->v);                                                       \
        l->v = NULL;                                                           \
        l->n = 0;                                                              \
    } while (0)
    case JT_FLOATS: FREE_LIST(pare_job_floats); break;
    case JT_INTS: FREE_LIST(pare_job_ints); break;
    case JT_BOOLS: FREE_LIST(pare_job_bools); break;
    case JT_ENUMS: FREE_LIST(pare_job_enums); break;
#undef FREE_LIST
    case JT_REGIONS: {
        pare_job_regions *l = f;
        for (int j = 0; j < l->n; j++) {
            pare_job_strs *io[2] = {&l->v[j].inputs, &l->v[j].outputs};
            for (int s = 0; s < 2; s++) {
                for (int q = 0; q < io[s]->n; q++)
                    pare_free(io[s]->v[q]);
                pare_free(io[s]->v);
            }
        }
        pare_free(l->v);
        l->v = NULL;
        l->n = 0;
        break;
    }
    case JT_SUB: job_fields_free(k->sub, f); break;
    case JT_PAIRS: {
        pare_job_pairs *l = f;
        for (int j = 0; j < l->n; j++)
            job_fields_free(k->sub, &l->v[j]);
        pare_free(l->v);
        l->v = NULL;
        l->n = 0;
        break;
    }
    case JT_NAME_INTS: {
        pare_job_name_ints *l = f;
        for (int j = 0; j < l->n; j++)
            pare_free(l->names[j]);
        pare_free(l->names);
        pare_free(l->v);
        l->names = NULL;
        l->v = NULL;
        l->n = 0;
        break;
    }
    case JT_INT:
    case JT_FLOAT:
    case JT_BOOL:
    case JT_ENUM: break;
    }
}

void job_fields_free(const job_schema *s, void *base)
{
    for (int i = 0; i < s->n_keys; i++)
        job_field_free(&s->keys[i], JOB_FIELD(base, &s->keys[i]));
}

int job_field_is_default(const job_key *k, const void *base)
{
    const void *f = JOB_CFIELD(base, k);
    int n = def_count(k->def);
    char item[64];

    if (k->flags & JK_COMPAT)
        return 1;
    switch (k->type) {
    case JT_STR: {
        const char *v = *(char *const *)f;
        return k->def ? v && !strcmp(v, k->def) : v == NULL;
    }
    case JT_INT: return *(const long *)f == (k->def ? strtol(k->def, NULL, 10) : 0);
    case JT_FLOAT: return *(const double *)f == (k->def ? strtod(k->def, NULL) : 0.0);
    case JT_BOOL: return *(const bool *)f == (k->def && !strcmp(k->def, "true"));
    case JT_ENUM: return *(const int *)f == (k->def ? choice_index(k, k->def) : 0);
    case JT_STRS: {
        const pare_job_strs *l = f;
        if (l->n != n)
            return 0;
        for (int j = 0; j < n; j++) {
            def_item(k->def, j, item, sizeof item);
            if (strcmp(l->v[j], item))
                return 0;
        }
        return 1;
    }
    case JT_FLOATS: {
        const pare_job_floats *l = f;
        if (l->n != n)
            return 0;
        for (int j = 0; j < n; j++) {
            def_item(k->def, j, item, sizeof item);
            if (l->v[j] != strtod(item, NULL))
                return 0;
        }
        return 1;
    }
    case JT_INTS: {
        const pare_job_ints *l = f;
        if (l->n != n)
            return 0;
        for (int j = 0; j < n; j++) {
            def_item(k->def, j, item, sizeof item);
            if (l->v[j] != strtol(item, NULL, 10))
                return 0;
        }
        return 1;
    }
    case JT_BOOLS: {
        const pare_job_bools *l = f;
        if (l->n != n)
            return 0;
        for (int j = 0; j < n; j++) {
            def_item(k->def, j, item, sizeof item);
            if (l->v[j] != !strcmp(item, "true"))
                return 0;
        }
        return 1;
    }
    case JT_ENUMS: {
        const pare_job_enums *l = f;
        if (l->n != n)
            return 0;
        for (int j = 0; j < n; j++) {
            def_item(k->def, j, item, sizeof item);
            if (l->v[j] != choice_index(k, item))
                return 0;
        }
        return 1;
    }
    case JT_REGIONS: return ((const pare_job_regions *)f)->n == 0;
    case JT_PAIRS: return ((const pare_job_pairs *)f)->n == 0;
    case JT_NAME_INTS: return ((const pare_job_name_ints *)f)->n == 0;
    case JT_SUB:
        for (int i = 0; i < k->sub->n_keys; i++)
            if (!job_field_is_default(&k->sub->keys[i], f))
                return 0;
        return 1;
    }
    return 0;
}
