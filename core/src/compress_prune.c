/* The job runner's pruning stages: ChannelPrune and Layers (channel groups),
 * TransformerPrune (attention heads, FFN units), UnstructurePrune and
 * ASPPrune (masks, GMP), and pare's Sensitivity sweep. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "compress_internal.h"
#include "pare/alloc.h"
#include "pare/sensitivity.h"

/* ---- structured pruning ---------------------------------------------------------- */

bool compress_wants_structured(const pare_job *j)
{
    return j->channel_prune.meta.present || (j->layers.meta.present && j->layers.n > 0);
}

const char *compress_crit_name(pare_job_criterion c)
{
    static const char *const names[] = {"l1_norm", "l2_norm", "geometry_median", "bn_scale",
                                        "random"};
    return (int)c >= 0 && (int)c < 5 ? names[c] : "l1_norm";
}

/* Per-group ratios from ChannelPrune and Layers. */
pare_status compress_prune_ratios(compress_ctx *c, const pare_graph *g, const pare_prune_groups *gs,
                                double *ratios, int *n_pruned, pare_error *err)
{
    const pare_job_channel_prune *cp = &c->job->channel_prune;
    const pare_job_layers *ly = &c->job->layers;
    char where[256];

    *n_pruned = 0;
    for (int i = 0; i < gs->n; i++)
        ratios[i] = 0.0;
    if (cp->meta.present) {
        compress_where(c, &cp->meta, where, sizeof where);
        if (cp->prune_params_name.n == 0) {
            for (int i = 0; i < gs->n; i++)
                if (gs->groups[i].prunable)
                    ratios[i] = cp->pruned_ratio;
        }
        for (int k = 0; k < cp->prune_params_name.n; k++) {
            int gi = pare_prune_groups_lookup(gs, g, cp->prune_params_name.v[k], where, err);
            if (gi < 0) {
                pare_error_prefix(err, "ChannelPrune.prune_params_name: ");
                return (pare_status)gi;
            }
            if (!gs->groups[gi].prunable) {
                pare_fail(err, PARE_EINPUT, where, "ChannelPrune.prune_params_name: group '%s' "
                          "cannot be pruned", gs->groups[gi].name);
                pare_error_hint(err, "%s", gs->groups[gi].reason);
                return PARE_EINPUT;
            }
            ratios[gi] = cp->pruned_ratio;
        }
    }
    if (ly->meta.present) {
        compress_where(c, &ly->meta, where, sizeof where);
        for (int k = 0; k < ly->n; k++) {
            int gi = pare_prune_groups_lookup(gs, g, ly->names[k], where, err);
            if (gi < 0) {
                pare_error_prefix(err, "Layers: ");
                return (pare_status)gi;
            }
            if (!gs->groups[gi].prunable && ly->ratios[k] > 0) {
                pare_fail(err, PARE_EINPUT, where, "Layers: group '%s' (from '%s') cannot be pruned",
                          gs->groups[gi].name, ly->names[k]);
                pare_error_hint(err, "%s", gs->groups[gi].reason);
                return PARE_EINPUT;
            }
            ratios[gi] = ly->ratios[k];
        }
    }
    for (int i = 0; i < gs->n; i++)
        *n_pruned += ratios[i] > 0;
    return PARE_OK;
}

