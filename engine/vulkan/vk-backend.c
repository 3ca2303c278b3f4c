/* vk-backend.c — the Vulkan backend: the ops of ops.h on one Vulkan device
 * (the model itself is llama.c).
 *
 * Memory (all device-local unless noted; one buffer per tensor so no binding
 * exceeds maxStorageBufferRange, and the embedding/lm_head split into row
 * slices when one tensor is larger than that):
 *   weights   AWQ linears repacked once at load into the 4-bit row layout of
 *             vk-kernels.h (nibbles along K, one scale|zero word per
 *             (row, group)); GGUF blocks (linears, embedding, lm_head) into
 *             the 4-bit or int8 layouts with their exact scales and offsets
 *             (hr_vk_pack_ggml); dense linears, the embedding and lm_head as
 *             FP16 rows; vectors (norm weights, the q|k|v bias) and the
 *             RoPE cos/sin table [context, head_dim/2] in FP32. Uploaded
 *             through a host-visible staging ring (RING segments, each with
 *             its own command buffer and fence, so memcpy overlaps copies).
 *   KV cache  FP16 [context, n_kv*head_dim] per layer, K and V.
 *   scratch   the model's FP32 activations for CHUNK tokens; attention
 *             partials [CHUNK, heads, splits, head_dim + 2].
 *   host      params (pos, n_tokens, logit_first, seq_len) and token ids:
 *             host-visible (device-local where the BAR allows); logits
 *             [LROWS, vocab] (the lm_head writes the rows from logit_first
 *             on, from row 0) and the argmax result: host-visible and
 *             host-cached, so reading them is not an uncached PCIe read.
 *             On a device that draws (a discrete GPU, whose rows would
 *             cross PCIe; HEARTH_DEVICE_SAMPLING=1 anywhere, =0 nowhere) a
 *             decode step's row is written to a device-local row instead
 *             and copied to the host at the end of the step, unless the
 *             step draws on the device (a sample spec: penalize.comp and
 *             topk.comp read the row there and only their ~520-byte result
 *             crosses; the row follows only when the host asks for it).
 * CHUNK: up to CHUNK_MAX (512) prompt tokens a submit, so each weight is read
 * once per 512 tokens; halved until the scratch fits the device memory
 * budget beside the weights and KV cache and every buffer fits a binding
 * (HEARTH_VULKAN_CHUNK=N lowers the ceiling: tests force several chunks).
 * LROWS = min(CHUNK, the rows 64 MiB of logits hold): the model asks every
 * row's logits (perplexity) in steps of LROWS.
 * Execution: a node list compiles to a list of dispatches recorded once into
 * a command buffer — for one token (GEMV kernels, the device argmax, and
 * on a device that draws the draw's kernels, in two command buffers: with
 * and without the row's copy to the host) or
 * for up to CHUNK tokens (the tiled GEMM or the GEMV kernels with several
 * tokens per workgroup; with the GEMM, a second command buffer sized for
 * short steps runs the several-token GEMV: short_steps) — and each step
 * writes the params and token ids, submits it and waits.
 */
#include "vk-backend.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "cpu-kernels.h"
#include "gguf.h"
#include "hr-half.h"
#include "llama.h"
#include "vk-bench.h"
#include "vk-kernels.h"

enum { CHUNK_MAX = 512, RING = 4 };
#define RING_SEGMENT ((size_t)1 << 20)
#define LOGITS_MAX_BYTES ((size_t)64 << 20)

struct HrOpsWeight {
    HrWeightRole role;
    HrVkWeight w;                  /* LINEAR */
    HrVkWeight *slices;            /* EMBED, LM_HEAD: row slices of slice_rows rows */
    int n_slices;
    uint32_t slice_rows;
    bool shared;                   /* a tied lm_head: the embedding's slices */
    HrVkBuffer vec;                /* VECTOR */
    size_t n_vec;                  /* its floats */
    HrVkDispatch sq;               /* scale_quant's dispatch (made for tensor sq_t) */
    HrOpsBuffer *sq_t;
};

struct HrOpsBuffer {
    HrVkBuffer buf;
    uint32_t width;                /* activations and tensors: floats per row */
    int64_t rows;                  /* a tensor's (the quantizer's) */
    HrVkBuffer sums;               /* a tensor's row values (sq_diff), FP32 */
    HrVkDispatch sq;               /* sq_diff's dispatch (made for activation sq_a) */
    HrOpsBuffer *sq_a;
};

typedef struct {
    HrVkBuffer staging;
    VkCommandBuffer cb[RING];
    VkFence fence[RING];
    bool pending[RING];
    int next;
} Uploader;

typedef struct {
    GArray *ds;                    /* HrVkDispatch */
    VkCommandBuffer cb;
    GArray *ds_short;              /* prefill: the same for steps of at most n_short tokens, */
    VkCommandBuffer cb_short;      /* its linears through the several-token GEMV (short_steps) */
    uint32_t n_short;
    VkCommandBuffer cb_draw;       /* decode: the same without copying the row to the host */
    bool decode;                   /* one token: the argmax and the draw's kernels run too */
} VkProg;

typedef struct {
    HrModelConfig cfg;
    HrBackendOptions opt;
    HrVkContext *vk;
    HrVkKernels *kern;
    uint64_t max_binding;          /* bytes one storage binding may span */
    HrVkBuffer rope_tab, part;
    HrVkBuffer rope_tab_local;     /* the sliding-window layers' (Gemma 3: rope_local_theta), or none */
    HrVkBuffer up_out;             /* up_proj's output when gate and up run apart */
    HrVkBuffer xq;                 /* a decode row as int8 for the q8 GEMV (cfg.gemv_q8), sized for the
                                      widest input: written by the RMSNorm or the attention's combine
                                      for the linear right after them, else by a quant_q8 dispatch
                                      (add_node's xq_holds says which buffer it holds) */
    HrVkBuffer params, tokens, logits, argmax;     /* host-visible */
    /* the draw's device part (one-token steps with a sample spec): the seen
     * ids (host-visible), topk.comp's pass outputs in two pairs (values,
     * ids), its pass-1 stats, and the result (host-cached) */
    HrVkBuffer seen, cand_v[2], cand_i[2], topk_stats, topk_res;
    bool draws;                    /* one-token steps draw on the device (a discrete GPU, or
                                      HEARTH_DEVICE_SAMPLING=1); else the decode row goes
                                      straight to the host buffer, as in prefill */
    bool sampled;                  /* the last step ran with a sample spec */
    /* a decode step's logits row, on the device: the draw's kernels read it
     * there, and it crosses to `logits` only when asked (cb_fetch) */
    HrVkBuffer logits_dec;
    VkCommandBuffer cb_fetch;
    /* the quantizer's reads of activations (vk_read): a host-cached buffer,
     * grown to the largest read, and its copy's command buffer */
    HrVkBuffer io_rb;
    VkCommandBuffer cb_io;
    HrVkBuffer qs;                 /* the quantizer's vector: scale_quant's s, the column ops' (ensure_qs) */
    uint32_t chunk;                /* prompt tokens per prefill submit */
    uint32_t logit_rows;           /* rows of the logits buffer */
    size_t kv_one;                 /* bytes of one layer's K (or V) cache */
    int context;                   /* positions in it (a ring holds fewer) */
    GPtrArray *weights, *buffers, *progs;          /* owned */
    int last_argmax;
    size_t weight_bytes, kv_bytes, scratch_bytes;
    size_t embed_bytes;            /* the embedding table's (a decode step gathers one row of it) */
    bool lm_shares_embed;          /* the lm_head reads the embedding table (tied, not rounded apart) */
    char *location;
    Uploader up;
    HrThreadPool *pool;                            /* repacking at load (freed once loaded) */
    double load_upload_s;          /* time in upload() and waiting for the last copies */
} VkCtx;

static HrStatus record_fetch(VkCtx *c, HrError *err);

/* Prefill steps of at most 16 tokens (and half the GEMM's token tile) run a
 * second recorded list, sized for 16, whose linears are the several-token
 * GEMV (gemv_nt tokens a workgroup): the GEMM's tile of 64 tokens would be
 * mostly padding (lavapipe, SmolLM2, 16 tokens: 2.2 s against 14.3 s with a
 * tile of 128). Not more than 16: every list is sized for its most tokens,
 * and the lm_head's workgroups past the step's rows still cost lavapipe
 * (a list sized for 64 took 4.8 s for the same 16 tokens). */
static uint32_t
short_steps(const VkCtx *c)
{
    const HrVkKernelConfig *kc = hr_vk_kernels_config(c->kern);
    const char *e = g_getenv("HEARTH_VULKAN_SHORT");   /* measurements */
    return !kc->gemm ? 0 : e ? (uint32_t)MIN(g_ascii_strtoull(e, NULL, 10), CHUNK_MAX) : MIN(16, kc->gemm_bn / 2);
}

/* ---- sizes ---------------------------------------------------------------------------- */

