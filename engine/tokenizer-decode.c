/* tokenizer-decode.c — decoders, decode, and streaming detokenization.
 *
 * A decoder maps a list of token strings to a list of strings (HF's
 * decode_chain); the result is their concatenation. The streaming
 * detokenizer decodes a short window of the latest ids "in continuation"
 * (as the tail of a longer sequence would decode) and emits it only once the
 * boundary after the window is clean, i.e. once nothing that comes later can
 * change it: no incomplete UTF-8 sequence (ByteLevel), no byte-fallback run
 * that may go on, no trailing Strip character that the end of the stream
 * would remove. That makes the streamed text identical to a full decode.
 */
#include "tokenizer-private.h"

#include <string.h>

#include "hr-json.h"

/* ---- parsing ------------------------------------------------------------------------ */

void
tok_decoder_free(TokDecoder *d)
{
    if (!d)
        return;
    for (guint i = 0; i < d->n_children; i++)
        tok_decoder_free(d->children[i]);
    g_free(d->children);
    if (d->regex)
        g_regex_unref(d->regex);
    g_free(d->literal);
    g_free(d->content);
    g_free(d->suffix);
    g_free(d);
}

HrStatus
tok_parse_decoder(JsonNode *node, int depth, guint *count, TokDecoder **out, HrError *err)
{
    *out = NULL;
    if (!node || JSON_NODE_HOLDS_NULL(node))
        return HR_OK;
    HrStatus st = tok_check_nesting("decoder", depth, count, err);
    if (st != HR_OK)
        return st;
    if (!JSON_NODE_HOLDS_OBJECT(node))
        return hr_error_set(err, HR_ERR_FORMAT, "decoder is not an object");
    JsonObject *o = json_node_get_object(node);
    const char *type = tok_json_type(o);
    if (!type)
        return hr_error_set(err, HR_ERR_FORMAT, "decoder without \"type\"");
    TokDecoder *d = g_new0(TokDecoder, 1);
    if (strcmp(type, "Sequence") == 0) {
        d->type = DEC_SEQUENCE;
        JsonNode *arr = json_object_get_member(o, "decoders");
        if (!arr || !JSON_NODE_HOLDS_ARRAY(arr)) {
            st = hr_error_set(err, HR_ERR_FORMAT, "Sequence decoder without \"decoders\"");
        } else {
            JsonArray *a = json_node_get_array(arr);
            d->n_children = json_array_get_length(a);
            d->children = g_new0(TokDecoder *, d->n_children);
            for (guint i = 0; i < d->n_children && st == HR_OK; i++) {
                st = tok_parse_decoder(json_array_get_element(a, i), depth + 1, count, &d->children[i], err);
                if (st == HR_OK && !d->children[i])
                    st = hr_error_set(err, HR_ERR_FORMAT, "Sequence decoder: element %u is null", i);
            }
        }
    } else if (strcmp(type, "ByteLevel") == 0) {
        d->type = DEC_BYTELEVEL;
    } else if (strcmp(type, "ByteFallback") == 0) {
        d->type = DEC_BYTEFALLBACK;
    } else if (strcmp(type, "Fuse") == 0) {
        d->type = DEC_FUSE;
    } else if (strcmp(type, "Strip") == 0) {
        d->type = DEC_STRIP;
        const char *c = tok_json_str(o, "content");
        gint64 start = hr_json_int_or(o, "start", -1), stop = hr_json_int_or(o, "stop", -1);
        if (!c || g_utf8_strlen(c, -1) != 1 || start < 0 || stop < 0) {
            st = hr_error_set(err, HR_ERR_FORMAT, "Strip decoder needs one-character \"content\", \"start\", \"stop\"");
        } else {
            d->strip_char = g_utf8_get_char(c);
            d->strip_start = (guint)MIN(start, 1 << 20);
            d->strip_stop = (guint)MIN(stop, 1 << 20);
        }
    } else if (strcmp(type, "Replace") == 0) {
        d->type = DEC_REPLACE;
        const char *c = tok_json_str(o, "content");
        JsonNode *pn = json_object_get_member(o, "pattern");
        JsonObject *po = pn && JSON_NODE_HOLDS_OBJECT(pn) ? json_node_get_object(pn) : NULL;
        const char *s = po ? tok_json_str(po, "String") : NULL;
        const char *r = po ? tok_json_str(po, "Regex") : NULL;
        if (!c || (!s && !r)) {
            st = hr_error_set(err, HR_ERR_FORMAT, "Replace decoder needs \"pattern\" and \"content\"");
        } else {
            d->content = g_strdup(c);
            if (s) {
                d->literal = g_strdup(s);
            } else {
                g_autoptr(GError) gerr = NULL;
                d->regex = tok_regex_new(r, false, &gerr);
                if (!d->regex)
                    st = hr_error_set(err, HR_ERR_UNSUPPORTED, "Replace decoder: regex /%s/: %s", r,
                                      gerr->message);
            }
        }
    } else if (strcmp(type, "Metaspace") == 0) {
        d->type = DEC_METASPACE;
        st = tok_parse_metaspace(o, d->replacement, &d->replacement_char, &d->prepend_scheme, err);
    } else if (strcmp(type, "BPEDecoder") == 0) {
        d->type = DEC_BPE;
        const char *s = NULL;
        st = tok_json_get_str(o, "suffix", &s, "BPEDecoder", err);
        d->suffix = g_strdup(s ? s : "</w>");
    } else {
        st = hr_error_set(err, HR_ERR_UNSUPPORTED, "decoder type \"%s\" is not supported", type);
    }
    if (st != HR_OK) {
        tok_decoder_free(d);
        return st;
    }
    *out = d;
    return HR_OK;
}

