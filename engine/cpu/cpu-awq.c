/* cpu-awq.c — CPU kernels of the AWQ search (see cpu-awq.h). */
#include "cpu-awq.h"

#include <math.h>
#include <string.h>

#include <glib.h>

#include "cpu-exp.h"
#include "cpu-kernels.h"
#include "hr-half.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define AWQ_X86 1
#define AWQ_AVX512 __attribute__((target("avx512f,avx512vl,avx512dq,avx2,fma")))
#endif

enum { ATT_QB = 4 }; /* query rows per attention item (their scores share the K loads) */
/* Softmax weights below e^-69 (1e-30 of the largest) are 0: their products
 * with V would be denormals, which cost an x86 core ~100 cycles each
 * (measured: stories260K layers 1 and 3 ran 2-4x slower than the others),
 * and they are below FP32's resolution of any sum they join. */
#define ATT_FLUSH -69.0f

/* ---- exp ------------------------------------------------------------------------ */


float
hr_awq_exp_ref(float x)
{
    if (isnan(x))
        return x;
    float c = fminf(fmaxf(x, EXP_LO), EXP_HI);
    float n = rintf(c * EXP_LOG2E);
    float r = fmaf(n, -EXP_LN2_HI, c);
    r = fmaf(n, -EXP_LN2_LO, r);
    float p = 1.0f / 5040.0f;
    p = fmaf(p, r, 1.0f / 720.0f);
    p = fmaf(p, r, 1.0f / 120.0f);
    p = fmaf(p, r, 1.0f / 24.0f);
    p = fmaf(p, r, 1.0f / 6.0f);
    p = fmaf(p, r, 0.5f);
    p = fmaf(p, r, 1.0f);
    p = fmaf(p, r, 1.0f);
    return ldexpf(p, (int)n);
}


/* ---- SiLU * up -------------------------------------------------------------------- */

typedef struct {
    float *g;
    const float *u;
    const float *sub;   /* NULL, or subtracted from each result */
    size_t n;
} SiluJob;

enum { SILU_BLOCK = 4096 };

#ifdef AWQ_X86
AWQ_AVX512 static void
silu_avx512(float *g, const float *u, const float *sub, size_t n)
{
    const __m512 one = _mm512_set1_ps(1.0f);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 x = _mm512_loadu_ps(g + i);
        __m512 e = hr_exp16(_mm512_sub_ps(_mm512_setzero_ps(), x));
        __m512 r = _mm512_mul_ps(_mm512_div_ps(x, _mm512_add_ps(one, e)), _mm512_loadu_ps(u + i));
        _mm512_storeu_ps(g + i, sub ? _mm512_sub_ps(r, _mm512_loadu_ps(sub + i)) : r);
    }
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1u);
        __m512 x = _mm512_maskz_loadu_ps(m, g + i);
        __m512 e = hr_exp16(_mm512_sub_ps(_mm512_setzero_ps(), x));
        __m512 r = _mm512_mul_ps(_mm512_div_ps(x, _mm512_add_ps(one, e)), _mm512_maskz_loadu_ps(m, u + i));
        _mm512_mask_storeu_ps(g + i, m, sub ? _mm512_sub_ps(r, _mm512_maskz_loadu_ps(m, sub + i)) : r);
    }
}
#endif

static void
silu_range(void *arg, int start, int end)
{
    SiluJob *J = arg;
    size_t a = (size_t)start * SILU_BLOCK, b = MIN((size_t)end * SILU_BLOCK, J->n);
#ifdef AWQ_X86
    if (hr_cpu_avx512()) {
        silu_avx512(J->g + a, J->u + a, J->sub ? J->sub + a : NULL, b - a);
        return;
    }
#endif
    for (size_t i = a; i < b; i++) {
        const float r = J->g[i] / (1.0f + hr_awq_exp_ref(-J->g[i])) * J->u[i];
        J->g[i] = J->sub ? r - J->sub[i] : r;
    }
}

void
hr_awq_silu_mul(HrThreadPool *pool, float *g, const float *u, size_t n)
{
    hr_awq_silu_mul_sub(pool, g, u, NULL, n);
}

void
hr_awq_silu_mul_sub(HrThreadPool *pool, float *g, const float *u, const float *sub, size_t n)
{
    SiluJob J = { g, u, sub, n };
    hr_cpu_avx512();
    hr_pool_run(pool, silu_range, &J, (int)((n + SILU_BLOCK - 1) / SILU_BLOCK), 1);
}

