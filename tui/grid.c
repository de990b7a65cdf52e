/* The off-screen character grid (see grid.h). */
#include "grid.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "pare/alloc.h"

bool grid_init(grid *g, int w, int h)
{
    g->w = g->h = 0;
    g->cells = NULL;
    return grid_resize(g, w, h);
}

void grid_fini(grid *g)
{
    pare_free(g->cells);
    g->cells = NULL;
    g->w = g->h = 0;
}

bool grid_resize(grid *g, int w, int h)
{
    grid_cell *cells;

    if (w < 1 || h < 1)
        w = h = 0;
    cells = w ? pare_calloc((size_t)w * (size_t)h, sizeof *cells) : NULL;
    pare_free(g->cells);
    g->cells = cells;
    g->w = cells ? w : 0;
    g->h = cells ? h : 0;
    grid_clear(g);
    return cells != NULL || w == 0;
}

void grid_clear(grid *g)
{
    for (int i = 0; i < g->w * g->h; i++)
        g->cells[i] = (grid_cell){' ', ' ', 0, GC_DEFAULT};
}

void grid_put(grid *g, int x, int y, uint32_t cp, char ascii, uint8_t attr, uint8_t color)
{
    if (x < 0 || y < 0 || x >= g->w || y >= g->h)
        return;
    g->cells[y * g->w + x] = (grid_cell){cp, ascii, attr, color};
}

int grid_utf8_encode(uint32_t cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

int grid_utf8_decode(const char *s, uint32_t *cp)
{
    const unsigned char *u = (const unsigned char *)s;
    int n, i;

    if (!u[0])
        return 0;
    if (u[0] < 0x80) {
        *cp = u[0];
        return 1;
    }
    n = u[0] >= 0xF0 ? 4 : u[0] >= 0xE0 ? 3 : u[0] >= 0xC0 ? 2 : 1;
    *cp = n == 4 ? u[0] & 0x07u : n == 3 ? u[0] & 0x0Fu : u[0] & 0x1Fu;
    if (n == 1) {
        *cp = 0xFFFD;
        return 1;
    }
    for (i = 1; i < n; i++) {
        if ((u[i] & 0xC0) != 0x80) {
            *cp = 0xFFFD;
            return i;
        }
        *cp = (*cp << 6) | (u[i] & 0x3Fu);
    }
    return n;
}

int grid_text(grid *g, int x, int y, int maxw, const char *utf8, uint8_t attr, uint8_t color)
{
    int n = 0, used;
    uint32_t cp;

    if (maxw < 0)
        maxw = g->w - x;
    while (n < maxw && (used = grid_utf8_decode(utf8, &cp)) > 0) {
        utf8 += used;
        if (cp < 0x20)
            cp = ' ';
        grid_put(g, x + n, y, cp, cp < 0x80 ? (char)cp : cp == GRID_ELLIPSIS ? '~' : '?', attr, color);
        n++;
    }
    return n;
}

int grid_utf8_len(const char *s)
{
    int n = 0, used;
    uint32_t cp;

    while ((used = grid_utf8_decode(s, &cp)) > 0) {
        s += used;
        n++;
    }
    return n;
}

/* Byte offset of code point k of s (or its end). */
static size_t utf8_offset(const char *s, int k)
{
    size_t off = 0;
    int used;
    uint32_t cp;

    while (k-- > 0 && (used = grid_utf8_decode(s + off, &cp)) > 0)
        off += (size_t)used;
    return off;
}

const char *grid_tail(const char *text, int w, char *buf, size_t size)
{
    int len = grid_utf8_len(text);

    if (len <= w || w < 1 || size < 4)
        return text;
    /* U+2026 "…" (3 bytes), then the last w - 1 characters */
    snprintf(buf, size, "\xe2\x80\xa6%s", text + utf8_offset(text, len - (w - 1)));
    return buf;
}

const char *grid_head(const char *text, int w, char *buf, size_t size)
{
    int len = grid_utf8_len(text);
    size_t keep;

    if (len <= w || w < 1 || size < 4)
        return text;
    keep = utf8_offset(text, w - 1);
    if (keep + 4 > size)
        keep = size - 4;
    snprintf(buf, size, "%.*s\xe2\x80\xa6", (int)keep, text);
    return buf;
}

int grid_printf(grid *g, int x, int y, int maxw, uint8_t attr, uint8_t color, const char *fmt,
                ...)
{
    char buf[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return grid_text(g, x, y, maxw, buf, attr, color);
}

void grid_fill(grid *g, int x, int y, int w, int h, uint8_t attr, uint8_t color)
{
    for (int j = y; j < y + h; j++)
        for (int i = x; i < x + w; i++) {
            if (i < 0 || j < 0 || i >= g->w || j >= g->h)
                continue;
            g->cells[j * g->w + i].attr = attr;
            g->cells[j * g->w + i].color = color;
        }
}

char *grid_row(const grid *g, int y, bool utf8, char *buf, size_t size)
{
    size_t len = 0, keep = 0;

    if (size == 0)
        return buf;
    buf[0] = '\0';
    if (y < 0 || y >= g->h)
        return buf;
    for (int x = 0; x < g->w; x++) {
        const grid_cell *c = &g->cells[y * g->w + x];
        char enc[5];
        int n = 1;

        if (utf8)
            n = grid_utf8_encode(c->cp, enc);
        else
            enc[0] = c->ascii;
        if (len + (size_t)n + 1 > size)
            break;
        memcpy(buf + len, enc, (size_t)n);
        len += (size_t)n;
        if (!(n == 1 && enc[0] == ' '))
            keep = len;
    }
    buf[keep] = '\0';
    return buf;
}

bool grid_contains(const grid *g, const char *needle, bool utf8)
{
    char row[4096];

    for (int y = 0; y < g->h; y++)
        if (strstr(grid_row(g, y, utf8, row, sizeof row), needle))
            return true;
    return false;
}

char *grid_fmt_count(int64_t n, char *buf, size_t size)
{
    char digits[32];
    int len, out = 0;
    bool neg = n < 0;
    unsigned long long u = neg ? 0ULL - (unsigned long long)n : (unsigned long long)n;
    char tmp[48];

    len = snprintf(digits, sizeof digits, "%llu", u);
    if (neg)
        tmp[out++] = '-';
    for (int i = 0; i < len; i++) {
        if (i && (len - i) % 3 == 0)
            tmp[out++] = ',';
        tmp[out++] = digits[i];
    }
    tmp[out] = '\0';
    snprintf(buf, size, "%s", tmp);
    return buf;
}

char *grid_fmt_si(double v, char *buf, size_t size)
{
    static const char *const units[] = {"", " K", " M", " G", " T"};
    int u = 0;

    if (v < 0) {
        snprintf(buf, size, "?");
        return buf;
    }
    while (v >= 1000 && u < 4) {
        v /= 1000;
        u++;
    }
    if (u == 0)
        snprintf(buf, size, "%.0f", v);
    else
        snprintf(buf, size, v >= 100 ? "%.1f%s" : "%.2f%s", v, units[u]);
    return buf;
}
