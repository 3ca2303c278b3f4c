/* vk-backend.c — the Vulkan backend: a whole Llama-family model on one
 * Vulkan device.
 *
 * Memory (all device-local unless noted; one buffer per tensor so no binding
 * exceeds maxStorageBufferRange, and the embedding/lm_head split into row
 * slices when one tensor is larger than that):
 *   weights   AWQ linears repacked once at load into the 4-bit row layout of
 *             vk-kernels.h (nibbles along K, one scale|zero word per
 *             (row, group)); GGUF blocks (linears, embedding, lm_head) into
 *             the 4-bit or int8 layouts with their exact scales and offsets
 *             (hr_vk_pack_ggml); dense linears, the embedding and lm_head as
 *             FP16 rows; norm weights, biases (q|k|v concatenated) and the
 *             RoPE cos/sin table [context, head_dim/2] in FP32. Uploaded
 *             through a host-visible staging ring (RING segments, each with
 *             its own command buffer and fence, so memcpy overlaps copies).
 *   KV cache  FP16 [context, n_kv*head_dim] per layer, K and V.
 *   scratch   FP32 activations for CHUNK tokens; attention partials
 *             [CHUNK, heads, splits, head_dim + 2].
 *   host      params (pos, n_tokens, logit_first, seq_len) and token ids:
 *             host-visible (device-local where the BAR allows); logits
 *             [LROWS, vocab] (the lm_head writes the rows from logit_first
 *             on, from row 0) and the argmax result: host-visible and
 *             host-cached, so reading them is not an uncached PCIe read.
 * CHUNK: up to CHUNK_MAX (512) prompt tokens a submit, so each weight is read
 * once per 512 tokens; halved until the scratch fits the device memory
 * budget beside the weights and KV cache and every buffer fits a binding
 * (HEARTH_VULKAN_CHUNK=N lowers the ceiling: tests force several chunks).
 * LROWS = min(CHUNK, the rows 64 MiB of logits hold): a forward that wants
 * every row's logits (perplexity) runs in chunks of LROWS.
 * Execution: two command buffers are recorded once at load — decode (one
 * token, GEMV kernels) and prefill (up to CHUNK tokens, the tiled GEMM or
 * the GEMV kernels with several tokens per workgroup) — and replayed: each
 * step writes the params and token ids, submits one command buffer and
 * waits.
 */
#include "vk-backend.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "cpu-kernels.h"
#include "gguf.h"
#include "hr-half.h"
#include "vk-bench.h"
#include "vk-kernels.h"

enum { CHUNK_MAX = 512, RING = 4 };
#define RING_SEGMENT ((size_t)1 << 20)
#define LOGITS_MAX_BYTES ((size_t)64 << 20)

typedef struct {
    HrVkWeight wq, wk, wv, wo, wg, wu, wd;
    HrVkBuffer attn_norm, ffn_norm, bias;   /* bias: [q|k|v] or none */
    HrVkBuffer kc, vc;
} VkLayer;

typedef struct {
    HrVkBuffer staging;
    VkCommandBuffer cb[RING];
    VkFence fence[RING];
    bool pending[RING];
    int next;
} Uploader;

typedef struct {
    HrModelConfig cfg;
    HrBackendOptions opt;
    HrVkContext *vk;
    HrVkKernels *kern;
    HrVkWeight *emb, *lm;          /* row slices of the embedding and lm_head (lm == emb when tied) */
    int n_emb, n_lm;
    uint32_t emb_rows, lm_rows;    /* rows per slice */
    bool tied;
    uint64_t max_binding;          /* bytes one storage binding may span */
    HrVkBuffer final_norm, rope_tab;
    VkLayer *layers;
    HrVkBuffer x, xb, qkv, q, att, hb, part;
    HrVkBuffer params, tokens, logits, argmax;     /* host-visible */
    uint32_t chunk;                /* prompt tokens per prefill submit */
    uint32_t logit_rows;           /* rows of the logits buffer */
    GArray *dec, *pre;                              /* HrVkDispatch */
    VkCommandBuffer cb_dec, cb_pre;
    float *host_logits;
    int logits_rows, logits_cap;
    int last_argmax;
    size_t weight_bytes, kv_bytes, scratch_bytes;
    char *location;
    Uploader up;
    HrThreadPool *pool;                            /* repacking at load (freed once loaded) */
    size_t up_total, up_done;
    double load_convert_s, load_upload_s;    /* upload: time in upload(); convert: the rest of taking weights */
    HrProgressFunc progress;
    void *progress_user;
} VkCtx;

/* ---- sizes ---------------------------------------------------------------------------- */

static size_t
f16_bytes(int64_t N, int64_t K)
{
    return (size_t)N * (size_t)((K + 7) / 8 * 4) * 4;
}

/* Bytes the device copy of a dense or GGUF [N, K] table takes. */
static size_t
table_bytes(const HrTensorSet *ts, const char *name, int64_t N, int64_t K)
{
    const HrTensor *t = hr_tensor_set_find(ts, name);
    if (t && t->dtype == HR_DTYPE_GGML && hr_vk_ggml_supported(t->ggml_type))
        return hr_vk_ggml_words(t->ggml_type, N, K) * 4;
    return f16_bytes(N, K);
}

/* Bytes the device copy of linear `prefix` takes (0 when its tensors are
 * missing: the loader reports that properly later). */
static size_t
linear_bytes(const HrTensorSet *ts, const char *prefix, int64_t N, int64_t K)
{
    char name[160];
    g_snprintf(name, sizeof name, "%s.scales", prefix);
    const HrTensor *s = hr_tensor_set_find(ts, name);
    if (s && s->n_dims == 2)
        return (size_t)N * (size_t)((K + 7) / 8) * 4 + (size_t)N * (size_t)s->shape[0] * 4;
    g_snprintf(name, sizeof name, "%s.weight", prefix);
    return table_bytes(ts, name, N, K);
}

/* ---- upload --------------------------------------------------------------------------- */

static HrStatus
uploader_init(VkCtx *c, HrError *err)
{
    Uploader *u = &c->up;
    VkDevice dev = hr_vk_context_device(c->vk);
    HrStatus st = hr_vk_buffer_new_host(c->vk, RING * RING_SEGMENT, &u->staging, err);
    if (st != HR_OK)
        return st;
    VkCommandBufferAllocateInfo ai = {
        .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
        .commandPool = hr_vk_context_command_pool(c->vk),
        .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
        .commandBufferCount = RING,
    };
    VkResult r = vkAllocateCommandBuffers(dev, &ai, u->cb);
    if (r != VK_SUCCESS)
        return hr_vk_context_vk_fail(err, r, "vkAllocateCommandBuffers");
    for (int i = 0; i < RING; i++) {
        VkFenceCreateInfo fci = { .sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO };
        r = vkCreateFence(dev, &fci, NULL, &u->fence[i]);
        if (r != VK_SUCCESS)
            return hr_vk_context_vk_fail(err, r, "vkCreateFence");
    }
    return HR_OK;
}

