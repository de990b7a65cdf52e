/* The job runner's post-training quantization: QuantPost, and
 * HyperParameterOptimization's random search over PTQ settings. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "compress_internal.h"
#include "pare/alloc.h"
#include "quant_internal.h"

static pare_quant_algo algo_of(int a)
{
    switch (a) {
    case PARE_JOB_ALGO_ABS_MAX: return PARE_QUANT_ABS_MAX;
    case PARE_JOB_ALGO_AVG: return PARE_QUANT_AVG;
    case PARE_JOB_ALGO_KL: return PARE_QUANT_KL;
    case PARE_JOB_ALGO_MSE: return PARE_QUANT_MSE;
    default: return PARE_QUANT_HIST;
    }
}

static void ptq_opts(const compress_ctx *c, pare_quant_opts *o)
{
    const pare_job_quant_post *qp = &c->job->quant_post;

    pare_quant_opts_init(o);
    o->activation_bits = (int)qp->activation_bits;
    o->weight_bits = (int)qp->weight_bits;
    o->algo = algo_of(qp->algo);
    o->hist_percent = qp->hist_percent;
    o->bias_correct = qp->bias_correct;
    o->batch_nums = (int)qp->batch_nums;
    o->batch_size = (int)qp->batch_size;
    o->quantize_op_types = qp->quantize_op_types.n ? (const char *const *)qp->quantize_op_types.v
                                                   : NULL;
    o->n_quantize_op_types = qp->quantize_op_types.n;
    o->skip_tensor_list = (const char *const *)qp->skip_tensor_list.v;
    o->n_skip_tensor_list = qp->skip_tensor_list.n;
    o->not_quant_pattern = (const char *const *)qp->not_quant_pattern.v;
    o->n_not_quant_pattern = qp->not_quant_pattern.n;
    o->is_full_quantize = qp->is_full_quantize;
    o->weight_quantize_type = qp->weight_quantize_type == PARE_JOB_WQ_ABS_MAX
                                  ? PARE_QUANT_W_ABS_MAX : PARE_QUANT_CHANNEL_WISE_ABS_MAX;
    o->preset = qp->preset == PARE_JOB_PRESET_TENSORRT ? PARE_QUANT_PRESET_TENSORRT
              : qp->preset == PARE_JOB_PRESET_U8S8 ? PARE_QUANT_PRESET_U8S8
                                                    : PARE_QUANT_PRESET_ONNXRUNTIME;
    o->activation_unsigned = qp->activation_type == PARE_JOB_ACT_UINT8;
    o->activation_symmetric = qp->activation_symmetric;
    o->reduce_range = qp->reduce_range || o->preset == PARE_QUANT_PRESET_U8S8;
    o->recon_level = qp->recon_level == PARE_JOB_RECON_LAYER    ? PARE_QUANT_RECON_LAYER_WISE
                   : qp->recon_level == PARE_JOB_RECON_REGION ? PARE_QUANT_RECON_REGION_WISE
                                                              : PARE_QUANT_RECON_NONE;
    o->recon_epochs = (int)qp->recon_epochs;
    o->recon_lr = qp->recon_lr;
    o->weight_only = qp->weight_only;
    o->block_size = (int)qp->block_size;
    o->n_threads = c->threads;
}

/* QuantPost.regions as the options' regions, each located in the job file;
 * the names stay the job's. The caller frees *regs and *wheres. */
static pare_status ptq_regions(const compress_ctx *c, pare_quant_opts *o, pare_quant_region **regs,
                               char **wheres, pare_error *err)
{
    const pare_job_regions *jr = &c->job->quant_post.regions;
    enum { WHERE = 288 };

    *regs = NULL;
    *wheres = NULL;
    if (jr->n == 0 || o->recon_level != PARE_QUANT_RECON_REGION_WISE)
        return PARE_OK;
    *regs = pare_calloc((size_t)jr->n, sizeof **regs);
    *wheres = pare_calloc((size_t)jr->n, WHERE);
    if (!*regs || !*wheres) {
        pare_free(*regs);
        pare_free(*wheres);
        *regs = NULL;
        *wheres = NULL;
        return pare_fail(err, PARE_ENOMEM, NULL, "out of memory");
    }
    for (int i = 0; i < jr->n; i++) {
        pare_job_meta m = {.line = jr->v[i].line, .col = jr->v[i].col};
        pare_quant_region *r = &(*regs)[i];
        r->inputs = (const char *const *)jr->v[i].inputs.v;
        r->n_inputs = jr->v[i].inputs.n;
        r->outputs = (const char *const *)jr->v[i].outputs.v;
        r->n_outputs = jr->v[i].outputs.n;
        r->where = compress_where(c, &m, *wheres + (size_t)i * WHERE, WHERE);
    }
    o->regions = *regs;
    o->n_regions = jr->n;
    return PARE_OK;
}

