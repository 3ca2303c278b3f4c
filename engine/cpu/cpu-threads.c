#include "cpu-threads.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include <glib.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#else
#define cpu_relax() ((void)0)
#endif

/* How long a worker spins for the next job, and the caller for the
 * workers' end, before sleeping on the condition variable. A decode step
 * runs a few hundred short matmuls with a little serial work between them;
 * waking a sleeping thread costs tens of microseconds each time, so the
 * threads spin across those gaps and only sleep when the engine is idle. */
#define SPIN_US 300

struct HrThreadPool {
    int n_threads;              /* including the caller */
    pthread_t *threads;         /* [n_threads - 1] */
    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_cond_t done;
    unsigned generation;        /* bumped for every job, under lock; read atomically */
    int pending;                /* workers still running the current job (atomic) */
    int stop;                   /* under lock; read atomically */
    HrRangeFunc fn;
    void *arg;
    int n, align;
};

typedef struct {
    HrThreadPool *pool;
    int index;
} Worker;

static void
job_range(const HrThreadPool *p, int index, int *start, int *end)
{
    int blocks = (p->n + p->align - 1) / p->align;
    int per = blocks / p->n_threads, extra = blocks % p->n_threads;
    int b0 = index * per + (index < extra ? index : extra);
    int b1 = b0 + per + (index < extra ? 1 : 0);
    *start = b0 * p->align;
    *end = b1 * p->align < p->n ? b1 * p->align : p->n;
}

static bool
job_posted(const HrThreadPool *p, unsigned seen)
{
    return __atomic_load_n(&p->generation, __ATOMIC_ACQUIRE) != seen || __atomic_load_n(&p->stop, __ATOMIC_ACQUIRE);
}

static bool
job_done(const HrThreadPool *p, unsigned unused)
{
    (void)unused;
    return __atomic_load_n(&p->pending, __ATOMIC_ACQUIRE) == 0;
}

/* Spin until ready(p, arg), for at most SPIN_US; false if it never was. */
static bool
spin_until(bool (*ready)(const HrThreadPool *, unsigned), const HrThreadPool *p, unsigned arg)
{
    gint64 t0 = 0;
    for (unsigned i = 1;; i++) {
        if (ready(p, arg))
            return true;
        cpu_relax();
        if ((i & 63) == 0) {
            gint64 t = g_get_monotonic_time();
            if (!t0)
                t0 = t;
            else if (t - t0 > SPIN_US)
                return false;
        }
    }
}

static void *
worker_main(void *data)
{
    Worker *w = data;
    HrThreadPool *p = w->pool;
    unsigned seen = 0;
    for (;;) {
        if (!spin_until(job_posted, p, seen)) {
            pthread_mutex_lock(&p->lock);
            while (p->generation == seen && !p->stop)
                pthread_cond_wait(&p->wake, &p->lock);
            pthread_mutex_unlock(&p->lock);
        }
        if (__atomic_load_n(&p->stop, __ATOMIC_ACQUIRE))
            break;
        seen = __atomic_load_n(&p->generation, __ATOMIC_ACQUIRE);

        int start, end;
        job_range(p, w->index, &start, &end);
        if (start < end)
            p->fn(p->arg, start, end);

        if (__atomic_sub_fetch(&p->pending, 1, __ATOMIC_ACQ_REL) == 0) {
            pthread_mutex_lock(&p->lock);
            pthread_cond_signal(&p->done);
            pthread_mutex_unlock(&p->lock);
        }
    }
    g_free(w);
    return NULL;
}

HrThreadPool *
hr_pool_new(int n_threads)
{
    HrThreadPool *p = g_new0(HrThreadPool, 1);
    p->n_threads = n_threads > 1 ? n_threads : 1;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->done, NULL);
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
    return p;
}

void
hr_pool_free(HrThreadPool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    __atomic_store_n(&p->stop, 1, __ATOMIC_RELEASE);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
    for (int i = 1; i < p->n_threads; i++)
        pthread_join(p->threads[i - 1], NULL);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->done);
    g_free(p->threads);
    g_free(p);
}

int
hr_pool_size(const HrThreadPool *p)
{
    return p ? p->n_threads : 1;
}

void
hr_pool_run(HrThreadPool *p, HrRangeFunc fn, void *arg, int n, int align)
{
    if (n <= 0)
        return;
    if (align < 1)
        align = 1;
    if (!p || p->n_threads == 1 || n <= align) {
        fn(arg, 0, n);
        return;
    }
    pthread_mutex_lock(&p->lock);
    p->fn = fn;
    p->arg = arg;
    p->n = n;
    p->align = align;
    __atomic_store_n(&p->pending, p->n_threads - 1, __ATOMIC_RELAXED);
    __atomic_store_n(&p->generation, p->generation + 1, __ATOMIC_RELEASE);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);

    int start, end;
    job_range(p, 0, &start, &end);
    if (start < end)
        fn(arg, start, end);

    spin_until(job_done, p, 0);
    pthread_mutex_lock(&p->lock);
    while (__atomic_load_n(&p->pending, __ATOMIC_ACQUIRE) > 0)
        pthread_cond_wait(&p->done, &p->lock);
    pthread_mutex_unlock(&p->lock);
}
