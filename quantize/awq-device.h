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

/* Qwen3 (cfg's qk_norm): the layer's q and k norms [head_dim], which every forward below then applies to the
 * q and k heads before RoPE; nothing for the other architectures. Set once per layer, before its forwards. */
HrStatus hr_awq_device_qk_norm(HrAwqDevice *d, const float *qn, const float *kn, HrError *err);

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

/* The groups of the scale search, by the linears it scales: q, k, v (the
 * attention block's loss), gate, up (the MLP's), o_proj alone (v -> o) and
 * down_proj alone (up -> down). */
typedef enum { HR_AWQ_DEV_QKV, HR_AWQ_DEV_GATEUP, HR_AWQ_DEV_O, HR_AWQ_DEV_DOWN } HrAwqDevGroup;

/* Whether the device also makes the candidates (the op table's
 * scale_quant, with the tensor ops): then, after the group's begin above,
 * quant_begin puts the FP weights of its linears (w: 3, 2, 1 or 1 [N, K]
 * matrices, in the order of the group's name) on the device once, and each
 * quant_loss scales them by s [K], fake-quantizes them in groups of
 * `group` at `bits` bits, divides by s there and returns the group's loss
 * as loss() / single_loss() would for those weights. */
bool hr_awq_device_quantizes(const HrAwqDevice *d);
HrStatus hr_awq_device_quant_begin(HrAwqDevice *d, HrAwqDevGroup g, const float *const w[3], HrError *err);
HrStatus hr_awq_device_quant_loss(HrAwqDevice *d, HrAwqDevGroup g, const float *s, int group, int bits,
                                  double *loss, HrError *err);

/* The linears of the layer, for the clip search. */
typedef enum { HR_AWQ_LIN_Q, HR_AWQ_LIN_K, HR_AWQ_LIN_V, HR_AWQ_LIN_O, HR_AWQ_LIN_GATE, HR_AWQ_LIN_UP,
               HR_AWQ_LIN_DOWN } HrAwqLinear;

/* Whether the device runs the clip search (the op table's clip_search,
 * with the tensor ops). clip: the search of linear lin, its weights w
 * [N, K] now, over nt inputs, rows 0, step, 2 step, ... of x [., K], in
 * groups of g (at most 256) at `bits` bits, `steps` limits m0 (1 - s /
 * grid): the chosen limit of each (row, group) into lim [N, K / g]. */
bool hr_awq_device_clips(const HrAwqDevice *d);
HrStatus hr_awq_device_clip(HrAwqDevice *d, HrAwqLinear lin, const float *w, const float *x, int step, int nt, int g,
                            int bits, int steps, int grid, float *lim, HrError *err);

/* Whether the device runs the layer's FP forward too (where it keeps
 * tensors): the outputs to the host here, or kept (below). forward: the layer as inference runs it, with its FP weights w
 * (q, k, v, o, gate, up, down), q|k|v's bias and the two norms, over x
 * [T, D] in samples of seqlen: the inputs of the search's groups h1 = ln1(x)
 * [T, D], a = attention [T, qd], h2 = ln2(x + o(a)) [T, D], act =
 * silu(gate h2) up h2 [T, H], and the next layer's input y [T, D]. */
bool hr_awq_device_forwards(const HrAwqDevice *d);
HrStatus hr_awq_device_forward(HrAwqDevice *d, const float *const w[7], const float *bias, const float *ln1,
                               const float *ln2, const float *x, int T, float *h1, float *a, float *h2, float *act,
                               float *y, HrError *err);

/* The layer's activations kept on the device (the op table's col_abs_sum
 * and scale_cols, with everything above): keep allocates them for T tokens
 * (fails, leaving the device as it was, where they do not fit);
 * forward_kept runs the layer's FP forward from the input kept there (x:
 * the first layer's, from the host; NULL: the last forward's output) into
 * them; then the begins above and clip take x = NULL (the kept input of
 * their group), col_mean gives a kept input's mean |x| per column and fold
 * divides its columns by s. Nothing of T crosses to the host. Where keep
 * fails (the tensors do not fit) the search keeps them on the host. */
typedef enum { HR_AWQ_ACT_H1, HR_AWQ_ACT_A, HR_AWQ_ACT_H2, HR_AWQ_ACT_ACT } HrAwqAct;
bool hr_awq_device_keeps(const HrAwqDevice *d);
HrStatus hr_awq_device_keep(HrAwqDevice *d, int T, HrError *err);
HrStatus hr_awq_device_forward_kept(HrAwqDevice *d, const float *const w[7], const float *bias, const float *ln1,
                                    const float *ln2, const float *x, HrError *err);
HrStatus hr_awq_device_col_mean(HrAwqDevice *d, HrAwqAct which, float *mean, HrError *err);
HrStatus hr_awq_device_fold(HrAwqDevice *d, HrAwqAct which, const float *s, HrError *err);
