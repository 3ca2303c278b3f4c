/* tokenizer-pipeline.c — string helpers, normalizers and pre-tokenizers.
 *
 * Every component mirrors the Rust code of Hugging Face `tokenizers`; the
 * comments note where HF behaves in a surprising way that we copy on purpose.
 */
#include "tokenizer-private.h"

#include <string.h>

#include "hr-json.h"

size_t
tok_growth_limit(size_t len)
{
    const size_t cap = (size_t)G_MAXINT32 - 1;
    if (len >= (cap - ((size_t)1 << 20)) / 64)
        return cap;
    return len * 64 + ((size_t)1 << 20);
}

HrStatus
tok_check_nesting(const char *what, int depth, guint *count, HrError *err)
{
    if (depth > TOK_MAX_NESTING)
        return hr_error_set(err, HR_ERR_FORMAT, "%s: Sequence nested more than %d deep", what, TOK_MAX_NESTING);
    if (count && ++*count > TOK_MAX_COMPONENTS)
        return hr_error_set(err, HR_ERR_FORMAT, "%s: more than %d components", what, TOK_MAX_COMPONENTS);
    return HR_OK;
}

/* ---- hashing and the string map ------------------------------------------------- */

uint64_t
tok_random_seed(void)
{
    /* One random base per process (g_rand_new reads /dev/urandom; GLib's
     * global generator is left alone), then a counter through a mixer. */
    static gsize base_once;
    static uint64_t base;
    static gint counter;
    if (g_once_init_enter(&base_once)) {
        GRand *r = g_rand_new();
        base = ((uint64_t)g_rand_int(r) << 32) | g_rand_int(r);
        g_rand_free(r);
        g_once_init_leave(&base_once, 1);
    }
    uint64_t x = base + (uint64_t)(guint)g_atomic_int_add(&counter, 1) * 0x9e3779b97f4a7c15ULL;
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

uint64_t
tok_hash_bytes(const char *s, size_t n, uint64_t seed)
{
    /* FNV-1a, 64-bit, from a seeded basis, then a final mix. Token strings
     * are short. */
    uint64_t h = 0xcbf29ce484222325ULL ^ seed;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ULL;
    }
    h ^= seed >> 7;
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 32;
    h *= 0x94d049bb133111ebULL;
    h ^= h >> 31;
    return h;
}

bool
tok_strmap_init(TokStrMap *m, size_t expected, const char *const *strs, const uint32_t *lens)
{
    size_t cap = 16;
    if (expected > ((size_t)1 << 30))
        return false;
    while (cap < expected * 2 + 16)
        cap <<= 1;
    m->slots = g_try_new0(uint32_t, cap);
    m->mask = (uint32_t)(cap - 1);
    m->count = 0;
    m->strs = strs;
    m->lens = lens;
    m->seed = tok_random_seed();
    return m->slots != NULL;
}

void
tok_strmap_free(TokStrMap *m)
{
    g_free(m->slots);
    m->slots = NULL;
}

void
tok_strmap_insert(TokStrMap *m, int32_t id, bool replace)
{
    const char *s = m->strs[id];
    size_t n = m->lens[id];
    uint32_t i = (uint32_t)tok_hash_bytes(s, n, m->seed) & m->mask;
    for (;;) {
        uint32_t v = m->slots[i];
        if (v == 0) {
            m->slots[i] = (uint32_t)id + 1;
            m->count++;
            return;
        }
        uint32_t o = v - 1;
        if (m->lens[o] == n && memcmp(m->strs[o], s, n) == 0) {
            if (replace)
                m->slots[i] = (uint32_t)id + 1;
            return;
        }
        i = (i + 1) & m->mask;
    }
}

int32_t
tok_strmap_get(const TokStrMap *m, const char *s, size_t n)
{
    if (!m->slots)
        return -1;
    uint32_t i = (uint32_t)tok_hash_bytes(s, n, m->seed) & m->mask;
    for (;;) {
        uint32_t v = m->slots[i];
        if (v == 0)
            return -1;
        uint32_t o = v - 1;
        if (m->lens[o] == n && memcmp(m->strs[o], s, n) == 0)
            return (int32_t)o;
        i = (i + 1) & m->mask;
    }
}

/* ---- Unicode helpers -------------------------------------------------------------- */

bool
tok_is_white_space(gunichar c)
{
    /* The Unicode White_Space property (Rust char::is_whitespace, Oniguruma \s). */
    if (c <= 0x20)
        return c == 0x20 || (c >= 0x09 && c <= 0x0d);
    switch (c) {
    case 0x85: case 0xa0: case 0x1680: case 0x2028: case 0x2029: case 0x202f: case 0x205f:
    case 0x3000:
        return true;
    default:
        return c >= 0x2000 && c <= 0x200a;
    }
}

bool
tok_is_word_char(gunichar c)
{
    /* Rust regex \w: Alphabetic, M, Nd, Pc, Join_Control. */
    if (c < 0x80)
        return g_ascii_isalnum((char)c) || c == '_';
    if (c == 0x200c || c == 0x200d)
        return true;
    /* Other_Alphabetic symbols: circled and squared Latin letters. */
    if ((c >= 0x24b6 && c <= 0x24e9) || (c >= 0x1f130 && c <= 0x1f149) ||
        (c >= 0x1f150 && c <= 0x1f169) || (c >= 0x1f170 && c <= 0x1f189))
        return true;
    switch (g_unichar_type(c)) {
    case G_UNICODE_UPPERCASE_LETTER: case G_UNICODE_LOWERCASE_LETTER:
    case G_UNICODE_TITLECASE_LETTER: case G_UNICODE_MODIFIER_LETTER:
    case G_UNICODE_OTHER_LETTER: case G_UNICODE_LETTER_NUMBER:
    case G_UNICODE_SPACING_MARK: case G_UNICODE_ENCLOSING_MARK: case G_UNICODE_NON_SPACING_MARK:
    case G_UNICODE_DECIMAL_NUMBER: case G_UNICODE_CONNECT_PUNCTUATION:
        return true;
    default:
        return false;
    }
}

bool
tok_is_numeric(gunichar c)
{
    switch (g_unichar_type(c)) {
    case G_UNICODE_DECIMAL_NUMBER: case G_UNICODE_LETTER_NUMBER: case G_UNICODE_OTHER_NUMBER:
        return true;
    default:
        return false;
    }
}

