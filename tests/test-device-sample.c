/* The draw's device part (sampler.h's candidates) against the host's draw
 * from the whole row, on the same device model: both sides see the same
 * logits, so for every sampling setting the token sequences must be equal.
 * Built twice: test-vulkan-sample (penalize.comp, topk.comp) and, with
 * HR_SAMPLE_CUDA, test-cuda-sample (engine/cuda/cuda-sample.cu; SKIP without
 * a CUDA device; stories260K only, as CUDA does not read GGUF), and with
 * HR_CUDA_EMU_MODEL as well, test-cuda-emu-sample: the same on the CUDA
 * backend compiled for the host (tests/cuda-emu.h), in CI.
 *
 * Per model and setting: a prompt, then 40 draws (the emulator: 16; SmolLM2: 8, and only
 * the app's defaults and top-p; HEARTH_TEST_FULL=1: 16, and greedy with a
 * penalty and no filter as well) with the sampler attached (hr_model_attach_sampler: one-token steps return
 * candidates) and as many without (every row copied to the host), from the
 * same seed. Checked: the
 * sequences are equal; where the candidates always decide (greedy, with and
 * without a repetition penalty; the app's defaults; top-k 64) every draw
 * after the first (which comes from the prompt's last row) took them; with
 * top-k 65 none did (hr_sampler_device_spec refuses). A step drawn for one
 * sampler refuses to be drawn from with another. Settings without a
 * top-k (top-p, min-p, none) take the candidates where their mass decides
 * the draw and the whole row otherwise; both kinds are counted and printed.
 *
 * Models: stories260K FP16 (vocab 512: topk.comp's single pass) and
 * SmolLM2-135M's GGUF when present (vocab 49,152: three passes).
 * Draws on the device are forced on (HEARTH_DEVICE_SAMPLING=1: by default
 * only a discrete GPU draws there). Validation layer on, zero messages
 * allowed. SKIPs without a Vulkan driver or stories260K.
 */
#include <math.h>
#include <string.h>

#include <glib.h>

#include "hr-test.h"
#include "model.h"
#ifdef HR_SAMPLE_CUDA
#include "hr-test-cuda.h"
#include "cuda/hr-cuda-backend.h"
#define BACKEND "cuda"
#else
#include "vulkan/vk-backend.h"
#include "vulkan/vk-context.h"
#define BACKEND "vulkan"
#endif

#define N_MAX 40

typedef struct {
    const char *label;
    float temp, top_p, min_p, rep;
    int top_k;
    int all_device;   /* 1: every draw after the first from the candidates; 0: none; -1: either */
} Setting;

static const Setting settings[] = {
    { "greedy", 0.0f, 1.0f, 0.0f, 1.0f, 0, 1 },
    { "greedy, penalty 1.3", 0.0f, 1.0f, 0.0f, 1.3f, 0, 1 },
    { "app defaults", 0.7f, 0.95f, 0.05f, 1.1f, 40, 1 },
    { "top-k 64, penalty 1.2", 0.7f, 1.0f, 0.0f, 1.2f, 64, 1 },
    { "top-k 65", 0.7f, 1.0f, 0.0f, 1.0f, 65, 0 },
    { "top-p 0.9", 0.8f, 0.9f, 0.0f, 1.0f, 0, -1 },
    { "min-p 0.1, penalty 1.1", 0.9f, 1.0f, 0.1f, 1.1f, 0, -1 },
    { "no filter", 1.0f, 1.0f, 0.0f, 1.0f, 0, -1 },
};

/* Draw n_draws tokens after the prompt; returns the draws that took the
 * candidates. */
