/* Pruning: channel dependency groups, criteria, physical shrink (structured),
 * and weight masks (unstructured, N:M, gradual GMP/AGP schedules).
 *
 * Structured pruning works on groups, not on single tensors. A group is one
 * channel space that several tensors index: a Conv's output channels, the
 * BatchNormalization parameters after it, the input channels of every Conv,
 * Gemm or MatMul that reads those channels (through element-wise ops,
 * pooling, Flatten...), and everything a residual Add ties to them. Removing
 * channel c of a group removes slice c from every member tensor, so the model
 * stays valid and gets physically smaller.
 *
 * How the walk treats ops (core/src/prune_groups.c):
 *   Conv, Gemm, MatMul with an initializer weight  produce a new channel space
 *     (out channels) and consume their input's (weight axis 1 for Conv; the
 *     input-feature axis of Gemm per transB; axis 0 of a MatMul weight);
 *   depthwise Conv (group = C_in = C_out) passes its channels through and
 *     gets its `group` attribute rewritten;
 *   BatchNormalization, element-wise unary ops, Dropout, Clip, pooling,
 *     ReduceMean/ReduceMax over other axes, Transpose pass channels through;
 *   Add/Sub/Mul/Div/Max/Min of two activations tie their channel spaces (one
 *     group); with a constant operand of size C along the channel axis the
 *     constant becomes a member;
 *   Concat along the channel axis maps each input to a range of the output;
 *   Flatten of [N, C, H, W] (or a Reshape to [N, -1]) maps channel c to the
 *     block of H*W features the next Gemm/MatMul reads.
 * Anything else reading a group's channels, a model output or input carrying
 * them, or a weight pare cannot slice makes the group unprunable, with the
 * reason ("reaches model output 'logits'").
 *
 * Ownership: pare_prune_groups_find returns an object the caller frees with
 * pare_prune_groups_free; it copies every string it keeps, so it does not
 * borrow the graph, but node indices in it refer to that graph (and to its
 * clones, which keep node order). Thread-safety: groups are plain data;
 * the criterion registry is not thread-safe for registration. */
#ifndef PARE_PRUNE_H
#define PARE_PRUNE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pare/data.h"
#include "pare/error.h"
#include "pare/graph.h"
#include "pare/tensor.h"

/* ---- channel dependency groups --------------------------------------------- */

typedef enum pare_member_role {
    PARE_MEMBER_OUT,      /* a producer's weight or bias, indexed by its out channels */
    PARE_MEMBER_IN,       /* a consumer's weight, indexed by its input channels */
    PARE_MEMBER_NORM,     /* BatchNormalization scale/B/mean/var, or a per-channel constant */
    PARE_MEMBER_NORM_SCALE /* the BatchNormalization scale (gamma): what bn_scale ranks */
} pare_member_role;

/* One tensor slice that follows the group's channels: group channels
 * [offset, offset + count) are entries [0, count * block) of `axis` of the
 * initializer `tensor`, block consecutive entries per channel. */
typedef struct pare_prune_member {
    char *tensor;          /* initializer name */
    int axis;
    int64_t offset;        /* first group channel covered */
    int64_t count;         /* channels covered */
    int64_t block;         /* entries per channel along axis (Flatten -> Gemm: H*W) */
    pare_member_role role;
    int node;              /* the node that reads the tensor (first one found) */
    bool is_depthwise;     /* out weight of a depthwise Conv (not a ranking producer) */
} pare_prune_member;

typedef struct pare_prune_group {
    int id;                /* index in pare_prune_groups.groups */
    char *name;            /* output value name of its first producer */
    int64_t channels;
    bool prunable;
    char reason[256];      /* why not, when !prunable */
    pare_prune_member *members;
    int n_members;
    int *producers;        /* nodes whose output channels these are (Conv/Gemm/MatMul) */
    int n_producers;
    int *consumers;        /* nodes reading the channels through an input weight */
    int n_consumers;
    int *depthwise;        /* depthwise Conv nodes whose `group` follows the count */
    int n_depthwise;
} pare_prune_group;

typedef struct pare_prune_groups {
    int n;
    pare_prune_group *groups;
} pare_prune_groups;

