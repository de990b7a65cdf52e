/* A tiny streaming JSON writer for machine-readable output (--json).
 *
 * Calls nest as the JSON does: begin/end object or array, and inside an
 * object a key before each value. Commas and indentation are handled here.
 * Strings are escaped per RFC 8259 (quote, backslash, control characters as
 * \uXXXX or their short forms); bytes that are not valid UTF-8 become
 * U+FFFD, so the output is always valid JSON. Non-finite doubles are written
 * as null. Misnesting is a programming error (PARE_ASSERT).
 * Thread-safety: a writer is used by one thread. */
#ifndef PARE_TUI_JSON_H
#define PARE_TUI_JSON_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define JSON_MAX_DEPTH 32

typedef struct json_writer {
    FILE *f;
    bool pretty;                   /* newlines and two-space indents */
    int depth;
    bool is_object[JSON_MAX_DEPTH];
    int n_items[JSON_MAX_DEPTH];
    bool after_key;
} json_writer;

void json_init(json_writer *w, FILE *f, bool pretty);
void json_begin_object(json_writer *w);
void json_end_object(json_writer *w);
void json_begin_array(json_writer *w);
void json_end_array(json_writer *w);
void json_key(json_writer *w, const char *key);
void json_string(json_writer *w, const char *s);   /* NULL writes null */
void json_int(json_writer *w, int64_t v);
void json_double(json_writer *w, double v);        /* %.17g-exact, shortest that round-trips */
void json_bool(json_writer *w, bool v);
void json_null(json_writer *w);
/* Ends the document with a newline (depth must be 0). */
void json_finish(json_writer *w);

/* Escaped form of s (without quotes) into buf; returns buf. For tests. */
char *json_escape(const char *s, char *buf, size_t size);

#endif
