/* Layers tree mode (tui/layers_tree.c): scopes from node names, their sums,
 * opening and closing, cursor, search, and the table left as it was. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "app.h"
#include "grid.h"

#define RESNET PARE_TEST_DATA "/resnet8.onnx"

static int setup_resnet(void **state)
{
    static app_state s;

    app_init(&s);
    act_resize(&s, 24, 80);
    act_open_model(&s, RESNET, NULL);
    *state = &s;
    return s.graph && s.tree ? 0 : -1;
}

static int teardown(void **state)
{
    app_fini(*state);
    return 0;
}

static int key(app_state *s, int k)
{
    return keys_dispatch(s, k, 0, 0);
}

/* The visible row whose item is the scope or node labelled label at depth. */
static int row_of(const app_state *s, const char *label, int depth)
{
    const layers_tree *t = s->tree;

    for (int r = 0; r < t->n_rows; r++) {
        const layers_tree_item *it = &t->items[t->rows[r]];

        if (it->depth == depth && it->label && (int)strlen(label) == it->len &&
            !memcmp(it->label, label, (size_t)it->len))
            return r;
    }
    return -1;
}

static const layers_tree_item *cursor_item(const app_state *s)
{
    return &s->tree->items[s->tree->rows[s->tree->cursor]];
}

/* Params summed over the nodes whose names start with prefix. */
static int64_t params_under(const app_state *s, const char *prefix)
{
    int64_t sum = 0;

    for (int i = 0; i < s->graph->n_nodes; i++)
        if (!strncmp(s->graph->nodes[i].name, prefix, strlen(prefix)))
            sum += s->stats->layers[i].params;
    return sum;
}

static void draw(const app_state *s, grid *g)
{
    assert_true(grid_init(g, s->cols, s->rows));
    view_app_draw(s, g);
}

static void test_toggle_shows_top_level_scopes(void **state)
{
    app_state *s = *state;
    int r;

    assert_false(s->tree_on);
    assert_int_equal(key(s, 'T'), APP_FX_REDRAW);
    assert_true(s->tree_on);
    /* resnet8: stem layer1 layer2 layer3 pool flatten fc, all closed */
    assert_int_equal(s->tree->n_rows, 7);
    r = row_of(s, "layer1", 0);
    assert_int_equal(r, 1);
    {
        const layers_tree_item *it = &s->tree->items[s->tree->rows[r]];

        assert_int_equal(it->node, -1);
        assert_int_equal(it->n_nodes, 5);
        assert_int_equal(it->params, params_under(s, "/layer1/"));
        assert_int_equal(it->params, 4640);
    }
    assert_int_equal(s->tree->items[s->tree->rows[row_of(s, "layer3", 0)]].params, 57536);
}

static void test_view_draws_scopes_and_totals(void **state)
{
    app_state *s = *state;
    grid g;

    key(s, 'T');
    draw(s, &g);
    assert_true(grid_contains(&g, "scope / name", true));
    assert_true(grid_contains(&g, "\xe2\x96\xb8 /layer1", true)); /* ▸ closed */
    assert_true(grid_contains(&g, "+ /layer1", false));           /* ASCII */
    assert_true(grid_contains(&g, "5 nodes", true));
    assert_true(grid_contains(&g, "57,536", true));
    assert_true(grid_contains(&g, "total 22 layers  params 77,418", true));
    assert_true(grid_contains(&g, "row 1/7", true));
    key(s, 'j');
    key(s, TK_ENTER);
    grid_fini(&g);
    draw(s, &g);
    assert_true(grid_contains(&g, "\xe2\x96\xbe /layer1", true)); /* ▾ open */
    assert_true(grid_contains(&g, "- /layer1", false));
    assert_true(grid_contains(&g, "  \xe2\x96\xb8 /conv1", true));
    assert_true(grid_contains(&g, "row 2/12", true));
    grid_fini(&g);
}

static void test_open_close_and_cursor(void **state)
{
    app_state *s = *state;

    key(s, 'T');
    key(s, 'j');
    assert_int_equal(s->tree->cursor, 1);
    assert_int_equal(cursor_item(s)->len, 6); /* layer1 */
    key(s, 'l');                              /* opens layer1: conv1 relu1 conv2 Add relu2 */
    assert_int_equal(s->tree->n_rows, 12);
    assert_int_equal(s->tree->cursor, 1);
    key(s, 'l'); /* open already: to the first child */
    assert_int_equal(s->tree->cursor, 2);
    assert_int_equal(row_of(s, "conv1", 1), 2);
    key(s, TK_RIGHT); /* opens conv1: its Conv node */
    assert_int_equal(s->tree->n_rows, 13);
    key(s, 'j');
    assert_true(cursor_item(s)->node >= 0);
    assert_string_equal(s->graph->nodes[cursor_item(s)->node].name, "/layer1/conv1/Conv");
    key(s, 'h'); /* a node: to its scope */
    assert_int_equal(s->tree->cursor, 2);
    key(s, TK_LEFT); /* open scope: closes it */
    assert_int_equal(s->tree->n_rows, 12);
    key(s, 'h'); /* closed scope: to the parent */
    assert_int_equal(s->tree->cursor, 1);
    key(s, 'h'); /* closes layer1 */
    assert_int_equal(s->tree->n_rows, 7);
    assert_int_equal(s->tree->cursor, 1);
    key(s, TK_ENTER); /* Enter toggles: open */
    assert_int_equal(s->tree->n_rows, 12);
    key(s, '\r');
    assert_int_equal(s->tree->n_rows, 7);
    key(s, 'G');
    assert_int_equal(s->tree->cursor, 6);
    key(s, 'j');
    assert_int_equal(s->tree->cursor, 6);
    key(s, 'g');
    assert_int_equal(s->tree->cursor, 0);
}

