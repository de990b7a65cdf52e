/* Quantization-aware training (QuantAware): the fake-quant graph, the range
 * hooks pare_train calls, and the export back to ONNX Runtime's QDQ form.
 *
 * qat_prepare calibrates g briefly (abs_max over a few batches: the initial
 * ranges) and builds the QDQ graph with pare_quant_build, then turns it into
 * a trainable one:
 *   weights  float initializer -> QuantizeLinear -> DequantizeLinear
 *            (the optimizer updates the float weight; the Q/DQ pair's
 *            straight-through backward passes its gradient);
 *   biases   left in float (an int32 bias would freeze them and its scale
 *            depends on the moving activation scale);
 *   activations keep their Q/DQ pairs; their scale and zero point are
 *            initializers the hooks rewrite in place.
 * The executor reads every initializer through a view of the graph's data,
 * and nodes with a trained input are never folded, so edits to scales made
 * by the hooks are seen by the next run of the same plan (no exec option is
 * needed; tests/unit/test_qat.c pins that).
 *
 * Hooks (pare_train_hooks, user = the qat_state):
 *   after_forward  reads the input of each activation QuantizeLinear from the
 *                  training plan and updates its range per
 *                  activation_quantize_type (PaddleSlim's rules):
 *                    moving_average_abs_max: state = r*state + 1,
 *                      accum = r*accum + max|x|, scale = accum / state
 *                    range_abs_max: the max of the last window_size batch
 *                      maxima
 *                    abs_max: the running max
 *                  the range is [0, a] when no negative value was ever seen,
 *                  else [-a, a]; scale and zero point follow
 *                  pare_quant_scale_zp for the activation type;
 *   after_step     takes the PACT clip values the optimizer just updated
 *                  (qat_pact_sync) and recomputes weight scales from the
 *                  current float weights (per output channel or per tensor
 *                  abs max, symmetric).
 * qat_export folds each weight QuantizeLinear into an int8 initializer
 * "<w>_quantized" and re-quantizes biases to int32 with scale = input
 * scale x weight scale, as pare_quant_build writes them.
 *
 * Ownership: qat_prepare's *out graph and *st belong to the caller; the state
 * keeps names only (no graph pointers), so it serves the trainer's working
 * copy and the trained result alike. Not thread-safe. */
#ifndef PARE_QAT_H
#define PARE_QAT_H

#include <stdbool.h>
#include <stdint.h>

#include "pare/data.h"
#include "pare/error.h"
#include "pare/exec.h"
#include "pare/graph.h"
#include "pare/job.h"
#include "pare/progress.h"
#include "pare/quant.h"
#include "pare/train.h"

typedef struct qat_state qat_state;

/* calib: the data of the initial ranges (calib_batches batches of
 * batch_size from its epoch-0 order). Errors: PARE_EUNSUPPORTED for
 * onnx_format false; pare_quant_calibrate / pare_quant_build errors. */
pare_status qat_prepare(const pare_graph *g, pare_dataset *calib, const pare_job_quant_aware *qa,
                        int batch_size, int calib_batches, int n_threads,
                        const pare_progress *progress, pare_graph **out, qat_state **st,
                        pare_error *err);
void qat_free(qat_state *st);

/* pare_train_hooks callbacks; user is a qat_state. They return false only
 * when an internal error occurred (qat_error tells which). */
bool qat_after_forward(void *user, pare_exec *x, pare_graph *g, const pare_train_step_info *info);
bool qat_after_step(void *user, pare_exec *x, pare_graph *g, const pare_train_step_info *info);
/* The first error a hook met (code PARE_OK when none). */
const pare_error *qat_error(const qat_state *st);

/* Updates ranges from one forward pass of x (a plan of g that keeps the
 * activations); what after_forward does. */
pare_status qat_observe(qat_state *st, const pare_exec *x, pare_graph *g, pare_error *err);
/* PACT (use_pact): each activation pair is preceded by
 * Clip(x, Neg(a), a), or Clip(x, 0, a) for tensors that were never negative,
 * where a is a scalar initializer "<name>_pact_max" starting at the
 * calibrated range. a is trained by pare_train itself: pass
 * qat_pact_extras as opts.extra, and the trainer's optimizer and schedule
 * update a from the Clip backward's gradient,
 *   dL/da = sum(dL/dy, x > a) - sum(dL/dy, x < -a)
 * (the second term through the Neg), with its own rate multiplier and
 * weight decay (PaddleSlim's PACT: the same optimizer, L2 decay 1e-4; both
 * defaults here, qat_set_pact_opts changes them). The pair's range is
 * [-a or 0, a]. The export folds Neg(a) into a constant; the Clip stays in
 * the exported model. */
/* The extras to train (borrowed from st, names valid until qat_free; *n is
 * 0 without PACT). */
const pare_train_extra *qat_pact_extras(const qat_state *st, int *n);
void qat_set_pact_opts(qat_state *st, double lr_mult, double decay);
/* Reads every clip value from g (clamping it to >= 1e-3 in place) into the
 * pair's range, scale and zero point: what after_step does first, and what
 * after_forward does for PACT pairs instead of observing. */
pare_status qat_pact_sync(qat_state *st, pare_graph *g, pare_error *err);
/* The clip value of activation `name` as last synced; NAN without PACT. */
float qat_pact_alpha(const qat_state *st, const char *name);

/* Recomputes weight scales of g from its float weights; after_step. */
pare_status qat_update_weights(qat_state *st, pare_graph *g, pare_error *err);

/* The current scale of activation `name` (original tensor name) in g; NAN
 * when it is not quantized. For tests and reports. */
float qat_activation_scale(const qat_state *st, const pare_graph *g, const char *name);

/* Rewrites a trained QAT graph in place into the stored QDQ form. */
pare_status qat_export(const qat_state *st, pare_graph *g, pare_error *err);

/* calibration_table.txt from the final ranges ("name min max"). */
pare_status qat_write_table(const qat_state *st, const char *path, pare_error *err);

int qat_n_quantized_nodes(const qat_state *st);
int qat_n_activations(const qat_state *st);

#endif