static uint64_t
draws(HrModel *m, const Setting *st, bool device, const int32_t *prompt, int n_prompt, int32_t *out, int n_draws)
{
    const int V = hr_model_config(m)->vocab_size;
    HrSamplerParams p;
    hr_sampler_params_init(&p);
    p.temperature = st->temp;
    p.top_k = st->top_k;
    p.top_p = st->top_p;
    p.min_p = st->min_p;
    p.repetition_penalty = st->rep;
    p.seed = 7;
    HrSampler *s = hr_sampler_new(&p, V);
    HrError err = { 0 };
    /* another first token: the prompt then runs whole, through the same
     * prefill kernels on both sides */
    int32_t other = (prompt[0] + 1) % V;
    HR_CHECK(hr_model_eval(m, &other, 1, &err) == HR_OK, "%s", err.message);
    for (int i = 0; i < n_prompt; i++)
        hr_sampler_accept(s, prompt[i]);
    if (device)
        hr_model_attach_sampler(m, s);
    uint64_t d0, h0, d1, h1;
    hr_model_sample_counts(m, &d0, &h0);
    int32_t t = -1;
    HR_CHECK(hr_model_eval(m, prompt, n_prompt, &err) == HR_OK && hr_model_sample(m, s, &t, &err) == HR_OK, "%s",
             err.message);
    for (int i = 0; i < n_draws && t >= 0; i++) {
        out[i] = t;
        hr_sampler_accept(s, t);
        if (i + 1 < n_draws)
            HR_CHECK(hr_model_append(m, &t, 1, &err) == HR_OK && hr_model_sample(m, s, &t, &err) == HR_OK, "%s",
                     err.message);
    }
    hr_model_attach_sampler(m, NULL);
    hr_model_sample_counts(m, &d1, &h1);
    HR_CHECK(d1 - d0 + h1 - h0 == (uint64_t)n_draws, "%llu draws counted", (unsigned long long)(d1 - d0 + h1 - h0));
    hr_sampler_free(s);
    return d1 - d0;
}

/* every setting with n_draws draws, or (quick: lavapipe decodes SmolLM2 at
 * ~1 token/s under ASan) the app's defaults (every draw from the three-pass
 * top-k's candidates) and top-p (some from the candidates, some from the
 * whole row); HEARTH_TEST_FULL=1 adds the greedy penalty and no filter,
 * which stories260K covers */
static void
check_model(const char *path, const char *label, int n_draws, bool quick)
{
    HrModelOptions opt;
    hr_model_options_init(&opt);
    opt.backend = BACKEND;
    opt.context_len = 256;
    opt.n_threads = 2;
    HrModel *m = NULL;
    HrError err = { 0 };
    if (hr_model_load(path, &opt, &m, &err) != HR_OK) {
        HR_CHECK(false, "%s: %s", path, err.message);
        return;
    }
    const int V = hr_model_config(m)->vocab_size;
    int32_t prompt[24];
    for (int i = 0; i < 24; i++)
        prompt[i] = (int32_t)((1 + 37 * i) % V);
    for (size_t i = 0; i < G_N_ELEMENTS(settings); i++) {
        const Setting *st = &settings[i];
        if (quick && i != 2 && i != 5 && (!hr_test_full() || (i != 1 && i != 7)))
            continue;
        int32_t a[N_MAX] = { 0 }, b[N_MAX] = { 0 };
        uint64_t on_device = draws(m, st, true, prompt, 24, a, n_draws);
        uint64_t host_side = draws(m, st, false, prompt, 24, b, n_draws);
        int same = 0;
        while (same < n_draws && a[same] == b[same])
            same++;
        printf("%s, %s: %llu of %d draws from the candidates; sequences equal for %d tokens\n", label, st->label,
               (unsigned long long)on_device, n_draws, same);
        HR_CHECK(same == n_draws, "%s, %s: the sequences differ at token %d (%d vs %d)", label, st->label, same,
                 same < n_draws ? a[same] : 0, same < n_draws ? b[same] : 0);
        HR_CHECK(host_side == 0, "%s, %s: %llu candidate draws without the sampler attached", label, st->label,
                 (unsigned long long)host_side);
        if (st->all_device == 1)
            HR_CHECK(on_device == (uint64_t)n_draws - 1, "%s, %s: %llu candidate draws, expected %d", label, st->label,
                     (unsigned long long)on_device, n_draws - 1);
        else if (st->all_device == 0)
            HR_CHECK(on_device == 0, "%s, %s: %llu candidate draws, expected none", label, st->label,
                     (unsigned long long)on_device);
    }
    {   /* a step drawn for one sampler is not drawn from with another */
        HrSamplerParams p;
        hr_sampler_params_init(&p);
        HrSampler *a = hr_sampler_new(&p, V), *b = hr_sampler_new(&p, V);
        hr_model_attach_sampler(m, a);
        int32_t t = prompt[3];
        HR_CHECK(hr_model_eval(m, prompt, 3, &err) == HR_OK && hr_model_append(m, &t, 1, &err) == HR_OK, "%s",
                 err.message);
        HR_CHECK(hr_model_sample(m, b, &t, &err) == HR_ERR_INVALID_ARG, "%s: another sampler drew from the step",
                 label);
        HR_CHECK(hr_model_sample(m, a, &t, &err) == HR_OK && t >= 0 && t < V, "%s: %s", label, err.message);
        hr_model_attach_sampler(m, NULL);
        hr_sampler_free(a);
        hr_sampler_free(b);
    }
#ifndef HR_SAMPLE_CUDA
    uint32_t msgs = hr_vulkan_backend_validation_messages(hr_model_backend_ctx(m));
    HR_CHECK(msgs == 0, "%s: the validation layer reported %u message(s)", label, msgs);
#endif
    hr_model_free(m);
}

