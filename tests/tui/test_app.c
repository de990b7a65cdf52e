/* Workbench actions without a terminal: tui/app.c and tui/keys.c. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pare/job.h"

#include "pare/alloc.h"

#include "app.h"
#include "grid.h"

#define LENET PARE_TEST_DATA "/lenet5.onnx"
#define RESNET PARE_TEST_DATA "/resnet8.onnx"

static int setup(void **state)
{
    static app_state s;

    app_init(&s);
    act_resize(&s, 24, 80);
    act_open_model(&s, LENET, NULL);
    *state = &s;
    return s.graph ? 0 : -1;
}

static int teardown(void **state)
{
    app_fini(*state);
    return 0;
}

static int row_of(const app_state *s, const char *name)
{
    for (int i = 0; i < s->n_rows; i++)
        if (!strcmp(s->graph->nodes[s->order[i]].name, name))
            return i;
    return -1;
}

static void test_open_lists_every_node(void **state)
{
    app_state *s = *state;

    assert_int_equal(s->n_rows, 12);
    assert_int_equal(s->n_rows, s->graph->n_nodes);
    assert_int_equal(s->stats->params, 61706);
    assert_string_equal(s->model_name, "lenet5.onnx");
    assert_int_equal(s->screen, SCREEN_LAYERS);
    assert_non_null(strstr(s->message, "12 layers"));
    assert_true(s->n_log >= 1);
}

static void test_open_missing_reports_and_keeps_model(void **state)
{
    app_state *s = *state;
    int fx = act_open_model(s, "/nonexistent/model.onnx", NULL);

    assert_int_equal(fx, APP_FX_REDRAW);
    assert_true(s->message_is_error);
    assert_non_null(strstr(s->message, "/nonexistent/model.onnx"));
    assert_non_null(strstr(s->log[s->n_log - 1], "error:"));
    assert_non_null(s->graph); /* the open model survives */
    assert_int_equal(s->n_rows, 12);
}

static void test_cursor_moves_and_clamps(void **state)
{
    app_state *s = *state;

    assert_int_equal(keys_dispatch(s, 'j', 0, 0), APP_FX_REDRAW);
    keys_dispatch(s, TK_DOWN, 0, 0);
    assert_int_equal(s->cursor, 2);
    keys_dispatch(s, 'k', 0, 0);
    assert_int_equal(s->cursor, 1);
    keys_dispatch(s, TK_END, 0, 0);
    assert_int_equal(s->cursor, 11);
    keys_dispatch(s, 'j', 0, 0);
    assert_int_equal(s->cursor, 11);
    keys_dispatch(s, TK_HOME, 0, 0);
    assert_int_equal(s->cursor, 0);
    keys_dispatch(s, 'k', 0, 0);
    assert_int_equal(s->cursor, 0);
}

static void test_small_window_scrolls(void **state)
{
    app_state *s = *state;
    int body;

    act_resize(s, 16, 60);
    body = app_body_rows(s);
    assert_int_equal(body, 11);
    keys_dispatch(s, TK_PGDN, 0, 0);
    assert_int_equal(s->cursor, body - 1);
    keys_dispatch(s, TK_PGDN, 0, 0);
    assert_int_equal(s->cursor, 11);
    assert_int_equal(s->top, 12 - body); /* cursor visible at the bottom */
    keys_dispatch(s, TK_PGUP, 0, 0);
    assert_true(s->cursor >= s->top && s->cursor < s->top + body);
}

static void test_sort_params_then_reverse(void **state)
{
    app_state *s = *state;

    keys_dispatch(s, 'p', 0, 0);
    assert_int_equal(s->sort, SORT_PARAMS);
    for (int i = 1; i < s->n_rows; i++)
        assert_true(s->stats->layers[s->order[i - 1]].params >= s->stats->layers[s->order[i]].params);
    assert_string_equal(s->graph->nodes[s->order[0]].name, "/fc1/Gemm");
    keys_dispatch(s, 'p', 0, 0);
    for (int i = 1; i < s->n_rows; i++)
        assert_true(s->stats->layers[s->order[i - 1]].params <= s->stats->layers[s->order[i]].params);
    keys_dispatch(s, 'o', 0, 0);
    for (int i = 0; i < s->n_rows; i++)
        assert_int_equal(s->order[i], i);
}

static void test_sort_keeps_selection(void **state)
{
    app_state *s = *state;

    s->cursor = row_of(s, "/conv2/Conv");
    keys_dispatch(s, 'f', 0, 0);
    assert_string_equal(s->graph->nodes[s->order[s->cursor]].name, "/conv2/Conv");
    assert_int_equal(s->cursor, 0); /* the most FLOPs */
}

static void test_search_and_next_wrap(void **state)
{
    app_state *s = *state;
    const char *text = "gemm";

    keys_dispatch(s, '/', 0, 0);
    assert_true(s->searching);
    for (const char *p = text; *p; p++)
        keys_dispatch(s, *p, 0, 0);
    keys_dispatch(s, TK_ENTER, 0, 0);
    assert_false(s->searching);
    assert_string_equal(s->graph->nodes[s->order[s->cursor]].name, "/fc1/Gemm");
    keys_dispatch(s, 'n', 0, 0);
    assert_string_equal(s->graph->nodes[s->order[s->cursor]].name, "/fc2/Gemm");
    keys_dispatch(s, 'n', 0, 0);
    assert_string_equal(s->graph->nodes[s->order[s->cursor]].name, "/fc3/Gemm");
    keys_dispatch(s, 'n', 0, 0);
    assert_string_equal(s->graph->nodes[s->order[s->cursor]].name, "/fc1/Gemm");
}

static void test_search_no_match_and_backspace(void **state)
{
    app_state *s = *state;

    keys_dispatch(s, '/', 0, 0);
    keys_dispatch(s, 'z', 0, 0);
    keys_dispatch(s, 'q', 0, 0); /* typed, not quit */
    assert_string_equal(s->search, "zq");
    assert_true(s->message_is_error);
    keys_dispatch(s, TK_BACKSPACE, 0, 0);
    assert_string_equal(s->search, "z");
    keys_dispatch(s, TK_ESC, 0, 0);
    assert_false(s->searching);
    assert_int_equal(s->cursor, 0);
}

