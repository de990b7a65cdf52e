/* Progress and cancellation for long core jobs (calibration, training,
 * sensitivity sweeps, pruning searches).
 *
 * A job calls pare_progress_report between units of work (a batch, a step, a
 * sweep point). The callback draws a bar (CLI), posts an event (TUI worker) or
 * does nothing; returning false asks the job to stop: it then returns
 * PARE_ECANCELED at the next safe point, having written nothing half-done.
 * Callbacks run on the job's thread; they must not call back into the job. */
#ifndef PARE_PROGRESS_H
#define PARE_PROGRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct pare_progress_event {
    const char *stage;      /* "calibrate", "train", "eval", "sensitivity"... */
    int64_t done, total;    /* units of this stage; total 0 = unknown */
    const char *unit;       /* "batch", "step", "point"; may be NULL */
    /* Live figures; NAN when not applicable. */
    double loss;
    double metric;          /* accuracy in [0,1] or similarity, per the job */
    const char *detail;     /* short free text ("group conv3 ratio 0.4"); may be NULL */
} pare_progress_event;

typedef struct pare_progress {
    /* Returns false to cancel. NULL callback: report nothing, never cancel. */
    bool (*report)(void *user, const pare_progress_event *ev);
    void *user;
} pare_progress;

/* Calls p->report when there is one; true = go on. p may be NULL. */
static inline bool pare_progress_report(const pare_progress *p, const pare_progress_event *ev)
{
    return !p || !p->report || p->report(p->user, ev);
}

#endif
