/* cpu-threads.h — a persistent pool of worker threads for the CPU backend.
 *
 * hr_pool_run() splits [0, n) into one contiguous range per thread (the
 * calling thread takes the first) and returns when all are done. Between
 * calls workers spin for a few hundred microseconds (a decode step's gaps
 * between matmuls), then sleep on a condition variable.
 */
#pragma once

typedef struct HrThreadPool HrThreadPool;

typedef void (*HrRangeFunc)(void *arg, int start, int end);

/* n_threads <= 1 gives a pool that runs everything on the caller. */
HrThreadPool *hr_pool_new(int n_threads);
void hr_pool_free(HrThreadPool *pool);
int hr_pool_size(const HrThreadPool *pool);

/* Ranges are aligned to `align` items (except the last), so work split by
 * rows can keep SIMD-friendly blocks. pool may be NULL (serial). */
void hr_pool_run(HrThreadPool *pool, HrRangeFunc fn, void *arg, int n, int align);
