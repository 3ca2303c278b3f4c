/* test-tokenizer — tokenizer unit tests that need no assets.
 *
 *  1. Six small synthetic BPE tokenizers (tests/fixtures/tokenizer/synthetic.json,
 *     made by tests/reference/make_tokenizer_fixtures.py with HF `tokenizers`)
 *     cover the pipeline pieces the real files do not use: GPT-2 ByteLevel with
 *     add_prefix_space and legacy "a b" merges, Roberta/Bert post-processors,
 *     Metaspace first/always/never with and without split, NFKC/NFD/Lowercase/
 *     StripAccents/Strip/Replace/Prepend normalizers, Split behaviours and
 *     invert, Digits, Punctuation, CharDelimiterSplit, WhitespaceSplit,
 *     Whitespace, byte fallback, unk fusing, continuing-subword prefix and
 *     end-of-word suffix, ignore_merges, lstrip/rstrip/single_word/normalized
 *     added tokens, BPEDecoder, Strip/Replace-regex decoders, no decoder.
 *     Ids and decodes must be identical; streaming must equal decode.
 *  2. Streaming detokenization on random ids: always exactly decode(all),
 *     never invalid UTF-8.
 *  3. Malformed tokenizer.json: clear errors, never a crash (including every
 *     truncation of a small file and random byte mutations).
 *  4. Hostile files (issue 24), generated in code: Sequence nested 30,000
 *     deep and past the 16-level limit, 100k-deep JSON, duplicate keys, wrong
 *     JSON types for keys, Replace/ByteLevel/decoder chains that grow text
 *     exponentially, 100k added tokens sharing a first byte and one 200 KB
 *     added token (linear matching), a FIFO as tokenizer.json /
 *     tokenizer_config.json / chat_template.jinja, chat_template.jinja loading.
 *  5. NUL bytes, invalid UTF-8 input, concurrent encodes.
 */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <glib.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

#include "hearth-config.h"
#include "hr-test.h"
#include "tokenizer.h"

static int reports;
#define MAX_REPORTS 8

static void
print_escaped(const char *label, const char *s, size_t n)
{
    GString *o = g_string_new(NULL);
    for (size_t i = 0; i < n && o->len < 300; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\n')
            g_string_append(o, "\\n");
        else if (c < 0x20 || c == 0x7f)
            g_string_append_printf(o, "\\x%02x", c);
        else
            g_string_append_c(o, (char)c);
    }
    fprintf(stderr, "    %s \"%s\"\n", label, o->str);
    g_string_free(o, TRUE);
}

static bool
same_bytes(const GString *a, const GString *b)
{
    return a->len == b->len && memcmp(a->str, b->str, a->len) == 0;
}

static GArray *
int_array(JsonObject *o, const char *name)
{
    GArray *a = g_array_new(FALSE, FALSE, sizeof(int32_t));
    JsonArray *ja = json_object_get_array_member(o, name);
    for (guint i = 0; ja && i < json_array_get_length(ja); i++) {
        int32_t v = (int32_t)json_array_get_int_element(ja, i);
        g_array_append_val(a, v);
    }
    return a;
}

static bool
same_ids(const char *name, const char *what, const GString *text, GArray *want, const int32_t *got, size_t n)
{
    if (want->len == n && (n == 0 || memcmp(want->data, got, n * sizeof(int32_t)) == 0))
        return true;
    hr_test_failures++;
    if (reports++ < MAX_REPORTS) {
        size_t i = 0;
        while (i < n && i < want->len && g_array_index(want, int32_t, i) == got[i])
            i++;
        fprintf(stderr, "%s: %s differs at id %zu (want %u ids, got %zu)\n", name, what, i, want->len, n);
        print_escaped("text", text->str, text->len);
        GString *w = g_string_new(NULL), *g = g_string_new(NULL);
        for (size_t k = i > 3 ? i - 3 : 0; k < i + 5; k++) {
            if (k < want->len)
                g_string_append_printf(w, "%d ", g_array_index(want, int32_t, k));
            if (k < n)
                g_string_append_printf(g, "%d ", got[k]);
        }
        fprintf(stderr, "    want ... %s\n    got  ... %s\n", w->str, g->str);
        g_string_free(w, TRUE);
        g_string_free(g, TRUE);
    }
    return false;
}

static bool
same_text(const char *name, const char *what, const GString *ctx, const GString *want, const GString *got)
{
    if (same_bytes(want, got))
        return true;
    hr_test_failures++;
    if (reports++ < MAX_REPORTS) {
        fprintf(stderr, "%s: %s differs\n", name, what);
        print_escaped("case", ctx->str, ctx->len);
        print_escaped("want", want->str, want->len);
        print_escaped("got ", got->str, got->len);
    }
    return false;
}

/* Stream ids one at a time; returns the concatenation, or NULL if a chunk
 * was not valid UTF-8. */
static GString *
stream(const HrTokenizer *t, const int32_t *ids, size_t n, bool skip)
{
    g_autoptr(HrDetokenizer) d = hr_detokenizer_new(t, skip);
    GString *all = g_string_new(NULL);
    g_autoptr(GString) chunk = g_string_new(NULL);
    for (size_t i = 0; i <= n; i++) {
        g_string_truncate(chunk, 0);
        if (i < n)
            hr_detokenizer_push(d, ids[i], chunk);
        else
            hr_detokenizer_flush(d, chunk);
        if (!hr_test_utf8_valid(chunk->str, chunk->len)) {
            g_string_free(all, TRUE);
            return NULL;
        }
        g_string_append_len(all, chunk->str, (gssize)chunk->len);
    }
    return all;
}

static GString *
decode(const HrTokenizer *t, const int32_t *ids, size_t n, bool skip)
{
    GString *s = g_string_new(NULL);
    hr_tokenizer_decode_append(t, ids, n, skip, s);
    return s;
}

static bool
check_decode(const HrTokenizer *t, const char *name, const GString *ctx, GArray *ids, bool skip,
             JsonObject *c, const char *member)
{
    g_autoptr(GString) got = decode(t, (const int32_t *)ids->data, ids->len, skip);
    g_autoptr(GString) streamed = stream(t, (const int32_t *)ids->data, ids->len, skip);
    bool ok = true;
    if (!streamed) {
        HR_CHECK(false, "%s: stream emitted invalid UTF-8 (%s)", name, ctx->str);
        ok = false;
    } else {
        ok = same_text(name, skip ? "stream(skip)" : "stream", ctx, got, streamed);
    }
    g_autoptr(GString) want = hr_test_json_bytes(c, member);
    if (want)  /* null: HF itself panics on this one */
        ok = same_text(name, skip ? "decode(skip)" : "decode", ctx, want, got) && ok;
    return ok;
}

static HrTokenizer *
load_json_node(JsonNode *node, const char *what)
{
    g_autoptr(JsonGenerator) g = json_generator_new();
    json_generator_set_root(g, node);
    gsize len = 0;
    g_autofree char *data = json_generator_to_data(g, &len);
    HrTokenizer *t = NULL;
    HrError err = { 0 };
    if (hr_tokenizer_load_from_data(data, len, NULL, 0, what, &t, &err) != HR_OK) {
        HR_CHECK(false, "%s: load failed: %s", what, err.message);
        return NULL;
    }
    return t;
}

