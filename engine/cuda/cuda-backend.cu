// cuda-backend.cu — the CUDA backend: a whole Llama-family model on one
// NVIDIA GPU behind the HrBackendOps table, by one of two front ends over
// the same planning, upload, launches and graphs: the model written here in
// CUDA (the default, described below), or the op table of engine/ops.h under
// engine/llama.c's forward (HEARTH_CUDA_OPS=1; its section near the end),
// which replaces the first once a device run has checked it.
//
// Memory: everything the model needs on the device (weights in the layouts
// of cuda-internal.h, the FP16 KV cache for context_len positions, scratch
// activations for a chunk of 64 tokens, 512 with the cuBLAS route) is laid
// out by one planning pass
// that runs twice: first only to add up the bytes (checked against
// cudaMemGetInfo before anything is allocated; the error quotes needed vs
// free), then to hand out pointers into a single cudaMalloc arena, so a
// failure at any later point frees everything with one cudaFree. Only the
// all-rows logits buffer (prefill with all_logits) is allocated on demand.
//
// Loading: tensors are repacked/converted on the host into two pinned
// staging buffers used in turn (an event per buffer), copied with
// cudaMemcpyAsync, with the progress callback after every layer.
// q/k/v are stored as one [q+2kv, dim] matrix and gate/up as one
// [2*hidden, dim] matrix when their formats agree (one launch each);
// otherwise they run as separate launches into the same output.
//
// Forward: one stream; a step's position, length and token ids live in a
// small device buffer (d_step) that the host fills with cudaMemcpyAsync from
// a ring of pinned slots before the kernels run, so no kernel argument
// depends on the position. The decode step (1 token, last-row logits +
// argmax) is captured once per model load as a CUDA graph and replayed;
// nothing synchronizes with the host inside forward(); get_logits() and
// the argmax read-back synchronize the stream.
#include "cuda-internal.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <vector>

extern "C" {
#include "cpu-kernels.h"
#include "gguf-blocks.h"
#include "gguf.h"
#include "hr-cuda-backend.h"
#include "hr-half.h"
#include "llama.h"
#include "q8-round.h"
}

using namespace hrcuda;

static_assert((int)TOPK_K == HR_CANDIDATES_MAX, "the device keeps as many candidates as the sampler takes");

