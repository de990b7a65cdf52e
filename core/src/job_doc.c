/* The config reference, generated from the schema rows so it cannot drift
 * from what the loader accepts (a unit test compares it with docs/config.md). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "job_schema.h"
#include "pare/alloc.h"

typedef struct md {
    char *p;
    size_t n, cap;
    bool oom;
} md;

static void out(md *m, const char *fmt, ...) PARE_PRINTF(2, 3);

static void out(md *m, const char *fmt, ...)
{
    va_list ap;
    int need;

    if (m->oom)
        return;
    va_start(ap, fmt);
    need = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (need < 0) {
        m->oom = true;
        return;
    }
    if (m->n + (size_t)need + 1 > m->cap) {
        size_t cap = m->cap ? m->cap : 8192;
        char *p;
        while (cap < m->n + (size_t)need + 1)
            cap *= 2;
        if (!(p = pare_realloc(m->p, cap))) {
            m->oom = true;
            return;
        }
        m->p = p;
        m->cap = cap;
    }
    va_start(ap, fmt);
    vsnprintf(m->p + m->n, m->cap - m->n, fmt, ap);
    va_end(ap);
    m->n += (size_t)need;
}

static const char *type_name(const job_key *k)
{
    switch (k->type) {
    case JT_STR: return "string";
    case JT_INT: return "integer";
    case JT_FLOAT: return "number";
    case JT_BOOL: return "bool";
    case JT_ENUM: return "choice";
    case JT_STRS: return (k->flags & JK_SCALAR_OK) ? "name or list of names" : "list of names";
    case JT_FLOATS:
        return (k->flags & JK_RANGE2) ? "[lo, hi] numbers"
               : (k->flags & JK_SCALAR_OK) ? "number or list of numbers" : "list of numbers";
    case JT_INTS: return (k->flags & JK_RANGE2) ? "[lo, hi] integers" : "list of integers";
    case JT_BOOLS: return (k->flags & JK_SCALAR_OK) ? "bool or list of bools" : "list of bools";
    case JT_ENUMS: return (k->flags & JK_SCALAR_OK) ? "choice or list of choices" : "list of choices";
    case JT_REGIONS: return "list of [[inputs], [outputs]]";
    case JT_SUB:
        if (k->sub->scalar_key >= 0)
            return k->sub->keys[k->sub->scalar_key].type == JT_ENUM ? "choice or mapping"
                                                                     : "number or mapping";
        return "mapping";
    case JT_PAIRS: return "list of mappings";
    case JT_NAME_INTS: return "mapping name → integer";
    }
    return "?";
}

static void default_text(md *m, const job_key *k)
{
    if (k->flags & JK_COMPAT) {
        out(m, "—");
        return;
    }
    if (k->type == JT_SUB || k->type == JT_PAIRS) {
        out(m, k->type == JT_PAIRS ? "`[]`" : "see below");
        return;
    }
    if (k->type == JT_NAME_INTS) {
        out(m, "`{}`");
        return;
    }
    if (k->flags & JK_INHERIT) {
        out(m, "Global.batch_size");
        return;
    }
    if (k->flags & JK_REQUIRED) {
        out(m, "required");
        return;
    }
    if (!k->def) {
        out(m, k->type == JT_STR || k->type == JT_INT || k->type == JT_FLOAT ? "unset" : "`[]`");
        return;
    }
    if (k->type >= JT_STRS) {
        out(m, "`[");
        for (const char *p = k->def; *p; p++)
            out(m, *p == ',' ? ", " : "%c", *p);
        out(m, "]`");
        return;
    }
    out(m, "`%s`", k->def);
}

static void allowed_text(md *m, const job_key *k)
{
    bool any = false;

    if (k->choices) {
        for (int i = 0; k->choices[i]; i++)
            out(m, "%s`%s`", i ? ", " : "", k->choices[i]);
        return;
    }
    if ((k->flags & JK_MIN) && (k->flags & JK_MAX)) {
        out(m, "%c%g, %g%c", (k->flags & JK_MIN_EXCL) ? '(' : '[', k->min, k->max,
            (k->flags & JK_MAX_EXCL) ? ')' : ']');
        any = true;
    } else if (k->flags & JK_MIN) {
        out(m, "%s %g", (k->flags & JK_MIN_EXCL) ? ">" : "≥", k->min);
        any = true;
    } else if (k->flags & JK_MAX) {
        out(m, "%s %g", (k->flags & JK_MAX_EXCL) ? "<" : "≤", k->max);
        any = true;
    }
    if (k->flags & JK_RANGE2)
        out(m, "%slo ≤ hi", any ? "; " : "");
}

static void key_table(md *m, const job_schema *s)
{
    out(m, "| Key | Type | Default | Allowed | Meaning |\n");
    out(m, "|---|---|---|---|---|\n");
    for (int i = 0; i < s->n_keys; i++) {
        const job_key *k = &s->keys[i];
        out(m, "| `%s`", k->name);
        if (k->alias)
            out(m, " (also `%s`)", k->alias);
        out(m, " | %s | ", type_name(k));
        default_text(m, k);
        out(m, " | ");
        allowed_text(m, k);
        out(m, " | %s |\n", k->doc);
    }
}

static void sub_tables(md *m, const job_schema *s)
{
    for (int i = 0; i < s->n_keys; i++) {
        const job_key *k = &s->keys[i];
        if ((k->type != JT_SUB && k->type != JT_PAIRS) || (k->flags & JK_COMPAT))
            continue;
        out(m, "\n### %s\n\n", k->sub->name);
        if (k->sub->scalar_key >= 0)
            out(m, "A bare value sets `%s` (`%s: %s` = `%s: {%s: %s}`).\n\n",
                k->sub->keys[k->sub->scalar_key].name, k->name,
                k->sub->keys[k->sub->scalar_key].def, k->name,
                k->sub->keys[k->sub->scalar_key].name, k->sub->keys[k->sub->scalar_key].def);
        else if (k->type == JT_PAIRS)
            out(m, "Each entry of `%s` is a mapping:\n\n", k->name);
        key_table(m, k->sub);
        sub_tables(m, k->sub);
    }
}

char *pare_job_schema_markdown(void)
{
    md m = {0};

    out(&m, "## Sections\n\n");
    for (int i = 0; i < job_n_sections; i++) {
        /* GitHub's heading anchors are the lowercased heading text. */
        char anchor[64];
        size_t j = 0;
        for (const char *p = job_sections[i].name; *p && j + 1 < sizeof anchor; p++)
            anchor[j++] = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
        anchor[j] = '\0';
        out(&m, "- [%s](#%s)%s%s%s\n", job_sections[i].name, anchor,
            job_sections[i].alias ? " (also `" : "", job_sections[i].alias ? job_sections[i].alias : "",
            job_sections[i].alias ? "`)" : "");
    }
    out(&m, "- `Compress` (PaddleFleetX): `pretrained` sets Global.model; the sections above may "
            "be nested inside it.\n");
    for (int i = 0; i < job_n_sections; i++) {
        const job_section *sec = &job_sections[i];
        out(&m, "\n## %s\n\n%s\n", sec->name, sec->doc);
        if (sec->alias)
            out(&m, "Also spelled `%s` (PaddleFleetX).\n", sec->alias);
        out(&m, "\n");
        if (!sec->schema) {
            out(&m, "```yaml\n%s:\n  conv1.weight: 0.3\n  conv2.weight: 0.5\n```\n", sec->name);
            continue;
        }
        key_table(&m, sec->schema);
        sub_tables(&m, sec->schema);
    }
    if (m.oom) {
        pare_free(m.p);
        return NULL;
    }
    return m.p;
}
