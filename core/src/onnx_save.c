/* pare_graph -> ONNX ModelProto (see onnx_load.c for how extras are kept).
 *
 * The messages live in the build's arena and borrow every string and tensor
 * buffer from the graph, so saving copies no weights until they are packed.
 * model_extra / graph_extra are unpacked and their fields merged in. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnx_io.h"
#include "pare/alloc.h"

#define EXTERNAL_MIN_BYTES 1024  /* smaller initializers stay inline */
#define EXTERNAL_ALIGN 4096

typedef struct save_state {
    onnx_model_build *b;
    const pare_graph *g;
    const char *path;                  /* for messages, never NULL */
    /* from graph_extra, sorted by name for bsearch */
    const Onnx__ValueInfoProto **overrides;
    size_t n_overrides;
    const Onnx__TensorProto **notes;
    size_t n_notes;
    const Onnx__NodeProto **node_notes;
    size_t n_node_notes;
    onnx_external *ext;
} save_state;

static char empty[] = "";

static pare_status oom(const save_state *s, pare_error *err)
{
    return pare_fail(err, PARE_ENOMEM, s->path, "out of memory saving the model");
}

static const char *where_named(char *buf, size_t size, const char *path, const char *kind,
                               const char *name)
{
    snprintf(buf, size, "%s%s%s '%s'", path, *path ? ": " : "", kind, name);
    return buf;
}

/* Keeps an unpacked message until onnx_model_build_fini; frees it on OOM. */
static bool track(onnx_model_build *b, ProtobufCMessage *msg)
{
    if (!msg)
        return true;
    if (b->n_unpacked >= b->cap_unpacked) {
        int cap = b->cap_unpacked ? b->cap_unpacked * 2 : 8;
        ProtobufCMessage **grown = pare_realloc(b->unpacked, (size_t)cap * sizeof *grown);
        if (!grown) {
            protobuf_c_message_free_unpacked(msg, &b->alloc.pc);
            return false;
        }
        b->unpacked = grown;
        b->cap_unpacked = cap;
    }
    b->unpacked[b->n_unpacked++] = msg;
    return true;
}

static void *unpack_extra(save_state *s, const ProtobufCMessageDescriptor *desc, const uint8_t *buf,
                          size_t len, pare_status *rc, pare_error *err)
{
    ProtobufCMessage *msg = protobuf_c_message_unpack(desc, &s->b->alloc.pc, len, buf);

    if (!msg && s->b->alloc.failed)
        *rc = oom(s, err);
    else if (!msg)
        *rc = pare_fail(err, PARE_EINTERNAL, s->path, "the graph's saved %s bytes are corrupt",
                        desc->short_name);
    else if (!track(s->b, msg))
        *rc = oom(s, err);
    else
        return msg;
    return NULL;
}

/* ValueInfoProto and TensorProto both start with their base and are sorted
 * by their name field; these compare through an accessor. */
static int cmp_vi(const void *a, const void *b)
{
    const char *x = (*(const Onnx__ValueInfoProto *const *)a)->name;
    const char *y = (*(const Onnx__ValueInfoProto *const *)b)->name;
    return strcmp(x ? x : "", y ? y : "");
}

static int cmp_note(const void *a, const void *b)
{
    const char *x = (*(const Onnx__TensorProto *const *)a)->name;
    const char *y = (*(const Onnx__TensorProto *const *)b)->name;
    return strcmp(x ? x : "", y ? y : "");
}

static int cmp_node_note(const void *a, const void *b)
{
    const Onnx__NodeProto *x = *(const Onnx__NodeProto *const *)a;
    const Onnx__NodeProto *y = *(const Onnx__NodeProto *const *)b;
    return strcmp(x->n_output && x->output[0] ? x->output[0] : "",
                  y->n_output && y->output[0] ? y->output[0] : "");
}

static const Onnx__NodeProto *find_node_note(const save_state *s, const char *output)
{
    Onnx__NodeProto key = ONNX__NODE_PROTO__INIT;
    const Onnx__NodeProto *pkey = &key, *const *hit;
    char *out = (char *)output;

    if (!s->n_node_notes)
        return NULL;
    key.n_output = 1;
    key.output = &out;
    hit = bsearch(&pkey, s->node_notes, s->n_node_notes, sizeof *s->node_notes, cmp_node_note);
    return hit ? *hit : NULL;
}

