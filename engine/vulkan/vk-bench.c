/* vk-bench.c — device measurements for hearth-cli bench (vk-bench.h). */
#include "vk-bench.h"

#include <math.h>
#include <string.h>

#include <glib.h>

#include "hr-half.h"

static const uint32_t read_bw_spv[] =
#include "read_bw.spv.h"
    ;
static const uint32_t fma_peak_spv[] =
#include "fma_peak.spv.h"
    ;

/* ---- timing ---------------------------------------------------------------------- */

struct HrVkTimer {
    HrVkContext *ctx;
    VkCommandBuffer cb;
    VkQueryPool qp;       /* VK_NULL_HANDLE: host timing */
};

void
hr_vk_timer_free(HrVkTimer *t)
{
    if (!t)
        return;
    VkDevice dev = hr_vk_context_device(t->ctx);
    if (t->cb)
        vkFreeCommandBuffers(dev, hr_vk_context_command_pool(t->ctx), 1, &t->cb);
    if (t->qp)
        vkDestroyQueryPool(dev, t->qp, NULL);
    g_free(t);
}

HrStatus
hr_vk_timer_new(HrVkContext *ctx, HrVkTimer **out, VkCommandBuffer *cb, HrError *err)
{
    *out = NULL;
    VkDevice dev = hr_vk_context_device(ctx);
    HrVkTimer *t = g_new0(HrVkTimer, 1);
    t->ctx = ctx;
    HrStatus st = hr_vk_context_command_buffers(ctx, 1, &t->cb, err);
    if (st != HR_OK) {
        t->cb = VK_NULL_HANDLE;
        hr_vk_timer_free(t);
        return st;
    }
    const HrVkCaps *caps = hr_vk_context_caps(ctx);
    if (caps->timestamp_bits > 0 && caps->timestamp_period > 0) {
        VkQueryPoolCreateInfo qi = {
            .sType = VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO,
            .queryType = VK_QUERY_TYPE_TIMESTAMP,
            .queryCount = 2,
        };
        if (vkCreateQueryPool(dev, &qi, NULL, &t->qp) != VK_SUCCESS)
            t->qp = VK_NULL_HANDLE;   /* host timing then */
    }
    st = hr_vk_begin(t->cb, 0, err);
    if (st != HR_OK) {
        hr_vk_timer_free(t);
        return st;
    }
    if (t->qp)
        vkCmdResetQueryPool(t->cb, t->qp, 0, 2);
    hr_vk_record_barrier(t->cb);
    if (t->qp)
        vkCmdWriteTimestamp(t->cb, VK_PIPELINE_STAGE_TOP_OF_PIPE_BIT, t->qp, 0);
    *cb = t->cb;
    *out = t;
    return HR_OK;
}

HrStatus
hr_vk_timer_end(HrVkTimer *t, HrError *err)
{
    if (t->qp)
        vkCmdWriteTimestamp(t->cb, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, t->qp, 1);
    hr_vk_record_host_barrier(t->cb);
    VkResult r = vkEndCommandBuffer(t->cb);
    return r == VK_SUCCESS ? HR_OK : hr_vk_context_vk_fail(err, r, "vkEndCommandBuffer");
}

HrStatus
hr_vk_timer_run(HrVkTimer *t, double *seconds, HrError *err)
{
    const gint64 t0 = g_get_monotonic_time();
    HrStatus st = hr_vk_submit_wait(t->ctx, t->cb, err);
    const gint64 t1 = g_get_monotonic_time();
    if (st != HR_OK)
        return st;
    *seconds = (double)(t1 - t0) / 1e6;
    if (!t->qp)
        return HR_OK;
    uint64_t ts[2] = { 0, 0 };
    VkResult r = vkGetQueryPoolResults(hr_vk_context_device(t->ctx), t->qp, 0, 2, sizeof ts, ts, sizeof ts[0],
                                       VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT);
    if (r != VK_SUCCESS)
        return hr_vk_context_vk_fail(err, r, "vkGetQueryPoolResults");
    const HrVkCaps *caps = hr_vk_context_caps(t->ctx);
    const uint64_t mask = caps->timestamp_bits >= 64 ? ~(uint64_t)0 : ((uint64_t)1 << caps->timestamp_bits) - 1;
    *seconds = (double)((ts[1] - ts[0]) & mask) * (double)caps->timestamp_period * 1e-9;
    return HR_OK;
}

