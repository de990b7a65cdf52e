#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pare/alloc.h"
#include "pare/graph.h"

/* Value name -> index, open addressing over a power-of-two table. */
typedef struct name_index {
    int *slots; /* value index + 1; 0 = empty */
    size_t mask;
} name_index;

static uint64_t hash_name(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    while (*s)
        h = (h ^ (unsigned char)*s++) * 1099511628211ull;
    return h;
}

static void name_index_free(name_index *ix)
{
    if (!ix)
        return;
    pare_free(ix->slots);
    pare_free(ix);
}

static void name_index_put(name_index *ix, const pare_value *values, int v)
{
    size_t i = hash_name(values[v].name) & ix->mask;
    while (ix->slots[i])
        i = (i + 1) & ix->mask;
    ix->slots[i] = v + 1;
}

static pare_status name_index_rebuild(pare_graph *g, pare_error *err)
{
    name_index *ix = pare_calloc(1, sizeof *ix);
    size_t cap = 16;

    while (cap < (size_t)g->n_values * 2 + 2)
        cap *= 2;
    if (ix)
        ix->slots = pare_calloc(cap, sizeof *ix->slots);
    if (!ix || !ix->slots) {
        name_index_free(ix);
        return pare_fail(err, PARE_ENOMEM, g->path, "out of memory indexing value names");
    }
    ix->mask = cap - 1;
    for (int v = 0; v < g->n_values; v++)
        name_index_put(ix, g->values, v);
    name_index_free(g->name_index);
    g->name_index = ix;
    return PARE_OK;
}

pare_graph *pare_graph_new(void)
{
    return pare_calloc(1, sizeof(pare_graph));
}

void pare_attr_fini(pare_attr *a)
{
    if (!a)
        return;
    pare_free(a->name);
    pare_free(a->s);
    pare_tensor_free(a->t);
    pare_free(a->floats);
    pare_free(a->ints);
    if (a->strings)
        for (int i = 0; i < a->n; i++)
            pare_free(a->strings[i]);
    pare_free(a->strings);
    pare_free(a->opaque);
    memset(a, 0, sizeof *a);
}

static void node_fini(pare_node *n)
{
    pare_free(n->name);
    pare_free(n->op_type);
    pare_free(n->domain);
    pare_free(n->inputs);
    pare_free(n->outputs);
    for (int i = 0; i < n->n_attrs; i++)
        pare_attr_fini(&n->attrs[i]);
    pare_free(n->attrs);
    pare_free(n->doc_string);
}

static void value_fini(pare_value *v)
{
    pare_free(v->name);
    for (int i = 0; i < PARE_MAX_DIMS; i++)
        pare_free(v->dim_names[i]);
    pare_free(v->consumers);
    pare_tensor_free(v->init);
    pare_free(v->doc_string);
}

void pare_graph_free(pare_graph *g)
{
    if (!g)
        return;
    for (int i = 0; i < g->n_opsets; i++)
        pare_free(g->opsets[i].domain);
    pare_free(g->opsets);
    pare_free(g->producer_name);
    pare_free(g->producer_version);
    pare_free(g->model_domain);
    pare_free(g->doc_string);
    for (int i = 0; i < g->n_metadata; i++) {
        pare_free(g->metadata[i].key);
        pare_free(g->metadata[i].value);
    }
    pare_free(g->metadata);
    pare_free(g->model_extra);
    pare_free(g->name);
    pare_free(g->graph_doc_string);
    for (int i = 0; i < g->n_values; i++)
        value_fini(&g->values[i]);
    pare_free(g->values);
    for (int i = 0; i < g->n_nodes; i++)
        node_fini(&g->nodes[i]);
    pare_free(g->nodes);
    pare_free(g->inputs);
    pare_free(g->outputs);
    pare_free(g->graph_extra);
    pare_free(g->path);
    name_index_free(g->name_index);
    pare_free(g);
}

int pare_graph_find_value(const pare_graph *g, const char *name)
{
    const name_index *ix = g->name_index;

    if (!name)
        return -1;
    if (!ix) {
        for (int v = 0; v < g->n_values; v++)
            if (!strcmp(g->values[v].name, name))
                return v;
        return -1;
    }
    for (size_t i = hash_name(name) & ix->mask; ix->slots[i]; i = (i + 1) & ix->mask) {
        int v = ix->slots[i] - 1;
        if (v < g->n_values && !strcmp(g->values[v].name, name))
            return v;
    }
    return -1;
}

