/* test-kv-ring — sliding-window layers whose KV caches are rings (llama.c's
 * kv_caches, ops.h kv_ring) against the same model with full caches.
 *
 * The tiny Gemma 3 of tests/fixtures/hf-tiny (window 8 in two layers of
 * three, one global) and Gemma 2 (window 8 every other layer, soft caps),
 * with HEARTH_KV_RING=10: rings of 10 entries, so steps of at most 3 tokens
 * and every prompt wraps each ring several times. Backend argv[1] ("cpu",
 * the default, FP32 KV; or "vulkan", FP16 KV) with rings against the same
 * backend with full caches (Vulkan with HEARTH_TEST_FULL=1: twice, the
 * second time with the prefill attention in tiles, HEARTH_VULKAN_ATTN=tile).
 * Checks:
 *  - the rings are smaller: the sliding layers' caches shrink from the
 *    context's 128 entries to 10 (kv bytes reported);
 *  - a 40-token prefill (last row) and 12 greedy steps after it: logits
 *    within tol of the reference's, the same greedy ids;
 *  - a new turn that shares all but the last 2 cached tokens (a rewind the
 *    rings still hold: the cache is reused, hr_model_common_prefix says 38),
 *    and one that shares 20 of 52 (the rings no longer hold positions 13..19:
 *    common prefix 0, the cache is refilled): logits as the reference's.
 * A ring that dropped a key a query needs, or kept one it should not see,
 * moves the logits by O(1) (the window mask is exact in the reference). */
#include <math.h>
#include <string.h>

#include <glib.h>

#include "hr-backend-compare.h"
#include "hr-test.h"
#include "model.h"

#define RING "10"
#define CONTEXT 128

static float tol = 1e-4f;

static HrModel *
load(const char *dir, const char *backend, HrKvType kv, bool ring)
{
    if (ring)
        g_setenv("HEARTH_KV_RING", RING, TRUE);
    else
        g_unsetenv("HEARTH_KV_RING");
    HrModelOptions opt;
    hr_model_options_init(&opt);
    opt.backend = backend;
    opt.kv_type = kv;
    opt.context_len = CONTEXT;
    HrModel *m = NULL;
    HrError err = { 0 };
    HR_CHECK(hr_model_load(dir, &opt, &m, &err) == HR_OK, "%s (%s): %s", dir, backend, err.message);
    g_unsetenv("HEARTH_KV_RING");
    return m;
}

/* max |a - b| over the last evaluated rows of both models; the greedy ids into *ia, *ib */
static double
compare(HrModel *a, HrModel *b, int32_t *ia, int32_t *ib)
{
    const int vocab = hr_model_config(a)->vocab_size;
    g_autofree float *ra = g_new(float, vocab), *rb = g_new(float, vocab);
    HrError err = { 0 };
    HR_CHECK(hr_model_logits(a, ra, &err) == HR_OK && hr_model_logits(b, rb, &err) == HR_OK, "logits: %s",
             err.message);
    double worst = 0;
    for (int i = 0; i < vocab; i++)
        worst = hr_worse(worst, fabs((double)ra[i] - rb[i]));
    float gap;
    *ia = hr_cmp_argmax(ra, vocab, &gap);
    *ib = hr_cmp_argmax(rb, vocab, &gap);
    return worst;
}

static void
eval_both(HrModel *a, HrModel *b, const int32_t *ids, int n, const char *what)
{
    HrError err = { 0 };
    HR_CHECK(hr_model_eval(a, ids, n, &err) == HR_OK, "%s: %s", what, err.message);
    HR_CHECK(hr_model_eval(b, ids, n, &err) == HR_OK, "%s (reference): %s", what, err.message);
}

