/* Losses and their gradients (see pare/loss.h). Sums run in double so a
 * loss over a large batch does not depend on float rounding order. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "pare/alloc.h"
#include "pare/loss.h"

/* ---- names ------------------------------------------------------------------ */

static const char *const loss_names[PARE_LOSS_KIND_COUNT] = {
    [PARE_LOSS_CROSS_ENTROPY] = "cross_entropy",
    [PARE_LOSS_SOFT_LABEL] = "soft_label",
    [PARE_LOSS_L2] = "l2",
    [PARE_LOSS_COSINE] = "cosine",
    [PARE_LOSS_FSP] = "fsp",
};

/* Every accepted spelling, for parsing and did-you-mean. */
static const struct {
    const char *name;
    pare_loss_kind kind;
} loss_spellings[] = {
    { "cross_entropy", PARE_LOSS_CROSS_ENTROPY },
    { "ce", PARE_LOSS_CROSS_ENTROPY },
    { "soft_label", PARE_LOSS_SOFT_LABEL },
    { "l2", PARE_LOSS_L2 },
    { "mse", PARE_LOSS_L2 },
    { "cosine", PARE_LOSS_COSINE },
    { "fsp", PARE_LOSS_FSP },
};
#define N_SPELLINGS ((int)(sizeof loss_spellings / sizeof loss_spellings[0]))

const char *pare_loss_kind_name(pare_loss_kind kind)
{
    if ((int)kind < 0 || (int)kind >= PARE_LOSS_KIND_COUNT)
        return "?";
    return loss_names[kind];
}

pare_status pare_loss_kind_parse(const char *name, pare_loss_kind *kind, pare_error *err)
{
    const char *cands[N_SPELLINGS];
    const char *guess;

    for (int i = 0; i < N_SPELLINGS; i++) {
        cands[i] = loss_spellings[i].name;
        if (name && strcasecmp(name, loss_spellings[i].name) == 0) {
            *kind = loss_spellings[i].kind;
            return PARE_OK;
        }
    }
    pare_fail(err, PARE_EINPUT, NULL, "unknown loss '%s'", name ? name : "");
    guess = name ? pare_closest_word(name, cands, N_SPELLINGS) : NULL;
    if (guess)
        pare_error_hint(err, "did you mean '%s'?", guess);
    else
        pare_error_hint(err, "the losses are cross_entropy, soft_label, l2 (mse), cosine, fsp");
    return PARE_EINPUT;
}

/* ---- argument checks ------------------------------------------------------- */

static pare_status need_f32(const char *loss, const char *what, const pare_tensor *t,
                            pare_error *err)
{
    if (!t || !t->data)
        return pare_fail(err, PARE_EUNSUPPORTED, NULL, "%s: %s has no data", loss, what);
    if (t->dtype != PARE_F32)
        return pare_fail(err, PARE_EUNSUPPORTED, NULL, "%s: %s is %s, expected float32", loss,
                         what, pare_dtype_name(t->dtype));
    return PARE_OK;
}

static pare_status need_same_shape(const char *loss, const char *what_a, const pare_tensor *a,
                                   const char *what_b, const pare_tensor *b, pare_error *err)
{
    char sa[96], sb[96];

    if (pare_tensor_same_shape(a, b))
        return PARE_OK;
    pare_shape_format(a->ndim, a->dims, sa, sizeof sa);
    pare_shape_format(b->ndim, b->dims, sb, sizeof sb);
    return pare_fail(err, PARE_EINPUT, NULL, "%s: shape mismatch: %s %s vs %s %s", loss, what_a,
                     sa, what_b, sb);
}

/* A gradient buffer, when given, must be float32 with the input's shape. */
static pare_status need_grad(const char *loss, const char *what, const pare_tensor *x,
                             const pare_tensor *dx, pare_error *err)
{
    char name[64];
    pare_status rc;

    if (!dx)
        return PARE_OK;
    snprintf(name, sizeof name, "gradient of %s", what);
    rc = need_f32(loss, name, dx, err);
    if (rc == PARE_OK)
        rc = need_same_shape(loss, what, x, name, dx, err);
    return rc;
}

