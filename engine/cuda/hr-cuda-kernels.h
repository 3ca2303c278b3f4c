/* hr-cuda-kernels.h — the CUDA backend's kernels one by one, on host memory
 * (tests and benchmarks; compiled by nvcc). Every call copies its inputs to
 * the device, runs the same launcher the backend uses, copies the results
 * back and synchronizes. Each returns 0 or a CUDA error code (or -1 for a
 * bad argument) with a one-line explanation in msg. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#include "safetensors.h"

/* A weight matrix as a checkpoint holds it: dense, or AutoAWQ GEMM. */
typedef struct {
    bool awq;
    int rows, cols;             /* N outputs, K inputs */
    const void *w;              /* dense: [rows, cols] of dtype (F32, F16 or BF16) */
    HrDType dtype;
    const int32_t *qweight;     /* AWQ: [cols, rows/8], nibble order 0,2,4,6,1,3,5,7 */
    const int32_t *qzeros;      /* AWQ: [n_groups, rows/8] */
    const uint16_t *scales;     /* AWQ: [n_groups, rows] FP16 bits */
    int n_groups;
} HrCudaHostMat;

typedef enum {
    HR_CUDA_PATH_AUTO = 0,      /* GEMV below 8 tokens, tensor-core GEMM from 8 */
    HR_CUDA_PATH_GEMV = 1,      /* the GEMV kernel per token (the simple fallback) */
    HR_CUDA_PATH_WMMA = 2,      /* WMMA GEMM (dequantizing tile loader) */
    /* Opt-in paths, written without a device (engine/cuda/README.md): */
    HR_CUDA_PATH_Q8 = 3,        /* 4-bit GEMV on int8 activations (HEARTH_CUDA_GEMV=q8); FP16 weights: GEMV */
    HR_CUDA_PATH_CUBLAS = 4,    /* dequantize to FP16 + cublasGemmEx (HEARTH_CUDA_GEMM=cublas) */
} HrCudaPath;

/* out[T, R] = (residual ? residual : 0) + (bias ? bias : 0) + x[T, K] . W^T,
 * where W stacks mats[0..n) by rows (R = sum of rows; q/k/v as one launch);
 * all mats must share the format (and the AWQ group). */
int hr_cuda_k_linear(const HrCudaHostMat *const *mats, int n, const float *bias, const float *x, int T,
                     const float *residual, float *out, HrCudaPath path, char *msg, size_t msg_len);

/* out[T, H] = silu(x . Wg^T) * (x . Wu^T): one fused launch on the GEMV
 * path, GEMM + silu_mul on the WMMA path. */
int hr_cuda_k_gate_up(const HrCudaHostMat *gate, const HrCudaHostMat *up, const float *x, int T, float *out,
                      HrCudaPath path, char *msg, size_t msg_len);

int hr_cuda_k_rmsnorm(float *out, const float *x, const float *w, int T, int dim, float eps, char *msg,
                      size_t msg_len);

/* The q8 path's fused RMSNorm (HEARTH_CUDA_GEMV=q8): out as hr_cuda_k_rmsnorm,
 * and xr[T, dim] the rounded values it stores for the GEMV (d * xq, back in
 * input order). */
int hr_cuda_k_rmsnorm_q8(float *out, float *xr, const float *x, const float *w, int T, int dim, float eps, char *msg,
                         size_t msg_len);

/* out[T, dim] = table[ids[t]] (table converted to FP16 as the backend stores it). */
int hr_cuda_k_embed(float *out, const void *table, HrDType dtype, int vocab, int dim, const int32_t *ids, int T,
                    char *msg, size_t msg_len);

/* qkv [T, (n_heads + 2*n_kv)*hd] in/out (q, k rotated); k_cache, v_cache
 * [ctx, n_kv*hd] FP16 bits in/out, rows pos..pos+T-1 written. */
int hr_cuda_k_rope_kv(float *qkv, uint16_t *k_cache, uint16_t *v_cache, int ctx, const float *inv_freq, int pos, int T,
                      int n_heads, int n_kv, int hd, char *msg, size_t msg_len);

/* The same with the kernel of HEARTH_CUDA_ATTN=tiled (a block per head and token). */
int hr_cuda_k_rope_kv_wide(float *qkv, uint16_t *k_cache, uint16_t *v_cache, int ctx, const float *inv_freq, int pos,
                           int T, int n_heads, int n_kv, int hd, char *msg, size_t msg_len);

