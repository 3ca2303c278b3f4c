#include "cpu-kernels.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

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

void *
hr_try_alloc64(size_t bytes)
{
    void *p = NULL;
    return posix_memalign(&p, 64, bytes ? bytes : 1) == 0 ? p : NULL;
}

void *
hr_alloc64(size_t bytes)
{
    void *p = hr_try_alloc64(bytes);
    if (!p)
        g_error("cannot allocate %zu bytes", bytes);
    return p;
}

void *
hr_weights_alloc(size_t bytes)
{
    const size_t huge = (size_t)2 << 20;
    if (bytes < huge)
        return g_malloc(bytes ? bytes : 1);
    void *p = NULL;
    if (posix_memalign(&p, huge, bytes) != 0)
        g_error("hr_weights_alloc: cannot allocate %zu bytes", bytes);
#ifdef MADV_HUGEPAGE
    madvise(p, bytes, MADV_HUGEPAGE);
#endif
    return p;
}

void
hr_mat_row_f32(const HrMat *m, int r, float *dst, int n)
{
    size_t off = (size_t)r * (size_t)m->cols;
    switch (m->dtype) {
    case HR_DTYPE_F32:
        memcpy(dst, (const float *)m->data + off, sizeof(float) * (size_t)n);
        break;
    /* hr_u16_at: a safetensors tensor need not be aligned (the quantizer
     * reads checkpoints as they are) */
    case HR_DTYPE_F16: {
        pthread_once(&f16_once, fill_f16_table);
        const uint8_t *src = (const uint8_t *)m->data + 2 * off;
        for (int i = 0; i < n; i++)
            dst[i] = f16_table[hr_u16_at(src + 2 * i)];
        break;
    }
    case HR_DTYPE_BF16: {
        const uint8_t *src = (const uint8_t *)m->data + 2 * off;
        for (int i = 0; i < n; i++)
            dst[i] = hr_bf16_to_f32(hr_u16_at(src + 2 * i));
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

/* ---- row kernels: W row (F32/F16/BF16) . x for several x ---------------------
 * The scalar versions are the reference; on x86-64 with AVX2+FMA+F16C the
 * vector versions are picked at run time. Both accumulate in FP32. */

static void
row_dot_scalar(const HrMat *m, const void *w, const float *x, int cols, int n, size_t x_stride, float *acc,
               float *tmp)
{
    const float *wr = w;
    if (m->dtype != HR_DTYPE_F32) {
        hr_mat_row_f32(&(HrMat){ w, m->dtype, 1, cols }, 0, tmp, cols);
        wr = tmp;
    }
    for (int t = 0; t < n; t++)
        acc[t] = dot(wr, x + (size_t)t * x_stride, cols);
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

/* Decode kernels stream each weight matrix once; a software prefetch this
 * many bytes ahead of the read (within a row, or into the next rows a
 * thread owns) measured 10-15 % more bandwidth than the hardware
 * prefetchers alone on an AMD EPYC (tests/bench/README.md). */
#ifndef HR_PREFETCH_AHEAD
#define HR_PREFETCH_AHEAD 4096
#endif

__attribute__((target("avx2,fma,f16c"))) static inline float
hsum256(__m256 v)
{
    __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
    lo = _mm_add_ps(lo, hi);
    lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
    lo = _mm_add_ss(lo, _mm_movehdup_ps(lo));
    return _mm_cvtss_f32(lo);
}

/* Load 8 weights as FP32. */
__attribute__((target("avx2,fma,f16c"))) static inline __m256
load8(const void *w, HrDType dt, int i)
{
    switch (dt) {
    case HR_DTYPE_F16:
        return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)w + i)));
    case HR_DTYPE_BF16: {
        __m256i h = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)((const uint16_t *)w + i)));
        return _mm256_castsi256_ps(_mm256_slli_epi32(h, 16));
    }
    default:
        return _mm256_loadu_ps((const float *)w + i);
    }
}

__attribute__((target("avx2,fma,f16c"))) static float
load1(const void *w, HrDType dt, int i)
{
    switch (dt) {
    case HR_DTYPE_F16: return hr_f16_to_f32(((const uint16_t *)w)[i]);
    case HR_DTYPE_BF16: return hr_bf16_to_f32(((const uint16_t *)w)[i]);
    default: return ((const float *)w)[i];
    }
}

/* Up to 4 activation rows share each weight load. */
__attribute__((target("avx2,fma,f16c"))) static void
row_dot_avx2(const HrMat *m, const void *w, const float *x, int cols, int n, size_t x_stride, float *acc,
             float *tmp)
{
    (void)tmp;
    const HrDType dt = m->dtype;
    const int c8 = cols & ~7;
    if (n == 1) { /* decode: four independent chains, not one serialised on FMA latency */
        const int c32 = cols & ~31;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        int i = 0;
        for (; i < c32; i += 32) {
            a0 = _mm256_fmadd_ps(load8(w, dt, i), _mm256_loadu_ps(x + i), a0);
            a1 = _mm256_fmadd_ps(load8(w, dt, i + 8), _mm256_loadu_ps(x + i + 8), a1);
            a2 = _mm256_fmadd_ps(load8(w, dt, i + 16), _mm256_loadu_ps(x + i + 16), a2);
            a3 = _mm256_fmadd_ps(load8(w, dt, i + 24), _mm256_loadu_ps(x + i + 24), a3);
        }
        for (; i < c8; i += 8)
            a0 = _mm256_fmadd_ps(load8(w, dt, i), _mm256_loadu_ps(x + i), a0);
        float r = hsum256(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
        for (; i < cols; i++)
            r += load1(w, dt, i) * x[i];
        acc[0] = r;
        return;
    }
    for (int t0 = 0; t0 < n; t0 += 4) {
        int nt = n - t0 < 4 ? n - t0 : 4;
        __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
        const float *x0 = x + (size_t)t0 * x_stride;
        for (int i = 0; i < c8; i += 8) {
            __m256 wv = load8(w, dt, i);
            s0 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x0 + i), s0);
            if (nt > 1) s1 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x0 + x_stride + i), s1);
            if (nt > 2) s2 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x0 + 2 * x_stride + i), s2);
            if (nt > 3) s3 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x0 + 3 * x_stride + i), s3);
        }
        float r[4] = { hsum256(s0), hsum256(s1), hsum256(s2), hsum256(s3) };
        for (int i = c8; i < cols; i++) {
            float wi = load1(w, dt, i);
            for (int k = 0; k < nt; k++)
                r[k] += wi * x0[(size_t)k * x_stride + i];
        }
        for (int k = 0; k < nt; k++)
            acc[t0 + k] = r[k];
    }
}

static bool
have_avx2(void)
{
    static int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init();
        cached = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
        if (g_getenv("HEARTH_CPU_SCALAR"))
            cached = 0;
    }
    return cached;
}

static bool
have_avx512(void)
{
    static int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init();
        cached = have_avx2() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
                 __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq");
    }
    return cached;
}
#endif

bool
hr_cpu_avx512(void)
{
#if defined(__x86_64__) && defined(__GNUC__)
    return have_avx512();
#else
    return false;
#endif
}

/* Decode (n == 1) in AVX-512: 64 weights per step in four independent
 * chains. F16 and BF16 rows are converted in registers; this is the FP16
 * lm_head of most AWQ checkpoints, often the largest single read of a step. */
__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c"))) static inline __m512
load16_512(const void *w, HrDType dt, int i)
{
    switch (dt) {
    case HR_DTYPE_F16:
        return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)((const uint16_t *)w + i)));
    case HR_DTYPE_BF16:
        return _mm512_castsi512_ps(
            _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)((const uint16_t *)w + i))), 16));
    default:
        return _mm512_loadu_ps((const float *)w + i);
    }
}

__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c"))) static void
row_dot1_avx512(const HrMat *m, const void *w, const float *x, int cols, int n, size_t x_stride, float *acc,
                float *tmp)
{
    (void)n;
    (void)x_stride;
    (void)tmp;
    const HrDType dt = m->dtype;
    const int c64 = cols & ~63, c16 = cols & ~15;
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int i = 0;
    const size_t eb = hr_dtype_size(dt);
    for (; i < c64; i += 64) {
        for (size_t b = 0; b < 64 * eb; b += 64)
            _mm_prefetch((const char *)w + (size_t)i * eb + b + HR_PREFETCH_AHEAD, _MM_HINT_T0);
        a0 = _mm512_fmadd_ps(load16_512(w, dt, i), _mm512_loadu_ps(x + i), a0);
        a1 = _mm512_fmadd_ps(load16_512(w, dt, i + 16), _mm512_loadu_ps(x + i + 16), a1);
        a2 = _mm512_fmadd_ps(load16_512(w, dt, i + 32), _mm512_loadu_ps(x + i + 32), a2);
        a3 = _mm512_fmadd_ps(load16_512(w, dt, i + 48), _mm512_loadu_ps(x + i + 48), a3);
    }
    for (; i < c16; i += 16)
        a0 = _mm512_fmadd_ps(load16_512(w, dt, i), _mm512_loadu_ps(x + i), a0);
    float r = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
    for (; i < cols; i++)
        r += load1(w, dt, i) * x[i];
    acc[0] = r;
}

typedef void (*RowDotFunc)(const HrMat *, const void *, const float *, int, int, size_t, float *, float *);

typedef struct {
    float *out;
    const HrMat *w;
    const float *bias, *x, *residual;
    int n;
    RowDotFunc row_dot;
} MatmulJob;

static void
matmul_rows(void *arg, int r0, int r1)
{
    const MatmulJob *j = arg;
    const HrMat *w = j->w;
    const int rows = w->rows, cols = w->cols;
    const size_t esize = hr_dtype_size(w->dtype);
    RowDotFunc row_dot = j->row_dot;
    /* Per-call scratch off the heap only when needed: the row buffer is for
     * the scalar path's F16/BF16 conversion, and a decode or prefill chunk
     * (n <= 64) keeps its accumulators on the stack. */
    float *tmp = (row_dot == row_dot_scalar && w->dtype != HR_DTYPE_F32) ? g_new(float, cols) : NULL;
    float acc_stack[64];
    float *acc = j->n <= 64 ? acc_stack : g_new(float, j->n);
    for (int r = r0; r < r1; r++) {
        row_dot(w, (const char *)w->data + (size_t)r * cols * esize, j->x, cols, j->n, (size_t)cols, acc, tmp);
        float b = j->bias ? j->bias[r] : 0.0f;
        for (int t = 0; t < j->n; t++) {
            size_t o = (size_t)t * rows + r;
            float v = acc[t] + b;
            j->out[o] = j->residual ? j->residual[o] + v : v;
        }
    }
    if (acc != acc_stack)
        g_free(acc);
    g_free(tmp);
}

/* ---- blocked GEMM for many tokens --------------------------------------------
 * out[t, r] = W[r, :] . x[t, :] for many tokens (prefill chunks, the AWQ
 * search). W and x are both contiguous along K, so the micro-kernel keeps
 * 4 weight rows x T tokens of vector accumulators along K (each weight load
 * feeds T FMAs, each activation load 4: T = 3 in AVX2's 16 registers, 6 in
 * AVX-512's 32) and reduces them horizontally once per K tile. Loop nest
 * per thread (over its own rows, or its own tokens when there are few rows):
 *   token chunk of GEMM_NC     (x chunk, GEMM_NC x K tile, in L3)
 *     K tile of <= GEMM_KC     (equal tiles)
 *       block of GEMM_MC rows  packed as FP32, K tile contiguous (in L2)
 *         T tokens             micro-panel of x, stays in L1
 *           4 rows             micro-kernel, epilogue into out
 * Packing converts F16/BF16/4-bit rows once per block (never a copy of the
 * whole matrix) and pays for itself on F32 too (contiguous rows, in L2).
 * With n <= GEMM_SMALL_N nothing is allocated: F32 rows are used in place
 * and others packed into a 64 KiB stack buffer (fewer rows per block).
 * The first K tile writes residual + bias + partial sum and later ones add
 * to out, so out may alias residual. Sizes were picked by measurement on an
 * AMD EPYC with full-width AVX-512, 48 KiB L1d and 1 MiB L2 per core
 * (tests/bench/bench-matmul.c). */

enum {
    GEMM_KC = 1024,        /* longest K tile (floats), a multiple of 16 */
    GEMM_NC = 768,         /* token chunk (x: 3 MiB per K tile, in L3) */
    GEMM_MC = 128,         /* rows packed per block (512 KiB, in L2) */
    GEMM_TMAX = 6,         /* most tokens per micro-kernel */
    GEMM_MIN_N = 6,        /* AUTO uses the GEMM from this many tokens */
    GEMM_SMALL_N = 64,     /* up to here no heap: see gemm_block() */
    GEMM_STACK_BUF = 16384, /* floats (64 KiB) of converted rows on the stack */
    GEMM_TOKEN_SPLIT = 96, /* tokens per thread, at least, to split tokens */
};

#if defined(__x86_64__) && defined(__GNUC__)
/* sums[4 * t + r] = W_r[0:k] . x_t[0:k] for r < 4, t < T. */
typedef void (*GemmKernel)(const float *const *w, const float *const *x, int k, float *sums);

/* The sums of 4 vectors: { sum a, sum b, sum c, sum d }. */
__attribute__((target("avx2,fma,f16c"))) static inline __m128
hsum4_256(__m256 a, __m256 b, __m256 c, __m256 d)
{
    __m256 ab = _mm256_hadd_ps(a, b), cd = _mm256_hadd_ps(c, d);
    __m256 abcd = _mm256_hadd_ps(ab, cd);
    return _mm_add_ps(_mm256_castps256_ps128(abcd), _mm256_extractf128_ps(abcd, 1));
}

/* The accumulators are named variables, not an array: GCC keeps an array
 * this large in memory and stores it on every iteration. A##r##t is weight
 * row r against token t; T is a constant after inlining, so the unused
 * ones vanish. */
#define GEMM_FMA_ROW(FMA, r, wv)                                                                           \
    do {                                                                                                   \
        a##r##0 = FMA(wv, x0v, a##r##0);                                                                   \
        if (T > 1) a##r##1 = FMA(wv, x1v, a##r##1);                                                        \
        if (T > 2) a##r##2 = FMA(wv, x2v, a##r##2);                                                        \
        if (T > 3) a##r##3 = FMA(wv, x3v, a##r##3);                                                        \
        if (T > 4) a##r##4 = FMA(wv, x4v, a##r##4);                                                        \
        if (T > 5) a##r##5 = FMA(wv, x5v, a##r##5);                                                        \
    } while (0)

