/* NPY and NPZ files: numpy's array format and its zip archive.
 *
 * .npy: "\x93NUMPY", major, minor, header length (u16 LE for 1.0, u32 LE for
 * 2.0 and 3.0), then a Python dict literal {'descr': '<f4', 'fortran_order':
 * False, 'shape': (3, 4), } padded with spaces and '\n', then the raw data.
 * We write 1.0 with the header padded so the data starts at a multiple of 64,
 * as numpy does.
 *
 * .npz: a zip of "<name>.npy" members. We read members that are stored or
 * deflated (raw deflate, zlib window -15), using the central directory for
 * sizes (numpy.savez writes zip64 extras in local headers only, with the real
 * sizes in the central directory), and write stored members like numpy.savez
 * without zip64. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zlib.h>

#include "pare/alloc.h"
#include "pare/data.h"

#define NPY_MAGIC "\x93NUMPY"
#define NPY_MAX_HEADER (1u << 20)
#define NPY_ALIGN 64

static bool host_is_little_endian(void)
{
    const uint16_t one = 1;
    return *(const unsigned char *)&one == 1;
}

static void swap_bytes(unsigned char *p, size_t count, size_t size)
{
    for (size_t i = 0; i < count; i++, p += size)
        for (size_t a = 0, b = size - 1; a < b; a++, b--) {
            unsigned char c = p[a];
            p[a] = p[b];
            p[b] = c;
        }
}

static uint16_t le16(const unsigned char *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put16(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}

static void put32(unsigned char *p, uint32_t v)
{
    put16(p, v);
    put16(p + 2, v >> 16);
}

/* ---- dtypes --------------------------------------------------------------- */

static const struct npy_type {
    char kind;
    int size;
    pare_dtype dtype;
} npy_types[] = {
    { 'f', 2, PARE_F16 }, { 'f', 4, PARE_F32 }, { 'f', 8, PARE_F64 },
    { 'i', 1, PARE_I8 },  { 'i', 2, PARE_I16 }, { 'i', 4, PARE_I32 }, { 'i', 8, PARE_I64 },
    { 'u', 1, PARE_U8 },  { 'u', 2, PARE_U16 }, { 'u', 4, PARE_U32 }, { 'u', 8, PARE_U64 },
    { 'b', 1, PARE_BOOL },
};

#define NPY_SUPPORTED "<f2 <f4 <f8 |i1 <i2 <i4 <i8 |u1 <u2 <u4 <u8 |b1 (or big-endian '>')"

/* "<f4" -> F32, *swap when the data's byte order differs from the host's. */
static pare_dtype descr_dtype(const char *descr, bool *swap)
{
    char order = descr[0], kind;
    int size;
    bool little;

    if (!order || !strchr("<>|=", order) || !descr[1] || !isdigit((unsigned char)descr[2]))
        return PARE_UNDEFINED;
    kind = descr[1];
    size = atoi(descr + 2);
    for (const char *p = descr + 2; *p; p++)
        if (!isdigit((unsigned char)*p))
            return PARE_UNDEFINED;
    little = order == '<' || ((order == '=' || order == '|') && host_is_little_endian());
    for (size_t i = 0; i < sizeof npy_types / sizeof npy_types[0]; i++)
        if (npy_types[i].kind == kind && npy_types[i].size == size) {
            *swap = size > 1 && little != host_is_little_endian();
            return npy_types[i].dtype;
        }
    return PARE_UNDEFINED;
}

static const char *dtype_descr(pare_dtype dtype)
{
    switch (dtype) {
    case PARE_F16: return "<f2";
    case PARE_F32: return "<f4";
    case PARE_F64: return "<f8";
    case PARE_I8: return "|i1";
    case PARE_I16: return "<i2";
    case PARE_I32: return "<i4";
    case PARE_I64: return "<i8";
    case PARE_U8: return "|u1";
    case PARE_U16: return "<u2";
    case PARE_U32: return "<u4";
    case PARE_U64: return "<u8";
    case PARE_BOOL: return "|b1";
    default: return NULL;
    }
}

/* ---- header dict ------------------------------------------------------------ */

typedef struct header_parser {
    const char *s, *end;
    const char *where;
    pare_error *err;
} header_parser;

static void skip_ws(header_parser *p)
{
    while (p->s < p->end && (*p->s == ' ' || *p->s == '\t' || *p->s == '\n' || *p->s == '\r'))
        p->s++;
}

static pare_status bad_header(header_parser *p, const char *what)
{
    return pare_fail(p->err, PARE_EINPUT, p->where, "bad .npy header: %s", what);
}

static bool eat(header_parser *p, char c)
{
    skip_ws(p);
    if (p->s < p->end && *p->s == c) {
        p->s++;
        return true;
    }
    return false;
}

