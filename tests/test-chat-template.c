/* test-chat-template — the Jinja2-subset interpreter against transformers.
 *
 *   test-chat-template FIXTURE_DIR published
 *       every case of cases.json whose template is one of the published templates
 *       transcribed in FIXTURE_DIR (one .jinja file each), every snippet of snippets.json, and the
 *       unit and malformed-template tests below;
 *   test-chat-template FIXTURE_DIR assets
 *       the cases that use the chat_template of ../shared/assets/tokenizers/{llama3_1,
 *       qwen3} (SKIP when the assets are absent).
 *
 * Outputs must be byte-identical to what transformers rendered
 * (tests/reference/make_template_fixtures.py). Cases where transformers failed
 * must fail; when the template itself called raise_exception(), with exactly the
 * same message.
 */
#include <stdio.h>
#include <string.h>

#include <glib.h>
#include <json-glib/json-glib.h>

#include "chat-template.h"
#include "chat.h"
#include "hr-test.h"
#include "tokenizer.h"

/* The instant make_template_fixtures.py froze strftime_now() at. */
#define FIXED_NOW "2024-09-05T14:07:03"

static void
print_escaped(FILE *f, const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\n')
            fputs("\\n", f);
        else if (c == '\t')
            fputs("\\t", f);
        else if (c == '\r')
            fputs("\\r", f);
        else if (c < 0x20)
            fprintf(f, "\\x%02x", c);
        else
            fputc(c, f);
    }
}

/* Print where two renderings first differ, with some context. */
static void
print_mismatch(const char *name, const char *want, const char *got)
{
    size_t wl = strlen(want), gl = strlen(got), i = 0;
    while (i < wl && i < gl && want[i] == got[i])
        i++;
    size_t from = i > 60 ? i - 60 : 0;
    fprintf(stderr, "MISMATCH %s: first difference at byte %zu (expected %zu bytes, got %zu)\n", name, i, wl, gl);
    fputs("  expected: ...", stderr);
    print_escaped(stderr, want + from, MIN(wl, i + 80) - from);
    fputs("...\n  got:      ...", stderr);
    print_escaped(stderr, got + from, MIN(gl, i + 80) - from);
    fputs("...\n", stderr);
}

static char *
read_text(const char *path)
{
    char *text = NULL;
    g_autoptr(GError) error = NULL;
    if (!g_file_get_contents(path, &text, NULL, &error)) {
        fprintf(stderr, "cannot read %s: %s\n", path, error->message);
        return NULL;
    }
    return text;
}

/* A published template as transformers saw it: the .jinja file without its final newline. */
static char *
read_published(const char *dir, const char *name)
{
    g_autofree char *file = g_strdup_printf("%s.jinja", name);
    g_autofree char *path = g_build_filename(dir, file, NULL);
    char *text = read_text(path);
    size_t n = text ? strlen(text) : 0;
    if (n > 0 && text[n - 1] == '\n')
        text[n - 1] = '\0';
    return text;
}

static char *
read_asset_template(const char *name)
{
    g_autofree char *rel = g_strdup_printf("tokenizers/%s/tokenizer_config.json", name);
    g_autofree char *path = hr_test_asset(rel); /* exits 77 when absent */
    g_autoptr(JsonParser) parser = json_parser_new();
    g_autoptr(GError) error = NULL;
    if (!json_parser_load_from_file(parser, path, &error)) {
        fprintf(stderr, "%s: %s\n", path, error->message);
        return NULL;
    }
    JsonObject *o = json_node_get_object(json_parser_get_root(parser));
    return g_strdup(json_object_get_string_member(o, "chat_template"));
}

static const char *
opt_string(JsonObject *c, const char *member)
{
    JsonNode *n = json_object_get_member(c, member);
    return n && JSON_NODE_HOLDS_VALUE(n) ? json_node_get_string(n) : NULL;
}

typedef struct {
    int run, passed;
    HrChatTemplateUsage max; /* the most any case used of each budget */
    char max_name[3][128];   /* and which case */
    double max_share[3];     /* the largest fraction of its budget a case used */
} Counts;

/* Real templates must stay far inside the default budget: each case uses at
 * most 1/100 of each part of it. */
static void
note_usage(Counts *counts, const char *name, const HrChatTemplateUsage *u)
{
    const uint64_t used[3] = { u->steps, u->alloc_bytes, u->max_string_bytes };
    const uint64_t limit[3] = { u->limits.max_steps, u->limits.max_alloc_bytes, u->limits.max_string_bytes };
    uint64_t *max[3] = { &counts->max.steps, &counts->max.alloc_bytes, &counts->max.max_string_bytes };
    static const char *const what[3] = { "steps", "bytes allocated", "bytes in one string" };
    for (int i = 0; i < 3; i++) {
        if (used[i] > *max[i]) {
            *max[i] = used[i];
            g_strlcpy(counts->max_name[i], name, sizeof counts->max_name[i]);
        }
        double share = (double)used[i] / (double)limit[i];
        counts->max_share[i] = MAX(counts->max_share[i], share);
        HR_CHECK(used[i] * 100 <= limit[i], "%s: %" G_GUINT64_FORMAT " %s is more than 1/100 of the budget (%"
                 G_GUINT64_FORMAT ")", name, used[i], what[i], limit[i]);
    }
}

static void
print_usage(const char *what, const Counts *c)
{
    printf("%s: most used by one case: %" G_GUINT64_FORMAT " steps (%s), %" G_GUINT64_FORMAT
           " bytes allocated (%s), longest string %" G_GUINT64_FORMAT " bytes (%s); at most %.5f, %.5f, %.5f "
           "of the budget\n",
           what, c->max.steps, c->max_name[0], c->max.alloc_bytes, c->max_name[1], c->max.max_string_bytes,
           c->max_name[2], c->max_share[0], c->max_share[1], c->max_share[2]);
}