__attribute__((target("avx2,fma,f16c"), always_inline)) static inline void
gemm_kernel_avx2(const int T, const float *const *w, const float *const *x, int k, float *sums)
{
    const __m256 z = _mm256_setzero_ps();
    __m256 a00 = z, a01 = z, a02 = z, a10 = z, a11 = z, a12 = z, a20 = z, a21 = z, a22 = z, a30 = z, a31 = z,
           a32 = z;
    /* Never used (T <= 3): the macro names them. */
    __m256 a03 = z, a04 = z, a05 = z, a13 = z, a14 = z, a15 = z, a23 = z, a24 = z, a25 = z, a33 = z, a34 = z,
           a35 = z, x3v = z, x4v = z, x5v = z;
    const float *w0 = w[0], *w1 = w[1], *w2 = w[2], *w3 = w[3];
    const float *x0 = x[0], *x1 = T > 1 ? x[1] : x0, *x2 = T > 2 ? x[2] : x0;
    const int k8 = k & ~7;
    for (int i = 0; i < k8; i += 8) {
        __m256 x0v = _mm256_loadu_ps(x0 + i), x1v = z, x2v = z;
        if (T > 1) x1v = _mm256_loadu_ps(x1 + i);
        if (T > 2) x2v = _mm256_loadu_ps(x2 + i);
        GEMM_FMA_ROW(_mm256_fmadd_ps, 0, _mm256_loadu_ps(w0 + i));
        GEMM_FMA_ROW(_mm256_fmadd_ps, 1, _mm256_loadu_ps(w1 + i));
        GEMM_FMA_ROW(_mm256_fmadd_ps, 2, _mm256_loadu_ps(w2 + i));
        GEMM_FMA_ROW(_mm256_fmadd_ps, 3, _mm256_loadu_ps(w3 + i));
    }
    if (k8 < k) {
        /* The last k % 8 inputs, masked: nothing past a row is read. */
        __m256i m = _mm256_cmpgt_epi32(_mm256_set1_epi32(k - k8), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
        __m256 x0v = _mm256_maskload_ps(x0 + k8, m), x1v = z, x2v = z;
        if (T > 1) x1v = _mm256_maskload_ps(x1 + k8, m);
        if (T > 2) x2v = _mm256_maskload_ps(x2 + k8, m);
        GEMM_FMA_ROW(_mm256_fmadd_ps, 0, _mm256_maskload_ps(w0 + k8, m));
        GEMM_FMA_ROW(_mm256_fmadd_ps, 1, _mm256_maskload_ps(w1 + k8, m));
        GEMM_FMA_ROW(_mm256_fmadd_ps, 2, _mm256_maskload_ps(w2 + k8, m));
        GEMM_FMA_ROW(_mm256_fmadd_ps, 3, _mm256_maskload_ps(w3 + k8, m));
    }
    _mm_storeu_ps(sums, hsum4_256(a00, a10, a20, a30));
    if (T > 1) _mm_storeu_ps(sums + 4, hsum4_256(a01, a11, a21, a31));
    if (T > 2) _mm_storeu_ps(sums + 8, hsum4_256(a02, a12, a22, a32));
    (void)a03, (void)a04, (void)a05, (void)a13, (void)a14, (void)a15;
    (void)a23, (void)a24, (void)a25, (void)a33, (void)a34, (void)a35;
}

#define GEMM_AVX2_T(T)                                                                                     \
    __attribute__((target("avx2,fma,f16c"))) static void gemm_4x##T##_avx2(                               \
        const float *const *w, const float *const *x, int k, float *sums)                                  \
    {                                                                                                      \
        gemm_kernel_avx2(T, w, x, k, sums);                                                                \
    }
GEMM_AVX2_T(1)
GEMM_AVX2_T(2)
GEMM_AVX2_T(3)

#define AVX512_TARGET "avx512f,avx512vl,avx512bw,avx512dq,avx2,fma,f16c"

__attribute__((target(AVX512_TARGET), always_inline)) static inline __m256
fold512(__m512 v)
{
    return _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
}

__attribute__((target(AVX512_TARGET), always_inline)) static inline void
gemm_kernel_avx512(const int T, const float *const *w, const float *const *x, int k, float *sums)
{
    const __m512 z = _mm512_setzero_ps();
    __m512 a00 = z, a01 = z, a02 = z, a03 = z, a04 = z, a05 = z, a10 = z, a11 = z, a12 = z, a13 = z, a14 = z,
           a15 = z, a20 = z, a21 = z, a22 = z, a23 = z, a24 = z, a25 = z, a30 = z, a31 = z, a32 = z, a33 = z,
           a34 = z, a35 = z;
    const float *x0 = x[0], *x1 = T > 1 ? x[1] : x0, *x2 = T > 2 ? x[2] : x0, *x3 = T > 3 ? x[3] : x0,
                *x4 = T > 4 ? x[4] : x0, *x5 = T > 5 ? x[5] : x0;
    const float *w0 = w[0], *w1 = w[1], *w2 = w[2], *w3 = w[3];
    const int k16 = k & ~15;
    for (int i = 0; i < k16; i += 16) {
        __m512 x0v = _mm512_loadu_ps(x0 + i), x1v = z, x2v = z, x3v = z, x4v = z, x5v = z;
        if (T > 1) x1v = _mm512_loadu_ps(x1 + i);
        if (T > 2) x2v = _mm512_loadu_ps(x2 + i);
        if (T > 3) x3v = _mm512_loadu_ps(x3 + i);
        if (T > 4) x4v = _mm512_loadu_ps(x4 + i);
        if (T > 5) x5v = _mm512_loadu_ps(x5 + i);
        GEMM_FMA_ROW(_mm512_fmadd_ps, 0, _mm512_loadu_ps(w0 + i));
        GEMM_FMA_ROW(_mm512_fmadd_ps, 1, _mm512_loadu_ps(w1 + i));
        GEMM_FMA_ROW(_mm512_fmadd_ps, 2, _mm512_loadu_ps(w2 + i));
        GEMM_FMA_ROW(_mm512_fmadd_ps, 3, _mm512_loadu_ps(w3 + i));
    }
    if (k16 < k) {
        /* The last k % 16 inputs, masked: nothing past a row is read. */
        const __mmask16 m = (__mmask16)((1u << (k - k16)) - 1u);
        __m512 x0v = _mm512_maskz_loadu_ps(m, x0 + k16), x1v = z, x2v = z, x3v = z, x4v = z, x5v = z;
        if (T > 1) x1v = _mm512_maskz_loadu_ps(m, x1 + k16);
        if (T > 2) x2v = _mm512_maskz_loadu_ps(m, x2 + k16);
        if (T > 3) x3v = _mm512_maskz_loadu_ps(m, x3 + k16);
        if (T > 4) x4v = _mm512_maskz_loadu_ps(m, x4 + k16);
        if (T > 5) x5v = _mm512_maskz_loadu_ps(m, x5 + k16);
        GEMM_FMA_ROW(_mm512_fmadd_ps, 0, _mm512_maskz_loadu_ps(m, w0 + k16));
        GEMM_FMA_ROW(_mm512_fmadd_ps, 1, _mm512_maskz_loadu_ps(m, w1 + k16));
        GEMM_FMA_ROW(_mm512_fmadd_ps, 2, _mm512_maskz_loadu_ps(m, w2 + k16));
        GEMM_FMA_ROW(_mm512_fmadd_ps, 3, _mm512_maskz_loadu_ps(m, w3 + k16));
    }
#define GEMM_OUT512(t) _mm_storeu_ps(sums + 4 * t, hsum4_256(fold512(a0##t), fold512(a1##t), fold512(a2##t), fold512(a3##t)))
    GEMM_OUT512(0);
    if (T > 1) GEMM_OUT512(1);
    if (T > 2) GEMM_OUT512(2);
    if (T > 3) GEMM_OUT512(3);
    if (T > 4) GEMM_OUT512(4);
    if (T > 5) GEMM_OUT512(5);
#undef GEMM_OUT512
}

#define GEMM_AVX512_T(T)                                                                                   \
    __attribute__((target(AVX512_TARGET))) static void gemm_4x##T##_avx512(                               \
        const float *const *w, const float *const *x, int k, float *sums)                                  \
    {                                                                                                      \
        gemm_kernel_avx512(T, w, x, k, sums);                                                              \
    }
GEMM_AVX512_T(1)
GEMM_AVX512_T(2)
GEMM_AVX512_T(3)
GEMM_AVX512_T(4)
GEMM_AVX512_T(5)
GEMM_AVX512_T(6)

/* Kernels by token count; [0] unused. */
static const GemmKernel gemm_avx2[] = { NULL, gemm_4x1_avx2, gemm_4x2_avx2, gemm_4x3_avx2 };
static const GemmKernel gemm_avx512[] = { NULL,          gemm_4x1_avx512, gemm_4x2_avx512, gemm_4x3_avx512,
                                          gemm_4x4_avx512, gemm_4x5_avx512, gemm_4x6_avx512 };

/* dst[0..kl) = W[r, k0..k0+kl) as FP32, for F16/BF16 rows. */
__attribute__((target("avx2,fma,f16c"))) static void
gemm_convert_row(const HrMat *m, int r, int k0, int kl, float *dst)
{
    if (m->dtype == HR_DTYPE_F32) {
        memcpy(dst, (const float *)m->data + (size_t)r * (size_t)m->cols + k0, sizeof(float) * (size_t)kl);
        return;
    }
    const uint16_t *src = (const uint16_t *)m->data + (size_t)r * (size_t)m->cols + k0;
    int i = 0;
    for (; i + 8 <= kl; i += 8)
        _mm256_storeu_ps(dst + i, load8(src, m->dtype, i));
    for (; i < kl; i++)
        dst[i] = load1(src, m->dtype, i);
}

/* The scale s and s * zero (= -offset) of group gi of row r. */
static inline void
qmat_group(const HrQMat *m, size_t r, int gi, float *s, float *sz)
{
    const size_t i = r * (size_t)m->n_groups + (size_t)gi;
    switch (m->kind) {
    case HR_QMAT_OFFSET16:
        *s = hr_f16_to_f32(m->scale[i]);
        *sz = -hr_f16_to_f32(m->offset16[i]);
        return;
    case HR_QMAT_OFFSET32:
        *s = m->scale32[i];
        *sz = -m->offset32[i];
        return;
    case HR_QMAT_K4: {
        const size_t k = r * (size_t)(m->n_groups / 8) + (size_t)(gi / 8);
        *s = hr_f16_to_f32(m->kd[k]) * (float)m->ksc[i];
        *sz = hr_f16_to_f32(m->kdmin[k]) * (float)m->kmin[i];
        return;
    }
    case HR_QMAT_ZERO:
    default:
        *s = hr_f16_to_f32(m->scale[i]);
        *sz = *s * (float)m->zero[i];
        return;
    }
}

/* dst[0..kl) = dequantized W[r, k0..k0+kl); k0 is even. */
__attribute__((target("avx2,fma,f16c"))) static void
gemm_dequant_row(const HrQMat *m, int r, int k0, int kl, float *dst)
{
    const uint8_t *qr = m->q + (size_t)r * (size_t)(m->cols / 2);
    const int g = m->group;
    int i = 0, cur = -1;
    float s = 0.0f, sz = 0.0f;
    if (g % 8 == 0 && k0 % 8 == 0) {
        /* As in q4_row_avx2: 8 nibbles of one 32-bit word, in order. */
        const __m256i shifts = _mm256_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28);
        const __m256i mask = _mm256_set1_epi32(15);
        for (; i + 8 <= kl; i += 8) {
            int k = k0 + i, gi = k / g;
            if (gi != cur) {
                cur = gi;
                qmat_group(m, (size_t)r, gi, &s, &sz);
            }
            int32_t word;
            memcpy(&word, qr + k / 2, 4);
            __m256 q = _mm256_cvtepi32_ps(_mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32(word), shifts), mask));
            _mm256_storeu_ps(dst + i, _mm256_fmsub_ps(q, _mm256_set1_ps(s), _mm256_set1_ps(sz)));
        }
    }
    for (; i < kl; i++) {
        int k = k0 + i, gi = k / g;
        int q = (k & 1) ? qr[k / 2] >> 4 : qr[k / 2] & 15;
        qmat_group(m, (size_t)r, gi, &s, &sz);
        dst[i] = (float)q * s - sz;
    }
}

typedef struct {
    float *out;              /* [n, rows] */
    const HrMat *w;          /* dense weights, or NULL */
    const HrQMat *q;         /* 4-bit weights, or NULL */
    const float *bias, *x, *residual;
    int n, rows, cols;
    const GemmKernel *kernels;
    int tmax;
    bool split_tokens;       /* the pool's ranges are tokens, not rows */
} GemmJob;

static void
gemm_block(const GemmJob *j, int r0, int r1, int t0, int t1)
{
    const int rows = j->rows, cols = j->cols, tmax = j->tmax;
    /* K in equal tiles of at most GEMM_KC (multiples of 16 but the last). */
    const int kt = (cols + GEMM_KC - 1) / GEMM_KC;
    const int kc = ((cols + kt - 1) / kt + 15) & ~15;
    /* Weight rows are packed (converted to FP32, one K tile of a block of
     * mc rows contiguous) into a buffer: on the heap for many tokens, where
     * it pays for itself; for few (a prefill chunk) F32 rows are used in
     * place and others converted into a small buffer on the stack. */
    const bool small = j->n <= GEMM_SMALL_N;
    const bool direct = small && j->w && j->w->dtype == HR_DTYPE_F32;
    float stack_buf[GEMM_STACK_BUF] __attribute__((aligned(64)));
    float *wbuf = NULL;
    int mc = GEMM_MC;
    if (small && !direct) {
        mc = GEMM_STACK_BUF / kc & ~3;
        wbuf = stack_buf;
    } else if (!small) {
        if (mc > r1 - r0)
            mc = (r1 - r0 + 3) & ~3;
        wbuf = g_malloc(sizeof(float) * (size_t)mc * (size_t)kc);
    }
    for (int tc = t0; tc < t1; tc += GEMM_NC) {
        const int tc1 = tc + GEMM_NC < t1 ? tc + GEMM_NC : t1;
        for (int k0 = 0; k0 < cols; k0 += kc) {
            const int kl = cols - k0 < kc ? cols - k0 : kc;
            for (int rb = r0; rb < r1; rb += mc) {
                const int rb1 = rb + mc < r1 ? rb + mc : r1;
                if (!direct) {
                    for (int r = rb; r < rb1; r++) {
                        if (j->q)
                            gemm_dequant_row(j->q, r, k0, kl, wbuf + (size_t)(r - rb) * kc);
                        else
                            gemm_convert_row(j->w, r, k0, kl, wbuf + (size_t)(r - rb) * kc);
                    }
                }
                /* One micro-panel of tokens stays in L1 while the rows of the
                 * block stream past it from L2. Micro-panels of equal size:
                 * 8 tokens as 4 + 4, not 6 + 2. */
                const int groups = (tc1 - tc + tmax - 1) / tmax;
                for (int g = 0, t = tc, nt = 0; g < groups; g++, t += nt) {
                    nt = (tc1 - t) / (groups - g);
                    const float *xp[GEMM_TMAX];
                    for (int i = 0; i < nt; i++)
                        xp[i] = j->x + (size_t)(t + i) * (size_t)cols + k0;
                    for (int r = rb; r < rb1; r += 4) {
                        const int nr = rb1 - r < 4 ? rb1 - r : 4;
                        const float *wp[4];
                        for (int i = 0; i < 4; i++) {
                            /* Past the last row, repeat it (the sums are dropped). */
                            int ri = r + (i < nr ? i : nr - 1);
                            wp[i] = direct ? (const float *)j->w->data + (size_t)ri * (size_t)cols + k0
                                           : wbuf + (size_t)(ri - rb) * kc;
                        }
                        float sums[4 * GEMM_TMAX];
                        j->kernels[nt](wp, xp, kl, sums);
                        if (nr == 4) {
                            /* 4 rows of a token are 4 adjacent outputs. */
                            const __m128 b = j->bias ? _mm_loadu_ps(j->bias + r) : _mm_setzero_ps();
                            for (int i = 0; i < nt; i++) {
                                float *o = j->out + (size_t)(t + i) * (size_t)rows + r;
                                __m128 sm = _mm_loadu_ps(sums + 4 * i);
                                if (k0 != 0)
                                    _mm_storeu_ps(o, _mm_add_ps(_mm_loadu_ps(o), sm));
                                else if (j->residual)
                                    _mm_storeu_ps(o, _mm_add_ps(_mm_add_ps(_mm_loadu_ps(j->residual + (o - j->out)), b), sm));
                                else
                                    _mm_storeu_ps(o, _mm_add_ps(b, sm));
                            }
                            continue;
                        }
                        for (int i = 0; i < nt; i++) {
                            float *o = j->out + (size_t)(t + i) * (size_t)rows + r;
                            const float *sm = sums + 4 * i;
                            if (k0 == 0) {
                                const float *res =
                                    j->residual ? j->residual + (size_t)(t + i) * (size_t)rows + r : NULL;
                                for (int q = 0; q < nr; q++)
                                    o[q] = (res ? res[q] : 0.0f) + (j->bias ? j->bias[r + q] : 0.0f) + sm[q];
                            } else {
                                for (int q = 0; q < nr; q++)
                                    o[q] += sm[q];
                            }
                        }
                    }
                }
            }
        }
    }
    if (wbuf != stack_buf)
        g_free(wbuf);
}