int pare_graph_find_node(const pare_graph *g, const char *name)
{
    for (int n = 0; n < g->n_nodes; n++)
        if (g->nodes[n].name && !strcmp(g->nodes[n].name, name))
            return n;
    return -1;
}

int pare_graph_add_value(pare_graph *g, const char *name, pare_error *err)
{
    pare_value *v;

    if (pare_graph_find_value(g, name) >= 0)
        return pare_fail(err, PARE_EINPUT, g->path, "value '%s' already exists", name);
    if (g->n_values >= g->cap_values) {
        int cap = g->n_values ? g->n_values * 2 : 64;
        pare_value *grown = pare_realloc(g->values, (size_t)cap * sizeof *grown);
        if (!grown)
            return pare_fail(err, PARE_ENOMEM, g->path, "out of memory adding value '%s'", name);
        g->values = grown;
        g->cap_values = cap;
    }
    v = &g->values[g->n_values];
    memset(v, 0, sizeof *v);
    v->name = pare_strdup(name);
    if (!v->name)
        return pare_fail(err, PARE_ENOMEM, g->path, "out of memory adding value '%s'", name);
    v->ndim = -1;
    v->producer = -1;
    g->n_values++;
    /* Keep the index usable between rebuilds; grow it when half full. */
    if (g->name_index) {
        name_index *ix = g->name_index;
        if ((size_t)g->n_values * 2 > ix->mask) {
            pare_status rc = name_index_rebuild(g, err);
            if (rc != PARE_OK) {
                value_fini(v);
                g->n_values--;
                return rc;
            }
        } else {
            name_index_put(ix, g->values, g->n_values - 1);
        }
    }
    return g->n_values - 1;
}

static int *dup_ints(const int *src, int n)
{
    int *d = pare_alloc((size_t)(n ? n : 1) * sizeof *d);
    if (d && n)
        memcpy(d, src, (size_t)n * sizeof *d);
    return d;
}

int pare_graph_add_node(pare_graph *g, const char *op_type, const char *domain,
                        const char *name, const int *inputs, int n_inputs,
                        const int *outputs, int n_outputs, pare_error *err)
{
    pare_node *n;

    if (g->n_nodes >= g->cap_nodes) {
        int cap = g->n_nodes ? g->n_nodes * 2 : 64;
        pare_node *grown = pare_realloc(g->nodes, (size_t)cap * sizeof *grown);
        if (!grown)
            return pare_fail(err, PARE_ENOMEM, g->path, "out of memory adding node '%s'", name ? name : "");
        g->nodes = grown;
        g->cap_nodes = cap;
    }
    n = &g->nodes[g->n_nodes];
    memset(n, 0, sizeof *n);
    n->op_type = pare_strdup(op_type);
    n->domain = pare_strdup(domain ? domain : "");
    n->name = pare_strdup(name ? name : "");
    n->inputs = dup_ints(inputs, n_inputs);
    n->outputs = dup_ints(outputs, n_outputs);
    n->n_inputs = n_inputs;
    n->n_outputs = n_outputs;
    if (!n->op_type || !n->domain || !n->name || !n->inputs || !n->outputs) {
        node_fini(n);
        return pare_fail(err, PARE_ENOMEM, g->path, "out of memory adding node '%s'", name ? name : "");
    }
    return g->n_nodes++;
}