static void
run_case(JsonObject *c, const char *dir, bool assets, GHashTable *cache, Counts *counts)
{
    const char *name = json_object_get_string_member(c, "name");
    const char *tpl_name = opt_string(c, "template");
    const char *inline_src = opt_string(c, "source");
    bool is_asset = tpl_name && g_str_has_prefix(tpl_name, "asset:");
    if (is_asset != assets)
        return;
    char *source;
    if (inline_src) {
        source = g_strdup(inline_src);
    } else if (g_hash_table_contains(cache, tpl_name)) {
        source = g_strdup(g_hash_table_lookup(cache, tpl_name));
    } else {
        source = is_asset ? read_asset_template(tpl_name + 6) : read_published(dir, tpl_name);
        HR_CHECK(source != NULL, "%s: template %s not found", name, tpl_name);
        if (!source)
            return;
        g_hash_table_insert(cache, g_strdup(tpl_name), g_strdup(source));
    }
    counts->run++;

    HrError err = { 0 };
    HrChatTemplate *t = NULL;
    HrStatus st = hr_chat_template_new(source, &t, &err);
    g_free(source);
    const char *expected = opt_string(c, "expected");
    const char *expected_error = opt_string(c, "expected_error");
    const char *error_type = opt_string(c, "error_type");
    if (st != HR_OK) {
        /* jinja2 too may reject a template when compiling it (syntax, unknown filter) */
        bool ok = expected_error && error_type && strcmp(error_type, "TemplateError") != 0;
        if (ok)
            counts->passed++;
        HR_CHECK(ok, "%s: template did not parse: %s", name, err.message);
        return;
    }
    JsonNode *extra_node = json_object_get_member(c, "extra");
    JsonObject *extra = extra_node && JSON_NODE_HOLDS_OBJECT(extra_node) ? json_node_get_object(extra_node) : NULL;
    char *out = NULL;
    HrChatTemplateUsage usage;
    HrChatTemplateRenderOptions opts = { .usage = &usage };
    st = hr_chat_template_render_ex(t, json_object_get_member(c, "messages"),
                                    json_object_get_boolean_member(c, "add_generation_prompt"),
                                    opt_string(c, "bos_token"), opt_string(c, "eos_token"), extra, &opts, &out, &err);
    hr_chat_template_free(t);
    note_usage(counts, name, &usage);
    bool ok;
    if (expected) {
        ok = st == HR_OK && strcmp(out, expected) == 0;
        if (st != HR_OK)
            fprintf(stderr, "FAIL %s: render failed (%s): %s\n", name, hr_status_name(st), err.message);
        else if (!ok)
            print_mismatch(name, expected, out);
    } else {
        bool exact = error_type && strcmp(error_type, "TemplateError") == 0;
        ok = st != HR_OK && (!exact || strcmp(err.message, expected_error) == 0);
        if (st == HR_OK)
            fprintf(stderr, "FAIL %s: rendered although transformers failed with %s: %s\n", name, error_type,
                    expected_error);
        else if (!ok)
            fprintf(stderr, "FAIL %s: error message\n  expected: %s\n  got:      %s\n", name, expected_error,
                    err.message);
    }
    g_free(out);
    if (ok)
        counts->passed++;
    else
        hr_test_failures++;
}

static void
run_fixture_file(const char *dir, const char *file, bool assets, Counts *counts)
{
    g_autofree char *path = g_build_filename(dir, file, NULL);
    g_autoptr(JsonParser) parser = json_parser_new();
    g_autoptr(GError) error = NULL;
    if (!json_parser_load_from_file(parser, path, &error)) {
        HR_CHECK(false, "cannot load %s: %s", path, error->message);
        return;
    }
    JsonArray *cases = json_node_get_array(json_parser_get_root(parser));
    GHashTable *cache = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    for (guint i = 0; i < json_array_get_length(cases); i++)
        run_case(json_array_get_object_element(cases, i), dir, assets, cache, counts);
    g_hash_table_destroy(cache);
}

/* ------------------------------------------------------------------ unit tests */

static JsonNode *
json(const char *text)
{
    g_autoptr(JsonParser) parser = json_parser_new();
    if (!json_parser_load_from_data(parser, text, -1, NULL))
        return NULL;
    return json_node_copy(json_parser_get_root(parser));
}

/* Render source with messages (JSON text) and extra variables (JSON object text or NULL). */
static HrStatus
render(const char *source, const char *messages, const char *extra, char **out, HrError *err)
{
    HrChatTemplate *t = NULL;
    *out = NULL;
    HrStatus st = hr_chat_template_new(source, &t, err);
    if (st != HR_OK)
        return st;
    JsonNode *m = json(messages ? messages : "[]");
    JsonNode *x = extra ? json(extra) : NULL;
    st = hr_chat_template_render(t, m, true, "<s>", NULL, x ? json_node_get_object(x) : NULL, out, err);
    json_node_unref(m);
    if (x)
        json_node_unref(x);
    hr_chat_template_free(t);
    return st;
}

static void
expect_render(const char *source, const char *extra, const char *want)
{
    char *out = NULL;
    HrError err = { 0 };
    HrStatus st = render(source, NULL, extra, &out, &err);
    HR_CHECK(st == HR_OK && strcmp(out, want) == 0, "%s\n  want [%s]\n  got  [%s] %s", source, want,
             out ? out : "(none)", st == HR_OK ? "" : err.message);
    g_free(out);
}

/* A template that must fail — at parse or render time — with status st and a
 * message containing `needle`. Never a crash (the test runs under ASan). */
static void
expect_error(const char *full_source, HrStatus st, const char *needle)
{
    char *out = NULL;
    HrError err = { 0 };
    HrStatus got = render(full_source, "[{\"role\": \"user\", \"content\": \"hi\"}]", NULL, &out, &err);
    g_autofree char *source = g_strndup(full_source, 100); /* for the messages */
    HR_CHECK(got != HR_OK && out == NULL, "%s: should have failed, rendered [%s]", source, out ? out : "");
    HR_CHECK(got == HR_OK || err.message[0] != '\0', "%s: error without a message", source);
    if (st != HR_OK)
        HR_CHECK(got == st, "%s: status %s, want %s (%s)", source, hr_status_name(got), hr_status_name(st),
                 err.message);
    if (needle)
        HR_CHECK(strstr(err.message, needle) != NULL, "%s: message [%s] lacks [%s]", source, err.message, needle);
    g_free(out);
}

static HrStatus render_budget(const char *source, const HrChatTemplateLimits *lim, const atomic_int *cancel,
                              HrChatTemplateUsage *u, char **out, HrError *err);

