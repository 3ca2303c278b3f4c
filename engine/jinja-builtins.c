/* jinja-builtins.c — jinja2's filters and tests, Python's string, dict and
 * list methods, and the globals transformers gives chat templates
 * (raise_exception, strftime_now, namespace, dict, range). */
#include "jinja-internal.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_RANGE (1 << 20)

/* ------------------------------------------------------------------ argument helpers */

static bool
check_args(JCtx *ctx, int line, const char *what, const JArgs *a, size_t max_pos, const char *const *kw)
{
    if (a->npos > max_pos) {
        jerr(ctx, line, HR_ERR_FORMAT, "%s takes at most %zu positional argument(s), %zu given", what, max_pos, a->npos);
        return false;
    }
    for (size_t i = 0; i < a->nkw; i++) {
        bool ok = false;
        for (const char *const *k = kw; k && *k && !ok; k++)
            ok = strcmp(*k, a->kwn[i]) == 0;
        if (!ok) {
            jerr(ctx, line, HR_ERR_FORMAT, "%s got an unexpected keyword argument '%s'", what, a->kwn[i]);
            return false;
        }
    }
    return true;
}

/* A string argument (NULL with an error if it is not a string). */
static const char *
str_arg(JCtx *ctx, int line, const char *what, const Jv *v)
{
    if (v->kind == JV_STRING)
        return v->u.str.s;
    if (v->kind == JV_UNDEFINED)
        jerr_undefined(ctx, line, v);
    else
        jerr(ctx, line, HR_ERR_FORMAT, "%s: expected a string, got %s", what, jv_type_name(v));
    return NULL;
}

static bool
int_arg(JCtx *ctx, int line, const char *what, const Jv *v, int64_t *out)
{
    if (jv_is_int(v)) {
        *out = jv_as_int(v);
        return true;
    }
    if (v->kind == JV_UNDEFINED)
        jerr_undefined(ctx, line, v);
    else
        jerr(ctx, line, HR_ERR_FORMAT, "%s: expected an integer, got %s", what, jv_type_name(v));
    return false;
}

/* ------------------------------------------------------------------ Python string helpers */

static int
unichar_cmp(const void *a, const void *b)
{
    gunichar x = *(const gunichar *)a, y = *(const gunichar *)b;
    return x < y ? -1 : x > y;
}

/* The code points of chars, sorted (a template may pass a long string). */
typedef struct {
    gunichar *cps;
    size_t n;
} CharSet;

static void
charset_init(CharSet *cs, const char *chars)
{
    size_t bytes = strlen(chars);
    jbudget_step(bytes / 64);
    cs->cps = g_new(gunichar, bytes + 1);
    cs->n = 0;
    for (const char *p = chars; *p; p = g_utf8_next_char(p))
        cs->cps[cs->n++] = g_utf8_get_char(p);
    qsort(cs->cps, cs->n, sizeof *cs->cps, unichar_cmp);
}

static bool
strip_match(gunichar c, const CharSet *cs)
{
    return cs ? bsearch(&c, cs->cps, cs->n, sizeof *cs->cps, unichar_cmp) != NULL : jv_py_isspace(c);
}

static char *
py_strip(const char *s, const char *chars, bool left, bool right)
{
    const char *start = s, *end = s + strlen(s);
    CharSet set, *cs = NULL;
    if (chars) {
        charset_init(&set, chars);
        cs = &set;
    }
    if (left)
        while (start < end && strip_match(g_utf8_get_char(start), cs))
            start = g_utf8_next_char(start);
    if (right)
        while (end > start) {
            const char *prev = g_utf8_find_prev_char(start, end);
            if (!prev || !strip_match(g_utf8_get_char(prev), cs))
                break;
            end = prev;
        }
    if (cs)
        g_free(set.cps);
    return g_strndup(start, (gsize)(end - start));
}

static char *
py_upper(const char *s)
{
    return g_utf8_strup(s, -1);
}

static char *
py_lower(const char *s)
{
    return g_utf8_strdown(s, -1);
}

static void
append_title_char(GString *g, gunichar c)
{
    g_string_append_unichar(g, g_unichar_totitle(c));
}

static bool
is_cased(gunichar c)
{
    return g_unichar_isupper(c) || g_unichar_islower(c) || g_unichar_istitle(c);
}

/* str.title(): title-case the first cased character after an uncased one. */
static char *
py_title(const char *s)
{
    GString *g = g_string_new(NULL);
    bool prev_cased = false;
    for (const char *p = s; *p; p = g_utf8_next_char(p)) {
        gunichar c = g_utf8_get_char(p);
        const char *next = g_utf8_next_char(p);
        if (is_cased(c)) {
            if (prev_cased) {
                char *low = g_utf8_strdown(p, next - p);
                g_string_append(g, low);
                g_free(low);
            } else {
                append_title_char(g, c);
            }
            prev_cased = true;
        } else {
            g_string_append_len(g, p, next - p);
            prev_cased = false;
        }
    }
    return g_string_free(g, FALSE);
}

/* str.capitalize(): first character title-cased, the rest lower-cased. */
static char *
py_capitalize(const char *s)
{
    if (!*s)
        return g_strdup("");
    GString *g = g_string_new(NULL);
    const char *next = g_utf8_next_char(s);
    append_title_char(g, g_utf8_get_char(s));
    char *rest = g_utf8_strdown(next, -1);
    g_string_append(g, rest);
    g_free(rest);
    return g_string_free(g, FALSE);
}

/* jinja2's title filter: words start after "-", whitespace, "(", "{", "[", "<";
 * each word is item[0].upper() + item[1:].lower(). */
static char *
jinja_title(const char *s)
{
    GString *g = g_string_new(NULL);
    bool word_start = true;
    for (const char *p = s; *p;) {
        gunichar c = g_utf8_get_char(p);
        const char *next = g_utf8_next_char(p);
        bool delim = c == '-' || c == '(' || c == '{' || c == '[' || c == '<' || jv_py_isspace(c);
        if (delim) {
            g_string_append_len(g, p, next - p);
            word_start = true;
        } else {
            char *conv = word_start ? g_utf8_strup(p, next - p) : g_utf8_strdown(p, next - p);
            g_string_append(g, conv);
            g_free(conv);
            word_start = false;
        }
        p = next;
    }
    return g_string_free(g, FALSE);
}

/* NULL when the result would be longer than a string may be (the budget is
 * then exhausted). */
static char *
py_replace(const char *s, const char *old, const char *new_, int64_t count)
{
    GString *g = g_string_new(NULL);
    size_t ol = strlen(old), nl = strlen(new_);
    int64_t done = 0;
    if (ol == 0) {
        for (const char *p = s;; p = g_utf8_next_char(p)) {
            if (count < 0 || done < count) {
                if (!jbudget_string_ok(g->len + nl)) {
                    g_string_free(g, TRUE);
                    return NULL;
                }
                g_string_append_len(g, new_, nl);
                done++;
            }
            if (!*p)
                break;
            g_string_append_len(g, p, g_utf8_next_char(p) - p);
        }
        return g_string_free(g, FALSE);
    }
    const char *p = s, *end = s + strlen(s);
    while (count < 0 || done < count) {
        const char *hit = jfind(p, (size_t)(end - p), old, ol);
        if (!hit)
            break;
        if (!jbudget_string_ok(g->len + (size_t)(hit - p) + nl)) {
            g_string_free(g, TRUE);
            return NULL;
        }
        g_string_append_len(g, p, hit - p);
        g_string_append_len(g, new_, nl);
        p = hit + ol;
        done++;
    }
    g_string_append(g, p);
    return g_string_free(g, FALSE);
}

/* str.split(sep=None, maxsplit=-1) and rsplit. */
static Jv *
py_split(const char *s, const char *sep, int64_t maxsplit, bool from_right)
{
    Jv *l = jv_list_new();
    if (sep) {
        size_t sl = strlen(sep);
        if (!from_right) {
            const char *p = s, *send = s + strlen(s);
            int64_t n = 0;
            const char *hit;
            while ((maxsplit < 0 || n < maxsplit) && !jbudget_stopped() && (hit = jfind(p, (size_t)(send - p), sep, sl))) {
                jv_list_push(l, jv_str_len(p, (size_t)(hit - p)));
                p = hit + sl;
                n++;
            }
            jv_list_push(l, jv_str(p));
            return l;
        }
        /* from the right: collect then reverse */
        GPtrArray *parts = g_ptr_array_new();
        size_t end = strlen(s);
        int64_t n = 0;
        while (maxsplit < 0 || n < maxsplit) {
            const char *found = NULL;
            /* each comparison may read the whole separator */
            for (size_t i = end >= sl ? end - sl + 1 : 0; i-- > 0 && jbudget_step(1 + sl / 64);)
                if (memcmp(s + i, sep, sl) == 0) {
                    found = s + i;
                    break;
                }
            if (!found)
                break;
            g_ptr_array_add(parts, jv_str_len(found + sl, end - (size_t)(found - s) - sl));
            end = (size_t)(found - s);
            n++;
        }
        jv_list_push(l, jv_str_len(s, end));
        for (guint i = parts->len; i-- > 0;)
            jv_list_push(l, g_ptr_array_index(parts, i));
        g_ptr_array_free(parts, TRUE);
        return l;
    }
    /* whitespace runs; empty strings dropped */
    GPtrArray *words = g_ptr_array_new();
    const char *p = s;
    const char *end = s + strlen(s);
    if (!from_right) {
        int64_t n = 0;
        while (!jbudget_stopped()) {
            while (p < end && jv_py_isspace(g_utf8_get_char(p)))
                p = g_utf8_next_char(p);
            if (p >= end)
                break;
            if (maxsplit >= 0 && n >= maxsplit) {
                g_ptr_array_add(words, jv_str_take(py_strip(p, NULL, false, true)));
                break;
            }
            const char *w = p;
            while (p < end && !jv_py_isspace(g_utf8_get_char(p)))
                p = g_utf8_next_char(p);
            g_ptr_array_add(words, jv_str_len(w, (size_t)(p - w)));
            n++;
        }
        for (guint i = 0; i < words->len; i++)
            jv_list_push(l, g_ptr_array_index(words, i));
    } else {
        int64_t n = 0;
        const char *q = end;
        while (!jbudget_stopped()) {
            while (q > s) {
                const char *prev = g_utf8_find_prev_char(s, q);
                if (!jv_py_isspace(g_utf8_get_char(prev)))
                    break;
                q = prev;
            }
            if (q <= s)
                break;
            if (maxsplit >= 0 && n >= maxsplit) {
                char *head = g_strndup(s, (gsize)(q - s));
                char *rest = py_strip(head, NULL, true, false);
                g_free(head);
                g_ptr_array_add(words, jv_str_take(rest));
                break;
            }
            const char *we = q;
            while (q > s) {
                const char *prev = g_utf8_find_prev_char(s, q);
                if (jv_py_isspace(g_utf8_get_char(prev)))
                    break;
                q = prev;
            }
            g_ptr_array_add(words, jv_str_len(q, (size_t)(we - q)));
            n++;
        }
        for (guint i = words->len; i-- > 0;)
            jv_list_push(l, g_ptr_array_index(words, i));
    }
    g_ptr_array_free(words, TRUE);
    return l;
}