bool
tok_is_punctuation(gunichar c)
{
    if (c < 0x80)
        return g_ascii_ispunct((char)c);
    switch (g_unichar_type(c)) {
    case G_UNICODE_CONNECT_PUNCTUATION: case G_UNICODE_DASH_PUNCTUATION:
    case G_UNICODE_CLOSE_PUNCTUATION: case G_UNICODE_FINAL_PUNCTUATION:
    case G_UNICODE_INITIAL_PUNCTUATION: case G_UNICODE_OTHER_PUNCTUATION:
    case G_UNICODE_OPEN_PUNCTUATION:
        return true;
    default:
        return false;
    }
}

/* Length of the valid UTF-8 sequence at s (>= 1), or 0 if invalid; *sub is
 * set to the length of the maximal invalid subpart when invalid. */
static size_t
utf8_seq(const unsigned char *s, size_t n, size_t *sub)
{
    unsigned char b = s[0];
    if (b < 0x80)
        return 1;
    size_t need;
    unsigned char lo = 0x80, hi = 0xbf;
    if (b >= 0xc2 && b <= 0xdf)
        need = 1;
    else if (b == 0xe0) {
        need = 2;
        lo = 0xa0;
    } else if ((b >= 0xe1 && b <= 0xec) || b == 0xee || b == 0xef)
        need = 2;
    else if (b == 0xed) {
        need = 2;
        hi = 0x9f;
    } else if (b == 0xf0) {
        need = 3;
        lo = 0x90;
    } else if (b >= 0xf1 && b <= 0xf3)
        need = 3;
    else if (b == 0xf4) {
        need = 3;
        hi = 0x8f;
    } else {
        *sub = 1;
        return 0;
    }
    size_t i = 1;
    for (; i <= need; i++) {
        if (i >= n) {
            *sub = i;
            return 0;
        }
        unsigned char c = s[i];
        unsigned char l = i == 1 ? lo : 0x80, h = i == 1 ? hi : 0xbf;
        if (c < l || c > h) {
            *sub = i;
            return 0;
        }
    }
    return need + 1;
}

void
tok_append_lossy(GString *out, const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, run = 0;
    while (i < n) {
        size_t sub = 0;
        size_t k = utf8_seq(u + i, n - i, &sub);
        if (k) {
            i += k;
            continue;
        }
        g_string_append_len(out, s + run, (gssize)(i - run));
        g_string_append(out, "\xef\xbf\xbd");
        i += sub;
        run = i;
    }
    g_string_append_len(out, s + run, (gssize)(n - run));
}

bool
tok_utf8_valid(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        if (u[i] < 0x80) {
            i++;
            continue;
        }
        size_t sub = 0, k = utf8_seq(u + i, n - i, &sub);
        if (!k)
            return false;
        i += k;
    }
    return true;
}

size_t
tok_utf8_incomplete_tail(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    /* A possibly-valid prefix is at most 3 bytes: look back for its lead byte. */
    for (size_t back = 1; back <= 3 && back <= n; back++) {
        unsigned char b = u[n - back];
        if (b < 0x80)
            return 0;
        if (b >= 0xc0) {
            size_t sub = 0;
            if (utf8_seq(u + n - back, back, &sub) == 0 && sub == back)
                return back;  /* ran out of input while still valid */
            return 0;
        }
    }
    return 0;
}

/* ---- regexes -------------------------------------------------------------------- */

#define WS_CLASS "\\t\\n\\x{0B}\\f\\r \\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}"

/* Oniguruma (what HF uses) and PCRE2 (GRegex) agree on the syntax real
 * tokenizer.json files use, except: PCRE2's \s also matches U+180E, and \h is
 * "horizontal space" in PCRE2 but "hex digit" in Oniguruma. Rewrite those. */
static char *
onig_to_pcre(const char *p)
{
    GString *o = g_string_new(NULL);
    bool in_class = false;
    bool class_start = false;
    for (size_t i = 0; p[i]; i++) {
        char c = p[i];
        if (c == '\\' && p[i + 1]) {
            char e = p[i + 1];
            if (e == 's')
                g_string_append(o, in_class ? WS_CLASS : "[" WS_CLASS "]");
            else if (e == 'S' && !in_class)
                g_string_append(o, "[^" WS_CLASS "]");
            else if (e == 'h')
                g_string_append(o, in_class ? "0-9a-fA-F" : "[0-9a-fA-F]");
            else if (e == 'H' && !in_class)
                g_string_append(o, "[^0-9a-fA-F]");
            else {
                g_string_append_c(o, c);
                g_string_append_c(o, e);
            }
            i++;
            class_start = false;
            continue;
        }
        if (!in_class && c == '[') {
            in_class = true;
            class_start = true;
            g_string_append_c(o, c);
            if (p[i + 1] == '^') {
                g_string_append_c(o, '^');
                i++;
            }
            continue;
        }
        if (in_class && c == ']' && !class_start)
            in_class = false;
        class_start = false;
        g_string_append_c(o, c);
    }
    return g_string_free(o, FALSE);
}

GRegex *
tok_regex_new(const char *pattern, bool literal, GError **error)
{
    g_autofree char *pat = literal ? g_regex_escape_string(pattern, -1) : onig_to_pcre(pattern);
    return g_regex_new(pat, G_REGEX_OPTIMIZE, 0, error);
}

/* (start, end, is_match) spans covering s, as HF's Pattern::find_matches. */
typedef struct {
    uint32_t start, end;
    bool match;
} Span;

static void
regex_spans(const GRegex *re, const char *s, size_t n, GArray *spans)
{
    g_array_set_size(spans, 0);
    if (n == 0) {
        Span sp = { 0, 0, false };
        g_array_append_val(spans, sp);
        return;
    }
    GMatchInfo *mi = NULL;
    uint32_t prev = 0;
    g_regex_match_full(re, s, (gssize)n, 0, 0, &mi, NULL);
    while (g_match_info_matches(mi)) {
        int a, b;
        g_match_info_fetch_pos(mi, 0, &a, &b);
        if (a < 0 || b < a || (uint32_t)a < prev || (size_t)b > n)
            break;  /* (only on invalid UTF-8, which no stage produces) */
        if (prev != (uint32_t)a) {
            Span sp = { prev, (uint32_t)a, false };
            g_array_append_val(spans, sp);
        }
        Span sp = { (uint32_t)a, (uint32_t)b, true };
        g_array_append_val(spans, sp);
        prev = (uint32_t)b;
        if (!g_match_info_next(mi, NULL))
            break;
    }
    g_match_info_free(mi);
    if (prev != n) {
        Span sp = { prev, (uint32_t)n, false };
        g_array_append_val(spans, sp);
    }
}

