// cuda-kernels.cu — every device kernel of the CUDA backend and its launcher.
//
// Kernels (launch configuration):
//  k_embed          grid T, block 256: FP16 table row -> FP32 x.
//  k_rmsnorm        grid T, block 256: FP32 sum of squares, block reduction.
//  k_gemv<W, EPI>   grid (ceil(rows/4), T), block 128: one warp per output
//                   row (two rows for SiLU·mul), 128-bit weight loads, FP32
//                   accumulation, __shfl_xor_sync reduction; epilogues
//                   store(+bias) / residual add(+bias) / silu(gate)*up.
//                   Over gridDim.y = T it is also the simple GEMM fallback.
//  k_gemm_wmma<W>   grid (ceil(N/64), ceil(T/64)), block 128 (4 warps, 2x2
//                   of 32x32): tokens x rows tiles of 64x64, K step 32; the
//                   tile loader converts x to FP16 and dequantizes 4-bit
//                   words straight into shared memory; WMMA m16n16k16 fp16
//                   with fp32 accumulators; epilogue through shared memory.
//  k_silu_mul       grid ceil(T*H/256), block 256 (after a GEMM of gate|up).
//  k_head_norm      grid (q + k heads, T), block 128: Qwen3's q/k norms, a head's
//                   RMSNorm in place in q|k|v (before k_rope_kv).
//  k_rope_kv        grid T, block 128: rotate-half RoPE on q and k in place,
//                   k and v written to the FP16 cache at step[0] + t.
//  k_attn_partial   grid (heads, max_splits, T), block 128: flash-decoding;
//                   one split of split_len positions, a warp per position
//                   with online softmax, 4 warps merged in shared memory;
//                   writes (max, sum, acc[hd]). Splits past the query exit.
//  k_attn_combine   grid (heads, T), block 128: merges the splits.
//  k_argmax         grid 1, block 1024.
//  k_sq_diff        grid n, block 256: per row, sum of (a - t)^2 in double (the
//                   quantizer's loss against a reference kept on the device).
//  k_scale_quant    grid rows, block 128: a warp per group of the row in turn;
//                   the AWQ candidate Q(t diag(s)) diag(s)^-1 (- t) as FP16.
//  k_col_abs_sum    grid ceil(width/128), block 128: a column's sum of |t| a thread.
//  k_div_cols       grid rows, block 256: t[r] /= s (the fold of the search's inputs).
//  k_clip_gram      grid (K/g, g), block 128: row i of group gi's Gram matrix
//                   (double sums, t in order, stored FP32).
//  k_clip_search    grid (K/g, ceil(N/4)), block 128: a warp per (row, group),
//                   each clamp limit's error d^T C d in FP32.
//  k_gemm_f32       grid (ceil(N/64), ceil(T/64)), block 256, 4x4 per thread.
//  k_read_sum       grid n_blocks, block 256, grid-stride 128-bit loads.
#include "cuda-internal.h"
#include "cuda-device.h"
#include "cuda-gguf.h"

#include <cfloat>
#ifndef HEARTH_CUDA_EMU   // tests/cuda-emu.h brings its own nvcuda::wmma
#include <mma.h>
#endif

