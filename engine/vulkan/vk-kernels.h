/* vk-kernels.h — the Vulkan backend's compute kernels: pipelines, the
 * device weight layouts they read, and dispatch builders.
 *
 * A dispatch (HrVkDispatch) is built once — descriptor set, push constants,
 * group counts — and can be recorded into any number of command buffers;
 * the per-step values (position, token count) are read by every kernel from
 * a small params buffer (HrVkStepParams) the host writes before a submit, so
 * a whole forward step is recorded once and replayed.
 *
 * Device weight layouts (one storage buffer per tensor, so no binding
 * exceeds maxStorageBufferRange):
 *   4-bit (Q4):   words [N, kw] with kw = ceil(K/8): word u of row n holds
 *                 inputs 8u..8u+7, input 8u+i in bits 4i..4i+3 (zero padded);
 *   int8 (Q8):    words [N, kw] with kw = ceil(K/8)*2: input k of a row in
 *                 byte k%4 of word k/4 (two's complement, zero padded);
 *   then, for both, at word soff = N*kw a scale table with one entry per
 *   (row, group), row-major, in one of four formats (HrVkScaleFormat):
 *     ZERO   1 word:  bits 0..15 FP16 scale s, bits 16..19 zero point z
 *                     (AutoAWQ, GGUF Q4_0): w = s*q - s*z
 *     OFF16  1 word:  FP16 scale s, FP16 offset o (GGUF Q4_1): w = s*q + o
 *     F32    1 word:  FP32 scale s (GGUF Q8_0, Q5_0, Q6_K): w = s*q
 *     F32OFF 2 words: FP32 scale s, FP32 offset o (GGUF Q5_1, Q5_K)
 *     K4     5 words per 8 groups: FP16 d | dmin, then 8 bytes of 6-bit
 *            scales sc and 8 of mins m (GGUF Q4_K as the file has them):
 *            s = d*sc, o = -dmin*m, exact in FP32 (11-bit by 6-bit)
 *   The kernels take every format as w = s*q + b and fold b per group:
 *   sum (s q + b) x = s * sum q x + b * sum x. Groups must be a multiple of
 *   8 inputs, or one group per row.
 *   FP16:         words [N, kw] with kw = ceil(K/8)*4 (FP16 pairs, zero padded).
 * Activations are FP32; the KV cache is FP16 [context, n_kv*head_dim] per layer.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "cpu-threads.h"
#include "safetensors.h"
#include "vk-context.h"

typedef struct {
    uint32_t pos, n_tokens, logit_first, seq_len;
    uint32_t draw, n_seen;         /* the draw's device part (shaders/params.glsl) */
    float penalty, inv_t;
} HrVkStepParams;

typedef enum {
    HR_VK_K_EMBED,
    HR_VK_K_RMSNORM,
    HR_VK_K_ROPE_KV,
    HR_VK_K_ATTN,
    HR_VK_K_ATTN_COMBINE,
    HR_VK_K_ARGMAX,
    HR_VK_K_ATTN_PREFILL,  /* attn.comp with attn_qt query tokens per workgroup */
    HR_VK_K_ATTN_TILE,     /* attn_tile.comp: prefill attention in tiles (attn_bq rows) */
    HR_VK_K_SILU_MUL,
    HR_VK_K_PENALIZE,
    HR_VK_K_TOPK,
    HR_VK_K_SQ_DIFF,
    HR_VK_K_SCALE_QUANT,
    HR_VK_K_CLIP_GRAM,
    HR_VK_K_CLIP_SEARCH,
    HR_VK_K_COL_ABS_SUM,
    HR_VK_K_DIV_COLS,
    HR_VK_K_GEMV,          /* + kind*4 + gate*2 + prefill: 12 pipelines */
    HR_VK_K_GEMM = HR_VK_K_GEMV + 12,  /* + kind*2 + gate: 6 pipelines */
    HR_VK_K_GEMV_WIDE = HR_VK_K_GEMM + 6,  /* 4-bit decode in 32-input units, + gate: 2 pipelines */
    HR_VK_K_GEMV_Q8 = HR_VK_K_GEMV_WIDE + 2,  /* decode on int8 activations, + (int8 weights)*2 + gate: 4 */
    HR_VK_K_QUANT_Q8 = HR_VK_K_GEMV_Q8 + 4,   /* the activations for it (quant_q8.comp) */
    HR_VK_K_RMSNORM_Q8,    /* rmsnorm.comp writing them too */
    HR_VK_K_ATTN_COMBINE_Q8,  /* attn_combine.comp writing them too */
    HR_VK_K_HEAD_NORM,     /* head_norm.comp: Qwen3's q/k norms */
    HR_VK_K_COUNT,
} HrVkKernelId;

