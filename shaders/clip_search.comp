#version 450
// clip_search.comp — the AWQ clip search (ops.h clip_search; cpu-awq.h's
// hr_awq_clip_search defines it), a workgroup per (group gi, row n): per
// limit m = m0 (1 - s / grid) (m0 = max |w| over the group), d =
// Q(clamp(w, -m, m)) - w (Q: fake_quant.glsl, the group as one), err = sum_j d_j sum_i C[i][j] d_i (C symmetric), the
// least error's limit (the first on ties) to lim[n * ng + gi]. Shared-memory
// trees in a fixed order; FP32.
#extension GL_GOOGLE_include_directive : require
layout(local_size_x_id = 0) in;

#include "fake_quant.glsl"
layout(constant_id = 0) const uint WG = 64;   // power of two

layout(std430, set = 0, binding = 0) readonly buffer W { float w[]; };
layout(std430, set = 0, binding = 1) readonly buffer C { float c[]; };
layout(std430, set = 0, binding = 2) writeonly buffer L { float lim[]; };

layout(push_constant) uniform Push { uint K, g, steps, grid, rows; float qmax; } pc;

shared float sw[256], sd[256], ra[WG], rb[WG];

// ra[0], rb[0] = min over ra, max over rb (every invocation calls it)
void reduce_min_max()
{
    const uint tid = gl_LocalInvocationID.x;
    barrier();
    for (uint s = WG / 2u; s > 0u; s >>= 1) {
        if (tid < s) {
            ra[tid] = min(ra[tid], ra[tid + s]);
            rb[tid] = max(rb[tid], rb[tid + s]);
        }
        barrier();
    }
}

void main()
{
    const uint gi = gl_WorkGroupID.x, n = gl_WorkGroupID.y, tid = gl_LocalInvocationID.x;
    if (n >= pc.rows)
        return;
    const uint g = pc.g, base = n * pc.K + gi * g, cbase = gi * g * g;
    float m0 = 0.0;
    for (uint i = tid; i < g; i += WG) {
        sw[i] = w[base + i];
        m0 = max(m0, abs(sw[i]));
    }
    ra[tid] = 0.0;
    rb[tid] = m0;
    reduce_min_max();
    m0 = rb[0];
    float best = 1.0 / 0.0, best_m = m0;
    for (uint st = 0; st < pc.steps; st++) {
        precise float m = m0 * (1.0 - float(st) / float(pc.grid));
        float mn = 0.0, mx = 0.0;
        for (uint i = tid; i < g; i += WG) {
            const float v = clamp(sw[i], -m, m);
            mn = min(mn, v);
            mx = max(mx, v);
        }
        barrier();   // (ra, rb: the last step's readers are done)
        ra[tid] = mn;
        rb[tid] = mx;
        reduce_min_max();
        mn = ra[0];
        mx = rb[0];
        const vec2 fq = fq_params(mn, mx, pc.qmax);
        for (uint i = tid; i < g; i += WG)
            sd[i] = fq_value(clamp(sw[i], -m, m), fq, pc.qmax) - sw[i];
        barrier();
        float err = 0.0;
        for (uint j = tid; j < g; j += WG) {
            float r = 0.0;
            for (uint i = 0; i < g; i++)
                r += c[cbase + i * g + j] * sd[i];
            err += r * sd[j];
        }
        barrier();   // (ra: every invocation has read mn above)
        ra[tid] = err;
        barrier();
        for (uint s = WG / 2u; s > 0u; s >>= 1) {
            if (tid < s)
                ra[tid] += ra[tid + s];
            barrier();
        }
        if (ra[0] < best) {   // the same value for every invocation: the same choice
            best = ra[0];
            best_m = m;
        }
    }
    if (tid == 0u)
        lim[n * (pc.K / g) + gi] = best_m;
}
