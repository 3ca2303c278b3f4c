#version 450
// sq_diff.comp — the AWQ search's loss against a reference kept on the
// device (ops.h sq_diff): for each row r < n of activation a, the sum over
// its `width` columns of (a[r] - t[row0 + r])^2 into sums[row0 + r]. A
// workgroup per row, a shared-memory tree in a fixed order (the same sum
// every run). FP32: a row's sum is within ~log2(width) ulp; the host adds
// the rows in double (sq_total).
layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 64;   // power of two

layout(std430, set = 0, binding = 0) readonly buffer A { float a[]; };
layout(std430, set = 0, binding = 1) readonly buffer T { float t[]; };
layout(std430, set = 0, binding = 2) writeonly buffer S { float sums[]; };

layout(push_constant) uniform Push { uint width, n, row0; } pc;

shared float part[WG];

void main()
{
    const uint r = gl_WorkGroupID.x, tid = gl_LocalInvocationID.x;
    if (r >= pc.n)
        return;
    const uint ar = r * pc.width, tr = (pc.row0 + r) * pc.width;
    float acc = 0.0;
    for (uint k = tid; k < pc.width; k += WG) {
        const float d = a[ar + k] - t[tr + k];
        acc += d * d;
    }
    part[tid] = acc;
    barrier();
    for (uint s = WG / 2u; s > 0u; s >>= 1) {
        if (tid < s)
            part[tid] += part[tid + s];
        barrier();
    }
    if (tid == 0u)
        sums[pc.row0 + r] = part[0];
}
