/* hr-json.c — the one strict JSON entry point for everything Hearth reads.
 *
 * json-glib 1.6 is lenient and has rough edges on odd input: it accepts
 * comments, hex and octal numbers, "var x = ...", octal string escapes; wraps
 * integers past 2^64; mishandles lone UTF-16 surrogates; recurses without a
 * depth limit (a file nested 100k deep overflows the stack); keeps the last of
 * duplicate keys after a linear search (quadratic on hostile input). The
 * pre-check here rejects all of that, so json-glib only ever sees strict JSON
 * whose integers fit in int64, at most HR_JSON_MAX_DEPTH levels deep, with no
 * duplicate keys in any object. json-glib then builds the tree.
 *
 * Model files (config.json, generation_config.json, tokenizer*.json, the
 * safetensors header and index), the app's own JSON and hub replies all come
 * through here; files are read with hr_json_read_file (regular files only,
 * bounded size, so a FIFO or /dev/zero cannot block or fill memory).
 */
#include "hr-json.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib/gstdio.h>


typedef struct {
    bool is_object;
    bool expect_key;     /* the next string in this object is a member name */
    GHashTable *keys;    /* member names seen so far (created on the first) */
} JsonFrame;

static bool
read_hex4(const char *s, size_t n, size_t i, unsigned *out)
{
    if (n - i < 4)
        return false;
    unsigned v = 0;
    for (int k = 0; k < 4; k++) {
        int h = g_ascii_xdigit_value(s[i + k]);
        if (h < 0)
            return false;
        v = v * 16 + (unsigned)h;
    }
    *out = v;
    return true;
}

/* Scan the string starting at s[*i] == '"'; on success *i is past the closing
 * quote and, if out is non-NULL, it holds the decoded text. */
static bool
scan_string(const char *s, size_t n, size_t *i, GString *out, char *why, size_t why_len)
{
    size_t start = *i;
    size_t p = start + 1;
    for (;;) {
        if (p >= n) {
            g_snprintf(why, why_len, "unterminated string starting at byte %zu", start);
            return false;
        }
        unsigned char c = (unsigned char)s[p];
        if (c == '"')
            break;
        if (c < 0x20) {
            g_snprintf(why, why_len, "control character 0x%02x inside a string at byte %zu", c, p);
            return false;
        }
        if (c != '\\') {
            if (out)
                g_string_append_c(out, (char)c);
            p++;
            continue;
        }
        if (p + 1 >= n) {
            g_snprintf(why, why_len, "unterminated string starting at byte %zu", start);
            return false;
        }
        char e = s[p + 1];
        const char *simple = strchr("\"\\/bfnrt", e);
        if (e != '\0' && simple) {
            static const char decoded[] = "\"\\/\b\f\n\r\t";
            if (out)
                g_string_append_c(out, decoded[simple - "\"\\/bfnrt"]);
            p += 2;
            continue;
        }
        if (e != 'u') {
            g_snprintf(why, why_len, "invalid escape '\\%c' at byte %zu",
                       g_ascii_isprint(e) ? e : '?', p);
            return false;
        }
        unsigned u;
        if (!read_hex4(s, n, p + 2, &u)) {
            g_snprintf(why, why_len, "invalid \\u escape at byte %zu", p);
            return false;
        }
        size_t used = 6;
        gunichar ch = u;
        if (u == 0) {
            g_snprintf(why, why_len, "\\u0000 inside a string at byte %zu", p);
            return false;
        }
        if (u >= 0xdc00 && u <= 0xdfff) {
            g_snprintf(why, why_len, "unpaired UTF-16 surrogate \\u%04x at byte %zu", u, p);
            return false;
        }
        if (u >= 0xd800 && u <= 0xdbff) {
            unsigned lo;
            if (n - p < 12 || s[p + 6] != '\\' || s[p + 7] != 'u' || !read_hex4(s, n, p + 8, &lo) ||
                lo < 0xdc00 || lo > 0xdfff) {
                g_snprintf(why, why_len, "unpaired UTF-16 surrogate \\u%04x at byte %zu", u, p);
                return false;
            }
            ch = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
            used = 12;
        }
        if (out)
            g_string_append_unichar(out, ch);
        p += used;
    }
    *i = p + 1;
    return true;
}

bool
hr_json_scan_string(const char *s, size_t n, size_t *i, GString *out)
{
    char why[8];
    return *i < n && s[*i] == '"' && scan_string(s, n, i, out, why, sizeof why);
}

