#version 450
// gemm_coop.comp — prefill on matrix units: out[t, R] (+)= W[R, :] . x[t, :]
// with VK_NV_cooperative_matrix (FP16 operands, FP32 sums), the operation of
// gemm.comp. A workgroup owns a BM-row x BN-token tile and NW subgroups of 32,
// each a WM x WN part of it: (WM/FM) x (WN/FN) accumulator fragments of
// FM x FN (the fragment shape the device reports, 16x16x16 or 16x8x16). Per
// BK-wide slice of K the workgroup dequantizes BM x BK weights to FP16 in
// shared memory (row-major, rows padded to 16-byte multiples: every fragment
// load starts on a 16-byte boundary) and the BN x BK activations beside them
// (token-major, read as the column-major K x N operand), then each subgroup
// runs its fragments' multiply-adds. With PREFETCH the next slice's global
// loads (weight words as stored, FP32 activations) are issued into registers
// before this slice's multiply-adds and land in shared memory after them,
// so their latency hides behind the matrix units. The epilogue goes through shared memory
// one fragment per subgroup at a time, so every thread applies gemm.comp's
// epilogues (SiLU*mul of gate+up, bias, residual, lm_head rows from
// logit_first) to any element.
//
// Built twice: EMU=0 with the extension, EMU=1 without it, where each group
// of 32 threads does a fragment's work by hand (lane l holds elements l,
// l + 32, .. of a fragment, row-major; the products of FP16 values are exact
// in FP32, as on the matrix units): the same tiles, loads and epilogue, so
// lavapipe tests everything but the three cooperative-matrix calls.
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#if !EMU
#extension GL_NV_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_KHR_shader_subgroup_basic : require
#endif

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 128;    // 32 * (BM/WM) * (BN/WN)
layout(constant_id = 1) const uint BM = 128;    // rows per tile
layout(constant_id = 2) const uint BN = 64;     // tokens per tile
layout(constant_id = 3) const uint BK = 32;     // K slice (a multiple of FK and of 8)
layout(constant_id = 4) const uint WM = 64;     // rows per subgroup
layout(constant_id = 5) const uint WN = 32;     // tokens per subgroup
layout(constant_id = 6) const uint QUANT = 1;   // 0: FP16, 1: 4-bit, 2: int8
layout(constant_id = 7) const uint GATE = 0;
layout(constant_id = 8) const uint FM = 16;     // fragment rows
layout(constant_id = 9) const uint FN = 16;     // fragment tokens
layout(constant_id = 10) const uint FK = 16;    // fragment depth
layout(constant_id = 11) const uint PREFETCH = 1; // 1: the next slice's loads in flight during the MMAs

const uint NMAT = GATE + 1u;
const uint LDA = BK + 8u;                       // halves a shared row: 16-byte multiple, rows offset in banks
const uint NWM = BM / WM;                       // subgroups along the rows
const uint NW = NWM * (BN / WN);
const uint FRM = WM / FM, FRN = WN / FN;        // fragments a subgroup, each way
const uint NF = FRM * FRN;
const uint FE = FM * FN;                        // elements a fragment
const uint WPU = QUANT == 1u ? 1u : (QUANT == 2u ? 2u : 4u);   // weight words an 8-input unit
const uint UT = (BM * (BK / 8u) + WG - 1u) / WG;               // weight units a thread loads, per matrix
const uint XT = (BN * BK + WG - 1u) / WG;                      // activations a thread loads

#include "linear.glsl"

shared float16_t ws[NMAT * BM * LDA];
shared float16_t xs[BN * LDA];
shared float cs[NW * FE];


#if EMU
const uint EPL = FE / 32u;                      // elements a lane holds
#define ACC_ELEMS (NMAT * NF * EPL)
#define UNROLL                                  // plain loops: lavapipe compiles the unrolled ones for minutes
#else
#define UNROLL [[unroll]]                       // fragments in registers
#endif

// This workgroup's matrix, rows and tokens (main), and one slice's loads
// held in registers between fetch() and put().
uint tid, mat, r0, nrows, t0, n_tok, units;
uint rw[NMAT * UT * 4u];
float rx[XT];

