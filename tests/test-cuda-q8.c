/* test-cuda-q8.c — host only, no device: the arithmetic of the CUDA decode
 * GEMV on int8 activations (HEARTH_CUDA_GEMV=q8; engine/cuda/cuda-device.h),
 * run on the host by hr_cuda_q8_gemv_host over the backend's repacked Q4
 * layout, against a double-precision product computed straight from the
 * AutoAWQ tensors on the same rounded activations. The device kernel uses
 * the same inline functions (the byte order of the int8 values, the eight
 * dp4a of a 128-bit weight load, the per-block scaling), so a wrong
 * permutation or zero-point term fails here in CI, before any device run.
 * Also: the rounded activations are within half a step (max|x|/254 per
 * block of 32) of x. */
#include <math.h>
#include <string.h>

#include "cuda/hr-cuda-kernels.h"
#include "hr-half.h"
#include "hr-test.h"

static const int awq_order[8] = { 0, 2, 4, 6, 1, 3, 5, 7 };

int
main(void)
{
    /* rows, cols, groups (group = cols / groups) */
    static const int shapes[][3] = { { 8, 32, 1 }, { 16, 64, 2 }, { 24, 172, 1 }, { 40, 256, 2 },
                                     { 64, 512, 16 }, { 32, 4096, 32 }, { 16, 1408, 11 }, { 8, 96, 3 } };
    g_autoptr(GRand) rng = g_rand_new_with_seed(32);
    for (size_t s = 0; s < G_N_ELEMENTS(shapes); s++) {
        const int N = shapes[s][0], K = shapes[s][1], ng = shapes[s][2], group = K / ng;
        const size_t w8 = (size_t)N / 8;
        uint32_t *qw = g_new(uint32_t, (size_t)K * w8), *qz = g_new(uint32_t, (size_t)ng * w8);
        uint16_t *sc = g_new(uint16_t, (size_t)ng * (size_t)N);
        for (size_t i = 0; i < (size_t)K * w8; i++)
            qw[i] = g_rand_int(rng);
        for (size_t i = 0; i < (size_t)ng * w8; i++)
            qz[i] = g_rand_int(rng);
        for (size_t i = 0; i < (size_t)ng * (size_t)N; i++)
            sc[i] = hr_f32_to_f16((float)g_rand_double_range(rng, 0.005, 0.05));
        HrCudaHostMat m = { .awq = true, .qweight = (const int32_t *)qw, .qzeros = (const int32_t *)qz,
                            .scales = sc, .rows = N, .cols = K, .n_groups = ng };
        float *x = g_new(float, (size_t)K), *xr = g_new(float, (size_t)K), *out = g_new(float, (size_t)N);
        for (int k = 0; k < K; k++) /* mixed magnitudes, so the blocks' scales differ */
            x[k] = (float)g_rand_double_range(rng, -1, 1) * (k % 7 == 0 ? 20.0f : 1.0f);
        const int rc = hr_cuda_q8_gemv_host(&m, x, xr, out);
        HR_CHECK(rc == 0, "%dx%d g%d: hr_cuda_q8_gemv_host refused the shape", N, K, group);
        if (rc != 0)
            continue;
        /* the rounding: within half a step of x, per block of 32 */
        for (int b = 0; b * 32 < K; b++) {
            float amax = 0.0f;
            for (int k = b * 32; k < K && k < b * 32 + 32; k++)
                amax = fmaxf(amax, fabsf(x[k]));
            for (int k = b * 32; k < K && k < b * 32 + 32; k++)
                HR_CHECK(fabsf(xr[k] - x[k]) <= amax / 254.0f * 1.0001f + 1e-30f,
                         "%dx%d: x[%d] = %g rounded to %g (block max %g)", N, K, k, (double)x[k], (double)xr[k],
                         (double)amax);
        }
        /* W . xr in double from the AutoAWQ tensors */
        double worst = 0.0, mx = 1.0;
        for (int n = 0; n < N; n++) {
            int slot = 0;
            while (awq_order[slot] != n % 8)
                slot++;
            double acc = 0.0;
            for (int k = 0; k < K; k++) {
                const int g = k / group;
                const int q = (int)((qw[(size_t)k * w8 + n / 8] >> (4 * slot)) & 15u);
                const int z = (int)((qz[(size_t)g * w8 + n / 8] >> (4 * slot)) & 15u);
                acc += (double)hr_f16_to_f32(sc[(size_t)g * N + n]) * (q - z) * (double)xr[k];
            }
            mx = fmax(mx, fabs(acc));
            worst = hr_worse(worst, fabs(acc - (double)out[n]));
        }
        HR_CHECK(worst / mx <= 1e-5, "%dx%d g%d: q8 GEMV on the host differs from the reference by %g of %g", N, K,
                 group, worst, mx);
        printf("%4d x %4d  group %4d  max |q8 - ref| / max %.2e\n", N, K, group, worst / mx);
        g_free(x);
        g_free(xr);
        g_free(out);
        g_free(qw);
        g_free(qz);
        g_free(sc);
    }
    /* groups that do not fall on blocks of 32 are refused (the backend falls back) */
    {
        uint32_t qw[16 * 8] = { 0 }, qz[2 * 1] = { 0 };
        uint16_t sc[2 * 8] = { 0 };
        HrCudaHostMat m = { .awq = true, .qweight = (const int32_t *)qw, .qzeros = (const int32_t *)qz,
                            .scales = sc, .rows = 8, .cols = 32, .n_groups = 2 };
        float x[32] = { 0 }, xr[32], out[8];
        HR_CHECK(hr_cuda_q8_gemv_host(&m, x, xr, out) == -1, "group 16 was not refused");
    }
    return hr_test_result();
}