static void
gemm_range(void *arg, int start, int end)
{
    const GemmJob *j = arg;
    if (j->split_tokens)
        gemm_block(j, 0, j->rows, start, end);
    else
        gemm_block(j, start, end, 0, j->n);
}

static void
gemm_run(HrThreadPool *pool, HrMatmulImpl impl, float *out, const HrMat *w, const HrQMat *q, const float *bias,
         const float *x, int n, const float *residual)
{
    GemmJob job = {
        .out = out, .w = w, .q = q, .bias = bias, .x = x, .residual = residual, .n = n,
        .rows = w ? w->rows : q->rows, .cols = w ? w->cols : q->cols,
        .kernels = impl == HR_MATMUL_GEMM_AVX512 ? gemm_avx512 : gemm_avx2,
        .tmax = impl == HR_MATMUL_GEMM_AVX512 ? 6 : 3,
    };
    /* Rows across threads while each gets a good share of them; else
     * tokens (few rows, e.g. k/v projections, against many tokens). */
    int threads = hr_pool_size(pool);
    job.split_tokens = threads > 1 && job.rows < 64 * threads && n >= 2 * GEMM_TOKEN_SPLIT;
    if (job.split_tokens)
        hr_pool_run(pool, gemm_range, &job, n, 6);
    else
        hr_pool_run(pool, gemm_range, &job, job.rows, 16);
}
#endif

/* ---- decode with int8 activations (Q8) ------------------------------------------
 * A decode step is bound by reading the weights, but converting 4-bit
 * weights to FP32 costs more instructions than the memory system leaves
 * time for on a few cores. So, as llama.cpp does for its Q8 activations,
 * each activation row is quantized once per matmul to int8 in blocks of 32
 * (d = max|x| / 127, x ~ d * xq) and the 4-bit x int8 products are summed
 * in integers: VPDPBUSD (AVX-512 VNNI: unsigned nibble x signed byte, four
 * per 32-bit lane) or VPMADDUBSW + VPMADDWD (AVX2). Per 128 inputs that is
 * one 64-byte load, a shift, two ANDs and two dot instructions, then one
 * FP32 scale per lane. The zero point uses the quantized x too:
 *   W[r,:].x ~ sum_g s_g * sum_b d_b * sum_{k in b} q_k xq_k - (s z)_g * X_g,
 *   X_g = sum_{b in g} d_b * sum_{k in b} xq_k,
 * so the rounding error enters as (q - z) * (d xq - x), centred on zero.
 *
 * Layout of xq, chosen so that the nibbles of 64 packed bytes need no
 * shuffle: per chunk of 128 inputs at c, bytes [c, c+64) hold xq at the even
 * inputs c, c+2, .., and [c+64, c+128) the odd ones (the low and high
 * nibbles of the weight bytes); a last chunk of 64 holds 32 even then 32
 * odd. A 32-bit lane of either dot then covers inputs [c + 8i, c + 8i + 8),
 * so its scale is dl[(c + 8i) / 8], the block scale repeated per 8 inputs.
 * The lanes' group scales s follow from the same mapping (group 32, 64 or a
 * multiple of 128). HEARTH_CPU_EXACT=1 keeps FP32 activations. */
typedef struct {
    int8_t *xq;  /* [cols], the layout above */
    float *dl;   /* [cols / 8] */
    float *gsum; /* [n_groups]: X_g */
} Q8Act;

static bool
q8_shape_ok(const HrQMat *w)
{
    return w->cols > 0 && w->cols % 64 == 0 && (w->group % 128 == 0 || w->group == 64 || w->group == 32);
}

static inline int
q8_pos(int k, int cols)
{
    int c = k & ~127, half = c + 128 <= cols ? 64 : 32;
    return c + (k & 1) * half + ((k - c) >> 1);
}

bool
hr_cpu_exact(void)
{
    static int cached = -1;
    if (cached < 0)
        cached = g_getenv("HEARTH_CPU_EXACT") && *g_getenv("HEARTH_CPU_EXACT") && strcmp(g_getenv("HEARTH_CPU_EXACT"), "0");
    return cached;
}

#if defined(__x86_64__) && defined(__GNUC__)
static bool
have_avx512vnni(void)
{
    static int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init();
        cached = have_avx512() && __builtin_cpu_supports("avx512vnni");
    }
    return cached;
}

/* One block of 32 activations at x to int8 in input order (*d its scale,
 * *sum the sum of the int8 values). */
__attribute__((target("avx2,fma,f16c"))) static inline __m256i
q8_block(const float *x, float *d_out, int *sum)
{
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    __m256 v[4], m = _mm256_setzero_ps();
    for (int i = 0; i < 4; i++) {
        v[i] = _mm256_loadu_ps(x + 8 * i);
        m = _mm256_max_ps(m, _mm256_and_ps(v[i], absmask));
    }
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    const float amax = _mm_cvtss_f32(m4);
    const float id = amax > 0.0f ? 127.0f / amax : 0.0f;
    *d_out = amax / 127.0f;
    __m256i q[4]; /* rounded to nearest even, |q| <= 127 */
    for (int i = 0; i < 4; i++)
        q[i] = _mm256_cvtps_epi32(_mm256_mul_ps(v[i], _mm256_set1_ps(id)));
    __m256i qs = _mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3]));
    __m128i qs4 = _mm_add_epi32(_mm256_castsi256_si128(qs), _mm256_extracti128_si256(qs, 1));
    qs4 = _mm_add_epi32(qs4, _mm_shuffle_epi32(qs4, 0x4e));
    qs4 = _mm_add_epi32(qs4, _mm_shuffle_epi32(qs4, 0xb1));
    *sum = _mm_cvtsi128_si32(qs4);
    /* the packs work per 128-bit lane; the permute restores input order */
    __m256i b8 = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
    return _mm256_permutevar8x32_epi32(b8, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

__attribute__((target("avx2,fma,f16c"))) static void
q8_quantize(const float *x, int cols, int group, Q8Act *a)
{
    const int ng = cols / group;
    for (int g = 0; g < ng; g++)
        a->gsum[g] = 0.0f;
    for (int b = 0; b < cols; b += 32) {
        float d;
        int s;
        __m256i b8 = q8_block(x + b, &d, &s);
        /* evens and odds apart */
        b8 = _mm256_shuffle_epi8(b8, _mm256_setr_epi8(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15, 0, 2, 4, 6,
                                                      8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15));
        b8 = _mm256_permute4x64_epi64(b8, 0xd8); /* evens of both lanes, then odds */
        _mm_storeu_si128((__m128i *)(a->xq + q8_pos(b, cols)), _mm256_castsi256_si128(b8));
        _mm_storeu_si128((__m128i *)(a->xq + q8_pos(b + 1, cols)), _mm256_extracti128_si256(b8, 1));
        for (int i = 0; i < 4; i++)
            a->dl[b / 8 + i] = d;
        a->gsum[b / group] += d * (float)s;
    }
}

/* sum_g sz[g] * gsum[g] */
__attribute__((target("avx2,fma,f16c"))) static inline float
q8_zero_term(const float *sz, const float *gsum, int ng)
{
    __m256 acc = _mm256_setzero_ps();
    int g = 0;
    for (; g + 8 <= ng; g += 8)
        acc = _mm256_fmadd_ps(_mm256_loadu_ps(sz + g), _mm256_loadu_ps(gsum + g), acc);
    float r = hsum256(acc);
    for (; g < ng; g++)
        r += sz[g] * gsum[g];
    return r;
}

/* The scale vector of the 8 lanes of a 64-input piece at k0. */
__attribute__((target("avx2,fma,f16c"))) static inline __m256
q8_scales8(const float *sc, int k0, int g)
{
    if (g != 32)
        return _mm256_set1_ps(sc[k0 / g]);
    return _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_set1_ps(sc[k0 / 32])), _mm_set1_ps(sc[k0 / 32 + 1]), 1);
}

/* Integer dot of 64 inputs: 32 packed bytes against their even and odd xq. */
__attribute__((target("avx2,fma,f16c"))) static inline __m256
q8_dot64_avx2(const uint8_t *qb, const int8_t *xe, const int8_t *xo, const float *dl)
{
    const __m256i m = _mm256_set1_epi8(15);
    __m256i v = _mm256_loadu_si256((const __m256i *)qb);
    __m256i lo = _mm256_and_si256(v, m), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m);
    /* each 16-bit sum is at most 2 * 2 * 15 * 127: no saturation */
    __m256i p = _mm256_add_epi16(_mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i *)xe)),
                                 _mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i *)xo)));
    p = _mm256_madd_epi16(p, _mm256_set1_epi16(1));
    return _mm256_mul_ps(_mm256_cvtepi32_ps(p), _mm256_loadu_ps(dl));
}

__attribute__((target("avx2,fma,f16c"))) static float
q8_row_avx2(const uint8_t *qr, const float *sc, const float *sz, const Q8Act *a, int cols, int g, int ng)
{
    __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0;
    const int c128 = cols & ~127;
    for (int c = 0; c < c128; c += 128) {
        _mm_prefetch((const char *)(qr + c / 2 + HR_PREFETCH_AHEAD), _MM_HINT_T0);
        acc0 = _mm256_fmadd_ps(q8_dot64_avx2(qr + c / 2, a->xq + c, a->xq + c + 64, a->dl + c / 8),
                               q8_scales8(sc, c, g), acc0);
        acc1 = _mm256_fmadd_ps(q8_dot64_avx2(qr + c / 2 + 32, a->xq + c + 32, a->xq + c + 96, a->dl + c / 8 + 8),
                               q8_scales8(sc, c + 64, g), acc1);
    }
    if (c128 < cols)
        acc0 = _mm256_fmadd_ps(q8_dot64_avx2(qr + c128 / 2, a->xq + c128, a->xq + c128 + 32, a->dl + c128 / 8),
                               q8_scales8(sc, c128, g), acc0);
    return hsum256(_mm256_add_ps(acc0, acc1)) - q8_zero_term(sz, a->gsum, ng);
}

#define Q8_AVX512_TARGET "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c"

/* The scale vector of the 16 lanes of a 128-input chunk at c. */
__attribute__((target(Q8_AVX512_TARGET))) static inline __m512
q8_scales16(const float *sc, int c, int g)
{
    if (g == 64)
        return _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_set1_ps(sc[c / 64])), _mm256_set1_ps(sc[c / 64 + 1]), 1);
    if (g == 32)
        return _mm512_permutexvar_ps(_mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3),
                                     _mm512_castps128_ps512(_mm_loadu_ps(sc + c / 32)));
    return _mm512_set1_ps(sc[c / g]);
}

__attribute__((target(Q8_AVX512_TARGET))) static inline __m512
q8_dot128_avx512(const uint8_t *qb, const int8_t *x, const float *dl)
{
    const __m512i m = _mm512_set1_epi8(15);
    __m512i v = _mm512_loadu_si512(qb);
    __m512i lo = _mm512_and_si512(v, m), hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), m);
    __m512i s = _mm512_dpbusd_epi32(_mm512_setzero_si512(), lo, _mm512_loadu_si512(x));
    s = _mm512_dpbusd_epi32(s, hi, _mm512_loadu_si512(x + 64));
    return _mm512_mul_ps(_mm512_cvtepi32_ps(s), _mm512_loadu_ps(dl));
}

/* A row's last 64 inputs at c128 (cols % 128 == 64), 256 bits wide. */
__attribute__((target(Q8_AVX512_TARGET))) static inline float
q8_tail64_avx512(const uint8_t *qr, const float *sc, const Q8Act *a, int c128, int g)
{
    const __m256i m = _mm256_set1_epi8(15);
    __m256i v = _mm256_loadu_si256((const __m256i *)(qr + c128 / 2));
    __m256i lo = _mm256_and_si256(v, m), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m);
    __m256i s = _mm256_dpbusd_epi32(_mm256_setzero_si256(), lo, _mm256_loadu_si256((const __m256i *)(a->xq + c128)));
    s = _mm256_dpbusd_epi32(s, hi, _mm256_loadu_si256((const __m256i *)(a->xq + c128 + 32)));
    __m256 f = _mm256_mul_ps(_mm256_cvtepi32_ps(s), _mm256_loadu_ps(a->dl + c128 / 8));
    return hsum256(_mm256_mul_ps(f, q8_scales8(sc, c128, g)));
}

__attribute__((target(Q8_AVX512_TARGET))) static float
q8_row_avx512(const uint8_t *qr, const float *sc, const float *sz, const Q8Act *a, int cols, int g, int ng)
{
    __m512 acc0 = _mm512_setzero_ps(), acc1 = acc0;
    const int c128 = cols & ~127;
    int c = 0;
    for (; c + 256 <= c128; c += 256) {
        _mm_prefetch((const char *)(qr + c / 2 + HR_PREFETCH_AHEAD), _MM_HINT_T0);
        _mm_prefetch((const char *)(qr + c / 2 + HR_PREFETCH_AHEAD + 64), _MM_HINT_T0);
        acc0 = _mm512_fmadd_ps(q8_dot128_avx512(qr + c / 2, a->xq + c, a->dl + c / 8), q8_scales16(sc, c, g), acc0);
        acc1 = _mm512_fmadd_ps(q8_dot128_avx512(qr + c / 2 + 64, a->xq + c + 128, a->dl + c / 8 + 16),
                               q8_scales16(sc, c + 128, g), acc1);
    }
    if (c < c128)
        acc0 = _mm512_fmadd_ps(q8_dot128_avx512(qr + c / 2, a->xq + c, a->dl + c / 8), q8_scales16(sc, c, g), acc0);
    float r = _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
    if (c128 < cols)
        r += q8_tail64_avx512(qr, sc, a, c128, g);
    return r - q8_zero_term(sz, a->gsum, ng);
}

/* Four rows of one token's decode at once: the activations and their lane
 * scales are loaded once for the four rows, and the four sums are reduced
 * together (a transpose of adds) instead of one horizontal reduction each:
 * on narrow rows (SmolLM2's 576 inputs: four 128-input chunks and a tail)
 * the per-row reductions and zero terms cost as much as the products.
 * Row i's weights at q + i * qs, its scales at sc + i * ng, scale * zero at
 * sz + i * ng. Same sums as q8_row_avx512, in a different order. */