static JsonParser *synthetic_parser;

static JsonArray *
synthetic_tokenizers(void)
{
    if (!synthetic_parser) {
        g_autofree char *path = g_build_filename(HEARTH_SOURCE_ROOT, "tests", "fixtures", "tokenizer",
                                                 "synthetic.json", NULL);
        synthetic_parser = json_parser_new();
        g_autoptr(GError) gerr = NULL;
        if (!json_parser_load_from_mapped_file(synthetic_parser, path, &gerr)) {
            fprintf(stderr, "%s: %s\n", path, gerr->message);
            exit(1);
        }
    }
    return json_object_get_array_member(json_node_get_object(json_parser_get_root(synthetic_parser)),
                                        "tokenizers");
}

static void
test_synthetic(void)
{
    JsonArray *toks = synthetic_tokenizers();
    for (guint k = 0; k < json_array_get_length(toks); k++) {
        JsonObject *spec = json_array_get_object_element(toks, k);
        const char *name = json_object_get_string_member(spec, "name");
        g_autoptr(HrTokenizer) t = load_json_node(json_object_get_member(spec, "tokenizer"), name);
        if (!t)
            continue;
        reports = 0;
        JsonArray *cases = json_object_get_array_member(spec, "cases");
        guint n = json_array_get_length(cases), n_ok = 0;
        for (guint i = 0; i < n; i++) {
            JsonObject *c = json_array_get_object_element(cases, i);
            g_autoptr(GString) text = hr_test_json_bytes(c, "text");
            bool ok = true;
            static const struct { const char *member; bool add, parse; } enc[] = {
                { "ids", true, true }, { "ids_nospecial", false, true }, { "ids_plain", false, false },
            };
            g_autoptr(GArray) ids = int_array(c, "ids");
            for (size_t e = 0; e < G_N_ELEMENTS(enc); e++) {
                g_autoptr(GArray) want = int_array(c, enc[e].member);
                int32_t *got = NULL;
                size_t ng = 0;
                HrError err = { 0 };
                if (hr_tokenizer_encode(t, text->str, text->len, enc[e].add, enc[e].parse, &got, &ng, &err) != HR_OK) {
                    HR_CHECK(false, "%s: encode: %s", name, err.message);
                    ok = false;
                    continue;
                }
                ok = same_ids(name, enc[e].member, text, want, got, ng) && ok;
                g_free(got);
            }
            ok = check_decode(t, name, text, ids, false, c, "decode") && ok;
            ok = check_decode(t, name, text, ids, true, c, "decode_skip") && ok;
            n_ok += ok;
        }
        JsonArray *dcases = json_object_get_array_member(spec, "decode_cases");
        guint nd = json_array_get_length(dcases), nd_ok = 0;
        for (guint i = 0; i < nd; i++) {
            JsonObject *c = json_array_get_object_element(dcases, i);
            g_autoptr(GArray) ids = int_array(c, "ids");
            g_autoptr(GString) ctx = g_string_new(NULL);
            g_string_printf(ctx, "decode case %u", i);
            bool ok = check_decode(t, name, ctx, ids, false, c, "decode");
            ok = check_decode(t, name, ctx, ids, true, c, "decode_skip") && ok;
            nd_ok += ok;
        }
        printf("synthetic %s: %u/%u texts, %u/%u decode cases identical to HF\n", name, n_ok, n, nd_ok, nd);
    }
}

/* Random ids (biased to byte tokens, specials and multi-byte pieces): the
 * stream must always equal the full decode. */
static void
test_stream_random(void)
{
    JsonArray *toks = synthetic_tokenizers();
    GRand *rng = g_rand_new_with_seed(1234);
    for (guint k = 0; k < json_array_get_length(toks); k++) {
        JsonObject *spec = json_array_get_object_element(toks, k);
        const char *name = json_object_get_string_member(spec, "name");
        g_autoptr(HrTokenizer) t = load_json_node(json_object_get_member(spec, "tokenizer"), name);
        if (!t)
            continue;
        int vs = hr_tokenizer_vocab_size(t);
        GArray *bytes = g_array_new(FALSE, FALSE, sizeof(int32_t));
        for (int32_t id = 0; id < vs; id++) {
            const char *s = hr_tokenizer_token_text(t, id);
            if (s && (g_str_has_prefix(s, "<0x") || (unsigned char)s[0] >= 0xc3))
                g_array_append_val(bytes, id);
        }
        guint bad = 0;
        for (int iter = 0; iter < 400; iter++) {
            int n = g_rand_int_range(rng, 0, 30);
            int32_t ids[32];
            for (int i = 0; i < n; i++) {
                int r = g_rand_int_range(rng, 0, 10);
                if (r < 5 && bytes->len)
                    ids[i] = g_array_index(bytes, int32_t, g_rand_int_range(rng, 0, (gint32)bytes->len));
                else if (r < 6)
                    ids[i] = g_rand_int_range(rng, 0, 4);
                else if (r < 7)
                    ids[i] = vs + g_rand_int_range(rng, -3, 3);  /* around the end, some invalid */
                else
                    ids[i] = g_rand_int_range(rng, 0, vs);
            }
            for (int skip = 0; skip < 2; skip++) {
                g_autoptr(GString) full = decode(t, ids, (size_t)n, skip);
                g_autoptr(GString) st = stream(t, ids, (size_t)n, skip);
                if (!st || !same_bytes(st, full)) {
                    if (bad++ < 3) {
                        fprintf(stderr, "%s: random stream %d (skip %d) differs\n", name, iter, skip);
                        print_escaped("decode", full->str, full->len);
                        if (st)
                            print_escaped("stream", st->str, st->len);
                        else
                            fprintf(stderr, "    stream emitted invalid UTF-8\n");
                    }
                }
            }
        }
        HR_CHECK(bad == 0, "%s: %u random streams differ from decode", name, bad);
        g_array_free(bytes, TRUE);
    }
    g_rand_free(rng);
}

/* ---- malformed input ---------------------------------------------------------------- */

static const char TINY[] =
    "{\"version\":\"1.0\",\"added_tokens\":[{\"id\":0,\"content\":\"<s>\",\"single_word\":false,"
    "\"lstrip\":false,\"rstrip\":false,\"normalized\":false,\"special\":true}],"
    "\"normalizer\":{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"NFC\"},"
    "{\"type\":\"Replace\",\"pattern\":{\"String\":\" \"},\"content\":\"_\"}]},"
    "\"pre_tokenizer\":{\"type\":\"Split\",\"pattern\":{\"Regex\":\"_?[a-z]+|\\\\s+(?!\\\\S)\"},"
    "\"behavior\":\"Isolated\",\"invert\":false},"
    "\"post_processor\":{\"type\":\"TemplateProcessing\",\"single\":[{\"SpecialToken\":{\"id\":\"<s>\","
    "\"type_id\":0}},{\"Sequence\":{\"id\":\"A\",\"type_id\":0}}],\"pair\":[],\"special_tokens\":{\"<s>\":"
    "{\"id\":\"<s>\",\"ids\":[0],\"tokens\":[\"<s>\"]}}},"
    "\"decoder\":{\"type\":\"Replace\",\"pattern\":{\"String\":\"_\"},\"content\":\" \"},"
    "\"model\":{\"type\":\"BPE\",\"unk_token\":\"<unk>\",\"vocab\":{\"<s>\":0,\"<unk>\":1,\"_\":2,"
    "\"a\":3,\"b\":4,\"ab\":5,\"_ab\":6,\"c\":7},\"merges\":[\"a b\",[\"_\",\"ab\"]]}}";