typedef bool (*CharPred)(gunichar c, const void *data);

static void
char_spans(CharPred pred, const void *data, const char *s, size_t n, GArray *spans)
{
    g_array_set_size(spans, 0);
    if (n == 0) {
        Span sp = { 0, 0, false };
        g_array_append_val(spans, sp);
        return;
    }
    uint32_t last = 0;
    const char *p = s, *end = s + n;
    while (p < end) {
        gunichar c = g_utf8_get_char(p);
        const char *q = g_utf8_next_char(p);
        if (pred(c, data)) {
            uint32_t b = (uint32_t)(p - s);
            if (last < b) {
                Span sp = { last, b, false };
                g_array_append_val(spans, sp);
            }
            Span sp = { b, (uint32_t)(q - s), true };
            g_array_append_val(spans, sp);
            last = (uint32_t)(q - s);
        }
        p = q;
    }
    if (n > last) {
        Span sp = { last, (uint32_t)n, false };
        g_array_append_val(spans, sp);
    }
}

/* Turn spans into (start, end) pieces per HF's SplitDelimiterBehavior;
 * removed spans are dropped. */
static void
apply_behavior(GArray *spans, TokSplitBehavior behavior, GArray *out)
{
    g_array_set_size(out, 0);
    Span *m = (Span *)spans->data;
    guint n = spans->len;
    bool prev_match = false;
    switch (behavior) {
    case SPLIT_ISOLATED:
        for (guint i = 0; i < n; i++) {
            Span sp = { m[i].start, m[i].end, false };
            g_array_append_val(out, sp);
        }
        break;
    case SPLIT_REMOVED:
        for (guint i = 0; i < n; i++)
            if (!m[i].match) {
                Span sp = { m[i].start, m[i].end, false };
                g_array_append_val(out, sp);
            }
        break;
    case SPLIT_CONTIGUOUS:
        for (guint i = 0; i < n; i++) {
            if (m[i].match == prev_match && out->len > 0)
                g_array_index(out, Span, out->len - 1).end = m[i].end;
            else {
                Span sp = { m[i].start, m[i].end, false };
                g_array_append_val(out, sp);
            }
            prev_match = m[i].match;
        }
        break;
    case SPLIT_MERGED_PREV:
        for (guint i = 0; i < n; i++) {
            if (m[i].match && !prev_match && out->len > 0)
                g_array_index(out, Span, out->len - 1).end = m[i].end;
            else {
                Span sp = { m[i].start, m[i].end, false };
                g_array_append_val(out, sp);
            }
            prev_match = m[i].match;
        }
        break;
    case SPLIT_MERGED_NEXT:
        for (guint k = n; k-- > 0;) {
            if (m[k].match && !prev_match && out->len > 0)
                g_array_index(out, Span, out->len - 1).start = m[k].start;
            else {
                Span sp = { m[k].start, m[k].end, false };
                g_array_append_val(out, sp);
            }
            prev_match = m[k].match;
        }
        for (guint a = 0, b = out->len ? out->len - 1 : 0; a < b; a++, b--) {
            Span t = g_array_index(out, Span, a);
            g_array_index(out, Span, a) = g_array_index(out, Span, b);
            g_array_index(out, Span, b) = t;
        }
        break;
    }
}

/* ---- byte-level map -------------------------------------------------------------- */

/* GPT-2's bytes_to_unicode(): printable bytes map to themselves, the others
 * to U+0100 + n in byte order. */
const uint16_t tok_byte_to_char[256] = {
#define R8(a) a, a + 1, a + 2, a + 3, a + 4, a + 5, a + 6, a + 7
    /* 0x00-0x20 -> 0x100-0x120 */
    R8(0x100), R8(0x108), R8(0x110), R8(0x118), 0x120,
    /* 0x21-0x7e -> themselves */
    0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, R8(0x28), R8(0x30), R8(0x38), R8(0x40),
    R8(0x48), R8(0x50), R8(0x58), R8(0x60), R8(0x68), R8(0x70), 0x78, 0x79, 0x7a, 0x7b,
    0x7c, 0x7d, 0x7e,
    /* 0x7f-0xa0 -> 0x121-0x142 */
    0x121, R8(0x122), R8(0x12a), R8(0x132), R8(0x13a), 0x142,
    /* 0xa1-0xac -> themselves */
    0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xab, 0xac,
    /* 0xad -> 0x143 */
    0x143,
    /* 0xae-0xff -> themselves */
    0xae, 0xaf, R8(0xb0), R8(0xb8), R8(0xc0), R8(0xc8), R8(0xd0), R8(0xd8), R8(0xe0),
    R8(0xe8), R8(0xf0), R8(0xf8),
#undef R8
};

int
tok_char_to_byte(gunichar c)
{
    if ((c >= 0x21 && c <= 0x7e) || (c >= 0xa1 && c <= 0xac) || (c >= 0xae && c <= 0xff))
        return (int)c;
    if (c >= 0x100 && c <= 0x120)
        return (int)(c - 0x100);
    if (c >= 0x121 && c <= 0x142)
        return (int)(c - 0x121 + 0x7f);
    if (c == 0x143)
        return 0xad;
    return -1;
}

static void
bytelevel_map(const char *s, size_t n, GString *out)
{
    for (size_t i = 0; i < n; i++) {
        uint16_t c = tok_byte_to_char[(unsigned char)s[i]];
        if (c < 0x80)
            g_string_append_c(out, (char)c);
        else {
            char b[2] = { (char)(0xc0 | (c >> 6)), (char)(0x80 | (c & 0x3f)) };
            g_string_append_len(out, b, 2);
        }
    }
}

/* ---- normalizers ---------------------------------------------------------------- */

