/* Whole-model logits of the Vulkan backend against the CPU backend (the
 * oracle), with the validation layer on and zero messages allowed:
 *  - stories260K FP16 (hf_f16), and an AWQ checkpoint of it made here (RTN,
 *    group 32, per-channel fallback for the width-172 down_proj);
 *  - the random reference models in tests/fixtures/hf-tiny (Llama GQA tied,
 *    Llama-3 and linear rope scaling, Qwen2 with q/k/v bias, Mistral) in
 *    F32 and BF16 (the Vulkan backend stores them as FP16).
 * Per model: a prefill with every row's logits, prefill + token-by-token
 * decode, a rewind (forward at an earlier position with other tokens), and
 * for stories260K a 300-token prefill across chunks and attention splits
 * followed by decode (with the chunk forced to 64 and 100 tokens by
 * HEARTH_VULKAN_CHUNK, and at the default 512: one chunk; at 100 once more
 * with the steps shorter than 100 on the short steps' list), and a
 * 1,200-token prompt (stories260K's config with max_position_embeddings
 * raised to 2048, written here): every row's logits over several chunks,
 * the last row of an 1,100-token prompt, then decode — at the default chunk
 * (512: three chunks) and at 300.
 *
 * Tolerance, per logits row: max |vk - cpu| <= tol * (max - min of the CPU
 * row), tol = 1e-3 when both run the same weights (FP16, AWQ; seen: <= 2e-4)
 * and 1e-2 when the Vulkan copy rounds F32/BF16 weights to FP16 (seen:
 * <= 2e-3); and the greedy id agrees
 * unless the CPU's top two are closer than twice the row's difference.
 * The opt-in FP16-arithmetic decode GEMV (HEARTH_VULKAN_FP16_MATH=1) is
 * checked on stories260K with tol = 1e-2 (seen: ~1e-3). The prefill GEMM on
 * matrix units (HEARTH_VULKAN_GEMM=coop, or coop-emu: its emulation, which
 * runs here on stories260K) rounds weights and activations to FP16: every
 * tolerance is at least 5e-3 under it (seen on lavapipe: 1.7e-3); the row
 * coop-emu runs with HEARTH_TEST_FULL=1. The opt-in decode GEMV on int8
 * activations (HEARTH_VULKAN_GEMV=q8, rounded per 32 as the CPU's default
 * decode rounds them, against the exact CPU here) is checked on stories260K
 * AWQ with tol = 1e-2 (seen on lavapipe: 2.3e-3; HEARTH_TEST_FULL=1), and with the lm_head
 * rounded to int8 too (HEARTH_VULKAN_LM_HEAD=q8, as the CPU's default decode;
 * tol = 2e-2, as CUDA's q8 rows; seen 8.1e-3); run with either variable set, every tolerance is at least
 * 3e-2 (seen: 1.8e-2 on the random llama3-rope AWQ fixtures, whose logits
 * span a range of ~3.5).
 * The largest relative difference seen per model is printed.
 */
#include <math.h>
#include <string.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "hr-backend-compare.h"
#include "hr-test.h"
#include "model.h"
#include "model-config.h"
#include "quantize.h"
#include "safetensors.h"
#include "vulkan/vk-backend.h"
#include "vulkan/vk-context.h"

/* The tolerance under the prefill GEMM's FP16 operands and the decode
 * GEMV's int8 activations (see above). */
static bool q8_run;   /* the whole run asked for HEARTH_VULKAN_GEMV=q8 or HEARTH_VULKAN_LM_HEAD=q8 */

static float
gemm_tol(float tol)
{
    const char *g = g_getenv("HEARTH_VULKAN_GEMM");
    if (q8_run)
        tol = MAX(tol, 3e-2f);
    return g && g_str_has_prefix(g, "coop") ? MAX(tol, 5e-3f) : tol;
}

