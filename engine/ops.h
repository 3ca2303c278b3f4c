/* ops.h — the op-level backend interface: what a compute device does, at
 * the grain of ops on tensors that live on it.
 *
 * The model itself — which tensors a Llama/Mistral/Qwen2/Qwen3/Gemma 3 checkpoint has,
 * what order the ops of a block run in, how a prompt is cut into chunks and
 * which rows of logits come back — is written once, in llama.c, over this
 * table. A backend implements the ops and keeps everything in its own
 * layout: it takes each weight from the checkpoint (repacking as its kernels
 * want), allocates activations and the KV cache, and turns the model's list
 * of nodes into something it runs per step (the CPU interprets the list; the
 * Vulkan backend records one command buffer per list and replays it).
 *
 * Shapes: an activation is FP32 [max_tokens, width] (row t holds token t of
 * the step); a KV cache is [context, n_kv_heads * head_dim] per layer in the
 * backend's KV type, or, for a sliding-window layer on a backend with
 * kv_ring, a ring of fewer entries, position p at entry p % ring. Per step
 * the backend is given the tokens, their positions and the first token
 * whose logits are wanted; every op reads them at run time, so one
 * compiled list serves every step.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "backend.h"

#define HR_OPS_API_VERSION 8

/* A weight or an activation/KV buffer, in the backend's own layout. The
 * backend owns them all and frees them in close(). */
typedef struct HrOpsWeight HrOpsWeight;
typedef struct HrOpsBuffer HrOpsBuffer;

typedef enum {
    HR_W_EMBED,     /* [vocab, dim] table rows gathered by token (model.embed_tokens.weight) */
    HR_W_LM_HEAD,   /* [vocab, dim] the output projection (lm_head.weight, or the embedding when tied) */
    HR_W_LINEAR,    /* [rows, cols] a linear layer: `name` is its prefix (AWQ qweight/qzeros/scales,
                       or `name`.weight dense or GGUF blocks) */
    HR_W_VECTOR,    /* FP32 [rows] given by the model (norm weights, biases); never read from ts */
} HrWeightRole;

/* One weight of the model, as the model names it. */
typedef struct {
    HrWeightRole role;
    int layer;                  /* -1: outside the layers */
    char name[128];
    int64_t rows, cols;         /* VECTOR: rows = its length, cols = 1 */
    bool tied;                  /* LM_HEAD: the embedding's own tensor (name is the embedding's) */
    bool stack;                 /* LINEAR: the model runs it in one LINEAR node with the specs before it
                                   (q|k|v, gate|up); a backend may store them as one matrix */
} HrWeightSpec;

typedef enum {
    HR_OP_EMBED,      /* dst[t] = row tokens[t] of w[0], times scale unless it is 0 (Gemma) */
    HR_OP_RMSNORM,    /* dst[t] = src[t] / rms(src[t]) * w[0] (FP32 vector); logit_rows: only
                         t >= logit_first (the final norm); residual: dst += instead of = (Gemma's
                         norms after attention and MLP) */
    HR_OP_LINEAR,     /* n_w matrices over src: dst[t, out_offset_i + r] = w_i[r] . src[t] + bias;
                         outputs of w[0..n_w) side by side (out_offset_i = sum of the earlier
                         rows); bias: FP32, the outputs' whole length, or NULL;
                         residual: dst += instead of =; gate (n_w = 2): dst = act(w0 x) * (w1 x),
                         act silu or, by the node's act, gelu_pytorch_tanh (Gemma) */
    HR_OP_ROPE_KV,    /* src [T, q | k | v] (q_dim + 2 kv_dim): RoPE on q and k at positions
                         pos + t; q -> dst [T, q_dim]; k, v -> the caches at entry pos + t
                         ((pos + t) % ring where the node's ring > 0). n_w = 2
                         (Qwen3): first every q head = rmsnorm(head) * w[0] and every k head =
                         rmsnorm(head) * w[1] (FP32 vectors [head_dim], eps norm_eps); local_rope:
                         the base rope_local_theta, unscaled (Gemma's sliding-window layers) */
    HR_OP_ATTENTION,  /* dst[t] = causal attention of src[t] (q) over the caches at positions
                         [max(0, p - window + 1), p] (window 0: [0, p]), p = pos + t, position j
                         at entry j % ring where the node's ring > 0 (then ring > window), GQA head
                         h -> kv head h / (n_heads / n_kv_heads); scores scaled by the node's scale, or
                         1 / sqrt(head_dim) where it is 0 */
    HR_OP_LOGITS,     /* the step's logits rows: w[0] (LM_HEAD) . src[t] for t >= logit_first */
} HrOpKind;

