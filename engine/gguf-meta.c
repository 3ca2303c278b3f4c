/* gguf-meta.c — a GGUF file's metadata as the Hugging Face JSON texts the
 * engine already reads (config.json, generation_config.json, tokenizer.json,
 * tokenizer_config.json).
 *
 * The JSON is built with json-glib's builder, never by pasting strings, and
 * every string that goes into it (tokens, merges, the chat template) is
 * checked first: valid UTF-8 without NUL bytes, so the text always passes
 * hr_json_load. Every key is read with its type checked; a key of the wrong
 * type, a value out of range or a token id past the vocabulary is an error
 * naming the file and the key.
 *
 * config.json (llama.cpp's names -> transformers'):
 *   <arch>.embedding_length -> hidden_size, .block_count -> num_hidden_layers,
 *   .attention.head_count(_kv) -> num_attention_heads (num_key_value_heads),
 *   .feed_forward_length -> intermediate_size, .context_length ->
 *   max_position_embeddings, .attention.layer_norm_rms_epsilon ->
 *   rms_norm_eps, .rope.freq_base -> rope_theta (default 10000),
 *   .attention.key_length -> head_dim, .vocab_size (else token_embd's rows,
 *   else the token count) -> vocab_size; no output.weight -> tied embeddings.
 *   Rope scaling: rope.scaling.type "linear" with rope.scaling.factor; Llama
 *   3.1-style scaling, which llama.cpp's converter stores only as the
 *   per-frequency divisors of a rope_freqs.weight tensor, is recovered by
 *   fitting factor, low_freq_factor and high_freq_factor to that tensor
 *   (original_max_position_embeddings 8192, what the converter assumes) and
 *   accepted only when those values reproduce every divisor.
 *   gemma2: as gemma3 without q/k norms, local base or Ollama's quirks,
 *   every other layer global, the caps from attn_logit_softcapping /
 *   final_logit_softcapping (default 50, 30), the 46-layer 27B's query scale.
 *   gemma3 (Gemma 3's text model; llama.cpp's converter stores its norms
 *   as 1 + w, said to the config by "hearth_norms_hold_one"): the window
 *   from .attention.sliding_window, every sixth layer global, the local
 *   RoPE base 10000 (or .rope.freq_base_swa), query_pre_attn_scalar
 *   head_dim except in the 62-layer 27B, as llama.cpp assumes them.
 * generation_config.json: bos, and eos = tokenizer.ggml.eos_token_id, then
 *   eot_token_id and eom_token_id when they differ (Gemma: <end_of_turn>,
 *   found by its text).
 *
 * tokenizer.json:
 *   "gpt2": byte-level BPE, vocabulary from tokenizer.ggml.tokens (every
 *   token, so ids are the GGUF's), merges from tokenizer.ggml.merges, tokens
 *   of type UNKNOWN and CONTROL as special added tokens and USER_DEFINED as
 *   plain added tokens (as transformers' SentencePiece converter does, and as
 *   llama.cpp's converter assigned the types), and the normalizer and
 *   pre-tokenizer of the Hugging Face model that tokenizer.ggml.pre names:
 *     default, gpt-2, gpt2 (or absent): ByteLevel with the GPT-2 regex
 *     smollm, starcoder, refact, codeshell: Digits (each digit) + ByteLevel
 *     llama-bpe, llama3, llama-v3: the Llama 3 Split regex + ByteLevel, and
 *       ignore_merges (as Llama 3's tokenizer.json and llama.cpp)
 *     qwen2: NFC + the Qwen2 Split regex + ByteLevel
 *     gpt-4o (Phi-4-mini): OpenAI's o200k Split regex + ByteLevel
 *   "llama": SentencePiece BPE with byte fallback in the layout of Llama 2's
 *   tokenizer.json (Prepend "▁" + Replace " " -> "▁" unless
 *   tokenizer.ggml.add_space_prefix is false, or absent in a gemma3 file;
 *   unk fused), merges derived from
 *   tokenizer.ggml.scores exactly as transformers' SentencePieceExtractor
 *   does (every split of every token into two tokens, ranked by the token's
 *   score, highest first, ties in token order, then by the ids of the two
 *   halves) — which reproduces Llama 2's published merges.
 *   Either way the CONTROL, UNKNOWN and USER_DEFINED tokens are added tokens
 *   matched in the raw text first (SentencePiece's rule for user-defined
 *   pieces, and llama.cpp's: Gemma's runs of spaces, newlines and HTML tags).
 * tokenizer_config.json: add_bos_token / add_eos_token
 *   (tokenizer.ggml.add_bos_token, default true for "llama" and Llama 3),
 *   bos/eos/unk/pad tokens by content, chat_template from
 *   tokenizer.chat_template, added_tokens_decoder.
 * hr_gguf_tokenizer loads the same tokenizer without writing its vocabulary
 * and merges into the JSON: they go to hr_tokenizer_load_with_tables as ids
 * (Gemma 3's 262k pieces and 0.5M derived merges took 4.4 s through JSON
 * text, 0.6 s so); hr_gguf_tokenizer_json writes the whole text (tests, the
 * fuzzer and `hearth-cli template` read it).
 */
#include "gguf.h"
#include "hr-json.h"
#include "tokenizer-private.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>
#include <json-glib/json-glib.h>

#define MAX_TOKENS ((size_t)1 << 24)
/* Deriving SentencePiece merges looks at every split of every token, at a
 * cost of about the square of its length: the sum of those squares is
 * capped (Llama 2: 1.6 million; a 256k vocabulary of 100-byte tokens: 2.6
 * billion would be far past any real one), and so is the text of the merges
 * (the size tokenizer.json may have). */
#define MAX_SPLIT_WORK ((uint64_t)1 << 31)
#define MAX_MERGES_BYTES ((uint64_t)256 << 20)
#define CONFIG_INT_MAX ((int64_t)1 << 30)
#define LLAMA3_ORIGINAL_CONTEXT 8192
/* The largest rope_theta or rope factor taken (real ones: up to ~1e8);
 * nothing real is refused. */
#define MAX_FLOAT_VALUE 1e12

/* GGUF token types (llama.cpp's llama_token_type). */
enum {
    TOKEN_UNDEFINED = 0,
    TOKEN_NORMAL = 1,
    TOKEN_UNKNOWN = 2,
    TOKEN_CONTROL = 3,
    TOKEN_USER_DEFINED = 4,
    TOKEN_UNUSED = 5,
    TOKEN_BYTE = 6,
};

/* ------------------------------------------------------------ typed keys */

/* An integer key in [min, max]: HR_OK with *found false when absent (an
 * error when required); an error when of another type or out of range. */
static HrStatus
key_int(const HrGguf *g, const char *key, bool required, int64_t min, int64_t max, int64_t *out, bool *found,
        HrError *err)
{
    const char *f = hr_gguf_path(g);
    HrGgufValueType t;
    if (found)
        *found = false;
    if (!hr_gguf_get_type(g, key, &t)) {
        if (required)
            return hr_error_set(err, HR_ERR_FORMAT, "%s: GGUF key '%s' is missing", f, key);
        return HR_OK;
    }
    if (t == HR_GGUF_ARRAY)
        return hr_error_set(err, HR_ERR_UNSUPPORTED, "%s: GGUF key '%s' is an array (per-layer values are not "
                            "supported)", f, key);
    int64_t v;
    if (!hr_gguf_get_int(g, key, &v))
        return hr_error_set(err, HR_ERR_FORMAT, "%s: GGUF key '%s' is a %s, not an integer", f, key,
                            hr_gguf_value_type_name(t));
    if (v < min || v > max)
        return hr_error_set(err, HR_ERR_FORMAT, "%s: GGUF key '%s' = %" PRId64 " is out of range (%" PRId64 " to %"
                            PRId64 ")", f, key, v, min, max);
    *out = v;
    if (found)
        *found = true;
    return HR_OK;
}

/* A finite number. */
static HrStatus
key_float(const HrGguf *g, const char *key, bool required, double *out, bool *found, HrError *err)
{
    const char *f = hr_gguf_path(g);
    HrGgufValueType t;
    if (found)
        *found = false;
    if (!hr_gguf_get_type(g, key, &t)) {
        if (required)
            return hr_error_set(err, HR_ERR_FORMAT, "%s: GGUF key '%s' is missing", f, key);
        return HR_OK;
    }
    double v;
    if (!hr_gguf_get_float(g, key, &v))
        return hr_error_set(err, HR_ERR_FORMAT, "%s: GGUF key '%s' is a %s, not a number", f, key,
                            hr_gguf_value_type_name(t));
    if (!isfinite(v))
        return hr_error_set(err, HR_ERR_FORMAT, "%s: GGUF key '%s' is not finite", f, key);
    *out = v;
    if (found)
        *found = true;
    return HR_OK;
}

static HrStatus
key_bool(const HrGguf *g, const char *key, bool def, bool *out, HrError *err)
{
    HrGgufValueType t;
    *out = def;
    if (!hr_gguf_get_type(g, key, &t))
        return HR_OK;
    if (!hr_gguf_get_bool(g, key, out))
        return hr_error_set(err, HR_ERR_FORMAT, "%s: GGUF key '%s' is a %s, not a bool", hr_gguf_path(g), key,
                            hr_gguf_value_type_name(t));
    return HR_OK;
}

/* A string that can go into JSON: valid UTF-8 without NUL. *out NULL when
 * absent and not required. */