/* Walks g (it must be plannable by the executor at batch 1: shapes come from
 * a plan). Errors: the executor's (unknown op, shape error), PARE_ENOMEM.
 * A model without any Conv/Gemm/MatMul weight gives zero groups (not an
 * error). The caller owns *out on success. */
pare_status pare_prune_groups_find(const pare_graph *g, pare_prune_groups **out, pare_error *err);
void pare_prune_groups_free(pare_prune_groups *gs);

/* The group a user names: a group name, a producer node's name, or a member
 * tensor's name. Returns its index, or PARE_EINPUT with where = `where`,
 * "no prunable group 'x'" and a did-you-mean hint over group names. */
int pare_prune_groups_lookup(const pare_prune_groups *gs, const pare_graph *g, const char *name,
                             const char *where, pare_error *err);

/* ---- criteria ------------------------------------------------------------------
 * A criterion scores every channel of a group; lower scores go first. The
 * builtins: l1_norm, l2_norm (of each producer's out slice, summed over the
 * group's producers), geometry_median (FPGM: sum of L2 distances from the
 * channel's filter to the other filters of the same producer), bn_scale
 * (|gamma| of the group's BatchNormalization nodes; PARE_EINPUT naming the
 * group when it has none), random (uniform, from seed). */

typedef pare_status (*pare_prune_criterion_fn)(const pare_graph *g, const pare_prune_group *grp,
                                               uint64_t seed, double *scores, void *user,
                                               pare_error *err);

typedef struct pare_prune_criterion {
    const char *name;
    pare_prune_criterion_fn fn;
    void *user;
    const char *doc;
} pare_prune_criterion;

/* Registered criteria in order (the builtins first). Borrowed. */
int pare_prune_criteria(const pare_prune_criterion **out);
/* Adds a criterion (a Lua plugin, a test). name and doc are copied. A name
 * already registered is PARE_EINPUT; the table holds 32. */
pare_status pare_prune_criterion_register(const char *name, pare_prune_criterion_fn fn,
                                          void *user, const char *doc, pare_error *err);
/* Looks a criterion up; PARE_EINPUT with a did-you-mean hint when unknown. */
pare_status pare_prune_criterion_find(const char *name, const pare_prune_criterion **out,
                                      pare_error *err);
/* scores[grp->channels] for the named criterion. */
pare_status pare_prune_score(const pare_graph *g, const pare_prune_group *grp, const char *criterion,
                             uint64_t seed, double *scores, pare_error *err);

/* ---- physical shrink ------------------------------------------------------------ */

typedef struct pare_prune_opts {
    const char *criterion;    /* NULL: l1_norm */
    uint64_t seed;            /* for random */
    int round_to;             /* > 1: kept channel counts round up to a multiple of it
                                 (ONNX Runtime's blocked NCHWc conv kernels want 8);
                                 0 or 1: exactly round(ratio * C) channels go */
} pare_prune_opts;

typedef struct pare_prune_result {
    int64_t params_before, params_after;     /* all initializer values */
    double flops_before, flops_after;        /* per sample (pare_stats) */
    int64_t channels_removed;
} pare_prune_result;

/* Channels a group keeps for `ratio`: the round(ratio * C) lowest-scored
 * channels go (at most C - 1; fewer with opts->round_to), ties broken by
 * index. keep[C] is filled. opts may be NULL (defaults). */
pare_status pare_prune_keep_mask(const pare_graph *g, const pare_prune_group *grp, double ratio,
                                 const pare_prune_opts *opts, bool *keep, pare_error *err);

/* Prunes a copy of g: ratios[i] (in [0, 1)) for group i of gs, which must
 * have been found on g; the lowest-scored channels by opts->criterion
 * (opts NULL: l1_norm, seed 0, no rounding) are removed from every member tensor; depthwise `group`
 * attributes follow; declared shapes (value_info) of values carrying pruned
 * channels are dropped so nothing stale is saved. res (may be NULL) gets
 * params and FLOPs before and after (FLOPs need a plannable model; 0 else).
 * Errors (PARE_EINPUT, where = the model): a ratio < 0 or >= 1 or NaN
 * naming the group, a ratio > 0 for an unprunable group (the hint says why);
 * criterion errors; PARE_ENOMEM. The caller owns *out on success. */
