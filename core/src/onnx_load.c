/* ONNX ModelProto -> pare_graph.
 *
 * Values are created in this order: initializers, graph inputs, value_info,
 * node inputs and outputs, graph outputs; saving writes initializers and
 * value_info back in value order, so their order survives. Types come from
 * the first of graph.input, graph.output, value_info naming a value. What the
 * IR does not model goes to model_extra / graph_extra as serialized
 * ModelProto / GraphProto holding only those fields. graph_extra also holds,
 * keyed by name, the ValueInfoProto of values whose type pare cannot hold
 * exactly (sequences, maps, complex, denotations) or that carry unknown
 * fields (in its value_info), the doc_string, segment and unknown fields of
 * initializers (in its initializer list, without data), and the unknown
 * fields of nodes (in its node list, keyed by the node's first output). */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnx_io.h"
#include "pare/alloc.h"

typedef struct load_state {
    pare_graph *g;
    const onnx_load_opts *opts;
    const char *path;                 /* for messages, never NULL */
    onnx_arena arena;                 /* messages for graph_extra and type checks */
    unsigned char *typed;             /* per value: type already taken */
    const Onnx__ValueInfoProto **overrides;
    size_t n_overrides;
    Onnx__TensorProto **notes;        /* initializer doc strings */
    size_t n_notes;
    Onnx__NodeProto **node_notes;     /* nodes with unknown fields */
    size_t n_node_notes;
    int *scratch;
    size_t cap_scratch;
} load_state;

static const char *where_named(char *buf, size_t size, const char *path, const char *kind,
                               const char *name)
{
    snprintf(buf, size, "%s%s%s '%s'", path, *path ? ": " : "", kind, name);
    return buf;
}

static const char *where_node(char *buf, size_t size, const char *path, size_t index,
                              const Onnx__NodeProto *np)
{
    const char *op = np->op_type ? np->op_type : "";

    if (np->name && np->name[0])
        snprintf(buf, size, "%s%snode '%s' (%s)", path, *path ? ": " : "", np->name, op);
    else
        snprintf(buf, size, "%s%snode #%zu (%s)", path, *path ? ": " : "", index, op);
    return buf;
}

static pare_status oom(const load_state *s, pare_error *err)
{
    return pare_fail(err, PARE_ENOMEM, s->path, "out of memory loading the model");
}

/* Copy of an optional string; false on OOM. */
static bool dup_opt(const char *src, char **dst)
{
    *dst = src ? pare_strdup(src) : NULL;
    return !src || *dst;
}

static int value_for(load_state *s, const char *name, pare_error *err)
{
    int v = pare_graph_find_value(s->g, name);

    return v >= 0 ? v : pare_graph_add_value(s->g, name, err);
}

static pare_status load_model_fields(load_state *s, const Onnx__ModelProto *m, pare_error *err)
{
    pare_graph *g = s->g;
    bool ok = true;

    g->ir_version = m->has_ir_version ? m->ir_version : 0;
    if (m->has_ir_version && m->ir_version >= 3 && !m->n_opset_import) {
        pare_status rc = pare_fail(err, PARE_EINPUT, s->path, "model imports no operator set");
        pare_error_hint(err, "an ONNX model needs an opset_import entry for its ai.onnx ops");
        return rc;
    }
    if (m->n_opset_import > INT_MAX || m->n_metadata_props > INT_MAX)
        return pare_fail(err, PARE_EINPUT, s->path, "model has too many opset or metadata entries");
    if (m->n_opset_import) {
        g->opsets = pare_calloc(m->n_opset_import, sizeof *g->opsets);
        if (!g->opsets)
            return oom(s, err);
    }
    for (size_t i = 0; i < m->n_opset_import; i++) {
        const Onnx__OperatorSetIdProto *op = m->opset_import[i];
        g->opsets[i].domain = pare_strdup(op->domain ? op->domain : "");
        g->opsets[i].version = op->has_version ? op->version : 0;
        g->n_opsets = (int)i + 1;
        if (!g->opsets[i].domain)
            return oom(s, err);
    }
    ok &= dup_opt(m->producer_name, &g->producer_name);
    ok &= dup_opt(m->producer_version, &g->producer_version);
    ok &= dup_opt(m->domain, &g->model_domain);
    ok &= dup_opt(m->doc_string, &g->doc_string);
    g->model_version = m->has_model_version ? m->model_version : 0;
    if (!ok)
        return oom(s, err);
    if (m->n_metadata_props) {
        g->metadata = pare_calloc(m->n_metadata_props, sizeof *g->metadata);
        if (!g->metadata)
            return oom(s, err);
    }
    for (size_t i = 0; i < m->n_metadata_props; i++) {
        const Onnx__StringStringEntryProto *kv = m->metadata_props[i];
        g->metadata[i].key = pare_strdup(kv->key ? kv->key : "");
        g->metadata[i].value = pare_strdup(kv->value ? kv->value : "");
        g->n_metadata = (int)i + 1;
        if (!g->metadata[i].key || !g->metadata[i].value)
            return oom(s, err);
    }
    if (m->n_training_info || m->n_functions || m->base.n_unknown_fields) {
        Onnx__ModelProto extra = ONNX__MODEL_PROTO__INIT;
        extra.n_training_info = m->n_training_info;
        extra.training_info = m->training_info;
        extra.n_functions = m->n_functions;
        extra.functions = m->functions;
        extra.base.n_unknown_fields = m->base.n_unknown_fields;
        extra.base.unknown_fields = m->base.unknown_fields;
        if (onnx_pack(&extra.base, &g->model_extra, &g->model_extra_len) != PARE_OK)
            return oom(s, err);
    }
    return PARE_OK;
}

