/* fuzz-mutate.c — the safetensors-aware mutations shared by fuzz-driver.c
 * (the bounded meson test) and, as a libFuzzer custom mutator, by
 * tools/fuzz-safetensors (fuzz-custom-mutator.c).
 *
 * Byte-level: bit flips, interesting bytes, inserts, deletes, truncation, JSON
 * fragments spliced in (huge offsets, overflowing shapes, bad escapes, deep
 * nesting), key values replaced, integer tweaks, header-length tweaks,
 * crossover with the pool, header chunks duplicated. The header length field
 * is kept in step with edits most of the time, so mutations reach the JSON
 * and tensor checks instead of all dying at the length.
 *
 * Structure-aware (one in eight): parse the header, give a tensor an
 * edge-case shape (and maybe dtype), and recompute every tensor's
 * data_offsets to agree, so the input gets past the size checks.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <glib.h>
#include <json-glib/json-glib.h>

#include "fuzz-mutate.h"

/* The PRNG is fuzz-rng.c's. */
#define below fuzz_below
#define rng fuzz_rng


/* ------------------------------------------------------------ mutations */

static const char *const fragments[] = {
    "\"data_offsets\":[0,18446744073709551615]",
    "\"data_offsets\":[18446744073709551615,0]",
    "\"data_offsets\":[9223372036854775807,9223372036854775807]",
    "\"data_offsets\":[0,-18446744073709551615]",
    "\"data_offsets\":[0,1.5]",
    "\"data_offsets\":[0]",
    "\"data_offsets\":[0,4,8]",
    "\"data_offsets\":[4,0]",
    "\"data_offsets\":null",
    "\"shape\":[4294967296,4294967296,16]",
    "\"shape\":[9223372036854775807,2]",
    "\"shape\":[-1]",
    "\"shape\":[]",
    "\"shape\":[0]",
    "\"shape\":[1,1,1,1,1,1,1,1,1]",
    "\"shape\":[1e3]",
    "\"shape\":{}",
    "\"dtype\":\"F16\"",
    "\"dtype\":\"BF16\"",
    "\"dtype\":\"BOOL\"",
    "\"dtype\":\"F8_E4M3\"",
    "\"dtype\":\"\"",
    "\"dtype\":7",
    "\"__metadata__\":{\"format\":\"pt\"}",
    "\"__metadata__\":{\"n\":1}",
    "\"__metadata__\":[]",
    "\"t\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}",
    "\"t\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]},",
    "\"e\":{\"dtype\":\"I64\",\"shape\":[0],\"data_offsets\":[0,0]}",
    "{\"dtype\":\"I8\",\"shape\":[2],\"data_offsets\":[0,2]}",
    "\"\\u0000\"",
    "\"\\ud800\"",
    "\"\\udc00\\ud800\"",
    "\"\\ud83d\\ude00\"",
    "\"\\u00\"",
    "\"\\",
    "\"\\x41\"",
    "\"\\101\"",
    "-9223372036854775808",
    "9223372036854775807",
    "18446744073709551616",
    "-0",
    "0x7f",
    "1e309",
    "null",
    "true",
    "false",
    "/* c */",
    "// c\n",
    "var x = ",
    "\xef\xbb\xbf",
    "\xff\xfe",
    "\xc3\x28",
    "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
    "{{{{{{{{{{{{{{{{",
    "]]]]]]]]",
    "}}}}",
    "{", "}", "[", "]", ",", ":", "\"", " ", "\t", "\n", "\\",
};

/* Values that replace the value of a "dtype", "shape" or "data_offsets" key. */
static const char *const keys[] = { "\"dtype\":", "\"shape\":", "\"data_offsets\":", "\"__metadata__\":" };
static const char *const values[] = {
    "\"F32\"", "\"F16\"", "\"BF16\"", "\"I32\"", "\"F64\"", "\"I64\"", "\"I16\"", "\"I8\"", "\"U8\"",
    "\"BOOL\"", "\"F8_E4M3\"", "\"f32\"", "\"\"", "\"F3\\u0032\"", "7", "null", "true", "{}", "[]",
    "[0]", "[1]", "[-1]", "[0,0]", "[0,1]", "[1,0]", "[0,1.5]", "[0.5,1]", "[0,1e2]", "[\"0\",\"4\"]", "[0,4,8]",
    "[[0],[4]]", "[0,18446744073709551615]", "[0,9223372036854775807]", "[9223372036854775807,0]",
    "[4294967296,4294967296,16]", "[2305843009213693952]", "[4611686018427387904,2]",
    "[4611686018427387904,3,0]", "[0,4611686018427387904,4611686018427387904]", "[1,1,1,1,1,1,1,1]",
    "[1,1,1,1,1,1,1,1,1]", "[0,5]", "[65536,65536]", "{\"a\":\"b\"}", "{\"a\":1}", "{\"a\":null}",
    "{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}",
};