pare_status pare_prune_apply(const pare_graph *g, const pare_prune_groups *gs, const double *ratios,
                             const pare_prune_opts *opts, pare_graph **out, pare_prune_result *res,
                             pare_error *err);

/* Same with explicit keep masks: keep[i] is NULL (group untouched) or a
 * bool[channels] with at least one true. */
pare_status pare_prune_apply_masks(const pare_graph *g, const pare_prune_groups *gs,
                                   const bool *const *keep, pare_graph **out, pare_error *err);

/* Params and FLOPs (per sample) of a model, 0 FLOPs if it cannot be planned. */
pare_status pare_prune_measure(const pare_graph *g, int64_t *params, double *flops, pare_error *err);

/* ---- unstructured masks (core/src/prune_unstructured.c) ------------------------ */

typedef enum pare_unstruct_mode {
    PARE_UNSTRUCT_L1,         /* smallest |w| go first */
    PARE_UNSTRUCT_RANDOM,     /* uniform, from seed */
    PARE_UNSTRUCT_THRESHOLD   /* every |w| < threshold goes (ratio ignored) */
} pare_unstruct_mode;

typedef enum pare_prune_params_type {
    PARE_PARAMS_ALL,          /* weights of Conv, Gemm and MatMul (not biases or norms) */
    PARE_PARAMS_CONV1X1       /* only 1x1 Conv weights */
} pare_prune_params_type;

typedef struct pare_unstruct_opts {
    pare_unstruct_mode mode;
    double ratio;             /* fraction of weights zeroed, [0, 1) */
    double threshold;         /* THRESHOLD mode */
    bool global;              /* one magnitude ranking across all layers */
    pare_prune_params_type params_type;
    uint64_t seed;
    const char *const *skip;  /* weight tensor names left dense */
    int n_skip;
} pare_unstruct_opts;

/* keep[numel]: 1 keeps the weight, 0 zeroes it. */
typedef struct pare_mask {
    char *tensor;             /* initializer name */
    char *node;               /* the Conv/Gemm/MatMul reading it ("" when unnamed) */
    int64_t numel;
    uint8_t *keep;
    int64_t n_pruned;         /* zeros in keep */
} pare_mask;

typedef struct pare_masks {
    int n;
    pare_mask *masks;
} pare_masks;

/* The weights opts select, in node order: float initializers a Conv, Gemm or
 * MatMul reads directly, through Identity, or through a fake-quant pair
 * DequantizeLinear(QuantizeLinear(w)) (a QAT graph: the mask is on w, and a
 * masked zero stays 0 after Q/DQ). Errors: PARE_EINPUT for a ratio
 * outside [0, 1), a skip name that is no such weight (did-you-mean), a
 * negative threshold. The caller owns *out. */
pare_status pare_masks_compute(const pare_graph *g, const pare_unstruct_opts *opts, pare_masks **out,
                               pare_error *err);
/* N:M semi-structured masks: in every run of m consecutive weights along the
 * input dim (Conv: input channels at each output channel and kernel position;
 * Gemm/MatMul: the K axis) the n largest |w| stay. Layers whose input dim is
 * not a multiple of m are left dense and listed in *skipped (count, may be
 * NULL). Errors: PARE_EINPUT for n < 1 or n >= m or m > 64. */
pare_status pare_masks_nm(const pare_graph *g, int n, int m, pare_prune_params_type params_type,
                          pare_masks **out, int *skipped, pare_error *err);
/* Masks from an .npz file with one array per weight, named after the
 * weight tensor (nonzero = keep). Errors: PARE_EINPUT for another file
 * type, an array naming no weight (did-you-mean) or of the wrong size; the
 * .npz loader's errors. */
pare_status pare_masks_load(const pare_graph *g, const char *path, pare_masks **out, pare_error *err);
/* Zeroes the masked weights of g in place: what a trainer calls after every
 * optimizer step. Errors: PARE_EINPUT when a mask names a tensor g lacks or
 * of another size. */
pare_status pare_masks_apply(const pare_masks *m, pare_graph *g, pare_error *err);
void pare_masks_free(pare_masks *m);
/* Fraction of zero values in initializer `tensor` of g (-1 when absent). */
double pare_tensor_sparsity(const pare_graph *g, const char *tensor);
/* Fraction of masked weights over all masks. */
double pare_masks_sparsity(const pare_masks *m);

