/* pare_conformance: runs the ONNX backend tests shipped in Debian's
 * libonnx-testdata against pare's op registry and executor, prints a per-op
 * table and writes docs/ops.md.
 *
 * For every test directory (<data>/<suite>/test_*) it loads model.onnx, looks
 * up a registry row for every distinct (domain, op type) in the model at the
 * model's opset and, when all are claimed, runs each test_data_set_N:
 * input_K.pb feed the model's non-initializer inputs in order, output_K.pb are
 * compared with the model's outputs in order.
 *
 * Attribution rule: a test counts once for every distinct op type its model
 * contains (an "_expanded" test therefore counts for Exp, ReduceSum, Div...),
 * and in docs/ops.md for the registry row that the model's opset selected.
 * A test whose model uses any op without a row at its opset is "unclaimed":
 * it counts for no op and is reported separately, never as a pass.
 *
 * Outcome of a test: failed if any data set fails, else skipped if any is
 * skipped, else passed. Skipped = a PARE_EUNSUPPORTED from the loader or from
 * pare_exec_new (a valid form pare does not implement), or a tensor the runner
 * cannot feed (string, sequence, optional). Everything else that goes wrong is
 * a failure. pare plans for fixed shapes, so when planning with every input at
 * run time fails, the smallest set of inputs that lets it plan is fixed at
 * plan time (as initializers) and the test notes which (plan_with_fewest_fixed).
 *
 * Cases run in-process by default: a crash or a hang (CASE_TIMEOUT_SECONDS)
 * stops the run with the name of the case on stderr, and under ASan kernel
 * leaks are reported at exit. --isolate runs each test in a child process and
 * records a crash or a hang as that test's failure. Nothing is ever caught
 * and counted as a skip or a pass. */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pare/alloc.h"
#include "pare/error.h"
#include "pare/exec.h"
#include "pare/graph.h"
#include "pare/op.h"
#include "pare/tensor.h"

#include "compare.h"


#ifndef PARE_ONNX_TESTDATA
#define PARE_ONNX_TESTDATA "/usr/share/libonnx-testdata/data"
#endif

/* A single case that runs longer than this is reported as hung, and the
 * process exits with HUNG_EXIT. */
#define CASE_TIMEOUT_SECONDS 60
#define HUNG_EXIT 3

static const char *const suites[] = { "node", "pytorch-converted", "pytorch-operator", "simple" };
#define N_SUITES (int)(sizeof suites / sizeof suites[0])

static const struct {
    const char *name;
    const char *title;
} families[] = {
    { "conv", "Convolution" },
    { "gemm", "Matrix multiplication" },
    { "pool", "Pooling" },
    { "norm", "Normalization" },
    { "elementwise", "Element-wise arithmetic and math" },
    { "activation", "Activations" },
    { "reduce", "Reductions" },
    { "shape", "Shape, indexing and conversion" },
    { "quant", "Quantization" },
};
#define N_FAMILIES (int)(sizeof families / sizeof families[0])

enum case_status { CASE_PASS, CASE_SKIP, CASE_FAIL, CASE_UNCLAIMED, CASE_LOAD_SKIP, CASE_LOAD_FAIL };

typedef struct case_op {
    char *key;      /* "Relu", or "domain.Op" outside the default domain */
    int row;        /* registry row index at the model's opset, -1: none */
} case_op;

typedef struct case_result {
    char *name;             /* "node/test_abs" */
    enum case_status status;
    char *detail;           /* failure or skip reason; unclaimed: the missing ops */
    case_op *ops;
    int n_ops;
} case_result;

typedef struct options {
    const char *data;
    const char *filter;
    const char *op;
    const char *markdown;
    int threads;
    bool verbose;
    bool isolate;
} options;

typedef struct op_count {
    char *key;
    int passed, failed, skipped;
    int unclaimed;          /* tests it blocks because it has no row */
    bool claimed;           /* some registry row exists (any opset) */
} op_count;

/* ---- crash and hang reporting ---- */

static char current_case[512];
static struct sigaction old_actions[NSIG];
static const int fatal_signals[] = { SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT };

static void write_str(const char *s)
{
    ssize_t r = write(STDERR_FILENO, s, strlen(s));
    (void)r;
}

static void on_fatal(int sig)
{
    write_str("\npare_conformance: fatal signal while running ");
    write_str(current_case[0] ? current_case : "(no case)");
    write_str("\n");
    /* Hand the signal to whoever had it before (ASan, or the default action). */
    sigaction(sig, &old_actions[sig], NULL);
    raise(sig);
}

#define STR_(x) #x
#define STR(x) STR_(x)

static void on_alarm(int sig)
{
    (void)sig;
    write_str("\npare_conformance: no result after " STR(CASE_TIMEOUT_SECONDS) " s, hung in ");
    write_str(current_case[0] ? current_case : "(no case)");
    write_str("\n");
    _exit(HUNG_EXIT);
}

/* ASan and UBSan report and exit without a signal; when the runner is built
 * with them, this names the case too. */
extern void __sanitizer_set_death_callback(void (*callback)(void)) __attribute__((weak));

static void on_sanitizer_death(void)
{
    write_str("pare_conformance: sanitizer error ");
    write_str(current_case[0] ? "while running " : "outside any case (leaks are reported at exit)");
    write_str(current_case);
    write_str("\n");
}

static void install_handlers(void)
{
    struct sigaction sa;

    if (__sanitizer_set_death_callback)
        __sanitizer_set_death_callback(on_sanitizer_death);
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_fatal;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof fatal_signals / sizeof fatal_signals[0]; i++)
        sigaction(fatal_signals[i], &sa, &old_actions[fatal_signals[i]]);
    sa.sa_handler = on_alarm;
    sigaction(SIGALRM, &sa, NULL);
}

static void set_current(const char *name, int set)
{
    if (set >= 0)
        snprintf(current_case, sizeof current_case, "%s (test_data_set_%d)", name, set);
    else
        snprintf(current_case, sizeof current_case, "%s", name);
}

/* ---- small helpers ---- */

static void die_oom(void)
{
    fprintf(stderr, "pare_conformance: out of memory\n");
    exit(2);
}