typedef struct {
    uint32_t wg;            /* workgroup size of every kernel (power of two) */
    uint32_t gemv_rows;     /* output rows per GEMV workgroup */
    uint32_t gemv_nt;       /* tokens per GEMV workgroup in prefill (when !gemm) */
    bool gemm;              /* prefill linears through the tiled GEMM (gemm.comp) */
    uint32_t gemm_bm, gemm_bn, gemm_bk, gemm_tm, gemm_tn;   /* tile, K slice, per-thread block */
    uint32_t gemm_coop;     /* 0: gemm.comp. 1: gemm_coop.comp on VK_NV_cooperative_matrix's matrix units
                               (HEARTH_VULKAN_GEMM=coop; opt-in until measured on a GPU); 2: the same tiles
                               with the fragments' work done by hand (HEARTH_VULKAN_GEMM=coop-emu: lavapipe
                               tests). The tile is gemm_bm x gemm_bn, K slices gemm_bk (gemm_tm/tn unused) */
    uint32_t coop_wm, coop_wn;              /* rows x tokens a subgroup of 32 computes */
    uint32_t coop_fm, coop_fn, coop_fk;     /* fragment shape (the device's: 16x16x16 or 16x8x16) */
    bool coop_prefetch;     /* the next K slice's loads in flight during the multiply-adds (default;
                               HEARTH_VULKAN_COOP_PREFETCH=0 loads each slice just before its use) */
    uint32_t attn_split;    /* keys per attention workgroup (flash-decoding split) */
    uint32_t attn_qt;       /* query tokens per attention workgroup in prefill */
    uint32_t max_hd;        /* largest head_dim the attention kernel takes */
    bool subgroup;          /* subgroup-arithmetic variants */
    bool gemv_wide;         /* 4-bit decode GEMV in 32-input units (16-byte loads) where the shape allows;
                               HEARTH_VULKAN_GEMV=wide (opt-in until measured on a GPU) */
    bool gemv_q8;           /* decode GEMV on int8 activations (quant_q8.comp, then gemv.comp's Q8 build:
                               packed int8 dot products) for 4-bit and int8 weights where the shape allows,
                               as the CPU's decode;
                               HEARTH_VULKAN_GEMV=q8 on devices with shaderIntegerDotProduct (opt-in until
                               measured on a GPU) */
    bool fp16_math;         /* decode GEMV forms its products in FP16 (shaderFloat16 devices,
                               HEARTH_VULKAN_FP16_MATH=1; off by default: decode is bound by
                               memory, not arithmetic, and FP32 keeps the CPU's accuracy) */
    uint32_t attn_bq;       /* prefill attention in tiles (attn_tile.comp): rows (query token x head
                               of a KV group) per workgroup; 0: attn.comp's attn_qt tokens per head
                               (HEARTH_VULKAN_ATTN=split, or no room) */
} HrVkKernelConfig;

typedef struct HrVkKernels HrVkKernels;

/* How a weight matrix is stored (the kernels' QUANT specialization constant). */
typedef enum {
    HR_VK_W_F16 = 0,
    HR_VK_W_Q4 = 1,
    HR_VK_W_Q8 = 2,
} HrVkWeightKind;

/* The scale table's format (the kernels' push constant sfmt). */
typedef enum {
    HR_VK_S_ZERO = 0,
    HR_VK_S_OFF16 = 1,
    HR_VK_S_F32 = 2,
    HR_VK_S_F32OFF = 3,
    HR_VK_S_K4 = 4,        /* GGUF Q4_K as the file holds it: per 8 groups d|dmin (FP16), 8 scale and 8 min bytes */
} HrVkScaleFormat;

typedef struct {
    HrVkBuffer buf;
    HrVkWeightKind kind;
    HrVkScaleFormat sfmt;          /* Q4, Q8 */
    uint32_t n, k, kw, ng, gsize, soff;
} HrVkWeight;

/* Whether two matrices can share one fused GEMV dispatch: the kernel reads
 * every matrix with the first one's storage type, scale format, input
 * width and group layout (a 4-bit q_proj with groups of 128 beside a k_proj with groups of
 * 64 must not be fused, or k and v come out wrong). */