/* ---- decoding -------------------------------------------------------------------------- */

typedef struct {
    bool had_token;   /* tokens came before this window */
    bool had_text;    /* text was emitted before this window */
    bool final;       /* nothing comes after this window */
    bool merged;      /* a stage joined the window with what came before */
    bool unclean;     /* out: the boundary after the window may still change */
    bool needs_text;  /* out: a Strip at the very start ran; clean only once text exists */
    size_t limit;     /* the most bytes a stage may produce (only Replace grows text) */
    bool over;        /* out: a stage would have passed limit */
} DecState;

static void
list_clear(GPtrArray *l)
{
    g_ptr_array_set_size(l, 0);
}

/* ByteFallback's test: exactly "<0xHH>"; Rust's u8::from_str_radix also takes "+H". */
static int
byte_token(const GString *s)
{
    if (s->len != 6 || memcmp(s->str, "<0x", 3) != 0 || s->str[5] != '>')
        return -1;
    int lo = g_ascii_xdigit_value(s->str[4]);
    if (lo < 0)
        return -1;
    if (s->str[3] == '+')
        return lo;
    int hi = g_ascii_xdigit_value(s->str[3]);
    return hi < 0 ? -1 : hi * 16 + lo;
}

static void decode_chain(const TokDecoder *d, GPtrArray *toks, DecState *st);

static void
dec_bytelevel(GPtrArray *toks, DecState *st)
{
    GString *bytes = g_string_new(NULL);
    for (guint i = 0; i < toks->len; i++) {
        GString *t = g_ptr_array_index(toks, i);
        gsize start = bytes->len;
        bool ok = true;
        for (const char *p = t->str; p < t->str + t->len; p = g_utf8_next_char(p)) {
            int b = tok_char_to_byte(g_utf8_get_char(p));
            if (b < 0) {
                ok = false;
                break;
            }
            g_string_append_c(bytes, (char)b);
        }
        if (!ok) {
            g_string_truncate(bytes, start);
            g_string_append_len(bytes, t->str, (gssize)t->len);
        }
    }
    if (!st->final && tok_utf8_incomplete_tail(bytes->str, bytes->len))
        st->unclean = true;
    GString *out = g_string_sized_new(bytes->len + 8);
    tok_append_lossy(out, bytes->str, bytes->len);
    g_string_free(bytes, TRUE);
    for (guint i = 0; i < toks->len; i++)
        g_string_free(g_ptr_array_index(toks, i), TRUE);
    list_clear(toks);
    g_ptr_array_add(toks, out);
    st->merged = true;
}

static void
flush_bytes(GPtrArray *out, GString *run)
{
    if (run->len == 0)
        return;
    if (tok_utf8_valid(run->str, run->len)) {
        g_ptr_array_add(out, g_string_new_len(run->str, (gssize)run->len));
    } else {
        for (gsize i = 0; i < run->len; i++)
            g_ptr_array_add(out, g_string_new("\xef\xbf\xbd"));
    }
    g_string_truncate(run, 0);
}

