/* Every Vulkan kernel (engine/vulkan/vk-kernels.c, the shaders) against
 * the CPU reference, on a real driver (lavapipe in CI) with the validation
 * layer on and zero messages allowed.
 *
 * Kernel configurations: the one chosen for the device, the same without
 * subgroup arithmetic (shared-memory reductions), and a GPU-like one
 * (128-thread workgroups, 2 rows, 8 tokens per workgroup), each at several
 * shapes: stories260K's (dim 64, heads 8/KV 4, head_dim 8, hidden 172,
 * vocab 512), odd widths and tails, per-channel and grouped AWQ.
 *
 * GGUF blocks (hr_vk_pack_ggml: Q4_0, Q4_1, Q4_K as 4-bit groups with a
 * zero point, FP16 offset or FP32 offset; Q8_0, Q5_0, Q5_1, Q5_K, Q6_K as
 * int8 with an FP32 scale per 32 or 16 and an optional offset): random
 * blocks (random bytes, sane FP16 scales of either sign), against the rows
 * decoded by hr_ggml_dequant() (which test-gguf-blocks holds to llama.cpp's
 * decoder) times x in FP32 on the CPU; decode, prefill and the fused q|k|v
 * and gate*up, row tails (N not a multiple of the rows per workgroup or
 * tile), one to sixteen groups per row; and the embedding gather from each
 * layout (exact: both sides form s*q + b in FP32 with an exact product,
 * except Q6_K's (d*sc)*q and Q5_1/Q5_K's centred values: 1e-6 * (1 + |w|)).
 * A type the kernels do not read (Q2_K) is refused by name.
 *
 * The AWQ search's kernels: scale_quant.comp against the CPU's fake
 * quantization (bit for bit on lavapipe; elsewhere a value may sit one
 * quantization step away), sq_diff.comp's row sums within 1e-5 of double,
 * clip_gram.comp + clip_search.comp's limits on the steps' grid and 95 %
 * the CPU reference's (hr_awq_clip_search).
 *
 * Tolerances (the GPU sums in another order, in FP32 like the CPU):
 *   GEMV/RMSNorm/RoPE: |gpu - cpu| <= 2e-4 * (1 + max |cpu|)
 *   attention:         |gpu - cpu| <= 1e-4 * (1 + max |cpu|)  (same FP16 cache)
 *   embed, KV-cache contents, argmax: exact.
 *
 * The draw's device part (penalize.comp, topk.comp's passes): rows of
 * 1 .. 151,936 logits across the 1024-value workgroup boundaries, with
 * ties in every workgroup, a repetition penalty over a few hundred ids, and
 * a NaN or an Inf: the 64 best ids and their values exactly as a full sort
 * on the host gives them (value descending, lower id first), the not-finite
 * flag exactly, the softmax's denominator within 1e-5 of a double sum.
 */
#include <math.h>
#include <string.h>

#include <glib.h>

#include "cpu-awq.h"
#include "cpu-kernels.h"
#include "gguf-blocks.h"
#include "gguf.h"
#include "hr-half.h"
#include "hr-test.h"
#include "quantize.h"
#include "vulkan/vk-kernels.h"

static HrVkContext *ctx;
static HrVkKernels *kern;
static GRand *rng;
static const char *cfg_label;
static float gemv_tol = 1e-5f;   /* GEMV/GEMM tolerance of the current config */
/* what the current config changes, so what it runs: everything, the prefill linears (matrix units),
 * or the decode linears (int8 activations) */
static enum { RUN_ALL, RUN_COOP_LINEARS, RUN_Q8_LINEARS } subset;
static int n_wide;               /* GEMVs that ran the 32-input-unit kernel */
static int n_q8;                 /* GEMVs that ran on int8 activations */
static GHashTable *worst;   /* kernel name -> largest |diff| / (1 + max |cpu|) seen */

/* ---- helpers -------------------------------------------------------------------- */

static HrVkBuffer *
hostbuf(size_t bytes, const void *init)
{
    HrVkBuffer *b = g_new0(HrVkBuffer, 1);
    HrError err = { 0 };
    if (hr_vk_buffer_new_host(ctx, bytes ? bytes : 4, b, &err) != HR_OK) {
        fprintf(stderr, "%s\n", err.message);
        exit(1);
    }
    if (init)
        memcpy(b->mapped, init, bytes);
    else
        memset(b->mapped, 0, bytes ? bytes : 4);
    return b;
}

static void
freebuf(HrVkBuffer *b)
{
    if (b) {
        hr_vk_buffer_free(ctx, b);
        g_free(b);
    }
}

static HrVkBuffer *
params_buf(uint32_t pos, uint32_t n, uint32_t first)
{
    HrVkStepParams p = { pos, n, first, pos + n };
    return hostbuf(sizeof p, &p);
}

static float *
randv(size_t n, float scale)
{
    float *v = g_new(float, n);
    for (size_t i = 0; i < n; i++)
        v[i] = (float)g_rand_double_range(rng, -scale, scale);
    return v;
}

static bool
close_enough(const char *what, const float *gpu, const float *ref, size_t n, float rel)
{
    float mx = 0.0f, diff = 0.0f;
    size_t at = 0;
    for (size_t i = 0; i < n; i++)
        mx = fmaxf(mx, fabsf(ref[i]));
    for (size_t i = 0; i < n; i++) {
        float d = fabsf(gpu[i] - ref[i]);
        if (!(d <= diff)) {
            diff = isnan(d) ? INFINITY : d;
            at = i;
        }
    }
    float tol = rel * (1.0f + mx);
    char key[32];
    g_strlcpy(key, what, sizeof key);
    key[strcspn(key, " ")] = 0;
    if (rel > 1e-5f && hr_vk_kernels_config(kern)->gemm_coop)
        g_strlcat(key, "/coop", sizeof key);        /* prefill on matrix units: FP16 operands */
    else if (rel > 1e-5f && !g_str_has_prefix(key, "gemm") && !g_str_has_prefix(key, "lm_head"))
        g_strlcat(key, "/fp16-math", sizeof key);   /* decode GEMV with FP16 products */
    else if (hr_vk_kernels_config(kern)->gemv_q8)
        g_strlcat(key, "/q8", sizeof key);          /* decode GEMV on int8 activations (and its fallbacks) */
    float *w = g_hash_table_lookup(worst, key);
    if (!w) {
        w = g_new0(float, 1);
        g_hash_table_insert(worst, g_strdup(key), w);
    }
    *w = fmaxf(*w, diff / (1.0f + mx));
    HR_CHECK(diff <= tol, "[%s] %s: max |diff| %g at %zu (gpu %g, cpu %g), tolerance %g", cfg_label, what, diff, at,
             n ? gpu[at] : 0.0f, n ? ref[at] : 0.0f, tol);
    return diff <= tol;
}

static void
run(const HrVkDispatch *d, uint32_t n)
{
    HrError err = { 0 };
    HrStatus st = hr_vk_run(kern, d, n, &err);
    HR_CHECK(st == HR_OK, "[%s] run: %s", cfg_label, err.message);
}

/* ---- test matrices ---------------------------------------------------------------- */

typedef struct {
    int N, K, ng;
    bool quant;
    uint32_t ggml;     /* a GGUF block type (then quant is false), or 0 */
    HrVkWeight w;
    HrQMat q;          /* CPU copy when quant */
    uint16_t *f16;     /* [N, K] when dense */
    float *f32;        /* [N, K] the GGUF rows decoded by hr_ggml_dequant() */
} TestMat;

static void
put_half(uint8_t *p, float v)
{
    uint16_t h = hr_f32_to_f16(v);
    memcpy(p, &h, 2);
}

static double
rand_signed(double lo, double hi)
{
    double v = g_rand_double_range(rng, lo, hi);
    return g_rand_boolean(rng) ? v : -v;
}

/* [N, K] random blocks of GGUF type `type` (K a multiple of the block):
 * random bytes, then the FP16 scales and mins set to sizes a model has. */
static uint8_t *
ggml_random(uint32_t type, int N, int K, size_t *n_bytes)
{
    int block = 0;
    size_t bb = 0;
    hr_ggml_type_block(type, &block, &bb);
    *n_bytes = (size_t)N * (size_t)(K / block) * bb;
    uint8_t *b = g_new(uint8_t, *n_bytes);
    for (size_t i = 0; i < *n_bytes; i++)
        b[i] = (uint8_t)g_rand_int_range(rng, 0, 256);
    for (uint8_t *p = b; p < b + *n_bytes; p += bb) {
        switch (type) {
        case HR_GGML_Q4_0:
        case HR_GGML_Q5_0:
        case HR_GGML_Q8_0:
            put_half(p, (float)rand_signed(0.001, 0.03));
            break;
        case HR_GGML_Q4_1:
        case HR_GGML_Q5_1:
            put_half(p, (float)g_rand_double_range(rng, 0.001, 0.02));
            put_half(p + 2, (float)g_rand_double_range(rng, -0.3, 0.0));
            break;
        case HR_GGML_Q4_K:
        case HR_GGML_Q5_K:
            put_half(p, (float)g_rand_double_range(rng, 0.0001, 0.001));
            put_half(p + 2, (float)g_rand_double_range(rng, 0.0001, 0.002));
            break;
        case HR_GGML_Q6_K:
            put_half(p + 208, (float)rand_signed(0.00002, 0.0002));
            break;
        default:
            break;
        }
    }
    return b;
}

static void
mat_make_ggml(TestMat *m, int N, int K, uint32_t type)
{
    memset(m, 0, sizeof *m);
    m->N = N;
    m->K = K;
    m->ggml = type;
    size_t n_bytes = 0, n_words = 0;
    uint8_t *blocks = ggml_random(type, N, K, &n_bytes);
    m->f32 = g_new(float, (size_t)N * K);
    for (int n = 0; n < N; n++)
        hr_ggml_dequant(type, blocks + n_bytes / (size_t)N * (size_t)n, m->f32 + (size_t)n * K, K);
    HrError err = { 0 };
    uint32_t *words = hr_vk_pack_ggml(blocks, type, N, K, &m->w, &n_words, &err);
    HR_CHECK(words != NULL, "pack_ggml: %s", err.message);
    HR_CHECK(n_words == hr_vk_ggml_words(type, N, K), "pack_ggml %s: %zu words, hr_vk_ggml_words says %zu",
             hr_ggml_type_name(type), n_words, hr_vk_ggml_words(type, N, K));
    m->ng = (int)m->w.ng;
    HrVkBuffer *b = hostbuf(n_words * 4, words);
    m->w.buf = *b;
    g_free(b);
    g_free(words);
    g_free(blocks);
}

