/* awq.c — the AWQ scale and clip search (DESIGN.md, "The quantizer"), one
 * decoder layer at a time in FP32 on the calibration activations:
 *   1. run the layer in FP32, caching the inputs of each linear group and
 *      the outputs of the attention and MLP blocks, and keep its output as
 *      the next layer's input;
 *   2. per group (ln1 -> q,k,v; v -> o when n_kv_heads == n_heads;
 *      ln2 -> gate,up; up -> down) search s over 20 ratios, loss = MSE of the
 *      block output with W*diag(s) fake-quantized (RTN) and divided by s,
 *      then fold 1/s into the preceding norm/linear and s into the linears;
 *   3. clip search on every linear but q/k (per output channel and group);
 * the modified FP32 tensors go into a name -> float* table that quantize.c
 * quantizes with RTN and writes; quantize.c runs one layer as its writer
 * reaches that layer's tensors and drops them once written.
 *
 * The block is the engine's (engine/llama.c, checked against its logits by
 * tests/test-awq-search.c): Llama, Mistral, Qwen2/3, and Gemma 2/3 (norms of
 * (1 + w), the MLP's input norm pre_feedforward_layernorm, the attention's
 * and MLP's outputs normalised before each residual add, GELU-tanh, the
 * embedding scale, scores scaled by query_pre_attn_scalar and soft-capped,
 * sliding windows with their own RoPE base) and Phi-3 (partial rotary,
 * LongRoPE's factors for a window of seqlen tokens). The groups are
 * AutoAWQ's for each: ln1 -> q,k,v and (pre-MLP norm) -> gate,up scored on
 * o_proj's and down_proj's outputs, before Gemma's output norms.
 *
 * What each ratio costs (the floor is the GEMMs): q,k,v and gate,up rerun
 * their block (its reference output is the FP forward's, computed once);
 * a group of one linear (v -> o, up -> down) needs no block at all: its
 * output error is x (W_q - W)^T, so the loss is
 * sum_n dW_n^T C dW_n / (T * D_out) with C = x^T x computed once per group
 * (K x K), one [N, K] x [K, K] product per ratio instead of [T, K] x [K, N]
 * (20x fewer FLOPs for SmolLM2's down_proj at 128 x 512). On the CPU
 * backend the GEMMs run on the search's own pool (one pool, no second set
 * of threads) and attention, SiLU, RoPE, norms and the losses run there
 * too, vectorised (engine/cpu/cpu-awq.c). Where the CPU has AMX, the larger
 * GEMMs run on its tiles with FP32 split in two BF16 parts
 * (engine/cpu/cpu-amx.h), each block forward's weights split once, and the
 * ratios are scored in difference form (loss_delta): the FP forward
 * records every linear's output, and a ratio's products are x (W_q - W)^T
 * on plain BF16 tiles, a third of the tile products; a single linear takes
 * that form or the Gram form, whichever is cheaper. Without AMX, a CPU with
 * AVX512-BF16 (AMD Zen 4 and later) runs the difference form too, the same
 * tiles multiplied by vdpbf16ps, while the rest stays FP32. HEARTH_AWQ_DIRECT=1
 * keeps the direct form (tests/test-awq-forms.sh compares the two). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "awq-device.h"
#include "awq-private.h"
#include "backend.h"
#include "cpu-amx.h"
#include "cpu-awq.h"
#include "cpu-kernels.h"
#include "hr-half.h"
#include "llama.h"

#define N_GRID 20
#define CLIP_GRID 20
#define CLIP_STEPS 10
#define CLIP_TOKENS 512
/* tokens per Gram chunk (a chunk's products are summed in FP32, then
 * added to C) */
#define GRAM_TOKENS 1024

typedef struct {
    const HrModelConfig *cfg;
    const HrQuantOptions *opt;
    HrThreadPool *pool;          /* everything on the CPU; element-wise work on other backends */
    const HrBackendOps *be;      /* the matmuls: linears (and attention off the CPU) */
    void *dev;                   /* NULL on the CPU: its GEMMs run on pool */
    bool cpu;
    HrStatus st;                 /* the first backend failure, sticky */
    HrError err;
    float *rope_cos, *rope_sin;  /* [L, rot/2], times LongRoPE's attention factor */
    float *rope_cos_local, *rope_sin_local;   /* the sliding-window layers' (rope_local_theta), or NULL */
    int rot;          /* the rotated leading dimensions of each head (hr_model_config_rotary_dim) */
    /* the layer being searched: its attention (engine/llama.c's ATTENTION node) */
    bool local;       /* the sliding-window layers' RoPE base */
    int window;       /* keys u > t - window of query t (0: all) */
    float attn_scale, softcap;
    int L;            /* tokens per sample */
    int chunk;        /* samples per chunk */
    bool trace;       /* HEARTH_AWQ_TRACE set: every ratio's loss to stderr */
    bool dev_forward; /* the layers' FP forward on odev (HEARTH_AWQ_DEVICE_FORWARD=0: on the host) */
    bool dev_keep;    /* and the layer's activations kept there (hr_awq_device_keep): x = NULL below */
    bool amx;         /* the CPU's GEMMs on AMX tiles (engine/cpu/cpu-amx.h) */
    bool bf16;        /* the CPU's BF16 products (AMX, or AVX512-BF16): the difference form */
    /* weights split for AMX once and reused while packing is on (a block
     * forward over every chunk; the Gram loss's C over the ratios) */
    bool packing;
    int n_packed;
    struct {
        const float *w;
        int N, K;
        HrAmxWeights *p;
    } packed[8];
    /* chunk scratch, allocated once: q, att [ct, qd]; k, v [ct, kvd];
     * kt, vt (CPU attention); gt, up [ct, H] */
    float *q, *k, *v, *att, *kt, *vt, *gt, *up;
    /* The difference form (loss_delta; delta: on, AMX only): while
     * recording is set the FP forward records each linear's output where
     * its array exists (q, k, v [T, qd/kvd] before RoPE; gate, up [T, H]
     * before SiLU; NULL where that group is not searched in this form);
     * ref_a [T, qd] and ref_h [T, H] are the inputs of o_proj and
     * down_proj (HrAwqState's a and act). */
    bool delta, recording;
    float *ref_q, *ref_k, *ref_v, *ref_g, *ref_u;
    const float *ref_a, *ref_h;
    /* HEARTH_AWQ_DEVICE=1: the block forwards of the q,k,v and gate,up
     * searches on the chosen backend's device (awq-device.c), the rest on
     * the CPU. Their reference output is computed there too (the device's
     * rounding on both sides of the loss) and stays there with the inputs
     * where the device keeps tensors; else it comes back into dref [T, D].
     * bias_cat: q|k|v's bias. */
    HrAwqDevice *odev;
    float *dref, *bias_cat;
    /* Qwen3: the layer's q and k norms [head_dim] (NULL otherwise) */
    const float *qn, *kn;
} Ctx;

typedef struct {
    float *ln1, *ln2, *wq, *wk, *wv, *wo, *wg, *wu, *wd, *bq, *bk, *bv, *qn, *kn;
    float *post_attn, *post_mlp;   /* Gemma's norms of the attention's and the MLP's outputs, or NULL */
} LW;

/* Smaller products run the FP32 GEMM: splitting x per call, and W per
 * call where it is not packed, cost more than the tiles save (stories260K,
 * 64 to 172 rows and inputs, was 7 % slower on AMX; the clip search's
 * 128-input products on 512+ rows are 2x faster). */
#define AMX_MIN_K 128
#define AMX_MIN_N 256

/* Weights passed to mm() between packing_begin() and packing_end() must not
 * change: each is split for AMX once, on first use. */
static void
packing_begin(Ctx *c)
{
    c->packing = c->amx;
}

static void
packing_end(Ctx *c)
{
    for (int i = 0; i < c->n_packed; i++)
        hr_amx_free(c->packed[i].p);
    c->n_packed = 0;
    c->packing = false;
}

/* out[T, N] = x[T, K] . w[N, K]^T (+ bias) on the backend (the CPU's on
 * the search's pool: on AMX tiles where the CPU has them, FP32 split in two
 * BF16 parts, about 2^-16 relative per product); after a failure every
 * later call does nothing and c->st/c->err tell why. */
static void
mm(Ctx *c, float *out, const float *w, int N, int K, const float *bias, const float *x, int T)
{
    if (c->st != HR_OK)
        return;
    if (c->amx && K >= AMX_MIN_K && N >= AMX_MIN_N) {
        const HrAmxWeights *p = NULL;
        for (int i = 0; c->packing && i < c->n_packed && !p; i++) {
            if (c->packed[i].w == w && c->packed[i].N == N && c->packed[i].K == K)
                p = c->packed[i].p;
        }
        if (!p && c->packing && c->n_packed < (int)G_N_ELEMENTS(c->packed)) {
            p = c->packed[c->n_packed].p = hr_amx_pack(c->pool, w, N, K);
            c->packed[c->n_packed].w = w;
            c->packed[c->n_packed].N = N;
            c->packed[c->n_packed].K = K;
            c->n_packed++;
        }
        if (p)
            hr_amx_matmul_packed(c->pool, out, p, bias, x, T);
        else
            hr_amx_matmul(c->pool, out, w, N, K, bias, x, T);
        return;
    }
    if (c->cpu) {
        HrMat m = { w, HR_DTYPE_F32, N, K };
        hr_matmul(c->pool, out, &m, bias, x, T, NULL);
        return;
    }
    c->st = c->be->gemm(c->dev, out, w, N, K, bias, x, T, &c->err);
}

/* The big float arrays are 64-byte aligned (hr_alloc64; misaligned, the
 * SiLU pass and the GEMMs' write-out took twice as long); g_free() frees
 * them. */
static float *
try_floats(size_t n)
{
    return hr_try_alloc64(n * sizeof(float));
}

static float *
floats(size_t n)
{
    return hr_alloc64(n * sizeof(float));
}

