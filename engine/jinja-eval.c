/* jinja-eval.c — walk the syntax tree and render, with jinja2's scoping and
 * Python's semantics for operators:
 *
 *  - every iteration of a for loop, every macro call, {% with %}, call blocks and
 *    {% generation %} get a child scope: a {% set %} there does not leak out
 *    (that is what namespace() is for); {% if %} has no scope of its own;
 *  - a macro sees the variables of the scope it was defined in, as they are when
 *    it is called;
 *  - attribute access tries the Python attribute (a method) before the dict key,
 *    subscripts the key first; a missing attribute or item is Undefined, and using
 *    an Undefined for anything but printing, testing, iterating or `default` fails
 *    as jinja2's default Undefined does.
 */
#include "jinja-internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define MAX_CALL_DEPTH 32

/* The error of an exhausted budget (see jinja-internal.h). */
static void
budget_error(JCtx *ctx)
{
    const JBudget *b = ctx->budget;
    HrStatus st = HR_ERR_FORMAT;
    char *msg;
    switch (b->stop) {
    case JB_STEPS:
        msg = g_strdup_printf("chat template exceeded its budget of %" G_GUINT64_FORMAT
                              " steps (an endless or exponential loop?)", b->lim.max_steps);
        break;
    case JB_ALLOC:
        msg = g_strdup_printf("chat template exceeded its budget of %" G_GUINT64_FORMAT
                              " MiB of allocations", b->lim.max_alloc >> 20);
        break;
    case JB_STRING:
        st = HR_ERR_UNSUPPORTED;
        msg = g_strdup_printf("string too large (the limit is %" G_GUINT64_FORMAT " MiB)", b->lim.max_string >> 20);
        break;
    default:
        st = HR_ERR_CANCELLED;
        msg = g_strdup("chat template rendering cancelled");
        break;
    }
    ctx->failed = true;
    ctx->status = st;
    if (b->line > 0)
        hr_error_set(ctx->err, st, "line %d: %s", b->line, msg);
    else
        hr_error_set(ctx->err, st, "%s", msg);
    g_free(msg);
}

bool
jstep(JCtx *ctx, int line, uint64_t n)
{
    if (line > 0)
        ctx->budget->line = line;
    if (jbudget_step(n))
        return true;
    if (!ctx->failed)
        budget_error(ctx);
    return false;
}

bool
jstring_fits(JCtx *ctx, int line, uint64_t n)
{
    if (jbudget_string_ok(n))
        return true;
    if (line > 0)
        ctx->budget->line = line;
    if (!ctx->failed)
        budget_error(ctx);
    return false;
}

Jv *
jerr(JCtx *ctx, int line, HrStatus st, const char *fmt, ...)
{
    if (ctx->failed)
        return NULL;
    /* A computation cut short by the budget may fail in odd ways: say why. */
    if (ctx->budget->stop != JB_OK) {
        budget_error(ctx);
        return NULL;
    }
    ctx->failed = true;
    ctx->status = st;
    va_list ap;
    va_start(ap, fmt);
    char *msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    if (line > 0)
        hr_error_set(ctx->err, st, "line %d: %s", line, msg);
    else
        hr_error_set(ctx->err, st, "%s", msg);
    g_free(msg);
    return NULL;
}

Jv *
jraise(JCtx *ctx, const char *message)
{
    if (ctx->failed)
        return NULL;
    if (ctx->budget->stop != JB_OK) {
        budget_error(ctx);
        return NULL;
    }
    ctx->failed = true;
    ctx->status = HR_ERR_FORMAT;
    hr_error_set(ctx->err, HR_ERR_FORMAT, "%s", *message ? message : "the template raised an error with no message");
    return NULL;
}

Jv *
jerr_undefined(JCtx *ctx, int line, const Jv *undef)
{
    const char *hint = undef->u.undef.hint;
    return jerr(ctx, line, HR_ERR_FORMAT, "%s", hint ? hint : "value is undefined");
}

Jv *
jargs_get(const JArgs *args, int pos, const char *name)
{
    if (name)
        for (size_t i = 0; i < args->nkw; i++)
            if (strcmp(args->kwn[i], name) == 0)
                return args->kwv[i];
    if (pos >= 0 && (size_t)pos < args->npos)
        return args->pos[pos];
    return NULL;
}

static void
jargs_clear(JArgs *a)
{
    for (size_t i = 0; i < a->npos; i++)
        jv_unref(a->pos[i]);
    for (size_t i = 0; i < a->nkw; i++)
        jv_unref(a->kwv[i]);
    g_free(a->pos);
    g_free(a->kwn); /* the names are borrowed from the syntax tree */
    g_free(a->kwv);
    memset(a, 0, sizeof *a);
}

/* ------------------------------------------------------------------ scopes */

static void
scope_init(JCtx *ctx, JScope *s, JScope *parent)
{
    s->parent = parent;
    s->vars = NULL;
    s->id = ++ctx->next_scope_id;
}

static void
scope_clear(JScope *s)
{
    if (s->vars)
        g_hash_table_destroy(s->vars);
    s->vars = NULL;
}

static void
scope_set(JScope *s, const char *name, Jv *v)
{
    if (!s->vars)
        s->vars = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify)jv_unref);
    g_hash_table_replace(s->vars, g_strdup(name), v);
}

static Jv *
lookup(JScope *s, const char *name)
{
    for (JScope *sc = s; sc; sc = sc->parent) {
        Jv *v = sc->vars ? g_hash_table_lookup(sc->vars, name) : NULL;
        if (v)
            return jv_ref(v);
    }
    if (jinja_global_known(name))
        return jv_func_new(JF_GLOBAL, name);
    return jv_undefined_fmt("'%s' is undefined", name);
}

/* ------------------------------------------------------------------ attribute and item access */

static Jv *
method_value(Jv *obj, const char *name)
{
    Jv *f = jv_func_new(JF_METHOD, name);
    f->u.func.self = jv_ref(obj);
    return f;
}

static const char *
object_desc(const Jv *obj, char *buf, size_t size)
{
    if (obj->kind == JV_NONE)
        return "None";
    snprintf(buf, size, "%s object", jv_type_name(obj));
    return buf;
}

Jv *
jinja_getattr(JCtx *ctx, int line, Jv *obj, const char *name)
{
    char buf[64];
    switch (obj->kind) {
    case JV_UNDEFINED:
        return jerr_undefined(ctx, line, obj);
    case JV_NAMESPACE: {
        Jv *v = jv_dict_get(obj, name);
        if (v)
            return jv_ref(v);
        break;
    }
    case JV_DICT: {
        if (jinja_method_kind(obj, name))
            return method_value(obj, name);
        Jv *v = jv_dict_get(obj, name);
        if (v)
            return jv_ref(v);
        break;
    }
    case JV_STRING:
    case JV_LIST:
        if (jinja_method_kind(obj, name))
            return method_value(obj, name);
        break;
    default:
        break;
    }
    return jv_undefined_fmt("'%s' has no attribute '%s'", object_desc(obj, buf, sizeof buf), name);
}

static bool
index_of(const Jv *key, int64_t len, int64_t *at)
{
    if (!jv_is_int(key))
        return false;
    int64_t i = jv_as_int(key);
    if (i < 0)
        i += len;
    if (i < 0 || i >= len)
        return false;
    *at = i;
    return true;
}

