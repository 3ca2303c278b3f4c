/* jinja-value.c — the interpreter's values, with Python's semantics for str(),
 * repr(), ==, truthiness and json.dumps. */
#include "jinja-internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ budget */

static _Thread_local JBudget *tl_budget;

JBudget *
jbudget_enter(JBudget *b)
{
    JBudget *previous = tl_budget;
    b->steps = b->alloc = b->max_string_seen = 0;
    b->stop = JB_OK;
    b->line = 0;
    b->namespaces = g_ptr_array_new();
    tl_budget = b;
    return previous;
}

/* Empty every namespace the render created before dropping it: a namespace is
 * the only mutable value, so every reference cycle ({% set ns.me = ns %})
 * goes through one, and emptying them breaks them all. */
void
jbudget_leave(JBudget *b, JBudget *previous)
{
    tl_budget = NULL; /* nothing below is charged */
    for (guint i = 0; i < b->namespaces->len; i++) {
        Jv *ns = b->namespaces->pdata[i];
        JvDict *d = &ns->u.dict;
        char **keys = d->keys;
        Jv **vals = d->vals;
        size_t n = d->n;
        if (d->index)
            g_hash_table_destroy(d->index);
        memset(d, 0, sizeof *d);
        for (size_t k = 0; k < n; k++) {
            g_free(keys[k]);
            jv_unref(vals[k]);
        }
        g_free(keys);
        g_free(vals);
        jv_unref(ns);
    }
    g_ptr_array_free(b->namespaces, TRUE);
    b->namespaces = NULL;
    tl_budget = previous;
}

static bool
cancelled(const JBudget *b)
{
    return b->cancel && atomic_load(b->cancel) != 0;
}

bool
jbudget_step(uint64_t n)
{
    JBudget *b = tl_budget;
    if (!b)
        return true;
    if (b->stop != JB_OK)
        return false;
    uint64_t before = b->steps;
    b->steps += n;
    if (b->steps > b->lim.max_steps) {
        b->stop = JB_STEPS;
        return false;
    }
    /* The flag is polled every 1024 steps: a few microseconds apart. */
    if ((before >> 10) != (b->steps >> 10) && cancelled(b)) {
        b->stop = JB_CANCELLED;
        return false;
    }
    return true;
}

bool
jbudget_alloc(uint64_t n)
{
    JBudget *b = tl_budget;
    if (!b)
        return true;
    if (b->stop != JB_OK)
        return false;
    b->alloc += n;
    if (b->alloc > b->lim.max_alloc) {
        b->stop = JB_ALLOC;
        return false;
    }
    return true;
}

bool
jbudget_string_ok(uint64_t n)
{
    JBudget *b = tl_budget;
    if (!b)
        return true;
    if (n > b->max_string_seen)
        b->max_string_seen = n;
    if (n > b->lim.max_string) {
        if (b->stop == JB_OK)
            b->stop = JB_STRING;
        return false;
    }
    return b->stop == JB_OK;
}

bool
jbudget_stopped(void)
{
    return tl_budget && tl_budget->stop != JB_OK;
}

/* A new string's bytes: charged, and its length checked. */
static void
charge_string(size_t len)
{
    if (tl_budget) {
        jbudget_alloc(len + 1);
        jbudget_string_ok(len);
    }
}

const char *
jfind(const char *hay, size_t hl, const char *needle, size_t nl)
{
    if (nl == 0)
        return hay;
    if (nl > hl)
        return NULL;
    /* memchr for the first byte, then a comparison: linear for short needles,
     * at worst (hay - needle) x needle bytes compared, all of it charged (one
     * step per 256 bytes). Not strstr: ASan's strstr measures the whole
     * haystack on every call, quadratic in a loop over the hits. */
    const char *p = hay, *last = hay + (hl - nl);
    uint64_t work = 0;
    const char *hit = NULL;
    while (p <= last) {
        const char *c = memchr(p, needle[0], (size_t)(last - p) + 1);
        if (!c) {
            work += (uint64_t)(last - p) + 1;
            break;
        }
        work += (uint64_t)(c - p) + nl;
        if (memcmp(c + 1, needle + 1, nl - 1) == 0) {
            hit = c;
            break;
        }
        p = c + 1;
        if (work >= (1u << 20)) { /* charge as it goes: a long adversarial search stops */
            if (!jbudget_step(work >> 8))
                return NULL;
            work &= 255;
        }
    }
    jbudget_step(work >> 8);
    return hit;
}

