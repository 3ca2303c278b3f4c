/* The CUDA build end to end: SKIP (77) where no CUDA device is present. */
#include <glib.h>

#include "hr-test-cuda.h"
#include "hr-test.h"

int
main(void)
{
    hr_test_need_cuda();

    const int n = 1 << 20;
    float *a = g_new(float, n), *b = g_new(float, n), *c = g_new0(float, n);
    for (int i = 0; i < n; i++) {
        a[i] = (float)i;
        b[i] = 2.0f * (float)(i % 13);
    }
    char msg[256] = "";
    int rc = hr_cuda_vec_add(a, b, c, n, msg, sizeof msg);
    HR_CHECK(rc == 0, "vec_add: %s", msg);
    int bad = 0;
    for (int i = 0; rc == 0 && i < n; i++)
        bad += c[i] != a[i] + b[i];
    HR_CHECK(bad == 0, "%d wrong elements", bad);
    g_free(a);
    g_free(b);
    g_free(c);
    return hr_test_result();
}