static void test_inspect_conv_weights(void **state)
{
    app_state *s = *state;
    const pare_value *v;
    const float *x;
    double lo = INFINITY, hi = -INFINITY, l1 = 0;
    int64_t total = 0;

    s->cursor = row_of(s, "/conv1/Conv");
    assert_int_equal(keys_dispatch(s, TK_ENTER, 0, 0), APP_FX_REDRAW);
    assert_int_equal(s->screen, SCREEN_INSPECT);
    assert_int_equal(s->n_weights, 2); /* weight and bias */
    v = &s->graph->values[s->weights[0].value];
    x = pare_tensor_f32(v->init);
    for (int i = 0; i < 150; i++) {
        lo = fmin(lo, x[i]);
        hi = fmax(hi, x[i]);
    }
    for (int i = 0; i < 25; i++)
        l1 += fabs(x[25 + i]); /* channel 1 of [6, 1, 5, 5] */
    assert_int_equal(s->weights[0].numel, 150);
    assert_true(s->weights[0].min == lo && s->weights[0].max == hi);
    assert_true(s->weights[0].std > 0);
    assert_int_equal(s->weights[0].n_channels, 6);
    assert_true(fabs(s->weights[0].l1[1] - l1) < 1e-9);
    for (int b = 0; b < APP_HIST_BINS; b++)
        total += s->weights[0].hist[b];
    assert_int_equal(total, 150);
    assert_int_equal(s->weights[1].n_channels, 0); /* bias: 1-D */
    /* the line offering r (output statistics) and a blank, then per weight:
       name, statistics, quantization error, histogram, range, channels, blank */
    assert_int_equal(app_inspect_lines(s),
                     2 + (3 + APP_HIST_ROWS + 1 + 1 + 6 + 1) + (3 + APP_HIST_ROWS + 1 + 1));
    keys_dispatch(s, 'j', 0, 0);
    assert_int_equal(s->inspect_top, 1);
    keys_dispatch(s, TK_END, 0, 0);
    assert_int_equal(s->inspect_top, app_inspect_lines(s) - app_body_rows(s));
    assert_int_equal(keys_dispatch(s, 'q', 0, 0), APP_FX_REDRAW); /* back, not quit */
    assert_int_equal(s->screen, SCREEN_LAYERS);
}

static void test_screens_cycle(void **state)
{
    app_state *s = *state;

    keys_dispatch(s, TK_TAB, 0, 0);
    assert_int_equal(s->screen, SCREEN_INSPECT);
    for (int i = 2; i < SCREEN_COUNT; i++)
        keys_dispatch(s, TK_TAB, 0, 0);
    assert_int_equal(s->screen, SCREEN_LOG);
    keys_dispatch(s, TK_TAB, 0, 0);
    assert_int_equal(s->screen, SCREEN_LAYERS);
    keys_dispatch(s, TK_BTAB, 0, 0);
    assert_int_equal(s->screen, SCREEN_LOG);
    assert_int_equal(keys_dispatch(s, 'q', 0, 0), APP_FX_REDRAW);
    assert_int_equal(s->screen, SCREEN_LAYERS);
    assert_int_equal(keys_dispatch(s, 'q', 0, 0), APP_FX_QUIT);
}

static void test_help_filters_and_closes(void **state)
{
    app_state *s = *state;

    keys_dispatch(s, '?', 0, 0);
    assert_true(s->help_open);
    assert_int_equal(keys_dispatch(s, 'j', 0, 0), APP_FX_REDRAW); /* typed into the filter */
    assert_string_equal(s->help_filter, "j");
    assert_int_equal(s->cursor, 0);
    keys_dispatch(s, 'q', 0, 0); /* non-empty filter: typed */
    assert_true(s->help_open);
    assert_string_equal(s->help_filter, "jq");
    keys_dispatch(s, TK_ESC, 0, 0);
    assert_false(s->help_open);
    keys_dispatch(s, '?', 0, 0);
    assert_int_equal(keys_dispatch(s, 'q', 0, 0), APP_FX_REDRAW); /* empty filter: closes */
    assert_false(s->help_open);
}

static void test_click_selects_row(void **state)
{
    app_state *s = *state;

    assert_int_equal(keys_dispatch(s, TK_MOUSE, 2 + 4, 10), APP_FX_REDRAW);
    assert_int_equal(s->cursor, 4);
    assert_int_equal(keys_dispatch(s, TK_MOUSE, 0, 10), APP_FX_NONE); /* title bar */
    assert_int_equal(keys_dispatch(s, TK_MOUSE, 2 + 15, 10), APP_FX_NONE); /* below the rows */
    assert_int_equal(s->cursor, 4);
}

static void test_every_key_has_help(void **state)
{
    (void)state;
    for (int sc = 0; sc < SCREEN_COUNT; sc++) {
        int n;
        const key_binding *t = keys_screen(sc, &n);

        assert_true(n > 0);
        for (int i = 0; i < n; i++) {
            assert_non_null(t[i].fn);
            assert_true(strlen(t[i].label) > 0 && strlen(t[i].help) > 0);
        }
    }
}

static void test_log_grows_without_limit(void **state)
{
    app_state *s = *state;
    int before = s->n_log;

    for (int i = 0; i < 200; i++)
        app_log(s, false, "line %d", i);
    assert_int_equal(s->n_log, before + 200);
    assert_string_equal(s->log[s->n_log - 1], "line 199");
    act_screen_set(s, SCREEN_LOG);
    keys_dispatch(s, 'k', 0, 0);
    assert_false(s->log_follow);
    keys_dispatch(s, TK_END, 0, 0);
    assert_true(s->log_follow);
}

static void test_open_fails_under_oom(void **state)
{
    (void)state;
    /* every allocation point in opening a model: no crash, no leak, an error */
    for (long nth = 1; nth < 4000; nth += 97) {
        app_state s;

        app_init(&s);
        pare_alloc_fail_at(nth);
        act_open_model(&s, LENET, NULL);
        pare_alloc_fail_at(0);
        assert_true(s.graph != NULL || s.message_is_error);
        app_fini(&s);
    }
}


/* ---- plan, quant, distill, jobs (resnet8 with the 256-image sample) ---- */

static int setup_resnet(void **state)
{
    static app_state s;

    app_init(&s);
    act_resize(&s, 24, 80);
    act_open_model(&s, RESNET, "fashion-mnist:test");
    snprintf(s.data_dir, sizeof s.data_dir, "%s", PARE_TEST_DATA "/fmnist-sample");
    s.limit = 64;
    *state = &s;
    return s.graph && s.groups ? 0 : -1;
}

static void keys(app_state *s, const char *text)
{
    for (const char *p = text; *p; p++)
        keys_dispatch(s, *p == '\n' ? TK_ENTER : *p, 0, 0);
}

/* Applies job events until no job is queued or running (fails after ~120 s). */
static void wait_jobs(app_state *s)
{
    for (int i = 0; i < 12000 && app_jobs_busy(s); i++) {
        usleep(10000);
        keys_dispatch(s, TK_TICK, 0, 0);
    }
    assert_false(app_jobs_busy(s));
}

static int first_prunable(const app_state *s, int from)
{
    for (int i = from; i < s->groups->n; i++)
        if (s->groups->groups[i].prunable)
            return i;
    return -1;
}