static bool
is_line_break(gunichar c)
{
    return c == '\n' || c == '\r' || c == 0x0b || c == 0x0c || c == 0x1c || c == 0x1d || c == 0x1e || c == 0x85 ||
           c == 0x2028 || c == 0x2029;
}

/* str.splitlines() without keepends. */
static Jv *
py_splitlines(const char *s)
{
    Jv *l = jv_list_new();
    const char *start = s, *p = s;
    while (*p && !jbudget_stopped()) {
        gunichar c = g_utf8_get_char(p);
        const char *next = g_utf8_next_char(p);
        if (is_line_break(c)) {
            jv_list_push(l, jv_str_len(start, (size_t)(p - start)));
            if (c == '\r' && *next == '\n')
                next++;
            start = next;
        }
        p = next;
    }
    if (p > start)
        jv_list_push(l, jv_str_len(start, (size_t)(p - start)));
    return l;
}

static int64_t
cp_index(const char *s, const char *at)
{
    return (int64_t)jutf8_len(s, (size_t)(at - s));
}

/* ------------------------------------------------------------------ helpers over values */

/* item.a.b as jinja2's attribute getters do it (getitem, numeric parts as ints). */
static Jv *
attr_path(JCtx *ctx, int line, Jv *item, const char *path)
{
    if (!jstep(ctx, line, 1 + strlen(path) / 64))
        return NULL;
    Jv *cur = jv_ref(item);
    gchar **parts = g_strsplit(path, ".", -1);
    for (gchar **p = parts; *p && cur; p++) {
        Jv *key;
        char *endp = NULL;
        long long num = strtoll(*p, &endp, 10);
        if (**p && endp && *endp == '\0')
            key = jv_int(num);
        else
            key = jv_str(*p);
        Jv *next = jinja_getitem(ctx, line, cur, key);
        jv_unref(key);
        jv_unref(cur);
        cur = next;
    }
    g_strfreev(parts);
    return cur;
}

static Jv *
gen_list(void)
{
    Jv *l = jv_list_new();
    l->u.list.gen = true;
    return l;
}

static char *
soft_str(const Jv *v)
{
    return jv_to_string(v);
}

/* ------------------------------------------------------------------ filters */

typedef Jv *(*FilterFn)(JCtx *ctx, int line, Jv *v, JArgs *a);

static Jv *
f_trim(JCtx *ctx, int line, Jv *v, JArgs *a)
{
    static const char *const kw[] = { "chars", NULL };
    if (!check_args(ctx, line, "trim", a, 1, kw))
        return NULL;
    Jv *chars = jargs_get(a, 0, "chars");
    const char *cs = NULL;
    if (chars && chars->kind != JV_NONE && !(cs = str_arg(ctx, line, "trim", chars)))
        return NULL;
    char *s = soft_str(v);
    char *r = py_strip(s, cs, true, true);
    g_free(s);
    return jv_str_take(r);
}

static Jv *
f_length(JCtx *ctx, int line, Jv *v, JArgs *a)
{
    if (!check_args(ctx, line, "length", a, 0, NULL))
        return NULL;
    switch (v->kind) {
    case JV_UNDEFINED:
        return jv_int(0);
    case JV_STRING:
        jbudget_step(v->u.str.len / 64);
        return jv_int((int64_t)jutf8_len(v->u.str.s, v->u.str.len));
    case JV_LIST:
        if (v->u.list.gen)
            break;
        return jv_int((int64_t)v->u.list.n);
    case JV_DICT:
        return jv_int((int64_t)v->u.dict.n);
    default:
        break;
    }
    return jerr(ctx, line, HR_ERR_FORMAT, "object of type '%s' has no len()", jv_type_name(v));
}

static Jv *
f_tojson(JCtx *ctx, int line, Jv *v, JArgs *a)
{
    static const char *const kw[] = { "ensure_ascii", "indent", "separators", "sort_keys", NULL };
    if (!check_args(ctx, line, "tojson", a, 4, kw))
        return NULL;
    Jv *ea = jargs_get(a, 0, "ensure_ascii"), *indent = jargs_get(a, 1, "indent");
    Jv *seps = jargs_get(a, 2, "separators"), *sk = jargs_get(a, 3, "sort_keys");
    JvJsonOpts o = { .item_sep = ", ", .key_sep = ": ", .indent = "" };
    o.ensure_ascii = ea && jv_truthy(ea);
    o.sort_keys = sk && jv_truthy(sk);
    char *ind = NULL;
    if (indent && indent->kind != JV_NONE) {
        o.pretty = true;
        o.item_sep = ",";
        if (indent->kind == JV_STRING) {
            ind = g_strdup(indent->u.str.s);
        } else if (jv_is_int(indent)) {
            int64_t n = jv_as_int(indent);
            n = CLAMP(n, 0, 64);
            ind = g_strnfill((gsize)n, ' ');
        } else {
            return jerr(ctx, line, HR_ERR_FORMAT, "tojson: indent must be an integer or a string");
        }
        o.indent = ind;
    }
    if (seps && seps->kind != JV_NONE) {
        if (seps->kind != JV_LIST || seps->u.list.n != 2 || seps->u.list.items[0]->kind != JV_STRING ||
            seps->u.list.items[1]->kind != JV_STRING) {
            g_free(ind);
            return jerr(ctx, line, HR_ERR_FORMAT, "tojson: separators must be a pair of strings");
        }
        o.item_sep = seps->u.list.items[0]->u.str.s;
        o.key_sep = seps->u.list.items[1]->u.str.s;
    }
    GString *g = g_string_new(NULL);
    char *why = NULL;
    bool ok = jv_to_json(g, v, &o, &why);
    g_free(ind);
    if (!ok) {
        g_string_free(g, TRUE);
        Jv *r = jerr(ctx, line, HR_ERR_FORMAT, "%s", why);
        g_free(why);
        return r;
    }
    return jv_str_gstring(g);
}

static Jv *
f_default(JCtx *ctx, int line, Jv *v, JArgs *a)
{
    static const char *const kw[] = { "default_value", "boolean", NULL };
    if (!check_args(ctx, line, "default", a, 2, kw))
        return NULL;
    Jv *dv = jargs_get(a, 0, "default_value"), *boolean = jargs_get(a, 1, "boolean");
    bool use = v->kind == JV_UNDEFINED || (boolean && jv_truthy(boolean) && !jv_truthy(v));
    if (use)
        return dv ? jv_ref(dv) : jv_str("");
    return jv_ref(v);
}

static Jv *
f_items(JCtx *ctx, int line, Jv *v, JArgs *a)
{
    if (!check_args(ctx, line, "items", a, 0, NULL))
        return NULL;
    if (v->kind == JV_UNDEFINED)
        return jv_list_new();
    if (v->kind != JV_DICT)
        return jerr(ctx, line, HR_ERR_FORMAT, "Can only get item pairs from a mapping.");
    if (!jstep(ctx, line, 1 + v->u.dict.n / 16))
        return NULL;
    Jv *l = jv_list_new();
    for (size_t i = 0; i < v->u.dict.n; i++) {
        Jv *t = jv_tuple_new();
        jv_list_push(t, jv_str(v->u.dict.keys[i]));
        jv_list_push(t, jv_ref(v->u.dict.vals[i]));
        jv_list_push(l, t);
    }
    return l;
}

static Jv *
f_upper(JCtx *ctx, int line, Jv *v, JArgs *a)
{
    if (!check_args(ctx, line, "upper", a, 0, NULL))
        return NULL;
    char *s = soft_str(v);
    Jv *r = jv_str_take(py_upper(s));
    g_free(s);
    return r;
}

static Jv *
f_lower(JCtx *ctx, int line, Jv *v, JArgs *a)
{
    if (!check_args(ctx, line, "lower", a, 0, NULL))
        return NULL;
    char *s = soft_str(v);
    Jv *r = jv_str_take(py_lower(s));
    g_free(s);
    return r;
}

static Jv *
f_capitalize(JCtx *ctx, int line, Jv *v, JArgs *a)
{
    if (!check_args(ctx, line, "capitalize", a, 0, NULL))
        return NULL;
    char *s = soft_str(v);
    Jv *r = jv_str_take(py_capitalize(s));
    g_free(s);
    return r;
}

static Jv *
f_title(JCtx *ctx, int line, Jv *v, JArgs *a)
{
    if (!check_args(ctx, line, "title", a, 0, NULL))
        return NULL;
    char *s = soft_str(v);
    Jv *r = jv_str_take(jinja_title(s));
    g_free(s);
    return r;
}

static Jv *
f_string(JCtx *ctx, int line, Jv *v, JArgs *a)
{
    if (!check_args(ctx, line, "string", a, 0, NULL))
        return NULL;
    return jv_str_take(soft_str(v));
}

static Jv *
f_safe(JCtx *ctx, int line, Jv *v, JArgs *a)
{
    if (!check_args(ctx, line, "safe", a, 0, NULL))
        return NULL;
    return jv_str_take(soft_str(v));
}

