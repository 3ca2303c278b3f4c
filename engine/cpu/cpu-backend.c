/* cpu-backend.c — the CPU backend: the ops of ops.h on the host, an exact
 * FP32 forward pass (the model itself is llama.c).
 *
 * This is the oracle the GPU backends are tested against, so clarity wins
 * over speed here: weights are used in place from the mmap'd safetensors
 * (F32, F16 or BF16, converted a row at a time), activations are FP32, the
 * KV cache is FP16 or FP32 (reference mode). AWQ (AutoAWQ GEMM) linears are
 * repacked once at load into HrQMat (4-bit, row-major, zero folded per
 * group) and dequantized inside the matmul; there is no dequantized copy.
 * A compiled node list is the list itself: run() interprets it, each op
 * splitting its work over the thread pool.
 */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <glib.h>

#include "awq-layout.h"
#include "backend.h"
#include "cpu-awq.h"
#include "cpu-bandwidth.h"
#include "cpu-kernels.h"
#include "gguf-blocks.h"
#include "gguf.h"
#include "hr-half.h"
#include "llama.h"

/* A linear layer: dense (used in place), 4-bit (AWQ, GGUF Q4_0/Q4_1/Q4_K;
 * repacked at load), int8 values with a scale per 32 or 16 and for some an
 * offset per 32 (GGUF Q8_0, Q5_0, Q5_1, Q5_K, Q6_K; repacked at load) or
 * another GGUF block type decoded a row at a time (none of those read yet). */
typedef struct {
    HrMat dense;
    HrQMat *q;                  /* non-NULL: 4-bit */
    HrQ8Mat *q8;                /* non-NULL: int8 blocks */
    const HrTensor *blocks;     /* non-NULL: GGUF blocks used in place */
    int rows, cols;
} CpuLinear;

struct HrOpsWeight {
    HrWeightRole role;
    CpuLinear lin;              /* EMBED, LM_HEAD, LINEAR */
    /* LM_HEAD: the lm_head rounded to int8 per block of 32 (4-bit models,
     * unless HEARTH_CPU_EXACT): decode reads it instead of the FP16 rows,
     * half the bytes; prefill with every row's logits (perplexity) keeps
     * the rows. */
    HrQ8Mat *lm_q8;
    float *vec;                 /* VECTOR */
    size_t n_vec;               /* its length */
    float *values;              /* LINEAR after set_weight: its own copy (freed with aligned_copies) */
};

struct HrOpsBuffer {
    void *data;                 /* FP32 [max_tokens, width], or a KV cache [context, kv_dim], or a
                                   tensor [rows, width] */
    void *alloc;                /* what data is carved from (calloc'd) */
    size_t width;               /* an activation's or a tensor's */
    int64_t rows;               /* a tensor's */
    double *row_sums;           /* a tensor's (sq_diff) */
};

/* n zero bytes at a 64-byte boundary: glibc serves large blocks 16 bytes
 * into a page, where every 64-byte vector load would straddle two cache
 * lines. calloc keeps the pages lazy (a long context's KV cache is not
 * touched until used). */
static bool
buffer_alloc(HrOpsBuffer *b, size_t bytes)
{
    b->alloc = calloc(1, bytes + 64);
    b->data = b->alloc ? (void *)(((uintptr_t)b->alloc + 63) & ~(uintptr_t)63) : NULL;
    return b->alloc != NULL;
}

typedef struct {
    HrModelConfig cfg;
    HrBackendOptions opt;
    HrThreadPool *pool;
    int max_tokens;
    GPtrArray *weights, *buffers, *progs; /* owned */
    float *inv_freq;            /* [hd/2] */
    float *inv_freq_local;      /* [hd/2] the sliding-window layers' (Gemma 3), else a copy */
    float *inv_freq_long;       /* [hd/2] LongRoPE's long set, else a copy */
    float *norm_row;            /* [dim] a residual RMSNORM's output */
    /* the ops' own scratch: the q|k|v outputs before they are laid side by
     * side, up's output beside gate's, a row of scores per query head */
    float *tqkv, *hb2, *scores;
    size_t scratch_bytes;
    size_t kv_bytes;
    size_t weight_bytes;
    size_t decode_weight_bytes; /* what one decode step reads */
    GPtrArray *aligned_copies;  /* weights whose mapped bytes were misaligned */
} CpuCtx;

typedef struct {
    HrNode *nodes;
    int n_nodes;
} CpuProg;

/* Prefill runs in chunks of this many tokens: each chunk reads (and for
 * 4-bit weights dequantizes) every matrix once, so larger chunks amortize
 * that; the scratch grows with it (29 MB for a 1B model, 52 MB for 8B).
 * 64 -> 256 measured 107/119 -> 136/139 tok/s on a 512-token prefill
 * (Llama-3.2-1B shape, AWQ). */
enum { CHUNK = HR_LLAMA_CPU_STEP };

static HrStatus
take_mat(CpuCtx *c, const HrTensorSet *ts, const char *name, int64_t rows, int64_t cols, HrMat *m,
         size_t *bytes, HrError *err)
{
    const HrTensor *t = hr_tensor_set_find(ts, name);
    if (!t)
        return hr_error_set(err, HR_ERR_FORMAT, "tensor '%s' is missing", name);
    if (t->dtype != HR_DTYPE_F32 && t->dtype != HR_DTYPE_F16 && t->dtype != HR_DTYPE_BF16)
        return hr_error_set(err, HR_ERR_UNSUPPORTED, "%s: tensor '%s' has dtype %s; the CPU backend "
                            "reads F32, F16 or BF16 here", t->file, name, hr_dtype_name(t->dtype));
    if (t->n_dims != 2 || t->shape[0] != rows || t->shape[1] != cols) {
        char shape[128] = "";
        for (int i = 0; i < t->n_dims; i++)
            g_snprintf(shape + strlen(shape), sizeof shape - strlen(shape), "%s%" G_GINT64_FORMAT,
                       i ? ", " : "", t->shape[i]);
        return hr_error_set(err, HR_ERR_FORMAT, "%s: tensor '%s' has shape [%s]; the config needs [%"
                            G_GINT64_FORMAT ", %" G_GINT64_FORMAT "]", t->file, name, shape, rows, cols);
    }
    m->data = t->data;
    /* Safetensors does not promise aligned data; the kernels read whole
     * elements, so a misaligned tensor is copied once. */
    if ((uintptr_t)t->data % hr_dtype_size(t->dtype) != 0) {
        void *copy = g_malloc(t->n_bytes);
        memcpy(copy, t->data, t->n_bytes);
        g_ptr_array_add(c->aligned_copies, copy);
        m->data = copy;
    }
    m->dtype = t->dtype;
    m->rows = (int)rows;
    m->cols = (int)cols;
    *bytes += t->n_bytes;
    return HR_OK;
}


static HrStatus
check_awq_tensor(const HrTensor *t, const char *name, HrDType dt, int64_t d0, int64_t d1, HrError *err)
{
    if (!t)
        return hr_error_set(err, HR_ERR_FORMAT, "AWQ tensor '%s' is missing", name);
    if (t->dtype != dt)
        return hr_error_set(err, HR_ERR_FORMAT, "%s: AWQ tensor '%s' has dtype %s; expected %s", t->file, name,
                            hr_dtype_name(t->dtype), hr_dtype_name(dt));
    if (t->n_dims != 2 || t->shape[0] != d0 || t->shape[1] != d1)
        return hr_error_set(err, HR_ERR_FORMAT, "%s: AWQ tensor '%s' has %d dims [%" G_GINT64_FORMAT ", %"
                            G_GINT64_FORMAT "]; the config needs [%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT "]",
                            t->file, name, t->n_dims, t->shape[0], t->n_dims > 1 ? t->shape[1] : 0, d0, d1);
    return HR_OK;
}

