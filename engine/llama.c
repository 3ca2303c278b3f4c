/* llama.c — the Llama family written once over ops.h (see llama.h).
 *
 * A block, as transformers' LlamaDecoderLayer / Qwen2DecoderLayer /
 * Qwen3DecoderLayer / Gemma3DecoderLayer run it:
 *   xb = rmsnorm(x) * attn_norm
 *   qkv = [Wq | Wk | Wv] xb (+ the q|k|v bias, Qwen2)
 *   each q and k head = rmsnorm(head) * q_norm / k_norm (Qwen3, Gemma 3)
 *   q, k = RoPE(q, k); k, v -> the cache at the token's position
 *   att = attention(q, cache)            (GQA; Mistral's sliding window)
 *   x += Wo att                          (Gemma: x += rmsnorm(Wo att) * post_attn_norm)
 *   xb = rmsnorm(x) * ffn_norm
 *   hb = silu(Wgate xb) * (Wup xb)       (Gemma: gelu_tanh)
 *   x += Wdown hb                        (Gemma: x += rmsnorm(Wdown hb) * post_ffn_norm)
 * then the final norm and the lm_head for the rows whose logits are wanted.
 * Gemma 3 also scales the embeddings by sqrt(dim), applies every norm as
 * (1 + w) (added to the weights here, as llama.cpp's converter does), and
 * gives its sliding-window layers their own RoPE base (nodes' window and
 * local_rope) and its scores the scale 1 / sqrt(query_pre_attn_scalar);
 * Gemma 2 soft-caps the scores and the logits.
 * Loading walks the checkpoint a layer at a time: the layer's pages are
 * populated (MADV_POPULATE_READ: the reading time) while the next layer goes
 * to the kernel's read-ahead, then the backend takes the layer's weights.
 */
#include "llama.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <glib.h>

#include "cpu-kernels.h"
#include "hr-half.h"

typedef struct {
    HrOpsWeight *attn_norm, *ffn_norm, *wq, *wk, *wv, *wo, *wg, *wu, *wd, *bias, *q_norm, *k_norm;
    HrOpsWeight *post_attn_norm, *post_ffn_norm;   /* Gemma */
    HrOpsBuffer *kc, *vc;
    int ring;                   /* the caches' entries when they are a ring (sliding-window layers), else 0 */
} LlamaLayer;

typedef struct {
    const HrOps *ops;
    void *dev;
    HrModelConfig cfg;
    HrBackendOptions opt;
    HrOpsLimits lim;
    HrOpsWeight *embed, *lm_head, *final_norm;
    LlamaLayer *layers;
    HrOpsBuffer *x, *xb, *qkv, *q, *att, *hb;
    HrOpsBuffer *xo;            /* Gemma: a linear's output before its norm */
    void *prog_dec, *prog_pre;
    float *logits;              /* [logits_cap, vocab] */
    int logits_rows, logits_cap;
    float embed_scale;          /* the EMBED node's (0: none) */
    HrSampleSpec spec;          /* for the next one-token forward (set_sample) */
    bool have_spec;
    bool sampled;               /* the last forward drew candidates; its logits are on the device */
    double load_read_s, load_s;
    int max_step;               /* tokens per step: the device's, or less where a ring needs it */
    bool rings;                 /* some layer's caches are a ring */
    int end;                    /* the last forward's pos + n */
    int high;                   /* the highest pos + n run since a forward started at 0: the rings hold
                                   positions [high - ring, end) */
} Llama;

/* A sliding-window layer keeps a ring of its window, one step and this many positions more, so that a new turn
 * may rewind that far (a regenerated reply of up to about this length) and still reuse the cache. */
#define RING_REWIND 1024

/* ---- the weights -------------------------------------------------------------------- */

/* The weights the model takes, in loading order, and where each goes. */
typedef struct {
    GArray *specs;              /* HrWeightSpec */
    GPtrArray *slots;           /* HrOpsWeight ** in the Llama, one per spec */
} SpecList;

static void
add_spec(SpecList *a, HrOpsWeight **slot, HrWeightRole role, int layer, const char *name, int64_t rows,
         int64_t cols)
{
    /* k and v run with q, up with gate (model_nodes) */
    const bool stack = g_str_has_suffix(name, "k_proj") || g_str_has_suffix(name, "v_proj") ||
                       g_str_has_suffix(name, "up_proj");
    HrWeightSpec s = { .role = role, .layer = layer, .rows = rows, .cols = cols, .stack = stack };
    g_strlcpy(s.name, name, sizeof s.name);
    g_array_append_val(a->specs, s);
    g_ptr_array_add(a->slots, slot);
}

