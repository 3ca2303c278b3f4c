/* hearth-cli generate — run a model on a prompt and print what it generates.
 *
 *   hearth-cli generate -m NAME|DIR [-p TEXT | --prompt-ids 1,2,3] [-n N]
 *       [--temp T] [--top-k K] [--top-p P] [--min-p P] [--repeat-penalty R]
 *       [--seed S] [--backend cpu|vulkan] [--ctx N] [--kv f16|f32] [--ids] [--ignore-eos]
 *       [--chat [--system TEXT]] [--stats]
 *
 * -p TEXT is tokenized with the model's tokenizer (special tokens added as
 * the tokenizer says); with --chat it becomes one user turn rendered by the
 * model's chat template with the generation prompt, and generation stops at
 * the end-of-turn token. Text streams to stdout as it is generated.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "chat.h"
#include "generate.h"
#include "hearth-cli.h"
#include "model.h"
#include "sampler.h"
#include "tokenizer.h"

static bool
print_text(const char *text, size_t len, int32_t token, void *user)
{
    fwrite(text, 1, len, stdout);
    fflush(stdout);
    return true;
}

static gboolean
parse_ids(const char *text, GArray *out, GError **error)
{
    g_auto(GStrv) parts = g_strsplit_set(text, ", ", -1);
    for (char **p = parts; *p; p++) {
        if (!**p)
            continue;
        char *end = NULL;
        errno = 0;
        long v = strtol(*p, &end, 10);
        if (errno || *end || v < 0 || v > G_MAXINT32) {
            g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, "'%s' is not a token id", *p);
            return FALSE;
        }
        int32_t id = (int32_t)v;
        g_array_append_val(out, id);
    }
    return TRUE;
}

int
hr_cli_generate(int argc, char **argv)
{
    char *model_dir = NULL, *prompt = NULL, *prompt_ids = NULL, *backend = NULL, *kv = NULL;
    int n_new = 128, ctx_len = 0;
    HrCliSampling samp = { .temp = 0.0, .top_p = 1.0, .min_p = 0.0, .rep = 1.0, .top_k = 0 };
    GOptionEntry samp_entries[6];
    gint64 seed = 0;
    gboolean print_ids = FALSE, ignore_eos = FALSE, chat = FALSE, show_stats = FALSE;
    char *system_prompt = NULL;
    HrTokenizer *tok = NULL;
    GOptionEntry entries[] = {
        { "model", 'm', 0, G_OPTION_ARG_FILENAME, &model_dir,
          "Model: a name from 'hearth-cli models list' or a directory (Hugging Face layout)", "NAME|DIR" },
        { "prompt", 'p', 0, G_OPTION_ARG_STRING, &prompt, "Prompt text", "TEXT" },
        { "prompt-ids", 0, 0, G_OPTION_ARG_STRING, &prompt_ids, "Prompt as token ids (default: BOS)", "1,2,3" },
        { "n-predict", 'n', 0, G_OPTION_ARG_INT, &n_new, "Tokens to generate (default 128)", "N" },
        { "seed", 0, 0, G_OPTION_ARG_INT64, &seed, "Random seed (sampling is reproducible)", "S" },
        { "backend", 0, 0, G_OPTION_ARG_STRING, &backend, "Backend: cpu (default) or vulkan", "NAME" },
        { "ctx", 0, 0, G_OPTION_ARG_INT, &ctx_len, "Context length (default: min(model, 4096))", "N" },
        { "kv", 0, 0, G_OPTION_ARG_STRING, &kv, "KV cache type: f16 (default) or f32 (reference)", "TYPE" },
        { "ids", 0, 0, G_OPTION_ARG_NONE, &print_ids, "Print generated token ids instead of text", NULL },
        { "ignore-eos", 0, 0, G_OPTION_ARG_NONE, &ignore_eos, "Do not stop at end-of-sequence tokens", NULL },
        { "chat", 0, 0, G_OPTION_ARG_NONE, &chat, "Wrap -p in the model's chat template as one user turn", NULL },
        { "system", 0, 0, G_OPTION_ARG_STRING, &system_prompt, "System prompt for --chat", "TEXT" },
        { "stats", 0, 0, G_OPTION_ARG_NONE, &show_stats, "Print timings to stderr", NULL },
        { NULL },
    };
    g_autoptr(GOptionContext) octx = g_option_context_new("— generate text with a model (greedy unless --temp)");
    g_option_context_add_main_entries(octx, entries, NULL);
    hr_cli_sampling_entries(&samp, samp_entries);
    g_option_context_add_main_entries(octx, samp_entries, NULL);
    g_autoptr(GError) error = NULL;
    g_autoptr(GArray) tokens = NULL;
    int rc = 2;
    if (!g_option_context_parse(octx, &argc, &argv, &error)) {
        fprintf(stderr, "hearth-cli generate: %s\n", error->message);
        goto out;
    }
    if (!model_dir) {
        fprintf(stderr, "hearth-cli generate: -m MODEL_DIR is required\n");
        goto out;
    }
    if (!hr_cli_sampling_check(&samp, "hearth-cli generate"))
        goto out;
    if (n_new < 0) {
        fprintf(stderr, "hearth-cli generate: -n must be 0 or more\n");
        goto out;
    }
    if (prompt && prompt_ids) {
        fprintf(stderr, "hearth-cli generate: give either -p or --prompt-ids, not both\n");
        goto out;
    }
    if (chat && !prompt) {
        fprintf(stderr, "hearth-cli generate: --chat needs -p TEXT\n");
        goto out;
    }
    if (kv && strcmp(kv, "f16") != 0 && strcmp(kv, "f32") != 0) {
        fprintf(stderr, "hearth-cli generate: --kv must be f16 or f32\n");
        goto out;
    }

    if (!hr_cli_resolve_model(&model_dir, &error)) {
        fprintf(stderr, "hearth-cli generate: %s\n", error->message);
        rc = 1;
        goto out;
    }

    HrModelOptions mopt;
    hr_model_options_init(&mopt);
    if (backend)
        mopt.backend = backend;
    mopt.context_len = ctx_len;
    if (kv && strcmp(kv, "f32") == 0)
        mopt.kv_type = HR_KV_F32;
    HrError err = { 0 };
    HrModel *model = NULL;
    if (hr_model_load(model_dir, &mopt, &model, &err) != HR_OK) {
        fprintf(stderr, "hearth-cli generate: %s\n", err.message);
        rc = 1;
        goto out;
    }
    if (hr_model_notice(model))
        fprintf(stderr, "hearth-cli generate: %s\n", hr_model_notice(model));
    const HrModelConfig *cfg = hr_model_config(model);
    /* The tokenizer is needed for text in (-p) or text out (no --ids). */
    if (prompt || !print_ids) {
        if (hr_tokenizer_load(model_dir, &tok, &err) != HR_OK) {
            fprintf(stderr, "hearth-cli generate: %s\n", err.message);
            hr_model_free(model);
            rc = 1;
            goto out;
        }
    }

    tokens = g_array_new(FALSE, FALSE, sizeof(int32_t));
    if (prompt) {
        int32_t *ids = NULL;
        size_t n_ids = 0;
        HrStatus pst;
        if (chat) {
            JsonNode *msgs = hr_chat_messages_new(system_prompt, prompt);
            HrError warn = { 0 };
            bool fell_back = false;
            pst = hr_chat_render(tok, msgs, true, NULL, &ids, &n_ids, &fell_back, &warn, &err);
            json_node_unref(msgs);
            if (fell_back)
                fprintf(stderr, "hearth-cli generate: warning: %s\n", warn.message);
        } else {
            pst = hr_tokenizer_encode(tok, prompt, strlen(prompt), true, true, &ids, &n_ids, &err);
        }
        if (pst != HR_OK) {
            fprintf(stderr, "hearth-cli generate: %s\n", err.message);
            hr_model_free(model);
            rc = 1;
            goto out;
        }
        g_array_append_vals(tokens, ids, (guint)n_ids);
        g_free(ids);
    } else if (prompt_ids) {
        if (!parse_ids(prompt_ids, tokens, &error)) {
            fprintf(stderr, "hearth-cli generate: --prompt-ids: %s\n", error->message);
            hr_model_free(model);
            goto out;
        }
    } else if (cfg->bos_id >= 0) {
        g_array_append_val(tokens, cfg->bos_id);
    }
    if (tokens->len == 0) {
        fprintf(stderr, "hearth-cli generate: empty prompt and the model has no BOS token\n");
        hr_model_free(model);
        goto out;
    }

    HrSamplerParams sp;
    hr_cli_sampling_params(&samp, (guint64)seed, &sp);
    HrSampler *sampler = hr_sampler_new(&sp, cfg->vocab_size);

    HrGenerateOptions gopt;
    hr_generate_options_init(&gopt);
    gopt.max_new_tokens = n_new;
    gopt.ignore_eos = ignore_eos;
    if (tok)
        hr_generate_add_tokenizer_eos(&gopt, model, tok);
    HrGenerateStats stats;
    HrStatus st = hr_generate(model, print_ids ? NULL : tok, sampler, (int32_t *)tokens->data, (int)tokens->len,
                              &gopt, print_text, NULL, &stats, &err);
    /* The reply ends its line, and reaches the terminal before the stats
     * or an error on stderr (stdout is buffered when piped). */
    printf("\n");
    fflush(stdout);
    if (st != HR_OK) {
        fprintf(stderr, "hearth-cli generate: %s\n", err.message);
        rc = 1;
    } else {
        rc = 0;
        if (show_stats)
            fprintf(stderr, "prompt %d tokens (%d run) in %.3f s, %d generated in %.3f s (%.2f tokens/s), "
                    "first token after %.3f s, stopped: %s\n",
                    stats.prompt_tokens, stats.prefilled_tokens, stats.prefill_s, stats.generated_tokens,
                    stats.decode_s, stats.decode_s > 0 ? stats.generated_tokens / stats.decode_s : 0.0,
                    stats.ttft_s, hr_stop_reason_name(stats.reason));
        if (stats.reason == HR_STOP_CONTEXT_FULL)
            fprintf(stderr, "hearth-cli generate: stopped: the context of %d tokens is full\n",
                    hr_model_context_len(model));
    }
    hr_sampler_free(sampler);
    hr_model_free(model);
out:
    hr_tokenizer_free(tok);
    g_free(system_prompt);
    g_free(model_dir);
    g_free(prompt);
    g_free(prompt_ids);
    g_free(backend);
    g_free(kv);
    return rc;
}