bool
hr_json_skip_value(const char *s, size_t n, size_t *i)
{
    size_t p = *i;
    int depth = 0;
    do {
        while (p < n && (s[p] == ' ' || s[p] == '\t' || s[p] == '\n' || s[p] == '\r' || s[p] == ',' || s[p] == ':'))
            p++;
        if (p >= n)
            return false;
        if (s[p] == '"') {
            if (!hr_json_scan_string(s, n, &p, NULL))
                return false;
        } else if (s[p] == '{' || s[p] == '[') {
            if (++depth > HR_JSON_MAX_DEPTH)
                return false;
            p++;
        } else if (s[p] == '}' || s[p] == ']') {
            if (--depth < 0)
                return false;
            p++;
        } else {   /* a number or a literal: up to the next delimiter */
            size_t q = p;
            while (p < n && strchr(",:]} \t\n\r", s[p]) == NULL)
                p++;
            if (p == q)
                return false;
        }
    } while (depth > 0);
    *i = p;
    return true;
}

/* A number: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? ; integers (no
 * fraction, no exponent) must fit in int64. */
static bool
scan_number(const char *s, size_t n, size_t *i, GArray *big, char *why, size_t why_len)
{
    size_t start = *i, p = *i;
    if (p < n && s[p] == '-')
        p++;
    size_t int_start = p;
    if (p < n && s[p] == '0') {
        p++;
    } else if (p < n && s[p] >= '1' && s[p] <= '9') {
        while (p < n && g_ascii_isdigit(s[p]))
            p++;
    } else {
        g_snprintf(why, why_len, "malformed number at byte %zu", start);
        return false;
    }
    size_t int_end = p;
    bool is_int = true;
    if (p < n && s[p] == '.') {
        is_int = false;
        p++;
        if (p >= n || !g_ascii_isdigit(s[p])) {
            g_snprintf(why, why_len, "malformed number at byte %zu", start);
            return false;
        }
        while (p < n && g_ascii_isdigit(s[p]))
            p++;
    }
    if (p < n && (s[p] == 'e' || s[p] == 'E')) {
        is_int = false;
        p++;
        if (p < n && (s[p] == '+' || s[p] == '-'))
            p++;
        if (p >= n || !g_ascii_isdigit(s[p])) {
            g_snprintf(why, why_len, "malformed number at byte %zu", start);
            return false;
        }
        while (p < n && g_ascii_isdigit(s[p]))
            p++;
    }
    if (p < n && (g_ascii_isalnum(s[p]) || s[p] == '.' || s[p] == '-' || s[p] == '+' || s[p] == '_')) {
        g_snprintf(why, why_len, "malformed number at byte %zu", start);
        return false;
    }
    if (is_int) {
        /* Magnitude <= INT64_MAX: at most 19 digits, and compared as text. */
        size_t nd = int_end - int_start;
        static const char max_digits[] = "9223372036854775807";
        if ((nd > 19 || (nd == 19 && memcmp(s + int_start, max_digits, 19) > 0)) && big) {
            g_array_append_val(big, p); /* read as a float: ".0" goes here */
        } else if (nd > 19 || (nd == 19 && memcmp(s + int_start, max_digits, 19) > 0)) {
            g_snprintf(why, why_len, "integer %.*s at byte %zu is out of range", (int)MIN(p - start, 40),
                       s + start, start);
            return false;
        }
    }
    *i = p;
    return true;
}

/* Check that s[0..n) is one strict-JSON value (an object when need_object),
 * with at most HR_JSON_MAX_DEPTH levels of nesting and no object holding the
 * same key twice. Grammar (commas, colons, value positions) is left to
 * json-glib; this checks tokens, nesting and keys. */
