/* Register-blocked GEMMs summed over taps (see nn_gemm.h).
 *
 * A block of c (mr rows x 2 vectors) lives in vector registers while the
 * kernel walks every tap and every k: per step two vectors of one b row are
 * loaded and each of the mr a values is broadcast into two FMAs. Columns
 * past n are masked in the loads and stores, so b is read and c written only
 * inside [0, n). Column blocks are the outer loop, so one block's b rows
 * stay in L1 while the row blocks reuse them.
 *
 * The x86 kernels are compiled for their target with function attributes
 * (the build itself targets baseline x86-64) and picked at run time. */
#include "ops/nn_gemm.h"

#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__) && !defined(PARE_NO_CLONES)
#define NN_GEMM_X86 1
#include <immintrin.h>
#else
#define NN_GEMM_X86 0
#endif

/* Where column j goes in a row of c, or -1 when dropped. */
static int64_t out_col(const nn_gemm_out *o, int64_t j)
{
    return j % o->wq < o->ow ? j / o->wq * o->ow + j % o->wq : -1;
}

static void gemm_ref(int64_t m, int64_t n, int64_t k, int64_t taps, const float *a, int64_t lda,
                     int64_t a_tap, const float *const *b, int64_t ldb, float *c, int64_t ldc,
                     const nn_gemm_out *o)
{
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            int64_t q = out_col(o, j);
            float sum = o->bias ? o->bias[i] : 0.0f;
            if (q < 0)
                continue;
            for (int64_t t = 0; t < taps; t++)
                for (int64_t kk = 0; kk < k; kk++)
                    sum += a[t * a_tap + i * lda + kk] * b[t][kk * ldb + j];
            c[i * ldc + q] = sum;
        }
}

#if NN_GEMM_X86

#define NN_INLINE static inline __attribute__((always_inline))

/* ---- AVX-512F: mr x 32 blocks, mr <= 8 (16 accumulators) ---- */

NN_INLINE __attribute__((target("avx512f"))) void
blk512(int mr, int64_t k, int64_t taps, const float *a, int64_t lda, int64_t a_tap,
       const float *const *b, int64_t ldb, int64_t j0, __mmask16 k0, __mmask16 k1, float *c,
       int64_t ldc, const float *bias, const __mmask16 *sm, const int64_t *sq)
{
    __m512 acc[8][2];

    for (int r = 0; r < mr; r++) {
        acc[r][0] = bias ? _mm512_set1_ps(bias[r]) : _mm512_setzero_ps();
        acc[r][1] = acc[r][0];
    }
    for (int64_t t = 0; t < taps; t++) {
        const float *bt = b[t] + j0;
        const float *at = a + t * a_tap;
        for (int64_t kk = 0; kk < k; kk++) {
            __m512 b0 = _mm512_maskz_loadu_ps(k0, bt + kk * ldb);
            __m512 b1 = _mm512_maskz_loadu_ps(k1, bt + kk * ldb + 16);
            for (int r = 0; r < mr; r++) {
                __m512 av = _mm512_set1_ps(at[r * lda + kk]);
                acc[r][0] = _mm512_fmadd_ps(av, b0, acc[r][0]);
                acc[r][1] = _mm512_fmadd_ps(av, b1, acc[r][1]);
            }
        }
    }
    if (!sm) {
        for (int r = 0; r < mr; r++) {
            _mm512_mask_storeu_ps(c + r * ldc + j0, k0, acc[r][0]);
            _mm512_mask_storeu_ps(c + r * ldc + j0 + 16, k1, acc[r][1]);
        }
        return;
    }
    /* kept columns land side by side: compress in registers, then store
       the first popcount(sm) lanes (faster than compress-to-memory) */
    for (int r = 0; r < mr; r++)
        for (int v = 0; v < 2; v++)
            _mm512_mask_storeu_ps(c + r * ldc + sq[v], sm[2 + v],
                                  _mm512_maskz_compress_ps(sm[v], acc[r][v]));
}