static void
dec_bytefallback(GPtrArray *toks, DecState *st)
{
    GPtrArray *out = g_ptr_array_new();
    GString *run = g_string_new(NULL);
    bool last_byte = false;
    for (guint i = 0; i < toks->len; i++) {
        GString *t = g_ptr_array_index(toks, i);
        int b = byte_token(t);
        if (b >= 0) {
            g_string_append_c(run, (char)b);
            g_string_free(t, TRUE);
            last_byte = true;
        } else {
            flush_bytes(out, run);
            g_ptr_array_add(out, t);
            last_byte = false;
        }
    }
    flush_bytes(out, run);
    g_string_free(run, TRUE);
    if (last_byte && !st->final)
        st->unclean = true;
    list_clear(toks);
    for (guint i = 0; i < out->len; i++)
        g_ptr_array_add(toks, g_ptr_array_index(out, i));
    g_ptr_array_free(out, TRUE);
}

static void
dec_fuse(GPtrArray *toks, DecState *st)
{
    GString *all = g_string_new(NULL);
    for (guint i = 0; i < toks->len; i++) {
        GString *t = g_ptr_array_index(toks, i);
        g_string_append_len(all, t->str, (gssize)t->len);
        g_string_free(t, TRUE);
    }
    list_clear(toks);
    g_ptr_array_add(toks, all);
    st->merged = true;
}

static void
dec_strip(const TokDecoder *d, GPtrArray *toks, DecState *st)
{
    for (guint i = 0; i < toks->len; i++) {
        GString *t = g_ptr_array_index(toks, i);
        /* With a merged list, element 0 continues text from before the window
         * and the last element goes on after it. */
        bool continues = i == 0 && st->merged && st->had_token;
        bool goes_on = i + 1 == toks->len && st->merged && !st->final;
        const char *a = t->str, *b = t->str + t->len;
        if (!continues || !st->had_text) {
            if (d->strip_start && i == 0 && st->merged && !st->had_token)
                st->needs_text = true;
            for (guint k = 0; k < d->strip_start && a < b; k++) {
                if (g_utf8_get_char(a) != d->strip_char)
                    break;
                a = g_utf8_next_char(a);
            }
        }
        if (!goes_on) {
            for (guint k = 0; k < d->strip_stop && b > a; k++) {
                const char *q = g_utf8_prev_char(b);
                if (g_utf8_get_char(q) != d->strip_char)
                    break;
                b = q;
            }
        } else if (d->strip_stop && b > a && g_utf8_get_char(g_utf8_prev_char(b)) == d->strip_char) {
            st->unclean = true;
        }
        GString *n = g_string_new_len(a, (gssize)(b - a));
        g_string_free(t, TRUE);
        g_ptr_array_index(toks, i) = n;
    }
}

/* Whether `extra` more bytes fit: total (the other elements) + have (this
 * one so far) + extra <= st->limit; sets st->over when not. */
static bool
dec_room(DecState *st, size_t total, size_t have, size_t extra)
{
    if (st->over)
        return false;
    if (extra > st->limit || total + have > st->limit - extra) {
        st->over = true;
        return false;
    }
    return true;
}

