/* Key -> action tables, one per screen plus the global keys. The key bar and
 * the help overlay are built from these tables, so they cannot disagree. */
#include <stddef.h>

#include "app.h"

static int k_up(app_state *s, int key) { (void)key; return act_move(s, -1); }
static int k_down(app_state *s, int key) { (void)key; return act_move(s, 1); }
static int k_pgup(app_state *s, int key) { (void)key; return act_page(s, -1); }
static int k_pgdn(app_state *s, int key) { (void)key; return act_page(s, 1); }
static int k_home(app_state *s, int key) { (void)key; return act_home(s); }
static int k_end(app_state *s, int key) { (void)key; return act_end(s); }
static int k_next(app_state *s, int key) { (void)key; return act_screen_next(s, 1); }
static int k_prev(app_state *s, int key) { (void)key; return act_screen_next(s, -1); }
static int k_help(app_state *s, int key) { (void)key; return act_help_toggle(s); }
static int k_back(app_state *s, int key) { (void)key; return act_back(s); }
static int k_quit(app_state *s, int key) { (void)key; (void)s; return APP_FX_QUIT; }
static int k_inspect(app_state *s, int key) { (void)key; return act_inspect(s); }
static int k_search(app_state *s, int key) { (void)key; return act_search_begin(s); }
static int k_search_next(app_state *s, int key) { (void)key; return act_search_next(s); }
static int k_log(app_state *s, int key) { (void)key; return act_screen_set(s, SCREEN_LOG); }
static int k_layers(app_state *s, int key) { (void)key; return act_screen_set(s, SCREEN_LAYERS); }

static int k_sort(app_state *s, int key)
{
    switch (key) {
    case 'a': return act_sort(s, SORT_NAME);
    case 't': return act_sort(s, SORT_OP);
    case 'p': return act_sort(s, SORT_PARAMS);
    case 'f': return act_sort(s, SORT_FLOPS);
    default: return act_sort(s, SORT_ORDER);
    }
}

#define MOVES(what)                                                               \
    {TK_DOWN, "j/k/Down/Up", "next / previous " what, k_down, NULL},              \
    {'j', "j/k/Down/Up", "next / previous " what, k_down, NULL},                  \
    {TK_UP, "j/k/Down/Up", "next / previous " what, k_up, NULL},                  \
    {'k', "j/k/Down/Up", "next / previous " what, k_up, NULL},                    \
    {TK_PGDN, "PgDn/PgUp", "page down / up", k_pgdn, NULL},                       \
    {TK_PGUP, "PgDn/PgUp", "page down / up", k_pgup, NULL},                       \
    {TK_HOME, "g/G/Home/End", "first / last " what, k_home, NULL},                \
    {'g', "g/G/Home/End", "first / last " what, k_home, NULL},                    \
    {TK_END, "g/G/Home/End", "first / last " what, k_end, NULL},                  \
    {'G', "g/G/Home/End", "first / last " what, k_end, NULL}

static const key_binding layers_keys[] = {
    MOVES("layer"),
    {TK_ENTER, "Enter/l/Right", "inspect the layer's weights", k_inspect, "Inspect"},
    {'\r', "Enter/l/Right", "inspect the layer's weights", k_inspect, NULL},
    {TK_RIGHT, "Enter/l/Right", "inspect the layer's weights", k_inspect, NULL},
    {'l', "Enter/l/Right", "inspect the layer's weights", k_inspect, NULL},
    {'/', "/", "search layers by name or op", k_search, "Search"},
    {'n', "n", "next search match", k_search_next, "Next"},
    {'o', "o", "sort by graph order (again: reverse)", k_sort, NULL},
    {'a', "a", "sort by name (again: reverse)", k_sort, NULL},
    {'t', "t", "sort by op type (again: reverse)", k_sort, NULL},
    {'p', "p", "sort by params, biggest first (again: reverse)", k_sort, "Params"},
    {'f', "f", "sort by FLOPs, biggest first (again: reverse)", k_sort, "FLOPs"},
    {'q', "q", "quit", k_back, "Quit"},
};

static const key_binding inspect_keys[] = {
    MOVES("line"),
    {TK_LEFT, "h/Left", "back to Layers", k_layers, NULL},
    {'h', "h/Left", "back to Layers", k_layers, NULL},
    {'q', "q", "back to Layers", k_back, "Back"},
};

static const key_binding log_keys[] = {
    MOVES("line"),
    {'q', "q", "back to Layers", k_back, "Back"},
};

static const key_binding global_keys[] = {
    {'?', "?/F1", "this help (type to filter, Esc closes)", k_help, "Help"},
    {TK_F1, "?/F1", "this help (type to filter, Esc closes)", k_help, NULL},
    {TK_TAB, "Tab", "next screen", k_next, "Screen"},
    {TK_BTAB, "S-Tab", "previous screen", k_prev, NULL},
    {'L', "L", "show the Log", k_log, NULL},
    {TK_F10, "F10", "quit", k_quit, NULL},
};

#define N(a) (int)(sizeof a / sizeof a[0])

const key_binding *keys_screen(int screen, int *n)
{
    switch (screen) {
    case SCREEN_INSPECT:
        *n = N(inspect_keys);
        return inspect_keys;
    case SCREEN_LOG:
        *n = N(log_keys);
        return log_keys;
    default:
        *n = N(layers_keys);
        return layers_keys;
    }
}

const key_binding *keys_global(int *n)
{
    *n = N(global_keys);
    return global_keys;
}

int keys_dispatch(app_state *s, int key, int mouse_y, int mouse_x)
{
    const key_binding *t;
    int n;

    if (key == TK_INTERRUPT)
        return APP_FX_QUIT;
    if (key == TK_RESIZE)
        return APP_FX_REDRAW; /* the loop reads the new size */
    if (s->help_open)
        return act_help_key(s, key);
    if (s->searching)
        return act_search_key(s, key);
    if (key == TK_MOUSE)
        return act_click(s, mouse_y, mouse_x);
    if (key == TK_ESC)
        return s->screen != SCREEN_LAYERS ? act_screen_set(s, SCREEN_LAYERS) : APP_FX_NONE;
    t = keys_screen(s->screen, &n);
    for (int i = 0; i < n; i++)
        if (t[i].key == key)
            return t[i].fn(s, key);
    t = keys_global(&n);
    for (int i = 0; i < n; i++)
        if (t[i].key == key)
            return t[i].fn(s, key);
    return APP_FX_NONE;
}