bool
hr_vk_timer_gpu(const HrVkTimer *t)
{
    return t->qp != VK_NULL_HANDLE;
}

/* ---- helpers ---------------------------------------------------------------------- */

static void
bind_set(HrVkContext *ctx, HrVkPipeline *pipe, HrVkBuffer *const *bufs)
{
    VkDescriptorBufferInfo infos[4];
    VkWriteDescriptorSet writes[4];
    g_assert(pipe->n_bindings <= 4);
    for (uint32_t i = 0; i < pipe->n_bindings; i++) {
        infos[i] = (VkDescriptorBufferInfo){ .buffer = bufs[i]->buffer, .offset = 0, .range = VK_WHOLE_SIZE };
        writes[i] = (VkWriteDescriptorSet){
            .sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET,
            .dstSet = pipe->set,
            .dstBinding = i,
            .descriptorCount = 1,
            .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
            .pBufferInfo = &infos[i],
        };
    }
    vkUpdateDescriptorSets(hr_vk_context_device(ctx), pipe->n_bindings, writes, 0, NULL);
}

static void
record_pipe(VkCommandBuffer cb, const HrVkPipeline *pipe, const void *push, uint32_t groups)
{
    vkCmdBindPipeline(cb, VK_PIPELINE_BIND_POINT_COMPUTE, pipe->pipeline);
    vkCmdBindDescriptorSets(cb, VK_PIPELINE_BIND_POINT_COMPUTE, pipe->layout, 0, 1, &pipe->set, 0, NULL);
    vkCmdPushConstants(cb, pipe->layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, pipe->push_size, push);
    vkCmdDispatch(cb, groups, 1, 1);
}

static uint32_t
wg_size(const HrVkCaps *caps)
{
    uint32_t lim = caps->max_workgroup_invocations ? caps->max_workgroup_invocations : 64;
    uint32_t wg = 1;
    while (wg * 2 <= MIN(256u, lim))
        wg *= 2;
    return wg;
}

/* Records `n` dispatches of pipe (barriers between) into a fresh timer and
 * runs it once: seconds in *s. */
static HrStatus
time_pipe(HrVkContext *ctx, const HrVkPipeline *pipe, const void *push, uint32_t groups, uint32_t n, double *s,
          HrError *err)
{
    HrVkTimer *t = NULL;
    VkCommandBuffer cb;
    HrStatus st = hr_vk_timer_new(ctx, &t, &cb, err);
    if (st != HR_OK)
        return st;
    for (uint32_t i = 0; i < n; i++) {
        if (i > 0)
            hr_vk_record_barrier(cb);
        record_pipe(cb, pipe, push, groups);
    }
    st = hr_vk_timer_end(t, err);
    if (st == HR_OK)
        st = hr_vk_timer_run(t, s, err);
    hr_vk_timer_free(t);
    return st;
}

/* ---- read bandwidth --------------------------------------------------------------- */

enum { BW_UNROLL = 4 };

