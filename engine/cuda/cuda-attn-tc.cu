// cuda-attn-tc.cu — prefill attention on the tensor cores (issue 18), flash-
// attention style: a block takes 32 consecutive queries of one head and
// streams the keys in tiles of 32; S = Q K^T and O += P V are WMMA products
// (FP16 operands, FP32 accumulation), the online softmax runs in FP32 in
// shared memory between them, and O is written once at the end (no split
// partials). Opt-in with HEARTH_CUDA_ATTN=tiled for prompts of 16 tokens and
// more, head_dim 64 or 128. Written in a session without a GPU:
// tests/test-cuda-emu.cpp runs it on the host (its WMMA through the API only,
// which tests/cuda-emu.h emulates), not yet on a device.
//
//  k_attn_tc<HD>  grid (n_heads, ceil(T / 32)), block 128 (4 warps);
//                 shared: Q, K, V tiles FP16 [32][HD], S FP32 [32][32],
//                 P FP16 [32][32], O FP32 [32][HD] (46 KiB at HD = 128).
//                 Per key tile: K loaded, S by the 4 warps (a 16 x 16 quadrant
//                 each), masks and the softmax by a warp per 8 rows (a lane a
//                 key), O rescaled per row, V loaded, O += P V (a warp per
//                 16 rows x HD/2 columns).
#include "cuda-device.h"
#include "cuda-internal.h"

#ifndef HEARTH_CUDA_EMU
#include <mma.h>
#endif

