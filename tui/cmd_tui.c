/* `pare tui MODEL [--data SPEC]` and `pare` with no arguments (the demo
 * model): the workbench's main loop. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app.h"
#include "cli.h"

#ifndef PARE_FASHION_MNIST
#define PARE_FASHION_MNIST ""
#endif

static const cli_option tui_options[] = {
    {"data", "SPEC", "dataset for the screens that run the model (e.g. fashion-mnist:test)", false, 0},
    {"config", "FILE", "open a plan saved by the workbench (a pare compress job file)", false, 0},
};
static const char *const tui_positional[] = {"MODEL"};
static const cli_spec tui_spec = {
    .name = "tui",
    .synopsis = "MODEL [--data SPEC] [--config FILE]",
    .summary = "Opens the workbench on a model: Layers, Inspect, Sensitivity (sweeps as\n"
               "background jobs), Plan (per-group prune ratios), Quant (skip lists, bits),\n"
               "Distill (teacher/student pairs), Jobs (eval, PTQ, compress) and Log. The\n"
               "plan saves as a job file for `pare compress -c FILE` (:w FILE or s) and\n"
               "opens again with --config. Press ? inside for every key. `pare` with no\n"
               "arguments opens the demo model.",
    .options = tui_options,
    .n_options = 2,
    .positional = tui_positional,
    .n_required = 1,
    .n_positional = 1,
    .epilog = "The demo model is $PARE_DEMO_MODEL, else tests/data/resnet8.onnx found\n"
              "relative to the executable.",
};

static int run(const char *model, const char *data, const char *config)
{
    app_state s;
    grid g;
    int fx = APP_FX_REDRAW, rows, cols, my = 0, mx = 0;
    const char *fm = getenv("PARE_FASHION_MNIST");

    if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO)) {
        fprintf(stderr, "pare tui: needs a terminal (stdin and stdout must be a tty)\n");
        return CLI_USAGE;
    }
    app_init(&s);
    if (!grid_init(&g, 1, 1) || !term_init()) {
        grid_fini(&g);
        app_fini(&s);
        fprintf(stderr, "pare tui: cannot start the terminal\n");
        return CLI_FAILED;
    }
    snprintf(s.data_dir, sizeof s.data_dir, "%s", fm && fm[0] ? fm : PARE_FASHION_MNIST);
    act_open_model(&s, model, data);
    if (config && s.graph)
        act_plan_load(&s, config);
    while (!(fx & APP_FX_QUIT)) {
        term_size(&rows, &cols);
        if (rows != g.h || cols != g.w) {
            grid_resize(&g, cols, rows);
            act_resize(&s, rows, cols);
            fx |= APP_FX_REDRAW;
        }
        if (fx & APP_FX_REDRAW) {
            view_app_draw(&s, &g);
            term_blit(&g);
        }
        fx = keys_dispatch(&s, term_read_key(&my, &mx), my, mx);
    }
    term_fini();
    grid_fini(&g);
    app_fini(&s);
    return CLI_OK;
}

int cmd_tui(int argc, char **argv)
{
    cli_args args;
    int rc = cli_parse(&tui_spec, argc, argv, &args);

    if (rc == CLI_OK)
        rc = run(args.pos[0], cli_str(&args, cli_opt(&tui_spec, "data"), NULL),
                 cli_str(&args, cli_opt(&tui_spec, "config"), NULL));
    else if (rc < 0)
        rc = CLI_OK;
    cli_args_fini(&args);
    return rc;
}

/* The demo model: $PARE_DEMO_MODEL, else tests/data/resnet8.onnx near the
 * executable (build trees are one or two levels below the source tree). */
static bool find_demo(const char *argv0, char *out, size_t size)
{
    static const char *const rel[] = {"/../tests/data/resnet8.onnx",
                                      "/../../tests/data/resnet8.onnx",
                                      "/../../../tests/data/resnet8.onnx",
                                      "/../share/pare/resnet8.onnx"};
    const char *env = getenv("PARE_DEMO_MODEL");
    char exe[PATH_MAX];
    ssize_t n;
    char *slash;

    if (env && env[0]) {
        snprintf(out, size, "%s", env);
        return true;
    }
    n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0)
        exe[n] = '\0';
    else
        snprintf(exe, sizeof exe, "%s", argv0);
    slash = strrchr(exe, '/');
    if (!slash)
        return false;
    *slash = '\0';
    for (size_t i = 0; i < sizeof rel / sizeof rel[0]; i++) {
        snprintf(out, size, "%s%s", exe, rel[i]);
        if (access(out, R_OK) == 0)
            return true;
    }
    return false;
}

int cmd_tui_default(const char *argv0)
{
    char path[PATH_MAX + 64];

    if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO))
        return -1;
    if (!find_demo(argv0, path, sizeof path)) {
        fprintf(stderr, "pare: cannot find the demo model tests/data/resnet8.onnx near the "
                        "executable (set PARE_DEMO_MODEL, or run `pare tui MODEL`)\n");
        return CLI_USAGE;
    }
    return run(path, "fashion-mnist:test", NULL);
}