const char *
jfind_last(const char *hay, size_t hl, const char *needle, size_t nl)
{
    if (nl > hl)
        return NULL;
    uint64_t work = 0;
    const char *hit = NULL;
    for (const char *c = hay + (hl - nl);; c--) {
        work += 1;
        if (*c == needle[0] || nl == 0) {
            work += nl;
            if (memcmp(c, needle, nl) == 0) {
                hit = c;
                break;
            }
        }
        if (work >= (1u << 20)) {
            if (!jbudget_step(work >> 8))
                return NULL;
            work &= 255;
        }
        if (c == hay)
            break;
    }
    jbudget_step(work >> 8);
    return hit;
}

/* ------------------------------------------------------------------ values */

static Jv *
jv_alloc(JvKind kind)
{
    /* every value made is a step too: allocation is most of a render's work */
    jbudget_step(1);
    jbudget_alloc(sizeof(Jv));
    Jv *v = g_new0(Jv, 1);
    v->refs = 1;
    v->kind = kind;
    return v;
}

Jv *
jv_ref(Jv *v)
{
    if (v)
        v->refs++;
    return v;
}

/* Drop one reference to each child; children that reach zero go on `dead`. */
static void
release(Jv *v, GPtrArray **dead)
{
    if (v && --v->refs == 0) {
        if (!*dead)
            *dead = g_ptr_array_new();
        g_ptr_array_add(*dead, v);
    }
}

/* Free v and whatever only it kept alive — iteratively, so that a deeply
 * nested value (a template can build one in a loop) cannot exhaust the stack. */
static void
destroy(Jv *v)
{
    GPtrArray *dead = NULL;
    for (;;) {
        switch (v->kind) {
        case JV_STRING:
            g_free(v->u.str.s);
            break;
        case JV_LIST:
            for (size_t i = 0; i < v->u.list.n; i++)
                release(v->u.list.items[i], &dead);
            g_free(v->u.list.items);
            break;
        case JV_DICT:
        case JV_NAMESPACE:
            for (size_t i = 0; i < v->u.dict.n; i++) {
                g_free(v->u.dict.keys[i]);
                release(v->u.dict.vals[i], &dead);
            }
            g_free(v->u.dict.keys);
            g_free(v->u.dict.vals);
            if (v->u.dict.index)
                g_hash_table_destroy(v->u.dict.index);
            break;
        case JV_FUNC:
            g_free(v->u.func.name);
            release(v->u.func.self, &dead);
            break;
        case JV_UNDEFINED:
            g_free(v->u.undef.hint);
            break;
        default:
            break;
        }
        g_free(v);
        if (!dead || dead->len == 0)
            break;
        v = g_ptr_array_steal_index_fast(dead, dead->len - 1);
    }
    if (dead)
        g_ptr_array_free(dead, TRUE);
}

void
jv_unref(Jv *v)
{
    if (v && --v->refs == 0)
        destroy(v);
}

Jv *
jv_undefined(const char *hint)
{
    Jv *v = jv_alloc(JV_UNDEFINED);
    v->u.undef.hint = g_strdup(hint);
    return v;
}

Jv *
jv_undefined_fmt(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    Jv *v = jv_alloc(JV_UNDEFINED);
    v->u.undef.hint = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    jbudget_alloc(strlen(v->u.undef.hint) + 1);
    return v;
}

Jv *jv_none(void) { return jv_alloc(JV_NONE); }

Jv *
jv_bool(bool b)
{
    Jv *v = jv_alloc(JV_BOOL);
    v->u.b = b;
    return v;
}

