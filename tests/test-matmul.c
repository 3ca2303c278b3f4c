/* hr_matmul and hr_matmul_q4, every implementation (scalar reference, AVX2
 * rows, blocked GEMM in AVX2 and AVX-512, auto) against a double-precision
 * reference: F32/F16/BF16 and 4-bit weights, sizes that are not multiples
 * of any tile (rows, cols, tokens), K past one K tile and K = 0, n = 1, 3,
 * 17, 64, 300, with and without bias and residual, the residual aliasing
 * out, serial and on thread pools that split rows or tokens. A control
 * checks that the comparison catches a wrong result. Implementations this
 * CPU lacks are reported and skipped. */
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include <glib.h>

#include "cpu-kernels.h"
#include "hr-half.h"
#include "hr-test.h"

static const HrMatmulImpl impls[] = { HR_MATMUL_SCALAR, HR_MATMUL_ROWS_AVX2, HR_MATMUL_GEMM_AVX2,
                                      HR_MATMUL_GEMM_AVX512, HR_MATMUL_AUTO };

/* FP32 accumulation over K terms (blocked sums): well within 2e-5 of the
 * sum of magnitudes for the K used here; one dropped or doubled term
 * is ~1/K of it. */
#define REL_TOL 2e-5

typedef struct {
    double *ref;   /* [n, rows] */
    double *mag;   /* [n, rows] sum of |terms| */
} Ref;

/* ref[t, r] from FP32 weight rows wf [rows, cols]. */
static Ref
reference(const float *wf, int rows, int cols, const float *x, int n, const float *bias, const float *res)
{
    Ref R = { g_new(double, (size_t)n * rows), g_new(double, (size_t)n * rows) };
    for (int t = 0; t < n; t++) {
        for (int r = 0; r < rows; r++) {
            double s = 0.0, m = 0.0;
            for (int k = 0; k < cols; k++) {
                double p = (double)wf[(size_t)r * cols + k] * (double)x[(size_t)t * cols + k];
                s += p;
                m += fabs(p);
            }
            size_t o = (size_t)t * rows + r;
            if (bias) {
                s += bias[r];
                m += fabs(bias[r]);
            }
            if (res) {
                s += res[o];
                m += fabs(res[o]);
            }
            R.ref[o] = s;
            R.mag[o] = m;
        }
    }
    return R;
}

static void
ref_free(Ref *R)
{
    g_free(R->ref);
    g_free(R->mag);
}

/* The number of outputs off the reference by more than the tolerance. */
static int
compare(const Ref *R, const float *out, int rows, int n, double *worst)
{
    int bad = 0;
    *worst = 0.0;
    for (size_t o = 0; o < (size_t)n * rows; o++) {
        double err = fabs((double)out[o] - R->ref[o]);
        double lim = REL_TOL * R->mag[o] + 1e-30;
        if (!(err <= lim))
            bad++;
        if (err / lim > *worst || isnan(err))
            *worst = isnan(err) ? INFINITY : err / lim;
    }
    return bad;
}

static float
frand(GRand *rng, double lo, double hi)
{
    return (float)g_rand_double_range(rng, lo, hi);
}

typedef struct {
    int rows, cols, n;
} Shape;

static const Shape shapes[] = {
    { 3, 0, 7 },     { 1, 8, 1 },     { 5, 13, 3 },    { 7, 5, 17 },     { 37, 64, 17 },  { 16, 100, 300 },
    { 37, 1100, 3 }, { 37, 1100, 300 }, { 130, 577, 17 }, { 130, 576, 300 }, { 68, 1031, 64 },
};

static int checks;

static void
run_dense(HrThreadPool *pool, const char *pool_name, GRand *rng)
{
    static const HrDType dts[] = { HR_DTYPE_F32, HR_DTYPE_F16, HR_DTYPE_BF16 };
    for (size_t s = 0; s < G_N_ELEMENTS(shapes); s++) {
        const int rows = shapes[s].rows, cols = shapes[s].cols, n = shapes[s].n;
        float *x = g_new(float, (size_t)n * cols);
        float *bias = g_new(float, rows);
        float *res = g_new(float, (size_t)n * rows);
        float *out = g_new(float, (size_t)n * rows);
        float *wf = g_new(float, (size_t)rows * cols);
        uint16_t *wh = g_new(uint16_t, (size_t)rows * cols);
        for (size_t i = 0; i < (size_t)n * cols; i++)
            x[i] = frand(rng, -1.0, 1.0);
        for (int i = 0; i < rows; i++)
            bias[i] = frand(rng, -0.5, 0.5);
        for (size_t i = 0; i < (size_t)n * rows; i++)
            res[i] = frand(rng, -2.0, 2.0);
        for (size_t d = 0; d < G_N_ELEMENTS(dts); d++) {
            const HrDType dt = dts[d];
            /* Weights exactly representable in dt, so one FP32 copy is the reference's. */
            for (size_t i = 0; i < (size_t)rows * cols; i++) {
                float v = frand(rng, -0.2, 0.2);
                if (dt == HR_DTYPE_F16) {
                    wh[i] = hr_f32_to_f16(v);
                    v = hr_f16_to_f32(wh[i]);
                } else if (dt == HR_DTYPE_BF16) {
                    wh[i] = hr_f32_to_bf16(v);
                    v = hr_bf16_to_f32(wh[i]);
                }
                wf[i] = v;
            }
            HrMat w = { dt == HR_DTYPE_F32 ? (const void *)wf : (const void *)wh, dt, rows, cols };
            for (int variant = 0; variant < 4; variant++) {
                /* 0: plain, 1: bias, 2: bias + residual, 3: residual aliasing out */
                const float *b = variant >= 1 && variant <= 2 ? bias : NULL;
                const float *rs = variant >= 2 ? res : NULL;
                Ref R = reference(wf, rows, cols, x, n, b, rs);
                for (size_t m = 0; m < G_N_ELEMENTS(impls); m++) {
                    if (!hr_matmul_impl_available(impls[m]))
                        continue;
                    for (size_t i = 0; i < (size_t)n * rows; i++)
                        out[i] = variant == 3 ? res[i] : NAN;
                    hr_matmul_impl(impls[m], pool, out, &w, b, x, n, variant == 3 ? out : rs);
                    double worst;
                    int bad = compare(&R, out, rows, n, &worst);
                    checks++;
                    HR_CHECK(bad == 0, "%s %s dtype %d %dx%d n=%d variant %d pool %s: %d of %d outputs off (worst %.3g x tol)",
                             hr_matmul_impl_name(impls[m]), "dense", (int)dt, rows, cols, n, variant, pool_name, bad,
                             n * rows, worst);
                }
                ref_free(&R);
            }
        }
        g_free(x);
        g_free(bias);
        g_free(res);
        g_free(out);
        g_free(wf);
        g_free(wh);
    }
}

