#include "model-config.h"

#include <inttypes.h>
#include <math.h>
#include <string.h>

#include <glib.h>
#include <json-glib/json-glib.h>

#include "gguf-model.h"
#include "hr-json.h"

static const struct {
    const char *name;
    HrArch arch;
} known_archs[] = {
    { "LlamaForCausalLM", HR_ARCH_LLAMA },
    { "MistralForCausalLM", HR_ARCH_MISTRAL },
    { "Qwen2ForCausalLM", HR_ARCH_QWEN2 },
    { "Qwen3ForCausalLM", HR_ARCH_QWEN3 },
    { "Gemma3ForCausalLM", HR_ARCH_GEMMA3 },
    { "Gemma3ForConditionalGeneration", HR_ARCH_GEMMA3 },   /* its text_config; the vision tower unused */
    { "Phi3ForCausalLM", HR_ARCH_PHI3 },
    { "Gemma2ForCausalLM", HR_ARCH_GEMMA2 },
};

/* Integer member: *out untouched when absent; error when present but not an
 * integer (or out of range). */
static HrStatus
get_int(JsonObject *o, const char *key, int *out, bool required, int min, const char *label, HrError *err)
{
    JsonNode *n = json_object_get_member(o, key);
    if (!n || JSON_NODE_HOLDS_NULL(n)) {
        if (required)
            return hr_error_set(err, HR_ERR_FORMAT, "%s: \"%s\" is missing", label, key);
        return HR_OK;
    }
    if (!JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_INT64)
        return hr_error_set(err, HR_ERR_FORMAT, "%s: \"%s\" must be an integer", label, key);
    gint64 v = json_node_get_int(n);
    if (v < min || v > (1 << 30))
        return hr_error_set(err, HR_ERR_FORMAT, "%s: \"%s\" = %" G_GINT64_FORMAT " is out of range",
                            label, key, v);
    *out = (int)v;
    return HR_OK;
}

/* A number the generation config advises (absent, null or not a number: false). */
static bool
advice(JsonObject *o, const char *key, double *out)
{
    JsonNode *n = json_object_get_member(o, key);
    if (!n || !JSON_NODE_HOLDS_VALUE(n))
        return false;
    GType t = json_node_get_value_type(n);
    if (t == G_TYPE_INT64)
        *out = (double)json_node_get_int(n);
    else if (t == G_TYPE_DOUBLE)
        *out = json_node_get_double(n);
    else
        return false;
    return isfinite(*out);
}

static HrStatus
get_float(JsonObject *o, const char *key, float *out, const char *label, HrError *err)
{
    JsonNode *n = json_object_get_member(o, key);
    if (!n || JSON_NODE_HOLDS_NULL(n))
        return HR_OK;
    if (!JSON_NODE_HOLDS_VALUE(n))
        return hr_error_set(err, HR_ERR_FORMAT, "%s: \"%s\" must be a number", label, key);
    GType t = json_node_get_value_type(n);
    double v;
    if (t == G_TYPE_INT64)
        v = (double)json_node_get_int(n);
    else if (t == G_TYPE_DOUBLE)
        v = json_node_get_double(n);
    else
        return hr_error_set(err, HR_ERR_FORMAT, "%s: \"%s\" must be a number", label, key);
    if (!isfinite(v))
        return hr_error_set(err, HR_ERR_FORMAT, "%s: \"%s\" is not finite", label, key);
    *out = (float)v;
    return HR_OK;
}

static HrStatus
get_bool(JsonObject *o, const char *key, bool *out, const char *label, HrError *err)
{
    JsonNode *n = json_object_get_member(o, key);
    if (!n || JSON_NODE_HOLDS_NULL(n))
        return HR_OK;
    if (!JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_BOOLEAN)
        return hr_error_set(err, HR_ERR_FORMAT, "%s: \"%s\" must be true or false", label, key);
    *out = json_node_get_boolean(n);
    return HR_OK;
}

/* bos/eos: an integer or a list of integers. */
static HrStatus
get_token_ids(JsonObject *o, const char *key, int *ids, int *n_ids, int max, const char *label, HrError *err)
{
    JsonNode *n = json_object_get_member(o, key);
    if (!n || JSON_NODE_HOLDS_NULL(n))
        return HR_OK;
    if (JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == G_TYPE_INT64) {
        gint64 v = json_node_get_int(n);
        if (v < 0 || v > G_MAXINT32)
            return hr_error_set(err, HR_ERR_FORMAT, "%s: \"%s\" is out of range", label, key);
        ids[0] = (int)v;
        *n_ids = 1;
        return HR_OK;
    }
    if (!JSON_NODE_HOLDS_ARRAY(n))
        return hr_error_set(err, HR_ERR_FORMAT, "%s: \"%s\" must be an integer or a list of integers", label, key);
    JsonArray *a = json_node_get_array(n);
    guint len = json_array_get_length(a);
    if ((int)len > max)
        return hr_error_set(err, HR_ERR_UNSUPPORTED, "%s: \"%s\" lists %u ids; at most %d are supported",
                            label, key, len, max);
    for (guint i = 0; i < len; i++) {
        JsonNode *e = json_array_get_element(a, i);
        if (!JSON_NODE_HOLDS_VALUE(e) || json_node_get_value_type(e) != G_TYPE_INT64 ||
            json_node_get_int(e) < 0 || json_node_get_int(e) > G_MAXINT32)
            return hr_error_set(err, HR_ERR_FORMAT, "%s: \"%s\"[%u] must be a token id", label, key, i);
        ids[i] = (int)json_node_get_int(e);
    }
    *n_ids = (int)len;
    return HR_OK;
}

