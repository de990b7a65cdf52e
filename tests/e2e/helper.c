/* Helper for the CLI end-to-end tests: builds odd inputs with the core API
 * and inspects what `pare` wrote.
 *
 *   helper bogus-op IN OUT OP      copy of IN with the first Relu's op type set to OP
 *   helper make-npy OUT N          float32 [N, 1, 28, 28] deterministic pseudo-images
 *   helper make-npz OUT NAME N     the same array in an .npz under NAME
 *   helper npz-list FILE           "name dtype [dims] finite|nonfinite" per array
 *   helper npz-equal A B NAME      exit 0 when array NAME is bitwise equal in A and B */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pare/alloc.h"
#include "pare/data.h"
#include "pare/graph.h"

static int report(const pare_error *err)
{
    char buf[1200];
    pare_error_format(err, buf, sizeof buf);
    fprintf(stderr, "helper: %s\n", buf);
    return 1;
}

static int bogus_op(const char *in, const char *out, const char *op)
{
    pare_graph *g = NULL;
    pare_error err = {0};
    int rc = 1;

    if (pare_graph_load(in, &g, &err) != PARE_OK)
        return report(&err);
    for (int n = 0; n < g->n_nodes; n++) {
        if (strcmp(g->nodes[n].op_type, "Relu"))
            continue;
        pare_free(g->nodes[n].op_type);
        g->nodes[n].op_type = pare_strdup(op);
        printf("%s\n", g->nodes[n].name);
        rc = pare_graph_save(g, out, &err) == PARE_OK ? 0 : report(&err);
        break;
    }
    pare_graph_free(g);
    return rc;
}

static pare_tensor *images(long n)
{
    int64_t dims[4] = {n, 1, 28, 28};
    pare_tensor *t = pare_tensor_new(PARE_F32, 4, dims);
    uint32_t s = 12345;

    for (int64_t i = 0; t && i < pare_tensor_numel(t); i++) {
        s = s * 1664525u + 1013904223u;
        pare_tensor_f32(t)[i] = ((float)(s >> 8) / 16777216.0f - 0.286f) / 0.353f;
    }
    return t;
}

static int make_npy(const char *out, long n)
{
    pare_tensor *t = images(n);
    pare_error err = {0};
    int rc = t && pare_npy_save(out, t, &err) == PARE_OK ? 0 : report(&err);
    pare_tensor_free(t);
    return rc;
}

static int make_npz(const char *out, const char *name, long n)
{
    pare_tensor *t = images(n);
    const pare_tensor *arr[1] = {t};
    const char *names[1] = {name};
    pare_error err = {0};
    int rc = t && pare_npz_save(out, names, arr, 1, &err) == PARE_OK ? 0 : report(&err);
    pare_tensor_free(t);
    return rc;
}

static int npz_list(const char *path)
{
    pare_npz *z = NULL;
    pare_error err = {0};

    if (pare_npz_load(path, &z, &err) != PARE_OK)
        return report(&err);
    for (int i = 0; i < z->n; i++) {
        const pare_tensor *t = z->arrays[i];
        char shape[128];
        bool finite = true;
        if (t->dtype == PARE_F32)
            for (int64_t k = 0; k < pare_tensor_numel(t); k++)
                finite = finite && isfinite(pare_tensor_f32(t)[k]);
        printf("%s %s %s %s\n", z->names[i], pare_dtype_name(t->dtype),
               pare_shape_format(t->ndim, t->dims, shape, sizeof shape),
               finite ? "finite" : "nonfinite");
    }
    pare_npz_free(z);
    return 0;
}

static int npz_equal(const char *a, const char *b, const char *name)
{
    pare_npz *za = NULL, *zb = NULL;
    pare_error err = {0};
    const pare_tensor *ta, *tb;
    int rc = 1;

    if (pare_npz_load(a, &za, &err) != PARE_OK || pare_npz_load(b, &zb, &err) != PARE_OK) {
        pare_npz_free(za);
        return report(&err);
    }
    ta = pare_npz_find(za, name);
    tb = pare_npz_find(zb, name);
    if (ta && tb && pare_tensor_same_shape(ta, tb) && ta->dtype == tb->dtype &&
        !memcmp(ta->data, tb->data, pare_tensor_nbytes(ta)))
        rc = 0;
    else
        fprintf(stderr, "helper: array '%s' differs or is missing\n", name);
    pare_npz_free(za);
    pare_npz_free(zb);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc == 5 && !strcmp(argv[1], "bogus-op"))
        return bogus_op(argv[2], argv[3], argv[4]);
    if (argc == 4 && !strcmp(argv[1], "make-npy"))
        return make_npy(argv[2], atol(argv[3]));
    if (argc == 5 && !strcmp(argv[1], "make-npz"))
        return make_npz(argv[2], argv[3], atol(argv[4]));
    if (argc == 3 && !strcmp(argv[1], "npz-list"))
        return npz_list(argv[2]);
    if (argc == 5 && !strcmp(argv[1], "npz-equal"))
        return npz_equal(argv[2], argv[3], argv[4]);
    fprintf(stderr, "usage: helper bogus-op IN OUT OP | make-npy OUT N | make-npz OUT NAME N |"
                    " npz-list FILE | npz-equal A B NAME\n");
    return 2;
}
