/* The workbench's state and actions.
 *
 * app_state is plain data. Actions (`act_<verb>`) change it and return effect
 * flags (APP_FX_*); they never draw and never touch the terminal, so they are
 * tested without one (tests/unit/test_app.c). Views (`view_<screen>_draw`,
 * declared at the end) draw a state into a grid; tui/keys.c maps keys to
 * actions per screen; tui/term.c is the only file that talks to ncurses.
 *
 * Errors never leave the workbench: an action that fails puts the message on
 * the message line and in the Log (app_log). Ownership: the state owns the
 * graph, its statistics and every buffer; app_fini frees them. Not
 * thread-safe: only the UI thread touches a state. */
#ifndef PARE_TUI_APP_H
#define PARE_TUI_APP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "grid.h"
#include "pare/error.h"
#include "pare/graph.h"
#include "pare/stats.h"

/* Keys as the actions see them: Unicode code points, or these (term.c maps
 * the terminal's codes to them). */
enum {
    TK_NONE = 0,
    TK_TAB = '\t',
    TK_ENTER = '\n',
    TK_ESC = 27,
    TK_BASE = 0x110000,
    TK_UP, TK_DOWN, TK_LEFT, TK_RIGHT, TK_PGUP, TK_PGDN, TK_HOME, TK_END,
    TK_BTAB, TK_BACKSPACE, TK_RESIZE, TK_MOUSE, TK_F1, TK_F10, TK_INTERRUPT
};

/* Effects an action asks of the loop. */
enum { APP_FX_NONE = 0, APP_FX_REDRAW = 1, APP_FX_QUIT = 2 };

enum { SCREEN_LAYERS, SCREEN_INSPECT, SCREEN_LOG, SCREEN_COUNT };
extern const char *const app_screen_names[SCREEN_COUNT];

/* Layers table sort columns. */
enum { SORT_ORDER, SORT_NAME, SORT_OP, SORT_PARAMS, SORT_FLOPS, SORT_COUNT };

/* Layout rows taken by the frame: title, column header, totals, message, key bar. */
#define APP_MIN_COLS 60
#define APP_MIN_ROWS 16
#define APP_HIST_BINS 32

typedef struct app_weight {
    char *name;               /* value name (owned) */
    int value;                /* graph value index */
    int ndim;
    int64_t dims[PARE_MAX_DIMS];
    int64_t numel;
    double min, max, mean, std;
    double sparsity;          /* fraction of exact zeros */
    int64_t hist[APP_HIST_BINS];
    int n_channels;           /* dims[0] when ndim >= 2, else 0 */
    double *l1;               /* per output channel L1 norm (owned), n_channels */
} app_weight;

typedef struct app_state {
    pare_graph *graph;        /* owned; NULL when no model is open */
    pare_stats *stats;        /* owned */
    char model_path[1024];
    char model_name[256];     /* basename */
    char data_spec[256];      /* dataset for later screens; "" for none */

    int rows, cols;           /* terminal size */
    int screen;               /* SCREEN_* */

    /* Layers */
    int *order;               /* display order: layer indices (owned) */
    int n_rows;
    int cursor, top;          /* selected row, first visible row */
    int sort, sort_desc;
    bool searching;           /* typing after '/' */
    char search[128];         /* last search text */

    /* Inspect */
    int inspect_node;         /* -1: none */
    app_weight *weights;      /* owned */
    int n_weights;
    int inspect_top;

    /* Log */
    char **log;               /* owned lines */
    int n_log, cap_log;
    int log_top;
    bool log_follow;          /* stick to the end */

    /* Help overlay */
    bool help_open;
    char help_filter[64];
    int help_top;

    char message[512];        /* the message line */
    bool message_is_error;
} app_state;

void app_init(app_state *s);
void app_fini(app_state *s);

/* A line for the Log (and, when show, the message line). Never fails: on
 * out of memory the line is dropped from the Log but still shown. */
void app_log(app_state *s, bool show, const char *fmt, ...) PARE_PRINTF(3, 4);
/* An error to the message line and the Log. */
void app_log_error(app_state *s, const pare_error *err);

/* Body rows available to a list screen (between column header and totals). */
int app_body_rows(const app_state *s);
/* Inspect layout: per weight a header, a statistics line, APP_HIST_ROWS
 * histogram rows, an axis line, then (with channels) a title and a line per
 * channel, then a blank line. Total content lines: */
#define APP_HIST_ROWS 6
int app_inspect_lines(const app_state *s);
const char *app_node_label(const app_state *s, int node, char *buf, size_t size);

/* ---- actions (return APP_FX_*) ---- */
int act_open_model(app_state *s, const char *path, const char *data_spec);
int act_resize(app_state *s, int rows, int cols);
int act_move(app_state *s, int delta);      /* cursor / scroll by delta rows */
int act_page(app_state *s, int dir);        /* +1 PgDn, -1 PgUp */
int act_home(app_state *s);
int act_end(app_state *s);
int act_screen_next(app_state *s, int dir); /* Tab (+1) / Shift-Tab (-1) */
int act_screen_set(app_state *s, int screen);
int act_inspect(app_state *s);              /* Enter on a layer */
int act_sort(app_state *s, int column);     /* same column again reverses */
int act_search_begin(app_state *s);
int act_search_key(app_state *s, int key);  /* text, Backspace, Enter, Esc */
int act_search_next(app_state *s);          /* 'n' */
int act_help_toggle(app_state *s);
int act_help_key(app_state *s, int key);    /* filter text, Backspace, Esc */
int act_back(app_state *s);                 /* 'q': close, go back, or quit */
int act_click(app_state *s, int y, int x);  /* mouse click at a screen cell */

/* ---- keys (tui/keys.c) ---- */
typedef int (*app_action_fn)(app_state *s, int key);

typedef struct key_binding {
    int key;                  /* TK_* or a character */
    const char *label;        /* "j/Down" */
    const char *help;         /* "next row" */
    app_action_fn fn;
    const char *bar;          /* short name in the bottom key bar; NULL: not shown */
} key_binding;

/* The bindings of a screen, the screen's first, then the global ones. */
const key_binding *keys_screen(int screen, int *n);
const key_binding *keys_global(int *n);
/* Handles one key (modes first: help overlay, search prompt). Returns APP_FX_*. */
int keys_dispatch(app_state *s, int key, int mouse_y, int mouse_x);

/* ---- views (draw s into g; never change s) ---- */
void view_app_draw(const app_state *s, grid *g);   /* the whole screen */
void view_layers_draw(const app_state *s, grid *g, int y0, int rows);
void view_inspect_draw(const app_state *s, grid *g, int y0, int rows);
void view_log_draw(const app_state *s, grid *g, int y0, int rows);
void view_help_draw(const app_state *s, grid *g);

/* ---- the terminal (tui/term.c, the only ncurses user) ---- */
/* Starts the screen; false when the terminal cannot be used. */
bool term_init(void);
/* Restores the terminal (also done at exit). */
void term_fini(void);
bool term_utf8(void);
void term_size(int *rows, int *cols);
void term_blit(const grid *g);
/* Blocks for the next key (TK_* or a code point); TK_INTERRUPT after
 * SIGINT/SIGTERM; TK_MOUSE with the clicked cell. */
int term_read_key(int *mouse_y, int *mouse_x);

/* ---- entry points (tui/cmd_tui.c) ---- */
int cmd_tui(int argc, char **argv);
/* `pare` with no arguments: opens the demo model. Returns -1 when stdin or
 * stdout is not a terminal (the caller prints usage). */
int cmd_tui_default(const char *argv0);

#endif