static void
test_units(const char *dir)
{
    /* The built-in ChatML is the transcribed chatml.jinja. */
    g_autofree char *chatml = read_published(dir, "chatml");
    HR_CHECK(chatml && strcmp(chatml, hr_chat_template_chatml()) == 0, "hr_chat_template_chatml() differs from chatml.jinja");

    /* Variables: bos given, eos NULL -> undefined, extra overrides and adds. */
    expect_render("[{{ bos_token }}][{{ eos_token }}][{{ eos_token is defined }}][{{ tools }}][{{ add_generation_prompt }}]",
                  NULL, "[<s>][][False][None][True]");
    expect_render("{{ tools | length }} {{ enable_thinking }}", "{\"tools\": [1, 2], \"enable_thinking\": false}", "2 False");
    expect_render("{{ strftime_now('%d %b %Y') }}", NULL, "05 Sep 2024");
    expect_render("{% if date_string is not defined %}{{ strftime_now('%-d/%m/%y %H:%M') }}{% endif %}", NULL, "5/09/24 14:07");

    /* Expressions. */
    expect_render("{{ 'héllo wörld'[::-1] }}|{{ [1,2,3,4][-3:-1] }}|{{ 'abc'[5] }}|{{ [1][-2] is defined }}", NULL,
                  "dlröw olléh|[2, 3]||False");
    expect_render("{{ 7 // -2 }} {{ 7 % -2 }} {{ 2 ** 62 }} {{ 1e300 * 1e300 }} {{ 3 * 1.5 }} {{ 1 - true }}", NULL,
                  "-4 -1 4611686018427387904 inf 4.5 0");
    expect_render("{% for a, b in {'x': 1, 'y': 2}.items() if b > 1 %}{{ a }}{{ b }}{{ loop.length }}{% endfor %}", NULL,
                  "y21");
    expect_render("{% set ns = namespace(n=0) %}{% for i in range(5) %}{% set ns.n = ns.n + i %}{% endfor %}{{ ns.n }}",
                  NULL, "10");
    expect_render("{%- for i in [1, 2] -%}\n  {{ i }}\n{%- endfor %}\n!", NULL, "12!");
    expect_render("  {% if true %}\n  x\n  {% endif %}\n  y", NULL, "  x\n  y");
    expect_render("{{ u }}|{{ u is defined }}|{{ u | default('d') }}|{{ 'no' if u is not defined else u.x }}", NULL,
                  "|False|d|no");
    expect_render("{{ [{'a': 1}, {'a': 2}, {}] | selectattr('a', 'defined') | map(attribute='a') | join('+') }}", NULL, "1+2");
    expect_render("{{ {'k': [1, 'é', none]} | tojson(indent=1) }}", NULL, "{\n \"k\": [\n  1,\n  \"é\",\n  null\n ]\n}");
    expect_render("{{ \"a\\tb\" | tojson }} {{ 1.5e-7 | tojson }} {{ 10 / 4 }}", NULL, "\"a\\tb\" 1.5e-07 2.5");

    /* Line numbers and construct names in errors. */
    expect_error("line one\n{% if x %}\nno end", HR_ERR_FORMAT, "line 2: unclosed {% if %}");
    expect_error("{% for m in messages %}{{ m }}", HR_ERR_FORMAT, "expected {% endfor %} or {% else %}");
    expect_error("\n\n{{ x | nosuchfilter }}", HR_ERR_FORMAT, "line 3: unknown filter 'nosuchfilter'");
    expect_error("{{ x is nosuchtest }}", HR_ERR_FORMAT, "unknown test 'nosuchtest'");
    expect_error("{{ messages | groupby('role') }}", HR_ERR_UNSUPPORTED, "filter 'groupby'");
    expect_error("{% include 'other.jinja' %}", HR_ERR_UNSUPPORTED, "{% include %}");
    expect_error("{% extends 'base' %}", HR_ERR_UNSUPPORTED, "extends");
    expect_error("{% for x in y recursive %}{% endfor %}", HR_ERR_UNSUPPORTED, "recursive");
    expect_error("{% endif %}", HR_ERR_FORMAT, "unexpected {% endif %}");
    expect_error("{% frobnicate %}", HR_ERR_FORMAT, "unknown tag 'frobnicate'");
    expect_error("{% do x %}", HR_ERR_FORMAT, "unknown tag 'do'");
    expect_error("{% break %}", HR_ERR_FORMAT, "outside a loop");
    expect_error("{{ raise_exception('Only user and assistant roles are supported!') }}", HR_ERR_FORMAT,
                 "Only user and assistant roles are supported!");
    expect_error("{{ 'x'.zfill(3) }}", HR_ERR_UNSUPPORTED, "zfill");
    expect_error("{% set l = [] %}{{ l.append(1) }}", HR_ERR_FORMAT, "immutable sandbox");
    expect_error("{{ messages[0].role.missing.deeper }}", HR_ERR_FORMAT, "has no attribute 'missing'");
    expect_error("\n{{ nope.attr }}", HR_ERR_FORMAT, "line 2: 'nope' is undefined");
    expect_error("{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}", HR_ERR_UNSUPPORTED, "nested too deeply");
    expect_error("{{ 'ab' * 100000000000 }}", HR_ERR_UNSUPPORTED, "too large");
    /* nothing repeated many times is nothing, at once (it looped 2^62 times: a hang) */
    expect_render("{{ '' * 4611686018427387904 }}|{{ ([] * 4611686018427387904) | length }}|"
                  "{{ (() * 4611686018427387904) | length }}|{{ 2147483648 * '' }}", NULL, "|0|0|");
    expect_error("{{ range(100000000) | length }}", HR_ERR_UNSUPPORTED, "range");
    expect_error("{{ 9223372036854775807 + 1 }}", HR_ERR_UNSUPPORTED, "overflow");
    expect_error("{{ '%*d' % (1, 2) }}", HR_ERR_UNSUPPORTED, "format character");
    expect_error("{% if false %}{% for i in [] %}{{ i | nosuch }}{% endfor %}{% endif %}", HR_ERR_FORMAT,
                 "unknown filter 'nosuch'");
    expect_error("{% if true %}{{ 1 | nosuch }}{% endif %}", HR_ERR_FORMAT, "unknown filter 'nosuch'");
    expect_render("{% if false %}{{ 1 | nosuch }}{{ 1 is nosuch }}{% endif %}ok", NULL, "ok");
    expect_error("{{ 'x\\0' }}", HR_ERR_UNSUPPORTED, "NUL");

    /* API misuse. */
    HrError err = { 0 };
    HrChatTemplate *t = NULL;
    HR_CHECK(hr_chat_template_new(NULL, &t, &err) == HR_ERR_INVALID_ARG, "NULL source");
    HR_CHECK(hr_chat_template_new("{{ 1 }}", &t, &err) == HR_OK, "%s", err.message);
    char *out = NULL;
    JsonNode *obj = json("{\"role\": \"user\"}");
    HR_CHECK(hr_chat_template_render(t, obj, false, NULL, NULL, NULL, &out, &err) == HR_ERR_INVALID_ARG && !out,
             "messages that are not an array");
    json_node_unref(obj);
    hr_chat_template_free(t);
    hr_chat_template_free(NULL);
}

