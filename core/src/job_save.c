/* Job lifetime, comparison and the YAML writers, all driven by the schema.
 *
 * The writer goes through libyaml's emitter so quoting and escaping follow
 * YAML's rules; strings that YAML would read back as a number, boolean or
 * null are double-quoted so a resolved file loads to the same values. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <yaml.h>

#include "job_schema.h"
#include "pare/alloc.h"

/* ---- lifetime ---- */

pare_job *pare_job_new(void)
{
    pare_job *job = pare_calloc(1, sizeof *job);

    if (!job)
        return NULL;
    for (int i = 0; i < job_n_sections; i++)
        if (job_sections[i].schema &&
            job_fields_default(job_sections[i].schema, (char *)job + job_sections[i].off) != PARE_OK) {
            pare_job_free(job);
            return NULL;
        }
    /* Inherited values as pare_job_load would resolve them. */
    job->train.batch_size = job->global.batch_size;
    job->quant_post.batch_size = job->global.batch_size;
    return job;
}

void pare_job_free(pare_job *job)
{
    if (!job)
        return;
    for (int i = 0; i < job_n_sections; i++)
        if (job_sections[i].schema)
            job_fields_free(job_sections[i].schema, (char *)job + job_sections[i].off);
    for (int i = 0; i < job->layers.n; i++)
        pare_free(job->layers.names[i]);
    pare_free(job->layers.names);
    pare_free(job->layers.ratios);
    pare_free(job->source);
    pare_free(job);
}

/* ---- comparison ---- */

static bool str_eq(const char *a, const char *b)
{
    return a == b || (a && b && !strcmp(a, b));
}

static bool fields_equal(const job_schema *s, const void *a, const void *b);

static bool field_equal(const job_key *k, const void *fa, const void *fb)
{
    switch (k->type) {
    case JT_STR: return str_eq(*(char *const *)fa, *(char *const *)fb);
    case JT_INT: return *(const long *)fa == *(const long *)fb;
    case JT_FLOAT: return *(const double *)fa == *(const double *)fb;
    case JT_BOOL: return *(const bool *)fa == *(const bool *)fb;
    case JT_ENUM: return *(const int *)fa == *(const int *)fb;
    case JT_STRS: {
        const pare_job_strs *x = fa, *y = fb;
        if (x->n != y->n)
            return false;
        for (int i = 0; i < x->n; i++)
            if (!str_eq(x->v[i], y->v[i]))
                return false;
        return true;
    }
#define LIST_EQ(T)                                                             \
    do {                                                                       \
        const T *x = fa, *y = fb;                                              \
        if (x->n != y->n)                                                      \
            return false;                                                      \
        for (int i = 0; i < x->n; i++)                                         \
            if (x->v[i] != y->v[i])                                            \
                return false;                                                  \
        return true;                                                           \
    } while (0)
    case JT_FLOATS: LIST_EQ(pare_job_floats);
    case JT_INTS: LIST_EQ(pare_job_ints);
    case JT_BOOLS: LIST_EQ(pare_job_bools);
    case JT_ENUMS: LIST_EQ(pare_job_enums);
#undef LIST_EQ
    case JT_REGIONS: {
        const pare_job_regions *x = fa, *y = fb;
        static const job_key names = {.name = "", .type = JT_STRS};
        if (x->n != y->n)
            return false;
        for (int i = 0; i < x->n; i++)
            if (!field_equal(&names, &x->v[i].inputs, &y->v[i].inputs) ||
                !field_equal(&names, &x->v[i].outputs, &y->v[i].outputs))
                return false;
        return true;
    }
    case JT_SUB: return fields_equal(k->sub, fa, fb);
    case JT_PAIRS: {
        const pare_job_pairs *x = fa, *y = fb;
        if (x->n != y->n)
            return false;
        for (int i = 0; i < x->n; i++)
            if (!fields_equal(k->sub, &x->v[i], &y->v[i]))
                return false;
        return true;
    }
    case JT_NAME_INTS: {
        const pare_job_name_ints *x = fa, *y = fb;
        if (x->n != y->n)
            return false;
        for (int i = 0; i < x->n; i++)
            if (!str_eq(x->names[i], y->names[i]) || x->v[i] != y->v[i])
                return false;
        return true;
    }
    }
    return false;
}

