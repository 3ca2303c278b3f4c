// weights.glsl — reading the 4-bit and int8 weight layouts and their scale
// tables (engine/vulkan/vk-kernels.h). The including shader defines
//   uint wload(uint m, uint i)   word i of matrix m
// Every format reads as w = s * q + b per group (b = -s*z for a zero point,
// the offset for the others), so a kernel folds b once per group:
// sum (s q + b) x = s * sum q x + b * sum x.

// (s, b) of scale-table entry e (row * ng + group) of the table at word soff.
vec2 wscale(uint m, uint soff, uint e, uint sfmt)
{
    if (sfmt == 4u) { // K4 (GGUF Q4_K): per 8 entries FP16 d|dmin, 8 bytes of 6-bit scales, 8 of mins
        const uint b = soff + 5u * (e >> 3u), j = e & 7u, sh = 8u * (j & 3u);
        const vec2 dd = unpackHalf2x16(wload(m, b));
        const float sc = float((wload(m, b + 1u + (j >> 2u)) >> sh) & 255u);
        const float mn = float((wload(m, b + 3u + (j >> 2u)) >> sh) & 255u);
        return vec2(dd.x * sc, -(dd.y * mn));
    }
    if (sfmt == 3u)   // F32OFF: FP32 scale, FP32 offset
        return vec2(uintBitsToFloat(wload(m, soff + 2u * e)), uintBitsToFloat(wload(m, soff + 2u * e + 1u)));
    const uint w = wload(m, soff + e);
    if (sfmt == 2u)   // F32: FP32 scale
        return vec2(uintBitsToFloat(w), 0.0);
    const vec2 h = unpackHalf2x16(w);
    return vec2(h.x, sfmt == 1u ? h.y : -h.x * float(w >> 16));   // OFF16 | ZERO
}

// The 8 values of a unit from its words: kind 1 (4-bit) one word of
// nibbles (wa), kind 2 (int8) two words of bytes (wa, wb).
void wdecode(uint kind, uint wa, uint wb, out vec4 qa, out vec4 qb)
{
    if (kind == 1u) {
        qa = vec4(uvec4(wa, wa >> 4, wa >> 8, wa >> 12) & 15u);
        qb = vec4(uvec4(wa >> 16, wa >> 20, wa >> 24, wa >> 28) & 15u);
    } else {
        const ivec4 sh = ivec4(24, 16, 8, 0);
        qa = vec4((ivec4(int(wa)) << sh) >> 24);
        qb = vec4((ivec4(int(wb)) << sh) >> 24);
    }
}

// The 8 values of unit u (inputs 8u..8u+7) of the row starting at word rb.
void wunit(uint m, uint rb, uint u, uint kind, out vec4 qa, out vec4 qb)
{
    if (kind == 1u)
        wdecode(kind, wload(m, rb + u), 0u, qa, qb);
    else
        wdecode(kind, wload(m, rb + 2u * u), wload(m, rb + 2u * u + 1u), qa, qb);
}
