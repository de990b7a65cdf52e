/* pare info MODEL [--json]: what a model is made of. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "json.h"
#include "pare/graph.h"
#include "pare/stats.h"

static const cli_option info_options[] = {
    {"json", NULL, "print one JSON object instead of the table", false, 0},
};
static const char *const info_positional[] = {"MODEL"};
static const cli_spec info_spec = {
    .name = "info",
    .synopsis = "MODEL [--json]",
    .summary = "Shows a model: file, IR version, producer, opsets, inputs and outputs with\n"
               "dtype and shape (symbolic dims by name), then every layer (node) with its\n"
               "output shape, params and FLOPs per sample, and the totals. A model with an\n"
               "op pare cannot run is still shown: shapes and FLOPs that depend on it are '?'.",
    .options = info_options,
    .n_options = 1,
    .positional = info_positional,
    .n_required = 1,
    .n_positional = 1,
};

static const char *domain_name(const char *d)
{
    return d && d[0] ? d : "ai.onnx";
}

static const char *node_label(const pare_node *node, int n, char *buf, size_t size)
{
    if (node->name && node->name[0])
        return node->name;
    snprintf(buf, size, "#%d", n);
    return buf;
}

static int64_t count_op(const pare_graph *g, const char *op)
{
    int64_t k = 0;
    for (int n = 0; n < g->n_nodes; n++)
        if (!strcmp(g->nodes[n].op_type, op))
            k++;
    return k;
}

/* ---- text ---------------------------------------------------------------------- */

static void print_io(const pare_graph *g, const pare_stats *s, const char *label,
                    const int *idx, int n, bool skip_init)
{
    int width = 0, shown = 0;

    for (int i = 0; i < n; i++) {
        int len = (int)strlen(g->values[idx[i]].name);
        if (!(skip_init && g->values[idx[i]].init) && len > width)
            width = len;
    }
    for (int i = 0; i < n; i++) {
        const pare_value *val = &g->values[idx[i]];
        pare_stat_shape sh;
        char shape[256];
        if (skip_init && val->init)
            continue;
        pare_stats_declared_shape(s, val, &sh);
        printf("%-12s  %-*s  %-8s %s\n", shown++ ? "" : label, width, val->name,
               pare_dtype_name(val->dtype), pare_stats_shape_format(s, &sh, shape, sizeof shape));
    }
    if (!shown)
        printf("%-12s  (none)\n", label);
}

