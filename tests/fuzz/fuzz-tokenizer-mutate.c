/* fuzz-tokenizer-mutate.c — tokenizer.json-aware mutations for the tokenizer
 * fuzz target: the fuzz-mutate.h API (fuzz_rng_seed, fuzz_below, fuzz_mutate),
 * linked instead of fuzz-mutate.c (with fuzz-rng.c) by the `tokenizer-fuzz` meson test and by
 * tools/fuzz-tokenizer (with fuzz-custom-mutator.c).
 *
 * Byte-level: flips, interesting bytes, inserts of JSON fragments and
 * pipeline words, deletes, duplicated chunks, number tweaks, crossover.
 * Structure-aware (about one in three): the value of a pipeline key
 * ("normalizer", "pre_tokenizer", "post_processor", "decoder",
 * "added_tokens", "vocab", "merges", ...) is replaced by a fragment built from
 * components (Sequence nesting, Replace/Prepend that grow text, regexes,
 * ByteLevel chains, added tokens with every flag, edge-case ids), or by the
 * same key's value from another input of the pool, so inputs stay valid JSON
 * often enough to reach the pipeline.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <glib.h>

#include "fuzz-mutate.h"

/* The PRNG is fuzz-rng.c's. */

#define PICK(a) (a[fuzz_below(G_N_ELEMENTS(a))])

static const char *const words[] = {
    "\"Sequence\"", "\"Replace\"", "\"Prepend\"", "\"ByteLevel\"", "\"Metaspace\"", "\"Split\"", "\"NFC\"",
    "\"NFKD\"", "\"Lowercase\"", "\"Strip\"", "\"StripAccents\"", "\"Digits\"", "\"Whitespace\"",
    "\"WhitespaceSplit\"", "\"Punctuation\"", "\"CharDelimiterSplit\"", "\"TemplateProcessing\"",
    "\"BertProcessing\"", "\"ByteFallback\"", "\"Fuse\"", "\"BPEDecoder\"", "\"BPE\"", "\"type\"", "\"content\"",
    "\"pattern\"", "\"String\"", "\"Regex\"", "\"behavior\"", "\"Isolated\"", "\"MergedWithNext\"",
    "\"Contiguous\"", "\"Removed\"", "\"invert\"", "\"special\"", "\"lstrip\"", "\"rstrip\"", "\"single_word\"",
    "\"normalized\"", "\"byte_fallback\"", "\"fuse_unk\"", "\"ignore_merges\"", "\"unk_token\"",
    "\"continuing_subword_prefix\"", "\"end_of_word_suffix\"", "\"prepend_scheme\"", "\"first\"", "\"never\"",
    "\"always\"", "\"split\"", "\"replacement\"", "\"add_prefix_space\"", "\"use_regex\"", "\"ids\"",
    "\"single\"", "\"special_tokens\"", "\"SpecialToken\"", "\"start\"", "\"stop\"", "\"<0x41>\"", "\"<0xFF>\"",
    "\"\\u2581\"", "\"\\ud83e\\udd8a\"", "\"\"", "\" \"", "\"a\"", "\"<s>\"", "null", "true", "false", "0", "-1",
    "2147483647", "2147483648", "16777216", "9223372036854775807", "1e5", "[]", "{}", "[[", "]]", "{\"", ",",
    ":", "\"x*\"", "\"(a|b)*c\"", "\"\\\\s+\"", "\"\\\\p{L}+\"", "\"(?!\"", "\"[\"", "\"\\\\h\"",
};

static const char *const interesting_numbers[] = {
    "0", "1", "-1", "255", "256", "65535", "65536", "16777215", "16777216", "16777217", "2147483646",
    "2147483647", "2147483648", "4294967295", "4294967296", "9223372036854775807", "-9223372036854775808",
    "18446744073709551615", "1.5", "1e300", "-0",
};

