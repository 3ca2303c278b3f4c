#version 450
// fma_peak.comp — the device's FP32 arithmetic peak, the ceiling of the
// (FP32) prefill GEMM: every thread runs CHAINS independent vec4 chains of
// fused multiply-adds for pc.iters rounds, all in registers, then writes
// one value so nothing is optimised away. FLOPs per thread:
// iters * CHAINS * 4 lanes * 2.
layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 256;

const uint CHAINS = 8u;

layout(std430, set = 0, binding = 0) writeonly buffer Dst { float dst[]; };

layout(push_constant) uniform Push { uint iters; float a; float b; } pc;

void main()
{
    vec4 v[CHAINS];
    const float s = float(gl_GlobalInvocationID.x) * 1e-9;
    for (uint c = 0u; c < CHAINS; c++)
        v[c] = vec4(s + float(c), s - float(c), s * 2.0, s + 0.5);
    const vec4 a = vec4(pc.a), b = vec4(pc.b);
    for (uint i = 0u; i < pc.iters; i++) {
        for (uint c = 0u; c < CHAINS; c++)
            v[c] = fma(v[c], a, b);
    }
    vec4 t = v[0];
    for (uint c = 1u; c < CHAINS; c++)
        t += v[c];
    dst[gl_GlobalInvocationID.x] = t.x + t.y + t.z + t.w;
}
