#version 450
// gemv.comp — out[t, R] (+)= W[R, :] . x[t, :] for a few tokens, weights
// 4-bit (AWQ, GGUF Q4_0/Q4_1/Q4_K), int8 (GGUF Q8_0/Q5_*/Q6_K) or FP16,
// dequantized in registers.
//
// Weight layout (one storage buffer per tensor, engine/vulkan/vk-kernels.h):
//   QUANT=1: row r holds kw = ceil(K/8) uint words; word u carries inputs
//            8u..8u+7, input 8u+i in bits 4i..4i+3.
//   QUANT=2: row r holds kw = ceil(K/8)*2 words; input k in byte k%4 of
//            word k/4, two's complement.
//            For both, after the N*kw words, at soff, a scale table with
//            one entry per (row, group) in format pc.sfmt (weights.glsl),
//            read as w = s*q + b and folded per 8 inputs (groups are
//            multiples of 8): sum (s q + b) x = s * sum q x + b * sum x.
//   QUANT=0: row r holds kw = ceil(K/8)*4 words of FP16 pairs (zero padded).
// Each workgroup computes ROWS rows of one matrix for NT tokens; threads
// stride over 8-input units (coalesced 32-bit loads across a row), then the
// ROWS*NT partial sums are reduced with subgroupAdd (USE_SUBGROUP=1) or a
// shared-memory tree. Up to three matrices share a dispatch (q/k/v: rows
// are concatenated in the output); GATE=1 computes gate and up rows
// together and writes silu(gate) * up.
// WIDE=1 (a build of its own; 4-bit decode, K a multiple of 32, groups of 32
// or more; chosen by the host, engine/vulkan/vk-kernels.c): threads stride
// over 32-input units
// instead, each read with one 16-byte load of weights, 8 vec4 loads of
// activations and one scale-table entry (a quarter of the loads of 8-input
// units), FP32 throughout.
// Q8=1 (a build of its own; 4-bit or int8 decode, K a multiple of 32, on
// devices with VK_KHR_shader_integer_dot_product; chosen by the host): the
// activations come quantized to int8 per 32 inputs by quant_q8.comp (binding
// 0 holds its words and block scales instead of x), and each 32-input unit of
// a row is one 16-byte weight load, two masks per word and 8 packed int8 dot
// products (OpSDot, 4 products each), then one FP32 scale per unit:
// s * d * sum q xq + b * d * sum xq. No integer-to-float conversion per
// weight, where the FP32 builds convert every nibble. int8 weights (GGUF
// Q8_0, Q5_*, Q6_K with its scale per 16, the int8 lm_head) take two 16-byte
// loads a unit and 8 dot products against the activations put back in
// input order once per unit.
// USE_FP16=1 (devices with shaderFloat16, opt-in): for FP16 and 4-bit
// weights (int8 products could leave FP16's range) the products of each
// 8-input unit are formed and summed in FP16 (activations rounded to FP16),
// the unit sums accumulate in FP32; USE_FP16=0 is FP32 throughout.
#extension GL_GOOGLE_include_directive : require
#if USE_FP16
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#endif
#if USE_SUBGROUP
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 64;     // power of two
layout(constant_id = 1) const uint ROWS = 2;    // output rows per workgroup
layout(constant_id = 2) const uint NT = 1;      // tokens per workgroup
layout(constant_id = 3) const uint QUANT = 1;   // 0: FP16, 1: 4-bit, 2: int8
layout(constant_id = 4) const uint GATE = 0;    // 1: act(W0 x) * (W1 x), act SiLU or GELU-tanh (flags 8)
#ifndef WIDE
#define WIDE 0
#endif
#ifndef Q8
#define Q8 0
#endif
#if Q8
#extension GL_EXT_spirv_intrinsics : require
// OpSDot (SPV_KHR_integer_dot_product) on two words of 4 signed bytes each:
// glslang 11 has no GLSL name for it yet
spirv_instruction(extensions = ["SPV_KHR_integer_dot_product"], capabilities = [6019, 6018], id = 4450)
int sdot4x8(uint a, uint b, spirv_literal int packed_4x8);
// From a unit's two activation words as quant_q8.comp writes them (the
// bytes of inputs 0, 2, 4, 6 in e, of 1, 3, 5, 7 in o), inputs 0..3 and
// 4..7 in order.
uint q8_order0(uint e, uint o)
{
    return (e & 0xFFu) | ((o & 0xFFu) << 8) | ((e & 0xFF00u) << 8) | ((o & 0xFF00u) << 16);
}
uint q8_order1(uint e, uint o)
{
    return ((e >> 16) & 0xFFu) | ((o >> 8) & 0xFF00u) | ((e >> 8) & 0xFF0000u) | (o & 0xFF000000u);
}
#endif

