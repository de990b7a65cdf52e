/* pare run MODEL --input x.npy|x.npz --output y.npz [--tap VALUE...]: raw inference. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli.h"
#include "pare/alloc.h"
#include "pare/data.h"
#include "pare/exec.h"
#include "pare/graph.h"

static const cli_option run_options[] = {
    {"input", "FILE", "x.npy for a single-input model (batch = first dim), or an .npz with one array per input, named as the inputs", false, 0},
    {"output", "FILE", ".npz to write: every graph output and each tapped value, under its name", false, 0},
    {"tap", "VALUE", "also keep and write this intermediate value (repeatable)", true, 0},
    {"threads", "N", "threads (default: PARE_THREADS or all cores)", false, 0},
};
static const char *const run_positional[] = {"MODEL"};
static const cli_spec run_spec = {
    .name = "run",
    .synopsis = "MODEL --input x.npy|x.npz --output y.npz [--tap VALUE...] [--threads N]",
    .summary = "Runs the model once on the given inputs, without preprocessing, and writes\n"
               "its outputs (and any tapped intermediate values) to an .npz archive.\n"
               "Input arrays of another numeric dtype are converted to a float32 input.",
    .options = run_options,
    .n_options = (int)(sizeof run_options / sizeof run_options[0]),
    .positional = run_positional,
    .n_required = 1,
    .n_positional = 1,
};

static bool ends_with(const char *s, const char *suffix)
{
    size_t ls = strlen(s), lx = strlen(suffix);
    return ls >= lx && !strcasecmp(s + ls - lx, suffix);
}

/* The array for input `val` converted to its dtype, checked against its
 * declared shape. *out is new (owned by the caller) or NULL when src fits. */
static pare_status fit_input(const char *where, const pare_value *val, const pare_tensor *src,
                             pare_tensor **conv, pare_error *err)
{
    char a[128], b[128];

    *conv = NULL;
    if (val->ndim >= 0) {
        bool ok = src->ndim == val->ndim;
        for (int d = 0; ok && d < val->ndim; d++)
            ok = val->dims[d] < 0 || val->dims[d] == src->dims[d];
        if (!ok)
            return pare_fail(err, PARE_EINPUT, where, "array %s does not fit input '%s' %s",
                             pare_shape_format(src->ndim, src->dims, a, sizeof a), val->name,
                             pare_shape_format(val->ndim, val->dims, b, sizeof b));
    }
    if (src->dtype == val->dtype || val->dtype == PARE_UNDEFINED)
        return PARE_OK;
    if (val->dtype != PARE_F32 || !pare_dtype_size(src->dtype) || src->dtype == PARE_BF16)
        return pare_fail(err, PARE_EINPUT, where, "array is %s; input '%s' wants %s",
                         pare_dtype_name(src->dtype), val->name, pare_dtype_name(val->dtype));
    *conv = pare_tensor_new(PARE_F32, src->ndim, src->dims);
    if (!*conv)
        return pare_fail(err, PARE_ENOMEM, where, "out of memory converting the input");
    for (int64_t i = 0, n = pare_tensor_numel(src); i < n; i++)
        pare_tensor_f32(*conv)[i] = (float)pare_tensor_get_f64(src, i);
    return PARE_OK;
}

/* Array for a runtime input from an .npz, with a did-you-mean on a miss. */
static pare_status npz_array(const char *path, const pare_npz *z, const char *name,
                             const pare_tensor **out, pare_error *err)
{
    const char *guess;

    *out = pare_npz_find(z, name);
    if (*out)
        return PARE_OK;
    pare_fail(err, PARE_EINPUT, path, "no array named '%s' for the model's input", name);
    guess = pare_closest_word(name, (const char *const *)z->names, z->n);
    if (guess) {
        pare_error_hint(err, "did you mean '%s'?", guess);
    } else {
        char list[200] = "";
        size_t len = 0;
        for (int i = 0; i < z->n && len < sizeof list - 1; i++)
            len += (size_t)snprintf(list + len, sizeof list - len, "%s'%s'", i ? ", " : "", z->names[i]);
        pare_error_hint(err, "the archive holds %s", z->n ? list : "no arrays");
    }
    return PARE_EINPUT;
}