/* A 4-bit matrix of random nibbles, scales and zero points (or offsets,
 * for the GGUF kinds). */
static HrQMat
random_qmat_kind(GRand *rng, int rows, int cols, int g, HrQMatKind kind)
{
    const int ng = cols / g;
    HrQMat q = { .kind = kind, .rows = rows, .cols = cols, .group = g, .n_groups = ng };
    hr_qmat_alloc(&q);
    for (size_t i = 0; i < (size_t)rows * cols / 2; i++)
        q.q[i] = (uint8_t)g_rand_int_range(rng, 0, 256);
    for (size_t i = 0; i < (size_t)rows * ng; i++) {
        const double s = frand(rng, 0.001, 0.03), o = -s * frand(rng, 0.0, 15.0);
        switch (kind) {
        case HR_QMAT_OFFSET16:
            q.scale[i] = hr_f32_to_f16((float)s);
            q.offset16[i] = hr_f32_to_f16((float)o);
            break;
        case HR_QMAT_OFFSET32:
            q.scale32[i] = (float)s;
            q.offset32[i] = (float)o;
            break;
        case HR_QMAT_K4: /* 6-bit scale and min; d, dmin per 8 groups below */
            q.ksc[i] = (uint8_t)g_rand_int_range(rng, 0, 64);
            q.kmin[i] = (uint8_t)g_rand_int_range(rng, 0, 64);
            if (i % 8 == 0) {
                q.kd[i / 8] = hr_f32_to_f16((float)frand(rng, 0.0002, 0.001));
                q.kdmin[i / 8] = hr_f32_to_f16((float)frand(rng, 0.0, 0.003));
            }
            break;
        case HR_QMAT_ZERO:
        default:
            q.scale[i] = hr_f32_to_f16((float)s);
            q.zero[i] = (uint8_t)g_rand_int_range(rng, 0, 16);
            break;
        }
    }
    return q;
}

static HrQMat
random_qmat(GRand *rng, int rows, int cols, int g)
{
    return random_qmat_kind(rng, rows, cols, g, HR_QMAT_ZERO);
}

/* Its FP32 weights [rows, cols]. */
static float *
dequantized(const HrQMat *q)
{
    float *wf = g_new(float, (size_t)q->rows * q->cols);
    for (int r = 0; r < q->rows; r++)
        hr_qmat_row_f32(q, r, wf + (size_t)r * q->cols);
    return wf;
}

static void
run_q4(HrThreadPool *pool, const char *pool_name, GRand *rng)
{
    static const struct { int rows, cols, group, n; } qs[] = {
        { 5, 64, 32, 1 },   { 37, 576, 32, 3 }, { 37, 1056, 32, 17 }, { 130, 576, 64, 300 },
        { 20, 512, 32, 5 }, { 36, 768, 32, 70 },
        { 16, 96, 8, 17 },  { 7, 30, 6, 17 },   { 68, 1056, 32, 300 },
    };
    for (size_t s = 0; s < G_N_ELEMENTS(qs); s++) {
        const int rows = qs[s].rows, cols = qs[s].cols, g = qs[s].group, n = qs[s].n;
        /* every shape with each way of storing the group scales (K4: GGUF Q4_K's shape only) */
        for (int kind = HR_QMAT_ZERO; kind <= HR_QMAT_K4; kind++) {
        if (kind == HR_QMAT_K4 && (g != 32 || cols % 256 != 0))
            continue;
        HrQMat q = random_qmat_kind(rng, rows, cols, g, (HrQMatKind)kind);
        float *wf = dequantized(&q);
        float *x = g_new(float, (size_t)n * cols);
        float *bias = g_new(float, rows);
        float *res = g_new(float, (size_t)n * rows);
        float *out = g_new(float, (size_t)n * rows);
        for (size_t i = 0; i < (size_t)n * cols; i++)
            x[i] = frand(rng, -1.0, 1.0);
        for (int i = 0; i < rows; i++)
            bias[i] = frand(rng, -0.5, 0.5);
        for (size_t i = 0; i < (size_t)n * rows; i++)
            res[i] = frand(rng, -2.0, 2.0);
        for (int variant = 0; variant < 4; variant++) {
            const float *b = variant >= 1 && variant <= 2 ? bias : NULL;
            const float *rs = variant >= 2 ? res : NULL;
            Ref R = reference(wf, rows, cols, x, n, b, rs);
            for (size_t m = 0; m < G_N_ELEMENTS(impls); m++) {
                if (!hr_matmul_impl_available(impls[m]))
                    continue;
                for (size_t i = 0; i < (size_t)n * rows; i++)
                    out[i] = variant == 3 ? res[i] : NAN;
                hr_matmul_q4_impl(impls[m], pool, out, &q, b, x, n, variant == 3 ? out : rs);
                double worst;
                int bad = compare(&R, out, rows, n, &worst);
                checks++;
                HR_CHECK(bad == 0, "%s q4 kind %d %dx%d group %d n=%d variant %d pool %s: %d of %d outputs off (worst %.3g x tol)",
                         hr_matmul_impl_name(impls[m]), kind, rows, cols, g, n, variant, pool_name, bad, n * rows, worst);
            }
            ref_free(&R);
        }
        hr_qmat_free(&q);
        g_free(wf);
        g_free(x);
        g_free(bias);
        g_free(res);
        g_free(out);
        }
    }
}

/* The int8-activation decode kernels (Q8_*, forced): each activation block
 * of 32 is rounded to d * xq with d = max|x| / 127, so every output may be
 * off the FP reference by at most sum_k |W[r,k]| * d_b(k) / 2 (plus FP32
 * rounding); a wrong block scale, group scale, zero point or lane order is
 * off by O(|W| |x|), hundreds of times that. Shapes: groups 32, 64, 128
 * and per channel, a last chunk of 64 inputs, 1..5 tokens (decode) and
 * 8..70 (the prefill tiles); shapes the kernels do not take (odd groups,
 * prefill with a last chunk of 64) run the FP path and pass too. */
