/* Shape and index ops: Flatten, Reshape, Squeeze, Unsqueeze, Identity,
 * Dropout, Shape, Size, Constant, ConstantOfShape, Transpose,
 * Concat, Split, Slice.
 *
 * These ops move bytes: they work on elements by size (1, 2, 4 or 8 bytes),
 * so every storable dtype (bool, int64, float16...) goes through the same
 * code. Cast lives in shape_cast.c, Pad in shape_pad.c, Resize and Upsample
 * in shape_resize.c, the index and generator ops (Gather, GatherElements,
 * Tile, Range, Trilu, ArgMax/ArgMin, OneHot, NonZero) in shape_index.c.
 * Their entry points are declared below; the family's one table is at the
 * end of this file.
 *
 * Values an output shape depends on (Reshape's shape, Slice's starts...)
 * must be known at plan time: infer fails with PARE_EUNSUPPORTED when they
 * are not, and forward refuses if they changed since. */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#ifdef __SSE2__
#include <xmmintrin.h>
#endif

#include "ops/families.h"
#include "ops/shape_util.h"
#include "pare/alloc.h"

/* ---- helpers ---- */

/* Work (in bytes moved) above which a copy loop is split across threads. */
#define PARALLEL_BYTES ((int64_t)1 << 18)

static pare_tensor *arg(const pare_op_ctx *ctx, int i)
{
    return i < ctx->n_in ? ctx->in[i] : NULL;
}

static pare_tensor *res(const pare_op_ctx *ctx, int i)
{
    return i < ctx->n_out ? ctx->out[i] : NULL;
}

static void set_shape(pare_tensor *t, pare_dtype dtype, int ndim, const int64_t *dims)
{
    t->dtype = dtype;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++)
        t->dims[i] = dims[i];
}

static int64_t numel_range(const int64_t *dims, int from, int to)
{
    int64_t n = 1;
    for (int i = from; i < to; i++)
        n *= dims[i];
    return n;
}

/* The first n_in inputs and output 0 must be present. */
static pare_status need(pare_op_ctx *ctx, int n_in)
{
    for (int i = 0; i < n_in; i++)
        if (!arg(ctx, i))
            return pare_op_fail(ctx, PARE_EINPUT, "expects at least %d input%s, got %d", n_in,
                                n_in > 1 ? "s" : "", i);
    if (!res(ctx, 0))
        return pare_op_fail(ctx, PARE_EINPUT, "output 0 is missing");
    return PARE_OK;
}

/* Axis in [-rank, rank) (or [-rank, rank] when inclusive) to [0, rank). */
static pare_status norm_axis(pare_op_ctx *ctx, int64_t axis, int rank, bool inclusive, int *out)
{
    int64_t hi = inclusive ? rank : rank - 1;
    *out = 0;
    if (axis < -(int64_t)rank || axis > hi)
        return pare_op_fail(ctx, PARE_EINPUT, "axis %lld is out of range for rank %d",
                            (long long)axis, rank);
    *out = (int)(axis < 0 ? axis + rank : axis);
    return PARE_OK;
}

/* Forward re-reads constant inputs (pads, starts...); if they differ from
 * what planning saw, the planned output shape no longer fits: refuse. */
static pare_status check_planned(pare_op_ctx *ctx, const pare_tensor *y, int ndim,
                                 const int64_t *dims, const char *what)
{
    bool same = y->ndim == ndim;
    for (int k = 0; same && k < ndim; k++)
        same = y->dims[k] == dims[k];
    if (same)
        return PARE_OK;
    return pare_op_fail(ctx, PARE_EUNSUPPORTED,
                        "%s changed after planning; the output shape was fixed then", what);
}

static void copy_bytes(void *dst, const void *src, size_t n)
{
    if (n && dst != src)
        memcpy(dst, src, n);
}

/* ---- strided copy: Transpose and Slice ---- */

/* Drops size-1 dims and merges dims that are contiguous in the source. */
static int simplify_view(int ndim, const int64_t *dims, const int64_t *strides, int64_t *d,
                         int64_t *s)
{
    int n = 0;
    for (int k = 0; k < ndim; k++) {
        if (dims[k] == 1)
            continue;
        if (n > 0 && s[n - 1] == strides[k] * dims[k]) {
            d[n - 1] *= dims[k];
            s[n - 1] = strides[k];
        } else {
            d[n] = dims[k];
            s[n] = strides[k];
            n++;
        }
    }
    return n;
}

/* dst[0..n) = src[i * stride], element size es. */
#define GATHER_ROW(ES)                                                                  \
    for (int64_t i = 0; i < n; i++)                                                     \
        memcpy(dst + i * (ES), src + i * stride * (ES), (ES))

static void copy_row(char *restrict dst, const char *restrict src, int64_t n, int64_t stride,
                     size_t es)
{
    if (stride == 1) {
        if (es == 4 && n <= 16) { /* short rows: a library call costs more than the copy */
            uint32_t *restrict d = (uint32_t *)dst;
            const uint32_t *restrict s = (const uint32_t *)src;
            for (int64_t i = 0; i < n; i++)
                d[i] = s[i];
            return;
        }
        memcpy(dst, src, (size_t)n * es);
        return;
    }
    switch (es) {
    case 1: GATHER_ROW(1); break;
    case 2: GATHER_ROW(2); break;
    case 4: GATHER_ROW(4); break;
    case 8: GATHER_ROW(8); break;
    default:
        for (int64_t i = 0; i < n; i++)
            memcpy(dst + (size_t)i * es, src + i * stride * (int64_t)es, es);
    }
}

/* One tile of a 2-D transpose: dst[a * dst_a + b] = src[a + b * src_b]. */
#define TILE(ES)                                                                        \
    for (int64_t a = a0; a < a1; a++)                                                   \
        for (int64_t b = b0; b < b1; b++)                                               \
            memcpy(dst + (a * dst_a + b) * (ES), src + (a + b * src_b) * (ES), (ES))

static void copy_tile(char *restrict dst, const char *restrict src, int64_t a0, int64_t a1,
                      int64_t b0, int64_t b1, int64_t dst_a, int64_t src_b, size_t es)
{
    switch (es) {
    case 1: TILE(1); break;
    case 2: TILE(2); break;
    case 4: {
        float *restrict d = (float *)dst;
        const float *restrict s = (const float *)src;
        int64_t a = a0;
#ifdef __SSE2__
        /* 4x4 blocks transposed in registers */
        for (; a + 4 <= a1; a += 4) {
            int64_t b = b0;
            for (; b + 4 <= b1; b += 4) {
                __m128 r0 = _mm_loadu_ps(s + a + (b + 0) * src_b);
                __m128 r1 = _mm_loadu_ps(s + a + (b + 1) * src_b);
                __m128 r2 = _mm_loadu_ps(s + a + (b + 2) * src_b);
                __m128 r3 = _mm_loadu_ps(s + a + (b + 3) * src_b);
                _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
                _mm_storeu_ps(d + (a + 0) * dst_a + b, r0);
                _mm_storeu_ps(d + (a + 1) * dst_a + b, r1);
                _mm_storeu_ps(d + (a + 2) * dst_a + b, r2);
                _mm_storeu_ps(d + (a + 3) * dst_a + b, r3);
            }
            for (; b < b1; b++)
                for (int64_t q = a; q < a + 4; q++)
                    d[q * dst_a + b] = s[q + b * src_b];
        }
#endif
        for (; a < a1; a++)
            for (int64_t b = b0; b < b1; b++)
                d[a * dst_a + b] = s[a + b * src_b];
        break;
    }
    case 8: TILE(8); break;
    default:
        for (int64_t a = a0; a < a1; a++)
            for (int64_t b = b0; b < b1; b++)
                memcpy(dst + (size_t)(a * dst_a + b) * es, src + (a + b * src_b) * (int64_t)es, es);
    }
}

#define TILE_SIDE 32

/* Batched 2-D transpose: the source's unit-stride dim j is not the
 * destination's last dim. Every other dim is an outer loop. */
static void transpose_tiled(int n, const int64_t *d, const int64_t *s, int j, const char *src,
                            char *dst, size_t es, int n_threads)
{
    int64_t ostr[PARE_MAX_DIMS], od[PARE_MAX_DIMS], os_src[PARE_MAX_DIMS], os_dst[PARE_MAX_DIMS];
    int no = 0;
    int64_t A = d[j], B = d[n - 1], src_b = s[n - 1], n_outer = 1;
    int64_t a_tiles = (A + TILE_SIDE - 1) / TILE_SIDE, b_tiles = (B + TILE_SIDE - 1) / TILE_SIDE;
    int64_t n_work, total_bytes = numel_range(d, 0, n) * (int64_t)es;

    ostr[n - 1] = 1;
    for (int k = n - 2; k >= 0; k--)
        ostr[k] = ostr[k + 1] * d[k + 1];
    for (int k = 0; k < n - 1; k++) {
        if (k == j)
            continue;
        od[no] = d[k];
        os_src[no] = s[k];
        os_dst[no] = ostr[k];
        n_outer *= d[k];
        no++;
    }
    n_work = n_outer * a_tiles;
#pragma omp parallel for num_threads(n_threads) if (total_bytes > PARALLEL_BYTES) schedule(static)
    for (int64_t w = 0; w < n_work; w++) {
        int64_t outer = w / a_tiles, at = w % a_tiles, so = 0, dso = 0, rem = outer;
        int64_t a0 = at * TILE_SIDE, a1 = a0 + TILE_SIDE < A ? a0 + TILE_SIDE : A;
        for (int k = no - 1; k >= 0; k--) {
            int64_t idx = rem % od[k];
            rem /= od[k];
            so += idx * os_src[k];
            dso += idx * os_dst[k];
        }
        for (int64_t bt = 0; bt < b_tiles; bt++) {
            int64_t b0 = bt * TILE_SIDE, b1 = b0 + TILE_SIDE < B ? b0 + TILE_SIDE : B;
            copy_tile(dst + dso * (int64_t)es, src + so * (int64_t)es, a0, a1, b0, b1, ostr[j],
                      src_b, es);
        }
    }
}

