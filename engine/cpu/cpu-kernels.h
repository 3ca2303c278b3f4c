/* cpu-kernels.h — scalar reference kernels of the CPU backend. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "cpu-threads.h"
#include "model-config.h"
#include "safetensors.h"

/* Memory for weights the decode streams through: 2 MiB-aligned and, for
 * 2 MiB and more, advised as transparent huge pages (fewer TLB misses
 * when a step reads hundreds of MB). Free with g_free(). Aborts on
 * exhaustion as g_malloc does. */
void *hr_weights_alloc(size_t bytes);
/* bytes at a 64-byte boundary, freed with g_free(): glibc serves blocks over
 * its mmap threshold 16 bytes into a page, where every 64-byte vector or
 * tile-row load would straddle two cache lines. hr_try_alloc64 returns NULL
 * when the memory is not there; hr_alloc64 aborts, as g_malloc does. */
void *hr_try_alloc64(size_t bytes);
void *hr_alloc64(size_t bytes);

/* A row-major matrix used in place (e.g. inside an mmap'd file). */
typedef struct {
    const void *data;  /* [rows, cols] of dtype */
    HrDType dtype;     /* F32, F16 or BF16 */
    int rows, cols;
} HrMat;

/* dst[0..n) = row r of m as FP32 (n <= cols). */
void hr_mat_row_f32(const HrMat *m, int r, float *dst, int n);

/* out[t, r] = (residual ? residual[t, r] : 0) + (bias ? bias[r] : 0) + W[r, :] . x[t, :]
 * for t < n, r < W.rows. x is [n, W.cols]; out and residual are [n, W.rows]
 * and may be the same buffer. Rows are split across the pool's threads
 * (pool may be NULL). */
void hr_matmul(HrThreadPool *pool, float *out, const HrMat *w, const float *bias, const float *x, int n,
               const float *residual);

/* The implementations behind hr_matmul() and hr_matmul_q4(). AUTO is what
 * those pick: SCALAR when HEARTH_CPU_SCALAR is set or the CPU lacks
 * AVX2/FMA/F16C; else ROWS_AVX2 for fewer than 6 tokens (decode) and the
 * blocked GEMM for more (prefill chunks, the AWQ search), in AVX-512 where
 * the CPU has it. The others force one path (tests, benchmarks):
 *   SCALAR       portable reference, one weight row against every token;
 *   ROWS_AVX2    one weight row against 4 tokens per load (4-bit: against
 *                one group at a time, zero point folded);
 *   GEMM_AVX2    cache-blocked GEMM (cpu-kernels.c): blocks of weight rows
 *                packed as FP32 (F16/BF16/4-bit converted there, never the
 *                whole matrix), a 4-row x 3-token register block;
 *   GEMM_AVX512  the same with a 4-row x 6-token block of 512-bit registers;
 *   Q8_AVX2      4-bit matrices, fewer than 6 tokens: activations quantized
 *                to int8 per block of 32, integer dot products (VPMADDUBSW);
 *                other matrices and shapes run ROWS_AVX2;
 *   Q8_AVX512    the same with AVX-512 VNNI (VPDPBUSD).
 * For 4-bit matrices with fewer than 6 tokens AUTO picks Q8 (AVX-512 VNNI
 * where the CPU has it) unless HEARTH_CPU_EXACT=1 is set in the
 * environment; that keeps FP32 activations, as the GPU backends do. The
 * int8 rounding changes results by about 1e-3 relative (test-matmul).
 * With n <= 64 (decode, prefill chunks) AUTO allocates nothing on the heap
 * but the scalar path's F16/BF16 row buffer. */
typedef enum {
    HR_MATMUL_AUTO,
    HR_MATMUL_SCALAR,
    HR_MATMUL_ROWS_AVX2,
    HR_MATMUL_GEMM_AVX2,
    HR_MATMUL_GEMM_AVX512,
    HR_MATMUL_Q8_AVX2,
    HR_MATMUL_Q8_AVX512,
    HR_MATMUL_IMPL_COUNT
} HrMatmulImpl;

/* Whether this CPU (and build) can run impl; AUTO and SCALAR always can,
 * and hr_matmul_impl() runs SCALAR for an impl that cannot run. */
bool hr_matmul_impl_available(HrMatmulImpl impl);
/* NULL for a value outside the enum. */
const char *hr_matmul_impl_name(HrMatmulImpl impl);
void hr_matmul_impl(HrMatmulImpl impl, HrThreadPool *pool, float *out, const HrMat *w, const float *bias,
                    const float *x, int n, const float *residual);