/* ---- cross-entropy ---------------------------------------------------------- */

pare_status pare_loss_cross_entropy(const pare_tensor *logits, const int64_t *labels,
                                    float label_smoothing, float weight, double *loss,
                                    pare_tensor *dlogits, pare_error *err)
{
    const char *L = "cross_entropy";
    pare_status rc = need_f32(L, "logits", logits, err);
    int64_t B, C;
    double total = 0, eps = label_smoothing;

    if (rc == PARE_OK && logits->ndim != 2) {
        char s[96];
        pare_shape_format(logits->ndim, logits->dims, s, sizeof s);
        rc = pare_fail(err, PARE_EINPUT, NULL, "%s: logits must be (batch, classes), got %s", L, s);
    }
    if (rc == PARE_OK && !(label_smoothing >= 0.0f && label_smoothing <= 1.0f))
        rc = pare_fail(err, PARE_EINPUT, NULL, "%s: label_smoothing %g is outside [0, 1]", L,
                       (double)label_smoothing);
    if (rc == PARE_OK && !labels && logits->dims[0] > 0)
        rc = pare_fail(err, PARE_EINPUT, NULL, "%s: no labels", L);
    if (rc == PARE_OK)
        rc = need_grad(L, "logits", logits, dlogits, err);
    if (rc != PARE_OK)
        return rc;
    B = logits->dims[0];
    C = logits->dims[1];
    /* Labels first, so a bad label leaves the gradient untouched. */
    for (int64_t b = 0; b < B; b++) {
        if (labels[b] < 0 || labels[b] >= C) {
            pare_fail(err, PARE_EINPUT, NULL,
                      "%s: label %lld of row %lld is outside [0, %lld)", L,
                      (long long)labels[b], (long long)b, (long long)C);
            pare_error_hint(err, "the model has %lld classes; check the dataset's labels",
                            (long long)C);
            return PARE_EINPUT;
        }
    }
    for (int64_t b = 0; b < B; b++) {
        const float *x = pare_tensor_f32(logits) + b * C;
        double mx = -INFINITY, se = 0, lse, sum_logp = 0;
        for (int64_t c = 0; c < C; c++)
            mx = x[c] > mx ? x[c] : mx;
        if (!isfinite(mx))
            mx = 0; /* all -inf or a nan: let the nan/inf propagate through lse */
        for (int64_t c = 0; c < C; c++)
            se += exp((double)x[c] - mx);
        lse = mx + log(se);
        for (int64_t c = 0; c < C; c++)
            sum_logp += (double)x[c] - lse;
        /* -sum_c q_c log p_c = -(1 - eps) log p_y - eps / C sum_c log p_c */
        total += -(1.0 - eps) * ((double)x[labels[b]] - lse) - eps / (double)C * sum_logp;
        if (dlogits) {
            float *dx = pare_tensor_f32(dlogits) + b * C;
            double scale = (double)weight / (double)B;
            for (int64_t c = 0; c < C; c++) {
                double q = eps / (double)C + (c == labels[b] ? 1.0 - eps : 0.0);
                dx[c] += (float)(scale * (exp((double)x[c] - lse) - q));
            }
        }
    }
    *loss = B > 0 ? (double)weight * total / (double)B : 0.0;
    return PARE_OK;
}

/* ---- mse ---------------------------------------------------------------------- */

pare_status pare_loss_mse(const pare_tensor *pred, const pare_tensor *target, float weight,
                          double *loss, pare_tensor *dpred, pare_error *err)
{
    const char *L = "mse";
    pare_status rc = need_f32(L, "prediction", pred, err);
    int64_t n;
    double total = 0;

    if (rc == PARE_OK)
        rc = need_f32(L, "target", target, err);
    if (rc == PARE_OK)
        rc = need_same_shape(L, "prediction", pred, "target", target, err);
    if (rc == PARE_OK)
        rc = need_grad(L, "prediction", pred, dpred, err);
    if (rc != PARE_OK)
        return rc;
    n = pare_tensor_numel(pred);
    for (int64_t i = 0; i < n; i++) {
        double d = (double)pare_tensor_f32(pred)[i] - (double)pare_tensor_f32(target)[i];
        total += d * d;
        if (dpred)
            pare_tensor_f32(dpred)[i] += (float)(2.0 * (double)weight * d / (double)n);
    }
    *loss = n > 0 ? (double)weight * total / (double)n : 0.0;
    return PARE_OK;
}

