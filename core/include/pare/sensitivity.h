/* Pruning sensitivity: prune one channel group at a time at several ratios,
 * measure the metric drop, then choose per-group ratios for a FLOPs target.
 *
 * Sweep (core/src/sensitivity.c). The unpruned model runs once per batch
 * with the values entering every group's first changed node tapped (the
 * frontier). For a (group, ratio) point pare prunes a copy of the model,
 * cuts out the nodes downstream of the group (graph inputs = the frontier)
 * and runs only that part on the stored activations; opts.naive re-runs the
 * whole pruned model instead (same numbers, for comparison). The metric is
 * top-1 accuracy with labels, or the mean cosine similarity of the outputs to
 * the unpruned model's without them; drop = baseline - metric (absolute,
 * in the metric's units; PaddleSlim divides by the baseline).
 *
 * Cache: a text file, one point per line:
 *   v1 <TAB> model-hash <TAB> group <TAB> ratio <TAB> criterion <TAB> data <TAB>
 *   metric <TAB> value <TAB> params-removed <TAB> flops-removed
 * where data is "<spec>:<count>" of the samples used and the baseline is a
 * line with group "<baseline>" and ratio 0. A point is appended (and flushed)
 * as soon as it is measured, so an interrupted sweep resumes where it
 * stopped, and points of another model, criterion, data subset or metric are
 * never mistaken for these. Two cache files merge by concatenation with
 * duplicates dropped (pare_sens_cache_merge).
 *
 * Ownership: results are plain data the caller frees with
 * pare_sens_result_free; the sweep borrows g, gs and ds for its duration.
 * Thread-safety: one sweep per dataset at a time (it fills batches). */
#ifndef PARE_SENSITIVITY_H
#define PARE_SENSITIVITY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pare/data.h"
#include "pare/error.h"
#include "pare/graph.h"
#include "pare/progress.h"
#include "pare/prune.h"

typedef enum pare_sens_metric {
    PARE_SENS_AUTO,       /* top-1 with labels, else cosine */
    PARE_SENS_TOP1,
    PARE_SENS_COSINE
} pare_sens_metric;

#define PARE_SENS_MAX_RATIOS 64

struct pare_sens_result;      /* below; named by pare_sens_opts.on_point */
struct pare_sens_point;

typedef struct pare_sens_opts {
    const double *ratios;     /* ascending, in (0, 1); NULL: 0.1, 0.2 ... 0.9 */
    int n_ratios;
    const char *criterion;    /* NULL: l1_norm */
    uint64_t seed;
    int round_to;             /* channel rounding when pruning (pare_prune_opts) */
    pare_sens_metric metric;
    int batch;                /* 0: 64 */
    int n_threads;            /* 0: the executor's default */
    bool naive;               /* re-run the whole pruned model per point */
    double drop_cap;          /* > 0: a group's sweep stops after a point whose drop exceeds it */
    int proxy_batches;        /* > 0: first rank groups by output MSE at the largest ratio on
                                 this many batches; the sweep then goes least sensitive first */
    const char *cache_path;   /* NULL: no cache */
    const bool *only;         /* per group: sweep it (NULL: every prunable group) */
    size_t max_tap_bytes;     /* stored activations; past it taps are taken group by group.
                                 0: 1 GiB */
    /* Recovery-aware sweep (recover_steps > 0): each point is measured after
       recover_steps optimizer steps of fine-tuning the pruned model on
       recover_data (self-distillation from the unpruned model: soft_label on
       the first output at T = 4, plus cross-entropy when the data has labels;
       AdamW at recover_lr (0: 1e-3), cosine to 0; the same batches for every
       point), so the table ranks what recovers rather than what breaks at
       once. Points then re-run the whole model (as naive). The cache key
       carries steps and lr. recover_data is borrowed and advanced. */
    int recover_steps;
    pare_dataset *recover_data;
    double recover_lr;
    const pare_progress *progress;
    /* Called on the sweep's thread with each point as soon as it is measured
     * or read from the cache (before that point's progress report). so_far is
     * the result being built, read-only and valid only during the call: its
     * baseline, metric, n_samples, params, flops, order and the points so far
     * (pt is the last of them). NULL: not called. It must not call back into
     * the sweep; a caller that hands the point to another thread copies it
     * under its own lock. */
    void (*on_point)(void *user, const struct pare_sens_result *so_far,
                     const struct pare_sens_point *pt);
    void *on_point_user;
} pare_sens_opts;

typedef struct pare_sens_point {
    int group;
    double ratio;
    double metric;
    double drop;
    int64_t params_removed;
    double flops_removed;     /* per sample */
    bool cached;              /* read from the cache, not measured now */
} pare_sens_point;

typedef struct pare_sens_result {
    int n_groups;             /* as the groups the sweep was given */
    char **group_names;       /* copies */
    pare_sens_metric metric;  /* TOP1 or COSINE */
    double baseline;
    int64_t n_samples;
    int64_t params;           /* of the unpruned model */
    double flops;
    int n_points;             /* in sweep order */
    pare_sens_point *points;
    double *proxy;            /* per group: output MSE at the proxy ratio; NAN when not ranked */
    int *order;               /* groups in sweep order (n_order entries) */
    int n_order;
    int64_t computed, from_cache;
    double seconds;           /* wall time of the whole sweep */
    double run_seconds;       /* of which model runs (taps and points) */
    uint64_t model_hash;
} pare_sens_result;

