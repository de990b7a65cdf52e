/* The graph IR: an ONNX model as values and nodes, with its weights.
 *
 * Values and nodes live in arrays and refer to each other by index. Nodes are
 * kept in topological order (pare_graph_index re-sorts after edits). Every
 * string and tensor in a graph is owned by the graph; pare_graph_free releases
 * all of it. Model-level fields pare does not model (training_info, functions,
 * unknown attribute kinds) are kept as serialized protobuf bytes and written
 * back on save, so load -> save changes nothing ONNX Runtime can see.
 * Thread-safety: a graph may be read from several threads; edits need
 * exclusive access. */
#ifndef PARE_GRAPH_H
#define PARE_GRAPH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pare/error.h"
#include "pare/tensor.h"

/* Attribute kinds, numbered as ONNX AttributeProto.AttributeType. */
typedef enum pare_attr_type {
    PARE_ATTR_UNDEFINED = 0,
    PARE_ATTR_FLOAT = 1,
    PARE_ATTR_INT = 2,
    PARE_ATTR_STRING = 3,
    PARE_ATTR_TENSOR = 4,
    PARE_ATTR_GRAPH = 5,
    PARE_ATTR_FLOATS = 6,
    PARE_ATTR_INTS = 7,
    PARE_ATTR_STRINGS = 8
    /* other kinds (TENSORS, GRAPHS, SPARSE_TENSOR, TYPE_PROTO...) load as
       opaque attributes: their serialized AttributeProto is kept verbatim */
} pare_attr_type;

typedef struct pare_attr {
    char *name;
    int type;              /* pare_attr_type or an ONNX number pare does not model */
    float f;               /* FLOAT */
    int64_t i;             /* INT */
    char *s;               /* STRING: NUL-terminated copy of the bytes */
    size_t s_len;          /* STRING: byte length (may hold NULs) */
    pare_tensor *t;        /* TENSOR */
    float *floats;         /* FLOATS */
    int64_t *ints;         /* INTS */
    char **strings;        /* STRINGS */
    int n;                 /* element count of FLOATS / INTS / STRINGS */
    uint8_t *opaque;       /* GRAPH and unmodelled kinds: the serialized AttributeProto,
                              written back verbatim unless the decoded value was edited.
                              Values used only inside such subgraphs have no consumers
                              here: passes that drop unused values must keep them. */
    size_t opaque_len;
} pare_attr;

typedef struct pare_value {
    char *name;
    pare_dtype dtype;                /* PARE_UNDEFINED when the file does not say */
    int ndim;                        /* -1: rank unknown */
    int64_t dims[PARE_MAX_DIMS];     /* -1: unknown or symbolic */
    char *dim_names[PARE_MAX_DIMS];  /* symbolic dim names ("batch"), NULL when fixed */
    int producer;                    /* node index; -1 for graph inputs and initializers */
    int *consumers;                  /* node indices, rebuilt by pare_graph_index */
    int n_consumers;
    pare_tensor *init;               /* initializer data (owned), NULL otherwise */
    bool is_input;                   /* listed in graph.input */
    bool is_output;                  /* listed in graph.output */
    bool has_value_info;             /* listed in graph.value_info; saved back there */
    char *doc_string;
} pare_value;

typedef struct pare_node {
    char *name;
    char *op_type;
    char *domain;          /* "" for the default ai.onnx domain */
    int *inputs;           /* value indices; -1 marks an omitted optional input */
    int n_inputs;
    int *outputs;          /* value indices; -1 marks an omitted optional output */
    int n_outputs;
    pare_attr *attrs;
    int n_attrs;
    char *doc_string;
} pare_node;

typedef struct pare_opset {
    char *domain;          /* "" for ai.onnx */
    int64_t version;
} pare_opset;

typedef struct pare_kv {
    char *key;
    char *value;
} pare_kv;

typedef struct pare_graph {
    /* ModelProto */
    int64_t ir_version;
    pare_opset *opsets;
    int n_opsets;
    char *producer_name;
    char *producer_version;
    char *model_domain;
    int64_t model_version;
    char *doc_string;
    pare_kv *metadata;
    int n_metadata;
    uint8_t *model_extra;      /* serialized ModelProto fields pare does not model */
    size_t model_extra_len;

    /* GraphProto */
    char *name;
    char *graph_doc_string;
    pare_value *values;
    int n_values;
    int cap_values;
    pare_node *nodes;
    int n_nodes;
    int cap_nodes;
    int *inputs;               /* graph.input order (may include initializers) */
    int n_inputs;
    int *outputs;              /* graph.output order */
    int n_outputs;
    uint8_t *graph_extra;      /* serialized GraphProto fields pare does not model */
    size_t graph_extra_len;

    char *path;                /* file it was loaded from, for messages; may be NULL */
    void *name_index;          /* private: value name -> index */
} pare_graph;

/* ---- ONNX files (core/src/onnx_io.c) ---- */