/* dst (contiguous, shape dims) = the view of src with element strides
 * (negative for reversed slices, 0 for repeats). */
static void strided_copy(int ndim, const int64_t *dims, const int64_t *strides, const char *src,
                         char *dst, size_t es, int n_threads)
{
    int64_t d[PARE_MAX_DIMS], s[PARE_MAX_DIMS], rows, inner, chunk, n_chunks, total_bytes;
    int n;

    for (int k = 0; k < ndim; k++)
        if (dims[k] == 0)
            return;
    n = simplify_view(ndim, dims, strides, d, s);
    if (n == 0) {
        memcpy(dst, src, es);
        return;
    }
    inner = d[n - 1];
    if (s[n - 1] != 1 && n >= 2) {
        int j = -1;
        for (int k = 0; k < n - 1; k++)
            if (s[k] == 1)
                j = k;
        if (j >= 0 && inner >= 4 && d[j] >= 4) {
            transpose_tiled(n, d, s, j, src, dst, es, n_threads);
            return;
        }
    }
    rows = numel_range(d, 0, n - 1);
    total_bytes = rows * inner * (int64_t)es;
    if (n == 1) {
        copy_row(dst, src, inner, s[0], es);
        return;
    }
    chunk = (4096 + inner - 1) / inner;
    n_chunks = (rows + chunk - 1) / chunk;
#pragma omp parallel for num_threads(n_threads) if (total_bytes > PARALLEL_BYTES) schedule(static)
    for (int64_t c = 0; c < n_chunks; c++) {
        int64_t idx[PARE_MAX_DIMS], off = 0, r0 = c * chunk, r1 = r0 + chunk < rows ? r0 + chunk : rows;
        int64_t rem = r0, row_bytes = inner * (int64_t)es, step = s[n - 2] * (int64_t)es;
        for (int k = n - 2; k >= 0; k--) {
            idx[k] = rem % d[k];
            rem /= d[k];
            off += idx[k] * s[k];
        }
        /* runs along dim n-2 share one stride; the odometer moves between runs */
        for (int64_t r = r0; r < r1;) {
            int64_t m = d[n - 2] - idx[n - 2];
            const char *sp = src + off * (int64_t)es;
            char *dp = dst + r * row_bytes;
            if (m > r1 - r)
                m = r1 - r;
            for (int64_t j = 0; j < m; j++)
                copy_row(dp + j * row_bytes, sp + j * step, inner, s[n - 1], es);
            r += m;
            idx[n - 2] += m;
            off += m * s[n - 2];
            for (int k = n - 2; k >= 0 && idx[k] >= d[k]; k--) {
                off -= s[k] * d[k];
                idx[k] = 0;
                if (k > 0) {
                    idx[k - 1]++;
                    off += s[k - 1];
                }
            }
        }
    }
}

static void contiguous_strides(int ndim, const int64_t *dims, int64_t *strides)
{
    int64_t s = 1;
    for (int k = ndim - 1; k >= 0; k--) {
        strides[k] = s;
        s *= dims[k];
    }
}

/* ---- aliasing ops: out[0] has in[0]'s bytes under a new shape ---- */

static pare_status alias_forward(pare_op_ctx *ctx)
{
    pare_tensor *x = ctx->in[0], *y = ctx->out[0];
    copy_bytes(y->data, x->data, pare_tensor_nbytes(y));
    return PARE_OK;
}

/* ---- backward of the byte-moving ops (float32 gradients) ---- */

static pare_tensor *dres(const pare_op_ctx *ctx, int i)
{
    return ctx->dout && i < ctx->n_out ? ctx->dout[i] : NULL;
}

static pare_tensor *darg(const pare_op_ctx *ctx, int i)
{
    return ctx->din && i < ctx->n_in ? ctx->din[i] : NULL;
}

/* Gradients are float32: other dtypes are PARE_EUNSUPPORTED. */
static pare_status grad_dtype(pare_op_ctx *ctx)
{
    if (ctx->in[0]->dtype == PARE_F32)
        return PARE_OK;
    return pare_op_fail(ctx, PARE_EUNSUPPORTED, "backward: dtype '%s' not supported (float32 only)",
                        pare_dtype_name(ctx->in[0]->dtype));
}

/* Identity, Flatten, Reshape, Squeeze, Unsqueeze: dx = dy, same bytes. */
static pare_status alias_backward(pare_op_ctx *ctx)
{
    pare_tensor *dx = darg(ctx, 0), *dy = dres(ctx, 0);
    pare_status rc = grad_dtype(ctx);

    if (rc != PARE_OK || !dx)
        return rc;
    if (dy)
        memmove(dx->data, dy->data, pare_tensor_nbytes(dx));
    else
        memset(dx->data, 0, pare_tensor_nbytes(dx));
    return PARE_OK;
}

static pare_status identity_infer(pare_op_ctx *ctx)
{
    pare_status rc = need(ctx, 1);
    size_t es;

    if (rc == PARE_OK)
        rc = shape_elem_size(ctx, ctx->in[0], &es);
    if (rc == PARE_OK)
        set_shape(ctx->out[0], ctx->in[0]->dtype, ctx->in[0]->ndim, ctx->in[0]->dims);
    return rc;
}

static pare_status flatten_infer(pare_op_ctx *ctx)
{
    pare_status rc = need(ctx, 1);
    const pare_tensor *x;
    int64_t dims[2];
    int axis = 0;
    size_t es;

    if (rc == PARE_OK)
        rc = shape_elem_size(ctx, ctx->in[0], &es);
    if (rc != PARE_OK)
        return rc;
    x = ctx->in[0];
    rc = norm_axis(ctx, pare_node_attr_int(ctx->node, "axis", 1), x->ndim, true, &axis);
    if (rc != PARE_OK)
        return rc;
    dims[0] = numel_range(x->dims, 0, axis);
    dims[1] = numel_range(x->dims, axis, x->ndim);
    set_shape(ctx->out[0], x->dtype, 2, dims);
    return PARE_OK;
}

/* Target shape of Reshape: 0 copies the input dim (unless allowzero), one
 * -1 takes what is left. */
static pare_status reshape_dims(pare_op_ctx *ctx, const int64_t *shape, int n, bool allowzero)
{
    const pare_tensor *x = ctx->in[0];
    int64_t dims[PARE_MAX_DIMS], known = 1, total = pare_tensor_numel(x);
    int infer_at = -1;
    char a[128], b[128];

    for (int i = 0; i < n; i++) {
        int64_t v = shape[i];
        if (v == -1) {
            if (infer_at >= 0)
                return pare_op_fail(ctx, PARE_EINPUT, "shape has more than one -1");
            infer_at = i;
            dims[i] = 1;
            continue;
        }
        if (v < -1)
            return pare_op_fail(ctx, PARE_EINPUT, "shape has an invalid dim %lld", (long long)v);
        if (v == 0 && !allowzero) {
            if (i >= x->ndim)
                return pare_op_fail(ctx, PARE_EINPUT,
                                    "shape dim %d is 0 (copy) but the input has rank %d", i,
                                    x->ndim);
            v = x->dims[i];
        }
        dims[i] = v;
        known *= v;
    }
    if (infer_at >= 0) {
        if (known == 0 || total % known != 0)
            return pare_op_fail(ctx, PARE_EINPUT, "cannot reshape %s into %s",
                                pare_shape_format(x->ndim, x->dims, a, sizeof a),
                                pare_shape_format(n, shape, b, sizeof b));
        dims[infer_at] = total / known;
        known *= dims[infer_at];
    }
    if (known != total)
        return pare_op_fail(ctx, PARE_EINPUT, "cannot reshape %s (%lld elements) into %s",
                            pare_shape_format(x->ndim, x->dims, a, sizeof a), (long long)total,
                            pare_shape_format(n, dims, b, sizeof b));
    set_shape(ctx->out[0], x->dtype, n, dims);
    return PARE_OK;
}

static pare_status reshape_infer(pare_op_ctx *ctx)
{
    pare_status rc = need(ctx, 2);
    int64_t shape[PARE_MAX_DIMS];
    bool allowzero;
    int n = 0;
    size_t es;

    if (rc == PARE_OK)
        rc = shape_elem_size(ctx, ctx->in[0], &es);
    if (rc == PARE_OK)
        rc = shape_const_ints(ctx, ctx->in[1], "shape", shape, PARE_MAX_DIMS, &n);
    if (rc != PARE_OK)
        return rc;
    allowzero = pare_node_attr_int(ctx->node, "allowzero", 0) != 0;
    if (allowzero) {
        bool zero = false, minus = false;
        for (int i = 0; i < n; i++) {
            zero |= shape[i] == 0;
            minus |= shape[i] == -1;
        }
        if (zero && minus)
            return pare_op_fail(ctx, PARE_EINPUT, "shape has both 0 and -1 with allowzero=1");
    }
    return reshape_dims(ctx, shape, n, allowzero);
}

