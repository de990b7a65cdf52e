/* Option parsing, error reporting and formatting shared by the subcommands. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cli.h"
#include "pare/alloc.h"

/* ---- options ----------------------------------------------------------------- */

int cli_opt(const cli_spec *spec, const char *name)
{
    for (int i = 0; i < spec->n_options; i++)
        if (!strcmp(spec->options[i].name, name))
            return i;
    PARE_ASSERT(!"option not in the command's table");
    return 0;
}

void cli_usage(const cli_spec *spec, FILE *f)
{
    fprintf(f, "usage: pare %s %s\n", spec->name, spec->synopsis);
}

void cli_help(const cli_spec *spec, FILE *f)
{
    cli_usage(spec, f);
    fprintf(f, "\n%s\n", spec->summary);
    if (spec->n_options)
        fprintf(f, "\noptions:\n");
    for (int i = 0; i < spec->n_options; i++) {
        const cli_option *o = &spec->options[i];
        char left[64];
        char short_form[8] = "";
        if (o->short_name)
            snprintf(short_form, sizeof short_form, "-%c, ", o->short_name);
        snprintf(left, sizeof left, "%s--%s%s%s%s", short_form, o->name, o->metavar ? " " : "",
                 o->metavar ? o->metavar : "", o->multi ? "..." : "");
        fprintf(f, "  %-22s %s\n", left, o->help);
    }
    fprintf(f, "  %-22s %s\n", "--help", "show this help and exit");
    if (spec->epilog)
        fprintf(f, "\n%s\n", spec->epilog);
}

int cli_usage_error(const cli_spec *spec, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "pare %s: ", spec->name);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    cli_usage(spec, stderr);
    fprintf(stderr, "(`pare %s --help` lists the options)\n", spec->name);
    return CLI_USAGE;
}

static int find_option(const cli_spec *spec, const char *name, size_t len)
{
    for (int i = 0; i < spec->n_options; i++)
        if (strlen(spec->options[i].name) == len && !strncmp(spec->options[i].name, name, len))
            return i;
    return -1;
}

static int unknown_option(const cli_spec *spec, const char *arg)
{
    const char *names[CLI_MAX_OPTIONS + 1];
    char word[128];
    const char *guess;
    const char *w = arg + strspn(arg, "-");
    size_t len = strcspn(w, "=");
    int n = 0;

    snprintf(word, sizeof word, "%.*s", (int)(len < 100 ? len : 100), w);
    for (int i = 0; i < spec->n_options; i++)
        names[n++] = spec->options[i].name;
    names[n++] = "help";
    guess = word[0] ? pare_closest_word(word, names, n) : NULL;
    if (guess)
        return cli_usage_error(spec, "unknown option '%s' (did you mean '--%s'?)", arg, guess);
    return cli_usage_error(spec, "unknown option '%s'", arg);
}

static bool push_multi(cli_args *args, int opt, const char *v, int cap)
{
    if (!args->multi[opt]) {
        args->multi[opt] = pare_calloc((size_t)cap, sizeof(char *));
        if (!args->multi[opt])
            return false;
    }
    args->multi[opt][args->n_multi[opt]++] = v;
    return true;
}

