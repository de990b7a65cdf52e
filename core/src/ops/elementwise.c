/* Element-wise arithmetic, math, comparison and logic ops, Where, Expand and
 * the variadic Sum/Max/Min/Mean, with numpy broadcasting (ops/broadcast.h).
 *
 * Kernels are row functions generated per dtype by macros: one contiguous
 * inner loop per row with operand strides 0 or 1, so same-shape, scalar, row
 * and channel broadcasts all run as plain vectorizable loops. Integer
 * arithmetic wraps (computed in uint64_t) and integer division by zero gives
 * 0 instead of trapping. */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "ops/broadcast.h"
#include "ops/families.h"

#define DT_N 17 /* pare_dtype values index the kernel tables */

/* ---- generators ---- */

/* Binary row: o[i] = EXPR(a, b); ET is the element type inside EXPR. */
#define BIN_ROW(NAME, T, OT, EXPR)                                               \
    VM_CLONES static void NAME(const void *arg, int64_t n, const void *const *in,          \
                     const int64_t *s, void *out)                                \
    {                                                                            \
        typedef T ET;                                                            \
        const T *restrict pa = in[0];                                            \
        const T *restrict pb = in[1];                                            \
        OT *restrict o = out;                                                    \
        (void)arg;                                                               \
        (void)sizeof(ET);                                                        \
        if (s[0] && s[1]) {                                                      \
            for (int64_t i = 0; i < n; i++) {                                    \
                T a = pa[i], b = pb[i];                                          \
                o[i] = (OT)(EXPR);                                               \
            }                                                                    \
        } else if (s[0]) {                                                       \
            const T b = pb[0];                                                   \
            for (int64_t i = 0; i < n; i++) {                                    \
                T a = pa[i];                                                     \
                o[i] = (OT)(EXPR);                                               \
            }                                                                    \
        } else if (s[1]) {                                                       \
            const T a = pa[0];                                                   \
            for (int64_t i = 0; i < n; i++) {                                    \
                T b = pb[i];                                                     \
                o[i] = (OT)(EXPR);                                               \
            }                                                                    \
        } else {                                                                 \
            const T a = pa[0], b = pb[0];                                        \
            const OT r = (OT)(EXPR);                                             \
            for (int64_t i = 0; i < n; i++)                                      \
                o[i] = r;                                                        \
        }                                                                        \
    }

/* Unary row over contiguous data: o[i] = EXPR(a). */
#define UN_ROW(NAME, T, OT, EXPR)                                                \
    VM_CLONES static void NAME(const void *arg, int64_t n, const void *const *in,          \
                     const int64_t *s, void *out)                                \
    {                                                                            \
        typedef T ET;                                                            \
        const T *restrict x = in[0];                                             \
        OT *restrict o = out;                                                    \
        (void)arg;                                                               \
        (void)s;                                                                 \
        (void)sizeof(ET);                                                        \
        for (int64_t i = 0; i < n; i++) {                                        \
            T a = x[i];                                                          \
            o[i] = (OT)(EXPR);                                                   \
        }                                                                        \
    }

#define G_SAME(name, DT, T, EXPR) BIN_ROW(name##_##DT, T, T, EXPR)
#define G_BOOL(name, DT, T, EXPR) BIN_ROW(name##_##DT, T, uint8_t, EXPR)
#define G_UN(name, DT, T, EXPR) UN_ROW(name##_##DT, T, T, EXPR)
#define G_ENTRY(name, DT, T, EXPR) [PARE_##DT] = name##_##DT,

#define T_FLOAT(G, name, EXPR) G(name, F32, float, EXPR) G(name, F64, double, EXPR)
#define T_SINT(G, name, EXPR)                                                    \
    G(name, I8, int8_t, EXPR) G(name, I16, int16_t, EXPR)                        \
    G(name, I32, int32_t, EXPR) G(name, I64, int64_t, EXPR)
#define T_UINT(G, name, EXPR)                                                    \
    G(name, U8, uint8_t, EXPR) G(name, U16, uint16_t, EXPR)                      \
    G(name, U32, uint32_t, EXPR) G(name, U64, uint64_t, EXPR)
#define T_INT(G, name, EXPR) T_SINT(G, name, EXPR) T_UINT(G, name, EXPR)
#define T_NUM(G, name, EXPR) T_FLOAT(G, name, EXPR) T_INT(G, name, EXPR)
#define T_BOOL(G, name, EXPR) G(name, BOOL, uint8_t, EXPR)

/* Wrapping integer arithmetic without signed-overflow UB. */
#define WRAP(op) ((ET)((uint64_t)a op (uint64_t)b))

/* ---- binary kernels ---- */

T_FLOAT(G_SAME, add, a + b)
T_INT(G_SAME, add, WRAP(+))
T_FLOAT(G_SAME, sub, a - b)
T_INT(G_SAME, sub, WRAP(-))
T_FLOAT(G_SAME, mul, a * b)
T_INT(G_SAME, mul, WRAP(*))
T_FLOAT(G_SAME, div, a / b)
T_SINT(G_SAME, div, b == 0 ? 0 : b == -1 ? (ET)(0 - (uint64_t)a) : a / b)
T_UINT(G_SAME, div, b == 0 ? 0 : a / b)
T_FLOAT(G_SAME, max, a > b || a != a ? a : b)
T_INT(G_SAME, max, a > b ? a : b)
T_FLOAT(G_SAME, min, a < b || a != a ? a : b)
T_INT(G_SAME, min, a < b ? a : b)
T_NUM(G_BOOL, equal, a == b)
T_BOOL(G_BOOL, equal, (a != 0) == (b != 0))
T_NUM(G_BOOL, less, a < b)
T_NUM(G_BOOL, greater, a > b)
T_NUM(G_BOOL, less_eq, a <= b)
T_NUM(G_BOOL, greater_eq, a >= b)
T_BOOL(G_BOOL, and, (a != 0) & (b != 0))
T_BOOL(G_BOOL, or, (a != 0) | (b != 0))
T_BOOL(G_BOOL, xor, (a != 0) ^ (b != 0))

/* Mod: fmod=0 is integer modulo with the divisor's sign (Python's %);
 * fmod=1 is C's fmod / % (the dividend's sign). Division by zero gives 0. */
#define IMOD_S(a, b) (b == 0 ? 0 : b == -1 ? 0 : ((a % b) != 0 && ((a % b) < 0) != (b < 0) ? (a % b) + b : a % b))
T_SINT(G_SAME, mod, IMOD_S(a, b))
T_UINT(G_SAME, mod, b == 0 ? 0 : a % b)
T_SINT(G_SAME, fmod, b == 0 || b == -1 ? 0 : a % b)
T_UINT(G_SAME, fmod, b == 0 ? 0 : a % b)
BIN_ROW(fmod_F32, float, float, fmodf(a, b))
BIN_ROW(fmod_F64, double, double, fmod(a, b))

#define TABLE(name, TYPES) static const bcast_row_fn name##_fns[DT_N] = { TYPES }
#define NUM_ENTRIES(name) T_NUM(G_ENTRY, name, ~)

TABLE(add, NUM_ENTRIES(add));
TABLE(sub, NUM_ENTRIES(sub));
TABLE(mul, NUM_ENTRIES(mul));
TABLE(div, NUM_ENTRIES(div));
TABLE(max, NUM_ENTRIES(max));
TABLE(min, NUM_ENTRIES(min));
TABLE(equal, NUM_ENTRIES(equal) T_BOOL(G_ENTRY, equal, ~));
TABLE(less, NUM_ENTRIES(less));
TABLE(greater, NUM_ENTRIES(greater));
TABLE(less_eq, NUM_ENTRIES(less_eq));
TABLE(greater_eq, NUM_ENTRIES(greater_eq));
TABLE(and, T_BOOL(G_ENTRY, and, ~));
TABLE(or, T_BOOL(G_ENTRY, or, ~));
TABLE(xor, T_BOOL(G_ENTRY, xor, ~));
TABLE(mod, T_INT(G_ENTRY, mod, ~));
TABLE(fmod, T_FLOAT(G_ENTRY, fmod, ~) T_INT(G_ENTRY, fmod, ~));

