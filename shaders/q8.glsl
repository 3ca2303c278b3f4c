// q8.glsl — a decode row's activations as int8 for the q8 GEMV (gemv.comp
// built with Q8=1), rounded as the CPU's decode rounds them
// (engine/cpu/cpu-kernels.c): per block of 32, d = max|x| / 127 and
// xq = x / d to nearest even, so |xq| <= 127 and x ~ d * xq.
//
// The buffer (engine/vulkan/vk-kernels.h, hr_vk_q8_words): for block b of
// nb, uvec4 words 2b and 2b + 1 hold its 8-input units u in the order of the
// 4-bit weight words' nibbles: per unit two words, the bytes of the even
// inputs 8u, 8u+2, 8u+4, 8u+6, then the odd ones, so a weight word's low
// nibbles (w & 0x0F0F0F0F) and high nibbles meet their activations byte for
// byte in one packed dot product each. After the nb * 8 words, one vec2 per
// block: (d, d * sum xq), the second for the weights' offsets (w = s q + b:
// b * sum x ~ b * d * sum xq, as the CPU takes it).
//
// The including shader defines Q8_BINDING, the binding of that buffer.

layout(std430, set = 0, binding = Q8_BINDING) writeonly buffer Q8Words { uvec4 q8_words[]; };
layout(std430, set = 0, binding = Q8_BINDING) writeonly buffer Q8Scales { vec2 q8_scales[]; };

uint q8_pack4(int a, int b, int c, int d)
{
    return (uint(a) & 255u) | ((uint(b) & 255u) << 8) | ((uint(c) & 255u) << 16) | (uint(d) << 24);
}

// Block b of nb: inputs 32b + 4i + c in v[i][c].
void q8_store(uint b, uint nb, vec4 v[8])
{
    float m = 0.0;
    for (uint i = 0u; i < 8u; i++) {
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
        w[2u * u] = q8_pack4(q[2u * u].x, q[2u * u].z, q[2u * u + 1u].x, q[2u * u + 1u].z);
        w[2u * u + 1u] = q8_pack4(q[2u * u].y, q[2u * u].w, q[2u * u + 1u].y, q[2u * u + 1u].w);
    }
    q8_words[2u * b] = uvec4(w[0], w[1], w[2], w[3]);
    q8_words[2u * b + 1u] = uvec4(w[4], w[5], w[6], w[7]);
    q8_scales[4u * nb + b] = vec2(d, d * float(s));
}
