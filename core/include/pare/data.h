/* Datasets: IDX and NPY/NPZ files, data specs, normalisation, batching.
 *
 * A data spec is one string, the same in the CLI, YAML jobs and the TUI:
 *
 *   fashion-mnist            the Fashion-MNIST test split (= fashion-mnist:test)
 *   fashion-mnist:test       10000 images, labelled
 *   fashion-mnist:train      60000 images, labelled
 *   idx:IMAGES[,LABELS]      IDX files (u8 images N x R x C, u8 labels N)
 *   npy:FILE[,LABELS]        an .npy array [N, ...] (any numeric dtype) and
 *                            optionally an .npy of integer labels [N]
 *   npz:FILE                 an .npz archive: samples are the first array named
 *                            'x', 'input', 'inputs', 'images' or 'data' (or the
 *                            only array that is not labels); labels are the
 *                            first array named 'y', 'labels', 'label' or
 *                            'targets' (optional)
 *
 * IDX and NPY files may be gzip-compressed (.gz) or plain. Fashion-MNIST files
 * ({t10k,train}-{images-idx3,labels-idx1}-ubyte[.gz]) are looked up in the
 * directory named by the PARE_FASHION_MNIST environment variable, then in
 * opts.search_dir (the caller's compile-time default); core hardcodes no path.
 *
 * A sample of an IDX image file is [1, R, C] (one channel); of an array
 * [N, d1, ...] it is [d1, ...]. Samples are converted to float on demand:
 *
 *   x = (v * scale - mean[c]) / std[c]
 *
 * where c indexes the sample's first dim (the channel in C,H,W layout) when
 * mean/std have several values, or is 0 for a scalar mean/std. Defaults:
 * scale 1/255 for u8 data and 1 otherwise; mean 0.2860 and std 0.3530 for
 * fashion-mnist, mean 0 and std 1 for everything else. Each of scale, mean and
 * std keeps its default unless set in the options.
 *
 * Order: positions 0..count-1 of an epoch map to sample indices. Without
 * shuffle the map is the identity. With shuffle, epoch e is a Fisher-Yates
 * permutation of 0..count-1 driven by splitmix64 seeded with
 * splitmix64(seed) ^ e (indices drawn by rejection, no modulo bias), so an
 * epoch's order depends only on (seed, e, count). `limit` keeps the first N
 * samples of the file before any shuffling.
 *
 * Memory: a dataset loads its raw data once (u8 stays u8: 60000 x 784 bytes
 * for Fashion-MNIST train) and converts one batch at a time.
 * Thread-safety: a dataset is used by one thread at a time; pare_dataset_fill
 * only reads it, so several threads may fill from one dataset concurrently
 * while nobody calls begin_epoch / next_batch. */
#ifndef PARE_DATA_H
#define PARE_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pare/error.h"
#include "pare/tensor.h"

/* ---- IDX ------------------------------------------------------------------ */

/* Loads an IDX file (plain or gzip) of unsigned bytes (magic 0x000008NN, NN =
 * number of dims, 1..4) as a U8 tensor with the file's dims; the caller owns
 * *out on success. Errors: PARE_EIO (cannot open or read), PARE_EINPUT (bad
 * magic, zero or huge dims, truncated data, trailing bytes; where = path),
 * PARE_EUNSUPPORTED (IDX element types other than u8), PARE_ENOMEM. */
pare_status pare_idx_load(const char *path, pare_tensor **out, pare_error *err);

/* ---- NPY / NPZ -------------------------------------------------------------- */

/* Loads an .npy file (format 1.0, 2.0 or 3.0; plain or gzip). Dtypes: f2 f4 f8
 * i1 i2 i4 i8 u1 u2 u4 u8 b1, little- or big-endian (big-endian is byte-swapped
 * to host order). The caller owns *out. Errors: PARE_EIO, PARE_EINPUT (bad magic
 * or header, truncated data; where = path), PARE_EUNSUPPORTED (fortran_order
 * True, structured or other dtypes, more than PARE_MAX_DIMS dims), ENOMEM. */
