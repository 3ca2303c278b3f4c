/* The Vulkan backend out of memory at any point (tests/vk-fault.c makes a
 * chosen fallible Vulkan call fail; lavapipe, the validation layer on):
 *  - while loading, every such call in turn: an error with a message, no
 *    context, and no Vulkan object left alive;
 *  - while running (a prompt, decode steps, a prompt keeping every row's
 *    logits), every call in turn: an error with a message or a result; after
 *    an error the same model runs again once memory is back and gives the
 *    logits it gave before; the validation layer has nothing to say; and
 *    destroying the model leaves no Vulkan object alive;
 *  - the device lost at the first call of each of a run's sites (every
 *    fallible call fails from then on): errors, no wait that never ends,
 *    nothing left, and a new model runs right.
 * In CI, a site is the engine's line that made the call (tests/vk-fault.h),
 * and the first call at each site fails, on an RTN AWQ checkpoint of the
 * random llama-gqa-tied fixture with the opt-ins that make their own
 * buffers (HEARTH_VULKAN_GEMV=q8, HEARTH_VULKAN_LM_HEAD=q8,
 * HEARTH_VULKAN_GEMM=coop-emu) and draws on the device
 * (HEARTH_DEVICE_SAMPLING=1): each load costs ~1.5 s under the sanitizers
 * with the validation layer. HEARTH_TEST_FULL=1: sites told apart by their
 * caller's line too, and every call at every site, on that checkpoint and
 * on the F32 fixture (stored as FP16 on the device) with the defaults
 * (7.5 min in a debug build). */
#include <math.h>
#include <string.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "hr-backend-compare.h"
#include "hr-test.h"
#include "model-config.h"
#include "quantize.h"
#include "vk-fault.h"
#include "vulkan/vk-backend.h"
#include "vulkan/vk-context.h"

#define N_TOK 24

/* A prompt of 20 tokens, decode to 24 with the last row's logits each step,
 * then 24 tokens keeping every row (a buffer made on first use); row 5's
 * logits in lg. */
static HrStatus
run(void *ctx, const int32_t *tok, float *lg, HrError *err)
{
    HrStatus rs = hr_vulkan_backend.forward(ctx, tok, 20, 0, false, err);
    for (int p = 20; rs == HR_OK && p < N_TOK; p++) {
        rs = hr_vulkan_backend.get_logits(ctx, -1, lg, err);
        if (rs == HR_OK)
            rs = hr_vulkan_backend.forward(ctx, &tok[p], 1, p, false, err);
    }
    if (rs == HR_OK)
        rs = hr_vulkan_backend.get_logits(ctx, -1, lg, err);
    if (rs == HR_OK)
        rs = hr_vulkan_backend.forward(ctx, tok, N_TOK, 0, true, err);
    if (rs == HR_OK)
        rs = hr_vulkan_backend.get_logits(ctx, 5, lg, err);
    return rs;
}

typedef struct {
    const char *label;
    const HrModelConfig *cfg;
    const HrTensorSet *ts;
    HrBackendOptions bopt;
    const int32_t *tok;
    const float *want;   /* the run's logits without a fault */
    float *lg;
    int base;            /* Vulkan objects alive before */
    int every;           /* 2: every call at each site; 1: the first and the last; 0: the first */
    int failed, survived, unreached;
} Sweep;

/* The model ran (after a fault it survived, or once memory was back): the
 * same logits as without the fault. */
static void
check_ran(Sweep *w, const char *what, HrStatus rs, const HrError *err)
{
    HR_CHECK(rs == HR_OK, "%s: %s: the model does not run: %s", w->label, what, err->message);
    if (rs != HR_OK)
        return;
    const float d = hr_cmp_rel_diff(w->want, w->lg, w->cfg->vocab_size, NULL, NULL);
    HR_CHECK(d <= 1e-5f, "%s: %s: row 5's logits differ by %g of their range", w->label, what, (double)d);
}

