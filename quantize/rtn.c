/* rtn.c — round-to-nearest asymmetric group quantization (4-bit for
 * checkpoints, 2..8 bits for fake-quant studies). */
#include <math.h>

#include <glib.h>

#include "awq-private.h"
#include "hr-half.h"
#include "quantize.h"

/* The smallest FP16 >= s (s positive and finite). */
static uint16_t
f16_round_up(float s)
{
    uint16_t h = hr_f32_to_f16(s);
    if (hr_f16_to_f32(h) < s && (h & 0x7c00u) != 0x7c00u)
        h++;
    return h;
}

void
hr_rtn_quantize(const float *w, int N, int K, int g, uint8_t *qT, uint16_t *scales, uint8_t *zeros)
{
    hr_rtn_quantize_bits(w, N, K, g, 4, qT, scales, zeros);
}

void
hr_rtn_quantize_bits(const float *w, int N, int K, int g, int bits, uint8_t *qT, uint16_t *scales, uint8_t *zeros)
{
    const int ng = K / g;
    const float qmax = (float)((1 << bits) - 1);
    for (int n = 0; n < N; n++) {
        const float *wr = w + (size_t)n * K;
        for (int gi = 0; gi < ng; gi++) {
            const float *wg = wr + (size_t)gi * g;
            float mn = 0.0f, mx = 0.0f; /* the range includes 0 */
            for (int i = 0; i < g; i++) {
                mn = fminf(mn, wg[i]);
                mx = fmaxf(mx, wg[i]);
            }
            float s = (mx - mn) / qmax;
            if (!(s >= 1e-7f))
                s = 1e-7f; /* an all-zero group (or NaN) */
            uint16_t h = f16_round_up(s);
            s = hr_f16_to_f32(h);
            float z = -roundf(mn / s);
            z = fminf(fmaxf(z, 0.0f), qmax);
            scales[(size_t)gi * N + n] = h;
            zeros[(size_t)gi * N + n] = (uint8_t)z;
            for (int i = 0; i < g; i++) {
                float q = roundf(wg[i] / s) + z;
                q = fminf(fmaxf(q, 0.0f), qmax);
                qT[(size_t)(gi * g + i) * N + n] = (uint8_t)q;
            }
        }
    }
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

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

/* hr_rtn_fake_quant_row for g % 16 == 0, the same bits: min/max are exact
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
        s = hr_f16_to_f32(f16_round_up(s));
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
hr_rtn_fake_quant_row(const float *w, int K, int g, int bits, float *out)
{
    const float qmax = (float)((1 << bits) - 1);
#if defined(__x86_64__) && defined(__GNUC__)
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
        s = hr_f16_to_f32(f16_round_up(s));
        float z = fminf(fmaxf(-roundf(mn / s), 0.0f), qmax);
        for (int i = 0; i < g; i++) {
            float q = fminf(fmaxf(roundf(wg[i] / s) + z, 0.0f), qmax);
            out[g0 + i] = (q - z) * s;
        }
    }
}
