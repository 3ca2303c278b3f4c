/* The CPU forward pass against Hugging Face transformers (the real
 * reference): tiny random models made by tests/reference/make_fixtures.py
 * for Llama (GQA, tied head), Llama-3 rope scaling with explicit head_dim,
 * linear rope scaling, Qwen2 (qkv bias), Mistral and Qwen3 (q/k norms, q wider than
 * the hidden size), in FP32 and BF16.
 *
 * Checks, per model and prompt:
 *  - all-position logits from one prefill: max |err| <= 1e-4 (FP32 KV);
 *  - the KV cache continues: a prefill of the first part then one token at a
 *    time gives each step's logits within 1e-4;
 *  - 16 greedy tokens equal transformers' generate();
 *  - with the FP16 KV cache, logits stay within 2e-2.
 */
#include <math.h>
#include <string.h>

#include <glib.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <unistd.h>

#include "hr-test.h"
#include "model.h"
#include "safetensors.h"

static const char *models[] = {
    "llama-gqa-tied", "llama3-rope", "llama-linear-rope", "qwen2-bias", "mistral", "qwen3-qknorm", "gemma3",
    "phi3-longrope", "gemma2",
};
static const char *variants[] = { "f32", "bf16" };

static float
max_abs_diff(const float *a, const float *b, int n)
{
    float m = 0.0f;
    for (int i = 0; i < n; i++) {
        float d = fabsf(a[i] - b[i]);
        if (!(d <= m)) /* catches NaN */
            m = isnan(d) ? INFINITY : d;
    }
    return m;
}

static HrModel *
load(const char *dir, HrKvType kv)
{
    HrModelOptions opt;
    hr_model_options_init(&opt);
    opt.kv_type = kv;
    opt.context_len = 128;
    HrError err = { 0 };
    HrModel *m = NULL;
    if (hr_model_load(dir, &opt, &m, &err) != HR_OK) {
        HR_CHECK(false, "loading %s: %s", dir, err.message);
        return NULL;
    }
    return m;
}

