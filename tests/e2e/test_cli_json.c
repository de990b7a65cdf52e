/* The CLI's JSON writer, option parser and number formatting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cli.h"
#include "json.h"


static char *capture(void (*write)(json_writer *), bool pretty)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    json_writer w;

    assert_non_null(f);
    json_init(&w, f, pretty);
    write(&w);
    fclose(f);
    return buf;
}

static void write_doc(json_writer *w)
{
    json_begin_object(w);
    json_key(w, "name");
    json_string(w, "a\"b\\c\n");
    json_key(w, "n");
    json_int(w, -42);
    json_key(w, "list");
    json_begin_array(w);
    json_double(w, 0.1);
    json_double(w, 1.0 / 0.0);
    json_bool(w, true);
    json_null(w);
    json_begin_object(w);
    json_end_object(w);
    json_begin_array(w);
    json_end_array(w);
    json_end_array(w);
    json_key(w, "big");
    json_double(w, 92.19);
    json_end_object(w);
    json_finish(w);
}

static void test_compact_document(void **state)
{
    char *s = capture(write_doc, false);
    (void)state;
    assert_string_equal(s, "{\"name\":\"a\\\"b\\\\c\\n\",\"n\":-42,"
                           "\"list\":[0.1,null,true,null,{},[]],\"big\":92.19}\n");
    free(s);
}

static void test_pretty_document(void **state)
{
    char *s = capture(write_doc, true);
    (void)state;
    assert_string_equal(s, "{\n  \"name\": \"a\\\"b\\\\c\\n\",\n  \"n\": -42,\n  \"list\": [\n"
                           "    0.1,\n    null,\n    true,\n    null,\n    {},\n    []\n  ],\n"
                           "  \"big\": 92.19\n}\n");
    free(s);
}

static void test_escape_control_and_utf8(void **state)
{
    char buf[128];
    (void)state;
    assert_string_equal(json_escape("tab\there\x01\x1f\x7f", buf, sizeof buf),
                        "tab\\there\\u0001\\u001f\\u007f");
    /* Valid UTF-8 passes through: é (2 bytes), € (3), 😀 (4). */
    assert_string_equal(json_escape("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", buf, sizeof buf),
                        "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
    /* Invalid bytes become U+FFFD: a lone continuation, a truncated sequence,
       an overlong encoding, a surrogate. */
    assert_string_equal(json_escape("a\x80z", buf, sizeof buf), "a\\ufffdz");
    assert_string_equal(json_escape("\xe2\x82", buf, sizeof buf), "\\ufffd\\ufffd");
    assert_string_equal(json_escape("\xc0\xaf", buf, sizeof buf), "\\ufffd\\ufffd");
    assert_string_equal(json_escape("\xed\xa0\x80", buf, sizeof buf), "\\ufffd\\ufffd\\ufffd");
    /* Truncation keeps the buffer terminated. */
    assert_string_equal(json_escape("abcdef", buf, 4), "abc");
}

static void test_doubles_round_trip(void **state)
{
    double vals[] = {0.9109, 1e-300, 123456789.125, -0.0, 1.0 / 3.0};
    (void)state;
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        json_writer w;
        json_init(&w, f, false);
        json_double(&w, vals[i]);
        fclose(f);
        assert_true(strtod(buf, NULL) == vals[i]);
        free(buf);
    }
}

static void test_format_numbers(void **state)
{
    char buf[64];
    (void)state;
    assert_string_equal(cli_fmt_count(61706, buf, sizeof buf), "61,706");
    assert_string_equal(cli_fmt_count(0, buf, sizeof buf), "0");
    assert_string_equal(cli_fmt_count(999, buf, sizeof buf), "999");
    assert_string_equal(cli_fmt_count(-1234567, buf, sizeof buf), "-1,234,567");
    assert_string_equal(cli_fmt_bytes(512, buf, sizeof buf), "512 B");
    assert_string_equal(cli_fmt_bytes(255180, buf, sizeof buf), "249.2 KB");
    assert_string_equal(cli_fmt_si(850200, buf, sizeof buf), "850 K");
    assert_string_equal(cli_fmt_si(12410000, buf, sizeof buf), "12.4 M");
    assert_string_equal(cli_fmt_si(1.05e9, buf, sizeof buf), "1.05 G");
}