/* Fragments for the values of pipeline keys. */
static const char *const normalizers[] = {
    "{\"type\":\"NFC\"}", "{\"type\":\"NFKC\"}", "{\"type\":\"NFD\"}", "{\"type\":\"Lowercase\"}",
    "{\"type\":\"StripAccents\"}", "{\"type\":\"ByteLevel\"}", "{\"type\":\"Strip\",\"strip_left\":true,\"strip_right\":false}",
    "{\"type\":\"Prepend\",\"prepend\":\"\\u2581\"}", "{\"type\":\"Prepend\",\"prepend\":\"aaaaaaaaaaaaaaaa\"}",
    "{\"type\":\"Replace\",\"pattern\":{\"String\":\" \"},\"content\":\"\\u2581\"}",
    "{\"type\":\"Replace\",\"pattern\":{\"String\":\"a\"},\"content\":\"aaaaaaaa\"}",
    "{\"type\":\"Replace\",\"pattern\":{\"Regex\":\"x*\"},\"content\":\"yy\"}",
    "{\"type\":\"Replace\",\"pattern\":{\"Regex\":\"\\\\s+\"},\"content\":\"\"}",
    "{\"type\":\"Replace\",\"pattern\":{\"String\":\"\"},\"content\":\"z\"}",
};
static const char *const pretokenizers[] = {
    "{\"type\":\"ByteLevel\",\"add_prefix_space\":true,\"use_regex\":true}",
    "{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"use_regex\":false}",
    "{\"type\":\"Metaspace\",\"replacement\":\"\\u2581\",\"prepend_scheme\":\"first\",\"split\":true}",
    "{\"type\":\"Metaspace\",\"replacement\":\"a\",\"prepend_scheme\":\"always\",\"split\":false}",
    "{\"type\":\"Split\",\"pattern\":{\"Regex\":\"\\\\p{L}+|\\\\s+(?!\\\\S)\"},\"behavior\":\"Isolated\",\"invert\":false}",
    "{\"type\":\"Split\",\"pattern\":{\"String\":\"\"},\"behavior\":\"MergedWithNext\",\"invert\":true}",
    "{\"type\":\"Split\",\"pattern\":{\"Regex\":\"x*\"},\"behavior\":\"MergedWithPrevious\",\"invert\":false}",
    "{\"type\":\"Digits\",\"individual_digits\":true}", "{\"type\":\"Whitespace\"}", "{\"type\":\"WhitespaceSplit\"}",
    "{\"type\":\"Punctuation\",\"behavior\":\"Contiguous\"}", "{\"type\":\"CharDelimiterSplit\",\"delimiter\":\" \"}",
};
static const char *const posts[] = {
    "{\"type\":\"ByteLevel\"}", "{\"type\":\"BertProcessing\",\"cls\":[\"<s>\",0],\"sep\":[\"</s>\",1]}",
    "{\"type\":\"RobertaProcessing\",\"cls\":[\"<s>\",0],\"sep\":[\"</s>\",2147483647]}",
    "{\"type\":\"TemplateProcessing\",\"single\":[{\"SpecialToken\":{\"id\":\"<s>\",\"type_id\":0}},"
    "{\"Sequence\":{\"id\":\"A\",\"type_id\":0}},{\"SpecialToken\":{\"id\":\"<s>\",\"type_id\":0}}],"
    "\"special_tokens\":{\"<s>\":{\"id\":\"<s>\",\"ids\":[0,1,99999],\"tokens\":[\"<s>\"]}}}",
};
static const char *const decoders[] = {
    "{\"type\":\"ByteLevel\"}", "{\"type\":\"ByteFallback\"}", "{\"type\":\"Fuse\"}",
    "{\"type\":\"Strip\",\"content\":\" \",\"start\":1,\"stop\":0}",
    "{\"type\":\"Strip\",\"content\":\"a\",\"start\":0,\"stop\":1000000000}",
    "{\"type\":\"Replace\",\"pattern\":{\"String\":\"\\u2581\"},\"content\":\" \"}",
    "{\"type\":\"Replace\",\"pattern\":{\"String\":\"a\"},\"content\":\"aaaaaaaa\"}",
    "{\"type\":\"Replace\",\"pattern\":{\"Regex\":\"x*\"},\"content\":\"yy\"}",
    "{\"type\":\"Metaspace\",\"replacement\":\"\\u2581\",\"prepend_scheme\":\"always\",\"split\":true}",
    "{\"type\":\"BPEDecoder\",\"suffix\":\"</w>\"}",
};
static const char *const added_items[] = {
    "{\"id\":0,\"content\":\"<s>\",\"special\":true,\"normalized\":false}",
    "{\"id\":1,\"content\":\"a\",\"single_word\":true,\"lstrip\":true,\"rstrip\":true}",
    "{\"id\":5,\"content\":\"ab\",\"normalized\":true}", "{\"id\":6,\"content\":\"aaa\",\"normalized\":false}",
    "{\"id\":7,\"content\":\" \",\"lstrip\":true}", "{\"id\":2147483646,\"content\":\"<|x|>\",\"special\":true}",
    "{\"id\":8,\"content\":\"\"}", "{\"id\":9,\"content\":\"\\u00e9\",\"rstrip\":true,\"special\":false}",
};