/* Byte offset of every code point of s, plus the end: n + 1 entries. */
static size_t *
char_offsets(const char *s, size_t bytes, size_t *n)
{
    size_t count = jutf8_len(s, bytes);
    jbudget_step(bytes / 64);
    jbudget_alloc((count + 1) * sizeof(size_t));
    size_t *off = g_new(size_t, count + 1);
    size_t k = 0;
    for (size_t i = 0; i < bytes; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80)
            off[k++] = i;
    off[k] = bytes;
    *n = count;
    return off;
}

Jv *
jinja_getitem(JCtx *ctx, int line, Jv *obj, Jv *key)
{
    char buf[64];
    switch (obj->kind) {
    case JV_UNDEFINED:
        return jerr_undefined(ctx, line, obj);
    case JV_DICT:
    case JV_NAMESPACE:
        if (key->kind == JV_STRING) {
            Jv *v = jv_dict_get(obj, key->u.str.s);
            if (v)
                return jv_ref(v);
            if (obj->kind == JV_DICT && jinja_method_kind(obj, key->u.str.s))
                return method_value(obj, key->u.str.s);
        }
        break;
    case JV_LIST: {
        int64_t at;
        if (!obj->u.list.gen && index_of(key, (int64_t)obj->u.list.n, &at))
            return jv_ref(obj->u.list.items[at]);
        break;
    }
    case JV_STRING: {
        size_t n;
        int64_t at;
        if (jv_is_int(key)) {
            /* the at-th code point, found by walking (no table of offsets: the string may be long) */
            const char *str = obj->u.str.s;
            n = jutf8_len(str, obj->u.str.len);
            jbudget_step(obj->u.str.len / 64);
            if (index_of(key, (int64_t)n, &at)) {
                const char *p = str;
                for (int64_t k = 0; k < at; k++)
                    p = g_utf8_next_char(p);
                return jv_str_len(p, (size_t)(g_utf8_next_char(p) - p));
            }
        }
        break;
    }
    default:
        break;
    }
    if (key->kind == JV_STRING) {
        if ((obj->kind == JV_STRING || obj->kind == JV_LIST) && jinja_method_kind(obj, key->u.str.s))
            return method_value(obj, key->u.str.s);
        return jv_undefined_fmt("'%s' has no attribute '%s'", object_desc(obj, buf, sizeof buf), key->u.str.s);
    }
    GString *k = g_string_new(NULL);
    jv_repr_append(k, key);
    Jv *u = jv_undefined_fmt("%s has no element %s", object_desc(obj, buf, sizeof buf), k->str);
    g_string_free(k, TRUE);
    return u;
}

/* Python's slice.indices() and the number of items selected. */
static bool
slice_bounds(const Jv *start, const Jv *stop, const Jv *step, int64_t len, int64_t *o_start, int64_t *o_step,
             int64_t *o_count, bool *step_zero)
{
    *step_zero = false;
    const Jv *parts[3] = { start, stop, step };
    for (int k = 0; k < 3; k++)
        if (parts[k]->kind != JV_NONE && !jv_is_int(parts[k]))
            return false;
    int64_t st = step->kind == JV_NONE ? 1 : jv_as_int(step);
    if (st == 0) {
        *step_zero = true;
        return false;
    }
    int64_t a, b;
    if (start->kind == JV_NONE) {
        a = st < 0 ? len - 1 : 0;
    } else {
        a = jv_as_int(start);
        if (a < 0) {
            a += len;
            if (a < 0)
                a = st < 0 ? -1 : 0;
        } else if (a >= len) {
            a = st < 0 ? len - 1 : len;
        }
    }
    if (stop->kind == JV_NONE) {
        b = st < 0 ? -1 : len;
    } else {
        b = jv_as_int(stop);
        if (b < 0) {
            b += len;
            if (b < 0)
                b = st < 0 ? -1 : 0;
        } else if (b >= len) {
            b = st < 0 ? len - 1 : len;
        }
    }
    int64_t count;
    if (st > 0)
        count = b > a ? (b - a - 1) / st + 1 : 0;
    else
        count = a > b ? (a - b - 1) / (-st) + 1 : 0;
    *o_start = a;
    *o_step = st;
    *o_count = count;
    return true;
}

static Jv *
slice_value(JCtx *ctx, int line, Jv *obj, Jv *start, Jv *stop, Jv *step)
{
    if (obj->kind == JV_UNDEFINED)
        return jerr_undefined(ctx, line, obj);
    /* jinja2 compiles slices to a plain Python subscript, so failures raise. */
    if (obj->kind == JV_DICT)
        return jerr(ctx, line, HR_ERR_FORMAT, "unhashable type: 'slice'");
    if (obj->kind != JV_STRING && !(obj->kind == JV_LIST && !obj->u.list.gen))
        return jerr(ctx, line, HR_ERR_FORMAT, "'%s' object is not subscriptable", jv_type_name(obj));
    size_t n = 0;
    size_t *off = NULL;
    if (obj->kind == JV_STRING)
        off = char_offsets(obj->u.str.s, obj->u.str.len, &n);
    else
        n = obj->u.list.n;
    int64_t a, st, count;
    bool step_zero;
    if (!slice_bounds(start, stop, step, (int64_t)n, &a, &st, &count, &step_zero)) {
        g_free(off);
        if (step_zero)
            return jerr(ctx, line, HR_ERR_FORMAT, "slice step cannot be zero");
        return jerr(ctx, line, HR_ERR_FORMAT, "slice indices must be integers or None");
    }
    Jv *r;
    if (obj->kind == JV_STRING) {
        GString *g = g_string_new(NULL);
        for (int64_t k = 0, i = a; k < count; k++, i += st)
            g_string_append_len(g, obj->u.str.s + off[i], off[i + 1] - off[i]);
        g_free(off);
        r = jv_str_gstring(g);
    } else {
        r = obj->u.list.tuple ? jv_tuple_new() : jv_list_new();
        for (int64_t k = 0, i = a; k < count; k++, i += st)
            jv_list_push(r, jv_ref(obj->u.list.items[i]));
    }
    return r;
}

Jv *
jinja_iterate(JCtx *ctx, int line, Jv *v)
{
    Jv *l = jv_list_new();
    switch (v->kind) {
    case JV_UNDEFINED:
        return l;
    case JV_LIST:
        if (!jv_list_reserve(l, v->u.list.n))
            break;
        for (size_t i = 0; i < v->u.list.n; i++)
            jv_list_push(l, jv_ref(v->u.list.items[i]));
        break;
    case JV_DICT:
        for (size_t i = 0; i < v->u.dict.n && !jbudget_stopped(); i++)
            jv_list_push(l, jv_str(v->u.dict.keys[i]));
        break;
    case JV_STRING: {
        const char *s = v->u.str.s;
        for (const char *p = s; *p && !jbudget_stopped(); p = g_utf8_next_char(p))
            jv_list_push(l, jv_str_len(p, (size_t)(g_utf8_next_char(p) - p)));
        break;
    }
    default:
        jv_unref(l);
        return jerr(ctx, line, HR_ERR_FORMAT, "'%s' object is not iterable", jv_type_name(v));
    }
    if (!jstep(ctx, line, 1)) {
        jv_unref(l);
        return NULL;
    }
    return l;
}

/* ------------------------------------------------------------------ operators */

static Jv *
type_error2(JCtx *ctx, int line, const char *op, const Jv *a, const Jv *b)
{
    return jerr(ctx, line, HR_ERR_FORMAT, "unsupported operand type(s) for %s: '%s' and '%s'", op, jv_type_name(a),
                jv_type_name(b));
}

static Jv *
overflow(JCtx *ctx, int line)
{
    return jerr(ctx, line, HR_ERR_UNSUPPORTED, "integer overflow (only 64-bit integers are supported)");
}