static void test_open_all_then_close_all(void **state)
{
    app_state *s = *state;

    key(s, 'T');
    key(s, '*');
    assert_int_equal(s->tree->n_rows, s->tree->n_items);
    assert_int_equal(s->tree->n_items, s->graph->n_nodes + s->tree->n_scopes);
    key(s, 'G');
    assert_int_equal(s->tree->cursor, s->tree->n_rows - 1);
    key(s, '*');
    assert_int_equal(s->tree->n_rows, 7);
    assert_int_equal(s->tree->cursor, 6); /* fc: the last node's top scope */
}

static void test_search_opens_the_scopes(void **state)
{
    app_state *s = *state;
    const char *text = "shortcut";

    key(s, 'T');
    key(s, '/');
    for (const char *p = text; *p; p++)
        key(s, *p);
    key(s, TK_ENTER);
    assert_false(s->searching);
    assert_true(cursor_item(s)->node >= 0);
    assert_string_equal(s->graph->nodes[cursor_item(s)->node].name, "/layer2/shortcut/shortcut.0/Conv");
    key(s, 'n');
    assert_string_equal(s->graph->nodes[cursor_item(s)->node].name, "/layer3/shortcut/shortcut.0/Conv");
    key(s, 'n'); /* wraps */
    assert_string_equal(s->graph->nodes[cursor_item(s)->node].name, "/layer2/shortcut/shortcut.0/Conv");
    key(s, 'N');
    assert_string_equal(s->graph->nodes[cursor_item(s)->node].name, "/layer3/shortcut/shortcut.0/Conv");
    assert_int_equal(s->cursor, 0); /* the table's cursor stayed */
}

static void test_table_unchanged_when_toggled_back(void **state)
{
    app_state *s = *state;
    char before[32][256], row[256];
    grid g;
    int cursor;

    key(s, 'p'); /* sort the table by params */
    key(s, 'j');
    cursor = s->cursor;
    draw(s, &g);
    for (int y = 0; y < 32 && y < g.h; y++)
        grid_row(&g, y, true, before[y], sizeof before[y]);
    grid_fini(&g);
    key(s, 'T');
    key(s, 'j');
    key(s, TK_ENTER);
    key(s, 'f'); /* ignored in the tree, with a message */
    assert_non_null(strstr(s->message, "graph order"));
    key(s, 'T');
    assert_false(s->tree_on);
    assert_int_equal(s->sort, SORT_PARAMS);
    assert_int_equal(s->cursor, cursor);
    draw(s, &g);
    for (int y = 0; y < g.h - 2; y++) /* all but the message and key bar */
        assert_string_equal(grid_row(&g, y, true, row, sizeof row), before[y]);
    grid_fini(&g);
}

static void test_enter_on_node_inspects(void **state)
{
    app_state *s = *state;

    key(s, 'T');
    key(s, TK_ENTER); /* opens stem */
    key(s, 'j');      /* stem.0 */
    key(s, 'l');
    key(s, 'j'); /* its Conv */
    key(s, TK_ENTER);
    assert_int_equal(s->screen, SCREEN_INSPECT);
    assert_string_equal(s->graph->nodes[s->inspect_node].name, "/stem/stem.0/Conv");
    key(s, 'h'); /* back to Layers: still the tree */
    assert_int_equal(s->screen, SCREEN_LAYERS);
    assert_true(s->tree_on);
}

static void test_mouse_click_picks_a_tree_row(void **state)
{
    app_state *s = *state;

    key(s, 'T');
    assert_int_equal(act_click(s, 2 + 3, 5), APP_FX_REDRAW);
    assert_int_equal(s->tree->cursor, 3);
    assert_int_equal(act_click(s, 2 + 20, 5), APP_FX_NONE); /* past the rows */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_toggle_shows_top_level_scopes, setup_resnet, teardown),
        cmocka_unit_test_setup_teardown(test_view_draws_scopes_and_totals, setup_resnet, teardown),
        cmocka_unit_test_setup_teardown(test_open_close_and_cursor, setup_resnet, teardown),
        cmocka_unit_test_setup_teardown(test_open_all_then_close_all, setup_resnet, teardown),
        cmocka_unit_test_setup_teardown(test_search_opens_the_scopes, setup_resnet, teardown),
        cmocka_unit_test_setup_teardown(test_table_unchanged_when_toggled_back, setup_resnet, teardown),
        cmocka_unit_test_setup_teardown(test_enter_on_node_inspects, setup_resnet, teardown),
        cmocka_unit_test_setup_teardown(test_mouse_click_picks_a_tree_row, setup_resnet, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
