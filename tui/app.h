/* The workbench's state and actions.
 *
 * app_state is plain data. Actions (`act_<verb>`) change it and return effect
 * flags (APP_FX_*); they never draw and never touch the terminal, so they are
 * tested without one (tests/tui/test_app.c); the plan's actions live in
 * tui/plan.c, the jobs' in tui/jobs.c. Views (`view_<screen>_draw`,
 * declared at the end) draw a state into a grid; tui/keys.c maps keys to
 * actions per screen; tui/term.c is the only file that talks to ncurses.
 *
 * Errors never leave the workbench: an action that fails puts the message on
 * the message line and in the Log (app_log). Ownership: the state owns the
 * graph, its statistics and every buffer; app_fini cancels and waits for the
 * jobs, then frees them. Not thread-safe: only the UI thread touches a state;
 * jobs run on a worker with copies (tui/jobs.h) and their events are applied
 * by act_tick. */
#ifndef PARE_TUI_APP_H
#define PARE_TUI_APP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "grid.h"
#include "jobs.h"
#include "pare/error.h"
#include "pare/graph.h"
#include "pare/prune.h"
#include "pare/sensitivity.h"
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
    TK_BTAB, TK_BACKSPACE, TK_RESIZE, TK_MOUSE, TK_F10, TK_INTERRUPT,
    TK_TICK,                  /* no key within the poll interval: apply job events */
    TK_F1, TK_F2, TK_F3, TK_F4, TK_F5, TK_F6, TK_F7, TK_F8,  /* screens 1..8 */
    TK_ALT_1, TK_ALT_2, TK_ALT_3, TK_ALT_4, TK_ALT_5, TK_ALT_6, TK_ALT_7, TK_ALT_8
                              /* Esc then a digit (Alt+digit): screens 1..8 */
};

/* Effects an action asks of the loop. */
enum { APP_FX_NONE = 0, APP_FX_REDRAW = 1, APP_FX_QUIT = 2 };

enum { SCREEN_LAYERS, SCREEN_INSPECT, SCREEN_SENS, SCREEN_PLAN, SCREEN_QUANT, SCREEN_DISTILL,
       SCREEN_JOBS, SCREEN_LOG, SCREEN_COUNT };
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
    int n_channels;           /* dims[0] (weights) or dims[1] (activations) when ndim >= 2 */
    double *l1;               /* per channel: weights the L1 norm, activations the mean |x|
                                 (owned), n_channels */
    bool activation;          /* a layer output measured on data (dims[0]: samples) */
} app_weight;

/* Line prompts (the message line becomes an input line). */
enum { PROMPT_NONE, PROMPT_COMMAND, PROMPT_RATIO, PROMPT_TARGET, PROMPT_FILL, PROMPT_ALPHA,
       PROMPT_QUIT, PROMPT_BITS, PROMPT_OVERWRITE, PROMPT_TENSOR_BITS };

/* A tensor that would get Q/DQ (input of a Conv/Gemm/MatMul). */
typedef struct app_qtensor {
    int value;                /* graph value index */
    int node;                 /* first Conv/Gemm/MatMul reading it */
    bool is_weight;           /* initializer (skipping it skips the node) */
    bool skip;                /* in QuantPost.skip_tensor_list */
    int bits;                 /* QuantPost.tensor_bits for this tensor; 0: the plan's bits */
    double snr_db;            /* weights: SNR of the last PTQ job; NAN unknown */
    double err_sqnr, err_cos; /* the last error-table job (m on Quant): SQNR in dB and
                                 cosine of x vs DQ(Q(x)); NAN unknown */
    double qsens_drop;        /* the last quant-sensitivity job (v): metric lost with only
                                 its node quantized (points of top-1 %, or 100 x cosine);
                                 NAN unknown */
} app_qtensor;

/* A distillation pair: values of the teacher (the model itself, or the
 * teacher model when one is set) and of the student (the planned model). */
typedef struct app_pair {
    int teacher, student;     /* value indices in the teacher's / the model's graph */
    int loss;                 /* pare_job_loss */
    double alpha;
} app_pair;

