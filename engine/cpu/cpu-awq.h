/* cpu-awq.h — CPU kernels of the AWQ search (quantize/awq.c): the parts of
 * a block forward and of the loss that are not GEMMs, vectorised (AVX-512
 * where the CPU has it, else a portable loop; HEARTH_CPU_SCALAR forces it)
 * and split over the pool. Every result is independent of the thread
 * count: each output is computed by one call on fixed blocks, and
 * reductions are summed per row, then the rows in order. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "cpu-threads.h"

/* e^x as the kernels compute it (the scalar reference of the vector code,
 * the same bits): n = rint(x log2 e), r = x - n ln2 (two-part ln2), a degree-7
 * polynomial, times 2^n. Within 2 ulp of expf; NaN stays NaN. */
float hr_awq_exp_ref(float x);

/* g[i] = g[i] / (1 + e^-g[i]) * u[i] (SiLU(gate) * up) for i < n. */
void hr_awq_silu_mul(HrThreadPool *pool, float *g, const float *u, size_t n);
/* g[i] = silu(g[i]) * u[i] - sub[i] (sub NULL: hr_awq_silu_mul), the same
 * bits as the two steps */
void hr_awq_silu_mul_sub(HrThreadPool *pool, float *g, const float *u, const float *sub, size_t n);

/* Floats of scratch hr_awq_attention() needs for kt and vt (each). */
size_t hr_awq_attention_scratch(int n_win, int L, int nkv, int hd);

/* Causal self-attention of n_win windows of L tokens (position = index in
 * the window): q [n_win*L, nh*hd], k, v [n_win*L, nkv*hd] (RoPE applied),
 * query head h reads KV head h / (nh / nkv); out [n_win*L, nh*hd]. Per
 * query row t: s_u = (q . k_u) * scale for u <= t, p = softmax(s),
 * out = sum_u p_u v_u. kt, vt: scratch of hr_awq_attention_scratch() floats. */
void hr_awq_attention(HrThreadPool *pool, const float *q, const float *k, const float *v, float *out, int n_win,
                      int L, int nh, int nkv, int hd, float scale, float *kt, float *vt);

/* sum_i (a[i] - b[i])^2 in double, over rows of `cols` (rows * cols items):
 * per row in a fixed order, then the rows in order. */
double hr_awq_sq_diff(HrThreadPool *pool, const float *a, const float *b, size_t rows, size_t cols);

/* sum_i a[i] * b[i] in double, the same way. */
double hr_awq_dot(HrThreadPool *pool, const float *a, const float *b, size_t rows, size_t cols);

/* RTN quantize (bits, asymmetric: each group's range includes 0, its scale
 * rounded up to FP16, its zero point rounded and clamped) then dequantize
 * one row w [K] in groups of g into out (may be w), allocating nothing: the
 * candidates of the AWQ search, as quantize/rtn.c writes checkpoints. */
void hr_awq_fake_quant_row(const float *w, int K, int g, int bits, float *out);

/* out [N, K] = Q(w diag(s)) diag(s)^-1, minus w when delta (the AWQ
 * search's candidates; Q: hr_awq_fake_quant_row per row), rows over the
 * pool. */
void hr_awq_scale_quant(HrThreadPool *pool, const float *w, int N, int K, const float *s, int g, int bits, bool delta,
                        float *out);

/* The AWQ clip search of one linear w [N, K] (groups of g along K) over nt
 * inputs x [nt, K] (rows ldx floats apart), in the Gram form: per group, C = sum over t of
 * x_g^T x_g (double, t in order); per row and step s < steps the limit
 * m = m0 (1 - s / grid) (m0 = max |w_g|, FP32 as the host's search writes
 * it), d = Q(clamp(w_g, -m, m)) - w_g (Q: hr_awq_fake_quant_row, the group
 * as one), and the error d^T C d (double) = sum over t of (x_g . d)^2; the
 * limit of the least error (the first on ties) goes to lim[n * (K / g) + gi].
 * The reference of the op tables' clip_search (ops.h). */
void hr_awq_clip_search(HrThreadPool *pool, const float *w, int N, int K, const float *x, size_t ldx, int nt, int g,
                        int bits, int steps, int grid, float *lim);

/* sum[k] = the sum over the rows of t [rows, width], in order, of |t[r, k]|
 * (double): the search's mean |x| per input. */
void hr_awq_col_abs_sum(HrThreadPool *pool, const float *t, size_t rows, size_t width, double *sum);
/* t[r, k] /= s[k] (the fold of the search's cached inputs). */
void hr_awq_div_cols(HrThreadPool *pool, float *t, size_t rows, size_t width, const float *s);
