/* The executor: a plan built once per model and input shapes, run many times.
 *
 * pare_exec_new binds concrete input shapes (symbolic dims take opts.batch),
 * looks up every node's kernel, infers all shapes, folds what is known at plan
 * time (initializers, Constant, Shape of known shapes and anything computed
 * only from those), and places every other value in one arena by liveness so
 * buffers are reused. A tapped value is kept until the run ends.
 *
 * Ownership: the exec borrows the graph, which must outlive it and not be
 * edited while it exists. Tensors returned by pare_exec_input/output/value are
 * owned by the exec; their data is valid until the next run or free.
 * Thread-safety: one exec is run by one thread at a time; several execs on one
 * graph may run concurrently. */
#ifndef PARE_EXEC_H
#define PARE_EXEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pare/error.h"
#include "pare/graph.h"
#include "pare/tensor.h"

typedef struct pare_exec pare_exec;

typedef struct pare_exec_opts {
    int batch;                     /* value of symbolic dims; 0 means 1 */
    int n_threads;                 /* 0: PARE_THREADS env var, else all cores */
    /* Input shapes by graph input position (non-initializer inputs only);
       NULL: take them from the graph with symbolic dims = batch. Only dtype,
       ndim and dims are read. */
    const pare_tensor *input_shapes;
    const char *const *taps;       /* value names kept after a run */
    int n_taps;
    bool keep_all;                 /* keep every value (inspection; more memory) */
    bool profile;                  /* time every step (pare_exec_node_seconds) */
    /* Training plan: forward runs in training mode (BatchNormalization with
       batch statistics and running statistics updated in the graph's
       initializers, Dropout dropping), every value is kept for backward, no
       BatchNormalization folding and no buffer aliasing. params names the
       float initializers to differentiate: they are read from the graph at
       every run (never folded), so an optimizer may update their data in
       place between runs. */
    bool training;
    const char *const *params;
    int n_params;
    uint64_t seed;                 /* training randomness (Dropout), with pare_exec_set_step */
} pare_exec_opts;

/* The shape graph input value `input` takes for a batch of `batch` samples
 * of sample shape (sample_ndim, sample_dims): dims[0] = batch; a symbolic dim
 * d >= 1 takes sample_dims[d - 1] when the input's rank is the sample's + 1.
 * Fills shape as a float32 shape carrier (no data). Errors: PARE_EUNSUPPORTED
 * for a symbolic dim the sample cannot fill; PARE_EINPUT naming both shapes
 * when the per-sample element counts differ (where = the graph's path). */
pare_status pare_exec_batch_shape(const pare_graph *g, int input, int batch, int sample_ndim,
                                  const int64_t *sample_dims, pare_tensor *shape,
                                  pare_error *err);
/* Errors: PARE_EUNSUPPORTED naming op and node when no kernel exists,
 * PARE_EINPUT for shape errors (where = the node), a tap that is not a value
 * (with a did-you-mean hint), PARE_ENOMEM. The caller owns *out on success. */
pare_status pare_exec_new(const pare_graph *g, const pare_exec_opts *opts,
                          pare_exec **out, pare_error *err);
void pare_exec_free(pare_exec *x);

/* Runtime inputs are the graph inputs without initializers, in graph order. */
int pare_exec_n_inputs(const pare_exec *x);
/* Writable buffer of input i with its planned shape: fill it before a run. */
pare_tensor *pare_exec_input(pare_exec *x, int i);
int pare_exec_n_outputs(const pare_exec *x);
const pare_tensor *pare_exec_output(const pare_exec *x, int i);

pare_status pare_exec_run(pare_exec *x, pare_error *err);

/* ---- training plans (opts.training) ----
 *
 * A step: fill inputs, pare_exec_run, compute loss gradients of any values
 * (outputs or taps), pare_exec_backward with them as seeds, read parameter
 * gradients with pare_exec_grad, update parameters in place. */

/* Which training step this is: Dropout masks derive from (opts.seed, step,
 * node), so a run is reproducible and backward sees the forward's masks. */
void pare_exec_set_step(pare_exec *x, uint64_t step);
/* Switches forward between training mode and inference mode (evaluation on
 * a training plan: running statistics, no dropout). Starts in training. */
void pare_exec_set_training(pare_exec *x, bool on);
/* Back-propagates from seeds: grads[i] (same shape as the value) is dL/d of
 * value values[i] (graph value indices). Overwrites the gradients of every
 * parameter and every value between the parameters and the seeds.
 * Errors: PARE_EINPUT for a seed that is not a runtime float value of the plan
 * or of the wrong shape; kernel errors. Call after pare_exec_run. */
pare_status pare_exec_backward(pare_exec *x, const int *values, const pare_tensor *const *grads,
                               int n, pare_error *err);
/* Gradient of value v after pare_exec_backward: the parameters, and values
 * on a path from a parameter to a seed. NULL when v carries no gradient.
 * Parameters that no seed reaches have an all-zero gradient. */
const pare_tensor *pare_exec_grad(const pare_exec *x, int v);
/* Parameters in the order of opts.params, as graph value indices. */
int pare_exec_n_params(const pare_exec *x);
int pare_exec_param(const pare_exec *x, int i);
/* Bytes of gradient buffers (training plans). */
size_t pare_exec_grad_bytes(const pare_exec *x);

/* Value by name after a run: tapped values, outputs, inputs and plan-time
 * constants; NULL when the value was not kept (or does not exist). */
const pare_tensor *pare_exec_value(const pare_exec *x, const char *name);

/* Planned shape and dtype of value v (graph value index); NULL if the plan
 * does not compute it. Its data is meaningful only for constants and for
 * kept values after a run (other buffers are reused). */
const pare_tensor *pare_exec_value_shape(const pare_exec *x, int v);

/* FLOPs of node n at the planned shapes, as if it ran (folded nodes too). */
double pare_exec_node_flops(const pare_exec *x, int n);
/* Wall time node n has taken over all runs so far, in seconds; 0 unless the
 * exec was made with opts.profile (and for folded nodes). */
double pare_exec_node_seconds(const pare_exec *x, int n);
/* Forgets the times gathered so far (e.g. after warm-up runs). */
void pare_exec_profile_reset(pare_exec *x);

/* True when node n was folded at plan time. */
bool pare_exec_node_is_folded(const pare_exec *x, int n);

/* Bytes of the activation arena and of plan-time constants created by folding. */
size_t pare_exec_arena_bytes(const pare_exec *x);
size_t pare_exec_folded_bytes(const pare_exec *x);
/* Bytes of the one workspace kernels share. */
size_t pare_exec_scratch_bytes(const pare_exec *x);
int pare_exec_threads(const pare_exec *x);

#endif
