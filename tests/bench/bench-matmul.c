/* bench-matmul — GFLOP/s of the CPU matmul paths (engine/cpu/cpu-kernels.c).
 *
 * For weight shapes rows x cols against n tokens, F32 and F16 weights, on a
 * pool of 2 threads (or argv[1]): the row-at-a-time AVX2 kernel that
 * hr_matmul used for every n before the blocked GEMM ("rows"), the GEMM in
 * AVX2 and in AVX-512 where the CPU has it, and what hr_matmul picks now
 * ("auto"). Each figure is 2*rows*cols*n / the median wall time of several
 * runs. Prints figures, asserts nothing; run a release build:
 *
 *   meson setup build-rel --buildtype=release && ninja -C build-rel
 *   ./build-rel/tests/bench-matmul [THREADS] [RUNS] [cpu]
 *
 * With "cpu" the time is the process's CPU time divided by the threads
 * (the pool's workers sleep when idle), which is what the threads would
 * reach with a core each: use it on a machine shared with other work,
 * where wall times swing with the load.
 *
 * HEARTH_BENCH_QUICK=1 runs only the small shapes (a smoke test).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <glib.h>

#include "cpu-kernels.h"
#include "hr-half.h"

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static bool use_cpu_time;

static double
now(int threads)
{
    if (!use_cpu_time)
        return (double)g_get_monotonic_time() / 1e6;
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ((double)ts.tv_sec + (double)ts.tv_nsec / 1e9) / threads;
}

static double
gflops(HrMatmulImpl impl, HrThreadPool *pool, const HrMat *w, const float *x, int n, float *out, int runs)
{
    double t[16];
    if (runs > 16)
        runs = 16;
    hr_matmul_impl(impl, pool, out, w, NULL, x, n, NULL); /* warm up */
    for (int i = 0; i < runs; i++) {
        double t0 = now(hr_pool_size(pool));
        hr_matmul_impl(impl, pool, out, w, NULL, x, n, NULL);
        t[i] = now(hr_pool_size(pool)) - t0;
    }
    qsort(t, (size_t)runs, sizeof t[0], cmp_double);
    double med = runs % 2 ? t[runs / 2] : 0.5 * (t[runs / 2 - 1] + t[runs / 2]);
    return 2.0 * w->rows * (double)w->cols * n / med / 1e9;
}

int
main(int argc, char **argv)
{
    int threads = argc > 1 ? atoi(argv[1]) : 2;
    int runs = argc > 2 ? atoi(argv[2]) : 5;
    use_cpu_time = argc > 3 && strcmp(argv[3], "cpu") == 0;
    static const struct { int rows, cols, n; } shapes[] = {
        { 576, 576, 64 },    { 576, 576, 512 },    { 576, 576, 4096 },
        { 1536, 576, 64 },   { 1536, 576, 512 },   { 1536, 576, 4096 },
        { 576, 1536, 64 },   { 576, 1536, 512 },   { 576, 1536, 4096 },
        { 2048, 2048, 512 }, { 8192, 2048, 512 }, { 2048, 8192, 512 },
    };
    const bool quick = g_getenv("HEARTH_BENCH_QUICK") != NULL;
    const bool avx512 = hr_matmul_impl_available(HR_MATMUL_GEMM_AVX512);
    HrThreadPool *pool = hr_pool_new(threads);
    printf("threads %d, median of %d runs; GFLOP/s by %s time; auto = %s\n", hr_pool_size(pool), runs,
           use_cpu_time ? "CPU (per thread)" : "wall",
           hr_matmul_impl_available(HR_MATMUL_GEMM_AVX2) ? (avx512 ? "gemm-avx512" : "gemm-avx2") : "scalar");
    printf("%-12s %5s %5s %10s %10s %12s %10s %8s\n", "rows x cols", "n", "dtype", "rows(old)", "gemm-avx2",
           "gemm-avx512", "auto", "speedup");
    GRand *rng = g_rand_new_with_seed(1);
    for (size_t s = 0; s < G_N_ELEMENTS(shapes); s++) {
        const int rows = shapes[s].rows, cols = shapes[s].cols, n = shapes[s].n;
        if (quick && (size_t)rows * cols * n > (size_t)576 * 576 * 512)
            continue;
        float *wf = g_new(float, (size_t)rows * cols);
        uint16_t *wh = g_new(uint16_t, (size_t)rows * cols);
        float *x = g_new(float, (size_t)n * cols);
        float *out = g_new(float, (size_t)n * rows);
        for (size_t i = 0; i < (size_t)rows * cols; i++) {
            wf[i] = (float)g_rand_double_range(rng, -0.1, 0.1);
            wh[i] = hr_f32_to_f16(wf[i]);
        }
        for (size_t i = 0; i < (size_t)n * cols; i++)
            x[i] = (float)g_rand_double_range(rng, -1.0, 1.0);
        for (int d = 0; d < 2; d++) {
            HrMat w = { d ? (const void *)wh : (const void *)wf, d ? HR_DTYPE_F16 : HR_DTYPE_F32, rows, cols };
            /* The old path is slow on the big shapes: fewer runs. */
            int old_runs = (size_t)rows * cols * n > (size_t)1 << 30 ? 3 : runs;
            double old = gflops(HR_MATMUL_ROWS_AVX2, pool, &w, x, n, out, old_runs);
            double g2 = gflops(HR_MATMUL_GEMM_AVX2, pool, &w, x, n, out, runs);
            double g5 = avx512 ? gflops(HR_MATMUL_GEMM_AVX512, pool, &w, x, n, out, runs) : 0.0;
            double au = gflops(HR_MATMUL_AUTO, pool, &w, x, n, out, runs);
            char shape[32];
            g_snprintf(shape, sizeof shape, "%dx%d", rows, cols);
            printf("%-12s %5d %5s %10.1f %10.1f %12.1f %10.1f %7.1fx\n", shape, n, d ? "F16" : "F32", old, g2, g5, au,
                   au / old);
            fflush(stdout);
        }
        g_free(wf);
        g_free(wh);
        g_free(x);
        g_free(out);
    }
    g_rand_free(rng);
    hr_pool_free(pool);
    return 0;
}
