/* The terminal: the ONLY file that calls ncurses. Starts ncursesw (UTF-8 when
 * the locale has it, colours unless NO_COLOR or none), copies a grid to the
 * screen, reads keys as TK_* codes, and restores the terminal on exit and on
 * SIGINT/SIGTERM (the handler only sets a flag; the loop quits cleanly). */
#define NCURSES_WIDECHAR 1
#include <curses.h>
#include <langinfo.h>
#include <locale.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "app.h"

static volatile sig_atomic_t got_signal;
static bool active, utf8, colors;
static struct sigaction old_int, old_term;

static void on_signal(int sig)
{
    got_signal = sig;
}

static void at_exit(void)
{
    if (active)
        endwin();
}

bool term_init(void)
{
    struct sigaction sa;
    const char *cs;

    setlocale(LC_ALL, "");
    cs = nl_langinfo(CODESET);
    utf8 = cs && (!strcasecmp(cs, "UTF-8") || !strcasecmp(cs, "utf8"));
    if (!initscr())
        return false;
    active = true;
    atexit(at_exit);
    cbreak();
    noecho();
    nonl();
    keypad(stdscr, TRUE);
    set_escdelay(25);
    curs_set(0);
    timeout(100); /* wake up to notice signals and job events */
    mousemask(BUTTON1_CLICKED | BUTTON1_PRESSED, NULL);
    colors = has_colors() && !getenv("NO_COLOR");
    if (colors) {
        start_color();
        use_default_colors();
        init_pair(GC_TITLE, COLOR_BLACK, COLOR_CYAN);
        init_pair(GC_BAR, COLOR_BLACK, COLOR_CYAN);
        init_pair(GC_KEY, COLOR_WHITE, -1);
        init_pair(GC_CURSOR, COLOR_BLACK, COLOR_CYAN);
        init_pair(GC_ERROR, COLOR_RED, -1);
        init_pair(GC_ACCENT, COLOR_GREEN, -1);
        init_pair(GC_HEADER, COLOR_YELLOW, -1);
    }
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    return true;
}

void term_fini(void)
{
    if (!active)
        return;
    endwin();
    active = false;
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
}

bool term_utf8(void)
{
    return utf8;
}

void term_size(int *rows, int *cols)
{
    getmaxyx(stdscr, *rows, *cols);
}

static attr_t cell_attr(const grid_cell *c)
{
    attr_t a = 0;

    if (c->attr & GA_BOLD)
        a |= A_BOLD;
    if (c->attr & GA_REVERSE)
        a |= A_REVERSE;
    if (c->attr & GA_DIM)
        a |= A_DIM;
    if (c->attr & GA_UNDERLINE)
        a |= A_UNDERLINE;
    /* monochrome: bars and the cursor row stand out by reverse video */
    if (!colors && (c->color == GC_TITLE || c->color == GC_BAR || c->color == GC_CURSOR))
        a |= A_REVERSE;
    if (colors && c->color == GC_CURSOR)
        a &= ~(attr_t)A_REVERSE;
    return a;
}

void term_blit(const grid *g)
{
    for (int y = 0; y < g->h; y++)
        for (int x = 0; x < g->w; x++) {
            const grid_cell *c = &g->cells[y * g->w + x];
            wchar_t wc[2] = {utf8 ? (wchar_t)c->cp : (wchar_t)(unsigned char)c->ascii, 0};
            cchar_t cc;

            setcchar(&cc, wc, cell_attr(c), colors ? (short)c->color : 0, NULL);
            mvadd_wch(y, x, &cc); /* the last cell may report ERR: harmless */
        }
    wnoutrefresh(stdscr);
    doupdate();
}

int term_read_key(int *mouse_y, int *mouse_x)
{
    wint_t ch;
    int rc;

    for (;;) {
        if (got_signal)
            return TK_INTERRUPT;
        rc = get_wch(&ch);
        if (rc == ERR)
            return got_signal ? TK_INTERRUPT : TK_TICK;
        if (rc == OK && ch == 27) {
            /* Alt+digit arrives as Esc and the digit at once: a screen key */
            wint_t next;
            int rc2;

            timeout(0);
            rc2 = get_wch(&next);
            timeout(100);
            if (rc2 == OK && next >= '1' && next <= '8')
                return TK_ALT_1 + (int)(next - '1');
            if (rc2 == KEY_CODE_YES)
                ungetch((int)next);
            else if (rc2 == OK)
                unget_wch((wchar_t)next);
            return TK_ESC;
        }
        if (rc == OK) {
            if (ch == '\r' || ch == '\n')
                return TK_ENTER;
            if (ch == 127 || ch == 8)
                return TK_BACKSPACE;
            return (int)ch;
        }
        switch (ch) {
        case KEY_UP: return TK_UP;
        case KEY_DOWN: return TK_DOWN;
        case KEY_LEFT: return TK_LEFT;
        case KEY_RIGHT: return TK_RIGHT;
        case KEY_PPAGE: return TK_PGUP;
        case KEY_NPAGE: return TK_PGDN;
        case KEY_HOME: return TK_HOME;
        case KEY_END: return TK_END;
        case KEY_BTAB: return TK_BTAB;
        case KEY_BACKSPACE: return TK_BACKSPACE;
        case KEY_ENTER: return TK_ENTER;
        case KEY_RESIZE: return TK_RESIZE;
        case KEY_F(1): return TK_F1;
        case KEY_F(2): return TK_F2;
        case KEY_F(3): return TK_F3;
        case KEY_F(4): return TK_F4;
        case KEY_F(5): return TK_F5;
        case KEY_F(6): return TK_F6;
        case KEY_F(7): return TK_F7;
        case KEY_F(8): return TK_F8;
        case KEY_F(10): return TK_F10;
        case KEY_MOUSE: {
            MEVENT ev;

            if (getmouse(&ev) == OK && (ev.bstate & (BUTTON1_CLICKED | BUTTON1_PRESSED))) {
                *mouse_y = ev.y;
                *mouse_x = ev.x;
                return TK_MOUSE;
            }
            continue;
        }
        default:
            continue;
        }
    }
}