static HrStatus
key_str(const HrGguf *g, const char *key, bool required, const char **out, HrError *err)
{
    const char *f = hr_gguf_path(g);
    HrGgufValueType t;
    *out = NULL;
    if (!hr_gguf_get_type(g, key, &t)) {
        if (required)
            return hr_error_set(err, HR_ERR_FORMAT, "%s: GGUF key '%s' is missing", f, key);
        return HR_OK;
    }
    const char *s;
    size_t len;
    if (!hr_gguf_get_str_len(g, key, &s, &len))
        return hr_error_set(err, HR_ERR_FORMAT, "%s: GGUF key '%s' is a %s, not a string", f, key,
                            hr_gguf_value_type_name(t));
    /* g_utf8_validate with a length refuses NUL bytes too. */
    const char *bad;
    if (!g_utf8_validate(s, (gssize)len, &bad))
        return hr_error_set(err, HR_ERR_FORMAT, "%s: GGUF key '%s' is not valid UTF-8 or holds a NUL byte (at its "
                            "byte %zu)", f, key, (size_t)(bad - s));
    *out = s;
    return HR_OK;
}

static char *
arch_key(const char *arch, const char *name)
{
    return g_strdup_printf("%s.%s", arch, name);
}

/* ------------------------------------------------------------ JSON output */

static void
member_int(JsonBuilder *b, const char *name, int64_t v)
{
    json_builder_set_member_name(b, name);
    json_builder_add_int_value(b, v);
}

static void
member_double(JsonBuilder *b, const char *name, double v)
{
    json_builder_set_member_name(b, name);
    json_builder_add_double_value(b, v);
}

static void
member_bool(JsonBuilder *b, const char *name, bool v)
{
    json_builder_set_member_name(b, name);
    json_builder_add_boolean_value(b, v);
}

static void
member_string(JsonBuilder *b, const char *name, const char *v)
{
    json_builder_set_member_name(b, name);
    if (v)
        json_builder_add_string_value(b, v);
    else
        json_builder_add_null_value(b);
}

static void
member_null(JsonBuilder *b, const char *name)
{
    json_builder_set_member_name(b, name);
    json_builder_add_null_value(b);
}

/* The builder's JSON text, by hr_json_to_text: json-glib 1.6's generator
 * writes U+001F raw (real vocabularies hold it: Llama 2 has a token for it)
 * and some doubles as "1e+30.0", neither of them JSON. */
static char *
builder_text(JsonBuilder *b)
{
    JsonNode *root = json_builder_get_root(b);
    char *text = hr_json_to_text(root, false, NULL);
    json_node_unref(root);
    return text;
}

/* The shortest decimal that reads back as the same float32, as a double
 * (rms_norm_eps 1e-05, not 9.99999974737875e-06), when v is a float32. */
static double
shortest_f32(double v)
{
    float f = (float)v;
    if ((double)f != v)
        return v;
    for (int p = 1; p <= 9; p++) {
        char buf[64];
        g_snprintf(buf, sizeof buf, "%.*g", p, v);
        if (strtof(buf, NULL) == f)
            return g_ascii_strtod(buf, NULL);
    }
    return v;
}

/* ------------------------------------------------------------ config.json */

/* The tokens a model can take: Ollama's Gemma 3 files list more than
 * token_embd has rows (multimodal tokens such as <image_soft_token>), which no
 * text can use; the rest are the model's. Elsewhere every token. */
static size_t
usable_tokens(const HrGguf *g, size_t n)
{
    const char *arch = NULL;
    const HrGgufTensor *embd = hr_gguf_find(g, "token_embd.weight");
    if (hr_gguf_get_str(g, "general.architecture", &arch) && strcmp(arch, "gemma3") == 0 && embd &&
        embd->n_dims == 2 && embd->ne[1] > 0 && (uint64_t)embd->ne[1] < n)
        return (size_t)embd->ne[1];
    return n;
}

bool
hr_gguf_arch_is_gemma(const char *arch)
{
    return arch && (strcmp(arch, "gemma3") == 0 || strcmp(arch, "gemma2") == 0);
}

/* The id of the token whose text is s in tokenizer.ggml.tokens, or -1. */
static int64_t
find_token(const HrGguf *g, const char *s, int64_t n_vocab)
{
    HrGgufValueType et;
    size_t count, len, want = strlen(s);
    if (!hr_gguf_get_array(g, "tokenizer.ggml.tokens", &et, &count) || et != HR_GGUF_STRING)
        return -1;
    for (size_t i = 0; i < count && (int64_t)i < n_vocab; i++) {
        const char *t = hr_gguf_array_str(g, "tokenizer.ggml.tokens", i, &len);
        if (t && len == want && memcmp(t, s, want) == 0)
            return (int64_t)i;
    }
    return -1;
}

typedef struct {
    const char *arch;
    const char *hf_arch;
    const char *model_type;
} ArchInfo;

static const ArchInfo archs[] = {
    { "llama", "LlamaForCausalLM", "llama" },
    { "qwen2", "Qwen2ForCausalLM", "qwen2" },
    { "qwen3", "Qwen3ForCausalLM", "qwen3" },   /* + blk.N.attn_q_norm / attn_k_norm */
    { "gemma3", "Gemma3ForCausalLM", "gemma3_text" },   /* + the norms after attention and MLP */
    { "gemma2", "Gemma2ForCausalLM", "gemma2" },         /* + soft caps, no q/k norms */
    { "phi3", "Phi3ForCausalLM", "phi3" },               /* + blk.N.attn_qkv, a fused ffn_up, LongRoPE */
};

typedef struct {
    bool any;              /* rope_scaling present */
    const char *type;      /* "linear", "llama3" */
    double factor, low, high;
    int original;
} RopeScaling;

static double
round_to(double v, double step)
{
    return round(v / step) * step;
}

/* Whether (factor, low, high, original) reproduce the divisors vals[0..n)
 * llama.cpp's converter computes for Llama 3 rope scaling. */
static bool
llama3_matches(const float *vals, int n, int head_dim, double theta, double factor, double low, double high,
               int original)
{
    if (!(factor > 1.0 && factor <= MAX_FLOAT_VALUE) || !(low > 0.0) || !(high > low && high <= MAX_FLOAT_VALUE))
        return false;
    double low_wavelen = original / low, high_wavelen = original / high;
    for (int i = 0; i < n; i++) {
        double freq = 1.0 / pow(theta, (2.0 * i) / head_dim);
        double wavelen = 2.0 * G_PI / freq;
        double want;
        if (wavelen < high_wavelen) {
            want = 1.0;
        } else if (wavelen > low_wavelen) {
            want = factor;
        } else {
            double smooth = (original / wavelen - low) / (high - low);
            want = 1.0 / ((1.0 - smooth) / factor + smooth);
        }
        if (fabs(want - vals[i]) > 1e-4 * fabs(want))
            return false;
    }
    return true;
}

/* Llama 3 rope scaling from the rope_freqs tensor. rs->any stays false when
 * every divisor is 1 (no scaling). */
static HrStatus
rope_from_freqs(const HrGguf *g, const HrGgufTensor *t, int head_dim, double theta, RopeScaling *rs, HrError *err)
{
    const char *f = hr_gguf_path(g);
    int n = head_dim / 2;
    if (t->type != HR_GGML_F32 || t->n_dims != 1 || t->ne[0] != n)
        return hr_error_set(err, HR_ERR_UNSUPPORTED, "%s: tensor '%s' is %s with %" PRId64 " elements; rope "
                            "frequency factors are F32 with head_dim / 2 = %d", f, t->name,
                            hr_ggml_type_name(t->type), hr_gguf_tensor_numel(t), n);
    float *vals = g_new(float, (size_t)n);
    memcpy(vals, t->data, (size_t)n * sizeof *vals);
    double fmax = 1.0;
    HrStatus st = HR_OK;
    for (int i = 0; i < n && st == HR_OK; i++) {
        if (!isfinite(vals[i]) || vals[i] < 1.0f - 1e-6f)
            st = hr_error_set(err, HR_ERR_UNSUPPORTED, "%s: tensor '%s': factor %d is %g; rope frequency factors "
                              "below 1 are not supported", f, t->name, i, (double)vals[i]);
        else if (vals[i] > fmax)
            fmax = vals[i];
    }
    if (st != HR_OK || fmax <= 1.0 + 1e-6) {
        g_free(vals);
        return st;
    }
    /* The divisors between 1 and factor lie on 1/v = 1/factor + s (1 - 1/factor)
     * with s = A freq + B, A = original / (2 pi (high - low)), B = -low / (high - low). */
    double sx = 0, sy = 0, sxx = 0, sxy = 0;
    int m = 0;
    for (int i = 0; i < n; i++) {
        double v = vals[i];
        if (v <= 1.0 + 1e-4 || v >= fmax * (1.0 - 1e-4))
            continue;
        double x = 1.0 / pow(theta, (2.0 * i) / head_dim);
        double s = (1.0 / v - 1.0 / fmax) / (1.0 - 1.0 / fmax);
        sx += x;
        sy += s;
        sxx += x * x;
        sxy += x * s;
        m++;
    }
    double cand[4][2] = { { 1.0, 4.0 } };  /* (low, high): Llama 3.1 and 3.2's own values first */
    int n_cand = 1;
    double den = m * sxx - sx * sx;
    if (m >= 2 && den != 0.0) {
        double a = (m * sxy - sx * sy) / den, b = (sy - a * sx) / m;
        if (a > 0.0) {
            double width = LLAMA3_ORIGINAL_CONTEXT / (2.0 * G_PI * a), low = -b * width;
            cand[n_cand][0] = round_to(low, 1e-3);
            cand[n_cand++][1] = round_to(low + width, 1e-3);
            cand[n_cand][0] = low;
            cand[n_cand++][1] = low + width;
        }
    }
    double factors[2] = { round_to(fmax, 1e-3), fmax };
    for (int c = 0; c < n_cand && !rs->any; c++) {
        for (int k = 0; k < 2 && !rs->any; k++) {
            if (llama3_matches(vals, n, head_dim, theta, factors[k], cand[c][0], cand[c][1],
                               LLAMA3_ORIGINAL_CONTEXT)) {
                rs->any = true;
                rs->type = "llama3";
                rs->factor = factors[k];
                rs->low = cand[c][0];
                rs->high = cand[c][1];
                rs->original = LLAMA3_ORIGINAL_CONTEXT;
            }
        }
    }
    g_free(vals);
    if (!rs->any)
        return hr_error_set(err, HR_ERR_UNSUPPORTED, "%s: tensor '%s' holds rope frequency factors (up to %g) that "
                            "are not Llama 3 rope scaling; they are not supported", f, t->name, fmax);
    return HR_OK;
}

