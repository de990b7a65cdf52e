/* Quantization options, scale/zero-point rules and streaming observers. */
#include <float.h>
#include <math.h>
#include <string.h>

#include "pare/alloc.h"
#include "pare/quant.h"

void pare_quant_opts_init(pare_quant_opts *o)
{
    memset(o, 0, sizeof *o);
    o->activation_bits = 8;
    o->weight_bits = 8;
    o->algo = PARE_QUANT_HIST;
    o->hist_percent = 0.9999;
    o->hist_bins = 2048;
    o->kl_quantized_bins = 128;
    o->batch_nums = 10;
    o->batch_size = 32;
    o->weight_quantize_type = PARE_QUANT_CHANNEL_WISE_ABS_MAX;
    o->onnx_format = true;
    o->preset = PARE_QUANT_PRESET_ONNXRUNTIME;
    o->recon_epochs = 20;
    o->recon_lr = 0.05;
}

static const char *const algo_names[] = {"abs_max", "avg", "hist", "KL", "mse"};
static const char *const preset_names[] = {"onnxruntime", "tensorrt", "u8s8"};

const char *pare_quant_algo_name(pare_quant_algo a)
{
    return (unsigned)a < 5 ? algo_names[a] : "?";
}

pare_status pare_quant_algo_parse(const char *s, pare_quant_algo *out, pare_error *err)
{
    const char *near;

    for (int i = 0; i < 5; i++)
        if (strcmp(s, algo_names[i]) == 0) {
            *out = (pare_quant_algo)i;
            return PARE_OK;
        }
    if (strcmp(s, "kl") == 0) {
        *out = PARE_QUANT_KL;
        return PARE_OK;
    }
    pare_fail(err, PARE_EINPUT, "algo", "unknown quantization algo '%s' "
              "(abs_max, avg, hist, KL, mse)", s);
    near = pare_closest_word(s, algo_names, 5);
    if (near)
        pare_error_hint(err, "did you mean '%s'?", near);
    return PARE_EINPUT;
}

const char *pare_quant_preset_name(pare_quant_preset p)
{
    return (unsigned)p < 3 ? preset_names[p] : "?";
}

pare_status pare_quant_preset_parse(const char *s, pare_quant_preset *out, pare_error *err)
{
    const char *near;

    for (int i = 0; i < 3; i++)
        if (strcmp(s, preset_names[i]) == 0) {
            *out = (pare_quant_preset)i;
            return PARE_OK;
        }
    pare_fail(err, PARE_EINPUT, "preset", "unknown quantization preset '%s' "
              "(onnxruntime, tensorrt, u8s8)", s);
    near = pare_closest_word(s, preset_names, 3);
    if (near)
        pare_error_hint(err, "did you mean '%s'?", near);
    return PARE_EINPUT;
}

pare_status pare_quant_opts_check(const pare_quant_opts *o, pare_error *err)
{
    if (o->activation_bits < 2 || o->activation_bits > 8)
        return pare_fail(err, PARE_EINPUT, "activation_bits",
                         "activation_bits %d is outside 2..8", o->activation_bits);
    if (o->weight_bits < 2 || o->weight_bits > 8)
        return pare_fail(err, PARE_EINPUT, "weight_bits", "weight_bits %d is outside 2..8",
                         o->weight_bits);
    for (int i = 0; i < o->n_tensor_bits; i++) {
        const pare_quant_bits *b = &o->tensor_bits[i];
        if (!b->name || !b->name[0])
            return pare_fail(err, PARE_EINPUT, "tensor_bits", "tensor_bits entry %d has no name",
                             i + 1);
        if (b->bits < 2 || b->bits > 8)
            return pare_fail(err, PARE_EINPUT, "tensor_bits", "tensor_bits: '%s' has %d bits, "
                             "outside 2..8", b->name, b->bits);
    }
    if ((unsigned)o->algo > PARE_QUANT_MSE)
        return pare_fail(err, PARE_EINPUT, "algo", "unknown algo %d", (int)o->algo);
    if (!(o->hist_percent > 0.0 && o->hist_percent <= 1.0)) {
        pare_fail(err, PARE_EINPUT, "hist_percent", "hist_percent %g is outside (0, 1]",
                  o->hist_percent);
        if (o->hist_percent > 1.0 && o->hist_percent <= 100.0)
            pare_error_hint(err, "a fraction: did you mean %g?", o->hist_percent / 100.0);
        return PARE_EINPUT;
    }
    if (o->hist_bins < 16 || o->hist_bins > (1 << 20))
        return pare_fail(err, PARE_EINPUT, "hist_bins", "hist_bins %d is outside 16..1048576",
                         o->hist_bins);
    if (o->kl_quantized_bins < 2 || o->kl_quantized_bins > o->hist_bins)
        return pare_fail(err, PARE_EINPUT, "kl_quantized_bins",
                         "kl_quantized_bins %d is outside 2..hist_bins (%d)",
                         o->kl_quantized_bins, o->hist_bins);
    if (o->batch_nums < 0)
        return pare_fail(err, PARE_EINPUT, "batch_nums", "batch_nums %d is negative", o->batch_nums);
    if (o->batch_size < 1)
        return pare_fail(err, PARE_EINPUT, "batch_size", "batch_size %d must be at least 1",
                         o->batch_size);
    if (o->block_size < 0 || (o->block_size > 0 && o->block_size < 2))
        return pare_fail(err, PARE_EINPUT, "block_size", "block_size %d must be 0 (off) or >= 2",
                         o->block_size);
    if ((unsigned)o->preset > PARE_QUANT_PRESET_U8S8)
        return pare_fail(err, PARE_EINPUT, "preset", "unknown preset %d", (int)o->preset);
    if (!o->onnx_format) {
        pare_fail(err, PARE_EUNSUPPORTED, "onnx_format",
                  "onnx_format false (Paddle's fake-quant ops) is not supported");
        pare_error_hint(err, "pare writes QuantizeLinear/DequantizeLinear pairs: set onnx_format: true");
        return PARE_EUNSUPPORTED;
    }
    return PARE_OK;
}