static void *xalloc(size_t n)
{
    void *p = pare_calloc(1, n ? n : 1);
    if (!p)
        die_oom();
    return p;
}

static char *xstrdup(const char *s)
{
    char *p = pare_strdup(s ? s : "");
    if (!p)
        die_oom();
    return p;
}

static char *xprintf(const char *fmt, ...) PARE_PRINTF(1, 2);
static char *xprintf(const char *fmt, ...)
{
    va_list ap;
    char *buf;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    buf = xalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(buf, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return buf;
}

static bool file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted names of the entries of dir that start with prefix. */
static char **list_dir(const char *dir, const char *prefix, int *n_out)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char **names = NULL;
    int n = 0, cap = 0;

    *n_out = 0;
    if (!d)
        return NULL;
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, prefix, strlen(prefix)) != 0)
            continue;
        if (n == cap) {
            char **grown;
            cap = cap ? cap * 2 : 64;
            grown = pare_realloc(names, (size_t)cap * sizeof *names);
            if (!grown)
                die_oom();
            names = grown;
        }
        names[n++] = xstrdup(e->d_name);
    }
    closedir(d);
    if (n)
        qsort(names, (size_t)n, sizeof *names, cmp_str);
    *n_out = n;
    return names;
}

static void free_names(char **names, int n)
{
    for (int i = 0; i < n; i++)
        pare_free(names[i]);
    pare_free(names);
}

static const char *domain_name(const char *domain)
{
    return domain && domain[0] ? domain : "ai.onnx";
}

static char *op_key(const char *domain, const char *op_type)
{
    if (!domain || !domain[0] || !strcmp(domain, "ai.onnx"))
        return xstrdup(op_type);
    return xprintf("%s.%s", domain, op_type);
}

/* Index of a registry row (pare_op_row order), -1 if it is not one. */
static int row_index(const pare_op_def *def)
{
    static const pare_op_def **rows;
    static int n_rows = -1;

    if (n_rows < 0) {
        n_rows = pare_op_row_count();
        rows = xalloc((size_t)(n_rows ? n_rows : 1) * sizeof *rows);
        for (int i = 0; i < n_rows; i++)
            rows[i] = pare_op_row(i);
    }
    for (int i = 0; i < n_rows; i++)
        if (rows[i] == def)
            return i;
    return -1;
}

/* ---- running one data set ---- */

typedef struct set_result {
    enum case_status status;    /* CASE_PASS, CASE_SKIP or CASE_FAIL */
    char *detail;
} set_result;

static set_result set_outcome(enum case_status status, char *detail)
{
    set_result r = { status, detail };
    return r;
}

static int count_files(const char *dir, const char *stem)
{
    for (int n = 0;; n++) {
        char *path = xprintf("%s/%s_%d.pb", dir, stem, n);
        bool exists = file_exists(path);
        pare_free(path);
        if (!exists)
            return n;
    }
}

/* Loads <dir>/<stem>_<i>.pb; a skip or a failure is described in *res. */
static pare_tensor *load_pb(const char *dir, const char *stem, int i, set_result *res)
{
    char *path = xprintf("%s/%s_%d.pb", dir, stem, i);
    pare_tensor *t = NULL;
    pare_error err = {0};
    pare_status rc;

    rc = pare_tensor_load_pb(path, &t, NULL, &err);
    pare_free(path);
    if (rc == PARE_OK)
        return t;
    pare_tensor_free(t);
    if (rc == PARE_EUNSUPPORTED)
        *res = set_outcome(CASE_SKIP, xprintf("%s_%d.pb: %s", stem, i, err.msg));
    else
        *res = set_outcome(CASE_FAIL, xprintf("%s_%d.pb: cannot load (%s): %s", stem, i,
                                              pare_status_name(rc), err.msg));
    return NULL;
}

/* "node 'x' (Op): message": the error's location without the model's path. */
static char *error_text(const pare_graph *g, const pare_error *err)
{
    const char *where = err->where;
    size_t n = g->path ? strlen(g->path) : 0;

    if (n && !strncmp(where, g->path, n))
        where += n;
    while (*where == ':' || *where == ' ')
        where++;
    return *where ? xprintf("%s: %s", where, err->msg) : xprintf("%s", err->msg);
}

/* ONNX's test data stores bfloat16 tensors as uint16 (numpy has no bfloat16):
 * take the bits as bfloat16 where the model says so. */
static void relabel_bf16(pare_tensor *t, pare_dtype declared)
{
    if (declared == PARE_BF16 && t->dtype == PARE_U16)
        t->dtype = PARE_BF16;
}

#define FIXED_NOTE "inputs fixed at plan time: "

/* Inputs fixed at plan time are handed to the graph as initializers (the
 * tensor is borrowed; unfreeze before anything frees the graph). */
static void freeze_inputs(pare_graph *g, const int *in_values, pare_tensor **inputs, int n,
                          unsigned mask)
{
    for (int i = 0; i < n; i++)
        g->values[in_values[i]].init = (mask >> i) & 1u ? inputs[i] : NULL;
}

/* Plans with the inputs in mask fixed and the others as runtime inputs. */
static pare_status plan(pare_graph *g, const int *in_values, pare_tensor **inputs,
                        pare_tensor *shapes, int n_in, unsigned mask, const options *opt,
                        pare_exec **x, pare_error *err)
{
    pare_exec_opts eo;
    int n_rt = 0;

    freeze_inputs(g, in_values, inputs, n_in, mask);
    for (int i = 0; i < n_in; i++)
        if (!((mask >> i) & 1u))
            pare_tensor_view(&shapes[n_rt++], inputs[i]->dtype, inputs[i]->ndim,
                             inputs[i]->dims, NULL);
    memset(&eo, 0, sizeof eo);
    eo.n_threads = opt->threads;
    eo.input_shapes = n_rt ? shapes : NULL;
    pare_error_clear(err);
    return pare_exec_new(g, &eo, x, err);
}

static int popcount(unsigned m)
{
    int n = 0;
    for (; m; m &= m - 1)
        n++;
    return n;
}