// The global loads of the slice at kb: the weight words as stored, the
// activations as FP32 (tokens past the step repeat its last one; their
// outputs are not written).
void fetch(uint kb)
{
    UNROLL for (uint g = 0u; g < NMAT; g++) {
        const uint m = GATE == 1u ? g : mat;
        UNROLL for (uint i = 0u; i < UT; i++) {
            const uint idx = tid + i * WG;
            const uint r = idx / (BK / 8u), u = idx % (BK / 8u);
            const uint row = r0 + r, unit = kb / 8u + u;
            UNROLL for (uint w = 0u; w < WPU; w++) {
                uint v = 0u;
                if (idx < BM * (BK / 8u) && row < nrows && unit < units)
                    v = wload(m, row * pc.kw + unit * WPU + w);
                rw[(g * UT + i) * 4u + w] = v;
            }
        }
    }
    UNROLL for (uint i = 0u; i < XT; i++) {
        const uint idx = tid + i * WG;
        const uint tt = idx / BK, kg = kb + idx % BK;
        float v = 0.0;
        if (idx < BN * BK && kg < pc.k)
            v = x[min(t0 + tt, n_tok - 1u) * pc.x_stride + kg];
        rx[i] = v;
    }
}

// The fetched slice into shared memory: weights dequantized to FP16 (s * q
// + b in FP32, then rounded), activations rounded to FP16.
void put(uint kb)
{
    UNROLL for (uint g = 0u; g < NMAT; g++) {
        const uint m = GATE == 1u ? g : mat;
        const uint soff = m == 0u ? pc.soff0 : (m == 1u ? pc.soff1 : pc.soff2);
        UNROLL for (uint i = 0u; i < UT; i++) {
            const uint idx = tid + i * WG;
            if (idx >= BM * (BK / 8u))
                continue;
            const uint r = idx / (BK / 8u), u = idx % (BK / 8u);
            const uint row = r0 + r, unit = kb / 8u + u, rb = (g * UT + i) * 4u;
            vec4 qa = vec4(0.0), qb = vec4(0.0);
            if (row < nrows && unit < units) {
                if (QUANT != 0u) {
                    const vec2 sb = wscale(m, soff, row * pc.ng + (pc.ng == 1u ? 0u : unit * 8u / pc.gsize), pc.sfmt);
                    wdecode(QUANT, rw[rb], rw[rb + 1u], qa, qb);
                    qa = sb.x * qa + sb.y;
                    qb = sb.x * qb + sb.y;
                } else {
                    qa = vec4(unpackHalf2x16(rw[rb]), unpackHalf2x16(rw[rb + 1u]));
                    qb = vec4(unpackHalf2x16(rw[rb + 2u]), unpackHalf2x16(rw[rb + 3u]));
                }
            }
            const uint o = (g * BM + r) * LDA + u * 8u;
            [[unroll]] for (uint j = 0u; j < 4u; j++) {
                ws[o + j] = float16_t(qa[j]);
                ws[o + 4u + j] = float16_t(qb[j]);
            }
        }
    }
    UNROLL for (uint i = 0u; i < XT; i++) {
        const uint idx = tid + i * WG;
        if (idx < BN * BK)
            xs[(idx / BK) * LDA + idx % BK] = float16_t(rx[i]);
    }
}

