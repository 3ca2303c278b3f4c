/* make-random-model.c — hr-make-random-model: a Llama model directory with
 * the shapes of a real model and random weights, for decode benchmarks and
 * quantizer measurements when the real weights are not at hand.
 *
 *   hr-make-random-model --shape NAME --out DIR
 *                        [--seed N] [--dtype f16|bf16|f32] [--awq G]
 *                        [--tokenizer DIR] [--layers N] [--threads N] [--vocab N]
 *
 * NAME is one of SHAPES below: tiny, llama-3.2-1b, llama-3.2-3b, llama-3-8b,
 * llama-2-7b, qwen2.5-0.5b, qwen2.5-1.5b, qwen2.5-7b, smollm2-135m.
 *
 * Writes DIR/config.json (LlamaForCausalLM, or Qwen2ForCausalLM for the
 * qwen2.5 shapes) and DIR/model.safetensors, one tensor in memory at a time
 * (hr_safetensors_write), so peak memory is the largest tensor (the
 * embedding: 525 MB in FP16 for llama-3.2-1b).
 *
 * Weights: every linear and the embedding (and an untied lm_head) are
 * ~ N(0, 0.02), drawn as an Irwin-Hall sum of four 16-bit uniforms (bounded
 * at ±3.46 sigma, so no outliers); norms are 1. With RMSNorm in front of
 * every linear this keeps each block's output at O(1) through all layers, so
 * the engine and the quantizer do ordinary floating-point work (no overflow,
 * no NaN) and the logits are near-uniform (perplexity ≈ vocab size). Qwen2
 * shapes also get q/k/v_proj.bias ~ N(0, 0.02), in the model's dtype (FP16
 * with --awq, where AutoAWQ keeps biases as FP tensors too).
 *
 * --awq G writes an AutoAWQ "GEMM" 4-bit checkpoint directly (layout in
 * quantize/quantize.h): qweight int32 [in, out/8] with uniformly random
 * nibbles, qzeros int32 [in/G, out/8] with zeros 7 or 8 (packed with
 * hr_awq_pack), scales fp16 [in/G, out] = base · U(0.75, 1.25), base chosen so
 * that the dequantized weights (q - z)·s have mean 0 and std 0.02; embeddings,
 * norms and lm_head stay FP16. No FP16 model and no quantizer run are needed
 * to benchmark a 7B AWQ decode.
 *
 * Deterministic: each tensor is cut into blocks of 64 Ki elements, and block b
 * of tensor NAME draws from xoshiro256++ seeded (through splitmix64) by
 * (seed, FNV-1a(NAME), b). The bytes depend on the seed and the dtype only,
 * not on the thread count; the same seed gives the same weights (up to
 * rounding) in f16, bf16 and f32, and --layers N gives the first N layers of
 * the full model.
 *
 * --tokenizer DIR copies tokenizer.json, tokenizer_config.json,
 * special_tokens_map.json and generation_config.json (those present). It
 * refuses a tokenizer with more tokens than the shape's vocab_size, or with
 * more than VOCAB_PAD_MAX fewer (real configs pad vocab_size past the
 * tokenizer: Qwen2.5's 151936 or 152064 rows for 151665 tokens).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "hr-half.h"
#include "quantize.h"
#include "tokenizer.h"

/* ---- shapes ------------------------------------------------------------------ */

typedef struct {
    const char *name;
    int dim, n_layers, n_heads, n_kv_heads, head_dim, hidden_dim, vocab, max_pos;
    double rope_theta;
    bool llama3_rope;   /* rope_scaling {"rope_type": "llama3", factor 32, ...} as Llama 3.2 */
    bool tied;
    double norm_eps;
    int bos;
    int n_eos;
    int eos[3];
    bool qwen2;         /* Qwen2ForCausalLM: q/k/v biases, Qwen2 config keys */
} Shape;

/* How many rows of the embedding may have no token (see check_tokenizer). */
#define VOCAB_PAD_MAX 1024