HrStatus
hr_vk_read_bandwidth(HrVkContext *ctx, double *bytes_per_s, HrError *err)
{
    *bytes_per_s = 0.0;
    const HrVkCaps *caps = hr_vk_context_caps(ctx);
    bool from_budget;
    uint64_t bytes = (uint64_t)512 << 20;
    bytes = MIN(bytes, caps->max_storage_buffer_range);
    bytes = MIN(bytes, hr_vk_context_memory_available(ctx, &from_budget) / 2);
    bytes &= ~(uint64_t)((1 << 20) - 1);
    if (bytes < ((uint64_t)16 << 20))
        return hr_error_set(err, HR_ERR_NOMEM, "Vulkan read bandwidth: only %.1f MiB could be spared for the "
                            "probe buffer (16 MiB at least, or it measures the cache)", (double)bytes / 1048576.0);
    const uint32_t wg = wg_size(caps);
    const uint32_t n = (uint32_t)(bytes / 16);
    const uint32_t span = wg * BW_UNROLL;
    const bool cpu = caps->type == VK_PHYSICAL_DEVICE_TYPE_CPU;
    const uint32_t groups = MIN((n + span - 1) / span, cpu ? 64u : 8192u);
    HrVkBuffer src = { 0 }, dst = { 0 };
    HrVkPipeline pipe = { 0 };
    HrStatus st = hr_vk_buffer_new_device(ctx, bytes, &src, err);
    if (st == HR_OK)
        st = hr_vk_buffer_new_device(ctx, (VkDeviceSize)groups * 4, &dst, err);
    if (st == HR_OK)
        st = hr_vk_pipeline_new(ctx, read_bw_spv, sizeof read_bw_spv, 2, 4, &wg, 1, &pipe, err);
    if (st == HR_OK) {
        /* Defined contents, and the pages touched before any pass is timed. */
        HrVkTimer *t = NULL;
        VkCommandBuffer cb;
        double s;
        st = hr_vk_timer_new(ctx, &t, &cb, err);
        if (st == HR_OK) {
            vkCmdFillBuffer(cb, src.buffer, 0, VK_WHOLE_SIZE, 0x9e3779b9u);
            st = hr_vk_timer_end(t, err);
        }
        if (st == HR_OK)
            st = hr_vk_timer_run(t, &s, err);
        hr_vk_timer_free(t);
    }
    if (st == HR_OK) {
        HrVkBuffer *bufs[2] = { &src, &dst };
        bind_set(ctx, &pipe, bufs);
        /* One pass to warm up and size the runs (>= 20 ms each), then the
         * best of 5. */
        double s = 0.0, best = 0.0;
        st = time_pipe(ctx, &pipe, &n, groups, 1, &s, err);
        uint32_t passes = s > 0 ? (uint32_t)MIN(64.0, MAX(1.0, ceil(0.02 / s))) : 8;
        for (int r = 0; st == HR_OK && r < 5; r++) {
            st = time_pipe(ctx, &pipe, &n, groups, passes, &s, err);
            if (st == HR_OK && s > 0)
                best = MAX(best, (double)bytes * passes / s);
        }
        if (st == HR_OK && !(best > 0 && isfinite(best)))
            st = hr_error_set(err, HR_ERR_DEVICE, "Vulkan read bandwidth: the timer gave no usable time");
        if (st == HR_OK)
            *bytes_per_s = best;
    }
    hr_vk_pipeline_free(ctx, &pipe);
    hr_vk_buffer_free(ctx, &dst);
    hr_vk_buffer_free(ctx, &src);
    return st;
}

/* ---- FP32 FMA peak ---------------------------------------------------------------- */

enum { FMA_CHAINS = 8 };

HrStatus
hr_vk_fma_peak(HrVkContext *ctx, double *flops_per_s, HrError *err)
{
    *flops_per_s = 0.0;
    const HrVkCaps *caps = hr_vk_context_caps(ctx);
    const uint32_t wg = wg_size(caps);
    const uint32_t groups = caps->type == VK_PHYSICAL_DEVICE_TYPE_CPU ? 16 : 8192;
    HrVkBuffer dst = { 0 };
    HrVkPipeline pipe = { 0 };
    HrStatus st = hr_vk_buffer_new_device(ctx, (VkDeviceSize)groups * wg * 4, &dst, err);
    if (st == HR_OK)
        st = hr_vk_pipeline_new(ctx, fma_peak_spv, sizeof fma_peak_spv, 1, 12, &wg, 1, &pipe, err);
    if (st == HR_OK) {
        HrVkBuffer *bufs[1] = { &dst };
        bind_set(ctx, &pipe, bufs);
        struct { uint32_t iters; float a, b; } push = { 64, 0.999f, 1e-3f };
        double s = 0.0, best = 0.0;
        /* Grow the loop until one dispatch lasts >= 20 ms, then best of 3. */
        while (st == HR_OK && (st = time_pipe(ctx, &pipe, &push, groups, 1, &s, err)) == HR_OK && s < 0.02 &&
               push.iters < (1u << 24))
            push.iters *= s > 0 ? (uint32_t)MIN(16.0, MAX(2.0, ceil(0.025 / s))) : 16;
        for (int r = 0; st == HR_OK && r < 3; r++) {
            st = time_pipe(ctx, &pipe, &push, groups, 1, &s, err);
            if (st == HR_OK && s > 0)
                best = MAX(best, (double)groups * wg * push.iters * FMA_CHAINS * 4 * 2 / s);
        }
        if (st == HR_OK && !(best > 0 && isfinite(best)))
            st = hr_error_set(err, HR_ERR_DEVICE, "Vulkan FMA peak: the timer gave no usable time");
        if (st == HR_OK)
            *flops_per_s = best;
    }
    hr_vk_pipeline_free(ctx, &pipe);
    hr_vk_buffer_free(ctx, &dst);
    return st;
}