/* Malformed templates: each must be a clean error (parse or render), never a crash. */
static void
test_malformed(void)
{
    static const char *const bad[] = {
        "{{ x", "{{ x }", "{% if x %}", "{% if x", "{% if %}{% endif %}", "{% if x %}{% elif %}{% endif %}",
        "{% if x %}{% else %}{% else %}{% endif %}", "{% for %}{% endfor %}", "{% for x in %}{% endfor %}",
        "{% for x y %}{% endfor %}", "{% for x in y %}{% else %}{% else %}{% endfor %}", "{% endfor %}",
        "{% else %}", "{% set %}", "{% set x = %}", "{% set x %}unclosed", "{% set 1 = 2 %}", "{% set x.y.z = 1 %}",
        "{% macro %}{% endmacro %}", "{% macro m( %}{% endmacro %}", "{% macro m() %}", "{% call %}{% endcall %}",
        "{% call m %}{% endcall %}", "{% filter %}{% endfilter %}", "{% filter upper %}", "{% with %}", "{% raw %}x",
        "{% raw x %}{% endraw %}", "{# comment", "{{ 'abc }}", "{{ \"abc }}", "{{ '\\x4' }}", "{{ '\\N{DASH}' }}",
        "{{ 1 + }}", "{{ + }}", "{{ }}", "{% %}", "{{ (1, 2 }}", "{{ [1, 2 }}", "{{ {'a' 1} }}", "{{ {'a': } }}",
        "{{ a.b. }}", "{{ a. }}", "{{ a[ }}", "{{ a[1:2:3:4] }}", "{{ a[1, 2] }}", "{{ f(a=1, 2) }}", "{{ f(*x) }}",
        "{{ x | }}", "{{ x | 1 }}", "{{ x is }}", "{{ x is defined is defined }}", "{{ x if }}", "{{ x if y else }}",
        "{{ not }}", "{{ a < }}", "{{ a not }}", "{{ @ }}", "{{ $x }}", "{{ ) }}", "{{ ] }}", "{{ 'a' ~ }}",
        "{% if x %}}", "{{ 99999999999999999999999 }}", "{% for x in [1] %}{% continue %}{% endfor %}{% continue %}",
        "{% generation %}", "{% endgeneration %}", "{% block b %}{% endblock %}", "{% import 'x' as y %}",
        "\xff\xfe invalid utf-8", "{{ x }}{% endmacro %}", "{% macro m(a=) %}{% endmacro %}",
        "{{ 1 / 0 }}", "{{ 1 // 0 }}", "{{ 1.0 % 0 }}", "{% for x in 5 %}{% endfor %}", "{{ none | length }}",
        "{{ undefined_var + 1 }}", "{{ undefined_var() }}", "{{ 5() }}", "{{ messages | tojson(indent='x', separators=1) }}",
        "{{ [1, 'a'] | sort }}", "{{ [1] < ['a'] }}", "{{ {'a': 1} < {'b': 2} }}", "{{ 'a'[::0] }}",
        "{% set a, b = [1] %}", "{% set a, b = 5 %}", "{% set ns.x = 1 %}", "{% set d = {} %}{% set d.x = 1 %}",
        "{{ namespace(_x=1) }}", "{{ range() }}", "{{ range(1, 2, 0) }}", "{{ raise_exception() }}",
        "{{ strftime_now() }}", "{{ '{}'.format() }}", "{{ '{:>3}'.format(1) }}", "{{ 'a'.split('') }}",
        "{{ [1] | map | list }}", "{{ [1] | select('nosuchtest') | list }}", "{{ [1] | map('nosuchfilter') | list }}",
        "{{ loop.index }}", "{{ caller() }}", "{% macro m(a) %}{% endmacro %}{{ m(1, 2) }}",
        "{% macro m(a) %}{% endmacro %}{{ m(b=1) }}", "{{ messages[0].content.missing.x }}",
        "{{ (1).x.y }}", "{{ [1, 2] | last | tojson }}{{ x | tojson }}", "{{ [1] | selectattr | list }}",
        "{{ 2 ** -1 ** 0.5 ** 'a' }}",
        /* found by libFuzzer: sort failing after it had shifted items freed a key twice */
        "{{ [[0, 'a'], [1], [0, 5]] | sort }}", "{{ [[0, 'a'], [1], [0, 5]] | sort(reverse=true) }}",
    };
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        char *out = NULL;
        HrError err = { 0 };
        HrStatus st = render(bad[i], "[{\"role\": \"user\", \"content\": \"hi\"}]", NULL, &out, &err);
        HR_CHECK(st != HR_OK && out == NULL && err.message[0], "malformed template #%zu [%s] was accepted: [%s]", i,
                 bad[i], out ? out : "");
        g_free(out);
    }

    /* Deep nesting is an error, not a stack overflow. */
    GString *deep = g_string_new("{{ ");
    for (int i = 0; i < 5000; i++)
        g_string_append_c(deep, '(');
    g_string_append(deep, "1 }}");
    expect_error(deep->str, HR_ERR_UNSUPPORTED, NULL);
    g_string_assign(deep, "{{ ");
    for (int i = 0; i < 5000; i++)
        g_string_append(deep, "not ");
    g_string_append(deep, "1 }}");
    expect_error(deep->str, HR_ERR_UNSUPPORTED, NULL);
    g_string_assign(deep, "{{ ");
    for (int i = 0; i < 5000; i++)
        g_string_append(deep, "-");
    g_string_append(deep, "1 }}");
    expect_error(deep->str, HR_ERR_UNSUPPORTED, NULL);
    g_string_assign(deep, "");
    for (int i = 0; i < 2000; i++)
        g_string_append(deep, "{% if true %}");
    expect_error(deep->str, HR_ERR_UNSUPPORTED, "nested too deeply");
    g_string_assign(deep, "{{ 1");
    for (int i = 0; i < 100000; i++)
        g_string_append(deep, " + 1");
    g_string_append(deep, " }}");
    expect_error(deep->str, HR_ERR_UNSUPPORTED, "nested too deeply");
    g_string_assign(deep, "{{ x");
    for (int i = 0; i < 100000; i++)
        g_string_append(deep, ".a");
    g_string_append(deep, " }}");
    expect_error(deep->str, HR_ERR_UNSUPPORTED, "nested too deeply");
    /* A template building a deeply nested value: freeing, printing, comparing it stays safe. */
    char *out = NULL;
    HrError err = { 0 };
    HrChatTemplateLimits big = { .max_steps = 10000000, .max_alloc_bytes = 1u << 30, .max_string_bytes = 1u << 20 };
    HrChatTemplateUsage usage;
    HrStatus rst = render_budget("{% set ns = namespace(x=[]) %}{% for i in range(200000) %}{% set ns.x = [ns.x] %}"
                                 "{% endfor %}{{ (ns.x | string)[:12] }}|{{ ns.x == ns.x }}|{{ ns.x | length }}",
                                 &big, NULL, &usage, &out, &err);
    HR_CHECK(rst == HR_OK && g_str_has_prefix(out, "[[[[[[[[[[[[|True|1"), "deep value: %s", out ? out : err.message);
    g_free(out);
    /* The worst nesting the limits allow, together: recursion through macros, blocks and expressions. */
    g_string_assign(deep, "{% macro m(n) %}");
    for (int i = 0; i < 99; i++)
        g_string_append(deep, "{% if true %}");
    g_string_append(deep, "{{ m(n - 1) if n > 0 else (");
    for (int i = 0; i < 250; i++)
        g_string_append(deep, "(");
    g_string_append(deep, "1");
    for (int i = 0; i < 250; i++)
        g_string_append(deep, ")");
    g_string_append(deep, ") }}");
    for (int i = 0; i < 99; i++)
        g_string_append(deep, "{% endif %}");
    g_string_append(deep, "{% endmacro %}{{ m(100) }}");
    expect_error(deep->str, HR_ERR_UNSUPPORTED, "nested too deeply");
    JsonNode *nested = json_node_new(JSON_NODE_ARRAY);
    json_node_take_array(nested, json_array_new());
    for (int i = 0; i < 1000; i++) {
        JsonArray *a = json_array_new();
        json_array_add_element(a, nested);
        nested = json_node_new(JSON_NODE_ARRAY);
        json_node_take_array(nested, a);
    }
    HrChatTemplate *t = NULL;
    HR_CHECK(hr_chat_template_new("{{ messages }}", &t, &err) == HR_OK, "%s", err.message);
    HR_CHECK(hr_chat_template_render(t, nested, false, NULL, NULL, NULL, &out, &err) == HR_ERR_INVALID_ARG,
             "deeply nested messages should be refused");
    hr_chat_template_free(t);
    json_node_unref(nested);
    g_string_free(deep, TRUE);

    /* Every prefix of a real template: errors or renders, never crashes. */
    static const char tpl[] =
        "{%- set ns = namespace(i=0) %}{% for m in messages[::-1] if m.role != 'x' %}{{- '<|' ~ m['role'] ~ "
        "'|>\\n' + m.content | trim }}{% set ns.i = loop.index %}{% else %}{# none #}{% endfor -%}"
        "{% raw %}{{x}}{% endraw %}{{ ns.i is defined and [1, 2][1:] | tojson(indent=2) }}";
    for (size_t n = 0; n <= sizeof tpl - 1; n++) {
        char *src = g_strndup(tpl, n);
        char *pout = NULL;
        HrError perr = { 0 };
        HrStatus pst = render(src, "[{\"role\": \"user\", \"content\": \" hi \"}]", NULL, &pout, &perr);
        HR_CHECK(pst == HR_OK || (pout == NULL && perr.message[0]), "prefix %zu: status %d without a message", n, pst);
        g_free(pout);
        g_free(src);
    }
}

