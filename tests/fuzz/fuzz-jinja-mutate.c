/* fuzz-jinja-mutate.c — template-aware mutations for the chat-template
 * fuzzer: byte edits, Jinja fragments from a dictionary (tags, filters,
 * methods, edge-case numbers, format strings), spans duplicated or moved,
 * crossover, and structure (a loop, an if, a macro, a namespace) wrapped
 * around a span, so that mutants keep parsing and reach the interpreter.
 * The fuzz-mutate.h API, so fuzz-driver.c and fuzz-custom-mutator.c run it;
 * the PRNG (fixed seed, same sequence every run) is fuzz-rng.c. */
#include <stdint.h>
#include <string.h>

#include <glib.h>

#include "fuzz-mutate.h"

/* The PRNG is fuzz-rng.c's. */
#define below fuzz_below
#define rng fuzz_rng

static const char *const FRAGMENTS[] = {
    "{{ ", " }}", "{% ", " %}", "{%- ", " -%}", "{{- ", " -}}", "{# c #}", "{% raw %}", "{% endraw %}",
    "{% for x in ", "{% endfor %}", "{% if ", "{% elif ", "{% else %}", "{% endif %}", "{% set ", "{% endset %}",
    "{% macro m(a, b=2) %}", "{% endmacro %}", "{% call m(1) %}", "{% call(x) m(1) %}", "{% endcall %}",
    "{% filter upper %}", "{% endfilter %}", "{% with a = 1 %}", "{% endwith %}", "{% generation %}",
    "{% endgeneration %}", "{% break %}", "{% continue %}", " in ", " if ", " else ", " recursive",
    "messages", "message", "message['content']", "message.role", "messages[0]", "messages[-1]", "tools", "loop",
    "loop.index", "loop.index0", "loop.first", "loop.last", "loop.length", "loop.cycle('a', 'b')", "loop.previtem",
    "bos_token", "eos_token", "add_generation_prompt", "enable_thinking", "tool_calls", "function.arguments",
    "namespace(x=0)", "ns.x", "ns", "range(3)", "range(10, 0, -3)", "dict(a=1, b=[2])", "caller()", "m(1)",
    "raise_exception('stop')", "strftime_now('%Y-%m-%d %c')", "x", "a", "b",
    " | tojson", " | tojson(indent=2)", " | join(', ')", " | replace('a', 'bb')", " | trim", " | length",
    " | map(attribute='role')", " | selectattr('role', 'eq', 'user')", " | rejectattr('content')", " | sort",
    " | unique", " | int", " | float", " | string", " | indent(4)", " | items", " | list", " | first", " | last",
    " | reverse", " | default('d')", " | lower", " | upper", " | title", " | capitalize", " | abs", " | sum",
    " | min", " | max", " | select('odd')", " | map('upper')", " | batch(2)", " | groupby('role')",
    ".split(' ')", ".rsplit(',', 1)", ".strip()", ".lstrip('ab')", ".format(1, x=2)", ".startswith(('a', 'b'))",
    ".endswith('x')", ".find('a')", ".rfind('')", ".count('a')", ".replace('', '-')", ".splitlines()", ".items()",
    ".keys()", ".values()", ".get('role', 1)", ".index(1)", ".upper()", ".title()", ".append(1)", ".zfill(3)",
    " ~ ", " + ", " - ", " * ", " ** ", " / ", " // ", " % ", " == ", " != ", " < ", " <= ", " >= ", " in ",
    " not in ", " is defined", " is not none", " is string", " is divisibleby(3)", " is sameas(1)", " and ",
    " or ", "not ", "-", "'%d'", "'%x'", "'%5.2f'", "'%-3s|'", "'%(a)s'", "'%c'", "'%%'", "'{}'", "'{0}{x}'",
    "'{:>3}'", "1e20", "-1e300", "1e400", "1e-320", "9223372036854775807", "-9223372036854775808",
    "99999999999999999999", "0", "-1", "2", "63", "64", "1.5", "0.0", "-0.0", "'nan' | float", "'inf' | float",
    "none", "None", "true", "false", "[", "]", "(", ")", "{", "}", ",", ":", "=", ".", "'", "\"", "\\",
    "[1, [2, 3]]", "(1,)", "{'a': {'b': [1]}}", "'é'", "'\\u00e9'", "'\\n'", "'\\x00'", "'\\N{DASH}'",
    "[::-1]", "[1:]", "[:-1]", "[-1]", "[0]", "[1:2:0]", "['role']", "'a' * 100", "[0] * 100", "\n", "  ", "\t",
};

static void
insert(GByteArray *b, size_t at, const void *p, size_t n)
{
    if (at > b->len)
        at = b->len;
    g_byte_array_set_size(b, b->len + (guint)n);
    memmove(b->data + at + n, b->data + at, b->len - n - at);
    memcpy(b->data + at, p, n);
}

