/* pare convert IN OUT: load and save (an ONNX round trip). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "pare/graph.h"

static const char *const convert_positional[] = {"IN", "OUT"};
static const cli_spec convert_spec = {
    .name = "convert",
    .synopsis = "IN OUT",
    .summary = "Loads IN and saves it as OUT: the model ONNX Runtime sees is unchanged\n"
               "(opsets, metadata, names and attributes pare does not model survive).\n"
               "OUT is written to a temporary name and renamed; OUT may not be IN.",
    .options = NULL,
    .n_options = 0,
    .positional = convert_positional,
    .n_required = 2,
    .n_positional = 2,
};

int cmd_convert(int argc, char **argv)
{
    cli_args args;
    pare_graph *g = NULL;
    pare_error err = {0};
    char a[32], b[32];
    int rc = cli_parse(&convert_spec, argc, argv, &args);

    if (rc != CLI_OK)
        goto out;
    /* The input is never overwritten: same path, or another name for the
       same file (hard link, symlink, ./x vs x). */
    if (cli_same_file(args.pos[0], args.pos[1])) {
        pare_fail(&err, PARE_EINPUT, args.pos[1], "refusing to overwrite the input model");
        pare_error_hint(&err, "write to another file");
        rc = cli_report(&err);
        goto out;
    }
    rc = cli_load_model(args.pos[0], &g);
    if (rc != CLI_OK)
        goto out;
    if (pare_graph_save(g, args.pos[1], &err) != PARE_OK) {
        rc = cli_report(&err);
        goto out;
    }
    printf("wrote %s (%s): %d nodes, %s params\n", args.pos[1],
           cli_fmt_bytes((double)cli_file_size(args.pos[1]), a, sizeof a), g->n_nodes,
           cli_fmt_count(pare_graph_param_count(g), b, sizeof b));
out:
    pare_graph_free(g);
    cli_args_fini(&args);
    return rc < 0 ? CLI_OK : rc;
}