__attribute__((target(Q8_AVX512_TARGET))) static void
q8_rows4_avx512(const uint8_t *q, size_t qs, const float *sc, const float *sz, const Q8Act *a, int cols, int g,
                int ng, float out[4])
{
    const __m512i m = _mm512_set1_epi8(15);
    __m512 acc[4] = { _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps() };
    const int c128 = cols & ~127;
    for (int c = 0; c < c128; c += 128) {
        const __m512i xl = _mm512_loadu_si512(a->xq + c), xh = _mm512_loadu_si512(a->xq + c + 64);
        const __m512 dl = _mm512_loadu_ps(a->dl + c / 8);
#pragma GCC unroll 4
        for (int i = 0; i < 4; i++) {
            const uint8_t *qb = q + (size_t)i * qs + (size_t)(c / 2);
            _mm_prefetch((const char *)(qb + HR_PREFETCH_AHEAD), _MM_HINT_T0);
            const __m512i v = _mm512_loadu_si512(qb);
            const __m512i lo = _mm512_and_si512(v, m), hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), m);
            const __m512i is = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), lo, xl), hi, xh);
            acc[i] = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(is), dl), q8_scales16(sc + (size_t)i * ng, c, g),
                                     acc[i]);
        }
    }
    /* the four 16-lane sums as one vector of 4 */
    const __m512 t0 = _mm512_add_ps(_mm512_unpacklo_ps(acc[0], acc[1]), _mm512_unpackhi_ps(acc[0], acc[1]));
    const __m512 t1 = _mm512_add_ps(_mm512_unpacklo_ps(acc[2], acc[3]), _mm512_unpackhi_ps(acc[2], acc[3]));
    const __m512 u = _mm512_add_ps(_mm512_shuffle_ps(t0, t1, 0x44), _mm512_shuffle_ps(t0, t1, 0xEE));
    const __m256 h = _mm256_add_ps(_mm512_castps512_ps256(u), _mm512_extractf32x8_ps(u, 1));
    _mm_storeu_ps(out, _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1)));
    for (int i = 0; i < 4; i++) {
        if (c128 < cols)
            out[i] += q8_tail64_avx512(q + (size_t)i * qs, sc + (size_t)i * ng, a, c128, g);
        out[i] -= q8_zero_term(sz + (size_t)i * ng, a->gsum, ng);
    }
}

/* Prefill: 4 weight rows x 4 tokens per 128-input chunk. The unpacked
 * nibbles of the 4 rows are reused by the 4 tokens and each token's xq by
 * the 4 rows; per (row, token) pair and chunk: two VPDPBUSD, a conversion,
 * the lane scales and one FMA (cols % 128 == 0). */
static inline __attribute__((always_inline, target(Q8_AVX512_TARGET))) void
q8_tile4x4_body(const HrQMat *w, int r, const float *sb, const Q8Act *act, float out[4][4], const bool g128)
{
    const int cols = w->cols, g = w->group, ng = w->n_groups;
    const size_t qs = (size_t)(cols / 2);
    const __m512i m = _mm512_set1_epi8(15);
    const uint8_t *q = w->q + (size_t)r * qs;
    const float *sc = sb; /* row i: scales at ng * i, scale * zero at ng * (4 + i) */
    __m512 acc[4][4];
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++)
            acc[i][j] = _mm512_setzero_ps();
    const int8_t *const x0 = act[0].xq, *const x1 = act[1].xq, *const x2 = act[2].xq, *const x3 = act[3].xq;
    const float *const d0 = act[0].dl, *const d1 = act[1].dl, *const d2 = act[2].dl, *const d3 = act[3].dl;
    for (int c = 0; c < cols; c += 128) {
        __m512i lo[4], hi[4];
#pragma GCC unroll 4
        for (int i = 0; i < 4; i++) {
            __m512i v = _mm512_loadu_si512(q + (size_t)i * qs + (size_t)(c / 2));
            lo[i] = _mm512_and_si512(v, m);
            hi[i] = _mm512_and_si512(_mm512_srli_epi16(v, 4), m);
        }
        const int gi = c / g;
#pragma GCC unroll 4
        for (int j = 0; j < 4; j++) {
            const int8_t *xj = j == 0 ? x0 : j == 1 ? x1 : j == 2 ? x2 : x3;
            const float *dj = j == 0 ? d0 : j == 1 ? d1 : j == 2 ? d2 : d3;
            const __m512i xl = _mm512_loadu_si512(xj + c), xh = _mm512_loadu_si512(xj + c + 64);
            const __m512 dl = _mm512_loadu_ps(dj + c / 8);
#pragma GCC unroll 4
            for (int i = 0; i < 4; i++) {
                __m512i is = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), lo[i], xl), hi[i], xh);
                /* g % 128 == 0: one scale per chunk, a broadcast operand */
                const __m512 sv = g128 ? _mm512_set1_ps(sc[(size_t)i * ng + gi]) : q8_scales16(sc + (size_t)i * ng, c, g);
                acc[i][j] = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(is), dl), sv, acc[i][j]);
            }
        }
    }
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++)
            out[i][j] = _mm512_reduce_add_ps(acc[i][j]) - q8_zero_term(sb + (size_t)(4 + i) * ng, act[j].gsum, ng);
}

__attribute__((target(Q8_AVX512_TARGET))) static void
q8_tile4x4_avx512(const HrQMat *w, int r, const float *sb, const Q8Act *act, float out[4][4])
{
    if (w->group % 128 == 0)
        q8_tile4x4_body(w, r, sb, act, out, true);
    else
        q8_tile4x4_body(w, r, sb, act, out, false);
}
#endif

bool
hr_matmul_impl_available(HrMatmulImpl impl)
{
    switch (impl) {
    case HR_MATMUL_AUTO:
    case HR_MATMUL_SCALAR:
        return true;
#if defined(__x86_64__) && defined(__GNUC__)
    case HR_MATMUL_ROWS_AVX2:
    case HR_MATMUL_GEMM_AVX2:
        return have_avx2();
    case HR_MATMUL_GEMM_AVX512:
        return have_avx512();
    case HR_MATMUL_Q8_AVX2:
        return have_avx2();
    case HR_MATMUL_Q8_AVX512:
        return have_avx512vnni();
#endif
    default:
        return false;
    }
}

const char *
hr_matmul_impl_name(HrMatmulImpl impl)
{
    static const char *const names[] = { "auto", "scalar", "rows-avx2", "gemm-avx2", "gemm-avx512", "q8-avx2",
                                         "q8-avx512vnni" };
    G_STATIC_ASSERT(G_N_ELEMENTS(names) == HR_MATMUL_IMPL_COUNT);
    return (unsigned)impl < G_N_ELEMENTS(names) ? names[impl] : NULL;
}

/* The int8-activation implementation to run for n tokens of w, or AUTO for
 * none: AUTO picks it for decode (n < GEMM_MIN_N) unless HEARTH_CPU_EXACT
 * is set; forcing one runs it where the CPU and the shape allow. */
static HrMatmulImpl
q8_impl(HrMatmulImpl impl, const HrQMat *w, int n)
{
    if (!q8_shape_ok(w))
        return HR_MATMUL_AUTO;
    if (n >= GEMM_MIN_N) {
        /* prefill: the 4x4 VNNI tiles where the CPU has them, else the FP32 GEMM */
        if (w->cols % 128 != 0 || !hr_matmul_impl_available(HR_MATMUL_Q8_AVX512) ||
            (impl == HR_MATMUL_AUTO && hr_cpu_exact()) || (impl != HR_MATMUL_AUTO && impl != HR_MATMUL_Q8_AVX512))
            return HR_MATMUL_AUTO;
        return HR_MATMUL_Q8_AVX512;
    }
    if (impl == HR_MATMUL_AUTO) {
        if (hr_cpu_exact())
            return HR_MATMUL_AUTO;
        impl = hr_matmul_impl_available(HR_MATMUL_Q8_AVX512) ? HR_MATMUL_Q8_AVX512 : HR_MATMUL_Q8_AVX2;
    }
    if ((impl == HR_MATMUL_Q8_AVX2 || impl == HR_MATMUL_Q8_AVX512) && hr_matmul_impl_available(impl))
        return impl;
    return HR_MATMUL_AUTO;
}

/* The implementation to run for n tokens. */
static HrMatmulImpl
resolve_impl(HrMatmulImpl impl, int n)
{
    if (impl == HR_MATMUL_Q8_AVX2 || impl == HR_MATMUL_Q8_AVX512) /* where int8 does not apply */
        impl = HR_MATMUL_ROWS_AVX2;
    if (impl != HR_MATMUL_AUTO)
        return hr_matmul_impl_available(impl) ? impl : HR_MATMUL_SCALAR;
    if (!hr_matmul_impl_available(HR_MATMUL_ROWS_AVX2))
        return HR_MATMUL_SCALAR;
    if (n < GEMM_MIN_N)
        return HR_MATMUL_ROWS_AVX2;
    return hr_matmul_impl_available(HR_MATMUL_GEMM_AVX512) ? HR_MATMUL_GEMM_AVX512 : HR_MATMUL_GEMM_AVX2;
}

void
hr_matmul_impl(HrMatmulImpl impl, HrThreadPool *pool, float *out, const HrMat *w, const float *bias,
               const float *x, int n, const float *residual)
{
    if (n <= 0 || w->rows <= 0)
        return;
    impl = resolve_impl(impl, n);
    if (w->cols <= 0 && impl != HR_MATMUL_SCALAR)
        impl = HR_MATMUL_ROWS_AVX2; /* out = residual + bias */
    /* Small matrices are not worth waking the workers for. */
    if ((size_t)w->rows * (size_t)w->cols * (size_t)n < 32768)
        pool = NULL;
#if defined(__x86_64__) && defined(__GNUC__)
    if (impl == HR_MATMUL_GEMM_AVX2 || impl == HR_MATMUL_GEMM_AVX512) {
        gemm_run(pool, impl, out, w, NULL, bias, x, n, residual);
        return;
    }
#endif
    MatmulJob job = { out, w, bias, x, residual, n, row_dot_scalar };
#if defined(__x86_64__) && defined(__GNUC__)
    if (impl == HR_MATMUL_ROWS_AVX2)
        job.row_dot = n == 1 && have_avx512() ? row_dot1_avx512 : row_dot_avx2;
#endif
    hr_pool_run(pool, matmul_rows, &job, w->rows, 16);
}

void
hr_matmul(HrThreadPool *pool, float *out, const HrMat *w, const float *bias, const float *x, int n,
          const float *residual)
{
    hr_matmul_impl(HR_MATMUL_AUTO, pool, out, w, bias, x, n, residual);
}

/* ---- 4-bit group-quantized matrices (AWQ) ------------------------------------ */

static size_t
qmat_group_bytes(HrQMatKind kind)
{
    return kind == HR_QMAT_OFFSET32 ? 2 * sizeof(float) : kind == HR_QMAT_OFFSET16 ? 2 * sizeof(uint16_t)
                                                      : kind == HR_QMAT_K4         ? 2
                                                                                   : sizeof(uint16_t) + 1;
}

size_t
hr_qmat_bytes(const HrQMat *m)
{
    const size_t groups = (size_t)m->rows * (size_t)m->n_groups;
    return (size_t)m->rows * (size_t)(m->cols / 2) + qmat_group_bytes(m->kind) * groups +
           (m->kind == HR_QMAT_K4 ? 2 * sizeof(uint16_t) * (groups / 8) : 0);
}

void
hr_qmat_alloc(HrQMat *m)
{
    const size_t n = (size_t)m->rows * (size_t)m->n_groups;
    m->q = hr_weights_alloc((size_t)m->rows * (size_t)(m->cols / 2));
    switch (m->kind) {
    case HR_QMAT_OFFSET32:
        m->scale32 = hr_weights_alloc(sizeof(float) * n);
        m->offset32 = hr_weights_alloc(sizeof(float) * n);
        break;
    case HR_QMAT_OFFSET16:
        m->scale = hr_weights_alloc(sizeof(uint16_t) * n);
        m->offset16 = hr_weights_alloc(sizeof(uint16_t) * n);
        break;
    case HR_QMAT_K4:
        m->ksc = hr_weights_alloc(n);
        m->kmin = hr_weights_alloc(n);
        m->kd = hr_weights_alloc(sizeof(uint16_t) * (n / 8));
        m->kdmin = hr_weights_alloc(sizeof(uint16_t) * (n / 8));
        break;
    case HR_QMAT_ZERO:
    default:
        m->scale = hr_weights_alloc(sizeof(uint16_t) * n);
        m->zero = hr_weights_alloc(n);
        break;
    }
}

void
hr_qmat_free(HrQMat *m)
{
    if (!m)
        return;
    g_free(m->q);
    g_free(m->scale);
    g_free(m->zero);
    g_free(m->offset16);
    g_free(m->scale32);
    g_free(m->offset32);
    g_free(m->ksc);
    g_free(m->kmin);
    g_free(m->kd);
    g_free(m->kdmin);
    memset(m, 0, sizeof *m);
}

#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("avx2,fma,f16c"))) static int
row_scales_avx2(const uint16_t *s, const uint8_t *z, int ng, float *sc, float *sz)
{
    int g = 0;
    for (; g + 8 <= ng; g += 8) {
        __m256 v = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(s + g)));
        __m256 zv = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(z + g))));
        _mm256_storeu_ps(sc + g, v);
        _mm256_storeu_ps(sz + g, _mm256_mul_ps(v, zv));
    }
    return g;
}

/* K4: one super-block (8 groups) per step: s = d * sc, sz = dmin * m. */
__attribute__((target("avx2,fma,f16c"))) static void
row_scales_k4_avx2(const HrQMat *m, size_t base, size_t kb, int n_blocks, float *sc, float *sz)
{
    for (int b = 0; b < n_blocks; b++) {
        const __m256 d = _mm256_set1_ps(hr_f16_to_f32(m->kd[kb + (size_t)b]));
        const __m256 dmin = _mm256_set1_ps(hr_f16_to_f32(m->kdmin[kb + (size_t)b]));
        const size_t g = base + 8 * (size_t)b;
        const __m256 s6 = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(m->ksc + g))));
        const __m256 m6 = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(m->kmin + g))));
        _mm256_storeu_ps(sc + 8 * b, _mm256_mul_ps(d, s6));
        _mm256_storeu_ps(sz + 8 * b, _mm256_mul_ps(dmin, m6));
    }
}

/* OFFSET16: FP16 scales and offsets, 8 groups per step (sz = -offset). */
__attribute__((target("avx2,fma,f16c"))) static int
row_scales_off16_avx2(const uint16_t *s, const uint16_t *o, int ng, float *sc, float *sz)
{
    const __m256 sign = _mm256_set1_ps(-0.0f);
    int g = 0;
    for (; g + 8 <= ng; g += 8) {
        _mm256_storeu_ps(sc + g, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(s + g))));
        _mm256_storeu_ps(sz + g, _mm256_xor_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(o + g))), sign));
    }
    return g;
}
#endif

void
hr_qmat_rows_scales(const HrQMat *m, int r, int n_rows, float *sc, float *sz)
{
    /* Rows are stored one after another: n rows are one flat run of
     * n * n_groups values (and of n * n_groups / 8 K4 super-blocks). */
    const size_t base = (size_t)r * (size_t)m->n_groups;
    const int cnt = n_rows * m->n_groups;
    if (m->kind == HR_QMAT_K4) {
        /* as ggml: d1 = d * sc, m1 = dmin * m, per group of 32 */
        const size_t kb = (size_t)r * (size_t)(m->n_groups / 8);
#if defined(__x86_64__) && defined(__GNUC__)
        if (have_avx2()) {
            row_scales_k4_avx2(m, base, kb, cnt / 8, sc, sz);
            return;
        }
#endif
        for (int b = 0; b < cnt / 8; b++) {
            const float d = hr_f16_to_f32(m->kd[kb + (size_t)b]), dmin = hr_f16_to_f32(m->kdmin[kb + (size_t)b]);
            for (int g = 8 * b; g < 8 * b + 8; g++) {
                sc[g] = d * (float)m->ksc[base + (size_t)g];
                sz[g] = dmin * (float)m->kmin[base + (size_t)g];
            }
        }
        return;
    }
    if (m->kind == HR_QMAT_OFFSET32) {
        memcpy(sc, m->scale32 + base, sizeof(float) * (size_t)cnt);
        for (int g = 0; g < cnt; g++)
            sz[g] = -m->offset32[base + (size_t)g];
        return;
    }
    if (m->kind == HR_QMAT_OFFSET16) {
        int g0 = 0;
#if defined(__x86_64__) && defined(__GNUC__)
        if (have_avx2())
            g0 = row_scales_off16_avx2(m->scale + base, m->offset16 + base, cnt, sc, sz);
#endif
        for (int g = g0; g < cnt; g++) {
            sc[g] = hr_f16_to_f32(m->scale[base + (size_t)g]);
            sz[g] = -hr_f16_to_f32(m->offset16[base + (size_t)g]);
        }
        return;
    }
    const uint16_t *s = m->scale + base;
    const uint8_t *z = m->zero + base;
    int g0 = 0;
#if defined(__x86_64__) && defined(__GNUC__)
    if (have_avx2())
        g0 = row_scales_avx2(s, z, cnt, sc, sz);
#endif
    for (int g = g0; g < cnt; g++) {
        sc[g] = hr_f16_to_f32(s[g]);
        sz[g] = sc[g] * (float)z[g];
    }
}