pare_status pare_npy_load(const char *path, pare_tensor **out, pare_error *err);

/* Parses an in-memory .npy image; `where` names it in errors. */
pare_status pare_npy_parse(const void *buf, size_t len, const char *where,
                           pare_tensor **out, pare_error *err);

/* Writes t as .npy format 1.0 (C order, little-endian) to a temporary name in
 * the target directory, then renames it over path. BF16 and STRING tensors and
 * shape carriers are PARE_EUNSUPPORTED / PARE_EINPUT; PARE_EIO on write errors
 * (nothing is left behind). */
pare_status pare_npy_save(const char *path, const pare_tensor *t, pare_error *err);

/* Arrays of an .npz archive, in archive order; names drop the ".npy" suffix. */
typedef struct pare_npz {
    int n;
    char **names;
    pare_tensor **arrays;
} pare_npz;

/* Loads an .npz (zip of .npy members, stored or deflated; members that are not
 * .npy are skipped). CRC32 is checked. The caller owns *out (pare_npz_free).
 * Errors: PARE_EIO, PARE_EINPUT (not a zip, corrupt member, CRC mismatch;
 * where = "path" or "path: member 'x.npy'"), PARE_EUNSUPPORTED (zip64,
 * encryption, compression other than deflate, unsupported .npy), ENOMEM. */
pare_status pare_npz_load(const char *path, pare_npz **out, pare_error *err);
void pare_npz_free(pare_npz *z);
/* Array by name (without ".npy"); NULL when absent. Borrowed from z. */
const pare_tensor *pare_npz_find(const pare_npz *z, const char *name);

/* Writes arrays as an uncompressed .npz like numpy.savez: member names[i] +
 * ".npy", CRC32, local and central headers; temp name + rename. Names must
 * be non-empty, unique and contain no '/'. Archives past 4 GiB need zip64 and
 * are PARE_EUNSUPPORTED. */
pare_status pare_npz_save(const char *path, const char *const *names,
                          const pare_tensor *const *arrays, int n, pare_error *err);

/* ---- data specs ------------------------------------------------------------- */

typedef enum pare_data_kind {
    PARE_DATA_FASHION_MNIST,
    PARE_DATA_IDX,
    PARE_DATA_NPY,
    PARE_DATA_NPZ
} pare_data_kind;

#define PARE_DATA_PATH_MAX 1024

typedef struct pare_data_spec {
    pare_data_kind kind;
    bool train;                        /* fashion-mnist: train split */
    char path[PARE_DATA_PATH_MAX];     /* idx/npy: images or array; npz: archive */
    char labels[PARE_DATA_PATH_MAX];   /* idx/npy: labels file, "" when none */
} pare_data_spec;

/* Parses the syntax only (no file is touched), so configs can validate early.
 * Errors are PARE_EINPUT with where = the spec, e.g. "unknown data source
 * 'fashon-mnist'" with hint "did you mean 'fashion-mnist'?", "unknown
 * fashion-mnist split 'tset'", "missing file name after 'npy:'". */
pare_status pare_data_spec_parse(const char *spec, pare_data_spec *out, pare_error *err);

/* ---- datasets --------------------------------------------------------------- */

#define PARE_DATA_MAX_CHANNELS 16

typedef struct pare_data_opts {
    float scale;                        /* 0: default (1/255 for u8, else 1) */
    int n_mean;                         /* 0: default; 1: scalar; else per channel */
    float mean[PARE_DATA_MAX_CHANNELS];
    int n_std;                          /* as n_mean; values must be non-zero */
    float std[PARE_DATA_MAX_CHANNELS];
    int64_t limit;                      /* keep the first N samples; 0: all */
    bool shuffle;
    uint64_t seed;
    int batch_size;                     /* 0: 1 */
    bool drop_last;                     /* next_batch skips a final partial batch */
    const char *search_dir;             /* fashion-mnist directory after the env var; may be NULL */
    const char *where;                  /* user location of the spec for errors
                                           ("job.yaml:12:7"); NULL: the spec itself */
} pare_data_opts;