static float *
floats0(size_t n)
{
    return memset(floats(n), 0, n * sizeof(float));
}

/* ---- element-wise work on the pool ------------------------------------------------- */

typedef struct {
    Ctx *c;
    float *v;
    const float *a, *b;
    int n_heads, cols;
    float sign;     /* add_range without b: v += sign * a */
} RowJob;

static void
rope_range(void *arg, int start, int end)
{
    RowJob *J = arg;
    const Ctx *c = J->c;
    const int hd = c->cfg->head_dim, half = c->rot / 2;
    const float *cos_t = c->local ? c->rope_cos_local : c->rope_cos, *sin_t = c->local ? c->rope_sin_local : c->rope_sin;
    for (int t = start; t < end; t++) {
        const float *cs = cos_t + (size_t)(t % c->L) * half, *sn = sin_t + (size_t)(t % c->L) * half;
        float *row = J->v + (size_t)t * J->n_heads * hd;
        for (int h = 0; h < J->n_heads; h++) {
            float *x = row + (size_t)h * hd;
            for (int i = 0; i < half; i++) {
                float x0 = x[i], x1 = x[i + half];
                x[i] = x0 * cs[i] - x1 * sn[i];
                x[i + half] = x1 * cs[i] + x0 * sn[i];
            }
        }
    }
}

static void
rope_rows(Ctx *c, float *v, int T, int n_heads)
{
    RowJob J = { c, v, NULL, NULL, n_heads, 0 };
    hr_pool_run(c->pool, rope_range, &J, T, 16);
}

/* v[t] = rmsnorm(a[t]) * b */
static void
rmsnorm_range(void *arg, int start, int end)
{
    RowJob *J = arg;
    for (int t = start; t < end; t++)
        hr_rmsnorm(J->v + (size_t)t * J->cols, J->a + (size_t)t * J->cols, J->b, J->cols, J->c->cfg->norm_eps);
}

static void
rmsnorm_rows(Ctx *c, float *out, const float *x, const float *w, int T, int D)
{
    RowJob J = { c, out, x, w, 0, D };
    hr_pool_run(c->pool, rmsnorm_range, &J, T, 16);
}

/* v = a + b (b NULL: v += a) */
static void
add_range(void *arg, int start, int end)
{
    RowJob *J = arg;
    for (size_t e = (size_t)start * J->cols; e < (size_t)end * J->cols; e++)
        J->v[e] = J->b ? J->a[e] + J->b[e] : J->v[e] + J->sign * J->a[e];
}

/* out = a + b, or out += a where b is NULL; [T, D] */
static void
add_rows(Ctx *c, float *out, const float *a, const float *b, int T, int D)
{
    RowJob J = { c, out, a, b, 0, D, 1.0f };
    hr_pool_run(c->pool, add_range, &J, T, 16);
}

/* out -= a, [T, D] (a product with -1 is exact: the bits of out - a) */
static void
sub_rows(Ctx *c, float *out, const float *a, int T, int D)
{
    RowJob J = { c, out, a, NULL, 0, D, -1.0f };
    hr_pool_run(c->pool, add_range, &J, T, 16);
}

/* ---- the block forward ------------------------------------------------------------- */

typedef struct {
    float *p;       /* [rows, L] scores in, probabilities out */
    int L, window;
    float scale, softcap;
} SoftmaxArgs;

/* Causal softmax of score rows; row r is query position r % L (the GEMM
 * attention of backends other than the CPU): scores times scale (Gemma 2:
 * then softcap * tanh(score / softcap)), keys u0..t (u0 > t - window). */
static void
softmax_range(void *arg, int start, int end)
{
    SoftmaxArgs *A = arg;
    const int L = A->L;
    for (int r = start; r < end; r++) {
        float *row = A->p + (size_t)r * L;
        const int t = r % L, u0 = A->window > 0 ? MAX(0, t - A->window + 1) : 0;
        float mx = -INFINITY;
        for (int u = u0; u <= t; u++) {
            row[u] *= A->scale;
            if (A->softcap > 0.0f)
                row[u] = A->softcap * tanhf(row[u] / A->softcap);
            mx = fmaxf(mx, row[u]);
        }
        float sum = 0.0f;
        for (int u = u0; u <= t; u++) {
            row[u] = expf(row[u] - mx);
            sum += row[u];
        }
        float inv = 1.0f / sum;
        for (int u = 0; u < L; u++)
            row[u] = u >= u0 && u <= t ? row[u] * inv : 0.0f;
    }
}

typedef struct {
    const Ctx *c;
    const float *q, *k, *v;
    float *a;
} HeadsJob;

/* Items (sample, query head): every query row of the head through the
 * engine's own attention kernel (hr_attend_head: the scale, Gemma 2's soft
 * cap, the sliding window), for the layers the fused kernel does not take. */
static void
attend_range(void *arg, int start, int end)
{
    const HeadsJob *J = arg;
    const HrModelConfig *cfg = J->c->cfg;
    const int L = J->c->L, hd = cfg->head_dim, nh = cfg->n_heads, G = nh / cfg->n_kv_heads;
    const size_t qd = (size_t)nh * hd, kvd = (size_t)cfg->n_kv_heads * hd;
    float *scores = g_new(float, (size_t)L);
    for (int it = start; it < end; it++) {
        const int s = it / nh, h = it % nh;
        const size_t base = (size_t)s * L;
        const float *k = J->k + base * kvd + (size_t)(h / G) * hd, *v = J->v + base * kvd + (size_t)(h / G) * hd;
        for (int t = 0; t < L; t++) {
            const int u0 = J->c->window > 0 ? MAX(0, t - J->c->window + 1) : 0;
            hr_attend_head(J->q + (base + t) * qd + (size_t)h * hd, k, v, false, kvd, 0, hd, u0, t, J->c->attn_scale,
                           J->c->softcap, scores, J->a + (base + t) * qd + (size_t)h * hd);
        }
    }
    g_free(scores);
}

/* Causal attention of n/L samples. On the CPU one fused kernel on the pool
 * (hr_awq_attention). Elsewhere, per sample and KV head, the query heads
 * that share it are stacked into one [G*L, hd] matrix, so the scores and
 * the weighted sum are two backend GEMMs: S = Q K^T, A = softmax(S) V. */
static void
attention(Ctx *c, const float *q, const float *k, const float *v, float *a, int n)
{
    const HrModelConfig *cfg = c->cfg;
    const int L = c->L, hd = cfg->head_dim, nh = cfg->n_heads, nkv = cfg->n_kv_heads, G = nh / nkv;
    const int qd = nh * hd, kvd = nkv * hd;
    if (c->cpu && (c->softcap > 0.0f || (c->window > 0 && c->window < L))) {
        HeadsJob J = { c, q, k, v, a };
        hr_pool_run(c->pool, attend_range, &J, n / L * nh, 1);
        return;
    }
    if (c->cpu) {
        hr_awq_attention(c->pool, q, k, v, a, n / L, L, nh, nkv, hd, c->attn_scale, c->kt, c->vt);
        return;
    }
    float *kh = g_new(float, (size_t)L * hd), *vt = g_new(float, (size_t)hd * L);
    float *qg = g_new(float, (size_t)G * L * hd), *og = g_new(float, (size_t)G * L * hd);
    float *sc = g_new(float, (size_t)G * L * L);
    for (int s = 0; s < n / L; s++) {
        size_t base = (size_t)s * L;
        for (int h = 0; h < nkv; h++) {
            for (int t = 0; t < L; t++) {
                memcpy(kh + (size_t)t * hd, k + (base + t) * kvd + (size_t)h * hd, sizeof(float) * hd);
                for (int i = 0; i < hd; i++)
                    vt[(size_t)i * L + t] = v[(base + t) * kvd + (size_t)h * hd + i];
            }
            for (int j = 0; j < G; j++)
                for (int t = 0; t < L; t++)
                    memcpy(qg + ((size_t)j * L + t) * hd, q + (base + t) * qd + (size_t)(h * G + j) * hd,
                           sizeof(float) * hd);
            mm(c, sc, kh, L, hd, NULL, qg, G * L);
            SoftmaxArgs A = { sc, L, c->window, c->attn_scale, c->softcap };
            hr_pool_run(c->pool, softmax_range, &A, G * L, 1);
            mm(c, og, vt, hd, L, NULL, sc, G * L);
            for (int j = 0; j < G; j++)
                for (int t = 0; t < L; t++)
                    memcpy(a + (base + t) * qd + (size_t)(h * G + j) * hd, og + ((size_t)j * L + t) * hd,
                           sizeof(float) * hd);
        }
    }
    g_free(kh);
    g_free(vt);
    g_free(qg);
    g_free(og);
    g_free(sc);
}

/* Qwen3: every q head and k head of n tokens RMS-normalised with the layer's q_norm / k_norm (before RoPE,
 * as the model runs them); nothing for the other architectures. */
static void
qk_norm_rows(Ctx *c, float *q, float *k, int n)
{
    const HrModelConfig *cfg = c->cfg;
    if (!c->qn)
        return;
    const int hd = cfg->head_dim;
    for (size_t r = 0; r < (size_t)n * cfg->n_heads; r++)
        hr_rmsnorm(q + r * hd, q + r * hd, c->qn, hd, cfg->norm_eps);
    for (size_t r = 0; r < (size_t)n * cfg->n_kv_heads; r++)
        hr_rmsnorm(k + r * hd, k + r * hd, c->kn, hd, cfg->norm_eps);
}

/* out[T, D] = o_proj(attention(q,k,v from h)); a_out[T, qd] (optional) the
 * input of o_proj. T = n_samples * L, processed c->chunk samples at a time. */