/* Nothing left, nothing for the validation layer to say. */
static void
check_clean(Sweep *w, const char *what, int msgs_before)
{
    char alive_what[256];
    const int alive = hr_vk_fault_live(alive_what, sizeof alive_what);
    HR_CHECK(alive == w->base, "%s: %s: left %s", w->label, what, alive_what);
    const int msgs = hr_vk_fault_messages() - msgs_before;
    HR_CHECK(msgs == 0, "%s: %s: %d validation message(s)", w->label, what, msgs);
}

/* The calls to fail at a site: the first, the first and the last, or every one. */
static int
site_calls(const Sweep *w, const HrVkFaultSite *s, int *ks)
{
    if (w->every == 2) {
        for (int k = 1; k <= s->calls; k++)
            ks[k - 1] = k;
        return s->calls;
    }
    ks[0] = 1;
    ks[1] = s->calls;
    return w->every == 1 && s->calls > 1 ? 2 : 1;
}

static void
sweep_load(Sweep *w, const HrVkFaultSite *sites, int n_sites)
{
    for (int i = 0; i < n_sites; i++) {
        int *ks = g_new(int, MAX(sites[i].calls, 2) + 1);
        int nk = site_calls(w, &sites[i], ks);
        /* an upload's submit: the device lost there too (the load's cleanup
         * then waits on a lost device) */
        const int n_lost = strcmp(sites[i].name, "vkQueueSubmit") == 0;
        if (n_lost)
            ks[nk++] = 1;
        for (int j = 0; j < nk; j++) {
            const bool lost = j >= nk - n_lost;
            g_autofree char *what = g_strdup_printf("loading, call %d of %d at %s #%d%s", ks[j], sites[i].calls,
                                                    sites[i].name, i, lost ? ", the device lost" : "");
            const int msgs = hr_vk_fault_messages();
            HrError err = { 0 };
            void *ctx = NULL;
            if (lost)
                hr_vk_fault_arm_lost(sites[i].site, ks[j]);
            else
                hr_vk_fault_arm(sites[i].site, ks[j]);
            HrStatus st = hr_vulkan_backend.create(w->cfg, w->ts, &w->bopt, NULL, NULL, &ctx, &err);
            const char *failed = hr_vk_fault_disarm();
            if (!failed) {
                w->unreached++;
            } else if (st != HR_OK) {
                w->failed++;
                HR_CHECK(!ctx && err.message[0], "%s: %s: status %d, no message or a context", w->label, what,
                         (int)st);
                if (w->failed == 1)
                    printf("%s: %s: %s\n", w->label, what, err.message);
            } else {
                w->survived++;
                HrError rerr = { 0 };
                check_ran(w, what, run(ctx, w->tok, w->lg, &rerr), &rerr);
                hr_error_clear(&rerr);
            }
            if (ctx)
                hr_vulkan_backend.destroy(ctx);
            hr_error_clear(&err);
            check_clean(w, what, msgs);
        }
        g_free(ks);
    }
}

static void
sweep_run(Sweep *w, const HrVkFaultSite *sites, int n_sites)
{
    for (int i = 0; i < n_sites; i++) {
        int *ks = g_new(int, MAX(sites[i].calls, 2));
        const int nk = site_calls(w, &sites[i], ks);
        for (int j = 0; j < nk; j++) {
            g_autofree char *what = g_strdup_printf("running, call %d of %d at %s #%d", ks[j], sites[i].calls,
                                                    sites[i].name, i);
            const int msgs = hr_vk_fault_messages();
            HrError err = { 0 };
            void *ctx = NULL;
            HrStatus st = hr_vulkan_backend.create(w->cfg, w->ts, &w->bopt, NULL, NULL, &ctx, &err);
            HR_CHECK(st == HR_OK, "%s: %s", w->label, err.message);
            if (st != HR_OK)
                return;
            hr_vk_fault_arm(sites[i].site, ks[j]);
            HrStatus rs = run(ctx, w->tok, w->lg, &err);
            const char *failed = hr_vk_fault_disarm();
            if (!failed) {
                w->unreached++;
            } else if (rs != HR_OK) {
                w->failed++;
                HR_CHECK(err.message[0], "%s: %s: no message", w->label, what);
                if (w->failed == 1)
                    printf("%s: %s: %s\n", w->label, what, err.message);
                hr_error_clear(&err);
                /* memory back: the same model runs again */
                g_autofree char *again = g_strdup_printf("%s, then again", what);
                check_ran(w, again, run(ctx, w->tok, w->lg, &err), &err);
            } else {
                w->survived++;
                check_ran(w, what, rs, &err);
            }
            hr_error_clear(&err);
            hr_vulkan_backend.destroy(ctx);
            check_clean(w, what, msgs);
        }
        g_free(ks);
    }
}