static pare_status load_initializers(load_state *s, Onnx__GraphProto *gp, pare_error *err)
{
    onnx_tensor_opts topts = { s->opts->base_dir, true };
    char where[512];

    if (gp->n_initializer) {
        s->notes = onnx_arena_alloc(&s->arena, gp->n_initializer * sizeof *s->notes);
        if (!s->notes)
            return oom(s, err);
    }
    for (size_t i = 0; i < gp->n_initializer; i++) {
        Onnx__TensorProto *tp = gp->initializer[i];
        pare_status rc;
        int v;

        if (!tp->name || !tp->name[0])
            return pare_fail(err, PARE_EINPUT, s->path, "initializer #%zu has no name", i);
        where_named(where, sizeof where, s->path, "initializer", tp->name);
        v = value_for(s, tp->name, err);
        if (v < 0)
            return (pare_status)v;
        if (s->g->values[v].init)
            return pare_fail(err, PARE_EINPUT, where, "initializer is defined twice");
        rc = onnx_tensor_from_proto(tp, &topts, &s->g->values[v].init, where, err);
        if (rc != PARE_OK)
            return rc;
        /* The weights now live in the graph: drop the protobuf copy early. */
        pare_free(tp->raw_data.data);
        tp->raw_data.data = NULL;
        tp->raw_data.len = 0;
        tp->has_raw_data = 0;
        pare_free(tp->float_data);
        tp->float_data = NULL;
        tp->n_float_data = 0;
        if ((tp->doc_string && tp->doc_string[0]) || tp->segment || tp->base.n_unknown_fields) {
            Onnx__TensorProto *note = onnx_arena_alloc(&s->arena, sizeof *note);
            if (!note)
                return oom(s, err);
            onnx__tensor_proto__init(note);
            note->name = tp->name;
            note->doc_string = tp->doc_string;
            note->segment = tp->segment;
            note->base.n_unknown_fields = tp->base.n_unknown_fields;
            note->base.unknown_fields = tp->base.unknown_fields;
            s->notes[s->n_notes++] = note;
        }
    }
    return PARE_OK;
}

/* Graph inputs, outputs or value_info: values, flags, order, doc strings. */
static pare_status load_value_infos(load_state *s, Onnx__ValueInfoProto **vis, size_t n,
                                    const char *kind, pare_error *err)
{
    pare_graph *g = s->g;
    bool is_input = !strcmp(kind, "input"), is_output = !strcmp(kind, "output");
    int **order = is_input ? &g->inputs : is_output ? &g->outputs : NULL;
    char where[512];

    if (n > INT_MAX / 2)
        return pare_fail(err, PARE_EINPUT, s->path, "model lists too many graph %ss", kind);
    if (order && n) {
        *order = pare_alloc(n * sizeof(int));
        if (!*order)
            return oom(s, err);
    }
    for (size_t i = 0; i < n; i++) {
        const Onnx__ValueInfoProto *vi = vis[i];
        pare_value *val;
        int v;

        if (!vi->name || !vi->name[0])
            return pare_fail(err, PARE_EINPUT, s->path, "graph %s #%zu has no name",
                             is_input || is_output ? kind : "value_info", i);
        v = value_for(s, vi->name, err);
        if (v < 0)
            return (pare_status)v;
        val = &g->values[v];
        if (is_input) {
            if (val->is_input)
                return pare_fail(err, PARE_EINPUT, where_named(where, sizeof where, s->path, kind, vi->name),
                                 "graph input is listed twice");
            val->is_input = true;
            g->inputs[g->n_inputs++] = v;
        } else if (is_output) {
            val->is_output = true;
            g->outputs[g->n_outputs++] = v;
        } else {
            val->has_value_info = true;
        }
        if (vi->doc_string && !val->doc_string && !dup_opt(vi->doc_string, &val->doc_string))
            return oom(s, err);
    }
    return PARE_OK;
}

