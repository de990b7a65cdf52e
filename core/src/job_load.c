/* Job files: YAML -> typed structs, driven by the schema in job_schema.c.
 *
 * libyaml builds the document tree; we walk it section by section and key by
 * key, converting each value by its schema row. Every problem is reported
 * (file:line:col, message, hint) and the walk goes on, so one run shows the
 * user everything that is wrong; the job is returned only when nothing was. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "job_schema.h"
#include "pare/alloc.h"

typedef struct key_mark {
    const void *base;   /* struct holding the key */
    int row;            /* schema row */
    int line, col;      /* 1-based position of the key */
} key_mark;

typedef struct job_ctx {
    const char *name;
    yaml_document_t *doc;
    pare_job *job;
    pare_job_diags *diags;
    pare_error *err;
    int n_errors;
    bool oom;
    key_mark *marks;
    int n_marks, cap_marks;
    yaml_mark_t sec_seen[32];     /* where each section was first given */
    const char *sec_spelled[32];  /* and how it was spelled; NULL = not yet */
    bool has_pretrained;
    yaml_mark_t pretrained;
} job_ctx;

/* ---- diagnostics ---- */

void pare_job_diags_fini(pare_job_diags *diags)
{
    if (!diags)
        return;
    pare_free(diags->v);
    diags->v = NULL;
    diags->n = diags->cap = 0;
}

static void diags_add(pare_job_diags *d, const pare_error *e)
{
    if (!d)
        return;
    if (d->n == d->cap) {
        int cap = d->cap ? d->cap * 2 : 8;
        pare_error *v = pare_realloc(d->v, (size_t)cap * sizeof *v);
        if (!v)
            return;  /* the first error still reaches the caller through err */
        d->v = v;
        d->cap = cap;
    }
    d->v[d->n++] = *e;
}

static void report(job_ctx *c, int line, int col, const char *hint, const char *fmt, ...)
    PARE_PRINTF(5, 6);

/* line and col are 1-based. */
static void report(job_ctx *c, int line, int col, const char *hint, const char *fmt, ...)
{
    pare_error e;
    va_list ap;

    memset(&e, 0, sizeof e);
    e.code = PARE_EINPUT;
    if (line > 0)
        snprintf(e.where, sizeof e.where, "%s:%d:%d", c->name, line, col);
    else
        snprintf(e.where, sizeof e.where, "%s", c->name);
    va_start(ap, fmt);
    vsnprintf(e.msg, sizeof e.msg, fmt, ap);
    va_end(ap);
    if (hint)
        snprintf(e.hint, sizeof e.hint, "%s", hint);
    if (c->n_errors == 0 && c->err)
        *c->err = e;
    c->n_errors++;
    diags_add(c->diags, &e);
}

#define AT_NODE(n) (int)(n)->start_mark.line + 1, (int)(n)->start_mark.column + 1

static void remember_key(job_ctx *c, const void *base, int row, const yaml_node_t *key)
{
    if (c->n_marks == c->cap_marks) {
        int cap = c->cap_marks ? c->cap_marks * 2 : 32;
        key_mark *m = pare_realloc(c->marks, (size_t)cap * sizeof *m);
        if (!m) {
            c->oom = true;
            return;
        }
        c->marks = m;
        c->cap_marks = cap;
    }
    c->marks[c->n_marks++] = (key_mark){base, row, AT_NODE(key)};
}

/* Where key `name` of the struct at `base` was given; falls back to the
 * mapping's own position. Returns false when the key was not in the file. */
static bool key_where(const job_ctx *c, const void *base, const job_schema *s, const char *name,
                      int *line, int *col)
{
    int row = job_key_find(s, name);
    const pare_job_meta *meta = base;

    for (int i = c->n_marks - 1; i >= 0; i--)
        if (c->marks[i].base == base && c->marks[i].row == row) {
            *line = c->marks[i].line;
            *col = c->marks[i].col;
            return true;
        }
    *line = meta->line;
    *col = meta->col;
    return false;
}

/* ---- scalars ---- */

static const char *text_of(const yaml_node_t *n)
{
    return (const char *)n->data.scalar.value;
}

static bool is_plain(const yaml_node_t *n)
{
    return n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE ||
           n->data.scalar.style == YAML_ANY_SCALAR_STYLE;
}

static bool is_null(const yaml_node_t *n)
{
    const char *t;

    if (n->type != YAML_SCALAR_NODE || !is_plain(n))
        return false;
    t = text_of(n);
    return !*t || !strcmp(t, "~") || !strcmp(t, "null") || !strcmp(t, "Null") ||
           !strcmp(t, "NULL");
}

/* What the user gave, for "got ..." in messages. */
static const char *got_text(const yaml_node_t *n, char *buf, size_t size)
{
    if (n->type == YAML_SEQUENCE_NODE)
        return "a list";
    if (n->type == YAML_MAPPING_NODE)
        return "a mapping";
    if (is_null(n))
        return "null";
    snprintf(buf, size, "%s'%.60s%s'", is_plain(n) ? "" : "the string ", text_of(n),
             strlen(text_of(n)) > 60 ? "..." : "");
    return buf;
}

static void choices_text(const job_key *k, char *buf, size_t size)
{
    size_t used = 0;

    buf[0] = '\0';
    for (int i = 0; k->choices[i] && used + 1 < size; i++)
        used += (size_t)snprintf(buf + used, size - used, "%s%s", i ? ", " : "", k->choices[i]);
}

/* "an integer", "one of a, b" ... for one value of element type `t`. */
static const char *want_text(const job_key *k, enum job_type t, char *buf, size_t size)
{
    switch (t) {
    case JT_STR: return "a string";
    case JT_INT: return "an integer";
    case JT_FLOAT: return "a number";
    case JT_BOOL: return "true or false";
    case JT_ENUM: {
        char list[400];
        choices_text(k, list, sizeof list);
        snprintf(buf, size, "one of %s", list);
        return buf;
    }
    default: return "a value";
    }
}

static enum job_type item_type(enum job_type t)
{
    switch (t) {
    case JT_STRS: return JT_STR;
    case JT_FLOATS: return JT_FLOAT;
    case JT_INTS: return JT_INT;
    case JT_BOOLS: return JT_BOOL;
    case JT_ENUMS: return JT_ENUM;
    default: return t;
    }
}