static HrStatus
parse_quantization(JsonObject *o, HrModelConfig *cfg, const char *label, HrError *err)
{
    JsonNode *n = json_object_get_member(o, "quantization_config");
    if (!n || JSON_NODE_HOLDS_NULL(n))
        return HR_OK;
    if (!JSON_NODE_HOLDS_OBJECT(n))
        return hr_error_set(err, HR_ERR_FORMAT, "%s: \"quantization_config\" must be an object", label);
    JsonObject *q = json_node_get_object(n);
    const char *method;
    HrStatus st;
    if ((st = hr_json_get_string(q, "quant_method", "(missing)", &method, label, err)) != HR_OK)
        return st;
    if (g_ascii_strcasecmp(method, "awq") != 0)
        return hr_error_set(err, HR_ERR_UNSUPPORTED, "%s: quant_method \"%s\" is not supported (only awq)",
                            label, method);
    int bits = 0;
    if ((st = get_int(q, "bits", &bits, true, 1, label, err)) != HR_OK)
        return st;
    if (bits != 4)
        return hr_error_set(err, HR_ERR_UNSUPPORTED, "%s: AWQ with %d bits is not supported (only 4)", label, bits);
    bool zero_point = true;
    if ((st = get_bool(q, "zero_point", &zero_point, label, err)) != HR_OK)
        return st;
    if (!zero_point)
        return hr_error_set(err, HR_ERR_UNSUPPORTED, "%s: AWQ with zero_point false is not supported", label);
    const char *version;
    if ((st = hr_json_get_string(q, "version", "gemm", &version, label, err)) != HR_OK)
        return st;
    if (g_ascii_strcasecmp(version, "gemm") != 0)
        return hr_error_set(err, HR_ERR_UNSUPPORTED, "%s: AWQ version \"%s\" is not supported (only gemm)",
                            label, version);
    cfg->awq_group_size = 128;
    if ((st = get_int(q, "group_size", &cfg->awq_group_size, false, -1, label, err)) != HR_OK)
        return st;
    cfg->awq = true;
    return HR_OK;
}

static JsonObject *
parse_object(JsonParser **p, const char *text, const char *label, HrError *err)
{
    *p = hr_json_load(text, strlen(text), true, label, err);
    return *p ? json_node_get_object(json_parser_get_root(*p)) : NULL;
}

/* LongRoPE's factors: a list of rotary_dim / 2 positive numbers. */
static HrStatus
get_factors(JsonObject *rs, const char *key, float *out, int n, const char *label, HrError *err)
{
    JsonNode *node = json_object_get_member(rs, key);
    JsonArray *a = node && JSON_NODE_HOLDS_ARRAY(node) ? json_node_get_array(node) : NULL;
    if (!a || json_array_get_length(a) != (guint)n)
        return hr_error_set(err, HR_ERR_FORMAT, "%s: rope_scaling \"%s\" must list %d numbers (half the rotary "
                            "dimensions)", label, key, n);
    for (int i = 0; i < n; i++) {
        JsonNode *e = json_array_get_element(a, (guint)i);
        GType t = JSON_NODE_HOLDS_VALUE(e) ? json_node_get_value_type(e) : G_TYPE_INVALID;
        double v = t == G_TYPE_INT64 ? (double)json_node_get_int(e) : t == G_TYPE_DOUBLE ? json_node_get_double(e)
                                                                                          : NAN;
        if (!(v > 0.0 && v < 1e30))
            return hr_error_set(err, HR_ERR_FORMAT, "%s: rope_scaling \"%s\"[%d] must be a positive number", label,
                                key, i);
        out[i] = (float)v;
    }
    return HR_OK;
}

/* LongRoPE (Phi-3): rotary_dim and max_pos are known; the original context
 * from rope_scaling or the config's top level (Phi-3's), else max_pos; the
 * attention factor given, else transformers' sqrt(1 + ln f / ln original) for
 * f = factor, else max_pos / original. */