/* ---- gradual pruning schedule (GMP / AGP, cubic) --------------------------------
 * Iterations t < stable: ratio 0; then for pruning_iterations the ratio
 * rises in pruning_steps steps (period = pruning_iterations / pruning_steps):
 *   ratio(t) = final + (initial - final) * (1 - k / pruning_steps)^3,
 *   k = floor((t - stable) / period);
 * after that (the tunning_iterations) ratio = final. */
typedef struct pare_gmp {
    int64_t stable_iterations;
    int64_t pruning_iterations;
    int64_t tunning_iterations;
    int64_t pruning_steps;
    double initial_ratio;
    double final_ratio;
    int64_t resume_iteration;     /* where a resumed run starts counting */
    pare_unstruct_opts opts;      /* how masks are computed (ratio is overridden) */
} pare_gmp;

double pare_gmp_ratio(const pare_gmp *s, int64_t iteration);

typedef struct pare_gmp_state {
    pare_gmp sched;
    int64_t iteration;            /* next iteration (starts at resume_iteration) */
    double ratio;                 /* target the current masks hold */
    pare_masks *masks;            /* owned; NULL before the first non-zero ratio */
} pare_gmp_state;

/* Errors: PARE_EINPUT for negative counts, pruning_steps < 1 or larger than
 * pruning_iterations, ratios outside [0, 1), initial > final. */
pare_status pare_gmp_init(pare_gmp_state *st, const pare_gmp *s, pare_error *err);
/* One training step: advances the iteration, recomputes the masks from g's
 * current weights when the target ratio changed, zeroes masked weights, and
 * returns the current ratio in *ratio (may be NULL). */
pare_status pare_gmp_step(pare_gmp_state *st, pare_graph *g, double *ratio, pare_error *err);
void pare_gmp_fini(pare_gmp_state *st);

/* ---- attention heads (TransformerPrune, core/src/prune_heads.c) ---------------
 * Multi-head attention blocks found by their exact op chain (what PyTorch
 * exports for a timm-style fused-QKV attention):
 *   x -> MatMul(W_qkv [E, 3*H*D]) -> [Add(b_qkv [3*H*D])]
 *     -> Reshape(const [.., .., 3, H, D]) -> Transpose(perm [2, 0, 3, 1, 4])
 *     -> Gather(axis 0, index 0 / 1 / 2) = q, k, v   (each [N, H, T, D])
 *     -> MatMul(q, Transpose(k, [0, 1, 3, 2])) [-> Mul/Div by a scalar]
 *     -> Softmax(last axis) -> MatMul(., v) -> Transpose(perm [0, 2, 1, 3])
 *     -> Reshape(const [.., H*D]) -> MatMul(W_proj [H*D, E']).
 * or with separate projections (BERT/HF style): q, k, v each
 *   x -> MatMul(W [E, H*D]) -> [Add(b)] -> Reshape(const [.., .., H, D])
 *     -> Transpose(perm [0, 2, 1, 3])  (k: [0, 2, 3, 1], or [0, 2, 1, 3]
 *        then [0, 1, 3, 2])
 * into the same scores / Softmax / values / merge / projection chain.
 * A scalar Mul/Div may also sit on q or k. Every intermediate value must
 * have exactly one reader (the Transpose's three Gathers excepted) and not
 * be a model output; the weights must be initializers read only there; the
 * shapes must be int64 constants without 0 (copy) entries.
 * Head h owns columns s*H*D + h*D .. + D-1 of W_qkv and b_qkv (s = q, k, v;
 * columns h*D .. + D-1 of each separate W and b) and rows h*D .. h*D + D-1
 * of W_proj; removing it shrinks those tensors and rewrites H in the
 * splitting Reshapes' shapes and H*D in the merging one's (a shape
 * constant shared with other readers is copied, not edited). The attention
 * scale stays 1/sqrt(D). Any Softmax fed by a MatMul of two activations that
 * does not match the chain exactly is listed as not prunable, with why. */

