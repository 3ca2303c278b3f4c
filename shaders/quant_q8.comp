#version 450
// quant_q8.comp — one activation row (a decode step's) to int8 in blocks of
// 32 for the q8 decode GEMV (gemv.comp built with Q8=1); the rounding and the
// layout are q8.glsl's. One thread per block; k % 32 == 0 and the row's
// first float a multiple of 4. The RMSNorm and the attention's combine write
// the same from their own outputs where the next linear reads them
// (rmsnorm.comp, attn_combine.comp built with Q8=1).
#extension GL_GOOGLE_include_directive : require
layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 64;

layout(std430, set = 0, binding = 0) readonly buffer X4 { vec4 x4[]; };
#define Q8_BINDING 1
#include "q8.glsl"

layout(push_constant) uniform Push {
    uint nb;      // blocks of 32 inputs
    uint x0;      // first float of the row (a multiple of 4)
} pc;

void main()
{
    const uint b = gl_GlobalInvocationID.x;
    if (b >= pc.nb)
        return;
    vec4 v[8];
    for (uint i = 0u; i < 8u; i++)
        v[i] = x4[pc.x0 / 4u + 8u * b + i];
    q8_store(b, pc.nb, v);
}
