#version 450
// attn_tile.comp — prefill attention in tiles (flash-attention style), the
// partials of attn.comp: workgroup (split, KV head, query block) takes the
// TQ = BQ / G consecutive query tokens of the block for all G query heads
// that share the KV head (rows r = token * G + head-in-group, at most BQ),
// and streams the split's keys through shared memory BKV at a time: each K
// and V row loaded serves every row. Scores S = Q K^T (scaled, causal and
// sliding-window masks per row), an online softmax per row (running max m,
// sum l, the output rescaled by e^(m_old - m_new)), then O += P V; at the
// end each row writes its partial (m, l, unnormalised o[hd]), which
// attn_combine.comp merges with the other splits'.
//
// Threads: 32 lanes x WG/32 groups. In S, lane = key, a group owns RQ rows
// (the rows' Q values are one broadcast read); in P V, lane = dims lane,
// lane + 32, .. (RD of them), the same RQ rows. Shared tiles are padded by
// one float a row so lane-strided reads hit distinct banks.
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_shader_16bit_storage : require
#extension GL_EXT_control_flow_attributes : require
layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 128;      // a multiple of 32
layout(constant_id = 1) const uint SPLIT = 256;   // keys per workgroup
layout(constant_id = 2) const uint MAX_HD = 128;  // largest head_dim, a multiple of 32
layout(constant_id = 3) const uint BQ = 16;       // rows (token, head) per workgroup

#include "params.glsl"

const uint BKV = 32u;                 // keys per tile (= lanes)
const uint NG = WG / 32u;             // thread groups
const uint RQ = BQ / NG;              // rows per group
const uint RD = MAX_HD / 32u;         // dims per lane in P V
const uint LDH = MAX_HD + 1u;
const uint LDS = BKV + 1u;

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

shared float qs[BQ * LDH];
shared float kvs[BKV * LDH];  // the K tile, then the V tile
shared float ss[BQ * LDS];    // scores, then probabilities
shared float row_m[BQ], row_l[BQ], row_a[BQ];

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
    const uint split = gl_WorkGroupID.x, kvh = gl_WorkGroupID.y;
    const uint G = pc.n_heads / pc.n_kv, TQ = max(1u, BQ / G);
    const uint t0 = gl_WorkGroupID.z * TQ;
    if (t0 >= prm.n_tokens)
        return;
    const uint nq = min(TQ, prm.n_tokens - t0), rows = nq * G;
    const uint tid = gl_LocalInvocationID.x, lane = tid % 32u, grp = tid / 32u;
    const uint hd = pc.hd, kv_dim = pc.n_kv * hd;
    const uint p0 = prm.pos + t0;
    const uint j0 = max(split * SPLIT, key_start(p0));
    const uint j1 = min(split * SPLIT + SPLIT, p0 + nq);
    if (j0 >= j1) {   // no key of this split for any row: empty partials
        for (uint i = tid; i < rows * (hd + 2u); i += WG) {
            const uint r = i / (hd + 2u), d = i % (hd + 2u);
            const uint h = kvh * G + r % G;
            part[(((t0 + r / G) * pc.n_heads + h) * pc.n_splits + split) * (hd + 2u) + d] = d == 0u ? NONE : 0.0;
        }
        return;
    }
    for (uint i = tid; i < BQ * hd; i += WG) {
        const uint r = i / hd, d = i % hd;
        qs[r * LDH + d] = r < rows ? q[((t0 + r / G) * pc.n_heads + kvh * G + r % G) * hd + d] : 0.0;
    }
    if (tid < BQ) {
        row_m[tid] = NONE;
        row_l[tid] = 0.0;
    }
    float o[RQ * RD];
    [[unroll]] for (uint i = 0u; i < RQ * RD; i++)
        o[i] = 0.0;

    for (uint jt = j0; jt < j1; jt += BKV) {
        barrier();   // the last tile's readers are done (and qs, row_* are written)
        for (uint i = tid; i < BKV * hd; i += WG) {
            const uint kj = i / hd, d = i % hd, j = jt + kj;
            kvs[kj * LDH + d] = j < j1 ? float(kc[entry(j) * kv_dim + kvh * hd + d]) : 0.0;
        }
        barrier();
        // S: lane = key, RQ rows of this group
        {
            float s[RQ];
            [[unroll]] for (uint i = 0u; i < RQ; i++)
                s[i] = 0.0;
            for (uint d = 0u; d < hd; d++) {
                const float kd = kvs[lane * LDH + d];
                [[unroll]] for (uint i = 0u; i < RQ; i++)
                    s[i] += qs[(grp * RQ + i) * LDH + d] * kd;
            }
            const uint j = jt + lane;
            [[unroll]] for (uint i = 0u; i < RQ; i++) {
                const uint r = grp * RQ + i, p = p0 + r / G;
                const bool valid = r < rows && j < j1 && j <= p && j >= key_start(p);
                ss[r * LDS + lane] = valid ? capped(s[i] * pc.scale) : NONE;
            }
        }
        barrier();
        // the V tile (over K, which S has finished with), and the online
        // softmax, one thread a row
        for (uint i = tid; i < BKV * hd; i += WG) {
            const uint kj = i / hd, d = i % hd, j = jt + kj;
            kvs[kj * LDH + d] = j < j1 ? float(vc[entry(j) * kv_dim + kvh * hd + d]) : 0.0;
        }
        if (tid < BQ) {
            const uint r = tid;
            float mx = row_m[r];
            for (uint kj = 0u; kj < BKV; kj++)
                mx = max(mx, ss[r * LDS + kj]);
            const float a = (row_m[r] <= -1.0e38 || mx <= -1.0e38) ? 1.0 : exp(row_m[r] - mx);
            float l = 0.0;
            for (uint kj = 0u; kj < BKV; kj++) {
                const float sc = ss[r * LDS + kj];
                const float e = sc <= -1.0e38 ? 0.0 : exp(sc - mx);
                ss[r * LDS + kj] = e;
                l += e;
            }
            row_l[r] = row_l[r] * a + l;
            row_m[r] = mx;
            row_a[r] = a;
        }
        barrier();
        // O = O * a + P V: dims lane + 32 jd, RQ rows of this group
        [[unroll]] for (uint i = 0u; i < RQ; i++) {
            const float a = row_a[grp * RQ + i];
            [[unroll]] for (uint jd = 0u; jd < RD; jd++)
                o[i * RD + jd] *= a;
        }
        const uint nk = min(BKV, j1 - jt);
        for (uint kj = 0u; kj < nk; kj++) {
            float v[RD];
            [[unroll]] for (uint jd = 0u; jd < RD; jd++)
                v[jd] = kvs[kj * LDH + lane + 32u * jd];
            [[unroll]] for (uint i = 0u; i < RQ; i++) {
                const float pr = ss[(grp * RQ + i) * LDS + kj];
                [[unroll]] for (uint jd = 0u; jd < RD; jd++)
                    o[i * RD + jd] += pr * v[jd];
            }
        }
    }
    barrier();   // row_m, row_l final
    [[unroll]] for (uint i = 0u; i < RQ; i++) {
        const uint r = grp * RQ + i;
        if (r >= rows)
            continue;
        const uint ob = (((t0 + r / G) * pc.n_heads + kvh * G + r % G) * pc.n_splits + split) * (hd + 2u);
        [[unroll]] for (uint jd = 0u; jd < RD; jd++) {
            const uint d = lane + 32u * jd;
            if (d < hd)
                part[ob + 2u + d] = o[i * RD + jd];
        }
        if (lane == 0u) {
            part[ob] = row_m[r];
            part[ob + 1u] = row_l[r];
        }
    }
}
