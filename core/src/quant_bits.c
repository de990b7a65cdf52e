/* Per-tensor bit widths (pare_quant_opts.tensor_bits): which weight and
 * activation of a graph gets how many bits. */
#include <string.h>

#include "pare/alloc.h"
#include "quant_internal.h"

pare_status quant_tensor_bits(const pare_graph *g, const pare_quant_opts *o, int *act, int *w,
                              char ***warnings, int *n_warnings, pare_error *err)
{
    bool *by_value = pare_calloc((size_t)g->n_values + 1, sizeof *by_value);
    bool *by_node = pare_calloc((size_t)g->n_values + 1, sizeof *by_node);
    pare_status rc = PARE_OK;

    if (!by_value || !by_node) {
        pare_free(by_value);
        pare_free(by_node);
        return pare_fail(err, PARE_ENOMEM, g->path, "out of memory");
    }
    for (int v = 0; v < g->n_values; v++) {
        act[v] = o->activation_bits;
        w[v] = o->weight_bits;
    }
    /* value names first: they win over node names */
    for (int k = 0; k < o->n_tensor_bits && rc == PARE_OK; k++) {
        const pare_quant_bits *b = &o->tensor_bits[k];
        int v = pare_graph_find_value(g, b->name);
        if (v < 0) {
            if (pare_graph_find_node(g, b->name) < 0) {
                const char *near = quant_closest_name(g, b->name);
                if (o->strict) {
                    pare_fail(err, PARE_EINPUT, "tensor_bits", "'%s' is not a value or node of "
                              "the model", b->name);
                    if (near)
                        pare_error_hint(err, "did you mean '%s'?", near);
                    rc = PARE_EINPUT;
                } else {
                    rc = quant_warn(warnings, n_warnings, err, "tensor_bits: '%s' is not a value "
                                    "or node of the model%s%s%s", b->name,
                                    near ? " (did you mean '" : "", near ? near : "",
                                    near ? "'?)" : "");
                }
            }
            continue;
        }
        if (g->values[v].init)
            w[v] = b->bits;
        else
            act[v] = b->bits;
        by_value[v] = true;
    }
    for (int k = 0; k < o->n_tensor_bits && rc == PARE_OK; k++) {
        const pare_quant_bits *b = &o->tensor_bits[k];
        int n = pare_graph_find_value(g, b->name) < 0 ? pare_graph_find_node(g, b->name) : -1;
        const pare_node *node;
        int wi;
        if (n < 0)
            continue;
        node = &g->nodes[n];
        wi = quant_weight_input(node);
        for (int i = 0; i < node->n_inputs; i++) {
            int v = node->inputs[i];
            if (v < 0 || by_value[v])
                continue;
            if (g->values[v].init) {
                if (i == wi)
                    w[v] = b->bits;
            } else if (!by_node[v] || b->bits < act[v]) {
                act[v] = b->bits;
                by_node[v] = true;
            }
        }
    }
    pare_free(by_value);
    pare_free(by_node);
    return rc;
}

pare_status quant_bits_from_job(const pare_job_name_ints *jb, pare_quant_opts *o,
                                pare_quant_bits **bits, pare_error *err)
{
    *bits = NULL;
    if (jb->n == 0)
        return PARE_OK;
    *bits = pare_calloc((size_t)jb->n, sizeof **bits);
    if (!*bits)
        return pare_fail(err, PARE_ENOMEM, NULL, "out of memory");
    for (int i = 0; i < jb->n; i++) {
        (*bits)[i].name = jb->names[i];
        (*bits)[i].bits = (int)jb->v[i];
    }
    o->tensor_bits = *bits;
    o->n_tensor_bits = jb->n;
    return PARE_OK;
}