namespace hrcuda {

// ---- 4-bit dequantization ----------------------------------------------------

// Eight dequantized nibbles (exact integers 0..15) as floats, input order.
__device__ __forceinline__ void
dq8_f32(uint32_t w, float f[8])
{
    const __half2 k1024 = __float2half2_rn(1024.0f);
#pragma unroll
    for (int j = 0; j < 4; j++) {
        float2 v = __half22float2(__hsub2(nibble_pair(w, j), k1024));
        f[2 * j] = v.x;
        f[2 * j + 1] = v.y;
    }
}

// ---- GEMV (decode) -----------------------------------------------------------

// One row's dot product, partial per lane (not yet reduced).
__device__ __forceinline__ float
row_dot_q4(const DLinear &w, int row, const float *xr, int K, bool vec, int lane)
{
    const uint4 *qr = reinterpret_cast<const uint4 *>(w.q + (size_t)row * w.kw);
    const __half2 *szr = w.sz + (size_t)row * w.ng;
    float acc = 0.0f;
    const int n_vec = w.kw / 4;
    for (int c = lane; c < n_vec; c += 32) {
        const uint4 v = __ldg(qr + c);
        const uint32_t words[4] = { v.x, v.y, v.z, v.w };
#pragma unroll
        for (int i = 0; i < 4; i++) {
            const int k = c * 32 + i * 8;
            if (k < K) {
                float q[8], x[8];
                dq8_f32(words[i], q);
                load_x8(xr, k, K, vec, x);
                float dot = 0.0f, sx = 0.0f;
#pragma unroll
                for (int e = 0; e < 8; e++) {
                    dot = fmaf(q[e], x[e], dot);
                    sx += x[e];
                }
                const float2 sz = __half22float2(szr[w.ng == 1 ? 0 : k / w.group]);
                acc = fmaf(sz.x, dot, acc);
                acc = fmaf(-(sz.x * sz.y), sx, acc);
            }
        }
    }
    return acc;
}

__device__ __forceinline__ float
row_dot_f16(const DLinear &w, int row, const float *xr, int K, bool vec, int lane)
{
    const uint4 *wr = reinterpret_cast<const uint4 *>(w.w + (size_t)row * w.ldw);
    float acc = 0.0f;
    const int n_vec = w.ldw / 8;
    for (int c = lane; c < n_vec; c += 32) {
        const uint4 v = __ldg(wr + c);
        const uint32_t words[4] = { v.x, v.y, v.z, v.w };
        const int k = c * 8;
        float x[8];
        load_x8(xr, k, K, vec, x);
#pragma unroll
        for (int i = 0; i < 4; i++) {
            const float2 f = __half22float2(u32_as_half2(words[i]));
            acc = fmaf(f.x, x[2 * i], acc);
            acc = fmaf(f.y, x[2 * i + 1], acc);
        }
    }
    return acc;
}

template <int KIND, int EPI>
__global__ void __launch_bounds__(128)
k_gemv(DLinear w, const float *__restrict__ x, int ldx, const float *__restrict__ bias, float *out, int ldo,
       int rows_out)
{
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int row = blockIdx.x * 4 + warp, t = blockIdx.y;
    if (row >= rows_out)
        return;
    const int K = w.cols;
    const float *xr = x + (size_t)t * ldx;
    const bool vec = (ldx % 4 == 0) && ((reinterpret_cast<uintptr_t>(x) & 15) == 0);
    float a = KIND == LIN_Q4    ? row_dot_q4(w, row, xr, K, vec, lane)
              : KIND == LIN_F16 ? row_dot_f16(w, row, xr, K, vec, lane)
                                : row_dot_gguf<KIND>(w, row, xr, lane);
    a = warp_sum(a);
    if (EPI == EPI_SILU_MUL) {
        float b = KIND == LIN_Q4    ? row_dot_q4(w, row + rows_out, xr, K, vec, lane)
                  : KIND == LIN_F16 ? row_dot_f16(w, row + rows_out, xr, K, vec, lane)
                                    : row_dot_gguf<KIND>(w, row + rows_out, xr, lane);
        b = warp_sum(b);
        if (lane == 0)
            out[(size_t)t * ldo + row] = a / (1.0f + expf(-a)) * b;
        return;
    }
    if (lane == 0) {
        if (bias)
            a += bias[row];
        float *o = out + (size_t)t * ldo + row;
        *o = EPI == EPI_RESIDUAL ? *o + a : a;
    }
}

// ---- tensor-core GEMM (prefill) ----------------------------------------------

namespace wm = nvcuda::wmma;

enum { GM = 64, GN = 64, GK = 32, GLD = GK + 8, GCLD = GN + 4 };

template <int KIND>
__global__ void __launch_bounds__(128)
k_gemm_wmma(DLinear w, const float *__restrict__ x, int ldx, int T, const float *__restrict__ bias, float *out,
            int ldo, int epi)
{
    __shared__ __align__(128) __half sA[GM * GLD];   // [token][k]
    __shared__ __align__(128) __half sB[GN * GLD];   // [row][k] = B col-major
    __shared__ __align__(128) float sC[GM * GCLD];   // [token][row]
    const int tid = threadIdx.x, warp = tid >> 5;
    const int wm_i = warp >> 1, wn_i = warp & 1;
    const int m0 = blockIdx.y * GM, n0 = blockIdx.x * GN;
    const int K = w.cols, N = w.rows;
    const int k_end = KIND == LIN_Q4 ? w.kw * 8 : (K + GK - 1) / GK * GK;

    wm::fragment<wm::accumulator, 16, 16, 16, float> acc[2][2];
#pragma unroll
    for (int i = 0; i < 2; i++)
#pragma unroll
        for (int j = 0; j < 2; j++)
            wm::fill_fragment(acc[i][j], 0.0f);

    for (int k0 = 0; k0 < k_end; k0 += GK) {
        // A: 64 tokens x 32 inputs, 16 per thread, zero past T and K.
        {
            const int r = tid >> 1, c0 = (tid & 1) * 16, t = m0 + r;
            const float *xr = x + (size_t)t * ldx;
#pragma unroll
            for (int e = 0; e < 16; e += 2) {
                const int k = k0 + c0 + e;
                float v0 = (t < T && k < K) ? xr[k] : 0.0f;
                float v1 = (t < T && k + 1 < K) ? xr[k + 1] : 0.0f;
                *reinterpret_cast<__half2 *>(&sA[r * GLD + c0 + e]) = __floats2half2_rn(v0, v1);
            }
        }
        // B: 64 rows x 32 inputs.
        if (KIND == LIN_Q4) {
#pragma unroll
            for (int i = 0; i < 2; i++) {
                const int idx = tid * 2 + i, r = idx >> 2, wd = idx & 3, n = n0 + r;
                const int k = k0 + wd * 8;
                __half2 h[4];
                if (n < N) {
                    const uint32_t word = w.q[(size_t)n * w.kw + k / 8];
                    dq8_h(word, w.sz[(size_t)n * w.ng + (w.ng == 1 ? 0 : min(k, K - 1) / w.group)], h);
                } else {
#pragma unroll
                    for (int j = 0; j < 4; j++)
                        h[j] = __float2half2_rn(0.0f);
                }
                uint4 u;
                memcpy(&u, h, 16);
                *reinterpret_cast<uint4 *>(&sB[r * GLD + wd * 8]) = u;
            }
        } else if (KIND == LIN_Q4F || KIND == LIN_I8) {
            // GGUF blocks (cuda-gguf.h): 8 inputs of one row a step, s*q + o
            // in FP32, rounded to FP16 here only (as the 4-bit path above)
#pragma unroll
            for (int i = 0; i < 2; i++) {
                const int idx = tid * 2 + i, r = idx >> 2, wd = idx & 3, n = n0 + r;
                const int k = k0 + wd * 8;   // K is whole groups of 32: k < K
                float v[8];
                if (n >= N) {
#pragma unroll
                    for (int j = 0; j < 8; j++)
                        v[j] = 0.0f;
                } else if (KIND == LIN_Q4F) {
                    const uint32_t word = *reinterpret_cast<const uint32_t *>(w.nib + (size_t)n * (K / 2) + k / 2);
                    const float2 so = w.so[(size_t)n * (K / 32) + k / 32];
#pragma unroll
                    for (int j = 0; j < 8; j++)
                        v[j] = so.x * (float)((word >> (4 * j)) & 15u) + so.y;
                } else {
                    const uint2 u = *reinterpret_cast<const uint2 *>(w.q8 + (size_t)n * K + k);
                    int8_t q[8];
                    memcpy(q, &u, 8);
                    const float sc = w.s8[(size_t)n * (K / w.per) + k / w.per];
                    const float of = w.o8 ? w.o8[(size_t)n * (K / 32) + k / 32] : 0.0f;
#pragma unroll
                    for (int j = 0; j < 8; j++)
                        v[j] = sc * (float)q[j] + of;
                }
                __half2 h[4];
#pragma unroll
                for (int j = 0; j < 4; j++)
                    h[j] = __floats2half2_rn(v[2 * j], v[2 * j + 1]);
                uint4 u;
                memcpy(&u, h, 16);
                *reinterpret_cast<uint4 *>(&sB[r * GLD + wd * 8]) = u;
            }
        } else {
            const int r = tid >> 1, c0 = (tid & 1) * 16, n = n0 + r;
#pragma unroll
            for (int e = 0; e < 16; e += 8) {
                const int k = k0 + c0 + e;
                uint4 u = make_uint4(0, 0, 0, 0);
                if (n < N && k < w.ldw)
                    u = *reinterpret_cast<const uint4 *>(w.w + (size_t)n * w.ldw + k);
                *reinterpret_cast<uint4 *>(&sB[r * GLD + c0 + e]) = u;
            }
        }
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < GK; kk += 16) {
            wm::fragment<wm::matrix_a, 16, 16, 16, __half, wm::row_major> fa[2];
            wm::fragment<wm::matrix_b, 16, 16, 16, __half, wm::col_major> fb[2];
#pragma unroll
            for (int i = 0; i < 2; i++)
                wm::load_matrix_sync(fa[i], sA + (wm_i * 32 + i * 16) * GLD + kk, GLD);
#pragma unroll
            for (int j = 0; j < 2; j++)
                wm::load_matrix_sync(fb[j], sB + (wn_i * 32 + j * 16) * GLD + kk, GLD);
#pragma unroll
            for (int i = 0; i < 2; i++)
#pragma unroll
                for (int j = 0; j < 2; j++)
                    wm::mma_sync(acc[i][j], fa[i], fb[j], acc[i][j]);
        }
        __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < 2; i++)
#pragma unroll
        for (int j = 0; j < 2; j++)
            wm::store_matrix_sync(sC + (wm_i * 32 + i * 16) * GCLD + wn_i * 32 + j * 16, acc[i][j], GCLD,
                                  wm::mem_row_major);
    __syncthreads();
    for (int idx = tid; idx < GM * GN; idx += 128) {
        const int r = idx / GN, c = idx % GN, t = m0 + r, n = n0 + c;
        if (t < T && n < N) {
            float v = sC[r * GCLD + c] + (bias ? bias[n] : 0.0f);
            float *o = out + (size_t)t * ldo + n;
            *o = epi == EPI_RESIDUAL ? *o + v : v;
        }
    }
}