static HrStatus
load_str(const char *json, HrError *err)
{
    HrTokenizer *t = NULL;
    HrStatus st = hr_tokenizer_load_from_data(json, strlen(json), NULL, 0, "test.json", &t, err);
    if (st == HR_OK) {
        /* Anything that loads must also encode and decode without trouble. */
        int32_t *ids = NULL;
        size_t n = 0;
        hr_tokenizer_encode(t, "ab c <s>ab", 10, true, true, &ids, &n, NULL);
        g_free(hr_tokenizer_decode(t, ids, n, false));
        g_free(ids);
        hr_tokenizer_free(t);
    }
    return st;
}

static char *
replace_once(const char *s, const char *from, const char *to)
{
    const char *p = strstr(s, from);
    g_assert(p);
    return g_strdup_printf("%.*s%s%s", (int)(p - s), s, to, p + strlen(from));
}

static void
expect_error(const char *json, HrStatus want, const char *needle)
{
    HrError err = { 0 };
    HrStatus st = load_str(json, &err);
    HR_CHECK(st == want, "wanted %s, got %s (%s)", hr_status_name(want), hr_status_name(st), err.message);
    HR_CHECK(!needle || strstr(err.message, needle), "message \"%s\" should mention \"%s\"", err.message,
             needle);
}

static void
test_malformed(void)
{
    HrError err = { 0 };
    HR_CHECK(load_str(TINY, &err) == HR_OK, "tiny tokenizer: %s", err.message);
    {
        HrTokenizer *t = NULL;
        hr_tokenizer_load_from_data(TINY, strlen(TINY), NULL, 0, "tiny", &t, NULL);
        int32_t *ids = NULL;
        size_t n = 0;
        hr_tokenizer_encode(t, "ab ab", 5, true, true, &ids, &n, NULL);
        /* NFC, " " -> "_", split "ab" "_ab", merges a+b then _+ab. */
        HR_CHECK(n == 3 && ids[0] == 0 && ids[1] == 5 && ids[2] == 6, "tiny encode: %zu ids", n);
        g_autofree char *s = hr_tokenizer_decode(t, ids, n, true);
        HR_CHECK(strcmp(s, "ab ab") == 0, "tiny decode \"%s\"", s);
        g_free(ids);
        hr_tokenizer_free(t);
    }

    expect_error("", HR_ERR_FORMAT, "not valid JSON");
    expect_error("not json at all", HR_ERR_FORMAT, "not valid JSON");
    expect_error("[1, 2, 3]", HR_ERR_FORMAT, "not a JSON object");
    expect_error("{\"version\": \"1.0\"}", HR_ERR_FORMAT, "no \"model\"");
    expect_error("{\"model\": 5}", HR_ERR_FORMAT, "no \"model\"");
    const char *types[] = { "Unigram", "WordPiece", "WordLevel" };
    for (size_t i = 0; i < G_N_ELEMENTS(types); i++) {
        g_autofree char *j = g_strdup_printf("{\"model\": {\"type\": \"%s\", \"vocab\": []}}", types[i]);
        expect_error(j, HR_ERR_UNSUPPORTED, types[i]);
    }
    g_autofree char *unk_merge = replace_once(TINY, "\"a b\"", "\"a zz\"");
    expect_error(unk_merge, HR_ERR_FORMAT, "\"zz\" is not in the vocab");
    g_autofree char *bad_merged = replace_once(TINY, "\"ab\":5,", "");
    expect_error(bad_merged, HR_ERR_FORMAT, "merged token \"ab\"");
    g_autofree char *bad_line = replace_once(TINY, "\"a b\"", "\"a b c\"");
    expect_error(bad_line, HR_ERR_FORMAT, "merges[0]");
    g_autofree char *bad_pair = replace_once(TINY, "[\"_\",\"ab\"]", "[\"_\"]");
    expect_error(bad_pair, HR_ERR_FORMAT, "merges[1]");
    g_autofree char *bad_id = replace_once(TINY, "\"c\":7", "\"c\":-7");
    expect_error(bad_id, HR_ERR_FORMAT, "\"c\"");
    HR_CHECK(load_str(bad_id, NULL) == HR_ERR_FORMAT, "errors are reported without an HrError too");
    g_autofree char *str_id = replace_once(TINY, "\"c\":7", "\"c\":\"7\"");
    expect_error(str_id, HR_ERR_FORMAT, "\"c\"");
    g_autofree char *no_vocab = replace_once(TINY, "\"vocab\":", "\"vocabulary\":");
    expect_error(no_vocab, HR_ERR_FORMAT, "vocab");
    g_autofree char *bad_norm = replace_once(TINY, "{\"type\":\"NFC\"}", "{\"type\":\"Precompiled\"}");
    expect_error(bad_norm, HR_ERR_UNSUPPORTED, "Precompiled");
    g_autofree char *bad_pre = replace_once(TINY, "\"type\":\"Split\"", "\"type\":\"BertPreTokenizer\"");
    expect_error(bad_pre, HR_ERR_UNSUPPORTED, "BertPreTokenizer");
    g_autofree char *bad_dec = replace_once(TINY, "\"decoder\":{\"type\":\"Replace\"", "\"decoder\":{\"type\":\"CTC\"");
    expect_error(bad_dec, HR_ERR_UNSUPPORTED, "CTC");
    g_autofree char *bad_re = replace_once(TINY, "_?[a-z]+", "_?[a-z+");
    expect_error(bad_re, HR_ERR_UNSUPPORTED, "regex");
    g_autofree char *bad_added = replace_once(TINY, "{\"id\":0,\"content\":\"<s>\"", "{\"content\":\"<s>\"");
    expect_error(bad_added, HR_ERR_FORMAT, "added_tokens[0]");
    g_autofree char *bad_behavior = replace_once(TINY, "\"Isolated\"", "\"Sideways\"");
    expect_error(bad_behavior, HR_ERR_FORMAT, "Sideways");
    g_autofree char *huge_id = replace_once(TINY, "\"c\":7", "\"c\":2000000000");
    expect_error(huge_id, HR_ERR_FORMAT, "implausibly large");

    /* Values of the wrong JSON type anywhere: an error, never a crash or a
     * GLib critical (the test runs with G_DEBUG=fatal-criticals). */
    static const char *const swaps[][2] = {
        { "\"ids\":[0]", "\"ids\":[\"0\"]" }, { "\"ids\":[0]", "\"ids\":{}" },
        { "\"ids\":[0]", "\"ids\":[-1]" }, { "\"type\":\"BPE\"", "\"type\":5" },
        { "\"vocab\":{", "\"vocab\":[{" }, { "\"merges\":[", "\"merges\":{\"x\":[" },
        { "\"added_tokens\":[", "\"added_tokens\":[5," }, { "\"content\":\"<s>\"", "\"content\":7" },
        { "\"normalizer\":{", "\"normalizer\":[{" }, { "{\"type\":\"NFC\"}", "\"NFC\"" },
        { "\"normalizers\":[", "\"normalizers\":[null," }, { "\"pattern\":{\"String\":\" \"}", "\"pattern\":\" \"" },
        { "\"pattern\":{\"Regex\":", "\"pattern\":{\"Regex\":1,\"x\":" }, { "\"behavior\":\"Isolated\"", "\"behavior\":true" },
        { "\"single\":[", "\"single\":[7," }, { "\"SpecialToken\":{\"id\":\"<s>\"", "\"SpecialToken\":{\"id\":0" },
        { "\"special_tokens\":{", "\"special_tokens\":[{" }, { "\"decoder\":{", "\"decoder\":[{" },
        { "\"content\":\" \"}", "\"content\":null}" }, { "\"unk_token\":\"<unk>\"", "\"unk_token\":[]" },
        { "[\"_\",\"ab\"]", "[\"_\",3]" }, { "\"a b\"", "null" }, { "\"id\":0,", "\"id\":1.5," },
        { "\"model\":{", "\"model\":{\"dropout\":0.5,\"fuse_unk\":\"yes\"," },
    };
    for (size_t i = 0; i < G_N_ELEMENTS(swaps); i++) {
        g_autofree char *j = replace_once(TINY, swaps[i][0], swaps[i][1]);
        load_str(j, NULL);
    }

    HrTokenizer *t = NULL;
    HR_CHECK(hr_tokenizer_load("/nonexistent/dir", &t, &err) == HR_ERR_IO && !t, "missing dir: %s",
             err.message);

    /* Every truncation, and random byte flips: an error or a working tokenizer. */
    size_t n = strlen(TINY);
    for (size_t cut = 0; cut < n; cut++) {
        g_autofree char *p = g_strndup(TINY, cut);
        HrError e = { 0 };
        HR_CHECK(load_str(p, &e) != HR_OK || cut > n - 3, "truncated at %zu loaded", cut);
    }
    GRand *rng = g_rand_new_with_seed(99);
    static const char junk[] = "{}[]\",:0-9aZ\\ \x80\xff";
    for (int iter = 0; iter < 3000; iter++) {
        g_autofree char *p = g_strdup(TINY);
        int flips = g_rand_int_range(rng, 1, 4);
        for (int f = 0; f < flips; f++)
            p[g_rand_int_range(rng, 0, (gint32)n)] = junk[g_rand_int_range(rng, 0, (gint32)sizeof junk - 1)];
        load_str(p, NULL);
    }
    g_rand_free(rng);
}