static void test_plan_ratios_change_totals(void **state)
{
    app_state *s = *state;
    int a = first_prunable(s, 0), b = first_prunable(s, a + 1);
    double f0 = s->stats->flops, f1;

    assert_true(a >= 0 && b > a);
    assert_true(s->plan_valid);
    assert_true(s->plan_flops == f0);
    keys_dispatch(s, '4', 0, 0); /* Plan screen */
    assert_int_equal(s->screen, SCREEN_PLAN);
    s->plan_cursor = a;
    keys_dispatch(s, '+', 0, 0);
    assert_true(fabs(s->ratio[a] - 0.05) < 1e-9);
    keys(s, "0.5\n"); /* typing a number sets it */
    assert_int_equal(s->prompt, PROMPT_NONE);
    assert_true(fabs(s->ratio[a] - 0.5) < 1e-9);
    f1 = s->plan_flops;
    assert_true(f1 < f0);
    assert_true(s->plan_params < s->stats->params);
    s->plan_cursor = b;
    keys(s, "\n30%\n"); /* Enter opens the prompt; a percentage works too */
    assert_true(fabs(s->ratio[b] - 0.3) < 1e-9);
    assert_true(s->plan_flops < f1);
    keys_dispatch(s, '-', 0, 0);
    assert_true(fabs(s->ratio[b] - 0.25) < 1e-9);
    /* the Layers table shows the ratio on the producer */
    assert_true(plan_group_of_node(s, s->groups->groups[a].producers[0]) == a);
    keys(s, "\n2\n"); /* 2 is no ratio: an error, nothing changes */
    assert_true(s->message_is_error);
    assert_true(fabs(s->ratio[b] - 0.25) < 1e-9);
    keys_dispatch(s, 'r', 0, 0);
    assert_true(s->plan_flops == f0);
    assert_true(s->ratio[a] == 0 && s->ratio[b] == 0);
    /* a click selects a group; below the list it does nothing */
    assert_int_equal(keys_dispatch(s, TK_MOUSE, 2 + 3, 10), APP_FX_REDRAW);
    assert_int_equal(s->plan_cursor, 3);
    assert_int_equal(keys_dispatch(s, TK_MOUSE, 2 + s->groups->n + 1, 10), APP_FX_NONE);
    assert_int_equal(s->plan_cursor, 3);
}

static void test_plan_mark_and_apply(void **state)
{
    app_state *s = *state;
    int a = first_prunable(s, 0), b = first_prunable(s, a + 1);

    act_screen_set(s, SCREEN_PLAN);
    s->plan_cursor = a;
    keys(s, "0.4\n");
    s->plan_cursor = a;
    keys_dispatch(s, ' ', 0, 0);
    s->plan_cursor = b;
    keys_dispatch(s, ' ', 0, 0);
    assert_true(s->marked[a] && s->marked[b]);
    keys_dispatch(s, 'a', 0, 0);
    assert_true(fabs(s->ratio[b] - 0.4) < 1e-9);
    /* an unprunable group refuses a ratio */
    for (int i = 0; i < s->groups->n; i++)
        if (!s->groups->groups[i].prunable) {
            s->plan_cursor = i;
            keys_dispatch(s, '+', 0, 0);
            assert_true(s->ratio[i] == 0);
            assert_true(s->message_is_error);
            break;
        }
}

static void test_quant_toggles(void **state)
{
    app_state *s = *state;
    int w = -1;

    keys_dispatch(s, '5', 0, 0);
    assert_int_equal(s->screen, SCREEN_QUANT);
    assert_true(s->n_qt > 10);
    assert_false(s->quant_on);
    assert_false(s->qt[0].is_weight); /* the model input feeding the stem conv */
    assert_true(s->qt[1].is_weight);
    keys_dispatch(s, ' ', 0, 0);
    assert_true(s->qt[0].skip);
    assert_true(s->quant_on);
    assert_int_equal(s->quant_cursor, 1); /* moves on, like a checklist */
    keys_dispatch(s, ' ', 0, 0);
    assert_true(s->qt[1].skip);
    w = s->qt[1].node;
    assert_int_equal(plan_quant_of_node(s, w), 2);
    keys_dispatch(s, 'b', 0, 0);
    assert_int_equal(s->quant_bits, 6);
    keys_dispatch(s, 'b', 0, 0);
    keys_dispatch(s, 'b', 0, 0);
    assert_int_equal(s->quant_bits, 8);
    keys_dispatch(s, 'g', 0, 0);
    assert_int_equal(s->quant_algo, PARE_JOB_ALGO_KL); /* hist -> KL */
    keys_dispatch(s, 'e', 0, 0);
    assert_false(s->quant_on);
    assert_int_equal(plan_quant_of_node(s, w), 0);
    /* t: this tensor's own bits (tensor_bits); 0 gives it back to the plan */
    s->quant_cursor = 2;
    keys_dispatch(s, 't', 0, 0);
    assert_int_equal(s->prompt, PROMPT_TENSOR_BITS);
    keys(s, "4\n");
    assert_int_equal(s->qt[2].bits, 4);
    assert_true(s->quant_on);
    assert_int_equal(s->qt[3].bits, 0);
    keys_dispatch(s, 't', 0, 0);
    keys(s, "9\n");
    assert_true(s->message_is_error);
    assert_int_equal(s->qt[2].bits, 4);
    keys_dispatch(s, 't', 0, 0);
    keys(s, "0\n");
    assert_int_equal(s->qt[2].bits, 0);
}

static void test_distill_pairs(void **state)
{
    app_state *s = *state;
    char text[200];

    keys_dispatch(s, '6', 0, 0);
    assert_int_equal(s->screen, SCREEN_DISTILL);
    assert_true(s->n_dvalues > 5);
    keys_dispatch(s, TK_ENTER, 0, 0);
    assert_int_equal(s->distill_teacher, s->dvalues[0]);
    keys_dispatch(s, TK_ESC, 0, 0); /* cancels the half pair, stays */
    assert_int_equal(s->distill_teacher, -1);
    assert_int_equal(s->screen, SCREEN_DISTILL);
    keys_dispatch(s, TK_END, 0, 0);
    keys_dispatch(s, TK_ENTER, 0, 0); /* teacher: logits */
    keys_dispatch(s, TK_ENTER, 0, 0); /* student: the same value */
    assert_int_equal(s->n_pairs, 1);
    assert_int_equal(s->pairs[0].teacher, s->pairs[0].student);
    assert_int_equal(plan_pair_compat(s, s->pairs[0].teacher, s->pairs[0].student, text, sizeof text), 0);
    /* a 4-D teacher and the 2-D logits do not fit */
    keys_dispatch(s, TK_HOME, 0, 0);
    keys_dispatch(s, TK_ENTER, 0, 0);
    keys_dispatch(s, TK_END, 0, 0);
    keys_dispatch(s, TK_ENTER, 0, 0);
    assert_int_equal(s->n_pairs, 1);
    assert_true(s->message_is_error);
    assert_non_null(strstr(s->message, "incompatible"));
    keys_dispatch(s, TK_ESC, 0, 0);
    keys_dispatch(s, 'l', 0, 0); /* to the pairs */
    assert_true(s->distill_on_pairs);
    keys_dispatch(s, 'c', 0, 0);
    assert_int_equal(s->pairs[0].loss, 3); /* mse -> cosine */
    keys(s, "a0.5\n");
    assert_true(fabs(s->pairs[0].alpha - 0.5) < 1e-12);
    assert_int_equal(plan_distill_of_node(s, s->graph->values[s->pairs[0].student].producer), 'B');
    keys_dispatch(s, 'd', 0, 0);
    assert_int_equal(s->n_pairs, 0);
}