void
hr_qmat_row_scales(const HrQMat *m, int r, float *sc, float *sz)
{
    hr_qmat_rows_scales(m, r, 1, sc, sz);
}

void
hr_qmat_row_f32(const HrQMat *m, int r, float *dst)
{
    const uint8_t *qr = m->q + (size_t)r * (size_t)(m->cols / 2);
    for (int k = 0; k < m->cols; k++) {
        int q = (k & 1) ? qr[k / 2] >> 4 : qr[k / 2] & 15;
        const size_t gi = (size_t)r * (size_t)m->n_groups + (size_t)(k / m->group);
        switch (m->kind) {
        case HR_QMAT_OFFSET16:
            dst[k] = hr_f16_to_f32(m->scale[gi]) * (float)q + hr_f16_to_f32(m->offset16[gi]);
            break;
        case HR_QMAT_OFFSET32:
            dst[k] = m->scale32[gi] * (float)q + m->offset32[gi];
            break;
        case HR_QMAT_K4: {
            float s, sz;
            qmat_group(m, (size_t)r, k / m->group, &s, &sz);
            dst[k] = s * (float)q - sz; /* ggml: d1 * q - m1 */
            break;
        }
        case HR_QMAT_ZERO:
        default:
            dst[k] = hr_f16_to_f32(m->scale[gi]) * (float)(q - (int)m->zero[gi]);
            break;
        }
    }
}

/* sum over one group of q[k] * x[k]; qb holds group/2 bytes. */
static inline float
q4_dot_scalar(const uint8_t *qb, const float *x, int len)
{
    float s = 0.0f;
    for (int i = 0; i < len / 2; i++) {
        s += (float)(qb[i] & 15) * x[2 * i];
        s += (float)(qb[i] >> 4) * x[2 * i + 1];
    }
    return s;
}

#if defined(__x86_64__) && defined(__GNUC__)
/* One output row against nt <= 4 activation rows; each decoded weight load
 * is shared by the rows, and the per-group scale is applied to vector
 * partial sums, so there is one horizontal sum per row and token:
 * r[t] = sum_g (s_g * sum_k q*x[t] - (s*z)_g * xsum[t][g]). */
__attribute__((target("avx2,fma,f16c"))) static void
q4_row_avx2(const uint8_t *qr, const float *sc, const float *sz, const float *x, size_t x_stride, int nt,
            const float *xsum, int ng, int g, float *r)
{
    __m256 acc[4] = { _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps() };
    float zsum[4] = { 0 };
    /* Nibble i of the little-endian uint32 at byte 4j is input 8j + i, so a
     * broadcast word shifted by 0,4,..,28 per lane gives 8 inputs in order
     * with no shuffles. */
    const __m256i shifts = _mm256_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28);
    const __m256i mask = _mm256_set1_epi32(15);
    for (int gi = 0; gi < ng; gi++) {
        __m256 part[4] = { _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps() };
        const uint8_t *qb = qr + (size_t)gi * (size_t)(g / 2);
        const float *xg = x + (size_t)gi * (size_t)g;
        for (int i = 0; i < g; i += 16) {
            int32_t w0, w1;
            memcpy(&w0, qb + i / 2, 4);
            memcpy(&w1, qb + i / 2 + 4, 4);
            __m256 q0 = _mm256_cvtepi32_ps(_mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32(w0), shifts), mask));
            __m256 q1 = _mm256_cvtepi32_ps(_mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32(w1), shifts), mask));
            for (int t = 0; t < nt; t++) {
                const float *xt = xg + (size_t)t * x_stride + i;
                part[t] = _mm256_fmadd_ps(q0, _mm256_loadu_ps(xt), part[t]);
                part[t] = _mm256_fmadd_ps(q1, _mm256_loadu_ps(xt + 8), part[t]);
            }
        }
        __m256 s = _mm256_set1_ps(sc[gi]);
        for (int t = 0; t < nt; t++) {
            acc[t] = _mm256_fmadd_ps(s, part[t], acc[t]);
            zsum[t] += sz[gi] * xsum[(size_t)t * ng + gi];
        }
    }
    for (int t = 0; t < nt; t++)
        r[t] = hsum256(acc[t]) - zsum[t];
}
#endif

/* Decode (one activation row): the same sum with four independent
 * accumulator chains per group (32 inputs per step), so the FMAs are not
 * serialised on their latency and the loop can keep up with memory. */
__attribute__((target("avx2,fma,f16c"))) static float
q4_row1_avx2(const uint8_t *qr, const float *sc, const float *sz, const float *x, const float *xsum, int ng, int g)
{
    const __m256i shifts = _mm256_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28);
    const __m256i mask = _mm256_set1_epi32(15);
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    float zsum = 0.0f;
    for (int gi = 0; gi < ng; gi++) {
        __m256 p0 = _mm256_setzero_ps(), p1 = p0, p2 = p0, p3 = p0;
        const uint8_t *qb = qr + (size_t)gi * (size_t)(g / 2);
        const float *xg = x + (size_t)gi * (size_t)g;
        for (int i = 0; i < g; i += 32) {
            int32_t w[4];
            memcpy(w, qb + i / 2, 16);
            __m256 q0 = _mm256_cvtepi32_ps(_mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32(w[0]), shifts), mask));
            __m256 q1 = _mm256_cvtepi32_ps(_mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32(w[1]), shifts), mask));
            __m256 q2 = _mm256_cvtepi32_ps(_mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32(w[2]), shifts), mask));
            __m256 q3 = _mm256_cvtepi32_ps(_mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32(w[3]), shifts), mask));
            p0 = _mm256_fmadd_ps(q0, _mm256_loadu_ps(xg + i), p0);
            p1 = _mm256_fmadd_ps(q1, _mm256_loadu_ps(xg + i + 8), p1);
            p2 = _mm256_fmadd_ps(q2, _mm256_loadu_ps(xg + i + 16), p2);
            p3 = _mm256_fmadd_ps(q3, _mm256_loadu_ps(xg + i + 24), p3);
        }
        __m256 s = _mm256_set1_ps(sc[gi]);
        if (gi & 1)
            acc1 = _mm256_fmadd_ps(s, _mm256_add_ps(_mm256_add_ps(p0, p1), _mm256_add_ps(p2, p3)), acc1);
        else
            acc0 = _mm256_fmadd_ps(s, _mm256_add_ps(_mm256_add_ps(p0, p1), _mm256_add_ps(p2, p3)), acc0);
        zsum += sz[gi] * xsum[gi];
    }
    return hsum256(_mm256_add_ps(acc0, acc1)) - zsum;
}

typedef struct {
    float *out;
    const HrQMat *w;
    const float *bias, *x, *residual;
    const float *xsum; /* [n, n_groups] */
    int n;
    bool avx2;
    const Q8Act *q8;   /* [n] when decoding with int8 activations */
    bool q8_avx512;
    int buf_rows;      /* rows of scales the buffer holds (>= 4) */
} Q4Job;

/* buf: room for j->buf_rows (>= 4) rows of scales and scale * zero. */
static void
matmul_q4_rows_with(const Q4Job *j, int r0, int r1, float *buf)
{
    const HrQMat *w = j->w;
    const int rows = w->rows, cols = w->cols, g = w->group, ng = w->n_groups;
#if defined(__x86_64__) && defined(__GNUC__)
    if (j->q8) {
        if (j->q8_avx512 && j->n >= 4 && cols % 128 == 0) {
            /* tokens in blocks of 64 (their xq stays in L2), rows in 4s */
            for (int tb = 0; tb < j->n; tb += 64) {
                const int te = tb + 64 < j->n ? tb + 64 : j->n;
                for (int r = r0; r < r1; r += 4) {
                    const int nr = r1 - r < 4 ? r1 - r : 4;
                    for (int t = tb; t < te; t += 4) {
                        float o[4][4];
                        const int nt = te - t < 4 ? te - t : 4;
                        if (t == tb) /* rows' scales at buf + ng * i, scale * zero at buf + ng * (4 + i) */
                            for (int i = 0; i < nr; i++)
                                hr_qmat_row_scales(w, r + i, buf + (size_t)ng * i, buf + (size_t)ng * (4 + i));
                        if (nr == 4 && nt == 4)
                            q8_tile4x4_avx512(w, r, buf, &j->q8[t], o);
                        else
                            for (int i = 0; i < nr; i++)
                                for (int k = 0; k < nt; k++)
                                    o[i][k] = q8_row_avx512(w->q + (size_t)(r + i) * (size_t)(cols / 2),
                                                            buf + (size_t)ng * i, buf + (size_t)ng * (4 + i),
                                                            &j->q8[t + k], cols, g, ng);
                        for (int i = 0; i < nr; i++)
                            for (int k = 0; k < nt; k++) {
                                const size_t o_ = (size_t)(t + k) * rows + (size_t)(r + i);
                                const float v = o[i][k] + (j->bias ? j->bias[r + i] : 0.0f);
                                j->out[o_] = j->residual ? j->residual[o_] + v : v;
                            }
                    }
                }
            }
            return;
        }
        /* The scales of up to buf_rows rows converted in one run: narrow
         * rows (SmolLM2's 576 inputs are 18 groups) paid a call and a
         * scalar tail per row. */
        for (int rb = r0; rb < r1; rb += j->buf_rows) {
            const int nr = MIN(j->buf_rows, r1 - rb);
            hr_qmat_rows_scales(w, rb, nr, buf, buf + (size_t)nr * ng);
            int r = rb;
            if (j->q8_avx512 && j->n == 1)
                for (; r + 4 <= rb + nr; r += 4) {
                    float o[4];
                    q8_rows4_avx512(w->q + (size_t)r * (size_t)(cols / 2), (size_t)(cols / 2),
                                    buf + (size_t)(r - rb) * ng, buf + (size_t)(nr + r - rb) * ng, &j->q8[0], cols, g,
                                    ng, o);
                    for (int i = 0; i < 4; i++) {
                        const float v = o[i] + (j->bias ? j->bias[r + i] : 0.0f);
                        j->out[r + i] = j->residual ? j->residual[r + i] + v : v;
                    }
                }
            for (; r < rb + nr; r++) {
                const uint8_t *qr = w->q + (size_t)r * (size_t)(cols / 2);
                const float *sc = buf + (size_t)(r - rb) * ng, *sz = buf + (size_t)(nr + r - rb) * ng;
                const float b = j->bias ? j->bias[r] : 0.0f;
                for (int t = 0; t < j->n; t++) {
                    float v = (j->q8_avx512 ? q8_row_avx512(qr, sc, sz, &j->q8[t], cols, g, ng)
                                            : q8_row_avx2(qr, sc, sz, &j->q8[t], cols, g, ng)) + b;
                    size_t o = (size_t)t * rows + r;
                    j->out[o] = j->residual ? j->residual[o] + v : v;
                }
            }
        }
        return;
    }
    if (j->avx2 && g % 32 == 0 && j->n == 1) {
        for (int r = r0; r < r1; r++) {
            const uint8_t *qr = w->q + (size_t)r * (size_t)(cols / 2);
            hr_qmat_row_scales(w, r, buf, buf + ng);
            float v = q4_row1_avx2(qr, buf, buf + ng, j->x, j->xsum, ng, g) +
                      (j->bias ? j->bias[r] : 0.0f);
            j->out[r] = j->residual ? j->residual[r] + v : v;
        }
        return;
    }
    if (j->avx2 && g % 16 == 0) {
        for (int r = r0; r < r1; r++) {
            const uint8_t *qr = w->q + (size_t)r * (size_t)(cols / 2);
            hr_qmat_row_scales(w, r, buf, buf + ng);
            const float *sc = buf, *sz = buf + ng;
            float b = j->bias ? j->bias[r] : 0.0f;
            for (int t0 = 0; t0 < j->n; t0 += 4) {
                int nt = j->n - t0 < 4 ? j->n - t0 : 4;
                float acc[4];
                q4_row_avx2(qr, sc, sz, j->x + (size_t)t0 * cols, (size_t)cols, nt, j->xsum + (size_t)t0 * ng, ng, g,
                            acc);
                for (int t = 0; t < nt; t++) {
                    size_t o = (size_t)(t0 + t) * rows + r;
                    float v = acc[t] + b;
                    j->out[o] = j->residual ? j->residual[o] + v : v;
                }
            }
        }
        return;
    }
#endif
    for (int r = r0; r < r1; r++) {
        const uint8_t *qr = w->q + (size_t)r * (size_t)(cols / 2);
        hr_qmat_row_scales(w, r, buf, buf + ng);
        const float *sc = buf, *sz = buf + ng;
        float b = j->bias ? j->bias[r] : 0.0f;
        for (int t = 0; t < j->n; t++) {
            const float *xt = j->x + (size_t)t * cols;
            const float *xs = j->xsum + (size_t)t * ng;
            float acc = 0.0f;
            for (int gi = 0; gi < ng; gi++)
                acc += sc[gi] * q4_dot_scalar(qr + (size_t)gi * (g / 2), xt + (size_t)gi * g, g) - sz[gi] * xs[gi];
            size_t o = (size_t)t * rows + r;
            float v = acc + b;
            j->out[o] = j->residual ? j->residual[o] + v : v;
        }
    }
}

static void
matmul_q4_rows(void *arg, int r0, int r1)
{
    const Q4Job *j = arg;
    float stack[4096];
    const size_t need = 8 * (size_t)j->w->n_groups;
    float *buf = need <= G_N_ELEMENTS(stack) ? stack : g_new(float, need);
    Q4Job jb = *j;
    /* rows whose scales fit the buffer at once (at least the 4 the tiles take), at most 32 */
    jb.buf_rows = buf == stack ? (int)MIN(32, G_N_ELEMENTS(stack) / (2 * (size_t)j->w->n_groups)) : 4;
    matmul_q4_rows_with(&jb, r0, r1, buf);
    if (buf != stack)
        g_free(buf);
}

#if defined(__x86_64__) && defined(__GNUC__)
typedef struct {
    Q4Job jobs[3];
    int count;
    int first[4]; /* jobs[i] owns global rows [first[i], first[i + 1]) */
} Q4MultiJob;

static void
matmul_q4_multi_rows(void *arg, int r0, int r1)
{
    const Q4MultiJob *m = arg;
    for (int i = 0; i < m->count; i++) {
        const int a = r0 > m->first[i] ? r0 : m->first[i], b = r1 < m->first[i + 1] ? r1 : m->first[i + 1];
        if (a < b)
            matmul_q4_rows((void *)&m->jobs[i], a - m->first[i], b - m->first[i]);
    }
}

/* The int8-activation path for count <= 3 matrices of the same input width
 * and group reading the same x: the activations are rounded once (xq, lane
 * scales and group sums per token, on the stack up to 32 KiB in all, heap
 * beyond) and one pass of the pool covers the rows of all of them. */
