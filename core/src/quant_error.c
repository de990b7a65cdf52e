/* Which layer hurts: per-tensor quantization error of a QDQ graph against
 * its fp32 original (pare_quant_error_measure), streamed over batches. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pare/alloc.h"
#include "pare/quant.h"
#include "quant_internal.h"

/* Running sums of one row: x is the reference, y the quantized value. */
typedef struct err_acc {
    double xx, yy, xy, ee;
    int64_t n;
} err_acc;

static void acc_add(err_acc *a, const float *x, const float *y, int64_t n)
{
    double xx = 0, yy = 0, xy = 0, ee = 0;
    for (int64_t i = 0; i < n; i++) {
        double u = x[i], v = y[i], d = u - v;
        xx += u * u;
        yy += v * v;
        xy += u * v;
        ee += d * d;
    }
    a->xx += xx;
    a->yy += yy;
    a->xy += xy;
    a->ee += ee;
    a->n += n;
}

static void acc_get(const err_acc *a, pare_quant_error_row *r)
{
    r->n_values = a->n;
    r->mse = a->n ? a->ee / (double)a->n : 0;
    if (a->ee == 0)
        r->sqnr_db = INFINITY;
    else if (a->xx == 0)
        r->sqnr_db = -INFINITY;
    else
        r->sqnr_db = 10.0 * log10(a->xx / a->ee);
    if (a->xx == 0 && a->yy == 0)
        r->cosine = 1;
    else if (a->xx == 0 || a->yy == 0)
        r->cosine = 0;
    else
        r->cosine = a->xy / sqrt(a->xx * a->yy);
}

const char *pare_quant_error_kind_name(pare_quant_error_kind k)
{
    return k == PARE_QUANT_ERR_ACTIVATION ? "activation"
           : k == PARE_QUANT_ERR_WEIGHT   ? "weight"
                                          : "output";
}

void pare_quant_error_table_free(pare_quant_error_table *t)
{
    if (!t)
        return;
    for (int i = 0; i < t->n_rows; i++) {
        pare_free(t->rows[i].name);
        pare_free(t->rows[i].node);
    }
    pare_free(t->rows);
    pare_free(t);
}

/* Integer element i of a quantized weight as a number. */
static double int_at(const pare_tensor *q, int64_t i)
{
    switch (q->dtype) {
    case PARE_I8: return ((const int8_t *)q->data)[i];
    case PARE_U8: return ((const uint8_t *)q->data)[i];
    case PARE_I32: return ((const int32_t *)q->data)[i];
    default: return NAN;
    }
}

/* w vs DQ(q): scales per tensor, per channel along axis, or blocks of
 * block_size along axis (scale layout (outer, ceil(C / block), inner)). */
static pare_status weight_error(const pare_tensor *w, const pare_tensor *q,
                                const pare_quant_tensor *t, err_acc *a, const char *where,
                                pare_error *err)
{
    int64_t n = pare_tensor_numel(w), c = 1, inner = 1, s_c;
    const float *wf = pare_tensor_f32(w);

    if (w->dtype != PARE_F32 || pare_tensor_numel(q) != n || !t->n_scales)
        return pare_fail(err, PARE_EINPUT, where, "weight '%s' and its quantized form '%s' do "
                         "not match", t->name, t->stored_name);
    if (t->n_scales > 1) {
        if (t->axis < 0 || t->axis >= w->ndim)
            return pare_fail(err, PARE_EINPUT, where, "weight '%s' has %d scales but no axis",
                             t->name, t->n_scales);
        c = w->dims[t->axis];
        for (int d = t->axis + 1; d < w->ndim; d++)
            inner *= w->dims[d];
    }
    s_c = t->block_size > 0 ? (c + t->block_size - 1) / t->block_size : c;
    for (int64_t i = 0; i < n; i++) {
        int64_t s = 0;
        if (t->n_scales > 1) {
            int64_t ci = (i / inner) % c, o = i / (inner * c), in = i % inner;
            s = t->block_size > 0 ? (o * s_c + ci / t->block_size) * inner + in : ci;
        }
        if (s >= t->n_scales)
            return pare_fail(err, PARE_EINPUT, where, "weight '%s': scale layout does not match "
                             "its shape", t->name);
        float y = (float)((int_at(q, i) - t->zero_points[s]) * t->scales[s]);
        acc_add(a, &wf[i], &y, 1);
    }
    return PARE_OK;
}