static void test_channels_differ_needs_adapter(void **state)
{
    app_state *s = *state;
    char text[200];
    int a = -1, b = -1;

    /* the student is the planned model: pruning the group of a value
       changes its channels (also after the BatchNormalization/Relu that
       follow the conv) */
    int gi = first_prunable(s, 0), prod = s->groups->groups[gi].producers[0];

    a = s->graph->nodes[prod].outputs[0];
    for (int i = 0; i < s->graph->n_nodes && b < 0; i++)
        if (!strcmp(s->graph->nodes[i].op_type, "Relu") &&
            s->graph->values[s->graph->nodes[i].inputs[0]].producer >= 0 &&
            (s->graph->values[s->graph->nodes[i].inputs[0]].producer == prod))
            b = s->graph->nodes[i].outputs[0];
    assert_int_equal(plan_pair_compat(s, a, a, text, sizeof text), 0);
    s->ratio[gi] = 0.5;
    assert_int_equal(plan_pair_compat(s, a, a, text, sizeof text), 1);
    assert_non_null(strstr(text, "adapter"));
    if (b >= 0)
        assert_int_equal(plan_pair_compat(s, b, b, text, sizeof text), 1);
}

static void test_save_and_load_plan(void **state)
{
    app_state *s = *state;
    int a = first_prunable(s, 0), b = first_prunable(s, a + 1);
    char path[256], cmd[300];
    pare_job *job = NULL;
    pare_error err = {0};
    int t, st;

    snprintf(path, sizeof path, "/tmp/pare-test-plan-%d.yaml", (int)getpid());
    s->ratio[a] = 0.25;
    s->ratio[b] = 0.5;
    s->qt[0].skip = s->qt[3].skip = true;
    s->qt[2].bits = 4;
    s->quant_on = true;
    s->quant_bits = 6;
    t = s->dvalues[s->n_dvalues - 1];
    st = t;
    assert_true(act_distill_alpha(s, 1) == APP_FX_NONE); /* no pair yet */
    s->distill_cursor = s->n_dvalues - 1;
    act_screen_set(s, SCREEN_DISTILL);
    keys_dispatch(s, TK_ENTER, 0, 0);
    keys_dispatch(s, TK_ENTER, 0, 0);
    assert_int_equal(s->n_pairs, 1);
    snprintf(cmd, sizeof cmd, ":w %s\n", path);
    keys(s, cmd);
    assert_false(s->message_is_error);
    assert_non_null(strstr(s->message, "saved"));
    assert_int_equal(pare_job_load(path, &job, NULL, &err), PARE_OK);
    assert_int_equal(job->layers.n, 2);
    assert_string_equal(job->layers.names[0], s->groups->groups[a].name);
    assert_true(fabs(job->layers.ratios[1] - 0.5) < 1e-9);
    assert_true(job->quant_post.meta.present);
    assert_int_equal(job->quant_post.weight_bits, 6);
    assert_int_equal(job->quant_post.skip_tensor_list.n, 2);
    assert_int_equal(job->quant_post.tensor_bits.n, 1);
    assert_string_equal(job->quant_post.tensor_bits.names[0], s->graph->values[s->qt[2].value].name);
    assert_int_equal(job->quant_post.tensor_bits.v[0], 4);
    assert_int_equal(job->distill.pairs.n, 1);
    assert_string_equal(job->distill.pairs.v[0].student, s->graph->values[st].name);
    assert_true(job->train.meta.present); /* distillation trains */
    assert_int_equal(pare_job_check_runnable(job, NULL, &err), PARE_OK);
    assert_non_null(strstr(job->global.model, "resnet8.onnx"));
    /* fashion-mnist: trains and calibrates on train, evaluates on the workbench's split */
    assert_string_equal(job->global.data, "fashion-mnist:train");
    assert_string_equal(job->global.eval_data, "fashion-mnist:test");
    pare_job_free(job);
    /* forget the plan, then open it back */
    act_plan_reset(s);
    s->qt[0].skip = s->qt[3].skip = false;
    s->qt[2].bits = 0;
    s->quant_on = false;
    s->quant_bits = 8;
    s->n_pairs = 0;
    snprintf(cmd, sizeof cmd, ":e %s\n", path);
    keys(s, cmd);
    assert_false(s->message_is_error);
    assert_true(fabs(s->ratio[a] - 0.25) < 1e-9 && fabs(s->ratio[b] - 0.5) < 1e-9);
    assert_true(s->qt[0].skip && s->qt[3].skip && !s->qt[1].skip);
    assert_int_equal(s->qt[2].bits, 4);
    assert_int_equal(s->qt[1].bits, 0);
    assert_true(s->quant_on);
    assert_int_equal(s->quant_bits, 6);
    assert_int_equal(s->n_pairs, 1);
    assert_int_equal(s->pairs[0].teacher, t);
    assert_true(s->plan_flops < s->stats->flops);
    unlink(path);
    /* a file that is not there: an error on the message line */
    keys(s, ":e /nonexistent/plan.yaml\n");
    assert_true(s->message_is_error);
}

/* :teacher FILE: pairs name the teacher model's values; saved and opened back */
static void test_teacher_model(void **state)
{
    app_state *s = *state;
    char path[256], cmd[300];
    pare_job *job = NULL;
    pare_error err = {0};
    int n;

    keys(s, ":teacher /nonexistent.onnx\n");
    assert_true(s->message_is_error);
    assert_null(s->teacher);
    keys(s, ":teacher " LENET "\n");
    assert_non_null(s->teacher);
    act_screen_set(s, SCREEN_DISTILL);
    plan_distill_list(s, &n, NULL, NULL);
    assert_int_equal(n, s->n_tvalues); /* the teacher's values first */
    keys_dispatch(s, TK_END, 0, 0);
    keys_dispatch(s, TK_ENTER, 0, 0); /* lenet's output [batch, 10] */
    assert_string_equal(s->teacher->values[s->distill_teacher].name, "logits");
    plan_distill_list(s, &n, NULL, NULL);
    assert_int_equal(n, s->n_dvalues); /* then the student's */
    keys_dispatch(s, TK_END, 0, 0);
    keys_dispatch(s, TK_ENTER, 0, 0);
    assert_int_equal(s->n_pairs, 1);
    assert_int_equal(plan_distill_of_node(s, s->graph->values[s->pairs[0].student].producer), 'S');
    snprintf(path, sizeof path, "/tmp/pare-test-teacher-%d.yaml", (int)getpid());
    snprintf(cmd, sizeof cmd, ":w %s\n", path);
    keys(s, cmd);
    assert_false(s->message_is_error);
    assert_int_equal(pare_job_load(path, &job, NULL, &err), PARE_OK);
    assert_non_null(job->distill.teacher_model);
    assert_non_null(strstr(job->distill.teacher_model, "lenet5.onnx"));
    assert_int_equal(job->distill.pairs.n, 1);
    pare_job_free(job);
    keys(s, ":teacher\n"); /* back to the model itself: pairs go */
    assert_null(s->teacher);
    assert_int_equal(s->n_pairs, 0);
    snprintf(cmd, sizeof cmd, ":e %s\n", path);
    keys(s, cmd);
    assert_false(s->message_is_error);
    assert_non_null(s->teacher);
    assert_int_equal(s->n_pairs, 1);
    unlink(path);
}