static size_t
f16_bytes(int64_t N, int64_t K)
{
    return (size_t)N * (size_t)((K + 7) / 8 * 4) * 4;
}

/* Whether the lm_head `name` [N, K] goes to the device rounded to int8 per
 * block of 32 (HEARTH_VULKAN_LM_HEAD=q8, opt-in until measured on a GPU;
 * 4-bit models, a dense tensor with K % 32 == 0), as the CPU's decode reads
 * the lm_head of 4-bit models: half the bytes a step reads there. A tied
 * lm_head then gets its own int8 copy beside the embedding's rows. */
static bool
lm_head_q8(const HrModelConfig *cfg, const HrTensorSet *ts, const char *name, int64_t K)
{
    const char *e = g_getenv("HEARTH_VULKAN_LM_HEAD");
    const HrTensor *t = hr_tensor_set_find(ts, name);
    return cfg->awq && e && strcmp(e, "q8") == 0 && K % 32 == 0 && (!t || t->dtype != HR_DTYPE_GGML);
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
    if ((st = hr_vk_context_command_buffers(c->vk, RING, u->cb, err)) != HR_OK)
        return st;
    VkResult r;
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

static HrStatus upload_at(VkCtx *c, HrVkBuffer *dst, size_t dst_off, const void *src, size_t bytes, HrError *err);

static HrStatus
upload_bytes(VkCtx *c, HrVkBuffer *dst, const void *src, size_t bytes, HrError *err)
{
    return upload_at(c, dst, 0, src, bytes, err);
}

/* ... to bytes [dst_off, dst_off + bytes) of dst */
static HrStatus
upload_at(VkCtx *c, HrVkBuffer *dst, size_t dst_off, const void *src, size_t bytes, HrError *err)
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
        st = hr_vk_begin(u->cb[i], VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT, err);
        if (st != HR_OK)
            return st;
        VkBufferCopy region = { .srcOffset = (VkDeviceSize)i * RING_SEGMENT, .dstOffset = dst_off + off, .size = n };
        vkCmdCopyBuffer(u->cb[i], u->staging.buffer, dst->buffer, 1, &region);
        VkResult r = vkEndCommandBuffer(u->cb[i]);
        if (r != VK_SUCCESS)
            return hr_vk_context_vk_fail(err, r, "vkEndCommandBuffer");
        st = hr_vk_submit(c->vk, u->cb[i], u->fence[i], err);
        if (st != HR_OK)
            return st;
        u->pending[i] = true;
    }
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
    if (t->n_dims != 2 || t->shape[0] != rows || t->shape[1] != cols)
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

/* Row slices of N rows of row_bytes each, at most max_binding bytes a
 * slice: *out (n_out of them, zeroed) and the rows a slice holds. */
static uint32_t
plan_slices(const VkCtx *c, int64_t N, size_t row_bytes, HrVkWeight **out, int *n_out, uint32_t *rows_out)
{
    const uint32_t rows = (uint32_t)MIN((uint64_t)N, MAX(1, c->max_binding / row_bytes));
    *n_out = (int)(((uint64_t)N + rows - 1) / rows);
    *out = g_new0(HrVkWeight, *n_out);
    *rows_out = rows;
    return rows;
}

/* A table read row-wise (embedding, lm_head) as row slices of at most
 * max_binding bytes each: FP16 rows, GGUF blocks in their 4-bit or int8
 * layout, or (q8) dense rows rounded to int8 (each slice with its own scale
 * table). */
static HrStatus
take_table_sliced(VkCtx *c, const HrTensorSet *ts, const char *name, int64_t N, int64_t K, bool q8, HrVkWeight **out,
                  int *n_out, uint32_t *rows_out, HrError *err)
{
    const HrTensor *t = hr_tensor_set_find(ts, name);
    if (t && t->dtype == HR_DTYPE_GGML) {
        HrStatus st = check_ggml(t, N, K, err);
        if (st != HR_OK)
            return st;
        const uint32_t rows = plan_slices(c, N, hr_vk_ggml_words(t->ggml_type, 1, K) * 4, out, n_out, rows_out);
        for (int i = 0; st == HR_OK && i < *n_out; i++)
            st = take_ggml_rows(c, t, (int64_t)i * rows, MIN((int64_t)rows, N - (int64_t)i * rows), K, &(*out)[i],
                                err);
        return st;
    }
    HrStatus st = find_dense(ts, name, N, K, &t, err);
    if (st != HR_OK)
        return st;
    if (q8) {   /* int8 rows, each slice with its own scale table */
        const size_t elem = t->dtype == HR_DTYPE_F32 ? 4 : 2;
        const uint32_t rows = plan_slices(c, N, hr_vk_q8_matrix_words(1, K) * 4, out, n_out, rows_out);
        for (int i = 0; st == HR_OK && i < *n_out; i++) {
            const int64_t r0 = (int64_t)i * rows, nr = MIN((int64_t)rows, N - r0);
            size_t n_words;
            uint32_t *words = hr_vk_pack_q8((const char *)t->data + (size_t)r0 * (size_t)K * elem, t->dtype, (int)nr,
                                            (int)K, c->pool, &(*out)[i], &n_words);
            st = upload_new(c, &(*out)[i].buf, words, n_words * 4, name, err);
            c->weight_bytes += n_words * 4;
            g_free(words);
        }
        return st;
    }
    HrVkWeight full;
    size_t n_words;
    uint32_t *words = hr_vk_pack_f16(t->data, t->dtype, (int)N, (int)K, c->pool, &full, &n_words);
    const size_t row_bytes = (size_t)full.kw * 4;
    const uint32_t rows = plan_slices(c, N, row_bytes, out, n_out, rows_out);
    for (int i = 0; st == HR_OK && i < *n_out; i++) {
        HrVkWeight *w = &(*out)[i];
        *w = full;
        w->n = (uint32_t)MIN((int64_t)rows, N - (int64_t)i * rows);
        st = upload_new(c, &w->buf, words + (size_t)i * rows * full.kw, (size_t)w->n * row_bytes, name, err);
    }
    c->weight_bytes += n_words * 4;
    g_free(words);
    return st;
}

/* ---- device ---------------------------------------------------------------------------- */

static void
free_weight(VkCtx *c, HrOpsWeight *w)
{
    hr_vk_buffer_free(c->vk, &w->w.buf);
    hr_vk_buffer_free(c->vk, &w->vec);
    for (int i = 0; !w->shared && i < w->n_slices; i++)
        hr_vk_buffer_free(c->vk, &w->slices[i].buf);
    if (!w->shared)
        g_free(w->slices);
    g_free(w);
}