static HrStatus
parse_rope_scaling(const HrGguf *g, const char *arch, int head_dim, double theta, RopeScaling *rs, HrError *err)
{
    const char *f = hr_gguf_path(g);
    memset(rs, 0, sizeof *rs);
    g_autofree char *type_key = arch_key(arch, "rope.scaling.type");
    g_autofree char *factor_key = arch_key(arch, "rope.scaling.factor");
    const char *type;
    HrStatus st = key_str(g, type_key, false, &type, err);
    if (st != HR_OK)
        return st;
    const HrGgufTensor *freqs = hr_gguf_find(g, "rope_freqs.weight");
    if (type && strcmp(type, "none") != 0) {
        if (strcmp(type, "linear") != 0)
            return hr_error_set(err, HR_ERR_UNSUPPORTED, "%s: rope scaling type '%s' (%s) is not supported "
                                "(supported: none, linear, and Llama 3's through rope_freqs)", f, type, type_key);
        if (freqs)
            return hr_error_set(err, HR_ERR_UNSUPPORTED, "%s: linear rope scaling together with rope_freqs.weight "
                                "is not supported", f);
        bool found;
        if ((st = key_float(g, factor_key, true, &rs->factor, &found, err)) != HR_OK)
            return st;
        if (!(rs->factor > 0.0 && rs->factor <= MAX_FLOAT_VALUE))
            return hr_error_set(err, HR_ERR_FORMAT, "%s: GGUF key '%s' = %g is out of range (above 0, at most 1e12)",
                                f, factor_key, rs->factor);
        rs->any = true;
        rs->type = "linear";
        rs->factor = shortest_f32(rs->factor);
        return HR_OK;
    }
    if (freqs)
        return rope_from_freqs(g, freqs, head_dim, theta, rs, err);
    return HR_OK;
}

/* A token id key: absent -> -1; else 0 <= id < n_vocab. */
static HrStatus
key_token_id(const HrGguf *g, const char *key, int64_t n_vocab, int64_t *out, HrError *err)
{
    bool found;
    *out = -1;
    HrStatus st = key_int(g, key, false, 0, INT32_MAX, out, &found, err);
    if (st != HR_OK)
        return st;
    if (found && *out >= n_vocab)
        return hr_error_set(err, HR_ERR_FORMAT, "%s: GGUF key '%s' = %" PRId64 " is past the vocabulary of %" PRId64
                            " tokens", hr_gguf_path(g), key, *out, n_vocab);
    if (!found)
        *out = -1;
    return HR_OK;
}

typedef struct {
    int64_t dim, n_layers, n_heads, n_kv_heads, hidden, max_pos, head_dim, vocab;
    double eps, theta;
    RopeScaling rope;
    bool tie, attn_bias;
    int64_t bos, eos, eot, eom, pad;
    /* gemma3: what llama.cpp reads or assumes (llama-model.cpp's LLM_ARCH_GEMMA3) */
    int64_t window, swa_pattern;
    double local_theta, query_scale;
    double attn_softcap, final_softcap;   /* gemma2 */
    bool *local_layers;    /* attention.sliding_window_pattern as a list (Ollama), else NULL: g_free */
    /* phi3 */
    int64_t rot_dim, phi_window, orig_ctx;
    double attn_factor;
    const HrGgufTensor *factors_long, *factors_short;   /* LongRoPE: F32 [rot_dim / 2] each, or NULL */
} Config;

/* phi3 as llama.cpp's converter writes it: the window from
 * attention.sliding_window (0: none, Phi-4), and LongRoPE as the
 * rope_factors_long / rope_factors_short tensors (F32, rot_dim / 2 each) with
 * rope.scaling.original_context_length and rope.scaling.attn_factor. */
static HrStatus
read_phi3(const HrGguf *g, Config *c, HrError *err)
{
    const char *f = hr_gguf_path(g);
    HrStatus st;
    bool found;
    c->orig_ctx = c->max_pos;
    c->attn_factor = 0.0;
    if ((st = key_int(g, "phi3.attention.sliding_window", false, 0, CONFIG_INT_MAX, &c->phi_window, NULL, err)) ||
        (st = key_int(g, "phi3.rope.scaling.original_context_length", false, 1, CONFIG_INT_MAX, &c->orig_ctx, NULL,
                      err)) ||
        (st = key_float(g, "phi3.rope.scaling.attn_factor", false, &c->attn_factor, &found, err)))
        return st;
    if (found && !(c->attn_factor > 0.0 && c->attn_factor <= MAX_FLOAT_VALUE))
        return hr_error_set(err, HR_ERR_FORMAT, "%s: GGUF key 'phi3.rope.scaling.attn_factor' = %g is out of range",
                            f, c->attn_factor);
    c->factors_long = hr_gguf_find(g, "rope_factors_long.weight");
    c->factors_short = hr_gguf_find(g, "rope_factors_short.weight");
    if (!c->factors_long != !c->factors_short)
        return hr_error_set(err, HR_ERR_FORMAT, "%s: one of rope_factors_long.weight and rope_factors_short.weight "
                            "without the other", f);
    const HrGgufTensor *ts[2] = { c->factors_long, c->factors_short };
    for (int i = 0; i < 2 && ts[0]; i++) {
        if (ts[i]->type != HR_GGML_F32 || ts[i]->n_dims != 1 || ts[i]->ne[0] != c->rot_dim / 2)
            return hr_error_set(err, HR_ERR_FORMAT, "%s: tensor '%s' must be F32 [%" PRId64 "] (half the rotary "
                                "dimensions)", f, ts[i]->name, c->rot_dim / 2);
        for (int64_t k = 0; k < c->rot_dim / 2; k++) {
            float v;
            memcpy(&v, (const uint8_t *)ts[i]->data + 4 * k, 4);
            if (!(v > 0.0f && v < 1e30f))
                return hr_error_set(err, HR_ERR_FORMAT, "%s: tensor '%s'[%" PRId64 "] = %g is not a positive factor",
                                    f, ts[i]->name, k, (double)v);
        }
    }
    return HR_OK;
}

/* A factors tensor (checked by read_phi3) as a JSON list. */
static void
member_factors(JsonBuilder *b, const char *name, const HrGgufTensor *t)
{
    json_builder_set_member_name(b, name);
    json_builder_begin_array(b);
    for (int64_t k = 0; k < t->ne[0]; k++) {
        float v;
        memcpy(&v, (const uint8_t *)t->data + 4 * k, 4);
        json_builder_add_double_value(b, shortest_f32(v));
    }
    json_builder_end_array(b);
}

/* Gemma 3's attention.sliding_window_pattern: one bool per layer (Ollama's
 * newer converter: true for a sliding-window layer), or absent. */
static HrStatus
layer_pattern(const HrGguf *g, Config *c, HrError *err)
{
    const char *key = "gemma3.attention.sliding_window_pattern";
    HrGgufValueType t, et;
    size_t n;
    if (!hr_gguf_get_type(g, key, &t))
        return HR_OK;
    if (!hr_gguf_get_array(g, key, &et, &n) || et != HR_GGUF_BOOL || (int64_t)n != c->n_layers)
        return hr_error_set(err, HR_ERR_FORMAT, "%s: GGUF key '%s' must list a bool for each of the %" PRId64
                            " layers", hr_gguf_path(g), key, c->n_layers);
    const uint8_t *d = hr_gguf_array_data(g, key);   /* a byte each */
    c->local_layers = g_new(bool, n);
    for (size_t i = 0; i < n; i++)
        c->local_layers[i] = d[i] != 0;
    return HR_OK;
}