static Jv *
f_escape(JCtx *ctx, int line, Jv *v, JArgs *a)
{
    if (!check_args(ctx, line, "escape", a, 0, NULL))
        return NULL;
    char *s = soft_str(v);
    GString *g = g_string_new(NULL);
    for (const char *p = s; *p; p++) {
        if (((p - s) & 4095) == 0 && !jstring_fits(ctx, line, g->len)) {
            g_free(s);
            g_string_free(g, TRUE);
            return NULL;
        }
        switch (*p) {
        case '&': g_string_append(g, "&amp;"); break;
        case '<': g_string_append(g, "&lt;"); break;
        case '>': g_string_append(g, "&gt;"); break;
        case '"': g_string_append(g, "&#34;"); break;
        case '\'': g_string_append(g, "&#39;"); break;
        default: g_string_append_c(g, *p);
        }
    }
    g_free(s);
    return jv_str_gstring(g);
}

static Jv *
f_list(JCtx *ctx, int line, Jv *v, JArgs *a)
{
    if (!check_args(ctx, line, "list", a, 0, NULL))
        return NULL;
    return jinja_iterate(ctx, line, v);
}

static Jv *
f_join(JCtx *ctx, int line, Jv *v, JArgs *a)
{
    static const char *const kw[] = { "d", "attribute", NULL };
    if (!check_args(ctx, line, "join", a, 2, kw))
        return NULL;
    Jv *d = jargs_get(a, 0, "d"), *attr = jargs_get(a, 1, "attribute");
    Jv *items = jinja_iterate(ctx, line, v);
    if (!items)
        return NULL;
    char *sep = d ? soft_str(d) : g_strdup("");
    GString *g = g_string_new(NULL);
    for (size_t i = 0; i < items->u.list.n; i++) {
        if (!jstep(ctx, line, 1) || !jstring_fits(ctx, line, g->len + strlen(sep))) {
            g_string_free(g, TRUE);
            g_free(sep);
            jv_unref(items);
            return NULL;
        }
        Jv *it = jv_ref(items->u.list.items[i]);
        if (attr) {
            char *path = soft_str(attr);
            Jv *x = attr_path(ctx, line, it, path);
            g_free(path);
            jv_unref(it);
            if (!x) {
                g_string_free(g, TRUE);
                g_free(sep);
                jv_unref(items);
                return NULL;
            }
            it = x;
        }
        if (i)
            g_string_append(g, sep);
        jv_str_append(g, it);
        jv_unref(it);
    }
    g_free(sep);
    if (!jstring_fits(ctx, line, g->len)) {
        g_string_free(g, TRUE);
        jv_unref(items);
        return NULL;
    }
    jv_unref(items);
    return jv_str_gstring(g);
}

static Jv *
f_first(JCtx *ctx, int line, Jv *v, JArgs *a)
{
    if (!check_args(ctx, line, "first", a, 0, NULL))
        return NULL;
    Jv *items = jinja_iterate(ctx, line, v);
    if (!items)
        return NULL;
    Jv *r = items->u.list.n ? jv_ref(items->u.list.items[0]) : jv_undefined("No first item, sequence was empty.");
    jv_unref(items);
    return r;
}

static Jv *
f_last(JCtx *ctx, int line, Jv *v, JArgs *a)
{
    if (!check_args(ctx, line, "last", a, 0, NULL))
        return NULL;
    if (v->kind == JV_LIST && v->u.list.gen)
        return jerr(ctx, line, HR_ERR_FORMAT, "'generator' object is not reversible");
    Jv *items = jinja_iterate(ctx, line, v);
    if (!items)
        return NULL;
    size_t n = items->u.list.n;
    Jv *r = n ? jv_ref(items->u.list.items[n - 1]) : jv_undefined("No last item, sequence was empty.");
    jv_unref(items);
    return r;
}

static Jv *
f_reverse(JCtx *ctx, int line, Jv *v, JArgs *a)
{
    if (!check_args(ctx, line, "reverse", a, 0, NULL))
        return NULL;
    Jv *items = jinja_iterate(ctx, line, v);
    if (!items)
        return NULL;
    size_t n = items->u.list.n;
    Jv *r;
    if (v->kind == JV_STRING) {
        GString *g = g_string_new(NULL);
        for (size_t i = n; i-- > 0;)
            jv_str_append(g, items->u.list.items[i]);
        r = jv_str_gstring(g);
    } else {
        r = gen_list();
        for (size_t i = n; i-- > 0;)
            jv_list_push(r, jv_ref(items->u.list.items[i]));
    }
    jv_unref(items);
    return r;
}

/* select / reject / selectattr / rejectattr */
static Jv *
select_common(JCtx *ctx, int line, Jv *v, JArgs *a, bool want, bool by_attr, const char *what)
{
    if (a->nkw) {
        jerr(ctx, line, HR_ERR_FORMAT, "%s got an unexpected keyword argument '%s'", what, a->kwn[0]);
        return NULL;
    }
    Jv *items = jinja_iterate(ctx, line, v);
    if (!items)
        return NULL;
    if (items->u.list.n == 0) { /* jinja2 checks the arguments only when there are items */
        jv_unref(items);
        return gen_list();
    }
    size_t k = 0;
    char *attr = NULL;
    if (by_attr) {
        if (a->npos < 1) {
            jv_unref(items);
            return jerr(ctx, line, HR_ERR_FORMAT, "%s: missing attribute name", what);
        }
        attr = soft_str(a->pos[k++]);
    }
    const char *test = NULL;
    if (k < a->npos) {
        test = str_arg(ctx, line, what, a->pos[k]);
        bool supported = false;
        if (test && (!jinja_test_known(test, &supported) || !supported)) {
            jerr(ctx, line, HR_ERR_FORMAT, "%s: unknown test '%s'", what, test);
            test = NULL;
        }
        if (!test) {
            g_free(attr);
            jv_unref(items);
            return NULL;
        }
        k++;
    }
    JArgs targs = { .pos = a->pos + k, .npos = a->npos - k };
    Jv *out = gen_list();
    for (size_t i = 0; i < items->u.list.n; i++) {
        if (!jstep(ctx, line, 1))
            goto fail;
        Jv *it = items->u.list.items[i];
        Jv *x = attr ? attr_path(ctx, line, it, attr) : jv_ref(it);
        if (!x)
            goto fail;
        int r = test ? jinja_apply_test(ctx, line, test, x, &targs) : jv_truthy(x);
        jv_unref(x);
        if (r < 0)
            goto fail;
        if ((r != 0) == want)
            jv_list_push(out, jv_ref(it));
    }
    g_free(attr);
    jv_unref(items);
    return out;
fail:
    g_free(attr);
    jv_unref(items);
    jv_unref(out);
    return NULL;
}

static Jv *f_select(JCtx *c, int l, Jv *v, JArgs *a) { return select_common(c, l, v, a, true, false, "select"); }
static Jv *f_reject(JCtx *c, int l, Jv *v, JArgs *a) { return select_common(c, l, v, a, false, false, "reject"); }
static Jv *f_selectattr(JCtx *c, int l, Jv *v, JArgs *a) { return select_common(c, l, v, a, true, true, "selectattr"); }
static Jv *f_rejectattr(JCtx *c, int l, Jv *v, JArgs *a) { return select_common(c, l, v, a, false, true, "rejectattr"); }

static Jv *
f_map(JCtx *ctx, int line, Jv *v, JArgs *a)
{
    Jv *attr = jargs_get(a, -1, "attribute");
    Jv *items = jinja_iterate(ctx, line, v);
    if (!items)
        return NULL;
    Jv *out = gen_list();
    if (items->u.list.n == 0) { /* jinja2 checks the arguments only when there are items */
        jv_unref(items);
        return out;
    }
    if (attr) {
        static const char *const kw[] = { "attribute", "default", NULL };
        if (!check_args(ctx, line, "map", a, 0, kw))
            goto fail;
        Jv *dflt = jargs_get(a, -1, "default");
        char *path = soft_str(attr);
        for (size_t i = 0; i < items->u.list.n; i++) {
            Jv *x = attr_path(ctx, line, items->u.list.items[i], path);
            if (!x) {
                g_free(path);
                goto fail;
            }
            if (x->kind == JV_UNDEFINED && dflt) {
                jv_unref(x);
                x = jv_ref(dflt);
            }
            jv_list_push(out, x);
        }
        g_free(path);
    } else {
        if (a->npos < 1) {
            jerr(ctx, line, HR_ERR_FORMAT, "map: expected a filter name or attribute=");
            goto fail;
        }
        const char *name = str_arg(ctx, line, "map", a->pos[0]);
        if (!name)
            goto fail;
        bool supported = false;
        if (!jinja_filter_known(name, &supported) || !supported) {
            jerr(ctx, line, supported ? HR_ERR_FORMAT : HR_ERR_UNSUPPORTED, "map: unknown filter '%s'", name);
            goto fail;
        }
        JArgs fargs = { .pos = a->pos + 1, .npos = a->npos - 1, .kwn = a->kwn, .kwv = a->kwv, .nkw = a->nkw };
        for (size_t i = 0; i < items->u.list.n; i++) {
            Jv *x = jstep(ctx, line, 1) ? jinja_apply_filter(ctx, line, name, items->u.list.items[i], &fargs) : NULL;
            if (!x)
                goto fail;
            jv_list_push(out, x);
        }
    }
    jv_unref(items);
    return out;
fail:
    jv_unref(items);
    jv_unref(out);
    return NULL;
}

/* Key for unique/sort/min/max: the attribute, lower-cased if a string and not case sensitive. */
static Jv *
sort_key(JCtx *ctx, int line, Jv *item, const char *attr, bool case_sensitive)
{
    Jv *x = attr ? attr_path(ctx, line, item, attr) : jv_ref(item);
    if (x && !case_sensitive && x->kind == JV_STRING) {
        Jv *low = jv_str_take(py_lower(x->u.str.s));
        jv_unref(x);
        x = low;
    }
    return x;
}

static void
key_options(JArgs *a, int cs_pos, int attr_pos, bool *cs, char **attr)
{
    Jv *c = jargs_get(a, cs_pos, "case_sensitive"), *at = jargs_get(a, attr_pos, "attribute");
    *cs = c && jv_truthy(c);
    *attr = at && at->kind != JV_NONE ? soft_str(at) : NULL;
}

