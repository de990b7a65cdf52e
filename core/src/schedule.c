/* Learning-rate schedules (formulas in pare/schedule.h). */
#include <math.h>
#include <string.h>
#include <strings.h>

#include "pare/schedule.h"

static const char *const kind_names[PARE_SCHED_KIND_COUNT] = {
    "constant", "piecewise", "cosine", "linear", "onecycle",
};

/* Our names plus PaddleSlim's and torch's class names. */
static const struct {
    const char *name;
    pare_schedule_kind kind;
} spellings[] = {
    { "constant", PARE_SCHED_CONSTANT },
    { "piecewise", PARE_SCHED_PIECEWISE },
    { "PiecewiseDecay", PARE_SCHED_PIECEWISE },
    { "cosine", PARE_SCHED_COSINE },
    { "CosineAnnealingDecay", PARE_SCHED_COSINE },
    { "linear", PARE_SCHED_LINEAR },
    { "onecycle", PARE_SCHED_ONECYCLE },
    { "OneCycle", PARE_SCHED_ONECYCLE },
    { "OneCycleLR", PARE_SCHED_ONECYCLE },
};
#define N_SPELLINGS ((int)(sizeof spellings / sizeof spellings[0]))

const char *pare_schedule_kind_name(pare_schedule_kind kind)
{
    if ((int)kind < 0 || (int)kind >= PARE_SCHED_KIND_COUNT)
        return "?";
    return kind_names[kind];
}

pare_status pare_schedule_kind_parse(const char *name, pare_schedule_kind *kind,
                                     pare_error *err)
{
    const char *cands[N_SPELLINGS];
    const char *guess;

    for (int i = 0; i < N_SPELLINGS; i++) {
        cands[i] = spellings[i].name;
        if (name && strcasecmp(name, spellings[i].name) == 0) {
            *kind = spellings[i].kind;
            return PARE_OK;
        }
    }
    pare_fail(err, PARE_EINPUT, NULL, "unknown learning-rate schedule '%s'", name ? name : "");
    guess = name ? pare_closest_word(name, cands, N_SPELLINGS) : NULL;
    if (guess)
        pare_error_hint(err, "did you mean '%s'?", guess);
    else
        pare_error_hint(err, "the schedules are constant, piecewise, cosine, linear, onecycle");
    return PARE_EINPUT;
}

void pare_schedule_init(pare_schedule *s, pare_schedule_kind kind, double lr)
{
    memset(s, 0, sizeof *s);
    s->kind = kind;
    s->lr = lr;
    s->pct_start = 0.3;
    s->div_factor = 25.0;
    s->final_div_factor = 1e4;
    s->cycle_momentum = true;
    s->max_momentum = 0.95;
    s->base_momentum = 0.85;
}

static bool rate_ok(double v)
{
    return isfinite(v) && v >= 0;
}

pare_status pare_schedule_check(const pare_schedule *s, pare_error *err)
{
    const char *k = pare_schedule_kind_name(s->kind);

    if ((int)s->kind < 0 || (int)s->kind >= PARE_SCHED_KIND_COUNT)
        return pare_fail(err, PARE_EINPUT, NULL, "unknown learning-rate schedule kind %d",
                         (int)s->kind);
    if (s->kind != PARE_SCHED_PIECEWISE && !rate_ok(s->lr))
        return pare_fail(err, PARE_EINPUT, NULL, "%s schedule: learning_rate %g must be >= 0", k,
                         s->lr);
    if ((s->kind == PARE_SCHED_COSINE || s->kind == PARE_SCHED_LINEAR ||
         s->kind == PARE_SCHED_ONECYCLE) && s->total_steps <= 0) {
        pare_fail(err, PARE_EINPUT, NULL, "%s schedule: total_steps %lld must be positive", k,
                  (long long)s->total_steps);
        pare_error_hint(err, "set it to the number of training iterations");
        return PARE_EINPUT;
    }
    if ((s->kind == PARE_SCHED_COSINE || s->kind == PARE_SCHED_LINEAR) && !rate_ok(s->end_lr))
        return pare_fail(err, PARE_EINPUT, NULL, "%s schedule: end learning rate %g must be >= 0",
                         k, s->end_lr);
    if (s->kind == PARE_SCHED_PIECEWISE) {
        if (s->n_boundaries < 1 || s->n_boundaries > PARE_SCHED_MAX_PIECES) {
            pare_fail(err, PARE_EINPUT, NULL,
                      "piecewise schedule: %d boundaries, expected 1 to %d", s->n_boundaries,
                      PARE_SCHED_MAX_PIECES);
            pare_error_hint(err, "give n boundaries and n + 1 values");
            return PARE_EINPUT;
        }
        for (int i = 0; i < s->n_boundaries; i++)
            if (s->boundaries[i] < 0 || (i > 0 && s->boundaries[i] <= s->boundaries[i - 1]))
                return pare_fail(err, PARE_EINPUT, NULL,
                                 "piecewise schedule: boundaries must increase from 0, "
                                 "boundary %d is %lld", i, (long long)s->boundaries[i]);
        for (int i = 0; i <= s->n_boundaries; i++)
            if (!rate_ok(s->values[i]))
                return pare_fail(err, PARE_EINPUT, NULL,
                                 "piecewise schedule: value %d (%g) must be >= 0", i, s->values[i]);
    }
    if (s->kind == PARE_SCHED_ONECYCLE) {
        if (!(s->pct_start > 0 && s->pct_start < 1))
            return pare_fail(err, PARE_EINPUT, NULL,
                             "onecycle schedule: pct_start %g must be in (0, 1)", s->pct_start);
        if (!(s->div_factor > 0) || !(s->final_div_factor > 0))
            return pare_fail(err, PARE_EINPUT, NULL,
                             "onecycle schedule: div_factor %g and final_div_factor %g must be > 0",
                             s->div_factor, s->final_div_factor);
        /* torch needs both phases to have a length: e1 > 0 and e2 > e1 */
        if (!(s->pct_start * (double)s->total_steps - 1 > 0) ||
            !((double)s->total_steps - 1 > s->pct_start * (double)s->total_steps - 1))
            return pare_fail(err, PARE_EINPUT, NULL,
                             "onecycle schedule: %lld total steps with pct_start %g leave an "
                             "empty phase", (long long)s->total_steps, s->pct_start);
        if (s->cycle_momentum && !(s->max_momentum >= 0 && s->max_momentum < 1 &&
                                   s->base_momentum >= 0 && s->base_momentum < 1))
            return pare_fail(err, PARE_EINPUT, NULL,
                             "onecycle schedule: momenta %g and %g must be in [0, 1)",
                             s->max_momentum, s->base_momentum);
    }
    if (s->warmup_steps < 0 || !rate_ok(s->warmup_start_lr))
        return pare_fail(err, PARE_EINPUT, NULL,
                         "warm-up: %lld steps from %g: both must be >= 0",
                         (long long)s->warmup_steps, s->warmup_start_lr);
    return PARE_OK;
}

