/* Gemm and MatMul.
 *
 * Gemm: Y (M, N) = alpha * A' B' + beta * C, A' = A or A^T, B' = B or B^T, C
 * broadcast to (M, N) (optional from opset 11). Y is first filled with
 * beta * C, then one cblas_sgemm (dgemm for float64) accumulates into it.
 *
 * MatMul: numpy matmul. 1-D operands get a dim prepended (A) or appended (B)
 * that is dropped from the result; batch dims broadcast. When B has no batch
 * (or only 1s), A's batch folds into the rows of one GEMM (a Linear on a
 * (N, T, K) activation is a single call); otherwise one GEMM per batch
 * entry, spread over OpenMP threads when each is small enough for OpenBLAS
 * to run it in the calling thread (attention). float32 and float64 go through OpenBLAS; int32 and int64 (shape
 * arithmetic) use a plain loop. */
#include <cblas.h>
#include <limits.h>
#include <string.h>

#include "ops/families.h"
#include "ops/nn_util.h"

/* Largest M*N*K that OpenBLAS computes in the calling thread (its default
 * GEMM_MULTITHREAD_THRESHOLD 4 x 65536): such calls may run on OpenMP
 * threads without waking OpenBLAS's own. */
#define GEMM_SINGLE_MNK 262144

/* ---- Gemm ---- */

typedef struct gemm_geom {
    int64_t M, N, K;
    int trans_a, trans_b;
    float alpha, beta;
    const pare_tensor *c;       /* NULL: no C (or beta == 0 and C ignored) */
    int64_t cm, cn;             /* C's dims right-aligned to (M, N) */
} gemm_geom;

static pare_status gemm_geom_init(pare_op_ctx *ctx, gemm_geom *g)
{
    const pare_tensor *a, *b, *c;
    pare_status rc = nn_check_inputs(ctx, ctx->opset >= 11 ? 2 : 3, 3);

    if (rc == PARE_OK)
        rc = nn_check_output(ctx);
    if (rc != PARE_OK)
        return rc;
    a = ctx->in[0];
    b = ctx->in[1];
    c = ctx->n_in > 2 ? ctx->in[2] : NULL;
    memset(g, 0, sizeof *g);
    if (a->dtype != PARE_F32 && a->dtype != PARE_F64)
        return nn_bad_dtype(ctx, "Gemm", a->dtype);
    if (b->dtype != a->dtype || (c && c->dtype != a->dtype))
        return pare_op_fail(ctx, PARE_EINPUT, "inputs must share dtype '%s'",
                            pare_dtype_name(a->dtype));
    if (a->ndim != 2 || b->ndim != 2)
        return pare_op_fail(ctx, PARE_EINPUT, "A and B must be 2-D, got rank %d and %d", a->ndim,
                            b->ndim);
    g->trans_a = pare_node_attr_int(ctx->node, "transA", 0) != 0;
    g->trans_b = pare_node_attr_int(ctx->node, "transB", 0) != 0;
    g->alpha = pare_node_attr_float(ctx->node, "alpha", 1.0f);
    g->beta = pare_node_attr_float(ctx->node, "beta", 1.0f);
    g->M = a->dims[g->trans_a ? 1 : 0];
    g->K = a->dims[g->trans_a ? 0 : 1];
    g->N = b->dims[g->trans_b ? 0 : 1];
    if (b->dims[g->trans_b ? 1 : 0] != g->K)
        return pare_op_fail(ctx, PARE_EINPUT,
                            "inner dims differ: A' is (%lld, %lld) and B' is (%lld, %lld)",
                            (long long)g->M, (long long)g->K,
                            (long long)b->dims[g->trans_b ? 1 : 0], (long long)g->N);
    if (g->M > INT_MAX || g->N > INT_MAX || g->K > INT_MAX)
        return pare_op_fail(ctx, PARE_EUNSUPPORTED, "matrix dims above %d not supported", INT_MAX);
    if (c) {
        if (c->ndim > 2)
            return pare_op_fail(ctx, PARE_EINPUT, "C must have rank 2 or less, got %d", c->ndim);
        g->cm = c->ndim == 2 ? c->dims[0] : 1;
        g->cn = c->ndim >= 1 ? c->dims[c->ndim - 1] : 1;
        if ((g->cm != 1 && g->cm != g->M) || (g->cn != 1 && g->cn != g->N))
            return pare_op_fail(ctx, PARE_EINPUT, "C of shape (%lld, %lld) does not broadcast to "
                                "(%lld, %lld)", (long long)g->cm, (long long)g->cn,
                                (long long)g->M, (long long)g->N);
        if (g->beta != 0.0f)
            g->c = c;
    }
    return PARE_OK;
}

