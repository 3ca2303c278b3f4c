#version 450
// attn.comp — causal grouped-query attention over the FP16 KV cache, split
// over the sequence (flash-decoding): workgroup (split, head, token group)
// scores keys split*SPLIT .. +SPLIT for QT consecutive query tokens (each
// sees keys up to its own position pos+t, and from its sliding-window start)
// and writes per token its partial (max m, sum l of exp(s - m),
// unnormalised output o[hd]); attn_combine.comp merges the splits. Decode
// runs QT = 1; prefill chunks QT > 1, so every K/V row loaded serves QT
// queries.
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_shader_16bit_storage : require
layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 64;
layout(constant_id = 1) const uint SPLIT = 256;   // keys per workgroup
layout(constant_id = 2) const uint MAX_HD = 256;  // largest head_dim
layout(constant_id = 3) const uint QT = 1;        // query tokens per workgroup
#include "reduce.glsl"
#include "params.glsl"

layout(std430, set = 0, binding = 0) readonly buffer Q { float q[]; };
layout(std430, set = 0, binding = 1) readonly buffer KC { float16_t kc[]; };
layout(std430, set = 0, binding = 2) readonly buffer VC { float16_t vc[]; };
layout(std430, set = 0, binding = 3) writeonly buffer PART { float part[]; };
layout(std430, set = 0, binding = 4) readonly buffer P { HrStepParams prm; };

layout(push_constant) uniform Push {
    uint n_heads, n_kv, hd, n_splits, window;
    float scale;
    float softcap;              // > 0 (Gemma 2): each score -> softcap * tanh(score / softcap)
    uint ring;                  // > 0 (a sliding-window layer's caches): key j at entry j % ring
} pc;

float capped(float s)
{
    return pc.softcap > 0.0 ? pc.softcap * tanh(s / pc.softcap) : s;
}

const float NONE = -3.0e38;   // "no key": masked score, max of an empty set

shared float qs[QT * MAX_HD];
shared float ps[QT * SPLIT];

uint entry(uint j)
{
    return pc.ring > 0u ? j % pc.ring : j;
}

uint key_start(uint p)
{
    return (pc.window > 0u && p + 1u > pc.window) ? p + 1u - pc.window : 0u;
}

void main()
{
    const uint split = gl_WorkGroupID.x, h = gl_WorkGroupID.y;
    const uint t0 = gl_WorkGroupID.z * QT;
    if (t0 >= prm.n_tokens)
        return;
    const uint nq = min(QT, prm.n_tokens - t0);
    const uint tid = gl_LocalInvocationID.x;
    const uint hd = pc.hd, kv_dim = pc.n_kv * hd;
    const uint kvh = h / (pc.n_heads / pc.n_kv);
    const uint p0 = prm.pos + t0;
    // Keys any of the nq queries may see, within this split.
    const uint j0 = max(split * SPLIT, key_start(p0));
    const uint j1 = min(split * SPLIT + SPLIT, p0 + nq);
    if (j0 >= j1) {
        for (uint qi = 0u; qi < nq; qi++) {
            const uint ob = (((t0 + qi) * pc.n_heads + h) * pc.n_splits + split) * (hd + 2u);
            for (uint d = tid; d < hd + 2u; d += WG)
                part[ob + d] = d == 0u ? NONE : 0.0;
        }
        return;
    }
    for (uint i = tid; i < QT * hd; i += WG) {
        const uint qi = i / hd, d = i % hd;
        qs[qi * MAX_HD + d] = qi < nq ? q[((t0 + qi) * pc.n_heads + h) * hd + d] : 0.0;
    }
    barrier();

    float mx[QT];
    for (uint qi = 0u; qi < QT; qi++)
        mx[qi] = NONE;
    for (uint j = j0 + tid; j < j1; j += WG) {
        const uint kb = entry(j) * kv_dim + kvh * hd;
        float s[QT];
        for (uint qi = 0u; qi < QT; qi++)
            s[qi] = 0.0;
        for (uint d = 0u; d < hd; d++) {
            const float kd = float(kc[kb + d]);
            for (uint qi = 0u; qi < QT; qi++)
                s[qi] += qs[qi * MAX_HD + d] * kd;
        }
        for (uint qi = 0u; qi < QT; qi++) {
            const uint p = p0 + qi;
            const bool valid = qi < nq && j <= p && j >= key_start(p);
            const float sc = valid ? capped(s[qi] * pc.scale) : NONE;
            ps[qi * SPLIT + (j - j0)] = sc;
            mx[qi] = max(mx[qi], sc);
        }
    }
    float l[QT];
    for (uint qi = 0u; qi < QT; qi++) {
        mx[qi] = wg_max(mx[qi]);
        l[qi] = 0.0;
    }
    for (uint j = j0 + tid; j < j1; j += WG) {
        for (uint qi = 0u; qi < QT; qi++) {
            const float sc = ps[qi * SPLIT + (j - j0)];
            const float e = sc <= -1.0e38 ? 0.0 : exp(sc - mx[qi]);
            ps[qi * SPLIT + (j - j0)] = e;
            l[qi] += e;
        }
    }
    for (uint qi = 0u; qi < QT; qi++)
        l[qi] = wg_sum(l[qi]);   // its barriers also publish ps[]
    for (uint d = tid; d < hd; d += WG) {
        float o[QT];
        for (uint qi = 0u; qi < QT; qi++)
            o[qi] = 0.0;
        for (uint j = j0; j < j1; j++) {
            const float vd = float(vc[entry(j) * kv_dim + kvh * hd + d]);
            for (uint qi = 0u; qi < QT; qi++)
                o[qi] += ps[qi * SPLIT + (j - j0)] * vd;
        }
        for (uint qi = 0u; qi < nq; qi++)
            part[(((t0 + qi) * pc.n_heads + h) * pc.n_splits + split) * (hd + 2u) + 2u + d] = o[qi];
    }
    if (tid == 0u) {
        for (uint qi = 0u; qi < nq; qi++) {
            const uint ob = (((t0 + qi) * pc.n_heads + h) * pc.n_splits + split) * (hd + 2u);
            part[ob] = mx[qi];
            part[ob + 1u] = l[qi];
        }
    }
}
