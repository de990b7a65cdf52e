/* Workbench state and actions (see app.h). Actions never draw. */
#include "app.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "pare/alloc.h"
#include "pare/job.h"
#include "pare/tensor.h"
#include "plan.h"

const char *const app_screen_names[SCREEN_COUNT] = {"Layers", "Inspect", "Sens", "Plan",
                                                    "Quant", "Distill", "Jobs", "Log"};

void app_init(app_state *s)
{
    memset(s, 0, sizeof *s);
    s->rows = 24;
    s->cols = 80;
    s->inspect_node = -1;
    s->act_node = -1;
    s->log_follow = true;
    s->limit = 256;
    s->quant_bits = 8;
    s->quant_algo = PARE_JOB_ALGO_HIST;
    s->distill_teacher = -1;
    s->plan_loss = NAN;
    s->plan_measured = NAN;
}

static void act_stats_free(app_state *s)
{
    pare_free(s->act.name);
    pare_free(s->act.l1);
    memset(&s->act, 0, sizeof s->act);
    s->act_node = -1;
}

static void weights_free(app_state *s)
{
    for (int i = 0; i < s->n_weights; i++) {
        pare_free(s->weights[i].name);
        pare_free(s->weights[i].l1);
    }
    pare_free(s->weights);
    s->weights = NULL;
    s->n_weights = 0;
    s->inspect_node = -1;
    s->inspect_top = 0;
}

static void model_close(app_state *s)
{
    plan_free(s);
    layers_tree_free(s);
    weights_free(s);
    act_stats_free(s);
    pare_stats_free(s->stats);
    pare_graph_free(s->graph);
    pare_free(s->order);
    s->stats = NULL;
    s->graph = NULL;
    s->order = NULL;
    s->n_rows = s->cursor = s->top = 0;
}

void app_fini(app_state *s)
{
    jobs_free(s->queue); /* cancels and waits: the works are ours again */
    s->queue = NULL;
    for (int i = 0; i < s->n_jobs; i++)
        plan_job_work_free(&s->jobs[i]);
    pare_free(s->jobs);
    s->jobs = NULL;
    s->n_jobs = s->cap_jobs = 0;
    model_close(s);
    for (int i = 0; i < s->n_log; i++)
        pare_free(s->log[i]);
    pare_free(s->log);
    s->log = NULL;
    s->n_log = s->cap_log = 0;
}

void app_log(app_state *s, bool show, const char *fmt, ...)
{
    char buf[sizeof s->message];
    va_list ap;
    char *line;

    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (show) {
        snprintf(s->message, sizeof s->message, "%s", buf);
        s->message_is_error = false;
    }
    if (s->n_log == s->cap_log) {
        int cap = s->cap_log ? 2 * s->cap_log : 64;
        char **grown = pare_realloc(s->log, (size_t)cap * sizeof *grown);

        if (!grown)
            return;
        s->log = grown;
        s->cap_log = cap;
    }
    line = pare_strdup(buf);
    if (line)
        s->log[s->n_log++] = line;
}

void app_log_error(app_state *s, const pare_error *err)
{
    char buf[1024];

    pare_error_format(err, buf, sizeof buf);
    app_log(s, true, "error: %s", buf);
    s->message_is_error = true;
}

int app_body_rows(const app_state *s)
{
    int n = s->rows - 5; /* title, header, totals, message, key bar */

    return n < 1 ? 1 : n;
}

const char *app_node_label(const app_state *s, int node, char *buf, size_t size)
{
    const pare_node *nd = &s->graph->nodes[node];

    if (nd->name && nd->name[0])
        return nd->name;
    snprintf(buf, size, "#%d", node);
    return buf;
}

const char *app_group_label(const app_state *s, int gi, char *buf, size_t size)
{
    const pare_prune_group *grp = &s->groups->groups[gi];

    return grp->n_producers ? app_node_label(s, grp->producers[0], buf, size) : grp->name;
}

double app_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