static void
dec_replace(const TokDecoder *d, GPtrArray *toks, DecState *st)
{
    /* Every element's result counts against st->limit together; the
     * elements not yet replaced count with their current size. */
    size_t total = 0, cl = strlen(d->content);
    for (guint i = 0; i < toks->len; i++)
        total += ((GString *)g_ptr_array_index(toks, i))->len;
    for (guint i = 0; i < toks->len && !st->over; i++) {
        GString *t = g_ptr_array_index(toks, i);
        GString *n = g_string_sized_new(t->len + 4);
        total -= t->len;
#define ROOM(extra) dec_room(st, total, n->len, (extra))
        if (d->regex) {
            GMatchInfo *mi = NULL;
            gsize prev = 0;
            if (t->len)
                g_regex_match_full(d->regex, t->str, (gssize)t->len, 0, 0, &mi, NULL);
            while (mi && g_match_info_matches(mi)) {
                int s, e;
                g_match_info_fetch_pos(mi, 0, &s, &e);
                if (!ROOM((gsize)s - prev + cl))
                    break;
                g_string_append_len(n, t->str + prev, (gssize)((gsize)s - prev));
                g_string_append_len(n, d->content, (gssize)cl);
                prev = (gsize)e;
                if (!g_match_info_next(mi, NULL))
                    break;
            }
            if (mi)
                g_match_info_free(mi);
            if (ROOM(t->len - prev))
                g_string_append_len(n, t->str + prev, (gssize)(t->len - prev));
        } else {
            size_t ln = strlen(d->literal);
            gsize k = 0;
            while (ln && k < t->len) {
                const char *hit = ln <= t->len - k ? memmem(t->str + k, t->len - k, d->literal, ln) : NULL;
                if (!hit || !ROOM((gsize)(hit - (t->str + k)) + cl))
                    break;
                g_string_append_len(n, t->str + k, (gssize)(hit - (t->str + k)));
                g_string_append_len(n, d->content, (gssize)cl);
                k = (gsize)(hit - t->str) + ln;
            }
            if (ROOM(t->len - k))
                g_string_append_len(n, t->str + k, (gssize)(t->len - k));
        }
#undef ROOM
        total += n->len;
        g_string_free(t, TRUE);
        g_ptr_array_index(toks, i) = n;
    }
}

static void
dec_metaspace(const TokDecoder *d, GPtrArray *toks, DecState *st)
{
    for (guint i = 0; i < toks->len; i++) {
        GString *t = g_ptr_array_index(toks, i);
        /* HF drops every replacement char of element 0 (not just the first). */
        bool first = i == 0 && (st->merged || !st->had_token) && d->prepend_scheme != PREPEND_NEVER;
        GString *n = g_string_sized_new(t->len);
        for (const char *p = t->str; p < t->str + t->len; p = g_utf8_next_char(p)) {
            gunichar c = g_utf8_get_char(p);
            if (c == d->replacement_char) {
                if (!first)
                    g_string_append_c(n, ' ');
            } else {
                g_string_append_len(n, p, g_utf8_next_char(p) - p);
            }
        }
        g_string_free(t, TRUE);
        g_ptr_array_index(toks, i) = n;
    }
}

static void
dec_bpe(const TokDecoder *d, GPtrArray *toks, DecState *st)
{
    size_t ln = strlen(d->suffix);
    for (guint i = 0; i < toks->len; i++) {
        GString *t = g_ptr_array_index(toks, i);
        bool last = i + 1 == toks->len && st->final;
        if (!ln)
            continue;
        GString *n = g_string_sized_new(t->len);
        gsize k = 0;
        bool any = false;
        while (k < t->len) {
            const char *hit = ln <= t->len - k ? memmem(t->str + k, t->len - k, d->suffix, ln) : NULL;
            if (!hit)
                break;
            any = true;
            g_string_append_len(n, t->str + k, (gssize)(hit - (t->str + k)));
            g_string_append(n, last ? "" : " ");
            k = (gsize)(hit - t->str) + ln;
        }
        g_string_append_len(n, t->str + k, (gssize)(t->len - k));
        /* The last element's suffix depends on whether more follows. */
        if (any && i + 1 == toks->len && !st->final)
            st->unclean = true;
        g_string_free(t, TRUE);
        g_ptr_array_index(toks, i) = n;
    }
}

static void
decode_chain(const TokDecoder *d, GPtrArray *toks, DecState *st)
{
    if (st->over)
        return;
    switch (d->type) {
    case DEC_SEQUENCE:
        for (guint i = 0; i < d->n_children; i++)
            decode_chain(d->children[i], toks, st);
        return;
    case DEC_BYTELEVEL:
        dec_bytelevel(toks, st);
        return;
    case DEC_BYTEFALLBACK:
        dec_bytefallback(toks, st);
        return;
    case DEC_FUSE:
        dec_fuse(toks, st);
        return;
    case DEC_STRIP:
        dec_strip(d, toks, st);
        return;
    case DEC_REPLACE:
        dec_replace(d, toks, st);
        return;
    case DEC_METASPACE:
        dec_metaspace(d, toks, st);
        return;
    case DEC_BPE:
        dec_bpe(d, toks, st);
        return;
    }
}

static bool
id_kept(const HrTokenizer *t, int32_t id, bool skip_special)
{
    return id >= 0 && id < t->n_ids && t->dec_str[id] && !(skip_special && t->skip_in_decode[id]);
}

