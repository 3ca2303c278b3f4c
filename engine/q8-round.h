/* q8-round.h — 32 values rounded to int8 as the CPU rounds its int8 lm_head
 * (engine/cpu/cpu-kernels.c, hr_q8mat_from) and its decode activations:
 * d = max|x| / 127, q = x * (127 / max|x|) to nearest even, so |q| <= 127
 * and x ~ d * q. The GPU backends round their int8 lm_head with it
 * (HEARTH_VULKAN_LM_HEAD=q8, HEARTH_CUDA_LM_HEAD=q8), so all three hold the
 * same bytes. */
#pragma once

#include <math.h>
#include <stdint.h>

static inline float
hr_q8_round32(const float *x, int8_t *q)
{
    float amax = 0.0f;
    for (int i = 0; i < 32; i++)
        amax = fmaxf(amax, fabsf(x[i]));
    const float id = amax > 0.0f ? 127.0f / amax : 0.0f;
    for (int i = 0; i < 32; i++)
        q[i] = (int8_t)lrintf(x[i] * id);
    return amax / 127.0f;
}