static void
check_model(const char *dir, const char *label, float tol, int context, bool long_run)
{
    tol = gemm_tol(tol);
    HrModelConfig cfg;
    HrTensorSet *ts = NULL;
    if (!hr_cmp_load(dir, &cfg, &ts))
        return;
    context = MIN(context, cfg.max_pos);
    HrBackendOptions bopt = { .context_len = context, .kv_type = HR_KV_F16, .n_threads = 1 };
    HrCmpRun cpu = { &hr_cpu_backend, NULL }, vk = { &hr_vulkan_backend, NULL };
    if (!hr_cmp_create(label, &cfg, ts, &bopt, &cpu, &vk))
        return;
    HrMemoryReport mem;
    vk.ops->memory(vk.ctx, &mem);
    HR_CHECK(mem.location && g_str_has_prefix(mem.location, "device"), "location %s", mem.location);

    HrCmpStats s = { .label = label, .device = "vulkan", .tol = tol, .vocab = cfg.vocab_size };
    GRand *rng = g_rand_new_with_seed(42);
    int32_t tok[400];
    for (int i = 0; i < 400; i++)
        tok[i] = g_rand_int_range(rng, 1, cfg.vocab_size);
    const bool long_ok = long_run && context >= 310;
    hr_cmp_schedule(&s, &cpu, &vk, tok, hr_vulkan_backend_last_argmax, long_ok);
    if (long_ok) {
        /* last-row-only over several chunks; 65 = a full chunk + a 1-token
         * chunk (which runs the decode command buffer) */
        if (hr_cmp_forward(&s, &cpu, &vk, tok, 150, 0, false))
            hr_cmp_row(&s, &cpu, &vk, -1, "150 tokens, last row");
        if (hr_cmp_forward(&s, &cpu, &vk, tok, 65, 0, true))
            for (int r = 62; r < 65; r++)
                hr_cmp_row(&s, &cpu, &vk, r, "65 tokens");
    }
    uint32_t msgs = hr_vulkan_backend_validation_messages(vk.ctx);
    HR_CHECK(msgs == 0, "%s: the validation layer reported %u message(s)", label, msgs);
    printf("%-28s rows %3d  max |dlogit|/range %.2e (tolerance %.0e)  greedy ids equal %d/%d  validation msgs %u\n",
           label, s.rows, (double)s.worst_rel, (double)tol, s.argmax_equal, s.rows, msgs);
    g_rand_free(rng);
    vk.ops->destroy(vk.ctx);
    cpu.ops->destroy(cpu.ctx);
    hr_tensor_set_free(ts);
}

/* dir's files in tmp, with config.json's max_position_embeddings set to
 * max_pos (RoPE takes any position; the weights are the same). */
static bool
copy_with_max_pos(const char *dir, const char *tmp, int max_pos)
{
    const char *files[] = { "config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json" };
    for (size_t i = 0; i < G_N_ELEMENTS(files); i++) {
        g_autofree char *from = g_build_filename(dir, files[i], NULL), *to = g_build_filename(tmp, files[i], NULL);
        g_autofree char *text = NULL;
        gsize len = 0;
        if (!g_file_get_contents(from, &text, &len, NULL))
            continue;
        if (i == 0) {
            g_autofree char *key = g_strdup("\"max_position_embeddings\"");
            char *at = strstr(text, key);
            if (!at)
                return false;
            char *num = at + strlen(key);
            while (*num == ' ' || *num == ':')
                num++;
            char *end = num;
            while (*end >= '0' && *end <= '9')
                end++;
            g_autofree char *head = g_strndup(text, (gsize)(num - text));
            g_autofree char *edited = g_strdup_printf("%s%d%s", head, max_pos, end);
            if (!g_file_set_contents(to, edited, -1, NULL))
                return false;
        } else if (!g_file_set_contents(to, text, (gssize)len, NULL)) {
            return false;
        }
    }
    return true;
}

/* A 1,200-token prompt in several prefill chunks against the CPU: every
 * row's logits (sampled), the last row of 1,100 tokens, and decode after. */