/* Reshape-1..4: the shape is an attribute. */
static pare_status reshape1_infer(pare_op_ctx *ctx)
{
    pare_status rc = need(ctx, 1);
    const int64_t *shape;
    int n;
    size_t es;

    if (rc == PARE_OK)
        rc = shape_elem_size(ctx, ctx->in[0], &es);
    if (rc != PARE_OK)
        return rc;
    shape = pare_node_attr_ints(ctx->node, "shape", &n);
    if (n > PARE_MAX_DIMS)
        return pare_op_fail(ctx, PARE_EINPUT, "shape has %d dims, at most %d supported", n,
                            PARE_MAX_DIMS);
    return reshape_dims(ctx, shape, n, false);
}

/* Axes of Squeeze/Unsqueeze: attribute before opset 13, input from 13. */
static pare_status squeeze_axes(pare_op_ctx *ctx, bool from_input, int64_t *axes, int *n,
                                bool *given)
{
    *n = 0;
    *given = false;
    if (from_input) {
        const pare_tensor *t = arg(ctx, 1);
        if (!t)
            return PARE_OK;
        *given = true;
        return shape_const_ints(ctx, t, "axes", axes, PARE_MAX_DIMS, n);
    }
    {
        const pare_attr *a = pare_node_attr(ctx->node, "axes");
        if (!a)
            return PARE_OK;
        if (a->type != PARE_ATTR_INTS)
            return pare_op_fail(ctx, PARE_EINPUT, "attribute 'axes' must be a list of ints");
        if (a->n > PARE_MAX_DIMS)
            return pare_op_fail(ctx, PARE_EINPUT, "'axes' has %d values, at most %d allowed", a->n,
                                PARE_MAX_DIMS);
        for (int i = 0; i < a->n; i++)
            axes[i] = a->ints[i];
        *n = a->n;
        *given = true;
    }
    return PARE_OK;
}

static pare_status squeeze_common(pare_op_ctx *ctx, bool from_input)
{
    pare_status rc = need(ctx, 1);
    const pare_tensor *x;
    int64_t axes[PARE_MAX_DIMS], dims[PARE_MAX_DIMS];
    bool drop[PARE_MAX_DIMS] = {false}, given;
    int n = 0, nd = 0;
    size_t es;

    if (rc == PARE_OK)
        rc = shape_elem_size(ctx, ctx->in[0], &es);
    if (rc == PARE_OK)
        rc = squeeze_axes(ctx, from_input, axes, &n, &given);
    if (rc != PARE_OK)
        return rc;
    x = ctx->in[0];
    if (!given || n == 0) {
        for (int k = 0; k < x->ndim; k++)
            drop[k] = x->dims[k] == 1;
    }
    for (int i = 0; i < n; i++) {
        int k;
        rc = norm_axis(ctx, axes[i], x->ndim, false, &k);
        if (rc != PARE_OK)
            return rc;
        if (drop[k])
            return pare_op_fail(ctx, PARE_EINPUT, "axis %lld is listed twice", (long long)axes[i]);
        if (x->dims[k] != 1)
            return pare_op_fail(ctx, PARE_EINPUT, "cannot squeeze axis %d of size %lld", k,
                                (long long)x->dims[k]);
        drop[k] = true;
    }
    for (int k = 0; k < x->ndim; k++)
        if (!drop[k])
            dims[nd++] = x->dims[k];
    set_shape(ctx->out[0], x->dtype, nd, dims);
    return PARE_OK;
}

static pare_status squeeze1_infer(pare_op_ctx *ctx)
{
    return squeeze_common(ctx, false);
}

static pare_status squeeze13_infer(pare_op_ctx *ctx)
{
    return squeeze_common(ctx, true);
}

static pare_status unsqueeze_common(pare_op_ctx *ctx, bool from_input)
{
    pare_status rc = need(ctx, 1);
    const pare_tensor *x;
    int64_t axes[PARE_MAX_DIMS], dims[PARE_MAX_DIMS];
    bool added[PARE_MAX_DIMS] = {false}, given;
    int n = 0, rank;
    size_t es;

    if (rc == PARE_OK)
        rc = shape_elem_size(ctx, ctx->in[0], &es);
    if (rc == PARE_OK)
        rc = squeeze_axes(ctx, from_input, axes, &n, &given);
    if (rc != PARE_OK)
        return rc;
    x = ctx->in[0];
    if (!given)
        return pare_op_fail(ctx, PARE_EINPUT, "'axes' is required");
    rank = x->ndim + n;
    if (rank > PARE_MAX_DIMS)
        return pare_op_fail(ctx, PARE_EUNSUPPORTED, "output rank %d is above %d", rank,
                            PARE_MAX_DIMS);
    for (int i = 0; i < n; i++) {
        int k;
        rc = norm_axis(ctx, axes[i], rank, false, &k);
        if (rc != PARE_OK)
            return rc;
        if (added[k])
            return pare_op_fail(ctx, PARE_EINPUT, "axis %lld is listed twice", (long long)axes[i]);
        added[k] = true;
    }
    for (int k = 0, j = 0; k < rank; k++)
        dims[k] = added[k] ? 1 : x->dims[j++];
    set_shape(ctx->out[0], x->dtype, rank, dims);
    return PARE_OK;
}

static pare_status unsqueeze1_infer(pare_op_ctx *ctx)
{
    return unsqueeze_common(ctx, false);
}

static pare_status unsqueeze13_infer(pare_op_ctx *ctx)
{
    return unsqueeze_common(ctx, true);
}

/* ---- Dropout ---- */

/* Training mode (opset 12+ input) is random, so outside of fine-tuning pare
 * runs it only when it is a no-op: training_mode false, or ratio 0. Both
 * must be known at plan time to decide. While fine-tuning (ctx->training)
 * Dropout drops, whatever training_mode says. */
static pare_status dropout_check_mode(pare_op_ctx *ctx)
{
    const pare_tensor *train = ctx->opset >= 12 ? arg(ctx, 2) : NULL;
    const pare_tensor *ratio = ctx->opset >= 12 ? arg(ctx, 1) : NULL;

    if (ctx->training)
        return PARE_OK;
    if (!train)
        return PARE_OK;
    if (train->dtype != PARE_BOOL || pare_tensor_numel(train) != 1)
        return pare_op_fail(ctx, PARE_EINPUT, "'training_mode' must be a bool scalar");
    if (!train->data) {
        pare_op_fail(ctx, PARE_EUNSUPPORTED, "input 'training_mode' must be a constant");
        pare_error_hint(ctx->err, "pare runs Dropout in inference mode only");
        return PARE_EUNSUPPORTED;
    }
    if (!*(const uint8_t *)train->data)
        return PARE_OK;
    if (ratio && ratio->data && pare_tensor_numel(ratio) == 1 && pare_tensor_get_f64(ratio, 0) == 0.0)
        return PARE_OK; /* training with ratio 0 keeps everything */
    return pare_op_fail(ctx, PARE_EUNSUPPORTED, "dropout in training mode is not supported");
}

/* The drop ratio while fine-tuning: attribute before opset 12, optional
 * input from 12 (default 0.5), in [0, 1). */
static pare_status dropout_ratio(pare_op_ctx *ctx, double *out)
{
    const pare_tensor *ratio = ctx->opset >= 12 ? arg(ctx, 1) : NULL;
    double r = 0.5;

    if (ctx->opset < 12) {
        r = pare_node_attr_float(ctx->node, "ratio", 0.5f);
    } else if (ratio) {
        if (!ratio->data || pare_tensor_numel(ratio) != 1) {
            pare_op_fail(ctx, PARE_EUNSUPPORTED, "input 'ratio' must be a constant scalar");
            pare_error_hint(ctx->err, "fine-tuning needs the dropout ratio at plan time");
            return PARE_EUNSUPPORTED;
        }
        r = pare_tensor_get_f64(ratio, 0);
    }
    if (!(r >= 0.0 && r < 1.0))
        return pare_op_fail(ctx, PARE_EINPUT, "dropout ratio %g is outside [0, 1)", r);
    *out = r;
    return PARE_OK;
}

/* splitmix64's finalizer. */
static inline uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Keep element i of this step? A counter-based hash of (seed, i): the seed
 * is mixed first so steps with nearby seeds draw unrelated masks, and
 * backward regenerates the mask without storing it. */
static inline bool dropout_keep(uint64_t seed, int64_t i, double ratio)
{
    uint64_t z = mix64(mix64(seed + 0x9e3779b97f4a7c15ull) + (uint64_t)i * 0x9e3779b97f4a7c15ull);
    return (double)(z >> 11) * (1.0 / 9007199254740992.0) >= ratio;
}

