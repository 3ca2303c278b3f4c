#include "cpu-kernels.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "hr-half.h"

/* FP16 -> FP32 through a 256 KiB table, filled once. */
static float f16_table[65536];
static pthread_once_t f16_once = PTHREAD_ONCE_INIT;

static void
fill_f16_table(void)
{
    for (uint32_t i = 0; i < 65536; i++)
        f16_table[i] = hr_f16_to_f32((uint16_t)i);
}

void
hr_mat_row_f32(const HrMat *m, int r, float *dst, int n)
{
    size_t off = (size_t)r * (size_t)m->cols;
    switch (m->dtype) {
    case HR_DTYPE_F32:
        memcpy(dst, (const float *)m->data + off, sizeof(float) * (size_t)n);
        break;
    case HR_DTYPE_F16: {
        pthread_once(&f16_once, fill_f16_table);
        const uint16_t *src = (const uint16_t *)m->data + off;
        for (int i = 0; i < n; i++)
            dst[i] = f16_table[src[i]];
        break;
    }
    case HR_DTYPE_BF16: {
        const uint16_t *src = (const uint16_t *)m->data + off;
        for (int i = 0; i < n; i++)
            dst[i] = hr_bf16_to_f32(src[i]);
        break;
    }
    default:
        memset(dst, 0, sizeof(float) * (size_t)n);
        break;
    }
}

static inline float
dot(const float *a, const float *b, int n)
{
    float s = 0.0f;
    for (int i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

/* ---- row kernels: W row (F32/F16/BF16) . x for several x ---------------------
 * The scalar versions are the reference; on x86-64 with AVX2+FMA+F16C the
 * vector versions are picked at run time. Both accumulate in FP32. */

static void
row_dot_scalar(const HrMat *m, const void *w, const float *x, int cols, int n, size_t x_stride, float *acc,
               float *tmp)
{
    const float *wr = w;
    if (m->dtype != HR_DTYPE_F32) {
        hr_mat_row_f32(&(HrMat){ w, m->dtype, 1, cols }, 0, tmp, cols);
        wr = tmp;
    }
    for (int t = 0; t < n; t++)
        acc[t] = dot(wr, x + (size_t)t * x_stride, cols);
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

__attribute__((target("avx2,fma,f16c"))) static inline float
hsum256(__m256 v)
{
    __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
    lo = _mm_add_ps(lo, hi);
    lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
    lo = _mm_add_ss(lo, _mm_movehdup_ps(lo));
    return _mm_cvtss_f32(lo);
}

/* Load 8 weights as FP32. */
__attribute__((target("avx2,fma,f16c"))) static inline __m256
load8(const void *w, HrDType dt, int i)
{
    switch (dt) {
    case HR_DTYPE_F16:
        return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)w + i)));
    case HR_DTYPE_BF16: {
        __m256i h = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)((const uint16_t *)w + i)));
        return _mm256_castsi256_ps(_mm256_slli_epi32(h, 16));
    }
    default:
        return _mm256_loadu_ps((const float *)w + i);
    }
}

__attribute__((target("avx2,fma,f16c"))) static float
load1(const void *w, HrDType dt, int i)
{
    switch (dt) {
    case HR_DTYPE_F16: return hr_f16_to_f32(((const uint16_t *)w)[i]);
    case HR_DTYPE_BF16: return hr_bf16_to_f32(((const uint16_t *)w)[i]);
    default: return ((const float *)w)[i];
    }
}

/* Up to 4 activation rows share each weight load. */
__attribute__((target("avx2,fma,f16c"))) static void
row_dot_avx2(const HrMat *m, const void *w, const float *x, int cols, int n, size_t x_stride, float *acc,
             float *tmp)
{
    (void)tmp;
    const HrDType dt = m->dtype;
    const int c8 = cols & ~7;
    for (int t0 = 0; t0 < n; t0 += 4) {
        int nt = n - t0 < 4 ? n - t0 : 4;
        __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
        const float *x0 = x + (size_t)t0 * x_stride;
        for (int i = 0; i < c8; i += 8) {
            __m256 wv = load8(w, dt, i);
            s0 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x0 + i), s0);
            if (nt > 1) s1 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x0 + x_stride + i), s1);
            if (nt > 2) s2 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x0 + 2 * x_stride + i), s2);
            if (nt > 3) s3 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x0 + 3 * x_stride + i), s3);
        }
        float r[4] = { hsum256(s0), hsum256(s1), hsum256(s2), hsum256(s3) };
        for (int i = c8; i < cols; i++) {
            float wi = load1(w, dt, i);
            for (int k = 0; k < nt; k++)
                r[k] += wi * x0[(size_t)k * x_stride + i];
        }
        for (int k = 0; k < nt; k++)
            acc[t0 + k] = r[k];
    }
}

