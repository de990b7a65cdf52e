/* Workbench actions without a terminal: tui/app.c and tui/keys.c. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "pare/alloc.h"

#include "app.h"
#include "grid.h"

#define LENET PARE_TEST_DATA "/lenet5.onnx"

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
    assert_int_equal(app_inspect_lines(s), (2 + APP_HIST_ROWS + 1 + 1 + 6 + 1) + (2 + APP_HIST_ROWS + 1 + 1));
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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
