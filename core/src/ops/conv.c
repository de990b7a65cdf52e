/* Conv and ConvTranspose, float32, 1-D / 2-D / 3-D.
 *
 * Conv: x (N, C, *in) with w (M, C/G, *k) and optional b (M) -> y (N, M, *out).
 * Work is cut into items (image x output rows or pixels) run on OpenMP
 * threads. Every GEMM an item issues has M*N*K <= CONV_TILE_MNK, which
 * OpenBLAS computes in the calling thread (its default
 * GEMM_MULTITHREAD_THRESHOLD; with its small-matrix kernels, without packing),
 * so items never wake OpenBLAS's own threads. Strategies, first that applies:
 * - CONV_DEPTHWISE, groups of one input channel: direct kernel. In 1-D / 2-D,
 *   on the input channel's padded phase planes (see CONV_PLANES), 32 outputs
 *   per register block accumulated over all taps; 3-D: per-row passes.
 * - CONV_PLANES, 1-D / 2-D: the padded input is split into stride phases so
 *   that every kernel tap reads one contiguous range per channel (plane rows
 *   Wq = OW + a few columns long). nn_gemm_taps (nn_gemm.h) sums every tap
 *   in registers straight from the planes, with no im2col, and writes y once,
 *   compacted from Wq-long rows and with the bias: with 16+ channels per
 *   group as one K = C/G product per tap, with fewer as one b row per
 *   (channel, tap). Kernels with more than CONV_FUSED_TAPS such rows use
 *   OpenBLAS instead: one GEMM per tap accumulating, or the taps' ranges
 *   copied into a col (K = C/G * taps) for one GEMM, then compacted.
 * - CONV_TILES, 1x1 stride-1 unpadded convs (GEMM reads x directly) and 3-D:
 *   im2col of a pixel tile into a per-thread buffer, GEMM straight into y.
 * - CONV_CHUNKS, layers too deep for such GEMMs: multi-image im2col chunks and
 *   one large GEMM per group on the calling thread (OpenBLAS threads it),
 *   scattered back to NCHW with the bias.
 * The tiling depends on shapes only, never on the thread count; the scratch
 * holds one buffer set per thread that infer saw, and forward uses at most
 * that many threads.
 * ConvTranspose: per image and group, col (M/G*taps, in_px) = w_g^T x_g by
 * cblas_sgemm, then col2im adds col into y, which starts as the bias.
 *
 * All spatial ranks are held as 3 dims (D, H, W) with unused leading dims 1
 * (see nn_window), so one implementation covers 1-D, 2-D and 3-D. */
#include <cblas.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "ops/conv_backward.h"
#include "ops/families.h"
#include "ops/nn_gemm.h"
#include "ops/nn_util.h"

/* Zeros after the last phase plane: row kernels read up to DW_BLOCK - 1
 * floats, tap GEMMs up to qw_max floats past a plane's end. */
#define PLANE_SLACK 32
/* Outputs per register block of the depthwise row kernel (<= PLANE_SLACK). */
#define DW_BLOCK 32
/* Most kernel taps of the blocked depthwise kernel. */
#define DW_MAX_TAPS 128

/* Work items a conv is cut into at least (image x row or pixel tiles), so
 * batch-1 convs still spread over threads. The tiling never depends on the
 * thread count: forward may run with fewer threads than infer saw. */
#define CONV_MIN_ITEMS 4

/* Largest M*N*K of one tile GEMM (see above). */
#define CONV_TILE_MNK 262144
/* Most b rows (taps, or channels x taps when folded) of one nn_gemm_taps
 * call in CONV_PLANES; wider kernels use OpenBLAS. */
#define CONV_FUSED_TAPS 128
/* Most floats of one tile's im2col buffer (128 KB). */
#define CONV_TILE_COL_FLOATS 32768
/* Chunk mode: columns one GEMM aims for and the col buffer's byte limit. */
#define CONV_COLS_TARGET 3136
#define CONV_COL_BYTES_MAX ((int64_t)8 << 20)

enum conv_mode { CONV_DEPTHWISE, CONV_PLANES, CONV_TILES, CONV_CHUNKS };

typedef struct conv_geom {
    nn_window w;
    int64_t N, C, M, G;      /* batch, input channels, output channels, groups */
    int64_t Cg, Mg;          /* channels per group */
    int64_t taps;            /* kernel elements per channel */
    int64_t K;               /* GEMM depth: Cg * taps */
    int64_t in_px, out_px;   /* spatial elements per plane */
    int pointwise;           /* 1x1, stride 1, no padding: x is its own col */
    enum conv_mode mode;
    /* CONV_TILES (mt, n_mblocks, slot_floats, slots also CONV_PLANES / DEPTHWISE) */
    int64_t tw, n_tiles;     /* pixels per tile, tiles per image */
    int64_t mt, n_mblocks;   /* output channels per GEMM, blocks per group */
    size_t slot_floats;      /* buffers per thread */
    int slots;               /* per-thread slots in the scratch: ctx->n_threads at
                                plan time, what scratch_bytes holds at run time */
    /* CONV_PLANES */
    int shift;               /* one GEMM per tap (K = Cg) instead of taps folded into K */
    int fused;               /* nn_gemm_taps over all taps, straight into y */
    int dw_planes;           /* CONV_DEPTHWISE: blocked kernel on phase planes */
    int64_t qh_max, qw_max;  /* largest tap offset in plane rows / columns */
    int64_t Wq;              /* plane row length: OW + qw_max */
    int64_t R, n_rtiles;     /* output rows per tile, tiles per image */
    size_t plane_floats;     /* per thread: phase planes of one row tile */
    size_t pcol_floats;      /* per thread: folded taps (shift = 0) */
    size_t acc_floats;       /* per thread: GEMM output with Wq-long rows */
    size_t wtap_floats;      /* shared: weights regrouped by tap (shift = 1) */
    /* CONV_CHUNKS */
    int64_t chunk;           /* images per im2col + GEMM */
    size_t col_floats;       /* im2col buffer */
    size_t tmp_floats;       /* GEMM output of a multi-image chunk */
} conv_geom;

static size_t round16(size_t n)
{
    return (n + 15) & ~(size_t)15;
}

static int64_t ceil_div(int64_t a, int64_t b)
{
    return (a + b - 1) / b;
}

static pare_status check_f32_inputs(pare_op_ctx *ctx)
{
    const char *names[3] = {"X", "W", "B"};

    if (ctx->in[0]->dtype != PARE_F32)
        return nn_bad_dtype(ctx, ctx->node->op_type, ctx->in[0]->dtype);
    for (int i = 1; i < ctx->n_in && i < 3; i++)
        if (ctx->in[i] && ctx->in[i]->dtype != PARE_F32)
            return pare_op_fail(ctx, PARE_EINPUT, "input '%s' has dtype '%s', expected 'float32'",
                                names[i], pare_dtype_name(ctx->in[i]->dtype));
    return PARE_OK;
}