typedef struct {
    HrQMat *m;
    const void *qweight, *qzeros, *scales;
} RepackJob;

/* Output rows [128 start, 128 end) of the AutoAWQ tensors into HrQMat rows
 * (engine/awq-layout.c does the transposition). */
static void
repack_range(void *arg, int start, int end)
{
    const RepackJob *J = arg;
    HrQMat *m = J->m;
    const int N = m->rows, K = m->cols, ng = m->n_groups;
    const int n0 = 128 * start, n1 = MIN(N, 128 * end);
    hr_awq_unpack_rows(J->qweight, N, K, n0, n1, NULL, m->q + (size_t)n0 * (size_t)(K / 2), (size_t)(K / 2));
    hr_awq_unpack_zeros(J->qzeros, N, ng, n0, n1, m->zero + (size_t)n0 * (size_t)ng);
    hr_awq_unpack_scales(J->scales, N, ng, n0, n1, m->scale + (size_t)n0 * (size_t)ng);
}

/* Tell the kernel the whole pages inside [p, p + n) of a read-only file
 * mapping are not needed now (they are read back from the file if ever
 * touched again). */
static void
drop_pages(const void *p, int64_t n)
{
    const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t a = ((uintptr_t)p + page - 1) & ~(page - 1), b = ((uintptr_t)p + (uintptr_t)n) & ~(page - 1);
    if (b > a)
        madvise((void *)a, b - a, MADV_DONTNEED);
}

/* Repack an AutoAWQ GEMM linear (out = rows = N, in = cols = K) into HrQMat. */
static HrStatus
take_awq(CpuCtx *c, const HrTensorSet *ts, const char *prefix, int64_t N, int64_t K, HrQMat **out, size_t *bytes,
         HrError *err)
{
    char qn[160], zn[160], sn[160];
    g_snprintf(qn, sizeof qn, "%s.qweight", prefix);
    g_snprintf(zn, sizeof zn, "%s.qzeros", prefix);
    g_snprintf(sn, sizeof sn, "%s.scales", prefix);
    if (N % 8 != 0 || K % 2 != 0)
        return hr_error_set(err, HR_ERR_UNSUPPORTED, "AWQ linear '%s' is [%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT
                            "]: out must be a multiple of 8 and in even", prefix, N, K);
    const HrTensor *ts_s = hr_tensor_set_find(ts, sn);
    if (!ts_s || ts_s->n_dims != 2 || ts_s->shape[0] < 1)
        return hr_error_set(err, HR_ERR_FORMAT, "AWQ tensor '%s' is missing or not 2-D", sn);
    int64_t ng = ts_s->shape[0];
    if (K % ng != 0 || (K / ng) % 2 != 0)
        return hr_error_set(err, HR_ERR_FORMAT, "%s: '%s' has %" G_GINT64_FORMAT " groups, which do not split "
                            "the %" G_GINT64_FORMAT " inputs into even groups", ts_s->file, sn, ng, K);
    HrStatus st;
    const HrTensor *tq = hr_tensor_set_find(ts, qn), *tz = hr_tensor_set_find(ts, zn);
    if ((st = check_awq_tensor(tq, qn, HR_DTYPE_I32, K, N / 8, err)) ||
        (st = check_awq_tensor(tz, zn, HR_DTYPE_I32, ng, N / 8, err)) ||
        (st = check_awq_tensor(ts_s, sn, HR_DTYPE_F16, ng, N, err)))
        return st;
    HrQMat *m = g_new0(HrQMat, 1);
    m->rows = (int)N;
    m->cols = (int)K;
    m->n_groups = (int)ng;
    m->group = (int)(K / ng);
    m->kind = HR_QMAT_ZERO;
    hr_qmat_alloc(m);
    RepackJob job = { m, tq->data, tz->data, ts_s->data };
    hr_pool_run(c->pool, repack_range, &job, (int)((N + 127) / 128), 1);
    /* The checkpoint's 4-bit tensors are not read again: let the kernel drop
     * their pages instead of keeping them resident beside the repacked copy. */
    drop_pages(tq->data, hr_tensor_numel(tq) * 4);
    drop_pages(tz->data, hr_tensor_numel(tz) * 4);
    drop_pages(ts_s->data, hr_tensor_numel(ts_s) * 2);
    *bytes += hr_qmat_bytes(m);
    *out = m;
    return HR_OK;
}

/* ---- GGUF block-quantized weights ---------------------------------------------- */

typedef struct {
    const HrTensor *t;
    size_t row_bytes;
    int cols;
    HrQMat *q;
    HrQ8Mat *q8;
} GgmlRepackJob;

/* Rows [start, end) of a Q4_0/Q4_1/Q4_K tensor into HrQMat rows (groups of
 * 32, exact: Q4_0 keeps its FP16 scale and zero point 8, Q4_1 its FP16
 * scale and offset, Q4_K its 6-bit scales and mins with the FP16 d, dmin
 * of each 256, multiplied out as ggml does when a row's scales are read). */
static void
ggml_q4_rows(void *arg, int start, int end)
{
    const GgmlRepackJob *J = arg;
    HrQMat *m = J->q;
    const int ng = m->n_groups;
    float *sc = g_new(float, 2 * (size_t)ng), *of = sc + ng;
    for (int r = start; r < end; r++) {
        const size_t base = (size_t)r * (size_t)ng;
        if (m->kind == HR_QMAT_K4) {
            hr_ggml_q4k_raw((const uint8_t *)J->t->data + (size_t)r * J->row_bytes, J->cols,
                            m->q + (size_t)r * (size_t)(J->cols / 2), m->ksc + base, m->kmin + base,
                            m->kd + base / 8, m->kdmin + base / 8);
            continue;
        }
        hr_ggml_q4_groups(J->t->ggml_type, (const uint8_t *)J->t->data + (size_t)r * J->row_bytes, J->cols,
                          m->q + (size_t)r * (size_t)(J->cols / 2), sc, of);
        for (int g = 0; g < ng; g++) {
            switch (m->kind) {
            case HR_QMAT_ZERO:
                m->scale[base + (size_t)g] = hr_f32_to_f16(sc[g]);
                m->zero[base + (size_t)g] = 8;
                break;
            case HR_QMAT_OFFSET16:
                m->scale[base + (size_t)g] = hr_f32_to_f16(sc[g]);
                m->offset16[base + (size_t)g] = hr_f32_to_f16(of[g]);
                break;
            case HR_QMAT_OFFSET32:
                m->scale32[base + (size_t)g] = sc[g];
                m->offset32[base + (size_t)g] = of[g];
                break;
            case HR_QMAT_K4:
                break;
            }
        }
    }
    g_free(sc);
}

/* Rows [start, end) of a Q8_0, Q5_0 or Q6_K tensor into HrQ8Mat rows
 * (exact: int8 values with one scale per 32, or per 16 for Q6_K). */
static void
ggml_q8_rows(void *arg, int start, int end)
{
    const GgmlRepackJob *J = arg;
    HrQ8Mat *m = J->q8;
    const size_t nd = (size_t)(J->cols / hr_q8mat_block(m));
    for (int r = start; r < end; r++) {
        int per;
        hr_ggml_q8_groups(J->t->ggml_type, (const uint8_t *)J->t->data + (size_t)r * J->row_bytes, J->cols,
                          m->q + (size_t)r * (size_t)J->cols, m->d + (size_t)r * nd,
                          m->m ? m->m + (size_t)r * (size_t)(J->cols / 32) : NULL, &per);
    }
}