__global__ void
k_silu_mul(const float *__restrict__ gu, int H, int T, float *__restrict__ out)
{
    const size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (size_t)T * H)
        return;
    const size_t t = i / H, r = i % H;
    const float g = gu[t * 2 * H + r], u = gu[t * 2 * H + H + r];
    out[i] = g / (1.0f + expf(-g)) * u;
}

void
launch_linear(const DLinear &w, const float *x, int ldx, int T, const float *bias, float *out, int ldo, Epilogue epi,
              GemmPath path, cudaStream_t s, const LinWork *wk)
{
    // GGUF blocks (cuda-gguf.h): k_gemv or k_gemm_wmma below; no cuBLAS route for them yet
    if (gguf_kind(w.kind) && (path == PATH_AUTO || path == PATH_CUBLAS))
        path = T < 8 ? PATH_GEMV : PATH_WMMA;
    const int rows_out = epi == EPI_SILU_MUL ? w.rows / 2 : w.rows;
    if (path == PATH_AUTO)
        path = T < 8 ? PATH_GEMV : (wk && wk->blas ? PATH_CUBLAS : PATH_WMMA);
    if (path == PATH_CUBLAS) {
        if (epi != EPI_SILU_MUL && wk && launch_linear_blas(w, x, ldx, T, bias, out, ldo, epi, *wk, s))
            return;
        path = epi == EPI_SILU_MUL ? PATH_GEMV : PATH_WMMA;
    }
    if (path == PATH_GEMV && wk && wk->fast_gemv && w.kind == LIN_F16) {
        launch_gemv_fast(w, nullptr, nullptr, x, ldx, T, bias, out, ldo, epi, s);
        return;
    }
    if (path == PATH_GEMV && wk && wk->fast_gemv && wk->xq && q8_gemv_ok(w) && T <= wk->xq_rows) {
        if (wk->pre_xq && x == wk->pre_x && w.cols == wk->pre_cols) {   // rounded by launch_rmsnorm_q8
            launch_gemv_fast(w, wk->pre_xq, wk->pre_xs, nullptr, 0, T, bias, out, ldo, epi, s);
            return;
        }
        launch_quant_q8(x, ldx, w.cols, w.kw * 8, T, wk->xq, wk->xs, s);
        launch_gemv_fast(w, wk->xq, wk->xs, nullptr, 0, T, bias, out, ldo, epi, s);
        return;
    }
    if (path == PATH_WMMA && epi != EPI_SILU_MUL) {
        dim3 grid((unsigned)((w.rows + GN - 1) / GN), (unsigned)((T + GM - 1) / GM));
        if (w.kind == LIN_Q4)
            HR_LAUNCH(grid, 128, s, (k_gemm_wmma<LIN_Q4>), w, x, ldx, T, bias, out, ldo, (int)epi);
        else if (w.kind == LIN_Q4F)
            HR_LAUNCH(grid, 128, s, (k_gemm_wmma<LIN_Q4F>), w, x, ldx, T, bias, out, ldo, (int)epi);
        else if (w.kind == LIN_I8)
            HR_LAUNCH(grid, 128, s, (k_gemm_wmma<LIN_I8>), w, x, ldx, T, bias, out, ldo, (int)epi);
        else
            HR_LAUNCH(grid, 128, s, (k_gemm_wmma<LIN_F16>), w, x, ldx, T, bias, out, ldo, (int)epi);
        return;
    }
    dim3 grid((unsigned)((rows_out + 3) / 4), (unsigned)T);
#define HR_GEMV(KIND)                                                                         \
    switch (epi) {                                                                            \
    case EPI_STORE: HR_LAUNCH(grid, 128, s, (k_gemv<KIND, EPI_STORE>), w, x, ldx, bias, out, ldo, rows_out); break; \
    case EPI_RESIDUAL: HR_LAUNCH(grid, 128, s, (k_gemv<KIND, EPI_RESIDUAL>), w, x, ldx, bias, out, ldo, rows_out); break; \
    case EPI_SILU_MUL: HR_LAUNCH(grid, 128, s, (k_gemv<KIND, EPI_SILU_MUL>), w, x, ldx, bias, out, ldo, rows_out); break; \
    }
    if (w.kind == LIN_Q4) {
        HR_GEMV(LIN_Q4)
    } else if (w.kind == LIN_Q4F) {
        HR_GEMV(LIN_Q4F)
    } else if (w.kind == LIN_I8) {
        HR_GEMV(LIN_I8)
    } else {
        HR_GEMV(LIN_F16)
    }
#undef HR_GEMV
}

