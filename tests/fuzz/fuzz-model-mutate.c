/* fuzz-model-mutate.c — mutations for the model-load fuzz target
 * (fuzz-model.c): the fuzz-mutate.h API, linked by the `model-fuzz` meson
 * test and by tools/fuzz-model (with fuzz-custom-mutator.c).
 *
 * A GGUF input goes to the GGUF mutations (fuzz-gguf-mutate.c: values,
 * types, tensor types, shapes and offsets with the data laid out again).
 * A folder input (config.json, NUL, model.safetensors) gets one of:
 *  - config edits (about half): a number set to an edge case (0, 1, -1,
 *    odd sizes, 2^31, 2^63, 1e30, NaN-like text) or moved by one, doubled
 *    or halved; a key the loader reads set to another kind of value, to
 *    null, or added at the top with an edge value; a string swapped for
 *    another one the loader knows (architectures, dtypes, AWQ versions,
 *    rope types);
 *  - safetensors edits: a tensor given an edge-case shape with every
 *    data_offsets recomputed (fuzz-mutate.c, one call in three); a near-miss
 *    shape (a dimension doubled, halved, one off, swapped, dropped or added;
 *    AWQ tensors and biases chosen half the time) with the data laid out
 *    again (one in three); else fuzz-mutate.c's byte-level and JSON
 *    mutations;
 *  - both, now and then; or the config of another pool input.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <glib.h>
#include <json-glib/json-glib.h>

#include "fuzz-mutate.h"

GByteArray *fuzz_gguf_mutate(const GByteArray *base, GPtrArray *pool);
GByteArray *fuzz_st_mutate(const GByteArray *base, GPtrArray *pool);
GByteArray *fuzz_st_restructure(const GByteArray *base);

#define below fuzz_below
#define PICK(a) (a[below(G_N_ELEMENTS(a))])

static const char *const keys[] = {
    "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
    "head_dim", "vocab_size", "max_position_embeddings", "rms_norm_eps", "rope_theta", "tie_word_embeddings",
    "rope_scaling", "quantization_config", "bits", "group_size", "zero_point", "version", "quant_method",
    "sliding_window", "use_sliding_window", "max_window_layers", "bos_token_id", "eos_token_id", "torch_dtype",
    "architectures", "model_type", "attention_bias", "mlp_bias", "partial_rotary_factor", "factor",
    "original_max_position_embeddings", "low_freq_factor", "high_freq_factor", "rope_type", "hidden_act",
    "modules_to_not_convert", "num_local_experts", "w_bit", "q_group_size", "hidden_activation",
    "query_pre_attn_scalar", "rope_local_base_freq", "layer_types", "sliding_window_pattern", "text_config",
    "final_logit_softcapping", "attn_logit_softcapping", "hearth_norms_hold_one", "long_factor", "short_factor",
};

static const char *const numbers[] = {
    "0", "1", "2", "3", "-1", "-2", "4", "5", "7", "8", "9", "15", "16", "17", "24", "31", "32", "33", "48", "63",
    "64", "65", "96", "127", "128", "129", "255", "256", "1024", "4096", "65536", "1000000", "2147483647",
    "2147483648", "4294967295", "4294967296", "9223372036854775807", "18446744073709551615", "1e30", "-1e30",
    "0.5", "1.5", "-0.0", "1e-45", "1e308", "3.4e38", "0.0", "1e-30",
};

static const char *const values[] = {
    "null", "true", "false", "\"\"", "[]", "{}", "[1]", "[0, 1]", "\"x\"", "{\"a\": 1}", "[[1]]", "1.0",
    "{\"rope_type\": \"llama3\", \"factor\": 0}", "{\"type\": \"linear\", \"factor\": 0.0}",
    "{\"quant_method\": \"awq\", \"bits\": 4, \"group_size\": 0, \"version\": \"gemm\", \"zero_point\": true}",
    "{\"quant_method\": \"awq\", \"bits\": 4, \"group_size\": 7, \"version\": \"gemm\", \"zero_point\": false}",
    "{\"quant_method\": \"awq\", \"bits\": 8, \"group_size\": 32, \"version\": \"gemv\"}",
    "{\"quant_method\": \"gptq\", \"bits\": 4, \"group_size\": 32}",
};

static const char *const strings[] = {
    "LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM", "Phi3ForCausalLM", "llama", "qwen2", "mistral",
    "Gemma3ForCausalLM", "Gemma3ForConditionalGeneration", "gemma3", "sliding_attention", "full_attention",
    "Gemma2ForCausalLM", "Phi3ForCausalLM", "longrope", "su",
    "gelu_pytorch_tanh",
    "float16", "bfloat16", "float32", "int8", "awq", "gptq", "gemm", "gemv", "GEMM", "llama3", "linear", "dynamic",
    "yarn", "default", "silu", "gelu", "", "\\u0000", "\\ud800",
};

/* [start, end) of each number in text (outside strings). */
static size_t
find_numbers(const GByteArray *t, size_t *at, size_t *len, size_t cap)
{
    size_t n = 0;
    bool in_str = false;
    for (size_t i = 0; i < t->len && n < cap; i++) {
        const char c = (char)t->data[i];
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = false;
            continue;
        }
        if (c == '"') {
            in_str = true;
            continue;
        }
        if ((c >= '0' && c <= '9') || c == '-') {
            size_t j = i;
            while (j < t->len && strchr("0123456789+-.eE", (char)t->data[j]))
                j++;
            at[n] = i;
            len[n++] = j - i;
            i = j - 1;
        }
    }
    return n;
}