static const Onnx__ValueInfoProto *find_override(const save_state *s, const char *name)
{
    Onnx__ValueInfoProto key = ONNX__VALUE_INFO_PROTO__INIT;
    const Onnx__ValueInfoProto *pkey = &key, *const *hit;

    if (!s->n_overrides)
        return NULL;
    key.name = (char *)name;
    hit = bsearch(&pkey, s->overrides, s->n_overrides, sizeof *s->overrides, cmp_vi);
    return hit ? *hit : NULL;
}

static const Onnx__TensorProto *find_note(const save_state *s, const char *name)
{
    Onnx__TensorProto key = ONNX__TENSOR_PROTO__INIT;
    const Onnx__TensorProto *pkey = &key, *const *hit;

    if (!s->n_notes)
        return NULL;
    key.name = (char *)name;
    hit = bsearch(&pkey, s->notes, s->n_notes, sizeof *s->notes, cmp_note);
    return hit ? *hit : NULL;
}

/* Sorted copies of graph_extra's value_info and initializer lists (the
 * loader records at most one entry per name). */
static pare_status index_extra(save_state *s, const Onnx__GraphProto *extra, pare_error *err)
{
    onnx_arena *ar = &s->b->arena;

    if (extra->n_value_info) {
        s->overrides = onnx_arena_alloc(ar, extra->n_value_info * sizeof *s->overrides);
        if (!s->overrides)
            return oom(s, err);
        memcpy(s->overrides, extra->value_info, extra->n_value_info * sizeof *s->overrides);
        s->n_overrides = extra->n_value_info;
        qsort(s->overrides, s->n_overrides, sizeof *s->overrides, cmp_vi);
    }
    if (extra->n_initializer) {
        s->notes = onnx_arena_alloc(ar, extra->n_initializer * sizeof *s->notes);
        if (!s->notes)
            return oom(s, err);
        memcpy(s->notes, extra->initializer, extra->n_initializer * sizeof *s->notes);
        s->n_notes = extra->n_initializer;
        qsort(s->notes, s->n_notes, sizeof *s->notes, cmp_note);
    }
    if (extra->n_node) {
        s->node_notes = onnx_arena_alloc(ar, extra->n_node * sizeof *s->node_notes);
        if (!s->node_notes)
            return oom(s, err);
        memcpy(s->node_notes, extra->node, extra->n_node * sizeof *s->node_notes);
        s->n_node_notes = extra->n_node;
        qsort(s->node_notes, s->n_node_notes, sizeof *s->node_notes, cmp_node_note);
    }
    return PARE_OK;
}

static Onnx__ValueInfoProto *build_value_info(save_state *s, const pare_value *v)
{
    onnx_arena *ar = &s->b->arena;
    Onnx__ValueInfoProto *vi = onnx_arena_alloc(ar, sizeof *vi);
    const Onnx__ValueInfoProto *over = find_override(s, v->name);

    if (!vi)
        return NULL;
    onnx__value_info_proto__init(vi);
    vi->name = v->name;
    vi->doc_string = v->doc_string;
    if (over) {
        onnx_vtype vt;
        vi->base.n_unknown_fields = over->base.n_unknown_fields;
        vi->base.unknown_fields = over->base.unknown_fields;
        /* the saved type only while the value still has that type */
        if (onnx_vtype_from_proto(over->type, &vt, NULL, NULL) == PARE_OK && onnx_vtype_matches(&vt, v)) {
            vi->type = over->type;
            return vi;
        }
    }
    vi->type = onnx_type_from_value(v, ar);
    return ar->failed ? NULL : vi;
}

static pare_status build_value_list(save_state *s, const int *idx, int n, const char *kind,
                                    size_t *n_out, Onnx__ValueInfoProto ***out, pare_error *err)
{
    const pare_graph *g = s->g;

    *n_out = 0;
    if (n <= 0)
        return PARE_OK;
    *out = onnx_arena_alloc(&s->b->arena, (size_t)n * sizeof **out);
    if (!*out)
        return oom(s, err);
    for (int i = 0; i < n; i++) {
        if (idx[i] < 0 || idx[i] >= g->n_values)
            return pare_fail(err, PARE_EINTERNAL, s->path, "graph %s %d refers to no value", kind, i);
        (*out)[i] = build_value_info(s, &g->values[idx[i]]);
        if (!(*out)[i])
            return oom(s, err);
    }
    *n_out = (size_t)n;
    return PARE_OK;
}

