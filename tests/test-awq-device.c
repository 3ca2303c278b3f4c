/* test-awq-device.c — the AWQ search with its q,k,v and gate,up block
 * forwards on a backend's device (HEARTH_AWQ_DEVICE=1, quantize/awq-device.c)
 * against the search on the CPU, on the tiny fixtures (GQA, MHA with v -> o,
 * llama3 RoPE, Qwen2 biases, Mistral's window, Qwen3's q/k norms) at g = 32:
 *  - the CPU backend's op table (every build): FP32 weights, FP16 KV cache;
 *  - HR_AWQ_DEVICE_CUDA: the CUDA backend, FP16 weights, as AutoAWQ
 *    searches on a GPU: on a device (test-awq-device-cuda; SKIP without
 *    one), or compiled for the host (test-awq-device-cuda-emu, with
 *    HR_AWQ_DEVICE_EMU: tests/cuda-emu.h, registered as "cuda", a shorter
 *    schedule in CI);
 *  - HR_AWQ_DEVICE_VULKAN (test-awq-device-vulkan): the Vulkan backend
 *    (lavapipe in CI; SKIP without a device), FP16 weights.
 * Per layer and group the best losses must agree within LOSS_TOL (relative;
 * the log prints 3 digits), so a ratio other than the CPU's passes only as
 * a near tie; how many groups chose the CPU's ratio is printed, with both
 * logs when one did not (or with HR_AWQ_DEVICE_LOGS set). The clip search
 * runs on the device where the table has clip_search (the CPU's and CUDA's):
 * the two checkpoints' AWQ scales must then agree but for near ties. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "backend.h"
#ifdef HR_AWQ_DEVICE_CUDA
#include "hr-test-cuda.h"
#endif
#include "hr-awq-log.h"
#include "hr-half.h"
#include "hr-test.h"
#include "quantize.h"
#ifdef HR_AWQ_VK_FAULT
#include "vk-fault.h"
#endif
#include "safetensors.h"

/* whether the activations kept on the device give the very checkpoint of
 * the same search with them on the host (the CPU table's sums are the
 * host's) */
#if defined HR_AWQ_DEVICE_CUDA || defined HR_AWQ_DEVICE_VULKAN
#define KEEP_EXACT false
#else
#define KEEP_EXACT true
#endif
/* (on the emulator by hand only: test-cuda-emu checks its column kernels) */
#ifdef HR_AWQ_DEVICE_EMU
#define KEEP_CHECK hr_test_full()
#else
#define KEEP_CHECK true
#endif

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

/* The two checkpoints (tmp/<fixture>-cpu, -device), every AWQ scale.
 * exact (the FP forward on the host, HEARTH_AWQ_DEVICE_FORWARD=0: both
 * searches see the same inputs): equal where both chose the same ratio and
 * the same clip limit; the clip search on the device (the CPU table's in
 * double, CUDA's and Vulkan's in FP32, against the host's GEMMs in FP32)
 * may pick another limit at a near tie; at least 95 % must be equal where
 * every group chose the CPU's ratio. Otherwise (the FP forward on the
 * device: its own sums, on CUDA and Vulkan FP16 weights, so the folded
 * weights move by rounding): at least 95 % within 1 %. */