static Jv *
f_unique(JCtx *ctx, int line, Jv *v, JArgs *a)
{
    static const char *const kw[] = { "case_sensitive", "attribute", NULL };
    if (!check_args(ctx, line, "unique", a, 2, kw))
        return NULL;
    bool cs;
    char *attr;
    key_options(a, 0, 1, &cs, &attr);
    Jv *items = jinja_iterate(ctx, line, v);
    if (!items) {
        g_free(attr);
        return NULL;
    }
    Jv *out = gen_list(), *seen = jv_list_new();
    for (size_t i = 0; i < items->u.list.n; i++) {
        Jv *k = jstep(ctx, line, 1) ? sort_key(ctx, line, items->u.list.items[i], attr, cs) : NULL;
        if (!k) {
            jv_unref(out);
            out = NULL;
            break;
        }
        if ((k->kind == JV_LIST && !k->u.list.tuple) || k->kind == JV_DICT || k->kind == JV_NAMESPACE) {
            jerr(ctx, line, HR_ERR_FORMAT, "unhashable type: '%s'", jv_type_name(k));
            jv_unref(k);
            jv_unref(out);
            out = NULL;
            break;
        }
        bool dup = false;
        for (size_t j = 0; j < seen->u.list.n && !dup && jbudget_step(1); j++)
            dup = jv_equal(seen->u.list.items[j], k);
        if (dup) {
            jv_unref(k);
        } else {
            jv_list_push(seen, k);
            jv_list_push(out, jv_ref(items->u.list.items[i]));
        }
    }
    g_free(attr);
    jv_unref(seen);
    jv_unref(items);
    return out;
}

/* Stable insertion sort by key; false on an uncomparable pair (error set). */
static bool
sort_items(JCtx *ctx, int line, Jv **items, Jv **keys, size_t n, bool reverse)
{
    for (size_t i = 1; i < n; i++) {
        Jv *it = items[i], *k = keys[i];
        size_t j = i;
        while (j > 0) {
            int lt = jinja_compare(ctx, line, "<", reverse ? keys[j - 1] : k, reverse ? k : keys[j - 1]);
            if (lt < 0) {
                /* put it back: slot j still holds a copy of slot j + 1, and the
                 * caller frees every key */
                items[j] = it;
                keys[j] = k;
                return false;
            }
            if (!lt)
                break;
            items[j] = items[j - 1];
            keys[j] = keys[j - 1];
            j--;
        }
        items[j] = it;
        keys[j] = k;
    }
    return true;
}

static Jv *
f_sort(JCtx *ctx, int line, Jv *v, JArgs *a)
{
    static const char *const kw[] = { "reverse", "case_sensitive", "attribute", NULL };
    if (!check_args(ctx, line, "sort", a, 3, kw))
        return NULL;
    Jv *rev = jargs_get(a, 0, "reverse");
    if (rev && rev->kind == JV_UNDEFINED)
        return jerr(ctx, line, HR_ERR_FORMAT, "'Undefined' object cannot be interpreted as an integer");
    bool cs;
    char *attr;
    key_options(a, 1, 2, &cs, &attr);
    Jv *items = jinja_iterate(ctx, line, v);
    if (!items) {
        g_free(attr);
        return NULL;
    }
    size_t n = items->u.list.n;
    Jv **keys = g_new0(Jv *, n + 1);
    bool ok = true;
    for (size_t i = 0; i < n && ok; i++)
        ok = jstep(ctx, line, 1) && (keys[i] = sort_key(ctx, line, items->u.list.items[i], attr, cs)) != NULL;
    if (ok)
        ok = sort_items(ctx, line, items->u.list.items, keys, n, rev && jv_truthy(rev));
    for (size_t i = 0; i < n; i++)
        jv_unref(keys[i]);
    g_free(keys);
    g_free(attr);
    if (!ok) {
        jv_unref(items);
        return NULL;
    }
    return items;
}

static Jv *
minmax(JCtx *ctx, int line, Jv *v, JArgs *a, bool want_max)
{
    static const char *const kw[] = { "case_sensitive", "attribute", NULL };
    if (!check_args(ctx, line, want_max ? "max" : "min", a, 2, kw))
        return NULL;
    bool cs;
    char *attr;
    key_options(a, 0, 1, &cs, &attr);
    Jv *items = jinja_iterate(ctx, line, v);
    if (!items) {
        g_free(attr);
        return NULL;
    }
    Jv *best = NULL, *best_key = NULL;
    bool ok = true;
    for (size_t i = 0; i < items->u.list.n && ok; i++) {
        Jv *k = jstep(ctx, line, 1) ? sort_key(ctx, line, items->u.list.items[i], attr, cs) : NULL;
        if (!k) {
            ok = false;
            break;
        }
        if (!best) {
            best = items->u.list.items[i];
            best_key = k;
            continue;
        }
        int better = jinja_compare(ctx, line, want_max ? ">" : "<", k, best_key);
        if (better < 0) {
            jv_unref(k);
            ok = false;
        } else if (better) {
            jv_unref(best_key);
            best_key = k;
            best = items->u.list.items[i];
        } else {
            jv_unref(k);
        }
    }
    Jv *r = NULL;
    if (ok)
        r = best ? jv_ref(best) : jv_undefined_fmt("No aggregated item, sequence was empty.");
    jv_unref(best_key);
    jv_unref(items);
    g_free(attr);
    return r;
}

static Jv *f_min(JCtx *c, int l, Jv *v, JArgs *a) { return minmax(c, l, v, a, false); }
static Jv *f_max(JCtx *c, int l, Jv *v, JArgs *a) { return minmax(c, l, v, a, true); }

static Jv *
f_sum(JCtx *ctx, int line, Jv *v, JArgs *a)
{
    static const char *const kw[] = { "attribute", "start", NULL };
    if (!check_args(ctx, line, "sum", a, 2, kw))
        return NULL;
    Jv *attr = jargs_get(a, 0, "attribute"), *start = jargs_get(a, 1, "start");
    Jv *items = jinja_iterate(ctx, line, v);
    if (!items)
        return NULL;
    Jv *acc = start ? jv_ref(start) : jv_int(0);
    char *path = attr && attr->kind != JV_NONE ? soft_str(attr) : NULL;
    for (size_t i = 0; i < items->u.list.n && acc; i++) {
        if (!jstep(ctx, line, 1)) {
            jv_unref(acc);
            acc = NULL;
            break;
        }
        Jv *x = path ? attr_path(ctx, line, items->u.list.items[i], path) : jv_ref(items->u.list.items[i]);
        if (!x) {
            jv_unref(acc);
            acc = NULL;
            break;
        }
        Jv *next = jinja_binop(ctx, line, "+", acc, x);
        jv_unref(x);
        jv_unref(acc);
        acc = next;
    }
    g_free(path);
    jv_unref(items);
    return acc;
}