namespace {

enum {
    CHUNK = 64,            // tokens per forward chunk (scratch is sized for it)
    CHUNK_BLAS = 512,      // ... with the cuBLAS route (each chunk dequantizes every matrix once)
    DECODE_SPLIT = 128,    // positions per flash-decoding split
    PREFILL_SPLITS = 8,    // splits per query in a prefill chunk
    STEP_SLOTS = 8,        // pinned host slots for d_step
    Q8_ROWS = 8,           // tokens the int8-activation scratch holds (the GEMV runs below 8)
};
const size_t STAGE_BYTES = (size_t)16 << 20;
const size_t RESERVE_BYTES = (size_t)256 << 20;   // CUDA context, graph, allocator slack

HrStatus
cuda_fail(HrError *err, cudaError_t e, const char *what)
{
    cudaGetLastError();   // clear a non-sticky error
    return hr_error_set(err, e == cudaErrorMemoryAllocation ? HR_ERR_NOMEM : HR_ERR_DEVICE, "CUDA: %s: %s (error %d)",
                        what, cudaGetErrorString(e), (int)e);
}

#define CK(call)                                    \
    do {                                            \
        cudaError_t e_ = (call);                    \
        if (e_ != cudaSuccess)                      \
            return cuda_fail(err, e_, #call);       \
    } while (0)

// One linear as the checkpoint has it.
struct SrcLinear {
    int kind;
    int rows, cols, ng;
    const HrTensor *w;                  // dense, or GGUF blocks (LIN_Q4F, LIN_I8)
    const HrTensor *qw, *qz, *sc;       // AWQ
    int per;                            // LIN_I8: inputs per scale
    bool off;                           // LIN_I8: an offset per 32
    bool round8;                        // LIN_I8 from dense rows, rounded to int8 per 32 at upload (lm_head_q8)
};

// A device matrix made of 1..3 source linears stacked by rows.
struct LinGroup {
    DLinear d;
    SrcLinear src[3];
    int n_src;
};

struct Layer {
    LinGroup qkv[3];
    int n_qkv;           // 1: fused q|k|v
    LinGroup o;
    LinGroup gu[2];
    int n_gu;            // 1: fused gate|up
    LinGroup down;
    const HrTensor *t_attn_norm, *t_ffn_norm, *t_bias[3];
    float *attn_norm, *ffn_norm, *bqkv;   // bqkv [q+2kv] or NULL
    __half *kc, *vc;                      // [ctx, kv_dim]
};

struct Ctx {
    HrModelConfig cfg;
    HrBackendOptions opt;
    int device;
    cudaStream_t s;
    Layer *layers;
    SrcLinear s_embed, s_lm_head;
    const HrTensor *t_final_norm;
    DLinear embed, lm_head;               // [vocab, dim], F16 or GGUF kinds; lm_head may alias embed
    bool tied;
    float *final_norm, *inv_freq;
    int q_dim, kv_dim, qkv_dim;
    // scratch
    int *d_step;
    float *x, *xn, *qkv, *att, *gu, *hb, *part, *logits1;
    int *d_argmax;
    int dec_splits, pre_split_len, part_splits;
    // arena
    char *arena;
    size_t weight_bytes, kv_bytes, scratch_bytes;
    // all-rows logits
    float *logits_all;
    int logits_all_cap;
    const float *logits_src;
    int logits_rows;
    // step slots
    int *h_step;                          // pinned [STEP_SLOTS][step_ints]
    cudaEvent_t step_ev[STEP_SLOTS];
    int step_next;
    // graph
    cudaGraph_t graph;
    cudaGraphExec_t graph_exec;
    GemmPath path;
    // opt-in paths (engine/cuda/README.md); chunk: tokens per forward chunk
    int chunk, step_ints;   // step_ints = 2 + chunk: pos, n_tokens, ids
    bool q8, attn_tiled;
    int dec_split_len;
    LinWork wk;
    // the device part of a draw (HEARTH_DEVICE_SAMPLING=1, opt-in; engine/sampler.h)
    bool draws, have_spec, sampled;
    HrSampleSpec spec;
    SampleParams *d_prm;
    int32_t *d_seen;                      // [vocab]: distinct ids
    float *cand_v[2];
    uint32_t *cand_i[2];
    float *topk_stats;
    TopkRes *d_res;
    char *h_sample;                       // pinned: SampleParams | TopkRes | seen [vocab]
    cudaEvent_t sample_ev;                // the last copy out of h_sample's seen ids
    cudaGraph_t graph_s;                  // the decode step with the draw
    cudaGraphExec_t graph_exec_s;
};

// ---- planning ------------------------------------------------------------------

HrStatus
find_dense(const HrTensorSet *ts, const char *name, int64_t rows, int64_t cols, const HrTensor **out, HrError *err)
{
    const HrTensor *t = hr_tensor_set_find(ts, name);
    if (!t)
        return hr_error_set(err, HR_ERR_FORMAT, "tensor '%s' is missing", name);
    if (t->dtype != HR_DTYPE_F32 && t->dtype != HR_DTYPE_F16 && t->dtype != HR_DTYPE_BF16)
        return hr_error_set(err, HR_ERR_UNSUPPORTED, "%s: tensor '%s' has dtype %s; the CUDA backend reads F32, F16 "
                            "or BF16 here", t->file, name, hr_dtype_name(t->dtype));
    bool ok = cols == 0 ? (t->n_dims == 1 && t->shape[0] == rows)
                        : (t->n_dims == 2 && t->shape[0] == rows && t->shape[1] == cols);
    if (!ok)
        return hr_error_set(err, HR_ERR_FORMAT, "%s: tensor '%s' does not have the shape [%lld%s%lld%s] the config "
                            "needs", t->file, name, (long long)rows, cols ? ", " : "", (long long)cols,
                            cols ? "" : " (1-D)");
    *out = t;
    return HR_OK;
}

HrStatus
check_awq(const HrTensor *t, const char *name, HrDType dt, int64_t d0, int64_t d1, HrError *err)
{
    if (!t)
        return hr_error_set(err, HR_ERR_FORMAT, "AWQ tensor '%s' is missing", name);
    if (t->dtype != dt || t->n_dims != 2 || t->shape[0] != d0 || t->shape[1] != d1)
        return hr_error_set(err, HR_ERR_FORMAT, "%s: AWQ tensor '%s' is %s with %d dims; expected %s [%lld, %lld]",
                            t->file, name, hr_dtype_name(t->dtype), t->n_dims, hr_dtype_name(dt), (long long)d0,
                            (long long)d1);
    return HR_OK;
}

// The GGUF block types the CUDA backend reads (cuda-gguf.h): 4-bit groups
// of 32 (LIN_Q4F) and int8-exact types (LIN_I8). Opt-in until a device run
// has checked them: HEARTH_CUDA_GGUF=1.
bool
ggml_q4f(uint32_t type)
{
    return type == HR_GGML_Q4_0 || type == HR_GGML_Q4_1 || type == HR_GGML_Q4_K;
}

bool
takes_ggml(uint32_t type)
{
    const char *e = getenv("HEARTH_CUDA_GGUF");
    return e && strcmp(e, "1") == 0 && (ggml_q4f(type) || hr_ggml_q8_per(type) > 0);
}

// A matrix [rows, cols] that is not AWQ: dense (stored as FP16 rows) or GGUF
// blocks; table: the embedding (gathered by launch_embed_linear, which has
// no Q4 kind).
HrStatus
plan_matrix(const HrTensorSet *ts, const char *name, int rows, int cols, bool table, SrcLinear *L, HrError *err)
{
    memset(L, 0, sizeof *L);
    L->rows = rows;
    L->cols = cols;
    const HrTensor *t = hr_tensor_set_find(ts, name);
    if (!t || t->dtype != HR_DTYPE_GGML) {
        L->kind = LIN_F16;
        return find_dense(ts, name, rows, cols, &L->w, err);
    }
    int block = 0;
    size_t block_bytes = 0;
    if (!takes_ggml(t->ggml_type) || !hr_ggml_type_block(t->ggml_type, &block, &block_bytes))
        return hr_error_set(err, HR_ERR_UNSUPPORTED, "%s: tensor '%s' is GGUF %s, which the CUDA backend does not "
                            "read%s", t->file, name, hr_tensor_type_name(t),
                            getenv("HEARTH_CUDA_GGUF") ? "" : " (HEARTH_CUDA_GGUF=1 opts in to the GGUF kernels)");
    if (t->n_dims != 2 || t->shape[0] != rows || t->shape[1] != cols || cols % block != 0 ||
        t->n_bytes < (size_t)rows * (size_t)(cols / block) * block_bytes)
        return hr_error_set(err, HR_ERR_FORMAT, "%s: GGUF tensor '%s' is not [%d, %d] in whole blocks of %d", t->file,
                            name, rows, cols, block);
    L->w = t;
    if (t->ggml_type == HR_GGML_Q4_0 && rows % 8 == 0 && !table) {
        // Q4_0 is the AWQ layout's s * (q - z) exactly (s = d, z = 8): every
        // 4-bit kernel and opt-in path applies (cuda-repack.cu repack_q4_0_rows)
        L->kind = LIN_Q4;
        L->ng = cols / 32;
    } else if (ggml_q4f(t->ggml_type)) {
        L->kind = LIN_Q4F;
        L->ng = cols / 32;
    } else {
        L->kind = LIN_I8;
        L->per = hr_ggml_q8_per(t->ggml_type);
        L->off = hr_ggml_q8_has_offset(t->ggml_type);
    }
    return HR_OK;
}

// The lm_head of a 4-bit model as int8 per block of 32 (HEARTH_CUDA_LM_HEAD=q8,
// opt-in until a device run has measured it), rounded at upload as the CPU
// rounds its int8 lm_head (q8-round.h): the LIN_I8 kernels read half the
// bytes of the FP16 rows a decode step. A tied lm_head then gets its own
// matrix beside the embedding's rows.
bool
lm_head_q8(const HrModelConfig &cfg, const HrTensorSet *ts, const char *name, int cols)
{
    const char *e = getenv("HEARTH_CUDA_LM_HEAD");
    const HrTensor *t = hr_tensor_set_find(ts, name);
    return cfg.awq && e && strcmp(e, "q8") == 0 && cols % 32 == 0 && t && t->dtype != HR_DTYPE_GGML;
}

HrStatus
plan_lm_head(const HrModelConfig &cfg, const HrTensorSet *ts, const char *name, int rows, int cols, SrcLinear *L,
             HrError *err)
{
    HrStatus st = plan_matrix(ts, name, rows, cols, false, L, err);
    if (st == HR_OK && L->kind == LIN_F16 && lm_head_q8(cfg, ts, name, cols)) {
        L->kind = LIN_I8;
        L->per = 32;
        L->round8 = true;
    }
    return st;
}

HrStatus
plan_linear(const Ctx *c, const HrTensorSet *ts, const char *prefix, int rows, int cols, SrcLinear *L, HrError *err)
{
    char qn[192], zn[192], sn[192], wn[192];
    snprintf(qn, sizeof qn, "%s.qweight", prefix);
    memset(L, 0, sizeof *L);
    L->rows = rows;
    L->cols = cols;
    if (hr_tensor_set_find(ts, qn)) {
        if (!c->cfg.awq)
            return hr_error_set(err, HR_ERR_FORMAT, "tensor '%s' is AWQ-quantized but config.json has no AWQ "
                                "quantization_config", qn);
        snprintf(zn, sizeof zn, "%s.qzeros", prefix);
        snprintf(sn, sizeof sn, "%s.scales", prefix);
        if (rows % 8 != 0 || cols % 2 != 0)
            return hr_error_set(err, HR_ERR_UNSUPPORTED, "AWQ linear '%s' is [%d, %d]: out must be a multiple of 8 "
                                "and in even", prefix, rows, cols);
        const HrTensor *s = hr_tensor_set_find(ts, sn);
        if (!s || s->n_dims != 2 || s->shape[0] < 1)
            return hr_error_set(err, HR_ERR_FORMAT, "AWQ tensor '%s' is missing or not 2-D", sn);
        const int64_t ng = s->shape[0];
        if (cols % ng != 0 || (cols / ng) % 2 != 0)
            return hr_error_set(err, HR_ERR_FORMAT, "%s: '%s' has %lld groups, which do not split the %d inputs "
                                "into even groups", s->file, sn, (long long)ng, cols);
        if (ng > 1 && (cols / ng) % 8 != 0)
            return hr_error_set(err, HR_ERR_UNSUPPORTED, "%s: '%s': the CUDA backend needs AWQ groups that are a "
                                "multiple of 8 inputs (or one group per row); this one is %lld", s->file, sn,
                                (long long)(cols / ng));
        HrStatus st;
        L->qw = hr_tensor_set_find(ts, qn);
        L->qz = hr_tensor_set_find(ts, zn);
        L->sc = s;
        if ((st = check_awq(L->qw, qn, HR_DTYPE_I32, cols, rows / 8, err)) ||
            (st = check_awq(L->qz, zn, HR_DTYPE_I32, ng, rows / 8, err)) ||
            (st = check_awq(L->sc, sn, HR_DTYPE_F16, ng, rows, err)))
            return st;
        L->kind = LIN_Q4;
        L->ng = (int)ng;
        return HR_OK;
    }
    snprintf(wn, sizeof wn, "%s.weight", prefix);
    return plan_matrix(ts, wn, rows, cols, false, L, err);
}

// Stack sources into groups: all in one when their formats agree.
void
group_linears(const SrcLinear *src, int n, LinGroup *groups, int *n_groups)
{
    bool same = true;
    for (int i = 1; i < n; i++)
        same = same && src[i].kind == src[0].kind && src[i].ng == src[0].ng && src[i].cols == src[0].cols &&
               src[i].per == src[0].per && src[i].off == src[0].off;
    if (same) {
        *n_groups = 1;
        memset(&groups[0], 0, sizeof groups[0]);
        for (int i = 0; i < n; i++) {
            groups[0].src[i] = src[i];
            groups[0].d.rows += src[i].rows;
        }
        groups[0].n_src = n;
    } else {
        *n_groups = n;
        for (int i = 0; i < n; i++) {
            memset(&groups[i], 0, sizeof groups[i]);
            groups[i].src[0] = src[i];
            groups[i].n_src = 1;
            groups[i].d.rows = src[i].rows;
        }
    }
    for (int g = 0; g < *n_groups; g++) {
        DLinear &d = groups[g].d;
        const SrcLinear &s0 = groups[g].src[0];
        d.kind = s0.kind;
        d.cols = s0.cols;
        if (d.kind == LIN_Q4) {
            d.kw = q4_kw(d.cols);
            d.ng = s0.ng;
            d.group = d.cols / d.ng;
        } else if (d.kind == LIN_Q4F) {
            d.ng = d.cols / 32;
            d.group = 32;
        } else if (d.kind == LIN_I8) {
            d.per = s0.per;
            d.ng = s0.off ? d.cols / 32 : 0;   // offsets per 32, or none
        } else {
            d.ldw = f16_ldw(d.cols);
        }
    }
}

// A bump allocator over the arena; with base == NULL it only adds up.
struct Arena {
    char *base;
    size_t off;
    template <typename T>
    T *take(size_t count, size_t *account)
    {
        const size_t bytes = (count * sizeof(T) + 255) / 256 * 256;
        T *p = base ? reinterpret_cast<T *>(base + off) : nullptr;
        off += bytes;
        *account += bytes;
        return p;
    }
};

void
assign_linear(Arena &a, DLinear &d, size_t *acct)
{
    const size_t R = (size_t)d.rows, K = (size_t)d.cols;
    if (d.kind == LIN_Q4) {
        d.q = a.take<uint32_t>((size_t)d.rows * (size_t)d.kw, acct);
        d.sz = a.take<__half2>((size_t)d.rows * (size_t)d.ng, acct);
    } else if (d.kind == LIN_Q4F) {
        d.nib = a.take<uint8_t>(R * K / 2, acct);
        d.so = a.take<float2>(R * (K / 32), acct);
    } else if (d.kind == LIN_I8) {
        d.q8 = a.take<int8_t>(R * K, acct);
        d.s8 = a.take<float>(R * (K / d.per), acct);
        d.o8 = d.ng ? a.take<float>(R * (size_t)d.ng, acct) : nullptr;
    } else {
        d.w = a.take<__half>((size_t)d.rows * (size_t)d.ldw, acct);
    }
}

// The bytes assign_linear takes for d (counted on a copy by an arena without a base).
size_t
dlinear_bytes(const DLinear &d)
{
    Arena a = { nullptr, 0 };
    DLinear copy = d;
    size_t bytes = 0;
    assign_linear(a, copy, &bytes);
    return bytes;
}

void assign_path_scratch(Ctx *c, Arena &a, const std::vector<const DLinear *> &lins, const float *pre_x,
                         int logit_rows);

void
assign_all(Ctx *c, Arena &a)
{
    const HrModelConfig &cfg = c->cfg;
    const int dim = cfg.dim, H = cfg.hidden_dim, hd = cfg.head_dim, ctx = c->opt.context_len;
    c->weight_bytes = c->kv_bytes = c->scratch_bytes = 0;
    size_t *wb = &c->weight_bytes, *kb = &c->kv_bytes, *sb = &c->scratch_bytes;
    assign_linear(a, c->embed, wb);
    if (c->tied)
        c->lm_head = c->embed;
    else
        assign_linear(a, c->lm_head, wb);
    c->final_norm = a.take<float>((size_t)dim, wb);
    c->inv_freq = a.take<float>((size_t)hd / 2, wb);
    for (int l = 0; l < cfg.n_layers; l++) {
        Layer &L = c->layers[l];
        L.attn_norm = a.take<float>((size_t)dim, wb);
        L.ffn_norm = a.take<float>((size_t)dim, wb);
        L.bqkv = cfg.qkv_bias ? a.take<float>((size_t)c->qkv_dim, wb) : nullptr;
        for (int i = 0; i < L.n_qkv; i++)
            assign_linear(a, L.qkv[i].d, wb);
        assign_linear(a, L.o.d, wb);
        for (int i = 0; i < L.n_gu; i++)
            assign_linear(a, L.gu[i].d, wb);
        assign_linear(a, L.down.d, wb);
        L.kc = a.take<__half>((size_t)ctx * (size_t)c->kv_dim, kb);
        L.vc = a.take<__half>((size_t)ctx * (size_t)c->kv_dim, kb);
    }
    const size_t CH = (size_t)c->chunk;
    c->d_step = a.take<int>((size_t)c->step_ints, sb);
    c->x = a.take<float>(CH * dim, sb);
    c->xn = a.take<float>(CH * dim, sb);
    c->qkv = a.take<float>(CH * c->qkv_dim, sb);
    c->att = a.take<float>(CH * c->q_dim, sb);
    c->gu = a.take<float>(CH * 2 * H, sb);
    c->hb = a.take<float>(CH * H, sb);
    // the opt-in paths' scratch, sized for the widest 4-bit matrix
    std::vector<const DLinear *> lins;
    for (int l = 0; l < cfg.n_layers; l++) {
        const Layer &L = c->layers[l];
        const LinGroup *gs[] = { &L.qkv[0], &L.qkv[1], &L.qkv[2], &L.o, &L.gu[0], &L.gu[1], &L.down };
        const bool used[] = { true, L.n_qkv > 1, L.n_qkv > 2, true, true, L.n_gu > 1, true };
        for (int i = 0; i < 7; i++)
            if (used[i])
                lins.push_back(&gs[i]->d);
    }
    assign_path_scratch(c, a, lins, c->xn, 1);
}

// The scratch of the paths and the draw, beside the model's activations:
// the q8 GEMV's int8 activations (pre_x: the buffer the RMSNorms write,
// rounded by the norm itself), the cuBLAS route's FP16 operands, attention
// partials, logit_rows rows of logits (logits1), the argmax and the draw's
// candidates. lins: every matrix the layers run (the widest 4-bit one sizes
// the paths' scratch).
void
assign_path_scratch(Ctx *c, Arena &a, const std::vector<const DLinear *> &lins, const float *pre_x, int logit_rows)
{
    const HrModelConfig &cfg = c->cfg;
    const int dim = cfg.dim, H = cfg.hidden_dim, hd = cfg.head_dim;
    size_t *sb = &c->scratch_bytes;
    const size_t CH = (size_t)c->chunk;
    const int widest = dim > H ? dim : H;
    size_t max_kp = 0, max_wh = 0, max_ldh = (size_t)f16_ldw(widest > c->q_dim ? widest : c->q_dim);
    for (const DLinear *d : lins) {
        if (d->kind != LIN_Q4)
            continue;
        max_kp = (size_t)d->kw * 8 > max_kp ? (size_t)d->kw * 8 : max_kp;
        max_wh = (size_t)d->rows * d->kw * 8 > max_wh ? (size_t)d->rows * d->kw * 8 : max_wh;
    }
    c->wk.xq = nullptr;
    c->wk.xs = nullptr;
    c->wk.xq_rows = 0;
    c->wk.pre_x = nullptr;
    c->wk.pre_xq = nullptr;
    c->wk.pre_xs = nullptr;
    c->wk.fast_gemv = c->q8;
    if (c->q8 && max_kp > 0) {
        c->wk.xq = a.take<int8_t>(Q8_ROWS * max_kp, sb);
        c->wk.xs = a.take<float2>(Q8_ROWS * (max_kp / 32), sb);
        c->wk.xq_rows = Q8_ROWS;
        // the normed activations (inputs of q|k|v, gate|up, lm_head), rounded by the norm itself
        const size_t kp = (size_t)q4_kw(dim) * 8;
        c->wk.pre_x = pre_x;
        c->wk.pre_cols = dim;
        c->wk.pre_xq = a.take<int8_t>(Q8_ROWS * kp, sb);
        c->wk.pre_xs = a.take<float2>(Q8_ROWS * (kp / 32), sb);
    }
    c->wk.wh = nullptr;
    c->wk.xh = nullptr;
    c->wk.wh_halves = c->wk.xh_halves = 0;
    if (c->wk.blas) {
        c->wk.wh = max_wh ? a.take<__half>(max_wh, sb) : nullptr;
        c->wk.wh_halves = max_wh;
        c->wk.xh = a.take<__half>(CH * max_ldh, sb);
        c->wk.xh_halves = CH * max_ldh;
    }
    const size_t part_rows = (size_t)(c->chunk * PREFILL_SPLITS > c->dec_splits ? c->chunk * PREFILL_SPLITS
                                                                                  : c->dec_splits);
    c->part = a.take<float>(part_rows * (size_t)cfg.n_heads * (size_t)(hd + 2), sb);
    c->logits1 = a.take<float>((size_t)logit_rows * (size_t)cfg.vocab_size, sb);
    c->d_argmax = a.take<int>(1, sb);
    if (c->draws) {
        const size_t g0 = (size_t)topk_blocks(cfg.vocab_size);
        c->d_prm = a.take<SampleParams>(1, sb);
        c->d_seen = a.take<int32_t>((size_t)cfg.vocab_size, sb);
        for (int i = 0; i < 2; i++) {
            c->cand_v[i] = a.take<float>(g0 * TOPK_K, sb);
            c->cand_i[i] = a.take<uint32_t>(g0 * TOPK_K, sb);
        }
        c->topk_stats = a.take<float>(3 * g0, sb);
        c->d_res = a.take<TopkRes>(1, sb);
    }
}

// ---- upload ----------------------------------------------------------------------

struct Stager {
    void *buf[2];
    cudaEvent_t ev[2];
    int cur;
    cudaStream_t s;
    HrThreadPool *pool;   // HEARTH_CUDA_REPACK=layout: the shared transposition on this pool
};

void *
stage_begin(Stager &st)
{
    cudaEventSynchronize(st.ev[st.cur]);   // its previous copy has finished
    return st.buf[st.cur];
}

cudaError_t
stage_end(Stager &st)
{
    cudaError_t e = cudaEventRecord(st.ev[st.cur], st.s);
    st.cur ^= 1;
    return e;
}

HrStatus
upload_vec_f32(Stager &st, const HrTensor *t, int n, float *dst, int at, HrError *err)
{
    float *h = static_cast<float *>(stage_begin(st));
    const char *src = static_cast<const char *>(t->data);   // maybe misaligned: memcpy per element
    for (int i = 0; i < n; i++) {
        if (t->dtype == HR_DTYPE_F32) {
            memcpy(&h[i], src + 4 * (size_t)i, 4);
        } else {
            uint16_t u;
            memcpy(&u, src + 2 * (size_t)i, 2);
            h[i] = t->dtype == HR_DTYPE_F16 ? hr_f16_to_f32(u) : hr_bf16_to_f32(u);
        }
    }
    CK(cudaMemcpyAsync(dst + at, h, sizeof(float) * (size_t)n, cudaMemcpyHostToDevice, st.s));
    CK(stage_end(st));
    return HR_OK;
}

// GGUF rows decoded into the LIN_Q4F / LIN_I8 layout (gguf-blocks.h gives
// ggml's own factors), or dense rows rounded to int8 (round8), staged a
// batch of rows at a time.
HrStatus
upload_ggml(Stager &st, const DLinear &d, const SrcLinear &s, int row_off, HrError *err)
{
    const HrTensor *t = s.w;
    int block = 32;
    size_t block_bytes = 0;
    if (!s.round8)
        hr_ggml_type_block(t->ggml_type, &block, &block_bytes);
    const size_t K = (size_t)s.cols, src_row = K / (size_t)block * block_bytes;
    std::vector<float> row(s.round8 ? K : 0);   // round8: one dense row as FP32
    const HrMat dense = { t->data, t->dtype, s.rows, s.cols };
    const size_t n_sc = d.kind == LIN_I8 ? K / (size_t)d.per : 0, n_off = d.kind == LIN_I8 ? (size_t)d.ng : 0;
    // per row: nibbles and {scale, offset}, or int8, scales and offsets; beside
    // them one row's FP32 scales and offsets (Q4F) and the sections' alignment
    const size_t row_bytes = d.kind == LIN_Q4F ? K / 2 + 8 * (K / 32) : K + 4 * n_sc + 4 * n_off;
    const int per = (int)((STAGE_BYTES - 8 * (K / 32) - 64) / row_bytes);
    if (per < 1)
        return hr_error_set(err, HR_ERR_UNSUPPORTED, "GGUF rows of %d inputs are too wide to stage", s.cols);
    for (int r0 = 0; r0 < s.rows; r0 += per) {
        const int r1 = r0 + per < s.rows ? r0 + per : s.rows;
        const size_t n = (size_t)(r1 - r0);
        char *h = static_cast<char *>(stage_begin(st));
        const uint8_t *src = static_cast<const uint8_t *>(t->data) + (size_t)r0 * src_row;
        const size_t dst = (size_t)(row_off + r0);
        if (d.kind == LIN_Q4F) {
            uint8_t *nib = reinterpret_cast<uint8_t *>(h);
            float2 *so = reinterpret_cast<float2 *>(h + (n * K / 2 + 15) / 16 * 16);
            float *sc = reinterpret_cast<float *>(so + n * (K / 32)), *of = sc + K / 32;
            for (size_t r = 0; r < n; r++) {
                hr_ggml_q4_groups(t->ggml_type, src + r * src_row, (int64_t)K, nib + r * (K / 2), sc, of);
                for (size_t g = 0; g < K / 32; g++)
                    so[r * (K / 32) + g] = make_float2(sc[g], of[g]);
            }
            CK(cudaMemcpyAsync(d.nib + dst * (K / 2), nib, n * (K / 2), cudaMemcpyHostToDevice, st.s));
            CK(cudaMemcpyAsync(d.so + dst * (K / 32), so, sizeof(float2) * n * (K / 32), cudaMemcpyHostToDevice,
                               st.s));
        } else {
            int8_t *q = reinterpret_cast<int8_t *>(h);
            float *sc = reinterpret_cast<float *>(h + (n * K + 15) / 16 * 16), *of = sc + n * n_sc;
            for (size_t r = 0; r < n; r++) {
                if (s.round8) {   // dense rows rounded per 32 (lm_head_q8)
                    hr_mat_row_f32(&dense, r0 + (int)r, row.data(), s.cols);
                    for (size_t b = 0; b < K / 32; b++)
                        sc[r * n_sc + b] = hr_q8_round32(row.data() + 32 * b, q + r * K + 32 * b);
                    continue;
                }
                int got = 0;
                hr_ggml_q8_groups(t->ggml_type, src + r * src_row, (int64_t)K, q + r * K, sc + r * n_sc,
                                  n_off ? of + r * n_off : nullptr, &got);
            }
            CK(cudaMemcpyAsync(d.q8 + dst * K, q, n * K, cudaMemcpyHostToDevice, st.s));
            CK(cudaMemcpyAsync(d.s8 + dst * n_sc, sc, sizeof(float) * n * n_sc, cudaMemcpyHostToDevice, st.s));
            if (n_off)
                CK(cudaMemcpyAsync(d.o8 + dst * n_off, of, sizeof(float) * n * n_off, cudaMemcpyHostToDevice, st.s));
        }
        CK(stage_end(st));
    }
    return HR_OK;
}

// Source s into rows [row_off, row_off + s.rows) of the device matrix d.
HrStatus
upload_src(Stager &st, const DLinear &d, const SrcLinear &s, int row_off, HrError *err)
{
    if (d.kind == LIN_Q4) {
        const size_t row_bytes = 4 * (size_t)d.kw + 4 * (size_t)d.ng;
        int per = (int)(STAGE_BYTES / row_bytes) / 8 * 8;
        if (per < 8)
            return hr_error_set(err, HR_ERR_UNSUPPORTED, "AWQ rows of %d inputs are too wide to stage", d.cols);
        for (int r0 = 0; r0 < s.rows; r0 += per) {
            const int r1 = r0 + per < s.rows ? r0 + per : s.rows;
            uint32_t *hq = static_cast<uint32_t *>(stage_begin(st));
            uint32_t *hsz = hq + (size_t)(r1 - r0) * (size_t)d.kw;
            if (!s.qw)   // GGUF Q4_0
                repack_q4_0_rows(s.w->data, s.cols, r0, r1, hq, hsz);
            else if (st.pool)
                repack_awq_rows_layout(st.pool, s.qw->data, s.qz->data, s.sc->data, s.rows, s.cols, s.ng, r0, r1,
                                       hq, hsz);
            else
                repack_awq_rows(s.qw->data, s.qz->data, s.sc->data, s.rows, s.cols, s.ng, r0, r1, hq, hsz);
            CK(cudaMemcpyAsync(d.q + (size_t)(row_off + r0) * d.kw, hq, 4 * (size_t)(r1 - r0) * d.kw,
                               cudaMemcpyHostToDevice, st.s));
            CK(cudaMemcpyAsync(d.sz + (size_t)(row_off + r0) * d.ng, hsz, 4 * (size_t)(r1 - r0) * d.ng,
                               cudaMemcpyHostToDevice, st.s));
            CK(stage_end(st));
        }
        return HR_OK;
    }
    if (gguf_kind(d.kind))
        return upload_ggml(st, d, s, row_off, err);
    const size_t row_bytes = 2 * (size_t)d.ldw;
    int per = (int)(STAGE_BYTES / row_bytes);
    if (per < 1)
        return hr_error_set(err, HR_ERR_UNSUPPORTED, "rows of %d inputs are too wide to stage", d.cols);
    for (int r0 = 0; r0 < s.rows; r0 += per) {
        const int r1 = r0 + per < s.rows ? r0 + per : s.rows;
        uint16_t *h = static_cast<uint16_t *>(stage_begin(st));
        convert_rows_f16(s.w->data, (int)s.w->dtype, s.cols, d.ldw, r0, r1, h);
        CK(cudaMemcpyAsync(d.w + (size_t)(row_off + r0) * d.ldw, h, row_bytes * (size_t)(r1 - r0),
                           cudaMemcpyHostToDevice, st.s));
        CK(stage_end(st));
    }
    return HR_OK;
}

HrStatus
upload_group(Stager &st, const LinGroup &g, HrError *err)
{
    int row_off = 0;
    for (int i = 0; i < g.n_src; i++) {
        HrStatus rc = upload_src(st, g.d, g.src[i], row_off, err);
        if (rc != HR_OK)
            return rc;
        row_off += g.src[i].rows;
    }
    return HR_OK;
}

// ---- forward ----------------------------------------------------------------------

void
run_group(Ctx *c, const LinGroup *g, int n, const float *x, int ldx, int T, const float *bias, float *out, int ldo,
          Epilogue epi)
{
    int off = 0;
    for (int i = 0; i < n; i++) {
        launch_linear(g[i].d, x, ldx, T, bias ? bias + off : nullptr, out + off, ldo, epi, c->path, c->s, &c->wk);
        off += g[i].d.rows;
    }
}

// Whether a chunk of T tokens runs its linears as GEMVs (launch_linear's choice).
bool
gemv_path(const Ctx *c, int T)
{
    return c->path == PATH_GEMV || (c->path == PATH_AUTO && T < 8);
}

// RMSNorm into c->xn; on the q8 GEMV path the norm also rounds its output
// for the linears that read xn (LinWork.pre_x).
void
norm(Ctx *c, const float *x, const float *w, int T)
{
    const HrModelConfig &cfg = c->cfg;
    const bool gemv = gemv_path(c, T);
    if (c->wk.pre_xq && gemv && T <= c->wk.xq_rows)
        launch_rmsnorm_q8(x, w, c->xn, T, cfg.dim, cfg.norm_eps, q4_kw(cfg.dim) * 8, c->wk.pre_xq, c->wk.pre_xs,
                          c->s);
    else
        launch_rmsnorm(x, w, c->xn, T, cfg.dim, cfg.norm_eps, c->s);
}

// One chunk of T tokens whose ids/position are in d_step; logits (when not
// NULL) for the last row, or every row when all.
void
run_chunk(Ctx *c, int T, float *logits, bool all)
{
    const HrModelConfig &cfg = c->cfg;
    const int dim = cfg.dim, H = cfg.hidden_dim, hd = cfg.head_dim;
    cudaStream_t s = c->s;
    const bool decode = T == 1;
    const int split_len = decode ? c->dec_split_len : c->pre_split_len;
    const int max_splits = decode ? c->dec_splits : PREFILL_SPLITS;
    launch_embed_linear(c->embed, c->d_step + 2, T, dim, c->x, s);
    for (int l = 0; l < cfg.n_layers; l++) {
        Layer &L = c->layers[l];
        norm(c, c->x, L.attn_norm, T);
        run_group(c, L.qkv, L.n_qkv, c->xn, dim, T, L.bqkv, c->qkv, c->qkv_dim, EPI_STORE);
        if (c->attn_tiled)
            launch_rope_kv_wide(c->qkv, L.kc, L.vc, c->inv_freq, c->d_step, T, cfg.n_heads, cfg.n_kv_heads, hd, s);
        else
            launch_rope_kv(c->qkv, L.kc, L.vc, c->inv_freq, c->d_step, T, cfg.n_heads, cfg.n_kv_heads, hd, s);
        if (c->attn_tiled && T >= 16 && attention_tc_ok(cfg.n_heads, cfg.n_kv_heads, hd))
            launch_attention_tc(c->qkv, c->qkv_dim, L.kc, L.vc, c->att, c->d_step, T, cfg.n_heads, cfg.n_kv_heads, hd,
                                cfg.sliding_window, s);
        else if (c->attn_tiled)
            launch_attention_tiled(c->qkv, c->qkv_dim, L.kc, L.vc, c->part, c->att, c->d_step, T, cfg.n_heads,
                                   cfg.n_kv_heads, hd, cfg.sliding_window, split_len, max_splits, s);
        else
            launch_attention(c->qkv, c->qkv_dim, L.kc, L.vc, c->part, c->att, c->d_step, T, cfg.n_heads,
                             cfg.n_kv_heads, hd, cfg.sliding_window, split_len, max_splits, s);
        launch_linear(L.o.d, c->att, c->q_dim, T, nullptr, c->x, dim, EPI_RESIDUAL, c->path, s, &c->wk);
        norm(c, c->x, L.ffn_norm, T);
        const bool gemv = gemv_path(c, T);
        if (L.n_gu == 1 && gemv) {
            launch_linear(L.gu[0].d, c->xn, dim, T, nullptr, c->hb, H, EPI_SILU_MUL, c->path, s, &c->wk);
        } else {
            run_group(c, L.gu, L.n_gu, c->xn, dim, T, nullptr, c->gu, 2 * H, EPI_STORE);
            launch_silu_mul(c->gu, H, T, c->hb, s);
        }
        launch_linear(L.down.d, c->hb, H, T, nullptr, c->x, dim, EPI_RESIDUAL, c->path, s, &c->wk);
    }
    if (!logits)
        return;
    const int rows = all ? T : 1;
    const float *xs = c->x + (size_t)(all ? 0 : T - 1) * dim;
    norm(c, xs, c->final_norm, rows);
    launch_linear(c->lm_head, c->xn, dim, rows, nullptr, logits, cfg.vocab_size, EPI_STORE, c->path, s, &c->wk);
    launch_argmax(logits + (size_t)(rows - 1) * cfg.vocab_size, cfg.vocab_size, c->d_argmax, s);
}

HrStatus
put_step(Ctx *c, const int32_t *tokens, int T, int pos, HrError *err)
{
    const int slot = c->step_next;
    c->step_next = (slot + 1) % STEP_SLOTS;
    CK(cudaEventSynchronize(c->step_ev[slot]));   // the copy that last used it is done
    int *h = c->h_step + (size_t)slot * c->step_ints;
    h[0] = pos;
    h[1] = T;
    memcpy(h + 2, tokens, sizeof(int) * (size_t)T);
    CK(cudaMemcpyAsync(c->d_step, h, sizeof(int) * (size_t)(2 + T), cudaMemcpyHostToDevice, c->s));
    CK(cudaEventRecord(c->step_ev[slot], c->s));
    return HR_OK;
}

// The draw's kernels after a decode step: the penalty on logits1, the top-k
// passes into d_res.
void
run_sample(Ctx *c)
{
    launch_sample(c->logits1, c->cfg.vocab_size, c->d_seen, c->d_prm, c->cand_v, c->cand_i, c->topk_stats, c->d_res,
                  c->s);
}

// What run() launches on stream s, captured as a graph (exec NULL when
// capture or instantiation fails: the caller launches kernel by kernel).
template <class Run>
void
capture(cudaStream_t s, Run run, cudaGraph_t *graph, cudaGraphExec_t *exec)
{
    *graph = nullptr;
    *exec = nullptr;
    if (cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal) != cudaSuccess) {
        cudaGetLastError();
        return;
    }
    run();
    cudaGraph_t g = nullptr;
    cudaError_t e = cudaStreamEndCapture(s, &g);
    if (e == cudaSuccess && g && cudaGraphInstantiate(exec, g, 0) == cudaSuccess) {
        *graph = g;
        return;
    }
    cudaGetLastError();
    if (g)
        cudaGraphDestroy(g);
    *exec = nullptr;
}

// The decode step (and, with sample, the draw's kernels) captured as a graph.
void
capture_one(Ctx *c, bool sample, cudaGraph_t *graph, cudaGraphExec_t *exec)
{
    capture(c->s, [c, sample] {
        run_chunk(c, 1, c->logits1, false);
        if (sample)
            run_sample(c);
    }, graph, exec);
}

bool
graphs_on()
{
    const char *env = getenv("HEARTH_CUDA_GRAPH");
    return !(env && strcmp(env, "0") == 0);
}

void
capture_graph(Ctx *c)
{
    if (!graphs_on())
        return;
    capture_one(c, false, &c->graph, &c->graph_exec);
    if (c->draws && c->graph_exec)
        capture_one(c, true, &c->graph_s, &c->graph_exec_s);
}

// The step's draw into device memory: its parameters and seen ids through
// the pinned buffer (reused once the previous copy has left it).
HrStatus
put_sample(Ctx *c, HrError *err)
{
    CK(cudaEventSynchronize(c->sample_ev));
    SampleParams *hp = reinterpret_cast<SampleParams *>(c->h_sample);
    int32_t *hs = reinterpret_cast<int32_t *>(c->h_sample + sizeof(SampleParams) + sizeof(TopkRes));
    const int n = c->spec.n_seen < c->cfg.vocab_size ? c->spec.n_seen : c->cfg.vocab_size;
    hp->inv_t = c->spec.inv_t;
    hp->penalty = c->spec.penalty;
    hp->n_seen = n > 0 && c->spec.seen ? n : 0;
    hp->draw = 1;
    if (hp->n_seen)
        memcpy(hs, c->spec.seen, sizeof(int32_t) * (size_t)hp->n_seen);
    CK(cudaMemcpyAsync(c->d_prm, hp, sizeof *hp, cudaMemcpyHostToDevice, c->s));
    if (hp->n_seen)
        CK(cudaMemcpyAsync(c->d_seen, hs, sizeof(int32_t) * (size_t)hp->n_seen, cudaMemcpyHostToDevice, c->s));
    CK(cudaEventRecord(c->sample_ev, c->s));
    return HR_OK;
}

// ---- the whole-model entry points ----------------------------------------------------

// Everything c holds on the device and in pinned memory (not c itself).
void
release(Ctx *c)
{
    if (c->s)
        cudaStreamSynchronize(c->s);
    if (c->graph_exec)
        cudaGraphExecDestroy(c->graph_exec);
    if (c->graph)
        cudaGraphDestroy(c->graph);
    if (c->graph_exec_s)
        cudaGraphExecDestroy(c->graph_exec_s);
    if (c->graph_s)
        cudaGraphDestroy(c->graph_s);
    if (c->sample_ev)
        cudaEventDestroy(c->sample_ev);
    if (c->h_sample)
        cudaFreeHost(c->h_sample);
    for (int i = 0; i < STEP_SLOTS; i++)
        if (c->step_ev[i])
            cudaEventDestroy(c->step_ev[i]);
    if (c->h_step)
        cudaFreeHost(c->h_step);
    cudaFree(c->logits_all);
    cudaFree(c->arena);
    blas_close(c->wk.blas);
    if (c->s)
        cudaStreamDestroy(c->s);
    free(c->layers);
    cudaGetLastError();
}

void
cuda_destroy(void *p)
{
    Ctx *c = static_cast<Ctx *>(p);
    if (!c)
        return;
    release(c);
    free(c);
}

double
now_s()
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int
env_int(const char *name, int dflt)
{
    const char *v = getenv(name);
    return v && *v ? atoi(v) : dflt;
}

HrStatus
plan_model(Ctx *c, const HrTensorSet *ts, HrError *err)
{
    const HrModelConfig &cfg = c->cfg;
    const int dim = cfg.dim;
    HrStatus st;
    if ((st = plan_matrix(ts, "model.embed_tokens.weight", cfg.vocab_size, dim, true, &c->s_embed, err)) ||
        (st = find_dense(ts, "model.norm.weight", dim, 0, &c->t_final_norm, err)))
        return st;
    c->tied = false;
    if (hr_tensor_set_find(ts, "lm_head.weight")) {
        if ((st = plan_lm_head(cfg, ts, "lm_head.weight", cfg.vocab_size, dim, &c->s_lm_head, err)))
            return st;
    } else if (cfg.tie_embeddings && lm_head_q8(cfg, ts, "model.embed_tokens.weight", dim)) {
        // its own int8 matrix from the embedding's rows
        if ((st = plan_lm_head(cfg, ts, "model.embed_tokens.weight", cfg.vocab_size, dim, &c->s_lm_head, err)))
            return st;
    } else if (cfg.tie_embeddings) {
        c->tied = true;
    } else {
        return hr_error_set(err, HR_ERR_FORMAT, "tensor 'lm_head.weight' is missing and the config does not tie "
                            "the embeddings (tie_word_embeddings is false)");
    }
    LinGroup g;
    int one;
    group_linears(&c->s_embed, 1, &g, &one);
    c->embed = g.d;
    c->lm_head = c->embed;
    if (!c->tied) {
        group_linears(&c->s_lm_head, 1, &g, &one);
        c->lm_head = g.d;
    }
    for (int l = 0; l < cfg.n_layers; l++) {
        Layer &L = c->layers[l];
        char name[160];
#define LNAME(suffix) (snprintf(name, sizeof name, "model.layers.%d." suffix, l), name)
        SrcLinear qkv[3], gu[2], o, down;
        if ((st = find_dense(ts, LNAME("input_layernorm.weight"), dim, 0, &L.t_attn_norm, err)) ||
            (st = find_dense(ts, LNAME("post_attention_layernorm.weight"), dim, 0, &L.t_ffn_norm, err)) ||
            (st = plan_linear(c, ts, LNAME("self_attn.q_proj"), c->q_dim, dim, &qkv[0], err)) ||
            (st = plan_linear(c, ts, LNAME("self_attn.k_proj"), c->kv_dim, dim, &qkv[1], err)) ||
            (st = plan_linear(c, ts, LNAME("self_attn.v_proj"), c->kv_dim, dim, &qkv[2], err)) ||
            (st = plan_linear(c, ts, LNAME("self_attn.o_proj"), dim, c->q_dim, &o, err)) ||
            (st = plan_linear(c, ts, LNAME("mlp.gate_proj"), cfg.hidden_dim, dim, &gu[0], err)) ||
            (st = plan_linear(c, ts, LNAME("mlp.up_proj"), cfg.hidden_dim, dim, &gu[1], err)) ||
            (st = plan_linear(c, ts, LNAME("mlp.down_proj"), dim, cfg.hidden_dim, &down, err)))
            return st;
        if (cfg.qkv_bias &&
            ((st = find_dense(ts, LNAME("self_attn.q_proj.bias"), c->q_dim, 0, &L.t_bias[0], err)) ||
             (st = find_dense(ts, LNAME("self_attn.k_proj.bias"), c->kv_dim, 0, &L.t_bias[1], err)) ||
             (st = find_dense(ts, LNAME("self_attn.v_proj.bias"), c->kv_dim, 0, &L.t_bias[2], err))))
            return st;
#undef LNAME
        group_linears(qkv, 3, L.qkv, &L.n_qkv);
        group_linears(gu, 2, L.gu, &L.n_gu);
        int one;
        group_linears(&o, 1, &L.o, &one);
        group_linears(&down, 1, &L.down, &one);
    }
    return HR_OK;
}

HrStatus
upload_model(Ctx *c, HrProgressFunc progress, void *user, HrError *err)
{
    const HrModelConfig &cfg = c->cfg;
    Stager st = {};
    st.s = c->s;
    /* Opt-in until a device run confirms it (the words are the same: test-cuda-repack) */
    const char *rp = getenv("HEARTH_CUDA_REPACK");
    if (rp && strcmp(rp, "layout") == 0)
        st.pool = hr_pool_new(0);
    HrStatus rc = HR_OK;
    for (int i = 0; i < 2; i++) {
        cudaError_t e = cudaMallocHost(&st.buf[i], STAGE_BYTES);
        if (e == cudaSuccess)
            e = cudaEventCreateWithFlags(&st.ev[i], cudaEventDisableTiming);
        if (e != cudaSuccess) {
            rc = cuda_fail(err, e, "pinned staging buffer");
            break;
        }
    }
    if (rc == HR_OK) {
        LinGroup eg = {};
        eg.d = c->embed;
        eg.n_src = 1;
        eg.src[0] = c->s_embed;
        rc = upload_group(st, eg, err);
        if (rc == HR_OK && !c->tied) {
            eg.d = c->lm_head;
            eg.src[0] = c->s_lm_head;
            rc = upload_group(st, eg, err);
        }
        if (rc == HR_OK)
            rc = upload_vec_f32(st, c->t_final_norm, cfg.dim, c->final_norm, 0, err);
        if (rc == HR_OK) {
            float *h = static_cast<float *>(stage_begin(st));
            hr_rope_inv_freq(&cfg, h);
            cudaError_t e = cudaMemcpyAsync(c->inv_freq, h, sizeof(float) * (size_t)(cfg.head_dim / 2),
                                            cudaMemcpyHostToDevice, c->s);
            if (e == cudaSuccess)
                e = stage_end(st);
            if (e != cudaSuccess)
                rc = cuda_fail(err, e, "upload");
        }
    }
    for (int l = 0; rc == HR_OK && l < cfg.n_layers; l++) {
        Layer &L = c->layers[l];
        if ((rc = upload_vec_f32(st, L.t_attn_norm, cfg.dim, L.attn_norm, 0, err)) ||
            (rc = upload_vec_f32(st, L.t_ffn_norm, cfg.dim, L.ffn_norm, 0, err)))
            break;
        if (cfg.qkv_bias &&
            ((rc = upload_vec_f32(st, L.t_bias[0], c->q_dim, L.bqkv, 0, err)) ||
             (rc = upload_vec_f32(st, L.t_bias[1], c->kv_dim, L.bqkv, c->q_dim, err)) ||
             (rc = upload_vec_f32(st, L.t_bias[2], c->kv_dim, L.bqkv, c->q_dim + c->kv_dim, err))))
            break;
        for (int i = 0; rc == HR_OK && i < L.n_qkv; i++)
            rc = upload_group(st, L.qkv[i], err);
        for (int i = 0; rc == HR_OK && i < L.n_gu; i++)
            rc = upload_group(st, L.gu[i], err);
        if (rc == HR_OK)
            rc = upload_group(st, L.o, err);
        if (rc == HR_OK)
            rc = upload_group(st, L.down, err);
        if (rc == HR_OK && progress && !progress((double)(l + 1) / cfg.n_layers, "layers", user))
            rc = hr_error_set(err, HR_ERR_CANCELLED, "loading was cancelled");
    }
    cudaError_t e = cudaStreamSynchronize(c->s);
    if (rc == HR_OK && e != cudaSuccess)
        rc = cuda_fail(err, e, "upload");
    for (int i = 0; i < 2; i++) {
        if (st.ev[i])
            cudaEventDestroy(st.ev[i]);
        if (st.buf[i])
            cudaFreeHost(st.buf[i]);
    }
    if (st.pool)
        hr_pool_free(st.pool);
    return rc;
}

// The checks every model starts with, and the device chosen
// (HEARTH_CUDA_DEVICE) made current.
HrStatus
open_device(const HrModelConfig *cfg, const HrBackendOptions *opt, int *device_out, cudaDeviceProp *prop,
            HrError *err)
{
    if (opt->context_len < 1)
        return hr_error_set(err, HR_ERR_INVALID_ARG, "context length must be positive");
    if (opt->kv_type != HR_KV_F16)
        return hr_error_set(err, HR_ERR_UNSUPPORTED, "the CUDA backend keeps the KV cache in FP16 (the FP32 "
                            "reference cache is the CPU backend's)");
    if (cfg->head_dim % 2 != 0 || cfg->head_dim > 256 || cfg->n_kv_heads < 1 || cfg->n_heads % cfg->n_kv_heads != 0)
        return hr_error_set(err, HR_ERR_UNSUPPORTED, "the CUDA backend needs an even head_dim <= 256 and heads "
                            "divisible by KV heads (got head_dim %d, %d heads, %d KV heads)", cfg->head_dim,
                            cfg->n_heads, cfg->n_kv_heads);
    int n_dev = 0;
    cudaError_t e = cudaGetDeviceCount(&n_dev);
    if (e != cudaSuccess || n_dev == 0) {
        cudaGetLastError();
        return hr_error_set(err, HR_ERR_DEVICE, "no CUDA device: %s",
                            e != cudaSuccess ? cudaGetErrorString(e) : "cudaGetDeviceCount found none");
    }
    const int device = env_int("HEARTH_CUDA_DEVICE", 0);
    if (device < 0 || device >= n_dev)
        return hr_error_set(err, HR_ERR_INVALID_ARG, "HEARTH_CUDA_DEVICE=%d but there are %d CUDA devices", device,
                            n_dev);
    e = cudaGetDeviceProperties(prop, device);
    if (e == cudaSuccess)
        e = cudaSetDevice(device);
    if (e != cudaSuccess)
        return cuda_fail(err, e, "cudaGetDeviceProperties");
    if (prop->major < 7 || (prop->major == 7 && prop->minor < 5))
        return hr_error_set(err, HR_ERR_UNSUPPORTED, "%s has compute capability %d.%d; the CUDA backend needs 7.5 "
                            "(Turing) or newer", prop->name, prop->major, prop->minor);
    *device_out = device;
    return HR_OK;
}

// The shapes and the paths the environment picks (engine/cuda/README.md);
// c->cfg and c->opt are set.
HrStatus
configure(Ctx *c, HrError *err)
{
    const HrModelConfig *cfg = &c->cfg;
    c->q_dim = cfg->n_heads * cfg->head_dim;
    c->kv_dim = cfg->n_kv_heads * cfg->head_dim;
    c->qkv_dim = c->q_dim + 2 * c->kv_dim;
    const char *gemm = getenv("HEARTH_CUDA_GEMM");
    c->path = PATH_AUTO;
    c->chunk = CHUNK;
    if (gemm && strcmp(gemm, "simple") == 0)
        c->path = PATH_GEMV;
    else if (gemm && strcmp(gemm, "wmma") == 0)
        c->path = PATH_WMMA;
    // Opt-in paths written without a device (engine/cuda/README.md): each
    // becomes the default only after a device run has checked it against the
    // CPU and measured it.
    if (gemm && strcmp(gemm, "cublas") == 0) {
        char why[256];
        c->wk.blas = blas_open(why, sizeof why);
        if (!c->wk.blas)
            return hr_error_set(err, HR_ERR_DEVICE, "HEARTH_CUDA_GEMM=cublas: %s", why);
        c->chunk = CHUNK_BLAS;
    }
    const int chunk_env = env_int("HEARTH_CUDA_CHUNK", 0);
    if (chunk_env > 0)
        c->chunk = chunk_env < 4096 ? chunk_env : 4096;
    c->step_ints = 2 + c->chunk;
    const char *gv = getenv("HEARTH_CUDA_GEMV");
    c->q8 = gv && strcmp(gv, "q8") == 0;
    const char *at = getenv("HEARTH_CUDA_ATTN");
    c->attn_tiled = at && strcmp(at, "tiled") == 0 && attention_tiled_ok(cfg->n_heads, cfg->n_kv_heads, cfg->head_dim);
    c->dec_split_len = c->attn_tiled ? (int)ATT_TILE : (int)DECODE_SPLIT;
    // opt-in until a device run has checked it: HEARTH_DEVICE_SAMPLING=1 (as on Vulkan, =0 never)
    const char *ds = getenv("HEARTH_DEVICE_SAMPLING");
    c->draws = ds && strcmp(ds, "1") == 0;
    c->dec_splits = (c->opt.context_len + c->dec_split_len - 1) / c->dec_split_len;
    c->pre_split_len = (c->opt.context_len + PREFILL_SPLITS - 1) / PREFILL_SPLITS;
    return HR_OK;
}

// need bytes (the arena, and what will be allocated beside it) against what
// the device has free (HEARTH_CUDA_MAX_MEMORY_MIB caps it); the message
// quotes the split c's byte counts hold.
HrStatus
check_memory(const Ctx *c, const cudaDeviceProp &prop, size_t need, HrError *err)
{
    size_t free_b = 0, total_b = 0;
    cudaError_t e = cudaMemGetInfo(&free_b, &total_b);
    if (e != cudaSuccess)
        return cuda_fail(err, e, "cudaMemGetInfo");
    const int cap_mib = env_int("HEARTH_CUDA_MAX_MEMORY_MIB", -1);
    if (cap_mib >= 0 && (size_t)cap_mib << 20 < free_b)
        free_b = (size_t)cap_mib << 20;
    if (need + RESERVE_BYTES <= free_b)
        return HR_OK;
    return hr_error_set(err, HR_ERR_NOMEM, "%s: the model needs %zu MiB (%zu bytes) of device memory (weights "
                        "%zu MiB, KV cache %zu MiB for %d positions, scratch %zu MiB, + %zu MiB reserve) but only "
                        "%zu MiB (%zu bytes) of %zu MiB are free%s", prop.name, (need + RESERVE_BYTES) >> 20,
                        need + RESERVE_BYTES, c->weight_bytes >> 20, c->kv_bytes >> 20, c->opt.context_len,
                        c->scratch_bytes >> 20, RESERVE_BYTES >> 20, free_b >> 20, free_b, total_b >> 20,
                        cap_mib >= 0 ? " (capped by HEARTH_CUDA_MAX_MEMORY_MIB)" : "");
}

// The stream, the arena of `bytes` (zeroed), the pinned step slots and the
// draw's pinned buffer.
HrStatus
alloc_runtime(Ctx *c, size_t bytes, HrError *err)
{
    cudaError_t e = cudaStreamCreateWithFlags(&c->s, cudaStreamNonBlocking);
    if (e == cudaSuccess)
        e = cudaMalloc(&c->arena, bytes);
    if (e == cudaSuccess)
        e = cudaMallocHost(&c->h_step, sizeof(int) * STEP_SLOTS * (size_t)c->step_ints);
    for (int i = 0; e == cudaSuccess && i < STEP_SLOTS; i++)
        e = cudaEventCreateWithFlags(&c->step_ev[i], cudaEventDisableTiming);
    if (e == cudaSuccess && c->draws)
        e = cudaMallocHost(&c->h_sample, sizeof(SampleParams) + sizeof(TopkRes) +
                                             sizeof(int32_t) * (size_t)c->cfg.vocab_size);
    if (e == cudaSuccess && c->draws)
        e = cudaEventCreateWithFlags(&c->sample_ev, cudaEventDisableTiming);
    if (e == cudaSuccess)
        e = cudaMemsetAsync(c->arena, 0, bytes, c->s);
    if (e != cudaSuccess)
        return cuda_fail(err, e, "allocating device memory");
    return HR_OK;
}

HrStatus
cuda_create(const HrModelConfig *cfg, const HrTensorSet *ts, const HrBackendOptions *opt, HrProgressFunc progress,
            void *user, void **ctx_out, HrError *err)
{
    *ctx_out = nullptr;
    int device = 0;
    cudaDeviceProp prop;
    HrStatus st = open_device(cfg, opt, &device, &prop, err);
    if (st != HR_OK)
        return st;
    Ctx *c = static_cast<Ctx *>(calloc(1, sizeof(Ctx)));
    c->cfg = *cfg;
    c->opt = *opt;
    c->device = device;
    c->layers = static_cast<Layer *>(calloc((size_t)cfg->n_layers, sizeof(Layer)));
    st = configure(c, err);
    if (st == HR_OK)
        st = plan_model(c, ts, err);
    size_t need = 0;
    if (st == HR_OK) {
        Arena dry = { nullptr, 0 };
        assign_all(c, dry);
        need = dry.off;
        st = check_memory(c, prop, need, err);
    }
    if (st == HR_OK)
        st = alloc_runtime(c, need, err);
    if (st == HR_OK) {
        Arena real = { c->arena, 0 };
        assign_all(c, real);
        st = upload_model(c, progress, user, err);
    }
    if (st == HR_OK) {
        capture_graph(c);
        cudaError_t e = cudaStreamSynchronize(c->s);
        if (e != cudaSuccess)
            st = cuda_fail(err, e, "after loading");
    }
    if (st != HR_OK) {
        cuda_destroy(c);
        return st;
    }
    *ctx_out = c;
    return HR_OK;
}

HrStatus
cuda_forward(void *p, const int32_t *tokens, int n_tokens, int pos, bool all_logits, HrError *err)
{
    Ctx *c = static_cast<Ctx *>(p);
    const HrModelConfig &cfg = c->cfg;
    HrStatus bad = hr_backend_check_forward(&cfg, c->opt.context_len, tokens, n_tokens, pos, err);
    if (bad != HR_OK)
        return bad;
    c->logits_rows = 0;
    c->sampled = false;
    const bool draw = c->have_spec && n_tokens == 1 && !all_logits;
    c->have_spec = false;
    if (draw) {
        HrStatus sst = put_sample(c, err);
        if (sst != HR_OK)
            return sst;
    }
    if (all_logits && n_tokens > c->logits_all_cap) {
        CK(cudaStreamSynchronize(c->s));
        cudaFree(c->logits_all);
        c->logits_all = nullptr;
        c->logits_all_cap = 0;
        CK(cudaMalloc(&c->logits_all, sizeof(float) * (size_t)n_tokens * (size_t)cfg.vocab_size));
        c->logits_all_cap = n_tokens;
    }
    HrStatus st;
    for (int done = 0; done < n_tokens; done += c->chunk) {
        const int T = n_tokens - done < c->chunk ? n_tokens - done : c->chunk;
        const bool last = done + T == n_tokens;
        if ((st = put_step(c, tokens + done, T, pos + done, err)))
            return st;
        if (T == 1 && !all_logits && c->graph_exec && (!draw || c->graph_exec_s)) {
            CK(cudaGraphLaunch(draw ? c->graph_exec_s : c->graph_exec, c->s));
            continue;
        }
        float *dst = all_logits ? c->logits_all + (size_t)done * cfg.vocab_size : (last ? c->logits1 : nullptr);
        run_chunk(c, T, dst, all_logits);
        if (draw)
            run_sample(c);
    }
    CK(cudaGetLastError());
    c->sampled = draw;
    c->logits_src = all_logits ? c->logits_all : c->logits1;
    c->logits_rows = all_logits ? n_tokens : 1;
    return HR_OK;
}

HrStatus
cuda_get_logits(void *p, int row, float *out, HrError *err)
{
    Ctx *c = static_cast<Ctx *>(p);
    HrStatus st = hr_backend_logits_row(&row, c->logits_rows, err);
    if (st != HR_OK)
        return st;
    const size_t V = (size_t)c->cfg.vocab_size;
    CK(cudaMemcpyAsync(out, c->logits_src + (size_t)row * V, sizeof(float) * V, cudaMemcpyDeviceToHost, c->s));
    CK(cudaStreamSynchronize(c->s));
    return HR_OK;
}

void
cuda_set_sample(void *p, const HrSampleSpec *spec)
{
    Ctx *c = static_cast<Ctx *>(p);
    c->have_spec = c->draws && spec;
    if (c->have_spec)
        c->spec = *spec;
}

HrStatus
cuda_candidates(void *p, HrCandidates *out, HrError *err)
{
    Ctx *c = static_cast<Ctx *>(p);
    if (!c->sampled)
        return hr_error_set(err, HR_ERR_UNSUPPORTED, "the last step drew no candidates");
    TopkRes *r = reinterpret_cast<TopkRes *>(c->h_sample + sizeof(SampleParams));
    CK(cudaMemcpyAsync(r, c->d_res, sizeof *r, cudaMemcpyDeviceToHost, c->s));
    CK(cudaStreamSynchronize(c->s));
    const int n = c->cfg.vocab_size < (int)TOPK_K ? c->cfg.vocab_size : (int)TOPK_K;
    out->n = n;
    out->sum = r->sum;
    out->finite = r->bad == 0;
    for (int i = 0; i < n; i++) {
        out->ids[i] = (int32_t)r->ids[i];
        out->vals[i] = r->vals[i];
        out->finite = out->finite && r->ids[i] < (uint32_t)c->cfg.vocab_size;   // an answer outside the row is not trusted
    }
    return HR_OK;
}

void
cuda_memory(void *p, HrMemoryReport *out)
{
    Ctx *c = static_cast<Ctx *>(p);
    out->weight_bytes = c->weight_bytes;
    // a decode step gathers one row of the embedding table, unless the lm_head is that table
    out->decode_weight_bytes = c->weight_bytes - (c->tied ? 0 : dlinear_bytes(c->embed));
    out->kv_bytes = c->kv_bytes;
    out->scratch_bytes = c->scratch_bytes + sizeof(float) * (size_t)c->logits_all_cap * (size_t)c->cfg.vocab_size;
    out->location = "device";
}

// ---- host GEMM for the quantizer -------------------------------------------------------

struct GemmDev {
    cudaStream_t s;
    float *buf[4];      // w, x, bias, out
    size_t cap[4];
};

HrStatus
cuda_gemm_open(int n_threads, void **dev_out, HrError *err)
{
    (void)n_threads;
    *dev_out = nullptr;
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess || n == 0) {
        cudaGetLastError();
        return hr_error_set(err, HR_ERR_DEVICE, "no CUDA device: %s",
                            e != cudaSuccess ? cudaGetErrorString(e) : "cudaGetDeviceCount found none");
    }
    CK(cudaSetDevice(env_int("HEARTH_CUDA_DEVICE", 0)));
    GemmDev *d = static_cast<GemmDev *>(calloc(1, sizeof(GemmDev)));
    e = cudaStreamCreateWithFlags(&d->s, cudaStreamNonBlocking);
    if (e != cudaSuccess) {
        free(d);
        return cuda_fail(err, e, "cudaStreamCreate");
    }
    *dev_out = d;
    return HR_OK;
}

