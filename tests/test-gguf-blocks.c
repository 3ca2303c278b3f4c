/* test-gguf-blocks.c — the GGUF block decoders (engine/gguf-blocks.c) and
 * the CPU backend's use of them.
 *
 *  - Hand-made blocks with known values: Q4_0, Q4_1, Q8_0, Q5_0 (every
 *    nibble and fifth bit in its place), a Q4_K and a Q6_K block whose
 *    sub-block scales differ (so a swapped scale/min or sub-block order
 *    shows).
 *  - hr_ggml_q4_groups() reproduces hr_ggml_dequant() value for value on
 *    random Q4_0, Q4_1 and Q4_K blocks (nibbles in HrQMat order, per-group
 *    scale and offset), and hr_ggml_q8_groups() (int8 values, a scale per 32
 *    or 16, an offset per 32 for Q5_1/Q5_K) on the fixtures below.
 *  - Every type against llama.cpp's own decoder: tests/fixtures/gguf-blocks/
 *    holds random blocks and the values gguf-py's dequantize() gives for
 *    them (tests/reference/make_gguf_block_fixtures.py); ours must agree to
 *    FP32 rounding, and the 4-bit group view must give the same values.
 * The CPU backend's use of these (repacking, the row-at-a-time linears) is
 * tested on a real file by test-gguf-model.
 */
#include <math.h>
#include <string.h>

#include <glib.h>

#include "gguf-blocks.h"
#include "gguf.h"
#include "hr-half.h"
#include "hr-test.h"

static void
put_half(uint8_t *p, float v)
{
    uint16_t h = hr_f32_to_f16(v);
    memcpy(p, &h, 2);
}

static void
check_values(const char *what, const float *got, const float *want, int n)
{
    int bad = 0, first = -1;
    for (int i = 0; i < n; i++) {
        if (!(fabsf(got[i] - want[i]) <= 1e-6f * fmaxf(1.0f, fabsf(want[i])))) {
            if (first < 0)
                first = i;
            bad++;
        }
    }
    HR_CHECK(bad == 0, "%s: %d of %d values wrong (first at %d: %g, expected %g)", what, bad, n, first,
             first >= 0 ? got[first] : 0.0, first >= 0 ? want[first] : 0.0);
}

