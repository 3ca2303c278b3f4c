#include "hr-devices.h"

#include "backend.h"

#include "hearth-config.h"

#if HEARTH_HAVE_VULKAN
#include "vulkan/vk-context.h"
#endif
#if HEARTH_HAVE_CUDA
#include "cuda/hr-cuda.h"
#endif

static void
report_cpu(GString *out)
{
    g_string_append(out, "CPU backend: built in\n");
    g_string_append_printf(out, "  [0] host CPU, %u threads", g_get_num_processors());
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    g_string_append_printf(out, ", AVX2 %s, FMA %s, F16C %s",
                           __builtin_cpu_supports("avx2") ? "yes" : "no",
                           __builtin_cpu_supports("fma") ? "yes" : "no",
                           __builtin_cpu_supports("f16c") ? "yes" : "no");
#endif
    g_string_append(out, "\n");
}

static void
report_vulkan(GString *out)
{
#if HEARTH_HAVE_VULKAN
    g_string_append(out, "Vulkan backend: built in\n");
    hr_vk_describe_devices(out);
#else
    g_string_append(out, "Vulkan backend: not built (configure with -Dvulkan=enabled; needs Vulkan headers and glslc)\n");
#endif
}

static void
report_cuda(GString *out)
{
#if HEARTH_HAVE_CUDA
    int v = hr_cuda_runtime_version();
    g_string_append_printf(out, "CUDA backend: built in (CUDA runtime %d.%d)\n", v / 1000, (v % 1000) / 10);
    int n = 0;
    char msg[256];
    if (hr_cuda_device_count(&n, msg, sizeof msg) != 0) {
        g_string_append_printf(out, "  no CUDA device: %s\n", msg);
        return;
    }
    if (n == 0) {
        g_string_append(out, "  no CUDA device\n");
        return;
    }
    for (int i = 0; i < n; i++) {
        if (hr_cuda_device_describe(i, msg, sizeof msg) == 0)
            g_string_append_printf(out, "  [%d] %s\n", i, msg);
        else
            g_string_append_printf(out, "  [%d] unreadable: %s\n", i, msg);
    }
#else
    g_string_append(out, "CUDA backend: not built (configure with -Dcuda=enabled; needs nvcc)\n");
#endif
}

void
hr_devices_report(GString *out)
{
    report_cpu(out);
    report_vulkan(out);
    report_cuda(out);
    g_string_append_printf(out, "\nBackend \"auto\" picks: %s\n", hr_backend_auto_reason());
}