static const char *
mat_label(const TestMat *m)
{
    return m->ggml ? hr_ggml_type_name(m->ggml) : m->quant ? "q4" : "f16";
}

static void
mat_make(TestMat *m, int N, int K, int ng, bool quant)
{
    memset(m, 0, sizeof *m);
    m->N = N;
    m->K = K;
    m->ng = ng;
    m->quant = quant;
    HrError err = { 0 };
    size_t n_words = 0;
    uint32_t *words;
    if (quant) {
        int g = K / ng;
        uint8_t *qT = g_new(uint8_t, (size_t)K * N);     /* [K, N] for hr_awq_pack */
        uint8_t *zT = g_new(uint8_t, (size_t)ng * N);
        uint16_t *sc = g_new(uint16_t, (size_t)ng * N);   /* [ng, N] */
        for (size_t i = 0; i < (size_t)K * N; i++)
            qT[i] = (uint8_t)g_rand_int_range(rng, 0, 16);
        for (size_t i = 0; i < (size_t)ng * N; i++) {
            zT[i] = (uint8_t)g_rand_int_range(rng, 0, 16);
            sc[i] = hr_f32_to_f16((float)g_rand_double_range(rng, 0.001, 0.05));
        }
        int32_t *qw = g_new(int32_t, (size_t)K * N / 8), *qz = g_new(int32_t, (size_t)ng * N / 8);
        hr_awq_pack(qT, K, N, qw);
        hr_awq_pack(zT, ng, N, qz);
        words = hr_vk_pack_awq(qw, qz, sc, N, K, ng, NULL, &m->w, &n_words, &err);
        HR_CHECK(words != NULL, "pack_awq: %s", err.message);
        /* The CPU's HrQMat, built from the same values. */
        m->q.rows = N;
        m->q.cols = K;
        m->q.group = g;
        m->q.n_groups = ng;
        m->q.q = g_new0(uint8_t, (size_t)N * (size_t)(K / 2));
        m->q.scale = g_new(uint16_t, (size_t)N * ng);
        m->q.zero = g_new(uint8_t, (size_t)N * ng);
        for (int n = 0; n < N; n++) {
            for (int k = 0; k < K; k++) {
                uint8_t v = qT[(size_t)k * N + n];
                m->q.q[(size_t)n * (K / 2) + k / 2] |= (uint8_t)((k & 1) ? v << 4 : v);
            }
            for (int gi = 0; gi < ng; gi++) {
                m->q.scale[(size_t)n * ng + gi] = sc[(size_t)gi * N + n];
                m->q.zero[(size_t)n * ng + gi] = zT[(size_t)gi * N + n];
            }
        }
        g_free(qT);
        g_free(zT);
        g_free(sc);
        g_free(qw);
        g_free(qz);
    } else {
        m->f16 = g_new(uint16_t, (size_t)N * K);
        for (size_t i = 0; i < (size_t)N * K; i++)
            m->f16[i] = hr_f32_to_f16((float)g_rand_double_range(rng, -0.2, 0.2));
        words = hr_vk_pack_f16(m->f16, HR_DTYPE_F16, N, K, NULL, &m->w, &n_words);
    }
    HrVkBuffer *b = hostbuf(n_words * 4, words);
    m->w.buf = *b;
    g_free(b);
    g_free(words);
}

static void
mat_free(TestMat *m)
{
    hr_vk_buffer_free(ctx, &m->w.buf);
    if (m->quant)
        hr_qmat_free(&m->q);
    g_free(m->f16);
    g_free(m->f32);
}

/* out[t, :] = W x[t, :] (+ bias) (+ residual) on the CPU. */
static void
mat_ref(const TestMat *m, float *out, const float *bias, const float *x, int T, const float *residual)
{
    if (m->quant) {
        hr_matmul_q4(NULL, out, &m->q, bias, x, T, residual);
    } else if (m->ggml) {
        HrMat hm = { m->f32, HR_DTYPE_F32, m->N, m->K };
        hr_matmul(NULL, out, &hm, bias, x, T, residual);
    } else {
        HrMat hm = { m->f16, HR_DTYPE_F16, m->N, m->K };
        hr_matmul(NULL, out, &hm, bias, x, T, residual);
    }
}

/* ---- GEMV ---------------------------------------------------------------------------- */

/* HEARTH_VULKAN_GEMV=q8, a one-token GEMV whose first matrix w takes int8
 * activations: the row bx (= x, K floats) quantized on the device, the
 * result checked against x (d = max|x| / 127 of each block of 32, every
 * value within d/2, the block's d * sum xq), and x replaced by what the GEMV
 * then multiplies, d * xq, so the CPU reference sees the same row. NULL (x
 * kept) where w does not take them. */
static void
q8_check(const char *what, const void *words, float *x, int K)
{
    const uint32_t *qw = words;
    const float *qf = (const float *)words + (size_t)K / 32 * 8;
    int bad = 0;
    for (int b = 0; b < K / 32; b++) {
        float amax = 0.0f;
        for (int i = 0; i < 32; i++)
            amax = fmaxf(amax, fabsf(x[32 * b + i]));
        const float dq = qf[2 * b];
        int sum = 0;
        bad += !(fabsf(dq - amax / 127.0f) <= 1e-6f * amax);
        for (int i = 0; i < 32; i++) {
            /* input 8u + j: unit u's even word (j even) or odd word, byte j / 2 */
            const int u = i / 8, j = i % 8;
            const int q = (int8_t)(qw[8 * b + 2 * u + (j & 1)] >> (8 * (j >> 1)));
            bad += !(fabsf(x[32 * b + i] - dq * (float)q) <= 0.5f * dq * (1.0f + 1e-5f)) || q < -127 || q > 127;
            sum += q;
            x[32 * b + i] = dq * (float)q;
        }
        bad += !(fabsf(qf[2 * b + 1] - dq * (float)sum) <= 1e-6f * fabsf(dq * (float)sum) + 1e-30f);
    }
    HR_CHECK(bad == 0, "[%s] %s, int8 row of %d inputs: %d values or block scales off", cfg_label, what, K, bad);
}

static HrVkBuffer *
q8_prepare(const HrVkWeight *w, HrVkBuffer *bx, float *x, int K, int T, bool prefill)
{
    if (prefill || T != 1 || !hr_vk_gemv_q8(kern, w, (uint32_t)K))
        return NULL;
    HrVkBuffer *bq = hostbuf(hr_vk_q8_words((uint32_t)K) * 4, NULL);
    HrVkDispatch d;
    HrError err = { 0 };
    HR_CHECK(hr_vk_make_quant_q8(kern, bx, 0, (uint32_t)K, bq, &d, &err) == HR_OK, "quant_q8: %s", err.message);
    run(&d, 1);
    q8_check("quant_q8", bq->mapped, x, K);
    n_q8++;
    return bq;
}

static void
test_gemv_one(int N, int K, int ng, bool quant, uint32_t ggml, int T, bool prefill)
{
    char what[160];
    TestMat m;
    if (ggml)
        mat_make_ggml(&m, N, K, ggml);
    else
        mat_make(&m, N, K, ng, quant);
    g_snprintf(what, sizeof what, "%s%s%s %s N=%d K=%d ng=%d T=%d", !prefill ? "gemv" : hr_vk_kernels_config(kern)->gemm
               ? "gemm" : "gemv-tokens", m.ggml ? "-" : "", m.ggml ? mat_label(&m) : "", mat_label(&m), N, K, m.ng, T);
    float *x = randv((size_t)T * K, 1.0f), *res = randv((size_t)T * N, 1.0f), *bias = randv(N, 0.5f);
    float *ref = g_new(float, (size_t)T * N);
    HrVkBuffer *bx = hostbuf((size_t)T * K * 4, x), *bo = hostbuf((size_t)T * N * 4, res);
    HrVkBuffer *bb = hostbuf((size_t)N * 4, bias), *bp = params_buf(0, (uint32_t)T, 0);
    HrError err = { 0 };

    /* plain + bias */
    HrVkDispatch d;
    HrVkBuffer *bq = q8_prepare(&m.w, bx, x, K, T, prefill);
    HrVkGemvArgs a = { .w = { &m.w }, .prefill = prefill, .x = bx, .out = bo, .bias = bb, .params = bp,
                       .x_stride = (uint32_t)K, .o_stride = (uint32_t)N, .max_tokens = (uint32_t)T, .xq = bq };
    HR_CHECK(hr_vk_make_gemv(kern, &a, &d, &err) == HR_OK, "%s", err.message);
    const bool ran_q8 = d.kernel >= HR_VK_K_GEMV_Q8 && d.kernel < HR_VK_K_QUANT_Q8;
    HR_CHECK(ran_q8 == (bq != NULL), "%s: kernel %d, int8 activations %d", what, (int)d.kernel, bq != NULL);
    /* HEARTH_VULKAN_GEMV=wide: 4-bit decode with K % 32 == 0 and groups of
     * 32 or more takes the 32-input-unit kernel, everything else not */
    const bool want_wide = hr_vk_kernels_config(kern)->gemv_wide && !prefill && m.w.kind == HR_VK_W_Q4 &&
                           K % 32 == 0 && (m.w.ng == 1 || m.w.gsize % 32 == 0) && !bq;
    HR_CHECK((d.kernel == HR_VK_K_GEMV_WIDE) == want_wide, "%s: kernel %d, wide %d", what, (int)d.kernel,
             (int)want_wide);
    n_wide += d.kernel == HR_VK_K_GEMV_WIDE;
    run(&d, 1);
    mat_ref(&m, ref, bias, x, T, NULL);
    close_enough(what, bo->mapped, ref, (size_t)T * N, gemv_tol);

    /* residual, no bias */
    memcpy(bo->mapped, res, (size_t)T * N * 4);
    a.bias = NULL;
    a.residual = true;
    HR_CHECK(hr_vk_make_gemv(kern, &a, &d, &err) == HR_OK, "%s", err.message);
    run(&d, 1);
    mat_ref(&m, ref, NULL, x, T, res);
    g_strlcat(what, " residual", sizeof what);
    close_enough(what, bo->mapped, ref, (size_t)T * N, gemv_tol);

    freebuf(bx);
    freebuf(bq);
    freebuf(bo);
    freebuf(bb);
    freebuf(bp);
    g_free(x);
    g_free(res);
    g_free(bias);
    g_free(ref);
    mat_free(&m);
}

