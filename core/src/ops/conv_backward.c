/* Backward of Conv and ConvTranspose, float32, 1-D / 2-D / 3-D.
 *
 * Both ops are handled as one convolution "a -> b" with weight w (co, cig,
 * taps), b[n][o][p] = sum_{c, t} w[o][c][t] * a[n][c][p * s - pb + t * d]:
 * - Conv: a = X, b = Y; dX = w^T applied to dY, dW = dY col(X)^T.
 * - ConvTranspose is the adjoint of the conv from Y-shaped to X-shaped
 *   tensors with the same weight (C, M/G, taps): a = Y, b = X, so
 *   dX = conv(dY) = w_g col(dY) and dW = X col(dY)^T.
 * Strategies, first that applies:
 * - depthwise Conv (groups of one input channel): a direct kernel, one
 *   input channel per work item, which owns that channel's dX planes and
 *   the weight rows that read it;
 * - 1-D / 2-D, not 1x1-stride-1: phase planes of a (as the forward's
 *   CONV_PLANES; see bw_image_planes), where every tap's operand is one
 *   contiguous range per channel. dW by one OpenBLAS GEMM per tap (16+
 *   channels per group; tap-major part buffers) or one GEMM over the tap
 *   ranges copied into a col (fewer channels). Conv dX with stride 1 is a
 *   conv of padded dY run by nn_gemm_taps (bw_dx_direct); with larger
 *   strides one GEMM per tap accumulates gradient planes that go back to dX.
 *   ConvTranspose dX: nn_gemm_taps over the planes, straight into dX;
 * - otherwise (3-D, 1x1 stride 1, over BW_MAX_TAPS taps): im2col of pixel
 *   tiles (a itself when 1x1 stride 1), dW_g += b_ng col^T, Conv dX =
 *   col2im(w_g^T dY_ng), ConvTranspose dX = w_g col.
 * Images are cut into parts (at most BW_MAX_PARTS, fixed by shapes); a part
 * runs on one OpenMP thread and sums its images' dW, in order, into its own
 * buffer; the parts are then added in part order. So the result depends on
 * shapes only, never on the thread count. dB sums dY per channel, one
 * channel per item. The scratch holds the part buffers, w regrouped by tap
 * and one buffer set per thread slot (backward_scratch sizes them for
 * ctx->n_threads).
 *
 * All spatial ranks are held as 3 dims (D, H, W) with unused leading dims 1
 * (see nn_window). */
#include <cblas.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "ops/conv_backward.h"
#include "ops/nn_gemm.h"
#include "ops/nn_util.h"

/* Most floats of one im2col tile (K x pixels): 512 KB, so col, its
 * gradient and the GEMM operands stay in a 2 MB L2. */
#define BW_COL_FLOATS 131072
/* Most image parts, i.e. weight-gradient buffers summed at the end. */
#define BW_MAX_PARTS 16
/* Most floats of all extra part buffers together (64 MB). */
#define BW_PART_FLOATS ((int64_t)16 << 20)
/* Most kernel taps of the phase-plane kernels (a pointer per tap). */
#define BW_MAX_TAPS 128
/* Most floats of one image's padded dY planes for the direct dX (4 MB). */
#define BW_DYP_FLOATS ((int64_t)1 << 20)

typedef struct bw_geom {
    nn_window w;             /* the conv a -> b: in = a's spatial dims, out = b's */
    int transposed;          /* ConvTranspose: a = Y, b = X */
    int64_t N;
    int64_t ci, co, G;       /* channels of a, of b, groups */
    int64_t cig, cog;        /* per group */
    int64_t taps, kk;        /* kernel elements per channel; GEMM depth cig * taps */
    int64_t in_px, out_px;   /* pixels per plane of a, of b */
    int pointwise;           /* 1x1, stride 1, unpadded, same size: a is its own col */
    int depthwise;           /* Conv with groups of one input channel */
    int planes;              /* 1-D / 2-D: phase planes instead of im2col (bw_image_planes) */
    int64_t qh_max, qw_max;  /* largest tap offset in plane rows / columns */
    int64_t Wq;              /* plane row length: b's row length + qw_max */
    int64_t R, n_rtiles;     /* b rows per tile, tiles per image (planes) */
    size_t plane_floats;     /* per slot: a's phase planes of one row tile */
    size_t bq_floats;        /* per slot: b's rows of the tile, Wq long */
    size_t dplane_floats;    /* per slot: gradient of one group's phase planes */
    size_t wtap_floats;      /* shared: w regrouped by tap, wtap[t][o][c] (planes), and
                                with dx_direct wflip[t][g][c][o] after it */
    int dw_fold;             /* planes: dW by one GEMM over taps copied into a col */
    int dw_tapmajor;         /* planes, not folded: dW parts laid out as wtap */
    int dx_direct;           /* Conv, stride 1: dX as a conv of padded dY (bw_dx_direct) */
    int64_t padt_h, padt_w;  /* dx_direct: dY's offset in its padded planes */
    int64_t Hp, Wp;          /* dx_direct: padded dY plane rows and row length */
    size_t dyp_floats;       /* per slot: padded dY planes of one image */
    int64_t tw, n_tiles;     /* b pixels per tile, tiles per image (im2col) */
    int64_t n_part;          /* image parts (0 when N = 0) */
    size_t part_floats;      /* one dW buffer (weight elements, rounded); with planes
                                tap-major as wtap, so every part has its own */
    int64_t n_parts_extra;   /* part buffers in the scratch: n_part, or n_part - 1 when
                                part 0 is din[1] itself */
    size_t col_floats;       /* per slot: im2col tile, or taps copied from the planes */
    size_t dcol_floats;      /* per slot: gradient of the tile, or a GEMM output */
    int slots;               /* per-thread buffer sets */
} bw_geom;

static size_t round16(size_t n)
{
    return (n + 15) & ~(size_t)15;
}