static HrStatus
read_config(const HrGguf *g, const char *arch, Config *c, HrError *err)
{
    const char *f = hr_gguf_path(g);
    HrStatus st;
    bool found;
    memset(c, 0, sizeof *c);
    g_autofree char *k_dim = arch_key(arch, "embedding_length");
    g_autofree char *k_layers = arch_key(arch, "block_count");
    g_autofree char *k_heads = arch_key(arch, "attention.head_count");
    g_autofree char *k_kv = arch_key(arch, "attention.head_count_kv");
    g_autofree char *k_ff = arch_key(arch, "feed_forward_length");
    g_autofree char *k_ctx = arch_key(arch, "context_length");
    g_autofree char *k_eps = arch_key(arch, "attention.layer_norm_rms_epsilon");
    g_autofree char *k_theta = arch_key(arch, "rope.freq_base");
    g_autofree char *k_klen = arch_key(arch, "attention.key_length");
    g_autofree char *k_vlen = arch_key(arch, "attention.value_length");
    g_autofree char *k_rope_dim = arch_key(arch, "rope.dimension_count");
    g_autofree char *k_vocab = arch_key(arch, "vocab_size");
    g_autofree char *k_experts = arch_key(arch, "expert_count");
    if ((st = key_int(g, k_dim, true, 1, CONFIG_INT_MAX, &c->dim, NULL, err)) != HR_OK ||
        (st = key_int(g, k_layers, true, 1, CONFIG_INT_MAX, &c->n_layers, NULL, err)) != HR_OK ||
        (st = key_int(g, k_heads, true, 1, CONFIG_INT_MAX, &c->n_heads, NULL, err)) != HR_OK ||
        (st = key_int(g, k_ff, true, 1, CONFIG_INT_MAX, &c->hidden, NULL, err)) != HR_OK ||
        (st = key_int(g, k_ctx, true, 1, CONFIG_INT_MAX, &c->max_pos, NULL, err)) != HR_OK)
        return st;
    c->n_kv_heads = c->n_heads;
    if ((st = key_int(g, k_kv, false, 1, CONFIG_INT_MAX, &c->n_kv_heads, NULL, err)) != HR_OK)
        return st;
    int64_t experts = 0;
    if ((st = key_int(g, k_experts, false, 0, CONFIG_INT_MAX, &experts, NULL, err)) != HR_OK)
        return st;
    if (experts > 0)
        return hr_error_set(err, HR_ERR_UNSUPPORTED, "%s: a mixture-of-experts model (%s = %" PRId64 ") is not "
                            "supported", f, k_experts, experts);
    /* Gemma 3 as Ollama writes it: no epsilon (1e-6), the bases as rope.global / rope.local.freq_base */
    const bool gemma3 = strcmp(arch, "gemma3") == 0;
    c->eps = 1e-6;
    if ((st = key_float(g, k_eps, !gemma3, &c->eps, NULL, err)) != HR_OK)
        return st;
    if (!(c->eps >= 0.0 && c->eps <= 1.0))
        return hr_error_set(err, HR_ERR_FORMAT, "%s: GGUF key '%s' = %g is out of range (0 to 1)", f, k_eps, c->eps);
    c->theta = gemma3 ? 1e6 : 10000.0;
    if ((st = key_float(g, k_theta, false, &c->theta, &found, err)) != HR_OK ||
        (gemma3 && !found && (st = key_float(g, "gemma3.rope.global.freq_base", false, &c->theta, NULL, err)) != HR_OK))
        return st;
    if (!(c->theta > 0.0 && c->theta <= MAX_FLOAT_VALUE))
        return hr_error_set(err, HR_ERR_FORMAT, "%s: GGUF key '%s' = %g is out of range (above 0, at most 1e12)", f,
                            k_theta, c->theta);

    /* head_dim: attention.key_length, else embedding_length / head_count. */
    if ((st = key_int(g, k_klen, false, 1, CONFIG_INT_MAX, &c->head_dim, &found, err)) != HR_OK)
        return st;
    if (!found) {
        if (c->dim % c->n_heads != 0)
            return hr_error_set(err, HR_ERR_FORMAT, "%s: %s %" PRId64 " is not a multiple of %s %" PRId64 " and %s "
                                "is missing", f, k_dim, c->dim, k_heads, c->n_heads, k_klen);
        c->head_dim = c->dim / c->n_heads;
    }
    int64_t v;
    if ((st = key_int(g, k_vlen, false, 1, CONFIG_INT_MAX, &v, &found, err)) != HR_OK)
        return st;
    if (found && v != c->head_dim)
        return hr_error_set(err, HR_ERR_UNSUPPORTED, "%s: %s %" PRId64 " differs from the key length %" PRId64 "; "
                            "that is not supported", f, k_vlen, v, c->head_dim);
    if ((st = key_int(g, k_rope_dim, false, 1, CONFIG_INT_MAX, &v, &found, err)) != HR_OK)
        return st;
    c->rot_dim = found ? v : c->head_dim;
    if (found && v != c->head_dim && (strcmp(arch, "phi3") != 0 || v > c->head_dim || v % 2 != 0))
        return hr_error_set(err, HR_ERR_UNSUPPORTED, "%s: %s %" PRId64 " is not head_dim %" PRId64 " (partial "
                            "rotary embeddings are supported in phi3 only)", f, k_rope_dim, v, c->head_dim);
    if (c->head_dim % 2 != 0)
        return hr_error_set(err, HR_ERR_FORMAT, "%s: head_dim %" PRId64 " must be even for RoPE", f, c->head_dim);

    /* vocab_size: the key, else token_embd's rows, else the token count. */
    size_t n_tokens = 0;
    HrGgufValueType et;
    bool have_tokens = hr_gguf_get_array(g, "tokenizer.ggml.tokens", &et, &n_tokens) && et == HR_GGUF_STRING;
    const HrGgufTensor *embd = hr_gguf_find(g, "token_embd.weight");
    if ((st = key_int(g, k_vocab, false, 1, CONFIG_INT_MAX, &c->vocab, &found, err)) != HR_OK)
        return st;
    if (!found && embd)
        c->vocab = embd->ne[1];
    else if (!found && have_tokens)
        c->vocab = (int64_t)n_tokens;
    else if (!found)
        return hr_error_set(err, HR_ERR_FORMAT, "%s: the vocabulary size is unknown (no %s, no token_embd.weight, "
                            "no tokenizer.ggml.tokens)", f, k_vocab);
    if (c->vocab < 1 || c->vocab > CONFIG_INT_MAX)
        return hr_error_set(err, HR_ERR_FORMAT, "%s: vocabulary size %" PRId64 " is out of range", f, c->vocab);
    if (embd && (embd->n_dims != 2 || embd->ne[0] != c->dim || embd->ne[1] != c->vocab))
        return hr_error_set(err, HR_ERR_FORMAT, "%s: tensor 'token_embd.weight' is [%" PRId64 ", %" PRId64 "] "
                            "(%d dimensions), not [%s %" PRId64 ", vocabulary %" PRId64 "]", f, embd->ne[0],
                            embd->ne[1], embd->n_dims, k_dim, c->dim, c->vocab);
    if (have_tokens && (int64_t)usable_tokens(g, n_tokens) > c->vocab)
        return hr_error_set(err, HR_ERR_FORMAT, "%s: tokenizer.ggml.tokens has %zu tokens, more than the "
                            "vocabulary size %" PRId64, f, n_tokens, c->vocab);

    if ((st = parse_rope_scaling(g, arch, (int)c->head_dim, c->theta, &c->rope, err)) != HR_OK)
        return st;
    c->tie = hr_gguf_find(g, "output.weight") == NULL;
    c->attn_bias = hr_gguf_find(g, "blk.0.attn_q.bias") != NULL;
    if (strcmp(arch, "phi3") == 0 && (st = read_phi3(g, c, err)) != HR_OK)
        return st;
    if (strcmp(arch, "gemma2") == 0) {
        /* llama.cpp: the window from attention.sliding_window, every other layer global, the caps 50 and 30
         * unless attn_logit_softcapping / final_logit_softcapping say otherwise, and the scores scaled by
         * 1 / sqrt(head_dim) except in the 46-layer 27B (1 / sqrt(embedding_length / head_count)) */
        c->swa_pattern = 2;
        c->attn_softcap = 50.0;
        c->final_softcap = 30.0;
        if ((st = key_int(g, "gemma2.attention.sliding_window", true, 1, CONFIG_INT_MAX, &c->window, NULL, err)) ||
            (st = key_float(g, "gemma2.attn_logit_softcapping", false, &c->attn_softcap, NULL, err)) ||
            (st = key_float(g, "gemma2.final_logit_softcapping", false, &c->final_softcap, NULL, err)))
            return st;
        if (!(c->attn_softcap >= 0.0 && c->attn_softcap < 1e30) ||
            !(c->final_softcap >= 0.0 && c->final_softcap < 1e30))
            return hr_error_set(err, HR_ERR_FORMAT, "%s: a gemma2 soft cap is out of range", f);
        c->query_scale = c->n_layers == 46 ? (double)(c->dim / c->n_heads) : (double)c->head_dim;
    }
    if (gemma3) {
        /* llama.cpp: the window from attention.sliding_window, every sixth layer global, the local base 10000
         * unless rope.freq_base_swa (Ollama: rope.local.freq_base) says otherwise, and the scores scaled by
         * 1 / sqrt(head_dim) except in the 62-layer 27B (1 / sqrt(embedding_length / head_count), its
         * query_pre_attn_scalar); Ollama's newer files list which layers slide
         * (attention.sliding_window_pattern, one bool per layer), and its older ones leave out the 4B-27B's
         * linear rope scaling by 8 that stretches them to 131072 positions */
        g_autofree char *k_swa = arch_key(arch, "attention.sliding_window");
        g_autofree char *k_swa_base = arch_key(arch, "rope.freq_base_swa");
        c->swa_pattern = 6;
        c->local_theta = 10000.0;
        if ((st = key_int(g, k_swa, true, 1, CONFIG_INT_MAX, &c->window, NULL, err)) != HR_OK ||
            (st = key_float(g, k_swa_base, false, &c->local_theta, &found, err)) != HR_OK ||
            (!found && (st = key_float(g, "gemma3.rope.local.freq_base", false, &c->local_theta, NULL, err)) != HR_OK))
            return st;
        if ((st = layer_pattern(g, c, err)) != HR_OK)
            return st;
        if (!c->rope.any && c->max_pos >= 131072) {
            c->rope.any = true;
            c->rope.type = "linear";
            c->rope.factor = 8.0;
        }
        if (!(c->local_theta > 0.0 && c->local_theta <= MAX_FLOAT_VALUE))
            return hr_error_set(err, HR_ERR_FORMAT, "%s: GGUF key '%s' = %g is out of range (above 0, at most 1e12)",
                                f, k_swa_base, c->local_theta);
        c->query_scale = c->n_layers == 62 ? (double)(c->dim / c->n_heads) : (double)c->head_dim;
    }
    if ((st = key_token_id(g, "tokenizer.ggml.bos_token_id", c->vocab, &c->bos, err)) != HR_OK ||
        (st = key_token_id(g, "tokenizer.ggml.eos_token_id", c->vocab, &c->eos, err)) != HR_OK ||
        (st = key_token_id(g, "tokenizer.ggml.eot_token_id", c->vocab, &c->eot, err)) != HR_OK ||
        (st = key_token_id(g, "tokenizer.ggml.eom_token_id", c->vocab, &c->eom, err)) != HR_OK ||
        (st = key_token_id(g, "tokenizer.ggml.padding_token_id", c->vocab, &c->pad, err)) != HR_OK)
        return st;
    /* Gemma's turns end with <end_of_turn>, which its GGUFs do not name as eot (llama.cpp finds it by its
     * text, as here) */
    if (c->eot < 0 && hr_gguf_arch_is_gemma(arch))
        c->eot = find_token(g, "<end_of_turn>", c->vocab);
    if (c->eot < 0 && strcmp(arch, "phi3") == 0)   /* Phi-3's and Phi-4's turns end with <|end|> */
        c->eot = find_token(g, "<|end|>", c->vocab);
    return HR_OK;
}