typedef struct {
    const char *key;
    const char *const *frags;
    size_t n_frags;
    const char *list;  /* Sequence's member name, or NULL */
} Slot;

static const Slot slots[] = {
    { "\"normalizer\"", normalizers, G_N_ELEMENTS(normalizers), "normalizers" },
    { "\"pre_tokenizer\"", pretokenizers, G_N_ELEMENTS(pretokenizers), "pretokenizers" },
    { "\"post_processor\"", posts, G_N_ELEMENTS(posts), "processors" },
    { "\"decoder\"", decoders, G_N_ELEMENTS(decoders), "decoders" },
    { "\"added_tokens\"", added_items, G_N_ELEMENTS(added_items), NULL },
};

/* End of the JSON value starting at s[i] (one past it), or 0 when it does not end. */
static size_t
value_end(const uint8_t *s, size_t n, size_t i)
{
    int depth = 0;
    bool in_str = false;
    for (size_t k = i; k < n; k++) {
        uint8_t c = s[k];
        if (in_str) {
            if (c == '\\')
                k++;
            else if (c == '"') {
                in_str = false;
                if (depth == 0)
                    return k + 1;
            }
            continue;
        }
        if (c == '"')
            in_str = true;
        else if (c == '{' || c == '[')
            depth++;
        else if (c == '}' || c == ']') {
            if (--depth <= 0)
                return depth == 0 ? k + 1 : 0;
        } else if (depth == 0 && (c == ',' || c == '\n'))
            return k;
    }
    return 0;
}

/* [*vs, *ve) of the value of the occurrence of key (with its quotes) at or
 * after a random point; false when there is none. */
static bool
find_value(const GByteArray *b, const char *key, size_t *vs, size_t *ve)
{
    size_t kl = strlen(key);
    if (b->len < kl + 2)
        return false;
    size_t from = fuzz_below(2) ? 0 : fuzz_below(b->len);
    const uint8_t *hit = NULL;
    for (int pass = 0; pass < 2 && !hit; pass++) {
        size_t start = pass ? 0 : from;
        if (start < b->len)
            hit = memmem(b->data + start, b->len - start, key, kl);
    }
    if (!hit)
        return false;
    size_t i = (size_t)(hit - b->data) + kl;
    while (i < b->len && (b->data[i] == ' ' || b->data[i] == ':'))
        i++;
    if (i >= b->len)
        return false;
    size_t e = value_end(b->data, b->len, i);
    if (!e)
        return false;
    *vs = i;
    *ve = e;
    return true;
}

static void
replace_range(GByteArray *b, size_t s, size_t e, const void *with, size_t n)
{
    g_byte_array_remove_range(b, (guint)s, (guint)(e - s));
    GByteArray *tail = g_byte_array_new();
    g_byte_array_append(tail, b->data + s, b->len - (guint)s);
    g_byte_array_set_size(b, (guint)s);
    g_byte_array_append(b, with, (guint)n);
    g_byte_array_append(b, tail->data, tail->len);
    g_byte_array_unref(tail);
}

/* A random pipeline value for slot: a fragment, a Sequence of several
 * (nested a few levels now and then), or a list of added tokens. */
static void
build_value(const Slot *sl, GString *o, int depth)
{
    if (!sl->list) {
        g_string_append_c(o, '[');
        size_t k = 1 + fuzz_below(4);
        for (size_t i = 0; i < k; i++)
            g_string_append_printf(o, "%s%s", i ? "," : "", sl->frags[fuzz_below(sl->n_frags)]);
        g_string_append_c(o, ']');
        return;
    }
    if (depth < 20 && fuzz_below(3) == 0) {
        g_string_append_printf(o, "{\"type\":\"Sequence\",\"%s\":[", sl->list);
        size_t k = fuzz_below(4);
        for (size_t i = 0; i < k; i++) {
            if (i)
                g_string_append_c(o, ',');
            build_value(sl, o, depth + 1);
        }
        g_string_append(o, "]}");
        return;
    }
    g_string_append(o, sl->frags[fuzz_below(sl->n_frags)]);
}