/* ---- soft label (KL with temperature) --------------------------------------- */

/* log_softmax of x[c * stride], c < C, divided by T, into out[c]. */
static void log_softmax_strided(const float *x, int64_t C, int64_t stride, double T, double *out)
{
    double mx = -INFINITY, se = 0, lse;

    for (int64_t c = 0; c < C; c++) {
        out[c] = (double)x[c * stride] / T;
        mx = out[c] > mx ? out[c] : mx;
    }
    if (!isfinite(mx))
        mx = 0;
    for (int64_t c = 0; c < C; c++)
        se += exp(out[c] - mx);
    lse = mx + log(se);
    for (int64_t c = 0; c < C; c++)
        out[c] -= lse;
}

pare_status pare_loss_soft_label(const pare_tensor *teacher, const pare_tensor *student,
                                 float T, float weight, double *loss, pare_tensor *dstudent,
                                 pare_error *err)
{
    const char *L = "soft_label";
    pare_status rc = need_f32(L, "teacher", teacher, err);
    int64_t B, C, inner = 1;
    double *lp = NULL, total = 0, count;

    if (rc == PARE_OK)
        rc = need_f32(L, "student", student, err);
    if (rc == PARE_OK)
        rc = need_same_shape(L, "teacher", teacher, "student", student, err);
    if (rc == PARE_OK && teacher->ndim < 2) {
        char s[96];
        pare_shape_format(teacher->ndim, teacher->dims, s, sizeof s);
        rc = pare_fail(err, PARE_EINPUT, NULL,
                       "%s: needs (batch, classes, ...) values, got %s", L, s);
    }
    if (rc == PARE_OK && !(T > 0.0f))
        rc = pare_fail(err, PARE_EINPUT, NULL, "%s: temperature %g must be positive", L, (double)T);
    if (rc == PARE_OK)
        rc = need_grad(L, "student", student, dstudent, err);
    if (rc != PARE_OK)
        return rc;
    B = teacher->dims[0];
    C = teacher->dims[1];
    for (int d = 2; d < teacher->ndim; d++)
        inner *= teacher->dims[d];
    count = (double)B * (double)inner;
    lp = pare_alloc(sizeof(double) * 2 * (size_t)(C > 0 ? C : 1));
    if (!lp)
        return pare_fail(err, PARE_ENOMEM, NULL, "%s: out of memory", L);
    for (int64_t b = 0; b < B; b++) {
        for (int64_t k = 0; k < inner; k++) {
            int64_t off = b * C * inner + k;
            double *lt = lp, *ls = lp + C;
            log_softmax_strided(pare_tensor_f32(teacher) + off, C, inner, T, lt);
            log_softmax_strided(pare_tensor_f32(student) + off, C, inner, T, ls);
            for (int64_t c = 0; c < C; c++) {
                double p = exp(lt[c]);
                /* xlogy convention: a zero target probability adds nothing */
                if (p > 0)
                    total += p * (lt[c] - ls[c]);
            }
            if (dstudent) {
                float *ds = pare_tensor_f32(dstudent) + off;
                double scale = (double)weight * (double)T / count;
                for (int64_t c = 0; c < C; c++)
                    ds[c * inner] += (float)(scale * (exp(ls[c]) - exp(lt[c])));
            }
        }
    }
    pare_free(lp);
    *loss = count > 0 ? (double)weight * (double)T * (double)T * total / count : 0.0;
    return PARE_OK;
}

/* ---- cosine ------------------------------------------------------------------- */

#define COSINE_EPS 1e-8