/* pare plans for fixed input shapes, so an op whose output shape depends on
 * an input's values (Reshape's shape, Slice's starts...) needs that input at
 * plan time; ONNX's tests feed it at run time. When planning with every input
 * at run time fails, the runner retries with the smallest set of inputs fixed
 * at plan time (fewest first) that lets the plan build, and notes which. If
 * none does, the error of the plan with every input fixed is the verdict
 * (it got furthest). Returns the mask used, or a negative status with err
 * filled. */
static int plan_with_fewest_fixed(pare_graph *g, const int *in_values, pare_tensor **inputs,
                                  pare_tensor *shapes, int n_in, const options *opt,
                                  pare_exec **x, pare_error *err)
{
    unsigned all = n_in >= 16 ? 0xffffu : (1u << n_in) - 1u;
    pare_status rc = plan(g, in_values, inputs, shapes, n_in, 0, opt, x, err);

    if (rc == PARE_OK || rc == PARE_ENOMEM || n_in == 0)
        return rc == PARE_OK ? 0 : rc;
    if (n_in <= 8) {
        for (int k = 1; k < n_in; k++)
            for (unsigned m = 1; m < all; m++)
                if (popcount(m) == k &&
                    plan(g, in_values, inputs, shapes, n_in, m, opt, x, err) == PARE_OK)
                    return (int)m;
    }
    rc = plan(g, in_values, inputs, shapes, n_in, all, opt, x, err);
    return rc == PARE_OK ? (int)all : rc;
}

static set_result run_set(pare_graph *g, const char *set_dir, const options *opt)
{
    set_result res = { CASE_PASS, NULL };
    int n_in = count_files(set_dir, "input"), n_out = count_files(set_dir, "output");
    int n_graph_in = 0, mask = 0, n_rt = 0;
    pare_tensor **inputs = xalloc((size_t)(n_in ? n_in : 1) * sizeof *inputs);
    pare_tensor **wants = xalloc((size_t)(n_out ? n_out : 1) * sizeof *wants);
    pare_tensor *shapes = xalloc((size_t)(n_in ? n_in : 1) * sizeof *shapes);
    int *in_values = xalloc((size_t)(g->n_inputs ? g->n_inputs : 1) * sizeof *in_values);
    char *fixed = NULL;
    bool planned = false;
    pare_exec *x = NULL;
    pare_error err = {0};
    pare_status rc;

    for (int i = 0; i < g->n_inputs; i++)
        if (!g->values[g->inputs[i]].init)
            in_values[n_graph_in++] = g->inputs[i];
    for (int i = 0; i < n_graph_in; i++) {
        const pare_value *v = &g->values[in_values[i]];
        if (v->dtype == PARE_UNDEFINED) {
            res = set_outcome(CASE_SKIP, xprintf("input '%s' is not a tensor pare models "
                                                 "(a sequence, optional or map)", v->name));
            goto out;
        }
    }
    for (int i = 0; i < g->n_outputs; i++) {
        const pare_value *v = &g->values[g->outputs[i]];
        if (v->dtype == PARE_UNDEFINED) {
            res = set_outcome(CASE_SKIP, xprintf("output '%s' is not a tensor pare models "
                                                 "(a sequence, optional or map)", v->name));
            goto out;
        }
    }
    if (n_in != n_graph_in) {
        res = set_outcome(CASE_FAIL, xprintf("the test gives %d inputs, the model has %d "
                                             "non-initializer inputs", n_in, n_graph_in));
        goto out;
    }
    for (int i = 0; i < n_in; i++) {
        inputs[i] = load_pb(set_dir, "input", i, &res);
        if (!inputs[i])
            goto out;
        relabel_bf16(inputs[i], g->values[in_values[i]].dtype);
        if (!pare_dtype_size(inputs[i]->dtype)) {
            res = set_outcome(CASE_SKIP, xprintf("input '%s' has dtype %s, which the runner "
                                                 "cannot feed", g->values[in_values[i]].name,
                                                 pare_dtype_name(inputs[i]->dtype)));
            goto out;
        }
    }

    planned = true;
    mask = plan_with_fewest_fixed(g, in_values, inputs, shapes, n_in, opt, &x, &err);
    if (mask < 0) {
        char *text = error_text(g, &err);
        rc = (pare_status)mask;
        res = set_outcome(rc == PARE_EUNSUPPORTED ? CASE_SKIP : CASE_FAIL,
                          rc == PARE_EUNSUPPORTED ? xprintf("%s", text)
                                                  : xprintf("planning failed (%s): %s",
                                                            pare_status_name(rc), text));
        pare_free(text);
        goto out;
    }
    for (int i = 0; i < n_in; i++) {
        char *more;
        if (!((mask >> i) & 1))
            continue;
        more = xprintf("%s%s'%s'", fixed ? fixed : "", fixed ? ", " : "",
                       g->values[in_values[i]].name);
        pare_free(fixed);
        fixed = more;
    }
    for (int i = 0; i < n_in; i++) {
        pare_tensor *dst;
        size_t bytes = pare_tensor_nbytes(inputs[i]);
        char a[128], b[128];

        if ((mask >> i) & 1)
            continue;
        dst = pare_exec_input(x, n_rt++);
        if (!dst || dst->dtype != inputs[i]->dtype || !pare_tensor_same_shape(dst, inputs[i])) {
            res = set_outcome(CASE_FAIL,
                              xprintf("input %d: the plan holds %s %s, the test gives %s %s", i,
                                      dst ? pare_dtype_name(dst->dtype) : "nothing",
                                      dst ? pare_shape_format(dst->ndim, dst->dims, a, sizeof a) : "",
                                      pare_dtype_name(inputs[i]->dtype),
                                      pare_shape_format(inputs[i]->ndim, inputs[i]->dims, b,
                                                        sizeof b)));
            goto out;
        }
        if (bytes)
            memcpy(dst->data, inputs[i]->data, bytes);
    }
    if (pare_exec_n_inputs(x) != n_rt) {
        res = set_outcome(CASE_FAIL, xprintf("the plan has %d runtime inputs, expected %d",
                                             pare_exec_n_inputs(x), n_rt));
        goto out;
    }
    rc = pare_exec_run(x, &err);
    if (rc != PARE_OK) {
        char *text = error_text(g, &err);
        res = set_outcome(CASE_FAIL, xprintf("run failed (%s): %s", pare_status_name(rc), text));
        pare_free(text);
        goto out;
    }
    if (pare_exec_n_outputs(x) != n_out) {
        res = set_outcome(CASE_FAIL, xprintf("the model has %d outputs, the test expects %d",
                                             pare_exec_n_outputs(x), n_out));
        goto out;
    }
    for (int i = 0; i < n_out; i++) {
        char *msg;
        wants[i] = load_pb(set_dir, "output", i, &res);
        if (!wants[i])
            goto out;
        relabel_bf16(wants[i], g->values[g->outputs[i]].dtype);
        msg = conf_compare(pare_exec_output(x, i), wants[i], g->values[g->outputs[i]].name);
        if (msg) {
            res = set_outcome(CASE_FAIL, msg);
            goto out;
        }
    }
out:
    pare_exec_free(x);
    if (planned)
        freeze_inputs(g, in_values, inputs, n_in, 0);
    if (fixed) {
        char *text = res.detail ? xprintf("%s (" FIXED_NOTE "%s)", res.detail, fixed)
                                : xprintf(FIXED_NOTE "%s", fixed);
        pare_free(res.detail);
        res.detail = text;
    }
    for (int i = 0; i < n_in; i++)
        pare_tensor_free(inputs[i]);
    for (int i = 0; i < n_out; i++)
        pare_tensor_free(wants[i]);
    pare_free(inputs);
    pare_free(wants);
    pare_free(shapes);
    pare_free(in_values);
    pare_free(fixed);
    return res;
}