/* ---- one linear ------------------------------------------------------------------- */

/* The packed device words of a random matrix, w's shape fields set. */
static uint32_t *
random_weights(const HrVkLinearBenchArgs *a, HrVkWeight *w, size_t *n_words, HrError *err)
{
    const size_t N = (size_t)a->rows, K = (size_t)a->cols;
    g_autoptr(GRand) rng = g_rand_new_with_seed((guint32)(N * 2654435761u) ^ (guint32)K);
    if (!a->q4) {
        uint16_t *h = g_try_new(uint16_t, N * K);
        if (!h) {
            hr_error_set(err, HR_ERR_NOMEM, "no host memory for a %zux%zu FP16 matrix", N, K);
            return NULL;
        }
        for (size_t i = 0; i < N * K; i++) {
            const guint32 r = g_rand_int(rng);   /* sign, exponent 11..14 (1/16 .. 1), mantissa */
            h[i] = (uint16_t)(((r >> 20) & 1) << 15 | (11 + ((r >> 10) & 3)) << 10 | (r & 0x3ff));
        }
        uint32_t *words = hr_vk_pack_f16(h, HR_DTYPE_F16, (int)N, (int)K, NULL, w, n_words);
        g_free(h);
        return words;
    }
    /* AutoAWQ tensors: qweight int32 [K, N/8], qzeros int32 [ng, N/8], scales fp16 [ng, N]. */
    const size_t ng = K / (size_t)a->group;
    uint32_t *qw = g_try_new(uint32_t, K * (N / 8));
    uint32_t *qz = g_new(uint32_t, ng * (N / 8));
    uint16_t *sc = g_new(uint16_t, ng * N);
    uint32_t *words = NULL;
    if (!qw) {
        hr_error_set(err, HR_ERR_NOMEM, "no host memory for a %zux%zu 4-bit matrix", N, K);
    } else {
        for (size_t i = 0; i < K * (N / 8); i++)
            qw[i] = g_rand_int(rng);
        for (size_t i = 0; i < ng * (N / 8); i++)
            qz[i] = g_rand_int(rng);
        for (size_t i = 0; i < ng * N; i++)
            sc[i] = hr_f32_to_f16((float)g_rand_double_range(rng, 0.002, 0.022));
        words = hr_vk_pack_awq(qw, qz, sc, (int)N, (int)K, (int)ng, NULL, w, n_words, err);
    }
    g_free(qw);
    g_free(qz);
    g_free(sc);
    return words;
}

/* Copies src into every buffer of dst[n] through one host-visible staging buffer. */
static HrStatus
upload_all(HrVkContext *ctx, const void *src, size_t bytes, HrVkBuffer *const *dst, int n, HrError *err)
{
    HrVkBuffer staging = { 0 };
    HrStatus st = hr_vk_buffer_new_host(ctx, bytes, &staging, err);
    if (st != HR_OK)
        return st;
    memcpy(staging.mapped, src, bytes);
    HrVkTimer *t = NULL;
    VkCommandBuffer cb;
    double s;
    st = hr_vk_timer_new(ctx, &t, &cb, err);
    if (st == HR_OK) {
        VkBufferCopy region = { .srcOffset = 0, .dstOffset = 0, .size = bytes };
        for (int i = 0; i < n; i++)
            vkCmdCopyBuffer(cb, staging.buffer, dst[i]->buffer, 1, &region);
        st = hr_vk_timer_end(t, err);
    }
    if (st == HR_OK)
        st = hr_vk_timer_run(t, &s, err);
    hr_vk_timer_free(t);
    hr_vk_buffer_free(ctx, &staging);
    return st;
}

enum { MAX_COPIES = 1024 };
#define MAX_CALLS ((long)1 << 20)

