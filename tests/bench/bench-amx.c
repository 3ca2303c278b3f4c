/* bench-amx — the AWQ search's GEMM on the CPU: the FP32 AVX-512 GEMM
 * (hr_matmul) against the AMX split-BF16 GEMM (hr_amx_matmul_packed, the
 * weights split once, as the search does per ratio; AMX only) and the BF16
 * form (hr_amx_pack_bf16, one tile product per pair of tiles on AMX, or
 * vdpbf16ps on a CPU with AVX512-BF16 and no AMX), on the shapes of a
 * Llama-3.2-1B layer with 512 tokens per call (one calibration window).
 * Alternates the two, three rounds, and prints ms and GFLOP/s (2 T N K per
 * product) per call; asserts nothing. Use a release build on a quiet
 * machine; HEARTH_POOL_FIXED=1 keeps the pool's width fixed:
 *
 *   HEARTH_POOL_FIXED=1 ./build-rel/tests/bench-amx [THREADS]
 */
#include <stdio.h>
#include <stdlib.h>

#include <glib.h>

#include "cpu-amx.h"
#include "cpu-kernels.h"

int
main(int argc, char **argv)
{
    if (!hr_cpu_bf16_products()) {
        printf("bench-amx: neither AMX-BF16 nor AVX512-BF16 on this CPU (or HEARTH_CPU_NO_BF16 is set)\n");
        return 0;
    }
    const bool amx = hr_cpu_amx();
    printf("the BF16 form on %s\n", amx ? "AMX tiles" : "AVX512-BF16 (no AMX: no split form)");
    const int threads = argc > 1 ? atoi(argv[1]) : 0;
    HrThreadPool *pool = hr_pool_new(threads);
    static const struct {
        const char *what;
        int N, K;
    } shapes[] = {
        { "q_proj / o_proj 2048 x 2048", 2048, 2048 },
        { "gate_proj / up_proj 8192 x 2048", 8192, 2048 },
        { "down_proj 2048 x 8192", 2048, 8192 },
    };
    const int T = 512;
    GRand *rng = g_rand_new_with_seed(1);
    printf("%d threads, %d tokens per call\n", hr_pool_size(pool), T);
    for (size_t s = 0; s < G_N_ELEMENTS(shapes); s++) {
        const int N = shapes[s].N, K = shapes[s].K;
        float *w = g_new(float, (size_t)N * K), *x = g_new(float, (size_t)T * K), *out = g_new(float, (size_t)T * N);
        for (size_t i = 0; i < (size_t)N * K; i++)
            w[i] = (float)g_rand_double_range(rng, -0.05, 0.05);
        for (size_t i = 0; i < (size_t)T * K; i++)
            x[i] = (float)g_rand_double_range(rng, -2.0, 2.0);
        HrMat m = { w, HR_DTYPE_F32, N, K };
        gint64 t0 = g_get_monotonic_time();
        HrAmxWeights *pw = amx ? hr_amx_pack(pool, w, N, K) : NULL;
        double pack_ms = (double)(g_get_monotonic_time() - t0) / 1e3;
        HrAmxWeights *pb = hr_amx_pack_bf16(pool, w, N, K);
        const double gflop = 2.0 * T * N * K / 1e9;
        hr_matmul(pool, out, &m, NULL, x, T, NULL); /* first touch of out */
        printf("%s (split once: %.1f ms)\n", shapes[s].what, pack_ms);
        for (int round = 0; round < 3; round++) {
            t0 = g_get_monotonic_time();
            hr_matmul(pool, out, &m, NULL, x, T, NULL);
            gint64 t1 = g_get_monotonic_time();
            if (amx)
                hr_amx_matmul_packed(pool, out, pw, NULL, x, T);
            gint64 t2 = g_get_monotonic_time();
            hr_amx_matmul_packed_add(pool, out, out, pb, x, T);
            gint64 t3 = g_get_monotonic_time();
            double a = (double)(t1 - t0) / 1e3, b = (double)(t2 - t1) / 1e3, c = (double)(t3 - t2) / 1e3;
            if (amx)
                printf("  round %d: fp32 %.1f ms %.0f GFLOP/s | amx %.1f ms %.0f GFLOP/s (%.2fx) | amx bf16 %.1f ms "
                       "%.0f GFLOP/s (%.2fx)\n",
                       round + 1, a, gflop / a * 1e3, b, gflop / b * 1e3, a / b, c, gflop / c * 1e3, a / c);
            else
                printf("  round %d: fp32 %.1f ms %.0f GFLOP/s | avx512 bf16 %.1f ms %.0f GFLOP/s (%.2fx)\n", round + 1, a,
                       gflop / a * 1e3, c, gflop / c * 1e3, a / c);
        }
        hr_amx_free(pw);
        hr_amx_free(pb);
        g_free(w);
        g_free(x);
        g_free(out);
    }
    g_rand_free(rng);
    hr_pool_free(pool);
    return 0;
}