typedef struct bin_op {
    const bcast_row_fn *fns;
    bool out_bool;
} bin_op;

/* Opset < 7 (Add, Sub, Mul, Div, Pow): no numpy broadcasting. With
 * broadcast=1, B's shape lines up with A's dims starting at `axis` (default:
 * suffix matching) and must broadcast to A; without it the shapes must be
 * equal. Fills B's effective shape (A's rank, 1 elsewhere). */
static pare_status legacy_b_shape(pare_op_ctx *ctx, const pare_tensor *a, const pare_tensor *b,
                                  int *nd, int64_t *dims)
{
    char sa[128], sb[128];
    int64_t axis;

    *nd = b->ndim;
    memcpy(dims, b->dims, sizeof(int64_t) * (size_t)b->ndim);
    if (ctx->opset >= 7)
        return PARE_OK;
    pare_shape_format(a->ndim, a->dims, sa, sizeof sa);
    pare_shape_format(b->ndim, b->dims, sb, sizeof sb);
    if (!pare_node_attr_int(ctx->node, "broadcast", 0)) {
        if (pare_tensor_same_shape(a, b))
            return PARE_OK;
        return pare_op_fail(ctx, PARE_EINPUT, "shapes %s and %s differ and broadcast is not set",
                            sa, sb);
    }
    axis = pare_node_attr_int(ctx->node, "axis", a->ndim - b->ndim);
    if (axis < 0)
        axis += a->ndim;
    if (b->ndim > a->ndim || axis < 0 || axis + b->ndim > a->ndim)
        return pare_op_fail(ctx, PARE_EINPUT, "cannot broadcast %s to %s at axis %lld", sb, sa,
                            (long long)axis);
    *nd = a->ndim;
    for (int d = 0; d < a->ndim; d++)
        dims[d] = d >= axis && d < axis + b->ndim ? b->dims[d - axis] : 1;
    for (int d = 0; d < a->ndim; d++)
        if (dims[d] != 1 && dims[d] != a->dims[d])
            return pare_op_fail(ctx, PARE_EINPUT, "cannot broadcast %s to %s at axis %lld", sb, sa,
                                (long long)axis);
    return PARE_OK;
}

static pare_status binary_infer(pare_op_ctx *ctx, const bin_op *op)
{
    const pare_tensor *a, *b;
    int64_t dims[PARE_MAX_DIMS], bdims[PARE_MAX_DIMS];
    int nd, nb;
    pare_status rc = ew_check_inputs(ctx, 2, 2);

    if (rc == PARE_OK)
        rc = ew_check_output(ctx);
    if (rc != PARE_OK)
        return rc;
    a = ctx->in[0];
    b = ctx->in[1];
    if (a->dtype != b->dtype)
        return pare_op_fail(ctx, PARE_EINPUT, "input dtypes differ: '%s' and '%s'",
                            pare_dtype_name(a->dtype), pare_dtype_name(b->dtype));
    if ((unsigned)a->dtype >= DT_N || !op->fns[a->dtype])
        return ew_bad_dtype(ctx, NULL, a->dtype);
    rc = legacy_b_shape(ctx, a, b, &nb, bdims);
    if (rc == PARE_OK)
        rc = ew_broadcast(ctx, a->ndim, a->dims, nb, bdims, &nd, dims);
    if (rc != PARE_OK)
        return rc;
    ew_set_shape(ctx->out[0], op->out_bool ? PARE_BOOL : a->dtype, nd, dims);
    return PARE_OK;
}

/* out = a OP b with broadcasting; a, b, out are any buffers of the given shapes. */
static void binary_apply(const pare_op_ctx *ctx, bcast_row_fn fn, const pare_tensor *a,
                         const pare_tensor *b, pare_tensor *out)
{
    bcast_plan p;
    const pare_tensor *ins[2] = { a, b };
    const void *ptr[2] = { a->data, b->data };
    size_t esz[2] = { pare_dtype_size(a->dtype), pare_dtype_size(b->dtype) };

    bcast_plan_tensors(&p, 2, ins, out);
    bcast_run(&p, fn, NULL, ptr, esz, out->data, pare_dtype_size(out->dtype),
              ew_threads(ctx, p.numel));
}

/* B as the kernels see it: itself, or (opset < 7) its legacy-aligned view. */
static pare_status binary_b_view(pare_op_ctx *ctx, pare_tensor *view)
{
    int64_t dims[PARE_MAX_DIMS];
    int nd;
    pare_status rc = legacy_b_shape(ctx, ctx->in[0], ctx->in[1], &nd, dims);

    if (rc == PARE_OK)
        pare_tensor_view(view, ctx->in[1]->dtype, nd, dims, ctx->in[1]->data);
    return rc;
}

static pare_status binary_forward(pare_op_ctx *ctx, const bin_op *op)
{
    pare_tensor b;
    pare_status rc = binary_b_view(ctx, &b);

    if (rc == PARE_OK)
        binary_apply(ctx, op->fns[ctx->in[0]->dtype], ctx->in[0], &b, ctx->out[0]);
    return rc;
}

#define BIN_OP(name, is_bool)                                                    \
    static const bin_op op_##name = { name##_fns, is_bool };                     \
    static pare_status name##_infer(pare_op_ctx *ctx) { return binary_infer(ctx, &op_##name); } \
    static pare_status name##_forward(pare_op_ctx *ctx) { return binary_forward(ctx, &op_##name); }

BIN_OP(add, false)
BIN_OP(sub, false)
BIN_OP(mul, false)
BIN_OP(div, false)
BIN_OP(equal, true)
BIN_OP(less, true)
BIN_OP(greater, true)
BIN_OP(less_eq, true)
BIN_OP(greater_eq, true)
BIN_OP(and, true)
BIN_OP(or, true)
BIN_OP(xor, true)

static const bin_op op_mod = { mod_fns, false };
static const bin_op op_fmod = { fmod_fns, false };

static pare_status mod_op(pare_op_ctx *ctx, const bin_op **op)
{
    int64_t f = pare_node_attr_int(ctx->node, "fmod", 0);
    pare_dtype dt = ctx->n_in > 0 && ctx->in[0] ? ctx->in[0]->dtype : PARE_UNDEFINED;

    *op = f ? &op_fmod : &op_mod;
    if (f != 0 && f != 1)
        return pare_op_fail(ctx, PARE_EINPUT, "attribute 'fmod' is %lld, expected 0 or 1",
                            (long long)f);
    if (!f && (dt == PARE_F32 || dt == PARE_F64))
        return pare_op_fail(ctx, PARE_EINPUT, "floating-point Mod needs fmod=1");
    return PARE_OK;
}

static pare_status mod_infer(pare_op_ctx *ctx)
{
    const bin_op *op;
    pare_status rc = mod_op(ctx, &op);
    return rc == PARE_OK ? binary_infer(ctx, op) : rc;
}

static pare_status mod_forward(pare_op_ctx *ctx)
{
    const bin_op *op;
    pare_status rc = mod_op(ctx, &op);
    return rc == PARE_OK ? binary_forward(ctx, op) : rc;
}

/* ---- Pow: base float32/float64/int32/int64, exponent any numeric ---- */

