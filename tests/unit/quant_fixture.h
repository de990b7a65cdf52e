/* Loading a reference model and the Fashion-MNIST sample for the
 * quantization unit tests (include after cmocka.h and the pare headers). */
#ifndef PARE_TEST_QUANT_FIXTURE_H
#define PARE_TEST_QUANT_FIXTURE_H

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "pare/exec.h"

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

/* Mean |logit difference| (squared: mean squared difference) of q vs g on
 * the whole batches of 64 of ds. */
static inline double logit_diff(const pare_graph *g, const pare_graph *q, pare_dataset *ds,
                                bool squared)
{
    pare_exec *xf = NULL, *xq = NULL;
    pare_exec_opts eo = {.batch = 64};
    pare_error err = {0};
    double e = 0;
    int64_t n = pare_dataset_count(ds) / 64 * 64, cnt = 0;

    assert_int_equal(pare_exec_new(g, &eo, &xf, &err), PARE_OK);
    assert_int_equal(pare_exec_new(q, &eo, &xq, &err), PARE_OK);
    for (int64_t pos = 0; pos < n; pos += 64) {
        const pare_tensor *yf, *yq;
        assert_int_equal(pare_dataset_fill(ds, pos, 64, pare_exec_input(xf, 0), NULL, &err), PARE_OK);
        assert_int_equal(pare_dataset_fill(ds, pos, 64, pare_exec_input(xq, 0), NULL, &err), PARE_OK);
        assert_int_equal(pare_exec_run(xf, &err), PARE_OK);
        assert_int_equal(pare_exec_run(xq, &err), PARE_OK);
        yf = pare_exec_output(xf, 0);
        yq = pare_exec_output(xq, 0);
        for (int64_t k = 0; k < pare_tensor_numel(yf); k++, cnt++) {
            double d = (double)pare_tensor_f32(yq)[k] - pare_tensor_f32(yf)[k];
            e += squared ? d * d : fabs(d);
        }
    }
    pare_exec_free(xf);
    pare_exec_free(xq);
    return cnt ? e / (double)cnt : 0;
}

#endif
