/* pare prune MODEL -o OUT.onnx: structured channel pruning (physical shrink),
 * unstructured masks and N:M sparsity; --show-groups lists channel groups. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "json.h"
#include "pare/alloc.h"
#include "pare/graph.h"
#include "pare/prune.h"

int cmd_prune(int argc, char **argv);

static const cli_option prune_options[] = {
    {.name = "output", .metavar = "OUT.onnx", .help = "write the pruned model here", .short_name = 'o'},
    {.name = "ratio", .metavar = "R", .help = "prune ratio for every prunable group, in [0, 1)"},
    {.name = "layer", .metavar = "NAME=R", .help = "ratio for one group (group, conv or weight name)",
     .multi = true},
    {.name = "criterion", .metavar = "C", .help = "l1_norm (default), l2_norm, geometry_median, bn_scale, random"},
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
    .synopsis = "MODEL -o OUT.onnx [--ratio R] [--layer NAME=R]... [--criterion C]\n"
                "                  [--unstructured [--global]] [--nm 2:4] [--show-groups] [--json]",
    .summary = "Structured pruning removes the lowest-ranked channels of each dependency group\n"
               "(a conv's output channels with its BatchNorm, the next layers' input channels\n"
               "and everything a residual Add ties to them), so the saved model is smaller\n"
               "and faster. --unstructured and --nm zero weights instead (same shapes).",
    .options = prune_options,
    .n_options = (int)(sizeof prune_options / sizeof prune_options[0]),
    .positional = prune_positional,
    .n_required = 1,
    .n_positional = 1,
    .epilog = "Examples:\n"
              "  pare prune resnet8.onnx --show-groups\n"
              "  pare prune resnet8.onnx -o small.onnx --ratio 0.3 --layer /layer1/conv1/Conv=0.5",
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

static void show_groups_json(const pare_graph *g, const pare_prune_groups *gs)
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
    json_end_object(&w);
    json_finish(&w);
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

/* Structured: ratios from --ratio and --layer; returns an exit code. */
static int run_structured(const cli_args *args, const pare_graph *g, const char *model,
                          pare_graph **out, pare_prune_result *res)
{
    pare_prune_groups *gs = NULL;
    double *ratios = NULL, all = 0;
    pare_error err = {0};
    int rc = CLI_OK;
    int o_ratio = cli_opt(&prune_spec, "ratio"), o_layer = cli_opt(&prune_spec, "layer");
    long seed = 0, round_to = 0;
    pare_prune_opts po = {0};

    if (!cli_get_int(&prune_spec, args, cli_opt(&prune_spec, "seed"), 0, 2147483647L, &seed) ||
        !cli_get_int(&prune_spec, args, cli_opt(&prune_spec, "round-to"), 1, 4096, &round_to))
        return CLI_USAGE;
    po.criterion = cli_str(args, cli_opt(&prune_spec, "criterion"), "l1_norm");
    po.seed = (uint64_t)seed;
    po.round_to = (int)round_to;
    if (cli_has(args, o_ratio) && !parse_ratio(cli_str(args, o_ratio, "0"), &all))
        return cli_usage_error(&prune_spec, "--ratio wants a number in [0, 1), not '%s'",
                               cli_str(args, o_ratio, ""));
    if (pare_prune_groups_find(g, &gs, &err) != PARE_OK)
        return cli_report(&err);
    ratios = pare_calloc((size_t)(gs->n ? gs->n : 1), sizeof *ratios);
    if (!ratios) {
        rc = CLI_FAILED;
        goto done;
    }
    for (int i = 0; i < gs->n; i++)
        ratios[i] = gs->groups[i].prunable ? all : 0;
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
    if (pare_prune_apply(g, gs, ratios, &po, out, res, &err) != PARE_OK)
        rc = cli_report(&err);
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
    if (!cli_has(&args, cli_opt(&prune_spec, "show-groups")) && !path) {
        rc = cli_usage_error(&prune_spec, "missing -o OUT.onnx");
        goto done;
    }
    rc = cli_load_model(model, &g);
    if (rc != CLI_OK)
        goto done;
    if (cli_has(&args, cli_opt(&prune_spec, "show-groups"))) {
        pare_prune_groups *gs = NULL;
        if (pare_prune_groups_find(g, &gs, &err) != PARE_OK) {
            rc = cli_report(&err);
            goto done;
        }
        if (json)
            show_groups_json(g, gs);
        else
            show_groups_text(g, gs);
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
        rc = run_structured(&args, g, model, &out, &res);
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
    pare_masks_free(masks);
    pare_graph_free(out);
    pare_graph_free(g);
    cli_args_fini(&args);
    return rc < 0 ? CLI_OK : rc;
}
