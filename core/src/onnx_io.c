/* ONNX files: reading and writing them whole, protobuf wire checks, and the
 * public entry points of the "ONNX files" section of pare/graph.h. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "onnx_io.h"
#include "pare/alloc.h"

/* ---- allocation ---- */

static void *pc_alloc(void *data, size_t size)
{
    void *p = pare_alloc(size);
    if (!p)
        ((onnx_alloc *)data)->failed = true;
    return p;
}

static void pc_free(void *data, void *p)
{
    (void)data;
    pare_free(p);
}

void onnx_alloc_init(onnx_alloc *a)
{
    a->pc.alloc = pc_alloc;
    a->pc.free = pc_free;
    a->pc.allocator_data = a;
    a->failed = false;
}

typedef struct arena_block {
    struct arena_block *next;
    max_align_t align[];
} arena_block;

void *onnx_arena_alloc(onnx_arena *ar, size_t size)
{
    arena_block *b;

    if (size > SIZE_MAX - sizeof *b) {
        ar->failed = true;
        return NULL;
    }
    b = pare_calloc(1, sizeof *b + size);
    if (!b) {
        ar->failed = true;
        return NULL;
    }
    b->next = ar->blocks;
    ar->blocks = b;
    return b->align;
}

void onnx_arena_fini(onnx_arena *ar)
{
    arena_block *b = ar->blocks;

    while (b) {
        arena_block *next = b->next;
        pare_free(b);
        b = next;
    }
    ar->blocks = NULL;
}

pare_status onnx_pack(const ProtobufCMessage *msg, uint8_t **out, size_t *len)
{
    size_t n = protobuf_c_message_get_packed_size(msg);
    uint8_t *b = pare_alloc(n ? n : 1);

    *out = NULL;
    *len = 0;
    if (!b)
        return PARE_ENOMEM;
    protobuf_c_message_pack(msg, b);
    *out = b;
    *len = n;
    return PARE_OK;
}

bool onnx_same_packed(const ProtobufCMessage *a, const ProtobufCMessage *b, bool *oom)
{
    uint8_t *pa = NULL, *pb = NULL;
    size_t la, lb;
    bool same = false;

    if (protobuf_c_message_get_packed_size(a) != protobuf_c_message_get_packed_size(b))
        return false;
    if (onnx_pack(a, &pa, &la) != PARE_OK || onnx_pack(b, &pb, &lb) != PARE_OK)
        *oom = true;
    else
        same = la == lb && !memcmp(pa, pb, la);
    pare_free(pa);
    pare_free(pb);
    return same;
}

/* ---- wire format checks ---- */

typedef struct wire_scan {
    const uint8_t *start;
    const char *what;      /* "model", "tensor" */
    const char *where;
    pare_error *err;
} wire_scan;

/* 0 ok, 1 ran past end, 2 longer than 10 bytes */
static int read_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    uint64_t r = 0;

    for (int shift = 0; shift < 70; shift += 7) {
        uint8_t byte;
        if (*p >= end)
            return 1;
        byte = *(*p)++;
        if (shift < 64)
            r |= (uint64_t)(byte & 0x7f) << shift;
        if (!(byte & 0x80)) {
            *v = r;
            return 0;
        }
    }
    return 2;
}

static bool wire_type_fits(const ProtobufCFieldDescriptor *fd, unsigned wt)
{
    if (wt == 2 && fd->label == PROTOBUF_C_LABEL_REPEATED)
        return true; /* packed repeated scalars, strings, bytes, messages */
    switch (fd->type) {
    case PROTOBUF_C_TYPE_INT32: case PROTOBUF_C_TYPE_SINT32: case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64: case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_BOOL: case PROTOBUF_C_TYPE_ENUM:
        return wt == 0;
    case PROTOBUF_C_TYPE_SFIXED32: case PROTOBUF_C_TYPE_FIXED32: case PROTOBUF_C_TYPE_FLOAT:
        return wt == 5;
    case PROTOBUF_C_TYPE_SFIXED64: case PROTOBUF_C_TYPE_FIXED64: case PROTOBUF_C_TYPE_DOUBLE:
        return wt == 1;
    case PROTOBUF_C_TYPE_STRING: case PROTOBUF_C_TYPE_BYTES: case PROTOBUF_C_TYPE_MESSAGE:
        return wt == 2;
    }
    return false;
}