static int *scratch(load_state *s, size_t n)
{
    if (n > s->cap_scratch) {
        int *grown = pare_realloc(s->scratch, n * sizeof *grown);
        if (!grown)
            return NULL;
        s->scratch = grown;
        s->cap_scratch = n;
    }
    return s->scratch;
}

static int cmp_attr_names(const void *a, const void *b)
{
    return strcmp((*(const pare_attr *const *)a)->name, (*(const pare_attr *const *)b)->name);
}

/* Attribute names must be unique (sorted check: nodes may carry many). */
static pare_status check_attr_names(load_state *s, const pare_node *node, const char *where,
                                    pare_error *err)
{
    const pare_attr **sorted;

    if (node->n_attrs < 2)
        return PARE_OK;
    sorted = onnx_arena_alloc(&s->arena, (size_t)node->n_attrs * sizeof *sorted);
    if (!sorted)
        return oom(s, err);
    for (int k = 0; k < node->n_attrs; k++)
        sorted[k] = &node->attrs[k];
    qsort(sorted, (size_t)node->n_attrs, sizeof *sorted, cmp_attr_names);
    for (int k = 1; k < node->n_attrs; k++)
        if (!strcmp(sorted[k - 1]->name, sorted[k]->name))
            return pare_fail(err, PARE_EINPUT, where, "attribute '%s' appears twice", sorted[k]->name);
    return PARE_OK;
}

static pare_status load_node(load_state *s, size_t index, const Onnx__NodeProto *np, pare_error *err)
{
    pare_graph *g = s->g;
    size_t n_io = np->n_input + np->n_output;
    char where[512];
    pare_node *node;
    int *io, idx;

    where_node(where, sizeof where, s->path, index, np);
    if (!np->op_type || !np->op_type[0])
        return pare_fail(err, PARE_EINPUT, where, "node has no op_type");
    if (np->n_input > INT_MAX / 2 || np->n_output > INT_MAX / 2 || np->n_attribute > INT_MAX / 2)
        return pare_fail(err, PARE_EINPUT, where, "node has too many inputs, outputs or attributes");
    io = scratch(s, n_io ? n_io : 1);
    if (!io)
        return oom(s, err);
    for (size_t i = 0; i < n_io; i++) {
        const char *name = i < np->n_input ? np->input[i] : np->output[i - np->n_input];
        io[i] = -1;
        if (name && name[0]) {
            int v = value_for(s, name, err);
            if (v < 0)
                return (pare_status)v;
            io[i] = v;
        }
    }
    idx = pare_graph_add_node(g, np->op_type, np->domain ? np->domain : "",
                              np->name ? np->name : "", io, (int)np->n_input,
                              io + np->n_input, (int)np->n_output, err);
    if (idx < 0)
        return (pare_status)idx;
    node = &g->nodes[idx];
    if (!dup_opt(np->doc_string, &node->doc_string))
        return oom(s, err);
    if (np->n_attribute) {
        node->attrs = pare_calloc(np->n_attribute, sizeof *node->attrs);
        if (!node->attrs)
            return oom(s, err);
    }
    for (size_t k = 0; k < np->n_attribute; k++) {
        pare_status rc = onnx_attr_from_proto(np->attribute[k], &node->attrs[k], where, err);
        if (rc != PARE_OK)
            return rc;
        node->n_attrs = (int)k + 1;
    }
    if (np->base.n_unknown_fields) {
        /* Fields from a newer onnx.proto; outputs are unique, so the first
           named one finds the node again when saving. */
        for (size_t i = 0; i < np->n_output; i++) {
            Onnx__NodeProto *note;
            if (!np->output[i] || !np->output[i][0])
                continue;
            note = onnx_arena_alloc(&s->arena, sizeof *note);
            if (!note)
                return oom(s, err);
            onnx__node_proto__init(note);
            note->n_output = 1;
            note->output = &np->output[i];
            note->base.n_unknown_fields = np->base.n_unknown_fields;
            note->base.unknown_fields = np->base.unknown_fields;
            s->node_notes[s->n_node_notes++] = note;
            break;
        }
    }
    return check_attr_names(s, node, where, err);
}

