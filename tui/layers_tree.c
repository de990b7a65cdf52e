/* Layers tree mode: node names split at '/' into scopes (see app.h). The tree
 * is built once per model; only the visible rows are recomputed, and only
 * when a scope opens or closes. */
#include <string.h>

#include "app.h"
#include "pare/alloc.h"

/* ---- building ---- */

/* Segments of a name ("/layer1/conv1/Conv" has 3); at least 1. */
static int name_segments(const char *name)
{
    int n = 0;

    for (const char *p = name; *p;) {
        while (*p == '/')
            p++;
        if (!*p)
            break;
        n++;
        while (*p && *p != '/')
            p++;
    }
    return n ? n : 1;
}

static uint32_t scope_hash(int parent, const char *label, int len)
{
    uint32_t h = 2166136261u ^ (uint32_t)(parent + 1) * 16777619u; /* FNV-1a */

    for (int i = 0; i < len; i++) {
        h ^= (unsigned char)label[i];
        h *= 16777619u;
    }
    return h;
}

typedef struct builder {
    layers_tree *t;
    int *slots;               /* open addressing: scope items, -1 empty */
    uint32_t mask;
    int *last;                /* per item: its last child; [n_items]: the last top-level item */
    int last_top;
} builder;

static int item_add(builder *b, int parent, int node, const char *label, int len)
{
    layers_tree *t = b->t;
    int id = t->n_items++;
    layers_tree_item *it = &t->items[id];

    memset(it, 0, sizeof *it);
    it->node = node;
    it->parent = parent;
    it->first_child = it->next = -1;
    it->depth = parent >= 0 ? t->items[parent].depth + 1 : 0;
    it->label = label;
    it->len = len;
    b->last[id] = -1;
    if (parent < 0) {
        if (b->last_top >= 0)
            t->items[b->last_top].next = id;
        else
            t->first_top = id;
        b->last_top = id;
    } else {
        if (b->last[parent] >= 0)
            t->items[b->last[parent]].next = id;
        else
            t->items[parent].first_child = id;
        b->last[parent] = id;
    }
    return id;
}

static int scope_find_or_add(builder *b, int parent, const char *label, int len)
{
    uint32_t h = scope_hash(parent, label, len) & b->mask;

    for (;; h = (h + 1) & b->mask) {
        int id = b->slots[h];

        if (id < 0) {
            id = item_add(b, parent, -1, label, len);
            b->slots[h] = id;
            b->t->n_scopes++;
            return id;
        }
        if (b->t->items[id].parent == parent && b->t->items[id].len == len &&
            !memcmp(b->t->items[id].label, label, (size_t)len))
            return id;
    }
}

/* Adds node's scopes (found or new) and its leaf item. */
static void node_add(builder *b, const app_state *s, int node)
{
    const char *name = s->graph->nodes[node].name, *p = name, *seg = NULL;
    const pare_layer_stat *ls = &s->stats->layers[node];
    int parent = -1, seg_len = 0, leaf;

    if (name && strchr(name, '/')) {
        while (*p) {
            const char *start;

            while (*p == '/')
                p++;
            if (!*p)
                break;
            start = p;
            while (*p && *p != '/')
                p++;
            if (seg) /* the previous segment is a scope */
                parent = scope_find_or_add(b, parent, seg, seg_len);
            seg = start;
            seg_len = (int)(p - start);
        }
    }
    if (!seg) { /* no '/', or only slashes: the whole name */
        seg = name && name[0] ? name : NULL;
        seg_len = seg ? (int)strlen(seg) : 0;
    }
    leaf = item_add(b, parent, node, seg, seg_len);
    b->t->item_of_node[node] = leaf;
    for (int a = parent; a >= 0; a = b->t->items[a].parent) {
        layers_tree_item *it = &b->t->items[a];

        it->n_nodes++;
        it->params += ls->params;
        if (ls->folded)
            continue;
        if (ls->flops < 0)
            it->flops_partial = true;
        else
            it->flops += ls->flops;
    }
}

static void rows_rebuild(layers_tree *t);

