/* Post-training quantization: observers, calibration, QDQ graph building,
 * bias correction, calibration tables.
 *
 * Quantization is represented in the graph as QuantizeLinear/DequantizeLinear
 * pairs (ONNX Runtime's QDQ format), so the same graph is simulated by pare's
 * executor (fake-quant) and exported to ONNX Runtime or TensorRT.
 *
 * Flow: pare_quant_opts_init -> set fields -> pare_quant_calibrate (runs the
 * fp32 graph over batch_nums batches and keeps, per activation tensor,
 * streaming statistics: min/max, per-batch extremes and a histogram of |x|;
 * never the activations themselves) -> pare_quant_build (a new graph with Q/DQ
 * pairs, plus a report) -> optionally pare_quant_bias_correct -> save the
 * graph, pare_quant_write_table.
 *
 * Which tensors get Q/DQ (see pare_quant_opts):
 * - a node is "quantized" when its op type is in quantize_op_types (default
 *   Conv, Gemm, MatMul; with is_full_quantize also Add, Mul, Concat, pooling,
 *   Relu...), and none of skip_tensor_list names its weight, and no
 *   not_quant_pattern is a substring of its name, of an output name or of a
 *   weight name;
 * - every float non-initializer input of a quantized node (an "activation")
 *   gets one Q/DQ pair shared by all quantized consumers, unless the tensor is
 *   in skip_tensor_list (then those consumers read it in float and only their
 *   weights are quantized);
 * - weights: the initializer of Conv/ConvTranspose input 1, Gemm input 1 and
 *   MatMul initializer inputs are stored quantized (<w>_quantized) feeding a
 *   DequantizeLinear; Conv/Gemm biases become int32 with scale = input scale x
 *   weight scale (only when the input activation is quantized);
 * - skip_tensor_list semantics: naming a weight (initializer) skips the whole
 *   node that reads it; naming an activation skips only that tensor's Q/DQ;
 *   a node name skips that node;
 * - with quantize_outputs (the default for ONNX Runtime), the outputs of
 *   quantized nodes get a pair too (graph outputs excepted), read by every
 *   consumer; a Relu that is the only reader of such an output takes the
 *   pair on its own output instead (asymmetric activations only).
 * Activation Q/DQ below 8 bits is preceded by a Clip to the n-bit range
 * (QuantizeLinear saturates only at the 8-bit container's limits). Names in
 * the QDQ graph follow ONNX Runtime: <t>_QuantizeLinear_Output,
 * <t>_DequantizeLinear_Output, <t>_scale, <t>_zero_point, <w>_quantized.
 *
 * Thread-safety: calls are independent; objects are used by one thread at a
 * time. Core never prints: problems that do not stop the job (unknown skip
 * names, clipped biases) are warnings in the report. */
#ifndef PARE_QUANT_H
#define PARE_QUANT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pare/data.h"
#include "pare/error.h"
#include "pare/graph.h"
#include "pare/progress.h"
#include "pare/tensor.h"

/* Activation range algorithms (PaddleSlim QuantPost.algo names). */
/* recon_level (PaddleSlim): learned rounding of the quantized weights. */
typedef enum pare_quant_recon {
    PARE_QUANT_RECON_NONE,
    PARE_QUANT_RECON_LAYER_WISE,   /* "layer-wise": AdaRound per Conv/Gemm/MatMul */
    PARE_QUANT_RECON_REGION_WISE   /* "region-wise": AdaRound of all weights of a region
                                      jointly, on the region's output error (BRECQ) */
} pare_quant_recon;

/* A region-wise reconstruction region (ACT's [[inputs], [outputs]]): the
 * nodes that compute the outputs from the inputs. Names are activations of
 * the float graph; strings are borrowed. where locates the region for error
 * messages ("job.yaml:31:7", "--region"; NULL: "regions"). */
typedef struct pare_quant_region {
    const char *const *inputs;
    int n_inputs;
    const char *const *outputs;
    int n_outputs;
    const char *where;
} pare_quant_region;

/* One per-tensor bit width (tensor_bits). */
typedef struct pare_quant_bits {
    const char *name;  /* a weight, an activation or a node of the float graph (borrowed) */
    int bits;          /* 2..8 */
} pare_quant_bits;

