/* hearth-cli chat — talk with a model in the terminal.
 *
 *   hearth-cli chat -m NAME|DIR [--system TEXT] [-n MAX] [--temp T] [--top-k K]
 *       [--top-p P] [--min-p P] [--repeat-penalty R] [--seed S]
 *       [--backend NAME] [--ctx N] [--kv f16|f32] [--stats] [--no-think]
 *
 * A reasoning model's thinking (<think>…</think>) is printed as it comes and does not count against -n; with
 * --no-think the template is asked for an answer without it (enable_thinking = false: Qwen3).
 * Each line read from stdin is a user turn; the whole conversation (system
 * prompt and turns) is rendered with the model's chat template and the reply
 * streams to stdout as it is generated, followed by a newline. The KV cache
 * keeps the conversation's common prefix between turns (hr_generate reuses
 * it), so a turn runs only its new tokens. When the conversation no longer
 * leaves room for a reply, the oldest turns are dropped (never the system
 * prompt). Lines "/reset" (forget the turns), "/exit" and "/help" are
 * commands; EOF quits, with status 0 (1 when a message could not be
 * answered: too long for the context, an engine error; a reply during which the graphics card stopped
 * working is one, and the model is then loaded again, on the CPU if need be, and the chat goes on).
 * Ctrl-C stops the reply being written,
 * not the program (at the prompt of a terminal it is ignored; elsewhere it
 * quits as usual). The "> " prompt and the greeting are shown only when
 * stdin is a terminal, so piped output is just the replies.
 */
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <glib.h>

#include "chat.h"
#include "generate.h"
#include "hearth-cli.h"
#include "model.h"
#include "sampler.h"
#include "tokenizer.h"

#define PFX "hearth-cli chat: "

static atomic_int cancel_flag;
static volatile sig_atomic_t generating;
static volatile sig_atomic_t interactive;

static void
on_sigint(int sig)
{
    if (generating) {
        atomic_store(&cancel_flag, 1);
        return;
    }
    if (interactive)
        return; /* the read is interrupted; the prompt is shown again */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    sigaction(sig, &sa, NULL);
    raise(sig);
}

typedef struct {
    char *role;
    char *content;
} Turn;

static void
turn_free(gpointer p)
{
    Turn *t = p;
    g_free(t->role);
    g_free(t->content);
    g_free(t);
}

static void
add_turn(GPtrArray *conv, const char *role, const char *content)
{
    Turn *t = g_new(Turn, 1);
    t->role = g_strdup(role);
    t->content = g_strdup(content);
    g_ptr_array_add(conv, t);
}

static JsonNode *
conv_to_json(const char *system, GPtrArray *conv)
{
    JsonArray *arr = json_array_new();
    for (guint i = 0; i < conv->len + (system ? 1 : 0); i++) {
        const char *role = "system", *content = system;
        if (!system || i > 0) {
            const Turn *t = conv->pdata[system ? i - 1 : i];
            role = t->role;
            content = t->content;
        }
        JsonObject *o = json_object_new();
        json_object_set_string_member(o, "role", role);
        json_object_set_string_member(o, "content", content);
        json_array_add_object_element(arr, o);
    }
    JsonNode *node = json_node_new(JSON_NODE_ARRAY);
    json_node_take_array(node, arr);
    return node;
}

/* Render the conversation with the generation prompt, dropping the oldest
 * turns (a user turn and the reply after it) until `reserve` tokens are left
 * for the reply. The last user turn is never dropped: when it alone does not
 * fit, that is an error. *dropped: turns removed from conv. */
