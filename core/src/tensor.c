#include <math.h>
#include <stdio.h>
#include <string.h>

#include "pare/alloc.h"
#include "pare/tensor.h"

size_t pare_dtype_size(pare_dtype dtype)
{
    switch (dtype) {
    case PARE_F32: case PARE_I32: case PARE_U32: return 4;
    case PARE_U8: case PARE_I8: case PARE_BOOL: return 1;
    case PARE_U16: case PARE_I16: case PARE_F16: case PARE_BF16: return 2;
    case PARE_I64: case PARE_F64: case PARE_U64: return 8;
    case PARE_STRING: case PARE_UNDEFINED: return 0;
    }
    return 0;
}

const char *pare_dtype_name(pare_dtype dtype)
{
    switch (dtype) {
    case PARE_F32: return "float32";
    case PARE_U8: return "uint8";
    case PARE_I8: return "int8";
    case PARE_U16: return "uint16";
    case PARE_I16: return "int16";
    case PARE_I32: return "int32";
    case PARE_I64: return "int64";
    case PARE_STRING: return "string";
    case PARE_BOOL: return "bool";
    case PARE_F16: return "float16";
    case PARE_F64: return "float64";
    case PARE_U32: return "uint32";
    case PARE_U64: return "uint64";
    case PARE_BF16: return "bfloat16";
    case PARE_UNDEFINED: return "undefined";
    }
    return "unknown";
}

int64_t pare_shape_numel(int ndim, const int64_t *dims)
{
    int64_t n = 1;
    for (int i = 0; i < ndim; i++)
        n *= dims[i];
    return n;
}

void pare_tensor_view(pare_tensor *view, pare_dtype dtype, int ndim,
                      const int64_t *dims, void *data)
{
    memset(view, 0, sizeof *view);
    view->dtype = dtype;
    view->ndim = ndim;
    for (int i = 0; i < ndim && i < PARE_MAX_DIMS; i++)
        view->dims[i] = dims[i];
    view->data = data;
    view->owns_data = false;
}

pare_tensor *pare_tensor_new(pare_dtype dtype, int ndim, const int64_t *dims)
{
    pare_tensor *t;
    size_t bytes;

    if (ndim < 0 || ndim > PARE_MAX_DIMS)
        return NULL;
    for (int i = 0; i < ndim; i++)
        if (dims[i] < 0)
            return NULL;
    t = pare_calloc(1, sizeof *t);
    if (!t)
        return NULL;
    pare_tensor_view(t, dtype, ndim, dims, NULL);
    bytes = pare_tensor_nbytes(t);
    t->data = pare_alloc_aligned(bytes);
    if (!t->data) {
        pare_free(t);
        return NULL;
    }
    memset(t->data, 0, bytes);
    t->owns_data = true;
    return t;
}

pare_tensor *pare_tensor_dup(const pare_tensor *src)
{
    pare_tensor *t;

    if (!src)
        return NULL;
    if (!src->data) {
        t = pare_calloc(1, sizeof *t);
        if (t)
            pare_tensor_view(t, src->dtype, src->ndim, src->dims, NULL);
        return t;
    }
    t = pare_tensor_new(src->dtype, src->ndim, src->dims);
    if (t)
        memcpy(t->data, src->data, pare_tensor_nbytes(src));
    return t;
}

void pare_tensor_free(pare_tensor *t)
{
    if (!t)
        return;
    if (t->owns_data)
        pare_free(t->data);
    pare_free(t);
}

bool pare_tensor_same_shape(const pare_tensor *a, const pare_tensor *b)
{
    if (a->ndim != b->ndim)
        return false;
    for (int i = 0; i < a->ndim; i++)
        if (a->dims[i] != b->dims[i])
            return false;
    return true;
}

char *pare_shape_format(int ndim, const int64_t *dims, char *buf, size_t size)
{
    size_t used = 0;

    if (!size)
        return buf;
    buf[0] = '\0';
    if (ndim < 0) {
        snprintf(buf, size, "?");
        return buf;
    }
    used += (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < ndim && used < size; i++) {
        if (dims[i] < 0)
            used += (size_t)snprintf(buf + used, size - used, "%s?", i ? ", " : "");
        else
            used += (size_t)snprintf(buf + used, size - used, "%s%lld", i ? ", " : "",
                                     (long long)dims[i]);
    }
    if (used < size)
        snprintf(buf + used, size - used, "]");
    return buf;
}

double pare_tensor_get_f64(const pare_tensor *t, int64_t i)
{
    const void *d = t->data;
    switch (t->dtype) {
    case PARE_F32: return ((const float *)d)[i];
    case PARE_F64: return ((const double *)d)[i];
    case PARE_U8: case PARE_BOOL: return ((const uint8_t *)d)[i];
    case PARE_I8: return ((const int8_t *)d)[i];
    case PARE_U16: return ((const uint16_t *)d)[i];
    case PARE_I16: return ((const int16_t *)d)[i];
    case PARE_I32: return ((const int32_t *)d)[i];
    case PARE_I64: return (double)((const int64_t *)d)[i];
    case PARE_U32: return ((const uint32_t *)d)[i];
    case PARE_U64: return (double)((const uint64_t *)d)[i];
    case PARE_F16: return pare_f16_to_f32(((const uint16_t *)d)[i]);
    case PARE_BF16: return pare_bf16_to_f32(((const uint16_t *)d)[i]);
    case PARE_STRING: case PARE_UNDEFINED: break;
    }
    return 0.0;
}

int64_t pare_tensor_get_i64(const pare_tensor *t, int64_t i)
{
    switch (t->dtype) {
    case PARE_I64: return ((const int64_t *)t->data)[i];
    case PARE_U64: return (int64_t)((const uint64_t *)t->data)[i];
    case PARE_I32: return ((const int32_t *)t->data)[i];
    default: return (int64_t)pare_tensor_get_f64(t, i);
    }
}

float pare_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h >> 15) << 31;
    uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ff, bits;
    float f;

    if (exp == 0) {
        /* zero or subnormal: mant * 2^-24 */
        f = ldexpf((float)mant, -24);
        return sign ? -f : f;
    }
    if (exp == 31)
        bits = sign | 0x7f800000u | (mant << 13);
    else
        bits = sign | ((exp + 112) << 23) | (mant << 13);
    memcpy(&f, &bits, 4);
    return f;
}

float pare_bf16_to_f32(uint16_t h)
{
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t pare_f32_to_f16(float f)
{
    uint32_t x;
    uint32_t sign, mant;
    int exp;

    memcpy(&x, &f, 4);
    sign = (x >> 16) & 0x8000;
    exp = (int)((x >> 23) & 0xff) - 127 + 15;
    mant = x & 0x7fffff;
    if (((x >> 23) & 0xff) == 0xff)
        return (uint16_t)(sign | 0x7c00 | (mant ? 0x200 : 0));
    if (exp >= 31)
        return (uint16_t)(sign | 0x7c00);
    if (exp <= 0) {
        if (exp < -10)
            return (uint16_t)sign;
        mant |= 0x800000;
        {
            int shift = 14 - exp;
            uint32_t half = mant >> shift;
            uint32_t rem = mant & ((1u << shift) - 1), mid = 1u << (shift - 1);
            if (rem > mid || (rem == mid && (half & 1)))
                half++;
            return (uint16_t)(sign | half);
        }
    }
    {
        uint32_t half = sign | ((uint32_t)exp << 10) | (mant >> 13);
        uint32_t rem = mant & 0x1fff;
        if (rem > 0x1000 || (rem == 0x1000 && (half & 1)))
            half++;
        return (uint16_t)half;
    }
}