void
tok_normalizer_free(TokNormalizer *n)
{
    if (!n)
        return;
    for (guint i = 0; i < n->n_children; i++)
        tok_normalizer_free(n->children[i]);
    g_free(n->children);
    if (n->regex)
        g_regex_unref(n->regex);
    g_free(n->literal);
    g_free(n->content);
    g_free(n);
}

const char *
tok_json_type(JsonObject *o)
{
    return hr_json_string_or(o, "type", NULL);
}

const char *
tok_json_str(JsonObject *o, const char *name)
{
    return hr_json_string_or(o, name, NULL);
}

bool
tok_json_bool(JsonObject *o, const char *name, bool def)
{
    return hr_json_bool_or(o, name, def);
}

HrStatus
tok_json_get_bool(JsonObject *o, const char *name, bool def, bool *out, const char *what, HrError *err)
{
    JsonNode *n = o ? json_object_get_member(o, name) : NULL;
    *out = def;
    if (!n || JSON_NODE_HOLDS_NULL(n))
        return HR_OK;
    if (!JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_BOOLEAN)
        return hr_error_set(err, HR_ERR_FORMAT, "%s: \"%s\" must be true or false", what, name);
    *out = json_node_get_boolean(n);
    return HR_OK;
}

HrStatus
tok_json_get_str(JsonObject *o, const char *name, const char **out, const char *what, HrError *err)
{
    *out = NULL;
    if (!o)
        return HR_OK;
    return hr_json_get_string(o, name, NULL, out, what, err);
}

/* {"String": s} or {"Regex": r}. */
static HrStatus
parse_pattern(JsonObject *o, const char *what, GRegex **regex, char **literal, bool *empty, HrError *err)
{
    JsonNode *pn = json_object_get_member(o, "pattern");
    if (!pn || !JSON_NODE_HOLDS_OBJECT(pn))
        return hr_error_set(err, HR_ERR_FORMAT, "%s: missing \"pattern\" object", what);
    JsonObject *po = json_node_get_object(pn);
    const char *s = NULL, *r = NULL;
    HrStatus st = tok_json_get_str(po, "String", &s, what, err);
    if (st == HR_OK)
        st = tok_json_get_str(po, "Regex", &r, what, err);
    if (st != HR_OK)
        return st;
    if (!s && !r)
        return hr_error_set(err, HR_ERR_FORMAT, "%s: pattern needs \"String\" or \"Regex\"", what);
    if (empty)
        *empty = s && !*s;
    if (s && literal)
        *literal = g_strdup(s);
    if (s && !*s)
        return HR_OK;
    if (s && literal)
        return HR_OK;  /* matched by plain search */
    g_autoptr(GError) gerr = NULL;
    *regex = tok_regex_new(s ? s : r, s != NULL, &gerr);
    if (!*regex)
        return hr_error_set(err, HR_ERR_UNSUPPORTED, "%s: regex /%s/ not supported: %s", what,
                            s ? s : r, gerr->message);
    return HR_OK;
}

HrStatus
tok_parse_normalizer(JsonNode *node, int depth, guint *count, TokNormalizer **out, HrError *err)
{
    *out = NULL;
    if (!node || JSON_NODE_HOLDS_NULL(node))
        return HR_OK;
    HrStatus st = tok_check_nesting("normalizer", depth, count, err);
    if (st != HR_OK)
        return st;
    if (!JSON_NODE_HOLDS_OBJECT(node))
        return hr_error_set(err, HR_ERR_FORMAT, "normalizer is not an object");
    JsonObject *o = json_node_get_object(node);
    const char *type = tok_json_type(o);
    if (!type)
        return hr_error_set(err, HR_ERR_FORMAT, "normalizer without \"type\"");
    TokNormalizer *n = g_new0(TokNormalizer, 1);
    if (strcmp(type, "Sequence") == 0) {
        n->type = NORM_SEQUENCE;
        JsonNode *arr = json_object_get_member(o, "normalizers");
        if (!arr || !JSON_NODE_HOLDS_ARRAY(arr)) {
            st = hr_error_set(err, HR_ERR_FORMAT, "Sequence normalizer without \"normalizers\"");
        } else {
            JsonArray *a = json_node_get_array(arr);
            n->n_children = json_array_get_length(a);
            n->children = g_new0(TokNormalizer *, n->n_children);
            for (guint i = 0; i < n->n_children && st == HR_OK; i++) {
                st = tok_parse_normalizer(json_array_get_element(a, i), depth + 1, count, &n->children[i], err);
                if (st == HR_OK && !n->children[i])
                    st = hr_error_set(err, HR_ERR_FORMAT, "Sequence normalizer: element %u is null", i);
            }
        }
    } else if (strcmp(type, "NFC") == 0) {
        n->type = NORM_NFC;
    } else if (strcmp(type, "NFD") == 0) {
        n->type = NORM_NFD;
    } else if (strcmp(type, "NFKC") == 0) {
        n->type = NORM_NFKC;
    } else if (strcmp(type, "NFKD") == 0) {
        n->type = NORM_NFKD;
    } else if (strcmp(type, "Lowercase") == 0) {
        n->type = NORM_LOWERCASE;
    } else if (strcmp(type, "StripAccents") == 0) {
        n->type = NORM_STRIP_ACCENTS;
    } else if (strcmp(type, "ByteLevel") == 0) {
        n->type = NORM_BYTELEVEL;
    } else if (strcmp(type, "Strip") == 0) {
        n->type = NORM_STRIP;
        st = tok_json_get_bool(o, "strip_left", true, &n->left, "Strip normalizer", err);
        if (st == HR_OK)
            st = tok_json_get_bool(o, "strip_right", true, &n->right, "Strip normalizer", err);
    } else if (strcmp(type, "Prepend") == 0) {
        n->type = NORM_PREPEND;
        const char *p = NULL;
        st = tok_json_get_str(o, "prepend", &p, "Prepend normalizer", err);
        if (st == HR_OK && !p)
            st = hr_error_set(err, HR_ERR_FORMAT, "Prepend normalizer without \"prepend\"");
        n->content = g_strdup(p);
    } else if (strcmp(type, "Replace") == 0) {
        n->type = NORM_REPLACE;
        const char *c = NULL;
        st = tok_json_get_str(o, "content", &c, "Replace normalizer", err);
        if (st == HR_OK && !c)
            st = hr_error_set(err, HR_ERR_FORMAT, "Replace normalizer without \"content\"");
        else if (st == HR_OK) {
            n->content = g_strdup(c);
            st = parse_pattern(o, "Replace normalizer", &n->regex, &n->literal, NULL, err);
        }
    } else {
        st = hr_error_set(err, HR_ERR_UNSUPPORTED, "normalizer type \"%s\" is not supported", type);
    }
    if (st != HR_OK) {
        tok_normalizer_free(n);
        return st;
    }
    *out = n;
    return HR_OK;
}

