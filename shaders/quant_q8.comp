#version 450
// quant_q8.comp — one activation row (a decode step's) to int8 in blocks of
// 32 for the q8 decode GEMV (gemv.comp built with Q8=1), as the CPU's decode
// rounds it (engine/cpu/cpu-kernels.c): d = max|x| / 127, xq = x / d rounded
// to nearest even, so |xq| <= 127 and x ~ d * xq.
//
// Output (one buffer; engine/vulkan/vk-kernels.h, hr_vk_q8_words): for block
// b of nb = k / 32, uvec4 words 2b and 2b + 1 hold its 8-input units u in
// the order of the 4-bit weight words' nibbles: per unit two words, the
// bytes of the even inputs 8u, 8u+2, 8u+4, 8u+6, then the odd ones, so a
// weight word's low nibbles (w & 0x0F0F0F0F) and high nibbles meet their
// activations byte for byte in one packed dot product each. After the nb * 8
// words, one vec2 per block: (d, d * sum xq), the second for the weights'
// offsets (w = s q + b: b * sum x ~ b * d * sum xq, as the CPU takes it).
//
// One thread per block; k % 32 == 0 and the row start a multiple of 4.
layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 64;

layout(std430, set = 0, binding = 0) readonly buffer X4 { vec4 x4[]; };
layout(std430, set = 0, binding = 1) writeonly buffer Q4 { uvec4 q4[]; };
layout(std430, set = 0, binding = 1) writeonly buffer QF { vec2 qf[]; };

layout(push_constant) uniform Push {
    uint nb;      // blocks of 32 inputs
    uint x0;      // first float of the row (a multiple of 4)
} pc;

uint pack4(int a, int b, int c, int d)
{
    return (uint(a) & 255u) | ((uint(b) & 255u) << 8) | ((uint(c) & 255u) << 16) | (uint(d) << 24);
}

void main()
{
    const uint b = gl_GlobalInvocationID.x;
    if (b >= pc.nb)
        return;
    vec4 v[8];
    float m = 0.0;
    for (uint i = 0u; i < 8u; i++) {
        v[i] = x4[pc.x0 / 4u + 8u * b + i];
        const vec4 a = abs(v[i]);
        m = max(m, max(max(a.x, a.y), max(a.z, a.w)));
    }
    const float d = m / 127.0, id = m > 0.0 ? 127.0 / m : 0.0;
    ivec4 q[8];
    int s = 0;
    for (uint i = 0u; i < 8u; i++) {
        q[i] = ivec4(roundEven(v[i] * id));
        s += q[i].x + q[i].y + q[i].z + q[i].w;
    }
    uint w[8];
    for (uint u = 0u; u < 4u; u++) {   // unit u: inputs 8u..8u+3 in q[2u], 8u+4..8u+7 in q[2u+1]
        w[2u * u] = pack4(q[2u * u].x, q[2u * u].z, q[2u * u + 1u].x, q[2u * u + 1u].z);
        w[2u * u + 1u] = pack4(q[2u * u].y, q[2u * u].w, q[2u * u + 1u].y, q[2u * u + 1u].w);
    }
    q4[2u * b] = uvec4(w[0], w[1], w[2], w[3]);
    q4[2u * b + 1u] = uvec4(w[4], w[5], w[6], w[7]);
    qf[4u * pc.nb + b] = vec2(d, d * float(s));
}
