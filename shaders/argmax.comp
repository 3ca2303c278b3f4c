#version 450
// argmax.comp — index of the largest of n values (the lowest index among
// equals), one workgroup, shared-memory tree. out[0] = index, out[1] = the
// value's bits.
layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 64;   // power of two

layout(std430, set = 0, binding = 0) readonly buffer L { float v[]; };
layout(std430, set = 0, binding = 1) writeonly buffer O { uint o[]; };

layout(push_constant) uniform Push { uint n, offset; } pc;

shared float bv[WG];
shared uint bi[WG];

void main()
{
    const uint tid = gl_LocalInvocationID.x;
    float best = -1.0 / 0.0;
    uint idx = 0xffffffffu;
    for (uint i = tid; i < pc.n; i += WG) {
        const float x = v[pc.offset + i];
        if (x > best || idx == 0xffffffffu) {
            best = x;
            idx = i;
        }
    }
    bv[tid] = best;
    bi[tid] = idx;
    barrier();
    for (uint s = WG / 2u; s > 0u; s >>= 1) {
        if (tid < s) {
            const float ov = bv[tid + s];
            const uint oi = bi[tid + s];
            if (oi != 0xffffffffu && (bi[tid] == 0xffffffffu || ov > bv[tid] || (ov == bv[tid] && oi < bi[tid]))) {
                bv[tid] = ov;
                bi[tid] = oi;
            }
        }
        barrier();
    }
    if (tid == 0u) {
        o[0] = bi[0];
        o[1] = floatBitsToUint(bv[0]);
    }
}