static void
run_q8(HrThreadPool *pool, const char *pool_name, GRand *rng)
{
    static const struct { int rows, cols, group, n; } qs[] = {
        { 5, 64, 32, 1 },    { 37, 576, 32, 3 },  { 130, 576, 64, 1 }, { 33, 1024, 128, 1 },
        { 9, 2048, 2048, 2 }, { 20, 640, 128, 5 }, { 70, 1088, 64, 4 }, { 16, 96, 8, 1 },
        /* prefill (n >= 6): 4x4 VNNI tiles, row and token tails, token blocks of 64 */
        { 37, 1024, 128, 17 }, { 64, 512, 64, 70 }, { 8, 256, 32, 9 }, { 12, 576, 64, 8 },
        /* GGUF Q4_K shapes (K4 on the odd entry): decode and prefill */
        { 16, 512, 32, 2 }, { 24, 1024, 32, 3 }, { 16, 512, 32, 8 }, { 20, 1024, 32, 12 },
    };
    static const HrMatmulImpl q8s[] = { HR_MATMUL_Q8_AVX2, HR_MATMUL_Q8_AVX512 };
    for (size_t s = 0; s < G_N_ELEMENTS(qs); s++) {
        const int rows = qs[s].rows, cols = qs[s].cols, g = qs[s].group, n = qs[s].n;
        /* the offset kinds (GGUF) on every other shape */
        for (int kind = HR_QMAT_ZERO; kind <= (s % 2 ? HR_QMAT_K4 : HR_QMAT_ZERO); kind++) {
        if (kind == HR_QMAT_K4 && (g != 32 || cols % 256 != 0))
            continue;
        HrQMat q = random_qmat_kind(rng, rows, cols, g, (HrQMatKind)kind);
        float *wf = dequantized(&q);
        float *x = g_new(float, (size_t)n * cols), *bias = g_new(float, rows);
        float *res = g_new(float, (size_t)n * rows), *out = g_new(float, (size_t)n * rows);
        for (size_t i = 0; i < (size_t)n * cols; i++) /* activation-like: mostly small, some outliers */
            x[i] = frand(rng, -1.0, 1.0) * (g_rand_int_range(rng, 0, 50) == 0 ? 20.0f : 1.0f);
        for (int i = 0; i < rows; i++)
            bias[i] = frand(rng, -0.5, 0.5);
        for (size_t i = 0; i < (size_t)n * rows; i++)
            res[i] = frand(rng, -2.0, 2.0);
        /* the rounding bound per output */
        double *bound = g_new0(double, (size_t)n * rows);
        for (int t = 0; t < n; t++)
            for (int b = 0; b < cols; b += 32) {
                double amax = 0.0;
                for (int k = b; k < b + 32 && k < cols; k++)
                    amax = fmax(amax, fabs(x[(size_t)t * cols + k]));
                for (int r = 0; r < rows; r++)
                    for (int k = b; k < b + 32 && k < cols; k++)
                        bound[(size_t)t * rows + r] += fabs(wf[(size_t)r * cols + k]) * amax / 127.0 * 0.5 * 1.0001;
            }
        for (int variant = 0; variant < 4; variant++) {
            const float *b = variant >= 1 && variant <= 2 ? bias : NULL;
            const float *rs = variant >= 2 ? res : NULL;
            Ref R = reference(wf, rows, cols, x, n, b, rs);
            for (size_t m = 0; m < G_N_ELEMENTS(q8s); m++) {
                if (!hr_matmul_impl_available(q8s[m]))
                    continue;
                for (size_t i = 0; i < (size_t)n * rows; i++)
                    out[i] = variant == 3 ? res[i] : NAN;
                hr_matmul_q4_impl(q8s[m], pool, out, &q, b, x, n, variant == 3 ? out : rs);
                int bad = 0;
                double worst = 0.0, sum_err = 0.0, sum_bound = 0.0;
                for (size_t o = 0; o < (size_t)n * rows; o++) {
                    double err = fabs((double)out[o] - R.ref[o]), lim = bound[o] + REL_TOL * R.mag[o];
                    bad += !(err <= lim);
                    worst = isnan(err) ? INFINITY : fmax(worst, err / lim);
                    sum_err += err;
                    sum_bound += lim;
                }
                checks++;
                HR_CHECK(bad == 0, "%s q4 %dx%d group %d n=%d variant %d pool %s: %d of %d outputs past the int8 bound "
                         "(worst %.3g x)", hr_matmul_impl_name(q8s[m]), rows, cols, g, n, variant, pool_name, bad,
                         n * rows, worst);
                /* rounding errors are random: their sum stays far below the sum of the worst cases */
                if (g % 32 == 0 && cols % 64 == 0)
                    HR_CHECK(sum_err < 0.25 * sum_bound, "%s q4 %dx%d group %d: mean error %.3g of the bound",
                             hr_matmul_impl_name(q8s[m]), rows, cols, g, sum_err / sum_bound);
            }
            ref_free(&R);
        }
        g_free(bound);
        hr_qmat_free(&q);
        g_free(wf);
        g_free(x);
        g_free(bias);
        g_free(res);
        g_free(out);
        }
    }
}

/* int8 weights as GGUF files give them exactly: a scale per 16 values (Q6_K)
 * or per 32 with an offset per 32 (Q5_1, Q5_K: d * q + m). The weights are
 * exact, so each output is within the activations' int8 rounding of the
 * d * q part, sum_k |d q| d_x / 2 (the offsets meet exact block sums), of the
 * FP product; a scale applied to the wrong half of a block, or a wrong or
 * missing offset, is off by far more. Decode (n < 6) and prefill shapes. */