static void
attn_block(Ctx *c, const LW *w, const float *h, int T, float *out, float *a_out)
{
    const HrModelConfig *cfg = c->cfg;
    const int D = cfg->dim, hd = cfg->head_dim, qd = cfg->n_heads * hd, kvd = cfg->n_kv_heads * hd;
    const int ct = c->chunk * c->L;
    float *q = c->q, *k = c->k, *v = c->v;
    for (int t0 = 0; t0 < T; t0 += ct) {
        int n = MIN(ct, T - t0);
        const float *x = h + (size_t)t0 * D;
        float *a = a_out ? a_out + (size_t)t0 * qd : c->att;
        mm(c, q, w->wq, qd, D, w->bq, x, n);
        mm(c, k, w->wk, kvd, D, w->bk, x, n);
        mm(c, v, w->wv, kvd, D, w->bv, x, n);
        if (c->recording && c->ref_q) {
            memcpy(c->ref_q + (size_t)t0 * qd, q, sizeof(float) * n * qd);
            memcpy(c->ref_k + (size_t)t0 * kvd, k, sizeof(float) * n * kvd);
            memcpy(c->ref_v + (size_t)t0 * kvd, v, sizeof(float) * n * kvd);
        }
        qk_norm_rows(c, q, k, n);
        rope_rows(c, q, n, cfg->n_heads);
        rope_rows(c, k, n, cfg->n_kv_heads);
        attention(c, q, k, v, a, n);
        mm(c, out + (size_t)t0 * D, w->wo, D, qd, NULL, a, n);
    }
}

typedef struct {
    float *g;
    const float *u;
} GeluJob;

static void
gelu_range(void *arg, int start, int end)
{
    const GeluJob *J = arg;
    for (int i = start; i < end; i++)
        J->g[i] = hr_gelu_tanh(J->g[i]) * J->u[i];
}

/* g = act(g) * u over n items: SiLU (the search's vectorised kernel) or
 * Gemma's GELU-tanh (the engine's). */
static void
act_mul(Ctx *c, float *g, const float *u, size_t n)
{
    if (c->cfg->act == HR_ACT_SILU) {
        hr_awq_silu_mul(c->pool, g, u, n);
        return;
    }
    GeluJob J = { g, u };
    hr_pool_run(c->pool, gelu_range, &J, (int)n, 4096);
}

/* out[T, D] = down(act(gate(h)) * up(h)); act_out[T, H] optional. */
static void
mlp_block(Ctx *c, const LW *w, const float *h, int T, float *out, float *act_out)
{
    const int D = c->cfg->dim, H = c->cfg->hidden_dim, ct = c->chunk * c->L;
    for (int t0 = 0; t0 < T; t0 += ct) {
        int n = MIN(ct, T - t0);
        const float *x = h + (size_t)t0 * D;
        float *gt = act_out ? act_out + (size_t)t0 * H : c->gt;
        mm(c, gt, w->wg, H, D, NULL, x, n);
        mm(c, c->up, w->wu, H, D, NULL, x, n);
        if (c->recording && c->ref_g) {
            memcpy(c->ref_g + (size_t)t0 * H, gt, sizeof(float) * n * H);
            memcpy(c->ref_u + (size_t)t0 * H, c->up, sizeof(float) * n * H);
        }
        act_mul(c, gt, c->up, (size_t)n * H);
        mm(c, out + (size_t)t0 * D, w->wd, D, H, NULL, gt, n);
    }
}

typedef enum { G_QKV, G_VO, G_GATEUP, G_DOWN } GroupKind;

/* q|k|v's bias side by side in c->bias_cat, as the device takes it (NULL
 * without one). */
static const float *
qkv_bias(Ctx *c, const LW *w)
{
    if (!c->cfg->qkv_bias)
        return NULL;
    const int hd = c->cfg->head_dim, qd = c->cfg->n_heads * hd, kvd = c->cfg->n_kv_heads * hd;
    memcpy(c->bias_cat, w->bq, sizeof(float) * qd);
    memcpy(c->bias_cat + qd, w->bk, sizeof(float) * kvd);
    memcpy(c->bias_cat + qd + kvd, w->bv, sizeof(float) * kvd);
    return c->bias_cat;
}

/* The block of a group on the device (awq-device.c); failures are sticky
 * as mm()'s. */
static void
run_group_device(Ctx *c, GroupKind kind, const LW *w, const float *x, int T, float *out)
{
    if (c->st != HR_OK)
        return;
    if (kind == G_QKV) {
        c->st = hr_awq_device_attn(c->odev, w->wq, w->wk, w->wv, qkv_bias(c, w), w->wo, x, T, out, &c->err);
    } else if (kind == G_GATEUP) {
        c->st = hr_awq_device_mlp(c->odev, w->wg, w->wu, w->wd, x, T, out, &c->err);
    }
}

/* The resident form (hr_awq_device_resident): begin puts the group's
 * inputs and its reference output on the device, loss the sum of squared
 * differences of the block with the weights in w now. */
static void
device_resident(Ctx *c, GroupKind kind, const LW *w, const float *x, int T, double *loss)
{
    if (c->st != HR_OK)
        return;
    const bool mlp = kind == G_GATEUP;
    const float *bias = mlp ? NULL : qkv_bias(c, w);
    const float *const wa[4] = { w->wq, w->wk, w->wv, w->wo }, *const wm[4] = { w->wg, w->wu, w->wd, NULL };
    c->st = loss ? hr_awq_device_loss(c->odev, mlp, mlp ? wm : wa, bias, loss, &c->err)
                 : hr_awq_device_begin(c->odev, mlp, mlp ? wm : wa, bias, x, T, &c->err);
}

static void
run_group(Ctx *c, GroupKind kind, const LW *w, const float *x, int T, float *out)
{
    if (c->odev) {
        run_group_device(c, kind, w, x, T, out);
        return;
    }
    packing_begin(c);
    switch (kind) {
    case G_QKV:
        attn_block(c, w, x, T, out, NULL);
        break;
    case G_GATEUP:
        mlp_block(c, w, x, T, out, NULL);
        break;
    case G_VO:
    case G_DOWN: /* single linears: the Gram loss, never run */
        break;
    }
    packing_end(c);
}

void
hr_awq_fake_quant(const float *w, int N, int K, int g, int bits, float *out)
{
    for (int n = 0; n < N; n++)
        hr_awq_fake_quant_row(w + (size_t)n * K, K, g, bits, out + (size_t)n * K);
}

typedef struct {
    float **lin[3];
    int N[3];
    int n_lin;
    int K;
    int g;
    GroupKind kind;
} Group;

typedef struct {
    const float *x;     /* [T, K] */
    float *xt;          /* [K, tc] */
    int T, K, t0, tc;
    const float *s;
    float *w;
} ColJob;

/* xt[k, i] = x[t0 + i, k] */
static void
transpose_range(void *arg, int start, int end)
{
    ColJob *J = arg;
    for (int k = start; k < end; k++)
        for (int i = 0; i < J->tc; i++)
            J->xt[(size_t)k * J->tc + i] = J->x[(size_t)(J->t0 + i) * J->K + k];
}

/* C[K, K] = x^T x over the T tokens, GRAM_TOKENS at a time. C is
 * symmetric: per chunk only the blocks on and above the diagonal are
 * computed (C[i0:i1, i0:K] for row blocks of GRAM_BLOCK: 58 % of the
 * products for K = 1536), then mirrored. Each element is one dot product
 * over the chunk added to C, as a full product would give it. */
#define GRAM_BLOCK 256
static float *
gram(Ctx *c, const float *x, int T, int K)
{
    float *C = floats0((size_t)K * K), *xt = floats((size_t)K * GRAM_TOKENS);
    float *part = floats((size_t)GRAM_BLOCK * K);
    for (int t0 = 0; t0 < T; t0 += GRAM_TOKENS) {
        ColJob J = { .x = x, .xt = xt, .T = T, .K = K, .t0 = t0, .tc = MIN(GRAM_TOKENS, T - t0) };
        hr_pool_run(c->pool, transpose_range, &J, K, 16);
        for (int i0 = 0; i0 < K; i0 += GRAM_BLOCK) {
            const int bi = MIN(GRAM_BLOCK, K - i0), nj = K - i0;
            /* part[i, j] = xt[i0 + i] . xt[i0 + j] */
            mm(c, part, xt + (size_t)i0 * J.tc, nj, J.tc, NULL, xt + (size_t)i0 * J.tc, bi);
            for (int i = 0; i < bi; i++) {
                float *crow = C + (size_t)(i0 + i) * K + i0;
                const float *prow = part + (size_t)i * nj;
                for (int j = i; j < nj; j++)
                    crow[j] += prow[j];
            }
        }
    }
    for (int i = 0; i < K; i++)
        for (int j = 0; j < i; j++)
            C[(size_t)i * K + j] = C[(size_t)j * K + i];
    g_free(xt);
    g_free(part);
    return C;
}

/* The loss of one ratio in difference form (CPU with AMX): the sum over
 * the tokens of |output with W_q - output with W|^2, dW = W_q - W per
 * linear of the group.
 *   - A single linear (v -> o, up -> down): its output error is x dW^T.
 *   - A block (q,k,v; gate,up): each linear's output is its recorded FP
 *     output plus x dW^T; the block runs on those, and its last linear
 *     (o_proj, down_proj, not quantized here: last) is applied to the
 *     difference of its inputs from the recorded ones (ref_a, ref_h).
 * Why: the direct form subtracts two outputs that agree to a few bits, so
 * it needs ~2^-16 per product (three BF16 tile products per pair of tiles,
 * hr_amx_pack). Here every product is part of a difference, so a BF16
 * product (one tile product, hr_amx_pack_bf16) errs by ~2^-8 of the
 * difference itself, and nearly all of that is noise that cancels in the
 * sum over the rows and tokens: the losses stay within ~1e-4 of FP32's
 * (quantize/README.md, "The difference form"). */