static HrStatus
uploader_wait(VkCtx *c, int i, HrError *err)
{
    Uploader *u = &c->up;
    if (!u->pending[i])
        return HR_OK;
    VkDevice dev = hr_vk_context_device(c->vk);
    VkResult r = vkWaitForFences(dev, 1, &u->fence[i], VK_TRUE, UINT64_MAX);
    vkResetFences(dev, 1, &u->fence[i]);
    u->pending[i] = false;
    if (r != VK_SUCCESS)
        return hr_vk_context_vk_fail(err, r, "waiting for an upload");
    return HR_OK;
}

static HrStatus
uploader_finish(VkCtx *c, HrError *err)
{
    HrStatus st = HR_OK;
    for (int i = 0; i < RING; i++) {
        HrStatus s = uploader_wait(c, i, err);
        if (st == HR_OK)
            st = s;
    }
    return st;
}

static void
uploader_free(VkCtx *c)
{
    Uploader *u = &c->up;
    VkDevice dev = hr_vk_context_device(c->vk);
    uploader_finish(c, NULL);
    for (int i = 0; i < RING; i++) {
        if (u->fence[i])
            vkDestroyFence(dev, u->fence[i], NULL);
    }
    if (u->cb[0])
        vkFreeCommandBuffers(dev, hr_vk_context_command_pool(c->vk), RING, u->cb);
    hr_vk_buffer_free(c->vk, &u->staging);
    memset(u, 0, sizeof *u);
}

static HrStatus upload_bytes(VkCtx *c, HrVkBuffer *dst, const void *src, size_t bytes, HrError *err);

/* Copies host bytes to a device buffer through the staging ring (timed). */
static HrStatus
upload(VkCtx *c, HrVkBuffer *dst, const void *src, size_t bytes, HrError *err)
{
    const gint64 t0 = g_get_monotonic_time();
    HrStatus st = upload_bytes(c, dst, src, bytes, err);
    c->load_upload_s += (double)(g_get_monotonic_time() - t0) / 1e6;
    return st;
}

static HrStatus
upload_bytes(VkCtx *c, HrVkBuffer *dst, const void *src, size_t bytes, HrError *err)
{
    Uploader *u = &c->up;
    for (size_t off = 0; off < bytes; off += RING_SEGMENT) {
        size_t n = MIN(RING_SEGMENT, bytes - off);
        int i = u->next;
        u->next = (u->next + 1) % RING;
        HrStatus st = uploader_wait(c, i, err);
        if (st != HR_OK)
            return st;
        memcpy((char *)u->staging.mapped + (size_t)i * RING_SEGMENT, (const char *)src + off, n);
        VkCommandBufferBeginInfo bi = {
            .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
            .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT,
        };
        vkBeginCommandBuffer(u->cb[i], &bi);
        VkBufferCopy region = { .srcOffset = (VkDeviceSize)i * RING_SEGMENT, .dstOffset = off, .size = n };
        vkCmdCopyBuffer(u->cb[i], u->staging.buffer, dst->buffer, 1, &region);
        VkResult r = vkEndCommandBuffer(u->cb[i]);
        if (r != VK_SUCCESS)
            return hr_vk_context_vk_fail(err, r, "vkEndCommandBuffer");
        st = hr_vk_submit(c->vk, u->cb[i], u->fence[i], err);
        if (st != HR_OK)
            return st;
        u->pending[i] = true;
    }
    c->up_done += bytes;
    if (c->progress && !c->progress(c->up_total ? (double)c->up_done / (double)c->up_total : 1.0,
                                    "uploading weights", c->progress_user))
        return hr_error_set(err, HR_ERR_CANCELLED, "loading was cancelled");
    return HR_OK;
}

static HrStatus
new_device(VkCtx *c, HrVkBuffer *b, size_t bytes, const char *what, HrError *err)
{
    HrStatus st = hr_vk_buffer_new_device(c->vk, bytes, b, err);
    if (st != HR_OK)
        hr_error_prefix(err, "%s: ", what);
    return st;
}

static HrStatus
upload_new(VkCtx *c, HrVkBuffer *b, const void *src, size_t bytes, const char *what, HrError *err)
{
    HrStatus st = new_device(c, b, bytes, what, err);
    if (st == HR_OK)
        st = upload(c, b, src, bytes, err);
    return st;
}

/* ---- tensors -------------------------------------------------------------------------- */

static HrStatus
find_dense(const HrTensorSet *ts, const char *name, int64_t rows, int64_t cols, const HrTensor **out, HrError *err)
{
    const HrTensor *t = hr_tensor_set_find(ts, name);
    if (!t)
        return hr_error_set(err, HR_ERR_FORMAT, "tensor '%s' is missing", name);
    if (t->dtype != HR_DTYPE_F32 && t->dtype != HR_DTYPE_F16 && t->dtype != HR_DTYPE_BF16)
        return hr_error_set(err, HR_ERR_UNSUPPORTED, "%s: tensor '%s' has dtype %s; the Vulkan backend reads "
                            "F32, F16 or BF16 here", t->file, name, hr_dtype_name(t->dtype));
    bool ok = cols == 0 ? (t->n_dims == 1 && t->shape[0] == rows)
                        : (t->n_dims == 2 && t->shape[0] == rows && t->shape[1] == cols);
    if (!ok)
        return hr_error_set(err, HR_ERR_FORMAT, "%s: tensor '%s' does not have the shape the config needs "
                            "([%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT "])", t->file, name, rows, cols);
    *out = t;
    return HR_OK;
}

static HrStatus
take_f16(VkCtx *c, const HrTensorSet *ts, const char *name, int64_t N, int64_t K, HrVkWeight *w, HrError *err)
{
    const HrTensor *t = NULL;
    HrStatus st = find_dense(ts, name, N, K, &t, err);
    if (st != HR_OK)
        return st;
    size_t n_words;
    uint32_t *words = hr_vk_pack_f16(t->data, t->dtype, (int)N, (int)K, c->pool, w, &n_words);
    st = upload_new(c, &w->buf, words, n_words * 4, name, err);
    c->weight_bytes += n_words * 4;
    g_free(words);
    return st;
}

