/* The op registry: one row per (domain, op type, opset range).
 *
 * Each op family file (core/src/ops/<family>.c) exports a static const table
 * of pare_op_def rows; core/src/ops/registry.c joins them. Lookup picks the
 * row whose [since, until] holds the model's opset for the op's domain.
 *
 * Kernel contract:
 * - infer: reads ctx->in (dtype, ndim, dims always set; data set only when the
 *   value is known at plan time: initializers, Constant outputs, folded
 *   values) and node attributes; sets dtype, ndim and dims of every ctx->out
 *   and, if it needs a workspace for forward, ctx->scratch_bytes. Fails with
 *   PARE_EINPUT (bad attributes/shapes for the op) or PARE_EUNSUPPORTED (a
 *   valid form pare does not implement, e.g. a dtype), message naming what.
 * - forward: ctx->out tensors already have the inferred shapes and allocated
 *   data (never aliasing an input unless the row has PARE_OP_ALIAS, in which
 *   case out[0]->data may equal in[0]->data and forward must then do nothing
 *   to it). ctx->scratch holds scratch_bytes of 64-byte aligned memory.
 * - flops: multiply-adds count as 2; element-wise ops count one per output.
 * - backward (training engine): called after forward on the same ctx with
 *   in/out data intact. ctx->dout[i] is the loss gradient w.r.t. out[i]
 *   (NULL: none flows); the kernel OVERWRITES every non-NULL ctx->din[i]
 *   (same shape and dtype as in[i]) with the gradient w.r.t. in[i]; the
 *   executor sums contributions of several consumers. NULL din entries are
 *   not needed (constants, integer inputs): skip their work. Workspace:
 *   ctx->scratch holds max(scratch_bytes, backward_scratch(ctx)) bytes.
 *   Broadcast inputs get the gradient reduced back to their own shape.
 * - training forward: ctx->training is true while fine-tuning:
 *   BatchNormalization uses and updates batch statistics, Dropout drops with
 *   a mask drawn from ctx->seed (a new value every step, fixed by the job's
 *   seed), which backward must reproduce.
 * Kernels may use OpenMP with at most ctx->n_threads threads; forward may
 * get fewer threads than infer saw (the executor runs small steps on one),
 * so workspace must not be sized by thread count alone. OpenBLAS runs single
 * threaded: call cblas_* freely, also from inside OpenMP regions. Kernels
 * never print and never exit. */
#ifndef PARE_OP_H
#define PARE_OP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pare/error.h"
#include "pare/graph.h"
#include "pare/tensor.h"

typedef struct pare_op_ctx {
    const pare_node *node;
    int opset;                  /* the model's opset for node->domain */
    int n_in;
    pare_tensor *const *in;     /* NULL entries: omitted optional inputs */
    int n_out;
    pare_tensor *const *out;    /* NULL entries: omitted optional outputs */
    void *scratch;              /* forward only */
    size_t scratch_bytes;       /* set by infer, given to forward */
    int n_threads;
    const char *where;          /* "model.onnx: node 'conv3' (Conv)" for messages */
    pare_error *err;
    /* training */
    bool training;              /* forward in training mode (BatchNormalization, Dropout) */
    uint64_t seed;              /* randomness of this step (Dropout), reproducible */
    pare_tensor *const *dout;   /* backward: gradients w.r.t. out[i]; NULL entries: none */
    pare_tensor *const *din;    /* backward: gradients w.r.t. in[i] to write; NULL: not needed */
} pare_op_ctx;

typedef pare_status (*pare_op_fn)(pare_op_ctx *ctx);
typedef double (*pare_op_flops_fn)(const pare_op_ctx *ctx);

enum pare_op_flags {
    /* out[0] may share in[0]'s buffer (same bytes, new shape): Reshape, Flatten,
       Squeeze, Unsqueeze, Identity, Dropout in inference. */
    PARE_OP_ALIAS = 1u << 0,
    /* forward reads only input shapes, never input data (Shape, Size), so the
       output is known at plan time. */
    PARE_OP_SHAPE_ONLY = 1u << 1,
    /* a gradient flows through an integer output (QuantizeLinear's
       straight-through estimator for quantization-aware training) */
    PARE_OP_INT_GRAD = 1u << 2
};

typedef struct pare_op_def {
    const char *domain;         /* "" for ai.onnx */
    const char *op_type;
    int since;                  /* first opset this row covers */
    int until;                  /* last opset it covers; 0 = open */
    pare_op_fn infer;
    pare_op_fn forward;
    pare_op_fn backward;        /* NULL: no gradient flows through this op */
    size_t (*backward_scratch)(const pare_op_ctx *ctx); /* extra workspace; NULL = none */
    pare_op_flops_fn flops;     /* NULL: counts as 0 */
    unsigned flags;
    const char *notes;          /* limits users should know, for docs/ops.md; may be NULL */
} pare_op_def;

/* The row for (domain, op_type) at opset, or NULL. */
const pare_op_def *pare_op_find(const char *domain, const char *op_type, int opset);
/* True when any row exists for (domain, op_type), at any opset. */
int pare_op_is_known(const char *domain, const char *op_type);
/* All rows, grouped by family, for listings (docs/ops.md, `pare ops`). */
const pare_op_def *pare_op_row(int i);
int pare_op_row_count(void);
/* Family of row i ("conv", "shape", ...), for grouping listings. */
const char *pare_op_row_family(int i);

/* Helpers for kernels: fail with the node as location. */
pare_status pare_op_fail(pare_op_ctx *ctx, pare_status code, const char *fmt, ...)
    PARE_PRINTF(3, 4);

/* Numpy-style multidirectional broadcast of two shapes into out (ndim,dims);
 * PARE_EINPUT when incompatible. */
pare_status pare_broadcast_shape(int na, const int64_t *a, int nb, const int64_t *b,
                                 int *nout, int64_t *out);

#endif
