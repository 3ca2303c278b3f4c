// cuda-decode.cu — decode kernels written to read the weights and the KV
// cache at memory speed (issue 17). Opt-in until a device run has checked and
// measured them (engine/cuda/README.md): written in a session without a GPU,
// compiled only.
//
//  k_rmsnorm_q8      grid T, block 256: RMSNorm whose output is also rounded
//                    as k_quant_q8 rounds (the q|k|v and gate|up inputs).
//  k_quant_q8        grid (ceil(nb/8), T), block 256: a warp per block of 32
//                    inputs: max |x|, d = max/127, xq = rne(x/d) in the byte
//                    order of cuda-device.h, {d, d*sum(xq)}.
//  k_gemv_fast<EPI, Q4=true>  (the q8 GEMV)
//                    grid (ceil(rows_out/(4*LR)), T), block 128: a warp per
//                    LR output rows (2, or 1 gate|up pair); each lane takes
//                    128-bit weight loads 32 blocks apart, 4 per row in
//                    flight (8 for two rows), meets each with its 32 int8
//                    activations (two 128-bit loads, L1) in 8 dp4a, scales
//                    once per 32 inputs; warp reduction, epilogue.
//  k_gemv_fast<EPI, Q4=false>  the same for FP16 rows (16-byte loads of 8
//                    halves, FP32 activations from L1).
//  k_rope_kv_wide    grid (T, n_heads + 2*n_kv), block hd/2 (to 32): a head a
//                    block, a rotated pair (or two v values) a thread.
//  k_attn_tiled      grid (n_kv, max_splits, ceil(T / (8/G))), block 128:
//                    8/G consecutive queries x one KV head's G query heads
//                    (G <= 8) over one split, in tiles of 64 keys: scores by
//                    4 threads a key (16-byte K loads, the rows' q in shared
//                    memory, per-row causal/window masks), online softmax
//                    per row by a warp, P.V by threads over pairs of
//                    dimensions; writes the same (max, sum, acc[hd])
//                    partials as k_attn_partial.
#include "cuda-device.h"
#include "cuda-internal.h"

#include <cfloat>

