/* stories260K (a real trained Llama, ../shared/assets): 256 greedy tokens
 * from BOS reproduce the published reference ids exactly in FP32, and the
 * FP16 copy (with the FP16 KV cache) agrees for at least the first 100. */
#include <math.h>
#include <string.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "hr-test.h"
#include "generate.h"
#include "model.h"
#include "safetensors.h"
#include "sampler.h"
#include "tokenizer.h"

static int
read_ids(const char *path, int32_t *ids, int max)
{
    g_autofree char *text = NULL;
    if (!g_file_get_contents(path, &text, NULL, NULL))
        return -1;
    g_auto(GStrv) parts = g_strsplit_set(g_strstrip(text), " \n\t", -1);
    int n = 0;
    for (char **p = parts; *p && n < max; p++)
        if (**p)
            ids[n++] = (int32_t)atoi(*p);
    return n;
}

static int
greedy_agreement(const char *dir, HrKvType kv, const int32_t *ref, int n_ref)
{
    HrModelOptions opt;
    hr_model_options_init(&opt);
    opt.kv_type = kv;
    HrError err = { 0 };
    HrModel *m = NULL;
    if (hr_model_load(dir, &opt, &m, &err) != HR_OK) {
        HR_CHECK(false, "%s", err.message);
        return 0;
    }
    const HrModelConfig *cfg = hr_model_config(m);
    HR_CHECK(cfg->bos_id == 1, "bos id %d", cfg->bos_id);
    float *logits = g_new(float, cfg->vocab_size);
    int32_t tok = 1; /* BOS */
    int matched = 0;
    HrStatus st = hr_model_eval(m, &tok, 1, &err);
    for (int i = 0; st == HR_OK && i < n_ref; i++) {
        hr_model_logits(m, logits, &err);
        int32_t best = 0;
        for (int v = 1; v < cfg->vocab_size; v++)
            if (logits[v] > logits[best])
                best = v;
        if (best != ref[i])
            break;
        matched++;
        st = hr_model_append(m, &best, 1, &err);
    }
    HR_CHECK(st == HR_OK, "%s", err.message);
    g_free(logits);
    hr_model_free(m);
    return matched;
}

static bool
collect(const char *text, size_t len, int32_t token, void *user)
{
    g_string_append_len(user, text, (gssize)len);
    return true;
}

/* Greedy text from BOS with the given stop strings. */
static char *
generate_text(HrModel *m, const HrTokenizer *tok, const char *const *stops)
{
    HrSamplerParams sp;
    hr_sampler_params_init(&sp);
    sp.temperature = 0.0f;
    HrSampler *s = hr_sampler_new(&sp, hr_model_config(m)->vocab_size);
    HrGenerateOptions go;
    hr_generate_options_init(&go);
    go.max_new_tokens = 48;
    go.stop_strings = stops;
    GString *out = g_string_new(NULL);
    int32_t bos = 1;
    HrError err = { 0 };
    HR_CHECK(hr_generate(m, tok, s, &bos, 1, &go, collect, out, NULL, &err) == HR_OK, "%s", err.message);
    hr_sampler_free(s);
    return g_string_free(out, FALSE);
}

/* Stop strings: output ends right before the first one; an empty stop string
 * is ignored (it once made the held-back suffix read past its end). */
static void
check_stop_strings(const char *dir)
{
    HrError err = { 0 };
    HrModel *m = NULL;
    HrTokenizer *tok = NULL;
    if (hr_model_load(dir, NULL, &m, &err) != HR_OK || hr_tokenizer_load(dir, &tok, &err) != HR_OK) {
        HR_CHECK(false, "%s", err.message);
        hr_model_free(m);
        return;
    }
    const char *none[] = { "", NULL };
    g_autofree char *full = generate_text(m, tok, none);
    HR_CHECK(strlen(full) > 40, "greedy text too short: '%s'", full);
    if (strlen(full) > 40) {
        g_autofree char *stop = g_strndup(full + 30, 4);
        const char *stops[] = { "", stop, NULL };
        g_autofree char *cut = generate_text(m, tok, stops);
        const char *first = strstr(full, stop);
        HR_CHECK(first && strlen(cut) == (size_t)(first - full) && strncmp(cut, full, strlen(cut)) == 0,
                 "stop '%s': got '%s' from '%s'", stop, cut, full);
    }
    hr_tokenizer_free(tok);
    hr_model_free(m);
}