/* ---- hostile files (issue 24) ------------------------------------------------------------ */

/* TINY with `member` (a top-level key) replaced by `value`. */
static char *
tiny_with(const char *member, const char *value)
{
    g_autofree char *key = g_strdup_printf("\"%s\":", member);
    const char *p = strstr(TINY, key);
    g_assert(p);
    /* The old value runs to the matching close brace. */
    const char *v = p + strlen(key);
    g_assert(*v == '{');
    int depth = 0;
    const char *e = v;
    bool in_str = false;
    for (; *e; e++) {
        if (in_str) {
            if (*e == '\\')
                e++;
            else if (*e == '"')
                in_str = false;
            continue;
        }
        if (*e == '"')
            in_str = true;
        else if (*e == '{')
            depth++;
        else if (*e == '}' && --depth == 0)
            break;
    }
    return g_strdup_printf("%.*s%s%s", (int)(v - TINY), TINY, value, e + 1);
}

/* {"type":"Sequence","<list>":[ ... leaf ... ]} nested `levels` deep. */
static char *
nested_sequence(const char *list, const char *leaf, int levels)
{
    GString *s = g_string_new(NULL);
    for (int i = 0; i < levels; i++)
        g_string_append_printf(s, "{\"type\":\"Sequence\",\"%s\":[", list);
    g_string_append(s, leaf);
    for (int i = 0; i < levels; i++)
        g_string_append(s, "]}");
    return g_string_free(s, FALSE);
}

static HrTokenizer *
load_ok(const char *json, const char *label)
{
    HrTokenizer *t = NULL;
    HrError err = { 0 };
    HrStatus st = hr_tokenizer_load_from_data(json, strlen(json), NULL, 0, label, &t, &err);
    HR_CHECK(st == HR_OK, "%s: %s", label, err.message);
    return t;
}

static void
test_hostile_nesting(void)
{
    static const struct { const char *member, *list, *leaf; } kinds[] = {
        { "normalizer", "normalizers", "{\"type\":\"NFC\"}" },
        { "pre_tokenizer", "pretokenizers", "{\"type\":\"WhitespaceSplit\"}" },
        { "post_processor", "processors", "{\"type\":\"ByteLevel\"}" },
        { "decoder", "decoders", "{\"type\":\"Fuse\"}" },
    };
    for (size_t k = 0; k < G_N_ELEMENTS(kinds); k++) {
        /* 30,000 deep: the JSON depth limit stops it before json-glib recurses. */
        g_autofree char *deep = nested_sequence(kinds[k].list, kinds[k].leaf, 30000);
        g_autofree char *j1 = tiny_with(kinds[k].member, deep);
        expect_error(j1, HR_ERR_FORMAT, "nested more than");
        /* 20 deep is valid JSON (41 levels) but more than the 16 a pipeline may nest. */
        g_autofree char *d20 = nested_sequence(kinds[k].list, kinds[k].leaf, 20);
        g_autofree char *j2 = tiny_with(kinds[k].member, d20);
        expect_error(j2, HR_ERR_FORMAT, "Sequence nested more than 16 deep");
        /* 16 Sequences around the leaf is fine. */
        g_autofree char *d16 = nested_sequence(kinds[k].list, kinds[k].leaf, 16);
        g_autofree char *j3 = tiny_with(kinds[k].member, d16);
        HrTokenizer *t = load_ok(j3, kinds[k].member);
        hr_tokenizer_free(t);
        /* A flat Sequence of 300 components. */
        GString *flat = g_string_new(NULL);
        g_string_printf(flat, "{\"type\":\"Sequence\",\"%s\":[", kinds[k].list);
        for (int i = 0; i < 300; i++)
            g_string_append_printf(flat, "%s%s", i ? "," : "", kinds[k].leaf);
        g_string_append(flat, "]}");
        g_autofree char *j4 = tiny_with(kinds[k].member, flat->str);
        expect_error(j4, HR_ERR_FORMAT, "more than 256 components");
        g_string_free(flat, TRUE);
    }
    /* Deep JSON anywhere (here in an ignored member). */
    GString *s = g_string_new("{\"junk\":");
    for (int i = 0; i < 100000; i++)
        g_string_append_c(s, '[');
    for (int i = 0; i < 100000; i++)
        g_string_append_c(s, ']');
    g_string_append_printf(s, ",%s", TINY + 1);
    expect_error(s->str, HR_ERR_FORMAT, "nested more than");
    g_string_free(s, TRUE);
    /* Duplicate keys. */
    g_autofree char *dup = g_strdup_printf("{\"model\":{},%s", TINY + 1);
    expect_error(dup, HR_ERR_FORMAT, "not valid JSON");
    /* A post-processor adding 5000 ids. */
    GString *ids = g_string_new(NULL);
    for (int i = 0; i < 5000; i++)
        g_string_append_printf(ids, "%s0", i ? "," : "");
    g_autofree char *many = replace_once(TINY, "\"ids\":[0]", "\"ids\":[@]");
    g_autofree char *many2 = replace_once(many, "@", ids->str);
    expect_error(many2, HR_ERR_FORMAT, "more than 4096 special token ids");
    g_string_free(ids, TRUE);
}