/* ------------------------------------------------------------------ hostile templates (issue 24)
 *
 * A chat template comes with a downloaded model. Each class of attack must end
 * in a clear error, quickly: the bounds are the render's budget (its steps,
 * bytes allocated, string length), never a clock. Under ASan each of these
 * takes well under a second. */

/* Render with the default budget (NULL limits) or the given one; returns the
 * status, the usage in *u, the message in err. */
static HrStatus
render_budget(const char *source, const HrChatTemplateLimits *lim, const atomic_int *cancel, HrChatTemplateUsage *u,
              char **out, HrError *err)
{
    HrChatTemplate *t = NULL;
    *out = NULL;
    HrStatus st = hr_chat_template_new(source, &t, err);
    if (st != HR_OK)
        return st;
    JsonNode *m = json("[{\"role\": \"user\", \"content\": \"hi\"}]");
    HrChatTemplateRenderOptions opts = { .limits = lim, .cancel = cancel, .usage = u };
    st = hr_chat_template_render_ex(t, m, true, "<s>", NULL, NULL, &opts, out, err);
    json_node_unref(m);
    hr_chat_template_free(t);
    return st;
}

/* source must fail with status st and a message containing needle, having
 * used no more than its budget allows (the default one when lim is NULL). */
static void
expect_budget_error(const char *source, const HrChatTemplateLimits *lim, HrStatus st, const char *needle)
{
    char *out = NULL;
    HrError err = { 0 };
    HrChatTemplateUsage u = { 0 };
    gint64 t0 = g_get_monotonic_time();
    HrStatus got = render_budget(source, lim, NULL, &u, &out, &err);
    g_autofree char *shown = g_strndup(source, 90);
    if (g_getenv("HR_TEST_TIMES"))
        fprintf(stderr, "%.3f s %s\n", (double)(g_get_monotonic_time() - t0) / 1e6, shown);
    if (st == HR_OK) { /* either budget: steps/allocations, or a string too long */
        HR_CHECK((got == HR_ERR_FORMAT && strstr(err.message, "exceeded its budget of")) ||
                     (got == HR_ERR_UNSUPPORTED && strstr(err.message, "too large")),
                 "%s: %s (%s)", shown, hr_status_name(got), got == HR_OK ? "rendered" : err.message);
    } else {
        HR_CHECK(got == st && out == NULL, "%s: status %s, want %s (%s)", shown, hr_status_name(got),
                 hr_status_name(st), got == HR_OK ? "rendered" : err.message);
        HR_CHECK(got == HR_OK || strstr(err.message, needle), "%s: message [%s] lacks [%s]", shown, err.message,
                 needle);
    }
    /* stopped at the budget: past it by one operation at most (a long scan is
     * charged at once, a step per 64 bytes) */
    HR_CHECK(u.steps <= u.limits.max_steps + u.limits.max_string_bytes / 64 + 2 && u.limits.max_steps > 0,
             "%s: %" G_GUINT64_FORMAT " steps of %" G_GUINT64_FORMAT, shown, u.steps, u.limits.max_steps);
    HR_CHECK(u.alloc_bytes <= u.limits.max_alloc_bytes + 2 * u.limits.max_string_bytes,
             "%s: %" G_GUINT64_FORMAT " bytes allocated of %" G_GUINT64_FORMAT, shown, u.alloc_bytes,
             u.limits.max_alloc_bytes);
    g_free(out);
}