HrStatus
hr_gguf_config_json(const HrGguf *g, char **config_json, char **generation_json, HrError *err)
{
    if (!g || !config_json || !generation_json)
        return hr_error_set(err, HR_ERR_INVALID_ARG, "hr_gguf_config_json: NULL argument");
    *config_json = *generation_json = NULL;
    const char *f = hr_gguf_path(g);
    const char *arch;
    HrStatus st = key_str(g, "general.architecture", true, &arch, err);
    if (st != HR_OK)
        return st;
    const ArchInfo *info = NULL;
    for (size_t i = 0; i < G_N_ELEMENTS(archs); i++)
        if (strcmp(arch, archs[i].arch) == 0)
            info = &archs[i];
    if (!info)
        return hr_error_set(err, HR_ERR_UNSUPPORTED, "%s: GGUF architecture '%s' is not supported (supported: "
                            "llama, qwen2, qwen3, gemma2, gemma3, phi3)", f, arch);
    Config c;
    if ((st = read_config(g, arch, &c, err)) != HR_OK) {
        g_free(c.local_layers);
        return st;
    }

    JsonBuilder *b = json_builder_new();
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "architectures");
    json_builder_begin_array(b);
    json_builder_add_string_value(b, info->hf_arch);
    json_builder_end_array(b);
    member_string(b, "model_type", info->model_type);
    const bool gemma = hr_gguf_arch_is_gemma(arch);
    if (!gemma)
        member_string(b, "hidden_act", "silu");
    member_int(b, "hidden_size", c.dim);
    member_int(b, "intermediate_size", c.hidden);
    member_int(b, "num_hidden_layers", c.n_layers);
    member_int(b, "num_attention_heads", c.n_heads);
    member_int(b, "num_key_value_heads", c.n_kv_heads);
    member_int(b, "head_dim", c.head_dim);
    member_int(b, "max_position_embeddings", c.max_pos);
    member_double(b, "rms_norm_eps", shortest_f32(c.eps));
    member_double(b, "rope_theta", shortest_f32(c.theta));
    json_builder_set_member_name(b, "rope_scaling");
    if (c.factors_long) {   /* phi3's LongRoPE */
        json_builder_begin_object(b);
        member_string(b, "rope_type", "longrope");
        member_factors(b, "long_factor", c.factors_long);
        member_factors(b, "short_factor", c.factors_short);
        if (c.attn_factor > 0.0)
            member_double(b, "attention_factor", shortest_f32(c.attn_factor));
        json_builder_end_object(b);
    } else if (!c.rope.any) {
        json_builder_add_null_value(b);
    } else {
        json_builder_begin_object(b);
        member_string(b, "rope_type", c.rope.type);
        member_double(b, "factor", c.rope.factor);
        if (strcmp(c.rope.type, "llama3") == 0) {
            member_double(b, "low_freq_factor", c.rope.low);
            member_double(b, "high_freq_factor", c.rope.high);
            member_int(b, "original_max_position_embeddings", c.rope.original);
        }
        json_builder_end_object(b);
    }
    member_bool(b, "tie_word_embeddings", c.tie);
    if (strcmp(arch, "llama") == 0 || strcmp(arch, "qwen3") == 0 || gemma) {
        member_bool(b, "attention_bias", c.attn_bias);
        member_bool(b, "mlp_bias", false);
    }
    if (strcmp(arch, "phi3") == 0) {
        member_int(b, "original_max_position_embeddings", c.orig_ctx);
        member_double(b, "partial_rotary_factor", (double)c.rot_dim / (double)c.head_dim);
        if (c.phi_window > 0)
            member_int(b, "sliding_window", c.phi_window);
    }
    if (gemma) {
        member_string(b, "hidden_activation", "gelu_pytorch_tanh");
        member_int(b, "sliding_window", c.window);
        if (c.local_layers) {
            json_builder_set_member_name(b, "layer_types");
            json_builder_begin_array(b);
            for (int64_t l = 0; l < c.n_layers; l++)
                json_builder_add_string_value(b, c.local_layers[l] ? "sliding_attention" : "full_attention");
            json_builder_end_array(b);
        } else {
            member_int(b, "sliding_window_pattern", c.swa_pattern);
        }
        if (strcmp(arch, "gemma3") == 0)
            member_double(b, "rope_local_base_freq", shortest_f32(c.local_theta));
        else {
            member_double(b, "attn_logit_softcapping", shortest_f32(c.attn_softcap));
            member_double(b, "final_logit_softcapping", shortest_f32(c.final_softcap));
        }
        member_double(b, "query_pre_attn_scalar", c.query_scale);
        member_bool(b, "hearth_norms_hold_one", true);   /* llama.cpp's converter added the 1 of (1 + w) */
    }
    member_int(b, "vocab_size", c.vocab);
    if (c.bos >= 0)
        member_int(b, "bos_token_id", c.bos);
    if (c.eos >= 0)
        member_int(b, "eos_token_id", c.eos);
    if (c.pad >= 0)
        member_int(b, "pad_token_id", c.pad);
    json_builder_end_object(b);
    char *config = builder_text(b);
    g_object_unref(b);

    /* generation_config.json: eos, then end-of-turn and end-of-message. */
    int64_t eos[3];
    int n_eos = 0;
    const int64_t cand[3] = { c.eos, c.eot, c.eom };
    for (int i = 0; i < 3; i++) {
        bool dup = cand[i] < 0;
        for (int k = 0; k < n_eos; k++)
            dup |= eos[k] == cand[i];
        if (!dup)
            eos[n_eos++] = cand[i];
    }
    b = json_builder_new();
    json_builder_begin_object(b);
    if (c.bos >= 0)
        member_int(b, "bos_token_id", c.bos);
    if (n_eos == 1) {
        member_int(b, "eos_token_id", eos[0]);
    } else if (n_eos > 1) {
        json_builder_set_member_name(b, "eos_token_id");
        json_builder_begin_array(b);
        for (int i = 0; i < n_eos; i++)
            json_builder_add_int_value(b, eos[i]);
        json_builder_end_array(b);
    }
    if (c.pad >= 0)
        member_int(b, "pad_token_id", c.pad);
    json_builder_end_object(b);
    *generation_json = builder_text(b);
    g_object_unref(b);
    g_free(c.local_layers);
    *config_json = config;
    return HR_OK;
}

/* ------------------------------------------------------------ tokenizer */

typedef struct {
    size_t n;
    const char **tok;         /* NUL-terminated copies owned by the HrGguf */
    int32_t *type;
    double *score;            /* NULL without tokenizer.ggml.scores */
    uint32_t *len;            /* strlen(tok[i]) */
    TokStrMap ids;            /* token -> id */
} Vocab;

static void
vocab_clear(Vocab *v)
{
    g_free(v->tok);
    g_free(v->type);
    g_free(v->score);
    g_free(v->len);
    tok_strmap_free(&v->ids);
}

/* The id of a token string, or -1. */
static int64_t
vocab_id(const Vocab *v, const char *s)
{
    return tok_strmap_get(&v->ids, s, strlen(s));
}

/* A string array element that can go into JSON (valid UTF-8, no NUL). */
static HrStatus
array_json_str(const HrGguf *g, const char *key, size_t i, const char **out, HrError *err)
{
    size_t len;
    const char *s = hr_gguf_array_str(g, key, i, &len);
    const char *bad;
    if (!s)
        return hr_error_set(err, HR_ERR_FORMAT, "%s: GGUF key '%s' has no element %zu", hr_gguf_path(g), key, i);
    if (!g_utf8_validate(s, (gssize)len, &bad))
        return hr_error_set(err, HR_ERR_FORMAT, "%s: %s[%zu] is not valid UTF-8 or holds a NUL byte (at its byte "
                            "%zu)", hr_gguf_path(g), key, i, (size_t)(bad - s));
    *out = s;
    return HR_OK;
}

/* A typed array key of exactly n elements (n == 0: any count, returned in *n). */
static HrStatus
array_key(const HrGguf *g, const char *key, bool required, bool want_string, size_t *n, bool *found, HrError *err)
{
    const char *f = hr_gguf_path(g);
    HrGgufValueType t, et;
    size_t count;
    *found = false;
    if (!hr_gguf_get_type(g, key, &t)) {
        if (required)
            return hr_error_set(err, HR_ERR_FORMAT, "%s: GGUF key '%s' is missing", f, key);
        return HR_OK;
    }
    if (!hr_gguf_get_array(g, key, &et, &count))
        return hr_error_set(err, HR_ERR_FORMAT, "%s: GGUF key '%s' is a %s, not an array", f, key,
                            hr_gguf_value_type_name(t));
    if (want_string && et != HR_GGUF_STRING)
        return hr_error_set(err, HR_ERR_FORMAT, "%s: GGUF key '%s' is an array of %s, not of strings", f, key,
                            hr_gguf_value_type_name(et));
    if (!want_string && (et == HR_GGUF_STRING || et == HR_GGUF_BOOL))
        return hr_error_set(err, HR_ERR_FORMAT, "%s: GGUF key '%s' is an array of %s, not of numbers", f, key,
                            hr_gguf_value_type_name(et));
    if (*n != 0 && count != *n)
        return hr_error_set(err, HR_ERR_FORMAT, "%s: GGUF key '%s' has %zu elements, but there are %zu tokens", f,
                            key, count, *n);
    *n = count;
    *found = true;
    return HR_OK;
}