static int64_t ceil_div(int64_t a, int64_t b)
{
    return (a + b - 1) / b;
}

/* Shapes from the inputs and attributes. The forward already validated
 * them; what is checked again keeps indexing in bounds when it did not. */
static pare_status bw_geom_init(pare_op_ctx *ctx, int transposed, bw_geom *g)
{
    const pare_tensor *x, *wt, *b;
    int64_t group = pare_node_attr_int(ctx->node, "group", 1);
    pare_status rc = nn_check_inputs(ctx, 2, 3);

    memset(g, 0, sizeof *g);
    if (rc == PARE_OK)
        rc = nn_check_output(ctx);
    if (rc != PARE_OK)
        return rc;
    x = ctx->in[0];
    wt = ctx->in[1];
    b = ctx->n_in > 2 ? ctx->in[2] : NULL;
    if (x->dtype != PARE_F32 || wt->dtype != PARE_F32 || (b && b->dtype != PARE_F32))
        return nn_bad_dtype(ctx, transposed ? "ConvTranspose backward" : "Conv backward",
                            x->dtype != PARE_F32 ? x->dtype : wt->dtype != PARE_F32 ? wt->dtype
                                                                                    : b->dtype);
    if (x->ndim < 3 || wt->ndim != x->ndim || group < 1)
        return pare_op_fail(ctx, PARE_EINPUT, "input rank %d, weight rank %d or group %lld "
                            "do not make a convolution", x->ndim, wt->ndim, (long long)group);
    g->transposed = transposed;
    g->N = x->dims[0];
    g->G = group;
    g->cig = wt->dims[1];
    if (transposed) {
        nn_window yw;
        rc = convt_window(ctx, &yw);
        if (rc != PARE_OK)
            return rc;
        /* the adjoint conv reads Y (window in) and writes X-shaped (out) */
        g->w = yw;
        for (int i = 0; i < NN_MAX_SPATIAL; i++) {
            g->w.in[i] = yw.out[i];
            g->w.out[i] = yw.in[i];
        }
        g->co = x->dims[1];
        g->ci = g->cig * group;
    } else {
        rc = nn_window_init(ctx, x, wt->dims + 2, 0, &g->w);
        if (rc != PARE_OK)
            return rc;
        g->ci = x->dims[1];
        g->co = wt->dims[0];
    }
    if (g->ci != g->cig * group || g->co % group)
        return pare_op_fail(ctx, PARE_EINPUT, "channels %lld and %lld do not split into %lld "
                            "groups as the weight says", (long long)g->ci, (long long)g->co,
                            (long long)group);
    if (b && pare_tensor_numel(b) != (transposed ? g->ci : g->co))
        return pare_op_fail(ctx, PARE_EINPUT, "bias must have shape [%lld]",
                            (long long)(transposed ? g->ci : g->co));
    g->cog = g->co / group;
    g->taps = nn_window_k_numel(&g->w);
    g->kk = g->cig * g->taps;
    g->in_px = nn_window_in_numel(&g->w);
    g->out_px = nn_window_out_numel(&g->w);
    g->pointwise = g->taps == 1;
    for (int i = 0; i < NN_MAX_SPATIAL; i++)
        if (g->w.s[i] != 1 || g->w.pb[i] || g->w.in[i] != g->w.out[i])
            g->pointwise = 0;
    g->depthwise = !transposed && g->cig == 1 && g->G > 1;
    return PARE_OK;
}

/* Phase planes (see bw_image_planes) for 1-D and 2-D convs: row tiles of
 * at most BW_COL_FLOATS copied taps. */
static void plan_planes(bw_geom *g)
{
    const nn_window *w = &g->w;
    int64_t oh = w->out[1], phases = w->s[1] * w->s[2], L;

    g->qh_max = (w->k[1] - 1) * w->d[1] / w->s[1];
    g->qw_max = (w->k[2] - 1) * w->d[2] / w->s[2];
    g->Wq = w->out[2] + g->qw_max;
    g->R = BW_COL_FLOATS / (g->kk * g->Wq);
    if (g->R < 1)
        g->R = 1;
    if (g->R > oh)
        g->R = oh;
    g->n_rtiles = ceil_div(oh, g->R);
    g->R = ceil_div(oh, g->n_rtiles);
    L = g->R * g->Wq;
    /* + Wq: a tap's range ends up to qw_max past its channel's block */
    g->plane_floats = round16((size_t)(phases * g->ci * (g->R + g->qh_max) * g->Wq + g->Wq));
    g->bq_floats = round16((size_t)(g->co * L));
    g->dplane_floats = g->transposed ? 0 : round16((size_t)(phases * g->cig * (g->R + g->qh_max) *
                                                             g->Wq + g->Wq));
    g->wtap_floats = round16((size_t)(g->co * g->kk));
    /* per-tap GEMMs are cig wide: with few channels one folded GEMM is faster */
    g->dw_fold = g->cig < 16;
    g->dw_tapmajor = !g->dw_fold;
    g->col_floats = g->dw_fold ? round16((size_t)(g->kk * L)) : 0;
    g->padt_h = (w->k[1] - 1) * w->d[1] - w->pb[1];
    g->padt_w = (w->k[2] - 1) * w->d[2] - w->pb[2];
    g->Hp = w->in[1] + (w->k[1] - 1) * w->d[1];
    g->Wp = w->in[2] + (w->k[2] - 1) * w->d[2];
    g->dx_direct = !g->transposed && w->s[1] == 1 && w->s[2] == 1 && g->padt_h >= 0 &&
                   g->padt_w >= 0 && g->co * g->Hp * g->Wp <= BW_DYP_FLOATS;
    if (g->dx_direct) {
        g->dplane_floats = 0;
        g->dyp_floats = round16((size_t)(g->co * g->Hp * g->Wp + g->Wp));
        g->wtap_floats *= 2;
    }
}