/* ---- causal attention ------------------------------------------------------------- */

static int
pad16(int L)
{
    return (L + 15) & ~15;
}

size_t
hr_awq_attention_scratch(int n_win, int L, int nkv, int hd)
{
    return (size_t)n_win * nkv * hd * pad16(L);
}

typedef struct {
    const float *q, *k, *v;
    float *out, *kt, *vt;
    int n_win, L, Lp, nh, nkv, hd;
    float scale;
} AttnJob;

/* kt/vt[(w*nkv + h)*hd + i][t] = k/v[w*L + t][h*hd + i], rows padded with 0 to Lp. */
static void
attn_transpose_range(void *arg, int start, int end)
{
    AttnJob *J = arg;
    const int L = J->L, Lp = J->Lp, hd = J->hd, kvd = J->nkv * hd;
    for (int it = start; it < end; it++) {
        int w = it / J->nkv, h = it % J->nkv;
        float *kt = J->kt + (size_t)it * hd * Lp, *vt = J->vt + (size_t)it * hd * Lp;
        const float *k = J->k + (size_t)w * L * kvd + (size_t)h * hd, *v = J->v + (size_t)w * L * kvd + (size_t)h * hd;
        for (int t = 0; t < L; t++) {
            for (int i = 0; i < hd; i++) {
                kt[(size_t)i * Lp + t] = k[(size_t)t * kvd + i];
                vt[(size_t)i * Lp + t] = v[(size_t)t * kvd + i];
            }
        }
        for (int i = 0; i < hd; i++) {
            for (int t = L; t < Lp; t++) {
                kt[(size_t)i * Lp + t] = 0.0f;
                vt[(size_t)i * Lp + t] = 0.0f;
            }
        }
    }
}

/* One item: query rows t0..t0+nq-1 of query head hq of window w. sc is
 * ATT_QB rows of Lp floats. */
static void
attn_item_scalar(const AttnJob *J, int w, int hq, int t0, int nq, float *sc)
{
    const int L = J->L, Lp = J->Lp, hd = J->hd, qd = J->nh * hd, h = hq / (J->nh / J->nkv);
    const float *kt = J->kt + (size_t)(w * J->nkv + h) * hd * Lp, *vt = J->vt + (size_t)(w * J->nkv + h) * hd * Lp;
    for (int j = 0; j < nq; j++) {
        const int t = t0 + j, n = t + 1;
        const float *q = J->q + ((size_t)w * L + t) * qd + (size_t)hq * hd;
        float *s = sc + (size_t)j * Lp, mx = -INFINITY;
        for (int u = 0; u < n; u++) {
            float d = 0.0f;
            for (int i = 0; i < hd; i++)
                d = fmaf(q[i], kt[(size_t)i * Lp + u], d);
            s[u] = d;
            mx = fmaxf(mx, d * J->scale);
        }
        float sum = 0.0f;
        for (int u = 0; u < n; u++) {
            float x = s[u] * J->scale - mx;
            s[u] = x >= ATT_FLUSH ? hr_awq_exp_ref(x) : 0.0f;
            sum += s[u];
        }
        float inv = 1.0f / sum;
        float *o = J->out + ((size_t)w * L + t) * qd + (size_t)hq * hd;
        for (int i = 0; i < hd; i++) {
            float a = 0.0f;
            for (int u = 0; u < n; u++)
                a = fmaf(s[u] * inv, vt[(size_t)i * Lp + u], a);
            o[i] = a;
        }
    }
}