static void
expect_config_error(const char *cfg, const char *needle)
{
    HrTokenizer *t = NULL;
    HrError err = { 0 };
    HrStatus st = hr_tokenizer_load_from_data(TINY, strlen(TINY), cfg, strlen(cfg), "test.json", &t, &err);
    HR_CHECK(st == HR_ERR_FORMAT && !t, "config %s: wanted an error, got %s", cfg, hr_status_name(st));
    HR_CHECK(strstr(err.message, needle) && strstr(err.message, "tokenizer_config.json"),
             "message \"%s\" should name tokenizer_config.json and \"%s\"", err.message, needle);
    hr_tokenizer_free(t);
}

static void
test_hostile_types(void)
{
    static const char *const swaps[][3] = {
        { "\"unk_token\":\"<unk>\"", "\"unk_token\":\"<unk>\",\"fuse_unk\":\"yes\"", "fuse_unk" },
        { "\"unk_token\":\"<unk>\"", "\"unk_token\":\"<unk>\",\"byte_fallback\":1", "byte_fallback" },
        { "\"unk_token\":\"<unk>\"", "\"unk_token\":5", "unk_token" },
        { "\"unk_token\":\"<unk>\"", "\"unk_token\":\"<unk>\",\"continuing_subword_prefix\":[]", "continuing_subword_prefix" },
        { "\"special\":true", "\"special\":\"true\"", "added_tokens[0]: \"special\"" },
        { "\"lstrip\":false", "\"lstrip\":0", "\"lstrip\"" },
        { "\"invert\":false", "\"invert\":{}", "\"invert\"" },
        { "\"content\":\"_\"}", "\"content\":[\"_\"]}", "\"content\"" },
        { "{\"type\":\"NFC\"}", "{\"type\":\"Strip\",\"strip_left\":\"no\"}", "strip_left" },
        { "{\"type\":\"NFC\"}", "{\"type\":\"Prepend\",\"prepend\":7}", "prepend" },
        { "\"pattern\":{\"String\":\" \"}", "\"pattern\":{\"String\":7}", "\"String\"" },
    };
    for (size_t i = 0; i < G_N_ELEMENTS(swaps); i++) {
        g_autofree char *j = replace_once(TINY, swaps[i][0], swaps[i][1]);
        HrError err = { 0 };
        HrStatus st = load_str(j, &err);
        HR_CHECK(st == HR_ERR_FORMAT, "swap %zu: wanted HR_ERR_FORMAT, got %s", i, hr_status_name(st));
        HR_CHECK(strstr(err.message, swaps[i][2]) && g_str_has_prefix(err.message, "test.json: "),
                 "swap %zu: message \"%s\" should name test.json and %s", i, err.message, swaps[i][2]);
    }
    g_autofree char *ms = tiny_with("pre_tokenizer",
                                    "{\"type\":\"Metaspace\",\"replacement\":\"_\",\"prepend_scheme\":7}");
    expect_error(ms, HR_ERR_FORMAT, "prepend_scheme");
    g_autofree char *bl = tiny_with("pre_tokenizer", "{\"type\":\"ByteLevel\",\"add_prefix_space\":1}");
    expect_error(bl, HR_ERR_FORMAT, "add_prefix_space");
    expect_config_error("{\"bos_token\": 5}", "bos_token");
    expect_config_error("{\"eos_token\": {\"content\": 5}}", "eos_token");
    expect_config_error("{\"pad_token\": []}", "pad_token");
    expect_config_error("{\"chat_template\": 5}", "chat_template");
    expect_config_error("{\"add_bos_token\": \"yes\"}", "add_bos_token");
    expect_config_error("{\"a\": 1, \"a\": 2}", "not valid JSON");
    expect_config_error("[]", "not a JSON object");
    /* null means absent. */
    const char *nulls = "{\"bos_token\": null, \"eos_token\": {\"content\": null}, \"chat_template\": null,"
                        " \"add_bos_token\": null}";
    HrTokenizer *t = NULL;
    HrError err = { 0 };
    HR_CHECK(hr_tokenizer_load_from_data(TINY, strlen(TINY), nulls, strlen(nulls), "n", &t, &err) == HR_OK,
             "nulls: %s", err.message);
    hr_tokenizer_free(t);
}

/* Encode text with a tokenizer; the status, *n ids. */
static HrStatus
encode_status(HrTokenizer *t, const char *text, size_t len, size_t *n, HrError *err)
{
    int32_t *ids = NULL;
    HrStatus st = hr_tokenizer_encode(t, text, len, true, true, &ids, n, err);
    g_free(ids);
    return st;
}