/* Tiles, parts and buffers: shapes only, plus the thread slots. */
static void bw_plan(bw_geom *g, int n_threads)
{
    int64_t wnum = g->co * g->kk, max_part;

    g->planes = !g->depthwise && !g->pointwise && g->kk > 0 && g->out_px > 0 &&
                g->taps <= BW_MAX_TAPS && g->w.k[0] == 1 && g->w.in[0] == 1 && g->w.out[0] == 1;
    g->tw = g->out_px;
    if (g->planes) {
        plan_planes(g);
    } else if (!g->pointwise && g->kk * g->out_px > BW_COL_FLOATS) {
        g->tw = BW_COL_FLOATS / (g->kk ? g->kk : 1);
        g->tw = g->tw < 16 ? 16 : g->tw - g->tw % 16;
        if (g->tw > g->out_px)
            g->tw = g->out_px;
    }
    g->n_tiles = g->tw > 0 ? ceil_div(g->out_px, g->tw) : 0;
    g->n_part = g->N < BW_MAX_PARTS ? g->N : BW_MAX_PARTS;
    max_part = 1 + BW_PART_FLOATS / (wnum > 0 ? wnum : 1);
    if (g->n_part > max_part)
        g->n_part = max_part;
    g->part_floats = round16((size_t)wnum);
    g->n_parts_extra = g->dw_tapmajor ? g->n_part : g->n_part - 1;
    if (!g->planes) {
        g->col_floats = g->pointwise ? 0 : round16((size_t)(g->kk * g->tw));
        g->dcol_floats = g->transposed || g->pointwise ? 0 : g->col_floats;
    }
    g->slots = n_threads > 1 ? n_threads : 1;
    if (g->slots > g->n_part)
        g->slots = g->n_part > 1 ? (int)g->n_part : 1;
}

static size_t slot_floats(const bw_geom *g)
{
    return g->plane_floats + g->bq_floats + g->dplane_floats + g->dyp_floats + g->col_floats +
           g->dcol_floats;
}

static size_t bw_scratch_floats(const bw_geom *g)
{
    if (g->depthwise || g->N == 0)
        return 0;
    return g->wtap_floats + (size_t)g->n_parts_extra * g->part_floats +
           (size_t)g->slots * slot_floats(g);
}

/* Rows (c, kd, kh, kw) of the im2col of `channels` planes of a (in_px
 * apart) for b pixels [p0, p0 + n): col[row][j] is the value that tap reads
 * for pixel p0 + j, 0 in the padding. Row stride ld. */
static void im2col_tile(const nn_window *w, const float *a, int64_t in_px, int64_t channels,
                        int64_t p0, int64_t n, float *restrict col, int64_t ld)
{
    int64_t o1 = w->out[1], o2 = w->out[2], plane = o1 * o2, s2 = w->s[2];
    int64_t row = 0;

    for (int64_t c = 0; c < channels; c++)
    for (int64_t kd = 0; kd < w->k[0]; kd++)
    for (int64_t kh = 0; kh < w->k[1]; kh++)
    for (int64_t kw = 0; kw < w->k[2]; kw++, row++) {
        const float *ac = a + c * in_px;
        float *restrict dst = col + row * ld;
        int64_t offw = kw * w->d[2] - w->pb[2], lo, hi;
        nn_valid_range(o2, w->in[2], s2, w->pb[2], kw * w->d[2], &lo, &hi);
        for (int64_t p = p0; p < p0 + n;) {
            int64_t od = p / plane, oh = p % plane / o2, ow = p % o2;
            int64_t len = o2 - ow < p0 + n - p ? o2 - ow : p0 + n - p, end = ow + len;
            int64_t id = od * w->s[0] - w->pb[0] + kd * w->d[0];
            int64_t ih = oh * w->s[1] - w->pb[1] + kh * w->d[1];
            if (id < 0 || id >= w->in[0] || ih < 0 || ih >= w->in[1]) {
                memset(dst, 0, (size_t)len * sizeof(float));
            } else {
                const float *restrict src = ac + (id * w->in[1] + ih) * w->in[2] + offw;
                int64_t q0 = lo > ow ? lo : ow, q1 = hi < end ? hi : end;
                if (q1 < q0)
                    q1 = q0;
                for (int64_t q = ow; q < q0; q++)
                    dst[q - ow] = 0.0f;
                if (s2 == 1)
                    memcpy(dst + (q0 - ow), src + q0, (size_t)(q1 - q0) * sizeof(float));
                else
                    for (int64_t q = q0; q < q1; q++)
                        dst[q - ow] = src[q * s2];
                for (int64_t q = q1; q < end; q++)
                    dst[q - ow] = 0.0f;
            }
            dst += len;
            p += len;
        }
    }
}

/* The adjoint of im2col_tile: adds every col entry into the a position it
 * was read from (padding entries are dropped). */
static void col2im_tile(const nn_window *w, const float *col, int64_t ld, int64_t channels,
                        int64_t p0, int64_t n, float *da, int64_t in_px)
{
    int64_t o1 = w->out[1], o2 = w->out[2], plane = o1 * o2, s2 = w->s[2];
    int64_t row = 0;

    for (int64_t c = 0; c < channels; c++)
    for (int64_t kd = 0; kd < w->k[0]; kd++)
    for (int64_t kh = 0; kh < w->k[1]; kh++)
    for (int64_t kw = 0; kw < w->k[2]; kw++, row++) {
        float *dc = da + c * in_px;
        const float *restrict src = col + row * ld;
        int64_t offw = kw * w->d[2] - w->pb[2], lo, hi;
        nn_valid_range(o2, w->in[2], s2, w->pb[2], kw * w->d[2], &lo, &hi);
        for (int64_t p = p0; p < p0 + n;) {
            int64_t od = p / plane, oh = p % plane / o2, ow = p % o2;
            int64_t len = o2 - ow < p0 + n - p ? o2 - ow : p0 + n - p, end = ow + len;
            int64_t id = od * w->s[0] - w->pb[0] + kd * w->d[0];
            int64_t ih = oh * w->s[1] - w->pb[1] + kh * w->d[1];
            if (id >= 0 && id < w->in[0] && ih >= 0 && ih < w->in[1]) {
                float *restrict dst = dc + (id * w->in[1] + ih) * w->in[2] + offw;
                int64_t q0 = lo > ow ? lo : ow, q1 = hi < end ? hi : end;
                if (s2 == 1)
                    for (int64_t q = q0; q < q1; q++)
                        dst[q] += src[q - ow];
                else
                    for (int64_t q = q0; q < q1; q++)
                        dst[q * s2] += src[q - ow];
            }
            src += len;
            p += len;
        }
    }
}

