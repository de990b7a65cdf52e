/* Golden view text: views draw a state headless into a grid and the text is
 * compared with tests/tui/golden/<name>.txt. PARE_GOLDEN_UPDATE=1 rewrites the
 * files (review the diff before keeping it). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <math.h>

#include <cmocka.h>

#include "app.h"
#include "grid.h"
#include "pare/alloc.h"

static void render(const grid *g, bool utf8, char *out, size_t size)
{
    char row[2048];
    size_t len = 0;

    out[0] = '\0';
    for (int y = 0; y < g->h; y++) {
        int n = snprintf(out + len, size - len, "%s\n", grid_row(g, y, utf8, row, sizeof row));

        assert_true(n > 0 && (size_t)n < size - len);
        len += (size_t)n;
    }
}

static void check_golden(const grid *g, bool utf8, const char *name)
{
    static char got[1 << 16], want[1 << 16];
    char path[1024];
    FILE *f;
    size_t n;

    render(g, utf8, got, sizeof got);
    snprintf(path, sizeof path, "%s/%s.txt", PARE_GOLDEN_DIR, name);
    if (getenv("PARE_GOLDEN_UPDATE")) {
        f = fopen(path, "w");
        assert_non_null(f);
        fputs(got, f);
        fclose(f);
    }
    f = fopen(path, "r");
    assert_non_null(f);
    n = fread(want, 1, sizeof want - 1, f);
    fclose(f);
    want[n] = '\0';
    if (strcmp(got, want)) {
        fprintf(stderr, "view differs from %s:\n--- got\n%s--- want\n%s", path, got, want);
        fail();
    }
}

typedef struct fixture {
    app_state s;
    grid g;
} fixture;

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);

    if (!fx)
        return -1;
    app_init(&fx->s);
    act_resize(&fx->s, 24, 80);
    act_open_model(&fx->s, PARE_TEST_DATA "/lenet5.onnx", NULL);
    if (!grid_init(&fx->g, 80, 24) || !fx->s.graph)
        return -1;
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;

    grid_fini(&fx->g);
    app_fini(&fx->s);
    free(fx);
    return 0;
}

static void test_layers_80x24(void **state)
{
    fixture *fx = *state;

    keys_dispatch(&fx->s, 'j', 0, 0);
    keys_dispatch(&fx->s, 'j', 0, 0);
    view_app_draw(&fx->s, &fx->g);
    check_golden(&fx->g, true, "layers_80x24");
    /* the cursor row is drawn in reverse video, and only it */
    assert_true(fx->g.cells[(2 + 2) * 80 + 5].attr & GA_REVERSE);
    assert_false(fx->g.cells[(2 + 1) * 80 + 5].attr & GA_REVERSE);
}

static void test_layers_sorted_ascii(void **state)
{
    fixture *fx = *state;

    keys_dispatch(&fx->s, 'f', 0, 0);
    view_app_draw(&fx->s, &fx->g);
    check_golden(&fx->g, false, "layers_flops_ascii");
}

static void test_inspect_conv2(void **state)
{
    fixture *fx = *state;
    char row[1024];
    bool non_ascii = false;

    for (int i = 0; i < 3; i++)
        keys_dispatch(&fx->s, 'j', 0, 0);
    keys_dispatch(&fx->s, TK_ENTER, 0, 0);
    view_app_draw(&fx->s, &fx->g);
    check_golden(&fx->g, true, "inspect_conv2_utf8");
    check_golden(&fx->g, false, "inspect_conv2_ascii");
    for (int y = 0; y < fx->g.h; y++)
        for (const char *p = grid_row(&fx->g, y, false, row, sizeof row); *p; p++)
            non_ascii |= (unsigned char)*p >= 0x80;
    assert_false(non_ascii);
    /* scrolled to the channel bars */
    keys_dispatch(&fx->s, TK_END, 0, 0);
    view_app_draw(&fx->s, &fx->g);
    check_golden(&fx->g, true, "inspect_conv2_end");
}

