// cuda-device.h — device helpers the CUDA kernel files share (C++, nvcc only),
// and the int8-activation arithmetic of the 4-bit decode GEMV, written
// __host__ __device__ so that a host-only test holds it to a reference.
#pragma once

#include <cstdint>
#include <cstring>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

namespace hrcuda {

// (HEARTH_CUDA_EMU: compiled for the host by tests/test-cuda-emu.cpp.)
#if defined(__CUDACC__) || defined(HEARTH_CUDA_EMU)
__device__ __forceinline__ uint32_t
and_or(uint32_t a, uint32_t mask, uint32_t bits)
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 750
    uint32_t d;
    // lop3 with immLut 0xEA = (a & b) | c
    asm("lop3.b32 %0, %1, %2, %3, 0xEA;" : "=r"(d) : "r"(a), "r"(mask), "r"(bits));
    return d;
#else
    return (a & mask) | bits;
#endif
}

__device__ __forceinline__ __half2
u32_as_half2(uint32_t u)
{
    __half2 h;
    memcpy(&h, &u, 4);
    return h;
}

// Inputs (2j, 2j+1) of an interleaved word as the half2 1024 + q.
__device__ __forceinline__ __half2
nibble_pair(uint32_t w, int j)
{
    return u32_as_half2(and_or(w >> (4 * j), 0x000F000Fu, 0x64006400u));
}

// Eight weights s*(q - z) as halves, input order: (1024+q) - (1024+z) is exact.
__device__ __forceinline__ void
dq8_h(uint32_t w, __half2 sz, __half2 out[4])
{
    const __half2 s2 = __half2half2(__low2half(sz));
    const __half2 z2 = __hadd2(__half2half2(__high2half(sz)), __float2half2_rn(1024.0f));
#pragma unroll
    for (int j = 0; j < 4; j++)
        out[j] = __hmul2(__hsub2(nibble_pair(w, j), z2), s2);
}

template <typename T>
__device__ __forceinline__ T
warp_sum(T v)
{
#pragma unroll
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

// x[k..k+8) with zeros past K; 128-bit loads when aligned and whole.
__device__ __forceinline__ void
load_x8(const float *xr, int k, int K, bool vec, float f[8])
{
    if (vec && k + 8 <= K) {
        float4 a = *reinterpret_cast<const float4 *>(xr + k);
        float4 b = *reinterpret_cast<const float4 *>(xr + k + 4);
        f[0] = a.x; f[1] = a.y; f[2] = a.z; f[3] = a.w;
        f[4] = b.x; f[5] = b.y; f[6] = b.z; f[7] = b.w;
    } else {
#pragma unroll
        for (int e = 0; e < 8; e++)
            f[e] = k + e < K ? xr[k + e] : 0.0f;
    }
}

__device__ __forceinline__ float
warp_max(float v)
{
#pragma unroll
    for (int o = 16; o > 0; o >>= 1)
        v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}
#endif

// ---- int8 activations for the 4-bit decode GEMV (PATH_GEMV_Q8) ---------------
//
// The activations of a step are rounded once per linear to int8 in blocks of
// 32 inputs, as the CPU's decode does (d = max|x| / 127, xq = rne(x / d)),
// and stored so that one 128-bit load of Q4 weights (32 inputs, cuda-internal.h)
// meets its 32 int8 values in two 128-bit loads with no shuffle: within each
// 8-input word, (word & 0x0F0F0F0F) holds the nibbles of inputs {0,4,1,5}
// and ((word >> 4) & 0x0F0F0F0F) those of {2,6,3,7} (slot order 0 2 4 6 1 3
// 5 7, two slots a byte), so the 8 int8 values of a word are stored in that
// order and each 32-bit half meets its nibbles in one dp4a.
// Per block, {d, d * sum(xq)}: the zero point's term uses the rounded x, so
// the rounding error enters as (q - z) * (d*xq - x), centred on zero.

// Byte position, within its word's 8 bytes, of input e (0..7) of the word.
__host__ __device__ __forceinline__ int
q8_pos(int e)
{
    return e < 4 ? 2 * e : 2 * (e - 4) + 1;
}

__host__ __device__ __forceinline__ int
dot4_i8(uint32_t a, uint32_t b, int c)
{
#ifdef __CUDA_ARCH__
    return __dp4a((int)a, (int)b, c);
#else
    for (int i = 0; i < 4; i++)
        c += (int)(int8_t)(uint8_t)(a >> (8 * i)) * (int)(int8_t)(uint8_t)(b >> (8 * i));
    return c;
#endif
}

// sum over the 32 inputs of one 128-bit Q4 load w of q * xq; xa, xb: the
// block's 32 int8 values in the order above.
__host__ __device__ __forceinline__ int
q4q8_dot32(uint4 w, uint4 xa, uint4 xb)
{
    const uint32_t m = 0x0F0F0F0Fu;
    int s = dot4_i8(w.x & m, xa.x, 0);
    s = dot4_i8((w.x >> 4) & m, xa.y, s);
    s = dot4_i8(w.y & m, xa.z, s);
    s = dot4_i8((w.y >> 4) & m, xa.w, s);
    s = dot4_i8(w.z & m, xb.x, s);
    s = dot4_i8((w.z >> 4) & m, xb.y, s);
    s = dot4_i8(w.w & m, xb.z, s);
    s = dot4_i8((w.w >> 4) & m, xb.w, s);
    return s;
}

// One block's share of a row's dot product: s * sum((q - z) * d * xq),
// with ds = {d, d * sum(xq)} and the group's scale s and zero point z.
__host__ __device__ __forceinline__ float
q4q8_block(int sumi, float2 ds, float s, float z)
{
    return s * fmaf(ds.x, (float)sumi, -z * ds.y);
}

}  // namespace hrcuda