static void
q8_run(HrThreadPool *pool, int count, float *const *out, const HrQMat *const *w, const float *const *bias,
       const float *residual, const float *x, int n, bool avx512)
{
    const size_t cols = (size_t)w[0]->cols, ng = (size_t)w[0]->n_groups;
    const size_t per = cols + sizeof(float) * (cols / 8 + ng);
    _Alignas(64) uint8_t stack[32768];
    uint8_t *buf = per * (size_t)n <= sizeof stack ? stack : hr_alloc64(per * (size_t)n);
    Q8Act act_stack[GEMM_MIN_N];
    Q8Act *act = n <= GEMM_MIN_N ? act_stack : g_new(Q8Act, n);
    for (int t = 0; t < n; t++) {
        uint8_t *p = buf + per * (size_t)t;
        act[t].dl = (float *)p;
        act[t].gsum = act[t].dl + cols / 8;
        act[t].xq = (int8_t *)(act[t].gsum + ng);
        q8_quantize(x + cols * (size_t)t, w[0]->cols, w[0]->group, &act[t]);
    }
    Q4MultiJob m = { .count = count };
    size_t work = 0;
    for (int i = 0; i < count; i++) {
        m.jobs[i] = (Q4Job){ out[i], w[i], bias ? bias[i] : NULL, x, residual, NULL, n, true, act, avx512 };
        m.first[i + 1] = m.first[i] + w[i]->rows;
        work += (size_t)w[i]->rows * cols * (size_t)n;
    }
    hr_pool_run(work < 32768 ? NULL : pool, matmul_q4_multi_rows, &m, m.first[count], 16);
    if (buf != stack)
        g_free(buf);
    if (act != act_stack)
        g_free(act);
}
#endif

void
hr_matmul_q4_multi(HrThreadPool *pool, int count, float *const *out, const HrQMat *const *w, const float *const *bias,
                   const float *x, int n)
{
    hr_matmul_q4_multi_impl(HR_MATMUL_AUTO, pool, count, out, w, bias, x, n);
}

void
hr_matmul_q4_multi_impl(HrMatmulImpl impl, HrThreadPool *pool, int count, float *const *out, const HrQMat *const *w,
                        const float *const *bias, const float *x, int n)
{
    g_return_if_fail(count >= 1 && count <= 3);
#if defined(__x86_64__) && defined(__GNUC__)
    const HrMatmulImpl q8 = q8_impl(impl, w[0], n);
    bool shared = q8 != HR_MATMUL_AUTO && n > 0;
    for (int i = 1; i < count; i++)
        shared = shared && w[i]->cols == w[0]->cols && w[i]->group == w[0]->group && q8_impl(impl, w[i], n) == q8;
    for (int i = 0; i < count; i++)
        shared = shared && w[i]->rows > 0;
    if (shared) {
        q8_run(pool, count, out, w, bias, NULL, x, n, q8 == HR_MATMUL_Q8_AVX512);
        return;
    }
#endif
    for (int i = 0; i < count; i++)
        hr_matmul_q4_impl(impl, pool, out[i], w[i], bias ? bias[i] : NULL, x, n, NULL);
}

void
hr_matmul_q4_impl(HrMatmulImpl impl, HrThreadPool *pool, float *out, const HrQMat *w, const float *bias,
                  const float *x, int n, const float *residual)
{
    if (n <= 0 || w->rows <= 0)
        return;
    const HrMatmulImpl q8 = q8_impl(impl, w, n);
    impl = resolve_impl(impl, n);
    if (w->cols <= 0 && impl != HR_MATMUL_SCALAR)
        impl = HR_MATMUL_ROWS_AVX2;
    if ((size_t)w->rows * (size_t)w->cols * (size_t)n < 32768)
        pool = NULL;
#if defined(__x86_64__) && defined(__GNUC__)
    if (q8 != HR_MATMUL_AUTO) {
        q8_run(pool, 1, &out, &w, &bias, residual, x, n, q8 == HR_MATMUL_Q8_AVX512);
        return;
    }
    if (impl == HR_MATMUL_GEMM_AVX2 || impl == HR_MATMUL_GEMM_AVX512) {
        gemm_run(pool, impl, out, NULL, w, bias, x, n, residual);
        return;
    }
#endif
    /* Per-token group sums of x, on the stack for a decode step or a small
     * prefill chunk. */
    float xsum_stack[2048];
    size_t nxs = (size_t)n * (size_t)w->n_groups;
    float *xsum = nxs <= G_N_ELEMENTS(xsum_stack) ? xsum_stack : g_new(float, nxs);
    for (int t = 0; t < n; t++) {
        for (int gi = 0; gi < w->n_groups; gi++) {
            const float *xg = x + (size_t)t * w->cols + (size_t)gi * w->group;
            float s = 0.0f;
            for (int i = 0; i < w->group; i++)
                s += xg[i];
            xsum[(size_t)t * w->n_groups + gi] = s;
        }
    }
    Q4Job job = { out, w, bias, x, residual, xsum, n, impl == HR_MATMUL_ROWS_AVX2, NULL, false };
    hr_pool_run(pool, matmul_q4_rows, &job, w->rows, 16);
    if (xsum != xsum_stack)
        g_free(xsum);
}

void
hr_matmul_q4(HrThreadPool *pool, float *out, const HrQMat *w, const float *bias, const float *x, int n,
             const float *residual)
{
    hr_matmul_q4_impl(HR_MATMUL_AUTO, pool, out, w, bias, x, n, residual);
}

/* ---- int8 weights (the lm_head of 4-bit models on the CPU) ---------------- */

bool
hr_q8mat_supported(const HrMat *m)
{
#if defined(__x86_64__) && defined(__GNUC__)
    return m->cols > 0 && m->cols % 32 == 0 && m->rows > 0 && have_avx2();
#else
    (void)m;
    return false;
#endif
}

size_t
hr_q8mat_bytes(const HrQ8Mat *m)
{
    return (size_t)m->rows * (size_t)m->cols + sizeof(float) * (size_t)m->rows * (size_t)(m->cols / hr_q8mat_block(m)) +
           (m->m ? sizeof(float) * (size_t)m->rows * (size_t)(m->cols / 32) : 0);
}

void
hr_q8mat_free(HrQ8Mat *m)
{
    if (!m)
        return;
    g_free(m->q);
    g_free(m->d);
    g_free(m->m);
    memset(m, 0, sizeof *m);
}

#if defined(__x86_64__) && defined(__GNUC__)
/* The same products as the loop below, 8 at a time. */
__attribute__((target("avx2,fma,f16c"))) static void
q8mat_row_f32_avx2(const int8_t *q, const float *d, int cols, int bl, float *dst)
{
    for (int k = 0; k < cols; k += 8) {
        const __m256 v = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(q + k))));
        _mm256_storeu_ps(dst + k, _mm256_mul_ps(_mm256_set1_ps(d[k / bl]), v));
    }
}
#endif

void
hr_q8mat_row_f32(const HrQ8Mat *m, int r, float *dst)
{
    const int bl = hr_q8mat_block(m);
    const int8_t *q = m->q + (size_t)r * (size_t)m->cols;
    const float *d = m->d + (size_t)r * (size_t)(m->cols / bl);
    const float *off = m->m ? m->m + (size_t)r * (size_t)(m->cols / 32) : NULL;
    if (off) { /* as ggml: d * q + m */
        for (int k = 0; k < m->cols; k++)
            dst[k] = d[k / bl] * (float)q[k] + off[k / 32];
        return;
    }
#if defined(__x86_64__) && defined(__GNUC__)
    if (m->cols % 8 == 0 && have_avx2()) {
        q8mat_row_f32_avx2(q, d, m->cols, bl, dst);
        return;
    }
#endif
    for (int k = 0; k < m->cols; k++)
        dst[k] = d[k / bl] * (float)q[k];
}

typedef struct {
    const HrMat *src;
    HrQ8Mat *dst;
} Q8FromJob;

#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("avx2,fma,f16c"))) static void
q8_from_rows(void *arg, int r0, int r1)
{
    const Q8FromJob *j = arg;
    const int cols = j->src->cols, nb = cols / 32;
    float *row = g_new(float, cols);
    for (int r = r0; r < r1; r++) {
        hr_mat_row_f32(j->src, r, row, cols);
        for (int b = 0; b < nb; b++) {
            float d;
            int s;
            __m256i b8 = q8_block(row + 32 * b, &d, &s);
            _mm256_storeu_si256((__m256i *)(j->dst->q + (size_t)r * cols + 32 * (size_t)b), b8);
            j->dst->d[(size_t)r * nb + b] = d;
        }
    }
    g_free(row);
}
#endif

void
hr_q8mat_from(HrThreadPool *pool, const HrMat *m, HrQ8Mat *dst)
{
    dst->rows = m->rows;
    dst->cols = m->cols;
    dst->block = 32;
    dst->q = hr_weights_alloc((size_t)m->rows * (size_t)m->cols);
    dst->d = hr_weights_alloc(sizeof(float) * (size_t)m->rows * (size_t)(m->cols / 32));
#if defined(__x86_64__) && defined(__GNUC__)
    Q8FromJob job = { m, dst };
    hr_pool_run(pool, q8_from_rows, &job, m->rows, 64);
#else
    (void)pool;
#endif
}

#if defined(__x86_64__) && defined(__GNUC__)
/* The scales of the 8 lanes of block b's products (each lane sums 4
 * neighbouring products): one weight scale per 32, or per 16 (lanes 0-3
 * and 4-7), times the activations' block scale. */
__attribute__((target("avx2,fma,f16c"))) static inline __m256
q8w_scales(const float *dw, const float *dx, int b, bool block16)
{
    if (!block16)
        return _mm256_set1_ps(dw[b] * dx[b]);
    return _mm256_mul_ps(_mm256_insertf128_ps(_mm256_castps128_ps256(_mm_set1_ps(dw[2 * b])), _mm_set1_ps(dw[2 * b + 1]), 1),
                         _mm256_set1_ps(dx[b]));
}

/* W row . x for int8 W and x, per block of 32: |w| x sign(x, w) keeps
 * VPMADDUBSW's unsigned operand in 0..127, so its pair sums cannot
 * saturate; AVX-512 VNNI sums the four products per lane in one VPDPBUSD. */
__attribute__((target("avx2,fma,f16c"))) static float
q8w_row_avx2(const int8_t *w, const float *dw, const int8_t *xq, const float *dx, int nb, bool block16)
{
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0;
    int b = 0;
    for (; b + 2 <= nb; b += 2) {
        _mm_prefetch((const char *)(w + 32 * b + HR_PREFETCH_AHEAD), _MM_HINT_T0);
        __m256i w0 = _mm256_loadu_si256((const __m256i *)(w + 32 * b));
        __m256i w1 = _mm256_loadu_si256((const __m256i *)(w + 32 * b + 32));
        __m256i p0 = _mm256_madd_epi16(
            _mm256_maddubs_epi16(_mm256_abs_epi8(w0), _mm256_sign_epi8(_mm256_loadu_si256((const __m256i *)(xq + 32 * b)), w0)),
            ones);
        __m256i p1 = _mm256_madd_epi16(
            _mm256_maddubs_epi16(_mm256_abs_epi8(w1),
                                 _mm256_sign_epi8(_mm256_loadu_si256((const __m256i *)(xq + 32 * b + 32)), w1)),
            ones);
        acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p0), q8w_scales(dw, dx, b, block16), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p1), q8w_scales(dw, dx, b + 1, block16), acc1);
    }
    if (b < nb) {
        __m256i w0 = _mm256_loadu_si256((const __m256i *)(w + 32 * b));
        __m256i p0 = _mm256_madd_epi16(
            _mm256_maddubs_epi16(_mm256_abs_epi8(w0), _mm256_sign_epi8(_mm256_loadu_si256((const __m256i *)(xq + 32 * b)), w0)),
            ones);
        acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p0), q8w_scales(dw, dx, b, block16), acc0);
    }
    return hsum256(_mm256_add_ps(acc0, acc1));
}

__attribute__((target(Q8_AVX512_TARGET))) static float
q8w_row_vnni(const int8_t *w, const float *dw, const int8_t *xq, const float *dx, int nb, bool block16)
{
    __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0;
    int b = 0;
    for (; b + 2 <= nb; b += 2) {
        _mm_prefetch((const char *)(w + 32 * b + HR_PREFETCH_AHEAD), _MM_HINT_T0);
        __m256i w0 = _mm256_loadu_si256((const __m256i *)(w + 32 * b));
        __m256i w1 = _mm256_loadu_si256((const __m256i *)(w + 32 * b + 32));
        __m256i p0 = _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_abs_epi8(w0),
                                         _mm256_sign_epi8(_mm256_loadu_si256((const __m256i *)(xq + 32 * b)), w0));
        __m256i p1 = _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_abs_epi8(w1),
                                         _mm256_sign_epi8(_mm256_loadu_si256((const __m256i *)(xq + 32 * b + 32)), w1));
        acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p0), q8w_scales(dw, dx, b, block16), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p1), q8w_scales(dw, dx, b + 1, block16), acc1);
    }
    if (b < nb) {
        __m256i w0 = _mm256_loadu_si256((const __m256i *)(w + 32 * b));
        __m256i p0 = _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_abs_epi8(w0),
                                         _mm256_sign_epi8(_mm256_loadu_si256((const __m256i *)(xq + 32 * b)), w0));
        acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p0), q8w_scales(dw, dx, b, block16), acc0);
    }
    return hsum256(_mm256_add_ps(acc0, acc1));
}

#endif

typedef struct {
    float *out;          /* [n, rows] */
    const HrQ8Mat *w;
    const float *bias, *residual;
    const int8_t *xq;    /* [n, cols] */
    const float *dx;     /* [n, cols / 32] */
    const int32_t *corr; /* prefill with VNNI: [n, cols / block], -128 * sum of xq per weight block */
    int n;
    bool vnni;
} Q8WJob;

/* out[o] = residual[o] + (v + bias[r]), as the other matmuls' epilogues. */
static inline void
q8w_store(const Q8WJob *j, size_t o, int r, float v)
{
    v += j->bias ? j->bias[r] : 0.0f;
    j->out[o] = j->residual ? j->residual[o] + v : v;
}

#if defined(__x86_64__) && defined(__GNUC__)
static void
q8w_rows(void *arg, int r0, int r1)
{
    const Q8WJob *j = arg;
    const int cols = j->w->cols, nb = cols / 32, rows = j->w->rows;
    const bool vnni = j->vnni, b16 = hr_q8mat_block(j->w) == 16;
    const size_t nd = (size_t)(cols / hr_q8mat_block(j->w));
    for (int r = r0; r < r1; r++) {
        const int8_t *w = j->w->q + (size_t)r * cols;
        const float *dw = j->w->d + (size_t)r * nd;
        for (int t = 0; t < j->n; t++) {
            const int8_t *xq = j->xq + (size_t)t * cols;
            const float *dx = j->dx + (size_t)t * nb;
            q8w_store(j, (size_t)t * rows + r, r,
                      vnni ? q8w_row_vnni(w, dw, xq, dx, nb, b16) : q8w_row_avx2(w, dw, xq, dx, nb, b16));
        }
    }
}

/* ---- int8 weights, prefill: panels of 16 rows against tiles of tokens -------
 * The decode kernels above read a weight row once per token; prefill
 * reuses each load across tokens. A panel of 16 rows is repacked per call
 * (into the thread's buffer: 16 * cols bytes, in L1 or L2) so that step s
 * holds the 4-byte piece [4s, 4s + 4) of each of the 16 rows in turn: 64
 * bytes, one 512-bit register whose 32-bit lane i belongs to row i.
 * VPDPBUSD of it against 4 activation bytes of a token broadcast to every
 * lane adds those 4 products to each row's lane, so a tile of T = 8 tokens
 * takes 8 instructions per weight load and nothing per row; after each
 * weight block (32 or 16 inputs) one conversion, a multiply (the rows'
 * scales by the token's) and an FMA per token. A token's 16 rows end as
 * one vector: 16 adjacent outputs (out is [n, rows]) with bias and
 * residual, no horizontal sums.
 * VPDPBUSD multiplies unsigned by signed bytes: the panel holds w + 128
 * (w ^ 0x80: 0..255 for any int8) and each block's accumulator starts at
 * -128 * sum(xq) over the block (corr), which takes the offset out
 * exactly. AVX2 has no such instruction: VPMADDUBSW of |w| and sign(x, w)
 * (pair sums at most 2 * 128 * 127, no saturation) and VPMADDWD by ones, 8
 * rows per 256-bit half of a step, 4 tokens per tile. */