/* kernel_shape, when given, must agree with the weight's spatial dims. */
static pare_status check_kernel_shape(pare_op_ctx *ctx, const pare_tensor *wt, int nsp)
{
    int n = 0;
    const int64_t *ks = pare_node_attr_ints(ctx->node, "kernel_shape", &n);

    if (!ks)
        return PARE_OK;
    if (n != nsp)
        return pare_op_fail(ctx, PARE_EINPUT, "attribute 'kernel_shape' has %d values, expected %d",
                            n, nsp);
    for (int i = 0; i < nsp; i++)
        if (ks[i] != wt->dims[2 + i])
            return pare_op_fail(ctx, PARE_EINPUT,
                                "attribute 'kernel_shape' is %lld in spatial dim %d but the weight "
                                "has %lld", (long long)ks[i], i, (long long)wt->dims[2 + i]);
    return PARE_OK;
}

/* Tile geometry: output channel blocks and pixel tiles with
 * mt * K * tw <= CONV_TILE_MNK, preferring whole groups (mt = Mg), tiles of at
 * least 16 pixels (a multiple of 16 when the image has more) and even splits.
 * Returns 0 when K is too deep for any such tile. */
static int plan_tiles(conv_geom *g)
{
    int64_t min_tw = g->out_px < 16 ? g->out_px : 16;
    int64_t tw_max, mt_max;

    if (g->K * min_tw > CONV_TILE_MNK)
        return 0;
    mt_max = g->Mg;
    tw_max = CONV_TILE_MNK / (mt_max * g->K);
    if (tw_max < min_tw) {
        tw_max = min_tw;
        mt_max = CONV_TILE_MNK / (g->K * tw_max);
    }
    if (!g->pointwise && tw_max * g->K > CONV_TILE_COL_FLOATS)
        tw_max = CONV_TILE_COL_FLOATS / g->K > min_tw ? CONV_TILE_COL_FLOATS / g->K : min_tw;
    g->n_mblocks = ceil_div(g->Mg, mt_max);
    g->mt = ceil_div(g->Mg, g->n_mblocks);
    g->n_tiles = ceil_div(g->out_px, tw_max);
    if (g->N * g->n_tiles < CONV_MIN_ITEMS) /* work for several threads */
        g->n_tiles = ceil_div(CONV_MIN_ITEMS, g->N) < g->out_px ? ceil_div(CONV_MIN_ITEMS, g->N)
                                                                : g->out_px;
    g->tw = ceil_div(g->out_px, g->n_tiles);
    if (g->tw < g->out_px && g->tw % 16 && g->tw + 16 - g->tw % 16 <= tw_max)
        g->tw += 16 - g->tw % 16;
    g->n_tiles = ceil_div(g->out_px, g->tw);
    g->slot_floats = g->pointwise ? 0 : round16((size_t)(g->K * g->tw));
    return 1;
}

/* Plane rows and offsets for 2-D and 1-D windows; 0 for 3-D. */
static int plane_geometry(conv_geom *g)
{
    const nn_window *w = &g->w;

    if (w->k[0] != 1 || w->in[0] != 1 || w->out[0] != 1)
        return 0;
    g->qh_max = (w->k[1] - 1) * w->d[1] / w->s[1];
    g->qw_max = (w->k[2] - 1) * w->d[2] / w->s[2];
    g->Wq = w->out[2] + g->qw_max;
    return 1;
}

/* Depthwise on planes: one input channel's phase planes (all rows) per
 * work item. */
static void plan_depthwise(conv_geom *g)
{
    int64_t phases = g->w.s[1] * g->w.s[2];

    g->dw_planes = g->taps <= DW_MAX_TAPS && plane_geometry(g);
    if (!g->dw_planes)
        return;
    g->R = g->w.out[1];
    g->slot_floats = round16((size_t)(phases * (g->R + g->qh_max) * g->Wq + g->Wq + PLANE_SLACK));
}

/* Planes (2-D and 1-D): the padded input is split into stride phases,
 * P[a][b][c][i][j] = x[c][i * sh + a - pad_h][j * sw + b - pad_w] (0 outside),
 * so that tap (kh, kw) of every output pixel (oh, ow) reads P[a][b][c] at
 * (oh + qh, ow + qw), a = kh*dh % sh, qh = kh*dh / sh (same for w). With plane
 * rows Wq = OW + qw_max long, a tap's operand for a block of output rows is
 * one contiguous range per channel: it feeds a GEMM directly (shift: K = Cg,
 * one GEMM per tap, accumulating) or is copied whole into a folded col
 * (K = Cg * taps, one GEMM). Outputs come back with Wq-long rows and are
 * compacted into y with the bias. Returns 0 for 3-D or too-deep layers. */
static int plan_planes(conv_geom *g)
{
    const nn_window *w = &g->w;
    int64_t kg, mt, oh = w->out[1], phases = w->s[1] * w->s[2];

    if (!plane_geometry(g))
        return 0;
    g->shift = g->Cg >= 16 && g->taps > 1;
    kg = g->shift ? g->Cg : g->K;
    mt = g->Mg;
    if (mt * kg * g->Wq > CONV_TILE_MNK) {
        mt = CONV_TILE_MNK / (kg * g->Wq);
        if (mt < 1)
            return 0;
    }
    g->n_mblocks = ceil_div(g->Mg, mt);
    g->mt = ceil_div(g->Mg, g->n_mblocks);
    g->R = CONV_TILE_MNK / (g->mt * kg * g->Wq);
    if (g->R < 1)
        g->R = 1;
    if (g->R > oh)
        g->R = oh;
    g->n_rtiles = ceil_div(oh, g->R);
    if (g->N * g->n_rtiles < CONV_MIN_ITEMS) /* work for several threads */
        g->n_rtiles = ceil_div(CONV_MIN_ITEMS, g->N) < oh ? ceil_div(CONV_MIN_ITEMS, g->N) : oh;
    g->R = ceil_div(oh, g->n_rtiles);
    g->n_rtiles = ceil_div(oh, g->R);
    /* + Wq: a tap's last junk columns read up to qw_max past its block */
    g->plane_floats = round16((size_t)(phases * g->C * (g->R + g->qh_max) * g->Wq + g->Wq +
                                       PLANE_SLACK));
    g->fused = (g->shift || g->taps == 1 ? g->taps : g->K) <= CONV_FUSED_TAPS;
    g->pcol_floats = g->shift || g->fused ? 0 : round16((size_t)(g->K * g->R * g->Wq));
    g->acc_floats = g->fused ? 0 : round16((size_t)(g->Mg * g->R * g->Wq));
    g->wtap_floats = g->shift ? round16((size_t)(g->M * g->K)) : 0;
    g->slot_floats = g->plane_floats + g->pcol_floats + g->acc_floats;
    return 1;
}

static void plan_chunks(conv_geom *g)
{
    int64_t col_per_image = g->C * g->taps * g->out_px * (int64_t)sizeof(float);
    int64_t chunk = ceil_div(CONV_COLS_TARGET, g->out_px);

    if (chunk * col_per_image > CONV_COL_BYTES_MAX)
        chunk = CONV_COL_BYTES_MAX / col_per_image;
    if (chunk < 1)
        chunk = 1;
    if (chunk > g->N)
        chunk = g->N;
    g->chunk = chunk;
    g->col_floats = chunk == 1 && g->pointwise ? 0 : round16((size_t)(g->C * g->taps * chunk * g->out_px));
    g->tmp_floats = chunk > 1 ? (size_t)(g->M * chunk * g->out_px) : 0;
}

