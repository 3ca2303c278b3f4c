#include "generate.h"

#include <string.h>

#include <glib.h>

void
hr_generate_options_init(HrGenerateOptions *opt)
{
    memset(opt, 0, sizeof *opt);
    opt->max_new_tokens = 256;
}

void
hr_think_tracker_init(HrThinkTracker *t, bool opened)
{
    memset(t, 0, sizeof *t);
    t->state = opened ? HR_THINK_THINKING : HR_THINK_UNDECIDED;
}

HrThinkState
hr_think_tracker_feed(HrThinkTracker *t, const char *text, size_t len)
{
    static const char open[] = "<think>", close[] = "</think>";
    for (size_t i = 0; i < len && t->state != HR_THINK_ANSWERING; i++) {
        const char c = text[i];
        if (t->state == HR_THINK_UNDECIDED) {
            if (t->n == 0 && g_ascii_isspace(c))
                continue;
            t->buf[t->n++] = c;
            if (t->n == sizeof open - 1 && memcmp(t->buf, open, t->n) == 0) {
                t->state = HR_THINK_THINKING;
                t->n = 0;
            } else if (memcmp(t->buf, open, t->n) != 0) {
                t->state = HR_THINK_ANSWERING;
            }
        } else {   /* thinking: the last sizeof close - 1 characters, for an end split across pieces */
            if (t->n == sizeof close - 1) {
                memmove(t->buf, t->buf + 1, t->n - 1);
                t->n--;
            }
            t->buf[t->n++] = c;
            if (t->n == sizeof close - 1 && memcmp(t->buf, close, t->n) == 0)
                t->state = HR_THINK_ANSWERING;
        }
    }
    return t->state;
}

/* Whether the prompt ends inside an opened thinking block ("<think>", however the tokenizer cut it). */
static bool
prompt_opens_thinking(const HrTokenizer *tok, const int32_t *ids, int n_ids)
{
    const int k = n_ids < 16 ? n_ids : 16;
    if (!tok || k <= 0)
        return false;
    g_autofree char *tail = hr_tokenizer_decode(tok, ids + n_ids - k, (size_t)k, false);
    return tail && g_str_has_suffix(g_strchomp(tail), "<think>");
}

static bool
is_stop_id(const HrGenerateOptions *opt, const HrModelConfig *cfg, int32_t t)
{
    if (hr_model_config_is_eos(cfg, t))
        return true;
    for (int i = 0; i < opt->n_stop_ids; i++)
        if (opt->stop_ids[i] == t)
            return true;
    return false;
}

void
hr_generate_add_tokenizer_eos(HrGenerateOptions *opt, const HrModel *m, const HrTokenizer *tok)
{
    const char *eos = tok ? hr_tokenizer_eos_token(tok) : NULL;
    if (!eos)
        return;
    int32_t id = hr_tokenizer_token_id(tok, eos);
    if (id < 0 || is_stop_id(opt, hr_model_config(m), id) || opt->n_stop_ids >= HR_MAX_STOP_IDS)
        return;
    opt->stop_ids[opt->n_stop_ids++] = id;
}

static bool
cancelled(const HrGenerateOptions *opt)
{
    return opt->cancel && atomic_load(opt->cancel);
}

/* Text held back because it may be the start of a stop string. */
typedef struct {
    GString *pending;
    const char *const *stops;
    HrTextFunc fn;
    void *user;
    bool stopped_by_callback;
} Emitter;

/* Longest suffix of s (length n) that is a proper prefix of some stop string. */
static size_t
held_suffix(const char *s, size_t n, const char *const *stops)
{
    size_t best = 0;
    for (const char *const *st = stops; st && *st; st++) {
        size_t sl = strlen(*st);
        if (sl == 0)
            continue; /* an empty stop string never matches (and sl - 1 would wrap) */
        for (size_t k = MIN(sl - 1, n); k > best; k--) {
            if (memcmp(s + n - k, *st, k) == 0) {
                best = k;
                break;
            }
        }
    }
    return best;
}

static void
emit(Emitter *e, const char *text, size_t len, int32_t token)
{
    if (len && e->fn && !e->stopped_by_callback && !e->fn(text, len, token, e->user))
        e->stopped_by_callback = true;
}

/* Returns true when a stop string was found (text up to it is emitted). */
static bool
push_text(Emitter *e, const char *text, size_t len, int32_t token)
{
    g_string_append_len(e->pending, text, (gssize)len);
    size_t cut = e->pending->len;
    bool found = false;
    for (const char *const *st = e->stops; st && *st; st++) {
        if (!**st)
            continue;
        const char *hit = strstr(e->pending->str, *st);
        if (hit && (size_t)(hit - e->pending->str) < cut) {
            cut = (size_t)(hit - e->pending->str);
            found = true;
        }
    }
    if (found) {
        emit(e, e->pending->str, cut, token);
        g_string_truncate(e->pending, 0);
        return true;
    }
    size_t hold = held_suffix(e->pending->str, e->pending->len, e->stops);
    /* Never hold back part of a UTF-8 character boundary issue: the held
     * text is a prefix of a valid stop string, so it ends on a boundary
     * whenever the stop string starts on one. */
    size_t out = e->pending->len - hold;
    emit(e, e->pending->str, out, token);
    g_string_erase(e->pending, 0, (gssize)out);
    return false;
}