VM_CLONES static void pow_f32(const void *arg, int64_t n, const void *const *in, const int64_t *s,
                    void *out)
{
    const float *restrict pa = in[0];
    const float *restrict pb = in[1];
    float *restrict o = out;
    (void)arg;

    if (!s[1] && s[0]) {
        /* Scalar exponent: the common powers without powf. */
        const float e = pb[0];
        if (e == 2.0f) {
            for (int64_t i = 0; i < n; i++)
                o[i] = pa[i] * pa[i];
        } else if (e == 1.0f) {
            for (int64_t i = 0; i < n; i++)
                o[i] = pa[i];
        } else if (e == 3.0f) {
            for (int64_t i = 0; i < n; i++)
                o[i] = pa[i] * pa[i] * pa[i];
        } else if (e == 0.5f) {
            for (int64_t i = 0; i < n; i++)
                o[i] = sqrtf(pa[i]);
        } else if (e == 0.0f) {
            for (int64_t i = 0; i < n; i++)
                o[i] = 1.0f;
        } else if (e == -1.0f) {
            for (int64_t i = 0; i < n; i++)
                o[i] = 1.0f / pa[i];
        } else {
            for (int64_t i = 0; i < n; i++)
                o[i] = powf(pa[i], e);
        }
        return;
    }
    for (int64_t i = 0; i < n; i++)
        o[i] = powf(pa[i * s[0]], pb[i * s[1]]);
}

VM_CLONES static void pow_f64(const void *arg, int64_t n, const void *const *in, const int64_t *s,
                    void *out)
{
    const double *pa = in[0], *pb = in[1];
    double *o = out;
    (void)arg;
    for (int64_t i = 0; i < n; i++)
        o[i] = pow(pa[i * s[0]], pb[i * s[1]]);
}

/* Integer bases: computed in double, then truncated like a C cast. */
#define POW_INT(NAME, T)                                                         \
    VM_CLONES static void NAME(const void *arg, int64_t n, const void *const *in,          \
                     const int64_t *s, void *out)                                \
    {                                                                            \
        const T *pa = in[0];                                                     \
        const double *pb = in[1];                                                \
        T *o = out;                                                              \
        (void)arg;                                                               \
        for (int64_t i = 0; i < n; i++) {                                        \
            double r = pow((double)pa[i * s[0]], pb[i * s[1]]);                  \
            o[i] = r == r && fabs(r) < 9.2e18 ? (T)r : 0;                        \
        }                                                                        \
    }
POW_INT(pow_i32, int32_t)
POW_INT(pow_i64, int64_t)

/* Converts any numeric tensor's elements to float32 or float64. */
#define CONVERT_CASE(DT, T)                                                      \
    case PARE_##DT: {                                                            \
        const T *src = t->data;                                                  \
        if (to == PARE_F32)                                                      \
            for (int64_t i = 0; i < n; i++)                                      \
                ((float *)dst)[i] = (float)src[i];                               \
        else                                                                     \
            for (int64_t i = 0; i < n; i++)                                      \
                ((double *)dst)[i] = (double)src[i];                             \
        break;                                                                   \
    }
static void convert_to_float(const pare_tensor *t, pare_dtype to, void *dst)
{
    int64_t n = pare_tensor_numel(t);

    switch (t->dtype) {
    CONVERT_CASE(F32, float)
    CONVERT_CASE(F64, double)
    CONVERT_CASE(I8, int8_t)
    CONVERT_CASE(U8, uint8_t)
    CONVERT_CASE(I16, int16_t)
    CONVERT_CASE(U16, uint16_t)
    CONVERT_CASE(I32, int32_t)
    CONVERT_CASE(U32, uint32_t)
    CONVERT_CASE(I64, int64_t)
    CONVERT_CASE(U64, uint64_t)
    default:
        break;
    }
}

static bool is_numeric(pare_dtype dt)
{
    switch (dt) {
    case PARE_F32: case PARE_F64: case PARE_I8: case PARE_U8: case PARE_I16: case PARE_U16:
    case PARE_I32: case PARE_U32: case PARE_I64: case PARE_U64:
        return true;
    default:
        return false;
    }
}

/* The type the exponent is computed in for a given base. */
static pare_dtype pow_exp_type(pare_dtype base)
{
    return base == PARE_F32 ? PARE_F32 : PARE_F64;
}

static pare_status pow_infer(pare_op_ctx *ctx)
{
    const pare_tensor *a, *b;
    int64_t dims[PARE_MAX_DIMS], bdims[PARE_MAX_DIMS];
    int nd, nb;
    pare_status rc = ew_check_inputs(ctx, 2, 2);

    if (rc == PARE_OK)
        rc = ew_check_output(ctx);
    if (rc != PARE_OK)
        return rc;
    a = ctx->in[0];
    b = ctx->in[1];
    if (a->dtype != PARE_F32 && a->dtype != PARE_F64 && a->dtype != PARE_I32 &&
        a->dtype != PARE_I64)
        return ew_bad_dtype(ctx, "base", a->dtype);
    if (!is_numeric(b->dtype))
        return ew_bad_dtype(ctx, "exponent", b->dtype);
    rc = legacy_b_shape(ctx, a, b, &nb, bdims);
    if (rc == PARE_OK)
        rc = ew_broadcast(ctx, a->ndim, a->dims, nb, bdims, &nd, dims);
    if (rc != PARE_OK)
        return rc;
    ew_set_shape(ctx->out[0], a->dtype, nd, dims);
    if (b->dtype != pow_exp_type(a->dtype))
        ctx->scratch_bytes = (size_t)pare_tensor_numel(b) * pare_dtype_size(pow_exp_type(a->dtype));
    return PARE_OK;
}

static pare_status pow_forward(pare_op_ctx *ctx)
{
    const pare_tensor *a = ctx->in[0], *b = ctx->in[1];
    pare_dtype et = pow_exp_type(a->dtype);
    pare_tensor e;
    bcast_row_fn fn = a->dtype == PARE_F32 ? pow_f32 : a->dtype == PARE_F64 ? pow_f64 :
                      a->dtype == PARE_I32 ? pow_i32 : pow_i64;
    pare_status rc = binary_b_view(ctx, &e);

    if (rc != PARE_OK)
        return rc;
    if (b->dtype != et) {
        convert_to_float(b, et, ctx->scratch);
        e.dtype = et;
        e.data = ctx->scratch;
    }
    binary_apply(ctx, fn, a, &e, ctx->out[0]);
    return PARE_OK;
}

/* ---- unary kernels ---- */

T_FLOAT(G_UN, neg, -a)
T_SINT(G_UN, neg, (ET)(0 - (uint64_t)a))
UN_ROW(abs_F32, float, float, fabsf(a))
UN_ROW(abs_F64, double, double, fabs(a))
T_SINT(G_UN, abs, a < 0 ? (ET)(0 - (uint64_t)a) : a)
T_UINT(G_UN, abs, a)
UN_ROW(sqrt_F32, float, float, sqrtf(a))
UN_ROW(sqrt_F64, double, double, sqrt(a))
UN_ROW(exp_F32, float, float, vm_expf(a))
UN_ROW(exp_F64, double, double, exp(a))
UN_ROW(log_F32, float, float, logf(a))
UN_ROW(log_F64, double, double, log(a))
T_FLOAT(G_UN, reciprocal, 1 / a)
UN_ROW(erf_F32, float, float, vm_erff(a))
UN_ROW(erf_F64, double, double, erf(a))
UN_ROW(floor_F32, float, float, floorf(a))
UN_ROW(floor_F64, double, double, floor(a))
UN_ROW(ceil_F32, float, float, ceilf(a))
UN_ROW(ceil_F64, double, double, ceil(a))
UN_ROW(round_F32, float, float, nearbyintf(a))
UN_ROW(round_F64, double, double, nearbyint(a))
T_FLOAT(G_UN, sign, a > 0 ? 1 : a < 0 ? -1 : a)
T_SINT(G_UN, sign, a > 0 ? 1 : a < 0 ? -1 : 0)
T_UINT(G_UN, sign, a > 0 ? 1 : 0)
UN_ROW(not_BOOL, uint8_t, uint8_t, a == 0)

UN_ROW(isnan_F32, float, uint8_t, a != a)
UN_ROW(isnan_F64, double, uint8_t, a != a)