/* A quoted Python string without escapes into buf. */
static bool parse_str(header_parser *p, char *buf, size_t size)
{
    char q;
    size_t n = 0;

    skip_ws(p);
    if (p->s >= p->end || (*p->s != '\'' && *p->s != '"'))
        return false;
    q = *p->s++;
    while (p->s < p->end && *p->s != q) {
        if (*p->s == '\\' || n + 1 >= size)
            return false;
        buf[n++] = *p->s++;
    }
    if (p->s >= p->end)
        return false;
    p->s++;
    buf[n] = '\0';
    return true;
}

static bool parse_word(header_parser *p, const char *word)
{
    size_t n = strlen(word);

    skip_ws(p);
    if ((size_t)(p->end - p->s) >= n && !memcmp(p->s, word, n)) {
        p->s += n;
        return true;
    }
    return false;
}

/* "(3, 4)", "(3,)", "()" */
static pare_status parse_shape(header_parser *p, pare_tensor *shape)
{
    int ndim = 0;

    if (!eat(p, '('))
        return bad_header(p, "'shape' is not a tuple");
    while (!eat(p, ')')) {
        int64_t v = 0;
        skip_ws(p);
        if (p->s >= p->end || !isdigit((unsigned char)*p->s))
            return bad_header(p, "'shape' holds something other than non-negative integers");
        while (p->s < p->end && isdigit((unsigned char)*p->s)) {
            if (v > (INT64_MAX - 9) / 10)
                return bad_header(p, "a dim of 'shape' is too large");
            v = v * 10 + (*p->s++ - '0');
        }
        if (p->s < p->end && *p->s == 'L') /* Python 2 longs */
            p->s++;
        if (ndim == PARE_MAX_DIMS)
            return pare_fail(p->err, PARE_EUNSUPPORTED, p->where,
                             "arrays of more than %d dims are not supported", PARE_MAX_DIMS);
        shape->dims[ndim++] = v;
        if (!eat(p, ',')) {
            if (!eat(p, ')'))
                return bad_header(p, "'shape' tuple is not closed");
            break;
        }
    }
    shape->ndim = ndim;
    return PARE_OK;
}

/* Parses the dict into shape (dtype, ndim, dims) and *swap. */
static pare_status parse_header(const char *hdr, size_t len, const char *where,
                                pare_tensor *shape, bool *swap, pare_error *err)
{
    header_parser p = { hdr, hdr + len, where, err };
    char key[32], descr[32] = "";
    bool have_descr = false, have_order = false, have_shape = false, fortran = false;
    pare_status rc;

    memset(shape, 0, sizeof *shape);
    if (!eat(&p, '{'))
        return bad_header(&p, "not a dict");
    while (!eat(&p, '}')) {
        if (!parse_str(&p, key, sizeof key))
            return bad_header(&p, "expected a quoted key");
        if (!eat(&p, ':'))
            return bad_header(&p, "expected ':' after a key");
        if (!strcmp(key, "descr")) {
            skip_ws(&p);
            if (p.s < p.end && *p.s == '[')
                return pare_fail(err, PARE_EUNSUPPORTED, where,
                                 "structured dtypes are not supported, only plain numeric arrays");
            if (!parse_str(&p, descr, sizeof descr))
                return bad_header(&p, "'descr' is not a string");
            have_descr = true;
        } else if (!strcmp(key, "fortran_order")) {
            if (parse_word(&p, "True"))
                fortran = true;
            else if (!parse_word(&p, "False"))
                return bad_header(&p, "'fortran_order' is not True or False");
            have_order = true;
        } else if (!strcmp(key, "shape")) {
            rc = parse_shape(&p, shape);
            if (rc != PARE_OK)
                return rc;
            have_shape = true;
        } else {
            return pare_fail(err, PARE_EINPUT, where, "bad .npy header: unexpected key '%s'", key);
        }
        if (!eat(&p, ',')) {
            if (!eat(&p, '}'))
                return bad_header(&p, "expected ',' or '}' after a value");
            break;
        }
    }
    if (!have_descr || !have_order || !have_shape)
        return pare_fail(err, PARE_EINPUT, where, "bad .npy header: missing '%s'",
                         !have_descr ? "descr" : !have_order ? "fortran_order" : "shape");
    if (fortran) {
        pare_fail(err, PARE_EUNSUPPORTED, where,
                  "fortran_order arrays are not supported, only C order");
        pare_error_hint(err, "save numpy.ascontiguousarray(a) instead");
        return PARE_EUNSUPPORTED;
    }
    shape->dtype = descr_dtype(descr, swap);
    if (shape->dtype == PARE_UNDEFINED) {
        pare_fail(err, PARE_EUNSUPPORTED, where, "dtype '%s' is not supported", descr);
        pare_error_hint(err, "supported: " NPY_SUPPORTED);
        return PARE_EUNSUPPORTED;
    }
    return PARE_OK;
}

