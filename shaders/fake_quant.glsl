// fake_quant.glsl — the AWQ search's round-to-nearest fake quantization, as
// the CPU's hr_awq_fake_quant_row (engine/cpu/cpu-awq.c) writes it: a
// group's range with 0, its scale (max - min) / qmax (at least 1e-7) rounded
// up to FP16, its zero point -round(min / scale) in [0, qmax], and each value
// (clamp(round(v / scale) + z, 0, qmax) - z) * scale; round half away from
// zero, as C's roundf. Included by scale_quant.comp and clip_search.comp.

float fq_round(float y)
{
    const float tr = trunc(y);
    return abs(y - tr) >= 0.5 ? tr + sign(y) : tr;
}

// the group's scale and zero point from its range (mn <= 0 <= mx)
vec2 fq_params(float mn, float mx, float qmax)
{
    precise float sc = (mx - mn) / qmax;
    if (!(sc >= 1e-7))
        sc = 1e-7;
    // the smallest FP16 >= sc, whichever way packHalf2x16 rounds
    uint h = packHalf2x16(vec2(sc, 0.0)) & 0xffffu;
    if (unpackHalf2x16(h).x < sc && (h & 0x7c00u) != 0x7c00u)
        h++;
    sc = unpackHalf2x16(h).x;
    return vec2(sc, clamp(-fq_round(mn / sc), 0.0, qmax));
}

float fq_value(float v, vec2 p, float qmax)
{
    precise float q = clamp(fq_round(v / p.x) + p.y, 0.0, qmax);
    precise float r = (q - p.y) * p.x;
    return r;
}