static HrStatus
build_prompt(const HrTokenizer *tok, int ctx, int reserve, const char *system, GPtrArray *conv, JsonObject *extra,
             int32_t **ids, size_t *n_ids, int *dropped, bool *warned, HrError *err)
{
    *dropped = 0;
    for (;;) {
        JsonNode *msgs = conv_to_json(system, conv);
        HrError warn = { 0 };
        bool fell_back = false;
        HrStatus st = hr_chat_render_extra(tok, msgs, true, extra, &cancel_flag, NULL, ids, n_ids, &fell_back,
                                           &warn, err);
        json_node_unref(msgs);
        if (st != HR_OK)
            return st;
        if (fell_back && !*warned) {
            fprintf(stderr, PFX "warning: %s\n", warn.message);
            *warned = true;
        }
        if ((int64_t)*n_ids + reserve <= ctx)
            return HR_OK;
        if (conv->len <= 1) {
            if ((int64_t)*n_ids < ctx)
                return HR_OK; /* fits, with less room for the reply */
            g_free(*ids);
            *ids = NULL;
            return hr_error_set(err, HR_ERR_INVALID_ARG, "the message is too long for this model's context of %d tokens",
                                ctx);
        }
        g_free(*ids);
        *ids = NULL;
        /* the oldest turn, and the reply after it unless that is the last turn */
        guint n = conv->len >= 3 ? 2 : 1;
        g_ptr_array_remove_range(conv, 0, n);
        *dropped += (int)n;
    }
}

typedef struct {
    GString *reply;
} ReplyCtx;

static bool
on_text(const char *text, size_t len, int32_t token, void *user)
{
    ReplyCtx *r = user;
    fwrite(text, 1, len, stdout);
    fflush(stdout);
    g_string_append_len(r->reply, text, (gssize)len);
    return true;
}

/* Threads started by the load (the CPU pool, drivers) inherit a blocked SIGINT, so Ctrl-C reaches this
 * thread and interrupts its read. */
static HrStatus
load_model(const char *dir, const HrModelOptions *opt, HrModel **model, HrError *err)
{
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    HrStatus st = hr_model_load(dir, opt, model, err);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return st;
}

static void
print_help(void)
{
    fprintf(stderr, "Type a message and press Enter. Commands: /reset forgets the conversation (keeps the system "
                    "prompt), /exit or Ctrl-D quits, Ctrl-C stops a reply.\n");
}