static int check_range(job_ctx *c, const job_key *k, const yaml_node_t *n, const char *label,
                       double v)
{
    bool lo_bad = (k->flags & JK_MIN) && ((k->flags & JK_MIN_EXCL) ? v <= k->min : v < k->min);
    bool hi_bad = (k->flags & JK_MAX) && ((k->flags & JK_MAX_EXCL) ? v >= k->max : v > k->max);
    char want[64];

    if (!lo_bad && !hi_bad)
        return 0;
    if ((k->flags & JK_MIN) && (k->flags & JK_MAX))
        snprintf(want, sizeof want, "in %c%g, %g%c", (k->flags & JK_MIN_EXCL) ? '(' : '[', k->min,
                 k->max, (k->flags & JK_MAX_EXCL) ? ')' : ']');
    else if (k->flags & JK_MIN)
        snprintf(want, sizeof want, "%s %g", (k->flags & JK_MIN_EXCL) ? ">" : ">=", k->min);
    else
        snprintf(want, sizeof want, "%s %g", (k->flags & JK_MAX_EXCL) ? "<" : "<=", k->max);
    report(c, AT_NODE(n), NULL, "%s must be %s, got %s", label, want, text_of(n));
    return -1;
}

/* One scalar of element type t into *out. label: "'weight_bits' in QuantPost". */
static int parse_scalar(job_ctx *c, const job_key *k, enum job_type t, const yaml_node_t *n,
                        const char *label, void *out)
{
    char want[480], got[96], hint[160];
    const char *s;
    char *end;

    if (n->type != YAML_SCALAR_NODE || (t != JT_STR && t != JT_ENUM && is_null(n)) ||
        (t == JT_ENUM && is_null(n) && strcmp(k->choices[0], "null"))) {
        report(c, AT_NODE(n), NULL, "%s must be %s, got %s", label,
               want_text(k, t, want, sizeof want), got_text(n, got, sizeof got));
        return -1;
    }
    s = text_of(n);
    switch (t) {
    case JT_STR:
        if (is_null(n)) {
            *(char **)out = NULL;
            return 0;
        }
        if (!(*(char **)out = pare_strdup(s))) {
            c->oom = true;
            return -1;
        }
        return 0;
    case JT_ENUM: {
        int idx = -1;
        const char *guess;
        /* ACT writes `prune_params_type: None` (Python) or YAML null. */
        if (!strcmp(k->choices[0], "null") && (is_null(n) || !strcmp(s, "None")))
            idx = 0;
        for (int i = 0; idx < 0 && k->choices[i]; i++)
            if (!strcmp(k->choices[i], s))
                idx = i;
        if (idx >= 0) {
            *(int *)out = idx;
            return 0;
        }
        guess = pare_closest_word(s, k->choices, job_n_choices(k));
        if (guess)
            snprintf(hint, sizeof hint, "did you mean '%s'?", guess);
        report(c, AT_NODE(n), guess ? hint : NULL, "%s must be %s, got %s", label,
               want_text(k, t, want, sizeof want), got_text(n, got, sizeof got));
        return -1;
    }
    default: break;
    }
    /* Numbers and booleans: a quoted "8" is a string in YAML; say so. */
    if (!is_plain(n)) {
        report(c, AT_NODE(n), "remove the quotes", "%s must be %s, got %s", label,
               want_text(k, t, want, sizeof want), got_text(n, got, sizeof got));
        return -1;
    }
    if (t == JT_BOOL) {
        static const char *const yes[] = {"true", "True", "TRUE", "yes", "Yes", "on", NULL};
        static const char *const no[] = {"false", "False", "FALSE", "no", "No", "off", NULL};
        for (int i = 0; yes[i]; i++)
            if (!strcmp(s, yes[i])) {
                *(bool *)out = true;
                return 0;
            }
        for (int i = 0; no[i]; i++)
            if (!strcmp(s, no[i])) {
                *(bool *)out = false;
                return 0;
            }
        report(c, AT_NODE(n), NULL, "%s must be %s, got %s", label, "true or false",
               got_text(n, got, sizeof got));
        return -1;
    }
    errno = 0;
    if (t == JT_INT) {
        long v = strtol(s, &end, 10);
        if (end == s || *end || errno) {
            report(c, AT_NODE(n), NULL, "%s must be %s, got %s", label, "an integer",
                   got_text(n, got, sizeof got));
            return -1;
        }
        if (check_range(c, k, n, label, (double)v))
            return -1;
        *(long *)out = v;
        return 0;
    }
    {
        double v = strtod(s, &end);
        if (end == s || *end || errno || !isfinite(v)) {
            report(c, AT_NODE(n), NULL, "%s must be %s, got %s", label, "a finite number",
                   got_text(n, got, sizeof got));
            return -1;
        }
        if (check_range(c, k, n, label, v))
            return -1;
        *(double *)out = v;
        return 0;
    }
}

/* ---- values ---- */

static int apply_mapping(job_ctx *c, const job_schema *s, void *base, yaml_node_t *n,
                         const char *path);

static size_t item_size(enum job_type t)
{
    switch (t) {
    case JT_STR: return sizeof(char *);
    case JT_INT: return sizeof(long);
    case JT_FLOAT: return sizeof(double);
    case JT_BOOL: return sizeof(bool);
    case JT_ENUM: return sizeof(int);
    default: return 0;
    }
}

static const char *list_want(enum job_type t)
{
    switch (t) {
    case JT_STRS: return "a list of names";
    case JT_FLOATS: return "a list of numbers";
    case JT_INTS: return "a list of integers";
    case JT_BOOLS: return "a list of true/false";
    case JT_ENUMS: return "a list of choices";
    case JT_REGIONS: return "a list of [[input names], [output names]]";
    case JT_PAIRS: return "a list of mappings";
    case JT_NAME_INTS: return "a mapping of names to integers";
    default: return "a list";
    }
}

/* The items of a sequence, or the node itself when a scalar stands for a
 * list of one. */
static int seq_items(job_ctx *c, yaml_node_t *n, yaml_node_t ***items_out)
{
    int count = 1;
    yaml_node_t **items;

    if (n->type == YAML_SEQUENCE_NODE)
        count = (int)(n->data.sequence.items.top - n->data.sequence.items.start);
    items = pare_calloc(count ? (size_t)count : 1, sizeof *items);
    if (!items) {
        c->oom = true;
        return -1;
    }
    if (n->type == YAML_SEQUENCE_NODE)
        for (int i = 0; i < count; i++)
            items[i] = yaml_document_get_node(c->doc, n->data.sequence.items.start[i]);
    else
        items[0] = n;
    *items_out = items;
    return count;
}

/* A list of scalars (JT_STRS .. JT_ENUMS): parse all items into a fresh array,
 * then replace the old list. All list structs are {pointer, int n}. */
