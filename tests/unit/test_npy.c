/* NPY and NPZ: round trips for every dtype, numpy's exact header, foreign
 * files (2.0/3.0 headers, big-endian, deflated and numpy.savez-style zip
 * members) and the error paths. */
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

static char tmpdir[64];

static int make_tmpdir(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/pare-npy-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int remove_tmpdir(void **state)
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

static int count_files(void)
{
    DIR *d = opendir(tmpdir);
    struct dirent *e;
    int n = 0;

    while (d && (e = readdir(d)))
        n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    if (d)
        closedir(d);
    return n;
}

static void write_bytes(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static unsigned char *read_bytes(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    unsigned char *b;
    long n;

    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    b = malloc((size_t)n + 1);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return b;
}

/* A tensor whose bytes follow a pattern that depends on dtype and index. */
static pare_tensor *patterned(pare_dtype dt, int ndim, const int64_t *dims)
{
    pare_tensor *t = pare_tensor_new(dt, ndim, dims);
    unsigned char *b;

    assert_non_null(t);
    b = t->data;
    for (size_t i = 0; i < pare_tensor_nbytes(t); i++)
        b[i] = (unsigned char)(i * 37 + (size_t)dt * 11 + 5);
    if (dt == PARE_BOOL)
        for (size_t i = 0; i < pare_tensor_nbytes(t); i++)
            b[i] &= 1;
    if (dt == PARE_F16) /* keep halves finite: clear the top exponent bit */
        for (size_t i = 1; i < pare_tensor_nbytes(t); i += 2)
            b[i] &= 0xbf;
    return t;
}

static void assert_same_tensor(const pare_tensor *a, const pare_tensor *b)
{
    assert_int_equal(a->dtype, b->dtype);
    assert_int_equal(a->ndim, b->ndim);
    for (int i = 0; i < a->ndim; i++)
        assert_int_equal(a->dims[i], b->dims[i]);
    assert_memory_equal(a->data, b->data, pare_tensor_nbytes(a));
}

static void test_roundtrip_every_dtype(void **state)
{
    static const pare_dtype dts[] = { PARE_F32, PARE_F64, PARE_I64, PARE_I32, PARE_U8, PARE_I8,
                                      PARE_BOOL, PARE_F16, PARE_I16, PARE_U16, PARE_U32, PARE_U64 };
    static const int64_t shapes[][3] = { { 2, 3, 4 }, { 7, 0, 0 }, { 0, 0, 0 } };
    static const int ndims[] = { 3, 1, 0 };
    pare_error err = {0};
    (void)state;

    for (size_t d = 0; d < sizeof dts / sizeof dts[0]; d++)
        for (int s = 0; s < 3; s++) {
            pare_tensor *t = patterned(dts[d], ndims[s], shapes[s]), *back = NULL;
            assert_int_equal(pare_npy_save(tmp("a.npy"), t, &err), PARE_OK);
            assert_int_equal(pare_npy_load(tmp("a.npy"), &back, &err), PARE_OK);
            assert_same_tensor(t, back);
            pare_tensor_free(back);
            pare_tensor_free(t);
        }
    assert_int_equal(count_files(), 1); /* the temp file was renamed */
}

static void test_header_matches_numpy(void **state)
{
    static const char want2d[] = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
    static const char want1d[] = "{'descr': '|u1', 'fortran_order': False, 'shape': (5,), }";
    int64_t d2[] = { 2, 3 }, d1[] = { 5 };
    pare_tensor *t = pare_tensor_new(PARE_F32, 2, d2), *u = pare_tensor_new(PARE_U8, 1, d1);
    pare_error err = {0};
    unsigned char *b;
    size_t len, hlen;
    (void)state;

    pare_tensor_f32(t)[5] = 1.5f;
    assert_int_equal(pare_npy_save(tmp("h.npy"), t, &err), PARE_OK);
    b = read_bytes(tmp("h.npy"), &len);
    assert_memory_equal(b, "\x93NUMPY\x01\x00", 8);
    hlen = b[8] | (size_t)b[9] << 8;
    assert_int_equal((10 + hlen) % 64, 0);
    assert_int_equal(len, 10 + hlen + 24);
    assert_memory_equal(b + 10, want2d, strlen(want2d));
    assert_int_equal(b[10 + hlen - 1], '\n');
    assert_int_equal(b[10 + strlen(want2d)], ' ');
    assert_memory_equal(b + 10 + hlen + 20, "\x00\x00\xc0\x3f", 4); /* 1.5f, little-endian */
    free(b);

    assert_int_equal(pare_npy_save(tmp("h1.npy"), u, &err), PARE_OK);
    b = read_bytes(tmp("h1.npy"), &len);
    assert_memory_equal(b + 10, want1d, strlen(want1d));
    free(b);
    pare_tensor_free(t);
    pare_tensor_free(u);
}

/* An .npy image with the given version, dict and data. */
static size_t make_npy(unsigned char *buf, int major, const char *dict, const void *data, size_t dlen)
{
    size_t n = strlen(dict), lb = major == 1 ? 2 : 4, total = 8 + lb + n + 1, pad;

    pad = (64 - total % 64) % 64;
    memcpy(buf, "\x93NUMPY", 6);
    buf[6] = (unsigned char)major;
    buf[7] = 0;
    memset(buf + 8, 0, lb);
    buf[8] = (unsigned char)((n + 1 + pad) & 0xff);
    buf[9] = (unsigned char)((n + 1 + pad) >> 8);
    memcpy(buf + 8 + lb, dict, n);
    memset(buf + 8 + lb + n, ' ', pad);
    buf[8 + lb + n + pad] = '\n';
    memcpy(buf + total + pad, data, dlen);
    return total + pad + dlen;
}

static void test_versions_2_and_3_and_big_endian(void **state)
{
    const int32_t vals[] = { 1, -2, 300000 };
    const unsigned char be[] = { 0x3f, 0x80, 0, 0, 0xc0, 0x20, 0, 0 }; /* 1.0f, -2.5f */
    unsigned char buf[512];
    pare_tensor *t = NULL;
    pare_error err = {0};
    size_t len;
    (void)state;

    for (int major = 2; major <= 3; major++) {
        len = make_npy(buf, major, "{\"descr\":\"<i4\",\"fortran_order\":False,\"shape\":(3,)}", vals,
                       sizeof vals);
        write_bytes(tmp("v.npy"), buf, len);
        assert_int_equal(pare_npy_load(tmp("v.npy"), &t, &err), PARE_OK);
        assert_int_equal(t->dtype, PARE_I32);
        assert_int_equal(t->ndim, 1);
        assert_int_equal(t->dims[0], 3);
        assert_memory_equal(t->data, vals, sizeof vals);
        pare_tensor_free(t);
    }
    len = make_npy(buf, 1, "{'descr': '>f4', 'fortran_order': False, 'shape': (1, 2), }", be, sizeof be);
    assert_int_equal(pare_npy_parse(buf, len, "be.npy", &t, &err), PARE_OK);
    assert_int_equal(t->dtype, PARE_F32);
    assert_float_equal(pare_tensor_f32(t)[0], 1.0f, 0.0f);
    assert_float_equal(pare_tensor_f32(t)[1], -2.5f, 0.0f);
    pare_tensor_free(t);
}

static void test_gzip_npy_reads(void **state)
{
    const double vals[] = { 0.5, -1.25 };
    unsigned char buf[256];
    size_t len = make_npy(buf, 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", vals,
                          sizeof vals);
    gzFile g = gzopen(tmp("z.npy.gz"), "wb");
    pare_tensor *t = NULL;
    pare_error err = {0};
    (void)state;

    assert_non_null(g);
    assert_int_equal(gzwrite(g, buf, (unsigned)len), (int)len);
    assert_int_equal(gzclose(g), Z_OK);
    assert_int_equal(pare_npy_load(tmp("z.npy.gz"), &t, &err), PARE_OK);
    assert_int_equal(t->dtype, PARE_F64);
    assert_memory_equal(t->data, vals, sizeof vals);
    pare_tensor_free(t);
}

static void test_npy_errors(void **state)
{
    const float vals[4] = { 0 };
    unsigned char buf[512];
    pare_tensor *t = NULL;
    pare_error err = {0};
    size_t len;
    int64_t dims[] = { 2 };
    pare_tensor *bf;
    (void)state;

    len = make_npy(buf, 1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", vals, 16);
    assert_int_equal(pare_npy_parse(buf, len, "f.npy", &t, &err), PARE_EUNSUPPORTED);
    assert_string_equal(err.where, "f.npy");
    assert_string_equal(err.msg, "fortran_order arrays are not supported, only C order");
    assert_string_equal(err.hint, "save numpy.ascontiguousarray(a) instead");
    assert_null(t);

    len = make_npy(buf, 1, "{'descr': '<c8', 'fortran_order': False, 'shape': (2,), }", vals, 16);
    assert_int_equal(pare_npy_parse(buf, len, "c.npy", &t, &err), PARE_EUNSUPPORTED);
    assert_string_equal(err.msg, "dtype '<c8' is not supported");

    len = make_npy(buf, 1, "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }", vals, 16);
    assert_int_equal(pare_npy_parse(buf, len, "s.npy", &t, &err), PARE_EUNSUPPORTED);

    len = make_npy(buf, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }", vals, 16);
    assert_int_equal(pare_npy_parse(buf, len - 3, "t.npy", &t, &err), PARE_EINPUT);
    assert_string_equal(err.msg, "truncated: expected 16 bytes of data, found 13");
    write_bytes(tmp("t.npy"), buf, len - 3);
    assert_int_equal(pare_npy_load(tmp("t.npy"), &t, &err), PARE_EINPUT);
    assert_string_equal(err.where, tmp("t.npy"));
    assert_string_equal(err.msg, "truncated: expected 16 bytes of data, found 13");

    len = make_npy(buf, 1, "{'descr': '<f4', 'shape': (2, 2), }", vals, 16);
    assert_int_equal(pare_npy_parse(buf, len, "m.npy", &t, &err), PARE_EINPUT);
    assert_string_equal(err.msg, "bad .npy header: missing 'fortran_order'");

    len = make_npy(buf, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, x), }", vals, 16);
    assert_int_equal(pare_npy_parse(buf, len, "x.npy", &t, &err), PARE_EINPUT);
    assert_string_equal(err.msg, "bad .npy header: 'shape' holds something other than non-negative integers");

    buf[6] = 4;
    assert_int_equal(pare_npy_parse(buf, len, "v.npy", &t, &err), PARE_EUNSUPPORTED);
    assert_string_equal(err.msg, ".npy format version 4.0 is not supported (1.0, 2.0 and 3.0 are)");

    write_bytes(tmp("bad.npy"), "PK\3\4 not npy", 13);
    assert_int_equal(pare_npy_load(tmp("bad.npy"), &t, &err), PARE_EINPUT);
    assert_string_equal(err.msg, "not an .npy file: bad magic");

    assert_int_equal(pare_npy_load(tmp("missing.npy"), &t, &err), PARE_EIO);
    assert_string_equal(err.msg, "cannot open: No such file or directory");

    bf = pare_tensor_new(PARE_BF16, 1, dims);
    assert_int_equal(pare_npy_save(tmp("bf.npy"), bf, &err), PARE_EUNSUPPORTED);
    assert_string_equal(err.msg, "bfloat16 tensors cannot be saved as .npy");
    assert_int_equal(access(tmp("bf.npy"), F_OK), -1);
    assert_int_equal(pare_npy_save("/nonexistent-dir/x.npy", bf, &err), PARE_EUNSUPPORTED);
    bf->dtype = PARE_F16;
    assert_int_equal(pare_npy_save("/nonexistent-dir/x.npy", bf, &err), PARE_EIO);
    assert_string_equal(err.where, "/nonexistent-dir/x.npy");
    pare_tensor_free(bf);
}

static void test_npz_roundtrip(void **state)
{
    int64_t dx[] = { 3, 2, 2 }, dy[] = { 3 };
    pare_tensor *x = patterned(PARE_F32, 3, dx), *y = patterned(PARE_I64, 1, dy);
    const char *names[] = { "x", "y" };
    const pare_tensor *arrays[] = { x, y };
    pare_npz *z = NULL;
    pare_error err = {0};
    unsigned char *b;
    size_t len;
    (void)state;

    assert_int_equal(pare_npz_save(tmp("d.npz"), names, arrays, 2, &err), PARE_OK);
    assert_int_equal(pare_npz_load(tmp("d.npz"), &z, &err), PARE_OK);
    assert_int_equal(z->n, 2);
    assert_string_equal(z->names[0], "x");
    assert_string_equal(z->names[1], "y");
    assert_same_tensor(x, pare_npz_find(z, "x"));
    assert_same_tensor(y, pare_npz_find(z, "y"));
    assert_null(pare_npz_find(z, "z"));
    pare_npz_free(z);

    /* Zip structure: a stored local header named x.npy, an end record with 2 entries. */
    b = read_bytes(tmp("d.npz"), &len);
    assert_memory_equal(b, "PK\3\4", 4);
    assert_int_equal(b[8] | b[9] << 8, 0);         /* stored */
    assert_memory_equal(b + 30, "x.npy\x93NUMPY", 11);
    assert_memory_equal(b + len - 22, "PK\5\6", 4);
    assert_int_equal(b[len - 22 + 10], 2);
    /* Flip a data byte: the CRC check must catch it. */
    b[30 + 5 + 64 + 3] ^= 0x40;
    write_bytes(tmp("crc.npz"), b, len);
    free(b);
    assert_int_equal(pare_npz_load(tmp("crc.npz"), &z, &err), PARE_EINPUT);
    assert_null(z);
    {
        char want[300];
        snprintf(want, sizeof want, "%s: member 'x.npy'", tmp("crc.npz"));
        assert_string_equal(err.where, want);
    }
    assert_string_equal(err.msg, "CRC mismatch: the archive is corrupt");
    pare_tensor_free(x);
    pare_tensor_free(y);
}

/* A zip built by hand: members stored or deflated, optionally with numpy.savez's
 * zip64 local extra (local sizes 0xffffffff, real ones in the central directory). */
typedef struct zmember {
    const char *name;
    const unsigned char *data;
    size_t len;
    int method;
} zmember;

static void p16(unsigned char *p, unsigned v) { p[0] = (unsigned char)v; p[1] = (unsigned char)(v >> 8); }
static void p32(unsigned char *p, uint32_t v) { p16(p, v & 0xffff); p16(p + 2, v >> 16); }

static size_t build_zip(unsigned char *out, const zmember *m, int n, int savez_style)
{
    size_t pos = 0, cd, offs[8], csz[8];
    uint32_t crcs[8];
    unsigned char *comp[8];

    for (int i = 0; i < n; i++) {
        size_t nl = strlen(m[i].name), xl = savez_style ? 20 : 0;
        crcs[i] = (uint32_t)crc32(0, m[i].data, (uInt)m[i].len);
        comp[i] = malloc(m[i].len + 64);
        if (m[i].method == 8) {
            z_stream zs;
            memset(&zs, 0, sizeof zs);
            assert_int_equal(deflateInit2(&zs, 9, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), Z_OK);
            zs.next_in = (Bytef *)(uintptr_t)m[i].data;
            zs.avail_in = (uInt)m[i].len;
            zs.next_out = comp[i];
            zs.avail_out = (uInt)(m[i].len + 64);
            assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
            csz[i] = zs.total_out;
            deflateEnd(&zs);
        } else {
            memcpy(comp[i], m[i].data, m[i].len);
            csz[i] = m[i].len;
        }
        offs[i] = pos;
        p32(out + pos, 0x04034b50);
        p16(out + pos + 4, savez_style ? 45 : 20);
        p16(out + pos + 6, 0);
        p16(out + pos + 8, (unsigned)m[i].method);
        p32(out + pos + 10, 0);
        p32(out + pos + 14, crcs[i]);
        p32(out + pos + 18, savez_style ? 0xffffffffu : (uint32_t)csz[i]);
        p32(out + pos + 22, savez_style ? 0xffffffffu : (uint32_t)m[i].len);
        p16(out + pos + 26, (unsigned)nl);
        p16(out + pos + 28, (unsigned)xl);
        memcpy(out + pos + 30, m[i].name, nl);
        if (savez_style) {
            unsigned char *x = out + pos + 30 + nl;
            p16(x, 1);
            p16(x + 2, 16);
            p32(x + 4, (uint32_t)m[i].len);
            p32(x + 8, 0);
            p32(x + 12, (uint32_t)csz[i]);
            p32(x + 16, 0);
        }
        memcpy(out + pos + 30 + nl + xl, comp[i], csz[i]);
        pos += 30 + nl + xl + csz[i];
        free(comp[i]);
    }
    cd = pos;
    for (int i = 0; i < n; i++) {
        size_t nl = strlen(m[i].name);
        memset(out + pos, 0, 46);
        p32(out + pos, 0x02014b50);
        p16(out + pos + 4, 20);
        p16(out + pos + 6, 20);
        p16(out + pos + 10, (unsigned)m[i].method);
        p32(out + pos + 16, crcs[i]);
        p32(out + pos + 20, (uint32_t)csz[i]);
        p32(out + pos + 24, (uint32_t)m[i].len);
        p16(out + pos + 28, (unsigned)nl);
        p32(out + pos + 42, (uint32_t)offs[i]);
        memcpy(out + pos + 46, m[i].name, nl);
        pos += 46 + nl;
    }
    memset(out + pos, 0, 22);
    p32(out + pos, 0x06054b50);
    p16(out + pos + 8, (unsigned)n);
    p16(out + pos + 10, (unsigned)n);
    p32(out + pos + 12, (uint32_t)(pos - cd));
    p32(out + pos + 16, (uint32_t)cd);
    return pos + 22;
}

static void test_npz_deflated_and_savez_style(void **state)
{
    float xs[64];
    int64_t ys[4] = { 3, 1, 4, 1 };
    unsigned char nx[512], ny[256], zip[4096];
    size_t lx, ly, lz;
    pare_npz *z = NULL;
    pare_error err = {0};
    (void)state;

    for (int i = 0; i < 64; i++)
        xs[i] = (float)(i % 5) * 0.25f; /* repetitive: deflate really compresses */
    lx = make_npy(nx, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (4, 16), }", xs, sizeof xs);
    ly = make_npy(ny, 1, "{'descr': '<i8', 'fortran_order': False, 'shape': (4,), }", ys, sizeof ys);
    for (int style = 0; style < 2; style++) {
        zmember m[] = { { "x.npy", nx, lx, 8 }, { "notes.txt", (const unsigned char *)"hi", 2, 0 },
                        { "y.npy", ny, ly, style ? 0 : 8 } };
        lz = build_zip(zip, m, 3, style);
        write_bytes(tmp("defl.npz"), zip, lz);
        assert_int_equal(pare_npz_load(tmp("defl.npz"), &z, &err), PARE_OK);
        assert_int_equal(z->n, 2); /* notes.txt is skipped */
        assert_int_equal(pare_npz_find(z, "x")->dims[1], 16);
        assert_memory_equal(pare_npz_find(z, "x")->data, xs, sizeof xs);
        assert_memory_equal(pare_npz_find(z, "y")->data, ys, sizeof ys);
        pare_npz_free(z);
    }
}

static void test_npz_errors(void **state)
{
    unsigned char zip[1024], npy[256];
    const float v[2] = { 1, 2 };
    size_t ln = make_npy(npy, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", v, 8), lz;
    zmember m[] = { { "a.npy", npy, ln, 0 } };
    pare_npz *z = NULL;
    pare_error err = {0};
    char want[300];
    int64_t d[] = { 2 };
    pare_tensor *t = pare_tensor_new(PARE_F32, 1, d);
    const char *names[] = { "a", "a" };
    const pare_tensor *arrays[] = { t, t };
    (void)state;

    lz = build_zip(zip, m, 1, 0);
    /* zip64: the end record says "look in the zip64 record" */
    p16(zip + lz - 22 + 8, 0xffff);
    p16(zip + lz - 22 + 10, 0xffff);
    write_bytes(tmp("z64.npz"), zip, lz);
    assert_int_equal(pare_npz_load(tmp("z64.npz"), &z, &err), PARE_EUNSUPPORTED);
    assert_string_equal(err.msg, "zip64 archives are not supported");
    assert_string_equal(err.where, tmp("z64.npz"));

    lz = build_zip(zip, m, 1, 0);
    p32(zip + 30 + 5 + ln + 20, 0xffffffffu); /* central compressed size */
    write_bytes(tmp("z64b.npz"), zip, lz);
    assert_int_equal(pare_npz_load(tmp("z64b.npz"), &z, &err), PARE_EUNSUPPORTED);
    assert_string_equal(err.msg, "zip64 archives are not supported");

    lz = build_zip(zip, m, 1, 0);
    p16(zip + 30 + 5 + ln + 10, 12); /* bzip2 */
    write_bytes(tmp("bz.npz"), zip, lz);
    assert_int_equal(pare_npz_load(tmp("bz.npz"), &z, &err), PARE_EUNSUPPORTED);
    assert_string_equal(err.msg, "zip compression method 12 is not supported (stored and deflate are)");
    snprintf(want, sizeof want, "%s: member 'a.npy'", tmp("bz.npz"));
    assert_string_equal(err.where, want);

    write_bytes(tmp("trunc.npz"), zip, lz - 30);
    assert_int_equal(pare_npz_load(tmp("trunc.npz"), &z, &err), PARE_EINPUT);
    assert_string_equal(err.msg, "not an .npz file: no zip end record");
    assert_null(z);

    assert_int_equal(pare_npz_save(tmp("dup.npz"), names, arrays, 2, &err), PARE_EINPUT);
    assert_string_equal(err.msg, "array name 'a' is used twice");
    names[1] = "b/../../c";
    assert_int_equal(pare_npz_save(tmp("dup.npz"), names, arrays, 2, &err), PARE_EINPUT);
    assert_string_equal(err.msg, "bad array name 'b/../../c'");
    assert_int_equal(access(tmp("dup.npz"), F_OK), -1);
    pare_tensor_free(t);
}

static void test_oom_paths_leave_nothing(void **state)
{
    int64_t d[] = { 4, 3 };
    pare_tensor *x = patterned(PARE_F32, 2, d), *t = NULL;
    const char *names[] = { "x" };
    const pare_tensor *arrays[] = { x };
    pare_npz *z = NULL;
    pare_error err = {0};
    int ok = 0;
    (void)state;

    assert_int_equal(pare_npz_save(tmp("oom.npz"), names, arrays, 1, &err), PARE_OK);
    assert_int_equal(pare_npy_save(tmp("oom.npy"), x, &err), PARE_OK);
    for (long k = 1; k < 40 && ok < 2; k++) {
        pare_status a, b;
        pare_alloc_fail_at(k);
        a = pare_npz_load(tmp("oom.npz"), &z, &err);
        pare_alloc_fail_at(k);
        b = pare_npy_load(tmp("oom.npy"), &t, &err);
        pare_alloc_fail_at(0);
        assert_true(a == PARE_OK || (a == PARE_ENOMEM && z == NULL));
        assert_true(b == PARE_OK || (b == PARE_ENOMEM && t == NULL));
        ok = (a == PARE_OK) + (b == PARE_OK);
        pare_npz_free(z);
        pare_tensor_free(t);
        z = NULL;
        t = NULL;
    }
    assert_int_equal(ok, 2);
    pare_tensor_free(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_every_dtype),
        cmocka_unit_test(test_header_matches_numpy),
        cmocka_unit_test(test_versions_2_and_3_and_big_endian),
        cmocka_unit_test(test_gzip_npy_reads),
        cmocka_unit_test(test_npy_errors),
        cmocka_unit_test(test_npz_roundtrip),
        cmocka_unit_test(test_npz_deflated_and_savez_style),
        cmocka_unit_test(test_npz_errors),
        cmocka_unit_test(test_oom_paths_leave_nothing),
    };
    return cmocka_run_group_tests(tests, make_tmpdir, remove_tmpdir);
}
