/* Shared between quant_calib.c and quant_build.c: which nodes and tensors the
 * options quantize, and executor set-up over a dataset. */
#ifndef PARE_QUANT_INTERNAL_H
#define PARE_QUANT_INTERNAL_H

#include <stdbool.h>

#include "pare/data.h"
#include "pare/exec.h"
#include "pare/graph.h"
#include "pare/job.h"
#include "pare/quant.h"

/* Result of applying quantize_op_types, skip lists and patterns to a graph. */
typedef struct quant_sel {
    int n_nodes, n_values;
    bool *node_q;        /* per node: its inputs get Q/DQ */
    bool *node_skipped;  /* per node: a candidate left in float by a skip or pattern */
    bool *act;           /* per value: an activation that gets a Q/DQ pair */
    bool *act_all;       /* per value: a quantized node's output whose Q/DQ pair feeds
                            every consumer (quantize_outputs) */
    bool *weight;        /* per value: an initializer stored quantized */
    char **warnings;
    int n_warnings;
} quant_sel;

/* Fills s (caller storage; free with quant_sel_fini on every path). plan is
 * a plan of g used for value dtypes (values it does not compute count as
 * non-float). Unknown skip names are warnings, or PARE_EINPUT when strict. */
pare_status quant_select(const pare_graph *g, const pare_exec *plan, const pare_quant_opts *o,
                         quant_sel *s, pare_error *err);
void quant_sel_fini(quant_sel *s);

/* Input index of node n that is the weight of a weighted op (Conv,
 * ConvTranspose, Gemm, MatMul: 1), or -1. */
int quant_weight_input(const pare_node *node);
/* True when input i of node n may get an activation Q/DQ. */
bool quant_input_quantizable(const pare_node *node, int i);

/* Bit widths per value of g (core/src/quant_bits.c): act[v] for activations,
 * w[v] for weights (n_values entries each, caller storage), from
 * o->tensor_bits over activation_bits / weight_bits. Unknown names are
 * appended to *warnings, or PARE_EINPUT with a did-you-mean hint when strict. */
pare_status quant_tensor_bits(const pare_graph *g, const pare_quant_opts *o, int *act, int *w,
                              char ***warnings, int *n_warnings, pare_error *err);

/* A job's tensor_bits mapping as o->tensor_bits (names borrowed from the
 * job). The caller frees *bits (NULL for an empty mapping). */
pare_status quant_bits_from_job(const pare_job_name_ints *jb, pare_quant_opts *o,
                                pare_quant_bits **bits, pare_error *err);

/* Calibration batches: size and count for a dataset and the options. */
void quant_batches(const pare_dataset *ds, const pare_quant_opts *o, int *batch, int *n_batches);

/* An inference plan of g at batch `batch` whose one runtime input takes the
 * dataset's samples, keeping taps. The caller owns *out. */
pare_status quant_exec_new(const pare_graph *g, const pare_dataset *ds, int batch,
                           const char *const *taps, int n_taps, int n_threads,
                           pare_exec **out, pare_error *err);

/* "did you mean" over g's value and node names (NULL: nothing close). */
const char *quant_closest_name(const pare_graph *g, const char *word);

/* Appends a formatted warning to a growable list. */
pare_status quant_warn(char ***list, int *n, pare_error *err, const char *fmt, ...)
    PARE_PRINTF(4, 5);

#endif