static void
check_model(const char *name, const char *backend)
{
    g_autofree char *dir = g_build_filename(HEARTH_FIXTURES, "hf-tiny", name, "f32", NULL);
    const bool cpu = strcmp(backend, "cpu") == 0;
    const HrKvType kv = cpu ? HR_KV_F32 : HR_KV_F16;
    HrModel *a = load(dir, backend, kv, true), *b = load(dir, backend, kv, false);
    if (!a || !b) {
        hr_model_free(a);
        hr_model_free(b);
        return;
    }
    const HrModelConfig *cfg = hr_model_config(a);
    int sliding = 0;
    for (int l = 0; l < cfg->n_layers; l++)
        sliding += hr_model_config_layer_window(cfg, l) > 0;
    HrMemoryReport ma, mb;
    hr_model_memory(a, &ma);
    hr_model_memory(b, &mb);
    /* per layer and cache: entries x kv_dim x element; the sliding layers keep 10 of 128 */
    const size_t row = (size_t)cfg->n_kv_heads * (size_t)cfg->head_dim * (kv == HR_KV_F32 ? 4 : 2);
    HR_CHECK(sliding > 0 && mb.kv_bytes - ma.kv_bytes == 2 * (size_t)sliding * (CONTEXT - 10) * row,
             "%s: KV bytes %zu with rings, %zu without (%d sliding layers)", name, ma.kv_bytes, mb.kv_bytes, sliding);

    int32_t ids[64];
    GRand *rng = g_rand_new_with_seed(7);
    ids[0] = 1;
    for (int i = 1; i < 64; i++)
        ids[i] = (int32_t)g_rand_int_range(rng, 4, cfg->vocab_size);
    g_rand_free(rng);

    /* a prefill that wraps every ring, then greedy steps on each side's own ids */
    eval_both(a, b, ids, 40, "prefill");
    int32_t ga, gb;
    double worst = compare(a, b, &ga, &gb);
    int32_t seq[64];
    memcpy(seq, ids, sizeof(int32_t) * 40);
    int n = 40, same = 0;
    HrError err = { 0 };
    for (int s = 0; s < 12 && ga == gb; s++, same++) {
        seq[n++] = ga;
        HR_CHECK(hr_model_append(a, &ga, 1, &err) == HR_OK && hr_model_append(b, &gb, 1, &err) == HR_OK,
                 "%s step %d: %s", name, s, err.message);
        worst = hr_worse(worst, compare(a, b, &ga, &gb));
    }
    HR_CHECK(same == 12, "%s (%s): greedy ids part after %d steps", name, backend, same);
    HR_CHECK(worst <= tol, "%s (%s): prefill and steps differ by %.3g (tolerance %.3g)", name, backend, worst,
             (double)tol);
    printf("%s (%s): 40-token prefill + %d steps, max |err| %.2e\n", name, backend, same, worst);

    /* a rewind the rings hold: all but the last 2 cached tokens stay */
    int32_t turn[64];
    memcpy(turn, seq, sizeof(int32_t) * (size_t)(n - 2));
    turn[n - 2] = 5;
    turn[n - 1] = 6;
    turn[n] = 7;
    const int keep = hr_model_common_prefix(a, turn, n + 1);
    HR_CHECK(keep == n - 2, "%s: a rewind of 2 reuses %d tokens (want %d)", name, keep, n - 2);
    eval_both(a, b, turn, n + 1, "rewind of 2");
    worst = compare(a, b, &ga, &gb);
    HR_CHECK(worst <= tol && ga == gb, "%s (%s): after a rewind of 2: max |err| %.3g", name, backend, worst);

    /* one they do not: 20 of the 53 cached shared; positions 13..19 were overwritten long ago */
    int32_t other[64];
    memcpy(other, turn, sizeof(int32_t) * 20);
    for (int i = 20; i < 40; i++)
        other[i] = ids[63 - i];
    const int keep2 = hr_model_common_prefix(a, other, 40);
    HR_CHECK(keep2 == 0, "%s: a rewind past the rings reuses %d tokens (want 0: refill)", name, keep2);
    eval_both(a, b, other, 40, "rewind past the rings");
    worst = compare(a, b, &ga, &gb);
    HR_CHECK(worst <= tol && ga == gb, "%s (%s): after a refill: max |err| %.3g", name, backend, worst);
    printf("%s (%s): rewinds of 2 (reused %d tokens) and %d (refilled), KV %zu -> %zu bytes\n", name, backend, keep,
           n + 1 - 20, mb.kv_bytes, ma.kv_bytes);
    hr_model_free(a);
    hr_model_free(b);
}

int
main(int argc, char **argv)
{
    const char *backend = argc > 1 ? argv[1] : "cpu";
    if (strcmp(backend, "vulkan") == 0) {
#if HEARTH_HAVE_VULKAN
        g_setenv("HEARTH_VULKAN_ALLOW_CPU", "1", TRUE);   /* lavapipe is what CI has */
        hr_vk_context_free(hr_test_vulkan_context(false)); /* SKIP without a Vulkan driver */
        tol = 5e-3f;   /* steps of 3 tokens against whole chunks: other kernels (GEMV, GEMM), FP16 KV */
#else
        hr_test_skip("built without Vulkan");
#endif
    }
    /* on Vulkan also with the prefill attention in tiles (attn_tile.comp, opt-in: HEARTH_TEST_FULL=1, as the
     * other opt-in paths) */
    for (int tile = 0; tile < (strcmp(backend, "vulkan") == 0 && hr_test_full() ? 2 : 1); tile++) {
        if (tile)
            g_setenv("HEARTH_VULKAN_ATTN", "tile", TRUE);
        check_model("gemma3", backend);
        check_model("gemma2", backend);
    }
    return hr_test_result();
}