static inline bool
hr_vk_weights_fusable(const HrVkWeight *a, const HrVkWeight *b)
{
    return a->kind == b->kind && a->k == b->k && a->kw == b->kw &&
           (a->kind == HR_VK_W_F16 || (a->sfmt == b->sfmt && a->ng == b->ng && a->gsize == b->gsize));
}

typedef struct {
    HrVkKernelId kernel;
    VkDescriptorSet set;
    uint32_t push[16];
    uint32_t groups[3];
} HrVkDispatch;

/* Sizes chosen from the device's caps (workgroup and shared-memory limits,
 * subgroup arithmetic, device type); max_hd = the model's head_dim. */
void hr_vk_kernel_config_for(const HrVkCaps *caps, uint32_t max_hd, HrVkKernelConfig *cfg);
/* The kernels of a configuration; their pipelines are made as dispatches
 * need them (hr_vk_kernels_ensure). */
HrStatus hr_vk_kernels_new(HrVkContext *ctx, const HrVkKernelConfig *cfg, HrVkKernels **out,
                           HrError *err);
void hr_vk_kernels_free(HrVkKernels *k);
const HrVkKernelConfig *hr_vk_kernels_config(const HrVkKernels *k);
/* Creates the pipelines of every kernel a dispatch has been made for
 * (hr_vk_make_*) that are not made yet, all at once on pool (NULL: a pool of
 * its own); a dispatch is recorded (hr_vk_record) only after this. hr_vk_run
 * calls it itself. */
HrStatus hr_vk_kernels_ensure(HrVkKernels *k, HrThreadPool *pool, HrError *err);

/* ---- weight repacking (host side, once at load) --------------------------------- */
/* AutoAWQ GEMM tensors (qweight int32 [K, N/8], qzeros int32 [ng, N/8],
 * scales fp16 [ng, N], nibble order 0,2,4,6,1,3,5,7; bytes may be
 * unaligned) -> the 4-bit layout above. Returns g_malloc'd words and fills
 * w's shape fields (not its buffer); NULL with err set when the group size
 * is not supported. */
uint32_t *hr_vk_pack_awq(const void *qweight, const void *qzeros, const void *scales, int N, int K, int ng,
                         HrThreadPool *pool, HrVkWeight *w, size_t *n_words, HrError *err);
/* A dense [N, K] F32/F16/BF16 tensor -> the FP16 layout above. Both run
 * their rows on pool (NULL: on the caller). */
uint32_t *hr_vk_pack_f16(const void *data, HrDType dtype, int N, int K, HrThreadPool *pool, HrVkWeight *w,
                         size_t *n_words);
/* A dense [N, K] F32/F16/BF16 tensor (K % 32 == 0) rounded to the int8
 * layout above per block of 32, as the CPU rounds the lm_head of 4-bit
 * models (hr_q8mat_from: d = max|w| / 127, w ~ d * q, nearest even), with an
 * F32 scale table: half the bytes of FP16 (HEARTH_VULKAN_LM_HEAD=q8). */
uint32_t *hr_vk_pack_q8(const void *data, HrDType dtype, int N, int K, HrThreadPool *pool, HrVkWeight *w,
                        size_t *n_words);
/* Words hr_vk_pack_q8 makes of [N, K]. */
size_t hr_vk_q8_matrix_words(int64_t N, int64_t K);
/* Whether hr_vk_pack_ggml() takes GGUF type `type` (Q4_0, Q4_1, Q4_K ->
 * Q4; Q8_0, Q5_0, Q5_1, Q5_K, Q6_K -> Q8). */
bool hr_vk_ggml_supported(uint32_t type);
/* Words the device copy of an [N, K] matrix of GGUF type `type` takes (0
 * when not supported). */
size_t hr_vk_ggml_words(uint32_t type, int64_t N, int64_t K);
/* N rows of K values in GGUF blocks of `type` (row-major, whole blocks per
 * row, as a GGUF tensor holds them) -> the Q4 or Q8 layout above, without a
 * lossy step: Q4_0 as ZERO (its FP16 scale, zero point 8), Q4_1 as OFF16,
 * Q4_K as K4 (18.5 bytes per 32 values against the file's 18), Q8_0/Q5_0 as F32 per 32, Q6_K as F32 per 16 (d*sc exact),
 * Q5_1/Q5_K as F32OFF per 32 (the values centred as q - 16, as
 * hr_ggml_q8_groups() gives them). NULL with err set for other types. */