/* The lm_head rounded to int8 (HEARTH_VULKAN_LM_HEAD=q8, hr_vk_pack_q8):
 * the same bytes and block scales as the CPU's int8 lm_head
 * (hr_q8mat_from), rows of zeros and of large values included; then its
 * decode GEMV and prefill GEMM against the CPU on the rows it stands for. */
static void
test_pack_q8(int N, int K, int T)
{
    uint16_t *f16 = g_new(uint16_t, (size_t)N * K);
    for (size_t i = 0; i < (size_t)N * K; i++) {
        const size_t r = i / (size_t)K;
        const float scale = r == 1 ? 0.0f : r == 2 ? 3000.0f : 0.2f;   /* a zero row, a large row */
        f16[i] = hr_f32_to_f16((float)g_rand_double_range(rng, -scale, scale));
    }
    HrVkWeight w;
    size_t n_words = 0;
    uint32_t *words = hr_vk_pack_q8(f16, HR_DTYPE_F16, N, K, NULL, &w, &n_words);
    HR_CHECK(n_words == hr_vk_q8_matrix_words(N, K) && w.kind == HR_VK_W_Q8 && w.sfmt == HR_VK_S_F32 &&
             w.ng == (uint32_t)K / 32, "pack_q8 [%d, %d]: %zu words, kind %d, format %d, %u groups", N, K, n_words,
             (int)w.kind, (int)w.sfmt, w.ng);
    HrMat hm = { f16, HR_DTYPE_F16, N, K };
    float *rows = g_new(float, (size_t)N * K);
    if (hr_q8mat_supported(&hm)) {
        HrQ8Mat q8 = { 0 };
        hr_q8mat_from(NULL, &hm, &q8);
        int bad = 0;
        for (int r = 0; r < N; r++) {
            bad += memcmp((const uint8_t *)(words + (size_t)r * w.kw), q8.q + (size_t)r * K, (size_t)K) != 0;
            bad += memcmp(words + w.soff + (size_t)r * w.ng, q8.d + (size_t)r * w.ng, 4 * (size_t)w.ng) != 0;
        }
        HR_CHECK(bad == 0, "pack_q8 [%d, %d]: %d rows differ from the CPU's int8 lm_head", N, K, bad);
        hr_q8mat_free(&q8);
    }
    for (int r = 0; r < N; r++)   /* the rows the device holds */
        for (int k = 0; k < K; k++) {
            float d;
            memcpy(&d, words + w.soff + (size_t)r * w.ng + (size_t)k / 32, 4);
            rows[(size_t)r * K + k] = d * (float)((const int8_t *)(words + (size_t)r * w.kw))[k];
        }
    HrVkBuffer *bw = hostbuf(n_words * 4, words);
    w.buf = *bw;
    g_free(bw);
    float *x = randv((size_t)T * K, 1.0f), *ref = g_new(float, (size_t)T * N);
    HrVkBuffer *bx = hostbuf((size_t)T * K * 4, x), *bo = hostbuf((size_t)T * N * 4, NULL);
    HrVkBuffer *bp = params_buf(0, (uint32_t)T, 0);
    HrVkBuffer *bq = q8_prepare(&w, bx, x, K, T, T > 1);   /* the q8 configs: on int8 activations */
    HrError err = { 0 };
    HrVkDispatch d;
    HrVkGemvArgs a = { .w = { &w }, .prefill = T > 1, .x = bx, .out = bo, .params = bp, .x_stride = (uint32_t)K,
                       .o_stride = (uint32_t)N, .max_tokens = (uint32_t)T, .xq = bq };
    HR_CHECK(hr_vk_make_gemv(kern, &a, &d, &err) == HR_OK, "%s", err.message);
    run(&d, 1);
    for (int t = 0; t < T; t++)   /* in double: the large row's sums cancel */
        for (int r = 0; r < N; r++) {
            double acc = 0.0;
            for (int k = 0; k < K; k++)
                acc += (double)rows[(size_t)r * K + k] * x[(size_t)t * K + k];
            ref[(size_t)t * N + r] = (float)acc;
        }
    char what[64];
    g_snprintf(what, sizeof what, "lm_head-q8 N=%d K=%d T=%d", N, K, T);
    close_enough(what, bo->mapped, ref, (size_t)T * N, MAX(gemv_tol, 3e-5f));   /* seen: 2.8e-6 */
    hr_vk_buffer_free(ctx, &w.buf);
    freebuf(bx);
    freebuf(bq);
    freebuf(bo);
    freebuf(bp);
    g_free(words);
    g_free(f16);
    g_free(rows);
    g_free(x);
    g_free(ref);
}

/* q/k/v in one dispatch (with bias), and gate+up with SiLU*mul. */
static void
test_gemv_fused(int dim, int q_dim, int kv_dim, int hidden, int ng, bool quant, uint32_t ggml, int T, bool prefill)
{
    char what[160];
    TestMat wq, wk, wv, wg, wu;
    TestMat *all[5] = { &wq, &wk, &wv, &wg, &wu };
    const int rows[5] = { q_dim, kv_dim, kv_dim, hidden, hidden };
    for (int i = 0; i < 5; i++) {
        if (ggml)
            mat_make_ggml(all[i], rows[i], dim, ggml);
        else
            mat_make(all[i], rows[i], dim, ng, quant);
    }
    const int qkv = q_dim + 2 * kv_dim;
    float *x = randv((size_t)T * dim, 1.0f), *bias = randv(qkv, 0.5f);
    HrVkBuffer *bx = hostbuf((size_t)T * dim * 4, x), *bo = hostbuf((size_t)T * qkv * 4, NULL);
    HrVkBuffer *bb = hostbuf((size_t)qkv * 4, bias), *bp = params_buf(7, (uint32_t)T, 0);
    HrVkBuffer *bh = hostbuf((size_t)T * hidden * 4, NULL);
    HrError err = { 0 };
    HrVkDispatch d[2];
    HrVkBuffer *bq = q8_prepare(&wq.w, bx, x, dim, T, prefill);
    HrVkGemvArgs a = { .w = { &wq.w, &wk.w, &wv.w }, .prefill = prefill, .x = bx, .out = bo, .bias = bb,
                       .params = bp, .x_stride = (uint32_t)dim, .o_stride = (uint32_t)qkv,
                       .max_tokens = (uint32_t)T, .xq = bq };
    HR_CHECK(hr_vk_make_gemv(kern, &a, &d[0], &err) == HR_OK, "%s", err.message);
    HrVkGemvArgs g = { .w = { &wg.w, &wu.w }, .gate = true, .prefill = prefill, .x = bx, .out = bh, .params = bp,
                       .x_stride = (uint32_t)dim, .o_stride = (uint32_t)hidden, .max_tokens = (uint32_t)T,
                       .xq = bq };
    HR_CHECK(hr_vk_make_gemv(kern, &g, &d[1], &err) == HR_OK, "%s", err.message);
    run(d, 2);

    float *q = g_new(float, (size_t)T * q_dim), *k = g_new(float, (size_t)T * kv_dim), *v = g_new(float, (size_t)T * kv_dim);
    mat_ref(&wq, q, bias, x, T, NULL);
    mat_ref(&wk, k, bias + q_dim, x, T, NULL);
    mat_ref(&wv, v, bias + q_dim + kv_dim, x, T, NULL);
    float *ref = g_new(float, (size_t)T * qkv);
    for (int t = 0; t < T; t++) {
        memcpy(ref + (size_t)t * qkv, q + (size_t)t * q_dim, (size_t)q_dim * 4);
        memcpy(ref + (size_t)t * qkv + q_dim, k + (size_t)t * kv_dim, (size_t)kv_dim * 4);
        memcpy(ref + (size_t)t * qkv + q_dim + kv_dim, v + (size_t)t * kv_dim, (size_t)kv_dim * 4);
    }
    g_snprintf(what, sizeof what, "qkv%s%s %s dim=%d q=%d kv=%d T=%d %s", wq.ggml ? "-" : "", wq.ggml ? mat_label(&wq) : "", mat_label(&wq), dim, q_dim, kv_dim, T,
               prefill ? "prefill" : "decode");
    close_enough(what, bo->mapped, ref, (size_t)T * qkv, gemv_tol);

    float *gr = g_new(float, (size_t)T * hidden), *ur = g_new(float, (size_t)T * hidden);
    mat_ref(&wg, gr, NULL, x, T, NULL);
    mat_ref(&wu, ur, NULL, x, T, NULL);
    for (size_t i = 0; i < (size_t)T * hidden; i++)
        gr[i] = gr[i] / (1.0f + expf(-gr[i])) * ur[i];
    g_snprintf(what, sizeof what, "gate*up%s%s %s dim=%d hidden=%d T=%d %s", wg.ggml ? "-" : "", wg.ggml ? mat_label(&wg) : "", mat_label(&wg), dim, hidden, T,
               prefill ? "prefill" : "decode");
    close_enough(what, bh->mapped, gr, (size_t)T * hidden, gemv_tol);

    TestMat *ms[5] = { &wq, &wk, &wv, &wg, &wu };
    for (int i = 0; i < 5; i++)
        mat_free(ms[i]);
    freebuf(bx);
    freebuf(bq);
    freebuf(bo);
    freebuf(bb);
    freebuf(bp);
    freebuf(bh);
    g_free(x);
    g_free(bias);
    g_free(q);
    g_free(k);
    g_free(v);
    g_free(ref);
    g_free(gr);
    g_free(ur);
}

