/* pare prune MODEL -o OUT.onnx: structured channel pruning (physical shrink),
 * attention heads and FFN units (--heads, --ffn), unstructured masks and N:M
 * sparsity; --show-groups lists channel groups and attention blocks. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "json.h"
#include "pare/alloc.h"
#include "pare/data.h"
#include "pare/graph.h"
#include "pare/prune.h"

#ifndef PARE_FASHION_MNIST
#define PARE_FASHION_MNIST ""
#endif

int cmd_prune(int argc, char **argv);

static const cli_option prune_options[] = {
    {.name = "output", .metavar = "OUT.onnx", .help = "write the pruned model here", .short_name = 'o'},
    {.name = "ratio", .metavar = "R", .help = "prune ratio for every prunable group, in [0, 1)"},
    {.name = "layer", .metavar = "NAME=R", .help = "ratio for one group (group, conv or weight name)",
     .multi = true},
    {.name = "heads", .metavar = "R", .help = "remove this fraction of each attention block's heads (>= 1 kept)"},
    {.name = "ffn", .metavar = "R", .help = "prune ratio for FFN hidden units (MatMul -> MatMul groups)"},
    {.name = "criterion", .metavar = "C",
     .help = "l1_norm (default), l2_norm, geometry_median, bn_scale, random; heads: activation"},
    {.name = "data", .metavar = "SPEC", .help = "with --criterion activation: samples that rank the heads"},
    {.name = "limit", .metavar = "N", .help = "with --data: use the first N samples (default 1000)"},
    {.name = "threads", .metavar = "N", .help = "with --data: threads (default: PARE_THREADS or all cores)"},
    {.name = "seed", .metavar = "S", .help = "seed of the random criterion / masks (default 0)"},
    {.name = "round-to", .metavar = "N", .help = "keep a multiple of N channels per group (8 suits ONNX Runtime)"},
    {.name = "unstructured", .help = "zero individual weights (masks) instead of removing channels"},
    {.name = "global", .help = "with --unstructured: one magnitude ranking across all layers"},
    {.name = "conv1x1-only", .help = "with --unstructured: only 1x1 Conv weights"},
    {.name = "mask", .metavar = "FILE", .help = "with --unstructured: masks from .npz (arrays named after weights)"},
    {.name = "nm", .metavar = "N:M", .help = "N:M semi-structured sparsity (2:4)"},
    {.name = "show-groups", .help = "print the channel dependency groups and exit"},
    {.name = "json", .help = "print the result as JSON"},
};
static const char *const prune_positional[] = {"MODEL"};
static const cli_spec prune_spec = {
    .name = "prune",
    .synopsis = "MODEL -o OUT.onnx [--ratio R] [--layer NAME=R]... [--heads R] [--ffn R]\n"
                "                  [--criterion C [--data SPEC [--limit N]]] [--unstructured [--global]]\n"
                "                  [--nm 2:4] [--show-groups] [--json]",
    .summary = "Structured pruning removes the lowest-ranked channels of each dependency group\n"
               "(a conv's output channels with its BatchNorm, the next layers' input channels\n"
               "and everything a residual Add ties to them), so the saved model is smaller\n"
               "and faster. --heads removes whole attention heads (QKV columns, projection\n"
               "rows, the Reshape shapes) and --ffn the hidden units of transformer MLPs.\n"
               "--unstructured and --nm zero weights instead (same shapes).",
    .options = prune_options,
    .n_options = (int)(sizeof prune_options / sizeof prune_options[0]),
    .positional = prune_positional,
    .n_required = 1,
    .n_positional = 1,
    .epilog = "Examples:\n"
              "  pare prune resnet8.onnx --show-groups\n"
              "  pare prune resnet8.onnx -o small.onnx --ratio 0.3 --layer /layer1/conv1/Conv=0.5\n"
              "  pare prune tiny_vit.onnx -o vit_small.onnx --heads 0.5 --ffn 0.25",
};

static const char *role_name(pare_member_role r)
{
    switch (r) {
    case PARE_MEMBER_OUT: return "out";
    case PARE_MEMBER_IN: return "in";
    case PARE_MEMBER_NORM_SCALE: return "norm-scale";
    default: return "norm";
    }
}

static const char *node_label(const pare_graph *g, int n)
{
    return g->nodes[n].name && g->nodes[n].name[0] ? g->nodes[n].name : g->nodes[n].op_type;
}

static void show_groups_text(const pare_graph *g, const pare_prune_groups *gs)
{
    int prunable = 0;
    for (int i = 0; i < gs->n; i++)
        prunable += gs->groups[i].prunable;
    printf("%d channel groups, %d prunable\n\n", gs->n, prunable);
    for (int i = 0; i < gs->n; i++) {
        const pare_prune_group *grp = &gs->groups[i];
        printf("group %d  %s  %lld channels  %s%s%s\n", grp->id, grp->name,
               (long long)grp->channels, grp->prunable ? "prunable" : "not prunable",
               grp->prunable ? "" : ": ", grp->prunable ? "" : grp->reason);
        printf("  producers:");
        for (int p = 0; p < grp->n_producers; p++)
            printf(" %s", node_label(g, grp->producers[p]));
        printf("\n  consumers:");
        for (int p = 0; p < grp->n_consumers; p++)
            printf(" %s", node_label(g, grp->consumers[p]));
        if (!grp->n_consumers)
            printf(" -");
        printf("\n");
        for (int m = 0; m < grp->n_members; m++) {
            const pare_prune_member *pm = &grp->members[m];
            printf("    %-44s axis %d  channels %lld..%lld", pm->tensor, pm->axis,
                   (long long)pm->offset, (long long)(pm->offset + pm->count - 1));
            if (pm->block != 1)
                printf("  x%lld", (long long)pm->block);
            printf("  %s%s\n", role_name(pm->role), pm->is_depthwise ? " (depthwise)" : "");
        }
        printf("\n");
    }
}

static void json_heads(json_writer *w, const pare_prune_heads *hs, const int *kept);

static void show_groups_json(const pare_graph *g, const pare_prune_groups *gs,
                             const pare_prune_heads *hs)
{
    json_writer w;
    json_init(&w, stdout, true);
    json_begin_object(&w);
    json_key(&w, "groups");
    json_begin_array(&w);
    for (int i = 0; i < gs->n; i++) {
        const pare_prune_group *grp = &gs->groups[i];
        json_begin_object(&w);
        json_key(&w, "id");
        json_int(&w, grp->id);
        json_key(&w, "name");
        json_string(&w, grp->name);
        json_key(&w, "channels");
        json_int(&w, grp->channels);
        json_key(&w, "prunable");
        json_bool(&w, grp->prunable);
        json_key(&w, "reason");
        json_string(&w, grp->prunable ? NULL : grp->reason);
        json_key(&w, "producers");
        json_begin_array(&w);
        for (int p = 0; p < grp->n_producers; p++)
            json_string(&w, node_label(g, grp->producers[p]));
        json_end_array(&w);
        json_key(&w, "consumers");
        json_begin_array(&w);
        for (int p = 0; p < grp->n_consumers; p++)
            json_string(&w, node_label(g, grp->consumers[p]));
        json_end_array(&w);
        json_key(&w, "members");
        json_begin_array(&w);
        for (int m = 0; m < grp->n_members; m++) {
            const pare_prune_member *pm = &grp->members[m];
            json_begin_object(&w);
            json_key(&w, "tensor");
            json_string(&w, pm->tensor);
            json_key(&w, "axis");
            json_int(&w, pm->axis);
            json_key(&w, "offset");
            json_int(&w, pm->offset);
            json_key(&w, "count");
            json_int(&w, pm->count);
            json_key(&w, "block");
            json_int(&w, pm->block);
            json_key(&w, "role");
            json_string(&w, role_name(pm->role));
            json_end_object(&w);
        }
        json_end_array(&w);
        json_end_object(&w);
    }
    json_end_array(&w);
    json_heads(&w, hs, NULL);
    json_end_object(&w);
    json_finish(&w);
}

static void show_heads_text(const pare_prune_heads *hs)
{
    int prunable = 0;
    if (!hs->n)
        return;
    for (int i = 0; i < hs->n; i++)
        prunable += hs->blocks[i].prunable;
    printf("%d attention blocks, %d prunable (--heads)\n\n", hs->n, prunable);
    for (int i = 0; i < hs->n; i++) {
        const pare_prune_attn *b = &hs->blocks[i];
        printf("attention %d  %s  ", i, b->name);
        if (b->num_heads)
            printf("%d heads x %d  ", b->num_heads, b->head_dim);
        printf("%s%s%s\n", b->prunable ? "prunable" : "not prunable", b->prunable ? "" : ": ",
               b->prunable ? "" : b->reason);
        for (int j = 0; j < 3; j++)
            if (b->qkv_weight[j])
                printf("  %-8s %s  %s%s%s\n", b->n_qkv == 3 ? (j == 0 ? "q" : j == 1 ? "k" : "v")
                                                          : "qkv",
                       b->qkv_node[j], b->qkv_weight[j], b->qkv_bias[j] ? " + " : "",
                       b->qkv_bias[j] ? b->qkv_bias[j] : "");
        if (b->reshape_heads[0] || b->reshape_merge) {
            printf("  reshape ");
            for (int j = 0; j < 3; j++)
                if (b->reshape_heads[j])
                    printf(" %s (heads)", b->reshape_heads[j]);
            if (b->reshape_merge)
                printf(" %s (heads x head_dim)", b->reshape_merge);
            printf("\n");
        }
        if (b->proj_weight)
            printf("  proj     %s  %s\n", b->proj_node, b->proj_weight);
        printf("\n");
    }
}

/* "attention": [...] of the --json outputs; kept (may be NULL) gives heads after. */
static void json_heads(json_writer *w, const pare_prune_heads *hs, const int *kept)
{
    json_key(w, "attention");
    json_begin_array(w);
    for (int i = 0; hs && i < hs->n; i++) {
        const pare_prune_attn *b = &hs->blocks[i];
        json_begin_object(w);
        json_key(w, "name");
        json_string(w, b->name);
        json_key(w, "prunable");
        json_bool(w, b->prunable);
        json_key(w, "reason");
        json_string(w, b->prunable ? NULL : b->reason);
        json_key(w, "head_dim");
        json_int(w, b->head_dim);
        json_key(w, "heads_before");
        json_int(w, b->num_heads);
        json_key(w, "heads_after");
        json_int(w, kept ? kept[i] : b->num_heads);
        json_key(w, "qkv_weights");
        json_begin_array(w);
        for (int j = 0; j < 3; j++)
            if (b->qkv_weight[j])
                json_string(w, b->qkv_weight[j]);
        json_end_array(w);
        json_key(w, "qkv_biases");
        json_begin_array(w);
        for (int j = 0; j < 3; j++)
            if (b->qkv_bias[j])
                json_string(w, b->qkv_bias[j]);
        json_end_array(w);
        json_key(w, "proj_weight");
        json_string(w, b->proj_weight);
        json_key(w, "reshape_heads");
        json_begin_array(w);
        for (int j = 0; j < 3; j++)
            if (b->reshape_heads[j])
                json_string(w, b->reshape_heads[j]);
        json_end_array(w);
        json_key(w, "reshape_merge");
        json_string(w, b->reshape_merge);
        json_end_object(w);
    }
    json_end_array(w);
}