/* A GGUF block tensor the Vulkan kernels read, of shape [N, K]. */
static HrStatus
check_ggml(const HrTensor *t, int64_t N, int64_t K, HrError *err)
{
    if (!hr_vk_ggml_supported(t->ggml_type))
        return hr_error_set(err, HR_ERR_UNSUPPORTED, "%s: tensor '%s' is GGUF %s, which the Vulkan backend does "
                            "not read (it reads F32, F16, BF16, Q4_0, Q4_1, Q4_K, Q5_0, Q5_1, Q5_K, Q6_K and Q8_0)",
                            t->file, t->name, hr_tensor_type_name(t));
    if (t->n_dims != 2 || t->shape[0] != N || t->shape[1] != K)
        return hr_error_set(err, HR_ERR_FORMAT, "%s: tensor '%s' does not have the shape the config needs ([%"
                            G_GINT64_FORMAT ", %" G_GINT64_FORMAT "])", t->file, t->name, N, K);
    return HR_OK;
}

/* Rows [r0, r0 + n) of GGUF block tensor t (checked) into w on the device. */
static HrStatus
take_ggml_rows(VkCtx *c, const HrTensor *t, int64_t r0, int64_t n, int64_t K, HrVkWeight *w, HrError *err)
{
    int block = 0;
    size_t block_bytes = 0;
    hr_ggml_type_block(t->ggml_type, &block, &block_bytes);
    const size_t row_bytes = (size_t)(K / block) * block_bytes;
    size_t n_words = 0;
    uint32_t *words = hr_vk_pack_ggml((const uint8_t *)t->data + (size_t)r0 * row_bytes, t->ggml_type, (int)n,
                                      (int)K, w, &n_words, err);
    if (!words)
        return hr_error_prefix(err, "%s: ", t->name);
    HrStatus st = upload_new(c, &w->buf, words, n_words * 4, t->name, err);
    c->weight_bytes += n_words * 4;
    g_free(words);
    return st;
}

static HrStatus
check_awq(const HrTensor *t, const char *name, HrDType dt, int64_t d0, int64_t d1, HrError *err)
{
    if (!t)
        return hr_error_set(err, HR_ERR_FORMAT, "AWQ tensor '%s' is missing", name);
    if (t->dtype != dt || t->n_dims != 2 || t->shape[0] != d0 || t->shape[1] != d1)
        return hr_error_set(err, HR_ERR_FORMAT, "%s: AWQ tensor '%s' has dtype %s and %d dims; expected %s [%"
                            G_GINT64_FORMAT ", %" G_GINT64_FORMAT "]", t->file, name, hr_dtype_name(t->dtype),
                            t->n_dims, hr_dtype_name(dt), d0, d1);
    return HR_OK;
}

static HrStatus
take_linear(VkCtx *c, const HrTensorSet *ts, const char *prefix, int64_t N, int64_t K, HrVkWeight *w, HrError *err)
{
    char qn[160], zn[160], sn[160];
    g_snprintf(qn, sizeof qn, "%s.qweight", prefix);
    if (!hr_tensor_set_find(ts, qn)) {
        g_snprintf(qn, sizeof qn, "%s.weight", prefix);
        const HrTensor *t = hr_tensor_set_find(ts, qn);
        if (t && t->dtype == HR_DTYPE_GGML) {
            HrStatus st = check_ggml(t, N, K, err);
            return st != HR_OK ? st : take_ggml_rows(c, t, 0, N, K, w, err);
        }
        return take_f16(c, ts, qn, N, K, w, err);
    }
    if (!c->cfg.awq)
        return hr_error_set(err, HR_ERR_FORMAT, "tensor '%s' is AWQ-quantized but config.json has no AWQ "
                            "quantization_config", qn);
    g_snprintf(zn, sizeof zn, "%s.qzeros", prefix);
    g_snprintf(sn, sizeof sn, "%s.scales", prefix);
    const HrTensor *ts_s = hr_tensor_set_find(ts, sn);
    if (!ts_s || ts_s->n_dims != 2 || ts_s->shape[0] < 1 || N % 8 != 0)
        return hr_error_set(err, HR_ERR_FORMAT, "AWQ linear '%s': scales missing or not 2-D, or %" G_GINT64_FORMAT
                            " outputs not a multiple of 8", prefix, N);
    int64_t ng = ts_s->shape[0];
    HrStatus st;
    if ((st = check_awq(hr_tensor_set_find(ts, qn), qn, HR_DTYPE_I32, K, N / 8, err)) ||
        (st = check_awq(hr_tensor_set_find(ts, zn), zn, HR_DTYPE_I32, ng, N / 8, err)) ||
        (st = check_awq(ts_s, sn, HR_DTYPE_F16, ng, N, err)))
        return st;
    size_t n_words;
    uint32_t *words = hr_vk_pack_awq(hr_tensor_set_find(ts, qn)->data, hr_tensor_set_find(ts, zn)->data,
                                     ts_s->data, (int)N, (int)K, (int)ng, c->pool, w, &n_words, err);
    if (!words)
        return hr_error_prefix(err, "%s: ", prefix);
    st = upload_new(c, &w->buf, words, n_words * 4, prefix, err);
    c->weight_bytes += n_words * 4;
    g_free(words);
    return st;
}

/* A table read row-wise (embedding, lm_head) as row slices of at most
 * max_binding bytes each: FP16 rows, or GGUF blocks in their 4-bit or int8
 * layout (each slice with its own scale table). */
static HrStatus
take_table_sliced(VkCtx *c, const HrTensorSet *ts, const char *name, int64_t N, int64_t K, HrVkWeight **out,
                  int *n_out, uint32_t *rows_out, HrError *err)
{
    const HrTensor *t = hr_tensor_set_find(ts, name);
    if (t && t->dtype == HR_DTYPE_GGML) {
        HrStatus st = check_ggml(t, N, K, err);
        if (st != HR_OK)
            return st;
        const size_t row_bytes = hr_vk_ggml_words(t->ggml_type, 1, K) * 4;
        const uint32_t rows = (uint32_t)MIN((uint64_t)N, MAX(1, c->max_binding / row_bytes));
        const int n = (int)(((uint64_t)N + rows - 1) / rows);
        *out = g_new0(HrVkWeight, n);
        *n_out = n;
        *rows_out = rows;
        for (int i = 0; st == HR_OK && i < n; i++)
            st = take_ggml_rows(c, t, (int64_t)i * rows, MIN((int64_t)rows, N - (int64_t)i * rows), K, &(*out)[i],
                                err);
        return st;
    }
    HrStatus st = find_dense(ts, name, N, K, &t, err);
    if (st != HR_OK)
        return st;
    HrVkWeight full;
    size_t n_words;
    uint32_t *words = hr_vk_pack_f16(t->data, t->dtype, (int)N, (int)K, c->pool, &full, &n_words);
    const size_t row_bytes = (size_t)full.kw * 4;
    const uint32_t rows = (uint32_t)MIN((uint64_t)N, MAX(1, c->max_binding / row_bytes));
    const int n = (int)(((uint64_t)N + rows - 1) / rows);
    *out = g_new0(HrVkWeight, n);
    *n_out = n;
    *rows_out = rows;
    for (int i = 0; st == HR_OK && i < n; i++) {
        HrVkWeight *w = &(*out)[i];
        *w = full;
        w->n = (uint32_t)MIN((int64_t)rows, N - (int64_t)i * rows);
        st = upload_new(c, &w->buf, words + (size_t)i * rows * full.kw, (size_t)w->n * row_bytes, name, err);
    }
    c->weight_bytes += n_words * 4;
    g_free(words);
    return st;
}