static void
insert_at(GByteArray *t, size_t at, const char *with)
{
    const size_t n = strlen(with), old = t->len;
    g_byte_array_set_size(t, (guint)(old + n));
    memmove(t->data + at + n, t->data + at, old - at);
    memcpy(t->data + at, with, n);
}

static void
splice(GByteArray *t, size_t at, size_t old_len, const char *with)
{
    g_byte_array_remove_range(t, (guint)at, (guint)old_len);
    insert_at(t, at, with);
}

/* The value after "key": [start, end), scanning brackets and strings. */
static bool
find_value(const GByteArray *t, const char *key, size_t *start, size_t *end)
{
    g_autofree char *needle = g_strdup_printf("\"%s\"", key);
    const size_t nl = strlen(needle);
    for (size_t i = 0; i + nl <= t->len; i++) {
        if (memcmp(t->data + i, needle, nl) != 0)
            continue;
        size_t j = i + nl;
        while (j < t->len && (t->data[j] == ' ' || t->data[j] == '\n' || t->data[j] == '\t'))
            j++;
        if (j >= t->len || t->data[j] != ':')
            continue;
        j++;
        while (j < t->len && (t->data[j] == ' ' || t->data[j] == '\n' || t->data[j] == '\t'))
            j++;
        size_t k = j;
        int depth = 0;
        bool in_str = false;
        for (; k < t->len; k++) {
            const char c = (char)t->data[k];
            if (in_str) {
                if (c == '\\')
                    k++;
                else if (c == '"')
                    in_str = false;
                continue;
            }
            if (c == '"')
                in_str = true;
            else if (c == '[' || c == '{')
                depth++;
            else if (c == ']' || c == '}') {
                if (depth == 0)
                    break;
                depth--;
            } else if (c == ',' && depth == 0) {
                break;
            }
        }
        while (k > j && (t->data[k - 1] == ' ' || t->data[k - 1] == '\n'))
            k--;
        *start = j;
        *end = k;
        return true;
    }
    return false;
}