void
cuda_gemm_close(void *p)
{
    GemmDev *d = static_cast<GemmDev *>(p);
    if (!d)
        return;
    cudaStreamSynchronize(d->s);
    for (int i = 0; i < 4; i++)
        cudaFree(d->buf[i]);
    cudaStreamDestroy(d->s);
    cudaGetLastError();
    free(d);
}

HrStatus
gemm_buf(GemmDev *d, int i, size_t n, HrError *err)
{
    if (d->cap[i] >= n)
        return HR_OK;
    CK(cudaStreamSynchronize(d->s));
    cudaFree(d->buf[i]);
    d->buf[i] = nullptr;
    d->cap[i] = 0;
    CK(cudaMalloc(&d->buf[i], n * sizeof(float)));
    d->cap[i] = n;
    return HR_OK;
}

HrStatus
cuda_gemm(void *p, float *out, const float *w, int N, int K, const float *bias, const float *x, int T, HrError *err)
{
    GemmDev *d = static_cast<GemmDev *>(p);
    if (N < 1 || K < 1 || T < 1)
        return hr_error_set(err, HR_ERR_INVALID_ARG, "gemm: empty shape [%d, %d] x %d", N, K, T);
    HrStatus st;
    if ((st = gemm_buf(d, 0, (size_t)N * K, err)) || (st = gemm_buf(d, 1, (size_t)T * K, err)) ||
        (st = gemm_buf(d, 2, (size_t)N, err)) || (st = gemm_buf(d, 3, (size_t)T * N, err)))
        return st;
    CK(cudaMemcpyAsync(d->buf[0], w, sizeof(float) * (size_t)N * K, cudaMemcpyHostToDevice, d->s));
    CK(cudaMemcpyAsync(d->buf[1], x, sizeof(float) * (size_t)T * K, cudaMemcpyHostToDevice, d->s));
    if (bias)
        CK(cudaMemcpyAsync(d->buf[2], bias, sizeof(float) * (size_t)N, cudaMemcpyHostToDevice, d->s));
    launch_gemm_f32(d->buf[0], N, K, bias ? d->buf[2] : nullptr, d->buf[1], T, d->buf[3], d->s);
    CK(cudaGetLastError());
    CK(cudaMemcpyAsync(out, d->buf[3], sizeof(float) * (size_t)T * N, cudaMemcpyDeviceToHost, d->s));
    CK(cudaStreamSynchronize(d->s));
    return HR_OK;
}