/* Checks magic and version in the 8 first bytes; *len_bytes = 2 or 4. */
static pare_status check_preamble(const unsigned char *b, size_t have, const char *where,
                                  int *len_bytes, pare_error *err)
{
    if (have < 10 || memcmp(b, NPY_MAGIC, 6)) {
        if (have >= 6 && memcmp(b, NPY_MAGIC, 6))
            return pare_fail(err, PARE_EINPUT, where, "not an .npy file: bad magic");
        return pare_fail(err, PARE_EINPUT, where,
                         "truncated header: expected at least 10 bytes, found %zu", have);
    }
    if (b[6] < 1 || b[6] > 3)
        return pare_fail(err, PARE_EUNSUPPORTED, where,
                         ".npy format version %d.%d is not supported (1.0, 2.0 and 3.0 are)",
                         b[6], b[7]);
    *len_bytes = b[6] == 1 ? 2 : 4;
    return PARE_OK;
}

static int64_t shape_bytes(const pare_tensor *shape)
{
    int64_t n = (int64_t)pare_dtype_size(shape->dtype);

    for (int i = 0; i < shape->ndim; i++) {
        if (shape->dims[i] && n > INT64_MAX / 2 / shape->dims[i])
            return -1;
        n *= shape->dims[i];
    }
    return n;
}

static pare_status new_from_shape(const pare_tensor *shape, const char *where,
                                  pare_tensor **out, pare_error *err)
{
    if (shape_bytes(shape) < 0 || (uint64_t)shape_bytes(shape) > SIZE_MAX / 2)
        return pare_fail(err, PARE_EINPUT, where, "bad .npy header: the array is too large");
    *out = pare_tensor_new(shape->dtype, shape->ndim, shape->dims);
    if (!*out)
        return pare_fail(err, PARE_ENOMEM, where, "out of memory reading an array");
    return PARE_OK;
}

pare_status pare_npy_parse(const void *buf, size_t len, const char *where,
                           pare_tensor **out, pare_error *err)
{
    const unsigned char *b = buf;
    pare_tensor shape, *t = NULL;
    size_t hlen, start;
    int len_bytes = 2;
    bool swap = false;
    pare_status rc;

    *out = NULL;
    rc = check_preamble(b, len, where, &len_bytes, err);
    if (rc != PARE_OK)
        return rc;
    if (len < 8 + (size_t)len_bytes)
        return pare_fail(err, PARE_EINPUT, where, "truncated header: expected at least %d bytes, found %zu",
                         8 + len_bytes, len);
    hlen = len_bytes == 2 ? le16(b + 8) : le32(b + 8);
    start = 8 + (size_t)len_bytes + hlen;
    if (hlen > NPY_MAX_HEADER)
        return pare_fail(err, PARE_EINPUT, where, "bad .npy header: length %zu is too large", hlen);
    if (start > len)
        return pare_fail(err, PARE_EINPUT, where, "truncated header: expected %zu bytes, found %zu",
                         start, len);
    rc = parse_header((const char *)b + 8 + len_bytes, hlen, where, &shape, &swap, err);
    if (rc == PARE_OK && shape_bytes(&shape) >= 0 && (uint64_t)shape_bytes(&shape) > len - start)
        rc = pare_fail(err, PARE_EINPUT, where, "truncated: expected %" PRId64 " bytes of data, found %zu",
                       shape_bytes(&shape), len - start);
    if (rc == PARE_OK)
        rc = new_from_shape(&shape, where, &t, err);
    if (rc == PARE_OK) {
        memcpy(t->data, b + start, pare_tensor_nbytes(t));
        if (swap)
            swap_bytes(t->data, (size_t)pare_tensor_numel(t), pare_dtype_size(t->dtype));
        *out = t;
    } else {
        pare_tensor_free(t);
    }
    return rc;
}

/* Reads up to len bytes; returns bytes read or -1 on a read error. */
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
    return pare_fail(err, PARE_EIO, path, "read error: %s",
                     code == Z_ERRNO ? strerror(errno) : msg);
}