static void
compare_checkpoints(const char *fixture, const char *tmp, bool same_ratios, bool exact, const char *tag_a)
{
    g_autofree char *pa = g_strdup_printf("%s/%s-%s", tmp, fixture, tag_a);
    g_autofree char *pb = g_strdup_printf("%s/%s-device", tmp, fixture);
    HrTensorSet *a = NULL, *b = NULL;
    HrError err = { 0 };
    if (hr_tensor_set_open_dir(pa, &a, &err) != HR_OK || hr_tensor_set_open_dir(pb, &b, &err) != HR_OK) {
        HR_CHECK(false, "%s: %s", fixture, err.message);
        hr_tensor_set_free(a);
        return;
    }
    size_t n = 0, equal = 0, close = 0;
    for (size_t i = 0; i < hr_tensor_set_count(a); i++) {
        const HrTensor *ta = hr_tensor_set_get(a, i);
        if (!g_str_has_suffix(ta->name, ".scales"))
            continue;
        const HrTensor *tb = hr_tensor_set_find(b, ta->name);
        HR_CHECK(tb && tb->n_bytes == ta->n_bytes, "%s: %s differs in shape", fixture, ta->name);
        if (!tb || tb->n_bytes != ta->n_bytes)
            continue;
        const uint16_t *x = ta->data, *y = tb->data;
        for (size_t k = 0; k < ta->n_bytes / 2; k++, n++) {
            const float u = hr_f16_to_f32(x[k]), v = hr_f16_to_f32(y[k]);
            equal += x[k] == y[k];
            close += fabsf(u - v) <= 0.01f * fmaxf(fabsf(u), fabsf(v));
        }
    }
    printf("%-20s %s: %zu of %zu AWQ scales equal to the %s search's, %zu within 1 %%\n", fixture, BACKEND, equal, n,
           tag_a, close);
    HR_CHECK(n > 0, "%s: no AWQ scales", fixture);
    HR_CHECK(!same_ratios || (exact ? equal : close) * 100 >= n * 95, "%s: %zu of %zu AWQ scales equal, %zu close",
             fixture, equal, n, close);
    hr_tensor_set_free(a);
    hr_tensor_set_free(b);
}

/* A model whose block the device's forwards do not run (Gemma's) is refused
 * with HEARTH_AWQ_DEVICE=1 by name, before any work, and leaves nothing. */
static void
check_refused(const char *fixture, const char *family, const char *tmp)
{
    g_autofree char *in = g_build_filename(HEARTH_FIXTURES, "hf-tiny", fixture, "f32", NULL);
    g_autofree char *out = g_strdup_printf("%s/%s-refused", tmp, fixture);
    int32_t tokens[HR_AWQ_TEST_SAMPLES * HR_AWQ_TEST_SEQLEN];
    HrQuantOptions opt;
    hr_awq_test_options(&opt, tokens, BACKEND);
    g_setenv("HEARTH_AWQ_DEVICE", "1", TRUE);
    HrError err = { 0 };
    HrStatus st = hr_quantize_model(in, out, &opt, NULL, NULL, &err);
    g_unsetenv("HEARTH_AWQ_DEVICE");
    HR_CHECK(st == HR_ERR_UNSUPPORTED && strstr(err.message, family), "%s with HEARTH_AWQ_DEVICE=1: status %d, %s",
             fixture, (int)st, st == HR_OK ? "quantized" : err.message);
    HR_CHECK(!g_file_test(out, G_FILE_TEST_EXISTS), "%s: the refused run left %s", fixture, out);
}

static void
check_fixture(const char *fixture, const char *tmp, bool exact)
{
    if (exact)
        g_setenv("HEARTH_AWQ_DEVICE_FORWARD", "0", TRUE);
    GString *logs[2] = { hr_awq_test_log(fixture, tmp, "cpu", "cpu", NULL),
                         hr_awq_test_log(fixture, tmp, "device", BACKEND, "HEARTH_AWQ_DEVICE") };
    g_unsetenv("HEARTH_AWQ_DEVICE_FORWARD");
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
        worst = hr_worse(worst, rel);
        HR_CHECK(rel <= LOSS_TOL, "%s: %s best loss %.6g on the CPU, %.6g with the device", fixture, a[i].group,
                 a[i].loss, b[i].loss);
        same += a[i].a == b[i].a;
    }
    /* a different ratio passes only as a near tie: its loss (the device's
     * best) within LOSS_TOL of the CPU's best, checked above */
    printf("%-20s %s: %d of %d groups chose the CPU's ratio; best losses within %.2e (FP forward on the %s)\n",
           fixture, BACKEND, same, na, worst, exact ? "host" : "device");
    if (same < na || getenv("HR_AWQ_DEVICE_LOGS"))
        printf("  cpu:\n%s  device:\n%s", logs[0]->str, logs[1]->str);
    compare_checkpoints(fixture, tmp, same == na, exact, "cpu");
    if (!exact && KEEP_CHECK) {
        /* the activations kept on the device (the default there) against
         * the same search with them on the host (HEARTH_AWQ_DEVICE_KEEP=0):
         * the same forward; the column means and the fold on the device
         * (the CPU table: the same double sums, so every scale equal; FP32
         * sums elsewhere) */
        g_setenv("HEARTH_AWQ_DEVICE_KEEP", "0", TRUE);
        GString *h = hr_awq_test_log(fixture, tmp, "device-host", BACKEND, "HEARTH_AWQ_DEVICE");
        g_unsetenv("HEARTH_AWQ_DEVICE_KEEP");
        if (h) {
            compare_checkpoints(fixture, tmp, true, KEEP_EXACT, "device-host");
            g_string_free(h, TRUE);
        }
    }
    g_string_free(logs[0], TRUE);
    g_string_free(logs[1], TRUE);
}

