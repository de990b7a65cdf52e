/* The frame (title bar, message line, key bar), the "terminal too small"
 * notice and the help overlay. Bar and help are built from the key tables. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "app.h"

static void draw_title(const app_state *s, grid *g)
{
    char params[32], flops[32], p2[32], f2[32], text[200];
    int x, tabs = 0, len;
    bool full = true;

    grid_fill(g, 0, 0, g->w, 1, 0, GC_TITLE);
    if (!s->stats) {
        grid_text(g, 0, 0, g->w, " pare  (no model)", GA_BOLD, GC_TITLE);
        return;
    }
    grid_fmt_count(s->stats->params, params, sizeof params);
    grid_fmt_si(s->stats->flops, flops, sizeof flops);
    if (s->plan_valid && (s->plan_params != s->stats->params || s->plan_flops != s->stats->flops))
        len = snprintf(text, sizeof text, " pare  %s  params %s>%s  FLOPs %s>%s", s->model_name,
                       params, grid_fmt_count(s->plan_params, p2, sizeof p2), flops,
                       grid_fmt_si(s->plan_flops, f2, sizeof f2));
    else
        len = snprintf(text, sizeof text, " pare  %s  params %s  FLOPs %s", s->model_name, params,
                       flops);
    for (int i = 0; i < SCREEN_COUNT; i++)
        tabs += (int)strlen(app_screen_names[i]) + 2;
    if (g->w - tabs < len + 1) {
        /* compact: numbers, the current screen named */
        full = false;
        tabs = 2 * (SCREEN_COUNT - 1) + (int)strlen(app_screen_names[s->screen]) + 5;
    }
    if (g->w - tabs < len + 1) {
        /* only the current screen */
        tabs = (int)strlen(app_screen_names[s->screen]) + 6;
        if (g->w - tabs >= len + 1)
            grid_printf(g, g->w - tabs, 0, -1, GA_REVERSE | GA_BOLD, GC_TITLE, " [%d %s]",
                        s->screen + 1, app_screen_names[s->screen]);
        tabs = 0;
    }
    grid_text(g, 0, 0, len < g->w ? len : g->w, text, GA_BOLD, GC_TITLE);
    /* the plan's arrows: one cell each */
    for (int i = 0; i < len && i < g->w; i++)
        if (g->cells[i].cp == '>') {
            g->cells[i].cp = 0x2192; /* → */
            g->cells[i].ascii = '>';
        }
    if (!tabs)
        return;
    x = g->w - tabs;
    for (int i = 0; i < SCREEN_COUNT; i++) {
        bool cur = i == s->screen;

        if (full)
            x += grid_printf(g, x, 0, -1, cur ? GA_REVERSE | GA_BOLD : 0, GC_TITLE,
                             cur ? "[%s]" : " %s ", app_screen_names[i]);
        else if (cur)
            x += grid_printf(g, x, 0, -1, GA_REVERSE | GA_BOLD, GC_TITLE, " [%d %s]", i + 1,
                             app_screen_names[i]);
        else
            x += grid_printf(g, x, 0, -1, 0, GC_TITLE, " %d", i + 1);
    }
}