int
main(void)
{
#ifdef HR_SAMPLE_CUDA
    /* opt-in on CUDA until a device run has checked it */
    g_setenv("HEARTH_DEVICE_SAMPLING", "1", TRUE);
#ifdef HR_CUDA_EMU_MODEL
    /* test-cuda-emu-sample: "cuda" is the backend compiled for the host */
    hr_backend_register(&hr_cuda_backend);
#endif
    hr_test_need_cuda();
    g_autofree char *stories = hr_test_asset("models/stories260K/hf_f16");
#ifdef HR_CUDA_EMU_MODEL
    /* the emulator (CI): 16 draws a setting (HEARTH_TEST_FULL=1: 40), each a decode step of ~0.08 s
     * under the sanitizers (CI time: 96 s with 40) */
    const int n_draws = hr_test_full() ? N_MAX : 16;
#else
    const int n_draws = N_MAX;
#endif
    check_model(stories, "stories260K", n_draws, false);
#ifndef HR_CUDA_EMU_MODEL /* the emulator (CI) runs the graph's path only */
    g_setenv("HEARTH_CUDA_GRAPH", "0", TRUE);   /* the same kernels launched one by one */
    check_model(stories, "stories260K, no graph", N_MAX, true);
#endif
    return hr_test_result();
#else
    g_setenv("HEARTH_VULKAN_VALIDATION", "1", TRUE);
    g_setenv("HEARTH_VULKAN_ALLOW_CPU", "1", TRUE);   /* lavapipe is what CI has */
    g_setenv("HEARTH_DEVICE_SAMPLING", "1", TRUE);     /* lavapipe is not a discrete GPU */
    hr_vk_context_free(hr_test_vulkan_context(false)); /* SKIP without a Vulkan driver */
    g_autofree char *stories = hr_test_asset("models/stories260K/hf_f16");
    check_model(stories, "stories260K", N_MAX, false);
    g_autofree char *gguf = hr_test_smollm2_gguf();
    if (gguf)
        check_model(gguf, "smollm2 Q4_1/Q8_0", hr_test_full() ? 16 : 8, true);   /* CI time: ~20 s a setting */
    else
        printf("SmolLM2's GGUF not found: checked stories260K only\n");
    return hr_test_result();
#endif
}
