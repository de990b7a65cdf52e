/* Cast and CastLike between float32/64, float16, bfloat16, int8-64,
 * uint8-64 and bool. Rows live in shape.c.
 *
 * Conversions follow C (and numpy): float to integer truncates toward zero,
 * integers narrow by wrapping, anything to bool is (x != 0), bool reads as
 * 0/1. To bfloat16: truncation before opset 19 (what the ONNX 1.12 backend
 * tests expect), round-to-nearest-even from opset 19 (the current ONNX
 * reference). Strings and float8 are unsupported. */
#include <stdint.h>
#include <string.h>

#include "pare/op.h"

static bool castable(pare_dtype t)
{
    switch (t) {
    case PARE_F32: case PARE_F64: case PARE_F16: case PARE_BF16:
    case PARE_I8: case PARE_U8: case PARE_I16: case PARE_U16:
    case PARE_I32: case PARE_U32: case PARE_I64: case PARE_U64: case PARE_BOOL:
        return true;
    default:
        return false;
    }
}

static pare_status cast_to(pare_op_ctx *ctx, pare_dtype to)
{
    const pare_tensor *x = ctx->n_in > 0 ? ctx->in[0] : NULL;
    pare_tensor *y = ctx->n_out > 0 ? ctx->out[0] : NULL;

    if (!x || !y)
        return pare_op_fail(ctx, PARE_EINPUT, "expects one input and one output");
    if (!castable(x->dtype))
        return pare_op_fail(ctx, PARE_EUNSUPPORTED, "dtype '%s' not supported",
                            pare_dtype_name(x->dtype));
    if (!castable(to)) {
        if (to == PARE_STRING || to == PARE_UNDEFINED || pare_dtype_size(to))
            return pare_op_fail(ctx, PARE_EUNSUPPORTED, "dtype '%s' not supported",
                                pare_dtype_name(to));
        return pare_op_fail(ctx, PARE_EUNSUPPORTED, "cast to dtype %d not supported", (int)to);
    }
    y->dtype = to;
    y->ndim = x->ndim;
    memcpy(y->dims, x->dims, sizeof y->dims);
    return PARE_OK;
}

pare_status shape_cast_infer(pare_op_ctx *ctx)
{
    const pare_attr *a = pare_node_attr(ctx->node, "to");

    if (!a || a->type != PARE_ATTR_INT)
        return pare_op_fail(ctx, PARE_EINPUT, "attribute 'to' (an int dtype) is required");
    return cast_to(ctx, (pare_dtype)a->i);
}

/* Cast-1 names the type as a string ("FLOAT", "INT64"...). */
pare_status shape_cast1_infer(pare_op_ctx *ctx)
{
    static const struct { const char *name; pare_dtype dtype; } names[] = {
        {"FLOAT", PARE_F32},   {"UINT8", PARE_U8},   {"INT8", PARE_I8},
        {"UINT16", PARE_U16},  {"INT16", PARE_I16},  {"INT32", PARE_I32},
        {"INT64", PARE_I64},   {"STRING", PARE_STRING}, {"BOOL", PARE_BOOL},
        {"FLOAT16", PARE_F16}, {"DOUBLE", PARE_F64}, {"UINT32", PARE_U32},
        {"UINT64", PARE_U64},  {"BFLOAT16", PARE_BF16},
    };
    const char *to = pare_node_attr_string(ctx->node, "to", NULL);

    if (!to)
        return pare_op_fail(ctx, PARE_EINPUT, "attribute 'to' (a type name) is required");
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(names[i].name, to))
            return cast_to(ctx, names[i].dtype);
    return pare_op_fail(ctx, PARE_EINPUT, "unknown type name '%s' in 'to'", to);
}

pare_status shape_castlike_infer(pare_op_ctx *ctx)
{
    if (ctx->n_in < 2 || !ctx->in[1])
        return pare_op_fail(ctx, PARE_EINPUT, "expects 2 inputs (input, target_type)");
    return cast_to(ctx, ctx->in[1]->dtype);
}

static uint16_t f32_to_bf16_trunc(float f)
{
    uint32_t b;
    memcpy(&b, &f, 4);
    return (uint16_t)(b >> 16);
}