typedef enum pare_quant_algo {
    PARE_QUANT_ABS_MAX,  /* "abs_max": global min / max over all batches */
    PARE_QUANT_AVG,      /* "avg": mean over batches of each batch's min / max */
    PARE_QUANT_HIST,     /* "hist": hist_percent percentile of |x| */
    PARE_QUANT_KL,       /* "KL": TensorRT entropy threshold of |x| */
    PARE_QUANT_MSE       /* "mse": threshold minimising the expected quantization MSE */
} pare_quant_algo;

/* Weight granularity (PaddleSlim weight_quantize_type). */
typedef enum pare_quant_weight_type {
    PARE_QUANT_CHANNEL_WISE_ABS_MAX, /* per output channel (Conv 0, ConvTranspose 1,
                                        Gemm 0 if transB else 1, MatMul 1) */
    PARE_QUANT_W_ABS_MAX             /* one scale per tensor */
} pare_quant_weight_type;

/* Conventions of the exported graph. */
typedef enum pare_quant_preset {
    /* ONNX Runtime S8S8: int8 symmetric weights (+-127, zp 0), int8 asymmetric
       activations (uint8 with activation_unsigned). */
    PARE_QUANT_PRESET_ONNXRUNTIME,
    /* TensorRT: symmetric int8 activations and weights; Q/DQ also on both
       inputs of residual Add and on Concat inputs (one shared scale). */
    PARE_QUANT_PRESET_TENSORRT,
    /* ONNX Runtime U8S8 for x86 without VNNI: uint8 asymmetric activations,
       int8 symmetric weights with reduce_range (7-bit weights, +-64). */
    PARE_QUANT_PRESET_U8S8
} pare_quant_preset;

/* Options; fields are named after PaddleSlim's QuantPost keys where one
 * exists. Arrays of strings are borrowed for the duration of each call. */
typedef enum pare_quant_outputs {
    PARE_QUANT_OUTPUTS_AUTO,
    PARE_QUANT_OUTPUTS_ON,
    PARE_QUANT_OUTPUTS_OFF
} pare_quant_outputs;

typedef struct pare_quant_opts {
    int activation_bits;           /* 2..8; default 8 */
    int weight_bits;               /* 2..8; default 8 */
    pare_quant_algo algo;          /* default PARE_QUANT_HIST */
    double hist_percent;           /* hist: percentile in (0, 1]; default 0.9999 */
    int hist_bins;                 /* histogram bins for hist/KL/mse; default 2048 */
    int kl_quantized_bins;         /* KL: quantized bins of a signed symmetric grid; default
                                      128 (TensorRT). One-sided tensors (min >= 0) with
                                      asymmetric activations use twice as many: all levels
                                      then lie on [0, t] */
    bool bias_correct;             /* pare_quant_bias_correct should run (callers decide) */
    int batch_nums;                /* calibration batches; 0 = the whole dataset; default 10 */
    int batch_size;                /* default 32 */
    const char *const *quantize_op_types; /* NULL: Conv, Gemm, MatMul */
    int n_quantize_op_types;
    const char *const *skip_tensor_list;  /* exact value names */
    int n_skip_tensor_list;
    const char *const *not_quant_pattern; /* substrings of node or value names */
    int n_not_quant_pattern;
    bool is_full_quantize;         /* also Add, Mul, Concat, pooling, Relu... */
    pare_quant_weight_type weight_quantize_type; /* default channel-wise */
    bool weight_mse;               /* search each weight scale's clip range (81 steps from
                                      abs max down to 20 % of it) for the least squared
                                      quantization error; pays off below 8 bits */
    bool onnx_format;              /* QDQ format; the only one pare writes (default true;
                                      false is PARE_EUNSUPPORTED) */
    pare_quant_preset preset;      /* default onnxruntime */
    bool activation_unsigned;      /* onnxruntime preset: uint8 activations
                                      (YAML activation_type: uint8) */
    bool activation_symmetric;     /* onnxruntime preset: symmetric activation ranges
                                      (int8: +-127, zp 0; uint8: zp 128) */
    bool reduce_range;             /* 7-bit weights (set by the u8s8 preset) */
    bool weight_only;              /* only weights get Q/DQ */
    /* Q/DQ on the outputs of quantized nodes too (not graph outputs), read
       by all their consumers, so ONNX Runtime fuses DQ -> Conv -> Q into
       QLinearConv / QLinearMatMul and runs integer kernels; a Relu right
       after a quantized node then carries the pair on its output (ORT
       drops the Relu into the Q). AUTO: on for the onnxruntime and u8s8
       presets (ORT's quantizer layout), off for tensorrt (pairs only on the
       inputs of quantized nodes, TensorRT's explicit-quantization layout). */
    pare_quant_outputs quantize_outputs;
    int block_size;                /* > 0: block-wise weight scales along the input
                                      axis (opset 21 DequantizeLinear); 0: off */
    bool strict;                   /* unknown names in skip lists and tensor_bits are errors */
    /* Per-tensor widths overriding weight_bits / activation_bits, with
       skip_tensor_list's name semantics: a weight name sets the weight bits
       of the node reading it, an activation name that activation's bits, a
       node name both (its weight and its activation inputs). A value name
       wins over a node name; an activation read by several named nodes takes
       the smallest width. Unknown names: warnings with a did-you-mean hint
       (PARE_EINPUT when strict). */
    const pare_quant_bits *tensor_bits;
    int n_tensor_bits;
    pare_quant_recon recon_level;  /* pare_quant_reconstruct should run (callers decide) */
    int recon_epochs;              /* passes over the calibration batches per layer or
                                      region; default 20 */
    double recon_lr;               /* Adam learning rate of the rounding variables; default 0.05 */
    const pare_quant_region *regions; /* region-wise; NULL: the default regions (see
                                         pare_quant_reconstruct) */
    int n_regions;
    int n_threads;                 /* executor threads; 0 = default */
} pare_quant_opts;