void
launch_silu_mul(const float *gu, int H, int T, float *out, cudaStream_t s)
{
    const size_t n = (size_t)H * T;
    HR_LAUNCH((unsigned)((n + 255) / 256), 256, s, k_silu_mul, gu, H, T, out);
}

// ---- embedding, RMSNorm --------------------------------------------------------

__global__ void
k_embed(const __half *__restrict__ table, int ldw, const int *__restrict__ ids, int dim, float *__restrict__ x)
{
    const int t = blockIdx.x;
    const __half *row = table + (size_t)ids[t] * ldw;
    for (int i = threadIdx.x; i < dim; i += blockDim.x)
        x[(size_t)t * dim + i] = __half2float(row[i]);
}

void
launch_embed(const __half *table, int ldw, const int *ids, int T, int dim, float *x, cudaStream_t s)
{
    HR_LAUNCH(T, 256, s, k_embed, table, ldw, ids, dim, x);
}

// x[t] = row ids[t] of a table of any kind (GGUF rows decoded: cuda-gguf.h).
void
launch_embed_linear(const DLinear &table, const int *ids, int T, int dim, float *x, cudaStream_t s)
{
    if (table.kind == LIN_Q4F)
        HR_LAUNCH(T, 256, s, (k_embed_gguf<LIN_Q4F>), table, ids, dim, x);
    else if (table.kind == LIN_I8)
        HR_LAUNCH(T, 256, s, (k_embed_gguf<LIN_I8>), table, ids, dim, x);
    else
        launch_embed(table.w, table.ldw, ids, T, dim, x, s);
}

// Sum over a block of blockDim.x (multiple of 32, <= 1024) threads; every thread gets it.
__device__ float
block_sum(float v)
{
    __shared__ float part[32];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, n_warps = (blockDim.x + 31) >> 5;
    v = warp_sum(v);
    __syncthreads();   // part[] may still be read by a previous call
    if (lane == 0)
        part[warp] = v;
    __syncthreads();
    v = lane < n_warps ? part[lane] : 0.0f;
    return warp_sum(v);
}

__global__ void
k_rmsnorm(const float *__restrict__ x, const float *__restrict__ w, float *__restrict__ out, int dim, float eps)
{
    const float *xr = x + (size_t)blockIdx.x * dim;
    float ss = 0.0f;
    for (int i = threadIdx.x; i < dim; i += blockDim.x)
        ss = fmaf(xr[i], xr[i], ss);
    ss = block_sum(ss);
    const float r = 1.0f / sqrtf(ss / (float)dim + eps);
    for (int i = threadIdx.x; i < dim; i += blockDim.x)
        out[(size_t)blockIdx.x * dim + i] = xr[i] * r * w[i];
}

void
launch_rmsnorm(const float *x, const float *w, float *out, int T, int dim, float eps, cudaStream_t s)
{
    HR_LAUNCH(T, 256, s, k_rmsnorm, x, w, out, dim, eps);
}

// ---- Qwen3's q/k norms -------------------------------------------------------------