static pare_status wire_bad(const wire_scan *ws, int depth, const uint8_t *at, bool ran_out,
                            const ProtobufCMessageDescriptor *desc, unsigned field)
{
    size_t off = (size_t)(at - ws->start);
    pare_status rc;

    if (depth == 0 && ran_out) {
        rc = pare_fail(ws->err, PARE_EINPUT, ws->where,
                       "truncated file: field %u at offset %zu runs past the end of the data",
                       field, off);
        pare_error_hint(ws->err, "the file was probably cut short while copying or downloading");
        return rc;
    }
    if (depth == 0) {
        rc = pare_fail(ws->err, PARE_EINPUT, ws->where,
                       "not an ONNX %s: the bytes at offset %zu are not a protobuf %s field",
                       ws->what, off, desc->short_name);
        pare_error_hint(ws->err, "is this an ONNX file?");
        return rc;
    }
    return pare_fail(ws->err, PARE_EINPUT, ws->where,
                     "corrupt protobuf data at offset %zu inside a %s", off, desc->short_name);
}

static pare_status wire_walk(const wire_scan *ws, const uint8_t *p, const uint8_t *end,
                             const ProtobufCMessageDescriptor *desc, int depth)
{
    bool first = true;

    while (p < end) {
        const uint8_t *at = p;
        const ProtobufCFieldDescriptor *fd;
        uint64_t tag, v;
        unsigned field, wt;
        int r = read_varint(&p, end, &tag);

        if (r)
            return wire_bad(ws, depth, at, r == 1, desc, 0);
        field = tag >> 3 > UINT_MAX ? UINT_MAX : (unsigned)(tag >> 3);
        wt = (unsigned)(tag & 7);
        if (field == 0 || tag >> 3 > 536870911u || wt == 3 || wt == 4 || wt > 5)
            return wire_bad(ws, depth, at, false, desc, field);
        fd = protobuf_c_message_descriptor_get_field(desc, field);
        if (fd && !wire_type_fits(fd, wt))
            return wire_bad(ws, depth, at, false, desc, field);
        /* Unknown fields are legal, but a file starting with one is not ONNX. */
        if (!fd && first && depth == 0)
            return wire_bad(ws, depth, at, false, desc, field);
        first = false;
        switch (wt) {
        case 0:
            r = read_varint(&p, end, &v);
            if (r)
                return wire_bad(ws, depth, at, r == 1, desc, field);
            break;
        case 1:
        case 5:
            if ((size_t)(end - p) < (wt == 1 ? 8u : 4u))
                return wire_bad(ws, depth, at, true, desc, field);
            p += wt == 1 ? 8 : 4;
            break;
        default:
            r = read_varint(&p, end, &v);
            if (r || v > (uint64_t)(end - p))
                return wire_bad(ws, depth, at, r != 2, desc, field);
            if (fd && fd->type == PROTOBUF_C_TYPE_MESSAGE) {
                pare_status rc;
                if (depth + 1 >= ONNX_MAX_DEPTH)
                    return pare_fail(ws->err, PARE_EINPUT, ws->where,
                                     "protobuf messages nest more than %d levels deep "
                                     "(subgraphs nested too deeply)", ONNX_MAX_DEPTH);
                rc = wire_walk(ws, p, p + v, fd->descriptor, depth + 1);
                if (rc != PARE_OK)
                    return rc;
            }
            p += v;
            break;
        }
    }
    return PARE_OK;
}

pare_status onnx_wire_check(const uint8_t *buf, size_t len,
                            const ProtobufCMessageDescriptor *desc, const char *what,
                            const char *where, pare_error *err)
{
    wire_scan ws = { buf, what, where, err };

    if (!len)
        return pare_fail(err, PARE_EINPUT, where, "empty file");
    return wire_walk(&ws, buf, buf + len, desc, 0);
}

/* ---- whole files ---- */

typedef struct mapped_file {
    const uint8_t *data;
    size_t len;
    bool is_mapped;
} mapped_file;