static void
run_q8w16_kind(HrThreadPool *pool, const char *pool_name, GRand *rng, int block, bool offsets)
{
    static const struct { int rows, cols, n; } qs[] = { { 1, 32, 1 },   { 37, 96, 2 },  { 70, 1536, 1 },
                                                        { 20, 64, 3 },  { 33, 256, 9 }, { 16, 96, 17 } };
    for (size_t s = 0; s < G_N_ELEMENTS(qs); s++) {
        const int rows = qs[s].rows, cols = qs[s].cols, n = qs[s].n;
        HrQ8Mat q = { .rows = rows, .cols = cols, .block = block };
        q.q = g_new(int8_t, (size_t)rows * cols);
        q.d = g_new(float, (size_t)rows * cols / block);
        for (size_t i = 0; i < (size_t)rows * cols; i++)
            q.q[i] = (int8_t)g_rand_int_range(rng, offsets ? 0 : -32, 32);
        for (size_t i = 0; i < (size_t)rows * cols / block; i++)
            q.d[i] = frand(rng, 0.0001, 0.01) * (i % 3 == 0 ? -1.0f : 1.0f);
        if (offsets) { /* GGUF Q5_1 / Q5_K: d * q + m with q in 0..31 */
            q.m = g_new(float, (size_t)rows * cols / 32);
            for (size_t i = 0; i < (size_t)rows * cols / 32; i++)
                q.m[i] = -frand(rng, 0.0, 0.2);
        }
        float *wf = g_new(float, (size_t)rows * cols);
        for (int r = 0; r < rows; r++)
            hr_q8mat_row_f32(&q, r, wf + (size_t)r * cols);
        float *x = g_new(float, (size_t)n * cols), *out = g_new(float, (size_t)n * rows);
        for (size_t i = 0; i < (size_t)n * cols; i++)
            x[i] = frand(rng, -1.0, 1.0) * (g_rand_int_range(rng, 0, 50) == 0 ? 20.0f : 1.0f);
        Ref R = reference(wf, rows, cols, x, n, NULL, NULL);
        for (int impl = 0; impl < 2; impl++) {
            const HrMatmulImpl im = impl ? HR_MATMUL_Q8_AVX512 : HR_MATMUL_Q8_AVX2;
            if (!hr_matmul_impl_available(im))
                continue;
            hr_matmul_q8w_impl(im, pool, out, &q, NULL, x, n, NULL);
            int bad = 0;
            for (int t = 0; t < n; t++)
                for (int r = 0; r < rows; r++) {
                    double bound = REL_TOL * R.mag[(size_t)t * rows + r];
                    for (int b = 0; b < cols; b += 32) {
                        double xa = 0.0, sw = 0.0;
                        for (int k = b; k < b + 32; k++) {
                            xa = fmax(xa, fabs(x[(size_t)t * cols + k]));
                            sw += fabs((double)q.d[((size_t)r * cols + k) / block] * q.q[(size_t)r * cols + k]);
                        }
                        bound += sw * xa / 127.0 / 2 * 1.0001;
                    }
                    bad += !(fabs((double)out[(size_t)t * rows + r] - R.ref[(size_t)t * rows + r]) <= bound);
                }
            checks++;
            HR_CHECK(bad == 0, "%s q8w block %d%s %dx%d n=%d pool %s: %d of %d outputs past the bound",
                     hr_matmul_impl_name(im), block, offsets ? " with offsets" : "", rows, cols, n, pool_name, bad,
                     n * rows);
        }
        ref_free(&R);
        hr_q8mat_free(&q);
        g_free(wf);
        g_free(x);
        g_free(out);
    }
}

/* int8 weights (hr_q8mat_from) and hr_matmul_q8w: each weight is within
 * d_w / 2 of the original, and each output within the worst case of both
 * roundings, sum_k |w| d_x / 2 + d_w / 2 |x| + d_w d_x / 4, of the FP
 * product; the mean error far below it. */
static void
run_q8w(HrThreadPool *pool, const char *pool_name, GRand *rng)
{
    /* n = 1 with 4+ rows: decode four rows at a time, also with an odd number of blocks */
    static const struct { int rows, cols, n; } qs[] = { { 1, 32, 1 }, { 37, 96, 2 }, { 130, 2048, 1 }, { 20, 64, 3 },
                                                        { 9, 96, 1 }, { 12, 576, 1 } };
    for (size_t s = 0; s < G_N_ELEMENTS(qs); s++) {
        const int rows = qs[s].rows, cols = qs[s].cols, n = qs[s].n, nb = cols / 32;
        uint16_t *wh = g_new(uint16_t, (size_t)rows * cols);
        float *wf = g_new(float, (size_t)rows * cols), *deq = g_new(float, cols);
        for (size_t i = 0; i < (size_t)rows * cols; i++) {
            float v = frand(rng, -0.1, 0.1) * (g_rand_int_range(rng, 0, 40) == 0 ? 8.0f : 1.0f);
            wh[i] = hr_f32_to_f16(v);
            wf[i] = hr_f16_to_f32(wh[i]);
        }
        HrMat m = { wh, HR_DTYPE_F16, rows, cols };
        HR_CHECK(hr_q8mat_supported(&m), "q8mat: %dx%d F16 not supported", rows, cols);
        if (!hr_q8mat_supported(&m)) {
            g_free(wh);
            g_free(wf);
            g_free(deq);
            continue;
        }
        HrQ8Mat q;
        hr_q8mat_from(pool, &m, &q);
        int wbad = 0;
        for (int r = 0; r < rows; r++) {
            hr_q8mat_row_f32(&q, r, deq);
            for (int k = 0; k < cols; k++)
                wbad += !(fabs(deq[k] - wf[(size_t)r * cols + k]) <= 0.5001 * q.d[(size_t)r * nb + k / 32] + 1e-12);
        }
        HR_CHECK(wbad == 0, "q8mat %dx%d pool %s: %d weights off by more than d/2", rows, cols, pool_name, wbad);
        float *x = g_new(float, (size_t)n * cols), *out = g_new(float, (size_t)n * rows);
        for (size_t i = 0; i < (size_t)n * cols; i++)
            x[i] = frand(rng, -1.0, 1.0) * (g_rand_int_range(rng, 0, 50) == 0 ? 20.0f : 1.0f);
        Ref R = reference(wf, rows, cols, x, n, NULL, NULL);
        for (int impl = 0; impl < 2; impl++) {
            const HrMatmulImpl im = impl ? HR_MATMUL_Q8_AVX512 : HR_MATMUL_Q8_AVX2;
            if (!hr_matmul_impl_available(im))
                continue;
            hr_matmul_q8w_impl(im, pool, out, &q, NULL, x, n, NULL);
            int bad = 0;
            double sum_err = 0.0, sum_bound = 0.0, worst = 0.0;
            for (int t = 0; t < n; t++)
                for (int r = 0; r < rows; r++) {
                    double bound = REL_TOL * R.mag[(size_t)t * rows + r];
                    for (int b = 0; b < nb; b++) {
                        double xa = 0.0, wa = 0.0, sw = 0.0, sx = 0.0;
                        for (int k = 32 * b; k < 32 * b + 32; k++) {
                            xa = fmax(xa, fabs(x[(size_t)t * cols + k]));
                            wa = fmax(wa, fabs(wf[(size_t)r * cols + k]));
                            sw += fabs(wf[(size_t)r * cols + k]);
                            sx += fabs(x[(size_t)t * cols + k]);
                        }
                        const double dx = xa / 127.0, dw = wa / 127.0;
                        bound += (sw * dx / 2 + dw / 2 * sx + 32 * dw * dx / 4) * 1.0001;
                    }
                    const double err = fabs((double)out[(size_t)t * rows + r] - R.ref[(size_t)t * rows + r]);
                    bad += !(err <= bound);
                    worst = isnan(err) ? INFINITY : fmax(worst, err / bound);
                    sum_err += err;
                    sum_bound += bound;
                }
            checks++;
            HR_CHECK(bad == 0, "%s q8w %dx%d n=%d pool %s: %d of %d outputs past the bound (worst %.3g x)",
                     hr_matmul_impl_name(im), rows, cols, n, pool_name, bad, n * rows, worst);
            HR_CHECK(sum_err < 0.25 * sum_bound, "%s q8w %dx%d: mean error %.3g of the bound", hr_matmul_impl_name(im), rows,
                     cols, sum_err / sum_bound);
        }
        ref_free(&R);
        hr_q8mat_free(&q);
        g_free(x);
        g_free(out);
        g_free(wh);
        g_free(wf);
        g_free(deq);
    }
}