typedef struct bw_args {
    const float *a, *b, *wt;
    float *da;               /* Conv's dX, or NULL */
    float *db;               /* ConvTranspose's dX, or NULL */
    float *dw;               /* din[1], or NULL */
} bw_args;

/* One image: every group and tile. dwp is this part's dW buffer; first:
 * the part's first image, whose products overwrite it. */
static void bw_image(const bw_geom *g, const bw_args *x, int64_t n, float *dwp, int first,
                     float *col, float *dcol)
{
    const float *an = x->a + n * g->ci * g->in_px, *bn = x->b + n * g->co * g->out_px;
    float *dan = x->da ? x->da + n * g->ci * g->in_px : NULL;
    float *dbn = x->db ? x->db + n * g->co * g->out_px : NULL;
    int kk = (int)g->kk, cog = (int)g->cog, cig = (int)g->cig;

    if (dan && !g->pointwise) /* col2im adds */
        memset(dan, 0, (size_t)(g->ci * g->in_px) * sizeof(float));
    for (int64_t gi = 0; gi < g->G; gi++) {
        const float *ag = an + gi * g->cig * g->in_px;
        const float *wg = x->wt + gi * g->cog * g->kk;
        for (int64_t t = 0; t < g->n_tiles; t++) {
            int64_t p0 = t * g->tw;
            int nt = (int)(g->out_px - p0 < g->tw ? g->out_px - p0 : g->tw);
            const float *bg = bn + gi * g->cog * g->out_px + p0;
            const float *c = col;
            int ldc = nt;
            if (g->pointwise) {
                c = ag + p0;
                ldc = (int)g->in_px;
            } else if (dwp || dbn) {
                im2col_tile(&g->w, ag, g->in_px, g->cig, p0, nt, col, nt);
            }
            if (dwp) /* dW_g (cog, kk) += b_g (cog, nt) col^T */
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, cog, kk, nt, 1.0f, bg,
                            (int)g->out_px, c, ldc, first && t == 0 ? 0.0f : 1.0f,
                            dwp + gi * g->cog * g->kk, kk);
            if (dan && g->pointwise) /* dX_g (cig, nt) = w_g^T dY_g */
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, cig, nt, cog, 1.0f, wg, kk,
                            bg, (int)g->out_px, 0.0f, dan + gi * g->cig * g->in_px + p0,
                            (int)g->in_px);
            else if (dan) { /* dcol (kk, nt) = w_g^T dY_g, added back where col read */
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, kk, nt, cog, 1.0f, wg, kk,
                            bg, (int)g->out_px, 0.0f, dcol, nt);
                col2im_tile(&g->w, dcol, nt, g->cig, p0, nt, dan + gi * g->cig * g->in_px,
                            g->in_px);
            }
            if (dbn) /* dX_g (cog, nt) = w_g (cog, kk) col */
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, cog, nt, kk, 1.0f, wg, kk,
                            c, ldc, 0.0f, dbn + gi * g->cog * g->out_px + p0, (int)g->out_px);
        }
    }
}

/* ---- phase planes (1-D and 2-D) ----
 *
 * As in the forward (conv.c), the padded a is split into stride phases,
 * P[ph = (a, b)][c][i][j] = a[c][(oh0 + i) * sh + a - pb_h][j * sw + b - pb_w]
 * (0 outside), rows Wq = OW + qw_max long, so that kernel tap (kh, kw) of
 * every b pixel (oh, ow) of a row tile reads P at (oh - oh0 + qh, ow + qw),
 * phase (kh * dh % sh, kw * dw % sw), qh = kh * dh / sh, qw = kw * dw / sw:
 * one contiguous range of r * Wq floats per channel and tap. With b's rows
 * of the tile copied Wq long and zero past OW (bq), the junk columns add
 * nothing:
 *   pcol rows (c, t) = the tap ranges (memcpy), dW_g += bq_g pcol^T;
 *   Conv: dpcol = w_g^T bq_g, each row's real columns added into the
 *   gradient planes at its tap offset, which go back to dX through the
 *   inverse of the phase split (every a element sits in at most one phase
 *   position of a tile);
 *   ConvTranspose: dX_g rows = (w_g pcol) without the junk columns. */

/* Whether some kernel tap reads phase (pa, pb). */
static int phase_used(const nn_window *w, int64_t pa, int64_t pb)
{
    int used_a = 0, used_b = 0;

    for (int64_t kh = 0; kh < w->k[1]; kh++)
        used_a |= kh * w->d[1] % w->s[1] == pa;
    for (int64_t kw = 0; kw < w->k[2]; kw++)
        used_b |= kw * w->d[2] % w->s[2] == pb;
    return used_a && used_b;
}

/* Offset of channel c's range for tap t in planes of nc channels (blocks
 * of blk floats). */
