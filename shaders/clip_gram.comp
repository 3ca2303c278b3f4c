#version 450
// clip_gram.comp — the AWQ clip search's Gram matrices (ops.h clip_search):
// C[gi][i][j] = sum over the nt inputs (rows ldx floats apart) of
// x[t, g0 + i] x[t, g0 + j], a
// workgroup per (group gi, row i), t in order, FP32.
layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 64;

layout(std430, set = 0, binding = 0) readonly buffer X { float x[]; };
layout(std430, set = 0, binding = 1) writeonly buffer C { float c[]; };

layout(push_constant) uniform Push { uint K, g, nt, ldx; } pc;

void main()
{
    const uint gi = gl_WorkGroupID.x, i = gl_WorkGroupID.y, g0 = gi * pc.g;
    for (uint j = gl_LocalInvocationID.x; j < pc.g; j += WG) {
        float acc = 0.0;
        for (uint t = 0; t < pc.nt; t++)
            acc += x[t * pc.ldx + g0 + i] * x[t * pc.ldx + g0 + j];
        c[(gi * pc.g + i) * pc.g + j] = acc;
    }
}