void main()
{
    tid = gl_LocalInvocationID.x;
    const uint b = gl_WorkGroupID.x;
    const uint b0 = (pc.n0 + BM - 1u) / BM, b1 = (pc.n1 + BM - 1u) / BM;
    uint obase;
    if (b < b0) {
        mat = 0u; r0 = b * BM; nrows = pc.n0; obase = 0u;
    } else if (b < b0 + b1) {
        mat = 1u; r0 = (b - b0) * BM; nrows = pc.n1; obase = pc.n0;
    } else {
        mat = 2u; r0 = (b - b0 - b1) * BM; nrows = pc.n2; obase = pc.n0 + pc.n1;
    }
    n_tok = prm.n_tokens;
    const uint tbase = (pc.flags & 4u) != 0u ? prm.logit_first : 0u;
    t0 = tbase + gl_WorkGroupID.y * BN;
    if (t0 >= n_tok)
        return;
    units = (pc.k + 7u) / 8u;                   // 8-input units a row (FP16 rows are padded to them too)

#if EMU
    const uint warp = tid / 32u, lane = tid % 32u;
    float acc[ACC_ELEMS];
    UNROLL for (uint i = 0u; i < ACC_ELEMS; i++)
        acc[i] = 0.0;
#else
    const uint warp = gl_SubgroupID;
    fcoopmatNV<32, gl_ScopeSubgroup, FM, FN> acc[NMAT * NF];
    UNROLL for (uint i = 0u; i < NMAT * NF; i++)
        acc[i] = fcoopmatNV<32, gl_ScopeSubgroup, FM, FN>(0.0);
#endif
    const uint wm0 = (warp % NWM) * WM, wn0 = (warp / NWM) * WN;

    if (PREFETCH == 1u)
        fetch(0u);
    for (uint kb = 0u; kb < pc.k; kb += BK) {
        if (PREFETCH == 0u)
            fetch(kb);
        barrier();                              // the last slice's fragments are loaded
        put(kb);
        barrier();
        if (PREFETCH == 1u && kb + BK < pc.k)
            fetch(kb + BK);                     // in flight during this slice's multiply-adds
        UNROLL for (uint kk = 0u; kk < BK; kk += FK) {
#if EMU
            UNROLL for (uint g = 0u; g < NMAT; g++) {
                UNROLL for (uint f = 0u; f < NF; f++) {
                    const uint abase = (g * BM + wm0 + (f / FRN) * FM) * LDA + kk;
                    const uint bbase = (wn0 + (f % FRN) * FN) * LDA + kk;
                    UNROLL for (uint e = 0u; e < EPL; e++) {
                        const uint p = lane + 32u * e, i = p / FN, j = p % FN;
                        float s = 0.0;
                        for (uint q = 0u; q < FK; q++)
                            s += float(ws[abase + i * LDA + q]) * float(xs[bbase + j * LDA + q]);
                        acc[(g * NF + f) * EPL + e] += s;
                    }
                }
            }
#else
            fcoopmatNV<16, gl_ScopeSubgroup, FK, FN> bm[FRN];
            UNROLL for (uint fn = 0u; fn < FRN; fn++)
                coopMatLoadNV(bm[fn], xs, (wn0 + fn * FN) * LDA + kk, LDA, true);   // K x N, column-major
            UNROLL for (uint g = 0u; g < NMAT; g++) {
                UNROLL for (uint fm = 0u; fm < FRM; fm++) {
                    fcoopmatNV<16, gl_ScopeSubgroup, FM, FK> am;
                    coopMatLoadNV(am, ws, (g * BM + wm0 + fm * FM) * LDA + kk, LDA, false);
                    UNROLL for (uint fn = 0u; fn < FRN; fn++)
                        acc[g * NF + fm * FRN + fn] = coopMatMulAddNV(am, bm[fn], acc[g * NF + fm * FRN + fn]);
                }
            }
#endif
        }
    }

    // Epilogue, one fragment a subgroup at a time through cs (row-major).
    UNROLL for (uint f = 0u; f < NF; f++) {
#if EMU
        UNROLL for (uint e = 0u; e < EPL; e++) {
            float v = acc[f * EPL + e];
            if (GATE == 1u)
                v = gate_act(v, acc[(NF + f) * EPL + e]);
            cs[warp * FE + lane + 32u * e] = v;
        }
#else
        fcoopmatNV<32, gl_ScopeSubgroup, FM, FN> r = acc[f];
        if (GATE == 1u) {
            for (int i = 0; i < r.length(); i++)
                r[i] = gate_act(r[i], acc[NF + f][i]);
        }
        coopMatStoreNV(r, cs, warp * FE, FN, false);
#endif
        barrier();
        for (uint idx = tid; idx < NW * FE; idx += WG) {
            const uint w = idx / FE, e = idx % FE;
            const uint row = r0 + (w % NWM) * WM + (f / FRN) * FM + e / FN;
            const uint tt = t0 + (w / NWM) * WN + (f % FRN) * FN + e % FN;
            if (row >= nrows || tt >= n_tok)
                continue;
            const uint R = pc.obase + obase + row;
            float val = cs[idx];
            if ((pc.flags & 2u) != 0u)
                val += bias[R];
            val = out_cap(val);
            const uint oi = (tt - tbase) * pc.o_stride + R;   // lm_head: token logit_first + i to output row i
            if ((pc.flags & 1u) != 0u)
                o[oi] += val;
            else
                o[oi] = val;
        }
        barrier();
    }
}