static int64_t plane_off(const bw_geom *g, int64_t nc, int64_t blk, int64_t c, int64_t t)
{
    const nn_window *w = &g->w;
    int64_t sh = w->s[1], sw = w->s[2];
    int64_t kh = t / w->k[2], kw = t % w->k[2];
    int64_t pa = kh * w->d[1] % sh, qh = kh * w->d[1] / sh;
    int64_t pb = kw * w->d[2] % sw, qw = kw * w->d[2] / sw;

    return ((pa * sw + pb) * nc + c) * blk + qh * g->Wq + qw;
}

/* dst[j] = src[j * s] */
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

/* dst[j * s] += src[j] */
static NN_CLONES void scatter_add(float *restrict dst, const float *restrict src, int64_t n,
                                  int64_t s)
{
    if (s == 1)
        for (int64_t j = 0; j < n; j++)
            dst[j] += src[j];
    else if (s == 2)
        for (int64_t j = 0; j < n; j++)
            dst[2 * j] += src[j];
    else
        for (int64_t j = 0; j < n; j++)
            dst[j * s] += src[j];
}

/* Phase planes of rq rows from row tile oh0 for the nc planes of a (in_px
 * apart); phases no tap reads are left alone. Wq zeros follow the last
 * plane. */
static void build_planes(const bw_geom *g, const float *a, int64_t nc, int64_t oh0, int64_t rq,
                         float *restrict planes)
{
    const nn_window *w = &g->w;
    int64_t sh = w->s[1], sw = w->s[2], Wq = g->Wq, blk = rq * Wq;

    for (int64_t pa = 0; pa < sh; pa++)
    for (int64_t pb = 0; pb < sw; pb++) {
        int64_t lo, hi, off = pb - w->pb[2];
        if (!phase_used(w, pa, pb))
            continue;
        nn_valid_range(Wq, w->in[2], sw, w->pb[2], pb, &lo, &hi);
        for (int64_t c = 0; c < nc; c++) {
            const float *ac = a + c * g->in_px;
            float *pc = planes + ((pa * sw + pb) * nc + c) * blk;
            for (int64_t i = 0; i < rq; i++) {
                float *restrict dst = pc + i * Wq;
                int64_t ih = (oh0 + i) * sh + pa - w->pb[1];
                if (ih < 0 || ih >= w->in[1] || hi <= lo) {
                    memset(dst, 0, (size_t)Wq * sizeof(float));
                    continue;
                }
                memset(dst, 0, (size_t)lo * sizeof(float));
                gather_strided(dst + lo, ac + ih * w->in[2] + lo * sw + off, hi - lo, sw);
                memset(dst + hi, 0, (size_t)(Wq - hi) * sizeof(float));
            }
        }
    }
    memset(planes + sh * sw * nc * blk, 0, (size_t)Wq * sizeof(float));
}

/* The inverse of build_planes, adding: da += the plane entries. */
static void unbuild_planes_add(const bw_geom *g, const float *planes, int64_t nc, int64_t oh0,
                               int64_t rq, float *da)
{
    const nn_window *w = &g->w;
    int64_t sh = w->s[1], sw = w->s[2], Wq = g->Wq, blk = rq * Wq;

    for (int64_t pa = 0; pa < sh; pa++)
    for (int64_t pb = 0; pb < sw; pb++) {
        int64_t lo, hi, off = pb - w->pb[2];
        if (!phase_used(w, pa, pb))
            continue;
        nn_valid_range(Wq, w->in[2], sw, w->pb[2], pb, &lo, &hi);
        if (hi <= lo)
            continue;
        for (int64_t c = 0; c < nc; c++) {
            const float *pc = planes + ((pa * sw + pb) * nc + c) * blk;
            float *dc = da + c * g->in_px;
            for (int64_t i = 0; i < rq; i++) {
                int64_t ih = (oh0 + i) * sh + pa - w->pb[1];
                if (ih < 0 || ih >= w->in[1])
                    continue;
                scatter_add(dc + ih * w->in[2] + lo * sw + off, pc + i * Wq + lo, hi - lo, sw);
            }
        }
    }
}

/* Conv dX with stride 1 as a conv of dY: dX[c][ih][iw] = sum over o, taps
 * of w[o][c][kh][kw] * dY[o][ih + pb_h - kh * dh][iw + pb_w - kw * dw]. dY
 * goes into planes padded by padt = (k - 1) * d - pb before and Wp = IW +
 * (kw - 1) * dw long rows, where tap (kh, kw) of dX pixel (ih, iw) reads
 * (ih + (k_h - 1 - kh) * dh, iw + (k_w - 1 - kw) * dw): a contiguous range
 * per channel, so nn_gemm_taps sums all taps in registers and writes dX
 * rows once, compacted from Wp-long rows. */
static void bw_dx_direct(const bw_geom *g, const float *wflip, const float *dyn, float *dxn,
                         float *dyp)
{
    const nn_window *w = &g->w;
    int64_t OH = w->out[1], OW = w->out[2], IH = w->in[1], IW = w->in[2];
    int64_t Wp = g->Wp, blk = g->Hp * Wp;
    int64_t ncopy = OW < Wp - g->padt_w ? OW : Wp - g->padt_w;
    const float *tap[BW_MAX_TAPS];
    nn_gemm_out o = {Wp, IW, NULL};

    for (int64_t m = 0; m < g->co; m++)
        for (int64_t i = 0; i < g->Hp; i++) {
            float *dst = dyp + m * blk + i * Wp;
            int64_t oh = i - g->padt_h;
            if (oh < 0 || oh >= OH || ncopy <= 0) {
                memset(dst, 0, (size_t)Wp * sizeof(float));
                continue;
            }
            memset(dst, 0, (size_t)g->padt_w * sizeof(float));
            memcpy(dst + g->padt_w, dyn + m * g->out_px + oh * OW, (size_t)ncopy * sizeof(float));
            memset(dst + g->padt_w + ncopy, 0, (size_t)(Wp - g->padt_w - ncopy) * sizeof(float));
        }
    memset(dyp + g->co * blk, 0, (size_t)Wp * sizeof(float));
    for (int64_t gi = 0; gi < g->G; gi++) {
        for (int64_t t = 0; t < g->taps; t++) {
            int64_t kh = t / w->k[2], kw = t % w->k[2];
            tap[t] = dyp + gi * g->cog * blk + (w->k[1] - 1 - kh) * w->d[1] * Wp +
                     (w->k[2] - 1 - kw) * w->d[2];
        }
        /* a_t = wflip[t][gi] (cig, cog) */
        nn_gemm_taps(g->cig, IH * Wp, g->cog, g->taps, wflip + gi * g->cig * g->cog, g->cog,
                     g->co * g->cig, tap, blk, dxn + gi * g->cig * g->in_px, g->in_px, &o);
    }
}