/* A NaN in one weight: generation fails with an error naming that tensor
 * (it used to pick token 0 forever). */
static void
check_nan_weights(const char *dir)
{
    g_autofree char *tmp = g_dir_make_tmp("hearth-nan-XXXXXX", NULL);
    const char *copy[] = { "config.json", "tokenizer.json", "tokenizer_config.json" };
    for (size_t i = 0; i < G_N_ELEMENTS(copy); i++) {
        g_autofree char *src = g_build_filename(dir, copy[i], NULL), *dst = g_build_filename(tmp, copy[i], NULL);
        g_autofree char *text = NULL;
        gsize len = 0;
        HR_CHECK(g_file_get_contents(src, &text, &len, NULL) && g_file_set_contents(dst, text, (gssize)len, NULL),
                 "copy %s", copy[i]);
    }
    g_autofree char *src = g_build_filename(dir, "model.safetensors", NULL);
    g_autofree char *dst = g_build_filename(tmp, "model.safetensors", NULL);
    g_autofree char *data = NULL;
    gsize len = 0;
    HR_CHECK(g_file_get_contents(src, &data, &len, NULL), "read %s", src);
    HrSafetensors *st = NULL;
    HrError err = { 0 };
    const char *name = "model.layers.2.mlp.down_proj.weight";
    if (hr_safetensors_parse_memory(data, len, "copy", &st, &err) == HR_OK) {
        const HrTensor *t = hr_safetensors_find(st, name);
        HR_CHECK(t && t->dtype == HR_DTYPE_F32, "%s", name);
        if (t && t->dtype == HR_DTYPE_F32)
            ((float *)t->data)[5] = NAN;
        hr_safetensors_free(st);
    }
    HR_CHECK(g_file_set_contents(dst, data, (gssize)len, NULL), "write %s", dst);
    HrModel *m = NULL;
    HrTokenizer *tok = NULL;
    if (hr_model_load(tmp, NULL, &m, &err) == HR_OK && hr_tokenizer_load(tmp, &tok, &err) == HR_OK) {
        HrSamplerParams sp;
        hr_sampler_params_init(&sp);
        HrSampler *s = hr_sampler_new(&sp, hr_model_config(m)->vocab_size);
        HrGenerateOptions go;
        hr_generate_options_init(&go);
        go.max_new_tokens = 4;
        GString *out = g_string_new(NULL);
        int32_t bos = 1;
        HrStatus rc = hr_generate(m, tok, s, &bos, 1, &go, collect, out, NULL, &err);
        HR_CHECK(rc == HR_ERR_FORMAT && strstr(err.message, name) && strstr(err.message, "NaN"),
                 "NaN weights: status %d, '%s', text '%s'", rc, err.message, out->str);
        g_string_free(out, TRUE);
        hr_sampler_free(s);
    } else {
        HR_CHECK(false, "%s", err.message);
    }
    hr_tokenizer_free(tok);
    hr_model_free(m);
    for (size_t i = 0; i < G_N_ELEMENTS(copy); i++) {
        g_autofree char *p = g_build_filename(tmp, copy[i], NULL);
        g_unlink(p);
    }
    g_unlink(dst);
    g_rmdir(tmp);
}

int
main(void)
{
    g_autofree char *ref_path = hr_test_asset("models/stories260K/greedy_ref_ids.txt");
    g_autofree char *f32 = hr_test_asset("models/stories260K/hf_f32");
    g_autofree char *f16 = hr_test_asset("models/stories260K/hf_f16");
    int32_t ref[512];
    int n = read_ids(ref_path, ref, 512);
    HR_CHECK(n == 256, "reference has %d ids", n);

    int m32 = greedy_agreement(f32, HR_KV_F32, ref, n);
    printf("hf_f32, FP32 KV: %d of %d greedy tokens match\n", m32, n);
    HR_CHECK(m32 == n, "FP32 greedy diverges at token %d", m32);

    int m16 = greedy_agreement(f16, HR_KV_F16, ref, n);
    printf("hf_f16, FP16 KV: %d of %d greedy tokens match\n", m16, n);
    HR_CHECK(m16 >= 100, "FP16 greedy diverges at token %d", m16);
    check_stop_strings(f32);
    check_nan_weights(f32);
    return hr_test_result();
}
