/* The trainer: fine-tunes, re-trains or distils an ONNX model in place of its
 * original training code (PaddleSlim ACT's way).
 *
 * pare_train works on a copy of the student graph: it builds a training plan
 * (pare_exec with opts.training), runs batches from a dataset, adds the task
 * loss (cross-entropy on the first output, when the data has labels) and the
 * distillation losses of the pairs, back-propagates, and updates the
 * parameters with an optimizer and a learning-rate schedule. The result is
 * the same graph with new weights and BatchNormalization running statistics.
 *
 * Parameters are the float initializers with more than one element that feed
 * a weight slot (Conv/Gemm/MatMul weights and biases, normalisation scales and
 * shifts, embeddings, QDQ inputs 0), minus those matching a freeze pattern.
 * Running statistics, Q/DQ scales and zero points, shapes and scalars stay
 * fixed, unless opts.extra names them: any float32 initializer (a scalar
 * included, e.g. a Clip bound) can be trained with the same optimizer and
 * schedule, its rate scaled by its own multiplier and with its own weight
 * decay (QAT trains PACT clip values this way).
 *
 * Distillation: a teacher graph (or, with pairs but no teacher, a copy of the
 * student as loaded: self-distillation) runs in inference mode on the same
 * batch; each pair compares a teacher value with a student value:
 *   total = task_weight x task_loss + sum_i alpha_i x loss_i(teacher_i, student_i)
 * A pair whose shapes differ is an error unless opts.adapter is set: then a
 * learnable 1x1 projection (a channel matrix, initialised like a PyTorch 1x1
 * conv) maps the student value to the teacher's channel count on the student
 * side. Adapters exist only for the loss; they are not in the output model.
 *
 * Evaluation runs the training plan in inference mode over the eval dataset:
 * top-1 accuracy when it has labels, else the mean cosine similarity of the
 * student's first output to the teacher's (or to the original model's).
 *
 * Checkpoints (opts.checkpoint_dir): model.onnx (current weights, extras
 * included) and state.npz (step, best metric, optimizer state of the
 * parameters and of each extra, adapters, best weights),
 * written to temporary names and renamed, every checkpoint_every steps, at the
 * end, and when the run is cancelled. opts.resume_dir continues from one:
 * the same options give bit-identical weights to an uninterrupted run.
 *
 * Determinism: the batch order (dataset shuffle seed), re-initialisation,
 * Dropout and adapters derive from opts.seed; kernels are deterministic for a
 * thread count. Thread-safety: pare_train uses its own execs; the graphs it
 * is given are only read. */
#ifndef PARE_TRAIN_H
#define PARE_TRAIN_H

#include <stdbool.h>
#include <stdint.h>

#include "pare/data.h"
#include "pare/error.h"
#include "pare/exec.h"
#include "pare/graph.h"
#include "pare/loss.h"
#include "pare/optim.h"
#include "pare/progress.h"
#include "pare/schedule.h"

/* One distillation term. teacher/student are value names; for FSP,
 * teacher2/student2 name the second layer of each pair (the FSP matrix is
 * taken between teacher and teacher2, student and student2). */
typedef struct pare_distill_pair {
    const char *teacher;
    const char *student;
    const char *teacher2, *student2;   /* FSP only; NULL otherwise */
    pare_loss_kind loss;               /* SOFT_LABEL, L2, COSINE or FSP */
    double alpha;
} pare_distill_pair;

/* An initializer trained besides the parameters (opts.extra). */
typedef struct pare_train_extra {
    const char *name;              /* a float32 initializer of the student, any shape */
    /* Its rate is the schedule's rate x lr_mult (0 stands for 1; < 0 is an
       error). */
    double lr_mult;
    /* Replaces optim.weight_decay for this tensor, in the optimizer's own
       form (L2 for SGD/Adam, decoupled for AdamW); 0: none; NAN: the
       optimizer's. */
    double weight_decay;
} pare_train_extra;

/* What a hook learns about the step it is called in. */
typedef struct pare_train_step_info {
    int64_t step;                  /* 0-based optimizer step */
    double lr;                     /* the schedule's rate this step's update uses
                                      (extras: x their lr_mult) */
    double beta1;                  /* cycled beta1/momentum; NAN when not cycled */
    double loss;                   /* total loss; NAN in after_forward */
} pare_train_step_info;

/* Called on the training thread; returning false stops the run with
 * PARE_ECANCELED after a checkpoint (QAT uses these to update activation
 * ranges from the forward pass and to re-derive weight and PACT scales). */
typedef struct pare_train_hooks {
    /* After every training forward pass, before backward. g is the working
       graph: its initializers may be edited in place (same shape and dtype). */
    bool (*after_forward)(void *user, pare_exec *x, pare_graph *g,
                          const pare_train_step_info *info);
    /* After every optimizer update. The exec still holds this step's
       activations and gradients (pare_exec_grad), computed before the update;
       g holds the updated parameters and extras, which may be edited (e.g.
       clamped) in place. */
    bool (*after_step)(void *user, pare_exec *x, pare_graph *g,
                       const pare_train_step_info *info);
    void *user;
} pare_train_hooks;

