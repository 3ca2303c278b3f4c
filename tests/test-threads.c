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

int
main(void)
{
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
    return hr_test_result();
}
