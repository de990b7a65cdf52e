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
    char note[64];             /* live figures drawn after the count ("loss 0.31 acc 91.2%") */
    double rate_scale;         /* items per unit counted: rate shown = done/s * scale (batch size) */
    const char *rate_unit;     /* "img/s"; NULL: "/s" */
} progress;

void progress_init(progress *p, const char *label, int64_t total);
/* done items so far; redraws when 0.1 s passed since the last draw. */
void progress_update(progress *p, int64_t done);
void progress_finish(progress *p);
/* Sets the live figures shown with the bar (copied; "" clears them). */
void progress_note(progress *p, const char *note);

#endif