static uint16_t f32_to_bf16_rne(float f)
{
    uint32_t b;
    memcpy(&b, &f, 4);
    if ((b & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((b >> 16) | 0x40); /* quiet NaN */
    return (uint16_t)((b + 0x7fffu + ((b >> 16) & 1u)) >> 16);
}

static uint64_t f_to_u64(double v)
{
    return v < 0 ? (uint64_t)(int64_t)v : (uint64_t)v;
}

static uint64_t i_to_u64(uint64_t v)
{
    return v;
}

/* Integer destination: floats truncate through int64 (so -1.0 -> uint8 255
 * like numpy), integers wrap. */
#define TO_INT(T, v) _Generic((v), float: (T)(int64_t)(v), double: (T)(int64_t)(v), default: (T)(v))
#define TO_U64(v) _Generic((v), float: f_to_u64, double: f_to_u64, default: i_to_u64)(v)

#define LD_PLAIN(p, ST, i) (((const ST *)(p))[i])
#define LD_F16(p, ST, i) pare_f16_to_f32(((const uint16_t *)(p))[i])
#define LD_BF16(p, ST, i) pare_bf16_to_f32(((const uint16_t *)(p))[i])

#define LOOP(ST, LD, DT, EXPR)                                                          \
    do {                                                                                \
        const void *sp = x->data;                                                       \
        DT *restrict dp = y->data;                                                      \
        _Pragma("omp parallel for num_threads(nt) if (n > 65536) schedule(static)")     \
        for (int64_t i = 0; i < n; i++) {                                               \
            ST v = LD(sp, ST, i);                                                       \
            dp[i] = EXPR;                                                               \
        }                                                                               \
    } while (0)

#define TO_ANY(ST, LD)                                                                  \
    switch (y->dtype) {                                                                 \
    case PARE_F32: LOOP(ST, LD, float, (float)v); break;                                \
    case PARE_F64: LOOP(ST, LD, double, (double)v); break;                              \
    case PARE_F16: LOOP(ST, LD, uint16_t, pare_f32_to_f16((float)v)); break;            \
    case PARE_BF16:                                                                     \
        if (bf16_round)                                                                 \
            LOOP(ST, LD, uint16_t, f32_to_bf16_rne((float)v));                          \
        else                                                                            \
            LOOP(ST, LD, uint16_t, f32_to_bf16_trunc((float)v));                        \
        break;                                                                          \
    case PARE_I8: LOOP(ST, LD, int8_t, TO_INT(int8_t, v)); break;                       \
    case PARE_U8: LOOP(ST, LD, uint8_t, TO_INT(uint8_t, v)); break;                     \
    case PARE_I16: LOOP(ST, LD, int16_t, TO_INT(int16_t, v)); break;                    \
    case PARE_U16: LOOP(ST, LD, uint16_t, TO_INT(uint16_t, v)); break;                  \
    case PARE_I32: LOOP(ST, LD, int32_t, TO_INT(int32_t, v)); break;                    \
    case PARE_U32: LOOP(ST, LD, uint32_t, TO_INT(uint32_t, v)); break;                  \
    case PARE_I64: LOOP(ST, LD, int64_t, (int64_t)v); break;                            \
    case PARE_U64: LOOP(ST, LD, uint64_t, TO_U64(v)); break;                            \
    case PARE_BOOL: LOOP(ST, LD, uint8_t, (uint8_t)(v != 0)); break;                    \
    default: break;                                                                     \
    }

pare_status shape_cast_forward(pare_op_ctx *ctx)
{
    const pare_tensor *x = ctx->in[0];
    pare_tensor *y = ctx->out[0];
    int64_t n = pare_tensor_numel(y);
    int nt = ctx->n_threads > 0 ? ctx->n_threads : 1;
    bool bf16_round = ctx->opset >= 19;

    if (x->dtype == y->dtype) {
        if (n && y->data != x->data)
            memcpy(y->data, x->data, pare_tensor_nbytes(y));
        return PARE_OK;
    }
    switch (x->dtype) {
    case PARE_F32: TO_ANY(float, LD_PLAIN); break;
    case PARE_F64: TO_ANY(double, LD_PLAIN); break;
    case PARE_F16: TO_ANY(float, LD_F16); break;
    case PARE_BF16: TO_ANY(float, LD_BF16); break;
    case PARE_I8: TO_ANY(int8_t, LD_PLAIN); break;
    case PARE_U8: TO_ANY(uint8_t, LD_PLAIN); break;
    case PARE_I16: TO_ANY(int16_t, LD_PLAIN); break;
    case PARE_U16: TO_ANY(uint16_t, LD_PLAIN); break;
    case PARE_I32: TO_ANY(int32_t, LD_PLAIN); break;
    case PARE_U32: TO_ANY(uint32_t, LD_PLAIN); break;
    case PARE_I64: TO_ANY(int64_t, LD_PLAIN); break;
    case PARE_U64: TO_ANY(uint64_t, LD_PLAIN); break;
    case PARE_BOOL: TO_ANY(uint8_t, LD_PLAIN); break;
    default:
        return pare_op_fail(ctx, PARE_EUNSUPPORTED, "dtype '%s' not supported",
                            pare_dtype_name(x->dtype));
    }
    return PARE_OK;
}

double shape_cast_flops(const pare_op_ctx *ctx)
{
    return ctx->out[0] ? (double)pare_tensor_numel(ctx->out[0]) : 0.0;
}