static void
test_hostile(void)
{
    const HrStatus F = HR_ERR_FORMAT, U = HR_ERR_UNSUPPORTED;
    /* 1. Time: loops, macro fan-out, and values that share their parts (a DAG
     * of 2^40 nodes made by doubling), printed, compared, serialised. */
    expect_budget_error("{% for i in range(1000) %}{% for j in range(1000) %}{% for k in range(1000) %}"
                        "{% endfor %}{% endfor %}{% endfor %}", NULL, F, "exceeded its budget of");
    expect_budget_error("{% macro f(n) %}{% if n > 0 %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(31) }}",
                        NULL, F, "steps (an endless or exponential loop?)");
    expect_budget_error("line 1\n{% macro f(n) %}{% if n > 0 %}{% for i in range(9) %}{{ f(n - 1) }}{% endfor %}"
                        "{% endif %}{% endmacro %}\n{{ f(20) }}", NULL, F, "line 2: chat template exceeded its budget of");
    static const char *const dag_uses[] = {
        "{{ ns.a }}", "{{ ns.a == ns.b }}", "{{ ns.a != ns.b }}", "{{ ns.a | tojson }}", "{{ ns.a < ns.b }}",
        "{{ ns.a | string | length }}", "{{ ns.a in [ns.b] }}", "{{ [ns.b, ns.a] | sort | length }}",
        "{{ [ns.a] | map('tojson') | list }}", "{{ '%s' % [ns.a] }}", "{{ '{}'.format(ns.a) }}",
        "{{ [ns.b, ns.a].count(ns.a) }}", "{{ ns.a | join }}", "{{ [ns.b].index(ns.a) }}",
    };
    for (size_t i = 0; i < G_N_ELEMENTS(dag_uses); i++) {
        g_autofree char *src = g_strdup_printf("{%% set ns = namespace(a=[1], b=[1]) %%}{%% for i in range(40) %%}"
                                               "{%% set ns.a = [ns.a, ns.a] %%}{%% set ns.b = [ns.b, ns.b] %%}"
                                               "{%% endfor %%}%s", dag_uses[i]);
        char *out = NULL;
        HrError err = { 0 };
        HrChatTemplateUsage u = { 0 };
        HrStatus st = render_budget(src, NULL, NULL, &u, &out, &err);
        /* too many steps, or (printing) a string too long: either way an error */
        HR_CHECK((st == F && strstr(err.message, "steps")) || (st == U && strstr(err.message, "too large")),
                 "DAG %s: %s %s", dag_uses[i], hr_status_name(st), st == HR_OK ? "rendered" : err.message);
        HR_CHECK(u.steps <= u.limits.max_steps + 1, "DAG %s: %" G_GUINT64_FORMAT " steps", dag_uses[i], u.steps);
        g_free(out);
    }

    /* 2. Memory: strings and lists that double, repetition, replace, join,
     * format, indent, iteration over a long string. */
    const HrStatus EITHER = HR_OK;
    expect_budget_error("{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s + ns.s %}{% endfor %}",
                        NULL, EITHER, NULL);
    expect_budget_error("{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
                        NULL, EITHER, NULL);
    expect_budget_error("{% set ns = namespace(l=[1]) %}{% for i in range(64) %}{% set ns.l = ns.l + ns.l %}{% endfor %}",
                        NULL, F, "MiB of allocations");
    expect_budget_error("{% set ns = namespace(l=[]) %}{% for i in range(100000) %}{% set ns.l = ns.l + [i] %}{% endfor %}",
                        NULL, F, "exceeded its budget of");
    expect_budget_error("{{ ('x' * 1000000) | replace('x', 'y' * 1000) }}", NULL, U, "too large");
    expect_budget_error("{{ ('x' * 1000000).replace('', 'y' * 1000) }}", NULL, U, "too large");
    expect_budget_error("{{ (['x' * 1000000] * 1000) | join(',') }}", NULL, U, "too large");
    expect_budget_error("{{ ','.join(['x' * 1000000] * 1000) }}", NULL, U, "too large");
    expect_budget_error("{{ ('%s' * 1000) % ((['x' * 1000000] * 1000) | list | tuple if false else ('x' * 100000,) * 1000) }}",
                        NULL, U, "too large");
    expect_budget_error("{{ ('{0}' * 1000).format('x' * 1000000) }}", NULL, U, "too large");
    expect_budget_error("{{ ('x\n' * 1000000) | indent(1000) }}", NULL, U, "too large");
    expect_budget_error("{{ [[[[[[1]]]]]] | tojson(indent='x' * 20000000) }}", NULL, U, "too large");
    expect_budget_error("{{ strftime_now('%c' * 10000000) }}", NULL, EITHER, NULL);
    expect_budget_error("{% for c in 'x' * 3000000 %}{% endfor %}", NULL, F, "exceeded its budget of");
    expect_budget_error("{% for i in range(1000000) %}{% set x = range(1000000) %}{% endfor %}", NULL, F,
                        "exceeded its budget of");
    /* long scans: each is charged by the bytes it reads */
    expect_budget_error("{% set s = 'a' * 20000000 %}{% for i in range(100000) %}{% if 'zz' in s %}{% endif %}{% endfor %}",
                        NULL, F, "exceeded its budget of");
    expect_budget_error("{% set s = 'a' * 10000000 %}{{ s.rsplit('a' * 5000000 + 'b') | length }}", NULL, F,
                        "exceeded its budget of");
    expect_budget_error("{% set s = 'a' * 10000000 %}{{ s.split('a' * 5000000 + 'b') | length }}", NULL, F,
                        "exceeded its budget of");
    expect_budget_error("{% set s = 'a' * 20000000 %}{% for i in range(1000) %}{{ s[5] }}{{ s[-1:] }}{% endfor %}", NULL,
                        F, "exceeded its budget of");
    expect_budget_error("{% set s = 'a' * 20000000 %}{% for i in range(1000) %}{{ s.rfind('b') }}{% endfor %}", NULL, F,
                        "exceeded its budget of");
    /* a smaller budget, given by the caller */
    HrChatTemplateLimits small = { .max_steps = 1000, .max_alloc_bytes = 1 << 20, .max_string_bytes = 1 << 16 };
    expect_budget_error("{% for i in range(100) %}{% for j in range(100) %}{% endfor %}{% endfor %}", &small, F,
                        "budget of 1000 steps");
    expect_budget_error("{{ 'x' * 70000 }}", &small, U, "too large");
    expect_budget_error("{{ ['x'] * 200000 }}", &small, F, "budget of 1 MiB of allocations");
    char *out = NULL;
    HrError err = { 0 };
    HrChatTemplateUsage u;
    HR_CHECK(render_budget("{% for i in range(10) %}{{ i }}{% endfor %}", &small, NULL, &u, &out, &err) == HR_OK &&
                 strcmp(out, "0123456789") == 0 && u.steps > 10 && u.steps < 1000 && u.alloc_bytes > 0 &&
                 u.max_string_bytes == 10,
             "small budget, small template: %s", out ? out : err.message);
    g_free(out);

    /* 3. Float to int: Python's answers where it has one, else a clear error; never undefined behaviour. */
    expect_render("{{ '%d' % 1e20 }} {{ '%d' % -0.5 }} {{ ('%i' % -1e300) | length }} {{ '%5d|%-4d|' % (2.9, -2.9) }}",
                  NULL, "100000000000000000000 0 302     2|-2  |");
    expect_render("{{ 1 ** 9223372036854775807 }} {{ (-1) ** 9223372036854775807 }} {{ 0 ** 9223372036854775807 }}",
                  NULL, "1 -1 0");
    expect_render("{{ 'nan' | float | int }} {{ 'x' | int(7) }} {{ -9.9 | int }} {{ '1e3' | int }}", NULL, "0 7 -9 1000");
    expect_error("{{ '%x' % 1e20 }}", HR_ERR_FORMAT, "%x format: an integer is required, not float");
    expect_error("{{ '%o' % 1.5 }}", HR_ERR_FORMAT, "an integer is required");
    expect_error("{{ '%d' % (1e308 * 10) }}", HR_ERR_FORMAT, "cannot convert float infinity to integer");
    expect_error("{{ '%d' % ((1e308 * 10) - (1e308 * 10)) }}", HR_ERR_FORMAT, "NaN");
    expect_error("{{ '%c' % 1e20 }}", HR_ERR_FORMAT, "%c requires an int");
    expect_render("{{ '%c%c' % (55296, 233) }}", NULL, "\xef\xbf\xbd\xc3\xa9"); /* output stays UTF-8 */
    expect_error("{{ 1e20 | int }}", HR_ERR_UNSUPPORTED, "integer overflow");
    expect_error("{{ '-1e19' | int }}", HR_ERR_UNSUPPORTED, "integer overflow");
    expect_error("{{ 'inf' | float | int }}", HR_ERR_FORMAT, "infinity");
    expect_error("{{ range(1e20) }}", HR_ERR_FORMAT, "expected an integer");
    expect_error("{{ [1, 2][1e20:] }}", HR_ERR_FORMAT, "slice indices must be integers");
    expect_render("{{ [1, 2][1e20] is defined }} {{ 'ab'[-1e20] is defined }}", NULL, "False False");

    /* 4. Reference cycles through namespaces are broken at the end of the
     * render (LeakSanitizer checks this test's exit). */
    expect_render("{% set ns = namespace(a=1) %}{% set ns.me = ns %}{{ ns.me.me.a }}", NULL, "1");
    expect_render("{% set ns = namespace() %}{% set ns.d = dict(x=ns, l=[ns, [ns]]) %}{{ ns.d.l | length }}", NULL, "2");
    expect_render("{% set ns = namespace() %}{% set ns.f = dict(n=ns).items %}{{ ns.f() | length }}", NULL, "1");
    expect_render("{% set a = namespace() %}{% set b = namespace(a=a) %}{% set a.b = b %}"
                  "{% for i in range(3) %}{% set c = namespace(a=a) %}{% set a.c = c %}{% endfor %}ok", NULL, "ok");
    expect_error("{% set ns = namespace() %}{% set ns.me = ns %}{{ ns | tojson }}", HR_ERR_FORMAT, "not JSON serializable");
    expect_render("{% set ns = namespace(x=1) %}{% set ns.me = ns %}{{ (ns | string)[:14] }}", NULL, "<Namespace {'x");
}