static size_t conv_scratch_floats(const conv_geom *g)
{
    switch (g->mode) {
    case CONV_PLANES:
        return g->wtap_floats + g->slot_floats * (size_t)g->slots;
    case CONV_TILES:
        return g->slot_floats * (size_t)g->slots;
    case CONV_DEPTHWISE:
        return g->dw_planes ? g->slot_floats * (size_t)g->slots : 0;
    case CONV_CHUNKS:
        return g->col_floats + g->tmp_floats;
    }
    return 0;
}

static pare_status conv_geom_init(pare_op_ctx *ctx, conv_geom *g)
{
    const pare_tensor *x, *wt, *b;
    int64_t group = pare_node_attr_int(ctx->node, "group", 1);
    pare_status rc = nn_check_inputs(ctx, 2, 3);

    if (rc == PARE_OK)
        rc = nn_check_output(ctx);
    if (rc == PARE_OK)
        rc = check_f32_inputs(ctx);
    if (rc != PARE_OK)
        return rc;
    x = ctx->in[0];
    wt = ctx->in[1];
    b = ctx->n_in > 2 ? ctx->in[2] : NULL;
    memset(g, 0, sizeof *g);
    if (x->ndim < 3)
        return pare_op_fail(ctx, PARE_EINPUT, "input 'X' must have rank 3 or more, got %d",
                            x->ndim);
    if (wt->ndim != x->ndim)
        return pare_op_fail(ctx, PARE_EINPUT, "weight rank %d differs from input rank %d",
                            wt->ndim, x->ndim);
    if (group < 1)
        return pare_op_fail(ctx, PARE_EINPUT, "attribute 'group' is %lld, must be >= 1",
                            (long long)group);
    g->N = x->dims[0];
    g->C = x->dims[1];
    g->M = wt->dims[0];
    g->G = group;
    if (g->C % group || wt->dims[1] * group != g->C)
        return pare_op_fail(ctx, PARE_EINPUT,
                            "input has %lld channels but the weight expects %lld x group %lld",
                            (long long)g->C, (long long)wt->dims[1], (long long)group);
    if (g->M % group)
        return pare_op_fail(ctx, PARE_EINPUT, "%lld output channels are not divisible by group %lld",
                            (long long)g->M, (long long)group);
    if (b && (b->ndim != 1 || b->dims[0] != g->M))
        return pare_op_fail(ctx, PARE_EINPUT, "bias must have shape [%lld]", (long long)g->M);
    rc = check_kernel_shape(ctx, wt, x->ndim - 2);
    if (rc == PARE_OK)
        rc = nn_window_init(ctx, x, wt->dims + 2, 0, &g->w);
    if (rc != PARE_OK)
        return rc;
    g->Cg = g->C / group;
    g->Mg = g->M / group;
    g->taps = nn_window_k_numel(&g->w);
    g->K = g->Cg * g->taps;
    g->in_px = nn_window_in_numel(&g->w);
    g->out_px = nn_window_out_numel(&g->w);
    g->pointwise = g->taps == 1;
    for (int i = 0; i < NN_MAX_SPATIAL; i++)
        if (g->w.s[i] != 1 || g->w.pb[i] || g->w.pe[i])
            g->pointwise = 0;
    if (g->Cg == 1 && g->G > 1) {
        g->mode = CONV_DEPTHWISE;
        plan_depthwise(g);
    }
    else if (g->N > 0 && g->M > 0 && g->K > 0 && !g->pointwise && plan_planes(g))
        g->mode = CONV_PLANES;
    else if (g->N == 0 || g->M == 0 || g->K == 0 || plan_tiles(g))
        g->mode = CONV_TILES;
    else {
        g->mode = CONV_CHUNKS;
        plan_chunks(g);
    }
    g->slots = ctx->n_threads > 1 ? ctx->n_threads : 1;
    return PARE_OK;
}

static pare_status conv_infer(pare_op_ctx *ctx)
{
    conv_geom g;
    int64_t dims[PARE_MAX_DIMS];
    pare_status rc = conv_geom_init(ctx, &g);

    if (rc != PARE_OK)
        return rc;
    dims[0] = g.N;
    dims[1] = g.M;
    for (int i = 0; i < g.w.nsp; i++)
        dims[2 + i] = g.w.out[NN_MAX_SPATIAL - g.w.nsp + i];
    nn_set_shape(ctx->out[0], PARE_F32, ctx->in[0]->ndim, dims);
    ctx->scratch_bytes = conv_scratch_floats(&g) * sizeof(float);
    return PARE_OK;
}

/* im2col of output pixels [p0, p0 + n) of one image: rows (c, kd, kh, kw) for
 * `channels` channels of x (each in_px long), row stride ld. */
static void im2col_span(const nn_window *w, const float *x, int64_t in_px, int64_t channels,
                        int64_t p0, int64_t n, float *restrict col, int64_t ld)
{
    int64_t o1 = w->out[1], o2 = w->out[2], plane = o1 * o2;
    int64_t od0 = p0 / plane, oh0 = p0 % plane / o2, ow0 = p0 % o2;
    int64_t row = 0;

    for (int64_t c = 0; c < channels; c++) {
        const float *xc = x + c * in_px;
        for (int64_t kd = 0; kd < w->k[0]; kd++)
        for (int64_t kh = 0; kh < w->k[1]; kh++)
        for (int64_t kw = 0; kw < w->k[2]; kw++, row++) {
            float *restrict dst = col + row * ld;
            int64_t offw = kw * w->d[2] - w->pb[2];
            int64_t od = od0, oh = oh0, ow = ow0, left = n, lo, hi;
            nn_valid_range(o2, w->in[2], w->s[2], w->pb[2], kw * w->d[2], &lo, &hi);
            while (left > 0) {
                int64_t len = o2 - ow < left ? o2 - ow : left, end = ow + len;
                int64_t id = od * w->s[0] - w->pb[0] + kd * w->d[0];
                int64_t ih = oh * w->s[1] - w->pb[1] + kh * w->d[1];
                if (id < 0 || id >= w->in[0] || ih < 0 || ih >= w->in[1]) {
                    memset(dst, 0, (size_t)len * sizeof(float));
                } else {
                    const float *src = xc + (id * w->in[1] + ih) * w->in[2];
                    int64_t a = lo > ow ? lo : ow, e = hi < end ? hi : end;
                    if (e < a)
                        e = a;
                    if (a > ow)
                        memset(dst, 0, (size_t)(a - ow) * sizeof(float));
                    if (w->s[2] == 1) {
                        if (e > a)
                            memcpy(dst + (a - ow), src + a + offw, (size_t)(e - a) * sizeof(float));
                    } else {
                        int64_t s2 = w->s[2];
                        for (int64_t q = a; q < e; q++)
                            dst[q - ow] = src[q * s2 + offw];
                    }
                    if (end > e)
                        memset(dst + (e - ow), 0, (size_t)(end - e) * sizeof(float));
                }
                dst += len;
                left -= len;
                ow = 0;
                if (++oh == o1) {
                    oh = 0;
                    od++;
                }
            }
        }
    }
}

/* One output plane of a one-input-channel group: bias, then per output row
 * and kernel tap one multiply-add pass over the row's valid range. */