static pare_status map_file(const char *path, mapped_file *mf, pare_error *err)
{
    struct stat st;
    int fd;
    void *p;

    memset(mf, 0, sizeof *mf);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return pare_fail(err, PARE_EIO, path, "cannot open: %s", strerror(errno));
    if (fstat(fd, &st)) {
        int e = errno;
        close(fd);
        return pare_fail(err, PARE_EIO, path, "cannot read: %s", strerror(e));
    }
    if (S_ISDIR(st.st_mode)) {
        close(fd);
        return pare_fail(err, PARE_EIO, path, "cannot read: it is a directory");
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return pare_fail(err, PARE_EIO, path, "cannot read: not a regular file");
    }
    if (st.st_size == 0) {
        close(fd);
        return pare_fail(err, PARE_EINPUT, path, "empty file");
    }
    p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (p == MAP_FAILED)
        return pare_fail(err, errno == ENOMEM ? PARE_ENOMEM : PARE_EIO, path, "cannot read: %s",
                         strerror(errno));
    madvise(p, (size_t)st.st_size, MADV_SEQUENTIAL);
    mf->data = p;
    mf->len = (size_t)st.st_size;
    mf->is_mapped = true;
    return PARE_OK;
}

static void unmap_file(mapped_file *mf)
{
    if (mf->is_mapped)
        munmap((void *)mf->data, mf->len);
    memset(mf, 0, sizeof *mf);
}

/* Folder of path ("." when it has none) in a new string. */
static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');

    if (!slash)
        return pare_strdup(".");
    if (slash == path)
        return pare_strdup("/");
    return pare_strndup(path, (size_t)(slash - path));
}

static pare_status load_bytes(const uint8_t *buf, size_t len, const char *where,
                              const char *base_dir, pare_graph **out, pare_error *err)
{
    onnx_load_opts opts = { where, base_dir };
    Onnx__ModelProto *m;
    onnx_alloc a;
    pare_status rc;

    *out = NULL;
    rc = onnx_wire_check(buf, len, &onnx__model_proto__descriptor, "model", where ? where : "model",
                         err);
    if (rc != PARE_OK)
        return rc;
    onnx_alloc_init(&a);
    m = onnx__model_proto__unpack(&a.pc, len, buf);
    where = where ? where : "model";
    if (!m) {
        if (a.failed)
            return pare_fail(err, PARE_ENOMEM, where, "out of memory reading the model");
        return pare_fail(err, PARE_EINPUT, where, "corrupt protobuf data: not a valid ONNX model");
    }
    if (!m->graph) {
        if (!m->has_ir_version && !m->n_opset_import) {
            rc = pare_fail(err, PARE_EINPUT, where,
                           "not an ONNX model: no graph, ir_version or opset_import");
            pare_error_hint(err, "is this an ONNX file?");
        } else {
            rc = pare_fail(err, PARE_EINPUT, where, "model has no graph");
        }
    } else {
        rc = onnx_graph_from_model(m, &opts, out, err);
    }
    onnx__model_proto__free_unpacked(m, &a.pc);
    return rc;
}

pare_status pare_graph_load_buffer(const void *buf, size_t len, const char *where,
                                   pare_graph **out, pare_error *err)
{
    *out = NULL;
    if (!buf || !len)
        return pare_fail(err, PARE_EINPUT, where ? where : "model", "empty file");
    return load_bytes(buf, len, where, NULL, out, err);
}

pare_status pare_graph_load(const char *path, pare_graph **out, pare_error *err)
{
    mapped_file mf;
    char *dir;
    pare_status rc;

    *out = NULL;
    rc = map_file(path, &mf, err);
    if (rc != PARE_OK)
        return rc;
    dir = dir_of(path);
    if (!dir)
        rc = pare_fail(err, PARE_ENOMEM, path, "out of memory reading the model");
    else
        rc = load_bytes(mf.data, mf.len, path, dir, out, err);
    pare_free(dir);
    unmap_file(&mf);
    return rc;
}

