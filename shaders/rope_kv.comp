#version 450
// rope_kv.comp — RoPE (rotate-half) on q and k from the fused q/k/v output,
// fused with the KV-cache write: q goes to qout (FP32), roped k and v to the
// FP16 caches at position pos + t. cos/sin come from a table the host
// computes once (rope_tab[p, i] = (cos, sin) of p * inv_freq[i], times LongRoPE's attention factor).
// ring > 0 (a sliding-window layer's caches): position p goes to entry p % ring.
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_shader_16bit_storage : require
layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 64;
#include "params.glsl"

layout(std430, set = 0, binding = 0) readonly buffer QKV { float qkv[]; };
layout(std430, set = 0, binding = 1) writeonly buffer QO { float qo[]; };
layout(std430, set = 0, binding = 2) writeonly buffer KC { float16_t kc[]; };
layout(std430, set = 0, binding = 3) writeonly buffer VC { float16_t vc[]; };
layout(std430, set = 0, binding = 4) readonly buffer R { vec2 rope_tab[]; };
layout(std430, set = 0, binding = 5) readonly buffer P { HrStepParams prm; };

// rot: the leading dimensions of each head that rotate (partial rotary: the rest pass); long_at > 0
// (LongRoPE): a step whose last position is at or past long_at reads the table's second set, long_off on
layout(push_constant) uniform Push { uint n_heads, n_kv, hd, rot, long_at, long_off, ring; } pc;

void main()
{
    const uint t = gl_WorkGroupID.y;
    const uint e = gl_GlobalInvocationID.x;
    const uint q_dim = pc.n_heads * pc.hd, kv_dim = pc.n_kv * pc.hd;
    const uint stride = q_dim + 2u * kv_dim;
    if (t >= prm.n_tokens || e >= stride)
        return;
    const uint p = prm.pos + t;
    const uint ent = pc.ring > 0u ? p % pc.ring : p;   // the cache entry
    const uint src = t * stride + e;
    if (e >= q_dim + kv_dim) {   // v: copied
        vc[ent * kv_dim + (e - q_dim - kv_dim)] = float16_t(qkv[src]);
        return;
    }
    const uint half_ = pc.rot / 2u;
    const uint d = e % pc.hd;
    float r;
    if (d >= pc.rot) {           // past the rotary part: as it is
        r = qkv[src];
    } else {
    const uint i = d % half_;
    const uint set = pc.long_at > 0u && prm.pos + prm.n_tokens > pc.long_at ? pc.long_off : 0u;
    const vec2 cs = rope_tab[set + p * half_ + i];
    if (d < half_)
        r = qkv[src] * cs.x - qkv[src + half_] * cs.y;
    else
        r = qkv[src] * cs.x + qkv[src - half_] * cs.y;
    }
    if (e < q_dim)
        qo[t * q_dim + e] = r;
    else
        kc[ent * kv_dim + (e - q_dim)] = float16_t(r);
}