Jv *
jv_int(int64_t i)
{
    Jv *v = jv_alloc(JV_INT);
    v->u.i = i;
    return v;
}

Jv *
jv_float(double f)
{
    Jv *v = jv_alloc(JV_FLOAT);
    v->u.f = f;
    return v;
}

Jv *
jv_str_len(const char *s, size_t len)
{
    Jv *v = jv_alloc(JV_STRING);
    v->u.str.s = g_strndup(s, len);
    v->u.str.len = strlen(v->u.str.s);
    charge_string(v->u.str.len);
    return v;
}

Jv *
jv_str(const char *s)
{
    return jv_str_len(s, strlen(s));
}

Jv *
jv_str_take(char *s)
{
    Jv *v = jv_alloc(JV_STRING);
    v->u.str.s = s;
    v->u.str.len = strlen(s);
    charge_string(v->u.str.len);
    return v;
}

Jv *
jv_str_gstring(GString *g)
{
    Jv *v = jv_alloc(JV_STRING);
    v->u.str.len = strlen(g->str);
    v->u.str.s = g_string_free(g, FALSE);
    charge_string(v->u.str.len);
    return v;
}

Jv *jv_list_new(void) { return jv_alloc(JV_LIST); }

Jv *
jv_tuple_new(void)
{
    Jv *v = jv_alloc(JV_LIST);
    v->u.list.tuple = true;
    return v;
}

void
jv_list_push(Jv *list, Jv *item)
{
    if (list->u.list.n == list->u.list.cap) {
        jbudget_alloc((list->u.list.cap ? list->u.list.cap : 4) * sizeof(Jv *));
        list->u.list.cap = list->u.list.cap ? list->u.list.cap * 2 : 4;
        list->u.list.items = g_renew(Jv *, list->u.list.items, list->u.list.cap);
    }
    list->u.list.items[list->u.list.n++] = item;
}

bool
jv_list_reserve(Jv *list, size_t n)
{
    if (n <= list->u.list.cap)
        return true;
    if (!jbudget_alloc((n - list->u.list.cap) * sizeof(Jv *)))
        return false;
    list->u.list.cap = n;
    list->u.list.items = g_renew(Jv *, list->u.list.items, n);
    return true;
}

Jv *jv_dict_new(void) { return jv_alloc(JV_DICT); }
Jv *
jv_namespace_new(void)
{
    Jv *ns = jv_alloc(JV_NAMESPACE);
    if (tl_budget)
        g_ptr_array_add(tl_budget->namespaces, jv_ref(ns));
    return ns;
}

static long
dict_find(const JvDict *d, const char *key)
{
    if (d->index) {
        gpointer p = g_hash_table_lookup(d->index, key);
        return p ? (long)GPOINTER_TO_SIZE(p) - 1 : -1;
    }
    for (size_t i = 0; i < d->n; i++)
        if (strcmp(d->keys[i], key) == 0)
            return (long)i;
    return -1;
}

void
jv_dict_set(Jv *dict, const char *key, Jv *val)
{
    JvDict *d = &dict->u.dict;
    long at = dict_find(d, key);
    if (at >= 0) {
        jv_unref(d->vals[at]);
        d->vals[at] = val;
        return;
    }
    if (d->n == d->cap) {
        jbudget_alloc((d->cap ? d->cap : 4) * 2 * sizeof(void *));
        d->cap = d->cap ? d->cap * 2 : 4;
        d->keys = g_renew(char *, d->keys, d->cap);
        d->vals = g_renew(Jv *, d->vals, d->cap);
    }
    d->keys[d->n] = g_strdup(key);
    jbudget_alloc(strlen(key) + 1);
    d->vals[d->n] = val;
    d->n++;
    if (!d->index && d->n > 12) {
        d->index = g_hash_table_new(g_str_hash, g_str_equal);
        for (size_t i = 0; i < d->n; i++)
            g_hash_table_insert(d->index, d->keys[i], GSIZE_TO_POINTER(i + 1));
    } else if (d->index) {
        g_hash_table_insert(d->index, d->keys[d->n - 1], GSIZE_TO_POINTER(d->n));
    }
}

