/* hr_amx_matmul / hr_amx_matmul_packed (engine/cpu/cpu-amx.c) against a
 * double-precision reference: shapes that are not multiples of any tile or
 * block (rows, inputs, tokens; more than one block of 512 inputs and of 512
 * tokens), with and without bias, serial and on pools of 2 and 3 threads
 * (bit-identical to serial), one packed matrix used for several products,
 * and FP16-exact weights (split exactly). The BF16 form
 * (hr_amx_pack_bf16 + hr_amx_matmul_packed_add): out += x W^T with both
 * rounded to BF16, against the same sum in double over the rounded
 * operands, on the same shapes, on AMX tiles or (without AMX) with
 * AVX512-BF16. Controls check that the comparisons catch a wrong result.
 * Exits 77 on a CPU with neither. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <glib.h>

#include "cpu-amx.h"
#include "hr-half.h"
#include "hr-test.h"

/* Each product's error is at most about 2^-16 of |x w| (split into two
 * BF16 parts each, lo x lo dropped), random in sign, plus FP32
 * accumulation: measured within 3e-6 of the sum of magnitudes. One dropped
 * or doubled term is ~1/K of it. */
#define REL_TOL 1e-5

static int failures;

static void
fill(GRand *rng, float *v, size_t n, double scale)
{
    for (size_t i = 0; i < n; i++)
        v[i] = (float)(g_rand_double_range(rng, -1.0, 1.0) * scale);
}

/* worst |out - ref| / (sum |terms| + |bias|) over the outputs */
static double
worst_error(const float *out, const float *w, const float *x, const float *bias, int N, int K, int T)
{
    double worst = 0.0;
    for (int t = 0; t < T; t++) {
        for (int n = 0; n < N; n++) {
            double s = bias ? bias[n] : 0.0, m = bias ? fabs(bias[n]) : 0.0;
            for (int k = 0; k < K; k++) {
                double p = (double)x[(size_t)t * K + k] * w[(size_t)n * K + k];
                s += p;
                m += fabs(p);
            }
            double e = fabs(out[(size_t)t * N + n] - s) / (m > 0.0 ? m : 1.0);
            if (!(e <= worst))
                worst = isnan(e) ? INFINITY : e;
        }
    }
    return worst;
}

static void
check_shape(GRand *rng, HrThreadPool *p2, HrThreadPool *p3, int N, int K, int T, bool with_bias, bool f16_weights)
{
    float *w = g_new(float, (size_t)N * K), *x = g_new(float, (size_t)T * K), *bias = g_new(float, N);
    fill(rng, w, (size_t)N * K, 0.1);
    fill(rng, x, (size_t)T * K, 2.0);
    fill(rng, bias, N, 1.0);
    if (f16_weights) {
        for (size_t i = 0; i < (size_t)N * K; i++)
            w[i] = hr_f16_to_f32(hr_f32_to_f16(w[i]));
    }
    const float *b = with_bias ? bias : NULL;
    float *o1 = g_new(float, (size_t)T * N), *o2 = g_new(float, (size_t)T * N), *o3 = g_new(float, (size_t)T * N);
    hr_amx_matmul(NULL, o1, w, N, K, b, x, T);
    double e = worst_error(o1, w, x, b, N, K, T);
    bool ok = e <= REL_TOL;
    /* one packing, two products (the pools), bit-identical to serial */
    HrAmxWeights *pw = hr_amx_pack(p2, w, N, K);
    hr_amx_matmul_packed(p2, o2, pw, b, x, T);
    hr_amx_matmul_packed(p3, o3, pw, b, x, T);
    hr_amx_free(pw);
    bool same = memcmp(o1, o2, sizeof(float) * (size_t)T * N) == 0 && memcmp(o1, o3, sizeof(float) * (size_t)T * N) == 0;
    printf("%s N=%d K=%d T=%d bias=%d f16=%d: worst %.2e of the magnitudes, pools %s\n", ok && same ? "ok  " : "FAIL",
           N, K, T, with_bias, f16_weights, e, same ? "bit-identical" : "DIFFER");
    if (!ok || !same)
        failures++;
    g_free(w);
    g_free(x);
    g_free(bias);
    g_free(o1);
    g_free(o2);
    g_free(o3);
}

static float
bf16_round(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    u = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
    memcpy(&f, &u, 4);
    return f;
}

/* out = base + x W^T in the BF16 form: the products of the rounded
 * operands are exact in FP32, so only the FP32 sums differ from double. */