bool layers_tree_build(app_state *s)
{
    layers_tree *t;
    builder b = {0};
    int n = s->graph ? s->graph->n_nodes : 0, max_items = 0;
    uint32_t cap = 16;
    bool ok = false;

    layers_tree_free(s);
    if (!s->graph || !s->stats)
        return false;
    for (int i = 0; i < n; i++)
        max_items += s->graph->nodes[i].name ? name_segments(s->graph->nodes[i].name) : 1;
    while (cap < 2u * (uint32_t)max_items)
        cap *= 2;
    t = pare_calloc(1, sizeof *t);
    b.t = t;
    b.mask = cap - 1;
    b.last_top = -1;
    b.slots = pare_calloc(cap, sizeof *b.slots);
    b.last = pare_calloc((size_t)max_items + 1, sizeof *b.last);
    if (t) {
        t->first_top = -1;
        t->items = pare_calloc((size_t)max_items + 1, sizeof *t->items);
        t->item_of_node = pare_calloc((size_t)n + 1, sizeof *t->item_of_node);
        t->rows = pare_calloc((size_t)max_items + 1, sizeof *t->rows);
    }
    if (t && b.slots && b.last && t->items && t->item_of_node && t->rows) {
        memset(b.slots, 0xff, cap * sizeof *b.slots); /* -1 */
        for (int i = 0; i < n; i++)
            node_add(&b, s, i);
        rows_rebuild(t);
        s->tree = t;
        ok = true;
    }
    pare_free(b.slots);
    pare_free(b.last);
    if (!ok && t) {
        pare_free(t->items);
        pare_free(t->item_of_node);
        pare_free(t->rows);
        pare_free(t);
    }
    return ok;
}

void layers_tree_free(app_state *s)
{
    if (!s->tree)
        return;
    pare_free(s->tree->items);
    pare_free(s->tree->item_of_node);
    pare_free(s->tree->rows);
    pare_free(s->tree);
    s->tree = NULL;
}

/* ---- rows and cursor ---- */

static bool is_scope(const layers_tree *t, int item)
{
    return t->items[item].node < 0;
}

/* Visible items in depth-first (graph) order. */
static void rows_rebuild(layers_tree *t)
{
    int it = t->first_top;

    t->n_rows = 0;
    while (it >= 0) {
        t->rows[t->n_rows++] = it;
        if (is_scope(t, it) && t->items[it].open && t->items[it].first_child >= 0) {
            it = t->items[it].first_child;
            continue;
        }
        while (it >= 0 && t->items[it].next < 0)
            it = t->items[it].parent;
        if (it >= 0)
            it = t->items[it].next;
    }
}