/* int8 weights with int8 activations from 6 tokens on (prefill: panels of
 * 16 rows, token tiles of 8 with VNNI or 4 with AVX2) and the portable
 * reference (SCALAR), blocks of 32 and 16, weights over the whole int8
 * range (-128 too: the VNNI panel's offset and AVX2's sign trick), row
 * and token counts that leave partial panels, halves and tiles, with and
 * without bias and residual, the residual aliasing out. The weights are
 * exact, so each output is within the activations' rounding, sum over
 * activation blocks of sum_k |w_k| * d_x / 2, of the FP product, and the
 * mean error far below it; a wrong row, token, lane or block scale is off
 * by far more. The decode kernel, fed one token at a time, rounds and sums
 * the same integers: the two agree to FP32 rounding. */
static void
run_q8p(HrThreadPool *pool, const char *pool_name, GRand *rng)
{
    static const struct { int rows, cols, n, block; } qs[] = {
        { 1, 32, 6, 32 },    { 16, 64, 8, 32 },    { 17, 96, 7, 32 },     { 37, 576, 17, 32 },
        { 130, 1536, 64, 32 }, { 33, 160, 300, 32 }, { 8, 4096, 9, 32 },    { 1, 32, 6, 16 },
        { 20, 64, 9, 16 },   { 70, 1536, 33, 16 }, { 47, 256, 300, 16 },  { 9, 576, 16, 16 },
    };
    static const HrMatmulImpl ims[] = { HR_MATMUL_SCALAR, HR_MATMUL_Q8_AVX2, HR_MATMUL_Q8_AVX512 };
    for (size_t s = 0; s < G_N_ELEMENTS(qs); s++) {
        const int rows = qs[s].rows, cols = qs[s].cols, n = qs[s].n, bl = qs[s].block;
        HrQ8Mat q = { .rows = rows, .cols = cols, .block = bl };
        q.q = g_new(int8_t, (size_t)rows * cols);
        q.d = g_new(float, (size_t)rows * cols / bl);
        for (size_t i = 0; i < (size_t)rows * cols; i++)
            q.q[i] = (int8_t)g_rand_int_range(rng, -128, 128);
        for (size_t i = 0; i < (size_t)rows * cols / bl; i++)
            q.d[i] = frand(rng, 0.0001, 0.01) * (i % 3 == 0 ? -1.0f : 1.0f);
        float *wf = g_new(float, (size_t)rows * cols);
        for (int r = 0; r < rows; r++)
            hr_q8mat_row_f32(&q, r, wf + (size_t)r * cols);
        float *x = g_new(float, (size_t)n * cols), *bias = g_new(float, rows);
        float *res = g_new(float, (size_t)n * rows), *out = g_new(float, (size_t)n * rows);
        for (size_t i = 0; i < (size_t)n * cols; i++)
            x[i] = frand(rng, -1.0, 1.0) * (g_rand_int_range(rng, 0, 50) == 0 ? 20.0f : 1.0f);
        for (int i = 0; i < rows; i++)
            bias[i] = frand(rng, -0.5, 0.5);
        for (size_t i = 0; i < (size_t)n * rows; i++)
            res[i] = frand(rng, -2.0, 2.0);
        double *bound = g_new0(double, (size_t)n * rows);
        for (int t = 0; t < n; t++)
            for (int b = 0; b < cols; b += 32) {
                double xa = 0.0;
                for (int k = b; k < b + 32; k++)
                    xa = fmax(xa, fabs(x[(size_t)t * cols + k]));
                for (int r = 0; r < rows; r++) {
                    double sw = 0.0;
                    for (int k = b; k < b + 32; k++)
                        sw += fabs(wf[(size_t)r * cols + k]);
                    bound[(size_t)t * rows + r] += sw * xa / 127.0 / 2 * 1.0001;
                }
            }
        for (int variant = 0; variant < 4; variant++) {
            const float *b = variant >= 1 && variant <= 2 ? bias : NULL;
            const float *rs = variant >= 2 ? res : NULL;
            Ref R = reference(wf, rows, cols, x, n, b, rs);
            for (size_t m = 0; m < G_N_ELEMENTS(ims); m++) {
                if (!hr_matmul_impl_available(ims[m]))
                    continue;
                for (size_t i = 0; i < (size_t)n * rows; i++)
                    out[i] = variant == 3 ? res[i] : NAN;
                hr_matmul_q8w_impl(ims[m], pool, out, &q, b, x, n, variant == 3 ? out : rs);
                int bad = 0;
                double worst = 0.0, sum_err = 0.0, sum_bound = 0.0;
                for (size_t o = 0; o < (size_t)n * rows; o++) {
                    const double err = fabs((double)out[o] - R.ref[o]), lim = bound[o] + REL_TOL * R.mag[o];
                    bad += !(err <= lim);
                    worst = isnan(err) ? INFINITY : fmax(worst, err / lim);
                    sum_err += err;
                    sum_bound += lim;
                }
                checks++;
                HR_CHECK(bad == 0, "%s q8w prefill block %d %dx%d n=%d variant %d pool %s: %d of %d outputs past the "
                         "bound (worst %.3g x)", hr_matmul_impl_name(ims[m]), bl, rows, cols, n, variant, pool_name, bad,
                         n * rows, worst);
                HR_CHECK(sum_err < 0.25 * sum_bound, "%s q8w prefill block %d %dx%d n=%d: mean error %.3g of the bound",
                         hr_matmul_impl_name(ims[m]), bl, rows, cols, n, sum_err / sum_bound);
                if (variant != 0 || ims[m] == HR_MATMUL_SCALAR)
                    continue;
                /* the decode kernel, one token at a time, rounds x the same
                 * way and sums the same integers: equal to FP32 rounding */
                float *one = g_new(float, rows);
                int off = 0;
                for (int t = 0; t < n; t++) {
                    hr_matmul_q8w_impl(ims[m], pool, one, &q, NULL, x + (size_t)t * cols, 1, NULL);
                    for (int r = 0; r < rows; r++)
                        off += !(fabs((double)one[r] - out[(size_t)t * rows + r]) <= REL_TOL * R.mag[(size_t)t * rows + r]);
                }
                checks++;
                HR_CHECK(off == 0, "%s q8w block %d %dx%d n=%d pool %s: %d of %d outputs differ from the decode kernel's",
                         hr_matmul_impl_name(ims[m]), bl, rows, cols, n, pool_name, off, n * rows);
                g_free(one);
            }
            ref_free(&R);
        }
        g_free(bound);
        hr_q8mat_free(&q);
        g_free(wf);
        g_free(x);
        g_free(bias);
        g_free(res);
        g_free(out);
    }
}