uint32_t *hr_vk_pack_ggml(const void *data, uint32_t type, int N, int K, HrVkWeight *w, size_t *n_words,
                          HrError *err);

/* ---- dispatch builders ----------------------------------------------------------- */
/* Buffers are bound whole. max_tokens: the token rows the dispatch covers
 * (groups for the rest exit at once when params.n_tokens is smaller). */
/* emb (any layout above) holds table rows row_begin .. row_begin + emb->n
 * (a slice when the table exceeds one binding); tokens outside are left to
 * other slices. */
/* scale: the rows times it (0: as they are; Gemma: sqrt(dim)). */
HrStatus hr_vk_make_embed(HrVkKernels *k, HrVkBuffer *tokens, const HrVkWeight *emb, uint32_t row_begin, float scale,
                          HrVkBuffer *x, HrVkBuffer *params, uint32_t max_tokens, HrVkDispatch *d, HrError *err);
/* logit_rows: only tokens from params.logit_first; residual: out += (Gemma's norms after attention and
 * MLP). */
HrStatus hr_vk_make_rmsnorm(HrVkKernels *k, HrVkBuffer *x, HrVkBuffer *out, HrVkBuffer *w, HrVkBuffer *params,
                            uint32_t n, float eps, bool logit_rows, bool residual, uint32_t max_tokens,
                            HrVkDispatch *d, HrError *err);

typedef struct {
    const HrVkWeight *w[3];   /* w[1], w[2] NULL: one matrix; gate: w[0] gate, w[1] up */
    bool gate;                /* out = silu(w0 x) * (w1 x) */
    bool gelu;                /* gate: gelu_pytorch_tanh instead of SiLU (Gemma) */
    float softcap;            /* > 0 (Gemma 2's logits): out = softcap * tanh(out / softcap) */
    bool residual;            /* out += */
    bool logit_rows;          /* tokens from params.logit_first (lm_head), token logit_first + i
                                 written to output row i */
    bool prefill;             /* a chunk of tokens: tiled GEMM (or GEMV with several tokens per workgroup) */
    bool no_gemm;             /* prefill through the several-token GEMV even where the GEMM is on
                                 (a few tokens: the GEMM's token tile would be mostly padding) */
    HrVkBuffer *x, *out, *bias, *params;   /* bias may be NULL */
    HrVkBuffer *xq;           /* x quantized by hr_vk_make_quant_q8 (one decode row): the GEMV reads it
                                 instead of x where hr_vk_gemv_q8() says it can; may be NULL */
    uint32_t x_stride, o_stride;
    uint32_t out_row_offset;  /* added to every output row (and bias) index */
    uint32_t max_tokens;
} HrVkGemvArgs;
HrStatus hr_vk_make_gemv(HrVkKernels *k, const HrVkGemvArgs *a, HrVkDispatch *d, HrError *err);
/* Whether a one-token GEMV of w over rows of x_stride floats runs on int8
 * activations (cfg.gemv_q8, a 4-bit or int8 w with K % 32 == 0 and groups of
 * a multiple of 32 inputs, one a row, or (int8) 16, x_stride % 4 == 0): then the caller
 * quantizes the row first (hr_vk_make_quant_q8, into a buffer of
 * hr_vk_q8_words(K) words) and passes it as HrVkGemvArgs.xq. */
bool hr_vk_gemv_q8(const HrVkKernels *k, const HrVkWeight *w, uint32_t x_stride);
size_t hr_vk_q8_words(uint32_t K);
/* x[x0 .. x0 + K) (x0 % 4 == 0, K % 32 == 0) -> xq: int8 per block of 32
 * (d = max|x| / 127, rounded to nearest even) in the 4-bit words' nibble
 * order, then (d, d * sum xq) per block (shaders/quant_q8.comp). */
HrStatus hr_vk_make_quant_q8(HrVkKernels *k, HrVkBuffer *x, uint32_t x0, uint32_t K, HrVkBuffer *xq,
                             HrVkDispatch *d, HrError *err);
/* The same row written by the kernel that makes it, one dispatch fewer (decode, one token): the
 * RMSNorm of n (% 32 == 0) values, and the attention's combine where hd % 32 == 0 (and hd <= the
 * config's max_hd); out is written as by hr_vk_make_rmsnorm / hr_vk_make_attn_combine. */
