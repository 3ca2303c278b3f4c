/* bench-awq-inplace — would the CPU decode be as fast reading AutoAWQ's own
 * layout in place (no repack at load, issue 19) as it is on the repacked
 * rows?
 *
 * AutoAWQ's GEMM layout keeps, for input k, one row of N/8 words, each word
 * 4-bit values of 8 outputs (engine/awq-layout.h); a decode step then walks
 * the K rows of a 128-output stripe (64 bytes a row, N/2 bytes apart). The
 * in-place kernel here does that with AVX-512 in FP32: per input k, one
 * 64-byte load, eight shift/mask/convert/FMA steps (one per nibble slot),
 * per group of 128 inputs the zero point and scale folded in (the scales
 * gathered in the slot order). Against it: the engine's decode path on the
 * repacked HrQMat (hr_matmul_q4 with one token: int8 activations, VNNI,
 * rows along K). Both on the same pool of threads, over enough copies of
 * the matrix (1 GiB each) that the weights come from memory; the figure is
 * GB/s of checkpoint bytes (4 bits a weight plus the scale and zero of each
 * group) per call, median of 5 passes. The two outputs are compared (the
 * repacked path rounds activations to int8, so they agree to ~1e-2
 * relative, not bit for bit). Prints figures, asserts nothing; x86-64 with
 * AVX-512 only. Release build:
 *
 *   ./build-rel/tests/bench-awq-inplace [THREADS]
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "awq-layout.h"
#include "cpu-kernels.h"
#include "hr-half.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define AVX512 __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx2,fma,f16c")))

typedef struct {
    const uint32_t *qweight, *qzeros;
    const uint16_t *scales;
    const float *x, *gsum;   /* gsum[g]: sum of x over group g */
    float *out;
    int N, K, group;
} Job;

/* Outputs [128 s, 128 (s + 1)) for stripes s in [start, end). */
AVX512 static void
stripes(void *arg, int start, int end)
{
    const Job *J = arg;
    const size_t w8 = (size_t)J->N / 8;
    const int ng = J->K / J->group;
    /* slot p of a word holds output 8 j + order[p] */
    static const int order[8] = { 0, 2, 4, 6, 1, 3, 5, 7 };
    const __m512i lane = _mm512_setr_epi32(0, 8, 16, 24, 32, 40, 48, 56, 64, 72, 80, 88, 96, 104, 112, 120);
    const __m512i nib = _mm512_set1_epi32(15);
    for (int s = start; s < end; s++) {
        const size_t w0 = (size_t)s * 16;
        __m512 tot[8];
        for (int p = 0; p < 8; p++)
            tot[p] = _mm512_setzero_ps();
        for (int g = 0; g < ng; g++) {
            __m512 acc[8];
            for (int p = 0; p < 8; p++)
                acc[p] = _mm512_setzero_ps();
            const int k0 = g * J->group;
            for (int k = k0; k < k0 + J->group; k++) {
                _mm_prefetch((const char *)(J->qweight + (size_t)(k + 8) * w8 + w0), _MM_HINT_T0);
                const __m512i v = _mm512_loadu_si512(J->qweight + (size_t)k * w8 + w0);
                const __m512 xb = _mm512_set1_ps(J->x[k]);
                for (int p = 0; p < 8; p++)
                    acc[p] = _mm512_fmadd_ps(
                        _mm512_cvtepi32_ps(_mm512_and_si512(_mm512_srli_epi32(v, (unsigned)(4 * p)), nib)), xb,
                        acc[p]);
            }
            const __m512i zv = _mm512_loadu_si512(J->qzeros + (size_t)g * w8 + w0);
            const __m512 sx = _mm512_set1_ps(J->gsum[g]);
            const uint16_t *sc = J->scales + (size_t)g * (size_t)J->N + 8 * w0;
            for (int p = 0; p < 8; p++) {
                /* the halves at 8 j + order[p]: 32-bit gathers at 2-byte steps, low halves kept */
                const __m512i idx = _mm512_add_epi32(lane, _mm512_set1_epi32(order[p]));
                const __m512i h = _mm512_i32gather_epi32(idx, (const void *)sc, 2);
                const __m512 sv = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(h));
                const __m512 z = _mm512_cvtepi32_ps(_mm512_and_si512(_mm512_srli_epi32(zv, (unsigned)(4 * p)), nib));
                tot[p] = _mm512_fmadd_ps(sv, _mm512_fnmadd_ps(z, sx, acc[p]), tot[p]);
            }
        }
        for (int p = 0; p < 8; p++) {
            const __m512i idx = _mm512_add_epi32(lane, _mm512_set1_epi32(order[p]));
            _mm512_i32scatter_ps(J->out + 8 * w0, idx, tot[p], 4);
        }
    }
}

/* The same arithmetic with the loops the other way round: each work item
 * is a whole range of outputs (one per thread), walked input row by input
 * row (contiguous reads of the row's share), the per-output sums kept in
 * memory (L1: 2 x 4 bytes an output) instead of registers. */