static const Shape SHAPES[] = {
    /* A small GQA Llama for tests: vocab 512 so that stories260K's tokenizer
     * fits; every input width a multiple of 128 so any AWQ group size <= 128
     * that is a power of two works; untied so lm_head is exercised. */
    { "tiny", 256, 4, 8, 2, 32, 768, 512, 2048, 10000.0, false, false, 1e-5, 1, 1, { 2 }, false },
    /* meta-llama/Llama-3.2-1B's config.json. */
    { "llama-3.2-1b", 2048, 16, 32, 8, 64, 8192, 128256, 131072, 500000.0, true, true, 1e-5, 128000, 2,
      { 128001, 128009 }, false },
    /* meta-llama/Llama-3.2-3B's config.json. */
    { "llama-3.2-3b", 3072, 28, 24, 8, 128, 8192, 128256, 131072, 500000.0, true, true, 1e-5, 128000, 1,
      { 128001 }, false },
    /* meta-llama/Meta-Llama-3-8B's config.json. */
    { "llama-3-8b", 4096, 32, 32, 8, 128, 14336, 128256, 8192, 500000.0, false, false, 1e-5, 128000, 1,
      { 128001 }, false },
    /* meta-llama/Llama-2-7b-hf's config.json. */
    { "llama-2-7b", 4096, 32, 32, 32, 128, 11008, 32000, 4096, 10000.0, false, false, 1e-5, 1, 1, { 2 }, false },
    /* Qwen/Qwen2.5-0.5B, -1.5B and -7B's config.json (the base models; the
     * -Instruct ones differ in eos 151645, max_position 32768 and the
     * sliding-window keys, none of which changes a tensor). */
    { "qwen2.5-0.5b", 896, 24, 14, 2, 64, 4864, 151936, 32768, 1000000.0, false, true, 1e-6, 151643, 1,
      { 151643 }, true },
    { "qwen2.5-1.5b", 1536, 28, 12, 2, 128, 8960, 151936, 131072, 1000000.0, false, true, 1e-6, 151643, 1,
      { 151643 }, true },
    { "qwen2.5-7b", 3584, 28, 28, 4, 128, 18944, 152064, 131072, 1000000.0, false, false, 1e-6, 151643, 1,
      { 151643 }, true },
    /* HuggingFaceTB/SmolLM2-135M's config.json. */
    { "smollm2-135m", 576, 30, 9, 3, 64, 1536, 49152, 8192, 100000.0, false, true, 1e-5, 0, 1, { 0 }, false },
};

/* ---- random numbers ------------------------------------------------------------ */

static inline uint64_t
splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

typedef struct {
    uint64_t s[4];
} Rng;

static inline uint64_t
rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

/* xoshiro256++ (Blackman & Vigna). */
static inline uint64_t
rng_next(Rng *r)
{
    uint64_t *s = r->s;
    uint64_t out = rotl(s[0] + s[3], 23) + s[0];
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

static void
rng_seed(Rng *r, uint64_t seed, uint64_t key, uint64_t block)
{
    uint64_t x = seed ^ 0x6a09e667f3bcc909ull;
    x = splitmix64(&x) ^ key;
    x = splitmix64(&x) ^ block;
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&x);
}

/* Sum of the four 16-bit quarters of a 64-bit draw: Irwin-Hall(4), mean
 * 4·32767.5, variance 4·(65536² - 1)/12. */
#define IH4_MEAN 131070.0f
#define IH4_STD 37837.23f

static inline float
rng_normalish(Rng *r)
{
    uint64_t v = rng_next(r);
    uint32_t s = (uint32_t)(v & 0xffff) + (uint32_t)((v >> 16) & 0xffff) + (uint32_t)((v >> 32) & 0xffff) +
                 (uint32_t)(v >> 48);
    return ((float)s - IH4_MEAN) * (1.0f / IH4_STD);
}

/* Uniform in [0, 1). */
static inline float
rng_unit(Rng *r)
{
    return (float)(rng_next(r) >> 40) * (1.0f / 16777216.0f);
}