typedef struct isinf_args {
    bool neg, pos;
} isinf_args;
#define ISINF_ROW(NAME, T)                                                       \
    static void NAME(const void *arg, int64_t n, const void *const *in,          \
                     const int64_t *s, void *out)                                \
    {                                                                            \
        const isinf_args *p = arg;                                               \
        const T *restrict x = in[0];                                             \
        uint8_t *restrict o = out;                                               \
        (void)s;                                                                 \
        for (int64_t i = 0; i < n; i++)                                          \
            o[i] = (uint8_t)((p->pos && x[i] == (T)INFINITY) ||                  \
                             (p->neg && x[i] == (T)-INFINITY));                  \
    }
ISINF_ROW(isinf_F32, float)
ISINF_ROW(isinf_F64, double)

typedef struct shrink_args {
    double lambd, bias;
} shrink_args;
#define SHRINK_ROW(NAME, T)                                                      \
    VM_CLONES static void NAME(const void *arg, int64_t n, const void *const *in, \
                               const int64_t *s, void *out)                      \
    {                                                                            \
        const shrink_args *p = arg;                                              \
        const T l = (T)p->lambd, b = (T)p->bias;                                 \
        const T *restrict x = in[0];                                             \
        T *restrict o = out;                                                     \
        (void)s;                                                                 \
        for (int64_t i = 0; i < n; i++)                                          \
            o[i] = x[i] < -l ? x[i] + b : x[i] > l ? x[i] - b : 0;               \
    }
SHRINK_ROW(shrink_F32, float)
SHRINK_ROW(shrink_F64, double)