__global__ void
k_head_norm(float *qkv, const float *__restrict__ wq, const float *__restrict__ wk, int n_heads, int n_kv, int hd,
            float eps)
{
    const int j = blockIdx.x, t = blockIdx.y;
    float *v = qkv + (size_t)t * (size_t)((n_heads + 2 * n_kv) * hd) + (size_t)j * hd;
    const float *w = j < n_heads ? wq : wk;
    float ss = 0.0f;
    for (int i = threadIdx.x; i < hd; i += blockDim.x)
        ss = fmaf(v[i], v[i], ss);
    ss = block_sum(ss);   // (its barriers: every read above before any write below)
    const float r = 1.0f / sqrtf(ss / (float)hd + eps);
    for (int i = threadIdx.x; i < hd; i += blockDim.x)
        v[i] = v[i] * r * w[i];
}

void
launch_head_norm(float *qkv, const float *wq, const float *wk, int T, int n_heads, int n_kv, int hd, float eps,
                 cudaStream_t s)
{
    HR_LAUNCH(dim3(n_heads + n_kv, T), 128, s, k_head_norm, qkv, wq, wk, n_heads, n_kv, hd, eps);
}

// ---- RoPE + KV-cache write --------------------------------------------------------

__global__ void
k_rope_kv(float *qkv, __half *__restrict__ k_cache, __half *__restrict__ v_cache, const float *__restrict__ inv_freq,
          const int *__restrict__ step, int n_heads, int n_kv, int hd)
{
    const int t = blockIdx.x, pos = step[0] + t, half = hd / 2;
    const int q_dim = n_heads * hd, kv_dim = n_kv * hd, ld = q_dim + 2 * kv_dim;
    float *row = qkv + (size_t)t * ld;
    // rotate pairs (i, i + half) of every q and k head
    for (int idx = threadIdx.x; idx < (n_heads + n_kv) * half; idx += blockDim.x) {
        const int h = idx / half, i = idx % half;
        float sn, cs;
        sincosf((float)pos * inv_freq[i], &sn, &cs);
        float *v = row + (size_t)h * hd;   // k heads follow the q heads
        const float x0 = v[i], x1 = v[i + half];
        v[i] = x0 * cs - x1 * sn;
        v[i + half] = x1 * cs + x0 * sn;
    }
    __syncthreads();
    for (int i = threadIdx.x; i < kv_dim; i += blockDim.x) {
        k_cache[(size_t)pos * kv_dim + i] = __float2half_rn(row[q_dim + i]);
        v_cache[(size_t)pos * kv_dim + i] = __float2half_rn(row[q_dim + kv_dim + i]);
    }
}

void
launch_rope_kv(float *qkv, __half *k_cache, __half *v_cache, const float *inv_freq, const int *step, int T, int n_heads,
               int n_kv, int hd, cudaStream_t s)
{
    HR_LAUNCH(T, 128, s, k_rope_kv, qkv, k_cache, v_cache, inv_freq, step, n_heads, n_kv, hd);
}

// ---- attention ---------------------------------------------------------------------

enum { ATT_MAX_HD = 256, ATT_PER_LANE = ATT_MAX_HD / 32 };

__global__ void __launch_bounds__(128)
k_attn_partial(const float *__restrict__ q, int ldq, const __half *__restrict__ k_cache,
               const __half *__restrict__ v_cache, float *__restrict__ part, const int *__restrict__ step, int n_heads,
               int n_kv, int hd, int window, int split_len, int max_splits)
{
    __shared__ float sq[ATT_MAX_HD];
    __shared__ float sm[4], sl[4];
    __shared__ float sacc[4][ATT_MAX_HD];
    const int h = blockIdx.x, sp = blockIdx.y, t = blockIdx.z;
    const int p = step[0] + t;
    const int j_begin = sp * split_len;
    if (j_begin > p)
        return;   // past this query: the combine kernel does not read it
    const int j_end = min(j_begin + split_len, p + 1);
    const int start = max(j_begin, window > 0 ? max(0, p - window + 1) : 0);
    const int kvh = h / (n_heads / n_kv), kv_dim = n_kv * hd;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const float scale = 1.0f / sqrtf((float)hd);
    for (int d = threadIdx.x; d < hd; d += blockDim.x)
        sq[d] = q[(size_t)t * ldq + (size_t)h * hd + d];
    __syncthreads();

    float m = -INFINITY, l = 0.0f, acc[ATT_PER_LANE];
#pragma unroll
    for (int i = 0; i < ATT_PER_LANE; i++)
        acc[i] = 0.0f;
    for (int j = start + warp; j < j_end; j += 4) {
        const __half *kr = k_cache + (size_t)j * kv_dim + (size_t)kvh * hd;
        float s = 0.0f;
        for (int d = lane; d < hd; d += 32)
            s = fmaf(sq[d], __half2float(kr[d]), s);
        s = warp_sum(s) * scale;
        const float m_new = fmaxf(m, s);
        const float corr = expf(m - m_new), pj = expf(s - m_new);
        l = l * corr + pj;
        const __half *vr = v_cache + (size_t)j * kv_dim + (size_t)kvh * hd;
#pragma unroll
        for (int i = 0; i < ATT_PER_LANE; i++) {
            const int d = lane + 32 * i;
            if (d < hd)
                acc[i] = acc[i] * corr + pj * __half2float(vr[d]);
        }
        m = m_new;
    }
    if (lane == 0) {
        sm[warp] = m;
        sl[warp] = l;
    }
#pragma unroll
    for (int i = 0; i < ATT_PER_LANE; i++) {
        const int d = lane + 32 * i;
        if (d < hd)
            sacc[warp][d] = acc[i];
    }
    __syncthreads();
    float M = fmaxf(fmaxf(sm[0], sm[1]), fmaxf(sm[2], sm[3]));
    float wgt[4], L = 0.0f;
#pragma unroll
    for (int i = 0; i < 4; i++) {
        wgt[i] = sm[i] == -INFINITY ? 0.0f : expf(sm[i] - M);
        L += sl[i] * wgt[i];
    }
    float *o = part + (((size_t)t * n_heads + h) * max_splits + sp) * (size_t)(hd + 2);
    if (threadIdx.x == 0) {
        o[0] = M;
        o[1] = L;
    }
    for (int d = threadIdx.x; d < hd; d += blockDim.x)
        o[2 + d] = sacc[0][d] * wgt[0] + sacc[1][d] * wgt[1] + sacc[2][d] * wgt[2] + sacc[3][d] * wgt[3];
}