static HrStatus
parse_longrope(JsonObject *o, JsonObject *rs, HrModelConfig *cfg, const char *label, HrError *err)
{
    HrStatus st;
    const int n = hr_model_config_rotary_dim(cfg) / 2;
    cfg->rope_scaling = HR_ROPE_LONGROPE;
    cfg->rope_original_max_pos = cfg->max_pos;
    if ((st = get_int(o, "original_max_position_embeddings", &cfg->rope_original_max_pos, false, 1, label, err)) ||
        (st = get_int(rs, "original_max_position_embeddings", &cfg->rope_original_max_pos, false, 1, label, err)) ||
        (st = get_factors(rs, "long_factor", cfg->rope_long, n, label, err)) ||
        (st = get_factors(rs, "short_factor", cfg->rope_short, n, label, err)))
        return st;
    float factor = 0.0f, attn = 0.0f;
    if ((st = get_float(rs, "factor", &factor, label, err)) != HR_OK ||
        (st = get_float(rs, "attention_factor", &attn, label, err)) != HR_OK)
        return st;
    if (factor <= 0.0f)
        factor = (float)cfg->max_pos / (float)cfg->rope_original_max_pos;
    if (attn > 0.0f)
        cfg->rope_attn_factor = attn;
    else if (factor > 1.0f && cfg->rope_original_max_pos > 1)
        cfg->rope_attn_factor = (float)sqrt(1.0 + log((double)factor) / log((double)cfg->rope_original_max_pos));
    cfg->rope_factor = 1.0f;
    return HR_OK;
}

/* The object o[key]: NULL when absent or null, an error when not an object. */
static HrStatus
get_object(JsonObject *o, const char *key, JsonObject **out, const char *label, HrError *err)
{
    JsonNode *n = json_object_get_member(o, key);
    *out = NULL;
    if (!n || JSON_NODE_HOLDS_NULL(n))
        return HR_OK;
    if (!JSON_NODE_HOLDS_OBJECT(n))
        return hr_error_set(err, HR_ERR_FORMAT, "%s: \"%s\" must be an object", label, key);
    *out = json_node_get_object(n);
    return HR_OK;
}

/* RoPE's scaling from rs (rope_scaling, or transformers 5's rope_parameters;
 * NULL: none). */
static HrStatus
parse_rope_scaling(JsonObject *o, JsonObject *rs, HrModelConfig *cfg, const char *label, HrError *err)
{
    if (!rs)
        return HR_OK;
    /* Newer configs say "rope_type", older ones "type". */
    const char *type;
    HrStatus st;
    if ((st = hr_json_get_string(rs, "rope_type", NULL, &type, label, err)) != HR_OK)
        return st;
    if (!type && (st = hr_json_get_string(rs, "type", NULL, &type, label, err)) != HR_OK)
        return st;
    if (!type && json_object_has_member(rs, "rope_theta"))
        type = "default";   /* (transformers 5: rope_parameters with the base alone) */
    if (!type)
        return hr_error_set(err, HR_ERR_FORMAT, "%s: \"rope_scaling\" has no \"rope_type\"", label);
    if ((st = get_float(rs, "factor", &cfg->rope_factor, label, err)) != HR_OK)
        return st;
    if (strcmp(type, "default") == 0) {
        cfg->rope_scaling = HR_ROPE_DEFAULT;
    } else if (strcmp(type, "linear") == 0) {
        cfg->rope_scaling = HR_ROPE_LINEAR;
    } else if (strcmp(type, "llama3") == 0) {
        cfg->rope_scaling = HR_ROPE_LLAMA3;
        cfg->rope_low_freq_factor = 1.0f;
        cfg->rope_high_freq_factor = 4.0f;
        cfg->rope_original_max_pos = 8192;
        if ((st = get_float(rs, "low_freq_factor", &cfg->rope_low_freq_factor, label, err)) != HR_OK ||
            (st = get_float(rs, "high_freq_factor", &cfg->rope_high_freq_factor, label, err)) != HR_OK ||
            (st = get_int(rs, "original_max_position_embeddings", &cfg->rope_original_max_pos, false, 1,
                          label, err)) != HR_OK)
            return st;
        if (cfg->rope_high_freq_factor <= cfg->rope_low_freq_factor)
            return hr_error_set(err, HR_ERR_FORMAT, "%s: llama3 rope_scaling needs high_freq_factor > low_freq_factor",
                                label);
    } else if (strcmp(type, "longrope") == 0 ||
               (cfg->arch == HR_ARCH_PHI3 && (strcmp(type, "su") == 0 || strcmp(type, "yarn") == 0))) {
        /* (transformers' Phi3Config reads "su" and "yarn" as longrope) */
        return parse_longrope(o, rs, cfg, label, err);
    } else {
        return hr_error_set(err, HR_ERR_UNSUPPORTED, "%s: rope_scaling type \"%s\" is not supported "
                            "(supported: linear, llama3, longrope)", label, type);
    }
    if (cfg->rope_scaling != HR_ROPE_DEFAULT && !(cfg->rope_factor > 0.0f))
        return hr_error_set(err, HR_ERR_FORMAT, "%s: rope_scaling factor must be positive", label);
    return HR_OK;
}

/* transformers' Gemma3TextConfig defaults, which an image-text checkpoint's
 * text_config leaves out (its ids included: bos 2, eos 1). */