Jv *
jv_dict_get(const Jv *dict, const char *key)
{
    long at = dict_find(&dict->u.dict, key);
    return at >= 0 ? dict->u.dict.vals[at] : NULL;
}

Jv *
jv_func_new(JvFuncKind fk, const char *name)
{
    Jv *v = jv_alloc(JV_FUNC);
    v->u.func.fk = fk;
    v->u.func.name = g_strdup(name);
    return v;
}

static Jv *from_json(JsonNode *node, int depth);

Jv *
jv_from_json(JsonNode *node)
{
    return from_json(node, 0);
}

static Jv *
from_json(JsonNode *node, int depth)
{
    if (!node)
        return jv_none();
    if (depth > JV_MAX_NESTING)
        return NULL;
    switch (json_node_get_node_type(node)) {
    case JSON_NODE_NULL:
        return jv_none();
    case JSON_NODE_VALUE: {
        GType t = json_node_get_value_type(node);
        if (t == G_TYPE_BOOLEAN)
            return jv_bool(json_node_get_boolean(node));
        if (t == G_TYPE_INT64 || t == G_TYPE_INT || t == G_TYPE_UINT || t == G_TYPE_LONG)
            return jv_int(json_node_get_int(node));
        if (t == G_TYPE_DOUBLE || t == G_TYPE_FLOAT)
            return jv_float(json_node_get_double(node));
        if (t == G_TYPE_STRING)
            return jv_str(json_node_get_string(node));
        return jv_none();
    }
    case JSON_NODE_ARRAY: {
        JsonArray *a = json_node_get_array(node);
        Jv *l = jv_list_new();
        guint n = json_array_get_length(a);
        for (guint i = 0; i < n; i++) {
            Jv *item = from_json(json_array_get_element(a, i), depth + 1);
            if (!item) {
                jv_unref(l);
                return NULL;
            }
            jv_list_push(l, item);
        }
        return l;
    }
    case JSON_NODE_OBJECT: {
        JsonObject *o = json_node_get_object(node);
        Jv *d = jv_dict_new();
        /* json-glib keeps members in document order. */
        GList *members = json_object_get_members(o);
        for (GList *m = members; m; m = m->next) {
            Jv *item = from_json(json_object_get_member(o, m->data), depth + 1);
            if (!item) {
                g_list_free(members);
                jv_unref(d);
                return NULL;
            }
            jv_dict_set(d, m->data, item);
        }
        g_list_free(members);
        return d;
    }
    }
    return jv_none();
}

bool
jv_truthy(const Jv *v)
{
    switch (v->kind) {
    case JV_UNDEFINED:
    case JV_NONE:
        return false;
    case JV_BOOL:
        return v->u.b;
    case JV_INT:
        return v->u.i != 0;
    case JV_FLOAT:
        return v->u.f != 0.0;
    case JV_STRING:
        return v->u.str.len > 0;
    case JV_LIST:
        return v->u.list.gen || v->u.list.n > 0;
    case JV_DICT:
        return v->u.dict.n > 0;
    default:
        return true;
    }
}

bool jv_is_number(const Jv *v) { return v->kind == JV_BOOL || v->kind == JV_INT || v->kind == JV_FLOAT; }
bool jv_is_int(const Jv *v) { return v->kind == JV_BOOL || v->kind == JV_INT; }
bool jv_is_seq(const Jv *v) { return v->kind == JV_LIST; }

int64_t
jv_as_int(const Jv *v)
{
    if (v->kind == JV_BOOL)
        return v->u.b ? 1 : 0;
    if (v->kind == JV_INT)
        return v->u.i;
    if (v->kind == JV_FLOAT) /* truncated, saturated; NaN is 0 (callers check first) */
        return isnan(v->u.f) ? 0 : v->u.f >= 0x1p63 ? INT64_MAX : v->u.f <= -0x1p63 ? INT64_MIN : (int64_t)v->u.f;
    return 0;
}