static void
check_bf16(GRand *rng, HrThreadPool *p2, HrThreadPool *p3, int N, int K, int T, bool control)
{
    float *w = g_new(float, (size_t)N * K), *x = g_new(float, (size_t)T * K), *base = g_new(float, (size_t)T * N);
    fill(rng, w, (size_t)N * K, 0.1);
    fill(rng, x, (size_t)T * K, 2.0);
    fill(rng, base, (size_t)T * N, 1.0);
    float *wr = g_new(float, (size_t)N * K), *xr = g_new(float, (size_t)T * K);
    for (size_t i = 0; i < (size_t)N * K; i++)
        wr[i] = bf16_round(w[i]);
    for (size_t i = 0; i < (size_t)T * K; i++)
        xr[i] = bf16_round(x[i]);
    float *o[3];
    HrThreadPool *pools[3] = { NULL, p2, p3 };
    HrAmxWeights *pw = hr_amx_pack_bf16(p2, w, N, K);
    for (int i = 0; i < 3; i++) {
        /* base in place (serial) and from its own array (the pools) */
        o[i] = i == 0 ? g_memdup2(base, sizeof(float) * (size_t)T * N) : g_new(float, (size_t)T * N);
        hr_amx_matmul_packed_add(pools[i], o[i], i == 0 ? o[i] : base, pw, x, T);
    }
    hr_amx_free(pw);
    if (control) /* the comparison must catch one product left out */
        o[0][(size_t)(T / 2) * N + N / 2] -= xr[(size_t)(T / 2) * K + K / 2] * wr[(size_t)(N / 2) * K + K / 2];
    /* the reference over the rounded operands, base as the bias of row t */
    double worst = 0.0;
    for (int t = 0; t < T; t++) {
        for (int n = 0; n < N; n++) {
            double sum = base[(size_t)t * N + n], m = fabs(sum);
            for (int k = 0; k < K; k++) {
                double p = (double)xr[(size_t)t * K + k] * wr[(size_t)n * K + k];
                sum += p;
                m += fabs(p);
            }
            double e = fabs(o[0][(size_t)t * N + n] - sum) / (m > 0.0 ? m : 1.0);
            if (!(e <= worst))
                worst = isnan(e) ? INFINITY : e;
        }
    }
    const size_t bytes = sizeof(float) * (size_t)T * N;
    if (control) {
        printf("%s bf16 control: one dropped term gives %.2e\n", worst > REL_TOL ? "ok  " : "FAIL", worst);
        failures += !(worst > REL_TOL);
    } else {
        const bool ok = worst <= REL_TOL;
        const bool same = memcmp(o[0], o[1], bytes) == 0 && memcmp(o[0], o[2], bytes) == 0;
        printf("%s bf16 add N=%d K=%d T=%d: worst %.2e of the magnitudes, pools %s\n", ok && same ? "ok  " : "FAIL",
               N, K, T, worst, same ? "bit-identical" : "DIFFER");
        if (!ok || !same)
            failures++;
    }
    for (int i = 0; i < 3; i++)
        g_free(o[i]);
    g_free(w);
    g_free(x);
    g_free(wr);
    g_free(xr);
    g_free(base);
}

/* The comparison must catch a product that dropped one input. */
static void
control(GRand *rng)
{
    const int N = 40, K = 100, T = 20;
    float *w = g_new(float, (size_t)N * K), *x = g_new(float, (size_t)T * K), *o = g_new(float, (size_t)T * N);
    fill(rng, w, (size_t)N * K, 0.1);
    fill(rng, x, (size_t)T * K, 2.0);
    hr_amx_matmul(NULL, o, w, N, K, NULL, x, T);
    o[7 * N + 3] -= x[7 * K + 50] * w[3 * K + 50];
    double e = worst_error(o, w, x, NULL, N, K, T);
    printf("%s control: one dropped term gives %.2e\n", e > REL_TOL ? "ok  " : "FAIL", e);
    if (!(e > REL_TOL))
        failures++;
    g_free(w);
    g_free(x);
    g_free(o);
}

int
main(void)
{
    if (!hr_cpu_bf16_products())
        hr_test_skip("this CPU (or HEARTH_CPU_NO_BF16) offers neither AMX-BF16 tiles nor AVX512-BF16");
    /* (meson runs this test a second time with HEARTH_CPU_NO_AMX=1: on an AMX machine, the BF16 form's
     * AVX512-BF16 path) */
    const bool amx = hr_cpu_amx();
    printf("the BF16 form on %s\n", amx ? "AMX tiles" : "AVX512-BF16 (vdpbf16ps), no AMX: the split form is not run");
    GRand *rng = g_rand_new_with_seed(20261205);
    HrThreadPool *p2 = hr_pool_new(2), *p3 = hr_pool_new(3);
    if (amx) {
        control(rng);
        check_shape(rng, p2, p3, 1, 1, 1, true, false);
        check_shape(rng, p2, p3, 16, 32, 16, false, false);
        check_shape(rng, p2, p3, 33, 31, 17, true, false);
        check_shape(rng, p2, p3, 70, 50, 100, true, false);
        check_shape(rng, p2, p3, 300, 1100, 37, true, false);   /* 3 blocks of inputs, a short last one */
        check_shape(rng, p2, p3, 96, 200, 1100, false, false);  /* 3 blocks of tokens */
        check_shape(rng, p2, p3, 1030, 64, 40, true, false);    /* groups of panels and a tail panel */
        check_shape(rng, p2, p3, 64, 576, 48, false, true);
    }
    check_bf16(rng, p2, p3, 40, 20, 20, true);
    check_bf16(rng, p2, p3, 1, 1, 1, false);
    check_bf16(rng, p2, p3, 33, 31, 17, false);
    check_bf16(rng, p2, p3, 300, 1100, 37, false);
    check_bf16(rng, p2, p3, 96, 200, 1100, false);
    check_bf16(rng, p2, p3, 1030, 64, 40, false);
    hr_pool_free(p2);
    hr_pool_free(p3);
    g_rand_free(rng);
    if (failures) {
        printf("%d failure(s)\n", failures);
        return 1;
    }
    return 0;
}