int cli_parse(const cli_spec *spec, int argc, char **argv, cli_args *args)
{
    bool only_positional = false;

    PARE_ASSERT(spec->n_options <= CLI_MAX_OPTIONS);
    memset(args, 0, sizeof *args);
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char *eq, *val = NULL;
        const cli_option *o;
        int k;

        if (only_positional || arg[0] != '-' || !strcmp(arg, "-")) {
            if (args->n_pos >= spec->n_positional || args->n_pos >= CLI_MAX_POSITIONAL)
                return cli_usage_error(spec, "unexpected argument '%s'", arg);
            args->pos[args->n_pos++] = arg;
            continue;
        }
        if (!strcmp(arg, "--")) {
            only_positional = true;
            continue;
        }
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            cli_help(spec, stdout);
            return -1;
        }
        if (arg[1] != '-') {
            /* -o VALUE: a short alias */
            k = -1;
            for (int s = 0; arg[2] == '\0' && s < spec->n_options; s++)
                if (spec->options[s].short_name && spec->options[s].short_name == arg[1])
                    k = s;
            if (k < 0)
                return unknown_option(spec, arg);
            eq = NULL;
        } else {
            eq = strchr(arg + 2, '=');
            k = find_option(spec, arg + 2, eq ? (size_t)(eq - arg - 2) : strlen(arg + 2));
        }
        if (k < 0)
            return unknown_option(spec, arg);
        o = &spec->options[k];
        if (!o->metavar) {
            if (eq)
                return cli_usage_error(spec, "option '--%s' takes no value", o->name);
            args->count[k]++;
            continue;
        }
        if (eq)
            val = eq + 1;
        else if (i + 1 < argc && (argv[i + 1][0] != '-' || argv[i + 1][1] == '\0' ||
                                  (argv[i + 1][1] >= '0' && argv[i + 1][1] <= '9') ||
                                  argv[i + 1][1] == '.'))
            val = argv[++i]; /* negative numbers are values, not options */
        else
            return cli_usage_error(spec, "option '--%s' needs a value (%s)", o->name, o->metavar);
        args->count[k]++;
        args->value[k] = val;
        if (o->multi) {
            if (!push_multi(args, k, val, argc))
                return cli_usage_error(spec, "out of memory");
            /* `--tap a b c`: following words that are not options */
            while (!eq && i + 1 < argc && argv[i + 1][0] != '-') {
                if (!push_multi(args, k, argv[++i], argc))
                    return cli_usage_error(spec, "out of memory");
            }
        }
    }
    if (args->n_pos < spec->n_required)
        return cli_usage_error(spec, "missing %s", spec->positional[args->n_pos]);
    return CLI_OK;
}

void cli_args_fini(cli_args *args)
{
    for (int i = 0; i < CLI_MAX_OPTIONS; i++) {
        pare_free(args->multi[i]);
        args->multi[i] = NULL;
    }
}

bool cli_get_int(const cli_spec *spec, const cli_args *a, int opt, long min, long max,
                 long *out)
{
    const char *s = a->value[opt];
    char *end = NULL;
    long v;

    if (!a->count[opt])
        return true;
    errno = 0;
    v = strtol(s, &end, 10);
    if (!*s || *end || errno || v < min || v > max) {
        if (max == LONG_MAX)
            cli_usage_error(spec, "--%s wants an integer >= %ld, not '%s'",
                            spec->options[opt].name, min, s);
        else
            cli_usage_error(spec, "--%s wants an integer from %ld to %ld, not '%s'",
                            spec->options[opt].name, min, max, s);
        return false;
    }
    *out = v;
    return true;
}

bool cli_get_double(const cli_spec *spec, const cli_args *a, int opt, double min, double *out)
{
    const char *s = a->value[opt];
    char *end = NULL;
    double v;

    if (!a->count[opt])
        return true;
    errno = 0;
    v = strtod(s, &end);
    if (!*s || *end || errno || !isfinite(v) || v < min) {
        cli_usage_error(spec, "--%s wants a number >= %g, not '%s'", spec->options[opt].name, min,
                        s);
        return false;
    }
    *out = v;
    return true;
}

bool cli_get_floats(const cli_spec *spec, const cli_args *a, int opt, float *out, int max,
                    int *n)
{
    const char *s = a->value[opt];

    *n = 0;
    if (!a->count[opt])
        return true;
    while (*s) {
        char *end = NULL;
        double v;
        errno = 0;
        v = strtod(s, &end);
        if (end == s || errno || !isfinite(v) || (*end && *end != ',') || *n >= max) {
            cli_usage_error(spec, "--%s wants up to %d comma-separated numbers, not '%s'",
                            spec->options[opt].name, max, a->value[opt]);
            return false;
        }
        out[(*n)++] = (float)v;
        s = *end ? end + 1 : end;
    }
    if (!*n) {
        cli_usage_error(spec, "--%s wants a number", spec->options[opt].name);
        return false;
    }
    return true;
}

