/* ONNX TensorProto and TypeProto <-> pare tensors and value types. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "onnx_io.h"
#include "pare/alloc.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "onnx_tensor.c reads raw_data as little-endian; big-endian hosts need byte swaps"
#endif

static const char *const dtype_names[] = {
    [0] = "undefined", [1] = "float32", [2] = "uint8", [3] = "int8", [4] = "uint16",
    [5] = "int16", [6] = "int32", [7] = "int64", [8] = "string", [9] = "bool",
    [10] = "float16", [11] = "float64", [12] = "uint32", [13] = "uint64",
    [14] = "complex64", [15] = "complex128", [16] = "bfloat16", [17] = "float8e4m3fn",
    [18] = "float8e4m3fnuz", [19] = "float8e5m2", [20] = "float8e5m2fnuz",
    [21] = "uint4", [22] = "int4", [23] = "float4e2m1",
};

int onnx_dtype_known(int32_t t)
{
    if (t < 0 || t > 23)
        return -1;
    if ((t >= 1 && t <= 13) || t == 16)
        return 1;
    return t == 0 ? -1 : 0;
}

const char *onnx_dtype_name(int32_t t)
{
    return t >= 0 && t <= 23 ? dtype_names[t] : "unknown";
}

/* Which typed field of TensorProto carries a dtype's values. */
enum typed_field { F_NONE, F_FLOAT, F_INT32, F_INT64, F_DOUBLE, F_UINT64, F_STRING };
static const char *const field_names[] = {
    "none", "float_data", "int32_data", "int64_data", "double_data", "uint64_data", "string_data",
};

static enum typed_field field_for(pare_dtype d)
{
    switch (d) {
    case PARE_F32: return F_FLOAT;
    case PARE_I32: case PARE_I16: case PARE_I8: case PARE_U16: case PARE_U8:
    case PARE_BOOL: case PARE_F16: case PARE_BF16: return F_INT32;
    case PARE_I64: return F_INT64;
    case PARE_F64: return F_DOUBLE;
    case PARE_U32: case PARE_U64: return F_UINT64;
    case PARE_STRING: return F_STRING;
    case PARE_UNDEFINED: break;
    }
    return F_NONE;
}

static size_t field_count(const Onnx__TensorProto *tp, enum typed_field f)
{
    switch (f) {
    case F_FLOAT: return tp->n_float_data;
    case F_INT32: return tp->n_int32_data;
    case F_INT64: return tp->n_int64_data;
    case F_DOUBLE: return tp->n_double_data;
    case F_UINT64: return tp->n_uint64_data;
    case F_STRING: return tp->n_string_data;
    case F_NONE: break;
    }
    return 0;
}

/* Element i of the typed field f stored into dst as dtype d (dst has the
 * final dtype: f32 when widening f16/bf16). */
static void store_typed(const Onnx__TensorProto *tp, pare_dtype d, bool widen, void *dst, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        switch (d) {
        case PARE_F32: ((float *)dst)[i] = tp->float_data[i]; break;
        case PARE_I32: ((int32_t *)dst)[i] = tp->int32_data[i]; break;
        case PARE_I16: ((int16_t *)dst)[i] = (int16_t)tp->int32_data[i]; break;
        case PARE_I8: ((int8_t *)dst)[i] = (int8_t)tp->int32_data[i]; break;
        case PARE_U16: ((uint16_t *)dst)[i] = (uint16_t)tp->int32_data[i]; break;
        case PARE_U8: ((uint8_t *)dst)[i] = (uint8_t)tp->int32_data[i]; break;
        case PARE_BOOL: ((uint8_t *)dst)[i] = tp->int32_data[i] != 0; break;
        case PARE_F16:
            if (widen)
                ((float *)dst)[i] = pare_f16_to_f32((uint16_t)tp->int32_data[i]);
            else
                ((uint16_t *)dst)[i] = (uint16_t)tp->int32_data[i];
            break;
        case PARE_BF16:
            if (widen)
                ((float *)dst)[i] = pare_bf16_to_f32((uint16_t)tp->int32_data[i]);
            else
                ((uint16_t *)dst)[i] = (uint16_t)tp->int32_data[i];
            break;
        case PARE_I64: ((int64_t *)dst)[i] = tp->int64_data[i]; break;
        case PARE_F64: ((double *)dst)[i] = tp->double_data[i]; break;
        case PARE_U32: ((uint32_t *)dst)[i] = (uint32_t)tp->uint64_data[i]; break;
        case PARE_U64: ((uint64_t *)dst)[i] = tp->uint64_data[i]; break;
        case PARE_STRING: case PARE_UNDEFINED: break;
        }
    }
}