/* hr_dot_rows_f32 (the HEARTH_CPU_EXACT rows of GGUF blocks) gives the
 * bits of the portable loop it replaced, for every token count (passes of
 * 4 and the rest) and width (multiples of 8 and tails). */
static void
run_dot_rows(GRand *rng)
{
    static const int colss[] = { 0, 5, 8, 13, 576, 1031 };
    static const int ns[] = { 1, 3, 4, 9, 13, 16 };
    for (size_t c = 0; c < G_N_ELEMENTS(colss); c++)
        for (size_t nn = 0; nn < G_N_ELEMENTS(ns); nn++) {
            const int cols = colss[c], n = ns[nn];
            float *w = g_new(float, (size_t)cols + 1), *x = g_new(float, (size_t)n * cols + 1);
            float dots[16], want[16];
            for (int k = 0; k < cols; k++)
                w[k] = frand(rng, -1.0, 1.0);
            for (size_t i = 0; i < (size_t)n * cols; i++)
                x[i] = frand(rng, -3.0, 3.0);
            for (int t = 0; t < n; t++) {
                const float *xt = x + (size_t)t * cols;
                float acc[8] = { 0 };
                int k = 0;
                for (; k + 8 <= cols; k += 8)
                    for (int i = 0; i < 8; i++)
                        acc[i] += w[k + i] * xt[k + i];
                float sum = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
                for (; k < cols; k++)
                    sum += w[k] * xt[k];
                want[t] = sum;
            }
            hr_dot_rows_f32(w, x, cols, n, dots);
            checks++;
            HR_CHECK(memcmp(dots, want, sizeof(float) * (size_t)n) == 0, "dot rows cols=%d n=%d: not the loop's bits",
                     cols, n);
            g_free(w);
            g_free(x);
        }
}

/* hr_matmul_q4_multi gives exactly the results of separate calls: q|k|v
 * shapes (decode and prefill tiles), a group that differs (no sharing) and
 * the FP path. */
static void
run_multi(HrThreadPool *pool, const char *pool_name, GRand *rng)
{
    static const struct { int rows[3], cols, group[3], n; } ms[] = {
        { { 64, 16, 16 }, 256, { 128, 128, 128 }, 1 },
        { { 40, 8, 8 }, 512, { 64, 64, 64 }, 17 },
        { { 24, 24, 0 }, 384, { 128, 128, 0 }, 3 },
        { { 16, 8, 8 }, 256, { 128, 64, 128 }, 2 },
    };
    static const HrMatmulImpl im[] = { HR_MATMUL_AUTO, HR_MATMUL_Q8_AVX2, HR_MATMUL_Q8_AVX512 };
    for (size_t s = 0; s < G_N_ELEMENTS(ms); s++) {
        const int count = ms[s].rows[2] ? 3 : 2, cols = ms[s].cols, n = ms[s].n;
        HrQMat q[3];
        float *sep[3], *one[3], *bias[3];
        for (int i = 0; i < count; i++) {
            q[i] = random_qmat(rng, ms[s].rows[i], cols, ms[s].group[i]);
            sep[i] = g_new(float, (size_t)n * ms[s].rows[i]);
            one[i] = g_new(float, (size_t)n * ms[s].rows[i]);
            bias[i] = g_new(float, ms[s].rows[i]);
            for (int r = 0; r < ms[s].rows[i]; r++)
                bias[i][r] = frand(rng, -0.5, 0.5);
        }
        float *x = g_new(float, (size_t)n * cols);
        for (size_t i = 0; i < (size_t)n * cols; i++)
            x[i] = frand(rng, -1.0, 1.0);
        const HrQMat *w[3] = { &q[0], &q[1], count > 2 ? &q[2] : NULL };
        for (size_t m = 0; m < G_N_ELEMENTS(im); m++) {
            if (!hr_matmul_impl_available(im[m]))
                continue;
            for (int i = 0; i < count; i++)
                hr_matmul_q4_impl(im[m], pool, sep[i], w[i], bias[i], x, n, NULL);
            hr_matmul_q4_multi_impl(im[m], pool, count, one, w, (const float *const *)bias, x, n);
            int bad = 0;
            for (int i = 0; i < count; i++)
                bad += memcmp(sep[i], one[i], sizeof(float) * (size_t)n * ms[s].rows[i]) != 0;
            checks++;
            HR_CHECK(bad == 0, "%s multi case %zu pool %s: %d of %d outputs differ from separate calls",
                     hr_matmul_impl_name(im[m]), s, pool_name, bad, count);
        }
        for (int i = 0; i < count; i++) {
            hr_qmat_free(&q[i]);
            g_free(sep[i]);
            g_free(one[i]);
            g_free(bias[i]);
        }
        g_free(x);
    }
}

