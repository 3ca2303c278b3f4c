/* cpu-backend.c — the CPU backend: a plain, exact FP32 forward pass.
 *
 * This is the oracle the GPU backends are tested against, so clarity wins
 * over speed here: weights are used in place from the mmap'd safetensors
 * (F32, F16 or BF16, converted a row at a time), activations are FP32, the
 * KV cache is FP16 or FP32 (reference mode). AWQ (AutoAWQ GEMM) linears are
 * repacked once at load into HrQMat (4-bit, row-major, zero folded per
 * group) and dequantized inside the matmul; there is no dequantized copy.
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
#include "cpu-bandwidth.h"
#include "cpu-kernels.h"
#include "gguf-blocks.h"
#include "gguf.h"
#include "hr-half.h"

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

typedef struct {
    CpuLinear wq, wk, wv, wo;   /* [n_heads*hd, dim], [kv*hd, dim] x2, [dim, n_heads*hd] */
    float *bq, *bk, *bv;        /* biases or NULL (Qwen2) */
    CpuLinear w_gate, w_up, w_down; /* [hidden, dim] x2, [dim, hidden] */
    float *attn_norm;           /* [dim] */
    float *ffn_norm;            /* [dim] */
    void *k_cache, *v_cache;    /* [context_len, kv*hd] in kv_type */
} CpuLayer;

typedef struct {
    HrModelConfig cfg;
    HrBackendOptions opt;
    HrMat embed;                /* [vocab, dim] */
    const HrTensor *embed_blocks; /* the embedding when GGUF block-quantized */
    HrMat lm_head;              /* [vocab, dim], == embed when tied */
    CpuLinear lm_ggml;          /* the lm_head when GGUF block-quantized */
    /* The lm_head rounded to int8 per block of 32 (4-bit models, unless
     * HEARTH_CPU_EXACT): decode reads it instead of lm_head, half the bytes
     * of FP16; prefill with every row's logits (perplexity) keeps lm_head. */
    HrQ8Mat *lm_q8;
    size_t decode_weight_bytes; /* what one decode step reads */
    float *final_norm;          /* [dim] */
    CpuLayer *layers;
    HrThreadPool *pool;
    float *inv_freq;            /* [hd/2] */
    /* scratch, sized for CHUNK tokens */
    float *x, *xb, *q, *k, *v, *att_out, *hb, *hb2, *scores;
    float *logits;              /* [logits_rows, vocab] */
    int logits_rows;            /* rows valid after the last forward */
    int logits_cap;
    size_t scratch_bytes;
    size_t kv_bytes;
    size_t weight_bytes;
    double load_read_s, load_convert_s;
    GPtrArray *aligned_copies;  /* weights whose mapped bytes were misaligned */
} CpuCtx;

/* Prefill runs in chunks of this many tokens: each chunk reads (and for
 * 4-bit weights dequantizes) every matrix once, so larger chunks amortize
 * that; the scratch grows with it (29 MB for a 1B model, 52 MB for 8B).
 * 64 -> 256 measured 107/119 -> 136/139 tok/s on a 512-token prefill
 * (Llama-3.2-1B shape, AWQ). */
