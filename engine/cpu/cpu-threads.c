/* cpu-threads.c — the CPU backend's thread pool (see cpu-threads.h).
 *
 * A job [0, n) is cut into chunks of whole `align` blocks, about
 * CHUNKS_PER_THREAD per taking-part thread. Threads (the caller too) claim
 * chunks with a compare-and-swap on one 64-bit word, job generation << 32 |
 * next chunk, so a thread the OS has descheduled holds up at most the one
 * chunk it is running, never a fixed share of the job: the others take the
 * rest. The caller waits for the count of finished chunks, not for every
 * worker to check in, so a sleeping worker never delays a job it did not
 * join.
 *
 * Waiting (a worker for the next job, the caller for the last chunk) spins
 * for a short while, yielding the CPU to anything else runnable every few
 * dozen rounds, then sleeps on a futex. A decode step is hundreds of short
 * jobs with a little serial work between them: spinning across those gaps
 * avoids a wake-up per job on a quiet machine, and the yields hand the core
 * over at once on a busy one.
 *
 * Adaptive width: the caller measures, per job, the time it spends waiting
 * after it ran out of chunks to claim (the tail). When, over a window of
 * about WINDOW_US of jobs, twice in a row, the tail is more than
 * TAIL_SHRINK of the time, some thread keeps falling behind (another process has its core), and one
 * fewer thread takes part for HOLD_US (doubled each time growing back fails
 * at once, up to 8x); then the pool tries one more again.
 */
#include "cpu-threads.h"

#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <glib.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#else
#define cpu_relax() ((void)0)
#endif

#define CHUNKS_PER_THREAD 8
#define SPIN_US 300            /* spin (with yields) this long before sleeping */
#define YIELD_EVERY 32         /* spin rounds between sched_yield() calls */
#define WINDOW_US 20000        /* adaptive: judge the tail over this much job time */
#define TAIL_SHRINK 0.25       /* ... and shrink when it is more than this fraction */
#define HOLD_US 1000000        /* stay narrower this long before trying one more thread */

struct HrThreadPool {
    int n_threads;              /* created, including the caller */
    int active;                 /* taking part now, 1..n_threads (atomic; written by the caller) */
    int fixed;                  /* adaptive width off */
    pthread_t *threads;         /* [n_threads - 1] */

    /* The job: written (atomically, relaxed) by the caller before it
     * publishes `state`; read by a worker after it has seen the generation
     * in `state`, and used only when its claim (a CAS on `state`) succeeds. */
    HrRangeFunc fn;
    void *arg;
    int n, chunk;               /* items, items per chunk (a multiple of align) */
    uint64_t state;             /* generation << 32 | chunks << 16 | next chunk to claim */
    int finished;               /* chunks finished in this generation */

    /* Sleeping. */
    uint32_t wake_seq;          /* futex word: bumped when a job is posted or the pool stops */
    uint32_t width_seq;         /* futex word: bumped when the pool grows or stops */
    int sleepers;               /* workers asleep (or about to be) on wake_seq */
    uint32_t done_seq;          /* futex word: bumped when the last chunk of a job finishes */
    int caller_sleeping;
    int stop;

    /* Adaptive width (caller only). */
    gint64 win_total, win_tail; /* microseconds of jobs and of their tails in this window */
    gint64 hold_until;          /* no growing back before this (monotonic us) */
    int hold_shift;             /* HOLD_US << hold_shift */
    int behind_streak;          /* windows in a row with too much tail */
    gint64 grown_at;            /* when the width last grew (0: never) */
    HrPoolHook hook;
    void *hook_user;
};

typedef struct {
    HrThreadPool *pool;
    int index;
} Worker;