/* hr_attend_head (vector exp, V rows in 8 accumulators) against a double
 * reference: head dims 8..128 (tails of 64 and of 8), FP16 and FP32 caches,
 * a window start > 0, score ranges wide enough that some weights underflow
 * to 0, Gemma 2's soft cap on the scores, and rows kept in a ring (a
 * sliding-window layer's cache: row j at entry j % ring, wrapping). */
static void
run_attention(GRand *rng)
{
    static const struct { int hd, start, p; float spread, softcap; int ring; } as[] = {
        { 64, 0, 0, 1.0f, 0, 0 }, { 64, 0, 200, 1.0f, 0, 0 }, { 128, 5, 77, 3.0f, 0, 0 }, { 8, 0, 33, 1.0f, 0, 0 },
        { 72, 0, 20, 1.0f, 0, 0 }, { 96, 10, 140, 30.0f, 0, 0 }, { 16, 0, 7, 1.0f, 0, 0 },
        { 64, 0, 200, 3.0f, 1.5f, 0 }, { 72, 3, 50, 30.0f, 2.0f, 0 },
        { 64, 150, 200, 3.0f, 0, 60 }, { 72, 3, 50, 30.0f, 2.0f, 48 }, { 12, 20, 29, 1.0f, 0, 10 },
    };
    for (size_t c = 0; c < G_N_ELEMENTS(as); c++) {
        const int hd = as[c].hd, start = as[c].start, p = as[c].p;
        const size_t stride = (size_t)hd * 3; /* other heads in between */
        const size_t n = (size_t)(p + 1) * stride;
        float *q = g_new(float, hd), *kf = g_new(float, n), *vf = g_new(float, n);
        uint16_t *kh = g_new(uint16_t, n), *vh = g_new(uint16_t, n);
        for (int i = 0; i < hd; i++)
            q[i] = frand(rng, -1.0, 1.0) * as[c].spread;
        for (size_t i = 0; i < n; i++) {
            kh[i] = hr_f32_to_f16(frand(rng, -1.0, 1.0));
            vh[i] = hr_f32_to_f16(frand(rng, -1.0, 1.0));
            kf[i] = hr_f16_to_f32(kh[i]);
            vf[i] = hr_f16_to_f32(vh[i]);
        }
        const float scale = 1.0f / sqrtf((float)hd);
        double *sc = g_new(double, p + 1), mx = -INFINITY, sum = 0.0;
        for (int j = start; j <= p; j++) {
            double d = 0.0;
            for (int i = 0; i < hd; i++)
                d += (double)q[i] * kf[(size_t)j * stride + i];
            sc[j] = d * scale;
            if (as[c].softcap > 0.0f)
                sc[j] = tanh(sc[j] / as[c].softcap) * as[c].softcap;
            mx = fmax(mx, sc[j]);
        }
        for (int j = start; j <= p; j++)
            sum += (sc[j] = exp(sc[j] - mx));
        float *scores = g_new(float, p + 1), *out = g_new(float, hd);
        /* a ring: the same rows at entries j % ring of smaller caches (the others never read) */
        const int ring = as[c].ring;
        float *rkf = NULL, *rvf = NULL;
        uint16_t *rkh = NULL, *rvh = NULL;
        if (ring > 0) {
            const size_t rn = (size_t)ring * stride;
            rkf = g_new0(float, rn), rvf = g_new0(float, rn), rkh = g_new0(uint16_t, rn), rvh = g_new0(uint16_t, rn);
            for (int j = start; j <= p; j++) {
                const size_t o = (size_t)j * stride, r = (size_t)(j % ring) * stride;
                memcpy(rkf + r, kf + o, sizeof(float) * stride);
                memcpy(rvf + r, vf + o, sizeof(float) * stride);
                memcpy(rkh + r, kh + o, sizeof(uint16_t) * stride);
                memcpy(rvh + r, vh + o, sizeof(uint16_t) * stride);
            }
        }
        for (int f16 = 0; f16 < 2; f16++) {
            const void *ka = ring ? (f16 ? (const void *)rkh : rkf) : f16 ? (const void *)kh : kf;
            const void *va = ring ? (f16 ? (const void *)rvh : rvf) : f16 ? (const void *)vh : vf;
            hr_attend_head(q, ka, va, f16, stride, ring, hd, start, p, scale, as[c].softcap, scores, out);
            int bad = 0;
            double worst = 0.0;
            for (int i = 0; i < hd; i++) {
                double ref = 0.0, mag = 0.0;
                for (int j = start; j <= p; j++) {
                    ref += sc[j] / sum * vf[(size_t)j * stride + i];
                    mag += sc[j] / sum * fabs(vf[(size_t)j * stride + i]);
                }
                const double err = fabs(out[i] - ref), lim = 2e-5 * mag * sqrt((double)as[c].spread) + 1e-12;
                bad += !(err <= lim);
                worst = hr_worse(worst, err / lim);
            }
            checks++;
            HR_CHECK(bad == 0, "attention hd %d positions %d..%d ring %d %s: %d of %d outputs off (worst %.3g x tol)",
                     hd, start, p, ring, f16 ? "f16" : "f32", bad, hd, worst);
        }
        g_free(rkf);
        g_free(rvf);
        g_free(rkh);
        g_free(rvh);
        g_free(q);
        g_free(kf);
        g_free(vf);
        g_free(kh);
        g_free(vh);
        g_free(sc);
        g_free(scores);
        g_free(out);
    }
}