static void
check_long_prompt(const char *dir, const char *label, float tol)
{
    tol = gemm_tol(tol);
    HrModelConfig cfg;
    HrTensorSet *ts = NULL;
    if (!hr_cmp_load(dir, &cfg, &ts))
        return;
    enum { N = 1200, CTX = 1232 };
    HR_CHECK(cfg.max_pos >= CTX, "%s: max_pos %d", label, cfg.max_pos);
    HrBackendOptions bopt = { .context_len = CTX, .kv_type = HR_KV_F16, .n_threads = 1 };
    HrCmpRun cpu = { &hr_cpu_backend, NULL }, vk = { &hr_vulkan_backend, NULL };
    if (!hr_cmp_create(label, &cfg, ts, &bopt, &cpu, &vk))
        return;
    HrCmpStats s = { .label = label, .device = "vulkan", .tol = tol, .vocab = cfg.vocab_size };
    GRand *rng = g_rand_new_with_seed(7);
    int32_t *tok = g_new(int32_t, N + 8);
    for (int i = 0; i < N + 8; i++)
        tok[i] = g_rand_int_range(rng, 1, cfg.vocab_size);
    if (hr_cmp_forward(&s, &cpu, &vk, tok, N, 0, true))
        for (int r = 0; r < N; r += r < 500 ? 61 : 29)
            hr_cmp_row(&s, &cpu, &vk, r, "1200-token prefill");
    if (hr_cmp_forward(&s, &cpu, &vk, tok, N - 100, 0, false))
        hr_cmp_row(&s, &cpu, &vk, -1, "1100 tokens, last row");
    for (int p = N - 100; p < N - 96; p++) {
        if (!hr_cmp_forward(&s, &cpu, &vk, tok + p, 1, p, false))
            break;
        hr_cmp_row(&s, &cpu, &vk, -1, "decode after 1100");
    }
    uint32_t msgs = hr_vulkan_backend_validation_messages(vk.ctx);
    HR_CHECK(msgs == 0, "%s: the validation layer reported %u message(s)", label, msgs);
    printf("%-28s rows %3d  max |dlogit|/range %.2e (tolerance %.0e)  greedy ids equal %d/%d  validation msgs %u\n",
           label, s.rows, (double)s.worst_rel, (double)tol, s.argmax_equal, s.rows, msgs);
    g_free(tok);
    g_rand_free(rng);
    vk.ops->destroy(vk.ctx);
    cpu.ops->destroy(cpu.ctx);
    hr_tensor_set_free(ts);
}

/* Too little device memory: a clear error naming both sizes, nothing leaked
 * or left half-built (ASan would see a use after free on a second load). */
