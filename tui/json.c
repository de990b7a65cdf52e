/* Tiny JSON writer (see json.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "pare/error.h"

/* Output goes to a FILE or to a bounded buffer (json_escape). */
typedef struct sink {
    FILE *f;
    char *buf;
    size_t size, len;
} sink;

static void put(sink *s, const char *p, size_t n)
{
    if (s->f) {
        fwrite(p, 1, n, s->f);
        return;
    }
    for (size_t i = 0; i < n && s->len + 1 < s->size; i++)
        s->buf[s->len++] = p[i];
    if (s->size)
        s->buf[s->len] = '\0';
}

/* Length of the valid UTF-8 sequence at p (1..4), or 0 when invalid. */
static size_t utf8_len(const unsigned char *p)
{
    unsigned c = p[0];

    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        return (p[1] & 0xC0) == 0x80 ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        if ((p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80)
            return 0;
        if (c == 0xE0 && p[1] < 0xA0)
            return 0; /* overlong */
        if (c == 0xED && p[1] >= 0xA0)
            return 0; /* UTF-16 surrogate */
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if ((p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80 || (p[3] & 0xC0) != 0x80)
            return 0;
        if (c == 0xF0 && p[1] < 0x90)
            return 0; /* overlong */
        if (c == 0xF4 && p[1] >= 0x90)
            return 0; /* past U+10FFFF */
        return 4;
    }
    return 0;
}

static void escape(sink *s, const char *str)
{
    const unsigned char *p = (const unsigned char *)str;

    while (*p) {
        unsigned c = *p;
        size_t n;
        char tmp[8];

        switch (c) {
        case '"': put(s, "\\\"", 2); p++; continue;
        case '\\': put(s, "\\\\", 2); p++; continue;
        case '\b': put(s, "\\b", 2); p++; continue;
        case '\f': put(s, "\\f", 2); p++; continue;
        case '\n': put(s, "\\n", 2); p++; continue;
        case '\r': put(s, "\\r", 2); p++; continue;
        case '\t': put(s, "\\t", 2); p++; continue;
        default: break;
        }
        if (c < 0x20 || c == 0x7F) {
            snprintf(tmp, sizeof tmp, "\\u%04x", c);
            put(s, tmp, 6);
            p++;
            continue;
        }
        n = utf8_len(p);
        if (n == 0) {
            put(s, "\\ufffd", 6);
            p++;
            continue;
        }
        put(s, (const char *)p, n);
        p += n;
    }
}

char *json_escape(const char *str, char *buf, size_t size)
{
    sink s = {NULL, buf, size, 0};

    if (size)
        buf[0] = '\0';
    escape(&s, str);
    return buf;
}

void json_init(json_writer *w, FILE *f, bool pretty)
{
    memset(w, 0, sizeof *w);
    w->f = f;
    w->pretty = pretty;
}

static void newline(json_writer *w)
{
    if (!w->pretty)
        return;
    fputc('\n', w->f);
    for (int i = 0; i < w->depth; i++)
        fputs("  ", w->f);
}

/* Before any value: the comma and indent, or nothing right after a key. */
static void before_value(json_writer *w)
{
    if (w->after_key) {
        w->after_key = false;
        return;
    }
    if (w->depth > 0) {
        PARE_ASSERT(!w->is_object[w->depth - 1]); /* objects need a key first */
        if (w->n_items[w->depth - 1]++)
            fputc(',', w->f);
        newline(w);
    }
}

static void begin(json_writer *w, bool object)
{
    before_value(w);
    PARE_ASSERT(w->depth < JSON_MAX_DEPTH);
    fputc(object ? '{' : '[', w->f);
    w->is_object[w->depth] = object;
    w->n_items[w->depth] = 0;
    w->depth++;
}

static void end(json_writer *w, bool object)
{
    bool had_items;

    PARE_ASSERT(w->depth > 0 && w->is_object[w->depth - 1] == object && !w->after_key);
    had_items = w->n_items[w->depth - 1] > 0;
    w->depth--;
    if (had_items)
        newline(w);
    fputc(object ? '}' : ']', w->f);
}

void json_begin_object(json_writer *w) { begin(w, true); }
void json_end_object(json_writer *w) { end(w, true); }
void json_begin_array(json_writer *w) { begin(w, false); }
void json_end_array(json_writer *w) { end(w, false); }

void json_key(json_writer *w, const char *key)
{
    sink s = {w->f, NULL, 0, 0};

    PARE_ASSERT(w->depth > 0 && w->is_object[w->depth - 1] && !w->after_key);
    if (w->n_items[w->depth - 1]++)
        fputc(',', w->f);
    newline(w);
    fputc('"', w->f);
    escape(&s, key);
    fputs(w->pretty ? "\": " : "\":", w->f);
    w->after_key = true;
}

void json_string(json_writer *w, const char *str)
{
    sink s = {w->f, NULL, 0, 0};

    if (!str) {
        json_null(w);
        return;
    }
    before_value(w);
    fputc('"', w->f);
    escape(&s, str);
    fputc('"', w->f);
}

void json_int(json_writer *w, int64_t v)
{
    before_value(w);
    fprintf(w->f, "%lld", (long long)v);
}

void json_double(json_writer *w, double v)
{
    char buf[40];

    if (!isfinite(v)) {
        json_null(w);
        return;
    }
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    before_value(w);
    fputs(buf, w->f);
}

void json_bool(json_writer *w, bool v)
{
    before_value(w);
    fputs(v ? "true" : "false", w->f);
}

void json_null(json_writer *w)
{
    before_value(w);
    fputs("null", w->f);
}

void json_finish(json_writer *w)
{
    PARE_ASSERT(w->depth == 0 && !w->after_key);
    fputc('\n', w->f);
}