/* Python int() of a string: optional sign, digits with single underscores, whitespace around. */
static bool
parse_py_int(const char *s, int base, int64_t *out)
{
    char *t = py_strip(s, NULL, true, true);
    char *clean = g_malloc(strlen(t) + 1);
    size_t k = 0;
    const char *p = t;
    if (*p == '+' || *p == '-')
        clean[k++] = *p++;
    if (base == 16 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X'))
        p += 2;
    bool ok = *p != '\0' && *p != '_';
    for (; *p && ok; p++) {
        if (*p == '_') {
            ok = p[1] != '\0' && p[1] != '_';
            continue;
        }
        clean[k++] = *p;
    }
    clean[k] = '\0';
    g_free(t);
    if (!ok) {
        g_free(clean);
        return false;
    }
    char *end = NULL;
    errno = 0;
    long long v = strtoll(clean, &end, base);
    ok = end && *end == '\0' && errno == 0 && k > 0;
    g_free(clean);
    *out = v;
    return ok;
}

static bool
parse_py_float(const char *s, double *out)
{
    char *t = py_strip(s, NULL, true, true);
    char *end = NULL;
    double d = g_ascii_strtod(t, &end);
    bool ok = *t && end && *end == '\0';
    if (!ok) {
        char *low = g_ascii_strdown(t, -1);
        const char *q = low + (*low == '+' || *low == '-');
        if (strcmp(q, "inf") == 0 || strcmp(q, "infinity") == 0) {
            d = *low == '-' ? -INFINITY : INFINITY;
            ok = true;
        } else if (strcmp(q, "nan") == 0) {
            d = NAN;
            ok = true;
        }
        g_free(low);
    }
    g_free(t);
    *out = d;
    return ok;
}

static Jv *
f_int(JCtx *ctx, int line, Jv *v, JArgs *a)
{
    static const char *const kw[] = { "default", "base", NULL };
    if (!check_args(ctx, line, "int", a, 2, kw))
        return NULL;
    Jv *dflt = jargs_get(a, 0, "default"), *basev = jargs_get(a, 1, "base");
    int64_t base = 10;
    if (basev && !int_arg(ctx, line, "int", basev, &base))
        return NULL;
    if (v->kind == JV_UNDEFINED)
        return jerr_undefined(ctx, line, v);
    if (jv_is_int(v))
        return jv_int(jv_as_int(v));
    double d = NAN;
    if (v->kind == JV_FLOAT) {
        d = v->u.f;
    } else if (v->kind == JV_STRING) {
        int64_t i;
        if (base >= 2 && base <= 36 && parse_py_int(v->u.str.s, (int)base, &i))
            return jv_int(i);
        if (!parse_py_float(v->u.str.s, &d))
            d = NAN;
    }
    /* int(float): NaN is a ValueError (the default), infinity an
     * OverflowError that jinja2 lets through, and Python's ints are unbounded. */
    if (isnan(d))
        return dflt ? jv_ref(dflt) : jv_int(0);
    if (isinf(d))
        return jerr(ctx, line, HR_ERR_FORMAT, "int: cannot convert float infinity to integer");
    if (d >= 0x1p63 || d < -0x1p63)
        return jerr(ctx, line, HR_ERR_UNSUPPORTED, "int: integer overflow (only 64-bit integers are supported)");
    return jv_int((int64_t)d);
}

static Jv *
f_float(JCtx *ctx, int line, Jv *v, JArgs *a)
{
    static const char *const kw[] = { "default", NULL };
    if (!check_args(ctx, line, "float", a, 1, kw))
        return NULL;
    Jv *dflt = jargs_get(a, 0, "default");
    if (v->kind == JV_UNDEFINED)
        return jerr_undefined(ctx, line, v);
    if (jv_is_number(v))
        return jv_float(jv_as_double(v));
    double d;
    if (v->kind == JV_STRING && parse_py_float(v->u.str.s, &d))
        return jv_float(d);
    return dflt ? jv_ref(dflt) : jv_float(0.0);
}

static Jv *
f_abs(JCtx *ctx, int line, Jv *v, JArgs *a)
{
    if (!check_args(ctx, line, "abs", a, 0, NULL))
        return NULL;
    if (jv_is_int(v)) {
        int64_t i = jv_as_int(v);
        if (i == INT64_MIN)
            return jerr(ctx, line, HR_ERR_UNSUPPORTED, "integer overflow");
        return jv_int(i < 0 ? -i : i);
    }
    if (v->kind == JV_FLOAT)
        return jv_float(fabs(v->u.f));
    if (v->kind == JV_UNDEFINED)
        return jerr_undefined(ctx, line, v);
    return jerr(ctx, line, HR_ERR_FORMAT, "bad operand type for abs(): '%s'", jv_type_name(v));
}

static Jv *
f_replace(JCtx *ctx, int line, Jv *v, JArgs *a)
{
    static const char *const kw[] = { "old", "new", "count", NULL };
    if (!check_args(ctx, line, "replace", a, 3, kw))
        return NULL;
    Jv *old = jargs_get(a, 0, "old"), *nw = jargs_get(a, 1, "new"), *count = jargs_get(a, 2, "count");
    if (!old || !nw)
        return jerr(ctx, line, HR_ERR_FORMAT, "replace: missing 'old' or 'new'");
    int64_t n = -1;
    if (count && count->kind != JV_NONE && !int_arg(ctx, line, "replace", count, &n))
        return NULL;
    char *s = soft_str(v), *o = soft_str(old), *w = soft_str(nw);
    char *res = py_replace(s, o, w, n);
    Jv *r = res ? jv_str_take(res) : jerr(ctx, line, HR_ERR_UNSUPPORTED, "replace: result too large");
    g_free(s);
    g_free(o);
    g_free(w);
    return r;
}

static Jv *
f_attr(JCtx *ctx, int line, Jv *v, JArgs *a)
{
    if (!check_args(ctx, line, "attr", a, 1, NULL))
        return NULL;
    if (a->npos < 1)
        return jerr(ctx, line, HR_ERR_FORMAT, "attr: missing attribute name");
    const char *name = str_arg(ctx, line, "attr", a->pos[0]);
    if (!name)
        return NULL;
    /* getattr only: a dict key is not an attribute */
    if (v->kind == JV_DICT) {
        if (jinja_method_kind(v, name))
            return jinja_getattr(ctx, line, v, name);
        return jv_undefined_fmt("'dict object' has no attribute '%s'", name);
    }
    return jinja_getattr(ctx, line, v, name);
}

static Jv *
f_indent(JCtx *ctx, int line, Jv *v, JArgs *a)
{
    static const char *const kw[] = { "width", "first", "blank", NULL };
    if (!check_args(ctx, line, "indent", a, 3, kw))
        return NULL;
    Jv *width = jargs_get(a, 0, "width"), *first = jargs_get(a, 1, "first"), *blank = jargs_get(a, 2, "blank");
    char *ind;
    if (!width)
        ind = g_strdup("    ");
    else if (width->kind == JV_STRING)
        ind = g_strdup(width->u.str.s);
    else if (jv_is_int(width))
        ind = g_strnfill((gsize)CLAMP(jv_as_int(width), 0, 1024), ' ');
    else
        return jerr(ctx, line, HR_ERR_FORMAT, "indent: width must be an integer or a string");
    char *s = soft_str(v);
    char *s2 = g_strconcat(s, "\n", NULL);
    g_free(s);
    Jv *lines = py_splitlines(s2);
    g_free(s2);
    GString *g = g_string_new(NULL);
    bool bl = blank && jv_truthy(blank);
    for (size_t i = 0; i < lines->u.list.n; i++) {
        const Jv *l = lines->u.list.items[i];
        if (!jstring_fits(ctx, line, (uint64_t)g->len + strlen(ind) + l->u.str.len + 1)) {
            jv_unref(lines);
            g_string_free(g, TRUE);
            g_free(ind);
            return NULL;
        }
        if (i > 0) {
            g_string_append_c(g, '\n');
            if (bl || l->u.str.len > 0)
                g_string_append(g, ind);
        }
        g_string_append(g, l->u.str.s);
    }
    jv_unref(lines);
    if (first && jv_truthy(first))
        g_string_prepend(g, ind);
    g_free(ind);
    return jv_str_gstring(g);
}

static const struct {
    const char *name;
    FilterFn fn;
} FILTERS[] = {
    { "abs", f_abs },
    { "attr", f_attr },
    { "capitalize", f_capitalize },
    { "count", f_length },
    { "d", f_default },
    { "default", f_default },
    { "e", f_escape },
    { "escape", f_escape },
    { "first", f_first },
    { "float", f_float },
    { "forceescape", f_escape },
    { "indent", f_indent },
    { "int", f_int },
    { "items", f_items },
    { "join", f_join },
    { "last", f_last },
    { "length", f_length },
    { "list", f_list },
    { "lower", f_lower },
    { "map", f_map },
    { "max", f_max },
    { "min", f_min },
    { "reject", f_reject },
    { "rejectattr", f_rejectattr },
    { "replace", f_replace },
    { "reverse", f_reverse },
    { "safe", f_safe },
    { "select", f_select },
    { "selectattr", f_selectattr },
    { "sort", f_sort },
    { "string", f_string },
    { "sum", f_sum },
    { "title", f_title },
    { "tojson", f_tojson },
    { "trim", f_trim },
    { "unique", f_unique },
    { "upper", f_upper },
};

static const char *const UNSUPPORTED_FILTERS[] = {
    "batch", "center", "dictsort", "filesizeformat", "format", "groupby", "pprint", "random", "round", "slice",
    "striptags", "truncate", "urlencode", "urlize", "wordcount", "wordwrap", "xmlattr",
};

static FilterFn
find_filter(const char *name)
{
    for (size_t i = 0; i < G_N_ELEMENTS(FILTERS); i++)
        if (strcmp(FILTERS[i].name, name) == 0)
            return FILTERS[i].fn;
    return NULL;
}

bool
jinja_filter_known(const char *name, bool *supported)
{
    *supported = find_filter(name) != NULL;
    if (*supported)
        return true;
    for (size_t i = 0; i < G_N_ELEMENTS(UNSUPPORTED_FILTERS); i++)
        if (strcmp(UNSUPPORTED_FILTERS[i], name) == 0)
            return true;
    return false;
}

Jv *
jinja_apply_filter(JCtx *ctx, int line, const char *name, Jv *value, JArgs *args)
{
    FilterFn fn = find_filter(name);
    if (!fn)
        return jerr(ctx, line, HR_ERR_UNSUPPORTED, "filter '%s' is not supported", name);
    return fn(ctx, line, value, args);
}

/* ------------------------------------------------------------------ tests */

static bool in_names(const char *name, const char *const *names, size_t n);

static int
need_arg(JCtx *ctx, int line, const char *name, const JArgs *a)
{
    if (a->npos < 1) {
        jerr(ctx, line, HR_ERR_FORMAT, "test '%s' needs an argument", name);
        return -1;
    }
    return 0;
}

static int
str_islower_upper(const Jv *v, bool want_lower)
{
    char *s = soft_str(v);
    bool cased = false, ok = true;
    for (const char *p = s; *p && ok; p = g_utf8_next_char(p)) {
        gunichar c = g_utf8_get_char(p);
        if (g_unichar_isupper(c) || g_unichar_istitle(c)) {
            cased = true;
            ok = !want_lower;
        } else if (g_unichar_islower(c)) {
            cased = true;
            ok = want_lower;
        }
    }
    g_free(s);
    return ok && cased;
}

static const char *const TESTS[] = {
    "boolean", "callable", "defined", "divisibleby", "eq", "equalto", "escaped", "even", "false", "filter", "float",
    "ge", "gt", "greaterthan", "in", "integer", "iterable", "le", "lessthan", "lower", "lt", "mapping", "ne", "none",
    "number", "odd", "sameas", "sequence", "string", "test", "true", "undefined", "upper", "==", "!=", "<", "<=",
    ">", ">=",
};

bool
jinja_test_known(const char *name, bool *supported)
{
    for (size_t i = 0; i < G_N_ELEMENTS(TESTS); i++)
        if (strcmp(TESTS[i], name) == 0) {
            *supported = true;
            return true;
        }
    *supported = false;
    return false;
}

static const char *
compare_op(const char *name)
{
    static const char *const map[][2] = {
        { "eq", "==" }, { "equalto", "==" }, { "==", "==" }, { "ne", "!=" }, { "!=", "!=" },
        { "lt", "<" }, { "lessthan", "<" }, { "<", "<" }, { "le", "<=" }, { "<=", "<=" },
        { "gt", ">" }, { "greaterthan", ">" }, { ">", ">" }, { "ge", ">=" }, { ">=", ">=" },
    };
    for (size_t i = 0; i < G_N_ELEMENTS(map); i++)
        if (strcmp(map[i][0], name) == 0)
            return map[i][1];
    return NULL;
}

static bool
test_takes_arg(const char *name)
{
    static const char *const with_arg[] = { "divisibleby", "in", "sameas", "filter", "test" };
    return compare_op(name) || in_names(name, with_arg, G_N_ELEMENTS(with_arg));
}

int
jinja_apply_test(JCtx *ctx, int line, const char *name, Jv *v, JArgs *a)
{
    JvKind k = v->kind;
    size_t want = test_takes_arg(name) ? 1 : 0;
    if (a->nkw || a->npos > want) {
        jerr(ctx, line, HR_ERR_FORMAT, "test '%s' takes %zu argument(s), %zu given", name, want, a->npos + a->nkw);
        return -1;
    }
    const char *op = compare_op(name);
    if (op) {
        if (need_arg(ctx, line, name, a) < 0)
            return -1;
        return jinja_compare(ctx, line, op, v, a->pos[0]);
    }
    if (strcmp(name, "defined") == 0)
        return k != JV_UNDEFINED;
    if (strcmp(name, "undefined") == 0)
        return k == JV_UNDEFINED;
    if (strcmp(name, "none") == 0)
        return k == JV_NONE;
    if (strcmp(name, "string") == 0)
        return k == JV_STRING;
    if (strcmp(name, "number") == 0)
        return jv_is_number(v);
    if (strcmp(name, "integer") == 0)
        return k == JV_INT;
    if (strcmp(name, "float") == 0)
        return k == JV_FLOAT;
    if (strcmp(name, "boolean") == 0)
        return k == JV_BOOL;
    if (strcmp(name, "true") == 0)
        return k == JV_BOOL && v->u.b;
    if (strcmp(name, "false") == 0)
        return k == JV_BOOL && !v->u.b;
    if (strcmp(name, "mapping") == 0)
        return k == JV_DICT;
    if (strcmp(name, "iterable") == 0)
        return k == JV_STRING || k == JV_LIST || k == JV_DICT || k == JV_UNDEFINED;
    if (strcmp(name, "sequence") == 0)
        return k == JV_STRING || (k == JV_LIST && !v->u.list.gen) || k == JV_DICT || k == JV_UNDEFINED;
    if (strcmp(name, "callable") == 0)
        return k == JV_FUNC || k == JV_UNDEFINED; /* jinja2's Undefined has __call__ */
    if (strcmp(name, "escaped") == 0)
        return 0;
    if (strcmp(name, "lower") == 0 || strcmp(name, "upper") == 0)
        return str_islower_upper(v, name[0] == 'l');
    if (strcmp(name, "odd") == 0 || strcmp(name, "even") == 0 || strcmp(name, "divisibleby") == 0) {
        Jv *two = NULL, *by;
        if (name[0] == 'd') {
            if (need_arg(ctx, line, name, a) < 0)
                return -1;
            by = a->pos[0];
        } else {
            by = two = jv_int(2);
        }
        Jv *m = jinja_binop(ctx, line, "%", v, by);
        jv_unref(two);
        if (!m)
            return -1;
        bool zero = jv_as_double(m) == 0.0;
        jv_unref(m);
        return strcmp(name, "odd") == 0 ? !zero : zero;
    }
    if (strcmp(name, "in") == 0) {
        if (need_arg(ctx, line, name, a) < 0)
            return -1;
        return jinja_compare(ctx, line, "in", v, a->pos[0]);
    }
    if (strcmp(name, "sameas") == 0) {
        if (need_arg(ctx, line, name, a) < 0)
            return -1;
        Jv *o = a->pos[0];
        if (v == o)
            return 1;
        if (k != o->kind)
            return 0;
        if (k == JV_NONE || k == JV_UNDEFINED)
            return k == JV_NONE;
        if (k == JV_BOOL)
            return v->u.b == o->u.b;
        if (k == JV_INT) /* CPython caches small integers */
            return v->u.i == o->u.i && v->u.i >= -5 && v->u.i <= 256;
        return 0;
    }
    if (strcmp(name, "filter") == 0 || strcmp(name, "test") == 0) {
        bool sup = false;
        if (k != JV_STRING)
            return 0;
        return name[0] == 'f' ? jinja_filter_known(v->u.str.s, &sup) && sup
                              : jinja_test_known(v->u.str.s, &sup) && sup;
    }
    jerr(ctx, line, HR_ERR_UNSUPPORTED, "test '%s' is not supported", name);
    return -1;
}

/* ------------------------------------------------------------------ methods */

static const char *const STR_METHODS[] = {
    "strip", "lstrip", "rstrip", "startswith", "endswith", "split", "rsplit", "splitlines", "upper", "lower",
    "title", "capitalize", "replace", "format", "join", "find", "rfind", "index", "rindex", "count", "isdigit",
    "isalpha", "isalnum", "isspace", "islower", "isupper", "isnumeric", "isdecimal", "removeprefix", "removesuffix",
};
static const char *const STR_OTHER[] = {
    "center", "ljust", "rjust", "zfill", "partition", "rpartition", "expandtabs", "swapcase", "casefold", "encode",
    "translate", "maketrans", "isidentifier", "isprintable", "istitle", "isascii", "format_map",
};
static const char *const DICT_METHODS[] = { "items", "keys", "values", "get" };
static const char *const DICT_OTHER[] = { "copy", "update", "pop", "popitem", "setdefault", "clear", "fromkeys" };
static const char *const LIST_METHODS[] = { "index", "count" };
static const char *const LIST_OTHER[] = { "append", "extend", "insert", "remove", "pop", "clear", "sort", "reverse",
                                          "copy" };

static bool
in_names(const char *name, const char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(names[i], name) == 0)
            return true;
    return false;
}