/* ---- running one test directory ---- */

static int cmp_case_op(const void *a, const void *b)
{
    return strcmp(((const case_op *)a)->key, ((const case_op *)b)->key);
}

/* Distinct op types of the model, sorted, each with its registry row. */
static void collect_ops(const pare_graph *g, case_result *c)
{
    c->ops = xalloc((size_t)(g->n_nodes ? g->n_nodes : 1) * sizeof *c->ops);
    for (int n = 0; n < g->n_nodes; n++) {
        const pare_node *node = &g->nodes[n];
        char *key = op_key(node->domain, node->op_type);
        const pare_op_def *def;
        bool seen = false;

        for (int k = 0; k < c->n_ops && !seen; k++)
            seen = !strcmp(c->ops[k].key, key);
        if (seen) {
            pare_free(key);
            continue;
        }
        def = pare_op_find(node->domain, node->op_type, pare_graph_opset(g, node->domain));
        c->ops[c->n_ops].key = key;
        c->ops[c->n_ops].row = def ? row_index(def) : -1;
        c->n_ops++;
    }
    if (c->n_ops)
        qsort(c->ops, (size_t)c->n_ops, sizeof *c->ops, cmp_case_op);
}

/* --op matches the op type alone or the domain-qualified key. */
static bool key_matches(const char *key, const char *op)
{
    const char *dot = strrchr(key, '.');
    return !strcmp(key, op) || (dot && !strcmp(dot + 1, op));
}

static bool case_has_op(const case_result *c, const char *op)
{
    for (int k = 0; k < c->n_ops; k++)
        if (key_matches(c->ops[k].key, op))
            return true;
    return false;
}

/* Runs every test_data_set_N of the test; the worst outcome decides and its
 * message is kept. */
static void run_sets(pare_graph *g, const char *dir, const char *name, const options *opt,
                     case_result *c)
{
    int n_sets = 0;
    char **sets = list_dir(dir, "test_data_set_", &n_sets);

    c->status = CASE_PASS;
    if (n_sets == 0) {
        c->status = CASE_FAIL;
        c->detail = xstrdup("no test_data_set_N directory");
    }
    for (int s = 0; s < n_sets; s++) {
        char *set_dir = xprintf("%s/%s", dir, sets[s]);
        set_result r;

        set_current(name, atoi(sets[s] + strlen("test_data_set_")));
        alarm(CASE_TIMEOUT_SECONDS);
        r = run_set(g, set_dir, opt);
        alarm(0);
        pare_free(set_dir);
        if (r.status > c->status || (!c->detail && r.detail)) {
            pare_free(c->detail);
            c->status = r.status;
            if (n_sets > 1) {
                c->detail = xprintf("%s: %s", sets[s], r.detail ? r.detail : "");
            } else {
                c->detail = r.detail;
                r.detail = NULL;
            }
        }
        pare_free(r.detail);
    }
    free_names(sets, n_sets);
}

/* --isolate: the data sets run in a child process, so a crash or a hang is
 * recorded as that test's failure and the survey goes on. The child sends
 * one status byte and the message through a pipe. */
static void run_sets_isolated(pare_graph *g, const char *dir, const char *name,
                              const options *opt, case_result *c)
{
    int fds[2], wstatus = 0;
    pid_t pid;
    char *buf = NULL;
    size_t len = 0, cap = 0;

    fflush(stdout);
    fflush(stderr);
    if (pipe(fds) != 0 || (pid = fork()) < 0) {
        fprintf(stderr, "pare_conformance: cannot start a child for %s: %s\n", name,
                strerror(errno));
        exit(2);
    }
    if (pid == 0) {
        unsigned char st;
        close(fds[0]);
        run_sets(g, dir, name, opt, c);
        st = (unsigned char)c->status;
        if (write(fds[1], &st, 1) == 1 && c->detail) {
            const char *p = c->detail;
            size_t left = strlen(p);
            while (left) {
                ssize_t w = write(fds[1], p, left);
                if (w <= 0)
                    break;
                p += w;
                left -= (size_t)w;
            }
        }
        _exit(0);
    }
    close(fds[1]);
    for (;;) {
        ssize_t got;
        if (len + 4096 > cap) {
            char *grown = pare_realloc(buf, cap = cap ? cap * 2 : 8192);
            if (!grown)
                die_oom();
            buf = grown;
        }
        got = read(fds[0], buf + len, cap - len - 1);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break;
        len += (size_t)got;
    }
    close(fds[0]);
    while (waitpid(pid, &wstatus, 0) < 0 && errno == EINTR)
        continue;
    if (WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0 && len >= 1 &&
        (unsigned char)buf[0] <= CASE_FAIL) {
        buf[len] = '\0';
        c->status = (enum case_status)(unsigned char)buf[0];
        c->detail = len > 1 ? xstrdup(buf + 1) : NULL;
    } else if (WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == HUNG_EXIT) {
        c->status = CASE_FAIL;
        c->detail = xprintf("hung: no result after %d s", CASE_TIMEOUT_SECONDS);
    } else if (WIFSIGNALED(wstatus)) {
        c->status = CASE_FAIL;
        c->detail = xprintf("crashed: signal %d (%s)", WTERMSIG(wstatus),
                            strsignal(WTERMSIG(wstatus)));
    } else {
        c->status = CASE_FAIL;
        c->detail = xprintf("crashed: the child exited with status %d (a sanitizer report "
                            "is on stderr)", WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : -1);
    }
    pare_free(buf);
}