static JsonObject *
gemma3_text_defaults(void)
{
    JsonObject *d = json_object_new();
    static const struct {
        const char *key;
        gint64 v;
    } ints[] = {
        { "vocab_size", 262208 },        { "hidden_size", 2304 },         { "intermediate_size", 9216 },
        { "num_hidden_layers", 26 },     { "num_attention_heads", 8 },    { "num_key_value_heads", 4 },
        { "head_dim", 256 },             { "max_position_embeddings", 131072 }, { "query_pre_attn_scalar", 256 },
        { "sliding_window", 4096 },      { "bos_token_id", 2 },           { "eos_token_id", 1 },
    };
    for (size_t i = 0; i < G_N_ELEMENTS(ints); i++)
        json_object_set_int_member(d, ints[i].key, ints[i].v);
    json_object_set_double_member(d, "rms_norm_eps", 1e-6);
    json_object_set_double_member(d, "rope_theta", 1e6);
    json_object_set_boolean_member(d, "tie_word_embeddings", true);
    return d;
}

/* A soft cap: null (none), else a positive number. */
static HrStatus
get_softcap(JsonObject *o, const char *key, float *out, const char *label, HrError *err)
{
    JsonNode *n = json_object_get_member(o, key);
    if (n && JSON_NODE_HOLDS_NULL(n)) {
        *out = 0.0f;
        return HR_OK;
    }
    HrStatus st = get_float(o, key, out, label, err);
    if (st == HR_OK && !(*out >= 0.0f && *out < 1e30f))
        return hr_error_set(err, HR_ERR_FORMAT, "%s: \"%s\" must be a positive number or null", label, key);
    return st;
}

/* Gemma 3's own keys (transformers' Gemma3TextConfig, in the layout of the
 * checkpoints people have: rope_theta for the global layers with
 * rope_scaling, rope_local_base_freq for the sliding ones, the window's layers
 * by layer_types or else every sliding_window_pattern-th layer global). */
static HrStatus
parse_gemma3(JsonObject *o, HrModelConfig *cfg, const char *label, HrError *err)
{
    HrStatus st;
    cfg->norm_plus_one = true;
    cfg->sandwich_norms = true;
    cfg->embed_scale = sqrtf((float)cfg->dim);
    cfg->query_scale = 256.0f;
    const bool gemma2 = cfg->arch == HR_ARCH_GEMMA2;
    cfg->rope_local_theta = gemma2 ? 0.0f : 10000.0f;   /* Gemma 2: one base for every layer */
    cfg->layer_types = true;
    cfg->sliding_window = 4096;
    if (gemma2) {   /* transformers' Gemma2Config defaults */
        cfg->attn_softcap = 50.0f;
        cfg->final_softcap = 30.0f;
    }
    bool holds_one = false;   /* a GGUF's norms (gguf-meta.c says so) */
    if ((st = get_bool(o, "hearth_norms_hold_one", &holds_one, label, err)) != HR_OK ||
        (st = get_float(o, "query_pre_attn_scalar", &cfg->query_scale, label, err)) != HR_OK ||
        (!gemma2 && (st = get_float(o, "rope_local_base_freq", &cfg->rope_local_theta, label, err)) != HR_OK) ||
        (st = get_softcap(o, "attn_logit_softcapping", &cfg->attn_softcap, label, err)) != HR_OK ||
        (st = get_softcap(o, "final_logit_softcapping", &cfg->final_softcap, label, err)) != HR_OK ||
        (st = get_int(o, "sliding_window", &cfg->sliding_window, false, 1, label, err)) != HR_OK)
        return st;
    cfg->norm_plus_one = !holds_one;
    if (!(cfg->query_scale > 0.0f) || !(cfg->rope_local_theta > 0.0f || gemma2))
        return hr_error_set(err, HR_ERR_FORMAT, "%s: query_pre_attn_scalar and rope_local_base_freq must be "
                            "positive", label);
    bool bidi = false;
    if ((st = get_bool(o, "use_bidirectional_attention", &bidi, label, err)) != HR_OK)
        return st;
    if (bidi)
        return hr_error_set(err, HR_ERR_UNSUPPORTED, "%s: use_bidirectional_attention is not supported (an "
                            "embedding model, not a chat model)", label);
    memset(cfg->local_layers, 0, sizeof cfg->local_layers);
    JsonNode *lt = json_object_get_member(o, "layer_types");
    if (lt && !JSON_NODE_HOLDS_NULL(lt)) {
        JsonArray *a = JSON_NODE_HOLDS_ARRAY(lt) ? json_node_get_array(lt) : NULL;
        if (!a || json_array_get_length(a) != (guint)cfg->n_layers)
            return hr_error_set(err, HR_ERR_FORMAT, "%s: \"layer_types\" must list num_hidden_layers (%d) types",
                                label, cfg->n_layers);
        for (int l = 0; l < cfg->n_layers; l++) {
            JsonNode *e = json_array_get_element(a, (guint)l);
            const char *t = JSON_NODE_HOLDS_VALUE(e) && json_node_get_value_type(e) == G_TYPE_STRING
                                ? json_node_get_string(e) : "";
            if (strcmp(t, "sliding_attention") == 0)
                cfg->local_layers[l / 64] |= (uint64_t)1 << (l % 64);
            else if (strcmp(t, "full_attention") != 0)
                return hr_error_set(err, HR_ERR_FORMAT, "%s: \"layer_types\"[%d] must be \"sliding_attention\" or "
                                    "\"full_attention\"", label, l);
        }
    } else {
        int pattern = gemma2 ? 2 : 6;
        if ((st = get_int(o, "sliding_window_pattern", &pattern, false, 1, label, err)) != HR_OK)
            return st;
        for (int l = 0; l < cfg->n_layers; l++)
            if ((l + 1) % pattern != 0)
                cfg->local_layers[l / 64] |= (uint64_t)1 << (l % 64);
    }
    return HR_OK;
}