static uint64_t
fnv1a(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 0x100000001b3ull;
    return h;
}

/* ---- tensors ------------------------------------------------------------------- */

typedef enum {
    FILL_NORMAL,   /* N(0, 0.02) in the tensor's float dtype */
    FILL_ONES,     /* 1.0 */
    FILL_QWEIGHT,  /* random int32 words: 8 uniform nibbles each */
    FILL_QZEROS,   /* zeros 7 or 8, packed */
    FILL_SCALES,   /* fp16 base · U(0.75, 1.25) */
} FillKind;

#define WEIGHT_STD 0.02f
#define BLOCK ((size_t)1 << 16)

typedef struct {
    GArray *tensors;    /* HrOutTensor */
    GArray *kinds;      /* FillKind */
    uint64_t seed;
    int threads;
    float awq_scale_base;
} Model;

static void
add_tensor(Model *m, const char *name, HrDType dt, int n_dims, int64_t d0, int64_t d1, FillKind kind)
{
    HrOutTensor t = { 0 };
    g_strlcpy(t.name, name, sizeof t.name);
    t.dtype = dt;
    t.n_dims = n_dims;
    t.shape[0] = d0;
    t.shape[1] = d1;
    g_array_append_val(m->tensors, t);
    g_array_append_val(m->kinds, kind);
}

/* A linear with HF shape [out, in]: FP weight or the three AWQ tensors. */
static void
add_linear(Model *m, const char *prefix, int64_t out, int64_t in, HrDType dt, int awq_g)
{
    char name[192];
    if (awq_g > 0) {
        g_snprintf(name, sizeof name, "%s.qweight", prefix);
        add_tensor(m, name, HR_DTYPE_I32, 2, in, out / 8, FILL_QWEIGHT);
        g_snprintf(name, sizeof name, "%s.qzeros", prefix);
        add_tensor(m, name, HR_DTYPE_I32, 2, in / awq_g, out / 8, FILL_QZEROS);
        g_snprintf(name, sizeof name, "%s.scales", prefix);
        add_tensor(m, name, HR_DTYPE_F16, 2, in / awq_g, out, FILL_SCALES);
    } else {
        g_snprintf(name, sizeof name, "%s.weight", prefix);
        add_tensor(m, name, dt, 2, out, in, FILL_NORMAL);
    }
}

static void
build_tensor_list(Model *m, const Shape *sh, int n_layers, HrDType dt, int awq_g)
{
    const int64_t d = sh->dim, q = (int64_t)sh->n_heads * sh->head_dim, kv = (int64_t)sh->n_kv_heads * sh->head_dim;
    const int64_t h = sh->hidden_dim;
    add_tensor(m, "model.embed_tokens.weight", dt, 2, sh->vocab, d, FILL_NORMAL);
    for (int l = 0; l < n_layers; l++) {
        char p[160], name[192];
        g_snprintf(name, sizeof name, "model.layers.%d.input_layernorm.weight", l);
        add_tensor(m, name, dt, 1, d, 0, FILL_ONES);
        static const char *attn[] = { "q_proj", "k_proj", "v_proj", "o_proj" };
        const int64_t attn_out[] = { q, kv, kv, d }, attn_in[] = { d, d, d, q };
        for (int i = 0; i < 4; i++) {
            g_snprintf(p, sizeof p, "model.layers.%d.self_attn.%s", l, attn[i]);
            add_linear(m, p, attn_out[i], attn_in[i], dt, awq_g);
            if (sh->qwen2 && i < 3) {
                /* Qwen2's q/k/v biases; FP (dt is f16 with --awq) like AutoAWQ's. */
                g_snprintf(name, sizeof name, "%s.bias", p);
                add_tensor(m, name, dt, 1, attn_out[i], 0, FILL_NORMAL);
            }
        }
        g_snprintf(name, sizeof name, "model.layers.%d.post_attention_layernorm.weight", l);
        add_tensor(m, name, dt, 1, d, 0, FILL_ONES);
        static const char *mlp[] = { "gate_proj", "up_proj", "down_proj" };
        const int64_t mlp_out[] = { h, h, d }, mlp_in[] = { d, d, h };
        for (int i = 0; i < 3; i++) {
            g_snprintf(p, sizeof p, "model.layers.%d.mlp.%s", l, mlp[i]);
            add_linear(m, p, mlp_out[i], mlp_in[i], dt, awq_g);
        }
    }
    add_tensor(m, "model.norm.weight", dt, 1, d, 0, FILL_ONES);
    if (!sh->tied)
        add_tensor(m, "lm_head.weight", dt, 2, sh->vocab, d, FILL_NORMAL);
}