static NN_CLONES void dw_plane(const nn_window *w, const float *restrict xp,
                               const float *restrict wp, float b0, float *restrict yp)
{
    int64_t kw_n = w->k[2], s2 = w->s[2];
    int64_t lo[32], hi[32];
    int small = kw_n <= 32;

    if (small)
        for (int64_t kw = 0; kw < kw_n; kw++)
            nn_valid_range(w->out[2], w->in[2], s2, w->pb[2], kw * w->d[2], &lo[kw], &hi[kw]);
    for (int64_t od = 0; od < w->out[0]; od++)
    for (int64_t oh = 0; oh < w->out[1]; oh++) {
        float *restrict yr = yp + (od * w->out[1] + oh) * w->out[2];
        for (int64_t ow = 0; ow < w->out[2]; ow++)
            yr[ow] = b0;
        for (int64_t kd = 0; kd < w->k[0]; kd++) {
            int64_t id = od * w->s[0] - w->pb[0] + kd * w->d[0];
            if (id < 0 || id >= w->in[0])
                continue;
            for (int64_t kh = 0; kh < w->k[1]; kh++) {
                int64_t ih = oh * w->s[1] - w->pb[1] + kh * w->d[1];
                const float *xr;
                if (ih < 0 || ih >= w->in[1])
                    continue;
                xr = xp + (id * w->in[1] + ih) * w->in[2];
                for (int64_t kw = 0; kw < kw_n; kw++) {
                    float wv = wp[(kd * w->k[1] + kh) * kw_n + kw];
                    int64_t off = kw * w->d[2] - w->pb[2], a, e;
                    const float *restrict xs;
                    if (small) {
                        a = lo[kw];
                        e = hi[kw];
                    } else {
                        nn_valid_range(w->out[2], w->in[2], s2, w->pb[2], kw * w->d[2], &a, &e);
                    }
                    if (e <= a)
                        continue;
                    xs = xr + a * s2 + off; /* >= xr by the valid range */
                    if (s2 == 1)
                        for (int64_t ow = 0; ow < e - a; ow++)
                            yr[a + ow] += wv * xs[ow];
                    else if (s2 == 2)
                        for (int64_t ow = 0; ow < e - a; ow++)
                            yr[a + ow] += wv * xs[2 * ow];
                    else
                        for (int64_t ow = 0; ow < e - a; ow++)
                            yr[a + ow] += wv * xs[ow * s2];
                }
            }
        }
    }
}

/* Direct kernel for groups of one input channel (depthwise, with or
 * without a multiplier): output channel m reads
 * input channel m / Mg. */
static void conv_depthwise(const conv_geom *g, const float *restrict x, const float *restrict wt,
                           const float *restrict bias, float *restrict y, int n_threads)
{
    int64_t planes = g->N * g->M;
    int nt = n_threads > 1 && planes > 1 && planes * g->out_px * g->taps > NN_PAR_THRESHOLD
                 ? n_threads : 1;

#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
    for (int64_t p = 0; p < planes; p++) {
        int64_t n = p / g->M, m = p % g->M;
        dw_plane(&g->w, x + (n * g->C + m / g->Mg) * g->in_px, wt + m * g->taps,
                 bias ? bias[m] : 0.0f, y + p * g->out_px);
    }
}

/* Tiles: work item = (image, pixel tile); per group, im2col into this
 * thread's slot, then GEMMs of mt output channels straight into y. */
static void conv_tiles(const conv_geom *g, const float *x, const float *wt, const float *bias,
                       float *y, float *scratch, int n_threads)
{
    int64_t items = g->N * g->n_tiles;
    double work = 2.0 * (double)g->N * (double)g->M * (double)g->out_px * (double)g->K;
    int nt = n_threads > 1 && items > 1 && work > 4.0 * NN_PAR_THRESHOLD ? n_threads : 1;

    if (nt > g->slots)
        nt = g->slots;
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        int tid = 0;
#ifdef _OPENMP
        tid = omp_get_thread_num();
#endif
        float *col = scratch + (size_t)tid * g->slot_floats;
#pragma omp for schedule(dynamic, 1)
        for (int64_t it = 0; it < items; it++) {
            int64_t n = it / g->n_tiles, p0 = it % g->n_tiles * g->tw;
            int64_t tw = g->out_px - p0 < g->tw ? g->out_px - p0 : g->tw;
            for (int64_t gi = 0; gi < g->G; gi++) {
                const float *xg = x + (n * g->C + gi * g->Cg) * g->in_px;
                const float *b;
                int64_t ldb;
                float *yg = y + (n * g->M + gi * g->Mg) * g->out_px + p0;
                if (g->pointwise) {
                    b = xg + p0;
                    ldb = g->in_px;
                } else {
                    im2col_span(&g->w, xg, g->in_px, g->Cg, p0, tw, col, tw);
                    b = col;
                    ldb = tw;
                }
                for (int64_t m0 = 0; m0 < g->Mg; m0 += g->mt) {
                    int64_t mt = g->Mg - m0 < g->mt ? g->Mg - m0 : g->mt;
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)mt, (int)tw,
                                (int)g->K, 1.0f, wt + (gi * g->Mg + m0) * g->K, (int)g->K, b,
                                (int)ldb, 0.0f, yg + m0 * g->out_px, (int)g->out_px);
                }
                if (bias)
                    for (int64_t m = 0; m < g->Mg; m++) {
                        float *restrict r = yg + m * g->out_px;
                        float b0 = bias[gi * g->Mg + m];
                        for (int64_t p = 0; p < tw; p++)
                            r[p] += b0;
                    }
            }
        }
    }
}

/* dst[j] = src[j * s]; the stride-2 loop has a constant stride so it
 * vectorizes (load and shuffle). */
static NN_CLONES void gather_strided(float *restrict dst, const float *restrict src, int64_t n,
                                     int64_t s)
{
    if (s == 2)
        for (int64_t j = 0; j < n; j++)
            dst[j] = src[2 * j];
    else
        for (int64_t j = 0; j < n; j++)
            dst[j] = src[j * s];
}

/* y rows (r of them, ow long, stride ow) = acc rows (stride wq) + b. */
static NN_CLONES void compact_rows(float *restrict y, const float *restrict acc, int64_t r,
                                   int64_t ow, int64_t wq, float b)
{
    for (int64_t i = 0; i < r; i++)
        for (int64_t j = 0; j < ow; j++)
            y[i * ow + j] = acc[i * wq + j] + b;
}

/* Phase planes of output rows [oh0, oh0 + r) of one image for channels
 * [c0, c0 + nc), rq = r + qh_max rows each; only the phases some tap reads
 * are filled. Wq + PLANE_SLACK zeros follow the last plane. */