enum { JOB_SENS, JOB_EVAL, JOB_PTQ, JOB_COMPRESS,
       JOB_MEASURE,               /* Plan m: prune by the plan, measure the drop on the sweep's data */
       JOB_QERR,                  /* Quant m: per-tensor quantization error table */
       JOB_QSENS,                 /* Quant v: quantization sensitivity per layer */
       JOB_ACT };                 /* Inspect r: the layer's output on a few batches */
enum { JS_QUEUED, JS_RUNNING, JS_DONE, JS_FAILED, JS_CANCELED };
#define APP_JOB_LINES 12

/* One job as the Jobs screen shows it. `work` is the job's argument (inputs
 * and results, tui/plan.c); the worker owns it until the job's DONE event. */
typedef struct app_job {
    int id;                   /* jobs queue id */
    int kind;                 /* JOB_* */
    int state;                /* JS_* */
    char name[96];
    char stage[32], unit[16], detail[128];
    int64_t done, total;
    double rate, loss, metric, seconds;
    double t_start;           /* app_now() when it started (elapsed ticks from it) */
    double event_seconds;     /* `seconds` when the last progress event came (the ETA
                                 counts down from it) */
    void *work;               /* owned (see above) */
    char result[APP_JOB_LINES][100]; /* before/after table when done */
    int n_result;
    char error[300];
} app_job;

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
    bool searching;           /* typing after '/' (Layers, Distill's values) */
    char search[128];         /* last search text */
    int search_screen;        /* screen the search text belongs to */
    struct layers_tree *tree; /* scopes of the node names (owned; built on open) */
    bool tree_on;             /* T: the tree instead of the table */

    /* Inspect */
    int inspect_node;         /* -1: none */
    app_weight act;           /* output statistics of act_node (numel 0: none yet) */
    int act_node;             /* the node act describes; -1: none */
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

    /* Prompt on the message line */
    int prompt;               /* PROMPT_* */
    char prompt_buf[256];

    /* Settings for jobs */
    char data_dir[1024];      /* fashion-mnist search directory ("" none) */
    long limit;               /* samples used by sweeps and evaluation */
    long ft_epochs;           /* fine-tuning epochs written to a saved plan (0: none) */
    long ft_iters;            /* or iterations (TrainConfig.train_iter; 0: epochs) */

    /* Plan: per prune group (groups found on graph; NULL when none) */
    pare_prune_groups *groups;
    double *ratio;            /* planned ratio per group */
    bool *marked;             /* Space marks */
    int *node_group;          /* per node: the group it produces, -1 */
    int plan_cursor, plan_top;
    double plan_step_value;   /* value `a` applies (last typed or changed) */
    int64_t plan_params;      /* of the planned model */
    double plan_flops;
    bool plan_valid;          /* totals computed */
    double plan_loss;         /* predicted drop: the sum of single-group drops; NAN without */
    double plan_measured;     /* drop the last `m` job measured (no fine-tune); NAN none */
    bool plan_measured_top1;  /* ...in top-1 (points of %) or cosine */
    uint64_t plan_measured_key; /* app_plan_key of the ratios it measured */
    int plan_measure_job;     /* id of the measuring job while it runs, 0 none */

    /* Sensitivity */
    pare_sens_result *sens;   /* owned; NULL before a sweep; while a sweep runs, its points
                                 so far (built on the UI thread from the job's points) */
    pare_sens_result *sens_prev; /* owned: the table before the running sweep (back on cancel) */
    int sens_live_job;        /* id of the sweep whose points s->sens shows, 0 none */
    char sens_data[256];      /* data spec and samples the table was measured on */
    long sens_limit;
    int sens_cursor, sens_top;
    int sens_sort, sens_desc; /* 0 sweep order, 1 name, 2 worst drop */
    int *sens_rows;           /* display order of groups with points */
    int n_sens_rows;
    double sens_target;       /* FLOPs fraction of the last `t`; 0 none */
    double *sens_pick;        /* ratios pare_prune_select chose (per group) */
    double sens_pick_loss, sens_pick_flops;

    /* Quant */
    app_qtensor *qt;
    int n_qt;
    int quant_cursor, quant_top;
    bool quant_on;            /* the plan quantizes */
    bool quant_qat;           /* ...with QuantAware (QAT, trained per TrainConfig), not QuantPost */
    int quant_bits;           /* 8, 6 or 4 (weights and activations) */
    int quant_algo;           /* pare_job_algo */
    int qerr_bits, qerr_algo; /* settings of the errors in qt (0 bits: none yet) */
    bool qerr_planned;        /* ...measured on the pruned plan */
    int qsens_bits, qsens_algo; /* settings of qt's qsens_drop (0 bits: none yet) */

    /* Distill */
    int *dvalues;             /* candidate values (activations with a known shape) */
    int n_dvalues;
    pare_graph *teacher;      /* owned teacher model (:teacher FILE); NULL: the model itself */
    pare_stats *teacher_stats;
    char teacher_path[1024];
    int *tvalues;             /* the teacher model's candidate values */
    int n_tvalues;
    int distill_cursor, distill_top;
    int distill_teacher;      /* value picked as teacher, -1 none */
    bool distill_on_pairs;    /* focus on the pair list */
    app_pair *pairs;
    int n_pairs;
    int pair_cursor;

    /* Jobs */
    jobs *queue;              /* owned; created with the first job */
    app_job *jobs;            /* owned */
    int n_jobs, cap_jobs;
    int jobs_cursor;
    bool job_detail;          /* Enter: the selected job's result */
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
/* Sensitivity: rows of the curve pane under the table; Distill: rows of the
 * pair list under the values. */