static void bw_image_planes(const bw_geom *g, const bw_args *x, const float *wtap, int64_t n,
                            float *dwp, int first, float *slot)
{
    const nn_window *w = &g->w;
    const float *an = x->a + n * g->ci * g->in_px, *bn = x->b + n * g->co * g->out_px;
    float *dan = x->da ? x->da + n * g->ci * g->in_px : NULL;
    float *dbn = x->db ? x->db + n * g->co * g->out_px : NULL;
    /* dpl: the gradient planes, or with dx_direct the padded dY planes */
    float *planes = slot, *bq = planes + g->plane_floats, *dpl = bq + g->bq_floats;
    float *pcol = dpl + g->dplane_floats + g->dyp_floats;
    int64_t OH = w->out[1], OW = w->out[2], Wq = g->Wq, phases = w->s[1] * w->s[2];
    int64_t wt_stride = g->co * g->cig; /* wtap[t] is (co, cig) */
    int cog = (int)g->cog, cig = (int)g->cig, kk = (int)g->kk;
    const float *tap[BW_MAX_TAPS];

    if (dan && g->dx_direct) {
        bw_dx_direct(g, wtap + g->wtap_floats / 2, bn, dan, dpl);
        dan = NULL;
    }
    if (dan)
        memset(dan, 0, (size_t)(g->ci * g->in_px) * sizeof(float));
    for (int64_t rt = 0; rt < g->n_rtiles; rt++) {
        int64_t oh0 = rt * g->R, r = OH - oh0 < g->R ? OH - oh0 : g->R;
        int64_t rq = r + g->qh_max, blk = rq * Wq, L = r * Wq;
        if (dwp || dbn)
            build_planes(g, an, g->ci, oh0, rq, planes);
        if (dwp || dan)
            for (int64_t c = 0; c < g->co; c++)
                for (int64_t i = 0; i < r; i++) {
                    float *dst = bq + c * L + i * Wq;
                    memcpy(dst, bn + c * g->out_px + (oh0 + i) * OW, (size_t)OW * sizeof(float));
                    memset(dst + OW, 0, (size_t)(Wq - OW) * sizeof(float));
                }
        for (int64_t gi = 0; gi < g->G; gi++) {
            const float *bqg = bq + gi * g->cog * L;
            const float *wg = wtap + gi * g->cog * g->cig;  /* + t * wt_stride */
            for (int64_t t = 0; t < g->taps && (dwp || dbn); t++)
                tap[t] = planes + plane_off(g, g->ci, blk, gi * g->cig, t);
            if (dwp && g->dw_fold) { /* dW_g (cog, kk) += bq_g (cog, L) pcol^T */
                for (int64_t c = 0, row = 0; c < g->cig; c++)
                    for (int64_t t = 0; t < g->taps; t++, row++)
                        memcpy(pcol + row * L, tap[t] + c * blk, (size_t)L * sizeof(float));
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, cog, kk, (int)L, 1.0f, bqg,
                            (int)L, pcol, (int)L, first && rt == 0 ? 0.0f : 1.0f,
                            dwp + gi * g->cog * g->kk, kk);
            }
            /* dW_t,g (cog, cig) += bq_g (cog, L) tap_t^T (L, cig rows blk apart) */
            for (int64_t t = 0; t < g->taps && dwp && g->dw_tapmajor; t++)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, cog, cig, (int)L, 1.0f, bqg,
                            (int)L, tap[t], (int)blk, first && rt == 0 ? 0.0f : 1.0f,
                            dwp + t * wt_stride + gi * g->cog * g->cig, cig);
            if (dan) { /* gradient planes of tap t (cig, L rows blk apart) += w_t,g^T bq_g */
                for (int64_t ph = 0; ph < phases; ph++) /* what unbuild reads */
                    if (phase_used(w, ph / w->s[2], ph % w->s[2]))
                        memset(dpl + ph * g->cig * blk, 0, (size_t)(g->cig * blk) * sizeof(float));
                for (int64_t t = 0; t < g->taps; t++)
                    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, cig, (int)L, cog, 1.0f,
                                wg + t * wt_stride, cig, bqg, (int)L, 1.0f,
                                dpl + plane_off(g, g->cig, blk, 0, t), (int)blk);
                unbuild_planes_add(g, dpl, g->cig, oh0, rq, dan + gi * g->cig * g->in_px);
            }
            if (dbn) { /* dX_g rows = sum_t w_t,g (cog, cig) tap_t, compacted */
                nn_gemm_out o = {Wq, OW, NULL};
                nn_gemm_taps(cog, L, cig, g->taps, wg, cig, wt_stride, tap, blk,
                             dbn + gi * g->cog * g->out_px + oh0 * OW, g->out_px, &o);
            }
        }
    }
}