/* Appends name to a tap list unless present. */
static void tap_add(const char **taps, int *n, const char *name)
{
    for (int i = 0; i < *n; i++)
        if (!strcmp(taps[i], name))
            return;
    taps[(*n)++] = name;
}

static int row_cmp(const void *pa, const void *pb)
{
    const pare_quant_error_row *a = pa, *b = pb;
    bool na = isnan(a->sqnr_db), nb = isnan(b->sqnr_db);
    if (na != nb)
        return na ? 1 : -1;
    if (!na && a->sqnr_db != b->sqnr_db)
        return a->sqnr_db < b->sqnr_db ? -1 : 1;
    if (a->kind != b->kind)
        return a->kind < b->kind ? -1 : 1;
    return strcmp(a->name, b->name);
}

/* First quantized node (in report order) reading value name in g. */
static const char *first_consumer(const pare_graph *g, const pare_quant_report *rep,
                                  const char *name)
{
    int v = pare_graph_find_value(g, name);
    if (v < 0)
        return NULL;
    for (int i = 0; i < rep->n_quantized_nodes; i++) {
        int n = pare_graph_find_node(g, rep->quantized_nodes[i]);
        if (n < 0)
            continue;
        for (int k = 0; k < g->nodes[n].n_inputs; k++)
            if (g->nodes[n].inputs[k] == v)
                return g->nodes[n].name;
    }
    return NULL;
}

