/* pare config --doc | --check JOB.yaml | --resolved JOB.yaml: the job file
 * reference, validation with every problem located, and the resolved config. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "pare/alloc.h"
#include "pare/job.h"

static const cli_option config_options[] = {
    {"doc", NULL, "print the config key reference (Markdown, as in docs/config.md)", false, 0},
    {"check", "FILE", "validate a job: every problem as file:line:column on stderr", false, 0},
    {"resolved", "FILE", "print the job with every default filled, canonical key names", false, 0},
};
static const cli_spec config_spec = {
    .name = "config",
    .synopsis = "--doc | --check JOB.yaml | --resolved JOB.yaml",
    .summary = "Job files (the YAML `pare compress -c` reads; keys as in PaddleSlim ACT).\n"
               "--check loads and validates a job as `pare compress` would before running it:\n"
               "unknown keys, wrong types, values out of range and missing Global.model or\n"
               "Global.save_dir are reported all at once, each with its position and a\n"
               "suggestion when pare can guess one. --resolved prints what the job would run:\n"
               "every present section with every key, defaults filled and aliases folded.\n"
               "--doc prints the key reference generated from the schema.",
    .options = config_options,
    .n_options = (int)(sizeof config_options / sizeof config_options[0]),
    .epilog = "Exit codes: 0 valid (or printed), 2 the file has problems or cannot be read.",
};

#define OPT(name) cli_opt(&config_spec, name)

/* Prints every diagnostic (or err alone when there are none) as
 * "pare: file:line:col: msg (hint)"; returns the exit code. */
static int report_all(const pare_job_diags *diags, const pare_error *err)
{
    int rc = CLI_USAGE;

    if (diags->n == 0)
        return cli_report(err);
    for (int i = 0; i < diags->n; i++)
        rc = cli_report(&diags->v[i]);
    if (diags->n > 1)
        fprintf(stderr, "pare: %d problems\n", diags->n);
    return rc;
}

static int config_doc(void)
{
    char *doc = pare_job_schema_markdown();

    if (!doc) {
        fprintf(stderr, "pare: out of memory writing the config reference\n");
        return CLI_FAILED;
    }
    fputs(doc, stdout);
    pare_free(doc);
    return CLI_OK;
}

/* Sections present in the job, by their canonical names. */
static int list_sections(const pare_job *job, char *buf, size_t size)
{
    const struct {
        const char *name;
        bool present;
    } s[] = {
        {"Global", job->global.meta.present},
        {"TrainConfig", job->train.meta.present},
        {"Distillation", job->distill.meta.present},
        {"QuantPost", job->quant_post.meta.present},
        {"QuantAware", job->quant_aware.meta.present},
        {"HyperParameterOptimization", job->hpo.meta.present},
        {"ChannelPrune", job->channel_prune.meta.present},
        {"UnstructurePrune", job->unstructure_prune.meta.present},
        {"ASPPrune", job->asp_prune.meta.present},
        {"TransformerPrune", job->transformer_prune.meta.present},
        {"Layers", job->layers.meta.present},
        {"Sensitivity", job->sensitivity.meta.present},
    };
    size_t len = 0;
    int n = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < sizeof s / sizeof s[0]; i++) {
        int k;
        if (!s[i].present)
            continue;
        k = snprintf(buf + len, size - len, "%s%s", n ? ", " : "", s[i].name);
        if (k < 0 || (size_t)k >= size - len)
            break;
        len += (size_t)k;
        n++;
    }
    return n;
}

/* Loads and validates path; resolved: print the resolved YAML on success. */
static int config_load(const char *path, bool resolved)
{
    pare_job *job = NULL;
    pare_job_diags diags = {0};
    pare_error err = {0};
    char sections[512], *yaml = NULL;
    int rc, n;

    if (pare_job_load(path, &job, &diags, &err) != PARE_OK) {
        rc = report_all(&diags, &err);
        goto out;
    }
    if (pare_job_check_runnable(job, &diags, &err) != PARE_OK) {
        rc = report_all(&diags, &err);
        goto out;
    }
    if (resolved) {
        yaml = pare_job_to_yaml(job, true, &err);
        if (!yaml) {
            rc = cli_report(&err);
            goto out;
        }
        fputs(yaml, stdout);
    } else {
        n = list_sections(job, sections, sizeof sections);
        printf("%s: ok, %d section%s (%s)\n", path, n, n == 1 ? "" : "s", sections);
    }
    fflush(stdout);
    rc = CLI_OK;
out:
    pare_free(yaml);
    pare_job_diags_fini(&diags);
    pare_job_free(job);
    return rc;
}

int cmd_config(int argc, char **argv)
{
    cli_args args;
    int rc = cli_parse(&config_spec, argc, argv, &args);
    int modes;

    if (rc != CLI_OK)
        goto out;
    modes = cli_has(&args, OPT("doc")) + cli_has(&args, OPT("check")) +
            cli_has(&args, OPT("resolved"));
    if (modes != 1)
        rc = cli_usage_error(&config_spec, "%s",
                             modes ? "give only one of --doc, --check, --resolved"
                                   : "missing --doc, --check FILE or --resolved FILE");
    else if (cli_has(&args, OPT("doc")))
        rc = config_doc();
    else if (cli_has(&args, OPT("check")))
        rc = config_load(cli_str(&args, OPT("check"), NULL), false);
    else
        rc = config_load(cli_str(&args, OPT("resolved"), NULL), true);
out:
    cli_args_fini(&args);
    return rc < 0 ? CLI_OK : rc;
}