uint64_t app_plan_key(const app_state *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a over the ratios in thousandths */

    for (int i = 0; s->groups && i < s->groups->n; i++) {
        h ^= (uint64_t)llround(s->ratio[i] * 1000.0) + (uint64_t)i * 7919u;
        h *= 1099511628211ULL;
    }
    return h;
}

int app_inspect_lines(const app_state *s)
{
    /* the output block (or the line saying r measures it) and a blank */
    int n = s->act_node == s->inspect_node && s->act.numel
                ? 2 + APP_HIST_ROWS + 1 + (s->act.n_channels ? 1 + s->act.n_channels : 0) + 1
                : 2;

    for (int i = 0; i < s->n_weights; i++)
        n += 3 + APP_HIST_ROWS + 1 + (s->weights[i].n_channels ? 1 + s->weights[i].n_channels : 0) + 1;
    return n;
}

/* ---- sorting ---- */

static const app_state *sort_state; /* qsort has no context argument */

static int cmp_rows(const void *pa, const void *pb)
{
    const app_state *s = sort_state;
    int a = *(const int *)pa, b = *(const int *)pb;
    const pare_layer_stat *la = &s->stats->layers[a], *lb = &s->stats->layers[b];
    char ba[32], bb[32];
    int c = 0;

    switch (s->sort) {
    case SORT_NAME:
        c = strcasecmp(app_node_label(s, a, ba, sizeof ba), app_node_label(s, b, bb, sizeof bb));
        break;
    case SORT_OP:
        c = strcmp(s->graph->nodes[a].op_type, s->graph->nodes[b].op_type);
        break;
    case SORT_PARAMS:
        c = (la->params > lb->params) - (la->params < lb->params);
        break;
    case SORT_FLOPS:
        c = (la->flops > lb->flops) - (la->flops < lb->flops);
        break;
    default:
        break;
    }
    if (s->sort_desc)
        c = -c;
    return c ? c : (a > b) - (a < b); /* stable: graph order breaks ties */
}

static void sort_rows(app_state *s)
{
    int selected = s->n_rows ? s->order[s->cursor] : -1;

    for (int i = 0; i < s->n_rows; i++)
        s->order[i] = i;
    sort_state = s;
    if (s->sort != SORT_ORDER || s->sort_desc)
        qsort(s->order, (size_t)s->n_rows, sizeof *s->order, cmp_rows);
    sort_state = NULL;
    for (int i = 0; i < s->n_rows; i++)
        if (s->order[i] == selected)
            s->cursor = i;
}

/* ---- scrolling ---- */

