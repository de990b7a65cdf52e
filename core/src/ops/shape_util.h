/* Helpers shared by the shape-family files (shape*.c). Core-private. */
#ifndef PARE_OPS_SHAPE_UTIL_H
#define PARE_OPS_SHAPE_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "pare/op.h"

/* Element size of t; PARE_EUNSUPPORTED for dtypes without one (string). */
pare_status shape_elem_size(pare_op_ctx *ctx, const pare_tensor *t, size_t *es);

/* Reads a 1-D (or scalar) int64/int32 input that must be known at plan
 * time into v (at most max values; count in *n). A runtime value is
 * PARE_EUNSUPPORTED with a hint; a wrong dtype, rank or count PARE_EINPUT. */
pare_status shape_const_ints(pare_op_ctx *ctx, const pare_tensor *t, const char *what,
                             int64_t *v, int max, int *n);

/* Kernels of shape_cast.c, shape_pad.c, shape_resize.c and shape_index.c,
 * listed in shape.c's table. */

pare_status shape_cast_infer(pare_op_ctx *ctx);
pare_status shape_cast1_infer(pare_op_ctx *ctx);
pare_status shape_castlike_infer(pare_op_ctx *ctx);
pare_status shape_cast_forward(pare_op_ctx *ctx);
double shape_cast_flops(const pare_op_ctx *ctx);

pare_status shape_pad1_infer(pare_op_ctx *ctx);
pare_status shape_pad2_infer(pare_op_ctx *ctx);
pare_status shape_pad11_infer(pare_op_ctx *ctx);
pare_status shape_pad18_infer(pare_op_ctx *ctx);
pare_status shape_pad_forward(pare_op_ctx *ctx);
pare_status shape_pad_backward(pare_op_ctx *ctx);

pare_status shape_resize_infer(pare_op_ctx *ctx);
pare_status shape_resize_forward(pare_op_ctx *ctx);
pare_status shape_upsample_infer(pare_op_ctx *ctx);
pare_status shape_upsample_forward(pare_op_ctx *ctx);
pare_status shape_resize_backward(pare_op_ctx *ctx);
pare_status shape_upsample_backward(pare_op_ctx *ctx);
double shape_resize_flops(const pare_op_ctx *ctx);

pare_status shape_gather_infer(pare_op_ctx *ctx);
pare_status shape_gather_forward(pare_op_ctx *ctx);
pare_status shape_gather_backward(pare_op_ctx *ctx);
pare_status shape_tile_infer(pare_op_ctx *ctx);
pare_status shape_tile_forward(pare_op_ctx *ctx);
pare_status shape_range_infer(pare_op_ctx *ctx);
pare_status shape_range_forward(pare_op_ctx *ctx);
double shape_range_flops(const pare_op_ctx *ctx);
pare_status shape_gather_elements_infer(pare_op_ctx *ctx);
pare_status shape_gather_elements_forward(pare_op_ctx *ctx);
pare_status shape_trilu_infer(pare_op_ctx *ctx);
pare_status shape_trilu_forward(pare_op_ctx *ctx);
pare_status shape_argminmax_infer(pare_op_ctx *ctx);
pare_status shape_argmax_forward(pare_op_ctx *ctx);
pare_status shape_argmin_forward(pare_op_ctx *ctx);
double shape_argminmax_flops(const pare_op_ctx *ctx);
pare_status shape_onehot_infer(pare_op_ctx *ctx);
pare_status shape_onehot_forward(pare_op_ctx *ctx);
pare_status shape_nonzero_infer(pare_op_ctx *ctx);
pare_status shape_nonzero_forward(pare_op_ctx *ctx);

#endif
