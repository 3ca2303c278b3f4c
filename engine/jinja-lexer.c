/* jinja-lexer.c — template source to tokens, as jinja2's lexer does it with
 * trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=False:
 *
 *  - line endings in the source become "\n", and one trailing "\n" is dropped;
 *  - "{%-", "{{-", "{#-" strip all whitespace before the tag, "-%}", "-}}", "-#}"
 *    all whitespace after it;
 *  - trim_blocks: the first newline after "%}" or "#}" is removed ("+%}" keeps it);
 *  - lstrip_blocks: spaces and tabs from the start of a line up to "{%" or "{#" are
 *    removed ("{%+" keeps them);
 *  - comments vanish, {% raw %}...{% endraw %} becomes data.
 */
#include "jinja-internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *s;
    size_t n;
    size_t pos;
    int line;
    GArray *toks;
    HrError *err;
} Lexer;

static void
push(Lexer *lx, JTokType type, int line, char *text)
{
    JTok t = { .type = type, .line = line, .text = text };
    g_array_append_val(lx->toks, t);
}

/* Advance pos to `to`, counting newlines. */
static void
advance(Lexer *lx, size_t to)
{
    for (size_t i = lx->pos; i < to && i < lx->n; i++)
        if (lx->s[i] == '\n')
            lx->line++;
    lx->pos = to;
}

static bool
starts(const Lexer *lx, size_t at, const char *lit)
{
    size_t l = strlen(lit);
    return at + l <= lx->n && memcmp(lx->s + at, lit, l) == 0;
}

/* Length of the Python whitespace code point at s[at], or 0. */
static size_t
space_at(const char *s, size_t at, size_t n)
{
    if (at >= n)
        return 0;
    unsigned char c = (unsigned char)s[at];
    if (c < 0x80)
        return jv_py_isspace(c) ? 1 : 0;
    gunichar u = g_utf8_get_char_validated(s + at, (gssize)(n - at));
    if (u == (gunichar)-1 || u == (gunichar)-2)
        return 0;
    return jv_py_isspace(u) ? (size_t)(g_utf8_next_char(s + at) - (s + at)) : 0;
}

static size_t
skip_space(const char *s, size_t at, size_t n)
{
    size_t k;
    while ((k = space_at(s, at, n)) > 0)
        at += k;
    return at;
}

/* Length of text[0..len) after Python's str.rstrip(). */
static size_t
rstrip_len(const char *text, size_t len)
{
    while (len > 0) {
        size_t start = len - 1;
        while (start > 0 && ((unsigned char)text[start] & 0xC0) == 0x80)
            start--;
        if (space_at(text, start, len) != len - start)
            break;
        len = start;
    }
    return len;
}

/* Apply the whitespace rules for the data before a tag whose sign is `sign`
 * ('-', '+' or 0). lstrip applies to block and comment tags only. */
static size_t
strip_before_tag(const char *text, size_t len, char sign, bool lstrip_applies, bool line_starting)
{
    if (sign == '-')
        return rstrip_len(text, len);
    if (sign == '+' || !lstrip_applies)
        return len;
    size_t l_pos = 0;
    for (size_t i = len; i > 0; i--)
        if (text[i - 1] == '\n') {
            l_pos = i;
            break;
        }
    if (l_pos == 0 && !line_starting)
        return len;
    if (l_pos == len)
        return len;
    for (size_t i = l_pos; i < len;) {
        size_t k = space_at(text, i, len);
        if (k == 0)
            return len;
        i += k;
    }
    return l_pos;
}

static void
emit_data(Lexer *lx, int line, const char *text, size_t len)
{
    if (len > 0)
        push(lx, TK_DATA, line, g_strndup(text, len));
}

static HrStatus
fail(Lexer *lx, int line, HrStatus st, const char *fmt, ...) G_GNUC_PRINTF(4, 5);

static HrStatus
fail(Lexer *lx, int line, HrStatus st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    hr_error_set(lx->err, st, "line %d: %s", line, msg);
    g_free(msg);
    return st;
}