/* Every size the backends, the quantizer and the app multiply is checked
 * here, in 64-bit, against limits far above any real model (and every
 * derived one too: q_dim = n_heads x head_dim), so that no product of two of
 * them overflows an int or a size_t and nothing is allocated from an absurd
 * count before the tensors are checked. */
static HrStatus
check_sizes(const HrModelConfig *cfg, const char *label, HrError *err)
{
    const struct {
        const char *what;
        int64_t value, max;
    } sizes[] = {
        { "num_hidden_layers", cfg->n_layers, HR_MAX_LAYERS },
        { "hidden_size", cfg->dim, HR_MAX_WIDTH },
        { "intermediate_size", cfg->hidden_dim, HR_MAX_WIDTH },
        { "num_attention_heads", cfg->n_heads, HR_MAX_HEADS },
        { "num_key_value_heads", cfg->n_kv_heads, HR_MAX_HEADS },
        { "head_dim", cfg->head_dim, HR_MAX_HEAD_DIM },
        { "num_attention_heads x head_dim", (int64_t)cfg->n_heads * cfg->head_dim, HR_MAX_WIDTH },
        { "vocab_size", cfg->vocab_size, HR_MAX_VOCAB },
        { "max_position_embeddings", cfg->max_pos, HR_MAX_POSITIONS },
    };
    for (size_t i = 0; i < G_N_ELEMENTS(sizes); i++) {
        if (sizes[i].value > sizes[i].max)
            return hr_error_set(err, HR_ERR_UNSUPPORTED, "%s: %s = %" PRId64 " is larger than the %" PRId64
                                " Hearth supports", label, sizes[i].what, sizes[i].value, sizes[i].max);
    }
    return HR_OK;
}

