// cuda-gguf.h — GGUF block weights on CUDA (issue 23), without a lossy step:
// Q4_0 linears in the AWQ Q4 layout, exactly ({d, 8} per 32: cuda-repack.cu),
// so every 4-bit kernel and opt-in path takes them; the other 4-bit types
// (Q4_1, Q4_K; and a Q4_0 embedding) as nibbles with an FP32 scale and
// offset per group of 32 (LIN_Q4F), the int8-exact types (Q8_0, Q5_0, Q5_1,
// Q5_K, Q6_K) as int8 with an FP32 scale per 32 or 16 and, for Q5_1/Q5_K, an
// FP32 offset per 32 (LIN_I8); the factors are ggml's own, decoded at load
// by engine/gguf-blocks.c (cuda-backend.cu: upload_ggml). Nothing is rounded
// to FP16 in memory. Device functions for cuda-kernels.cu, which runs them
// in its kernels:
//  - k_gemv's GGUF rows (row_dot_gguf): a lane a group of 32 inputs at a time
//    (16 or 32 weight bytes, 32 activations), s*Σ q·x + o*Σ x per group;
//    steps below 8 tokens, and gate|up with SiLU·mul;
//  - k_gemm_wmma's GGUF tile loader (8 tokens and more): s*q + o in FP32,
//    rounded to FP16 in shared memory as the 4-bit AWQ loader does;
//  - k_embed_gguf: one table row decoded to FP32.
// Opt-in (HEARTH_CUDA_GGUF=1) until a device run has checked it: written in
// a session without a GPU; test-cuda-emu-model runs it on the host emulator
// against the CPU backend in CI.
#pragma once

#include "cuda-device.h"
#include "cuda-internal.h"

namespace hrcuda {

// Σ w·x over group g (32 inputs) of row r: s*Σ q·x + o*Σ x.
template <int KIND>
__device__ __forceinline__ float
group_dot(const DLinear &w, int r, int g, const float *__restrict__ x)
{
    const float *xg = x + 32 * g;
    float qx = 0.0f, sx = 0.0f;
    if (KIND == LIN_Q4F) {
        const uint4 u = *reinterpret_cast<const uint4 *>(w.nib + (size_t)r * (w.cols / 2) + 16 * g);
        const uint32_t words[4] = { u.x, u.y, u.z, u.w };
#pragma unroll
        for (int i = 0; i < 4; i++)
#pragma unroll
            for (int b = 0; b < 8; b++) {
                const int k = 8 * i + b;   // byte k/2 of the group: values k (low), k + 1 (high)
                const float xv = xg[k];
                qx += (float)((words[i] >> (4 * b)) & 15u) * xv;
                sx += xv;
            }
        const float2 so = w.so[(size_t)r * (w.cols / 32) + g];
        return so.x * qx + so.y * sx;
    } else {   // LIN_I8
        const int8_t *q = w.q8 + (size_t)r * w.cols + 32 * g;
        const uint4 u0 = *reinterpret_cast<const uint4 *>(q), u1 = *reinterpret_cast<const uint4 *>(q + 16);
        int8_t v[32];
        memcpy(v, &u0, 16);
        memcpy(v + 16, &u1, 16);
        float a0 = 0.0f, a1 = 0.0f;   // inputs 0..15, 16..31
#pragma unroll
        for (int k = 0; k < 16; k++) {
            a0 += (float)v[k] * xg[k];
            a1 += (float)v[k + 16] * xg[k + 16];
            sx += xg[k] + xg[k + 16];
        }
        const float acc = w.per == 16 ? w.s8[(size_t)r * (w.cols / 16) + 2 * g] * a0 +
                                            w.s8[(size_t)r * (w.cols / 16) + 2 * g + 1] * a1
                                      : w.s8[(size_t)r * (w.cols / 32) + g] * (a0 + a1);
        return w.o8 ? acc + w.o8[(size_t)r * (w.cols / 32) + g] * sx : acc;
    }
}

// Σ w·x over row r, this lane's groups (the warp sums the lanes).
template <int KIND>
__device__ __forceinline__ float
row_dot_gguf(const DLinear &w, int r, const float *__restrict__ x, int lane)
{
    float acc = 0.0f;
    for (int g = lane; g < w.cols / 32; g += 32)
        acc += group_dot<KIND>(w, r, g, x);
    return acc;
}

template <int KIND>
__global__ void __launch_bounds__(256)
k_embed_gguf(DLinear w, const int *__restrict__ ids, int dim, float *__restrict__ x)
{
    const int t = blockIdx.x, r = ids[t];
    for (int i = threadIdx.x; i < dim; i += blockDim.x) {
        float v;
        if (KIND == LIN_Q4F) {
            const uint8_t b = w.nib[(size_t)r * (w.cols / 2) + i / 2];
            const float2 so = w.so[(size_t)r * (w.cols / 32) + i / 32];
            v = so.x * (float)((i & 1) ? b >> 4 : b & 15) + so.y;
        } else {
            v = w.s8[(size_t)r * (w.cols / w.per) + i / w.per] * (float)w.q8[(size_t)r * w.cols + i];
            if (w.o8)
                v += w.o8[(size_t)r * (w.cols / 32) + i / 32];
        }
        x[(size_t)t * dim + i] = v;
    }
}

}  // namespace hrcuda