static bool fields_equal(const job_schema *s, const void *a, const void *b)
{
    for (int i = 0; i < s->n_keys; i++)
        if (!(s->keys[i].flags & JK_COMPAT) &&
            !field_equal(&s->keys[i], JOB_CFIELD(a, &s->keys[i]), JOB_CFIELD(b, &s->keys[i])))
            return false;
    return true;
}

bool pare_job_equal(const pare_job *a, const pare_job *b)
{
    if (!a || !b)
        return a == b;
    for (int i = 0; i < job_n_sections; i++) {
        const job_section *sec = &job_sections[i];
        const void *sa = (const char *)a + sec->off, *sb = (const char *)b + sec->off;
        if (((const pare_job_meta *)sa)->present != ((const pare_job_meta *)sb)->present)
            return false;
        if (sec->schema && !fields_equal(sec->schema, sa, sb))
            return false;
    }
    if (a->layers.n != b->layers.n)
        return false;
    for (int i = 0; i < a->layers.n; i++)
        if (strcmp(a->layers.names[i], b->layers.names[i]) ||
            a->layers.ratios[i] != b->layers.ratios[i])
            return false;
    return true;
}

/* ---- emitting ---- */

typedef struct sbuf {
    char *p;
    size_t n, cap;
    bool oom;
} sbuf;

static int sbuf_write(void *data, unsigned char *buffer, size_t size)
{
    sbuf *b = data;

    if (b->n + size + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        char *p;
        while (cap < b->n + size + 1)
            cap *= 2;
        p = pare_realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return 0;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, buffer, size);
    b->n += size;
    b->p[b->n] = '\0';
    return 1;
}

typedef struct emit {
    yaml_emitter_t em;
    bool ok;
} emit;

static void put(emit *e, yaml_event_t *ev)
{
    if (e->ok && !yaml_emitter_emit(&e->em, ev))
        e->ok = false;
}

static void scalar(emit *e, const char *text, yaml_scalar_style_t style)
{
    yaml_event_t ev;

    if (!yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)text, (int)strlen(text), 1,
                                      1, style)) {
        e->ok = false;
        return;
    }
    put(e, &ev);
}

static void map_start(emit *e, bool flow)
{
    yaml_event_t ev;

    if (!yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1,
                                             flow ? YAML_FLOW_MAPPING_STYLE : YAML_BLOCK_MAPPING_STYLE)) {
        e->ok = false;
        return;
    }
    put(e, &ev);
}

static void map_end(emit *e)
{
    yaml_event_t ev;

    yaml_mapping_end_event_initialize(&ev);
    put(e, &ev);
}

static void seq_start(emit *e, bool flow)
{
    yaml_event_t ev;

    if (!yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1,
                                              flow ? YAML_FLOW_SEQUENCE_STYLE : YAML_BLOCK_SEQUENCE_STYLE)) {
        e->ok = false;
        return;
    }
    put(e, &ev);
}

static void seq_end(emit *e)
{
    yaml_event_t ev;

    yaml_sequence_end_event_initialize(&ev);
    put(e, &ev);
}

/* A string that YAML would read as null, a boolean or a number is quoted. */
static void string_scalar(emit *e, const char *s)
{
    static const char *const special[] = {"", "~", "null", "Null", "NULL", "true", "True",
                                          "TRUE", "false", "False", "FALSE", "yes", "Yes",
                                          "no", "No", "on", "off", "None", NULL};
    bool quote = false;
    char *end;

    for (int i = 0; special[i]; i++)
        if (!strcmp(s, special[i]))
            quote = true;
    if (!quote && *s) {
        (void)strtod(s, &end);
        quote = *end == '\0';
    }
    scalar(e, s, quote ? YAML_DOUBLE_QUOTED_SCALAR_STYLE : YAML_ANY_SCALAR_STYLE);
}

/* Shortest text that reads back as exactly v. An exponent gets a mantissa
 * with a dot ("4.0e-05"): YAML 1.1 readers (PyYAML, so ACT) take "4e-05"
 * for a string. */
static void double_scalar(emit *e, double v)
{
    char buf[48];
    char *exp;

    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    exp = strchr(buf, 'e');
    if (exp && !memchr(buf, '.', (size_t)(exp - buf))) {
        memmove(exp + 2, exp, strlen(exp) + 1);
        exp[0] = '.';
        exp[1] = '0';
    }
    scalar(e, buf, YAML_PLAIN_SCALAR_STYLE);
}