/* Every weight the model takes, in loading order: the embedding, the final
 * norm and the lm_head, then layer by layer. */
static HrStatus
model_specs(Llama *m, const HrTensorSet *ts, SpecList *a, HrError *err)
{
    const HrModelConfig *cfg = &m->cfg;
    const int64_t dim = cfg->dim, hd = cfg->head_dim, hidden = cfg->hidden_dim, vocab = cfg->vocab_size;
    const int64_t q_dim = cfg->n_heads * hd, kv_dim = cfg->n_kv_heads * hd;
    add_spec(a, &m->embed, HR_W_EMBED, -1, "model.embed_tokens.weight", vocab, dim);
    add_spec(a, &m->final_norm, HR_W_VECTOR, -1, "model.norm.weight", dim, 1);
    if (hr_tensor_set_find(ts, "lm_head.weight")) {
        add_spec(a, &m->lm_head, HR_W_LM_HEAD, -1, "lm_head.weight", vocab, dim);
    } else if (cfg->tie_embeddings) {
        add_spec(a, &m->lm_head, HR_W_LM_HEAD, -1, "model.embed_tokens.weight", vocab, dim);
        g_array_index(a->specs, HrWeightSpec, a->specs->len - 1).tied = true;
    } else {
        return hr_error_set(err, HR_ERR_FORMAT, "tensor 'lm_head.weight' is missing and the config does not tie "
                            "the embeddings (tie_word_embeddings is false)");
    }
    char name[128];
    for (int l = 0; l < cfg->n_layers; l++) {
        LlamaLayer *L = &m->layers[l];
#define LNAME(suffix) (g_snprintf(name, sizeof name, "model.layers.%d." suffix, l), name)
        add_spec(a, &L->attn_norm, HR_W_VECTOR, l, LNAME("input_layernorm.weight"), dim, 1);
        if (cfg->sandwich_norms) {
            add_spec(a, &L->post_attn_norm, HR_W_VECTOR, l, LNAME("post_attention_layernorm.weight"), dim, 1);
            add_spec(a, &L->ffn_norm, HR_W_VECTOR, l, LNAME("pre_feedforward_layernorm.weight"), dim, 1);
            add_spec(a, &L->post_ffn_norm, HR_W_VECTOR, l, LNAME("post_feedforward_layernorm.weight"), dim, 1);
        } else {
            add_spec(a, &L->ffn_norm, HR_W_VECTOR, l, LNAME("post_attention_layernorm.weight"), dim, 1);
        }
        add_spec(a, &L->wq, HR_W_LINEAR, l, LNAME("self_attn.q_proj"), q_dim, dim);
        add_spec(a, &L->wk, HR_W_LINEAR, l, LNAME("self_attn.k_proj"), kv_dim, dim);
        add_spec(a, &L->wv, HR_W_LINEAR, l, LNAME("self_attn.v_proj"), kv_dim, dim);
        add_spec(a, &L->wo, HR_W_LINEAR, l, LNAME("self_attn.o_proj"), dim, q_dim);
        add_spec(a, &L->wg, HR_W_LINEAR, l, LNAME("mlp.gate_proj"), hidden, dim);
        add_spec(a, &L->wu, HR_W_LINEAR, l, LNAME("mlp.up_proj"), hidden, dim);
        add_spec(a, &L->wd, HR_W_LINEAR, l, LNAME("mlp.down_proj"), dim, hidden);
        if (cfg->qkv_bias) /* the q|k|v biases as one vector (take_weight reads the three) */
            add_spec(a, &L->bias, HR_W_VECTOR, l, LNAME("self_attn.q_proj.bias"), q_dim + 2 * kv_dim, 1);
        if (cfg->qk_norm) {
            add_spec(a, &L->q_norm, HR_W_VECTOR, l, LNAME("self_attn.q_norm.weight"), hd, 1);
            add_spec(a, &L->k_norm, HR_W_VECTOR, l, LNAME("self_attn.k_norm.weight"), hd, 1);
        }
#undef LNAME
    }
    return HR_OK;
}

