/* Private to core: the pieces of ONNX I/O shared by onnx_io.c (files, wire
 * checks, public entry points), onnx_load.c (ModelProto -> pare_graph),
 * onnx_save.c (pare_graph -> ModelProto) and onnx_tensor.c (TensorProto and
 * TypeProto <-> pare). Built on the protobuf-c code generated from onnx.proto.
 *
 * Ownership: protobuf messages built for saving live in an onnx_arena and
 * borrow strings and tensor data from the graph; onnx_arena_fini frees the
 * messages, never the borrowed data. Messages unpacked from bytes are freed
 * with protobuf_c_message_free_unpacked and the same onnx_alloc. */
#ifndef PARE_ONNX_IO_H
#define PARE_ONNX_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "onnx.pb-c.h"
#include "pare/error.h"
#include "pare/graph.h"
#include "pare/tensor.h"

/* Elements allowed in one tensor or shape (sanity limit against bad files). */
#define ONNX_MAX_NUMEL ((int64_t)1 << 40)
/* Protobuf nesting accepted before the file is refused (subgraphs in
 * attributes nest 3 levels each). protobuf-c recurses without a limit. */
#define ONNX_MAX_DEPTH 96
/* A serialized protobuf message cannot exceed 2 GiB. */
#define ONNX_PROTOBUF_LIMIT ((size_t)INT32_MAX)

/* protobuf-c allocations routed through pare_alloc, so tests can fail them. */
typedef struct onnx_alloc {
    ProtobufCAllocator pc;
    bool failed;              /* an allocation returned NULL */
} onnx_alloc;
void onnx_alloc_init(onnx_alloc *a);

/* Bump list of allocations for messages built while saving. */
typedef struct onnx_arena {
    void *blocks;             /* singly linked */
    bool failed;
} onnx_arena;
void *onnx_arena_alloc(onnx_arena *ar, size_t size);   /* zeroed; NULL on OOM */
void onnx_arena_fini(onnx_arena *ar);

/* Walks the protobuf wire format of buf as a message of type desc before
 * protobuf-c sees it: refuses truncated data, bytes that are not this
 * message, and nesting deeper than ONNX_MAX_DEPTH, with a clear message. */
pare_status onnx_wire_check(const uint8_t *buf, size_t len,
                            const ProtobufCMessageDescriptor *desc, const char *what,
                            const char *where, pare_error *err);

/* Packs msg into a new pare_alloc buffer (*out, *len). PARE_ENOMEM. */
pare_status onnx_pack(const ProtobufCMessage *msg, uint8_t **out, size_t *len);
/* true when a and b pack to the same bytes; *oom set on allocation failure. */
bool onnx_same_packed(const ProtobufCMessage *a, const ProtobufCMessage *b, bool *oom);

/* ---- tensors and types (onnx_tensor.c) ---- */

typedef struct onnx_tensor_opts {
    const char *base_dir;     /* folder of the model file; NULL: refuse external data */
    bool widen;               /* f16/bf16 -> f32 (initializers) */
} onnx_tensor_opts;

/* TensorProto -> new owning tensor. where names the tensor in messages.
 * PARE_EINPUT (malformed), PARE_EUNSUPPORTED (string, complex, rank > 8,
 * external data without a folder), PARE_EIO (external file), PARE_ENOMEM. */
pare_status onnx_tensor_from_proto(const Onnx__TensorProto *tp, const onnx_tensor_opts *opts,
                                   pare_tensor **out, const char *where, pare_error *err);

/* Fills tp (already initialised) with t's dtype, dims and raw_data, which
 * borrows t->data. PARE_EUNSUPPORTED for strings, PARE_EINTERNAL for a shape
 * carrier with elements, PARE_ENOMEM. */
pare_status onnx_tensor_to_proto(const pare_tensor *t, onnx_arena *ar, Onnx__TensorProto *tp);

