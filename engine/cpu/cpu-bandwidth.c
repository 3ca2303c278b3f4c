/* cpu-bandwidth.c — the host's memory read bandwidth (see cpu-bandwidth.h). */
#include "cpu-bandwidth.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <glib.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HR_BW_X86 1
#endif

enum {
    BW_CHUNK = 256 << 10,           /* bytes per work item */
    BW_N_CHUNKS = (512 << 20) / BW_CHUNK,
    BW_PASSES = 5,
};

typedef struct {
    unsigned char *buf;
    uint64_t *sums;    /* one per chunk: the reads cannot be optimized away */
    int avx2;
} BwJob;

#ifdef HR_BW_X86
/* XOR of the chunk into 8 independent 256-bit accumulators, 256 bytes per
 * step: 8 loads and 8 single-cycle ALU ops, far above any DRAM bandwidth. */
__attribute__((target("avx2"))) static uint64_t
read_chunk_avx2(const unsigned char *p)
{
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
    for (size_t i = 0; i < BW_CHUNK; i += 256) {
        const __m256i *v = (const __m256i *)(p + i);
        _mm_prefetch((const char *)(p + i + 4096), _MM_HINT_T0);
        _mm_prefetch((const char *)(p + i + 4096 + 64), _MM_HINT_T0);
        _mm_prefetch((const char *)(p + i + 4096 + 128), _MM_HINT_T0);
        _mm_prefetch((const char *)(p + i + 4096 + 192), _MM_HINT_T0);
        a0 = _mm256_xor_si256(a0, _mm256_load_si256(v + 0));
        a1 = _mm256_xor_si256(a1, _mm256_load_si256(v + 1));
        a2 = _mm256_xor_si256(a2, _mm256_load_si256(v + 2));
        a3 = _mm256_xor_si256(a3, _mm256_load_si256(v + 3));
        a4 = _mm256_xor_si256(a4, _mm256_load_si256(v + 4));
        a5 = _mm256_xor_si256(a5, _mm256_load_si256(v + 5));
        a6 = _mm256_xor_si256(a6, _mm256_load_si256(v + 6));
        a7 = _mm256_xor_si256(a7, _mm256_load_si256(v + 7));
    }
    a0 = _mm256_xor_si256(_mm256_xor_si256(_mm256_xor_si256(a0, a1), _mm256_xor_si256(a2, a3)),
                          _mm256_xor_si256(_mm256_xor_si256(a4, a5), _mm256_xor_si256(a6, a7)));
    __m128i h = _mm_xor_si128(_mm256_castsi256_si128(a0), _mm256_extracti128_si256(a0, 1));
    return (uint64_t)_mm_cvtsi128_si64(h) ^ (uint64_t)_mm_extract_epi64(h, 1);
}
#endif

/* Portable: 8 independent 64-bit accumulators, 64 bytes per step (the
 * compiler may widen them further). */
static uint64_t
read_chunk_portable(const unsigned char *p)
{
    const uint64_t *v = (const uint64_t *)p;
    uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0, a6 = 0, a7 = 0;
    for (size_t i = 0; i < BW_CHUNK / sizeof(uint64_t); i += 8) {
        a0 ^= v[i];
        a1 ^= v[i + 1];
        a2 ^= v[i + 2];
        a3 ^= v[i + 3];
        a4 ^= v[i + 4];
        a5 ^= v[i + 5];
        a6 ^= v[i + 6];
        a7 ^= v[i + 7];
    }
    return a0 ^ a1 ^ a2 ^ a3 ^ a4 ^ a5 ^ a6 ^ a7;
}

static void
touch_range(void *arg, int start, int end)
{
    BwJob *j = arg;
    for (int c = start; c < end; c++)
        memset(j->buf + (size_t)c * BW_CHUNK, 0x5a + (c & 31), BW_CHUNK);
}

static void
read_range(void *arg, int start, int end)
{
    BwJob *j = arg;
    for (int c = start; c < end; c++) {
        const unsigned char *p = j->buf + (size_t)c * BW_CHUNK;
#ifdef HR_BW_X86
        if (j->avx2) {
            j->sums[c] = read_chunk_avx2(p);
            continue;
        }
#endif
        j->sums[c] = read_chunk_portable(p);
    }
}

HrStatus
hr_cpu_read_bandwidth(HrThreadPool *pool, double *bytes_per_s, HrError *err)
{
    const size_t bytes = (size_t)BW_N_CHUNKS * BW_CHUNK;
    void *buf = NULL;
    if (posix_memalign(&buf, (size_t)2 << 20, bytes) != 0)
        return hr_error_set(err, HR_ERR_NOMEM, "bandwidth probe: cannot allocate %zu MiB", bytes >> 20);
#ifdef MADV_HUGEPAGE
    madvise(buf, bytes, MADV_HUGEPAGE); /* as the weights are (hr_weights_alloc) */
#endif
    BwJob j = { buf, g_new(uint64_t, BW_N_CHUNKS), 0 };
#ifdef HR_BW_X86
    __builtin_cpu_init();
    j.avx2 = __builtin_cpu_supports("avx2") != 0;
#endif
    /* Written by the threads that read it (same split of chunks): the
     * pages are faulted in and local to their reader. */
    hr_pool_run(pool, touch_range, &j, BW_N_CHUNKS, 1);
    double best = 0.0;
    for (int pass = 0; pass < BW_PASSES; pass++) {
        gint64 t0 = g_get_monotonic_time();
        hr_pool_run(pool, read_range, &j, BW_N_CHUNKS, 1);
        gint64 dt = g_get_monotonic_time() - t0;
        double bw = (double)bytes / ((double)(dt > 0 ? dt : 1) / 1e6);
        if (bw > best)
            best = bw;
    }
    free(buf);
    g_free(j.sums);
    *bytes_per_s = best;
    return HR_OK;
}
