/* The CPU thread pool covers every index exactly once, for many sizes,
 * alignments and thread counts, and survives many back-to-back jobs. */
#include <stdatomic.h>
#include <string.h>

#include <glib.h>

#include "cpu-threads.h"
#include "hr-test.h"

typedef struct {
    atomic_int *hits;
    int align;
    atomic_int bad_align;
} Job;

static void
mark(void *arg, int start, int end)
{
    Job *j = arg;
    if (start % j->align != 0)
        atomic_fetch_add(&j->bad_align, 1);
    for (int i = start; i < end; i++)
        atomic_fetch_add(&j->hits[i], 1);
}

/* A thread that keeps falling behind (here: sleeps before each chunk it
 * takes, as one whose core another program holds): the others take the
 * rest of each job, every index is still done once, and the adaptive pool
 * soon stops using a thread. */
typedef struct {
    atomic_int by_thread[4];
} Seen;

static void
slow_thread_1(void *user, int thread, int chunk)
{
    Seen *seen = user;
    atomic_fetch_add(&seen->by_thread[thread & 3], 1);
    /* Every chunk takes a while off the CPU (so every thread gets chunks
     * however loaded the machine is), thread 1's much longer: it is behind
     * in every job it joins. */
    g_usleep(thread == 1 ? 5000 : 200);
}

static void
check_adaptive(void)
{
    HrThreadPool *pool = hr_pool_new(3);
    Seen seen = { 0 };
    hr_pool_set_hook(pool, slow_thread_1, &seen);
    const int n = 4096;
    atomic_int *hits = g_new0(atomic_int, n);
    Job job = { hits, 16, 0 };
    int jobs = 0;
    while (hr_pool_size(pool) == 3 && jobs < 200) {
        hr_pool_run(pool, mark, &job, n, 16);
        jobs++;
    }
    for (int i = 0; i < n; i++)
        HR_CHECK(atomic_load(&hits[i]) == jobs, "index %d hit %d times in %d jobs", i, atomic_load(&hits[i]), jobs);
    /* On a loaded machine (CI runs two sanitized tests on two cores) the
     * workers may get no core in time to claim a single chunk: then the
     * caller did every job alone and nothing fell behind to be dropped. */
    if (atomic_load(&seen.by_thread[1]) == 0)
        printf("slow thread: thread 1 never got a chunk in %d jobs (no core for it in time): nothing fell behind\n",
               jobs);
    else
        HR_CHECK(hr_pool_size(pool) < 3, "a thread falling behind in every job: still %d threads after %d jobs",
                 hr_pool_size(pool), jobs);
    HR_CHECK(hr_pool_threads(pool) == 3, "threads created %d", hr_pool_threads(pool));
    HR_CHECK(atomic_load(&seen.by_thread[0]) > atomic_load(&seen.by_thread[1]),
             "the caller took %d chunks, the slow thread %d", atomic_load(&seen.by_thread[0]),
             atomic_load(&seen.by_thread[1]));
    printf("slow thread: %d threads after %d jobs; chunks by thread %d %d %d\n", hr_pool_size(pool), jobs,
           atomic_load(&seen.by_thread[0]), atomic_load(&seen.by_thread[1]), atomic_load(&seen.by_thread[2]));
    /* Fixed width: all three take part again, and results stay whole. */
    hr_pool_set_adaptive(pool, false);
    HR_CHECK(hr_pool_size(pool) == 3, "fixed width %d", hr_pool_size(pool));
    memset(hits, 0, sizeof(atomic_int) * n);
    for (int rep = 0; rep < 20; rep++)
        hr_pool_run(pool, mark, &job, n, 16);
    for (int i = 0; i < n; i++)
        HR_CHECK(atomic_load(&hits[i]) == 20, "fixed: index %d hit %d times", i, atomic_load(&hits[i]));
    g_free(hits);
    hr_pool_free(pool);
}