static bool
have_avx2(void)
{
    static int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init();
        cached = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
        if (g_getenv("HEARTH_CPU_SCALAR"))
            cached = 0;
    }
    return cached;
}
#endif

typedef struct {
    float *out;
    const HrMat *w;
    const float *bias, *x, *residual;
    int n;
} MatmulJob;

static void
matmul_rows(void *arg, int r0, int r1)
{
    const MatmulJob *j = arg;
    const HrMat *w = j->w;
    const int rows = w->rows, cols = w->cols;
    const size_t esize = hr_dtype_size(w->dtype);
    void (*row_dot)(const HrMat *, const void *, const float *, int, int, size_t, float *, float *) = row_dot_scalar;
#if defined(__x86_64__) && defined(__GNUC__)
    if (have_avx2())
        row_dot = row_dot_avx2;
#endif
    /* Per-call scratch off the heap only when needed: the row buffer is for
     * the scalar path's F16/BF16 conversion, and a decode or prefill chunk
     * (n <= 64) keeps its accumulators on the stack. */
    float *tmp = (row_dot == row_dot_scalar && w->dtype != HR_DTYPE_F32) ? g_new(float, cols) : NULL;
    float acc_stack[64];
    float *acc = j->n <= 64 ? acc_stack : g_new(float, j->n);
    for (int r = r0; r < r1; r++) {
        row_dot(w, (const char *)w->data + (size_t)r * cols * esize, j->x, cols, j->n, (size_t)cols, acc, tmp);
        float b = j->bias ? j->bias[r] : 0.0f;
        for (int t = 0; t < j->n; t++) {
            size_t o = (size_t)t * rows + r;
            float v = acc[t] + b;
            j->out[o] = j->residual ? j->residual[o] + v : v;
        }
    }
    if (acc != acc_stack)
        g_free(acc);
    g_free(tmp);
}

void
hr_matmul(HrThreadPool *pool, float *out, const HrMat *w, const float *bias, const float *x, int n,
          const float *residual)
{
    MatmulJob job = { out, w, bias, x, residual, n };
    /* Small matrices are not worth waking the workers for. */
    if ((size_t)w->rows * (size_t)w->cols * (size_t)n < 32768)
        pool = NULL;
    hr_pool_run(pool, matmul_rows, &job, w->rows, 16);
}

/* ---- 4-bit group-quantized matrices (AWQ) ------------------------------------ */

size_t
hr_qmat_bytes(const HrQMat *m)
{
    return (size_t)m->rows * (size_t)(m->cols / 2) + 2 * sizeof(float) * (size_t)m->rows * (size_t)m->n_groups;
}

void
hr_qmat_free(HrQMat *m)
{
    if (!m)
        return;
    g_free(m->q);
    g_free(m->scale);
    g_free(m->szero);
    memset(m, 0, sizeof *m);
}

void
hr_qmat_row_f32(const HrQMat *m, int r, float *dst)
{
    const uint8_t *qr = m->q + (size_t)r * (size_t)(m->cols / 2);
    for (int k = 0; k < m->cols; k++) {
        int q = (k & 1) ? qr[k / 2] >> 4 : qr[k / 2] & 15;
        size_t gi = (size_t)r * (size_t)m->n_groups + (size_t)(k / m->group);
        dst[k] = (float)q * m->scale[gi] - m->szero[gi];
    }
}

/* sum over one group of q[k] * x[k]; qb holds group/2 bytes. */
static inline float
q4_dot_scalar(const uint8_t *qb, const float *x, int len)
{
    float s = 0.0f;
    for (int i = 0; i < len / 2; i++) {
        s += (float)(qb[i] & 15) * x[2 * i];
        s += (float)(qb[i] >> 4) * x[2 * i + 1];
    }
    return s;
}

#if defined(__x86_64__) && defined(__GNUC__)
/* One output row against nt <= 4 activation rows; each decoded weight load
 * is shared by the rows, and the per-group scale is applied to vector
 * partial sums, so there is one horizontal sum per row and token:
 * r[t] = sum_g (s_g * sum_k q*x[t] - (s*z)_g * xsum[t][g]). */