static bool
json_strict_check(const char *s, size_t n, bool need_object, GArray *big, char *why, size_t why_len)
{
    JsonFrame stack[HR_JSON_MAX_DEPTH];
    int depth = 0;
    bool done = false, ok = false;
    GString *key = g_string_new(NULL);
    size_t i = 0;
    const char *bad_utf8;

    if (!g_utf8_validate(s, (gssize)n, &bad_utf8)) {
        g_snprintf(why, why_len, "not valid UTF-8 (at byte %zu)", (size_t)(bad_utf8 - s));
        goto out;
    }
    for (;;) {
        while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
            i++;
        if (i >= n)
            break;
        char c = s[i];
        if (done) {
            g_snprintf(why, why_len, "data after the end of the JSON value at byte %zu", i);
            goto out;
        }
        if (depth == 0 && need_object && c != '{') {
            g_snprintf(why, why_len, "not a JSON object (it starts with '%c')", g_ascii_isprint(c) ? c : '?');
            goto out;
        }
        JsonFrame *top = depth > 0 ? &stack[depth - 1] : NULL;
        switch (c) {
        case '{':
        case '[':
            if (depth == HR_JSON_MAX_DEPTH) {
                g_snprintf(why, why_len, "nested more than %d levels deep at byte %zu", HR_JSON_MAX_DEPTH, i);
                goto out;
            }
            stack[depth++] = (JsonFrame){ .is_object = c == '{', .expect_key = c == '{', .keys = NULL };
            i++;
            break;
        case '}':
        case ']':
            if (!top || top->is_object != (c == '}')) {
                g_snprintf(why, why_len, "unbalanced '%c' at byte %zu", c, i);
                goto out;
            }
            if (top->keys)
                g_hash_table_destroy(top->keys);
            depth--;
            done = depth == 0;
            i++;
            break;
        case ',':
            if (top && top->is_object)
                top->expect_key = true;
            i++;
            break;
        case ':':
            if (top && top->is_object)
                top->expect_key = false;
            i++;
            break;
        case '"': {
            bool is_key = top && top->is_object && top->expect_key;
            g_string_truncate(key, 0);
            if (!scan_string(s, n, &i, is_key ? key : NULL, why, why_len))
                goto out;
            if (is_key) {
                top->expect_key = false;
                if (!top->keys)
                    top->keys = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
                if (g_hash_table_contains(top->keys, key->str)) {
                    g_snprintf(why, why_len, "duplicate key '%s'", key->str);
                    goto out;
                }
                g_hash_table_add(top->keys, g_strdup(key->str));
            }
            done = depth == 0;
            break;
        }
        case 't':
        case 'f':
        case 'n': {
            const char *lit = c == 't' ? "true" : c == 'f' ? "false" : "null";
            size_t len = strlen(lit);
            if (n - i < len || memcmp(s + i, lit, len) != 0 ||
                (n - i > len && (g_ascii_isalnum(s[i + len]) || s[i + len] == '_'))) {
                g_snprintf(why, why_len, "unexpected word at byte %zu", i);
                goto out;
            }
            i += len;
            done = depth == 0;
            break;
        }
        default:
            if (c == '-' || g_ascii_isdigit(c)) {
                if (!scan_number(s, n, &i, big, why, why_len))
                    goto out;
                done = depth == 0;
                break;
            }
            g_snprintf(why, why_len, "unexpected character '%c' at byte %zu",
                       g_ascii_isprint(c) ? c : '?', i);
            goto out;
        }
    }
    if (depth > 0)
        g_snprintf(why, why_len, "JSON ends inside an unclosed %s", stack[depth - 1].is_object ? "object" : "array");
    else if (!done)
        g_snprintf(why, why_len, "empty (no JSON value)");
    else
        ok = true;
out:
    for (int d = 0; d < depth; d++)
        if (stack[d].keys)
            g_hash_table_destroy(stack[d].keys);
    g_string_free(key, TRUE);
    return ok;
}

/* Parse text (n bytes, no NUL inside) with json-glib after the strict check.
 * On failure returns NULL with why filled. The caller unrefs the parser. */
/* big: NULL = integers past int64 are errors; else their ends are collected
 * and the copy json-glib parses has ".0" there (json-glib would wrap them). */