/* ---- filling, in parallel over blocks ----------------------------------------- */

typedef struct {
    const Model *m;
    FillKind kind;
    HrDType dtype;
    uint64_t key;
    void *buf;
    size_t n;           /* elements */
    size_t n_blocks;
    gint next_block;
} FillJob;

static inline void
store_float(void *buf, HrDType dt, size_t i, float v)
{
    if (dt == HR_DTYPE_F32) {
        ((float *)buf)[i] = v;
    } else {
        uint16_t h = dt == HR_DTYPE_BF16 ? hr_f32_to_bf16(v) : hr_f32_to_f16(v);
        ((uint16_t *)buf)[i] = h;
    }
}

static void
fill_block(FillJob *j, size_t b)
{
    const size_t lo = b * BLOCK, hi = MIN(lo + BLOCK, j->n);
    Rng r;
    rng_seed(&r, j->m->seed, j->key, b);
    switch (j->kind) {
    case FILL_NORMAL:
        for (size_t i = lo; i < hi; i++)
            store_float(j->buf, j->dtype, i, WEIGHT_STD * rng_normalish(&r));
        break;
    case FILL_ONES:
        for (size_t i = lo; i < hi; i++)
            store_float(j->buf, j->dtype, i, 1.0f);
        break;
    case FILL_QWEIGHT: {
        uint32_t *w = j->buf;
        size_t i = lo;
        for (; i + 1 < hi; i += 2) {
            uint64_t v = rng_next(&r);
            w[i] = (uint32_t)v;
            w[i + 1] = (uint32_t)(v >> 32);
        }
        if (i < hi)
            w[i] = (uint32_t)rng_next(&r);
        break;
    }
    case FILL_SCALES:
        for (size_t i = lo; i < hi; i++)
            ((uint16_t *)j->buf)[i] = hr_f32_to_f16(j->m->awq_scale_base * (0.75f + 0.5f * rng_unit(&r)));
        break;
    case FILL_QZEROS:
        g_assert_not_reached(); /* packed whole, in fill_tensor */
    }
}

static gpointer
fill_worker(gpointer p)
{
    FillJob *j = p;
    for (;;) {
        size_t b = (size_t)g_atomic_int_add(&j->next_block, 1);
        if (b >= j->n_blocks)
            break;
        fill_block(j, b);
    }
    return NULL;
}