pare_status compress_stage_structured(compress_ctx *c, bool dry, pare_error *err)
{
    pare_prune_groups *gs = NULL;
    double *ratios = NULL, t0 = compress_now();
    pare_prune_opts po = {.criterion = compress_crit_name(c->job->channel_prune.criterion),
                          .seed = (uint64_t)c->job->global.seed};
    pare_prune_result res;
    pare_graph *out = NULL;
    int n_pruned = 0;
    pare_status rc = pare_prune_groups_find(c->cur, &gs, err);

    if (rc == PARE_OK) {
        ratios = pare_calloc((size_t)(gs->n ? gs->n : 1), sizeof *ratios);
        if (!ratios)
            rc = pare_fail(err, PARE_ENOMEM, NULL, "out of memory");
    }
    if (rc == PARE_OK)
        rc = compress_prune_ratios(c, c->cur, gs, ratios, &n_pruned, err);
    if (rc == PARE_OK && dry) {
        compress_stage(c, "prune", 0, "planned: %d of %d groups, criterion %s", n_pruned, gs->n,
                       po.criterion);
    } else if (rc == PARE_OK) {
        compress_event(c, "prune", 0, 1, "model", NAN, NULL);
        rc = pare_prune_apply(c->cur, gs, ratios, &po, &out, &res, err);
        if (rc == PARE_OK) {
            pare_graph_free(c->cur);
            c->cur = out;
            compress_stage(c, "prune", compress_now() - t0,
                           "channels: %d of %d groups, %lld channels removed, criterion %s, "
                           "params %lld -> %lld", n_pruned, gs->n, (long long)res.channels_removed,
                           po.criterion, (long long)res.params_before, (long long)res.params_after);
            if (!compress_event(c, "prune", 1, 1, "model", NAN, NULL))
                rc = pare_fail(err, PARE_ECANCELED, NULL, "canceled after pruning");
        }
    }
    pare_free(ratios);
    pare_prune_groups_free(gs);
    return rc;
}

/* ---- TransformerPrune ------------------------------------------------------------- */

/* Attention heads (pare_prune_heads_*) by heads_ratio, then FFN hidden units:
 * the prunable channel groups produced only by MatMul/Gemm, by ffn_ratio
 * (both default to pruned_ratio). Blocks pare cannot match are left alone
 * and counted. */
pare_status compress_stage_transformer(compress_ctx *c, bool dry, pare_error *err)
{
    const pare_job_transformer_prune *tp = &c->job->transformer_prune;
    double hr = pare_job_is_set(c->job, "TransformerPrune", "heads_ratio") ? tp->heads_ratio
                                                                             : tp->pruned_ratio;
    double fr = pare_job_is_set(c->job, "TransformerPrune", "ffn_ratio") ? tp->ffn_ratio
                                                                          : tp->pruned_ratio;
    pare_prune_heads *hs = NULL;
    pare_prune_groups *gs = NULL;
    double *ratios = NULL, t0 = compress_now();
    pare_prune_opts po = {.criterion = "l1_norm", .seed = (uint64_t)c->job->global.seed};
    pare_prune_result res;
    pare_graph *out = NULL;
    int n_blocks = 0, n_ffn = 0, heads_before = 0, heads_after = 0;
    int *kept = NULL;
    char where[256];
    pare_status rc = pare_prune_heads_find(c->cur, &hs, err);

    if (rc == PARE_OK) {
        ratios = pare_calloc((size_t)(hs->n + 1), sizeof *ratios);
        kept = pare_calloc((size_t)(hs->n + 1), sizeof *kept);
        if (!ratios || !kept)
            rc = pare_fail(err, PARE_ENOMEM, NULL, "out of memory");
    }
    for (int i = 0; rc == PARE_OK && i < hs->n; i++) {
        if (!hs->blocks[i].prunable)
            continue;
        ratios[i] = hr;
        n_blocks++;
        heads_before += hs->blocks[i].num_heads;
    }
    if (rc == PARE_OK && n_blocks == 0) {
        pare_fail(err, PARE_EINPUT, compress_where(c, &tp->meta, where, sizeof where),
                  "TransformerPrune: '%s' has no attention block pare can prune", c->model_path);
        if (hs->n)
            pare_error_hint(err, "%s: %s", hs->blocks[0].name, hs->blocks[0].reason);
        rc = PARE_EINPUT;
    }
    if (rc == PARE_OK && !dry && hr > 0) {
        rc = pare_prune_heads_apply(c->cur, hs, ratios, &po, &out, kept, NULL, err);
        if (rc == PARE_OK) {
            pare_graph_free(c->cur);
            c->cur = out;
            out = NULL;
            for (int i = 0; i < hs->n; i++)
                if (hs->blocks[i].prunable)
                    heads_after += kept[i];
        }
    } else {
        heads_after = heads_before;
    }
    pare_free(ratios);
    ratios = NULL;
    /* FFN hidden units */
    if (rc == PARE_OK)
        rc = pare_prune_groups_find(c->cur, &gs, err);
    if (rc == PARE_OK) {
        ratios = pare_calloc((size_t)(gs->n + 1), sizeof *ratios);
        if (!ratios)
            rc = pare_fail(err, PARE_ENOMEM, NULL, "out of memory");
    }
    for (int i = 0; rc == PARE_OK && i < gs->n; i++) {
        const pare_prune_group *grp = &gs->groups[i];
        bool mm = grp->prunable && grp->n_producers > 0;
        for (int k = 0; mm && k < grp->n_producers; k++) {
            const char *op = c->cur->nodes[grp->producers[k]].op_type;
            mm = !strcmp(op, "MatMul") || !strcmp(op, "Gemm");
        }
        if (mm && fr > 0) {
            ratios[i] = fr;
            n_ffn++;
        }
    }
    if (rc == PARE_OK && !dry && n_ffn) {
        rc = pare_prune_apply(c->cur, gs, ratios, &po, &out, &res, err);
        if (rc == PARE_OK) {
            pare_graph_free(c->cur);
            c->cur = out;
        }
    }
    if (rc == PARE_OK)
        compress_stage(c, "prune", dry ? 0 : compress_now() - t0,
                       "%sheads: %d blocks, %d -> %d heads (ratio %.3g); FFN: %d layers at ratio %.3g",
                       dry ? "planned: " : "", n_blocks, heads_before,
                       dry ? heads_before : heads_after, hr, n_ffn, fr);
    pare_free(ratios);
    pare_free(kept);
    pare_prune_groups_free(gs);
    pare_prune_heads_free(hs);
    return rc;
}

