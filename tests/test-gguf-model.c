/* test-gguf-model.c — SmolLM2-135M-Instruct run straight from its GGUF
 * (Q4_1 linears, Q8_0 embedding tied to the lm_head) against the FP16
 * folder tests/reference/get-smollm2 makes from the same file.
 *
 * Both hold the same numbers: the folder's weights are the GGUF's values
 * dequantized in FP32 (d * q + m) and rounded to FP16, with llama.cpp's q/k
 * row permutation undone; here the engine keeps the blocks (4-bit groups
 * with an FP16 scale and offset, int8 blocks of 32) and undoes the
 * permutation itself. So with FP32 activations everywhere
 * (HEARTH_CPU_EXACT=1) the two forwards differ only by the FP16 rounding
 * of the folder's weights and by summation order:
 *  - the config and the tokenizer agree (ids of a chat rendering);
 *  - logits of every position of a prompt agree within LOGIT_TOL relative
 *    to the row's largest |logit|;
 *  - greedy decoding of GREEDY_N tokens gives the same ids.
 * A wrong permutation, nibble order, scale or offset moves logits by O(1).
 * SKIPs without the GGUF ($HEARTH_SMOLLM2_GGUF, or the cache beside the
 * converted folder) or the folder. */
#include <math.h>
#include <string.h>

#include <glib.h>

#include "hr-smollm2.h"
#include "hr-test.h"
#include "model.h"
#include "tokenizer.h"

#define LOGIT_TOL 5e-3
#define GREEDY_N 64

static char *
gguf_path(void)
{
    const char *env = getenv("HEARTH_SMOLLM2_GGUF");
    if (env && *env)
        return g_strdup(env);
    g_autofree char *dir = hr_smollm2_dir();
    g_autofree char *parent = g_path_get_dirname(dir);
    return g_build_filename(parent, "SmolLM2-135M-Instruct.Q4_1.gguf", NULL);
}

static HrModel *
load(const char *path)
{
    HrModelOptions opt;
    hr_model_options_init(&opt);
    opt.context_len = 256;
    opt.kv_type = HR_KV_F32;
    HrModel *m = NULL;
    HrError err = { 0 };
    HR_CHECK(hr_model_load(path, &opt, &m, &err) == HR_OK, "%s: %s", path, err.message);
    return m;
}

int
main(void)
{
    g_setenv("HEARTH_CPU_EXACT", "1", TRUE);
    g_autofree char *gguf = gguf_path();
    if (!g_file_test(gguf, G_FILE_TEST_IS_REGULAR))
        hr_test_skip("%s not found: tests/reference/get-smollm2 leaves it there (--force if the folder was made before; "
                     "or set HEARTH_SMOLLM2_GGUF)", gguf);
    g_autofree char *dir = hr_smollm2_require();

    HrModel *a = load(gguf), *b = load(dir);
    const HrModelConfig *ca = hr_model_config(a), *cb = hr_model_config(b);
    HR_CHECK(ca->dim == cb->dim && ca->n_layers == cb->n_layers && ca->n_heads == cb->n_heads &&
             ca->n_kv_heads == cb->n_kv_heads && ca->hidden_dim == cb->hidden_dim &&
             ca->vocab_size == cb->vocab_size && ca->tie_embeddings == cb->tie_embeddings &&
             ca->rope_theta == cb->rope_theta && ca->norm_eps == cb->norm_eps,
             "the GGUF's config differs from the folder's");

    HrTokenizer *ta = NULL, *tb = NULL;
    HrError err = { 0 };
    HR_CHECK(hr_tokenizer_load(gguf, &ta, &err) == HR_OK, "tokenizer from the GGUF: %s", err.message);
    HR_CHECK(hr_tokenizer_load(dir, &tb, &err) == HR_OK, "tokenizer from the folder: %s", err.message);
    const char *prompt = "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
                         "Face<|im_end|>\n<|im_start|>user\nWhat is the capital of France? Answer in one "
                         "sentence.<|im_end|>\n<|im_start|>assistant\n";
    int32_t *ia = NULL, *ib = NULL;
    size_t na = 0, nb = 0;
    HR_CHECK(hr_tokenizer_encode(ta, prompt, strlen(prompt), true, true, &ia, &na, &err) == HR_OK, "%s",
             err.message);
    HR_CHECK(hr_tokenizer_encode(tb, prompt, strlen(prompt), true, true, &ib, &nb, &err) == HR_OK, "%s",
             err.message);
    HR_CHECK(na == nb && memcmp(ia, ib, na * sizeof *ia) == 0, "the prompt tokenizes differently (%zu vs %zu ids)",
             na, nb);

    /* every position's logits */
    const int V = ca->vocab_size, n = (int)na;
    float *la = g_new(float, V), *lb = g_new(float, V);
    HR_CHECK(hr_model_eval_all(a, ia, n, &err) == HR_OK, "%s", err.message);
    HR_CHECK(hr_model_eval_all(b, ia, n, &err) == HR_OK, "%s", err.message);
    double worst = 0.0;
    for (int t = 0; t < n; t++) {
        hr_model_logits_row(a, t, la, &err);
        hr_model_logits_row(b, t, lb, &err);
        double mag = 0.0, d = 0.0;
        for (int v = 0; v < V; v++) {
            mag = fmax(mag, fabs(lb[v]));
            d = hr_worse(d, fabs((double)la[v] - lb[v]));
        }
        worst = hr_worse(worst, d / mag);
    }
    printf("logits: worst |GGUF - FP16 folder| / max|logit| over %d positions = %.3g\n", n, worst);
    HR_CHECK(worst < LOGIT_TOL, "logits differ by %.3g of the largest (limit %g)", worst, LOGIT_TOL);

    /* greedy decoding through the KV cache */
    int32_t *seq = g_new(int32_t, n + GREEDY_N);
    memcpy(seq, ia, n * sizeof *seq);
    int len = n, same = 0;
    for (int i = 0; i < GREEDY_N; i++) {
        HR_CHECK(hr_model_eval(a, seq, len, &err) == HR_OK, "%s", err.message);
        HR_CHECK(hr_model_eval(b, seq, len, &err) == HR_OK, "%s", err.message);
        hr_model_logits(a, la, &err);
        hr_model_logits(b, lb, &err);
        int ba = 0, bb = 0;
        for (int v = 1; v < V; v++) {
            if (la[v] > la[ba])
                ba = v;
            if (lb[v] > lb[bb])
                bb = v;
        }
        HR_CHECK(ba == bb, "greedy token %d: %d from the GGUF, %d from the folder", i, ba, bb);
        same++;
        seq[len++] = ba;
    }
    printf("greedy: %d of %d tokens equal\n", same, GREEDY_N);

    g_free(seq);
    g_free(la);
    g_free(lb);
    g_free(ia);
    g_free(ib);
    hr_tokenizer_free(ta);
    hr_tokenizer_free(tb);
    hr_model_free(a);
    hr_model_free(b);
    return hr_test_result();
}