pare_status pare_node_add_attr(pare_node *node, const pare_attr *src, pare_error *err)
{
    pare_attr *grown = pare_realloc(node->attrs, (size_t)(node->n_attrs + 1) * sizeof *grown);
    pare_attr *a;
    int ok = 1;

    if (!grown)
        return pare_fail(err, PARE_ENOMEM, node->name, "out of memory adding attribute '%s'", src->name);
    node->attrs = grown;
    a = &node->attrs[node->n_attrs];
    memset(a, 0, sizeof *a);
    a->type = src->type;
    a->f = src->f;
    a->i = src->i;
    a->n = src->n;
    a->name = pare_strdup(src->name);
    ok &= a->name != NULL;
    if (src->s) {
        a->s = pare_alloc(src->s_len + 1);
        ok &= a->s != NULL;
        if (a->s) {
            memcpy(a->s, src->s, src->s_len);
            a->s[src->s_len] = '\0';
            a->s_len = src->s_len;
        }
    }
    if (src->t)
        ok &= (a->t = pare_tensor_dup(src->t)) != NULL;
    if (src->floats) {
        a->floats = pare_alloc((size_t)(src->n ? src->n : 1) * sizeof(float));
        ok &= a->floats != NULL;
        if (a->floats && src->n)
            memcpy(a->floats, src->floats, (size_t)src->n * sizeof(float));
    }
    if (src->ints) {
        a->ints = pare_alloc((size_t)(src->n ? src->n : 1) * sizeof(int64_t));
        ok &= a->ints != NULL;
        if (a->ints && src->n)
            memcpy(a->ints, src->ints, (size_t)src->n * sizeof(int64_t));
    }
    if (src->strings) {
        a->strings = pare_calloc((size_t)(src->n ? src->n : 1), sizeof(char *));
        ok &= a->strings != NULL;
        for (int i = 0; a->strings && i < src->n; i++)
            ok &= (a->strings[i] = pare_strdup(src->strings[i])) != NULL;
    }
    if (src->opaque) {
        a->opaque = pare_alloc(src->opaque_len ? src->opaque_len : 1);
        ok &= a->opaque != NULL;
        if (a->opaque) {
            memcpy(a->opaque, src->opaque, src->opaque_len);
            a->opaque_len = src->opaque_len;
        }
    }
    if (!ok) {
        pare_attr_fini(a);
        return pare_fail(err, PARE_ENOMEM, node->name, "out of memory adding attribute '%s'", src->name);
    }
    node->n_attrs++;
    return PARE_OK;
}

char *pare_graph_node_where(const pare_graph *g, int node, char *buf, size_t size)
{
    const pare_node *n = &g->nodes[node];
    const char *path = g->path ? g->path : "model";

    if (n->name && n->name[0])
        snprintf(buf, size, "%s: node '%s' (%s)", path, n->name, n->op_type);
    else
        snprintf(buf, size, "%s: node #%d (%s)", path, node, n->op_type);
    return buf;
}

/* Rebuilds producers and consumers; fails on a value produced twice or on a
 * node input that is neither produced, a graph input nor an initializer. */
static pare_status link_values(pare_graph *g, pare_error *err)
{
    int *counts = pare_calloc((size_t)(g->n_values ? g->n_values : 1), sizeof *counts);
    char where[512];
    pare_status rc = PARE_OK;

    if (!counts)
        return pare_fail(err, PARE_ENOMEM, g->path, "out of memory indexing graph");
    for (int v = 0; v < g->n_values; v++) {
        g->values[v].producer = -1;
        g->values[v].n_consumers = 0;
        pare_free(g->values[v].consumers);
        g->values[v].consumers = NULL;
    }
    for (int n = 0; n < g->n_nodes && rc == PARE_OK; n++) {
        const pare_node *node = &g->nodes[n];
        for (int i = 0; i < node->n_outputs && rc == PARE_OK; i++) {
            int v = node->outputs[i];
            if (v < 0)
                continue;
            if (v >= g->n_values) {
                rc = pare_fail(err, PARE_EINPUT, pare_graph_node_where(g, n, where, sizeof where),
                               "output %d refers to no value", i);
            } else if (g->values[v].producer >= 0) {
                rc = pare_fail(err, PARE_EINPUT, pare_graph_node_where(g, n, where, sizeof where),
                               "value '%s' is already produced by node '%s'", g->values[v].name,
                               g->nodes[g->values[v].producer].name);
            } else if (g->values[v].init || g->values[v].is_input) {
                rc = pare_fail(err, PARE_EINPUT, pare_graph_node_where(g, n, where, sizeof where),
                               "output '%s' is also a graph input or initializer", g->values[v].name);
            } else {
                g->values[v].producer = n;
            }
        }
        for (int i = 0; i < node->n_inputs && rc == PARE_OK; i++) {
            int v = node->inputs[i];
            if (v >= g->n_values)
                rc = pare_fail(err, PARE_EINPUT, pare_graph_node_where(g, n, where, sizeof where),
                               "input %d refers to no value", i);
            else if (v >= 0)
                counts[v]++;
        }
    }
    for (int v = 0; v < g->n_values && rc == PARE_OK; v++) {
        if (!counts[v])
            continue;
        g->values[v].consumers = pare_alloc((size_t)counts[v] * sizeof(int));
        if (!g->values[v].consumers)
            rc = pare_fail(err, PARE_ENOMEM, g->path, "out of memory indexing graph");
    }
    for (int n = 0; n < g->n_nodes && rc == PARE_OK; n++) {
        const pare_node *node = &g->nodes[n];
        for (int i = 0; i < node->n_inputs && rc == PARE_OK; i++) {
            int v = node->inputs[i];
            pare_value *val;
            if (v < 0)
                continue;
            val = &g->values[v];
            /* A node may read the same value twice; record the consumer once. */
            if (val->n_consumers && val->consumers[val->n_consumers - 1] == n)
                continue;
            val->consumers[val->n_consumers++] = n;
            if (val->producer < 0 && !val->init && !val->is_input)
                rc = pare_fail(err, PARE_EINPUT, pare_graph_node_where(g, n, where, sizeof where),
                               "input '%s' is not produced by any node, graph input or initializer",
                               val->name);
        }
    }
    for (int i = 0; i < g->n_outputs && rc == PARE_OK; i++) {
        const pare_value *val = &g->values[g->outputs[i]];
        if (val->producer < 0 && !val->init && !val->is_input)
            rc = pare_fail(err, PARE_EINPUT, g->path,
                           "graph output '%s' is not produced by any node", val->name);
    }
    pare_free(counts);
    return rc;
}