static int apply_list(job_ctx *c, const job_key *k, void *f, yaml_node_t *n, const char *label)
{
    enum job_type t = item_type(k->type);
    size_t isz = item_size(t);
    yaml_node_t **items = NULL;
    char *arr = NULL, ilabel[240], got[96];
    int count, bad = 0, parsed = 0;

    if (n->type != YAML_SEQUENCE_NODE &&
        !(n->type == YAML_SCALAR_NODE && (k->flags & JK_SCALAR_OK) && !is_null(n))) {
        report(c, AT_NODE(n), NULL, "%s must be %s, got %s", label, list_want(k->type),
               got_text(n, got, sizeof got));
        return -1;
    }
    count = seq_items(c, n, &items);
    if (count < 0)
        return -1;
    arr = pare_calloc(count ? (size_t)count : 1, isz);
    if (!arr) {
        c->oom = true;
        pare_free(items);
        return -1;
    }
    snprintf(ilabel, sizeof ilabel, "each item of %s", label);
    for (int i = 0; i < count; i++) {
        if (parse_scalar(c, k, t, items[i], ilabel, arr + (size_t)i * isz)) {
            bad = 1;
            continue;
        }
        parsed = i + 1;
        /* A null entry in a list of names is a mistake, not "unset". */
        if (t == JT_STR && !((char **)arr)[i]) {
            report(c, AT_NODE(items[i]), NULL, "%s must be a name, got null", ilabel);
            bad = 1;
        }
    }
    if (!bad && (k->flags & JK_RANGE2)) {
        bool ok = count == 2;
        if (ok && t == JT_FLOAT)
            ok = ((double *)arr)[0] <= ((double *)arr)[1];
        if (ok && t == JT_INT)
            ok = ((long *)arr)[0] <= ((long *)arr)[1];
        if (!ok) {
            report(c, AT_NODE(n), NULL, "%s must be a range [lo, hi] with lo <= hi", label);
            bad = 1;
        }
    }
    if (bad || c->oom) {
        if (t == JT_STR)
            for (int i = 0; i < parsed; i++)
                pare_free(((char **)arr)[i]);
        pare_free(arr);
        pare_free(items);
        return -1;
    }
    pare_free(items);
    job_field_free(k, f);
    switch (k->type) {
    case JT_STRS: ((pare_job_strs *)f)->v = (char **)arr; ((pare_job_strs *)f)->n = count; break;
    case JT_FLOATS: ((pare_job_floats *)f)->v = (double *)arr; ((pare_job_floats *)f)->n = count; break;
    case JT_INTS: ((pare_job_ints *)f)->v = (long *)arr; ((pare_job_ints *)f)->n = count; break;
    case JT_BOOLS: ((pare_job_bools *)f)->v = (bool *)arr; ((pare_job_bools *)f)->n = count; break;
    case JT_ENUMS: ((pare_job_enums *)f)->v = (int *)arr; ((pare_job_enums *)f)->n = count; break;
    default: pare_free(arr); break;
    }
    return 0;
}

static int apply_regions(job_ctx *c, const job_key *k, pare_job_regions *f, yaml_node_t *n,
                         const char *label)
{
    static const job_key name_key = {.name = "regions", .type = JT_STRS, .flags = JK_SCALAR_OK};
    yaml_node_t **items = NULL;
    pare_job_regions out = {0};
    char got[96], ilabel[240];
    int count, bad = 0;

    if (n->type != YAML_SEQUENCE_NODE) {
        report(c, AT_NODE(n), NULL, "%s must be %s, got %s", label, list_want(k->type),
               got_text(n, got, sizeof got));
        return -1;
    }
    count = seq_items(c, n, &items);
    if (count < 0)
        return -1;
    out.v = pare_calloc(count ? (size_t)count : 1, sizeof *out.v);
    if (!out.v) {
        c->oom = true;
        pare_free(items);
        return -1;
    }
    snprintf(ilabel, sizeof ilabel, "each region of %s", label);
    for (int i = 0; i < count; i++, out.n++) {
        yaml_node_t *io[2] = {NULL, NULL};
        pare_job_strs *dst[2] = {&out.v[i].inputs, &out.v[i].outputs};
        static const char *const side[2] = {"inputs", "outputs"};
        out.v[i].line = (int)items[i]->start_mark.line + 1;
        out.v[i].col = (int)items[i]->start_mark.column + 1;
        if (items[i]->type == YAML_SEQUENCE_NODE &&
            items[i]->data.sequence.items.top - items[i]->data.sequence.items.start == 2) {
            io[0] = yaml_document_get_node(c->doc, items[i]->data.sequence.items.start[0]);
            io[1] = yaml_document_get_node(c->doc, items[i]->data.sequence.items.start[1]);
        }
        if (!io[0] || !io[1]) {
            report(c, AT_NODE(items[i]), "write a region as [[in1, in2], [out1]]",
                   "%s must be [[input names], [output names]], got %s", ilabel,
                   got_text(items[i], got, sizeof got));
            bad = 1;
            continue;
        }
        for (int s = 0; s < 2; s++) {
            char slabel[260];
            snprintf(slabel, sizeof slabel, "the %s of each region of %s", side[s], label);
            if (apply_list(c, &name_key, dst[s], io[s], slabel))
                bad = 1;
            else if (dst[s]->n == 0) {
                report(c, AT_NODE(io[s]), NULL, "%s must name at least one value", slabel);
                bad = 1;
            }
        }
    }
    pare_free(items);
    if (bad || c->oom) {
        job_field_free(k, &out);
        return -1;
    }
    job_field_free(k, f);
    *f = out;
    return 0;
}

/* A mapping name -> integer (each value checked against k's range). */
static int apply_name_ints(job_ctx *c, const job_key *k, pare_job_name_ints *f, yaml_node_t *n,
                           const char *label)
{
    pare_job_name_ints out = {0};
    char got[96], ilabel[320], hint[200];
    int count, bad = 0;

    if (n->type != YAML_MAPPING_NODE) {
        report(c, AT_NODE(n), "write it as a mapping, e.g. {conv1.weight: 4}", "%s must be %s, "
               "got %s", label, list_want(k->type), got_text(n, got, sizeof got));
        return -1;
    }
    count = (int)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
    out.names = pare_calloc(count ? (size_t)count : 1, sizeof *out.names);
    out.v = pare_calloc(count ? (size_t)count : 1, sizeof *out.v);
    if (!out.names || !out.v) {
        c->oom = true;
        job_field_free(k, &out);
        pare_free(out.names);
        pare_free(out.v);
        return -1;
    }
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = yaml_document_get_node(c->doc, p->key);
        yaml_node_t *vn = yaml_document_get_node(c->doc, p->value);
        const char *name;
        int dup = -1;
        long v;

        if (kn->type != YAML_SCALAR_NODE || is_null(kn)) {
            report(c, AT_NODE(kn), NULL, "keys of %s must be value or node names", label);
            bad = 1;
            continue;
        }
        name = text_of(kn);
        for (int i = 0; i < out.n; i++)
            if (!strcmp(out.names[i], name))
                dup = i;
        if (dup >= 0) {
            hint[0] = '\0';
            for (yaml_node_pair_t *q = n->data.mapping.pairs.start; q < p; q++) {
                yaml_node_t *qk = yaml_document_get_node(c->doc, q->key);
                if (qk->type == YAML_SCALAR_NODE && !strcmp(text_of(qk), name)) {
                    snprintf(hint, sizeof hint, "first set at %s:%d:%d", c->name,
                             (int)qk->start_mark.line + 1, (int)qk->start_mark.column + 1);
                    break;
                }
            }
            report(c, AT_NODE(kn), hint[0] ? hint : NULL, "duplicate key '%.80s' in %s", name,
                   label);
            bad = 1;
            continue;
        }
        snprintf(ilabel, sizeof ilabel, "'%.80s' in %s", name, label);
        if (parse_scalar(c, k, JT_INT, vn, ilabel, &v)) {
            bad = 1;
            continue;
        }
        if (!(out.names[out.n] = pare_strdup(name))) {
            c->oom = true;
            break;
        }
        out.v[out.n++] = v;
    }
    if (bad || c->oom) {
        job_field_free(k, &out);
        return -1;
    }
    job_field_free(k, f);
    *f = out;
    return 0;
}