/* ---- unstructured masks ------------------------------------------------------------ */

static void masks_keep_only(pare_masks *m, const bool *keep)
{
    int k = 0;
    for (int i = 0; i < m->n; i++) {
        if (keep[i]) {
            m->masks[k++] = m->masks[i];
        } else {
            pare_free(m->masks[i].tensor);
            pare_free(m->masks[i].node);
            pare_free(m->masks[i].keep);
        }
    }
    m->n = k;
}

/* ASPPrune.prune_params_name: keep the masks of the named weights (or nodes). */
static pare_status asp_filter(compress_ctx *c, pare_masks *m, pare_error *err)
{
    const pare_job_strs *names = &c->job->asp_prune.prune_params_name;
    bool *keep;
    const char **cands;
    pare_status rc = PARE_OK;
    char where[256];

    if (names->n == 0)
        return PARE_OK;
    keep = pare_calloc((size_t)m->n + 1, sizeof *keep);
    cands = pare_calloc((size_t)m->n + 1, sizeof *cands);
    if (!keep || !cands) {
        pare_free(keep);
        pare_free(cands);
        return pare_fail(err, PARE_ENOMEM, NULL, "out of memory");
    }
    for (int i = 0; i < m->n; i++)
        cands[i] = m->masks[i].tensor;
    for (int k = 0; k < names->n && rc == PARE_OK; k++) {
        bool found = false;
        for (int i = 0; i < m->n; i++)
            if (!strcmp(names->v[k], m->masks[i].tensor) || !strcmp(names->v[k], m->masks[i].node)) {
                keep[i] = true;
                found = true;
            }
        if (!found) {
            const char *guess = pare_closest_word(names->v[k], cands, m->n);
            rc = pare_fail(err, PARE_EINPUT,
                           compress_where(c, &c->job->asp_prune.meta, where, sizeof where),
                           "ASPPrune.prune_params_name: '%s' is no weight that %lld:%lld sparsity "
                           "can prune", names->v[k], (long long)c->job->asp_prune.n,
                           (long long)c->job->asp_prune.m);
            if (guess)
                pare_error_hint(err, "did you mean '%s'?", guess);
        }
    }
    if (rc == PARE_OK)
        masks_keep_only(m, keep);
    pare_free(keep);
    pare_free(cands);
    return rc;
}

