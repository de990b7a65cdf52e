/* Optimizers: SGD (momentum, Nesterov), Adam and AdamW with PyTorch's update
 * rules, optional global gradient-norm clipping, and state access for
 * checkpoints.
 *
 * Update rules, per parameter p with gradient g at step t (t counts from 1):
 *   all:   clip first (torch.nn.utils.clip_grad_norm_): total = sqrt(sum of
 *          all g^2 over all parameters); when grad_clip_norm > 0, every g is
 *          multiplied by min(1, grad_clip_norm / (total + 1e-6)).
 *   SGD:   g += wd p; if momentum: buf = g at t = 1, else buf = momentum buf + g;
 *          g = nesterov ? g + momentum buf : buf;  p -= lr g   (dampening 0)
 *   Adam:  g += wd p; m = m + (1 - b1)(g - m); v = b2 v + (1 - b2) g^2;
 *          p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
 *   AdamW: p *= 1 - lr wd; then Adam without the "g += wd p".
 * (torch.optim.SGD / Adam / AdamW, amsgrad off, maximize off.) b1 may change
 * from step to step (OneCycle's cycle_momentum); the bias correction uses the
 * b1 of the current step, as torch does when a scheduler edits betas. For SGD
 * with momentum > 0 the same per-step override replaces the momentum (torch's
 * OneCycleLR cycles SGD's momentum the same way); plain SGD ignores it.
 *
 * Element-wise work is split over OpenMP threads for large tensors; every
 * element's arithmetic is the same whatever the thread count, and the clip
 * norm is summed in fixed blocks in a fixed order, so results do not depend
 * on the number of threads. Thread-safety: one optimizer per thread.
 * Errors: PARE_EINPUT (bad options, parameter/gradient shapes that differ
 * from those given at creation, a state tensor of the wrong shape),
 * PARE_EUNSUPPORTED (non-float32 parameters), PARE_ENOMEM. err->where is
 * left empty except for parameter indices ("param 3"). */
#ifndef PARE_OPTIM_H
#define PARE_OPTIM_H

#include <stdbool.h>
#include <stdint.h>

#include "pare/error.h"
#include "pare/tensor.h"

typedef enum pare_optim_kind {
    PARE_OPTIM_SGD,
    PARE_OPTIM_ADAM,
    PARE_OPTIM_ADAMW
} pare_optim_kind;

typedef struct pare_optim_opts {
    pare_optim_kind kind;
    double lr;             /* base learning rate for callers that build a schedule from
                              it; pare_optim_step takes the lr of each step explicitly */
    double momentum;       /* SGD only; 0 = plain SGD */
    bool nesterov;         /* SGD only; needs momentum > 0 */
    double beta1, beta2;   /* Adam/AdamW: 0.9, 0.999 */
    double eps;            /* Adam/AdamW: 1e-8 */
    double weight_decay;   /* SGD/Adam: L2 added to the gradient; AdamW: decoupled */
    double grad_clip_norm; /* global L2 norm limit; 0 = no clipping */
} pare_optim_opts;

/* PyTorch defaults for kind: lr 1e-3, momentum 0, nesterov off, betas
 * (0.9, 0.999), eps 1e-8, weight_decay 0 (AdamW: 0.01), no clipping. */
void pare_optim_opts_init(pare_optim_opts *o, pare_optim_kind kind);

/* "sgd", "adam", "adamw" (also "SGD", "Adam", "AdamW": case-insensitive). */
const char *pare_optim_kind_name(pare_optim_kind kind);

/* Fills *o with the defaults of the optimizer called name: "sgd", "momentum"
 * (SGD with momentum 0.9, PaddleSlim's Momentum), "adam", "adamw";
 * case-insensitive. Unknown names: PARE_EINPUT "unknown optimizer 'x'" with a
 * did-you-mean hint. *o is untouched on failure. */
pare_status pare_optim_opts_parse(const char *name, pare_optim_opts *o, pare_error *err);

typedef struct pare_optim pare_optim;

/* An optimizer for n_params float32 tensors; state buffers (zeroed) are sized
 * from their shapes and the step counter starts at 0. params are only read
 * for shapes; the optimizer keeps no pointer to them. The caller owns *out
 * (pare_optim_free). Errors: PARE_EINPUT for invalid options (negative lr
 * factors, betas outside [0, 1), nesterov without momentum),
 * PARE_EUNSUPPORTED, PARE_ENOMEM. */
pare_status pare_optim_new(const pare_optim_opts *opts, int n_params,
                           const pare_tensor *const *params, pare_optim **out,
                           pare_error *err);
void pare_optim_free(pare_optim *o);

const pare_optim_opts *pare_optim_get_opts(const pare_optim *o);

/* One update of every parameter from its gradient (see the rules above),
 * with learning rate lr; beta1_override replaces opts.beta1 (SGD with
 * momentum: opts.momentum) for this step unless it is NAN; outside [0, 1)
 * it is PARE_EINPUT. *grad_norm (may be NULL) receives the global gradient
 * norm before clipping. grads may be scaled in place by clipping. The step
 * counter increments on success. Non-finite gradients are not an error
 * (they propagate; the caller checks). On error nothing is updated. */
pare_status pare_optim_step(pare_optim *o, pare_tensor *const *params,
                            pare_tensor *const *grads, double lr, double beta1_override,
                            double *grad_norm, pare_error *err);

/* ---- state for checkpoints ---------------------------------------------------
 * State entries, in a fixed order: "step" (int64, shape [1], the step
 * counter), then per parameter i: SGD with momentum "momentum_buffer.<i>";
 * Adam/AdamW "exp_avg.<i>" and "exp_avg_sq.<i>" (float32, the parameter's
 * shape). Saving every entry and setting them back into a new optimizer
 * built with the same options and parameters resumes bit-exactly. */
int pare_optim_state_count(const pare_optim *o);
/* Borrows entry i's name and tensor (valid until the optimizer is freed);
 * PARE_EINPUT when i is out of range. */
pare_status pare_optim_state_get(const pare_optim *o, int i, const char **name,
                                 const pare_tensor **tensor, pare_error *err);
/* Index of the entry called name, or -1. */
int pare_optim_state_find(const pare_optim *o, const char *name);
/* Copies t into entry i. t must have the entry's element count ("step": one
 * element of any integer or float dtype; buffers: float32 with the same
 * shape). Errors: PARE_EINPUT naming the entry and both shapes. */
pare_status pare_optim_state_set(pare_optim *o, int i, const pare_tensor *t, pare_error *err);

int64_t pare_optim_get_step(const pare_optim *o);
void pare_optim_set_step(pare_optim *o, int64_t step);

#endif