pare_status pare_tensor_load_pb(const char *path, pare_tensor **out, char **name, pare_error *err)
{
    onnx_tensor_opts topts = { NULL, false };
    Onnx__TensorProto *tp = NULL;
    mapped_file mf;
    onnx_alloc a;
    char *dir = NULL;
    pare_status rc;

    *out = NULL;
    if (name)
        *name = NULL;
    rc = map_file(path, &mf, err);
    if (rc != PARE_OK)
        return rc;
    rc = onnx_wire_check(mf.data, mf.len, &onnx__tensor_proto__descriptor, "tensor", path, err);
    onnx_alloc_init(&a);
    if (rc == PARE_OK) {
        tp = onnx__tensor_proto__unpack(&a.pc, mf.len, mf.data);
        if (!tp && a.failed)
            rc = pare_fail(err, PARE_ENOMEM, path, "out of memory reading the tensor");
        else if (!tp)
            rc = pare_fail(err, PARE_EINPUT, path, "corrupt protobuf data: not a valid ONNX tensor");
    }
    if (rc == PARE_OK) {
        dir = dir_of(path);
        topts.base_dir = dir;
        if (!dir)
            rc = pare_fail(err, PARE_ENOMEM, path, "out of memory reading the tensor");
    }
    if (rc == PARE_OK)
        rc = onnx_tensor_from_proto(tp, &topts, out, path, err);
    if (rc == PARE_OK && name) {
        *name = pare_strdup(tp->name ? tp->name : "");
        if (!*name) {
            pare_tensor_free(*out);
            *out = NULL;
            rc = pare_fail(err, PARE_ENOMEM, path, "out of memory reading the tensor");
        }
    }
    if (tp)
        onnx__tensor_proto__free_unpacked(tp, &a.pc);
    pare_free(dir);
    unmap_file(&mf);
    return rc;
}

/* ---- saving ---- */

static size_t external_limit = ONNX_PROTOBUF_LIMIT;

void onnx_set_external_threshold(size_t bytes)
{
    external_limit = bytes ? bytes : ONNX_PROTOBUF_LIMIT;
}

pare_status pare_graph_save_buffer(const pare_graph *g, uint8_t **buf, size_t *len,
                                   pare_error *err)
{
    const char *where = g->path ? g->path : "model";
    onnx_model_build b;
    pare_status rc;
    size_t n = 0;

    *buf = NULL;
    *len = 0;
    rc = onnx_model_build_init(&b, g, NULL, NULL, err);
    if (rc == PARE_OK) {
        n = protobuf_c_message_get_packed_size(&b.model.base);
        if (n > ONNX_PROTOBUF_LIMIT) {
            rc = pare_fail(err, PARE_EUNSUPPORTED, where,
                           "the model needs %zu bytes; one protobuf message holds at most 2 GiB", n);
            pare_error_hint(err, "save it to a file: pare_graph_save puts the weights beside it");
        }
    }
    if (rc == PARE_OK) {
        *buf = pare_alloc(n ? n : 1);
        if (!*buf)
            rc = pare_fail(err, PARE_ENOMEM, where, "out of memory saving the model");
        else
            *len = protobuf_c_message_pack(&b.model.base, *buf);
    }
    onnx_model_build_fini(&b);
    return rc;
}

typedef struct file_sink {
    ProtobufCBuffer base;
    FILE *f;
    int error;             /* errno of the first failed write */
} file_sink;

static void sink_append(ProtobufCBuffer *buffer, size_t len, const uint8_t *data)
{
    file_sink *s = (file_sink *)buffer;

    if (!s->error && len && fwrite(data, 1, len, s->f) != len)
        s->error = errno ? errno : EIO;
}

/* A temporary file beside target: "<dir>/.<base>.tmpXXXXXX". */
static pare_status open_temp(const char *target, const char *where, FILE **out, char **tmp_name,
                             pare_error *err)
{
    const char *slash = strrchr(target, '/');
    size_t dlen = slash ? (size_t)(slash - target + 1) : 0;
    char *name = pare_alloc(strlen(target) + 16);
    FILE *f;
    int fd, e;

    *out = NULL;
    *tmp_name = NULL;
    if (!name)
        return pare_fail(err, PARE_ENOMEM, where, "out of memory saving the model");
    memcpy(name, target, dlen);
    sprintf(name + dlen, ".%s.tmpXXXXXX", target + dlen);
    fd = mkstemp(name);
    if (fd < 0) {
        e = errno;
        pare_free(name);
        return pare_fail(err, PARE_EIO, where, "cannot create a temporary file beside '%s': %s",
                         target, strerror(e));
    }
    fchmod(fd, 0644);
    f = fdopen(fd, "wb");
    if (!f) {
        e = errno;
        close(fd);
        unlink(name);
        pare_free(name);
        return pare_fail(err, e == ENOMEM ? PARE_ENOMEM : PARE_EIO, where,
                         "cannot open a temporary file beside '%s': %s", target, strerror(e));
    }
    *out = f;
    *tmp_name = name;
    return PARE_OK;
}

/* Flushes, syncs and closes f; returns 0 or an errno. */
static int close_synced(FILE *f, int error)
{
    if (!error && fflush(f))
        error = errno;
    if (!error && fsync(fileno(f)))
        error = errno;
    if (fclose(f) && !error)
        error = errno;
    return error;
}