pare_status pare_npy_load(const char *path, pare_tensor **out, pare_error *err)
{
    gzFile f = gzopen(path, "rb");
    unsigned char pre[12];
    char *hdr = NULL;
    pare_tensor shape, *t = NULL;
    int len_bytes = 2;
    int64_t got;
    size_t hlen = 0;
    bool swap = false;
    struct stat st;
    pare_status rc;

    *out = NULL;
    if (!f)
        return pare_fail(err, PARE_EIO, path, "cannot open: %s", errno ? strerror(errno) : "out of memory");
    got = gz_read_all(f, pre, 10);
    if (got < 0)
        rc = gz_error(f, path, err);
    else
        rc = check_preamble(pre, (size_t)got, path, &len_bytes, err);
    if (rc == PARE_OK && len_bytes == 4) {
        got = gz_read_all(f, pre + 10, 2);
        if (got < 0)
            rc = gz_error(f, path, err);
        else if (got < 2)
            rc = pare_fail(err, PARE_EINPUT, path, "truncated header: expected at least 12 bytes, found %d",
                           10 + (int)got);
    }
    if (rc == PARE_OK) {
        hlen = len_bytes == 2 ? le16(pre + 8) : le32(pre + 8);
        if (hlen > NPY_MAX_HEADER)
            rc = pare_fail(err, PARE_EINPUT, path, "bad .npy header: length %zu is too large", hlen);
    }
    if (rc == PARE_OK) {
        hdr = pare_alloc(hlen + 1);
        if (!hdr)
            rc = pare_fail(err, PARE_ENOMEM, path, "out of memory reading an .npy header");
    }
    if (rc == PARE_OK) {
        got = gz_read_all(f, hdr, hlen);
        if (got < 0)
            rc = gz_error(f, path, err);
        else if ((size_t)got < hlen)
            rc = pare_fail(err, PARE_EINPUT, path, "truncated header: expected %zu bytes, found %zu",
                           8 + len_bytes + hlen, 8 + len_bytes + (size_t)got);
    }
    if (rc == PARE_OK)
        rc = parse_header(hdr, hlen, path, &shape, &swap, err);
    if (rc == PARE_OK && gzdirect(f) && stat(path, &st) == 0 && shape_bytes(&shape) >= 0 &&
        shape_bytes(&shape) > (int64_t)st.st_size - (int64_t)(8 + len_bytes + hlen))
        /* a plain file too short for its header's shape: say so before allocating */
        rc = pare_fail(err, PARE_EINPUT, path, "truncated: expected %" PRId64 " bytes of data, found %" PRId64,
                       shape_bytes(&shape), (int64_t)st.st_size - (int64_t)(8 + len_bytes + hlen));
    if (rc == PARE_OK)
        rc = new_from_shape(&shape, path, &t, err);
    if (rc == PARE_OK) {
        got = gz_read_all(f, t->data, pare_tensor_nbytes(t));
        if (got < 0)
            rc = gz_error(f, path, err);
        else if ((size_t)got < pare_tensor_nbytes(t))
            rc = pare_fail(err, PARE_EINPUT, path, "truncated: expected %zu bytes of data, found %zu",
                           pare_tensor_nbytes(t), (size_t)got);
    }
    if (rc == PARE_OK && swap)
        swap_bytes(t->data, (size_t)pare_tensor_numel(t), pare_dtype_size(t->dtype));
    gzclose(f);
    pare_free(hdr);
    if (rc == PARE_OK)
        *out = t;
    else
        pare_tensor_free(t);
    return rc;
}

/* ---- writing ------------------------------------------------------------------ */

/* The .npy header (preamble included) for t, padded to NPY_ALIGN; *len set. */
static pare_status npy_header(const pare_tensor *t, const char *where, char *buf, size_t size,
                              size_t *len, pare_error *err)
{
    const char *descr = dtype_descr(t->dtype);
    char dict[512];
    size_t n, total;
    int k;

    if (!descr)
        return pare_fail(err, PARE_EUNSUPPORTED, where,
                         "%s tensors cannot be saved as .npy", pare_dtype_name(t->dtype));
    if (!t->data)
        return pare_fail(err, PARE_EINPUT, where, "the tensor has no data to save");
    if (t->ndim < 0 || t->ndim > PARE_MAX_DIMS)
        return pare_fail(err, PARE_EINPUT, where, "bad tensor rank %d", t->ndim);
    k = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr);
    for (int i = 0; i < t->ndim; i++)
        k += snprintf(dict + k, sizeof dict - (size_t)k, "%s%" PRId64, i ? ", " : "", t->dims[i]);
    k += snprintf(dict + k, sizeof dict - (size_t)k, "%s), }", t->ndim == 1 ? "," : "");
    n = (size_t)k;
    total = (10 + n + 1 + NPY_ALIGN - 1) / NPY_ALIGN * NPY_ALIGN;
    if (total > size)
        return pare_fail(err, PARE_EINTERNAL, where, ".npy header does not fit");
    memcpy(buf, NPY_MAGIC, 6);
    buf[6] = 1;
    buf[7] = 0;
    put16((unsigned char *)buf + 8, (uint32_t)(total - 10));
    memcpy(buf + 10, dict, n);
    memset(buf + 10 + n, ' ', total - 10 - n - 1);
    buf[total - 1] = '\n';
    *len = total;
    return PARE_OK;
}

/* Streams t's data in little-endian order to f (when non-NULL) and into *crc
 * (when non-NULL). Returns false on a write error. */
static bool emit_data(const pare_tensor *t, FILE *f, uLong *crc)
{
    size_t esize = pare_dtype_size(t->dtype), total = pare_tensor_nbytes(t);
    const unsigned char *p = t->data;
    bool swap = esize > 1 && !host_is_little_endian();
    unsigned char tmp[1 << 16];

    for (size_t off = 0; off < total;) {
        size_t chunk = total - off > sizeof tmp ? sizeof tmp : total - off;
        const unsigned char *src = p + off;
        if (swap) {
            memcpy(tmp, src, chunk);
            swap_bytes(tmp, chunk / esize, esize);
            src = tmp;
        }
        if (crc)
            *crc = crc32(*crc, src, (uInt)chunk);
        if (f && fwrite(src, 1, chunk, f) != chunk)
            return false;
        off += chunk;
    }
    return true;
}

