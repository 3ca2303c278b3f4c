/* fuzz-gguf.c — libFuzzer entry point for the GGUF reader and its metadata
 * conversion.
 *
 * Built two ways: by tools/fuzz-gguf with clang -fsanitize=fuzzer
 * (coverage-guided, open-ended, with the GGUF-aware custom mutator), and by
 * meson into tests/fuzz/fuzz-driver.c, which replays the corpus and runs a
 * bounded deterministic mutation loop under the project's sanitizers (the
 * `gguf-fuzz` test).
 *
 * Besides not crashing, it checks what the reader promises: a failure comes
 * with a message (and *out NULL); on success every tensor has 1..4
 * dimensions each >= 1 (unused ones 1), a known type with ne[0] a multiple of
 * its block, n_bytes = numel / block x block bytes, its bytes inside the
 * input at an offset that is a multiple of the alignment, no two tensors
 * overlap, and find() returns each by name; every key's getters agree with
 * its type. Then the metadata conversion runs: its texts, when it succeeds,
 * must be strict JSON (hr_json_load); the config goes through
 * hr_model_config_parse and the tokenizer through hr_tokenizer_load_from_data,
 * which then encodes and decodes a short text.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "fuzz-gguf.h"
#include "gguf.h"
#include "hr-json.h"
#include "model-config.h"
#include "tokenizer.h"

int fuzz_gguf_last_ok;

static volatile uint8_t sink;

static void G_GNUC_NORETURN
fail(const char *what, const char *name)
{
    fprintf(stderr, "fuzz-gguf: %s (%s)\n", what, name ? name : "");
    abort();
}

static void
check_failure(HrStatus s, const HrError *err, const char *what)
{
    if (err->status != s || err->message[0] == '\0' || strlen(err->message) >= sizeof err->message)
        fail("failure without a message", what);
}

typedef struct {
    const uint8_t *begin, *end;
    const char *name;
} Span;

static int
span_cmp(const void *a, const void *b)
{
    const Span *x = a, *y = b;
    return x->begin < y->begin ? -1 : x->begin > y->begin;
}

static void
check_tensors(const HrGguf *g, const uint8_t *data, size_t size)
{
    size_t n = hr_gguf_n_tensors(g), align = hr_gguf_alignment(g);
    if (align < 8 || align > HR_GGUF_MAX_ALIGNMENT || (align & (align - 1)))
        fail("bad alignment", NULL);
    Span *spans = g_new(Span, n ? n : 1);
    for (size_t i = 0; i < n; i++) {
        const HrGgufTensor *t = hr_gguf_tensor(g, i);
        if (!t || !t->name || !t->name[0])
            fail("tensor without a name", NULL);
        if (t->n_dims < 1 || t->n_dims > HR_GGUF_MAX_DIMS)
            fail("bad n_dims", t->name);
        for (int d = 0; d < HR_GGUF_MAX_DIMS; d++)
            if (t->ne[d] < 1 || (d >= t->n_dims && t->ne[d] != 1))
                fail("bad ne", t->name);
        int block;
        size_t bytes;
        if (!hr_ggml_type_block(t->type, &block, &bytes) || !hr_ggml_type_name(t->type))
            fail("unknown type accepted", t->name);
        int64_t numel = hr_gguf_tensor_numel(t);
        if (numel < 1 || numel > HR_GGUF_MAX_ELEMENTS || t->ne[0] % block)
            fail("bad numel", t->name);
        if ((uint64_t)numel / (uint64_t)block * bytes != t->n_bytes)
            fail("n_bytes != numel / block x block bytes", t->name);
        const uint8_t *p = t->data;
        if (p < data || p > data + size || t->n_bytes > (size_t)(data + size - p))
            fail("data outside the input", t->name);
        if ((size_t)(p - data) % align)
            fail("data not aligned", t->name);
        sink ^= p[0] ^ p[t->n_bytes - 1];
        if (hr_gguf_find(g, t->name) != t)
            fail("find() does not return the tensor", t->name);
        spans[i] = (Span){ p, p + t->n_bytes, t->name };
    }
    if (hr_gguf_tensor(g, n))
        fail("tensor past the end", NULL);
    qsort(spans, n, sizeof *spans, span_cmp);
    for (size_t i = 1; i < n; i++)
        if (spans[i].begin < spans[i - 1].end)
            fail("tensors overlap", spans[i].name);
    g_free(spans);
}

static void
check_keys(const HrGguf *g)
{
    size_t n = hr_gguf_n_keys(g);
    for (size_t i = 0; i < n; i++) {
        const char *key = hr_gguf_key(g, i);
        HrGgufValueType t;
        if (!key || !hr_gguf_get_type(g, key, &t))
            fail("key without a type", key);
        int64_t iv;
        double dv;
        bool bv;
        const char *s;
        size_t count;
        HrGgufValueType et;
        bool is_int = hr_gguf_get_int(g, key, &iv), is_float = hr_gguf_get_float(g, key, &dv);
        bool is_bool = hr_gguf_get_bool(g, key, &bv), is_str = hr_gguf_get_str(g, key, &s);
        bool is_array = hr_gguf_get_array(g, key, &et, &count);
        if (is_bool != (t == HR_GGUF_BOOL) || is_str != (t == HR_GGUF_STRING) || is_array != (t == HR_GGUF_ARRAY))
            fail("getters disagree with the type", key);
        if ((is_int && (t == HR_GGUF_F32 || t == HR_GGUF_F64)) || (is_float && is_str))
            fail("a getter accepted another type", key);
        if (is_str)
            sink ^= (uint8_t)strlen(s);
        if (!is_array)
            continue;
        if (et == HR_GGUF_ARRAY)
            fail("nested array", key);
        for (size_t k = 0; k < count && k < 64; k++) {
            size_t len;
            const char *e = hr_gguf_array_str(g, key, k, &len);
            if ((e != NULL) != (et == HR_GGUF_STRING))
                fail("array_str disagrees with the element type", key);
            if (e && e[len] != '\0')
                fail("array string not NUL-terminated", key);
            if (hr_gguf_array_int(g, key, k, &iv))
                sink ^= (uint8_t)iv;
            if (hr_gguf_array_float(g, key, k, &dv))
                sink ^= (uint8_t)(dv == dv);
        }
        if (hr_gguf_array_str(g, key, count, NULL) || hr_gguf_array_int(g, key, count, &iv))
            fail("array element past the end", key);
    }
    if (hr_gguf_key(g, n))
        fail("key past the end", NULL);
}

static void
check_json(const char *text, const char *what)
{
    if (!text)
        fail("NULL text on success", what);
    HrError err = { 0 };
    JsonParser *p = hr_json_load(text, strlen(text), true, what, &err);
    if (!p) {
        fprintf(stderr, "%s\n%s\n", err.message, text);
        fail("conversion output is not strict JSON", what);
    }
    g_object_unref(p);
}

static void
run_conversion(const HrGguf *g)
{
    char *cj = NULL, *gj = NULL;
    HrError err = { 0 };
    HrStatus s = hr_gguf_config_json(g, &cj, &gj, &err);
    if (s != HR_OK) {
        check_failure(s, &err, "config");
        if (cj || gj)
            fail("config text set on failure", NULL);
    } else {
        check_json(cj, "config.json");
        check_json(gj, "generation_config.json");
        HrModelConfig cfg;
        s = hr_model_config_parse(cj, gj, "fuzz", &cfg, &err);
        if (s != HR_OK)
            check_failure(s, &err, "config parse");
    }
    g_free(cj);
    g_free(gj);

    char *tj = NULL, *tc = NULL;
    s = hr_gguf_tokenizer_json(g, &tj, &tc, &err);
    if (s != HR_OK) {
        check_failure(s, &err, "tokenizer");
        if (tj || tc)
            fail("tokenizer text set on failure", NULL);
        return;
    }
    check_json(tj, "tokenizer.json");
    check_json(tc, "tokenizer_config.json");
    HrTokenizer *t = NULL, *tt = NULL;
    s = hr_tokenizer_load_from_data(tj, strlen(tj), tc, strlen(tc), "fuzz", &t, &err);
    /* what hr_tokenizer_load runs on a GGUF: the vocab and merges as tables, no JSON; it must load
     * exactly when the JSON does and encode the same */
    HrError terr = { 0 };
    HrStatus ts = hr_gguf_tokenizer(g, &tt, &terr);
    if (ts != HR_OK)
        check_failure(ts, &terr, "tokenizer from tables");
    if ((s == HR_OK) != (ts == HR_OK))
        fail("the tables load where the JSON does not, or the other way", s != HR_OK ? err.message : terr.message);
    if (s != HR_OK) {
        check_failure(s, &err, "tokenizer load");
    } else {
        static const char text[] = "<|im_start|>hello world 12\n\xe2\x96\x81<s></s> caf\xc3\xa9";
        for (int mode = 0; mode < 2; mode++) {
            int32_t *ids = NULL, *ids2 = NULL;
            size_t n = 0, n2 = 0;
            s = hr_tokenizer_encode(t, text, sizeof text - 1, mode, mode, &ids, &n, &err);
            if (s != HR_OK) {
                check_failure(s, &err, "encode");
            } else {
                char *back = hr_tokenizer_decode(t, ids, n, mode);
                sink ^= back && back[0] ? (uint8_t)back[0] : 0;
                g_free(back);
                if (tt && (hr_tokenizer_encode(tt, text, sizeof text - 1, mode, mode, &ids2, &n2, &terr) != HR_OK ||
                           n2 != n || (n && memcmp(ids, ids2, n * sizeof *ids) != 0)))
                    fail("the tables encode differently from the JSON", NULL);
            }
            g_free(ids);
            g_free(ids2);
        }
        hr_tokenizer_free(t);
    }
    hr_tokenizer_free(tt);
    g_free(tj);
    g_free(tc);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    HrGguf *g = NULL;
    HrError err = { 0 };
    HrStatus s = hr_gguf_parse_memory(data, size, "fuzz.gguf", &g, &err);
    fuzz_gguf_last_ok = s == HR_OK;
    if (s != HR_OK) {
        if (g)
            fail("out set on failure", NULL);
        check_failure(s, &err, "parse");
        if (!strstr(err.message, "fuzz.gguf"))
            fail("message does not name the file", err.message);
        return 0;
    }
    check_tensors(g, data, size);
    check_keys(g);
    run_conversion(g);
    hr_gguf_free(g);
    return 0;
}