static pare_status build_value_infos(save_state *s, Onnx__GraphProto *gp, pare_error *err)
{
    const pare_graph *g = s->g;
    int n = 0;

    for (int v = 0; v < g->n_values; v++)
        n += g->values[v].has_value_info;
    if (!n)
        return PARE_OK;
    gp->value_info = onnx_arena_alloc(&s->b->arena, (size_t)n * sizeof *gp->value_info);
    if (!gp->value_info)
        return oom(s, err);
    for (int v = 0; v < g->n_values; v++) {
        if (!g->values[v].has_value_info)
            continue;
        gp->value_info[gp->n_value_info] = build_value_info(s, &g->values[v]);
        if (!gp->value_info[gp->n_value_info++])
            return oom(s, err);
    }
    return PARE_OK;
}

static pare_status externalize(save_state *s, int v, Onnx__TensorProto *tp)
{
    onnx_external *ext = s->ext;
    onnx_arena *ar = &s->b->arena;
    Onnx__StringStringEntryProto *kv = onnx_arena_alloc(ar, 3 * sizeof *kv);
    size_t off = (ext->total + EXTERNAL_ALIGN - 1) / EXTERNAL_ALIGN * EXTERNAL_ALIGN;
    char *num = onnx_arena_alloc(ar, 48);

    tp->external_data = onnx_arena_alloc(ar, 3 * sizeof *tp->external_data);
    if (!kv || !num || !tp->external_data)
        return PARE_ENOMEM;
    for (int i = 0; i < 3; i++) {
        onnx__string_string_entry_proto__init(&kv[i]);
        tp->external_data[i] = &kv[i];
    }
    snprintf(num, 24, "%zu", off);
    snprintf(num + 24, 24, "%zu", tp->raw_data.len);
    kv[0].key = "location";
    kv[0].value = (char *)ext->location;
    kv[1].key = "offset";
    kv[1].value = num;
    kv[2].key = "length";
    kv[2].value = num + 24;
    tp->n_external_data = 3;
    tp->has_data_location = 1;
    tp->data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
    ext->offsets[v] = (int64_t)off;
    ext->total = off + tp->raw_data.len;
    tp->has_raw_data = 0;
    tp->raw_data.len = 0;
    tp->raw_data.data = NULL;
    return PARE_OK;
}

static pare_status build_initializers(save_state *s, Onnx__GraphProto *gp, pare_error *err)
{
    const pare_graph *g = s->g;
    onnx_arena *ar = &s->b->arena;
    Onnx__TensorProto *tps;
    char where[512];
    int n = 0;

    if (s->ext) {
        s->ext->offsets = pare_alloc((size_t)(g->n_values ? g->n_values : 1) * sizeof(int64_t));
        if (!s->ext->offsets)
            return oom(s, err);
        for (int v = 0; v < g->n_values; v++)
            s->ext->offsets[v] = -1;
        s->ext->total = 0;
    }
    for (int v = 0; v < g->n_values; v++)
        n += g->values[v].init != NULL;
    if (!n)
        return PARE_OK;
    tps = onnx_arena_alloc(ar, (size_t)n * sizeof *tps);
    gp->initializer = onnx_arena_alloc(ar, (size_t)n * sizeof *gp->initializer);
    if (!tps || !gp->initializer)
        return oom(s, err);
    for (int v = 0; v < g->n_values; v++) {
        const pare_value *val = &g->values[v];
        Onnx__TensorProto *tp = &tps[gp->n_initializer];
        const Onnx__TensorProto *note;
        pare_status rc;

        if (!val->init)
            continue;
        onnx__tensor_proto__init(tp);
        rc = onnx_tensor_to_proto(val->init, ar, tp);
        if (rc == PARE_ENOMEM)
            return oom(s, err);
        if (rc != PARE_OK)
            return pare_fail(err, rc, where_named(where, sizeof where, s->path, "initializer", val->name),
                             rc == PARE_EUNSUPPORTED ? "cannot save a %s initializer"
                                                     : "initializer of %s has no data",
                             pare_dtype_name(val->init->dtype));
        tp->name = val->name;
        note = find_note(s, val->name);
        if (note) {
            tp->doc_string = note->doc_string;
            tp->segment = note->segment;
            tp->base.n_unknown_fields = note->base.n_unknown_fields;
            tp->base.unknown_fields = note->base.unknown_fields;
        }
        if (s->ext && tp->raw_data.len >= EXTERNAL_MIN_BYTES && externalize(s, v, tp) != PARE_OK)
            return oom(s, err);
        gp->initializer[gp->n_initializer++] = tp;
    }
    return PARE_OK;
}