#if defined HR_AWQ_DEVICE_EMU || defined HR_AWQ_VK_FAULT
/* Whether the two checkpoints' tensors are the same bytes. */
static bool
same_checkpoint(const char *a, const char *b)
{
    HrTensorSet *ta = NULL, *tb = NULL;
    HrError err = { 0 };
    bool same = hr_tensor_set_open_dir(a, &ta, &err) == HR_OK && hr_tensor_set_open_dir(b, &tb, &err) == HR_OK &&
                hr_tensor_set_count(ta) == hr_tensor_set_count(tb);
    for (size_t i = 0; same && i < hr_tensor_set_count(ta); i++) {
        const HrTensor *x = hr_tensor_set_get(ta, i), *y = hr_tensor_set_find(tb, x->name);
        same = y && x->n_bytes == y->n_bytes && memcmp(x->data, y->data, x->n_bytes) == 0;
    }
    hr_tensor_set_free(ta);
    hr_tensor_set_free(tb);
    return same;
}
#endif

#ifdef HR_AWQ_DEVICE_EMU
long hr_cuda_emu_fail_alloc_at(long n);
void hr_cuda_emu_memory(size_t *device_bytes, size_t *device_blocks, size_t *pinned_blocks);

/* HR_AWQ_DEVICE_OOM=K (by hand): the device out of memory during the search
 * on llama-gqa-tied, at K allocations spread over one search's (the first,
 * the last, and between). The quantizer ends with an error and a message and
 * writes no checkpoint; or, where it can do without (the activations it
 * keeps on the device: it keeps them on the host), writes the very
 * checkpoint of HEARTH_AWQ_DEVICE_KEEP=0. Nothing is left allocated. */
static void
check_search_oom(const char *tmp, int k)
{
    g_autofree char *in = g_build_filename(HEARTH_FIXTURES, "hf-tiny", "llama-gqa-tied", "f32", NULL);
    int32_t tokens[HR_AWQ_TEST_SAMPLES * HR_AWQ_TEST_SEQLEN];
    HrQuantOptions opt;
    hr_awq_test_options(&opt, tokens, BACKEND);
    /* two samples of the four: the same allocations (per layer, not per sample), half the emulator's time
     * for each of the three or four searches (CI time: 68 s with four) */
    opt.samples = 2;
    opt.n_calib_tokens = (size_t)2 * HR_AWQ_TEST_SEQLEN;
    g_setenv("HEARTH_AWQ_DEVICE", "1", TRUE);
    size_t b0, k0, p0;
    hr_cuda_emu_memory(&b0, &k0, &p0);
    HrError err = { 0 };
    g_autofree char *out0 = g_strdup_printf("%s/oom-count", tmp);
    hr_cuda_emu_fail_alloc_at(G_MAXLONG);
    HrStatus st = hr_quantize_model(in, out0, &opt, NULL, NULL, &err);
    const long total = hr_cuda_emu_fail_alloc_at(0);
    HR_CHECK(st == HR_OK, "the search without a failure: %s", err.message);
    g_autofree char *host = g_strdup_printf("%s/oom-keep-host", tmp);
    bool have_host = false;   /* made when first needed */
    int errors = 0, fallbacks = 0;
    for (int i = 0; i < k && total > 0; i++) {
        const long n = k == 1 ? 1 : 1 + (long)((double)(total - 1) * i / (k - 1));
        g_autofree char *out = g_strdup_printf("%s/oom-%ld", tmp, n);
        hr_cuda_emu_fail_alloc_at(n);
        st = hr_quantize_model(in, out, &opt, NULL, NULL, &err);
        hr_cuda_emu_fail_alloc_at(0);
        size_t b, bl, p;
        hr_cuda_emu_memory(&b, &bl, &p);
        g_autofree char *cfg = g_build_filename(out, "config.json", NULL);
        if (st == HR_OK && !have_host) {
            g_setenv("HEARTH_AWQ_DEVICE_KEEP", "0", TRUE);
            HrStatus hs = hr_quantize_model(in, host, &opt, NULL, NULL, &err);
            g_unsetenv("HEARTH_AWQ_DEVICE_KEEP");
            HR_CHECK(hs == HR_OK, "the search keeping its activations on the host: %s", err.message);
            have_host = true;
        }
        if (st == HR_OK) {
            HR_CHECK(same_checkpoint(out, host), "allocation %ld of %ld failing: a checkpoint written, not the one "
                                                 "of the search with its activations on the host", n, total);
            fallbacks++;
        } else {
            HR_CHECK(err.message[0] && !g_file_test(cfg, G_FILE_TEST_EXISTS),
                     "allocation %ld of %ld failing: status %d without a message, or a checkpoint written", n, total,
                     (int)st);
        }
        HR_CHECK(b == b0 && bl == k0 && p == p0, "allocation %ld failing left %zu bytes in %zu blocks, %zu pinned", n,
                 b - b0, bl - k0, p - p0);
        if (st != HR_OK) {
            errors++;
            printf("allocation %ld of %ld failing: %s\n", n, total, err.message);
        }
        hr_error_clear(&err);
    }
    g_unsetenv("HEARTH_AWQ_DEVICE");
    printf("llama-gqa-tied search out of memory at %d of its %ld allocations: %d errors, %d searches kept their "
           "activations on the host instead (the same checkpoint), nothing left\n", k, total, errors, fallbacks);
}
#endif