/* A temp file next to path; *tmp receives its name. */
static FILE *open_temp(const char *path, char *tmp, size_t size, pare_error *err)
{
    int fd;
    FILE *f;

    if ((size_t)snprintf(tmp, size, "%s.tmp-XXXXXX", path) >= size) {
        pare_fail(err, PARE_EIO, path, "path is too long");
        return NULL;
    }
    fd = mkstemp(tmp);
    if (fd < 0) {
        pare_fail(err, PARE_EIO, path, "cannot create a temporary file: %s", strerror(errno));
        return NULL;
    }
    (void)fchmod(fd, 0644);
    f = fdopen(fd, "wb");
    if (!f) {
        pare_fail(err, PARE_EIO, path, "cannot open a temporary file: %s", strerror(errno));
        close(fd);
        unlink(tmp);
    }
    return f;
}

/* Closes f and renames tmp over path when rc is OK; removes tmp otherwise. */
static pare_status finish_temp(FILE *f, const char *tmp, const char *path, pare_status rc,
                               pare_error *err)
{
    int saved;

    if (rc == PARE_OK && (fflush(f) || ferror(f)))
        rc = pare_fail(err, PARE_EIO, path, "write error: %s", strerror(errno));
    saved = errno;
    if (fclose(f) && rc == PARE_OK)
        rc = pare_fail(err, PARE_EIO, path, "write error: %s", strerror(errno));
    errno = saved;
    if (rc == PARE_OK && rename(tmp, path))
        rc = pare_fail(err, PARE_EIO, path, "cannot rename the temporary file: %s", strerror(errno));
    if (rc != PARE_OK)
        unlink(tmp);
    return rc;
}

pare_status pare_npy_save(const char *path, const pare_tensor *t, pare_error *err)
{
    char hdr[1024], tmp[PATH_MAX];
    size_t hlen;
    FILE *f;
    pare_status rc = npy_header(t, path, hdr, sizeof hdr, &hlen, err);

    if (rc != PARE_OK)
        return rc;
    f = open_temp(path, tmp, sizeof tmp, err);
    if (!f)
        return PARE_EIO;
    if (fwrite(hdr, 1, hlen, f) != hlen || !emit_data(t, f, NULL))
        rc = pare_fail(err, PARE_EIO, path, "write error: %s", strerror(errno));
    return finish_temp(f, tmp, path, rc, err);
}

/* ---- NPZ ------------------------------------------------------------------------ */

#define ZIP_LOCAL_SIG 0x04034b50u
#define ZIP_CENTRAL_SIG 0x02014b50u
#define ZIP_END_SIG 0x06054b50u
#define ZIP64_LOCATOR_SIG 0x07064b50u
#define ZIP_DOS_DATE 0x21 /* 1980-01-01, as numpy.savez writes */

static pare_status read_file(const char *path, unsigned char **out, size_t *len, pare_error *err)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf = NULL;
    size_t cap = 0, n = 0;
    pare_status rc = PARE_OK;

    *out = NULL;
    *len = 0;
    if (!f)
        return pare_fail(err, PARE_EIO, path, "cannot open: %s", strerror(errno));
    for (;;) {
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 1 << 16;
            unsigned char *nb = ncap > cap ? pare_realloc(buf, ncap) : NULL;
            if (!nb) {
                rc = pare_fail(err, PARE_ENOMEM, path, "out of memory reading the file");
                break;
            }
            buf = nb;
            cap = ncap;
        }
        n += fread(buf + n, 1, cap - n, f);
        if (ferror(f)) {
            rc = pare_fail(err, PARE_EIO, path, "read error: %s", strerror(errno));
            break;
        }
        if (feof(f))
            break;
    }
    fclose(f);
    if (rc == PARE_OK) {
        *out = buf;
        *len = n;
    } else {
        pare_free(buf);
    }
    return rc;
}

void pare_npz_free(pare_npz *z)
{
    if (!z)
        return;
    for (int i = 0; i < z->n; i++) {
        pare_free(z->names[i]);
        pare_tensor_free(z->arrays[i]);
    }
    pare_free(z->names);
    pare_free(z->arrays);
    pare_free(z);
}

const pare_tensor *pare_npz_find(const pare_npz *z, const char *name)
{
    for (int i = 0; z && i < z->n; i++)
        if (!strcmp(z->names[i], name))
            return z->arrays[i];
    return NULL;
}

