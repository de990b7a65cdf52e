/* Finite-difference check of an op's backward, for the op unit tests.
 *
 * gradcheck() runs one node through its registry row (infer, forward,
 * backward) and compares every requested input gradient with central
 * differences of L = sum_j <out_j, w_j> for fixed random weights w_j, so any
 * output layout is exercised. Include from one test file; it asserts with
 * cmocka (include <cmocka.h> and its prerequisites first). */
#ifndef PARE_TEST_GRADCHECK_H
#define PARE_TEST_GRADCHECK_H

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "pare/alloc.h"
#include "pare/op.h"

#define GC_MAX_IO 8

typedef struct gc_case {
    const char *op_type;
    int opset;
    const pare_attr *attrs;
    int n_attrs;
    pare_tensor *const *in;   /* float32 inputs are perturbed; NULL entries: omitted */
    int n_in;
    const bool *wants_grad;   /* per input: check its gradient */
    int n_out;                /* outputs the node declares */
    bool training;
    uint64_t seed;
    float eps;                /* perturbation; 0 = 1e-2 */
    double tol;               /* relative tolerance; 0 = 5e-3 */
    int max_checks;           /* elements checked per input (spread evenly); 0 = 64 */
} gc_case;

static uint64_t gc_rng(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Fills a float32 tensor with values in [lo, hi). */
static void gc_fill(pare_tensor *t, uint64_t seed, float lo, float hi)
{
    for (int64_t i = 0; i < pare_tensor_numel(t); i++)
        pare_tensor_f32(t)[i] = lo + (hi - lo) * (float)(gc_rng(&seed) >> 40) / (float)(1 << 24);
}

typedef struct gc_run {
    pare_node node;
    const pare_op_def *def;
    pare_op_ctx ctx;
    pare_tensor out_store[GC_MAX_IO];
    pare_tensor *outs[GC_MAX_IO];
    pare_tensor *w[GC_MAX_IO];
    pare_error err;
} gc_run;

static double gc_loss(gc_run *r)
{
    double l = 0.0;
    assert_int_equal(r->def->forward(&r->ctx), PARE_OK);
    for (int j = 0; j < r->ctx.n_out; j++) {
        if (!r->outs[j] || r->outs[j]->dtype != PARE_F32)
            continue;
        for (int64_t k = 0; k < pare_tensor_numel(r->outs[j]); k++)
            l += (double)pare_tensor_f32(r->outs[j])[k] * (double)pare_tensor_f32(r->w[j])[k];
    }
    return l;
}

/* Returns the largest relative error seen; fails the test above c->tol. */
static double gradcheck(const gc_case *c)
{
    gc_run r;
    pare_tensor *din[GC_MAX_IO] = {0}, *dout[GC_MAX_IO] = {0};
    uint64_t seed = 12345;
    double worst = 0.0, tol = c->tol > 0 ? c->tol : 5e-3;
    float eps = c->eps > 0 ? c->eps : 1e-2f;
    int max_checks = c->max_checks > 0 ? c->max_checks : 64;
    size_t scratch;
    char where[128];

    memset(&r, 0, sizeof r);
    r.node.name = (char *)"gc";
    r.node.op_type = (char *)c->op_type;
    r.node.domain = (char *)"";
    r.node.attrs = (pare_attr *)c->attrs;
    r.node.n_attrs = c->n_attrs;
    r.node.n_inputs = c->n_in;
    r.node.n_outputs = c->n_out;
    r.def = pare_op_find("", c->op_type, c->opset);
    assert_non_null(r.def);
    assert_non_null(r.def->backward);
    snprintf(where, sizeof where, "gradcheck %s", c->op_type);
    for (int j = 0; j < c->n_out; j++) {
        pare_tensor_view(&r.out_store[j], PARE_UNDEFINED, -1, NULL, NULL);
        r.outs[j] = &r.out_store[j];
    }
    r.ctx.node = &r.node;
    r.ctx.opset = c->opset;
    r.ctx.n_in = c->n_in;
    r.ctx.in = c->in;
    r.ctx.n_out = c->n_out;
    r.ctx.out = r.outs;
    r.ctx.n_threads = 1;
    r.ctx.where = where;
    r.ctx.err = &r.err;
    r.ctx.training = c->training;
    r.ctx.seed = c->seed;
    if (r.def->infer(&r.ctx) != PARE_OK)
        fail_msg("%s: infer failed: %s", c->op_type, r.err.msg);
    for (int j = 0; j < c->n_out; j++) {
        pare_tensor *o = pare_tensor_new(r.outs[j]->dtype, r.outs[j]->ndim, r.outs[j]->dims);
        assert_non_null(o);
        r.outs[j]->data = o->data;
        o->owns_data = false;
        pare_tensor_free(o);
        r.outs[j]->owns_data = false;
        if (r.outs[j]->dtype == PARE_F32) {
            r.w[j] = pare_tensor_new(PARE_F32, r.outs[j]->ndim, r.outs[j]->dims);
            gc_fill(r.w[j], seed + 100 + (uint64_t)j, -1.0f, 1.0f);
            dout[j] = r.w[j];
        }
    }
    scratch = r.ctx.scratch_bytes;
    if (r.def->backward_scratch && r.def->backward_scratch(&r.ctx) > scratch)
        scratch = r.def->backward_scratch(&r.ctx);
    r.ctx.scratch = scratch ? pare_alloc_aligned(scratch) : NULL;
    r.ctx.scratch_bytes = scratch;
    for (int i = 0; i < c->n_in; i++)
        if (c->wants_grad[i]) {
            din[i] = pare_tensor_new(c->in[i]->dtype, c->in[i]->ndim, c->in[i]->dims);
            assert_non_null(din[i]);
            /* poison: backward must overwrite */
            for (int64_t k = 0; k < pare_tensor_numel(din[i]); k++)
                pare_tensor_f32(din[i])[k] = NAN;
        }
    r.ctx.dout = dout;
    r.ctx.din = din;
    gc_loss(&r);
    if (r.def->backward(&r.ctx) != PARE_OK)
        fail_msg("%s: backward failed: %s", c->op_type, r.err.msg);
    for (int i = 0; i < c->n_in; i++) {
        int64_t n;
        int64_t step;
        if (!din[i])
            continue;
        n = pare_tensor_numel(c->in[i]);
        step = n > max_checks ? n / max_checks : 1;
        for (int64_t k = 0; k < n; k += step) {
            float *x = pare_tensor_f32(c->in[i]) + k;
            float saved = *x;
            double lp, lm, num, ana, err;
            *x = saved + eps;
            lp = gc_loss(&r);
            *x = saved - eps;
            lm = gc_loss(&r);
            *x = saved;
            num = (lp - lm) / (2.0 * (double)eps);
            ana = pare_tensor_f32(din[i])[k];
            /* relative, with a floor so float rounding of small gradients passes */
            err = fabs(num - ana) / fmax(0.05, fmax(fabs(num), fabs(ana)));
            if (!(err <= tol))
                fail_msg("%s: d(input %d)[%lld]: backward %.6g, finite differences %.6g",
                         c->op_type, i, (long long)k, ana, num);
            if (err > worst)
                worst = err;
        }
    }
    for (int i = 0; i < c->n_in; i++)
        pare_tensor_free(din[i]);
    for (int j = 0; j < c->n_out; j++) {
        pare_free(r.outs[j]->data);
        pare_tensor_free(r.w[j]);
    }
    pare_free(r.ctx.scratch);
    return worst;
}

#endif