static void test_help_filtered(void **state)
{
    fixture *fx = *state;

    keys_dispatch(&fx->s, '?', 0, 0);
    view_app_draw(&fx->s, &fx->g);
    check_golden(&fx->g, true, "help_layers");
    keys_dispatch(&fx->s, 's', 0, 0);
    keys_dispatch(&fx->s, 'o', 0, 0);
    keys_dispatch(&fx->s, 'r', 0, 0);
    keys_dispatch(&fx->s, 't', 0, 0);
    view_app_draw(&fx->s, &fx->g);
    check_golden(&fx->g, true, "help_layers_sort");
    assert_false(grid_contains(&fx->g, "next screen", true));
}

static void test_log_after_error(void **state)
{
    fixture *fx = *state;

    act_open_model(&fx->s, "/nonexistent.onnx", NULL);
    keys_dispatch(&fx->s, 'L', 0, 0);
    view_app_draw(&fx->s, &fx->g);
    assert_true(grid_contains(&fx->g, "opened lenet5.onnx", true));
    assert_true(grid_contains(&fx->g, "error: /nonexistent.onnx", true));
    check_golden(&fx->g, true, "log_error");
}

static void test_too_small_and_resize(void **state)
{
    fixture *fx = *state;

    assert_true(grid_resize(&fx->g, 59, 20));
    act_resize(&fx->s, 20, 59);
    view_app_draw(&fx->s, &fx->g);
    assert_true(grid_contains(&fx->g, "terminal too small: 59x20", true));
    assert_false(grid_contains(&fx->g, "Conv", true));
    assert_true(grid_resize(&fx->g, 60, 16));
    act_resize(&fx->s, 16, 60);
    keys_dispatch(&fx->s, TK_END, 0, 0);
    view_app_draw(&fx->s, &fx->g);
    check_golden(&fx->g, true, "layers_60x16_end");
    assert_true(grid_resize(&fx->g, 20, 5));
    act_resize(&fx->s, 5, 20);
    view_app_draw(&fx->s, &fx->g); /* must not crash */
    assert_true(grid_contains(&fx->g, "terminal too smal", true));
}

/* ---- the plan screens on resnet8 ---- */

static int setup_resnet(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);

    if (!fx)
        return -1;
    app_init(&fx->s);
    act_resize(&fx->s, 24, 80);
    act_open_model(&fx->s, PARE_TEST_DATA "/resnet8.onnx", "fashion-mnist:test");
    snprintf(fx->s.data_dir, sizeof fx->s.data_dir, "%s", PARE_TEST_DATA "/fmnist-sample");
    if (!grid_init(&fx->g, 80, 24) || !fx->s.graph || !fx->s.groups)
        return -1;
    *state = fx;
    return 0;
}

static void press(app_state *s, const char *text)
{
    for (const char *p = text; *p; p++)
        keys_dispatch(s, *p == '\n' ? TK_ENTER : *p, 0, 0);
}

static void test_plan_two_ratios(void **state)
{
    fixture *fx = *state;

    press(&fx->s, "4j0.5\njj.3\n");
    keys_dispatch(&fx->s, ' ', 0, 0);
    view_app_draw(&fx->s, &fx->g);
    check_golden(&fx->g, true, "plan_two_ratios");
    assert_true(grid_contains(&fx->g, "FLOPs 18.77 M->13.33 M", true));
    /* Plan names groups as Sens does (the producer); the value is on the detail line */
    assert_true(grid_contains(&fx->g, "  /layer1/conv1/Conv ", true));
    assert_false(grid_contains(&fx->g, "/layer2/conv1/Conv_output_0   ", true));
    assert_true(grid_contains(&fx->g, "value /layer3/conv1/Conv_output_0", true)); /* the cursor's */
    assert_true(grid_contains(&fx->g, "0-9 . type a ratio", true));
    assert_true(grid_contains(&fx->g, "Tab,F1-8 Screen", true));
    /* wide: the value name is a second column */
    assert_true(grid_resize(&fx->g, 120, 30));
    act_resize(&fx->s, 30, 120);
    view_app_draw(&fx->s, &fx->g);
    assert_true(grid_contains(&fx->g, "value (job file key)", true));
    assert_true(grid_contains(&fx->g, "/layer1/conv1/Conv             /layer1/conv1/Conv_output_0", true));
    assert_true(grid_resize(&fx->g, 80, 24));
    act_resize(&fx->s, 24, 80);
    /* Layers shows the planned ratios and the totals of the plan (digits type
       a ratio on Plan: F1 goes to Layers) */
    keys_dispatch(&fx->s, TK_F1, 0, 0);
    view_app_draw(&fx->s, &fx->g);
    check_golden(&fx->g, true, "layers_with_plan");
}