/* Runs the test in dir; false when --op excludes it. */
static bool run_case(const char *dir, const char *name, const options *opt, case_result *c)
{
    char *path = xprintf("%s/model.onnx", dir);
    pare_graph *g = NULL;
    pare_error err = {0};
    pare_status rc;

    memset(c, 0, sizeof *c);
    c->name = xstrdup(name);
    set_current(name, -1);
    rc = pare_graph_load(path, &g, &err);
    pare_free(path);
    if (rc != PARE_OK) {
        c->status = rc == PARE_EUNSUPPORTED ? CASE_LOAD_SKIP : CASE_LOAD_FAIL;
        c->detail = rc == PARE_EUNSUPPORTED
                        ? xprintf("model.onnx: %s", err.msg)
                        : xprintf("model.onnx: cannot load (%s): %s", pare_status_name(rc),
                                  err.msg);
        return !opt->op;
    }
    collect_ops(g, c);
    if (opt->op && !case_has_op(c, opt->op)) {
        pare_graph_free(g);
        return false;
    }
    for (int k = 0; k < c->n_ops; k++) {
        if (c->ops[k].row >= 0)
            continue;
        if (c->status != CASE_UNCLAIMED) {
            c->status = CASE_UNCLAIMED;
            c->detail = xprintf("no kernel for %s", c->ops[k].key);
        } else {
            char *more = xprintf("%s, %s", c->detail, c->ops[k].key);
            pare_free(c->detail);
            c->detail = more;
        }
    }
    if (c->status == CASE_UNCLAIMED) {
        pare_graph_free(g);
        return true;
    }
    if (opt->isolate)
        run_sets_isolated(g, dir, name, opt, c);
    else
        run_sets(g, dir, name, opt, c);
    pare_graph_free(g);
    set_current("", -1);
    return true;
}

static void case_fini(case_result *c)
{
    pare_free(c->name);
    pare_free(c->detail);
    for (int k = 0; k < c->n_ops; k++)
        pare_free(c->ops[k].key);
    pare_free(c->ops);
}

/* ---- counting ---- */

typedef struct run {
    case_result *cases;
    int n_cases, cap_cases;
    op_count *ops;          /* by op key: claimed registry ops and unclaimed ones seen */
    int n_ops;
    int *row_counts;        /* per registry row: passed, failed, skipped */
    int n_rows;
} run;

static op_count *op_entry(run *r, const char *key)
{
    for (int i = 0; i < r->n_ops; i++)
        if (!strcmp(r->ops[i].key, key))
            return &r->ops[i];
    r->ops[r->n_ops].key = xstrdup(key);
    return &r->ops[r->n_ops++];
}

static int cmp_op_count(const void *a, const void *b)
{
    return strcmp(((const op_count *)a)->key, ((const op_count *)b)->key);
}

/* Fills r->ops (sorted by key) and r->row_counts from r->cases. */
static void count(run *r, const options *opt)
{
    int n_keys = pare_op_row_count();
    for (int i = 0; i < r->n_cases; i++)
        n_keys += r->cases[i].n_ops;
    r->ops = xalloc((size_t)(n_keys ? n_keys : 1) * sizeof *r->ops);
    r->n_rows = pare_op_row_count();
    r->row_counts = xalloc((size_t)(r->n_rows ? r->n_rows : 1) * 3 * sizeof(int));
    /* Every registry op appears in the table, tested or not, unless the run
       was narrowed by --filter or --op. */
    for (int i = 0; i < r->n_rows; i++) {
        const pare_op_def *d = pare_op_row(i);
        char *key = op_key(d->domain, d->op_type);
        if (!opt->filter && (!opt->op || key_matches(key, opt->op)))
            op_entry(r, key)->claimed = true;
        pare_free(key);
    }
    for (int i = 0; i < r->n_cases; i++) {
        const case_result *c = &r->cases[i];
        for (int k = 0; k < c->n_ops; k++) {
            op_count *e;
            if (opt->op && !key_matches(c->ops[k].key, opt->op))
                continue;
            e = op_entry(r, c->ops[k].key);
            if (c->ops[k].row >= 0)
                e->claimed = true;
            if (c->status == CASE_UNCLAIMED) {
                if (c->ops[k].row < 0)
                    e->unclaimed++;
                continue;
            }
            if (c->status == CASE_PASS)
                e->passed++;
            else if (c->status == CASE_FAIL)
                e->failed++;
            else if (c->status == CASE_SKIP)
                e->skipped++;
            if (c->ops[k].row >= 0 && c->status <= CASE_FAIL)
                r->row_counts[3 * c->ops[k].row + (c->status == CASE_PASS ? 0
                                                   : c->status == CASE_FAIL ? 1 : 2)]++;
        }
    }
    if (r->n_ops)
        qsort(r->ops, (size_t)r->n_ops, sizeof *r->ops, cmp_op_count);
}

static int count_status(const run *r, enum case_status s)
{
    int n = 0;
    for (int i = 0; i < r->n_cases; i++)
        n += r->cases[i].status == s;
    return n;
}

/* The inputs a passed test needed at plan time ("'shape'"), or NULL. */
static const char *fixed_inputs(const case_result *c)
{
    const char *p = c->status == CASE_PASS && c->detail ? strstr(c->detail, FIXED_NOTE) : NULL;
    return p ? p + strlen(FIXED_NOTE) : NULL;
}

static int count_fixed(const run *r)
{
    int n = 0;
    for (int i = 0; i < r->n_cases; i++)
        n += fixed_inputs(&r->cases[i]) != NULL;
    return n;
}