static void
check_out_of_memory(const char *dir)
{
    HrModelConfig cfg;
    HrTensorSet *ts = NULL;
    if (!hr_cmp_load(dir, &cfg, &ts))
        return;
    HrError err = { 0 };
    HrBackendOptions bopt = { .context_len = 64, .kv_type = HR_KV_F16 };
    void *ctx = NULL;
    g_setenv("HEARTH_VULKAN_MAX_MEMORY_MIB", "0", TRUE);
    HrStatus st = hr_vulkan_backend.create(&cfg, ts, &bopt, NULL, NULL, &ctx, &err);
    g_unsetenv("HEARTH_VULKAN_MAX_MEMORY_MIB");
    HR_CHECK(st == HR_ERR_NOMEM && ctx == NULL, "a 0 MiB cap gave status %d", (int)st);
    HR_CHECK(st != HR_OK && strstr(err.message, "needs") && strstr(err.message, "MiB"), "message: %s",
             st != HR_OK ? err.message : "(none)");
    if (st != HR_OK)
        printf("out of memory: %s\n", err.message);
    if (ctx)
        hr_vulkan_backend.destroy(ctx);
    hr_error_clear(&err);
    /* One layer's KV cache past the device's binding range: refused with
     * both sizes (the message was once written from the freed context). */
    HrVkOptions vopt;
    hr_vk_options_init(&vopt);
    HrVkContext *vk = NULL;
    if (hr_vk_context_new(&vopt, &vk, &err) == HR_OK) {
        const uint64_t range = hr_vk_context_caps(vk)->max_storage_buffer_range;
        hr_vk_context_free(vk);
        const uint64_t per_pos = (uint64_t)cfg.n_kv_heads * (uint64_t)cfg.head_dim * 2;
        const uint64_t positions = range / per_pos + 1;
        /* the check comes after the memory check: only where the caches fit */
        if (positions <= INT32_MAX && 2 * positions * per_pos * (uint64_t)cfg.n_layers < ((uint64_t)4 << 30)) {
            bopt.context_len = (int)positions;
            st = hr_vulkan_backend.create(&cfg, ts, &bopt, NULL, NULL, &ctx, &err);
            HR_CHECK(st == HR_ERR_UNSUPPORTED && ctx == NULL, "a KV cache past the binding range: status %d",
                     (int)st);
            HR_CHECK(st != HR_OK && strstr(err.message, "storage buffer range") && strstr(err.message, "--ctx"),
                     "message: %s", st != HR_OK ? err.message : "(none)");
            if (st != HR_OK)
                printf("KV cache past the binding range: %s\n", err.message);
            if (ctx)
                hr_vulkan_backend.destroy(ctx);
            bopt.context_len = 64;
        } else {
            printf("KV cache past the binding range: not checked (%llu positions on this device)\n",
                   (unsigned long long)positions);
        }
    }
    hr_error_clear(&err);
    /* --kv f32 is refused with a reason */
    bopt.kv_type = HR_KV_F32;
    st = hr_vulkan_backend.create(&cfg, ts, &bopt, NULL, NULL, &ctx, &err);
    HR_CHECK(st == HR_ERR_UNSUPPORTED && ctx == NULL, "kv f32: status %d", (int)st);
    hr_tensor_set_free(ts);
    hr_error_clear(&err);

    /* "auto" (lavapipe here: HEARTH_VULKAN_ALLOW_CPU=1; CUDA where a device
     * answers) without the device memory for the model: it runs on the CPU,
     * and says so; the same greedy ids as the CPU backend asked by name. */
    HrModelOptions mo;
    hr_model_options_init(&mo);
    mo.context_len = 64;
    HrModel *cpu = NULL, *fell = NULL;
    st = hr_model_load(dir, &mo, &cpu, &err);
    HR_CHECK(st == HR_OK, "cpu: %s", err.message);
    hr_error_clear(&err);
    mo.backend = "auto";
    g_setenv("HEARTH_VULKAN_MAX_MEMORY_MIB", "0", TRUE);
    g_setenv("HEARTH_CUDA_MAX_MEMORY_MIB", "0", TRUE);
    st = hr_model_load(dir, &mo, &fell, &err);
    g_unsetenv("HEARTH_VULKAN_MAX_MEMORY_MIB");
    g_unsetenv("HEARTH_CUDA_MAX_MEMORY_MIB");
    HR_CHECK(st == HR_OK, "auto without the device memory: %s", err.message);
    hr_error_clear(&err);
    if (st == HR_OK && cpu) {
        const char *notice = hr_model_notice(fell);
        HR_CHECK(hr_model_backend(fell) == &hr_cpu_backend && notice && strstr(notice, "CPU") &&
                 strstr(notice, "too little memory"), "auto without the device memory: backend %s, notice %s",
                 hr_model_backend(fell)->name, notice ? notice : "(none)");
        HR_CHECK(hr_model_notice(cpu) == NULL, "the CPU asked by name has a notice: %s", hr_model_notice(cpu));
        printf("auto without the device memory: %s\n", notice ? notice : "(no notice)");
        const int32_t prompt[4] = { 1, 5, 9, 13 };
        int32_t ids[2][8];
        HrModel *ms[2] = { cpu, fell };
        for (int k = 0; k < 2; k++) {
            int32_t seq[12];
            memcpy(seq, prompt, sizeof prompt);
            float *row = g_new(float, cfg.vocab_size);
            for (int i = 0; i < 8; i++) {
                HrStatus es = hr_model_eval(ms[k], seq, 4 + i, &err);
                if (es == HR_OK)
                    es = hr_model_logits(ms[k], row, &err);
                HR_CHECK(es == HR_OK, "%s", err.message);
                int best = 0;
                for (int v = 1; v < cfg.vocab_size; v++)
                    best = row[v] > row[best] ? v : best;
                seq[4 + i] = ids[k][i] = best;
            }
            g_free(row);
        }
        HR_CHECK(memcmp(ids[0], ids[1], sizeof ids[0]) == 0, "auto on the CPU: other greedy ids than the CPU's");
    }
    hr_model_free(cpu);
    hr_model_free(fell);
    hr_error_clear(&err);
}

/* The pipeline cache file the backend writes under the user cache dir
 * (meson points XDG_CACHE_HOME into the build dir). */
static void
check_pipeline_cache(void)
{
    g_autofree char *dir = g_build_filename(g_get_user_cache_dir(), "hearth", NULL);
    GDir *d = g_dir_open(dir, 0, NULL);
    int found = 0;
    const char *name;
    while (d && (name = g_dir_read_name(d)))
        found += g_str_has_prefix(name, "vulkan-pipelines-") && g_str_has_suffix(name, ".bin");
    if (d)
        g_dir_close(d);
    HR_CHECK(found >= 1, "no pipeline cache file in %s", dir);
}

typedef struct {
    GPtrArray *src;   /* const HrTensor*, in output order */
} CopyJob;