/* lm_head: only tokens from params.logit_first, written from output row 0
 * (token logit_first + i to row i), output rows at an offset. */
static void
test_gemv_logit_rows(void)
{
    const int N = 512, K = 64, T = 6, first = 4;
    TestMat m;
    mat_make(&m, N, K, 1, false);
    float *x = randv((size_t)T * K, 1.0f);
    HrVkBuffer *bx = hostbuf((size_t)T * K * 4, x), *bo = hostbuf((size_t)T * N * 4, NULL);
    HrVkBuffer *bp = params_buf(3, T, first);
    HrError err = { 0 };
    HrVkDispatch d;
    HrVkGemvArgs a = { .w = { &m.w }, .logit_rows = true, .prefill = true, .x = bx, .out = bo, .params = bp,
                       .x_stride = K, .o_stride = N, .max_tokens = T };
    HR_CHECK(hr_vk_make_gemv(kern, &a, &d, &err) == HR_OK, "%s", err.message);
    run(&d, 1);
    float *ref = g_new(float, (size_t)T * N);
    mat_ref(&m, ref, NULL, x, T, NULL);
    const float *o = bo->mapped;
    bool untouched = true;
    for (size_t i = (size_t)(T - first) * N; i < (size_t)T * N; i++)
        untouched = untouched && o[i] == 0.0f;
    HR_CHECK(untouched, "[%s] lm rows past the %d requested tokens were written", cfg_label, T - first);
    close_enough("lm_head-rows from logit_first", o, ref + (size_t)first * N, (size_t)(T - first) * N, gemv_tol);
    freebuf(bx);
    freebuf(bo);
    freebuf(bp);
    g_free(x);
    g_free(ref);
    mat_free(&m);
}

/* ---- RMSNorm, embed ----------------------------------------------------------------- */

static void
test_rmsnorm(int n, int T)
{
    float *x = randv((size_t)T * n, 2.0f), *w = randv(n, 1.0f), *ref = g_new(float, (size_t)T * n);
    HrVkBuffer *bx = hostbuf((size_t)T * n * 4, x), *bo = hostbuf((size_t)T * n * 4, NULL);
    HrVkBuffer *bw = hostbuf((size_t)n * 4, w), *bp = params_buf(0, (uint32_t)T, 0);
    HrError err = { 0 };
    HrVkDispatch d;
    HR_CHECK(hr_vk_make_rmsnorm(kern, bx, bo, bw, bp, (uint32_t)n, 1e-5f, false, false, (uint32_t)T, &d, &err) == HR_OK,
             "%s", err.message);
    run(&d, 1);
    for (int t = 0; t < T; t++)
        hr_rmsnorm(ref + (size_t)t * n, x + (size_t)t * n, w, n, 1e-5f);
    char what[64];
    g_snprintf(what, sizeof what, "rmsnorm n=%d T=%d", n, T);
    close_enough(what, bo->mapped, ref, (size_t)T * n, 1e-5f);
    if (T == 1 && n % 32 == 0 && hr_vk_kernels_config(kern)->gemv_q8) {
        /* the same row, and the int8 row for the next linear */
        HrVkBuffer *bo8 = hostbuf((size_t)n * 4, NULL), *bq = hostbuf(hr_vk_q8_words((uint32_t)n) * 4, NULL);
        HR_CHECK(hr_vk_make_rmsnorm_q8(kern, bx, bo8, bw, bp, (uint32_t)n, 1e-5f, bq, &d, &err) == HR_OK, "%s",
                 err.message);
        run(&d, 1);
        g_strlcat(what, " q8", sizeof what);
        close_enough(what, bo8->mapped, ref, (size_t)n, 1e-5f);
        float *row = g_memdup2(bo8->mapped, (size_t)n * 4);
        q8_check(what, bq->mapped, row, n);
        g_free(row);
        freebuf(bo8);
        freebuf(bq);
    }
    freebuf(bx);
    freebuf(bo);
    freebuf(bw);
    freebuf(bp);
    g_free(x);
    g_free(w);
    g_free(ref);
}

static void
test_embed(int vocab, int dim)
{
    TestMat m;
    mat_make(&m, vocab, dim, 1, false);
    const int T = 5;
    int32_t tok[5] = { 0, vocab - 1, 3 % vocab, 1, vocab / 2 };
    HrVkBuffer *bt = hostbuf(sizeof tok, tok), *bx = hostbuf((size_t)T * dim * 4, NULL);
    HrVkBuffer *bp = params_buf(0, T, 0);
    HrError err = { 0 };
    HrVkDispatch d;
    HR_CHECK(hr_vk_make_embed(kern, bt, &m.w, 0, 0.0f, bx, bp, T, &d, &err) == HR_OK, "%s", err.message);
    run(&d, 1);
    const float *x = bx->mapped;
    int bad = 0;
    for (int t = 0; t < T; t++)
        for (int i = 0; i < dim; i++)
            bad += x[(size_t)t * dim + i] != hr_f16_to_f32(m.f16[(size_t)tok[t] * dim + i]);
    HR_CHECK(bad == 0, "[%s] embed vocab=%d dim=%d: %d wrong values", cfg_label, vocab, dim, bad);
    freebuf(bt);
    freebuf(bx);
    freebuf(bp);
    mat_free(&m);
}

/* The gather from a GGUF table: the values hr_ggml_dequant() gives. */
static void
test_embed_ggml(uint32_t type, int vocab, int dim)
{
    TestMat m;
    mat_make_ggml(&m, vocab, dim, type);
    const int T = 4;
    int32_t tok[4] = { vocab - 1, 0, vocab / 3, 1 };
    HrVkBuffer *bt = hostbuf(sizeof tok, tok), *bx = hostbuf((size_t)T * dim * 4, NULL);
    HrVkBuffer *bp = params_buf(0, T, 0);
    HrError err = { 0 };
    HrVkDispatch d;
    HR_CHECK(hr_vk_make_embed(kern, bt, &m.w, 0, 0.0f, bx, bp, T, &d, &err) == HR_OK, "%s", err.message);
    run(&d, 1);
    const float *x = bx->mapped;
    int bad = 0, inexact = 0;
    for (int t = 0; t < T; t++) {
        for (int i = 0; i < dim; i++) {
            float got = x[(size_t)t * dim + i], want = m.f32[(size_t)tok[t] * dim + i];
            inexact += got != want;
            bad += !(fabsf(got - want) <= 1e-6f * (1.0f + fabsf(want)));
        }
    }
    const bool exact = type != HR_GGML_Q6_K && type != HR_GGML_Q5_1 && type != HR_GGML_Q5_K;
    HR_CHECK(bad == 0 && (!exact || inexact == 0), "[%s] embed %s vocab=%d dim=%d: %d wrong, %d not exact",
             cfg_label, hr_ggml_type_name(type), vocab, dim, bad, inexact);
    freebuf(bt);
    freebuf(bx);
    freebuf(bp);
    mat_free(&m);
}

/* ---- RoPE + KV write, attention --------------------------------------------------------- */

static void
rope_ref(float *v, int n_heads, int hd, int pos, const float *inv_freq)
{
    int half = hd / 2;
    for (int i = 0; i < half; i++) {
        float angle = (float)pos * inv_freq[i];
        float cs = cosf(angle), sn = sinf(angle);
        for (int h = 0; h < n_heads; h++) {
            float *x = v + (size_t)h * hd;
            float x0 = x[i], x1 = x[i + half];
            x[i] = x0 * cs - x1 * sn;
            x[i + half] = x1 * cs + x0 * sn;
        }
    }
}

/* RoPE+KV write for T tokens at pos, then attention of those tokens over
 * everything cached (the cache before pos is filled with random values). */
