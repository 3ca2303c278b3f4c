/* stories260K (a real trained Llama, ../shared/assets): 256 greedy tokens
 * from BOS reproduce the published reference ids exactly in FP32, and the
 * FP16 copy (with the FP16 KV cache) agrees for at least the first 100. */
#include <glib.h>

#include "hr-test.h"
#include "model.h"

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
    return hr_test_result();
}
