#include "cpu-kernels.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "hr-half.h"

/* FP16 -> FP32 through a 256 KiB table, filled once. */
static float f16_table[65536];
static pthread_once_t f16_once = PTHREAD_ONCE_INIT;

static void
fill_f16_table(void)
{
    for (uint32_t i = 0; i < 65536; i++)
        f16_table[i] = hr_f16_to_f32((uint16_t)i);
}

void
hr_mat_row_f32(const HrMat *m, int r, float *dst, int n)
{
    size_t off = (size_t)r * (size_t)m->cols;
    switch (m->dtype) {
    case HR_DTYPE_F32:
        memcpy(dst, (const float *)m->data + off, sizeof(float) * (size_t)n);
        break;
    case HR_DTYPE_F16: {
        pthread_once(&f16_once, fill_f16_table);
        const uint16_t *src = (const uint16_t *)m->data + off;
        for (int i = 0; i < n; i++)
            dst[i] = f16_table[src[i]];
        break;
    }
    case HR_DTYPE_BF16: {
        const uint16_t *src = (const uint16_t *)m->data + off;
        for (int i = 0; i < n; i++)
            dst[i] = hr_bf16_to_f32(src[i]);
        break;
    }
    default:
        memset(dst, 0, sizeof(float) * (size_t)n);
        break;
    }
}

static inline float
dot(const float *a, const float *b, int n)
{
    float s = 0.0f;
    for (int i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

typedef struct {
    float *out;
    const HrMat *w;
    const float *bias, *x, *residual;
    int n;
} MatmulJob;

static void
matmul_rows(void *arg, int r0, int r1)
{
    const MatmulJob *j = arg;
    const HrMat *w = j->w;
    const int rows = w->rows, cols = w->cols;
    float *tmp = w->dtype == HR_DTYPE_F32 ? NULL : g_new(float, cols);
    for (int r = r0; r < r1; r++) {
        const float *wr;
        if (tmp) {
            hr_mat_row_f32(w, r, tmp, cols);
            wr = tmp;
        } else {
            wr = (const float *)w->data + (size_t)r * cols;
        }
        float b = j->bias ? j->bias[r] : 0.0f;
        for (int t = 0; t < j->n; t++) {
            float acc = dot(wr, j->x + (size_t)t * cols, cols) + b;
            size_t o = (size_t)t * rows + r;
            j->out[o] = j->residual ? j->residual[o] + acc : acc;
        }
    }
    g_free(tmp);
}

void
hr_matmul(HrThreadPool *pool, float *out, const HrMat *w, const float *bias, const float *x, int n,
          const float *residual)
{
    MatmulJob job = { out, w, bias, x, residual, n };
    /* Small matrices are not worth waking the workers for. */
    if ((size_t)w->rows * (size_t)w->cols * (size_t)n < 32768)
        pool = NULL;
    hr_pool_run(pool, matmul_rows, &job, w->rows, 16);
}

void
hr_rmsnorm(float *out, const float *x, const float *weight, int n, float eps)
{
    float ss = 0.0f;
    for (int i = 0; i < n; i++)
        ss += x[i] * x[i];
    float inv = 1.0f / sqrtf(ss / (float)n + eps);
    for (int i = 0; i < n; i++)
        out[i] = weight[i] * (x[i] * inv);
}