static void
test_rope_attn(int n_heads, int n_kv, int hd, int context, int pos, int T, int window)
{
    char what[160];
    g_snprintf(what, sizeof what, "heads %d/%d hd=%d ctx=%d pos=%d T=%d window=%d", n_heads, n_kv, hd, context, pos,
               T, window);
    HrModelConfig cfg = { .head_dim = hd, .rope_theta = 10000.0f, .rope_scaling = HR_ROPE_DEFAULT };
    const int half = hd / 2, q_dim = n_heads * hd, kv_dim = n_kv * hd, qkv = q_dim + 2 * kv_dim;
    float *inv = g_new(float, half);
    hr_rope_inv_freq(&cfg, inv);
    float *tab = g_new(float, (size_t)context * half * 2);
    for (int p = 0; p < context; p++)
        for (int i = 0; i < half; i++) {
            tab[((size_t)p * half + i) * 2] = cosf((float)p * inv[i]);
            tab[((size_t)p * half + i) * 2 + 1] = sinf((float)p * inv[i]);
        }
    float *x = randv((size_t)T * qkv, 1.0f);
    uint16_t *kc = g_new(uint16_t, (size_t)context * kv_dim), *vc = g_new(uint16_t, (size_t)context * kv_dim);
    for (size_t i = 0; i < (size_t)context * kv_dim; i++) {
        kc[i] = hr_f32_to_f16((float)g_rand_double_range(rng, -1, 1));
        vc[i] = hr_f32_to_f16((float)g_rand_double_range(rng, -1, 1));
    }
    HrVkBuffer *bx = hostbuf((size_t)T * qkv * 4, x), *bq = hostbuf((size_t)T * q_dim * 4, NULL);
    HrVkBuffer *bk = hostbuf((size_t)context * kv_dim * 2, kc), *bv = hostbuf((size_t)context * kv_dim * 2, vc);
    HrVkBuffer *bt = hostbuf((size_t)context * half * 8, tab), *bp = params_buf((uint32_t)pos, (uint32_t)T, 0);
    uint32_t splits = hr_vk_attn_splits(kern, (uint32_t)context);
    HrVkBuffer *bpart = hostbuf((size_t)T * n_heads * splits * (hd + 2) * 4, NULL);
    HrVkBuffer *bo = hostbuf((size_t)T * q_dim * 4, NULL);
    HrError err = { 0 };
    HrVkDispatch d[3];
    HR_CHECK(hr_vk_make_rope_kv(kern, bx, bq, bk, bv, bt, bp, n_heads, n_kv, hd, hd, 0, 0, 0, T, &d[0], &err) == HR_OK, "%s",
             err.message);
    HR_CHECK(hr_vk_make_attn(kern, bq, bk, bv, bpart, bp, n_heads, n_kv, hd, context, window, 0, 0.0f, 0.0f, T > 1, T, &d[1],
                             &err) == HR_OK, "%s", err.message);
    HR_CHECK(hr_vk_make_attn_combine(kern, bpart, bo, bp, n_heads, hd, context, T, &d[2], &err) == HR_OK, "%s",
             err.message);
    run(d, 3);
    if (T == 1 && hd % 32 == 0 && hr_vk_kernels_config(kern)->gemv_q8) {
        /* the combine again, writing the int8 row for o_proj too: the same output, and its int8 row */
        HrVkBuffer *bo8 = hostbuf((size_t)q_dim * 4, NULL), *b8 = hostbuf(hr_vk_q8_words((uint32_t)q_dim) * 4, NULL);
        HrVkDispatch dc;
        HR_CHECK(hr_vk_make_attn_combine_q8(kern, bpart, bo8, bp, n_heads, hd, context, b8, &dc, &err) == HR_OK, "%s",
                 err.message);
        run(&dc, 1);
        HR_CHECK(memcmp(bo8->mapped, bo->mapped, (size_t)q_dim * 4) == 0, "[%s] %s: combine q8 output differs",
                 cfg_label, what);
        float *row = g_memdup2(bo8->mapped, (size_t)q_dim * 4);
        q8_check(what, b8->mapped, row, q_dim);
        g_free(row);
        freebuf(bo8);
        freebuf(b8);
        n_q8++;
    }

    /* CPU: rope q and k, write the FP16 cache, attend as cpu-backend.c does. */
    float *q = g_new(float, (size_t)T * q_dim);
    for (int t = 0; t < T; t++) {
        float *row = x + (size_t)t * qkv;
        rope_ref(row, n_heads, hd, pos + t, inv);
        rope_ref(row + q_dim, n_kv, hd, pos + t, inv);
        memcpy(q + (size_t)t * q_dim, row, (size_t)q_dim * 4);
        for (int i = 0; i < kv_dim; i++) {
            kc[(size_t)(pos + t) * kv_dim + i] = hr_f32_to_f16(row[q_dim + i]);
            vc[(size_t)(pos + t) * kv_dim + i] = hr_f32_to_f16(row[q_dim + kv_dim + i]);
        }
    }
    close_enough("rope-q", bq->mapped, q, (size_t)T * q_dim, 1e-5f);
    int bad_k = 0, bad_v = 0;
    const uint16_t *gk = bk->mapped, *gv = bv->mapped;
    for (size_t i = 0; i < (size_t)context * kv_dim; i++) {
        /* FP16 rounding of a value that differs in the last FP32 bit may differ by one ulp. */
        bad_k += fabsf(hr_f16_to_f32(gk[i]) - hr_f16_to_f32(kc[i])) > 1e-3f * (1.0f + fabsf(hr_f16_to_f32(kc[i])));
        bad_v += gv[i] != vc[i];
    }
    HR_CHECK(bad_k == 0 && bad_v == 0, "[%s] %s: KV cache: %d k, %d v values differ", cfg_label, what, bad_k, bad_v);

    float *ref = g_new(float, (size_t)T * q_dim), *scores = g_new(float, context);
    const float scale = 1.0f / sqrtf((float)hd);
    for (int t = 0; t < T; t++) {
        int p = pos + t, start = 0;
        if (window > 0 && p - window + 1 > 0)
            start = p - window + 1;
        for (int h = 0; h < n_heads; h++) {
            const float *qh = q + (size_t)t * q_dim + (size_t)h * hd;
            int kvh = h / (n_heads / n_kv);
            float mx = -INFINITY, sum = 0.0f;
            for (int j = start; j <= p; j++) {
                float s = 0.0f;
                for (int i = 0; i < hd; i++)
                    s += qh[i] * hr_f16_to_f32(gk[(size_t)j * kv_dim + (size_t)kvh * hd + i]);
                scores[j] = s * scale;
                mx = fmaxf(mx, scores[j]);
            }
            for (int j = start; j <= p; j++) {
                scores[j] = expf(scores[j] - mx);
                sum += scores[j];
            }
            float *o = ref + (size_t)t * q_dim + (size_t)h * hd;
            memset(o, 0, (size_t)hd * 4);
            for (int j = start; j <= p; j++)
                for (int i = 0; i < hd; i++)
                    o[i] += scores[j] / sum * hr_f16_to_f32(gv[(size_t)j * kv_dim + (size_t)kvh * hd + i]);
        }
    }
    g_autofree char *label = g_strconcat("attention ", what, NULL);
    close_enough(label, bo->mapped, ref, (size_t)T * q_dim, 1e-5f);

    HrVkBuffer *bs[] = { bx, bq, bk, bv, bt, bp, bpart, bo };
    for (size_t i = 0; i < G_N_ELEMENTS(bs); i++)
        freebuf(bs[i]);
    g_free(inv);
    g_free(tab);
    g_free(x);
    g_free(kc);
    g_free(vc);
    g_free(q);
    g_free(ref);
    g_free(scores);
}

/* value descending, lower index first among equals */
static int
cmp_logit_desc(const void *a, const void *b, void *user)
{
    const float *v = user;
    const int x = *(const int *)a, y = *(const int *)b;
    if (v[x] != v[y])
        return v[x] > v[y] ? -1 : 1;
    return x < y ? -1 : x > y;
}

static void
test_argmax(int n, bool ties)
{
    float *v = randv(n, 10.0f);
    int want = g_rand_int_range(rng, 0, n);
    v[want] = 20.0f;
    if (ties && want + 7 < n)
        v[want + 7] = 20.0f;   /* the lower index wins */
    HrVkBuffer *bv = hostbuf((size_t)(n + 3) * 4, NULL), *bo = hostbuf(16, NULL);
    memcpy((float *)bv->mapped + 3, v, (size_t)n * 4);
    HrError err = { 0 };
    HrVkDispatch d;
    HR_CHECK(hr_vk_make_argmax(kern, bv, 3, (uint32_t)n, bo, &d, &err) == HR_OK, "%s", err.message);
    run(&d, 1);
    uint32_t got = ((uint32_t *)bo->mapped)[0];
    HR_CHECK(got == (uint32_t)want, "[%s] argmax n=%d: %u, expected %d", cfg_label, n, got, want);
    freebuf(bv);
    freebuf(bo);
    g_free(v);
}

/* pattern 0: random; 1: eight levels (ties everywhere); 2: random with a NaN;
 * 3: random with an Inf */
static void
test_topk(int n, int pattern, float penalty, float inv_t)
{
    float *v = randv((size_t)n, 8.0f);
    if (pattern == 1) {
        for (int i = 0; i < n; i++)
            v[i] = (float)g_rand_int_range(rng, -4, 4);
    }
    if (pattern >= 2)
        v[g_rand_int_range(rng, 0, n)] = pattern == 2 ? NAN : INFINITY;
    /* distinct seen ids */
    int n_seen = MIN(n, 300);
    uint32_t *seen = g_new(uint32_t, (size_t)MAX(n_seen, 1));
    uint8_t *is_seen = g_new0(uint8_t, (size_t)n);
    for (int i = 0; i < n_seen;) {
        uint32_t t = (uint32_t)g_rand_int_range(rng, 0, n);
        if (!is_seen[t]) {
            is_seen[t] = 1;
            seen[i++] = t;
        }
    }
    HrVkStepParams prm = { 0, 1, 0, 1, 1, (uint32_t)n_seen, penalty, inv_t };
    const uint32_t g1 = hr_vk_topk_groups((uint32_t)n), K = HR_VK_TOPK_K;
    HrVkBuffer *bl = hostbuf((size_t)n * 4, v), *bs = hostbuf((size_t)MAX(n_seen, 1) * 4, seen),
               *bp = hostbuf(sizeof prm, &prm), *bst = hostbuf(g1 * 12, NULL),
               *bres = hostbuf(HR_VK_TOPK_RES_WORDS * 4, NULL);
    HrVkBuffer *cv[2] = { hostbuf(g1 * K * 4, NULL), hostbuf(g1 * K * 4, NULL) };
    HrVkBuffer *ci[2] = { hostbuf(g1 * K * 4, NULL), hostbuf(g1 * K * 4, NULL) };
    HrVkDispatch d[8];
    uint32_t nd = 0;
    HrError err = { 0 };
    HR_CHECK(hr_vk_make_penalize(kern, bl, bs, bp, (uint32_t)n, &d[nd++], &err) == HR_OK, "%s", err.message);
    uint32_t m = (uint32_t)n;
    for (int pass = 0; nd < G_N_ELEMENTS(d); pass++) {
        const bool last = hr_vk_topk_groups(m) == 1;
        HR_CHECK(hr_vk_make_topk(kern, pass == 0 ? bl : cv[(pass + 1) % 2], ci[(pass + 1) % 2], cv[pass % 2],
                                 ci[pass % 2], bst, bp, bres, m, pass == 0, last, g1, &d[nd++], &err) == HR_OK, "%s",
                 err.message);
        if (last)
            break;
        m = hr_vk_topk_groups(m) * K;
    }
    run(d, nd);

    /* the host's answer: penalise, then a full sort */
    bool bad = false;
    for (int i = 0; i < n_seen; i++) {
        float x = v[seen[i]];
        v[seen[i]] = x > 0.0f ? x / penalty : x * penalty;
    }
    int *idx = g_new(int, (size_t)n);
    for (int i = 0; i < n; i++) {
        idx[i] = i;
        if (!isfinite(v[i])) {
            bad = true;
            v[i] = -INFINITY;
        }
    }
    g_qsort_with_data(idx, n, sizeof(int), cmp_logit_desc, v);
    const uint32_t *res = bres->mapped;
    const int nk = MIN(n, (int)K);
    int id_bad = 0, val_bad = 0;
    for (int i = 0; i < nk; i++) {
        float got;
        memcpy(&got, &res[K + (uint32_t)i], 4);
        id_bad += res[i] != (uint32_t)idx[i];
        val_bad += memcmp(&got, &v[idx[i]], 4) != 0;
    }
    HR_CHECK(id_bad == 0 && val_bad == 0, "[%s] topk n=%d pattern %d: %d ids and %d values differ from the sort",
             cfg_label, n, pattern, id_bad, val_bad);
    HR_CHECK((res[2 * K + 2] != 0) == bad, "[%s] topk n=%d pattern %d: not-finite flag %u", cfg_label, n, pattern,
             res[2 * K + 2]);
    if (inv_t > 0.0f && !bad) {
        double want = 0.0;
        const float mx = v[idx[0]];
        for (int i = 0; i < n; i++)
            want += exp(((double)v[i] - mx) * inv_t);
        float got;
        memcpy(&got, &res[2 * K + 1], 4);
        HR_CHECK(fabs(got - want) <= 1e-5 * want, "[%s] topk n=%d pattern %d: sum %.8g, double %.8g", cfg_label, n,
                 pattern, (double)got, want);
    }
    for (int i = 0; i < 2; i++) {
        freebuf(cv[i]);
        freebuf(ci[i]);
    }
    freebuf(bl);
    freebuf(bs);
    freebuf(bp);
    freebuf(bst);
    freebuf(bres);
    g_free(idx);
    g_free(seen);
    g_free(is_seen);
    g_free(v);
}