// ---- read bandwidth -------------------------------------------------------------------

HrStatus
cuda_read_bandwidth(void *p, double *bytes_per_s, HrError *err)
{
    Ctx *c = static_cast<Ctx *>(p);
    size_t free_b = 0, total_b = 0;
    CK(cudaMemGetInfo(&free_b, &total_b));
    size_t bytes = (size_t)512 << 20;
    if (bytes > free_b / 2)
        bytes = free_b / 2 / 16 * 16;
    if (bytes < ((size_t)16 << 20))
        return hr_error_set(err, HR_ERR_NOMEM, "bandwidth probe: only %zu MiB of device memory free",
                            free_b >> 20);
    cudaDeviceProp prop;
    CK(cudaGetDeviceProperties(&prop, c->device));
    void *buf = nullptr;
    float *sink = nullptr;
    cudaEvent_t e0 = nullptr, e1 = nullptr;
    cudaError_t e = cudaMalloc(&buf, bytes);
    if (e == cudaSuccess)
        e = cudaMalloc(&sink, sizeof(float));
    if (e == cudaSuccess)
        e = cudaMemsetAsync(buf, 1, bytes, c->s);
    if (e == cudaSuccess)
        e = cudaEventCreate(&e0);
    if (e == cudaSuccess)
        e = cudaEventCreate(&e1);
    double best = 0.0;
    const int blocks = prop.multiProcessorCount * 8;
    for (int pass = 0; e == cudaSuccess && pass < 6; pass++) {
        cudaEventRecord(e0, c->s);
        launch_read_sum(static_cast<const uint4 *>(buf), bytes / 16, sink, blocks, c->s);
        cudaEventRecord(e1, c->s);
        e = cudaEventSynchronize(e1);
        float ms = 0.0f;
        if (e == cudaSuccess)
            e = cudaEventElapsedTime(&ms, e0, e1);
        if (e == cudaSuccess && pass > 0 && ms > 0.0f)   // pass 0 warms up
            best = fmax(best, (double)bytes / ((double)ms / 1e3));
    }
    if (e0)
        cudaEventDestroy(e0);
    if (e1)
        cudaEventDestroy(e1);
    cudaFree(sink);
    cudaFree(buf);
    if (e != cudaSuccess)
        return cuda_fail(err, e, "bandwidth probe");
    *bytes_per_s = best;
    return HR_OK;
}

