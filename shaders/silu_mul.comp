#version 450
// silu_mul.comp — g[t, i] = act(g[t, i]) * u[t, i] for the step's tokens, act
// SiLU or (gelu 1) gelu_pytorch_tanh:
// the gate|up epilogue when gate and up are stored differently and so run as
// two GEMVs (engine/vulkan/vk-backend.c), the same formula as gemv.comp's
// GATE=1 epilogue (linear.glsl's gate_act).
#extension GL_GOOGLE_include_directive : require
layout(local_size_x_id = 0) in;

#include "params.glsl"

layout(std430, set = 0, binding = 0) buffer G { float g[]; };
layout(std430, set = 0, binding = 1) readonly buffer U { float u[]; };
layout(std430, set = 0, binding = 2) readonly buffer P { HrStepParams prm; };

layout(push_constant) uniform Push { uint width, gelu; } pc;

void main()
{
    const uint i = gl_GlobalInvocationID.x, t = gl_WorkGroupID.y;
    if (i >= pc.width || t >= prm.n_tokens)
        return;
    const uint at = t * pc.width + i;
    const float v = g[at];
    if (pc.gelu != 0u)
        g[at] = 0.5 * v * (1.0 + tanh(0.7978845608028654 * (v + 0.044715 * v * v * v))) * u[at];
    else
        g[at] = v / (1.0 + exp(-v)) * u[at];
}