static Jv *
repeat(JCtx *ctx, int line, Jv *seq, int64_t times)
{
    if (times < 0)
        times = 0;
    /* nothing to repeat: no loop of `times` empty appends ('' * 2**62 hung) */
    if (seq->kind == JV_STRING && seq->u.str.len == 0)
        return jv_str_gstring(g_string_new(NULL));
    if (seq->kind != JV_STRING && seq->u.list.n == 0)
        return seq->u.list.tuple ? jv_tuple_new() : jv_list_new();
    if (seq->kind == JV_STRING) {
        if (seq->u.str.len > 0 && (uint64_t)times > ctx->budget->lim.max_string / seq->u.str.len)
            return jerr(ctx, line, HR_ERR_UNSUPPORTED, "string repetition result too large");
        GString *g = g_string_sized_new(seq->u.str.len * (size_t)times + 1);
        for (int64_t i = 0; i < times; i++)
            g_string_append_len(g, seq->u.str.s, seq->u.str.len);
        return jv_str_gstring(g);
    }
    if (seq->u.list.n > 0 && (uint64_t)times > (1u << 20) / seq->u.list.n)
        return jerr(ctx, line, HR_ERR_UNSUPPORTED, "list repetition result too large");
    Jv *r = seq->u.list.tuple ? jv_tuple_new() : jv_list_new();
    for (int64_t i = 0; i < times; i++)
        for (size_t k = 0; k < seq->u.list.n; k++)
            jv_list_push(r, jv_ref(seq->u.list.items[k]));
    return r;
}

static double
py_float_floordiv(double vx, double wx, double *mod_out)
{
    double mod = fmod(vx, wx);
    double div = (vx - mod) / wx;
    if (mod != 0.0) {
        if ((wx < 0) != (mod < 0)) {
            mod += wx;
            div -= 1.0;
        }
    } else {
        mod = copysign(0.0, wx);
    }
    double floordiv;
    if (div != 0.0) {
        floordiv = floor(div);
        if (div - floordiv > 0.5)
            floordiv += 1.0;
    } else {
        floordiv = copysign(0.0, vx / wx);
    }
    if (mod_out)
        *mod_out = mod;
    return floordiv;
}

/* Python's printf-style str % args: conversions s r d i u f F x X o c %, with
 * flags "-0+ ", width and precision; %(name)s with a dict. */
static Jv *
percent_format(JCtx *ctx, int line, const char *fmt, Jv *args)
{
    bool is_tuple = args->kind == JV_LIST && args->u.list.tuple;
    /* Python treats anything with __getitem__ (but not a tuple or str) as a mapping. */
    bool mapping = !is_tuple && (args->kind == JV_DICT || args->kind == JV_LIST || args->kind == JV_UNDEFINED);
    Jv *const *items = is_tuple ? args->u.list.items : &args;
    size_t n = is_tuple ? args->u.list.n : 1, next = 0;
    bool used_mapping = false;
    GString *g = g_string_new(NULL);
    for (const char *p = fmt; *p; p++) {
        if (*p != '%') {
            g_string_append_c(g, *p);
            continue;
        }
        p++;
        Jv *arg = NULL;
        if (*p == '(') {
            const char *close = strchr(p, ')');
            if (!close || args->kind != JV_DICT) {
                g_string_free(g, TRUE);
                return jerr(ctx, line, HR_ERR_FORMAT, "format requires a mapping");
            }
            char *key = g_strndup(p + 1, (gsize)(close - p - 1));
            arg = jv_dict_get(args, key);
            if (!arg) {
                Jv *r = jerr(ctx, line, HR_ERR_FORMAT, "KeyError: '%s'", key);
                g_free(key);
                g_string_free(g, TRUE);
                return r;
            }
            g_free(key);
            used_mapping = true;
            p = close + 1;
        }
        bool left = false, zero = false, plus = false, space = false, alt = false;
        for (; *p && strchr("-+ 0#", *p); p++) {
            left |= *p == '-';
            zero |= *p == '0';
            plus |= *p == '+';
            space |= *p == ' ';
            alt |= *p == '#';
        }
        int width = 0, prec = -1;
        for (; g_ascii_isdigit(*p); p++)
            width = MIN(width * 10 + (*p - '0'), 4096);
        if (*p == '.') {
            prec = 0;
            for (p++; g_ascii_isdigit(*p); p++)
                prec = MIN(prec * 10 + (*p - '0'), 4096);
        }
        while (*p == 'h' || *p == 'l' || *p == 'L')
            p++;
        char conv = *p;
        if (conv == '%') {
            g_string_append_c(g, '%');
            continue;
        }
        if (!conv || !strchr("srdiufFxXoc", conv)) {
            g_string_free(g, TRUE);
            return jerr(ctx, line, conv ? HR_ERR_UNSUPPORTED : HR_ERR_FORMAT, "unsupported format character in '%s'", fmt);
        }
        if (!arg) {
            if (next >= n) {
                g_string_free(g, TRUE);
                return jerr(ctx, line, HR_ERR_FORMAT, "not enough arguments for format string");
            }
            arg = items[next++];
        }
        GString *body = g_string_new(NULL);
        const char *sign = "";
        bool numeric = false;
        if (conv == 's' || conv == 'r') {
            if (conv == 's')
                jv_str_append(body, arg);
            else
                jv_repr_append(body, arg);
            if (prec >= 0 && (size_t)prec < jutf8_len(body->str, body->len))
                g_string_truncate(body, (gsize)(g_utf8_offset_to_pointer(body->str, prec) - body->str));
        } else if (conv == 'c') {
            if (arg->kind == JV_STRING && g_utf8_strlen(arg->u.str.s, -1) == 1)
                g_string_append(body, arg->u.str.s);
            else if (jv_is_int(arg) && jv_as_int(arg) > 0 && jv_as_int(arg) <= 0x10FFFF) {
                gunichar c = (gunichar)jv_as_int(arg);
                /* a lone surrogate has no UTF-8: U+FFFD, as the lexer does for '\ud800' */
                g_string_append_unichar(body, c >= 0xD800 && c <= 0xDFFF ? 0xFFFD : c);
            }
            else {
                g_string_free(body, TRUE);
                g_string_free(g, TRUE);
                return jerr(ctx, line, HR_ERR_FORMAT, "%%c requires an int or a unicode character");
            }
        } else {
            if (!jv_is_number(arg)) {
                g_string_free(body, TRUE);
                g_string_free(g, TRUE);
                return jerr(ctx, line, HR_ERR_FORMAT, "%%%c format: a real number is required, not %s", conv,
                            jv_type_name(arg));
            }
            numeric = true;
            if (conv == 'f' || conv == 'F') {
                double d = jv_as_double(arg);
                g_string_append_printf(body, "%.*f", prec < 0 ? 6 : prec, fabs(d));
                sign = signbit(d) ? "-" : plus ? "+" : space ? " " : "";
            } else if (arg->kind == JV_FLOAT) {
                /* Python: %d of a float is int(x), of any size; %x and %o want an int */
                double d = arg->u.f;
                const char *bad = conv == 'x' || conv == 'X' || conv == 'o' ? "an integer is required, not float"
                                  : isnan(d)                                 ? "cannot convert float NaN to integer"
                                  : isinf(d) ? "cannot convert float infinity to integer"
                                             : NULL;
                if (bad) {
                    g_string_free(body, TRUE);
                    g_string_free(g, TRUE);
                    return jerr(ctx, line, HR_ERR_FORMAT, "%%%c format: %s", conv, bad);
                }
                double t = trunc(d);
                g_string_append_printf(body, "%.0f", fabs(t)); /* exact: every such double is an integer */
                sign = t < 0 ? "-" : plus ? "+" : space ? " " : "";
            } else {
                int64_t v = jv_as_int(arg);
                unsigned long long mag = v < 0 ? (unsigned long long)(-(v + 1)) + 1 : (unsigned long long)v;
                if (conv == 'x' || conv == 'X')
                    g_string_append_printf(body, conv == 'x' ? "%s%llx" : "%s%llX", alt ? (conv == 'x' ? "0x" : "0X") : "", mag);
                else if (conv == 'o')
                    g_string_append_printf(body, "%s%llo", alt ? "0o" : "", mag);
                else
                    g_string_append_printf(body, "%llu", mag);
                sign = v < 0 ? "-" : plus ? "+" : space ? " " : "";
            }
        }
        size_t len = jutf8_len(body->str, body->len) + strlen(sign);
        size_t pad = (size_t)width > len ? (size_t)width - len : 0;
        if (left) {
            g_string_append(g, sign);
            g_string_append(g, body->str);
            for (size_t i = 0; i < pad; i++)
                g_string_append_c(g, ' ');
        } else if (zero && numeric) {
            g_string_append(g, sign);
            for (size_t i = 0; i < pad; i++)
                g_string_append_c(g, '0');
            g_string_append(g, body->str);
        } else {
            for (size_t i = 0; i < pad; i++)
                g_string_append_c(g, ' ');
            g_string_append(g, sign);
            g_string_append(g, body->str);
        }
        g_string_free(body, TRUE);
        if (!jstring_fits(ctx, line, g->len)) {
            g_string_free(g, TRUE);
            return NULL;
        }
    }
    if (!mapping && !used_mapping && next < n) {
        g_string_free(g, TRUE);
        return jerr(ctx, line, HR_ERR_FORMAT, "not all arguments converted during string formatting");
    }
    return jv_str_gstring(g);
}