static void long_scalar(emit *e, long v)
{
    char buf[32];

    snprintf(buf, sizeof buf, "%ld", v);
    scalar(e, buf, YAML_PLAIN_SCALAR_STYLE);
}

static void emit_struct(emit *e, const job_schema *s, const void *base, bool resolved);

static void emit_item(emit *e, const job_key *k, enum job_type t, const void *p)
{
    switch (t) {
    case JT_STR: string_scalar(e, *(char *const *)p); break;
    case JT_INT: long_scalar(e, *(const long *)p); break;
    case JT_FLOAT: double_scalar(e, *(const double *)p); break;
    case JT_BOOL: scalar(e, *(const bool *)p ? "true" : "false", YAML_PLAIN_SCALAR_STYLE); break;
    case JT_ENUM: scalar(e, job_choice_name(k, *(const int *)p), YAML_PLAIN_SCALAR_STYLE); break;
    default: e->ok = false; break;
    }
}

static void emit_value(emit *e, const job_key *k, const void *f, bool resolved)
{
    switch (k->type) {
    case JT_STR:
    case JT_INT:
    case JT_FLOAT:
    case JT_BOOL:
    case JT_ENUM: emit_item(e, k, k->type, f); break;
    case JT_STRS: {
        const pare_job_strs *l = f;
        seq_start(e, true);
        for (int i = 0; i < l->n; i++)
            emit_item(e, k, JT_STR, &l->v[i]);
        seq_end(e);
        break;
    }
#define EMIT_LIST(T, IT)                                                       \
    do {                                                                       \
        const T *l = f;                                                        \
        seq_start(e, true);                                                    \
        for (int i = 0; i < l->n; i++)                                         \
            emit_item(e, k, IT, &l->v[i]);                                     \
        seq_end(e);                                                            \
    } while (0)
    case JT_FLOATS: EMIT_LIST(pare_job_floats, JT_FLOAT); break;
    case JT_INTS: EMIT_LIST(pare_job_ints, JT_INT); break;
    case JT_BOOLS: EMIT_LIST(pare_job_bools, JT_BOOL); break;
    case JT_ENUMS: EMIT_LIST(pare_job_enums, JT_ENUM); break;
#undef EMIT_LIST
    case JT_REGIONS: {
        const pare_job_regions *l = f;
        seq_start(e, l->n == 0);
        for (int i = 0; i < l->n; i++) {
            const pare_job_strs *io[2] = {&l->v[i].inputs, &l->v[i].outputs};
            seq_start(e, true);
            for (int s = 0; s < 2; s++) {
                seq_start(e, true);
                for (int j = 0; j < io[s]->n; j++)
                    emit_item(e, k, JT_STR, &io[s]->v[j]);
                seq_end(e);
            }
            seq_end(e);
        }
        seq_end(e);
        break;
    }
    case JT_SUB: {
        const job_schema *s = k->sub;
        const pare_job_meta *meta = f;
        bool as_scalar = s->scalar_key >= 0;
        for (int i = 0; as_scalar && i < s->n_keys; i++) {
            if (i == s->scalar_key)
                continue;
            as_scalar = resolved ? job_field_is_default(&s->keys[i], f)
                                 : !(meta->set & (1ull << i));
        }
        if (as_scalar)
            emit_value(e, &s->keys[s->scalar_key], JOB_CFIELD(f, &s->keys[s->scalar_key]), resolved);
        else
            emit_struct(e, s, f, resolved);
        break;
    }
    case JT_PAIRS: {
        const pare_job_pairs *l = f;
        seq_start(e, l->n == 0);
        for (int i = 0; i < l->n; i++)
            emit_struct(e, k->sub, &l->v[i], resolved);
        seq_end(e);
        break;
    }
    case JT_NAME_INTS: {
        const pare_job_name_ints *l = f;
        map_start(e, l->n == 0);
        for (int i = 0; i < l->n; i++) {
            string_scalar(e, l->names[i]);
            long_scalar(e, l->v[i]);
        }
        map_end(e);
        break;
    }
    }
}

static bool should_write(const job_key *k, const void *base, int row, bool resolved)
{
    const pare_job_meta *meta = base;
    bool set = meta->set & (1ull << row);

    if (k->flags & JK_COMPAT)
        return false;
    if (!resolved)
        return set;
    if (k->type == JT_STR && !*(char *const *)JOB_CFIELD(base, k))
        return false;
    return set || !(k->flags & JK_OPTIONAL);
}