/* Defaults as listed above. */
void pare_quant_opts_init(pare_quant_opts *o);

/* "abs_max" / "avg" / "hist" / "KL" / "mse" (PaddleSlim spelling; "kl" is
 * accepted too) and back. Parse returns PARE_EINPUT with a did-you-mean hint. */
const char *pare_quant_algo_name(pare_quant_algo a);
pare_status pare_quant_algo_parse(const char *s, pare_quant_algo *out, pare_error *err);
/* "onnxruntime" / "tensorrt" / "u8s8". */
const char *pare_quant_preset_name(pare_quant_preset p);
pare_status pare_quant_preset_parse(const char *s, pare_quant_preset *out, pare_error *err);

/* Checks bit widths, percent, bins, batch settings; PARE_EINPUT naming the field. */
pare_status pare_quant_opts_check(const pare_quant_opts *o, pare_error *err);

/* ---- scale and zero point ----------------------------------------------------- */

/* Whether o puts Q/DQ pairs on quantized nodes' outputs (resolves AUTO). */
bool pare_quant_outputs_on(const pare_quant_opts *o);

/* Integer range of a quantized type with `bits` bits in an 8-bit container
 * (ONNX Runtime's table for 8 bits): unsigned 0..2^b-1; signed symmetric
 * +-(2^(b-1)-1); signed asymmetric -2^(b-1)..2^(b-1)-1. reduce_range at 8 bits
 * gives uint8 0..127 and int8 -64..64; below 8 bits it removes one bit. */
void pare_quant_qrange(int bits, bool is_signed, bool symmetric, bool reduce_range,
                       int32_t *qmin, int32_t *qmax);

/* ONNX Runtime's compute_scale_zp: the range is widened to include 0,
 * symmetric uses +-max(|lo|, |hi|), scale = (hi - lo) / (qmax - qmin), a scale
 * below FLT_MIN (or not finite) becomes 1 with zero point 0, and
 * zp = round(qmin - lo / scale) clamped to [qmin, qmax]. */
void pare_quant_scale_zp(float lo, float hi, int32_t qmin, int32_t qmax, bool symmetric,
                         float *scale, int32_t *zero_point);

/* ---- observers ---------------------------------------------------------------------
 * Streaming statistics of one tensor: each add() is one batch. Memory is the
 * histogram (hist_bins doubles); its range starts at the first batch's
 * max |x| and doubles (merging bin pairs, so counts stay exact) whenever a
 * later batch goes past it. */

typedef struct pare_quant_observer pare_quant_observer;