#ifdef AWQ_X86
AWQ_AVX512 static void
attn_item_avx512(const AttnJob *J, int w, int hq, int t0, int nq, float *sc)
{
    const int L = J->L, Lp = J->Lp, hd = J->hd, qd = J->nh * hd, h = hq / (J->nh / J->nkv);
    const float *kt = J->kt + (size_t)(w * J->nkv + h) * hd * Lp, *vt = J->vt + (size_t)(w * J->nkv + h) * hd * Lp;
    const float *q[ATT_QB];
    for (int j = 0; j < ATT_QB; j++)
        q[j] = J->q + ((size_t)w * L + t0 + MIN(j, nq - 1)) * qd + (size_t)hq * hd;
    const int nu = pad16(t0 + nq); /* keys 0..t0+nq-1, in blocks of 16 */
    /* scores of the ATT_QB rows (rows past nq repeat the last, dropped),
     * two key blocks at a time: 8 independent FMA chains */
    int ub = 0;
    for (; ub + 32 <= nu; ub += 32) {
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
        for (int i = 0; i < hd; i++) {
            __m512 kv = _mm512_loadu_ps(kt + (size_t)i * Lp + ub), kw = _mm512_loadu_ps(kt + (size_t)i * Lp + ub + 16);
            __m512 q0 = _mm512_set1_ps(q[0][i]), q1 = _mm512_set1_ps(q[1][i]);
            __m512 q2 = _mm512_set1_ps(q[2][i]), q3 = _mm512_set1_ps(q[3][i]);
            a0 = _mm512_fmadd_ps(q0, kv, a0);
            a1 = _mm512_fmadd_ps(q1, kv, a1);
            a2 = _mm512_fmadd_ps(q2, kv, a2);
            a3 = _mm512_fmadd_ps(q3, kv, a3);
            b0 = _mm512_fmadd_ps(q0, kw, b0);
            b1 = _mm512_fmadd_ps(q1, kw, b1);
            b2 = _mm512_fmadd_ps(q2, kw, b2);
            b3 = _mm512_fmadd_ps(q3, kw, b3);
        }
        _mm512_storeu_ps(sc + ub, a0);
        _mm512_storeu_ps(sc + (size_t)Lp + ub, a1);
        _mm512_storeu_ps(sc + 2 * (size_t)Lp + ub, a2);
        _mm512_storeu_ps(sc + 3 * (size_t)Lp + ub, a3);
        _mm512_storeu_ps(sc + ub + 16, b0);
        _mm512_storeu_ps(sc + (size_t)Lp + ub + 16, b1);
        _mm512_storeu_ps(sc + 2 * (size_t)Lp + ub + 16, b2);
        _mm512_storeu_ps(sc + 3 * (size_t)Lp + ub + 16, b3);
    }
    for (; ub < nu; ub += 16) {
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (int i = 0; i < hd; i++) {
            __m512 kv = _mm512_loadu_ps(kt + (size_t)i * Lp + ub);
            a0 = _mm512_fmadd_ps(_mm512_set1_ps(q[0][i]), kv, a0);
            a1 = _mm512_fmadd_ps(_mm512_set1_ps(q[1][i]), kv, a1);
            a2 = _mm512_fmadd_ps(_mm512_set1_ps(q[2][i]), kv, a2);
            a3 = _mm512_fmadd_ps(_mm512_set1_ps(q[3][i]), kv, a3);
        }
        _mm512_storeu_ps(sc + ub, a0);
        _mm512_storeu_ps(sc + (size_t)Lp + ub, a1);
        _mm512_storeu_ps(sc + 2 * (size_t)Lp + ub, a2);
        _mm512_storeu_ps(sc + 3 * (size_t)Lp + ub, a3);
    }
    const __m512 scale = _mm512_set1_ps(J->scale);
    for (int j = 0; j < nq; j++) {
        const int t = t0 + j, n = t + 1, n16 = pad16(n);
        float *s = sc + (size_t)j * Lp;
        /* keys past t: -inf before the max, 0 after the exp */
        __m512 mx = _mm512_set1_ps(-INFINITY);
        for (int u0 = 0; u0 < n16; u0 += 16) {
            __mmask16 m = n - u0 >= 16 ? 0xffff : (__mmask16)((1u << (n - u0)) - 1u);
            mx = _mm512_mask_max_ps(mx, m, mx, _mm512_mul_ps(_mm512_loadu_ps(s + u0), scale));
        }
        const __m512 mxv = _mm512_set1_ps(_mm512_reduce_max_ps(mx));
        __m512 sum = _mm512_setzero_ps();
        for (int u0 = 0; u0 < n16; u0 += 16) {
            __mmask16 m = n - u0 >= 16 ? 0xffff : (__mmask16)((1u << (n - u0)) - 1u);
            __m512 x = _mm512_sub_ps(_mm512_mul_ps(_mm512_loadu_ps(s + u0), scale), mxv);
            m &= _mm512_cmp_ps_mask(x, _mm512_set1_ps(ATT_FLUSH), _CMP_GE_OQ);
            /* (the exp of a flushed lane is not computed: x is raised to the
             * threshold first, or it would make denormals of its own) */
            __m512 e = _mm512_maskz_mov_ps(m, hr_exp16(_mm512_max_ps(x, _mm512_set1_ps(ATT_FLUSH))));
            _mm512_storeu_ps(s + u0, e);
            sum = _mm512_add_ps(sum, e);
        }
        const __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(sum));
        for (int u0 = 0; u0 < n16; u0 += 16)
            _mm512_storeu_ps(s + u0, _mm512_mul_ps(_mm512_loadu_ps(s + u0), inv));
        float *o = J->out + ((size_t)w * L + t) * qd + (size_t)hq * hd;
        /* 8 output dims per pass over p: 8 independent FMA chains */
        int i = 0;
        for (; i + 8 <= hd; i += 8) {
            const float *v0 = vt + (size_t)i * Lp;
            __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
            for (int u = 0; u < n16; u += 16) {
                __m512 p = _mm512_loadu_ps(s + u);
                a0 = _mm512_fmadd_ps(p, _mm512_loadu_ps(v0 + u), a0);
                a1 = _mm512_fmadd_ps(p, _mm512_loadu_ps(v0 + (size_t)Lp + u), a1);
                a2 = _mm512_fmadd_ps(p, _mm512_loadu_ps(v0 + 2 * (size_t)Lp + u), a2);
                a3 = _mm512_fmadd_ps(p, _mm512_loadu_ps(v0 + 3 * (size_t)Lp + u), a3);
                a4 = _mm512_fmadd_ps(p, _mm512_loadu_ps(v0 + 4 * (size_t)Lp + u), a4);
                a5 = _mm512_fmadd_ps(p, _mm512_loadu_ps(v0 + 5 * (size_t)Lp + u), a5);
                a6 = _mm512_fmadd_ps(p, _mm512_loadu_ps(v0 + 6 * (size_t)Lp + u), a6);
                a7 = _mm512_fmadd_ps(p, _mm512_loadu_ps(v0 + 7 * (size_t)Lp + u), a7);
            }
            o[i] = _mm512_reduce_add_ps(a0);
            o[i + 1] = _mm512_reduce_add_ps(a1);
            o[i + 2] = _mm512_reduce_add_ps(a2);
            o[i + 3] = _mm512_reduce_add_ps(a3);
            o[i + 4] = _mm512_reduce_add_ps(a4);
            o[i + 5] = _mm512_reduce_add_ps(a5);
            o[i + 6] = _mm512_reduce_add_ps(a6);
            o[i + 7] = _mm512_reduce_add_ps(a7);
        }
        for (; i < hd; i++) {
            __m512 a0 = _mm512_setzero_ps();
            for (int u0 = 0; u0 < n16; u0 += 16)
                a0 = _mm512_fmadd_ps(_mm512_loadu_ps(s + u0), _mm512_loadu_ps(vt + (size_t)i * Lp + u0), a0);
            o[i] = _mm512_reduce_add_ps(a0);
        }
    }
}
#endif

