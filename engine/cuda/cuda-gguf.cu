// cuda-gguf.cu — GGUF block weights on CUDA (issue 23), without a lossy step:
// the 4-bit types (Q4_0, Q4_1, Q4_K) as nibbles with an FP32 scale and
// offset per group of 32 (LIN_Q4F), the int8-exact types (Q8_0, Q5_0, Q5_1,
// Q5_K, Q6_K) as int8 with an FP32 scale per 32 or 16 and, for Q5_1/Q5_K, an
// FP32 offset per 32 (LIN_I8); the factors are ggml's own
// (engine/gguf-blocks.h decodes them at load). Nothing is rounded to FP16.
//
// Opt-in (HEARTH_CUDA_GGUF=1) until a device run has checked it: written in
// a session without a GPU; tests/test-cuda-emu-model runs it on the host
// emulator against the CPU backend in CI.
//
//  k_gemv_gguf   grid (ceil(rows_out/4), T), block 128: a warp a row, a lane
//                a group of 32 inputs at a time (16 or 32 weight bytes, 32
//                activations), per group acc += s*Σ q·x + o*Σ x; the warp's
//                sum by shuffles; epilogues as k_gemv (store + bias,
//                residual, gate|up SiLU·mul), for steps below 8 tokens.
//                Prefill of 8 tokens and more: k_gemm_wmma's GGUF
//                tile loader (cuda-kernels.cu), s*q + o in FP32 rounded to
//                FP16 in shared memory as the 4-bit AWQ loader does.
//  k_embed_gguf  grid T, block 256: one table row decoded to FP32.
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
    } else {
        const int8_t *q = w.q8 + (size_t)r * w.cols + 32 * g;
        const uint4 u0 = *reinterpret_cast<const uint4 *>(q), u1 = *reinterpret_cast<const uint4 *>(q + 16);
        int8_t v[32];
        memcpy(v, &u0, 16);
        memcpy(v + 16, &u1, 16);
        float acc;
        if (w.per == 16) {
            float a0 = 0.0f, a1 = 0.0f;
#pragma unroll
            for (int k = 0; k < 16; k++) {
                a0 += (float)v[k] * xg[k];
                a1 += (float)v[k + 16] * xg[k + 16];
            }
            const float *sc = w.s8 + (size_t)r * (w.cols / 16) + 2 * g;
            acc = sc[0] * a0 + sc[1] * a1;
        } else {
#pragma unroll
            for (int k = 0; k < 32; k++)
                qx += (float)v[k] * xg[k];
            acc = w.s8[(size_t)r * (w.cols / 32) + g] * qx;
        }
        if (w.o8) {
#pragma unroll
            for (int k = 0; k < 32; k++)
                sx += xg[k];
            acc += w.o8[(size_t)r * (w.cols / 32) + g] * sx;
        }
        return acc;
    }
}

template <int KIND, int EPI>
__global__ void __launch_bounds__(128)
k_gemv_gguf(DLinear w, const float *__restrict__ x, int ldx, const float *__restrict__ bias, float *out, int ldo,
            int rows_out)
{
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int r = blockIdx.x * 4 + warp, t = blockIdx.y;
    if (r >= rows_out)
        return;   // the whole warp: no block-wide barrier follows
    const float *xr = x + (size_t)t * ldx;
    const int ng = w.cols / 32;
    float a0 = 0.0f, a1 = 0.0f;
    for (int g = lane; g < ng; g += 32) {
        a0 += group_dot<KIND>(w, r, g, xr);
        if (EPI == EPI_SILU_MUL)
            a1 += group_dot<KIND>(w, r + rows_out, g, xr);
    }
    a0 = warp_sum(a0);
    if (EPI == EPI_SILU_MUL)
        a1 = warp_sum(a1);
    if (lane != 0)
        return;
    float *o = out + (size_t)t * ldo + r;
    if (EPI == EPI_SILU_MUL) {
        *o = a0 / (1.0f + expf(-a0)) * a1;
    } else {
        const float v = a0 + (bias ? bias[r] : 0.0f);
        *o = EPI == EPI_RESIDUAL ? *o + v : v;
    }
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

void
launch_gemv_gguf(const DLinear &w, const float *x, int ldx, int T, const float *bias, float *out, int ldo,
                 Epilogue epi, cudaStream_t s)
{
    const int rows_out = epi == EPI_SILU_MUL ? w.rows / 2 : w.rows;
    dim3 grid((unsigned)((rows_out + 3) / 4), (unsigned)T);
#define HR_GGUF(KIND)                                                                                              \
    switch (epi) {                                                                                                 \
    case EPI_STORE: HR_LAUNCH(grid, 128, s, (k_gemv_gguf<KIND, EPI_STORE>), w, x, ldx, bias, out, ldo, rows_out); break; \
    case EPI_RESIDUAL:                                                                                             \
        HR_LAUNCH(grid, 128, s, (k_gemv_gguf<KIND, EPI_RESIDUAL>), w, x, ldx, bias, out, ldo, rows_out);          \
        break;                                                                                                     \
    case EPI_SILU_MUL:                                                                                             \
        HR_LAUNCH(grid, 128, s, (k_gemv_gguf<KIND, EPI_SILU_MUL>), w, x, ldx, bias, out, ldo, rows_out);          \
        break;                                                                                                     \
    }
    if (w.kind == LIN_Q4F) {
        HR_GGUF(LIN_Q4F)
    } else {
        HR_GGUF(LIN_I8)
    }
#undef HR_GGUF
}

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

}  // namespace hrcuda