/* Raw little-endian bytes src of dtype d into dst (widened when asked). */
static void store_raw(const uint8_t *src, pare_dtype d, bool widen, void *dst, size_t n)
{
    if (widen && (d == PARE_F16 || d == PARE_BF16)) {
        for (size_t i = 0; i < n; i++) {
            uint16_t h = (uint16_t)(src[2 * i] | src[2 * i + 1] << 8);
            ((float *)dst)[i] = d == PARE_F16 ? pare_f16_to_f32(h) : pare_bf16_to_f32(h);
        }
    } else if (d == PARE_BOOL) {
        for (size_t i = 0; i < n; i++)
            ((uint8_t *)dst)[i] = src[i] != 0;
    } else if (n) {
        memcpy(dst, src, n * pare_dtype_size(d));
    }
}

/* Strict non-negative decimal (external data offset/length). */
static bool parse_size(const char *s, int64_t *out)
{
    int64_t v = 0;

    if (!s || !*s)
        return false;
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || v > (INT64_MAX - 9) / 10)
            return false;
        v = v * 10 + (*s - '0');
    }
    *out = v;
    return true;
}

/* A location must stay inside the model's folder. */
static pare_status check_location(const char *loc, const char *where, pare_error *err)
{
    const char *p = loc;
    bool drive;

    if (!*loc)
        return pare_fail(err, PARE_EINPUT, where, "external data has an empty 'location'");
    /* "C:\\w.bin" from Windows exporters; loc[1] is checked before loc[2] */
    drive = ((loc[0] >= 'A' && loc[0] <= 'Z') || (loc[0] >= 'a' && loc[0] <= 'z')) &&
            loc[1] == ':' && (loc[2] == '/' || loc[2] == '\\');
    if (loc[0] == '/' || loc[0] == '\\' || drive)
        return pare_fail(err, PARE_EINPUT, where,
                         "external data path '%s' is absolute; it must be relative to the model's folder",
                         loc);
    while (*p) {
        size_t n = strcspn(p, "/\\");
        if (n == 2 && p[0] == '.' && p[1] == '.')
            return pare_fail(err, PARE_EINPUT, where,
                             "external data path '%s' leaves the model's folder", loc);
        p += n;
        if (*p)
            p++;
    }
    return PARE_OK;
}

/* Where a tensor's external bytes are, checked before anything is allocated
 * for them: an open file, an offset, and the location for messages. */
typedef struct external_src {
    int fd;
    int64_t offset;
    const char *location;
} external_src;

static pare_status external_open(const Onnx__TensorProto *tp, const onnx_tensor_opts *opts,
                                 int64_t need, external_src *src, const char *where, pare_error *err)
{
    const char *loc = NULL, *off_s = NULL, *len_s = NULL;
    int64_t off = 0, len = -1;
    char *path;
    struct stat st;
    pare_status rc = PARE_OK;
    int fd;

    src->fd = -1;
    for (size_t i = 0; i < tp->n_external_data; i++) {
        const Onnx__StringStringEntryProto *kv = tp->external_data[i];
        if (!kv->key)
            continue;
        if (!strcmp(kv->key, "location"))
            loc = kv->value ? kv->value : "";
        else if (!strcmp(kv->key, "offset"))
            off_s = kv->value ? kv->value : "";
        else if (!strcmp(kv->key, "length"))
            len_s = kv->value ? kv->value : "";
    }
    if (!loc)
        return pare_fail(err, PARE_EINPUT, where, "external data has no 'location'");
    rc = check_location(loc, where, err);
    if (rc != PARE_OK)
        return rc;
    if (off_s && !parse_size(off_s, &off))
        return pare_fail(err, PARE_EINPUT, where, "external data offset '%s' is not a number", off_s);
    if (len_s && !parse_size(len_s, &len))
        return pare_fail(err, PARE_EINPUT, where, "external data length '%s' is not a number", len_s);
    if (!opts->base_dir)
        return pare_fail(err, PARE_EUNSUPPORTED, where,
                         "external data in '%s' needs the model's file path; load the model from its file",
                         loc);
    path = pare_alloc(strlen(opts->base_dir) + strlen(loc) + 2);
    if (!path)
        return pare_fail(err, PARE_ENOMEM, where, "out of memory reading external data");
    sprintf(path, "%s/%s", opts->base_dir, loc);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    pare_free(path);
    if (fd < 0)
        return pare_fail(err, PARE_EIO, where, "cannot open external data file '%s': %s", loc,
                         strerror(errno));
    if (fstat(fd, &st) || !S_ISREG(st.st_mode))
        rc = pare_fail(err, PARE_EINPUT, where, "external data file '%s' is not a regular file", loc);
    else if (off > st.st_size)
        rc = pare_fail(err, PARE_EINPUT, where,
                       "external data offset %lld is past the end of '%s' (%lld bytes)",
                       (long long)off, loc, (long long)st.st_size);
    else if (len >= 0 && len > st.st_size - off)
        rc = pare_fail(err, PARE_EINPUT, where,
                       "external data (offset %lld, length %lld) runs past the end of '%s' (%lld bytes)",
                       (long long)off, (long long)len, loc, (long long)st.st_size);
    else if ((len < 0 ? st.st_size - off : len) != need)
        rc = pare_fail(err, PARE_EINPUT, where,
                       "external data holds %lld bytes but the tensor needs %lld",
                       (long long)(len < 0 ? st.st_size - off : len), (long long)need);
    if (rc != PARE_OK) {
        close(fd);
        return rc;
    }
    src->fd = fd;
    src->offset = off;
    src->location = loc;
    return PARE_OK;
}