static void
attn_range(void *arg, int start, int end)
{
    AttnJob *J = arg;
    const int nqb = (J->L + ATT_QB - 1) / ATT_QB;
    float *sc = g_new(float, (size_t)ATT_QB * J->Lp);
    for (int it = start; it < end; it++) {
        int w = it / (J->nh * nqb), hq = it / nqb % J->nh, qb = it % nqb;
        int t0 = qb * ATT_QB, nq = MIN(ATT_QB, J->L - t0);
#ifdef AWQ_X86
        if (hr_cpu_avx512()) {
            attn_item_avx512(J, w, hq, t0, nq, sc);
            continue;
        }
#endif
        attn_item_scalar(J, w, hq, t0, nq, sc);
    }
    g_free(sc);
}

void
hr_awq_attention(HrThreadPool *pool, const float *q, const float *k, const float *v, float *out, int n_win, int L,
                 int nh, int nkv, int hd, float scale, float *kt, float *vt)
{
    AttnJob J = { q, k, v, out, kt, vt, n_win, L, pad16(L), nh, nkv, hd, scale };
    hr_cpu_avx512();
    hr_pool_run(pool, attn_transpose_range, &J, n_win * nkv, 1);
    hr_pool_run(pool, attn_range, &J, n_win * nh * ((L + ATT_QB - 1) / ATT_QB), 1);
}