/* hist_bins <= 0: no histogram (abs_max and avg only). NULL on OOM. */
pare_quant_observer *pare_quant_observer_new(int hist_bins);
void pare_quant_observer_free(pare_quant_observer *o);
/* One batch of n values. Non-finite values are counted and skipped. */
void pare_quant_observer_add(pare_quant_observer *o, const float *x, int64_t n);
/* Observed extremes (0, 0 before any value). */
void pare_quant_observer_minmax(const pare_quant_observer *o, float *min, float *max);
int64_t pare_quant_observer_count(const pare_quant_observer *o);
int64_t pare_quant_observer_nonfinite(const pare_quant_observer *o);
/* The range [lo, hi] the algorithm picks for this tensor. bits is the
 * activation width (mse and KL depend on it); the threshold t of the |x|
 * algorithms gives [max(min, -t), min(max, t)]. PARE_EINPUT when the
 * algorithm needs a histogram the observer does not keep. */
pare_status pare_quant_observer_range(const pare_quant_observer *o, const pare_quant_opts *opts,
                                      int bits, float *lo, float *hi, pare_error *err);

/* ---- calibration -------------------------------------------------------------------- */

typedef struct pare_quant_calib pare_quant_calib;

/* Runs g in fp32 on the first batch_nums x batch_size samples of the
 * dataset's epoch-0 order (fewer when the dataset is smaller; only whole
 * batches unless the dataset is smaller than one batch) and observes every
 * activation tensor that the options would quantize. progress gets one event
 * per batch (stage "calibrate", unit "batch"); a false return stops with
 * PARE_ECANCELED. Errors: options (PARE_EINPUT), unknown skip names when
 * strict (PARE_EINPUT with a did-you-mean hint), executor and dataset errors,
 * PARE_ENUMERIC when an activation is NaN/Inf. The caller owns *out on
 * success (pare_quant_calib_free). */
pare_status pare_quant_calibrate(const pare_graph *g, pare_dataset *ds, const pare_quant_opts *opts,
                                 const pare_progress *progress, pare_quant_calib **out,
                                 pare_error *err);
void pare_quant_calib_free(pare_quant_calib *c);

/* Calibrated tensors, in graph order; name and observer are borrowed. */
int pare_quant_calib_count(const pare_quant_calib *c);
const char *pare_quant_calib_name(const pare_quant_calib *c, int i);
const pare_quant_observer *pare_quant_calib_observer(const pare_quant_calib *c, int i);
/* Index of the tensor called name, or -1. */
int pare_quant_calib_find(const pare_quant_calib *c, const char *name);
int64_t pare_quant_calib_samples(const pare_quant_calib *c);

/* ---- building ------------------------------------------------------------------------ */

typedef enum pare_quant_kind {
    PARE_QUANT_ACTIVATION,
    PARE_QUANT_WEIGHT,
    PARE_QUANT_BIAS
} pare_quant_kind;

/* One tensor that got Q/DQ. */
typedef struct pare_quant_tensor {
    char *name;            /* in the original graph */
    char *qdq_name;        /* the DequantizeLinear output its quantized consumers read */
    char *stored_name;     /* weights/biases: the integer initializer ("<w>_quantized");
                              activations: the QuantizeLinear output */
    pare_quant_kind kind;
    pare_dtype dtype;      /* PARE_I8, PARE_U8 or PARE_I32 (bias) */
    int bits;
    int32_t qmin, qmax;
    int axis;              /* per-channel / block axis; -1 per tensor */
    int block_size;        /* 0 unless block-wise */
    int n_scales;
    float *scales;         /* n_scales entries */
    int32_t *zero_points;  /* n_scales entries */
    float lo, hi;          /* float range quantized (per-tensor ranges; for per-channel
                              weights the overall extremes) */
    double mse;            /* weights and biases: mean squared quantization error;
                              activations: NAN */
    double snr_db;         /* weights and biases: 10 log10(sum w^2 / sum err^2); +inf
                              when exact; activations: NAN */
} pare_quant_tensor;

/* An original name and the name that stands for it in the QDQ graph. Nodes
 * keep their names; a quantized tensor's consumers read qdq_name. */
typedef struct pare_quant_name_map {
    char *original;
    char *qdq;
} pare_quant_name_map;