static void
known_blocks(void)
{
    float y[256], want[256];
    /* Q4_0: d = 0.5, value j = (q_j - 8) * d with q_j = j % 16 for j < 16
     * (low nibbles) and 15 - j % 16 above (high nibbles) */
    uint8_t q40[18];
    put_half(q40, 0.5f);
    for (int j = 0; j < 16; j++)
        q40[2 + j] = (uint8_t)(j | (15 - j) << 4);
    hr_ggml_dequant(HR_GGML_Q4_0, q40, y, 32);
    for (int j = 0; j < 32; j++)
        want[j] = (float)((j < 16 ? j : 15 - (j - 16)) - 8) * 0.5f;
    check_values("Q4_0", y, want, 32);

    /* Q4_1: d = 0.25, m = -1 */
    uint8_t q41[20];
    put_half(q41, 0.25f);
    put_half(q41 + 2, -1.0f);
    for (int j = 0; j < 16; j++)
        q41[4 + j] = (uint8_t)(j | (15 - j) << 4);
    hr_ggml_dequant(HR_GGML_Q4_1, q41, y, 32);
    for (int j = 0; j < 32; j++)
        want[j] = (float)(j < 16 ? j : 15 - (j - 16)) * 0.25f - 1.0f;
    check_values("Q4_1", y, want, 32);

    /* Q8_0: d = 2, q_j = j - 16 */
    uint8_t q80[34];
    put_half(q80, 2.0f);
    for (int j = 0; j < 32; j++)
        q80[2 + j] = (uint8_t)(int8_t)(j - 16);
    hr_ggml_dequant(HR_GGML_Q8_0, q80, y, 32);
    for (int j = 0; j < 32; j++)
        want[j] = (float)(j - 16) * 2.0f;
    check_values("Q8_0", y, want, 32);

    /* Q5_0: d = 1, fifth bit set for odd j: value = (q | 16 * bit) - 16 */
    uint8_t q50[22];
    put_half(q50, 1.0f);
    uint32_t qh = 0;
    for (int j = 0; j < 32; j += 2)
        qh |= 1u << (j + 1);
    memcpy(q50 + 2, &qh, 4);
    for (int j = 0; j < 16; j++)
        q50[6 + j] = (uint8_t)(j | (15 - j) << 4);
    hr_ggml_dequant(HR_GGML_Q5_0, q50, y, 32);
    for (int j = 0; j < 32; j++) {
        int q = j < 16 ? j : 15 - (j - 16);
        want[j] = (float)((q | ((j & 1) ? 16 : 0)) - 16);
    }
    check_values("Q5_0", y, want, 32);

    /* Q4_K: d = 1, dmin = 0.5; sub-block s has scale s + 1 and min 2 s
     * (6 bits each: the first four in the low 6 bits of bytes 0..3 and 4..7,
     * the last four split across bytes 8..11 and the top bits of 0..7);
     * nibble value = l % 16 for the 32 values of each sub-block. */
    uint8_t q4k[144] = { 0 };
    put_half(q4k, 1.0f);
    put_half(q4k + 2, 0.5f);
    uint8_t *sc = q4k + 4;
    for (int s = 0; s < 8; s++) {
        int scale = s + 1 + (s >= 4 ? 40 : 0), min = 2 * s + (s >= 4 ? 33 : 0); /* > 15 for s >= 4 */
        if (s < 4) {
            sc[s] = (uint8_t)scale;
            sc[s + 4] = (uint8_t)min;
        } else {
            sc[s + 4] = (uint8_t)((scale & 0xF) | (min & 0xF) << 4);
            sc[s - 4] |= (uint8_t)((scale >> 4) << 6);
            sc[s] |= (uint8_t)((min >> 4) << 6);
        }
    }
    for (int c = 0; c < 4; c++)
        for (int l = 0; l < 32; l++)
            q4k[16 + 32 * c + l] = (uint8_t)((l % 16) | ((15 - l % 16) << 4));
    hr_ggml_dequant(HR_GGML_Q4_K, q4k, y, 256);
    for (int s = 0; s < 8; s++) {
        int scale = s + 1 + (s >= 4 ? 40 : 0), min = 2 * s + (s >= 4 ? 33 : 0);
        for (int l = 0; l < 32; l++) {
            int q = s % 2 == 0 ? l % 16 : 15 - l % 16;
            want[32 * s + l] = (float)scale * (float)q - 0.5f * (float)min;
        }
    }
    check_values("Q4_K", y, want, 256);

    /* Q6_K: d = 0.5, sub-block (16 values) s has scale s - 8; every 6-bit
     * q = 32 + (value index % 31) - 15 */
    uint8_t q6k[210] = { 0 };
    for (int s = 0; s < 16; s++)
        q6k[192 + s] = (uint8_t)(int8_t)(s - 8);
    put_half(q6k + 208, 0.5f);
    int qv[256];
    for (int i = 0; i < 256; i++)
        qv[i] = 32 + i % 31 - 15;
    for (int h = 0; h < 2; h++) {
        uint8_t *ql = q6k + 64 * h, *qhp = q6k + 128 + 32 * h;
        const int *q = qv + 128 * h;
        for (int l = 0; l < 32; l++) {
            ql[l] = (uint8_t)((q[l] & 0xF) | (q[l + 64] & 0xF) << 4);
            ql[l + 32] = (uint8_t)((q[l + 32] & 0xF) | (q[l + 96] & 0xF) << 4);
            qhp[l] = (uint8_t)((q[l] >> 4) | (q[l + 32] >> 4) << 2 | (q[l + 64] >> 4) << 4 | (q[l + 96] >> 4) << 6);
        }
    }
    hr_ggml_dequant(HR_GGML_Q6_K, q6k, y, 256);
    for (int i = 0; i < 256; i++)
        want[i] = 0.5f * (float)(i / 16 - 8) * (float)(qv[i] - 32);
    check_values("Q6_K", y, want, 256);
}

