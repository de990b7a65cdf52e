/* Comparing an executor output with an ONNX test's expected tensor.
 *
 * ONNX's default backend-test tolerance: a float element matches when
 * |got - want| <= CONF_ATOL + CONF_RTOL * |want|; NaN matches only NaN, an
 * infinity only the same infinity. Integers and booleans match exactly.
 * dtype and shape must be equal. */
#ifndef PARE_CONFORMANCE_COMPARE_H
#define PARE_CONFORMANCE_COMPARE_H

#include <stdbool.h>

#include "pare/tensor.h"

#define CONF_RTOL 1e-3
#define CONF_ATOL 1e-7

bool conf_float_close(double got, double want);

/* NULL when got matches want, else a new message (free with pare_free) that
 * names the output, the first mismatching index with both values, and how many
 * elements differ. Exits the process with status 2 when out of memory. */
char *conf_compare(const pare_tensor *got, const pare_tensor *want, const char *name);

#endif