static double
loss_delta(Ctx *c, const Group *gr, float *const dW[3], const HrAmxWeights *last, const float *x, int T, float *d)
{
    const HrModelConfig *cfg = c->cfg;
    const int D = cfg->dim, hd = cfg->head_dim, qd = cfg->n_heads * hd, kvd = cfg->n_kv_heads * hd;
    const int H = cfg->hidden_dim, ct = c->chunk * c->L, K = gr->K;
    HrAmxWeights *e[3] = { NULL, NULL, NULL };
    for (int j = 0; j < gr->n_lin; j++)
        e[j] = hr_amx_pack_bf16(c->pool, dW[j], gr->N[j], K);
    double loss = 0.0;
    for (int t0 = 0; t0 < T; t0 += ct) {
        const int n = MIN(ct, T - t0);
        const float *xc = x + (size_t)t0 * K;
        int cols = D;
        switch (gr->kind) {
        case G_QKV:
            hr_amx_matmul_packed_add(c->pool, c->q, c->ref_q + (size_t)t0 * qd, e[0], xc, n);
            hr_amx_matmul_packed_add(c->pool, c->k, c->ref_k + (size_t)t0 * kvd, e[1], xc, n);
            hr_amx_matmul_packed_add(c->pool, c->v, c->ref_v + (size_t)t0 * kvd, e[2], xc, n);
            qk_norm_rows(c, c->q, c->k, n);   /* (q and k are whole here: the recorded ones plus x dW^T) */
            rope_rows(c, c->q, n, cfg->n_heads);
            rope_rows(c, c->k, n, cfg->n_kv_heads);
            attention(c, c->q, c->k, c->v, c->att, n);
            sub_rows(c, c->att, c->ref_a + (size_t)t0 * qd, n, qd);
            hr_amx_matmul_packed(c->pool, d, last, NULL, c->att, n);
            break;
        case G_GATEUP:
            hr_amx_matmul_packed_add(c->pool, c->gt, c->ref_g + (size_t)t0 * H, e[0], xc, n);
            hr_amx_matmul_packed_add(c->pool, c->up, c->ref_u + (size_t)t0 * H, e[1], xc, n);
            hr_awq_silu_mul_sub(c->pool, c->gt, c->up, c->ref_h + (size_t)t0 * H, (size_t)n * H);
            hr_amx_matmul_packed(c->pool, d, last, NULL, c->gt, n);
            break;
        case G_VO:
        case G_DOWN:
            hr_amx_matmul_packed(c->pool, d, e[0], NULL, xc, n);
            cols = gr->N[0];
            break;
        }
        loss += hr_awq_dot(c->pool, d, d, (size_t)n, (size_t)cols);
    }
    for (int j = 0; j < 3; j++)
        hr_amx_free(e[j]);
    return loss;
}

/* The device's kept input of a group. */
static HrAwqAct
group_act(GroupKind kind)
{
    return kind == G_QKV ? HR_AWQ_ACT_H1 : kind == G_VO ? HR_AWQ_ACT_A : kind == G_GATEUP ? HR_AWQ_ACT_H2 : HR_AWQ_ACT_ACT;
}

/* Search the scales of a group; returns the best ratio index (-1 when every
 * loss was NaN/inf: s = 1) and its loss in *best_loss, the loss at ratio 0
 * in *loss0; s[K] receives the scales. ref [T, D_out] is the group's FP
 * output (the blocks; unused for single linears); out is scratch of the
 * same size. */
static int
search_group(Ctx *c, LW *w, const Group *gr, const float *x, int T, int D_out, const float *ref, float *out,
             float *s, double *best_loss, double *loss0)
{
    const int K = gr->K, g = gr->g;
    const bool single = gr->kind == G_VO || gr->kind == G_DOWN;
    double *xsum = g_new0(double, (size_t)K);
    float *xbar = g_new(float, (size_t)K), *wbar = g_new0(float, (size_t)K);
    if (x) {
        hr_awq_col_abs_sum(c->pool, x, (size_t)T, (size_t)K, xsum);
        for (int k = 0; k < K; k++)
            xbar[k] = (float)(xsum[k] / T);
    } else if (c->st == HR_OK) {   /* kept on the device */
        c->st = hr_awq_device_col_mean(c->odev, group_act(gr->kind), xbar, &c->err);
    }
    /* wbar: mean over all output rows of |w| / max |w| in its group */
    int rows = 0;
    double *wsum = g_new0(double, (size_t)K);
    for (int j = 0; j < gr->n_lin; j++) {
        const float *W = *gr->lin[j];
        for (int n = 0; n < gr->N[j]; n++, rows++) {
            const float *r = W + (size_t)n * K;
            for (int g0 = 0; g0 < K; g0 += g) {
                float mx = 0.0f;
                for (int i = 0; i < g; i++)
                    mx = fmaxf(mx, fabsf(r[g0 + i]));
                for (int i = 0; i < g; i++)
                    wsum[g0 + i] += mx > 0.0f ? fabsf(r[g0 + i]) / mx : 0.0;
            }
        }
    }
    for (int k = 0; k < K; k++)
        wbar[k] = (float)(wsum[k] / rows);

    /* The difference form (loss_delta) where the CPU has BF16 products.
     * For a single linear it costs T N K BF16 products per ratio, against
     * the Gram form's N K^2 per ratio plus T K^2 / 2 for C, at the cost of
     * three each on AMX (split in two parts) and two without (FP32): the
     * cheaper wins (Llama-3.2-1B's down_proj at 32 x 512: the difference
     * form; SmolLM2's at 128 x 512: Gram). */
    /* On a device that keeps tensors a single linear's loss is x dW^T
     * there (its difference form as one LINEAR node), no Gram matrix. */
    const bool dev_single = single && c->odev && hr_awq_device_resident(c->odev);
    const double gram_cost = c->amx ? 3.0 : 2.0;
    const bool delta = !dev_single && c->delta && K >= AMX_MIN_K &&
                       (gr->kind == G_QKV ? c->ref_q != NULL : gr->kind == G_GATEUP ? c->ref_g != NULL : true) &&
                       (!single || (double)N_GRID * T * gr->N[0] * K <
                                       gram_cost * ((double)N_GRID * gr->N[0] * K * K + 0.5 * (double)T * K * K));
    const bool use_gram = single && !delta && !dev_single;
    float *C = use_gram ? gram(c, x, T, K) : NULL;
    float *P = use_gram ? floats((size_t)gr->N[0] * K) : NULL;
    /* on the device: the reference through the same arithmetic as the
     * ratios, kept there where the device can (resident) */
    const bool resident = c->odev && !single && !delta && hr_awq_device_resident(c->odev);
    /* and where it can, the device makes the candidates from the FP
     * weights it keeps: only s [K] crosses per ratio */
    const bool dev_quant = (dev_single || resident) && hr_awq_device_quantizes(c->odev);
    const HrAwqDevGroup dgroup = gr->kind == G_QKV      ? HR_AWQ_DEV_QKV
                                 : gr->kind == G_GATEUP ? HR_AWQ_DEV_GATEUP
                                 : gr->kind == G_VO     ? HR_AWQ_DEV_O
                                                        : HR_AWQ_DEV_DOWN;
    float *orig[3] = { NULL }, *fq[3] = { NULL };
    for (int j = 0; j < gr->n_lin; j++) {
        orig[j] = *gr->lin[j];
        fq[j] = dev_quant ? NULL : floats((size_t)gr->N[j] * K);   /* (the device makes them) */
    }
    float *cand = g_new(float, (size_t)K);
    if (use_gram)
        packing_begin(c); /* C, the only "weights" of the ratios' products */
    if (dev_single && c->st == HR_OK)
        c->st = hr_awq_device_single_begin(c->odev, gr->kind == G_DOWN, x, T, &c->err);
    if (resident) {
        device_resident(c, gr->kind, w, x, T, NULL);
    } else if (c->odev && !single && !delta) {
        run_group(c, gr->kind, w, x, T, c->dref);
        ref = c->dref;
    }
    if (dev_quant && c->st == HR_OK)
        c->st = hr_awq_device_quant_begin(c->odev, dgroup, (const float *const[3]){ orig[0], orig[1], orig[2] },
                                          &c->err);
    HrAmxWeights *last = NULL;
    if (delta && !single) {
        const int qd = c->cfg->n_heads * c->cfg->head_dim;
        last = gr->kind == G_QKV ? hr_amx_pack_bf16(c->pool, w->wo, D_out, qd)
                                 : hr_amx_pack_bf16(c->pool, w->wd, D_out, c->cfg->hidden_dim);
    }
    int best = -1;
    *best_loss = INFINITY;
    *loss0 = NAN;
    for (int i = 0; i < N_GRID; i++) {
        float a = (float)i / N_GRID;
        float mn = INFINITY, mx = 0.0f;
        for (int k = 0; k < K; k++) {
            float v = c->opt->scale_mode == HR_AWQ_SCALE_PLAIN ? powf(xbar[k], a)
                                                               : powf(xbar[k], a) / (powf(wbar[k], 1.0f - a) + 1e-4f);
            v = fmaxf(v, 1e-4f);
            cand[k] = v;
            mn = fminf(mn, v);
            mx = fmaxf(mx, v);
        }
        float norm = sqrtf(mx * mn);
        for (int k = 0; k < K; k++)
            cand[k] /= norm;
        for (int j = 0; j < gr->n_lin && !dev_quant; j++)
            hr_awq_scale_quant(c->pool, orig[j], gr->N[j], K, cand, g, c->opt->bits, single || delta, fq[j]);
        double loss = NAN;
        if (dev_quant) {
            if (c->st == HR_OK)
                c->st = hr_awq_device_quant_loss(c->odev, dgroup, cand, g, c->opt->bits, &loss, &c->err);
        } else if (dev_single) {
            if (c->st == HR_OK)
                c->st = hr_awq_device_single_loss(c->odev, gr->kind == G_DOWN, fq[0], &loss, &c->err);
        } else if (delta) {
            loss = loss_delta(c, gr, fq, last, x, T, out);
        } else if (single) {
            /* dW = fq[0]; sum_n dW_n C dW_n^T (C symmetric) */
            mm(c, P, C, K, K, NULL, fq[0], gr->N[0]);
            loss = hr_awq_dot(c->pool, P, fq[0], (size_t)gr->N[0], (size_t)K);
        } else {
            for (int j = 0; j < gr->n_lin; j++)
                *gr->lin[j] = fq[j];
            loss = NAN;
            if (resident) {
                device_resident(c, gr->kind, w, x, T, &loss);
            } else {
                run_group(c, gr->kind, w, x, T, out);
                loss = hr_awq_sq_diff(c->pool, out, ref, (size_t)T, (size_t)D_out);
            }
            for (int j = 0; j < gr->n_lin; j++)
                *gr->lin[j] = orig[j];
        }
        loss /= (double)T * D_out;
        if (c->trace)
            g_printerr("awq-trace: group %d ratio %.2f loss %.9g\n", (int)gr->kind, a, loss);
        if (i == 0)
            *loss0 = loss;
        if (isfinite(loss) && loss < *best_loss) {
            *best_loss = loss;
            best = i;
            memcpy(s, cand, sizeof(float) * K);
        }
    }
    if (use_gram)
        packing_end(c);
    hr_amx_free(last);
    if (best < 0) {
        for (int k = 0; k < K; k++)
            s[k] = 1.0f;
    }
    for (int j = 0; j < gr->n_lin; j++)
        g_free(fq[j]);
    g_free(C);
    g_free(P);
    g_free(cand);
    g_free(xsum);
    g_free(wsum);
    g_free(xbar);
    g_free(wbar);
    return best;
}