/* The device lost at the first call of each site of a run: the run ends in
 * an error, and so does the next one (no wait for a fence that never
 * signals); the model is destroyed with its device lost and leaves
 * nothing; a model made afterwards (a new device) runs right. */
static void
sweep_lost(Sweep *w, const HrVkFaultSite *sites, int n_sites)
{
    for (int i = 0; i < n_sites; i++) {
        g_autofree char *what = g_strdup_printf("the device lost at %s #%d while running", sites[i].name, i);
        const int msgs = hr_vk_fault_messages();
        HrError err = { 0 };
        void *ctx = NULL;
        HrStatus st = hr_vulkan_backend.create(w->cfg, w->ts, &w->bopt, NULL, NULL, &ctx, &err);
        HR_CHECK(st == HR_OK, "%s: %s", w->label, err.message);
        if (st != HR_OK)
            return;
        hr_vk_fault_arm_lost(sites[i].site, 1);
        HrStatus rs = run(ctx, w->tok, w->lg, &err);
        HR_CHECK(rs != HR_OK && err.message[0], "%s: %s: status %d, no message", w->label, what, (int)rs);
        if (i == 0)
            printf("%s: %s: %s\n", w->label, what, err.message);
        hr_error_clear(&err);
        rs = run(ctx, w->tok, w->lg, &err);
        HR_CHECK(rs != HR_OK && err.message[0], "%s: %s, the next run: status %d, no message", w->label, what,
                 (int)rs);
        hr_error_clear(&err);
        hr_vulkan_backend.destroy(ctx);
        const char *failed = hr_vk_fault_disarm();
        HR_CHECK(failed != NULL, "%s: %s: not reached", w->label, what);
        check_clean(w, what, msgs);
        st = hr_vulkan_backend.create(w->cfg, w->ts, &w->bopt, NULL, NULL, &ctx, &err);
        g_autofree char *after = g_strdup_printf("%s, then a new model", what);
        check_ran(w, after, st == HR_OK ? run(ctx, w->tok, w->lg, &err) : st, &err);
        hr_error_clear(&err);
        if (ctx)
            hr_vulkan_backend.destroy(ctx);
        check_clean(w, after, msgs);
    }
}