static void
vk_close(void *p)
{
    VkCtx *c = p;
    if (!c)
        return;
    g_clear_pointer(&c->pool, hr_pool_free);
    if (c->vk) {
        VkDevice dev = hr_vk_context_device(c->vk);
        vkDeviceWaitIdle(dev);
        uploader_free(c);
        for (guint i = 0; c->progs && i < c->progs->len; i++) {
            VkProg *g = g_ptr_array_index(c->progs, i);
            if (g->cb)
                vkFreeCommandBuffers(dev, hr_vk_context_command_pool(c->vk), 1, &g->cb);
            if (g->cb_draw)
                vkFreeCommandBuffers(dev, hr_vk_context_command_pool(c->vk), 1, &g->cb_draw);
            if (g->cb_short)
                vkFreeCommandBuffers(dev, hr_vk_context_command_pool(c->vk), 1, &g->cb_short);
            g_array_unref(g->ds);
            if (g->ds_short)
                g_array_unref(g->ds_short);
            g_free(g);
        }
        for (guint i = 0; c->weights && i < c->weights->len; i++)
            free_weight(c, g_ptr_array_index(c->weights, i));
        for (guint i = 0; c->buffers && i < c->buffers->len; i++) {
            HrOpsBuffer *b = g_ptr_array_index(c->buffers, i);
            hr_vk_buffer_free(c->vk, &b->buf);
            hr_vk_buffer_free(c->vk, &b->sums);
            g_free(b);
        }
        if (c->cb_fetch)
            vkFreeCommandBuffers(dev, hr_vk_context_command_pool(c->vk), 1, &c->cb_fetch);
        if (c->cb_io)
            vkFreeCommandBuffers(dev, hr_vk_context_command_pool(c->vk), 1, &c->cb_io);
        HrVkBuffer *bs[] = { &c->rope_tab, &c->rope_tab_local, &c->part, &c->up_out, &c->params, &c->tokens,
                             &c->logits, &c->argmax, &c->logits_dec, &c->xq,
                             &c->seen, &c->cand_v[0], &c->cand_v[1], &c->cand_i[0], &c->cand_i[1],
                             &c->topk_stats, &c->topk_res, &c->io_rb, &c->qs };
        for (size_t i = 0; i < G_N_ELEMENTS(bs); i++)
            hr_vk_buffer_free(c->vk, bs[i]);
        hr_vk_kernels_free(c->kern);
        hr_vk_context_save_pipeline_cache(c->vk);
        hr_vk_context_free(c->vk);
    }
    if (c->progs)
        g_ptr_array_unref(c->progs);
    if (c->weights)
        g_ptr_array_unref(c->weights);
    if (c->buffers)
        g_ptr_array_unref(c->buffers);
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

/* Bytes the device copy of a weight takes (0 for a tied lm_head). */
static size_t
spec_bytes(const HrModelConfig *cfg, const HrTensorSet *ts, const HrWeightSpec *s)
{
    switch (s->role) {
    case HR_W_VECTOR:
        return (size_t)s->rows * 4;
    case HR_W_LINEAR:
        return linear_bytes(ts, s->name, s->rows, s->cols);
    case HR_W_LM_HEAD:
        if (lm_head_q8(cfg, ts, s->name, s->cols))
            return hr_vk_q8_matrix_words(s->rows, s->cols) * 4;
        if (s->tied)
            return 0;
        return table_bytes(ts, s->name, s->rows, s->cols);
    case HR_W_EMBED:
        return table_bytes(ts, s->name, s->rows, s->cols);
    }
    return 0;
}

/* A RoPE table, cos and sin [context, rot/2] of p * inv_freq[i] times
 * LongRoPE's attention factor, from the CPU backend's frequencies (local: the
 * sliding-window layers'); LongRoPE's long set after the short one. */
static HrStatus
upload_rope(VkCtx *c, HrVkBuffer *dst, bool local, HrError *err)
{
    const int half = hr_model_config_rotary_dim(&c->cfg) / 2, n = c->opt.context_len;
    const int sets = !local && c->cfg.rope_scaling == HR_ROPE_LONGROPE ? 2 : 1;
    const float m = hr_rope_attn_factor(&c->cfg);
    float *inv = g_new(float, half);
    float *tab = g_new(float, (size_t)sets * (size_t)n * (size_t)half * 2);
    for (int set = 0; set < sets; set++) {
        if (local)
            hr_rope_inv_freq_local(&c->cfg, inv);
        else if (set == 1)
            hr_rope_inv_freq_long(&c->cfg, inv);
        else
            hr_rope_inv_freq(&c->cfg, inv);
        float *t = tab + (size_t)set * (size_t)n * (size_t)half * 2;
        for (int p = 0; p < n; p++) {
            for (int i = 0; i < half; i++) {
                float angle = (float)p * inv[i];
                t[((size_t)p * half + (size_t)i) * 2] = cosf(angle) * m;
                t[((size_t)p * half + (size_t)i) * 2 + 1] = sinf(angle) * m;
            }
        }
    }
    HrStatus st = upload_new(c, dst, tab, (size_t)sets * (size_t)n * (size_t)half * 8, "RoPE table", err);
    g_free(tab);
    g_free(inv);
    return st;
}

static HrStatus
vk_open(const HrModelConfig *cfg, const HrBackendOptions *opt, const HrTensorSet *ts, const HrWeightSpec *weights,
        int n_weights, void **dev_out, HrOpsLimits *limits, HrError *err)
{
    *dev_out = NULL;
    if (opt->kv_type != HR_KV_F16)
        return hr_error_set(err, HR_ERR_UNSUPPORTED, "the Vulkan backend keeps the KV cache in FP16 only "
                            "(--kv f16)");
    if (cfg->head_dim % 2 != 0 || cfg->n_kv_heads < 1 || cfg->n_heads % cfg->n_kv_heads != 0)
        return hr_error_set(err, HR_ERR_UNSUPPORTED, "Vulkan backend: head_dim %d must be even and the heads "
                            "(%d) a multiple of the KV heads (%d)", cfg->head_dim, cfg->n_heads, cfg->n_kv_heads);
    VkCtx *c = g_new0(VkCtx, 1);
    c->cfg = *cfg;
    c->opt = *opt;
    c->last_argmax = -1;
    c->weights = g_ptr_array_new();
    c->buffers = g_ptr_array_new();
    c->progs = g_ptr_array_new();

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
        vk_close(c);
        return st;
    }
    const HrVkCaps *caps = hr_vk_context_caps(c->vk);
    c->location = g_strdup_printf("device (Vulkan: %s)", caps->name);
    hr_vk_context_open_pipeline_cache(c->vk);
    HrVkKernelConfig kcfg;
    hr_vk_kernel_config_for(caps, (uint32_t)cfg->head_dim, &kcfg);
    if ((uint32_t)cfg->head_dim > kcfg.max_hd || kcfg.max_hd > 1024) {
        vk_close(c);
        return hr_error_set(err, HR_ERR_UNSUPPORTED, "Vulkan backend: head_dim %d is too large", cfg->head_dim);
    }
    c->pool = hr_pool_new(0);   /* the repacks */
    st = hr_vk_kernels_new(c->vk, &kcfg, &c->kern, err);
    if (st != HR_OK) {
        vk_close(c);
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
    size_t need = 0;
    for (int i = 0; i < n_weights; i++)
        need += spec_bytes(cfg, ts, &weights[i]);
    c->kv_one = (size_t)opt->context_len * (size_t)kv_dim * 2;
    c->context = opt->context_len;
    need += (size_t)hr_llama_kv_bytes(cfg, opt->context_len, (int)chunk_cap);   /* rings at their largest step */
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
     * logits buffer holds LROWS rows (64 MiB at most, at least one). The
     * scratch counts the model's activations (x, xb, q|k|v, q, att, hidden). */
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
        vk_close(c);   /* after the message: it names the device */
        return st;
    }
    if (c->kv_one > range) {
        st = hr_error_set(err, HR_ERR_UNSUPPORTED, "Vulkan: one layer's KV cache (%.1f MiB for %d positions) "
                          "exceeds the device's storage buffer range (%.1f MiB); use a smaller --ctx",
                          (double)c->kv_one / 1048576.0, opt->context_len, (double)range / 1048576.0);
        vk_close(c);   /* after the message: it reads c->kv_one */
        return st;
    }
    st = uploader_init(c, err);
    if (st == HR_OK) {
        /* RoPE cos/sin [context, hd/2], from the CPU backend's frequencies. */
        st = upload_rope(c, &c->rope_tab, false, err);
        if (st == HR_OK && cfg->rope_local_theta > 0.0f)
            st = upload_rope(c, &c->rope_tab_local, true, err);
    }
    if (st == HR_OK &&
        ((st = new_device(c, &c->part, part_bytes, "attention partials", err)) ||
         (st = alloc_host(c, &c->params, sizeof(HrVkStepParams), false, err)) ||
         (st = alloc_host(c, &c->tokens, C * 4, false, err)) ||
         (st = alloc_host(c, &c->logits, LR * (size_t)vocab * 4, true, err)) ||
         (st = alloc_host(c, &c->argmax, 16, true, err)))) {
    }
    const char *ds_env = g_getenv("HEARTH_DEVICE_SAMPLING");
    c->draws = ds_env && *ds_env ? strcmp(ds_env, "0") != 0 : caps->type == VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU;
    const size_t topk_g = hr_vk_topk_groups((uint32_t)vocab);
    if (st == HR_OK && c->draws &&
        ((st = alloc_host(c, &c->seen, (size_t)vocab * 4, false, err)) ||
         (st = new_device(c, &c->cand_v[0], topk_g * HR_VK_TOPK_K * 4, "sampling candidates", err)) ||
         (st = new_device(c, &c->cand_v[1], topk_g * HR_VK_TOPK_K * 4, "sampling candidates", err)) ||
         (st = new_device(c, &c->cand_i[0], topk_g * HR_VK_TOPK_K * 4, "sampling candidates", err)) ||
         (st = new_device(c, &c->cand_i[1], topk_g * HR_VK_TOPK_K * 4, "sampling candidates", err)) ||
         (st = new_device(c, &c->topk_stats, topk_g * 3 * 4, "sampling candidates", err)) ||
         (st = alloc_host(c, &c->topk_res, HR_VK_TOPK_RES_WORDS * 4, true, err)) ||
         (st = new_device(c, &c->logits_dec, (size_t)vocab * 4, "logits", err)) ||
         (st = record_fetch(c, err)))) {
    }
    c->scratch_bytes = part_bytes + (LR + c->draws) * (size_t)vocab * 4;
    if (st != HR_OK) {
        if (st == HR_ERR_NOMEM)
            hr_error_prefix(err, "Vulkan: out of device memory (the model needs %.1f MiB, %.1f MiB %s): ",
                            (double)need / 1048576.0, (double)avail / 1048576.0,
                            from_budget ? "available" : "device-local heap");
        vk_close(c);
        return st;
    }
    limits->max_tokens = (int)c->chunk;
    limits->max_logit_rows = (int)LR;
    limits->draws = c->draws;
    *dev_out = c;
    return HR_OK;
}