/* Mask: same dtype as the data before opset 10, bool from 10. */
static pare_status dropout_infer(pare_op_ctx *ctx)
{
    pare_status rc = need(ctx, 1);
    const pare_tensor *x;
    pare_tensor *mask = res(ctx, 1);
    size_t es;

    if (rc == PARE_OK)
        rc = shape_elem_size(ctx, ctx->in[0], &es);
    if (rc == PARE_OK)
        rc = dropout_check_mode(ctx);
    if (rc != PARE_OK)
        return rc;
    x = ctx->in[0];
    set_shape(ctx->out[0], x->dtype, x->ndim, x->dims);
    if (mask)
        set_shape(mask, ctx->opset >= 10 ? PARE_BOOL : x->dtype, x->ndim, x->dims);
    return PARE_OK;
}

static void fill_one(pare_tensor *t)
{
    int64_t n = pare_tensor_numel(t);
    switch (t->dtype) {
    case PARE_F32: {
        float *p = t->data;
        for (int64_t i = 0; i < n; i++)
            p[i] = 1.0f;
        break;
    }
    case PARE_F64: {
        double *p = t->data;
        for (int64_t i = 0; i < n; i++)
            p[i] = 1.0;
        break;
    }
    case PARE_F16: {
        uint16_t *p = t->data;
        for (int64_t i = 0; i < n; i++)
            p[i] = 0x3c00;
        break;
    }
    case PARE_BF16: {
        uint16_t *p = t->data;
        for (int64_t i = 0; i < n; i++)
            p[i] = 0x3f80;
        break;
    }
    default: /* bool and one-byte types */
        memset(t->data, 1, (size_t)n);
    }
}

/* Training (ctx->training): y = x * mask / (1 - ratio), float32 only;
 * otherwise y = x and the mask is all ones. */
static pare_status dropout_forward(pare_op_ctx *ctx)
{
    pare_tensor *mask = res(ctx, 1);
    const pare_tensor *x = ctx->in[0];
    double ratio = 0.0;
    float scale;
    pare_status rc = dropout_check_mode(ctx);

    if (rc == PARE_OK && ctx->training)
        rc = dropout_ratio(ctx, &ratio);
    if (rc != PARE_OK)
        return rc;
    if (!ctx->training || ratio == 0.0) {
        alias_forward(ctx);
        if (mask && mask->data)
            fill_one(mask);
        return PARE_OK;
    }
    if (x->dtype != PARE_F32)
        return pare_op_fail(ctx, PARE_EUNSUPPORTED, "training dropout on dtype '%s' not supported",
                            pare_dtype_name(x->dtype));
    scale = (float)(1.0 / (1.0 - ratio));
    for (int64_t i = 0; i < pare_tensor_numel(x); i++) {
        bool keep = dropout_keep(ctx->seed, i, ratio);
        pare_tensor_f32(ctx->out[0])[i] = keep ? pare_tensor_f32(x)[i] * scale : 0.0f;
        if (mask && mask->data) {
            if (mask->dtype == PARE_F32)
                pare_tensor_f32(mask)[i] = keep ? 1.0f : 0.0f;
            else if (mask->dtype == PARE_BOOL)
                ((uint8_t *)mask->data)[i] = keep;
        }
    }
    return PARE_OK;
}

/* dx = dy * mask / (1 - ratio) with the forward's mask (same seed) while
 * training, dx = dy otherwise. */
static pare_status dropout_backward(pare_op_ctx *ctx)
{
    pare_tensor *dx = darg(ctx, 0), *dy = dres(ctx, 0);
    double ratio = 0.0;
    float scale;
    pare_status rc = grad_dtype(ctx);

    if (rc == PARE_OK && ctx->training)
        rc = dropout_ratio(ctx, &ratio);
    if (rc != PARE_OK || !dx)
        return rc;
    if (!dy) {
        memset(dx->data, 0, pare_tensor_nbytes(dx));
        return PARE_OK;
    }
    if (!ctx->training || ratio == 0.0) {
        memmove(dx->data, dy->data, pare_tensor_nbytes(dx));
        return PARE_OK;
    }
    scale = (float)(1.0 / (1.0 - ratio));
    for (int64_t i = 0; i < pare_tensor_numel(dx); i++)
        pare_tensor_f32(dx)[i] =
            dropout_keep(ctx->seed, i, ratio) ? pare_tensor_f32(dy)[i] * scale : 0.0f;
    return PARE_OK;
}

/* ---- Shape, Size ---- */

static pare_status shape_range(pare_op_ctx *ctx, int64_t *start, int64_t *end)
{
    int64_t r = ctx->in[0]->ndim;
    *start = 0;
    *end = r;
    if (ctx->opset >= 15) {
        *start = pare_node_attr_int(ctx->node, "start", 0);
        *end = pare_node_attr_int(ctx->node, "end", r);
        if (*start < 0)
            *start += r;
        if (*end < 0)
            *end += r;
        *start = *start < 0 ? 0 : *start > r ? r : *start;
        *end = *end < 0 ? 0 : *end > r ? r : *end;
        if (*end < *start)
            *end = *start;
    }
    return PARE_OK;
}

static pare_status shape_infer(pare_op_ctx *ctx)
{
    pare_status rc = need(ctx, 1);
    int64_t start, end, n;

    if (rc != PARE_OK)
        return rc;
    shape_range(ctx, &start, &end);
    n = end - start;
    set_shape(ctx->out[0], PARE_I64, 1, &n);
    return PARE_OK;
}

static pare_status shape_forward(pare_op_ctx *ctx)
{
    int64_t start, end, *y = ctx->out[0]->data;

    shape_range(ctx, &start, &end);
    for (int64_t i = start; i < end; i++)
        y[i - start] = ctx->in[0]->dims[i];
    return PARE_OK;
}

static pare_status size_infer(pare_op_ctx *ctx)
{
    pare_status rc = need(ctx, 1);
    if (rc == PARE_OK)
        set_shape(ctx->out[0], PARE_I64, 0, NULL);
    return rc;
}

static pare_status size_forward(pare_op_ctx *ctx)
{
    *(int64_t *)ctx->out[0]->data = pare_tensor_numel(ctx->in[0]);
    return PARE_OK;
}

/* ---- Constant, ConstantOfShape ---- */

static const char *const constant_attrs[] = {
    "value", "value_float", "value_floats", "value_int", "value_ints",
    "value_string", "value_strings", "sparse_value",
};
#define N_CONSTANT_ATTRS (int)(sizeof constant_attrs / sizeof constant_attrs[0])

static pare_status constant_attr(pare_op_ctx *ctx, const pare_attr **out, int *which)
{
    *out = NULL;
    for (int i = 0; i < N_CONSTANT_ATTRS; i++) {
        const pare_attr *a = pare_node_attr(ctx->node, constant_attrs[i]);
        if (!a)
            continue;
        if (*out)
            return pare_op_fail(ctx, PARE_EINPUT, "has both '%s' and '%s'", (*out)->name, a->name);
        *out = a;
        *which = i;
    }
    if (!*out)
        return pare_op_fail(ctx, PARE_EINPUT, "has no value attribute");
    return PARE_OK;
}

static pare_status constant_infer(pare_op_ctx *ctx)
{
    const pare_attr *a;
    int which = 0;
    int64_t n;
    pare_status rc;
    size_t es;

    if (!res(ctx, 0))
        return pare_op_fail(ctx, PARE_EINPUT, "output 0 is missing");
    rc = constant_attr(ctx, &a, &which);
    if (rc != PARE_OK)
        return rc;
    switch (which) {
    case 0:
        if (a->type != PARE_ATTR_TENSOR || !a->t)
            return pare_op_fail(ctx, PARE_EINPUT, "attribute 'value' must be a tensor");
        rc = shape_elem_size(ctx, a->t, &es);
        if (rc != PARE_OK)
            return rc;
        if (!a->t->data && pare_tensor_nbytes(a->t))
            return pare_op_fail(ctx, PARE_EINPUT, "attribute 'value' has no data");
        set_shape(ctx->out[0], a->t->dtype, a->t->ndim, a->t->dims);
        return PARE_OK;
    case 1:
        if (a->type != PARE_ATTR_FLOAT)
            return pare_op_fail(ctx, PARE_EINPUT, "attribute 'value_float' must be a float");
        set_shape(ctx->out[0], PARE_F32, 0, NULL);
        return PARE_OK;
    case 2:
        if (a->type != PARE_ATTR_FLOATS)
            return pare_op_fail(ctx, PARE_EINPUT, "attribute 'value_floats' must be floats");
        n = a->n;
        set_shape(ctx->out[0], PARE_F32, 1, &n);
        return PARE_OK;
    case 3:
        if (a->type != PARE_ATTR_INT)
            return pare_op_fail(ctx, PARE_EINPUT, "attribute 'value_int' must be an int");
        set_shape(ctx->out[0], PARE_I64, 0, NULL);
        return PARE_OK;
    case 4:
        if (a->type != PARE_ATTR_INTS)
            return pare_op_fail(ctx, PARE_EINPUT, "attribute 'value_ints' must be ints");
        n = a->n;
        set_shape(ctx->out[0], PARE_I64, 1, &n);
        return PARE_OK;
    default:
        return pare_op_fail(ctx, PARE_EUNSUPPORTED, "constant from '%s' is not supported", a->name);
    }
}