static void build_planes(const conv_geom *g, const float *xn, int64_t c0, int64_t nc, int64_t oh0,
                         int64_t rq, float *restrict planes)
{
    const nn_window *w = &g->w;
    int64_t sh = w->s[1], sw = w->s[2], Wq = g->Wq, blk = rq * Wq;

    for (int64_t a = 0; a < sh; a++)
    for (int64_t b = 0; b < sw; b++) {
        int used_a = 0, used_b = 0;
        for (int64_t kh = 0; kh < w->k[1]; kh++)
            used_a |= kh * w->d[1] % sh == a;
        for (int64_t kw = 0; kw < w->k[2]; kw++)
            used_b |= kw * w->d[2] % sw == b;
        if (!used_a || !used_b)
            continue;
        {
            int64_t lo, hi, off = b - w->pb[2];
            nn_valid_range(Wq, w->in[2], sw, w->pb[2], b, &lo, &hi);
            for (int64_t c = 0; c < nc; c++) {
                const float *xc = xn + (c0 + c) * g->in_px;
                float *pc = planes + ((a * sw + b) * nc + c) * blk;
                for (int64_t i = 0; i < rq; i++) {
                    float *restrict dst = pc + i * Wq;
                    int64_t ih = (oh0 + i) * sh + a - w->pb[1];
                    const float *restrict src;
                    if (ih < 0 || ih >= w->in[1]) {
                        memset(dst, 0, (size_t)Wq * sizeof(float));
                        continue;
                    }
                    src = xc + ih * w->in[2]; /* column j reads src[j * sw + off] */
                    for (int64_t j = 0; j < lo; j++)
                        dst[j] = 0.0f;
                    if (sw == 1) {
                        if (hi > lo)
                            memcpy(dst + lo, src + lo + off, (size_t)(hi - lo) * sizeof(float));
                    } else {
                        gather_strided(dst + lo, src + lo * sw + off, hi - lo, sw);
                    }
                    for (int64_t j = hi; j < Wq; j++)
                        dst[j] = 0.0f;
                }
            }
        }
    }
    memset(planes + sh * sw * nc * blk, 0, (size_t)(Wq + PLANE_SLACK) * sizeof(float));
}

/* Start of channel c's range for kernel tap t in the phase planes (rows of
 * blk floats per channel). */
static const float *plane_tap(const conv_geom *g, const float *planes, int64_t blk, int64_t c,
                              int64_t t)
{
    const nn_window *w = &g->w;
    int64_t sh = w->s[1], sw = w->s[2];
    int64_t kh = t / w->k[2], kw = t % w->k[2];
    int64_t a = kh * w->d[1] % sh, qh = kh * w->d[1] / sh;
    int64_t b = kw * w->d[2] % sw, qw = kw * w->d[2] / sw;

    return planes + ((a * sw + b) * g->C + c) * blk + qh * g->Wq + qw;
}

static void conv_planes(const conv_geom *g, const float *x, const float *wt, const float *bias,
                        float *y, float *scratch, int n_threads)
{
    const nn_window *w = &g->w;
    int64_t items = g->N * g->n_rtiles, OH = w->out[1], OW = w->out[2];
    int64_t Wq = g->Wq;
    double work = 2.0 * (double)g->N * (double)g->M * (double)g->out_px * (double)g->K;
    int nt = n_threads > 1 && items > 1 && work > 4.0 * NN_PAR_THRESHOLD ? n_threads : 1;
    float *wtap = scratch, *slots = scratch + g->wtap_floats;
    int fused = g->fused;

    if (nt > g->slots)
        nt = g->slots;
    if (g->shift) /* wtap[t][m][c] = w[m][c][t] */
        for (int64_t m = 0; m < g->M; m++)
            for (int64_t c = 0; c < g->Cg; c++)
                for (int64_t t = 0; t < g->taps; t++)
                    wtap[(t * g->M + m) * g->Cg + c] = wt[(m * g->Cg + c) * g->taps + t];
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        int tid = 0;
#ifdef _OPENMP
        tid = omp_get_thread_num();
#endif
        float *planes = slots + (size_t)tid * g->slot_floats;
        float *pcol = planes + g->plane_floats;
        float *acc = pcol + g->pcol_floats;
        const float *tap[CONV_FUSED_TAPS];
#pragma omp for schedule(dynamic, 1)
        for (int64_t it = 0; it < items; it++) {
            int64_t n = it / g->n_rtiles, oh0 = it % g->n_rtiles * g->R;
            int64_t r = OH - oh0 < g->R ? OH - oh0 : g->R;
            int64_t rq = r + g->qh_max, blk = rq * Wq, cols = r * Wq;
            build_planes(g, x + n * g->C * g->in_px, 0, g->C, oh0, rq, planes);
            for (int64_t gi = 0; gi < g->G; gi++) {
                const float *wg = wt + gi * g->Mg * g->K;
                if (g->shift || g->taps == 1) {
                    /* per tap: K = Cg rows of the planes, blk apart */
                    for (int64_t t = 0; t < g->taps && fused; t++)
                        tap[t] = plane_tap(g, planes, blk, gi * g->Cg, t);
                } else if (fused) {
                    /* taps folded: one b row per (channel, tap), k = 1 */
                    for (int64_t c = 0; c < g->Cg; c++)
                        for (int64_t t = 0; t < g->taps; t++)
                            tap[c * g->taps + t] = plane_tap(g, planes, blk, gi * g->Cg + c, t);
                } else {
                    for (int64_t c = 0, row = 0; c < g->Cg; c++)
                        for (int64_t t = 0; t < g->taps; t++, row++)
                            memcpy(pcol + row * cols, plane_tap(g, planes, blk, gi * g->Cg + c, t),
                                   (size_t)cols * sizeof(float));
                }
                for (int64_t m0 = 0; m0 < g->Mg; m0 += g->mt) {
                    int64_t mt = g->Mg - m0 < g->mt ? g->Mg - m0 : g->mt;
                    float *am = acc + m0 * cols;
                    /* Wq-long rows of which OW are real go compacted into y */
                    float *ym = y + (n * g->M + gi * g->Mg + m0) * g->out_px + oh0 * OW;
                    nn_gemm_out o = {Wq, OW, bias ? bias + gi * g->Mg + m0 : NULL};
                    if (fused && g->shift) /* wtap[t][m][c] */
                        nn_gemm_taps(mt, cols, g->Cg, g->taps, wtap + (gi * g->Mg + m0) * g->Cg,
                                     g->Cg, g->M * g->Cg, tap, blk, ym, g->out_px, &o);
                    else if (fused && g->taps == 1)
                        nn_gemm_taps(mt, cols, g->Cg, 1, wg + m0 * g->K, g->K, 0, tap, blk, ym,
                                     g->out_px, &o);
                    else if (fused) /* w[m][c][t]: tap (c, t) is column c * taps + t */
                        nn_gemm_taps(mt, cols, 1, g->K, wg + m0 * g->K, g->K, 1, tap, 0, ym,
                                     g->out_px, &o);
                    else if (!g->shift)
                        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)mt, (int)cols,
                                    (int)g->K, 1.0f, wg + m0 * g->K, (int)g->K, pcol, (int)cols,
                                    0.0f, am, (int)cols);
                    else
                        for (int64_t t = 0; t < g->taps; t++)
                            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)mt,
                                        (int)cols, (int)g->Cg, 1.0f,
                                        wtap + (t * g->M + gi * g->Mg + m0) * g->Cg, (int)g->Cg,
                                        plane_tap(g, planes, blk, gi * g->Cg, t), (int)blk,
                                        t ? 1.0f : 0.0f, am, (int)cols);
                }
                for (int64_t m = 0; m < g->Mg && !fused; m++)
                    compact_rows(y + (n * g->M + gi * g->Mg + m) * g->out_px + oh0 * OW,
                                 acc + m * cols, r, OW, Wq, bias ? bias[gi * g->Mg + m] : 0.0f);
            }
        }
    }
}

/* rows x OW outputs (row stride OW) = b + sum_t wv[t] * tap[t][row * wq + j],
 * DW_BLOCK = 32 outputs at a time in four independent 8-float vector
 * accumulators (gcc vector extension: ymm in the AVX2 clone, pairs of xmm
 * otherwise); reads up to 31 floats past OW. */
typedef float nn_v8 __attribute__((vector_size(32)));