typedef struct pare_quant_report {
    int n_tensors;
    pare_quant_tensor *tensors;
    int n_quantized_nodes;
    char **quantized_nodes;      /* names of the nodes whose inputs were quantized */
    int n_skipped_nodes;
    char **skipped_nodes;        /* candidate nodes left in float by skip lists/patterns */
    int n_map;
    pare_quant_name_map *map;
    int n_warnings;
    char **warnings;             /* "skip_tensor_list: 'conv1.weigth' is not a value
                                    of the model (did you mean 'conv1.weight'?)" */
    int opset_before, opset_after;
    int n_bias_corrected;        /* set by pare_quant_bias_correct */
    int n_reconstructed;         /* set by pare_quant_reconstruct: layers */
    int n_recon_regions;         /* set by pare_quant_reconstruct: regions learnt jointly */
} pare_quant_report;

void pare_quant_report_free(pare_quant_report *r);
/* The entry for an original tensor name, or NULL. Borrowed. */
const pare_quant_tensor *pare_quant_report_find(const pare_quant_report *r, const char *name);
/* The QDQ-graph name standing for an original name (the name itself when
 * unchanged). Borrowed from the report or from name. */
const char *pare_quant_report_map_name(const pare_quant_report *r, const char *name);

/* Builds the QDQ graph from g (which is not changed) and the calibration (may
 * be NULL for weight_only). The opset of ai.onnx is raised to 13 (21 with
 * block_size) when lower; a node whose op changed form on the way is
 * PARE_EUNSUPPORTED. Errors: options, unknown names when strict, an
 * activation with no calibration entry (PARE_EINPUT, hint: calibrate with
 * the same options), PARE_ENOMEM. The caller owns *qdq and *report on
 * success (report may be NULL when not wanted). */
pare_status pare_quant_build(const pare_graph *g, const pare_quant_calib *calib,
                             const pare_quant_opts *opts, pare_graph **qdq,
                             pare_quant_report **report, pare_error *err);

/* Bias correction on a graph made by pare_quant_build from g: for each
 * quantized Conv/Gemm with an int32 bias, in topological order, runs g and
 * qdq on the calibration batches (as pare_quant_calibrate picks them), takes
 * the mean per-channel difference of the node's output (qdq - fp32) and
 * subtracts it from the float bias before re-quantizing it, so later layers
 * see the corrected earlier ones. Edits qdq's bias initializers in place and
 * sets report->n_bias_corrected (report may be NULL). Progress: stage
 * "bias_correct", one event per layer. Errors: an empty dataset
 * (PARE_EINPUT), executor and dataset errors, PARE_ECANCELED (layers
 * already corrected stay corrected: qdq is still a valid model). */
pare_status pare_quant_bias_correct(const pare_graph *g, pare_graph *qdq, pare_dataset *ds,
                                    const pare_quant_opts *opts, pare_quant_report *report,
                                    const pare_progress *progress, pare_error *err);

/* Reconstruction (AdaRound) on a graph made by pare_quant_build from g.
 * Layer-wise (recon_level layer-wise): for each Conv/Gemm/MatMul with an int8
 * weight, in topological order, learns per weight whether to round down or
 * up so that the layer's output on its quantized input (as qdq computes it,
 * earlier layers already reconstructed) matches g's fp32 output over the
 * calibration batches (recon_epochs passes, Adam with recon_lr; the rounding
 * regulariser anneals from beta 20 to 2 after a 20 % warm-up).
 * Region-wise: the same, but the weights of all layers inside a region learn
 * together against the mean squared error of the region's outputs (the
 * region as qdq computes it, with its activation Q/DQ pairs, vs g), fed
 * with the region's inputs as qdq computes them. Regions run in the order of
 * their first layer; a layer inside several regions is learnt by the first,
 * then stays fixed; layers outside every region are reconstructed
 * layer-wise. Without o->regions the regions are every residual block (from
 * the value both inputs of an Add are computed from, to the Add's output);
 * in a graph without one, consecutive pairs of quantized layers (the first's
 * input to the second's output). BatchNormalization inside a region uses
 * its running statistics.
 * Rewrites qdq's int8 weights in place (scales unchanged) and sets
 * report->n_reconstructed and n_recon_regions (report may be NULL; when
 * given, each weight keeps the integer range the report lists). Run it
 * before pare_quant_bias_correct. Memory: one layer's (region's) inputs and
 * outputs over the calibration batches. Progress: stage "reconstruct", one
 * event per layer (unit "layer") or per region and per layer outside regions
 * (unit "region"). Errors: PARE_EINPUT for epochs < 1 or lr <= 0, an empty
 * dataset, a region naming a value g does not have (did-you-mean hint), a
 * weight, an output that does not depend on the region's inputs or needs a
 * value they do not give (where = the region's where); executor errors (an
 * op without a backward is PARE_EUNSUPPORTED); PARE_ECANCELED. */