static HrStatus
vk_weight(void *p, const HrTensorSet *ts, const HrWeightSpec *s, const float *data, HrOpsWeight *tied_to,
          HrOpsWeight **out, HrError *err)
{
    VkCtx *c = p;
    HrOpsWeight *w = g_new0(HrOpsWeight, 1);
    w->role = s->role;
    g_ptr_array_add(c->weights, w);
    *out = w;
    switch (s->role) {
    case HR_W_VECTOR: {
        HrStatus st = upload_new(c, &w->vec, data, (size_t)s->rows * 4, s->name, err);
        w->n_vec = (size_t)s->rows;
        c->weight_bytes += (size_t)s->rows * 4;
        return st;
    }
    case HR_W_LINEAR:
        return take_linear(c, ts, s->name, s->rows, s->cols, &w->w, err);
    case HR_W_LM_HEAD:
        if (lm_head_q8(&c->cfg, ts, s->name, s->cols))
            return take_table_sliced(c, ts, s->name, s->rows, s->cols, true, &w->slices, &w->n_slices,
                                     &w->slice_rows, err);
        if (tied_to) {
            w->slices = tied_to->slices;
            w->n_slices = tied_to->n_slices;
            w->slice_rows = tied_to->slice_rows;
            w->shared = true;
            c->lm_shares_embed = true;
            return HR_OK;
        }
        return take_table_sliced(c, ts, s->name, s->rows, s->cols, false, &w->slices, &w->n_slices, &w->slice_rows,
                                 err);
    case HR_W_EMBED: {
        const size_t before = c->weight_bytes;
        HrStatus st = take_table_sliced(c, ts, s->name, s->rows, s->cols, false, &w->slices, &w->n_slices,
                                        &w->slice_rows, err);
        c->embed_bytes += c->weight_bytes - before;
        return st;
    }
    }
    return hr_error_set(err, HR_ERR_INVALID_ARG, "weight '%s': unknown role", s->name);
}

static HrStatus
vk_weights_done(void *p, HrError *err)
{
    VkCtx *c = p;
    const gint64 t_wait = g_get_monotonic_time();
    HrStatus st = uploader_finish(c, err);
    g_clear_pointer(&c->pool, hr_pool_free);
    c->load_upload_s += (double)(g_get_monotonic_time() - t_wait) / 1e6;
    return st;
}

static HrStatus
vk_activation(void *p, int64_t width, HrOpsBuffer **out, HrError *err)
{
    VkCtx *c = p;
    HrOpsBuffer *b = g_new0(HrOpsBuffer, 1);
    b->width = (uint32_t)width;
    g_ptr_array_add(c->buffers, b);
    *out = b;
    c->scratch_bytes += (size_t)c->chunk * (size_t)width * 4;
    return new_device(c, &b->buf, (size_t)c->chunk * (size_t)width * 4, "activations", err);
}

/* One layer's caches of `bytes` each. */
static HrStatus
kv_pair(VkCtx *c, size_t bytes, HrOpsBuffer **k_out, HrOpsBuffer **v_out, HrError *err)
{
    HrOpsBuffer *kv[2];
    for (int i = 0; i < 2; i++) {
        kv[i] = g_new0(HrOpsBuffer, 1);
        g_ptr_array_add(c->buffers, kv[i]);
        HrStatus st = new_device(c, &kv[i]->buf, bytes, "KV cache", err);
        if (st != HR_OK)
            return st;
    }
    c->kv_bytes += 2 * bytes;
    *k_out = kv[0];
    *v_out = kv[1];
    return HR_OK;
}

static HrStatus
vk_kv_cache(void *p, HrOpsBuffer **k_out, HrOpsBuffer **v_out, HrError *err)
{
    VkCtx *c = p;
    return kv_pair(c, c->kv_one, k_out, v_out, err);
}

/* A sliding-window layer's caches as rings of `entries` positions (kv_one holds the context's). */
static HrStatus
vk_kv_ring(void *p, int entries, HrOpsBuffer **k_out, HrOpsBuffer **v_out, HrError *err)
{
    VkCtx *c = p;
    if (entries < 1 || entries > c->context)
        return hr_error_set(err, HR_ERR_INVALID_ARG, "kv_ring: %d entries (1 to the context's %d)", entries,
                            c->context);
    return kv_pair(c, c->kv_one / (size_t)c->context * (size_t)entries, k_out, v_out, err);
}

/* ---- compile and run ---------------------------------------------------------------------- */

static HrStatus
add(GArray *ds, HrStatus st, const HrVkDispatch *d)
{
    if (st == HR_OK)
        g_array_append_vals(ds, d, 1);
    return st;
}

/* c->xq, made on first use for the model's widest input; k inputs must fit. */
static HrStatus
ensure_xq(VkCtx *c, uint32_t k, HrError *err)
{
    HrStatus st = HR_OK;
    if (!c->xq.buffer) {
        const HrModelConfig *m = &c->cfg;
        const uint32_t cols = (uint32_t)MAX(MAX(m->dim, m->hidden_dim), m->n_heads * m->head_dim);
        const size_t bytes = hr_vk_q8_words((cols + 31) / 32 * 32) * 4;
        st = new_device(c, &c->xq, bytes, "activations", err);
        c->scratch_bytes += bytes;
    }
    if (st == HR_OK && hr_vk_q8_words(k) * 4 > c->xq.size)
        st = hr_error_set(err, HR_ERR_INVALID_ARG, "Vulkan: a linear of %u inputs, wider than the model's", k);
    return st;
}

/* Whether node nd (decode) can leave its output in c->xq for next, a linear
 * on int8 activations that reads it. */
static bool
q8_feeds(const VkCtx *c, const HrNode *nd, const HrNode *next, bool prefill)
{
    return !prefill && next && (next->op == HR_OP_LINEAR || next->op == HR_OP_LOGITS) && next->src == nd->dst &&
           hr_vk_gemv_q8(c->kern, next->op == HR_OP_LOGITS ? &next->w[0]->slices[0] : &next->w[0]->w,
                         nd->dst->width);
}

/* A decode step's linear on int8 activations (HEARTH_VULKAN_GEMV=q8): its
 * input row quantized into c->xq first, unless the node before left it there
 * (held: the RMSNorm's or the attention's output, or NULL); *xq the buffer
 * for HrVkGemvArgs.xq (NULL where matrix w cannot take it: the GEMV reads x). */
static HrStatus
add_quant_q8(VkCtx *c, GArray *ds, const HrOpsBuffer *src, const HrVkWeight *w, bool prefill,
             const HrOpsBuffer *held, HrVkBuffer **xq, HrError *err)
{
    *xq = NULL;
    if (prefill || !hr_vk_gemv_q8(c->kern, w, src->width))
        return HR_OK;
    HrStatus st = ensure_xq(c, w->k, err);
    HrVkDispatch d;
    if (st == HR_OK && held != src)
        st = add(ds, hr_vk_make_quant_q8(c->kern, (HrVkBuffer *)&src->buf, 0, w->k, &c->xq, &d, err), &d);
    if (st == HR_OK)
        *xq = &c->xq;
    return st;
}

/* A LINEAR node: one dispatch when its matrices are stored alike (q|k|v,
 * gate|up), else one per matrix side by side. */
static HrStatus
add_linear(VkCtx *c, GArray *ds, const HrNode *nd, bool prefill, bool gemm, uint32_t T, const HrOpsBuffer *held,
           HrError *err)
{
    HrVkDispatch d;
    uint32_t rows = 0;
    bool alike = true;
    for (int i = 0; i < nd->n_w; i++) {
        rows += nd->w[i]->w.n;
        alike = alike && hr_vk_weights_fusable(&nd->w[0]->w, &nd->w[i]->w);
    }
    HrVkGemvArgs a = { .gate = nd->gate, .gelu = nd->gate && nd->act == HR_ACT_GELU_TANH, .residual = nd->residual, .prefill = prefill, .x = &nd->src->buf,
                       .out = &nd->dst->buf, .bias = nd->bias ? &nd->bias->vec : NULL, .params = &c->params,
                       .x_stride = nd->src->width, .o_stride = nd->gate ? nd->w[0]->w.n : rows, .max_tokens = T,
                       .no_gemm = !gemm };
    /* one quantized row serves every matrix of the node that can take it */
    HrStatus qst = add_quant_q8(c, ds, nd->src, &nd->w[0]->w, prefill, held, &a.xq, err);
    if (qst != HR_OK)
        return qst;
    if (alike) {
        for (int i = 0; i < nd->n_w; i++)
            a.w[i] = &nd->w[i]->w;
        return add(ds, hr_vk_make_gemv(c->kern, &a, &d, err), &d);
    }
    HrStatus st = HR_OK;
    if (nd->gate) {
        /* stored differently (one quantized, other group sizes or GGUF
         * types): gate into dst, up into the scratch, then SiLU(gate) * up */
        const uint32_t width = nd->w[0]->w.n;
        if (!c->up_out.buffer) {
            st = new_device(c, &c->up_out, (size_t)c->chunk * width * 4, "activations", err);
            c->scratch_bytes += (size_t)c->chunk * width * 4;
        }
        a.gate = false;
        a.o_stride = width;
        a.w[0] = &nd->w[0]->w;
        if (st == HR_OK)
            st = add(ds, hr_vk_make_gemv(c->kern, &a, &d, err), &d);
        a.w[0] = &nd->w[1]->w;
        a.out = &c->up_out;
        if (st == HR_OK)
            st = add(ds, hr_vk_make_gemv(c->kern, &a, &d, err), &d);
        if (st == HR_OK)
            st = add(ds, hr_vk_make_silu_mul(c->kern, &nd->dst->buf, &c->up_out, &c->params, width,
                                             nd->act == HR_ACT_GELU_TANH, T, &d, err), &d);
        return st;
    }
    uint32_t off = 0;
    for (int i = 0; st == HR_OK && i < nd->n_w; i++) {
        a.w[0] = &nd->w[i]->w;
        a.out_row_offset = off;
        st = add(ds, hr_vk_make_gemv(c->kern, &a, &d, err), &d);
        off += nd->w[i]->w.n;
    }
    return st;
}