/* A 1-D F32/F16/BF16 tensor of n values into dst. */
static HrStatus
read_vector(const HrTensorSet *ts, const char *name, int64_t n, float *dst, HrError *err)
{
    const HrTensor *t = hr_tensor_set_find(ts, name);
    if (!t)
        return hr_error_set(err, HR_ERR_FORMAT, "tensor '%s' is missing", name);
    if (t->dtype != HR_DTYPE_F32 && t->dtype != HR_DTYPE_F16 && t->dtype != HR_DTYPE_BF16)
        return hr_error_set(err, HR_ERR_UNSUPPORTED, "%s: tensor '%s' has dtype %s; vectors are read as F32, F16 "
                            "or BF16", t->file, name, hr_tensor_type_name(t));
    if (t->n_dims != 1 || t->shape[0] != n) {
        char shape[128] = "";
        for (int i = 0; i < t->n_dims; i++)
            g_snprintf(shape + strlen(shape), sizeof shape - strlen(shape), "%s%" G_GINT64_FORMAT, i ? ", " : "",
                       t->shape[i]);
        return hr_error_set(err, HR_ERR_FORMAT, "%s: tensor '%s' has shape [%s]; the config needs [%" G_GINT64_FORMAT
                            "]", t->file, name, shape, n);
    }
    /* one row of n; misaligned bytes (safetensors does not promise alignment) copied first */
    void *copy = (uintptr_t)t->data % hr_dtype_size(t->dtype) ? g_memdup2(t->data, t->n_bytes) : NULL;
    const HrMat m = { copy ? copy : t->data, t->dtype, 1, (int)n };
    hr_mat_row_f32(&m, 0, dst, (int)n);
    g_free(copy);
    return HR_OK;
}

/* madvise the whole pages covering [p, p + n). */
static void
advise_range(const void *p, size_t n, int advice)
{
    const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t a = (uintptr_t)p & ~(page - 1), b = ((uintptr_t)p + n + page - 1) & ~(page - 1);
    if (n && b > a)
        (void)madvise((void *)a, b - a, advice);
}

/* Reading, layer by layer (layer -1: the tensors outside the layers): the
 * pages of the layer about to be taken are populated (mapped, and read from
 * disk when the cache is cold: the reading time), and the next layer's are
 * handed to the kernel's read-ahead so that the disk works while the backend
 * converts this one. Failures only cost speed (an old kernel without
 * MADV_POPULATE_READ pages in as the conversion touches the bytes). */
static void
page_in_layer(Llama *m, const HrTensorSet *ts, int layer, bool ahead)
{
    const gint64 t0 = g_get_monotonic_time();
    /* An untied embedding table is read a row per token, never whole. */
    const bool skip_embed = hr_tensor_set_find(ts, "lm_head.weight") != NULL;
    for (size_t i = 0; i < hr_tensor_set_count(ts); i++) {
        const HrTensor *t = hr_tensor_set_get(ts, i);
        const int l = hr_tensor_layer(t->name);
        if (skip_embed && strcmp(t->name, "model.embed_tokens.weight") == 0)
            continue;
        if (l == layer)
#ifdef MADV_POPULATE_READ
            advise_range(t->data, t->n_bytes, MADV_POPULATE_READ);
#else
            advise_range(t->data, t->n_bytes, MADV_WILLNEED);
#endif
        else if (ahead && l == layer + 1)
            advise_range(t->data, t->n_bytes, MADV_WILLNEED);
    }
    m->load_read_s += (double)(g_get_monotonic_time() - t0) / 1e6;
}

static HrStatus
take_weight(Llama *m, const HrTensorSet *ts, const HrWeightSpec *s, HrOpsWeight **slot, HrError *err)
{
    const HrModelConfig *cfg = &m->cfg;
    float *data = NULL;
    HrStatus st = HR_OK;
    if (s->role == HR_W_VECTOR) {
        data = g_new(float, s->rows);
        if (s->layer >= 0 && slot == &m->layers[s->layer].bias) { /* q | k | v */
            const int64_t q_dim = (int64_t)cfg->n_heads * cfg->head_dim, kv_dim = (int64_t)cfg->n_kv_heads *
                                                                                   cfg->head_dim;
            char name[128];
            g_strlcpy(name, s->name, sizeof name);
            char *p = strstr(name, "q_proj.bias");
            st = read_vector(ts, name, q_dim, data, err);
            if (st == HR_OK) {
                *p = 'k';
                st = read_vector(ts, name, kv_dim, data + q_dim, err);
            }
            if (st == HR_OK) {
                *p = 'v';
                st = read_vector(ts, name, kv_dim, data + q_dim + kv_dim, err);
            }
        } else {
            st = read_vector(ts, s->name, s->rows, data, err);
            /* Gemma: every norm is (1 + w) */
            const bool is_norm = g_str_has_suffix(s->name, "norm.weight");
            for (int64_t i = 0; st == HR_OK && is_norm && cfg->norm_plus_one && i < s->rows; i++)
                data[i] += 1.0f;
        }
    }
    if (st == HR_OK)
        st = m->ops->weight(m->dev, ts, s, data, s->tied ? m->embed : NULL, slot, err);
    g_free(data);
    return st;
}