/* ---- scale / zero point ---- */

void pare_quant_qrange(int bits, bool is_signed, bool symmetric, bool reduce_range,
                       int32_t *qmin, int32_t *qmax)
{
    if (reduce_range && bits == 8) {
        /* ONNX Runtime's get_qmin_qmax_for_qType table */
        *qmin = is_signed ? -64 : 0;
        *qmax = is_signed ? 64 : 127;
        return;
    }
    if (reduce_range && bits > 2)
        bits--;
    if (!is_signed) {
        *qmin = 0;
        *qmax = (1 << bits) - 1;
    } else if (symmetric) {
        *qmax = (1 << (bits - 1)) - 1;
        *qmin = -*qmax;
    } else {
        *qmin = -(1 << (bits - 1));
        *qmax = (1 << (bits - 1)) - 1;
    }
}

void pare_quant_scale_zp(float lo, float hi, int32_t qmin, int32_t qmax, bool symmetric,
                         float *scale, int32_t *zero_point)
{
    double rmin = lo < 0.0f ? lo : 0.0, rmax = hi > 0.0f ? hi : 0.0;
    double s, z;

    if (symmetric) {
        double a = fabs(rmin) > fabs(rmax) ? fabs(rmin) : fabs(rmax);
        rmin = -a;
        rmax = a;
    }
    s = (rmax - rmin) / (double)(qmax - qmin);
    if (!(s >= (double)FLT_MIN) || !isfinite(s)) {
        *scale = 1.0f;
        *zero_point = 0;
        return;
    }
    *scale = (float)s;
    if (symmetric) {
        /* qmin = -qmax for signed symmetric ranges: zp is exactly 0; for an
           unsigned symmetric range it is the midpoint */
        z = qmin + qmax == 0 ? 0.0 : nearbyint((double)(qmin + qmax) / 2.0);
    } else {
        z = nearbyint((double)qmin - rmin / (double)*scale);
    }
    if (z < qmin)
        z = qmin;
    if (z > qmax)
        z = qmax;
    *zero_point = (int32_t)z;
}

/* ---- observers ---- */

struct pare_quant_observer {
    int64_t count, nonfinite;
    int64_t batches;
    double min, max;
    double sum_bmin, sum_bmax;  /* per-batch extremes, summed (avg) */
    int nbins;
    double *hist;               /* counts of |x| in [0, hist_max), nbins equal bins */
    double hist_max;            /* 0 until a non-zero value arrives */
};

pare_quant_observer *pare_quant_observer_new(int hist_bins)
{
    pare_quant_observer *o = pare_calloc(1, sizeof *o);

    if (!o)
        return NULL;
    if (hist_bins > 0) {
        o->hist = pare_calloc((size_t)hist_bins, sizeof *o->hist);
        if (!o->hist) {
            pare_free(o);
            return NULL;
        }
        o->nbins = hist_bins;
    }
    return o;
}

void pare_quant_observer_free(pare_quant_observer *o)
{
    if (!o)
        return;
    pare_free(o->hist);
    pare_free(o);
}

/* Doubles the histogram's range: bin pairs merge, so no count moves across
 * a boundary it did not already sit inside. */