/* After a one-token step's logits: the repetition penalty, the device argmax
 * (greedy without a spec: tests, bench), and topk.comp's passes, which
 * return at once unless the step has a sample spec. */
static HrStatus
add_sample(VkCtx *c, GArray *ds, HrError *err)
{
    HrVkKernels *k = c->kern;
    const uint32_t vocab = (uint32_t)c->cfg.vocab_size;
    HrVkDispatch d;
    HrStatus st = add(ds, hr_vk_make_penalize(k, &c->logits_dec, &c->seen, &c->params, vocab, &d, err), &d);
    if (st == HR_OK)
        st = add(ds, hr_vk_make_argmax(k, &c->logits_dec, 0, vocab, &c->argmax, &d, err), &d);
    const uint32_t g1 = hr_vk_topk_groups(vocab);
    uint32_t n = vocab;
    for (int pass = 0; st == HR_OK; pass++) {
        const bool first = pass == 0, last = hr_vk_topk_groups(n) == 1;
        /* pass p writes pair p % 2 and reads pair (p - 1) % 2 */
        HrVkBuffer *vin = first ? &c->logits_dec : &c->cand_v[(pass + 1) % 2];
        st = add(ds, hr_vk_make_topk(k, vin, &c->cand_i[(pass + 1) % 2], &c->cand_v[pass % 2], &c->cand_i[pass % 2],
                                     &c->topk_stats, &c->params, &c->topk_res, n, first, last, g1, &d, err), &d);
        if (last)
            break;
        n = hr_vk_topk_groups(n) * HR_VK_TOPK_K;
    }
    return st;
}

/* next: the node after nd (NULL at the end). *xq_holds: in, the buffer the
 * node before left in c->xq (NULL: none); out, the one this node leaves
 * there for next. */
static HrStatus
add_node(VkCtx *c, GArray *ds, const HrNode *nd, const HrNode *next, bool prefill, bool gemm, uint32_t T,
         const HrOpsBuffer **xq_holds, HrError *err)
{
    const HrModelConfig *cfg = &c->cfg;
    const uint32_t hd = (uint32_t)cfg->head_dim, ctxlen = (uint32_t)c->opt.context_len;
    HrVkKernels *k = c->kern;
    HrVkDispatch d;
    HrStatus st = HR_OK;
    const HrOpsBuffer *held = *xq_holds;   /* for this node only */
    *xq_holds = NULL;
    switch (nd->op) {
    case HR_OP_EMBED:
        for (int i = 0; st == HR_OK && i < nd->w[0]->n_slices; i++)
            st = add(ds, hr_vk_make_embed(k, &c->tokens, &nd->w[0]->slices[i], (uint32_t)i * nd->w[0]->slice_rows,
                                          nd->scale,
                                          &nd->dst->buf, &c->params, T, &d, err), &d);
        return st;
    case HR_OP_RMSNORM:
        if (!nd->logit_rows && !nd->residual && q8_feeds(c, nd, next, prefill)) {   /* and the row as int8 for the next linear */
            st = ensure_xq(c, nd->dst->width, err);
            if (st == HR_OK)
                st = add(ds, hr_vk_make_rmsnorm_q8(k, &nd->src->buf, &nd->dst->buf, &nd->w[0]->vec, &c->params,
                                                   nd->src->width, cfg->norm_eps, &c->xq, &d, err), &d);
            *xq_holds = nd->dst;
            return st;
        }
        return add(ds, hr_vk_make_rmsnorm(k, &nd->src->buf, &nd->dst->buf, &nd->w[0]->vec, &c->params,
                                          nd->src->width, cfg->norm_eps, nd->logit_rows, nd->residual, T, &d, err),
                   &d);
    case HR_OP_LINEAR:
        return add_linear(c, ds, nd, prefill, gemm, T, held, err);
    case HR_OP_ROPE_KV:
        if (nd->n_w == 2 &&   /* Qwen3: every q and k head normalised first */
            (st = add(ds, hr_vk_make_head_norm(k, &nd->src->buf, &nd->w[0]->vec, &nd->w[1]->vec, &c->params,
                                               (uint32_t)cfg->n_heads, (uint32_t)cfg->n_kv_heads, hd, cfg->norm_eps,
                                               T, &d, err), &d)) != HR_OK)
            return st;
        return add(ds, hr_vk_make_rope_kv(k, &nd->src->buf, &nd->dst->buf, &nd->k_cache->buf, &nd->v_cache->buf,
                                          nd->local_rope && c->rope_tab_local.buffer ? &c->rope_tab_local : &c->rope_tab,
                                          &c->params, (uint32_t)cfg->n_heads, (uint32_t)cfg->n_kv_heads, hd,
                                          (uint32_t)hr_model_config_rotary_dim(cfg),
                                          cfg->rope_scaling == HR_ROPE_LONGROPE && !nd->local_rope
                                              ? (uint32_t)cfg->rope_original_max_pos : 0,
                                          ctxlen * (uint32_t)(hr_model_config_rotary_dim(cfg) / 2),
                                          (uint32_t)MAX(nd->ring, 0), T, &d, err),
                   &d);
    case HR_OP_ATTENTION:
        st = add(ds, hr_vk_make_attn(k, &nd->src->buf, &nd->k_cache->buf, &nd->v_cache->buf, &c->part, &c->params,
                                     (uint32_t)cfg->n_heads, (uint32_t)cfg->n_kv_heads, hd, ctxlen,
                                     (uint32_t)MAX(nd->window, 0), (uint32_t)MAX(nd->ring, 0), nd->scale, nd->softcap,
                                     prefill, T, &d, err), &d);
        if (st == HR_OK && hd % 32 == 0 && hd <= hr_vk_kernels_config(k)->max_hd && q8_feeds(c, nd, next, prefill)) {
            st = ensure_xq(c, nd->dst->width, err);   /* and the row as int8 for o_proj */
            if (st == HR_OK)
                st = add(ds, hr_vk_make_attn_combine_q8(k, &c->part, &nd->dst->buf, &c->params,
                                                        (uint32_t)cfg->n_heads, hd, ctxlen, &c->xq, &d, err), &d);
            *xq_holds = nd->dst;
            return st;
        }
        if (st == HR_OK)
            st = add(ds, hr_vk_make_attn_combine(k, &c->part, &nd->dst->buf, &c->params, (uint32_t)cfg->n_heads, hd,
                                                 ctxlen, T, &d, err), &d);
        return st;
    case HR_OP_LOGITS: {
        /* a 4-bit or int8 lm_head on int8 activations too; decode's one row is row 0 */
        HrVkBuffer *xq = NULL;
        st = add_quant_q8(c, ds, nd->src, &nd->w[0]->slices[0], prefill, held, &xq, err);
        for (int i = 0; st == HR_OK && i < nd->w[0]->n_slices; i++) {
            HrVkGemvArgs a = { .w = { &nd->w[0]->slices[i] }, .logit_rows = true, .prefill = prefill, .xq = xq,
                               .softcap = nd->softcap,
                               .x = &nd->src->buf, .out = prefill || !c->draws ? &c->logits : &c->logits_dec,
                               .params = &c->params,
                               .x_stride = nd->src->width, .o_stride = (uint32_t)cfg->vocab_size,
                               .out_row_offset = (uint32_t)i * nd->w[0]->slice_rows, .max_tokens = T,
                               .no_gemm = !gemm };
            st = add(ds, hr_vk_make_gemv(k, &a, &d, err), &d);
        }
        if (st == HR_OK && !prefill && c->draws)
            st = add_sample(c, ds, err);
        else if (st == HR_OK && !prefill)
            st = add(ds, hr_vk_make_argmax(k, &c->logits, 0, (uint32_t)cfg->vocab_size, &c->argmax, &d, err), &d);
        return st;
    }
    }
    return hr_error_set(err, HR_ERR_INVALID_ARG, "unknown op %d", (int)nd->op);
}