namespace hrcuda {

namespace wmt = nvcuda::wmma;

enum { TC_Q = 32, TC_K = 32, TC_THREADS = 128 };

bool
attention_tc_ok(int n_heads, int n_kv, int hd)
{
    return n_kv >= 1 && n_heads % n_kv == 0 && (hd == 64 || hd == 128);
}

// Rows j0 .. j0+TC_K-1 of one KV head's cache into a [TC_K][HD] FP16 tile,
// 16 bytes a thread at a time, zero past j_end.
template <int HD>
__device__ __forceinline__ void
load_tile(__half *tile, const __half *base, int j0, int j_end, int kv_dim)
{
    constexpr int U = HD / 8;   // 16-byte units a row
    for (int i = threadIdx.x; i < TC_K * U; i += TC_THREADS) {
        const int r = i / U, u = i % U, j = j0 + r;
        uint4 v = make_uint4(0u, 0u, 0u, 0u);
        if (j < j_end)
            v = __ldg(reinterpret_cast<const uint4 *>(base + (size_t)j * kv_dim) + u);
        reinterpret_cast<uint4 *>(tile)[i] = v;
    }
}

template <int HD>
__global__ void __launch_bounds__(TC_THREADS)
k_attn_tc(const float *__restrict__ q, int ldq, const __half *__restrict__ k_cache, const __half *__restrict__ v_cache,
          float *__restrict__ out, const int *__restrict__ step, int T, int n_heads, int n_kv, int window)
{
    __shared__ __align__(32) __half sQ[TC_Q * HD];
    __shared__ __align__(32) __half sK[TC_K * HD];
    __shared__ __align__(32) __half sV[TC_K * HD];
    __shared__ __align__(32) float sS[TC_Q * TC_K];
    __shared__ __align__(32) __half sP[TC_Q * TC_K];
    __shared__ __align__(32) float sO[TC_Q * HD];
    __shared__ float s_m[TC_Q], s_l[TC_Q], s_corr[TC_Q];
    const int h = blockIdx.x, t0 = blockIdx.y * TC_Q, tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
    const int G = n_heads / n_kv, kvh = h / G, kv_dim = n_kv * HD;
    const int nq = min((int)TC_Q, T - t0);
    const int p_first = step[0] + t0, p_last = p_first + nq - 1;
    const float scale = 1.0f / sqrtf((float)HD);
    // the queries, pre-scaled, as FP16 (rows past T zero); O, m, l cleared
    for (int i = tid; i < TC_Q * HD; i += TC_THREADS) {
        const int r = i / HD, d = i % HD;
        sQ[i] = __float2half_rn(r < nq ? q[(size_t)(t0 + r) * ldq + (size_t)h * HD + d] * scale : 0.0f);
        sO[i] = 0.0f;
    }
    if (tid < TC_Q) {
        s_m[tid] = -INFINITY;
        s_l[tid] = 0.0f;
    }
    const int j_end = p_last + 1;
    const int start = window > 0 ? max(0, p_first - window + 1) : 0;
    const __half *kb = k_cache + (size_t)kvh * HD, *vb = v_cache + (size_t)kvh * HD;
    __syncthreads();
    for (int j0 = start; j0 < j_end; j0 += TC_K) {
        load_tile<HD>(sK, kb, j0, j_end, kv_dim);   // keys past j_end zero
        __syncthreads();
        // S = Q K^T: warp w the quadrant rows 16*(w/2), keys 16*(w%2)
        {
            wmt::fragment<wmt::accumulator, 16, 16, 16, float> s;
            wmt::fill_fragment(s, 0.0f);
            const int r0 = 16 * (warp >> 1), c0 = 16 * (warp & 1);
#pragma unroll
            for (int k = 0; k < HD; k += 16) {
                wmt::fragment<wmt::matrix_a, 16, 16, 16, __half, wmt::row_major> a;
                wmt::fragment<wmt::matrix_b, 16, 16, 16, __half, wmt::col_major> b;
                wmt::load_matrix_sync(a, sQ + r0 * HD + k, HD);
                wmt::load_matrix_sync(b, sK + c0 * HD + k, HD);   // B[k][j] = K[j][k]
                wmt::mma_sync(s, a, b, s);
            }
            wmt::store_matrix_sync(sS + r0 * TC_K + c0, s, TC_K, wmt::mem_row_major);
        }
        __syncthreads();
        // masks and the online softmax: a warp per 8 rows, a lane per key
        for (int r = warp; r < TC_Q; r += TC_THREADS / 32) {
            const int p = p_first + r, j = j0 + lane;
            const bool keep = r < nq && j < j_end && j <= p && (window <= 0 || j > p - window);
            const float sv = keep ? sS[r * TC_K + lane] : -INFINITY;
            const float m_old = s_m[r], m_new = fmaxf(m_old, warp_max(sv));
            const float e = keep && m_new != -INFINITY ? expf(sv - m_new) : 0.0f;
            sP[r * TC_K + lane] = __float2half_rn(e);
            const float sum = warp_sum(e);
            if (lane == 0) {
                const float corr = m_old == -INFINITY ? (m_new == -INFINITY ? 1.0f : 0.0f) : expf(m_old - m_new);
                s_corr[r] = corr;
                s_l[r] = s_l[r] * corr + sum;
                s_m[r] = m_new;
            }
        }
        load_tile<HD>(sV, vb, j0, j_end, kv_dim);
        __syncthreads();
        // O *= corr, per row
        for (int i = tid; i < TC_Q * HD; i += TC_THREADS)
            sO[i] *= s_corr[i / HD];
        __syncthreads();
        // O += P V: warp w rows 16*(w/2), columns HD/2*(w%2) .. + HD/2
        {
            const int r0 = 16 * (warp >> 1), cb = (HD / 2) * (warp & 1);
            wmt::fragment<wmt::matrix_a, 16, 16, 16, __half, wmt::row_major> a[TC_K / 16];
#pragma unroll
            for (int k = 0; k < TC_K / 16; k++)
                wmt::load_matrix_sync(a[k], sP + r0 * TC_K + 16 * k, TC_K);
#pragma unroll
            for (int c = 0; c < HD / 2; c += 16) {
                wmt::fragment<wmt::accumulator, 16, 16, 16, float> o;
                wmt::load_matrix_sync(o, sO + r0 * HD + cb + c, HD, wmt::mem_row_major);
#pragma unroll
                for (int k = 0; k < TC_K / 16; k++) {
                    wmt::fragment<wmt::matrix_b, 16, 16, 16, __half, wmt::row_major> b;
                    wmt::load_matrix_sync(b, sV + 16 * k * HD + cb + c, HD);   // B[k][d] = V[k][d]
                    wmt::mma_sync(o, a[k], b, o);
                }
                wmt::store_matrix_sync(sO + r0 * HD + cb + c, o, HD, wmt::mem_row_major);
            }
        }
        __syncthreads();   // sK, sV, sS, sP and sO are reused by the next tile
    }
    for (int i = tid; i < nq * HD; i += TC_THREADS) {
        const int r = i / HD, d = i % HD;
        const float l = s_l[r];
        out[(size_t)(t0 + r) * n_heads * HD + (size_t)h * HD + d] = l > 0.0f ? sO[i] / l : 0.0f;
    }
}

void
launch_attention_tc(const float *q, int ldq, const __half *k_cache, const __half *v_cache, float *out,
                    const int *step, int T, int n_heads, int n_kv, int hd, int window, cudaStream_t s)
{
    dim3 grid((unsigned)n_heads, (unsigned)((T + TC_Q - 1) / TC_Q));
    if (hd == 64)
        HR_LAUNCH(grid, TC_THREADS, s, (k_attn_tc<64>), q, ldq, k_cache, v_cache, out, step, T, n_heads, n_kv, window);
    else
        HR_LAUNCH(grid, TC_THREADS, s, (k_attn_tc<128>), q, ldq, k_cache, v_cache, out, step, T, n_heads, n_kv, window);
}

}  // namespace hrcuda