/* ---- driver ------------------------------------------------------------------------------ */

/* The AWQ search's kernels (quantize/awq-device.c on Vulkan):
 * scale_quant.comp against the CPU's arithmetic (hr_awq_fake_quant_row on
 * t s, divided by s, minus t when delta), FP16-rounded: every value equal
 * or one quantization step apart (a division rounded otherwise on a
 * device, a tie broken otherwise), and on lavapipe all equal; nothing
 * written past a row. sq_diff.comp: each row's sum of squares within 1e-5
 * of a double sum, only rows [row0, row0 + n) written. */
static void
test_scale_quant(int N, int K, int group, int bits, bool delta)
{
    float *t = randv((size_t)N * K, 1.0f), *s = g_new(float, (size_t)K);
    for (int k = 0; k < K; k++)
        s[k] = expf((float)g_rand_double_range(rng, -4.0, 4.0));
    for (int i = 0; i < group; i++)
        t[i] = 0.0f;   /* a group of zeros */
    HrVkWeight w = { .kind = HR_VK_W_F16, .n = (uint32_t)N, .k = (uint32_t)K, .kw = (uint32_t)(K + 7) / 8 * 4 };
    const size_t words = (size_t)N * w.kw;
    uint32_t *init = g_new(uint32_t, words);
    for (size_t i = 0; i < words; i++)
        init[i] = 0x5a5a5a5au;
    HrVkBuffer *tb = hostbuf((size_t)N * K * 4, t), *sb = hostbuf((size_t)K * 4, s), *wb = hostbuf(words * 4, init);
    w.buf = *wb;
    HrVkDispatch d;
    HrError err = { 0 };
    HR_CHECK(hr_vk_make_scale_quant(kern, tb, sb, &w, (uint32_t)group, (uint32_t)bits, delta, &d, &err) == HR_OK,
             "scale_quant: %s", err.message);
    run(&d, 1);
    const uint16_t *got = wb->mapped;
    float *ref = g_new(float, (size_t)K);
    int equal = 0, step = 0, pad = 0;
    for (int n = 0; n < N; n++) {
        for (int k = 0; k < K; k++)
            ref[k] = t[(size_t)n * K + k] * s[k];
        hr_awq_fake_quant_row(ref, K, group, bits, ref);
        for (int k = 0; k < K; k++) {
            float v = ref[k] / s[k];
            if (delta)
                v -= t[(size_t)n * K + k];
            const uint16_t g16 = got[(size_t)n * w.kw * 2 + k];
            if (g16 == hr_f32_to_f16(v)) {
                equal++;
                continue;
            }
            /* one step: the group's scale over s, at most (range + 0) / qmax / s */
            float mn = 0.0f, mx = 0.0f;
            const int g0 = k / group * group;
            for (int i = g0; i < g0 + group; i++) {
                mn = fminf(mn, t[(size_t)n * K + i] * s[i]);
                mx = fmaxf(mx, t[(size_t)n * K + i] * s[i]);
            }
            const float one = (mx - mn) / (float)((1 << bits) - 1) / s[k];
            step += fabsf(hr_f16_to_f32(g16) - v) <= 1.01f * one + 1e-3f * fabsf(v);
        }
        for (int k = K; k < (int)w.kw * 2; k++)
            pad += got[(size_t)n * w.kw * 2 + k] != 0x5a5a;
    }
    const bool lavapipe = strstr(hr_vk_context_caps(ctx)->name, "llvmpipe") != NULL;
    HR_CHECK(equal + step == N * K && pad == 0 && (!lavapipe || equal == N * K),
             "[%s] scale_quant %dx%d g%d %d bits%s: %d of %d equal, %d one step apart, %d written past a row",
             cfg_label, N, K, group, bits, delta ? " delta" : "", equal, N * K, step, pad);
    printf("[%s] scale_quant %dx%d g%d %d bits%s: %d of %d values equal to the CPU's\n", cfg_label, N, K, group, bits,
           delta ? " delta" : "", equal, N * K);
    freebuf(tb);
    freebuf(sb);
    freebuf(wb);
    g_free(init);
    g_free(ref);
    g_free(t);
    g_free(s);
}

static void
test_sq_diff(int width, int rows, int n, int row0)
{
    float *a = randv((size_t)n * width, 2.0f), *t = randv((size_t)rows * width, 2.0f);
    float *init = g_new(float, (size_t)rows);
    for (int r = 0; r < rows; r++)
        init[r] = -1.0f;
    HrVkBuffer *ab = hostbuf((size_t)n * width * 4, a), *tb = hostbuf((size_t)rows * width * 4, t);
    HrVkBuffer *sb = hostbuf((size_t)rows * 4, init);
    HrVkDispatch d;
    HrError err = { 0 };
    HR_CHECK(hr_vk_make_sq_diff(kern, ab, tb, sb, (uint32_t)width, &d, &err) == HR_OK, "sq_diff: %s", err.message);
    hr_vk_set_sq_diff(&d, (uint32_t)n, (uint32_t)row0);
    run(&d, 1);
    const float *got = sb->mapped;
    int bad = 0;
    for (int r = 0; r < rows; r++) {
        if (r < row0 || r >= row0 + n) {
            bad += got[r] != -1.0f;
            continue;
        }
        double sum = 0.0;
        for (int k = 0; k < width; k++) {
            const double e = (double)a[(size_t)(r - row0) * width + k] - t[(size_t)r * width + k];
            sum += e * e;
        }
        bad += !(fabs(got[r] - sum) <= 1e-5 * sum);
    }
    HR_CHECK(bad == 0, "[%s] sq_diff width %d, rows %d+%d of %d: %d rows wrong", cfg_label, width, row0, n, rows, bad);
    freebuf(ab);
    freebuf(tb);
    freebuf(sb);
    g_free(a);
    g_free(t);
    g_free(init);
}

/* clip_gram.comp + clip_search.comp against hr_awq_clip_search (the CPU
 * reference, double sums): every limit one of the step limits m0 (1 - s /
 * 20), and (FP32 sums may break a near tie the other way) at least 95 % the
 * reference's; rows carry an outlier so that clipping pays. */
static void
test_clip_search(int N, int K, int g, int nt)
{
    float *w = randv((size_t)N * K, 1.0f), *x = randv((size_t)nt * K, 1.0f);
    for (int n = 0; n < N; n++)
        w[(size_t)n * K + (size_t)(n * 7 % K)] *= 6.0f;
    const int ng = K / g;
    HrVkBuffer *wb = hostbuf((size_t)N * K * 4, w), *xb = hostbuf((size_t)nt * K * 4, x);
    HrVkBuffer *cb = hostbuf((size_t)K * g * 4, NULL), *lb = hostbuf((size_t)N * ng * 4, NULL);
    HrVkDispatch d[2];
    HrError err = { 0 };
    HR_CHECK(hr_vk_make_clip(kern, xb, cb, wb, lb, (uint32_t)K, (uint32_t)g, (uint32_t)nt, (uint32_t)K, (uint32_t)N, 4,
                             10, 20, d, &err) == HR_OK, "clip: %s", err.message);
    run(d, 2);
    float *ref = g_new(float, (size_t)N * ng);
    HrThreadPool *pool = hr_pool_new(1);
    hr_awq_clip_search(pool, w, N, K, x, (size_t)K, nt, g, 4, 10, 20, ref);
    hr_pool_free(pool);
    const float *got = lb->mapped;
    int same = 0, off_grid = 0, clipped = 0;
    for (int n = 0; n < N; n++) {
        for (int gi = 0; gi < ng; gi++) {
            float m0 = 0.0f;
            for (int i = 0; i < g; i++)
                m0 = fmaxf(m0, fabsf(w[(size_t)n * K + (size_t)gi * g + i]));
            bool on = false;
            for (int st = 0; st < 10; st++)
                on |= got[(size_t)n * ng + gi] == m0 * (1.0f - (float)st / 20.0f);
            off_grid += !on;
            same += got[(size_t)n * ng + gi] == ref[(size_t)n * ng + gi];
            clipped += ref[(size_t)n * ng + gi] < m0;
        }
    }
    HR_CHECK(off_grid == 0 && same * 100 >= N * ng * 95 && clipped > 0,
             "[%s] clip search %dx%d g%d: %d limits off the steps, %d of %d the reference's, %d clipped", cfg_label, N,
             K, g, off_grid, same, N * ng, clipped);
    printf("[%s] clip search %dx%d g%d over %d tokens: %d of %d limits the reference's (%d clipped)\n", cfg_label, N, K,
           g, nt, same, N * ng, clipped);
    freebuf(wb);
    freebuf(xb);
    freebuf(cb);
    freebuf(lb);
    g_free(ref);
    g_free(w);
    g_free(x);
}