static void bw_gemm(const bw_geom *g, const bw_args *x, float *scratch, int n_threads)
{
    float *wtap = scratch, *parts = scratch + g->wtap_floats;
    float *slots = parts + (size_t)g->n_parts_extra * g->part_floats;
    int nt = n_threads > 1 && g->n_part > 1 ? n_threads : 1;
    int64_t wnum = g->co * g->kk;
    int rt = n_threads > 1 && wnum * g->n_part > NN_PAR_THRESHOLD ? n_threads : 1;

    if (nt > g->slots)
        nt = g->slots;
    if (g->planes) /* wtap[t][o][c] = w[o][c][t] */
        for (int64_t o = 0; o < g->co; o++)
            for (int64_t c = 0; c < g->cig; c++)
                for (int64_t t = 0; t < g->taps; t++)
                    wtap[(t * g->co + o) * g->cig + c] = x->wt[(o * g->cig + c) * g->taps + t];
    if (g->dx_direct && x->da) { /* wflip[t][gi][c][o in group] = w[gi * cog + o][c][t] */
        float *wflip = wtap + g->wtap_floats / 2;
        for (int64_t o = 0; o < g->co; o++)
            for (int64_t c = 0; c < g->cig; c++)
                for (int64_t t = 0; t < g->taps; t++)
                    wflip[((t * g->G + o / g->cog) * g->cig + c) * g->cog + o % g->cog] =
                        x->wt[(o * g->cig + c) * g->taps + t];
    }
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        int tid = 0;
#ifdef _OPENMP
        tid = omp_get_thread_num();
#endif
        float *slot = slots + (size_t)tid * slot_floats(g);
#pragma omp for schedule(dynamic, 1)
        for (int64_t p = 0; p < g->n_part; p++) {
            int64_t n0 = p * g->N / g->n_part, n1 = (p + 1) * g->N / g->n_part;
            float *dwp = NULL;
            if (x->dw && g->dw_tapmajor)
                dwp = parts + (size_t)p * g->part_floats;
            else if (x->dw)
                dwp = p ? parts + (size_t)(p - 1) * g->part_floats : x->dw;
            for (int64_t n = n0; n < n1; n++) {
                if (g->planes)
                    bw_image_planes(g, x, wtap, n, dwp, n == n0, slot);
                else
                    bw_image(g, x, n, dwp, n == n0, slot, slot + g->col_floats);
            }
        }
    }
    if (!x->dw)
        return;
    if (g->dw_tapmajor) { /* sum the tap-major parts in order, then back to w's layout */
#pragma omp parallel for num_threads(rt) schedule(static) if (rt > 1)
        for (int64_t i = 0; i < wnum; i++) {
            float s = parts[i];
            for (int64_t p = 1; p < g->n_part; p++)
                s += parts[(size_t)p * g->part_floats + (size_t)i];
            parts[i] = s;
        }
        for (int64_t o = 0; o < g->co; o++)
            for (int64_t c = 0; c < g->cig; c++)
                for (int64_t t = 0; t < g->taps; t++)
                    x->dw[(o * g->cig + c) * g->taps + t] = parts[(t * g->co + o) * g->cig + c];
    } else if (g->n_part > 1) {
#pragma omp parallel for num_threads(rt) schedule(static) if (rt > 1)
        for (int64_t i = 0; i < wnum; i++) {
            float s = x->dw[i];
            for (int64_t p = 1; p < g->n_part; p++)
                s += parts[(size_t)(p - 1) * g->part_floats + (size_t)i];
            x->dw[i] = s;
        }
    }
}

/* One (image, output channel) plane of a depthwise conv: dX plane += taps
 * of w times dY; dW taps += dY . x. */
static NN_CLONES void dw_plane_backward(const nn_window *w, const float *restrict xp,
                                        const float *restrict dyp, const float *restrict wp,
                                        float *restrict dxp, float *restrict dwp)
{
    int64_t s2 = w->s[2];

    for (int64_t od = 0; od < w->out[0]; od++)
    for (int64_t oh = 0; oh < w->out[1]; oh++) {
        const float *restrict dyr = dyp + (od * w->out[1] + oh) * w->out[2];
        for (int64_t kd = 0; kd < w->k[0]; kd++) {
            int64_t id = od * w->s[0] - w->pb[0] + kd * w->d[0];
            if (id < 0 || id >= w->in[0])
                continue;
            for (int64_t kh = 0; kh < w->k[1]; kh++) {
                int64_t ih = oh * w->s[1] - w->pb[1] + kh * w->d[1];
                int64_t row = (id * w->in[1] + ih) * w->in[2];
                if (ih < 0 || ih >= w->in[1])
                    continue;
                for (int64_t kw = 0; kw < w->k[2]; kw++) {
                    int64_t t = (kd * w->k[1] + kh) * w->k[2] + kw;
                    int64_t off = row + kw * w->d[2] - w->pb[2], lo, hi;
                    nn_valid_range(w->out[2], w->in[2], s2, w->pb[2], kw * w->d[2], &lo, &hi);
                    if (dwp) {
                        float s = 0.0f;
                        for (int64_t q = lo; q < hi; q++)
                            s += dyr[q] * xp[off + q * s2];
                        dwp[t] += s;
                    }
                    if (dxp) {
                        float wv = wp[t];
                        for (int64_t q = lo; q < hi; q++)
                            dxp[off + q * s2] += wv * dyr[q];
                    }
                }
            }
        }
    }
}

/* Depthwise (groups of one input channel, cog outputs each): input channel
 * c owns its dX planes and weight rows [c * cog, (c + 1) * cog). */