static int clampi(int v, int lo, int hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

static void layers_scroll(app_state *s)
{
    int body = app_body_rows(s);

    s->cursor = clampi(s->cursor, 0, s->n_rows ? s->n_rows - 1 : 0);
    if (s->cursor < s->top)
        s->top = s->cursor;
    if (s->cursor >= s->top + body)
        s->top = s->cursor - body + 1;
    s->top = clampi(s->top, 0, s->n_rows > body ? s->n_rows - body : 0);
}

static int max_top(int lines, int body)
{
    return lines > body ? lines - body : 0;
}

/* Keeps a list cursor inside [0, n) and visible in body rows from *top. */
static void list_scroll(int *cursor, int *top, int n, int body)
{
    *cursor = clampi(*cursor, 0, n ? n - 1 : 0);
    if (*cursor < *top)
        *top = *cursor;
    if (*cursor >= *top + body)
        *top = *cursor - body + 1;
    *top = clampi(*top, 0, n > body ? n - body : 0);
}

int app_list_rows(const app_state *s, int screen)
{
    int body = app_body_rows(s);

    switch (screen) {
    case SCREEN_SENS:
        return body >= 14 ? body - APP_CURVE_ROWS : body;
    case SCREEN_DISTILL:
        return body >= 12 ? body - APP_PAIR_ROWS - 1 : body - 3;
    case SCREEN_QUANT:
        return body - 1; /* a settings line */
    case SCREEN_PLAN:
        return body - 2; /* the group's value and the drops */
    case SCREEN_JOBS:
        return body >= 10 ? body - APP_JOB_PANE : body;
    default:
        return body;
    }
}

static void lists_scroll(app_state *s)
{
    list_scroll(&s->sens_cursor, &s->sens_top, s->n_sens_rows, app_list_rows(s, SCREEN_SENS));
    list_scroll(&s->plan_cursor, &s->plan_top, s->groups ? s->groups->n : 0,
                app_list_rows(s, SCREEN_PLAN));
    list_scroll(&s->quant_cursor, &s->quant_top, s->n_qt, app_list_rows(s, SCREEN_QUANT));
    {
        int n;

        plan_distill_list(s, &n, NULL, NULL);
        list_scroll(&s->distill_cursor, &s->distill_top, n, app_list_rows(s, SCREEN_DISTILL));
    }
    s->pair_cursor = clampi(s->pair_cursor, 0, s->n_pairs ? s->n_pairs - 1 : 0);
    s->jobs_cursor = clampi(s->jobs_cursor, 0, s->n_jobs ? s->n_jobs - 1 : 0);
}

/* ---- actions ---- */

int act_open_model(app_state *s, const char *path, const char *data_spec)
{
    pare_graph *g = NULL;
    pare_stats *st = NULL;
    pare_error err = {0};
    int *order = NULL;
    const char *base;

    if (pare_graph_load(path, &g, &err) != PARE_OK ||
        pare_stats_compute(g, &st, &err) != PARE_OK) {
        app_log_error(s, &err);
        pare_graph_free(g);
        return APP_FX_REDRAW;
    }
    order = pare_calloc(st->n_layers ? (size_t)st->n_layers : 1, sizeof *order);
    if (!order) {
        pare_fail(&err, PARE_ENOMEM, path, "out of memory");
        app_log_error(s, &err);
        pare_stats_free(st);
        pare_graph_free(g);
        return APP_FX_REDRAW;
    }
    model_close(s);
    s->graph = g;
    s->stats = st;
    s->order = order;
    s->n_rows = st->n_layers;
    snprintf(s->model_path, sizeof s->model_path, "%s", path);
    base = strrchr(path, '/');
    snprintf(s->model_name, sizeof s->model_name, "%s", base ? base + 1 : path);
    snprintf(s->data_spec, sizeof s->data_spec, "%s", data_spec ? data_spec : "");
    sort_rows(s);
    s->cursor = s->top = 0;
    s->screen = SCREEN_LAYERS;
    plan_reset_model(s);
    if (!layers_tree_build(s))
        s->tree_on = false;
    app_log(s, true, "opened %s: %d layers, %lld params%s%s", s->model_name, st->n_layers,
            (long long)st->params, s->data_spec[0] ? ", data " : "", s->data_spec);
    if (!st->planned) {
        char buf[1024];

        pare_error_format(&st->plan_error, buf, sizeof buf);
        app_log(s, false, "cannot plan the model, some shapes are unknown: %s", buf);
    }
    return APP_FX_REDRAW;
}

int act_resize(app_state *s, int rows, int cols)
{
    s->rows = rows;
    s->cols = cols;
    layers_scroll(s);
    s->inspect_top = clampi(s->inspect_top, 0, max_top(app_inspect_lines(s), app_body_rows(s)));
    s->log_top = clampi(s->log_top, 0, max_top(s->n_log, app_body_rows(s)));
    lists_scroll(s);
    return APP_FX_REDRAW;
}

int act_move(app_state *s, int delta)
{
    int body = app_body_rows(s);

    switch (s->screen) {
    case SCREEN_LAYERS:
        s->cursor += delta;
        layers_scroll(s);
        break;
    case SCREEN_INSPECT:
        s->inspect_top = clampi(s->inspect_top + delta, 0, max_top(app_inspect_lines(s), body));
        break;
    case SCREEN_LOG:
        if (s->log_follow)
            s->log_top = max_top(s->n_log, body);
        s->log_top = clampi(s->log_top + delta, 0, max_top(s->n_log, body));
        s->log_follow = s->log_top == max_top(s->n_log, body);
        break;
    case SCREEN_SENS:
        s->sens_cursor += delta;
        break;
    case SCREEN_PLAN:
        s->plan_cursor += delta;
        break;
    case SCREEN_QUANT:
        s->quant_cursor += delta;
        break;
    case SCREEN_DISTILL:
        if (s->distill_on_pairs)
            s->pair_cursor += delta;
        else
            s->distill_cursor += delta;
        break;
    case SCREEN_JOBS:
        s->jobs_cursor += delta;
        break;
    default:
        break;
    }
    lists_scroll(s);
    return APP_FX_REDRAW;
}

int act_page(app_state *s, int dir)
{
    int page = app_body_rows(s) - 1;

    return act_move(s, dir * (page < 1 ? 1 : page));
}

int act_home(app_state *s)
{
    return act_move(s, -(1 << 30));
}

int act_end(app_state *s)
{
    return act_move(s, 1 << 30);
}

int act_screen_set(app_state *s, int screen)
{
    s->screen = clampi(screen, 0, SCREEN_COUNT - 1);
    s->searching = false;
    lists_scroll(s);
    return APP_FX_REDRAW;
}

int act_screen_next(app_state *s, int dir)
{
    return act_screen_set(s, (s->screen + dir + SCREEN_COUNT) % SCREEN_COUNT);
}

bool app_tensor_stats(app_weight *w, const char *name, int index, const pare_tensor *t,
                      bool activation)
{
    const float *x = pare_tensor_f32(t);
    int64_t n = pare_tensor_numel(t), zeros = 0;
    double sum = 0, sq = 0, lo = INFINITY, hi = -INFINITY, width;

    memset(w, 0, sizeof *w);
    w->value = index;
    w->ndim = t->ndim;
    memcpy(w->dims, t->dims, sizeof w->dims);
    w->numel = n;
    w->activation = activation;
    w->name = pare_strdup(name ? name : "");
    if (!w->name)
        return false;
    for (int64_t i = 0; i < n; i++) {
        double d = x[i];

        if (!isfinite(d))
            continue;
        lo = d < lo ? d : lo;
        hi = d > hi ? d : hi;
        sum += d;
        zeros += x[i] == 0.0f;
    }
    w->mean = n ? sum / (double)n : 0;
    for (int64_t i = 0; i < n; i++)
        if (isfinite(x[i]))
            sq += ((double)x[i] - w->mean) * ((double)x[i] - w->mean);
    w->std = n ? sqrt(sq / (double)n) : 0;
    w->min = n && lo <= hi ? lo : 0;
    w->max = n && lo <= hi ? hi : 0;
    w->sparsity = n ? (double)zeros / (double)n : 0;
    width = w->max - w->min;
    for (int64_t i = 0; i < n; i++) {
        int b;

        if (!isfinite(x[i]))
            continue;
        b = width > 0 ? (int)(((double)x[i] - w->min) / width * APP_HIST_BINS) : 0;
        w->hist[clampi(b, 0, APP_HIST_BINS - 1)]++;
    }
    if (activation && t->ndim >= 2 && t->dims[0] > 0 && t->dims[1] > 0 && t->dims[1] <= 1 << 20) {
        /* [samples, channels, ...]: mean |x| per channel */
        int64_t inner = n / (t->dims[0] * t->dims[1]);

        w->n_channels = (int)t->dims[1];
        w->l1 = pare_calloc((size_t)w->n_channels, sizeof *w->l1);
        if (!w->l1)
            return false;
        for (int64_t b = 0; b < t->dims[0]; b++)
            for (int c = 0; c < w->n_channels; c++)
                for (int64_t i = 0; i < inner; i++)
                    w->l1[c] += fabs((double)x[(b * w->n_channels + c) * inner + i]);
        for (int c = 0; c < w->n_channels && n; c++)
            w->l1[c] /= (double)(t->dims[0] * inner);
    } else if (!activation && t->ndim >= 2 && t->dims[0] > 0 && t->dims[0] <= 1 << 20) {
        int64_t per = n / t->dims[0];

        w->n_channels = (int)t->dims[0];
        w->l1 = pare_calloc((size_t)w->n_channels, sizeof *w->l1);
        if (!w->l1)
            return false;
        for (int c = 0; c < w->n_channels; c++)
            for (int64_t i = 0; i < per; i++)
                w->l1[c] += fabs((double)x[(int64_t)c * per + i]);
    }
    return true;
}

int act_inspect(app_state *s)
{
    const pare_node *nd;
    int node, n = 0;
    pare_error err = {0};
    char label[64];

    if (s->screen != SCREEN_LAYERS || !s->n_rows)
        return APP_FX_NONE;
    node = s->order[s->cursor];
    nd = &s->graph->nodes[node];
    weights_free(s);
    s->weights = pare_calloc(nd->n_inputs ? (size_t)nd->n_inputs : 1, sizeof *s->weights);
    if (!s->weights) {
        pare_fail(&err, PARE_ENOMEM, s->model_name, "out of memory");
        app_log_error(s, &err);
        return APP_FX_REDRAW;
    }
    for (int i = 0; i < nd->n_inputs; i++) {
        int v = nd->inputs[i];
        const pare_value *val = v >= 0 ? &s->graph->values[v] : NULL;

        if (!val || !val->init || val->init->dtype != PARE_F32 || !val->init->data)
            continue;
        if (!app_tensor_stats(&s->weights[n], val->name, v, val->init, false)) {
            pare_free(s->weights[n].name);
            s->n_weights = n;
            pare_fail(&err, PARE_ENOMEM, s->model_name, "out of memory");
            app_log_error(s, &err);
            return APP_FX_REDRAW;
        }
        n++;
    }
    s->n_weights = n;
    s->inspect_node = node;
    s->screen = SCREEN_INSPECT;
    app_log(s, true, "inspect %s (%s): %d weight tensor%s", app_node_label(s, node, label, sizeof label),
            nd->op_type, n, n == 1 ? "" : "s");
    return APP_FX_REDRAW;
}

int act_sort(app_state *s, int column)
{
    static const char *const names[SORT_COUNT] = {"graph order", "name", "op", "params", "FLOPs"};

    if (s->sort == column)
        s->sort_desc = !s->sort_desc;
    else {
        s->sort = column;
        s->sort_desc = column == SORT_PARAMS || column == SORT_FLOPS; /* biggest first */
    }
    sort_rows(s);
    layers_scroll(s);
    app_log(s, true, "sorted by %s%s", names[column], s->sort_desc ? ", descending" : "");
    return APP_FX_REDRAW;
}

/* Layers: a node's name or op; Distill: a value's name or its producer's op. */
static bool row_matches(const app_state *s, int row, const char *text)
{
    char label[32];

    if (s->screen == SCREEN_DISTILL) {
        const pare_graph *g;
        int n, v, prod;
        const int *list = plan_distill_list(s, &n, &g, NULL);

        v = list[row];
        prod = g->values[v].producer;
        return strcasestr(g->values[v].name ? g->values[v].name : "", text) ||
               (prod >= 0 && strcasestr(g->nodes[prod].op_type, text));
    }
    return strcasestr(app_node_label(s, s->order[row], label, sizeof label), text) ||
           strcasestr(s->graph->nodes[s->order[row]].op_type, text);
}

/* Rows the search walks on this screen and its cursor. */
static int search_rows(app_state *s, int **cursor)
{
    int n = 0;

    if (s->screen == SCREEN_DISTILL) {
        plan_distill_list(s, &n, NULL, NULL);
        *cursor = &s->distill_cursor;
        return n;
    }
    *cursor = &s->cursor;
    return s->n_rows;
}

/* Finds text from row `from` on in direction dir (+1/-1), wrapping. */
static int search_from(app_state *s, int from, int dir)
{
    int *cursor, n = search_rows(s, &cursor);

    if (!s->search[0] || !n)
        return APP_FX_NONE;
    if (s->screen == SCREEN_LAYERS && s->tree_on && s->tree)
        return layers_tree_search(s, from != *cursor, dir);
    for (int k = 0; k < n; k++) {
        int row = ((from + dir * k) % n + n) % n;

        if (row_matches(s, row, s->search)) {
            *cursor = row;
            if (s->screen == SCREEN_DISTILL) {
                s->distill_on_pairs = false;
                act_move(s, 0);
            } else
                layers_scroll(s);
            s->message[0] = '\0';
            return APP_FX_REDRAW;
        }
    }
    app_log(s, true, "no %s matches '%s'", s->screen == SCREEN_DISTILL ? "value" : "layer", s->search);
    s->message_is_error = true;
    return APP_FX_REDRAW;
}

static bool searchable(const app_state *s)
{
    return s->screen == SCREEN_LAYERS || s->screen == SCREEN_DISTILL;
}

int act_search_begin(app_state *s)
{
    if (!searchable(s))
        return APP_FX_NONE;
    s->searching = true;
    s->search[0] = '\0';
    s->search_screen = s->screen;
    if (s->screen == SCREEN_DISTILL)
        s->distill_on_pairs = false;
    return APP_FX_REDRAW;
}

static bool text_key(char *buf, size_t size, int key)
{
    size_t len = strlen(buf);

    if (key == TK_BACKSPACE || key == 127 || key == 8) {
        while (len > 0 && ((unsigned char)buf[len - 1] & 0xC0) == 0x80)
            len--; /* a UTF-8 continuation byte */
        if (len > 0)
            len--;
        buf[len] = '\0';
        return true;
    }
    if (key >= 0x20 && key < TK_BASE && key != 127) {
        char enc[5];
        int n = grid_utf8_encode((uint32_t)key, enc);

        if (len + (size_t)n < size) {
            memcpy(buf + len, enc, (size_t)n);
            buf[len + (size_t)n] = '\0';
        }
        return true;
    }
    return false;
}

int act_search_key(app_state *s, int key)
{
    if (!s->searching)
        return APP_FX_NONE;
    if (key == TK_ESC) {
        s->searching = false;
        s->search[0] = '\0';
        return APP_FX_REDRAW;
    }
    if (key == TK_ENTER || key == '\r') {
        int *cursor;

        s->searching = false;
        search_rows(s, &cursor);
        return search_from(s, *cursor, 1);
    }
    if (text_key(s->search, sizeof s->search, key)) {
        int *cursor;

        search_rows(s, &cursor);
        return search_from(s, *cursor, 1); /* incremental */
    }
    return APP_FX_NONE;
}

static int search_step(app_state *s, int dir)
{
    int *cursor;

    if (!searchable(s))
        return APP_FX_NONE;
    if (!s->search[0] || s->search_screen != s->screen) {
        app_log(s, true, "no search yet: press / to search");
        return APP_FX_REDRAW;
    }
    search_rows(s, &cursor);
    return search_from(s, *cursor + dir, dir);
}

int act_search_next(app_state *s)
{
    return search_step(s, 1);
}

int act_search_prev(app_state *s)
{
    return search_step(s, -1);
}

int act_help_toggle(app_state *s)
{
    s->help_open = !s->help_open;
    s->help_filter[0] = '\0';
    s->help_top = 0;
    return APP_FX_REDRAW;
}

int act_help_key(app_state *s, int key)
{
    if (!s->help_open)
        return APP_FX_NONE;
    if (key == TK_ESC || key == '?' || (key == 'q' && !s->help_filter[0]))
        return act_help_toggle(s);
    if (key == TK_DOWN || key == TK_PGDN) {
        s->help_top++;
        return APP_FX_REDRAW;
    }
    if (key == TK_UP || key == TK_PGUP) {
        s->help_top = s->help_top > 0 ? s->help_top - 1 : 0;
        return APP_FX_REDRAW;
    }
    if (text_key(s->help_filter, sizeof s->help_filter, key)) {
        s->help_top = 0;
        return APP_FX_REDRAW;
    }
    return APP_FX_NONE;
}

int act_back(app_state *s)
{
    if (s->help_open)
        return act_help_toggle(s);
    if (s->searching) {
        s->searching = false;
        return APP_FX_REDRAW;
    }
    if (s->screen == SCREEN_DISTILL && s->distill_teacher >= 0) {
        s->distill_teacher = -1;
        app_log(s, true, "pair cancelled");
        return act_move(s, 0);
    }
    if (s->screen == SCREEN_JOBS && s->job_detail) {
        s->job_detail = false;
        return APP_FX_REDRAW;
    }
    if (s->screen != SCREEN_LAYERS)
        return act_screen_set(s, SCREEN_LAYERS);
    return act_quit(s);
}

int act_quit(app_state *s)
{
    if (app_jobs_busy(s)) {
        s->prompt = PROMPT_QUIT;
        s->prompt_buf[0] = '\0';
        return APP_FX_REDRAW;
    }
    return APP_FX_QUIT;
}

int act_prompt_begin(app_state *s, int kind)
{
    if ((kind == PROMPT_RATIO || kind == PROMPT_FILL) && (!s->groups || !s->groups->n))
        return APP_FX_NONE;
    if (kind == PROMPT_ALPHA && !s->n_pairs)
        return APP_FX_NONE;
    if ((kind == PROMPT_BITS || kind == PROMPT_TENSOR_BITS) && !s->n_qt)
        return APP_FX_NONE;
    s->prompt = kind;
    s->prompt_buf[0] = '\0';
    return APP_FX_REDRAW;
}

/* "0.3", "30%" -> 0.3; false when not a number. */
static bool parse_number(const char *text, bool percent_ok, double *out)
{
    char *end;
    double v = strtod(text, &end);

    if (end == text)
        return false;
    while (*end == ' ')
        end++;
    if (percent_ok && *end == '%') {
        v /= 100;
        end++;
    }
    while (*end == ' ')
        end++;
    if (*end)
        return false;
    *out = v;
    return true;
}

static int prompt_enter(app_state *s, int kind, const char *text)
{
    double v;

    if (kind == PROMPT_COMMAND)
        return act_command(s, text);
    if (!text[0])
        return APP_FX_REDRAW;
    if (!parse_number(text, kind != PROMPT_ALPHA, &v)) {
        app_log(s, true, "not a number: '%s'", text);
        s->message_is_error = true;
        return APP_FX_REDRAW;
    }
    switch (kind) {
    case PROMPT_RATIO: return act_ratio_set(s, v);
    case PROMPT_TARGET: return act_sens_target(s, v);
    case PROMPT_FILL: return act_plan_fill(s, v);
    case PROMPT_BITS: return act_quant_bits_set(s, v);
    case PROMPT_TENSOR_BITS: return act_quant_tensor_bits_set(s, v);
    default: return act_distill_alpha(s, v);
    }
}

int act_prompt_key(app_state *s, int key)
{
    int kind = s->prompt;
    char text[sizeof s->prompt_buf];

    if (kind == PROMPT_NONE)
        return APP_FX_NONE;
    if (kind == PROMPT_QUIT) {
        s->prompt = PROMPT_NONE;
        if (key == 'y' || key == 'Y')
            return APP_FX_QUIT;
        app_log(s, true, "not quitting; the job goes on");
        return APP_FX_REDRAW;
    }
    if (kind == PROMPT_OVERWRITE) {
        s->prompt = PROMPT_NONE;
        if (key == 'y' || key == 'Y')
            return act_job_compress(s, true);
        app_log(s, true, "not replaced: nothing started");
        return APP_FX_REDRAW;
    }
    if (key == TK_ESC) {
        s->prompt = PROMPT_NONE;
        return APP_FX_REDRAW;
    }
    if (key == TK_ENTER || key == '\r') {
        snprintf(text, sizeof text, "%s", s->prompt_buf);
        s->prompt = PROMPT_NONE;
        return prompt_enter(s, kind, text);
    }
    if (text_key(s->prompt_buf, sizeof s->prompt_buf, key))
        return APP_FX_REDRAW;
    return APP_FX_NONE;
}

static const char *skip_word(const char *p)
{
    while (*p && *p != ' ')
        p++;
    while (*p == ' ')
        p++;
    return p;
}

int act_command(app_state *s, const char *line)
{
    char word[32];
    const char *arg;
    int n = 0;

    while (*line == ' ' || *line == ':')
        line++;
    while (line[n] && line[n] != ' ' && n < (int)sizeof word - 1) {
        word[n] = line[n];
        n++;
    }
    word[n] = '\0';
    arg = skip_word(line);
    if (!word[0])
        return APP_FX_REDRAW;
    if (!strcmp(word, "w") || !strcmp(word, "write") || !strcmp(word, "save"))
        return act_plan_save(s, arg);
    if (!strcmp(word, "e") || !strcmp(word, "open") || !strcmp(word, "load"))
        return act_plan_load(s, arg);
    if (!strcmp(word, "q") || !strcmp(word, "quit"))
        return act_quit(s);
    if (!strcmp(word, "q!"))
        return APP_FX_QUIT;
    if (!strcmp(word, "teacher"))
        return act_teacher_set(s, arg);
    if (!strcmp(word, "data")) {
        snprintf(s->data_spec, sizeof s->data_spec, "%s", arg);
        app_log(s, true, "data set: %s", arg[0] ? arg : "(none)");
        return APP_FX_REDRAW;
    }
    if (!strcmp(word, "limit") || !strcmp(word, "epochs") || !strcmp(word, "iters")) {
        char *end;
        long v = strtol(arg, &end, 10);

        if (end == arg || *end || v < 0 || (v == 0 && word[0] == 'l')) {
            app_log(s, true, ":%s wants a %s number, not '%s'", word,
                    word[0] == 'l' ? "positive" : "non-negative", arg);
            s->message_is_error = true;
            return APP_FX_REDRAW;
        }
        if (word[0] == 'l')
            s->limit = v;
        else if (word[0] == 'e')
            s->ft_epochs = v;
        else
            s->ft_iters = v;
        app_log(s, true, "%s: %ld", word[0] == 'l' ? "samples per job" : word[0] == 'e'
                ? "fine-tuning epochs" : "fine-tuning iterations (0: epochs)", v);
        return APP_FX_REDRAW;
    }
    for (int i = 0; i < SCREEN_COUNT; i++)
        if (!strcasecmp(word, app_screen_names[i]))
            return act_screen_set(s, i);
    app_log(s, true, "unknown command ':%s' (w FILE, e FILE, data SPEC, teacher FILE, limit N, epochs N, "
            "iters N, q, "
            "or a screen name)", word);
    s->message_is_error = true;
    return APP_FX_REDRAW;
}

int act_click(app_state *s, int y, int x)
{
    int row = y - 2, list = app_list_rows(s, s->screen), n = 0, *cursor = NULL, top = 0;

    (void)x;
    /* rows: 0 title, 1 column header, 2.. the list */
    if (s->help_open || s->prompt || row < 0 || row >= list)
        return APP_FX_NONE;
    if (s->screen == SCREEN_LAYERS && s->tree_on && s->tree)
        return layers_tree_click(s, row);
    switch (s->screen) {
    case SCREEN_LAYERS:
        cursor = &s->cursor, top = s->top, n = s->n_rows;
        break;
    case SCREEN_SENS:
        cursor = &s->sens_cursor, top = s->sens_top, n = s->n_sens_rows;
        break;
    case SCREEN_PLAN:
        cursor = &s->plan_cursor, top = s->plan_top, n = s->groups ? s->groups->n : 0;
        break;
    case SCREEN_QUANT:
        cursor = &s->quant_cursor, top = s->quant_top, n = s->n_qt;
        break;
    case SCREEN_DISTILL:
        plan_distill_list(s, &n, NULL, NULL);
        cursor = &s->distill_cursor, top = s->distill_top;
        s->distill_on_pairs = false;
        break;
    case SCREEN_JOBS:
        if (s->job_detail)
            return APP_FX_NONE;
        cursor = &s->jobs_cursor, n = s->n_jobs;
        top = s->jobs_cursor >= list ? s->jobs_cursor - list + 1 : 0; /* as view_jobs draws */
        break;
    default:
        return APP_FX_NONE;
    }
    if (top + row >= n)
        return APP_FX_NONE;
    *cursor = top + row;
    if (s->screen == SCREEN_LAYERS) {
        layers_scroll(s);
        return APP_FX_REDRAW;
    }
    return act_move(s, 0);
}