/* One PTQ run of ctx->cur with options o: calibrate, build, reconstruct,
 * correct biases. */
static pare_status ptq_once(compress_ctx *c, pare_dataset *ds, const pare_quant_opts *o,
                            pare_graph **q, pare_quant_calib **calib, pare_quant_report **rep,
                            pare_error *err)
{
    const pare_progress *p = c->opts->progress;
    pare_status rc = PARE_OK;

    *q = NULL;
    *calib = NULL;
    *rep = NULL;
    if (!o->weight_only || o->bias_correct || o->recon_level != PARE_QUANT_RECON_NONE)
        rc = pare_quant_calibrate(c->cur, ds, o, p, calib, err);
    if (rc == PARE_OK)
        rc = pare_quant_build(c->cur, *calib, o, q, rep, err);
    if (rc == PARE_OK && o->recon_level != PARE_QUANT_RECON_NONE)
        rc = pare_quant_reconstruct(c->cur, *q, ds, o, *rep, p, err);
    if (rc == PARE_OK && o->bias_correct)
        rc = pare_quant_bias_correct(c->cur, *q, ds, o, *rep, p, err);
    if (rc != PARE_OK) {
        if (rc == PARE_ECANCELED)
            c->canceled = true;
        pare_graph_free(*q);
        pare_quant_calib_free(*calib);
        pare_quant_report_free(*rep);
        *q = NULL;
        *calib = NULL;
        *rep = NULL;
    }
    return rc;
}

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static double uniform01(uint64_t *s)
{
    return (double)(splitmix64(s) >> 11) * (1.0 / 9007199254740992.0);
}

static pare_status finish(compress_ctx *c, pare_graph *q, pare_quant_calib *calib,
                          pare_quant_report *rep, const pare_quant_opts *o, pare_error *err)
{
    pare_status rc = PARE_OK;

    for (int i = 0; i < rep->n_warnings && rc == PARE_OK; i++)
        rc = compress_warn(c, err, "QuantPost: %s", rep->warnings[i]);
    c->rep->quantized = true;
    c->rep->n_quantized_nodes = rep->n_quantized_nodes;
    pare_graph_free(c->cur);
    c->cur = q;
    pare_quant_calib_free(c->calib);
    c->calib = calib;
    c->qopts = *o;
    /* the borrowed name lists of the options stay valid: they are the job's;
       the regions array does not outlive compress_ptq */
    c->qopts.regions = NULL;
    c->qopts.n_regions = 0;
    c->qopts.tensor_bits = NULL;
    c->qopts.n_tensor_bits = 0;
    pare_quant_report_free(rep);
    return rc;
}