static pare_status constant_forward(pare_op_ctx *ctx)
{
    const pare_attr *a;
    pare_tensor *y = ctx->out[0];
    int which = 0;
    pare_status rc = constant_attr(ctx, &a, &which);

    if (rc != PARE_OK)
        return rc;
    switch (which) {
    case 0: copy_bytes(y->data, a->t->data, pare_tensor_nbytes(y)); break;
    case 1: *(float *)y->data = a->f; break;
    case 2: copy_bytes(y->data, a->floats, (size_t)a->n * sizeof(float)); break;
    case 3: *(int64_t *)y->data = a->i; break;
    case 4: copy_bytes(y->data, a->ints, (size_t)a->n * sizeof(int64_t)); break;
    default: return pare_op_fail(ctx, PARE_EUNSUPPORTED, "constant from '%s' is not supported", a->name);
    }
    return PARE_OK;
}

static pare_status cos_value(pare_op_ctx *ctx, const pare_tensor **value)
{
    const pare_attr *a = pare_node_attr(ctx->node, "value");
    size_t es;

    *value = NULL;
    if (!a)
        return PARE_OK;
    if (a->type != PARE_ATTR_TENSOR || !a->t || pare_tensor_numel(a->t) != 1 || !a->t->data)
        return pare_op_fail(ctx, PARE_EINPUT, "attribute 'value' must be a one-element tensor");
    *value = a->t;
    return shape_elem_size(ctx, a->t, &es);
}

static pare_status constant_of_shape_infer(pare_op_ctx *ctx)
{
    pare_status rc = need(ctx, 1);
    const pare_tensor *value = NULL;
    int64_t dims[PARE_MAX_DIMS];
    int n = 0;

    if (rc == PARE_OK)
        rc = cos_value(ctx, &value);
    if (rc == PARE_OK)
        rc = shape_const_ints(ctx, ctx->in[0], "shape", dims, PARE_MAX_DIMS, &n);
    if (rc != PARE_OK)
        return rc;
    for (int i = 0; i < n; i++)
        if (dims[i] < 0)
            return pare_op_fail(ctx, PARE_EINPUT, "shape has a negative dim %lld",
                                (long long)dims[i]);
    set_shape(ctx->out[0], value ? value->dtype : PARE_F32, n, dims);
    return PARE_OK;
}

static pare_status constant_of_shape_forward(pare_op_ctx *ctx)
{
    const pare_tensor *value = NULL;
    pare_tensor *y = ctx->out[0];
    int64_t n = pare_tensor_numel(y);
    pare_status rc = cos_value(ctx, &value);
    size_t es = pare_dtype_size(y->dtype);
    char *p = y->data;

    if (rc != PARE_OK)
        return rc;
    if (!value) {
        memset(p, 0, (size_t)n * es);
        return PARE_OK;
    }
    for (int64_t i = 0; i < n; i++)
        memcpy(p + (size_t)i * es, value->data, es);
    return PARE_OK;
}

/* ---- Transpose ---- */

static pare_status transpose_perm(pare_op_ctx *ctx, int *perm)
{
    const pare_tensor *x = ctx->in[0];
    const pare_attr *a = pare_node_attr(ctx->node, "perm");
    bool seen[PARE_MAX_DIMS] = {false};

    if (!a || (a->type == PARE_ATTR_INTS && a->n == 0 && x->ndim != 0)) {
        for (int k = 0; k < x->ndim; k++)
            perm[k] = x->ndim - 1 - k;
        return PARE_OK;
    }
    if (a->type != PARE_ATTR_INTS || a->n != x->ndim)
        return pare_op_fail(ctx, PARE_EINPUT, "'perm' has %d values for rank %d",
                            a->type == PARE_ATTR_INTS ? a->n : 0, x->ndim);
    for (int k = 0; k < x->ndim; k++) {
        int64_t p = a->ints[k];
        if (p < 0)
            p += x->ndim;
        if (p < 0 || p >= x->ndim || seen[p])
            return pare_op_fail(ctx, PARE_EINPUT, "'perm' is not a permutation of 0..%d",
                                x->ndim - 1);
        seen[p] = true;
        perm[k] = (int)p;
    }
    return PARE_OK;
}

static pare_status transpose_infer(pare_op_ctx *ctx)
{
    pare_status rc = need(ctx, 1);
    int perm[PARE_MAX_DIMS];
    int64_t dims[PARE_MAX_DIMS];
    size_t es;

    if (rc == PARE_OK)
        rc = shape_elem_size(ctx, ctx->in[0], &es);
    if (rc == PARE_OK)
        rc = transpose_perm(ctx, perm);
    if (rc != PARE_OK)
        return rc;
    for (int k = 0; k < ctx->in[0]->ndim; k++)
        dims[k] = ctx->in[0]->dims[perm[k]];
    set_shape(ctx->out[0], ctx->in[0]->dtype, ctx->in[0]->ndim, dims);
    return PARE_OK;
}

static pare_status transpose_forward(pare_op_ctx *ctx)
{
    const pare_tensor *x = ctx->in[0];
    pare_tensor *y = ctx->out[0];
    int perm[PARE_MAX_DIMS];
    int64_t in_strides[PARE_MAX_DIMS], strides[PARE_MAX_DIMS];
    pare_status rc = transpose_perm(ctx, perm);

    if (rc != PARE_OK)
        return rc;
    contiguous_strides(x->ndim, x->dims, in_strides);
    for (int k = 0; k < x->ndim; k++)
        strides[k] = in_strides[perm[k]];
    strided_copy(y->ndim, y->dims, strides, x->data, y->data, pare_dtype_size(x->dtype),
                 ctx->n_threads);
    return PARE_OK;
}

/* dx = dy transposed back: dx's dim perm[k] walks dy's dim k. */
static pare_status transpose_backward(pare_op_ctx *ctx)
{
    const pare_tensor *x = ctx->in[0];
    pare_tensor *dx = darg(ctx, 0), *dy = dres(ctx, 0);
    int perm[PARE_MAX_DIMS];
    int64_t y_strides[PARE_MAX_DIMS], strides[PARE_MAX_DIMS];
    pare_status rc = grad_dtype(ctx);

    if (rc == PARE_OK)
        rc = transpose_perm(ctx, perm);
    if (rc != PARE_OK || !dx)
        return rc;
    if (!dy) {
        memset(dx->data, 0, pare_tensor_nbytes(dx));
        return PARE_OK;
    }
    contiguous_strides(dy->ndim, dy->dims, y_strides);
    for (int k = 0; k < x->ndim; k++)
        strides[perm[k]] = y_strides[k];
    strided_copy(x->ndim, x->dims, strides, dy->data, dx->data, sizeof(float), ctx->n_threads);
    return PARE_OK;
}

/* ---- Concat ---- */

static pare_status concat_infer(pare_op_ctx *ctx)
{
    pare_status rc = need(ctx, 1);
    const pare_tensor *x0;
    int64_t dims[PARE_MAX_DIMS], axis_attr;
    int axis;
    size_t es;

    if (rc == PARE_OK)
        rc = shape_elem_size(ctx, ctx->in[0], &es);
    if (rc != PARE_OK)
        return rc;
    x0 = ctx->in[0];
    if (!pare_node_attr(ctx->node, "axis") && ctx->opset >= 4)
        return pare_op_fail(ctx, PARE_EINPUT, "attribute 'axis' is required");
    axis_attr = pare_node_attr_int(ctx->node, "axis", 1);
    if (x0->ndim == 0)
        return pare_op_fail(ctx, PARE_EINPUT, "cannot concatenate scalars");
    rc = norm_axis(ctx, axis_attr, x0->ndim, false, &axis);
    if (rc != PARE_OK)
        return rc;
    memcpy(dims, x0->dims, sizeof dims);
    for (int i = 1; i < ctx->n_in; i++) {
        const pare_tensor *x = ctx->in[i];
        char a[128], b[128];
        if (!x)
            return pare_op_fail(ctx, PARE_EINPUT, "input %d is missing", i);
        if (x->dtype != x0->dtype)
            return pare_op_fail(ctx, PARE_EINPUT, "input %d is %s but input 0 is %s", i,
                                pare_dtype_name(x->dtype), pare_dtype_name(x0->dtype));
        if (x->ndim != x0->ndim)
            return pare_op_fail(ctx, PARE_EINPUT, "input %d has rank %d but input 0 has rank %d",
                                i, x->ndim, x0->ndim);
        for (int k = 0; k < x0->ndim; k++)
            if (k != axis && x->dims[k] != x0->dims[k])
                return pare_op_fail(ctx, PARE_EINPUT,
                                    "input %d has shape %s, which does not match %s outside axis %d",
                                    i, pare_shape_format(x->ndim, x->dims, a, sizeof a),
                                    pare_shape_format(x0->ndim, x0->dims, b, sizeof b), axis);
        dims[axis] += x->dims[axis];
    }
    set_shape(ctx->out[0], x0->dtype, x0->ndim, dims);
    return PARE_OK;
}

