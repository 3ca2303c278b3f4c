// linear.glsl — the interface of the linear kernels (gemv.comp, gemm.comp,
// gemm_coop.comp), which take the same descriptor set and push constants
// (engine/vulkan/vk-kernels.c hr_vk_make_gemv): activations, output, up to
// three weight matrices (q/k/v in one dispatch, or gate and up), bias, the
// step's params; and weights.glsl to read the matrices.

#include "params.glsl"

layout(std430, set = 0, binding = 0) readonly buffer X { float x[]; };
layout(std430, set = 0, binding = 1) buffer O { float o[]; };
layout(std430, set = 0, binding = 2) readonly buffer W0 { uint w0[]; };
layout(std430, set = 0, binding = 3) readonly buffer W1 { uint w1[]; };
layout(std430, set = 0, binding = 4) readonly buffer W2 { uint w2[]; };
layout(std430, set = 0, binding = 5) readonly buffer B { float bias[]; };
layout(std430, set = 0, binding = 6) readonly buffer P { HrStepParams prm; };

layout(push_constant) uniform Push {
    uint n0, n1, n2;            // rows of each matrix (n1 = n2 = 0: one matrix)
    uint k;                     // inputs
    uint kw;                    // words per weight row
    uint ng, gsize;             // groups per row, inputs per group (QUANT)
    uint soff0, soff1, soff2;   // word offset of each matrix's scale table (QUANT)
    uint x_stride, o_stride;    // floats per token row
    uint flags;                 // 1: o += (residual), 2: + bias, 4: tokens from prm.logit_first, written from output row 0,
                                // 8: the gate's activation is gelu_pytorch_tanh (Gemma), else SiLU,
                                // 16: the output soft-capped (pc.softcap)
    uint obase;                 // added to every output row index
    uint sfmt;                  // scale table format (QUANT): 0 ZERO, 1 OFF16, 2 F32, 3 F32OFF, 4 K4
    float softcap;              // flags 16 (Gemma 2's logits): out = softcap * tanh(out / softcap)
} pc;

uint wload(uint m, uint i)
{
    if (m == 0u)
        return w0[i];
    if (m == 1u)
        return w1[i];
    return w2[i];
}

#include "weights.glsl"

// The logits' soft cap (flags 16), the last step of an output.
float out_cap(float v)
{
    return (pc.flags & 16u) != 0u ? pc.softcap * tanh(v / pc.softcap) : v;
}

// The gate|up epilogue: act(g) * u, act SiLU or (flags 8) GELU-tanh.
float gate_act(float g, float u)
{
    if ((pc.flags & 8u) != 0u)
        return 0.5 * g * (1.0 + tanh(0.7978845608028654 * (g + 0.044715 * g * g * g))) * u;
    return g / (1.0 + exp(-g)) * u;
}