Jv *
jinja_binop(JCtx *ctx, int line, const char *op, Jv *a, Jv *b)
{
    if (a->kind == JV_UNDEFINED)
        return jerr_undefined(ctx, line, a);
    if (b->kind == JV_UNDEFINED && !(op[0] == '%' && a->kind == JV_STRING)) /* str % Undefined formats it */
        return jerr_undefined(ctx, line, b);
    bool nums = jv_is_number(a) && jv_is_number(b);
    bool ints = jv_is_int(a) && jv_is_int(b);
    char o = op[0];
    bool two = op[1] != '\0';
    if (o == '+' ) {
        if (ints) {
            int64_t r;
            if (__builtin_add_overflow(jv_as_int(a), jv_as_int(b), &r))
                return overflow(ctx, line);
            return jv_int(r);
        }
        if (nums)
            return jv_float(jv_as_double(a) + jv_as_double(b));
        if (a->kind == JV_STRING && b->kind == JV_STRING) {
            if (!jstring_fits(ctx, line, (uint64_t)a->u.str.len + b->u.str.len))
                return NULL;
            GString *g = g_string_sized_new(a->u.str.len + b->u.str.len + 1);
            g_string_append_len(g, a->u.str.s, a->u.str.len);
            g_string_append_len(g, b->u.str.s, b->u.str.len);
            return jv_str_gstring(g);
        }
        if (a->kind == JV_LIST && b->kind == JV_LIST && a->u.list.tuple == b->u.list.tuple && !a->u.list.gen &&
            !b->u.list.gen) {
            Jv *r = a->u.list.tuple ? jv_tuple_new() : jv_list_new();
            /* charged before the copy: list doubling in a loop stops here */
            if (!jv_list_reserve(r, a->u.list.n + b->u.list.n)) {
                jv_unref(r);
                jstep(ctx, line, 0);
                return NULL;
            }
            for (size_t i = 0; i < a->u.list.n; i++)
                jv_list_push(r, jv_ref(a->u.list.items[i]));
            for (size_t i = 0; i < b->u.list.n; i++)
                jv_list_push(r, jv_ref(b->u.list.items[i]));
            return r;
        }
        if (a->kind == JV_STRING || (a->kind == JV_LIST && !a->u.list.gen))
            return jerr(ctx, line, HR_ERR_FORMAT, "can only concatenate %s (not \"%s\") to %s", jv_type_name(a),
                        jv_type_name(b), jv_type_name(a));
        return type_error2(ctx, line, "+", a, b);
    }
    if (o == '-') {
        if (ints) {
            int64_t r;
            if (__builtin_sub_overflow(jv_as_int(a), jv_as_int(b), &r))
                return overflow(ctx, line);
            return jv_int(r);
        }
        if (nums)
            return jv_float(jv_as_double(a) - jv_as_double(b));
        return type_error2(ctx, line, "-", a, b);
    }
    if (o == '*' && two) { /* ** */
        if (ints) {
            int64_t base = jv_as_int(a), e = jv_as_int(b);
            if (e < 0) {
                if (base == 0)
                    return jerr(ctx, line, HR_ERR_FORMAT, "0.0 cannot be raised to a negative power");
                return jv_float(pow((double)base, (double)e));
            }
            /* |base| <= 1 never overflows: do not loop e times */
            if (base == 0 || base == 1)
                return jv_int(e == 0 ? 1 : base);
            if (base == -1)
                return jv_int(e % 2 ? -1 : 1);
            int64_t r = 1;
            while (e-- > 0)
                if (__builtin_mul_overflow(r, base, &r))
                    return overflow(ctx, line);
            return jv_int(r);
        }
        if (nums) {
            double x = jv_as_double(a), y = jv_as_double(b);
            if (x == 0.0 && y < 0)
                return jerr(ctx, line, HR_ERR_FORMAT, "0.0 cannot be raised to a negative power");
            if (x < 0 && y != floor(y))
                return jerr(ctx, line, HR_ERR_UNSUPPORTED, "complex results are not supported");
            return jv_float(pow(x, y));
        }
        return type_error2(ctx, line, "** or pow()", a, b);
    }
    if (o == '*') {
        if (ints) {
            int64_t r;
            if (__builtin_mul_overflow(jv_as_int(a), jv_as_int(b), &r))
                return overflow(ctx, line);
            return jv_int(r);
        }
        if (nums)
            return jv_float(jv_as_double(a) * jv_as_double(b));
        if ((a->kind == JV_STRING || (a->kind == JV_LIST && !a->u.list.gen)) && jv_is_int(b))
            return repeat(ctx, line, a, jv_as_int(b));
        if ((b->kind == JV_STRING || (b->kind == JV_LIST && !b->u.list.gen)) && jv_is_int(a))
            return repeat(ctx, line, b, jv_as_int(a));
        if (a->kind == JV_STRING || b->kind == JV_STRING)
            return jerr(ctx, line, HR_ERR_FORMAT, "can't multiply sequence by non-int of type '%s'",
                        jv_type_name(a->kind == JV_STRING ? b : a));
        return type_error2(ctx, line, "*", a, b);
    }
    if (o == '/' && two) { /* // */
        if (ints) {
            int64_t x = jv_as_int(a), y = jv_as_int(b);
            if (y == 0)
                return jerr(ctx, line, HR_ERR_FORMAT, "integer division or modulo by zero");
            if (x == INT64_MIN && y == -1)
                return overflow(ctx, line);
            int64_t q = x / y;
            if ((x % y != 0) && ((x < 0) != (y < 0)))
                q--;
            return jv_int(q);
        }
        if (nums) {
            double y = jv_as_double(b);
            if (y == 0.0)
                return jerr(ctx, line, HR_ERR_FORMAT, "float floor division by zero");
            return jv_float(py_float_floordiv(jv_as_double(a), y, NULL));
        }
        return type_error2(ctx, line, "//", a, b);
    }
    if (o == '/') {
        if (nums) {
            double y = jv_as_double(b);
            if (y == 0.0)
                return jerr(ctx, line, HR_ERR_FORMAT, "division by zero");
            return jv_float(jv_as_double(a) / y);
        }
        return type_error2(ctx, line, "/", a, b);
    }
    if (o == '%') {
        if (ints) {
            int64_t x = jv_as_int(a), y = jv_as_int(b);
            if (y == 0)
                return jerr(ctx, line, HR_ERR_FORMAT, "integer modulo by zero");
            if (y == -1)
                return jv_int(0);
            int64_t m = x % y;
            if (m != 0 && ((m < 0) != (y < 0)))
                m += y;
            return jv_int(m);
        }
        if (nums) {
            double y = jv_as_double(b), m;
            if (y == 0.0)
                return jerr(ctx, line, HR_ERR_FORMAT, "float modulo");
            py_float_floordiv(jv_as_double(a), y, &m);
            return jv_float(m);
        }
        if (a->kind == JV_STRING)
            return percent_format(ctx, line, a->u.str.s, b);
        return type_error2(ctx, line, "%", a, b);
    }
    return jerr(ctx, line, HR_ERR_UNSUPPORTED, "operator '%s' is not supported", op);
}