/* An FFN hidden-unit group: prunable channels made by MatMul/Gemm and read
 * only by MatMul/Gemm (a transformer's fc1 -> act -> fc2). */
static bool is_ffn_group(const pare_graph *g, const pare_prune_group *grp)
{
    if (!grp->prunable || grp->n_producers < 1 || grp->n_consumers < 1)
        return false;
    for (int p = 0; p < grp->n_producers; p++)
        if (strcmp(g->nodes[grp->producers[p]].op_type, "MatMul") != 0 &&
            strcmp(g->nodes[grp->producers[p]].op_type, "Gemm") != 0)
            return false;
    for (int p = 0; p < grp->n_consumers; p++)
        if (strcmp(g->nodes[grp->consumers[p]].op_type, "MatMul") != 0 &&
            strcmp(g->nodes[grp->consumers[p]].op_type, "Gemm") != 0)
            return false;
    return true;
}

static bool parse_ratio(const char *s, double *out)
{
    char *end = NULL;
    double v = strtod(s, &end);
    if (end == s || *end || !(v >= 0 && v < 1))
        return false;
    *out = v;
    return true;
}

/* What --heads did: the blocks found on the model heads were cut from and
 * each block's heads after (NULL when --heads was not given). */
typedef struct heads_report {
    pare_prune_heads *hs;
    int *kept;
} heads_report;