#define APP_CURVE_ROWS 8
#define APP_PAIR_ROWS 5
#define APP_JOB_PANE 5     /* Jobs: the selected job's status under the list */
/* Rows of a screen's scrolled list (what is left of the body rows). */
int app_list_rows(const app_state *s, int screen);
int app_inspect_lines(const app_state *s);
const char *app_node_label(const app_state *s, int node, char *buf, size_t size);
/* A prune group as every screen names it: its first producer's node label
 * (what Layers and Sens show); its value name (grp->name, the job file's
 * Layers key) when it has no producer. */
const char *app_group_label(const app_state *s, int gi, char *buf, size_t size);
/* Monotonic seconds (the jobs' elapsed time and ETA). */
double app_now(void);
/* A key of the plan's ratios: equal keys, same ratios. */
uint64_t app_plan_key(const app_state *s);

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
int act_search_prev(app_state *s);          /* 'N' */
int act_help_toggle(app_state *s);
int act_help_key(app_state *s, int key);    /* filter text, Backspace, Esc */
int act_back(app_state *s);                 /* 'q': close, go back, or quit */
int act_click(app_state *s, int y, int x);  /* mouse click at a screen cell */
int act_quit(app_state *s);                 /* F10, q on Layers: confirms while a job runs */
int act_prompt_begin(app_state *s, int kind);
int act_prompt_key(app_state *s, int key);  /* text, Backspace, Enter, Esc */
int act_command(app_state *s, const char *line); /* a `:` command: w FILE, e FILE, data SPEC... */
int act_tick(app_state *s);                 /* applies job events */

/* ---- plan, sensitivity, quant, distill, jobs (tui/plan.c) ---- */
/* (Re)builds the plan for the open model: groups, quant tensors, values. */
void plan_reset_model(app_state *s);
void plan_free(app_state *s);
/* Recomputes params/FLOPs of the planned model and the predicted loss. */
void plan_update_totals(app_state *s);
/* Group of a node (-1) and that group's planned ratio. */
int plan_group_of_node(const app_state *s, int node);
const char *plan_loss_label(int loss);
const char *plan_algo_label(int algo);
/* Quant state of a node's tensors: 0 not quantized, 1 quantized, 2 skipped. */
int plan_quant_of_node(const app_state *s, int node);
/* Distill marker of a node's output: 0 none, 'T' teacher, 'S' student, 'B' both. */
int plan_distill_of_node(const app_state *s, int node);
/* Shape compatibility of teacher and student values: 0 same shape, 1 channels
 * differ (needs an adapter), -1 incompatible; text describes it. */