static void draw_message(const app_state *s, grid *g, int y)
{
    if (s->prompt) {
        char label[160];
        int n;

        switch (s->prompt) {
        case PROMPT_COMMAND:
            snprintf(label, sizeof label, ":");
            break;
        case PROMPT_RATIO: {
            char name[64], cut[300];

            snprintf(label, sizeof label, "ratio for %s (0.3, 30%%): ",
                     s->groups ? grid_tail(app_group_label(s, s->plan_cursor, name, sizeof name), 60,
                                           cut, sizeof cut) : "");
            break;
        }
        case PROMPT_BITS:
            snprintf(label, sizeof label, "bits for weights and activations (2-8): ");
            break;
        case PROMPT_TENSOR_BITS: {
            char cut[300];
            snprintf(label, sizeof label, "bits for %s (2-8; 0: the plan's %d): ",
                     s->n_qt ? grid_tail(s->graph->values[s->qt[s->quant_cursor].value].name, 60, cut,
                                         sizeof cut) : "", s->quant_bits);
            break;
        }
        case PROMPT_OVERWRITE:
            snprintf(label, sizeof label, "replace it? (y/n) ");
            break;
        case PROMPT_TARGET:
            snprintf(label, sizeof label, "FLOPs reduction target (0.3 or 30%%): ");
            break;
        case PROMPT_FILL:
            snprintf(label, sizeof label, "fill the plan for a FLOPs reduction (0.3 or 30%%): ");
            break;
        case PROMPT_ALPHA:
            snprintf(label, sizeof label, "alpha of pair %d: ", s->pair_cursor + 1);
            break;
        default:
            snprintf(label, sizeof label, "a job is running: quit anyway? (y/n) ");
            break;
        }
        if (s->prompt == PROMPT_OVERWRITE) {
            grid_printf(g, 0, y, g->w, GA_BOLD, GC_ERROR, "%s exists: %s", s->prompt_buf, label);
            return;
        }
        n = grid_printf(g, 0, y, g->w, GA_BOLD, s->prompt == PROMPT_QUIT ? GC_ERROR : GC_DEFAULT,
                        "%s%s", label, s->prompt_buf);
        if (s->prompt != PROMPT_QUIT)
            grid_put(g, n, y, 0x2588, '_', 0, GC_DEFAULT); /* the cursor */
        return;
    }
    if (s->searching) {
        int n = grid_printf(g, 0, y, g->w, GA_BOLD, GC_DEFAULT, "/%s", s->search);

        grid_put(g, n, y, 0x2588, '_', 0, GC_DEFAULT); /* the cursor */
        return;
    }
    grid_text(g, 0, y, g->w, s->message, s->message_is_error ? GA_BOLD : 0,
              s->message_is_error ? GC_ERROR : GC_DEFAULT);
}

static int bar_add(grid *g, int x, int y, const char *keys, const char *name)
{
    char label[32];
    const char *slash = keys[1] ? strchr(keys, '/') : NULL; /* "Enter/l/Right" -> "Enter" */
    int need;

    snprintf(label, sizeof label, "%.*s", slash ? (int)(slash - keys) : (int)strlen(keys), keys);
    need = (int)strlen(label) + (int)strlen(name) + 3;

    if (x + need > g->w)
        return x;
    x += grid_text(g, x, y, -1, label, GA_BOLD, GC_KEY);
    x += grid_printf(g, x, y, -1, 0, GC_BAR, " %s  ", name);
    return x;
}

static void draw_bar(const app_state *s, grid *g, int y)
{
    const key_binding *t;
    int n, x = 0;

    grid_fill(g, 0, y, g->w, 1, 0, GC_BAR);
    if (s->help_open) {
        x = bar_add(g, x, y, "Esc", "Close");
        bar_add(g, x, y, "type", "Filter");
        return;
    }
    if (s->prompt == PROMPT_QUIT || s->prompt == PROMPT_OVERWRITE) {
        x = bar_add(g, x, y, "y", s->prompt == PROMPT_QUIT ? "Quit" : "Replace");
        bar_add(g, x, y, "n", s->prompt == PROMPT_QUIT ? "Stay" : "Keep");
        return;
    }
    if (s->searching || s->prompt) {
        x = bar_add(g, x, y, "Enter", "Done");
        bar_add(g, x, y, "Esc", "Cancel");
        return;
    }
    t = keys_global(&n);
    for (int i = 0; i < n; i++)
        if (t[i].bar && t[i].key == '?')
            x = bar_add(g, x, y, "?", t[i].bar);
    t = keys_screen(s->screen, &n);
    for (int pass = 0; pass < 2; pass++) /* q first: it must fit */
        for (int i = 0; i < n; i++)
            if (t[i].bar && (t[i].key == 'q') == (pass == 0))
                x = bar_add(g, x, y, t[i].label, t[i].bar);
    t = keys_global(&n);
    for (int i = 0; i < n; i++)
        if (t[i].bar && t[i].key != '?')
            /* where digits type a value, the screens are on F1-F8 too */
            x = bar_add(g, x, y, t[i].key == TK_TAB && keys_screen_has(s->screen, '1') ? "Tab,F1-8"
                                                                                         : t[i].label,
                        t[i].bar);
}

static void draw_too_small(const app_state *s, grid *g)
{
    grid_printf(g, 0, 0, g->w, GA_BOLD, GC_ERROR, "terminal too small: %dx%d", s->cols, s->rows);
    grid_printf(g, 0, 1, g->w, 0, GC_DEFAULT, "need %dx%d; q quits", APP_MIN_COLS, APP_MIN_ROWS);
}