__global__ void
k_attn_combine(const float *__restrict__ part, float *__restrict__ out, const int *__restrict__ step, int n_heads,
               int hd, int split_len, int max_splits)
{
    const int h = blockIdx.x, t = blockIdx.y;
    const int p = step[0] + t;
    const int n_splits = min(max_splits, p / split_len + 1);
    const float *base = part + ((size_t)t * n_heads + h) * max_splits * (size_t)(hd + 2);
    float M = -INFINITY;
    for (int s = 0; s < n_splits; s++)
        M = fmaxf(M, base[(size_t)s * (hd + 2)]);
    float L = 0.0f;
    for (int s = 0; s < n_splits; s++) {
        const float ms = base[(size_t)s * (hd + 2)];
        if (ms != -INFINITY)
            L += base[(size_t)s * (hd + 2) + 1] * expf(ms - M);
    }
    const float inv = 1.0f / L;
    for (int d = threadIdx.x; d < hd; d += blockDim.x) {
        float a = 0.0f;
        for (int s = 0; s < n_splits; s++) {
            const float ms = base[(size_t)s * (hd + 2)];
            if (ms != -INFINITY)
                a += base[(size_t)s * (hd + 2) + 2 + d] * expf(ms - M);
        }
        out[(size_t)t * n_heads * hd + (size_t)h * hd + d] = a * inv;
    }
}

void
launch_attention(const float *q, int ldq, const __half *k_cache, const __half *v_cache, float *part, float *out,
                 const int *step, int T, int n_heads, int n_kv, int hd, int window, int split_len, int max_splits,
                 cudaStream_t s)
{
    dim3 g1((unsigned)n_heads, (unsigned)max_splits, (unsigned)T);
    HR_LAUNCH(g1, 128, s, k_attn_partial, q, ldq, k_cache, v_cache, part, step, n_heads, n_kv, hd, window, split_len,
                                      max_splits);
    launch_attention_combine(part, out, step, T, n_heads, hd, split_len, max_splits, s);
}

void
launch_attention_combine(const float *part, float *out, const int *step, int T, int n_heads, int hd, int split_len,
                         int max_splits, cudaStream_t s)
{
    dim3 g2((unsigned)n_heads, (unsigned)T);
    HR_LAUNCH(g2, 128, s, k_attn_combine, part, out, step, n_heads, hd, split_len, max_splits);
}

// ---- argmax --------------------------------------------------------------------------

__global__ void __launch_bounds__(1024)
k_argmax(const float *__restrict__ x, int n, int *__restrict__ out)
{
    __shared__ float sv[32];
    __shared__ int si[32];
    float best = -FLT_MAX;
    int bi = 0x7fffffff;
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        const float v = x[i];
        if (v > best) {   // NaN never wins; first index on ties within a thread
            best = v;
            bi = i;
        }
    }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
        const float ov = __shfl_xor_sync(0xffffffffu, best, o);
        const int oi = __shfl_xor_sync(0xffffffffu, bi, o);
        if (ov > best || (ov == best && oi < bi)) {
            best = ov;
            bi = oi;
        }
    }
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    if (lane == 0) {
        sv[warp] = best;
        si[warp] = bi;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        for (int w = 1; w < (int)(blockDim.x >> 5); w++)
            if (sv[w] > best || (sv[w] == best && si[w] < bi)) {
                best = sv[w];
                bi = si[w];
            }
        *out = bi == 0x7fffffff ? 0 : bi;
    }
}

void
launch_argmax(const float *x, int n, int *out, cudaStream_t s)
{
    HR_LAUNCH(1, 1024, s, k_argmax, x, n, out);
}

// ---- the quantizer's loss ----------------------------------------------------------------

__global__ void __launch_bounds__(256)
k_sq_diff(const float *__restrict__ a, const float *__restrict__ t, int width, double *__restrict__ sums)
{
    __shared__ double part[256];
    const float *ar = a + (size_t)blockIdx.x * width, *tr = t + (size_t)blockIdx.x * width;
    double acc = 0.0;
    for (int k = threadIdx.x; k < width; k += blockDim.x) {
        const double d = (double)ar[k] - (double)tr[k];
        acc += d * d;
    }
    part[threadIdx.x] = acc;
    __syncthreads();
    for (int o = blockDim.x / 2; o > 0; o >>= 1) {   // a fixed tree: the same sum every run
        if ((int)threadIdx.x < o)
            part[threadIdx.x] += part[threadIdx.x + o];
        __syncthreads();
    }
    if (threadIdx.x == 0)
        sums[blockIdx.x] = part[0];
}

void
launch_sq_diff(const float *a, const float *t, int width, int n, double *sums, cudaStream_t s)
{
    if (n > 0)
        HR_LAUNCH((unsigned)n, 256, s, k_sq_diff, a, t, width, sums);
}

