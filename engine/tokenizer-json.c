/* tokenizer-json.c — a BPE tokenizer.json's model.vocab and model.merges read
 * straight from the text, without json-glib's tree (Gemma's 262,144 pieces
 * and ~500,000 merges: 2.3 s through the tree, most of it building and
 * freeing nodes). The rest of the file, with those two members renamed
 * away, goes through the strict parser as before, and the tables through
 * hr_tokenizer_load_with_tables, as a GGUF's do.
 *
 * Only the plain shape is taken: a top-level "model" object with "vocab" an
 * object of "piece": id whose ids are 0..n-1 once each, "merges" a list of
 * "a b" strings or ["a", "b"] pairs whose pieces and joins are in the vocab,
 * no continuing_subword_prefix, each member once. Anything else, including
 * every error, returns false and the caller parses the whole text as before,
 * so messages and results of unusual files do not change. */
#include <string.h>

#include "hr-json.h"
#include "tokenizer-private.h"
#include "tokenizer.h"

typedef struct {
    GStringChunk *arena;
    GPtrArray *pieces;      /* piece text by id */
    GArray *lens;           /* uint32_t by id */
    TokStrMap map;          /* over pieces / lens */
    GArray *merges;         /* int32_t[3] */
} Fast;

static size_t
ws(const char *s, size_t n, size_t p)
{
    while (p < n && (s[p] == ' ' || s[p] == '\t' || s[p] == '\n' || s[p] == '\r'))
        p++;
    return p;
}

/* A string at s[*p], decoded into buf, valid UTF-8 without NUL. */
static bool
string_at(const char *s, size_t n, size_t *p, GString *buf)
{
    g_string_truncate(buf, 0);
    return hr_json_scan_string(s, n, p, buf) && g_utf8_validate_len(buf->str, buf->len, NULL) &&
           memchr(buf->str, '\0', buf->len) == NULL;
}

/* Past what follows an item of a list or object closed by `close`: 1 after a comma (another item
 * follows), 0 after the closing bracket, -1 on anything else. */
static int
next_item(const char *s, size_t n, size_t *q, char close)
{
    const size_t p = ws(s, n, *q);
    if (p >= n || (s[p] != ',' && s[p] != close))
        return -1;
    *q = s[p] == ',' ? ws(s, n, p + 1) : p + 1;
    return s[p] == ',';
}

/* One vocab entry "piece": id at s[*q] (the id a plain non-negative integer: [1-9][0-9]* or 0, at most
 * TOK_MAX_ID), its text into buf. */
static bool
vocab_entry(const char *s, size_t n, size_t *q, GString *buf, int32_t *id)
{
    if (!string_at(s, n, q, buf) || (*q = ws(s, n, *q)) >= n || s[*q] != ':')
        return false;
    size_t d = ws(s, n, *q + 1);
    const size_t d0 = d;
    int64_t v = 0;
    while (d < n && s[d] >= '0' && s[d] <= '9' && d - d0 < 11)
        v = v * 10 + (s[d++] - '0');
    if (d == d0 || (s[d0] == '0' && d - d0 > 1) || v > TOK_MAX_ID || (d < n && strchr(" \t\n\r,}", s[d]) == NULL))
        return false;
    *id = (int32_t)v;
    *q = d;
    return true;
}