static void hist_double(pare_quant_observer *o)
{
    int half = o->nbins / 2;

    for (int i = 0; i < half; i++)
        o->hist[i] = o->hist[2 * i] + o->hist[2 * i + 1];
    if (o->nbins % 2) {
        o->hist[half] = o->hist[o->nbins - 1];
        half++;
    }
    for (int i = half; i < o->nbins; i++)
        o->hist[i] = 0.0;
    o->hist_max *= 2.0;
}

void pare_quant_observer_add(pare_quant_observer *o, const float *x, int64_t n)
{
    float bmin = INFINITY, bmax = -INFINITY;
    int64_t good = 0;

    for (int64_t i = 0; i < n; i++) {
        float v = x[i];
        if (!isfinite(v)) {
            o->nonfinite++;
            continue;
        }
        bmin = v < bmin ? v : bmin;
        bmax = v > bmax ? v : bmax;
        good++;
    }
    if (!good)
        return;
    if (o->count == 0) {
        o->min = bmin;
        o->max = bmax;
    } else {
        o->min = bmin < o->min ? bmin : o->min;
        o->max = bmax > o->max ? bmax : o->max;
    }
    o->count += good;
    o->batches++;
    o->sum_bmin += bmin;
    o->sum_bmax += bmax;
    if (o->hist) {
        double babs = fabs((double)bmin) > fabs((double)bmax) ? fabs((double)bmin) : fabs((double)bmax);
        double inv;
        if (o->hist_max == 0.0 && babs > 0.0)
            o->hist_max = babs;
        while (babs > o->hist_max)
            hist_double(o);
        inv = o->hist_max > 0.0 ? (double)o->nbins / o->hist_max : 0.0;
        for (int64_t i = 0; i < n; i++) {
            double a = fabs((double)x[i]);
            int64_t b;
            if (!isfinite(a))
                continue;
            b = (int64_t)(a * inv);
            if (b >= o->nbins)
                b = o->nbins - 1;
            o->hist[b] += 1.0;
        }
    }
}

void pare_quant_observer_minmax(const pare_quant_observer *o, float *min, float *max)
{
    *min = o->count ? (float)o->min : 0.0f;
    *max = o->count ? (float)o->max : 0.0f;
}

int64_t pare_quant_observer_count(const pare_quant_observer *o) { return o->count; }
int64_t pare_quant_observer_nonfinite(const pare_quant_observer *o) { return o->nonfinite; }

/* Bins holding counts: the histogram's used prefix. */
static int hist_used(const pare_quant_observer *o)
{
    int used = o->nbins;
    while (used > 1 && o->hist[used - 1] == 0.0)
        used--;
    return used;
}

static double hist_percentile(const pare_quant_observer *o, double p)
{
    double total = 0.0, acc = 0.0, w = o->hist_max / o->nbins;

    for (int i = 0; i < o->nbins; i++)
        total += o->hist[i];
    for (int i = 0; i < o->nbins; i++) {
        acc += o->hist[i];
        if (acc >= p * total)
            return (i + 1) * w;
    }
    return o->hist_max;
}

/* KL(p || q) after TensorRT's smoothing: zeros of either get eps, taken
 * evenly from the non-zero bins so each still sums to its mass. */
static double kl_divergence(const double *p, const double *q, int n)
{
    const double eps = 1e-4;
    double psum = 0, qsum = 0, kl = 0;
    int pz = 0, qz = 0;

    for (int i = 0; i < n; i++) {
        psum += p[i];
        qsum += q[i];
        pz += p[i] == 0.0;
        qz += q[i] == 0.0;
    }
    if (psum <= 0 || qsum <= 0 || pz == n || qz == n)
        return INFINITY;
    {
        double pe = eps * pz / (double)(n - pz), qe = eps * qz / (double)(n - qz);
        for (int i = 0; i < n; i++) {
            double pi = p[i] == 0.0 ? eps : p[i] / psum - pe;
            double qi = q[i] == 0.0 ? eps : q[i] / qsum - qe;
            if (pi <= 0)
                continue;
            if (qi <= 0)
                qi = eps;
            kl += pi * log(pi / qi);
        }
    }
    return kl;
}

