/* cpu-amx.h — an FP32 GEMM on Intel AMX tiles, for the AWQ search.
 *
 * AMX multiplies BF16 tiles into FP32 accumulators at about 30x the FP32
 * FMA rate of AVX-512 on one core. A BF16 value keeps 8 bits of a float's
 * 24, too few for the search's losses, so every operand is split into two
 * BF16 parts, a = a_hi + a_lo (a_hi = a rounded to BF16, a_lo = the rest
 * rounded to BF16: 16 bits of the significand), and each product is
 * a_hi b_hi + a_hi b_lo + a_lo b_hi, accumulated in FP32: three tile
 * products per pair of tiles. The dropped a_lo b_lo and the rounding of the
 * low parts leave a relative error of about 2^-16 per product (FP32: 2^-24);
 * FP16 and BF16 weights (11 and 8 significant bits) are split exactly. */
#pragma once

#include <stdbool.h>

#include "cpu-threads.h"

/* The CPU has AMX-BF16 and AVX512-BF16, the kernel let this process use
 * the tile registers (arch_prctl), and neither HEARTH_CPU_SCALAR nor
 * HEARTH_CPU_NO_AMX is set. Asked once; thread-safe. */
bool hr_cpu_amx(void);

/* out[t, n] = (bias ? bias[n] : 0) + sum_k x[t, k] w[n, k] for t < T,
 * n < N, computed as above. x [T, K] and w [N, K] are row-major FP32; any
 * T, N, K >= 1. Each output is one fixed sequence of tile products, so the
 * result does not depend on the pool's width. Only when hr_cpu_amx(). */
void hr_amx_matmul(HrThreadPool *pool, float *out, const float *w, int N, int K, const float *bias,
                   const float *x, int T);

/* W split and laid out as tiles once (N x K x 4 bytes), for several
 * products with the same weights: hr_amx_matmul() is pack, product, free.
 * Only when hr_cpu_amx(). */
typedef struct HrAmxWeights HrAmxWeights;
HrAmxWeights *hr_amx_pack(HrThreadPool *pool, const float *w, int N, int K);
void hr_amx_matmul_packed(HrThreadPool *pool, float *out, const HrAmxWeights *w, const float *bias,
                          const float *x, int T);
void hr_amx_free(HrAmxWeights *w);

/* W rounded to BF16 (one part, N x K x 2 bytes): its products round x to
 * BF16 too and take one tile product per pair of tiles instead of three
 * (about 2.5x faster: tests/bench/bench-amx), at about 2^-8 relative per
 * product. For products whose errors are small against what they feed,
 * e.g. the AWQ search's differences (quantize/awq.c, loss_delta), not for
 * outputs used as such. Only when hr_cpu_bf16_products(): without AMX the
 * same tiles are multiplied with AVX512-BF16's vdpbf16ps (32 products an
 * instruction, twice the FP32 FMA's), the sums in another order. */
HrAmxWeights *hr_amx_pack_bf16(HrThreadPool *pool, const float *w, int N, int K);

/* hr_amx_pack_bf16 and its products can run: AMX (hr_cpu_amx()), or
 * AVX512-BF16 with AVX-512 (AMD Zen 4 and later, Intel Cooper Lake), and
 * neither HEARTH_CPU_SCALAR nor HEARTH_CPU_NO_BF16 is set. Asked once;
 * thread-safe. */
bool hr_cpu_bf16_products(void);

/* out[t, n] = base[t, n] + sum_k x[t, k] w[n, k] (no bias; base [T, N]
 * may be out itself). */
void hr_amx_matmul_packed_add(HrThreadPool *pool, float *out, const float *base, const HrAmxWeights *w, const float *x,
                              int T);