static void test_quant_skips(void **state)
{
    fixture *fx = *state;

    press(&fx->s, "5  b");
    view_app_draw(&fx->s, &fx->g);
    check_golden(&fx->g, true, "quant_two_skipped");
    check_golden(&fx->g, false, "quant_two_skipped_ascii");
}

static void test_distill_pair(void **state)
{
    fixture *fx = *state;

    press(&fx->s, "4j0.5\n"); /* prune layer1.conv1: its Relu output needs an adapter */
    keys_dispatch(&fx->s, TK_ALT_6, 0, 0);
    for (int i = 0; i < 3; i++)
        keys_dispatch(&fx->s, 'j', 0, 0);
    keys_dispatch(&fx->s, TK_ENTER, 0, 0);
    view_app_draw(&fx->s, &fx->g);
    check_golden(&fx->g, true, "distill_teacher_picked");
    keys_dispatch(&fx->s, TK_ENTER, 0, 0);
    keys_dispatch(&fx->s, TK_END, 0, 0);
    keys_dispatch(&fx->s, TK_ENTER, 0, 0);
    keys_dispatch(&fx->s, TK_ENTER, 0, 0);
    view_app_draw(&fx->s, &fx->g);
    check_golden(&fx->g, true, "distill_two_pairs");
}

/* Truncated cells are marked: "…" (UTF-8) or "~" (ASCII) */
static void test_truncation_marked(void **state)
{
    fixture *fx = *state;
    char buf[300];

    (void)state;
    assert_string_equal(grid_tail("/layer1/relu1/Relu_output_0", 10, buf, sizeof buf),
                        "\xe2\x80\xa6_output_0");
    assert_string_equal(grid_head("GlobalAveragePool", 8, buf, sizeof buf), "GlobalA\xe2\x80\xa6");
    assert_string_equal(grid_tail("short", 10, buf, sizeof buf), "short");
    assert_string_equal(grid_tail("\xc3\xa9t\xc3\xa9\xc3\xa9t\xc3\xa9", 3, buf, sizeof buf),
                        "\xe2\x80\xa6t\xc3\xa9"); /* characters, not bytes */
    assert_int_equal(grid_utf8_len(buf), 3);
    press(&fx->s, "5");
    view_app_draw(&fx->s, &fx->g);
    assert_true(grid_contains(&fx->g, "\xe2\x80\xa6tem/stem.2/Relu_output_0", true));
    assert_true(grid_contains(&fx->g, "~tem/stem.2/Relu_output_0", false));
    /* Layers: names cut at the right end */
    keys_dispatch(&fx->s, TK_F1, 0, 0);
    view_app_draw(&fx->s, &fx->g);
    assert_true(grid_contains(&fx->g, "/layer2/shortcut/s\xe2\x80\xa6", true));
    assert_true(grid_contains(&fx->g, "/layer2/shortcut/s~", false));
}

