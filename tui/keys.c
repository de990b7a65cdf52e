/* Key -> action tables, one per screen plus the global keys. The key bar and
 * the help overlay are built from these tables, so they cannot disagree. */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

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
static int k_search(app_state *s, int key) { (void)key; return act_search_begin(s); }
static int k_search_next(app_state *s, int key) { (void)key; return act_search_next(s); }
static int k_search_prev(app_state *s, int key) { (void)key; return act_search_prev(s); }
static int k_log(app_state *s, int key) { (void)key; return act_screen_set(s, SCREEN_LOG); }
static int k_layers(app_state *s, int key) { (void)key; return act_screen_set(s, SCREEN_LAYERS); }

/* 1-8 (screens without typed values), F1-F8, Alt+1-8 (everywhere) */
static int k_screen(app_state *s, int key)
{
    if (key >= TK_F1 && key <= TK_F8)
        return act_screen_set(s, key - TK_F1);
    if (key >= TK_ALT_1 && key <= TK_ALT_8)
        return act_screen_set(s, key - TK_ALT_1);
    return act_screen_set(s, key - '1');
}
static int k_command(app_state *s, int key) { (void)key; return act_prompt_begin(s, PROMPT_COMMAND); }
static int k_quit_confirm(app_state *s, int key) { (void)key; return act_quit(s); }

/* s: the command prompt with ":w <model>.plan.yaml" filled in */
static int k_save(app_state *s, int key)
{
    const char *dot = strrchr(s->model_name, '.');

    (void)key;
    act_prompt_begin(s, PROMPT_COMMAND);
    snprintf(s->prompt_buf, sizeof s->prompt_buf, "w %.*s.plan.yaml",
             dot ? (int)(dot - s->model_name) > 200 ? 200 : (int)(dot - s->model_name) : 200,
             s->model_name);
    return APP_FX_REDRAW;
}

/* Sensitivity */
static int k_sens_run(app_state *s, int key) { (void)key; return act_sens_run(s); }
static int k_sens_target(app_state *s, int key) { (void)key; return act_prompt_begin(s, PROMPT_TARGET); }
static int k_sens_sort(app_state *s, int key)
{
    return act_sens_sort(s, key == 'a' ? 1 : key == 'd' ? 2 : 0);
}

/* Plan */
static int k_ratio_up(app_state *s, int key) { (void)key; return act_ratio_add(s, 0.05); }
static int k_ratio_down(app_state *s, int key) { (void)key; return act_ratio_add(s, -0.05); }
static int k_ratio_type(app_state *s, int key)
{
    if (act_prompt_begin(s, PROMPT_RATIO) == APP_FX_NONE)
        return APP_FX_NONE;
    return key == TK_ENTER || key == '\r' ? APP_FX_REDRAW : act_prompt_key(s, key);
}
static int k_measure(app_state *s, int key) { (void)key; return act_job_start(s, JOB_MEASURE); }
static int k_mark(app_state *s, int key) { (void)key; return act_plan_mark(s); }
static int k_apply(app_state *s, int key) { (void)key; return act_plan_apply_marked(s); }
static int k_reset(app_state *s, int key) { (void)key; return act_plan_reset(s); }
static int k_fill(app_state *s, int key) { (void)key; return act_prompt_begin(s, PROMPT_FILL); }

/* Quant */
static int k_qskip(app_state *s, int key) { (void)key; return act_quant_toggle(s); }
static int k_qbits(app_state *s, int key) { (void)key; return act_quant_bits(s); }
static int k_qalgo(app_state *s, int key) { (void)key; return act_quant_algo(s); }
static int k_qon(app_state *s, int key) { (void)key; return act_quant_enable(s); }
static int k_qerr(app_state *s, int key) { (void)key; return act_job_start(s, JOB_QERR); }
static int k_qsens(app_state *s, int key) { (void)key; return act_job_start(s, JOB_QSENS); }
static int k_qmode(app_state *s, int key) { (void)key; return act_quant_mode(s); }
static int k_act(app_state *s, int key) { (void)key; return act_job_start(s, JOB_ACT); }
static int k_tbits(app_state *s, int key)
{
    (void)key;
    return act_prompt_begin(s, PROMPT_TENSOR_BITS);
}
static int k_bits_type(app_state *s, int key)
{
    if (act_prompt_begin(s, PROMPT_BITS) == APP_FX_NONE)
        return APP_FX_NONE;
    return act_prompt_key(s, key);
}

