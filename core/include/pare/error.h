/* Status codes and the error record every fallible core call fills.
 *
 * A failing call returns a negative pare_status (or NULL) and, when the caller
 * passed a non-NULL pare_error, fills it. The record uses fixed buffers so it
 * can be filled after an allocation failure. `where` names the user's location
 * ("job.yaml:12:7", "model.onnx: node 'conv3' (Conv)"), never a C file.
 * Thread-safety: none needed; each thread uses its own pare_error. */
#ifndef PARE_ERROR_H
#define PARE_ERROR_H

#include <stddef.h>

typedef enum pare_status {
    PARE_OK = 0,
    PARE_EINPUT = -1,       /* malformed user input: file content, config, arguments */
    PARE_EIO = -2,          /* a file cannot be opened, read or written */
    PARE_ENOMEM = -3,       /* an allocation failed */
    PARE_EUNSUPPORTED = -4, /* valid input pare cannot handle (unknown op, dtype) */
    PARE_ECANCELED = -5,    /* the caller asked to stop */
    PARE_ENUMERIC = -6,     /* NaN or Inf where a finite number is required */
    PARE_EINTERNAL = -7     /* a broken invariant reported instead of aborting */
} pare_status;

typedef struct pare_error {
    pare_status code;
    char where[256];
    char msg[512];
    char hint[256];
} pare_error;

#if defined(__GNUC__)
#define PARE_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define PARE_PRINTF(fmt, args)
#endif

/* Fills err (when non-NULL) with code, where (NULL = "") and the formatted
 * message, clears the hint, and returns code, so callers can write
 * `return pare_fail(err, PARE_EINPUT, path, "...")`. */
pare_status pare_fail(pare_error *err, pare_status code, const char *where,
                      const char *fmt, ...) PARE_PRINTF(4, 5);

/* Sets the hint of an already filled error ("did you mean 'weight_bits'?"). */
void pare_error_hint(pare_error *err, const char *fmt, ...) PARE_PRINTF(2, 3);

/* Prefixes the message with context: "while parsing QuantPost: " + msg. */
void pare_error_prefix(pare_error *err, const char *fmt, ...) PARE_PRINTF(2, 3);

void pare_error_clear(pare_error *err);

/* "where: msg (hint)" into buf; returns the length written. */
size_t pare_error_format(const pare_error *err, char *buf, size_t size);

/* Short lowercase name of a status ("bad input", "out of memory"). */
const char *pare_status_name(pare_status code);

/* Broken invariants only, never bad input: prints and aborts. */
#define PARE_ASSERT(cond)                                                      \
    do {                                                                       \
        if (!(cond))                                                           \
            pare_assert_failed(#cond, __FILE__, __LINE__);                     \
    } while (0)
void pare_assert_failed(const char *cond, const char *file, int line);

/* Closest candidate to `word` by edit distance, or NULL when none is close
 * enough to suggest (used for "did you mean" hints on names and keys). */
const char *pare_closest_word(const char *word, const char *const *candidates, int n);

#endif