static const char *status_name(enum case_status s)
{
    switch (s) {
    case CASE_PASS: return "pass";
    case CASE_SKIP: return "skip";
    case CASE_FAIL: return "FAIL";
    case CASE_UNCLAIMED: return "unclaimed";
    case CASE_LOAD_SKIP: return "skip (load)";
    case CASE_LOAD_FAIL: return "FAIL (load)";
    }
    return "?";
}

static void print_ops_of(FILE *f, const case_result *c)
{
    for (int k = 0; k < c->n_ops; k++)
        fprintf(f, "%s%s", k ? ", " : "", c->ops[k].key);
}

/* ---- terminal report ---- */

static void print_report(const run *r, const options *opt)
{
    int width = 4, tp = 0, tf = 0, ts = 0;

    for (int i = 0; i < r->n_ops; i++)
        if (r->ops[i].claimed && (int)strlen(r->ops[i].key) > width)
            width = (int)strlen(r->ops[i].key);
    printf("%-*s  %6s  %6s  %7s\n", width, "op", "passed", "failed", "skipped");
    for (int i = 0; i < r->n_ops; i++) {
        const op_count *e = &r->ops[i];
        if (!e->claimed)
            continue;
        printf("%-*s  %6d  %6d  %7d%s\n", width, e->key, e->passed, e->failed, e->skipped,
               e->passed + e->failed + e->skipped == 0 ? "  (no test)" : "");
    }
    tp = count_status(r, CASE_PASS);
    tf = count_status(r, CASE_FAIL);
    ts = count_status(r, CASE_SKIP);
    printf("%-*s  %6d  %6d  %7d  (tests, each counted once)\n", width, "total", tp, tf, ts);
    printf("\n%d tests run: %d passed, %d failed, %d skipped; %d unclaimed "
           "(an op without a kernel)", r->n_cases, tp, tf, ts, count_status(r, CASE_UNCLAIMED));
    if (count_status(r, CASE_LOAD_FAIL) || count_status(r, CASE_LOAD_SKIP))
        printf("; model failed to load: %d, unsupported model: %d",
               count_status(r, CASE_LOAD_FAIL), count_status(r, CASE_LOAD_SKIP));
    printf("\n");
    if (count_fixed(r))
        printf("%d passed tests had inputs fixed at plan time, because an op needs their "
               "values to infer shapes (--verbose names them)\n", count_fixed(r));

    if (tf || count_status(r, CASE_LOAD_FAIL)) {
        printf("\nfailed:\n");
        for (int i = 0; i < r->n_cases; i++) {
            const case_result *c = &r->cases[i];
            if (c->status != CASE_FAIL && c->status != CASE_LOAD_FAIL)
                continue;
            printf("  %s (", c->name);
            print_ops_of(stdout, c);
            printf("): %s\n", c->detail ? c->detail : "");
        }
    }
    if (ts || count_status(r, CASE_LOAD_SKIP)) {
        printf("\nskipped:\n");
        for (int i = 0; i < r->n_cases; i++) {
            const case_result *c = &r->cases[i];
            if (c->status != CASE_SKIP && c->status != CASE_LOAD_SKIP)
                continue;
            printf("  %s (", c->name);
            print_ops_of(stdout, c);
            printf("): %s\n", c->detail ? c->detail : "");
        }
    }
    if (count_status(r, CASE_UNCLAIMED)) {
        bool first = true;
        printf("\nops without a kernel (tests they leave unclaimed):");
        for (int i = 0; i < r->n_ops; i++) {
            if (!r->ops[i].unclaimed)
                continue;
            printf("%s %s (%d)", first ? "" : ",", r->ops[i].key, r->ops[i].unclaimed);
            first = false;
        }
        printf("\n");
    }
    if (opt->verbose) {
        printf("\nevery case:\n");
        for (int i = 0; i < r->n_cases; i++) {
            const case_result *c = &r->cases[i];
            printf("  %-11s %s (", status_name(c->status), c->name);
            print_ops_of(stdout, c);
            printf(")%s%s\n", c->detail ? ": " : "", c->detail ? c->detail : "");
        }
    }
}

/* ---- docs/ops.md ---- */

static void md_escape(FILE *f, const char *s)
{
    for (; s && *s; s++) {
        if (*s == '|')
            fputs("\\|", f);
        else if (*s == '\n')
            fputc(' ', f);
        else
            fputc(*s, f);
    }
}

static void md_opsets(const pare_op_def *d, char *buf, size_t size)
{
    if (d->until == 0)
        snprintf(buf, size, "%d+", d->since);
    else if (d->until == d->since)
        snprintf(buf, size, "%d", d->since);
    else
        snprintf(buf, size, "%d-%d", d->since, d->until);
}

static void md_case_list(FILE *f, const run *r, enum case_status a, enum case_status b,
                         bool with_detail)
{
    for (int i = 0; i < r->n_cases; i++) {
        const case_result *c = &r->cases[i];
        if (c->status != a && c->status != b)
            continue;
        fprintf(f, "| `%s` | ", c->name);
        for (int k = 0; k < c->n_ops; k++) {
            fprintf(f, "%s", k ? ", " : "");
            md_escape(f, c->ops[k].key);
        }
        if (with_detail) {
            fputs(" | ", f);
            md_escape(f, c->detail);
        }
        fputs(" |\n", f);
    }
}