/* The decode row, device -> host (after the dispatches before it). */
static void
record_row_copy(VkCtx *c, VkCommandBuffer cb)
{
    hr_vk_record_barrier(cb);
    VkBufferCopy r = { 0, 0, (VkDeviceSize)c->cfg.vocab_size * 4 };
    vkCmdCopyBuffer(cb, c->logits_dec.buffer, c->logits.buffer, 1, &r);
}

static HrStatus
record_fetch(VkCtx *c, HrError *err)
{
    HrStatus st = hr_vk_context_command_buffers(c->vk, 1, &c->cb_fetch, err);
    if (st != HR_OK)
        return st;
    st = hr_vk_begin(c->cb_fetch, 0, err);
    if (st != HR_OK)
        return st;
    record_row_copy(c, c->cb_fetch);
    hr_vk_record_host_barrier(c->cb_fetch);
    VkResult r = vkEndCommandBuffer(c->cb_fetch);
    return r == VK_SUCCESS ? HR_OK : hr_vk_context_vk_fail(err, r, "vkEndCommandBuffer");
}

/* copy_row: a decode list, whose logits row is copied to the host at the end. */
static HrStatus
record(VkCtx *c, GArray *ds, bool copy_row, VkCommandBuffer *cb_out, HrError *err)
{
    HrStatus st = hr_vk_kernels_ensure(c->kern, c->pool, err);   /* the pipelines the list needs, made at once */
    if (st != HR_OK)
        return st;
    st = hr_vk_context_command_buffers(c->vk, 1, cb_out, err);
    if (st != HR_OK)
        return st;
    st = hr_vk_begin(*cb_out, 0, err);
    if (st != HR_OK)
        return st;
    /* Uploads (and host writes of params/tokens) before this submit. */
    hr_vk_record_barrier(*cb_out);
    for (guint i = 0; i < ds->len; i++) {
        if (i > 0)
            hr_vk_record_barrier(*cb_out);
        hr_vk_record(c->kern, *cb_out, &g_array_index(ds, HrVkDispatch, i));
    }
    if (copy_row)
        record_row_copy(c, *cb_out);
    hr_vk_record_host_barrier(*cb_out);
    VkResult r = vkEndCommandBuffer(*cb_out);
    if (r != VK_SUCCESS)
        return hr_vk_context_vk_fail(err, r, "vkEndCommandBuffer");
    return HR_OK;
}

/* The dispatches of a whole node list, in order. */
static HrStatus
add_nodes(VkCtx *c, GArray *ds, const HrNode *nodes, int n_nodes, bool prefill, bool gemm, uint32_t T, HrError *err)
{
    HrStatus st = HR_OK;
    const HrOpsBuffer *xq_holds = NULL;
    for (int i = 0; st == HR_OK && i < n_nodes; i++)
        st = add_node(c, ds, &nodes[i], i + 1 < n_nodes ? &nodes[i + 1] : NULL, prefill, gemm, T, &xq_holds, err);
    return st;
}

static HrStatus
vk_compile(void *p, const HrNode *nodes, int n_nodes, int max_tokens, void **prog_out, HrError *err)
{
    VkCtx *c = p;
    const bool prefill = max_tokens > 1;
    const uint32_t T = prefill ? c->chunk : 1;
    VkProg *g = g_new0(VkProg, 1);
    g->ds = g_array_new(FALSE, FALSE, sizeof(HrVkDispatch));
    g->decode = !prefill;
    g_ptr_array_add(c->progs, g);
    HrStatus st = add_nodes(c, g->ds, nodes, n_nodes, prefill, true, T, err);
    if (st == HR_OK)
        st = record(c, g->ds, !prefill && c->draws, &g->cb, err);
    const uint32_t S = short_steps(c);
    if (st == HR_OK && prefill && S > 1 && T > S) {
        g->ds_short = g_array_new(FALSE, FALSE, sizeof(HrVkDispatch));
        st = add_nodes(c, g->ds_short, nodes, n_nodes, true, false, S, err);
        if (st == HR_OK)
            st = record(c, g->ds_short, false, &g->cb_short, err);
        g->n_short = S;
    }
    if (st == HR_OK && !prefill && c->draws)
        st = record(c, g->ds, false, &g->cb_draw, err);
    if (st == HR_OK && prefill)   /* the model compiles decode, then prefill: every pipeline a chat needs is built */
        hr_vk_context_save_pipeline_cache(c->vk);
    if (st == HR_OK)
        *prog_out = g;
    return st;
}

static HrStatus
vk_run(void *p, void *prog, const HrStep *s, HrError *err)
{
    VkCtx *c = p;
    const VkProg *g = prog;
    if (s->n < 1 || s->n > (g->decode ? 1 : (int)c->chunk) || s->n - s->logit_first > (int)c->logit_rows)
        return hr_error_set(err, HR_ERR_INVALID_ARG, "run: %d tokens, %d logits rows", s->n, s->n - s->logit_first);
    const HrSampleSpec *sp = s->sample;
    if (sp && (!c->draws || !g->decode || s->n != 1 || s->logit_first != 0 || sp->n_seen < 0 ||
               sp->n_seen > c->cfg.vocab_size || (sp->n_seen > 0 && !sp->seen)))
        return hr_error_set(err, HR_ERR_INVALID_ARG, "run: a sample spec needs one token and at most the vocabulary's "
                            "ids");
    HrVkStepParams prm = { (uint32_t)s->pos, (uint32_t)s->n, (uint32_t)s->logit_first, (uint32_t)(s->pos + s->n),
                           sp != NULL, sp ? (uint32_t)sp->n_seen : 0, sp ? sp->penalty : 1.0f,
                           sp ? sp->inv_t : 0.0f };
    memcpy(c->params.mapped, &prm, sizeof prm);
    memcpy(c->tokens.mapped, s->tokens, (size_t)s->n * 4);
    if (sp && sp->n_seen > 0)
        memcpy(c->seen.mapped, sp->seen, (size_t)sp->n_seen * 4);
    c->last_argmax = -1;
    c->sampled = false;
    HrStatus st = hr_vk_submit_wait(c->vk, sp ? g->cb_draw : (uint32_t)s->n <= g->n_short ? g->cb_short : g->cb, err);
    if (st != HR_OK)
        return st;
    c->sampled = sp != NULL;
    const int rows = s->n - s->logit_first; /* the lm_head wrote them from row 0 */
    if (rows > 0 && s->logits)
        memcpy(s->logits, c->logits.mapped, (size_t)rows * (size_t)c->cfg.vocab_size * 4);
    if (g->decode && rows == 1)
        c->last_argmax = (int)((const uint32_t *)c->argmax.mapped)[0];
    return HR_OK;
}

static void
vk_memory(void *p, HrMemoryReport *out)
{
    VkCtx *c = p;
    out->weight_bytes = c->weight_bytes;
    out->decode_weight_bytes = c->weight_bytes - (c->lm_shares_embed ? 0 : c->embed_bytes);
    out->kv_bytes = c->kv_bytes;
    out->scratch_bytes = c->scratch_bytes;
    out->location = c->location;
    /* reading the mapped checkpoint happens as the repack touches it: in convert */
    out->load_upload_s = c->load_upload_s;
}

static int
vk_last_argmax(void *p)
{
    return ((VkCtx *)p)->last_argmax;
}

static HrStatus
vk_candidates(void *p, HrCandidates *out, HrError *err)
{
    VkCtx *c = p;
    if (!c->sampled)
        return hr_error_set(err, HR_ERR_UNSUPPORTED, "the last step drew no candidates");
    const uint32_t *r = c->topk_res.mapped;
    const int n = MIN(c->cfg.vocab_size, (int)HR_VK_TOPK_K);
    out->n = n;
    for (int i = 0; i < n; i++) {
        out->ids[i] = (int32_t)r[i];
        memcpy(&out->vals[i], &r[HR_VK_TOPK_K + (uint32_t)i], 4);
    }
    float sum;
    memcpy(&sum, &r[2 * HR_VK_TOPK_K + 1], 4);
    out->sum = sum;
    out->finite = r[2 * HR_VK_TOPK_K + 2] == 0;
    for (int i = 0; i < n && out->finite; i++)  /* a device answer outside the row is not trusted */
        out->finite = out->ids[i] >= 0 && out->ids[i] < c->cfg.vocab_size;
    return HR_OK;
}

static HrStatus
vk_read_logits(void *p, float *out, HrError *err)
{
    VkCtx *c = p;
    if (!c->sampled)
        return hr_error_set(err, HR_ERR_INVALID_ARG, "read_logits: the last step kept no logits on the device");
    HrStatus st = hr_vk_submit_wait(c->vk, c->cb_fetch, err);
    if (st == HR_OK)
        memcpy(out, c->logits.mapped, (size_t)c->cfg.vocab_size * 4);
    return st;
}

/* The quantizer's block forward (ops.h): new values go through the staging
 * ring (waited for, so the next submit sees them), a read through io_rb. */