static void bw_depthwise(const bw_geom *g, const bw_args *x, int n_threads)
{
    int64_t C = g->ci;
    int nt = n_threads > 1 && C > 1 &&
             g->N * g->co * g->out_px * g->taps > NN_PAR_THRESHOLD ? n_threads : 1;

#pragma omp parallel for num_threads(nt) schedule(dynamic, 1) if (nt > 1)
    for (int64_t c = 0; c < C; c++) {
        float *dwc = x->dw ? x->dw + c * g->cog * g->taps : NULL;
        if (dwc)
            memset(dwc, 0, (size_t)(g->cog * g->taps) * sizeof(float));
        for (int64_t n = 0; n < g->N; n++) {
            float *dxp = x->da ? x->da + (n * C + c) * g->in_px : NULL;
            if (dxp)
                memset(dxp, 0, (size_t)g->in_px * sizeof(float));
            for (int64_t j = 0; j < g->cog; j++) {
                int64_t m = c * g->cog + j;
                dw_plane_backward(&g->w, x->a + (n * C + c) * g->in_px,
                                  x->b + (n * g->co + m) * g->out_px, x->wt + m * g->taps, dxp,
                                  dwc ? dwc + j * g->taps : NULL);
            }
        }
    }
}

/* Sum of one plane: 16 float lanes, then their sum (a fixed order). */
static NN_CLONES float plane_sum(const float *restrict r, int64_t px)
{
    float acc[16] = {0}, s = 0.0f;
    int64_t p = 0;

    for (; p + 16 <= px; p += 16)
        for (int l = 0; l < 16; l++)
            acc[l] += r[p + l];
    for (int l = 0; l < 16; l++)
        s += acc[l];
    for (; p < px; p++)
        s += r[p];
    return s;
}

/* dB[m] = sum of dY over images and pixels (plane sums added in double, one
 * channel per item: the order is fixed). */
static void bias_backward(const float *dy, int64_t N, int64_t M, int64_t px, float *db,
                          int n_threads)
{
    int nt = n_threads > 1 && M > 1 && N * M * px > NN_PAR_THRESHOLD ? n_threads : 1;

#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
    for (int64_t m = 0; m < M; m++) {
        double s = 0.0;
        for (int64_t n = 0; n < N; n++)
            s += plane_sum(dy + (n * M + m) * px, px);
        db[m] = (float)s;
    }
}

static pare_tensor *din_of(const pare_op_ctx *ctx, int i)
{
    return ctx->din && i < ctx->n_in && ctx->in[i] ? ctx->din[i] : NULL;
}

static pare_status backward_common(pare_op_ctx *ctx, int transposed)
{
    bw_geom g;
    bw_args x;
    pare_tensor *dx = din_of(ctx, 0), *dw = din_of(ctx, 1), *db = din_of(ctx, 2);
    const pare_tensor *dy = ctx->dout ? ctx->dout[0] : NULL;
    pare_status rc = bw_geom_init(ctx, transposed, &g);
    int64_t y_numel, y_ch, y_px;
    size_t need;

    if (rc != PARE_OK)
        return rc;
    bw_plan(&g, ctx->n_threads);
    y_ch = transposed ? g.ci : g.co;
    y_px = transposed ? g.in_px : g.out_px;
    y_numel = g.N * y_ch * y_px;
    if ((dy && (dy->dtype != PARE_F32 || pare_tensor_numel(dy) != y_numel)) ||
        (dx && pare_tensor_numel(dx) != pare_tensor_numel(ctx->in[0])) ||
        (dw && pare_tensor_numel(dw) != pare_tensor_numel(ctx->in[1])) ||
        (db && pare_tensor_numel(db) != y_ch))
        return pare_op_fail(ctx, PARE_EINTERNAL, "gradient buffers do not match the node's "
                            "shapes");
    need = bw_scratch_floats(&g) * sizeof(float);
    if (need && !ctx->scratch)
        return pare_op_fail(ctx, PARE_EINTERNAL, "conv backward needs %zu bytes of scratch",
                            need);
    if (!dy || y_numel == 0 || g.kk == 0) { /* nothing flows: zero gradients */
        for (int i = 0; i < 3; i++) {
            pare_tensor *d = din_of(ctx, i);
            if (d)
                memset(d->data, 0, (size_t)pare_tensor_numel(d) * sizeof(float));
        }
        if (!dy || !db || y_numel == 0)
            return PARE_OK;
    }
    if (db)
        bias_backward(pare_tensor_f32(dy), g.N, y_ch, y_px, pare_tensor_f32(db), ctx->n_threads);
    if (g.kk == 0 || (!dx && !dw))
        return PARE_OK;
    x.wt = pare_tensor_f32(ctx->in[1]);
    x.dw = dw ? pare_tensor_f32(dw) : NULL;
    if (transposed) {
        x.a = pare_tensor_f32(dy);
        x.b = pare_tensor_f32(ctx->in[0]);
        x.da = NULL;
        x.db = dx ? pare_tensor_f32(dx) : NULL;
    } else {
        x.a = pare_tensor_f32(ctx->in[0]);
        x.b = pare_tensor_f32(dy);
        x.da = dx ? pare_tensor_f32(dx) : NULL;
        x.db = NULL;
    }
    if (g.depthwise)
        bw_depthwise(&g, &x, ctx->n_threads);
    else
        bw_gemm(&g, &x, ctx->scratch, ctx->n_threads);
    return PARE_OK;
}

static size_t scratch_common(const pare_op_ctx *ctx, int transposed)
{
    pare_op_ctx c = *ctx;
    bw_geom g;

    c.err = NULL; /* sizing only: a bad node fails in backward, with its message */
    if (bw_geom_init(&c, transposed, &g) != PARE_OK)
        return 0;
    bw_plan(&g, ctx->n_threads);
    return bw_scratch_floats(&g) * sizeof(float);
}

pare_status conv_backward(pare_op_ctx *ctx)
{
    return backward_common(ctx, 0);
}

size_t conv_backward_scratch(const pare_op_ctx *ctx)
{
    return scratch_common(ctx, 0);
}

pare_status convt_backward(pare_op_ctx *ctx)
{
    return backward_common(ctx, 1);
}

size_t convt_backward_scratch(const pare_op_ctx *ctx)
{
    return scratch_common(ctx, 1);
}
