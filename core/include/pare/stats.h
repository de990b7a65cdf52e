/* Model statistics: per-layer output shape, parameters and FLOPs.
 *
 * What `pare info` prints and the TUI's Layers screen shows. One layer is one
 * graph node (Constant nodes included), in the graph's topological order.
 *
 * Shapes and FLOPs come from an executor plan at batch 1 (pare_exec_new). To
 * tell which dims follow the batch, a second plan at batch 2 is compared with
 * the first: a dim that is k at batch 1 and 2k at batch 2 is "k * batch"
 * (printed "batch" for k = 1, "16*batch" otherwise). When no plan can be
 * built (an op without a kernel, a shape error), the same inference runs node
 * by node without a plan: every node whose inputs are known and whose op has
 * a kernel is still inferred (and folded when its inputs are constants);
 * outputs of the others are unknown unless the file declares their shape
 * (value_info or graph output), which then seeds the nodes after them. So a
 * model with an unknown op is browsable: shapes and FLOPs after the unknown
 * node show as unknown ("?") unless the file says.
 *
 * FLOPs are per sample (batch 1); multiply-adds count 2, as op.h says. Nodes
 * folded at plan time show their FLOPs but cost nothing at run time and are
 * left out of the total. A layer's params are the initializer values it is
 * the first node to read (an initializer shared by several nodes counts once),
 * so layer params sum to the initializer values that nodes read; `params` in
 * pare_stats counts every initializer (pare_graph_param_count).
 *
 * Ownership: pare_stats_compute returns a new object the caller frees with
 * pare_stats_free. It borrows strings from the graph (dim names), so the graph
 * must outlive it and not be edited meanwhile; after an edit, compute again.
 * Thread-safety: computing reads the graph only; a pare_stats is plain data. */
#ifndef PARE_STATS_H
#define PARE_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pare/error.h"
#include "pare/graph.h"
#include "pare/tensor.h"

/* A shape as known to the statistics: concrete at batch 1, plus which dims
 * scale with the batch. */
typedef struct pare_stat_shape {
    pare_dtype dtype;                  /* PARE_UNDEFINED when unknown */
    int ndim;                          /* -1: unknown (printed "?") */
    int64_t dims[PARE_MAX_DIMS];       /* at batch 1; -1: unknown */
    int64_t per_batch[PARE_MAX_DIMS];  /* k > 0: the dim is k * batch; 0: fixed */
    const char *names[PARE_MAX_DIMS];  /* a symbolic name the file gives for an
                                          otherwise unknown dim (borrowed), or NULL */
} pare_stat_shape;

typedef struct pare_layer_stat {
    int node;                   /* node index in the graph */
    int64_t params;             /* initializer values this node reads first */
    double flops;               /* per sample; < 0: unknown */
    bool folded;                /* computed at plan time (constant inputs) */
    bool has_kernel;            /* an op row exists at the model's opset */
    pare_stat_shape out;        /* first output (ndim -1 if none) */
} pare_layer_stat;

typedef struct pare_stats {
    int n_layers;               /* = number of nodes */
    pare_layer_stat *layers;
    int n_values;               /* = number of graph values */
    pare_stat_shape *values;    /* per graph value */
    int64_t params;             /* all initializer values */
    size_t init_bytes;          /* bytes of initializer data */
    int64_t constant_values;    /* values held by Constant nodes' tensors */
    double flops;               /* per sample, layers that run (not folded, known) */
    bool flops_complete;        /* false when some running layer's FLOPs are unknown */
    int n_unknown_ops;          /* nodes whose op has no kernel */
    bool planned;               /* an executor plan was built at batch 1 */
    pare_error plan_error;      /* why not, when !planned */
    size_t arena_bytes;         /* activations at batch 1 (planned only) */
    size_t folded_bytes;        /* constants folded at plan time (planned only) */
    char batch_name[64];        /* name of the batch dim ("batch"; "N" when unnamed) */
} pare_stats;

/* Computes the statistics of g. A model that cannot be planned is not an
 * error (see plan_error); errors are PARE_ENOMEM only. The caller owns *out
 * on success. */
pare_status pare_stats_compute(const pare_graph *g, pare_stats **out, pare_error *err);
void pare_stats_free(pare_stats *s);

/* The shape the file declares for value v (graph input, output or
 * value_info): dims it fixes, symbolic dims by name (per_batch = 1 when the
 * name is the batch's, else unknown with the name kept). */
void pare_stats_declared_shape(const pare_stats *s, const pare_value *v, pare_stat_shape *out);

/* Dim d of sh as text: "28", "batch", "16*batch", a symbolic name, or "?".
 * Returns buf. */
char *pare_stats_dim_format(const pare_stats *s, const pare_stat_shape *sh, int d,
                            char *buf, size_t size);
/* "[batch, 6, 28, 28]"; "?" when the rank is unknown. Returns buf. */
char *pare_stats_shape_format(const pare_stats *s, const pare_stat_shape *sh,
                              char *buf, size_t size);

#endif