static pare_status concat_forward(pare_op_ctx *ctx)
{
    pare_tensor *y = ctx->out[0];
    size_t es = pare_dtype_size(y->dtype);
    int axis = 0;
    int64_t outer, row;

    norm_axis(ctx, pare_node_attr_int(ctx->node, "axis", 1), y->ndim, false, &axis);
    outer = numel_range(y->dims, 0, axis);
    row = numel_range(y->dims, axis, y->ndim) * (int64_t)es;
    if (outer == 1) {
        char *dst = y->data;
        for (int i = 0; i < ctx->n_in; i++) {
            size_t n = pare_tensor_nbytes(ctx->in[i]);
            copy_bytes(dst, ctx->in[i]->data, n);
            dst += n;
        }
        return PARE_OK;
    }
#pragma omp parallel for num_threads(ctx->n_threads) if (outer * row > PARALLEL_BYTES) schedule(static)
    for (int64_t o = 0; o < outer; o++) {
        char *dst = (char *)y->data + o * row;
        for (int i = 0; i < ctx->n_in; i++) {
            const pare_tensor *x = ctx->in[i];
            int64_t n = numel_range(x->dims, axis, x->ndim) * (int64_t)es;
            copy_bytes(dst, (const char *)x->data + o * n, (size_t)n);
            dst += n;
        }
    }
    return PARE_OK;
}

/* din[i] = input i's slab of dy along the axis. */
static pare_status concat_backward(pare_op_ctx *ctx)
{
    const pare_tensor *y = ctx->out[0], *dy = dres(ctx, 0);
    int axis = 0;
    int64_t outer, row, off = 0;
    pare_status rc = grad_dtype(ctx);

    if (rc == PARE_OK)
        rc = norm_axis(ctx, pare_node_attr_int(ctx->node, "axis", 1), y->ndim, false, &axis);
    if (rc != PARE_OK)
        return rc;
    outer = numel_range(y->dims, 0, axis);
    row = numel_range(y->dims, axis, y->ndim);
    for (int i = 0; i < ctx->n_in; i++) {
        const pare_tensor *x = ctx->in[i];
        pare_tensor *dx = darg(ctx, i);
        int64_t n = numel_range(x->dims, axis, x->ndim);
        if (dx && !dy)
            memset(dx->data, 0, pare_tensor_nbytes(dx));
        else if (dx)
            for (int64_t o = 0; o < outer; o++)
                memcpy(pare_tensor_f32(dx) + o * n, pare_tensor_f32(dy) + o * row + off,
                       (size_t)n * sizeof(float));
        off += n;
    }
    return PARE_OK;
}

/* ---- Split ---- */

/* Sizes of the outputs along the axis, by opset form:
 * 1: 'split' attribute or second input; 2-12: attribute; 13+: input;
 * 18+: or 'num_outputs' (last chunk smaller). */
static pare_status split_sizes(pare_op_ctx *ctx, int *axis_out, int64_t *sizes)
{
    const pare_tensor *x = ctx->in[0];
    const pare_attr *split_attr = pare_node_attr(ctx->node, "split");
    const pare_tensor *split_in = (ctx->opset == 1 || ctx->opset >= 13) ? arg(ctx, 1) : NULL;
    int n_out = ctx->n_out, axis;
    int64_t dim, sum = 0;
    pare_status rc;

    if (x->ndim == 0)
        return pare_op_fail(ctx, PARE_EINPUT, "cannot split a scalar");
    rc = norm_axis(ctx, pare_node_attr_int(ctx->node, "axis", 0), x->ndim, false, &axis);
    if (rc != PARE_OK)
        return rc;
    dim = x->dims[axis];
    *axis_out = axis;
    if (split_in && pare_tensor_numel(split_in) > 0) {
        int64_t *v = pare_alloc((size_t)n_out * sizeof *v);
        int n = 0;
        if (!v)
            return pare_op_fail(ctx, PARE_ENOMEM, "out of memory");
        if (pare_tensor_numel(split_in) != n_out)
            rc = pare_op_fail(ctx, PARE_EINPUT, "'split' has %lld values for %d outputs",
                              (long long)pare_tensor_numel(split_in), n_out);
        else
            rc = shape_const_ints(ctx, split_in, "split", v, n_out, &n);
        if (rc == PARE_OK)
            memcpy(sizes, v, (size_t)n_out * sizeof *v);
        pare_free(v);
        if (rc != PARE_OK)
            return rc;
    } else if (split_attr && ctx->opset < 13) {
        if (split_attr->type != PARE_ATTR_INTS || split_attr->n != n_out)
            return pare_op_fail(ctx, PARE_EINPUT, "'split' has %d values for %d outputs",
                                split_attr->type == PARE_ATTR_INTS ? split_attr->n : 0, n_out);
        memcpy(sizes, split_attr->ints, (size_t)n_out * sizeof *sizes);
    } else if (ctx->opset >= 18 && pare_node_attr(ctx->node, "num_outputs")) {
        int64_t num = pare_node_attr_int(ctx->node, "num_outputs", 0), chunk;
        if (num != n_out)
            return pare_op_fail(ctx, PARE_EINPUT, "'num_outputs' is %lld but the node has %d outputs",
                                (long long)num, n_out);
        chunk = (dim + num - 1) / num;
        for (int i = 0; i < n_out; i++) {
            int64_t left = dim - chunk * i;
            sizes[i] = left < 0 ? 0 : left < chunk ? left : chunk;
        }
    } else {
        if (dim % n_out != 0)
            return pare_op_fail(ctx, PARE_EINPUT, "cannot split dim %lld into %d equal parts",
                                (long long)dim, n_out);
        for (int i = 0; i < n_out; i++)
            sizes[i] = dim / n_out;
    }
    for (int i = 0; i < n_out; i++) {
        if (sizes[i] < 0)
            return pare_op_fail(ctx, PARE_EINPUT, "'split' has a negative size %lld",
                                (long long)sizes[i]);
        sum += sizes[i];
    }
    if (sum != dim)
        return pare_op_fail(ctx, PARE_EINPUT, "'split' sums to %lld but axis %d has size %lld",
                            (long long)sum, axis, (long long)dim);
    return PARE_OK;
}

static pare_status split_infer(pare_op_ctx *ctx)
{
    pare_status rc = PARE_OK;
    int64_t *sizes;
    int axis = 0;
    size_t es;

    /* any output may be omitted, the first one too */
    if (!arg(ctx, 0) || ctx->n_out < 1)
        rc = pare_op_fail(ctx, PARE_EINPUT, "expects an input and at least one output");
    if (rc == PARE_OK)
        rc = shape_elem_size(ctx, ctx->in[0], &es);
    if (rc != PARE_OK)
        return rc;
    sizes = pare_alloc((size_t)ctx->n_out * sizeof *sizes);
    if (!sizes)
        return pare_op_fail(ctx, PARE_ENOMEM, "out of memory");
    rc = split_sizes(ctx, &axis, sizes);
    for (int i = 0; rc == PARE_OK && i < ctx->n_out; i++) {
        pare_tensor *y = ctx->out[i];
        if (!y)
            continue;
        set_shape(y, ctx->in[0]->dtype, ctx->in[0]->ndim, ctx->in[0]->dims);
        y->dims[axis] = sizes[i];
    }
    pare_free(sizes);
    ctx->scratch_bytes = (size_t)ctx->n_out * sizeof(int64_t);
    return rc;
}

static pare_status split_forward(pare_op_ctx *ctx)
{
    const pare_tensor *x = ctx->in[0];
    size_t es = pare_dtype_size(x->dtype);
    int64_t *sizes = ctx->scratch, outer, inner, row;
    int axis = 0;
    pare_status rc = split_sizes(ctx, &axis, sizes);

    for (int i = 0; rc == PARE_OK && i < ctx->n_out; i++)
        if (ctx->out[i] && ctx->out[i]->dims[axis] != sizes[i])
            rc = pare_op_fail(ctx, PARE_EUNSUPPORTED,
                              "'split' changed after planning; the output shapes were fixed then");
    if (rc != PARE_OK)
        return rc;
    outer = numel_range(x->dims, 0, axis);
    inner = numel_range(x->dims, axis + 1, x->ndim) * (int64_t)es;
    row = x->dims[axis] * inner;
#pragma omp parallel for num_threads(ctx->n_threads) if (outer * row > PARALLEL_BYTES) schedule(static)
    for (int64_t o = 0; o < outer; o++) {
        const char *src = (const char *)x->data + o * row;
        for (int i = 0; i < ctx->n_out; i++) {
            int64_t n = sizes[i] * inner;
            if (ctx->out[i])
                copy_bytes((char *)ctx->out[i]->data + o * n, src, (size_t)n);
            src += n;
        }
    }
    return PARE_OK;
}

/* dx = the outputs' gradients concatenated along the axis (zeros for
 * outputs without one). */
static pare_status split_backward(pare_op_ctx *ctx)
{
    const pare_tensor *x = ctx->in[0];
    pare_tensor *dx = darg(ctx, 0);
    int64_t *sizes = ctx->scratch, outer, inner, row;
    int axis = 0;
    pare_status rc = grad_dtype(ctx);

    if (rc != PARE_OK || !dx)
        return rc;
    if (ctx->scratch_bytes < (size_t)ctx->n_out * sizeof(int64_t))
        return pare_op_fail(ctx, PARE_EINTERNAL, "split scratch too small");
    rc = split_sizes(ctx, &axis, sizes);
    if (rc != PARE_OK)
        return rc;
    outer = numel_range(x->dims, 0, axis);
    inner = numel_range(x->dims, axis + 1, x->ndim);
    row = x->dims[axis] * inner;
    for (int64_t o = 0; o < outer; o++) {
        float *dst = pare_tensor_f32(dx) + o * row;
        for (int i = 0; i < ctx->n_out; i++) {
            int64_t n = sizes[i] * inner;
            const pare_tensor *dy = dres(ctx, i);
            if (dy && ctx->out[i])
                memcpy(dst, pare_tensor_f32(dy) + o * n, (size_t)n * sizeof(float));
            else
                memset(dst, 0, (size_t)n * sizeof(float));
            dst += n;
        }
    }
    return PARE_OK;
}