int
hr_cli_chat(int argc, char **argv)
{
    char *model_dir = NULL, *backend = NULL, *kv = NULL, *system_prompt = NULL;
    int n_new = 512, ctx_len = 0;
    HrCliSampling samp = { .temp = 0.7, .top_p = 0.95, .min_p = 0.0, .rep = 1.0, .top_k = 0 };
    GOptionEntry samp_entries[6];
    gint64 seed = 0;
    gboolean show_stats = FALSE, no_think = FALSE;
    g_autoptr(JsonObject) extra = NULL;   /* (before any goto out) */
    GOptionEntry entries[] = {
        { "model", 'm', 0, G_OPTION_ARG_FILENAME, &model_dir,
          "Model: a name from 'hearth-cli models list' or a directory", "NAME|DIR" },
        { "system", 0, 0, G_OPTION_ARG_STRING, &system_prompt, "System prompt", "TEXT" },
        { "n-predict", 'n', 0, G_OPTION_ARG_INT, &n_new, "Most tokens per reply (default 512)", "N" },
        { "seed", 0, 0, G_OPTION_ARG_INT64, &seed, "Random seed (default 0: a new one each run)", "S" },
        { "backend", 0, 0, G_OPTION_ARG_STRING, &backend, "Backend: cpu (default), vulkan or cuda", "NAME" },
        { "ctx", 0, 0, G_OPTION_ARG_INT, &ctx_len, "Context length (default: min(model, 4096))", "N" },
        { "kv", 0, 0, G_OPTION_ARG_STRING, &kv, "KV cache type: f16 (default) or f32", "TYPE" },
        { "stats", 0, 0, G_OPTION_ARG_NONE, &show_stats, "Print timings to stderr after each reply", NULL },
        { "no-think", 0, 0, G_OPTION_ARG_NONE, &no_think,
          "A model that can answer without thinking first (Qwen3) does so", NULL },
        { NULL },
    };
    g_autoptr(GOptionContext) octx = g_option_context_new("— chat with a model (one line per message)");
    g_option_context_add_main_entries(octx, entries, NULL);
    hr_cli_sampling_entries(&samp, samp_entries);
    g_option_context_add_main_entries(octx, samp_entries, NULL);
    g_option_context_set_description(octx, "Samples as the app does (--temp 0.7 --top-p 0.95) unless told "
                                           "otherwise. Lines /reset, /exit and /help are commands; Ctrl-D (EOF) "
                                           "quits, Ctrl-C stops a reply.");
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) conv = g_ptr_array_new_with_free_func(turn_free);
    HrModel *model = NULL;
    HrTokenizer *tok = NULL;
    char *line = NULL;
    size_t line_cap = 0;
    int rc = 2;
    if (!g_option_context_parse(octx, &argc, &argv, &error)) {
        fprintf(stderr, PFX "%s\n", error->message);
        goto out;
    }
    if (argc > 1) {
        fprintf(stderr, PFX "unexpected argument '%s' (messages are read from stdin)\n", argv[1]);
        goto out;
    }
    if (!model_dir) {
        fprintf(stderr, PFX "-m NAME|DIR is required ('hearth-cli models list' shows the names)\n");
        goto out;
    }
    if (!hr_cli_sampling_check(&samp, "hearth-cli chat"))
        goto out;
    if (n_new < 1) {
        fprintf(stderr, PFX "-n must be 1 or more\n");
        goto out;
    }
    if (kv && strcmp(kv, "f16") != 0 && strcmp(kv, "f32") != 0) {
        fprintf(stderr, PFX "--kv must be f16 or f32\n");
        goto out;
    }
    if (system_prompt && !g_utf8_validate(system_prompt, -1, NULL)) {
        fprintf(stderr, PFX "--system is not valid UTF-8\n");
        goto out;
    }
    rc = 1;
    if (!hr_cli_resolve_model(&model_dir, &error)) {
        fprintf(stderr, PFX "%s\n", error->message);
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
    HrStatus lst = load_model(model_dir, &mopt, &model, &err);
    if (lst != HR_OK) {
        fprintf(stderr, PFX "%s\n", err.message);
        goto out;
    }
    if (hr_model_notice(model))
        fprintf(stderr, PFX "%s\n", hr_model_notice(model));
    if (hr_tokenizer_load(model_dir, &tok, &err) != HR_OK) {
        fprintf(stderr, PFX "%s\n", err.message);
        goto out;
    }
    const HrModelConfig *cfg = hr_model_config(model);   /* (again after a reload) */
    int ctx = hr_model_context_len(model);
    int reserve = MIN(n_new, ctx / 4);

    HrSamplerParams sp;
    hr_cli_sampling_params(&samp, seed ? (guint64)seed : (guint64)g_get_real_time(), &sp);

    HrGenerateOptions gopt;
    hr_generate_options_init(&gopt);
    gopt.max_new_tokens = n_new;
    gopt.cancel = &cancel_flag;
    gopt.think_free = true;   /* -n is the answer's; the context bounds the thinking */
    if (no_think) {
        extra = json_object_new();
        json_object_set_boolean_member(extra, "enable_thinking", FALSE);
    }
    hr_generate_add_tokenizer_eos(&gopt, model, tok);

    interactive = isatty(STDIN_FILENO);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: Ctrl-C at the prompt interrupts the read */
    sigaction(SIGINT, &sa, NULL);

    if (interactive) {
        g_autofree char *base = g_path_get_basename(model_dir);
        fprintf(stderr, "Chatting with %s (context %d tokens). ", base, ctx);
        print_help();
    }
    bool warned = false, failed = false;
    int turn_no = 0;
    for (;;) {
        if (interactive) {
            fputs("> ", stdout);
            fflush(stdout);
        }
        errno = 0;
        ssize_t n = getline(&line, &line_cap, stdin);
        if (n < 0) {
            if (errno == EINTR && interactive) {
                clearerr(stdin);
                fputs("\n", stdout);
                fprintf(stderr, "(Ctrl-D or /exit quits)\n");
                continue;
            }
            if (ferror(stdin)) {
                fprintf(stderr, PFX "reading stdin: %s\n", g_strerror(errno));
                failed = true;
            } else if (interactive) {
                fputs("\n", stdout);
            }
            break;
        }
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = '\0';
        g_strstrip(line);
        if (!*line)
            continue;
        if (strcmp(line, "/exit") == 0 || strcmp(line, "/quit") == 0)
            break;
        if (strcmp(line, "/reset") == 0) {
            g_ptr_array_set_size(conv, 0);
            if (interactive)
                fprintf(stderr, "(conversation cleared)\n");
            continue;
        }
        if (strcmp(line, "/help") == 0) {
            print_help();
            continue;
        }
        if (line[0] == '/' && !strchr(line, ' ')) {
            fprintf(stderr, PFX "unknown command '%s' (commands: /reset, /exit, /help)\n", line);
            continue;
        }
        if (!g_utf8_validate(line, -1, NULL)) {
            fprintf(stderr, PFX "the message is not valid UTF-8; it was not sent\n");
            failed = true;
            continue;
        }
        add_turn(conv, "user", line);

        atomic_store(&cancel_flag, 0);
        generating = 1;
        int32_t *ids = NULL;
        size_t n_ids = 0;
        int dropped = 0;
        HrStatus st = build_prompt(tok, ctx, reserve, system_prompt, conv, extra, &ids, &n_ids, &dropped, &warned,
                                   &err);
        if (st != HR_OK) {
            generating = 0;
            if (st != HR_ERR_CANCELLED) {
                fprintf(stderr, PFX "%s; it was not sent\n", err.message);
                failed = true;
            }
            g_ptr_array_remove_index(conv, conv->len - 1);
            continue;
        }
        if (dropped > 0)
            fprintf(stderr, PFX "the context is full: the %d oldest messages were dropped\n", dropped);

        turn_no++;
        HrSampler *sampler = hr_sampler_new(&sp, cfg->vocab_size);
        sp.seed++; /* each reply its own draw, the run still reproducible with --seed */
        ReplyCtx rctx = { g_string_new(NULL) };
        HrGenerateStats stats;
        st = hr_generate(model, tok, sampler, ids, (int)n_ids, &gopt, on_text, &rctx, &stats, &err);
        generating = 0;
        hr_sampler_free(sampler);
        g_free(ids);
        if (rctx.reply->len == 0 || rctx.reply->str[rctx.reply->len - 1] != '\n')
            fputs("\n", stdout);
        fflush(stdout);
        if (st != HR_OK) {
            fprintf(stderr, PFX "%s\n", err.message);
            g_string_free(rctx.reply, TRUE);
            g_ptr_array_remove_index(conv, conv->len - 1);
            failed = true;
            /* The device stopped working (lost, a driver reset): the same model again on a new device,
             * else on the CPU, as the app does; the conversation goes on. */
            if (st == HR_ERR_DEVICE && hr_model_backend(model) != &hr_cpu_backend) {
                fprintf(stderr, PFX "the graphics card stopped working: loading the model again\n");
                g_clear_pointer(&model, hr_model_free);
                hr_error_clear(&err);
                mopt.cpu_fallback = true;
                if (load_model(model_dir, &mopt, &model, &err) != HR_OK) {
                    fprintf(stderr, PFX "%s\n", err.message);
                    break;
                }
                if (hr_model_notice(model))
                    fprintf(stderr, PFX "%s\n", hr_model_notice(model));
                fprintf(stderr, PFX "the model runs on %s now\n", hr_model_backend(model)->name);
                cfg = hr_model_config(model);
            }
            continue;
        }
        /* A stopped reply stays as far as it went (it is what was shown);
         * one stopped before its first word takes its question with it. */
        if (stats.reason == HR_STOP_CANCELLED && rctx.reply->len == 0)
            g_ptr_array_remove_index(conv, conv->len - 1);
        else
            add_turn(conv, "assistant", rctx.reply->str);
        g_string_free(rctx.reply, TRUE);
        if (stats.reason == HR_STOP_CANCELLED)
            fprintf(stderr, "(stopped)\n");
        if (stats.reason == HR_STOP_CONTEXT_FULL)
            fprintf(stderr, PFX "the reply stopped: the context of %d tokens is full\n", ctx);
        if (show_stats)
            fprintf(stderr, "turn %d: prompt %d tokens (%d run) in %.3f s, %d generated in %.3f s (%.2f tokens/s), "
                            "first token after %.3f s, stopped: %s\n",
                    turn_no, stats.prompt_tokens, stats.prefilled_tokens, stats.prefill_s, stats.generated_tokens,
                    stats.decode_s, stats.decode_s > 0 ? stats.generated_tokens / stats.decode_s : 0.0, stats.ttft_s,
                    hr_stop_reason_name(stats.reason));
    }
    rc = failed ? 1 : 0;
out:
    free(line);
    hr_tokenizer_free(tok);
    hr_model_free(model);
    g_free(system_prompt);
    g_free(model_dir);
    g_free(backend);
    g_free(kv);
    return rc;
}
