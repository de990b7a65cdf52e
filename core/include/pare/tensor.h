/* Dense tensors: contiguous, row-major (NCHW for images).
 *
 * A pare_tensor either owns its data (allocated by pare_tensor_new/dup, freed
 * by pare_tensor_free) or is a view naming someone else's buffer
 * (pare_tensor_view), which must not outlive that buffer. A tensor with
 * data == NULL is a shape carrier: dtype and dims only (used by shape
 * inference). dtype values equal ONNX TensorProto.DataType numbers.
 * Thread-safety: none; a tensor is used by one thread at a time. */
#ifndef PARE_TENSOR_H
#define PARE_TENSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pare/error.h"

#define PARE_MAX_DIMS 8

typedef enum pare_dtype {
    PARE_UNDEFINED = 0,
    PARE_F32 = 1,
    PARE_U8 = 2,
    PARE_I8 = 3,
    PARE_U16 = 4,
    PARE_I16 = 5,
    PARE_I32 = 6,
    PARE_I64 = 7,
    PARE_STRING = 8, /* recognised, never computed on */
    PARE_BOOL = 9,   /* one byte per element, 0 or 1 */
    PARE_F16 = 10,   /* widened to f32 when loaded as a weight */
    PARE_F64 = 11,
    PARE_U32 = 12,
    PARE_U64 = 13,
    PARE_BF16 = 16   /* widened to f32 when loaded as a weight */
} pare_dtype;

typedef struct pare_tensor {
    pare_dtype dtype;
    int ndim;                      /* 0 = scalar */
    int64_t dims[PARE_MAX_DIMS];
    void *data;                    /* NULL for a shape carrier */
    bool owns_data;
} pare_tensor;

size_t pare_dtype_size(pare_dtype dtype);       /* 0 for STRING/UNDEFINED */
const char *pare_dtype_name(pare_dtype dtype);  /* "float32", "int64", ... */

int64_t pare_shape_numel(int ndim, const int64_t *dims);
static inline int64_t pare_tensor_numel(const pare_tensor *t) { return pare_shape_numel(t->ndim, t->dims); }
static inline size_t pare_tensor_nbytes(const pare_tensor *t) { return (size_t)pare_tensor_numel(t) * pare_dtype_size(t->dtype); }
static inline float *pare_tensor_f32(const pare_tensor *t) { return (float *)t->data; }

/* New zero-filled tensor owning its data; NULL on OOM or ndim > PARE_MAX_DIMS. */
pare_tensor *pare_tensor_new(pare_dtype dtype, int ndim, const int64_t *dims);
/* Deep copy (a shape carrier copies as a shape carrier). */
pare_tensor *pare_tensor_dup(const pare_tensor *t);
void pare_tensor_free(pare_tensor *t);

/* Fills caller storage as a non-owning view (data may be NULL). */
void pare_tensor_view(pare_tensor *view, pare_dtype dtype, int ndim,
                      const int64_t *dims, void *data);

bool pare_tensor_same_shape(const pare_tensor *a, const pare_tensor *b);

/* "[1, 16, 28, 28]"; -1 dims print as "?". Returns buf. */
char *pare_shape_format(int ndim, const int64_t *dims, char *buf, size_t size);

/* Element i of any numeric dtype as double / int64 (for small tensors:
 * shape inputs, scalars, tests). */
double pare_tensor_get_f64(const pare_tensor *t, int64_t i);
int64_t pare_tensor_get_i64(const pare_tensor *t, int64_t i);

/* IEEE half and bfloat16 to float. */
float pare_f16_to_f32(uint16_t h);
float pare_bf16_to_f32(uint16_t h);
uint16_t pare_f32_to_f16(float f);

#endif