/* ---- Slice ---- */

typedef struct slice_plan {
    int64_t start[PARE_MAX_DIMS], step[PARE_MAX_DIMS], len[PARE_MAX_DIMS];
} slice_plan;

/* Starts/ends/axes/steps: attributes in opset 1-9, inputs from 10. */
static pare_status slice_params(pare_op_ctx *ctx, int64_t *starts, int64_t *ends, int64_t *axes,
                                int64_t *steps, int *n)
{
    int rank = ctx->in[0]->ndim, ns = 0, ne = 0, na = -1, nst = -1;
    pare_status rc;

    if (ctx->opset < 10) {
        const int64_t *s = pare_node_attr_ints(ctx->node, "starts", &ns);
        const int64_t *e = pare_node_attr_ints(ctx->node, "ends", &ne);
        const pare_attr *a = pare_node_attr(ctx->node, "axes");
        if (!pare_node_attr(ctx->node, "starts") || !pare_node_attr(ctx->node, "ends"))
            return pare_op_fail(ctx, PARE_EINPUT, "attributes 'starts' and 'ends' are required");
        if (ns > PARE_MAX_DIMS || ne > PARE_MAX_DIMS)
            return pare_op_fail(ctx, PARE_EINPUT, "'starts' has more values than dims");
        memcpy(starts, s, (size_t)ns * sizeof *s);
        memcpy(ends, e, (size_t)ne * sizeof *e);
        if (a) {
            if (a->type != PARE_ATTR_INTS || a->n > PARE_MAX_DIMS)
                return pare_op_fail(ctx, PARE_EINPUT, "attribute 'axes' must be a list of ints");
            na = a->n;
            memcpy(axes, a->ints, (size_t)na * sizeof *axes);
        }
    } else {
        if (!arg(ctx, 1) || !arg(ctx, 2))
            return pare_op_fail(ctx, PARE_EINPUT, "inputs 'starts' and 'ends' are required");
        rc = shape_const_ints(ctx, ctx->in[1], "starts", starts, PARE_MAX_DIMS, &ns);
        if (rc == PARE_OK)
            rc = shape_const_ints(ctx, ctx->in[2], "ends", ends, PARE_MAX_DIMS, &ne);
        if (rc == PARE_OK && arg(ctx, 3))
            rc = shape_const_ints(ctx, ctx->in[3], "axes", axes, PARE_MAX_DIMS, &na);
        if (rc == PARE_OK && arg(ctx, 4))
            rc = shape_const_ints(ctx, ctx->in[4], "steps", steps, PARE_MAX_DIMS, &nst);
        if (rc != PARE_OK)
            return rc;
    }
    if (ns != ne)
        return pare_op_fail(ctx, PARE_EINPUT, "'starts' has %d values but 'ends' has %d", ns, ne);
    if (na >= 0 && na != ns)
        return pare_op_fail(ctx, PARE_EINPUT, "'axes' has %d values but 'starts' has %d", na, ns);
    if (nst >= 0 && nst != ns)
        return pare_op_fail(ctx, PARE_EINPUT, "'steps' has %d values but 'starts' has %d", nst, ns);
    if (ns > rank)
        return pare_op_fail(ctx, PARE_EINPUT, "%d slices for rank %d", ns, rank);
    if (na < 0)
        for (int i = 0; i < ns; i++)
            axes[i] = i;
    if (nst < 0)
        for (int i = 0; i < ns; i++)
            steps[i] = 1;
    *n = ns;
    return PARE_OK;
}

static pare_status slice_plan_make(pare_op_ctx *ctx, slice_plan *p)
{
    const pare_tensor *x = ctx->in[0];
    int64_t starts[PARE_MAX_DIMS], ends[PARE_MAX_DIMS], axes[PARE_MAX_DIMS], steps[PARE_MAX_DIMS];
    bool seen[PARE_MAX_DIMS] = {false};
    int n = 0;
    pare_status rc = slice_params(ctx, starts, ends, axes, steps, &n);

    if (rc != PARE_OK)
        return rc;
    for (int k = 0; k < x->ndim; k++) {
        p->start[k] = 0;
        p->step[k] = 1;
        p->len[k] = x->dims[k];
    }
    for (int i = 0; i < n; i++) {
        int k;
        int64_t dim, s, e, st = steps[i];
        rc = norm_axis(ctx, axes[i], x->ndim, false, &k);
        if (rc != PARE_OK)
            return rc;
        if (seen[k])
            return pare_op_fail(ctx, PARE_EINPUT, "axis %d is sliced twice", k);
        seen[k] = true;
        if (st == 0)
            return pare_op_fail(ctx, PARE_EINPUT, "step on axis %d is 0", k);
        dim = x->dims[k];
        s = starts[i];
        e = ends[i];
        if (s < 0)
            s += dim;
        if (e < 0)
            e += dim;
        if (st > 0) {
            s = s < 0 ? 0 : s > dim ? dim : s;
            e = e < 0 ? 0 : e > dim ? dim : e;
            p->len[k] = e > s ? (e - s + st - 1) / st : 0;
        } else {
            s = s < 0 ? 0 : s > dim - 1 ? dim - 1 : s;
            e = e < -1 ? -1 : e > dim - 1 ? dim - 1 : e;
            p->len[k] = s > e ? (s - e + (-st) - 1) / (-st) : 0;
        }
        p->start[k] = p->len[k] > 0 ? s : 0;
        p->step[k] = st;
    }
    return PARE_OK;
}

static pare_status slice_infer(pare_op_ctx *ctx)
{
    pare_status rc = need(ctx, 1);
    slice_plan p;
    size_t es;

    if (rc == PARE_OK)
        rc = shape_elem_size(ctx, ctx->in[0], &es);
    if (rc == PARE_OK)
        rc = slice_plan_make(ctx, &p);
    if (rc == PARE_OK)
        set_shape(ctx->out[0], ctx->in[0]->dtype, ctx->in[0]->ndim, p.len);
    return rc;
}

static pare_status slice_forward(pare_op_ctx *ctx)
{
    const pare_tensor *x = ctx->in[0];
    pare_tensor *y = ctx->out[0];
    int64_t in_strides[PARE_MAX_DIMS], strides[PARE_MAX_DIMS], base = 0;
    size_t es = pare_dtype_size(x->dtype);
    slice_plan p;
    pare_status rc = slice_plan_make(ctx, &p);

    if (rc == PARE_OK)
        rc = check_planned(ctx, y, x->ndim, p.len, "'starts', 'ends', 'axes' or 'steps'");
    if (rc != PARE_OK)
        return rc;
    if (pare_tensor_numel(y) == 0)
        return PARE_OK;
    contiguous_strides(x->ndim, x->dims, in_strides);
    for (int k = 0; k < x->ndim; k++) {
        base += p.start[k] * in_strides[k];
        strides[k] = in_strides[k] * p.step[k];
    }
    strided_copy(y->ndim, y->dims, strides, (const char *)x->data + base * (int64_t)es, y->data,
                 es, ctx->n_threads);
    return PARE_OK;
}

/* dx = 0, then each dy element goes back to the x element it was read
 * from (slices never repeat an element, so plain stores). */
static pare_status slice_backward(pare_op_ctx *ctx)
{
    const pare_tensor *x = ctx->in[0];
    pare_tensor *dx = darg(ctx, 0), *dy = dres(ctx, 0);
    int64_t in_strides[PARE_MAX_DIMS], strides[PARE_MAX_DIMS], idx[PARE_MAX_DIMS] = {0};
    int64_t base = 0, n;
    slice_plan p;
    pare_status rc = grad_dtype(ctx);

    if (rc == PARE_OK)
        rc = slice_plan_make(ctx, &p);
    if (rc != PARE_OK || !dx)
        return rc;
    memset(dx->data, 0, pare_tensor_nbytes(dx));
    n = pare_shape_numel(x->ndim, p.len);
    if (!dy || n == 0)
        return PARE_OK;
    contiguous_strides(x->ndim, x->dims, in_strides);
    for (int k = 0; k < x->ndim; k++) {
        base += p.start[k] * in_strides[k];
        strides[k] = in_strides[k] * p.step[k];
    }
    for (int64_t i = 0, off = base; i < n; i++) {
        pare_tensor_f32(dx)[off] = pare_tensor_f32(dy)[i];
        for (int k = x->ndim - 1; k >= 0; k--) {
            off += strides[k];
            if (++idx[k] < p.len[k])
                break;
            off -= strides[k] * idx[k];
            idx[k] = 0;
        }
    }
    return PARE_OK;
}

/* ---- the family table ---- */

#define ALIAS PARE_OP_ALIAS
#define SHAPE_ONLY PARE_OP_SHAPE_ONLY