static void
append_unichar(GString *g, gunichar c)
{
    if (c == 0) {
        g_string_append_c(g, '\0'); /* rejected by unescape(): strings are NUL-terminated here */
        return;
    }
    if (c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
        c = 0xFFFD;
    g_string_append_unichar(g, c);
}

/* Decode a string literal body as Python's "unicode-escape" codec does (after
 * jinja2's backslashreplace step, so non-ASCII text passes through). */
static HrStatus
unescape(Lexer *lx, int line, const char *s, size_t len, char **out)
{
    GString *g = g_string_sized_new(len);
    for (size_t i = 0; i < len; i++) {
        if (s[i] != '\\' || i + 1 >= len) {
            g_string_append_c(g, s[i]);
            continue;
        }
        char e = s[++i];
        switch (e) {
        case '\n': break;
        case '\\': g_string_append_c(g, '\\'); break;
        case '\'': g_string_append_c(g, '\''); break;
        case '"': g_string_append_c(g, '"'); break;
        case 'a': g_string_append_c(g, '\a'); break;
        case 'b': g_string_append_c(g, '\b'); break;
        case 'f': g_string_append_c(g, '\f'); break;
        case 'n': g_string_append_c(g, '\n'); break;
        case 'r': g_string_append_c(g, '\r'); break;
        case 't': g_string_append_c(g, '\t'); break;
        case 'v': g_string_append_c(g, '\v'); break;
        case 'x':
        case 'u':
        case 'U': {
            int digits = e == 'x' ? 2 : e == 'u' ? 4 : 8;
            gunichar c = 0;
            for (int k = 0; k < digits; k++) {
                int h = i + 1 + (size_t)k < len ? g_ascii_xdigit_value(s[i + 1 + k]) : -1;
                if (h < 0) {
                    g_string_free(g, TRUE);
                    return fail(lx, line, HR_ERR_FORMAT, "truncated \\%c escape in a string literal", e);
                }
                c = c * 16 + (gunichar)h;
            }
            i += (size_t)digits;
            append_unichar(g, c);
            break;
        }
        case 'N':
            g_string_free(g, TRUE);
            return fail(lx, line, HR_ERR_UNSUPPORTED, "\\N{...} escapes in string literals are not supported");
        default:
            if (e >= '0' && e <= '7') {
                gunichar c = 0;
                int k = 0;
                while (k < 3 && i < len && s[i] >= '0' && s[i] <= '7') {
                    c = c * 8 + (gunichar)(s[i] - '0');
                    i++;
                    k++;
                }
                i--;
                append_unichar(g, c);
            } else {
                g_string_append_c(g, '\\');
                g_string_append_c(g, e);
            }
        }
    }
    if (memchr(g->str, '\0', g->len)) {
        g_string_free(g, TRUE);
        return fail(lx, line, HR_ERR_UNSUPPORTED, "NUL characters in string literals are not supported");
    }
    *out = g_string_free(g, FALSE);
    return HR_OK;
}

static bool
is_name_start(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c >= 0x80;
}

static bool
is_name_char(unsigned char c)
{
    return is_name_start(c) || (c >= '0' && c <= '9');
}

/* Digits with optional single underscores between them; returns the end. */
static size_t
scan_digits(const char *s, size_t at, size_t n, int base)
{
    size_t i = at;
    while (i < n) {
        int h = g_ascii_xdigit_value(s[i]);
        if (h >= 0 && h < base) {
            i++;
        } else if (s[i] == '_' && i > at && i + 1 < n && g_ascii_xdigit_value(s[i + 1]) >= 0 && g_ascii_xdigit_value(s[i + 1]) < base) {
            i++;
        } else {
            break;
        }
    }
    return i;
}

static char *
strip_underscores(const char *s, size_t len)
{
    char *r = g_malloc(len + 1);
    size_t k = 0;
    for (size_t i = 0; i < len; i++)
        if (s[i] != '_')
            r[k++] = s[i];
    r[k] = '\0';
    return r;
}

static HrStatus
lex_number(Lexer *lx)
{
    const char *s = lx->s;
    size_t n = lx->n, at = lx->pos;
    int line = lx->line;
    if (s[at] == '0' && at + 1 < n && strchr("xXoObB", s[at + 1])) {
        int base = (s[at + 1] == 'x' || s[at + 1] == 'X') ? 16 : (s[at + 1] == 'o' || s[at + 1] == 'O') ? 8 : 2;
        size_t start = at + 2;
        if (start < n && s[start] == '_')
            start++;
        size_t end = scan_digits(s, start, n, base);
        if (end == start)
            return fail(lx, line, HR_ERR_FORMAT, "malformed number literal");
        char *digits = strip_underscores(s + start, end - start);
        errno = 0;
        guint64 v = g_ascii_strtoull(digits, NULL, (guint)base);
        g_free(digits);
        if (errno || v > (guint64)G_MAXINT64)
            return fail(lx, line, HR_ERR_UNSUPPORTED, "integer literal too large");
        JTok t = { .type = TK_INT, .line = line, .ival = (int64_t)v };
        g_array_append_val(lx->toks, t);
        advance(lx, end);
        return HR_OK;
    }
    size_t end = scan_digits(s, at, n, 10);
    bool is_float = false;
    if (end + 1 < n && s[end] == '.' && s[end + 1] >= '0' && s[end + 1] <= '9') {
        end = scan_digits(s, end + 1, n, 10);
        is_float = true;
    }
    if (end < n && (s[end] == 'e' || s[end] == 'E')) {
        size_t e = end + 1;
        if (e < n && (s[e] == '+' || s[e] == '-'))
            e++;
        if (e < n && s[e] >= '0' && s[e] <= '9') {
            end = scan_digits(s, e, n, 10);
            is_float = true;
        }
    }
    char *text = strip_underscores(s + at, end - at);
    if (!is_float && text[0] == '0' && text[strspn(text, "0")] != '\0') {
        g_free(text);
        return fail(lx, line, HR_ERR_FORMAT, "leading zeros in integer literals are not permitted");
    }
    JTok t = { .line = line };
    if (is_float) {
        t.type = TK_FLOAT;
        t.fval = g_ascii_strtod(text, NULL);
    } else {
        errno = 0;
        guint64 v = g_ascii_strtoull(text, NULL, 10);
        if (errno || v > (guint64)G_MAXINT64) {
            g_free(text);
            return fail(lx, line, HR_ERR_UNSUPPORTED, "integer literal too large");
        }
        t.type = TK_INT;
        t.ival = (int64_t)v;
    }
    g_free(text);
    g_array_append_val(lx->toks, t);
    advance(lx, end);
    return HR_OK;
}

static const char *const OPERATORS[] = {
    "//", "**", "==", "!=", ">=", "<=",
    "+", "-", "*", "/", "%", "~", "[", "]", "(", ")", "{", "}", "<", ">", "=", ".", ":", "|", ",", ";",
};

/* Tokens inside {{ }} or {% %}, up to and including the end delimiter.
 * *line_starting tells whether what the end delimiter consumed ended in "\n". */
static HrStatus
lex_tag(Lexer *lx, bool block, int open_line, bool *line_starting)
{
    char stack[64];
    int depth = 0;
    const char *end = block ? "%}" : "}}";
    for (;;) {
        advance(lx, skip_space(lx->s, lx->pos, lx->n));
        if (lx->pos >= lx->n)
            return fail(lx, open_line, HR_ERR_FORMAT, "unclosed '%s' tag: expected '%s' before the end of the template",
                        block ? "{%" : "{{", end);
        if (depth == 0) {
            size_t at = lx->pos;
            size_t after = 0;
            bool trim_ws = false, trim_nl = false;
            if (lx->s[at] == '-' && starts(lx, at + 1, end)) {
                after = at + 3;
                trim_ws = true;
            } else if (block && lx->s[at] == '+' && starts(lx, at + 1, end)) {
                after = at + 3;
            } else if (starts(lx, at, end)) {
                after = at + 2;
                trim_nl = block;
            }
            if (after) {
                int line = lx->line;
                if (trim_ws)
                    after = skip_space(lx->s, after, lx->n);
                else if (trim_nl && after < lx->n && lx->s[after] == '\n')
                    after++;
                *line_starting = lx->s[after - 1] == '\n';
                advance(lx, after);
                push(lx, block ? TK_BLOCK_END : TK_VAR_END, line, NULL);
                return HR_OK;
            }
        }
        const char *s = lx->s;
        size_t at = lx->pos;
        unsigned char c = (unsigned char)s[at];
        int line = lx->line;
        if (c == '\'' || c == '"') {
            size_t i = at + 1;
            while (i < lx->n && s[i] != (char)c) {
                if (s[i] == '\\' && i + 1 < lx->n)
                    i++;
                i++;
            }
            if (i >= lx->n)
                return fail(lx, line, HR_ERR_FORMAT, "unterminated string literal");
            char *text = NULL;
            HrStatus st = unescape(lx, line, s + at + 1, i - at - 1, &text);
            if (st != HR_OK)
                return st;
            push(lx, TK_STRING, line, text);
            advance(lx, i + 1);
            continue;
        }
        if (c >= '0' && c <= '9') {
            HrStatus st = lex_number(lx);
            if (st != HR_OK)
                return st;
            continue;
        }
        if (is_name_start(c)) {
            size_t i = at;
            while (i < lx->n && is_name_char((unsigned char)s[i]))
                i++;
            push(lx, TK_NAME, line, g_strndup(s + at, i - at));
            advance(lx, i);
            continue;
        }
        const char *op = NULL;
        for (size_t k = 0; k < G_N_ELEMENTS(OPERATORS); k++)
            if (starts(lx, at, OPERATORS[k])) {
                op = OPERATORS[k];
                break;
            }
        if (!op) {
            if (c >= 0x20 && c < 0x7f)
                return fail(lx, line, HR_ERR_FORMAT, "unexpected character '%c'", c);
            return fail(lx, line, HR_ERR_FORMAT, "unexpected character 0x%02x", c);
        }
        if (op[1] == '\0' && strchr("([{", op[0])) {
            if (depth == (int)sizeof stack)
                return fail(lx, line, HR_ERR_UNSUPPORTED, "brackets nested too deeply");
            stack[depth++] = op[0];
        } else if (op[1] == '\0' && strchr(")]}", op[0])) {
            char want = op[0] == ')' ? '(' : op[0] == ']' ? '[' : '{';
            if (depth == 0 || stack[depth - 1] != want)
                return fail(lx, line, HR_ERR_FORMAT, "unexpected '%c'", op[0]);
            depth--;
        }
        push(lx, TK_OP, line, g_strdup(op));
        advance(lx, at + strlen(op));
    }
}

/* After "{%" and its sign: is this "raw -%}" / "raw %}"? Returns the end of the tag or 0. */
static size_t
match_raw_begin(const Lexer *lx, size_t at, bool *trim_after)
{
    at = skip_space(lx->s, at, lx->n);
    if (!starts(lx, at, "raw"))
        return 0;
    at = skip_space(lx->s, at + 3, lx->n);
    if (starts(lx, at, "-%}")) {
        *trim_after = true;
        return at + 3;
    }
    if (starts(lx, at, "%}")) {
        *trim_after = false;
        return at + 2;
    }
    return 0;
}

static HrStatus
lex_raw(Lexer *lx, int open_line, bool line_starting)
{
    /* Find "{%" [-+] ws "endraw" ws ("+%}" | "-%}" | "%}"). */
    size_t search = lx->pos;
    for (;;) {
        const char *hit = g_strstr_len(lx->s + search, (gssize)(lx->n - search), "{%");
        if (!hit)
            return fail(lx, open_line, HR_ERR_FORMAT, "unclosed {%% raw %%}: expected {%% endraw %%}");
        size_t t = (size_t)(hit - lx->s);
        size_t at = t + 2;
        char sign = 0;
        if (at < lx->n && (lx->s[at] == '-' || lx->s[at] == '+'))
            sign = lx->s[at++];
        at = skip_space(lx->s, at, lx->n);
        if (!starts(lx, at, "endraw")) {
            search = t + 2;
            continue;
        }
        at = skip_space(lx->s, at + 6, lx->n);
        size_t after;
        if (starts(lx, at, "+%}")) {
            after = at + 3;
        } else if (starts(lx, at, "-%}")) {
            after = skip_space(lx->s, at + 3, lx->n);
        } else if (starts(lx, at, "%}")) {
            after = at + 2;
            if (after < lx->n && lx->s[after] == '\n')
                after++;
        } else {
            search = t + 2;
            continue;
        }
        size_t len = strip_before_tag(lx->s + lx->pos, t - lx->pos, sign, true, line_starting);
        emit_data(lx, lx->line, lx->s + lx->pos, len);
        advance(lx, after);
        return HR_OK;
    }
}

static char *
normalize_newlines(const char *src)
{
    size_t n = strlen(src);
    char *r = g_malloc(n + 1);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (src[i] == '\r') {
            r[k++] = '\n';
            if (i + 1 < n && src[i + 1] == '\n')
                i++;
        } else {
            r[k++] = src[i];
        }
    }
    if (k > 0 && r[k - 1] == '\n')
        k--;
    r[k] = '\0';
    return r;
}

