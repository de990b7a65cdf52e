/* Metrics: streaming accuracy with labels, output similarity without.
 *
 * Plain structs in caller storage: _init, then _add once per batch, then read
 * the result; _merge adds one accumulator into another (data-parallel ranks).
 * Sums are kept in double. Nothing is allocated.
 *
 * Rows: a batch tensor's dims[0] is the sample count; one sample is the
 * product of the other dims ([B, C] logits: C values). The `n` argument of
 * _add counts the valid rows (a padded last batch); n < 0 means dims[0].
 * Thread-safety: an accumulator is used by one thread at a time. */
#ifndef PARE_METRICS_H
#define PARE_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "pare/error.h"
#include "pare/tensor.h"

/* ---- accuracy ----------------------------------------------------------------
 * A sample is top-k correct when fewer than k classes rank before its label,
 * where class j ranks before class l when logit[j] > logit[l], or when they
 * are equal and j < l. So ties go to the lowest index, as argmax in ONNX
 * Runtime and numpy does: top-1 correct <=> first max index == label. A NaN
 * logit at the label counts as wrong. */
typedef struct pare_accuracy {
    int k;             /* top-k; 5 by default */
    int64_t n;         /* samples counted */
    int64_t top1;      /* samples correct at top-1 */
    int64_t topk;      /* samples correct within top-k */
} pare_accuracy;

/* k <= 0 means 5. */
void pare_accuracy_init(pare_accuracy *a, int k);
/* logits: F32 (B, C); labels[0..n-1] in [0, C). Errors: PARE_EINPUT for a
 * non-F32 or empty tensor, n > B, or a label out of range (nothing is counted
 * from a batch that fails). */
pare_status pare_accuracy_add(pare_accuracy *a, const pare_tensor *logits,
                              const int64_t *labels, int64_t n, pare_error *err);
void pare_accuracy_merge(pare_accuracy *into, const pare_accuracy *from);
/* Fractions in [0, 1]; 0 when nothing was counted. */
double pare_accuracy_top1(const pare_accuracy *a);
double pare_accuracy_topk(const pare_accuracy *a);

/* ---- similarity of outputs to reference outputs ------------------------------
 * For out vs ref (the original model's outputs on the same samples):
 *   cosine_mean    mean over samples of cos(out_i, ref_i); a sample where both
 *                  are all zero counts 1, where one of them is, 0
 *   cosine_global  cos of the whole concatenated outputs
 *   snr_db         10 log10(sum ref^2 / sum (ref - out)^2); +INFINITY when
 *                  the outputs are identical (format with pare_snr_format)
 *   max_abs_err, mean_abs_err over all values
 *   argmax_agree   fraction of samples whose first-max index is the same
 * A NaN anywhere makes the error metrics NaN (n_nonfinite counts them). */
typedef struct pare_similarity {
    int64_t n_samples;
    int64_t n_values;
    int64_t n_nonfinite;   /* non-finite values seen in out or ref */
    int64_t argmax_same;
    double cos_sum;        /* sum of per-sample cosines */
    double dot, out_sq, ref_sq, err_sq;
    double abs_err_sum;
    double max_abs_err;
} pare_similarity;

typedef struct pare_similarity_result {
    int64_t n_samples;
    double cosine_mean;
    double cosine_global;
    double snr_db;
    double max_abs_err;
    double mean_abs_err;
    double argmax_agree;
} pare_similarity_result;

void pare_similarity_init(pare_similarity *s);
/* out and ref: F32 with the same shape. Errors: PARE_EINPUT naming both
 * shapes when they differ, non-F32, or n > dims[0]. */
pare_status pare_similarity_add(pare_similarity *s, const pare_tensor *out,
                                const pare_tensor *ref, int64_t n, pare_error *err);
void pare_similarity_merge(pare_similarity *into, const pare_similarity *from);
/* All zero when nothing was added. */
void pare_similarity_get(const pare_similarity *s, pare_similarity_result *r);

/* "42.17 dB", "+inf dB" (identical), "-inf dB", "nan dB". Returns buf. */
char *pare_snr_format(double db, char *buf, size_t size);

#endif