/* ---- reductions ------------------------------------------------------------------- */

typedef struct {
    const float *a, *b;
    size_t cols;
    double *rows;
    bool diff;
} ReduceJob;

#ifdef AWQ_X86
AWQ_AVX512 static double
reduce_row_avx512(const float *a, const float *b, size_t n, bool diff)
{
    __m512d acc0 = _mm512_setzero_pd(), acc1 = acc0;
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 va = _mm512_loadu_ps(a + i), vb = _mm512_loadu_ps(b + i);
        __m512d a0 = _mm512_cvtps_pd(_mm512_castps512_ps256(va)), a1 = _mm512_cvtps_pd(_mm512_extractf32x8_ps(va, 1));
        __m512d b0 = _mm512_cvtps_pd(_mm512_castps512_ps256(vb)), b1 = _mm512_cvtps_pd(_mm512_extractf32x8_ps(vb, 1));
        if (diff) {
            a0 = _mm512_sub_pd(a0, b0);
            a1 = _mm512_sub_pd(a1, b1);
            acc0 = _mm512_fmadd_pd(a0, a0, acc0);
            acc1 = _mm512_fmadd_pd(a1, a1, acc1);
        } else {
            acc0 = _mm512_fmadd_pd(a0, b0, acc0);
            acc1 = _mm512_fmadd_pd(a1, b1, acc1);
        }
    }
    double s = _mm512_reduce_add_pd(_mm512_add_pd(acc0, acc1));
    for (; i < n; i++) {
        double d = diff ? (double)a[i] - b[i] : (double)a[i] * b[i];
        s += diff ? d * d : d;
    }
    return s;
}
#endif

static void
reduce_range(void *arg, int start, int end)
{
    ReduceJob *J = arg;
    for (int r = start; r < end; r++) {
        const float *a = J->a + (size_t)r * J->cols, *b = J->b + (size_t)r * J->cols;
#ifdef AWQ_X86
        if (hr_cpu_avx512()) {
            J->rows[r] = reduce_row_avx512(a, b, J->cols, J->diff);
            continue;
        }
#endif
        double s = 0.0;
        for (size_t i = 0; i < J->cols; i++) {
            double d = J->diff ? (double)a[i] - b[i] : (double)a[i] * b[i];
            s += J->diff ? d * d : d;
        }
        J->rows[r] = s;
    }
}

static double
reduce(HrThreadPool *pool, const float *a, const float *b, size_t rows, size_t cols, bool diff)
{
    ReduceJob J = { a, b, cols, g_new(double, rows ? rows : 1), diff };
    hr_cpu_avx512();
    hr_pool_run(pool, reduce_range, &J, (int)rows, 1);
    double s = 0.0;
    for (size_t r = 0; r < rows; r++)
        s += J.rows[r];
    g_free(J.rows);
    return s;
}

double
hr_awq_sq_diff(HrThreadPool *pool, const float *a, const float *b, size_t rows, size_t cols)
{
    return reduce(pool, a, b, rows, cols, true);
}

double
hr_awq_dot(HrThreadPool *pool, const float *a, const float *b, size_t rows, size_t cols)
{
    return reduce(pool, a, b, rows, cols, false);
}

/* ---- fake quantization ----------------------------------------------------------- */

#ifdef AWQ_X86

static bool
fake_quant_avx512(void)
{
    static gsize once = 0;
    static bool yes;
    if (g_once_init_enter(&once)) {
        __builtin_cpu_init();
        yes = __builtin_cpu_supports("avx512f") && !g_getenv("HEARTH_CPU_SCALAR");
        g_once_init_leave(&once, 1);
    }
    return yes;
}

/* hr_awq_fake_quant_row for g % 16 == 0, the same bits: min/max are exact
 * in any order, w / s and the clamps are the same IEEE operations, and
 * roundf (half away from zero) is trunc(y) + sign(y) where |y - trunc(y)| >= 0.5
 * (y - trunc(y) is exact). */