HrStatus
hr_vk_bench_linear(HrVkKernels *k, HrVkContext *ctx, const HrVkLinearBenchArgs *a, double *sec_per_call,
                   HrVkLinearBenchInfo *info, HrError *err)
{
    memset(info, 0, sizeof *info);
    if (a->rows < 1 || a->cols < 1 || a->tokens < 1 || a->reps < 1 || !(a->min_time >= 0))
        return hr_error_set(err, HR_ERR_INVALID_ARG, "Vulkan bench: rows, cols, tokens and reps must be positive");
    if (a->q4 && (a->rows % 8 != 0 || a->group < 1 || a->cols % a->group != 0 ||
                  (a->group != a->cols && a->group % 8 != 0)))
        return hr_error_set(err, HR_ERR_INVALID_ARG, "Vulkan bench: a 4-bit %dx%d matrix needs rows a multiple of 8 "
                            "and a group that divides the columns and is a multiple of 8 (or all of them); "
                            "group %d", a->rows, a->cols, a->group);
    const HrVkKernelConfig *kc = hr_vk_kernels_config(k);
    info->kernel = a->tokens == 1 ? "gemv" : !kc->gemm ? "gemv-nt" : info->kernel_buf;
    if (kc->gemm_coop)   /* the tile too: HEARTH_VULKAN_COOP_TILE falls back to the plain GEMM where it does not fit */
        g_snprintf(info->kernel_buf, sizeof info->kernel_buf, "%s %ux%u/%ux%u",
                   kc->gemm_coop == 1 ? "gemm-coop" : "gemm-coop-emu", kc->gemm_bm, kc->gemm_bn, kc->coop_wm,
                   kc->coop_wn);
    else
        g_snprintf(info->kernel_buf, sizeof info->kernel_buf, "gemm %ux%u", kc->gemm_bm, kc->gemm_bn);

    HrVkWeight tmpl;
    size_t n_words = 0;
    uint32_t *words = random_weights(a, &tmpl, &n_words, err);
    if (!words)
        return hr_error_prefix(err, "Vulkan bench: ");
    const size_t wbytes = n_words * 4;
    const size_t x_bytes = (size_t)a->tokens * (size_t)a->cols * 4, o_bytes = (size_t)a->tokens * (size_t)a->rows * 4;
    bool from_budget;
    const uint64_t avail = hr_vk_context_memory_available(ctx, &from_budget);
    size_t copies = a->footprint / wbytes;
    copies = MIN(copies, (size_t)(avail / 2 / wbytes));
    copies = MAX((size_t)1, MIN(copies, (size_t)MAX_COPIES));
    info->weight_bytes = wbytes;
    info->copies = (int)copies;

    HrVkWeight *w = g_new0(HrVkWeight, copies);
    HrVkBuffer **wb = g_new0(HrVkBuffer *, copies);
    HrVkDispatch *d = g_new0(HrVkDispatch, copies);
    HrVkBuffer x = { 0 }, out = { 0 }, params = { 0 }, readback = { 0 }, xq = { 0 };
    HrVkDispatch dq = { 0 };   /* HEARTH_VULKAN_GEMV=q8: the row quantized before every call, as in a step */
    const bool q8 = a->tokens == 1 && hr_vk_gemv_q8(k, &tmpl, (uint32_t)a->cols);
    HrVkTimer *t = NULL;
    float *xh = NULL;
    HrStatus st = HR_OK;
    for (size_t c = 0; st == HR_OK && c < copies; c++) {
        w[c] = tmpl;
        wb[c] = &w[c].buf;
        st = hr_vk_buffer_new_device(ctx, wbytes, &w[c].buf, err);
    }
    if (st == HR_OK)
        st = upload_all(ctx, words, wbytes, wb, (int)copies, err);
    g_free(words);
    words = NULL;
    if (st == HR_OK && (st = hr_vk_buffer_new_device(ctx, x_bytes, &x, err)) == HR_OK) {
        xh = g_new(float, (size_t)a->tokens * (size_t)a->cols);
        g_autoptr(GRand) rng = g_rand_new_with_seed(0x2545f491u);
        for (size_t i = 0; i < (size_t)a->tokens * (size_t)a->cols; i++)
            xh[i] = (float)g_rand_double_range(rng, -1.0, 1.0);
        HrVkBuffer *xb[1] = { &x };
        st = upload_all(ctx, xh, x_bytes, xb, 1, err);
    }
    if (st == HR_OK)
        st = hr_vk_buffer_new_device(ctx, o_bytes, &out, err);
    if (st == HR_OK && (st = hr_vk_buffer_new_host(ctx, sizeof(HrVkStepParams), &params, err)) == HR_OK) {
        HrVkStepParams prm = { 0, (uint32_t)a->tokens, 0, (uint32_t)a->tokens };
        memcpy(params.mapped, &prm, sizeof prm);
    }
    if (st == HR_OK && q8)
        st = hr_vk_buffer_new_device(ctx, hr_vk_q8_words((uint32_t)a->cols) * 4, &xq, err);
    if (st == HR_OK && q8)
        st = hr_vk_make_quant_q8(k, &x, 0, (uint32_t)a->cols, &xq, &dq, err);
    for (size_t c = 0; st == HR_OK && c < copies; c++) {
        HrVkGemvArgs ga = { .w = { &w[c] }, .prefill = a->tokens > 1, .x = &x, .out = &out, .params = &params,
                            .x_stride = (uint32_t)a->cols, .o_stride = (uint32_t)a->rows,
                            .max_tokens = (uint32_t)a->tokens, .xq = q8 ? &xq : NULL };
        st = hr_vk_make_gemv(k, &ga, &d[c], err);
    }
    if (st == HR_OK)
        st = hr_vk_kernels_ensure(k, NULL, err);
    if (st == HR_OK && d[0].kernel == HR_VK_K_GEMV_WIDE)
        info->kernel = "gemv-wide";
    if (st == HR_OK && d[0].kernel >= HR_VK_K_GEMV_Q8 && d[0].kernel < HR_VK_K_QUANT_Q8)
        info->kernel = "gemv-q8";   /* quant_q8 + the GEMV per call */

    /* Size the run: one pass over the copies (at least 4 calls), timed. */
    long calls = (long)MAX(copies, (size_t)4);
    double s = 0.0;
    for (int pass = 0; pass < 2 && st == HR_OK; pass++) {
        VkCommandBuffer cb;
        hr_vk_timer_free(t);
        t = NULL;
        st = hr_vk_timer_new(ctx, &t, &cb, err);
        for (long i = 0; st == HR_OK && i < calls; i++) {
            if (i > 0)
                hr_vk_record_barrier(cb);
            if (q8) {
                hr_vk_record(k, cb, &dq);
                hr_vk_record_barrier(cb);
            }
            hr_vk_record(k, cb, &d[(size_t)i % copies]);
        }
        if (st == HR_OK)
            st = hr_vk_timer_end(t, err);
        if (st == HR_OK)
            st = hr_vk_timer_run(t, &s, err);
        if (st == HR_OK && pass == 0) {
            double per = s > 0 ? s / (double)calls : 1e-6;
            calls = (long)MIN((double)MAX_CALLS, MAX((double)calls, ceil(a->min_time / per)));
        }
    }
    info->calls = calls;
    info->gpu_timer = t && hr_vk_timer_gpu(t);
    for (int r = 0; st == HR_OK && r < a->reps; r++) {
        st = hr_vk_timer_run(t, &s, err);
        sec_per_call[r] = s / (double)calls;
    }
    /* The output of the last call: finite. */
    if (st == HR_OK && (st = hr_vk_buffer_new_readback(ctx, o_bytes, &readback, err)) == HR_OK) {
        HrVkTimer *ct = NULL;
        VkCommandBuffer cb;
        st = hr_vk_timer_new(ctx, &ct, &cb, err);
        if (st == HR_OK) {
            VkBufferCopy region = { .srcOffset = 0, .dstOffset = 0, .size = o_bytes };
            vkCmdCopyBuffer(cb, out.buffer, readback.buffer, 1, &region);
            st = hr_vk_timer_end(ct, err);
        }
        if (st == HR_OK)
            st = hr_vk_timer_run(ct, &s, err);
        hr_vk_timer_free(ct);
        const float *o = readback.mapped;
        for (size_t i = 0; st == HR_OK && i < o_bytes / 4; i++)
            if (!isfinite(o[i]))
                st = hr_error_set(err, HR_ERR_DEVICE, "Vulkan bench: the %dx%d linear gave a non-finite output "
                                  "(token %zu, row %zu)", a->rows, a->cols, i / (size_t)a->rows,
                                  i % (size_t)a->rows);
    }
    hr_vk_timer_free(t);
    hr_vk_buffer_free(ctx, &readback);
    hr_vk_buffer_free(ctx, &params);
    hr_vk_buffer_free(ctx, &out);
    hr_vk_buffer_free(ctx, &x);
    hr_vk_buffer_free(ctx, &xq);
    for (size_t c = 0; c < copies; c++)
        hr_vk_buffer_free(ctx, &w[c].buf);
    g_free(xh);
    g_free(words);
    g_free(w);
    g_free(wb);
    g_free(d);
    return st;
}