pare_status pare_quant_reconstruct(const pare_graph *g, pare_graph *qdq, pare_dataset *ds,
                                   const pare_quant_opts *o, pare_quant_report *report,
                                   const pare_progress *progress, pare_error *err);

/* ---- outputs -------------------------------------------------------------------------- */

/* calibration_table.txt: a '#' header documenting the format, then one line
 * per calibrated activation, "name min max" (the range the algorithm picked,
 * %.9g). Written to a temporary name beside path, then renamed. */
pare_status pare_quant_write_table(const pare_quant_calib *c, const pare_quant_opts *opts,
                                   const char *path, pare_error *err);
/* TensorRT calibration.cache: "TRT-8600-EntropyCalibration2" then
 * "name: xxxxxxxx", the big-endian hex of the float32 bits of
 * scale = max(|lo|, |hi|) / 127. */
pare_status pare_quant_write_trt_cache(const pare_quant_calib *c, const pare_quant_opts *opts,
                                       const char *path, pare_error *err);

/* ---- which layer hurts: per-tensor error table (core/src/quant_error.c) -------------
 *
 * For a QDQ graph qdq built from g with report, over the first n_batches
 * calibration batches of ds (batch_size from opts, epoch-0 order as
 * pare_quant_calibrate reads them):
 * - every quantized activation: x vs DQ(Q(x)), both read in qdq (so x
 *   already carries the error of earlier layers; the row is the error this
 *   Q/DQ pair adds);
 * - every quantized weight: w vs DQ(Q(w)) from the stored integers, scales
 *   and zero points (once; it does not depend on the data);
 * - every output of a quantized node: qdq's value vs g's value of the same
 *   name on the same samples: the error accumulated up to that point.
 * Streaming: sums in double per batch; no activation is kept past a batch. */

typedef enum pare_quant_error_kind {
    PARE_QUANT_ERR_ACTIVATION,   /* x vs DQ(Q(x)) */
    PARE_QUANT_ERR_WEIGHT,       /* w vs DQ(Q(w)) */
    PARE_QUANT_ERR_OUTPUT        /* quantized model vs fp32 model at a node's output */
} pare_quant_error_kind;

typedef struct pare_quant_error_row {
    char *name;            /* value name in g */
    char *node;            /* OUTPUT: its producer; otherwise the first quantized consumer */
    pare_quant_error_kind kind;
    int bits;              /* 0 for OUTPUT rows */
    double sqnr_db;        /* 10 log10(sum x^2 / sum (x - y)^2); +inf when exact, -inf when
                              x is all zero and y is not */
    double mse;            /* sum (x - y)^2 / n */
    double cosine;         /* sum xy / sqrt(sum x^2 sum y^2) over the flattened values; 1
                              when both are all zero */
    int64_t n_values;
} pare_quant_error_row;

typedef struct pare_quant_error_table {
    int n_rows;
    pare_quant_error_row *rows;  /* worst first: ascending sqnr_db, then kind, then name */
    int n_batches;
    int64_t n_samples;
} pare_quant_error_table;

/* Measures the table. n_batches <= 0 uses opts->batch_nums (0 there: the
 * whole dataset). Progress: stage "error_table", one event per batch.
 * Errors: an empty dataset (PARE_EINPUT), a report that does not match qdq
 * (PARE_EINPUT), executor and dataset errors, PARE_ECANCELED. The caller owns
 * *out on success (pare_quant_error_table_free). */
pare_status pare_quant_error_measure(const pare_graph *g, const pare_graph *qdq,
                                     const pare_quant_report *report, pare_dataset *ds,
                                     const pare_quant_opts *opts, int n_batches,
                                     const pare_progress *progress, pare_quant_error_table **out,
                                     pare_error *err);
void pare_quant_error_table_free(pare_quant_error_table *t);
/* "activation" / "weight" / "output". */
const char *pare_quant_error_kind_name(pare_quant_error_kind k);
/* CSV: kind,name,node,bits,sqnr_db,mse,cosine,n_values (worst first; +inf
 * written as "inf"). Temp name, then rename. Errors: PARE_EIO. */