static void
groups_match_dequant(GRand *rng)
{
    static const struct {
        uint32_t type;
        int block, bytes;
    } types[] = { { HR_GGML_Q4_0, 32, 18 }, { HR_GGML_Q4_1, 32, 20 }, { HR_GGML_Q4_K, 256, 144 } };
    for (size_t t = 0; t < G_N_ELEMENTS(types); t++) {
        const int n = 4 * 256, nb = n / types[t].block;
        uint8_t *raw = g_new(uint8_t, (size_t)nb * types[t].bytes);
        for (int i = 0; i < nb * types[t].bytes; i++)
            raw[i] = (uint8_t)g_rand_int_range(rng, 0, 256);
        /* sane FP16 factors (random bytes could be NaN or huge) */
        for (int b = 0; b < nb; b++) {
            uint8_t *blk = raw + (size_t)b * types[t].bytes;
            put_half(blk, (float)g_rand_double_range(rng, 0.001, 0.1));
            if (types[t].type != HR_GGML_Q4_0)
                put_half(blk + 2, (float)g_rand_double_range(rng, -0.1, 0.1));
        }
        float *y = g_new(float, n), *sc = g_new(float, n / 32), *of = g_new(float, n / 32), *z = g_new(float, n);
        uint8_t *nib = g_new(uint8_t, n / 2);
        hr_ggml_dequant(types[t].type, raw, y, n);
        HR_CHECK(hr_ggml_q4_groups(types[t].type, raw, n, nib, sc, of), "%s: q4_groups refused",
                 hr_ggml_type_name(types[t].type));
        for (int k = 0; k < n; k++) {
            int q = (k & 1) ? nib[k / 2] >> 4 : nib[k / 2] & 15;
            z[k] = sc[k / 32] * (float)q + of[k / 32];
        }
        check_values(hr_ggml_type_name(types[t].type), z, y, n);
        g_free(raw);
        g_free(y);
        g_free(sc);
        g_free(of);
        g_free(z);
        g_free(nib);
    }
    float dummy;
    uint8_t b[34] = { 0 }, nb8[16];
    HR_CHECK(!hr_ggml_q4_groups(HR_GGML_Q8_0, b, 32, nb8, &dummy, &dummy), "q4_groups took Q8_0");
}