static __attribute__((target("avx512f"))) void
gemm_avx512(int64_t m, int64_t n, int64_t k, int64_t taps, const float *a, int64_t lda,
            int64_t a_tap, const float *const *b, int64_t ldb, float *c, int64_t ldc,
            const nn_gemm_out *o)
{
    int dense = o->wq == o->ow;
    const float *bias = o->bias;

    for (int64_t j0 = 0; j0 < n; j0 += 32) {
        int64_t rem = n - j0, i0 = 0;
        __mmask16 k0 = rem >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << rem) - 1);
        __mmask16 k1 = rem >= 32   ? (__mmask16)0xFFFF
                       : rem <= 16 ? (__mmask16)0
                                   : (__mmask16)((1u << (rem - 16)) - 1);
        __mmask16 sm[4] = {0, 0, 0, 0};
        int64_t sq[2] = {0, 0};
        if (!dense) /* per vector: kept lanes, where the first goes, store mask */
            for (int v = 0; v < 2; v++) {
                for (int l = 15; l >= 0; l--) {
                    int64_t q = j0 + 16 * v + l < n ? out_col(o, j0 + 16 * v + l) : -1;
                    if (q >= 0) {
                        sm[v] |= (__mmask16)(1u << l);
                        sq[v] = q;
                    }
                }
                sm[2 + v] = (__mmask16)((1u << __builtin_popcount(sm[v])) - 1);
            }
#define NN_BLK512(mr)                                                                           \
    blk512(mr, k, taps, a + i0 * lda, lda, a_tap, b, ldb, j0, k0, k1, c + i0 * ldc, ldc,        \
           bias ? bias + i0 : NULL, dense ? NULL : sm, sq)
        for (; i0 + 8 <= m; i0 += 8)
            NN_BLK512(8);
        if (m - i0 >= 4) {
            NN_BLK512(4);
            i0 += 4;
        }
        if (m - i0 >= 2) {
            NN_BLK512(2);
            i0 += 2;
        }
        if (m - i0 >= 1)
            NN_BLK512(1);
#undef NN_BLK512
    }
}

/* ---- AVX2 + FMA: mr x 16 blocks, mr <= 4 (8 accumulators) ---- */

NN_INLINE __attribute__((target("avx2,fma"))) void
blk256(int mr, int64_t k, int64_t taps, const float *a, int64_t lda, int64_t a_tap,
       const float *const *b, int64_t ldb, int64_t j0, __m256i k0, __m256i k1, float *c,
       int64_t ldc, const float *bias, const nn_gemm_out *o, int64_t n)
{
    __m256 acc[4][2];

    for (int r = 0; r < mr; r++) {
        acc[r][0] = bias ? _mm256_set1_ps(bias[r]) : _mm256_setzero_ps();
        acc[r][1] = acc[r][0];
    }
    for (int64_t t = 0; t < taps; t++) {
        const float *bt = b[t] + j0;
        const float *at = a + t * a_tap;
        for (int64_t kk = 0; kk < k; kk++) {
            __m256 b0 = _mm256_maskload_ps(bt + kk * ldb, k0);
            __m256 b1 = _mm256_maskload_ps(bt + kk * ldb + 8, k1);
            for (int r = 0; r < mr; r++) {
                __m256 av = _mm256_broadcast_ss(at + r * lda + kk);
                acc[r][0] = _mm256_fmadd_ps(av, b0, acc[r][0]);
                acc[r][1] = _mm256_fmadd_ps(av, b1, acc[r][1]);
            }
        }
    }
    if (o->wq == o->ow) {
        for (int r = 0; r < mr; r++) {
            _mm256_maskstore_ps(c + r * ldc + j0, k0, acc[r][0]);
            _mm256_maskstore_ps(c + r * ldc + j0 + 8, k1, acc[r][1]);
        }
        return;
    }
    for (int r = 0; r < mr; r++) {
        float tile[16];
        _mm256_storeu_ps(tile, acc[r][0]);
        _mm256_storeu_ps(tile + 8, acc[r][1]);
        for (int l = 0; l < 16 && j0 + l < n; l++) {
            int64_t q = out_col(o, j0 + l);
            if (q >= 0)
                c[r * ldc + q] = tile[l];
        }
    }
}