static int clampi(int v, int lo, int hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

int layers_tree_top(const app_state *s)
{
    const layers_tree *t = s->tree;
    int body = app_body_rows(s), top;

    if (!t)
        return 0;
    top = t->top;
    if (t->cursor < top)
        top = t->cursor;
    if (t->cursor >= top + body)
        top = t->cursor - body + 1;
    return clampi(top, 0, t->n_rows > body ? t->n_rows - body : 0);
}

static void tree_scroll(app_state *s)
{
    layers_tree *t = s->tree;

    t->cursor = clampi(t->cursor, 0, t->n_rows ? t->n_rows - 1 : 0);
    t->top = layers_tree_top(s);
}

/* Puts the cursor on item, or on its nearest visible ancestor. */
static void cursor_to_item(app_state *s, int item)
{
    layers_tree *t = s->tree;

    for (int a = item; a >= 0; a = t->items[a].parent) {
        bool visible = true;

        for (int p = t->items[a].parent; p >= 0; p = t->items[p].parent)
            visible = visible && t->items[p].open;
        if (!visible)
            continue;
        for (int r = 0; r < t->n_rows; r++)
            if (t->rows[r] == a) {
                t->cursor = r;
                tree_scroll(s);
                return;
            }
    }
    tree_scroll(s);
}

static int cursor_item(const layers_tree *t)
{
    return t->n_rows ? t->rows[t->cursor] : -1;
}

/* Opens or closes one scope, keeping the cursor on its item. */
static void scope_set_open(app_state *s, int item, bool open)
{
    int keep = cursor_item(s->tree);

    s->tree->items[item].open = open;
    rows_rebuild(s->tree);
    cursor_to_item(s, keep);
}

/* ---- actions ---- */

static bool tree_ready(app_state *s)
{
    return s->tree_on && s->tree && s->screen == SCREEN_LAYERS;
}

int act_tree_toggle(app_state *s)
{
    if (s->screen != SCREEN_LAYERS)
        return APP_FX_NONE;
    if (!s->tree) {
        app_log(s, true, s->graph ? "no tree: out of memory building it" : "no model open");
        s->message_is_error = s->graph != NULL;
        return APP_FX_REDRAW;
    }
    s->tree_on = !s->tree_on;
    if (s->tree_on) {
        tree_scroll(s);
        app_log(s, true, "tree by name scope: %d scopes (Enter/l open, h close, * all, T table)",
                s->tree->n_scopes);
    } else
        app_log(s, true, "table of layers");
    return APP_FX_REDRAW;
}

int act_tree_move(app_state *s, int delta)
{
    if (!tree_ready(s))
        return APP_FX_NONE;
    if (delta > s->tree->n_rows)
        delta = s->tree->n_rows;
    if (delta < -s->tree->n_rows)
        delta = -s->tree->n_rows;
    s->tree->cursor += delta;
    tree_scroll(s);
    return APP_FX_REDRAW;
}

/* A node: open Inspect on it (the table's cursor follows, as act_inspect reads it). */
static int inspect_node(app_state *s, int node)
{
    for (int r = 0; r < s->n_rows; r++)
        if (s->order[r] == node) {
            s->cursor = r;
            act_move(s, 0);
            return act_inspect(s);
        }
    return APP_FX_NONE;
}

int act_tree_open(app_state *s)
{
    int item;
    layers_tree_item *it;

    if (!tree_ready(s) || (item = cursor_item(s->tree)) < 0)
        return APP_FX_NONE;
    it = &s->tree->items[item];
    if (!is_scope(s->tree, item))
        return inspect_node(s, it->node);
    if (!it->open) {
        scope_set_open(s, item, true);
        return APP_FX_REDRAW;
    }
    return act_tree_move(s, 1); /* open already: to its first child */
}

int act_tree_enter(app_state *s)
{
    int item;

    if (!tree_ready(s) || (item = cursor_item(s->tree)) < 0)
        return APP_FX_NONE;
    if (!is_scope(s->tree, item))
        return inspect_node(s, s->tree->items[item].node);
    scope_set_open(s, item, !s->tree->items[item].open);
    return APP_FX_REDRAW;
}

int act_tree_close(app_state *s)
{
    int item;

    if (!tree_ready(s) || (item = cursor_item(s->tree)) < 0)
        return APP_FX_NONE;
    if (is_scope(s->tree, item) && s->tree->items[item].open) {
        scope_set_open(s, item, false);
        return APP_FX_REDRAW;
    }
    if (s->tree->items[item].parent < 0)
        return APP_FX_NONE;
    cursor_to_item(s, s->tree->items[item].parent);
    return APP_FX_REDRAW;
}

int act_tree_all(app_state *s)
{
    layers_tree *t = s->tree;
    bool any_closed = false;
    int keep;

    if (!tree_ready(s))
        return APP_FX_NONE;
    for (int i = 0; i < t->n_items && !any_closed; i++)
        any_closed = is_scope(t, i) && !t->items[i].open;
    keep = cursor_item(t);
    for (int i = 0; i < t->n_items; i++)
        if (is_scope(t, i))
            t->items[i].open = any_closed;
    rows_rebuild(t);
    cursor_to_item(s, keep);
    app_log(s, true, "%s every scope", any_closed ? "opened" : "closed");
    return APP_FX_REDRAW;
}

/* ---- search and mouse (called by tui/app.c in tree mode) ---- */

static bool node_matches(const app_state *s, int node, const char *text)
{
    char label[32];

    return strcasestr(app_node_label(s, node, label, sizeof label), text) ||
           strcasestr(s->graph->nodes[node].op_type, text);
}

/* The graph node a row stands for: itself, or a scope's first node. */
static int row_node(const layers_tree *t, int item)
{
    while (item >= 0 && t->items[item].node < 0)
        item = t->items[item].first_child;
    return item >= 0 ? t->items[item].node : 0;
}

int layers_tree_search(app_state *s, bool skip, int dir)
{
    layers_tree *t = s->tree;
    int n = s->graph->n_nodes, start, step = skip ? 1 : 0;

    if (!s->search[0] || !n)
        return APP_FX_NONE;
    start = cursor_item(t) >= 0 ? row_node(t, cursor_item(t)) : 0;
    /* on a scope the first step lands on its own first node */
    if (skip && cursor_item(t) >= 0 && is_scope(t, cursor_item(t)) && dir > 0)
        step = 0;
    for (int k = 0; k < n; k++) {
        int node = ((start + dir * (step + k)) % n + n) % n;

        if (node_matches(s, node, s->search)) {
            int item = t->item_of_node[node];

            for (int p = t->items[item].parent; p >= 0; p = t->items[p].parent)
                t->items[p].open = true;
            rows_rebuild(t);
            cursor_to_item(s, item);
            s->message[0] = '\0';
            return APP_FX_REDRAW;
        }
    }
    app_log(s, true, "no layer matches '%s'", s->search);
    s->message_is_error = true;
    return APP_FX_REDRAW;
}

int layers_tree_click(app_state *s, int row)
{
    int r = layers_tree_top(s) + row;

    if (!s->tree || r >= s->tree->n_rows)
        return APP_FX_NONE;
    s->tree->cursor = r;
    tree_scroll(s);
    return APP_FX_REDRAW;
}