/* "piece": id, ... } with ids 0..n-1 each once; *p at '{'. */
static bool
read_vocab(Fast *f, const char *s, size_t n, size_t *p)
{
    GString *buf = g_string_new(NULL);
    GArray *ids = g_array_new(FALSE, FALSE, sizeof(int32_t)), *lens = g_array_new(FALSE, FALSE, sizeof(uint32_t));
    GPtrArray *texts = g_ptr_array_new();
    size_t q = ws(s, n, *p + 1);
    int more = q < n && s[q] == '}' ? -1 : 1;   /* (empty: the tree path says so) */
    while (more == 1) {
        int32_t id;
        if (!vocab_entry(s, n, &q, buf, &id)) {
            more = -1;
            break;
        }
        const uint32_t len = (uint32_t)buf->len;
        g_array_append_val(ids, id);
        g_array_append_val(lens, len);
        g_ptr_array_add(texts, g_string_chunk_insert_len(f->arena, buf->str, (gssize)buf->len));
        more = next_item(s, n, &q, '}');
    }
    bool ok = more == 0;
    const guint count = ids->len;
    if (ok) {
        g_ptr_array_set_size(f->pieces, count);
        g_array_set_size(f->lens, count);
        for (guint k = 0; ok && k < count; k++) {
            int32_t id = g_array_index(ids, int32_t, k);
            if ((guint)id >= count || g_ptr_array_index(f->pieces, id)) {
                ok = false;   /* ids not 0..n-1 once each */
                break;
            }
            g_ptr_array_index(f->pieces, id) = g_ptr_array_index(texts, k);
            g_array_index(f->lens, uint32_t, id) = g_array_index(lens, uint32_t, k);
        }
    }
    if (ok && !tok_strmap_init(&f->map, count, (const char *const *)f->pieces->pdata, (const uint32_t *)f->lens->data))
        ok = false;
    for (guint id = 0; ok && id < count; id++) {
        const char *t = g_ptr_array_index(f->pieces, id);
        if (tok_strmap_get(&f->map, t, g_array_index(f->lens, uint32_t, id)) >= 0)
            ok = false;   /* the same piece twice: a duplicate key */
        else
            tok_strmap_insert(&f->map, (int32_t)id, false);
    }
    g_string_free(buf, TRUE);
    g_array_unref(ids);
    g_array_unref(lens);
    g_ptr_array_unref(texts);
    *p = q;
    return ok;
}

/* One merge (a, b) by rank: the ids of a, b and a + b. */
static bool
add_merge(Fast *f, const char *a, size_t al, const char *b, size_t bl, GString *join)
{
    int32_t m[3] = { tok_strmap_get(&f->map, a, al), tok_strmap_get(&f->map, b, bl), -1 };
    g_string_truncate(join, 0);
    g_string_append_len(join, a, (gssize)al);
    g_string_append_len(join, b, (gssize)bl);
    m[2] = tok_strmap_get(&f->map, join->str, join->len);
    if (m[0] < 0 || m[1] < 0 || m[2] < 0)
        return false;
    g_array_append_val(f->merges, m);
    return true;
}

/* One merge at s[*q]: "a b" (exactly one space; "#version" lines skipped, as the tree path does) or
 * ["a", "b"]. */
static bool
merge_entry(Fast *f, const char *s, size_t n, size_t *q, GString *a, GString *b, GString *join)
{
    if (*q < n && s[*q] == '"') {
        if (!string_at(s, n, q, a))
            return false;
        if (g_str_has_prefix(a->str, "#version"))
            return true;
        const char *sp = strchr(a->str, ' ');
        return sp && !strchr(sp + 1, ' ') && add_merge(f, a->str, (size_t)(sp - a->str), sp + 1, strlen(sp + 1), join);
    }
    if (*q >= n || s[*q] != '[')
        return false;
    *q = ws(s, n, *q + 1);
    if (!string_at(s, n, q, a) || (*q = ws(s, n, *q)) >= n || s[*q] != ',')
        return false;
    *q = ws(s, n, *q + 1);
    if (!string_at(s, n, q, b) || (*q = ws(s, n, *q)) >= n || s[*q] != ']')
        return false;
    (*q)++;
    return add_merge(f, a->str, a->len, b->str, b->len, join);
}

/* [ "a b" | ["a", "b"], ... ]; *p at '['. */
static bool
read_merges(Fast *f, const char *s, size_t n, size_t *p)
{
    GString *a = g_string_new(NULL), *b = g_string_new(NULL), *join = g_string_new(NULL);
    size_t q = ws(s, n, *p + 1);
    int more = 1;
    if (q < n && s[q] == ']') {
        q++;
        more = 0;
    }
    while (more == 1)
        more = merge_entry(f, s, n, &q, a, b, join) ? next_item(s, n, &q, ']') : -1;
    g_string_free(a, TRUE);
    g_string_free(b, TRUE);
    g_string_free(join, TRUE);
    *p = q;
    return more == 0;
}

/* The text with model.vocab and model.merges read into f and renamed away in
 * *rest; false when it is not of the plain shape (see the top). */