int
jinja_method_kind(const Jv *obj, const char *name)
{
    switch (obj->kind) {
    case JV_STRING:
        return in_names(name, STR_METHODS, G_N_ELEMENTS(STR_METHODS)) ? 1
               : in_names(name, STR_OTHER, G_N_ELEMENTS(STR_OTHER))   ? 2
                                                                      : 0;
    case JV_DICT:
        return in_names(name, DICT_METHODS, G_N_ELEMENTS(DICT_METHODS)) ? 1
               : in_names(name, DICT_OTHER, G_N_ELEMENTS(DICT_OTHER))   ? 2
                                                                        : 0;
    case JV_LIST:
        if (obj->u.list.gen)
            return 0;
        return in_names(name, LIST_METHODS, G_N_ELEMENTS(LIST_METHODS)) ? 1
               : in_names(name, LIST_OTHER, G_N_ELEMENTS(LIST_OTHER))   ? 2
                                                                        : 0;
    default:
        return 0;
    }
}

static bool
prefix_match(JCtx *ctx, int line, const char *s, size_t sl, Jv *prefix, bool at_end, int *result)
{
    if (prefix->kind == JV_LIST && prefix->u.list.tuple) {
        for (size_t i = 0; i < prefix->u.list.n; i++) {
            int r;
            if (!jstep(ctx, line, 1) || !prefix_match(ctx, line, s, sl, prefix->u.list.items[i], at_end, &r))
                return false;
            if (r) {
                *result = 1;
                return true;
            }
        }
        *result = 0;
        return true;
    }
    if (prefix->kind != JV_STRING) {
        jerr(ctx, line, HR_ERR_FORMAT, "%s first arg must be str or a tuple of str, not %s",
             at_end ? "endswith" : "startswith", jv_type_name(prefix));
        return false;
    }
    size_t pl = prefix->u.str.len;
    *result = pl <= sl && memcmp(at_end ? s + sl - pl : s, prefix->u.str.s, pl) == 0;
    return true;
}

/* str.format with {} / {N} / {name} fields, !r / !s conversions, {{ and }}. */
static Jv *
py_format(JCtx *ctx, int line, const char *fmt, JArgs *a)
{
    GString *g = g_string_new(NULL);
    size_t auto_idx = 0;
    for (const char *p = fmt; *p;) {
        if (p[0] == '{' && p[1] == '{') {
            g_string_append_c(g, '{');
            p += 2;
            continue;
        }
        if (p[0] == '}' && p[1] == '}') {
            g_string_append_c(g, '}');
            p += 2;
            continue;
        }
        if (*p == '}') {
            g_string_free(g, TRUE);
            return jerr(ctx, line, HR_ERR_FORMAT, "Single '}' encountered in format string");
        }
        if (*p != '{') {
            g_string_append_c(g, *p++);
            continue;
        }
        const char *close = strchr(p, '}');
        if (!close) {
            g_string_free(g, TRUE);
            return jerr(ctx, line, HR_ERR_FORMAT, "Single '{' encountered in format string");
        }
        char *field = g_strndup(p + 1, (gsize)(close - p - 1));
        p = close + 1;
        char conv = 0;
        char *bang = strchr(field, '!');
        if (bang) {
            conv = bang[1];
            *bang = '\0';
        }
        if (strchr(field, ':') || strchr(field, '.') || strchr(field, '[') || (conv && conv != 'r' && conv != 's')) {
            g_free(field);
            g_string_free(g, TRUE);
            return jerr(ctx, line, HR_ERR_UNSUPPORTED, "format specs in str.format() are not supported");
        }
        Jv *val;
        if (!*field) {
            val = jargs_get(a, (int)auto_idx++, NULL);
        } else if (g_ascii_isdigit(field[0])) {
            guint64 idx = g_ascii_strtoull(field, NULL, 10);
            val = jargs_get(a, (int)MIN(idx, (guint64)INT_MAX), NULL);
        } else {
            val = jargs_get(a, -1, field);
        }
        if (!val) {
            Jv *r = jerr(ctx, line, HR_ERR_FORMAT, "str.format(): no argument for field {%s}", field);
            g_free(field);
            g_string_free(g, TRUE);
            return r;
        }
        g_free(field);
        if (conv == 'r')
            jv_repr_append(g, val);
        else
            jv_str_append(g, val);
        if (!jstring_fits(ctx, line, g->len)) {
            g_string_free(g, TRUE);
            return NULL;
        }
    }
    return jv_str_gstring(g);
}

