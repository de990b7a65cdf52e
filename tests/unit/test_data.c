/* IDX files, data specs, datasets: normalisation, order, batches, errors, and
 * the full Fashion-MNIST dataset. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <zlib.h>

#include "pare/alloc.h"
#include "pare/data.h"

#define SAMPLE_DIR PARE_TEST_DATA "/fmnist-sample"
#define SAMPLE_IMAGES SAMPLE_DIR "/t10k-images-idx3-ubyte.gz"
#define SAMPLE_LABELS SAMPLE_DIR "/t10k-labels-idx1-ubyte.gz"

static char tmpdir[64];

static int setup(void **state)
{
    (void)state;
    unsetenv("PARE_FASHION_MNIST");
    snprintf(tmpdir, sizeof tmpdir, "/tmp/pare-data-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    DIR *d = opendir(tmpdir);
    struct dirent *e;
    char p[512];
    (void)state;

    while (d && (e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            snprintf(p, sizeof p, "%s/%s", tmpdir, e->d_name);
            unlink(p);
        }
    if (d)
        closedir(d);
    return rmdir(tmpdir);
}

static const char *tmp(const char *name)
{
    static char buf[4][256];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

static void write_bytes(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static void write_gz(const char *path, const void *data, size_t len)
{
    gzFile g = gzopen(path, "wb");
    assert_non_null(g);
    assert_int_equal(gzwrite(g, data, (unsigned)len), (int)len);
    assert_int_equal(gzclose(g), Z_OK);
}

/* An IDX u8 file image: n images of 2x3 with pixel (i, j) = 10 * i + j, or labels. */
static size_t idx_images(unsigned char *b, int n)
{
    unsigned char h[16] = { 0, 0, 8, 3, 0, 0, 0, (unsigned char)n, 0, 0, 0, 2, 0, 0, 0, 3 };
    memcpy(b, h, 16);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < 6; j++)
            b[16 + i * 6 + j] = (unsigned char)(10 * i + j);
    return 16 + (size_t)n * 6;
}

static size_t idx_labels(unsigned char *b, int n)
{
    unsigned char h[8] = { 0, 0, 8, 1, 0, 0, 0, (unsigned char)n };
    memcpy(b, h, 8);
    for (int i = 0; i < n; i++)
        b[8 + i] = (unsigned char)(i % 3);
    return 8 + (size_t)n;
}

static void test_idx_gz_sample_known_pixels(void **state)
{
    pare_tensor *im = NULL, *lb = NULL;
    pare_error err = {0};
    static const uint8_t first_labels[] = { 9, 2, 1, 1, 6, 1, 4, 6, 5, 7 };
    const uint8_t *p;
    (void)state;

    assert_int_equal(pare_idx_load(SAMPLE_IMAGES, &im, &err), PARE_OK);
    assert_int_equal(im->dtype, PARE_U8);
    assert_int_equal(im->ndim, 3);
    assert_int_equal(im->dims[0], 256);
    assert_int_equal(im->dims[1], 28);
    assert_int_equal(im->dims[2], 28);
    p = im->data;
    assert_int_equal(p[215], 3);   /* image 0, row 7, col 19 */
    assert_int_equal(p[221], 37);
    assert_int_equal(p[577], 255);
    assert_int_equal(p[784 + 14 * 28 + 14], 234);
    assert_int_equal(pare_idx_load(SAMPLE_LABELS, &lb, &err), PARE_OK);
    assert_int_equal(lb->ndim, 1);
    assert_int_equal(lb->dims[0], 256);
    assert_memory_equal(lb->data, first_labels, sizeof first_labels);
    pare_tensor_free(im);
    pare_tensor_free(lb);
}

static void test_idx_plain_and_gz_agree(void **state)
{
    unsigned char b[16 + 4 * 6];
    size_t len = idx_images(b, 4);
    pare_tensor *a = NULL, *g = NULL;
    pare_error err = {0};
    (void)state;

    write_bytes(tmp("plain-idx3"), b, len);
    write_gz(tmp("gz-idx3.gz"), b, len);
    assert_int_equal(pare_idx_load(tmp("plain-idx3"), &a, &err), PARE_OK);
    assert_int_equal(pare_idx_load(tmp("gz-idx3.gz"), &g, &err), PARE_OK);
    assert_int_equal(a->dims[0], 4);
    assert_int_equal(a->dims[1], 2);
    assert_int_equal(a->dims[2], 3);
    assert_memory_equal(a->data, b + 16, 24);
    assert_memory_equal(g->data, b + 16, 24);
    pare_tensor_free(a);
    pare_tensor_free(g);
}