/* --heads R on *cur (replaced by the pruned copy); res gets the after
 * numbers. With --criterion activation the heads are ranked on --data.
 * Returns an exit code. */
static int run_heads(const cli_args *args, const pare_prune_opts *po, double r, const char *model,
                     pare_graph **cur, pare_prune_result *res, heads_report *hr)
{
    pare_error err = {0};
    pare_prune_result hres;
    pare_graph *next = NULL;
    double *ratios;
    int prunable = 0;

    if (pare_prune_heads_find(*cur, &hr->hs, &err) != PARE_OK)
        return cli_report(&err);
    for (int i = 0; i < hr->hs->n; i++)
        prunable += hr->hs->blocks[i].prunable;
    if (!prunable) {
        pare_fail(&err, PARE_EINPUT, model, "--heads: no prunable attention block in '%s'", model);
        if (hr->hs->n)
            pare_error_hint(&err, "'%s': %s", hr->hs->blocks[0].name, hr->hs->blocks[0].reason);
        else
            pare_error_hint(&err, "pare finds multi-head attention with constant shapes; "
                            "see docs/pruning.md");
        return cli_report(&err);
    }
    if (strcmp(po->criterion, "activation") == 0) {
        pare_data_opts dopts = {0};
        pare_dataset *ds = NULL;
        long limit = 1000, threads = 0;
        pare_status st;
        if (!cli_get_int(&prune_spec, args, cli_opt(&prune_spec, "limit"), 1, 100000000L, &limit) ||
            !cli_get_int(&prune_spec, args, cli_opt(&prune_spec, "threads"), 0, 1024, &threads))
            return CLI_USAGE;
        dopts.limit = limit;
        dopts.search_dir = PARE_FASHION_MNIST[0] ? PARE_FASHION_MNIST : NULL;
        st = pare_dataset_open(cli_str(args, cli_opt(&prune_spec, "data"), ""), &dopts, &ds, &err);
        if (st == PARE_OK)
            st = pare_prune_heads_importance(*cur, hr->hs, ds, limit, 64, (int)threads, &err);
        pare_dataset_free(ds);
        if (st != PARE_OK)
            return cli_report(&err);
    }
    ratios = pare_calloc((size_t)hr->hs->n, sizeof *ratios);
    hr->kept = pare_calloc((size_t)hr->hs->n, sizeof *hr->kept);
    if (!ratios || !hr->kept) {
        pare_free(ratios);
        return CLI_FAILED;
    }
    for (int i = 0; i < hr->hs->n; i++)
        ratios[i] = hr->hs->blocks[i].prunable ? r : 0;
    if (pare_prune_heads_apply(*cur, hr->hs, ratios, po, &next, hr->kept, &hres, &err) != PARE_OK) {
        pare_free(ratios);
        return cli_report(&err);
    }
    pare_free(ratios);
    pare_graph_free(*cur);
    *cur = next;
    res->params_after = hres.params_after;
    res->flops_after = hres.flops_after;
    return CLI_OK;
}