static void
erase(GByteArray *b, size_t at, size_t n)
{
    if (at >= b->len)
        return;
    if (n > b->len - at)
        n = b->len - at;
    g_byte_array_remove_range(b, (guint)at, (guint)n);
}

static void
insert_str(GByteArray *b, size_t at, const char *s)
{
    insert(b, at, s, strlen(s));
}

/* A position at a tag boundary most of the time: just after "}}" / "%}", or
 * just before "{{" / "{%", else anywhere. */
static size_t
pick_pos(const GByteArray *b)
{
    if (b->len == 0)
        return 0;
    size_t at = below(b->len + 1);
    if (below(2))
        return at;
    for (size_t i = at; i + 1 < b->len; i++)
        if ((b->data[i] == '}' || b->data[i] == '%') && b->data[i + 1] == '}')
            return i + 2;
    return at;
}

static void
mutate_once(GByteArray *b, GPtrArray *pool)
{
    static const char *const WRAP[][2] = {
        { "{% for i in range(3) %}", "{% endfor %}" },
        { "{% for m in messages %}", "{% endfor %}" },
        { "{% for k, v in {'a': 1, 'b': [2]}.items() if v %}", "{% else %}e{% endfor %}" },
        { "{% if messages | length > 1 %}", "{% else %}n{% endif %}" },
        { "{% macro w(q, r=none) %}", "{% endmacro %}{{ w(1) }}{{ w(q=[1]) }}" },
        { "{% set ns = namespace(v=[]) %}{% for i in range(4) %}", "{% set ns.v = ns.v + [i] %}{% endfor %}{{ ns.v }}" },
        { "{% set out %}", "{% endset %}{{ out | length }}{{ out }}" },
        { "{% filter trim %}", "{% endfilter %}" },
        { "{% macro w() %}", "{{ caller() }}{% endmacro %}{% call w() %}c{% endcall %}" },
        { "{{ (", ") | tojson }}" },
        { "{{ ", " }}" },
    };
    switch (below(11)) {
    case 0: /* a byte: printable, or any */
        if (b->len)
            b->data[below(b->len)] = below(4) ? (uint8_t)(0x20 + below(95)) : (uint8_t)rng();
        break;
    case 1:
    case 2:
    case 3: /* a fragment */
        insert_str(b, pick_pos(b), FRAGMENTS[below(G_N_ELEMENTS(FRAGMENTS))]);
        break;
    case 4: /* delete a span */
        erase(b, below(b->len + 1), 1 + below(below(2) ? 4 : 32));
        break;
    case 5: { /* duplicate a span */
        if (!b->len)
            break;
        size_t from = below(b->len), n = 1 + below(MIN(b->len - from, (size_t)64));
        uint8_t *copy = g_memdup2(b->data + from, n);
        insert(b, below(2) ? from + n : below(b->len + 1), copy, n);
        g_free(copy);
        break;
    }
    case 6: { /* crossover */
        const GByteArray *o = pool->pdata[below(pool->len)];
        if (!o->len)
            break;
        size_t from = below(o->len), n = 1 + below(MIN(o->len - from, (size_t)128));
        insert(b, pick_pos(b), o->data + from, n);
        break;
    }
    case 7: { /* replace a number with another */
        size_t start = below(b->len + 1);
        while (start < b->len && !g_ascii_isdigit(b->data[start]))
            start++;
        if (start >= b->len)
            break;
        size_t end = start;
        while (end < b->len && (g_ascii_isdigit(b->data[end]) || b->data[end] == '.' || b->data[end] == 'e'))
            end++;
        static const char *const nums[] = { "0", "1", "-1", "2", "31", "40", "63", "64", "1000", "100000",
                                            "1000000", "2147483648", "9223372036854775807", "1e20", "1e308",
                                            "0.5", "-0.0" };
        erase(b, start, end - start);
        insert_str(b, start, nums[below(G_N_ELEMENTS(nums))]);
        break;
    }
    case 8:
    case 9: { /* structure around a span */
        size_t a = pick_pos(b), c = pick_pos(b);
        if (a > c) {
            size_t t = a;
            a = c;
            c = t;
        }
        size_t k = below(G_N_ELEMENTS(WRAP));
        insert_str(b, c, WRAP[k][1]);
        insert_str(b, a, WRAP[k][0]);
        break;
    }
    default: /* truncate */
        if (b->len)
            g_byte_array_set_size(b, (guint)below(b->len));
        break;
    }
}

GByteArray *
fuzz_mutate(const GByteArray *base, GPtrArray *pool)
{
    GByteArray *b = g_byte_array_sized_new(base->len + 64);
    g_byte_array_append(b, base->data, base->len);
    int n = 1 + (int)below(below(4) ? 3 : 8);
    for (int i = 0; i < n; i++)
        mutate_once(b, pool);
    return b;
}