typedef struct {
    HrOpKind op;
    int layer;                  /* the block it belongs to (-1: none), for messages */
    HrOpsBuffer *src, *dst;
    HrOpsWeight *w[3];          /* LINEAR: w[0..n_w); others: w[0] */
    int n_w;
    HrOpsWeight *bias;          /* LINEAR */
    HrOpsBuffer *k_cache, *v_cache;
    bool residual, gate, logit_rows;
    HrActivation act;           /* LINEAR with gate */
    bool local_rope;            /* ROPE_KV */
    int window;                 /* ATTENTION: the layer's window in positions, 0: none */
    int ring;                   /* ROPE_KV, ATTENTION: the caches' entries when they are a ring (kv_ring), 0: the
                                   caches hold every position at its own entry */
    float scale;                /* EMBED: the rows' factor, ATTENTION: the scores' (Gemma); 0: none / the usual */
    float softcap;              /* ATTENTION: scores, LOGITS: logits -> softcap * tanh(x / softcap) where > 0
                                   (Gemma 2) */
} HrNode;

/* What one step computes: tokens [n] at positions pos..pos+n-1; the logits
 * of tokens logit_first..n-1 go to logits[(t - logit_first) * vocab]
 * (logit_first == n: none). sample (only with the backend's candidates op;
 * n = 1, logit_first = 0, logits = NULL): the step also does the draw's
 * device part (sampler.h), and its logits stay on the device for
 * read_logits. */
typedef struct {
    const int32_t *tokens;
    int n, pos, logit_first;
    float *logits;
    const HrSampleSpec *sample;
} HrStep;

/* What a device can do for the model, decided in open(). */
typedef struct {
    int max_tokens;             /* tokens per step (the prefill chunk) */
    int max_logit_rows;         /* logits rows one step may return (<= max_tokens) */
    bool draws;                 /* one-token steps take sample specs (candidates, read_logits) */
} HrOpsLimits;

/* Whether rows [row0, row0 + n) lie in a tensor of `rows` rows (the
 * tensor ops' bounds, every backend's). */
static inline bool
hr_ops_rows_in(int64_t rows, int64_t row0, int64_t n)
{
    return rows > 0 && row0 >= 0 && n >= 0 && row0 + n <= rows;
}