__attribute__((target("avx2,fma,f16c"))) static void
q4_row_avx2(const uint8_t *qr, const float *sc, const float *sz, const float *x, size_t x_stride, int nt,
            const float *xsum, int ng, int g, float *r)
{
    __m256 acc[4] = { _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps() };
    float zsum[4] = { 0 };
    /* Nibble i of the little-endian uint32 at byte 4j is input 8j + i, so a
     * broadcast word shifted by 0,4,..,28 per lane gives 8 inputs in order
     * with no shuffles. */
    const __m256i shifts = _mm256_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28);
    const __m256i mask = _mm256_set1_epi32(15);
    for (int gi = 0; gi < ng; gi++) {
        __m256 part[4] = { _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps() };
        const uint8_t *qb = qr + (size_t)gi * (size_t)(g / 2);
        const float *xg = x + (size_t)gi * (size_t)g;
        for (int i = 0; i < g; i += 16) {
            int32_t w0, w1;
            memcpy(&w0, qb + i / 2, 4);
            memcpy(&w1, qb + i / 2 + 4, 4);
            __m256 q0 = _mm256_cvtepi32_ps(_mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32(w0), shifts), mask));
            __m256 q1 = _mm256_cvtepi32_ps(_mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32(w1), shifts), mask));
            for (int t = 0; t < nt; t++) {
                const float *xt = xg + (size_t)t * x_stride + i;
                part[t] = _mm256_fmadd_ps(q0, _mm256_loadu_ps(xt), part[t]);
                part[t] = _mm256_fmadd_ps(q1, _mm256_loadu_ps(xt + 8), part[t]);
            }
        }
        __m256 s = _mm256_set1_ps(sc[gi]);
        for (int t = 0; t < nt; t++) {
            acc[t] = _mm256_fmadd_ps(s, part[t], acc[t]);
            zsum[t] += sz[gi] * xsum[(size_t)t * ng + gi];
        }
    }
    for (int t = 0; t < nt; t++)
        r[t] = hsum256(acc[t]) - zsum[t];
}
#endif

typedef struct {
    float *out;
    const HrQMat *w;
    const float *bias, *x, *residual;
    const float *xsum; /* [n, n_groups] */
    int n;
} Q4Job;

static void
matmul_q4_rows(void *arg, int r0, int r1)
{
    const Q4Job *j = arg;
    const HrQMat *w = j->w;
    const int rows = w->rows, cols = w->cols, g = w->group, ng = w->n_groups;
#if defined(__x86_64__) && defined(__GNUC__)
    if (have_avx2() && g % 16 == 0) {
        for (int r = r0; r < r1; r++) {
            const uint8_t *qr = w->q + (size_t)r * (size_t)(cols / 2);
            const float *sc = w->scale + (size_t)r * ng, *sz = w->szero + (size_t)r * ng;
            float b = j->bias ? j->bias[r] : 0.0f;
            for (int t0 = 0; t0 < j->n; t0 += 4) {
                int nt = j->n - t0 < 4 ? j->n - t0 : 4;
                float acc[4];
                q4_row_avx2(qr, sc, sz, j->x + (size_t)t0 * cols, (size_t)cols, nt, j->xsum + (size_t)t0 * ng, ng, g,
                            acc);
                for (int t = 0; t < nt; t++) {
                    size_t o = (size_t)(t0 + t) * rows + r;
                    float v = acc[t] + b;
                    j->out[o] = j->residual ? j->residual[o] + v : v;
                }
            }
        }
        return;
    }
#endif
    for (int r = r0; r < r1; r++) {
        const uint8_t *qr = w->q + (size_t)r * (size_t)(cols / 2);
        const float *sc = w->scale + (size_t)r * ng, *sz = w->szero + (size_t)r * ng;
        float b = j->bias ? j->bias[r] : 0.0f;
        for (int t = 0; t < j->n; t++) {
            const float *xt = j->x + (size_t)t * cols;
            const float *xs = j->xsum + (size_t)t * ng;
            float acc = 0.0f;
            for (int gi = 0; gi < ng; gi++)
                acc += sc[gi] * q4_dot_scalar(qr + (size_t)gi * (g / 2), xt + (size_t)gi * g, g) - sz[gi] * xs[gi];
            size_t o = (size_t)t * rows + r;
            float v = acc + b;
            j->out[o] = j->residual ? j->residual[o] + v : v;
        }
    }
}

void
hr_matmul_q4(HrThreadPool *pool, float *out, const HrQMat *w, const float *bias, const float *x, int n,
             const float *residual)
{
    float *xsum = g_new(float, (size_t)n * w->n_groups);
    for (int t = 0; t < n; t++) {
        for (int gi = 0; gi < w->n_groups; gi++) {
            const float *xg = x + (size_t)t * w->cols + (size_t)gi * w->group;
            float s = 0.0f;
            for (int i = 0; i < w->group; i++)
                s += xg[i];
            xsum[(size_t)t * w->n_groups + gi] = s;
        }
    }
    Q4Job job = { out, w, bias, x, residual, xsum, n };
    if ((size_t)w->rows * (size_t)w->cols * (size_t)n < 32768)
        pool = NULL;
    hr_pool_run(pool, matmul_q4_rows, &job, w->rows, 16);
    g_free(xsum);
}

void
hr_rmsnorm(float *out, const float *x, const float *weight, int n, float eps)
{
    float ss = 0.0f;
    for (int i = 0; i < n; i++)
        ss += x[i] * x[i];
    float inv = 1.0f / sqrtf(ss / (float)n + eps);
    for (int i = 0; i < n; i++)
        out[i] = weight[i] * (x[i] * inv);
}