/* Loads and validates an ONNX model: protobuf structure, dtypes, dims,
 * initializer sizes, external data (relative to the model's folder), that
 * every node input is produced once, no cycles. f16/bf16 initializers are
 * widened to f32. The graph comes back indexed and topologically sorted.
 * Errors: PARE_EIO (cannot read), PARE_EINPUT (malformed; where = path and,
 * when known, the node), PARE_ENOMEM. The caller owns *out on success. */
pare_status pare_graph_load(const char *path, pare_graph **out, pare_error *err);
pare_status pare_graph_load_buffer(const void *buf, size_t len, const char *where,
                                   pare_graph **out, pare_error *err);

/* Writes the model to a temporary name beside path and renames it over path. */
pare_status pare_graph_save(const pare_graph *g, const char *path, pare_error *err);
/* Serialized ModelProto in a new buffer the caller frees with pare_free. */
pare_status pare_graph_save_buffer(const pare_graph *g, uint8_t **buf, size_t *len,
                                   pare_error *err);

/* A serialized TensorProto file (the input_N.pb / output_N.pb of ONNX's
 * backend tests). The tensor's name ("" when it has none) goes to *name
 * (may be NULL). f16/bf16 data stays as stored: no widening here. */
pare_status pare_tensor_load_pb(const char *path, pare_tensor **out, char **name,
                                pare_error *err);

/* ---- building and querying (core/src/graph.c) ---- */

pare_graph *pare_graph_new(void);
void pare_graph_free(pare_graph *g);

/* Index of the value called name, or -1. */
int pare_graph_find_value(const pare_graph *g, const char *name);
/* Index of the node called name, or -1 (node names may be empty). */
int pare_graph_find_node(const pare_graph *g, const char *name);
/* Adds a value (dtype undefined, rank unknown); returns its index or a
 * negative status. A name already present is PARE_EINPUT. */
int pare_graph_add_value(pare_graph *g, const char *name, pare_error *err);
/* Appends a node with copies of the given strings and index arrays; returns
 * its index or a negative status. Call pare_graph_index before executing. */
int pare_graph_add_node(pare_graph *g, const char *op_type, const char *domain,
                        const char *name, const int *inputs, int n_inputs,
                        const int *outputs, int n_outputs, pare_error *err);
/* Adds an attribute to node (copying name and data). */
pare_status pare_node_add_attr(pare_node *node, const pare_attr *attr, pare_error *err);

/* ---- editing (core/src/graph.c) ----
 * Compression passes edit a copy: clone, change weights and nodes, index. */

/* A deep copy (through the serialized form, so it is exactly what a save and
 * load would give). The caller owns *out on success. */
pare_status pare_graph_clone(const pare_graph *g, pare_graph **out, pare_error *err);
/* Adds a value holding initializer t, which the graph takes (freed on error
 * too); dtype and shape come from t. Returns the index or a negative status. */
int pare_graph_add_initializer(pare_graph *g, const char *name, pare_tensor *t, pare_error *err);
/* Replaces value v's initializer by t (taken; the old one is freed) and sets
 * the value's dtype and shape from it: how pruning shrinks a weight. */
void pare_graph_set_initializer(pare_graph *g, int v, pare_tensor *t);
/* base, or base_1, base_2... : the first name no value or node uses yet. */
const char *pare_graph_unique_name(const pare_graph *g, const char *base, char *buf, size_t size);
/* Deletes the nodes with remove[n] set (remove may be NULL: none), then every
 * value nothing refers to any more (orphaned initializers included, unless a
 * node carries a subgraph that might read them), and re-indexes. Value and
 * node indices change: look names up again afterwards. */
pare_status pare_graph_remove_nodes(pare_graph *g, const bool *remove, pare_error *err);

/* Rebuilds producers and consumers and sorts nodes topologically (stable:
 * an already sorted graph keeps its order). Errors name the node: a value
 * produced twice, an input nobody produces, a cycle. */
pare_status pare_graph_index(pare_graph *g, pare_error *err);

/* Opset version imported for domain ("" and "ai.onnx" are the same);
 * 0 when the model does not import it. */
int pare_graph_opset(const pare_graph *g, const char *domain);

/* "model.onnx: node 'conv3' (Conv)" into buf, for error locations. */
char *pare_graph_node_where(const pare_graph *g, int node, char *buf, size_t size);

/* Number of float parameters in initializers (all of them). */
int64_t pare_graph_param_count(const pare_graph *g);

/* ---- attributes ---- */

const pare_attr *pare_node_attr(const pare_node *node, const char *name);
int64_t pare_node_attr_int(const pare_node *node, const char *name, int64_t def);
float pare_node_attr_float(const pare_node *node, const char *name, float def);
/* Borrowed string, or def. */
const char *pare_node_attr_string(const pare_node *node, const char *name, const char *def);
/* Borrowed array and its length via *n; NULL and *n = 0 when absent. */
const int64_t *pare_node_attr_ints(const pare_node *node, const char *name, int *n);
const float *pare_node_attr_floats(const pare_node *node, const char *name, int *n);

void pare_attr_fini(pare_attr *attr);

#endif
