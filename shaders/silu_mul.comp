#version 450
// silu_mul.comp — g[t, i] = silu(g[t, i]) * u[t, i] for the step's tokens:
// the gate|up epilogue when gate and up are stored differently and so run as
// two GEMVs (engine/vulkan/vk-backend.c), the same formula as gemv.comp's
// GATE=1 epilogue.
#extension GL_GOOGLE_include_directive : require
layout(local_size_x_id = 0) in;

#include "params.glsl"

layout(std430, set = 0, binding = 0) buffer G { float g[]; };
layout(std430, set = 0, binding = 1) readonly buffer U { float u[]; };
layout(std430, set = 0, binding = 2) readonly buffer P { HrStepParams prm; };

layout(push_constant) uniform Push { uint width; } pc;

void main()
{
    const uint i = gl_GlobalInvocationID.x, t = gl_WorkGroupID.y;
    if (i >= pc.width || t >= prm.n_tokens)
        return;
    const uint at = t * pc.width + i;
    const float v = g[at];
    g[at] = v / (1.0 + exp(-v)) * u[at];
}