/* Reads need bytes of dtype d into dst (n elements of the final dtype). */
static pare_status external_read(const external_src *src, pare_dtype d, bool widen, int64_t need,
                                 void *dst, size_t n, const char *where, pare_error *err)
{
    uint8_t *tmp = NULL, *buf = dst;
    pare_status rc = PARE_OK;

    if (widen && (d == PARE_F16 || d == PARE_BF16)) {
        tmp = pare_alloc((size_t)need);
        if (!tmp)
            return pare_fail(err, PARE_ENOMEM, where, "out of memory reading external data");
        buf = tmp;
    }
    for (int64_t done = 0; done < need && rc == PARE_OK;) {
        size_t chunk = (size_t)(need - done) > ((size_t)1 << 30) ? (size_t)1 << 30 : (size_t)(need - done);
        ssize_t r = pread(src->fd, buf + done, chunk, (off_t)(src->offset + done));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            rc = pare_fail(err, PARE_EIO, where, "cannot read external data file '%s': %s",
                           src->location, r < 0 ? strerror(errno) : "unexpected end of file");
        else
            done += r;
    }
    if (rc == PARE_OK && tmp)
        store_raw(tmp, d, widen, dst, n);
    else if (rc == PARE_OK && d == PARE_BOOL)
        store_raw(dst, d, false, dst, n); /* normalise to 0/1 in place */
    pare_free(tmp);
    return rc;
}

