/* Learning-rate schedules: the lr (and, for OneCycle, Adam's beta1) of a
 * given optimizer step, as a pure function of the step number.
 *
 * A pare_schedule is plain data (no pointers, copyable). Step s counts
 * optimizer steps from 0. Formulas, with base = lr:
 *   CONSTANT   lr
 *   PIECEWISE  values[i] for the first i with s < boundaries[i], else
 *              values[n_boundaries] (PaddleSlim PiecewiseDecay; n_boundaries + 1
 *              values)
 *   COSINE     end_lr + (lr - end_lr) (1 + cos(pi s / total_steps)) / 2
 *              (CosineAnnealingDecay / torch CosineAnnealingLR closed form with
 *              T_max = total_steps, eta_min = end_lr; past T_max it keeps the
 *              cosine's period, as both do)
 *   LINEAR     lr + (end_lr - lr) min(s, total_steps) / total_steps
 *   ONECYCLE   torch.optim.lr_scheduler.OneCycleLR with max_lr = lr,
 *              three_phase false, anneal_strategy 'cos':
 *                initial = lr / div_factor, min = initial / final_div_factor,
 *                e1 = pct_start total_steps - 1, e2 = total_steps - 1;
 *                s <= e1: cos_anneal(initial, lr, s / e1)
 *                else:    cos_anneal(lr, min, (s - e1) / (e2 - e1))
 *                cos_anneal(a, b, x) = b + (a - b) (1 + cos(pi x)) / 2;
 *              beta1 (cycle_momentum) anneals max_momentum -> base_momentum in
 *              the first phase and back in the second. Steps past e2 hold the
 *              final values (torch raises there).
 * Warm-up (PaddleSlim LinearWarmup) wraps any kind: for s < warmup_steps,
 *   lr = warmup_start_lr + (inner(0) - warmup_start_lr) s / warmup_steps,
 *   then inner(s - warmup_steps); beta1 during warm-up is inner beta1(0).
 * Thread-safety: pure functions. */
#ifndef PARE_SCHEDULE_H
#define PARE_SCHEDULE_H

#include <stdbool.h>
#include <stdint.h>

#include "pare/error.h"

typedef enum pare_schedule_kind {
    PARE_SCHED_CONSTANT,
    PARE_SCHED_PIECEWISE,
    PARE_SCHED_COSINE,
    PARE_SCHED_LINEAR,
    PARE_SCHED_ONECYCLE
} pare_schedule_kind;

#define PARE_SCHED_KIND_COUNT 5
#define PARE_SCHED_MAX_PIECES 32   /* boundaries of a piecewise schedule */

typedef struct pare_schedule {
    pare_schedule_kind kind;
    double lr;                 /* constant lr; cosine/linear start; onecycle max_lr */
    int64_t total_steps;       /* cosine T_max; linear and onecycle length */
    double end_lr;             /* cosine eta_min; linear end */
    /* piecewise */
    int n_boundaries;
    int64_t boundaries[PARE_SCHED_MAX_PIECES];
    double values[PARE_SCHED_MAX_PIECES + 1];
    /* onecycle */
    double pct_start;          /* 0.3 */
    double div_factor;         /* 25 */
    double final_div_factor;   /* 1e4 */
    bool cycle_momentum;       /* true */
    double max_momentum;       /* 0.95 */
    double base_momentum;      /* 0.85 */
    /* warm-up, any kind; 0 steps = none */
    int64_t warmup_steps;
    double warmup_start_lr;
} pare_schedule;

/* Defaults for kind with learning rate lr: end_lr 0, no warm-up, OneCycle's
 * torch defaults (pct_start 0.3, div 25, final div 1e4, cycle_momentum with
 * 0.95 / 0.85); total_steps 0 (the caller sets it for cosine, linear,
 * onecycle; pare_schedule_check insists). */
void pare_schedule_init(pare_schedule *s, pare_schedule_kind kind, double lr);

/* "constant", "piecewise", "cosine", "linear", "onecycle". */
const char *pare_schedule_kind_name(pare_schedule_kind kind);

/* Name to kind, case-insensitive: constant, piecewise / PiecewiseDecay,
 * cosine / CosineAnnealingDecay, linear, onecycle / OneCycle / OneCycleLR.
 * Unknown: PARE_EINPUT "unknown learning-rate schedule 'x'" + did-you-mean. */
pare_status pare_schedule_kind_parse(const char *name, pare_schedule_kind *kind,
                                     pare_error *err);

/* Checks a filled schedule: total_steps > 0 where used, piecewise
 * boundaries strictly increasing and non-negative with 1..PARE_SCHED_MAX_PIECES
 * of them, finite non-negative rates, 0 < pct_start < 1, div factors > 0,
 * momenta in [0, 1), warm-up steps >= 0. PARE_EINPUT names the field. */
pare_status pare_schedule_check(const pare_schedule *s, pare_error *err);

/* Learning rate at step (>= 0; negative steps count as 0). Meaningful for a
 * schedule that passed pare_schedule_check. */
double pare_schedule_lr(const pare_schedule *s, int64_t step);

/* Adam's beta1 (SGD's momentum) at step for a OneCycle schedule with
 * cycle_momentum; NAN when the schedule does not cycle momentum. Pass it to
 * pare_optim_step's beta1_override as is. */
double pare_schedule_beta1(const pare_schedule *s, int64_t step);

#endif