/* Kahn's algorithm choosing the lowest-indexed ready node, so a sorted graph
 * keeps its order. */
static pare_status sort_nodes(pare_graph *g, pare_error *err)
{
    int n_nodes = g->n_nodes;
    int *pending = pare_calloc((size_t)(n_nodes ? n_nodes : 1), sizeof *pending);
    int *order = pare_alloc((size_t)(n_nodes ? n_nodes : 1) * sizeof *order);
    int *remap = pare_alloc((size_t)(n_nodes ? n_nodes : 1) * sizeof *remap);
    char *ready = pare_calloc((size_t)(n_nodes ? n_nodes : 1), 1);
    pare_node *sorted = NULL;
    pare_status rc = PARE_OK;
    int done = 0, heap_min = 0;

    if (!pending || !order || !remap || !ready) {
        rc = pare_fail(err, PARE_ENOMEM, g->path, "out of memory sorting graph");
        goto out;
    }
    for (int n = 0; n < n_nodes; n++) {
        const pare_node *node = &g->nodes[n];
        for (int i = 0; i < node->n_inputs; i++) {
            int v = node->inputs[i];
            int dup = 0;
            if (v < 0 || g->values[v].producer < 0)
                continue;
            for (int j = 0; j < i; j++)
                dup |= node->inputs[j] == v;
            if (!dup)
                pending[n]++;
        }
        ready[n] = pending[n] == 0;
    }
    while (done < n_nodes) {
        int n = -1;
        for (int k = heap_min; k < n_nodes; k++)
            if (ready[k] == 1) {
                n = k;
                break;
            }
        if (n < 0)
            break;
        ready[n] = 2;
        order[done++] = n;
        for (int o = 0; o < g->nodes[n].n_outputs; o++) {
            int v = g->nodes[n].outputs[o];
            if (v < 0)
                continue;
            for (int c = 0; c < g->values[v].n_consumers; c++) {
                int m = g->values[v].consumers[c];
                if (--pending[m] == 0 && ready[m] == 0) {
                    ready[m] = 1;
                    if (m < heap_min)
                        heap_min = m;
                }
            }
        }
        while (heap_min < n_nodes && ready[heap_min] == 2)
            heap_min++;
    }
    if (done < n_nodes) {
        char where[512];
        for (int n = 0; n < n_nodes; n++)
            if (ready[n] != 2) {
                rc = pare_fail(err, PARE_EINPUT, pare_graph_node_where(g, n, where, sizeof where),
                               "the graph has a cycle through this node");
                break;
            }
        goto out;
    }
    for (int k = 0; k < n_nodes; k++)
        if (order[k] != k)
            break;
        else if (k == n_nodes - 1)
            goto out; /* already sorted */
    /* Loaders may fill the array without setting cap_nodes. */
    if (g->cap_nodes < n_nodes)
        g->cap_nodes = n_nodes;
    sorted = pare_alloc((size_t)g->cap_nodes * sizeof *sorted);
    if (!sorted) {
        rc = pare_fail(err, PARE_ENOMEM, g->path, "out of memory sorting graph");
        goto out;
    }
    for (int k = 0; k < n_nodes; k++) {
        sorted[k] = g->nodes[order[k]];
        remap[order[k]] = k;
    }
    pare_free(g->nodes);
    g->nodes = sorted;
    for (int v = 0; v < g->n_values; v++) {
        pare_value *val = &g->values[v];
        if (val->producer >= 0)
            val->producer = remap[val->producer];
        for (int c = 0; c < val->n_consumers; c++)
            val->consumers[c] = remap[val->consumers[c]];
    }
out:
    pare_free(pending);
    pare_free(order);
    pare_free(remap);
    pare_free(ready);
    return rc;
}