static NN_CLONES void dw_rows(const float *const *tap, const float *wv, int64_t taps,
                              int64_t rows, int64_t wq, int64_t OW, float b, float *restrict y)
{
    nn_v8 bias = {b, b, b, b, b, b, b, b};

    for (int64_t i = 0; i < rows; i++) {
        float *restrict yr = y + i * OW;
        for (int64_t j0 = 0; j0 < OW; j0 += DW_BLOCK) {
            nn_v8 a0 = bias, a1 = bias, a2 = bias, a3 = bias, x0, x1, x2, x3;
            float out[DW_BLOCK];
            int64_t n = OW - j0 < DW_BLOCK ? OW - j0 : DW_BLOCK;
            for (int64_t t = 0; t < taps; t++) {
                const float *src = tap[t] + i * wq + j0;
                float wt = wv[t];
                nn_v8 w8 = {wt, wt, wt, wt, wt, wt, wt, wt};
                memcpy(&x0, src, sizeof x0);
                memcpy(&x1, src + 8, sizeof x1);
                memcpy(&x2, src + 16, sizeof x2);
                memcpy(&x3, src + 24, sizeof x3);
                a0 += w8 * x0;
                a1 += w8 * x1;
                a2 += w8 * x2;
                a3 += w8 * x3;
            }
            memcpy(out, &a0, sizeof a0);
            memcpy(out + 8, &a1, sizeof a1);
            memcpy(out + 16, &a2, sizeof a2);
            memcpy(out + 24, &a3, sizeof a3);
            memcpy(yr + j0, out, (size_t)n * sizeof(float));
        }
    }
}

static void conv_depthwise_planes(const conv_geom *g, const float *x, const float *wt,
                                  const float *bias, float *y, float *scratch, int n_threads)
{
    const nn_window *w = &g->w;
    int64_t items = g->N * g->C, OH = w->out[1], OW = w->out[2];
    int64_t sh = w->s[1], sw = w->s[2], Wq = g->Wq, rq = OH + g->qh_max, blk = rq * Wq;
    int nt = n_threads > 1 && items > 1 && items * g->Mg * g->out_px * g->taps > NN_PAR_THRESHOLD
                 ? n_threads : 1;

    if (nt > g->slots)
        nt = g->slots;
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        int tid = 0;
        const float *tap[DW_MAX_TAPS];
#ifdef _OPENMP
        tid = omp_get_thread_num();
#endif
        float *planes = scratch + (size_t)tid * g->slot_floats;
#pragma omp for schedule(dynamic, 1)
        for (int64_t it = 0; it < items; it++) {
            int64_t n = it / g->C, c = it % g->C;
            build_planes(g, x + n * g->C * g->in_px, c, 1, 0, rq, planes);
            for (int64_t t = 0; t < g->taps; t++) {
                int64_t kh = t / w->k[2], kw = t % w->k[2];
                int64_t a = kh * w->d[1] % sh, qh = kh * w->d[1] / sh;
                int64_t b = kw * w->d[2] % sw, qw = kw * w->d[2] / sw;
                tap[t] = planes + (a * sw + b) * blk + qh * Wq + qw;
            }
            for (int64_t mm = 0; mm < g->Mg; mm++) {
                int64_t m = c * g->Mg + mm;
                dw_rows(tap, wt + m * g->taps, g->taps, OH, Wq, OW, bias ? bias[m] : 0.0f,
                        y + (n * g->M + m) * g->out_px);
            }
        }
    }
}

/* Chunks: nb images side by side in one col (C*taps, nb*out_px), one GEMM
 * per group threaded by OpenBLAS, scattered to NCHW with the bias. */
static void conv_chunks(const conv_geom *g, const float *x, const float *wt, const float *bias,
                        float *y, float *scratch, int n_threads)
{
    float *col_buf = scratch, *tmp = scratch + g->col_floats;

    for (int64_t n0 = 0; n0 < g->N; n0 += g->chunk) {
        int64_t nb = g->N - n0 < g->chunk ? g->N - n0 : g->chunk;
        int64_t cols = nb * g->out_px;
        const float *xn = x + n0 * g->C * g->in_px;
        const float *col;
        float *dst;
        int64_t ldc;
        int nt = n_threads > 1 && nb > 1 ? n_threads : 1;

        if (g->pointwise && nb == 1) {
            col = xn;
        } else {
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
            for (int64_t b = 0; b < nb; b++)
                im2col_span(&g->w, xn + b * g->C * g->in_px, g->in_px, g->C, 0, g->out_px,
                            col_buf + b * g->out_px, cols);
            col = col_buf;
        }
        if (nb == 1) {
            dst = y + n0 * g->M * g->out_px;
            ldc = g->out_px;
        } else {
            dst = tmp;
            ldc = cols;
        }
        for (int64_t gi = 0; gi < g->G; gi++)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)g->Mg, (int)cols, (int)g->K,
                        1.0f, wt + gi * g->Mg * g->K, (int)g->K, col + gi * g->K * cols, (int)cols,
                        0.0f, dst + gi * g->Mg * ldc, (int)ldc);
        {
            int64_t rows = nb * g->M;
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
            for (int64_t r = 0; r < rows; r++) {
                int64_t b = r / g->M, m = r % g->M;
                const float *restrict src = dst + m * ldc + b * g->out_px;
                float *restrict out = y + ((n0 + b) * g->M + m) * g->out_px;
                float b0 = bias ? bias[m] : 0.0f;
                for (int64_t p = 0; p < g->out_px; p++)
                    out[p] = src[p] + b0;
            }
        }
    }
}

static pare_status conv_forward(pare_op_ctx *ctx)
{
    conv_geom g;
    const float *x, *wt, *bias;
    float *y;
    size_t need;
    pare_status rc = conv_geom_init(ctx, &g);

    if (rc != PARE_OK)
        return rc;
    x = pare_tensor_f32(ctx->in[0]);
    wt = pare_tensor_f32(ctx->in[1]);
    bias = ctx->n_in > 2 && ctx->in[2] ? pare_tensor_f32(ctx->in[2]) : NULL;
    y = pare_tensor_f32(ctx->out[0]);
    if (g.N == 0 || g.M == 0 || g.out_px == 0)
        return PARE_OK;
    if (g.K == 0) { /* no input channels: the output is the bias */
        for (int64_t p = 0; p < g.N * g.M; p++)
            for (int64_t i = 0; i < g.out_px; i++)
                y[p * g.out_px + i] = bias ? bias[p % g.M] : 0.0f;
        return PARE_OK;
    }
    /* As many thread slots as the scratch holds (infer sized it for its
       thread count; this run may use fewer threads, never more slots). */
    if (g.slot_floats && (g.mode == CONV_PLANES || g.mode == CONV_TILES ||
                          g.mode == CONV_DEPTHWISE)) {
        size_t have = ctx->scratch_bytes / sizeof(float);
        size_t fixed = g.mode == CONV_PLANES ? g.wtap_floats : 0;
        g.slots = have > fixed ? (int)((have - fixed) / g.slot_floats) : 0;
        if (g.slots > ctx->n_threads)
            g.slots = ctx->n_threads > 1 ? ctx->n_threads : 1;
    }
    need = conv_scratch_floats(&g) * sizeof(float);
    if (g.slots < 1 || ctx->scratch_bytes < need)
        return pare_op_fail(ctx, PARE_EINTERNAL, "conv scratch is %zu bytes, needs %zu",
                            ctx->scratch_bytes, need);
    switch (g.mode) {
    case CONV_DEPTHWISE:
        if (g.dw_planes)
            conv_depthwise_planes(&g, x, wt, bias, y, ctx->scratch, ctx->n_threads);
        else
            conv_depthwise(&g, x, wt, bias, y, ctx->n_threads);
        break;
    case CONV_PLANES:
        conv_planes(&g, x, wt, bias, y, ctx->scratch, ctx->n_threads);
        break;
    case CONV_TILES:
        conv_tiles(&g, x, wt, bias, y, ctx->scratch, ctx->n_threads);
        break;
    case CONV_CHUNKS:
        conv_chunks(&g, x, wt, bias, y, ctx->scratch, ctx->n_threads);
        break;
    }
    return PARE_OK;
}