/* <0, 0, >0, or -2 (not comparable: error set). */
static int
order(JCtx *ctx, int line, const char *op, const Jv *a, const Jv *b, int depth)
{
    if (a->kind == JV_UNDEFINED) {
        jerr_undefined(ctx, line, a);
        return -2;
    }
    if (b->kind == JV_UNDEFINED) {
        jerr_undefined(ctx, line, b);
        return -2;
    }
    if (jv_is_number(a) && jv_is_number(b)) {
        if (jv_is_int(a) && jv_is_int(b)) {
            int64_t x = jv_as_int(a), y = jv_as_int(b);
            return x < y ? -1 : x > y;
        }
        double x = jv_as_double(a), y = jv_as_double(b);
        if (isnan(x) || isnan(y))
            return 2; /* every ordering comparison is false */
        return x < y ? -1 : x > y;
    }
    if (!jstep(ctx, line, 1))
        return -2;
    if (a->kind == JV_STRING && b->kind == JV_STRING) {
        jbudget_step(MIN(a->u.str.len, b->u.str.len) / 64);
        int c = strcmp(a->u.str.s, b->u.str.s);
        return c < 0 ? -1 : c > 0;
    }
    if (a->kind == JV_LIST && b->kind == JV_LIST && a->u.list.tuple == b->u.list.tuple && !a->u.list.gen &&
        !b->u.list.gen) {
        if (depth > JV_MAX_NESTING) {
            jerr(ctx, line, HR_ERR_UNSUPPORTED, "values nested too deeply to compare");
            return -2;
        }
        size_t n = MIN(a->u.list.n, b->u.list.n);
        for (size_t i = 0; i < n; i++) {
            if (jv_equal(a->u.list.items[i], b->u.list.items[i]))
                continue;
            return order(ctx, line, op, a->u.list.items[i], b->u.list.items[i], depth + 1);
        }
        return a->u.list.n < b->u.list.n ? -1 : a->u.list.n > b->u.list.n;
    }
    jerr(ctx, line, HR_ERR_FORMAT, "'%s' not supported between instances of '%s' and '%s'", op, jv_type_name(a),
         jv_type_name(b));
    return -2;
}

static int
contains(JCtx *ctx, int line, Jv *container, Jv *item)
{
    switch (container->kind) {
    case JV_UNDEFINED:
        return 0;
    case JV_STRING:
        if (item->kind != JV_STRING) {
            jerr(ctx, line, HR_ERR_FORMAT, "'in <string>' requires string as left operand, not %s", jv_type_name(item));
            return -1;
        }
        if (!jstep(ctx, line, 1))
            return -1;
        bool found = jfind(container->u.str.s, container->u.str.len, item->u.str.s, item->u.str.len) != NULL;
        return jstep(ctx, line, 0) ? found : -1;
    case JV_LIST:
        for (size_t i = 0; i < container->u.list.n; i++)
            if (jv_equal(container->u.list.items[i], item))
                return 1;
        return jstep(ctx, line, 1) ? 0 : -1;
    case JV_DICT:
        return item->kind == JV_STRING && jv_dict_get(container, item->u.str.s) != NULL;
    default:
        jerr(ctx, line, HR_ERR_FORMAT, "argument of type '%s' is not iterable", jv_type_name(container));
        return -1;
    }
}

int
jinja_compare(JCtx *ctx, int line, const char *op, Jv *a, Jv *b)
{
    if (strcmp(op, "==") == 0)
        return jv_equal(a, b);
    if (strcmp(op, "!=") == 0)
        return !jv_equal(a, b);
    if (strcmp(op, "in") == 0)
        return contains(ctx, line, b, a);
    if (strcmp(op, "notin") == 0) {
        int r = contains(ctx, line, b, a);
        return r < 0 ? r : !r;
    }
    int c = order(ctx, line, op, a, b, 0);
    if (c == -2)
        return -1;
    if (c == 2)
        return 0;
    if (strcmp(op, "<") == 0)
        return c < 0;
    if (strcmp(op, "<=") == 0)
        return c <= 0;
    if (strcmp(op, ">") == 0)
        return c > 0;
    return c >= 0;
}

/* ------------------------------------------------------------------ evaluation */

static Jv *eval(JCtx *ctx, JScope *s, const JNode *n);
static bool exec_body(JCtx *ctx, JScope *s, GPtrArray *body);

static bool
eval_args(JCtx *ctx, JScope *s, GPtrArray *items, JArgs *args)
{
    memset(args, 0, sizeof *args);
    guint n = items ? items->len : 0;
    args->pos = g_new0(Jv *, n + 1);
    args->kwn = g_new0(char *, n + 1);
    args->kwv = g_new0(Jv *, n + 1);
    for (guint i = 0; i < n; i++) {
        const JNode *a = g_ptr_array_index(items, i);
        if (a->kind == E_KWARG) {
            Jv *v = eval(ctx, s, a->a);
            if (!v)
                return false;
            args->kwn[args->nkw] = a->str;
            args->kwv[args->nkw++] = v;
        } else {
            Jv *v = eval(ctx, s, a);
            if (!v)
                return false;
            args->pos[args->npos++] = v;
        }
    }
    return true;
}

static JScope *
find_scope(JCtx *ctx, JScope *from, uint64_t id)
{
    for (JScope *sc = from; sc; sc = sc->parent)
        if (sc->id == id)
            return sc;
    return ctx->root;
}

static Jv *
capture(JCtx *ctx, JScope *s, GPtrArray *body)
{
    GString *saved = ctx->out;
    ctx->out = g_string_new(NULL);
    bool ok = exec_body(ctx, s, body);
    GString *g = ctx->out;
    ctx->out = saved;
    if (!ok) {
        g_string_free(g, TRUE);
        return NULL;
    }
    return jv_str_gstring(g);
}

/* A macro or the body of a call block: bind the parameters in a child of the
 * scope it was defined in and render its body to a string. */