const pare_op_def ops_shape[] = {
    { .domain = "", .op_type = "Identity", .since = 1, .until = 0,
      .infer = identity_infer, .forward = alias_forward, .backward = alias_backward, .flags = ALIAS,
      .notes = "tensors only (no sequences or optionals)" },
    { .domain = "", .op_type = "Flatten", .since = 1, .until = 0,
      .infer = flatten_infer, .forward = alias_forward,
      .backward = alias_backward, .flags = ALIAS },
    { .domain = "", .op_type = "Reshape", .since = 1, .until = 4,
      .infer = reshape1_infer, .forward = alias_forward,
      .backward = alias_backward, .flags = ALIAS },
    { .domain = "", .op_type = "Reshape", .since = 5, .until = 0,
      .infer = reshape_infer, .forward = alias_forward, .backward = alias_backward, .flags = ALIAS,
      .notes = "the shape input must be known at plan time" },
    { .domain = "", .op_type = "Squeeze", .since = 1, .until = 12,
      .infer = squeeze1_infer, .forward = alias_forward,
      .backward = alias_backward, .flags = ALIAS },
    { .domain = "", .op_type = "Squeeze", .since = 13, .until = 0,
      .infer = squeeze13_infer, .forward = alias_forward,
      .backward = alias_backward, .flags = ALIAS },
    { .domain = "", .op_type = "Unsqueeze", .since = 1, .until = 12,
      .infer = unsqueeze1_infer, .forward = alias_forward,
      .backward = alias_backward, .flags = ALIAS },
    { .domain = "", .op_type = "Unsqueeze", .since = 13, .until = 0,
      .infer = unsqueeze13_infer, .forward = alias_forward,
      .backward = alias_backward, .flags = ALIAS },
    { .domain = "", .op_type = "Dropout", .since = 1, .until = 9,
      .infer = dropout_infer, .forward = dropout_forward,
      .backward = dropout_backward, .flags = ALIAS,
      .notes = "output = input, mask all ones; drops while fine-tuning" },
    { .domain = "", .op_type = "Dropout", .since = 10, .until = 11,
      .infer = dropout_infer, .forward = dropout_forward,
      .backward = dropout_backward, .flags = ALIAS,
      .notes = "output = input, mask all true; drops while fine-tuning" },
    { .domain = "", .op_type = "Dropout", .since = 12, .until = 0,
      .infer = dropout_infer, .forward = dropout_forward,
      .backward = dropout_backward, .flags = ALIAS,
      .notes = "training_mode must be a constant, true only with ratio 0; drops while "
               "fine-tuning (ratio constant)" },
    { .domain = "", .op_type = "Shape", .since = 1, .until = 14,
      .infer = shape_infer, .forward = shape_forward, .flags = SHAPE_ONLY },
    { .domain = "", .op_type = "Shape", .since = 15, .until = 0,
      .infer = shape_infer, .forward = shape_forward, .flags = SHAPE_ONLY },
    { .domain = "", .op_type = "Size", .since = 1, .until = 0,
      .infer = size_infer, .forward = size_forward, .flags = SHAPE_ONLY },
    { .domain = "", .op_type = "Constant", .since = 1, .until = 0,
      .infer = constant_infer, .forward = constant_forward,
      .notes = "sparse_value and string values are unsupported" },
    { .domain = "", .op_type = "ConstantOfShape", .since = 9, .until = 0,
      .infer = constant_of_shape_infer, .forward = constant_of_shape_forward,
      .notes = "the shape input must be known at plan time" },
    { .domain = "", .op_type = "Transpose", .since = 1, .until = 0,
      .infer = transpose_infer, .forward = transpose_forward,
      .backward = transpose_backward },
    { .domain = "", .op_type = "Concat", .since = 1, .until = 0,
      .infer = concat_infer, .forward = concat_forward,
      .backward = concat_backward },
    { .domain = "", .op_type = "Split", .since = 1, .until = 12,
      .infer = split_infer, .forward = split_forward },
    { .domain = "", .op_type = "Split", .since = 13, .until = 17,
      .infer = split_infer, .forward = split_forward, .backward = split_backward,
      .notes = "the split input must be known at plan time" },
    { .domain = "", .op_type = "Split", .since = 18, .until = 0,
      .infer = split_infer, .forward = split_forward, .backward = split_backward,
      .notes = "the split input must be known at plan time" },
    { .domain = "", .op_type = "Slice", .since = 1, .until = 9,
      .infer = slice_infer, .forward = slice_forward },
    { .domain = "", .op_type = "Slice", .since = 10, .until = 0,
      .infer = slice_infer, .forward = slice_forward, .backward = slice_backward,
      .notes = "starts, ends, axes and steps must be known at plan time" },
    { .domain = "", .op_type = "Gather", .since = 1, .until = 0,
      .infer = shape_gather_infer, .forward = shape_gather_forward,
      .backward = shape_gather_backward },
    { .domain = "", .op_type = "GatherElements", .since = 11, .until = 0,
      .infer = shape_gather_elements_infer, .forward = shape_gather_elements_forward },
    { .domain = "", .op_type = "Tile", .since = 6, .until = 0,
      .infer = shape_tile_infer, .forward = shape_tile_forward,
      .notes = "the repeats input must be known at plan time" },
    { .domain = "", .op_type = "Range", .since = 11, .until = 0,
      .infer = shape_range_infer, .forward = shape_range_forward, .flops = shape_range_flops,
      .notes = "start, limit and delta must be known at plan time" },
    { .domain = "", .op_type = "Cast", .since = 1, .until = 5,
      .infer = shape_cast1_infer, .forward = shape_cast_forward, .flops = shape_cast_flops },
    { .domain = "", .op_type = "Cast", .since = 6, .until = 0,
      .infer = shape_cast_infer, .forward = shape_cast_forward, .flops = shape_cast_flops,
      .notes = "no string or float8 types" },
    { .domain = "", .op_type = "CastLike", .since = 15, .until = 0,
      .infer = shape_castlike_infer, .forward = shape_cast_forward, .flops = shape_cast_flops },
    { .domain = "", .op_type = "Pad", .since = 1, .until = 1,
      .infer = shape_pad1_infer, .forward = shape_pad_forward, .backward = shape_pad_backward },
    { .domain = "", .op_type = "Pad", .since = 2, .until = 10,
      .infer = shape_pad2_infer, .forward = shape_pad_forward, .backward = shape_pad_backward },
    { .domain = "", .op_type = "Pad", .since = 11, .until = 17,
      .infer = shape_pad11_infer, .forward = shape_pad_forward, .backward = shape_pad_backward,
      .notes = "pads must be known at plan time" },
    { .domain = "", .op_type = "Pad", .since = 18, .until = 0,
      .infer = shape_pad18_infer, .forward = shape_pad_forward, .backward = shape_pad_backward,
      .notes = "pads and axes must be known at plan time" },
    { .domain = "", .op_type = "Upsample", .since = 7, .until = 8,
      .infer = shape_upsample_infer, .forward = shape_upsample_forward,
      .backward = shape_upsample_backward,
      .flops = shape_resize_flops },
    { .domain = "", .op_type = "Upsample", .since = 9, .until = 9,
      .infer = shape_upsample_infer, .forward = shape_upsample_forward,
      .backward = shape_upsample_backward,
      .flops = shape_resize_flops, .notes = "scales must be known at plan time" },
    { .domain = "", .op_type = "Resize", .since = 10, .until = 10,
      .infer = shape_resize_infer, .forward = shape_resize_forward,
      .backward = shape_resize_backward,
      .flops = shape_resize_flops, .notes = "scales must be known at plan time" },
    { .domain = "", .op_type = "Resize", .since = 11, .until = 12,
      .infer = shape_resize_infer, .forward = shape_resize_forward,
      .backward = shape_resize_backward,
      .flops = shape_resize_flops,
      .notes = "scales or sizes must be known at plan time; linear and cubic need float32" },
    { .domain = "", .op_type = "Resize", .since = 13, .until = 17,
      .infer = shape_resize_infer, .forward = shape_resize_forward,
      .backward = shape_resize_backward,
      .flops = shape_resize_flops,
      .notes = "scales or sizes must be known at plan time; linear and cubic need float32" },
    { .domain = "", .op_type = "Resize", .since = 18, .until = 0,
      .infer = shape_resize_infer, .forward = shape_resize_forward,
      .backward = shape_resize_backward,
      .flops = shape_resize_flops,
      .notes = "antialias is unsupported; linear and cubic need float32" },
    { .domain = "", .op_type = "Trilu", .since = 14, .until = 0,
      .infer = shape_trilu_infer, .forward = shape_trilu_forward },
    { .domain = "", .op_type = "ArgMax", .since = 1, .until = 0,
      .infer = shape_argminmax_infer, .forward = shape_argmax_forward,
      .flops = shape_argminmax_flops },
    { .domain = "", .op_type = "ArgMin", .since = 1, .until = 0,
      .infer = shape_argminmax_infer, .forward = shape_argmin_forward,
      .flops = shape_argminmax_flops },
    { .domain = "", .op_type = "OneHot", .since = 9, .until = 0,
      .infer = shape_onehot_infer, .forward = shape_onehot_forward,
      .notes = "depth must be known at plan time" },
    { .domain = "", .op_type = "NonZero", .since = 9, .until = 0,
      .infer = shape_nonzero_infer, .forward = shape_nonzero_forward,
      .notes = "only on inputs known at plan time (the output shape depends on the data)" },
    { .op_type = NULL },
};