static void
test_hostile_growth(void)
{
    HrError err = { 0 };
    size_t n = 0;
    /* 40 Replace "a" -> "aaaaaaaa" in a row: 8^40 times the input. */
    GString *seq = g_string_new("{\"type\":\"Sequence\",\"normalizers\":[");
    for (int i = 0; i < 40; i++)
        g_string_append_printf(seq, "%s{\"type\":\"Replace\",\"pattern\":{\"String\":\"a\"},\"content\":\"aaaaaaaa\"}",
                               i ? "," : "");
    g_string_append(seq, "]}");
    g_autofree char *j1 = tiny_with("normalizer", seq->str);
    HrTokenizer *t = load_ok(j1, "replace-blowup");
    if (t) {
        HR_CHECK(encode_status(t, "aaaa", 4, &n, &err) == HR_ERR_FORMAT && strstr(err.message, "normalizer"),
                 "Replace blowup: %s", err.message);
        /* A text the rules do not touch still encodes. */
        HR_CHECK(encode_status(t, "bbb", 3, &n, &err) == HR_OK, "Replace blowup, plain text: %s", err.message);
        hr_tokenizer_free(t);
    }
    g_string_free(seq, TRUE);

    /* The same with a regex that matches the empty string (content between every character). */
    seq = g_string_new("{\"type\":\"Sequence\",\"normalizers\":[");
    for (int i = 0; i < 30; i++)
        g_string_append_printf(seq, "%s{\"type\":\"Replace\",\"pattern\":{\"Regex\":\"x*\"},\"content\":\"yy\"}",
                               i ? "," : "");
    g_string_append(seq, "]}");
    g_autofree char *j2 = tiny_with("normalizer", seq->str);
    if ((t = load_ok(j2, "regex-blowup"))) {
        HR_CHECK(encode_status(t, "abc", 3, &n, &err) == HR_ERR_FORMAT, "regex blowup");
        hr_tokenizer_free(t);
    }
    g_string_free(seq, TRUE);

    /* One Replace with a 2 MiB content. */
    GString *big = g_string_new("{\"type\":\"Replace\",\"pattern\":{\"String\":\"a\"},\"content\":\"");
    for (int i = 0; i < (2 << 20); i++)
        g_string_append_c(big, 'b');
    g_string_append(big, "\"}");
    g_autofree char *j3 = tiny_with("normalizer", big->str);
    if ((t = load_ok(j3, "big-content"))) {
        HR_CHECK(encode_status(t, "aaaaaaaaaa", 10, &n, &err) == HR_ERR_FORMAT, "2 MiB content x 10");
        hr_tokenizer_free(t);
    }
    g_string_free(big, TRUE);

    /* 40 ByteLevel pre-tokenizers: non-ASCII text doubles at each. */
    seq = g_string_new("{\"type\":\"Sequence\",\"pretokenizers\":[");
    for (int i = 0; i < 40; i++)
        g_string_append_printf(seq, "%s{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"use_regex\":false}",
                               i ? "," : "");
    g_string_append(seq, "]}");
    g_autofree char *j4 = tiny_with("pre_tokenizer", seq->str);
    if ((t = load_ok(j4, "bytelevel-blowup"))) {
        HR_CHECK(encode_status(t, "\xc3\xa9t\xc3\xa9", 5, &n, &err) == HR_ERR_FORMAT &&
                     strstr(err.message, "pre_tokenizer"),
                 "ByteLevel blowup: %s", err.message);
        hr_tokenizer_free(t);
    }
    g_string_free(seq, TRUE);

    /* A decoder that keeps growing: the decode is one U+FFFD, at once. */
    seq = g_string_new("{\"type\":\"Sequence\",\"decoders\":[");
    for (int i = 0; i < 40; i++)
        g_string_append_printf(seq, "%s{\"type\":\"Replace\",\"pattern\":{\"String\":\"a\"},\"content\":\"aaaaaaaa\"}",
                               i ? "," : "");
    g_string_append(seq, "]}");
    g_autofree char *j5 = tiny_with("decoder", seq->str);
    if ((t = load_ok(j5, "decoder-blowup"))) {
        int32_t ids[] = { 3, 3, 4 };
        g_autofree char *s = hr_tokenizer_decode(t, ids, 3, false);
        HR_CHECK(strcmp(s, "\xef\xbf\xbd") == 0, "decoder blowup decodes to \"%.20s\"", s);
        int32_t bids[] = { 4, 4 };
        g_autofree char *b = hr_tokenizer_decode(t, bids, 2, false);
        HR_CHECK(strcmp(b, "bb") == 0, "decoder without a match: \"%s\"", b);
        hr_tokenizer_free(t);
    }
    g_string_free(seq, TRUE);
}

static void
test_hostile_added(void)
{
    /* 100,000 added tokens sharing their first byte ("Z00000|" ...). The old
     * matcher tried every one at every 'Z' of the text (and loading compared
     * each with all before it): minutes. The automaton is linear. */
    enum { N_ADDED = 100000, HALF = 50000 };
    GString *j = g_string_new("{\"added_tokens\":[");
    for (int i = 0; i < N_ADDED; i++)
        g_string_append_printf(j, "%s{\"id\":%d,\"content\":\"Z%05d|\",\"normalized\":%s}", i ? "," : "", 100 + i,
                               i, i % 2 ? "true" : "false");
    g_string_append(j, "],\"model\":{\"type\":\"BPE\",\"vocab\":{\"<unk>\":0,\"Z\":1,\"0\":2,\"|\":3},"
                       "\"merges\":[],\"unk_token\":\"<unk>\"}}");
    HrTokenizer *t = load_ok(j->str, "100k-added");
    g_string_free(j, TRUE);
    if (t) {
        GString *text = g_string_new(NULL);
        for (int i = 0; i < HALF; i++)
            g_string_append_c(text, 'Z');
        g_string_append(text, "Z04242|Z77777|");
        for (int i = 0; i < HALF; i++)
            g_string_append_c(text, 'Z');
        int32_t *ids = NULL;
        size_t n = 0;
        HrError err = { 0 };
        HR_CHECK(hr_tokenizer_encode(t, text->str, text->len, false, true, &ids, &n, &err) == HR_OK, "%s",
                 err.message);
        int32_t a = hr_tokenizer_token_id(t, "Z04242|"), b = hr_tokenizer_token_id(t, "Z77777|");
        HR_CHECK(a >= 4 && b >= 4 && n == 2 * HALF + 2, "100k added: %zu ids", n);
        if (n == 2 * HALF + 2) {
            HR_CHECK(ids[HALF] == a && ids[HALF + 1] == b, "100k added: matched %d %d (want %d %d)", ids[HALF],
                     ids[HALF + 1], a, b);
            HR_CHECK(ids[0] == 1 && ids[HALF - 1] == 1 && ids[HALF + 2] == 1 && ids[n - 1] == 1, "100k added: Z ids");
        }
        g_free(ids);
        g_string_free(text, TRUE);
        hr_tokenizer_free(t);
    }

    /* "a" and "a" x 200,000 + "b": a trie walked from every position would
     * read ~200k bytes at each of 100k positions. */
    GString *longp = g_string_new("{\"added_tokens\":[{\"id\":5,\"content\":\"a\"},{\"id\":6,\"content\":\"");
    for (int i = 0; i < 200000; i++)
        g_string_append_c(longp, 'a');
    g_string_append(longp, "b\"}],\"model\":{\"type\":\"BPE\",\"vocab\":{\"<unk>\":0,\"a\":1,\"b\":2},\"merges\":[]}}");
    t = load_ok(longp->str, "long-added");
    g_string_free(longp, TRUE);
    if (t) {
        GString *text = g_string_new(NULL);
        for (int i = 0; i < 100000; i++)
            g_string_append_c(text, 'a');
        int32_t *ids = NULL;
        size_t n = 0;
        HR_CHECK(hr_tokenizer_encode(t, text->str, text->len, false, true, &ids, &n, NULL) == HR_OK &&
                     n == 100000 && ids[0] == 1 && ids[n - 1] == 1,
                 "long added token: %zu ids", n);
        g_free(ids);
        g_string_free(text, TRUE);
        hr_tokenizer_free(t);
    }

    /* Leftmost, then longest; a skipped special token does not hide a later match. */
    const char *ov = "{\"added_tokens\":[{\"id\":10,\"content\":\"ab\"},{\"id\":11,\"content\":\"abc\"},"
                     "{\"id\":12,\"content\":\"bcd\"},{\"id\":13,\"content\":\"<s>\",\"special\":true}],"
                     "\"model\":{\"type\":\"BPE\",\"vocab\":{\"<unk>\":0,\"a\":1,\"b\":2,\"c\":3,\"d\":4,\"<\":5,"
                     "\"s\":6,\">\":7},\"merges\":[]}}";
    if ((t = load_ok(ov, "overlap"))) {
        int32_t *ids = NULL;
        size_t n = 0;
        hr_tokenizer_encode(t, "xabcd<s>ab", 10, false, true, &ids, &n, NULL);
        int32_t abc = hr_tokenizer_token_id(t, "abc"), s = hr_tokenizer_token_id(t, "<s>"),
                ab = hr_tokenizer_token_id(t, "ab");
        /* x is dropped (no unk), abc, d, <s>, ab */
        HR_CHECK(n == 4 && ids[0] == abc && ids[1] == 4 && ids[2] == s && ids[3] == ab, "overlap: %zu ids", n);
        g_free(ids);
        hr_tokenizer_encode(t, "<s>ab", 5, false, false, &ids, &n, NULL);
        HR_CHECK(n == 4 && ids[0] == 5 && ids[3] == ab, "special not parsed: %zu ids", n);
        g_free(ids);
        hr_tokenizer_free(t);
    }
}