typedef struct HrOps {
    uint32_t api_version;       /* HR_OPS_API_VERSION */
    const char *name;

    /* A device for this model: weights is every weight the model will take
     * (for sizing before anything is allocated); limits out. */
    HrStatus (*open)(const HrModelConfig *cfg, const HrBackendOptions *opt, const HrTensorSet *ts,
                     const HrWeightSpec *weights, int n_weights, void **dev_out, HrOpsLimits *limits,
                     HrError *err);
    void (*close)(void *dev);

    /* Take one weight (data: the FP32 values of a VECTOR; tied_to: the
     * embedding, for a tied LM_HEAD). */
    HrStatus (*weight)(void *dev, const HrTensorSet *ts, const HrWeightSpec *spec, const float *data,
                       HrOpsWeight *tied_to, HrOpsWeight **out, HrError *err);
    /* All weights taken: finish uploads, free loading scratch. */
    HrStatus (*weights_done)(void *dev, HrError *err);

    /* An FP32 activation [max_tokens, width]. */
    HrStatus (*activation)(void *dev, int64_t width, HrOpsBuffer **out, HrError *err);
    /* One layer's K and V caches. */
    HrStatus (*kv_cache)(void *dev, HrOpsBuffer **k_out, HrOpsBuffer **v_out, HrError *err);

    /* A node list made runnable for steps of up to max_tokens tokens. */
    HrStatus (*compile)(void *dev, const HrNode *nodes, int n_nodes, int max_tokens, void **prog_out,
                        HrError *err);
    HrStatus (*run)(void *dev, void *prog, const HrStep *step, HrError *err);

    /* Sizes and load times (weight, KV and scratch bytes, decode bytes,
     * location, upload time); the model fills in the rest. */
    void (*memory)(void *dev, HrMemoryReport *out);
    /* Optional: the greedy token of the last one-token step, computed on the
     * device, or -1. */
    int (*last_argmax)(void *dev);
    /* Optional, both or neither, used where open() set limits->draws: the
     * candidates of the last step run with a sample spec, and that step's
     * logits row (penalised) copied to out. */
    HrStatus (*candidates)(void *dev, HrCandidates *out, HrError *err);
    HrStatus (*read_logits)(void *dev, float *out, HrError *err);

    /* Optional, all three or none: what the quantizer's block forward needs
     * (quantize/awq-device.c runs a layer's attention and MLP here, with
     * the weights it searches). set_weight: new values for a taken LINEAR
     * (taken from an F32 tensor) or VECTOR weight, FP32 in the shape it was
     * taken with; write / read: rows [0, n) of an activation from / to the
     * host. */
    HrStatus (*set_weight)(void *dev, HrOpsWeight *w, const float *data, HrError *err);
    HrStatus (*write)(void *dev, HrOpsBuffer *b, const float *data, int n, HrError *err);
    HrStatus (*read)(void *dev, HrOpsBuffer *b, float *data, int n, HrError *err);

    /* Optional, all five or none (with the three above): what the quantizer
     * keeps on the device across steps, so that a block forward's inputs and
     * outputs never cross to the host (its calibration inputs, the block's
     * reference output). tensor: FP32 [rows, width], zeroed, with a double
     * per row for sq_diff; tensor_write: its rows [row0, row0 + n) from the
     * host; copy_rows: rows [0, n) of activation a to (to_tensor) or from
     * the tensor's rows [row0, row0 + n), of equal widths; sq_diff: for each
     * row r < n of a, the sum over its columns of (a[r] - t[row0 + r])^2 into
     * the tensor's row value row0 + r; sq_total: those row values summed in
     * row order. */
    HrStatus (*tensor)(void *dev, int64_t rows, int64_t width, HrOpsBuffer **out, HrError *err);
    HrStatus (*tensor_write)(void *dev, HrOpsBuffer *t, int64_t row0, const float *data, int64_t n, HrError *err);
    HrStatus (*copy_rows)(void *dev, HrOpsBuffer *a, HrOpsBuffer *t, int64_t row0, int n, bool to_tensor,
                          HrError *err);
    HrStatus (*sq_diff)(void *dev, HrOpsBuffer *a, HrOpsBuffer *t, int64_t row0, int n, HrError *err);
    HrStatus (*sq_total)(void *dev, HrOpsBuffer *t, double *out, HrError *err);

    /* Optional (with the tensor ops): an AWQ candidate made where it runs,
     * so the search's weights never cross to the device again. w (a LINEAR
     * taken from an F32 tensor, as set_weight's) = Q(t diag(s)) diag(s)^-1,
     * minus t when delta, for t a tensor of w's shape holding the FP32
     * weights, s [w's cols] from the host and Q the round-to-nearest fake
     * quantization in groups of `group` columns at `bits` bits
     * (cpu-awq.h's hr_awq_fake_quant_row, the same IEEE operations). */
    HrStatus (*scale_quant)(void *dev, HrOpsWeight *w, HrOpsBuffer *t, const float *s, int group, int bits,
                            bool delta, HrError *err);

    /* Optional (with the tensor ops): the AWQ clip search of one linear
     * where it runs (cpu-awq.h's hr_awq_clip_search defines it): w a tensor
     * [N, K] of its FP32 weights, x a tensor [., K] of inputs of which
     * rows 0, step, ..., (nt - 1) step are used, groups of
     * `group` (at most 256) along K, `steps` limits m0 (1 - s / grid); the
     * limit of the least error per (row, group) to lim [N * K / group] on the
     * host. The sums may be taken in another order or precision than the
     * reference's (CUDA: FP32), so a near tie may go the other way. */
    HrStatus (*clip_search)(void *dev, HrOpsBuffer *w, HrOpsBuffer *x, int nt, int step, int group, int bits,
                            int steps, int grid, float *lim, HrError *err);

    /* Optional, both or neither (with the tensor ops): what the search does
     * to the inputs it keeps on the device. col_abs_sum: out[k] = the sum
     * over the tensor's rows, in order, of |t[r, k]| (each column's sum in
     * double on the CPU and CUDA, FP32 on Vulkan); scale_cols: t[r, k] /=
     * s[k] for every row, s [width] from the host (the fold). */
    HrStatus (*col_abs_sum)(void *dev, HrOpsBuffer *t, double *out, HrError *err);
    HrStatus (*scale_cols)(void *dev, HrOpsBuffer *t, const float *s, HrError *err);

    /* Optional (NULL: every layer gets kv_cache's; last, so that tables filled in order stay valid): one
     * sliding-window layer's K and V caches as rings of `entries` positions (fewer than the context); the
     * backend then honours the nodes' ring (ROPE_KV, ATTENTION). */
    HrStatus (*kv_ring)(void *dev, int entries, HrOpsBuffer **k_out, HrOpsBuffer **v_out, HrError *err);
} HrOps;