static const cli_option opts[] = {
    {"batch", "B", "batch", false, 0},
    {"tap", "VALUE", "taps", true, 0},
    {"json", NULL, "json", false, 0},
    {"mean", "M", "mean", false, 0},
};
static const char *const pos_names[] = {"MODEL"};
static const cli_spec spec = {
    .name = "t", .synopsis = "MODEL", .summary = "test", .options = opts, .n_options = 4,
    .positional = pos_names, .n_required = 1, .n_positional = 1,
};

static int parse(cli_args *a, int argc, const char **argv)
{
    return cli_parse(&spec, argc, (char **)argv, a);
}

static void test_parse_options(void **state)
{
    cli_args a;
    const char *argv[] = {"t", "m.onnx", "--batch=8", "--tap", "x", "y", "--json",
                          "--tap", "z", "--mean", "-0.5"};
    long b = 0;
    (void)state;
    assert_int_equal(parse(&a, 11, argv), CLI_OK);
    assert_string_equal(a.pos[0], "m.onnx");
    assert_true(cli_get_int(&spec, &a, cli_opt(&spec, "batch"), 1, 100, &b));
    assert_int_equal(b, 8);
    assert_int_equal(a.n_multi[1], 3);
    assert_string_equal(a.multi[1][0], "x");
    assert_string_equal(a.multi[1][1], "y");
    assert_string_equal(a.multi[1][2], "z");
    assert_true(cli_has(&a, cli_opt(&spec, "json")));
    assert_string_equal(cli_str(&a, cli_opt(&spec, "mean"), NULL), "-0.5");
    cli_args_fini(&a);
}

static void test_parse_errors(void **state)
{
    cli_args a;
    const char *unknown[] = {"t", "m.onnx", "--bach", "3"};
    const char *missing_val[] = {"t", "m.onnx", "--batch"};
    const char *missing_pos[] = {"t", "--json"};
    const char *extra[] = {"t", "a", "b"};
    const char *flag_val[] = {"t", "a", "--json=1"};
    const char *help[] = {"t", "--help"};
    long b = 0;
    (void)state;
    assert_int_equal(parse(&a, 4, unknown), CLI_USAGE);
    cli_args_fini(&a);
    assert_int_equal(parse(&a, 3, missing_val), CLI_USAGE);
    cli_args_fini(&a);
    assert_int_equal(parse(&a, 2, missing_pos), CLI_USAGE);
    cli_args_fini(&a);
    assert_int_equal(parse(&a, 3, extra), CLI_USAGE);
    cli_args_fini(&a);
    assert_int_equal(parse(&a, 3, flag_val), CLI_USAGE);
    cli_args_fini(&a);
    assert_int_equal(parse(&a, 2, help), -1);
    cli_args_fini(&a);
    {
        const char *bad[] = {"t", "m", "--batch", "1000"};
        assert_int_equal(parse(&a, 4, bad), CLI_OK);
        assert_false(cli_get_int(&spec, &a, cli_opt(&spec, "batch"), 1, 100, &b));
        cli_args_fini(&a);
    }
}

static void test_exit_codes(void **state)
{
    (void)state;
    assert_int_equal(cli_exit_code(PARE_OK), CLI_OK);
    assert_int_equal(cli_exit_code(PARE_EINPUT), CLI_USAGE);
    assert_int_equal(cli_exit_code(PARE_EIO), CLI_USAGE);
    assert_int_equal(cli_exit_code(PARE_EUNSUPPORTED), CLI_USAGE);
    assert_int_equal(cli_exit_code(PARE_ENOMEM), CLI_FAILED);
    assert_int_equal(cli_exit_code(PARE_ECANCELED), CLI_FAILED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_compact_document),
        cmocka_unit_test(test_pretty_document),
        cmocka_unit_test(test_escape_control_and_utf8),
        cmocka_unit_test(test_doubles_round_trip),
        cmocka_unit_test(test_format_numbers),
        cmocka_unit_test(test_parse_options),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_exit_codes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