static void test_commands(void **state)
{
    app_state *s = *state;

    keys(s, ":frob\n");
    assert_true(s->message_is_error);
    assert_non_null(strstr(s->message, "unknown command ':frob'"));
    keys(s, ":limit abc\n");
    assert_true(s->message_is_error);
    keys(s, ":limit 32\n");
    assert_int_equal(s->limit, 32);
    keys(s, ":plan\n");
    assert_int_equal(s->screen, SCREEN_PLAN);
    keys_dispatch(s, ':', 0, 0);
    keys(s, "w");
    keys_dispatch(s, TK_ESC, 0, 0); /* Esc drops the prompt */
    assert_int_equal(s->prompt, PROMPT_NONE);
    keys(s, ":data\n");
    assert_string_equal(s->data_spec, "");
    keys_dispatch(s, '7', 0, 0); /* on Plan every digit starts a ratio */
    assert_int_equal(s->prompt, PROMPT_RATIO);
    assert_string_equal(s->prompt_buf, "7");
    assert_int_equal(s->screen, SCREEN_PLAN);
    keys_dispatch(s, TK_ESC, 0, 0);
    keys_dispatch(s, TK_F7, 0, 0); /* F1-F8 go to screens everywhere */
    assert_int_equal(s->screen, SCREEN_JOBS);
    keys_dispatch(s, 'e', 0, 0); /* no data: refused with a hint */
    assert_true(s->message_is_error);
    assert_non_null(strstr(s->message, ":data"));
    assert_int_equal(s->n_jobs, 0);
}

/* Plan and Quant take numbers: digits and '.' type a value there; screens
 * stay on Tab, F1-F8 and Alt+digit; other screens keep digit switching. */
static void test_digits_type_on_plan_and_quant(void **state)
{
    app_state *s = *state;
    int a = first_prunable(s, 0);
    int n;
    const key_binding *t;
    bool f_keys = false;

    keys_dispatch(s, '4', 0, 0); /* Layers: a digit switches */
    assert_int_equal(s->screen, SCREEN_PLAN);
    s->plan_cursor = a;
    keys(s, "5");
    assert_int_equal(s->screen, SCREEN_PLAN);
    assert_int_equal(s->prompt, PROMPT_RATIO);
    keys(s, "\n"); /* 5 is no ratio: refused, with the forms that work */
    assert_true(s->message_is_error);
    assert_non_null(strstr(s->message, "30%"));
    keys(s, ".35\n");
    assert_true(fabs(s->ratio[a] - 0.35) < 1e-9);
    keys(s, "40%\n");
    assert_true(fabs(s->ratio[a] - 0.4) < 1e-9);
    /* the help lists the typed value and F1-F8, not the shadowed 1-8 */
    t = keys_global(&n);
    for (int i = 0; i < n; i++)
        f_keys |= t[i].key == TK_F5 && strstr(t[i].label, "F1-F8") && strstr(t[i].label, "Alt");
    assert_true(f_keys);
    assert_true(keys_screen_has(SCREEN_PLAN, '1') && keys_screen_has(SCREEN_QUANT, '.'));
    assert_false(keys_screen_has(SCREEN_JOBS, '1'));
    keys_dispatch(s, TK_ALT_5, 0, 0); /* Esc then 5 (term.c) */
    assert_int_equal(s->screen, SCREEN_QUANT);
    keys(s, "4\n");
    assert_int_equal(s->quant_bits, 4);
    assert_true(s->quant_on);
    keys(s, "9\n");
    assert_true(s->message_is_error);
    assert_int_equal(s->quant_bits, 4);
    keys(s, "8"); /* Esc drops the typed value, nothing else */
    keys_dispatch(s, TK_ESC, 0, 0);
    assert_int_equal(s->screen, SCREEN_QUANT);
    assert_int_equal(s->quant_bits, 4);
    keys_dispatch(s, TK_TAB, 0, 0);
    assert_int_equal(s->screen, SCREEN_DISTILL);
    keys_dispatch(s, '7', 0, 0); /* Distill has no numbers: digits switch */
    assert_int_equal(s->screen, SCREEN_JOBS);
    keys_dispatch(s, TK_F4, 0, 0);
    assert_int_equal(s->screen, SCREEN_PLAN);
}

/* Distill's values: / searches incrementally, n/N walk the matches */
static void test_distill_search(void **state)
{
    app_state *s = *state;
    int n, first, second;
    const pare_graph *g;
    const int *list;

    act_screen_set(s, SCREEN_DISTILL);
    list = plan_distill_list(s, &n, &g, NULL);
    keys(s, "/relu");
    assert_true(s->searching);
    first = s->distill_cursor;
    assert_non_null(strcasestr(g->values[list[first]].name, "relu"));
    keys(s, "\n");
    assert_false(s->searching);
    keys(s, "n");
    second = s->distill_cursor;
    assert_true(second > first);
    assert_non_null(strcasestr(g->values[list[second]].name, "relu"));
    keys(s, "N");
    assert_int_equal(s->distill_cursor, first);
    keys(s, "N"); /* wraps to the last match */
    assert_true(s->distill_cursor > second);
    keys(s, "/zzz");
    assert_true(s->message_is_error);
    assert_non_null(strstr(s->message, "no value matches"));
    keys_dispatch(s, TK_ESC, 0, 0);
    assert_false(s->searching);
    assert_int_equal(s->screen, SCREEN_DISTILL);
}

/* Running jobs tick: elapsed and ETA move without progress events */
static void test_jobs_tick_without_events(void **state)
{
    app_state *s = *state;
    app_job *j;
    grid g;

    s->jobs = pare_calloc(1, sizeof *s->jobs);
    assert_non_null(s->jobs);
    s->cap_jobs = s->n_jobs = 1;
    j = &s->jobs[0];
    *j = (app_job){.id = 1, .kind = JOB_EVAL, .state = JS_RUNNING, .name = "eval", .done = 2,
                   .total = 12, .rate = 1.0, .seconds = 2.0, .event_seconds = 2.0, .loss = NAN,
                   .metric = NAN, .t_start = app_now() - 5.5};
    assert_int_equal(act_tick(s), APP_FX_REDRAW); /* 2 s -> 5 s: a shown second changed */
    assert_true(j->seconds > 5.4 && j->seconds < 7);
    assert_int_equal(act_tick(s), APP_FX_NONE);   /* same second: no redraw */
    act_screen_set(s, SCREEN_JOBS);
    assert_true(grid_init(&g, 80, 24));
    view_app_draw(s, &g);
    /* 10 batches at 1/s, 3.5 s after the last event: 0:07 (0:10 before the fix) */
    assert_true(grid_contains(&g, "0:06", true) || grid_contains(&g, "0:07", true));
    assert_true(grid_contains(&g, "elapsed 0:0", true));
    grid_fini(&g);
    s->n_jobs = 0; /* not from a queue */
}