HrStatus hr_vk_make_rmsnorm_q8(HrVkKernels *k, HrVkBuffer *x, HrVkBuffer *out, HrVkBuffer *w, HrVkBuffer *params,
                               uint32_t n, float eps, HrVkBuffer *xq, HrVkDispatch *d, HrError *err);
HrStatus hr_vk_make_attn_combine_q8(HrVkKernels *k, HrVkBuffer *part, HrVkBuffer *out, HrVkBuffer *params,
                                    uint32_t n_heads, uint32_t hd, uint32_t context, HrVkBuffer *xq,
                                    HrVkDispatch *d, HrError *err);

/* rope_tab: [context, rot/2] (cos, sin) pairs of FP32, rot the leading dimensions of each head that
 * rotate (hd: all); long_at > 0 (LongRoPE): a second set long_off pairs on, for steps whose last
 * position is at or past long_at; ring > 0: kc and vc are rings of that many entries (position p at
 * p % ring). */
HrStatus hr_vk_make_rope_kv(HrVkKernels *k, HrVkBuffer *qkv, HrVkBuffer *qout, HrVkBuffer *kc, HrVkBuffer *vc,
                            HrVkBuffer *rope_tab, HrVkBuffer *params, uint32_t n_heads, uint32_t n_kv,
                            uint32_t hd, uint32_t rot, uint32_t long_at, uint32_t long_off, uint32_t ring,
                            uint32_t max_tokens, HrVkDispatch *d, HrError *err);
/* Qwen3: every q head (wq) and k head (wk, both FP32 [hd]) of qkv RMS-normalised in place. */
HrStatus hr_vk_make_head_norm(HrVkKernels *k, HrVkBuffer *qkv, HrVkBuffer *wq, HrVkBuffer *wk, HrVkBuffer *params,
                              uint32_t n_heads, uint32_t n_kv, uint32_t hd, float eps, uint32_t max_tokens,
                              HrVkDispatch *d, HrError *err);
/* part: [max_tokens, n_heads, n_splits, hd + 2] floats; n_splits =
 * ceil(context / attn_split). scale: the scores' (0: 1 / sqrt(hd)); softcap > 0 (Gemma 2): each score ->
 * softcap * tanh(score / softcap); ring > 0: kc and vc are rings of that many entries (key j at j % ring,
 * ring > window). */
HrStatus hr_vk_make_attn(HrVkKernels *k, HrVkBuffer *q, HrVkBuffer *kc, HrVkBuffer *vc, HrVkBuffer *part,
                         HrVkBuffer *params, uint32_t n_heads, uint32_t n_kv, uint32_t hd, uint32_t context,
                         uint32_t window, uint32_t ring, float scale, float softcap, bool prefill, uint32_t max_tokens,
                         HrVkDispatch *d, HrError *err);
HrStatus hr_vk_make_attn_combine(HrVkKernels *k, HrVkBuffer *part, HrVkBuffer *out, HrVkBuffer *params,
                                 uint32_t n_heads, uint32_t hd, uint32_t context, uint32_t max_tokens,
                                 HrVkDispatch *d, HrError *err);
uint32_t hr_vk_attn_splits(const HrVkKernels *k, uint32_t context);
/* out[0] = argmax of v[offset .. offset+n), out[1] = its value's bits. */
HrStatus hr_vk_make_argmax(HrVkKernels *k, HrVkBuffer *v, uint32_t offset, uint32_t n, HrVkBuffer *out,
                           HrVkDispatch *d, HrError *err);

/* The device part of a draw (sampler.h), run when params.draw is set:
 * penalize.comp applies the repetition penalty to logits[0..vocab) in place
 * for the ids in seen[0..params.n_seen); topk.comp, in passes, finds the
 * HR_VK_TOPK_K best and the softmax's denominator. Pass 1 reads the row
 * with hr_vk_topk_groups(vocab) workgroups; pass p + 1 reads pass p's
 * groups * K pairs; the pass with one workgroup is the last and writes res:
 * ids[K] | value bits[K] | max bits | sum bits | not-finite flag. */
#define HR_VK_TOPK_CH 1024u
#define HR_VK_TOPK_K 64u
#define HR_VK_TOPK_RES_WORDS (2u * HR_VK_TOPK_K + 3u)
uint32_t hr_vk_topk_groups(uint32_t n);
HrStatus hr_vk_make_penalize(HrVkKernels *k, HrVkBuffer *logits, HrVkBuffer *seen, HrVkBuffer *params,
                             uint32_t vocab, HrVkDispatch *d, HrError *err);
