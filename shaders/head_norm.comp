#version 450
// head_norm.comp — Qwen3's q/k norms: in the fused q/k/v output, every q head
// and every k head (head_dim values each) becomes w * (x / sqrt(mean(x^2) + eps)),
// in place, with wq for the q heads and wk for the k heads (FP32, as
// transformers' Qwen3RMSNorm). One workgroup per (head, token): head j < n_heads
// is q head j, the next n_kv are the k heads; v is left alone. Runs before
// rope_kv.comp.
#extension GL_GOOGLE_include_directive : require
layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 64;
#include "reduce.glsl"
#include "params.glsl"

layout(std430, set = 0, binding = 0) buffer QKV { float qkv[]; };
layout(std430, set = 0, binding = 1) readonly buffer WQ { float wq[]; };
layout(std430, set = 0, binding = 2) readonly buffer WK { float wk[]; };
layout(std430, set = 0, binding = 3) readonly buffer P { HrStepParams prm; };

layout(push_constant) uniform Push { uint n_heads, n_kv, hd; float eps; } pc;

void main()
{
    const uint j = gl_WorkGroupID.x, t = gl_WorkGroupID.y;
    if (t >= prm.n_tokens)
        return;
    const uint tid = gl_LocalInvocationID.x;
    const uint stride = (pc.n_heads + 2u * pc.n_kv) * pc.hd;
    const uint base = t * stride + j * pc.hd;
    float ss = 0.0;
    for (uint i = tid; i < pc.hd; i += WG)
        ss += qkv[base + i] * qkv[base + i];
    ss = wg_sum(ss);   // (its barriers: every read above is done before any write below)
    const float inv = 1.0 / sqrt(ss / float(pc.hd) + pc.eps);
    const bool is_q = j < pc.n_heads;
    for (uint i = tid; i < pc.hd; i += WG)
        qkv[base + i] = (is_q ? wq[i] : wk[i]) * (qkv[base + i] * inv);
}