static void test_sens_job_then_target_and_fill(void **state)
{
    app_state *s = *state;
    int steps = 0;
    bool partial = false;

    keys_dispatch(s, '3', 0, 0);
    assert_int_equal(s->screen, SCREEN_SENS);
    keys_dispatch(s, 'r', 0, 0);
    assert_int_equal(s->n_jobs, 1);
    assert_int_equal(s->jobs[0].kind, JOB_SENS);
    while (app_jobs_busy(s) && steps++ < 12000) {
        usleep(10000);
        keys_dispatch(s, TK_TICK, 0, 0);
        keys_dispatch(s, 'j', 0, 0); /* the UI keeps working meanwhile */
        /* rows fill in while the sweep runs */
        if (s->jobs[0].state == JS_RUNNING && s->sens && s->sens->n_points > 0 &&
            s->sens->n_points < s->jobs[0].total && s->n_sens_rows > 0)
            partial = true;
    }
    assert_true(partial);
    assert_int_equal(s->jobs[0].state, JS_DONE);
    assert_int_equal(s->sens_live_job, 0);
    assert_null(s->sens_prev);
    /* the job's progress names groups as the screens do (the producer) */
    assert_null(strstr(s->jobs[0].detail, "_output_0"));
    assert_non_null(s->sens);
    assert_true(s->n_sens_rows > 3);
    assert_int_equal(s->sens->n_samples, 64);
    assert_true(s->jobs[0].n_result > 0);
    keys_dispatch(s, 'd', 0, 0); /* worst first */
    for (int i = 1; i < s->n_sens_rows; i++) {
        pare_sens_point p0[PARE_SENS_MAX_RATIOS], p1[PARE_SENS_MAX_RATIOS];
        int n0 = pare_sens_group_points(s->sens, s->sens_rows[i - 1], p0);
        int n1 = pare_sens_group_points(s->sens, s->sens_rows[i], p1);

        assert_true(p0[n0 - 1].drop >= p1[n1 - 1].drop);
    }
    keys(s, "t0.3\n");
    assert_false(s->message_is_error);
    assert_non_null(s->sens_pick);
    assert_true(s->sens_pick_flops < s->sens->flops);
    keys_dispatch(s, '4', 0, 0);
    keys(s, "f30%\n");
    assert_true(s->plan_flops <= 0.75 * s->stats->flops);
    assert_true(isfinite(s->plan_loss));
    /* m measures the plan on the sweep's data: larger than the sum, usually */
    assert_string_equal(s->sens_data, "fashion-mnist:test");
    assert_int_equal(s->sens_limit, 64);
    s->limit = 32; /* the measurement keeps the sweep's 64 */
    keys(s, "m");
    assert_int_equal(s->n_jobs, 2);
    assert_int_equal(s->jobs[1].kind, JOB_MEASURE);
    assert_int_equal(s->plan_measure_job, s->jobs[1].id);
    wait_jobs(s);
    assert_int_equal(s->jobs[1].state, JS_DONE);
    assert_int_equal(s->plan_measure_job, 0);
    assert_true(isfinite(s->plan_measured));
    assert_true(s->plan_measured_top1);
    assert_true(s->plan_measured_key == app_plan_key(s));
    {
        bool said = false, samples = false;

        for (int i = 0; i < s->jobs[1].n_result; i++) {
            said |= strstr(s->jobs[1].result[i], "measured (no fine-tune)") != NULL &&
                    strstr(s->jobs[1].result[i], "sum of single-group drops") != NULL;
            samples |= strstr(s->jobs[1].result[i], "64 samples") != NULL;
        }
        assert_true(said && samples);
    }
    {
        grid g;

        assert_true(grid_init(&g, 80, 24));
        view_app_draw(s, &g);
        assert_true(grid_contains(&g, "(sum of single-group drops)", true));
        assert_true(grid_contains(&g, "(no fine-tune)", true));
        keys(s, "+"); /* another plan: the measurement is of an earlier one */
        view_app_draw(s, &g);
        assert_true(grid_contains(&g, "(old plan: m)", true));
        grid_fini(&g);
    }
}

/* m on Plan: cancel works; without ratios it is refused */
static void test_measure_refused_and_cancelled(void **state)
{
    app_state *s = *state;
    int a = first_prunable(s, 0);

    act_screen_set(s, SCREEN_PLAN);
    keys(s, "m");
    assert_true(s->message_is_error);
    assert_int_equal(s->n_jobs, 0);
    s->plan_cursor = a;
    keys(s, "0.5\n");
    s->limit = 256;
    keys(s, "m");
    assert_int_equal(s->n_jobs, 1);
    s->jobs_cursor = 0;
    act_job_cancel(s);
    wait_jobs(s);
    assert_int_equal(s->jobs[0].state, JS_CANCELED);
    assert_true(isnan(s->plan_measured));
    assert_int_equal(s->plan_measure_job, 0);
}

/* m on Quant: each tensor's SQNR and cosine for the plan's bits and algo */
static void test_quant_error_job(void **state)
{
    app_state *s = *state;
    grid g;

    act_screen_set(s, SCREEN_QUANT);
    keys(s, "6\n"); /* 6 bits */
    keys(s, "m");
    assert_int_equal(s->n_jobs, 1);
    assert_int_equal(s->jobs[0].kind, JOB_QERR);
    wait_jobs(s);
    if (s->jobs[0].state != JS_DONE)
        fprintf(stderr, "quant error job: %s\n", s->jobs[0].error);
    assert_int_equal(s->jobs[0].state, JS_DONE);
    assert_int_equal(s->qerr_bits, 6);
    assert_int_equal(s->qerr_algo, s->quant_algo);
    for (int i = 0; i < s->n_qt; i++) {
        assert_false(isnan(s->qt[i].err_sqnr));
        assert_true(s->qt[i].err_cos > 0.5 && s->qt[i].err_cos <= 1.0 + 1e-9);
    }
    assert_true(grid_init(&g, 80, 24));
    view_app_draw(s, &g);
    assert_true(grid_contains(&g, "SQNR", true));
    assert_true(grid_contains(&g, "at 6 bits hist", true));
    keys(s, "8\n"); /* other bits: the errors are marked stale */
    view_app_draw(s, &g);
    assert_true(grid_contains(&g, "settings changed: m again", true));
    grid_fini(&g);
}

/* r on Inspect: the layer's output on :limit samples as a job; statistics
 * of the first conv's output ([samples, 16, 28, 28]) and per-channel means;
 * weights show where their quantization error comes from */