typedef struct {
    float *m;           /* [rows, K] */
    const float *s;     /* [K] */
    int K;
} FoldJob;

/* rows of m *= s (per column) */
static void
fold_range(void *arg, int start, int end)
{
    FoldJob *J = arg;
    for (int r = start; r < end; r++) {
        float *row = J->m + (size_t)r * J->K;
        for (int k = 0; k < J->K; k++)
            row[k] *= J->s[k];
    }
}

/* Fold: linears' input columns *= s, the cached input /= s (x NULL: the
 * input kept on the device). */
static void
fold_group(Ctx *c, const Group *gr, const float *s, float *x, int T)
{
    for (int j = 0; j < gr->n_lin; j++) {
        FoldJob J = { *gr->lin[j], s, gr->K };
        hr_pool_run(c->pool, fold_range, &J, gr->N[j], 16);
    }
    if (!x) {
        if (c->st == HR_OK)
            c->st = hr_awq_device_fold(c->odev, group_act(gr->kind), s, &c->err);
        return;
    }
    hr_awq_div_cols(c->pool, x, (size_t)T, (size_t)gr->K, s);
}

typedef struct {
    const float *src;   /* [N, K] */
    float *dst;         /* [N, g] */
    const float *lim;   /* [N] clamp limits, or NULL: plain copy */
    int K, g0, g, bits;
} ClipRowsArgs;

/* Rows of the group's columns, clamped to +-lim[n] and fake-quantized
 * (one quantization group per row) when lim is given. */
static void
clip_rows_range(void *arg, int start, int end)
{
    ClipRowsArgs *A = arg;
    for (int n = start; n < end; n++) {
        const float *w = A->src + (size_t)n * A->K + A->g0;
        float *d = A->dst + (size_t)n * A->g;
        if (!A->lim) {
            memcpy(d, w, sizeof(float) * A->g);
            continue;
        }
        const float m = A->lim[n];
        for (int i = 0; i < A->g; i++)
            d[i] = fminf(fmaxf(w[i], -m), m);
        hr_awq_fake_quant_row(d, A->g, A->g, A->bits, d);
    }
}

typedef struct {
    const float *out, *org;  /* [nt, N] */
    double *errs;            /* [N] */
    int nt, N;
} ClipErrArgs;

/* errs[n] = sum over t (in order) of (out - org)^2, for blocks of rows */
static void
clip_err_range(void *arg, int start, int end)
{
    ClipErrArgs *A = arg;
    for (int n = start; n < end; n++)
        A->errs[n] = 0.0;
    for (int t = 0; t < A->nt; t++) {
        const float *o = A->out + (size_t)t * A->N, *r = A->org + (size_t)t * A->N;
        for (int n = start; n < end; n++) {
            double d = (double)o[n] - r[n];
            A->errs[n] += d * d;
        }
    }
}

/* Clip search of one linear W [N, K] (groups of g inputs) on nt of the T
 * cached inputs x [T, K]: for each group and each of CLIP_STEPS shrink
 * factors, the group's partial outputs of every row for every sampled token
 * are one GEMM on the backend ([nt, g] x [N, g]^T); per row the factor with
 * the lowest squared error against the unclipped partial outputs wins. */
static void
clip_linear(Ctx *c, HrAwqLinear lin, float *W, int N, int K, int g, const float *x, int T)
{
    int step = MAX(1, T / CLIP_TOKENS);
    int nt = MIN((T + step - 1) / step, CLIP_TOKENS);
    if (c->odev && hr_awq_device_clips(c->odev) && (g <= 256 || !x)) {
        /* on the device (the Gram form there), the limits back */
        if (c->st != HR_OK)
            return;
        const int ng = K / g;
        float *lim = g_new(float, (size_t)N * ng);
        c->st = hr_awq_device_clip(c->odev, lin, W, x, step, nt, g, c->opt->bits, CLIP_STEPS, CLIP_GRID, lim,
                                   &c->err);
        for (int n = 0; c->st == HR_OK && n < N; n++) {
            float *w = W + (size_t)n * K;
            for (int k = 0; k < K; k++) {
                const float m = lim[(size_t)n * ng + k / g];
                w[k] = fminf(fmaxf(w[k], -m), m);
            }
        }
        g_free(lim);
        return;
    }
    float *xg = floats((size_t)nt * g), *wg = floats((size_t)N * g), *cw = floats((size_t)N * g);
    float *org = floats((size_t)nt * N), *out = floats((size_t)nt * N);
    float *m0 = g_new(float, N), *lim = g_new(float, N), *best_m = g_new(float, N);
    double *best = g_new(double, N), *errs = g_new0(double, N);
    for (int g0 = 0; g0 < K; g0 += g) {
        for (int t = 0; t < nt; t++)
            memcpy(xg + (size_t)t * g, x + (size_t)t * step * K + g0, sizeof(float) * g);
        ClipRowsArgs R = { W, wg, NULL, K, g0, g, c->opt->bits };
        hr_pool_run(c->pool, clip_rows_range, &R, N, 1);
        for (int n = 0; n < N; n++) {
            float mx = 0.0f;
            for (int i = 0; i < g; i++)
                mx = fmaxf(mx, fabsf(wg[(size_t)n * g + i]));
            m0[n] = best_m[n] = mx;
            best[n] = INFINITY;
        }
        mm(c, org, wg, N, g, NULL, xg, nt);
        for (int sidx = 0; sidx < CLIP_STEPS; sidx++) {
            for (int n = 0; n < N; n++)
                lim[n] = m0[n] * (1.0f - (float)sidx / CLIP_GRID);
            ClipRowsArgs Q = { W, cw, lim, K, g0, g, c->opt->bits };
            hr_pool_run(c->pool, clip_rows_range, &Q, N, 1);
            mm(c, out, cw, N, g, NULL, xg, nt);
            ClipErrArgs E = { out, org, errs, nt, N };
            hr_pool_run(c->pool, clip_err_range, &E, N, 16);
            for (int n = 0; n < N; n++) {
                if (errs[n] < best[n]) {
                    best[n] = errs[n];
                    best_m[n] = lim[n];
                }
            }
        }
        for (int n = 0; n < N; n++) {
            float *w = W + (size_t)n * K + g0;
            for (int i = 0; i < g; i++)
                w[i] = fminf(fmaxf(w[i], -best_m[n]), best_m[n]);
        }
    }
    g_free(xg);
    g_free(wg);
    g_free(cw);
    g_free(org);
    g_free(out);
    g_free(m0);
    g_free(lim);
    g_free(best_m);
    g_free(best);
    g_free(errs);
}

static float *
load_f32(const HrTensorSet *ts, const char *name, int64_t numel)
{
    const HrTensor *t = hr_tensor_set_find(ts, name);
    if (!t || hr_tensor_numel(t) != numel)
        return NULL;
    int64_t rows = t->n_dims == 2 ? t->shape[0] : 1, cols = numel / rows;
    HrMat m = { t->data, t->dtype, (int)rows, (int)cols };
    float *f = floats((size_t)numel);
    for (int64_t r = 0; r < rows; r++)
        hr_mat_row_f32(&m, (int)r, f + r * cols, (int)cols);
    return f;
}

struct HrAwqState {
    Ctx c;
    const HrTensorSet *ts;
    void *user;
    gint64 t_start;
    double last_f;    /* the largest fraction reported (search or writer) */
    int T, layer;
    /* [T, D]: x the layer's input, y its output, h1/h2 the normed inputs of
     * the attention and the MLP, r1/r2 their FP outputs (the references of
     * the q,k,v and gate,up searches), out a search's scratch; a [T, qd] the
     * input of o_proj, act [T, H] the input of down_proj */
    float *x, *y, *h1, *a, *h2, *act, *r1, *r2, *out, *s;
};

