/* AutoAWQ GEMM packing and RTN quantization (quantize/awq-pack.c, rtn.c). */
#include <math.h>
#include <string.h>

#include <glib.h>

#include "hr-half.h"
#include "hr-test.h"
#include "quantize.h"

static void
test_round_trip(void)
{
    GRand *r = g_rand_new_with_seed(7);
    const int rows = 37, cols = 64;
    uint8_t *q = g_new(uint8_t, rows * cols), *back = g_new(uint8_t, rows * cols);
    int32_t *p = g_new(int32_t, rows * cols / 8);
    for (int i = 0; i < rows * cols; i++)
        q[i] = (uint8_t)g_rand_int_range(r, 0, 16);
    hr_awq_pack(q, rows, cols, p);
    hr_awq_unpack(p, rows, cols, back);
    HR_CHECK(memcmp(q, back, (size_t)rows * cols) == 0, "unpack(pack(q)) != q");
    g_free(q);
    g_free(back);
    g_free(p);
    g_rand_free(r);
}

/* Columns 0..7 holding the values 1..8: AWQ_ORDER = 0,2,4,6,1,3,5,7 puts
 * column 0 in nibble 0, column 2 in nibble 1, ..., column 7 in nibble 7:
 * nibbles (low first) 1,3,5,7,2,4,6,8 -> 0x86427531. AutoAWQ's unpack
 * (shifts 0,4,..,28 then AWQ_REVERSE_ORDER 0,4,1,5,2,6,3,7) reads it back. */
static void
test_hand_example(void)
{
    uint8_t q[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
    int32_t p;
    hr_awq_pack(q, 1, 8, &p);
    HR_CHECK((uint32_t)p == 0x86427531u, "packed 0x%08x", (unsigned)(uint32_t)p);
    static const int reverse[8] = { 0, 4, 1, 5, 2, 6, 3, 7 };
    uint8_t raw[8];
    for (int i = 0; i < 8; i++)
        raw[i] = (uint8_t)(((uint32_t)p >> (4 * i)) & 15u);
    for (int c = 0; c < 8; c++)
        HR_CHECK(raw[reverse[c]] == q[c], "AutoAWQ unpack of column %d gives %d, want %d", c, raw[reverse[c]], q[c]);
}

static void
test_rtn_half_step(void)
{
    GRand *r = g_rand_new_with_seed(11);
    const int N = 24, K = 256;
    for (int gi = 0; gi < 3; gi++) {
        const int g = 32 << gi;
        float *w = g_new(float, N * K);
        for (int i = 0; i < N * K; i++) {
            w[i] = (float)g_rand_double_range(r, -1.0, 1.0) * (i % 7 == 0 ? 3.0f : 0.2f);
            if (i % 97 == 0)
                w[i] = 0.0f;
        }
        /* one row all positive, one all zero */
        for (int k = 0; k < K; k++) {
            w[1 * K + k] = 0.5f + 0.001f * (float)k;
            w[2 * K + k] = 0.0f;
        }
        uint8_t *qT = g_new(uint8_t, N * K), *z = g_new(uint8_t, N * K / g);
        uint16_t *s = g_new(uint16_t, N * K / g);
        hr_rtn_quantize(w, N, K, g, qT, s, z);
        int bad = 0;
        for (int n = 0; n < N; n++) {
            for (int k = 0; k < K; k++) {
                float sc = hr_f16_to_f32(s[(k / g) * N + n]);
                float deq = ((float)qT[k * N + n] - (float)z[(k / g) * N + n]) * sc;
                if (fabsf(deq - w[n * K + k]) > 0.5f * sc * 1.0001f + 1e-7f)
                    bad++;
            }
        }
        HR_CHECK(bad == 0, "g=%d: %d weights off by more than half a step", g, bad);
        g_free(w);
        g_free(qT);
        g_free(z);
        g_free(s);
    }
    g_rand_free(r);
}

int
main(void)
{
    test_round_trip();
    test_hand_example();
    test_rtn_half_step();
    return hr_test_result();
}