/* The fixtures: "HRGB", type, n values, b raw bytes, raw, n float32. */
static void
against_llama_cpp(void)
{
    static const char *const names[] = { "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q4_K", "Q5_K", "Q6_K" };
    for (size_t i = 0; i < G_N_ELEMENTS(names); i++) {
        g_autofree char *base = g_strdup_printf("%s.bin", names[i]);
        g_autofree char *path = g_build_filename(HEARTH_FIXTURES, "gguf-blocks", base, NULL);
        g_autofree char *data = NULL;
        gsize len = 0;
        HR_CHECK(g_file_get_contents(path, &data, &len, NULL), "%s: cannot read", path);
        if (!data)
            continue;
        uint32_t hdr[3];
        HR_CHECK(len >= 16 && memcmp(data, "HRGB", 4) == 0, "%s: not a fixture", path);
        memcpy(hdr, data + 4, sizeof hdr);
        const uint32_t type = hdr[0], n = hdr[1], nraw = hdr[2];
        HR_CHECK(len == 16 + (gsize)nraw + 4 * (gsize)n, "%s: %zu bytes, header says otherwise", path, (size_t)len);
        HR_CHECK(strcmp(hr_ggml_type_name(type), names[i]) == 0, "%s: type %u", path, type);
        if (len != 16 + (gsize)nraw + 4 * (gsize)n)
            continue;
        const uint8_t *raw = (const uint8_t *)data + 16;
        float *want = g_new(float, n), *got = g_new(float, n);
        memcpy(want, raw + nraw, 4 * (size_t)n);
        HR_CHECK(hr_ggml_dequant_supported(type), "%s: not supported", names[i]);
        hr_ggml_dequant(type, raw, got, n);
        g_autofree char *what = g_strdup_printf("%s against gguf-py", names[i]);
        check_values(what, got, want, (int)n);
        /* the 4-bit types' group view gives the same values */
        uint8_t *nib = g_new(uint8_t, n / 2);
        float *sc = g_new(float, n / 32), *of = g_new(float, n / 32);
        if (hr_ggml_q4_groups(type, raw, n, nib, sc, of)) {
            for (uint32_t k = 0; k < n; k++) {
                int q = (k & 1) ? nib[k / 2] >> 4 : nib[k / 2] & 15;
                got[k] = sc[k / 32] * (float)q + of[k / 32];
            }
            g_autofree char *w2 = g_strdup_printf("%s groups against gguf-py", names[i]);
            check_values(w2, got, want, (int)n);
        }
        /* Q4_K as the file holds it (the CPU's K4 kind) gives the same values */
        if (type == HR_GGML_Q4_K) {
            uint8_t *nb = g_new(uint8_t, n / 2), *ksc = g_new(uint8_t, n / 32), *kmn = g_new(uint8_t, n / 32);
            uint16_t *kd = g_new(uint16_t, n / 256), *kdm = g_new(uint16_t, n / 256);
            hr_ggml_q4k_raw(raw, n, nb, ksc, kmn, kd, kdm);
            for (uint32_t k = 0; k < n; k++) {
                const int q = (k & 1) ? nb[k / 2] >> 4 : nb[k / 2] & 15;
                const float d1 = hr_f16_to_f32(kd[k / 256]) * (float)ksc[k / 32];
                const float m1 = hr_f16_to_f32(kdm[k / 256]) * (float)kmn[k / 32];
                got[k] = d1 * (float)q - m1;
            }
            check_values("Q4_K raw view against gguf-py", got, want, (int)n);
            g_free(nb);
            g_free(ksc);
            g_free(kmn);
            g_free(kd);
            g_free(kdm);
        }
        /* the int8 view (the CPU's HrQ8Mat) gives the same values too */
        int8_t *q8 = g_new(int8_t, n);
        float *s8 = g_new(float, n / 16), *o8 = g_new(float, n / 32);
        int per = 0;
        if (hr_ggml_q8_groups(type, raw, n, q8, s8, o8, &per)) {
            const bool off = hr_ggml_q8_has_offset(type);
            for (uint32_t k = 0; k < n; k++)
                got[k] = s8[k / (uint32_t)per] * (float)q8[k] + (off ? o8[k / 32] : 0.0f);
            g_autofree char *w3 = g_strdup_printf("%s int8 view against gguf-py", names[i]);
            check_values(w3, got, want, (int)n);
            HR_CHECK(per == hr_ggml_q8_per(type), "%s: per %d", names[i], per);
        } else {
            HR_CHECK(hr_ggml_q8_per(type) == 0, "%s: q8 view refused", names[i]);
        }
        g_free(q8);
        g_free(s8);
        g_free(o8);
        g_free(nib);
        g_free(sc);
        g_free(of);
        g_free(want);
        g_free(got);
    }
}

int
main(void)
{
    GRand *rng = g_rand_new_with_seed(23);
    known_blocks();
    groups_match_dequant(rng);
    against_llama_cpp();
    g_rand_free(rng);
    return hr_test_result();
}