enum { Q8P_ROWS = 16, Q8P_T512 = 8, Q8P_T256 = 4 };

/* Rows [r0, r0 + 16) of w (rows past the end as zeros) into wp[cols / 4][16]
 * (XOR 0x80 with offset) and their scales into dwp[cols / block][16]. Four
 * rows at a time, 8 steps of each per 256-bit load, turned by a 4 x 4
 * transpose of 32-bit pieces in each 128-bit half: the half holding steps
 * s + i of the 4 rows is one 16-byte store. */
__attribute__((target("avx2,fma,f16c"))) static void
q8p_pack(const HrQ8Mat *w, int r0, bool offset, uint32_t *wp, float *dwp)
{
    const int cols = w->cols, nd = cols / hr_q8mat_block(w), steps = cols / 4;
    const int nr = w->rows - r0 < Q8P_ROWS ? w->rows - r0 : Q8P_ROWS;
    const uint32_t off = offset ? 0x80808080u : 0u;
    const __m256i offv = _mm256_set1_epi32((int)off);
    int i = 0;
    for (; i + 4 <= nr; i += 4) {
        const int8_t *q0 = w->q + (size_t)(r0 + i) * (size_t)cols, *q1 = q0 + cols, *q2 = q1 + cols, *q3 = q2 + cols;
        for (int s = 0; s < steps; s += 8) { /* steps % 8 == 0: cols % 32 == 0 */
            const __m256i a = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(q0 + 4 * s)), offv);
            const __m256i b = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(q1 + 4 * s)), offv);
            const __m256i c = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(q2 + 4 * s)), offv);
            const __m256i d = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(q3 + 4 * s)), offv);
            const __m256i ab0 = _mm256_unpacklo_epi32(a, b), ab1 = _mm256_unpackhi_epi32(a, b);
            const __m256i cd0 = _mm256_unpacklo_epi32(c, d), cd1 = _mm256_unpackhi_epi32(c, d);
            const __m256i t[4] = { _mm256_unpacklo_epi64(ab0, cd0), _mm256_unpackhi_epi64(ab0, cd0),
                                   _mm256_unpacklo_epi64(ab1, cd1), _mm256_unpackhi_epi64(ab1, cd1) };
            for (int j = 0; j < 4; j++) {
                _mm_storeu_si128((__m128i *)(wp + (size_t)(s + j) * Q8P_ROWS + i), _mm256_castsi256_si128(t[j]));
                _mm_storeu_si128((__m128i *)(wp + (size_t)(s + 4 + j) * Q8P_ROWS + i), _mm256_extracti128_si256(t[j], 1));
            }
        }
    }
    for (; i < Q8P_ROWS; i++) {
        const int8_t *src = i < nr ? w->q + (size_t)(r0 + i) * (size_t)cols : NULL;
        for (int s = 0; s < steps; s++) {
            uint32_t v = 0;
            if (src)
                memcpy(&v, src + 4 * s, 4);
            wp[(size_t)s * Q8P_ROWS + i] = v ^ off;
        }
    }
    for (i = 0; i < Q8P_ROWS; i++) {
        const float *d = i < nr ? w->d + (size_t)(r0 + i) * (size_t)nd : NULL;
        for (int b = 0; b < nd; b++)
            dwp[(size_t)b * Q8P_ROWS + i] = d ? d[b] : 0.0f;
    }
}

/* nb blocks of 32 activations at x to int8 in input order and, when corr
 * is not NULL, -128 times the sum of each weight block (bl, 32 or 16) of
 * the int8 values: VPSADBW of x ^ 0x80 sums 8 of them plus 8 * 128. */
__attribute__((target("avx2,fma,f16c"))) static void
q8p_quantize(const float *x, size_t nb, int bl, int8_t *xq, float *dx, int32_t *corr)
{
    const __m256i flip = _mm256_set1_epi8((char)0x80);
    for (size_t b = 0; b < nb; b++) {
        int s;
        const __m256i q = q8_block(x + 32 * b, &dx[b], &s);
        _mm256_storeu_si256((__m256i *)(xq + 32 * b), q);
        if (!corr)
            continue;
        if (bl == 32) {
            corr[b] = -128 * s;
            continue;
        }
        const __m256i sad = _mm256_sad_epu8(_mm256_xor_si256(q, flip), _mm256_setzero_si256());
        const __m128i lo = _mm256_castsi256_si128(sad), hi = _mm256_extracti128_si256(sad, 1);
        corr[2 * b] = -128 * (_mm_cvtsi128_si32(lo) + _mm_extract_epi32(lo, 2) - 2048);
        corr[2 * b + 1] = -128 * (_mm_cvtsi128_si32(hi) + _mm_extract_epi32(hi, 2) - 2048);
    }
}

/* Tokens [t0, t0 + T) against the panel of rows [r0, r0 + 16) (T and bl,
 * the weight block, are constants after inlining). */
__attribute__((target(Q8_AVX512_TARGET), always_inline)) static inline void
q8p_tile_vnni(const int T, const int bl, const Q8WJob *j, const uint32_t *wp, const float *dwp, int r0, int t0)
{
    const int cols = j->w->cols, rows = j->w->rows, nd = cols / bl, nbx = cols / 32;
    const int8_t *x = j->xq + (size_t)t0 * (size_t)cols;
    const float *dx = j->dx + (size_t)t0 * (size_t)nbx;
    const int32_t *corr = j->corr + (size_t)t0 * (size_t)nd;
    __m512 f[Q8P_T512];
#pragma GCC unroll 8
    for (int t = 0; t < T; t++)
        f[t] = _mm512_setzero_ps();
    for (int b = 0; b < nd; b++) {
        __m512i a[Q8P_T512];
#pragma GCC unroll 8
        for (int t = 0; t < T; t++)
            a[t] = _mm512_set1_epi32(corr[(size_t)t * nd + b]);
        const uint32_t *wb = wp + (size_t)b * (size_t)(bl / 4) * Q8P_ROWS;
        const int8_t *xb = x + (size_t)b * (size_t)bl;
#pragma GCC unroll 8
        for (int s = 0; s < bl / 4; s++) {
            const __m512i wv = _mm512_loadu_si512(wb + (size_t)s * Q8P_ROWS);
#pragma GCC unroll 8
            for (int t = 0; t < T; t++) {
                int32_t xv;
                memcpy(&xv, xb + (size_t)t * (size_t)cols + 4 * s, 4);
                a[t] = _mm512_dpbusd_epi32(a[t], wv, _mm512_set1_epi32(xv));
            }
        }
        const __m512 dw = _mm512_loadu_ps(dwp + (size_t)b * Q8P_ROWS);
        const int bx = b * bl / 32;
#pragma GCC unroll 8
        for (int t = 0; t < T; t++)
            f[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(a[t]), _mm512_mul_ps(dw, _mm512_set1_ps(dx[(size_t)t * nbx + bx])),
                                   f[t]);
    }
    const int nr = rows - r0 < Q8P_ROWS ? rows - r0 : Q8P_ROWS;
    const __mmask16 m = (__mmask16)((1u << nr) - 1u);
    const __m512 bv = j->bias ? _mm512_maskz_loadu_ps(m, j->bias + r0) : _mm512_setzero_ps();
#pragma GCC unroll 8
    for (int t = 0; t < T; t++) {
        const size_t o = (size_t)(t0 + t) * (size_t)rows + (size_t)r0;
        __m512 v = _mm512_add_ps(f[t], bv);
        if (j->residual)
            v = _mm512_add_ps(_mm512_maskz_loadu_ps(m, j->residual + o), v);
        _mm512_mask_storeu_ps(j->out + o, m, v);
    }
}

__attribute__((target("avx2,fma,f16c"), always_inline)) static inline void
q8p_tile_avx2(const int T, const int bl, const Q8WJob *j, const uint32_t *wp, const float *dwp, int r0, int t0)
{
    const int cols = j->w->cols, rows = j->w->rows, nd = cols / bl, nbx = cols / 32;
    const int8_t *x = j->xq + (size_t)t0 * (size_t)cols;
    const float *dx = j->dx + (size_t)t0 * (size_t)nbx;
    const __m256i ones = _mm256_set1_epi16(1);
    const int nr = rows - r0 < Q8P_ROWS ? rows - r0 : Q8P_ROWS;
    for (int h = 0; h < Q8P_ROWS / 8 && 8 * h < nr; h++) { /* rows r0 + 8h .. r0 + 8h + 7 */
        __m256 f[Q8P_T256];
#pragma GCC unroll 4
        for (int t = 0; t < T; t++)
            f[t] = _mm256_setzero_ps();
        for (int b = 0; b < nd; b++) {
            __m256i a[Q8P_T256];
#pragma GCC unroll 4
            for (int t = 0; t < T; t++)
                a[t] = _mm256_setzero_si256();
            const uint32_t *wb = wp + (size_t)b * (size_t)(bl / 4) * Q8P_ROWS + 8 * h;
            const int8_t *xb = x + (size_t)b * (size_t)bl;
#pragma GCC unroll 8
            for (int s = 0; s < bl / 4; s++) {
                const __m256i wv = _mm256_loadu_si256((const __m256i *)(wb + (size_t)s * Q8P_ROWS));
                const __m256i aw = _mm256_abs_epi8(wv);
#pragma GCC unroll 4
                for (int t = 0; t < T; t++) {
                    int32_t xv;
                    memcpy(&xv, xb + (size_t)t * (size_t)cols + 4 * s, 4);
                    const __m256i p = _mm256_maddubs_epi16(aw, _mm256_sign_epi8(_mm256_set1_epi32(xv), wv));
                    a[t] = _mm256_add_epi32(a[t], _mm256_madd_epi16(p, ones));
                }
            }
            const __m256 dw = _mm256_loadu_ps(dwp + (size_t)b * Q8P_ROWS + 8 * h);
            const int bx = b * bl / 32;
#pragma GCC unroll 4
            for (int t = 0; t < T; t++)
                f[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(a[t]),
                                       _mm256_mul_ps(dw, _mm256_set1_ps(dx[(size_t)t * nbx + bx])), f[t]);
        }
        const int r = r0 + 8 * h, n8 = nr - 8 * h < 8 ? nr - 8 * h : 8;
        const __m256i m = _mm256_cmpgt_epi32(_mm256_set1_epi32(n8), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
        const __m256 bv = j->bias ? _mm256_maskload_ps(j->bias + r, m) : _mm256_setzero_ps();
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) {
            const size_t o = (size_t)(t0 + t) * (size_t)rows + (size_t)r;
            __m256 v = _mm256_add_ps(f[t], bv);
            if (j->residual)
                v = _mm256_add_ps(_mm256_maskload_ps(j->residual + o, m), v);
            _mm256_maskstore_ps(j->out + o, m, v);
        }
    }
}

typedef void (*Q8PTile)(const Q8WJob *j, const uint32_t *wp, const float *dwp, int r0, int t0);

#define Q8P_VNNI(T, BL)                                                                                    \
    __attribute__((target(Q8_AVX512_TARGET))) static void q8p_vnni_##T##_##BL(                            \
        const Q8WJob *j, const uint32_t *wp, const float *dwp, int r0, int t0)                             \
    {                                                                                                      \
        q8p_tile_vnni(T, BL, j, wp, dwp, r0, t0);                                                          \
    }
#define Q8P_AVX2(T, BL)                                                                                    \
    __attribute__((target("avx2,fma,f16c"))) static void q8p_avx2_##T##_##BL(                             \
        const Q8WJob *j, const uint32_t *wp, const float *dwp, int r0, int t0)                             \
    {                                                                                                      \
        q8p_tile_avx2(T, BL, j, wp, dwp, r0, t0);                                                          \
    }
Q8P_VNNI(1, 32) Q8P_VNNI(2, 32) Q8P_VNNI(3, 32) Q8P_VNNI(4, 32)
Q8P_VNNI(5, 32) Q8P_VNNI(6, 32) Q8P_VNNI(7, 32) Q8P_VNNI(8, 32)
Q8P_VNNI(1, 16) Q8P_VNNI(2, 16) Q8P_VNNI(3, 16) Q8P_VNNI(4, 16)
Q8P_VNNI(5, 16) Q8P_VNNI(6, 16) Q8P_VNNI(7, 16) Q8P_VNNI(8, 16)
Q8P_AVX2(1, 32) Q8P_AVX2(2, 32) Q8P_AVX2(3, 32) Q8P_AVX2(4, 32)
Q8P_AVX2(1, 16) Q8P_AVX2(2, 16) Q8P_AVX2(3, 16) Q8P_AVX2(4, 16)

/* Tiles by token count; [0] unused. */
static const Q8PTile q8p_vnni32[] = { NULL,          q8p_vnni_1_32, q8p_vnni_2_32, q8p_vnni_3_32, q8p_vnni_4_32,
                                      q8p_vnni_5_32, q8p_vnni_6_32, q8p_vnni_7_32, q8p_vnni_8_32 };
static const Q8PTile q8p_vnni16[] = { NULL,          q8p_vnni_1_16, q8p_vnni_2_16, q8p_vnni_3_16, q8p_vnni_4_16,
                                      q8p_vnni_5_16, q8p_vnni_6_16, q8p_vnni_7_16, q8p_vnni_8_16 };
static const Q8PTile q8p_avx2_32[] = { NULL, q8p_avx2_1_32, q8p_avx2_2_32, q8p_avx2_3_32, q8p_avx2_4_32 };
static const Q8PTile q8p_avx2_16[] = { NULL, q8p_avx2_1_16, q8p_avx2_2_16, q8p_avx2_3_16, q8p_avx2_4_16 };

/* Panels [p0, p1): each packed once, then every token in tiles of equal
 * size (17 tokens as 6 + 6 + 5, not 8 + 8 + 1). */
static void
q8p_panels(void *arg, int p0, int p1)
{
    const Q8WJob *j = arg;
    const HrQ8Mat *w = j->w;
    const int cols = w->cols, bl = hr_q8mat_block(w);
    const size_t wbytes = (size_t)Q8P_ROWS * (size_t)cols;
    const size_t need = wbytes + sizeof(float) * Q8P_ROWS * (size_t)(cols / bl);
    _Alignas(64) uint8_t stack[49152];
    uint8_t *buf = need <= sizeof stack ? stack : hr_alloc64(need);
    uint32_t *wp = (uint32_t *)buf;
    float *dwp = (float *)(buf + wbytes);
    const int tmax = j->vnni ? Q8P_T512 : Q8P_T256;
    const Q8PTile *tiles = j->vnni ? (bl == 16 ? q8p_vnni16 : q8p_vnni32) : (bl == 16 ? q8p_avx2_16 : q8p_avx2_32);
    const int groups = (j->n + tmax - 1) / tmax;
    for (int p = p0; p < p1; p++) {
        q8p_pack(w, p * Q8P_ROWS, j->vnni, wp, dwp);
        /* The pack reads the weights from memory, short rows a hardware
         * prefetcher does not pick up: the next panel of the range (its 16
         * rows are contiguous) is fetched into L2 during this one's tiles. */
        const int r1 = (p + 2) * Q8P_ROWS < w->rows ? (p + 2) * Q8P_ROWS : w->rows;
        const char *next = (const char *)(w->q + (size_t)(p + 1) * Q8P_ROWS * (size_t)cols);
        const size_t next_bytes = p + 1 < p1 ? (size_t)(r1 - (p + 1) * Q8P_ROWS) * (size_t)cols : 0;
        const size_t per_tile = (next_bytes / 64 + (size_t)groups - 1) / (size_t)groups * 64;
        if (next_bytes)
            for (size_t i = 0; i < sizeof(float) * Q8P_ROWS * (size_t)(cols / bl); i += 64)
                _mm_prefetch((const char *)(w->d + (size_t)(p + 1) * Q8P_ROWS * (size_t)(cols / bl)) + i, _MM_HINT_T1);
        for (int g = 0, t = 0, nt = 0; g < groups; g++, t += nt) {
            for (size_t i = (size_t)g * per_tile; i < (size_t)(g + 1) * per_tile && i < next_bytes; i += 64)
                _mm_prefetch(next + i, _MM_HINT_T1);
            nt = (j->n - t) / (groups - g);
            tiles[nt](j, wp, dwp, p * Q8P_ROWS, t);
        }
    }
    if (buf != stack)
        g_free(buf);
}
#endif