static Jv *
call_template_function(JCtx *ctx, JScope *s, int line, Jv *fn, JArgs *args, Jv *caller)
{
    const JNode *node = fn->u.func.node;
    GPtrArray *params = node->items;
    GPtrArray *body = node->items2;
    const char *name = fn->u.func.fk == JF_MACRO ? node->str : "caller";
    if (!jstep(ctx, line, 1))
        return NULL;
    if (ctx->depth >= MAX_CALL_DEPTH)
        return jerr(ctx, line, HR_ERR_UNSUPPORTED, "macro calls nested too deeply (recursion?)");
    if (args->npos > params->len)
        return jerr(ctx, line, HR_ERR_FORMAT, "macro '%s' takes not more than %u argument(s)", name, params->len);
    for (size_t k = 0; k < args->nkw; k++) {
        bool found = false;
        for (guint i = 0; i < params->len && !found; i++)
            found = strcmp(((JNode *)g_ptr_array_index(params, i))->str, args->kwn[k]) == 0;
        if (!found && !(caller && strcmp(args->kwn[k], "caller") == 0))
            return jerr(ctx, line, HR_ERR_FORMAT, "macro '%s' takes no keyword argument '%s'", name, args->kwn[k]);
    }
    JScope ms;
    scope_init(ctx, &ms, find_scope(ctx, s, fn->u.func.scope_id));
    for (guint i = 0; i < params->len; i++) {
        const JNode *p = g_ptr_array_index(params, i);
        Jv *v = jargs_get(args, (int)i, p->str);
        if (v) {
            v = jv_ref(v);
        } else if (p->kind == E_KWARG) {
            v = eval(ctx, &ms, p->a);
            if (!v) {
                scope_clear(&ms);
                return NULL;
            }
        } else {
            v = jv_undefined_fmt("parameter '%s' was not provided", p->str);
        }
        scope_set(&ms, p->str, v);
    }
    if (caller)
        scope_set(&ms, "caller", jv_ref(caller));
    ctx->depth++;
    Jv *r = capture(ctx, &ms, body);
    ctx->depth--;
    scope_clear(&ms);
    return r;
}

static Jv *
call_value(JCtx *ctx, JScope *s, int line, Jv *fn, JArgs *args, Jv *caller)
{
    if (fn->kind == JV_UNDEFINED)
        return jerr_undefined(ctx, line, fn);
    if (fn->kind != JV_FUNC)
        return jerr(ctx, line, HR_ERR_FORMAT, "'%s' object is not callable", jv_type_name(fn));
    switch (fn->u.func.fk) {
    case JF_GLOBAL:
        return jinja_call_global(ctx, line, fn, args);
    case JF_METHOD:
        return jinja_call_method(ctx, line, fn, args);
    case JF_CYCLE:
        if (args->npos == 0)
            return jerr(ctx, line, HR_ERR_FORMAT, "no items for cycling given");
        return jv_ref(args->pos[jv_as_int(fn->u.func.self) % (int64_t)args->npos]);
    case JF_MACRO:
    case JF_CALLER:
        return call_template_function(ctx, s, line, fn, args, caller);
    }
    return NULL;
}

/* A filter or test the parser let through (see parse_filter): fail now that it runs. */
static Jv *
missing_builtin(JCtx *ctx, const JNode *n, const char *what)
{
    if (jv_as_int(n->value) == 1)
        return jerr(ctx, n->line, HR_ERR_FORMAT, "unknown %s '%s'", what, n->str);
    return jerr(ctx, n->line, HR_ERR_UNSUPPORTED, "%s '%s' is not supported", what, n->str);
}

static Jv *
eval_filter(JCtx *ctx, JScope *s, const JNode *n)
{
    if (n->value)
        return missing_builtin(ctx, n, "filter");
    Jv *value = n->a ? eval(ctx, s, n->a) : jv_ref(ctx->filter_input);
    if (!value)
        return NULL;
    JArgs args;
    Jv *r = NULL;
    if (eval_args(ctx, s, n->items, &args))
        r = jinja_apply_filter(ctx, n->line, n->str, value, &args);
    jargs_clear(&args);
    jv_unref(value);
    return r;
}

static Jv *
eval_unary(JCtx *ctx, JScope *s, const JNode *n)
{
    Jv *v = eval(ctx, s, n->a);
    if (!v)
        return NULL;
    Jv *r = NULL;
    bool neg = n->kind == E_NEG;
    if (v->kind == JV_UNDEFINED) {
        r = jerr_undefined(ctx, n->line, v);
    } else if (jv_is_int(v)) {
        int64_t i = jv_as_int(v);
        if (neg && i == INT64_MIN)
            r = overflow(ctx, n->line);
        else
            r = jv_int(neg ? -i : i);
    } else if (v->kind == JV_FLOAT) {
        r = jv_float(neg ? -v->u.f : v->u.f);
    } else {
        r = jerr(ctx, n->line, HR_ERR_FORMAT, "bad operand type for unary %c: '%s'", neg ? '-' : '+', jv_type_name(v));
    }
    jv_unref(v);
    return r;
}