namespace hrcuda {

// ---- int8 activations -------------------------------------------------------------

// A warp rounds one block of 32 values (lane i holds input i): d = max|v|/127,
// q = rne(v/d) stored at its byte in the order of cuda-device.h, {d, d*sum(q)}.
__device__ __forceinline__ void
round_block32(float v, int lane, int8_t *xq_block, float2 *xs_entry)
{
    const float amax = warp_max(fabsf(v));
    const float id = amax > 0.0f ? 127.0f / amax : 0.0f;
    const int q = __float2int_rn(v * id);
    const int sum = warp_sum(q);
    xq_block[(lane & ~7) + q8_pos(lane & 7)] = (int8_t)q;
    if (lane == 0) {
        const float d = amax / 127.0f;
        *xs_entry = make_float2(d, d * (float)sum);
    }
}

__global__ void __launch_bounds__(256)
k_quant_q8(const float *__restrict__ x, int ldx, int K, int Kp, int8_t *__restrict__ xq, float2 *__restrict__ xs)
{
    const int lane = threadIdx.x & 31, t = blockIdx.y;
    const int b = blockIdx.x * 8 + (threadIdx.x >> 5), nb = Kp / 32;
    if (b >= nb)
        return;   // the whole warp
    const int k = b * 32 + lane;
    const float v = k < K ? x[(size_t)t * ldx + k] : 0.0f;
    round_block32(v, lane, xq + (size_t)t * Kp + b * 32, xs + (size_t)t * nb + b);
}

void
launch_quant_q8(const float *x, int ldx, int K, int Kp, int T, int8_t *xq, float2 *xs, cudaStream_t s)
{
    const int nb = Kp / 32;
    dim3 grid((unsigned)((nb + 7) / 8), (unsigned)T);
    HR_LAUNCH(grid, 256, s, k_quant_q8, x, ldx, K, Kp, xq, xs);
}

// A block per token: the sum of squares, then a warp per block of 32 outputs
// (out = x * r * w, as k_rmsnorm) rounded as k_quant_q8 rounds.
__global__ void __launch_bounds__(256)
k_rmsnorm_q8(const float *__restrict__ x, const float *__restrict__ w, float *__restrict__ out, int dim, float eps,
             int Kp, int8_t *__restrict__ xq, float2 *__restrict__ xs)
{
    __shared__ float part[8];
    const int t = blockIdx.x, lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const float *xr = x + (size_t)t * dim;
    float ss = 0.0f;
    for (int i = threadIdx.x; i < dim; i += 256)
        ss = fmaf(xr[i], xr[i], ss);
    ss = warp_sum(ss);
    if (lane == 0)
        part[warp] = ss;
    __syncthreads();
    ss = warp_sum(lane < 8 ? part[lane] : 0.0f);
    const float r = 1.0f / sqrtf(ss / (float)dim + eps);
    const int nb = Kp / 32;
    for (int b = warp; b < nb; b += 8) {
        const int k = b * 32 + lane;
        const float v = k < dim ? xr[k] * r * w[k] : 0.0f;
        if (k < dim)
            out[(size_t)t * dim + k] = v;
        round_block32(v, lane, xq + (size_t)t * Kp + b * 32, xs + (size_t)t * nb + b);
    }
}

void
launch_rmsnorm_q8(const float *x, const float *w, float *out, int T, int dim, float eps, int Kp, int8_t *xq,
                  float2 *xs, cudaStream_t s)
{
    HR_LAUNCH(T, 256, s, k_rmsnorm_q8, x, w, out, dim, eps, Kp, xq, xs);
}

bool
q8_gemv_ok(const DLinear &w)
{
    return w.kind == LIN_Q4 && (w.ng == 1 || w.group % 32 == 0);
}

// ---- the 4-bit x int8 GEMV ----------------------------------------------------------

enum { Q8_UNROLL = 4 };

// The decode GEMVs' end: a warp's two sums reduced, then stored (+ bias),
// added to out (+ bias), or, for a gate|up pair, silu(gate) * up.
template <int EPI>
__device__ __forceinline__ void
gemv_epilogue(float acc[2], int lane, int t, int r0, int rows_out, const float *bias, float *out, int ldo)
{
    acc[0] = warp_sum(acc[0]);
    acc[1] = warp_sum(acc[1]);
    if (lane != 0)
        return;
    if constexpr (EPI == EPI_SILU_MUL) {
        out[(size_t)t * ldo + r0] = acc[0] / (1.0f + expf(-acc[0])) * acc[1];
    } else {
#pragma unroll
        for (int p = 0; p < 2; p++) {
            const int r = r0 + p;
            if (r < rows_out) {
                const float a = acc[p] + (bias ? bias[r] : 0.0f);
                float *o = out + (size_t)t * ldo + r;
                *o = EPI == EPI_RESIDUAL ? *o + a : a;
            }
        }
    }
}

// log2(group / 32) when that is a whole power of two (the kernel's group of a
// block is then a shift), else -1 (a division).
int
q8_group_shift(const DLinear &w)
{
    int gshift = -1;
    if (w.ng > 1) {
        const int b = w.group / 32;
        if (b > 0 && (b & (b - 1)) == 0)
            for (gshift = 0; (1 << gshift) < b; gshift++) {
            }
    }
    return gshift;
}

// One kernel for both weight formats (Q4: 4-bit rows on int8 activations;
// else FP16 rows on FP32 activations): a warp's two rows, each lane's 128-bit
// weight loads 32 apart, Q8_UNROLL of them a row issued before any is used.
template <int EPI, bool Q4>
__global__ void __launch_bounds__(128)
k_gemv_fast(DLinear w, const int8_t *__restrict__ xq, const float2 *__restrict__ xs, int gshift,
            const float *__restrict__ x, int ldx, const float *__restrict__ bias, float *out, int ldo, int rows_out)
{
    constexpr int NR = 2;                            // physical rows per warp
    constexpr int LR = EPI == EPI_SILU_MUL ? 1 : 2;  // output rows per warp
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, t = blockIdx.y;
    const int r0 = (blockIdx.x * 4 + warp) * LR;
    if (r0 >= rows_out)
        return;
    // 128-bit units a row: Q4 32 inputs, FP16 8
    const int nvec = Q4 ? w.kw / 4 : w.ldw / 8;
    const uint4 *base = Q4 ? reinterpret_cast<const uint4 *>(w.q) : reinterpret_cast<const uint4 *>(w.w);
    const uint4 *wr[NR];
    const __half2 *szr[NR];
#pragma unroll
    for (int p = 0; p < NR; p++) {
        // gate|up: the gate row and its up row; else two neighbours (the
        // second clamped at the end: computed, not written)
        const int r = EPI == EPI_SILU_MUL ? r0 + p * rows_out : min(r0 + p, rows_out - 1);
        wr[p] = base + (size_t)r * nvec;
        szr[p] = Q4 ? w.sz + (size_t)r * w.ng : nullptr;
    }
    const uint4 *xv = Q4 ? reinterpret_cast<const uint4 *>(xq + (size_t)t * w.kw * 8) : nullptr;
    const float2 *xsr = Q4 ? xs + (size_t)t * nvec : nullptr;
    const float *xr = Q4 ? nullptr : x + (size_t)t * ldx;
    const bool vec = !Q4 && (ldx % 4 == 0) && ((reinterpret_cast<uintptr_t>(x) & 15) == 0);
    float acc[NR];
#pragma unroll
    for (int p = 0; p < NR; p++)
        acc[p] = 0.0f;
    for (int c0 = lane; c0 < nvec; c0 += 32 * Q8_UNROLL) {
        uint4 wv[Q8_UNROLL][NR];
#pragma unroll
        for (int u = 0; u < Q8_UNROLL; u++) {
            const int c = c0 + 32 * u;
#pragma unroll
            for (int p = 0; p < NR; p++)
                wv[u][p] = c < nvec ? __ldg(wr[p] + c) : make_uint4(0u, 0u, 0u, 0u);
        }
#pragma unroll
        for (int u = 0; u < Q8_UNROLL; u++) {
            const int c = c0 + 32 * u;
            if (c >= nvec)
                continue;
            if constexpr (Q4) {
                const uint4 xa = __ldg(xv + 2 * c), xb = __ldg(xv + 2 * c + 1);
                const float2 ds = __ldg(xsr + c);
                const int g = w.ng == 1 ? 0 : (gshift >= 0 ? c >> gshift : c * 32 / w.group);
#pragma unroll
                for (int p = 0; p < NR; p++) {
                    const float2 sz = __half22float2(__ldg(szr[p] + g));
                    acc[p] += q4q8_block(q4q8_dot32(wv[u][p], xa, xb), ds, sz.x, sz.y);
                }
            } else {
                float xf[8];
                load_x8(xr, c * 8, w.cols, vec, xf);
#pragma unroll
                for (int p = 0; p < NR; p++) {
                    const uint32_t wd[4] = { wv[u][p].x, wv[u][p].y, wv[u][p].z, wv[u][p].w };
#pragma unroll
                    for (int i = 0; i < 4; i++) {
                        const float2 f = __half22float2(u32_as_half2(wd[i]));
                        acc[p] = fmaf(f.x, xf[2 * i], acc[p]);
                        acc[p] = fmaf(f.y, xf[2 * i + 1], acc[p]);
                    }
                }
            }
        }
    }
    gemv_epilogue<EPI>(acc, lane, t, r0, rows_out, bias, out, ldo);
}

void
launch_gemv_fast(const DLinear &w, const int8_t *xq, const float2 *xs, const float *x, int ldx, int T,
                 const float *bias, float *out, int ldo, Epilogue epi, cudaStream_t s)
{
    const int rows_out = epi == EPI_SILU_MUL ? w.rows / 2 : w.rows;
    const int lr = epi == EPI_SILU_MUL ? 1 : 2;
    const int gshift = w.kind == LIN_Q4 ? q8_group_shift(w) : -1;
    dim3 grid((unsigned)((rows_out + 4 * lr - 1) / (4 * lr)), (unsigned)T);
#define HR_FAST(E, Q) HR_LAUNCH(grid, 128, s, (k_gemv_fast<E, Q>), w, xq, xs, gshift, x, ldx, bias, out, ldo, rows_out)
    const bool q4 = w.kind == LIN_Q4;
    switch (epi) {
    case EPI_STORE: q4 ? HR_FAST(EPI_STORE, true) : HR_FAST(EPI_STORE, false); break;
    case EPI_RESIDUAL: q4 ? HR_FAST(EPI_RESIDUAL, true) : HR_FAST(EPI_RESIDUAL, false); break;
    case EPI_SILU_MUL: q4 ? HR_FAST(EPI_SILU_MUL, true) : HR_FAST(EPI_SILU_MUL, false); break;
    }
#undef HR_FAST
}

// ---- RoPE + KV write, a block per head -------------------------------------------------

// grid (T, n_heads + 2*n_kv), block hd/2 rounded up to 32: block y < n_heads
// rotates q head y in place; the next n_kv rotate a k head and write it to the
// K cache; the last n_kv write a v head to the V cache. One pair (or two
// values of v) a thread: the same arithmetic as k_rope_kv, spread over
// (heads x tokens) blocks instead of one block a token.
__global__ void
k_rope_kv_wide(float *qkv, __half *__restrict__ k_cache, __half *__restrict__ v_cache,
               const float *__restrict__ inv_freq, const int *__restrict__ step, int n_heads, int n_kv, int hd)
{
    const int t = blockIdx.x, h = blockIdx.y, i = threadIdx.x, half = hd / 2;
    if (i >= half)
        return;
    const int pos = step[0] + t, q_dim = n_heads * hd, kv_dim = n_kv * hd, ld = q_dim + 2 * kv_dim;
    float *row = qkv + (size_t)t * ld;
    if (h >= n_heads + n_kv) {   // v: copied to the cache
        const int c = (h - n_heads - n_kv) * hd;
        v_cache[(size_t)pos * kv_dim + c + i] = __float2half_rn(row[q_dim + kv_dim + c + i]);
        v_cache[(size_t)pos * kv_dim + c + i + half] = __float2half_rn(row[q_dim + kv_dim + c + i + half]);
        return;
    }
    float sn, cs;
    sincosf((float)pos * inv_freq[i], &sn, &cs);
    float *v = row + (size_t)h * hd;   // k heads follow the q heads
    const float x0 = v[i], x1 = v[i + half];
    const float y0 = x0 * cs - x1 * sn, y1 = x1 * cs + x0 * sn;
    v[i] = y0;
    v[i + half] = y1;
    if (h >= n_heads) {
        const int c = (h - n_heads) * hd;
        k_cache[(size_t)pos * kv_dim + c + i] = __float2half_rn(y0);
        k_cache[(size_t)pos * kv_dim + c + i + half] = __float2half_rn(y1);
    }
}

void
launch_rope_kv_wide(float *qkv, __half *k_cache, __half *v_cache, const float *inv_freq, const int *step, int T,
                    int n_heads, int n_kv, int hd, cudaStream_t s)
{
    const int threads = (hd / 2 + 31) / 32 * 32;
    dim3 grid((unsigned)T, (unsigned)(n_heads + 2 * n_kv));
    HR_LAUNCH(grid, threads, s, k_rope_kv_wide, qkv, k_cache, v_cache, inv_freq, step, n_heads, n_kv, hd);
}

// ---- tiled attention ------------------------------------------------------------------

enum { AT_MAX_HD = 256, AT_THREADS = 128 };

bool
attention_tiled_ok(int n_heads, int n_kv, int hd)
{
    return n_kv >= 1 && n_heads % n_kv == 0 && n_heads / n_kv <= ATT_TILE_MAX_G && hd % 8 == 0 && hd >= 8 &&
           hd <= AT_MAX_HD;
}

// A block's rows: QT = 8 / G consecutive queries x the G query heads of its
// KV head (row i = query i / G, head i % G), so in prefill each K/V row loaded
// serves up to 8 (query, head) pairs; per-row causal and window masks.
__global__ void __launch_bounds__(AT_THREADS)
k_attn_tiled(const float *__restrict__ q, int ldq, const __half *__restrict__ k_cache,
             const __half *__restrict__ v_cache, float *__restrict__ part, const int *__restrict__ step, int T,
             int n_heads, int n_kv, int hd, int window, int split_len, int max_splits)
{
    constexpr int MR = ATT_TILE_MAX_G;
    __shared__ float sq[MR][AT_MAX_HD];   // the rows' queries, pre-scaled
    __shared__ float sp[MR][ATT_TILE];    // a tile's scores, then e^(s - m)
    __shared__ float sred[MR][2 * AT_THREADS];
    __shared__ float s_m[MR], s_l[MR], s_corr[MR];
    const int kvh = blockIdx.x, spl = blockIdx.y;
    const int G = n_heads / n_kv, QT = MR / G, t0 = blockIdx.z * QT;
    const int nq = min(QT, T - t0), nrow = nq * G;
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
    const int p_first = step[0] + t0, p_last = p_first + nq - 1;
    const int j_begin = spl * split_len;
    if (nq <= 0 || j_begin > p_last)
        return;   // past these queries: the combine kernel does not read it
    const int j_end = min(j_begin + split_len, p_last + 1);
    const int start = max(j_begin, window > 0 ? max(0, p_first - window + 1) : 0);
    const int kv_dim = n_kv * hd;
    const float scale = 1.0f / sqrtf((float)hd);
    for (int i = tid; i < nrow * hd; i += AT_THREADS) {
        const int row = i / hd, d = i % hd, qt = row / G, g = row % G;
        sq[row][d] = q[(size_t)(t0 + qt) * ldq + (size_t)(kvh * G + g) * hd + d] * scale;
    }
    if (tid < MR) {
        s_m[tid] = -INFINITY;
        s_l[tid] = 0.0f;
    }
    // P.V: thread (pc, r) owns dimensions 2pc, 2pc+1 for keys r, r+R, ...
    const int P = hd / 2, R = AT_THREADS / P, pc = tid % P, r = tid / P;
    float2 acc[MR];
#pragma unroll
    for (int i = 0; i < MR; i++)
        acc[i] = make_float2(0.0f, 0.0f);
    // scores: 4 threads a key (kl), 32 keys a pass (kk)
    const int kl = tid & 3, kk = tid >> 2, nch = hd / 8;
    const __half *kbase = k_cache + (size_t)kvh * hd;
    const __half *vbase = v_cache + (size_t)kvh * hd;
    __syncthreads();
    for (int j0 = start; j0 < j_end; j0 += ATT_TILE) {
        const int n = min((int)ATT_TILE, j_end - j0);
        // every K load of the tile first (up to 8 per key a thread, 2 keys)
        constexpr int PASSES = ATT_TILE / 32, CPL = AT_MAX_HD / 8 / 4;
        uint4 kv[PASSES][CPL];
#pragma unroll
        for (int pass = 0; pass < PASSES; pass++) {
            const int jj = kk + 32 * pass;
            const __half *kr = kbase + (size_t)(j0 + min(jj, n - 1)) * kv_dim;
#pragma unroll
            for (int i = 0; i < CPL; i++) {
                const int ch = kl + 4 * i;
                kv[pass][i] = jj < n && ch < nch ? __ldg(reinterpret_cast<const uint4 *>(kr + ch * 8))
                                                 : make_uint4(0u, 0u, 0u, 0u);
            }
        }
#pragma unroll
        for (int pass = 0; pass < PASSES; pass++) {
            const int jj = kk + 32 * pass;
            float sc[MR];
#pragma unroll
            for (int i = 0; i < MR; i++)
                sc[i] = 0.0f;
#pragma unroll
            for (int c = 0; c < CPL; c++) {
                const int ch = kl + 4 * c;
                if (ch < nch) {
                    const uint32_t wd[4] = { kv[pass][c].x, kv[pass][c].y, kv[pass][c].z, kv[pass][c].w };
                    float kf[8];
#pragma unroll
                    for (int e = 0; e < 4; e++) {
                        const float2 f = __half22float2(u32_as_half2(wd[e]));
                        kf[2 * e] = f.x;
                        kf[2 * e + 1] = f.y;
                    }
#pragma unroll
                    for (int i = 0; i < MR; i++)
                        if (i < nrow)
#pragma unroll
                            for (int e = 0; e < 8; e++)
                                sc[i] = fmaf(sq[i][ch * 8 + e], kf[e], sc[i]);
                }
            }
#pragma unroll
            for (int i = 0; i < MR; i++) {
                sc[i] += __shfl_xor_sync(0xffffffffu, sc[i], 1);
                sc[i] += __shfl_xor_sync(0xffffffffu, sc[i], 2);
            }
            if (kl == 0 && jj < n) {
                const int j = j0 + jj;
#pragma unroll
                for (int i = 0; i < MR; i++)
                    if (i < nrow) {
                        const int pi = p_first + i / G;   // this row's position: causal and window masks
                        const bool keep = j <= pi && (window <= 0 || j > pi - window);
                        sp[i][jj] = keep ? sc[i] : -INFINITY;
                    }
            }
        }
        __syncthreads();
        // online softmax, a warp per row; a row with nothing unmasked yet keeps m = -inf, l = 0
        for (int i = warp; i < nrow; i += AT_THREADS / 32) {
            const float v0 = lane < n ? sp[i][lane] : -INFINITY;
            const float v1 = lane + 32 < n ? sp[i][lane + 32] : -INFINITY;
            const float m_old = s_m[i], m_new = fmaxf(m_old, warp_max(fmaxf(v0, v1)));
            const bool none = m_new == -INFINITY;
            const float e0 = !none && lane < n ? expf(v0 - m_new) : 0.0f;
            const float e1 = !none && lane + 32 < n ? expf(v1 - m_new) : 0.0f;
            if (lane < n)
                sp[i][lane] = e0;
            if (lane + 32 < n)
                sp[i][lane + 32] = e1;
            const float sum = warp_sum(e0 + e1);
            if (lane == 0) {
                const float corr = m_old == -INFINITY ? 0.0f : expf(m_old - m_new);
                s_corr[i] = corr;
                s_l[i] = s_l[i] * corr + sum;
                s_m[i] = m_new;
            }
        }
        __syncthreads();
        if (r < R) {
#pragma unroll
            for (int i = 0; i < MR; i++)
                if (i < nrow) {
                    acc[i].x *= s_corr[i];
                    acc[i].y *= s_corr[i];
                }
#pragma unroll 4
            for (int jj = r; jj < n; jj += R) {
                const float2 v = __half22float2(
                    *reinterpret_cast<const __half2 *>(vbase + (size_t)(j0 + jj) * kv_dim + 2 * pc));
#pragma unroll
                for (int i = 0; i < MR; i++)
                    if (i < nrow) {
                        const float pj = sp[i][jj];
                        acc[i].x = fmaf(pj, v.x, acc[i].x);
                        acc[i].y = fmaf(pj, v.y, acc[i].y);
                    }
            }
        }
        __syncthreads();   // sp is rewritten by the next tile
    }
    if (r < R)
#pragma unroll
        for (int i = 0; i < MR; i++)
            if (i < nrow) {
                sred[i][r * hd + 2 * pc] = acc[i].x;
                sred[i][r * hd + 2 * pc + 1] = acc[i].y;
            }
    __syncthreads();
    for (int k = tid; k < nrow * hd; k += AT_THREADS) {
        const int row = k / hd, d = k % hd, qt = row / G, g = row % G;
        float a = 0.0f;
        for (int rr = 0; rr < R; rr++)
            a += sred[row][rr * hd + d];
        float *o = part + (((size_t)(t0 + qt) * n_heads + kvh * G + g) * max_splits + spl) * (size_t)(hd + 2);
        o[2 + d] = a;
    }
    if (tid < nrow) {
        const int qt = tid / G, g = tid % G;
        float *o = part + (((size_t)(t0 + qt) * n_heads + kvh * G + g) * max_splits + spl) * (size_t)(hd + 2);
        o[0] = s_m[tid];
        o[1] = s_l[tid];
    }
}

void
launch_attention_tiled(const float *q, int ldq, const __half *k_cache, const __half *v_cache, float *part, float *out,
                       const int *step, int T, int n_heads, int n_kv, int hd, int window, int split_len,
                       int max_splits, cudaStream_t s)
{
    const int qt = ATT_TILE_MAX_G / (n_heads / n_kv);
    dim3 g1((unsigned)n_kv, (unsigned)max_splits, (unsigned)((T + qt - 1) / qt));
    HR_LAUNCH(g1, AT_THREADS, s, k_attn_tiled, q, ldq, k_cache, v_cache, part, step, T, n_heads, n_kv, hd, window,
                                           split_len, max_splits);
    launch_attention_combine(part, out, step, T, n_heads, hd, split_len, max_splits, s);
}

}  // namespace hrcuda