/* Every GGUF block type the kernels read. */
static const uint32_t ggml_types[] = { HR_GGML_Q4_0, HR_GGML_Q4_1, HR_GGML_Q4_K, HR_GGML_Q8_0,
                                       HR_GGML_Q5_0, HR_GGML_Q5_1, HR_GGML_Q5_K, HR_GGML_Q6_K };

static void
run_search_kernels(void)
{
    test_clip_search(10, 256, 64, 40);
    test_clip_search(3, 96, 32, 17);
    test_clip_search(2, 512, 256, 8);
    test_scale_quant(5, 256, 32, 4, false);
    test_scale_quant(3, 384, 128, 4, true);
    test_scale_quant(4, 176, 16, 3, false);   /* groups of 16, 3 bits */
    test_scale_quant(2, 100, 10, 4, true);    /* a row of 100 in a stride of 104 */
    test_sq_diff(64, 40, 16, 16);
    test_sq_diff(4096, 5, 3, 2);
    test_sq_diff(172, 3, 1, 0);
}

static void
run_linears(void)
{
    /* stories260K shapes: dim 64, q 64, kv 32, hidden 172 (FP16: not a multiple of 8), vocab 512 */
    int T_list[4] = { 1, 5, 13, 40 };
    for (int ti = 0; ti < 4; ti++) {
        int T = T_list[ti];
        for (int pre = 0; pre < 2; pre++) {
            if (!pre && T > 1 && T != 5)
                continue;
            test_gemv_one(64, 64, 2, true, 0, T, pre);        /* g = 32 */
            test_gemv_one(64, 172, 1, true, 0, T, pre);       /* per channel, K % 8 != 0 */
            test_gemv_one(40, 200, 5, true, 0, T, pre);       /* g = 40 */
            test_gemv_one(172, 64, 1, false, 0, T, pre);
            test_gemv_one(64, 172, 1, false, 0, T, pre);
            test_gemv_one(37, 29, 1, false, 0, T, pre);       /* odd everything */
            test_gemv_fused(64, 64, 32, 176, 2, true, 0, T, pre);
            test_gemv_fused(64, 64, 32, 172, 1, false, 0, T, pre);
        }
    }
    test_gemv_one(256, 1024, 8, true, 0, 1, false);   /* g = 128, more units than threads */
    /* prefill across two of the GPU tile's 64 tokens and rows of 128 */
    test_gemv_one(200, 256, 2, true, 0, 70, true);
    test_gemv_one(172, 64, 1, false, 0, 70, true);
    test_gemv_fused(64, 64, 32, 176, 2, true, 0, 70, true);
    /* GGUF blocks: every type, decode and prefill (T = 5 below one GEMM
     * tile, 40 across tiles), rows not a multiple of the workgroup's or
     * tile's, 1 to 16 groups per row (K = 32 .. 512) */
    for (size_t i = 0; i < G_N_ELEMENTS(ggml_types); i++) {
        const uint32_t ty = ggml_types[i];
        int block = 0;
        size_t bb = 0;
        hr_ggml_type_block(ty, &block, &bb);
        const int k_small = block == 256 ? 256 : 96, k_big = 512;
        test_gemv_one(37, k_small, 0, false, ty, 1, false);
        test_gemv_one(70, k_big, 0, false, ty, 1, false);
        test_gemv_one(37, k_small, 0, false, ty, 5, true);
        test_gemv_one(70, k_big, 0, false, ty, 40, true);
        if (block == 32) {
            test_gemv_one(33, 32, 0, false, ty, 1, false);   /* one group per row */
            test_gemv_one(33, 32, 0, false, ty, 13, true);
        }
        test_gemv_fused(k_small, k_small, 64, 72, 0, false, ty, 1, false);
        test_gemv_fused(k_small, k_small, 64, 72, 0, false, ty, 13, true);
        test_embed_ggml(ty, 50, k_small);
    }
    {   /* a type the kernels do not take is refused by name */
        HrVkWeight w;
        size_t n_words = 0;
        uint8_t blk[84] = { 0 };
        HrError err = { 0 };
        uint32_t *words = hr_vk_pack_ggml(blk, HR_GGML_Q2_K, 1, 256, &w, &n_words, &err);
        HR_CHECK(!words && strstr(err.message, "Q2_K"), "pack_ggml(Q2_K): %s", words ? "packed" : err.message);
        g_free(words);
        hr_error_clear(&err);
    }
    test_gemv_one(512, 64, 1, false, 0, 3, true);     /* lm_head */
    test_gemv_logit_rows();
    test_pack_q8(70, 256, 1);   /* the lm_head as int8 */
    test_pack_q8(70, 256, 13);
}

static void
run_others(void)
{
    test_rmsnorm(64, 3);
    test_rmsnorm(172, 1);
    test_rmsnorm(1000, 2);
    test_embed(512, 64);
    test_embed(33, 29);
    test_rope_attn(8, 4, 8, 64, 0, 1, 0);      /* first token */
    test_rope_attn(8, 4, 8, 64, 10, 1, 0);     /* stories decode */
    test_rope_attn(8, 4, 8, 64, 3, 9, 0);      /* prefill chunk after 3 cached */
    test_rope_attn(4, 1, 64, 700, 650, 1, 0);  /* several flash-decoding splits */
    test_rope_attn(4, 2, 64, 700, 500, 6, 0);
    test_rope_attn(4, 4, 16, 600, 560, 3, 300);  /* sliding window */
    test_rope_attn(4, 2, 16, 600, 250, 11, 0);   /* a query group straddling a split boundary */
    test_rope_attn(4, 2, 16, 600, 250, 13, 7);   /* ... with a short window: empty splits per query */
    /* prefill tiles: a KV group of 3 heads (5 tokens a 16-row tile), no GQA
     * across several key tiles, 16 and 32 heads a group (the latter through
     * attn.comp: more than a tile's rows), head_dim not a multiple of 32 */
    test_rope_attn(9, 3, 64, 700, 300, 40, 0);
    test_rope_attn(4, 4, 48, 400, 100, 37, 0);
    test_rope_attn(16, 1, 8, 300, 100, 5, 0);
    test_rope_attn(32, 1, 8, 300, 100, 5, 0);
    test_rope_attn(8, 2, 40, 600, 200, 21, 50);   /* a window inside the block's keys */
    test_argmax(512, false);
    test_argmax(50001, true);
    test_argmax(7, false);
    const int topk_n[] = { 1, 5, 64, 100, 1023, 1024, 1025, 4099, 49152, 128256, 151936 };
    for (size_t i = 0; i < G_N_ELEMENTS(topk_n); i++) {
        for (int pattern = 0; pattern < 4; pattern++)
            test_topk(topk_n[i], pattern, pattern == 1 ? 1.0f : 1.3f, pattern == 3 ? 0.0f : 1.0f / 0.7f);
    }
}

/* The prefill linears on matrix units (the coop configs, whose emulation
 * is slow on lavapipe): every storage kind and GGUF type once, tiles crossed
 * in rows and tokens, the odd shapes, the fused forms and the lm_head rows. */
static void
run_coop_linears(void)
{
    test_gemv_one(200, 256, 2, true, 0, 70, true);    /* g = 128, two row tiles and two token tiles */
    test_gemv_one(64, 172, 1, true, 0, 13, true);     /* per channel, K % 8 != 0 */
    test_gemv_one(40, 200, 5, true, 0, 5, true);      /* g = 40 */
    test_gemv_one(172, 64, 1, false, 0, 70, true);
    test_gemv_one(37, 29, 1, false, 0, 13, true);     /* odd everything */
    test_gemv_fused(64, 64, 32, 176, 2, true, 0, 70, true);
    test_gemv_fused(64, 64, 32, 172, 1, false, 0, 13, true);
    for (size_t i = 0; i < G_N_ELEMENTS(ggml_types); i++) {
        test_gemv_one(70, 512, 0, false, ggml_types[i], 40, true);
        test_gemv_fused(256, 256, 64, 72, 0, false, ggml_types[i], 13, true);
    }
    test_gemv_one(512, 64, 1, false, 0, 3, true);     /* lm_head */
    test_gemv_logit_rows();
}

/* The decode linears on int8 activations (the q8 configs): 4-bit matrices
 * with groups of 32 and 128 and one a row, more units than threads, rows not
 * a multiple of the workgroup's, the fused forms, every 4-bit GGUF type;
 * and shapes that fall back to the FP32 GEMV (K % 32 != 0, int8 weights). */
static void
run_q8_linears(void)
{
    test_gemv_one(64, 64, 2, true, 0, 1, false);      /* g = 32 */
    test_gemv_one(48, 256, 1, true, 0, 1, false);     /* per channel */
    test_gemv_one(256, 1024, 8, true, 0, 1, false);   /* g = 128 */
    test_gemv_one(40, 200, 5, true, 0, 1, false);     /* g = 40: FP32 */
    test_gemv_fused(64, 64, 32, 176, 2, true, 0, 1, false);
    test_gemv_fused(256, 256, 64, 72, 2, true, 0, 1, false);
    /* the RMSNorm and the attention's combine writing the int8 row too */
    test_rmsnorm(64, 1);
    test_rmsnorm(576, 1);
    test_rope_attn(4, 2, 64, 300, 299, 1, 0);
    test_rope_attn(8, 8, 32, 40, 17, 1, 0);
    test_rope_attn(2, 1, 64, 600, 520, 1, 0);
    for (size_t i = 0; i < G_N_ELEMENTS(ggml_types); i++) {   /* 4-bit and int8 (Q6_K: a scale per 16) */
        const uint32_t ty = ggml_types[i];
        int block = 0;
        size_t bb = 0;
        hr_ggml_type_block(ty, &block, &bb);
        test_gemv_one(37, block == 256 ? 256 : 96, 0, false, ty, 1, false);
        test_gemv_one(70, 512, 0, false, ty, 1, false);
        test_gemv_fused(256, 256, 64, 72, 0, false, ty, 1, false);
    }
    test_pack_q8(70, 256, 1);   /* the int8 lm_head */
}

