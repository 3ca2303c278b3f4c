#version 450
// read_bw.comp — the device's read bandwidth: every thread reads 16-byte
// words (uvec4) of a large buffer, UNROLL loads in flight per iteration,
// coalesced across the workgroup, grid-stride over the buffer; each
// workgroup XORs what it read into one word of the output, so no load can
// be optimised away and almost nothing is written.
#extension GL_GOOGLE_include_directive : require

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 256;    // power of two

const uint UNROLL = 4u;

layout(std430, set = 0, binding = 0) readonly buffer Src { uvec4 src[]; };
layout(std430, set = 0, binding = 1) writeonly buffer Dst { uint dst[]; };

layout(push_constant) uniform Push { uint n; } pc;   // uvec4 words in src

shared uint red[WG];

void main()
{
    const uint tid = gl_LocalInvocationID.x;
    const uint span = WG * UNROLL;
    const uint stride = gl_NumWorkGroups.x * span;
    uvec4 acc = uvec4(0u);
    for (uint base = gl_WorkGroupID.x * span + tid; base < pc.n; base += stride) {
        uvec4 v[UNROLL];
        for (uint j = 0u; j < UNROLL; j++) {
            const uint i = base + j * WG;
            v[j] = i < pc.n ? src[i] : uvec4(0u);
        }
        for (uint j = 0u; j < UNROLL; j++)
            acc ^= v[j];
    }
    red[tid] = acc.x ^ acc.y ^ acc.z ^ acc.w;
    barrier();
    for (uint s = WG / 2u; s > 0u; s >>= 1u) {
        if (tid < s)
            red[tid] ^= red[tid + s];
        barrier();
    }
    if (tid == 0u)
        dst[gl_WorkGroupID.x] = red[0];
}