/* ---- the step ----------------------------------------------------------------------- */

static void
node(GArray *a, HrNode n)
{
    g_array_append_val(a, n);
}

/* x += w src, or (Gemma, post_norm) x += rmsnorm(w src) * post_norm. */
static void
add_to_residual(GArray *a, Llama *m, int l, HrOpsBuffer *src, HrOpsWeight *w, HrOpsWeight *post_norm)
{
    if (!post_norm) {
        node(a, (HrNode){ .op = HR_OP_LINEAR, .layer = l, .src = src, .dst = m->x, .w = { w }, .n_w = 1,
                          .residual = true });
        return;
    }
    node(a, (HrNode){ .op = HR_OP_LINEAR, .layer = l, .src = src, .dst = m->xo, .w = { w }, .n_w = 1 });
    node(a, (HrNode){ .op = HR_OP_RMSNORM, .layer = l, .src = m->xo, .dst = m->x, .w = { post_norm },
                      .residual = true });
}

/* The nodes of one step (the same list for decode and prefill). */
static GArray *
model_nodes(Llama *m)
{
    const HrModelConfig *cfg = &m->cfg;
    GArray *a = g_array_new(FALSE, FALSE, sizeof(HrNode));
    node(a, (HrNode){ .op = HR_OP_EMBED, .layer = -1, .dst = m->x, .w = { m->embed }, .scale = m->embed_scale });
    for (int l = 0; l < cfg->n_layers; l++) {
        const LlamaLayer *L = &m->layers[l];
        const bool local = hr_model_config_layer_local(cfg, l);
        node(a, (HrNode){ .op = HR_OP_RMSNORM, .layer = l, .src = m->x, .dst = m->xb, .w = { L->attn_norm } });
        node(a, (HrNode){ .op = HR_OP_LINEAR, .layer = l, .src = m->xb, .dst = m->qkv, .w = { L->wq, L->wk, L->wv },
                          .n_w = 3, .bias = L->bias });
        node(a, (HrNode){ .op = HR_OP_ROPE_KV, .layer = l, .src = m->qkv, .dst = m->q, .w = { L->q_norm, L->k_norm },
                          .n_w = L->q_norm ? 2 : 0, .k_cache = L->kc, .v_cache = L->vc, .ring = L->ring,
                          .local_rope = local && cfg->rope_local_theta > 0.0f });
        node(a, (HrNode){ .op = HR_OP_ATTENTION, .layer = l, .src = m->q, .dst = m->att, .k_cache = L->kc,
                          .v_cache = L->vc, .ring = L->ring, .window = hr_model_config_layer_window(cfg, l),
                          .softcap = cfg->attn_softcap,
                          .scale = cfg->query_scale > 0.0f ? 1.0f / sqrtf(cfg->query_scale) : 0.0f });
        add_to_residual(a, m, l, m->att, L->wo, L->post_attn_norm);
        node(a, (HrNode){ .op = HR_OP_RMSNORM, .layer = l, .src = m->x, .dst = m->xb, .w = { L->ffn_norm } });
        node(a, (HrNode){ .op = HR_OP_LINEAR, .layer = l, .src = m->xb, .dst = m->hb, .w = { L->wg, L->wu },
                          .n_w = 2, .gate = true, .act = cfg->act });
        add_to_residual(a, m, l, m->hb, L->wd, L->post_ffn_norm);
    }
    node(a, (HrNode){ .op = HR_OP_RMSNORM, .layer = -1, .src = m->x, .dst = m->xb, .w = { m->final_norm },
                      .logit_rows = true });
    node(a, (HrNode){ .op = HR_OP_LOGITS, .layer = -1, .src = m->xb, .w = { m->lm_head },
                      .softcap = cfg->final_softcap });
    return a;
}