static long
futex_wait(uint32_t *addr, uint32_t val)
{
    return syscall(SYS_futex, addr, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
}

static void
futex_wake_all(uint32_t *addr)
{
    syscall(SYS_futex, addr, FUTEX_WAKE_PRIVATE, INT32_MAX, NULL, NULL, 0);
}

#define LOAD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)
#define STORE(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELAXED)

/* The state word: generation << 32 | chunks << 16 | next chunk to claim.
 * The job's chunk count lives in the word the claim compares, so a claim
 * can only succeed on a chunk that exists in a live job: a worker that read
 * the state of a job whose chunks were all claimed cannot take one once
 * the caller has begun to write the next job's fields (before, the count
 * was read from those fields and the claim could succeed on the old
 * generation with the new count: a chunk of a finished job, run on
 * whatever argument was there, counted into the next job). */
#define STATE(gen, chunks) ((uint64_t)(gen) << 32 | (uint64_t)(chunks) << 16)
#define STATE_GEN(s) ((uint32_t)((s) >> 32))
#define STATE_CHUNKS(s) ((uint32_t)((s) >> 16) & 0xffffu)
#define STATE_NEXT(s) ((uint32_t)(s) & 0xffffu)
#define MAX_CHUNKS 0xffff

/* Claim and run chunks of generation gen until none is left. thread: for
 * the test hook. */
static void
run_chunks(HrThreadPool *p, uint32_t gen, int thread)
{
    for (;;) {
        uint64_t s = __atomic_load_n(&p->state, __ATOMIC_ACQUIRE);
        if (STATE_GEN(s) != gen)
            return;
        uint32_t k = STATE_NEXT(s), n_chunks = STATE_CHUNKS(s);
        if (k >= n_chunks)
            return;
        if (!__atomic_compare_exchange_n(&p->state, &s, s + 1, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
            continue;
        /* Claimed chunk k of a live job: the caller cannot post another
         * before this chunk is counted, so the fields are this job's. */
        HrRangeFunc fn = LOAD(p->fn);
        void *arg = LOAD(p->arg);
        int n = LOAD(p->n), chunk = LOAD(p->chunk);
        if (p->hook)
            p->hook(p->hook_user, thread, (int)k);
        int start = (int)k * chunk, end = start + chunk < n ? start + chunk : n;
        fn(arg, start, end);
        if (__atomic_add_fetch(&p->finished, 1, __ATOMIC_SEQ_CST) == (int)n_chunks &&
            __atomic_load_n(&p->caller_sleeping, __ATOMIC_SEQ_CST)) {
            __atomic_add_fetch(&p->done_seq, 1, __ATOMIC_RELEASE);
            futex_wake_all(&p->done_seq);
        }
    }
}

/* Spin (yielding now and then) until ready(p) or SPIN_US have passed. */
static bool
spin_until(bool (*ready)(HrThreadPool *, uint32_t), HrThreadPool *p, uint32_t arg)
{
    gint64 t0 = 0;
    for (unsigned i = 1;; i++) {
        if (ready(p, arg))
            return true;
        cpu_relax();
        if (i % YIELD_EVERY == 0) {
            gint64 t = g_get_monotonic_time();
            if (!t0)
                t0 = t;
            else if (t - t0 > SPIN_US)
                return false;
            sched_yield();
        }
    }
}

/* Sequentially consistent: these pair with the other side's store of
 * sleepers / caller_sleeping (a store then a load on each side), so that
 * either the waiter sees the news or the poster sees the waiter. */
static bool
job_posted(HrThreadPool *p, uint32_t seen)
{
    return (uint32_t)(__atomic_load_n(&p->state, __ATOMIC_SEQ_CST) >> 32) != seen ||
           __atomic_load_n(&p->stop, __ATOMIC_SEQ_CST);
}

static bool
job_finished(HrThreadPool *p, uint32_t n_chunks)
{
    return (uint32_t)__atomic_load_n(&p->finished, __ATOMIC_SEQ_CST) >= n_chunks;
}

static void *
worker_main(void *data)
{
    Worker *w = data;
    HrThreadPool *p = w->pool;
    uint32_t seen = 0;
    for (;;) {
        /* Not taking part (the pool is narrower now): sleep until it grows. */
        uint32_t wseq = __atomic_load_n(&p->width_seq, __ATOMIC_SEQ_CST);
        if (w->index >= __atomic_load_n(&p->active, __ATOMIC_SEQ_CST) && !__atomic_load_n(&p->stop, __ATOMIC_SEQ_CST)) {
            futex_wait(&p->width_seq, wseq);
            continue;
        }
        if (!spin_until(job_posted, p, seen)) {
            uint32_t seq = __atomic_load_n(&p->wake_seq, __ATOMIC_SEQ_CST);
            __atomic_add_fetch(&p->sleepers, 1, __ATOMIC_SEQ_CST);
            if (!job_posted(p, seen))
                futex_wait(&p->wake_seq, seq);
            __atomic_sub_fetch(&p->sleepers, 1, __ATOMIC_SEQ_CST);
        }
        if (__atomic_load_n(&p->stop, __ATOMIC_ACQUIRE))
            break;
        uint32_t gen = (uint32_t)(__atomic_load_n(&p->state, __ATOMIC_ACQUIRE) >> 32);
        if (gen == seen || w->index >= __atomic_load_n(&p->active, __ATOMIC_ACQUIRE))
            continue;
        seen = gen;
        run_chunks(p, gen, w->index);
    }
    g_free(w);
    return NULL;
}

/* Physical cores this process may run on: distinct (package, core) pairs
 * among the CPUs of its affinity mask; SMT siblings share a core's units
 * and memory port, and a decode step is bound by those. */
int
hr_cpu_default_threads(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) != 0)
        return (int)g_get_num_processors();
    GHashTable *cores = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    int cpus = 0;
    for (int c = 0; c < CPU_SETSIZE; c++) {
        if (!CPU_ISSET(c, &set))
            continue;
        cpus++;
        char path[128];
        g_autofree char *core = NULL, *pkg = NULL;
        g_snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/topology/core_id", c);
        g_file_get_contents(path, &core, NULL, NULL);
        g_snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/topology/physical_package_id", c);
        g_file_get_contents(path, &pkg, NULL, NULL);
        g_hash_table_add(cores, core && pkg ? g_strdup_printf("%d:%d", atoi(pkg), atoi(core))
                                            : g_strdup_printf("cpu%d", c));
    }
    int n = (int)g_hash_table_size(cores);
    g_hash_table_destroy(cores);
    return n > 0 ? n : MAX(cpus, 1);
}

HrThreadPool *
hr_pool_new(int n_threads)
{
    HrThreadPool *p = g_new0(HrThreadPool, 1);
    if (n_threads <= 0) {
        n_threads = hr_cpu_default_threads();
    } else {
        p->fixed = g_getenv("HEARTH_POOL_FIXED") != NULL; /* benchmarks: the width as asked, always */
    }
    p->n_threads = n_threads > 1 ? n_threads : 1;
    p->threads = g_new0(pthread_t, p->n_threads);
    for (int i = 1; i < p->n_threads; i++) {
        Worker *w = g_new(Worker, 1);
        w->pool = p;
        w->index = i;
        if (pthread_create(&p->threads[i - 1], NULL, worker_main, w) != 0) {
            /* Fewer threads than asked: run with what started. */
            g_free(w);
            p->n_threads = i;
            break;
        }
    }
    p->active = p->n_threads;
    return p;
}

void
hr_pool_free(HrThreadPool *p)
{
    if (!p)
        return;
    __atomic_store_n(&p->stop, 1, __ATOMIC_SEQ_CST);
    __atomic_add_fetch(&p->wake_seq, 1, __ATOMIC_SEQ_CST);
    futex_wake_all(&p->wake_seq);
    __atomic_add_fetch(&p->width_seq, 1, __ATOMIC_SEQ_CST);
    futex_wake_all(&p->width_seq);
    for (int i = 1; i < p->n_threads; i++)
        pthread_join(p->threads[i - 1], NULL);
    g_free(p->threads);
    g_free(p);
}

int
hr_pool_size(const HrThreadPool *p)
{
    return p ? __atomic_load_n(&p->active, __ATOMIC_RELAXED) : 1;
}

int
hr_pool_threads(const HrThreadPool *p)
{
    return p ? p->n_threads : 1;
}


void
hr_pool_set_hook(HrThreadPool *p, HrPoolHook hook, void *user)
{
    p->hook = hook;
    p->hook_user = user;
}

static void
set_active(HrThreadPool *p, int active)
{
    bool grow = active > p->active;
    __atomic_store_n(&p->active, active, __ATOMIC_SEQ_CST);
    if (grow) {
        __atomic_add_fetch(&p->width_seq, 1, __ATOMIC_SEQ_CST);
        futex_wake_all(&p->width_seq);
    }
    if (g_getenv("HEARTH_POOL_DEBUG"))
        fprintf(stderr, "pool: %d of %d threads\n", active, p->n_threads);
}

void
hr_pool_set_adaptive(HrThreadPool *p, bool adaptive)
{
    if (!p)
        return;
    p->fixed = !adaptive;
    if (p->fixed && p->active != p->n_threads)
        set_active(p, p->n_threads);
}

/* After each job: judge the tail over a window of jobs and change the width. */
static void
adapt(HrThreadPool *p, gint64 total_us, gint64 tail_us, gint64 now)
{
    p->win_total += total_us;
    p->win_tail += tail_us;
    int active = p->active;
    if (active < p->n_threads && now >= p->hold_until) {
        set_active(p, active + 1);
        p->grown_at = now;
        p->win_total = p->win_tail = 0;
        return;
    }
    if (p->win_total < WINDOW_US)
        return;
    bool behind = (double)p->win_tail > TAIL_SHRINK * (double)p->win_total;
    /* Two windows in a row: one bad window is often a burst of work
     * elsewhere (the app's own main thread redrawing), not a busy core. */
    p->behind_streak = behind ? p->behind_streak + 1 : 0;
    if (p->behind_streak >= 2 && active > 1) {
        p->behind_streak = 0;
        /* Growing back failed within a window or two: wait longer next time. */
        bool soon = p->grown_at && now - p->grown_at < 4 * WINDOW_US;
        p->hold_shift = soon ? MIN(p->hold_shift + 1, 3) : 0;
        p->hold_until = now + ((gint64)HOLD_US << p->hold_shift);
        set_active(p, active - 1);
        p->grown_at = 0;
    }
    p->win_total = p->win_tail = 0;
}

void
hr_pool_run(HrThreadPool *p, HrRangeFunc fn, void *arg, int n, int align)
{
    if (n <= 0)
        return;
    if (align < 1)
        align = 1;
    int active = p ? p->active : 1;
    if (!p || p->n_threads == 1 || n <= align || (active == 1 && !p->hook)) {
        fn(arg, 0, n);
        /* Narrowed to one thread: only the clock decides when to grow back. */
        if (p && active == 1 && p->n_threads > 1 && !p->fixed)
            adapt(p, 0, 0, g_get_monotonic_time());
        return;
    }
    gint64 t0 = g_get_monotonic_time();
    int blocks = (n + align - 1) / align;
    int want = MIN(MIN(blocks, active * CHUNKS_PER_THREAD), MAX_CHUNKS);
    int per = (blocks + want - 1) / want;
    STORE(p->fn, fn);
    STORE(p->arg, arg);
    STORE(p->n, n);
    STORE(p->chunk, per * align);
    int n_chunks = (blocks + per - 1) / per;
    __atomic_store_n(&p->finished, 0, __ATOMIC_RELAXED);
    uint32_t gen = STATE_GEN(p->state) + 1;
    __atomic_store_n(&p->state, STATE(gen, n_chunks), __ATOMIC_SEQ_CST);
    if (active > 1 && __atomic_load_n(&p->sleepers, __ATOMIC_SEQ_CST) > 0) {
        __atomic_add_fetch(&p->wake_seq, 1, __ATOMIC_RELEASE);
        futex_wake_all(&p->wake_seq);
    }

    run_chunks(p, gen, 0);
    gint64 t1 = g_get_monotonic_time();
    if (!spin_until(job_finished, p, (uint32_t)n_chunks)) {
        for (;;) {
            uint32_t seq = __atomic_load_n(&p->done_seq, __ATOMIC_SEQ_CST);
            __atomic_store_n(&p->caller_sleeping, 1, __ATOMIC_SEQ_CST);
            if (job_finished(p, (uint32_t)n_chunks))
                break;
            futex_wait(&p->done_seq, seq);
            if (job_finished(p, (uint32_t)n_chunks))
                break;
        }
        __atomic_store_n(&p->caller_sleeping, 0, __ATOMIC_RELEASE);
    }
    if (!p->fixed) {
        gint64 t2 = g_get_monotonic_time();
        adapt(p, t2 - t0, t2 - t1, t2);
    }
}
