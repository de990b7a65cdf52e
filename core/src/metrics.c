/* Streaming accuracy and output similarity (see pare/metrics.h). */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "pare/metrics.h"

/* Rows (dims[0]) and values per row of a batch tensor; false when the
 * tensor cannot be read as F32 rows. */
static bool batch_rows(const pare_tensor *t, int64_t *rows, int64_t *cols)
{
    if (!t || t->dtype != PARE_F32 || !t->data || t->ndim < 1 || t->dims[0] < 0)
        return false;
    *rows = t->dims[0];
    *cols = t->dims[0] ? pare_tensor_numel(t) / t->dims[0] : 0;
    return true;
}

static int64_t rows_to_count(int64_t n, int64_t rows)
{
    return n < 0 ? rows : n;
}

/* ---- accuracy ------------------------------------------------------------ */

void pare_accuracy_init(pare_accuracy *a, int k)
{
    memset(a, 0, sizeof *a);
    a->k = k > 0 ? k : 5;
}

/* How many classes rank before `label` (see the header for the order). */
static int64_t label_rank(const float *row, int64_t c, int64_t label)
{
    float v = row[label];
    int64_t rank = 0;

    if (isnan(v))
        return c;
    for (int64_t j = 0; j < c; j++)
        if (row[j] > v || (row[j] == v && j < label))
            rank++;
    return rank;
}

pare_status pare_accuracy_add(pare_accuracy *a, const pare_tensor *logits,
                              const int64_t *labels, int64_t n, pare_error *err)
{
    int64_t rows, c;
    const float *x;
    char shape[96];

    if (!batch_rows(logits, &rows, &c) || c < 1)
        return pare_fail(err, PARE_EINPUT, "accuracy",
                         "logits must be a non-empty float32 tensor (batch, classes), got %s %s",
                         logits ? pare_dtype_name(logits->dtype) : "nothing",
                         logits ? pare_shape_format(logits->ndim, logits->dims, shape, sizeof shape) : "");
    n = rows_to_count(n, rows);
    if (n > rows)
        return pare_fail(err, PARE_EINPUT, "accuracy",
                         "%" PRId64 " samples requested but the logits hold %" PRId64, n, rows);
    if (n > 0 && !labels)
        return pare_fail(err, PARE_EINPUT, "accuracy", "accuracy needs labels");
    for (int64_t i = 0; i < n; i++)
        if (labels[i] < 0 || labels[i] >= c)
            return pare_fail(err, PARE_EINPUT, "accuracy",
                             "label %" PRId64 " of sample %" PRId64 " is out of range for %" PRId64
                             " classes", labels[i], i, c);
    x = pare_tensor_f32(logits);
    for (int64_t i = 0; i < n; i++) {
        int64_t rank = label_rank(x + i * c, c, labels[i]);
        a->top1 += rank < 1;
        a->topk += rank < a->k;
    }
    a->n += n;
    return PARE_OK;
}

void pare_accuracy_merge(pare_accuracy *into, const pare_accuracy *from)
{
    into->n += from->n;
    into->top1 += from->top1;
    into->topk += from->topk;
}

double pare_accuracy_top1(const pare_accuracy *a)
{
    return a->n ? (double)a->top1 / (double)a->n : 0.0;
}

double pare_accuracy_topk(const pare_accuracy *a)
{
    return a->n ? (double)a->topk / (double)a->n : 0.0;
}

/* ---- similarity ---------------------------------------------------------- */

void pare_similarity_init(pare_similarity *s)
{
    memset(s, 0, sizeof *s);
}

/* First index of the largest value; NaNs are skipped (-1 when all NaN). */
static int64_t first_argmax(const float *v, int64_t n)
{
    int64_t best = -1;

    for (int64_t i = 0; i < n; i++)
        if (!isnan(v[i]) && (best < 0 || v[i] > v[best]))
            best = i;
    return best;
}

static double cosine(double dot, double aa, double bb)
{
    if (aa == 0.0 && bb == 0.0)
        return 1.0;
    if (aa == 0.0 || bb == 0.0)
        return 0.0;
    return dot / (sqrt(aa) * sqrt(bb));
}