/* The portable reference of the int8 path: x rounded per block of 32 as
 * q8_block() does (nearest, ties to even), integer sums per weight block. */
static void
q8w_quantize_scalar(const float *x, size_t nb, int8_t *xq, float *dx)
{
    for (size_t b = 0; b < nb; b++) {
        const float *xb = x + 32 * b;
        float amax = 0.0f;
        for (int i = 0; i < 32; i++)
            amax = fabsf(xb[i]) > amax ? fabsf(xb[i]) : amax;
        const float id = amax > 0.0f ? 127.0f / amax : 0.0f;
        dx[b] = amax / 127.0f;
        for (int i = 0; i < 32; i++)
            xq[32 * b + (size_t)i] = (int8_t)lrintf(xb[i] * id);
    }
}

static void
q8w_rows_scalar(void *arg, int r0, int r1)
{
    const Q8WJob *j = arg;
    const int cols = j->w->cols, rows = j->w->rows, bl = hr_q8mat_block(j->w), nd = cols / bl;
    for (int r = r0; r < r1; r++) {
        const int8_t *w = j->w->q + (size_t)r * (size_t)cols;
        const float *dw = j->w->d + (size_t)r * (size_t)nd;
        for (int t = 0; t < j->n; t++) {
            const int8_t *xq = j->xq + (size_t)t * (size_t)cols;
            const float *dx = j->dx + (size_t)t * (size_t)(cols / 32);
            float acc = 0.0f;
            for (int b = 0; b < nd; b++) {
                int32_t s = 0;
                for (int k = b * bl; k < (b + 1) * bl; k++)
                    s += (int32_t)w[k] * (int32_t)xq[k];
                acc += (float)s * (dw[b] * dx[b * bl / 32]);
            }
            q8w_store(j, (size_t)t * (size_t)rows + (size_t)r, r, acc);
        }
    }
}

void
hr_matmul_q8w(HrThreadPool *pool, float *out, const HrQ8Mat *w, const float *bias, const float *x, int n,
              const float *residual)
{
    hr_matmul_q8w_impl(HR_MATMUL_AUTO, pool, out, w, bias, x, n, residual);
}

/* The offsets' share: out[t, r] += sum_b m[r, b] * xs[t, b]. */
typedef struct {
    float *out;
    const HrQ8Mat *w;
    const float *xs; /* [n, cols / 32] exact block sums of x */
    int n;
} Q8OffJob;

static void
q8w_offsets(void *arg, int r0, int r1)
{
    const Q8OffJob *j = arg;
    const int nb = j->w->cols / 32, rows = j->w->rows;
    for (int r = r0; r < r1; r++) {
        const float *m = j->w->m + (size_t)r * (size_t)nb;
        for (int t = 0; t < j->n; t++) {
            const float *xs = j->xs + (size_t)t * (size_t)nb;
            float acc = 0.0f;
            for (int b = 0; b < nb; b++)
                acc += m[b] * xs[b];
            j->out[(size_t)t * (size_t)rows + (size_t)r] += acc;
        }
    }
}

static void q8w_main(HrMatmulImpl impl, HrThreadPool *pool, float *out, const HrQ8Mat *w, const float *bias,
                     const float *x, int n, const float *residual);

void
hr_matmul_q8w_impl(HrMatmulImpl impl, HrThreadPool *pool, float *out, const HrQ8Mat *w, const float *bias,
                   const float *x, int n, const float *residual)
{
    if (n <= 0 || w->rows <= 0)
        return;
    q8w_main(impl, pool, out, w, bias, x, n, residual);
    if (!w->m)
        return;
    const int nb = w->cols / 32;
    float *xs = g_new(float, (size_t)n * (size_t)nb);
    for (size_t b = 0; b < (size_t)n * (size_t)nb; b++) {
        float s = 0.0f;
        for (int k = 0; k < 32; k++)
            s += x[32 * b + (size_t)k];
        xs[b] = s;
    }
    Q8OffJob oj = { out, w, xs, n };
    hr_pool_run(pool, q8w_offsets, &oj, w->rows, 16);
    g_free(xs);
}

static void
q8w_main(HrMatmulImpl impl, HrThreadPool *pool, float *out, const HrQ8Mat *w, const float *bias, const float *x,
         int n, const float *residual)
{
    const int cols = w->cols, nb = cols / 32, bl = hr_q8mat_block(w), nd = cols / bl;
    int8_t *xq = g_new(int8_t, (size_t)n * (size_t)cols);
    float *dx = g_new(float, (size_t)n * (size_t)nb);
    int32_t *corr = NULL;
    Q8WJob job = { out, w, bias, residual, xq, dx, NULL, n, false };
    if ((size_t)w->rows * (size_t)cols * (size_t)n < 32768)
        pool = NULL;
#if defined(__x86_64__) && defined(__GNUC__)
    if (have_avx2() && impl != HR_MATMUL_SCALAR) {
        job.vnni = impl == HR_MATMUL_Q8_AVX2 ? false : have_avx512vnni();
        if (n < GEMM_MIN_N) {
            q8p_quantize(x, (size_t)n * (size_t)nb, 32, xq, dx, NULL);
            hr_pool_run(pool, q8w_rows, &job, w->rows, 16);
        } else {
            if (job.vnni)
                corr = g_new(int32_t, (size_t)n * (size_t)nd);
            q8p_quantize(x, (size_t)n * (size_t)nb, bl, xq, dx, corr);
            job.corr = corr;
            hr_pool_run(pool, q8p_panels, &job, (w->rows + Q8P_ROWS - 1) / Q8P_ROWS, 1);
        }
        g_free(corr);
        g_free(xq);
        g_free(dx);
        return;
    }
#endif
    (void)impl;
    (void)nd;
    (void)corr;
    q8w_quantize_scalar(x, (size_t)n * (size_t)nb, xq, dx);
    hr_pool_run(pool, q8w_rows_scalar, &job, w->rows, 16);
    g_free(xq);
    g_free(dx);
}

/* dots[t] = w . x_t, in the portable loop's order (see the header). */
static void
dot_rows_scalar(const float *w, const float *x, int cols, int n, float *dots)
{
    for (int t = 0; t < n; t++) {
        const float *xt = x + (size_t)t * (size_t)cols;
        float acc[8] = { 0 };
        int k = 0;
        for (; k + 8 <= cols; k += 8)
            for (int i = 0; i < 8; i++)
                acc[i] += w[k + i] * xt[k + i];
        float sum = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
        for (; k < cols; k++)
            sum += w[k] * xt[k];
        dots[t] = sum;
    }
}

#if defined(__x86_64__) && defined(__GNUC__)
/* Lane i of each accumulator is the scalar loop's acc[i]: a multiply and an
 * add per product (no FMA, which would round once instead of twice). 8
 * tokens per pass: 8 independent add chains keep both adders busy. */
__attribute__((target("avx2,fma,f16c"), always_inline)) static inline void
dot_rows_avx2_t(const int T, const float *w, const float *x, int cols, float *dots)
{
    const int c8 = cols & ~7;
    __m256 a[8];
#pragma GCC unroll 8
    for (int i = 0; i < T; i++)
        a[i] = _mm256_setzero_ps();
    for (int k = 0; k < c8; k += 8) {
        const __m256 wv = _mm256_loadu_ps(w + k);
#pragma GCC unroll 8
        for (int i = 0; i < T; i++)
            a[i] = _mm256_add_ps(a[i], _mm256_mul_ps(wv, _mm256_loadu_ps(x + (size_t)i * (size_t)cols + k)));
    }
    for (int i = 0; i < T; i++) {
        float acc[8];
        _mm256_storeu_ps(acc, a[i]);
        const float *xt = x + (size_t)i * (size_t)cols;
        float sum = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
        for (int k = c8; k < cols; k++)
            sum += w[k] * xt[k];
        dots[i] = sum;
    }
}

__attribute__((target("avx2,fma,f16c"))) static void
dot_rows_avx2(const float *w, const float *x, int cols, int n, float *dots)
{
    int t = 0;
    for (; t + 8 <= n; t += 8)
        dot_rows_avx2_t(8, w, x + (size_t)t * (size_t)cols, cols, dots + t);
    if (t + 4 <= n) {
        dot_rows_avx2_t(4, w, x + (size_t)t * (size_t)cols, cols, dots + t);
        t += 4;
    }
    for (; t < n; t++)
        dot_rows_avx2_t(1, w, x + (size_t)t * (size_t)cols, cols, dots + t);
}
#endif

void
hr_dot_rows_f32(const float *w, const float *x, int cols, int n, float *dots)
{
#if defined(__x86_64__) && defined(__GNUC__)
    if (have_avx2()) {
        dot_rows_avx2(w, x, cols, n, dots);
        return;
    }
#endif
    dot_rows_scalar(w, x, cols, n, dots);
}

#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("avx2,fma,f16c"))) static inline __m256
kv_load8(const void *base, bool f16, size_t off)
{
    if (f16)
        return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)base + off)));
    return _mm256_loadu_ps((const float *)base + off);
}

/* exp(x) for 8 lanes, x <= 0 (softmax after subtracting the max): Cody-Waite
 * reduction by ln 2 and Cephes' expf polynomial, about 1 ulp from expf; x
 * below -87.3 gives 0 instead of a denormal. */
__attribute__((target("avx2,fma,f16c"))) static inline __m256
exp256_nonpos(__m256 x)
{
    const __m256 lo = _mm256_set1_ps(-87.3f);
    const __m256 under = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);
    x = _mm256_max_ps(x, lo);
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 y = _mm256_set1_ps(1.9875691500e-4f);
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(1.3981999507e-3f));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(8.3334519073e-3f));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(4.1665795894e-2f));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(1.6666665459e-1f));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(5.0000001201e-1f));
    y = _mm256_fmadd_ps(y, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_andnot_ps(under, _mm256_mul_ps(y, _mm256_castsi256_ps(e)));
}

__attribute__((target("avx2,fma,f16c"))) static void
attend_head_avx2(const float *q, const void *k, const void *v, bool f16, size_t stride, int ring, int hd, int start,
                 int p, float scale, float softcap, float *scores, float *out)
{
    float max = -INFINITY;
    for (int j = start; j <= p; j++) {
        const size_t o = (size_t)(ring > 0 ? j % ring : j) * stride;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0;
        int i = 0;
        for (; i + 16 <= hd; i += 16) {
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), kv_load8(k, f16, o + (size_t)i), a0);
            a1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i + 8), kv_load8(k, f16, o + (size_t)i + 8), a1);
        }
        if (i < hd)
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), kv_load8(k, f16, o + (size_t)i), a0);
        float s = hsum256(_mm256_add_ps(a0, a1)) * scale;
        if (softcap > 0.0f)   /* Gemma 2: cap * tanh(s / cap) */
            s = tanhf(s / softcap) * softcap;
        scores[j] = s;
        max = s > max ? s : max;
    }
    __m256 vsum = _mm256_setzero_ps();
    const __m256 vmax = _mm256_set1_ps(max);
    int je = start;
    for (; je + 8 <= p + 1; je += 8) {
        const __m256 e = exp256_nonpos(_mm256_sub_ps(_mm256_loadu_ps(scores + je), vmax));
        _mm256_storeu_ps(scores + je, e);
        vsum = _mm256_add_ps(vsum, e);
    }
    float sum = hsum256(vsum);
    for (; je <= p; je++) {
        scores[je] = expf(scores[je] - max);
        sum += scores[je];
    }
    const __m256 inv = _mm256_set1_ps(1.0f / sum);
    /* V rows in order, 64 dims of out in 8 independent accumulators (one
     * pass over each row's contiguous bytes, no chain on FMA latency). */
    for (int i0 = 0; i0 < hd; i0 += 64) {
        const int nu = (hd - i0 < 64 ? hd - i0 : 64) / 8;
        __m256 a[8];
        for (int u = 0; u < 8; u++)
            a[u] = _mm256_setzero_ps();
        if (nu == 8) {
            for (int j = start; j <= p; j++) {
                const __m256 w = _mm256_set1_ps(scores[j]);
                const size_t o = (size_t)(ring > 0 ? j % ring : j) * stride + (size_t)i0;
#pragma GCC unroll 8
                for (int u = 0; u < 8; u++)
                    a[u] = _mm256_fmadd_ps(w, kv_load8(v, f16, o + 8 * (size_t)u), a[u]);
            }
        } else {
            for (int j = start; j <= p; j++) {
                const __m256 w = _mm256_set1_ps(scores[j]);
                const size_t o = (size_t)(ring > 0 ? j % ring : j) * stride + (size_t)i0;
                for (int u = 0; u < nu; u++)
                    a[u] = _mm256_fmadd_ps(w, kv_load8(v, f16, o + 8 * (size_t)u), a[u]);
            }
        }
        for (int u = 0; u < nu; u++)
            _mm256_storeu_ps(out + i0 + 8 * u, _mm256_mul_ps(a[u], inv));
    }
}
#endif

void
hr_attend_head(const float *q, const void *k, const void *v, bool f16, size_t stride, int ring, int hd, int start,
               int p, float scale, float softcap, float *scores, float *out)
{
#if defined(__x86_64__) && defined(__GNUC__)
    if (hd % 8 == 0 && have_avx2()) {
        attend_head_avx2(q, k, v, f16, stride, ring, hd, start, p, scale, softcap, scores, out);
        return;
    }
#endif
    pthread_once(&f16_once, fill_f16_table);
    float max = -INFINITY;
    for (int j = start; j <= p; j++) {
        const size_t o = (size_t)(ring > 0 ? j % ring : j) * stride;
        float s = 0.0f;
        for (int i = 0; i < hd; i++)
            s += q[i] * (f16 ? f16_table[((const uint16_t *)k)[o + i]] : ((const float *)k)[o + i]);
        scores[j] = s * scale;
        if (softcap > 0.0f)   /* Gemma 2: cap * tanh(s / cap) */
            scores[j] = tanhf(scores[j] / softcap) * softcap;
        max = scores[j] > max ? scores[j] : max;
    }
    float sum = 0.0f;
    for (int j = start; j <= p; j++) {
        scores[j] = expf(scores[j] - max);
        sum += scores[j];
    }
    for (int i = 0; i < hd; i++)
        out[i] = 0.0f;
    for (int j = start; j <= p; j++) {
        const size_t o = (size_t)(ring > 0 ? j % ring : j) * stride;
        const float w = scores[j] / sum;
        for (int i = 0; i < hd; i++)
            out[i] += w * (f16 ? f16_table[((const uint16_t *)v)[o + i]] : ((const float *)v)[o + i]);
    }
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