static void test_inspect_activation(void **state)
{
    app_state *s = *state;
    grid g;
    int conv = -1;

    for (int r = 0; r < s->n_rows && conv < 0; r++)
        if (!strcmp(s->graph->nodes[s->order[r]].op_type, "Conv")) {
            conv = s->order[r];
            s->cursor = r;
        }
    assert_true(conv >= 0);
    assert_int_equal(act_inspect(s), APP_FX_REDRAW);
    assert_int_equal(s->screen, SCREEN_INSPECT);
    assert_true(grid_init(&g, 100, 40));
    view_app_draw(s, &g);
    assert_true(grid_contains(&g, "r: run the model", true));
    assert_true(grid_contains(&g, "m on Quant measures it", true));
    keys(s, "r");
    assert_int_equal(s->n_jobs, 1);
    assert_int_equal(s->jobs[0].kind, JOB_ACT);
    wait_jobs(s);
    if (s->jobs[0].state != JS_DONE)
        fprintf(stderr, "activation job: %s\n", s->jobs[0].error);
    assert_int_equal(s->jobs[0].state, JS_DONE);
    assert_int_equal(s->act_node, conv);
    assert_true(s->act.activation);
    assert_int_equal(s->act.ndim, 4);
    assert_int_equal(s->act.dims[0], s->limit);
    assert_int_equal(s->act.numel, s->limit * s->act.dims[1] * s->act.dims[2] * s->act.dims[3]);
    assert_int_equal(s->act.n_channels, (int)s->act.dims[1]);
    assert_true(s->act.min < 0 && s->act.max > 0); /* a conv output before its Relu */
    assert_true(s->act.std > 0);
    for (int c = 0; c < s->act.n_channels; c++)
        assert_true(s->act.l1[c] >= 0);
    view_app_draw(s, &g);
    assert_true(grid_contains(&g, "per-channel mean |x|", true));
    {
        char want[64];
        snprintf(want, sizeof want, "on %ld samples", s->limit);
        assert_true(grid_contains(&g, want, true));
    }
    grid_fini(&g);
}

/* a on Quant: the plan quantizes by QAT (QuantAware + TrainConfig) instead
 * of PTQ; saved, runnable and opened back */
static void test_qat_plan(void **state)
{
    app_state *s = *state;
    char path[256], cmd[300];
    pare_job *job = NULL;
    pare_error err = {0};

    snprintf(path, sizeof path, "/tmp/pare-test-qat-plan-%d.yaml", (int)getpid());
    act_screen_set(s, SCREEN_QUANT);
    keys(s, "a");
    assert_true(s->quant_qat);
    assert_true(s->quant_on);
    s->qt[0].skip = true;
    snprintf(cmd, sizeof cmd, ":w %s\n", path);
    keys(s, cmd);
    assert_false(s->message_is_error);
    assert_int_equal(pare_job_load(path, &job, NULL, &err), PARE_OK);
    assert_true(job->quant_aware.meta.present);
    assert_false(job->quant_post.meta.present);
    assert_int_equal(job->quant_aware.weight_bits, 8);
    assert_int_equal(job->quant_aware.skip_tensor_list.n, 1);
    assert_true(job->train.meta.present); /* QAT trains */
    assert_int_equal(pare_job_check_runnable(job, NULL, &err), PARE_OK);
    pare_job_free(job);
    keys(s, "a");
    assert_false(s->quant_qat);
    s->qt[0].skip = false;
    snprintf(cmd, sizeof cmd, ":e %s\n", path);
    keys(s, cmd);
    assert_false(s->message_is_error);
    assert_true(s->quant_qat && s->quant_on);
    assert_true(s->qt[0].skip);
    unlink(path);
}

/* v on Quant: quantization sensitivity per layer as a job, shown as a drop
 * column next to each tensor of the layer */
static void test_quant_sens_job(void **state)
{
    app_state *s = *state;
    grid g;
    int known = 0;

    act_screen_set(s, SCREEN_QUANT);
    keys(s, "4\n"); /* 4 bits: layers differ clearly */
    keys(s, "v");
    assert_int_equal(s->n_jobs, 1);
    assert_int_equal(s->jobs[0].kind, JOB_QSENS);
    wait_jobs(s);
    if (s->jobs[0].state != JS_DONE)
        fprintf(stderr, "quant sensitivity job: %s\n", s->jobs[0].error);
    assert_int_equal(s->jobs[0].state, JS_DONE);
    assert_int_equal(s->qsens_bits, 4);
    for (int i = 0; i < s->n_qt; i++)
        if (!isnan(s->qt[i].qsens_drop)) {
            known++;
            assert_true(s->qt[i].qsens_drop > -100 && s->qt[i].qsens_drop < 100);
        }
    /* every tensor's node is a quantizable Conv/Gemm */
    assert_int_equal(known, s->n_qt);
    /* the weight and the activation of one node show the same drop */
    for (int i = 0; i + 1 < s->n_qt; i++)
        if (s->qt[i].node == s->qt[i + 1].node)
            assert_float_equal(s->qt[i].qsens_drop, s->qt[i + 1].qsens_drop, 0);
    assert_true(grid_init(&g, 100, 30));
    view_app_draw(s, &g);
    assert_true(grid_contains(&g, "drop", true));
    keys(s, "8\n");
    view_app_draw(s, &g);
    assert_true(grid_contains(&g, "settings changed: v again", true));
    grid_fini(&g);
}

/* x asks before replacing <model>.plan.out */
static void test_compress_asks_before_replacing(void **state)
{
    app_state *s = *state;
    char dir[] = "/tmp/pare-tui-replace-XXXXXX", cwd[1024], path[1200];

    assert_non_null(mkdtemp(dir));
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(chdir(dir), 0);
    assert_int_equal(mkdir("resnet8.plan.out", 0755), 0);
    act_screen_set(s, SCREEN_JOBS);
    keys(s, "x");
    assert_int_equal(s->prompt, PROMPT_OVERWRITE);
    assert_string_equal(s->prompt_buf, "resnet8.plan.out");
    assert_int_equal(s->n_jobs, 0);
    keys(s, "n");
    assert_int_equal(s->prompt, PROMPT_NONE);
    assert_int_equal(s->n_jobs, 0);
    keys(s, "x");
    keys(s, "y");
    assert_int_equal(s->n_jobs, 1);
    assert_int_equal(s->jobs[0].kind, JOB_COMPRESS);
    s->jobs_cursor = 0;
    act_job_cancel(s);
    wait_jobs(s);
    assert_int_equal(chdir(cwd), 0);
    snprintf(path, sizeof path, "rm -rf '%s'", dir);
    assert_int_equal(system(path), 0);
}

static void test_eval_ptq_jobs_and_cancel(void **state)
{
    app_state *s = *state;
    int a = first_prunable(s, 0);
    bool found = false;

    act_screen_set(s, SCREEN_PLAN);
    s->plan_cursor = a;
    keys(s, "0.5\n");
    s->qt[1].skip = true;
    keys_dispatch(s, TK_ESC, 0, 0);
    keys_dispatch(s, '7', 0, 0);
    keys_dispatch(s, 'e', 0, 0);
    keys_dispatch(s, 'p', 0, 0);
    keys_dispatch(s, 'e', 0, 0); /* queued behind, then cancelled before it starts */
    assert_int_equal(s->n_jobs, 3);
    s->jobs_cursor = 2;
    keys_dispatch(s, 'c', 0, 0);
    wait_jobs(s);
    assert_int_equal(s->jobs[0].state, JS_DONE);
    assert_int_equal(s->jobs[1].state, JS_DONE);
    assert_int_equal(s->jobs[2].state, JS_CANCELED);
    for (int i = 0; i < s->jobs[0].n_result; i++)
        found |= strstr(s->jobs[0].result[i], "top-1") != NULL;
    assert_true(found);
    found = false;
    for (int i = 0; i < s->jobs[1].n_result; i++)
        found |= strstr(s->jobs[1].result[i], "1 skipped") != NULL;
    assert_true(found);
    /* PTQ leaves the weights' SNR on the Quant screen; the skipped one has none */
    assert_true(s->qt[3].is_weight && isfinite(s->qt[3].snr_db) && s->qt[3].snr_db > 10);
    assert_true(isnan(s->qt[1].snr_db));
    s->jobs_cursor = 0;
    keys_dispatch(s, TK_ENTER, 0, 0);
    assert_true(s->job_detail);
    keys_dispatch(s, 'q', 0, 0); /* closes the result first */
    assert_false(s->job_detail);
    assert_int_equal(s->screen, SCREEN_JOBS);
}

