/* cpu-threads.h — a persistent pool of worker threads for the CPU backend.
 *
 * hr_pool_run() cuts [0, n) into chunks of whole `align` blocks, several per
 * thread, which the threads (the caller too) claim one at a time; it returns
 * when every chunk is done. A thread the OS takes off its core (another
 * program is busy) delays only the chunk it holds; the others take the
 * rest. Between jobs threads spin briefly, yielding to anything else
 * runnable, then sleep on a futex. An adaptive width (on unless a width is
 * forced with HEARTH_POOL_FIXED or hr_pool_set_adaptive) makes the pool one
 * thread narrower for a while when the time spent waiting for the last
 * chunks shows a thread keeps falling behind, and tries again later.
 * Results never depend on the split: each item is computed by one call of
 * fn, and chunk edges fall on `align` blocks.
 */
#pragma once

#include <stdbool.h>

typedef struct HrThreadPool HrThreadPool;

typedef void (*HrRangeFunc)(void *arg, int start, int end);

/* n_threads <= 0: hr_cpu_default_threads(); 1 gives a pool that runs
 * everything on the caller. */
HrThreadPool *hr_pool_new(int n_threads);
void hr_pool_free(HrThreadPool *pool);
/* Threads taking part now (the adaptive width), including the caller. */
int hr_pool_size(const HrThreadPool *pool);
/* Threads created, including the caller (the most that can take part). */
int hr_pool_threads(const HrThreadPool *pool);
void hr_pool_set_adaptive(HrThreadPool *pool, bool adaptive);

/* Chunk edges are multiples of `align` items (except the end), so work split
 * by rows keeps SIMD-friendly blocks. pool may be NULL (serial). */
void hr_pool_run(HrThreadPool *pool, HrRangeFunc fn, void *arg, int n, int align);

/* The physical cores this process may run on (SMT siblings counted once). */
int hr_cpu_default_threads(void);

/* Tests: called by the thread (0 = the caller) that claimed chunk `chunk`,
 * before it runs it (e.g. to sleep in the middle of a job). */
typedef void (*HrPoolHook)(void *user, int thread, int chunk);
void hr_pool_set_hook(HrThreadPool *pool, HrPoolHook hook, void *user);