static double cos_anneal(double start, double end, double pct)
{
    return end + (start - end) / 2.0 * (cos(M_PI * pct) + 1.0);
}

/* OneCycle phase ends, as torch computes them (float(pct * total) - 1). */
static void onecycle_ends(const pare_schedule *s, double *e1, double *e2)
{
    *e1 = s->pct_start * (double)s->total_steps - 1.0;
    *e2 = (double)s->total_steps - 1.0;
}

/* Value of a OneCycle quantity going a -> b in phase 1 and b -> c in phase 2. */
static double onecycle_value(const pare_schedule *s, int64_t step, double a, double b, double c)
{
    double e1, e2, x;

    onecycle_ends(s, &e1, &e2);
    x = (double)step;
    if (x > e2)
        x = e2;
    if (x <= e1)
        return cos_anneal(a, b, e1 > 0 ? x / e1 : 1.0);
    return cos_anneal(b, c, e2 > e1 ? (x - e1) / (e2 - e1) : 1.0);
}

static double inner_lr(const pare_schedule *s, int64_t step)
{
    switch (s->kind) {
    case PARE_SCHED_CONSTANT:
        return s->lr;
    case PARE_SCHED_PIECEWISE: {
        int n = s->n_boundaries < 0 ? 0
                : s->n_boundaries > PARE_SCHED_MAX_PIECES ? PARE_SCHED_MAX_PIECES
                                                          : s->n_boundaries;
        for (int i = 0; i < n; i++)
            if (step < s->boundaries[i])
                return s->values[i];
        return s->values[n];
    }
    case PARE_SCHED_COSINE:
        if (s->total_steps <= 0)
            return s->lr;
        return s->end_lr +
               (s->lr - s->end_lr) * (1.0 + cos(M_PI * (double)step / (double)s->total_steps)) / 2.0;
    case PARE_SCHED_LINEAR: {
        double f;
        if (s->total_steps <= 0)
            return s->end_lr;
        f = step >= s->total_steps ? 1.0 : (double)step / (double)s->total_steps;
        return s->lr + (s->end_lr - s->lr) * f;
    }
    case PARE_SCHED_ONECYCLE: {
        double initial = s->lr / s->div_factor, min_lr = initial / s->final_div_factor;
        return onecycle_value(s, step, initial, s->lr, min_lr);
    }
    }
    return s->lr;
}

double pare_schedule_lr(const pare_schedule *s, int64_t step)
{
    if (step < 0)
        step = 0;
    if (step < s->warmup_steps) {
        double end = inner_lr(s, 0);
        return s->warmup_start_lr +
               (end - s->warmup_start_lr) * (double)step / (double)s->warmup_steps;
    }
    return inner_lr(s, step - (s->warmup_steps > 0 ? s->warmup_steps : 0));
}

double pare_schedule_beta1(const pare_schedule *s, int64_t step)
{
    if (s->kind != PARE_SCHED_ONECYCLE || !s->cycle_momentum)
        return NAN;
    if (step < 0)
        step = 0;
    step = step < s->warmup_steps ? 0 : step - (s->warmup_steps > 0 ? s->warmup_steps : 0);
    return onecycle_value(s, step, s->max_momentum, s->base_momentum, s->max_momentum);
}