/* 1-D vectors (norm weights) or a concatenation of them (q|k|v biases) as FP32. */
static HrStatus
take_vecs(VkCtx *c, const HrTensorSet *ts, const char *const *names, const int64_t *lens, int n, HrVkBuffer *b,
          HrError *err)
{
    int64_t total = 0;
    for (int i = 0; i < n; i++)
        total += lens[i];
    float *v = g_new(float, total);
    HrStatus st = HR_OK;
    int64_t off = 0;
    for (int i = 0; st == HR_OK && i < n; i++) {
        const HrTensor *t = NULL;
        st = find_dense(ts, names[i], lens[i], 0, &t, err);
        if (st == HR_OK) {
            HrMat m = { t->data, t->dtype, 1, (int)lens[i] };
            if ((uintptr_t)t->data % hr_dtype_size(t->dtype) != 0) {
                void *copy = g_memdup2(t->data, t->n_bytes);
                m.data = copy;
                hr_mat_row_f32(&m, 0, v + off, (int)lens[i]);
                g_free(copy);
            } else {
                hr_mat_row_f32(&m, 0, v + off, (int)lens[i]);
            }
        }
        off += lens[i];
    }
    if (st == HR_OK)
        st = upload_new(c, b, v, (size_t)total * 4, names[0], err);
    c->weight_bytes += (size_t)total * 4;
    g_free(v);
    return st;
}

/* ---- graph ---------------------------------------------------------------------------- */

static HrStatus
add(GArray *ds, HrStatus st, const HrVkDispatch *d)
{
    if (st == HR_OK)
        g_array_append_vals(ds, d, 1);
    return st;
}

static HrStatus
build_graph(VkCtx *c, bool prefill, GArray *ds, HrError *err)
{
    const HrModelConfig *cfg = &c->cfg;
    const uint32_t T = prefill ? c->chunk : 1;
    const uint32_t dim = (uint32_t)cfg->dim, hd = (uint32_t)cfg->head_dim, hidden = (uint32_t)cfg->hidden_dim;
    const uint32_t q_dim = (uint32_t)cfg->n_heads * hd, kv_dim = (uint32_t)cfg->n_kv_heads * hd;
    const uint32_t qkv_dim = q_dim + 2 * kv_dim, ctxlen = (uint32_t)c->opt.context_len;
    HrVkKernels *k = c->kern;
    HrVkDispatch d;
    HrStatus st = HR_OK;
    for (int i = 0; st == HR_OK && i < c->n_emb; i++)
        st = add(ds, hr_vk_make_embed(k, &c->tokens, &c->emb[i], (uint32_t)i * c->emb_rows, &c->x, &c->params, T,
                                      &d, err), &d);
    for (int l = 0; st == HR_OK && l < cfg->n_layers; l++) {
        VkLayer *L = &c->layers[l];
        HrVkBuffer *bias = cfg->qkv_bias ? &L->bias : NULL;
        st = add(ds, hr_vk_make_rmsnorm(k, &c->x, &c->xb, &L->attn_norm, &c->params, dim, cfg->norm_eps, false, T,
                                        &d, err), &d);
        if (st != HR_OK)
            break;
        if (hr_vk_weights_fusable(&L->wq, &L->wk) && hr_vk_weights_fusable(&L->wq, &L->wv)) {
            HrVkGemvArgs a = { .w = { &L->wq, &L->wk, &L->wv }, .prefill = prefill, .x = &c->xb, .out = &c->qkv,
                               .bias = bias, .params = &c->params, .x_stride = dim, .o_stride = qkv_dim,
                               .max_tokens = T };
            st = add(ds, hr_vk_make_gemv(k, &a, &d, err), &d);
        } else {   /* q, k, v stored differently (modules_to_not_convert, other group sizes): one dispatch each */
            const HrVkWeight *ws[3] = { &L->wq, &L->wk, &L->wv };
            uint32_t offs[3] = { 0, q_dim, q_dim + kv_dim };
            for (int i = 0; st == HR_OK && i < 3; i++) {
                HrVkGemvArgs a = { .w = { ws[i] }, .prefill = prefill, .x = &c->xb, .out = &c->qkv, .bias = bias,
                                   .params = &c->params, .x_stride = dim, .o_stride = qkv_dim,
                                   .out_row_offset = offs[i], .max_tokens = T };
                st = add(ds, hr_vk_make_gemv(k, &a, &d, err), &d);
            }
        }
        if (st == HR_OK)
            st = add(ds, hr_vk_make_rope_kv(k, &c->qkv, &c->q, &L->kc, &L->vc, &c->rope_tab, &c->params,
                                            (uint32_t)cfg->n_heads, (uint32_t)cfg->n_kv_heads, hd, T, &d, err), &d);
        if (st == HR_OK)
            st = add(ds, hr_vk_make_attn(k, &c->q, &L->kc, &L->vc, &c->part, &c->params, (uint32_t)cfg->n_heads,
                                         (uint32_t)cfg->n_kv_heads, hd, ctxlen, (uint32_t)MAX(cfg->sliding_window, 0),
                                         prefill, T, &d, err), &d);
        if (st == HR_OK)
            st = add(ds, hr_vk_make_attn_combine(k, &c->part, &c->att, &c->params, (uint32_t)cfg->n_heads, hd,
                                                 ctxlen, T, &d, err), &d);
        if (st == HR_OK) {
            HrVkGemvArgs a = { .w = { &L->wo }, .residual = true, .prefill = prefill, .x = &c->att, .out = &c->x,
                               .params = &c->params, .x_stride = q_dim, .o_stride = dim, .max_tokens = T };
            st = add(ds, hr_vk_make_gemv(k, &a, &d, err), &d);
        }
        if (st == HR_OK)
            st = add(ds, hr_vk_make_rmsnorm(k, &c->x, &c->xb, &L->ffn_norm, &c->params, dim, cfg->norm_eps, false,
                                            T, &d, err), &d);
        if (st == HR_OK) {
            HrVkGemvArgs a = { .w = { &L->wg, &L->wu }, .gate = true, .prefill = prefill, .x = &c->xb,
                               .out = &c->hb, .params = &c->params, .x_stride = dim, .o_stride = hidden,
                               .max_tokens = T };
            st = add(ds, hr_vk_make_gemv(k, &a, &d, err), &d);
        }
        if (st == HR_OK) {
            HrVkGemvArgs a = { .w = { &L->wd }, .residual = true, .prefill = prefill, .x = &c->hb, .out = &c->x,
                               .params = &c->params, .x_stride = hidden, .o_stride = dim, .max_tokens = T };
            st = add(ds, hr_vk_make_gemv(k, &a, &d, err), &d);
        }
    }
    if (st == HR_OK)
        st = add(ds, hr_vk_make_rmsnorm(k, &c->x, &c->xb, &c->final_norm, &c->params, dim, cfg->norm_eps, true, T,
                                        &d, err), &d);
    for (int i = 0; st == HR_OK && i < c->n_lm; i++) {
        HrVkGemvArgs a = { .w = { &c->lm[i] }, .logit_rows = true, .prefill = prefill, .x = &c->xb,
                           .out = &c->logits, .params = &c->params, .x_stride = dim,
                           .o_stride = (uint32_t)cfg->vocab_size, .out_row_offset = (uint32_t)i * c->lm_rows,
                           .max_tokens = T };
        st = add(ds, hr_vk_make_gemv(k, &a, &d, err), &d);
    }
    if (st == HR_OK && !prefill)
        st = add(ds, hr_vk_make_argmax(k, &c->logits, 0, (uint32_t)cfg->vocab_size, &c->argmax, &d, err), &d);
    return st;
}