static int apply_pairs(job_ctx *c, const job_key *k, pare_job_pairs *f, yaml_node_t *n,
                       const char *label, const char *path)
{
    yaml_node_t **items = NULL;
    pare_job_pairs out = {0};
    char got[96], ipath[160];
    int count, bad = 0;

    if (n->type != YAML_SEQUENCE_NODE) {
        report(c, AT_NODE(n), NULL, "%s must be %s, got %s", label, list_want(k->type),
               got_text(n, got, sizeof got));
        return -1;
    }
    count = seq_items(c, n, &items);
    if (count < 0)
        return -1;
    out.v = pare_calloc(count ? (size_t)count : 1, sizeof *out.v);
    if (!out.v) {
        c->oom = true;
        pare_free(items);
        return -1;
    }
    for (int i = 0; i < count && !c->oom; i++) {
        pare_job_pair *p = &out.v[i];
        out.n++;
        if (job_fields_default(k->sub, p) != PARE_OK) {
            c->oom = true;
            break;
        }
        snprintf(ipath, sizeof ipath, "%s.%s[%d]", path, k->name, i);
        if (items[i]->type != YAML_MAPPING_NODE) {
            report(c, AT_NODE(items[i]), NULL, "each item of %s must be a mapping "
                   "{teacher, student, loss, alpha}, got %s", label,
                   got_text(items[i], got, sizeof got));
            bad = 1;
            continue;
        }
        if (apply_mapping(c, k->sub, p, items[i], ipath))
            bad = 1;
        for (int r = 0; r < k->sub->n_keys; r++)
            if ((k->sub->keys[r].flags & JK_REQUIRED) && !(p->meta.set & (1ull << r))) {
                report(c, AT_NODE(items[i]), NULL, "missing key '%s' in %s",
                       k->sub->keys[r].name, ipath);
                bad = 1;
            }
    }
    pare_free(items);
    job_field_free(k, bad || c->oom ? (void *)&out : (void *)f);
    if (bad || c->oom)
        return -1;
    *f = out;
    return 0;
}

/* Converts node n into field f of row k. kname is the spelling the user
 * wrote, path the struct's name ("QuantPost", "TrainConfig.optimizer"). */
static int apply_value(job_ctx *c, const job_key *k, void *f, yaml_node_t *n, const char *kname,
                       const char *path)
{
    char label[200], got[96], want[480];

    snprintf(label, sizeof label, "'%s' in %s", kname, path);
    switch (k->type) {
    case JT_STR: {
        char *v = NULL;
        if (parse_scalar(c, k, JT_STR, n, label, &v))
            return -1;
        pare_free(*(char **)f);
        *(char **)f = v;
        return 0;
    }
    case JT_INT:
    case JT_FLOAT:
    case JT_BOOL:
    case JT_ENUM: {
        long tmp[2];   /* large and aligned enough for any scalar */
        if (parse_scalar(c, k, k->type, n, label, tmp))
            return -1;
        memcpy(f, tmp, item_size(k->type));
        return 0;
    }
    case JT_STRS:
    case JT_FLOATS:
    case JT_INTS:
    case JT_BOOLS:
    case JT_ENUMS: return apply_list(c, k, f, n, label);
    case JT_REGIONS: return apply_regions(c, k, f, n, label);
    case JT_PAIRS: return apply_pairs(c, k, f, n, label, path);
    case JT_NAME_INTS: return apply_name_ints(c, k, f, n, label);
    case JT_SUB: {
        char sub_path[160];
        snprintf(sub_path, sizeof sub_path, "%s.%s", path, k->name);
        if (n->type == YAML_MAPPING_NODE)
            return apply_mapping(c, k->sub, f, n, sub_path);
        if (n->type == YAML_SCALAR_NODE && k->sub->scalar_key >= 0) {
            /* `optimizer: Adam` = `optimizer: {type: Adam}` */
            const job_key *sk = &k->sub->keys[k->sub->scalar_key];
            pare_job_meta *meta = f;
            if (apply_value(c, sk, JOB_FIELD(f, sk), n, kname, path))
                return -1;
            meta->set |= 1ull << k->sub->scalar_key;
            return 0;
        }
        if (k->sub->scalar_key >= 0)
            snprintf(want, sizeof want, "%s or a mapping",
                     want_text(&k->sub->keys[k->sub->scalar_key],
                               k->sub->keys[k->sub->scalar_key].type, got, sizeof got));
        else
            snprintf(want, sizeof want, "a mapping");
        report(c, AT_NODE(n), NULL, "%s must be %s, got %s", label, want,
               got_text(n, got, sizeof got));
        return -1;
    }
    }
    return -1;
}

/* The parent row a key of an inline schema writes (same offset), or -1. */
static int parent_row(const job_schema *s, int row)
{
    for (int i = 0; i < s->parent->n_keys; i++)
        if (!(s->parent->keys[i].flags & JK_COMPAT) && s->parent->keys[i].off == s->keys[row].off)
            return i;
    return -1;
}

