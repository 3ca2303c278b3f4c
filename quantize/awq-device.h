/* awq-device.h — the AWQ search's block forward on an ops device
 * (awq-device.c). */
#pragma once

#include "ops.h"

typedef struct HrAwqDevice HrAwqDevice;

/* A device for one layer of cfg's shapes, samples of seqlen tokens; ops
 * must have set_weight, write and read. */
HrStatus hr_awq_device_open(const HrOps *ops, const HrModelConfig *cfg, int seqlen, HrAwqDevice **out,
                            HrError *err);
void hr_awq_device_free(HrAwqDevice *d);
const char *hr_awq_device_name(const HrAwqDevice *d);

/* out[T, D] = o_proj(attention(RoPE(q|k|v of x))) per sample of seqlen
 * tokens, with these FP32 weights (bias: q|k|v's, when the config has one).
 * x [T, D]. */
HrStatus hr_awq_device_attn(HrAwqDevice *d, const float *wq, const float *wk, const float *wv, const float *bias,
                            const float *wo, const float *x, int T, float *out, HrError *err);
/* out[T, D] = down(silu(gate x) * up x), x [T, D]. */
HrStatus hr_awq_device_mlp(HrAwqDevice *d, const float *wg, const float *wu, const float *wd, const float *x, int T,
                           float *out, HrError *err);