/* Structured: ratios from --ratio, --ffn and --layer, then --heads; returns
 * an exit code. */
static int run_structured(const cli_args *args, const pare_graph *g, const char *model,
                          pare_graph **out, pare_prune_result *res, heads_report *hr)
{
    pare_prune_groups *gs = NULL;
    double *ratios = NULL, all = 0, ffn = 0, heads = 0;
    pare_error err = {0};
    int rc = CLI_OK;
    int o_ratio = cli_opt(&prune_spec, "ratio"), o_layer = cli_opt(&prune_spec, "layer");
    int o_ffn = cli_opt(&prune_spec, "ffn"), o_heads = cli_opt(&prune_spec, "heads");
    long seed = 0, round_to = 0;
    pare_prune_opts po = {0}, po_ch;
    bool by_data;

    if (!cli_get_int(&prune_spec, args, cli_opt(&prune_spec, "seed"), 0, 2147483647L, &seed) ||
        !cli_get_int(&prune_spec, args, cli_opt(&prune_spec, "round-to"), 1, 4096, &round_to))
        return CLI_USAGE;
    po.criterion = cli_str(args, cli_opt(&prune_spec, "criterion"), "l1_norm");
    po.seed = (uint64_t)seed;
    po.round_to = (int)round_to;
    /* activation ranks heads on data; channel groups have no such criterion */
    by_data = strcmp(po.criterion, "activation") == 0;
    po_ch = po;
    if (by_data) {
        po_ch.criterion = NULL;
        if (!cli_has(args, o_heads))
            return cli_usage_error(&prune_spec, "--criterion activation ranks attention heads: "
                                   "it needs --heads");
        if (cli_has(args, o_ratio) || cli_has(args, o_ffn) || args->n_multi[o_layer])
            return cli_usage_error(&prune_spec, "--criterion activation ranks heads only; prune "
                                   "channels (--ratio, --ffn, --layer) in a separate run");
        if (!cli_has(args, cli_opt(&prune_spec, "data")))
            return cli_usage_error(&prune_spec, "--criterion activation needs --data SPEC");
    } else if (cli_has(args, cli_opt(&prune_spec, "data"))) {
        return cli_usage_error(&prune_spec, "--data is only read by --heads with --criterion "
                               "activation");
    }
    if (cli_has(args, o_ratio) && !parse_ratio(cli_str(args, o_ratio, "0"), &all))
        return cli_usage_error(&prune_spec, "--ratio wants a number in [0, 1), not '%s'",
                               cli_str(args, o_ratio, ""));
    if (cli_has(args, o_ffn) && !parse_ratio(cli_str(args, o_ffn, "0"), &ffn))
        return cli_usage_error(&prune_spec, "--ffn wants a number in [0, 1), not '%s'",
                               cli_str(args, o_ffn, ""));
    if (cli_has(args, o_heads) && !parse_ratio(cli_str(args, o_heads, "0"), &heads))
        return cli_usage_error(&prune_spec, "--heads wants a number in [0, 1), not '%s'",
                               cli_str(args, o_heads, ""));
    if (pare_prune_groups_find(g, &gs, &err) != PARE_OK)
        return cli_report(&err);
    ratios = pare_calloc((size_t)(gs->n ? gs->n : 1), sizeof *ratios);
    if (!ratios) {
        rc = CLI_FAILED;
        goto done;
    }
    for (int i = 0; i < gs->n; i++)
        ratios[i] = gs->groups[i].prunable ? all : 0;
    if (cli_has(args, o_ffn)) {
        int n_ffn = 0;
        for (int i = 0; i < gs->n; i++)
            if (is_ffn_group(g, &gs->groups[i])) {
                ratios[i] = ffn;
                n_ffn++;
            }
        if (!n_ffn) {
            pare_fail(&err, PARE_EINPUT, model, "--ffn: no prunable FFN hidden-unit group in '%s'",
                      model);
            pare_error_hint(&err, "FFN groups are MatMul outputs read only by MatMul; "
                            "see --show-groups");
            rc = cli_report(&err);
            goto done;
        }
    }
    for (int k = 0; k < args->n_multi[o_layer]; k++) {
        const char *spec = args->multi[o_layer][k];
        const char *eq = strrchr(spec, '=');
        char name[512];
        double r;
        int gi;
        if (!eq || (size_t)(eq - spec) >= sizeof name || !parse_ratio(eq + 1, &r)) {
            rc = cli_usage_error(&prune_spec, "--layer wants NAME=R with R in [0, 1), not '%s'",
                                 spec);
            goto done;
        }
        memcpy(name, spec, (size_t)(eq - spec));
        name[eq - spec] = '\0';
        gi = pare_prune_groups_lookup(gs, g, name, model, &err);
        if (gi < 0) {
            rc = cli_report(&err);
            goto done;
        }
        ratios[gi] = r;
        if (!gs->groups[gi].prunable && r > 0) {
            pare_fail(&err, PARE_EINPUT, model, "group '%s' cannot be pruned", gs->groups[gi].name);
            pare_error_hint(&err, "%s", gs->groups[gi].reason);
            rc = cli_report(&err);
            goto done;
        }
    }
    if (pare_prune_apply(g, gs, ratios, &po_ch, out, res, &err) != PARE_OK)
        rc = cli_report(&err);
    else if (cli_has(args, o_heads) && heads > 0)
        rc = run_heads(args, &po, heads, model, out, res, hr);
done:
    pare_free(ratios);
    pare_prune_groups_free(gs);
    return rc;
}