pare_status pare_graph_index(pare_graph *g, pare_error *err)
{
    pare_status rc = name_index_rebuild(g, err);

    if (rc == PARE_OK)
        rc = link_values(g, err);
    if (rc == PARE_OK)
        rc = sort_nodes(g, err);
    return rc;
}

int pare_graph_opset(const pare_graph *g, const char *domain)
{
    int want_default = !domain || !*domain || !strcmp(domain, "ai.onnx");

    for (int i = 0; i < g->n_opsets; i++) {
        const char *d = g->opsets[i].domain;
        int is_default = !d || !*d || !strcmp(d, "ai.onnx");
        if ((want_default && is_default) || (!want_default && d && !strcmp(d, domain)))
            return (int)g->opsets[i].version;
    }
    return 0;
}

int64_t pare_graph_param_count(const pare_graph *g)
{
    int64_t n = 0;
    for (int v = 0; v < g->n_values; v++)
        if (g->values[v].init)
            n += pare_tensor_numel(g->values[v].init);
    return n;
}

const pare_attr *pare_node_attr(const pare_node *node, const char *name)
{
    for (int i = 0; i < node->n_attrs; i++)
        if (!strcmp(node->attrs[i].name, name))
            return &node->attrs[i];
    return NULL;
}

int64_t pare_node_attr_int(const pare_node *node, const char *name, int64_t def)
{
    const pare_attr *a = pare_node_attr(node, name);
    return a && a->type == PARE_ATTR_INT ? a->i : def;
}

float pare_node_attr_float(const pare_node *node, const char *name, float def)
{
    const pare_attr *a = pare_node_attr(node, name);
    if (!a)
        return def;
    if (a->type == PARE_ATTR_FLOAT)
        return a->f;
    if (a->type == PARE_ATTR_INT)
        return (float)a->i;
    return def;
}

const char *pare_node_attr_string(const pare_node *node, const char *name, const char *def)
{
    const pare_attr *a = pare_node_attr(node, name);
    return a && a->type == PARE_ATTR_STRING && a->s ? a->s : def;
}

const int64_t *pare_node_attr_ints(const pare_node *node, const char *name, int *n)
{
    const pare_attr *a = pare_node_attr(node, name);
    if (!a || a->type != PARE_ATTR_INTS) {
        *n = 0;
        return NULL;
    }
    *n = a->n;
    return a->ints;
}

const float *pare_node_attr_floats(const pare_node *node, const char *name, int *n)
{
    const pare_attr *a = pare_node_attr(node, name);
    if (!a || a->type != PARE_ATTR_FLOATS) {
        *n = 0;
        return NULL;
    }
    *n = a->n;
    return a->floats;
}

/* ---- editing ---- */

pare_status pare_graph_clone(const pare_graph *g, pare_graph **out, pare_error *err)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    pare_status rc = pare_graph_save_buffer(g, &buf, &len, err);

    *out = NULL;
    if (rc == PARE_OK)
        rc = pare_graph_load_buffer(buf, len, g->path ? g->path : "model", out, err);
    pare_free(buf);
    return rc;
}