static __attribute__((target("avx2,fma"))) void
gemm_avx2(int64_t m, int64_t n, int64_t k, int64_t taps, const float *a, int64_t lda,
          int64_t a_tap, const float *const *b, int64_t ldb, float *c, int64_t ldc,
          const nn_gemm_out *o)
{
    const float *bias = o->bias;
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);

    for (int64_t j0 = 0; j0 < n; j0 += 16) {
        int64_t rem = n - j0 < 16 ? n - j0 : 16, i0 = 0;
        __m256i k0 = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)rem), lane);
        __m256i k1 = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)rem - 8), lane);
#define NN_BLK256(mr)                                                                           \
    blk256(mr, k, taps, a + i0 * lda, lda, a_tap, b, ldb, j0, k0, k1, c + i0 * ldc, ldc,        \
           bias ? bias + i0 : NULL, o, n)
        for (; i0 + 4 <= m; i0 += 4)
            NN_BLK256(4);
        if (m - i0 >= 2) {
            NN_BLK256(2);
            i0 += 2;
        }
        if (m - i0 >= 1)
            NN_BLK256(1);
#undef NN_BLK256
    }
}

static int isa_runs(enum nn_gemm_isa isa)
{
    __builtin_cpu_init();
    switch (isa) {
    case NN_GEMM_AVX512:
        return __builtin_cpu_supports("avx512f");
    case NN_GEMM_AVX2:
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    default:
        return isa == NN_GEMM_REF;
    }
}

#else

static int isa_runs(enum nn_gemm_isa isa)
{
    return isa == NN_GEMM_REF;
}

#endif

int nn_gemm_taps_isa(enum nn_gemm_isa isa, int64_t m, int64_t n, int64_t k, int64_t taps,
                     const float *a, int64_t lda, int64_t a_tap, const float *const *b,
                     int64_t ldb, float *c, int64_t ldc, const nn_gemm_out *out)
{
    nn_gemm_out o = {n, n, NULL};

    if (isa == NN_GEMM_AUTO)
        isa = isa_runs(NN_GEMM_AVX512) ? NN_GEMM_AVX512
              : isa_runs(NN_GEMM_AVX2) ? NN_GEMM_AVX2
                                       : NN_GEMM_REF;
    if (!isa_runs(isa))
        return 0;
    if (out)
        o = *out;
    if (o.wq < 1 || o.ow > o.wq)
        o.wq = o.ow = n;
    if (m <= 0 || n <= 0)
        return 1;
    if (k <= 0 || taps <= 0)
        taps = k = 0; /* c = 0: every kernel stores its zero accumulators */
#if NN_GEMM_X86
    if (isa == NN_GEMM_AVX512) {
        gemm_avx512(m, n, k, taps, a, lda, a_tap, b, ldb, c, ldc, &o);
        return 1;
    }
    if (isa == NN_GEMM_AVX2) {
        gemm_avx2(m, n, k, taps, a, lda, a_tap, b, ldb, c, ldc, &o);
        return 1;
    }
#endif
    gemm_ref(m, n, k, taps, a, lda, a_tap, b, ldb, c, ldc, &o);
    return 1;
}

void nn_gemm_taps(int64_t m, int64_t n, int64_t k, int64_t taps, const float *a, int64_t lda,
                  int64_t a_tap, const float *const *b, int64_t ldb, float *c, int64_t ldc,
                  const nn_gemm_out *out)
{
    nn_gemm_taps_isa(NN_GEMM_AUTO, m, n, k, taps, a, lda, a_tap, b, ldb, c, ldc, out);
}