void
hr_awq_free(HrAwqState *S)
{
    if (!S)
        return;
    g_free(S->x);
    g_free(S->y);
    g_free(S->h1);
    g_free(S->h2);
    g_free(S->a);
    g_free(S->act);
    g_free(S->r1);
    g_free(S->r2);
    g_free(S->out);
    g_free(S->s);
    g_free(S->c.rope_cos);
    g_free(S->c.rope_sin);
    g_free(S->c.rope_cos_local);
    g_free(S->c.rope_sin_local);
    g_free(S->c.q);
    g_free(S->c.k);
    g_free(S->c.v);
    g_free(S->c.att);
    g_free(S->c.kt);
    g_free(S->c.vt);
    g_free(S->c.gt);
    g_free(S->c.up);
    g_free(S->c.ref_q);
    g_free(S->c.ref_k);
    g_free(S->c.ref_v);
    g_free(S->c.ref_g);
    g_free(S->c.ref_u);
    hr_pool_free(S->c.pool);
    hr_awq_device_free(S->c.odev);
    g_free(S->c.dref);
    g_free(S->c.bias_cat);
    if (S->c.dev)
        S->c.be->gemm_close(S->c.dev);
    g_free(S);
}

/* cos and sin [seqlen, rot/2] of the frequencies inv, times LongRoPE's
 * attention factor, as the engine's ROPE_KV computes them per position. */
static void
rope_table(const HrModelConfig *cfg, const float *inv, int seqlen, float **cos_out, float **sin_out)
{
    const int half = hr_model_config_rotary_dim(cfg) / 2;
    const float m = hr_rope_attn_factor(cfg);
    float *cs = g_new(float, (size_t)seqlen * half), *sn = g_new(float, (size_t)seqlen * half);
    for (int t = 0; t < seqlen; t++) {
        for (int i = 0; i < half; i++) {
            const float angle = (float)t * inv[i];
            cs[(size_t)t * half + i] = cosf(angle) * m;
            sn[(size_t)t * half + i] = sinf(angle) * m;
        }
    }
    *cos_out = cs;
    *sin_out = sn;
}

/* Whether the device's block forwards (awq-device.c: the Llama/Qwen block,
 * full-width RoPE without LongRoPE, every key in view) compute this
 * model's layers on windows of seqlen tokens. */
static bool
device_runs(const HrModelConfig *cfg, int seqlen)
{
    if (cfg->sandwich_norms || cfg->norm_plus_one || cfg->act != HR_ACT_SILU || cfg->attn_softcap > 0.0f ||
        cfg->query_scale > 0.0f || cfg->embed_scale != 1.0f || cfg->rope_local_theta > 0.0f ||
        cfg->rope_scaling == HR_ROPE_LONGROPE || hr_model_config_rotary_dim(cfg) != cfg->head_dim)
        return false;
    for (int l = 0; l < cfg->n_layers; l++) {
        const int w = hr_model_config_layer_window(cfg, l);
        if (w > 0 && w < seqlen)
            return false;
    }
    return true;
}

HrStatus
hr_awq_begin(const HrModelConfig *cfg, const HrTensorSet *ts, const HrQuantOptions *opt, const int32_t *tokens,
             int n_samples, int seqlen, void *user, HrAwqState **out, HrError *err)
{
    const int D = cfg->dim, hd = cfg->head_dim, qd = cfg->n_heads * hd;
    const int H = cfg->hidden_dim, T = n_samples * seqlen;
    *out = NULL;
    if (hd % 2 != 0 || cfg->n_heads % cfg->n_kv_heads != 0)
        return hr_error_set(err, HR_ERR_UNSUPPORTED, "awq: unsupported attention shape");
    const HrTensor *et = hr_tensor_set_find(ts, "model.embed_tokens.weight");
    if (!et || et->n_dims != 2 || et->shape[1] != D)
        return hr_error_set(err, HR_ERR_FORMAT, "awq: model.embed_tokens.weight missing or misshaped");
    HrMat em = { et->data, et->dtype, (int)et->shape[0], D };
    for (int t = 0; t < T; t++) {
        if (tokens[t] < 0 || tokens[t] >= em.rows)
            return hr_error_set(err, HR_ERR_INVALID_ARG, "awq: calibration token %d out of range", tokens[t]);
    }
    const HrBackendOps *be = hr_backend_find(opt->backend);
    if (!be)
        return hr_error_set(err, HR_ERR_UNSUPPORTED, "awq: backend \"%s\" is not available in this build",
                            opt->backend);
    /* HEARTH_AWQ_DEVICE=1 (opt-in until measured on a GPU): the block
     * forwards on the backend's device through its op table, everything
     * else on the CPU */
    HrAwqDevice *odev = NULL;
    const char *dv = g_getenv("HEARTH_AWQ_DEVICE");
    if (dv && strcmp(dv, "1") == 0 && !device_runs(cfg, seqlen))
        return hr_error_set(err, HR_ERR_UNSUPPORTED, "awq: HEARTH_AWQ_DEVICE=1 runs the Llama/Qwen block only, not "
                            "%s's; without it the search runs this model", hr_model_config_family(cfg));
    if (dv && strcmp(dv, "1") == 0) {
        HrStatus st = hr_awq_device_open(be->ops, cfg, seqlen, &odev, err);
        if (st != HR_OK) {
            hr_error_prefix(err, "awq: HEARTH_AWQ_DEVICE=1 with backend \"%s\": ", be->name);
            return st;
        }
        be = &hr_cpu_backend;
    }
    if (!be->gemm) /* a backend without host GEMMs: the search runs on the CPU */
        be = &hr_cpu_backend;
    /* HEARTH_AWQ_GEMM_OP=1 (tests): the CPU backend through its gemm op,
     * i.e. the path every other backend takes */
    const bool cpu = be == &hr_cpu_backend && !g_getenv("HEARTH_AWQ_GEMM_OP");
    void *dev = NULL;
    if (!cpu) {
        HrStatus st = be->gemm_open(0, &dev, err);
        if (st != HR_OK) {
            hr_awq_device_free(odev);
            return st;
        }
    }
    HrAwqState *S = g_new0(HrAwqState, 1);
    Ctx c = { .cfg = cfg, .opt = opt, .pool = hr_pool_new(0), .be = be, .dev = dev, .cpu = cpu,
              .rot = hr_model_config_rotary_dim(cfg), .L = seqlen, .chunk = 1,
              .trace = g_getenv("HEARTH_AWQ_TRACE") != NULL, .amx = cpu && hr_cpu_amx(),
              .bf16 = cpu && hr_cpu_bf16_products(), .odev = odev };
    if (odev) {
        if (!hr_awq_device_resident(odev))   /* the reference comes to the host */
            c.dref = hr_try_alloc64((size_t)T * D * sizeof(float));
        c.bias_cat = g_new0(float, (size_t)qd + 2 * (size_t)cfg->n_kv_heads * hd);
        if (c.trace)
            g_printerr("awq-trace: the block forwards%s%s%s on %s\n",
                       hr_awq_device_resident(odev) ? ", the single linears' losses" : "",
                       hr_awq_device_quantizes(odev) ? ", the candidates" : "",
                       hr_awq_device_clips(odev) ? ", the clip search" : "", hr_awq_device_name(odev));
        const char *fw = g_getenv("HEARTH_AWQ_DEVICE_FORWARD");
        c.dev_forward = hr_awq_device_forwards(odev) && !(fw && strcmp(fw, "0") == 0);
        if (c.trace && c.dev_forward)
            g_printerr("awq-trace: the layers' FP forward on %s\n", hr_awq_device_name(odev));
        /* and the activations kept there, where every clip search can run
         * there too (groups of at most 256) and they fit */
        const int kvd = cfg->n_kv_heads * hd;
        const int gs[] = { hr_quant_linear_group(opt, kvd, D), hr_quant_linear_group(opt, D, qd),
                           hr_quant_linear_group(opt, H, D), hr_quant_linear_group(opt, D, H) };
        bool narrow = true;
        for (size_t i = 0; i < G_N_ELEMENTS(gs); i++)
            narrow &= gs[i] <= 256;
        const char *kp = g_getenv("HEARTH_AWQ_DEVICE_KEEP");   /* 0: on the host (tests) */
        if (c.dev_forward && narrow && hr_awq_device_keeps(odev) && !(kp && strcmp(kp, "0") == 0)) {
            HrError e = { 0 };
            c.dev_keep = hr_awq_device_keep(odev, T, &e) == HR_OK;
            if (c.trace)
                g_printerr("awq-trace: the activations %s\n", c.dev_keep ? "kept on the device" : e.message);
        }
    }
    /* The search's jobs are few and long (an AMX product is a handful of
     * items of milliseconds each): the tail of one is no sign of a busy
     * core, and the adaptive width, made for decode's short jobs, would
     * narrow the pool to one thread on it. */
    hr_pool_set_adaptive(c.pool, false);
    /* RoPE as the engine turns a window of seqlen tokens (cpu-backend.c's ROPE_KV): LongRoPE's set by the
     * window's last position, cos and sin times its attention factor; the sliding-window layers' own base */
    {
        float *inv = g_new(float, (size_t)c.rot / 2);
        if (hr_model_config_rope_long(cfg, seqlen - 1))
            hr_rope_inv_freq_long(cfg, inv);
        else
            hr_rope_inv_freq(cfg, inv);
        rope_table(cfg, inv, seqlen, &c.rope_cos, &c.rope_sin);
        if (cfg->rope_local_theta > 0.0f) {
            hr_rope_inv_freq_local(cfg, inv);
            rope_table(cfg, inv, seqlen, &c.rope_cos_local, &c.rope_sin_local);
        }
        g_free(inv);
    }
    /* chunk: about 2^20 q elements at a time (2^22 on the CPU: a GEMM's
     * packing of W is paid once per chunk) */
    c.chunk = (int)CLAMP((cpu ? 1 << 22 : 1 << 20) / ((int64_t)seqlen * MAX(qd, H)), 1, n_samples);
    {
        const size_t ct = (size_t)c.chunk * seqlen, kvd = (size_t)cfg->n_kv_heads * hd;
        c.q = floats(ct * qd);
        c.att = floats(ct * qd);
        c.k = floats(ct * kvd);
        c.v = floats(ct * kvd);
        c.gt = floats(ct * H);
        c.up = floats(ct * H);
        if (cpu) {
            c.kt = floats(hr_awq_attention_scratch(c.chunk, seqlen, cfg->n_kv_heads, hd));
            c.vt = floats(hr_awq_attention_scratch(c.chunk, seqlen, cfg->n_kv_heads, hd));
        }
    }
    S->c = c;
    S->ts = ts;
    S->user = user;
    S->t_start = g_get_monotonic_time();
    S->T = T;
    /* The calibration activations are the search's big allocations: an
     * error, not an abort, when the machine cannot hold them. */
    /* (kept on the device: only the first layer's input, on the host until
     * the first forward has taken it) */
    const bool keep = S->c.dev_keep;
    S->x = try_floats((size_t)T * D);
    if (!keep) {
        S->y = try_floats((size_t)T * D);
        S->h1 = try_floats((size_t)T * D);
        S->h2 = try_floats((size_t)T * D);
        S->a = try_floats((size_t)T * qd);
        S->act = try_floats((size_t)T * H);
    }
    /* the blocks' outputs and the loss scratch: for the host's forward and
     * losses only (a device that runs the forward keeps its own) */
    const bool host = !S->c.dev_forward;
    if (host) {
        S->r1 = try_floats((size_t)T * D);
        S->r2 = try_floats((size_t)T * D);
        S->out = try_floats((size_t)T * D);
    }
    S->s = g_try_new(float, (size_t)MAX(MAX(D, qd), H));
    if (!S->x || (!keep && (!S->y || !S->h1 || !S->h2 || !S->a || !S->act)) ||
        (host && (!S->r1 || !S->r2 || !S->out)) || !S->s ||
        (S->c.odev && !hr_awq_device_resident(S->c.odev) && !S->c.dref)) {
        size_t mb = ((size_t)T * ((host ? 7 : 4) * (size_t)D + (size_t)qd + (size_t)H) * sizeof(float)) >> 20;
        hr_awq_free(S);
        return hr_error_set(err, HR_ERR_NOMEM, "awq: not enough memory for the calibration activations "
                            "(%zu MiB for %d tokens); use fewer --samples or a shorter --seqlen", mb, T);
    }
    /* The difference form (BF16 products: AMX, or AVX512-BF16). A block group needs the records of
     * its linears' outputs, taken only where that group will be searched
     * in this form; without the memory for them it keeps the direct form. */
    if (S->c.bf16 && !g_getenv("HEARTH_AWQ_DIRECT") && cfg->act == HR_ACT_SILU && !cfg->sandwich_norms) {
        Ctx *cs = &S->c;
        const int kvd = cfg->n_kv_heads * hd;
        cs->delta = true;
        /* (with the device's block forward, the blocks keep the direct form) */
        if (!cs->odev && D >= AMX_MIN_K && hr_quant_linear_group(opt, qd, D) && hr_quant_linear_group(opt, kvd, D)) {
            cs->ref_q = try_floats((size_t)T * qd);
            cs->ref_k = try_floats((size_t)T * kvd);
            cs->ref_v = try_floats((size_t)T * kvd);
            if (!cs->ref_q || !cs->ref_k || !cs->ref_v) {
                g_clear_pointer(&cs->ref_q, g_free);
                g_clear_pointer(&cs->ref_k, g_free);
                g_clear_pointer(&cs->ref_v, g_free);
            }
        }
        if (!cs->odev && D >= AMX_MIN_K && hr_quant_linear_group(opt, H, D)) {
            cs->ref_g = try_floats((size_t)T * H);
            cs->ref_u = try_floats((size_t)T * H);
            if (!cs->ref_g || !cs->ref_u) {
                g_clear_pointer(&cs->ref_g, g_free);
                g_clear_pointer(&cs->ref_u, g_free);
            }
        }
        cs->ref_a = S->a;
        cs->ref_h = S->act;
        if (cs->trace)
            g_printerr("awq-trace: difference form (records of q,k,v: %s; of gate,up: %s)\n", cs->ref_q ? "yes" : "no",
                       cs->ref_g ? "yes" : "no");
    }
    for (int t = 0; t < T; t++)
        hr_mat_row_f32(&em, tokens[t], S->x + (size_t)t * D, D);
    const float escale = hr_llama_embed_scale(cfg, ts);   /* (Gemma's) */
    for (size_t e = 0; escale != 1.0f && e < (size_t)T * D; e++)
        S->x[e] *= escale;
    *out = S;
    return HR_OK;
}

