/* Loading a reference model and the Fashion-MNIST sample for the
 * quantization unit tests (include after cmocka.h and the pare headers). */
#ifndef PARE_TEST_QUANT_FIXTURE_H
#define PARE_TEST_QUANT_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>

#include "pare/data.h"
#include "pare/graph.h"

#define SAMPLE_DIR PARE_TEST_DATA "/fmnist-sample"

/* tests/data/<name>.onnx; fails the test when it cannot be loaded. */
static inline pare_graph *load_model(const char *name)
{
    char path[512];
    pare_graph *g = NULL;
    pare_error err = {0};
    snprintf(path, sizeof path, "%s/%s.onnx", PARE_TEST_DATA, name);
    if (pare_graph_load(path, &g, &err) != PARE_OK)
        fail_msg("load %s: %s", path, err.msg);
    return g;
}

/* The 256-image Fashion-MNIST test sample (normalised, with labels). */
static inline pare_dataset *sample(void)
{
    pare_dataset *ds = NULL;
    pare_error err = {0};
    pare_data_opts o = {.search_dir = SAMPLE_DIR};
    unsetenv("PARE_FASHION_MNIST");
    if (pare_dataset_open("fashion-mnist", &o, &ds, &err) != PARE_OK)
        fail_msg("sample: %s", err.msg);
    return ds;
}

#endif