static void
run_all(void)
{
    if (subset == RUN_COOP_LINEARS) {
        run_coop_linears();
        return;
    }
    if (subset == RUN_Q8_LINEARS) {
        run_q8_linears();
        return;
    }
    run_search_kernels();
    run_linears();
    run_others();
}

int
main(void)
{
    /* The CPU backend is the oracle here: FP32 activations, as the GPU has
     * (its int8-activation decode path is checked in test-matmul). */
    g_setenv("HEARTH_CPU_EXACT", "1", TRUE);
    ctx = hr_test_vulkan_context(true);
    const HrVkCaps *caps = hr_vk_context_caps(ctx);
    printf("  subgroup %u%s, shared %u KiB\n", caps->subgroup_size,
           caps->subgroup_arithmetic ? " arithmetic" : "", caps->max_shared_memory / 1024);
    rng = g_rand_new_with_seed(1234);
    worst = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);

    HrVkKernelConfig dev_cfg, no_sg, gpu_like;
    hr_vk_kernel_config_for(caps, 64, &dev_cfg);
    no_sg = dev_cfg;
    no_sg.subgroup = false;
    no_sg.gemm = false;   /* prefill through the several-token GEMV instead */
    no_sg.attn_bq = 0;    /* and prefill attention through attn.comp's query groups */
    gpu_like = dev_cfg;
    gpu_like.wg = MIN(128u, caps->max_workgroup_invocations);
    gpu_like.gemv_rows = 2;
    gpu_like.gemv_nt = 8;
    gpu_like.attn_split = 128;
    gpu_like.attn_qt = 8;
    gpu_like.gemm_bm = 128;   /* the GPU tile of hr_vk_kernel_config_for */
    gpu_like.gemm_bn = 64;
    gpu_like.gemm_tm = 8;
    gpu_like.gemm_tn = 8;
    gpu_like.attn_bq = 16;    /* prefill attention in tiles (HEARTH_VULKAN_ATTN=tile) */
    if (caps->max_shared_memory < 40 * 1024)
        gpu_like.gemm_bk = 16;   /* gate+up's two 128-row tiles of 32 need 37 KB */
    HrVkKernelConfig fp16 = dev_cfg;
    fp16.fp16_math = true;
    HrVkKernelConfig q8 = dev_cfg, gpu_q8 = gpu_like;       /* 4-bit decode on int8 activations */
    q8.gemv_q8 = gpu_q8.gemv_q8 = caps->integer_dot_product;
    if (!caps->integer_dot_product)
        printf("  no shaderIntegerDotProduct: the q8 GEMV is not run\n");
    HrVkKernelConfig wide = dev_cfg, gpu_wide = gpu_like;   /* 4-bit decode in 32-input units */
    wide.gemv_wide = gpu_wide.gemv_wide = true;
    wide.attn_bq = 16;        /* and attention tiles with one group of 32 threads */
    /* Prefill on matrix units: the tiles emulated (HEARTH_VULKAN_GEMM=coop-emu)
     * in both fragment shapes a device may report, and the real extension
     * where the device has it (HEARTH_VULKAN_GEMM=coop). */
    HrVkKernelConfig coop_emu, coop_emu8, coop_real;
    char *gemm_env = g_strdup(g_getenv("HEARTH_VULKAN_GEMM"));
    g_setenv("HEARTH_VULKAN_GEMM", "coop-emu", TRUE);
    hr_vk_kernel_config_for(caps, 64, &coop_emu);
    g_setenv("HEARTH_VULKAN_GEMM", "coop", TRUE);
    hr_vk_kernel_config_for(caps, 64, &coop_real);
    if (gemm_env)
        g_setenv("HEARTH_VULKAN_GEMM", gemm_env, TRUE);
    else
        g_unsetenv("HEARTH_VULKAN_GEMM");
    g_free(gemm_env);
    coop_emu8 = coop_emu;
    coop_emu8.coop_fn = 8;
    coop_emu8.coop_prefetch = false;   /* each slice loaded just before its use */
    HR_CHECK(coop_emu.gemm_coop == 2 || !caps->shader_float16, "coop-emu not configured on a device with shaderFloat16");
    if (coop_real.gemm_coop != 1)
        printf("  no VK_NV_cooperative_matrix FP16 fragments with subgroups of 32: the real matrix-unit GEMM is not run\n");
    struct { const char *label; HrVkKernelConfig *cfg; int subset; } cfgs[] = {
        { "device", &dev_cfg, RUN_ALL }, { "no-subgroup", &no_sg, RUN_ALL }, { "gpu-like", &gpu_like, RUN_ALL },
        { "fp16-math", &fp16, RUN_ALL }, { "wide", &wide, RUN_ALL }, { "gpu-like-wide", &gpu_wide, RUN_ALL },
        { "coop-emu", &coop_emu, RUN_COOP_LINEARS }, { "coop-emu-16x8", &coop_emu8, RUN_COOP_LINEARS },
        { "coop", &coop_real, RUN_COOP_LINEARS },
        { "q8", &q8, RUN_Q8_LINEARS }, { "gpu-like-q8", &gpu_q8, RUN_Q8_LINEARS },
    };
    for (size_t i = 0; i < G_N_ELEMENTS(cfgs); i++) {
        if (i == 1 && !dev_cfg.subgroup)
            continue;   /* the device config already is the fallback */
        if (i == 3 && (!caps->shader_float16 || dev_cfg.fp16_math))
            continue;   /* no FP16 arithmetic, or the device config already uses it */
        if ((i == 6 || i == 7) && cfgs[i].cfg->gemm_coop != 2)
            continue;   /* no shaderFloat16 */
        if (i == 7 && !hr_test_full())
            continue;   /* CI time: 16x8 fragments without prefetch with HEARTH_TEST_FULL=1 (30 s under ASan) */
        if (i == 8 && cfgs[i].cfg->gemm_coop != 1)
            continue;   /* no matrix units through VK_NV_cooperative_matrix */
        if (i >= 9 && !cfgs[i].cfg->gemv_q8)
            continue;   /* no int8 dot products */
        subset = cfgs[i].subset;
        /* FP16 products: activations rounded to FP16 (2^-11), products and
         * 8-term sums in FP16; measured ~3e-4, allowed 2e-3. Matrix units:
         * weights and activations rounded to FP16, FP32 sums. */
        gemv_tol = cfgs[i].cfg->gemm_coop ? 4e-3f : cfgs[i].cfg->fp16_math ? 2e-3f : 1e-5f;
        if ((size_t)cfgs[i].cfg->wg * cfgs[i].cfg->gemv_rows * cfgs[i].cfg->gemv_nt * 8 > caps->max_shared_memory)
            continue;
        cfg_label = cfgs[i].label;
        const HrVkKernelConfig *kc = cfgs[i].cfg;
        printf("config %s: wg %u, rows %u, nt %u, split %u x %u queries, attention tiles of %u rows, subgroup %d, fp16 math %d, wide %d, gemm %d (%ux%u "
               "tile, K slice %u, %ux%u per thread)\n", cfg_label, kc->wg, kc->gemv_rows, kc->gemv_nt, kc->attn_split, kc->attn_qt, kc->attn_bq,
               kc->subgroup, kc->fp16_math, kc->gemv_wide, kc->gemm, kc->gemm_bm, kc->gemm_bn, kc->gemm_bk, kc->gemm_tm, kc->gemm_tn);
        if (kc->gemm_coop)
            printf("  matrix units%s: subgroup parts %ux%u, fragments %ux%ux%u, prefetch %d\n",
                   kc->gemm_coop == 2 ? " (emulated)" : "", kc->coop_wm, kc->coop_wn, kc->coop_fm, kc->coop_fn,
                   kc->coop_fk, kc->coop_prefetch);
        HrError err = { 0 };
        if (hr_vk_kernels_new(ctx, cfgs[i].cfg, &kern, &err) != HR_OK) {
            HR_CHECK(false, "kernels: %s", err.message);
            continue;
        }
        n_wide = n_q8 = 0;
        const gint64 t_cfg = g_get_monotonic_time();
        run_all();
        printf("  config %s: %.1f s\n", cfg_label, (double)(g_get_monotonic_time() - t_cfg) / 1e6);
        HR_CHECK((n_wide > 0) == kc->gemv_wide, "[%s] %d GEMVs ran the 32-input-unit kernel", cfg_label, n_wide);
        HR_CHECK((n_q8 > 0) == kc->gemv_q8, "[%s] %d GEMVs ran on int8 activations", cfg_label, n_q8);
        hr_vk_kernels_free(kern);
        kern = NULL;
    }
    g_rand_free(rng);
    GList *keys = g_list_sort(g_hash_table_get_keys(worst), (GCompareFunc)strcmp);
    for (GList *l = keys; l; l = l->next)
        printf("%-10s max |gpu - cpu| / (1 + max |cpu|) = %.2e\n", (const char *)l->data,
               (double)*(float *)g_hash_table_lookup(worst, l->data));
    g_list_free(keys);
    g_hash_table_unref(worst);
    uint32_t msgs = hr_vk_context_validation_messages(ctx);
    hr_vk_context_free(ctx);
    HR_CHECK(msgs == 0, "the validation layer reported %u message(s)", msgs);
    printf("validation messages: %u\n", msgs);
    return hr_test_result();
}
