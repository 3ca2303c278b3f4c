#version 450
// embed.comp — x[t, :] = embedding row tokens[t] as FP32, from any weight
// layout of engine/vulkan/vk-kernels.h (FP16 pairs, or 4-bit / int8 with a
// scale table: w = s*q + b, as the GEMV reads it). One thread per 8 values.
// A table larger than one storage binding is split into row slices, one
// dispatch each: this one handles the tokens in [row_begin, row_end). The
// rows are multiplied by scale (Gemma's sqrt(dim); 1 elsewhere).
#extension GL_GOOGLE_include_directive : require
layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 64;
#include "params.glsl"

layout(std430, set = 0, binding = 0) readonly buffer T { int tokens[]; };
layout(std430, set = 0, binding = 1) readonly buffer E { uint emb[]; };
layout(std430, set = 0, binding = 2) writeonly buffer X { float x[]; };
layout(std430, set = 0, binding = 3) readonly buffer P { HrStepParams prm; };

layout(push_constant) uniform Push {
    uint dim, kw, row_begin, row_end;
    uint kind;                  // 0 FP16, 1 4-bit, 2 int8 (HrVkWeightKind)
    uint sfmt, ng, gsize, soff; // scale table (kind 1, 2)
    float scale;                // every value times this (1, or Gemma's sqrt(dim))
} pc;

uint wload(uint m, uint i)
{
    return emb[i];
}

#include "weights.glsl"

void main()
{
    const uint t = gl_WorkGroupID.y;
    const uint u = gl_GlobalInvocationID.x;   // unit of 8 values
    if (t >= prm.n_tokens || 8u * u >= pc.dim)
        return;
    const uint tok = uint(tokens[t]);
    if (tok < pc.row_begin || tok >= pc.row_end)
        return;
    const uint row = tok - pc.row_begin;
    vec4 a, b;
    if (pc.kind == 0u) {
        const uint wb = row * pc.kw + 4u * u;
        a = vec4(unpackHalf2x16(emb[wb]), unpackHalf2x16(emb[wb + 1u]));
        b = vec4(unpackHalf2x16(emb[wb + 2u]), unpackHalf2x16(emb[wb + 3u]));
    } else {
        const vec2 sb = wscale(0u, pc.soff, row * pc.ng + (pc.ng == 1u ? 0u : 8u * u / pc.gsize), pc.sfmt);
        wunit(0u, row * pc.kw, u, pc.kind, a, b);
        a = sb.x * a + sb.y;
        b = sb.x * b + sb.y;
    }
    a *= pc.scale;
    b *= pc.scale;
    const uint o = t * pc.dim + 8u * u;
    for (uint i = 0u; i < 4u; i++) {
        if (8u * u + i < pc.dim)
            x[o + i] = a[i];
        if (8u * u + 4u + i < pc.dim)
            x[o + 4u + i] = b[i];
    }
}