/* Inflates a raw deflate stream of clen bytes into exactly ulen bytes. */
static pare_status inflate_member(const unsigned char *src, size_t clen, unsigned char *dst,
                                  size_t ulen, const char *where, pare_error *err)
{
    z_stream zs;
    int zr;
    pare_status rc = PARE_OK;

    memset(&zs, 0, sizeof zs);
    if (clen > UINT_MAX || ulen > UINT_MAX)
        return pare_fail(err, PARE_EUNSUPPORTED, where, "members past 4 GiB are not supported");
    if (inflateInit2(&zs, -15) != Z_OK)
        return pare_fail(err, PARE_ENOMEM, where, "out of memory inflating a member");
    zs.next_in = (Bytef *)(uintptr_t)src;
    zs.avail_in = (uInt)clen;
    zs.next_out = dst;
    zs.avail_out = (uInt)ulen;
    zr = inflate(&zs, Z_FINISH);
    if (zr == Z_MEM_ERROR)
        rc = pare_fail(err, PARE_ENOMEM, where, "out of memory inflating a member");
    else if (zr != Z_STREAM_END || zs.total_out != ulen)
        rc = pare_fail(err, PARE_EINPUT, where, "corrupt deflate data: %s",
                       zs.msg ? zs.msg : zr == Z_STREAM_END || zr == Z_BUF_ERROR
                                             ? "size differs from the directory" : "bad stream");
    inflateEnd(&zs);
    return rc;
}

/* Appends one array to z (takes name and t on success). */
static pare_status npz_push(pare_npz *z, char *name, pare_tensor *t, const char *path,
                            pare_error *err)
{
    char **names = pare_realloc(z->names, (size_t)(z->n + 1) * sizeof *names);
    pare_tensor **arrays;

    if (names)
        z->names = names;
    arrays = names ? pare_realloc(z->arrays, (size_t)(z->n + 1) * sizeof *arrays) : NULL;
    if (!arrays)
        return pare_fail(err, PARE_ENOMEM, path, "out of memory reading an .npz");
    z->arrays = arrays;
    z->names[z->n] = name;
    z->arrays[z->n] = t;
    z->n++;
    return PARE_OK;
}

/* One central directory entry at *pos: reads its member into z. */
static pare_status npz_member(const unsigned char *b, size_t len, size_t *pos, const char *path,
                              pare_npz *z, pare_error *err)
{
    const unsigned char *c = b + *pos, *data;
    unsigned flags, method, nlen, xlen, clen_c;
    uint32_t crc, csize, usize, lho;
    char where[600], name[256];
    unsigned char *plain = NULL;
    pare_tensor *t = NULL;
    char *aname = NULL;
    pare_status rc = PARE_OK;

    if (len - *pos < 46 || le32(c) != ZIP_CENTRAL_SIG)
        return pare_fail(err, PARE_EINPUT, path, "corrupt zip: bad central directory entry");
    flags = le16(c + 8);
    method = le16(c + 10);
    crc = le32(c + 16);
    csize = le32(c + 20);
    usize = le32(c + 24);
    nlen = le16(c + 28);
    xlen = le16(c + 30);
    clen_c = le16(c + 32);
    lho = le32(c + 42);
    if (len - *pos - 46 < (size_t)nlen + xlen + clen_c)
        return pare_fail(err, PARE_EINPUT, path, "corrupt zip: central directory entry runs past the end");
    snprintf(name, sizeof name, "%.*s", (int)nlen, (const char *)c + 46);
    *pos += 46 + (size_t)nlen + xlen + clen_c;
    snprintf(where, sizeof where, "%s: member '%s'", path, name);
    if (nlen < 5 || strlen(name) != nlen || strcmp(name + nlen - 4, ".npy"))
        return PARE_OK; /* not an array: skip */
    if (csize == 0xffffffffu || usize == 0xffffffffu || lho == 0xffffffffu)
        return pare_fail(err, PARE_EUNSUPPORTED, where, "zip64 archives are not supported");
    if (flags & 1)
        return pare_fail(err, PARE_EUNSUPPORTED, where, "encrypted members are not supported");
    if (method != 0 && method != 8)
        return pare_fail(err, PARE_EUNSUPPORTED, where,
                         "zip compression method %u is not supported (stored and deflate are)", method);
    if ((size_t)lho > len || len - lho < 30 || le32(b + lho) != ZIP_LOCAL_SIG)
        return pare_fail(err, PARE_EINPUT, where, "corrupt zip: bad local header");
    data = b + lho + 30 + le16(b + lho + 26) + le16(b + lho + 28);
    if (data > b + len || (size_t)(b + len - data) < csize)
        return pare_fail(err, PARE_EINPUT, where, "truncated: member data runs past the end of the archive");
    if (method == 0 && csize != usize)
        return pare_fail(err, PARE_EINPUT, where, "corrupt zip: stored member sizes differ");
    if (method == 8) {
        plain = pare_alloc(usize ? usize : 1);
        if (!plain)
            return pare_fail(err, PARE_ENOMEM, where, "out of memory inflating a member");
        rc = inflate_member(data, csize, plain, usize, where, err);
        data = plain;
    }
    if (rc == PARE_OK && crc32(crc32(0, NULL, 0), data, usize) != crc)
        rc = pare_fail(err, PARE_EINPUT, where, "CRC mismatch: the archive is corrupt");
    if (rc == PARE_OK)
        rc = pare_npy_parse(data, usize, where, &t, err);
    if (rc == PARE_OK) {
        aname = pare_strndup(name, nlen - 4);
        rc = aname ? npz_push(z, aname, t, path, err)
                   : pare_fail(err, PARE_ENOMEM, where, "out of memory");
    }
    if (rc != PARE_OK) {
        pare_free(aname);
        pare_tensor_free(t);
    }
    pare_free(plain);
    return rc;
}