/* A GGUF block-quantized matrix [rows, cols] as a linear layer. */
static HrStatus
take_ggml(CpuCtx *c, const HrTensor *t, int64_t rows, int64_t cols, CpuLinear *lin, size_t *bytes, HrError *err)
{
    int block = 0;
    size_t block_bytes = 0;
    if (!hr_ggml_dequant_supported(t->ggml_type) || !hr_ggml_type_block(t->ggml_type, &block, &block_bytes))
        return hr_error_set(err, HR_ERR_UNSUPPORTED, "%s: tensor '%s' is %s, which Hearth does not read yet "
                            "(it reads F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K and Q6_K)",
                            t->file, t->name, hr_tensor_type_name(t));
    if (t->n_dims != 2 || t->shape[0] != rows || t->shape[1] != cols)
        return hr_error_set(err, HR_ERR_FORMAT, "%s: tensor '%s' is not [%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT
                            "] as the config needs", t->file, t->name, rows, cols);
    lin->rows = (int)rows;
    lin->cols = (int)cols;
    GgmlRepackJob job = { t, (size_t)(cols / block) * block_bytes, (int)cols, NULL, NULL };
    switch (t->ggml_type) {
    case HR_GGML_Q4_0:
    case HR_GGML_Q4_1:
    case HR_GGML_Q4_K: {
        HrQMat *m = g_new0(HrQMat, 1);
        m->kind = t->ggml_type == HR_GGML_Q4_0 ? HR_QMAT_ZERO
                  : t->ggml_type == HR_GGML_Q4_1 ? HR_QMAT_OFFSET16 : HR_QMAT_K4;
        m->rows = (int)rows;
        m->cols = (int)cols;
        m->group = 32;
        m->n_groups = (int)(cols / 32);
        hr_qmat_alloc(m);
        job.q = m;
        hr_pool_run(c->pool, ggml_q4_rows, &job, (int)rows, 16);
        lin->q = m;
        *bytes += hr_qmat_bytes(m);
        return HR_OK;
    }
    case HR_GGML_Q8_0:
    case HR_GGML_Q5_0:
    case HR_GGML_Q5_1:
    case HR_GGML_Q5_K:
    case HR_GGML_Q6_K: {
        HrQ8Mat *m = g_new0(HrQ8Mat, 1);
        m->rows = (int)rows;
        m->cols = (int)cols;
        m->block = hr_ggml_q8_per(t->ggml_type);
        m->q = hr_weights_alloc((size_t)rows * (size_t)cols);
        m->d = hr_weights_alloc(sizeof(float) * (size_t)rows * (size_t)(cols / m->block));
        if (hr_ggml_q8_has_offset(t->ggml_type))
            m->m = hr_weights_alloc(sizeof(float) * (size_t)rows * (size_t)(cols / 32));
        job.q8 = m;
        hr_pool_run(c->pool, ggml_q8_rows, &job, (int)rows, 64);
        lin->q8 = m;
        *bytes += hr_q8mat_bytes(m);
        return HR_OK;
    }
    default:
        lin->blocks = t;
        *bytes += t->n_bytes;
        return HR_OK;
    }
}

/* out[t, r] = residual + bias + W[r, :] . x[t, :] for W whose rows are
 * decoded one at a time to FP32 (int8 or other GGUF blocks): exact FP32
 * activations, each row read once for all n tokens (hr_dot_rows_f32). */
typedef struct {
    const CpuLinear *lin;
    float *out;
    const float *bias, *x, *residual;
    int n;
} RowsJob;

static void
rows_matmul_range(void *arg, int start, int end)
{
    const RowsJob *J = arg;
    const CpuLinear *lin = J->lin;
    const int rows = lin->rows, cols = lin->cols;
    float *w = g_new(float, (size_t)cols);
    float dots_stack[256];
    float *dots = J->n <= (int)G_N_ELEMENTS(dots_stack) ? dots_stack : g_new(float, (size_t)J->n);
    int block = 1;
    size_t block_bytes = 0, row_bytes = 0;
    if (lin->blocks) {
        hr_ggml_type_block(lin->blocks->ggml_type, &block, &block_bytes);
        row_bytes = (size_t)(cols / block) * block_bytes;
    }
    for (int r = start; r < end; r++) {
        if (lin->q8)
            hr_q8mat_row_f32(lin->q8, r, w);
        else
            hr_ggml_dequant(lin->blocks->ggml_type, (const uint8_t *)lin->blocks->data + (size_t)r * row_bytes, w,
                            cols);
        hr_dot_rows_f32(w, J->x, cols, J->n, dots);
        for (int t = 0; t < J->n; t++) {
            const size_t o = (size_t)t * (size_t)rows + (size_t)r;
            float v = (J->residual ? J->residual[o] : 0.0f) + (J->bias ? J->bias[r] : 0.0f);
            J->out[o] = v + dots[t];
        }
    }
    if (dots != dots_stack)
        g_free(dots);
    g_free(w);
}

static void
linear_rows(CpuCtx *c, float *out, const CpuLinear *lin, const float *bias, const float *x, int n,
            const float *residual)
{
    /* int8 blocks with int8 activations (decode and prefill), as llama.cpp
     * reads them; HEARTH_CPU_EXACT keeps FP32 activations */
    if (lin->q8 && !hr_cpu_exact()) {
        hr_matmul_q8w(c->pool, out, lin->q8, bias, x, n, residual);
        return;
    }
    RowsJob job = { lin, out, bias, x, residual, n };
    hr_pool_run(c->pool, rows_matmul_range, &job, lin->rows, 4);
}

static HrStatus
take_linear(CpuCtx *c, const HrTensorSet *ts, const char *prefix, int64_t rows, int64_t cols, CpuLinear *lin,
            size_t *bytes, HrError *err)
{
    char name[160];
    lin->rows = (int)rows;
    lin->cols = (int)cols;
    g_snprintf(name, sizeof name, "%s.qweight", prefix);
    if (hr_tensor_set_find(ts, name)) {
        if (!c->cfg.awq)
            return hr_error_set(err, HR_ERR_FORMAT, "tensor '%s' is AWQ-quantized but config.json has no AWQ "
                                "quantization_config", name);
        return take_awq(c, ts, prefix, rows, cols, &lin->q, bytes, err);
    }
    g_snprintf(name, sizeof name, "%s.weight", prefix);
    const HrTensor *t = hr_tensor_set_find(ts, name);
    if (t && t->dtype == HR_DTYPE_GGML)
        return take_ggml(c, t, rows, cols, lin, bytes, err);
    return take_mat(c, ts, name, rows, cols, &lin->dense, bytes, err);
}

static void
linear(CpuCtx *c, float *out, const CpuLinear *lin, const float *bias, const float *x, int n, const float *residual)
{
    if (lin->q)
        hr_matmul_q4(c->pool, out, lin->q, bias, x, n, residual);
    else if (lin->q8 || lin->blocks)
        linear_rows(c, out, lin, bias, x, n, residual);
    else
        hr_matmul(c->pool, out, &lin->dense, bias, x, n, residual);
}

static void
free_linear(CpuLinear *lin)
{
    if (lin->q) {
        hr_qmat_free(lin->q);
        g_free(lin->q);
        lin->q = NULL;
    }
    if (lin->q8) {
        hr_q8mat_free(lin->q8);
        g_free(lin->q8);
        lin->q8 = NULL;
    }
}


