/* Backward kernels of Conv and ConvTranspose (core/src/ops/conv_backward.c),
 * registered by the rows of core/src/ops/conv.c. Float32, 1-D / 2-D / 3-D,
 * groups, strides, dilations, pads (after auto_pad), output_padding and
 * output_shape, optional bias; the op.h backward contract: every non-NULL
 * ctx->din[i] is overwritten, NULL ones cost nothing.
 *
 * The result depends on shapes only, never on ctx->n_threads: images are
 * cut into a fixed number of parts (by shape), each part sums its images'
 * weight gradient in order into its own buffer, and the parts are added in
 * part order. Not part of the public API. */
#ifndef PARE_OPS_CONV_BACKWARD_H
#define PARE_OPS_CONV_BACKWARD_H

#include <stddef.h>

#include "ops/nn_util.h"
#include "pare/op.h"

pare_status conv_backward(pare_op_ctx *ctx);
/* Workspace conv_backward needs for ctx's shapes and ctx->n_threads
 * (thread slots are sized here; backward must get the same n_threads). */
size_t conv_backward_scratch(const pare_op_ctx *ctx);

pare_status convt_backward(pare_op_ctx *ctx);
size_t convt_backward_scratch(const pare_op_ctx *ctx);

/* Defined in conv.c: the ConvTranspose node's spatial window after
 * auto_pad, output_padding and output_shape (in = X's spatial dims, out =
 * Y's, pb / pe = pads of Y), validating inputs and attributes as infer does;
 * PARE_EINPUT / PARE_EUNSUPPORTED with ctx->err filled otherwise. */
pare_status convt_window(pare_op_ctx *ctx, nn_window *w);

#endif