/* Append s[0..n) unless out would then hold more than limit bytes. */
static inline bool
append_capped(GString *out, const char *s, size_t n, size_t limit)
{
    if (n > limit || out->len > limit - n)
        return false;
    g_string_append_len(out, s, (gssize)n);
    return true;
}

/* Replace all non-overlapping occurrences of a literal (HF escapes it into a
 * regex; leftmost-first non-overlapping search is the same thing). *at0: a
 * match at offset 0. false when out would pass limit. */
static bool
replace_literal(const char *s, size_t n, const char *lit, const char *content, GString *out, size_t limit,
                bool *at0)
{
    size_t ln = strlen(lit), cl = strlen(content);
    *at0 = false;
    if (ln == 0)
        return append_capped(out, s, n, limit);
    size_t i = 0;
    while (i < n) {
        const char *hit = ln <= n - i ? memmem(s + i, n - i, lit, ln) : NULL;
        if (!hit)
            return append_capped(out, s + i, n - i, limit);
        if (hit == s)
            *at0 = true;
        if (!append_capped(out, s + i, (size_t)(hit - (s + i)), limit) || !append_capped(out, content, cl, limit))
            return false;
        i = (size_t)(hit - s) + ln;
    }
    return true;
}

static bool
replace_regex(const GRegex *re, const char *s, size_t n, const char *content, GString *out, size_t limit,
              bool *at0)
{
    g_autoptr(GArray) spans = g_array_new(FALSE, FALSE, sizeof(Span));
    regex_spans(re, s, n, spans);
    size_t cl = strlen(content);
    *at0 = false;
    for (guint i = 0; i < spans->len; i++) {
        Span *sp = &g_array_index(spans, Span, i);
        if (sp->match) {
            if (!append_capped(out, content, cl, limit))
                return false;
            if (sp->start == 0 && sp->end > 0)
                *at0 = true;
        } else if (!append_capped(out, s + sp->start, sp->end - sp->start, limit)) {
            return false;
        }
    }
    return true;
}

static bool
normalize_into(const TokNormalizer *n, const char *s, size_t len, GString *out, bool *origin, size_t limit)
{
    switch (n->type) {
    case NORM_SEQUENCE: {
        GString *a = g_string_new_len(s, (gssize)len);
        GString *b = g_string_new(NULL);
        bool ok = true;
        for (guint i = 0; i < n->n_children && ok; i++) {
            g_string_truncate(b, 0);
            ok = normalize_into(n->children[i], a->str, a->len, b, origin, limit);
            GString *t = a;
            a = b;
            b = t;
        }
        ok = ok && append_capped(out, a->str, a->len, limit);
        g_string_free(a, TRUE);
        g_string_free(b, TRUE);
        return ok;
    }
    case NORM_NFC: case NORM_NFD: case NORM_NFKC: case NORM_NFKD: {
        static const GNormalizeMode modes[] = {
            [NORM_NFC] = G_NORMALIZE_NFC, [NORM_NFD] = G_NORMALIZE_NFD,
            [NORM_NFKC] = G_NORMALIZE_NFKC, [NORM_NFKD] = G_NORMALIZE_NFKD,
        };
        /* ASCII is invariant under every normalization form, and no ASCII
         * character composes with or reorders around what precedes it, so
         * the text can be normalized piecewise: each non-ASCII run together
         * with the one ASCII character before it (which may compose with
         * following marks). g_utf8_normalize is slow on long inputs. */
        size_t i = 0;
        while (i < len) {
            size_t j = i;
            while (j < len && (unsigned char)s[j] < 0x80)
                j++;
            if (j == len)
                return append_capped(out, s + i, len - i, limit);
            /* (NUL composes with nothing, and g_utf8_normalize stops at it.) */
            size_t start = j > i && s[j - 1] != '\0' ? j - 1 : j;
            if (!append_capped(out, s + i, start - i, limit))
                return false;
            size_t k = j;
            while (k < len && (unsigned char)s[k] >= 0x80)
                k++;
            char *r = g_utf8_normalize(s + start, (gssize)(k - start), modes[n->type]);
            bool ok = r ? append_capped(out, r, strlen(r), limit) : append_capped(out, s + start, k - start, limit);
            g_free(r);
            if (!ok)
                return false;
            i = k;
        }
        return true;
    }
    case NORM_LOWERCASE:
        for (const char *p = s; p < s + len; p = g_utf8_next_char(p)) {
            if (out->len > limit)
                return false;
            gunichar c = g_utf8_get_char(p);
            if (c == 0x130) {  /* İ lowercases to i + U+0307 (Rust's full mapping) */
                g_string_append(out, "i\xcc\x87");
                continue;
            }
            g_string_append_unichar(out, g_unichar_tolower(c));
        }
        return out->len <= limit;
    case NORM_STRIP_ACCENTS:
        for (const char *p = s; p < s + len; p = g_utf8_next_char(p)) {
            gunichar c = g_utf8_get_char(p);
            if (!g_unichar_ismark(c))
                g_string_append_unichar(out, c);
        }
        return out->len <= limit;
    case NORM_BYTELEVEL:
        if (len > limit / 2 || out->len > limit - 2 * len)
            return false;
        bytelevel_map(s, len, out);
        return true;
    case NORM_STRIP: {
        const char *a = s, *b = s + len;
        if (n->left)
            while (a < b && tok_is_white_space(g_utf8_get_char(a)))
                a = g_utf8_next_char(a);
        if (n->right)
            while (b > a) {
                const char *q = g_utf8_prev_char(b);
                if (!tok_is_white_space(g_utf8_get_char(q)))
                    break;
                b = q;
            }
        if (a != s && origin)
            *origin = false;
        return append_capped(out, a, (size_t)(b - a), limit);
    }
    case NORM_PREPEND:
        if (len > 0 && !append_capped(out, n->content, strlen(n->content), limit))
            return false;
        return append_capped(out, s, len, limit);
    case NORM_REPLACE: {
        bool at0 = false;
        bool ok = n->regex ? replace_regex(n->regex, s, len, n->content, out, limit, &at0)
                           : replace_literal(s, len, n->literal, n->content, out, limit, &at0);
        /* Deleting the first characters moves the start of the alignment. */
        if (at0 && !*n->content && origin)
            *origin = false;
        return ok;
    }
    }
    return true;
}