static void
edit_config(GByteArray *t)
{
    switch (below(5)) {
    case 0:
    case 1: {   /* a number */
        size_t at[256], len[256];
        const size_t n = find_numbers(t, at, len, G_N_ELEMENTS(at));
        if (n == 0)
            break;
        const size_t i = below(n);
        char buf[64];
        if (below(3) == 0) {
            g_autofree char *old = g_strndup((const char *)t->data + at[i], len[i]);
            const double v = g_ascii_strtod(old, NULL);
            const double nv = PICK(((const double[]){ v + 1, v - 1, v * 2, v / 2, -v, v * 3 }));
            g_snprintf(buf, sizeof buf, "%.17g", nv);
        } else {
            g_strlcpy(buf, PICK(numbers), sizeof buf);
        }
        splice(t, at[i], len[i], buf);
        break;
    }
    case 2: {   /* a key's value replaced */
        size_t s, e;
        if (find_value(t, PICK(keys), &s, &e)) {
            const char *with = below(2) ? PICK(values) : PICK(numbers);
            splice(t, s, e - s, with);
        }
        break;
    }
    case 3: {   /* a key the config lacks added first, with an edge value (a duplicate is refused early) */
        const uint8_t *brace = memchr(t->data, '{', t->len);
        const char *key = PICK(keys);
        size_t s0, e0;
        if (!brace || find_value(t, key, &s0, &e0))
            break;
        g_autofree char *ins = g_strdup_printf("\"%s\": %s, ", key, below(2) ? PICK(values) : PICK(numbers));
        insert_at(t, (size_t)(brace - t->data) + 1, ins);
        break;
    }
    default: {   /* a string swapped */
        size_t starts[256], n = 0;
        for (size_t i = 0; i + 1 < t->len && n < G_N_ELEMENTS(starts); i++)
            if (t->data[i] == ':' || t->data[i] == '[') {
                size_t j = i + 1;
                while (j < t->len && (t->data[j] == ' ' || t->data[j] == '\n'))
                    j++;
                if (j < t->len && t->data[j] == '"')
                    starts[n++] = j;
            }
        if (n == 0)
            break;
        const size_t s = starts[below(n)];
        size_t e = s + 1;
        while (e < t->len && t->data[e] != '"')
            e += t->data[e] == '\\' ? 2 : 1;
        if (e >= t->len)
            break;
        g_autofree char *with = g_strdup_printf("\"%s\"", PICK(strings));
        splice(t, s, e + 1 - s, with);
        break;
    }
    }
}

/* ---- near-miss shapes ------------------------------------------------------------------ */

static size_t
dtype_bytes(const char *d)
{
    static const struct {
        const char *name;
        size_t size;
    } t[] = { { "F32", 4 }, { "F16", 2 }, { "BF16", 2 }, { "I32", 4 }, { "I8", 1 }, { "U8", 1 },
              { "I16", 2 }, { "F64", 8 }, { "I64", 8 }, { "BOOL", 1 } };
    for (size_t i = 0; i < G_N_ELEMENTS(t); i++)
        if (strcmp(d, t[i].name) == 0)
            return t[i].size;
    return 0;
}

typedef struct {
    char *name, *dtype;
    int64_t shape[8];
    int nd;
    uint64_t begin, end;   /* the old bytes, in the old data area */
} StTensor;

static gint
by_begin(gconstpointer a, gconstpointer b)
{
    const StTensor *x = a, *y = b;
    return x->begin < y->begin ? -1 : x->begin > y->begin;
}

/* One tensor's shape changed the way a broken converter would (a dimension
 * doubled, halved, one more or less, two swapped, one dropped or added), the
 * quantized tensors and biases chosen more often; the data area laid out
 * again with every tensor's bytes cut or repeated to fit. NULL when st is
 * not a well-formed safetensors image. */