typedef struct pare_train_opts {
    /* Data: batches come from train_data (its batch size, its shuffle flag;
       epoch e is begun with pare_dataset_begin_epoch(e)). eval_data may be
       NULL (no evaluation; the final weights are kept). Both are borrowed and
       advanced by the trainer. */
    pare_dataset *train_data;
    pare_dataset *eval_data;
    const char *input_name;        /* the model input fed with data; NULL: the only one */

    /* Length: iterations when > 0, else epochs x batches per epoch. */
    int64_t epochs;
    int64_t iterations;

    pare_optim_opts optim;
    /* total_steps 0 for cosine/linear/onecycle means the run's length. */
    pare_schedule schedule;
    float label_smoothing;
    /* Weight of the cross-entropy task loss; NAN: 1 when the training data has
       labels, 0 when it has none. > 0 without labels is an error. */
    double task_weight;

    /* Evaluation every eval_every steps (0: at the end of each epoch, and at
       the end); eval_limit samples (0: all). keep_best: the output model has
       the weights of the best evaluation (else the last step's). Only the
       trained parameters and BatchNorm running statistics are restored;
       initializers a hook edits (QAT scales) keep their last values, so hooks
       that edit the graph want keep_best false. */
    int64_t eval_every;
    int64_t eval_limit;
    bool keep_best;

    /* Parameters matching any of these are not trained: a glob (* ? [...])
       on the initializer name, or a plain substring when there is no
       wildcard. */
    const char *const *freeze;
    int n_freeze;
    /* Extra trained initializers (borrowed; names are read during the call):
       tensors the parameter rule leaves out (scalars, Clip bounds), or
       parameters that want their own rate or decay (a name listed here is
       trained as an extra whatever the freeze patterns say). Each has its
       own optimizer state, stepped with the parameters' and saved in
       checkpoints as optim.extra.<i>.*; gradient clipping covers the
       parameters and extras together. keep_sparsity does not apply to
       extras. */
    const pare_train_extra *extra;
    int n_extra;
    /* Fresh weights before training: PyTorch's default initialisation per
       layer kind (kaiming-uniform for Conv/Gemm/MatMul, ones/zeros for
       normalisation, running statistics reset), seeded by opts.seed. */
    bool reinit;
    /* Weights that are exactly zero at the start stay zero (masks re-applied
       after every update): fine-tuning after unstructured or N:M pruning. */
    bool keep_sparsity;
    uint64_t seed;
    int n_threads;                 /* 0: PARE_THREADS or all cores */

    /* Distillation (n_pairs 0 and teacher NULL: plain training). teacher
       NULL with pairs: self-distillation from the student as given. */
    const pare_graph *teacher;
    const pare_distill_pair *pairs;
    int n_pairs;
    float temperature;             /* soft_label's T (default 1) */
    bool adapter;                  /* learnable 1x1 projections for mismatched pairs */

    const char *checkpoint_dir;    /* NULL: no checkpoints */
    int64_t checkpoint_every;      /* steps; 0: only at the end and on cancel */
    const char *resume_dir;        /* NULL: start fresh */

    const pare_progress *progress; /* stages "train" (per step) and "eval" */
    pare_train_hooks hooks;
} pare_train_opts;

/* Defaults: 1 epoch, SGD-free Adam at lr 1e-3 (pare_optim_opts_init ADAM),
 * constant schedule, task_weight NAN, keep_best true, temperature 1. */
void pare_train_opts_init(pare_train_opts *o);

typedef struct pare_train_result {
    int64_t steps;                 /* optimizer steps done in total (incl. resumed ones) */
    int64_t start_step;            /* 0, or where a resumed run began */
    double first_loss, last_loss;  /* total loss of the first and last step of this run */
    double last_task_loss;         /* NAN without a task loss */
    const char *metric_name;       /* "top1", "cosine" or NULL without evaluation */
    double metric_first;           /* before the first step (NAN without eval) */
    double metric_best, metric_last;
    int64_t best_step;             /* step whose weights metric_best measured */
    double seconds;                /* training time (excl. evaluation) */
    double images_per_s;           /* training samples per second */
    int n_params;                  /* trained tensors (extras included) */
    int64_t n_param_values;        /* trained scalars (extras included) */
} pare_train_result;

/* Trains a copy of student; *out receives the trained graph (caller owns it;
 * the best or the last weights per opts.keep_best). res may be NULL.
 * Errors, with where = the value or option they concern:
 *   PARE_EINPUT: a pair naming a value that neither model has (did-you-mean),
 *     an extra that is no float32 initializer of the student (did-you-mean),
 *     listed twice or with lr_mult < 0 (where = its name),
 *     mismatched pair shapes without an adapter, a task loss without labels,
 *     data whose sample shape does not fit the model input, bad options, a
 *     resume directory from another model or other options;
 *   PARE_EUNSUPPORTED: an op without backward between a parameter and a loss;
 *   PARE_ENUMERIC: a non-finite loss, gradient or weight, naming the step and
 *     the first bad tensor (in execution order);
 *   PARE_ECANCELED: progress asked to stop (checkpoint written when
 *     checkpoint_dir is set);
 *   PARE_EIO for checkpoint files; PARE_ENOMEM. */
pare_status pare_train(const pare_graph *student, const pare_train_opts *opts,
                       pare_graph **out, pare_train_result *res, pare_error *err);

/* The parameters pare_train would train in g (before freezing): names in
 * graph order, borrowed from g, in a pare_alloc'ed array (*n entries). */
pare_status pare_train_param_names(const pare_graph *g, const char ***names, int *n,
                                   pare_error *err);

/* Re-initialises g's parameters and BatchNormalization statistics in place
 * as opts.reinit does. */
pare_status pare_train_reinit(pare_graph *g, uint64_t seed, pare_error *err);

#endif