// ---- the op-level interface (engine/ops.h, engine/llama.c) -------------------------------
//
// The same device, kernels, paths and graphs as the whole-model backend
// above, under the model written once in llama.c: open() plans every weight
// the model will take (the q|k|v and gate|up specs the model marks `stack`
// become one matrix when their formats agree, as plan_model groups them) and
// checks the memory; weight() uploads each into its planned place; compile()
// resolves a node list into launches; run() launches them, and replays the
// one-token list as a CUDA graph (captured on its first step). Opt-in until a
// device run has checked it: HEARTH_CUDA_OPS=1.

}  // namespace

struct HrOpsWeight {
    HrWeightRole role;
    float *vec;              // VECTOR [n]
    int n;
    int group, part;         // LINEAR: its matrix (OpsDev::groups) and its source there
    hrcuda::DLinear d;       // EMBED, LM_HEAD
};

struct HrOpsBuffer {
    float *act;              // activation [max_tokens, width], or a tensor [rows, width]
    __half *kv;              // one layer's K or V cache [context, kv_dim]
    int width;
    int64_t rows;            // a tensor's
    double *sums;            // a tensor's row values (sq_diff), on the device
};

namespace {

// What open() planned for one weight spec, in the order the model takes them.
struct Planned {
    HrWeightRole role;
    char name[128];
    int group, part, row_off;  // EMBED, LM_HEAD (not tied), LINEAR: the matrix, its source, the rows before it
    float *vec;                // VECTOR
    int n;
};

// A node with its operands resolved to device pointers.
struct CNode {
    HrNode n;
    const float *x;            // src (for ATTENTION and LINEAR maybe q inside q|k|v: ldx is then its width)
    int ldx;
    float *y;                  // dst
    int ldy;
    DLinear lin[3];            // LINEAR: one launch each, outputs side by side (off)
    int off[3], n_lin;
    bool fused_gate;           // gate over one stacked [gate; up] matrix: the GEMV's SiLU·mul epilogue applies
    const float *bias;
    const float *norm_w;       // RMSNORM; ROPE_KV: Qwen3's q norm (with knorm_w), or null
    const float *knorm_w;      // ROPE_KV: Qwen3's k norm
    __half *kc, *vc;
};

struct Prog {
    std::vector<CNode> nodes;
    bool decode;
    bool tried;                // graphs captured (or failed) on the first one-token step
    cudaGraph_t graph, graph_s;
    cudaGraphExec_t exec, exec_s;
};

struct OpsDev {
    Ctx c;                     // the device and the paths' scratch (the whole-model fields stay empty)
    cudaDeviceProp prop;
    std::vector<LinGroup> groups;
    std::vector<Planned> plan;
    size_t next;               // the plan entry weight() takes next
    std::vector<HrOpsWeight *> weights;
    std::vector<HrOpsBuffer *> buffers;
    std::vector<Prog *> progs;
    Stager st;
    size_t widest_run;         // rows of the widest run of stacked specs
    float *gu;                 // [chunk, widest_run]: gate|up outputs before SiLU·mul
    float *logits;             // [logit_rows, vocab] (= c.logits1)
    int logit_rows;
    bool argmax_ok;            // the last step computed d_argmax
    bool graphed;
    double upload_s;
    HrThreadPool *pool;        // set_weight's conversions (made on first use)
    float *qs;                 // scale_quant's s (made on first use, qs_cap floats)
    int qs_cap;
};

void
ops_close(void *p)
{
    OpsDev *d = static_cast<OpsDev *>(p);
    if (!d)
        return;
    Ctx *c = &d->c;
    if (c->s)
        cudaStreamSynchronize(c->s);
    for (Prog *g : d->progs) {
        if (g->exec)
            cudaGraphExecDestroy(g->exec);
        if (g->graph)
            cudaGraphDestroy(g->graph);
        if (g->exec_s)
            cudaGraphExecDestroy(g->exec_s);
        if (g->graph_s)
            cudaGraphDestroy(g->graph_s);
        delete g;
    }
    cudaFree(d->qs);
    for (HrOpsBuffer *b : d->buffers) {
        cudaFree(b->act);
        cudaFree(b->kv);
        cudaFree(b->sums);
        delete b;
    }
    for (HrOpsWeight *w : d->weights)
        delete w;
    for (int i = 0; i < 2; i++) {
        if (d->st.ev[i])
            cudaEventDestroy(d->st.ev[i]);
        if (d->st.buf[i])
            cudaFreeHost(d->st.buf[i]);
    }
    if (d->st.pool)
        hr_pool_free(d->st.pool);
    if (d->pool)
        hr_pool_free(d->pool);
    release(c);
    delete d;
}

// Every matrix the model will take, grouped; the place of each spec.
HrStatus
plan_ops(OpsDev *d, const HrTensorSet *ts, const HrWeightSpec *specs, int n, HrError *err)
{
    Ctx *c = &d->c;
    d->plan.resize((size_t)n);
    for (int i = 0; i < n; i++) {
        Planned &p = d->plan[(size_t)i];
        p.role = specs[i].role;
        snprintf(p.name, sizeof p.name, "%s", specs[i].name);
        p.group = -1;
        p.n = (int)specs[i].rows;
        if (specs[i].rows < 1 || specs[i].cols < 1 || specs[i].rows > (1 << 30) || specs[i].cols > (1 << 30))
            return hr_error_set(err, HR_ERR_INVALID_ARG, "weight '%s' has the shape [%lld, %lld]", specs[i].name,
                                (long long)specs[i].rows, (long long)specs[i].cols);
    }
    for (int i = 0; i < n; i++) {
        const HrWeightSpec &s = specs[i];
        if (s.role == HR_W_VECTOR ||
            (s.role == HR_W_LM_HEAD && s.tied && !lm_head_q8(c->cfg, ts, s.name, (int)s.cols)))
            continue;   // (a tied lm_head rounded to int8 is a matrix of its own)
        if (s.role == HR_W_LINEAR && s.stack) {
            if (d->plan[(size_t)i].group < 0)
                return hr_error_set(err, HR_ERR_INVALID_ARG, "weight '%s' is stacked under no matrix", s.name);
            continue;   // planned with the spec it stacks under
        }
        int m = 1;
        while (s.role == HR_W_LINEAR && i + m < n && specs[i + m].role == HR_W_LINEAR && specs[i + m].stack)
            m++;
        if (m > 3)
            return hr_error_set(err, HR_ERR_UNSUPPORTED, "CUDA: %d matrices stacked from '%s' (3 at most)", m,
                                s.name);
        SrcLinear src[3];
        for (int j = 0; j < m; j++) {
            const HrWeightSpec &sj = specs[i + j];
            const int rows = (int)sj.rows, cols = (int)sj.cols;
            HrStatus st = s.role == HR_W_LINEAR    ? plan_linear(c, ts, sj.name, rows, cols, &src[j], err)
                          : s.role == HR_W_LM_HEAD ? plan_lm_head(c->cfg, ts, sj.name, rows, cols, &src[j], err)
                                                   : plan_matrix(ts, sj.name, rows, cols, true, &src[j], err);
            if (st != HR_OK)
                return st;
        }
        LinGroup g[3];
        int ng = 0;
        group_linears(src, m, g, &ng);
        const int base = (int)d->groups.size();
        for (int k = 0; k < ng; k++)
            d->groups.push_back(g[k]);
        int off = 0;
        for (int j = 0; j < m; j++)
            off += src[j].rows;
        if (m > 1 && (size_t)off > d->widest_run)
            d->widest_run = (size_t)off;
        off = 0;
        for (int j = 0; j < m; j++) {
            Planned &p = d->plan[(size_t)(i + j)];
            p.group = ng == 1 ? base : base + j;
            p.part = ng == 1 ? j : 0;
            p.row_off = ng == 1 ? off : 0;
            off += src[j].rows;
        }
    }
    return HR_OK;
}

// Weights, vectors and scratch into the arena (base NULL: only counted).
void
assign_ops(OpsDev *d, Arena &a)
{
    Ctx *c = &d->c;
    const HrModelConfig &cfg = c->cfg;
    c->weight_bytes = c->scratch_bytes = 0;
    std::vector<const DLinear *> lins;
    for (LinGroup &g : d->groups) {
        assign_linear(a, g.d, &c->weight_bytes);
        lins.push_back(&g.d);
    }
    for (Planned &p : d->plan)
        if (p.role == HR_W_VECTOR)
            p.vec = a.take<float>((size_t)p.n, &c->weight_bytes);
    c->inv_freq = a.take<float>((size_t)cfg.head_dim / 2, &c->weight_bytes);
    c->d_step = a.take<int>((size_t)c->step_ints, &c->scratch_bytes);
    d->gu = d->widest_run ? a.take<float>((size_t)c->chunk * d->widest_run, &c->scratch_bytes) : nullptr;
    assign_path_scratch(c, a, lins, nullptr, d->logit_rows);   // pre_x: compile() finds the norms' buffer
    d->logits = c->logits1;
}

HrStatus
ops_open(const HrModelConfig *cfg, const HrBackendOptions *opt, const HrTensorSet *ts, const HrWeightSpec *specs,
         int n_specs, void **dev_out, HrOpsLimits *limits, HrError *err)
{
    *dev_out = nullptr;
    int device = 0;
    cudaDeviceProp prop;
    HrStatus st = open_device(cfg, opt, &device, &prop, err);
    if (st != HR_OK)
        return st;
    OpsDev *d = new OpsDev();
    Ctx *c = &d->c;
    c->cfg = *cfg;
    c->opt = *opt;
    c->device = device;
    d->prop = prop;
    st = configure(c, err);
    // logits rows one step returns: the chunk's, up to 64 MiB (at least one)
    const size_t lr = ((size_t)64 << 20) / ((size_t)cfg->vocab_size * sizeof(float));
    d->logit_rows = (int)(lr < 1 ? 1 : lr < (size_t)c->chunk ? lr : (size_t)c->chunk);
    if (st == HR_OK)
        st = plan_ops(d, ts, specs, n_specs, err);
    size_t arena = 0;
    if (st == HR_OK) {
        Arena dry = { nullptr, 0 };
        assign_ops(d, dry);
        arena = dry.off;
        // the KV caches and the model's activations (x, xb, q|k|v, q, att,
        // hidden) are allocated as the model asks for them; counted here
        c->kv_bytes = (size_t)cfg->n_layers * 2 * (size_t)opt->context_len * (size_t)c->kv_dim * sizeof(__half);
        const size_t act = (size_t)c->chunk * (size_t)(2 * cfg->dim + c->qkv_dim + 2 * c->q_dim + cfg->hidden_dim) *
                           sizeof(float);
        c->scratch_bytes += act;
        st = check_memory(c, prop, arena + c->kv_bytes + act, err);
        c->kv_bytes = 0;
        c->scratch_bytes -= act;
    }
    if (st == HR_OK)
        st = alloc_runtime(c, arena, err);
    if (st == HR_OK) {
        Arena real = { c->arena, 0 };
        assign_ops(d, real);
        d->st.s = c->s;
        const char *rp = getenv("HEARTH_CUDA_REPACK");
        if (rp && strcmp(rp, "layout") == 0)
            d->st.pool = hr_pool_new(0);
        for (int i = 0; st == HR_OK && i < 2; i++) {
            cudaError_t e = cudaMallocHost(&d->st.buf[i], STAGE_BYTES);
            if (e == cudaSuccess)
                e = cudaEventCreateWithFlags(&d->st.ev[i], cudaEventDisableTiming);
            if (e != cudaSuccess)
                st = cuda_fail(err, e, "pinned staging buffer");
        }
    }
    if (st == HR_OK) {
        float *h = static_cast<float *>(stage_begin(d->st));
        hr_rope_inv_freq(cfg, h);
        cudaError_t e = cudaMemcpyAsync(c->inv_freq, h, sizeof(float) * (size_t)(cfg->head_dim / 2),
                                        cudaMemcpyHostToDevice, c->s);
        if (e == cudaSuccess)
            e = stage_end(d->st);
        if (e != cudaSuccess)
            st = cuda_fail(err, e, "upload");
    }
    if (st != HR_OK) {
        ops_close(d);
        return st;
    }
    limits->max_tokens = c->chunk;
    limits->max_logit_rows = d->logit_rows;
    limits->draws = c->draws;
    *dev_out = d;
    return HR_OK;
}

HrStatus
ops_weight(void *p, const HrTensorSet *ts, const HrWeightSpec *s, const float *data, HrOpsWeight *tied_to,
           HrOpsWeight **out, HrError *err)
{
    (void)ts;   // the planned sources point into it (the model passes open()'s set)
    OpsDev *d = static_cast<OpsDev *>(p);
    if (d->next >= d->plan.size() || d->plan[d->next].role != s->role || strcmp(d->plan[d->next].name, s->name) != 0)
        return hr_error_set(err, HR_ERR_INVALID_ARG, "CUDA: weight '%s' was not planned at this place", s->name);
    const Planned &pl = d->plan[d->next++];
    HrOpsWeight *w = new HrOpsWeight();
    d->weights.push_back(w);
    *out = w;
    w->role = s->role;
    w->group = pl.group;
    w->part = pl.part;
    w->n = pl.n;
    switch (s->role) {
    case HR_W_VECTOR: {
        if (!data || (size_t)pl.n * sizeof(float) > STAGE_BYTES)
            return hr_error_set(err, HR_ERR_INVALID_ARG, "CUDA: vector '%s' has no data or is too long", s->name);
        float *h = static_cast<float *>(stage_begin(d->st));
        memcpy(h, data, sizeof(float) * (size_t)pl.n);
        CK(cudaMemcpyAsync(pl.vec, h, sizeof(float) * (size_t)pl.n, cudaMemcpyHostToDevice, d->c.s));
        CK(stage_end(d->st));
        w->vec = pl.vec;
        return HR_OK;
    }
    case HR_W_LM_HEAD:
        if (s->tied && pl.group < 0) {
            if (!tied_to || tied_to->role != HR_W_EMBED)
                return hr_error_set(err, HR_ERR_INVALID_ARG, "CUDA: the tied lm_head has no embedding");
            w->d = tied_to->d;
            return HR_OK;
        }
        [[fallthrough]];
    case HR_W_EMBED: {
        const LinGroup &g = d->groups[(size_t)pl.group];
        w->d = g.d;
        return upload_group(d->st, g, err);
    }
    case HR_W_LINEAR: {
        const LinGroup &g = d->groups[(size_t)pl.group];
        return upload_src(d->st, g.d, g.src[pl.part], pl.row_off, err);
    }
    }
    return hr_error_set(err, HR_ERR_INVALID_ARG, "weight '%s': unknown role", s->name);
}

HrStatus
ops_weights_done(void *p, HrError *err)
{
    OpsDev *d = static_cast<OpsDev *>(p);
    if (d->next != d->plan.size())
        return hr_error_set(err, HR_ERR_INVALID_ARG, "CUDA: %zu of %zu planned weights were taken", d->next,
                            d->plan.size());
    const double t0 = now_s();
    CK(cudaStreamSynchronize(d->c.s));
    d->upload_s += now_s() - t0;
    for (int i = 0; i < 2; i++) {
        cudaEventDestroy(d->st.ev[i]);
        cudaFreeHost(d->st.buf[i]);
        d->st.ev[i] = nullptr;
        d->st.buf[i] = nullptr;
    }
    if (d->st.pool)
        hr_pool_free(d->st.pool);
    d->st.pool = nullptr;
    return HR_OK;
}

HrStatus
ops_activation(void *p, int64_t width, HrOpsBuffer **out, HrError *err)
{
    OpsDev *d = static_cast<OpsDev *>(p);
    Ctx *c = &d->c;
    if (width < 1 || width > (1 << 24))
        return hr_error_set(err, HR_ERR_INVALID_ARG, "CUDA: an activation %lld wide", (long long)width);
    HrOpsBuffer *b = new HrOpsBuffer();
    d->buffers.push_back(b);
    *out = b;
    b->width = (int)width;
    const size_t bytes = (size_t)c->chunk * (size_t)width * sizeof(float);
    CK(cudaMalloc(&b->act, bytes));
    CK(cudaMemsetAsync(b->act, 0, bytes, c->s));
    c->scratch_bytes += bytes;
    return HR_OK;
}

HrStatus
ops_kv_cache(void *p, HrOpsBuffer **k_out, HrOpsBuffer **v_out, HrError *err)
{
    OpsDev *d = static_cast<OpsDev *>(p);
    Ctx *c = &d->c;
    const size_t bytes = (size_t)c->opt.context_len * (size_t)c->kv_dim * sizeof(__half);
    HrOpsBuffer **outs[2] = { k_out, v_out };
    for (int i = 0; i < 2; i++) {
        HrOpsBuffer *b = new HrOpsBuffer();
        d->buffers.push_back(b);
        *outs[i] = b;
        b->width = c->kv_dim;
        CK(cudaMalloc(&b->kv, bytes));
        CK(cudaMemsetAsync(b->kv, 0, bytes, c->s));
        c->kv_bytes += bytes;
    }
    return HR_OK;
}

// Rows [row_off, row_off + rows) of a device matrix, as a matrix.
DLinear
sub_linear(const DLinear &g, int row_off, int rows)
{
    DLinear v = g;
    v.rows = rows;
    const size_t r = (size_t)row_off, K = (size_t)g.cols;
    if (g.kind == LIN_Q4) {
        v.q += r * (size_t)g.kw;
        v.sz += r * (size_t)g.ng;
    } else if (g.kind == LIN_Q4F) {
        v.nib += r * (K / 2);
        v.so += r * (K / 32);
    } else if (g.kind == LIN_I8) {
        v.q8 += r * K;
        v.s8 += r * (K / (size_t)g.per);
        if (v.o8)
            v.o8 += r * (size_t)g.ng;
    } else {
        v.w += r * (size_t)g.ldw;
    }
    return v;
}

// A LINEAR node's launches: its matrices as one launch where they are one
// stacked group, else one each (a view of the group's rows).
HrStatus
resolve_linear(OpsDev *d, CNode &cn, HrError *err)
{
    const HrNode &n = cn.n;
    if (n.n_w < 1 || n.n_w > 3 || (n.gate && n.n_w != 2))
        return hr_error_set(err, HR_ERR_INVALID_ARG, "CUDA: a linear of %d matrices%s", n.n_w,
                            n.gate ? " with the gate" : "");
    for (int i = 0; i < n.n_w; i++)
        if (!n.w[i] || n.w[i]->role != HR_W_LINEAR)
            return hr_error_set(err, HR_ERR_INVALID_ARG, "CUDA: linear node (layer %d): matrix %d is not a linear",
                                n.layer, i);
    const LinGroup &g0 = d->groups[(size_t)n.w[0]->group];
    bool one = g0.n_src == n.n_w && n.w[0]->part == 0;
    for (int i = 1; one && i < n.n_w; i++)
        one = n.w[i]->group == n.w[0]->group && n.w[i]->part == i;
    int total = 0;
    if (one) {
        cn.n_lin = 1;
        cn.lin[0] = g0.d;
        cn.off[0] = 0;
        total = g0.d.rows;
    } else {
        cn.n_lin = n.n_w;
        for (int i = 0; i < n.n_w; i++) {
            const LinGroup &g = d->groups[(size_t)n.w[i]->group];
            int row_off = 0;
            for (int j = 0; j < n.w[i]->part; j++)
                row_off += g.src[j].rows;
            cn.lin[i] = g.n_src == 1 ? g.d : sub_linear(g.d, row_off, g.src[n.w[i]->part].rows);
            cn.off[i] = total;
            total += cn.lin[i].rows;
        }
    }
    cn.fused_gate = n.gate && one;
    for (int i = 0; i < cn.n_lin; i++)
        if (cn.lin[i].cols > cn.ldx)
            return hr_error_set(err, HR_ERR_INVALID_ARG, "CUDA: linear (layer %d) of %d inputs over an activation %d "
                                "wide", n.layer, cn.lin[i].cols, cn.ldx);
    if (n.gate ? (cn.n_lin == 2 && cn.lin[0].rows != cn.lin[1].rows) || total / 2 != cn.ldy : total > cn.ldy)
        return hr_error_set(err, HR_ERR_INVALID_ARG, "CUDA: linear (layer %d) of %d outputs into an activation %d "
                            "wide", n.layer, n.gate ? total / 2 : total, cn.ldy);
    if (n.gate && (!d->gu || (size_t)total > d->widest_run))
        return hr_error_set(err, HR_ERR_INVALID_ARG, "CUDA: a gate over matrices the model did not stack");
    if (n.bias && (n.bias->role != HR_W_VECTOR || n.bias->n != total || n.gate))
        return hr_error_set(err, HR_ERR_INVALID_ARG, "CUDA: linear (layer %d): the bias is not %d long", n.layer,
                            total);
    cn.bias = n.bias ? n.bias->vec : nullptr;
    return HR_OK;
}

HrStatus
ops_compile(void *p, const HrNode *nodes, int n_nodes, int max_tokens, void **prog_out, HrError *err)
{
    OpsDev *d = static_cast<OpsDev *>(p);
    Ctx *c = &d->c;
    const HrModelConfig &cfg = c->cfg;
    Prog *g = new Prog();
    d->progs.push_back(g);
    g->decode = max_tokens == 1;
    // ROPE_KV leaves q inside q|k|v (the kernels rotate it in place): a view
    // of q's buffer there, valid until q|k|v is written again.
    struct View {
        const HrOpsBuffer *buf, *base;
        bool stale;
    };
    std::vector<View> views;
    const float *pre_x = nullptr;
    bool pre_ok = true;
    for (int i = 0; i < n_nodes; i++) {
        CNode cn = {};
        cn.n = nodes[i];
        const HrNode &n = cn.n;
        // Gemma 2's and 3's parts (ops version 7) have no kernels here yet
        if (n.act != HR_ACT_SILU || n.local_rope || n.scale != 0.0f || n.softcap != 0.0f ||
            (n.op == HR_OP_RMSNORM && n.residual))
            return hr_error_set(err, HR_ERR_UNSUPPORTED, "CUDA: node %d needs Gemma's kernels (GELU gate, local RoPE, "
                                "an embedding or score scale, soft caps, a norm added to the residual), which this "
                                "backend lacks", i);
        if (n.src) {
            cn.x = n.src->act;
            cn.ldx = n.src->width;
            for (const View &v : views) {
                if (v.buf != n.src)
                    continue;
                if (v.stale || (n.op != HR_OP_ATTENTION && n.op != HR_OP_LINEAR))
                    return hr_error_set(err, HR_ERR_UNSUPPORTED, "CUDA: node %d reads q after q|k|v changed", i);
                cn.x = v.base->act;
                cn.ldx = v.base->width;
            }
            if (!cn.x)
                return hr_error_set(err, HR_ERR_INVALID_ARG, "CUDA: node %d reads a KV cache as an activation", i);
        }
        if (n.dst) {
            cn.y = n.dst->act;
            cn.ldy = n.dst->width;
            if (!cn.y)
                return hr_error_set(err, HR_ERR_INVALID_ARG, "CUDA: node %d writes a KV cache as an activation", i);
            for (size_t j = 0; j < views.size();) {
                if (views[j].buf == n.dst) {
                    views.erase(views.begin() + (long)j);   // dst holds its own values again
                    continue;
                }
                if (views[j].base == n.dst)
                    views[j].stale = true;
                j++;
            }
        }
        if (n.k_cache || n.v_cache) {
            if (!n.k_cache || !n.v_cache || !n.k_cache->kv || !n.v_cache->kv)
                return hr_error_set(err, HR_ERR_INVALID_ARG, "CUDA: node %d needs both KV caches", i);
            cn.kc = n.k_cache->kv;
            cn.vc = n.v_cache->kv;
        }
        const bool need_src = n.op != HR_OP_EMBED, need_dst = n.op != HR_OP_LOGITS;
        if ((need_src && !n.src) || (need_dst && !n.dst))
            return hr_error_set(err, HR_ERR_INVALID_ARG, "CUDA: node %d lacks an operand", i);
        HrStatus st = HR_OK;
        switch (n.op) {
        case HR_OP_EMBED:
            if (!n.w[0] || n.w[0]->role != HR_W_EMBED || cn.ldy != cfg.dim)
                st = hr_error_set(err, HR_ERR_INVALID_ARG, "CUDA: embed node %d", i);
            break;
        case HR_OP_RMSNORM:
            if (!n.w[0] || n.w[0]->role != HR_W_VECTOR || n.w[0]->n != cfg.dim || cn.ldx != cfg.dim ||
                cn.ldy != cfg.dim)
                st = hr_error_set(err, HR_ERR_UNSUPPORTED, "CUDA: RMSNorm node %d is not %d wide", i, cfg.dim);
            cn.norm_w = n.w[0] ? n.w[0]->vec : nullptr;
            pre_ok = pre_ok && (!pre_x || pre_x == cn.y);
            pre_x = cn.y;
            break;
        case HR_OP_LINEAR:
            st = resolve_linear(d, cn, err);
            break;
        case HR_OP_ROPE_KV:
            if (cn.ldx != c->qkv_dim || cn.ldy != c->q_dim || !cn.kc)
                st = hr_error_set(err, HR_ERR_INVALID_ARG, "CUDA: RoPE node %d: q|k|v %d wide into q %d", i, cn.ldx,
                                  cn.ldy);
            else if (n.n_w == 2 && (!n.w[0] || !n.w[1] || n.w[0]->role != HR_W_VECTOR ||
                                    n.w[1]->role != HR_W_VECTOR || n.w[0]->n != cfg.head_dim ||
                                    n.w[1]->n != cfg.head_dim))
                st = hr_error_set(err, HR_ERR_INVALID_ARG, "CUDA: RoPE node %d: q/k norms not [%d]", i,
                                  cfg.head_dim);
            else
                views.push_back(View{ n.dst, n.src, false });
            cn.norm_w = n.n_w == 2 && n.w[0] ? n.w[0]->vec : nullptr;
            cn.knorm_w = n.n_w == 2 && n.w[1] ? n.w[1]->vec : nullptr;
            break;
        case HR_OP_ATTENTION:
            if (cn.ldy != c->q_dim || !cn.kc)
                st = hr_error_set(err, HR_ERR_INVALID_ARG, "CUDA: attention node %d", i);
            break;
        case HR_OP_LOGITS:
            if (!n.w[0] || n.w[0]->role != HR_W_LM_HEAD || cn.ldx != cfg.dim)
                st = hr_error_set(err, HR_ERR_INVALID_ARG, "CUDA: logits node %d", i);
            break;
        }
        if (st != HR_OK)
            return st;
        g->nodes.push_back(cn);
    }
    // the q8 GEMV's pre-rounded activations: the one buffer every RMSNorm writes
    if (c->wk.pre_xq)
        c->wk.pre_x = pre_ok ? pre_x : nullptr;
    *prog_out = g;
    return HR_OK;
}

// The launches of one step of T tokens (ids and positions in d_step); the
// logits rows of tokens logit_first..T-1 into d->logits from row 0 and the
// last one's argmax; with sample, the draw's kernels after them.
void
interpret(OpsDev *d, const Prog *g, int T, int logit_first, bool sample)
{
    Ctx *c = &d->c;
    const HrModelConfig &cfg = c->cfg;
    cudaStream_t s = c->s;
    const int hd = cfg.head_dim;
    const bool decode = T == 1;
    const bool gemv = gemv_path(c, T);
    for (const CNode &cn : g->nodes) {
        const HrNode &n = cn.n;
        switch (n.op) {
        case HR_OP_EMBED:
            launch_embed_linear(n.w[0]->d, c->d_step + 2, T, cfg.dim, cn.y, s);
            break;
        case HR_OP_RMSNORM: {
            const int first = n.logit_rows ? logit_first : 0, rows = T - first;
            if (rows <= 0)
                break;
            const float *x = cn.x + (size_t)first * cn.ldx;
            float *y = cn.y + (size_t)first * cn.ldy;
            if (c->wk.pre_xq && y == c->wk.pre_x && gemv_path(c, rows) && rows <= c->wk.xq_rows)
                launch_rmsnorm_q8(x, cn.norm_w, y, rows, cfg.dim, cfg.norm_eps, q4_kw(cfg.dim) * 8, c->wk.pre_xq,
                                  c->wk.pre_xs, s);
            else
                launch_rmsnorm(x, cn.norm_w, y, rows, cfg.dim, cfg.norm_eps, s);
            break;
        }
        case HR_OP_LINEAR: {
            const Epilogue epi = n.residual ? EPI_RESIDUAL : EPI_STORE;
            if (n.gate && cn.fused_gate && gemv) {
                launch_linear(cn.lin[0], cn.x, cn.ldx, T, nullptr, cn.y, cn.ldy, EPI_SILU_MUL, c->path, s, &c->wk);
            } else if (n.gate) {
                const int H = cn.ldy;
                for (int i = 0; i < cn.n_lin; i++)
                    launch_linear(cn.lin[i], cn.x, cn.ldx, T, nullptr, d->gu + cn.off[i], 2 * H, EPI_STORE, c->path,
                                  s, &c->wk);
                launch_silu_mul(d->gu, H, T, cn.y, s);
            } else {
                for (int i = 0; i < cn.n_lin; i++)
                    launch_linear(cn.lin[i], cn.x, cn.ldx, T, cn.bias ? cn.bias + cn.off[i] : nullptr, cn.y + cn.off[i],
                                  cn.ldy, epi, c->path, s, &c->wk);
            }
            break;
        }
        case HR_OP_ROPE_KV:
            if (cn.norm_w)   // Qwen3: every q and k head normalised first
                launch_head_norm(const_cast<float *>(cn.x), cn.norm_w, cn.knorm_w, T, cfg.n_heads, cfg.n_kv_heads, hd,
                                 cfg.norm_eps, s);
            // q and k rotated in place in q|k|v (src); q is read there (compile()'s view)
            if (c->attn_tiled)
                launch_rope_kv_wide(const_cast<float *>(cn.x), cn.kc, cn.vc, c->inv_freq, c->d_step, T, cfg.n_heads,
                                    cfg.n_kv_heads, hd, s);
            else
                launch_rope_kv(const_cast<float *>(cn.x), cn.kc, cn.vc, c->inv_freq, c->d_step, T, cfg.n_heads,
                               cfg.n_kv_heads, hd, s);
            break;
        case HR_OP_ATTENTION: {
            const int split_len = decode ? c->dec_split_len : c->pre_split_len;
            const int max_splits = decode ? c->dec_splits : PREFILL_SPLITS;
            if (c->attn_tiled && T >= 16 && attention_tc_ok(cfg.n_heads, cfg.n_kv_heads, hd))
                launch_attention_tc(cn.x, cn.ldx, cn.kc, cn.vc, cn.y, c->d_step, T, cfg.n_heads, cfg.n_kv_heads, hd,
                                    cn.n.window, s);
            else if (c->attn_tiled)
                launch_attention_tiled(cn.x, cn.ldx, cn.kc, cn.vc, c->part, cn.y, c->d_step, T, cfg.n_heads,
                                       cfg.n_kv_heads, hd, cn.n.window, split_len, max_splits, s);
            else
                launch_attention(cn.x, cn.ldx, cn.kc, cn.vc, c->part, cn.y, c->d_step, T, cfg.n_heads, cfg.n_kv_heads,
                                 hd, cn.n.window, split_len, max_splits, s);
            break;
        }
        case HR_OP_LOGITS: {
            const int rows = T - logit_first;
            if (rows <= 0)
                break;
            launch_linear(n.w[0]->d, cn.x + (size_t)logit_first * cn.ldx, cn.ldx, rows, nullptr, d->logits,
                          cfg.vocab_size, EPI_STORE, c->path, s, &c->wk);
            launch_argmax(d->logits + (size_t)(rows - 1) * cfg.vocab_size, cfg.vocab_size, c->d_argmax, s);
            break;
        }
        }
    }
    if (sample)
        run_sample(c);
}

HrStatus
ops_run(void *p, void *prog, const HrStep *s, HrError *err)
{
    OpsDev *d = static_cast<OpsDev *>(p);
    Ctx *c = &d->c;
    Prog *g = static_cast<Prog *>(prog);
    if (s->n < 1 || s->n > (g->decode ? 1 : c->chunk) || s->logit_first < 0 || s->logit_first > s->n ||
        s->n - s->logit_first > d->logit_rows)
        return hr_error_set(err, HR_ERR_INVALID_ARG, "run: %d tokens, %d logits rows", s->n, s->n - s->logit_first);
    const HrSampleSpec *sp = s->sample;
    if (sp && (!c->draws || !g->decode || s->logit_first != 0 || sp->n_seen < 0 || sp->n_seen > c->cfg.vocab_size ||
               (sp->n_seen > 0 && !sp->seen)))
        return hr_error_set(err, HR_ERR_INVALID_ARG, "run: a sample spec needs one token and at most the vocabulary's "
                            "ids");
    d->argmax_ok = false;
    c->sampled = false;
    HrStatus st;
    if (sp) {
        c->spec = *sp;
        if ((st = put_sample(c, err)) != HR_OK)
            return st;
    }
    if ((st = put_step(c, s->tokens, s->n, s->pos, err)) != HR_OK)
        return st;
    const bool graphable = g->decode && s->logit_first == 0 && graphs_on();
    if (graphable && !g->tried) {
        g->tried = true;
        capture(c->s, [d, g] { interpret(d, g, 1, 0, false); }, &g->graph, &g->exec);
        if (c->draws && g->exec)
            capture(c->s, [d, g] { interpret(d, g, 1, 0, true); }, &g->graph_s, &g->exec_s);
        d->graphed = g->exec != nullptr;
    }
    cudaGraphExec_t exec = sp ? g->exec_s : g->exec;
    if (graphable && exec)
        CK(cudaGraphLaunch(exec, c->s));
    else
        interpret(d, g, s->n, s->logit_first, sp != nullptr);
    CK(cudaGetLastError());
    const int rows = s->n - s->logit_first;
    if (rows > 0 && s->logits) {
        CK(cudaMemcpyAsync(s->logits, d->logits, sizeof(float) * (size_t)rows * (size_t)c->cfg.vocab_size,
                           cudaMemcpyDeviceToHost, c->s));
        CK(cudaStreamSynchronize(c->s));
    }
    c->sampled = sp != nullptr;
    d->argmax_ok = rows > 0;
    return HR_OK;
}

void
ops_memory(void *p, HrMemoryReport *out)
{
    OpsDev *d = static_cast<OpsDev *>(p);
    out->weight_bytes = d->c.weight_bytes;
    size_t embed = 0;
    bool lm_reads_embed = false;
    for (const Planned &pl : d->plan) {
        if (pl.role == HR_W_EMBED && pl.group >= 0)
            embed = dlinear_bytes(d->groups[(size_t)pl.group].d);
        lm_reads_embed = lm_reads_embed || (pl.role == HR_W_LM_HEAD && pl.group < 0);
    }
    out->decode_weight_bytes = d->c.weight_bytes - (lm_reads_embed ? 0 : embed);
    out->kv_bytes = d->c.kv_bytes;
    out->scratch_bytes = d->c.scratch_bytes;
    out->location = "device";
    out->load_upload_s = d->upload_s;
}

int
ops_last_argmax(void *p)
{
    OpsDev *d = static_cast<OpsDev *>(p);
    if (!d->argmax_ok)
        return -1;
    int v = -1;
    if (cudaMemcpyAsync(&v, d->c.d_argmax, sizeof v, cudaMemcpyDeviceToHost, d->c.s) != cudaSuccess ||
        cudaStreamSynchronize(d->c.s) != cudaSuccess) {
        cudaGetLastError();
        return -1;
    }
    return v;
}

HrStatus
ops_candidates(void *p, HrCandidates *out, HrError *err)
{
    return cuda_candidates(&static_cast<OpsDev *>(p)->c, out, err);
}

HrStatus
ops_read_logits(void *p, float *out, HrError *err)
{
    OpsDev *d = static_cast<OpsDev *>(p);
    if (!d->c.sampled)
        return hr_error_set(err, HR_ERR_INVALID_ARG, "read_logits: the last step kept no logits on the device");
    CK(cudaMemcpyAsync(out, d->logits, sizeof(float) * (size_t)d->c.cfg.vocab_size, cudaMemcpyDeviceToHost,
                       d->c.s));
    CK(cudaStreamSynchronize(d->c.s));
    return HR_OK;
}

// The quantizer's block forward (ops.h): a dense linear takes FP32 rows
// (rounded to FP16 as at load), a vector FP32 values; activations cross in
// stream order (read synchronizes).
HrStatus
ops_set_weight(void *p, HrOpsWeight *w, const float *data, HrError *err)
{
    OpsDev *d = static_cast<OpsDev *>(p);
    Ctx *c = &d->c;
    if (w->role == HR_W_VECTOR) {
        CK(cudaMemcpyAsync(w->vec, data, sizeof(float) * (size_t)w->n, cudaMemcpyHostToDevice, c->s));
        return HR_OK;
    }
    if (w->role != HR_W_LINEAR || d->groups[(size_t)w->group].d.kind != LIN_F16)
        return hr_error_set(err, HR_ERR_UNSUPPORTED, "set_weight: only a dense linear or a vector");
    const LinGroup &g = d->groups[(size_t)w->group];
    const SrcLinear &src = g.src[w->part];
    int row_off = 0;
    for (int j = 0; j < w->part; j++)
        row_off += g.src[j].rows;
    const DLinear &dl = g.d;
    std::vector<uint16_t> h((size_t)src.rows * (size_t)dl.ldw);
    if (!d->pool)
        d->pool = hr_pool_new(0);
    struct Job {
        const float *data;
        int cols, ldw;
        uint16_t *h;
    } job = { data, src.cols, dl.ldw, h.data() };
    hr_pool_run(d->pool, [](void *arg, int r0, int r1) {
        const Job *j = static_cast<const Job *>(arg);
        convert_rows_f16(j->data, (int)HR_DTYPE_F32, j->cols, j->ldw, r0, r1, j->h + (size_t)r0 * (size_t)j->ldw);
    }, &job, src.rows, 64);
    CK(cudaMemcpyAsync(dl.w + (size_t)row_off * dl.ldw, h.data(), 2 * h.size(), cudaMemcpyHostToDevice, c->s));
    CK(cudaStreamSynchronize(c->s));   // h is freed on return
    return HR_OK;
}

HrStatus
ops_write(void *p, HrOpsBuffer *b, const float *data, int n, HrError *err)
{
    OpsDev *d = static_cast<OpsDev *>(p);
    if (!b->act || n < 0 || n > d->c.chunk)
        return hr_error_set(err, HR_ERR_INVALID_ARG, "write: %d rows into an activation of %d", n, d->c.chunk);
    CK(cudaMemcpyAsync(b->act, data, sizeof(float) * (size_t)n * (size_t)b->width, cudaMemcpyHostToDevice, d->c.s));
    return HR_OK;
}

HrStatus
ops_read(void *p, HrOpsBuffer *b, float *data, int n, HrError *err)
{
    OpsDev *d = static_cast<OpsDev *>(p);
    if (!b->act || n < 0 || n > d->c.chunk)
        return hr_error_set(err, HR_ERR_INVALID_ARG, "read: %d rows of an activation of %d", n, d->c.chunk);
    CK(cudaMemcpyAsync(data, b->act, sizeof(float) * (size_t)n * (size_t)b->width, cudaMemcpyDeviceToHost, d->c.s));
    CK(cudaStreamSynchronize(d->c.s));
    return HR_OK;
}

HrStatus
ops_tensor(void *p, int64_t rows, int64_t width, HrOpsBuffer **out, HrError *err)
{
    OpsDev *d = static_cast<OpsDev *>(p);
    Ctx *c = &d->c;
    if (rows < 1 || width < 1 || width > (1 << 24))
        return hr_error_set(err, HR_ERR_INVALID_ARG, "CUDA: a tensor of %lld x %lld", (long long)rows,
                            (long long)width);
    HrOpsBuffer *b = new HrOpsBuffer();
    d->buffers.push_back(b);
    *out = b;
    b->width = (int)width;
    b->rows = rows;
    const size_t bytes = (size_t)rows * (size_t)width * sizeof(float);
    CK(cudaMalloc(&b->act, bytes));
    CK(cudaMalloc(&b->sums, (size_t)rows * sizeof(double)));
    CK(cudaMemsetAsync(b->act, 0, bytes, c->s));
    CK(cudaMemsetAsync(b->sums, 0, (size_t)rows * sizeof(double), c->s));
    c->scratch_bytes += bytes + (size_t)rows * sizeof(double);
    return HR_OK;
}

bool
tensor_rows(const HrOpsBuffer *t, int64_t row0, int64_t n)
{
    return t->sums && hr_ops_rows_in(t->rows, row0, n);
}

HrStatus
ops_tensor_write(void *p, HrOpsBuffer *t, int64_t row0, const float *data, int64_t n, HrError *err)
{
    OpsDev *d = static_cast<OpsDev *>(p);
    if (!tensor_rows(t, row0, n))
        return hr_error_set(err, HR_ERR_INVALID_ARG, "tensor_write: rows %lld+%lld", (long long)row0, (long long)n);
    CK(cudaMemcpyAsync(t->act + (size_t)row0 * (size_t)t->width, data, sizeof(float) * (size_t)n * (size_t)t->width,
                       cudaMemcpyHostToDevice, d->c.s));
    return HR_OK;
}

HrStatus
ops_copy_rows(void *p, HrOpsBuffer *a, HrOpsBuffer *t, int64_t row0, int n, bool to_tensor, HrError *err)
{
    OpsDev *d = static_cast<OpsDev *>(p);
    if (!tensor_rows(t, row0, n) || !a->act || a->sums || n > d->c.chunk || a->width != t->width)
        return hr_error_set(err, HR_ERR_INVALID_ARG, "copy_rows: %d rows at %lld", n, (long long)row0);
    float *tr = t->act + (size_t)row0 * (size_t)t->width;
    const size_t bytes = sizeof(float) * (size_t)n * (size_t)t->width;
    CK(cudaMemcpyAsync(to_tensor ? tr : a->act, to_tensor ? a->act : tr, bytes, cudaMemcpyDeviceToDevice, d->c.s));
    return HR_OK;
}

HrStatus
ops_sq_diff(void *p, HrOpsBuffer *a, HrOpsBuffer *t, int64_t row0, int n, HrError *err)
{
    OpsDev *d = static_cast<OpsDev *>(p);
    if (!tensor_rows(t, row0, n) || !a->act || a->sums || n > d->c.chunk || a->width != t->width)
        return hr_error_set(err, HR_ERR_INVALID_ARG, "sq_diff: %d rows at %lld", n, (long long)row0);
    launch_sq_diff(a->act, t->act + (size_t)row0 * (size_t)t->width, t->width, n, t->sums + row0, d->c.s);
    CK(cudaGetLastError());
    return HR_OK;
}

HrStatus
ops_sq_total(void *p, HrOpsBuffer *t, double *out, HrError *err)
{
    OpsDev *d = static_cast<OpsDev *>(p);
    if (!t->sums)
        return hr_error_set(err, HR_ERR_INVALID_ARG, "sq_total: not a tensor");
    std::vector<double> h((size_t)t->rows);
    CK(cudaMemcpyAsync(h.data(), t->sums, sizeof(double) * h.size(), cudaMemcpyDeviceToHost, d->c.s));
    CK(cudaStreamSynchronize(d->c.s));
    double sum = 0.0;
    for (double v : h)
        sum += v;
    *out = sum;
    return HR_OK;
}

HrStatus
ops_scale_quant(void *p, HrOpsWeight *w, HrOpsBuffer *t, const float *s, int group, int bits, bool delta,
                HrError *err)
{
    OpsDev *d = static_cast<OpsDev *>(p);
    Ctx *c = &d->c;
    if (w->role != HR_W_LINEAR || d->groups[(size_t)w->group].d.kind != LIN_F16)
        return hr_error_set(err, HR_ERR_UNSUPPORTED, "scale_quant: only a dense linear");
    const LinGroup &g = d->groups[(size_t)w->group];
    const SrcLinear &src = g.src[w->part];
    if (!t->sums || t->rows != src.rows || t->width != src.cols || group < 1 || src.cols % group || bits < 2 ||
        bits > 8)
        return hr_error_set(err, HR_ERR_INVALID_ARG,
                            "scale_quant: a [%lld, %d] tensor for a [%d, %d] linear, groups of %d, %d bits",
                            (long long)t->rows, t->width, src.rows, src.cols, group, bits);
    int row_off = 0;
    for (int j = 0; j < w->part; j++)
        row_off += g.src[j].rows;
    if (d->qs_cap < src.cols) {
        CK(cudaStreamSynchronize(c->s));   // the last kernel may still read the old one
        cudaFree(d->qs);
        d->qs = nullptr;
        d->qs_cap = 0;
        CK(cudaMalloc(&d->qs, sizeof(float) * (size_t)src.cols));
        d->qs_cap = src.cols;
    }
    // (pageable: the call returns once s is staged, so the caller may free it)
    CK(cudaMemcpyAsync(d->qs, s, sizeof(float) * (size_t)src.cols, cudaMemcpyHostToDevice, c->s));
    const DLinear &dl = g.d;
    launch_scale_quant(t->act, src.rows, src.cols, d->qs, group, bits, delta, dl.w + (size_t)row_off * dl.ldw, dl.ldw,
                       c->s);
    CK(cudaGetLastError());
    return HR_OK;
}

HrStatus
ops_clip_search(void *p, HrOpsBuffer *w, HrOpsBuffer *x, int nt, int step, int group, int bits, int steps, int grid,
                float *lim, HrError *err)
{
    OpsDev *d = static_cast<OpsDev *>(p);
    Ctx *c = &d->c;
    if (!w->sums || !x->sums || w->width != x->width || group < 1 || group > 256 || w->width % group || bits < 2 ||
        bits > 8 || steps < 1 || grid < 1 || nt < 1 || step < 1 || (int64_t)(nt - 1) * step >= x->rows)
        return hr_error_set(err, HR_ERR_INVALID_ARG, "clip_search: a [%lld, %d] weight over [%lld, %d] inputs, "
                            "groups of %d", (long long)w->rows, w->width, (long long)x->rows, x->width, group);
    const size_t n_lim = (size_t)w->rows * (size_t)(w->width / group);
    float *C = nullptr, *dl = nullptr;
    CK(cudaMalloc(&C, sizeof(float) * (size_t)w->width * (size_t)group));
    if (cudaMalloc(&dl, sizeof(float) * n_lim) != cudaSuccess) {
        cudaFree(C);
        return hr_error_set(err, HR_ERR_NOMEM, "clip_search: no device memory for %zu limits", n_lim);
    }
    launch_clip_search(w->act, (int)w->rows, w->width, x->act, (size_t)step * (size_t)x->width, nt, group, bits, steps,
                       grid, C, dl, c->s);
    cudaError_t e = cudaGetLastError();
    if (e == cudaSuccess)
        e = cudaMemcpyAsync(lim, dl, sizeof(float) * n_lim, cudaMemcpyDeviceToHost, c->s);
    if (e == cudaSuccess)
        e = cudaStreamSynchronize(c->s);
    cudaFree(C);
    cudaFree(dl);
    if (e != cudaSuccess)
        return cuda_fail(err, e, "clip_search");
    return HR_OK;
}

HrStatus
ops_col_abs_sum(void *p, HrOpsBuffer *t, double *out, HrError *err)
{
    OpsDev *d = static_cast<OpsDev *>(p);
    if (!t->sums)
        return hr_error_set(err, HR_ERR_INVALID_ARG, "col_abs_sum: not a tensor");
    double *ds = nullptr;
    CK(cudaMalloc(&ds, sizeof(double) * (size_t)t->width));
    launch_col_abs_sum(t->act, t->rows, t->width, ds, d->c.s);
    cudaError_t e = cudaGetLastError();
    if (e == cudaSuccess)
        e = cudaMemcpyAsync(out, ds, sizeof(double) * (size_t)t->width, cudaMemcpyDeviceToHost, d->c.s);
    if (e == cudaSuccess)
        e = cudaStreamSynchronize(d->c.s);
    cudaFree(ds);
    return e == cudaSuccess ? HR_OK : cuda_fail(err, e, "col_abs_sum");
}

HrStatus
ops_scale_cols(void *p, HrOpsBuffer *t, const float *s, HrError *err)
{
    OpsDev *d = static_cast<OpsDev *>(p);
    if (!t->sums)
        return hr_error_set(err, HR_ERR_INVALID_ARG, "scale_cols: not a tensor");
    float *ds = nullptr;
    CK(cudaMalloc(&ds, sizeof(float) * (size_t)t->width));
    cudaError_t e = cudaMemcpyAsync(ds, s, sizeof(float) * (size_t)t->width, cudaMemcpyHostToDevice, d->c.s);
    if (e == cudaSuccess) {
        launch_div_cols(t->act, t->rows, t->width, ds, d->c.s);
        e = cudaGetLastError();
    }
    if (e == cudaSuccess)
        e = cudaStreamSynchronize(d->c.s);   // ds is freed below
    cudaFree(ds);
    return e == cudaSuccess ? HR_OK : cuda_fail(err, e, "scale_cols");
}

const HrOps cuda_ops = {
    HR_OPS_API_VERSION,
    "cuda",
    ops_open,
    ops_close,
    ops_weight,
    ops_weights_done,
    ops_activation,
    ops_kv_cache,
    ops_compile,
    ops_run,
    ops_memory,
    ops_last_argmax,
    ops_candidates,
    ops_read_logits,
    ops_set_weight,
    ops_write,
    ops_read,
    ops_tensor,
    ops_tensor_write,
    ops_copy_rows,
    ops_sq_diff,
    ops_sq_total,
    ops_scale_quant,
    ops_clip_search,
    ops_col_abs_sum,
    ops_scale_cols,
    nullptr,         // kv_ring: every layer's caches hold the whole context
};

// ---- the whole-model interface: the backend above, or llama.c over cuda_ops --------------

// A model made by either (HEARTH_CUDA_OPS=1: llama.c).
struct Handle {
    Ctx *c;        // the whole-model backend's context, or the ops device's
    void *llama;   // llama.c's context, or NULL
};

bool
ops_wanted()
{
    const char *e = getenv("HEARTH_CUDA_OPS");
    return e && strcmp(e, "1") == 0;
}

HrStatus
h_create(const HrModelConfig *cfg, const HrTensorSet *ts, const HrBackendOptions *opt, HrProgressFunc progress,
         void *user, void **ctx_out, HrError *err)
{
    *ctx_out = nullptr;
    // Gemma 2 and 3 and Phi-3: no kernels for their parts in either front end
    if (cfg->arch == HR_ARCH_GEMMA3 || cfg->arch == HR_ARCH_GEMMA2)
        return hr_error_set(err, HR_ERR_UNSUPPORTED, "the CUDA backend does not run Gemma 2 or 3 yet (their norms "
                            "after attention and the MLP, GELU gate and sliding-window layers); use Vulkan or the "
                            "CPU");
    if (cfg->arch == HR_ARCH_PHI3)
        return hr_error_set(err, HR_ERR_UNSUPPORTED, "the CUDA backend does not run Phi-3 yet (its LongRoPE and "
                            "partial rotary embeddings); use Vulkan or the CPU");
    // Qwen3's q/k norms: only under the op table (k_head_norm, HEARTH_CUDA_OPS=1), which has not run on a
    // device yet either; the whole-model front end has none
    if (cfg->qk_norm && !ops_wanted())
        return hr_error_set(err, HR_ERR_UNSUPPORTED, "the CUDA backend does not run Qwen3 yet (its per-head q/k "
                            "norms; HEARTH_CUDA_OPS=1 tries them); use Vulkan or the CPU");
    Handle *h = static_cast<Handle *>(calloc(1, sizeof(Handle)));
    HrStatus st;
    if (ops_wanted()) {
        st = hr_llama_create(&cuda_ops, cfg, ts, opt, progress, user, &h->llama, err);
        if (st == HR_OK)
            h->c = &static_cast<OpsDev *>(hr_llama_device(h->llama))->c;
    } else {
        void *c = nullptr;
        st = cuda_create(cfg, ts, opt, progress, user, &c, err);
        h->c = static_cast<Ctx *>(c);
    }
    if (st != HR_OK) {
        free(h);
        return st;
    }
    *ctx_out = h;
    return HR_OK;
}

void
h_destroy(void *p)
{
    Handle *h = static_cast<Handle *>(p);
    if (!h)
        return;
    if (h->llama)
        hr_llama_destroy(h->llama);
    else
        cuda_destroy(h->c);
    free(h);
}

HrStatus
h_forward(void *p, const int32_t *tokens, int n_tokens, int pos, bool all_logits, HrError *err)
{
    Handle *h = static_cast<Handle *>(p);
    return h->llama ? hr_llama_forward(h->llama, tokens, n_tokens, pos, all_logits, err)
                    : cuda_forward(h->c, tokens, n_tokens, pos, all_logits, err);
}

HrStatus
h_get_logits(void *p, int row, float *out, HrError *err)
{
    Handle *h = static_cast<Handle *>(p);
    return h->llama ? hr_llama_get_logits(h->llama, row, out, err) : cuda_get_logits(h->c, row, out, err);
}

void
h_memory(void *p, HrMemoryReport *out)
{
    Handle *h = static_cast<Handle *>(p);
    if (h->llama)
        hr_llama_memory(h->llama, out);
    else
        cuda_memory(h->c, out);
}

HrStatus
h_read_bandwidth(void *p, double *bytes_per_s, HrError *err)
{
    return cuda_read_bandwidth(static_cast<Handle *>(p)->c, bytes_per_s, err);
}

void
h_set_sample(void *p, const HrSampleSpec *spec)
{
    Handle *h = static_cast<Handle *>(p);
    if (h->llama)
        hr_llama_set_sample(h->llama, spec);
    else
        cuda_set_sample(h->c, spec);
}

HrStatus
h_candidates(void *p, HrCandidates *out, HrError *err)
{
    Handle *h = static_cast<Handle *>(p);
    return h->llama ? hr_llama_candidates(h->llama, out, err) : cuda_candidates(h->c, out, err);
}

}  // namespace