static bool
split(Fast *f, const char *s, size_t n, GString **rest)
{
    GString *key = g_string_new(NULL);
    size_t p = ws(s, n, 0);
    size_t cut[2][2] = { { 0, 0 }, { 0, 0 } };   /* [key start, value end) of vocab, merges */
    int seen_model = 0;
    bool ok = p < n && s[p] == '{';
    p++;
    while (ok) {
        p = ws(s, n, p);
        if (p < n && s[p] == '}')
            break;
        if (!string_at(s, n, &p, key) || (p = ws(s, n, p)) >= n || s[p] != ':') {
            ok = false;
            break;
        }
        p = ws(s, n, p + 1);
        if (strcmp(key->str, "model") == 0 && p < n && s[p] == '{') {
            if (seen_model++) {
                ok = false;
                break;
            }
            p++;
            for (;;) {
                p = ws(s, n, p);
                if (p < n && s[p] == '}') {
                    p++;
                    break;
                }
                size_t m0 = p;
                if (!string_at(s, n, &p, key) || (p = ws(s, n, p)) >= n || s[p] != ':') {
                    ok = false;
                    break;
                }
                p = ws(s, n, p + 1);
                const int which = strcmp(key->str, "vocab") == 0 ? 0 : strcmp(key->str, "merges") == 0 ? 1 : -1;
                if (which >= 0) {
                    if (cut[which][1] || p >= n || s[p] != (which ? '[' : '{') ||
                        (which == 1 && !cut[0][1]) ||   /* merges after vocab, as every writer has them */
                        !(which ? read_merges(f, s, n, &p) : read_vocab(f, s, n, &p))) {
                        ok = false;
                        break;
                    }
                    cut[which][0] = m0;
                    cut[which][1] = p;
                } else if (strcmp(key->str, "continuing_subword_prefix") == 0 ||
                           strcmp(key->str, "type") == 0) {
                    GString *v = g_string_new(NULL);
                    const bool null = n - p >= 4 && memcmp(s + p, "null", 4) == 0;
                    const bool str = !null && p < n && s[p] == '"' && string_at(s, n, &p, v);
                    if (null)
                        p += 4;
                    /* a prefix changes how merges join; a type other than BPE is the tree path's to refuse */
                    ok = (null || str) && (key->str[0] == 't' ? !null && strcmp(v->str, "BPE") == 0 : !*v->str);
                    g_string_free(v, TRUE);
                    if (!ok)
                        break;
                } else if (!hr_json_skip_value(s, n, &p)) {
                    ok = false;
                    break;
                }
                p = ws(s, n, p);
                if (p < n && s[p] == ',')
                    p++;
            }
        } else if (!hr_json_skip_value(s, n, &p)) {
            ok = false;
        }
        p = ws(s, n, p);
        if (p < n && s[p] == ',')
            p++;
    }
    g_string_free(key, TRUE);
    if (!ok || !cut[0][1] || !cut[1][1])
        return false;
    /* the two members renamed to keys no tokenizer.json has, their values 0 */
    *rest = g_string_sized_new(n - (cut[0][1] - cut[0][0]) - (cut[1][1] - cut[1][0]) + 64);
    g_string_append_len(*rest, s, (gssize)cut[0][0]);
    g_string_append(*rest, "\"hearth:vocab\": 0");
    g_string_append_len(*rest, s + cut[0][1], (gssize)(cut[1][0] - cut[0][1]));
    g_string_append(*rest, "\"hearth:merges\": 0");
    g_string_append_len(*rest, s + cut[1][1], (gssize)(n - cut[1][1]));
    return true;
}

HrStatus
tok_load_json_tables(const char *json, size_t len, const char *config_json, size_t config_len, const char *what,
                     HrTokenizer **out, bool *used_tables, HrError *err)
{
    if (used_tables)
        *used_tables = false;
    Fast f = { g_string_chunk_new(1 << 20), g_ptr_array_new(), g_array_new(FALSE, TRUE, sizeof(uint32_t)), { 0 },
               g_array_new(FALSE, FALSE, sizeof(int32_t[3])) };
    GString *rest = NULL;
    HrStatus st = HR_ERR_FORMAT;
    if (json && split(&f, json, len, &rest)) {
        HrTokenizerTables tables = { f.pieces->len, (const char *const *)f.pieces->pdata, f.merges->len,
                                     (const int32_t(*)[3])(void *)f.merges->data };
        HrError e = { 0 };
        st = hr_tokenizer_load_with_tables(rest->str, rest->len, &tables, config_json, config_len, what, out, &e);
        g_string_free(rest, TRUE);
    }
    tok_strmap_free(&f.map);
    g_string_chunk_free(f.arena);
    g_ptr_array_unref(f.pieces);
    g_array_unref(f.lens);
    g_array_unref(f.merges);
    if (st == HR_OK) {
        if (used_tables)
            *used_tables = true;
        return HR_OK;
    }
    /* anything unusual, every error included: the whole text through the tree, as before */
    return tok_load_tree(json, len, config_json, config_len, what, out, err);
}
