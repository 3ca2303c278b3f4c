/* rtn.c — round-to-nearest asymmetric group quantization (4-bit for
 * checkpoints, 2..8 bits for fake-quant studies). */
#include <math.h>

#include <glib.h>

#include "awq-private.h"
#include "hr-half.h"
#include "quantize.h"

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
            uint16_t h = hr_f16_round_up(s);
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