extern "C" int
hr_cuda_backend_last_argmax(void *p)
{
    Handle *h = static_cast<Handle *>(p);
    if (h->llama)
        return hr_llama_last_argmax(h->llama);
    Ctx *c = h->c;
    int v = -1;
    if (cudaMemcpyAsync(&v, c->d_argmax, sizeof v, cudaMemcpyDeviceToHost, c->s) != cudaSuccess ||
        cudaStreamSynchronize(c->s) != cudaSuccess) {
        cudaGetLastError();
        return -1;
    }
    return v;
}

extern "C" int
hr_cuda_backend_uses_graph(void *p)
{
    Handle *h = static_cast<Handle *>(p);
    return h->llama ? static_cast<OpsDev *>(hr_llama_device(h->llama))->graphed : h->c->graph_exec != nullptr;
}

extern "C" const HrBackendOps hr_cuda_backend = {
    HR_BACKEND_API_VERSION,
    "cuda",
    h_create,
    h_destroy,
    h_forward,
    h_get_logits,
    h_memory,
    cuda_gemm_open,
    cuda_gemm_close,
    cuda_gemm,
    h_read_bandwidth,
    h_set_sample,    /* opt-in (HEARTH_DEVICE_SAMPLING=1); otherwise every draw reads the row */
    h_candidates,
    takes_ggml,      /* opt-in (HEARTH_CUDA_GGUF=1) */
    &cuda_ops,       /* the quantizer's block forward (HEARTH_AWQ_DEVICE=1) */
    nullptr,         /* kv_rewind: no layer's caches are rings here (cuda_ops has no kv_ring) */
};