typedef struct {
    const Job *J;
    int n_items;
} RowsJob;

AVX512 static void
rows_item(void *arg, int start, int end)
{
    const RowsJob *R = arg;
    const Job *J = R->J;
    const size_t w8 = (size_t)J->N / 8;
    const int ng = J->K / J->group, n_stripes = J->N / 128;
    static const int order[8] = { 0, 2, 4, 6, 1, 3, 5, 7 };
    const __m512i lane = _mm512_setr_epi32(0, 8, 16, 24, 32, 40, 48, 56, 64, 72, 80, 88, 96, 104, 112, 120);
    const __m512i nib = _mm512_set1_epi32(15);
    for (int it = start; it < end; it++) {
        const int s0 = n_stripes * it / R->n_items, s1 = n_stripes * (it + 1) / R->n_items, ns = s1 - s0;
        float *acc = g_malloc(sizeof(float) * 128 * (size_t)ns * 2), *tot = acc + 128 * (size_t)ns;
        memset(tot, 0, sizeof(float) * 128 * (size_t)ns);
        for (int g = 0; g < ng; g++) {
            memset(acc, 0, sizeof(float) * 128 * (size_t)ns);
            for (int k = g * J->group; k < (g + 1) * J->group; k++) {
                const uint32_t *row = J->qweight + (size_t)k * w8 + 16 * (size_t)s0;
                const __m512 xb = _mm512_set1_ps(J->x[k]);
                for (int s = 0; s < ns; s++) {
                    const __m512i v = _mm512_loadu_si512(row + 16 * s);
                    float *a = acc + 128 * (size_t)s;
                    for (int p = 0; p < 8; p++)
                        _mm512_storeu_ps(a + 16 * p, _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_and_si512(
                                                                         _mm512_srli_epi32(v, (unsigned)(4 * p)), nib)),
                                                                     xb, _mm512_loadu_ps(a + 16 * p)));
                }
            }
            const __m512 sx = _mm512_set1_ps(J->gsum[g]);
            for (int s = 0; s < ns; s++) {
                const size_t w0 = 16 * (size_t)(s0 + s);
                const __m512i zv = _mm512_loadu_si512(J->qzeros + (size_t)g * w8 + w0);
                const uint16_t *sc = J->scales + (size_t)g * (size_t)J->N + 8 * w0;
                for (int p = 0; p < 8; p++) {
                    const __m512i idx = _mm512_add_epi32(lane, _mm512_set1_epi32(order[p]));
                    const __m512 sv = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_i32gather_epi32(idx, (const void *)sc, 2)));
                    const __m512 z = _mm512_cvtepi32_ps(_mm512_and_si512(_mm512_srli_epi32(zv, (unsigned)(4 * p)), nib));
                    float *t = tot + 128 * (size_t)s + 16 * p;
                    _mm512_storeu_ps(t, _mm512_fmadd_ps(sv, _mm512_fnmadd_ps(z, sx, _mm512_loadu_ps(acc + 128 * (size_t)s + 16 * p)),
                                                        _mm512_loadu_ps(t)));
                }
            }
        }
        for (int s = 0; s < ns; s++)
            for (int p = 0; p < 8; p++)
                _mm512_i32scatter_ps(J->out + 8 * 16 * (size_t)(s0 + s),
                                     _mm512_add_epi32(lane, _mm512_set1_epi32(order[p])),
                                     _mm512_loadu_ps(tot + 128 * (size_t)s + 16 * p), 4);
        g_free(acc);
    }
}

static double
median(double *v, int n)
{
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && v[j] < v[j - 1]; j--) {
            double t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    return v[n / 2];
}

