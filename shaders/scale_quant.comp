#version 450
// scale_quant.comp — an AWQ candidate made on the device (ops.h
// scale_quant): w = Q(t diag(s)) diag(s)^-1, minus t when delta, into an
// FP16 weight (row stride kw words, two values a word). One invocation per
// (group, row): v = t s over the group, fake-quantized (fake_quant.glsl: the
// CPU's hr_awq_fake_quant_row step by step), then / s (- t). How exact a
// division is, and how packHalf2x16 rounds, are the device's.
#extension GL_GOOGLE_include_directive : require
layout(local_size_x_id = 0) in;

#include "fake_quant.glsl"
layout(constant_id = 0) const uint WG = 64;

layout(std430, set = 0, binding = 0) readonly buffer T { float t[]; };
layout(std430, set = 0, binding = 1) readonly buffer S { float s[]; };
layout(std430, set = 0, binding = 2) writeonly buffer W { uint w[]; };

layout(push_constant) uniform Push { uint K, group, delta, kw, rows; float qmax; } pc;

void main()
{
    const uint gi = gl_GlobalInvocationID.x, n = gl_WorkGroupID.y;
    if (gi * pc.group >= pc.K || n >= pc.rows)
        return;
    const uint k0 = gi * pc.group, row = n * pc.K;
    float mn = 0.0, mx = 0.0;
    for (uint i = 0; i < pc.group; i++) {
        precise float v = t[row + k0 + i] * s[k0 + i];
        mn = min(mn, v);
        mx = max(mx, v);
    }
    const vec2 fq = fq_params(mn, mx, pc.qmax);
    for (uint i = 0; i < pc.group; i += 2) {
        precise vec2 o;
        for (uint j = 0; j < 2; j++) {
            const uint k = k0 + i + j;
            precise float v = t[row + k] * s[k];
            precise float e = fq_value(v, fq, pc.qmax);
            e = e / s[k];
            if (pc.delta != 0u)
                e = e - t[row + k];
            o[j] = e;
        }
        w[n * pc.kw + (k0 + i) / 2u] = packHalf2x16(o);
    }
}