bool
tok_normalize(const TokNormalizer *n, const char *s, size_t len, GString *out, bool *origin, size_t limit)
{
    if (!n)
        return append_capped(out, s, len, limit);
    return normalize_into(n, s, len, out, origin, limit);
}

/* ---- pieces ---------------------------------------------------------------------- */

void
tok_pieces_init(TokPieces *p)
{
    p->buf = g_string_sized_new(256);
    p->pieces = g_array_sized_new(FALSE, FALSE, sizeof(TokPiece), 64);
}

void
tok_pieces_clear(TokPieces *p)
{
    g_string_truncate(p->buf, 0);
    g_array_set_size(p->pieces, 0);
}

void
tok_pieces_free(TokPieces *p)
{
    if (p->buf)
        g_string_free(p->buf, TRUE);
    if (p->pieces)
        g_array_free(p->pieces, TRUE);
    p->buf = NULL;
    p->pieces = NULL;
}

void
tok_pieces_add_text(TokPieces *p, const char *s, size_t n, bool origin)
{
    if (n == 0)
        return;  /* HF drops empty splits */
    TokPiece pc = { (uint32_t)p->buf->len, (uint32_t)n, -1, origin };
    g_string_append_len(p->buf, s, (gssize)n);
    g_string_append_c(p->buf, '\0');
    g_array_append_val(p->pieces, pc);
}

void
tok_pieces_add_token(TokPieces *p, int32_t id)
{
    TokPiece pc = { (uint32_t)p->buf->len, 0, id, false };
    g_array_append_val(p->pieces, pc);
}

/* Add a piece whose text is being built at the end of p->buf from `start`. */
static void
pieces_commit(TokPieces *p, gsize start, bool origin)
{
    if (p->buf->len == start)
        return;
    TokPiece pc = { (uint32_t)start, (uint32_t)(p->buf->len - start), -1, origin };
    g_string_append_c(p->buf, '\0');
    g_array_append_val(p->pieces, pc);
}

/* ---- pre-tokenizers ------------------------------------------------------------ */

void
tok_pretokenizer_free(TokPreTokenizer *p)
{
    if (!p)
        return;
    for (guint i = 0; i < p->n_children; i++)
        tok_pretokenizer_free(p->children[i]);
    g_free(p->children);
    if (p->regex)
        g_regex_unref(p->regex);
    g_free(p);
}

static HrStatus
parse_behavior(JsonObject *o, TokSplitBehavior *b, HrError *err)
{
    const char *s = NULL;
    HrStatus st = tok_json_get_str(o, "behavior", &s, "pre-tokenizer", err);
    if (st != HR_OK)
        return st;
    if (!s)
        return hr_error_set(err, HR_ERR_FORMAT, "Split pre-tokenizer without \"behavior\"");
    static const struct { const char *name; TokSplitBehavior b; } names[] = {
        { "Removed", SPLIT_REMOVED }, { "Isolated", SPLIT_ISOLATED },
        { "MergedWithPrevious", SPLIT_MERGED_PREV }, { "MergedWithNext", SPLIT_MERGED_NEXT },
        { "Contiguous", SPLIT_CONTIGUOUS },
    };
    for (size_t i = 0; i < G_N_ELEMENTS(names); i++)
        if (g_ascii_strcasecmp(s, names[i].name) == 0) {
            *b = names[i].b;
            return HR_OK;
        }
    return hr_error_set(err, HR_ERR_FORMAT, "unknown split behavior \"%s\"", s);
}

static HrStatus
parse_prepend_scheme(JsonObject *o, TokPrependScheme *s, HrError *err)
{
    const char *v = NULL;
    bool add = true;
    HrStatus st = tok_json_get_str(o, "prepend_scheme", &v, "Metaspace", err);
    if (st == HR_OK)
        st = tok_json_get_bool(o, "add_prefix_space", true, &add, "Metaspace", err);
    if (st != HR_OK)
        return st;
    *s = PREPEND_ALWAYS;
    if (v) {
        if (strcmp(v, "always") == 0)
            *s = PREPEND_ALWAYS;
        else if (strcmp(v, "first") == 0)
            *s = PREPEND_FIRST;
        else if (strcmp(v, "never") == 0)
            *s = PREPEND_NEVER;
        else
            return hr_error_set(err, HR_ERR_FORMAT, "Metaspace: unknown prepend_scheme \"%s\"", v);
    }
    if (!add) {
        if (v && *s != PREPEND_NEVER)
            return hr_error_set(err, HR_ERR_FORMAT,
                                "Metaspace: add_prefix_space does not match declared prepend_scheme");
        *s = PREPEND_NEVER;
    }
    return HR_OK;
}

HrStatus
tok_parse_metaspace(JsonObject *o, char replacement[8], gunichar *rc, TokPrependScheme *scheme, HrError *err)
{
    const char *r = NULL;
    HrStatus st = tok_json_get_str(o, "replacement", &r, "Metaspace", err);
    if (st != HR_OK)
        return st;
    if (!r || !*r || g_utf8_strlen(r, -1) != 1)
        return hr_error_set(err, HR_ERR_FORMAT, "Metaspace: \"replacement\" must be one character");
    g_strlcpy(replacement, r, 8);
    *rc = g_utf8_get_char(r);
    return parse_prepend_scheme(o, scheme, err);
}

