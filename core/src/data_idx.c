/* IDX files (MNIST, Fashion-MNIST), plain or gzip-compressed.
 *
 * Format: a big-endian u32 magic 0x0000TTNN (TT = element type, 0x08 for
 * unsigned bytes; NN = number of dims), NN big-endian u32 dims, then the
 * elements in row-major order. zlib's gzread reads plain files as they are. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <zlib.h>

#include "pare/alloc.h"
#include "pare/data.h"

#define IDX_MAX_DIMS 4
#define IDX_MAX_BYTES ((int64_t)1 << 34) /* 16 GiB: refuse absurd headers */

/* Reads exactly len bytes unless the file ends; returns bytes read or -1. */
static int64_t gz_read_all(gzFile f, void *buf, size_t len)
{
    size_t got = 0;

    while (got < len) {
        size_t chunk = len - got > (1u << 30) ? (1u << 30) : len - got;
        int r = gzread(f, (char *)buf + got, (unsigned)chunk);
        if (r < 0)
            return -1;
        if (r == 0)
            break;
        got += (size_t)r;
    }
    return (int64_t)got;
}

static pare_status gz_error(gzFile f, const char *path, pare_error *err)
{
    int code = 0;
    const char *msg = gzerror(f, &code);

    if (code == Z_DATA_ERROR)
        return pare_fail(err, PARE_EINPUT, path, "corrupt gzip data: %s", msg);
    if (code == Z_ERRNO)
        return pare_fail(err, PARE_EIO, path, "read error: %s", strerror(errno));
    return pare_fail(err, PARE_EIO, path, "read error: %s", msg);
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static const char *idx_type_name(int type)
{
    switch (type) {
    case 0x08: return "unsigned byte";
    case 0x09: return "signed byte";
    case 0x0B: return "int16";
    case 0x0C: return "int32";
    case 0x0D: return "float32";
    case 0x0E: return "float64";
    default: return NULL;
    }
}

/* Parses magic and dims from an open file into t's shape. */
static pare_status idx_header(gzFile f, const char *path, pare_tensor *shape, pare_error *err)
{
    unsigned char head[4 + 4 * IDX_MAX_DIMS];
    int64_t got = gz_read_all(f, head, 4), bytes = 1;
    uint32_t magic;
    int type, ndim;

    if (got < 0)
        return gz_error(f, path, err);
    if (got < 4)
        return pare_fail(err, PARE_EINPUT, path,
                         "truncated header: expected at least 8 bytes, found %" PRId64, got);
    magic = be32(head);
    type = (int)(magic >> 8 & 0xff);
    ndim = (int)(magic & 0xff);
    if ((magic >> 16) != 0 || !idx_type_name(type) || ndim < 1 || ndim > IDX_MAX_DIMS) {
        pare_fail(err, PARE_EINPUT, path, "not an IDX file: bad magic 0x%08" PRIx32, magic);
        pare_error_hint(err, "IDX images start with 0x00000803, labels with 0x00000801");
        return PARE_EINPUT;
    }
    if (type != 0x08)
        return pare_fail(err, PARE_EUNSUPPORTED, path,
                         "IDX element type %s (magic 0x%08" PRIx32 ") is not supported, only unsigned bytes",
                         idx_type_name(type), magic);
    got = gz_read_all(f, head + 4, 4 * (size_t)ndim);
    if (got < 0)
        return gz_error(f, path, err);
    if (got < 4 * ndim)
        return pare_fail(err, PARE_EINPUT, path,
                         "truncated header: expected %d bytes, found %" PRId64, 4 + 4 * ndim, 4 + got);
    shape->dtype = PARE_U8;
    shape->ndim = ndim;
    for (int i = 0; i < ndim; i++) {
        shape->dims[i] = be32(head + 4 + 4 * i);
        if (shape->dims[i] == 0)
            return pare_fail(err, PARE_EINPUT, path, "dim %d of the IDX header is 0", i);
        bytes *= shape->dims[i];
        if (bytes > IDX_MAX_BYTES)
            return pare_fail(err, PARE_EINPUT, path,
                             "IDX header announces more than %" PRId64 " bytes of data", IDX_MAX_BYTES);
    }
    return PARE_OK;
}

pare_status pare_idx_load(const char *path, pare_tensor **out, pare_error *err)
{
    gzFile f = gzopen(path, "rb");
    pare_tensor shape = {0}, *t = NULL;
    pare_status rc;
    unsigned char extra;
    struct stat st;
    int64_t need, got;

    *out = NULL;
    if (!f)
        return pare_fail(err, PARE_EIO, path, "cannot open: %s",
                         errno ? strerror(errno) : "out of memory");
    rc = idx_header(f, path, &shape, err);
    need = pare_shape_numel(shape.ndim, shape.dims);
    if (rc == PARE_OK && gzdirect(f) && stat(path, &st) == 0 &&
        need > (int64_t)st.st_size - 4 - 4 * shape.ndim)
        /* a plain file too short for its header: say so before allocating */
        rc = pare_fail(err, PARE_EINPUT, path,
                       "truncated: expected %" PRId64 " bytes of data, found %" PRId64, need,
                       (int64_t)st.st_size - 4 - 4 * shape.ndim);
    if (rc == PARE_OK) {
        t = pare_tensor_new(PARE_U8, shape.ndim, shape.dims);
        if (!t)
            rc = pare_fail(err, PARE_ENOMEM, path, "out of memory reading IDX data");
    }
    if (rc == PARE_OK) {
        got = gz_read_all(f, t->data, (size_t)need);
        if (got < 0)
            rc = gz_error(f, path, err);
        else if (got < need)
            rc = pare_fail(err, PARE_EINPUT, path,
                           "truncated: expected %" PRId64 " bytes of data, found %" PRId64, need, got);
    }
    if (rc == PARE_OK) {
        got = gz_read_all(f, &extra, 1);
        if (got < 0)
            rc = gz_error(f, path, err);
        else if (got > 0)
            rc = pare_fail(err, PARE_EINPUT, path,
                           "unexpected bytes after the %" PRId64 " bytes of data the header announces",
                           pare_tensor_numel(t));
    }
    gzclose(f);
    if (rc == PARE_OK)
        *out = t;
    else
        pare_tensor_free(t);
    return rc;
}