/* Cancel: a flag set before the render, or by another thread during it. */
typedef struct {
    atomic_int *flag;
    atomic_int *started;
} CancelArgs;

static gpointer
cancel_soon(gpointer p)
{
    CancelArgs *a = p;
    while (!atomic_load(a->started))
        g_usleep(1000);
    g_usleep(20000);
    atomic_store(a->flag, 1);
    return NULL;
}

static void
test_cancel(void)
{
    atomic_int flag = 1;
    char *out = NULL;
    HrError err = { 0 };
    HrChatTemplateUsage u;
    HrStatus st = render_budget("{{ 'short' }}", NULL, &flag, &u, &out, &err);
    HR_CHECK(st == HR_ERR_CANCELLED && out == NULL && strstr(err.message, "cancelled"), "cancel before: %s %s",
             hr_status_name(st), st == HR_OK ? out : err.message);
    g_free(out);

    /* set during an endless render (a budget too big to end it): the flag ends it */
    atomic_store(&flag, 0);
    atomic_int started = 0;
    CancelArgs args = { &flag, &started };
    HrChatTemplateLimits huge = { .max_steps = UINT64_MAX / 2, .max_alloc_bytes = UINT64_MAX / 2,
                                  .max_string_bytes = 1 << 20 };
    HrChatTemplate *t = NULL;
    HR_CHECK(hr_chat_template_new("{% for i in range(1000000) %}{% for j in range(1000000) %}{% endfor %}{% endfor %}",
                                  &t, &err) == HR_OK, "%s", err.message);
    hr_chat_template_set_cancel(t, &flag);
    GThread *th = g_thread_new("cancel", cancel_soon, &args);
    JsonNode *m = json("[]");
    HrChatTemplateRenderOptions opts = { .limits = &huge };
    atomic_store(&started, 1);
    st = hr_chat_template_render_ex(t, m, false, NULL, NULL, NULL, &opts, &out, &err);
    g_thread_join(th);
    HR_CHECK(st == HR_ERR_CANCELLED && out == NULL && strstr(err.message, "cancelled"), "cancel during: %s %s",
             hr_status_name(st), st == HR_OK ? "rendered" : err.message);
    /* the plain render honours hr_chat_template_set_cancel too */
    st = hr_chat_template_render(t, m, false, NULL, NULL, NULL, &out, &err);
    HR_CHECK(st == HR_ERR_CANCELLED && out == NULL, "set_cancel: %s", hr_status_name(st));
    json_node_unref(m);
    hr_chat_template_free(t);
}

