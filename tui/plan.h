/* Plan helpers shared by tui/plan.c and tui/jobs.c (the actions themselves
 * are declared in app.h). UI thread only. */
#ifndef PARE_TUI_PLAN_H
#define PARE_TUI_PLAN_H

#include "app.h"
#include "pare/job.h"

/* The plan as a job file's contents (Global.model absolute, save_dir next to
 * path: plan.yaml -> plan.out). The caller owns *out on success. Errors:
 * pare_job_set / pare_job_validate's. */
pare_status plan_to_job(const app_state *s, const char *path, pare_job **out, pare_error *err);
/* Rebuilds the Sensitivity table's row order after a sweep or a sort. */
void plan_sens_rows(app_state *s);
/* Frees a finished job's work (results included). */
void plan_job_work_free(app_job *j);

#endif