static const char GPT2_REGEX[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

HrStatus
tok_parse_pretokenizer(JsonNode *node, int depth, guint *count, TokPreTokenizer **out, HrError *err)
{
    *out = NULL;
    if (!node || JSON_NODE_HOLDS_NULL(node))
        return HR_OK;
    HrStatus st = tok_check_nesting("pre_tokenizer", depth, count, err);
    if (st != HR_OK)
        return st;
    if (!JSON_NODE_HOLDS_OBJECT(node))
        return hr_error_set(err, HR_ERR_FORMAT, "pre_tokenizer is not an object");
    JsonObject *o = json_node_get_object(node);
    const char *type = tok_json_type(o);
    if (!type)
        return hr_error_set(err, HR_ERR_FORMAT, "pre_tokenizer without \"type\"");
    TokPreTokenizer *p = g_new0(TokPreTokenizer, 1);
    g_autoptr(GError) gerr = NULL;
    if (strcmp(type, "Sequence") == 0) {
        p->type = PRE_SEQUENCE;
        JsonNode *arr = json_object_get_member(o, "pretokenizers");
        if (!arr || !JSON_NODE_HOLDS_ARRAY(arr)) {
            st = hr_error_set(err, HR_ERR_FORMAT, "Sequence pre-tokenizer without \"pretokenizers\"");
        } else {
            JsonArray *a = json_node_get_array(arr);
            p->n_children = json_array_get_length(a);
            p->children = g_new0(TokPreTokenizer *, p->n_children);
            for (guint i = 0; i < p->n_children && st == HR_OK; i++) {
                st = tok_parse_pretokenizer(json_array_get_element(a, i), depth + 1, count, &p->children[i], err);
                if (st == HR_OK && !p->children[i])
                    st = hr_error_set(err, HR_ERR_FORMAT, "Sequence pre-tokenizer: element %u is null", i);
            }
        }
    } else if (strcmp(type, "Split") == 0) {
        p->type = PRE_SPLIT;
        st = tok_json_get_bool(o, "invert", false, &p->invert, "Split pre-tokenizer", err);
        if (st == HR_OK)
            st = parse_behavior(o, &p->behavior, err);
        if (st == HR_OK)
            st = parse_pattern(o, "Split pre-tokenizer", &p->regex, NULL, &p->empty_literal, err);
    } else if (strcmp(type, "ByteLevel") == 0) {
        p->type = PRE_BYTELEVEL;
        st = tok_json_get_bool(o, "add_prefix_space", true, &p->add_prefix_space, "ByteLevel pre-tokenizer", err);
        if (st == HR_OK)
            st = tok_json_get_bool(o, "use_regex", true, &p->use_regex, "ByteLevel pre-tokenizer", err);
        if (st == HR_OK && p->use_regex) {
            p->regex = tok_regex_new(GPT2_REGEX, false, &gerr);
            if (!p->regex)
                st = hr_error_set(err, HR_ERR_UNSUPPORTED, "ByteLevel regex: %s", gerr->message);
        }
    } else if (strcmp(type, "Metaspace") == 0) {
        p->type = PRE_METASPACE;
        st = tok_json_get_bool(o, "split", true, &p->split, "Metaspace pre-tokenizer", err);
        if (st == HR_OK)
            st = tok_parse_metaspace(o, p->replacement, &p->replacement_char, &p->prepend_scheme, err);
    } else if (strcmp(type, "Digits") == 0) {
        p->type = PRE_DIGITS;
        st = tok_json_get_bool(o, "individual_digits", false, &p->individual_digits, "Digits pre-tokenizer", err);
    } else if (strcmp(type, "Whitespace") == 0) {
        p->type = PRE_WHITESPACE;
    } else if (strcmp(type, "WhitespaceSplit") == 0) {
        p->type = PRE_WHITESPACE_SPLIT;
    } else if (strcmp(type, "Punctuation") == 0) {
        p->type = PRE_PUNCTUATION;
        p->behavior = SPLIT_ISOLATED;
        if (json_object_has_member(o, "behavior"))
            st = parse_behavior(o, &p->behavior, err);
    } else if (strcmp(type, "CharDelimiterSplit") == 0) {
        p->type = PRE_CHAR_DELIMITER;
        const char *d = NULL;
        st = tok_json_get_str(o, "delimiter", &d, "CharDelimiterSplit", err);
        if (st == HR_OK && (!d || !*d))
            st = hr_error_set(err, HR_ERR_FORMAT, "CharDelimiterSplit without \"delimiter\"");
        else if (st == HR_OK)
            p->delimiter = g_utf8_get_char(d);
    } else {
        st = hr_error_set(err, HR_ERR_UNSUPPORTED, "pre-tokenizer type \"%s\" is not supported", type);
    }
    if (st != HR_OK) {
        tok_pretokenizer_free(p);
        return st;
    }
    *out = p;
    return HR_OK;
}

static bool
pred_numeric(gunichar c, const void *data)
{
    (void)data;
    return tok_is_numeric(c);
}

static bool
pred_white(gunichar c, const void *data)
{
    (void)data;
    return tok_is_white_space(c);
}

static bool
pred_punct(gunichar c, const void *data)
{
    (void)data;
    return tok_is_punctuation(c);
}

static bool
pred_char(gunichar c, const void *data)
{
    return c == *(const gunichar *)data;
}

/* Split one text piece by spans + behavior into out. */
static void
emit_spans(const char *s, GArray *pieces_spans, bool origin, TokPieces *out)
{
    for (guint i = 0; i < pieces_spans->len; i++) {
        Span *sp = &g_array_index(pieces_spans, Span, i);
        /* Only a sub-piece starting at offset 0 of an origin piece keeps the origin. */
        tok_pieces_add_text(out, s + sp->start, sp->end - sp->start, origin && sp->start == 0);
    }
}

static void
pretokenize_piece(const TokPreTokenizer *pre, const char *s, size_t n, bool origin, TokPieces *out,
                  GArray *spans, GArray *parts)
{
    switch (pre->type) {
    case PRE_SEQUENCE:
        g_assert_not_reached();
        return;
    case PRE_SPLIT:
        if (pre->empty_literal) {
            /* HF: an empty String pattern yields one non-match span (0, char count). */
            g_array_set_size(spans, 0);
            Span sp = { 0, (uint32_t)g_utf8_strlen(s, (gssize)n), pre->invert };
            if (sp.end > n)
                sp.end = (uint32_t)n;
            /* (A char count used as a byte offset: never cut a character in
             * two, or the next stage would see invalid UTF-8.) */
            while (sp.end > 0 && sp.end < n && ((unsigned char)s[sp.end] & 0xc0) == 0x80)
                sp.end--;
            g_array_append_val(spans, sp);
        } else {
            regex_spans(pre->regex, s, n, spans);
            if (pre->invert)
                for (guint i = 0; i < spans->len; i++)
                    g_array_index(spans, Span, i).match = !g_array_index(spans, Span, i).match;
        }
        apply_behavior(spans, pre->behavior, parts);
        emit_spans(s, parts, origin, out);
        return;
    case PRE_WHITESPACE: {
        /* HF: Rust regex \w+|[^\w\s]+, keeping the matches. */
        const char *p = s, *end = s + n;
        while (p < end) {
            gunichar c = g_utf8_get_char(p);
            if (tok_is_white_space(c)) {
                p = g_utf8_next_char(p);
                continue;
            }
            bool word = tok_is_word_char(c);
            const char *q = p;
            while (q < end) {
                gunichar d = g_utf8_get_char(q);
                if (word ? !tok_is_word_char(d) : (tok_is_word_char(d) || tok_is_white_space(d)))
                    break;
                q = g_utf8_next_char(q);
            }
            tok_pieces_add_text(out, p, (size_t)(q - p), origin && p == s);
            p = q;
        }
        return;
    }
    case PRE_WHITESPACE_SPLIT:
        char_spans(pred_white, NULL, s, n, spans);
        apply_behavior(spans, SPLIT_REMOVED, parts);
        emit_spans(s, parts, origin, out);
        return;
    case PRE_PUNCTUATION:
        char_spans(pred_punct, NULL, s, n, spans);
        apply_behavior(spans, pre->behavior, parts);
        emit_spans(s, parts, origin, out);
        return;
    case PRE_CHAR_DELIMITER:
        char_spans(pred_char, &pre->delimiter, s, n, spans);
        apply_behavior(spans, SPLIT_REMOVED, parts);
        emit_spans(s, parts, origin, out);
        return;
    case PRE_DIGITS:
        char_spans(pred_numeric, NULL, s, n, spans);
        apply_behavior(spans, pre->individual_digits ? SPLIT_ISOLATED : SPLIT_CONTIGUOUS, parts);
        emit_spans(s, parts, origin, out);
        return;
    case PRE_BYTELEVEL: {
        g_autoptr(GString) tmp = NULL;
        if (pre->add_prefix_space && s[0] != ' ') {
            tmp = g_string_sized_new(n + 1);
            g_string_append_c(tmp, ' ');
            g_string_append_len(tmp, s, (gssize)n);
            s = tmp->str;
            n = tmp->len;
        }
        if (pre->use_regex) {
            regex_spans(pre->regex, s, n, spans);
            apply_behavior(spans, SPLIT_ISOLATED, parts);
        } else {
            g_array_set_size(parts, 0);
            Span sp = { 0, (uint32_t)n, false };
            g_array_append_val(parts, sp);
        }
        for (guint i = 0; i < parts->len; i++) {
            Span *sp = &g_array_index(parts, Span, i);
            gsize start = out->buf->len;
            bytelevel_map(s + sp->start, sp->end - sp->start, out->buf);
            pieces_commit(out, start, origin && sp->start == 0);
        }
        return;
    }
    case PRE_METASPACE: {
        GString *t = g_string_sized_new(n + 8);
        bool at0;
        replace_literal(s, n, " ", pre->replacement, t, SIZE_MAX, &at0);
        bool starts = g_str_has_prefix(t->str, pre->replacement);
        if (!starts && (pre->prepend_scheme == PREPEND_ALWAYS ||
                        (pre->prepend_scheme == PREPEND_FIRST && origin)))
            g_string_prepend(t, pre->replacement);
        if (pre->split) {
            char_spans(pred_char, &pre->replacement_char, t->str, t->len, spans);
            apply_behavior(spans, SPLIT_MERGED_NEXT, parts);
            emit_spans(t->str, parts, origin, out);
        } else {
            tok_pieces_add_text(out, t->str, t->len, origin);
        }
        g_string_free(t, TRUE);
        return;
    }
    }
}

bool
tok_pretokenize(const TokPreTokenizer *pre, TokPieces *in, TokPieces *out, size_t limit)
{
    tok_pieces_clear(out);
    if (!pre) {
        /* No pre-tokenizer: pieces pass through. */
        GString *b = in->buf;
        GArray *a = in->pieces;
        in->buf = out->buf;
        in->pieces = out->pieces;
        out->buf = b;
        out->pieces = a;
        tok_pieces_clear(in);
        return true;
    }
    if (pre->type == PRE_SEQUENCE) {
        TokPieces tmp;
        tok_pieces_init(&tmp);
        TokPieces *cur = in, *next = &tmp;
        bool ok = true;
        for (guint i = 0; i < pre->n_children && ok; i++) {
            ok = tok_pretokenize(pre->children[i], cur, next, limit);
            TokPieces *x = cur;
            cur = next;
            next = x;
        }
        /* The result is in `cur`; move it to out. */
        if (cur != out) {
            tok_pieces_clear(out);
            GString *b = cur->buf;
            GArray *a = cur->pieces;
            cur->buf = out->buf;
            cur->pieces = out->pieces;
            out->buf = b;
            out->pieces = a;
        }
        tok_pieces_clear(in);
        tok_pieces_free(&tmp);
        return ok;
    }
    GArray *spans = g_array_new(FALSE, FALSE, sizeof(Span));
    GArray *parts = g_array_new(FALSE, FALSE, sizeof(Span));
    bool ok = true;
    for (guint i = 0; i < in->pieces->len && ok; i++) {
        TokPiece *pc = &g_array_index(in->pieces, TokPiece, i);
        if (pc->id >= 0) {
            tok_pieces_add_token(out, pc->id);
            continue;
        }
        /* A piece grows at most 4x + 8 here (Metaspace: " " -> a 4-byte
         * replacement, ByteLevel: 2x), so checking after each is enough. */
        pretokenize_piece(pre, in->buf->str + pc->off, pc->len, pc->origin, out, spans, parts);
        ok = out->buf->len <= limit;
    }
    g_array_free(spans, TRUE);
    g_array_free(parts, TRUE);
    tok_pieces_clear(in);
    return ok;
}
