/* fuzz-tokenizer.c — libFuzzer entry point for the tokenizer loader and pipeline.
 *
 * The input is a tokenizer.json, optionally followed by a NUL byte and a
 * tokenizer_config.json (strict JSON never holds a raw NUL, so the split is
 * unambiguous). It is loaded from memory (hr_tokenizer_load_from_data); a
 * failure must come with a non-empty message. A tokenizer that loads must
 * encode a few fixed short texts (with and without special handling) — an
 * encode may fail only with a message — decode the ids, and stream-decode
 * them to exactly the same text (for decoders where streaming promises that).
 *
 * Built two ways: by tools/fuzz-tokenizer with clang -fsanitize=fuzzer, and by
 * meson with fuzz-driver.c + fuzz-tokenizer-mutate.c (the `tokenizer-fuzz` test).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "fuzz-tokenizer.h"
#include "tokenizer-private.h"

int fuzz_tokenizer_last_ok;

static const struct {
    const char *s;
    size_t n;
} texts[] = {
#define T(x) { x, sizeof x - 1 }
    T("Hello, world! <s>ab  c </s>12 345\n\t\xc3\xa9t\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\xa6\x8a"),
    T(" a\0b  <|x|> \xff\xfe\xc3"),
    T(""),
    T("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
#undef T
};

static void
fail(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz-tokenizer: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    abort();
}

/* Whether streaming promises exactly the whole decode. Not with a Replace
 * decoder whose pattern is a regex or more than one character (a match can
 * span the boundary between two streamed windows), nor with Fuse before
 * ByteLevel or ByteFallback (those look at whole tokens, and Fuse makes the
 * token the whole window). Real decoders replace one character ("\u2581" ->
 * " ") and fuse last. */
static bool
stream_exact(const TokDecoder *d, bool *fused)
{
    if (!d)
        return true;
    if (d->type == DEC_REPLACE && (d->regex || (d->literal && g_utf8_strlen(d->literal, -1) > 1)))
        return false;
    if ((d->type == DEC_BYTELEVEL || d->type == DEC_BYTEFALLBACK) && *fused)
        return false;
    if (d->type == DEC_FUSE)
        *fused = true;
    for (guint i = 0; i < d->n_children; i++)
        if (!stream_exact(d->children[i], fused))
            return false;
    return true;
}

static void
check_tokenizer(HrTokenizer *t)
{
    bool fused = false;
    bool exact = stream_exact(t->decoder, &fused);
    int vocab = hr_tokenizer_vocab_size(t);
    if (vocab <= 0)
        fail("loaded with an empty vocabulary", NULL);
    for (size_t k = 0; k < G_N_ELEMENTS(texts); k++) {
        for (int mode = 0; mode < 3; mode++) {
            int32_t *ids = NULL;
            size_t n = 0;
            HrError err = { 0 };
            HrStatus st = hr_tokenizer_encode(t, texts[k].s, texts[k].n, mode != 1, mode != 2, &ids, &n, &err);
            if (st != HR_OK) {
                if (!err.message[0])
                    fail("encode failed without a message", NULL);
                if (ids || n)
                    fail("encode failed but returned ids", err.message);
                continue;
            }
            if (n && !ids)
                fail("encode returned a count without ids", NULL);
            for (size_t i = 0; i < n; i++) {
                /* Ids the model produced are in range; a post-processor's ids come
                 * from the file and need not be. */
                const char *s = hr_tokenizer_token_text(t, ids[i]);
                if (s && hr_tokenizer_token_id(t, s) < 0)
                    fail("a token's text has no id", s);
            }
            for (int skip = 0; skip < 2; skip++) {
                GString *full = g_string_new(NULL);
                hr_tokenizer_decode_append(t, ids, n, skip, full);
                HrDetokenizer *d = hr_detokenizer_new(t, skip);
                GString *streamed = g_string_new(NULL);
                for (size_t i = 0; i < n; i++)
                    hr_detokenizer_push(d, ids[i], streamed);
                hr_detokenizer_flush(d, streamed);
                hr_detokenizer_free(d);
                bool same = full->len == streamed->len && memcmp(full->str, streamed->str, full->len) == 0;
                /* (A decoder that grows past the limit decodes a window to U+FFFD,
                 * so the stream may differ then.) */
                if (!same && exact && !strstr(full->str, "\xef\xbf\xbd") && !strstr(streamed->str, "\xef\xbf\xbd"))
                    fail("streamed decode differs from decode", full->str);
                g_string_free(full, TRUE);
                g_string_free(streamed, TRUE);
            }
            g_free(ids);
        }
    }
    const char *bos = hr_tokenizer_bos_token(t), *tmpl = hr_tokenizer_chat_template(t);
    if (bos && hr_tokenizer_bos_id(t) >= vocab)
        fail("bos id out of range", bos);
    if (tmpl && !g_utf8_validate(tmpl, -1, NULL))
        fail("chat template is not UTF-8", NULL);
}