static Jv *
str_method(JCtx *ctx, int line, Jv *self, const char *name, JArgs *a)
{
    const char *s = self->u.str.s;
    char what[48];
    snprintf(what, sizeof what, "str.%s()", name);
    if (strcmp(name, "format") == 0)
        return py_format(ctx, line, s, a);
    if (strcmp(name, "strip") == 0 || strcmp(name, "lstrip") == 0 || strcmp(name, "rstrip") == 0) {
        if (!check_args(ctx, line, what, a, 1, NULL))
            return NULL;
        const char *chars = NULL;
        if (a->npos && a->pos[0]->kind != JV_NONE && !(chars = str_arg(ctx, line, what, a->pos[0])))
            return NULL;
        return jv_str_take(py_strip(s, chars, name[0] != 'r', name[0] != 'l'));
    }
    if (strcmp(name, "startswith") == 0 || strcmp(name, "endswith") == 0) {
        if (!check_args(ctx, line, what, a, 1, NULL))
            return NULL;
        if (a->npos < 1)
            return jerr(ctx, line, HR_ERR_FORMAT, "%s takes at least 1 argument", what);
        int r;
        if (!prefix_match(ctx, line, s, self->u.str.len, a->pos[0], name[0] == 'e', &r))
            return NULL;
        return jv_bool(r);
    }
    if (strcmp(name, "split") == 0 || strcmp(name, "rsplit") == 0) {
        static const char *const kw[] = { "sep", "maxsplit", NULL };
        if (!check_args(ctx, line, what, a, 2, kw))
            return NULL;
        Jv *sepv = jargs_get(a, 0, "sep"), *maxv = jargs_get(a, 1, "maxsplit");
        const char *sep = NULL;
        int64_t maxsplit = -1;
        if (sepv && sepv->kind != JV_NONE && !(sep = str_arg(ctx, line, what, sepv)))
            return NULL;
        if (sep && !*sep)
            return jerr(ctx, line, HR_ERR_FORMAT, "empty separator");
        if (maxv && !int_arg(ctx, line, what, maxv, &maxsplit))
            return NULL;
        return py_split(s, sep, maxsplit, name[0] == 'r');
    }
    if (strcmp(name, "splitlines") == 0) {
        if (!check_args(ctx, line, what, a, 0, NULL))
            return NULL;
        return py_splitlines(s);
    }
    if (strcmp(name, "upper") == 0 || strcmp(name, "lower") == 0 || strcmp(name, "title") == 0 ||
        strcmp(name, "capitalize") == 0) {
        if (!check_args(ctx, line, what, a, 0, NULL))
            return NULL;
        char *r = name[0] == 'u' ? py_upper(s) : name[0] == 'l' ? py_lower(s) : name[0] == 't' ? py_title(s)
                                                                                               : py_capitalize(s);
        return jv_str_take(r);
    }
    if (strcmp(name, "replace") == 0) {
        if (!check_args(ctx, line, what, a, 3, NULL))
            return NULL;
        if (a->npos < 2)
            return jerr(ctx, line, HR_ERR_FORMAT, "%s takes at least 2 arguments", what);
        const char *old = str_arg(ctx, line, what, a->pos[0]);
        const char *nw = old ? str_arg(ctx, line, what, a->pos[1]) : NULL;
        int64_t count = -1;
        if (!nw || (a->npos > 2 && !int_arg(ctx, line, what, a->pos[2], &count)))
            return NULL;
        char *res = py_replace(s, old, nw, count);
        return res ? jv_str_take(res) : jerr(ctx, line, HR_ERR_UNSUPPORTED, "replace: result too large");
    }
    if (strcmp(name, "join") == 0) {
        if (!check_args(ctx, line, what, a, 1, NULL))
            return NULL;
        if (a->npos < 1)
            return jerr(ctx, line, HR_ERR_FORMAT, "%s takes exactly one argument", what);
        Jv *items = jinja_iterate(ctx, line, a->pos[0]);
        if (!items)
            return NULL;
        GString *g = g_string_new(NULL);
        for (size_t i = 0; i < items->u.list.n; i++) {
            const Jv *it = items->u.list.items[i];
            if (!jstep(ctx, line, 1) ||
                (it->kind == JV_STRING && !jstring_fits(ctx, line, (uint64_t)g->len + self->u.str.len + it->u.str.len))) {
                g_string_free(g, TRUE);
                jv_unref(items);
                return NULL;
            }
            if (it->kind != JV_STRING) {
                g_string_free(g, TRUE);
                Jv *r = jerr(ctx, line, HR_ERR_FORMAT, "sequence item %zu: expected str instance, %s found", i,
                             jv_type_name(it));
                jv_unref(items);
                return r;
            }
            if (i)
                g_string_append(g, s);
            g_string_append(g, it->u.str.s);
        }
        jv_unref(items);
        return jv_str_gstring(g);
    }
    if (strcmp(name, "find") == 0 || strcmp(name, "rfind") == 0 || strcmp(name, "index") == 0 ||
        strcmp(name, "rindex") == 0 || strcmp(name, "count") == 0) {
        if (!check_args(ctx, line, what, a, 1, NULL))
            return NULL;
        if (a->npos < 1)
            return jerr(ctx, line, HR_ERR_FORMAT, "%s takes at least 1 argument", what);
        const char *sub = str_arg(ctx, line, what, a->pos[0]);
        if (!sub || !jstep(ctx, line, 1 + self->u.str.len / 64))
            return NULL;
        size_t sl = strlen(sub);
        if (strcmp(name, "count") == 0) {
            if (sl == 0)
                return jv_int((int64_t)jutf8_len(s, self->u.str.len) + 1);
            int64_t n = 0;
            const char *end = s + self->u.str.len;
            for (const char *p = s; (p = jfind(p, (size_t)(end - p), sub, sl)); p += sl)
                n++;
            return jv_int(n);
        }
        const char *hit = NULL;
        if (name[0] == 'r') {
            hit = jfind_last(s, self->u.str.len, sub, sl);
        } else {
            hit = jfind(s, self->u.str.len, sub, sl);
        }
        if (jbudget_stopped())
            return NULL;
        if (!hit) {
            if (strstr(name, "index"))
                return jerr(ctx, line, HR_ERR_FORMAT, "substring not found");
            return jv_int(-1);
        }
        return jv_int(cp_index(s, hit));
    }
    if (strcmp(name, "removeprefix") == 0 || strcmp(name, "removesuffix") == 0) {
        if (!check_args(ctx, line, what, a, 1, NULL))
            return NULL;
        if (a->npos < 1)
            return jerr(ctx, line, HR_ERR_FORMAT, "%s takes exactly one argument", what);
        const char *fix = str_arg(ctx, line, what, a->pos[0]);
        if (!fix)
            return NULL;
        size_t sl = self->u.str.len, fl = strlen(fix);
        if (fl <= sl && name[6] == 'p' && memcmp(s, fix, fl) == 0)
            return jv_str(s + fl);
        if (fl <= sl && name[6] == 's' && memcmp(s + sl - fl, fix, fl) == 0)
            return jv_str_len(s, sl - fl);
        return jv_ref(self);
    }
    if (g_str_has_prefix(name, "is")) {
        if (!check_args(ctx, line, what, a, 0, NULL))
            return NULL;
        if (strcmp(name, "islower") == 0 || strcmp(name, "isupper") == 0)
            return jv_bool(str_islower_upper(self, name[2] == 'l'));
        if (!*s)
            return jv_bool(false);
        for (const char *p = s; *p; p = g_utf8_next_char(p)) {
            gunichar c = g_utf8_get_char(p);
            bool ok;
            if (strcmp(name, "isspace") == 0)
                ok = jv_py_isspace(c);
            else if (strcmp(name, "isalpha") == 0)
                ok = g_unichar_isalpha(c);
            else if (strcmp(name, "isalnum") == 0)
                ok = g_unichar_isalnum(c);
            else /* isdigit, isnumeric, isdecimal */
                ok = g_unichar_isdigit(c);
            if (!ok)
                return jv_bool(false);
        }
        return jv_bool(true);
    }
    return jerr(ctx, line, HR_ERR_UNSUPPORTED, "string method '%s' is not supported", name);
}

static Jv *
dict_method(JCtx *ctx, int line, Jv *self, const char *name, JArgs *a)
{
    char what[48];
    snprintf(what, sizeof what, "dict.%s()", name);
    if (strcmp(name, "get") == 0) {
        if (!check_args(ctx, line, what, a, 2, NULL))
            return NULL;
        if (a->npos < 1)
            return jerr(ctx, line, HR_ERR_FORMAT, "get expected at least 1 argument, got 0");
        Jv *v = a->pos[0]->kind == JV_STRING ? jv_dict_get(self, a->pos[0]->u.str.s) : NULL;
        if (v)
            return jv_ref(v);
        return a->npos > 1 ? jv_ref(a->pos[1]) : jv_none();
    }
    if (!check_args(ctx, line, what, a, 0, NULL))
        return NULL;
    if (strcmp(name, "items") == 0) {
        JArgs none = { 0 };
        return f_items(ctx, line, self, &none);
    }
    if (!jstep(ctx, line, 1 + self->u.dict.n / 16))
        return NULL;
    Jv *l = jv_list_new();
    for (size_t i = 0; i < self->u.dict.n; i++)
        jv_list_push(l, name[0] == 'k' ? jv_str(self->u.dict.keys[i]) : jv_ref(self->u.dict.vals[i]));
    return l;
}

static Jv *
list_method(JCtx *ctx, int line, Jv *self, const char *name, JArgs *a)
{
    if (!check_args(ctx, line, name, a, 1, NULL))
        return NULL;
    if (a->npos < 1)
        return jerr(ctx, line, HR_ERR_FORMAT, "%s() takes exactly one argument", name);
    int64_t n = 0;
    for (size_t i = 0; i < self->u.list.n; i++) {
        if (jv_equal(self->u.list.items[i], a->pos[0])) {
            if (name[0] == 'i')
                return jv_int((int64_t)i);
            n++;
        }
    }
    if (!jstep(ctx, line, 1))
        return NULL;
    if (name[0] == 'i')
        return jerr(ctx, line, HR_ERR_FORMAT, "value is not in list");
    return jv_int(n);
}

Jv *
jinja_call_method(JCtx *ctx, int line, Jv *fn, JArgs *args)
{
    Jv *self = fn->u.func.self;
    const char *name = fn->u.func.name;
    int kind = jinja_method_kind(self, name);
    if (kind == 2) {
        bool mutating = strcmp(name, "copy") != 0 && self->kind != JV_STRING;
        if (mutating)
            return jerr(ctx, line, HR_ERR_FORMAT,
                        "%s.%s() is not allowed: chat templates run in an immutable sandbox", jv_type_name(self), name);
        return jerr(ctx, line, HR_ERR_UNSUPPORTED, "%s method '%s' is not supported", jv_type_name(self), name);
    }
    switch (self->kind) {
    case JV_STRING:
        return str_method(ctx, line, self, name, args);
    case JV_DICT:
        return dict_method(ctx, line, self, name, args);
    case JV_LIST:
        return list_method(ctx, line, self, name, args);
    default:
        return jerr(ctx, line, HR_ERR_UNSUPPORTED, "method '%s' is not supported", name);
    }
}

/* ------------------------------------------------------------------ globals */

static const char *const GLOBALS[] = {
    "range", "namespace", "dict", "raise_exception", "strftime_now", "cycler", "joiner", "lipsum",
};

bool
jinja_global_known(const char *name)
{
    return in_names(name, GLOBALS, G_N_ELEMENTS(GLOBALS));
}