static const uint64_t interesting_ints[] = {
    0, 1, 2, 3, 4, 7, 8, 16, 127, 128, 255, 256, 4095, 4096, 65535, 65536,
    0x7fffffffULL, 0x80000000ULL, 0xffffffffULL, 0x100000000ULL,
    0x7fffffffffffffffULL, 0x8000000000000000ULL, 0xffffffffffffffffULL,
    100000000, 100000001,
};

static const uint8_t interesting_bytes[] = {
    0, 1, 0x7f, 0x80, 0xff, '"', '{', '}', '[', ']', ',', ':', '0', '1', '9', '-', '.', 'e', '\\', ' ', 'u',
};

static uint64_t
read_u64le(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static void
write_u64le(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* A position, biased towards the header (where most of the logic is). */
static size_t
pick_pos(const GByteArray *b, uint64_t hlen, bool for_insert)
{
    size_t limit = b->len + (for_insert ? 1 : 0);
    if (limit == 0)
        return 0;
    if (b->len > 8 && hlen <= b->len - 8 && below(4) != 0) {
        size_t lo = 8, hi = 8 + (size_t)hlen + (for_insert ? 1 : 0);
        if (hi > lo)
            return lo + below(hi - lo);
    }
    return below(limit);
}

static void
insert_bytes(GByteArray *b, size_t pos, const void *bytes, size_t n, uint64_t *hlen)
{
    size_t old = b->len;
    g_byte_array_set_size(b, (guint)(old + n));
    memmove(b->data + pos + n, b->data + pos, old - pos);
    memcpy(b->data + pos, bytes, n);
    if (pos >= 8 && pos <= 8 + *hlen)
        *hlen += n;
}

static void
delete_bytes(GByteArray *b, size_t pos, size_t n, uint64_t *hlen)
{
    if (pos >= b->len)
        return;
    if (n > b->len - pos)
        n = b->len - pos;
    if (pos >= 8 && pos < 8 + *hlen) {
        uint64_t in_header = MIN((uint64_t)n, 8 + *hlen - pos);
        *hlen -= in_header;
    }
    g_byte_array_remove_range(b, (guint)pos, (guint)n);
}

/* Find a run of decimal digits at or after a random point; returns its length. */
static size_t
find_number(const GByteArray *b, size_t *start)
{
    if (b->len == 0)
        return 0;
    size_t from = below(b->len);
    for (size_t k = 0; k < b->len; k++) {
        size_t i = (from + k) % b->len;
        if (g_ascii_isdigit(b->data[i]) && (i == 0 || !g_ascii_isdigit(b->data[i - 1]))) {
            size_t j = i;
            while (j < b->len && g_ascii_isdigit(b->data[j]))
                j++;
            *start = i;
            return j - i;
        }
    }
    return 0;
}

/* The end of the JSON value starting at b[i] (a string, a bracketed value
 * with nesting, or a bare word), or i when there is none. */
static size_t
value_end(const GByteArray *b, size_t i)
{
    if (i >= b->len)
        return i;
    if (b->data[i] == '"') {
        for (size_t j = i + 1; j < b->len; j++) {
            if (b->data[j] == '\\')
                j++;
            else if (b->data[j] == '"')
                return j + 1;
        }
        return i;
    }
    if (b->data[i] == '[' || b->data[i] == '{') {
        int depth = 0;
        for (size_t j = i; j < b->len; j++) {
            if (b->data[j] == '[' || b->data[j] == '{')
                depth++;
            else if ((b->data[j] == ']' || b->data[j] == '}') && --depth == 0)
                return j + 1;
        }
        return i;
    }
    size_t j = i;
    while (j < b->len && (g_ascii_isalnum(b->data[j]) || b->data[j] == '-' || b->data[j] == '.'))
        j++;
    return j;
}

/* Replace the value of a random occurrence of a known key. */
static void
replace_value(GByteArray *b, uint64_t *hlen)
{
    const char *key = keys[below(G_N_ELEMENTS(keys))];
    size_t klen = strlen(key);
    size_t hits[64], n_hits = 0;
    for (size_t i = 0; i + klen <= b->len && n_hits < G_N_ELEMENTS(hits); i++)
        if (memcmp(b->data + i, key, klen) == 0)
            hits[n_hits++] = i + klen;
    if (!n_hits)
        return;
    size_t start = hits[below(n_hits)];
    size_t end = value_end(b, start);
    const char *v = values[below(G_N_ELEMENTS(values))];
    delete_bytes(b, start, end - start, hlen);
    insert_bytes(b, start, v, strlen(v), hlen);
}

static void
mutate_once(GByteArray *b, uint64_t *hlen, GPtrArray *pool)
{
    switch (below(13)) {
    case 11:
    case 12:
        replace_value(b, hlen);
        break;
    case 0: /* bit flip */
        if (b->len) {
            size_t p = pick_pos(b, *hlen, false);
            b->data[p] ^= (uint8_t)(1u << below(8));
        }
        break;
    case 1: /* interesting byte */
        if (b->len)
            b->data[pick_pos(b, *hlen, false)] = interesting_bytes[below(sizeof interesting_bytes)];
        break;
    case 2: { /* insert random bytes */
        uint8_t tmp[8];
        size_t n = 1 + below(sizeof tmp);
        for (size_t i = 0; i < n; i++)
            tmp[i] = (uint8_t)rng();
        insert_bytes(b, pick_pos(b, *hlen, true), tmp, n, hlen);
        break;
    }
    case 3: /* delete a range */
        if (b->len)
            delete_bytes(b, pick_pos(b, *hlen, false), 1 + below(below(2) ? 4 : 64), hlen);
        break;
    case 4: /* truncate */
        if (b->len)
            g_byte_array_set_size(b, (guint)below(b->len));
        break;
    case 5:
    case 6: { /* splice a JSON fragment, inserted or overwriting */
        const char *f = fragments[below(G_N_ELEMENTS(fragments))];
        size_t n = strlen(f);
        size_t pos = pick_pos(b, *hlen, true);
        if (below(2))
            delete_bytes(b, pos, below(n + 8), hlen);
        insert_bytes(b, MIN(pos, b->len), f, n, hlen);
        break;
    }
    case 7: { /* integer tweak */
        size_t start, len = find_number(b, &start);
        if (!len)
            break;
        uint64_t v;
        switch (below(4)) {
        case 0: v = interesting_ints[below(G_N_ELEMENTS(interesting_ints))]; break;
        case 1: v = g_ascii_strtoull((const char *)b->data + start, NULL, 10) + 1; break;
        case 2: v = g_ascii_strtoull((const char *)b->data + start, NULL, 10) - 1; break;
        default: v = g_ascii_strtoull((const char *)b->data + start, NULL, 10) * 2; break;
        }
        char num[32];
        snprintf(num, sizeof num, "%" G_GUINT64_FORMAT, v);
        delete_bytes(b, start, len, hlen);
        insert_bytes(b, start, num, strlen(num), hlen);
        break;
    }
    case 8: /* header length tweak (not kept in step afterwards) */
        if (b->len >= 8) {
            uint64_t v;
            switch (below(4)) {
            case 0: v = interesting_ints[below(G_N_ELEMENTS(interesting_ints))]; break;
            case 1: v = *hlen + below(17) - 8; break;
            case 2: v = b->len - 8; break;
            default: v = rng(); break;
            }
            *hlen = v;
            write_u64le(b->data, v);
        }
        break;
    case 9: { /* crossover: a slice of another input */
        const GByteArray *o = pool->pdata[below(pool->len)];
        if (o->len) {
            size_t from = below(o->len), n = 1 + below(MIN(o->len - from, (size_t)256));
            insert_bytes(b, pick_pos(b, *hlen, true), o->data + from, n, hlen);
        }
        break;
    }
    default: /* duplicate a chunk of the header (repeated keys and tensors) */
        if (b->len > 8 && *hlen > 0 && *hlen <= b->len - 8) {
            size_t from = 8 + below((size_t)*hlen), n = 1 + below(MIN((size_t)(8 + *hlen) - from, (size_t)128));
            uint8_t *chunk = g_memdup2(b->data + from, n);
            insert_bytes(b, from + n, chunk, n, hlen);
            g_free(chunk);
        }
        break;
    }
}

/* Structure-aware: parse the header, give one tensor a new shape (edge-case
 * dimensions) and maybe a new dtype, then lay every tensor out again with
 * data_offsets that agree with its shape (in wrapping 64-bit arithmetic), so
 * the result gets past the size checks and exercises what follows them.
 * Returns NULL when the base's header is not a JSON object. */
static const uint64_t dims[] = {
    0, 1, 2, 3, 4, 7, 8, 255, 256, 65536, 0x80000000ULL, 0x100000000ULL, 0x100000001ULL,
    0x2000000000000000ULL, 0x4000000000000000ULL, 0x7fffffffffffffffULL,
};
static const char *const dtype_names[] = { "F32", "F16", "BF16", "I32", "F64", "I64", "I16", "I8", "U8", "BOOL" };
static const unsigned dtype_sizes[] = { 4, 2, 2, 4, 8, 8, 2, 1, 1, 1 };

static unsigned
dtype_size_of(const char *name)
{
    for (size_t i = 0; i < G_N_ELEMENTS(dtype_names); i++)
        if (name && strcmp(name, dtype_names[i]) == 0)
            return dtype_sizes[i];
    return 1;
}

GByteArray *
fuzz_restructure(const GByteArray *base)
{
    if (base->len < 8)
        return NULL;
    uint64_t hlen = read_u64le(base->data);
    if (hlen > base->len - 8 || hlen == 0 || memchr(base->data + 8, 0, (size_t)hlen))
        return NULL;
    JsonParser *parser = json_parser_new();
    char *text = g_strndup((const char *)base->data + 8, (gsize)hlen);
    GByteArray *out = NULL;
    if (!g_utf8_validate(text, -1, NULL) || !json_parser_load_from_data(parser, text, -1, NULL) ||
        !json_parser_get_root(parser) || !JSON_NODE_HOLDS_OBJECT(json_parser_get_root(parser)))
        goto done;
    JsonObject *root = json_node_get_object(json_parser_get_root(parser));
    GList *names = json_object_get_members(root);
    GPtrArray *tensors = g_ptr_array_new();  /* JsonObject * */
    for (GList *l = names; l; l = l->next) {
        JsonNode *n = json_object_get_member(root, l->data);
        if (strcmp(l->data, "__metadata__") != 0 && JSON_NODE_HOLDS_OBJECT(n))
            g_ptr_array_add(tensors, json_node_get_object(n));
    }
    g_list_free(names);
    if (tensors->len) {
        JsonObject *t = tensors->pdata[below(tensors->len)];
        JsonArray *shape = json_array_new();
        size_t nd = below(10);
        for (size_t d = 0; d < nd; d++)
            json_array_add_int_element(shape, (gint64)(below(3) ? dims[below(G_N_ELEMENTS(dims))] : below(5)));
        json_object_set_array_member(t, "shape", shape);
        if (below(4) == 0)
            json_object_set_string_member(t, "dtype", dtype_names[below(G_N_ELEMENTS(dtype_names))]);
    }
    uint64_t cursor = 0;
    for (guint i = 0; i < tensors->len; i++) {
        JsonObject *t = tensors->pdata[i];
        uint64_t size = 1;
        JsonNode *sn = json_object_get_member(t, "shape");
        if (sn && JSON_NODE_HOLDS_ARRAY(sn)) {
            JsonArray *a = json_node_get_array(sn);
            for (guint d = 0; d < json_array_get_length(a); d++) {
                JsonNode *e = json_array_get_element(a, d);
                size *= JSON_NODE_HOLDS_VALUE(e) && json_node_get_value_type(e) == G_TYPE_INT64
                            ? (uint64_t)json_node_get_int(e) : 1;
            }
        }
        JsonNode *dn = json_object_get_member(t, "dtype");
        size *= dtype_size_of(dn && JSON_NODE_HOLDS_VALUE(dn) && json_node_get_value_type(dn) == G_TYPE_STRING
                                  ? json_node_get_string(dn) : NULL);
        JsonArray *offs = json_array_new();
        json_array_add_int_element(offs, (gint64)cursor);
        json_array_add_int_element(offs, (gint64)(cursor + size));
        json_object_set_array_member(t, "data_offsets", offs);
        cursor += size;
    }
    g_ptr_array_free(tensors, TRUE);
    JsonGenerator *gen = json_generator_new();
    json_generator_set_root(gen, json_parser_get_root(parser));
    gsize glen = 0;
    char *json = json_generator_to_data(gen, &glen);
    g_object_unref(gen);
    size_t data_len = cursor <= 1024 ? (size_t)cursor : below(64);
    out = g_byte_array_sized_new((guint)(8 + glen + data_len));
    uint8_t len8[8];
    write_u64le(len8, glen);
    g_byte_array_append(out, len8, 8);
    g_byte_array_append(out, (const guint8 *)json, (guint)glen);
    for (size_t i = 0; i < data_len; i++) {
        uint8_t byte = (uint8_t)i;
        g_byte_array_append(out, &byte, 1);
    }
    g_free(json);
done:
    g_free(text);
    g_object_unref(parser);
    return out;
}

GByteArray *
fuzz_mutate(const GByteArray *base, GPtrArray *pool)
{
    if (below(8) == 0) {
        GByteArray *r = fuzz_restructure(base);
        if (r)
            return r;
    }
    GByteArray *b = g_byte_array_sized_new(base->len + 64);
    g_byte_array_append(b, base->data, base->len);
    uint64_t hlen = b->len >= 8 ? read_u64le(b->data) : 0;
    if (b->len < 8 || hlen > b->len - 8)
        hlen = b->len >= 8 ? b->len - 8 : 0;
    int n = 1 + (int)below(below(4) ? 3 : 8);
    bool resync = below(8) != 0;
    for (int i = 0; i < n; i++)
        mutate_once(b, &hlen, pool);
    if (resync && b->len >= 8 && hlen <= b->len - 8)
        write_u64le(b->data, hlen);
    return b;
}