static int run_masks(const cli_args *args, const pare_graph *g, pare_graph **out, pare_masks **mout)
{
    pare_unstruct_opts uo = {.mode = PARE_UNSTRUCT_L1};
    pare_masks *m = NULL;
    pare_error err = {0};
    pare_status st;
    double ratio = 0;
    long seed = 0;
    int o_nm = cli_opt(&prune_spec, "nm"), o_mask = cli_opt(&prune_spec, "mask");

    if (!cli_get_int(&prune_spec, args, cli_opt(&prune_spec, "seed"), 0, 2147483647L, &seed))
        return CLI_USAGE;
    if (cli_has(args, o_nm)) {
        int n = 0, mm = 0;
        if (sscanf(cli_str(args, o_nm, ""), "%d:%d", &n, &mm) != 2)
            return cli_usage_error(&prune_spec, "--nm wants N:M (2:4), not '%s'",
                                   cli_str(args, o_nm, ""));
        st = pare_masks_nm(g, n, mm, cli_has(args, cli_opt(&prune_spec, "conv1x1-only"))
                                         ? PARE_PARAMS_CONV1X1 : PARE_PARAMS_ALL,
                           &m, NULL, &err);
    } else if (cli_has(args, o_mask)) {
        st = pare_masks_load(g, cli_str(args, o_mask, ""), &m, &err);
    } else {
        const char *rs = cli_str(args, cli_opt(&prune_spec, "ratio"), NULL);
        if (!rs)
            return cli_usage_error(&prune_spec, "--unstructured needs --ratio R (or --mask FILE)");
        if (!parse_ratio(rs, &ratio))
            return cli_usage_error(&prune_spec, "--ratio wants a number in [0, 1), not '%s'", rs);
        uo.ratio = ratio;
        uo.global = cli_has(args, cli_opt(&prune_spec, "global"));
        uo.seed = (uint64_t)seed;
        uo.params_type = cli_has(args, cli_opt(&prune_spec, "conv1x1-only")) ? PARE_PARAMS_CONV1X1
                                                                             : PARE_PARAMS_ALL;
        if (strcmp(cli_str(args, cli_opt(&prune_spec, "criterion"), "l1_norm"), "random") == 0)
            uo.mode = PARE_UNSTRUCT_RANDOM;
        st = pare_masks_compute(g, &uo, &m, &err);
    }
    if (st == PARE_OK)
        st = pare_graph_clone(g, out, &err);
    if (st == PARE_OK)
        st = pare_masks_apply(m, *out, &err);
    if (st != PARE_OK) {
        pare_masks_free(m);
        pare_graph_free(*out);
        *out = NULL;
        return cli_report(&err);
    }
    *mout = m;
    return CLI_OK;
}