static HrStatus
record_graph(VkCtx *c, GArray *ds, VkCommandBuffer *cb_out, HrError *err)
{
    VkDevice dev = hr_vk_context_device(c->vk);
    VkCommandBufferAllocateInfo ai = {
        .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
        .commandPool = hr_vk_context_command_pool(c->vk),
        .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
        .commandBufferCount = 1,
    };
    VkResult r = vkAllocateCommandBuffers(dev, &ai, cb_out);
    if (r != VK_SUCCESS)
        return hr_vk_context_vk_fail(err, r, "vkAllocateCommandBuffers");
    VkCommandBufferBeginInfo bi = { .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO };
    vkBeginCommandBuffer(*cb_out, &bi);
    /* Uploads (and host writes of params/tokens) before this submit. */
    hr_vk_record_barrier(*cb_out);
    for (guint i = 0; i < ds->len; i++) {
        if (i > 0)
            hr_vk_record_barrier(*cb_out);
        hr_vk_record(c->kern, *cb_out, &g_array_index(ds, HrVkDispatch, i));
    }
    hr_vk_record_host_barrier(*cb_out);
    r = vkEndCommandBuffer(*cb_out);
    if (r != VK_SUCCESS)
        return hr_vk_context_vk_fail(err, r, "vkEndCommandBuffer");
    return HR_OK;
}

/* ---- create / destroy ----------------------------------------------------------------- */

static void
free_weight(VkCtx *c, HrVkWeight *w)
{
    hr_vk_buffer_free(c->vk, &w->buf);
}

static void
vk_destroy(void *p)
{
    VkCtx *c = p;
    if (!c)
        return;
    g_clear_pointer(&c->pool, hr_pool_free);
    if (c->vk) {
        VkDevice dev = hr_vk_context_device(c->vk);
        vkDeviceWaitIdle(dev);
        uploader_free(c);
        VkCommandPool pool = hr_vk_context_command_pool(c->vk);
        if (c->cb_dec)
            vkFreeCommandBuffers(dev, pool, 1, &c->cb_dec);
        if (c->cb_pre)
            vkFreeCommandBuffers(dev, pool, 1, &c->cb_pre);
        if (c->layers) {
            for (int l = 0; l < c->cfg.n_layers; l++) {
                VkLayer *L = &c->layers[l];
                HrVkWeight *ws[7] = { &L->wq, &L->wk, &L->wv, &L->wo, &L->wg, &L->wu, &L->wd };
                for (int i = 0; i < 7; i++)
                    free_weight(c, ws[i]);
                HrVkBuffer *bs[5] = { &L->attn_norm, &L->ffn_norm, &L->bias, &L->kc, &L->vc };
                for (int i = 0; i < 5; i++)
                    hr_vk_buffer_free(c->vk, bs[i]);
            }
        }
        for (int i = 0; c->emb && i < c->n_emb; i++)
            free_weight(c, &c->emb[i]);
        for (int i = 0; !c->tied && c->lm && i < c->n_lm; i++)
            free_weight(c, &c->lm[i]);
        HrVkBuffer *bs[] = { &c->final_norm, &c->rope_tab, &c->x, &c->xb, &c->qkv, &c->q, &c->att, &c->hb,
                             &c->part, &c->params, &c->tokens, &c->logits, &c->argmax };
        for (size_t i = 0; i < G_N_ELEMENTS(bs); i++)
            hr_vk_buffer_free(c->vk, bs[i]);
        hr_vk_kernels_free(c->kern);
        hr_vk_context_save_pipeline_cache(c->vk);
        hr_vk_context_free(c->vk);
    }
    if (c->dec)
        g_array_unref(c->dec);
    if (c->pre)
        g_array_unref(c->pre);
    g_free(c->layers);
    if (!c->tied)
        g_free(c->lm);
    g_free(c->emb);
    g_free(c->host_logits);
    g_free(c->location);
    g_free(c);
}

static HrStatus
alloc_host(VkCtx *c, HrVkBuffer *b, size_t bytes, bool readback, HrError *err)
{
    HrStatus st = readback ? hr_vk_buffer_new_readback(c->vk, bytes, b, err)
                           : hr_vk_buffer_new_host(c->vk, bytes, b, err);
    if (st == HR_OK)
        memset(b->mapped, 0, bytes);
    return st;
}

