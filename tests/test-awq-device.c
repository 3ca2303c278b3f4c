/* test-awq-device.c — the AWQ search with its q,k,v and gate,up block
 * forwards on a backend's device (HEARTH_AWQ_DEVICE=1, quantize/awq-device.c)
 * against the search on the CPU, on the tiny fixtures (GQA, MHA with v -> o,
 * llama3 RoPE, Qwen2 biases, Mistral's window) at g = 32:
 *  - the CPU backend's op table (every build): FP32 weights, FP16 KV cache;
 *  - HR_AWQ_DEVICE_CUDA (test-awq-device-cuda-emu): the CUDA backend
 *    compiled for the host (tests/cuda-emu.h), registered as "cuda": FP16
 *    weights, as AutoAWQ searches on a GPU;
 *  - HR_AWQ_DEVICE_VULKAN (test-awq-device-vulkan): the Vulkan backend
 *    (lavapipe in CI; SKIP without a device), FP16 weights.
 * Per layer and group the best losses must agree within LOSS_TOL (relative;
 * the log prints 3 digits), so a ratio other than the CPU's passes only as
 * a near tie; how many groups chose the CPU's ratio is printed, with both
 * logs when one did not (or with HR_AWQ_DEVICE_LOGS set). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "backend.h"
#include "hr-awq-log.h"
#include "hr-test.h"
#include "quantize.h"

#ifdef HR_AWQ_DEVICE_CUDA
extern const HrBackendOps hr_cuda_backend;
#define BACKEND "cuda"
#define LOSS_TOL 3e-2
#elif defined HR_AWQ_DEVICE_VULKAN
#define BACKEND "vulkan"
#define LOSS_TOL 3e-2
#else
#define BACKEND "cpu"
#define LOSS_TOL 1e-2   /* the log's 3 digits: up to 6.5e-3 apart for equal losses */
#endif

/* "<group> a=<ratio> loss <best>" entries of the log, in order */
typedef struct {
    char group[16];
    double a, loss;
} Pick;

static int
parse(const char *log, Pick *p, int cap)
{
    int n = 0;
    for (const char *s = log; (s = strstr(s, " a=")) && n < cap; s += 3) {
        const char *g = s;
        while (g > log && g[-1] != ' ' && g[-1] != ':')
            g--;
        g_strlcpy(p[n].group, g, MIN((size_t)(s - g) + 1, sizeof p[n].group));
        if (sscanf(s, " a=%lf loss %lf", &p[n].a, &p[n].loss) == 2)
            n++;
    }
    return n;
}

static void
check_fixture(const char *fixture, const char *tmp)
{
    GString *logs[2] = { hr_awq_test_log(fixture, tmp, "cpu", "cpu", NULL),
                         hr_awq_test_log(fixture, tmp, "device", BACKEND, "HEARTH_AWQ_DEVICE") };
    if (!logs[0] || !logs[1]) {
        if (logs[0])
            g_string_free(logs[0], TRUE);
        if (logs[1])
            g_string_free(logs[1], TRUE);
        return;
    }
    Pick a[64], b[64];
    const int na = parse(logs[0]->str, a, 64), nb = parse(logs[1]->str, b, 64);
    HR_CHECK(na > 0 && na == nb, "%s: %d groups searched on the CPU, %d with the device", fixture, na, nb);
    int same = 0;
    double worst = 0.0;
    for (int i = 0; i < MIN(na, nb); i++) {
        HR_CHECK(strcmp(a[i].group, b[i].group) == 0, "%s: group %d is %s and %s", fixture, i, a[i].group,
                 b[i].group);
        const double rel = fabs(b[i].loss - a[i].loss) / fmax(a[i].loss, 1e-30);
        worst = fmax(worst, rel);
        HR_CHECK(rel <= LOSS_TOL, "%s: %s best loss %.6g on the CPU, %.6g with the device", fixture, a[i].group,
                 a[i].loss, b[i].loss);
        same += a[i].a == b[i].a;
    }
    /* a different ratio passes only as a near tie: its loss (the device's
     * best) within LOSS_TOL of the CPU's best, checked above */
    printf("%-20s %s: %d of %d groups chose the CPU's ratio; best losses within %.2e\n", fixture, BACKEND, same, na,
           worst);
    if (same < na || getenv("HR_AWQ_DEVICE_LOGS"))
        printf("  cpu:\n%s  device:\n%s", logs[0]->str, logs[1]->str);
    g_string_free(logs[0], TRUE);
    g_string_free(logs[1], TRUE);
}

int
main(void)
{
#ifdef HR_AWQ_DEVICE_CUDA
    hr_backend_register(&hr_cuda_backend);
    /* steps of 16 tokens: each 32-token sample runs as two, the second at
     * position 16 over the first one's KV cache */
    g_setenv("HEARTH_CUDA_CHUNK", "16", TRUE);
#endif
#ifdef HR_AWQ_DEVICE_VULKAN
    g_setenv("HEARTH_VULKAN_VALIDATION", "1", TRUE);
    g_setenv("HEARTH_VULKAN_ALLOW_CPU", "1", TRUE);   /* lavapipe is what CI has */
    g_setenv("HEARTH_VULKAN_CHUNK", "16", TRUE);      /* two steps a sample, as for CUDA */
    hr_vk_context_free(hr_test_vulkan_context(false)); /* SKIP without a Vulkan driver */
#endif
    g_autofree char *tmp = g_dir_make_tmp("hearth-awq-device-XXXXXX", NULL);
    HR_CHECK(tmp != NULL, "no temporary directory");
    check_fixture("llama-gqa-tied", tmp);
    check_fixture("llama-linear-rope", tmp);
#ifdef HR_AWQ_DEVICE_CUDA
    /* llama3's RoPE is the model's own op, which test-cuda-emu-model checks
     * on this fixture: the emulator (30 s of CI under the sanitizers) runs
     * it here by hand only */
    if (hr_test_full())
#endif
        check_fixture("llama3-rope", tmp);
    check_fixture("qwen2-bias", tmp);
    check_fixture("mistral", tmp);
    hr_test_rmtree(tmp);
    return hr_test_result();
}