static HrStatus
fill_tensor(void *user, size_t index, void *buf, size_t n_bytes, HrError *err)
{
    const Model *m = user;
    const HrOutTensor *t = &g_array_index(m->tensors, HrOutTensor, index);
    FillKind kind = g_array_index(m->kinds, FillKind, index);
    const uint64_t key = fnv1a(t->name);
    size_t n = n_bytes / hr_dtype_size(t->dtype);

    if (kind == FILL_QZEROS) {
        /* [groups, out/8] words of 8 zero points each, 7 or 8 at random. */
        const int rows = (int)t->shape[0], cols = (int)t->shape[1] * 8;
        uint8_t *z = g_malloc((size_t)rows * (size_t)cols);
        Rng r;
        rng_seed(&r, m->seed, key, 0);
        for (size_t i = 0; i < (size_t)rows * (size_t)cols; i += 64) {
            uint64_t v = rng_next(&r);
            for (size_t k = i; k < MIN(i + 64, (size_t)rows * (size_t)cols); k++)
                z[k] = (uint8_t)(7 + ((v >> (k - i)) & 1));
        }
        hr_awq_pack(z, rows, cols, buf);
        g_free(z);
        return HR_OK;
    }

    FillJob job = {
        .m = m, .kind = kind, .dtype = t->dtype, .key = key, .buf = buf, .n = n,
        .n_blocks = (n + BLOCK - 1) / BLOCK, .next_block = 0,
    };
    if (job.n_blocks > (size_t)G_MAXINT - 64)
        return hr_error_set(err, HR_ERR_INVALID_ARG, "tensor '%s' is too large", t->name);
    int nt = (int)MIN((size_t)m->threads, job.n_blocks);
    GThread *th[64];
    int started = 0;
    for (int i = 1; i < nt; i++) {
        th[started] = g_thread_try_new("fill", fill_worker, &job, NULL);
        if (th[started])
            started++;
    }
    fill_worker(&job);
    for (int i = 0; i < started; i++)
        g_thread_join(th[i]);
    return HR_OK;
}

/* ---- config.json, tokenizer ------------------------------------------------------- */

static const char *
torch_dtype_name(HrDType dt)
{
    return dt == HR_DTYPE_F32 ? "float32" : dt == HR_DTYPE_BF16 ? "bfloat16" : "float16";
}

static void
append_eos(GString *s, const Shape *sh)
{
    if (sh->n_eos == 1) {
        g_string_append_printf(s, "  \"eos_token_id\": %d,\n", sh->eos[0]);
    } else {
        g_string_append(s, "  \"eos_token_id\": [");
        for (int i = 0; i < sh->n_eos; i++)
            g_string_append_printf(s, "%s%d", i ? ", " : "", sh->eos[i]);
        g_string_append(s, "],\n");
    }
}

/* The keys of the real model's config.json (hearth_random_model aside);
 * num_hidden_layers is --layers'. Qwen2 configs have no head_dim (it is
 * hidden_size / num_attention_heads), no attention_bias (the biases are
 * implied by the architecture) and sliding-window keys, off. */