pare_status onnx_tensor_from_proto(const Onnx__TensorProto *tp, const onnx_tensor_opts *opts,
                                   pare_tensor **out, const char *where, pare_error *err)
{
    int32_t ot = tp->has_data_type ? tp->data_type : 0;
    bool external = tp->has_data_location &&
                    tp->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
    int64_t dims[PARE_MAX_DIMS] = { 0 }, numel = 1, need;
    char shape[160];
    pare_dtype d, final;
    enum typed_field want;
    external_src ext = { -1, 0, NULL };
    pare_tensor *t = NULL;
    pare_status rc = PARE_OK;
    size_t es;
    int n_sources = 0, known = onnx_dtype_known(ot);

    *out = NULL;
    if (ot == 0)
        return pare_fail(err, PARE_EINPUT, where, "tensor has no data type");
    if (known < 0)
        return pare_fail(err, PARE_EINPUT, where, "unknown data type %d", (int)ot);
    if (known == 0 || ot == PARE_STRING)
        return pare_fail(err, PARE_EUNSUPPORTED, where,
                         "tensor of data type %s is not supported", onnx_dtype_name(ot));
    d = (pare_dtype)ot;
    if (tp->n_dims > PARE_MAX_DIMS)
        return pare_fail(err, PARE_EUNSUPPORTED, where,
                         "tensor has %zu dimensions; pare supports at most %d", tp->n_dims,
                         PARE_MAX_DIMS);
    for (size_t i = 0; i < tp->n_dims; i++) {
        dims[i] = tp->dims[i];
        if (dims[i] < 0)
            return pare_fail(err, PARE_EINPUT, where, "dimension %zu is negative (%lld)", i,
                             (long long)dims[i]);
    }
    for (size_t i = 0; i < tp->n_dims; i++) {
        if (dims[i] && numel > ONNX_MAX_NUMEL / dims[i]) {
            numel = -1;
            break;
        }
        numel *= dims[i];
    }
    /* A zero dim anywhere makes the tensor empty even after an overflow. */
    for (size_t i = 0; i < tp->n_dims; i++)
        if (!dims[i])
            numel = 0;
    pare_shape_format((int)tp->n_dims, dims, shape, sizeof shape);
    if (numel < 0 || numel > ONNX_MAX_NUMEL)
        return pare_fail(err, PARE_EINPUT, where, "shape %s has too many elements (limit 2^40)", shape);
    es = pare_dtype_size(d);
    need = numel * (int64_t)es;
    want = field_for(d);

    /* Exactly one data source, and typed fields must match the dtype. */
    for (int f = F_FLOAT; f <= F_STRING; f++) {
        if (!field_count(tp, (enum typed_field)f))
            continue;
        if (f != (int)want)
            return pare_fail(err, PARE_EINPUT, where, "%s tensor stores data in %s",
                             onnx_dtype_name(ot), field_names[f]);
        n_sources++;
    }
    n_sources += tp->has_raw_data ? 1 : 0;
    n_sources += external ? 1 : 0;
    if (n_sources > 1)
        return pare_fail(err, PARE_EINPUT, where,
                         "tensor has more than one data source (raw_data, %s, external data)",
                         field_names[want]);
    if (!n_sources && numel > 0)
        return pare_fail(err, PARE_EINPUT, where, "tensor has no data (shape %s needs %lld values)",
                         shape, (long long)numel);
    if (tp->has_raw_data && (int64_t)tp->raw_data.len != need)
        return pare_fail(err, PARE_EINPUT, where,
                         "raw_data holds %zu bytes but shape %s of %s needs %lld",
                         tp->raw_data.len, shape, onnx_dtype_name(ot), (long long)need);
    if (!tp->has_raw_data && !external && n_sources && (int64_t)field_count(tp, want) != numel)
        return pare_fail(err, PARE_EINPUT, where, "%s holds %zu values but shape %s needs %lld",
                         field_names[want], field_count(tp, want), shape, (long long)numel);

    if (external) {
        rc = external_open(tp, opts, need, &ext, where, err);
        if (rc != PARE_OK)
            return rc;
    }
    final = opts->widen && (d == PARE_F16 || d == PARE_BF16) ? PARE_F32 : d;
    t = pare_calloc(1, sizeof *t);
    if (t) {
        pare_tensor_view(t, final, (int)tp->n_dims, dims, NULL);
        t->data = pare_alloc_aligned((size_t)numel * pare_dtype_size(final));
        t->owns_data = true;
    }
    if (!t || !t->data)
        rc = pare_fail(err, PARE_ENOMEM, where, "out of memory loading tensor %s", shape);
    else if (external)
        rc = external_read(&ext, d, opts->widen, need, t->data, (size_t)numel, where, err);
    else if (tp->has_raw_data)
        store_raw(tp->raw_data.data, d, opts->widen, t->data, (size_t)numel);
    else
        store_typed(tp, d, opts->widen, t->data, (size_t)numel);
    if (ext.fd >= 0)
        close(ext.fd);
    if (rc != PARE_OK) {
        pare_tensor_free(t);
        return rc;
    }
    *out = t;
    return PARE_OK;
}

pare_status onnx_tensor_to_proto(const pare_tensor *t, onnx_arena *ar, Onnx__TensorProto *tp)
{
    int64_t numel = pare_tensor_numel(t);

    if (t->dtype == PARE_STRING || t->dtype == PARE_UNDEFINED || t->ndim < 0 ||
        t->ndim > PARE_MAX_DIMS)
        return PARE_EUNSUPPORTED;
    if (!t->data && numel > 0)
        return PARE_EINTERNAL;
    tp->has_data_type = 1;
    tp->data_type = (int32_t)t->dtype;
    tp->n_dims = (size_t)t->ndim;
    if (t->ndim) {
        tp->dims = onnx_arena_alloc(ar, (size_t)t->ndim * sizeof(int64_t));
        if (!tp->dims)
            return PARE_ENOMEM;
        memcpy(tp->dims, t->dims, (size_t)t->ndim * sizeof(int64_t));
    }
    tp->has_raw_data = 1;
    tp->raw_data.len = pare_tensor_nbytes(t);
    tp->raw_data.data = tp->raw_data.len ? t->data : NULL;
    return PARE_OK;
}

/* ---- value types ---- */