static HrStatus
vk_create(const HrModelConfig *cfg, const HrTensorSet *ts, const HrBackendOptions *opt, HrProgressFunc progress,
          void *user, void **ctx_out, HrError *err)
{
    *ctx_out = NULL;
    if (opt->context_len < 1)
        return hr_error_set(err, HR_ERR_INVALID_ARG, "context length must be positive");
    if (opt->kv_type != HR_KV_F16)
        return hr_error_set(err, HR_ERR_UNSUPPORTED, "the Vulkan backend keeps the KV cache in FP16 only "
                            "(--kv f16)");
    if (cfg->head_dim % 2 != 0 || cfg->n_kv_heads < 1 || cfg->n_heads % cfg->n_kv_heads != 0)
        return hr_error_set(err, HR_ERR_UNSUPPORTED, "Vulkan backend: head_dim %d must be even and the heads "
                            "(%d) a multiple of the KV heads (%d)", cfg->head_dim, cfg->n_heads, cfg->n_kv_heads);
    VkCtx *c = g_new0(VkCtx, 1);
    c->cfg = *cfg;
    c->opt = *opt;
    c->progress = progress;
    c->progress_user = user;
    c->last_argmax = -1;

    /* Device choice as hearth-cli devices reports it (vk-context.c): a
     * software device (lavapipe) only with HEARTH_VULKAN_ALLOW_CPU=1 or an
     * explicit HEARTH_VULKAN_DEVICE; otherwise the error lists every device
     * and why it was passed over. The chosen one is in memory().location. */
    HrVkOptions vopt;
    hr_vk_options_init(&vopt);
    const char *val = g_getenv("HEARTH_VULKAN_VALIDATION");
    vopt.validation = val && val[0] == '1';
    HrStatus st = hr_vk_context_new(&vopt, &c->vk, err);
    if (st != HR_OK) {
        vk_destroy(c);
        return st;
    }
    const HrVkCaps *caps = hr_vk_context_caps(c->vk);
    c->location = g_strdup_printf("device (Vulkan: %s)", caps->name);
    hr_vk_context_open_pipeline_cache(c->vk);
    HrVkKernelConfig kcfg;
    hr_vk_kernel_config_for(caps, (uint32_t)cfg->head_dim, &kcfg);
    if ((uint32_t)cfg->head_dim > kcfg.max_hd || kcfg.max_hd > 1024) {
        vk_destroy(c);
        return hr_error_set(err, HR_ERR_UNSUPPORTED, "Vulkan backend: head_dim %d is too large", cfg->head_dim);
    }
    st = hr_vk_kernels_new(c->vk, &kcfg, &c->kern, err);
    if (st != HR_OK) {
        vk_destroy(c);
        return st;
    }

    const int64_t dim = cfg->dim, hd = cfg->head_dim, hidden = cfg->hidden_dim, vocab = cfg->vocab_size;
    const int64_t q_dim = cfg->n_heads * hd, kv_dim = cfg->n_kv_heads * hd, qkv_dim = q_dim + 2 * kv_dim;
    const uint64_t range = caps->max_storage_buffer_range;
    c->max_binding = range;
    /* Tests shrink the binding limit to exercise the row slicing. */
    const char *mb = g_getenv("HEARTH_VULKAN_MAX_BINDING_BYTES");
    if (mb && *mb && g_ascii_strtoull(mb, NULL, 10) > 0)
        c->max_binding = MIN(range, g_ascii_strtoull(mb, NULL, 10));

    const uint32_t splits = hr_vk_attn_splits(c->kern, (uint32_t)opt->context_len);
    uint32_t chunk_cap = CHUNK_MAX;
    const char *ce = g_getenv("HEARTH_VULKAN_CHUNK");
    if (ce && *ce && g_ascii_strtoull(ce, NULL, 10) > 0)
        chunk_cap = (uint32_t)MIN(g_ascii_strtoull(ce, NULL, 10), 4096);

    /* Everything the model needs on the device, checked before allocating. */
    char name[160];
    size_t need = 0;
    need += table_bytes(ts, "model.embed_tokens.weight", vocab, dim) + (size_t)dim * 4;
    bool tied = !hr_tensor_set_find(ts, "lm_head.weight") && cfg->tie_embeddings;
    if (!tied)
        need += table_bytes(ts, "lm_head.weight", vocab, dim);
    for (int l = 0; l < cfg->n_layers; l++) {
        struct { const char *n; int64_t N, K; } lin[7] = {
            { "self_attn.q_proj", q_dim, dim }, { "self_attn.k_proj", kv_dim, dim }, { "self_attn.v_proj", kv_dim, dim },
            { "self_attn.o_proj", dim, q_dim }, { "mlp.gate_proj", hidden, dim }, { "mlp.up_proj", hidden, dim },
            { "mlp.down_proj", dim, hidden },
        };
        for (int i = 0; i < 7; i++) {
            g_snprintf(name, sizeof name, "model.layers.%d.%s", l, lin[i].n);
            need += linear_bytes(ts, name, lin[i].N, lin[i].K);
        }
        need += 2 * (size_t)dim * 4 + (cfg->qkv_bias ? (size_t)qkv_dim * 4 : 0);
    }
    size_t kv_one = (size_t)opt->context_len * (size_t)kv_dim * 2;
    need += 2 * kv_one * (size_t)cfg->n_layers;
    bool from_budget;
    uint64_t avail = hr_vk_context_memory_available(c->vk, &from_budget);
    /* HEARTH_VULKAN_MAX_MEMORY_MIB caps what Hearth may use of the device
     * (to leave room for other programs; the tests use it to reach the
     * out-of-memory path). */
    const char *cap_env = g_getenv("HEARTH_VULKAN_MAX_MEMORY_MIB");
    bool capped = false;
    if (cap_env && *cap_env) {
        uint64_t cap = g_ascii_strtoull(cap_env, NULL, 10) << 20;
        if (cap < avail) {
            avail = cap;
            capped = true;
        }
    }
    /* Chunk: the largest (<= chunk_cap, halving) whose scratch fits beside
     * the weights and KV cache and whose buffers each fit a binding; the
     * logits buffer holds LROWS rows (64 MiB at most, at least one). */
    size_t C, LR, part_bytes, scratch;
    for (c->chunk = chunk_cap;; c->chunk /= 2) {
        C = c->chunk;
        LR = MIN(C, MAX((size_t)1, (size_t)MIN((uint64_t)LOGITS_MAX_BYTES, range) / ((size_t)vocab * 4)));
        part_bytes = C * (size_t)cfg->n_heads * splits * (size_t)(hd + 2) * 4;
        scratch = C * (size_t)(2 * dim + qkv_dim + 2 * q_dim + hidden) * 4 + part_bytes +
                  (size_t)opt->context_len * (size_t)hd * 4;
        const bool fits = part_bytes <= range && C * (size_t)MAX(MAX(dim, hidden), qkv_dim) * 4 <= range &&
                          need + scratch <= avail;
        if (fits || c->chunk == 1)
            break;
    }
    c->logit_rows = (uint32_t)LR;
    need += scratch;
    if (need > avail) {
        st = hr_error_set(err, HR_ERR_NOMEM, "Vulkan: the model needs %.1f MiB of device memory but %s has "
                            "%.1f MiB %s", (double)need / 1048576.0, caps->name, (double)avail / 1048576.0,
                            capped ? "allowed (HEARTH_VULKAN_MAX_MEMORY_MIB)"
                            : from_budget ? "available (VK_EXT_memory_budget)" : "of device-local heap");
        vk_destroy(c);   /* after the message: it names the device */
        return st;
    }
    if (kv_one > range) {
        vk_destroy(c);
        return hr_error_set(err, HR_ERR_UNSUPPORTED, "Vulkan: one layer's KV cache (%.1f MiB for %d positions) "
                            "exceeds the device's storage buffer range (%.1f MiB); use a smaller --ctx",
                            (double)kv_one / 1048576.0, opt->context_len, (double)range / 1048576.0);
    }
    c->up_total = need - scratch - 2 * kv_one * (size_t)cfg->n_layers;

    const gint64 t_weights = g_get_monotonic_time();
    c->pool = hr_pool_new(0);
    st = uploader_init(c, err);
    if (st == HR_OK)
        st = take_table_sliced(c, ts, "model.embed_tokens.weight", vocab, dim, &c->emb, &c->n_emb, &c->emb_rows, err);
    if (st == HR_OK) {
        const char *nm[1] = { "model.norm.weight" };
        int64_t len[1] = { dim };
        st = take_vecs(c, ts, nm, len, 1, &c->final_norm, err);
    }
    if (st == HR_OK) {
        if (hr_tensor_set_find(ts, "lm_head.weight")) {
            st = take_table_sliced(c, ts, "lm_head.weight", vocab, dim, &c->lm, &c->n_lm, &c->lm_rows, err);
        } else if (cfg->tie_embeddings) {
            c->lm = c->emb;
            c->n_lm = c->n_emb;
            c->lm_rows = c->emb_rows;
            c->tied = true;
        } else {
            st = hr_error_set(err, HR_ERR_FORMAT, "tensor 'lm_head.weight' is missing and the config "
                              "does not tie the embeddings (tie_word_embeddings is false)");
        }
    }
    c->layers = g_new0(VkLayer, cfg->n_layers);
    for (int l = 0; st == HR_OK && l < cfg->n_layers; l++) {
        VkLayer *L = &c->layers[l];
#define LNAME(suffix) (g_snprintf(name, sizeof name, "model.layers.%d." suffix, l), name)
        char n1[160], n2[160], n3[160];
        g_snprintf(n1, sizeof n1, "model.layers.%d.input_layernorm.weight", l);
        g_snprintf(n2, sizeof n2, "model.layers.%d.post_attention_layernorm.weight", l);
        const char *an[1] = { n1 }, *fn[1] = { n2 };
        int64_t dl[1] = { dim };
        if ((st = take_vecs(c, ts, an, dl, 1, &L->attn_norm, err)) ||
            (st = take_vecs(c, ts, fn, dl, 1, &L->ffn_norm, err)) ||
            (st = take_linear(c, ts, LNAME("self_attn.q_proj"), q_dim, dim, &L->wq, err)) ||
            (st = take_linear(c, ts, LNAME("self_attn.k_proj"), kv_dim, dim, &L->wk, err)) ||
            (st = take_linear(c, ts, LNAME("self_attn.v_proj"), kv_dim, dim, &L->wv, err)) ||
            (st = take_linear(c, ts, LNAME("self_attn.o_proj"), dim, q_dim, &L->wo, err)) ||
            (st = take_linear(c, ts, LNAME("mlp.gate_proj"), hidden, dim, &L->wg, err)) ||
            (st = take_linear(c, ts, LNAME("mlp.up_proj"), hidden, dim, &L->wu, err)) ||
            (st = take_linear(c, ts, LNAME("mlp.down_proj"), dim, hidden, &L->wd, err)))
            break;
#undef LNAME
        if (!hr_vk_weights_fusable(&L->wg, &L->wu)) {
            st = hr_error_set(err, HR_ERR_UNSUPPORTED, "layer %d: gate_proj and up_proj are stored differently "
                              "(one quantized, other group sizes, or other GGUF types); the Vulkan backend fuses "
                              "them (use the CPU backend for this model)", l);
            break;
        }
        if (cfg->qkv_bias) {
            g_snprintf(n1, sizeof n1, "model.layers.%d.self_attn.q_proj.bias", l);
            g_snprintf(n2, sizeof n2, "model.layers.%d.self_attn.k_proj.bias", l);
            g_snprintf(n3, sizeof n3, "model.layers.%d.self_attn.v_proj.bias", l);
            const char *bn[3] = { n1, n2, n3 };
            int64_t bl[3] = { q_dim, kv_dim, kv_dim };
            if ((st = take_vecs(c, ts, bn, bl, 3, &L->bias, err)))
                break;
        }
        if ((st = new_device(c, &L->kc, kv_one, "KV cache", err)) ||
            (st = new_device(c, &L->vc, kv_one, "KV cache", err)))
            break;
        c->kv_bytes += 2 * kv_one;
    }
    if (st == HR_OK) {
        /* RoPE cos/sin [context, hd/2], from the CPU backend's frequencies. */
        const int half = (int)hd / 2;
        float *inv = g_new(float, half);
        hr_rope_inv_freq(cfg, inv);
        float *tab = g_new(float, (size_t)opt->context_len * (size_t)half * 2);
        for (int p = 0; p < opt->context_len; p++) {
            for (int i = 0; i < half; i++) {
                float angle = (float)p * inv[i];
                tab[((size_t)p * half + (size_t)i) * 2] = cosf(angle);
                tab[((size_t)p * half + (size_t)i) * 2 + 1] = sinf(angle);
            }
        }
        st = upload_new(c, &c->rope_tab, tab, (size_t)opt->context_len * (size_t)half * 8, "RoPE table", err);
        g_free(tab);
        g_free(inv);
    }
    if (st == HR_OK) {
        const gint64 t_wait = g_get_monotonic_time();
        st = uploader_finish(c, err);
        g_clear_pointer(&c->pool, hr_pool_free);
        c->load_upload_s += (double)(g_get_monotonic_time() - t_wait) / 1e6;
        c->load_convert_s = (double)(g_get_monotonic_time() - t_weights) / 1e6 - c->load_upload_s;
    }
    if (st == HR_OK) {
        if ((st = new_device(c, &c->x, C * (size_t)dim * 4, "activations", err)) ||
            (st = new_device(c, &c->xb, C * (size_t)dim * 4, "activations", err)) ||
            (st = new_device(c, &c->qkv, C * (size_t)qkv_dim * 4, "activations", err)) ||
            (st = new_device(c, &c->q, C * (size_t)q_dim * 4, "activations", err)) ||
            (st = new_device(c, &c->att, C * (size_t)q_dim * 4, "activations", err)) ||
            (st = new_device(c, &c->hb, C * (size_t)hidden * 4, "activations", err)) ||
            (st = new_device(c, &c->part, part_bytes, "attention partials", err)) ||
            (st = alloc_host(c, &c->params, sizeof(HrVkStepParams), false, err)) ||
            (st = alloc_host(c, &c->tokens, C * 4, false, err)) ||
            (st = alloc_host(c, &c->logits, LR * (size_t)vocab * 4, true, err)) ||
            (st = alloc_host(c, &c->argmax, 16, true, err))) {
        }
    }
    c->scratch_bytes = scratch + LR * (size_t)vocab * 4;
    if (st == HR_OK) {
        c->dec = g_array_new(FALSE, FALSE, sizeof(HrVkDispatch));
        c->pre = g_array_new(FALSE, FALSE, sizeof(HrVkDispatch));
        if ((st = build_graph(c, false, c->dec, err)) == HR_OK && (st = build_graph(c, true, c->pre, err)) == HR_OK &&
            (st = record_graph(c, c->dec, &c->cb_dec, err)) == HR_OK)
            st = record_graph(c, c->pre, &c->cb_pre, err);
    }
    if (st != HR_OK) {
        if (st == HR_ERR_NOMEM)
            hr_error_prefix(err, "Vulkan: out of device memory (the model needs %.1f MiB, %.1f MiB %s): ",
                            (double)need / 1048576.0, (double)avail / 1048576.0,
                            from_budget ? "available" : "device-local heap");
        vk_destroy(c);
        return st;
    }
    hr_vk_context_save_pipeline_cache(c->vk);
    *ctx_out = c;
    return HR_OK;
}