int
main(int argc, char **argv)
{
    if (!hr_cpu_avx512()) {
        printf("bench-awq-inplace: needs AVX-512\n");
        return 77;
    }
    const int threads = argc > 1 ? atoi(argv[1]) : 2;
    HrThreadPool *pool = hr_pool_new(threads);
    static const int shapes[][2] = { { 4096, 4096 }, { 11008, 4096 }, { 4096, 11008 } };
    const int G = 128, PASSES = 5;
    GRand *rng = g_rand_new_with_seed(19);
    printf("threads %d; GB/s of checkpoint bytes (4-bit weights + scale and zero per group of %d), median of %d "
           "passes over 1 GiB of copies each\n", threads, G, PASSES);
    for (size_t si = 0; si < G_N_ELEMENTS(shapes); si++) {
        const int N = shapes[si][0], K = shapes[si][1], ng = K / G;
        const size_t w8 = (size_t)N / 8;
        const size_t ckpt_bytes = (size_t)K * w8 * 4 + (size_t)ng * w8 * 4 + (size_t)ng * (size_t)N * 2;
        const int copies = (int)MAX(2, ((size_t)1 << 30) / ckpt_bytes);
        uint32_t **qw = g_new(uint32_t *, copies), **qz = g_new(uint32_t *, copies);
        uint16_t **sc = g_new(uint16_t *, copies);
        HrQMat *m = g_new0(HrQMat, copies);
        for (int c = 0; c < copies; c++) {
            qw[c] = g_new(uint32_t, (size_t)K * w8);
            qz[c] = g_new(uint32_t, (size_t)ng * w8);
            sc[c] = g_new(uint16_t, (size_t)ng * (size_t)N);
            for (size_t i = 0; i < (size_t)K * w8; i++)
                qw[c][i] = g_rand_int(rng);
            for (size_t i = 0; i < (size_t)ng * w8; i++)
                qz[c][i] = g_rand_int(rng);
            for (size_t i = 0; i < (size_t)ng * (size_t)N; i++)
                sc[c][i] = hr_f32_to_f16((float)g_rand_double_range(rng, 0.001, 0.01));
            HrQMat *q = &m[c];
            q->rows = N;
            q->cols = K;
            q->n_groups = ng;
            q->group = G;
            q->kind = HR_QMAT_ZERO;
            hr_qmat_alloc(q);
            hr_awq_unpack_rows(qw[c], N, K, 0, N, NULL, q->q, (size_t)(K / 2));
            hr_awq_unpack_zeros(qz[c], N, ng, 0, N, q->zero);
            hr_awq_unpack_scales(sc[c], N, ng, 0, N, q->scale);
        }
        float *x = g_new(float, K), *gsum = g_new0(float, ng), *o1 = g_new(float, N), *o2 = g_new(float, N);
        for (int k = 0; k < K; k++) {
            x[k] = (float)g_rand_double_range(rng, -1.0, 1.0);
            gsum[k / G] += x[k];
        }
        double t_rep[PASSES], t_in[PASSES], t_rows[PASSES];
        float *o3 = g_new(float, N);
        for (int pass = -1; pass < PASSES; pass++) { /* pass -1 warms up (and pages in) */
            gint64 t0 = g_get_monotonic_time();
            for (int c = 0; c < copies; c++)
                hr_matmul_q4(pool, o1, &m[c], NULL, x, 1, NULL);
            gint64 t1 = g_get_monotonic_time();
            for (int c = 0; c < copies; c++) {
                Job j = { qw[c], qz[c], sc[c], x, gsum, o2, N, K, G };
                hr_pool_run(pool, stripes, &j, N / 128, 1);
            }
            gint64 t2 = g_get_monotonic_time();
            for (int c = 0; c < copies; c++) {
                Job j = { qw[c], qz[c], sc[c], x, gsum, o3, N, K, G };
                RowsJob r = { &j, hr_pool_size(pool) };
                hr_pool_run(pool, rows_item, &r, r.n_items, 1);
            }
            gint64 t3 = g_get_monotonic_time();
            if (pass >= 0) {
                t_rep[pass] = (double)(t1 - t0) / 1e6 / copies;
                t_in[pass] = (double)(t2 - t1) / 1e6 / copies;
                t_rows[pass] = (double)(t3 - t2) / 1e6 / copies;
            }
        }
        double md = 0.0, md3 = 0.0, mx = 0.0;
        for (int n = 0; n < N; n++) {
            md = fmax(md, fabs((double)o1[n] - (double)o2[n]));
            md3 = fmax(md3, fabs((double)o2[n] - (double)o3[n]));
            mx = fmax(mx, fabs((double)o2[n]));
        }
        const double rep = median(t_rep, PASSES), inp = median(t_in, PASSES), rows = median(t_rows, PASSES);
        printf("%5dx%-5d x %3d copies: repacked (hr_matmul_q4) %7.1f us %6.2f GB/s | in place, stripes %7.1f us "
               "%6.2f GB/s = %.2fx | in place, rows %7.1f us %6.2f GB/s = %.2fx | max |diff| repacked %.1e, "
               "stripes vs rows %.1e, of max |out| %.2f\n", N, K, copies, rep * 1e6, (double)ckpt_bytes / rep / 1e9,
               inp * 1e6, (double)ckpt_bytes / inp / 1e9, inp / rep, rows * 1e6, (double)ckpt_bytes / rows / 1e9,
               rows / rep, md, md3, mx);
        for (int c = 0; c < copies; c++) {
            g_free(qw[c]);
            g_free(qz[c]);
            g_free(sc[c]);
            hr_qmat_free(&m[c]);
        }
        g_free(qw);
        g_free(qz);
        g_free(sc);
        g_free(m);
        g_free(x);
        g_free(gsum);
        g_free(o1);
        g_free(o2);
        g_free(o3);
    }
    g_rand_free(rng);
    hr_pool_free(pool);
    return 0;
}
#else
int
main(void)
{
    printf("bench-awq-inplace: x86-64 only\n");
    return 77;
}
#endif