static const char *const MONTHS[] = { "January", "February", "March", "April", "May", "June", "July",
                                      "August", "September", "October", "November", "December" };
static const char *const DAYS[] = { "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday" };

static GDateTime *
template_now(void)
{
    const char *env = g_getenv("HEARTH_TEMPLATE_NOW");
    if (env && *env) {
        int y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0;
        int n = sscanf(env, "%d-%d-%d%*[T ]%d:%d:%d", &y, &mo, &d, &h, &mi, &s);
        if (n >= 3) {
            GDateTime *dt = g_date_time_new_local(y, mo, d, h, mi, (gdouble)s);
            if (dt)
                return dt;
        }
    }
    return g_date_time_new_now_local();
}

static void
append_num(GString *g, int value, int width, char pad, char flag)
{
    if (flag == '-')
        g_string_append_printf(g, "%d", value);
    else if (flag == '_' || (pad == ' ' && flag != '0'))
        g_string_append_printf(g, "%*d", width, value);
    else
        g_string_append_printf(g, "%0*d", width, value);
}

/* Python's datetime.strftime in the C locale (English names). */
static void
py_strftime(GString *g, GDateTime *dt, const char *fmt)
{
    for (const char *p = fmt; *p && jbudget_string_ok(g->len); p++) {
        if (*p != '%' || !p[1]) {
            g_string_append_c(g, *p);
            continue;
        }
        if (!jbudget_step(1)) /* a directive is a step: '%c' * N */
            break;
        const char *start = p;
        p++;
        char flag = 0;
        while (*p == '-' || *p == '_' || *p == '0')
            flag = *p++;
        if (!*p) {
            g_string_append(g, start);
            break;
        }
        int hour = g_date_time_get_hour(dt);
        int h12 = hour % 12 == 0 ? 12 : hour % 12;
        int dow = g_date_time_get_day_of_week(dt); /* 1 = Monday */
        switch (*p) {
        case 'a': g_string_append_len(g, DAYS[dow - 1], 3); break;
        case 'A': g_string_append(g, DAYS[dow - 1]); break;
        case 'b':
        case 'h': g_string_append_len(g, MONTHS[g_date_time_get_month(dt) - 1], 3); break;
        case 'B': g_string_append(g, MONTHS[g_date_time_get_month(dt) - 1]); break;
        case 'd': append_num(g, g_date_time_get_day_of_month(dt), 2, '0', flag); break;
        case 'e': append_num(g, g_date_time_get_day_of_month(dt), 2, ' ', flag); break;
        case 'm': append_num(g, g_date_time_get_month(dt), 2, '0', flag); break;
        case 'Y': g_string_append_printf(g, "%d", g_date_time_get_year(dt)); break;
        case 'y': append_num(g, g_date_time_get_year(dt) % 100, 2, '0', flag); break;
        case 'C': append_num(g, g_date_time_get_year(dt) / 100, 2, '0', flag); break;
        case 'H': append_num(g, hour, 2, '0', flag); break;
        case 'k': append_num(g, hour, 2, ' ', flag); break;
        case 'I': append_num(g, h12, 2, '0', flag); break;
        case 'l': append_num(g, h12, 2, ' ', flag); break;
        case 'M': append_num(g, g_date_time_get_minute(dt), 2, '0', flag); break;
        case 'S': append_num(g, g_date_time_get_second(dt), 2, '0', flag); break;
        case 'j': append_num(g, g_date_time_get_day_of_year(dt), 3, '0', flag); break;
        case 'p': g_string_append(g, hour < 12 ? "AM" : "PM"); break;
        case 'P': g_string_append(g, hour < 12 ? "am" : "pm"); break;
        case 'u': g_string_append_printf(g, "%d", dow); break;
        case 'w': g_string_append_printf(g, "%d", dow % 7); break;
        case 'n': g_string_append_c(g, '\n'); break;
        case 't': g_string_append_c(g, '\t'); break;
        case '%': g_string_append_c(g, '%'); break;
        case 'F': py_strftime(g, dt, "%Y-%m-%d"); break;
        case 'D':
        case 'x': py_strftime(g, dt, "%m/%d/%y"); break;
        case 'T':
        case 'X': py_strftime(g, dt, "%H:%M:%S"); break;
        case 'R': py_strftime(g, dt, "%H:%M"); break;
        case 'r': py_strftime(g, dt, "%I:%M:%S %p"); break;
        case 'c': py_strftime(g, dt, "%a %b %e %H:%M:%S %Y"); break;
        case 's': g_string_append_printf(g, "%" G_GINT64_FORMAT, g_date_time_to_unix(dt)); break;
        case 'V':
        case 'G':
        case 'g':
        case 'z':
        case 'Z': {
            char f[3] = { '%', *p, 0 };
            char *r = g_date_time_format(dt, f);
            if (r)
                g_string_append(g, r);
            g_free(r);
            break;
        }
        default:
            g_string_append_len(g, start, (gssize)(p - start + 1));
        }
    }
}

static Jv *
g_range(JCtx *ctx, int line, JArgs *a)
{
    if (!check_args(ctx, line, "range()", a, 3, NULL))
        return NULL;
    int64_t v[3] = { 0, 0, 1 };
    if (a->npos == 0)
        return jerr(ctx, line, HR_ERR_FORMAT, "range expected at least 1 argument, got 0");
    for (size_t i = 0; i < a->npos; i++)
        if (!int_arg(ctx, line, "range()", a->pos[i], &v[i]))
            return NULL;
    int64_t start = 0, stop, step = 1;
    if (a->npos == 1) {
        stop = v[0];
    } else {
        start = v[0];
        stop = v[1];
        if (a->npos == 3)
            step = v[2];
    }
    if (step == 0)
        return jerr(ctx, line, HR_ERR_FORMAT, "range() arg 3 must not be zero");
    /* its length first (in 128 bits: stop - start may not fit in 64) */
    __int128 span = step > 0 ? (__int128)stop - start : (__int128)start - stop;
    __int128 mag = step > 0 ? step : -(__int128)step;
    if (span > 0 && (span + mag - 1) / mag > MAX_RANGE)
        return jerr(ctx, line, HR_ERR_UNSUPPORTED, "range() too large (more than %d items)", MAX_RANGE);
    Jv *l = jv_list_new();
    int64_t count = 0;
    for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
        if (++count > MAX_RANGE) {
            jv_unref(l);
            return jerr(ctx, line, HR_ERR_UNSUPPORTED, "range() too large (more than %d items)", MAX_RANGE);
        }
        if ((count & 1023) == 0 && !jstep(ctx, line, 1)) {
            jv_unref(l);
            return NULL;
        }
        jv_list_push(l, jv_int(i));
        if ((step > 0 && i > INT64_MAX - step) || (step < 0 && i < INT64_MIN - step))
            break;
    }
    return l;
}

static Jv *
g_dictlike(JCtx *ctx, int line, JArgs *a, bool ns)
{
    const char *what = ns ? "namespace()" : "dict()";
    if (a->npos > 1)
        return jerr(ctx, line, HR_ERR_FORMAT, "%s expected at most 1 positional argument", what);
    Jv *d = ns ? jv_namespace_new() : jv_dict_new();
    if (a->npos == 1) {
        Jv *src = a->pos[0];
        if (src->kind == JV_DICT) {
            for (size_t i = 0; i < src->u.dict.n; i++)
                jv_dict_set(d, src->u.dict.keys[i], jv_ref(src->u.dict.vals[i]));
        } else if (src->kind == JV_LIST) {
            for (size_t i = 0; i < src->u.list.n; i++) {
                Jv *pair = src->u.list.items[i];
                if (pair->kind != JV_LIST || pair->u.list.n != 2 || pair->u.list.items[0]->kind != JV_STRING) {
                    jv_unref(d);
                    return jerr(ctx, line, HR_ERR_FORMAT, "%s: expected (key, value) pairs with string keys", what);
                }
                jv_dict_set(d, pair->u.list.items[0]->u.str.s, jv_ref(pair->u.list.items[1]));
            }
        } else {
            jv_unref(d);
            return jerr(ctx, line, HR_ERR_FORMAT, "%s: cannot convert a %s", what, jv_type_name(src));
        }
    }
    for (size_t i = 0; i < a->nkw; i++)
        jv_dict_set(d, a->kwn[i], jv_ref(a->kwv[i]));
    if (ns)
        for (size_t i = 0; i < d->u.dict.n; i++)
            if (d->u.dict.keys[i][0] == '_') {
                Jv *r = jerr(ctx, line, HR_ERR_FORMAT,
                             "Chat templates cannot store underscore-prefixed attributes on a namespace, but got '%s'",
                             d->u.dict.keys[i]);
                jv_unref(d);
                return r;
            }
    return d;
}

Jv *
jinja_call_global(JCtx *ctx, int line, Jv *fn, JArgs *a)
{
    const char *name = fn->u.func.name;
    if (strcmp(name, "raise_exception") == 0) {
        Jv *msg = jargs_get(a, 0, "message");
        if (!msg)
            return jerr(ctx, line, HR_ERR_FORMAT, "raise_exception() missing 1 required positional argument: 'message'");
        char *s = soft_str(msg);
        jraise(ctx, s);
        g_free(s);
        return NULL;
    }
    if (strcmp(name, "strftime_now") == 0) {
        if (!check_args(ctx, line, "strftime_now()", a, 1, NULL))
            return NULL;
        if (a->npos < 1)
            return jerr(ctx, line, HR_ERR_FORMAT, "strftime_now() missing 1 required positional argument: 'format'");
        const char *fmt = str_arg(ctx, line, "strftime_now()", a->pos[0]);
        if (!fmt)
            return NULL;
        GDateTime *now = template_now();
        GString *g = g_string_new(NULL);
        py_strftime(g, now, fmt);
        g_date_time_unref(now);
        if (!jstring_fits(ctx, line, g->len)) {
            g_string_free(g, TRUE);
            return NULL;
        }
        return jv_str_gstring(g);
    }
    if (strcmp(name, "range") == 0)
        return g_range(ctx, line, a);
    if (strcmp(name, "namespace") == 0)
        return g_dictlike(ctx, line, a, true);
    if (strcmp(name, "dict") == 0)
        return g_dictlike(ctx, line, a, false);
    return jerr(ctx, line, HR_ERR_UNSUPPORTED, "%s() is not supported", name);
}