static HrStatus
load_vocab(const HrGguf *g, Vocab *v, HrError *err)
{
    const char *f = hr_gguf_path(g);
    const char *k_tokens = "tokenizer.ggml.tokens", *k_types = "tokenizer.ggml.token_type",
               *k_scores = "tokenizer.ggml.scores";
    bool found;
    size_t n = 0;
    HrStatus st = array_key(g, k_tokens, true, true, &n, &found, err);
    if (st != HR_OK)
        return st;
    if (n == 0 || n > MAX_TOKENS)
        return hr_error_set(err, HR_ERR_FORMAT, "%s: %s has %zu tokens (1 to %zu are supported)", f, k_tokens, n,
                            MAX_TOKENS);
    /* the type and score arrays are as long as the tokens', of which the first v->n are read */
    v->n = usable_tokens(g, n);
    v->tok = g_new(const char *, v->n);
    v->type = g_new(int32_t, v->n);
    v->len = g_new0(uint32_t, v->n);
    if (!tok_strmap_init(&v->ids, v->n, v->tok, v->len))
        return hr_error_set(err, HR_ERR_NOMEM, "%s: out of memory for %zu tokens", f, v->n);
    for (size_t i = 0; i < v->n; i++) {
        if ((st = array_json_str(g, k_tokens, i, &v->tok[i], err)) != HR_OK)
            return st;
        int64_t prev = vocab_id(v, v->tok[i]);
        if (prev >= 0)
            return hr_error_set(err, HR_ERR_FORMAT, "%s: %s: tokens %" PRId64 " and %zu are both '%s'", f, k_tokens,
                                prev, i, v->tok[i]);
        v->len[i] = (uint32_t)strlen(v->tok[i]);
        tok_strmap_insert(&v->ids, (int32_t)i, false);
        v->type[i] = TOKEN_NORMAL;
    }
    if ((st = array_key(g, k_types, false, false, &n, &found, err)) != HR_OK)
        return st;
    for (size_t i = 0; found && i < v->n; i++) {
        int64_t t;
        if (!hr_gguf_array_int(g, k_types, i, &t) || t < TOKEN_UNDEFINED || t > TOKEN_BYTE)
            return hr_error_set(err, HR_ERR_FORMAT, "%s: %s[%zu] is not a token type (0 to 6)", f, k_types, i);
        v->type[i] = (int32_t)t;
    }
    if ((st = array_key(g, k_scores, false, false, &n, &found, err)) != HR_OK)
        return st;
    if (found) {
        v->score = g_new(double, v->n);
        for (size_t i = 0; i < v->n; i++) {
            if (!hr_gguf_array_float(g, k_scores, i, &v->score[i]) || !isfinite(v->score[i]))
                return hr_error_set(err, HR_ERR_FORMAT, "%s: %s[%zu] is not a finite number", f, k_scores, i);
        }
    }
    return HR_OK;
}

/* ---- merges */

typedef struct {
    int32_t left, right, merged;
    double score;
    size_t seq;
} Merge;

static int
merge_local_cmp(const void *a, const void *b)
{
    const Merge *x = a, *y = b;
    if (x->left != y->left)
        return x->left < y->left ? -1 : 1;
    return (x->right > y->right) - (x->right < y->right);
}

/* Score descending, then the order they were found in (a stable sort). */
static int
merge_score_cmp(const void *a, const void *b)
{
    const Merge *x = a, *y = b;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    return (x->seq > y->seq) - (x->seq < y->seq);
}

/* transformers' SentencePieceExtractor: every split of every token into two
 * tokens (at character boundaries), each token's splits ordered by the ids
 * of the halves, all of them then ranked by the token's score, highest
 * first, ties in the order found. */
static HrStatus
derive_merges(const HrGguf *g, const Vocab *v, GArray **out, HrError *err)
{
    const char *f = hr_gguf_path(g);
    uint64_t work = 0;
    for (size_t id = 0; id < v->n; id++) {
        uint64_t len = strlen(v->tok[id]);
        work += len * len;
        if (work > MAX_SPLIT_WORK)
            return hr_error_set(err, HR_ERR_UNSUPPORTED, "%s: tokenizer.ggml.tokens are too long to derive "
                                "SentencePiece merges from (token %zu is %" PRIu64 " bytes)", f, id, len);
    }
    uint64_t bytes = 0;
    GArray *merges = g_array_new(FALSE, FALSE, sizeof(Merge));
    for (size_t id = 0; id < v->n; id++) {
        const char *piece = v->tok[id], *end = piece + v->len[id];
        guint start = merges->len;
        if (!*piece)
            continue;
        for (const char *p = g_utf8_next_char(piece); *p; p = g_utf8_next_char(p)) {
            int32_t r = tok_strmap_get(&v->ids, p, (size_t)(end - p));
            if (r < 0)
                continue;
            int32_t l = tok_strmap_get(&v->ids, piece, (size_t)(p - piece));
            if (l < 0)
                continue;
            Merge m = { l, r, (int32_t)id, v->score[id], 0 };
            g_array_append_val(merges, m);
            bytes += strlen(piece) + 8;
        }
        if (bytes > MAX_MERGES_BYTES) {
            g_array_free(merges, TRUE);
            return hr_error_set(err, HR_ERR_UNSUPPORTED, "%s: the SentencePiece merges derived from "
                                "tokenizer.ggml.tokens would take more than %" PRIu64 " MiB", f,
                                MAX_MERGES_BYTES >> 20);
        }
        if (merges->len - start > 1)
            qsort(&g_array_index(merges, Merge, start), merges->len - start, sizeof(Merge), merge_local_cmp);
    }
    for (guint i = 0; i < merges->len; i++)
        g_array_index(merges, Merge, i).seq = i;
    if (merges->len > 1)
        qsort(merges->data, merges->len, sizeof(Merge), merge_score_cmp);
    *out = merges;
    return HR_OK;
}

/* The GGUF's own merges: "a b" with exactly one space, a, b and ab tokens;
 * their ids into *out, in the file's order. */
static HrStatus
check_merges(const HrGguf *g, const Vocab *v, const char *key, size_t n, GArray **out, HrError *err)
{
    const char *f = hr_gguf_path(g);
    GString *joined = g_string_new(NULL);
    GArray *merges = g_array_sized_new(FALSE, FALSE, sizeof(Merge), (guint)n);
    HrStatus st = HR_OK;
    for (size_t i = 0; i < n && st == HR_OK; i++) {
        const char *m;
        if ((st = array_json_str(g, key, i, &m, err)) != HR_OK)
            break;
        const char *sp = strchr(m, ' ');
        if (!sp || strchr(sp + 1, ' ')) {
            st = hr_error_set(err, HR_ERR_FORMAT, "%s: %s[%zu] \"%s\" is not of the form \"a b\"", f, key, i, m);
            break;
        }
        g_string_assign(joined, "");
        g_string_append_len(joined, m, sp - m);
        Merge mg = { tok_strmap_get(&v->ids, m, (size_t)(sp - m)), (int32_t)vocab_id(v, sp + 1), -1, 0, i };
        if (mg.left < 0 || mg.right < 0) {
            st = hr_error_set(err, HR_ERR_FORMAT, "%s: %s[%zu] \"%s\": '%s' is not in tokenizer.ggml.tokens", f, key,
                              i, m, mg.left < 0 ? joined->str : sp + 1);
            break;
        }
        g_string_append(joined, sp + 1);
        if ((mg.merged = (int32_t)vocab_id(v, joined->str)) < 0)
            st = hr_error_set(err, HR_ERR_FORMAT, "%s: %s[%zu] \"%s\": the merged token '%s' is not in "
                              "tokenizer.ggml.tokens", f, key, i, m, joined->str);
        g_array_append_val(merges, mg);
    }
    g_string_free(joined, TRUE);
    if (st == HR_OK)
        *out = merges;
    else
        g_array_free(merges, TRUE);
    return st;
}

/* ---- pipeline pieces */

#define LLAMA3_REGEX \
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|" \
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define QWEN2_REGEX \
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|" \
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"

/* OpenAI's o200k (GPT-4o; Phi-4-mini) */
#define GPT4O_REGEX \
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+" \
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)?|" \
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*" \
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)?|" \
    "\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"

typedef enum { PK_GPT2, PK_DIGITS, PK_LLAMA3, PK_QWEN2, PK_GPT4O } PreKind;

static const struct {
    const char *name;
    PreKind kind;
} pre_names[] = {
    { "default", PK_GPT2 }, { "gpt-2", PK_GPT2 }, { "gpt2", PK_GPT2 },
    { "smollm", PK_DIGITS }, { "starcoder", PK_DIGITS }, { "refact", PK_DIGITS }, { "codeshell", PK_DIGITS },
    { "llama-bpe", PK_LLAMA3 }, { "llama3", PK_LLAMA3 }, { "llama-v3", PK_LLAMA3 },
    { "qwen2", PK_QWEN2 }, { "gpt-4o", PK_GPT4O },
};

static void
add_byte_level(JsonBuilder *b, bool add_prefix_space, bool trim_offsets, bool use_regex)
{
    json_builder_begin_object(b);
    member_string(b, "type", "ByteLevel");
    member_bool(b, "add_prefix_space", add_prefix_space);
    member_bool(b, "trim_offsets", trim_offsets);
    member_bool(b, "use_regex", use_regex);
    json_builder_end_object(b);
}