/* A tokenizer whose vocab and merges were read straight from the text
 * (tokenizer-json.c) against the same text through json-glib's tree: it
 * loads too, with the same ids, texts and encodes. */
static void
same_as_tree(const HrTokenizer *t, const char *json, size_t len, const char *cfg, size_t cfg_len)
{
    HrTokenizer *u = NULL;
    HrError err = { 0 };
    if (tok_load_tree(json, len, cfg, cfg_len, "fuzz", &u, &err) != HR_OK)
        fail("read straight from the text, but the tree refuses it", err.message);
    const int n = hr_tokenizer_vocab_size(t);
    if (n != hr_tokenizer_vocab_size(u))
        fail("the tree reads another vocabulary size", NULL);
    for (int id = 0; id < n; id++)
        if (g_strcmp0(hr_tokenizer_token_text(t, id), hr_tokenizer_token_text(u, id)) != 0)
            fail("the tree reads another token text", hr_tokenizer_token_text(t, id));
    for (size_t k = 0; k < G_N_ELEMENTS(texts); k++) {
        int32_t *a = NULL, *b = NULL;
        size_t na = 0, nb = 0;
        HrStatus sa = hr_tokenizer_encode(t, texts[k].s, texts[k].n, true, true, &a, &na, NULL);
        HrStatus sb = hr_tokenizer_encode(u, texts[k].s, texts[k].n, true, true, &b, &nb, NULL);
        if (sa != sb || na != nb || (na && memcmp(a, b, na * sizeof *a) != 0))
            fail("the tree encodes differently", NULL);
        g_free(a);
        g_free(b);
    }
    hr_tokenizer_free(u);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_tokenizer_last_ok = 0;
    const char *json = (const char *)data;
    size_t len = size;
    const char *cfg = NULL;
    size_t cfg_len = 0;
    const uint8_t *nul = size ? memchr(data, 0, size) : NULL;
    if (nul) {
        len = (size_t)(nul - data);
        cfg = (const char *)nul + 1;
        cfg_len = size - len - 1;
    }
    HrTokenizer *t = NULL;
    HrError err = { 0 };
    bool tables = false;
    HrStatus st = tok_load_json_tables(json, len, cfg, cfg_len, "fuzz", &t, &tables, &err);
    if (st != HR_OK) {
        if (t)
            fail("load failed but returned a tokenizer", err.message);
        if (!err.message[0])
            fail("load failed without a message", NULL);
        return 0;
    }
    if (!t)
        fail("load succeeded without a tokenizer", NULL);
    fuzz_tokenizer_last_ok = 1;
    check_tokenizer(t);
    if (tables)   /* read straight from the text: the tree reads the same tokenizer */
        same_as_tree(t, json, len, cfg, cfg_len);
    hr_tokenizer_free(t);
    return 0;
}
