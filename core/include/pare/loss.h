/* Loss functions for training and distillation, with their gradients.
 *
 * Every loss takes float32 row-major tensors, returns weight x (the loss
 * averaged as stated per function) in *loss, and, when the gradient tensor
 * is non-NULL, ADDS weight x d(loss)/d(input) into it. The caller zeroes the
 * gradient buffers once per step, so several losses can share one buffer.
 * Gradient tensors must have the shape of the input they belong to.
 * Sums are accumulated in double; non-finite inputs are not an error here
 * (they propagate into *loss and the gradients; the trainer checks).
 *
 * Errors (nothing is written to *loss or the gradients on failure):
 * PARE_EINPUT for shape mismatches (the message names both shapes), labels
 * out of range (naming the row), a gradient buffer of the wrong shape;
 * PARE_EUNSUPPORTED for a dtype other than float32 or a tensor without data;
 * PARE_ENOMEM. err->where is left empty: the caller knows the user's location
 * (the distillation pair, the config line) and fills it.
 * Thread-safety: pure functions; distinct outputs may be computed in parallel. */
#ifndef PARE_LOSS_H
#define PARE_LOSS_H

#include <stdint.h>

#include "pare/error.h"
#include "pare/tensor.h"

typedef enum pare_loss_kind {
    PARE_LOSS_CROSS_ENTROPY,
    PARE_LOSS_SOFT_LABEL,
    PARE_LOSS_L2,          /* also spelled "mse" */
    PARE_LOSS_COSINE,
    PARE_LOSS_FSP
} pare_loss_kind;

#define PARE_LOSS_KIND_COUNT 5

/* Canonical lowercase name: "cross_entropy", "soft_label", "l2", "cosine", "fsp". */
const char *pare_loss_kind_name(pare_loss_kind kind);

/* Name to kind, case-insensitive; "mse" is an alias of "l2" and "ce" of
 * "cross_entropy". Unknown names: PARE_EINPUT "unknown loss 'x'" with a
 * did-you-mean hint (or the list of names when nothing is close). */
pare_status pare_loss_kind_parse(const char *name, pare_loss_kind *kind, pare_error *err);

/* logits: (B, C); labels: B class indices in [0, C).
 * loss = mean_b -sum_c q_bc log softmax(logits_b)_c with
 * q = (1 - label_smoothing) onehot(label) + label_smoothing / C
 * (torch.nn.functional.cross_entropy with label_smoothing).
 * dlogits (may be NULL) += weight (softmax - q) / B. */
pare_status pare_loss_cross_entropy(const pare_tensor *logits, const int64_t *labels,
                                    float label_smoothing, float weight, double *loss,
                                    pare_tensor *dlogits, pare_error *err);

/* loss = mean over all elements of (pred - target)^2; dpred += weight 2 (pred - target) / n. */
pare_status pare_loss_mse(const pare_tensor *pred, const pare_tensor *target, float weight,
                          double *loss, pare_tensor *dpred, pare_error *err);

/* teacher, student: (B, C, ...) of equal shape; softmax over axis 1.
 * loss = T^2 x mean over B and the positions after axis 1 of
 * KL(softmax(teacher / T) || softmax(student / T)) summed over C; for (B, C)
 * this is F.kl_div(log_softmax(s/T), softmax(t/T), reduction='batchmean') * T^2.
 * dstudent += weight T (softmax(s/T) - softmax(t/T)) / (B x positions).
 * T <= 0 is PARE_EINPUT. The teacher gets no gradient. */
pare_status pare_loss_soft_label(const pare_tensor *teacher, const pare_tensor *student,
                                 float T, float weight, double *loss, pare_tensor *dstudent,
                                 pare_error *err);

/* teacher, student: (N, ...) of equal shape; each sample flattened.
 * loss = mean_n 1 - <t_n, s_n> / (max(|t_n|, 1e-8) max(|s_n|, 1e-8))
 * (torch.nn.functional.cosine_similarity's eps guard). */
pare_status pare_loss_cosine(const pare_tensor *teacher, const pare_tensor *student,
                             float weight, double *loss, pare_tensor *dstudent,
                             pare_error *err);

/* FSP (flow of solution procedure) matrices of two layers:
 * G(a, b)[n, i, j] = sum_hw a[n, i, hw] b[n, j, hw] / (H W) for a: (N, C1, H, W),
 * b: (N, C2, H, W) (rank >= 3; the dims after axis 1 are the spatial ones and
 * must be equal between a and b). loss = mean over N, i, j of
 * (G(t_a, t_b) - G(s_a, s_b))^2 (PaddleSlim fsp_loss). The student's C1, C2 and N
 * must equal the teacher's; its spatial size may differ from the teacher's.
 * ds_a, ds_b (either may be NULL) receive the gradients for s_a and s_b. */
pare_status pare_loss_fsp(const pare_tensor *t_a, const pare_tensor *t_b,
                          const pare_tensor *s_a, const pare_tensor *s_b, float weight,
                          double *loss, pare_tensor *ds_a, pare_tensor *ds_b,
                          pare_error *err);

#endif
