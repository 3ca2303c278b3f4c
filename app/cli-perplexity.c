/* hearth-cli perplexity — the AWQ/GPTQ papers' evaluation: tokenize the whole
 * file (with the tokenizer's special tokens, as they do), cut it into
 * non-overlapping windows of --ctx tokens, and report
 *   ppl = exp( sum_w mean_nll(w) * ctx / (n_windows * ctx) )
 * where mean_nll(w) averages over the ctx-1 predicted tokens of window w.
 * --method=llama computes what llama.cpp's llama-perplexity prints instead,
 * to compare with it on the same file: each window starts with the BOS
 * token when the tokenizer adds one (replacing the window's first token),
 * only its second half is scored (positions ctx/2 .. ctx-2 predicting the
 * next token), and ppl = exp(mean nll over all scored tokens). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <glib.h>

#include "hearth-cli.h"
#include "model.h"
#include "tokenizer.h"

int
hr_cli_perplexity(int argc, char **argv)
{
    char *model_dir = NULL, *file = NULL, *backend = NULL, *kv = NULL, *method = NULL;
    int ctx = 512, max_windows = 0;
    GOptionEntry entries[] = {
        { "model", 'm', 0, G_OPTION_ARG_FILENAME, &model_dir, "Model directory", "DIR" },
        { "file", 'f', 0, G_OPTION_ARG_FILENAME, &file, "Text file to evaluate", "FILE" },
        { "ctx", 0, 0, G_OPTION_ARG_INT, &ctx, "Window length in tokens (default 512)", "N" },
        { "max-windows", 0, 0, G_OPTION_ARG_INT, &max_windows, "Evaluate at most N windows (0 = all)", "N" },
        { "backend", 0, 0, G_OPTION_ARG_STRING, &backend, "Backend: cpu (default) or vulkan", "NAME" },
        { "kv", 0, 0, G_OPTION_ARG_STRING, &kv, "KV cache type: f16 (default) or f32 (reference)", "TYPE" },
        { "method", 0, 0, G_OPTION_ARG_STRING, &method,
          "awq (default: every token of a window, as the AWQ paper) or llama (as llama-perplexity)", "NAME" },
        { NULL },
    };
    g_autoptr(GOptionContext) octx = g_option_context_new("— perplexity of a model on a text file");
    g_option_context_add_main_entries(octx, entries, NULL);
    g_autoptr(GError) error = NULL;
    int rc = 2;
    HrTokenizer *tok = NULL;
    HrModel *model = NULL;
    g_autofree char *text = NULL;
    int32_t *ids = NULL;
    float *logits = NULL;
    HrError err = { 0 };
    size_t len = 0, n_ids = 0;

    if (!g_option_context_parse(octx, &argc, &argv, &error)) {
        fprintf(stderr, "hearth-cli perplexity: %s\n", error->message);
        goto out;
    }
    if (kv && strcmp(kv, "f16") != 0 && strcmp(kv, "f32") != 0) {
        fprintf(stderr, "hearth-cli perplexity: --kv must be f16 or f32\n");
        goto out;
    }
    const bool llama = method && strcmp(method, "llama") == 0;
    if (method && !llama && strcmp(method, "awq") != 0) {
        fprintf(stderr, "hearth-cli perplexity: --method must be awq or llama\n");
        goto out;
    }
    if (!model_dir || !file || ctx < 2) {
        fprintf(stderr, "hearth-cli perplexity: -m DIR and -f FILE are required, and --ctx must be at least 2\n");
        goto out;
    }
    rc = 1;
    if (!hr_cli_resolve_model(&model_dir, &error)) {
        fprintf(stderr, "hearth-cli perplexity: %s\n", error->message);
        goto out;
    }
    if (!g_file_get_contents(file, &text, &len, &error)) {
        fprintf(stderr, "hearth-cli perplexity: %s\n", error->message);
        goto out;
    }
    if (hr_tokenizer_load(model_dir, &tok, &err) != HR_OK ||
        hr_tokenizer_encode(tok, text, len, true, false, &ids, &n_ids, &err) != HR_OK) {
        fprintf(stderr, "hearth-cli perplexity: %s\n", err.message);
        goto out;
    }
    HrModelOptions mopt;
    hr_model_options_init(&mopt);
    if (backend)
        mopt.backend = backend;
    mopt.context_len = ctx;
    if (kv && strcmp(kv, "f32") == 0)
        mopt.kv_type = HR_KV_F32;
    if (hr_model_load(model_dir, &mopt, &model, &err) != HR_OK) {
        fprintf(stderr, "hearth-cli perplexity: %s\n", err.message);
        goto out;
    }
    if (hr_model_notice(model))
        fprintf(stderr, "hearth-cli perplexity: %s\n", hr_model_notice(model));
    const int vocab = hr_model_config(model)->vocab_size;
    int32_t bos = -1; /* the token the encoder puts first, if any (llama method) */
    if (llama) {
        int32_t *e = NULL;
        size_t ne = 0;
        if (hr_tokenizer_encode(tok, "", 0, true, false, &e, &ne, &err) == HR_OK && ne > 0)
            bos = e[0];
        g_free(e);
    }
    size_t n_windows = n_ids / (size_t)ctx;
    if (max_windows > 0 && (size_t)max_windows < n_windows)
        n_windows = (size_t)max_windows;
    if (n_windows == 0) {
        fprintf(stderr, "hearth-cli perplexity: the file has %zu tokens, fewer than one window of %d\n", n_ids, ctx);
        goto out;
    }
    fprintf(stderr, "%zu tokens, %zu windows of %d\n", n_ids, n_windows, ctx);
    logits = g_new(float, vocab);
    double total = 0.0, llama_nll = 0.0;
    size_t llama_count = 0;
    const int first = llama ? ctx / 2 : 0;
    for (size_t w = 0; w < n_windows; w++) {
        int32_t *win = ids + w * (size_t)ctx;
        if (llama && bos >= 0)
            win[0] = bos; /* as llama-perplexity; the window's own first token is not scored */
        if (hr_model_eval_all(model, win, ctx, &err) != HR_OK) {
            fprintf(stderr, "hearth-cli perplexity: window %zu: %s\n", w, err.message);
            goto out;
        }
        double nll = 0.0;
        for (int t = first; t + 1 < ctx; t++) {
            if (hr_model_logits_row(model, t, logits, &err) != HR_OK) {
                fprintf(stderr, "hearth-cli perplexity: window %zu: %s\n", w, err.message);
                goto out;
            }
            float max = logits[0];
            for (int v = 1; v < vocab; v++)
                max = fmaxf(max, logits[v]);
            double sum = 0.0;
            for (int v = 0; v < vocab; v++)
                sum += exp((double)(logits[v] - max));
            nll += -((double)(logits[win[t + 1]] - max) - log(sum));
        }
        if (llama) {
            llama_nll += nll;
            llama_count += (size_t)(ctx - 1 - first);
            fprintf(stderr, "[%zu/%zu] running ppl %.4f\n", w + 1, n_windows, exp(llama_nll / (double)llama_count));
            continue;
        }
        total += nll / (ctx - 1) * ctx;
        fprintf(stderr, "[%zu/%zu] running ppl %.4f\n", w + 1, n_windows, exp(total / ((double)(w + 1) * ctx)));
    }
    if (llama)
        printf("ppl = %.4f\n", exp(llama_nll / (double)llama_count));
    else
        printf("ppl = %.4f\n", exp(total / ((double)n_windows * ctx)));
    rc = 0;
out:
    g_free(logits);
    g_free(ids);
    hr_model_free(model);
    hr_tokenizer_free(tok);
    g_free(model_dir);
    g_free(file);
    g_free(backend);
    g_free(kv);
    g_free(method);
    return rc;
}