/* Finds the end-of-central-directory record; returns its offset or -1. */
static int64_t find_eocd(const unsigned char *b, size_t len)
{
    size_t lo = len > 22 + 65535 ? len - 22 - 65535 : 0;

    if (len < 22)
        return -1;
    for (size_t i = len - 22 + 1; i-- > lo;)
        if (le32(b + i) == ZIP_END_SIG && i + 22 + le16(b + i + 20) == len)
            return (int64_t)i;
    return -1;
}

pare_status pare_npz_load(const char *path, pare_npz **out, pare_error *err)
{
    unsigned char *b = NULL;
    size_t len = 0, pos;
    int64_t eocd;
    pare_npz *z = NULL;
    pare_status rc;
    unsigned entries = 0;
    uint32_t cd_size = 0, cd_off = 0;

    *out = NULL;
    rc = read_file(path, &b, &len, err);
    if (rc == PARE_OK) {
        eocd = find_eocd(b, len);
        if (eocd < 0) {
            rc = pare_fail(err, PARE_EINPUT, path, "not an .npz file: no zip end record");
        } else {
            entries = le16(b + eocd + 10);
            cd_size = le32(b + eocd + 12);
            cd_off = le32(b + eocd + 16);
            if (entries == 0xffff || cd_size == 0xffffffffu || cd_off == 0xffffffffu ||
                (eocd >= 20 && le32(b + eocd - 20) == ZIP64_LOCATOR_SIG))
                rc = pare_fail(err, PARE_EUNSUPPORTED, path, "zip64 archives are not supported");
            else if (le16(b + eocd + 4) != 0 || le16(b + eocd + 6) != 0 ||
                     le16(b + eocd + 8) != entries)
                rc = pare_fail(err, PARE_EUNSUPPORTED, path, "multi-disk zip archives are not supported");
            else if ((uint64_t)cd_off + cd_size > (uint64_t)eocd)
                rc = pare_fail(err, PARE_EINPUT, path, "corrupt zip: central directory out of bounds");
        }
    }
    if (rc == PARE_OK) {
        z = pare_calloc(1, sizeof *z);
        if (!z)
            rc = pare_fail(err, PARE_ENOMEM, path, "out of memory reading an .npz");
    }
    pos = cd_off;
    for (unsigned i = 0; rc == PARE_OK && i < entries; i++)
        rc = npz_member(b, cd_off + (size_t)cd_size, &pos, path, z, err);
    pare_free(b);
    if (rc == PARE_OK)
        *out = z;
    else
        pare_npz_free(z);
    return rc;
}

typedef struct npz_entry {
    uint32_t crc, size, offset;
    size_t nlen;
} npz_entry;

static void local_header(unsigned char *h, const npz_entry *e)
{
    put32(h, ZIP_LOCAL_SIG);
    put16(h + 4, 20);        /* version needed: 2.0 */
    put16(h + 6, 0);         /* flags */
    put16(h + 8, 0);         /* stored */
    put16(h + 10, 0);        /* time */
    put16(h + 12, ZIP_DOS_DATE);
    put32(h + 14, e->crc);
    put32(h + 18, e->size);
    put32(h + 22, e->size);
    put16(h + 26, (uint32_t)e->nlen);
    put16(h + 28, 0);        /* extra */
}

static void central_header(unsigned char *h, const npz_entry *e)
{
    put32(h, ZIP_CENTRAL_SIG);
    put16(h + 4, 3 << 8 | 20); /* made by: unix, 2.0 */
    put16(h + 6, 20);
    put16(h + 8, 0);
    put16(h + 10, 0);
    put16(h + 12, 0);
    put16(h + 14, ZIP_DOS_DATE);
    put32(h + 16, e->crc);
    put32(h + 20, e->size);
    put32(h + 24, e->size);
    put16(h + 28, (uint32_t)e->nlen);
    put16(h + 30, 0);          /* extra */
    put16(h + 32, 0);          /* comment */
    put16(h + 34, 0);          /* disk */
    put16(h + 36, 0);          /* internal attributes */
    put32(h + 38, 0644u << 16); /* external: rw-r--r-- */
    put32(h + 42, e->offset);
}