// A group's RTN scale and zero point from its range (with 0), as the CPU's
// hr_awq_fake_quant_row: (max - min) / qmax, at least 1e-7, rounded up to
// FP16; z = -round(min / scale) clamped to [0, qmax].
__device__ __forceinline__ void
fq_params(float mn, float mx, float qmax, float *sc_out, float *z_out)
{
    float sc = (mx - mn) / qmax;
    if (!(sc >= 1e-7f))
        sc = 1e-7f;
    sc = __half2float(__float2half_ru(sc));   // the smallest FP16 >= sc
    *sc_out = sc;
    *z_out = fminf(fmaxf(-roundf(mn / sc), 0.0f), qmax);
}

// The warp's min and max (with 0) of its lanes' mn, mx, in every lane.
__device__ __forceinline__ void
warp_range(float *mn, float *mx)
{
    for (int o = 16; o > 0; o >>= 1) {
        *mn = fminf(*mn, __shfl_xor_sync(0xffffffffu, *mn, o));
        *mx = fmaxf(*mx, __shfl_xor_sync(0xffffffffu, *mx, o));
    }
}

// v quantized and back: (clamp(round(v / sc) + z, 0, qmax) - z) * sc.
__device__ __forceinline__ float
fq_value(float v, float sc, float z, float qmax)
{
    const float q = fminf(fmaxf(roundf(v / sc) + z, 0.0f), qmax);
    return (q - z) * sc;
}

// One row per block, a warp per group of `group` columns in turn: v = t * s,
// the group's range with 0, its scale (max - min) / qmax (at least 1e-7)
// rounded up to FP16, its zero point, then ((round(v / scale) + z clamped)
// - z) * scale / s (- t): the very IEEE operations of the CPU's
// hr_awq_fake_quant_row (no product here meets a sum, so no FMA forms).
__global__ void __launch_bounds__(128)
k_scale_quant(const float *__restrict__ t, int K, const float *__restrict__ s, int group, float qmax, int delta,
              __half *__restrict__ w, int ldw)
{
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const float *tr = t + (size_t)blockIdx.x * K;
    __half *wr = w + (size_t)blockIdx.x * ldw;
    for (int g0 = warp * group; g0 < K; g0 += 4 * group) {
        float mn = 0.0f, mx = 0.0f;
        for (int i = lane; i < group; i += 32) {
            const float v = tr[g0 + i] * s[g0 + i];
            mn = fminf(mn, v);
            mx = fmaxf(mx, v);
        }
        warp_range(&mn, &mx);
        float sc, z;
        fq_params(mn, mx, qmax, &sc, &z);
        for (int i = lane; i < group; i += 32) {
            float o = fq_value(tr[g0 + i] * s[g0 + i], sc, z, qmax);
            o = o / s[g0 + i];
            if (delta)
                o = o - tr[g0 + i];
            wr[g0 + i] = __float2half_rn(o);
        }
    }
}

void
launch_scale_quant(const float *t, int rows, int K, const float *s, int group, int bits, bool delta, __half *w,
                   int ldw, cudaStream_t st)
{
    if (rows > 0)
        HR_LAUNCH((unsigned)rows, 128, st, k_scale_quant, t, K, s, group, (float)((1 << bits) - 1), delta ? 1 : 0,
                  w, ldw);
}

// The clip search (cpu-awq.h's hr_awq_clip_search, in FP32 here): C[gi] =
// sum over t of x_g^T x_g, a block per (group, row i), the sums in double.
__global__ void __launch_bounds__(128)
k_clip_gram(const float *__restrict__ x, int nt, size_t ldx, int g, float *__restrict__ C)
{
    const int gi = blockIdx.x, i = blockIdx.y, g0 = gi * g;
    for (int j = threadIdx.x; j < g; j += blockDim.x) {
        double acc = 0.0;
        for (int t = 0; t < nt; t++)
            acc += (double)x[(size_t)t * ldx + g0 + i] * (double)x[(size_t)t * ldx + g0 + j];
        C[((size_t)gi * g + i) * g + j] = (float)acc;
    }
}

// A warp per (row, group): per limit m = m0 (1 - s / grid), d = Q(clamp(w, m))
// - w in shared memory, then err = sum_j d_j (sum_i C[i][j] d_i) (C is
// symmetric; lane j reads row i's C[i][j], coalesced), reduced over the warp.
// g <= 256.
__global__ void __launch_bounds__(128)
k_clip_search(const float *__restrict__ w, int N, int K, const float *__restrict__ C, int g, float qmax, int steps,
              int grid, float *__restrict__ lim)
{
    __shared__ float sw[4][256], sd[4][256];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int gi = blockIdx.x, n = blockIdx.y * 4 + warp, ng = K / g;
    if (n >= N)   // (a whole warp: no shuffle below is left half-done)
        return;
    const float *wr = w + (size_t)n * K + (size_t)gi * g;
    const float *Cg = C + (size_t)gi * g * g;
    float m0 = 0.0f;
    for (int i = lane; i < g; i += 32) {
        sw[warp][i] = wr[i];
        m0 = fmaxf(m0, fabsf(wr[i]));
    }
    for (int o = 16; o > 0; o >>= 1)
        m0 = fmaxf(m0, __shfl_xor_sync(0xffffffffu, m0, o));
    float best = INFINITY, best_m = m0;
    for (int s = 0; s < steps; s++) {
        const float m = m0 * (1.0f - (float)s / (float)grid);
        float mn = 0.0f, mx = 0.0f;
        for (int i = lane; i < g; i += 32) {
            const float v = fminf(fmaxf(sw[warp][i], -m), m);
            mn = fminf(mn, v);
            mx = fmaxf(mx, v);
        }
        warp_range(&mn, &mx);
        float sc, z;
        fq_params(mn, mx, qmax, &sc, &z);
        for (int i = lane; i < g; i += 32)
            sd[warp][i] = fq_value(fminf(fmaxf(sw[warp][i], -m), m), sc, z, qmax) - sw[warp][i];
        __syncwarp();
        float err = 0.0f;
        for (int j = lane; j < g; j += 32) {
            float r = 0.0f;
            for (int i = 0; i < g; i++)
                r += Cg[(size_t)i * g + j] * sd[warp][i];
            err += r * sd[warp][j];
        }
        for (int o = 16; o > 0; o >>= 1)
            err += __shfl_xor_sync(0xffffffffu, err, o);
        if (err < best) {   // every lane holds the same sum: the same choice
            best = err;
            best_m = m;
        }
        __syncwarp();   // sd is rewritten by the next step
    }
    if (lane == 0)
        lim[(size_t)n * ng + gi] = best_m;
}