const float *
hr_awq_hidden(const HrAwqState *S)
{
    return S->x;
}

int
hr_awq_next_layer(const HrAwqState *S)
{
    return S->layer;
}

bool
hr_awq_report(HrAwqState *S, const char *step, double within)
{
    const HrQuantOptions *opt = S->c.opt;
    if (!opt->stage)
        return true;
    const int nl = S->c.cfg->n_layers;
    /* the search is nearly all of an AWQ run: the layers share 0..0.98 */
    double f = MAX(S->last_f, 0.98 * (MAX(S->layer - 1, 0) + CLAMP(within, 0.0, 1.0)) / nl);
    S->last_f = f;
    double el = (double)(g_get_monotonic_time() - S->t_start) / 1e6;
    HrQuantStage st = { S->layer - 1, nl, step, f, el, f > 0.01 ? el * (1.0 - f) / f : -1.0 };
    return opt->stage(&st, S->user);
}

double
hr_awq_progress(HrAwqState *S, double f)
{
    S->last_f = MAX(S->last_f, f);
    return S->last_f;
}

/* HEARTH_AWQ_TRACE: the seconds since *t for a phase of the layer. */
static void
trace_phase(const Ctx *c, const char *what, gint64 *t)
{
    gint64 now = g_get_monotonic_time();
    if (c->trace)
        g_printerr("awq-trace: %s %.2f s\n", what, (double)(now - *t) / 1e6);
    *t = now;
}

/* The sticky backend failure, if any, as this call's error. */
static HrStatus
backend_failed(Ctx *c, HrError *err)
{
    if (c->st == HR_OK)
        return HR_OK;
    /* with the search's forwards on a device, its failures name the device
     * themselves ("CUDA: ..."): not the host GEMMs' backend */
    if (c->odev)
        return hr_error_set(err, c->st, "awq: %s", c->err.message);
    return hr_error_set(err, c->st, "awq: %s backend: %s", c->be->name, c->err.message);
}

