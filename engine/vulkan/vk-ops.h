/* vk-ops.h — host entry points for individual Vulkan kernels (used by the
 * backend and by the kernel tests against the CPU reference). */
#pragma once

#include "vk-context.h"

/* c[i] = a[i] + b[i] for i < n, on the device (shaders/vec_add.comp). */
HrStatus hr_vk_vec_add(HrVkContext *ctx, const float *a, const float *b, float *c, uint32_t n,
                       HrError *err);