void
launch_clip_search(const float *w, int N, int K, const float *x, size_t ldx, int nt, int g, int bits, int steps,
                   int grid, float *C, float *lim, cudaStream_t st)
{
    if (N < 1 || K < g || nt < 1)
        return;
    HR_LAUNCH(dim3((unsigned)(K / g), (unsigned)g), 128, st, k_clip_gram, x, nt, ldx, g, C);
    HR_LAUNCH(dim3((unsigned)(K / g), (unsigned)((N + 3) / 4)), 128, st, k_clip_search, w, N, K, C, g,
              (float)((1 << bits) - 1), steps, grid, lim);
}

// The search's inputs kept on the device: per column the sum over the rows,
// in order, of |t| (a thread per column, double), and the fold t[r] /= s.
__global__ void __launch_bounds__(128)
k_col_abs_sum(const float *__restrict__ t, int64_t rows, int width, double *__restrict__ sum)
{
    const int k = blockIdx.x * blockDim.x + threadIdx.x;
    if (k >= width)
        return;
    double acc = 0.0;
    for (int64_t r = 0; r < rows; r++)
        acc += fabsf(t[(size_t)r * width + k]);
    sum[k] = acc;
}

__global__ void __launch_bounds__(256)
k_div_cols(float *__restrict__ t, int width, const float *__restrict__ s)
{
    float *row = t + (size_t)blockIdx.x * width;
    for (int k = threadIdx.x; k < width; k += blockDim.x)
        row[k] = row[k] / s[k];
}

void
launch_col_abs_sum(const float *t, int64_t rows, int width, double *sum, cudaStream_t st)
{
    if (width > 0)
        HR_LAUNCH((unsigned)((width + 127) / 128), 128, st, k_col_abs_sum, t, rows, width, sum);
}

void
launch_div_cols(float *t, int64_t rows, int width, const float *s, cudaStream_t st)
{
    if (rows > 0)
        HR_LAUNCH((unsigned)rows, 256, st, k_div_cols, t, width, s);
}

// ---- FP32 GEMM for the quantizer ---------------------------------------------------------

__global__ void __launch_bounds__(256)
k_gemm_f32(const float *__restrict__ w, int N, int K, const float *__restrict__ bias, const float *__restrict__ x,
           int T, float *__restrict__ out)
{
    __shared__ float sx[16][64 + 1];   // [k][token]
    __shared__ float sw[16][64 + 1];   // [k][row]
    const int tx = threadIdx.x & 15, ty = threadIdx.x >> 4;
    const int m0 = blockIdx.y * 64, n0 = blockIdx.x * 64;
    float acc[4][4] = {};
    for (int k0 = 0; k0 < K; k0 += 16) {
        for (int idx = threadIdx.x; idx < 64 * 16; idx += 256) {
            const int r = idx / 16, c = idx % 16, k = k0 + c;
            sx[c][r] = (m0 + r < T && k < K) ? x[(size_t)(m0 + r) * K + k] : 0.0f;
            sw[c][r] = (n0 + r < N && k < K) ? w[(size_t)(n0 + r) * K + k] : 0.0f;
        }
        __syncthreads();
#pragma unroll
        for (int c = 0; c < 16; c++) {
            float a[4], b[4];
#pragma unroll
            for (int i = 0; i < 4; i++) {
                a[i] = sx[c][ty * 4 + i];
                b[i] = sw[c][tx * 4 + i];
            }
#pragma unroll
            for (int i = 0; i < 4; i++)
#pragma unroll
                for (int j = 0; j < 4; j++)
                    acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
        }
        __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < 4; i++) {
        const int t = m0 + ty * 4 + i;
#pragma unroll
        for (int j = 0; j < 4; j++) {
            const int n = n0 + tx * 4 + j;
            if (t < T && n < N)
                out[(size_t)t * N + n] = acc[i][j] + (bias ? bias[n] : 0.0f);
        }
    }
}

void
launch_gemm_f32(const float *w, int N, int K, const float *bias, const float *x, int T, float *out, cudaStream_t s)
{
    dim3 grid((unsigned)((N + 63) / 64), (unsigned)((T + 63) / 64));
    HR_LAUNCH(grid, 256, s, k_gemm_f32, w, N, K, bias, x, T, out);
}

// ---- bandwidth probe ------------------------------------------------------------------

__global__ void
k_read_sum(const uint4 *__restrict__ buf, size_t n, float *out)
{
    uint32_t acc = 0;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        const uint4 v = __ldg(buf + i);
        acc ^= v.x ^ v.y ^ v.z ^ v.w;
    }
    if (acc == 0x12345678u)   // practically never: keeps the loads alive
        out[0] = (float)acc;
}

void
launch_read_sum(const uint4 *buf, size_t n, float *out, int n_blocks, cudaStream_t s)
{
    HR_LAUNCH(n_blocks, 256, s, k_read_sum, buf, n, out);
}

}  // namespace hrcuda