static pare_status check_names(const char *path, const char *const *names,
                               const pare_tensor *const *arrays, int n, pare_error *err)
{
    if (n < 0 || n > 0xfffe)
        return pare_fail(err, PARE_EINPUT, path, "bad array count %d", n);
    for (int i = 0; i < n; i++) {
        /* '/' is allowed, as numpy.savez allows it (ONNX value names hold
           it); a name that would escape the archive's root is not. */
        if (!names[i] || !names[i][0] || strlen(names[i]) > 200 || !strcmp(names[i], "..") ||
            !strncmp(names[i], "../", 3) || strstr(names[i], "/../") ||
            (strlen(names[i]) >= 3 && !strcmp(names[i] + strlen(names[i]) - 3, "/..")))
            return pare_fail(err, PARE_EINPUT, path, "bad array name '%s'", names[i] ? names[i] : "");
        if (!arrays[i])
            return pare_fail(err, PARE_EINPUT, path, "array '%s' is missing", names[i]);
        for (int j = 0; j < i; j++)
            if (!strcmp(names[i], names[j]))
                return pare_fail(err, PARE_EINPUT, path, "array name '%s' is used twice", names[i]);
    }
    return PARE_OK;
}

pare_status pare_npz_save(const char *path, const char *const *names,
                          const pare_tensor *const *arrays, int n, pare_error *err)
{
    char tmp[PATH_MAX], hdr[1024], member[256];
    unsigned char zh[46];
    npz_entry *ent = NULL;
    uint64_t off = 0, cd_size = 0;
    FILE *f = NULL;
    pare_status rc = check_names(path, names, arrays, n, err);

    if (rc == PARE_OK) {
        ent = pare_calloc((size_t)n + 1, sizeof *ent);
        if (!ent)
            rc = pare_fail(err, PARE_ENOMEM, path, "out of memory writing an .npz");
    }
    if (rc == PARE_OK) {
        f = open_temp(path, tmp, sizeof tmp, err);
        if (!f)
            rc = PARE_EIO;
    }
    for (int i = 0; rc == PARE_OK && i < n; i++) {
        size_t hlen = 0;
        uLong crc = crc32(0, NULL, 0);
        uint64_t size;

        snprintf(member, sizeof member, "%s.npy", names[i]);
        rc = npy_header(arrays[i], path, hdr, sizeof hdr, &hlen, err);
        if (rc != PARE_OK)
            break;
        size = hlen + (uint64_t)pare_tensor_nbytes(arrays[i]);
        if (size >= 0xffffffffu || off + 30 + strlen(member) + size >= 0xffffffffu) {
            rc = pare_fail(err, PARE_EUNSUPPORTED, path,
                           "array '%s' would need a zip64 archive (past 4 GiB)", names[i]);
            break;
        }
        crc = crc32(crc, (const Bytef *)hdr, (uInt)hlen);
        emit_data(arrays[i], NULL, &crc);
        ent[i].crc = (uint32_t)crc;
        ent[i].size = (uint32_t)size;
        ent[i].offset = (uint32_t)off;
        ent[i].nlen = strlen(member);
        local_header(zh, &ent[i]);
        if (fwrite(zh, 1, 30, f) != 30 || fwrite(member, 1, ent[i].nlen, f) != ent[i].nlen ||
            fwrite(hdr, 1, hlen, f) != hlen || !emit_data(arrays[i], f, NULL))
            rc = pare_fail(err, PARE_EIO, path, "write error: %s", strerror(errno));
        off += 30 + ent[i].nlen + size;
    }
    for (int i = 0; rc == PARE_OK && i < n; i++) {
        snprintf(member, sizeof member, "%s.npy", names[i]);
        central_header(zh, &ent[i]);
        if (fwrite(zh, 1, 46, f) != 46 || fwrite(member, 1, ent[i].nlen, f) != ent[i].nlen)
            rc = pare_fail(err, PARE_EIO, path, "write error: %s", strerror(errno));
        cd_size += 46 + ent[i].nlen;
    }
    if (rc == PARE_OK && off + cd_size >= 0xffffffffu)
        rc = pare_fail(err, PARE_EUNSUPPORTED, path, "the archive would need zip64 (past 4 GiB)");
    if (rc == PARE_OK) {
        unsigned char end[22];
        put32(end, ZIP_END_SIG);
        put16(end + 4, 0);
        put16(end + 6, 0);
        put16(end + 8, (uint32_t)n);
        put16(end + 10, (uint32_t)n);
        put32(end + 12, (uint32_t)cd_size);
        put32(end + 16, (uint32_t)off);
        put16(end + 20, 0);
        if (fwrite(end, 1, 22, f) != 22)
            rc = pare_fail(err, PARE_EIO, path, "write error: %s", strerror(errno));
    }
    if (f)
        rc = finish_temp(f, tmp, path, rc, err);
    pare_free(ent);
    return rc;
}