static void
check_faults(const char *dir, const char *label, int every)
{
    HrModelConfig cfg;
    HrTensorSet *ts = NULL;
    if (!hr_cmp_load(dir, &cfg, &ts))
        return;
    int32_t tok[N_TOK];
    for (int i = 0; i < N_TOK; i++)
        tok[i] = (i * 7 + 3) % cfg.vocab_size;
    float *lg = g_new(float, cfg.vocab_size), *want = g_new(float, cfg.vocab_size);
    static const char *const kinds[] = { "the first at each", "the first and last at each", "each" };
    Sweep w = { .label = label, .cfg = &cfg, .ts = ts, .bopt = { .context_len = 64, .kv_type = HR_KV_F16,
                .n_threads = 1 }, .tok = tok, .want = want, .lg = lg, .every = every };
    w.base = hr_vk_fault_live(NULL, 0);
    HR_CHECK(w.base == 0, "%s: %d Vulkan objects alive before the first model", label, w.base);

    /* the sites, and the logits without a fault */
    HrError err = { 0 };
    void *ctx = NULL;
    const int msgs = hr_vk_fault_messages();
    hr_vk_fault_count(every == 2 ? 2 : 1);
    HrStatus st = hr_vulkan_backend.create(&cfg, ts, &w.bopt, NULL, NULL, &ctx, &err);
    int n_load = 0, n_run = 0;
    g_autofree HrVkFaultSite *load = hr_vk_fault_sites(&n_load);
    HR_CHECK(st == HR_OK, "%s: %s", label, err.message);
    g_autofree HrVkFaultSite *running = NULL;
    if (st == HR_OK) {
        hr_vk_fault_count(every == 2 ? 2 : 1);
        st = run(ctx, tok, want, &err);
        running = hr_vk_fault_sites(&n_run);
        HR_CHECK(st == HR_OK, "%s: %s", label, err.message);
        hr_vulkan_backend.destroy(ctx);
    }
    hr_error_clear(&err);
    check_clean(&w, "without a fault", msgs);
    if (st == HR_OK) {
        int calls = 0;
        for (int i = 0; i < n_load; i++)
            calls += load[i].calls;
        sweep_load(&w, load, n_load);
        const int load_failed = w.failed, load_survived = w.survived, load_unreached = w.unreached;
        printf("%-32s loading: %d calls at %d sites; %s failing: %d errors, %d survived (and ran right), "
               "%d not reached; nothing left\n", label, calls, n_load, kinds[every],
               load_failed, load_survived, load_unreached);
        w.failed = w.survived = w.unreached = 0;
        calls = 0;
        for (int i = 0; i < n_run; i++)
            calls += running[i].calls;
        sweep_run(&w, running, n_run);
        printf("%-32s running: %d calls at %d sites; %s failing: %d errors (each ran again after), %d survived, "
               "%d not reached; nothing left\n", label, calls, n_run, kinds[every],
               w.failed, w.survived, w.unreached);
        sweep_lost(&w, running, n_run);
        printf("%-32s the device lost at the first call of each of the run's %d sites: errors, then a new model "
               "ran right; nothing left\n", label, n_run);
    }
    g_free(lg);
    g_free(want);
    hr_tensor_set_free(ts);
}

int
main(void)
{
    g_setenv("HEARTH_VULKAN_VALIDATION", "1", TRUE);
    g_setenv("HEARTH_VULKAN_ALLOW_CPU", "1", TRUE);   /* lavapipe is what CI has */
    hr_vk_context_free(hr_test_vulkan_context(false)); /* SKIP without a Vulkan driver */

    g_autofree char *dir = g_build_filename(HEARTH_FIXTURES, "hf-tiny", "llama-gqa-tied", "f32", NULL);
    const bool full = hr_test_full();
    if (full)
        check_faults(dir, "llama-gqa-tied/f32", 2);
    /* An AWQ checkpoint of it (the repack on the pool, the int8 lm_head),
     * the opt-ins' own buffers and command buffers, and draws on the device
     * (the candidates' buffers, the decode row fetched by its own command
     * buffer). */
    HrQuantOptions qopt;
    hr_quant_options_init(&qopt);
    qopt.method = HR_QUANT_RTN;
    qopt.group_size = 32;
    HrError err = { 0 };
    g_autofree char *tmp = g_dir_make_tmp("hearth-vk-faults-XXXXXX", NULL);
    g_autofree char *awq = g_build_filename(tmp, "awq", NULL);
    HR_CHECK(hr_quantize_model(dir, awq, &qopt, NULL, NULL, &err) == HR_OK, "quantize: %s", err.message);
    hr_error_clear(&err);
    g_setenv("HEARTH_VULKAN_GEMV", "q8", TRUE);
    g_setenv("HEARTH_VULKAN_LM_HEAD", "q8", TRUE);
    g_setenv("HEARTH_VULKAN_GEMM", "coop-emu", TRUE);
    g_setenv("HEARTH_DEVICE_SAMPLING", "1", TRUE);
    check_faults(awq, "llama-gqa-tied AWQ g32, opt-ins", full ? 2 : 0);
    g_unsetenv("HEARTH_VULKAN_GEMV");
    g_unsetenv("HEARTH_VULKAN_LM_HEAD");
    g_unsetenv("HEARTH_VULKAN_GEMM");
    g_unsetenv("HEARTH_DEVICE_SAMPLING");
    hr_test_rmtree(tmp);
    return hr_test_result();
}