/* out[T, n_heads*hd]: causal GQA attention of q (row stride ldq) at
 * positions pos+t over the FP16 caches, split over the sequence in pieces of
 * split_len positions (flash-decoding) and combined. */
int hr_cuda_k_attention(float *out, const float *q, int ldq, const uint16_t *k_cache, const uint16_t *v_cache, int ctx,
                        int pos, int T, int n_heads, int n_kv, int hd, int window, int split_len, char *msg,
                        size_t msg_len);

/* The same with the tiled kernel (HEARTH_CUDA_ATTN=tiled): -1 when it does
 * not take the shape (GQA groups above 8, head_dim not a multiple of 8). */
int hr_cuda_k_attention_tiled(float *out, const float *q, int ldq, const uint16_t *k_cache, const uint16_t *v_cache,
                              int ctx, int pos, int T, int n_heads, int n_kv, int hd, int window, int split_len,
                              char *msg, size_t msg_len);

/* The same with the tensor-core prefill kernel (HEARTH_CUDA_ATTN=tiled, 16
 * tokens and more): -1 unless head_dim is 64 or 128. */
int hr_cuda_k_attention_tc(float *out, const float *q, int ldq, const uint16_t *k_cache, const uint16_t *v_cache,
                           int ctx, int pos, int T, int n_heads, int n_kv, int hd, int window, char *msg,
                           size_t msg_len);

int hr_cuda_k_argmax(const float *x, int n, int *out, char *msg, size_t msg_len);

/* Benchmarks (hearth-cli bench --gemv/--gemm --backend cuda): one linear
 * of rows x cols, 4-bit (random AutoAWQ tensors repacked as the backend
 * does, groups of `group`) or FP16, for `tokens` tokens through the
 * backend's launcher on `path`; `footprint` bytes of weight copies are
 * cycled through so that the L2 cache does not hold them; each of the reps
 * runs enough calls for min_time seconds, timed with CUDA events:
 * sec_per_call[reps]. */
typedef struct {
    int rows, cols, tokens;
    bool q4;
    int group;
    size_t footprint;
    double min_time;
    int reps;
    HrCudaPath path;
} HrCudaLinearBench;

typedef struct {
    size_t weight_bytes;        /* one copy, in the device layout */
    int copies;
    long calls;                 /* per rep */
    const char *kernel;         /* "gemv" or "wmma" */
    char device[128];
} HrCudaLinearBenchInfo;

int hr_cuda_bench_linear(const HrCudaLinearBench *a, double *sec_per_call, HrCudaLinearBenchInfo *info, char *msg,
                         size_t msg_len);

/* The device's read bandwidth as the backend's probe measures it (16-byte
 * loads over 512 MiB, grid-stride, best of 5 passes after a warm-up). */
int hr_cuda_bench_read_bandwidth(double *bytes_per_s, char *msg, size_t msg_len);

/* Host only (no device needed): the load-time repack of an AutoAWQ matrix
 * into the device's Q4 layout (see cuda-internal.h): q [rows, kw] words,
 * kw = hr_cuda_q4_words(cols), and sz [rows, n_groups] as {scale, zero}
 * FP16 pairs (scale in the low 16 bits). */
int hr_cuda_q4_words(int cols);
void hr_cuda_awq_repack(const HrCudaHostMat *m, uint32_t *q, uint32_t *sz);
/* The same through engine/awq-layout.c on a pool of n_threads
 * (HEARTH_CUDA_REPACK=layout in the backend): the same words. */
void hr_cuda_awq_repack_layout(const HrCudaHostMat *m, int n_threads, uint32_t *q, uint32_t *sz);

/* Host only: the int8-activation GEMV's arithmetic (engine/cuda/cuda-device.h)
 * run on the host over the device layout of an AWQ matrix: x [cols] is
 * rounded per block of 32 as the device does (xq_out [cols rounded up to 32]
 * gets the values dequantized, d * xq, in input order), then out[rows] =
 * W . (d * xq) through the same dp4a order and per-block scaling. The
 * matrix's groups must be a multiple of 32 inputs (or one per row); returns
 * -1 otherwise. */
int hr_cuda_q8_gemv_host(const HrCudaHostMat *m, const float *x, float *xq_out, float *out);

#ifdef __cplusplus
}
#endif