#ifdef HR_AWQ_VK_FAULT
/* test-awq-device-vulkan-faults (tests/vk-fault.c in front of the Vulkan
 * loader): the search on llama-gqa-tied with a Vulkan call failing for want
 * of memory, at each site the first and the last call in turn (HEARTH_TEST_FULL=1: every call). The
 * quantizer ends with an error and a message and writes no checkpoint; or
 * writes the checkpoint of the search without a failure, or of the search
 * with its activations kept on the host (HEARTH_AWQ_DEVICE_KEEP=0), where
 * it could do without the device's memory. No Vulkan object is left alive,
 * and the validation layer has nothing to say. */
static void
check_search_vk_faults(const char *tmp)
{
    g_autofree char *in = g_build_filename(HEARTH_FIXTURES, "hf-tiny", "llama-gqa-tied", "f32", NULL);
    int32_t tokens[HR_AWQ_TEST_SAMPLES * HR_AWQ_TEST_SEQLEN];
    HrQuantOptions opt;
    hr_awq_test_options(&opt, tokens, BACKEND);
    g_setenv("HEARTH_AWQ_DEVICE", "1", TRUE);
    HrError err = { 0 };
    g_autofree char *ref = g_strdup_printf("%s/faults-none", tmp), *host = g_strdup_printf("%s/faults-host", tmp);
    const int msgs0 = hr_vk_fault_messages();
    hr_vk_fault_count(2);
    HrStatus st = hr_quantize_model(in, ref, &opt, NULL, NULL, &err);
    int n_sites = 0;
    g_autofree HrVkFaultSite *sites = hr_vk_fault_sites(&n_sites);
    HR_CHECK(st == HR_OK, "the search without a failure: %s", err.message);
    g_setenv("HEARTH_AWQ_DEVICE_KEEP", "0", TRUE);
    st = hr_quantize_model(in, host, &opt, NULL, NULL, &err);
    g_unsetenv("HEARTH_AWQ_DEVICE_KEEP");
    HR_CHECK(st == HR_OK, "the search keeping its activations on the host: %s", err.message);
    hr_error_clear(&err);
    const int base = hr_vk_fault_live(NULL, 0);
    int calls = 0, errors = 0, same = 0, unreached = 0;
    for (int i = 0; i < n_sites; i++)
        calls += sites[i].calls;
    for (int i = 0; i < n_sites; i++) {
        for (int k = 1; k <= sites[i].calls; k++) {
            if (!hr_test_full() && k != 1 && k != sites[i].calls)
                continue;
            g_autofree char *out = g_strdup_printf("%s/faults-%d-%d", tmp, i, k);
            g_autofree char *cfg = g_build_filename(out, "config.json", NULL);
            const int msgs = hr_vk_fault_messages();
            hr_vk_fault_arm(sites[i].site, k);
            st = hr_quantize_model(in, out, &opt, NULL, NULL, &err);
            const char *failed = hr_vk_fault_disarm();
            if (!failed) {
                unreached++;
            } else if (st == HR_OK) {
                HR_CHECK(same_checkpoint(out, ref) || same_checkpoint(out, host),
                         "call %d of %d at %s #%d failing: a checkpoint written, not the search's own", k,
                         sites[i].calls, sites[i].name, i);
                same++;
            } else {
                HR_CHECK(err.message[0] && !g_file_test(cfg, G_FILE_TEST_EXISTS),
                         "call %d of %d at %s #%d failing: status %d without a message, or a checkpoint written", k,
                         sites[i].calls, sites[i].name, i, (int)st);
                if (errors++ == 0)
                    printf("call %d of %d at %s #%d failing: %s\n", k, sites[i].calls, sites[i].name, i,
                           err.message);
            }
            hr_error_clear(&err);
            char what[256];
            HR_CHECK(hr_vk_fault_live(what, sizeof what) == base, "call %d of %d at %s #%d failing: left %s", k,
                     sites[i].calls, sites[i].name, i, what);
            HR_CHECK(hr_vk_fault_messages() == msgs, "call %d of %d at %s #%d failing: %d validation message(s)",
                     k, sites[i].calls, sites[i].name, i, hr_vk_fault_messages() - msgs);
            hr_test_rmtree(out);
        }
    }
    HR_CHECK(hr_vk_fault_messages() == msgs0, "%d validation message(s)", hr_vk_fault_messages() - msgs0);
    g_unsetenv("HEARTH_AWQ_DEVICE");
    printf("llama-gqa-tied search: %d Vulkan calls at %d sites; %s failing: %d errors, %d searches gave the "
           "checkpoint all the same, %d not reached; nothing left\n", calls, n_sites,
           hr_test_full() ? "each" : "the first and last at each", errors, same, unreached);
}
#endif