static JsonParser *
parse_common(const char *text, size_t n, bool need_object, bool big_as_float, char *why, size_t why_len)
{
    GArray *big = big_as_float ? g_array_new(FALSE, FALSE, sizeof(size_t)) : NULL;
    if (!json_strict_check(text, n, need_object, big, why, why_len)) {
        if (big)
            g_array_free(big, TRUE);
        return NULL;
    }
    /* A NUL-terminated copy, so nothing in json-glib can read past the end. */
    size_t extra = big ? 2 * (size_t)big->len : 0;
    char *copy = g_malloc(n + extra + 1);
    size_t from = 0, to = 0;
    for (guint k = 0; big && k < big->len; k++) {
        size_t at = g_array_index(big, size_t, k);
        memcpy(copy + to, text + from, at - from);
        to += at - from;
        copy[to++] = '.';
        copy[to++] = '0';
        from = at;
    }
    memcpy(copy + to, text + from, n - from);
    to += n - from;
    copy[to] = '\0';
    if (big)
        g_array_free(big, TRUE);
    JsonParser *parser = json_parser_new();
    GError *gerr = NULL;
    gboolean loaded = json_parser_load_from_data(parser, copy, (gssize)to, &gerr);
    g_free(copy);
    if (!loaded) {
        const char *msg = gerr ? gerr->message : "parse error";
        if (g_str_has_prefix(msg, "<data>:"))  /* json-glib's name for a buffer */
            g_snprintf(why, why_len, "line %s", msg + strlen("<data>:"));
        else
            g_snprintf(why, why_len, "%s", msg);
        g_clear_error(&gerr);
        g_object_unref(parser);
        return NULL;
    }
    JsonNode *root = json_parser_get_root(parser);
    if (!root || (need_object && !JSON_NODE_HOLDS_OBJECT(root))) {
        g_snprintf(why, why_len, "not a JSON object");
        g_object_unref(parser);
        return NULL;
    }
    return parser;
}

JsonParser *
hr_json_parse(const char *text, size_t n, bool need_object, char *why, size_t why_len)
{
    return parse_common(text, n, need_object, false, why, why_len);
}


JsonParser *
hr_json_load(const char *text, size_t n, bool need_object, const char *label, HrError *err)
{
    char why[256];
    JsonParser *p = parse_common(text, n, need_object, true, why, sizeof why);
    if (!p)
        hr_error_set(err, HR_ERR_FORMAT, "%s: not valid JSON: %s", label, why);
    return p;
}