HrStatus
hr_generate(HrModel *m, const HrTokenizer *tok, HrSampler *s, const int32_t *prompt, int n_prompt,
            const HrGenerateOptions *opt, HrTextFunc on_text, void *user, HrGenerateStats *stats, HrError *err)
{
    const HrModelConfig *cfg = hr_model_config(m);
    HrGenerateStats local;
    if (!stats)
        stats = &local;
    memset(stats, 0, sizeof *stats);
    stats->prompt_tokens = n_prompt;
    if (n_prompt < 1)
        return hr_error_set(err, HR_ERR_INVALID_ARG, "the prompt is empty");
    if (n_prompt >= hr_model_context_len(m))
        return hr_error_set(err, HR_ERR_INVALID_ARG, "the prompt has %d tokens; the context holds %d",
                            n_prompt, hr_model_context_len(m));

    gint64 t0 = g_get_monotonic_time();
    /* Prefill in chunks so cancel is honoured during long prompts. */
    int chunk = opt->prefill_chunk > 0 ? opt->prefill_chunk : 256;
    /* hr_model_eval reuses the cached common prefix itself; start the
     * chunks there and grow the evaluated prefix step by step. */
    int reused = MIN(hr_model_common_prefix(m, prompt, n_prompt), n_prompt - 1);
    int done = reused;
    HrStatus st = HR_OK;
    while (done < n_prompt) {
        if (cancelled(opt)) {
            stats->reason = HR_STOP_CANCELLED;
            stats->prefill_s = (double)(g_get_monotonic_time() - t0) / 1e6;
            return HR_OK;
        }
        int next = MIN(n_prompt, done + chunk);
        if ((st = hr_model_eval(m, prompt, next, err)) != HR_OK)
            return st;
        done = next;
    }
    for (int i = 0; i < n_prompt; i++)
        hr_sampler_accept(s, prompt[i]);
    gint64 t1 = g_get_monotonic_time();
    stats->prefill_s = (double)(t1 - t0) / 1e6;
    stats->prefilled_tokens = n_prompt - reused;

    Emitter e = { g_string_new(NULL), opt->stop_strings, on_text, user, false };
    HrDetokenizer *detok = tok ? hr_detokenizer_new(tok, true) : NULL;
    GString *piece = g_string_new(NULL);
    hr_model_attach_sampler(m, s);
    stats->reason = HR_STOP_LENGTH;
    /* the tokens that count against max_new_tokens: all of them, or (think_free) the answer's */
    HrThinkTracker think;
    const bool think_free = opt->think_free && detok;
    const bool think_open = think_free && prompt_opens_thinking(tok, prompt, n_prompt);
    hr_think_tracker_init(&think, think_open);
    if (think_open)
        emit(&e, "<think>\n", strlen("<think>\n"), -1);
    int counted = 0;
    for (int i = 0; counted < opt->max_new_tokens; i++) {
        if (cancelled(opt)) {
            stats->reason = HR_STOP_CANCELLED;
            break;
        }
        int32_t next;
        if ((st = hr_model_sample(m, s, &next, err)) != HR_OK)
            break;
        if (i == 0)
            stats->ttft_s = (double)(g_get_monotonic_time() - t0) / 1e6;
        if (!opt->ignore_eos && is_stop_id(opt, cfg, next)) {
            stats->reason = HR_STOP_EOS;
            break;
        }
        stats->generated_tokens++;
        hr_sampler_accept(s, next);
        bool stop_string = false;
        if (detok) {
            g_string_truncate(piece, 0);
            hr_detokenizer_push(detok, next, piece);
            const HrThinkState ts = hr_think_tracker_feed(&think, piece->str, piece->len);
            counted += !think_free || ts == HR_THINK_ANSWERING;
            stop_string = push_text(&e, piece->str, piece->len, next);
        } else if (on_text) {
            char ids[16];
            int len = g_snprintf(ids, sizeof ids, "%s%d", i ? " " : "", next);
            emit(&e, ids, (size_t)len, next);
            counted++;
        } else {
            counted++;
        }
        if (stop_string) {
            stats->reason = HR_STOP_STRING;
            break;
        }
        if (e.stopped_by_callback) {
            stats->reason = HR_STOP_CALLBACK;
            break;
        }
        if (hr_model_n_cached(m) >= hr_model_context_len(m)) {
            stats->reason = HR_STOP_CONTEXT_FULL;
            break;
        }
        if ((st = hr_model_append(m, &next, 1, err)) != HR_OK)
            break;
    }
    if (detok && stats->reason != HR_STOP_STRING) {
        g_string_truncate(piece, 0);
        hr_detokenizer_flush(detok, piece);
        g_string_append_len(e.pending, piece->str, (gssize)piece->len);
        emit(&e, e.pending->str, e.pending->len, -1);
    }
    stats->decode_s = (double)(g_get_monotonic_time() - t1) / 1e6;
    hr_model_attach_sampler(m, NULL);
    g_string_free(piece, TRUE);
    g_string_free(e.pending, TRUE);
    hr_detokenizer_free(detok);
    return st;
}

const char *
hr_stop_reason_name(HrStopReason r)
{
    switch (r) {
    case HR_STOP_EOS: return "eos";
    case HR_STOP_LENGTH: return "length";
    case HR_STOP_STRING: return "stop string";
    case HR_STOP_CANCELLED: return "cancelled";
    case HR_STOP_CONTEXT_FULL: return "context full";
    case HR_STOP_CALLBACK: return "stopped";
    }
    return "unknown";
}
