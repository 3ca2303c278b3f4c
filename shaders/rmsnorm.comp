#version 450
// rmsnorm.comp — out[t, :] (+)= w * (x[t, :] / sqrt(mean(x^2) + eps)), one
// workgroup per token (FP32, as transformers' LlamaRMSNorm).
// Q8=1 (decode, one token; n % 32 == 0): the row also as int8 for the q8
// GEMV that reads it next (q8.glsl, binding 4), a thread per block of 32, so
// no quant_q8.comp dispatch runs between them.
#extension GL_GOOGLE_include_directive : require
layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 64;
#include "reduce.glsl"
#include "params.glsl"

layout(std430, set = 0, binding = 0) readonly buffer X { float x[]; };
layout(std430, set = 0, binding = 1) buffer O { float o[]; };
layout(std430, set = 0, binding = 2) readonly buffer W { float w[]; };
layout(std430, set = 0, binding = 3) readonly buffer P { HrStepParams prm; };
#if Q8
#define Q8_BINDING 4
#include "q8.glsl"
#endif

// flags 1: tokens from logit_first; 2: o += (Gemma's norms after attention and MLP, added to the residual)
layout(push_constant) uniform Push { uint n; float eps; uint flags; } pc;

void main()
{
    const uint t = gl_WorkGroupID.x + ((pc.flags & 1u) != 0u ? prm.logit_first : 0u);
    if (t >= prm.n_tokens)
        return;
    const uint tid = gl_LocalInvocationID.x;
    const uint base = t * pc.n;
    float ss = 0.0;
    for (uint i = tid; i < pc.n; i += WG)
        ss += x[base + i] * x[base + i];
    ss = wg_sum(ss);
    const float inv = 1.0 / sqrt(ss / float(pc.n) + pc.eps);
    if ((pc.flags & 2u) != 0u) {
        for (uint i = tid; i < pc.n; i += WG)
            o[base + i] += w[i] * (x[base + i] * inv);
    } else {
        for (uint i = tid; i < pc.n; i += WG)
            o[base + i] = w[i] * (x[base + i] * inv);
    }
#if Q8
    for (uint b = tid; b < pc.n / 32u; b += WG) {
        vec4 v[8];
        for (uint i = 0u; i < 8u; i++)
            for (uint c = 0u; c < 4u; c++) {
                const uint k = 32u * b + 4u * i + c;
                v[i][c] = w[k] * (x[base + k] * inv);
            }
        q8_store(b, pc.n / 32u, v);
    }
#endif
}