/* ONNX data type number -> pare dtype; 1 when pare models it, 0 when ONNX
 * knows it but pare does not (complex, float8, int4), -1 when unknown. */
int onnx_dtype_known(int32_t onnx_type);
const char *onnx_dtype_name(int32_t onnx_type);

/* The type of a value as pare keeps it. */
typedef struct onnx_vtype {
    pare_dtype dtype;
    int ndim;                           /* -1: unknown rank */
    int64_t dims[PARE_MAX_DIMS];
    const char *dim_names[PARE_MAX_DIMS];  /* borrowed from the TypeProto */
} onnx_vtype;

/* TypeProto -> onnx_vtype (NULL tp: untyped). Non-tensor types and element
 * types pare does not model give dtype UNDEFINED, ndim -1. PARE_EINPUT for
 * negative dims and unknown element types, PARE_EUNSUPPORTED for rank > 8. */
pare_status onnx_vtype_from_proto(const Onnx__TypeProto *tp, onnx_vtype *vt,
                                  const char *where, pare_error *err);
/* pare_value type -> new TypeProto in the arena, or NULL (untyped); sets
 * ar->failed on OOM. */
Onnx__TypeProto *onnx_type_from_value(const pare_value *v, onnx_arena *ar);
bool onnx_vtype_matches(const onnx_vtype *vt, const pare_value *v);

/* ---- attributes (onnx_load.c / onnx_save.c) ---- */

/* AttributeProto -> pare_attr (zeroed by the caller). Unmodelled kinds and
 * attributes whose modelled form would lose something keep their packed
 * bytes in opaque. Errors carry where and "attribute 'name': ...". */
pare_status onnx_attr_from_proto(const Onnx__AttributeProto *ap, pare_attr *a,
                                 const char *where, pare_error *err);
/* pare_attr -> new AttributeProto in the arena (opaque attributes are
 * unpacked with alloc and must be freed by the caller through *unpacked,
 * which may be NULL when nothing was unpacked). */
pare_status onnx_attr_to_proto(const pare_attr *a, onnx_arena *ar, onnx_alloc *alloc,
                               Onnx__AttributeProto **out, ProtobufCMessage **unpacked);

/* ---- models ---- */

typedef struct onnx_load_opts {
    const char *where;        /* path as given, for messages; may be NULL */
    const char *base_dir;     /* for external data; NULL refuses it */
} onnx_load_opts;

/* ModelProto -> new graph (indexed). The model's raw_data buffers are freed
 * as initializers are converted, to keep peak memory down. */
pare_status onnx_graph_from_model(Onnx__ModelProto *m, const onnx_load_opts *opts,
                                  pare_graph **out, pare_error *err);

/* Weights in a side file (pare_graph_save of models over 2 GiB). */
typedef struct onnx_external {
    const char *location;     /* side file name written in the model */
    /* filled by onnx_model_build_init: per value index, the offset of its
       initializer in the side file or -1 (inline); freed by the caller */
    int64_t *offsets;
    size_t total;             /* side file size */
} onnx_external;

/* The ModelProto for a graph: messages in the arena, extras unpacked with
 * alloc. ext NULL: weights inline. */
typedef struct onnx_model_build {
    Onnx__ModelProto model;
    onnx_arena arena;
    onnx_alloc alloc;
    ProtobufCMessage **unpacked;   /* messages to free_unpacked */
    int n_unpacked;
    int cap_unpacked;
} onnx_model_build;
/* where: location for messages (NULL: g->path). Call onnx_model_build_fini
 * afterwards whatever the result. */
pare_status onnx_model_build_init(onnx_model_build *b, const pare_graph *g,
                                  onnx_external *ext, const char *where, pare_error *err);
void onnx_model_build_fini(onnx_model_build *b);

/* Tests: initializer bytes above which pare_graph_save writes weights to a
 * side file (default: when the model would not fit in 2 GiB). 0 restores. */
void onnx_set_external_threshold(size_t bytes);

#endif