double
jv_as_double(const Jv *v)
{
    if (v->kind == JV_FLOAT)
        return v->u.f;
    return (double)jv_as_int(v);
}

const char *
jv_type_name(const Jv *v)
{
    switch (v->kind) {
    case JV_UNDEFINED: return "Undefined";
    case JV_NONE: return "NoneType";
    case JV_BOOL: return "bool";
    case JV_INT: return "int";
    case JV_FLOAT: return "float";
    case JV_STRING: return "str";
    case JV_LIST: return v->u.list.gen ? "generator" : v->u.list.tuple ? "tuple" : "list";
    case JV_DICT: return "dict";
    case JV_NAMESPACE: return "Namespace";
    case JV_FUNC: return v->u.func.fk == JF_MACRO ? "Macro" : "function";
    }
    return "object";
}

bool
jv_py_isspace(gunichar c)
{
    switch (c) {
    case 0x09: case 0x0a: case 0x0b: case 0x0c: case 0x0d:
    case 0x1c: case 0x1d: case 0x1e: case 0x1f: case 0x20:
    case 0x85: case 0xa0: case 0x1680:
    case 0x2028: case 0x2029: case 0x202f: case 0x205f: case 0x3000:
        return true;
    default:
        return c >= 0x2000 && c <= 0x200a;
    }
}

size_t
jutf8_len(const char *s, size_t bytes)
{
    size_t n = 0;
    for (size_t i = 0; i < bytes; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80)
            n++;
    return n;
}

/* Python's repr(float): the shortest digits that round-trip, fixed notation
 * for decimal exponents in [-4, 16), else d.ddde+XX. */
void
jv_float_repr(GString *out, double d)
{
    if (isnan(d)) {
        g_string_append(out, "nan");
        return;
    }
    if (isinf(d)) {
        g_string_append(out, d < 0 ? "-inf" : "inf");
        return;
    }
    char buf[64];
    int prec;
    for (prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*e", prec - 1, d);
        if (strtod(buf, NULL) == d)
            break;
    }
    /* buf: [-]d[.ddd]e[+-]XX */
    const char *p = buf;
    bool neg = false;
    if (*p == '-') {
        neg = true;
        p++;
    }
    char digits[32];
    size_t nd = 0;
    for (; *p && *p != 'e'; p++)
        if (*p >= '0' && *p <= '9')
            digits[nd++] = *p;
    int exp10 = atoi(p + 1);
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;
    digits[nd] = '\0';
    int decpt = exp10 + 1; /* value = 0.digits * 10^decpt */
    if (neg)
        g_string_append_c(out, '-');
    if (decpt >= -3 && decpt <= 16) {
        if (decpt <= 0) {
            g_string_append(out, "0.");
            for (int i = 0; i < -decpt; i++)
                g_string_append_c(out, '0');
            g_string_append(out, digits);
        } else if ((size_t)decpt >= nd) {
            g_string_append(out, digits);
            for (size_t i = nd; i < (size_t)decpt; i++)
                g_string_append_c(out, '0');
            g_string_append(out, ".0");
        } else {
            g_string_append_len(out, digits, decpt);
            g_string_append_c(out, '.');
            g_string_append(out, digits + decpt);
        }
    } else {
        g_string_append_c(out, digits[0]);
        if (nd > 1) {
            g_string_append_c(out, '.');
            g_string_append(out, digits + 1);
        }
        int e = decpt - 1;
        g_string_append_printf(out, "e%c%02d", e < 0 ? '-' : '+', e < 0 ? -e : e);
    }
}

