/* The CUDA build end to end: SKIP (77) where no CUDA device is present. */
#include <glib.h>

#include "cuda/hr-cuda.h"
#include "hr-test.h"

int
main(void)
{
    int count = 0;
    char msg[256] = "";
    if (hr_cuda_device_count(&count, msg, sizeof msg) != 0 || count == 0)
        hr_test_skip("no CUDA device (%s)", msg[0] ? msg : "cudaGetDeviceCount found none");

    const int n = 1 << 20;
    float *a = g_new(float, n), *b = g_new(float, n), *c = g_new0(float, n);
    for (int i = 0; i < n; i++) {
        a[i] = (float)i;
        b[i] = 2.0f * (float)(i % 13);
    }
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