pare_status onnx_vtype_from_proto(const Onnx__TypeProto *tp, onnx_vtype *vt,
                                  const char *where, pare_error *err)
{
    const Onnx__TypeProto__Tensor *tt;

    memset(vt, 0, sizeof *vt);
    vt->dtype = PARE_UNDEFINED;
    vt->ndim = -1;
    if (!tp || tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !tp->tensor_type)
        return PARE_OK; /* untyped, or a sequence/map/optional/sparse type */
    tt = tp->tensor_type;
    if (tt->has_elem_type) {
        int known = onnx_dtype_known(tt->elem_type);
        if (known < 0 && tt->elem_type != 0)
            return pare_fail(err, PARE_EINPUT, where, "unknown data type %d", (int)tt->elem_type);
        if (known > 0)
            vt->dtype = (pare_dtype)tt->elem_type;
        else if (known == 0)
            return PARE_OK; /* kept as an untyped value; the TypeProto is saved verbatim */
    }
    if (!tt->shape)
        return PARE_OK;
    if (tt->shape->n_dim > PARE_MAX_DIMS)
        return pare_fail(err, PARE_EUNSUPPORTED, where,
                         "value has rank %zu; pare supports at most %d dimensions",
                         tt->shape->n_dim, PARE_MAX_DIMS);
    vt->ndim = (int)tt->shape->n_dim;
    for (int i = 0; i < vt->ndim; i++) {
        const Onnx__TensorShapeProto__Dimension *dim = tt->shape->dim[i];
        vt->dims[i] = -1;
        if (dim->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE) {
            if (dim->dim_value < 0)
                return pare_fail(err, PARE_EINPUT, where, "dimension %d is negative (%lld)", i,
                                 (long long)dim->dim_value);
            if (dim->dim_value > ONNX_MAX_NUMEL)
                return pare_fail(err, PARE_EINPUT, where, "dimension %d is too large (%lld)", i,
                                 (long long)dim->dim_value);
            vt->dims[i] = dim->dim_value;
        } else if (dim->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM &&
                   dim->dim_param && dim->dim_param[0]) {
            vt->dim_names[i] = dim->dim_param;
        }
    }
    return PARE_OK;
}

bool onnx_vtype_matches(const onnx_vtype *vt, const pare_value *v)
{
    if (vt->dtype != v->dtype || vt->ndim != v->ndim)
        return false;
    for (int i = 0; i < vt->ndim; i++) {
        const char *a = vt->dim_names[i], *b = v->dims[i] < 0 ? v->dim_names[i] : NULL;
        if (vt->dims[i] != v->dims[i])
            return false;
        if (!a != !b || (a && strcmp(a, b)))
            return false;
    }
    return true;
}

Onnx__TypeProto *onnx_type_from_value(const pare_value *v, onnx_arena *ar)
{
    Onnx__TypeProto *tp;
    Onnx__TypeProto__Tensor *tt;
    Onnx__TensorShapeProto *sp;
    Onnx__TensorShapeProto__Dimension *dims;

    if (v->dtype == PARE_UNDEFINED && v->ndim < 0)
        return NULL;
    tp = onnx_arena_alloc(ar, sizeof *tp);
    tt = onnx_arena_alloc(ar, sizeof *tt);
    if (!tp || !tt)
        return NULL;
    onnx__type_proto__init(tp);
    onnx__type_proto__tensor__init(tt);
    tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    tp->tensor_type = tt;
    if (v->dtype != PARE_UNDEFINED) {
        tt->has_elem_type = 1;
        tt->elem_type = (int32_t)v->dtype;
    }
    if (v->ndim < 0)
        return tp;
    sp = onnx_arena_alloc(ar, sizeof *sp);
    dims = onnx_arena_alloc(ar, (size_t)(v->ndim ? v->ndim : 1) * sizeof *dims);
    if (!sp || !dims)
        return NULL;
    onnx__tensor_shape_proto__init(sp);
    sp->dim = onnx_arena_alloc(ar, (size_t)(v->ndim ? v->ndim : 1) * sizeof *sp->dim);
    if (!sp->dim)
        return NULL;
    sp->n_dim = (size_t)v->ndim;
    for (int i = 0; i < v->ndim && i < PARE_MAX_DIMS; i++) {
        Onnx__TensorShapeProto__Dimension *dim = &dims[i];
        onnx__tensor_shape_proto__dimension__init(dim);
        if (v->dims[i] >= 0) {
            dim->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            dim->dim_value = v->dims[i];
        } else if (v->dim_names[i]) {
            dim->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            dim->dim_param = v->dim_names[i];
        }
        sp->dim[i] = dim;
    }
    tt->shape = sp;
    return tp;
}