/* The frequencies of rotary_dim / 2 pairs; LongRoPE's long or short set. */
static void
inv_freq_of(const HrModelConfig *cfg, bool long_set, float *inv_freq)
{
    const int rot = hr_model_config_rotary_dim(cfg), half = rot / 2;
    for (int i = 0; i < half; i++) {
        /* As transformers computes it, in float32. */
        float f = 1.0f / powf(cfg->rope_theta, (float)(2 * i) / (float)rot);
        if (cfg->rope_scaling == HR_ROPE_LINEAR) {
            f /= cfg->rope_factor;
        } else if (cfg->rope_scaling == HR_ROPE_LONGROPE) {
            /* 1 / (ext * base^(2i/d)) */
            f = 1.0f / ((long_set ? cfg->rope_long[i] : cfg->rope_short[i]) * powf(cfg->rope_theta, (float)(2 * i) /
                                                                                                   (float)rot));
        } else if (cfg->rope_scaling == HR_ROPE_LLAMA3) {
            float old_ctx = (float)cfg->rope_original_max_pos;
            float low_wavelen = old_ctx / cfg->rope_low_freq_factor;
            float high_wavelen = old_ctx / cfg->rope_high_freq_factor;
            float wavelen = 2.0f * (float)M_PI / f;
            if (wavelen > low_wavelen) {
                f = f / cfg->rope_factor;
            } else if (!(wavelen < high_wavelen)) {
                float smooth = (old_ctx / wavelen - cfg->rope_low_freq_factor) /
                               (cfg->rope_high_freq_factor - cfg->rope_low_freq_factor);
                f = (1.0f - smooth) * f / cfg->rope_factor + smooth * f;
            }
        }
        inv_freq[i] = f;
    }
}

void
hr_rope_inv_freq(const HrModelConfig *cfg, float *inv_freq)
{
    inv_freq_of(cfg, false, inv_freq);
}

void
hr_rope_inv_freq_long(const HrModelConfig *cfg, float *inv_freq)
{
    inv_freq_of(cfg, cfg->rope_scaling == HR_ROPE_LONGROPE, inv_freq);
}

float
hr_rope_attn_factor(const HrModelConfig *cfg)
{
    return cfg->rope_scaling == HR_ROPE_LONGROPE && cfg->rope_attn_factor > 0.0f ? cfg->rope_attn_factor : 1.0f;
}

void
hr_rope_inv_freq_local(const HrModelConfig *cfg, float *inv_freq)
{
    HrModelConfig local = *cfg;
    if (cfg->rope_local_theta > 0.0f) {
        local.rope_theta = cfg->rope_local_theta;
        local.rope_scaling = HR_ROPE_DEFAULT;
    }
    hr_rope_inv_freq(&local, inv_freq);
}

float
hr_gelu_tanh(float x)
{
    /* 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3))) */
    return 0.5f * x * (1.0f + tanhf(0.7978845608028654f * (x + 0.044715f * x * x * x)));
}

/* Whether decode reads the lm_head as int8: for 4-bit models whose lm_head
 * is large enough to matter (>= 16 Mi weights: 49152 x 576 and up), where it
 * is then a third to a half of a step's bytes. HEARTH_CPU_LM_HEAD=q8 or fp
 * forces it either way (tests); HEARTH_CPU_EXACT=1 never rounds. */
static bool
want_lm_q8(const HrModelConfig *cfg, const HrMat *m)
{
    const char *e = g_getenv("HEARTH_CPU_LM_HEAD");
    if (hr_cpu_exact() || !hr_q8mat_supported(m) || (e && strcmp(e, "fp") == 0))
        return false;
    if (e && strcmp(e, "q8") == 0)
        return true;
    return cfg->awq && (size_t)m->rows * (size_t)m->cols >= ((size_t)1 << 24);
}


/* ---- device, weights, buffers --------------------------------------------------------- */

static void
free_weight(void *p)
{
    HrOpsWeight *w = p;
    free_linear(&w->lin);
    if (w->lm_q8) {
        hr_q8mat_free(w->lm_q8);
        g_free(w->lm_q8);
    }
    g_free(w->vec);
    g_free(w);
}

static void
free_buffer(void *p)
{
    HrOpsBuffer *b = p;
    free(b->alloc);
    g_free(b->row_sums);
    g_free(b);
}

static void
free_prog(void *p)
{
    CpuProg *g = p;
    g_free(g->nodes);
    g_free(g);
}

static void
cpu_close(void *p)
{
    CpuCtx *c = p;
    if (!c)
        return;
    g_ptr_array_unref(c->progs);
    g_ptr_array_unref(c->buffers);
    g_ptr_array_unref(c->weights);
    g_ptr_array_unref(c->aligned_copies);
    hr_pool_free(c->pool);
    g_free(c->inv_freq);
    g_free(c->inv_freq_local);
    g_free(c->inv_freq_long);
    g_free(c->norm_row);
    g_aligned_free(c->tqkv);
    g_aligned_free(c->hb2);
    g_aligned_free(c->scores);
    g_free(c);
}

static HrStatus
cpu_open(const HrModelConfig *cfg, const HrBackendOptions *opt, const HrTensorSet *ts, const HrWeightSpec *weights,
         int n_weights, void **dev_out, HrOpsLimits *limits, HrError *err)
{
    (void)ts;
    (void)weights;
    (void)n_weights;
    (void)err;
    CpuCtx *c = g_new0(CpuCtx, 1);
    c->cfg = *cfg;
    c->opt = *opt;
    c->max_tokens = CHUNK;
    c->pool = hr_pool_new(opt->n_threads);
    c->weights = g_ptr_array_new_with_free_func(free_weight);
    c->buffers = g_ptr_array_new_with_free_func(free_buffer);
    c->progs = g_ptr_array_new_with_free_func(free_prog);
    c->aligned_copies = g_ptr_array_new_with_free_func(g_free);
    const int hd = cfg->head_dim;
    const size_t qkv_dim = (size_t)(cfg->n_heads + 2 * cfg->n_kv_heads) * (size_t)hd;
    c->inv_freq = g_new(float, hd / 2);
    hr_rope_inv_freq(cfg, c->inv_freq);
    c->inv_freq_local = g_new(float, hd / 2);
    hr_rope_inv_freq_local(cfg, c->inv_freq_local);
    c->inv_freq_long = g_new(float, hd / 2);
    hr_rope_inv_freq_long(cfg, c->inv_freq_long);
    c->norm_row = g_new(float, cfg->dim);
    c->tqkv = g_aligned_alloc((size_t)CHUNK * qkv_dim, sizeof(float), 64);
    c->hb2 = g_aligned_alloc((size_t)CHUNK * (size_t)cfg->hidden_dim, sizeof(float), 64);
    c->scores = g_aligned_alloc((size_t)cfg->n_heads * (size_t)opt->context_len, sizeof(float), 64);
    c->scratch_bytes = sizeof(float) * ((size_t)CHUNK * (qkv_dim + (size_t)cfg->hidden_dim) +
                                        (size_t)cfg->n_heads * (size_t)opt->context_len);
    limits->max_tokens = CHUNK;
    limits->max_logit_rows = CHUNK;
    *dev_out = c;
    return HR_OK;
}

/* The embedding: dense rows used in place, or GGUF blocks decoded as they
 * are gathered. */