static void write_markdown_body(FILE *f, const run *r, const options *opt)
{
    int n_rows = pare_op_row_count();
    bool *listed = xalloc((size_t)(n_rows ? n_rows : 1) * sizeof *listed);

    fputs("<!-- Generated by pare_conformance --markdown from the op registry and the ONNX\n"
          "     backend tests. Do not edit: regenerate (see below). -->\n"
          "# Supported ONNX operators\n\n"
          "Every row of pare's op registry, grouped by family, with the opsets it covers,\n"
          "its notes and how it does on the ONNX backend tests shipped in Debian's\n"
          "`libonnx-testdata` (suites `node`, `pytorch-converted`, `pytorch-operator`,\n"
          "`simple`).\n\n"
          "## Running the conformance suite\n\n"
          "```sh\n"
          "ctest --test-dir build -L conformance --output-on-failure\n"
          "build/tests/conformance/pare_conformance                 # whole suite, table by op\n"
          "build/tests/conformance/pare_conformance --op Conv -v    # one op, every case\n"
          "build/tests/conformance/pare_conformance --filter resize # tests whose name contains it\n"
          "```\n\n"
          "Options: `--filter SUBSTRING`, `--op OPTYPE`, `--verbose`, `--threads N` (executor\n"
          "threads, default 1), `--data DIR` (default: the `PARE_ONNX_TESTDATA` CMake cache\n"
          "variable), `--markdown FILE`, `--isolate` (each test in a child process, so a\n"
          "crash or a hang is recorded as that test's failure; without it the run stops\n"
          "there and names the test). The exit status is 1 when any test of a claimed op\n"
          "fails, else 0.\n\n"
          "This file is written by the runner. After changing an op row or a kernel,\n"
          "regenerate it with\n\n"
          "```sh\n"
          "cmake --build build --target ops_md\n"
          "# which runs: pare_conformance --isolate --markdown docs/ops.md\n"
          "```\n\n"
          "and commit it with the change; the test `conformance.ops_md_fresh` fails while\n"
          "it is stale.\n\n"
          "How tests are counted:\n\n"
          "- A test counts once for every distinct op type its model contains (an\n"
          "  `_expanded` test counts for each op of the expansion), under the registry row\n"
          "  that the model's opset selects.\n"
          "- A test whose model uses an op without a row at its opset is *unclaimed*: it\n"
          "  counts for no op and is listed under \"Not implemented\", never as a pass.\n"
          "- Outputs are compared with ONNX's default tolerance, |got - expected| <=\n"
          "  1e-7 + 1e-3 * |expected|; NaN must match NaN, infinities must match exactly,\n"
          "  integers and booleans exactly; dtypes and shapes must match.\n"
          "- *Skipped*: the loader or the planner answered \"unsupported\" (a valid form\n"
          "  pare does not implement, such as a dtype), or an input the runner cannot feed.\n"
          "  Any other error, a failed run, a crash or a mismatch is a *failure*.\n"
          "- Inputs whose values decide an output shape are fixed at plan time when\n"
          "  planning needs them (see \"Inputs fixed at plan time\").\n\n", f);

    if (opt->filter || opt->op)
        fprintf(f, "**This run was narrowed (%s%s%s%s): regenerate without options for the "
                   "real table.**\n\n", opt->filter ? "--filter " : "",
                opt->filter ? opt->filter : "", opt->op ? (opt->filter ? ", --op " : "--op ") : "",
                opt->op ? opt->op : "");
    fprintf(f, "## Summary\n\n"
               "| tests | count |\n|---|---:|\n"
               "| passed | %d |\n| failed | %d |\n| skipped | %d |\n"
               "| unclaimed (an op without a kernel) | %d |\n"
               "| model failed to load | %d |\n| model unsupported by the loader | %d |\n"
               "| total | %d |\n\n",
            count_status(r, CASE_PASS), count_status(r, CASE_FAIL), count_status(r, CASE_SKIP),
            count_status(r, CASE_UNCLAIMED), count_status(r, CASE_LOAD_FAIL),
            count_status(r, CASE_LOAD_SKIP), r->n_cases);

    for (int fam = 0; fam <= N_FAMILIES; fam++) {
        bool header = false;
        for (int i = 0; i < n_rows; i++) {
            const pare_op_def *d = pare_op_row(i);
            const int *rc = &r->row_counts[3 * i];
            char opsets[32];
            bool in_family = false;

            if (fam < N_FAMILIES) {
                const char *row_family = pare_op_row_family(i);
                in_family = row_family && !strcmp(row_family, families[fam].name);
            } else {
                in_family = !listed[i]; /* rows of a family this runner does not know */
            }
            if (!in_family || listed[i])
                continue;
            listed[i] = true;
            if (!header) {
                if (fam < N_FAMILIES)
                    fprintf(f, "## %s (`%s`)\n\n", families[fam].title, families[fam].name);
                else
                    fprintf(f, "## Other\n\n");
                fputs("| op | domain | opsets | passed | failed | skipped | notes |\n"
                      "|---|---|---|---:|---:|---:|---|\n", f);
                header = true;
            }
            md_opsets(d, opsets, sizeof opsets);
            fprintf(f, "| %s | %s | %s | %d | %d | %d | ", d->op_type, domain_name(d->domain),
                    opsets, rc[0], rc[1], rc[2]);
            md_escape(f, d->notes);
            fputs(" |\n", f);
        }
        if (header)
            fputc('\n', f);
    }
    if (n_rows == 0)
        fputs("The registry has no rows yet.\n\n", f);

    fputs("## Failing tests\n\n", f);
    if (count_status(r, CASE_FAIL) + count_status(r, CASE_LOAD_FAIL) == 0) {
        fputs("None.\n\n", f);
    } else {
        fputs("Run `pare_conformance --filter NAME` for the first mismatch of each.\n\n"
              "| test | ops |\n|---|---|\n", f);
        md_case_list(f, r, CASE_FAIL, CASE_LOAD_FAIL, false);
        fputc('\n', f);
    }
    fputs("## Skipped tests\n\n", f);
    if (count_status(r, CASE_SKIP) + count_status(r, CASE_LOAD_SKIP) == 0) {
        fputs("None.\n\n", f);
    } else {
        fputs("| test | ops | reason |\n|---|---|---|\n", f);
        md_case_list(f, r, CASE_SKIP, CASE_LOAD_SKIP, true);
        fputc('\n', f);
    }
    fputs("## Inputs fixed at plan time\n\n"
          "pare plans for fixed shapes, so an input whose values decide an output shape\n"
          "(Reshape's `shape`, Slice's `starts`...) must be known when the plan is built.\n"
          "ONNX's tests feed such inputs at run time; when planning fails that way, the\n"
          "runner retries with the fewest inputs fixed at plan time (as initializers).\n"
          "Passed tests that needed it:\n\n", f);
    if (count_fixed(r) == 0) {
        fputs("None.\n\n", f);
    } else {
        fputs("| test | inputs fixed |\n|---|---|\n", f);
        for (int i = 0; i < r->n_cases; i++)
            if (fixed_inputs(&r->cases[i])) {
                fprintf(f, "| `%s` | ", r->cases[i].name);
                md_escape(f, fixed_inputs(&r->cases[i]));
                fputs(" |\n", f);
            }
        fputc('\n', f);
    }
    fputs("## Not implemented\n\n"
          "Ops used by the ONNX tests that have no registry row (at the tests' opset), with\n"
          "the number of tests each leaves unclaimed.\n\n", f);
    if (count_status(r, CASE_UNCLAIMED) == 0) {
        fputs("None.\n", f);
    } else {
        fputs("| op | tests | has a row at another opset |\n|---|---:|---|\n", f);
        for (int i = 0; i < r->n_ops; i++)
            if (r->ops[i].unclaimed)
                fprintf(f, "| %s | %d | %s |\n", r->ops[i].key, r->ops[i].unclaimed,
                        r->ops[i].claimed ? "yes" : "no");
    }
    pare_free(listed);
}