static void
add_split(JsonBuilder *b, const char *regex)
{
    json_builder_begin_object(b);
    member_string(b, "type", "Split");
    json_builder_set_member_name(b, "pattern");
    json_builder_begin_object(b);
    member_string(b, "Regex", regex);
    json_builder_end_object(b);
    member_string(b, "behavior", "Isolated");
    member_bool(b, "invert", false);
    json_builder_end_object(b);
}

static void
add_pre_tokenizer(JsonBuilder *b, PreKind kind)
{
    json_builder_set_member_name(b, "pre_tokenizer");
    if (kind == PK_GPT2) {
        add_byte_level(b, false, true, true);
        return;
    }
    json_builder_begin_object(b);
    member_string(b, "type", "Sequence");
    json_builder_set_member_name(b, "pretokenizers");
    json_builder_begin_array(b);
    if (kind == PK_DIGITS) {
        json_builder_begin_object(b);
        member_string(b, "type", "Digits");
        member_bool(b, "individual_digits", true);
        json_builder_end_object(b);
        add_byte_level(b, false, true, true);
    } else {
        add_split(b, kind == PK_LLAMA3 ? LLAMA3_REGEX : kind == PK_GPT4O ? GPT4O_REGEX : QWEN2_REGEX);
        add_byte_level(b, false, kind == PK_LLAMA3, false);
    }
    json_builder_end_array(b);
    json_builder_end_object(b);
}

static void
add_template_piece(JsonBuilder *b, const char *kind, const char *id, int type_id)
{
    json_builder_begin_object(b);
    json_builder_set_member_name(b, kind);
    json_builder_begin_object(b);
    member_string(b, "id", id);
    member_int(b, "type_id", type_id);
    json_builder_end_object(b);
    json_builder_end_object(b);
}

/* TemplateProcessing: [bos] A [eos] and [bos] A [eos] [bos] B [eos]. */
static void
add_template(JsonBuilder *b, const char *bos, int64_t bos_id, const char *eos, int64_t eos_id)
{
    json_builder_begin_object(b);
    member_string(b, "type", "TemplateProcessing");
    for (int pair = 0; pair < 2; pair++) {
        json_builder_set_member_name(b, pair ? "pair" : "single");
        json_builder_begin_array(b);
        for (int seq = 0; seq <= pair; seq++) {
            if (bos)
                add_template_piece(b, "SpecialToken", bos, seq);
            add_template_piece(b, "Sequence", seq ? "B" : "A", seq);
            if (eos)
                add_template_piece(b, "SpecialToken", eos, seq);
        }
        json_builder_end_array(b);
    }
    json_builder_set_member_name(b, "special_tokens");
    json_builder_begin_object(b);
    for (int k = 0; k < 2; k++) {
        const char *tok = k ? eos : bos;
        if (!tok || (k == 1 && bos && strcmp(bos, eos) == 0))
            continue;
        json_builder_set_member_name(b, tok);
        json_builder_begin_object(b);
        member_string(b, "id", tok);
        json_builder_set_member_name(b, "ids");
        json_builder_begin_array(b);
        json_builder_add_int_value(b, k ? eos_id : bos_id);
        json_builder_end_array(b);
        json_builder_set_member_name(b, "tokens");
        json_builder_begin_array(b);
        json_builder_add_string_value(b, tok);
        json_builder_end_array(b);
        json_builder_end_object(b);
    }
    json_builder_end_object(b);
    json_builder_end_object(b);
}

static void
add_replace(JsonBuilder *b, const char *from, const char *to)
{
    json_builder_begin_object(b);
    member_string(b, "type", "Replace");
    json_builder_set_member_name(b, "pattern");
    json_builder_begin_object(b);
    member_string(b, "String", from);
    json_builder_end_object(b);
    member_string(b, "content", to);
    json_builder_end_object(b);
}

static void
add_typed(JsonBuilder *b, const char *type)
{
    json_builder_begin_object(b);
    member_string(b, "type", type);
    json_builder_end_object(b);
}

static bool
is_added(int32_t type)
{
    return type == TOKEN_UNKNOWN || type == TOKEN_CONTROL || type == TOKEN_USER_DEFINED;
}

static void
add_added_token_fields(JsonBuilder *b, const char *content, bool special)
{
    member_string(b, "content", content);
    member_bool(b, "single_word", false);
    member_bool(b, "lstrip", false);
    member_bool(b, "rstrip", false);
    member_bool(b, "normalized", false);
    member_bool(b, "special", special);
}

typedef struct {
    bool spm;                 /* "llama" */
    PreKind pre;
    bool add_bos, add_eos, add_space_prefix;
    int64_t bos, eos, unk, pad, max_len;
    const char *chat_template;
    GArray *merges;           /* Merge: derived (spm), or the GGUF's */
    size_t n_gguf_merges;     /* the GGUF's count (0: derived) */
} TokInfo;

/* tokenizer.json; without the model's vocab and merges unless `tables`
 * (hr_tokenizer_load_with_tables takes those). */
static char *
tokenizer_text(const HrGguf *g, const Vocab *v, const TokInfo *ti, bool tables)
{
    const char *bos = ti->bos >= 0 ? v->tok[ti->bos] : NULL;
    const char *eos = ti->eos >= 0 ? v->tok[ti->eos] : NULL;
    JsonBuilder *b = json_builder_new();
    json_builder_begin_object(b);
    member_string(b, "version", "1.0");
    member_null(b, "truncation");
    member_null(b, "padding");
    json_builder_set_member_name(b, "added_tokens");
    json_builder_begin_array(b);
    for (size_t i = 0; i < v->n; i++) {
        if (!is_added(v->type[i]))
            continue;
        json_builder_begin_object(b);
        member_int(b, "id", (int64_t)i);
        add_added_token_fields(b, v->tok[i], v->type[i] != TOKEN_USER_DEFINED);
        json_builder_end_object(b);
    }
    json_builder_end_array(b);

    const char *tmpl_bos = ti->add_bos ? bos : NULL, *tmpl_eos = ti->add_eos ? eos : NULL;
    if (ti->spm) {
        json_builder_set_member_name(b, "normalizer");
        json_builder_begin_object(b);
        member_string(b, "type", "Sequence");
        json_builder_set_member_name(b, "normalizers");
        json_builder_begin_array(b);
        if (ti->add_space_prefix) {
            json_builder_begin_object(b);
            member_string(b, "type", "Prepend");
            member_string(b, "prepend", "\u2581");
            json_builder_end_object(b);
        }
        add_replace(b, " ", "\u2581");
        json_builder_end_array(b);
        json_builder_end_object(b);
        member_null(b, "pre_tokenizer");
        json_builder_set_member_name(b, "post_processor");
        add_template(b, tmpl_bos, ti->bos, tmpl_eos, ti->eos);
        json_builder_set_member_name(b, "decoder");
        json_builder_begin_object(b);
        member_string(b, "type", "Sequence");
        json_builder_set_member_name(b, "decoders");
        json_builder_begin_array(b);
        add_replace(b, "\u2581", " ");
        add_typed(b, "ByteFallback");
        add_typed(b, "Fuse");
        if (ti->add_space_prefix) {
            json_builder_begin_object(b);
            member_string(b, "type", "Strip");
            member_string(b, "content", " ");
            member_int(b, "start", 1);
            member_int(b, "stop", 0);
            json_builder_end_object(b);
        }
        json_builder_end_array(b);
        json_builder_end_object(b);
    } else {
        json_builder_set_member_name(b, "normalizer");
        if (ti->pre == PK_QWEN2)
            add_typed(b, "NFC");
        else
            json_builder_add_null_value(b);
        add_pre_tokenizer(b, ti->pre);
        json_builder_set_member_name(b, "post_processor");
        if (tmpl_bos || tmpl_eos) {
            json_builder_begin_object(b);
            member_string(b, "type", "Sequence");
            json_builder_set_member_name(b, "processors");
            json_builder_begin_array(b);
            add_byte_level(b, true, false, true);
            add_template(b, tmpl_bos, ti->bos, tmpl_eos, ti->eos);
            json_builder_end_array(b);
            json_builder_end_object(b);
        } else {
            add_byte_level(b, true, false, true);
        }
        json_builder_set_member_name(b, "decoder");
        add_byte_level(b, true, true, true);
    }

    json_builder_set_member_name(b, "model");
    json_builder_begin_object(b);
    member_string(b, "type", "BPE");
    member_null(b, "dropout");
    member_string(b, "unk_token", ti->spm && ti->unk >= 0 ? v->tok[ti->unk] : NULL);
    member_null(b, "continuing_subword_prefix");
    member_null(b, "end_of_word_suffix");
    member_bool(b, "fuse_unk", ti->spm);
    member_bool(b, "byte_fallback", ti->spm);
    member_bool(b, "ignore_merges", !ti->spm && ti->pre == PK_LLAMA3);
    if (!tables)
        goto end_model;
    json_builder_set_member_name(b, "vocab");
    json_builder_begin_object(b);
    for (size_t i = 0; i < v->n; i++)
        member_int(b, v->tok[i], (int64_t)i);
    json_builder_end_object(b);
    json_builder_set_member_name(b, "merges");
    json_builder_begin_array(b);
    if (ti->n_gguf_merges == 0) {
        /* "a b" strings unless a token holds a space: then every merge is a
         * pair (transformers reads one form per file). */
        bool pairs = false;
        for (guint i = 0; i < ti->merges->len && !pairs; i++) {
            const Merge *m = &g_array_index(ti->merges, Merge, i);
            pairs = strchr(v->tok[m->left], ' ') || strchr(v->tok[m->right], ' ');
        }
        GString *s = g_string_new(NULL);
        for (guint i = 0; i < ti->merges->len; i++) {
            const Merge *m = &g_array_index(ti->merges, Merge, i);
            if (pairs) {
                json_builder_begin_array(b);
                json_builder_add_string_value(b, v->tok[m->left]);
                json_builder_add_string_value(b, v->tok[m->right]);
                json_builder_end_array(b);
            } else {
                g_string_printf(s, "%s %s", v->tok[m->left], v->tok[m->right]);
                json_builder_add_string_value(b, s->str);
            }
        }
        g_string_free(s, TRUE);
    } else {
        for (size_t i = 0; i < ti->n_gguf_merges; i++)
            json_builder_add_string_value(b, hr_gguf_array_str(g, "tokenizer.ggml.merges", i, NULL));
    }
    json_builder_end_array(b);
end_model:
    json_builder_end_object(b);
    json_builder_end_object(b);
    char *text = builder_text(b);
    g_object_unref(b);
    return text;
}

