/* Shared between compress.c, compress_quant.c, compress_report.c and qat.c:
 * the run context, text output helpers and the evaluation loop. */
#ifndef PARE_COMPRESS_INTERNAL_H
#define PARE_COMPRESS_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pare/compress.h"
#include "pare/data.h"
#include "pare/graph.h"
#include "pare/prune.h"
#include "pare/quant.h"

/* A growable NUL-terminated string (pare_alloc); ok turns false on OOM and
 * stays false. */
typedef struct sbuf {
    char *s;
    size_t len, cap;
    bool ok;
} sbuf;

void sbuf_printf(sbuf *b, const char *fmt, ...) PARE_PRINTF(2, 3);
/* A JSON string literal with escapes. */
void sbuf_json_str(sbuf *b, const char *s);
/* A JSON number; NAN -> null, +-inf -> "inf" / "-inf". */
void sbuf_json_num(sbuf *b, double v);

/* Writes text to a temporary name beside path, then renames. PARE_EIO. */
pare_status compress_write_text(const char *path, const char *text, pare_error *err);
/* Removes a directory tree (no symlinks followed); best effort. */
void compress_rm_tree(const char *dir);

struct qat_state;

typedef struct compress_ctx {
    const pare_job *job;
    const pare_compress_opts *opts;
    pare_compress_report *rep;
    char where[200];                 /* "job.yaml" */
    char model_path[PARE_COMPRESS_PATH_MAX];
    char teacher_path[PARE_COMPRESS_PATH_MAX];
    char save_dir[PARE_COMPRESS_PATH_MAX];
    char tmp_dir[PARE_COMPRESS_PATH_MAX + 64];
    char data_spec[2 * PARE_DATA_PATH_MAX + 32];
    char eval_spec[2 * PARE_DATA_PATH_MAX + 32];
    int threads;
    int batch;                       /* Global.batch_size */
    int input;                       /* runtime input position fed with data */
    pare_graph *orig;                /* as loaded */
    pare_graph *cur;                 /* the student so far (owned) */
    pare_graph *teacher;             /* Distillation.teacher_model, or NULL */
    pare_dataset *eval_ds;           /* NULL: no evaluation */
    pare_masks *masks[2];            /* UnstructurePrune, ASPPrune */
    int n_masks;
    bool has_gmp;
    pare_gmp_state gmp;
    struct qat_state *qat;
    pare_quant_calib *calib;         /* PTQ result kept for the table */
    struct pare_sens_result *sens;   /* Sensitivity sweep, or NULL */
    pare_prune_groups *sens_groups;
    pare_quant_opts qopts;
    pare_error hook_err;
    double t_start;                  /* compress_now() at the start */
    bool canceled;
} compress_ctx;

/* Progress of stage; false when the caller asked to stop (ctx->canceled). */
bool compress_event(compress_ctx *c, const char *stage, int64_t done, int64_t total,
                    const char *unit, double metric, const char *detail);
/* Appends a stage row to the report. */
void compress_stage(compress_ctx *c, const char *name, double seconds, const char *fmt, ...)
    PARE_PRINTF(4, 5);
pare_status compress_warn(compress_ctx *c, pare_error *err, const char *fmt, ...) PARE_PRINTF(3, 4);
/* "job.yaml:L:C" of a section (the file name alone without a position). */
const char *compress_where(const compress_ctx *c, const pare_job_meta *m, char *buf, size_t size);

/* A dataset on spec with the job's seed and Fashion-MNIST search directory. */
pare_status compress_open_data(compress_ctx *c, const char *spec, int batch, bool shuffle,
                               int64_t limit, pare_dataset **out, pare_error *err);

/* Metric of g on the eval data (Global.metric; cosine/snr against ctx->orig). */
pare_status compress_eval(compress_ctx *c, const pare_graph *g, double *metric, pare_error *err);

/* QuantPost, with HyperParameterOptimization trials when present: replaces
 * ctx->cur by the QDQ graph and keeps the calibration in ctx->calib. */
pare_status compress_ptq(compress_ctx *c, pare_error *err);

/* err->where = w (truncated to fit). */
void compress_set_where(pare_error *err, const char *w);
/* base/p unless p is absolute or base empty or "." (truncated to fit). */
void compress_resolve_path(const char *base, const char *p, char *out, size_t size);

/* ---- pruning stages (compress_prune.c); dry: check and plan only ---- */
bool compress_wants_structured(const pare_job *j);
const char *compress_crit_name(pare_job_criterion c);
/* Per-group ratios from ChannelPrune and Layers; errors name the job line. */
pare_status compress_prune_ratios(compress_ctx *c, const pare_graph *g,
                                  const pare_prune_groups *gs, double *ratios, int *n_pruned,
                                  pare_error *err);
pare_status compress_stage_structured(compress_ctx *c, bool dry, pare_error *err);
pare_status compress_stage_transformer(compress_ctx *c, bool dry, pare_error *err);
/* Computes the masks (or the GMP state) into ctx and applies them. */
pare_status compress_stage_masks(compress_ctx *c, bool dry, pare_error *err);
pare_status compress_stage_sensitivity(compress_ctx *c, bool dry, pare_error *err);
/* Masked fraction over all masks of ctx (GMP's included). */
double compress_sparsity(const compress_ctx *c);

/* seconds since an arbitrary start (monotonic) */
double compress_now(void);

#endif