static bool
restructure(GByteArray *b, GPtrArray *pool)
{
    const Slot *sl = &slots[fuzz_below(G_N_ELEMENTS(slots))];
    size_t vs, ve;
    if (!find_value(b, sl->key, &vs, &ve))
        return false;
    if (fuzz_below(4) == 0 && pool->len) {
        /* The same key's value from another input. */
        GByteArray *other = pool->pdata[fuzz_below(pool->len)];
        size_t os, oe;
        if (!find_value(other, sl->key, &os, &oe))
            return false;
        GByteArray *copy = g_byte_array_new();
        g_byte_array_append(copy, other->data + os, (guint)(oe - os));
        replace_range(b, vs, ve, copy->data, copy->len);
        g_byte_array_unref(copy);
        return true;
    }
    GString *o = g_string_new(NULL);
    if (fuzz_below(8) == 0)
        g_string_append(o, "null");
    else
        build_value(sl, o, 0);
    replace_range(b, vs, ve, o->str, o->len);
    g_string_free(o, TRUE);
    return true;
}

static void
mutate_bytes(GByteArray *b, GPtrArray *pool)
{
    switch (fuzz_below(9)) {
    case 0:  /* bit flip */
        if (b->len)
            b->data[fuzz_below(b->len)] ^= (uint8_t)(1u << fuzz_below(8));
        break;
    case 1: {  /* interesting byte */
        static const uint8_t bytes[] = { 0, '"', '\\', '{', '}', '[', ']', ',', ':', 0x7f, 0x80, 0xc3, 0xe2, 0xf0, 0xff, ' ' };
        if (b->len)
            b->data[fuzz_below(b->len)] = PICK(bytes);
        break;
    }
    case 2:
    case 3: {  /* insert a word */
        const char *w = PICK(words);
        size_t at = fuzz_below(b->len + 1);
        replace_range(b, at, at, w, strlen(w));
        break;
    }
    case 4: {  /* delete a range */
        if (!b->len)
            break;
        size_t s = fuzz_below(b->len), n = 1 + fuzz_below(MIN(b->len - s, 64));
        g_byte_array_remove_range(b, (guint)s, (guint)n);
        break;
    }
    case 5: {  /* duplicate a chunk */
        if (!b->len || b->len > 16384)
            break;
        size_t s = fuzz_below(b->len), n = 1 + fuzz_below(MIN(b->len - s, 256));
        GByteArray *c = g_byte_array_new();
        g_byte_array_append(c, b->data + s, (guint)n);
        size_t at = fuzz_below(b->len + 1);
        replace_range(b, at, at, c->data, c->len);
        g_byte_array_unref(c);
        break;
    }
    case 6: {  /* replace a number */
        for (int tries = 0; tries < 8 && b->len; tries++) {
            size_t i = fuzz_below(b->len);
            if (!g_ascii_isdigit(b->data[i]))
                continue;
            size_t s = i, e = i;
            while (s > 0 && (g_ascii_isdigit(b->data[s - 1]) || b->data[s - 1] == '-'))
                s--;
            while (e < b->len && g_ascii_isdigit(b->data[e]))
                e++;
            const char *num = PICK(interesting_numbers);
            replace_range(b, s, e, num, strlen(num));
            break;
        }
        break;
    }
    case 7: {  /* crossover: a prefix of b, a suffix of another input */
        GByteArray *other = pool->pdata[fuzz_below(pool->len)];
        size_t cut = fuzz_below(b->len + 1), ocut = fuzz_below(other->len + 1);
        g_byte_array_set_size(b, (guint)cut);
        g_byte_array_append(b, other->data + ocut, other->len - (guint)ocut);
        break;
    }
    case 8: {  /* replace a string's contents */
        for (int tries = 0; tries < 8 && b->len; tries++) {
            size_t i = fuzz_below(b->len);
            if (b->data[i] != '"')
                continue;
            size_t e = value_end(b->data, b->len, i);
            if (!e)
                break;
            const char *w = PICK(words);
            replace_range(b, i, e, w, strlen(w));
            break;
        }
        break;
    }
    }
}

GByteArray *
fuzz_mutate(const GByteArray *base, GPtrArray *pool)
{
    GByteArray *b = g_byte_array_sized_new(base->len + 64);
    g_byte_array_append(b, base->data, base->len);
    if (fuzz_below(3) == 0 && restructure(b, pool))
        return b;
    size_t k = 1 + fuzz_below(3);
    for (size_t i = 0; i < k; i++)
        mutate_bytes(b, pool);
    if (b->len > 65536)
        g_byte_array_set_size(b, 65536);
    return b;
}

GByteArray *
fuzz_restructure(const GByteArray *base)
{
    GByteArray *b = g_byte_array_sized_new(base->len + 64);
    g_byte_array_append(b, base->data, base->len);
    GPtrArray *pool = g_ptr_array_new();
    if (!restructure(b, pool)) {
        g_byte_array_unref(b);
        b = NULL;
    }
    g_ptr_array_free(pool, TRUE);
    return b;
}