static int apply_mapping(job_ctx *c, const job_schema *s, void *base, yaml_node_t *n,
                         const char *path)
{
    pare_job_meta *meta = base;
    const char *names[128];
    const char *spelled[64] = {0};
    yaml_mark_t first[64];
    int n_names = 0, bad = 0;
    char hint[200];

    if (!s->parent) {
        meta->present = true;
        meta->line = (int)n->start_mark.line + 1;
        meta->col = (int)n->start_mark.column + 1;
    }
    for (int i = 0; i < s->n_keys && n_names < 126; i++) {
        names[n_names++] = s->keys[i].name;
        if (s->keys[i].alias)
            names[n_names++] = s->keys[i].alias;
    }
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = yaml_document_get_node(c->doc, p->key);
        yaml_node_t *vn = yaml_document_get_node(c->doc, p->value);
        const char *kname, *guess;
        int row, bit_row;

        if (kn->type != YAML_SCALAR_NODE) {
            report(c, AT_NODE(kn), NULL, "keys in %s must be names", path);
            bad = 1;
            continue;
        }
        kname = text_of(kn);
        row = job_key_find(s, kname);
        if (row < 0) {
            guess = pare_closest_word(kname, names, n_names);
            if (guess)
                snprintf(hint, sizeof hint, "did you mean '%s'?", guess);
            report(c, AT_NODE(kn), guess ? hint : NULL, "unknown key '%.80s' in %s", kname, path);
            bad = 1;
            continue;
        }
        if (spelled[row]) {
            const job_key *k = &s->keys[row];
            if (!strcmp(spelled[row], kname)) {
                snprintf(hint, sizeof hint, "first set at %s:%d:%d", c->name,
                         (int)first[row].line + 1, (int)first[row].column + 1);
                report(c, AT_NODE(kn), hint, "duplicate key '%s' in %s", kname, path);
            } else {
                report(c, AT_NODE(kn), "keep one", "'%s' is an alias of '%s'; both are set in %s",
                       k->alias, k->name, path);
            }
            bad = 1;
            continue;
        }
        spelled[row] = kname;
        first[row] = kn->start_mark;
        /* A key stands for a parent key (optimizer_builder.optimizer is
         * TrainConfig.optimizer); either spelling may come first. */
        bit_row = s->parent ? parent_row(s, row) : row;
        if (bit_row >= 0 && (meta->set & (1ull << bit_row))) {
            report(c, AT_NODE(kn), "keep one", "'%s' is set twice in %s (directly and through "
                   "'optimizer_builder')", s->parent ? s->parent->keys[bit_row].name : kname,
                   s->parent ? s->parent->name : path);
            bad = 1;
            continue;
        }
        if (apply_value(c, &s->keys[row], JOB_FIELD(base, &s->keys[row]), vn, kname, path)) {
            bad = 1;
            continue;
        }
        if (bit_row >= 0) {
            meta->set |= 1ull << bit_row;
            remember_key(c, base, bit_row, kn);
        }
    }
    return bad ? -1 : 0;
}

/* ---- sections ---- */

static int apply_layers(job_ctx *c, pare_job_layers *L, yaml_node_t *n)
{
    static const job_key ratio_key = {.name = "ratio", .type = JT_FLOAT, .min = 0, .max = 1,
                                      .flags = JK_MIN | JK_MAX | JK_MAX_EXCL};
    int count = (int)(n->data.mapping.pairs.top - n->data.mapping.pairs.start), bad = 0;
    char label[200], hint[200];

    L->meta.present = true;
    L->meta.line = (int)n->start_mark.line + 1;
    L->meta.col = (int)n->start_mark.column + 1;
    if (count == 0)
        return 0;
    {
        char **names = pare_realloc(L->names, (size_t)(L->n + count) * sizeof *names);
        double *ratios;
        if (!names) {
            c->oom = true;
            return -1;
        }
        L->names = names;
        ratios = pare_realloc(L->ratios, (size_t)(L->n + count) * sizeof *ratios);
        if (!ratios) {
            c->oom = true;
            return -1;
        }
        L->ratios = ratios;
    }
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = yaml_document_get_node(c->doc, p->key);
        yaml_node_t *vn = yaml_document_get_node(c->doc, p->value);
        const char *name;
        double v;
        int dup = -1;

        hint[0] = '\0';

        if (kn->type != YAML_SCALAR_NODE) {
            report(c, AT_NODE(kn), NULL, "keys in Layers must be value or weight names");
            bad = 1;
            continue;
        }
        name = text_of(kn);
        for (int i = 0; i < L->n; i++)
            if (!strcmp(L->names[i], name))
                dup = i;
        if (dup >= 0) {
            /* Earlier entries' positions: walk the mapping again (rare path). */
            for (yaml_node_pair_t *q = n->data.mapping.pairs.start; q < p; q++) {
                yaml_node_t *qk = yaml_document_get_node(c->doc, q->key);
                if (qk->type == YAML_SCALAR_NODE && !strcmp(text_of(qk), name)) {
                    snprintf(hint, sizeof hint, "first set at %s:%d:%d", c->name,
                             (int)qk->start_mark.line + 1, (int)qk->start_mark.column + 1);
                    break;
                }
            }
            report(c, AT_NODE(kn), hint[0] ? hint : NULL, "duplicate key '%.80s' in Layers", name);
            bad = 1;
            continue;
        }
        snprintf(label, sizeof label, "'%.80s' in Layers", name);
        if (parse_scalar(c, &ratio_key, JT_FLOAT, vn, label, &v)) {
            bad = 1;
            continue;
        }
        if (!(L->names[L->n] = pare_strdup(name))) {
            c->oom = true;
            return -1;
        }
        L->ratios[L->n++] = v;
    }
    return bad ? -1 : 0;
}

/* Section `sec` spelled `spelled` with body vn; checks it is given once. */
static void apply_section(job_ctx *c, const job_section *sec, const char *spelled,
                          yaml_node_t *kn, yaml_node_t *vn)
{
    int idx = (int)(sec - job_sections);
    void *base = (char *)c->job + sec->off;
    char hint[200], got[96];

    if (c->sec_spelled[idx]) {
        if (!strcmp(c->sec_spelled[idx], spelled)) {
            snprintf(hint, sizeof hint, "first given at %s:%d:%d", c->name,
                     (int)c->sec_seen[idx].line + 1, (int)c->sec_seen[idx].column + 1);
            report(c, AT_NODE(kn), hint, "duplicate section '%s'", spelled);
        } else {
            report(c, AT_NODE(kn), "keep one", "section '%s' is an alias of '%s'; both are given",
                   sec->alias, sec->name);
        }
        return;
    }
    c->sec_spelled[idx] = spelled;
    c->sec_seen[idx] = kn->start_mark;
    if (is_null(vn)) {
        /* `QuantPost:` with nothing under it: the method with its defaults. */
        pare_job_meta *meta = base;
        meta->present = true;
        meta->line = (int)kn->start_mark.line + 1;
        meta->col = (int)kn->start_mark.column + 1;
        return;
    }
    if (vn->type != YAML_MAPPING_NODE) {
        report(c, AT_NODE(vn), NULL, "section '%s' must be a mapping of keys, got %s", spelled,
               got_text(vn, got, sizeof got));
        return;
    }
    if (sec->schema)
        apply_mapping(c, sec->schema, base, vn, sec->name);
    else
        apply_layers(c, base, vn);
}