/* A 4-bit group-quantized matrix, repacked once at load into a row-major
 * layout: row r (output channel) holds cols/2 bytes of nibbles, input k in
 * the low nibble of byte k/2 when k is even, the high one when odd. Per
 * (row, group) one of three ways to turn a nibble q into a weight:
 *   HR_QMAT_ZERO     (AWQ, GGUF Q4_0) the FP16 scale s as the checkpoint
 *                    stores it and the zero point z (3 bytes per group: a
 *                    decode step reads them with the nibbles): W = s * (q - z);
 *   HR_QMAT_OFFSET16 (GGUF Q4_1) FP16 scale s and FP16 offset o: W = s * q + o;
 *   HR_QMAT_OFFSET32 FP32 scale and offset, any products;
 *   HR_QMAT_K4       (GGUF Q4_K) as the file holds them: per group a 6-bit
 *                    scale and min, per 8 groups FP16 d and dmin, so
 *                    s = d * sc and s * z = dmin * m (2.5 bytes per group;
 *                    cols a multiple of 256, group 32).
 * Every kernel reads them through hr_qmat_row_scales() as the scale s and
 * sz = s * z = -o, so W[r,:].x = sum_g (s_g * sum q*x - sz_g * sum x). */
typedef enum {
    HR_QMAT_ZERO,
    HR_QMAT_OFFSET16,
    HR_QMAT_OFFSET32,
    HR_QMAT_K4,
} HrQMatKind;

typedef struct {
    uint8_t *q;        /* [rows, cols/2] */
    HrQMatKind kind;
    uint16_t *scale;   /* ZERO, OFFSET16: [rows, n_groups] FP16 bits */
    uint8_t *zero;     /* ZERO: [rows, n_groups] 0..15 */
    uint16_t *offset16; /* OFFSET16: [rows, n_groups] FP16 bits */
    float *scale32;    /* OFFSET32: [rows, n_groups] */
    float *offset32;   /* OFFSET32: [rows, n_groups] */
    uint8_t *ksc, *kmin; /* K4: [rows, n_groups] 0..63 */
    uint16_t *kd, *kdmin; /* K4: [rows, n_groups / 8] FP16 bits */
    int rows, cols;    /* cols even */
    int group;         /* divides cols, even */
    int n_groups;
} HrQMat;

/* Allocate m's arrays for its kind, rows, cols and group (set before). */
void hr_qmat_alloc(HrQMat *m);
/* Row r's scales and scale * zero as FP32, into sc[n_groups], sz[n_groups]. */
void hr_qmat_row_scales(const HrQMat *m, int r, float *sc, float *sz);
/* The same for rows r .. r + n_rows - 1 at once: row i's at sc + i * n_groups
 * and sz + i * n_groups. */
void hr_qmat_rows_scales(const HrQMat *m, int r, int n_rows, float *sc, float *sz);
size_t hr_qmat_bytes(const HrQMat *m);
void hr_qmat_free(HrQMat *m);
/* Dequantized row r of m into dst[cols] (tests, reference). */
void hr_qmat_row_f32(const HrQMat *m, int r, float *dst);
/* As hr_matmul, for a quantized matrix. */
void hr_matmul_q4(HrThreadPool *pool, float *out, const HrQMat *w, const float *bias, const float *x, int n,
                  const float *residual);
void hr_matmul_q4_impl(HrMatmulImpl impl, HrThreadPool *pool, float *out, const HrQMat *w, const float *bias,
                       const float *x, int n, const float *residual);
/* out[i] = w[i] . x (+ bias[i] when bias and bias[i] are not NULL) for
 * count <= 3 matrices that read the same x (q|k|v, gate|up). Where the
 * int8-activation path applies to all of them (same input width and group),
 * x is rounded once and one pass of the pool covers all their rows, as the
 * GPU backends launch one concatenated matmul; otherwise one hr_matmul_q4
 * each. The same results as separate calls, bit for bit when every
 * matrix has a multiple of 4 rows (AWQ: of 8). */
void hr_matmul_q4_multi(HrThreadPool *pool, int count, float *const *out, const HrQMat *const *w,
                        const float *const *bias, const float *x, int n);
void hr_matmul_q4_multi_impl(HrMatmulImpl impl, HrThreadPool *pool, int count, float *const *out,
                             const HrQMat *const *w, const float *const *bias, const float *x, int n);

/* A matrix of int8 values with an FP32 scale per block of inputs along
 * each row: GGUF Q8_0, Q5_0 and Q6_K repacked exactly, or the FP16 lm_head
 * of 4-bit models rounded per block of 32 (d = max|w| / 127, w ~ d * q,
 * |q| <= 127) for decode: half the bytes of FP16, with the activations
 * rounded to int8 per block of 32 as well, as in the Q8 4-bit path. */
typedef struct {
    int8_t *q;  /* [rows, cols] */
    float *d;   /* [rows, cols / block] */
    int rows, cols;
    /* values per scale: 32 (0 reads as 32), or 16 (GGUF Q6_K's sub-blocks;
     * the activations are still rounded per 32) */
    int block;
    /* NULL, or [rows, cols / 32] offsets (block 32 only; GGUF Q5_1, Q5_K):
     * value = d * q + m. The matmul adds sum_b m_b * (sum of x over block b)
     * with the activations' exact FP32 block sums. */
    float *m;
} HrQ8Mat;

