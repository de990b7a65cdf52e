/* Op family tables joined by registry.c. Each table ends with a row whose
 * op_type is NULL. */
#ifndef PARE_OPS_FAMILIES_H
#define PARE_OPS_FAMILIES_H

#include "pare/op.h"

extern const pare_op_def ops_conv[];        /* Conv, ConvTranspose */
extern const pare_op_def ops_gemm[];        /* Gemm, MatMul */
extern const pare_op_def ops_pool[];        /* MaxPool, AveragePool, GlobalAveragePool */
extern const pare_op_def ops_norm[];        /* BatchNormalization, LayerNormalization, InstanceNormalization */
extern const pare_op_def ops_elementwise[]; /* arithmetic, math, comparison, logic, Where, Expand */
extern const pare_op_def ops_activation[];  /* Relu, Clip, ... Softmax, LogSoftmax, Hardmax */
extern const pare_op_def ops_reduce[];      /* Reduce* */
extern const pare_op_def ops_shape[];       /* shape and index ops, Cast, Pad, Resize */
extern const pare_op_def ops_quant[];       /* QuantizeLinear, DequantizeLinear */

#endif