pare_status pare_quant_error_measure(const pare_graph *g, const pare_graph *qdq,
                                     const pare_quant_report *rep, pare_dataset *ds,
                                     const pare_quant_opts *opts, int n_batches,
                                     const pare_progress *progress, pare_quant_error_table **out,
                                     pare_error *err)
{
    pare_quant_error_table *t = pare_calloc(1, sizeof *t);
    int max_rows = rep->n_tensors + 1;
    const char **gtaps = NULL, **qtaps = NULL;
    /* per row: the value names read in g (ref) and qdq (quantized); weights: NULL */
    const char **ref_name = NULL, **q_name = NULL;
    bool *ref_in_g = NULL;
    err_acc *acc = NULL;
    pare_exec *xg = NULL, *xq = NULL;
    pare_quant_opts o = *opts;
    int ng = 0, nq = 0, batch = 0, nb = 0;
    pare_status rc = PARE_OK;

    *out = NULL;
    for (int i = 0; i < rep->n_quantized_nodes; i++) {
        int n = pare_graph_find_node(g, rep->quantized_nodes[i]);
        max_rows += n >= 0 ? g->nodes[n].n_outputs : 0;
    }
    if (t)
        t->rows = pare_calloc((size_t)max_rows, sizeof *t->rows);
    gtaps = pare_calloc((size_t)max_rows, sizeof *gtaps);
    qtaps = pare_calloc((size_t)max_rows * 2, sizeof *qtaps);
    ref_name = pare_calloc((size_t)max_rows, sizeof *ref_name);
    q_name = pare_calloc((size_t)max_rows, sizeof *q_name);
    ref_in_g = pare_calloc((size_t)max_rows, sizeof *ref_in_g);
    acc = pare_calloc((size_t)max_rows, sizeof *acc);
    if (!t || !t->rows || !gtaps || !qtaps || !ref_name || !q_name || !ref_in_g || !acc) {
        rc = pare_fail(err, PARE_ENOMEM, NULL, "out of memory");
        goto out;
    }
    if (n_batches > 0)
        o.batch_nums = n_batches;
    quant_batches(ds, &o, &batch, &nb);
    if (nb < 1) {
        rc = pare_fail(err, PARE_EINPUT, pare_dataset_spec(ds), "the calibration dataset is empty");
        goto out;
    }
    /* rows: quantized tensors, then the outputs of quantized nodes */
    for (int i = 0; i < rep->n_tensors && rc == PARE_OK; i++) {
        const pare_quant_tensor *qt = &rep->tensors[i];
        pare_quant_error_row *r = &t->rows[t->n_rows];
        const char *node = first_consumer(g, rep, qt->name);
        if (qt->kind == PARE_QUANT_BIAS)
            continue;
        if (pare_graph_find_value(qdq, qt->qdq_name) < 0) {
            rc = pare_fail(err, PARE_EINPUT, qdq->path, "'%s' of the report is not a value of "
                           "the quantized model", qt->qdq_name);
            pare_error_hint(err, "pass the report pare_quant_build made with this model");
            break;
        }
        r->name = pare_strdup(qt->name);
        r->node = pare_strdup(node ? node : "");
        r->kind = qt->kind == PARE_QUANT_WEIGHT ? PARE_QUANT_ERR_WEIGHT : PARE_QUANT_ERR_ACTIVATION;
        r->bits = qt->bits;
        if (!r->name || !r->node) {
            t->n_rows++;
            rc = pare_fail(err, PARE_ENOMEM, NULL, "out of memory");
            break;
        }
        if (qt->kind == PARE_QUANT_WEIGHT) {
            int vw = pare_graph_find_value(g, qt->name), vq = pare_graph_find_value(qdq, qt->stored_name);
            if (vw < 0 || vq < 0 || !g->values[vw].init || !qdq->values[vq].init)
                rc = pare_fail(err, PARE_EINPUT, qdq->path, "weight '%s' or '%s' has no data",
                               qt->name, qt->stored_name);
            else
                rc = weight_error(g->values[vw].init, qdq->values[vq].init, qt,
                                  &acc[t->n_rows], qdq->path, err);
        } else {
            ref_name[t->n_rows] = qt->name;
            q_name[t->n_rows] = qt->qdq_name;
            tap_add(qtaps, &nq, qt->name);
            tap_add(qtaps, &nq, qt->qdq_name);
        }
        t->n_rows++;
    }
    for (int i = 0; i < rep->n_quantized_nodes && rc == PARE_OK; i++) {
        int n = pare_graph_find_node(g, rep->quantized_nodes[i]);
        if (n < 0)
            continue;
        for (int k = 0; k < g->nodes[n].n_outputs; k++) {
            int v = g->nodes[n].outputs[k];
            pare_quant_error_row *r = &t->rows[t->n_rows];
            if (v < 0 || pare_graph_find_value(qdq, g->values[v].name) < 0)
                continue;
            r->name = pare_strdup(g->values[v].name);
            r->node = pare_strdup(g->nodes[n].name);
            r->kind = PARE_QUANT_ERR_OUTPUT;
            ref_name[t->n_rows] = g->values[v].name;
            q_name[t->n_rows] = g->values[v].name;
            ref_in_g[t->n_rows] = true;
            t->n_rows++;
            if (!r->name || !r->node) {
                rc = pare_fail(err, PARE_ENOMEM, NULL, "out of memory");
                break;
            }
            tap_add(gtaps, &ng, g->values[v].name);
            tap_add(qtaps, &nq, g->values[v].name);
        }
    }
    if (rc == PARE_OK && ng > 0)
        rc = quant_exec_new(g, ds, batch, gtaps, ng, o.n_threads, &xg, err);
    if (rc == PARE_OK && nq > 0)
        rc = quant_exec_new(qdq, ds, batch, qtaps, nq, o.n_threads, &xq, err);
    if (rc == PARE_OK)
        pare_dataset_begin_epoch(ds, 0);
    for (int b = 0; b < nb && rc == PARE_OK && xq; b++) {
        pare_progress_event ev = {.stage = "error_table", .done = b + 1, .total = nb,
                                  .unit = "batch", .loss = NAN, .metric = NAN};
        rc = pare_dataset_fill(ds, (int64_t)b * batch, batch, pare_exec_input(xq, 0), NULL, err);
        if (rc == PARE_OK)
            rc = pare_exec_run(xq, err);
        if (rc == PARE_OK && xg)
            rc = pare_dataset_fill(ds, (int64_t)b * batch, batch, pare_exec_input(xg, 0), NULL, err);
        if (rc == PARE_OK && xg)
            rc = pare_exec_run(xg, err);
        for (int i = 0; i < t->n_rows && rc == PARE_OK; i++) {
            const pare_tensor *x, *y;
            if (!ref_name[i])
                continue;
            x = pare_exec_value(ref_in_g[i] ? xg : xq, ref_name[i]);
            y = pare_exec_value(xq, q_name[i]);
            if (!x || !y) {
                rc = pare_fail(err, PARE_EINTERNAL, qdq->path, "value '%s' was not kept",
                               !x ? ref_name[i] : q_name[i]);
                break;
            }
            if (x->dtype != PARE_F32 || y->dtype != PARE_F32 ||
                pare_tensor_numel(x) != pare_tensor_numel(y)) {
                /* not a float tensor of matching size: no row */
                ref_name[i] = NULL;
                t->rows[i].sqnr_db = NAN;
                continue;
            }
            acc_add(&acc[i], pare_tensor_f32(x), pare_tensor_f32(y), pare_tensor_numel(x));
        }
        if (rc == PARE_OK) {
            t->n_samples += batch;
            if (!pare_progress_report(progress, &ev))
                rc = pare_fail(err, PARE_ECANCELED, NULL, "error table canceled after %d of %d "
                               "batches", b + 1, nb);
        }
    }
    if (rc == PARE_OK) {
        int k = 0;
        t->n_batches = nb;
        for (int i = 0; i < t->n_rows; i++) {
            if (isnan(t->rows[i].sqnr_db)) { /* dropped above */
                pare_free(t->rows[i].name);
                pare_free(t->rows[i].node);
                continue;
            }
            acc_get(&acc[i], &t->rows[i]);
            t->rows[k++] = t->rows[i];
        }
        t->n_rows = k;
        qsort(t->rows, (size_t)t->n_rows, sizeof *t->rows, row_cmp);
    }
out:
    pare_exec_free(xg);
    pare_exec_free(xq);
    pare_free(gtaps);
    pare_free(qtaps);
    pare_free(ref_name);
    pare_free(q_name);
    pare_free(ref_in_g);
    pare_free(acc);
    if (rc == PARE_OK)
        *out = t;
    else
        pare_quant_error_table_free(t);
    return rc;
}