pare_status pare_similarity_add(pare_similarity *s, const pare_tensor *out,
                                const pare_tensor *ref, int64_t n, pare_error *err)
{
    int64_t rows, c, rrows, rc;
    const float *o, *r;
    char s1[96], s2[96];

    if (!batch_rows(out, &rows, &c) || !batch_rows(ref, &rrows, &rc))
        return pare_fail(err, PARE_EINPUT, "similarity",
                         "outputs and reference outputs must be float32 tensors with a batch dim");
    if (!pare_tensor_same_shape(out, ref))
        return pare_fail(err, PARE_EINPUT, "similarity",
                         "output shape %s differs from reference shape %s",
                         pare_shape_format(out->ndim, out->dims, s1, sizeof s1),
                         pare_shape_format(ref->ndim, ref->dims, s2, sizeof s2));
    n = rows_to_count(n, rows);
    if (n > rows)
        return pare_fail(err, PARE_EINPUT, "similarity",
                         "%" PRId64 " samples requested but the outputs hold %" PRId64, n, rows);
    o = pare_tensor_f32(out);
    r = pare_tensor_f32(ref);
    for (int64_t i = 0; i < n; i++) {
        const float *oi = o + i * c, *ri = r + i * c;
        double dot = 0, oo = 0, rr = 0, ee = 0, ae = 0, mx = s->max_abs_err;

        for (int64_t j = 0; j < c; j++) {
            double a = oi[j], b = ri[j], d = fabs(b - a);
            if (!isfinite(a))
                s->n_nonfinite++;
            if (!isfinite(b))
                s->n_nonfinite++;
            dot += a * b;
            oo += a * a;
            rr += b * b;
            ee += d * d;
            ae += d;
            if (isnan(d) || d > mx)
                mx = isnan(mx) ? mx : d;
        }
        s->max_abs_err = mx;
        s->cos_sum += cosine(dot, oo, rr);
        s->dot += dot;
        s->out_sq += oo;
        s->ref_sq += rr;
        s->err_sq += ee;
        s->abs_err_sum += ae;
        s->argmax_same += c > 0 && first_argmax(oi, c) == first_argmax(ri, c);
    }
    s->n_samples += n;
    s->n_values += n * c;
    return PARE_OK;
}

void pare_similarity_merge(pare_similarity *into, const pare_similarity *from)
{
    into->n_samples += from->n_samples;
    into->n_values += from->n_values;
    into->n_nonfinite += from->n_nonfinite;
    into->argmax_same += from->argmax_same;
    into->cos_sum += from->cos_sum;
    into->dot += from->dot;
    into->out_sq += from->out_sq;
    into->ref_sq += from->ref_sq;
    into->err_sq += from->err_sq;
    into->abs_err_sum += from->abs_err_sum;
    if (isnan(from->max_abs_err) || from->max_abs_err > into->max_abs_err)
        into->max_abs_err = isnan(into->max_abs_err) ? into->max_abs_err : from->max_abs_err;
}

void pare_similarity_get(const pare_similarity *s, pare_similarity_result *r)
{
    memset(r, 0, sizeof *r);
    if (!s->n_samples)
        return;
    r->n_samples = s->n_samples;
    r->cosine_mean = s->cos_sum / (double)s->n_samples;
    r->cosine_global = cosine(s->dot, s->out_sq, s->ref_sq);
    if (isnan(s->err_sq) || isnan(s->ref_sq))
        r->snr_db = NAN;
    else if (s->err_sq == 0.0)
        r->snr_db = INFINITY;
    else
        r->snr_db = 10.0 * log10(s->ref_sq / s->err_sq);
    r->max_abs_err = s->max_abs_err;
    r->mean_abs_err = s->n_values ? s->abs_err_sum / (double)s->n_values : 0.0;
    r->argmax_agree = (double)s->argmax_same / (double)s->n_samples;
}

char *pare_snr_format(double db, char *buf, size_t size)
{
    if (!size)
        return buf;
    if (isnan(db))
        snprintf(buf, size, "nan dB");
    else if (isinf(db))
        snprintf(buf, size, "%sinf dB", db > 0 ? "+" : "-");
    else
        snprintf(buf, size, "%.2f dB", db);
    return buf;
}