/* Every template, given a long conversation (with tools), stays under 1/100
 * of its default budget: the budget grows with the input, as real renders do. */
static void
test_long_conversations(const char *dir)
{
    static const char *const names[] = {
        "chatml", "llama-2-chat", "llama-3.1-instruct", "llama-3.2-instruct", "mistral-7b-instruct-v0.2",
        "phi-3-mini-instruct", "smollm2-instruct", "zephyr",
    };
    static const int sizes[][2] = { { 400, 10 }, { 100, 4000 }, { 4, 200000 } }; /* messages x bytes of content */
    Counts counts = { 0 };
    for (size_t k = 0; k < G_N_ELEMENTS(sizes); k++) {
        gint64 t0 = g_get_monotonic_time();
        GString *content = g_string_new(NULL);
        while ((int)content->len < sizes[k][1])
            g_string_append(content, "Lorem ipsum dolor sit amet, {consectetur} \\\"adipiscing\\n\\u00e9lit.\\n");
        GString *j = g_string_new("[{\"role\": \"system\", \"content\": \"You are helpful.\"}");
        for (int i = 0; i < sizes[k][0]; i++)
            g_string_append_printf(j, ", {\"role\": \"%s\", \"content\": \"%s\"}", i % 2 ? "assistant" : "user",
                                   content->str);
        g_string_append(j, "]");
        JsonNode *m = json(j->str);
        JsonNode *x = json("{\"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", "
                           "\"description\": \"Get the weather\", \"parameters\": {\"type\": \"object\", "
                           "\"properties\": {\"city\": {\"type\": \"string\"}}, \"required\": [\"city\"]}}}]}");
        HR_CHECK(m && x, "long conversation JSON");
        for (size_t i = 0; i < G_N_ELEMENTS(names) && m && x; i++) {
            g_autofree char *src = read_published(dir, names[i]);
            HrChatTemplate *t = NULL;
            HrError err = { 0 };
            char *out = NULL;
            HrChatTemplateUsage u;
            HrChatTemplateRenderOptions opts = { .usage = &u };
            HR_CHECK(src && hr_chat_template_new(src, &t, &err) == HR_OK, "%s", names[i]);
            HrStatus st = hr_chat_template_render_ex(t, m, true, "<s>", "</s>", json_node_get_object(x), &opts, &out, &err);
            g_autofree char *name = g_strdup_printf("%s x %d messages of %d bytes", names[i], sizes[k][0], sizes[k][1]);
            HR_CHECK(st == HR_OK, "%s: %s", name, err.message);
            note_usage(&counts, name, &u);
            g_free(out);
            hr_chat_template_free(t);
        }
        json_node_unref(m);
        json_node_unref(x);
        g_string_free(j, TRUE);
        g_string_free(content, TRUE);
        if (g_getenv("HR_TEST_TIMES"))
            fprintf(stderr, "%.3f s long conversation %zu\n", (double)(g_get_monotonic_time() - t0) / 1e6, k);
    }
    print_usage("long conversations", &counts);
}

/* The engine's render (chat.c) hands a template variables of its own: Qwen3's enable_thinking = false (the
 * window's "Think Before Answering" off) ends the prompt with an empty thinking block, as transformers'
 * apply_chat_template(..., enable_thinking=False) does; without it, the assistant's header alone. */
static void
test_qwen3_no_thinking(void)
{
    g_autofree char *cfg = hr_test_asset("tokenizers/qwen3/tokenizer_config.json");
    g_autofree char *dir = g_path_get_dirname(cfg);
    HrTokenizer *tok = NULL;
    HrError err = { 0 };
    if (hr_tokenizer_load(dir, &tok, &err) != HR_OK) {
        HR_CHECK(false, "qwen3 tokenizer: %s", err.message);
        return;
    }
    JsonNode *msgs = hr_chat_messages_new(NULL, "What is 2+2?");
    JsonObject *extra = json_object_new();
    json_object_set_boolean_member(extra, "enable_thinking", FALSE);
    char *on = NULL, *off = NULL;
    bool fell_back = true;
    HR_CHECK(hr_chat_render_extra(tok, msgs, true, NULL, NULL, &on, NULL, NULL, &fell_back, NULL, &err) == HR_OK &&
                 !fell_back,
             "render: %s", err.message);
    HR_CHECK(hr_chat_render_extra(tok, msgs, true, extra, NULL, &off, NULL, NULL, &fell_back, NULL, &err) == HR_OK &&
                 !fell_back,
             "render without thinking: %s", err.message);
    const char *want_on = "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n";
    HR_CHECK(on && strcmp(on, want_on) == 0, "qwen3 prompt: %s", on ? on : "(none)");
    g_autofree char *want_off = g_strconcat(want_on, "<think>\n\n</think>\n\n", NULL);
    HR_CHECK(off && strcmp(off, want_off) == 0, "qwen3 prompt without thinking: %s", off ? off : "(none)");
    printf("qwen3: enable_thinking false through hr_chat_render_extra\n");
    g_free(on);
    g_free(off);
    json_object_unref(extra);
    json_node_unref(msgs);
    hr_tokenizer_free(tok);
}

int
main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s FIXTURE_DIR published|assets\n", argv[0]);
        return 2;
    }
    g_setenv("HEARTH_TEMPLATE_NOW", FIXED_NOW, TRUE);
    const char *dir = argv[1];
    bool assets = strcmp(argv[2], "assets") == 0;
    Counts cases = { 0 }, snippets = { 0 };
    if (assets) {
        g_free(hr_test_asset("tokenizers/llama3_1/tokenizer_config.json"));
        g_free(hr_test_asset("tokenizers/qwen3/tokenizer_config.json"));
        run_fixture_file(dir, "cases.json", true, &cases);
        printf("asset templates: %d/%d cases identical to transformers\n", cases.passed, cases.run);
        HR_CHECK(cases.run > 0, "no asset cases found");
        print_usage("asset templates", &cases);
        test_qwen3_no_thinking();
        return hr_test_result();
    }
    run_fixture_file(dir, "cases.json", false, &cases);
    run_fixture_file(dir, "snippets.json", false, &snippets);
    printf("published templates: %d/%d cases identical to transformers\n", cases.passed, cases.run);
    printf("snippets: %d/%d identical to transformers\n", snippets.passed, snippets.run);
    HR_CHECK(cases.run > 0 && snippets.run > 0, "no fixture cases found");
    print_usage("published templates", &cases);
    print_usage("snippets", &snippets);
    test_units(dir);
    test_malformed();
    test_hostile();
    test_cancel();
    test_long_conversations(dir);
    return hr_test_result();
}
