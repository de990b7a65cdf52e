/* `pare`: the command table and dispatch. Each subcommand lives in
 * tui/cmd_<name>.c; this table gives its name and one-line help. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "app.h"
#include "cli.h"
#include "pare/error.h"

#ifndef PARE_VERSION
#define PARE_VERSION "unknown"
#endif

static const cli_command commands[] = {
    {"info", cmd_info, "show a model: inputs, outputs, layers with shapes, params and FLOPs"},
    {"eval", cmd_eval, "accuracy on a dataset, or similarity to a reference model; throughput"},
    {"run", cmd_run, "run a model on .npy/.npz inputs, write outputs and tapped values to .npz"},
    {"convert", cmd_convert, "load and save a model (ONNX round trip)"},
    {"bench", cmd_bench, "latency, throughput and memory per batch size"},
    {"ops", cmd_ops, "list the ops pare can run"},
    {"compress", cmd_compress, "run a YAML compression job (prune, fine-tune, distill, quantize) headless"},
    {"train", cmd_train, "fine-tune or train from scratch (--reinit) on labelled data; checkpoints, resume"},
    {"distill", cmd_distill, "knowledge distillation from a teacher (or the model itself); value pairs, losses"},
    {"quant", cmd_quant, "post-training quantization to a QDQ model (calibrate, build, save; --eval compares top-1)"},
    {"prune", cmd_prune, "channel pruning that shrinks the model; unstructured and N:M masks; --show-groups"},
    {"sens", cmd_sens, "pruning sensitivity per channel group; ratios for a FLOPs target"},
    {"config", cmd_config, "validate a YAML job, print it resolved, or print the config key reference"},
    {"tui", cmd_tui, "the workbench: browse a model's layers and weights (also `pare` alone)"},
};
#define N_COMMANDS (int)(sizeof commands / sizeof commands[0])

static void usage(FILE *f)
{
    fprintf(f, "usage: pare COMMAND [ARGS...]\n"
               "       pare COMMAND --help\n"
               "       pare --version\n\n"
               "pare is a terminal workbench for compressing neural networks (ONNX models).\n\n"
               "commands:\n");
    for (int i = 0; i < N_COMMANDS; i++)
        fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].help);
    fprintf(f, "\nexit codes: 0 ok, 1 the job failed, 2 bad usage or input\n");
}

char *openblas_get_corename(void);

/* OpenBLAS 0.3.21 (Debian 12) does not recognise some recent AVX-512 Xeons and
 * falls back to its generic SSE3 (Prescott) kernels, 2-2.5x slower in SGEMM than
 * the SkylakeX ones on the same CPU. It reads OPENBLAS_CORETYPE only while
 * loading, so pare re-executes itself once with it set. A user's
 * OPENBLAS_CORETYPE is kept; PARE_NO_BLAS_FIXUP=1 turns this off. */
static void prefer_fast_blas_kernels(char **argv)
{
    const char *core, *better = NULL;

    if (getenv("OPENBLAS_CORETYPE") || getenv("PARE_NO_BLAS_FIXUP"))
        return;
    core = openblas_get_corename();
    if (!core || (strcasecmp(core, "prescott") && strcasecmp(core, "cooperlake")))
        return;
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f"))
        better = "SkylakeX";
    else if (__builtin_cpu_supports("avx2") && strcasecmp(core, "prescott") == 0)
        better = "Haswell";
    if (better && setenv("OPENBLAS_CORETYPE", better, 1) == 0) {
        /* by its real path, so the process keeps its name ("pare", not "exe") */
        char self[4096];
        ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
        if (n > 0) {
            self[n] = '\0';
            execv(self, argv);
        }
    }
    /* exec failed: go on with the kernels OpenBLAS chose */
}

int main(int argc, char **argv)
{
    const char *names[N_COMMANDS];
    const char *guess;

    prefer_fast_blas_kernels(argv);

    if (argc < 2) {
        int rc = cmd_tui_default(argv[0]); /* -1: not a terminal */

        if (rc >= 0)
            return rc;
        usage(stderr);
        return CLI_USAGE;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
        printf("pare %s\n", PARE_VERSION);
        return CLI_OK;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return CLI_OK;
    }
    for (int i = 0; i < N_COMMANDS; i++) {
        if (!strcmp(argv[1], commands[i].name))
            return commands[i].fn(argc - 1, argv + 1);
        names[i] = commands[i].name;
    }
    guess = pare_closest_word(argv[1], names, N_COMMANDS);
    if (argv[1][0] == '-')
        fprintf(stderr, "pare: unknown option '%s'\n", argv[1]);
    else if (guess)
        fprintf(stderr, "pare: unknown command '%s' (did you mean '%s'?)\n", argv[1], guess);
    else
        fprintf(stderr, "pare: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return CLI_USAGE;
}