/* Decode ids that are already filtered (every one kept). */
static void
decode_window(const HrTokenizer *t, const int32_t *ids, size_t n, DecState *st, GString *out)
{
    if (!t->decoder) {
        for (size_t i = 0; i < n; i++) {
            if (i > 0 || st->had_token)
                g_string_append_c(out, ' ');
            g_string_append_len(out, t->dec_str[ids[i]], t->dec_len[ids[i]]);
        }
        return;
    }
    GPtrArray *toks = g_ptr_array_sized_new((guint)n);
    size_t in_bytes = 0;
    for (size_t i = 0; i < n; i++) {
        g_ptr_array_add(toks, g_string_new_len(t->dec_str[ids[i]], t->dec_len[ids[i]]));
        in_bytes += t->dec_len[ids[i]];
    }
    st->limit = tok_growth_limit(in_bytes);
    st->over = false;
    decode_chain(t->decoder, toks, st);
    /* A decoder (a hostile Replace) that would grow the text past the limit:
     * the window decodes to one U+FFFD instead of gigabytes. */
    if (st->over)
        g_string_append(out, "\xef\xbf\xbd");
    for (guint i = 0; i < toks->len; i++) {
        GString *s = g_ptr_array_index(toks, i);
        if (!st->over)
            g_string_append_len(out, s->str, (gssize)s->len);
        g_string_free(s, TRUE);
    }
    g_ptr_array_free(toks, TRUE);
}

void
hr_tokenizer_decode_append(const HrTokenizer *t, const int32_t *ids, size_t n, bool skip_special,
                           GString *out)
{
    if (!t || !out)
        return;
    int32_t *kept = g_new(int32_t, n ? n : 1);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (id_kept(t, ids[i], skip_special))
            kept[k++] = ids[i];
    DecState st = { .final = true };
    decode_window(t, kept, k, &st, out);
    g_free(kept);
}

char *
hr_tokenizer_decode(const HrTokenizer *t, const int32_t *ids, size_t n, bool skip_special)
{
    GString *out = g_string_new(NULL);
    hr_tokenizer_decode_append(t, ids, n, skip_special, out);
    return g_string_free(out, FALSE);
}

/* ---- streaming ------------------------------------------------------------------------ */

struct HrDetokenizer {
    const HrTokenizer *t;
    bool skip_special;
    GArray *window;     /* int32_t, kept ids since the last clean boundary */
    bool had_token, had_text;
    GString *scratch;
};

HrDetokenizer *
hr_detokenizer_new(const HrTokenizer *t, bool skip_special)
{
    if (!t)
        return NULL;
    HrDetokenizer *d = g_new0(HrDetokenizer, 1);
    d->t = t;
    d->skip_special = skip_special;
    d->window = g_array_new(FALSE, FALSE, sizeof(int32_t));
    d->scratch = g_string_new(NULL);
    return d;
}

void
hr_detokenizer_reset(HrDetokenizer *d)
{
    if (!d)
        return;
    g_array_set_size(d->window, 0);
    d->had_token = d->had_text = false;
}

static void
emit(HrDetokenizer *d, bool final, GString *out)
{
    if (d->window->len == 0)
        return;
    DecState st = { .had_token = d->had_token, .had_text = d->had_text, .final = final };
    g_string_truncate(d->scratch, 0);
    decode_window(d->t, (const int32_t *)d->window->data, d->window->len, &st, d->scratch);
    if (!final && (st.unclean || (st.needs_text && !d->had_text && d->scratch->len == 0)))
        return;  /* wait for more ids */
    if (out)
        g_string_append_len(out, d->scratch->str, (gssize)d->scratch->len);
    d->had_text = d->had_text || d->scratch->len > 0;
    d->had_token = true;
    g_array_set_size(d->window, 0);
}

void
hr_detokenizer_push(HrDetokenizer *d, int32_t id, GString *out)
{
    if (!d || !id_kept(d->t, id, d->skip_special))
        return;
    g_array_append_val(d->window, id);
    emit(d, false, out);
}

void
hr_detokenizer_flush(HrDetokenizer *d, GString *out)
{
    if (!d)
        return;
    emit(d, true, out);
}

void
hr_detokenizer_free(HrDetokenizer *d)
{
    if (!d)
        return;
    g_array_free(d->window, TRUE);
    g_string_free(d->scratch, TRUE);
    g_free(d);
}