float
hr_llama_embed_scale(const HrModelConfig *cfg, const HrTensorSet *ts)
{
    /* Gemma: transformers multiplies by the scale in the embedding's dtype (a BF16 checkpoint's sqrt(2560)
     * is 50.5); a GGUF (llama.cpp's convention, whose norms hold 1 + w already) by the exact one */
    const HrTensor *e = hr_tensor_set_find(ts, "model.embed_tokens.weight");
    if (e && cfg->norm_plus_one && e->dtype == HR_DTYPE_BF16)
        return hr_bf16_to_f32(hr_f32_to_bf16(cfg->embed_scale));
    if (e && cfg->norm_plus_one && e->dtype == HR_DTYPE_F16)
        return hr_f16_to_f32(hr_f32_to_f16(cfg->embed_scale));
    return cfg->embed_scale;
}

/* ---- create / destroy --------------------------------------------------------------- */

void
hr_llama_destroy(void *p)
{
    Llama *m = p;
    if (!m)
        return;
    if (m->dev)
        m->ops->close(m->dev); /* frees every weight, buffer and program */
    g_free(m->layers);
    g_free(m->logits);
    g_free(m);
}

int
hr_llama_kv_entries(const HrModelConfig *cfg, int layer, int context, int max_tokens)
{
    const char *env = g_getenv("HEARTH_KV_RING");
    const int forced = env ? atoi(env) : -1;   /* 0: no rings */
    const int w = hr_model_config_layer_window(cfg, layer);
    if (w <= 0 || forced == 0)
        return context;
    const int64_t ring = forced > 0 ? MAX(forced, w + 1) : (int64_t)w + max_tokens + RING_REWIND;
    return ring < context ? (int)ring : context;
}

uint64_t
hr_llama_kv_bytes(const HrModelConfig *cfg, int context, int max_tokens)
{
    uint64_t entries = 0;
    for (int l = 0; context > 0 && l < cfg->n_layers; l++)
        entries += (uint64_t)hr_llama_kv_entries(cfg, l, context, max_tokens);
    return entries * 2 * (uint64_t)cfg->n_kv_heads * (uint64_t)cfg->head_dim * 2;
}

/* Every layer's K and V caches: a ring where hr_llama_kv_entries gives fewer entries than the context and the
 * backend has rings. A ring of R entries over a window of W holds every key a step of up to R - W + 1 tokens
 * needs (its queries reach back W - 1 before its first token while it writes its own positions). */
static HrStatus
kv_caches(Llama *m, HrError *err)
{
    const HrModelConfig *cfg = &m->cfg;
    m->max_step = m->lim.max_tokens;
    for (int l = 0; l < cfg->n_layers; l++) {
        LlamaLayer *L = &m->layers[l];
        const int w = hr_model_config_layer_window(cfg, l);
        const int e = hr_llama_kv_entries(cfg, l, m->opt.context_len, m->lim.max_tokens);
        const int ring = m->ops->kv_ring && e < m->opt.context_len ? e : 0;
        HrStatus st = ring ? m->ops->kv_ring(m->dev, ring, &L->kc, &L->vc, err)
                           : m->ops->kv_cache(m->dev, &L->kc, &L->vc, err);
        if (st != HR_OK)
            return st;
        L->ring = ring;
        if (ring) {
            m->max_step = MIN(m->max_step, ring - w + 1);
            m->rings = true;
        }
    }
    return HR_OK;
}

/* How far before m->end a forward may start with every ring still holding the window it needs: a start at s
 * reads positions [s - w + 1, s), which a ring of R entries holds while s - w + 1 >= high - R. */
static int
rewind_limit(const Llama *m)
{
    int r = G_MAXINT;
    for (int l = 0; m->rings && l < m->cfg.n_layers; l++) {
        const LlamaLayer *L = &m->layers[l];
        if (L->ring && m->high > L->ring)
            r = MIN(r, MAX(0, m->end - (m->high - L->ring + hr_model_config_layer_window(&m->cfg, l) - 1)));
    }
    return r;
}

