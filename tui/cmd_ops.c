/* pare ops [--markdown]: the op registry. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "pare/op.h"

static const cli_option ops_options[] = {
    {"markdown", NULL, "print a Markdown table", false, 0},
};
static const cli_spec ops_spec = {
    .name = "ops",
    .synopsis = "[--markdown]",
    .summary = "Lists the ops pare can run: op type, domain, the opsets each kernel covers\n"
               "and whether it is trainable (has a backward).",
    .options = ops_options,
    .n_options = 1,
};

/* "1-12, 13+" for every row of (domain, op) */
static void opset_ranges(const pare_op_def *d0, char *buf, size_t size, bool *trainable)
{
    size_t len = 0;

    buf[0] = '\0';
    *trainable = false;
    for (int i = 0, n = pare_op_row_count(); i < n; i++) {
        const pare_op_def *d = pare_op_row(i);
        int k;
        if (strcmp(d->op_type, d0->op_type) || strcmp(d->domain, d0->domain))
            continue;
        if (d->backward)
            *trainable = true;
        if (d->until)
            k = snprintf(buf + len, size - len, "%s%d-%d", len ? ", " : "", d->since, d->until);
        else
            k = snprintf(buf + len, size - len, "%s%d+", len ? ", " : "", d->since);
        if (k < 0 || (size_t)k >= size - len)
            break;
        len += (size_t)k;
    }
}

int cmd_ops(int argc, char **argv)
{
    cli_args args;
    bool md;
    int rc = cli_parse(&ops_spec, argc, argv, &args), shown = 0;

    if (rc != CLI_OK) {
        cli_args_fini(&args);
        return rc < 0 ? CLI_OK : rc;
    }
    md = cli_has(&args, cli_opt(&ops_spec, "markdown"));
    if (md)
        printf("| op | domain | opsets | trainable |\n|---|---|---|---|\n");
    else
        printf("%-24s %-10s %-16s %s\n", "op", "domain", "opsets", "trainable");
    for (int i = 0, n = pare_op_row_count(); i < n; i++) {
        const pare_op_def *d = pare_op_row(i);
        char ranges[128];
        bool first = true, trainable;
        for (int j = 0; j < i && first; j++) {
            const pare_op_def *e = pare_op_row(j);
            first = strcmp(e->op_type, d->op_type) || strcmp(e->domain, d->domain);
        }
        if (!first)
            continue;
        opset_ranges(d, ranges, sizeof ranges, &trainable);
        if (md)
            printf("| %s | %s | %s | %s |\n", d->op_type, d->domain[0] ? d->domain : "ai.onnx",
                   ranges, trainable ? "yes" : "no");
        else
            printf("%-24s %-10s %-16s %s\n", d->op_type, d->domain[0] ? d->domain : "ai.onnx",
                   ranges, trainable ? "yes" : "no");
        shown++;
    }
    if (!md)
        printf("\n%d ops\n", shown);
    cli_args_fini(&args);
    return CLI_OK;
}
