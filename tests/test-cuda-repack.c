/* test-cuda-repack.c — host only, no device: the CUDA backend's load-time
 * AWQ repack (hr_cuda_awq_repack, engine/cuda/cuda-repack.cu) produces the
 * same words as the shared transposition (engine/awq-layout.c) with CUDA's
 * slot order {0,4,1,5,2,6,3,7}, rows padded with zero words to
 * hr_cuda_q4_words(cols), and {scale, FP16(zero)} pairs. This is what lets
 * a device session switch cuda-repack.cu to awq-layout.c (issue 19) with
 * the layout proven identical here; and that the backend's opt-in
 * HEARTH_CUDA_REPACK=layout path (repack_awq_rows_layout: that
 * transposition on a thread pool, padding words zeroed) writes exactly the
 * words of the current repack. */
#include <string.h>

#include "awq-layout.h"
#include "cuda/hr-cuda-kernels.h"
#include "hr-half.h"
#include "hr-test.h"

int
main(void)
{
    static const int cuda_slot[8] = { 0, 4, 1, 5, 2, 6, 3, 7 };
    static const int shapes[][3] = { { 8, 32, 1 }, { 64, 128, 1 }, { 136, 256, 2 }, { 256, 172, 1 }, { 520, 384, 3 } };
    g_autoptr(GRand) rng = g_rand_new_with_seed(7);
    for (size_t s = 0; s < G_N_ELEMENTS(shapes); s++) {
        const int N = shapes[s][0], K = shapes[s][1], ng = shapes[s][2];
        const size_t w8 = (size_t)N / 8;
        uint32_t *qw = g_new(uint32_t, (size_t)K * w8), *qz = g_new(uint32_t, (size_t)ng * w8);
        uint16_t *sc = g_new(uint16_t, (size_t)ng * (size_t)N);
        for (size_t i = 0; i < (size_t)K * w8; i++)
            qw[i] = g_rand_int(rng);
        for (size_t i = 0; i < (size_t)ng * w8; i++)
            qz[i] = g_rand_int(rng);
        for (size_t i = 0; i < (size_t)ng * (size_t)N; i++)
            sc[i] = (uint16_t)(g_rand_int(rng) & 0x7bff); /* finite */
        HrCudaHostMat m = { .qweight = (const int32_t *)qw, .qzeros = (const int32_t *)qz, .scales = sc, .rows = N, .cols = K, .n_groups = ng };
        const int kw = hr_cuda_q4_words(K);
        uint32_t *q = g_new(uint32_t, (size_t)N * kw), *sz = g_new(uint32_t, (size_t)N * ng);
        hr_cuda_awq_repack(&m, q, sz);
        /* the backend's HEARTH_CUDA_REPACK=layout path, on 2 threads: the same words */
        uint32_t *q3 = g_new(uint32_t, (size_t)N * kw), *sz3 = g_new(uint32_t, (size_t)N * ng);
        memset(q3, 0xa5, sizeof(uint32_t) * (size_t)N * kw); /* padding must be written, not inherited */
        hr_cuda_awq_repack_layout(&m, 2, q3, sz3);
        HR_CHECK(memcmp(q, q3, sizeof(uint32_t) * (size_t)N * kw) == 0, "%dx%d: the layout repack's words differ",
                 N, K);
        HR_CHECK(memcmp(sz, sz3, sizeof(uint32_t) * (size_t)N * ng) == 0,
                 "%dx%d: the layout repack's scale/zero pairs differ", N, K);
        g_free(q3);
        g_free(sz3);

        uint32_t *q2 = g_new0(uint32_t, (size_t)N * kw);
        hr_awq_unpack_rows(qw, N, K, 0, N, cuda_slot, (uint8_t *)q2, 4 * (size_t)kw);
        uint8_t *z = g_new(uint8_t, (size_t)N * ng);
        uint16_t *s2 = g_new(uint16_t, (size_t)N * ng);
        hr_awq_unpack_zeros(qz, N, ng, 0, N, z);
        hr_awq_unpack_scales(sc, N, ng, 0, N, s2);
        size_t bad = 0;
        for (size_t i = 0; i < (size_t)N * kw; i++)
            bad += q[i] != q2[i];
        HR_CHECK(bad == 0, "%dx%d: %zu of %zu weight words differ", N, K, bad, (size_t)N * kw);
        bad = 0;
        for (size_t i = 0; i < (size_t)N * ng; i++)
            bad += sz[i] != ((uint32_t)s2[i] | (uint32_t)hr_f32_to_f16((float)z[i]) << 16);
        HR_CHECK(bad == 0, "%dx%d: %zu of %zu scale/zero pairs differ", N, K, bad, (size_t)N * ng);
        g_free(qw), g_free(qz), g_free(sc), g_free(q), g_free(sz), g_free(q2), g_free(z), g_free(s2);
    }
    return hr_test_result();
}