void view_app_draw(const app_state *s, grid *g)
{
    int body;

    grid_clear(g);
    if (g->w < APP_MIN_COLS || g->h < APP_MIN_ROWS) {
        draw_too_small(s, g);
        return;
    }
    body = g->h - 3; /* column header, rows, totals */
    draw_title(s, g);
    switch (s->screen) {
    case SCREEN_INSPECT:
        view_inspect_draw(s, g, 1, body);
        break;
    case SCREEN_LOG:
        view_log_draw(s, g, 1, body);
        break;
    case SCREEN_SENS:
        view_sens_draw(s, g, 1, body);
        break;
    case SCREEN_PLAN:
        view_plan_draw(s, g, 1, body);
        break;
    case SCREEN_QUANT:
        view_quant_draw(s, g, 1, body);
        break;
    case SCREEN_DISTILL:
        view_distill_draw(s, g, 1, body);
        break;
    case SCREEN_JOBS:
        view_jobs_draw(s, g, 1, body);
        break;
    default:
        view_layers_draw(s, g, 1, body);
        break;
    }
    draw_message(s, g, g->h - 2);
    draw_bar(s, g, g->h - 1);
    if (s->help_open)
        view_help_draw(s, g);
}

/* ---- help overlay ---- */

static bool help_match(const key_binding *b, const char *filter)
{
    return !filter[0] || strcasestr(b->label, filter) || strcasestr(b->help, filter) ||
           (b->bar && strcasestr(b->bar, filter));
}

/* Collects the distinct (label) bindings of the screen then the global keys. */
static int help_entries(const app_state *s, const key_binding **out, int max)
{
    const key_binding *tables[2];
    int ns[2], n = 0;

    tables[0] = keys_screen(s->screen, &ns[0]);
    tables[1] = keys_global(&ns[1]);
    for (int t = 0; t < 2; t++)
        for (int i = 0; i < ns[t]; i++) {
            const key_binding *b = &tables[t][i];
            bool seen = t == 1 && keys_screen_has(s->screen, b->key); /* shadowed */

            for (int j = 0; j < n && !seen; j++)
                seen = !strcmp(out[j]->label, b->label) && !strcmp(out[j]->help, b->help);
            if (!seen && help_match(b, s->help_filter) && n < max)
                out[n++] = b;
        }
    return n;
}

static void box(grid *g, int x, int y, int w, int h)
{
    grid_fill(g, x, y, w, h, 0, GC_DEFAULT);
    for (int j = y; j < y + h; j++)
        for (int i = x; i < x + w; i++) {
            bool top = j == y, bot = j == y + h - 1, left = i == x, right = i == x + w - 1;
            uint32_t cp = ' ';
            char a = ' ';

            if ((top || bot) && (left || right)) {
                cp = top ? (left ? 0x250C : 0x2510) : (left ? 0x2514 : 0x2518);
                a = '+';
            } else if (top || bot) {
                cp = 0x2500;
                a = '-';
            } else if (left || right) {
                cp = 0x2502;
                a = '|';
            }
            grid_put(g, i, j, cp, a, 0, GC_ACCENT);
        }
}

void view_help_draw(const app_state *s, grid *g)
{
    const key_binding *entries[128];
    int n = help_entries(s, entries, 128);
    int w = g->w - 8 < 70 ? g->w - 8 : 70, h = g->h - 2, x = (g->w - w) / 2, y = 1;
    int list = h - 4, top = s->help_top;

    box(g, x, y, w, h);
    grid_printf(g, x + 2, y, w - 4, GA_BOLD, GC_ACCENT, " Help: %s keys ",
                app_screen_names[s->screen]);
    grid_printf(g, x + 2, y + 1, w - 4, 0, GC_DEFAULT, "filter: %s", s->help_filter);
    grid_put(g, x + 10 + (int)strlen(s->help_filter), y + 1, 0x2588, '_', 0, GC_DEFAULT);
    if (top > n - list)
        top = n - list > 0 ? n - list : 0;
    if (n == 0)
        grid_text(g, x + 2, y + 3, w - 4, "no key matches", 0, GC_ERROR);
    for (int i = 0; i < list && top + i < n; i++)
        grid_printf(g, x + 2, y + 3 + i, w - 4, 0, GC_DEFAULT, "%-13s %s", entries[top + i]->label,
                    entries[top + i]->help);
    if (top + list < n)
        grid_text(g, x + w - 14, y + h - 1, -1, " Down: more ", 0, GC_ACCENT);
}