static HrStatus
vk_set_weight(void *p, HrOpsWeight *w, const float *data, HrError *err)
{
    VkCtx *c = p;
    HrStatus st;
    if (w->role == HR_W_VECTOR) {
        st = upload_bytes(c, &w->vec, data, w->n_vec * 4, err);
    } else if (w->role == HR_W_LINEAR && w->w.kind == HR_VK_W_F16) {
        HrVkWeight shape;
        size_t n_words;
        uint32_t *words = hr_vk_pack_f16(data, HR_DTYPE_F32, (int)w->w.n, (int)w->w.k, NULL, &shape, &n_words);
        st = n_words * 4 <= (size_t)w->w.buf.size ? upload_bytes(c, &w->w.buf, words, n_words * 4, err)
                                                   : hr_error_set(err, HR_ERR_INVALID_ARG, "set_weight: size");
        g_free(words);
    } else {
        return hr_error_set(err, HR_ERR_UNSUPPORTED, "set_weight: only a dense linear or a vector");
    }
    return st == HR_OK ? uploader_finish(c, err) : st;
}

static HrStatus
vk_write(void *p, HrOpsBuffer *b, const float *data, int n, HrError *err)
{
    VkCtx *c = p;
    if (n < 0 || (uint32_t)n > c->chunk || !b->width)
        return hr_error_set(err, HR_ERR_INVALID_ARG, "write: %d rows into an activation of %u", n, c->chunk);
    HrStatus st = upload_bytes(c, &b->buf, data, (size_t)n * b->width * 4, err);
    return st == HR_OK ? uploader_finish(c, err) : st;
}

/* bytes [off, off + bytes) of a device buffer to the host, through io_rb */
static HrStatus
read_back(VkCtx *c, const HrVkBuffer *src, size_t off, void *data, size_t bytes, HrError *err)
{
    if (!bytes)
        return HR_OK;
    HrStatus st = HR_OK;
    if (c->io_rb.size < bytes) {
        hr_vk_buffer_free(c->vk, &c->io_rb);
        st = alloc_host(c, &c->io_rb, bytes, true, err);
    }
    if (st == HR_OK && !c->cb_io)
        st = hr_vk_context_command_buffers(c->vk, 1, &c->cb_io, err);
    if (st != HR_OK)
        return st;
    st = hr_vk_begin(c->cb_io, VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT, err);
    if (st != HR_OK)
        return st;
    hr_vk_record_barrier(c->cb_io);
    VkBufferCopy region = { (VkDeviceSize)off, 0, (VkDeviceSize)bytes };
    vkCmdCopyBuffer(c->cb_io, src->buffer, c->io_rb.buffer, 1, &region);
    hr_vk_record_host_barrier(c->cb_io);
    VkResult r = vkEndCommandBuffer(c->cb_io);
    if (r != VK_SUCCESS)
        return hr_vk_context_vk_fail(err, r, "vkEndCommandBuffer");
    st = hr_vk_submit_wait(c->vk, c->cb_io, err);
    if (st == HR_OK)
        memcpy(data, c->io_rb.mapped, bytes);
    return st;
}

static HrStatus
vk_read(void *p, HrOpsBuffer *b, float *data, int n, HrError *err)
{
    VkCtx *c = p;
    if (n < 0 || (uint32_t)n > c->chunk || !b->width || b->rows)
        return hr_error_set(err, HR_ERR_INVALID_ARG, "read: %d rows of an activation of %u", n, c->chunk);
    return read_back(c, &b->buf, 0, data, (size_t)n * b->width * 4, err);
}

/* The quantizer's tensors (ops.h): device buffers [rows, width] with a
 * float per row for sq_diff. */
static HrStatus
vk_tensor(void *p, int64_t rows, int64_t width, HrOpsBuffer **out, HrError *err)
{
    VkCtx *c = p;
    if (rows < 1 || width < 1 || width > UINT32_MAX / 4 || (uint64_t)rows * (uint64_t)width * 4 > c->max_binding)
        return hr_error_set(err, HR_ERR_INVALID_ARG, "Vulkan: a tensor of %" G_GINT64_FORMAT " x %" G_GINT64_FORMAT
                            " (bindings of at most %" G_GUINT64_FORMAT " bytes)", rows, width, c->max_binding);
    HrOpsBuffer *b = g_new0(HrOpsBuffer, 1);
    g_ptr_array_add(c->buffers, b);
    *out = b;
    b->width = (uint32_t)width;
    b->rows = rows;
    const size_t bytes = (size_t)rows * (size_t)width * 4;
    c->scratch_bytes += bytes + (size_t)rows * 4;
    HrStatus st = new_device(c, &b->buf, bytes, "a tensor", err);
    if (st == HR_OK)
        st = new_device(c, &b->sums, (size_t)rows * 4, "a tensor", err);
    return st;
}

static HrStatus
vk_tensor_write(void *p, HrOpsBuffer *t, int64_t row0, const float *data, int64_t n, HrError *err)
{
    VkCtx *c = p;
    if (!hr_ops_rows_in(t->rows, row0, n))
        return hr_error_set(err, HR_ERR_INVALID_ARG, "tensor_write: rows %" G_GINT64_FORMAT "+%" G_GINT64_FORMAT,
                            row0, n);
    HrStatus st = upload_at(c, &t->buf, (size_t)row0 * t->width * 4, data, (size_t)n * t->width * 4, err);
    return st == HR_OK ? uploader_finish(c, err) : st;
}

/* an activation's rows against a tensor's: the same width, at most a step */
static bool
rows_pair(const VkCtx *c, const HrOpsBuffer *a, const HrOpsBuffer *t, int64_t row0, int n)
{
    return hr_ops_rows_in(t->rows, row0, n) && !a->rows && a->width == t->width && (uint32_t)n <= c->chunk;
}

static HrStatus
vk_copy_rows(void *p, HrOpsBuffer *a, HrOpsBuffer *t, int64_t row0, int n, bool to_tensor, HrError *err)
{
    VkCtx *c = p;
    if (!rows_pair(c, a, t, row0, n))
        return hr_error_set(err, HR_ERR_INVALID_ARG, "copy_rows: %d rows at %" G_GINT64_FORMAT, n, row0);
    if (!n)
        return HR_OK;
    VkCommandBuffer cb;
    HrStatus st = hr_vk_context_command_buffers(c->vk, 1, &cb, err);
    if (st != HR_OK)
        return st;
    st = hr_vk_begin(cb, VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT, err);
    if (st != HR_OK) {
        vkFreeCommandBuffers(hr_vk_context_device(c->vk), hr_vk_context_command_pool(c->vk), 1, &cb);
        return st;
    }
    hr_vk_record_barrier(cb);
    const VkDeviceSize at = (VkDeviceSize)row0 * t->width * 4, bytes = (VkDeviceSize)n * t->width * 4;
    VkBufferCopy region = { to_tensor ? 0 : at, to_tensor ? at : 0, bytes };
    vkCmdCopyBuffer(cb, to_tensor ? a->buf.buffer : t->buf.buffer, to_tensor ? t->buf.buffer : a->buf.buffer, 1,
                    &region);
    hr_vk_record_barrier(cb);
    VkResult r = vkEndCommandBuffer(cb);
    st = r == VK_SUCCESS ? hr_vk_submit_wait(c->vk, cb, err) : hr_vk_context_vk_fail(err, r, "vkEndCommandBuffer");
    vkFreeCommandBuffers(hr_vk_context_device(c->vk), hr_vk_context_command_pool(c->vk), 1, &cb);
    return st;
}

static HrStatus
vk_sq_diff(void *p, HrOpsBuffer *a, HrOpsBuffer *t, int64_t row0, int n, HrError *err)
{
    VkCtx *c = p;
    if (!rows_pair(c, a, t, row0, n))
        return hr_error_set(err, HR_ERR_INVALID_ARG, "sq_diff: %d rows at %" G_GINT64_FORMAT, n, row0);
    if (!n)
        return HR_OK;
    if (t->sq_a != a) {   /* one descriptor set per pair, made once */
        HrStatus st = hr_vk_make_sq_diff(c->kern, &a->buf, &t->buf, &t->sums, t->width, &t->sq, err);
        if (st != HR_OK)
            return st;
        t->sq_a = a;
    }
    hr_vk_set_sq_diff(&t->sq, (uint32_t)n, (uint32_t)row0);
    return hr_vk_run(c->kern, &t->sq, 1, err);
}

static HrStatus
vk_sq_total(void *p, HrOpsBuffer *t, double *out, HrError *err)
{
    VkCtx *c = p;
    if (!t->rows)
        return hr_error_set(err, HR_ERR_INVALID_ARG, "sq_total: not a tensor");
    float *v = g_try_new(float, (size_t)t->rows);
    if (!v)
        return hr_error_set(err, HR_ERR_NOMEM, "sq_total: %" G_GINT64_FORMAT " rows", t->rows);
    HrStatus st = read_back(c, &t->sums, 0, v, (size_t)t->rows * 4, err);
    double sum = 0.0;
    for (int64_t r = 0; st == HR_OK && r < t->rows; r++)   /* v is unset when the read failed */
        sum += v[r];
    g_free(v);
    *out = sum;
    return st;
}