int plan_pair_compat(const app_state *s, int teacher, int student, char *text, size_t size);

int act_ratio_add(app_state *s, double delta);   /* Plan: +/- */
int act_ratio_set(app_state *s, double ratio);   /* Plan: typed */
int act_plan_mark(app_state *s);                 /* Space */
int act_plan_apply_marked(app_state *s);         /* a */
int act_plan_reset(app_state *s);                /* r */
int act_plan_fill(app_state *s, double target);  /* f: ratios from the sweep for a FLOPs target */
int act_sens_run(app_state *s);                  /* Sensitivity: r starts a sweep job */
int act_sens_sort(app_state *s, int column);
int act_sens_target(app_state *s, double target); /* t: ratios pare_prune_select picks */
int act_quant_toggle(app_state *s);              /* Space: skip / quantize */
/* Statistics of a float tensor into w (histogram, per-channel values along
 * channel_axis: L1 norms for weights, mean |x| for activations). */
bool app_tensor_stats(app_weight *w, const char *name, int value, const pare_tensor *t,
                      bool activation);
/* a: quantize the plan with QAT (QuantAware) / PTQ (QuantPost). */
int act_quant_mode(app_state *s);
/* t: the bits of the tensor under the cursor (2..8; 0 = the plan's bits). */
int act_quant_tensor_bits_set(app_state *s, double bits);
int act_quant_bits(app_state *s);                /* b: 8 -> 6 -> 4 */
int act_quant_bits_set(app_state *s, double bits); /* typed: 2..8 */
int act_quant_algo(app_state *s);                /* g */
int act_quant_enable(app_state *s);              /* e: PTQ in the plan on/off */
int act_distill_pick(app_state *s);              /* Enter: teacher, then student */
int act_distill_delete(app_state *s);            /* d */
int act_distill_loss(app_state *s);              /* l: next loss */
int act_distill_alpha(app_state *s, double alpha);
int act_distill_focus(app_state *s);             /* Left/Right: values or pairs */
int act_teacher_set(app_state *s, const char *path); /* :teacher FILE ("" = the model itself) */
/* The values the Distill list shows now (the teacher model's while a teacher
 * is picked from one), their graph and statistics. */
const int *plan_distill_list(const app_state *s, int *n, const pare_graph **g, const pare_stats **st);
/* Queues a job on a copy of the model and plan: JOB_EVAL, JOB_PTQ,
 * JOB_MEASURE (refused without ratios; the sweep's data and samples when
 * there is a sweep), JOB_QERR, JOB_COMPRESS (writes <model>.plan.out). */
int act_job_start(app_state *s, int kind);
/* x: JOB_COMPRESS; when <model>.plan.out exists and !replace it opens
 * PROMPT_OVERWRITE instead (y there calls this with replace). */
int act_job_compress(app_state *s, bool replace);
int act_job_cancel(app_state *s);                /* c */
int act_job_detail(app_state *s);                /* Enter */
/* Saves the plan as a job file (pare compress -c FILE); loads one back. */
int act_plan_save(app_state *s, const char *path);
int act_plan_load(app_state *s, const char *path);
/* Jobs queued or running? */
bool app_jobs_busy(const app_state *s);

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
/* Does the screen's own table bind key (shadowing a global binding)? */
bool keys_screen_has(int screen, int key);
/* Handles one key (modes first: help overlay, search prompt). Returns APP_FX_*. */
int keys_dispatch(app_state *s, int key, int mouse_y, int mouse_x);

/* ---- views (draw s into g; never change s) ---- */
void view_app_draw(const app_state *s, grid *g);   /* the whole screen */
void view_layers_draw(const app_state *s, grid *g, int y0, int rows);

/* ---- Layers tree mode (tui/layers_tree.c; drawn by view_layers_draw) ----
 * Node names split at '/' into scopes: "/layer1/conv1/Conv" is node "Conv"
 * in scope "conv1" in top-level scope "layer1"; a name without '/' is a
 * top-level node. Items keep graph order: a scope sits where its first node
 * is, its children in the order they first appear. layers_tree_build runs
 * once per model (act_open_model) and owns everything in s->tree; labels
 * borrow the graph's node names, so the tree lives no longer than the graph
 * (layers_tree_free runs when the model closes). Only the visible rows are
 * recomputed, when a scope opens or closes. */