static HrStatus
take_embed(CpuCtx *c, const HrTensorSet *ts, const HrWeightSpec *s, HrOpsWeight *w, HrError *err)
{
    const HrTensor *t = hr_tensor_set_find(ts, s->name);
    if (!t || t->dtype != HR_DTYPE_GGML)
        return take_mat(c, ts, s->name, s->rows, s->cols, &w->lin.dense, &c->weight_bytes, err);
    int block = 0;
    size_t block_bytes = 0;
    if (!hr_ggml_dequant_supported(t->ggml_type) || !hr_ggml_type_block(t->ggml_type, &block, &block_bytes))
        return hr_error_set(err, HR_ERR_UNSUPPORTED, "%s: tensor '%s' is %s, which Hearth does not read yet",
                            t->file, t->name, hr_tensor_type_name(t));
    if (t->n_dims != 2 || t->shape[0] != s->rows || t->shape[1] != s->cols)
        return hr_error_set(err, HR_ERR_FORMAT, "%s: tensor '%s' is not [%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT
                            "] as the config needs", t->file, t->name, s->rows, s->cols);
    w->lin.blocks = t;
    w->lin.rows = (int)s->rows;
    w->lin.cols = (int)s->cols;
    c->weight_bytes += t->n_bytes;
    return HR_OK;
}

/* The lm_head: GGUF blocks repacked like a linear; dense rows in place (the
 * embedding's when tied), read by decode as int8 when want_lm_q8(). */
static HrStatus
take_lm_head(CpuCtx *c, const HrTensorSet *ts, const HrWeightSpec *s, HrOpsWeight *tied_to, HrOpsWeight *w,
             HrError *err)
{
    const HrTensor *t = hr_tensor_set_find(ts, s->name);
    if (t && t->dtype == HR_DTYPE_GGML) {
        size_t bytes = 0;
        HrStatus st = take_ggml(c, t, s->rows, s->cols, &w->lin, &bytes, err);
        c->weight_bytes += bytes;
        c->decode_weight_bytes += bytes;
        return st;
    }
    size_t bytes = 0;
    if (tied_to) {
        w->lin.dense = tied_to->lin.dense;
    } else {
        HrStatus st = take_mat(c, ts, s->name, s->rows, s->cols, &w->lin.dense, &bytes, err);
        if (st != HR_OK)
            return st;
    }
    const HrMat *m = &w->lin.dense;
    const size_t fp = (size_t)m->rows * (size_t)m->cols * hr_dtype_size(m->dtype);
    if (!want_lm_q8(&c->cfg, m)) {
        c->weight_bytes += bytes;
        c->decode_weight_bytes += fp;
        return HR_OK;
    }
    w->lm_q8 = g_new0(HrQ8Mat, 1);
    hr_q8mat_from(c->pool, m, w->lm_q8);
    const size_t q8 = hr_q8mat_bytes(w->lm_q8);
    c->decode_weight_bytes += q8;
    c->weight_bytes += q8; /* the FP rows stay mapped, not resident: */
    /* their pages in the mapped file are read again only for a prefill that
     * wants every row's logits (or the rows a tied embedding gathers) */
    if (t && t->data == m->data)
        drop_pages(t->data, (int64_t)fp);
    return HR_OK;
}

static HrStatus
cpu_weight(void *p, const HrTensorSet *ts, const HrWeightSpec *s, const float *data, HrOpsWeight *tied_to,
           HrOpsWeight **out, HrError *err)
{
    CpuCtx *c = p;
    HrOpsWeight *w = g_new0(HrOpsWeight, 1);
    w->role = s->role;
    g_ptr_array_add(c->weights, w);
    *out = w;
    switch (s->role) {
    case HR_W_VECTOR:
        w->vec = g_memdup2(data, sizeof(float) * (size_t)s->rows);
        w->n_vec = (size_t)s->rows;
        c->weight_bytes += sizeof(float) * (size_t)s->rows;
        c->decode_weight_bytes += sizeof(float) * (size_t)s->rows;
        return HR_OK;
    case HR_W_EMBED:
        return take_embed(c, ts, s, w, err);
    case HR_W_LM_HEAD:
        return take_lm_head(c, ts, s, tied_to, w, err);
    case HR_W_LINEAR: {
        size_t bytes = 0;
        HrStatus st = take_linear(c, ts, s->name, s->rows, s->cols, &w->lin, &bytes, err);
        c->weight_bytes += bytes;
        c->decode_weight_bytes += bytes;
        return st;
    }
    }
    return hr_error_set(err, HR_ERR_INVALID_ARG, "weight '%s': unknown role", s->name);
}

static HrStatus
cpu_weights_done(void *p, HrError *err)
{
    (void)p;
    (void)err;
    return HR_OK;
}

static HrStatus
cpu_activation(void *p, int64_t width, HrOpsBuffer **out, HrError *err)
{
    CpuCtx *c = p;
    const size_t bytes = sizeof(float) * (size_t)c->max_tokens * (size_t)width;
    HrOpsBuffer *b = g_new0(HrOpsBuffer, 1);
    if (!buffer_alloc(b, bytes)) {
        g_free(b);
        return hr_error_set(err, HR_ERR_NOMEM, "cannot allocate %zu MiB of activations", bytes >> 20);
    }
    g_ptr_array_add(c->buffers, b);
    c->scratch_bytes += bytes;
    b->width = (size_t)width;
    *out = b;
    return HR_OK;
}

static HrStatus
cpu_kv_ring(void *p, int entries, HrOpsBuffer **k_out, HrOpsBuffer **v_out, HrError *err)
{
    CpuCtx *c = p;
    if (entries < 1 || entries > c->opt.context_len)
        return hr_error_set(err, HR_ERR_INVALID_ARG, "kv_ring: %d entries (1 to the context's %d)", entries,
                            c->opt.context_len);
    const size_t kv_elem = c->opt.kv_type == HR_KV_F32 ? sizeof(float) : sizeof(uint16_t);
    const size_t bytes = (size_t)entries * (size_t)(c->cfg.n_kv_heads * c->cfg.head_dim) * kv_elem;
    HrOpsBuffer *kv[2];
    for (int i = 0; i < 2; i++) {
        kv[i] = g_new0(HrOpsBuffer, 1);
        const bool ok = buffer_alloc(kv[i], bytes);
        g_ptr_array_add(c->buffers, kv[i]);
        if (!ok)
            return hr_error_set(err, HR_ERR_NOMEM, "cannot allocate the KV cache: %zu MiB needed",
                                2 * bytes * (size_t)c->cfg.n_layers >> 20);
    }
    c->kv_bytes += 2 * bytes;
    *k_out = kv[0];
    *v_out = kv[1];
    return HR_OK;
}

static HrStatus
cpu_kv_cache(void *p, HrOpsBuffer **k_out, HrOpsBuffer **v_out, HrError *err)
{
    return cpu_kv_ring(p, ((CpuCtx *)p)->opt.context_len, k_out, v_out, err);
}

static HrStatus
cpu_compile(void *p, const HrNode *nodes, int n_nodes, int max_tokens, void **prog_out, HrError *err)
{
    CpuCtx *c = p;
    (void)max_tokens;
    for (int i = 0; i < n_nodes; i++) {
        const HrNode *nd = &nodes[i];
        if (nd->op == HR_OP_LINEAR && (nd->n_w < 1 || nd->n_w > 3 || (nd->gate && nd->n_w != 2) ||
                                       (nd->residual && nd->n_w != 1)))
            return hr_error_set(err, HR_ERR_INVALID_ARG, "node %d: a linear of %d matrices%s%s", i, nd->n_w,
                                nd->gate ? " with gate" : "", nd->residual ? " with residual" : "");
    }
    CpuProg *g = g_new0(CpuProg, 1);
    g->nodes = g_memdup2(nodes, sizeof(HrNode) * (size_t)n_nodes);
    g->n_nodes = n_nodes;
    g_ptr_array_add(c->progs, g);
    *prog_out = g;
    return HR_OK;
}


