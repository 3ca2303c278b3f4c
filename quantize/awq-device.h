/* awq-device.h — the AWQ search's block forward on an ops device
 * (awq-device.c). */
#pragma once

#include <stdbool.h>

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

/* Whether the device keeps a group's inputs and reference output (the op
 * table's tensor ops), so that its forwards' data never crosses to the
 * host. Then, per group: begin with the FP weights (w: q, k, v, o or gate,
 * up, down; bias: q|k|v's) puts x [T, D] and the block's output on the
 * device, and each loss() runs the block with other weights and returns
 * the sum over the T tokens of |output - reference|^2. T stays the first
 * call's. */
bool hr_awq_device_resident(const HrAwqDevice *d);
HrStatus hr_awq_device_begin(HrAwqDevice *d, bool mlp, const float *const w[4], const float *bias, const float *x,
                             int T, HrError *err);
HrStatus hr_awq_device_loss(HrAwqDevice *d, bool mlp, const float *const w[4], const float *bias, double *loss,
                            HrError *err);
/* The single-linear searches (v -> o: o_proj's input [T, qd]; up -> down:
 * down_proj's [T, H]), resident too: begin puts x on the device; each loss
 * returns the sum over the tokens of |x dW^T|^2 for dW [D, K] (W_q - W). */
HrStatus hr_awq_device_single_begin(HrAwqDevice *d, bool down, const float *x, int T, HrError *err);
HrStatus hr_awq_device_single_loss(HrAwqDevice *d, bool down, const float *dw, double *loss, HrError *err);