void
jinja_tokens_free(GArray *toks)
{
    if (!toks)
        return;
    for (guint i = 0; i < toks->len; i++)
        g_free(g_array_index(toks, JTok, i).text);
    g_array_free(toks, TRUE);
}

HrStatus
jinja_lex(const char *source, GArray **out, HrError *err)
{
    char *src = normalize_newlines(source);
    Lexer lx = { .s = src, .n = strlen(src), .line = 1, .toks = g_array_new(FALSE, TRUE, sizeof(JTok)), .err = err };
    bool line_starting = true;
    HrStatus st = HR_OK;
    while (st == HR_OK && lx.pos < lx.n) {
        const char *s = lx.s;
        size_t t = lx.pos;
        while (t + 1 < lx.n && !(s[t] == '{' && (s[t + 1] == '{' || s[t + 1] == '%' || s[t + 1] == '#')))
            t++;
        if (t + 1 >= lx.n) {
            emit_data(&lx, lx.line, s + lx.pos, lx.n - lx.pos);
            advance(&lx, lx.n);
            break;
        }
        char kind = s[t + 1];
        char sign = (t + 2 < lx.n && (s[t + 2] == '-' || s[t + 2] == '+')) ? s[t + 2] : 0;
        size_t len = strip_before_tag(s + lx.pos, t - lx.pos, sign, kind != '{', line_starting);
        emit_data(&lx, lx.line, s + lx.pos, len);
        advance(&lx, t);
        int open_line = lx.line;
        size_t inner = t + 2 + (sign ? 1 : 0);
        if (kind == '#') {
            const char *close = g_strstr_len(s + inner, (gssize)(lx.n - inner), "#}");
            if (!close && inner >= lx.n) {
                /* "{#" ending the template: jinja2's lexer drops it silently */
                advance(&lx, lx.n);
                break;
            }
            if (!close) {
                st = fail(&lx, open_line, HR_ERR_FORMAT, "unclosed comment: expected '#}'");
                break;
            }
            size_t c = (size_t)(close - s);
            size_t after = c + 2;
            if (c > inner && s[c - 1] == '-')
                after = skip_space(s, after, lx.n);
            else if (after < lx.n && s[after] == '\n')
                after++;
            line_starting = s[after - 1] == '\n';
            advance(&lx, after);
            continue;
        }
        bool trim_after = false;
        size_t raw_end = kind == '%' ? match_raw_begin(&lx, inner, &trim_after) : 0;
        if (raw_end) {
            if (trim_after)
                raw_end = skip_space(s, raw_end, lx.n);
            line_starting = s[raw_end - 1] == '\n';
            advance(&lx, raw_end);
            st = lex_raw(&lx, open_line, line_starting);
            line_starting = lx.pos > 0 && s[lx.pos - 1] == '\n';
            continue;
        }
        push(&lx, kind == '%' ? TK_BLOCK_BEGIN : TK_VAR_BEGIN, open_line, NULL);
        advance(&lx, inner);
        st = lex_tag(&lx, kind == '%', open_line, &line_starting);
    }
    if (st != HR_OK) {
        jinja_tokens_free(lx.toks);
        g_free(src);
        return st;
    }
    push(&lx, TK_EOF, lx.line, NULL);
    g_free(src);
    *out = lx.toks;
    return HR_OK;
}