static Jv *
eval(JCtx *ctx, JScope *s, const JNode *n)
{
    if (!jstep(ctx, n->line, 1))
        return NULL;
    switch (n->kind) {
    case E_CONST:
        return jv_ref(n->value);
    case E_NAME:
        return lookup(s, n->str);
    case E_LIST:
    case E_TUPLE: {
        Jv *l = n->kind == E_TUPLE ? jv_tuple_new() : jv_list_new();
        for (guint i = 0; i < n->items->len; i++) {
            Jv *v = eval(ctx, s, g_ptr_array_index(n->items, i));
            if (!v) {
                jv_unref(l);
                return NULL;
            }
            jv_list_push(l, v);
        }
        return l;
    }
    case E_DICT: {
        Jv *d = jv_dict_new();
        for (guint i = 0; i < n->items->len; i++) {
            Jv *k = eval(ctx, s, g_ptr_array_index(n->items, i));
            if (!k) {
                jv_unref(d);
                return NULL;
            }
            if (k->kind != JV_STRING) {
                jv_unref(k);
                jv_unref(d);
                return jerr(ctx, n->line, HR_ERR_UNSUPPORTED, "dict literal keys must be strings");
            }
            Jv *v = eval(ctx, s, g_ptr_array_index(n->items2, i));
            if (!v) {
                jv_unref(k);
                jv_unref(d);
                return NULL;
            }
            jv_dict_set(d, k->u.str.s, v);
            jv_unref(k);
        }
        return d;
    }
    case E_ATTR: {
        Jv *obj = eval(ctx, s, n->a);
        if (!obj)
            return NULL;
        Jv *r = jinja_getattr(ctx, n->line, obj, n->str);
        jv_unref(obj);
        return r;
    }
    case E_ITEM: {
        Jv *obj = eval(ctx, s, n->a);
        if (!obj)
            return NULL;
        Jv *key = eval(ctx, s, n->b);
        if (!key) {
            jv_unref(obj);
            return NULL;
        }
        Jv *r = jinja_getitem(ctx, n->line, obj, key);
        jv_unref(obj);
        jv_unref(key);
        return r;
    }
    case E_SLICE: {
        Jv *obj = eval(ctx, s, n->a);
        if (!obj)
            return NULL;
        Jv *parts[3] = { NULL, NULL, NULL };
        const JNode *pn[3] = { n->b, n->c, n->d };
        Jv *r = NULL;
        bool ok = true;
        for (int k = 0; k < 3 && ok; k++) {
            parts[k] = pn[k] ? eval(ctx, s, pn[k]) : jv_none();
            ok = parts[k] != NULL;
        }
        if (ok)
            r = slice_value(ctx, n->line, obj, parts[0], parts[1], parts[2]);
        for (int k = 0; k < 3; k++)
            jv_unref(parts[k]);
        jv_unref(obj);
        return r;
    }
    case E_CALL: {
        Jv *fn = eval(ctx, s, n->a);
        if (!fn)
            return NULL;
        JArgs args;
        Jv *r = NULL;
        if (eval_args(ctx, s, n->items, &args))
            r = call_value(ctx, s, n->line, fn, &args, NULL);
        jargs_clear(&args);
        jv_unref(fn);
        return r;
    }
    case E_FILTER:
        return eval_filter(ctx, s, n);
    case E_TEST: {
        if (n->value)
            return missing_builtin(ctx, n, "test");
        Jv *v = eval(ctx, s, n->a);
        if (!v)
            return NULL;
        JArgs args;
        int r = -1;
        if (eval_args(ctx, s, n->items, &args))
            r = jinja_apply_test(ctx, n->line, n->str, v, &args);
        jargs_clear(&args);
        jv_unref(v);
        return r < 0 ? NULL : jv_bool(r);
    }
    case E_BINOP: {
        Jv *a = eval(ctx, s, n->a);
        if (!a)
            return NULL;
        Jv *b = eval(ctx, s, n->b);
        if (!b) {
            jv_unref(a);
            return NULL;
        }
        Jv *r = jinja_binop(ctx, n->line, n->str, a, b);
        jv_unref(a);
        jv_unref(b);
        return r;
    }
    case E_NEG:
    case E_POS:
        return eval_unary(ctx, s, n);
    case E_NOT: {
        Jv *v = eval(ctx, s, n->a);
        if (!v)
            return NULL;
        bool t = jv_truthy(v);
        jv_unref(v);
        return jv_bool(!t);
    }
    case E_AND:
    case E_OR: {
        Jv *a = eval(ctx, s, n->a);
        if (!a)
            return NULL;
        bool t = jv_truthy(a);
        if ((n->kind == E_AND) != t)
            return a;
        jv_unref(a);
        return eval(ctx, s, n->b);
    }
    case E_COMPARE: {
        Jv *left = eval(ctx, s, n->a);
        if (!left)
            return NULL;
        for (guint i = 0; i < n->items->len; i++) {
            const JNode *op = g_ptr_array_index(n->items, i);
            Jv *right = eval(ctx, s, op->a);
            if (!right) {
                jv_unref(left);
                return NULL;
            }
            int r = jinja_compare(ctx, op->line, op->str, left, right);
            jv_unref(left);
            left = right;
            if (r <= 0) {
                jv_unref(left);
                return r < 0 ? NULL : jv_bool(false);
            }
        }
        jv_unref(left);
        return jv_bool(true);
    }
    case E_COND: {
        Jv *c = eval(ctx, s, n->b);
        if (!c)
            return NULL;
        bool t = jv_truthy(c);
        jv_unref(c);
        if (t)
            return eval(ctx, s, n->a);
        return n->c ? eval(ctx, s, n->c) : jv_undefined("the inline if had no else branch");
    }
    case E_CONCAT: {
        GString *g = g_string_new(NULL);
        for (guint i = 0; i < n->items->len; i++) {
            Jv *v = eval(ctx, s, g_ptr_array_index(n->items, i));
            if (!v) {
                g_string_free(g, TRUE);
                return NULL;
            }
            jv_str_append(g, v);
            jv_unref(v);
            if (!jstring_fits(ctx, n->line, g->len)) {
                g_string_free(g, TRUE);
                return NULL;
            }
        }
        return jv_str_gstring(g);
    }
    default:
        return jerr(ctx, n->line, HR_ERR_FORMAT, "not an expression");
    }
}

/* ------------------------------------------------------------------ statements */

static bool
assign(JCtx *ctx, JScope *s, const JNode *target, Jv *v)
{
    if (target->kind == E_NAME) {
        scope_set(s, target->str, v);
        return true;
    }
    if (target->kind == E_NSREF) {
        Jv *ns = lookup(s, target->a->str);
        bool ok = true;
        if (ns->kind == JV_UNDEFINED) {
            jerr_undefined(ctx, target->line, ns);
            ok = false;
        } else if (ns->kind != JV_NAMESPACE) {
            jerr(ctx, target->line, HR_ERR_FORMAT, "cannot assign attribute on non-namespace object");
            ok = false;
        } else if (target->str[0] == '_') {
            jerr(ctx, target->line, HR_ERR_FORMAT,
                 "Chat templates cannot store underscore-prefixed attributes on a namespace, but got '%s'", target->str);
            ok = false;
        } else {
            jv_dict_set(ns, target->str, jv_ref(v));
        }
        jv_unref(ns);
        jv_unref(v);
        return ok;
    }
    /* tuple unpacking */
    if (v->kind != JV_LIST && v->kind != JV_STRING && v->kind != JV_DICT) {
        jerr(ctx, target->line, HR_ERR_FORMAT, "cannot unpack non-iterable %s object", jv_type_name(v));
        jv_unref(v);
        return false;
    }
    Jv *items = jinja_iterate(ctx, target->line, v);
    jv_unref(v);
    if (!items)
        return false;
    guint want = target->items->len;
    if (items->u.list.n != want) {
        if (items->u.list.n > want)
            jerr(ctx, target->line, HR_ERR_FORMAT, "too many values to unpack (expected %u)", want);
        else
            jerr(ctx, target->line, HR_ERR_FORMAT, "not enough values to unpack (expected %u, got %zu)", want,
                 items->u.list.n);
        jv_unref(items);
        return false;
    }
    bool ok = true;
    for (guint i = 0; i < want && ok; i++)
        ok = assign(ctx, s, g_ptr_array_index(target->items, i), jv_ref(items->u.list.items[i]));
    jv_unref(items);
    return ok;
}

static Jv *
make_loop(Jv *items, size_t i)
{
    size_t n = items->u.list.n;
    Jv *loop = jv_dict_new();
    jv_dict_set(loop, "index", jv_int((int64_t)i + 1));
    jv_dict_set(loop, "index0", jv_int((int64_t)i));
    jv_dict_set(loop, "revindex", jv_int((int64_t)(n - i)));
    jv_dict_set(loop, "revindex0", jv_int((int64_t)(n - i - 1)));
    jv_dict_set(loop, "first", jv_bool(i == 0));
    jv_dict_set(loop, "last", jv_bool(i + 1 == n));
    jv_dict_set(loop, "length", jv_int((int64_t)n));
    jv_dict_set(loop, "depth", jv_int(1));
    jv_dict_set(loop, "depth0", jv_int(0));
    if (i > 0)
        jv_dict_set(loop, "previtem", jv_ref(items->u.list.items[i - 1]));
    if (i + 1 < n)
        jv_dict_set(loop, "nextitem", jv_ref(items->u.list.items[i + 1]));
    Jv *cycle = jv_func_new(JF_CYCLE, "loop.cycle");
    cycle->u.func.self = jv_int((int64_t)i);
    jv_dict_set(loop, "cycle", cycle);
    return loop;
}