/* Trigonometric and hyperbolic functions: libm per element (not hot). */
#define LIBM_PAIR(name, ff, fd)                                                  \
    UN_ROW(name##_F32, float, float, ff(a))                                      \
    UN_ROW(name##_F64, double, double, fd(a))
LIBM_PAIR(sin, sinf, sin)
LIBM_PAIR(cos, cosf, cos)
LIBM_PAIR(tan, tanf, tan)
LIBM_PAIR(asin, asinf, asin)
LIBM_PAIR(acos, acosf, acos)
LIBM_PAIR(atan, atanf, atan)
LIBM_PAIR(sinh, sinhf, sinh)
LIBM_PAIR(cosh, coshf, cosh)
LIBM_PAIR(asinh, asinhf, asinh)
LIBM_PAIR(acosh, acoshf, acosh)
LIBM_PAIR(atanh, atanhf, atanh)

#define UN_TABLE(name, TYPES) static const bcast_row_fn name##_fns[DT_N] = { TYPES }
#define F_ENTRIES(name) T_FLOAT(G_ENTRY, name, ~)

UN_TABLE(neg, F_ENTRIES(neg) T_SINT(G_ENTRY, neg, ~));
UN_TABLE(abs, F_ENTRIES(abs) T_INT(G_ENTRY, abs, ~));
UN_TABLE(sqrt, F_ENTRIES(sqrt));
UN_TABLE(exp, F_ENTRIES(exp));
UN_TABLE(log, F_ENTRIES(log));
UN_TABLE(reciprocal, F_ENTRIES(reciprocal));
UN_TABLE(erf, F_ENTRIES(erf));
UN_TABLE(floor, F_ENTRIES(floor));
UN_TABLE(ceil, F_ENTRIES(ceil));
UN_TABLE(round, F_ENTRIES(round));
UN_TABLE(sign, F_ENTRIES(sign) T_INT(G_ENTRY, sign, ~));
UN_TABLE(not, T_BOOL(G_ENTRY, not, ~));
UN_TABLE(sin, F_ENTRIES(sin));
UN_TABLE(cos, F_ENTRIES(cos));
UN_TABLE(tan, F_ENTRIES(tan));
UN_TABLE(asin, F_ENTRIES(asin));
UN_TABLE(acos, F_ENTRIES(acos));
UN_TABLE(atan, F_ENTRIES(atan));
UN_TABLE(sinh, F_ENTRIES(sinh));
UN_TABLE(cosh, F_ENTRIES(cosh));
UN_TABLE(asinh, F_ENTRIES(asinh));
UN_TABLE(acosh, F_ENTRIES(acosh));
UN_TABLE(atanh, F_ENTRIES(atanh));

typedef struct un_op {
    const bcast_row_fn *fns;
    int cost;   /* relative cost per element, for the threading threshold */
} un_op;

static pare_status unary_infer(pare_op_ctx *ctx, const un_op *op)
{
    const pare_tensor *x;
    pare_status rc = ew_check_inputs(ctx, 1, 1);

    if (rc == PARE_OK)
        rc = ew_check_output(ctx);
    if (rc != PARE_OK)
        return rc;
    x = ctx->in[0];
    if ((unsigned)x->dtype >= DT_N || !op->fns[x->dtype])
        return ew_bad_dtype(ctx, NULL, x->dtype);
    ew_set_shape(ctx->out[0], x->dtype, x->ndim, x->dims);
    return PARE_OK;
}

static pare_status unary_forward(pare_op_ctx *ctx, const un_op *op)
{
    const pare_tensor *x = ctx->in[0];
    bcast_plan p;
    const void *ptr[1] = { x->data };
    size_t esz = pare_dtype_size(x->dtype);

    bcast_plan_flat(&p, 1, pare_tensor_numel(x));
    bcast_run(&p, op->fns[x->dtype], NULL, ptr, &esz, ctx->out[0]->data, esz,
              ew_threads(ctx, p.numel * op->cost));
    return PARE_OK;
}

#define UN_OP(name, cost)                                                        \
    static const un_op op_##name = { name##_fns, cost };                         \
    static pare_status name##_infer(pare_op_ctx *ctx) { return unary_infer(ctx, &op_##name); } \
    static pare_status name##_forward(pare_op_ctx *ctx) { return unary_forward(ctx, &op_##name); }

UN_OP(neg, 1)
UN_OP(abs, 1)
UN_OP(sqrt, 2)
UN_OP(exp, 4)
UN_OP(log, 8)
UN_OP(reciprocal, 2)
UN_OP(erf, 4)
UN_OP(floor, 2)
UN_OP(ceil, 2)
UN_OP(round, 2)
UN_OP(sign, 1)
UN_OP(not, 1)
UN_OP(sin, 16)
UN_OP(cos, 16)
UN_OP(tan, 16)
UN_OP(asin, 16)
UN_OP(acos, 16)
UN_OP(atan, 16)
UN_OP(sinh, 16)
UN_OP(cosh, 16)
UN_OP(asinh, 16)
UN_OP(acosh, 16)
UN_OP(atanh, 16)

/* IsNaN, IsInf (bool out) and Shrink (attributes): float32, float64. */
static pare_status unary_args_infer(pare_op_ctx *ctx, bool bool_out)
{
    const pare_tensor *x;
    pare_status rc = ew_check_inputs(ctx, 1, 1);

    if (rc == PARE_OK)
        rc = ew_check_output(ctx);
    if (rc != PARE_OK)
        return rc;
    x = ctx->in[0];
    if (x->dtype != PARE_F32 && x->dtype != PARE_F64)
        return ew_bad_dtype(ctx, NULL, x->dtype);
    ew_set_shape(ctx->out[0], bool_out ? PARE_BOOL : x->dtype, x->ndim, x->dims);
    return PARE_OK;
}

static void unary_args_run(pare_op_ctx *ctx, bcast_row_fn fn, const void *arg)
{
    const pare_tensor *x = ctx->in[0];
    bcast_plan p;
    const void *ptr[1] = { x->data };
    size_t esz = pare_dtype_size(x->dtype);

    bcast_plan_flat(&p, 1, pare_tensor_numel(x));
    bcast_run(&p, fn, arg, ptr, &esz, ctx->out[0]->data, pare_dtype_size(ctx->out[0]->dtype),
              ew_threads(ctx, p.numel));
}

static pare_status isnan_infer(pare_op_ctx *ctx) { return unary_args_infer(ctx, true); }
static pare_status isnan_forward(pare_op_ctx *ctx)
{
    unary_args_run(ctx, ctx->in[0]->dtype == PARE_F32 ? isnan_F32 : isnan_F64, NULL);
    return PARE_OK;
}

static pare_status isinf_infer(pare_op_ctx *ctx) { return unary_args_infer(ctx, true); }
static pare_status isinf_forward(pare_op_ctx *ctx)
{
    isinf_args a = { pare_node_attr_int(ctx->node, "detect_negative", 1) != 0,
                     pare_node_attr_int(ctx->node, "detect_positive", 1) != 0 };
    unary_args_run(ctx, ctx->in[0]->dtype == PARE_F32 ? isinf_F32 : isinf_F64, &a);
    return PARE_OK;
}

static pare_status shrink_infer(pare_op_ctx *ctx) { return unary_args_infer(ctx, false); }
static pare_status shrink_forward(pare_op_ctx *ctx)
{
    shrink_args a = { pare_node_attr_float(ctx->node, "lambd", 0.5f),
                      pare_node_attr_float(ctx->node, "bias", 0.0f) };
    unary_args_run(ctx, ctx->in[0]->dtype == PARE_F32 ? shrink_F32 : shrink_F64, &a);
    return PARE_OK;
}

/* ---- copies with broadcasting (Expand, Where) by element size ---- */

#define COPY_ROW(NAME, T)                                                        \
    VM_CLONES static void NAME(const void *arg, int64_t n, const void *const *in,          \
                     const int64_t *s, void *out)                                \
    {                                                                            \
        const T *restrict x = in[0];                                             \
        T *restrict o = out;                                                     \
        (void)arg;                                                               \
        if (s[0]) {                                                              \
            memcpy(o, x, (size_t)n * sizeof(T));                                 \
        } else {                                                                 \
            const T v = x[0];                                                    \
            for (int64_t i = 0; i < n; i++)                                      \
                o[i] = v;                                                        \
        }                                                                        \
    }
COPY_ROW(copy_1, uint8_t)
COPY_ROW(copy_2, uint16_t)
COPY_ROW(copy_4, uint32_t)
COPY_ROW(copy_8, uint64_t)

static bcast_row_fn copy_fn(size_t esz)
{
    return esz == 1 ? copy_1 : esz == 2 ? copy_2 : esz == 4 ? copy_4 : esz == 8 ? copy_8 : NULL;
}

/* Broadcast copy of x into out (out's shape is one x broadcasts to). */
static void broadcast_copy(const pare_op_ctx *ctx, const pare_tensor *x, pare_tensor *out)
{
    bcast_plan p;
    const pare_tensor *ins[1] = { x };
    const void *ptr[1] = { x->data };
    size_t esz = pare_dtype_size(x->dtype);

    bcast_plan_tensors(&p, 1, ins, out);
    bcast_run(&p, copy_fn(esz), NULL, ptr, &esz, out->data, esz, ew_threads(ctx, p.numel));
}

#define WHERE_ROW(NAME, T)                                                       \
    VM_CLONES static void NAME(const void *arg, int64_t n, const void *const *in,          \
                     const int64_t *s, void *out)                                \
    {                                                                            \
        const uint8_t *restrict c = in[0];                                       \
        const T *restrict x = in[1];                                             \
        const T *restrict y = in[2];                                             \
        T *restrict o = out;                                                     \
        const int64_t sc = s[0], sx = s[1], sy = s[2];                           \
        (void)arg;                                                               \
        if (sc && sx && sy) {                                                    \
            for (int64_t i = 0; i < n; i++)                                      \
                o[i] = c[i] ? x[i] : y[i];                                       \
        } else {                                                                 \
            for (int64_t i = 0; i < n; i++)                                      \
                o[i] = c[i * sc] ? x[i * sx] : y[i * sy];                        \
        }                                                                        \
    }
WHERE_ROW(where_1, uint8_t)
WHERE_ROW(where_2, uint16_t)
WHERE_ROW(where_4, uint32_t)
WHERE_ROW(where_8, uint64_t)

static pare_status where_infer(pare_op_ctx *ctx)
{
    const pare_tensor *c, *x, *y;
    int64_t d1[PARE_MAX_DIMS], d2[PARE_MAX_DIMS];
    int n1, n2;
    size_t esz;
    pare_status rc = ew_check_inputs(ctx, 3, 3);

    if (rc == PARE_OK)
        rc = ew_check_output(ctx);
    if (rc != PARE_OK)
        return rc;
    c = ctx->in[0];
    x = ctx->in[1];
    y = ctx->in[2];
    if (c->dtype != PARE_BOOL)
        return pare_op_fail(ctx, PARE_EINPUT, "condition must be bool, not '%s'",
                            pare_dtype_name(c->dtype));
    if (x->dtype != y->dtype)
        return pare_op_fail(ctx, PARE_EINPUT, "input dtypes differ: '%s' and '%s'",
                            pare_dtype_name(x->dtype), pare_dtype_name(y->dtype));
    esz = pare_dtype_size(x->dtype);
    if (x->dtype == PARE_STRING || !copy_fn(esz))
        return ew_bad_dtype(ctx, NULL, x->dtype);
    rc = ew_broadcast(ctx, c->ndim, c->dims, x->ndim, x->dims, &n1, d1);
    if (rc == PARE_OK)
        rc = ew_broadcast(ctx, n1, d1, y->ndim, y->dims, &n2, d2);
    if (rc != PARE_OK)
        return rc;
    ew_set_shape(ctx->out[0], x->dtype, n2, d2);
    return PARE_OK;
}

static pare_status where_forward(pare_op_ctx *ctx)
{
    bcast_plan p;
    const pare_tensor *ins[3] = { ctx->in[0], ctx->in[1], ctx->in[2] };
    const void *ptr[3] = { ins[0]->data, ins[1]->data, ins[2]->data };
    size_t e = pare_dtype_size(ins[1]->dtype);
    size_t esz[3] = { 1, e, e };
    bcast_row_fn fn = e == 1 ? where_1 : e == 2 ? where_2 : e == 4 ? where_4 : where_8;

    bcast_plan_tensors(&p, 3, ins, ctx->out[0]);
    bcast_run(&p, fn, NULL, ptr, esz, ctx->out[0]->data, e, ew_threads(ctx, p.numel));
    return PARE_OK;
}

static pare_status expand_infer(pare_op_ctx *ctx)
{
    const pare_tensor *x, *shape;
    int64_t want[PARE_MAX_DIMS], dims[PARE_MAX_DIMS];
    int64_t n;
    int nd;
    pare_status rc = ew_check_inputs(ctx, 2, 2);

    if (rc == PARE_OK)
        rc = ew_check_output(ctx);
    if (rc != PARE_OK)
        return rc;
    x = ctx->in[0];
    shape = ctx->in[1];
    if (shape->dtype != PARE_I64 || shape->ndim != 1)
        return pare_op_fail(ctx, PARE_EINPUT, "shape must be a 1-D int64 tensor");
    if (!shape->data)
        return pare_op_fail(ctx, PARE_EUNSUPPORTED, "shape input must be a constant");
    n = shape->dims[0];
    if (n > PARE_MAX_DIMS)
        return pare_op_fail(ctx, PARE_EUNSUPPORTED, "shape has %lld dims, more than %d",
                            (long long)n, PARE_MAX_DIMS);
    for (int64_t i = 0; i < n; i++) {
        want[i] = ((const int64_t *)shape->data)[i];
        if (want[i] < 0)
            return pare_op_fail(ctx, PARE_EINPUT, "shape has a negative dim %lld",
                                (long long)want[i]);
    }
    if (pare_dtype_size(x->dtype) == 0 || !copy_fn(pare_dtype_size(x->dtype)))
        return ew_bad_dtype(ctx, NULL, x->dtype);
    rc = ew_broadcast(ctx, x->ndim, x->dims, (int)n, want, &nd, dims);
    if (rc != PARE_OK)
        return rc;
    ew_set_shape(ctx->out[0], x->dtype, nd, dims);
    return PARE_OK;
}

static pare_status expand_forward(pare_op_ctx *ctx)
{
    broadcast_copy(ctx, ctx->in[0], ctx->out[0]);
    return PARE_OK;
}

/* ---- variadic Sum, Max, Min, Mean ---- */

typedef struct var_op {
    const bcast_row_fn *fns;
    bool mean;
} var_op;

static pare_status variadic_infer(pare_op_ctx *ctx, const var_op *op)
{
    int64_t dims[PARE_MAX_DIMS];
    int nd;
    pare_dtype dt;
    pare_status rc = ew_check_inputs(ctx, 1, -1);

    if (rc == PARE_OK)
        rc = ew_check_output(ctx);
    if (rc != PARE_OK)
        return rc;
    for (int i = 1; i < ctx->n_in; i++)
        if (!ctx->in[i])
            return pare_op_fail(ctx, PARE_EINPUT, "input %d is required", i);
    dt = ctx->in[0]->dtype;
    if ((unsigned)dt >= DT_N || !op->fns[dt] || (op->mean && dt != PARE_F32 && dt != PARE_F64))
        return ew_bad_dtype(ctx, NULL, dt);
    nd = ctx->in[0]->ndim;
    memcpy(dims, ctx->in[0]->dims, sizeof dims);
    for (int i = 1; i < ctx->n_in; i++) {
        const pare_tensor *t = ctx->in[i];
        int64_t tmp[PARE_MAX_DIMS];
        if (t->dtype != dt)
            return pare_op_fail(ctx, PARE_EINPUT, "input dtypes differ: '%s' and '%s'",
                                pare_dtype_name(dt), pare_dtype_name(t->dtype));
        rc = ew_broadcast(ctx, nd, dims, t->ndim, t->dims, &nd, tmp);
        if (rc != PARE_OK)
            return rc;
        memcpy(dims, tmp, sizeof dims);
    }
    ew_set_shape(ctx->out[0], dt, nd, dims);
    if (ctx->n_in >= 3)
        ctx->scratch_bytes = pare_tensor_nbytes(ctx->out[0]);
    return PARE_OK;
}

static pare_status variadic_forward(pare_op_ctx *ctx, const var_op *op)
{
    pare_tensor *out = ctx->out[0];
    int n = ctx->n_in;

    if (n == 1) {
        broadcast_copy(ctx, ctx->in[0], out);
    } else {
        /* Ping-pong between scratch and out so the last step lands in out. */
        pare_tensor acc = *out, prev;
        acc.owns_data = false;
        for (int i = 1; i < n; i++) {
            prev = acc;
            acc.data = (n - 1 - i) % 2 == 0 ? out->data : ctx->scratch;
            binary_apply(ctx, op->fns[out->dtype], i == 1 ? ctx->in[0] : &prev, ctx->in[i],
                         &acc);
        }
    }
    if (op->mean) {
        int64_t m = pare_tensor_numel(out);
        if (out->dtype == PARE_F32) {
            float *o = out->data, inv = 1.0f / (float)n;
            for (int64_t i = 0; i < m; i++)
                o[i] *= inv;
        } else {
            double *o = out->data;
            for (int64_t i = 0; i < m; i++)
                o[i] /= (double)n;
        }
    }
    return PARE_OK;
}

#define VAR_OP(name, fns, mean)                                                  \
    static const var_op op_##name = { fns, mean };                               \
    static pare_status name##_infer(pare_op_ctx *ctx) { return variadic_infer(ctx, &op_##name); } \
    static pare_status name##_forward(pare_op_ctx *ctx) { return variadic_forward(ctx, &op_##name); }

VAR_OP(vsum, add_fns, false)
VAR_OP(vmax, max_fns, false)
VAR_OP(vmin, min_fns, false)
VAR_OP(vmean, add_fns, true)

/* ---- backward (float32) ----
 *
 * Every kernel OVERWRITES the non-NULL din entries; a NULL dout means no
 * gradient flows, so din is zeroed. Broadcast inputs: the per-element
 * gradient is formed in output shape (in din directly when the sizes agree,
 * else in scratch) and summed back to the input's shape by
 * bcast_reduce_grad. */

static void zero_grads(pare_op_ctx *ctx)
{
    for (int i = 0; i < ctx->n_in; i++)
        if (ctx->din[i] && ctx->din[i]->data)
            memset(ctx->din[i]->data, 0, pare_tensor_nbytes(ctx->din[i]));
}

static bool needs_grad(const pare_op_ctx *ctx, int i)
{
    return i < ctx->n_in && ctx->din[i] && ctx->in[i] && ctx->in[i]->dtype == PARE_F32;
}

static size_t out_f32_bytes(const pare_op_ctx *ctx)
{
    return ((size_t)pare_tensor_numel(ctx->out[0]) * sizeof(float) + 63) & ~(size_t)63;
}

enum bin_grad { BG_ADD, BG_SUB, BG_MUL, BG_DIV, BG_POW };

typedef struct bin_grad_arg {
    int op;
    int which;   /* 0: d/da, 1: d/db */
} bin_grad_arg;

/* in: a, b (strides 0 or 1), g (output-shaped, stride 1); out: per-element
 * gradient w.r.t. input `which`. */
static void bin_grad_row(const void *arg, int64_t n, const void *const *in, const int64_t *s,
                         void *out)
{
    const bin_grad_arg *ga = arg;
    const float *a = in[0], *b = in[1], *g = in[2];
    const int64_t sa = s[0], sb = s[1];
    float *o = out;

    switch (ga->op * 2 + ga->which) {
    case BG_ADD * 2: case BG_ADD * 2 + 1: case BG_SUB * 2:
        memcpy(o, g, (size_t)n * sizeof(float));
        break;
    case BG_SUB * 2 + 1:
        for (int64_t i = 0; i < n; i++)
            o[i] = -g[i];
        break;
    case BG_MUL * 2:
        for (int64_t i = 0; i < n; i++)
            o[i] = g[i] * b[i * sb];
        break;
    case BG_MUL * 2 + 1:
        for (int64_t i = 0; i < n; i++)
            o[i] = g[i] * a[i * sa];
        break;
    case BG_DIV * 2:
        for (int64_t i = 0; i < n; i++)
            o[i] = g[i] / b[i * sb];
        break;
    case BG_DIV * 2 + 1:
        for (int64_t i = 0; i < n; i++) {
            const float bv = b[i * sb];
            o[i] = -g[i] * a[i * sa] / (bv * bv);
        }
        break;
    case BG_POW * 2:
        /* d(a^b)/da = b a^(b-1) */
        for (int64_t i = 0; i < n; i++) {
            const float av = a[i * sa], bv = b[i * sb];
            o[i] = bv == 0.0f ? 0.0f : g[i] * bv * powf(av, bv - 1.0f);
        }
        break;
    case BG_POW * 2 + 1:
        /* d(a^b)/db = a^b ln a; taken as 0 where a <= 0 (undefined there) */
        for (int64_t i = 0; i < n; i++) {
            const float av = a[i * sa], bv = b[i * sb];
            o[i] = av > 0.0f ? g[i] * powf(av, bv) * logf(av) : 0.0f;
        }
        break;
    default:
        break;
    }
}

static pare_status binary_backward(pare_op_ctx *ctx, int op)
{
    const pare_tensor *a = ctx->in[0], *y = ctx->out[0], *g = ctx->dout[0];
    pare_tensor b;
    float *scratch = ctx->scratch;
    pare_status rc;

    if (!ctx->din[0] && !ctx->din[1])
        return PARE_OK;
    if (a->dtype != PARE_F32)
        return ew_bad_dtype(ctx, "backward", a->dtype);
    rc = binary_b_view(ctx, &b);
    if (rc != PARE_OK)
        return rc;
    if (!g) {
        zero_grads(ctx);
        return PARE_OK;
    }
    if (b.dtype != PARE_F32) {
        /* Pow with a non-float exponent: a float copy after the gradient buffer */
        float *e = (float *)((char *)ctx->scratch + out_f32_bytes(ctx));
        convert_to_float(ctx->in[1], PARE_F32, e);
        b.dtype = PARE_F32;
        b.data = e;
    }
    for (int w = 0; w < 2; w++) {
        const pare_tensor *target = w == 0 ? a : &b;
        const pare_tensor *ins[3] = { a, &b, y };
        const void *ptr[3] = { a->data, b.data, g->data };
        size_t esz[3] = { 4, 4, 4 };
        bin_grad_arg ga = { op, w };
        bcast_plan p;
        float *full;

        if (!ctx->din[w])
            continue;
        if (!needs_grad(ctx, w)) {
            /* integer exponent: no gradient */
            memset(ctx->din[w]->data, 0, pare_tensor_nbytes(ctx->din[w]));
            continue;
        }
        full = pare_tensor_numel(target) == pare_tensor_numel(y) ? ctx->din[w]->data : scratch;
        bcast_plan_tensors(&p, 3, ins, y);
        bcast_run(&p, bin_grad_row, &ga, ptr, esz, full, 4, ew_threads(ctx, p.numel));
        bcast_reduce_grad(full, y->ndim, y->dims, ctx->din[w]->data, target->ndim, target->dims);
    }
    return PARE_OK;
}

static size_t binary_bscratch(const pare_op_ctx *ctx)
{
    size_t n = out_f32_bytes(ctx);
    if (ctx->n_in > 1 && ctx->in[1] && ctx->in[1]->dtype != PARE_F32)
        n += (size_t)pare_tensor_numel(ctx->in[1]) * sizeof(float);
    return n;
}

static pare_status add_backward(pare_op_ctx *ctx) { return binary_backward(ctx, BG_ADD); }
static pare_status sub_backward(pare_op_ctx *ctx) { return binary_backward(ctx, BG_SUB); }
static pare_status mul_backward(pare_op_ctx *ctx) { return binary_backward(ctx, BG_MUL); }
static pare_status div_backward(pare_op_ctx *ctx) { return binary_backward(ctx, BG_DIV); }
static pare_status pow_backward(pare_op_ctx *ctx) { return binary_backward(ctx, BG_POW); }
#define add_bscratch binary_bscratch
#define sub_bscratch binary_bscratch
#define mul_bscratch binary_bscratch
#define div_bscratch binary_bscratch
#define pow_bscratch binary_bscratch

/* Unary: dx = g * f'(x) from x and y = f(x). */
enum un_grad { UG_SQRT, UG_EXP, UG_LOG, UG_NEG, UG_ABS, UG_RECIP, UG_ERF };

#define UG_LOOP(EXPR)                                                            \
    for (int64_t i = 0; i < n; i++) {                                            \
        const float xv = x[i], yv = y[i];                                        \
        (void)xv;                                                                \
        (void)yv;                                                                \
        dx[i] = g[i] * (EXPR);                                                   \
    }                                                                            \
    break

static pare_status unary_backward(pare_op_ctx *ctx, int kind)
{
    const pare_tensor *xt = ctx->in[0];
    const float *x = xt->data, *y = ctx->out[0]->data, *g;
    float *dx;
    int64_t n = pare_tensor_numel(xt);

    if (!ctx->din[0])
        return PARE_OK;
    if (xt->dtype != PARE_F32)
        return ew_bad_dtype(ctx, "backward", xt->dtype);
    if (!ctx->dout[0]) {
        zero_grads(ctx);
        return PARE_OK;
    }
    g = ctx->dout[0]->data;
    dx = ctx->din[0]->data;
    switch (kind) {
    case UG_SQRT: UG_LOOP(0.5f / yv);
    case UG_EXP: UG_LOOP(yv);
    case UG_LOG: UG_LOOP(1.0f / xv);
    case UG_NEG: UG_LOOP(-1.0f);
    case UG_ABS: UG_LOOP(xv > 0.0f ? 1.0f : xv < 0.0f ? -1.0f : 0.0f);
    case UG_RECIP: UG_LOOP(-(yv * yv));
    case UG_ERF: UG_LOOP(1.12837916709551257f * vm_expf(-xv * xv));
    default:
        break;
    }
    return PARE_OK;
}

static pare_status sqrt_backward(pare_op_ctx *ctx) { return unary_backward(ctx, UG_SQRT); }
static pare_status exp_backward(pare_op_ctx *ctx) { return unary_backward(ctx, UG_EXP); }
static pare_status log_backward(pare_op_ctx *ctx) { return unary_backward(ctx, UG_LOG); }
static pare_status neg_backward(pare_op_ctx *ctx) { return unary_backward(ctx, UG_NEG); }
static pare_status abs_backward(pare_op_ctx *ctx) { return unary_backward(ctx, UG_ABS); }
static pare_status reciprocal_backward(pare_op_ctx *ctx) { return unary_backward(ctx, UG_RECIP); }
static pare_status erf_backward(pare_op_ctx *ctx) { return unary_backward(ctx, UG_ERF); }
#define sqrt_bscratch NULL
#define exp_bscratch NULL
#define log_bscratch NULL
#define neg_bscratch NULL
#define abs_bscratch NULL
#define reciprocal_bscratch NULL
#define erf_bscratch NULL

/* Where: dX = g where the condition holds, dY = g where it does not, each
 * summed to its own shape. */
static void where_grad_row(const void *arg, int64_t n, const void *const *in, const int64_t *s,
                           void *out)
{
    const uint8_t *c = in[0];
    const float *g = in[1];
    const uint8_t want = *(const uint8_t *)arg;
    float *o = out;

    for (int64_t i = 0; i < n; i++)
        o[i] = (c[i * s[0]] != 0) == want ? g[i] : 0.0f;
}

static pare_status where_backward(pare_op_ctx *ctx)
{
    const pare_tensor *y = ctx->out[0];

    if (!ctx->din[1] && !ctx->din[2])
        return PARE_OK;
    if (ctx->in[1]->dtype != PARE_F32)
        return ew_bad_dtype(ctx, "backward", ctx->in[1]->dtype);
    if (!ctx->dout[0]) {
        zero_grads(ctx);
        return PARE_OK;
    }
    for (int w = 1; w <= 2; w++) {
        const pare_tensor *t = ctx->in[w];
        const pare_tensor *ins[2] = { ctx->in[0], y };
        const void *ptr[2] = { ctx->in[0]->data, ctx->dout[0]->data };
        size_t esz[2] = { 1, 4 };
        uint8_t want = w == 1;
        bcast_plan p;
        float *full;

        if (!needs_grad(ctx, w))
            continue;
        full = pare_tensor_numel(t) == pare_tensor_numel(y) ? ctx->din[w]->data : ctx->scratch;
        bcast_plan_tensors(&p, 2, ins, y);
        bcast_run(&p, where_grad_row, &want, ptr, esz, full, 4, ew_threads(ctx, p.numel));
        bcast_reduce_grad(full, y->ndim, y->dims, ctx->din[w]->data, t->ndim, t->dims);
    }
    return PARE_OK;
}
#define where_bscratch out_f32_bytes

/* Expand: the gradient summed back to the input's shape. */
static pare_status expand_backward(pare_op_ctx *ctx)
{
    const pare_tensor *x = ctx->in[0], *y = ctx->out[0];

    if (!ctx->din[0])
        return PARE_OK;
    if (x->dtype != PARE_F32)
        return ew_bad_dtype(ctx, "backward", x->dtype);
    if (!ctx->dout[0]) {
        zero_grads(ctx);
        return PARE_OK;
    }
    bcast_reduce_grad(ctx->dout[0]->data, y->ndim, y->dims, ctx->din[0]->data, x->ndim, x->dims);
    return PARE_OK;
}
#define expand_bscratch NULL

/* Sum and Mean: every input gets g (/ n for Mean) summed to its shape. */
static pare_status vsum_backward_impl(pare_op_ctx *ctx, bool mean)
{
    const pare_tensor *y = ctx->out[0];

    if (y->dtype != PARE_F32)
        return ew_bad_dtype(ctx, "backward", y->dtype);
    if (!ctx->dout[0]) {
        zero_grads(ctx);
        return PARE_OK;
    }
    for (int i = 0; i < ctx->n_in; i++) {
        const pare_tensor *t = ctx->in[i];
        float *d;
        if (!ctx->din[i])
            continue;
        d = ctx->din[i]->data;
        bcast_reduce_grad(ctx->dout[0]->data, y->ndim, y->dims, d, t->ndim, t->dims);
        if (mean) {
            const float inv = 1.0f / (float)ctx->n_in;
            for (int64_t k = 0; k < pare_tensor_numel(t); k++)
                d[k] *= inv;
        }
    }
    return PARE_OK;
}

static pare_status vsum_backward(pare_op_ctx *ctx) { return vsum_backward_impl(ctx, false); }
static pare_status vmean_backward(pare_op_ctx *ctx) { return vsum_backward_impl(ctx, true); }
#define vsum_bscratch NULL
#define vmean_bscratch NULL

/* Max and Min: at each output element the gradient goes to the first input
 * (in input order) equal to the result; the others get 0 there.
 * Scratch: rem (gradient not yet given), xb (input i broadcast), full. */
static pare_status vext_backward(pare_op_ctx *ctx)
{
    const pare_tensor *y = ctx->out[0];
    const int64_t n = pare_tensor_numel(y);
    const size_t blk = out_f32_bytes(ctx);
    float *rem = ctx->scratch;
    float *xb = (float *)((char *)ctx->scratch + blk);
    float *full = (float *)((char *)ctx->scratch + 2 * blk);
    const float *yv = y->data;

    if (y->dtype != PARE_F32)
        return ew_bad_dtype(ctx, "backward", y->dtype);
    if (!ctx->dout[0]) {
        zero_grads(ctx);
        return PARE_OK;
    }
    memcpy(rem, ctx->dout[0]->data, (size_t)n * sizeof(float));
    for (int i = 0; i < ctx->n_in; i++) {
        const pare_tensor *t = ctx->in[i];
        pare_tensor xbt = *y;
        xbt.data = xb;
        xbt.owns_data = false;
        broadcast_copy(ctx, t, &xbt);
        for (int64_t k = 0; k < n; k++) {
            const bool hit = xb[k] == yv[k];
            full[k] = hit ? rem[k] : 0.0f;
            rem[k] = hit ? 0.0f : rem[k];
        }
        if (ctx->din[i])
            bcast_reduce_grad(full, y->ndim, y->dims, ctx->din[i]->data, t->ndim, t->dims);
    }
    return PARE_OK;
}
#define vmax_backward vext_backward
#define vmin_backward vext_backward
static size_t vext_bscratch(const pare_op_ctx *ctx) { return 3 * out_f32_bytes(ctx); }
#define vmax_bscratch vext_bscratch
#define vmin_bscratch vext_bscratch

/* ---- table ---- */

#define ROW(op, since_, until_, fn, notes_)                                      \
    { .domain = "", .op_type = op, .since = since_, .until = until_,             \
      .infer = fn##_infer, .forward = fn##_forward, .flops = ew_flops_out, .notes = notes_ }
/* A row with backward (float32) and its extra workspace. */
#define ROW_B(op, since_, until_, fn, notes_)                                    \
    { .domain = "", .op_type = op, .since = since_, .until = until_,             \
      .infer = fn##_infer, .forward = fn##_forward, .backward = fn##_backward,   \
      .backward_scratch = fn##_bscratch, .flops = ew_flops_out, .notes = notes_ }

#define LEGACY "broadcast/axis attributes (B aligned at axis, or equal shapes)"
const pare_op_def ops_elementwise[] = {
    ROW_B("Add", 1, 6, add, LEGACY),
    ROW_B("Add", 7, 0, add, "numpy broadcasting; all numeric dtypes"),
    ROW_B("Sub", 1, 6, sub, LEGACY),
    ROW_B("Sub", 7, 0, sub, "numpy broadcasting; all numeric dtypes"),
    ROW_B("Mul", 1, 6, mul, LEGACY),
    ROW_B("Mul", 7, 0, mul, "numpy broadcasting; all numeric dtypes"),
    ROW_B("Div", 1, 6, div, LEGACY),
    ROW_B("Div", 7, 0, div, "integer division truncates; integer division by zero gives 0"),
    ROW_B("Pow", 1, 6, pow, LEGACY),
    ROW_B("Pow", 7, 0, pow, "base float32/float64/int32/int64; exponent any numeric dtype; exponent gradient 0 where base <= 0"),
    ROW_B("Sqrt", 6, 0, sqrt, "float32, float64"),
    ROW_B("Exp", 6, 0, exp, "float32, float64"),
    ROW_B("Log", 6, 0, log, "float32, float64"),
    ROW_B("Neg", 6, 0, neg, "float and signed integer dtypes"),
    ROW_B("Abs", 6, 0, abs, "all numeric dtypes"),
    ROW_B("Reciprocal", 6, 0, reciprocal, "float32, float64"),
    ROW_B("Erf", 9, 0, erf, "float32, float64"),
    ROW("Floor", 6, 0, floor, "float32, float64"),
    ROW("Ceil", 6, 0, ceil, "float32, float64"),
    ROW("Round", 11, 0, round, "round half to even; float32, float64"),
    ROW("Sign", 9, 0, sign, "all numeric dtypes"),
    ROW("Mod", 10, 0, mod, "fmod=0: integers, divisor's sign; fmod=1: C fmod; x % 0 gives 0"),
    ROW("IsNaN", 9, 0, isnan, "float32, float64"),
    ROW("IsInf", 10, 0, isinf, "float32, float64"),
    ROW("Shrink", 9, 0, shrink, "float32, float64"),
    ROW("Sin", 7, 0, sin, "float32, float64"),
    ROW("Cos", 7, 0, cos, "float32, float64"),
    ROW("Tan", 7, 0, tan, "float32, float64"),
    ROW("Asin", 7, 0, asin, "float32, float64"),
    ROW("Acos", 7, 0, acos, "float32, float64"),
    ROW("Atan", 7, 0, atan, "float32, float64"),
    ROW("Sinh", 9, 0, sinh, "float32, float64"),
    ROW("Cosh", 9, 0, cosh, "float32, float64"),
    ROW("Asinh", 9, 0, asinh, "float32, float64"),
    ROW("Acosh", 9, 0, acosh, "float32, float64"),
    ROW("Atanh", 9, 0, atanh, "float32, float64"),
    ROW("Equal", 7, 0, equal, "numeric and bool; no strings"),
    ROW("Less", 7, 0, less, NULL),
    ROW("Greater", 7, 0, greater, NULL),
    ROW("LessOrEqual", 12, 0, less_eq, NULL),
    ROW("GreaterOrEqual", 12, 0, greater_eq, NULL),
    ROW("Not", 1, 0, not, NULL),
    ROW("And", 7, 0, and, NULL),
    ROW("Or", 7, 0, or, NULL),
    ROW("Xor", 7, 0, xor, NULL),
    ROW_B("Where", 9, 0, where, "any fixed-size dtype"),
    ROW_B("Expand", 8, 0, expand, "shape must be known when the plan is built"),
    ROW_B("Sum", 6, 0, vsum, "numpy broadcasting (also accepted before opset 8)"),
    ROW_B("Max", 6, 0, vmax, "NaN propagates; gradient to the first input equal to the result"),
    ROW_B("Min", 6, 0, vmin, "NaN propagates; gradient to the first input equal to the result"),
    ROW_B("Mean", 6, 0, vmean, "float32, float64"),
    { .op_type = NULL },
};
