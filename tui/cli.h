/* The `pare` command line: subcommands, option parsing and shared helpers.
 *
 * Each subcommand lives in tui/cmd_<name>.c as `int cmd_<name>(int argc,
 * char **argv)` (argv[0] is the subcommand's name) and returns the process
 * exit code: CLI_OK, CLI_FAILED (the job failed) or CLI_USAGE (bad usage or
 * input). tui/main.c maps names to these functions.
 *
 * Options are described by a table (cli_option) from which the parser also
 * writes the command's --help text, so the two cannot disagree. */
#ifndef PARE_TUI_CLI_H
#define PARE_TUI_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "pare/data.h"
#include "pare/error.h"
#include "pare/graph.h"

enum { CLI_OK = 0, CLI_FAILED = 1, CLI_USAGE = 2 };

typedef int (*cli_cmd_fn)(int argc, char **argv);

typedef struct cli_command {
    const char *name;
    cli_cmd_fn fn;
    const char *help;        /* one line for `pare --help` */
} cli_command;

int cmd_info(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_ops(int argc, char **argv);
int cmd_compress(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_distill(int argc, char **argv);
int cmd_quant(int argc, char **argv);
int cmd_prune(int argc, char **argv);
int cmd_sens(int argc, char **argv);
int cmd_config(int argc, char **argv);

/* ---- options ----------------------------------------------------------------- */

#define CLI_MAX_OPTIONS 48
#define CLI_MAX_POSITIONAL 4

typedef struct cli_option {
    const char *name;        /* "batch" for --batch */
    const char *metavar;     /* "N"; NULL for a flag without a value */
    const char *help;
    bool multi;              /* takes one or more values (`--tap A B`), repeatable */
    char short_name;         /* 'o' for -o; 0: none */
} cli_option;

typedef struct cli_spec {
    const char *name;        /* "eval" */
    const char *synopsis;    /* "MODEL --data SPEC [options]" */
    const char *summary;     /* what the command does; may span lines */
    const cli_option *options;
    int n_options;
    const char *const *positional; /* names of positionals ("MODEL") */
    int n_required;          /* positionals that must be given */
    int n_positional;        /* positionals accepted */
    const char *epilog;      /* extra text after the options; may be NULL */
} cli_spec;

typedef struct cli_args {
    const char *pos[CLI_MAX_POSITIONAL];
    int n_pos;
    int count[CLI_MAX_OPTIONS];         /* times each option was given */
    const char *value[CLI_MAX_OPTIONS]; /* last value of each option */
    const char **multi[CLI_MAX_OPTIONS];/* all values of multi options (owned) */
    int n_multi[CLI_MAX_OPTIONS];
} cli_args;

/* Parses argv[1..] against spec. Returns CLI_OK, CLI_USAGE (an unknown option,
 * a missing value or positional; the problem and the usage are printed on
 * stderr), or -1 after printing --help on stdout (the caller exits 0).
 * Free with cli_args_fini on every path. */
int cli_parse(const cli_spec *spec, int argc, char **argv, cli_args *args);
void cli_args_fini(cli_args *args);

/* Index of option `name` in spec (programming error if absent). */
int cli_opt(const cli_spec *spec, const char *name);
static inline bool cli_has(const cli_args *a, int opt) { return a->count[opt] > 0; }
static inline const char *cli_str(const cli_args *a, int opt, const char *def)
{
    return a->count[opt] ? a->value[opt] : def;
}

void cli_usage(const cli_spec *spec, FILE *f);
void cli_help(const cli_spec *spec, FILE *f);

/* Prints "pare <cmd>: msg" and the usage line on stderr; returns CLI_USAGE. */
int cli_usage_error(const cli_spec *spec, const char *fmt, ...) PARE_PRINTF(2, 3);

/* Number arguments: an integer in [min, max] / a positive float; on bad text
 * they print a usage error naming the option and return false. */
bool cli_get_int(const cli_spec *spec, const cli_args *a, int opt, long min, long max,
                 long *out);
bool cli_get_double(const cli_spec *spec, const cli_args *a, int opt, double min, double *out);
/* Comma-separated floats ("0.5,0.5,0.5") into out[max]; count in *n. */
bool cli_get_floats(const cli_spec *spec, const cli_args *a, int opt, float *out, int max,
                    int *n);

/* --mean, --std and --scale (options of those names in spec) into d's
 * normalisation fields; other fields of d are untouched. */
bool cli_get_normalisation(const cli_spec *spec, const cli_args *a, pare_data_opts *d);

/* ---- errors and results -------------------------------------------------------- */

/* Exit code for a core status: input, I/O and unsupported -> CLI_USAGE,
 * everything else -> CLI_FAILED. */
int cli_exit_code(pare_status rc);
/* Prints "pare: where: msg (hint)" on one line on stderr; returns the exit code. */
int cli_report(const pare_error *err);
/* Loads a model, printing the error on failure; returns an exit code. */
int cli_load_model(const char *path, pare_graph **out);

/* ---- formatting ------------------------------------------------------------------ */

/* "61,706" */
char *cli_fmt_count(int64_t n, char *buf, size_t size);
/* "249.3 KB", "1.2 MB", "512 B" (powers of 1024) */
char *cli_fmt_bytes(double bytes, char *buf, size_t size);
/* "850.2 K", "12.41 M", "1.05 G" */
char *cli_fmt_si(double v, char *buf, size_t size);

/* Monotonic seconds. */
double cli_now(void);
/* True when a and b name the same file (same path, or same device and inode):
 * how commands refuse to write over their input. */
bool cli_same_file(const char *a, const char *b);
/* Size of a file in bytes, -1 when it cannot be read. */
int64_t cli_file_size(const char *path);

/* Ctrl-C: cli_sigint_install makes the first SIGINT set a flag (a second one
 * kills as usual); cli_sigint_restore puts the previous handler back. */
void cli_sigint_install(void);
void cli_sigint_restore(void);
bool cli_interrupted(void);

#endif