static char *
tokenizer_config_text(const Vocab *v, const TokInfo *ti)
{
    JsonBuilder *b = json_builder_new();
    json_builder_begin_object(b);
    member_bool(b, "add_bos_token", ti->add_bos);
    member_bool(b, "add_eos_token", ti->add_eos);
    json_builder_set_member_name(b, "added_tokens_decoder");
    json_builder_begin_object(b);
    for (size_t i = 0; i < v->n; i++) {
        if (!is_added(v->type[i]))
            continue;
        char id[24];
        g_snprintf(id, sizeof id, "%zu", i);
        json_builder_set_member_name(b, id);
        json_builder_begin_object(b);
        add_added_token_fields(b, v->tok[i], v->type[i] != TOKEN_USER_DEFINED);
        json_builder_end_object(b);
    }
    json_builder_end_object(b);
    member_string(b, "bos_token", ti->bos >= 0 ? v->tok[ti->bos] : NULL);
    member_string(b, "eos_token", ti->eos >= 0 ? v->tok[ti->eos] : NULL);
    member_string(b, "unk_token", ti->unk >= 0 ? v->tok[ti->unk] : NULL);
    member_string(b, "pad_token", ti->pad >= 0 ? v->tok[ti->pad] : NULL);
    if (ti->chat_template)
        member_string(b, "chat_template", ti->chat_template);
    member_bool(b, "clean_up_tokenization_spaces", false);
    if (ti->spm)
        member_bool(b, "legacy", true);
    if (ti->max_len > 0)
        member_int(b, "model_max_length", ti->max_len);
    /* PreTrainedTokenizerFast runs tokenizer.json as written (a model class
     * such as LlamaTokenizer may rebuild parts of the pipeline). */
    member_string(b, "tokenizer_class", "PreTrainedTokenizerFast");
    json_builder_end_object(b);
    char *text = builder_text(b);
    g_object_unref(b);
    return text;
}

static HrStatus
read_tokenizer(const HrGguf *g, Vocab *v, TokInfo *ti, HrError *err)
{
    const char *f = hr_gguf_path(g);
    const char *model, *pre;
    HrStatus st;
    if ((st = key_str(g, "tokenizer.ggml.model", true, &model, err)) != HR_OK)
        return st;
    if (strcmp(model, "llama") == 0)
        ti->spm = true;
    else if (strcmp(model, "gpt2") != 0)
        return hr_error_set(err, HR_ERR_UNSUPPORTED, "%s: GGUF tokenizer model '%s' (tokenizer.ggml.model) is not "
                            "supported (supported: gpt2, llama)", f, model);
    if ((st = key_str(g, "tokenizer.ggml.pre", false, &pre, err)) != HR_OK)
        return st;
    ti->pre = PK_GPT2;
    if (!ti->spm && pre) {
        bool known = false;
        for (size_t i = 0; i < G_N_ELEMENTS(pre_names) && !known; i++) {
            if (strcmp(pre, pre_names[i].name) == 0) {
                ti->pre = pre_names[i].kind;
                known = true;
            }
        }
        if (!known)
            return hr_error_set(err, HR_ERR_UNSUPPORTED, "%s: GGUF pre-tokenizer '%s' (tokenizer.ggml.pre) is not "
                                "supported (supported: default, gpt-2, smollm, starcoder, refact, codeshell, "
                                "llama-bpe, llama3, qwen2, gpt-4o)", f, pre);
    }
    if ((st = load_vocab(g, v, err)) != HR_OK)
        return st;
    int64_t n = (int64_t)v->n;
    if ((st = key_token_id(g, "tokenizer.ggml.bos_token_id", n, &ti->bos, err)) != HR_OK ||
        (st = key_token_id(g, "tokenizer.ggml.eos_token_id", n, &ti->eos, err)) != HR_OK ||
        (st = key_token_id(g, "tokenizer.ggml.unknown_token_id", n, &ti->unk, err)) != HR_OK ||
        (st = key_token_id(g, "tokenizer.ggml.padding_token_id", n, &ti->pad, err)) != HR_OK)
        return st;
    /* llama.cpp's defaults: BOS for SentencePiece and Llama 3, a space before the text for SentencePiece;
     * except Gemma's SentencePiece, which adds none (Ollama's Gemma 3 files do not say so) */
    const char *arch = NULL;
    const bool gemma = hr_gguf_get_str(g, "general.architecture", &arch) && hr_gguf_arch_is_gemma(arch);
    if ((st = key_bool(g, "tokenizer.ggml.add_bos_token", ti->spm || ti->pre == PK_LLAMA3, &ti->add_bos, err)) ||
        (st = key_bool(g, "tokenizer.ggml.add_eos_token", false, &ti->add_eos, err)) ||
        (st = key_bool(g, "tokenizer.ggml.add_space_prefix", !gemma, &ti->add_space_prefix, err)) ||
        (st = key_str(g, "tokenizer.chat_template", false, &ti->chat_template, err)))
        return st;
    if (hr_gguf_get_str(g, "general.architecture", &arch)) {
        g_autofree char *k_ctx = arch_key(arch, "context_length");
        int64_t ctx;
        if (hr_gguf_get_int(g, k_ctx, &ctx) && ctx > 0)
            ti->max_len = ctx;
    }

    bool found;
    size_t n_merges = 0;
    const char *k_merges = "tokenizer.ggml.merges";
    if ((st = array_key(g, k_merges, false, true, &n_merges, &found, err)) != HR_OK)
        return st;
    /* The file's merges when it has them (for SentencePiece models too, as
     * transformers' GGUF loader does: they came from the original
     * tokenizer.json); else, for SentencePiece, derived from the scores. */
    if (found) {
        if ((st = check_merges(g, v, k_merges, n_merges, &ti->merges, err)) != HR_OK)
            return st;
        ti->n_gguf_merges = n_merges;
    } else if (ti->spm && v->score) {
        if ((st = derive_merges(g, v, &ti->merges, err)) != HR_OK)
            return st;
    } else {
        return hr_error_set(err, HR_ERR_FORMAT, "%s: the GGUF has no %s%s", f, k_merges,
                            ti->spm ? " and no tokenizer.ggml.scores to derive them from" : "");
    }
    return HR_OK;
}

/* The tokenizer as tokenizer.json texts (tables: with its vocab and merges)
 * or, with `load`, loaded (the vocab and merges handed over as tables). */
static HrStatus
gguf_tokenizer(const HrGguf *g, char **tokenizer_json, char **tokenizer_config_json, HrTokenizer **load,
               HrError *err)
{
    Vocab v = { 0 };
    TokInfo ti = { 0 };
    ti.bos = ti.eos = ti.unk = ti.pad = -1;
    HrStatus st = read_tokenizer(g, &v, &ti, err);
    if (st == HR_OK && !load) {
        *tokenizer_json = tokenizer_text(g, &v, &ti, true);
        *tokenizer_config_json = tokenizer_config_text(&v, &ti);
    } else if (st == HR_OK) {
        g_autofree char *tj = tokenizer_text(g, &v, &ti, false);
        g_autofree char *cj = tokenizer_config_text(&v, &ti);
        int32_t (*merges)[3] = g_malloc_n(ti.merges->len ? ti.merges->len : 1, sizeof *merges);
        for (guint i = 0; i < ti.merges->len; i++) {
            const Merge *m = &g_array_index(ti.merges, Merge, i);
            merges[i][0] = m->left;
            merges[i][1] = m->right;
            merges[i][2] = m->merged;
        }
        HrTokenizerTables tables = { v.n, v.tok, ti.merges->len, (const int32_t (*)[3])merges };
        st = hr_tokenizer_load_with_tables(tj, strlen(tj), &tables, cj, strlen(cj), hr_gguf_path(g), load, err);
        g_free(merges);
    }
    if (ti.merges)
        g_array_free(ti.merges, TRUE);
    vocab_clear(&v);
    return st;
}

HrStatus
hr_gguf_tokenizer_json(const HrGguf *g, char **tokenizer_json, char **tokenizer_config_json, HrError *err)
{
    if (!g || !tokenizer_json || !tokenizer_config_json)
        return hr_error_set(err, HR_ERR_INVALID_ARG, "hr_gguf_tokenizer_json: NULL argument");
    *tokenizer_json = *tokenizer_config_json = NULL;
    return gguf_tokenizer(g, tokenizer_json, tokenizer_config_json, NULL, err);
}

HrStatus
hr_gguf_tokenizer(const HrGguf *g, HrTokenizer **out, HrError *err)
{
    if (!g || !out)
        return hr_error_set(err, HR_ERR_INVALID_ARG, "hr_gguf_tokenizer: NULL argument");
    *out = NULL;
    return gguf_tokenizer(g, NULL, NULL, out, err);
}
