#version 450
// gemm.comp — prefill: out[t, R] (+)= W[R, :] . x[t, :] for a chunk of
// tokens, tiled through shared memory. A workgroup owns a BM-row x BN-token
// tile; per BK-wide slice of K it dequantizes BM x BK weights (4-bit, int8
// or FP16, the layouts of gemv.comp) and stages BN x BK activations in shared
// memory, both K-major, then each thread accumulates a TM x TN register
// block: rows ty*TM .. +TM (one value for all the threads of a row group: a
// broadcast read) and tokens tx, tx + NX, .. (NX = BN/TN: neighbouring
// threads read neighbouring words, no bank conflict). Same epilogues and
// multi-matrix rules as gemv.comp (q/k/v in one dispatch, gate+up with
// silu*mul, residual, bias, lm_head rows from logit_first).
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 128;    // (BM/TM) * (BN/TN)
layout(constant_id = 1) const uint BM = 128;    // rows per tile
layout(constant_id = 2) const uint BN = 64;     // tokens per tile
layout(constant_id = 3) const uint BK = 32;     // K slice (multiple of 8)
layout(constant_id = 4) const uint TM = 8;      // rows per thread
layout(constant_id = 5) const uint TN = 8;      // tokens per thread
layout(constant_id = 6) const uint QUANT = 1;   // 0: FP16, 1: 4-bit, 2: int8
layout(constant_id = 7) const uint GATE = 0;

const uint LDW = BM + 1u;                       // padded K-major rows
const uint LDX = BN + 1u;
const uint WT = BK * LDW;
const uint NMAT = GATE + 1u;
const uint NX = BN / TN;                        // threads along the tokens

#include "linear.glsl"

shared float ws[WT * NMAT];
shared float xs[BK * LDX];


void main()
{
    const uint tid = gl_LocalInvocationID.x;
    const uint b = gl_WorkGroupID.x;
    const uint b0 = (pc.n0 + BM - 1u) / BM, b1 = (pc.n1 + BM - 1u) / BM;
    uint mat, r0, nrows, obase;
    if (b < b0) {
        mat = 0u; r0 = b * BM; nrows = pc.n0; obase = 0u;
    } else if (b < b0 + b1) {
        mat = 1u; r0 = (b - b0) * BM; nrows = pc.n1; obase = pc.n0;
    } else {
        mat = 2u; r0 = (b - b0 - b1) * BM; nrows = pc.n2; obase = pc.n0 + pc.n1;
    }
    const uint n_tok = prm.n_tokens;
    const uint t0 = ((pc.flags & 4u) != 0u ? prm.logit_first : 0u) + gl_WorkGroupID.y * BN;
    if (t0 >= n_tok)
        return;

    const uint tx = tid % NX, ty = tid / NX;
    float acc[TM * TN * NMAT];
    [[unroll]] for (uint i = 0u; i < TM * TN * NMAT; i++)
        acc[i] = 0.0;

    for (uint kb = 0u; kb < pc.k; kb += BK) {
        // Weights: BM x BK, dequantized to FP32.
        for (uint g = 0u; g < NMAT; g++) {
            const uint m = GATE == 1u ? g : mat;
            if (QUANT != 0u) {
                const uint soff = m == 0u ? pc.soff0 : (m == 1u ? pc.soff1 : pc.soff2);
                for (uint idx = tid; idx < BM * (BK / 8u); idx += WG) {
                    // a row's units to neighbouring threads (coalesced loads;
                    // their K-major stores land in distinct banks)
                    const uint r = idx / (BK / 8u), u = idx % (BK / 8u);
                    const uint row = r0 + r, unit = kb / 8u + u;
                    vec4 qa = vec4(0.0), qb = vec4(0.0);
                    if (row < nrows && unit * 8u < pc.k) {
                        const vec2 sb = wscale(m, soff, row * pc.ng + (pc.ng == 1u ? 0u : unit * 8u / pc.gsize),
                                               pc.sfmt);
                        wunit(m, row * pc.kw, unit, QUANT, qa, qb);
                        qa = sb.x * qa + sb.y;
                        qb = sb.x * qb + sb.y;
                    }
                    const uint o = g * WT + u * 8u * LDW + r;
                    [[unroll]] for (uint i = 0u; i < 4u; i++) {
                        ws[o + i * LDW] = qa[i];
                        ws[o + (4u + i) * LDW] = qb[i];
                    }
                }
            } else {
                for (uint idx = tid; idx < BM * (BK / 2u); idx += WG) {
                    const uint r = idx / (BK / 2u), pr = idx % (BK / 2u);
                    const uint row = r0 + r, wi = kb / 2u + pr;
                    vec2 v = vec2(0.0);
                    if (row < nrows && wi < pc.kw)
                        v = unpackHalf2x16(wload(m, row * pc.kw + wi));
                    ws[g * WT + 2u * pr * LDW + r] = v.x;
                    ws[g * WT + (2u * pr + 1u) * LDW + r] = v.y;
                }
            }
        }
        // Activations: BN x BK.
        for (uint idx = tid; idx < BN * BK; idx += WG) {
            const uint tt = idx / BK, kk = idx % BK;
            const uint kg = kb + kk;
            const uint row = min(t0 + tt, n_tok - 1u);
            xs[kk * LDX + tt] = kg < pc.k ? x[row * pc.x_stride + kg] : 0.0;
        }
        barrier();
        // The slice's BK products are summed apart and then added to the
        // total: a running sum over all of K in one register loses ~K/BK
        // times more to rounding (measured on SmolLM2, 30 layers: logits
        // 1.9e-3 of their range from the CPU's, 3.5e-4 with this).
        float part[TM * TN * NMAT];
        [[unroll]] for (uint i = 0u; i < TM * TN * NMAT; i++)
            part[i] = 0.0;
        for (uint kk = 0u; kk < BK; kk++) {
            float xv[TN];
            [[unroll]] for (uint j = 0u; j < TN; j++)
                xv[j] = xs[kk * LDX + tx + j * NX];
            [[unroll]] for (uint g = 0u; g < NMAT; g++) {
                [[unroll]] for (uint i = 0u; i < TM; i++) {
                    const float wv = ws[g * WT + kk * LDW + ty * TM + i];
                    [[unroll]] for (uint j = 0u; j < TN; j++)
                        part[(g * TM + i) * TN + j] += wv * xv[j];
                }
            }
        }
        [[unroll]] for (uint i = 0u; i < TM * TN * NMAT; i++)
            acc[i] += part[i];
        barrier();
    }

    [[unroll]] for (uint i = 0u; i < TM; i++) {
        const uint row = r0 + ty * TM + i;
        if (row >= nrows)
            continue;
        const uint R = pc.obase + obase + row;
        [[unroll]] for (uint j = 0u; j < TN; j++) {
            const uint tt = t0 + tx + j * NX;
            if (tt >= n_tok)
                continue;
            float val = acc[i * TN + j];
            if (GATE == 1u) {
                val = gate_act(val, acc[(TM + i) * TN + j]);
            }
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
}