const uint NMAT = GATE + 1u;
const uint NOUT = ROWS * NT;
const uint NACC = NOUT * NMAT;

#include "linear.glsl"
#if WIDE || Q8
// the same buffers read 16 bytes at a time
layout(std430, set = 0, binding = 0) readonly buffer X4 { vec4 x4[]; };
#if Q8
// binding 0 as quant_q8.comp writes it: nb * 2 uvec4 of int8, then nb (d, d * sum xq)
layout(std430, set = 0, binding = 0) readonly buffer XQ4 { uvec4 xq4[]; };
layout(std430, set = 0, binding = 0) readonly buffer XQF { vec2 xqf[]; };
#endif
layout(std430, set = 0, binding = 2) readonly buffer W04 { uvec4 w0v[]; };
layout(std430, set = 0, binding = 3) readonly buffer W14 { uvec4 w1v[]; };
layout(std430, set = 0, binding = 4) readonly buffer W24 { uvec4 w2v[]; };
#endif

shared float red[WG * NACC];

#if WIDE || Q8
uvec4 wload4(uint m, uint i)
{
    if (m == 0u)
        return w0v[i];
    if (m == 1u)
        return w1v[i];
    return w2v[i];
}
#endif

void main()
{
    const uint tid = gl_LocalInvocationID.x;
    const uint b = gl_WorkGroupID.x;
    const uint b0 = (pc.n0 + ROWS - 1u) / ROWS, b1 = (pc.n1 + ROWS - 1u) / ROWS;
    uint mat, r0, nrows, obase;
    if (b < b0) {
        mat = 0u; r0 = b * ROWS; nrows = pc.n0; obase = 0u;
    } else if (b < b0 + b1) {
        mat = 1u; r0 = (b - b0) * ROWS; nrows = pc.n1; obase = pc.n0;
    } else {
        mat = 2u; r0 = (b - b0 - b1) * ROWS; nrows = pc.n2; obase = pc.n0 + pc.n1;
    }
    const uint n_tok = prm.n_tokens;
    const uint t0 = ((pc.flags & 4u) != 0u ? prm.logit_first : 0u) + gl_WorkGroupID.y * NT;
    if (t0 >= n_tok)
        return;   // uniform over the workgroup

    float acc[NACC];
    for (uint i = 0u; i < NACC; i++)
        acc[i] = 0.0;

#if Q8
    // 32-input units of one token (the host checked what WIDE needs); the
    // decode step's row is the only one in binding 0
    const uint units32 = pc.k / 32u, kw4 = pc.kw / 4u;
    const uint M4 = 0x0F0F0F0Fu;
    for (uint u = tid; u < units32; u += WG) {
        const uvec4 a0 = xq4[2u * u], a1 = xq4[2u * u + 1u];
        const vec2 dx = xqf[4u * units32 + u];
        // int8 weights hold their inputs in order: the activations' even and
        // odd bytes interleaved again, once per unit for all rows
        uvec4 n0 = uvec4(0u), n1 = uvec4(0u);
        if (QUANT == 2u) {
            n0 = uvec4(q8_order0(a0.x, a0.y), q8_order1(a0.x, a0.y), q8_order0(a0.z, a0.w), q8_order1(a0.z, a0.w));
            n1 = uvec4(q8_order0(a1.x, a1.y), q8_order1(a1.x, a1.y), q8_order0(a1.z, a1.w), q8_order1(a1.z, a1.w));
        }
        for (uint r = 0u; r < ROWS; r++) {
            const uint row = r0 + r;
            if (row >= nrows)
                break;
            for (uint g = 0u; g < NMAT; g++) {
                const uint m = GATE == 1u ? g : mat;
                const uint soff = m == 0u ? pc.soff0 : (m == 1u ? pc.soff1 : pc.soff2);
                if (QUANT == 2u) {   // 8 words a unit: inputs 0..15, then 16..31
                    const uvec4 wa = wload4(m, row * kw4 + 2u * u), wb = wload4(m, row * kw4 + 2u * u + 1u);
                    const int lo = sdot4x8(wa.x, n0.x, 0) + sdot4x8(wa.y, n0.y, 0) + sdot4x8(wa.z, n0.z, 0) +
                                   sdot4x8(wa.w, n0.w, 0);
                    const int hi = sdot4x8(wb.x, n1.x, 0) + sdot4x8(wb.y, n1.y, 0) + sdot4x8(wb.z, n1.z, 0) +
                                   sdot4x8(wb.w, n1.w, 0);
                    if (pc.gsize == 16u && pc.ng != 1u) {   // GGUF Q6_K: a scale per 16, no offsets
                        const vec2 s0 = wscale(m, soff, row * pc.ng + 2u * u, pc.sfmt);
                        const vec2 s1 = wscale(m, soff, row * pc.ng + 2u * u + 1u, pc.sfmt);
                        acc[g * ROWS + r] += dx.x * (s0.x * float(lo) + s1.x * float(hi));
                    } else {
                        const vec2 sb = wscale(m, soff, row * pc.ng + (pc.ng == 1u ? 0u : u * 32u / pc.gsize), pc.sfmt);
                        acc[g * ROWS + r] += sb.x * (dx.x * float(lo + hi)) + sb.y * dx.y;
                    }
                    continue;
                }
                const vec2 sb = wscale(m, soff, row * pc.ng + (pc.ng == 1u ? 0u : u * 32u / pc.gsize), pc.sfmt);
                const uvec4 wq = wload4(m, row * kw4 + u);
                const int qx = sdot4x8(wq.x & M4, a0.x, 0) + sdot4x8((wq.x >> 4) & M4, a0.y, 0) +
                               sdot4x8(wq.y & M4, a0.z, 0) + sdot4x8((wq.y >> 4) & M4, a0.w, 0) +
                               sdot4x8(wq.z & M4, a1.x, 0) + sdot4x8((wq.z >> 4) & M4, a1.y, 0) +
                               sdot4x8(wq.w & M4, a1.z, 0) + sdot4x8((wq.w >> 4) & M4, a1.w, 0);
                acc[g * ROWS + r] += sb.x * (dx.x * float(qx)) + sb.y * dx.y;
            }
        }
    }

#elif WIDE
    // 32-input units of one token (the host checked k % 32 == 0,
    // x_stride % 4 == 0 and groups of a multiple of 32 inputs).
    const uint units32 = pc.k / 32u;
    const uint xrow4 = t0 * pc.x_stride / 4u, kw4 = pc.kw / 4u;
    for (uint u = tid; u < units32; u += WG) {
        vec4 xv4[8];
        vec4 xs = vec4(0.0);
        for (uint i = 0u; i < 8u; i++) {
            xv4[i] = x4[xrow4 + u * 8u + i];
            xs += xv4[i];
        }
        const float sx = dot(xs, vec4(1.0));
        for (uint r = 0u; r < ROWS; r++) {
            const uint row = r0 + r;
            if (row >= nrows)
                break;
            for (uint g = 0u; g < NMAT; g++) {
                const uint m = GATE == 1u ? g : mat;
                const uint soff = m == 0u ? pc.soff0 : (m == 1u ? pc.soff1 : pc.soff2);
                const vec2 sb = wscale(m, soff, row * pc.ng + (pc.ng == 1u ? 0u : u * 32u / pc.gsize), pc.sfmt);
                const uvec4 wq = wload4(m, row * kw4 + u);
                float qx = 0.0;
                for (uint j = 0u; j < 4u; j++) {
                    const uint w = wq[j];
                    qx += dot(vec4(uvec4(w, w >> 4, w >> 8, w >> 12) & 15u), xv4[2u * j]) +
                          dot(vec4(uvec4(w >> 16, w >> 20, w >> 24, w >> 28) & 15u), xv4[2u * j + 1u]);
                }
                acc[g * ROWS + r] += sb.x * qx + sb.y * sx;
            }
        }
    }

#else
    const uint units = (pc.k + 7u) / 8u;
    for (uint u = tid; u < units; u += WG) {
        const uint kb = u * 8u;
        float xv[NT * 8u];
        float sx[NT];
        for (uint t = 0u; t < NT; t++) {
            const uint base = min(t0 + t, n_tok - 1u) * pc.x_stride + kb;
            float s = 0.0;
            if (kb + 8u <= pc.k) {
                for (uint i = 0u; i < 8u; i++) {
                    xv[t * 8u + i] = x[base + i];
                    s += xv[t * 8u + i];
                }
            } else {
                for (uint i = 0u; i < 8u; i++) {
                    xv[t * 8u + i] = kb + i < pc.k ? x[base + i] : 0.0;
                    s += xv[t * 8u + i];
                }
            }
            sx[t] = s;
        }
#if USE_FP16
        f16vec4 xh[NT * 2u];
        for (uint t = 0u; t < NT; t++) {
            xh[2u * t] = f16vec4(xv[t * 8u], xv[t * 8u + 1u], xv[t * 8u + 2u], xv[t * 8u + 3u]);
            xh[2u * t + 1u] = f16vec4(xv[t * 8u + 4u], xv[t * 8u + 5u], xv[t * 8u + 6u], xv[t * 8u + 7u]);
        }
#endif
        for (uint r = 0u; r < ROWS; r++) {
            const uint row = r0 + r;
            if (row >= nrows)
                break;
            for (uint g = 0u; g < NMAT; g++) {
                const uint m = GATE == 1u ? g : mat;
                if (QUANT != 0u) {
                    const uint soff = m == 0u ? pc.soff0 : (m == 1u ? pc.soff1 : pc.soff2);
                    const vec2 sb = wscale(m, soff, row * pc.ng + (pc.ng == 1u ? 0u : kb / pc.gsize), pc.sfmt);
#if USE_FP16
                    if (QUANT == 1u) {
                        const uint word = wload(m, row * pc.kw + u);
                        const f16vec4 qa = f16vec4(uvec4(word & 15u, (word >> 4) & 15u, (word >> 8) & 15u,
                                                           (word >> 12) & 15u));
                        const f16vec4 qb = f16vec4(uvec4((word >> 16) & 15u, (word >> 20) & 15u,
                                                           (word >> 24) & 15u, word >> 28));
                        for (uint t = 0u; t < NT; t++) {
                            const float qx = float(dot(qa, xh[2u * t]) + dot(qb, xh[2u * t + 1u]));
                            acc[(g * ROWS + r) * NT + t] += sb.x * qx + sb.y * sx[t];
                        }
                        continue;
                    }
#endif
                    vec4 qa, qb;
                    wunit(m, row * pc.kw, u, QUANT, qa, qb);
                    for (uint t = 0u; t < NT; t++) {
                        const uint xb = t * 8u;
                        float qx = dot(qa, vec4(xv[xb], xv[xb + 1u], xv[xb + 2u], xv[xb + 3u])) +
                                   dot(qb, vec4(xv[xb + 4u], xv[xb + 5u], xv[xb + 6u], xv[xb + 7u]));
                        acc[(g * ROWS + r) * NT + t] += sb.x * qx + sb.y * sx[t];
                    }
                } else {
                    const uint wb = row * pc.kw + u * 4u;
#if USE_FP16
                    const f16vec4 fa = f16vec4(unpackFloat2x16(wload(m, wb)), unpackFloat2x16(wload(m, wb + 1u)));
                    const f16vec4 fb = f16vec4(unpackFloat2x16(wload(m, wb + 2u)), unpackFloat2x16(wload(m, wb + 3u)));
                    for (uint t = 0u; t < NT; t++)
                        acc[(g * ROWS + r) * NT + t] += float(dot(fa, xh[2u * t]) + dot(fb, xh[2u * t + 1u]));
                    continue;
#endif
                    const vec4 ha = vec4(unpackHalf2x16(wload(m, wb)), unpackHalf2x16(wload(m, wb + 1u)));
                    const vec4 hb = vec4(unpackHalf2x16(wload(m, wb + 2u)), unpackHalf2x16(wload(m, wb + 3u)));
                    for (uint t = 0u; t < NT; t++) {
                        const uint xb = t * 8u;
                        acc[(g * ROWS + r) * NT + t] +=
                            dot(ha, vec4(xv[xb], xv[xb + 1u], xv[xb + 2u], xv[xb + 3u])) +
                            dot(hb, vec4(xv[xb + 4u], xv[xb + 5u], xv[xb + 6u], xv[xb + 7u]));
                    }
                }
            }
        }
    }

#endif

    // Reduce the NACC partial sums over the workgroup.
#if USE_SUBGROUP
    for (uint i = 0u; i < NACC; i++) {
        const float v = subgroupAdd(acc[i]);
        if (subgroupElect())
            red[gl_SubgroupID * NACC + i] = v;
    }
    barrier();
    const uint nsg = gl_NumSubgroups;
#else
    for (uint i = 0u; i < NACC; i++)
        red[i * WG + tid] = acc[i];
    barrier();
    for (uint s = WG / 2u; s > 0u; s >>= 1) {
        if (tid < s) {
            for (uint i = 0u; i < NACC; i++)
                red[i * WG + tid] += red[i * WG + tid + s];
        }
        barrier();
    }
#endif

    for (uint i = tid; i < NOUT; i += WG) {
        const uint r = i / NT, t = i % NT;
        const uint row = r0 + r, tt = t0 + t;
        if (row >= nrows || tt >= n_tok)
            continue;
        float v[2] = { 0.0, 0.0 };
        for (uint g = 0u; g < NMAT; g++) {
            const uint a = g * NOUT + i;
#if USE_SUBGROUP
            float s = 0.0;
            for (uint sg = 0u; sg < nsg; sg++)
                s += red[sg * NACC + a];
            v[g] = s;
#else
            v[g] = red[a * WG];
#endif
        }
        const uint R = pc.obase + obase + row;
        float val = v[0];
        if (GATE == 1u)
            val = gate_act(val, v[1]);
        if ((pc.flags & 2u) != 0u)
            val += bias[R];
        val = out_cap(val);
        // lm_head: token logit_first + i goes to output row i
        const uint idx = (tt - ((pc.flags & 4u) != 0u ? prm.logit_first : 0u)) * pc.o_stride + R;
        if ((pc.flags & 1u) != 0u)
            o[idx] += val;
        else
            o[idx] = val;
    }
}