/* c->qs, the quantizer's vector of one row's width (made the first time, as
 * wide as the widest input a linear of the model has), for n floats */
static HrStatus
ensure_qs(VkCtx *c, uint32_t n, HrError *err)
{
    if (!c->qs.buffer) {
        const HrModelConfig *m = &c->cfg;
        const size_t cols = (size_t)MAX(MAX(m->dim, m->hidden_dim), m->n_heads * m->head_dim);
        HrStatus st = new_device(c, &c->qs, cols * 4, "the quantizer's vector", err);
        if (st != HR_OK)
            return st;
    }
    return (size_t)n * 4 <= c->qs.size ? HR_OK : hr_error_set(err, HR_ERR_INVALID_ARG, "a vector of %u floats", n);
}

static HrStatus
vk_scale_quant(void *p, HrOpsWeight *w, HrOpsBuffer *t, const float *s, int group, int bits, bool delta,
               HrError *err)
{
    VkCtx *c = p;
    if (w->role != HR_W_LINEAR || w->w.kind != HR_VK_W_F16)
        return hr_error_set(err, HR_ERR_UNSUPPORTED, "scale_quant: only a dense linear");
    if (t->rows != (int64_t)w->w.n || t->width != w->w.k || group < 2 || group % 2 || w->w.k % (uint32_t)group ||
        bits < 2 || bits > 8)
        return hr_error_set(err, HR_ERR_INVALID_ARG, "scale_quant: a [%" G_GINT64_FORMAT ", %u] tensor for a [%u, %u] "
                            "linear, groups of %d, %d bits", t->rows, t->width, w->w.n, w->w.k, group, bits);
    HrStatus st = ensure_qs(c, w->w.k, err);
    if (st == HR_OK)
        st = upload_bytes(c, &c->qs, s, (size_t)w->w.k * 4, err);
    if (st == HR_OK)
        st = uploader_finish(c, err);
    if (st == HR_OK && w->sq_t != t) {   /* one descriptor set per pair, made once */
        st = hr_vk_make_scale_quant(c->kern, &t->buf, &c->qs, &w->w, (uint32_t)group, (uint32_t)bits, delta, &w->sq,
                                    err);
        if (st == HR_OK)
            w->sq_t = t;
    }
    if (st != HR_OK)
        return st;
    hr_vk_set_scale_quant(c->kern, &w->sq, &w->w, (uint32_t)group, (uint32_t)bits, delta);   /* (checked above) */
    return hr_vk_run(c->kern, &w->sq, 1, err);
}

static HrStatus
vk_clip_search(void *p, HrOpsBuffer *w, HrOpsBuffer *x, int nt, int step, int group, int bits, int steps, int grid,
               float *lim, HrError *err)
{
    VkCtx *c = p;
    if (!w->rows || !x->rows || w->width != x->width || group < 1 || group > 256 || w->width % (uint32_t)group ||
        w->rows > 65535 || bits < 2 || bits > 8 || steps < 1 || grid < 1 || nt < 1 || step < 1 ||
        (int64_t)(nt - 1) * step >= x->rows)
        return hr_error_set(err, HR_ERR_INVALID_ARG, "clip_search: a [%" G_GINT64_FORMAT ", %u] weight over [%"
                            G_GINT64_FORMAT ", %u] inputs, groups of %d", w->rows, w->width, x->rows, x->width, group);
    const size_t n_lim = (size_t)w->rows * (w->width / (uint32_t)group);
    HrVkBuffer C = { 0 }, L = { 0 };
    HrVkDispatch d[2];
    HrStatus st = new_device(c, &C, (size_t)w->width * (size_t)group * 4, "the clip search", err);
    if (st == HR_OK)
        st = new_device(c, &L, n_lim * 4, "the clip search", err);
    if (st == HR_OK)
        st = hr_vk_make_clip(c->kern, &x->buf, &C, &w->buf, &L, w->width, (uint32_t)group, (uint32_t)nt,
                             (uint32_t)step * x->width, (uint32_t)w->rows, (uint32_t)bits, (uint32_t)steps,
                             (uint32_t)grid, d, err);
    if (st == HR_OK)
        st = hr_vk_run(c->kern, d, 2, err);
    if (st == HR_OK)
        st = read_back(c, &L, 0, lim, n_lim * 4, err);
    hr_vk_buffer_free(c->vk, &C);
    hr_vk_buffer_free(c->vk, &L);
    return st;
}

/* col_abs_sum (the sums to out) and scale_cols (s in), the vector in
 * c->qs */
static HrStatus
col_op(VkCtx *c, HrOpsBuffer *t, const float *s, float *out, HrError *err)
{
    const bool divide = s != NULL;
    if (!t->rows)
        return hr_error_set(err, HR_ERR_INVALID_ARG, "%s: not a tensor", divide ? "scale_cols" : "col_abs_sum");
    HrVkDispatch d;
    HrStatus st = ensure_qs(c, t->width, err);
    if (st == HR_OK && divide)
        st = upload_bytes(c, &c->qs, s, (size_t)t->width * 4, err);
    if (st == HR_OK && divide)
        st = uploader_finish(c, err);
    if (st == HR_OK)
        st = hr_vk_make_col_op(c->kern, &t->buf, &c->qs, (uint32_t)t->rows, t->width, divide, &d, err);
    if (st == HR_OK)
        st = hr_vk_run(c->kern, &d, 1, err);
    if (st == HR_OK && !divide)
        st = read_back(c, &c->qs, 0, out, (size_t)t->width * 4, err);
    return st;
}

static HrStatus
vk_col_abs_sum(void *p, HrOpsBuffer *t, double *out, HrError *err)
{
    float *v = g_try_new(float, t->width ? t->width : 1);
    if (!v)
        return hr_error_set(err, HR_ERR_NOMEM, "col_abs_sum: %u columns", t->width);
    HrStatus st = col_op(p, t, NULL, v, err);
    for (uint32_t k = 0; st == HR_OK && k < t->width; k++)
        out[k] = v[k];
    g_free(v);
    return st;
}

static HrStatus
vk_scale_cols(void *p, HrOpsBuffer *t, const float *s, HrError *err)
{
    return col_op(p, t, s, NULL, err);
}

static const HrOps vk_ops = {
    .api_version = HR_OPS_API_VERSION,
    .name = "vulkan",
    .open = vk_open,
    .close = vk_close,
    .weight = vk_weight,
    .weights_done = vk_weights_done,
    .activation = vk_activation,
    .kv_cache = vk_kv_cache,
    .kv_ring = vk_kv_ring,
    .compile = vk_compile,
    .run = vk_run,
    .memory = vk_memory,
    .last_argmax = vk_last_argmax,
    .candidates = vk_candidates,
    .read_logits = vk_read_logits,
    .set_weight = vk_set_weight,
    .write = vk_write,
    .read = vk_read,
    .tensor = vk_tensor,
    .tensor_write = vk_tensor_write,
    .copy_rows = vk_copy_rows,
    .sq_diff = vk_sq_diff,
    .sq_total = vk_sq_total,
    .scale_quant = vk_scale_quant,
    .clip_search = vk_clip_search,
    .col_abs_sum = vk_col_abs_sum,
    .scale_cols = vk_scale_cols,
};

/* ---- the whole-model interface (llama.c over vk_ops) ------------------------------------- */

static HrStatus
vk_create(const HrModelConfig *cfg, const HrTensorSet *ts, const HrBackendOptions *opt, HrProgressFunc progress,
          void *user, void **ctx_out, HrError *err)
{
    return hr_llama_create(&vk_ops, cfg, ts, opt, progress, user, ctx_out, err);
}

static HrStatus
vk_read_bandwidth(void *p, double *bytes_per_s, HrError *err)
{
    return hr_vk_read_bandwidth(((VkCtx *)hr_llama_device(p))->vk, bytes_per_s, err);
}

uint32_t
hr_vulkan_backend_validation_messages(void *p)
{
    VkCtx *c = p ? hr_llama_device(p) : NULL;
    return c && c->vk ? hr_vk_context_validation_messages(c->vk) : 0;
}

int
hr_vulkan_backend_last_argmax(void *p)
{
    return hr_llama_last_argmax(p);
}

const char *
hr_vulkan_backend_device_report(void *p)
{
    return hr_vk_context_selection_report(((VkCtx *)hr_llama_device(p))->vk);
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
    .destroy = hr_llama_destroy,
    .forward = hr_llama_forward,
    .get_logits = hr_llama_get_logits,
    .memory = hr_llama_memory,
    .kv_rewind = hr_llama_kv_rewind,
    .read_bandwidth = vk_read_bandwidth,
    .set_sample = hr_llama_set_sample,
    .candidates = hr_llama_candidates,
    .takes_ggml = hr_vulkan_backend_takes_ggml,
    .ops = &vk_ops,
};