HrStatus
hr_llama_create(const HrOps *ops, const HrModelConfig *cfg, const HrTensorSet *ts, const HrBackendOptions *opt,
                HrProgressFunc progress, void *user, void **ctx_out, HrError *err)
{
    *ctx_out = NULL;
    if (opt->context_len < 1)
        return hr_error_set(err, HR_ERR_INVALID_ARG, "context length must be positive");
    if (ops->api_version != HR_OPS_API_VERSION)
        return hr_error_set(err, HR_ERR_UNSUPPORTED, "backend '%s' implements ops version %u, not %u", ops->name,
                            ops->api_version, HR_OPS_API_VERSION);
    Llama *m = g_new0(Llama, 1);
    m->ops = ops;
    m->cfg = *cfg;
    m->opt = *opt;
    if (cfg->embed_scale != 1.0f)
        m->embed_scale = hr_llama_embed_scale(cfg, ts);
    m->layers = g_new0(LlamaLayer, cfg->n_layers);
    SpecList list = { g_array_new(FALSE, FALSE, sizeof(HrWeightSpec)), g_ptr_array_new() };
    GArray *specs = list.specs;
    HrStatus st = model_specs(m, ts, &list, err);
    if (st == HR_OK)
        st = ops->open(cfg, opt, ts, (const HrWeightSpec *)specs->data, (int)specs->len, &m->dev, &m->lim, err);
    /* the load time: reading, converting and uploading (device set-up is not) */
    const gint64 t_start = g_get_monotonic_time();

    /* Progress by the checkpoint bytes each weight stands for. */
    double total = 0.0, done = 0.0;
    for (guint i = 0; i < specs->len; i++)
        total += (double)g_array_index(specs, HrWeightSpec, i).rows * (double)g_array_index(specs, HrWeightSpec,
                                                                                           i).cols;
    int paged = -2;
    for (guint i = 0; st == HR_OK && i < specs->len; i++) {
        const HrWeightSpec *s = &g_array_index(specs, HrWeightSpec, i);
        if (s->layer != paged) {
            page_in_layer(m, ts, s->layer, s->layer + 1 < cfg->n_layers);
            paged = s->layer;
        }
        st = take_weight(m, ts, s, g_ptr_array_index(list.slots, i), err);
        done += (double)s->rows * (double)s->cols;
        if (st == HR_OK && progress && !progress(total > 0 ? done / total : 1.0, "weights", user))
            st = hr_error_set(err, HR_ERR_CANCELLED, "loading was cancelled");
    }
    g_array_unref(specs);
    g_ptr_array_unref(list.slots);
    if (st == HR_OK)
        st = ops->weights_done(m->dev, err);
    m->load_s = (double)(g_get_monotonic_time() - t_start) / 1e6;

    const int64_t dim = cfg->dim, hd = cfg->head_dim;
    const int64_t q_dim = cfg->n_heads * hd, kv_dim = cfg->n_kv_heads * hd;
    st = st == HR_OK ? kv_caches(m, err) : st;
    if (st == HR_OK &&
        ((st = ops->activation(m->dev, dim, &m->x, err)) || (st = ops->activation(m->dev, dim, &m->xb, err)) ||
         (st = ops->activation(m->dev, q_dim + 2 * kv_dim, &m->qkv, err)) ||
         (st = ops->activation(m->dev, q_dim, &m->q, err)) || (st = ops->activation(m->dev, q_dim, &m->att, err)) ||
         (st = ops->activation(m->dev, cfg->hidden_dim, &m->hb, err)) ||
         (cfg->sandwich_norms && (st = ops->activation(m->dev, dim, &m->xo, err))))) {
    }
    if (st == HR_OK) {
        GArray *nodes = model_nodes(m);
        st = ops->compile(m->dev, (const HrNode *)nodes->data, (int)nodes->len, 1, &m->prog_dec, err);
        if (st == HR_OK)
            st = ops->compile(m->dev, (const HrNode *)nodes->data, (int)nodes->len, m->lim.max_tokens, &m->prog_pre,
                              err);
        g_array_unref(nodes);
    }
    if (st != HR_OK) {
        hr_llama_destroy(m);
        return st;
    }
    *ctx_out = m;
    return HR_OK;
}

/* ---- forward ------------------------------------------------------------------------ */