static const char *value_name(const pare_graph *g, int v)
{
    return v >= 0 && v < g->n_values ? g->values[v].name : empty;
}

static pare_status build_nodes(save_state *s, Onnx__GraphProto *gp, pare_error *err)
{
    const pare_graph *g = s->g;
    onnx_arena *ar = &s->b->arena;
    Onnx__NodeProto *nps;
    char where[512];

    if (!g->n_nodes)
        return PARE_OK;
    nps = onnx_arena_alloc(ar, (size_t)g->n_nodes * sizeof *nps);
    gp->node = onnx_arena_alloc(ar, (size_t)g->n_nodes * sizeof *gp->node);
    if (!nps || !gp->node)
        return oom(s, err);
    for (int n = 0; n < g->n_nodes; n++) {
        const pare_node *node = &g->nodes[n];
        Onnx__NodeProto *np = &nps[n];

        onnx__node_proto__init(np);
        gp->node[gp->n_node++] = np;
        np->op_type = node->op_type;
        if (node->name && node->name[0])
            np->name = node->name;
        if (node->domain && node->domain[0])
            np->domain = node->domain;
        np->doc_string = node->doc_string;
        np->input = onnx_arena_alloc(ar, (size_t)(node->n_inputs + 1) * sizeof(char *));
        np->output = onnx_arena_alloc(ar, (size_t)(node->n_outputs + 1) * sizeof(char *));
        np->attribute = onnx_arena_alloc(ar, (size_t)(node->n_attrs + 1) * sizeof *np->attribute);
        if (!np->input || !np->output || !np->attribute)
            return oom(s, err);
        for (int i = 0; i < node->n_inputs; i++)
            np->input[np->n_input++] = (char *)value_name(g, node->inputs[i]);
        for (int i = 0; i < node->n_outputs; i++)
            np->output[np->n_output++] = (char *)value_name(g, node->outputs[i]);
        for (int i = 0; s->n_node_notes && i < node->n_outputs; i++) {
            const Onnx__NodeProto *note;
            if (!np->output[i][0])
                continue;
            note = find_node_note(s, np->output[i]);
            if (note) {
                np->base.n_unknown_fields = note->base.n_unknown_fields;
                np->base.unknown_fields = note->base.unknown_fields;
            }
            break;
        }
        for (int k = 0; k < node->n_attrs; k++) {
            ProtobufCMessage *unpacked = NULL;
            pare_status rc = onnx_attr_to_proto(&node->attrs[k], ar, &s->b->alloc,
                                                &np->attribute[k], &unpacked);
            if (!track(s->b, unpacked) || rc == PARE_ENOMEM)
                return oom(s, err);
            if (rc != PARE_OK)
                return pare_fail(err, rc, pare_graph_node_where(g, n, where, sizeof where),
                                 "attribute '%s' (kind %d) cannot be saved", node->attrs[k].name,
                                 node->attrs[k].type);
            np->n_attribute++;
        }
    }
    return PARE_OK;
}

static pare_status build_graph(save_state *s, Onnx__GraphProto *gp, pare_error *err)
{
    const pare_graph *g = s->g;
    pare_status rc = PARE_OK;

    gp->name = g->name;
    gp->doc_string = g->graph_doc_string;
    if (g->graph_extra) {
        const Onnx__GraphProto *extra = unpack_extra(s, &onnx__graph_proto__descriptor, g->graph_extra,
                                                     g->graph_extra_len, &rc, err);
        if (!extra)
            return rc;
        rc = index_extra(s, extra, err);
        if (rc != PARE_OK)
            return rc;
        gp->n_sparse_initializer = extra->n_sparse_initializer;
        gp->sparse_initializer = extra->sparse_initializer;
        gp->n_quantization_annotation = extra->n_quantization_annotation;
        gp->quantization_annotation = extra->quantization_annotation;
        gp->base.n_unknown_fields = extra->base.n_unknown_fields;
        gp->base.unknown_fields = extra->base.unknown_fields;
    }
    rc = build_initializers(s, gp, err);
    if (rc == PARE_OK)
        rc = build_nodes(s, gp, err);
    if (rc == PARE_OK)
        rc = build_value_list(s, g->inputs, g->n_inputs, "input", &gp->n_input, &gp->input, err);
    if (rc == PARE_OK)
        rc = build_value_list(s, g->outputs, g->n_outputs, "output", &gp->n_output, &gp->output, err);
    if (rc == PARE_OK)
        rc = build_value_infos(s, gp, err);
    return rc;
}

