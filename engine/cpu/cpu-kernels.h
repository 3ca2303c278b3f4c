/* cpu-kernels.h — scalar reference kernels of the CPU backend. */
#pragma once

#include <stdint.h>

#include "cpu-threads.h"
#include "safetensors.h"

/* A row-major matrix used in place (e.g. inside an mmap'd file). */
typedef struct {
    const void *data;  /* [rows, cols] of dtype */
    HrDType dtype;     /* F32, F16 or BF16 */
    int rows, cols;
} HrMat;

/* dst[0..n) = row r of m as FP32 (n <= cols). */
void hr_mat_row_f32(const HrMat *m, int r, float *dst, int n);

/* out[t, r] = (residual ? residual[t, r] : 0) + (bias ? bias[r] : 0) + W[r, :] . x[t, :]
 * for t < n, r < W.rows. x is [n, W.cols]; out and residual are [n, W.rows]
 * and may be the same buffer. Rows are split across the pool's threads
 * (pool may be NULL). */
void hr_matmul(HrThreadPool *pool, float *out, const HrMat *w, const float *bias, const float *x, int n,
               const float *residual);

/* out = x / sqrt(mean(x^2) + eps) * weight, as transformers' RMSNorm in FP32. */
void hr_rmsnorm(float *out, const float *x, const float *weight, int n, float eps);