static void test_jobs_list(void **state)
{
    fixture *fx = *state;
    app_state *s = &fx->s;
    app_job *j = calloc(3, sizeof *j);

    /* jobs as the worker's events leave them (no worker: fixed numbers) */
    assert_non_null(j);
    s->jobs = pare_calloc(3, sizeof *s->jobs);
    assert_non_null(s->jobs);
    s->cap_jobs = 3;
    s->n_jobs = 3;
    j[0] = (app_job){.id = 1, .kind = JOB_SENS, .state = JS_DONE, .name = "sensitivity sweep, 256 samples",
                     .done = 54, .total = 54, .seconds = 21.0, .loss = NAN, .metric = NAN, .n_result = 2};
    snprintf(j[0].result[0], sizeof j[0].result[0], "baseline top-1 0.9180 on 256 samples");
    snprintf(j[0].result[1], sizeof j[0].result[1], "54 points in 20.8 s: see the Sens screen");
    j[1] = (app_job){.id = 2, .kind = JOB_EVAL, .state = JS_RUNNING, .name = "eval of the pruned plan, 256 samples",
                     .done = 3, .total = 8, .rate = 2.5, .seconds = 1.2, .event_seconds = 1.2, .loss = NAN, .metric = 0.91,
                     .stage = "eval", .unit = "batch", .detail = "the planned model"};
    j[2] = (app_job){.id = 3, .kind = JOB_PTQ, .state = JS_QUEUED, .name = "PTQ of the pruned plan, 256 samples",
                     .loss = NAN, .metric = NAN};
    memcpy(s->jobs, j, 3 * sizeof *j);
    free(j);
    act_screen_set(s, SCREEN_JOBS);
    keys_dispatch(s, 'j', 0, 0);
    view_app_draw(s, &fx->g);
    check_golden(&fx->g, true, "jobs_three");
    keys_dispatch(s, 'k', 0, 0);
    keys_dispatch(s, TK_ENTER, 0, 0);
    view_app_draw(s, &fx->g);
    check_golden(&fx->g, true, "jobs_result");
    s->n_jobs = 0; /* not from a queue: nothing to cancel */
}

static void test_sens_after_sweep(void **state)
{
    fixture *fx = *state;
    app_state *s = &fx->s;

    s->limit = 32;
    press(&fx->s, "3");
    view_app_draw(s, &fx->g);
    assert_true(grid_contains(&fx->g, "no sweep yet: r prunes each group", true));
    press(&fx->s, "r");
    for (int i = 0; i < 12000 && app_jobs_busy(s); i++) {
        struct timespec ts = {0, 10000000};

        nanosleep(&ts, NULL);
        keys_dispatch(s, TK_TICK, 0, 0);
    }
    view_app_draw(s, &fx->g);
    assert_true(grid_contains(&fx->g, "baseline top-1", true));
    assert_true(grid_contains(&fx->g, "curve /stem/stem.0/Conv:", true));
    assert_true(grid_contains(&fx->g, "0.10  0.20  0.30", true));
    press(&fx->s, "t0.3\n");
    view_app_draw(s, &fx->g);
    assert_true(grid_contains(&fx->g, "pick", true));
    assert_true(grid_contains(&fx->g, "target -30% FLOPs", true));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_layers_80x24, setup, teardown),
        cmocka_unit_test_setup_teardown(test_layers_sorted_ascii, setup, teardown),
        cmocka_unit_test_setup_teardown(test_inspect_conv2, setup, teardown),
        cmocka_unit_test_setup_teardown(test_help_filtered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_after_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_too_small_and_resize, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plan_two_ratios, setup_resnet, teardown),
        cmocka_unit_test_setup_teardown(test_quant_skips, setup_resnet, teardown),
        cmocka_unit_test_setup_teardown(test_distill_pair, setup_resnet, teardown),
        cmocka_unit_test_setup_teardown(test_truncation_marked, setup_resnet, teardown),
        cmocka_unit_test_setup_teardown(test_jobs_list, setup_resnet, teardown),
        cmocka_unit_test_setup_teardown(test_sens_after_sweep, setup_resnet, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