static pare_status gemm_infer(pare_op_ctx *ctx)
{
    gemm_geom g;
    pare_status rc = gemm_geom_init(ctx, &g);
    int64_t dims[2];

    if (rc != PARE_OK)
        return rc;
    dims[0] = g.M;
    dims[1] = g.N;
    nn_set_shape(ctx->out[0], ctx->in[0]->dtype, 2, dims);
    return PARE_OK;
}

#define GEMM_FILL_C(T)                                                                  \
    do {                                                                                \
        const T *cd = g->c->data;                                                       \
        T *yd = y;                                                                      \
        T beta = (T)g->beta;                                                            \
        for (int64_t i = 0; i < g->M; i++) {                                            \
            const T *restrict cr = cd + (g->cm == 1 ? 0 : i * g->cn);                   \
            T *restrict yr = yd + i * g->N;                                             \
            if (g->cn == 1)                                                             \
                for (int64_t j = 0; j < g->N; j++)                                      \
                    yr[j] = beta * cr[0];                                               \
            else                                                                        \
                for (int64_t j = 0; j < g->N; j++)                                      \
                    yr[j] = beta * cr[j];                                               \
        }                                                                               \
    } while (0)

static void gemm_fill_c(const gemm_geom *g, pare_dtype dt, void *y)
{
    if (dt == PARE_F32)
        GEMM_FILL_C(float);
    else
        GEMM_FILL_C(double);
}

static pare_status gemm_forward(pare_op_ctx *ctx)
{
    gemm_geom g;
    pare_status rc = gemm_geom_init(ctx, &g);
    const pare_tensor *a, *b;
    pare_tensor *y;
    int lda, ldb;

    if (rc != PARE_OK)
        return rc;
    a = ctx->in[0];
    b = ctx->in[1];
    y = ctx->out[0];
    if (g.M == 0 || g.N == 0)
        return PARE_OK;
    if (g.c)
        gemm_fill_c(&g, a->dtype, y->data);
    lda = (int)(g.trans_a ? g.M : g.K);
    ldb = (int)(g.trans_b ? g.K : g.N);
    if (g.K == 0) {
        if (!g.c)
            memset(y->data, 0, pare_tensor_nbytes(y));
        return PARE_OK;
    }
    if (a->dtype == PARE_F32)
        cblas_sgemm(CblasRowMajor, g.trans_a ? CblasTrans : CblasNoTrans,
                    g.trans_b ? CblasTrans : CblasNoTrans, (int)g.M, (int)g.N, (int)g.K, g.alpha,
                    a->data, lda, b->data, ldb, g.c ? 1.0f : 0.0f, y->data, (int)g.N);
    else
        cblas_dgemm(CblasRowMajor, g.trans_a ? CblasTrans : CblasNoTrans,
                    g.trans_b ? CblasTrans : CblasNoTrans, (int)g.M, (int)g.N, (int)g.K,
                    (double)g.alpha, a->data, lda, b->data, ldb, g.c ? 1.0 : 0.0, y->data,
                    (int)g.N);
    return PARE_OK;
}


/* Zeroes every requested input gradient (no gradient flows out). */
static void gemm_zero_din(pare_op_ctx *ctx)
{
    for (int i = 0; i < ctx->n_in; i++)
        if (ctx->din && ctx->din[i] && ctx->din[i]->data)
            memset(ctx->din[i]->data, 0, pare_tensor_nbytes(ctx->din[i]));
}

/* dA = alpha dY op(B)^T (transposed back when transA), dB likewise,
 * dC = beta * dY summed over C's broadcast dims. float32 only. */
