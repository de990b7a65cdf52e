/* An off-screen character grid that views draw into; tui/term.c copies it to
 * the terminal, tests compare it with expected text (no terminal needed).
 *
 * A cell holds a Unicode code point and the ASCII character shown instead when
 * the terminal has no UTF-8, plus attributes and a colour role. Ownership: the
 * caller owns the grid storage (grid_init / grid_fini). Not thread-safe. */
#ifndef PARE_TUI_GRID_H
#define PARE_TUI_GRID_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum { GA_BOLD = 1, GA_REVERSE = 2, GA_DIM = 4, GA_UNDERLINE = 8 };

/* Colour roles; term.c maps them to colour pairs (or to nothing). */
enum { GC_DEFAULT = 0, GC_TITLE, GC_BAR, GC_KEY, GC_CURSOR, GC_ERROR, GC_ACCENT, GC_HEADER,
       GC_COUNT };

typedef struct grid_cell {
    uint32_t cp;       /* Unicode code point */
    char ascii;        /* fallback without UTF-8 */
    uint8_t attr;      /* GA_* */
    uint8_t color;     /* GC_* */
} grid_cell;

typedef struct grid {
    int w, h;
    grid_cell *cells;  /* h rows of w cells */
} grid;

/* Returns false when out of memory (the grid is then empty). */
bool grid_init(grid *g, int w, int h);
void grid_fini(grid *g);
/* Resize, clearing the content. */
bool grid_resize(grid *g, int w, int h);
void grid_clear(grid *g);

/* One cell; out-of-range positions are ignored. */
void grid_put(grid *g, int x, int y, uint32_t cp, char ascii, uint8_t attr, uint8_t color);
/* UTF-8 text at (x, y), at most maxw cells (maxw < 0: to the edge). Non-ASCII
 * characters fall back to '?'. Returns the number of cells written. */
int grid_text(grid *g, int x, int y, int maxw, const char *utf8, uint8_t attr, uint8_t color);
/* U+2026, the truncation marker: "…" with UTF-8, '~' in the ASCII fallback
 * (grid_text maps it). */
#define GRID_ELLIPSIS 0x2026u
/* Text for a cell w characters wide: text itself when it fits, else a copy
 * in buf of "…" and its last w - 1 characters (grid_tail: names, whose end
 * differs) or of its first w - 1 characters and "…" (grid_head). Every table
 * cell that may truncate goes through one of them, so a cut is always marked.
 * Returns text or buf. */
const char *grid_tail(const char *text, int w, char *buf, size_t size);
const char *grid_head(const char *text, int w, char *buf, size_t size);
/* Characters (code points) in UTF-8 text. */
int grid_utf8_len(const char *s);
/* printf into the grid, like grid_text. */
int grid_printf(grid *g, int x, int y, int maxw, uint8_t attr, uint8_t color, const char *fmt,
                ...) __attribute__((format(printf, 7, 8)));
/* Sets attributes and colour of a rectangle, filling blank cells with spaces. */
void grid_fill(grid *g, int x, int y, int w, int h, uint8_t attr, uint8_t color);

/* Row y as text (UTF-8 when utf8, else the ASCII fallbacks), trailing spaces
 * trimmed. Returns buf. */
char *grid_row(const grid *g, int y, bool utf8, char *buf, size_t size);
/* Does any row contain needle? */
bool grid_contains(const grid *g, const char *needle, bool utf8);

/* Encodes cp as UTF-8 into out (at least 5 bytes); returns the byte count. */
int grid_utf8_encode(uint32_t cp, char *out);
/* Decodes one code point from s; returns bytes used (0 at end of string). */
int grid_utf8_decode(const char *s, uint32_t *cp);

/* Number formatting shared by views: "61,706"; "850.2 K", "12.41 M". */
char *grid_fmt_count(int64_t n, char *buf, size_t size);
char *grid_fmt_si(double v, char *buf, size_t size);

#endif