static double conv_flops(const pare_op_ctx *ctx)
{
    const pare_tensor *y = ctx->out[0], *wt = ctx->in[1];
    int64_t taps_c = 1;

    if (!y || !wt || y->ndim < 3)
        return 0.0;
    for (int i = 1; i < wt->ndim; i++)
        taps_c *= wt->dims[i];
    /* 2 per multiply-add: every output element sums C/G * taps products. */
    return 2.0 * (double)pare_tensor_numel(y) * (double)taps_c;
}

/* ---- ConvTranspose ---- */

typedef struct convt_geom {
    nn_window w;             /* in = x spatial, out = y spatial, pads of y */
    int64_t N, C, M, G, Cg, Mg, taps;
    int64_t in_px, out_px;
} convt_geom;

static pare_status convt_geom_init(pare_op_ctx *ctx, convt_geom *g)
{
    const pare_tensor *x, *wt, *b;
    int64_t group = pare_node_attr_int(ctx->node, "group", 1);
    int64_t s[NN_MAX_SPATIAL], d[NN_MAX_SPATIAL], pads[2 * NN_MAX_SPATIAL], opad[NN_MAX_SPATIAL];
    const char *auto_pad = pare_node_attr_string(ctx->node, "auto_pad", "NOTSET");
    const int64_t *oshape;
    int n_oshape = 0, nsp, off;
    pare_status rc = nn_check_inputs(ctx, 2, 3);

    if (rc == PARE_OK)
        rc = nn_check_output(ctx);
    if (rc == PARE_OK)
        rc = check_f32_inputs(ctx);
    if (rc != PARE_OK)
        return rc;
    x = ctx->in[0];
    wt = ctx->in[1];
    b = ctx->n_in > 2 ? ctx->in[2] : NULL;
    memset(g, 0, sizeof *g);
    nsp = x->ndim - 2;
    if (nsp < 1)
        return pare_op_fail(ctx, PARE_EINPUT, "input 'X' must have rank 3 or more, got %d",
                            x->ndim);
    if (nsp > NN_MAX_SPATIAL)
        return pare_op_fail(ctx, PARE_EUNSUPPORTED, "%d spatial dims not supported (at most %d)",
                            nsp, NN_MAX_SPATIAL);
    if (wt->ndim != x->ndim)
        return pare_op_fail(ctx, PARE_EINPUT, "weight rank %d differs from input rank %d",
                            wt->ndim, x->ndim);
    if (group < 1)
        return pare_op_fail(ctx, PARE_EINPUT, "attribute 'group' is %lld, must be >= 1",
                            (long long)group);
    g->N = x->dims[0];
    g->C = x->dims[1];
    g->G = group;
    if (wt->dims[0] != g->C || g->C % group)
        return pare_op_fail(ctx, PARE_EINPUT,
                            "input has %lld channels but the weight has %lld (group %lld)",
                            (long long)g->C, (long long)wt->dims[0], (long long)group);
    g->Cg = g->C / group;
    g->Mg = wt->dims[1];
    g->M = g->Mg * group;
    if (b && (b->ndim != 1 || b->dims[0] != g->M))
        return pare_op_fail(ctx, PARE_EINPUT, "bias must have shape [%lld]", (long long)g->M);
    rc = check_kernel_shape(ctx, wt, nsp);
    if (rc == PARE_OK)
        rc = nn_attr_ints(ctx, "strides", nsp, 1, 1, s);
    if (rc == PARE_OK)
        rc = nn_attr_ints(ctx, "dilations", nsp, 1, 1, d);
    if (rc == PARE_OK)
        rc = nn_attr_ints(ctx, "pads", 2 * nsp, 0, 0, pads);
    if (rc == PARE_OK)
        rc = nn_attr_ints(ctx, "output_padding", nsp, 0, 0, opad);
    if (rc != PARE_OK)
        return rc;
    if (!auto_pad[0])
        auto_pad = "NOTSET";
    if (strcmp(auto_pad, "NOTSET") && strcmp(auto_pad, "VALID") &&
        strcmp(auto_pad, "SAME_UPPER") && strcmp(auto_pad, "SAME_LOWER"))
        return pare_op_fail(ctx, PARE_EINPUT, "attribute 'auto_pad' is '%s', expected NOTSET, "
                            "SAME_UPPER, SAME_LOWER or VALID", auto_pad);
    oshape = pare_node_attr_ints(ctx->node, "output_shape", &n_oshape);
    if (oshape && n_oshape != nsp && n_oshape != nsp + 2)
        return pare_op_fail(ctx, PARE_EINPUT, "attribute 'output_shape' has %d values, expected %d",
                            n_oshape, nsp);
    if (oshape && n_oshape == nsp + 2)
        oshape += 2; /* full (N, C, spatial...) form: keep the spatial part */

    off = NN_MAX_SPATIAL - nsp;
    for (int i = 0; i < NN_MAX_SPATIAL; i++) {
        g->w.in[i] = g->w.out[i] = g->w.k[i] = g->w.s[i] = g->w.d[i] = 1;
        g->w.pb[i] = g->w.pe[i] = 0;
    }
    g->w.nsp = nsp;
    for (int i = 0; i < nsp; i++) {
        int j = off + i;
        int64_t in = x->dims[2 + i], k = wt->dims[2 + i];
        int64_t full, out, pb = 0, pe = 0;

        if (in < 1 || k < 1)
            return pare_op_fail(ctx, PARE_EINPUT, "empty spatial dim %d", i);
        if (opad[i] >= s[i] && opad[i] >= d[i])
            return pare_op_fail(ctx, PARE_EINPUT,
                                "attribute 'output_padding' is %lld in spatial dim %d, must be "
                                "smaller than the stride or the dilation", (long long)opad[i], i);
        full = s[i] * (in - 1) + opad[i] + (k - 1) * d[i] + 1;
        if (oshape || !strcmp(auto_pad, "SAME_UPPER") || !strcmp(auto_pad, "SAME_LOWER")) {
            int64_t total;
            out = oshape ? oshape[i] : in * s[i];
            if (out < 1)
                return pare_op_fail(ctx, PARE_EINPUT,
                                    "attribute 'output_shape' is %lld in spatial dim %d",
                                    (long long)out, i);
            total = full - out;
            if (total < 0)
                total = 0; /* a larger output leaves its end (bias only) */
            if (!strcmp(auto_pad, "SAME_UPPER")) {
                pb = total / 2;
                pe = total - pb;
            } else {
                pe = total / 2;
                pb = total - pe;
            }
        } else {
            if (!strcmp(auto_pad, "NOTSET")) {
                pb = pads[i];
                pe = pads[nsp + i];
            }
            out = full - pb - pe;
            if (out < 1)
                return pare_op_fail(ctx, PARE_EINPUT, "output spatial dim %d would be empty "
                                    "(pads too large)", i);
        }
        g->w.in[j] = in;
        g->w.out[j] = out;
        g->w.k[j] = k;
        g->w.s[j] = s[i];
        g->w.d[j] = d[i];
        g->w.pb[j] = pb;
        g->w.pe[j] = pe;
    }
    g->taps = nn_window_k_numel(&g->w);
    g->in_px = nn_window_in_numel(&g->w);
    g->out_px = nn_window_out_numel(&g->w);
    return PARE_OK;
}