HrStatus
hr_model_config_parse(const char *config_json, const char *generation_json, const char *label,
                      HrModelConfig *cfg, HrError *err)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->bos_id = -1;
    cfg->rope_theta = 10000.0f;
    cfg->norm_eps = 1e-6f;
    cfg->rope_factor = 1.0f;
    cfg->rec_temperature = cfg->rec_top_p = cfg->rec_min_p = cfg->rec_repetition_penalty = -1.0f;
    cfg->rec_top_k = -1;

    g_autoptr(JsonParser) parser = NULL;
    JsonObject *o = parse_object(&parser, config_json, label, err);
    if (!o)
        return err ? err->status : HR_ERR_FORMAT;

    /* Architecture: "architectures": ["LlamaForCausalLM"]. */
    JsonNode *an = json_object_get_member(o, "architectures");
    const char *arch = NULL;
    if (an && JSON_NODE_HOLDS_ARRAY(an) && json_array_get_length(json_node_get_array(an)) > 0) {
        JsonNode *first = json_array_get_element(json_node_get_array(an), 0);
        if (JSON_NODE_HOLDS_VALUE(first) && json_node_get_value_type(first) == G_TYPE_STRING)
            arch = json_node_get_string(first);
    }
    if (!arch)
        return hr_error_set(err, HR_ERR_FORMAT, "%s: \"architectures\" is missing or empty", label);
    g_strlcpy(cfg->arch_name, arch, sizeof cfg->arch_name);
    bool found = false;
    for (size_t i = 0; i < G_N_ELEMENTS(known_archs) && !found; i++) {
        if (strcmp(arch, known_archs[i].name) == 0) {
            cfg->arch = known_archs[i].arch;
            found = true;
        }
    }
    if (!found)
        return hr_error_set(err, HR_ERR_UNSUPPORTED,
                            "%s: architecture \"%s\" is not supported (supported: LlamaForCausalLM, "
                            "MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM, Gemma3ForCausalLM, "
                            "Gemma3ForConditionalGeneration, Gemma2ForCausalLM, Phi3ForCausalLM)", label, arch);

    HrStatus st;
    /* Gemma 3's image-text checkpoints (4B and up): the text model's config, which names only what differs from
     * transformers' Gemma3TextConfig defaults (the ids may stand beside it) */
    g_autoptr(JsonObject) text = NULL;
    JsonObject *top = o;
    if (strcmp(arch, "Gemma3ForConditionalGeneration") == 0) {
        JsonNode *tn = json_object_get_member(o, "text_config");
        if (!tn || !JSON_NODE_HOLDS_OBJECT(tn))
            return hr_error_set(err, HR_ERR_FORMAT, "%s: \"text_config\" is missing or not an object", label);
        text = gemma3_text_defaults();
        JsonObject *tc = json_node_get_object(tn);
        GList *names = json_object_get_members(tc);
        for (GList *l = names; l; l = l->next)
            json_object_set_member(text, l->data, json_node_copy(json_object_get_member(tc, l->data)));
        g_list_free(names);
        o = text;
    }
    const bool gemma = cfg->arch == HR_ARCH_GEMMA3 || cfg->arch == HR_ARCH_GEMMA2;
    const char *act;
    /* Gemma's configs say hidden_activation (older ones hidden_act) */
    if ((st = hr_json_get_string(o, "hidden_act", gemma ? "gelu_pytorch_tanh" : "silu", &act, label, err)) !=
            HR_OK ||
        (gemma && (st = hr_json_get_string(o, "hidden_activation", act, &act, label, err)) != HR_OK))
        return st;
    if (strcmp(act, "silu") == 0)
        cfg->act = HR_ACT_SILU;
    else if (strcmp(act, "gelu_pytorch_tanh") == 0 || (gemma && strcmp(act, "gelu") == 0))
        cfg->act = HR_ACT_GELU_TANH; /* (Gemma's "gelu" ran as the tanh form in its own code) */
    else
        return hr_error_set(err, HR_ERR_UNSUPPORTED, "%s: hidden_act \"%s\" is not supported (silu, "
                            "gelu_pytorch_tanh)", label, act);

    cfg->max_pos = 2048;
    if ((st = get_int(o, "hidden_size", &cfg->dim, true, 1, label, err)) != HR_OK ||
        (st = get_int(o, "num_hidden_layers", &cfg->n_layers, true, 1, label, err)) != HR_OK ||
        (st = get_int(o, "num_attention_heads", &cfg->n_heads, true, 1, label, err)) != HR_OK ||
        (st = get_int(o, "intermediate_size", &cfg->hidden_dim, true, 1, label, err)) != HR_OK ||
        (st = get_int(o, "vocab_size", &cfg->vocab_size, true, 1, label, err)) != HR_OK ||
        (st = get_int(o, "max_position_embeddings", &cfg->max_pos, false, 1, label, err)) != HR_OK)
        return st;
    cfg->n_kv_heads = cfg->n_heads;
    if ((st = get_int(o, "num_key_value_heads", &cfg->n_kv_heads, false, 1, label, err)) != HR_OK)
        return st;
    if (cfg->dim % cfg->n_heads != 0 && !json_object_has_member(o, "head_dim"))
        return hr_error_set(err, HR_ERR_FORMAT, "%s: hidden_size %d is not divisible by num_attention_heads %d",
                            label, cfg->dim, cfg->n_heads);
    cfg->head_dim = cfg->dim / cfg->n_heads;
    if ((st = get_int(o, "head_dim", &cfg->head_dim, false, 2, label, err)) != HR_OK)
        return st;
    if (cfg->head_dim % 2 != 0)
        return hr_error_set(err, HR_ERR_FORMAT, "%s: head_dim %d must be even for RoPE", label, cfg->head_dim);
    if (cfg->n_heads % cfg->n_kv_heads != 0)
        return hr_error_set(err, HR_ERR_FORMAT, "%s: num_attention_heads %d is not a multiple of "
                            "num_key_value_heads %d", label, cfg->n_heads, cfg->n_kv_heads);
    if ((st = check_sizes(cfg, label, err)) != HR_OK)
        return st;
    /* RoPE: rope_theta and rope_scaling at the top level, or (transformers 5) "rope_parameters": the scaling
     * object with rope_theta (and partial_rotary_factor) inside, or one such object per layer type,
     * "full_attention" and "sliding_attention" (Gemma 3's two bases) */
    JsonObject *rope = NULL, *rope_local = NULL;
    if ((st = get_object(o, "rope_parameters", &rope, label, err)) != HR_OK)
        return st;
    if (rope && (json_object_has_member(rope, "full_attention") || json_object_has_member(rope, "sliding_attention"))) {
        JsonObject *nested = rope;
        if ((st = get_object(nested, "full_attention", &rope, label, err)) != HR_OK ||
            (st = get_object(nested, "sliding_attention", &rope_local, label, err)) != HR_OK)
            return st;
        if (!rope)   /* every layer a sliding one: their parameters are the model's */
            rope = rope_local;
    }
    if (!rope && (st = get_object(o, "rope_scaling", &rope, label, err)) != HR_OK)
        return st;
    if ((st = get_float(o, "rms_norm_eps", &cfg->norm_eps, label, err)) != HR_OK ||
        (st = get_float(o, "rope_theta", &cfg->rope_theta, label, err)) != HR_OK ||
        (rope && (st = get_float(rope, "rope_theta", &cfg->rope_theta, label, err)) != HR_OK))
        return st;
    if (!(cfg->rope_theta > 0.0f) || !(cfg->norm_eps >= 0.0f))
        return hr_error_set(err, HR_ERR_FORMAT, "%s: rope_theta must be positive and rms_norm_eps non-negative", label);
    double partial = 1.0;
    for (int i = 0; i < 2; i++) {   /* the top level's, then rope_parameters' */
        JsonObject *from = i ? rope : o;
        if (from && !advice(from, "partial_rotary_factor", &partial) &&
            json_object_has_member(from, "partial_rotary_factor") &&
            !JSON_NODE_HOLDS_NULL(json_object_get_member(from, "partial_rotary_factor")))
            return hr_error_set(err, HR_ERR_FORMAT, "%s: \"partial_rotary_factor\" must be a number", label);
    }
    /* as transformers truncates it (the range first: a cast of an out-of-range double is undefined) */
    cfg->rotary_dim = partial > 0.0 && partial <= 1.0 ? (int)(cfg->head_dim * partial) : 0;
    if (cfg->rotary_dim < 2 || cfg->rotary_dim % 2 != 0)
        return hr_error_set(err, HR_ERR_FORMAT, "%s: partial_rotary_factor %g leaves %d of head_dim %d rotated "
                            "(an even number from 2 is needed)", label, partial, cfg->rotary_dim, cfg->head_dim);
    cfg->rope_attn_factor = 1.0f;
    if ((st = parse_rope_scaling(o, rope, cfg, label, err)) != HR_OK)
        return st;
    cfg->embed_scale = 1.0f;
    if (gemma && (st = parse_gemma3(o, cfg, label, err)) != HR_OK)
        return st;
    if (rope_local && rope_local != rope) {   /* the sliding-window layers' own parameters */
        const char *type = NULL;
        float theta = cfg->rope_theta;
        if ((st = hr_json_get_string(rope_local, "rope_type", "default", &type, label, err)) != HR_OK ||
            (st = get_float(rope_local, "rope_theta", &theta, label, err)) != HR_OK)
            return st;
        if (!(theta > 0.0f))
            return hr_error_set(err, HR_ERR_FORMAT, "%s: rope_theta must be positive", label);
        if (strcmp(type, "default") != 0 || (cfg->arch != HR_ARCH_GEMMA3 && theta != cfg->rope_theta))
            return hr_error_set(err, HR_ERR_UNSUPPORTED, "%s: sliding-window layers with RoPE of their own (%s, base "
                                "%g) are supported for Gemma 3 only, unscaled", label, type, (double)theta);
        if (cfg->arch == HR_ARCH_GEMMA3)
            cfg->rope_local_theta = theta;
    }

    /* transformers' Llama/Mistral/Qwen2 configs default to untied heads (Gemma's to tied). */
    cfg->tie_embeddings = gemma;
    if ((st = get_bool(o, "tie_word_embeddings", &cfg->tie_embeddings, label, err)) != HR_OK)
        return st;
    cfg->qkv_bias = cfg->arch == HR_ARCH_QWEN2;
    cfg->qk_norm = cfg->arch == HR_ARCH_QWEN3 || cfg->arch == HR_ARCH_GEMMA3;
    if ((cfg->arch == HR_ARCH_LLAMA || cfg->arch == HR_ARCH_QWEN3 || gemma) &&
        (st = get_bool(o, "attention_bias", &cfg->qkv_bias, label, err)) != HR_OK)
        return st;
    bool mlp_bias = false;
    if ((st = get_bool(o, "mlp_bias", &mlp_bias, label, err)) != HR_OK)
        return st;
    if (mlp_bias)
        return hr_error_set(err, HR_ERR_UNSUPPORTED, "%s: mlp_bias is not supported", label);

    /* Sliding-window attention: Mistral uses it when set; Qwen2 and Qwen3
     * only with use_sliding_window true. */
    if (cfg->arch != HR_ARCH_LLAMA && !gemma) {
        bool use_sw = cfg->arch == HR_ARCH_MISTRAL || cfg->arch == HR_ARCH_PHI3;
        if ((cfg->arch == HR_ARCH_QWEN2 || cfg->arch == HR_ARCH_QWEN3) &&
            (st = get_bool(o, "use_sliding_window", &use_sw, label, err)) != HR_OK)
            return st;
        if (use_sw && (st = get_int(o, "sliding_window", &cfg->sliding_window, false, 0, label, err)) != HR_OK)
            return st;
    }

    if ((st = parse_quantization(o, cfg, label, err)) != HR_OK)
        return st;

    int n = 0, bos[HR_MAX_EOS];
    if ((st = get_token_ids(o, "bos_token_id", bos, &n, HR_MAX_EOS, label, err)) != HR_OK)
        return st;
    if (n > 0)
        cfg->bos_id = bos[0];
    if ((st = get_token_ids(o, "eos_token_id", cfg->eos_ids, &cfg->n_eos, HR_MAX_EOS, label, err)) != HR_OK)
        return st;
    if (top != o) {   /* the image-text config's own ids, where it has them */
        int tb[HR_MAX_EOS], nb = 0, te[HR_MAX_EOS], ne = 0;
        if ((st = get_token_ids(top, "bos_token_id", tb, &nb, HR_MAX_EOS, label, err)) != HR_OK ||
            (st = get_token_ids(top, "eos_token_id", te, &ne, HR_MAX_EOS, label, err)) != HR_OK)
            return st;
        if (nb > 0)
            cfg->bos_id = tb[0];
        for (int i = 0; i < ne; i++)
            if (!hr_model_config_is_eos(cfg, te[i]) && cfg->n_eos < HR_MAX_EOS)
                cfg->eos_ids[cfg->n_eos++] = te[i];
    }

    if (generation_json) {
        g_autoptr(JsonParser) gp = NULL;
        g_autofree char *glabel = g_strdup_printf("%s (generation_config.json)", label);
        JsonObject *g = parse_object(&gp, generation_json, glabel, err);
        if (!g)
            return err ? err->status : HR_ERR_FORMAT;
        n = 0;
        if ((st = get_token_ids(g, "bos_token_id", bos, &n, HR_MAX_EOS, glabel, err)) != HR_OK)
            return st;
        if (n > 0)
            cfg->bos_id = bos[0];
        int geos[HR_MAX_EOS], ng = 0;
        if ((st = get_token_ids(g, "eos_token_id", geos, &ng, HR_MAX_EOS, glabel, err)) != HR_OK)
            return st;
        for (int i = 0; i < ng; i++) {
            if (!hr_model_config_is_eos(cfg, geos[i]) && cfg->n_eos < HR_MAX_EOS)
                cfg->eos_ids[cfg->n_eos++] = geos[i];
        }
        double v;
        if (advice(g, "temperature", &v) && v >= 0.0 && v <= 2.0)
            cfg->rec_temperature = (float)v;
        if (advice(g, "top_p", &v) && v > 0.0 && v <= 1.0)
            cfg->rec_top_p = (float)v;
        if (advice(g, "min_p", &v) && v >= 0.0 && v <= 1.0)
            cfg->rec_min_p = (float)v;
        if (advice(g, "repetition_penalty", &v) && v > 0.0 && v <= 10.0)
            cfg->rec_repetition_penalty = (float)v;
        if (advice(g, "top_k", &v) && v >= 0.0 && v <= 1e6 && v == floor(v))
            cfg->rec_top_k = (int)v;
    }
    if (cfg->bos_id >= cfg->vocab_size)
        cfg->bos_id = -1;
    return HR_OK;
}

