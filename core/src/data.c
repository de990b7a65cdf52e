/* Datasets from data specs: normalisation, order and batches (see pare/data.h). */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pare/alloc.h"
#include "pare/data.h"

#define FMNIST_ENV "PARE_FASHION_MNIST"
#define FMNIST_MEAN 0.2860f
#define FMNIST_STD 0.3530f
#define SPEC_FORMS "fashion-mnist[:test|:train], idx:IMAGES[,LABELS], npy:FILE[,LABELS] or npz:FILE"

struct pare_dataset {
    char spec[2 * PARE_DATA_PATH_MAX + 16];
    pare_data_kind kind;
    pare_tensor *data;         /* raw samples, [N, ...] in the file's dtype */
    int64_t *labels;           /* N labels, NULL when unlabelled */
    int64_t n_classes;
    int64_t count;             /* samples after limit */
    int sample_ndim;
    int64_t sample_dims[PARE_MAX_DIMS];
    int64_t sample_numel;
    int64_t plane;             /* values per channel of a sample */
    float scale;
    int n_ch;                  /* 1 (scalar mean/std) or the channel count */
    float mean[PARE_DATA_MAX_CHANNELS];
    float std[PARE_DATA_MAX_CHANNELS];
    float *lut;                /* u8 data: n_ch x 256 converted values */
    bool shuffle;
    uint64_t seed;
    int batch;
    bool drop_last;
    int64_t *order;            /* count sample indices of the current epoch */
    int64_t cursor;            /* next_batch position */
};

/* ---- spec parsing ------------------------------------------------------------ */

static const char *const spec_kinds[] = { "fashion-mnist", "idx", "npy", "npz" };