/* Rotate-half RoPE on the leading rot dimensions of each head (the rest
 * pass), cos and sin times m (LongRoPE's attention factor, else 1). */
static void
rope(float *vec, int n_heads, int hd, int rot, int pos, const float *inv_freq, float m)
{
    int half = rot / 2;
    for (int i = 0; i < half; i++) {
        float angle = (float)pos * inv_freq[i];
        float cs = cosf(angle) * m, sn = sinf(angle) * m;
        for (int h = 0; h < n_heads; h++) {
            float *v = vec + (size_t)h * hd;
            float x0 = v[i], x1 = v[i + half];
            v[i] = x0 * cs - x1 * sn;
            v[i + half] = x1 * cs + x0 * sn;
        }
    }
}

static void
kv_store(void *cache, HrKvType type, size_t offset, const float *src, int n)
{
    if (type == HR_KV_F32) {
        memcpy((float *)cache + offset, src, (size_t)n * sizeof(float));
    } else {
        uint16_t *dst = (uint16_t *)cache + offset;
        for (int i = 0; i < n; i++)
            dst[i] = hr_f32_to_f16(src[i]);
    }
}


/* Causal grouped-query attention for tokens 0..n-1 of a step at absolute
 * positions pos.., one query head per work item on the pool; each head has
 * its own row of scores. */
typedef struct {
    CpuCtx *c;
    const HrNode *nd;
    int n, pos;
} AttendJob;

static void
attend_heads(void *arg, int h0, int h1)
{
    const AttendJob *j = arg;
    CpuCtx *c = j->c;
    const HrModelConfig *cfg = &c->cfg;
    const int hd = cfg->head_dim, kv_dim = cfg->n_kv_heads * hd, q_dim = cfg->n_heads * hd;
    const int group = cfg->n_heads / cfg->n_kv_heads;
    const float scale = j->nd->scale > 0.0f ? j->nd->scale : 1.0f / sqrtf((float)hd);
    const int window = j->nd->window;
    const bool f16 = c->opt.kv_type != HR_KV_F32;
    const size_t esize = f16 ? 2 : 4;
    const float *q = j->nd->src->data;
    float *out = j->nd->dst->data;
    for (int h = h0; h < h1; h++) {
        const size_t kv_off = (size_t)(h / group) * hd * esize;
        float *scores = c->scores + (size_t)h * c->opt.context_len;
        for (int t = 0; t < j->n; t++) {
            const int p = j->pos + t;
            int start = 0;
            if (window > 0 && p - window + 1 > 0)
                start = p - window + 1;
            hr_attend_head(q + (size_t)t * q_dim + (size_t)h * hd, (const char *)j->nd->k_cache->data + kv_off,
                           (const char *)j->nd->v_cache->data + kv_off, f16, (size_t)kv_dim, j->nd->ring, hd, start, p,
                           scale,
                           j->nd->softcap, scores, out + (size_t)t * q_dim + (size_t)h * hd);
        }
    }
}

/* LINEAR: one matrix straight into dst; gate|up in one pass (4-bit) and
 * SiLU * up; several matrices (q|k|v) in one pass (4-bit), for one token
 * straight into dst's row, for more into the scratch, then side by side
 * into dst. */
static void
op_linear(CpuCtx *c, const HrNode *nd, int n)
{
    const float *x = nd->src->data;
    float *dst = nd->dst->data;
    const float *bias = nd->bias ? nd->bias->vec : NULL;
    if (nd->n_w == 1) {
        linear(c, dst, &nd->w[0]->lin, bias, x, n, nd->residual ? dst : NULL);
        return;
    }
    if (nd->gate) {
        const CpuLinear *g = &nd->w[0]->lin, *u = &nd->w[1]->lin;
        if (g->q && u->q) {
            hr_matmul_q4_multi(c->pool, 2, (float *const[]){ dst, c->hb2 }, (const HrQMat *const[]){ g->q, u->q },
                               NULL, x, n);
        } else {
            linear(c, dst, g, NULL, x, n, NULL);
            linear(c, c->hb2, u, NULL, x, n, NULL);
        }
        if (nd->act == HR_ACT_GELU_TANH) {
            for (size_t i = 0; i < (size_t)n * (size_t)g->rows; i++)
                dst[i] = hr_gelu_tanh(dst[i]) * c->hb2[i];
            return;
        }
        for (size_t i = 0; i < (size_t)n * (size_t)g->rows; i++) {
            float v = dst[i];
            dst[i] = v / (1.0f + expf(-v)) * c->hb2[i];
        }
        return;
    }
    float *outs[3];
    const HrQMat *qs[3];
    const float *bs[3];
    bool all_q = true;
    int width = 0;
    for (int i = 0; i < nd->n_w; i++) {
        const CpuLinear *lin = &nd->w[i]->lin;
        /* one token: its row of dst is the outputs side by side already */
        outs[i] = n == 1 ? dst + width : c->tqkv + (size_t)n * (size_t)width;
        qs[i] = lin->q;
        bs[i] = bias ? bias + width : NULL;
        all_q = all_q && lin->q;
        width += lin->rows;
    }
    if (all_q) {
        hr_matmul_q4_multi(c->pool, nd->n_w, outs, qs, bs, x, n);
    } else {
        for (int i = 0; i < nd->n_w; i++)
            linear(c, outs[i], &nd->w[i]->lin, bs[i], x, n, NULL);
    }
    for (int t = 0; n > 1 && t < n; t++) {
        int off = 0;
        for (int i = 0; i < nd->n_w; i++) {
            const int rows = nd->w[i]->lin.rows;
            memcpy(dst + (size_t)t * width + off, outs[i] + (size_t)t * rows, sizeof(float) * (size_t)rows);
            off += rows;
        }
    }
}

static void
op_logits(CpuCtx *c, const HrNode *nd, const HrStep *s)
{
    const int first = s->logit_first, rows = s->n - first, dim = c->cfg.dim;
    if (rows <= 0)
        return;
    const HrOpsWeight *w = nd->w[0];
    const float *x = (const float *)nd->src->data + (size_t)first * dim;
    if (w->lin.q || w->lin.q8 || w->lin.blocks)
        linear(c, s->logits, &w->lin, NULL, x, rows, NULL);
    else if (w->lm_q8 && rows < 6)
        hr_matmul_q8w(c->pool, s->logits, w->lm_q8, NULL, x, rows, NULL);
    else
        hr_matmul(c->pool, s->logits, &w->lin.dense, NULL, x, rows, NULL);
    /* Gemma 2: cap * tanh(logit / cap) */
    for (size_t i = 0; nd->softcap > 0.0f && i < (size_t)rows * (size_t)c->cfg.vocab_size; i++)
        s->logits[i] = tanhf(s->logits[i] / nd->softcap) * nd->softcap;
}