static pare_status gemm_backward(pare_op_ctx *ctx)
{
    gemm_geom g;
    pare_status rc = gemm_geom_init(ctx, &g);
    const pare_tensor *dyt;
    const float *dy, *a, *b;
    pare_tensor *da, *db, *dc;

    if (rc != PARE_OK)
        return rc;
    if (ctx->in[0]->dtype != PARE_F32)
        return nn_bad_dtype(ctx, "Gemm backward", ctx->in[0]->dtype);
    dyt = ctx->dout ? ctx->dout[0] : NULL;
    if (!dyt || g.M == 0 || g.N == 0 || g.K == 0) {
        gemm_zero_din(ctx);
        if (!dyt || g.M == 0 || g.N == 0)
            return PARE_OK;
    }
    dy = pare_tensor_f32(dyt);
    a = pare_tensor_f32(ctx->in[0]);
    b = pare_tensor_f32(ctx->in[1]);
    da = ctx->din[0];
    db = ctx->n_in > 1 ? ctx->din[1] : NULL;
    dc = ctx->n_in > 2 ? ctx->din[2] : NULL;
    if (da && g.K > 0) {
        if (!g.trans_a) /* dA (M, K) = alpha dY (M, N) op(B)^T (N, K) */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, g.trans_b ? CblasNoTrans : CblasTrans,
                        (int)g.M, (int)g.K, (int)g.N, g.alpha, dy, (int)g.N, b,
                        (int)(g.trans_b ? g.K : g.N), 0.0f, da->data, (int)g.K);
        else /* dA (K, M) = alpha op(B) (K, N) dY^T (N, M) */
            cblas_sgemm(CblasRowMajor, g.trans_b ? CblasTrans : CblasNoTrans, CblasTrans,
                        (int)g.K, (int)g.M, (int)g.N, g.alpha, b, (int)(g.trans_b ? g.K : g.N),
                        dy, (int)g.N, 0.0f, da->data, (int)g.M);
    }
    if (db && g.K > 0) {
        if (!g.trans_b) /* dB (K, N) = alpha op(A)^T (K, M) dY (M, N) */
            cblas_sgemm(CblasRowMajor, g.trans_a ? CblasNoTrans : CblasTrans, CblasNoTrans,
                        (int)g.K, (int)g.N, (int)g.M, g.alpha, a, (int)(g.trans_a ? g.M : g.K),
                        dy, (int)g.N, 0.0f, db->data, (int)g.N);
        else /* dB (N, K) = alpha dY^T (N, M) op(A) (M, K) */
            cblas_sgemm(CblasRowMajor, CblasTrans, g.trans_a ? CblasTrans : CblasNoTrans,
                        (int)g.N, (int)g.K, (int)g.M, g.alpha, dy, (int)g.N, a,
                        (int)(g.trans_a ? g.M : g.K), 0.0f, db->data, (int)g.K);
    }
    if (dc) {
        /* dC (cm, cn): beta * dY summed over the broadcast dims */
        float *d = pare_tensor_f32(dc);
        memset(d, 0, pare_tensor_nbytes(dc));
        for (int64_t i = 0; i < g.M; i++)
            for (int64_t j = 0; j < g.N; j++)
                d[(g.cm == 1 ? 0 : i) * g.cn + (g.cn == 1 ? 0 : j)] += g.beta * dy[i * g.N + j];
    }
    return PARE_OK;
}

static double gemm_flops(const pare_op_ctx *ctx)
{
    const pare_tensor *a = ctx->in[0], *y = ctx->out[0];
    int trans_a = pare_node_attr_int(ctx->node, "transA", 0) != 0;
    double mn, k;

    if (!a || !y || a->ndim != 2 || y->ndim != 2)
        return 0.0;
    mn = (double)pare_tensor_numel(y);
    k = (double)a->dims[trans_a ? 0 : 1];
    return 2.0 * mn * k + (ctx->n_in > 2 && ctx->in[2] ? mn : 0.0);
}

/* ---- MatMul ---- */

typedef struct matmul_geom {
    int64_t M, N, K;
    int a1d, b1d;
    int nb;                          /* broadcast batch rank */
    int64_t batch[PARE_MAX_DIMS];    /* broadcast batch dims */
    int64_t sa[PARE_MAX_DIMS];       /* A's batch strides in matrices (0 = broadcast) */
    int64_t sb[PARE_MAX_DIMS];
    int64_t n_batch;                 /* product of batch */
    int64_t a_batch, b_batch;        /* matrices in A and B */
} matmul_geom;