int cmd_prune(int argc, char **argv)
{
    cli_args args;
    pare_graph *g = NULL, *out = NULL;
    pare_masks *masks = NULL;
    pare_prune_result res = {0};
    heads_report hr = {0};
    pare_error err = {0};
    bool json, masked;
    const char *model, *path;
    int rc = cli_parse(&prune_spec, argc, argv, &args);

    if (rc != CLI_OK)
        goto done;
    model = args.pos[0];
    json = cli_has(&args, cli_opt(&prune_spec, "json"));
    /* --mask implies --unstructured: without it the masks were ignored and an
       unpruned copy written */
    masked = cli_has(&args, cli_opt(&prune_spec, "unstructured")) ||
             cli_has(&args, cli_opt(&prune_spec, "nm")) ||
             cli_has(&args, cli_opt(&prune_spec, "mask"));
    path = cli_str(&args, cli_opt(&prune_spec, "output"), NULL);
    if ((cli_has(&args, cli_opt(&prune_spec, "global")) ||
         cli_has(&args, cli_opt(&prune_spec, "conv1x1-only"))) && !masked) {
        rc = cli_usage_error(&prune_spec, "--global and --conv1x1-only need --unstructured or --nm");
        goto done;
    }
    if ((cli_has(&args, cli_opt(&prune_spec, "heads")) ||
         cli_has(&args, cli_opt(&prune_spec, "ffn"))) && masked) {
        rc = cli_usage_error(&prune_spec, "--heads and --ffn remove structure; they do not mix "
                             "with --unstructured, --nm or --mask");
        goto done;
    }
    if (!cli_has(&args, cli_opt(&prune_spec, "show-groups")) && !path) {
        rc = cli_usage_error(&prune_spec, "missing -o OUT.onnx");
        goto done;
    }
    rc = cli_load_model(model, &g);
    if (rc != CLI_OK)
        goto done;
    if (cli_has(&args, cli_opt(&prune_spec, "show-groups"))) {
        pare_prune_groups *gs = NULL;
        pare_prune_heads *hs = NULL;
        if (pare_prune_groups_find(g, &gs, &err) != PARE_OK ||
            pare_prune_heads_find(g, &hs, &err) != PARE_OK) {
            pare_prune_groups_free(gs);
            rc = cli_report(&err);
            goto done;
        }
        if (json) {
            show_groups_json(g, gs, hs);
        } else {
            show_groups_text(g, gs);
            show_heads_text(hs);
        }
        pare_prune_heads_free(hs);
        pare_prune_groups_free(gs);
        goto done;
    }
    if (path && cli_same_file(path, model)) {
        rc = cli_usage_error(&prune_spec, "refusing to overwrite the input model '%s'", model);
        goto done;
    }
    if (masked)
        rc = run_masks(&args, g, &out, &masks);
    else
        rc = run_structured(&args, g, model, &out, &res, &hr);
    if (rc != CLI_OK)
        goto done;
    if (masked && (pare_prune_measure(g, &res.params_before, &res.flops_before, &err) != PARE_OK ||
                   pare_prune_measure(out, &res.params_after, &res.flops_after, &err) != PARE_OK)) {
        rc = cli_report(&err);
        goto done;
    }
    if (pare_graph_save(out, path, &err) != PARE_OK) {
        rc = cli_report(&err);
        goto done;
    }
    if (json) {
        json_writer w;
        json_init(&w, stdout, true);
        json_begin_object(&w);
        json_key(&w, "model");
        json_string(&w, model);
        json_key(&w, "output");
        json_string(&w, path);
        json_key(&w, "params_before");
        json_int(&w, res.params_before);
        json_key(&w, "params_after");
        json_int(&w, res.params_after);
        json_key(&w, "flops_before");
        json_double(&w, res.flops_before);
        json_key(&w, "flops_after");
        json_double(&w, res.flops_after);
        json_key(&w, "channels_removed");
        json_int(&w, res.channels_removed);
        if (hr.hs) {
            int removed = 0;
            for (int i = 0; i < hr.hs->n; i++)
                removed += hr.hs->blocks[i].num_heads - hr.kept[i];
            json_key(&w, "heads_removed");
            json_int(&w, removed);
            json_heads(&w, hr.hs, hr.kept);
        }
        if (masks) {
            json_key(&w, "sparsity");
            json_double(&w, pare_masks_sparsity(masks));
            json_key(&w, "layers");
            json_begin_array(&w);
            for (int i = 0; i < masks->n; i++) {
                json_begin_object(&w);
                json_key(&w, "tensor");
                json_string(&w, masks->masks[i].tensor);
                json_key(&w, "sparsity");
                json_double(&w, (double)masks->masks[i].n_pruned / (double)masks->masks[i].numel);
                json_end_object(&w);
            }
            json_end_array(&w);
        }
        json_end_object(&w);
        json_finish(&w);
    } else {
        char a[64], b[64], c[64], d[64];
        if (masks) {
            printf("%-44s %10s  %s\n", "weight", "values", "sparsity");
            for (int i = 0; i < masks->n; i++)
                printf("%-44s %10s  %6.2f %%\n", masks->masks[i].tensor,
                       cli_fmt_count(masks->masks[i].numel, a, sizeof a),
                       100.0 * (double)masks->masks[i].n_pruned / (double)masks->masks[i].numel);
            printf("overall sparsity of pruned weights: %.2f %%\n", 100.0 * pare_masks_sparsity(masks));
        } else {
            printf("channels removed  %lld\n", (long long)res.channels_removed);
            for (int i = 0; hr.hs && i < hr.hs->n; i++) {
                const pare_prune_attn *blk = &hr.hs->blocks[i];
                if (blk->prunable)
                    printf("heads   %-32s %d -> %d\n", blk->name, blk->num_heads, hr.kept[i]);
                else
                    printf("heads   %-32s not prunable: %s\n", blk->name, blk->reason);
            }
        }
        printf("params  %s -> %s (%.1f %%)\n", cli_fmt_count(res.params_before, a, sizeof a),
               cli_fmt_count(res.params_after, b, sizeof b),
               res.params_before ? 100.0 * (double)res.params_after / (double)res.params_before : 0.0);
        printf("FLOPs   %s -> %s (%.1f %%)\n", cli_fmt_si(res.flops_before, c, sizeof c),
               cli_fmt_si(res.flops_after, d, sizeof d),
               res.flops_before > 0 ? 100.0 * res.flops_after / res.flops_before : 0.0);
        printf("wrote   %s\n", path);
    }
done:
    pare_prune_heads_free(hr.hs);
    pare_free(hr.kept);
    pare_masks_free(masks);
    pare_graph_free(out);
    pare_graph_free(g);
    cli_args_fini(&args);
    return rc < 0 ? CLI_OK : rc;
}