static pare_status build_model(save_state *s, Onnx__ModelProto *m, pare_error *err)
{
    const pare_graph *g = s->g;
    onnx_arena *ar = &s->b->arena;
    Onnx__OperatorSetIdProto *ops;
    Onnx__StringStringEntryProto *kvs;
    pare_status rc = PARE_OK;

    m->has_ir_version = g->ir_version != 0;
    m->ir_version = g->ir_version;
    if (g->n_opsets > 0) {
        ops = onnx_arena_alloc(ar, (size_t)g->n_opsets * sizeof *ops);
        m->opset_import = onnx_arena_alloc(ar, (size_t)g->n_opsets * sizeof *m->opset_import);
        if (!ops || !m->opset_import)
            return oom(s, err);
        for (int i = 0; i < g->n_opsets; i++) {
            onnx__operator_set_id_proto__init(&ops[i]);
            /* "" and absent mean ai.onnx; exporters mostly leave it out */
            if (g->opsets[i].domain && g->opsets[i].domain[0])
                ops[i].domain = g->opsets[i].domain;
            ops[i].has_version = 1;
            ops[i].version = g->opsets[i].version;
            m->opset_import[i] = &ops[i];
        }
        m->n_opset_import = (size_t)g->n_opsets;
    }
    m->producer_name = g->producer_name;
    m->producer_version = g->producer_version;
    m->domain = g->model_domain;
    m->has_model_version = g->model_version != 0;
    m->model_version = g->model_version;
    m->doc_string = g->doc_string;
    if (g->n_metadata > 0) {
        kvs = onnx_arena_alloc(ar, (size_t)g->n_metadata * sizeof *kvs);
        m->metadata_props = onnx_arena_alloc(ar, (size_t)g->n_metadata * sizeof *m->metadata_props);
        if (!kvs || !m->metadata_props)
            return oom(s, err);
        for (int i = 0; i < g->n_metadata; i++) {
            onnx__string_string_entry_proto__init(&kvs[i]);
            kvs[i].key = g->metadata[i].key;
            kvs[i].value = g->metadata[i].value;
            m->metadata_props[i] = &kvs[i];
        }
        m->n_metadata_props = (size_t)g->n_metadata;
    }
    if (g->model_extra) {
        const Onnx__ModelProto *extra = unpack_extra(s, &onnx__model_proto__descriptor, g->model_extra,
                                                     g->model_extra_len, &rc, err);
        if (!extra)
            return rc;
        m->n_training_info = extra->n_training_info;
        m->training_info = extra->training_info;
        m->n_functions = extra->n_functions;
        m->functions = extra->functions;
        m->base.n_unknown_fields = extra->base.n_unknown_fields;
        m->base.unknown_fields = extra->base.unknown_fields;
    }
    m->graph = onnx_arena_alloc(ar, sizeof *m->graph);
    if (!m->graph)
        return oom(s, err);
    onnx__graph_proto__init(m->graph);
    return build_graph(s, m->graph, err);
}

pare_status onnx_model_build_init(onnx_model_build *b, const pare_graph *g, onnx_external *ext,
                                  const char *where, pare_error *err)
{
    save_state s;

    memset(b, 0, sizeof *b);
    onnx__model_proto__init(&b->model);
    onnx_alloc_init(&b->alloc);
    memset(&s, 0, sizeof s);
    s.b = b;
    s.g = g;
    s.path = where ? where : g->path ? g->path : "model";
    s.ext = ext;
    return build_model(&s, &b->model, err);
}

void onnx_model_build_fini(onnx_model_build *b)
{
    for (int i = 0; i < b->n_unpacked; i++)
        protobuf_c_message_free_unpacked(b->unpacked[i], &b->alloc.pc);
    pare_free(b->unpacked);
    b->unpacked = NULL;
    b->n_unpacked = b->cap_unpacked = 0;
    onnx_arena_fini(&b->arena);
}