static HrStatus
cpu_run(void *p, void *prog, const HrStep *s, HrError *err)
{
    CpuCtx *c = p;
    const CpuProg *g = prog;
    const HrModelConfig *cfg = &c->cfg;
    const int n = s->n, dim = cfg->dim, hd = cfg->head_dim;
    const int q_dim = cfg->n_heads * hd, kv_dim = cfg->n_kv_heads * hd, qkv_dim = q_dim + 2 * kv_dim;
    if (n < 1 || n > c->max_tokens)
        return hr_error_set(err, HR_ERR_INVALID_ARG, "run: %d tokens (1 to %d)", n, c->max_tokens);
    for (int i = 0; i < g->n_nodes; i++) {
        const HrNode *nd = &g->nodes[i];
        switch (nd->op) {
        case HR_OP_EMBED: {
            const CpuLinear *e = &nd->w[0]->lin;
            float *x = nd->dst->data;
            for (int t = 0; t < n; t++) {
                if (e->blocks)
                    hr_ggml_dequant(e->blocks->ggml_type,
                                    (const uint8_t *)e->blocks->data +
                                        (size_t)s->tokens[t] * (e->blocks->n_bytes / (size_t)cfg->vocab_size),
                                    x + (size_t)t * dim, dim);
                else
                    hr_mat_row_f32(&e->dense, s->tokens[t], x + (size_t)t * dim, dim);
                for (int k = 0; nd->scale != 0.0f && k < dim; k++)
                    x[(size_t)t * dim + k] *= nd->scale;
            }
            break;
        }
        case HR_OP_RMSNORM:
            for (int t = nd->logit_rows ? s->logit_first : 0; t < n; t++) {
                float *d = (float *)nd->dst->data + (size_t)t * dim;
                hr_rmsnorm(nd->residual ? c->norm_row : d, (const float *)nd->src->data + (size_t)t * dim,
                           nd->w[0]->vec, dim, cfg->norm_eps);
                for (int k = 0; nd->residual && k < dim; k++)
                    d[k] += c->norm_row[k];
            }
            break;
        case HR_OP_LINEAR:
            op_linear(c, nd, n);
            break;
        case HR_OP_ROPE_KV: {
            /* LongRoPE: the step's set by its last position, as transformers picks it per forward */
            const bool long_set = hr_model_config_rope_long(cfg, s->pos + n - 1);
            const int rot = hr_model_config_rotary_dim(cfg);
            const float m = hr_rope_attn_factor(cfg);
            for (int t = 0; t < n; t++) {
                const int pos = s->pos + t;
                float *row = (float *)nd->src->data + (size_t)t * qkv_dim, *q = (float *)nd->dst->data +
                                                                               (size_t)t * q_dim;
                memcpy(q, row, sizeof(float) * (size_t)q_dim);
                if (nd->n_w == 2) { /* Qwen3, Gemma 3: every q and k head normalised first */
                    for (int h = 0; h < cfg->n_heads; h++)
                        hr_rmsnorm(q + (size_t)h * hd, q + (size_t)h * hd, nd->w[0]->vec, hd, cfg->norm_eps);
                    for (int h = 0; h < cfg->n_kv_heads; h++)
                        hr_rmsnorm(row + q_dim + (size_t)h * hd, row + q_dim + (size_t)h * hd, nd->w[1]->vec, hd,
                                   cfg->norm_eps);
                }
                const float *inv = nd->local_rope ? c->inv_freq_local : long_set ? c->inv_freq_long : c->inv_freq;
                rope(q, cfg->n_heads, hd, rot, pos, inv, m);
                rope(row + q_dim, cfg->n_kv_heads, hd, rot, pos, inv, m);
                const size_t e = (size_t)(nd->ring > 0 ? pos % nd->ring : pos);   /* the entry: a ring's, or pos */
                kv_store(nd->k_cache->data, c->opt.kv_type, e * kv_dim, row + q_dim, kv_dim);
                kv_store(nd->v_cache->data, c->opt.kv_type, e * kv_dim, row + q_dim + kv_dim, kv_dim);
            }
            break;
        }
        case HR_OP_ATTENTION: {
            AttendJob aj = { c, nd, n, s->pos };
            hr_pool_run(c->pool, attend_heads, &aj, cfg->n_heads, 1);
            break;
        }
        case HR_OP_LOGITS:
            op_logits(c, nd, s);
            break;
        }
    }
    return HR_OK;
}

static void
cpu_memory(void *p, HrMemoryReport *out)
{
    CpuCtx *c = p;
    out->weight_bytes = c->weight_bytes;
    out->kv_bytes = c->kv_bytes;
    out->scratch_bytes = c->scratch_bytes;
    out->location = "host";
    out->decode_weight_bytes = c->decode_weight_bytes;
}

/* A dense F32 linear's own values (set_weight's copy), made the first time. */
static float *
own_values(CpuCtx *c, HrOpsWeight *w)
{
    if (!w->values) {   /* (never the taken tensor's bytes, which its owner may free) */
        w->values = g_malloc(sizeof(float) * (size_t)w->lin.rows * (size_t)w->lin.cols);
        g_ptr_array_add(c->aligned_copies, w->values);
        w->lin.dense.data = w->values;
    }
    return w->values;
}

/* The quantizer's block forward (ops.h): a dense F32 linear takes its new
 * values into a copy of its own (the first time), never into the tensor it
 * was taken from. */
static HrStatus
cpu_set_weight(void *p, HrOpsWeight *w, const float *data, HrError *err)
{
    CpuCtx *c = p;
    if (w->role == HR_W_VECTOR) {
        memcpy(w->vec, data, sizeof(float) * w->n_vec);
        return HR_OK;
    }
    CpuLinear *l = &w->lin;
    if (w->role != HR_W_LINEAR || l->q || l->q8 || l->blocks || l->dense.dtype != HR_DTYPE_F32)
        return hr_error_set(err, HR_ERR_UNSUPPORTED, "set_weight: only a linear taken from an F32 tensor");
    memcpy(own_values(c, w), data, sizeof(float) * (size_t)l->rows * (size_t)l->cols);
    return HR_OK;
}

static HrStatus
cpu_scale_quant(void *p, HrOpsWeight *w, HrOpsBuffer *t, const float *s, int group, int bits, bool delta,
                HrError *err)
{
    CpuCtx *c = p;
    CpuLinear *l = &w->lin;
    if (w->role != HR_W_LINEAR || l->q || l->q8 || l->blocks || l->dense.dtype != HR_DTYPE_F32)
        return hr_error_set(err, HR_ERR_UNSUPPORTED, "scale_quant: only a linear taken from an F32 tensor");
    if (!t->row_sums || t->rows != l->rows || t->width != (size_t)l->cols || group < 1 || l->cols % group ||
        bits < 2 || bits > 8)
        return hr_error_set(err, HR_ERR_INVALID_ARG, "scale_quant: a [%" G_GINT64_FORMAT ", %zu] tensor for a [%d, %d] "
                            "linear, groups of %d, %d bits", t->rows, t->width, l->rows, l->cols, group, bits);
    hr_awq_scale_quant(c->pool, t->data, l->rows, l->cols, s, group, bits, delta, own_values(c, w));
    return HR_OK;
}

static HrStatus
cpu_clip_search(void *p, HrOpsBuffer *w, HrOpsBuffer *x, int nt, int step, int group, int bits, int steps, int grid,
                float *lim, HrError *err)
{
    CpuCtx *c = p;
    if (!w->row_sums || !x->row_sums || w->width != x->width || group < 1 || group > 256 || w->width % (size_t)group ||
        bits < 2 || bits > 8 || steps < 1 || grid < 1 || nt < 1 || step < 1 || (int64_t)(nt - 1) * step >= x->rows)
        return hr_error_set(err, HR_ERR_INVALID_ARG, "clip_search: a [%" G_GINT64_FORMAT ", %zu] weight over "
                            "[%" G_GINT64_FORMAT ", %zu] inputs, groups of %d", w->rows, w->width, x->rows, x->width,
                            group);
    hr_awq_clip_search(c->pool, w->data, (int)w->rows, (int)w->width, x->data, (size_t)step * x->width, nt, group,
                       bits, steps, grid, lim);
    return HR_OK;
}

