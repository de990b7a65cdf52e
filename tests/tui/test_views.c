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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_layers_80x24, setup, teardown),
        cmocka_unit_test_setup_teardown(test_layers_sorted_ascii, setup, teardown),
        cmocka_unit_test_setup_teardown(test_inspect_conv2, setup, teardown),
        cmocka_unit_test_setup_teardown(test_help_filtered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_after_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_too_small_and_resize, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