typedef struct pare_dataset pare_dataset;

/* Opens the dataset a spec names; opts NULL = all defaults. The dataset starts
 * at epoch 0 (see begin_epoch). The caller owns *out on success.
 * Errors: spec syntax errors as pare_data_spec_parse; missing Fashion-MNIST
 * files (PARE_EIO, hint naming every searched directory); file errors as
 * pare_idx_load / pare_npy_load / pare_npz_load; PARE_EINPUT for images and
 * labels of different counts, non-integer or negative labels, an .npz without
 * a samples array, mean/std counts that match neither 1 nor the channel count,
 * a zero std, a negative limit or batch size; PARE_ENOMEM. */
pare_status pare_dataset_open(const char *spec, const pare_data_opts *opts,
                              pare_dataset **out, pare_error *err);
void pare_dataset_free(pare_dataset *ds);

/* Canonical spec ("fashion-mnist:test", "idx:a.gz,b.gz"). Borrowed. */
const char *pare_dataset_spec(const pare_dataset *ds);
/* Samples after limit. */
int64_t pare_dataset_count(const pare_dataset *ds);
/* Copies the sample shape into dims (PARE_MAX_DIMS room) and returns its ndim. */
int pare_dataset_sample_shape(const pare_dataset *ds, int64_t *dims);
int64_t pare_dataset_sample_numel(const pare_dataset *ds);
bool pare_dataset_has_labels(const pare_dataset *ds);
/* Largest label + 1 (0 when unlabelled). */
int64_t pare_dataset_n_classes(const pare_dataset *ds);
/* Label of sample index i (file order), -1 when unlabelled or out of range. */
int64_t pare_dataset_label(const pare_dataset *ds, int64_t i);
/* Effective normalisation (after defaults): scale and channel c's mean/std. */
float pare_dataset_scale(const pare_dataset *ds);
float pare_dataset_mean(const pare_dataset *ds, int c);
float pare_dataset_std(const pare_dataset *ds, int c);
int pare_dataset_batch_size(const pare_dataset *ds);

/* Starts epoch e: rebuilds the order (a fresh permutation when shuffling) and
 * rewinds next_batch. */
void pare_dataset_begin_epoch(pare_dataset *ds, int64_t epoch);
/* Sample index at position pos of the current epoch, -1 when out of range. */
int64_t pare_dataset_index(const pare_dataset *ds, int64_t pos);
/* Batches per epoch: ceil(count / batch), or floor with drop_last. */
int64_t pare_dataset_n_batches(const pare_dataset *ds);

/* Fills rows 0..n-1 of x with the samples at epoch positions first..first+n-1
 * and labels[0..n-1] with their labels (-1 when unlabelled; labels may be NULL).
 * x must be F32 with data, dims[0] >= n and the product of its other dims equal
 * to the sample numel ([B, 1, 28, 28] and [B, 784] both fit 28x28 images).
 * Rows n..dims[0]-1 of x are zeroed; labels past n are not touched.
 * Errors: PARE_EINPUT naming the expected shape, or a range past the end. */
pare_status pare_dataset_fill(const pare_dataset *ds, int64_t first, int64_t n,
                              pare_tensor *x, int64_t *labels, pare_error *err);

/* Fills the next batch of the epoch (x with dims[0] >= batch size) and sets
 * *n to the rows filled; *n = 0 (and PARE_OK) when the epoch is over. */
pare_status pare_dataset_next_batch(pare_dataset *ds, pare_tensor *x, int64_t *labels,
                                    int64_t *n, pare_error *err);

#endif