static void section_names(const char **names, int *n, bool with_compress)
{
    *n = 0;
    for (int i = 0; i < job_n_sections; i++) {
        names[(*n)++] = job_sections[i].name;
        if (job_sections[i].alias)
            names[(*n)++] = job_sections[i].alias;
    }
    if (with_compress)
        names[(*n)++] = "Compress";
}

/* PaddleFleetX: Compress: {pretrained: path, Quantization: {...}, ...}. */
static void apply_compress(job_ctx *c, yaml_node_t *vn)
{
    const char *names[40];
    char hint[200], got[96];
    int n_names;

    if (vn->type != YAML_MAPPING_NODE) {
        report(c, AT_NODE(vn), NULL, "section 'Compress' must be a mapping, got %s",
               got_text(vn, got, sizeof got));
        return;
    }
    section_names(names, &n_names, false);
    names[n_names++] = "pretrained";
    for (yaml_node_pair_t *p = vn->data.mapping.pairs.start; p < vn->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = yaml_document_get_node(c->doc, p->key);
        yaml_node_t *v = yaml_document_get_node(c->doc, p->value);
        const job_section *sec;
        const char *name;

        if (kn->type != YAML_SCALAR_NODE) {
            report(c, AT_NODE(kn), NULL, "keys in Compress must be names");
            continue;
        }
        name = text_of(kn);
        if (!strcmp(name, "pretrained")) {
            const job_section *g = job_section_find("Global");
            const job_key *k = &g->schema->keys[job_key_find(g->schema, "model")];
            if (c->has_pretrained) {
                report(c, AT_NODE(kn), NULL, "duplicate key 'pretrained' in Compress");
                continue;
            }
            c->has_pretrained = true;
            c->pretrained = kn->start_mark;
            /* Global's set bit is given in check_job, after a `Global: model`
             * anywhere in the file has had its chance to clash. */
            if (apply_value(c, k, JOB_FIELD(&c->job->global, k), v, "pretrained", "Compress") == 0)
                c->job->global.meta.present = true;
            else
                c->has_pretrained = false;
            continue;
        }
        sec = job_section_find(name);
        if (!sec) {
            const char *guess = pare_closest_word(name, names, n_names);
            if (guess)
                snprintf(hint, sizeof hint, "did you mean '%s'?", guess);
            report(c, AT_NODE(kn), guess ? hint : NULL, "unknown key '%.80s' in Compress", name);
            continue;
        }
        apply_section(c, sec, name, kn, v);
    }
}

/* ---- checks across keys ---- */

static void check_job(job_ctx *c)
{
    pare_job *j = c->job;
    int line, col;

    if (c->has_pretrained) {
        const job_schema *gs = job_section_find("Global")->schema;
        if (key_where(c, &j->global, gs, "model", &line, &col))
            report(c, (int)c->pretrained.line + 1, (int)c->pretrained.column + 1, "keep one",
                   "'pretrained' in Compress and 'model' in Global both set the model");
        else
            j->global.meta.set |= 1ull << job_key_find(gs, "model");
    }

    if (j->train.meta.present) {
        const job_schema *ts = job_section_find("TrainConfig")->schema;
        const job_key *opt_row = &ts->keys[job_key_find(ts, "optimizer")];
        pare_job_optimizer *o = &j->train.optimizer;
        pare_job_lr *lr = &j->train.learning_rate;
        int wd_row = job_key_find(opt_row->sub, "weight_decay");

        if ((o->meta.set & (1ull << wd_row)) && pare_job_is_set(j, "TrainConfig", "weight_decay") &&
            o->weight_decay != j->train.weight_decay) {
            key_where(c, o, opt_row->sub, "weight_decay", &line, &col);
            report(c, line, col, "keep one",
                   "'weight_decay' differs between TrainConfig and TrainConfig.optimizer");
        }
        if (lr->type == PARE_JOB_LR_PIECEWISE && lr->values.n != lr->boundaries.n + 1) {
            key_where(c, &j->train, ts, "learning_rate", &line, &col);
            report(c, line, col, NULL,
                   "PiecewiseDecay needs one more value than boundaries, got %d values for "
                   "%d boundaries", lr->values.n, lr->boundaries.n);
        }
    }
    if (j->distill.meta.present) {
        const job_schema *ds = job_section_find("Distillation")->schema;
        pare_job_distill *d = &j->distill;
        int pairs;

        if (d->node.n && d->pairs.n) {
            key_where(c, d, ds, "pairs", &line, &col);
            report(c, line, col, "use one of them",
                   "'node' and 'pairs' are both set in Distillation");
        }
        if (d->teacher_model && d->node.n % 2) {
            key_where(c, d, ds, "node", &line, &col);
            report(c, line, col, "list teacher and student names in turn",
                   "with 'teacher_model', 'node' must alternate teacher and student names, got %d "
                   "names", d->node.n);
        }
        /* ACT: one pair per node name, or per teacher/student couple with an
         * external teacher; no names = the outputs. */
        if (d->pairs.n)
            pairs = d->pairs.n;
        else if (d->node.n)
            pairs = d->teacher_model ? d->node.n / 2 : d->node.n;
        else
            pairs = 1;
        if (d->alpha.n != 1 && d->alpha.n != pairs) {
            key_where(c, d, ds, "alpha", &line, &col);
            report(c, line, col, "give one value or one per pair",
                   "'alpha' in Distillation has %d values for %d pairs", d->alpha.n, pairs);
        }
        if (d->loss.n != 1 && d->loss.n != pairs) {
            key_where(c, d, ds, "loss", &line, &col);
            report(c, line, col, "give one value or one per pair",
                   "'loss' in Distillation has %d values for %d pairs", d->loss.n, pairs);
        }
    }
    if (j->asp_prune.meta.present && j->asp_prune.n >= j->asp_prune.m) {
        const job_schema *as = job_section_find("ASPPrune")->schema;
        if (!key_where(c, &j->asp_prune, as, "n", &line, &col))
            key_where(c, &j->asp_prune, as, "m", &line, &col);
        report(c, line, col, NULL, "'n' must be less than 'm' in ASPPrune, got n=%ld, m=%ld",
               j->asp_prune.n, j->asp_prune.m);
    }
}

