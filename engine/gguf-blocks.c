/* gguf-blocks.c — GGUF's block-quantized tensor formats, decoded (see gguf-blocks.h). */
#include "gguf-blocks.h"

#include <string.h>

#include "gguf.h"
#include "hr-half.h"

static inline float
half_at(const uint8_t *p)
{
    return hr_f16_to_f32(hr_u16_at(p));
}

/* Sub-block j's 6-bit scale and min of a Q4_K/Q5_K block (12 bytes at q). */
static inline void
scale_min_k4(int j, const uint8_t *q, int *sc, int *m)
{
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
        *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

bool
hr_ggml_dequant_supported(uint32_t type)
{
    switch (type) {
    case HR_GGML_F32:
    case HR_GGML_F16:
    case HR_GGML_BF16:
    case HR_GGML_Q4_0:
    case HR_GGML_Q4_1:
    case HR_GGML_Q5_0:
    case HR_GGML_Q5_1:
    case HR_GGML_Q8_0:
    case HR_GGML_Q4_K:
    case HR_GGML_Q5_K:
    case HR_GGML_Q6_K:
        return true;
    default:
        return false;
    }
}

void
hr_ggml_dequant(uint32_t type, const void *src, float *y, int64_t n)
{
    const uint8_t *b = src;
    switch (type) {
    case HR_GGML_F32:
        memcpy(y, src, (size_t)n * sizeof(float));
        return;
    case HR_GGML_F16:
        for (int64_t i = 0; i < n; i++)
            y[i] = half_at(b + 2 * i);
        return;
    case HR_GGML_BF16:
        for (int64_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, b + 2 * i, 2);
            y[i] = hr_bf16_to_f32(h);
        }
        return;
    case HR_GGML_Q4_0:
        for (int64_t i = 0; i < n; i += 32, b += 18, y += 32) {
            const float d = half_at(b);
            for (int j = 0; j < 16; j++) {
                y[j] = (float)((b[2 + j] & 0xF) - 8) * d;
                y[j + 16] = (float)((b[2 + j] >> 4) - 8) * d;
            }
        }
        return;
    case HR_GGML_Q4_1:
        for (int64_t i = 0; i < n; i += 32, b += 20, y += 32) {
            const float d = half_at(b), m = half_at(b + 2);
            for (int j = 0; j < 16; j++) {
                y[j] = (float)(b[4 + j] & 0xF) * d + m;
                y[j + 16] = (float)(b[4 + j] >> 4) * d + m;
            }
        }
        return;
    case HR_GGML_Q5_0:
        for (int64_t i = 0; i < n; i += 32, b += 22, y += 32) {
            const float d = half_at(b);
            uint32_t qh;
            memcpy(&qh, b + 2, 4);
            for (int j = 0; j < 16; j++) {
                const int x0 = (b[6 + j] & 0xF) | (int)(((qh >> j) << 4) & 0x10);
                const int x1 = (b[6 + j] >> 4) | (int)((qh >> (j + 12)) & 0x10);
                y[j] = (float)(x0 - 16) * d;
                y[j + 16] = (float)(x1 - 16) * d;
            }
        }
        return;
    case HR_GGML_Q5_1:
        for (int64_t i = 0; i < n; i += 32, b += 24, y += 32) {
            const float d = half_at(b), m = half_at(b + 2);
            uint32_t qh;
            memcpy(&qh, b + 4, 4);
            for (int j = 0; j < 16; j++) {
                const int x0 = (b[8 + j] & 0xF) | (int)(((qh >> j) << 4) & 0x10);
                const int x1 = (b[8 + j] >> 4) | (int)((qh >> (j + 12)) & 0x10);
                y[j] = (float)x0 * d + m;
                y[j + 16] = (float)x1 * d + m;
            }
        }
        return;
    case HR_GGML_Q8_0:
        for (int64_t i = 0; i < n; i += 32, b += 34, y += 32) {
            const float d = half_at(b);
            for (int j = 0; j < 32; j++)
                y[j] = (float)(int8_t)b[2 + j] * d;
        }
        return;
    case HR_GGML_Q4_K:
        for (int64_t i = 0; i < n; i += 256, b += 144) {
            const float d = half_at(b), dmin = half_at(b + 2);
            const uint8_t *scales = b + 4, *q = b + 16;
            for (int j = 0, is = 0; j < 256; j += 64, is += 2, q += 32) {
                int sc, m;
                scale_min_k4(is, scales, &sc, &m);
                const float d1 = d * (float)sc, m1 = dmin * (float)m;
                scale_min_k4(is + 1, scales, &sc, &m);
                const float d2 = d * (float)sc, m2 = dmin * (float)m;
                for (int l = 0; l < 32; l++)
                    *y++ = d1 * (float)(q[l] & 0xF) - m1;
                for (int l = 0; l < 32; l++)
                    *y++ = d2 * (float)(q[l] >> 4) - m2;
            }
        }
        return;
    case HR_GGML_Q5_K:
        for (int64_t i = 0; i < n; i += 256, b += 176) {
            const float d = half_at(b), dmin = half_at(b + 2);
            const uint8_t *scales = b + 4, *qh = b + 16, *ql = b + 48;
            uint8_t u1 = 1, u2 = 2;
            for (int j = 0, is = 0; j < 256; j += 64, is += 2, ql += 32, u1 <<= 2, u2 <<= 2) {
                int sc, m;
                scale_min_k4(is, scales, &sc, &m);
                const float d1 = d * (float)sc, m1 = dmin * (float)m;
                scale_min_k4(is + 1, scales, &sc, &m);
                const float d2 = d * (float)sc, m2 = dmin * (float)m;
                for (int l = 0; l < 32; l++)
                    *y++ = d1 * (float)((ql[l] & 0xF) + (qh[l] & u1 ? 16 : 0)) - m1;
                for (int l = 0; l < 32; l++)
                    *y++ = d2 * (float)((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
            }
        }
        return;
    case HR_GGML_Q6_K:
        for (int64_t i = 0; i < n; i += 256, b += 210) {
            const uint8_t *ql = b, *qh = b + 128;
            const int8_t *sc = (const int8_t *)(b + 192);
            const float d = half_at(b + 208);
            for (int half = 0; half < 2; half++, y += 128, ql += 64, qh += 32, sc += 8) {
                for (int l = 0; l < 32; l++) {
                    const int is = l / 16;
                    const int q1 = (int)((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                    const int q2 = (int)((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                    const int q3 = (int)((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                    const int q4 = (int)((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                    y[l] = d * (float)sc[is] * (float)q1;
                    y[l + 32] = d * (float)sc[is + 2] * (float)q2;
                    y[l + 64] = d * (float)sc[is + 4] * (float)q3;
                    y[l + 96] = d * (float)sc[is + 6] * (float)q4;
                }
            }
        }
        return;
    default:
        memset(y, 0, (size_t)n * sizeof(float));
        return;
    }
}

/* 32 values whose nibbles are q(j) for j < 16 in the low halves of s[j] and
 * for j >= 16 in the high halves (the 32-value formats), to HrQMat order. */
static inline void
nibbles_split16(const uint8_t *s, uint8_t *nib)
{
    for (int k = 0; k < 32; k += 2) {
        const int a = k < 16 ? s[k] & 0xF : s[k - 16] >> 4;
        const int c = k + 1 < 16 ? s[k + 1] & 0xF : s[k + 1 - 16] >> 4;
        nib[k / 2] = (uint8_t)(a | c << 4);
    }
}

/* 32 values that are the low (shift 0) or high (shift 4) nibbles of s[0..32). */
static inline void
nibbles_half32(const uint8_t *s, int shift, uint8_t *nib)
{
    for (int k = 0; k < 32; k += 2)
        nib[k / 2] = (uint8_t)(((s[k] >> shift) & 0xF) | ((s[k + 1] >> shift) & 0xF) << 4);
}

bool
hr_ggml_q4_groups(uint32_t type, const void *src, int64_t n, uint8_t *nib, float *scale, float *offset)
{
    const uint8_t *b = src;
    switch (type) {
    case HR_GGML_Q4_0:
        for (int64_t i = 0; i < n; i += 32, b += 18, nib += 16) {
            const float d = half_at(b);
            nibbles_split16(b + 2, nib);
            *scale++ = d;
            *offset++ = -8.0f * d; /* exact: a power of two */
        }
        return true;
    case HR_GGML_Q4_1:
        for (int64_t i = 0; i < n; i += 32, b += 20, nib += 16) {
            nibbles_split16(b + 4, nib);
            *scale++ = half_at(b);
            *offset++ = half_at(b + 2);
        }
        return true;
    case HR_GGML_Q4_K:
        for (int64_t i = 0; i < n; i += 256, b += 144) {
            const float d = half_at(b), dmin = half_at(b + 2);
            const uint8_t *scales = b + 4, *q = b + 16;
            for (int is = 0; is < 8; is += 2, q += 32) {
                for (int h = 0; h < 2; h++, nib += 16) {
                    int sc, m;
                    scale_min_k4(is + h, scales, &sc, &m);
                    nibbles_half32(q, 4 * h, nib);
                    *scale++ = d * (float)sc;
                    *offset++ = -(dmin * (float)m);
                }
            }
        }
        return true;
    default:
        return false;
    }
}

int
hr_ggml_q8_per(uint32_t type)
{
    switch (type) {
    case HR_GGML_Q8_0:
    case HR_GGML_Q5_0:
    case HR_GGML_Q5_1:
    case HR_GGML_Q5_K:
        return 32;
    case HR_GGML_Q6_K:
        return 16;
    default:
        return 0;
    }
}

bool
hr_ggml_q8_has_offset(uint32_t type)
{
    return type == HR_GGML_Q5_1 || type == HR_GGML_Q5_K;
}

bool
hr_ggml_q8_groups(uint32_t type, const void *src, int64_t n, int8_t *q, float *scale, float *offset, int *per)
{
    const uint8_t *b = src;
    *per = hr_ggml_q8_per(type);
    switch (type) {
    case HR_GGML_Q8_0:
        for (int64_t i = 0; i < n; i += 32, b += 34, q += 32) {
            *scale++ = half_at(b);
            memcpy(q, b + 2, 32);
        }
        return true;
    case HR_GGML_Q5_0:
        for (int64_t i = 0; i < n; i += 32, b += 22, q += 32) {
            uint32_t qh;
            memcpy(&qh, b + 2, 4);
            *scale++ = half_at(b);
            for (int j = 0; j < 16; j++) {
                q[j] = (int8_t)(((b[6 + j] & 0xF) | (int)(((qh >> j) << 4) & 0x10)) - 16);
                q[j + 16] = (int8_t)(((b[6 + j] >> 4) | (int)((qh >> (j + 12)) & 0x10)) - 16);
            }
        }
        return true;
    case HR_GGML_Q5_1:
        for (int64_t i = 0; i < n; i += 32, b += 24, q += 32) {
            uint32_t qh;
            memcpy(&qh, b + 4, 4);
            /* centred, q - 16 in -16..15: half the magnitude the int8
             * activations' rounding meets; the offset takes the 16 d */
            const float d = half_at(b);
            *scale++ = d;
            *offset++ = half_at(b + 2) + 16.0f * d;
            for (int j = 0; j < 16; j++) {
                q[j] = (int8_t)(((b[8 + j] & 0xF) | (int)(((qh >> j) << 4) & 0x10)) - 16);
                q[j + 16] = (int8_t)(((b[8 + j] >> 4) | (int)((qh >> (j + 12)) & 0x10)) - 16);
            }
        }
        return true;
    case HR_GGML_Q5_K:
        for (int64_t i = 0; i < n; i += 256, b += 176) {
            const float d = half_at(b), dmin = half_at(b + 2);
            const uint8_t *scales = b + 4, *qh = b + 16, *ql = b + 48;
            uint8_t u1 = 1, u2 = 2;
            for (int is = 0; is < 8; is += 2, ql += 32, u1 <<= 2, u2 <<= 2) {
                int sc, m;
                for (int h = 0; h < 2; h++) { /* centred as Q5_1 */
                    scale_min_k4(is + h, scales, &sc, &m);
                    const float d1 = d * (float)sc;
                    *scale++ = d1;
                    *offset++ = 16.0f * d1 - dmin * (float)m;
                }
                for (int l = 0; l < 32; l++)
                    *q++ = (int8_t)((ql[l] & 0xF) + (qh[l] & u1 ? 16 : 0) - 16);
                for (int l = 0; l < 32; l++)
                    *q++ = (int8_t)((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0) - 16);
            }
        }
        return true;
    case HR_GGML_Q6_K:
        for (int64_t i = 0; i < n; i += 256, b += 210) {
            const uint8_t *ql = b, *qh = b + 128;
            const int8_t *sc = (const int8_t *)(b + 192);
            const float d = half_at(b + 208);
            for (int s = 0; s < 16; s++)
                scale[s] = d * (float)sc[s];
            scale += 16;
            for (int half = 0; half < 2; half++, q += 128, ql += 64, qh += 32) {
                for (int l = 0; l < 32; l++) {
                    q[l] = (int8_t)((int)((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32);
                    q[l + 32] = (int8_t)((int)((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32);
                    q[l + 64] = (int8_t)((int)((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
                    q[l + 96] = (int8_t)((int)((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
                }
            }
        }
        return true;
    default:
        return false;
    }
}

void
hr_ggml_q4k_raw(const void *src, int64_t n, uint8_t *nib, uint8_t *sc, uint8_t *mn, uint16_t *d, uint16_t *dmin)
{
    const uint8_t *b = src;
    for (int64_t i = 0; i < n; i += 256, b += 144) {
        memcpy(d++, b, 2);
        memcpy(dmin++, b + 2, 2);
        const uint8_t *scales = b + 4, *q = b + 16;
        for (int is = 0; is < 8; is += 2, q += 32) {
            for (int h = 0; h < 2; h++, nib += 16) {
                int s, m;
                scale_min_k4(is + h, scales, &s, &m);
                nibbles_half32(q, 4 * h, nib);
                *sc++ = (uint8_t)s;
                *mn++ = (uint8_t)m;
            }
        }
    }
}