pare_status pare_loss_cosine(const pare_tensor *teacher, const pare_tensor *student,
                             float weight, double *loss, pare_tensor *dstudent,
                             pare_error *err)
{
    const char *L = "cosine";
    pare_status rc = need_f32(L, "teacher", teacher, err);
    int64_t N, D;
    double total = 0;

    if (rc == PARE_OK)
        rc = need_f32(L, "student", student, err);
    if (rc == PARE_OK)
        rc = need_same_shape(L, "teacher", teacher, "student", student, err);
    if (rc == PARE_OK && teacher->ndim < 1)
        rc = pare_fail(err, PARE_EINPUT, NULL, "%s: needs a batch axis, got a scalar", L);
    if (rc == PARE_OK)
        rc = need_grad(L, "student", student, dstudent, err);
    if (rc != PARE_OK)
        return rc;
    N = teacher->dims[0];
    D = N > 0 ? pare_tensor_numel(teacher) / N : 0;
    for (int64_t n = 0; n < N; n++) {
        const float *t = pare_tensor_f32(teacher) + n * D, *s = pare_tensor_f32(student) + n * D;
        double dot = 0, tt = 0, ss = 0, nt, ns, cosv;
        for (int64_t i = 0; i < D; i++) {
            dot += (double)t[i] * s[i];
            tt += (double)t[i] * t[i];
            ss += (double)s[i] * s[i];
        }
        nt = fmax(sqrt(tt), COSINE_EPS);
        ns = fmax(sqrt(ss), COSINE_EPS);
        cosv = dot / (nt * ns);
        total += 1.0 - cosv;
        if (dstudent) {
            /* d cos / ds = t / (nt ns) - cos s / ns^2; the second term vanishes
               where the eps guard holds |s| constant */
            float *ds = pare_tensor_f32(dstudent) + n * D;
            double scale = -(double)weight / (double)N;
            double c2 = sqrt(ss) > COSINE_EPS ? cosv / (ns * ns) : 0.0;
            for (int64_t i = 0; i < D; i++)
                ds[i] += (float)(scale * ((double)t[i] / (nt * ns) - c2 * s[i]));
        }
    }
    *loss = N > 0 ? (double)weight * total / (double)N : 0.0;
    return PARE_OK;
}

/* ---- fsp ------------------------------------------------------------------------ */

static int64_t spatial_of(const pare_tensor *t)
{
    int64_t hw = 1;
    for (int d = 2; d < t->ndim; d++)
        hw *= t->dims[d];
    return hw;
}

/* G[i, j] = sum_hw a[i, hw] b[j, hw] / hw for one sample, in double. */
static void fsp_matrix(const float *a, const float *b, int64_t c1, int64_t c2, int64_t hw,
                       double *g)
{
    for (int64_t i = 0; i < c1; i++)
        for (int64_t j = 0; j < c2; j++) {
            double acc = 0;
            for (int64_t k = 0; k < hw; k++)
                acc += (double)a[i * hw + k] * b[j * hw + k];
            g[i * c2 + j] = acc / (double)hw;
        }
}

static pare_status fsp_check_pair(const char *L, const char *na, const pare_tensor *a,
                                  const char *nb, const pare_tensor *b, pare_error *err)
{
    char sa[96], sb[96];
    bool ok = a->ndim >= 3 && b->ndim == a->ndim && a->dims[0] == b->dims[0];

    for (int d = 2; ok && d < a->ndim; d++)
        ok = a->dims[d] == b->dims[d];
    if (ok)
        return PARE_OK;
    pare_shape_format(a->ndim, a->dims, sa, sizeof sa);
    pare_shape_format(b->ndim, b->dims, sb, sizeof sb);
    pare_fail(err, PARE_EINPUT, NULL, "%s: %s %s and %s %s need the same batch and spatial size",
              L, na, sa, nb, sb);
    pare_error_hint(err, "pick two layers of the same resolution, (N, C1, H, W) and (N, C2, H, W)");
    return PARE_EINPUT;
}

