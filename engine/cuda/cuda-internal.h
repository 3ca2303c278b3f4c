// cuda-internal.h — what the CUDA backend's .cu files share (C++ only).
//
// Weight layouts on the device (built once at load by cuda-repack.cu):
//
//  Q4 (AWQ, W4A16): per output row n, `kw` 32-bit words (kw = ceil(K/32)*4,
//   so a row is a whole number of 128-bit loads; the padding nibbles are 0
//   and the kernels treat x beyond K as 0). Word w holds inputs 8w..8w+7 in
//   the interleaved order
//       slot (bits 4s..4s+3):  0   1   2   3   4   5   6   7
//       input 8w + ...:        0   2   4   6   1   3   5   7
//   so (word >> 4j) & 0x000F000F picks inputs (2j, 2j+1) into the low bits
//   of the two halves of a half2; OR-ing 0x6400 into each half makes the
//   fp16 number 1024 + q, and one half2 subtraction of 1024 (or of 1024 + z,
//   folding the zero point) gives the exact values. The mask-and-or is one
//   lop3.b32 (inline PTX, sm_75+; plain C bit ops elsewhere).
//   Per (row, group) one half2 {scale, zero}: W[n,k] = s*(q - z), and the
//   GEMV folds the zero per 8 inputs as s*sum(q*x) - (s*z)*sum(x).
//  F16 (dense FP16/BF16/FP32 checkpoints, lm_head, embeddings): row-major
//   [N, ldw] halves, ldw = K rounded up to 8 (zero padded), so every row
//   starts 16-byte aligned.
//
// Activations are FP32 [T, ld] row-major; the KV cache is FP16
// [context, kv_heads*head_dim] per layer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

extern "C" {
#include "cpu-threads.h"
}

// Every kernel launch goes through HR_LAUNCH(grid, block, stream, kernel,
// args...) (no dynamic shared memory; a template kernel in parentheses).
// With HEARTH_CUDA_EMU (tests/cuda-emu.h) the CUDA files compile for the
// host and a launch runs the kernel there, in stream order, or is recorded
// into the graph a capturing stream is building.
#ifdef HEARTH_CUDA_EMU
#define HR_LAUNCH(grid, block, stream, kernel, ...) \
    hremu::launch_on((stream), dim3(grid), dim3(block), [=] { kernel(__VA_ARGS__); })
#else
#define HR_LAUNCH(grid, block, stream, kernel, ...) kernel<<<(grid), (block), 0, (stream)>>>(__VA_ARGS__)
#endif