HrStatus
hr_model_config_load(const char *dir, HrModelConfig *cfg, HrError *err)
{
    g_autofree char *gguf = NULL;
    HrStatus gst = hr_gguf_resolve(dir, &gguf, err);
    if (gst != HR_OK)
        return gst;
    if (gguf)
        return hr_gguf_model_config_load(gguf, cfg, err);
    g_autofree char *path = g_build_filename(dir, "config.json", NULL);
    g_autofree char *gpath = g_build_filename(dir, "generation_config.json", NULL);
    g_autofree char *text = NULL, *gtext = NULL;
    HrStatus st = hr_file_read_bounded(path, HR_JSON_CONFIG_MAX, &text, NULL, err);
    if (st == HR_OK && g_file_test(gpath, G_FILE_TEST_EXISTS))
        st = hr_file_read_bounded(gpath, HR_JSON_CONFIG_MAX, &gtext, NULL, err);
    if (st != HR_OK)
        return st;
    return hr_model_config_parse(text, gtext, path, cfg, err);
}

const char *
hr_model_config_family(const HrModelConfig *cfg)
{
    switch (cfg->arch) {
    case HR_ARCH_LLAMA: return "Llama";
    case HR_ARCH_MISTRAL: return "Mistral";
    case HR_ARCH_QWEN2: return "Qwen2";
    case HR_ARCH_QWEN3: return "Qwen3";
    case HR_ARCH_GEMMA3: return "Gemma 3";
    case HR_ARCH_GEMMA2: return "Gemma 2";
    case HR_ARCH_PHI3: return "Phi-3";
    }
    return cfg->arch_name;
}

int
hr_model_config_rotary_dim(const HrModelConfig *cfg)
{
    return cfg->rotary_dim > 0 && cfg->rotary_dim <= cfg->head_dim ? cfg->rotary_dim : cfg->head_dim;
}

bool
hr_model_config_rope_long(const HrModelConfig *cfg, int last_pos)
{
    return cfg->rope_scaling == HR_ROPE_LONGROPE && last_pos + 1 > cfg->rope_original_max_pos;
}

bool
hr_model_config_layer_local(const HrModelConfig *cfg, int l)
{
    if (!cfg->layer_types)
        return cfg->sliding_window > 0;
    return l >= 0 && l < cfg->n_layers && (cfg->local_layers[l / 64] >> (l % 64) & 1);
}

int
hr_model_config_layer_window(const HrModelConfig *cfg, int l)
{
    return cfg->sliding_window > 0 && hr_model_config_layer_local(cfg, l) ? cfg->sliding_window : 0;
}

bool
hr_model_config_is_eos(const HrModelConfig *cfg, int token)
{
    for (int i = 0; i < cfg->n_eos; i++) {
        if (cfg->eos_ids[i] == token)
            return true;
    }
    return false;
}