/* TensorRT's entropy calibration on the |x| histogram. */
static pare_status hist_kl(const pare_quant_observer *o, int nq, double *out, pare_error *err)
{
    int used = hist_used(o), best_i = used;
    double w = o->hist_max / o->nbins, best = INFINITY;
    double *p = pare_alloc((size_t)(used + 1) * sizeof *p);
    double *q = pare_alloc((size_t)(used + 1) * sizeof *q);

    if (!p || !q) {
        pare_free(p);
        pare_free(q);
        return pare_fail(err, PARE_ENOMEM, NULL, "out of memory computing the KL threshold");
    }
    if (used <= nq) {
        *out = used * w;
        pare_free(p);
        pare_free(q);
        return PARE_OK;
    }
    for (int i = nq; i <= used; i++) {
        double outliers = 0.0;
        for (int j = 0; j < i; j++)
            p[j] = o->hist[j];
        for (int j = i; j < used; j++)
            outliers += o->hist[j];
        p[i - 1] += outliers;
        /* q: hist[0:i] merged into nq groups (the remainder into the last),
           each group's sum spread over its non-zero bins */
        {
            int per = i / nq;
            for (int g = 0; g < nq; g++) {
                int start = g * per, end = g == nq - 1 ? i : start + per;
                double sum = 0.0;
                int nz = 0;
                for (int j = start; j < end; j++) {
                    sum += o->hist[j];
                    nz += o->hist[j] != 0.0;
                }
                for (int j = start; j < end; j++)
                    q[j] = o->hist[j] != 0.0 ? sum / nz : 0.0;
            }
        }
        {
            double kl = kl_divergence(p, q, i);
            if (kl < best) {
                best = kl;
                best_i = i;
            }
        }
    }
    *out = best_i * w;
    pare_free(p);
    pare_free(q);
    return PARE_OK;
}

/* The threshold t minimising the expected squared error of quantizing |x|
 * with `levels` steps over [0, t]: rounding error step^2/12 inside, (|x|-t)^2
 * for the clipped tail (bin centres stand for their values). */
static double hist_mse(const pare_quant_observer *o, double levels)
{
    int used = hist_used(o);
    double w = o->hist_max / o->nbins, best = INFINITY, best_t = used * w;
    double tail_n = 0, tail_s = 0, tail_s2 = 0, in_n = 0;

    for (int i = 0; i < used; i++)
        in_n += o->hist[i];
    /* walk t down from the top: bins above t move to the tail */
    for (int i = used; i >= 1; i--) {
        double t = i * w, step = t / levels;
        double e = in_n * step * step / 12.0 + tail_s2 - 2.0 * t * tail_s + t * t * tail_n;
        if (e < best) {
            best = e;
            best_t = t;
        }
        {
            double c = (i - 0.5) * w, h = o->hist[i - 1];
            in_n -= h;
            tail_n += h;
            tail_s += h * c;
            tail_s2 += h * c * c;
        }
    }
    return best_t;
}

pare_status pare_quant_observer_range(const pare_quant_observer *o, const pare_quant_opts *opts,
                                      int bits, float *lo, float *hi, pare_error *err)
{
    double t = 0.0;
    pare_status rc = PARE_OK;

    *lo = o->count ? (float)o->min : 0.0f;
    *hi = o->count ? (float)o->max : 0.0f;
    if (!o->count)
        return PARE_OK;
    switch (opts->algo) {
    case PARE_QUANT_ABS_MAX:
        return PARE_OK;
    case PARE_QUANT_AVG:
        *lo = (float)(o->sum_bmin / (double)o->batches);
        *hi = (float)(o->sum_bmax / (double)o->batches);
        return PARE_OK;
    default:
        break;
    }
    if (!o->hist)
        return pare_fail(err, PARE_EINPUT, NULL, "algo '%s' needs a histogram the observer "
                         "does not keep", pare_quant_algo_name(opts->algo));
    if (o->hist_max == 0.0)
        return PARE_OK; /* all zeros */
    if (opts->algo == PARE_QUANT_HIST) {
        t = hist_percentile(o, opts->hist_percent);
    } else if (opts->algo == PARE_QUANT_KL) {
        /* kl_quantized_bins counts the levels of a signed symmetric grid on
           [-t, t]; an asymmetric grid puts all its levels on [0, t] for a
           one-sided tensor (ReLU outputs), so it models twice as many */
        int nq = opts->kl_quantized_bins;
        if (o->min >= 0.0 && opts->preset != PARE_QUANT_PRESET_TENSORRT)
            nq = 2 * nq < o->nbins ? 2 * nq : o->nbins;
        rc = hist_kl(o, nq, &t, err);
    } else {
        /* one-sided tensors (ReLU outputs) spend all levels on [0, t]; two-
           sided ones about half */
        double levels = o->min >= 0.0 ? (double)((1 << bits) - 1) : (double)((1 << (bits - 1)) - 1);
        t = hist_mse(o, levels);
    }
    if (rc != PARE_OK)
        return rc;
    if (-t > o->min)
        *lo = (float)-t;
    if (t < o->max)
        *hi = (float)t;
    return PARE_OK;
}
