// cuda-backend.cu — the CUDA backend: a whole Llama-family model on one
// NVIDIA GPU behind the HrBackendOps table.
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

extern "C" {
#include "cpu-kernels.h"
#include "gguf-blocks.h"
#include "gguf.h"
#include "hr-cuda-backend.h"
#include "hr-half.h"
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
    const int widest = dim > H ? dim : H;
    size_t max_kp = 0, max_wh = 0, max_ldh = (size_t)f16_ldw(widest > c->q_dim ? widest : c->q_dim);
    for (int l = 0; l < cfg.n_layers; l++) {
        const Layer &L = c->layers[l];
        const LinGroup *gs[] = { &L.qkv[0], &L.qkv[1], &L.qkv[2], &L.o, &L.gu[0], &L.gu[1], &L.down };
        const bool used[] = { true, L.n_qkv > 1, L.n_qkv > 2, true, true, L.n_gu > 1, true };
        for (int i = 0; i < 7; i++) {
            const DLinear &d = gs[i]->d;
            if (!used[i] || d.kind != LIN_Q4)
                continue;
            max_kp = (size_t)d.kw * 8 > max_kp ? (size_t)d.kw * 8 : max_kp;
            max_wh = (size_t)d.rows * d.kw * 8 > max_wh ? (size_t)d.rows * d.kw * 8 : max_wh;
        }
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
        c->wk.pre_x = c->xn;
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
    c->logits1 = a.take<float>((size_t)cfg.vocab_size, sb);
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
// ggml's own factors), staged a batch of rows at a time.
HrStatus
upload_ggml(Stager &st, const DLinear &d, const SrcLinear &s, int row_off, HrError *err)
{
    const HrTensor *t = s.w;
    int block = 0;
    size_t block_bytes = 0;
    hr_ggml_type_block(t->ggml_type, &block, &block_bytes);
    const size_t K = (size_t)s.cols, src_row = K / (size_t)block * block_bytes;
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

HrStatus
upload_group(Stager &st, const LinGroup &g, HrError *err)
{
    const DLinear &d = g.d;
    int row_off = 0;
    for (int i = 0; i < g.n_src; i++) {
        const SrcLinear &s = g.src[i];
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
                    repack_awq_rows_layout(st.pool, s.qw->data, s.qz->data, s.sc->data, s.rows, s.cols, s.ng, r0,
                                           r1, hq, hsz);
                else
                    repack_awq_rows(s.qw->data, s.qz->data, s.sc->data, s.rows, s.cols, s.ng, r0, r1, hq, hsz);
                CK(cudaMemcpyAsync(d.q + (size_t)(row_off + r0) * d.kw, hq, 4 * (size_t)(r1 - r0) * d.kw,
                                   cudaMemcpyHostToDevice, st.s));
                CK(cudaMemcpyAsync(d.sz + (size_t)(row_off + r0) * d.ng, hsz, 4 * (size_t)(r1 - r0) * d.ng,
                                   cudaMemcpyHostToDevice, st.s));
                CK(stage_end(st));
            }
        } else if (gguf_kind(d.kind)) {
            HrStatus gst = upload_ggml(st, d, s, row_off, err);
            if (gst != HR_OK)
                return gst;
        } else {
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
        }
        row_off += s.rows;
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

// The decode step (and, with sample, the draw's kernels) captured as a graph.
void
capture_one(Ctx *c, bool sample, cudaGraph_t *graph, cudaGraphExec_t *exec)
{
    *graph = nullptr;
    *exec = nullptr;
    if (cudaStreamBeginCapture(c->s, cudaStreamCaptureModeThreadLocal) != cudaSuccess) {
        cudaGetLastError();
        return;
    }
    run_chunk(c, 1, c->logits1, false);
    if (sample)
        run_sample(c);
    cudaGraph_t g = nullptr;
    cudaError_t e = cudaStreamEndCapture(c->s, &g);
    if (e == cudaSuccess && g && cudaGraphInstantiate(exec, g, 0) == cudaSuccess) {
        *graph = g;
        return;
    }
    cudaGetLastError();
    if (g)
        cudaGraphDestroy(g);
    *exec = nullptr;
}

void
capture_graph(Ctx *c)
{
    const char *env = getenv("HEARTH_CUDA_GRAPH");
    if (env && strcmp(env, "0") == 0)
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

// ---- ops -----------------------------------------------------------------------------

void
cuda_destroy(void *p)
{
    Ctx *c = static_cast<Ctx *>(p);
    if (!c)
        return;
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
    free(c);
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
        if ((st = plan_matrix(ts, "lm_head.weight", cfg.vocab_size, dim, false, &c->s_lm_head, err)))
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

HrStatus
cuda_create(const HrModelConfig *cfg, const HrTensorSet *ts, const HrBackendOptions *opt, HrProgressFunc progress,
            void *user, void **ctx_out, HrError *err)
{
    *ctx_out = nullptr;
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
    cudaDeviceProp prop;
    e = cudaGetDeviceProperties(&prop, device);
    if (e == cudaSuccess)
        e = cudaSetDevice(device);
    if (e != cudaSuccess)
        return cuda_fail(err, e, "cudaGetDeviceProperties");
    if (prop.major < 7 || (prop.major == 7 && prop.minor < 5))
        return hr_error_set(err, HR_ERR_UNSUPPORTED, "%s has compute capability %d.%d; the CUDA backend needs 7.5 "
                            "(Turing) or newer", prop.name, prop.major, prop.minor);

    Ctx *c = static_cast<Ctx *>(calloc(1, sizeof(Ctx)));
    c->cfg = *cfg;
    c->opt = *opt;
    c->device = device;
    c->q_dim = cfg->n_heads * cfg->head_dim;
    c->kv_dim = cfg->n_kv_heads * cfg->head_dim;
    c->qkv_dim = c->q_dim + 2 * c->kv_dim;
    c->layers = static_cast<Layer *>(calloc((size_t)cfg->n_layers, sizeof(Layer)));
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
        if (!c->wk.blas) {
            cuda_destroy(c);
            return hr_error_set(err, HR_ERR_DEVICE, "HEARTH_CUDA_GEMM=cublas: %s", why);
        }
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
    c->dec_splits = (opt->context_len + c->dec_split_len - 1) / c->dec_split_len;
    c->pre_split_len = (opt->context_len + PREFILL_SPLITS - 1) / PREFILL_SPLITS;

    HrStatus st = plan_model(c, ts, err);
    if (st != HR_OK) {
        cuda_destroy(c);
        return st;
    }
    Arena dry = { nullptr, 0 };
    assign_all(c, dry);
    const size_t need = dry.off;
    size_t free_b = 0, total_b = 0;
    e = cudaMemGetInfo(&free_b, &total_b);
    if (e != cudaSuccess) {
        st = cuda_fail(err, e, "cudaMemGetInfo");
        cuda_destroy(c);
        return st;
    }
    const int cap_mib = env_int("HEARTH_CUDA_MAX_MEMORY_MIB", -1);
    if (cap_mib >= 0 && (size_t)cap_mib << 20 < free_b)
        free_b = (size_t)cap_mib << 20;
    if (need + RESERVE_BYTES > free_b) {
        st = hr_error_set(err, HR_ERR_NOMEM, "%s: the model needs %zu MiB (%zu bytes) of device memory (weights "
                          "%zu MiB, KV cache %zu MiB for %d positions, scratch %zu MiB, + %zu MiB reserve) but only "
                          "%zu MiB (%zu bytes) of %zu MiB are free%s", prop.name, (need + RESERVE_BYTES) >> 20,
                          need + RESERVE_BYTES, c->weight_bytes >> 20, c->kv_bytes >> 20, opt->context_len,
                          c->scratch_bytes >> 20, RESERVE_BYTES >> 20, free_b >> 20, free_b, total_b >> 20,
                          cap_mib >= 0 ? " (capped by HEARTH_CUDA_MAX_MEMORY_MIB)" : "");
        cuda_destroy(c);
        return st;
    }
    e = cudaStreamCreateWithFlags(&c->s, cudaStreamNonBlocking);
    if (e == cudaSuccess)
        e = cudaMalloc(&c->arena, need);
    if (e == cudaSuccess)
        e = cudaMallocHost(&c->h_step, sizeof(int) * STEP_SLOTS * (size_t)c->step_ints);
    for (int i = 0; e == cudaSuccess && i < STEP_SLOTS; i++)
        e = cudaEventCreateWithFlags(&c->step_ev[i], cudaEventDisableTiming);
    if (e == cudaSuccess && c->draws)
        e = cudaMallocHost(&c->h_sample, sizeof(SampleParams) + sizeof(TopkRes) +
                                             sizeof(int32_t) * (size_t)cfg->vocab_size);
    if (e == cudaSuccess && c->draws)
        e = cudaEventCreateWithFlags(&c->sample_ev, cudaEventDisableTiming);
    if (e == cudaSuccess)
        e = cudaMemsetAsync(c->arena, 0, need, c->s);
    if (e != cudaSuccess) {
        st = cuda_fail(err, e, "allocating device memory");
        cuda_destroy(c);
        return st;
    }
    Arena real = { c->arena, 0 };
    assign_all(c, real);
    st = upload_model(c, progress, user, err);
    if (st != HR_OK) {
        cuda_destroy(c);
        return st;
    }
    capture_graph(c);
    e = cudaStreamSynchronize(c->s);
    if (e != cudaSuccess) {
        st = cuda_fail(err, e, "after loading");
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

}  // namespace

extern "C" int
hr_cuda_backend_last_argmax(void *p)
{
    Ctx *c = static_cast<Ctx *>(p);
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
    return static_cast<Ctx *>(p)->graph_exec != nullptr;
}

extern "C" const HrBackendOps hr_cuda_backend = {
    HR_BACKEND_API_VERSION,
    "cuda",
    cuda_create,
    cuda_destroy,
    cuda_forward,
    cuda_get_logits,
    cuda_memory,
    cuda_gemm_open,
    cuda_gemm_close,
    cuda_gemm,
    cuda_read_bandwidth,
    cuda_set_sample, /* opt-in (HEARTH_DEVICE_SAMPLING=1); otherwise every draw reads the row */
    cuda_candidates,
    takes_ggml,      /* opt-in (HEARTH_CUDA_GGUF=1) */
};