static char *
config_json(const Shape *sh, int n_layers, HrDType dt, int awq_g, uint64_t seed)
{
    GString *s = g_string_new("{\n");
    g_string_append_printf(s, "  \"architectures\": [\"%s\"],\n", sh->qwen2 ? "Qwen2ForCausalLM" : "LlamaForCausalLM");
    g_string_append_printf(s, "  \"model_type\": \"%s\",\n", sh->qwen2 ? "qwen2" : "llama");
    if (!sh->qwen2)
        g_string_append(s, "  \"attention_bias\": false,\n");
    g_string_append(s, "  \"attention_dropout\": 0.0,\n");
    if (!sh->qwen2)
        g_string_append(s, "  \"mlp_bias\": false,\n");
    g_string_append_printf(s, "  \"bos_token_id\": %d,\n", sh->bos);
    append_eos(s, sh);
    if (!sh->qwen2)
        g_string_append_printf(s, "  \"head_dim\": %d,\n", sh->head_dim);
    g_string_append(s, "  \"hidden_act\": \"silu\",\n");
    g_string_append_printf(s, "  \"hidden_size\": %d,\n", sh->dim);
    g_string_append(s, "  \"initializer_range\": 0.02,\n");
    g_string_append_printf(s, "  \"intermediate_size\": %d,\n", sh->hidden_dim);
    g_string_append_printf(s, "  \"max_position_embeddings\": %d,\n", sh->max_pos);
    if (sh->qwen2)
        g_string_append_printf(s, "  \"max_window_layers\": %d,\n", sh->n_layers);
    g_string_append_printf(s, "  \"num_attention_heads\": %d,\n", sh->n_heads);
    g_string_append_printf(s, "  \"num_hidden_layers\": %d,\n", n_layers);
    g_string_append_printf(s, "  \"num_key_value_heads\": %d,\n", sh->n_kv_heads);
    if (!sh->qwen2)
        g_string_append(s, "  \"pretraining_tp\": 1,\n");
    g_string_append_printf(s, "  \"rms_norm_eps\": %g,\n", sh->norm_eps);
    if (sh->llama3_rope)
        g_string_append(s, "  \"rope_scaling\": {\"factor\": 32.0, \"high_freq_factor\": 4.0, "
                           "\"low_freq_factor\": 1.0, \"original_max_position_embeddings\": 8192, "
                           "\"rope_type\": \"llama3\"},\n");
    else
        g_string_append(s, "  \"rope_scaling\": null,\n");
    g_string_append_printf(s, "  \"rope_theta\": %.1f,\n", sh->rope_theta);
    if (sh->qwen2)
        g_string_append_printf(s, "  \"sliding_window\": %d,\n", sh->max_pos);
    g_string_append_printf(s, "  \"tie_word_embeddings\": %s,\n", sh->tied ? "true" : "false");
    g_string_append_printf(s, "  \"torch_dtype\": \"%s\",\n", torch_dtype_name(dt));
    g_string_append(s, "  \"use_cache\": true,\n");
    if (sh->qwen2)
        g_string_append(s, "  \"use_mrope\": false,\n  \"use_sliding_window\": false,\n");
    g_string_append_printf(s, "  \"vocab_size\": %d,\n", sh->vocab);
    if (awq_g > 0)
        g_string_append_printf(s, "  \"quantization_config\": {\"quant_method\": \"awq\", \"bits\": 4, "
                                  "\"group_size\": %d, \"zero_point\": true, \"version\": \"gemm\"},\n",
                               awq_g);
    /* Provenance; ignored by transformers and the engine. */
    g_string_append_printf(s, "  \"hearth_random_model\": {\"shape\": \"%s\", \"seed\": %" G_GUINT64_FORMAT "}\n",
                           sh->name, seed);
    g_string_append(s, "}\n");
    return g_string_free(s, FALSE);
}

static const char *const TOKENIZER_FILES[] = {
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json",
};

/* Check the vocabulary before anything is written. */
static bool
check_tokenizer(const char *dir, const Shape *sh)
{
    HrTokenizer *tok = NULL;
    HrError err = { 0 };
    if (hr_tokenizer_load(dir, &tok, &err) != HR_OK) {
        fprintf(stderr, "hr-make-random-model: --tokenizer: %s\n", err.message);
        return false;
    }
    int v = hr_tokenizer_vocab_size(tok);
    hr_tokenizer_free(tok);
    /* Every token id must have an embedding row; a few rows more are
     * padding, as in Qwen2.5 (151936 rows, 151665 tokens). */
    if (v > sh->vocab || sh->vocab - v > VOCAB_PAD_MAX) {
        fprintf(stderr, "hr-make-random-model: the tokenizer in %s has %d tokens; shape '%s' has a vocabulary "
                "of %d (the tokenizer may have at most %d fewer tokens, never more)\n", dir, v, sh->name, sh->vocab,
                VOCAB_PAD_MAX);
        return false;
    }
    return true;
}

static bool
copy_tokenizer(const char *from, const char *to)
{
    for (size_t i = 0; i < G_N_ELEMENTS(TOKENIZER_FILES); i++) {
        g_autofree char *src = g_build_filename(from, TOKENIZER_FILES[i], NULL);
        g_autofree char *dst = g_build_filename(to, TOKENIZER_FILES[i], NULL);
        if (!g_file_test(src, G_FILE_TEST_EXISTS))
            continue;
        g_autofree char *data = NULL;
        gsize len = 0;
        g_autoptr(GError) gerr = NULL;
        if (!g_file_get_contents(src, &data, &len, &gerr) || !g_file_set_contents(dst, data, (gssize)len, &gerr)) {
            fprintf(stderr, "hr-make-random-model: copying %s: %s\n", src, gerr->message);
            return false;
        }
    }
    return true;
}

/* ---- main ------------------------------------------------------------------------- */