/* m's values per scale (32 or 16). */
static inline int
hr_q8mat_block(const HrQ8Mat *m)
{
    return m->block == 16 ? 16 : 32;
}

/* Whether hr_q8mat_from() takes m here: cols a positive multiple of 32 and
 * a CPU with AVX2 (the kernels' baseline). */
bool hr_q8mat_supported(const HrMat *m);
/* Rounds m into *dst (allocated; rows split over pool). */
void hr_q8mat_from(HrThreadPool *pool, const HrMat *m, HrQ8Mat *dst);
size_t hr_q8mat_bytes(const HrQ8Mat *m);
void hr_q8mat_free(HrQ8Mat *m);
/* Dequantized row r into dst[cols] (tests, reference). */
void hr_q8mat_row_f32(const HrQ8Mat *m, int r, float *dst);
/* out[t, r] = (residual ? residual[t, r] : 0) + (bias ? bias[r] : 0) + W[r, :] . x[t, :]
 * for t < n, r < W.rows, as hr_matmul (out may alias residual), with the
 * activations rounded to int8 per block of 32 (d = max|x| / 127) and the
 * products summed in integers per weight block. Fewer than 6 tokens
 * (decode) stream each weight row once per token; from 6 on (prefill),
 * panels of 16 rows are repacked per call into 4-byte column steps and
 * each step's load feeds a tile of 8 tokens (AVX-512 VNNI) or 4 (AVX2),
 * the 16 rows of a token one vector (no horizontal sums). Rows (panels)
 * are split over the pool. */
void hr_matmul_q8w(HrThreadPool *pool, float *out, const HrQ8Mat *w, const float *bias, const float *x, int n,
                   const float *residual);
/* The same with VPMADDUBSW only (HR_MATMUL_Q8_AVX2) or VNNI where the CPU
 * has it (any other value). */
void hr_matmul_q8w_impl(HrMatmulImpl impl, HrThreadPool *pool, float *out, const HrQ8Mat *w, const float *bias,
                        const float *x, int n, const float *residual);

/* dots[t] = w . x[t * cols, (t + 1) * cols) for t < n in FP32, summed as the
 * portable loop does: 8 partial sums (input k into sum k % 8) combined as
 * ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7)), then the last cols % 8
 * products in order. The same bits with AVX2 (8 tokens per pass over w)
 * as without: the exact path for rows decoded to FP32 (HEARTH_CPU_EXACT). */
void hr_dot_rows_f32(const float *w, const float *x, int cols, int n, float *dots);

/* Whether HEARTH_CPU_EXACT asks for FP32 activations and FP weights as
 * stored (no int8 rounding anywhere on the CPU). */
bool hr_cpu_exact(void);

/* Whether the CPU has AVX-512 F/VL/BW/DQ with AVX2, FMA and F16C (false
 * with HEARTH_CPU_SCALAR=1: every vector path off). */
bool hr_cpu_avx512(void);

/* Attention of one query head q[hd] over cache rows start..p: score_j =
 * q . K_j * scale (softcap > 0, Gemma 2: softcap * tanh(score / softcap)),
 * softmax over j, out[hd] = sum_j w_j V_j. Row j of K and V is at element
 * j * stride of k and v (j % ring * stride where ring > 0: a sliding-window
 * layer's ring of entries), FP16 when f16 else FP32. scores is scratch of
 * p + 1 floats. AVX2 (F16C) where the CPU has it and hd % 8 == 0, else
 * scalar; both accumulate in FP32. */
void hr_attend_head(const float *q, const void *k, const void *v, bool f16, size_t stride, int ring, int hd, int start,
                    int p, float scale, float softcap, float *scores, float *out);

/* out = x / sqrt(mean(x^2) + eps) * weight, as transformers' RMSNorm in FP32. */
void hr_rmsnorm(float *out, const float *x, const float *weight, int n, float eps);

/* RoPE inverse frequencies [head_dim/2] with the config's scaling (none,
 * linear, llama3), as the CPU backend uses them (cpu-backend.c). */
/* RoPE's frequencies, hr_model_config_rotary_dim / 2 of them (LongRoPE: the
 * short set). */
void hr_rope_inv_freq(const HrModelConfig *cfg, float *inv_freq);
/* LongRoPE's long set (hr_model_config_rope_long says when), else as above. */
void hr_rope_inv_freq_long(const HrModelConfig *cfg, float *inv_freq);
/* What cos and sin are multiplied by (LongRoPE's attention factor, else 1). */
float hr_rope_attn_factor(const HrModelConfig *cfg);
/* The frequencies of the sliding-window layers (rope_local_theta, unscaled:
 * Gemma 3's), or the global ones when the model has no local base. */
void hr_rope_inv_freq_local(const HrModelConfig *cfg, float *inv_freq);
/* gelu_pytorch_tanh(x), as transformers computes it in float32. */
float hr_gelu_tanh(float x);