int cmd_run(int argc, char **argv)
{
    cli_args args;
    pare_graph *g = NULL;
    pare_npz *z = NULL;
    pare_tensor *single = NULL;
    pare_tensor **conv = NULL;
    const pare_tensor **src = NULL;
    pare_tensor *shapes = NULL;
    const char **names = NULL;
    const pare_tensor **outs = NULL;
    pare_exec *x = NULL;
    pare_exec_opts opts = {0};
    pare_error err = {0};
    int *rt = NULL, n_rt = 0, n_out = 0, o_tap;
    long threads = 0;
    const char *in_path, *out_path;
    int rc = cli_parse(&run_spec, argc, argv, &args);

    if (rc != CLI_OK)
        goto out;
    o_tap = cli_opt(&run_spec, "tap");
    in_path = cli_str(&args, cli_opt(&run_spec, "input"), NULL);
    out_path = cli_str(&args, cli_opt(&run_spec, "output"), NULL);
    if (!in_path || !out_path) {
        rc = cli_usage_error(&run_spec, "missing %s", in_path ? "--output FILE" : "--input FILE");
        goto out;
    }
    if (!cli_get_int(&run_spec, &args, cli_opt(&run_spec, "threads"), 1, 1024, &threads)) {
        rc = CLI_USAGE;
        goto out;
    }
    rc = cli_load_model(args.pos[0], &g);
    if (rc != CLI_OK)
        goto out;
    rt = pare_calloc((size_t)g->n_inputs + 1, sizeof *rt);
    conv = pare_calloc((size_t)g->n_inputs + 1, sizeof *conv);
    src = pare_calloc((size_t)g->n_inputs + 1, sizeof *src);
    shapes = pare_calloc((size_t)g->n_inputs + 1, sizeof *shapes);
    names = pare_calloc((size_t)(g->n_outputs + args.n_multi[o_tap] + 1), sizeof *names);
    outs = pare_calloc((size_t)(g->n_outputs + args.n_multi[o_tap] + 1), sizeof *outs);
    if (!rt || !conv || !src || !shapes || !names || !outs) {
        pare_fail(&err, PARE_ENOMEM, NULL, "out of memory");
        goto fail;
    }
    for (int i = 0; i < g->n_inputs; i++)
        if (!g->values[g->inputs[i]].init)
            rt[n_rt++] = g->inputs[i];

    /* Inputs: one .npy for a single-input model, else arrays by name. */
    if (ends_with(in_path, ".npz")) {
        if (pare_npz_load(in_path, &z, &err) != PARE_OK)
            goto fail;
        for (int i = 0; i < n_rt; i++)
            if (npz_array(in_path, z, g->values[rt[i]].name, &src[i], &err) != PARE_OK)
                goto fail;
    } else {
        if (n_rt != 1) {
            pare_fail(&err, PARE_EINPUT, in_path, "the model has %d inputs; one .npy feeds one", n_rt);
            pare_error_hint(&err, "give an .npz with one array per input, named as the inputs");
            goto fail;
        }
        if (pare_npy_load(in_path, &single, &err) != PARE_OK)
            goto fail;
        src[0] = single;
    }
    for (int i = 0; i < n_rt; i++) {
        char where[1200];
        snprintf(where, sizeof where, "%s%s%s%s", in_path, z ? ": array '" : "",
                 z ? g->values[rt[i]].name : "", z ? "'" : "");
        if (fit_input(where, &g->values[rt[i]], src[i], &conv[i], &err) != PARE_OK)
            goto fail;
        if (conv[i])
            src[i] = conv[i];
        pare_tensor_view(&shapes[i], src[i]->dtype, src[i]->ndim, src[i]->dims, NULL);
    }
    opts.batch = n_rt && src[0]->ndim > 0 ? (int)src[0]->dims[0] : 1;
    opts.n_threads = (int)threads;
    opts.input_shapes = shapes;
    opts.taps = args.multi[o_tap];
    opts.n_taps = args.n_multi[o_tap];
    if (pare_exec_new(g, &opts, &x, &err) != PARE_OK)
        goto fail;
    for (int i = 0; i < n_rt; i++)
        memcpy(pare_exec_input(x, i)->data, src[i]->data, pare_tensor_nbytes(src[i]));
    if (pare_exec_run(x, &err) != PARE_OK)
        goto fail;

    /* Outputs, then taps not already among them. */
    for (int i = 0; i < g->n_outputs + args.n_multi[o_tap]; i++) {
        const char *name = i < g->n_outputs ? g->values[g->outputs[i]].name
                                            : args.multi[o_tap][i - g->n_outputs];
        bool dup = false;
        for (int j = 0; j < n_out; j++)
            dup = dup || !strcmp(names[j], name);
        if (dup)
            continue;
        names[n_out] = name;
        outs[n_out] = pare_exec_value(x, name);
        if (!outs[n_out]) {
            pare_fail(&err, PARE_EINTERNAL, args.pos[0], "value '%s' was not kept by the run", name);
            goto fail;
        }
        n_out++;
    }
    if (pare_npz_save(out_path, names, outs, n_out, &err) != PARE_OK)
        goto fail;
    for (int i = 0; i < n_out; i++) {
        char shape[128];
        printf("%s  %s %s\n", names[i], pare_dtype_name(outs[i]->dtype),
               pare_shape_format(outs[i]->ndim, outs[i]->dims, shape, sizeof shape));
    }
    printf("wrote %s (%d array%s)\n", out_path, n_out, n_out == 1 ? "" : "s");
    rc = CLI_OK;
    goto out;
fail:
    rc = cli_report(&err);
out:
    pare_exec_free(x);
    if (conv)
        for (int i = 0; i < n_rt; i++)
            pare_tensor_free(conv[i]);
    pare_free(conv);
    pare_free(src);
    pare_free(shapes);
    pare_free(names);
    pare_free(outs);
    pare_free(rt);
    pare_tensor_free(single);
    pare_npz_free(z);
    pare_graph_free(g);
    cli_args_fini(&args);
    return rc < 0 ? CLI_OK : rc;
}