static void print_text(const char *path, const pare_graph *g, const pare_stats *s)
{
    int64_t fsize = cli_file_size(path);
    int wname = 4, wop = 2, wshape = 6;
    char a[64], b[64], label[32], shape[256];
    int64_t n_const = count_op(g, "Constant");

    printf("%-12s  %s (%s)\n", "file", path, cli_fmt_bytes((double)fsize, a, sizeof a));
    printf("%-12s  %lld\n", "ir version", (long long)g->ir_version);
    printf("%-12s  %s%s%s\n", "producer", g->producer_name && g->producer_name[0] ? g->producer_name : "-",
           g->producer_version && g->producer_version[0] ? " " : "",
           g->producer_version ? g->producer_version : "");
    printf("%-12s  ", "opsets");
    for (int i = 0; i < g->n_opsets; i++)
        printf("%s%s %lld", i ? ", " : "", domain_name(g->opsets[i].domain),
               (long long)g->opsets[i].version);
    printf("%s\n", g->n_opsets ? "" : "(none)");
    print_io(g, s, "inputs", g->inputs, g->n_inputs, true);
    print_io(g, s, "outputs", g->outputs, g->n_outputs, false);

    for (int n = 0; n < g->n_nodes; n++) {
        const pare_node *node = &g->nodes[n];
        int len = (int)strlen(node_label(node, n, label, sizeof label));
        if (len > wname)
            wname = len;
        len = (int)strlen(node->op_type) + (node->domain[0] ? (int)strlen(node->domain) + 1 : 0);
        if (len > wop)
            wop = len;
        len = (int)strlen(pare_stats_shape_format(s, &s->layers[n].out, shape, sizeof shape));
        if (len > wshape)
            wshape = len;
    }
    printf("\n%4s  %-*s  %-*s  %-*s  %9s  %9s\n", "#", wname, "name", wop, "op", wshape, "output",
           "params", "FLOPs");
    for (int n = 0; n < g->n_nodes; n++) {
        const pare_node *node = &g->nodes[n];
        const pare_layer_stat *l = &s->layers[n];
        char op[160], flops[32];

        snprintf(op, sizeof op, "%s%s%s", node->domain[0] ? node->domain : "",
                 node->domain[0] ? "." : "", node->op_type);
        if (l->folded)
            snprintf(flops, sizeof flops, "folded");
        else if (l->flops < 0)
            snprintf(flops, sizeof flops, "?");
        else
            cli_fmt_si(l->flops, flops, sizeof flops);
        printf("%4d  %-*s  %-*s  %-*s  %9s  %9s%s\n", n, wname, node_label(node, n, label, sizeof label),
               wop, op, wshape, pare_stats_shape_format(s, &l->out, shape, sizeof shape),
               l->params ? cli_fmt_count(l->params, a, sizeof a) : "-", flops,
               l->has_kernel ? "" : "  (no kernel)");
    }
    printf("\n%-12s  %d", "layers", s->n_layers);
    if (n_const)
        printf(" (%lld Constant)", (long long)n_const);
    printf("\n%-12s  %s (%s of initializers)\n", "params", cli_fmt_count(s->params, a, sizeof a),
           cli_fmt_bytes((double)s->init_bytes, b, sizeof b));
    if (s->constant_values)
        printf("%-12s  %s values in Constant nodes\n", "constants",
               cli_fmt_count(s->constant_values, a, sizeof a));
    printf("%-12s  %s%s per sample\n", "FLOPs", s->flops_complete ? "" : ">= ",
           cli_fmt_si(s->flops, a, sizeof a));
    printf("%-12s  %s\n", "file size", cli_fmt_bytes((double)fsize, a, sizeof a));
    if (!s->planned) {
        char msg[1100];
        pare_error_format(&s->plan_error, msg, sizeof msg);
        printf("%-12s  cannot run: %s\n", "note", msg);
    }
}

/* ---- JSON ---------------------------------------------------------------------- */

static void json_shape(json_writer *w, const pare_stats *s, const pare_stat_shape *sh)
{
    if (sh->ndim < 0) {
        json_null(w);
        return;
    }
    json_begin_array(w);
    for (int d = 0; d < sh->ndim; d++) {
        char dim[96];
        if (sh->per_batch[d] == 0 && sh->dims[d] >= 0)
            json_int(w, sh->dims[d]);
        else if (sh->per_batch[d] == 0 && !sh->names[d])
            json_null(w);
        else
            json_string(w, pare_stats_dim_format(s, sh, d, dim, sizeof dim));
    }
    json_end_array(w);
}

static void json_io(json_writer *w, const pare_graph *g, const pare_stats *s, const int *idx,
                    int n, bool skip_init)
{
    json_begin_array(w);
    for (int i = 0; i < n; i++) {
        const pare_value *val = &g->values[idx[i]];
        pare_stat_shape sh;
        if (skip_init && val->init)
            continue;
        pare_stats_declared_shape(s, val, &sh);
        json_begin_object(w);
        json_key(w, "name");
        json_string(w, val->name);
        json_key(w, "dtype");
        json_string(w, pare_dtype_name(val->dtype));
        json_key(w, "shape");
        json_shape(w, s, &sh);
        json_end_object(w);
    }
    json_end_array(w);
}