static GByteArray *
near_miss_shape(const GByteArray *st)
{
    if (st->len < 8)
        return NULL;
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | st->data[i];
    if (hlen > st->len - 8)
        return NULL;
    JsonParser *parser = json_parser_new();
    GByteArray *out = NULL;
    GArray *ts = g_array_new(FALSE, TRUE, sizeof(StTensor));
    g_autofree char *text = g_strndup((const char *)st->data + 8, hlen);
    if (!json_parser_load_from_data(parser, text, -1, NULL) || !JSON_NODE_HOLDS_OBJECT(json_parser_get_root(parser)))
        goto done;
    JsonObject *root = json_node_get_object(json_parser_get_root(parser));
    GList *members = json_object_get_members(root);
    JsonNode *meta = NULL;
    for (GList *l = members; l; l = l->next) {
        const char *name = l->data;
        JsonNode *n = json_object_get_member(root, name);
        if (strcmp(name, "__metadata__") == 0) {
            meta = n;
            continue;
        }
        if (!JSON_NODE_HOLDS_OBJECT(n))
            continue;
        JsonObject *o = json_node_get_object(n);
        JsonArray *shape = json_object_has_member(o, "shape") ? json_object_get_array_member(o, "shape") : NULL;
        JsonArray *offs = json_object_has_member(o, "data_offsets") ? json_object_get_array_member(o, "data_offsets")
                                                                     : NULL;
        const char *dt = json_object_has_member(o, "dtype") ? json_object_get_string_member(o, "dtype") : NULL;
        if (!shape || !offs || !dt || json_array_get_length(offs) != 2 || json_array_get_length(shape) > 8 ||
            !dtype_bytes(dt))
            continue;
        StTensor t = { g_strdup(name), g_strdup(dt), { 0 }, (int)json_array_get_length(shape),
                       (uint64_t)json_array_get_int_element(offs, 0), (uint64_t)json_array_get_int_element(offs, 1) };
        for (int d = 0; d < t.nd; d++)
            t.shape[d] = json_array_get_int_element(shape, (guint)d);
        if (t.begin > t.end || t.end > st->len - 8 - hlen) {
            g_free(t.name);
            g_free(t.dtype);
            continue;
        }
        g_array_append_val(ts, t);
    }
    g_list_free(members);
    if (ts->len == 0)
        goto done;
    /* the victim: a quantized tensor or a bias half the time */
    guint v = (guint)below(ts->len);
    if (below(2)) {
        guint cand[512], nc = 0;
        for (guint i = 0; i < ts->len && nc < G_N_ELEMENTS(cand); i++) {
            const char *nm = g_array_index(ts, StTensor, i).name;
            if (g_str_has_suffix(nm, "qweight") || g_str_has_suffix(nm, "qzeros") || g_str_has_suffix(nm, "scales") ||
                g_str_has_suffix(nm, "bias"))
                cand[nc++] = i;
        }
        if (nc)
            v = cand[below(nc)];
    }
    StTensor *t = &g_array_index(ts, StTensor, v);
    const int d = t->nd ? (int)below((size_t)t->nd) : 0;
    switch (below(7)) {
    case 0:
        if (t->nd)
            t->shape[d] *= 2;
        break;
    case 1:
        if (t->nd)
            t->shape[d] = t->shape[d] / 2;
        break;
    case 2:
        if (t->nd)
            t->shape[d] += 1;
        break;
    case 3:
        if (t->nd && t->shape[d] > 0)
            t->shape[d] -= 1;
        break;
    case 4:
        if (t->nd >= 2) {
            const int64_t x = t->shape[0];
            t->shape[0] = t->shape[t->nd - 1];
            t->shape[t->nd - 1] = x;
        }
        break;
    case 5:
        if (t->nd)
            t->nd--;
        break;
    default:
        if (t->nd < 8)
            t->shape[t->nd++] = 1 + (int64_t)below(2);
        break;
    }
    g_array_sort(ts, by_begin);
    /* the new header and data */
    const uint8_t *old = st->data + 8 + hlen;
    GByteArray *data = g_byte_array_new();
    JsonBuilder *b = json_builder_new();
    json_builder_begin_object(b);
    if (meta) {
        json_builder_set_member_name(b, "__metadata__");
        json_builder_add_value(b, json_node_copy(meta));
    }
    for (guint i = 0; i < ts->len; i++) {
        StTensor *x = &g_array_index(ts, StTensor, i);
        uint64_t numel = 1;
        for (int k = 0; k < x->nd; k++)
            numel *= (uint64_t)MAX(x->shape[k], 0);
        const uint64_t n = numel * dtype_bytes(x->dtype);
        if (n > (1u << 20))
            goto too_big;
        const uint64_t begin = data->len, have = x->end - x->begin;
        for (uint64_t k = 0; k < n; k++)
            g_byte_array_append(data, have ? old + x->begin + k % have : (const uint8_t *)"\x3c", 1);
        json_builder_set_member_name(b, x->name);
        json_builder_begin_object(b);
        json_builder_set_member_name(b, "dtype");
        json_builder_add_string_value(b, x->dtype);
        json_builder_set_member_name(b, "shape");
        json_builder_begin_array(b);
        for (int k = 0; k < x->nd; k++)
            json_builder_add_int_value(b, x->shape[k]);
        json_builder_end_array(b);
        json_builder_set_member_name(b, "data_offsets");
        json_builder_begin_array(b);
        json_builder_add_int_value(b, (gint64)begin);
        json_builder_add_int_value(b, (gint64)data->len);
        json_builder_end_array(b);
        json_builder_end_object(b);
    }
    json_builder_end_object(b);
    {
        JsonGenerator *gen = json_generator_new();
        JsonNode *node = json_builder_get_root(b);
        json_generator_set_root(gen, node);
        g_autofree char *json = json_generator_to_data(gen, NULL);
        json_node_unref(node);
        g_object_unref(gen);
        GString *h = g_string_new(json);
        while (h->len % 8)
            g_string_append_c(h, ' ');
        out = g_byte_array_sized_new((guint)(8 + h->len + data->len));
        uint8_t len8[8];
        for (int i = 0; i < 8; i++)
            len8[i] = (uint8_t)((uint64_t)h->len >> (8 * i));
        g_byte_array_append(out, len8, 8);
        g_byte_array_append(out, (const guint8 *)h->str, (guint)h->len);
        g_byte_array_append(out, data->data, data->len);
        g_string_free(h, TRUE);
    }
too_big:
    g_object_unref(b);
    g_byte_array_unref(data);
done:
    for (guint i = 0; i < ts->len; i++) {
        g_free(g_array_index(ts, StTensor, i).name);
        g_free(g_array_index(ts, StTensor, i).dtype);
    }
    g_array_unref(ts);
    g_object_unref(parser);
    return out;
}