/* Values inherited from elsewhere, filled after a load or an edit. */
static void resolve_job(pare_job *j)
{
    if (!pare_job_is_set(j, "TrainConfig", "batch_size"))
        j->train.batch_size = j->global.batch_size;
    if (!pare_job_is_set(j, "QuantPost", "batch_size"))
        j->quant_post.batch_size = j->global.batch_size;
    {
        const job_schema *ts = job_section_find("TrainConfig")->schema;
        const job_schema *os = ts->keys[job_key_find(ts, "optimizer")].sub;
        bool opt_set = j->train.optimizer.meta.set & (1ull << job_key_find(os, "weight_decay"));
        if (opt_set && !pare_job_is_set(j, "TrainConfig", "weight_decay"))
            j->train.weight_decay = j->train.optimizer.weight_decay;
        else
            j->train.optimizer.weight_decay = j->train.weight_decay;
    }
}

/* ---- entry points ---- */

/* cross = false skips the checks that relate keys to each other: used for
 * one-key documents built by pare_job_set, where the rest of the job lives
 * elsewhere. */
static pare_status load_text(const char *text, size_t len, const char *name, bool cross,
                             pare_job **out, pare_job_diags *diags, pare_error *err)
{
    yaml_parser_t parser;
    yaml_document_t doc;
    pare_error first;
    job_ctx c;
    pare_job *job = pare_job_new();
    pare_status rc = PARE_OK;

    *out = NULL;
    memset(&c, 0, sizeof c);
    memset(&first, 0, sizeof first);
    c.name = name;
    c.diags = diags;
    c.err = &first;
    if (!job || !(job->source = pare_strdup(name))) {
        pare_job_free(job);
        return pare_fail(err, PARE_ENOMEM, name, "out of memory reading the job");
    }
    c.job = job;
    if (!yaml_parser_initialize(&parser)) {
        pare_job_free(job);
        return pare_fail(err, PARE_ENOMEM, name, "out of memory reading the job");
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &doc)) {
        char hint[200] = "";
        if (parser.problem_mark.index < len && text[parser.problem_mark.index] == '\t')
            snprintf(hint, sizeof hint, "indent with spaces: yaml does not allow tabs");
        else if (parser.context)
            snprintf(hint, sizeof hint, "%s at line %d", parser.context,
                     (int)parser.context_mark.line + 1);
        if (parser.error == YAML_MEMORY_ERROR)
            c.oom = true;
        else
            report(&c, (int)parser.problem_mark.line + 1, (int)parser.problem_mark.column + 1,
                   hint[0] ? hint : NULL, "invalid yaml: %s",
                   parser.problem ? parser.problem : "syntax error");
    } else {
        yaml_node_t *root = yaml_document_get_root_node(&doc);
        c.doc = &doc;
        if (root && root->type != YAML_MAPPING_NODE && !is_null(root)) {
            report(&c, AT_NODE(root), "start with a section such as 'Global:'",
                   "a job file must be a mapping of sections");
        } else if (root && root->type == YAML_MAPPING_NODE) {
            const char *names[40];
            int n_names;
            section_names(names, &n_names, true);
            for (yaml_node_pair_t *p = root->data.mapping.pairs.start;
                 p < root->data.mapping.pairs.top; p++) {
                yaml_node_t *kn = yaml_document_get_node(&doc, p->key);
                yaml_node_t *vn = yaml_document_get_node(&doc, p->value);
                const job_section *sec;
                if (kn->type != YAML_SCALAR_NODE) {
                    report(&c, AT_NODE(kn), NULL, "section names must be plain names");
                    continue;
                }
                if (!strcmp(text_of(kn), "Compress")) {
                    apply_compress(&c, vn);
                    continue;
                }
                sec = job_section_find(text_of(kn));
                if (!sec) {
                    const char *guess = pare_closest_word(text_of(kn), names, n_names);
                    char hint[200];
                    if (guess)
                        snprintf(hint, sizeof hint, "did you mean '%s'?", guess);
                    report(&c, AT_NODE(kn), guess ? hint : NULL, "unknown section '%.80s'",
                           text_of(kn));
                    continue;
                }
                apply_section(&c, sec, text_of(kn), kn, vn);
            }
            if (cross)
                check_job(&c);
        }
        yaml_document_delete(&doc);
        c.doc = NULL;
        /* A second document would be silently ignored; refuse it instead. */
        if (!c.n_errors && yaml_parser_load(&parser, &doc)) {
            yaml_node_t *root2 = yaml_document_get_root_node(&doc);
            if (root2)
                report(&c, AT_NODE(root2), "keep one document per job file",
                       "more than one yaml document");
            yaml_document_delete(&doc);
        }
    }
    yaml_parser_delete(&parser);
    pare_free(c.marks);
    if (c.oom)
        rc = pare_fail(err, PARE_ENOMEM, name, "out of memory reading the job");
    else if (c.n_errors) {
        rc = PARE_EINPUT;
        if (err)
            *err = first;
    }
    if (rc != PARE_OK) {
        pare_job_free(job);
        return rc;
    }
    resolve_job(job);
    *out = job;
    return PARE_OK;
}

pare_status pare_job_load_string(const char *text, const char *name, pare_job **out,
                                 pare_job_diags *diags, pare_error *err)
{
    return load_text(text, strlen(text), name ? name : "<string>", true, out, diags, err);
}

pare_status pare_job_load(const char *path, pare_job **out, pare_job_diags *diags, pare_error *err)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t len = 0, cap = 0;
    pare_status rc = PARE_OK;

    *out = NULL;
    if (!f)
        return pare_fail(err, PARE_EIO, path, "cannot open: %s", strerror(errno));
    for (;;) {
        size_t got;
        if (len + 4096 > cap) {
            char *nb = pare_realloc(buf, cap ? cap * 2 : 8192);
            if (!nb) {
                rc = pare_fail(err, PARE_ENOMEM, path, "out of memory reading the job");
                break;
            }
            buf = nb;
            cap = cap ? cap * 2 : 8192;
        }
        got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0) {
            if (ferror(f))
                rc = pare_fail(err, PARE_EIO, path, "cannot read: %s", strerror(errno));
            break;
        }
    }
    fclose(f);
    if (rc == PARE_OK)
        rc = load_text(buf, len, path, true, out, diags, err);
    pare_free(buf);
    return rc;
}

pare_status pare_job_validate(const pare_job *job, pare_job_diags *diags, pare_error *err)
{
    job_ctx c;
    pare_error first;

    memset(&c, 0, sizeof c);
    memset(&first, 0, sizeof first);
    c.name = job->source ? job->source : "job";
    c.diags = diags;
    c.err = &first;
    /* check_job only reads the job; the cast lets it share the loader's context. */
    c.job = (pare_job *)job;
    check_job(&c);
    if (!c.n_errors)
        return PARE_OK;
    if (err)
        *err = first;
    return PARE_EINPUT;
}