static void
check_variant(const char *dir)
{
    g_autofree char *ref_path = g_build_filename(dir, "logits.safetensors", NULL);
    HrSafetensors *ref = NULL;
    HrError err = { 0 };
    if (hr_safetensors_open(ref_path, &ref, &err) != HR_OK) {
        HR_CHECK(false, "%s", err.message);
        return;
    }
    const char *np = hr_safetensors_metadata(ref, "n_prompts");
    int n_prompts = np ? atoi(np) : 0;
    HR_CHECK(n_prompts >= 3, "%s: n_prompts = %d", ref_path, n_prompts);

    HrModel *m32 = load(dir, HR_KV_F32);
    HrModel *m16 = load(dir, HR_KV_F16);
    if (!m32 || !m16)
        goto done;
    const int vocab = hr_model_config(m32)->vocab_size;
    float *row = g_new(float, vocab);

    for (int p = 0; p < n_prompts; p++) {
        char name[64];
        g_snprintf(name, sizeof name, "prompt%d.ids", p);
        const HrTensor *ids_t = hr_safetensors_find(ref, name);
        g_snprintf(name, sizeof name, "prompt%d.logits", p);
        const HrTensor *lg_t = hr_safetensors_find(ref, name);
        if (!ids_t || !lg_t || ids_t->dtype != HR_DTYPE_I32 || lg_t->dtype != HR_DTYPE_F32) {
            HR_CHECK(false, "%s: prompt %d tensors missing", ref_path, p);
            continue;
        }
        const int32_t *ids = ids_t->data;
        const float *want = lg_t->data;
        int n = (int)ids_t->shape[0];
        HR_CHECK(lg_t->shape[1] == vocab, "vocab mismatch");

        /* 1. One prefill, every row. */
        float worst = 0.0f;
        if (hr_model_eval_all(m32, ids, n, &err) != HR_OK) {
            HR_CHECK(false, "%s: %s", dir, err.message);
            continue;
        }
        for (int t = 0; t < n; t++) {
            hr_model_logits_row(m32, t, row, &err);
            worst = fmaxf(worst, max_abs_diff(row, want + (size_t)t * vocab, vocab));
        }
        HR_CHECK(worst <= 1e-4f, "%s prompt %d (%d tokens): prefill max |err| = %g", dir, p, n, worst);
        printf("%s prompt %d: prefill max |err| %.3g", dir, p, worst);

        /* 2. Prefill half, then decode one token at a time through the cache. */
        int split = n / 2 > 0 ? n / 2 : 1;
        worst = 0.0f;
        HrStatus st = hr_model_eval(m32, ids, split, &err);
        if (st == HR_OK) {
            hr_model_logits(m32, row, &err);
            worst = max_abs_diff(row, want + (size_t)(split - 1) * vocab, vocab);
        }
        for (int t = split; st == HR_OK && t < n; t++) {
            st = hr_model_append(m32, &ids[t], 1, &err);
            if (st == HR_OK && hr_model_logits(m32, row, &err) == HR_OK)
                worst = fmaxf(worst, max_abs_diff(row, want + (size_t)t * vocab, vocab));
        }
        HR_CHECK(st == HR_OK, "%s: %s", dir, err.message);
        HR_CHECK(worst <= 1e-4f, "%s prompt %d: incremental decode max |err| = %g", dir, p, worst);
        printf(", decode %.3g", worst);

        /* 3. FP16 KV cache. */
        worst = 0.0f;
        if (hr_model_eval_all(m16, ids, n, &err) == HR_OK) {
            for (int t = 0; t < n; t++) {
                hr_model_logits_row(m16, t, row, &err);
                worst = fmaxf(worst, max_abs_diff(row, want + (size_t)t * vocab, vocab));
            }
        }
        HR_CHECK(worst <= 2e-2f, "%s prompt %d: FP16 KV max |err| = %g", dir, p, worst);
        printf(", f16 KV %.3g\n", worst);
    }

    /* 4. Greedy continuation of prompt 1 matches generate(). */
    const HrTensor *ids_t = hr_safetensors_find(ref, "prompt1.ids");
    const HrTensor *greedy_t = hr_safetensors_find(ref, "prompt1.greedy");
    if (ids_t && greedy_t) {
        const int32_t *greedy = greedy_t->data;
        int n_greedy = (int)greedy_t->shape[0];
        HrStatus st = hr_model_eval(m32, ids_t->data, (int)ids_t->shape[0], &err);
        int matched = 0;
        for (int i = 0; st == HR_OK && i < n_greedy; i++) {
            hr_model_logits(m32, row, &err);
            int32_t best = 0;
            for (int v = 1; v < vocab; v++)
                if (row[v] > row[best])
                    best = v;
            if (best != greedy[i])
                break;
            matched++;
            st = hr_model_append(m32, &best, 1, &err);
        }
        HR_CHECK(matched == n_greedy, "%s: greedy tokens match for %d of %d", dir, matched, n_greedy);
    } else {
        HR_CHECK(false, "%s: prompt1.greedy missing", ref_path);
    }
    g_free(row);
done:
    hr_model_free(m32);
    hr_model_free(m16);
    hr_safetensors_free(ref);
}

/* The Gemma 3 fixture as an image-text checkpoint keeps it (Gemma 3 4B and up: Gemma3ForConditionalGeneration,
 * the text model's config under text_config, its tensors under prefix, e.g. language_model.model.): a copy
 * whose file only renames the tensors and whose config nests the fixture's, checked against the same logits. */