static int
usage_error(GOptionContext *ctx, const char *msg)
{
    fprintf(stderr, "hr-make-random-model: %s\n", msg);
    g_autofree char *help = g_option_context_get_help(ctx, TRUE, NULL);
    fputs(help, stderr);
    return 2;
}

int
main(int argc, char **argv)
{
    g_autofree char *shape_name = NULL, *out_dir = NULL, *dtype_name = NULL, *tok_dir = NULL;
    gint64 seed = 0;
    int awq_g = 0, layers = 0, threads = 0, vocab = 0;
    GString *names = g_string_new(NULL);
    for (size_t i = 0; i < G_N_ELEMENTS(SHAPES); i++)
        g_string_append_printf(names, "%s%s", i ? ", " : "", SHAPES[i].name);
    g_autofree char *shape_names = g_string_free(names, FALSE);
    g_autofree char *unknown_shape = g_strdup_printf("unknown --shape (known: %s)", shape_names);
    GOptionEntry entries[] = {
        { "shape", 0, 0, G_OPTION_ARG_STRING, &shape_name, shape_names, "NAME" },
        { "out", 'o', 0, G_OPTION_ARG_FILENAME, &out_dir, "Output directory (created)", "DIR" },
        { "seed", 0, 0, G_OPTION_ARG_INT64, &seed, "Random seed (default 0)", "N" },
        { "dtype", 0, 0, G_OPTION_ARG_STRING, &dtype_name, "f16 (default), bf16 or f32", "TYPE" },
        { "awq", 0, 0, G_OPTION_ARG_INT, &awq_g, "Write an AutoAWQ GEMM 4-bit checkpoint with group size G", "G" },
        { "tokenizer", 0, 0, G_OPTION_ARG_FILENAME, &tok_dir, "Copy the tokenizer files of DIR (vocab that fits)",
          "DIR" },
        { "layers", 0, 0, G_OPTION_ARG_INT, &layers, "Only the first N decoder layers (default: all)", "N" },
        { "threads", 0, 0, G_OPTION_ARG_INT, &threads, "Fill threads (default: all cores)", "N" },
        { "vocab", 0, 0, G_OPTION_ARG_INT, &vocab, "Vocabulary size instead of the shape's (a smaller test model)",
          "N" },
        { NULL },
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new("— write a Llama model with random weights");
    g_option_context_add_main_entries(ctx, entries, NULL);
    g_autoptr(GError) gerr = NULL;
    if (!g_option_context_parse(ctx, &argc, &argv, &gerr))
        return usage_error(ctx, gerr->message);
    if (argc > 1)
        return usage_error(ctx, "unexpected arguments");
    if (!shape_name || !out_dir)
        return usage_error(ctx, "--shape and --out are required");

    const Shape *sh = NULL;
    for (size_t i = 0; i < G_N_ELEMENTS(SHAPES); i++)
        if (strcmp(shape_name, SHAPES[i].name) == 0)
            sh = &SHAPES[i];
    if (!sh)
        return usage_error(ctx, unknown_shape);
    Shape custom;
    if (vocab < 0 || (vocab > 0 && vocab % 8 != 0))
        return usage_error(ctx, "--vocab must be a positive multiple of 8");
    if (vocab > 0) {
        custom = *sh;
        custom.vocab = vocab;
        sh = &custom;
    }

    HrDType dt = HR_DTYPE_F16;
    if (dtype_name) {
        if (strcmp(dtype_name, "f16") == 0)
            dt = HR_DTYPE_F16;
        else if (strcmp(dtype_name, "bf16") == 0)
            dt = HR_DTYPE_BF16;
        else if (strcmp(dtype_name, "f32") == 0)
            dt = HR_DTYPE_F32;
        else
            return usage_error(ctx, "--dtype must be f16, bf16 or f32");
    }
    if (awq_g < 0)
        return usage_error(ctx, "--awq needs a positive group size");
    if (awq_g > 0) {
        if (dt != HR_DTYPE_F16)
            return usage_error(ctx, "--awq writes FP16 embeddings, norms and scales; --dtype must be f16");
        const int q = sh->n_heads * sh->head_dim;
        if (awq_g % 2 != 0 || sh->dim % awq_g != 0 || q % awq_g != 0 || sh->hidden_dim % awq_g != 0) {
            fprintf(stderr, "hr-make-random-model: --awq %d: the group size must be even and divide every input "
                    "width of '%s' (%d, %d, %d)\n", awq_g, sh->name, sh->dim, q, sh->hidden_dim);
            return 2;
        }
        /* Eight nibbles a word along the output: every shape has out % 8 == 0. */
        g_assert(q % 8 == 0 && sh->n_kv_heads * sh->head_dim % 8 == 0 && sh->dim % 8 == 0 &&
                 sh->hidden_dim % 8 == 0);
    }
    if (layers < 0 || layers > sh->n_layers)
        return usage_error(ctx, "--layers must be between 1 and the shape's layer count");
    const int n_layers = layers > 0 ? layers : sh->n_layers;
    if (threads <= 0)
        threads = (int)g_get_num_processors();
    threads = CLAMP(threads, 1, 64);

    if (tok_dir && !check_tokenizer(tok_dir, sh))
        return 1;
    if (g_mkdir_with_parents(out_dir, 0755) != 0) {
        fprintf(stderr, "hr-make-random-model: cannot create %s: %s\n", out_dir, g_strerror(errno));
        return 1;
    }
    if (tok_dir && !copy_tokenizer(tok_dir, out_dir))
        return 1;

    Model m = {
        .tensors = g_array_new(FALSE, TRUE, sizeof(HrOutTensor)),
        .kinds = g_array_new(FALSE, TRUE, sizeof(FillKind)),
        .seed = (uint64_t)seed,
        .threads = threads,
        /* (q - z)·s with q uniform on 0..15, z 7 or 8: E[(q - z)²] = 21.25 +
         * 0.25; s = base·U(0.75, 1.25): E[s²] = base²·(1 + 1/48). */
        .awq_scale_base = WEIGHT_STD / sqrtf(21.5f * (1.0f + 1.0f / 48.0f)),
    };
    build_tensor_list(&m, sh, n_layers, dt, awq_g);

    gint64 t0 = g_get_monotonic_time();
    g_autofree char *st_path = g_build_filename(out_dir, "model.safetensors", NULL);
    HrError err = { 0 };
    HrStatus st = hr_safetensors_write(st_path, (const HrOutTensor *)(void *)m.tensors->data, m.tensors->len,
                                       fill_tensor, &m, &err);
    size_t total = 0;
    for (guint i = 0; i < m.tensors->len; i++)
        total += hr_out_tensor_bytes(&g_array_index(m.tensors, HrOutTensor, i));
    const guint n_tensors = m.tensors->len;
    g_array_free(m.tensors, TRUE);
    g_array_free(m.kinds, TRUE);
    if (st != HR_OK) {
        fprintf(stderr, "hr-make-random-model: %s\n", err.message);
        return 1;
    }

    g_autofree char *cfg = config_json(sh, n_layers, dt, awq_g, (uint64_t)seed);
    g_autofree char *cfg_path = g_build_filename(out_dir, "config.json", NULL);
    if (!g_file_set_contents(cfg_path, cfg, -1, &gerr)) {
        fprintf(stderr, "hr-make-random-model: %s\n", gerr->message);
        return 1;
    }
    double secs = (double)(g_get_monotonic_time() - t0) / 1e6;
    printf("%s: %s %s, %d layers, %u tensors, %.3f GB in %.1f s (seed %" G_GINT64_FORMAT ", %d threads)\n", out_dir,
           sh->name, awq_g > 0 ? "awq" : torch_dtype_name(dt), n_layers, n_tensors, (double)total / 1e9, secs,
           seed, threads);
    if (awq_g > 0)
        printf("  AWQ GEMM 4-bit, group size %d\n", awq_g);
    return 0;
}