/* The comparison must catch a result with one K term dropped. */
static void
control(GRand *rng)
{
    const int rows = 9, cols = 1100, n = 5;
    float *w = g_new(float, (size_t)rows * cols), *x = g_new(float, (size_t)n * cols);
    float *out = g_new(float, (size_t)n * rows);
    for (size_t i = 0; i < (size_t)rows * cols; i++)
        w[i] = frand(rng, -0.2, 0.2);
    for (size_t i = 0; i < (size_t)n * cols; i++)
        x[i] = frand(rng, -1.0, 1.0);
    Ref R = reference(w, rows, cols, x, n, NULL, NULL);
    HrMat m = { w, HR_DTYPE_F32, rows, cols };
    hr_matmul(NULL, out, &m, NULL, x, n, NULL);
    double worst;
    HR_CHECK(compare(&R, out, rows, n, &worst) == 0, "control: the correct result fails (worst %.3g)", worst);
    out[3 * rows + 4] -= w[4 * cols + 1099] * x[3 * cols + 1099];
    HR_CHECK(compare(&R, out, rows, n, &worst) == 1, "control: a dropped term passes (worst %.3g)", worst);
    ref_free(&R);
    g_free(w);
    g_free(x);
    g_free(out);
}

/* The pool's dynamic split: whatever the number of threads, however the
 * chunks fall to them, and with a thread that sleeps in the middle of a job
 * (another program has its core), every kernel's output is bit-identical
 * to the serial run. */
typedef struct {
    int sleeper;   /* this thread sleeps before its first chunk of every job */
    atomic_int slept;
} SleepHook;

static void
sleepy(void *user, int thread, int chunk)
{
    SleepHook *h = user;
    if (thread == h->sleeper && chunk % 5 == 1) {
        g_usleep(300);
        atomic_fetch_add(&h->slept, 1);
    }
}

static void
run_split_identity(GRand *rng)
{
    static const struct { int rows, cols, group, n; } qs[] = {
        { 2048, 256, 32, 1 }, { 523, 576, 64, 3 }, { 130, 576, 64, 64 }, { 1000, 128, 128, 300 },
    };
    const HrMatmulImpl q4_impls[] = { HR_MATMUL_AUTO, HR_MATMUL_Q8_AVX2, HR_MATMUL_Q8_AVX512 };
    const int widths[] = { 2, 3, 8 };
    for (size_t s = 0; s < G_N_ELEMENTS(qs); s++) {
        const int rows = qs[s].rows, cols = qs[s].cols, n = qs[s].n;
        HrQMat q = random_qmat(rng, rows, cols, qs[s].group);
        float *x = g_new(float, (size_t)n * cols);
        for (size_t i = 0; i < (size_t)n * cols; i++)
            x[i] = frand(rng, -1.0, 1.0);
        float *serial = g_new(float, (size_t)n * rows), *pooled = g_new(float, (size_t)n * rows);
        {
            /* AUTO runs FP32 activations here (HEARTH_CPU_EXACT); the Q8
             * kernels, forced, the int8 ones. */
            for (size_t m = 0; m < G_N_ELEMENTS(q4_impls); m++) {
                if (!hr_matmul_impl_available(q4_impls[m]))
                    continue;
                hr_matmul_q4_impl(q4_impls[m], NULL, serial, &q, NULL, x, n, NULL);
                for (size_t w = 0; w < G_N_ELEMENTS(widths); w++) {
                    HrThreadPool *pool = hr_pool_new(widths[w]);
                    hr_pool_set_adaptive(pool, false);
                    SleepHook h = { .sleeper = (int)(w % 2) };
                    hr_pool_set_hook(pool, sleepy, &h);
                    memset(pooled, 0xff, sizeof(float) * (size_t)n * rows);
                    hr_matmul_q4_impl(q4_impls[m], pool, pooled, &q, NULL, x, n, NULL);
                    checks++;
                    HR_CHECK(memcmp(serial, pooled, sizeof(float) * (size_t)n * rows) == 0,
                             "%s q4 %dx%d n=%d: %d threads (thread %d sleeping %d times) differ from serial",
                             hr_matmul_impl_name(q4_impls[m]), rows, cols, n, widths[w], h.sleeper,
                             atomic_load(&h.slept));
                    hr_pool_free(pool);
                }
            }
        }
        hr_qmat_free(&q);
        g_free(x);
        g_free(serial);
        g_free(pooled);
    }
}

int
main(void)
{
    /* AUTO is compared at FP32 precision: keep its decode path on FP32
     * activations; run_q8() checks the int8 kernels by name. */
    g_setenv("HEARTH_CPU_EXACT", "1", TRUE);
    for (size_t m = 0; m < G_N_ELEMENTS(impls); m++)
        printf("%s: %s\n", hr_matmul_impl_name(impls[m]),
               hr_matmul_impl_available(impls[m]) ? "tested" : "not available here, skipped");
    printf("q8-avx2: %s, q8-avx512vnni: %s\n", hr_matmul_impl_available(HR_MATMUL_Q8_AVX2) ? "tested" : "not available",
           hr_matmul_impl_available(HR_MATMUL_Q8_AVX512) ? "tested" : "not available");
    GRand *rng = g_rand_new_with_seed(12345);
    control(rng);
    HrThreadPool *p2 = hr_pool_new(2), *p3 = hr_pool_new(3);
    run_dense(NULL, "none", rng);
    run_dense(p2, "2", rng);
    run_dense(p3, "3", rng);
    run_q4(NULL, "none", rng);
    run_q4(p2, "2", rng);
    run_q4(p3, "3", rng);
    run_q8(NULL, "none", rng);
    run_q8(p2, "2", rng);
    run_q8(p3, "3", rng);
    run_q8w(NULL, "none", rng);
    run_q8w(p2, "2", rng);
    run_q8w(p3, "3", rng);
    run_q8w16_kind(NULL, "none", rng, 16, false);
    run_q8w16_kind(p2, "2", rng, 16, false);
    run_q8w16_kind(NULL, "none", rng, 32, true);
    run_q8w16_kind(p3, "3", rng, 32, true);
    run_q8p(NULL, "none", rng);
    run_q8p(p2, "2", rng);
    run_q8p(p3, "3", rng);
    run_dot_rows(rng);
    run_multi(NULL, "none", rng);
    run_attention(rng);
    run_multi(p2, "2", rng);
    run_split_identity(rng);
    hr_pool_free(p2);
    hr_pool_free(p3);
    g_rand_free(rng);
    printf("%d comparisons\n", checks);
    return hr_test_result();
}