static void sync_dir(const char *path)
{
    char *dir = dir_of(path);
    int fd = dir ? open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;

    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    pare_free(dir);
}

/* The side file: initializers with an offset, zero padding between. */
static int write_side_file(FILE *f, const pare_graph *g, const onnx_external *ext)
{
    static const uint8_t zeros[4096];
    size_t pos = 0;

    for (int v = 0; v < g->n_values; v++) {
        const pare_tensor *t = g->values[v].init;
        size_t off;
        if (ext->offsets[v] < 0)
            continue;
        off = (size_t)ext->offsets[v];
        while (pos < off) {
            size_t n = off - pos > sizeof zeros ? sizeof zeros : off - pos;
            if (fwrite(zeros, 1, n, f) != n)
                return errno ? errno : EIO;
            pos += n;
        }
        if (fwrite(t->data, 1, pare_tensor_nbytes(t), f) != pare_tensor_nbytes(t))
            return errno ? errno : EIO;
        pos += pare_tensor_nbytes(t);
    }
    return 0;
}

pare_status pare_graph_save(const pare_graph *g, const char *path, pare_error *err)
{
    onnx_external ext = { 0 };
    onnx_model_build b;
    file_sink sink = { { NULL }, NULL, 0 };
    char *tmp_model = NULL, *tmp_data = NULL, *data_path = NULL;
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    bool use_ext = false;
    pare_status rc;
    FILE *f;
    int e = 0;

    if (!*base)
        return pare_fail(err, PARE_EIO, path, "cannot write: the path names a folder");
    rc = onnx_model_build_init(&b, g, NULL, path, err);
    if (rc == PARE_OK && protobuf_c_message_get_packed_size(&b.model.base) > external_limit) {
        /* Too big for one protobuf message: weights go to "<name>.data". */
        onnx_model_build_fini(&b);
        use_ext = true;
        data_path = pare_alloc(strlen(path) + 6);
        if (!data_path) {
            rc = pare_fail(err, PARE_ENOMEM, path, "out of memory saving the model");
        } else {
            sprintf(data_path, "%s.data", path);
            ext.location = data_path + (base - path);
            rc = onnx_model_build_init(&b, g, &ext, path, err);
        }
        if (rc == PARE_OK && protobuf_c_message_get_packed_size(&b.model.base) > ONNX_PROTOBUF_LIMIT)
            rc = pare_fail(err, PARE_EUNSUPPORTED, path,
                           "the model needs more than 2 GiB even with its weights in a side file");
    }
    if (rc == PARE_OK && use_ext) {
        rc = open_temp(data_path, path, &f, &tmp_data, err);
        if (rc == PARE_OK && (e = close_synced(f, write_side_file(f, g, &ext))) != 0)
            rc = pare_fail(err, PARE_EIO, path, "cannot write '%s': %s", data_path, strerror(e));
    }
    if (rc == PARE_OK) {
        rc = open_temp(path, path, &f, &tmp_model, err);
        if (rc == PARE_OK) {
            sink.base.append = sink_append;
            sink.f = f;
            protobuf_c_message_pack_to_buffer(&b.model.base, &sink.base);
            e = close_synced(f, sink.error);
            if (e)
                rc = pare_fail(err, PARE_EIO, path, "cannot write: %s", strerror(e));
        }
    }
    if (rc == PARE_OK && tmp_data && rename(tmp_data, data_path))
        rc = pare_fail(err, PARE_EIO, path, "cannot rename into '%s': %s", data_path, strerror(errno));
    else if (rc == PARE_OK && tmp_data) {
        pare_free(tmp_data);
        tmp_data = NULL;
    }
    if (rc == PARE_OK && rename(tmp_model, path))
        rc = pare_fail(err, PARE_EIO, path, "cannot rename the temporary file into place: %s",
                       strerror(errno));
    else if (rc == PARE_OK) {
        pare_free(tmp_model);
        tmp_model = NULL;
        sync_dir(path);
    }
    if (tmp_model)
        unlink(tmp_model);
    if (tmp_data)
        unlink(tmp_data);
    pare_free(tmp_model);
    pare_free(tmp_data);
    pare_free(data_path);
    pare_free(ext.offsets);
    onnx_model_build_fini(&b);
    return rc;
}