/* Writes to a temporary name beside path, then renames it over path. */
static int write_markdown(const run *r, const options *opt, const char *path)
{
    char *tmp = xprintf("%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "w");
    int ok;

    if (!f) {
        fprintf(stderr, "pare_conformance: cannot write '%s': %s\n", tmp, strerror(errno));
        pare_free(tmp);
        return -1;
    }
    write_markdown_body(f, r, opt);
    ok = !ferror(f);
    ok = fclose(f) == 0 && ok;
    if (ok && rename(tmp, path) != 0)
        ok = 0;
    if (!ok) {
        fprintf(stderr, "pare_conformance: cannot write '%s': %s\n", path, strerror(errno));
        remove(tmp);
    }
    pare_free(tmp);
    return ok ? 0 : -1;
}

/* ---- main ---- */

static void usage(FILE *f)
{
    fputs("usage: pare_conformance [--filter SUBSTRING] [--op OPTYPE] [--markdown FILE]\n"
          "                        [--threads N] [--data DIR] [--verbose] [--isolate]\n"
          "Runs the ONNX backend tests under DIR/{node,pytorch-converted,pytorch-operator,"
          "simple}\n"
          "and prints passed/failed/skipped per op. Exit status 1 when a claimed op fails.\n"
          "--isolate runs each test in a child process, so a crash or a hang becomes that\n"
          "test's failure instead of ending the run.\n", f);
}

static int parse_args(int argc, char **argv, options *opt)
{
    opt->data = PARE_ONNX_TESTDATA;
    opt->threads = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        bool takes = !strcmp(a, "--filter") || !strcmp(a, "--op") || !strcmp(a, "--markdown") ||
                     !strcmp(a, "--threads") || !strcmp(a, "--data");

        if (!strcmp(a, "--verbose") || !strcmp(a, "-v")) {
            opt->verbose = true;
            continue;
        }
        if (!strcmp(a, "--isolate")) {
            opt->isolate = true;
            continue;
        }
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            exit(0);
        }
        if (!takes) {
            fprintf(stderr, "pare_conformance: unknown option '%s'\n", a);
            usage(stderr);
            return -1;
        }
        if (!val) {
            fprintf(stderr, "pare_conformance: option '%s' needs a value\n", a);
            return -1;
        }
        i++;
        if (!strcmp(a, "--filter")) {
            opt->filter = val;
        } else if (!strcmp(a, "--op")) {
            opt->op = val;
        } else if (!strcmp(a, "--markdown")) {
            opt->markdown = val;
        } else if (!strcmp(a, "--data")) {
            opt->data = val;
        } else {
            char *end;
            long n = strtol(val, &end, 10);
            if (*end || n < 1 || n > 1024) {
                fprintf(stderr, "pare_conformance: --threads wants a count from 1 to 1024, "
                                "not '%s'\n", val);
                return -1;
            }
            opt->threads = (int)n;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    options opt;
    run r;
    int n_found = 0, status = 0;

    memset(&opt, 0, sizeof opt);
    memset(&r, 0, sizeof r);
    if (parse_args(argc, argv, &opt) != 0)
        return 2;
    install_handlers();
    setvbuf(stdout, NULL, _IOLBF, 0);

    for (int s = 0; s < N_SUITES; s++) {
        char *suite_dir = xprintf("%s/%s", opt.data, suites[s]);
        int n_tests = 0;
        char **tests = list_dir(suite_dir, "test_", &n_tests);

        n_found += n_tests;
        for (int t = 0; t < n_tests; t++) {
            char *dir, *name;
            if (opt.filter && !strstr(tests[t], opt.filter))
                continue;
            if (r.n_cases == r.cap_cases) {
                case_result *grown;
                r.cap_cases = r.cap_cases ? r.cap_cases * 2 : 256;
                grown = pare_realloc(r.cases, (size_t)r.cap_cases * sizeof *r.cases);
                if (!grown)
                    die_oom();
                r.cases = grown;
            }
            dir = xprintf("%s/%s", suite_dir, tests[t]);
            name = xprintf("%s/%s", suites[s], tests[t]);
            if (run_case(dir, name, &opt, &r.cases[r.n_cases]))
                r.n_cases++;
            else
                case_fini(&r.cases[r.n_cases]);
            pare_free(dir);
            pare_free(name);
        }
        free_names(tests, n_tests);
        pare_free(suite_dir);
    }
    if (n_found == 0) {
        fprintf(stderr, "pare_conformance: no ONNX tests under '%s' (expected %s/node/test_*/); "
                        "set --data or PARE_ONNX_TESTDATA\n", opt.data, opt.data);
        return 2;
    }
    count(&r, &opt);
    print_report(&r, &opt);
    if (opt.markdown && write_markdown(&r, &opt, opt.markdown) != 0)
        status = 2;
    if (status == 0 && (count_status(&r, CASE_FAIL) || count_status(&r, CASE_LOAD_FAIL)))
        status = 1;

    for (int i = 0; i < r.n_ops; i++)
        pare_free(r.ops[i].key);
    for (int i = 0; i < r.n_cases; i++)
        case_fini(&r.cases[i]);
    pare_free(r.cases);
    pare_free(r.ops);
    pare_free(r.row_counts);
    return status;
}