static void
check_image_text(const char *prefix)
{
    g_autofree char *src = g_build_filename(HEARTH_FIXTURES, "hf-tiny", "gemma3", "f32", NULL);
    g_autofree char *tmp = g_dir_make_tmp("hearth-gemma3-it-XXXXXX", NULL);
    g_autofree char *st_src = g_build_filename(src, "model.safetensors", NULL);
    g_autofree char *cfg_src = g_build_filename(src, "config.json", NULL);
    g_autofree char *bytes = NULL, *cfg = NULL;
    gsize len = 0;
    uint64_t hlen = 0;
    HR_CHECK(g_file_get_contents(st_src, &bytes, &len, NULL) && len > 8 && g_file_get_contents(cfg_src, &cfg, NULL,
                                                                                             NULL), "reading %s", src);
    if (!bytes || !cfg)
        return;
    memcpy(&hlen, bytes, 8);
    JsonParser *p = json_parser_new();
    HR_CHECK(json_parser_load_from_data(p, bytes + 8, (gssize)hlen, NULL), "header");
    JsonObject *h = json_node_get_object(json_parser_get_root(p)), *renamed = json_object_new();
    GList *names = json_object_get_members(h);
    for (GList *l = names; l; l = l->next) {
        const char *n = l->data;
        g_autofree char *to = g_str_has_prefix(n, "model.") ? g_strconcat(prefix, n + strlen("model."), NULL)
                                                             : g_strdup(n);
        json_object_set_member(renamed, to, json_node_copy(json_object_get_member(h, n)));
    }
    g_list_free(names);
    JsonNode *root = json_node_init_object(json_node_alloc(), renamed);
    g_autofree char *header = json_to_string(root, FALSE);
    GString *file = g_string_new(NULL);
    uint64_t new_len = (strlen(header) + 7) / 8 * 8;
    g_string_append_len(file, (const char *)&new_len, 8);
    g_string_append(file, header);
    while (file->len < 8 + new_len)
        g_string_append_c(file, ' ');
    g_string_append_len(file, bytes + 8 + hlen, (gssize)(len - 8 - hlen));
    g_autofree char *st_dst = g_build_filename(tmp, "model.safetensors", NULL);
    HR_CHECK(g_file_set_contents(st_dst, file->str, (gssize)file->len, NULL), "writing %s", st_dst);
    g_string_free(file, TRUE);
    json_node_unref(root);
    json_object_unref(renamed);
    g_object_unref(p);

    JsonParser *cp = json_parser_new();
    HR_CHECK(json_parser_load_from_data(cp, cfg, -1, NULL), "config");
    JsonNode *text = json_node_copy(json_parser_get_root(cp));
    json_object_remove_member(json_node_get_object(text), "architectures");
    g_autofree char *text_json = json_to_string(text, FALSE);
    json_node_unref(text);
    g_object_unref(cp);
    g_autofree char *it = g_strdup_printf("{\"architectures\": [\"Gemma3ForConditionalGeneration\"], \"model_type\": "
                                          "\"gemma3\", \"vision_config\": {}, \"eos_token_id\": [1, 106], "
                                          "\"text_config\": %s}", text_json);
    g_autofree char *cfg_dst = g_build_filename(tmp, "config.json", NULL);
    g_autofree char *logits_src = g_build_filename(src, "logits.safetensors", NULL);
    g_autofree char *logits_dst = g_build_filename(tmp, "logits.safetensors", NULL);
    HR_CHECK(g_file_set_contents(cfg_dst, it, -1, NULL) && symlink(logits_src, logits_dst) == 0, "writing %s", tmp);
    check_variant(tmp);
    g_unlink(st_dst);
    g_unlink(cfg_dst);
    g_unlink(logits_dst);
    g_rmdir(tmp);
}

int
main(void)
{
    for (size_t i = 0; i < G_N_ELEMENTS(models); i++) {
        for (size_t v = 0; v < G_N_ELEMENTS(variants); v++) {
            g_autofree char *dir = g_build_filename(HEARTH_FIXTURES, "hf-tiny", models[i], variants[v], NULL);
            check_variant(dir);
        }
    }
    check_image_text("language_model.model.");
    check_image_text("model.language_model.");
    return hr_test_result();
}