static pare_status matmul_geom_init(pare_op_ctx *ctx, matmul_geom *g)
{
    const pare_tensor *a, *b;
    int na, nb_, ra, rb;
    int64_t adims[PARE_MAX_DIMS], bdims[PARE_MAX_DIMS];
    pare_status rc = nn_check_inputs(ctx, 2, 2);

    if (rc == PARE_OK)
        rc = nn_check_output(ctx);
    if (rc != PARE_OK)
        return rc;
    a = ctx->in[0];
    b = ctx->in[1];
    memset(g, 0, sizeof *g);
    if (a->dtype != PARE_F32 && a->dtype != PARE_F64 && a->dtype != PARE_I32 &&
        a->dtype != PARE_I64)
        return nn_bad_dtype(ctx, "MatMul", a->dtype);
    if (b->dtype != a->dtype)
        return pare_op_fail(ctx, PARE_EINPUT, "A has dtype '%s' but B has '%s'",
                            pare_dtype_name(a->dtype), pare_dtype_name(b->dtype));
    if (a->ndim < 1 || b->ndim < 1)
        return pare_op_fail(ctx, PARE_EINPUT, "MatMul operands must have rank 1 or more");
    g->a1d = a->ndim == 1;
    g->b1d = b->ndim == 1;
    g->M = g->a1d ? 1 : a->dims[a->ndim - 2];
    g->K = a->dims[a->ndim - 1];
    g->N = g->b1d ? 1 : b->dims[b->ndim - 1];
    if ((g->b1d ? b->dims[0] : b->dims[b->ndim - 2]) != g->K) {
        char sa_[96], sb_[96];
        return pare_op_fail(ctx, PARE_EINPUT, "inner dims differ: A %s, B %s",
                            pare_shape_format(a->ndim, a->dims, sa_, sizeof sa_),
                            pare_shape_format(b->ndim, b->dims, sb_, sizeof sb_));
    }
    ra = g->a1d ? 0 : a->ndim - 2;
    rb = g->b1d ? 0 : b->ndim - 2;
    na = ra;
    nb_ = rb;
    memcpy(adims, a->dims, (size_t)ra * sizeof(int64_t));
    memcpy(bdims, b->dims, (size_t)rb * sizeof(int64_t));
    if (pare_broadcast_shape(na, adims, nb_, bdims, &g->nb, g->batch) != PARE_OK) {
        char sa_[96], sb_[96];
        return pare_op_fail(ctx, PARE_EINPUT, "batch dims do not broadcast: A %s, B %s",
                            pare_shape_format(a->ndim, a->dims, sa_, sizeof sa_),
                            pare_shape_format(b->ndim, b->dims, sb_, sizeof sb_));
    }
    g->n_batch = pare_shape_numel(g->nb, g->batch);
    if (g->M > INT_MAX || g->N > INT_MAX || g->K > INT_MAX || g->n_batch * g->M > INT_MAX)
        return pare_op_fail(ctx, PARE_EUNSUPPORTED, "matrix dims above %d not supported", INT_MAX);
    g->a_batch = pare_shape_numel(ra, adims);
    g->b_batch = pare_shape_numel(rb, bdims);
    {
        int64_t st_a = 1, st_b = 1;
        for (int d = g->nb - 1; d >= 0; d--) {
            int ia = d - (g->nb - ra), ib = d - (g->nb - rb);
            int64_t da = ia >= 0 ? adims[ia] : 1, db = ib >= 0 ? bdims[ib] : 1;
            g->sa[d] = da == 1 ? 0 : st_a;
            g->sb[d] = db == 1 ? 0 : st_b;
            st_a *= da;
            st_b *= db;
        }
    }
    return PARE_OK;
}

static pare_status matmul_infer(pare_op_ctx *ctx)
{
    matmul_geom g;
    int64_t dims[PARE_MAX_DIMS];
    int nd;
    pare_status rc = matmul_geom_init(ctx, &g);

    if (rc != PARE_OK)
        return rc;
    nd = g.nb;
    if (nd + !g.a1d + !g.b1d > PARE_MAX_DIMS)
        return pare_op_fail(ctx, PARE_EUNSUPPORTED, "result rank exceeds %d", PARE_MAX_DIMS);
    memcpy(dims, g.batch, (size_t)nd * sizeof(int64_t));
    if (!g.a1d)
        dims[nd++] = g.M;
    if (!g.b1d)
        dims[nd++] = g.N;
    nn_set_shape(ctx->out[0], ctx->in[0]->dtype, nd, dims);
    return PARE_OK;
}