HrStatus
hr_file_read_bounded(const char *path, size_t max, char **text, size_t *len, HrError *err)
{
    *text = NULL;
    if (len)
        *len = 0;
    /* O_NONBLOCK: opening a FIFO with no writer must not block. */
    int fd = g_open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC, 0);
    if (fd < 0)
        return hr_error_set(err, HR_ERR_IO, "%s: %s", path, g_strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return hr_error_set(err, HR_ERR_IO, "%s: %s", path, g_strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return hr_error_set(err, HR_ERR_FORMAT, "%s: not a regular file", path);
    }
    if ((uint64_t)st.st_size > max) {
        close(fd);
        return hr_error_set(err, HR_ERR_FORMAT, "%s: %" G_GUINT64_FORMAT " bytes is larger than the %zu MiB allowed",
                            path, (guint64)st.st_size, max >> 20);
    }
    size_t size = (size_t)st.st_size, got = 0;
    char *buf = g_try_malloc(size + 1);
    if (!buf) {
        close(fd);
        return hr_error_set(err, HR_ERR_NOMEM, "%s: out of memory reading %zu bytes", path, size);
    }
    /* The file may grow while we read; never read more than its size then. */
    while (got < size) {
        ssize_t r = read(fd, buf + got, size - got);
        if (r < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (r < 0) {
            int e = errno;
            close(fd);
            g_free(buf);
            return hr_error_set(err, HR_ERR_IO, "%s: %s", path, g_strerror(e));
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    buf[got] = '\0';
    *text = buf;
    if (len)
        *len = got;
    return HR_OK;
}

JsonParser *
hr_json_load_file(const char *path, size_t max, bool need_object, HrError *err)
{
    char *text = NULL;
    size_t len = 0;
    if (hr_file_read_bounded(path, max, &text, &len, err) != HR_OK)
        return NULL;
    JsonParser *p = hr_json_load(text, len, need_object, path, err);
    g_free(text);
    return p;
}

static void
gerror_from(GError **error, const HrError *e)
{
    g_set_error_literal(error, G_IO_ERROR,
                        e->status == HR_ERR_FORMAT ? G_IO_ERROR_INVALID_DATA : G_IO_ERROR_FAILED, e->message);
}

JsonParser *
hr_json_load_file_g(const char *path, size_t max, bool need_object, GError **error)
{
    HrError e = { 0 };
    JsonParser *p = hr_json_load_file(path, max, need_object, &e);
    if (!p)
        gerror_from(error, &e);
    return p;
}

JsonParser *
hr_json_load_g(const char *text, size_t n, bool need_object, const char *label, GError **error)
{
    HrError e = { 0 };
    JsonParser *p = hr_json_load(text, n, need_object, label, &e);
    if (!p)
        gerror_from(error, &e);
    return p;
}

const char *
hr_json_node_string(JsonNode *n)
{
    if (!n || !JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_STRING)
        return NULL;
    return json_node_get_string(n);
}

const char *
hr_json_string_or(JsonObject *o, const char *key, const char *def)
{
    const char *s = o ? hr_json_node_string(json_object_get_member(o, key)) : NULL;
    return s ? s : def;
}

gint64
hr_json_int_or(JsonObject *o, const char *key, gint64 def)
{
    JsonNode *n = o ? json_object_get_member(o, key) : NULL;
    if (!n || !JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_INT64)
        return def;
    return json_node_get_int(n);
}

bool
hr_json_bool_or(JsonObject *o, const char *key, bool def)
{
    JsonNode *n = o ? json_object_get_member(o, key) : NULL;
    if (!n || !JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_BOOLEAN)
        return def;
    return json_node_get_boolean(n);
}

JsonObject *
hr_json_object_or_null(JsonObject *o, const char *key)
{
    JsonNode *n = o ? json_object_get_member(o, key) : NULL;
    return n && JSON_NODE_HOLDS_OBJECT(n) ? json_node_get_object(n) : NULL;
}

JsonArray *
hr_json_array_or_null(JsonObject *o, const char *key)
{
    JsonNode *n = o ? json_object_get_member(o, key) : NULL;
    return n && JSON_NODE_HOLDS_ARRAY(n) ? json_node_get_array(n) : NULL;
}

HrStatus
hr_json_get_string(JsonObject *o, const char *key, const char *def, const char **out, const char *label,
                   HrError *err)
{
    JsonNode *n = json_object_get_member(o, key);
    *out = def;
    if (!n || JSON_NODE_HOLDS_NULL(n))
        return HR_OK;
    const char *s = hr_json_node_string(n);
    if (!s)
        return hr_error_set(err, HR_ERR_FORMAT, "%s: \"%s\" must be a string", label, key);
    *out = s;
    return HR_OK;
}

HrStatus
hr_file_map(const char *path, const char *kind, const char *empty_hint, void **map_out, size_t *len_out,
            HrError *err)
{
    *map_out = NULL;
    *len_out = 0;
    /* O_NONBLOCK: opening a FIFO must not hang; it is refused below. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        int e = errno;
        return hr_error_set(err, HR_ERR_IO, "%s: cannot open: %s", path, g_strerror(e));
    }
    struct stat sb;
    HrStatus st = HR_OK;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        st = hr_error_set(err, HR_ERR_IO, "%s: cannot stat: %s", path, g_strerror(e));
    } else if (S_ISDIR(sb.st_mode)) {
        st = hr_error_set(err, HR_ERR_IO, "%s: is a directory, not a %s file", path, kind);
    } else if (!S_ISREG(sb.st_mode)) {
        st = hr_error_set(err, HR_ERR_IO, "%s: not a regular file", path);
    } else if (sb.st_size == 0) {
        st = hr_error_set(err, HR_ERR_FORMAT, "%s: empty file (%s)", path, empty_hint);
    } else if ((uint64_t)sb.st_size > (uint64_t)SIZE_MAX) {
        st = hr_error_set(err, HR_ERR_IO, "%s: too large to map", path);
    }
    if (st != HR_OK) {
        close(fd);
        return st;
    }
    size_t len = (size_t)sb.st_size;
    void *map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    int map_errno = errno;
    close(fd);
    if (map == MAP_FAILED)
        return hr_error_set(err, HR_ERR_IO, "%s: cannot map %zu bytes: %s", path, len, g_strerror(map_errno));
    *map_out = map;
    *len_out = len;
    return HR_OK;
}

/* ---- writing ------------------------------------------------------------------------ */

void
hr_json_append_string(GString *out, const char *s)
{
    g_string_append_c(out, '"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"':
            g_string_append(out, "\\\"");
            break;
        case '\\':
            g_string_append(out, "\\\\");
            break;
        case '\n':
            g_string_append(out, "\\n");
            break;
        case '\r':
            g_string_append(out, "\\r");
            break;
        case '\t':
            g_string_append(out, "\\t");
            break;
        default:
            if (*p < 0x20 || *p == 0x7f)
                g_string_append_printf(out, "\\u%04x", *p);
            else
                g_string_append_c(out, (char)*p);
        }
    }
    g_string_append_c(out, '"');
}

static void
write_double(GString *out, double v)
{
    if (!isfinite(v)) {   /* not JSON; the strict reader never makes one */
        g_string_append(out, "null");
        return;
    }
    /* the shortest of %.15g..%.17g that reads back as v (%.17g always does) */
    static const char *const fmts[] = { "%.15g", "%.16g", "%.17g" };
    char buf[G_ASCII_DTOSTR_BUF_SIZE];
    for (size_t i = 0; i < G_N_ELEMENTS(fmts); i++) {
        g_ascii_formatd(buf, sizeof buf, fmts[i], v);
        if (g_ascii_strtod(buf, NULL) == v)
            break;
    }
    g_string_append(out, buf);
    if (!strpbrk(buf, ".eE"))   /* still a float when read back: 1.0, not 1 */
        g_string_append(out, ".0");
}

static void
write_node(GString *out, JsonNode *n, bool pretty, int depth)
{
    const char *nl = pretty ? "\n" : "";
    switch (json_node_get_node_type(n)) {
    case JSON_NODE_NULL:
        g_string_append(out, "null");
        return;
    case JSON_NODE_VALUE:
        switch (json_node_get_value_type(n)) {
        case G_TYPE_INT64:
            g_string_append_printf(out, "%" G_GINT64_FORMAT, json_node_get_int(n));
            return;
        case G_TYPE_DOUBLE:
            write_double(out, json_node_get_double(n));
            return;
        case G_TYPE_BOOLEAN:
            g_string_append(out, json_node_get_boolean(n) ? "true" : "false");
            return;
        case G_TYPE_STRING:
            hr_json_append_string(out, json_node_get_string(n));
            return;
        default:
            g_string_append(out, "null");
            return;
        }
    case JSON_NODE_ARRAY: {
        JsonArray *a = json_node_get_array(n);
        const guint len = json_array_get_length(a);
        if (len == 0) {
            g_string_append(out, "[]");
            return;
        }
        g_string_append_printf(out, "[%s", nl);
        for (guint i = 0; i < len; i++) {
            if (pretty)
                g_string_append_printf(out, "%*s", 2 * (depth + 1), "");
            write_node(out, json_array_get_element(a, i), pretty, depth + 1);
            g_string_append_printf(out, "%s%s", i + 1 < len ? "," : "", nl);
        }
        if (pretty)
            g_string_append_printf(out, "%*s", 2 * depth, "");
        g_string_append_c(out, ']');
        return;
    }
    case JSON_NODE_OBJECT: {
        JsonObject *o = json_node_get_object(n);
        GList *members = json_object_get_members(o);   /* in insertion order */
        if (!members) {
            g_string_append(out, "{}");
            return;
        }
        g_string_append_printf(out, "{%s", nl);
        for (GList *l = members; l; l = l->next) {
            if (pretty)
                g_string_append_printf(out, "%*s", 2 * (depth + 1), "");
            hr_json_append_string(out, l->data);
            g_string_append(out, pretty ? " : " : ":");   /* json-glib's pretty layout */
            write_node(out, json_object_get_member(o, l->data), pretty, depth + 1);
            g_string_append_printf(out, "%s%s", l->next ? "," : "", nl);
        }
        g_list_free(members);
        if (pretty)
            g_string_append_printf(out, "%*s", 2 * depth, "");
        g_string_append_c(out, '}');
        return;
    }
    }
}

char *
hr_json_to_text(JsonNode *node, bool pretty, size_t *len)
{
    GString *out = g_string_new(NULL);
    if (node)
        write_node(out, node, pretty, 0);
    else
        g_string_append(out, "null");
    if (len)
        *len = out->len;
    return g_string_free(out, FALSE);
}

HrStatus
hr_json_write_file(JsonNode *node, const char *path, HrError *err)
{
    size_t len;
    g_autofree char *text = hr_json_to_text(node, true, &len);
    GError *gerr = NULL;
    /* g_file_set_contents writes a temporary file and renames it: whole or nothing */
    if (!g_file_set_contents(path, text, (gssize)len, &gerr)) {
        HrStatus st = hr_error_set(err, HR_ERR_IO, "%s: %s", path, gerr->message);
        g_error_free(gerr);
        return st;
    }
    return HR_OK;
}
