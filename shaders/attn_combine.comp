#version 450
// attn_combine.comp — merges the per-split partials of attn.comp:
// out[t, h*hd + d] = sum_s o_s[d] e^(m_s - m) / sum_s l_s e^(m_s - m).
// Q8=1 (decode, one token; hd % 32 == 0, hd <= MAX_HD): the row also as
// int8 for the q8 GEMV of o_proj (q8.glsl, binding 3): a head's blocks of 32
// are its own; its outputs are kept in shared memory, then a thread per block
// quantizes one.
#extension GL_GOOGLE_include_directive : require
layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 64;
#include "params.glsl"

layout(std430, set = 0, binding = 0) readonly buffer PART { float part[]; };
layout(std430, set = 0, binding = 1) writeonly buffer O { float o[]; };
layout(std430, set = 0, binding = 2) readonly buffer P { HrStepParams prm; };

#if Q8
layout(constant_id = 1) const uint MAX_HD = 128;
#define Q8_BINDING 3
#include "q8.glsl"
shared float head_out[MAX_HD];
#endif

layout(push_constant) uniform Push { uint n_heads, hd, n_splits; } pc;

void main()
{
    const uint h = gl_WorkGroupID.x, t = gl_WorkGroupID.y;
    if (t >= prm.n_tokens)
        return;
    const uint hd = pc.hd;
    const uint base = (t * pc.n_heads + h) * pc.n_splits * (hd + 2u);
    float m = -3.0e38;
    for (uint s = 0u; s < pc.n_splits; s++)
        m = max(m, part[base + s * (hd + 2u)]);
    float l = 0.0;
    for (uint s = 0u; s < pc.n_splits; s++) {
        const uint b = base + s * (hd + 2u);
        l += part[b + 1u] * exp(part[b] - m);
    }
    for (uint d = gl_LocalInvocationID.x; d < hd; d += WG) {
        float acc = 0.0;
        for (uint s = 0u; s < pc.n_splits; s++) {
            const uint b = base + s * (hd + 2u);
            acc += part[b + 2u + d] * exp(part[b] - m);
        }
        o[(t * pc.n_heads + h) * hd + d] = acc / l;
#if Q8
        head_out[d] = acc / l;
#endif
    }
#if Q8
    barrier();
    for (uint b = gl_LocalInvocationID.x; b < hd / 32u; b += WG) {
        vec4 v[8];
        for (uint i = 0u; i < 8u; i++)
            v[i] = vec4(head_out[32u * b + 4u * i], head_out[32u * b + 4u * i + 1u], head_out[32u * b + 4u * i + 2u],
                        head_out[32u * b + 4u * i + 3u]);
        q8_store(h * hd / 32u + b, pc.n_heads * hd / 32u, v);
    }
#endif
}
