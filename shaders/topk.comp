#version 450
// topk.comp — the device part of a draw (sampler.h): the K best logits in
// order (value descending, the lower id first among equals) and the
// softmax's denominator, so only a few hundred bytes cross to the host.
//
// A workgroup sorts CH values in shared memory (bitonic) and keeps its K
// best. The first pass reads the logits row (ids are the indices) and also
// writes, per workgroup, its maximum m, sum s of e^((v - m) * inv_t) and
// whether any value was not finite; each later pass reads the previous
// pass's (value, id) pairs; the final pass (one workgroup) writes
// res = ids[K] | value bits[K] | max | sum | not finite, the sum being
// sum_g s_g e^((m_g - max) * inv_t) over the first pass's workgroups.
// Runs only when params.draw.
#extension GL_GOOGLE_include_directive : require
layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 64;     // power of two, <= CH / 2
const uint CH = 1024;                           // values per workgroup
const uint K = 64;                              // kept per workgroup
const uint NONE = 0xffffffffu;                  // padding id: after every real value
#include "params.glsl"

layout(std430, set = 0, binding = 0) readonly buffer VI { float vin[]; };
layout(std430, set = 0, binding = 1) readonly buffer II { uint iin[]; };
layout(std430, set = 0, binding = 2) writeonly buffer VO { float vout[]; };
layout(std430, set = 0, binding = 3) writeonly buffer IO { uint iout[]; };
layout(std430, set = 0, binding = 4) buffer ST { float stats[]; };
layout(std430, set = 0, binding = 5) readonly buffer P { HrStepParams prm; };
layout(std430, set = 0, binding = 6) writeonly buffer R { uint res[]; };

// n: values in; first: the input is the logits row; last: the final pass;
// n_stats: first-pass workgroups whose stats the final pass combines
layout(push_constant) uniform Push { uint n, first, last, n_stats; } pc;

shared float sv[CH];
shared uint si[CH];
shared float red[WG];
shared uint sbad;

bool before(float va, uint ia, float vb, uint ib)
{
    return va > vb || (va == vb && ia < ib);
}

void main()
{
    if (prm.draw == 0u)
        return;
    const uint tid = gl_LocalInvocationID.x, g = gl_WorkGroupID.x;
    const float NEG = uintBitsToFloat(0xff800000u);    // -inf
    if (tid == 0u)
        sbad = 0u;
    barrier();
    bool bad = false;
    for (uint j = tid; j < CH; j += WG) {
        const uint i = g * CH + j;
        float v = NEG;
        uint id = NONE;
        if (i < pc.n) {
            v = vin[i];
            id = pc.first != 0u ? i : iin[i];
            if (isnan(v) || isinf(v)) {
                bad = bad || pc.first != 0u;
                v = NEG;
            }
        }
        sv[j] = v;
        si[j] = id;
    }
    if (bad)
        atomicOr(sbad, 1u);
    barrier();
    for (uint size = 2u; size <= CH; size <<= 1) {
        for (uint stride = size >> 1; stride > 0u; stride >>= 1) {
            for (uint j = tid; j < CH / 2u; j += WG) {
                const uint lo = 2u * stride * (j / stride) + (j % stride), hi = lo + stride;
                const float a = sv[lo], b = sv[hi];
                const uint ia = si[lo], ib = si[hi];
                // descending where bit `size` of lo is clear: the whole array at the end
                const bool swap = (lo & size) == 0u ? before(b, ib, a, ia) : before(a, ia, b, ib);
                if (swap) {
                    sv[lo] = b;
                    sv[hi] = a;
                    si[lo] = ib;
                    si[hi] = ia;
                }
            }
            barrier();
        }
    }
    const float inv_t = prm.inv_t;
    if (pc.first != 0u) {
        // this workgroup's maximum and its sum of exponentials
        const float m = sv[0];
        float s = 0.0;
        if (inv_t > 0.0 && si[0] != NONE && m > NEG) {
            for (uint j = tid; j < CH; j += WG)
                if (si[j] != NONE && sv[j] > NEG)
                    s += exp((sv[j] - m) * inv_t);
        }
        red[tid] = s;
        barrier();
        for (uint r = WG / 2u; r > 0u; r >>= 1) {
            if (tid < r)
                red[tid] += red[tid + r];
            barrier();
        }
        if (tid == 0u) {
            stats[3u * g] = m;
            stats[3u * g + 1u] = red[0];
            stats[3u * g + 2u] = float(sbad);
        }
    }
    if (pc.last == 0u) {
        for (uint j = tid; j < K; j += WG) {
            vout[g * K + j] = sv[j];
            iout[g * K + j] = si[j];
        }
        return;
    }
    // the final pass: this workgroup holds the K best of the whole row
    memoryBarrierBuffer();
    barrier();
    for (uint j = tid; j < K; j += WG) {
        res[j] = si[j];
        res[K + j] = floatBitsToUint(sv[j]);
    }
    if (tid == 0u) {
        const float mx = sv[0];
        float sum = 0.0;
        uint nb = 0u;
        for (uint q = 0u; q < pc.n_stats; q++) {
            const float mg = stats[3u * q], sg = stats[3u * q + 1u];
            if (sg > 0.0)
                sum += sg * exp((mg - mx) * inv_t);
            if (stats[3u * q + 2u] != 0.0)
                nb = 1u;
        }
        res[2u * K] = floatBitsToUint(mx);
        res[2u * K + 1u] = floatBitsToUint(sum);
        res[2u * K + 2u] = nb;
    }
}