/* ---- forward -------------------------------------------------------------------------- */

static HrStatus
vk_forward(void *p, const int32_t *tokens, int n_tokens, int pos, bool all_logits, HrError *err)
{
    VkCtx *c = p;
    const HrModelConfig *cfg = &c->cfg;
    HrStatus bad = hr_backend_check_forward(cfg, c->opt.context_len, tokens, n_tokens, pos, err);
    if (bad != HR_OK)
        return bad;
    int rows = all_logits ? n_tokens : 1;
    if (rows > c->logits_cap) {
        g_free(c->host_logits);
        c->host_logits = g_try_malloc((size_t)rows * cfg->vocab_size * sizeof(float));
        if (!c->host_logits) {
            c->logits_cap = 0;
            return hr_error_set(err, HR_ERR_NOMEM, "forward: no memory for %d rows of logits", rows);
        }
        c->logits_cap = rows;
    }
    c->logits_rows = 0;
    c->last_argmax = -1;
    const size_t V = (size_t)cfg->vocab_size;
    /* every row's logits: chunks of at most the logits buffer's rows */
    const int step = all_logits ? (int)MIN(c->chunk, c->logit_rows) : (int)c->chunk;
    for (int done = 0; done < n_tokens; done += step) {
        int n = MIN(step, n_tokens - done);
        bool last = done + n == n_tokens;
        uint32_t first = all_logits ? 0 : (last ? (uint32_t)n - 1 : (uint32_t)n);
        HrVkStepParams prm = { (uint32_t)(pos + done), (uint32_t)n, first, (uint32_t)(pos + done + n) };
        memcpy(c->params.mapped, &prm, sizeof prm);
        memcpy(c->tokens.mapped, tokens + done, (size_t)n * 4);
        HrStatus st = hr_vk_submit_wait(c->vk, n == 1 ? c->cb_dec : c->cb_pre, err);
        if (st != HR_OK)
            return st;
        const float *lg = c->logits.mapped;
        if (all_logits)
            memcpy(c->host_logits + (size_t)done * V, lg, (size_t)n * V * 4);
        else if (last)   /* the lm_head wrote token `first` to row 0 */
            memcpy(c->host_logits, lg, V * 4);
        if (last && n == 1)
            c->last_argmax = (int)((const uint32_t *)c->argmax.mapped)[0];
    }
    c->logits_rows = rows;
    return HR_OK;
}