/* x: the plan as pare compress runs it (prune, distilled fine-tuning, PTQ);
 * needs the Fashion-MNIST train split, else skipped. */
static void test_compress_job(void **state)
{
    app_state *s = *state;
    char dir[] = "/tmp/pare-tui-compress-XXXXXX", cwd[1024], path[1200];
    int a = first_prunable(s, 0);
    bool wrote = false, trained = false;
    FILE *f;

    snprintf(path, sizeof path, "%s/train-images-idx3-ubyte.gz", PARE_FMNIST_DIR);
    f = fopen(path, "rb");
    if (!f) {
        skip();
        return;
    }
    fclose(f);
    snprintf(s->data_dir, sizeof s->data_dir, "%s", PARE_FMNIST_DIR);
    assert_non_null(mkdtemp(dir));
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(chdir(dir), 0);
    s->ratio[a] = 0.25;
    plan_update_totals(s);
    s->quant_on = true;
    act_screen_set(s, SCREEN_DISTILL);
    keys_dispatch(s, TK_END, 0, 0);
    keys_dispatch(s, TK_ENTER, 0, 0);
    keys_dispatch(s, TK_ENTER, 0, 0);
    keys(s, ":iters 2\n");
    act_screen_set(s, SCREEN_JOBS);
    keys_dispatch(s, 'x', 0, 0);
    wait_jobs(s);
    if (s->jobs[0].state != JS_DONE)
        fprintf(stderr, "compress job: %s\n", s->jobs[0].error);
    assert_int_equal(s->jobs[0].state, JS_DONE);
    for (int i = 0; i < s->jobs[0].n_result; i++) {
        wrote |= strstr(s->jobs[0].result[i], "resnet8.plan.out") != NULL;
        trained |= strstr(s->jobs[0].result[i], "stage train") != NULL;
    }
    assert_true(wrote && trained);
    snprintf(path, sizeof path, "%s/resnet8.plan.out/model.onnx", dir);
    f = fopen(path, "rb");
    assert_non_null(f);
    fclose(f);
    assert_int_equal(chdir(cwd), 0);
    snprintf(path, sizeof path, "rm -rf '%s'", dir);
    assert_int_equal(system(path), 0);
}

static void test_quit_asks_while_a_job_runs(void **state)
{
    app_state *s = *state;

    s->limit = 256;
    keys_dispatch(s, '3', 0, 0);
    keys_dispatch(s, 'r', 0, 0);
    keys_dispatch(s, TK_TICK, 0, 0);
    keys_dispatch(s, '1', 0, 0);
    assert_int_equal(keys_dispatch(s, 'q', 0, 0), APP_FX_REDRAW);
    assert_int_equal(s->prompt, PROMPT_QUIT);
    assert_int_equal(keys_dispatch(s, 'n', 0, 0), APP_FX_REDRAW);
    assert_int_equal(s->prompt, PROMPT_NONE);
    keys_dispatch(s, '7', 0, 0);
    s->jobs_cursor = 0;
    keys_dispatch(s, 'c', 0, 0);
    wait_jobs(s);
    assert_int_equal(s->jobs[0].state, JS_CANCELED);
    assert_null(s->sens);
    keys_dispatch(s, '1', 0, 0);
    assert_int_equal(keys_dispatch(s, 'q', 0, 0), APP_FX_QUIT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open_lists_every_node, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_missing_reports_and_keeps_model, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cursor_moves_and_clamps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_small_window_scrolls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sort_params_then_reverse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sort_keeps_selection, setup, teardown),
        cmocka_unit_test_setup_teardown(test_search_and_next_wrap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_search_no_match_and_backspace, setup, teardown),
        cmocka_unit_test_setup_teardown(test_inspect_conv_weights, setup, teardown),
        cmocka_unit_test_setup_teardown(test_screens_cycle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_help_filters_and_closes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_click_selects_row, setup, teardown),
        cmocka_unit_test_setup_teardown(test_every_key_has_help, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_grows_without_limit, setup, teardown),
        cmocka_unit_test(test_open_fails_under_oom),
        cmocka_unit_test_setup_teardown(test_plan_ratios_change_totals, setup_resnet, teardown),
        cmocka_unit_test_setup_teardown(test_plan_mark_and_apply, setup_resnet, teardown),
        cmocka_unit_test_setup_teardown(test_quant_toggles, setup_resnet, teardown),
        cmocka_unit_test_setup_teardown(test_quant_sens_job, setup_resnet, teardown),
        cmocka_unit_test_setup_teardown(test_qat_plan, setup_resnet, teardown),
        cmocka_unit_test_setup_teardown(test_inspect_activation, setup_resnet, teardown),
        cmocka_unit_test_setup_teardown(test_distill_pairs, setup_resnet, teardown),
        cmocka_unit_test_setup_teardown(test_channels_differ_needs_adapter, setup_resnet, teardown),
        cmocka_unit_test_setup_teardown(test_save_and_load_plan, setup_resnet, teardown),
        cmocka_unit_test_setup_teardown(test_commands, setup_resnet, teardown),
        cmocka_unit_test_setup_teardown(test_teacher_model, setup_resnet, teardown),
        cmocka_unit_test_setup_teardown(test_digits_type_on_plan_and_quant, setup_resnet, teardown),
        cmocka_unit_test_setup_teardown(test_distill_search, setup_resnet, teardown),
        cmocka_unit_test_setup_teardown(test_jobs_tick_without_events, setup_resnet, teardown),
        cmocka_unit_test_setup_teardown(test_sens_job_then_target_and_fill, setup_resnet, teardown),
        cmocka_unit_test_setup_teardown(test_measure_refused_and_cancelled, setup_resnet, teardown),
        cmocka_unit_test_setup_teardown(test_quant_error_job, setup_resnet, teardown),
        cmocka_unit_test_setup_teardown(test_compress_asks_before_replacing, setup_resnet, teardown),
        cmocka_unit_test_setup_teardown(test_eval_ptq_jobs_and_cancel, setup_resnet, teardown),
        cmocka_unit_test_setup_teardown(test_quit_asks_while_a_job_runs, setup_resnet, teardown),
        cmocka_unit_test_setup_teardown(test_compress_job, setup_resnet, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