namespace hrcuda {

// LIN_Q4F and LIN_I8: GGUF block weights (cuda-gguf.h), without a lossy step.
enum { LIN_F16 = 0, LIN_Q4 = 1, LIN_Q4F = 2, LIN_I8 = 3 };

struct DLinear {
    int kind;          // LIN_F16 or LIN_Q4
    int rows, cols;    // N (outputs), K (inputs)
    // Q4
    uint32_t *q;       // [rows, kw]
    __half2 *sz;       // [rows, ng] {scale, zero}
    int kw, group, ng;
    // F16
    __half *w;         // [rows, ldw]
    int ldw;
    // Q4F (GGUF Q4_0, Q4_1, Q4_K): per row cols/2 bytes, value k in the low
    // nibble of byte k/2 when k is even, the high one when odd; per (row,
    // group of 32) {scale, offset} in FP32, W = scale*q + offset: ggml's own
    // factors (Q4_0: d, -8d; Q4_1: d, m; Q4_K: d*sc, -dmin*m), exact in FP32.
    uint8_t *nib;      // [rows, cols/2]
    float2 *so;        // [rows, cols/32]
    // I8 (GGUF Q8_0, Q5_0, Q5_1, Q5_K, Q6_K): int8 values, an FP32 scale per
    // `per` inputs (32; 16 for Q6_K), for Q5_1/Q5_K an FP32 offset per 32
    // (ng = cols/32 then, else 0). W = scale*q (+ offset).
    int8_t *q8;        // [rows, cols]
    float *s8;         // [rows, cols/per]
    float *o8;         // [rows, cols/32] or NULL
    int per;
};

enum Epilogue {
    EPI_STORE = 0,     // out = acc (+ bias)
    EPI_RESIDUAL = 1,  // out += acc (+ bias)   (out doubles as the residual)
    EPI_SILU_MUL = 2,  // out[r] = silu(acc[r]) * acc[r + half_rows]  (GEMV only)
};

enum GemmPath {
    PATH_AUTO = 0,     // GEMV for T < 8 tokens, else cuBLAS when LinWork has it, else WMMA
    PATH_GEMV = 1,     // the GEMV kernel over gridDim.y = T (the simple fallback)
    PATH_WMMA = 2,     // WMMA m16n16k16 fp16 x fp16 -> fp32
    PATH_CUBLAS = 3,   // 4-bit matrix dequantized to FP16 scratch, x to FP16, cublasGemmEx (FP32 out)
};

// What launch_linear may use beyond its arguments (the backend owns it; all
// optional). Opt-in until a device run has checked them (engine/cuda/README.md):
//  xq/xs: int8 activations (cuda-device.h) for the 4-bit decode GEMV: with
//   them the GEMV path runs k_gemv_fast on 4-bit matrices whose groups are a
//   multiple of 32 inputs (or one per row), for up to xq_rows tokens; rows of
//   kw*8 bytes and kw/4 {d, d*sum} (HEARTH_CUDA_GEMV=q8).
//  blas, wh, xh: the cuBLAS route (HEARTH_CUDA_GEMM=cublas): wh holds one
//   dequantized matrix [rows, kw*8] halves, xh the FP16 activations [T, ldw].
//  pre_x/pre_cols/pre_xq/pre_xs: activations already rounded (by
//   launch_rmsnorm_q8): a linear whose x is pre_x and whose cols are pre_cols
//   reads pre_xq/pre_xs instead of rounding x again.
//  fast_gemv: the decode GEMVs of cuda-decode.cu (HEARTH_CUDA_GEMV=q8): q8 on
//   4-bit matrices (with xq/xs), k_gemv_fast on FP16 ones.
struct Blas;
struct LinWork {
    bool fast_gemv;
    int8_t *xq;
    float2 *xs;
    int xq_rows;   // tokens xq/xs hold (each row as wide as the widest matrix's kw*8)
    const float *pre_x;
    int pre_cols;
    int8_t *pre_xq;
    float2 *pre_xs;
    Blas *blas;
    __half *wh;
    size_t wh_halves;
    __half *xh;
    size_t xh_halves;
};

// Sizes of the device layouts.
inline int q4_kw(int K) { return (K + 31) / 32 * 4; }
inline int f16_ldw(int K) { return (K + 7) / 8 * 8; }

// ---- launchers (cuda-kernels.cu); all asynchronous on `s` -------------------

// out[t, 0..rows_out) with out row stride ldo; x [T, ldx].
// EPI_SILU_MUL: W has 2*rows_out rows (gate then up), out is [T, rows_out].
void launch_linear(const DLinear &w, const float *x, int ldx, int T, const float *bias, float *out, int ldo,
                   Epilogue epi, GemmPath path, cudaStream_t s, const LinWork *wk = nullptr);

// ---- GGUF block weights (cuda-gguf.h, issue 23) --------------------------------
// Whether the kind is one of the GGUF layouts (launch_linear: k_gemv below 8
// tokens, k_gemm_wmma's GGUF loader from 8; no cuBLAS route).
inline bool gguf_kind(int kind) { return kind == LIN_Q4F || kind == LIN_I8; }
// x[t] = row ids[t] of an embedding table of any kind (F16 through launch_embed).
void launch_embed_linear(const DLinear &table, const int *ids, int T, int dim, float *x, cudaStream_t s);

// ---- cuda-decode.cu: the decode kernels written for memory speed (issue 17) ----

// Whether the int8-activation GEMV takes this matrix (4-bit, groups a
// multiple of 32 inputs or one per row).
bool q8_gemv_ok(const DLinear &w);
// x [T, ldx] FP32 -> xq [T, Kp] int8 (Kp = kw*8, zero past K), xs [T, Kp/32].
void launch_quant_q8(const float *x, int ldx, int K, int Kp, int T, int8_t *xq, float2 *xs, cudaStream_t s);
// RMSNorm (as launch_rmsnorm) that also rounds its output for the q8 GEMV:
// xq [T, Kp], xs [T, Kp/32] as launch_quant_q8 would from out.
void launch_rmsnorm_q8(const float *x, const float *w, float *out, int T, int dim, float eps, int Kp, int8_t *xq,
                       float2 *xs, cudaStream_t s);
// The decode GEMVs of cuda-decode.cu (k_gemv_fast): a 4-bit w on int8
// activations (xq, xs), or an FP16 w on FP32 x [T, ldx].
void launch_gemv_fast(const DLinear &w, const int8_t *xq, const float2 *xs, const float *x, int ldx, int T,
                      const float *bias, float *out, int ldo, Epilogue epi, cudaStream_t s);
// Attention in tiles of ATT_TILE keys: a block serves 8/G consecutive queries
// times the G query heads of one KV head (GQA groups up to 8) for one split
// of the sequence, each K/V row loaded once per tile for all of them (16-byte
// K loads, 4 threads a key; 4-byte V loads), per-row causal and window masks;
// the partials are those of launch_attention, merged by its combine kernel.
enum { ATT_TILE = 64, ATT_TILE_MAX_G = 8 };
bool attention_tiled_ok(int n_heads, int n_kv, int hd);
// Prefill attention on the tensor cores (cuda-attn-tc.cu; HEARTH_CUDA_ATTN=tiled
// for 16 tokens and more): 32 queries of one head a block, keys in tiles of
// 32, FP16 WMMA products with FP32 accumulation, out [T, n_heads*hd] written
// directly (no partials). head_dim 64 or 128.
bool attention_tc_ok(int n_heads, int n_kv, int hd);
void launch_attention_tc(const float *q, int ldq, const __half *k_cache, const __half *v_cache, float *out,
                         const int *step, int T, int n_heads, int n_kv, int hd, int window, cudaStream_t s);
// launch_rope_kv with a block per head and token (HEARTH_CUDA_ATTN=tiled).
void launch_rope_kv_wide(float *qkv, __half *k_cache, __half *v_cache, const float *inv_freq, const int *step, int T,
                         int n_heads, int n_kv, int hd, cudaStream_t s);
void launch_attention_tiled(const float *q, int ldq, const __half *k_cache, const __half *v_cache, float *part,
                            float *out, const int *step, int T, int n_heads, int n_kv, int hd, int window,
                            int split_len, int max_splits, cudaStream_t s);
// The combine kernel alone (cuda-kernels.cu), for the tiled attention.
void launch_attention_combine(const float *part, float *out, const int *step, int T, int n_heads, int hd,
                              int split_len, int max_splits, cudaStream_t s);

// ---- cuda-sample.cu: the device part of a draw (engine/sampler.h) ----------------

// A step's draw, in device memory (filled by the host before the step).
struct SampleParams {
    float inv_t;     // 1 / temperature; 0: greedy (no denominator)
    float penalty;   // 1: none
    int n_seen;      // distinct seen ids in the seen buffer
    int draw;        // 0: the kernels do nothing
};
enum { TOPK_CH = 1024, TOPK_K = 64 };   // values a block sorts, kept a block (= HR_CANDIDATES_MAX)
struct TopkRes {
    uint32_t ids[TOPK_K];   // best first; 0xffffffff past the vocabulary
    float vals[TOPK_K];
    float max, sum;         // sum of e^((v - max) * inv_t) over the row
    int bad;                // a logit was not finite
};
// first-pass blocks for a row of vocab logits (cand_v/cand_i hold 64 a block, stats 3)
int topk_blocks(int vocab);
// penalty in place on logits, then the top-k passes into res
void launch_sample(float *logits, int vocab, const int32_t *seen, const SampleParams *prm, float *cand_v[2],
                   uint32_t *cand_i[2], float *stats, TopkRes *res, cudaStream_t s);

// ---- cuda-blas.cu: cuBLAS, opened at run time ----------------------------------

// libcublas opened with dlopen (no link-time dependency: a machine without the
// CUDA toolkit still runs Hearth); NULL with a reason in msg when it is not
// there or fails.
Blas *blas_open(char *msg, size_t msg_len);
void blas_close(Blas *b);
// cublasGemmEx's operands for one linear (column-major, as BLAS): C [m, n]
// (ldc) = op(A) op(B) + beta C, op = transpose where trans_*.
struct BlasArgs {
    bool trans_a, trans_b;
    int m, n, k;
    const __half *A;
    int lda;
    const __half *B;
    int ldb;
    float beta;
    float *C;
    int ldc;
};
BlasArgs blas_args(const DLinear &w, const __half *W, int lda, const __half *xh, int ldh, int T, float *out, int ldo,
                   Epilogue epi);
// The cuBLAS route for one linear (not EPI_SILU_MUL); false if it could not
// run (the caller falls back).
bool launch_linear_blas(const DLinear &w, const float *x, int ldx, int T, const float *bias, float *out, int ldo,
                        Epilogue epi, const LinWork &wk, cudaStream_t s);
void launch_silu_mul(const float *gu, int H, int T, float *out, cudaStream_t s);
void launch_embed(const __half *table, int ldw, const int *ids, int T, int dim, float *x, cudaStream_t s);
void launch_rmsnorm(const float *x, const float *w, float *out, int T, int dim, float eps, cudaStream_t s);
// Qwen3: every q head (wq [hd]) and k head (wk) of qkv [T, (nh + 2*nkv)*hd] RMS-normalised in place.
void launch_head_norm(float *qkv, const float *wq, const float *wk, int T, int n_heads, int n_kv, int hd, float eps,
                      cudaStream_t s);
// qkv [T, (nh + 2*nkv)*hd]: rotates q and k in place and writes k, v as FP16
// to the caches at positions step[0] + t.
void launch_rope_kv(float *qkv, __half *k_cache, __half *v_cache, const float *inv_freq, const int *step, int T,
                    int n_heads, int n_kv, int hd, cudaStream_t s);
// Attention for T queries at positions step[0] + t over the cache: the
// sequence is split into pieces of split_len positions (max_splits pieces
// cover the context), partials combined by a second kernel.
void launch_attention(const float *q, int ldq, const __half *k_cache, const __half *v_cache, float *part,
                      float *out, const int *step, int T, int n_heads, int n_kv, int hd, int window, int split_len,
                      int max_splits, cudaStream_t s);
void launch_argmax(const float *x, int n, int *out, cudaStream_t s);
// sums[r] = sum over k < width of (a[r, k] - t[r, k])^2 in double, rows r < n
// (a and t row-major with stride width).
void launch_sq_diff(const float *a, const float *t, int width, int n, double *sums, cudaStream_t s);
// w[r, k] (FP16, row stride ldw) = Q(t[r] diag(s)) diag(s)^-1 (- t[r] when
// delta) for rows r < rows, t [rows, K] FP32, s [K], Q the RTN fake
// quantization in groups of `group` at `bits` bits (the CPU's
// hr_awq_fake_quant_row): the AWQ search's candidates on the device.
void launch_scale_quant(const float *t, int rows, int K, const float *s, int group, int bits, bool delta, __half *w,
                        int ldw, cudaStream_t st);
// The AWQ clip search (cpu-awq.h's hr_awq_clip_search; errors in FP32) of
// w [N, K] over x [nt, K] (rows ldx floats apart) in groups of g <= 256: C
// scratch of K * g floats, lim [N, K / g] the chosen limits.
void launch_clip_search(const float *w, int N, int K, const float *x, size_t ldx, int nt, int g, int bits, int steps,
                        int grid, float *C, float *lim, cudaStream_t st);
// sum[k] = the sum over the rows of t [rows, width], in order, of |t[r, k]|.
void launch_col_abs_sum(const float *t, int64_t rows, int width, double *sum, cudaStream_t st);
// t[r, k] /= s[k] for every row.
void launch_div_cols(float *t, int64_t rows, int width, const float *s, cudaStream_t st);
// out[T, N] = x[T, K] . W[N, K]^T (+ bias), all FP32 (the quantizer's GEMM).
void launch_gemm_f32(const float *w, int N, int K, const float *bias, const float *x, int T, float *out,
                     cudaStream_t s);
void launch_read_sum(const uint4 *buf, size_t n, float *out, int n_blocks, cudaStream_t s);

// ---- host-side repacking (cuda-repack.cu) ------------------------------------

// AutoAWQ GEMM tensors (qweight int32 [K, N/8], qzeros int32 [ng, N/8],
// scales fp16 [ng, N]) -> rows [r0, r1) (multiples of 8) of the Q4 layout:
// q [r1-r0, kw] words and sz [r1-r0, ng] half2 (as raw bits).
void repack_awq_rows(const void *qweight, const void *qzeros, const void *scales, int N, int K, int ng, int r0,
                     int r1, uint32_t *q, uint32_t *sz);
// The same words through the shared transposition (engine/awq-layout.c,
// CUDA's slot order), rows split over pool. Identical output (checked on the
// host by tests/test-cuda-repack.c); the backend uses it with
// HEARTH_CUDA_REPACK=layout until a device run makes it the default.
void repack_awq_rows_layout(HrThreadPool *pool, const void *qweight, const void *qzeros, const void *scales, int N,
                            int K, int ng, int r0, int r1, uint32_t *q, uint32_t *sz);
// GGUF Q4_0 rows [r0, r1) of a [N, K] tensor (K a multiple of 32) in the Q4
// layout, groups of 32 with {d, 8}: exact, as d is an FP16 number in the file.
void repack_q4_0_rows(const void *src, int K, int r0, int r1, uint32_t *q, uint32_t *sz);
// Dense rows [r0, r1) of an F32/F16/BF16 matrix [N, K] (dtype as HrDType) to
// FP16 rows of ldw halves.
void convert_rows_f16(const void *src, int dtype, int K, int ldw, int r0, int r1, uint16_t *dst);

}  // namespace hrcuda