/* Type of the first ValueInfoProto naming a value; records an override when
 * the value's fields cannot reproduce the TypeProto exactly. */
static pare_status apply_types(load_state *s, Onnx__ValueInfoProto **vis, size_t n,
                               const char *kind, pare_error *err)
{
    char where[512];

    for (size_t i = 0; i < n; i++) {
        const Onnx__ValueInfoProto *vi = vis[i];
        int v = pare_graph_find_value(s->g, vi->name);
        pare_value *val;
        Onnx__TypeProto *rebuilt;
        onnx_vtype vt;
        pare_status rc;
        bool same, no_mem = false;

        if (v < 0 || s->typed[v])
            continue;
        s->typed[v] = 1;
        val = &s->g->values[v];
        rc = onnx_vtype_from_proto(vi->type, &vt, where_named(where, sizeof where, s->path, kind, vi->name),
                                   err);
        if (rc != PARE_OK)
            return rc;
        val->dtype = vt.dtype;
        val->ndim = vt.ndim;
        for (int d = 0; d < vt.ndim; d++) {
            val->dims[d] = vt.dims[d];
            if (vt.dim_names[d] && !(val->dim_names[d] = pare_strdup(vt.dim_names[d])))
                return oom(s, err);
        }
        rebuilt = onnx_type_from_value(val, &s->arena);
        if (s->arena.failed)
            return oom(s, err);
        if (!vi->type || !rebuilt)
            same = !vi->type && !rebuilt;
        else
            same = onnx_same_packed(&vi->type->base, &rebuilt->base, &no_mem);
        if (no_mem)
            return oom(s, err);
        if (!same || vi->base.n_unknown_fields)
            s->overrides[s->n_overrides++] = vi;
    }
    return PARE_OK;
}

/* Initializers fix their value's dtype; a declared type must agree. */
static pare_status reconcile_initializers(load_state *s, pare_error *err)
{
    char where[512], a[160], b[160];

    for (int v = 0; v < s->g->n_values; v++) {
        pare_value *val = &s->g->values[v];
        const pare_tensor *t = val->init;
        bool widened;

        if (!t)
            continue;
        widened = t->dtype == PARE_F32 && (val->dtype == PARE_F16 || val->dtype == PARE_BF16);
        where_named(where, sizeof where, s->path, "initializer", val->name);
        if (s->typed[v] && val->dtype != PARE_UNDEFINED && val->dtype != t->dtype && !widened)
            return pare_fail(err, PARE_EINPUT, where, "initializer is %s but its graph input declares %s",
                             pare_dtype_name(t->dtype), pare_dtype_name(val->dtype));
        val->dtype = t->dtype;
        if (val->ndim >= 0) {
            bool match = val->ndim == t->ndim;
            for (int d = 0; match && d < t->ndim; d++)
                match = val->dims[d] < 0 || val->dims[d] == t->dims[d];
            if (!match)
                return pare_fail(err, PARE_EINPUT, where,
                                 "initializer has shape %s but its graph input declares %s",
                                 pare_shape_format(t->ndim, t->dims, a, sizeof a),
                                 pare_shape_format(val->ndim, val->dims, b, sizeof b));
        } else {
            val->ndim = t->ndim;
            for (int d = 0; d < t->ndim; d++)
                val->dims[d] = t->dims[d];
        }
    }
    return PARE_OK;
}