/* Python's str.isprintable() for one code point (repr escapes the others). */
static bool
py_isprintable(gunichar c)
{
    switch (g_unichar_type(c)) {
    case G_UNICODE_CONTROL:
    case G_UNICODE_FORMAT:
    case G_UNICODE_SURROGATE:
    case G_UNICODE_PRIVATE_USE:
    case G_UNICODE_UNASSIGNED:
    case G_UNICODE_LINE_SEPARATOR:
    case G_UNICODE_PARAGRAPH_SEPARATOR:
    case G_UNICODE_SPACE_SEPARATOR:
        return false;
    default:
        return true;
    }
}

static void
repr_string(GString *out, const char *s)
{
    bool has_sq = strchr(s, '\'') != NULL, has_dq = strchr(s, '"') != NULL;
    char q = (has_sq && !has_dq) ? '"' : '\'';
    g_string_append_c(out, q);
    size_t k = 0;
    for (const char *p = s; *p;) {
        if ((++k & 4095) == 0 && !jbudget_string_ok(out->len))
            return;
        gunichar c = g_utf8_get_char_validated(p, -1);
        if (c == (gunichar)-1 || c == (gunichar)-2) {
            g_string_append_printf(out, "\\x%02x", (unsigned char)*p);
            p++;
            continue;
        }
        const char *next = g_utf8_next_char(p);
        if (c == (gunichar)q || c == '\\') {
            g_string_append_c(out, '\\');
            g_string_append_c(out, (char)c);
        } else if (c == '\n') {
            g_string_append(out, "\\n");
        } else if (c == '\r') {
            g_string_append(out, "\\r");
        } else if (c == '\t') {
            g_string_append(out, "\\t");
        } else if (c != ' ' && !py_isprintable(c)) {
            if (c <= 0xff)
                g_string_append_printf(out, "\\x%02x", c);
            else if (c <= 0xffff)
                g_string_append_printf(out, "\\u%04x", c);
            else
                g_string_append_printf(out, "\\U%08x", c);
        } else {
            g_string_append_len(out, p, next - p);
        }
        p = next;
    }
    g_string_append_c(out, q);
}

static void
append_value(GString *out, const Jv *v, bool repr, int depth)
{
    /* A template can build a value that shares its parts (a = [a, a] in a
     * loop): printing it visits 2^n nodes. Every node is a step. */
    if (!jbudget_step(1) || !jbudget_string_ok(out->len))
        return;
    if (depth > JV_MAX_NESTING && (v->kind == JV_LIST || v->kind == JV_DICT || v->kind == JV_NAMESPACE)) {
        g_string_append(out, "...");
        return;
    }
    switch (v->kind) {
    case JV_UNDEFINED:
        if (repr)
            g_string_append(out, "Undefined");
        break;
    case JV_NONE:
        g_string_append(out, "None");
        break;
    case JV_BOOL:
        g_string_append(out, v->u.b ? "True" : "False");
        break;
    case JV_INT:
        g_string_append_printf(out, "%" G_GINT64_FORMAT, v->u.i);
        break;
    case JV_FLOAT:
        jv_float_repr(out, v->u.f);
        break;
    case JV_STRING:
        if (repr)
            repr_string(out, v->u.str.s);
        else
            g_string_append_len(out, v->u.str.s, v->u.str.len);
        break;
    case JV_LIST:
        if (v->u.list.gen) {
            g_string_append(out, "<generator object>");
            break;
        }
        g_string_append_c(out, v->u.list.tuple ? '(' : '[');
        for (size_t i = 0; i < v->u.list.n; i++) {
            if (i)
                g_string_append(out, ", ");
            append_value(out, v->u.list.items[i], true, depth + 1);
        }
        if (v->u.list.tuple && v->u.list.n == 1)
            g_string_append_c(out, ',');
        g_string_append_c(out, v->u.list.tuple ? ')' : ']');
        break;
    case JV_DICT:
    case JV_NAMESPACE:
        if (v->kind == JV_NAMESPACE)
            g_string_append(out, "<Namespace ");
        g_string_append_c(out, '{');
        for (size_t i = 0; i < v->u.dict.n; i++) {
            if (i)
                g_string_append(out, ", ");
            repr_string(out, v->u.dict.keys[i]);
            g_string_append(out, ": ");
            append_value(out, v->u.dict.vals[i], true, depth + 1);
        }
        g_string_append_c(out, '}');
        if (v->kind == JV_NAMESPACE)
            g_string_append_c(out, '>');
        break;
    case JV_FUNC:
        g_string_append_printf(out, "<%s %s>", v->u.func.fk == JF_MACRO ? "Macro" : "function",
                               v->u.func.name ? v->u.func.name : "");
        break;
    }
}