typedef struct pare_prune_attn {
    char *name;            /* the Softmax node's name (its op and index when unnamed) */
    bool prunable;
    char reason[256];      /* why not, when !prunable */
    int num_heads;         /* H (0 when the match failed before it was known) */
    int head_dim;          /* D */
    int n_qkv;             /* 1: one fused QKV MatMul; 3: separate Q, K, V MatMuls */
    /* Per input projection j < n_qkv (names; NULL when not reached):
       weights [E, 3*H*D] (fused) or [E, H*D], biases (NULL: no Add), the
       MatMul nodes, and the Reshapes whose shapes end in [H, D]. */
    char *qkv_weight[3];
    char *qkv_bias[3];
    char *qkv_node[3];
    char *reshape_heads[3];
    char *proj_weight;     /* [H*D, E'] */
    char *proj_node;
    char *reshape_merge;   /* Reshape whose shape holds H*D */
    bool merge_has_hd;     /* its last shape entry is H*D (false: -1, nothing to edit) */
    char *context;         /* value MatMul(softmax, v): [N, H, T, D], the heads' outputs */
    double *importance;    /* importance[H] from pare_prune_heads_importance; NULL before */
} pare_prune_attn;

typedef struct pare_prune_heads {
    int n;
    pare_prune_attn *blocks;
} pare_prune_heads;

/* Finds the attention blocks of g by structure only (no executor plan;
 * works on channel-pruned copies too). A model without attention gives
 * n = 0. Errors: PARE_ENOMEM. The caller owns *out (strings copied). */
pare_status pare_prune_heads_find(const pare_graph *g, pare_prune_heads **out, pare_error *err);
void pare_prune_heads_free(pare_prune_heads *hs);

/* Data-driven head importance: runs g on the first `limit` samples of ds
 * (0: all) in batches of `batch` with n_threads (0: default) and sets each
 * prunable block's importance[h] to the mean over samples and tokens of
 * || context_h(t) . W_proj[h*D .. h*D+D-1, :] ||_1: the L1 norm of what head
 * h adds to the projection output, i.e. what removing it takes away. hs must
 * have been found on g. Errors: the executor's and the dataset's, PARE_EINPUT
 * when a context value has another shape than [N, H, T, D], PARE_ENOMEM. */
pare_status pare_prune_heads_importance(const pare_graph *g, pare_prune_heads *hs,
                                        const pare_dataset *ds, int64_t limit, int batch,
                                        int n_threads, pare_error *err);

/* scores[num_heads] of block b (lower goes first): l1_norm (sum |w| over the
 * head's q, k, v columns and proj rows), l2_norm (sum of the four slices'
 * L2 norms), random (from seed) or activation (b->importance; PARE_EINPUT
 * when pare_prune_heads_importance has not filled it). Other criteria are
 * PARE_EINPUT with a hint. */
pare_status pare_prune_heads_score(const pare_graph *g, const pare_prune_attn *b,
                                   const char *criterion, uint64_t seed, double *scores,
                                   pare_error *err);

/* keep[num_heads]: the round(ratio * H) lowest-scored heads go, at most
 * H - 1 (ties by index). opts may be NULL (l1_norm; round_to is ignored). */
pare_status pare_prune_heads_keep_mask(const pare_graph *g, const pare_prune_attn *b, double ratio,
                                       const pare_prune_opts *opts, bool *keep, pare_error *err);

/* Prunes a copy of g: keep[i] is NULL (block i untouched) or bool[num_heads]
 * with at least one true; hs must have been found on g. Errors (where = the
 * model): PARE_EINPUT for keeping a block with no head or pruning an
 * unprunable one (hint: the reason), PARE_EINTERNAL when a tensor does not
 * match the block, PARE_ENOMEM. The caller owns *out on success. */
pare_status pare_prune_heads_apply_masks(const pare_graph *g, const pare_prune_heads *hs,
                                         const bool *const *keep, pare_graph **out,
                                         pare_error *err);

/* ratios[i] in [0, 1) per block (0 leaves it; > 0 on an unprunable block is
 * PARE_EINPUT). kept (may be NULL) gets each block's head count after; res
 * (may be NULL) params/FLOPs before and after, channels_removed = heads removed. */
pare_status pare_prune_heads_apply(const pare_graph *g, const pare_prune_heads *hs,
                                   const double *ratios, const pare_prune_opts *opts,
                                   pare_graph **out, int *kept, pare_prune_result *res,
                                   pare_error *err);

#endif