/* One topk.comp pass over n inputs (first: the logits row, ids implicit; else
 * vin/iin pairs), writing vout/iout (not last) or res (last); stats holds
 * 3 floats per pass-1 workgroup, n_stats of them. */
HrStatus hr_vk_make_topk(HrVkKernels *k, HrVkBuffer *vin, HrVkBuffer *iin, HrVkBuffer *vout, HrVkBuffer *iout,
                         HrVkBuffer *stats, HrVkBuffer *params, HrVkBuffer *res, uint32_t n, bool first, bool last,
                         uint32_t n_stats, HrVkDispatch *d, HrError *err);

/* Record one dispatch (bind, push, dispatch). */
/* g[t, i] = act(g[t, i]) * u[t, i] for i < width, t < params.n_tokens, act
 * SiLU or (gelu) gelu_pytorch_tanh (the gate|up epilogue of gate and up run
 * as two GEMVs). */
HrStatus hr_vk_make_silu_mul(HrVkKernels *k, HrVkBuffer *g, HrVkBuffer *u, HrVkBuffer *params, uint32_t width,
                             bool gelu, uint32_t max_tokens, HrVkDispatch *d, HrError *err);
/* The AWQ search's loss (sq_diff.comp): sums[row0 + r] = sum over the
 * width columns of (a[r] - t[row0 + r])^2 for r < n. The dispatch is made
 * once per (a, t, sums); hr_vk_set_sq_diff sets n and row0 before a run. */
HrStatus hr_vk_make_sq_diff(HrVkKernels *k, HrVkBuffer *a, HrVkBuffer *t, HrVkBuffer *sums, uint32_t width,
                            HrVkDispatch *d, HrError *err);
void hr_vk_set_sq_diff(HrVkDispatch *d, uint32_t n, uint32_t row0);
/* The AWQ search's candidate (scale_quant.comp): the FP16 weight w (n rows
 * of k) = Q(t diag(s)) diag(s)^-1 (- t when delta), t [n, k] FP32, s [k],
 * in groups of `group` (even, dividing k) at `bits` bits. */
HrStatus hr_vk_make_scale_quant(HrVkKernels *k, HrVkBuffer *t, HrVkBuffer *s, HrVkWeight *w, uint32_t group,
                                uint32_t bits, bool delta, HrVkDispatch *d, HrError *err);
/* Another group, bits or delta for the same (t, s, w); false when w cannot
 * take them. */
bool hr_vk_set_scale_quant(const HrVkKernels *k, HrVkDispatch *d, const HrVkWeight *w, uint32_t group, uint32_t bits,
                           bool delta);
/* The AWQ clip search (clip_gram.comp, then clip_search.comp; cpu-awq.h's
 * hr_awq_clip_search in FP32) of w [rows, K] over x [nt, K] in groups of g
 * (at most 256, dividing K): C scratch of K * g floats, lim [rows, K / g]. */
HrStatus hr_vk_make_clip(HrVkKernels *k, HrVkBuffer *x, HrVkBuffer *c, HrVkBuffer *w, HrVkBuffer *lim, uint32_t K,
                         uint32_t g, uint32_t nt, uint32_t ldx, uint32_t rows, uint32_t bits, uint32_t steps,
                         uint32_t grid, HrVkDispatch d[2], HrError *err);
/* The search's inputs on the device (col_ops.comp): divide false: sum[k] =
 * the sum over the rows of t [rows, width] of |t[r, k]| (FP32); true:
 * t[r, k] /= s[k] (s: the second buffer). */
HrStatus hr_vk_make_col_op(HrVkKernels *k, HrVkBuffer *t, HrVkBuffer *s, uint32_t rows, uint32_t width, bool divide,
                           HrVkDispatch *d, HrError *err);
void hr_vk_record(HrVkKernels *k, VkCommandBuffer cb, const HrVkDispatch *d);
/* Shader writes -> shader reads (and transfers) of the next dispatch. */
void hr_vk_record_barrier(VkCommandBuffer cb);
/* Shader writes -> host reads. */
void hr_vk_record_host_barrier(VkCommandBuffer cb);
/* One-shot: record n dispatches, each after a barrier, submit, wait. */
HrStatus hr_vk_run(HrVkKernels *k, const HrVkDispatch *d, uint32_t n, HrError *err);