static HrStatus
copy_fill(void *user, size_t index, void *buf, size_t n_bytes, HrError *err)
{
    CopyJob *j = user;
    memcpy(buf, ((const HrTensor *)g_ptr_array_index(j->src, index))->data, n_bytes);
    return HR_OK;
}

/* dir/model.safetensors: the tensors of base, except layer 0's k_proj and
 * up_proj, taken from other (another group size); config from base. */
static bool
write_mixed_groups(const char *base, const char *other, const char *dir, const char *which)
{
    HrTensorSet *a = NULL, *b = NULL;
    HrError err = { 0 };
    if (hr_tensor_set_open_dir(base, &a, &err) != HR_OK || hr_tensor_set_open_dir(other, &b, &err) != HR_OK) {
        HR_CHECK(false, "%s", err.message);
        hr_tensor_set_free(a);
        return false;
    }
    CopyJob j = { g_ptr_array_new() };
    GArray *out = g_array_new(FALSE, TRUE, sizeof(HrOutTensor));
    for (size_t i = 0; i < hr_tensor_set_count(a); i++) {
        const HrTensor *t = hr_tensor_set_get(a, i);
        if (g_str_has_prefix(t->name, which))
            t = hr_tensor_set_find(b, t->name);
        HrOutTensor o = { .dtype = t->dtype, .n_dims = t->n_dims,
                          .shape = { t->shape[0], t->n_dims > 1 ? t->shape[1] : 0 } };
        g_strlcpy(o.name, t->name, sizeof o.name);
        g_array_append_val(out, o);
        g_ptr_array_add(j.src, (gpointer)t);
    }
    g_mkdir_with_parents(dir, 0755);
    g_autofree char *path = g_build_filename(dir, "model.safetensors", NULL);
    bool ok = hr_safetensors_write(path, (const HrOutTensor *)(void *)out->data, out->len, copy_fill, &j, &err) == HR_OK;
    HR_CHECK(ok, "%s", err.message);
    const char *meta[] = { "config.json", "tokenizer.json", "tokenizer_config.json" };
    for (size_t i = 0; i < G_N_ELEMENTS(meta); i++) {
        g_autofree char *from = g_build_filename(base, meta[i], NULL), *to = g_build_filename(dir, meta[i], NULL);
        g_autofree char *text = NULL;
        gsize len = 0;
        if (g_file_get_contents(from, &text, &len, NULL))
            g_file_set_contents(to, text, (gssize)len, NULL);
    }
    g_ptr_array_unref(j.src);
    g_array_unref(out);
    hr_tensor_set_free(a);
    hr_tensor_set_free(b);
    return ok;
}

/* A checkpoint whose q|k|v (or gate|up) of one layer have different group
 * sizes: q|k|v run as separate GEMVs and match the CPU (the fused kernel
 * used the first matrix's groups for all three: wrong logits); gate|up run
 * as two GEMVs and silu_mul.comp and match the CPU too (they were refused
 * before). */
static void
check_mixed_groups(const char *f32, const char *tmp)
{
    HrQuantOptions qopt;
    hr_quant_options_init(&qopt);
    qopt.method = HR_QUANT_RTN;
    qopt.per_channel_fallback = true;
    HrError err = { 0 };
    g_autofree char *g32 = g_build_filename(tmp, "g32", NULL), *g64 = g_build_filename(tmp, "g64", NULL);
    g_autofree char *mixed = g_build_filename(tmp, "mixed-qkv", NULL), *mixed2 = g_build_filename(tmp, "mixed-mlp", NULL);
    qopt.group_size = 32;
    HR_CHECK(hr_quantize_model(f32, g32, &qopt, NULL, NULL, &err) == HR_OK, "quantize g32: %s", err.message);
    qopt.group_size = 64;
    HR_CHECK(hr_quantize_model(f32, g64, &qopt, NULL, NULL, &err) == HR_OK, "quantize g64: %s", err.message);
    if (write_mixed_groups(g32, g64, mixed, "model.layers.0.self_attn.k_proj."))
        check_model(mixed, "llama3-rope AWQ k_proj g64 beside q/v g32", 1e-3f, 64, false);
    if (write_mixed_groups(g32, g64, mixed2, "model.layers.0.mlp.up_proj."))
        check_model(mixed2, "llama3-rope AWQ up_proj g64 beside gate g32", 1e-3f, 64, false);
    hr_test_rmtree(g32);
    hr_test_rmtree(g64);
    hr_test_rmtree(mixed);
    hr_test_rmtree(mixed2);
}