static HrStatus
cpu_col_abs_sum(void *p, HrOpsBuffer *t, double *out, HrError *err)
{
    CpuCtx *c = p;
    if (!t->row_sums)
        return hr_error_set(err, HR_ERR_INVALID_ARG, "col_abs_sum: not a tensor");
    hr_awq_col_abs_sum(c->pool, t->data, (size_t)t->rows, t->width, out);
    return HR_OK;
}

static HrStatus
cpu_scale_cols(void *p, HrOpsBuffer *t, const float *s, HrError *err)
{
    CpuCtx *c = p;
    if (!t->row_sums)
        return hr_error_set(err, HR_ERR_INVALID_ARG, "scale_cols: not a tensor");
    hr_awq_div_cols(c->pool, t->data, (size_t)t->rows, t->width, s);
    return HR_OK;
}

static HrStatus
cpu_write(void *p, HrOpsBuffer *b, const float *data, int n, HrError *err)
{
    (void)p;
    (void)err;
    memcpy(b->data, data, sizeof(float) * (size_t)n * b->width);
    return HR_OK;
}

static HrStatus
cpu_read(void *p, HrOpsBuffer *b, float *data, int n, HrError *err)
{
    (void)p;
    (void)err;
    memcpy(data, b->data, sizeof(float) * (size_t)n * b->width);
    return HR_OK;
}

static HrStatus
cpu_tensor(void *p, int64_t rows, int64_t width, HrOpsBuffer **out, HrError *err)
{
    CpuCtx *c = p;
    HrOpsBuffer *b = g_new0(HrOpsBuffer, 1);
    if (rows < 1 || width < 1 || !buffer_alloc(b, sizeof(float) * (size_t)rows * (size_t)width) ||
        !(b->row_sums = g_try_new0(double, (size_t)rows))) {
        free(b->alloc);
        g_free(b);
        return hr_error_set(err, HR_ERR_NOMEM, "cannot allocate a tensor of %" G_GINT64_FORMAT " x %" G_GINT64_FORMAT,
                            rows, width);
    }
    b->width = (size_t)width;
    b->rows = rows;
    g_ptr_array_add(c->buffers, b);
    c->scratch_bytes += sizeof(float) * (size_t)rows * (size_t)width;
    *out = b;
    return HR_OK;
}

static HrStatus
cpu_tensor_write(void *p, HrOpsBuffer *t, int64_t row0, const float *data, int64_t n, HrError *err)
{
    (void)p;
    if (!hr_ops_rows_in(t->rows, row0, n))
        return hr_error_set(err, HR_ERR_INVALID_ARG, "tensor_write: rows %" G_GINT64_FORMAT "+%" G_GINT64_FORMAT
                            " of %" G_GINT64_FORMAT, row0, n, t->rows);
    memcpy((float *)t->data + (size_t)row0 * t->width, data, sizeof(float) * (size_t)n * t->width);
    return HR_OK;
}

static HrStatus
cpu_copy_rows(void *p, HrOpsBuffer *a, HrOpsBuffer *t, int64_t row0, int n, bool to_tensor, HrError *err)
{
    CpuCtx *c = p;
    if (!hr_ops_rows_in(t->rows, row0, n) || n > c->max_tokens || a->width != t->width)
        return hr_error_set(err, HR_ERR_INVALID_ARG, "copy_rows: %d rows at %" G_GINT64_FORMAT, n, row0);
    float *tr = (float *)t->data + (size_t)row0 * t->width;
    const size_t bytes = sizeof(float) * (size_t)n * t->width;
    if (to_tensor)
        memcpy(tr, a->data, bytes);
    else
        memcpy(a->data, tr, bytes);
    return HR_OK;
}

static HrStatus
cpu_sq_diff(void *p, HrOpsBuffer *a, HrOpsBuffer *t, int64_t row0, int n, HrError *err)
{
    CpuCtx *c = p;
    if (!hr_ops_rows_in(t->rows, row0, n) || n > c->max_tokens || a->width != t->width)
        return hr_error_set(err, HR_ERR_INVALID_ARG, "sq_diff: %d rows at %" G_GINT64_FORMAT, n, row0);
    for (int r = 0; r < n; r++) {
        const float *x = (const float *)a->data + (size_t)r * a->width;
        const float *y = (const float *)t->data + (size_t)(row0 + r) * t->width;
        double sum = 0.0;
        for (size_t k = 0; k < a->width; k++) {
            const double d = (double)x[k] - y[k];
            sum += d * d;
        }
        t->row_sums[row0 + r] = sum;
    }
    return HR_OK;
}

static HrStatus
cpu_sq_total(void *p, HrOpsBuffer *t, double *out, HrError *err)
{
    (void)p;
    (void)err;
    double sum = 0.0;
    for (int64_t r = 0; r < t->rows; r++)
        sum += t->row_sums[r];
    *out = sum;
    return HR_OK;
}

static const HrOps cpu_ops = {
    .api_version = HR_OPS_API_VERSION,
    .name = "cpu",
    .open = cpu_open,
    .close = cpu_close,
    .weight = cpu_weight,
    .weights_done = cpu_weights_done,
    .activation = cpu_activation,
    .kv_cache = cpu_kv_cache,
    .kv_ring = cpu_kv_ring,
    .compile = cpu_compile,
    .run = cpu_run,
    .memory = cpu_memory,
    .set_weight = cpu_set_weight,
    .write = cpu_write,
    .read = cpu_read,
    .tensor = cpu_tensor,
    .tensor_write = cpu_tensor_write,
    .copy_rows = cpu_copy_rows,
    .sq_diff = cpu_sq_diff,
    .sq_total = cpu_sq_total,
    .scale_quant = cpu_scale_quant,
    .clip_search = cpu_clip_search,
    .col_abs_sum = cpu_col_abs_sum,
    .scale_cols = cpu_scale_cols,
};

static HrStatus
cpu_create(const HrModelConfig *cfg, const HrTensorSet *ts, const HrBackendOptions *opt, HrProgressFunc progress,
           void *user, void **ctx_out, HrError *err)
{
    return hr_llama_create(&cpu_ops, cfg, ts, opt, progress, user, ctx_out, err);
}


/* ---- host GEMM for the quantizer ---------------------------------------------- */

static HrStatus
cpu_gemm_open(int n_threads, void **dev_out, HrError *err)
{
    (void)err;
    *dev_out = hr_pool_new(n_threads);
    return HR_OK;
}

static void
cpu_gemm_close(void *dev)
{
    hr_pool_free(dev);
}

static HrStatus
cpu_gemm(void *dev, float *out, const float *w, int N, int K, const float *bias, const float *x, int T, HrError *err)
{
    (void)err;
    HrMat m = { w, HR_DTYPE_F32, N, K };
    hr_matmul(dev, out, &m, bias, x, T, NULL);
    return HR_OK;
}

/* ---- read bandwidth (bench roofline) ------------------------------------------ */

static HrStatus
cpu_read_bandwidth(void *p, double *bytes_per_s, HrError *err)
{
    return hr_cpu_read_bandwidth(((CpuCtx *)hr_llama_device(p))->pool, bytes_per_s, err);
}

const HrBackendOps hr_cpu_backend = {
    .api_version = HR_BACKEND_API_VERSION,
    .name = "cpu",
    .create = cpu_create,
    .destroy = hr_llama_destroy,
    .forward = hr_llama_forward,
    .get_logits = hr_llama_get_logits,
    .memory = hr_llama_memory,
    .kv_rewind = hr_llama_kv_rewind,
    .gemm_open = cpu_gemm_open,
    .gemm_close = cpu_gemm_close,
    .gemm = cpu_gemm,
    .read_bandwidth = cpu_read_bandwidth,
    .ops = &cpu_ops,
};