static void csv_field(FILE *f, const char *s)
{
    if (!strpbrk(s, ",\"\n")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

static void csv_double(FILE *f, double v)
{
    if (isinf(v))
        fputs(v > 0 ? "inf" : "-inf", f);
    else
        fprintf(f, "%.6g", v);
}

pare_status pare_quant_error_save_csv(const pare_quant_error_table *t, const char *path,
                                      pare_error *err)
{
    char tmp[4096];
    FILE *f;
    int bad;

    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    f = fopen(tmp, "w");
    if (!f)
        return pare_fail(err, PARE_EIO, path, "cannot write: %s", strerror(errno));
    fprintf(f, "kind,name,node,bits,sqnr_db,mse,cosine,n_values\n");
    for (int i = 0; i < t->n_rows; i++) {
        const pare_quant_error_row *r = &t->rows[i];
        fprintf(f, "%s,", pare_quant_error_kind_name(r->kind));
        csv_field(f, r->name);
        fputc(',', f);
        csv_field(f, r->node);
        fprintf(f, ",%d,", r->bits);
        csv_double(f, r->sqnr_db);
        fputc(',', f);
        csv_double(f, r->mse);
        fputc(',', f);
        fprintf(f, "%.9g,%lld\n", r->cosine, (long long)r->n_values);
    }
    bad = ferror(f);
    if ((fclose(f) != 0) | bad || rename(tmp, path) != 0) {
        remove(tmp);
        return pare_fail(err, PARE_EIO, path, "cannot write: %s", strerror(errno));
    }
    return PARE_OK;
}
