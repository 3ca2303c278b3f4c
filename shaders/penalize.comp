#version 450
// penalize.comp — the repetition penalty of a draw, in place on the logits
// row: v[t] = v[t] > 0 ? v[t] / penalty : v[t] * penalty for every t in the
// seen buffer (distinct ids, so no two invocations touch one value), as
// sampler.c does on the host. (Vulkan allows a division 2.5 ulp, so a
// driver may differ from the host's correctly rounded x / p by an ulp;
// lavapipe's is exact, and a correction step through fma() made it worse
// there, where fma() is not fused.) One workgroup; runs only when
// params.draw.
#extension GL_GOOGLE_include_directive : require
layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 64;
#include "params.glsl"

layout(std430, set = 0, binding = 0) buffer L { float v[]; };
layout(std430, set = 0, binding = 1) readonly buffer S { uint seen[]; };
layout(std430, set = 0, binding = 2) readonly buffer P { HrStepParams prm; };

layout(push_constant) uniform Push { uint vocab; } pc;

void main()
{
    if (prm.draw == 0u || prm.penalty == 1.0)
        return;
    const float pen = prm.penalty;
    for (uint i = gl_LocalInvocationID.x; i < prm.n_seen; i += WG) {
        const uint t = seen[i];
        if (t < pc.vocab) {
            const float x = v[t];
            v[t] = x > 0.0 ? x / pen : x * pen;
        }
    }
}