double compress_sparsity(const compress_ctx *c)
{
    double pruned = 0, total = 0;
    const pare_masks *sets[3] = {c->masks[0], c->masks[1], c->has_gmp ? c->gmp.masks : NULL};

    for (int s = 0; s < 3; s++) {
        if (!sets[s])
            continue;
        for (int i = 0; i < sets[s]->n; i++) {
            pruned += (double)sets[s]->masks[i].n_pruned;
            total += (double)sets[s]->masks[i].numel;
        }
    }
    return total > 0 ? pruned / total : 0.0;
}

pare_status compress_stage_masks(compress_ctx *c, bool dry, pare_error *err)
{
    const pare_job_unstructure_prune *up = &c->job->unstructure_prune;
    const pare_job_asp_prune *ap = &c->job->asp_prune;
    double t0 = compress_now();
    char where[256], detail[256] = "";
    pare_status rc = PARE_OK;

    if (up->meta.present) {
        pare_unstruct_opts uo;
        memset(&uo, 0, sizeof uo);
        uo.mode = up->prune_mode == PARE_JOB_MODE_THRESHOLD ? PARE_UNSTRUCT_THRESHOLD
                : up->criterion == PARE_JOB_MASK_RANDOM ? PARE_UNSTRUCT_RANDOM : PARE_UNSTRUCT_L1;
        uo.ratio = up->ratio;
        uo.threshold = up->threshold;
        uo.global = up->global && !up->local_sparsity;
        uo.params_type = up->prune_params_type == PARE_JOB_PARAMS_CONV1X1_ONLY ? PARE_PARAMS_CONV1X1
                                                                              : PARE_PARAMS_ALL;
        uo.seed = (uint64_t)c->job->global.seed;
        compress_where(c, &up->meta, where, sizeof where);
        if (up->prune_strategy == PARE_JOB_STRATEGY_GMP) {
            pare_gmp s;
            if (!c->job->train.meta.present)
                return pare_fail(err, PARE_EINPUT, where, "UnstructurePrune with prune_strategy "
                                 "gmp needs a TrainConfig section (the ratio rises during training)");
            memset(&s, 0, sizeof s);
            s.stable_iterations = up->gmp_config.stable_iterations;
            s.pruning_iterations = up->gmp_config.pruning_iterations;
            s.tunning_iterations = up->gmp_config.tunning_iterations;
            s.pruning_steps = up->gmp_config.pruning_steps;
            s.initial_ratio = up->gmp_config.initial_ratio;
            s.final_ratio = up->ratio;
            s.resume_iteration = up->gmp_config.resume_iteration > 0
                                     ? up->gmp_config.resume_iteration : 0;
            s.opts = uo;
            rc = pare_gmp_init(&c->gmp, &s, err);
            if (rc != PARE_OK) {
                compress_set_where(err, where);
                pare_error_prefix(err, "UnstructurePrune.gmp_config: ");
                return rc;
            }
            c->has_gmp = true;
            snprintf(detail, sizeof detail, "GMP to ratio %.3g over %lld iterations (steps %lld)",
                     up->ratio, (long long)s.pruning_iterations, (long long)s.pruning_steps);
        } else if (up->mask_file) {
            char path[PARE_COMPRESS_PATH_MAX];
            compress_resolve_path(c->opts->base_dir, up->mask_file, path, sizeof path);
            rc = pare_masks_load(c->cur, path, &c->masks[c->n_masks], err);
            if (rc != PARE_OK)
                return rc;
            c->n_masks++;
            snprintf(detail, sizeof detail, "masks from '%s'", up->mask_file);
        } else {
            rc = pare_masks_compute(c->cur, &uo, &c->masks[c->n_masks], err);
            if (rc != PARE_OK) {
                if (!err->where[0])
                    compress_set_where(err, where);
                return rc;
            }
            c->n_masks++;
            snprintf(detail, sizeof detail, "%s %s %.3g%s",
                     uo.mode == PARE_UNSTRUCT_THRESHOLD ? "threshold" : "ratio",
                     uo.mode == PARE_UNSTRUCT_RANDOM ? "random" : "l1",
                     uo.mode == PARE_UNSTRUCT_THRESHOLD ? up->threshold : up->ratio,
                     uo.global ? ", global" : ", per layer");
        }
    }
    if (ap->meta.present) {
        int skipped = 0;
        size_t len = strlen(detail);
        rc = pare_masks_nm(c->cur, (int)ap->n, (int)ap->m, PARE_PARAMS_ALL, &c->masks[c->n_masks],
                           &skipped, err);
        if (rc != PARE_OK) {
            compress_set_where(err, compress_where(c, &ap->meta, where, sizeof where));
            return rc;
        }
        c->n_masks++;
        rc = asp_filter(c, c->masks[c->n_masks - 1], err);
        if (rc != PARE_OK)
            return rc;
        snprintf(detail + len, sizeof detail - len, "%s%lld:%lld on %d weights (%d left dense)",
                 len ? "; " : "", (long long)ap->n, (long long)ap->m,
                 c->masks[c->n_masks - 1]->n, skipped);
    }
    for (int i = 0; i < c->n_masks && rc == PARE_OK && !dry; i++)
        rc = pare_masks_apply(c->masks[i], c->cur, err);
    if (rc == PARE_OK) {
        c->rep->sparsity = compress_sparsity(c);
        compress_stage(c, "prune", dry ? 0 : compress_now() - t0, "%s%s, sparsity %.2f %%",
                       dry ? "planned: " : "", detail, 100.0 * c->rep->sparsity);
    }
    return rc;
}