bool cli_get_normalisation(const cli_spec *spec, const cli_args *a, pare_data_opts *d)
{
    double scale = 0;

    if (!cli_get_double(spec, a, cli_opt(spec, "scale"), 0, &scale) ||
        !cli_get_floats(spec, a, cli_opt(spec, "mean"), d->mean, PARE_DATA_MAX_CHANNELS,
                        &d->n_mean) ||
        !cli_get_floats(spec, a, cli_opt(spec, "std"), d->std, PARE_DATA_MAX_CHANNELS, &d->n_std))
        return false;
    for (int i = 0; i < d->n_std; i++)
        if (d->std[i] == 0.0f) {
            cli_usage_error(spec, "--std must not be 0");
            return false;
        }
    if (cli_has(a, cli_opt(spec, "scale")) && scale == 0) {
        cli_usage_error(spec, "--scale must be positive");
        return false;
    }
    d->scale = (float)scale;
    return true;
}

/* ---- errors ------------------------------------------------------------------ */

int cli_exit_code(pare_status rc)
{
    switch (rc) {
    case PARE_OK:
        return CLI_OK;
    case PARE_EINPUT:
    case PARE_EIO:
    case PARE_EUNSUPPORTED:
        return CLI_USAGE;
    default:
        return CLI_FAILED;
    }
}

int cli_report(const pare_error *err)
{
    char buf[sizeof err->where + sizeof err->msg + sizeof err->hint + 16];

    pare_error_format(err, buf, sizeof buf);
    /* One line, whatever the message holds. */
    for (char *c = buf; *c; c++)
        if (*c == '\n' || *c == '\r')
            *c = ' ';
    fprintf(stderr, "pare: %s\n", buf);
    return cli_exit_code(err->code);
}

int cli_load_model(const char *path, pare_graph **out)
{
    pare_error err = {0};
    pare_status rc = pare_graph_load(path, out, &err);

    if (rc != PARE_OK)
        return cli_report(&err);
    return CLI_OK;
}

/* ---- formatting ---------------------------------------------------------------- */

char *cli_fmt_count(int64_t n, char *buf, size_t size)
{
    char digits[32];
    int len, out = 0, neg = n < 0;
    unsigned long long u = neg ? 0ULL - (unsigned long long)n : (unsigned long long)n;

    len = snprintf(digits, sizeof digits, "%llu", u);
    if (size < 2)
        return buf;
    if (neg)
        buf[out++] = '-';
    for (int i = 0; i < len && (size_t)out + 2 < size; i++) {
        if (i && (len - i) % 3 == 0)
            buf[out++] = ',';
        buf[out++] = digits[i];
    }
    buf[out] = '\0';
    return buf;
}

char *cli_fmt_bytes(double bytes, char *buf, size_t size)
{
    static const char *units[] = {"B", "KB", "MB", "GB", "TB"};
    int u = 0;

    while (bytes >= 1024.0 && u < 4) {
        bytes /= 1024.0;
        u++;
    }
    if (u == 0)
        snprintf(buf, size, "%.0f B", bytes);
    else
        snprintf(buf, size, "%.1f %s", bytes, units[u]);
    return buf;
}

char *cli_fmt_si(double v, char *buf, size_t size)
{
    static const char *units[] = {"", " K", " M", " G", " T", " P"};
    int u = 0;

    if (!isfinite(v)) {
        snprintf(buf, size, "?");
        return buf;
    }
    while (fabs(v) >= 1000.0 && u < 5) {
        v /= 1000.0;
        u++;
    }
    if (u == 0)
        snprintf(buf, size, "%.0f", v);
    else
        snprintf(buf, size, "%.*f%s", fabs(v) < 10 ? 2 : fabs(v) < 100 ? 1 : 0, v, units[u]);
    return buf;
}

double cli_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

bool cli_same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    return !strcmp(a, b) || (stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
                             sa.st_ino == sb.st_ino);
}

int64_t cli_file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (int64_t)st.st_size : -1;
}

/* ---- Ctrl-C --------------------------------------------------------------------- */

static volatile sig_atomic_t sigint_seen;
static struct sigaction sigint_old;
static bool sigint_installed;

static void on_sigint(int sig)
{
    (void)sig;
    sigint_seen = 1;
}

void cli_sigint_install(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESETHAND; /* a second Ctrl-C kills as usual */
    sigint_seen = 0;
    if (sigaction(SIGINT, &sa, &sigint_old) == 0)
        sigint_installed = true;
}

void cli_sigint_restore(void)
{
    if (sigint_installed)
        sigaction(SIGINT, &sigint_old, NULL);
    sigint_installed = false;
}

bool cli_interrupted(void)
{
    return sigint_seen != 0;
}