/* Declared in conv_backward.h: the backward kernels read the same window. */
pare_status convt_window(pare_op_ctx *ctx, nn_window *w)
{
    convt_geom g;
    pare_status rc = convt_geom_init(ctx, &g);

    if (rc == PARE_OK)
        *w = g.w;
    return rc;
}

static pare_status convt_infer(pare_op_ctx *ctx)
{
    convt_geom g;
    int64_t dims[PARE_MAX_DIMS];
    pare_status rc = convt_geom_init(ctx, &g);

    if (rc != PARE_OK)
        return rc;
    dims[0] = g.N;
    dims[1] = g.M;
    for (int i = 0; i < g.w.nsp; i++)
        dims[2 + i] = g.w.out[NN_MAX_SPATIAL - g.w.nsp + i];
    nn_set_shape(ctx->out[0], PARE_F32, ctx->in[0]->ndim, dims);
    ctx->scratch_bytes = (size_t)(g.Mg * g.taps * g.in_px) * sizeof(float);
    return PARE_OK;
}

/* y_g (Mg, out) += col2im(col (Mg * taps, in_px)). */
static void col2im(const convt_geom *g, const float *restrict col, float *restrict y, int n_threads)
{
    const nn_window *w = &g->w;
    int nt = n_threads > 1 && g->Mg > 1 && g->Mg * g->taps * g->in_px > NN_PAR_THRESHOLD
                 ? n_threads : 1;

#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t m = 0; m < g->Mg; m++) {
        float *yp = y + m * g->out_px;
        const float *cr = col + m * g->taps * g->in_px;
        for (int64_t kd = 0; kd < w->k[0]; kd++)
        for (int64_t kh = 0; kh < w->k[1]; kh++)
        for (int64_t kw = 0; kw < w->k[2]; kw++, cr += g->in_px) {
            int64_t lo, hi, offw = kw * w->d[2] - w->pb[2];
            nn_valid_range(w->in[2], w->out[2], w->s[2], w->pb[2], kw * w->d[2], &lo, &hi);
            for (int64_t id = 0; id < w->in[0]; id++) {
                int64_t od = id * w->s[0] - w->pb[0] + kd * w->d[0];
                if (od < 0 || od >= w->out[0])
                    continue;
                for (int64_t ih = 0; ih < w->in[1]; ih++) {
                    int64_t oh = ih * w->s[1] - w->pb[1] + kh * w->d[1];
                    const float *restrict src = cr + (id * w->in[1] + ih) * w->in[2];
                    float *restrict dst;
                    int64_t s2 = w->s[2];
                    if (oh < 0 || oh >= w->out[1])
                        continue;
                    dst = yp + (od * w->out[1] + oh) * w->out[2];
                    for (int64_t iw = lo; iw < hi; iw++)
                        dst[iw * s2 + offw] += src[iw];
                }
            }
        }
    }
}

static pare_status convt_forward(pare_op_ctx *ctx)
{
    convt_geom g;
    const float *x, *wt, *bias;
    float *y, *col;
    pare_status rc = convt_geom_init(ctx, &g);

    if (rc != PARE_OK)
        return rc;
    x = pare_tensor_f32(ctx->in[0]);
    wt = pare_tensor_f32(ctx->in[1]);
    bias = ctx->n_in > 2 && ctx->in[2] ? pare_tensor_f32(ctx->in[2]) : NULL;
    y = pare_tensor_f32(ctx->out[0]);
    col = ctx->scratch;
    if (ctx->scratch_bytes < (size_t)(g.Mg * g.taps * g.in_px) * sizeof(float))
        return pare_op_fail(ctx, PARE_EINTERNAL, "conv scratch is %zu bytes, too small",
                            ctx->scratch_bytes);
    for (int64_t p = 0; p < g.N * g.M; p++) {
        float *restrict r = y + p * g.out_px;
        float b0 = bias ? bias[p % g.M] : 0.0f;
        for (int64_t i = 0; i < g.out_px; i++)
            r[i] = b0;
    }
    for (int64_t n = 0; n < g.N; n++)
        for (int64_t gi = 0; gi < g.G; gi++) {
            int64_t rows = g.Mg * g.taps;
            if (rows == 0 || g.Cg == 0)
                continue;
            /* col (Mg*taps, in_px) = w_g^T (Mg*taps, Cg) * x_g (Cg, in_px) */
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)rows, (int)g.in_px,
                        (int)g.Cg, 1.0f, wt + gi * g.Cg * rows, (int)rows,
                        x + (n * g.C + gi * g.Cg) * g.in_px, (int)g.in_px, 0.0f, col,
                        (int)g.in_px);
            col2im(&g, col, y + (n * g.M + gi * g.Mg) * g.out_px, ctx->n_threads);
        }
    return PARE_OK;
}

static double convt_flops(const pare_op_ctx *ctx)
{
    const pare_tensor *x = ctx->in[0], *wt = ctx->in[1];
    int64_t per_in = 1;

    if (!x || !wt || wt->ndim < 3)
        return 0.0;
    for (int i = 1; i < wt->ndim; i++)
        per_in *= wt->dims[i];
    /* every input element is multiplied into Mg * taps outputs */
    return 2.0 * (double)pare_tensor_numel(x) * (double)per_in;
}

const pare_op_def ops_conv[] = {
    { .domain = "", .op_type = "Conv", .since = 1, .until = 10,
      .infer = conv_infer, .forward = conv_forward, .backward = conv_backward,
      .backward_scratch = conv_backward_scratch, .flops = conv_flops,
      .notes = "float32; 1-D, 2-D and 3-D" },
    { .domain = "", .op_type = "Conv", .since = 11, .until = 0,
      .infer = conv_infer, .forward = conv_forward, .backward = conv_backward,
      .backward_scratch = conv_backward_scratch, .flops = conv_flops,
      .notes = "float32; 1-D, 2-D and 3-D" },
    { .domain = "", .op_type = "ConvTranspose", .since = 1, .until = 10,
      .infer = convt_infer, .forward = convt_forward, .backward = convt_backward,
      .backward_scratch = convt_backward_scratch, .flops = convt_flops,
      .notes = "float32; 1-D, 2-D and 3-D" },
    { .domain = "", .op_type = "ConvTranspose", .since = 11, .until = 0,
      .infer = convt_infer, .forward = convt_forward, .backward = convt_backward,
      .backward_scratch = convt_backward_scratch, .flops = convt_flops,
      .notes = "float32; 1-D, 2-D and 3-D" },
    { .op_type = NULL },
};