/* Sweeps the groups of gs (found on g) over opts' ratios on every sample of
 * ds (its batch size is ignored; opts.batch is used). Errors: PARE_EINPUT
 * for ratios outside (0, 1) or not ascending, TOP1 without labels, `only`
 * selecting an unprunable group (named, with the reason as hint); executor
 * and prune errors; PARE_EIO for the cache; PARE_ECANCELED when progress
 * asks to stop (points measured so far are in the cache). The caller owns
 * *out on success. */
pare_status pare_sens_run(const pare_graph *g, const pare_prune_groups *gs, const pare_dataset *ds,
                          const pare_sens_opts *opts, pare_sens_result **out, pare_error *err);
void pare_sens_result_free(pare_sens_result *r);

/* Fine-tunes *pruned (a pruned copy of g) exactly as a recovery-aware sweep
 * does for each point (opts' recover_steps, recover_data, recover_lr, seed,
 * n_threads; g is the teacher) and replaces it with the result. No-op when
 * recover_steps is 0. Errors: PARE_EINPUT without recover_data; pare_train's. */
pare_status pare_sens_recover(const pare_graph *g, pare_graph **pruned, const pare_sens_opts *opts,
                              pare_error *err);

/* The points of group gi, in ascending ratio, into pts (room for
 * PARE_SENS_MAX_RATIOS); returns the count. */
int pare_sens_group_points(const pare_sens_result *r, int gi, pare_sens_point *pts);

/* Writes sensitivity.csv (group,layers,ratio,metric,drop,params_removed,
 * flops_removed; layers = the producers' names joined by '|') or a JSON
 * document with the baseline, the proxy ranking and the points. Temp name,
 * then rename. Errors: PARE_EIO. */
pare_status pare_sens_save_csv(const pare_sens_result *r, const pare_prune_groups *gs,
                               const pare_graph *g, const char *path, pare_error *err);
pare_status pare_sens_save_json(const pare_sens_result *r, const pare_prune_groups *gs,
                                const pare_graph *g, const char *path, pare_error *err);

/* Merges cache files into output (which may be one of the inputs): every
 * valid line once, first occurrence wins. Errors: PARE_EIO. */
pare_status pare_sens_cache_merge(const char *const *inputs, int n, const char *output,
                                  pare_error *err);

/* ---- ratio selection (core/src/prune_select.c) ----------------------------- */

typedef enum pare_select_method {
    PARE_SELECT_PADDLESLIM,   /* one loss threshold for all groups, bisected */
    PARE_SELECT_BUDGET        /* monotone curves, greedy least loss per FLOP */
} pare_select_method;

typedef struct pare_select_opts {
    pare_select_method method;
    double target;            /* fraction of FLOPs (or params) to remove, (0, 1) */
    bool params;              /* target params instead of FLOPs */
    double step;              /* budget: ratio grid step (0: 0.05) */
    pare_prune_opts prune;    /* how the ratios are applied when measuring */
    int eval_batches;         /* measured greedy: batches of opts.batch it evaluates on (0: all) */
} pare_select_opts;

typedef struct pare_select_result {
    double *ratios;           /* per group (n_groups), owned */
    int n_groups;
    double predicted_loss;    /* sum of the groups' predicted drops */
    double threshold;         /* PaddleSlim: the shared loss threshold; NAN for budget */
    double flops_before, flops_after;
    int64_t params_before, params_after;
    bool met;                 /* the target was reached */
} pare_select_result;

/* Chooses per-group ratios from the sweep so the pruned model removes at
 * least opts.target of its FLOPs (params), measuring each candidate by
 * pruning g. Groups without points keep ratio 0. Errors: PARE_EINPUT for a
 * target outside (0, 1) or a result of another group list; prune errors.
 * A target no tested ratio reaches is not an error: met = false with the
 * largest reduction found. Free with pare_select_result_fini. */
pare_status pare_prune_select(const pare_graph *g, const pare_prune_groups *gs,
                              const pare_sens_result *r, const pare_select_opts *opts,
                              pare_select_result *out, pare_error *err);
void pare_select_result_fini(pare_select_result *s);

/* Measured greedy (NetAdapt-like; core/src/sensitivity.c): starting from
 * the unpruned model, repeatedly tries one more step of every group (step
 * = opts->step of its channels, at least one channel) on top of the ratios
 * chosen so far, measures the metric of each candidate on the first
 * opts->eval_batches batches of ds, and keeps the candidate that loses the
 * least metric per FLOP (param) removed, until the target is met. Slower
 * than pare_prune_select (groups x steps evaluations) but it sees how
 * groups interact, which sums of one-group drops do not. predicted_loss is
 * the drop measured on those batches. sens gives batch, threads, metric,
 * the groups (only) and progress; its ratios and cache are not used.
 * Errors: as pare_prune_select and pare_sens_run (PARE_ECANCELED). */
pare_status pare_sens_select_measured(const pare_graph *g, const pare_prune_groups *gs,
                                      const pare_dataset *ds, const pare_sens_opts *sens,
                                      const pare_select_opts *opts, pare_select_result *out,
                                      pare_error *err);

/* Ratio a curve allows for a loss threshold. PaddleSlim's rule
 * (monotone = false): scan from the largest ratio down, take the first
 * point with drop <= threshold, interpolating towards the next larger
 * point. With monotone = true the drops are first replaced by their
 * running maximum, so no ratio past a point that violates the threshold is
 * ever chosen. 0 when no point qualifies. */
double pare_sens_ratio_for_loss(const pare_sens_point *pts, int n, double threshold, bool monotone);

/* Predicted drop at ratio x on the monotone curve (linear between points,
 * 0 at ratio 0; past the last point: +INFINITY). */
double pare_sens_predict(const pare_sens_point *pts, int n, double x);

#endif