enum { CHUNK = 256 };

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
    bool ok = (cols == 0) ? (t->n_dims == 1 && t->shape[0] == rows)
                          : (t->n_dims == 2 && t->shape[0] == rows && t->shape[1] == cols);
    if (!ok) {
        char shape[128] = "";
        for (int i = 0; i < t->n_dims; i++)
            g_snprintf(shape + strlen(shape), sizeof shape - strlen(shape), "%s%" G_GINT64_FORMAT,
                       i ? ", " : "", t->shape[i]);
        if (cols == 0)
            return hr_error_set(err, HR_ERR_FORMAT, "%s: tensor '%s' has shape [%s]; the config needs [%" G_GINT64_FORMAT "]",
                                t->file, name, shape, rows);
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
    m->cols = cols ? (int)cols : 1;
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

/* 1-D vectors (norm weights, biases) are converted to FP32 copies. */
static HrStatus
take_vec(CpuCtx *c, const HrTensorSet *ts, const char *name, int64_t n, float **out, size_t *bytes, HrError *err)
{
    HrMat m;
    HrStatus st = take_mat(c, ts, name, n, 0, &m, bytes, err);
    if (st != HR_OK)
        return st;
    *out = g_new(float, n);
    hr_mat_row_f32(&m, 0, *out, (int)n); /* a 1-D tensor is one row of n */
    return HR_OK;
}

static void
cpu_destroy(void *p)
{
    CpuCtx *c = p;
    if (!c)
        return;
    if (c->lm_q8) {
        hr_q8mat_free(c->lm_q8);
        g_free(c->lm_q8);
    }
    free_linear(&c->lm_ggml);
    if (c->layers) {
        for (int l = 0; l < c->cfg.n_layers; l++) {
            CpuLayer *L = &c->layers[l];
            free_linear(&L->wq);
            free_linear(&L->wk);
            free_linear(&L->wv);
            free_linear(&L->wo);
            free_linear(&L->w_gate);
            free_linear(&L->w_up);
            free_linear(&L->w_down);
            g_free(L->bq);
            g_free(L->bk);
            g_free(L->bv);
            g_free(L->attn_norm);
            g_free(L->ffn_norm);
            free(L->k_cache);
            free(L->v_cache);
        }
        g_free(c->layers);
    }
    hr_pool_free(c->pool);
    if (c->aligned_copies)
        g_ptr_array_unref(c->aligned_copies);
    g_free(c->final_norm);
    g_free(c->inv_freq);
    g_free(c->x);
    g_free(c->xb);
    g_free(c->q);
    g_free(c->k);
    g_free(c->v);
    g_free(c->att_out);
    g_free(c->hb);
    g_free(c->hb2);
    g_free(c->scores);
    g_free(c->logits);
    g_free(c);
}

void
hr_rope_inv_freq(const HrModelConfig *cfg, float *inv_freq)
{
    int half = cfg->head_dim / 2;
    for (int i = 0; i < half; i++) {
        /* As transformers computes it, in float32. */
        float f = 1.0f / powf(cfg->rope_theta, (float)(2 * i) / (float)cfg->head_dim);
        if (cfg->rope_scaling == HR_ROPE_LINEAR) {
            f /= cfg->rope_factor;
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

/* madvise the whole pages covering [p, p + n). */
static void
advise_range(const void *p, size_t n, int advice)
{
    const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t a = (uintptr_t)p & ~(page - 1), b = ((uintptr_t)p + n + page - 1) & ~(page - 1);
    if (n && b > a)
        (void)madvise((void *)a, b - a, advice);
}

/* Reading, layer by layer (layer -1: the tensors outside the layers): the
 * pages of the layer about to be converted are populated (mapped, and read
 * from disk when the cache is cold: the reading time), and the next layer's
 * are handed to the kernel's read-ahead so that the disk works while the
 * pool converts this one. Failures only cost speed (an old kernel without
 * MADV_POPULATE_READ pages in as the conversion touches the bytes). */
static void
page_in_layer(CpuCtx *c, const HrTensorSet *ts, int layer, bool ahead)
{
    const gint64 t0 = g_get_monotonic_time();
    /* An untied embedding table is read a row per token, never whole. */
    const bool skip_embed = hr_tensor_set_find(ts, "lm_head.weight") != NULL;
    for (size_t i = 0; i < hr_tensor_set_count(ts); i++) {
        const HrTensor *t = hr_tensor_set_get(ts, i);
        const int l = hr_tensor_layer(t->name);
        if (skip_embed && strcmp(t->name, "model.embed_tokens.weight") == 0)
            continue;
        if (l == layer)
#ifdef MADV_POPULATE_READ
            advise_range(t->data, t->n_bytes, MADV_POPULATE_READ);
#else
            advise_range(t->data, t->n_bytes, MADV_WILLNEED);
#endif
        else if (ahead && l == layer + 1)
            advise_range(t->data, t->n_bytes, MADV_WILLNEED);
    }
    c->load_read_s += (double)(g_get_monotonic_time() - t0) / 1e6;
}

static HrStatus
cpu_create(const HrModelConfig *cfg, const HrTensorSet *ts, const HrBackendOptions *opt,
           HrProgressFunc progress, void *user, void **ctx_out, HrError *err)
{
    *ctx_out = NULL;
    if (opt->context_len < 1)
        return hr_error_set(err, HR_ERR_INVALID_ARG, "context length must be positive");
    CpuCtx *c = g_new0(CpuCtx, 1);
    c->aligned_copies = g_ptr_array_new_with_free_func(g_free);
    c->cfg = *cfg;
    c->opt = *opt;
    c->pool = hr_pool_new(opt->n_threads);
    const gint64 t_start = g_get_monotonic_time();
    page_in_layer(c, ts, -1, false);
    const int dim = cfg->dim, hd = cfg->head_dim;
    const int q_dim = cfg->n_heads * hd, kv_dim = cfg->n_kv_heads * hd;
    const HrTensor *te = hr_tensor_set_find(ts, "model.embed_tokens.weight");
    const HrTensor *tl = hr_tensor_set_find(ts, "lm_head.weight");
    HrStatus st = HR_OK;
    if (te && te->dtype == HR_DTYPE_GGML) {
        /* GGUF: rows decoded as they are gathered; the bytes count below */
        int block = 0;
        size_t block_bytes = 0;
        if (!hr_ggml_dequant_supported(te->ggml_type) || !hr_ggml_type_block(te->ggml_type, &block, &block_bytes))
            st = hr_error_set(err, HR_ERR_UNSUPPORTED, "%s: tensor '%s' is %s, which Hearth does not read yet",
                              te->file, te->name, hr_tensor_type_name(te));
        else if (te->n_dims != 2 || te->shape[0] != cfg->vocab_size || te->shape[1] != dim)
            st = hr_error_set(err, HR_ERR_FORMAT, "%s: tensor '%s' is not [%d, %d] as the config needs", te->file,
                              te->name, cfg->vocab_size, dim);
        c->embed_blocks = te;
        c->weight_bytes += te->n_bytes;
    } else {
        st = take_mat(c, ts, "model.embed_tokens.weight", cfg->vocab_size, dim, &c->embed, &c->weight_bytes, err);
    }
    const size_t embed_bytes = c->weight_bytes;
    size_t lm_bytes = 0; /* an untied lm_head's */
    if (st == HR_OK)
        st = take_vec(c, ts, "model.norm.weight", dim, &c->final_norm, &c->weight_bytes, err);
    if (st == HR_OK) {
        const size_t before = c->weight_bytes;
        const HrTensor *lt = tl ? tl : cfg->tie_embeddings ? te : NULL;
        if (lt && lt->dtype == HR_DTYPE_GGML)
            st = take_ggml(c, lt, cfg->vocab_size, dim, &c->lm_ggml, &c->weight_bytes, err);
        else if (tl)
            st = take_mat(c, ts, "lm_head.weight", cfg->vocab_size, dim, &c->lm_head, &c->weight_bytes, err);
        else if (cfg->tie_embeddings)
            c->lm_head = c->embed;
        else
            st = hr_error_set(err, HR_ERR_FORMAT, "tensor 'lm_head.weight' is missing and the config "
                              "does not tie the embeddings (tie_word_embeddings is false)");
        lm_bytes = c->weight_bytes - before;
    }
    size_t kv_elem = opt->kv_type == HR_KV_F32 ? sizeof(float) : sizeof(uint16_t);
    size_t cache_bytes = (size_t)opt->context_len * (size_t)kv_dim * kv_elem;
    c->layers = g_new0(CpuLayer, cfg->n_layers);
    for (int l = 0; st == HR_OK && l < cfg->n_layers; l++) {
        CpuLayer *L = &c->layers[l];
        char name[128];
        page_in_layer(c, ts, l, l + 1 < cfg->n_layers);
#define LNAME(suffix) (g_snprintf(name, sizeof name, "model.layers.%d." suffix, l), name)
        if ((st = take_vec(c, ts, LNAME("input_layernorm.weight"), dim, &L->attn_norm, &c->weight_bytes, err)) ||
            (st = take_vec(c, ts, LNAME("post_attention_layernorm.weight"), dim, &L->ffn_norm, &c->weight_bytes, err)) ||
            (st = take_linear(c, ts, LNAME("self_attn.q_proj"), q_dim, dim, &L->wq, &c->weight_bytes, err)) ||
            (st = take_linear(c, ts, LNAME("self_attn.k_proj"), kv_dim, dim, &L->wk, &c->weight_bytes, err)) ||
            (st = take_linear(c, ts, LNAME("self_attn.v_proj"), kv_dim, dim, &L->wv, &c->weight_bytes, err)) ||
            (st = take_linear(c, ts, LNAME("self_attn.o_proj"), dim, q_dim, &L->wo, &c->weight_bytes, err)) ||
            (st = take_linear(c, ts, LNAME("mlp.gate_proj"), cfg->hidden_dim, dim, &L->w_gate, &c->weight_bytes, err)) ||
            (st = take_linear(c, ts, LNAME("mlp.up_proj"), cfg->hidden_dim, dim, &L->w_up, &c->weight_bytes, err)) ||
            (st = take_linear(c, ts, LNAME("mlp.down_proj"), dim, cfg->hidden_dim, &L->w_down, &c->weight_bytes, err)))
            break;
        if (cfg->qkv_bias &&
            ((st = take_vec(c, ts, LNAME("self_attn.q_proj.bias"), q_dim, &L->bq, &c->weight_bytes, err)) ||
             (st = take_vec(c, ts, LNAME("self_attn.k_proj.bias"), kv_dim, &L->bk, &c->weight_bytes, err)) ||
             (st = take_vec(c, ts, LNAME("self_attn.v_proj.bias"), kv_dim, &L->bv, &c->weight_bytes, err))))
            break;
#undef LNAME
        L->k_cache = calloc(1, cache_bytes);
        L->v_cache = calloc(1, cache_bytes);
        if (!L->k_cache || !L->v_cache) {
            st = hr_error_set(err, HR_ERR_NOMEM, "cannot allocate the KV cache: %zu MiB needed",
                              2 * cache_bytes * (size_t)cfg->n_layers >> 20);
            break;
        }
        c->kv_bytes += 2 * cache_bytes;
        if (progress && !progress((double)(l + 1) / cfg->n_layers, "layers", user)) {
            st = hr_error_set(err, HR_ERR_CANCELLED, "loading was cancelled");
            break;
        }
    }
    if (st != HR_OK) {
        cpu_destroy(c);
        return st;
    }
    /* Decode reads every layer, the final norm and the lm_head, not the
     * embedding table (one row of it). */
    c->decode_weight_bytes = c->weight_bytes - embed_bytes - lm_bytes +
                             (size_t)c->lm_head.rows * (size_t)c->lm_head.cols * hr_dtype_size(c->lm_head.dtype);
    if (c->lm_ggml.rows) {
        /* GGUF: every layer and the lm_head as repacked (counted in lm_bytes) */
        c->decode_weight_bytes = c->weight_bytes - embed_bytes;
    } else if (want_lm_q8(cfg, &c->lm_head)) {
        c->lm_q8 = g_new0(HrQ8Mat, 1);
        hr_q8mat_from(c->pool, &c->lm_head, c->lm_q8);
        const size_t fp = (size_t)c->lm_head.rows * (size_t)c->lm_head.cols * hr_dtype_size(c->lm_head.dtype);
        const size_t q8 = hr_q8mat_bytes(c->lm_q8);
        c->decode_weight_bytes = c->decode_weight_bytes - fp + q8;
        c->weight_bytes = c->weight_bytes - lm_bytes + q8;
        /* Its FP pages in the mapped file are read again only for a prefill
         * that wants every row's logits (or the rows a tied embedding gathers). */
        const HrTensor *t = hr_tensor_set_find(ts, lm_bytes ? "lm_head.weight" : "model.embed_tokens.weight");
        if (t && t->data == c->lm_head.data)
            drop_pages(t->data, (int64_t)fp);
    }
    c->load_convert_s = (double)(g_get_monotonic_time() - t_start) / 1e6 - c->load_read_s;
    c->inv_freq = g_new(float, hd / 2);
    hr_rope_inv_freq(cfg, c->inv_freq);
    c->x = g_new(float, (size_t)CHUNK * dim);
    c->xb = g_new(float, (size_t)CHUNK * MAX(dim, q_dim));
    c->q = g_new(float, (size_t)CHUNK * q_dim);
    c->k = g_new(float, (size_t)CHUNK * kv_dim);
    c->v = g_new(float, (size_t)CHUNK * kv_dim);
    c->att_out = g_new(float, (size_t)CHUNK * q_dim);
    c->hb = g_new(float, (size_t)CHUNK * cfg->hidden_dim);
    c->hb2 = g_new(float, (size_t)CHUNK * cfg->hidden_dim);
    c->scores = g_new(float, (size_t)cfg->n_heads * opt->context_len);
    c->scratch_bytes = sizeof(float) * ((size_t)CHUNK * (2 * (size_t)dim + (size_t)MAX(dim, q_dim) + 2 * (size_t)q_dim +
                                        2 * (size_t)kv_dim + 2 * (size_t)cfg->hidden_dim) + (size_t)cfg->n_heads * opt->context_len);
    *ctx_out = c;
    return HR_OK;
}

static void
rope(float *vec, int n_heads, int hd, int pos, const float *inv_freq)
{
    int half = hd / 2;
    for (int i = 0; i < half; i++) {
        float angle = (float)pos * inv_freq[i];
        float cs = cosf(angle), sn = sinf(angle);
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

/* Causal grouped-query attention for tokens t0..t0+n-1 of a chunk at
 * absolute positions pos.., one query head per work item on the pool; each
 * head has its own row of scores. */
typedef struct {
    CpuCtx *c;
    const CpuLayer *L;
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
    const float scale = 1.0f / sqrtf((float)hd);
    const bool f16 = c->opt.kv_type != HR_KV_F32;
    const size_t esize = f16 ? 2 : 4;
    for (int h = h0; h < h1; h++) {
        const size_t kv_off = (size_t)(h / group) * hd * esize;
        float *scores = c->scores + (size_t)h * c->opt.context_len;
        for (int t = 0; t < j->n; t++) {
            const int p = j->pos + t;
            int start = 0;
            if (cfg->sliding_window > 0 && p - cfg->sliding_window + 1 > 0)
                start = p - cfg->sliding_window + 1;
            hr_attend_head(c->q + (size_t)t * q_dim + (size_t)h * hd, (const char *)j->L->k_cache + kv_off,
                           (const char *)j->L->v_cache + kv_off, f16, (size_t)kv_dim, hd, start, p, scale, scores,
                           c->att_out + (size_t)t * q_dim + (size_t)h * hd);
        }
    }
}

/* One chunk of n <= CHUNK tokens at positions pos..pos+n-1. */
static void
forward_chunk(CpuCtx *c, const int32_t *tokens, int n, int pos, float *logits, bool all_logits)
{
    const HrModelConfig *cfg = &c->cfg;
    const int dim = cfg->dim, hd = cfg->head_dim, hidden = cfg->hidden_dim;
    const int q_dim = cfg->n_heads * hd, kv_dim = cfg->n_kv_heads * hd;

    if (c->embed_blocks) {
        const size_t row_bytes = c->embed_blocks->n_bytes / (size_t)cfg->vocab_size;
        for (int t = 0; t < n; t++)
            hr_ggml_dequant(c->embed_blocks->ggml_type,
                            (const uint8_t *)c->embed_blocks->data + (size_t)tokens[t] * row_bytes,
                            c->x + (size_t)t * dim, dim);
    } else {
        for (int t = 0; t < n; t++)
            hr_mat_row_f32(&c->embed, tokens[t], c->x + (size_t)t * dim, dim);
    }

    for (int l = 0; l < cfg->n_layers; l++) {
        const CpuLayer *L = &c->layers[l];
        for (int t = 0; t < n; t++)
            hr_rmsnorm(c->xb + (size_t)t * dim, c->x + (size_t)t * dim, L->attn_norm, dim, cfg->norm_eps);
        if (L->wq.q && L->wk.q && L->wv.q) { /* one pass for q|k|v */
            hr_matmul_q4_multi(c->pool, 3, (float *const[]){ c->q, c->k, c->v },
                               (const HrQMat *const[]){ L->wq.q, L->wk.q, L->wv.q },
                               (const float *const[]){ L->bq, L->bk, L->bv }, c->xb, n);
        } else {
            linear(c, c->q, &L->wq, L->bq, c->xb, n, NULL);
            linear(c, c->k, &L->wk, L->bk, c->xb, n, NULL);
            linear(c, c->v, &L->wv, L->bv, c->xb, n, NULL);
        }
        for (int t = 0; t < n; t++) {
            int p = pos + t;
            rope(c->q + (size_t)t * q_dim, cfg->n_heads, hd, p, c->inv_freq);
            rope(c->k + (size_t)t * kv_dim, cfg->n_kv_heads, hd, p, c->inv_freq);
            kv_store(L->k_cache, c->opt.kv_type, (size_t)p * kv_dim, c->k + (size_t)t * kv_dim, kv_dim);
            kv_store(L->v_cache, c->opt.kv_type, (size_t)p * kv_dim, c->v + (size_t)t * kv_dim, kv_dim);
        }
        AttendJob aj = { c, L, n, pos };
        hr_pool_run(c->pool, attend_heads, &aj, cfg->n_heads, 1);
        /* x += att_out @ Wo^T (residual in the epilogue) */
        linear(c, c->x, &L->wo, NULL, c->att_out, n, c->x);

        for (int t = 0; t < n; t++)
            hr_rmsnorm(c->xb + (size_t)t * dim, c->x + (size_t)t * dim, L->ffn_norm, dim, cfg->norm_eps);
        if (L->w_gate.q && L->w_up.q) { /* one pass for gate|up */
            hr_matmul_q4_multi(c->pool, 2, (float *const[]){ c->hb, c->hb2 },
                               (const HrQMat *const[]){ L->w_gate.q, L->w_up.q }, NULL, c->xb, n);
        } else {
            linear(c, c->hb, &L->w_gate, NULL, c->xb, n, NULL);
            linear(c, c->hb2, &L->w_up, NULL, c->xb, n, NULL);
        }
        for (size_t i = 0; i < (size_t)n * hidden; i++) {
            float g = c->hb[i];
            c->hb[i] = g / (1.0f + expf(-g)) * c->hb2[i];
        }
        linear(c, c->x, &L->w_down, NULL, c->hb, n, c->x);
    }

    if (!logits)
        return; /* a non-final prefill chunk: only the KV cache matters */
    int first = all_logits ? 0 : n - 1;
    for (int t = first; t < n; t++)
        hr_rmsnorm(c->xb + (size_t)t * dim, c->x + (size_t)t * dim, c->final_norm, dim, cfg->norm_eps);
    if (c->lm_ggml.rows)
        linear(c, logits, &c->lm_ggml, NULL, c->xb + (size_t)first * dim, n - first, NULL);
    else if (c->lm_q8 && n - first < 6)
        hr_matmul_q8w(c->pool, logits, c->lm_q8, NULL, c->xb + (size_t)first * dim, n - first, NULL);
    else
        hr_matmul(c->pool, logits, &c->lm_head, NULL, c->xb + (size_t)first * dim, n - first, NULL);
}

static HrStatus
cpu_forward(void *p, const int32_t *tokens, int n_tokens, int pos, bool all_logits, HrError *err)
{
    CpuCtx *c = p;
    const HrModelConfig *cfg = &c->cfg;
    HrStatus bad = hr_backend_check_forward(cfg, c->opt.context_len, tokens, n_tokens, pos, err);
    if (bad != HR_OK)
        return bad;
    int rows = all_logits ? n_tokens : 1;
    if (rows > c->logits_cap) {
        g_free(c->logits);
        c->logits = g_try_malloc((size_t)rows * cfg->vocab_size * sizeof(float));
        if (!c->logits) {
            c->logits_cap = 0;
            return hr_error_set(err, HR_ERR_NOMEM, "forward: no memory for %d rows of logits", rows);
        }
        c->logits_cap = rows;
    }
    for (int done = 0; done < n_tokens; done += CHUNK) {
        int n = MIN(CHUNK, n_tokens - done);
        bool last_chunk = done + n == n_tokens;
        float *dst = all_logits ? c->logits + (size_t)done * cfg->vocab_size : c->logits;
        /* Non-final chunks in last-only mode still need no logits at all. */
        if (!all_logits && !last_chunk) {
            forward_chunk(c, tokens + done, n, pos + done, NULL, false);
            continue;
        }
        forward_chunk(c, tokens + done, n, pos + done, dst, all_logits);
    }
    c->logits_rows = rows;
    return HR_OK;
}

static HrStatus
cpu_get_logits(void *p, int row, float *out, HrError *err)
{
    CpuCtx *c = p;
    HrStatus st = hr_backend_logits_row(&row, c->logits_rows, err);
    if (st != HR_OK)
        return st;
    memcpy(out, c->logits + (size_t)row * c->cfg.vocab_size, sizeof(float) * c->cfg.vocab_size);
    return HR_OK;
}

static void
cpu_memory(void *p, HrMemoryReport *out)
{
    CpuCtx *c = p;
    out->weight_bytes = c->weight_bytes;
    out->kv_bytes = c->kv_bytes;
    out->scratch_bytes = c->scratch_bytes + (size_t)c->logits_cap * c->cfg.vocab_size * sizeof(float);
    out->location = "host";
    out->decode_weight_bytes = c->decode_weight_bytes;
    out->load_read_s = c->load_read_s;
    out->load_convert_s = c->load_convert_s;
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
    return hr_cpu_read_bandwidth(((CpuCtx *)p)->pool, bytes_per_s, err);
}

const HrBackendOps hr_cpu_backend = {
    .api_version = HR_BACKEND_API_VERSION,
    .name = "cpu",
    .create = cpu_create,
    .destroy = cpu_destroy,
    .forward = cpu_forward,
    .get_logits = cpu_get_logits,
    .memory = cpu_memory,
    .gemm_open = cpu_gemm_open,
    .gemm_close = cpu_gemm_close,
    .gemm = cpu_gemm,
    .read_bandwidth = cpu_read_bandwidth,
};