int
main(void)
{
#ifdef HR_AWQ_DEVICE_CUDA
    hr_backend_register(&hr_cuda_backend);
    hr_test_need_cuda();
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
#ifdef HR_AWQ_VK_FAULT
    check_search_vk_faults(tmp);
    hr_test_rmtree(tmp);
    return hr_test_result();
#endif
#ifdef HR_AWQ_DEVICE_EMU
    if (g_getenv("HR_AWQ_DEVICE_OOM")) {
        check_search_oom(tmp, atoi(g_getenv("HR_AWQ_DEVICE_OOM")));
        hr_test_rmtree(tmp);
        return hr_test_result();
    }
#endif
    /* (Qwen3's q/k norms: not on CUDA yet, whose op table refuses them) */
    static const char *const fixtures[] = { "llama-gqa-tied", "llama-linear-rope", "llama3-rope", "qwen2-bias",
                                            "mistral",
#ifndef HR_AWQ_DEVICE_CUDA
                                            "qwen3-qknorm"
#endif
    };
    /* Each fixture with the FP forward on the device (the default), and on
     * the host (exact: the same inputs as the CPU search, so the candidates
     * and the clip search are checked alone) where the emulator's time
     * allows: not on CUDA (test-cuda-emu checks its kernels alone), where
     * llama3's RoPE and Mistral's window (GQA as llama-gqa-tied), the
     * model's own ops that test-cuda-emu-model checks on these fixtures,
     * also run by hand only (~30 s of CI each under the sanitizers). */
    check_refused("gemma3", "Gemma 3", tmp);
    for (size_t i = 0; i < G_N_ELEMENTS(fixtures); i++) {
#ifdef HR_AWQ_DEVICE_EMU
        if ((i == 2 || i == 4) && !hr_test_full())
            continue;
        const bool both = hr_test_full();
#else
        const bool both = true;
#endif
        check_fixture(fixtures[i], tmp, false);
        if (both)
            check_fixture(fixtures[i], tmp, true);
    }
    hr_test_rmtree(tmp);
    return hr_test_result();
}