typedef struct layers_tree_item {
    int node;                 /* graph node; -1: a scope */
    int parent;               /* item; -1 at the top level */
    int first_child, next;    /* items; -1 none */
    int depth;                /* 0 at the top level */
    const char *label;        /* segment of the node name, len bytes (borrowed); NULL for an
                                 unnamed node (app_node_label names it) */
    int len;
    int n_nodes;              /* scope: nodes under it, at any depth */
    int64_t params;           /* scope: sum over those nodes */
    double flops;             /* scope: sum of their known, not folded FLOPs */
    bool flops_partial;       /* scope: some node's FLOPs are unknown */
    bool open;                /* scope: children shown */
} layers_tree_item;

typedef struct layers_tree {
    layers_tree_item *items;  /* n_items */
    int n_items, n_scopes;
    int first_top;            /* first top-level item; -1 none */
    int *item_of_node;        /* per graph node: its item */
    int *rows;                /* visible items, top to bottom */
    int n_rows;
    int cursor, top;          /* selected row, first visible row */
} layers_tree;

/* Builds s->tree for the open model (frees the old one); false when out of
 * memory or no model (s->tree is then NULL). */
bool layers_tree_build(app_state *s);
void layers_tree_free(app_state *s);
/* First row the view shows: the stored top, moved so the cursor is visible
 * in app_body_rows(s) rows. */
int layers_tree_top(const app_state *s);
/* Search in tree mode (act_search_*): walks the nodes in graph order from
 * the cursor's node (a scope: its first node), skipping it when skip; opens
 * the scopes of the match. Mouse: row of the list clicked. */
int layers_tree_search(app_state *s, bool skip, int dir);
int layers_tree_click(app_state *s, int row);
int act_tree_toggle(app_state *s);          /* T: tree / table */
int act_tree_move(app_state *s, int delta); /* cursor by delta rows */
int act_tree_open(app_state *s);            /* l/Right: open; open already: first child; node: Inspect */
int act_tree_enter(app_state *s);           /* Enter: open / close; node: Inspect */
int act_tree_close(app_state *s);           /* h/Left: close; closed or a node: to the parent */
int act_tree_all(app_state *s);             /* *: open every scope; all open: close every one */
/* ---- end of Layers tree mode ---- */
void view_inspect_draw(const app_state *s, grid *g, int y0, int rows);
void view_log_draw(const app_state *s, grid *g, int y0, int rows);
void view_sens_draw(const app_state *s, grid *g, int y0, int rows);
void view_plan_draw(const app_state *s, grid *g, int y0, int rows);
void view_quant_draw(const app_state *s, grid *g, int y0, int rows);
void view_distill_draw(const app_state *s, grid *g, int y0, int rows);
void view_jobs_draw(const app_state *s, grid *g, int y0, int rows);
void view_help_draw(const app_state *s, grid *g);
/* Shared drawing helpers (tui/view_plan.c). */
void view_hbar(grid *g, int x, int y, int w, double frac, uint8_t color);

/* ---- the terminal (tui/term.c, the only ncurses user) ---- */
/* Starts the screen; false when the terminal cannot be used. */
bool term_init(void);
/* Restores the terminal (also done at exit). */
void term_fini(void);
bool term_utf8(void);
void term_size(int *rows, int *cols);
void term_blit(const grid *g);
/* Waits up to ~100 ms for the next key (TK_* or a code point); TK_TICK when
 * none came; TK_INTERRUPT after SIGINT/SIGTERM; TK_MOUSE with the clicked cell. */
int term_read_key(int *mouse_y, int *mouse_x);

/* ---- entry points (tui/cmd_tui.c) ---- */
int cmd_tui(int argc, char **argv);
/* `pare` with no arguments: opens the demo model. Returns -1 when stdin or
 * stdout is not a terminal (the caller prints usage). */
int cmd_tui_default(const char *argv0);

#endif