/* config and safetensors parts of a folder input (the safetensors part may be empty) */
static void
split(const GByteArray *b, GByteArray **cfg, GByteArray **st)
{
    const uint8_t *nul = memchr(b->data, 0, b->len);
    const size_t cl = nul ? (size_t)(nul - b->data) : b->len;
    *cfg = g_byte_array_sized_new((guint)cl + 64);
    g_byte_array_append(*cfg, b->data, (guint)cl);
    *st = g_byte_array_new();
    if (nul)
        g_byte_array_append(*st, nul + 1, (guint)(b->len - cl - 1));
}

static bool
is_gguf(const GByteArray *b)
{
    return b->len >= 4 && memcmp(b->data, "GGUF", 4) == 0;
}

GByteArray *
fuzz_restructure(const GByteArray *base)
{
    if (is_gguf(base))
        return NULL;
    GByteArray *cfg, *st;
    split(base, &cfg, &st);
    GByteArray *r = fuzz_st_restructure(st);
    g_byte_array_unref(st);
    if (!r) {
        g_byte_array_unref(cfg);
        return NULL;
    }
    g_byte_array_append(cfg, (const guint8 *)"", 1);
    g_byte_array_append(cfg, r->data, r->len);
    g_byte_array_unref(r);
    return cfg;
}

GByteArray *
fuzz_mutate(const GByteArray *base, GPtrArray *pool)
{
    if (is_gguf(base)) {
        GPtrArray *gp = g_ptr_array_new();
        for (guint i = 0; i < pool->len; i++)
            if (is_gguf(pool->pdata[i]))
                g_ptr_array_add(gp, pool->pdata[i]);
        if (gp->len == 0)
            g_ptr_array_add(gp, (gpointer)base);
        GByteArray *r = fuzz_gguf_mutate(base, gp);
        g_ptr_array_free(gp, TRUE);
        return r;
    }
    GByteArray *cfg, *st;
    split(base, &cfg, &st);
    const unsigned what = (unsigned)below(20);
    if (what < 9 || what >= 18) {   /* the config */
        for (int n = 1 + (int)below(3); n > 0; n--)
            edit_config(cfg);
    }
    if (what >= 9 && what < 19) {   /* the weights */
        const unsigned how = (unsigned)below(3);
        GByteArray *r = how == 0 ? fuzz_st_restructure(st) : how == 1 ? near_miss_shape(st) : NULL;
        if (!r) {
            GPtrArray *sp = g_ptr_array_new();
            g_ptr_array_add(sp, st);
            r = fuzz_st_mutate(st, sp);
            g_ptr_array_free(sp, TRUE);
        }
        g_byte_array_unref(st);
        st = r;
    }
    if (what == 19 && pool->len) {   /* another input's config */
        const GByteArray *o = pool->pdata[below(pool->len)];
        if (!is_gguf(o)) {
            GByteArray *oc, *os;
            split(o, &oc, &os);
            g_byte_array_unref(cfg);
            g_byte_array_unref(os);
            cfg = oc;
        }
    }
    g_byte_array_append(cfg, (const guint8 *)"", 1);
    g_byte_array_append(cfg, st->data, st->len);
    g_byte_array_unref(st);
    return cfg;
}