static void test_idx_errors_exact(void **state)
{
    unsigned char b[64];
    size_t len = idx_images(b, 4);
    pare_tensor *t = NULL;
    pare_error err = {0};
    (void)state;

    b[2] = 0x12;
    write_bytes(tmp("magic"), b, len);
    assert_int_equal(pare_idx_load(tmp("magic"), &t, &err), PARE_EINPUT);
    assert_string_equal(err.where, tmp("magic"));
    assert_string_equal(err.msg, "not an IDX file: bad magic 0x00001203");
    assert_string_equal(err.hint, "IDX images start with 0x00000803, labels with 0x00000801");
    assert_null(t);

    b[2] = 0x0D; /* float32 IDX */
    write_bytes(tmp("float"), b, len);
    assert_int_equal(pare_idx_load(tmp("float"), &t, &err), PARE_EUNSUPPORTED);
    assert_string_equal(err.msg,
                        "IDX element type float32 (magic 0x00000d03) is not supported, only unsigned bytes");

    b[2] = 0x08;
    write_gz(tmp("trunc.gz"), b, len - 5);
    assert_int_equal(pare_idx_load(tmp("trunc.gz"), &t, &err), PARE_EINPUT);
    assert_string_equal(err.where, tmp("trunc.gz"));
    assert_string_equal(err.msg, "truncated: expected 24 bytes of data, found 19");
    write_bytes(tmp("trunc"), b, len - 5);
    assert_int_equal(pare_idx_load(tmp("trunc"), &t, &err), PARE_EINPUT);
    assert_string_equal(err.msg, "truncated: expected 24 bytes of data, found 19");

    write_bytes(tmp("head"), b, 10);
    assert_int_equal(pare_idx_load(tmp("head"), &t, &err), PARE_EINPUT);
    assert_string_equal(err.msg, "truncated header: expected 16 bytes, found 10");

    write_bytes(tmp("tiny"), b, 3);
    assert_int_equal(pare_idx_load(tmp("tiny"), &t, &err), PARE_EINPUT);
    assert_string_equal(err.msg, "truncated header: expected at least 8 bytes, found 3");

    b[len] = 7;
    write_bytes(tmp("extra"), b, len + 1);
    assert_int_equal(pare_idx_load(tmp("extra"), &t, &err), PARE_EINPUT);
    assert_string_equal(err.msg, "unexpected bytes after the 24 bytes of data the header announces");

    b[11] = 0; /* rows = 0 */
    write_bytes(tmp("zero"), b, len);
    assert_int_equal(pare_idx_load(tmp("zero"), &t, &err), PARE_EINPUT);
    assert_string_equal(err.msg, "dim 1 of the IDX header is 0");

    assert_int_equal(pare_idx_load(tmp("nope"), &t, &err), PARE_EIO);
    assert_string_equal(err.msg, "cannot open: No such file or directory");

    /* corrupt gzip stream: valid header, garbage body */
    {
        unsigned char gz[] = { 0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
        write_bytes(tmp("corrupt.gz"), gz, sizeof gz);
        assert_int_not_equal(pare_idx_load(tmp("corrupt.gz"), &t, &err), PARE_OK);
        assert_null(t);
    }
}

static void test_spec_parsing(void **state)
{
    pare_data_spec s;
    pare_error err = {0};
    (void)state;

    assert_int_equal(pare_data_spec_parse("fashion-mnist", &s, &err), PARE_OK);
    assert_int_equal(s.kind, PARE_DATA_FASHION_MNIST);
    assert_false(s.train);
    assert_int_equal(pare_data_spec_parse("fashion-mnist:train", &s, &err), PARE_OK);
    assert_true(s.train);
    assert_int_equal(pare_data_spec_parse("fashion-mnist:test", &s, &err), PARE_OK);
    assert_false(s.train);
    assert_int_equal(pare_data_spec_parse("idx:a/img.gz,a/lbl.gz", &s, &err), PARE_OK);
    assert_int_equal(s.kind, PARE_DATA_IDX);
    assert_string_equal(s.path, "a/img.gz");
    assert_string_equal(s.labels, "a/lbl.gz");
    assert_int_equal(pare_data_spec_parse("npy:x.npy", &s, &err), PARE_OK);
    assert_int_equal(s.kind, PARE_DATA_NPY);
    assert_string_equal(s.path, "x.npy");
    assert_string_equal(s.labels, "");
    assert_int_equal(pare_data_spec_parse("npz:my,data.npz", &s, &err), PARE_OK);
    assert_int_equal(s.kind, PARE_DATA_NPZ);
    assert_string_equal(s.path, "my,data.npz");

    assert_int_equal(pare_data_spec_parse("fashon-mnist", &s, &err), PARE_EINPUT);
    assert_string_equal(err.where, "fashon-mnist");
    assert_string_equal(err.msg, "unknown data source 'fashon-mnist'");
    assert_string_equal(err.hint, "did you mean 'fashion-mnist'?");
    assert_int_equal(pare_data_spec_parse("fashon-mnist:train", &s, &err), PARE_EINPUT);
    assert_string_equal(err.hint, "did you mean 'fashion-mnist'?");
    assert_int_equal(pare_data_spec_parse("fashion-mnist:tset", &s, &err), PARE_EINPUT);
    assert_string_equal(err.msg, "unknown fashion-mnist split 'tset'");
    assert_string_equal(err.hint, "did you mean 'test'?");
    assert_int_equal(pare_data_spec_parse("npx:a.npy", &s, &err), PARE_EINPUT);
    assert_string_equal(err.hint, "did you mean 'npy'?");
    assert_int_equal(pare_data_spec_parse("data/x.npy", &s, &err), PARE_EINPUT);
    assert_string_equal(err.hint, "did you mean 'npy:data/x.npy'?");
    assert_int_equal(pare_data_spec_parse("imagenet", &s, &err), PARE_EINPUT);
    assert_string_equal(err.hint, "expected fashion-mnist[:test|:train], idx:IMAGES[,LABELS], "
                                  "npy:FILE[,LABELS] or npz:FILE");
    assert_int_equal(pare_data_spec_parse("npy:", &s, &err), PARE_EINPUT);
    assert_string_equal(err.msg, "missing file name after 'npy:'");
    assert_int_equal(pare_data_spec_parse("idx:a,", &s, &err), PARE_EINPUT);
    assert_string_equal(err.msg, "missing labels file after ',' in idx:IMAGES[,LABELS]");
    assert_int_equal(pare_data_spec_parse("idx:a,b,c", &s, &err), PARE_EINPUT);
    assert_string_equal(err.msg, "too many files: expected idx:IMAGES[,LABELS]");
    assert_int_equal(pare_data_spec_parse("", &s, &err), PARE_EINPUT);
    assert_string_equal(err.msg, "empty data spec");
}

static void test_open_error_locations(void **state)
{
    pare_dataset *ds = NULL;
    pare_error err = {0};
    pare_data_opts o = { .where = "job.yaml:4:9" };
    (void)state;

    assert_int_equal(pare_dataset_open("fashon-mnist", &o, &ds, &err), PARE_EINPUT);
    assert_null(ds);
    assert_string_equal(err.where, "job.yaml:4:9");
    assert_string_equal(err.hint, "did you mean 'fashion-mnist'?");
    assert_int_equal(pare_dataset_open("idx:/nonexistent/img", NULL, &ds, &err), PARE_EIO);
    assert_string_equal(err.where, "/nonexistent/img");
    /* labels given as images: the shape check names the file */
    {
        char spec[300];
        snprintf(spec, sizeof spec, "idx:%s", SAMPLE_LABELS);
        assert_int_equal(pare_dataset_open(spec, NULL, &ds, &err), PARE_EINPUT);
        assert_string_equal(err.where, SAMPLE_LABELS);
        assert_string_equal(err.msg, "expected an IDX image file (N x rows x cols, magic 0x00000803), "
                                     "found 1 dims (labels?)");
    }
}

static void test_fashion_mnist_search_order(void **state)
{
    pare_dataset *ds = NULL;
    pare_error err = {0};
    pare_data_opts o = { .search_dir = SAMPLE_DIR };
    char want[512];
    (void)state;

    assert_int_equal(pare_dataset_open("fashion-mnist", &o, &ds, &err), PARE_OK);
    assert_string_equal(pare_dataset_spec(ds), "fashion-mnist:test");
    assert_int_equal(pare_dataset_count(ds), 256);
    pare_dataset_free(ds);

    /* the environment variable comes first */
    setenv("PARE_FASHION_MNIST", SAMPLE_DIR, 1);
    o.search_dir = "/nonexistent/default";
    assert_int_equal(pare_dataset_open("fashion-mnist:test", &o, &ds, &err), PARE_OK);
    assert_int_equal(pare_dataset_count(ds), 256);
    pare_dataset_free(ds);

    /* the sample has no train split: both directories are named */
    assert_int_equal(pare_dataset_open("fashion-mnist:train", &o, &ds, &err), PARE_EIO);
    assert_null(ds);
    assert_string_equal(err.where, "fashion-mnist:train");
    assert_string_equal(err.msg, "cannot find the Fashion-MNIST train files "
                                 "'train-images-idx3-ubyte[.gz]' and 'train-labels-idx1-ubyte[.gz]'");
    snprintf(want, sizeof want, "searched %s (from $PARE_FASHION_MNIST), /nonexistent/default; "
             "set PARE_FASHION_MNIST to the directory holding them", SAMPLE_DIR);
    assert_string_equal(err.hint, want);

    setenv("PARE_FASHION_MNIST", tmpdir, 1); /* empty dir: falls through to search_dir */
    o.search_dir = SAMPLE_DIR;
    assert_int_equal(pare_dataset_open("fashion-mnist", &o, &ds, &err), PARE_OK);
    pare_dataset_free(ds);

    unsetenv("PARE_FASHION_MNIST");
    assert_int_equal(pare_dataset_open("fashion-mnist", NULL, &ds, &err), PARE_EIO);
    assert_string_equal(err.hint, "PARE_FASHION_MNIST is not set and no default directory was given");
}

static void test_fashion_mnist_normalisation(void **state)
{
    pare_dataset *ds = NULL;
    pare_error err = {0};
    pare_data_opts o = { .search_dir = SAMPLE_DIR, .batch_size = 2 };
    int64_t dims[PARE_MAX_DIMS], bdims[] = { 2, 1, 28, 28 }, labels[2];
    pare_tensor *x = pare_tensor_new(PARE_F32, 4, bdims);
    const float *v = pare_tensor_f32(x);
    (void)state;

    assert_int_equal(pare_dataset_open("fashion-mnist", &o, &ds, &err), PARE_OK);
    assert_int_equal(pare_dataset_sample_shape(ds, dims), 3);
    assert_int_equal(dims[0], 1);
    assert_int_equal(dims[1], 28);
    assert_int_equal(dims[2], 28);
    assert_true(pare_dataset_has_labels(ds));
    assert_int_equal(pare_dataset_n_classes(ds), 10);
    assert_float_equal(pare_dataset_mean(ds, 0), 0.2860f, 0);
    assert_float_equal(pare_dataset_std(ds, 0), 0.3530f, 0);
    assert_int_equal(pare_dataset_fill(ds, 0, 2, x, labels, &err), PARE_OK);
    assert_int_equal(labels[0], 9);
    assert_int_equal(labels[1], 2);
    assert_float_equal(v[0], (0.0 - 0.2860) / 0.3530, 1e-6);
    assert_float_equal(v[215], (3.0 / 255 - 0.2860) / 0.3530, 1e-6);
    assert_float_equal(v[221], (37.0 / 255 - 0.2860) / 0.3530, 1e-6);
    assert_float_equal(v[577], (1.0 - 0.2860) / 0.3530, 1e-6);
    assert_float_equal(v[784 + 14 * 28 + 14], (234.0 / 255 - 0.2860) / 0.3530, 1e-6);
    pare_dataset_free(ds);

    /* overrides: scalar mean, default std stays */
    o.n_mean = 1;
    o.mean[0] = 0.5f;
    assert_int_equal(pare_dataset_open("fashion-mnist", &o, &ds, &err), PARE_OK);
    assert_int_equal(pare_dataset_fill(ds, 0, 1, x, NULL, &err), PARE_OK);
    assert_float_equal(v[577], (1.0 - 0.5) / 0.3530, 1e-6);
    pare_dataset_free(ds);

    /* three means for one channel */
    o.n_mean = 3;
    assert_int_equal(pare_dataset_open("fashion-mnist", &o, &ds, &err), PARE_EINPUT);
    assert_string_equal(err.msg, "mean has 3 values but samples have 1 channel");
    assert_string_equal(err.hint, "give 1 value");
    o.n_mean = 0;
    o.n_std = 1;
    o.std[0] = 0;
    assert_int_equal(pare_dataset_open("fashion-mnist", &o, &ds, &err), PARE_EINPUT);
    assert_string_equal(err.msg, "std must be a non-zero finite number");
    pare_tensor_free(x);
}

static void test_idx_spec_generic_normalisation(void **state)
{
    unsigned char b[64], l[16];
    size_t lb = idx_images(b, 4), ll = idx_labels(l, 4);
    char spec[600];
    pare_dataset *ds = NULL;
    pare_error err = {0};
    int64_t dims[] = { 4, 6 }, labels[4];
    pare_tensor *x = pare_tensor_new(PARE_F32, 2, dims);
    pare_data_opts o = { .scale = 1.0f, .n_std = 1, .std = { 2.0f } };
    (void)state;

    write_bytes(tmp("im"), b, lb);
    write_gz(tmp("lb.gz"), l, ll);
    snprintf(spec, sizeof spec, "idx:%s", tmp("im"));
    assert_int_equal(pare_dataset_open(spec, NULL, &ds, &err), PARE_OK);
    assert_false(pare_dataset_has_labels(ds));
    assert_int_equal(pare_dataset_n_classes(ds), 0);
    assert_float_equal(pare_dataset_scale(ds), 1.0f / 255.0f, 0);
    /* [4, 6] fits samples of [1, 2, 3] */
    labels[3] = 99;
    assert_int_equal(pare_dataset_fill(ds, 0, 4, x, labels, &err), PARE_OK);
    assert_float_equal(pare_tensor_f32(x)[6 * 3 + 5], 35.0 / 255.0, 1e-7);
    assert_int_equal(labels[3], -1); /* unlabelled */
    pare_dataset_free(ds);

    snprintf(spec, sizeof spec, "idx:%s,%s", tmp("im"), tmp("lb.gz"));
    assert_int_equal(pare_dataset_open(spec, &o, &ds, &err), PARE_OK);
    assert_string_equal(pare_dataset_spec(ds), spec);
    assert_int_equal(pare_dataset_n_classes(ds), 3);
    assert_int_equal(pare_dataset_fill(ds, 0, 4, x, labels, &err), PARE_OK);
    assert_float_equal(pare_tensor_f32(x)[6 * 2 + 4], 24.0 / 2.0, 1e-6);
    assert_int_equal(labels[2], 2);
    assert_int_equal(labels[3], 0);
    pare_dataset_free(ds);

    /* 5 labels for 4 images */
    ll = idx_labels(l, 5);
    write_bytes(tmp("lb5"), l, ll);
    snprintf(spec, sizeof spec, "idx:%s,%s", tmp("im"), tmp("lb5"));
    assert_int_equal(pare_dataset_open(spec, NULL, &ds, &err), PARE_EINPUT);
    assert_string_equal(err.where, tmp("lb5"));
    assert_string_equal(err.msg, "label count 5 does not match sample count 4");
    pare_tensor_free(x);
}

/* Positions of the whole epoch. */
static void epoch_order(const pare_dataset *ds, int64_t *out)
{
    for (int64_t i = 0; i < pare_dataset_count(ds); i++)
        out[i] = pare_dataset_index(ds, i);
}

static void test_shuffle_is_deterministic(void **state)
{
    /* splitmix64 + Fisher-Yates as documented, computed independently in Python */
    static const int64_t seed42_e0[] = { 4, 6, 7, 0, 9, 5, 1, 2, 3, 8 };
    static const int64_t seed42_e1[] = { 8, 7, 9, 0, 1, 2, 5, 6, 4, 3 };
    static const int64_t seed43_e0[] = { 4, 9, 1, 8, 7, 0, 2, 3, 5, 6 };
    pare_data_opts o = { .search_dir = SAMPLE_DIR, .limit = 10, .shuffle = true, .seed = 42 };
    pare_dataset *a = NULL, *b = NULL;
    pare_error err = {0};
    int64_t oa[10], ob[10], seen[10] = {0};
    (void)state;

    assert_int_equal(pare_dataset_open("fashion-mnist", &o, &a, &err), PARE_OK);
    assert_int_equal(pare_dataset_open("fashion-mnist", &o, &b, &err), PARE_OK);
    epoch_order(a, oa);
    epoch_order(b, ob);
    assert_memory_equal(oa, ob, sizeof oa);
    assert_memory_equal(oa, seed42_e0, sizeof oa);
    for (int i = 0; i < 10; i++)
        seen[oa[i]]++;
    for (int i = 0; i < 10; i++)
        assert_int_equal(seen[i], 1);
    pare_dataset_begin_epoch(a, 1);
    epoch_order(a, oa);
    assert_memory_equal(oa, seed42_e1, sizeof oa);
    pare_dataset_begin_epoch(a, 0);
    epoch_order(a, oa);
    assert_memory_equal(oa, seed42_e0, sizeof oa);
    pare_dataset_free(b);

    o.seed = 43;
    assert_int_equal(pare_dataset_open("fashion-mnist", &o, &b, &err), PARE_OK);
    epoch_order(b, ob);
    assert_memory_equal(ob, seed43_e0, sizeof ob);
    assert_memory_not_equal(oa, ob, sizeof oa);
    pare_dataset_free(b);

    o.shuffle = false;
    assert_int_equal(pare_dataset_open("fashion-mnist", &o, &b, &err), PARE_OK);
    for (int i = 0; i < 10; i++)
        assert_int_equal(pare_dataset_index(b, i), i);
    assert_int_equal(pare_dataset_index(b, 10), -1);
    pare_dataset_free(b);

    /* a shuffled batch holds the samples (and labels) the order names */
    {
        int64_t dims[] = { 3, 1, 28, 28 }, lab[3], lab1[1];
        pare_tensor *x = pare_tensor_new(PARE_F32, 4, dims), *y = pare_tensor_new(PARE_F32, 4, dims);
        pare_dataset *plain = NULL;
        o.limit = 0;
        assert_int_equal(pare_dataset_open("fashion-mnist", &o, &plain, &err), PARE_OK);
        assert_int_equal(pare_dataset_fill(a, 0, 3, x, lab, &err), PARE_OK);
        for (int r = 0; r < 3; r++) {
            assert_int_equal(pare_dataset_fill(plain, seed42_e0[r], 1, y, lab1, &err), PARE_OK);
            assert_memory_equal(pare_tensor_f32(x) + r * 784, pare_tensor_f32(y), 784 * sizeof(float));
            assert_int_equal(lab[r], lab1[0]);
        }
        pare_dataset_free(plain);
        pare_tensor_free(x);
        pare_tensor_free(y);
    }
    pare_dataset_free(a);
}

static void test_limit_batches_drop_last(void **state)
{
    pare_data_opts o = { .search_dir = SAMPLE_DIR, .limit = 10, .batch_size = 4 };
    pare_dataset *ds = NULL;
    pare_error err = {0};
    int64_t dims[] = { 4, 1, 28, 28 }, small[] = { 2, 1, 28, 28 }, flat[] = { 4, 785 };
    int64_t labels[4], n, sizes[4], total = 0;
    pare_tensor *x = pare_tensor_new(PARE_F32, 4, dims), *s = pare_tensor_new(PARE_F32, 4, small);
    pare_tensor *bad = pare_tensor_new(PARE_F32, 2, flat);
    int k = 0;
    (void)state;

    assert_int_equal(pare_dataset_open("fashion-mnist", &o, &ds, &err), PARE_OK);
    assert_int_equal(pare_dataset_count(ds), 10);
    assert_int_equal(pare_dataset_n_batches(ds), 3);
    for (;;) {
        assert_int_equal(pare_dataset_next_batch(ds, x, labels, &n, &err), PARE_OK);
        if (!n)
            break;
        sizes[k++] = n;
        total += n;
    }
    assert_int_equal(k, 3);
    assert_int_equal(sizes[0], 4);
    assert_int_equal(sizes[2], 2);
    assert_int_equal(total, 10);
    /* the last batch holds samples 8 (label 5) and 9 (label 7), then zero rows */
    assert_int_equal(labels[0], 5);
    assert_int_equal(labels[1], 7);
    assert_float_equal(pare_tensor_f32(x)[2 * 784 + 100], 0.0f, 0);
    assert_int_equal(pare_dataset_next_batch(ds, x, labels, &n, &err), PARE_OK);
    assert_int_equal(n, 0);

    /* errors: a batch too small, a tensor of the wrong row size, a range past the end */
    pare_dataset_begin_epoch(ds, 1);
    assert_int_equal(pare_dataset_next_batch(ds, s, labels, &n, &err), PARE_EINPUT);
    assert_string_equal(err.where, "fashion-mnist:test");
    assert_string_equal(err.msg, "batch tensor float32 [2, 1, 28, 28] does not fit 4 samples of shape [1, 28, 28]");
    assert_int_equal(n, 0);
    assert_int_equal(pare_dataset_fill(ds, 0, 4, bad, labels, &err), PARE_EINPUT);
    assert_string_equal(err.msg, "batch tensor float32 [4, 785] does not fit 4 samples of shape [1, 28, 28]");
    assert_int_equal(pare_dataset_fill(ds, 8, 4, x, labels, &err), PARE_EINPUT);
    assert_string_equal(err.msg, "samples 8..11 are out of range: the dataset has 10");
    pare_dataset_free(ds);

    o.drop_last = true;
    assert_int_equal(pare_dataset_open("fashion-mnist", &o, &ds, &err), PARE_OK);
    assert_int_equal(pare_dataset_n_batches(ds), 2);
    k = 0;
    while (pare_dataset_next_batch(ds, x, labels, &n, &err) == PARE_OK && n)
        k++;
    assert_int_equal(k, 2);
    pare_dataset_free(ds);

    o.limit = -1;
    assert_int_equal(pare_dataset_open("fashion-mnist", &o, &ds, &err), PARE_EINPUT);
    assert_string_equal(err.msg, "limit must not be negative");
    pare_tensor_free(x);
    pare_tensor_free(s);
    pare_tensor_free(bad);
}

static void test_npy_dataset(void **state)
{
    int64_t xd[] = { 5, 2, 3 }, yd[] = { 5 }, bd[] = { 5, 2, 3 }, labels[5];
    pare_tensor *xs = pare_tensor_new(PARE_F32, 3, xd), *ys = pare_tensor_new(PARE_I32, 1, yd);
    pare_tensor *fy = pare_tensor_new(PARE_F32, 1, yd), *b = pare_tensor_new(PARE_F32, 3, bd);
    pare_dataset *ds = NULL;
    pare_error err = {0};
    pare_data_opts o = { .n_mean = 2, .mean = { 1.0f, -1.0f }, .n_std = 2, .std = { 2.0f, 4.0f } };
    char spec[600];
    (void)state;

    for (int i = 0; i < 30; i++)
        pare_tensor_f32(xs)[i] = (float)i - 10.0f;
    for (int i = 0; i < 5; i++)
        ((int32_t *)ys->data)[i] = 4 - i;
    assert_int_equal(pare_npy_save(tmp("x.npy"), xs, &err), PARE_OK);
    assert_int_equal(pare_npy_save(tmp("y.npy"), ys, &err), PARE_OK);
    assert_int_equal(pare_npy_save(tmp("fy.npy"), fy, &err), PARE_OK);

    /* float data is used as is */
    snprintf(spec, sizeof spec, "npy:%s,%s", tmp("x.npy"), tmp("y.npy"));
    assert_int_equal(pare_dataset_open(spec, NULL, &ds, &err), PARE_OK);
    assert_float_equal(pare_dataset_scale(ds), 1.0f, 0);
    assert_int_equal(pare_dataset_n_classes(ds), 5);
    assert_int_equal(pare_dataset_fill(ds, 0, 5, b, labels, &err), PARE_OK);
    assert_memory_equal(b->data, xs->data, 30 * sizeof(float));
    assert_int_equal(labels[0], 4);
    assert_int_equal(labels[4], 0);
    pare_dataset_free(ds);

    /* per-channel: channel = first sample dim (2 channels of 3 values) */
    assert_int_equal(pare_dataset_open(spec, &o, &ds, &err), PARE_OK);
    assert_float_equal(pare_dataset_mean(ds, 1), -1.0f, 0);
    assert_int_equal(pare_dataset_fill(ds, 1, 1, b, NULL, &err), PARE_OK);
    /* sample 1 = values -4..1; channel 0: (-4 - 1) / 2, channel 1: (-1 + 1) / 4 */
    assert_float_equal(pare_tensor_f32(b)[0], -2.5f, 1e-6);
    assert_float_equal(pare_tensor_f32(b)[3], 0.0f, 1e-6);
    assert_float_equal(pare_tensor_f32(b)[5], 0.5f, 1e-6);
    assert_float_equal(pare_tensor_f32(b)[6], 0.0f, 0); /* padding row */
    pare_dataset_free(ds);

    snprintf(spec, sizeof spec, "npy:%s,%s", tmp("x.npy"), tmp("fy.npy"));
    assert_int_equal(pare_dataset_open(spec, NULL, &ds, &err), PARE_EINPUT);
    assert_string_equal(err.where, tmp("fy.npy"));
    assert_string_equal(err.msg, "labels must be integers, found float32");

    ((int32_t *)ys->data)[2] = -3;
    assert_int_equal(pare_npy_save(tmp("y.npy"), ys, &err), PARE_OK);
    snprintf(spec, sizeof spec, "npy:%s,%s", tmp("x.npy"), tmp("y.npy"));
    assert_int_equal(pare_dataset_open(spec, NULL, &ds, &err), PARE_EINPUT);
    assert_string_equal(err.msg, "label -3 of sample 2 is negative");
    pare_tensor_free(xs);
    pare_tensor_free(ys);
    pare_tensor_free(fy);
    pare_tensor_free(b);
}

static void test_npz_dataset_naming_rule(void **state)
{
    int64_t xd[] = { 3, 4 }, yd[] = { 3 }, bd[] = { 3, 4 }, labels[3];
    pare_tensor *xs = pare_tensor_new(PARE_U8, 2, xd), *ys = pare_tensor_new(PARE_I64, 1, yd);
    pare_tensor *b = pare_tensor_new(PARE_F32, 2, bd);
    const char *names[] = { "labels", "inputs" };
    const pare_tensor *arrays[] = { ys, xs };
    const char *other[] = { "weights", "bias" };
    pare_dataset *ds = NULL;
    pare_error err = {0};
    char spec[600];
    (void)state;

    for (int i = 0; i < 12; i++)
        ((uint8_t *)xs->data)[i] = (uint8_t)(i * 20);
    for (int i = 0; i < 3; i++)
        ((int64_t *)ys->data)[i] = 7 * i;
    assert_int_equal(pare_npz_save(tmp("d.npz"), names, arrays, 2, &err), PARE_OK);
    snprintf(spec, sizeof spec, "npz:%s", tmp("d.npz"));
    assert_int_equal(pare_dataset_open(spec, NULL, &ds, &err), PARE_OK);
    assert_int_equal(pare_dataset_count(ds), 3);
    assert_int_equal(pare_dataset_sample_numel(ds), 4);
    assert_int_equal(pare_dataset_fill(ds, 0, 3, b, labels, &err), PARE_OK);
    assert_int_equal(labels[2], 14);
    assert_float_equal(pare_tensor_f32(b)[11], 220.0f / 255.0f, 1e-7); /* u8: scale 1/255 */
    pare_dataset_free(ds);

    /* an unlabelled archive with one array: that array is the samples */
    assert_int_equal(pare_npz_save(tmp("one.npz"), other, arrays + 1, 1, &err), PARE_OK);
    snprintf(spec, sizeof spec, "npz:%s", tmp("one.npz"));
    assert_int_equal(pare_dataset_open(spec, NULL, &ds, &err), PARE_OK);
    assert_false(pare_dataset_has_labels(ds));
    pare_dataset_free(ds);

    assert_int_equal(pare_npz_save(tmp("two.npz"), other, arrays, 2, &err), PARE_OK);
    snprintf(spec, sizeof spec, "npz:%s", tmp("two.npz"));
    assert_int_equal(pare_dataset_open(spec, NULL, &ds, &err), PARE_EINPUT);
    assert_string_equal(err.msg, "no samples array in the .npz (found 'weights', 'bias')");
    assert_string_equal(err.hint, "name the samples 'x' and the labels 'y'");
    pare_tensor_free(xs);
    pare_tensor_free(ys);
    pare_tensor_free(b);
}

static void test_open_survives_allocation_failures(void **state)
{
    pare_data_opts o = { .search_dir = SAMPLE_DIR, .shuffle = true, .n_mean = 1, .mean = { 0.1f } };
    pare_dataset *ds = NULL;
    pare_error err = {0};
    pare_status rc = PARE_ENOMEM;
    long k;
    (void)state;

    for (k = 1; k < 100 && rc != PARE_OK; k++) {
        pare_alloc_fail_at(k);
        rc = pare_dataset_open("fashion-mnist", &o, &ds, &err);
        pare_alloc_fail_at(0);
        assert_true(rc == PARE_OK || (rc == PARE_ENOMEM && ds == NULL));
        pare_dataset_free(ds);
        ds = NULL;
    }
    assert_int_equal(rc, PARE_OK);
    assert_true(k > 3);
}

static void count_classes(const char *spec, int64_t want_count, int64_t want_per_class, int64_t first_label)
{
    pare_data_opts o = { .search_dir = PARE_FASHION_MNIST, .batch_size = 1000 };
    pare_dataset *ds = NULL;
    pare_error err = {0};
    int64_t dims[] = { 1000, 1, 28, 28 }, labels[1000], n, counts[10] = {0}, total = 0;
    pare_tensor *x = pare_tensor_new(PARE_F32, 4, dims);
    double sum = 0;

    assert_int_equal(pare_dataset_open(spec, &o, &ds, &err), PARE_OK);
    assert_int_equal(pare_dataset_count(ds), want_count);
    assert_int_equal(pare_dataset_n_classes(ds), 10);
    assert_int_equal(pare_dataset_label(ds, 0), first_label);
    while (pare_dataset_next_batch(ds, x, labels, &n, &err) == PARE_OK && n) {
        for (int64_t i = 0; i < n; i++) {
            assert_true(labels[i] >= 0 && labels[i] < 10);
            counts[labels[i]]++;
        }
        for (int64_t i = 0; i < n * 784; i++)
            sum += pare_tensor_f32(x)[i];
        total += n;
    }
    assert_int_equal(total, want_count);
    for (int c = 0; c < 10; c++)
        assert_int_equal(counts[c], want_per_class);
    /* normalised with the dataset's own mean/std: the mean is near 0 */
    assert_true(sum / ((double)total * 784) > -0.05 && sum / ((double)total * 784) < 0.05);
    pare_dataset_free(ds);
    pare_tensor_free(x);
}

static void test_full_fashion_mnist(void **state)
{
    (void)state;
    count_classes("fashion-mnist", 10000, 1000, 9);
    count_classes("fashion-mnist:train", 60000, 6000, 9);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_idx_gz_sample_known_pixels),
        cmocka_unit_test(test_idx_plain_and_gz_agree),
        cmocka_unit_test(test_idx_errors_exact),
        cmocka_unit_test(test_spec_parsing),
        cmocka_unit_test(test_open_error_locations),
        cmocka_unit_test(test_fashion_mnist_search_order),
        cmocka_unit_test(test_fashion_mnist_normalisation),
        cmocka_unit_test(test_idx_spec_generic_normalisation),
        cmocka_unit_test(test_shuffle_is_deterministic),
        cmocka_unit_test(test_limit_batches_drop_last),
        cmocka_unit_test(test_npy_dataset),
        cmocka_unit_test(test_npz_dataset_naming_rule),
        cmocka_unit_test(test_open_survives_allocation_failures),
        cmocka_unit_test(test_full_fashion_mnist),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