__attribute__((target("avx512f"))) static void
fake_quant_row_avx512(const float *w, int K, int g, int bits, float *out)
{
    const float qmax = (float)((1 << bits) - 1);
    const __m512 zero = _mm512_setzero_ps(), half = _mm512_set1_ps(0.5f), one = _mm512_set1_ps(1.0f);
    const __m512 vqmax = _mm512_set1_ps(qmax);
    const __m512i sign = _mm512_set1_epi32((int)0x80000000u);
    for (int g0 = 0; g0 + g <= K; g0 += g) {
        const float *wg = w + g0;
        __m512 vmn = zero, vmx = zero;
        for (int i = 0; i < g; i += 16) {
            __m512 v = _mm512_loadu_ps(wg + i);
            vmn = _mm512_min_ps(v, vmn);  /* a NaN weight is skipped, as fminf does */
            vmx = _mm512_max_ps(v, vmx);
        }
        float mn = _mm512_reduce_min_ps(vmn), mx = _mm512_reduce_max_ps(vmx);
        float s = (mx - mn) / qmax;
        if (!(s >= 1e-7f))
            s = 1e-7f;
        s = hr_f16_to_f32(hr_f16_round_up(s));
        float z = fminf(fmaxf(-roundf(mn / s), 0.0f), qmax);
        const __m512 vs = _mm512_set1_ps(s), vz = _mm512_set1_ps(z);
        for (int i = 0; i < g; i += 16) {
            __m512 y = _mm512_div_ps(_mm512_loadu_ps(wg + i), vs);
            __m512 t = _mm512_roundscale_ps(y, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
            __mmask16 up = _mm512_cmp_ps_mask(_mm512_abs_ps(_mm512_sub_ps(y, t)), half, _CMP_GE_OQ);
            __m512 sg = _mm512_castsi512_ps(_mm512_or_si512(_mm512_and_si512(_mm512_castps_si512(y), sign),
                                                            _mm512_castps_si512(one)));
            t = _mm512_mask_add_ps(t, up, t, sg);
            __m512 q = _mm512_min_ps(_mm512_max_ps(_mm512_add_ps(t, vz), zero), vqmax);
            _mm512_storeu_ps(out + g0 + i, _mm512_mul_ps(_mm512_sub_ps(q, vz), vs));
        }
    }
}
#endif

void
hr_awq_fake_quant_row(const float *w, int K, int g, int bits, float *out)
{
    const float qmax = (float)((1 << bits) - 1);
#ifdef AWQ_X86
    if (g % 16 == 0 && fake_quant_avx512()) {
        fake_quant_row_avx512(w, K, g, bits, out);
        return;
    }
#endif
    for (int g0 = 0; g0 + g <= K; g0 += g) {
        const float *wg = w + g0;
        float mn = 0.0f, mx = 0.0f;
        for (int i = 0; i < g; i++) {
            mn = fminf(mn, wg[i]);
            mx = fmaxf(mx, wg[i]);
        }
        float s = (mx - mn) / qmax;
        if (!(s >= 1e-7f))
            s = 1e-7f;
        s = hr_f16_to_f32(hr_f16_round_up(s));
        float z = fminf(fmaxf(-roundf(mn / s), 0.0f), qmax);
        for (int i = 0; i < g; i++) {
            float q = fminf(fmaxf(roundf(wg[i] / s) + z, 0.0f), qmax);
            out[g0 + i] = (q - z) * s;
        }
    }
}

/* ---- clip search ---------------------------------------------------------------- */

typedef struct {
    const float *x, *w;
    size_t ldx;
    int K, nt, g, g0, bits, steps, grid, ng, gi;
    double *C;          /* [g, g] */
    float *lim;
} ClipJob;

/* rows i of the group's Gram matrix, t in order */
static void
clip_gram_rows(void *arg, int start, int end)
{
    ClipJob *J = arg;
    for (int i = start; i < end; i++) {
        double *ci = J->C + (size_t)i * J->g;
        for (int j = 0; j < J->g; j++)
            ci[j] = 0.0;
        for (int t = 0; t < J->nt; t++) {
            const float *xt = J->x + (size_t)t * J->ldx + J->g0;
            const double xi = xt[i];
            for (int j = 0; j < J->g; j++)
                ci[j] += xi * xt[j];
        }
    }
}

static void
clip_rows(void *arg, int start, int end)
{
    ClipJob *J = arg;
    const int g = J->g;
    float *cw = g_new(float, (size_t)g);
    double *d = g_new(double, (size_t)g);
    for (int n = start; n < end; n++) {
        const float *w = J->w + (size_t)n * J->K + J->g0;
        float m0 = 0.0f;
        for (int i = 0; i < g; i++)
            m0 = fmaxf(m0, fabsf(w[i]));
        float best_m = m0;
        double best = INFINITY;
        for (int s = 0; s < J->steps; s++) {
            const float m = m0 * (1.0f - (float)s / (float)J->grid);
            for (int i = 0; i < g; i++)
                cw[i] = fminf(fmaxf(w[i], -m), m);
            hr_awq_fake_quant_row(cw, g, g, J->bits, cw);
            for (int i = 0; i < g; i++)
                d[i] = (double)cw[i] - w[i];
            double err = 0.0;
            for (int i = 0; i < g; i++) {
                const double *ci = J->C + (size_t)i * g;
                double r = 0.0;
                for (int j = 0; j < g; j++)
                    r += ci[j] * d[j];
                err += d[i] * r;
            }
            if (err < best) {
                best = err;
                best_m = m;
            }
        }
        J->lim[(size_t)n * J->ng + J->gi] = best_m;
    }
    g_free(cw);
    g_free(d);
}

void
hr_awq_clip_search(HrThreadPool *pool, const float *w, int N, int K, const float *x, size_t ldx, int nt, int g,
                   int bits, int steps, int grid, float *lim)
{
    ClipJob J = { .x = x, .w = w, .ldx = ldx, .K = K, .nt = nt, .g = g, .bits = bits, .steps = steps, .grid = grid,
                  .ng = K / g, .C = g_new(double, (size_t)g * g), .lim = lim };
    for (J.gi = 0; J.gi < J.ng; J.gi++) {
        J.g0 = J.gi * g;
        hr_pool_run(pool, clip_gram_rows, &J, g, 4);
        hr_pool_run(pool, clip_rows, &J, N, 4);
    }
    g_free(J.C);
}

typedef struct {
    const float *w, *s;
    float *out;
    int K, g, bits;
    bool delta;
} ScaleQuantJob;

static void
scale_quant_rows(void *arg, int start, int end)
{
    const ScaleQuantJob *J = arg;
    for (int n = start; n < end; n++) {
        const float *w = J->w + (size_t)n * J->K;
        float *o = J->out + (size_t)n * J->K;
        for (int k = 0; k < J->K; k++)
            o[k] = w[k] * J->s[k];
        hr_awq_fake_quant_row(o, J->K, J->g, J->bits, o);
        for (int k = 0; k < J->K; k++)
            o[k] /= J->s[k];
        if (J->delta) {
            for (int k = 0; k < J->K; k++)
                o[k] -= w[k];
        }
    }
}

void
hr_awq_scale_quant(HrThreadPool *pool, const float *w, int N, int K, const float *s, int g, int bits, bool delta,
                   float *out)
{
    ScaleQuantJob J = { w, s, out, K, g, bits, delta };
    hr_pool_run(pool, scale_quant_rows, &J, N, 1);
}

typedef struct {
    float *t;
    const float *s;
    double *sum;
    size_t rows, width;
} ColJob;

/* columns [16 start, 16 end): sum over the rows in order of |t| */
static void
col_abs_range(void *arg, int start, int end)
{
    ColJob *J = arg;
    const size_t k0 = (size_t)start * 16, k1 = MIN((size_t)end * 16, J->width);
    for (size_t k = k0; k < k1; k++)
        J->sum[k] = 0.0;
    for (size_t r = 0; r < J->rows; r++) {
        const float *row = J->t + r * J->width;
        for (size_t k = k0; k < k1; k++)
            J->sum[k] += fabsf(row[k]);
    }
}

void
hr_awq_col_abs_sum(HrThreadPool *pool, const float *t, size_t rows, size_t width, double *sum)
{
    ColJob J = { (float *)t, NULL, sum, rows, width };
    hr_pool_run(pool, col_abs_range, &J, (int)((width + 15) / 16), 1);
}

static void
div_cols_range(void *arg, int start, int end)
{
    ColJob *J = arg;
    for (size_t r = (size_t)start; r < (size_t)end; r++) {
        float *row = J->t + r * J->width;
        for (size_t k = 0; k < J->width; k++)
            row[k] /= J->s[k];
    }
}

void
hr_awq_div_cols(HrThreadPool *pool, float *t, size_t rows, size_t width, const float *s)
{
    ColJob J = { t, s, NULL, rows, width };
    hr_pool_run(pool, div_cols_range, &J, (int)rows, 16);
}