static pare_status load_graph_extra(load_state *s, const Onnx__GraphProto *gp, pare_error *err)
{
    Onnx__GraphProto extra = ONNX__GRAPH_PROTO__INIT;
    pare_graph *g = s->g;

    if (!gp->n_sparse_initializer && !gp->n_quantization_annotation && !gp->base.n_unknown_fields &&
        !s->n_overrides && !s->n_notes && !s->n_node_notes)
        return PARE_OK;
    extra.n_sparse_initializer = gp->n_sparse_initializer;
    extra.sparse_initializer = gp->sparse_initializer;
    extra.n_quantization_annotation = gp->n_quantization_annotation;
    extra.quantization_annotation = gp->quantization_annotation;
    extra.base.n_unknown_fields = gp->base.n_unknown_fields;
    extra.base.unknown_fields = gp->base.unknown_fields;
    extra.n_value_info = s->n_overrides;
    extra.value_info = (Onnx__ValueInfoProto **)s->overrides;
    extra.n_initializer = s->n_notes;
    extra.initializer = s->notes;
    extra.n_node = s->n_node_notes;
    extra.node = s->node_notes;
    if (onnx_pack(&extra.base, &g->graph_extra, &g->graph_extra_len) != PARE_OK)
        return oom(s, err);
    return PARE_OK;
}

static pare_status load_graph(load_state *s, Onnx__GraphProto *gp, pare_error *err)
{
    pare_graph *g = s->g;
    size_t n_vi = gp->n_input + gp->n_output + gp->n_value_info;
    pare_status rc;

    if (!dup_opt(gp->name, &g->name) || !dup_opt(gp->doc_string, &g->graph_doc_string))
        return oom(s, err);
    if (gp->n_node > INT_MAX / 2 || gp->n_initializer > INT_MAX / 2 || n_vi > INT_MAX / 2)
        return pare_fail(err, PARE_EINPUT, s->path, "graph has too many nodes or values");
    /* Index the (empty) graph so value lookups while loading are hashed. */
    rc = pare_graph_index(g, err);
    if (rc == PARE_OK)
        rc = load_initializers(s, gp, err);
    if (rc == PARE_OK)
        rc = load_value_infos(s, gp->input, gp->n_input, "input", err);
    if (rc == PARE_OK)
        rc = load_value_infos(s, gp->value_info, gp->n_value_info, "value", err);
    if (rc == PARE_OK && gp->n_node) {
        s->node_notes = onnx_arena_alloc(&s->arena, gp->n_node * sizeof *s->node_notes);
        if (!s->node_notes)
            rc = oom(s, err);
    }
    for (size_t i = 0; rc == PARE_OK && i < gp->n_node; i++)
        rc = load_node(s, i, gp->node[i], err);
    if (rc == PARE_OK)
        rc = load_value_infos(s, gp->output, gp->n_output, "output", err);
    if (rc != PARE_OK)
        return rc;
    s->typed = pare_calloc((size_t)(g->n_values ? g->n_values : 1), 1);
    if (n_vi)
        s->overrides = onnx_arena_alloc(&s->arena, n_vi * sizeof *s->overrides);
    if (!s->typed || (n_vi && !s->overrides))
        return oom(s, err);
    rc = apply_types(s, gp->input, gp->n_input, "input", err);
    if (rc == PARE_OK)
        rc = apply_types(s, gp->output, gp->n_output, "output", err);
    if (rc == PARE_OK)
        rc = apply_types(s, gp->value_info, gp->n_value_info, "value", err);
    if (rc == PARE_OK)
        rc = reconcile_initializers(s, err);
    if (rc == PARE_OK)
        rc = load_graph_extra(s, gp, err);
    if (rc == PARE_OK)
        rc = pare_graph_index(g, err);
    return rc;
}

pare_status onnx_graph_from_model(Onnx__ModelProto *m, const onnx_load_opts *opts,
                                  pare_graph **out, pare_error *err)
{
    load_state s;
    pare_status rc;

    memset(&s, 0, sizeof s);
    s.opts = opts;
    s.path = opts->where ? opts->where : "model"; /* as pare_graph_node_where says */
    *out = NULL;
    s.g = pare_graph_new();
    if (!s.g)
        return oom(&s, err);
    if (opts->where && !(s.g->path = pare_strdup(opts->where)))
        rc = oom(&s, err);
    else
        rc = load_model_fields(&s, m, err);
    if (rc == PARE_OK)
        rc = load_graph(&s, m->graph, err);
    onnx_arena_fini(&s.arena);
    pare_free(s.typed);
    pare_free(s.scratch);
    if (rc == PARE_OK)
        *out = s.g;
    else
        pare_graph_free(s.g);
    return rc;
}