HrStatus
hr_llama_forward(void *p, const int32_t *tokens, int n_tokens, int pos, bool all_logits, HrError *err)
{
    Llama *m = p;
    const HrModelConfig *cfg = &m->cfg;
    HrStatus bad = hr_backend_check_forward(cfg, m->opt.context_len, tokens, n_tokens, pos, err);
    if (bad != HR_OK)
        return bad;
    if (m->rings && pos > 0 && pos < m->end && m->end - pos > rewind_limit(m))   /* (not on an append) */
        return hr_error_set(err, HR_ERR_INVALID_ARG, "forward: position %d is %d before the last one run, and the "
                            "sliding-window layers' caches no longer hold the positions it needs (at most %d back; "
                            "start at 0)", pos, m->end - pos, rewind_limit(m));
    m->high = pos == 0 ? pos + n_tokens : MAX(m->high, pos + n_tokens);
    m->end = pos + n_tokens;
    const bool sample = m->have_spec && n_tokens == 1 && !all_logits;
    m->have_spec = false;
    m->sampled = false;
    m->logits_rows = 0;
    if (sample) {
        /* the logits stay on the device; the step returns its candidates */
        HrStep s = { .tokens = tokens, .n = 1, .pos = pos, .logit_first = 0, .logits = NULL, .sample = &m->spec };
        HrStatus st = m->ops->run(m->dev, m->prog_dec, &s, err);
        if (st != HR_OK)
            return st;
        m->sampled = true;
        m->logits_rows = 1;
        return HR_OK;
    }
    const int rows = all_logits ? n_tokens : 1;
    if (rows > m->logits_cap) {
        g_free(m->logits);
        m->logits = g_try_malloc((size_t)rows * (size_t)cfg->vocab_size * sizeof(float));
        if (!m->logits) {
            m->logits_cap = 0;
            return hr_error_set(err, HR_ERR_NOMEM, "forward: no memory for %d rows of logits", rows);
        }
        m->logits_cap = rows;
    }
    /* every row's logits: chunks of at most the rows one step returns */
    const int step = all_logits ? MIN(m->max_step, m->lim.max_logit_rows) : m->max_step;
    for (int done = 0; done < n_tokens; done += step) {
        const int n = MIN(step, n_tokens - done);
        const bool last = done + n == n_tokens;
        HrStep s = {
            .tokens = tokens + done, .n = n, .pos = pos + done,
            .logit_first = all_logits ? 0 : last ? n - 1 : n,
            .logits = all_logits ? m->logits + (size_t)done * (size_t)cfg->vocab_size : m->logits,
        };
        HrStatus st = m->ops->run(m->dev, n == 1 ? m->prog_dec : m->prog_pre, &s, err);
        if (st != HR_OK)
            return st;
    }
    m->logits_rows = rows;
    return HR_OK;
}

HrStatus
hr_llama_get_logits(void *p, int row, float *out, HrError *err)
{
    Llama *m = p;
    HrStatus st = hr_backend_logits_row(&row, m->logits_rows, err);
    if (st != HR_OK)
        return st;
    if (m->sampled)
        return m->ops->read_logits(m->dev, out, err);
    memcpy(out, m->logits + (size_t)row * (size_t)m->cfg.vocab_size, sizeof(float) * (size_t)m->cfg.vocab_size);
    return HR_OK;
}

int
hr_llama_kv_rewind(void *p)
{
    return rewind_limit(p);
}

void
hr_llama_memory(void *p, HrMemoryReport *out)
{
    Llama *m = p;
    memset(out, 0, sizeof *out);
    m->ops->memory(m->dev, out);
    out->scratch_bytes += (size_t)m->logits_cap * (size_t)m->cfg.vocab_size * sizeof(float);
    out->load_read_s = m->load_read_s;
    out->load_convert_s = MAX(0.0, m->load_s - m->load_read_s - out->load_upload_s);
}

void *
hr_llama_device(void *ctx)
{
    return ((Llama *)ctx)->dev;
}

void
hr_llama_set_sample(void *ctx, const HrSampleSpec *spec)
{
    Llama *m = ctx;
    m->have_spec = spec && m->lim.draws && m->ops->candidates && m->ops->read_logits;
    if (m->have_spec)
        m->spec = *spec;
}

HrStatus
hr_llama_candidates(void *ctx, HrCandidates *out, HrError *err)
{
    Llama *m = ctx;
    if (!m->sampled)
        return hr_error_set(err, HR_ERR_UNSUPPORTED, "the last step drew no candidates");
    return m->ops->candidates(m->dev, out, err);
}

int
hr_llama_last_argmax(void *ctx)
{
    Llama *m = ctx;
    return m->ops->last_argmax ? m->ops->last_argmax(m->dev) : -1;
}