/* Distill */
static int k_pick(app_state *s, int key) { (void)key; return act_distill_pick(s); }
static int k_focus(app_state *s, int key) { (void)key; return act_distill_focus(s); }
static int k_pdel(app_state *s, int key) { (void)key; return act_distill_delete(s); }
static int k_ploss(app_state *s, int key) { (void)key; return act_distill_loss(s); }
static int k_palpha(app_state *s, int key) { (void)key; return act_prompt_begin(s, PROMPT_ALPHA); }

/* Jobs */
static int k_job(app_state *s, int key)
{
    if (key == 'x')
        return act_job_compress(s, false);
    return act_job_start(s, key == 'e' ? JOB_EVAL : JOB_PTQ);
}
static int k_cancel(app_state *s, int key) { (void)key; return act_job_cancel(s); }
static int k_detail(app_state *s, int key) { (void)key; return act_job_detail(s); }

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

/* Layers: the table's keys, or the tree's in tree mode (T) */
static int k_lmove(app_state *s, int key)
{
    int page = app_body_rows(s) - 1, big = 1 << 30;
    int delta = key == TK_DOWN || key == 'j' ? 1 : key == TK_UP || key == 'k' ? -1
              : key == TK_PGDN ? (page < 1 ? 1 : page) : key == TK_PGUP ? -(page < 1 ? 1 : page)
              : key == TK_HOME || key == 'g' ? -big : big;

    if (s->tree_on)
        return act_tree_move(s, delta);
    return key == TK_PGDN || key == TK_PGUP ? act_page(s, delta > 0 ? 1 : -1) : act_move(s, delta);
}
static int k_lenter(app_state *s, int key)
{
    (void)key;
    return s->tree_on ? act_tree_enter(s) : act_inspect(s);
}
static int k_lright(app_state *s, int key)
{
    (void)key;
    return s->tree_on ? act_tree_open(s) : act_inspect(s);
}
static int k_lleft(app_state *s, int key) { (void)key; return act_tree_close(s); }
static int k_tree(app_state *s, int key) { (void)key; return act_tree_toggle(s); }
static int k_tree_all(app_state *s, int key)
{
    (void)key;
    if (!s->tree_on) {
        app_log(s, true, "* opens the scopes of the tree: press T first");
        return APP_FX_REDRAW;
    }
    return act_tree_all(s);
}
static int k_lsort(app_state *s, int key)
{
    if (s->tree_on) {
        app_log(s, true, "the tree keeps graph order: sort the table (T)");
        return APP_FX_REDRAW;
    }
    return k_sort(s, key);
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

/* Screens that take numbers: a digit or '.' starts the typed value (the
 * screens are then on Tab, F1-F8 and Alt+digit). */
#define DIGITS(fn, label, help)                                                   \
    {'0', label, help, fn, NULL}, {'1', label, help, fn, NULL},                   \
    {'2', label, help, fn, NULL}, {'3', label, help, fn, NULL},                   \
    {'4', label, help, fn, NULL}, {'5', label, help, fn, NULL},                   \
    {'6', label, help, fn, NULL}, {'7', label, help, fn, NULL},                   \
    {'8', label, help, fn, NULL}, {'9', label, help, fn, NULL},                   \
    {'.', label, help, fn, NULL}

/* without 'g' (Quant uses it) */
#define MOVES_NO_G(what)                                                          \
    {TK_DOWN, "j/k/Down/Up", "next / previous " what, k_down, NULL},              \
    {'j', "j/k/Down/Up", "next / previous " what, k_down, NULL},                  \
    {TK_UP, "j/k/Down/Up", "next / previous " what, k_up, NULL},                  \
    {'k', "j/k/Down/Up", "next / previous " what, k_up, NULL},                    \
    {TK_PGDN, "PgDn/PgUp", "page down / up", k_pgdn, NULL},                       \
    {TK_PGUP, "PgDn/PgUp", "page down / up", k_pgup, NULL},                       \
    {TK_HOME, "Home/End/G", "first / last " what, k_home, NULL},                  \
    {TK_END, "Home/End/G", "first / last " what, k_end, NULL},                    \
    {'G', "Home/End/G", "first / last " what, k_end, NULL}

static const key_binding layers_keys[] = {
    {TK_DOWN, "j/k/Down/Up", "next / previous layer", k_lmove, NULL},
    {'j', "j/k/Down/Up", "next / previous layer", k_lmove, NULL},
    {TK_UP, "j/k/Down/Up", "next / previous layer", k_lmove, NULL},
    {'k', "j/k/Down/Up", "next / previous layer", k_lmove, NULL},
    {TK_PGDN, "PgDn/PgUp", "page down / up", k_lmove, NULL},
    {TK_PGUP, "PgDn/PgUp", "page down / up", k_lmove, NULL},
    {TK_HOME, "g/G/Home/End", "first / last layer", k_lmove, NULL},
    {'g', "g/G/Home/End", "first / last layer", k_lmove, NULL},
    {TK_END, "g/G/Home/End", "first / last layer", k_lmove, NULL},
    {'G', "g/G/Home/End", "first / last layer", k_lmove, NULL},
    {TK_ENTER, "Enter", "inspect the layer (tree: open / close)", k_lenter, "Inspect"},
    {'\r', "Enter", "inspect the layer (tree: open / close)", k_lenter, NULL},
    {TK_RIGHT, "l/Right", "inspect the layer (tree: open the scope)", k_lright, NULL},
    {'l', "l/Right", "inspect the layer (tree: open the scope)", k_lright, NULL},
    {TK_LEFT, "h/Left", "tree: close, or go to the parent scope", k_lleft, NULL},
    {'h', "h/Left", "tree: close, or go to the parent scope", k_lleft, NULL},
    {'T', "T", "tree by name scope / table", k_tree, NULL},
    {'*', "*", "tree: open every scope (all open: close them)", k_tree_all, NULL},
    {'/', "/", "search layers by name or op", k_search, "Search"},
    {'n', "n/N", "next / previous search match", k_search_next, "Next"},
    {'N', "n/N", "next / previous search match", k_search_prev, NULL},
    {'o', "o", "sort by graph order (again: reverse)", k_lsort, NULL},
    {'a', "a", "sort by name (again: reverse)", k_lsort, NULL},
    {'t', "t", "sort by op type (again: reverse)", k_lsort, NULL},
    {'p', "p", "sort by params, biggest first (again: reverse)", k_lsort, "Params"},
    {'f', "f", "sort by FLOPs, biggest first (again: reverse)", k_lsort, "FLOPs"},
    {'q', "q", "quit (asks while a job runs)", k_back, "Quit"},
};

static const key_binding sens_keys[] = {
    MOVES("group"),
    {'r', "r", "run a sensitivity sweep as a job (--limit samples)", k_sens_run, "Run"},
    {'t', "t", "type a FLOPs reduction target: show the ratios chosen", k_sens_target, "Target"},
    {'o', "o", "sort by sweep order (again: reverse)", k_sens_sort, NULL},
    {'a', "a", "sort by name (again: reverse)", k_sens_sort, NULL},
    {'d', "d", "sort by drop at the largest ratio (again: reverse)", k_sens_sort, "Drop"},
    {'q', "q", "back to Layers", k_back, "Back"},
};

static const key_binding plan_keys[] = {
    MOVES("group"),
    {'+', "+/-", "raise / lower the ratio by 0.05", k_ratio_up, "Ratio"},
    {'=', "+/-", "raise / lower the ratio by 0.05", k_ratio_up, NULL},
    {'-', "+/-", "raise / lower the ratio by 0.05", k_ratio_down, NULL},
    DIGITS(k_ratio_type, "0-9/./Enter", "type a ratio: 0.3, .3, 30% (Enter sets it)"),
    {TK_ENTER, "0-9/./Enter", "type a ratio: 0.3, .3, 30% (Enter sets it)", k_ratio_type, NULL},
    {'\r', "0-9/./Enter", "type a ratio: 0.3, .3, 30% (Enter sets it)", k_ratio_type, NULL},
    {'m', "m", "measure the plan's drop (a job: prune, evaluate, no fine-tune)", k_measure, "Measure"},
    {' ', "Space", "mark / unmark the group", k_mark, "Mark"},
    {'a', "a", "apply the last ratio to every marked group", k_apply, NULL},
    {'r', "r", "reset every ratio to 0", k_reset, NULL},
    {'f', "f", "fill ratios for a FLOPs target from the sensitivity table", k_fill, "Fill"},
    {'q', "q", "back to Layers", k_back, "Back"},
};

static const key_binding quant_keys[] = {
    MOVES_NO_G("tensor"),
    {' ', "Space", "skip / quantize the tensor", k_qskip, "Skip"},
    {'b', "b", "bits: 8, 6, 4", k_qbits, "Bits"},
    {'t', "t", "bits of this tensor only, 2-8 (0: the plan's bits; tensor_bits)", k_tbits, NULL},
    {'g', "g", "activation range algorithm: abs_max avg hist KL mse", k_qalgo, "Algo"},
    {'e', "e", "post-training quantization in the plan: on / off", k_qon, NULL},
    {'a', "a", "quantize by QAT (QuantAware, trains :epochs) / by PTQ (QuantPost)", k_qmode, NULL},
    DIGITS(k_bits_type, "0-9", "type the bits, 2-8 (Enter sets them)"),
    {'m', "m", "measure each tensor's quantization error (SQNR, cosine; a job)", k_qerr, "Error"},
    {'v', "v", "quantization sensitivity: the metric lost with only each layer quantized (a job)",
     k_qsens, NULL},
    {'q', "q", "back to Layers", k_back, "Back"},
};

static const key_binding distill_keys[] = {
    MOVES("value"),
    {TK_ENTER, "Enter", "pick the teacher value, then the student value", k_pick, "Pick"},
    {'\r', "Enter", "pick the teacher value, then the student value", k_pick, NULL},
    {TK_LEFT, "h/l/Left/Right", "move between values and pairs", k_focus, NULL},
    {TK_RIGHT, "h/l/Left/Right", "move between values and pairs", k_focus, NULL},
    {'h', "h/l/Left/Right", "move between values and pairs", k_focus, NULL},
    {'l', "h/l/Left/Right", "move between values and pairs", k_focus, NULL},
    {'c', "c", "pair: next loss (soft_label l2 mse cosine)", k_ploss, NULL},
    {'a', "a", "pair: type its alpha", k_palpha, NULL},
    {'d', "d", "delete the pair", k_pdel, "Del"},
    {'/', "/", "search values by name or op", k_search, "Search"},
    {'n', "n/N", "next / previous search match", k_search_next, NULL},
    {'N', "n/N", "next / previous search match", k_search_prev, NULL},
    {'q', "q", "back (Esc also cancels a half-picked pair)", k_back, "Back"},
};

static const key_binding jobs_keys[] = {
    MOVES("job"),
    {'e', "e", "queue an evaluation of the model and of the plan", k_job, "Eval"},
    {'p', "p", "queue post-training quantization of the plan", k_job, "PTQ"},
    {'x', "x", "queue the whole plan as `pare compress` runs it (asks before replacing its output)",
     k_job, NULL},
    {'c', "c", "cancel the selected job", k_cancel, "Cancel"},
    {TK_ENTER, "Enter", "show / hide the job's result", k_detail, "Result"},
    {'\r', "Enter", "show / hide the job's result", k_detail, NULL},
    {'q', "q", "back to Layers", k_back, "Back"},
};

static const key_binding inspect_keys[] = {
    MOVES("line"),
    {'r', "r", "run :limit samples: this layer's output statistics (a job)", k_act, "Run"},
    {TK_LEFT, "h/Left", "back to Layers", k_layers, NULL},
    {'h', "h/Left", "back to Layers", k_layers, NULL},
    {'q', "q", "back to Layers", k_back, "Back"},
};

static const key_binding log_keys[] = {
    MOVES("line"),
    {'q', "q", "back to Layers", k_back, "Back"},
};

#define SCREENS "screen: Layers Inspect Sens Plan Quant Distill Jobs Log"
static const key_binding global_keys[] = {
    {'?', "?", "this help (type to filter, Esc closes)", k_help, "Help"},
    {TK_TAB, "Tab", "next screen", k_next, "Screen"},
    {TK_BTAB, "S-Tab", "previous screen", k_prev, NULL},
    {':', ":", "command: w FILE, e FILE, data SPEC, limit N, epochs N, q", k_command, "Cmd"},
    {'s', "s", "save the plan as a job file (:w)", k_save, "Save"},
    {'1', "1-8", SCREENS " (Plan, Quant: digits type)", k_screen, NULL},
    {'2', "1-8", SCREENS " (Plan, Quant: digits type)", k_screen, NULL},
    {'3', "1-8", SCREENS " (Plan, Quant: digits type)", k_screen, NULL},
    {'4', "1-8", SCREENS " (Plan, Quant: digits type)", k_screen, NULL},
    {'5', "1-8", SCREENS " (Plan, Quant: digits type)", k_screen, NULL},
    {'6', "1-8", SCREENS " (Plan, Quant: digits type)", k_screen, NULL},
    {'7', "1-8", SCREENS " (Plan, Quant: digits type)", k_screen, NULL},
    {'8', "1-8", SCREENS " (Plan, Quant: digits type)", k_screen, NULL},
    {TK_F1, "F1-F8/Alt+1-8", SCREENS " (on every screen)", k_screen, NULL},
    {TK_F2, "F1-F8/Alt+1-8", SCREENS " (on every screen)", k_screen, NULL},
    {TK_F3, "F1-F8/Alt+1-8", SCREENS " (on every screen)", k_screen, NULL},
    {TK_F4, "F1-F8/Alt+1-8", SCREENS " (on every screen)", k_screen, NULL},
    {TK_F5, "F1-F8/Alt+1-8", SCREENS " (on every screen)", k_screen, NULL},
    {TK_F6, "F1-F8/Alt+1-8", SCREENS " (on every screen)", k_screen, NULL},
    {TK_F7, "F1-F8/Alt+1-8", SCREENS " (on every screen)", k_screen, NULL},
    {TK_F8, "F1-F8/Alt+1-8", SCREENS " (on every screen)", k_screen, NULL},
    {TK_ALT_1, "F1-F8/Alt+1-8", SCREENS " (on every screen)", k_screen, NULL},
    {TK_ALT_2, "F1-F8/Alt+1-8", SCREENS " (on every screen)", k_screen, NULL},
    {TK_ALT_3, "F1-F8/Alt+1-8", SCREENS " (on every screen)", k_screen, NULL},
    {TK_ALT_4, "F1-F8/Alt+1-8", SCREENS " (on every screen)", k_screen, NULL},
    {TK_ALT_5, "F1-F8/Alt+1-8", SCREENS " (on every screen)", k_screen, NULL},
    {TK_ALT_6, "F1-F8/Alt+1-8", SCREENS " (on every screen)", k_screen, NULL},
    {TK_ALT_7, "F1-F8/Alt+1-8", SCREENS " (on every screen)", k_screen, NULL},
    {TK_ALT_8, "F1-F8/Alt+1-8", SCREENS " (on every screen)", k_screen, NULL},
    {'L', "L", "show the Log", k_log, NULL},
    {TK_F10, "F10", "quit (asks while a job runs)", k_quit_confirm, NULL},
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
    case SCREEN_SENS:
        *n = N(sens_keys);
        return sens_keys;
    case SCREEN_PLAN:
        *n = N(plan_keys);
        return plan_keys;
    case SCREEN_QUANT:
        *n = N(quant_keys);
        return quant_keys;
    case SCREEN_DISTILL:
        *n = N(distill_keys);
        return distill_keys;
    case SCREEN_JOBS:
        *n = N(jobs_keys);
        return jobs_keys;
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

bool keys_screen_has(int screen, int key)
{
    int n;
    const key_binding *t = keys_screen(screen, &n);

    for (int i = 0; i < n; i++)
        if (t[i].key == key)
            return true;
    return false;
}

int keys_dispatch(app_state *s, int key, int mouse_y, int mouse_x)
{
    const key_binding *t;
    int n;

    if (key == TK_INTERRUPT)
        return APP_FX_QUIT;
    if (key == TK_RESIZE)
        return act_tick(s) | APP_FX_REDRAW; /* the loop reads the new size */
    if (key == TK_TICK)
        return act_tick(s);
    if (s->prompt)
        return act_prompt_key(s, key);
    if (s->help_open)
        return act_help_key(s, key);
    if (s->searching)
        return act_search_key(s, key);
    if (key == TK_MOUSE)
        return act_click(s, mouse_y, mouse_x);
    if (key == TK_ESC)
        return s->screen != SCREEN_LAYERS ? act_back(s) : APP_FX_NONE;
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