int
main(void)
{
    /* The CPU backend is the oracle here: FP32 activations, as the GPU has
     * (its int8-activation decode path is checked in test-matmul). */
    g_setenv("HEARTH_CPU_EXACT", "1", TRUE);
    q8_run = g_strcmp0(g_getenv("HEARTH_VULKAN_GEMV"), "q8") == 0 || g_strcmp0(g_getenv("HEARTH_VULKAN_LM_HEAD"), "q8") == 0;
    g_setenv("HEARTH_VULKAN_VALIDATION", "1", TRUE);
    g_setenv("HEARTH_VULKAN_ALLOW_CPU", "1", TRUE);   /* lavapipe is what CI has */
    hr_vk_context_free(hr_test_vulkan_context(false)); /* SKIP without a Vulkan driver */

    {
        g_autofree char *dir = g_build_filename(HEARTH_FIXTURES, "hf-tiny", "llama-gqa-tied", "f32", NULL);
        check_out_of_memory(dir);
    }
    static const char *fixtures[] = { "llama-gqa-tied", "llama3-rope", "llama-linear-rope", "qwen2-bias", "mistral",
                                      "qwen3-qknorm", "gemma3", "phi3-longrope", "gemma2" };
    for (size_t i = 0; i < G_N_ELEMENTS(fixtures); i++) {
        for (int v = 0; v < 2; v++) {
            const char *variant = v ? "bf16" : "f32";
            g_autofree char *dir = g_build_filename(HEARTH_FIXTURES, "hf-tiny", fixtures[i], variant, NULL);
            g_autofree char *label = g_strdup_printf("%s/%s", fixtures[i], variant);
            check_model(dir, label, 1e-2f, 64, false);
            if (i == 4 && v == 0) {   /* an untied lm_head in slices too */
                g_setenv("HEARTH_VULKAN_MAX_BINDING_BYTES", "3000", TRUE);
                check_model(dir, "mistral/f32 sliced", 1e-2f, 64, false);
                g_unsetenv("HEARTH_VULKAN_MAX_BINDING_BYTES");
            }
        }
    }

    check_pipeline_cache();
    {
        g_autofree char *src = g_build_filename(HEARTH_FIXTURES, "hf-tiny", "llama3-rope", "f32", NULL);
        g_autofree char *mtmp = g_dir_make_tmp("hearth-vk-mixed-XXXXXX", NULL);
        check_mixed_groups(src, mtmp);
        g_rmdir(mtmp);
    }

    g_autofree char *assets = hr_test_assets_dir();
    g_autofree char *f16 = assets ? g_build_filename(assets, "models", "stories260K", "hf_f16", NULL) : NULL;
    g_autofree char *f32 = assets ? g_build_filename(assets, "models", "stories260K", "hf_f32", NULL) : NULL;
    if (!f16 || !g_file_test(f16, G_FILE_TEST_IS_DIR) || !g_file_test(f32, G_FILE_TEST_IS_DIR)) {
        if (hr_test_result() != 0)
            return hr_test_result();
        hr_test_skip("stories260K is absent (HEARTH_ASSETS=%s); the hf-tiny fixtures passed", assets ? assets : "");
    }
    check_model(f16, "stories260K/hf_f16", 1e-3f, 512, true);
    /* The 300-token prompt in chunks of 64 and 100 (5 and 3 chunks). */
    g_setenv("HEARTH_VULKAN_CHUNK", "64", TRUE);
    check_model(f16, "stories260K/hf_f16 chunk 64", 1e-3f, 512, true);
    g_setenv("HEARTH_VULKAN_CHUNK", "100", TRUE);
    check_model(f16, "stories260K/hf_f16 chunk 100", 1e-3f, 512, true);
    /* ... with every step shorter than a chunk on the short steps' list
     * (the several-token GEMV; by default steps of at most 16 tokens) */
    g_setenv("HEARTH_VULKAN_SHORT", "99", TRUE);
    check_model(f16, "stories260K/hf_f16 short 99", 1e-3f, 512, true);
    g_unsetenv("HEARTH_VULKAN_SHORT");
    g_unsetenv("HEARTH_VULKAN_CHUNK");
    {
        g_autofree char *ltmp = g_dir_make_tmp("hearth-vk-long-XXXXXX", NULL);
        if (copy_with_max_pos(f16, ltmp, 2048)) {
            check_long_prompt(ltmp, "stories260K 1200 tokens", 1e-3f);
            g_setenv("HEARTH_VULKAN_CHUNK", "300", TRUE);
            check_long_prompt(ltmp, "stories260K 1200 chunk 300", 1e-3f);
            g_unsetenv("HEARTH_VULKAN_CHUNK");
        } else {
            HR_CHECK(false, "could not write the max_pos 2048 copy of %s", f16);
        }
        hr_test_rmtree(ltmp);
    }
    /* Embedding and tied lm_head split into 7 row slices (as a table larger
     * than maxStorageBufferRange would be). */
    g_setenv("HEARTH_VULKAN_MAX_BINDING_BYTES", "10000", TRUE);
    check_model(f16, "stories260K/hf_f16 sliced", 1e-3f, 512, false);
    g_unsetenv("HEARTH_VULKAN_MAX_BINDING_BYTES");
    /* As a discrete GPU runs it: each decode row written on the device, then
     * copied to the host at the end of the step (the draw's kernels idle). */
    g_setenv("HEARTH_DEVICE_SAMPLING", "1", TRUE);
    check_model(f16, "stories260K/hf_f16 device row", 1e-3f, 512, false);
    g_unsetenv("HEARTH_DEVICE_SAMPLING");
    /* The opt-in FP16-arithmetic decode GEMV (where the device has it). */
    g_setenv("HEARTH_VULKAN_FP16_MATH", "1", TRUE);
    check_model(f16, "stories260K/hf_f16 fp16-math", 1e-2f, 512, false);
    g_unsetenv("HEARTH_VULKAN_FP16_MATH");
    /* The prefill GEMM's tiles on matrix units, emulated (unless the run
     * already asks for the real ones; HEARTH_TEST_FULL=1: test-vulkan-kernels
     * checks its every dispatch form against the CPU in CI). */
    const char *gemm_env = g_getenv("HEARTH_VULKAN_GEMM");
    if (hr_test_full() && (!gemm_env || !g_str_has_prefix(gemm_env, "coop"))) {
        g_autofree char *saved = g_strdup(gemm_env);
        g_setenv("HEARTH_VULKAN_GEMM", "coop-emu", TRUE);
        check_model(f16, "stories260K/hf_f16 coop-emu", 1e-3f, 512, true);
        if (saved)
            g_setenv("HEARTH_VULKAN_GEMM", saved, TRUE);
        else
            g_unsetenv("HEARTH_VULKAN_GEMM");
    }

    g_autofree char *tmp = g_dir_make_tmp("hearth-vk-awq-XXXXXX", NULL);
    HrQuantOptions qopt;
    hr_quant_options_init(&qopt);
    qopt.method = HR_QUANT_RTN;
    qopt.group_size = 32;
    qopt.per_channel_fallback = true;
    HrError err = { 0 };
    if (hr_quantize_model(f32, tmp, &qopt, NULL, NULL, &err) != HR_OK)
        HR_CHECK(false, "quantize: %s", err.message);
    else
        check_model(tmp, "stories260K AWQ rtn g32", 1e-3f, 512, true);
    /* The decode GEMV on int8 activations (where the device has int8 dot
     * products; unless the run already asks for it) */
    if (!q8_run) {
        g_autofree char *saved = g_strdup(g_getenv("HEARTH_VULKAN_GEMV"));
        g_setenv("HEARTH_VULKAN_GEMV", "q8", TRUE);
        if (hr_test_full())   /* (CI time: the row below runs the same GEMVs and the int8 lm_head) */
            check_model(tmp, "stories260K AWQ rtn g32 q8", 1e-2f, 512, false);
        /* and the lm_head rounded to int8 (tied: its own copy beside the embedding's FP16 rows) */
        g_setenv("HEARTH_VULKAN_LM_HEAD", "q8", TRUE);
        check_model(tmp, "stories260K AWQ g32 q8 lm_head", 2e-2f, 512, false);
        g_unsetenv("HEARTH_VULKAN_LM_HEAD");
        if (saved)
            g_setenv("HEARTH_VULKAN_GEMV", saved, TRUE);
        else
            g_unsetenv("HEARTH_VULKAN_GEMV");
    }
    hr_test_rmtree(tmp);
    return hr_test_result();
}