static HrStatus
vk_get_logits(void *p, int row, float *out, HrError *err)
{
    VkCtx *c = p;
    HrStatus st = hr_backend_logits_row(&row, c->logits_rows, err);
    if (st != HR_OK)
        return st;
    memcpy(out, c->host_logits + (size_t)row * c->cfg.vocab_size, sizeof(float) * c->cfg.vocab_size);
    return HR_OK;
}

static void
vk_memory(void *p, HrMemoryReport *out)
{
    VkCtx *c = p;
    out->weight_bytes = c->weight_bytes;
    out->kv_bytes = c->kv_bytes;
    out->scratch_bytes = c->scratch_bytes;
    out->location = c->location;
    /* reading the mapped checkpoint happens as the repack touches it: in convert */
    out->load_convert_s = c->load_convert_s;
    out->load_upload_s = c->load_upload_s;
}

static HrStatus
vk_read_bandwidth(void *p, double *bytes_per_s, HrError *err)
{
    return hr_vk_read_bandwidth(((VkCtx *)p)->vk, bytes_per_s, err);
}

uint32_t
hr_vulkan_backend_validation_messages(void *p)
{
    VkCtx *c = p;
    return c && c->vk ? hr_vk_context_validation_messages(c->vk) : 0;
}

int
hr_vulkan_backend_last_argmax(void *p)
{
    return ((VkCtx *)p)->last_argmax;
}

const char *
hr_vulkan_backend_device_report(void *p)
{
    return hr_vk_context_selection_report(((VkCtx *)p)->vk);
}

bool
hr_vulkan_backend_takes_ggml(uint32_t type)
{
    return hr_vk_ggml_supported(type);
}

const HrBackendOps hr_vulkan_backend = {
    .api_version = HR_BACKEND_API_VERSION,
    .name = "vulkan",
    .create = vk_create,
    .destroy = vk_destroy,
    .forward = vk_forward,
    .get_logits = vk_get_logits,
    .memory = vk_memory,
    .read_bandwidth = vk_read_bandwidth,
};
