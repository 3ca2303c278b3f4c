/* bench-cuda-repack — the CUDA backend's load-time AWQ repack on the host
 * (no device needed): the current nibble-at-a-time repack against the
 * shared transposition on 1 and 2 threads (HEARTH_CUDA_REPACK=layout), on
 * one random 11008 x 4096 g128 matrix (an MLP matrix of Llama-2-7B), three
 * rounds. Prints milliseconds; asserts nothing (test-cuda-repack checks the
 * words). Release build:
 *
 *   ./build-rel/tests/bench-cuda-repack
 */
#include <stdio.h>

#include <glib.h>

#include "cuda/hr-cuda-kernels.h"

int
main(void)
{
    const int N = 11008, K = 4096, ng = 32;
    GRand *r = g_rand_new_with_seed(1);
    uint32_t *qw = g_new(uint32_t, (size_t)K * N / 8), *qz = g_new(uint32_t, (size_t)ng * N / 8);
    uint16_t *sc = g_new(uint16_t, (size_t)ng * N);
    for (size_t i = 0; i < (size_t)K * N / 8; i++)
        qw[i] = g_rand_int(r);
    for (size_t i = 0; i < (size_t)ng * N / 8; i++)
        qz[i] = g_rand_int(r);
    for (size_t i = 0; i < (size_t)ng * N; i++)
        sc[i] = 0x2000;
    HrCudaHostMat m = { .qweight = (const int32_t *)qw, .qzeros = (const int32_t *)qz, .scales = sc, .rows = N,
                        .cols = K, .n_groups = ng };
    const int kw = hr_cuda_q4_words(K);
    uint32_t *q = g_new(uint32_t, (size_t)N * kw), *sz = g_new(uint32_t, (size_t)N * ng);
    for (int rep = 0; rep < 3; rep++) {
        gint64 t0 = g_get_monotonic_time();
        hr_cuda_awq_repack(&m, q, sz);
        gint64 t1 = g_get_monotonic_time();
        hr_cuda_awq_repack_layout(&m, 1, q, sz);
        gint64 t2 = g_get_monotonic_time();
        hr_cuda_awq_repack_layout(&m, 2, q, sz);
        gint64 t3 = g_get_monotonic_time();
        printf("%dx%d g128: current %.1f ms, layout 1 thread %.1f ms, layout 2 threads %.1f ms\n", N, K,
               (double)(t1 - t0) / 1e3, (double)(t2 - t1) / 1e3, (double)(t3 - t2) / 1e3);
    }
    g_free(qw);
    g_free(qz);
    g_free(sc);
    g_free(q);
    g_free(sz);
    g_rand_free(r);
    return 0;
}