static void
write_file(const char *dir, const char *name, const char *text, gssize len)
{
    g_autofree char *p = g_build_filename(dir, name, NULL);
    g_autoptr(GError) e = NULL;
    HR_CHECK(g_file_set_contents(p, text, len, &e), "%s: %s", p, e ? e->message : "");
}

static void
remove_tree(const char *dir)
{
    GDir *d = g_dir_open(dir, 0, NULL);
    const char *name;
    while (d && (name = g_dir_read_name(d))) {
        g_autofree char *p = g_build_filename(dir, name, NULL);
        if (g_file_test(p, G_FILE_TEST_IS_DIR) && !g_file_test(p, G_FILE_TEST_IS_SYMLINK))
            remove_tree(p);
        else
            g_remove(p);
    }
    if (d)
        g_dir_close(d);
    g_rmdir(dir);
}

static void
test_hostile_files(void)
{
    g_autofree char *dir = g_dir_make_tmp("hearth-tok-XXXXXX", NULL);
    g_assert(dir);
    g_autofree char *tpath = g_build_filename(dir, "tokenizer.json", NULL);
    g_autofree char *cpath = g_build_filename(dir, "tokenizer_config.json", NULL);
    g_autofree char *jpath = g_build_filename(dir, "chat_template.jinja", NULL);
    HrTokenizer *t = NULL;
    HrError err = { 0 };

    /* A FIFO with no writer as tokenizer.json, then as tokenizer_config.json and
     * chat_template.jinja: an error, not a hang. */
    HR_CHECK(mkfifo(tpath, 0600) == 0, "mkfifo");
    HR_CHECK(hr_tokenizer_load(dir, &t, &err) != HR_OK && !t && strstr(err.message, "not a regular file"),
             "FIFO tokenizer.json: %s", err.message);
    g_remove(tpath);
    write_file(dir, "tokenizer.json", TINY, -1);
    HR_CHECK(mkfifo(cpath, 0600) == 0, "mkfifo");
    HR_CHECK(hr_tokenizer_load(dir, &t, &err) != HR_OK && !t && strstr(err.message, "tokenizer_config.json"),
             "FIFO tokenizer_config.json: %s", err.message);
    g_remove(cpath);
    HR_CHECK(mkfifo(jpath, 0600) == 0, "mkfifo");
    HR_CHECK(hr_tokenizer_load(dir, &t, &err) != HR_OK && !t && strstr(err.message, "chat_template.jinja"),
             "FIFO chat_template.jinja: %s", err.message);
    g_remove(jpath);
    /* A directory as tokenizer_config.json. */
    HR_CHECK(g_mkdir(cpath, 0700) == 0, "mkdir");
    HR_CHECK(hr_tokenizer_load(dir, &t, &err) != HR_OK && !t, "directory as tokenizer_config.json");
    g_rmdir(cpath);

    /* chat_template.jinja beside tokenizer_config.json is the template. */
    write_file(dir, "tokenizer_config.json", "{\"chat_template\": \"from config\", \"bos_token\": \"<s>\"}", -1);
    HR_CHECK(hr_tokenizer_load(dir, &t, &err) == HR_OK, "%s", err.message);
    HR_CHECK(t && g_strcmp0(hr_tokenizer_chat_template(t), "from config") == 0, "config template");
    g_clear_pointer(&t, hr_tokenizer_free);
    write_file(dir, "chat_template.jinja", "{{ bos_token }}{% for m in messages %}{{ m.content }}{% endfor %}\n", -1);
    HR_CHECK(hr_tokenizer_load(dir, &t, &err) == HR_OK, "%s", err.message);
    HR_CHECK(t && g_strcmp0(hr_tokenizer_chat_template(t),
                            "{{ bos_token }}{% for m in messages %}{{ m.content }}{% endfor %}\n") == 0,
             "chat_template.jinja wins: \"%s\"", t ? hr_tokenizer_chat_template(t) : "");
    HR_CHECK(t && g_strcmp0(hr_tokenizer_bos_token(t), "<s>") == 0, "config still read");
    g_clear_pointer(&t, hr_tokenizer_free);
    /* Without tokenizer_config.json too. */
    g_remove(cpath);
    HR_CHECK(hr_tokenizer_load(dir, &t, &err) == HR_OK && g_str_has_prefix(hr_tokenizer_chat_template(t), "{{ bos"),
             "jinja alone: %s", err.message);
    g_clear_pointer(&t, hr_tokenizer_free);
    /* Not UTF-8 text, or a NUL inside: an error naming the file. */
    write_file(dir, "chat_template.jinja", "{{ x }}\xff", -1);
    HR_CHECK(hr_tokenizer_load(dir, &t, &err) == HR_ERR_FORMAT && !t && strstr(err.message, "chat_template.jinja"),
             "bad jinja: %s", err.message);
    write_file(dir, "chat_template.jinja", "a\0b", 3);
    HR_CHECK(hr_tokenizer_load(dir, &t, &err) == HR_ERR_FORMAT && !t, "NUL in jinja");
    g_remove(jpath);
    /* Strict JSON from a file too: the error names the path. */
    write_file(dir, "tokenizer.json", "{\"model\": {}, \"model\": {}}", -1);
    HR_CHECK(hr_tokenizer_load(dir, &t, &err) == HR_ERR_FORMAT && !t && strstr(err.message, tpath),
             "duplicate keys in a file: %s", err.message);
    remove_tree(dir);
}

static void
test_hostile(void)
{
    test_hostile_nesting();
    test_hostile_types();
    test_hostile_growth();
    test_hostile_added();
    test_hostile_files();
}

/* ---- odds and ends -------------------------------------------------------------------- */

static gpointer
encode_thread(gpointer data)
{
    const HrTokenizer *t = data;
    const char *text = "The quick brown fox jumps over the lazy dog 12345 \xe6\x97\xa5\xe6\x9c\xac ";
    GString *big = g_string_new(NULL);
    for (int i = 0; i < 200; i++)
        g_string_append_printf(big, "%s%d ", text, i);
    int32_t *ids = NULL;
    size_t n = 0;
    hr_tokenizer_encode(t, big->str, big->len, false, true, &ids, &n, NULL);
    char *back = hr_tokenizer_decode(t, ids, n, false);
    gboolean ok = strcmp(back, big->str) == 0 || strstr(back, "quick") != NULL;
    g_free(back);
    g_free(ids);
    g_string_free(big, TRUE);
    return GINT_TO_POINTER(ok);
}