void jv_str_append(GString *out, const Jv *v) { append_value(out, v, false, 0); }
void jv_repr_append(GString *out, const Jv *v) { append_value(out, v, true, 0); }

char *
jv_to_string(const Jv *v)
{
    if (v->kind == JV_STRING)
        return g_strdup(v->u.str.s);
    GString *g = g_string_new(NULL);
    jv_str_append(g, v);
    return g_string_free(g, FALSE);
}

static bool equal_at(const Jv *a, const Jv *b, int depth);

bool
jv_equal(const Jv *a, const Jv *b)
{
    return equal_at(a, b, 0);
}

static bool
equal_at(const Jv *a, const Jv *b, int depth)
{
    if (!jbudget_step(1)) /* the render fails: the answer does not matter */
        return false;
    if (depth > JV_MAX_NESTING)
        return a == b;
    if (jv_is_number(a) && jv_is_number(b)) {
        if (a->kind == JV_FLOAT || b->kind == JV_FLOAT)
            return jv_as_double(a) == jv_as_double(b);
        return jv_as_int(a) == jv_as_int(b);
    }
    if (a->kind != b->kind)
        return false;
    switch (a->kind) {
    case JV_UNDEFINED:
    case JV_NONE:
        return true;
    case JV_STRING:
        if (a->u.str.len != b->u.str.len)
            return false;
        jbudget_step(a->u.str.len / 64);
        return memcmp(a->u.str.s, b->u.str.s, a->u.str.len) == 0;
    case JV_LIST:
        if (a->u.list.tuple != b->u.list.tuple || a->u.list.gen || b->u.list.gen)
            return a == b;
        if (a->u.list.n != b->u.list.n)
            return false;
        for (size_t i = 0; i < a->u.list.n; i++)
            if (!equal_at(a->u.list.items[i], b->u.list.items[i], depth + 1))
                return false;
        return true;
    case JV_DICT:
        if (a->u.dict.n != b->u.dict.n)
            return false;
        for (size_t i = 0; i < a->u.dict.n; i++) {
            Jv *o = jv_dict_get(b, a->u.dict.keys[i]);
            if (!o || !equal_at(a->u.dict.vals[i], o, depth + 1))
                return false;
        }
        return true;
    default:
        return a == b;
    }
}

/* ------------------------------------------------------------------ json.dumps */

static void
json_string(GString *out, const char *s, bool ensure_ascii)
{
    g_string_append_c(out, '"');
    size_t k = 0;
    for (const char *p = s; *p;) {
        if ((++k & 4095) == 0 && !jbudget_string_ok(out->len))
            return;
        unsigned char ch = (unsigned char)*p;
        if (ch < 0x80) {
            switch (ch) {
            case '"': g_string_append(out, "\\\""); break;
            case '\\': g_string_append(out, "\\\\"); break;
            case '\n': g_string_append(out, "\\n"); break;
            case '\r': g_string_append(out, "\\r"); break;
            case '\t': g_string_append(out, "\\t"); break;
            case '\b': g_string_append(out, "\\b"); break;
            case '\f': g_string_append(out, "\\f"); break;
            default:
                if (ch < 0x20)
                    g_string_append_printf(out, "\\u%04x", ch);
                else
                    g_string_append_c(out, (char)ch);
            }
            p++;
            continue;
        }
        const char *next = g_utf8_next_char(p);
        if (ensure_ascii) {
            gunichar c = g_utf8_get_char(p);
            if (c >= 0x10000) {
                c -= 0x10000;
                g_string_append_printf(out, "\\u%04x\\u%04x", 0xd800 + (c >> 10), 0xdc00 + (c & 0x3ff));
            } else {
                g_string_append_printf(out, "\\u%04x", c);
            }
        } else {
            g_string_append_len(out, p, next - p);
        }
        p = next;
    }
    g_string_append_c(out, '"');
}