static bool
exec_for(JCtx *ctx, JScope *s, const JNode *n)
{
    Jv *iterable = eval(ctx, s, n->b);
    if (!iterable)
        return false;
    Jv *items = jinja_iterate(ctx, n->b->line, iterable);
    jv_unref(iterable);
    if (!items)
        return false;
    if (n->c) {
        Jv *kept = jv_list_new();
        for (size_t i = 0; i < items->u.list.n; i++) {
            JScope fs;
            scope_init(ctx, &fs, s);
            Jv *cond = NULL;
            if (assign(ctx, &fs, n->a, jv_ref(items->u.list.items[i])))
                cond = eval(ctx, &fs, n->c);
            scope_clear(&fs);
            if (!cond) {
                jv_unref(kept);
                jv_unref(items);
                return false;
            }
            if (jv_truthy(cond))
                jv_list_push(kept, jv_ref(items->u.list.items[i]));
            jv_unref(cond);
        }
        jv_unref(items);
        items = kept;
    }
    bool ok = true;
    if (items->u.list.n == 0) {
        if (n->items2) {
            JScope es;
            scope_init(ctx, &es, s);
            ok = exec_body(ctx, &es, n->items2);
            scope_clear(&es);
        }
        jv_unref(items);
        return ok;
    }
    for (size_t i = 0; i < items->u.list.n && ok; i++) {
        if (!jstep(ctx, n->line, 1)) {
            ok = false;
            break;
        }
        JScope is;
        scope_init(ctx, &is, s);
        ok = assign(ctx, &is, n->a, jv_ref(items->u.list.items[i]));
        if (ok) {
            scope_set(&is, "loop", make_loop(items, i));
            ok = exec_body(ctx, &is, n->items);
        }
        scope_clear(&is);
        if (ctx->loop_ctl == 1) {
            ctx->loop_ctl = 0;
            break;
        }
        ctx->loop_ctl = 0;
    }
    jv_unref(items);
    return ok;
}

/* The rendered text (or a block's captured text) is a string too: no longer
 * than the budget's max_string. */
static bool
output_fits(JCtx *ctx, int line, size_t more)
{
    uint64_t max = ctx->budget->lim.max_string;
    if ((uint64_t)ctx->out->len + more <= max)
        return true;
    jerr(ctx, line, HR_ERR_UNSUPPORTED, "rendered text larger than %" G_GUINT64_FORMAT " MiB", max >> 20);
    return false;
}

static bool
emit(JCtx *ctx, int line, const Jv *v)
{
    if (!output_fits(ctx, line, v->kind == JV_STRING ? v->u.str.len : 0))
        return false;
    jv_str_append(ctx->out, v);
    return output_fits(ctx, line, 0) && jstep(ctx, line, 0);
}

static Jv *
apply_filter_chain(JCtx *ctx, JScope *s, const JNode *chain, Jv *input)
{
    Jv *saved = ctx->filter_input;
    ctx->filter_input = input;
    Jv *r = eval(ctx, s, chain);
    ctx->filter_input = saved;
    return r;
}

static bool
exec_node(JCtx *ctx, JScope *s, const JNode *n)
{
    if (!jstep(ctx, n->line, 1))
        return false;
    switch (n->kind) {
    case N_DATA:
        if (!output_fits(ctx, n->line, strlen(n->str)))
            return false;
        g_string_append(ctx->out, n->str);
        return true;
    case N_OUTPUT: {
        Jv *v = eval(ctx, s, n->a);
        if (!v)
            return false;
        bool ok = emit(ctx, n->line, v);
        jv_unref(v);
        return ok;
    }
    case N_IF: {
        Jv *c = eval(ctx, s, n->a);
        if (!c)
            return false;
        bool t = jv_truthy(c);
        jv_unref(c);
        GPtrArray *body = t ? n->items : n->items2;
        return body ? exec_body(ctx, s, body) : true;
    }
    case N_FOR:
        return exec_for(ctx, s, n);
    case N_SET: {
        Jv *v = eval(ctx, s, n->b);
        return v && assign(ctx, s, n->a, v);
    }
    case N_SETBLOCK: {
        Jv *v = capture(ctx, s, n->items);
        if (v && n->b) {
            Jv *f = apply_filter_chain(ctx, s, n->b, v);
            jv_unref(v);
            v = f;
        }
        return v && assign(ctx, s, n->a, v);
    }
    case N_MACRO: {
        Jv *fn = jv_func_new(JF_MACRO, n->str);
        fn->u.func.node = n;
        fn->u.func.scope_id = s->id;
        scope_set(s, n->str, fn);
        return true;
    }
    case N_CALLBLOCK: {
        Jv *caller = jv_func_new(JF_CALLER, "caller");
        caller->u.func.node = n;
        caller->u.func.scope_id = s->id;
        const JNode *call = n->a;
        Jv *fn = eval(ctx, s, call->a);
        Jv *r = NULL;
        if (fn) {
            JArgs args;
            if (eval_args(ctx, s, call->items, &args))
                r = call_value(ctx, s, call->line, fn, &args, caller);
            jargs_clear(&args);
            jv_unref(fn);
        }
        jv_unref(caller);
        if (!r)
            return false;
        bool ok = emit(ctx, n->line, r);
        jv_unref(r);
        return ok;
    }
    case N_FILTERBLOCK: {
        JScope fs;
        scope_init(ctx, &fs, s);
        Jv *body = capture(ctx, &fs, n->items);
        Jv *r = body ? apply_filter_chain(ctx, &fs, n->a, body) : NULL;
        scope_clear(&fs);
        jv_unref(body);
        if (!r)
            return false;
        bool ok = emit(ctx, n->line, r);
        jv_unref(r);
        return ok;
    }
    case N_WITH: {
        JScope ws;
        scope_init(ctx, &ws, s);
        bool ok = true;
        for (guint i = 0; i < n->items->len && ok; i++) {
            const JNode *set = g_ptr_array_index(n->items, i);
            Jv *v = eval(ctx, s, set->b);
            ok = v && assign(ctx, &ws, set->a, v);
        }
        if (ok)
            ok = exec_body(ctx, &ws, n->items2);
        scope_clear(&ws);
        return ok;
    }
    case N_SCOPE: {
        JScope cs;
        scope_init(ctx, &cs, s);
        bool ok = exec_body(ctx, &cs, n->items);
        scope_clear(&cs);
        return ok;
    }
    case N_BREAK:
        ctx->loop_ctl = 1;
        return true;
    case N_CONTINUE:
        ctx->loop_ctl = 2;
        return true;
    default:
        jerr(ctx, n->line, HR_ERR_FORMAT, "not a statement");
        return false;
    }
}

static bool
exec_body(JCtx *ctx, JScope *s, GPtrArray *body)
{
    for (guint i = 0; i < body->len; i++) {
        if (!exec_node(ctx, s, g_ptr_array_index(body, i)))
            return false;
        if (ctx->loop_ctl)
            return true;
    }
    return true;
}

HrStatus
jinja_render(GPtrArray *body, const Jv *vars, JBudget *b, GString *out, HrError *err)
{
    JCtx ctx = { .err = err, .out = out, .budget = b };
    JBudget *previous = jbudget_enter(b);
    if (b->cancel && atomic_load(b->cancel)) /* asked to stop before it started */
        b->stop = JB_CANCELLED;
    JScope root;
    scope_init(&ctx, &root, NULL);
    ctx.root = &root;
    for (size_t i = 0; i < vars->u.dict.n; i++)
        scope_set(&root, vars->u.dict.keys[i], jv_ref(vars->u.dict.vals[i]));
    bool ok = exec_body(&ctx, &root, body);
    /* Whatever an exhausted budget cut short must not reach the caller. */
    if (b->stop != JB_OK && !ctx.failed)
        budget_error(&ctx);
    if (ctx.failed)
        ok = false;
    if (out->len > b->max_string_seen)
        b->max_string_seen = out->len;
    scope_clear(&root);
    jbudget_leave(b, previous);
    if (!ok)
        return ctx.failed ? ctx.status : hr_error_set(err, HR_ERR_FORMAT, "rendering failed");
    return HR_OK;
}