HrStatus
hr_awq_layer(HrAwqState *S, GHashTable *over, HrError *err)
{
    Ctx *cp = &S->c;
    const HrModelConfig *cfg = cp->cfg;
    const HrQuantOptions *opt = cp->opt;
    const HrTensorSet *ts = S->ts;
    const int D = cfg->dim, hd = cfg->head_dim, qd = cfg->n_heads * hd, kvd = cfg->n_kv_heads * hd;
    const int H = cfg->hidden_dim, T = S->T, l = S->layer;
    float *x = S->x, *y = S->y, *h1 = S->h1, *a = S->a, *h2 = S->h2, *act = S->act, *s = S->s;
    HrStatus st = HR_OK;
    if (l >= cfg->n_layers)
        return hr_error_set(err, HR_ERR_INVALID_ARG, "awq: no layer %d", l);
    S->layer++;
    {
        gint64 t_layer = g_get_monotonic_time();
        char name[256];
        LW w = { 0 };
        /* Gemma's block (sandwich_norms): the MLP's input norm is pre_feedforward_layernorm, and
         * post_attention_layernorm normalises the attention's output */
        const bool sw = cfg->sandwich_norms;
        /* norm: a (1 + w) norm where the model has them (the search takes 1 + w and writes back what it
         * divided, minus 1); write: back into over (the norms the search only reads are not) */
        struct { float **p; const char *suffix; int64_t numel; bool optional, norm, write; } parts[] = {
            { &w.ln1, "input_layernorm.weight", D, false, true, true },
            { &w.ln2, sw ? "pre_feedforward_layernorm.weight" : "post_attention_layernorm.weight", D, false, true,
              true },
            { &w.wq, "self_attn.q_proj.weight", (int64_t)qd * D, false, false, true },
            { &w.wk, "self_attn.k_proj.weight", (int64_t)kvd * D, false, false, true },
            { &w.wv, "self_attn.v_proj.weight", (int64_t)kvd * D, false, false, true },
            { &w.wo, "self_attn.o_proj.weight", (int64_t)D * qd, false, false, true },
            { &w.wg, "mlp.gate_proj.weight", (int64_t)H * D, false, false, true },
            { &w.wu, "mlp.up_proj.weight", (int64_t)H * D, false, false, true },
            { &w.wd, "mlp.down_proj.weight", (int64_t)D * H, false, false, true },
            { &w.bq, "self_attn.q_proj.bias", qd, true, false, true },
            { &w.bk, "self_attn.k_proj.bias", kvd, true, false, true },
            { &w.bv, "self_attn.v_proj.bias", kvd, true, false, true },
            { &w.qn, cfg->qk_norm ? "self_attn.q_norm.weight" : NULL, hd, false, true, false },
            { &w.kn, cfg->qk_norm ? "self_attn.k_norm.weight" : NULL, hd, false, true, false },
            { &w.post_attn, sw ? "post_attention_layernorm.weight" : NULL, D, false, true, false },
            { &w.post_mlp, sw ? "post_feedforward_layernorm.weight" : NULL, D, false, true, false },
        };
        for (size_t i = 0; i < G_N_ELEMENTS(parts); i++) {
            if (!parts[i].suffix)
                continue;
            g_snprintf(name, sizeof name, "model.layers.%d.%s", l, parts[i].suffix);
            float *v = *parts[i].p = load_f32(ts, name, parts[i].numel);
            if (!v && !parts[i].optional)
                st = hr_error_set(err, HR_ERR_FORMAT, "awq: %s missing or misshaped", name);
            for (int64_t k = 0; v && parts[i].norm && cfg->norm_plus_one && k < parts[i].numel; k++)
                v[k] += 1.0f;
        }
        if (st != HR_OK)
            goto done;
        cp->qn = w.qn;
        cp->kn = w.kn;
        /* the layer's attention, as engine/llama.c's ATTENTION node runs it */
        cp->local = cfg->rope_local_theta > 0.0f && hr_model_config_layer_local(cfg, l);
        cp->window = hr_model_config_layer_window(cfg, l);
        cp->softcap = cfg->attn_softcap;
        cp->attn_scale = cfg->query_scale > 0.0f ? 1.0f / sqrtf(cfg->query_scale) : 1.0f / sqrtf((float)hd);
        if (cp->odev && cfg->qk_norm && (st = hr_awq_device_qk_norm(cp->odev, w.qn, w.kn, err)) != HR_OK)
            goto done;
        if (!hr_awq_report(S, "calibrating", 0.0)) {
            st = hr_error_set(err, HR_ERR_CANCELLED, "quantization was cancelled");
            goto done;
        }
        /* FP forward of the layer: caches and the next input (on the
         * device, where the search keeps its data there: the blocks'
         * outputs r1, r2 are then not needed, the device makes its own
         * references) */
        if (cp->dev_keep) {   /* x: the first layer's input, then the last output kept there */
            const float *const wl[7] = { w.wq, w.wk, w.wv, w.wo, w.wg, w.wu, w.wd };
            cp->st = hr_awq_device_forward_kept(cp->odev, wl, qkv_bias(cp, &w), w.ln1, w.ln2, x, &cp->err);
            g_clear_pointer(&S->x, g_free);
        } else if (cp->dev_forward) {
            const float *const wl[7] = { w.wq, w.wk, w.wv, w.wo, w.wg, w.wu, w.wd };
            cp->st = hr_awq_device_forward(cp->odev, wl, qkv_bias(cp, &w), w.ln1, w.ln2, x, T, h1, a, h2, act, y,
                                           &cp->err);
        } else {
            /* (r1, r2: the blocks' outputs, o_proj's and down_proj's, the references of their searches; Gemma
             * normalises each before the residual add, in S->out) */
            packing_begin(cp);
            cp->recording = cp->delta;
            rmsnorm_rows(cp, h1, x, w.ln1, T, D);
            attn_block(cp, &w, h1, T, S->r1, a);
            if (w.post_attn)
                rmsnorm_rows(cp, S->out, S->r1, w.post_attn, T, D);
            add_rows(cp, y, x, w.post_attn ? S->out : S->r1, T, D);
            rmsnorm_rows(cp, h2, y, w.ln2, T, D);
            mlp_block(cp, &w, h2, T, S->r2, act);
            if (w.post_mlp)
                rmsnorm_rows(cp, S->out, S->r2, w.post_mlp, T, D);
            add_rows(cp, y, w.post_mlp ? S->out : S->r2, NULL, T, D);
            cp->recording = false;
            packing_end(cp);
        }
        gint64 t_phase = t_layer;
        trace_phase(cp, "forward", &t_phase);
        if ((st = backend_failed(cp, err)) != HR_OK)
            goto done;

        const int gq = hr_quant_linear_group(opt, qd, D), gk = hr_quant_linear_group(opt, kvd, D);
        const int gv = hr_quant_linear_group(opt, kvd, D), go = hr_quant_linear_group(opt, D, qd);
        const int gg = hr_quant_linear_group(opt, H, D), gd = hr_quant_linear_group(opt, D, H);
        GString *line = g_string_new(NULL);
        g_string_printf(line, "layer %d:", l);
        double best_loss, loss0;
        int bi;
        /* ln1 -> q, k, v (one group size for the three: the same K) */
        if (gq && gk && gv) {
            if (!hr_awq_report(S, "scale search", 0.1)) {
                g_string_free(line, TRUE);
                st = hr_error_set(err, HR_ERR_CANCELLED, "quantization was cancelled");
                goto done;
            }
            Group gr = { { &w.wq, &w.wk, &w.wv }, { qd, kvd, kvd }, 3, D, gq, G_QKV };
            bi = search_group(cp, &w, &gr, h1, T, D, S->r1, S->out, s, &best_loss, &loss0);
            fold_group(cp, &gr, s, h1, T);
            for (int k = 0; k < D; k++)
                w.ln1[k] /= s[k];
            trace_phase(cp, "qkv search", &t_phase);
            g_string_append_printf(line, " qkv a=%.2f loss %.3g (a=0 %.3g)", bi / (double)N_GRID, best_loss, loss0);
            if (bi < 0)
                g_string_append(line, " [warning: NaN/inf loss for every ratio, s=1]");
        }
        if (cfg->n_kv_heads == cfg->n_heads && gv && go) {
            if (!hr_awq_report(S, "scale search", 0.35)) {
                g_string_free(line, TRUE);
                st = hr_error_set(err, HR_ERR_CANCELLED, "quantization was cancelled");
                goto done;
            }
            Group gr = { { &w.wo }, { D }, 1, qd, go, G_VO };
            bi = search_group(cp, &w, &gr, a, T, D, NULL, S->out, s, &best_loss, &loss0);
            fold_group(cp, &gr, s, a, T);
            trace_phase(cp, "vo search", &t_phase);
            for (int r = 0; r < kvd; r++) {
                for (int k = 0; k < D; k++)
                    w.wv[(size_t)r * D + k] /= s[r];
                if (w.bv)
                    w.bv[r] /= s[r];
            }
            g_string_append_printf(line, " vo a=%.2f loss %.3g (a=0 %.3g)", bi / (double)N_GRID, best_loss, loss0);
            if (bi < 0)
                g_string_append(line, " [warning: NaN/inf loss for every ratio, s=1]");
        }
        if (gg) {
            if (!hr_awq_report(S, "scale search", 0.45)) {
                g_string_free(line, TRUE);
                st = hr_error_set(err, HR_ERR_CANCELLED, "quantization was cancelled");
                goto done;
            }
            Group gr = { { &w.wg, &w.wu }, { H, H }, 2, D, gg, G_GATEUP };
            bi = search_group(cp, &w, &gr, h2, T, D, S->r2, S->out, s, &best_loss, &loss0);
            fold_group(cp, &gr, s, h2, T);
            for (int k = 0; k < D; k++)
                w.ln2[k] /= s[k];
            trace_phase(cp, "gateup search", &t_phase);
            g_string_append_printf(line, " gateup a=%.2f loss %.3g (a=0 %.3g)", bi / (double)N_GRID, best_loss,
                                   loss0);
            if (bi < 0)
                g_string_append(line, " [warning: NaN/inf loss for every ratio, s=1]");
        }
        if (gd) { /* up rows take 1/s, quantized or not */
            if (!hr_awq_report(S, "scale search", 0.75)) {
                g_string_free(line, TRUE);
                st = hr_error_set(err, HR_ERR_CANCELLED, "quantization was cancelled");
                goto done;
            }
            Group gr = { { &w.wd }, { D }, 1, H, gd, G_DOWN };
            bi = search_group(cp, &w, &gr, act, T, D, NULL, S->out, s, &best_loss, &loss0);
            fold_group(cp, &gr, s, act, T);
            trace_phase(cp, "down search", &t_phase);
            for (int r = 0; r < H; r++)
                for (int k = 0; k < D; k++)
                    w.wu[(size_t)r * D + k] /= s[r];
            g_string_append_printf(line, " down a=%.2f loss %.3g (a=0 %.3g)", bi / (double)N_GRID, best_loss,
                                   loss0);
            if (bi < 0)
                g_string_append(line, " [warning: NaN/inf loss for every ratio, s=1]");
        }
        if ((st = backend_failed(cp, err)) != HR_OK) {
            g_string_free(line, TRUE);
            goto done;
        }
        if (!opt->awq_fold_only && !hr_awq_report(S, "clip search", 0.9)) {
            g_string_free(line, TRUE);
            st = hr_error_set(err, HR_ERR_CANCELLED, "quantization was cancelled");
            goto done;
        }
        if (!opt->awq_fold_only) {
            if (gv)
                clip_linear(cp, HR_AWQ_LIN_V, w.wv, kvd, D, gv, h1, T);
            if (go)
                clip_linear(cp, HR_AWQ_LIN_O, w.wo, D, qd, go, a, T);
            if (gg) {
                clip_linear(cp, HR_AWQ_LIN_GATE, w.wg, H, D, gg, h2, T);
                clip_linear(cp, HR_AWQ_LIN_UP, w.wu, H, D, gg, h2, T);
            }
            if (gd)
                clip_linear(cp, HR_AWQ_LIN_DOWN, w.wd, D, H, gd, act, T);
            trace_phase(cp, "clip search", &t_phase);
            /* a clip search that failed on the device left its linear (and
             * those after it) unclipped: an error, not a quieter checkpoint
             * (the last layer's was written as if nothing had happened) */
            if ((st = backend_failed(cp, err)) != HR_OK) {
                g_string_free(line, TRUE);
                goto done;
            }
        }
        g_string_append_printf(line, " (%.1f s)", (double)(g_get_monotonic_time() - t_layer) / 1e6);
        if (opt->log)
            opt->log(line->str, S->user);
        g_string_free(line, TRUE);
        for (size_t i = 0; i < G_N_ELEMENTS(parts); i++) {
            float *v = *parts[i].p;
            if (!v || !parts[i].write)
                continue;
            for (int64_t k = 0; parts[i].norm && cfg->norm_plus_one && k < parts[i].numel; k++)
                v[k] -= 1.0f;
            g_snprintf(name, sizeof name, "model.layers.%d.%s", l, parts[i].suffix);
            g_hash_table_insert(over, g_strdup(name), v);
            *parts[i].p = NULL;
        }
        {
            float *swap = S->x;
            S->x = S->y;
            S->y = swap;
        }
done:
        cp->qn = cp->kn = NULL;
        for (size_t i = 0; i < G_N_ELEMENTS(parts); i++)
            g_free(*parts[i].p);
    }
    return st;
}
