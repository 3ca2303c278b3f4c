#include "vk-ops.h"

#include <string.h>

static const uint32_t vec_add_spv[] =
#include "vec_add.spv.h"
    ;

HrStatus
hr_vk_vec_add(HrVkContext *ctx, const float *a, const float *b, float *c, uint32_t n, HrError *err)
{
    if (n == 0)
        return HR_OK;
    const HrVkCaps *caps = hr_vk_context_caps(ctx);
    uint32_t wg = caps->max_workgroup_invocations >= 256 ? 256 : caps->max_workgroup_invocations;
    VkDeviceSize bytes = (VkDeviceSize)n * sizeof(float);

    HrVkBuffer ba, bb, bc;
    HrVkPipeline pipe;
    HrStatus st = hr_vk_buffer_new_host(ctx, bytes, &ba, err);
    if (st != HR_OK)
        return st;
    st = hr_vk_buffer_new_host(ctx, bytes, &bb, err);
    if (st != HR_OK)
        goto free_a;
    st = hr_vk_buffer_new_host(ctx, bytes, &bc, err);
    if (st != HR_OK)
        goto free_b;
    st = hr_vk_pipeline_new(ctx, vec_add_spv, sizeof vec_add_spv, 3, sizeof(uint32_t), &wg, 1, &pipe, err);
    if (st != HR_OK)
        goto free_c;

    memcpy(ba.mapped, a, bytes);
    memcpy(bb.mapped, b, bytes);
    HrVkBuffer *bufs[3] = { &ba, &bb, &bc };
    st = hr_vk_dispatch_sync(ctx, &pipe, bufs, &n, (n + wg - 1) / wg, 1, 1, err);
    if (st == HR_OK)
        memcpy(c, bc.mapped, bytes);

    hr_vk_pipeline_free(ctx, &pipe);
free_c:
    hr_vk_buffer_free(ctx, &bc);
free_b:
    hr_vk_buffer_free(ctx, &bb);
free_a:
    hr_vk_buffer_free(ctx, &ba);
    return st;
}