pare_status pare_job_check_runnable(const pare_job *job, pare_job_diags *diags, pare_error *err)
{
    job_ctx c;
    pare_error first;
    const char *missing[2];
    int n_missing = 0;

    memset(&c, 0, sizeof c);
    memset(&first, 0, sizeof first);
    c.name = job->source ? job->source : "job";
    c.diags = diags;
    c.err = &first;
    if (!job->global.model)
        missing[n_missing++] = "model";
    if (!job->global.save_dir)
        missing[n_missing++] = "save_dir";
    for (int i = 0; i < n_missing; i++) {
        char hint[120];
        snprintf(hint, sizeof hint, "add '%s:' under Global", missing[i]);
        report(&c, job->global.meta.line, job->global.meta.col, hint, "missing '%s' in Global",
               missing[i]);
    }
    if (!c.n_errors)
        return PARE_OK;
    if (err)
        *err = first;
    return PARE_EINPUT;
}

/* ---- editing ---- */

static size_t field_size(const job_key *k)
{
    switch (k->type) {
    case JT_STRS: return sizeof(pare_job_strs);
    case JT_FLOATS: return sizeof(pare_job_floats);
    case JT_INTS: return sizeof(pare_job_ints);
    case JT_BOOLS: return sizeof(pare_job_bools);
    case JT_ENUMS: return sizeof(pare_job_enums);
    case JT_REGIONS: return sizeof(pare_job_regions);
    case JT_PAIRS: return sizeof(pare_job_pairs);
    case JT_NAME_INTS: return sizeof(pare_job_name_ints);
    case JT_SUB: return k->sub->size;
    default: return item_size(k->type);
    }
}

/* YAML double-quoted form of a name, for building a one-key document. */
static size_t quote_into(char *out, size_t size, const char *s)
{
    size_t n = 0;
    if (n < size)
        out[n++] = '"';
    for (; *s && n + 3 < size; s++) {
        if (*s == '"' || *s == '\\')
            out[n++] = '\\';
        out[n++] = *s;
    }
    if (n < size)
        out[n++] = '"';
    out[n < size ? n : size - 1] = '\0';
    return n;
}

pare_status pare_job_set(pare_job *job, const char *section, const char *key,
                         const char *yaml_value, pare_error *err)
{
    const job_section *sec = job_section_find(section);
    pare_job *tmp = NULL;
    char where[300], qkey[300], *text;
    size_t size;
    pare_status rc;
    int row = -1;

    snprintf(where, sizeof where, "%s.%s", section, key);
    if (!sec) {
        const char *names[40];
        int n_names;
        section_names(names, &n_names, false);
        rc = pare_fail(err, PARE_EINPUT, where, "unknown section '%s'", section);
        if (pare_closest_word(section, names, n_names))
            pare_error_hint(err, "did you mean '%s'?", pare_closest_word(section, names, n_names));
        return rc;
    }
    if (sec->schema && (row = job_key_find(sec->schema, key)) < 0) {
        const char *names[128];
        int n = 0;
        for (int i = 0; i < sec->schema->n_keys && n < 126; i++) {
            names[n++] = sec->schema->keys[i].name;
            if (sec->schema->keys[i].alias)
                names[n++] = sec->schema->keys[i].alias;
        }
        rc = pare_fail(err, PARE_EINPUT, where, "unknown key '%s' in %s", key, sec->name);
        if (pare_closest_word(key, names, n))
            pare_error_hint(err, "did you mean '%s'?", pare_closest_word(key, names, n));
        return rc;
    }
    if (sec->schema && (sec->schema->keys[row].flags & JK_COMPAT))
        return pare_fail(err, PARE_EINPUT, where,
                         "'%s' is only read from files; set the keys it stands for", key);
    if (strchr(yaml_value, '\n'))
        return pare_fail(err, PARE_EINPUT, where, "the value must be one line of yaml");
    quote_into(qkey, sizeof qkey, key);
    size = strlen(sec->name) + strlen(qkey) + strlen(yaml_value) + 16;
    if (!(text = pare_alloc(size)))
        return pare_fail(err, PARE_ENOMEM, where, "out of memory");
    snprintf(text, size, "%s:\n  %s: %s\n", sec->name, qkey, yaml_value);
    rc = load_text(text, strlen(text), where, false, &tmp, NULL, err);
    pare_free(text);
    if (rc != PARE_OK) {
        if (err && rc == PARE_EINPUT)
            snprintf(err->where, sizeof err->where, "%.200s", where);
        return rc;
    }
    if (sec->schema) {
        /* Swap the one field: tmp takes the old value and frees it. */
        const job_key *k = &sec->schema->keys[row];
        char swap[512];
        void *a = JOB_FIELD((char *)job + sec->off, k), *b = JOB_FIELD((char *)tmp + sec->off, k);
        size_t fs = field_size(k);
        pare_job_meta *meta = (pare_job_meta *)((char *)job + sec->off);
        PARE_ASSERT(fs <= sizeof swap);
        memcpy(swap, a, fs);
        memcpy(a, b, fs);
        memcpy(b, swap, fs);
        meta->present = true;
        meta->set |= 1ull << row;
    } else {
        /* Layers: replace the ratio of an existing name or append. */
        pare_job_layers *L = &job->layers, *T = &tmp->layers;
        int at = -1;
        for (int i = 0; i < L->n; i++)
            if (!strcmp(L->names[i], T->names[0]))
                at = i;
        if (at >= 0) {
            L->ratios[at] = T->ratios[0];
        } else {
            char **names = pare_realloc(L->names, (size_t)(L->n + 1) * sizeof *names);
            double *ratios =
                names ? pare_realloc(L->ratios, (size_t)(L->n + 1) * sizeof *ratios) : NULL;
            if (names)
                L->names = names;
            if (!ratios) {
                pare_job_free(tmp);
                return pare_fail(err, PARE_ENOMEM, where, "out of memory");
            }
            L->ratios = ratios;
            L->names[L->n] = T->names[0];
            L->ratios[L->n++] = T->ratios[0];
            T->names[0] = NULL;
        }
        L->meta.present = true;
    }
    pare_job_free(tmp);
    resolve_job(job);
    return PARE_OK;
}

bool pare_job_is_set(const pare_job *job, const char *section, const char *key)
{
    const job_section *sec = job_section_find(section);
    const pare_job_meta *meta;
    int row;

    if (!job || !sec)
        return false;
    if (!sec->schema) {
        for (int i = 0; i < job->layers.n; i++)
            if (!strcmp(job->layers.names[i], key))
                return true;
        return false;
    }
    row = job_key_find(sec->schema, key);
    meta = (const pare_job_meta *)((const char *)job + sec->off);
    return row >= 0 && (meta->set & (1ull << row));
}