#define MATMUL_NAIVE(T)                                                                 \
    static void matmul_naive_##T(int64_t M, int64_t N, int64_t K, const T *restrict a,  \
                                 const T *restrict b, T *restrict y)                    \
    {                                                                                   \
        for (int64_t i = 0; i < M; i++) {                                               \
            T *restrict yr = y + i * N;                                                 \
            for (int64_t j = 0; j < N; j++)                                             \
                yr[j] = 0;                                                              \
            for (int64_t k = 0; k < K; k++) {                                           \
                T av = a[i * K + k];                                                    \
                const T *restrict br = b + k * N;                                       \
                for (int64_t j = 0; j < N; j++)                                         \
                    yr[j] += av * br[j];                                                \
            }                                                                           \
        }                                                                               \
    }
MATMUL_NAIVE(int32_t)
MATMUL_NAIVE(int64_t)

/* One (M, K) x (K, N) product of the given dtype, row-major, contiguous. */
static void matmul_one(pare_dtype dt, int64_t M, int64_t N, int64_t K, const void *a,
                       const void *b, void *y)
{
    if (M == 0 || N == 0)
        return;
    if (K == 0) {
        memset(y, 0, (size_t)(M * N) * pare_dtype_size(dt));
        return;
    }
    switch (dt) {
    case PARE_F32:
        if (M == 1)
            cblas_sgemv(CblasRowMajor, CblasTrans, (int)K, (int)N, 1.0f, b, (int)N, a, 1, 0.0f,
                        y, 1);
        else
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)M, (int)N, (int)K, 1.0f,
                        a, (int)K, b, (int)N, 0.0f, y, (int)N);
        break;
    case PARE_F64:
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)M, (int)N, (int)K, 1.0, a,
                    (int)K, b, (int)N, 0.0, y, (int)N);
        break;
    case PARE_I32:
        matmul_naive_int32_t(M, N, K, a, b, y);
        break;
    default:
        matmul_naive_int64_t(M, N, K, a, b, y);
        break;
    }
}

static pare_status matmul_forward(pare_op_ctx *ctx)
{
    matmul_geom g;
    pare_status rc = matmul_geom_init(ctx, &g);
    const char *a, *b;
    char *y;
    size_t esz;
    int64_t idx[PARE_MAX_DIMS] = {0};
    int64_t oa = 0, ob = 0;

    if (rc != PARE_OK)
        return rc;
    a = ctx->in[0]->data;
    b = ctx->in[1]->data;
    y = ctx->out[0]->data;
    esz = pare_dtype_size(ctx->in[0]->dtype);
    if (g.n_batch == 0)
        return PARE_OK;
    if (g.b_batch == 1 && g.a_batch == g.n_batch) {
        /* B shared by every batch entry: fold A's batch into the rows. */
        matmul_one(ctx->in[0]->dtype, g.n_batch * g.M, g.N, g.K, a, b, y);
        return PARE_OK;
    }
    if (g.M * g.N * g.K <= GEMM_SINGLE_MNK && ctx->n_threads > 1 &&
        (double)g.n_batch * (double)(g.M * g.N * g.K) > 4.0 * NN_PAR_THRESHOLD) {
        /* Many small products (attention): OpenBLAS runs each in the calling
           thread, so the batch entries can go to OpenMP threads. */
        int nt = ctx->n_threads;
#pragma omp parallel for num_threads(nt) schedule(static)
        for (int64_t i = 0; i < g.n_batch; i++) {
            int64_t rem = i, ia = 0, ib = 0;
            for (int d = g.nb - 1; d >= 0; d--) {
                int64_t k = rem % g.batch[d];
                rem /= g.batch[d];
                ia += k * g.sa[d];
                ib += k * g.sb[d];
            }
            matmul_one(ctx->in[0]->dtype, g.M, g.N, g.K, a + (size_t)(ia * g.M * g.K) * esz,
                       b + (size_t)(ib * g.K * g.N) * esz, y + (size_t)(i * g.M * g.N) * esz);
        }
        return PARE_OK;
    }
    for (int64_t i = 0; i < g.n_batch; i++) {
        matmul_one(ctx->in[0]->dtype, g.M, g.N, g.K, a + (size_t)(oa * g.M * g.K) * esz,
                   b + (size_t)(ob * g.K * g.N) * esz, y + (size_t)(i * g.M * g.N) * esz);
        /* next batch index, updating the operand offsets */
        for (int d = g.nb - 1; d >= 0; d--) {
            idx[d]++;
            oa += g.sa[d];
            ob += g.sb[d];
            if (idx[d] < g.batch[d])
                break;
            oa -= g.sa[d] * idx[d];
            ob -= g.sb[d] * idx[d];
            idx[d] = 0;
        }
    }
    return PARE_OK;
}