static pare_status spec_copy(char *dst, const char *src, size_t n, const char *spec, pare_error *err)
{
    if (n >= PARE_DATA_PATH_MAX)
        return pare_fail(err, PARE_EINPUT, spec, "file name is too long");
    memcpy(dst, src, n);
    dst[n] = '\0';
    return PARE_OK;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

pare_status pare_data_spec_parse(const char *spec, pare_data_spec *out, pare_error *err)
{
    const char *colon, *rest, *comma;
    char kind[32];
    size_t klen;
    const char *guess;

    memset(out, 0, sizeof *out);
    if (!spec || !spec[0]) {
        pare_fail(err, PARE_EINPUT, "", "empty data spec");
        pare_error_hint(err, "expected " SPEC_FORMS);
        return PARE_EINPUT;
    }
    colon = strchr(spec, ':');
    klen = colon ? (size_t)(colon - spec) : strlen(spec);
    rest = colon ? colon + 1 : NULL;
    snprintf(kind, sizeof kind, "%.*s", (int)(klen < sizeof kind ? klen : sizeof kind - 1), spec);
    if (!strcmp(kind, "fashion-mnist") && klen == strlen("fashion-mnist")) {
        out->kind = PARE_DATA_FASHION_MNIST;
        if (!rest || !strcmp(rest, "test"))
            return PARE_OK;
        if (!strcmp(rest, "train")) {
            out->train = true;
            return PARE_OK;
        }
        {
            static const char *const splits[] = { "test", "train" };
            pare_fail(err, PARE_EINPUT, spec, "unknown fashion-mnist split '%s'", rest);
            guess = pare_closest_word(rest, splits, 2);
            if (guess)
                pare_error_hint(err, "did you mean '%s'?", guess);
            else
                pare_error_hint(err, "the splits are 'test' and 'train'");
        }
        return PARE_EINPUT;
    }
    for (int k = 1; k < 4; k++) {
        if (klen != 3 || strcmp(kind, spec_kinds[k]))
            continue;
        out->kind = (pare_data_kind)k;
        if (!rest || !rest[0] || rest[0] == ',') {
            pare_fail(err, PARE_EINPUT, spec, "missing file name after '%s:'", kind);
            pare_error_hint(err, "expected %s", k == 3 ? "npz:FILE" : k == 1 ? "idx:IMAGES[,LABELS]"
                                                                               : "npy:FILE[,LABELS]");
            return PARE_EINPUT;
        }
        comma = k == 3 ? NULL : strchr(rest, ',');
        if (comma && (!comma[1] || strchr(comma + 1, ',')))
            return pare_fail(err, PARE_EINPUT, spec,
                             comma[1] ? "too many files: expected %s" : "missing labels file after ',' in %s",
                             k == 1 ? "idx:IMAGES[,LABELS]" : "npy:FILE[,LABELS]");
        if (spec_copy(out->path, rest, comma ? (size_t)(comma - rest) : strlen(rest), spec, err) ||
            (comma && spec_copy(out->labels, comma + 1, strlen(comma + 1), spec, err)))
            return PARE_EINPUT;
        return PARE_OK;
    }
    pare_fail(err, PARE_EINPUT, spec, "unknown data source '%s'", kind);
    guess = pare_closest_word(kind, spec_kinds, 4);
    if (!colon && (ends_with(spec, ".npy") || ends_with(spec, ".npz")))
        pare_error_hint(err, "did you mean '%s:%s'?", ends_with(spec, ".npy") ? "npy" : "npz", spec);
    else if (guess)
        pare_error_hint(err, "did you mean '%s'?", guess);
    else
        pare_error_hint(err, "expected " SPEC_FORMS);
    return PARE_EINPUT;
}

/* ---- order: splitmix64 + Fisher-Yates ----------------------------------------- */

static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

/* Uniform in [0, bound) by rejection (bound > 0). */
static uint64_t uniform_below(uint64_t *state, uint64_t bound)
{
    uint64_t threshold = (0 - bound) % bound, r;

    do
        r = splitmix64(state);
    while (r < threshold);
    return r % bound;
}

void pare_dataset_begin_epoch(pare_dataset *ds, int64_t epoch)
{
    uint64_t state = ds->seed;

    for (int64_t i = 0; i < ds->count; i++)
        ds->order[i] = i;
    if (ds->shuffle) {
        state = splitmix64(&state) ^ (uint64_t)epoch;
        for (int64_t i = ds->count - 1; i > 0; i--) {
            int64_t j = (int64_t)uniform_below(&state, (uint64_t)i + 1), t = ds->order[i];
            ds->order[i] = ds->order[j];
            ds->order[j] = t;
        }
    }
    ds->cursor = 0;
}

/* ---- loading ----------------------------------------------------------------- */

static bool file_exists(const char *path)
{
    return access(path, R_OK) == 0;
}

/* Finds name[.gz] in dir; fills buf and returns true when found. */
static bool find_in_dir(const char *dir, const char *name, char *buf, size_t size)
{
    if ((size_t)snprintf(buf, size, "%s/%s.gz", dir, name) < size && file_exists(buf))
        return true;
    return (size_t)snprintf(buf, size, "%s/%s", dir, name) < size && file_exists(buf);
}

static pare_status locate_fashion_mnist(const pare_data_spec *spec, const char *search_dir,
                                        const char *where, char *images, char *labels,
                                        pare_error *err)
{
    const char *env = getenv(FMNIST_ENV);
    const char *dirs[2];
    const char *split = spec->train ? "train" : "t10k";
    char img_name[64], lbl_name[64], searched[512] = "";
    int nd = 0;
    size_t used = 0;

    if (env && env[0])
        dirs[nd++] = env;
    if (search_dir && search_dir[0])
        dirs[nd++] = search_dir;
    snprintf(img_name, sizeof img_name, "%s-images-idx3-ubyte", split);
    snprintf(lbl_name, sizeof lbl_name, "%s-labels-idx1-ubyte", split);
    for (int i = 0; i < nd; i++) {
        if (find_in_dir(dirs[i], img_name, images, PARE_DATA_PATH_MAX) &&
            find_in_dir(dirs[i], lbl_name, labels, PARE_DATA_PATH_MAX))
            return PARE_OK;
        if (used < sizeof searched)
            used += (size_t)snprintf(searched + used, sizeof searched - used, "%s%s%s%s",
                                     i ? ", " : "", dirs[i], dirs[i] == env ? " (from $" : "",
                                     dirs[i] == env ? FMNIST_ENV ")" : "");
    }
    pare_fail(err, PARE_EIO, where, "cannot find the Fashion-MNIST %s files '%s[.gz]' and '%s[.gz]'",
              spec->train ? "train" : "test", img_name, lbl_name);
    if (nd)
        pare_error_hint(err, "searched %s; set %s to the directory holding them", searched, FMNIST_ENV);
    else
        pare_error_hint(err, "%s is not set and no default directory was given", FMNIST_ENV);
    return PARE_EIO;
}

static bool is_integer_dtype(pare_dtype t)
{
    return t == PARE_U8 || t == PARE_I8 || t == PARE_U16 || t == PARE_I16 || t == PARE_I32 ||
           t == PARE_I64 || t == PARE_U32 || t == PARE_U64;
}

/* Takes labels from an integer tensor of n entries ([n] or [n, 1]). */
static pare_status take_labels(pare_dataset *ds, const pare_tensor *t, int64_t n, const char *where,
                               pare_error *err)
{
    char shape[96];

    if (!is_integer_dtype(t->dtype))
        return pare_fail(err, PARE_EINPUT, where, "labels must be integers, found %s",
                         pare_dtype_name(t->dtype));
    if (!((t->ndim == 1) || (t->ndim == 2 && t->dims[1] == 1)))
        return pare_fail(err, PARE_EINPUT, where, "labels must have shape [N], found %s",
                         pare_shape_format(t->ndim, t->dims, shape, sizeof shape));
    if (t->dims[0] != n)
        return pare_fail(err, PARE_EINPUT, where,
                         "label count %" PRId64 " does not match sample count %" PRId64, t->dims[0], n);
    ds->labels = pare_alloc((size_t)(n ? n : 1) * sizeof *ds->labels);
    if (!ds->labels)
        return pare_fail(err, PARE_ENOMEM, where, "out of memory reading labels");
    for (int64_t i = 0; i < n; i++) {
        int64_t v = pare_tensor_get_i64(t, i);
        if (v < 0 || (t->dtype == PARE_U64 && ((const uint64_t *)t->data)[i] > INT64_MAX))
            return pare_fail(err, PARE_EINPUT, where, "label %" PRId64 " of sample %" PRId64
                             " is negative", v, i);
        ds->labels[i] = v;
        if (v + 1 > ds->n_classes)
            ds->n_classes = v + 1;
    }
    return PARE_OK;
}

static pare_status load_idx(pare_dataset *ds, const char *images, const char *labels, pare_error *err)
{
    pare_tensor *lt = NULL;
    pare_status rc = pare_idx_load(images, &ds->data, err);

    if (rc == PARE_OK && ds->data->ndim != 3)
        rc = pare_fail(err, PARE_EINPUT, images,
                       "expected an IDX image file (N x rows x cols, magic 0x00000803), found %d dim%s",
                       ds->data->ndim, ds->data->ndim == 1 ? "s (labels?)" : "s");
    if (rc == PARE_OK && labels && labels[0]) {
        rc = pare_idx_load(labels, &lt, err);
        if (rc == PARE_OK && lt->ndim != 1)
            rc = pare_fail(err, PARE_EINPUT, labels,
                           "expected an IDX label file (N labels, magic 0x00000801), found %d dims",
                           lt->ndim);
        if (rc == PARE_OK)
            rc = take_labels(ds, lt, ds->data->dims[0], labels, err);
    }
    pare_tensor_free(lt);
    if (rc == PARE_OK) {
        /* [N, R, C] -> samples [1, R, C] */
        ds->sample_ndim = 3;
        ds->sample_dims[0] = 1;
        ds->sample_dims[1] = ds->data->dims[1];
        ds->sample_dims[2] = ds->data->dims[2];
    }
    return rc;
}

/* Samples are dims[1..] of data. */
static pare_status array_samples(pare_dataset *ds, const char *where, pare_error *err)
{
    if (ds->data->ndim < 1)
        return pare_fail(err, PARE_EINPUT, where, "samples must be an array [N, ...], found a scalar");
    if (!pare_dtype_size(ds->data->dtype) || ds->data->dtype == PARE_BF16)
        return pare_fail(err, PARE_EUNSUPPORTED, where, "%s samples are not supported",
                         pare_dtype_name(ds->data->dtype));
    ds->sample_ndim = ds->data->ndim - 1;
    for (int i = 1; i < ds->data->ndim; i++)
        ds->sample_dims[i - 1] = ds->data->dims[i];
    return PARE_OK;
}

static pare_status load_npy(pare_dataset *ds, const char *file, const char *labels, pare_error *err)
{
    pare_tensor *lt = NULL;
    pare_status rc = pare_npy_load(file, &ds->data, err);

    if (rc == PARE_OK)
        rc = array_samples(ds, file, err);
    if (rc == PARE_OK && labels && labels[0]) {
        rc = pare_npy_load(labels, &lt, err);
        if (rc == PARE_OK)
            rc = take_labels(ds, lt, ds->data->dims[0], labels, err);
    }
    pare_tensor_free(lt);
    return rc;
}

static const char *const npz_sample_names[] = { "x", "input", "inputs", "images", "data" };
static const char *const npz_label_names[] = { "y", "labels", "label", "targets" };

static int npz_pick(const pare_npz *z, const char *const *names, int n)
{
    for (int k = 0; k < n; k++)
        for (int i = 0; i < z->n; i++)
            if (!strcmp(z->names[i], names[k]))
                return i;
    return -1;
}

static pare_status load_npz(pare_dataset *ds, const char *file, pare_error *err)
{
    pare_npz *z = NULL;
    pare_status rc = pare_npz_load(file, &z, err);
    int xi = -1, yi = -1;

    if (rc == PARE_OK) {
        yi = npz_pick(z, npz_label_names, 4);
        xi = npz_pick(z, npz_sample_names, 5);
        if (xi < 0 && z->n == 1 + (yi >= 0))
            xi = yi == 0 ? 1 : 0;
        if (xi < 0) {
            char found[256] = "";
            size_t used = 0;
            for (int i = 0; i < z->n && used < sizeof found; i++)
                used += (size_t)snprintf(found + used, sizeof found - used, "%s'%s'", i ? ", " : "",
                                         z->names[i]);
            rc = pare_fail(err, PARE_EINPUT, file, "no samples array in the .npz (found %s)",
                           z->n ? found : "no arrays");
            pare_error_hint(err, "name the samples 'x' and the labels 'y'");
        }
    }
    if (rc == PARE_OK) {
        ds->data = z->arrays[xi];
        z->arrays[xi] = NULL;
        rc = array_samples(ds, file, err);
    }
    if (rc == PARE_OK && yi >= 0) {
        char where[sizeof err->where];
        snprintf(where, sizeof where, "%s: array '%s'", file, z->names[yi]);
        rc = take_labels(ds, z->arrays[yi], ds->data->dims[0], where, err);
    }
    pare_npz_free(z);
    return rc;
}

/* ---- normalisation ---------------------------------------------------------------- */

static pare_status set_norm(pare_dataset *ds, const pare_data_opts *o, const char *where,
                            pare_error *err)
{
    bool fmnist = ds->kind == PARE_DATA_FASHION_MNIST;
    int64_t channels = ds->sample_ndim ? ds->sample_dims[0] : 1;

    ds->scale = o->scale != 0.0f ? o->scale : ds->data->dtype == PARE_U8 ? 1.0f / 255.0f : 1.0f;
    if (!isfinite(ds->scale))
        return pare_fail(err, PARE_EINPUT, where, "scale must be a finite number");
    for (int which = 0; which < 2; which++) {
        int n = which ? o->n_std : o->n_mean;
        const char *name = which ? "std" : "mean";
        if (n < 0 || n > PARE_DATA_MAX_CHANNELS || (n > 1 && n != channels)) {
            pare_fail(err, PARE_EINPUT, where, "%s has %d values but samples have %" PRId64 " channel%s",
                      name, n, channels, channels == 1 ? "" : "s");
            if (channels == 1 || channels > PARE_DATA_MAX_CHANNELS)
                pare_error_hint(err, "give 1 value");
            else
                pare_error_hint(err, "give 1 value or %" PRId64, channels);
            return PARE_EINPUT;
        }
        if (n > 1)
            ds->n_ch = n;
    }
    if (!ds->n_ch)
        ds->n_ch = 1;
    ds->plane = ds->sample_numel / (ds->n_ch > 1 ? ds->n_ch : 1);
    for (int c = 0; c < ds->n_ch; c++) {
        ds->mean[c] = o->n_mean ? o->mean[o->n_mean == 1 ? 0 : c] : fmnist ? FMNIST_MEAN : 0.0f;
        ds->std[c] = o->n_std ? o->std[o->n_std == 1 ? 0 : c] : fmnist ? FMNIST_STD : 1.0f;
        if (!isfinite(ds->mean[c]))
            return pare_fail(err, PARE_EINPUT, where, "mean must be a finite number");
        if (ds->std[c] == 0.0f || !isfinite(ds->std[c]))
            return pare_fail(err, PARE_EINPUT, where, "std must be a non-zero finite number");
    }
    if (ds->data->dtype == PARE_U8) {
        ds->lut = pare_alloc((size_t)ds->n_ch * 256 * sizeof *ds->lut);
        if (!ds->lut)
            return pare_fail(err, PARE_ENOMEM, where, "out of memory");
        for (int c = 0; c < ds->n_ch; c++)
            for (int p = 0; p < 256; p++)
                ds->lut[c * 256 + p] =
                    (float)(((double)p * ds->scale - ds->mean[c]) / ds->std[c]);
    }
    return PARE_OK;
}

/* ---- open / free ------------------------------------------------------------------- */

static void canonical_spec(pare_dataset *ds, const pare_data_spec *s)
{
    static const char *const prefix[] = { "fashion-mnist", "idx", "npy", "npz" };

    if (s->kind == PARE_DATA_FASHION_MNIST)
        snprintf(ds->spec, sizeof ds->spec, "fashion-mnist:%s", s->train ? "train" : "test");
    else
        snprintf(ds->spec, sizeof ds->spec, "%s:%s%s%s", prefix[s->kind], s->path,
                 s->labels[0] ? "," : "", s->labels);
}

pare_status pare_dataset_open(const char *spec, const pare_data_opts *opts,
                              pare_dataset **out, pare_error *err)
{
    static const pare_data_opts defaults = {0};
    const pare_data_opts *o = opts ? opts : &defaults;
    pare_data_spec *s = pare_calloc(1, sizeof *s);
    pare_dataset *ds = pare_calloc(1, sizeof *ds);
    char *images = pare_alloc(PARE_DATA_PATH_MAX), *labels = pare_alloc(PARE_DATA_PATH_MAX);
    const char *where = opts && opts->where ? opts->where : spec;
    pare_status rc = PARE_OK;

    *out = NULL;
    if (!s || !ds || !images || !labels)
        rc = pare_fail(err, PARE_ENOMEM, where, "out of memory opening a dataset");
    if (rc == PARE_OK) {
        rc = pare_data_spec_parse(spec, s, err);
        if (rc != PARE_OK && o->where && err)
            snprintf(err->where, sizeof err->where, "%s", o->where);
    }
    if (rc == PARE_OK) {
        canonical_spec(ds, s);
        ds->kind = s->kind;
        where = o->where ? o->where : ds->spec;
        if (o->limit < 0 || o->batch_size < 0)
            rc = pare_fail(err, PARE_EINPUT, where, "%s must not be negative",
                           o->limit < 0 ? "limit" : "batch size");
    }
    if (rc == PARE_OK) {
        switch (s->kind) {
        case PARE_DATA_FASHION_MNIST:
            rc = locate_fashion_mnist(s, o->search_dir, where, images, labels, err);
            if (rc == PARE_OK)
                rc = load_idx(ds, images, labels, err);
            break;
        case PARE_DATA_IDX:
            rc = load_idx(ds, s->path, s->labels, err);
            break;
        case PARE_DATA_NPY:
            rc = load_npy(ds, s->path, s->labels, err);
            break;
        case PARE_DATA_NPZ:
            rc = load_npz(ds, s->path, err);
            break;
        }
    }
    if (rc == PARE_OK) {
        ds->sample_numel = pare_shape_numel(ds->sample_ndim, ds->sample_dims);
        ds->count = ds->data->dims[0];
        if (o->limit > 0 && o->limit < ds->count)
            ds->count = o->limit;
        ds->shuffle = o->shuffle;
        ds->seed = o->seed;
        ds->batch = o->batch_size ? o->batch_size : 1;
        ds->drop_last = o->drop_last;
        rc = set_norm(ds, o, where, err);
    }
    if (rc == PARE_OK) {
        ds->order = pare_alloc((size_t)(ds->count ? ds->count : 1) * sizeof *ds->order);
        if (!ds->order)
            rc = pare_fail(err, PARE_ENOMEM, where, "out of memory");
    }
    if (rc == PARE_OK)
        pare_dataset_begin_epoch(ds, 0);
    pare_free(s);
    pare_free(images);
    pare_free(labels);
    if (rc == PARE_OK)
        *out = ds;
    else
        pare_dataset_free(ds);
    return rc;
}

void pare_dataset_free(pare_dataset *ds)
{
    if (!ds)
        return;
    pare_tensor_free(ds->data);
    pare_free(ds->labels);
    pare_free(ds->lut);
    pare_free(ds->order);
    pare_free(ds);
}

/* ---- queries ------------------------------------------------------------------------- */

const char *pare_dataset_spec(const pare_dataset *ds) { return ds->spec; }
int64_t pare_dataset_count(const pare_dataset *ds) { return ds->count; }
int64_t pare_dataset_sample_numel(const pare_dataset *ds) { return ds->sample_numel; }
bool pare_dataset_has_labels(const pare_dataset *ds) { return ds->labels != NULL; }
int64_t pare_dataset_n_classes(const pare_dataset *ds) { return ds->n_classes; }
float pare_dataset_scale(const pare_dataset *ds) { return ds->scale; }
int pare_dataset_batch_size(const pare_dataset *ds) { return ds->batch; }

int pare_dataset_sample_shape(const pare_dataset *ds, int64_t *dims)
{
    for (int i = 0; i < ds->sample_ndim; i++)
        dims[i] = ds->sample_dims[i];
    return ds->sample_ndim;
}

int64_t pare_dataset_label(const pare_dataset *ds, int64_t i)
{
    return ds->labels && i >= 0 && i < ds->count ? ds->labels[i] : -1;
}

float pare_dataset_mean(const pare_dataset *ds, int c)
{
    return ds->mean[ds->n_ch > 1 && c >= 0 && c < ds->n_ch ? c : 0];
}

float pare_dataset_std(const pare_dataset *ds, int c)
{
    return ds->std[ds->n_ch > 1 && c >= 0 && c < ds->n_ch ? c : 0];
}

int64_t pare_dataset_index(const pare_dataset *ds, int64_t pos)
{
    return pos >= 0 && pos < ds->count ? ds->order[pos] : -1;
}

int64_t pare_dataset_n_batches(const pare_dataset *ds)
{
    return ds->drop_last ? ds->count / ds->batch : (ds->count + ds->batch - 1) / ds->batch;
}

/* ---- batches ------------------------------------------------------------------------- */

/* One sample (index i of the file) converted into dst[0..sample_numel). */
static void convert_sample(const pare_dataset *ds, int64_t i, float *dst)
{
    int64_t m = ds->sample_numel, base = i * m;

    if (ds->lut) {
        const uint8_t *src = (const uint8_t *)ds->data->data + base;
        for (int64_t j = 0; j < m; j++)
            dst[j] = ds->lut[(ds->n_ch > 1 ? j / ds->plane * 256 : 0) + src[j]];
        return;
    }
    for (int64_t j = 0; j < m; j++) {
        int c = ds->n_ch > 1 ? (int)(j / ds->plane) : 0;
        double v = ds->data->dtype == PARE_F32 ? ((const float *)ds->data->data)[base + j]
                                               : pare_tensor_get_f64(ds->data, base + j);
        dst[j] = (float)((v * ds->scale - ds->mean[c]) / ds->std[c]);
    }
}

pare_status pare_dataset_fill(const pare_dataset *ds, int64_t first, int64_t n,
                              pare_tensor *x, int64_t *labels, pare_error *err)
{
    char got[96], want[96];
    int64_t rows, per_row;
    float *dst;

    if (first < 0 || n < 0 || first > ds->count || n > ds->count - first)
        return pare_fail(err, PARE_EINPUT, ds->spec,
                         "samples %" PRId64 "..%" PRId64 " are out of range: the dataset has %" PRId64,
                         first, first + n - 1, ds->count);
    rows = x && x->ndim >= 1 ? x->dims[0] : 0;
    per_row = rows > 0 ? pare_tensor_numel(x) / rows : -1;
    if (!x || x->dtype != PARE_F32 || !x->data || rows < n || (rows && per_row != ds->sample_numel))
        return pare_fail(err, PARE_EINPUT, ds->spec,
                         "batch tensor %s %s does not fit %" PRId64 " samples of shape %s",
                         x ? pare_dtype_name(x->dtype) : "(none)",
                         x ? pare_shape_format(x->ndim, x->dims, got, sizeof got) : "",
                         n, pare_shape_format(ds->sample_ndim, ds->sample_dims, want, sizeof want));
    dst = pare_tensor_f32(x);
    for (int64_t r = 0; r < n; r++) {
        int64_t idx = ds->order[first + r];
        convert_sample(ds, idx, dst + r * ds->sample_numel);
        if (labels)
            labels[r] = ds->labels ? ds->labels[idx] : -1;
    }
    if (rows > n)
        memset(dst + n * ds->sample_numel, 0, (size_t)((rows - n) * ds->sample_numel) * sizeof *dst);
    return PARE_OK;
}

pare_status pare_dataset_next_batch(pare_dataset *ds, pare_tensor *x, int64_t *labels,
                                    int64_t *n, pare_error *err)
{
    int64_t left = ds->count - ds->cursor, take = left < ds->batch ? left : ds->batch;
    pare_status rc;

    *n = 0;
    if (take <= 0 || (take < ds->batch && ds->drop_last)) {
        ds->cursor = ds->count;
        return PARE_OK;
    }
    rc = pare_dataset_fill(ds, ds->cursor, take, x, labels, err);
    if (rc == PARE_OK) {
        ds->cursor += take;
        *n = take;
    }
    return rc;
}