static void
json_newline(GString *out, const JvJsonOpts *o, int level)
{
    /* the indent is the template's string: level copies of it could be huge */
    if (!jbudget_string_ok(out->len + (uint64_t)level * strlen(o->indent)))
        return;
    g_string_append_c(out, '\n');
    for (int i = 0; i < level; i++)
        g_string_append(out, o->indent);
}

static int
key_cmp(const void *a, const void *b, void *keys)
{
    char **k = keys;
    return strcmp(k[*(const size_t *)a], k[*(const size_t *)b]);
}

static bool
json_value(GString *out, const Jv *v, const JvJsonOpts *o, int level, char **why)
{
    if (!jbudget_step(1) || !jbudget_string_ok(out->len)) {
        *why = g_strdup("chat template budget exhausted");
        return false;
    }
    if (level > JV_MAX_NESTING) {
        *why = g_strdup("value nested too deeply for tojson");
        return false;
    }
    switch (v->kind) {
    case JV_NONE:
        g_string_append(out, "null");
        return true;
    case JV_BOOL:
        g_string_append(out, v->u.b ? "true" : "false");
        return true;
    case JV_INT:
        g_string_append_printf(out, "%" G_GINT64_FORMAT, v->u.i);
        return true;
    case JV_FLOAT:
        if (isnan(v->u.f))
            g_string_append(out, "NaN");
        else if (isinf(v->u.f))
            g_string_append(out, v->u.f < 0 ? "-Infinity" : "Infinity");
        else
            jv_float_repr(out, v->u.f);
        return true;
    case JV_STRING:
        json_string(out, v->u.str.s, o->ensure_ascii);
        return true;
    case JV_LIST:
        if (v->u.list.gen)
            break;
        if (v->u.list.n == 0) {
            g_string_append(out, "[]");
            return true;
        }
        g_string_append_c(out, '[');
        for (size_t i = 0; i < v->u.list.n; i++) {
            if (i)
                g_string_append(out, o->item_sep);
            if (o->pretty)
                json_newline(out, o, level + 1);
            if (!json_value(out, v->u.list.items[i], o, level + 1, why))
                return false;
        }
        if (o->pretty)
            json_newline(out, o, level);
        g_string_append_c(out, ']');
        return true;
    case JV_DICT: {
        if (v->u.dict.n == 0) {
            g_string_append(out, "{}");
            return true;
        }
        size_t n = v->u.dict.n;
        size_t *order = g_new(size_t, n);
        for (size_t i = 0; i < n; i++)
            order[i] = i;
        if (o->sort_keys)
            g_qsort_with_data(order, (gint)n, sizeof *order, key_cmp, v->u.dict.keys);
        g_string_append_c(out, '{');
        for (size_t j = 0; j < n; j++) {
            size_t i = order[j];
            if (j)
                g_string_append(out, o->item_sep);
            if (o->pretty)
                json_newline(out, o, level + 1);
            json_string(out, v->u.dict.keys[i], o->ensure_ascii);
            g_string_append(out, o->key_sep);
            if (!json_value(out, v->u.dict.vals[i], o, level + 1, why)) {
                g_free(order);
                return false;
            }
        }
        g_free(order);
        if (o->pretty)
            json_newline(out, o, level);
        g_string_append_c(out, '}');
        return true;
    }
    default:
        break;
    }
    *why = g_strdup_printf("Object of type %s is not JSON serializable", jv_type_name(v));
    return false;
}

bool
jv_to_json(GString *out, const Jv *v, const JvJsonOpts *opts, char **why)
{
    *why = NULL;
    return json_value(out, v, opts, 0, why);
}