/* Per broadcast batch entry i (A matrix ia, B matrix ib):
 * dA[ia] += dY_i B[ib]^T, dB[ib] += A[ia]^T dY_i; 1-D operands are the
 * (1, K) / (K, 1) matrices of the forward. float32 only. */
static pare_status matmul_backward(pare_op_ctx *ctx)
{
    matmul_geom g;
    pare_status rc = matmul_geom_init(ctx, &g);
    const float *a, *b, *dy;
    float *da, *db;
    int64_t idx[PARE_MAX_DIMS] = {0};
    int64_t oa = 0, ob = 0;

    if (rc != PARE_OK)
        return rc;
    if (ctx->in[0]->dtype != PARE_F32)
        return nn_bad_dtype(ctx, "MatMul backward", ctx->in[0]->dtype);
    da = ctx->din[0] ? pare_tensor_f32(ctx->din[0]) : NULL;
    db = ctx->din[1] ? pare_tensor_f32(ctx->din[1]) : NULL;
    if (da)
        memset(da, 0, pare_tensor_nbytes(ctx->din[0]));
    if (db)
        memset(db, 0, pare_tensor_nbytes(ctx->din[1]));
    if (!ctx->dout || !ctx->dout[0] || g.n_batch == 0 || g.M == 0 || g.N == 0 || g.K == 0)
        return PARE_OK;
    a = pare_tensor_f32(ctx->in[0]);
    b = pare_tensor_f32(ctx->in[1]);
    dy = pare_tensor_f32(ctx->dout[0]);
    for (int64_t i = 0; i < g.n_batch; i++) {
        const float *dyi = dy + i * g.M * g.N;
        if (da) /* (M, K) += (M, N) (K, N)^T */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)g.M, (int)g.K, (int)g.N,
                        1.0f, dyi, (int)g.N, b + ob * g.K * g.N, (int)g.N, 1.0f,
                        da + oa * g.M * g.K, (int)g.K);
        if (db) /* (K, N) += (M, K)^T (M, N) */
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)g.K, (int)g.N, (int)g.M,
                        1.0f, a + oa * g.M * g.K, (int)g.K, dyi, (int)g.N, 1.0f,
                        db + ob * g.K * g.N, (int)g.N);
        for (int d = g.nb - 1; d >= 0; d--) {
            idx[d]++;
            oa += g.sa[d];
            ob += g.sb[d];
            if (idx[d] < g.batch[d])
                break;
            oa -= g.sa[d] * idx[d];
            ob -= g.sb[d] * idx[d];
            idx[d] = 0;
        }
    }
    return PARE_OK;
}

static double matmul_flops(const pare_op_ctx *ctx)
{
    const pare_tensor *a = ctx->in[0], *y = ctx->out[0];

    if (!a || !y || a->ndim < 1)
        return 0.0;
    return 2.0 * (double)pare_tensor_numel(y) * (double)a->dims[a->ndim - 1];
}

#define GEMM_NOTES "float32 and float64; gradients float32"
#define MATMUL_NOTES "float32, float64 (OpenBLAS); int32, int64; gradients float32"

const pare_op_def ops_gemm[] = {
    { .domain = "", .op_type = "Gemm", .since = 1, .until = 6,
      .infer = gemm_infer, .forward = gemm_forward,
      .backward = gemm_backward, .flops = gemm_flops, .notes = GEMM_NOTES },
    { .domain = "", .op_type = "Gemm", .since = 7, .until = 10,
      .infer = gemm_infer, .forward = gemm_forward,
      .backward = gemm_backward, .flops = gemm_flops, .notes = GEMM_NOTES },
    { .domain = "", .op_type = "Gemm", .since = 11, .until = 0,
      .infer = gemm_infer, .forward = gemm_forward, .backward = gemm_backward, .flops = gemm_flops,
      .notes = GEMM_NOTES "; C optional" },
    { .domain = "", .op_type = "MatMul", .since = 1, .until = 12,
      .infer = matmul_infer, .forward = matmul_forward,
      .backward = matmul_backward, .flops = matmul_flops,
      .notes = MATMUL_NOTES },
    { .domain = "", .op_type = "MatMul", .since = 13, .until = 0,
      .infer = matmul_infer, .forward = matmul_forward,
      .backward = matmul_backward, .flops = matmul_flops,
      .notes = MATMUL_NOTES },
    { .op_type = NULL },
};
