/* A one-line progress bar on stderr for long CLI jobs.
 *
 * Drawn only when stderr is a terminal (otherwise every call does nothing),
 * redrawn at most ten times a second: "eval  3200/10000 [=====>     ]
 * 5120/s  ETA 1.3s". progress_finish erases the line so results printed after
 * it start on a clean line. */
#ifndef PARE_TUI_PROGRESS_H
#define PARE_TUI_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>

typedef struct progress {
    bool enabled;
    const char *label;
    int64_t total;
    double t0, last_draw;
    int width;                 /* terminal columns */
} progress;

void progress_init(progress *p, const char *label, int64_t total);
/* done items so far; redraws when 0.1 s passed since the last draw. */
void progress_update(progress *p, int64_t done);
void progress_finish(progress *p);

#endif