pare_status compress_ptq(compress_ctx *c, pare_error *err)
{
    const pare_job_hpo *h = &c->job->hpo;
    pare_dataset *ds = NULL;
    pare_quant_opts o;
    pare_graph *q = NULL, *best_q = NULL;
    pare_quant_calib *calib = NULL, *best_calib = NULL;
    pare_quant_report *rep = NULL, *best_rep = NULL;
    pare_quant_opts best_o;
    pare_quant_region *regs = NULL;
    pare_quant_bits *bits = NULL;
    char *wheres = NULL;
    double t0 = compress_now(), best = -INFINITY;
    uint64_t rng = (uint64_t)c->job->global.seed * 0x2545f4914f6cdd1dULL + 17;
    pare_status rc;

    ptq_opts(c, &o);
    rc = ptq_regions(c, &o, &regs, &wheres, err);
    if (rc == PARE_OK)
        rc = quant_bits_from_job(&c->job->quant_post.tensor_bits, &o, &bits, err);
    if (rc == PARE_OK)
        rc = pare_quant_opts_check(&o, err);
    if (rc == PARE_OK)
        rc = compress_open_data(c, c->data_spec, (int)c->job->quant_post.batch_size, false, 0, &ds, err);
    if (rc != PARE_OK) {
        pare_free(regs);
        pare_free(wheres);
        pare_free(bits);
        return rc;
    }
    if (!h->meta.present) {
        rc = ptq_once(c, ds, &o, &q, &calib, &rep, err);
        if (rc == PARE_OK) {
            compress_stage(c, "calibrate", compress_now() - t0,
                           "algo %s, W%d A%d, %d batches of %d%s%s, %d nodes quantized",
                           pare_quant_algo_name(o.algo), o.weight_bits, o.activation_bits,
                           o.batch_nums, o.batch_size, o.bias_correct ? ", bias correction" : "",
                           o.recon_level == PARE_QUANT_RECON_LAYER_WISE ? ", layer-wise reconstruction"
                           : o.recon_level == PARE_QUANT_RECON_REGION_WISE
                               ? ", region-wise reconstruction" : "",
                           rep->n_quantized_nodes);
            rc = finish(c, q, calib, rep, &o, err);
        }
        pare_dataset_free(ds);
        pare_free(regs);
        pare_free(wheres);
        pare_free(bits);
        return rc;
    }
    if (!c->eval_ds) {
        pare_dataset_free(ds);
        pare_free(regs);
        pare_free(wheres);
        pare_free(bits);
        char where[256];
        return pare_fail(err, PARE_EINPUT, compress_where(c, &h->meta, where, sizeof where),
                         "HyperParameterOptimization needs evaluation data (Global.eval_data or "
                         "data)");
    }
    c->rep->trials = pare_calloc((size_t)h->max_quant_count, sizeof *c->rep->trials);
    if (!c->rep->trials) {
        pare_dataset_free(ds);
        pare_free(regs);
        pare_free(wheres);
        pare_free(bits);
        return pare_fail(err, PARE_ENOMEM, NULL, "out of memory");
    }
    for (long i = 0; i < h->max_quant_count && rc == PARE_OK; i++) {
        pare_compress_trial *t = &c->rep->trials[i];
        pare_quant_opts to = o;
        double ts = compress_now();
        char detail[160];

        t->algo = h->ptq_algo.n ? h->ptq_algo.v[splitmix64(&rng) % (uint64_t)h->ptq_algo.n]
                                : (int)c->job->quant_post.algo;
        t->bias_correct = h->bias_correct.n
                              ? h->bias_correct.v[splitmix64(&rng) % (uint64_t)h->bias_correct.n]
                              : o.bias_correct;
        t->weight_quantize_type =
            h->weight_quantize_type.n
                ? h->weight_quantize_type.v[splitmix64(&rng) % (uint64_t)h->weight_quantize_type.n]
                : (int)c->job->quant_post.weight_quantize_type;
        t->hist_percent = h->hist_percent.n >= 2
                              ? h->hist_percent.v[0] + (h->hist_percent.v[1] - h->hist_percent.v[0]) *
                                                           uniform01(&rng)
                              : o.hist_percent;
        t->batch_nums = h->batch_num.n >= 2
                            ? (int)(h->batch_num.v[0] +
                                    (long)(splitmix64(&rng) %
                                           (uint64_t)(h->batch_num.v[1] - h->batch_num.v[0] + 1)))
                            : o.batch_nums;
        to.algo = algo_of(t->algo);
        to.bias_correct = t->bias_correct;
        to.weight_quantize_type = t->weight_quantize_type == PARE_JOB_WQ_ABS_MAX
                                      ? PARE_QUANT_W_ABS_MAX : PARE_QUANT_CHANNEL_WISE_ABS_MAX;
        to.hist_percent = t->hist_percent;
        to.batch_nums = t->batch_nums;
        rc = ptq_once(c, ds, &to, &q, &calib, &rep, err);
        if (rc == PARE_OK)
            rc = compress_eval(c, q, &t->metric, err);
        t->seconds = compress_now() - ts;
        if (rc == PARE_OK) {
            c->rep->n_trials = (int)i + 1;
            if (t->metric > best || !best_q) {
                best = isnan(t->metric) ? -INFINITY : t->metric;
                pare_graph_free(best_q);
                pare_quant_calib_free(best_calib);
                pare_quant_report_free(best_rep);
                best_q = q;
                best_calib = calib;
                best_rep = rep;
                best_o = to;
                c->rep->best_trial = (int)i;
            } else {
                pare_graph_free(q);
                pare_quant_calib_free(calib);
                pare_quant_report_free(rep);
            }
            q = NULL;
            calib = NULL;
            rep = NULL;
            snprintf(detail, sizeof detail, "trial %ld: %s%s, %s", i + 1,
                     pare_quant_algo_name(to.algo), to.bias_correct ? " +bias correction" : "",
                     c->rep->metric_name);
            if (!compress_event(c, "hpo", i + 1, h->max_quant_count, "trial", t->metric, detail))
                rc = pare_fail(err, PARE_ECANCELED, NULL, "search canceled after %ld trials", i + 1);
        }
    }
    pare_dataset_free(ds);
    pare_free(regs);
    pare_free(wheres);
    pare_free(bits);
    if (rc == PARE_OK) {
        const pare_compress_trial *bt = &c->rep->trials[c->rep->best_trial];
        compress_stage(c, "hpo", compress_now() - t0,
                       "%d trials, best #%d: %s%s, hist_percent %.5g, %d batches", c->rep->n_trials,
                       c->rep->best_trial, pare_quant_algo_name(algo_of(bt->algo)),
                       bt->bias_correct ? " +bias correction" : "", bt->hist_percent, bt->batch_nums);
        rc = finish(c, best_q, best_calib, best_rep, &best_o, err);
        return rc;
    }
    pare_graph_free(best_q);
    pare_quant_calib_free(best_calib);
    pare_quant_report_free(best_rep);
    return rc;
}
