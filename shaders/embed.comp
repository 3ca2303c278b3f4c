#version 450
// embed.comp — x[t, :] = FP16 embedding row tokens[t] as FP32. A table
// larger than one storage binding is split into row slices, one dispatch
// each: this one handles the tokens in [row_begin, row_end).
#extension GL_GOOGLE_include_directive : require
layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 64;
#include "params.glsl"

layout(std430, set = 0, binding = 0) readonly buffer T { int tokens[]; };
layout(std430, set = 0, binding = 1) readonly buffer E { uint emb[]; };   // FP16 pairs, kw words per row
layout(std430, set = 0, binding = 2) writeonly buffer X { float x[]; };
layout(std430, set = 0, binding = 3) readonly buffer P { HrStepParams prm; };

layout(push_constant) uniform Push { uint dim, kw, row_begin, row_end; } pc;

void main()
{
    const uint t = gl_WorkGroupID.y;
    const uint i = gl_GlobalInvocationID.x;   // pair index
    if (t >= prm.n_tokens || 2u * i >= pc.dim)
        return;
    const uint tok = uint(tokens[t]);
    if (tok < pc.row_begin || tok >= pc.row_end)
        return;
    const vec2 v = unpackHalf2x16(emb[(tok - pc.row_begin) * pc.kw + i]);
    x[t * pc.dim + 2u * i] = v.x;
    if (2u * i + 1u < pc.dim)
        x[t * pc.dim + 2u * i + 1u] = v.y;
}