pare_status pare_quant_error_save_csv(const pare_quant_error_table *t, const char *path,
                                      pare_error *err);

/* ---- quantization sensitivity (core/src/quant_sens.c) ---------------------------------
 *
 * Calibrates g once with opts->quant on the first batch_nums batches of ds,
 * then measures the metric on every sample of ds (top-1 with labels, else
 * the mean cosine similarity of the outputs to g's) for:
 * - fp32 (g itself) and full quantization (the nodes pare_quant_build
 *   quantizes with opts->quant: the "layers");
 * - per layer L, "only L" (every other layer added to skip_tensor_list:
 *   PaddleSlim's AnalysisPTQ) and "all but L" (L added: NNCF's revert-one).
 * With opts->search, starts from full quantization and greedily reverts
 * (adds to the skip list) the layer whose reverting gives the best metric,
 * re-measuring every remaining candidate after each addition, until
 * fp32 - metric <= target_drop or every layer is reverted.
 * Layers are skipped by their weight's name (what skip_tensor_list expects;
 * a weight skips the whole node), or by node name when they read no weight.
 *
 * Cache: a text file, one point per line,
 *   q1 <TAB> model-hash <TAB> mode <TAB> layers <TAB> config <TAB> data <TAB> metric <TAB> value
 * with mode fp32 / full / only / allbut, layers the skip names (only: the
 * one quantized layer; allbut: the reverted layers, comma-joined in graph
 * order), config "algo/W<bits>A<bits>/preset/granularity[/full]", data
 * "<spec>:<count>". A point is appended and flushed as soon as it is
 * measured; an interrupted run resumes. */

typedef enum pare_quant_sens_metric {
    PARE_QUANT_SENS_AUTO,      /* top-1 with labels, else cosine */
    PARE_QUANT_SENS_TOP1,
    PARE_QUANT_SENS_COSINE
} pare_quant_sens_metric;

typedef struct pare_quant_sens_opts {
    const pare_quant_opts *quant;  /* base options (skip lists are kept and extended) */
    pare_quant_sens_metric metric;
    int batch;                     /* evaluation batch; 0: 64 */
    bool search;                   /* run the greedy revert search for target_drop */
    double target_drop;            /* >= 0, in the metric's units (top-1 as a fraction:
                                      0.01 = 1 point) */
    bool skip_only;                /* do not measure "only L" (the greedy search needs
                                      "all but L" only) */
    const char *cache_path;        /* NULL: no cache */
    const pare_progress *progress; /* stages "calibrate", then "quant_sens" per point */
} pare_quant_sens_opts;

typedef struct pare_quant_sens_layer {
    char *node;                    /* node name in g */
    char *op_type;
    char *skip_name;               /* its weight's name, or the node name */
    double only;                   /* metric with only this layer quantized (NAN if not measured) */
    double all_but;                /* metric with every layer but this one quantized */
} pare_quant_sens_layer;

typedef struct pare_quant_sens_result {
    pare_quant_sens_metric metric; /* TOP1 or COSINE */
    int64_t n_samples;
    double fp32, full;             /* metric of g and of full quantization */
    int n_layers;
    pare_quant_sens_layer *layers; /* graph order */
    int *by_only;                  /* layer indices, largest fp32 - only first */
    int *by_recovery;              /* layer indices, largest all_but - full first */
    /* greedy search (opts->search) */
    bool has_target;
    double target_drop;
    int n_skip;
    int *skip;                     /* layer indices in the order they were reverted */
    double *skip_metric;           /* metric after each reversion */
    double final_metric;           /* with every layer in skip reverted (full when none) */
    bool met;                      /* fp32 - final_metric <= target_drop */
    int64_t computed, from_cache;
    double seconds;
    uint64_t model_hash;
} pare_quant_sens_result;

/* Errors: options (PARE_EINPUT; a negative target_drop), TOP1 without labels, a model with no
 * quantizable layer (PARE_EINPUT, hint: --op-types), calibration, build and
 * executor errors, PARE_EIO for the cache, PARE_ECANCELED when progress asks
 * to stop (points so far are in the cache). The caller owns *out on success. */
pare_status pare_quant_sens_run(const pare_graph *g, pare_dataset *ds,
                                const pare_quant_sens_opts *opts, pare_quant_sens_result **out,
                                pare_error *err);
void pare_quant_sens_result_free(pare_quant_sens_result *r);

#endif