int pare_graph_add_initializer(pare_graph *g, const char *name, pare_tensor *t, pare_error *err)
{
    int v = pare_graph_add_value(g, name, err);

    if (v < 0) {
        pare_tensor_free(t);
        return v;
    }
    g->values[v].init = t;
    g->values[v].dtype = t->dtype;
    g->values[v].ndim = t->ndim;
    for (int d = 0; d < t->ndim; d++)
        g->values[v].dims[d] = t->dims[d];
    return v;
}

void pare_graph_set_initializer(pare_graph *g, int v, pare_tensor *t)
{
    pare_value *val = &g->values[v];

    pare_tensor_free(val->init);
    val->init = t;
    val->dtype = t->dtype;
    val->ndim = t->ndim;
    for (int d = 0; d < PARE_MAX_DIMS; d++) {
        val->dims[d] = d < t->ndim ? t->dims[d] : 0;
        pare_free(val->dim_names[d]);
        val->dim_names[d] = NULL;
    }
}

const char *pare_graph_unique_name(const pare_graph *g, const char *base, char *buf, size_t size)
{
    snprintf(buf, size, "%s", base);
    for (int k = 1; pare_graph_find_value(g, buf) >= 0 || pare_graph_find_node(g, buf) >= 0; k++)
        snprintf(buf, size, "%s_%d", base, k);
    return buf;
}

static bool graph_has_subgraphs(const pare_graph *g)
{
    for (int n = 0; n < g->n_nodes; n++)
        for (int a = 0; a < g->nodes[n].n_attrs; a++)
            if (g->nodes[n].attrs[a].opaque)
                return true;
    return false;
}

pare_status pare_graph_remove_nodes(pare_graph *g, const bool *remove, pare_error *err)
{
    int nv = g->n_values;
    bool *used = pare_calloc((size_t)(nv ? nv : 1), sizeof *used);
    int *new_index = pare_alloc((size_t)(nv ? nv : 1) * sizeof *new_index);
    /* values read only inside opaque subgraphs have no consumers here */
    bool keep_orphans = graph_has_subgraphs(g);
    int kept = 0;
    pare_status rc;

    if (!used || !new_index) {
        pare_free(used);
        pare_free(new_index);
        return pare_fail(err, PARE_ENOMEM, g->path, "out of memory editing the graph");
    }
    for (int n = 0; n < g->n_nodes; n++) {
        if (remove && remove[n]) {
            node_fini(&g->nodes[n]);
            continue;
        }
        g->nodes[kept++] = g->nodes[n];
    }
    g->n_nodes = kept;
    for (int n = 0; n < g->n_nodes; n++) {
        const pare_node *node = &g->nodes[n];
        for (int i = 0; i < node->n_inputs; i++)
            if (node->inputs[i] >= 0)
                used[node->inputs[i]] = true;
        for (int i = 0; i < node->n_outputs; i++)
            if (node->outputs[i] >= 0)
                used[node->outputs[i]] = true;
    }
    for (int i = 0; i < g->n_inputs; i++)
        used[g->inputs[i]] = true;
    for (int i = 0; i < g->n_outputs; i++)
        used[g->outputs[i]] = true;
    kept = 0;
    for (int v = 0; v < nv; v++) {
        if (!used[v] && !(keep_orphans && g->values[v].init)) {
            value_fini(&g->values[v]);
            new_index[v] = -1;
            continue;
        }
        new_index[v] = kept;
        g->values[kept++] = g->values[v];
    }
    g->n_values = kept;
    for (int n = 0; n < g->n_nodes; n++) {
        pare_node *node = &g->nodes[n];
        for (int i = 0; i < node->n_inputs; i++)
            if (node->inputs[i] >= 0)
                node->inputs[i] = new_index[node->inputs[i]];
        for (int i = 0; i < node->n_outputs; i++)
            if (node->outputs[i] >= 0)
                node->outputs[i] = new_index[node->outputs[i]];
    }
    for (int i = 0; i < g->n_inputs; i++)
        g->inputs[i] = new_index[g->inputs[i]];
    for (int i = 0; i < g->n_outputs; i++)
        g->outputs[i] = new_index[g->outputs[i]];
    pare_free(used);
    pare_free(new_index);
    rc = pare_graph_index(g, err);
    return rc;
}
