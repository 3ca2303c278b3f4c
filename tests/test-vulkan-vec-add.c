/* The shader pipeline end to end on a real Vulkan driver (lavapipe in CI):
 * embedded SPIR-V -> pipeline -> dispatch -> readback, with the Khronos
 * validation layer on and zero messages allowed. */
#include <math.h>
#include <string.h>

#include <glib.h>

#include "hr-test.h"
#include "vulkan/vk-ops.h"

int
main(void)
{
    HrVkContext *ctx = hr_test_vulkan_context(true);
    printf("%s", hr_vk_context_selection_report(ctx));

    /* Not a multiple of the workgroup size, to exercise the bounds check. */
    const uint32_t n = 100003;
    float *a = g_new(float, n), *b = g_new(float, n), *c = g_new(float, n);
    for (uint32_t i = 0; i < n; i++) {
        a[i] = (float)i * 0.5f;
        b[i] = 1.0f - (float)(i % 97);
        c[i] = NAN;
    }
    HrError err = { 0 };
    HrStatus st = hr_vk_vec_add(ctx, a, b, c, n, &err);
    HR_CHECK(st == HR_OK, "vec_add: %s", err.message);
    uint32_t bad = 0;
    for (uint32_t i = 0; st == HR_OK && i < n; i++) {
        if (c[i] != a[i] + b[i] && bad++ < 5)
            fprintf(stderr, "c[%u] = %g, expected %g\n", i, c[i], a[i] + b[i]);
    }
    HR_CHECK(bad == 0, "%u wrong elements", bad);

    uint32_t msgs = hr_vk_context_validation_messages(ctx);
    hr_vk_context_free(ctx);
    HR_CHECK(msgs == 0, "the validation layer reported %u message(s)", msgs);
    g_free(a);
    g_free(b);
    g_free(c);
    return hr_test_result();
}
