/* A job queue for the workbench: long core calls (sensitivity sweeps,
 * evaluation, calibration) run one at a time on a worker thread, so the UI
 * never blocks.
 *
 * A job is a function called on the worker with a pare_progress whose
 * callback posts events (stage, done/total, rate, loss/metric, detail) into a
 * mutex-protected queue and returns false once the job was cancelled (core
 * jobs then stop with PARE_ECANCELED). The UI thread polls the events
 * (jobs_poll) between keys; consecutive progress events of one job are merged
 * so a fast job cannot flood the queue.
 *
 * Ownership: `arg` stays the caller's. While a job is queued or running the
 * worker may use it; after its JOBS_EV_DONE event has been polled the worker
 * never touches it again, so the UI thread may read its results and free it.
 * Thread-safety: every function is called from one thread (the UI's); the
 * worker only calls the job functions. */
#ifndef PARE_TUI_JOBS_H
#define PARE_TUI_JOBS_H

#include <stdbool.h>
#include <stdint.h>

#include "pare/error.h"
#include "pare/progress.h"

typedef struct jobs jobs;

/* Runs on the worker; reports through progress; fills err on failure. */
typedef pare_status (*jobs_fn)(void *arg, const pare_progress *progress, pare_error *err);

enum { JOBS_EV_START, JOBS_EV_PROGRESS, JOBS_EV_DONE };

typedef struct jobs_event {
    int id;
    int kind;                 /* JOBS_EV_* */
    char stage[32];
    char unit[16];
    int64_t done, total;      /* total 0: unknown */
    double rate;              /* units per second of this stage; 0 unknown */
    double loss, metric;      /* NAN when not reported */
    char detail[128];
    double seconds;           /* since the job started */
    pare_status status;       /* DONE: the job's result (PARE_ECANCELED when cancelled) */
    pare_error err;           /* DONE with an error */
} jobs_event;

/* NULL on out of memory. The worker thread starts with the first job. */
jobs *jobs_new(void);
/* Cancels every job, waits for the worker and frees the queue. NULL is fine. */
void jobs_free(jobs *q);

/* Queues fn(arg). Returns the job's id (> 0), or -1 when out of memory or
 * the thread cannot start. */
int jobs_submit(jobs *q, jobs_fn fn, void *arg);
/* Asks job id to stop: a queued job ends without running, a running one at
 * its next progress report. Its DONE event follows either way. */
void jobs_cancel(jobs *q, int id);
/* Moves up to max pending events into ev; returns how many. */
int jobs_poll(jobs *q, jobs_event *ev, int max);
/* Is any job queued or running? */
bool jobs_busy(jobs *q);

#endif