static void print_json(const char *path, const pare_graph *g, const pare_stats *s)
{
    json_writer w;
    char shape[256];

    json_init(&w, stdout, true);
    json_begin_object(&w);
    json_key(&w, "file");
    json_string(&w, path);
    json_key(&w, "file_bytes");
    json_int(&w, cli_file_size(path));
    json_key(&w, "ir_version");
    json_int(&w, g->ir_version);
    json_key(&w, "producer");
    json_begin_object(&w);
    json_key(&w, "name");
    json_string(&w, g->producer_name ? g->producer_name : "");
    json_key(&w, "version");
    json_string(&w, g->producer_version ? g->producer_version : "");
    json_end_object(&w);
    json_key(&w, "opsets");
    json_begin_array(&w);
    for (int i = 0; i < g->n_opsets; i++) {
        json_begin_object(&w);
        json_key(&w, "domain");
        json_string(&w, domain_name(g->opsets[i].domain));
        json_key(&w, "version");
        json_int(&w, g->opsets[i].version);
        json_end_object(&w);
    }
    json_end_array(&w);
    json_key(&w, "batch_dim");
    json_string(&w, s->batch_name);
    json_key(&w, "inputs");
    json_io(&w, g, s, g->inputs, g->n_inputs, true);
    json_key(&w, "outputs");
    json_io(&w, g, s, g->outputs, g->n_outputs, false);
    json_key(&w, "layers");
    json_begin_array(&w);
    for (int n = 0; n < g->n_nodes; n++) {
        const pare_node *node = &g->nodes[n];
        const pare_layer_stat *l = &s->layers[n];
        int ov = node->n_outputs > 0 ? node->outputs[0] : -1;

        json_begin_object(&w);
        json_key(&w, "index");
        json_int(&w, n);
        json_key(&w, "name");
        json_string(&w, node->name ? node->name : "");
        json_key(&w, "op");
        json_string(&w, node->op_type);
        json_key(&w, "domain");
        json_string(&w, domain_name(node->domain));
        json_key(&w, "output");
        json_string(&w, ov >= 0 ? g->values[ov].name : NULL);
        json_key(&w, "dtype");
        json_string(&w, l->out.ndim >= 0 ? pare_dtype_name(l->out.dtype) : NULL);
        json_key(&w, "shape");
        json_shape(&w, s, &l->out);
        json_key(&w, "shape_text");
        json_string(&w, pare_stats_shape_format(s, &l->out, shape, sizeof shape));
        json_key(&w, "params");
        json_int(&w, l->params);
        json_key(&w, "flops");
        if (l->flops < 0)
            json_null(&w);
        else
            json_double(&w, l->flops);
        json_key(&w, "folded");
        json_bool(&w, l->folded);
        json_key(&w, "has_kernel");
        json_bool(&w, l->has_kernel);
        json_end_object(&w);
    }
    json_end_array(&w);
    json_key(&w, "totals");
    json_begin_object(&w);
    json_key(&w, "layers");
    json_int(&w, s->n_layers);
    json_key(&w, "constant_nodes");
    json_int(&w, count_op(g, "Constant"));
    json_key(&w, "params");
    json_int(&w, s->params);
    json_key(&w, "constant_values");
    json_int(&w, s->constant_values);
    json_key(&w, "flops_per_sample");
    json_double(&w, s->flops);
    json_key(&w, "flops_complete");
    json_bool(&w, s->flops_complete);
    json_key(&w, "initializer_bytes");
    json_int(&w, (int64_t)s->init_bytes);
    json_key(&w, "file_bytes");
    json_int(&w, cli_file_size(path));
    json_end_object(&w);
    json_key(&w, "runnable");
    json_bool(&w, s->planned);
    json_key(&w, "plan_error");
    if (s->planned) {
        json_null(&w);
    } else {
        char msg[1100];
        pare_error_format(&s->plan_error, msg, sizeof msg);
        json_string(&w, msg);
    }
    json_end_object(&w);
    json_finish(&w);
}

int cmd_info(int argc, char **argv)
{
    cli_args args;
    pare_graph *g = NULL;
    pare_stats *s = NULL;
    pare_error err = {0};
    int rc = cli_parse(&info_spec, argc, argv, &args);

    if (rc != CLI_OK) {
        cli_args_fini(&args);
        return rc < 0 ? CLI_OK : rc;
    }
    rc = cli_load_model(args.pos[0], &g);
    if (rc == CLI_OK && pare_stats_compute(g, &s, &err) != PARE_OK)
        rc = cli_report(&err);
    if (rc == CLI_OK) {
        if (cli_has(&args, cli_opt(&info_spec, "json")))
            print_json(args.pos[0], g, s);
        else
            print_text(args.pos[0], g, s);
        if (fflush(stdout) != 0)
            rc = CLI_FAILED;
    }
    pare_stats_free(s);
    pare_graph_free(g);
    cli_args_fini(&args);
    return rc;
}