pare_status pare_loss_fsp(const pare_tensor *t_a, const pare_tensor *t_b,
                          const pare_tensor *s_a, const pare_tensor *s_b, float weight,
                          double *loss, pare_tensor *ds_a, pare_tensor *ds_b,
                          pare_error *err)
{
    const char *L = "fsp";
    pare_status rc = need_f32(L, "teacher first value", t_a, err);
    int64_t N, C1, C2, thw, shw;
    double *gt = NULL, *gs = NULL, total = 0, count;

    if (rc == PARE_OK)
        rc = need_f32(L, "teacher second value", t_b, err);
    if (rc == PARE_OK)
        rc = need_f32(L, "student first value", s_a, err);
    if (rc == PARE_OK)
        rc = need_f32(L, "student second value", s_b, err);
    if (rc == PARE_OK)
        rc = fsp_check_pair(L, "teacher", t_a, "teacher", t_b, err);
    if (rc == PARE_OK)
        rc = fsp_check_pair(L, "student", s_a, "student", s_b, err);
    if (rc == PARE_OK && (s_a->dims[0] != t_a->dims[0] || s_a->dims[1] != t_a->dims[1] ||
                          s_b->dims[1] != t_b->dims[1])) {
        char s1[96], s2[96], s3[96], s4[96];
        pare_shape_format(t_a->ndim, t_a->dims, s1, sizeof s1);
        pare_shape_format(t_b->ndim, t_b->dims, s2, sizeof s2);
        pare_shape_format(s_a->ndim, s_a->dims, s3, sizeof s3);
        pare_shape_format(s_b->ndim, s_b->dims, s4, sizeof s4);
        rc = pare_fail(err, PARE_EINPUT, NULL,
                       "%s: teacher %s x %s and student %s x %s give FSP matrices of different "
                       "shapes", L, s1, s2, s3, s4);
    }
    if (rc == PARE_OK)
        rc = need_grad(L, "student first value", s_a, ds_a, err);
    if (rc == PARE_OK)
        rc = need_grad(L, "student second value", s_b, ds_b, err);
    if (rc != PARE_OK)
        return rc;
    N = t_a->dims[0];
    C1 = t_a->dims[1];
    C2 = t_b->dims[1];
    thw = spatial_of(t_a);
    shw = spatial_of(s_a);
    count = (double)N * (double)C1 * (double)C2;
    gt = pare_alloc(sizeof(double) * (size_t)(C1 * C2 > 0 ? C1 * C2 : 1));
    gs = pare_alloc(sizeof(double) * (size_t)(C1 * C2 > 0 ? C1 * C2 : 1));
    if (!gt || !gs) {
        pare_free(gt);
        pare_free(gs);
        return pare_fail(err, PARE_ENOMEM, NULL, "%s: out of memory", L);
    }
    for (int64_t n = 0; n < N; n++) {
        const float *ta = pare_tensor_f32(t_a) + n * C1 * thw, *tb = pare_tensor_f32(t_b) + n * C2 * thw;
        const float *sa = pare_tensor_f32(s_a) + n * C1 * shw, *sb = pare_tensor_f32(s_b) + n * C2 * shw;
        fsp_matrix(ta, tb, C1, C2, thw, gt);
        fsp_matrix(sa, sb, C1, C2, shw, gs);
        for (int64_t e = 0; e < C1 * C2; e++) {
            double d = gt[e] - gs[e];
            total += d * d;
            /* gs now holds dL/dG_s = -2 weight (G_t - G_s) / count, pre-divided by hw */
            gs[e] = -2.0 * (double)weight * d / count / (double)shw;
        }
        if (ds_a) {
            float *da = pare_tensor_f32(ds_a) + n * C1 * shw;
            for (int64_t i = 0; i < C1; i++)
                for (int64_t k = 0; k < shw; k++) {
                    double acc = 0;
                    for (int64_t j = 0; j < C2; j++)
                        acc += gs[i * C2 + j] * sb[j * shw + k];
                    da[i * shw + k] += (float)acc;
                }
        }
        if (ds_b) {
            float *db = pare_tensor_f32(ds_b) + n * C2 * shw;
            for (int64_t j = 0; j < C2; j++)
                for (int64_t k = 0; k < shw; k++) {
                    double acc = 0;
                    for (int64_t i = 0; i < C1; i++)
                        acc += gs[i * C2 + j] * sa[i * shw + k];
                    db[j * shw + k] += (float)acc;
                }
        }
    }
    pare_free(gt);
    pare_free(gs);
    *loss = count > 0 ? (double)weight * total / count : 0.0;
    return PARE_OK;
}