static void
test_misc(void)
{
    JsonArray *toks = synthetic_tokenizers();
    JsonObject *gpt2 = json_array_get_object_element(toks, 0);
    JsonObject *spm = json_array_get_object_element(toks, 1);
    g_autoptr(HrTokenizer) g = load_json_node(json_object_get_member(gpt2, "tokenizer"), "gpt2-style");
    g_autoptr(HrTokenizer) s = load_json_node(json_object_get_member(spm, "tokenizer"), "metaspace-first");
    if (!g || !s)
        return;

    /* NUL is an ordinary character; byte-level round trips every byte. */
    char all[255];
    for (int i = 1; i < 256; i++)
        all[i - 1] = (char)i;
    int32_t *ids = NULL;
    size_t n = 0;
    HR_CHECK(hr_tokenizer_encode(g, "a\0b", 3, false, true, &ids, &n, NULL) == HR_OK && n >= 2, "NUL encode");
    g_autoptr(GString) nul = decode(g, ids, n, false);
    /* add_prefix_space: " a\0b" */
    HR_CHECK(nul->len == 4 && memcmp(nul->str, " a\0b", 4) == 0, "NUL round trip");
    g_free(ids);
    /* Invalid UTF-8 is encoded as U+FFFD. */
    HR_CHECK(hr_tokenizer_encode(g, all, sizeof all, false, true, &ids, &n, NULL) == HR_OK, "bytes encode");
    g_autofree char *back = hr_tokenizer_decode(g, ids, n, false);
    HR_CHECK(g_utf8_validate(back, -1, NULL) && strstr(back, "\xef\xbf\xbd"), "invalid input -> U+FFFD");
    g_free(ids);
    int32_t *ids2 = NULL;
    size_t n2 = 0;
    hr_tokenizer_encode(g, "\xef\xbf\xbd", 3, false, true, &ids2, &n2, NULL);
    hr_tokenizer_encode(g, "\xff", 1, false, true, &ids, &n, NULL);
    HR_CHECK(n == n2 && n && memcmp(ids, ids2, n * 4) == 0, "0xff encodes as U+FFFD");
    g_free(ids);
    g_free(ids2);

    /* Empty input. */
    HR_CHECK(hr_tokenizer_encode(s, "", 0, false, true, &ids, &n, NULL) == HR_OK && n == 0 && !ids, "empty");
    HR_CHECK(hr_tokenizer_encode(s, "", 0, true, true, &ids, &n, NULL) == HR_OK && n == 2, "empty + specials");
    g_free(ids);
    HR_CHECK(hr_tokenizer_encode(s, NULL, 0, false, true, &ids, &n, NULL) == HR_OK && n == 0, "NULL text");
    g_autofree char *empty = hr_tokenizer_decode(s, NULL, 0, false);
    HR_CHECK(empty && !*empty, "decode of nothing");

    /* Byte fallback: a character outside the vocab becomes <0xNN> tokens, and
     * streaming holds the run until it is complete. */
    hr_tokenizer_encode(s, "\xf0\x9f\xa6\x8a", 4, false, true, &ids, &n, NULL);
    int n_bytes = 0;
    for (size_t i = 0; i < n; i++)
        n_bytes += g_str_has_prefix(hr_tokenizer_token_text(s, ids[i]), "<0x");
    HR_CHECK(n_bytes == 4, "emoji -> 4 byte tokens (%d)", n_bytes);
    g_autoptr(HrDetokenizer) d = hr_detokenizer_new(s, false);
    GString *out = g_string_new(NULL);
    for (size_t i = 0; i < n; i++) {
        hr_detokenizer_push(d, ids[i], out);
        HR_CHECK(g_utf8_validate(out->str, (gssize)out->len, NULL), "partial emoji emitted");
    }
    hr_detokenizer_flush(d, out);
    g_autofree char *full = hr_tokenizer_decode(s, ids, n, false);
    HR_CHECK(strcmp(out->str, full) == 0 && strstr(full, "\xf0\x9f\xa6\x8a"), "emoji stream \"%s\"", out->str);
    g_string_free(out, TRUE);
    g_free(ids);

    /* Accessors. */
    HR_CHECK(hr_tokenizer_token_id(g, "<s>") == 0 && hr_tokenizer_is_special(g, 0), "<s> id");
    HR_CHECK(hr_tokenizer_token_id(g, "no such token at all") == -1, "absent token");
    HR_CHECK(hr_tokenizer_token_text(g, -1) == NULL && hr_tokenizer_token_text(g, 1 << 30) == NULL, "bad id");
    HR_CHECK(!hr_tokenizer_bos_token(g) && !hr_tokenizer_chat_template(g), "no config");

    /* tokenizer_config.json: token forms, chat_template list, add_bos/add_eos. */
    g_autoptr(JsonGenerator) gen = json_generator_new();
    json_generator_set_root(gen, json_object_get_member(spm, "tokenizer"));
    gsize len = 0;
    g_autofree char *data = json_generator_to_data(gen, &len);
    const char *cfg =
        "{\"bos_token\": {\"content\": \"<s>\", \"lstrip\": false}, \"eos_token\": \"</s>\","
        " \"add_bos_token\": false, \"add_eos_token\": true,"
        " \"chat_template\": [{\"name\": \"tool_use\", \"template\": \"T\"},"
        "                     {\"name\": \"default\", \"template\": \"{{ x }}\"}]}";
    HrTokenizer *c = NULL;
    HrError err = { 0 };
    HR_CHECK(hr_tokenizer_load_from_data(data, len, cfg, strlen(cfg), "cfg", &c, &err) == HR_OK, "%s",
             err.message);
    if (c) {
        HR_CHECK(g_strcmp0(hr_tokenizer_bos_token(c), "<s>") == 0, "bos object form");
        HR_CHECK(g_strcmp0(hr_tokenizer_eos_token(c), "</s>") == 0, "eos");
        HR_CHECK(g_strcmp0(hr_tokenizer_chat_template(c), "{{ x }}") == 0, "default template");
        hr_tokenizer_encode(c, "hi", 2, true, true, &ids, &n, NULL);
        HR_CHECK(n >= 2 && ids[0] != hr_tokenizer_bos_id(c) && ids[n - 1] == hr_tokenizer_eos_id(c),
                 "add_bos false / add_eos true override the template");
        g_free(ids);
        hr_tokenizer_free(c);
    }

    /* Concurrent encodes share the word cache. */
    GThread *th[4];
    for (int i = 0; i < 4; i++)
        th[i] = g_thread_new("enc", encode_thread, g);
    for (int i = 0; i < 4; i++)
        HR_CHECK(GPOINTER_TO_INT(g_thread_join(th[i])), "thread %d", i);
}

int
main(void)
{
    test_malformed();
    test_hostile();
    test_synthetic();
    test_stream_random();
    test_misc();
    if (synthetic_parser)
        g_object_unref(synthetic_parser);
    return hr_test_result();
}