/* Back-to-back jobs of two kinds with different chunk counts, each with
 * its own function and argument: a worker that read the state of a job
 * whose chunks were all claimed must not claim a chunk of it once the
 * caller has begun to post the next one (it would run the old or new
 * function on the wrong argument, after the caller returned: a
 * use-after-return of the caller's stack). Each function checks that its
 * argument is its own kind, and each job's items are counted exactly. */
typedef struct {
    int tag;
    int n;
    atomic_int *hits;
} Kind;

static atomic_int wrong_kind;

static void
count_kind(Kind *k, int tag, int start, int end)
{
    if (k->tag != tag || end > k->n)
        atomic_fetch_add(&wrong_kind, 1);
    else
        for (int i = start; i < end; i++)
            atomic_fetch_add(&k->hits[i], 1);
}

static void
kind_a(void *arg, int start, int end)
{
    count_kind(arg, 0xA, start, end);
}

static void
kind_b(void *arg, int start, int end)
{
    count_kind(arg, 0xB, start, end);
}

static void
check_back_to_back(int threads, int jobs)
{
    HrThreadPool *pool = hr_pool_new(threads);
    hr_pool_set_adaptive(pool, false);
    atomic_int *ha = g_new0(atomic_int, 64), *hb = g_new0(atomic_int, 7);
    int bad = 0, j = 0;
    for (; j < jobs && !bad; j++) {
        Kind a = { 0xA, 64, ha }, b = { 0xB, 7, hb };
        hr_pool_run(pool, kind_a, &a, a.n, 1);
        hr_pool_run(pool, kind_b, &b, b.n, 1);
        /* the argument dies here: a late chunk would see another tag */
        a.tag = b.tag = 0;
        for (int i = 0; i < 64 && !bad; i++)
            bad = atomic_load(&ha[i]) != j + 1;
        for (int i = 0; i < 7 && !bad; i++)
            bad = atomic_load(&hb[i]) != j + 1;
    }
    HR_CHECK(!bad && atomic_load(&wrong_kind) == 0,
             "%d threads, back-to-back job pairs: items counted wrong after pair %d of %d, or a chunk run with "
             "another job's argument (%d times)", threads, j, jobs, atomic_load(&wrong_kind));
    g_free(ha);
    g_free(hb);
    hr_pool_free(pool);
}

int
main(void)
{
    check_back_to_back(2, 200000);
    check_back_to_back(3, 100000);
    const int threads[] = { 1, 2, 3, 8 };
    const int sizes[] = { 1, 2, 7, 16, 17, 100, 1000, 4097 };
    const int aligns[] = { 1, 4, 16 };
    for (size_t ti = 0; ti < G_N_ELEMENTS(threads); ti++) {
        HrThreadPool *pool = hr_pool_new(threads[ti]);
        HR_CHECK(hr_pool_size(pool) == threads[ti], "pool size %d", hr_pool_size(pool));
        for (size_t si = 0; si < G_N_ELEMENTS(sizes); si++) {
            for (size_t ai = 0; ai < G_N_ELEMENTS(aligns); ai++) {
                int n = sizes[si];
                atomic_int *hits = g_new0(atomic_int, n);
                Job job = { hits, aligns[ai], 0 };
                for (int rep = 0; rep < 50; rep++)
                    hr_pool_run(pool, mark, &job, n, aligns[ai]);
                for (int i = 0; i < n; i++)
                    HR_CHECK(atomic_load(&hits[i]) == 50, "threads %d n %d align %d: index %d hit %d times",
                             threads[ti], n, aligns[ai], i, atomic_load(&hits[i]));
                HR_CHECK(atomic_load(&job.bad_align) == 0, "misaligned range start");
                g_free(hits);
                if (hr_test_failures)
                    break;
            }
        }
        hr_pool_free(pool);
    }
    check_adaptive();
    HR_CHECK(hr_cpu_default_threads() >= 1 && hr_cpu_default_threads() <= (int)g_get_num_processors(),
             "default threads %d", hr_cpu_default_threads());
    printf("default threads (physical cores): %d of %u CPUs\n", hr_cpu_default_threads(), g_get_num_processors());
    return hr_test_result();
}