/* ---- sensitivity ----------------------------------------------------------------- */

/* Sensitivity: a sweep of every prunable group of the original model over
 * the section's ratios on Sensitivity.limit eval samples; the table goes to
 * sensitivity.csv. */
pare_status compress_stage_sensitivity(compress_ctx *c, bool dry, pare_error *err)
{
    const pare_job_sensitivity *sj = &c->job->sensitivity;
    pare_prune_groups *gs = NULL;
    pare_dataset *ds = NULL;
    pare_sens_opts so;
    char cache[PARE_COMPRESS_PATH_MAX + 32], where[256];
    double t0 = compress_now();
    pare_status rc;

    if (!c->eval_spec[0])
        return pare_fail(err, PARE_EINPUT, compress_where(c, &sj->meta, where, sizeof where),
                         "Sensitivity needs evaluation data (Global.eval_data or data)");
    if (dry) {
        compress_stage(c, "sensitivity", 0, "planned: %d ratios per group, criterion %s",
                       sj->ratios.n, compress_crit_name(sj->criterion));
        return PARE_OK;
    }
    memset(&so, 0, sizeof so);
    so.ratios = sj->ratios.v;
    so.n_ratios = sj->ratios.n;
    so.criterion = compress_crit_name(sj->criterion);
    so.seed = (uint64_t)c->job->global.seed;
    so.metric = c->job->global.metric == PARE_JOB_METRIC_COSINE ||
                        c->job->global.metric == PARE_JOB_METRIC_SNR
                    ? PARE_SENS_COSINE : PARE_SENS_AUTO;
    so.batch = c->batch;
    so.n_threads = c->threads;
    so.progress = c->opts->progress;
    if (sj->cache_dir) {
        mkdir(sj->cache_dir, 0777);
        snprintf(cache, sizeof cache, "%s/sensitivity.cache", sj->cache_dir);
        so.cache_path = cache;
    }
    rc = compress_open_data(c, c->eval_spec, c->batch, false, sj->limit, &ds, err);
    if (rc == PARE_OK)
        rc = pare_prune_groups_find(c->orig, &gs, err);
    if (rc == PARE_OK) {
        pare_sens_result *r = NULL;
        rc = pare_sens_run(c->orig, gs, ds, &so, &r, err);
        if (rc == PARE_OK) {
            c->sens = r;
            c->sens_groups = gs;
            gs = NULL;
            compress_stage(c, "sensitivity", compress_now() - t0,
                           "%d groups x %d ratios, criterion %s, baseline %.4f on %lld samples "
                           "(%lld points from cache)", r->n_groups, sj->ratios.n, so.criterion,
                           r->baseline, (long long)r->n_samples, (long long)r->from_cache);
        } else if (rc == PARE_ECANCELED) {
            c->canceled = true;
        }
    }
    pare_prune_groups_free(gs);
    pare_dataset_free(ds);
    return rc;
}