static void emit_struct(emit *e, const job_schema *s, const void *base, bool resolved)
{
    map_start(e, false);
    for (int i = 0; i < s->n_keys; i++) {
        if (!should_write(&s->keys[i], base, i, resolved))
            continue;
        scalar(e, s->keys[i].name, YAML_PLAIN_SCALAR_STYLE);
        emit_value(e, &s->keys[i], JOB_CFIELD(base, &s->keys[i]), resolved);
    }
    map_end(e);
}

char *pare_job_to_yaml(const pare_job *job, bool resolved, pare_error *err)
{
    sbuf out = {0};
    emit e;
    yaml_event_t ev;

    e.ok = yaml_emitter_initialize(&e.em) != 0;
    if (!e.ok) {
        pare_fail(err, PARE_ENOMEM, job->source, "out of memory writing the job");
        return NULL;
    }
    yaml_emitter_set_output(&e.em, sbuf_write, &out);
    yaml_emitter_set_unicode(&e.em, 1);
    yaml_emitter_set_width(&e.em, 100);
    yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING);
    put(&e, &ev);
    yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1);
    put(&e, &ev);
    map_start(&e, false);
    for (int i = 0; i < job_n_sections; i++) {
        const job_section *sec = &job_sections[i];
        const void *base = (const char *)job + sec->off;
        if (!((const pare_job_meta *)base)->present)
            continue;
        scalar(&e, sec->name, YAML_PLAIN_SCALAR_STYLE);
        if (sec->schema) {
            emit_struct(&e, sec->schema, base, resolved);
            continue;
        }
        map_start(&e, false);
        for (int j = 0; j < job->layers.n; j++) {
            string_scalar(&e, job->layers.names[j]);
            double_scalar(&e, job->layers.ratios[j]);
        }
        map_end(&e);
    }
    map_end(&e);
    yaml_document_end_event_initialize(&ev, 1);
    put(&e, &ev);
    yaml_stream_end_event_initialize(&ev);
    put(&e, &ev);
    if (e.ok && !yaml_emitter_flush(&e.em))
        e.ok = false;
    yaml_emitter_delete(&e.em);
    if (!e.ok || out.oom || !out.p) {
        pare_free(out.p);
        pare_fail(err, out.oom ? PARE_ENOMEM : PARE_EINTERNAL, job->source,
                  out.oom ? "out of memory writing the job" : "cannot emit the job as yaml");
        return NULL;
    }
    return out.p;
}

/* Text to a temporary file in the target directory, then rename. */
static pare_status write_atomic(const char *path, const char *text, pare_error *err)
{
    size_t plen = strlen(path), len = strlen(text);
    char *tmp = pare_alloc(plen + 16);
    pare_status rc = PARE_OK;
    FILE *f = NULL;
    int fd;

    if (!tmp)
        return pare_fail(err, PARE_ENOMEM, path, "out of memory writing the job");
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp.XXXXXX", 12);
    fd = mkstemp(tmp);
    if (fd < 0) {
        rc = pare_fail(err, PARE_EIO, path, "cannot create: %s", strerror(errno));
        pare_free(tmp);
        return rc;
    }
    f = fdopen(fd, "wb");
    if (!f) {
        rc = pare_fail(err, PARE_EIO, path, "cannot write: %s", strerror(errno));
        close(fd);
    } else {
        bool ok = fwrite(text, 1, len, f) == len;
        ok = (fclose(f) == 0) && ok;
        if (!ok)
            rc = pare_fail(err, PARE_EIO, path, "cannot write: %s", strerror(errno));
        else if (rename(tmp, path) != 0)
            rc = pare_fail(err, PARE_EIO, path, "cannot rename into place: %s", strerror(errno));
    }
    if (rc != PARE_OK)
        unlink(tmp);
    pare_free(tmp);
    return rc;
}

static pare_status save(const pare_job *job, const char *path, bool resolved, pare_error *err)
{
    char *text = pare_job_to_yaml(job, resolved, err);
    pare_status rc;

    if (!text)
        return err ? err->code : PARE_ENOMEM;
    rc = write_atomic(path, text, err);
    pare_free(text);
    return rc;
}

pare_status pare_job_save_resolved(const pare_job *job, const char *path, pare_error *err)
{
    return save(job, path, true, err);
}

pare_status pare_job_save(const pare_job *job, const char *path, pare_error *err)
{
    return save(job, path, false, err);
}
