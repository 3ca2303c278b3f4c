/* test-cuda-emu.cpp — the opt-in CUDA decode kernels (engine/cuda/cuda-decode.cu:
 * HEARTH_CUDA_GEMV=q8, HEARTH_CUDA_ATTN=tiled) run on the host through
 * tests/cuda-emu.h, in CI, without a GPU, against double-precision references:
 *  - k_quant_q8 + k_gemv_fast for each epilogue (store with bias, residual,
 *    gate|up SiLU·mul), groups of 32/64/128 and one per row, K not a multiple
 *    of 32, rows not a multiple of the warp's two, 1 and 3 tokens: within
 *    1e-5 of the reference on the activations rounded per block of 32
 *    (d = max|x|/127, round to nearest even), the rounding within half a step;
 *  - k_gemv_fast (FP16 rows) for each epilogue, K not a multiple of 8, x rows
 *    wider than K with NaN past it, unaligned rows: within 1e-5;
 *  - k_rmsnorm_q8: the norm within 1e-5, and its rounding as k_quant_q8's;
 *  - k_rope_kv_wide: q and k rotated within 2e-4 of a double reference, the
 *    caches' rows written with their FP16 values and no other row touched;
 *  - k_attn_tiled: the partials merged as k_attn_combine merges them, within
 *    1e-4 of exact causal attention over the FP16 cache: GQA groups 1 to 8,
 *    head_dim 8 to 256, several queries a block, splits of one and several
 *    tiles, sliding windows that start inside a tile;
 *  - the draw's kernels (cuda-sample.cu, HEARTH_DEVICE_SAMPLING=1): the
 *    penalty bit for bit as the host's, the 64 best exactly as a stable sort
 *    of the row, the softmax's sum within 1e-5, over one to three passes;
 *  - k_attn_tc (cuda-attn-tc.cu): the tensor-core prefill attention within
 *    4e-3 of exact attention (FP16 operands), several query tiles, GQA,
 *    windows; its WMMA runs through the emulator's API-level WMMA, which
 *    k_gemm_wmma (the default prefill GEMM, proven on a device) checks first;
 *  - k_scale_quant (the AWQ search's candidates): bit for bit the CPU's
 *    arithmetic, FP16-rounded; k_clip_gram + k_clip_search (its clip
 *    search): each limit one of the steps', its error within 1e-4 of the
 *    least of a double reference; k_col_abs_sum and k_div_cols bit for bit
 *    the host's;
 *  - the default kernels a device run has proven (k_gemv, k_attn_partial +
 *    k_attn_combine, k_rope_kv, k_argmax), so that an edit of them made
 *    without a device is checked too;
 *  - the cuBLAS prefill route (HEARTH_CUDA_GEMM=cublas, cuda-blas.cu): the
 *    dequantizing kernel writes FP16(s * (q - z)) for every weight, and
 *    cublasGemmEx's arguments (blas_args), applied by a column-major
 *    reference GEMM as BLAS defines them, give x W^T (+ residual) + bias
 *    within 4e-3 (FP16 operands, as the WMMA path).
 * The device layout of the 4-bit weights is built here from nibbles, apart
 * from the backend's repack, following cuda-internal.h. */
#include "cuda-emu.h"
extern "C" {
#include "cpu-awq.h"   /* the CPU's fake quantization, the reference */
}
#include "hr-test.h"   /* hr_worse: a NaN counts as the largest error */

#define HEARTH_CUDA_EMU 1
#include "cuda/cuda-blas.cu"
#include "cuda/cuda-decode.cu"
#include "cuda/cuda-kernels.cu"
#include "cuda/cuda-attn-tc.cu"
#include "cuda/cuda-sample.cu"

#include <algorithm>
#include <cstdio>
#include <numeric>
#include <random>

using namespace hrcuda;

static int failures = 0;
#define CHECK(cond, ...)                                                               \
    do {                                                                               \
        if (!(cond)) {                                                                 \
            fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond);   \
            fprintf(stderr, __VA_ARGS__);                                              \
            fputc('\n', stderr);                                                       \
            failures++;                                                                \
        }                                                                              \
    } while (0)

static std::mt19937 rng(17);

static float
frand(float a, float b)
{
    return std::uniform_real_distribution<float>(a, b)(rng);
}

static uint16_t
f16_bits(float v)
{
    __half h = __float2half_rn(v);
    __half_raw r = h;
    return r.x;
}

static float
f16_val(uint16_t u)
{
    __half_raw r;
    r.x = u;
    return __half2float(__half(r));
}

/* A 4-bit matrix: nibbles, zeros and FP16 scales, and its device layout. */
struct Q4 {
    int N, K, group, ng, kw;
    std::vector<uint8_t> q, z;      // [N][K], [N][ng]
    std::vector<uint16_t> s;        // [N][ng]
    std::vector<uint32_t> words;    // [N][kw]
    std::vector<uint32_t> sz;       // [N][ng] {scale, zero}
    DLinear d;
    double w(int n, int k) const
    {
        const int g = k / group;
        return (double)f16_val(s[(size_t)n * ng + g]) * ((int)q[(size_t)n * K + k] - (int)z[(size_t)n * ng + g]);
    }
};

static void
q4_make(Q4 &m, int N, int K, int group)
{
    static const int slot_of[8] = { 0, 4, 1, 5, 2, 6, 3, 7 };   // input e at bits 4*slot_of[e]
    m.N = N;
    m.K = K;
    m.group = group;
    m.ng = K / group;
    m.kw = q4_kw(K);
    m.q.assign((size_t)N * K, 0);
    m.z.assign((size_t)N * m.ng, 0);
    m.s.assign((size_t)N * m.ng, 0);
    m.words.assign((size_t)N * m.kw, 0);
    m.sz.assign((size_t)N * m.ng, 0);
    for (int n = 0; n < N; n++) {
        for (int k = 0; k < K; k++) {
            const uint8_t v = (uint8_t)(rng() & 15);
            m.q[(size_t)n * K + k] = v;
            m.words[(size_t)n * m.kw + k / 8] |= (uint32_t)v << (4 * slot_of[k % 8]);
        }
        for (int g = 0; g < m.ng; g++) {
            const uint8_t z = (uint8_t)(rng() & 15);
            const uint16_t sc = f16_bits(frand(0.005f, 0.05f));
            m.z[(size_t)n * m.ng + g] = z;
            m.s[(size_t)n * m.ng + g] = sc;
            m.sz[(size_t)n * m.ng + g] = (uint32_t)sc | (uint32_t)f16_bits((float)z) << 16;
        }
    }
    memset(&m.d, 0, sizeof m.d);
    m.d.kind = LIN_Q4;
    m.d.rows = N;
    m.d.cols = K;
    m.d.q = m.words.data();
    m.d.sz = reinterpret_cast<__half2 *>(m.sz.data());
    m.d.kw = m.kw;
    m.d.group = group;
    m.d.ng = m.ng;
}

/* Every element uniform in [-1, 1). */
static void
fill_uniform(std::vector<float> &v)
{
    for (auto &e : v)
        e = frand(-1.0f, 1.0f);
}

/* x rounded as the kernels round it: per block of 32, d = max|x|/127. */
static std::vector<double>
round_q8(const float *x, int K)
{
    std::vector<double> r((size_t)K);
    for (int b = 0; b * 32 < K; b++) {
        float amax = 0.0f;
        for (int k = b * 32; k < K && k < b * 32 + 32; k++)
            amax = fmaxf(amax, fabsf(x[k]));
        const float id = amax > 0.0f ? 127.0f / amax : 0.0f, d = amax / 127.0f;
        for (int k = b * 32; k < K && k < b * 32 + 32; k++)
            r[(size_t)k] = (double)d * nearbyintf(x[k] * id);
    }
    return r;
}

static void
emu_quant(const float *x, int ldx, int K, int Kp, int T, int8_t *xq, float2 *xs)
{
    const int nb = Kp / 32;
    hremu::launch(dim3((unsigned)((nb + 7) / 8), (unsigned)T), dim3(256), [&] { k_quant_q8(x, ldx, K, Kp, xq, xs); });
}

static void
emu_gemv(const DLinear &w, const int8_t *xq, const float2 *xs, int T, const float *bias, float *out, int ldo,
         Epilogue epi)
{
    const int rows_out = epi == EPI_SILU_MUL ? w.rows / 2 : w.rows, lr = epi == EPI_SILU_MUL ? 1 : 2;
    const int gshift = q8_group_shift(w);
    const dim3 grid((unsigned)((rows_out + 4 * lr - 1) / (4 * lr)), (unsigned)T);
    hremu::launch(grid, dim3(128), [&] {
        if (epi == EPI_STORE)
            k_gemv_fast<EPI_STORE, true>(w, xq, xs, gshift, nullptr, 0, bias, out, ldo, rows_out);
        else if (epi == EPI_RESIDUAL)
            k_gemv_fast<EPI_RESIDUAL, true>(w, xq, xs, gshift, nullptr, 0, bias, out, ldo, rows_out);
        else
            k_gemv_fast<EPI_SILU_MUL, true>(w, xq, xs, gshift, nullptr, 0, bias, out, ldo, rows_out);
    });
}

static void
check_gemv(int N, int K, int group, int T, Epilogue epi)
{
    Q4 m;
    q4_make(m, epi == EPI_SILU_MUL ? 2 * N : N, K, group);
    const int Kp = m.kw * 8, rows_out = N;
    std::vector<float> x((size_t)T * K), bias((size_t)N), out((size_t)T * N), res((size_t)T * N);
    for (auto &v : x)
        v = frand(-1.0f, 1.0f) * (rng() % 9 == 0 ? 30.0f : 1.0f);
    for (auto &v : bias)
        v = frand(-1.0f, 1.0f);
    for (auto &v : res)
        v = frand(-1.0f, 1.0f);
    out = res;
    std::vector<int8_t> xq((size_t)T * Kp, 0x5a);   // garbage the kernel must overwrite
    std::vector<float2> xs((size_t)T * (Kp / 32));
    emu_quant(x.data(), K, K, Kp, T, xq.data(), xs.data());
    const float *b = epi == EPI_STORE ? bias.data() : (epi == EPI_RESIDUAL ? bias.data() : nullptr);
    emu_gemv(m.d, xq.data(), xs.data(), T, b, out.data(), N, epi);
    double worst = 0.0, mx = 1.0;
    for (int t = 0; t < T; t++) {
        const std::vector<double> xr = round_q8(x.data() + (size_t)t * K, K);
        // the rounding: within half a step per block
        for (int k = 0; k < K; k++) {
            float amax = 0.0f;
            for (int j = k / 32 * 32; j < K && j < k / 32 * 32 + 32; j++)
                amax = fmaxf(amax, fabsf(x[(size_t)t * K + j]));
            CHECK(fabs(xr[(size_t)k] - x[(size_t)t * K + k]) <= amax / 254.0 * 1.0001, "rounding of x[%d]", k);
        }
        for (int r = 0; r < rows_out; r++) {
            double a = 0.0, u = 0.0;
            for (int k = 0; k < K; k++)
                a += m.w(r, k) * xr[(size_t)k];
            double ref;
            if (epi == EPI_SILU_MUL) {
                for (int k = 0; k < K; k++)
                    u += m.w(r + N, k) * xr[(size_t)k];
                ref = a / (1.0 + exp(-a)) * u;
            } else {
                ref = a + (b ? bias[(size_t)r] : 0.0) + (epi == EPI_RESIDUAL ? res[(size_t)t * N + r] : 0.0);
            }
            mx = fmax(mx, fabs(ref));
            worst = hr_worse(worst, fabs(ref - (double)out[(size_t)t * N + r]));
        }
    }
    static const char *names[] = { "store+bias", "residual+bias", "silu*mul" };
    CHECK(worst / mx <= 1e-5, "q8 GEMV %dx%d g%d T=%d %s: error %g of %g", N, K, group, T, names[epi], worst, mx);
    printf("q8 GEMV   %4d x %4d  group %4d  T %d  %-13s  max |emu - ref| / max %.1e\n", N, K, group, T, names[epi],
           worst / mx);
}

/* k_gemv_fast: FP16 rows of ldw halves (zero padded), x rows of ldx >= K
 * floats whose tail past K is NaN (must never be read into a sum). */
static void
check_gemv_f16(int N, int K, int T, int ldx, Epilogue epi)
{
    const int R = epi == EPI_SILU_MUL ? 2 * N : N, ldw = f16_ldw(K);
    std::vector<uint16_t> w((size_t)R * ldw, 0);
    for (int r = 0; r < R; r++)
        for (int k = 0; k < K; k++)
            w[(size_t)r * ldw + k] = f16_bits(frand(-0.5f, 0.5f));
    std::vector<float> x((size_t)T * ldx, NAN), bias((size_t)N), out((size_t)T * N), res((size_t)T * N);
    for (int t = 0; t < T; t++)
        for (int k = 0; k < K; k++)
            x[(size_t)t * ldx + k] = frand(-1.0f, 1.0f);
    for (auto &v : bias)
        v = frand(-1.0f, 1.0f);
    for (auto &v : res)
        v = frand(-1.0f, 1.0f);
    out = res;
    DLinear d;
    memset(&d, 0, sizeof d);
    d.kind = LIN_F16;
    d.rows = R;
    d.cols = K;
    d.w = reinterpret_cast<__half *>(w.data());
    d.ldw = ldw;
    const float *b = epi == EPI_SILU_MUL ? nullptr : bias.data();
    const int rows_out = N, lr = epi == EPI_SILU_MUL ? 1 : 2;
    hremu::launch(dim3((unsigned)((rows_out + 4 * lr - 1) / (4 * lr)), (unsigned)T), dim3(128), [&] {
        if (epi == EPI_STORE)
            k_gemv_fast<EPI_STORE, false>(d, nullptr, nullptr, -1, x.data(), ldx, b, out.data(), N, rows_out);
        else if (epi == EPI_RESIDUAL)
            k_gemv_fast<EPI_RESIDUAL, false>(d, nullptr, nullptr, -1, x.data(), ldx, b, out.data(), N, rows_out);
        else
            k_gemv_fast<EPI_SILU_MUL, false>(d, nullptr, nullptr, -1, x.data(), ldx, b, out.data(), N, rows_out);
    });
    double worst = 0.0, mx = 1.0;
    for (int t = 0; t < T; t++)
        for (int r = 0; r < N; r++) {
            double a = 0.0, u = 0.0;
            for (int k = 0; k < K; k++) {
                a += (double)f16_val(w[(size_t)r * ldw + k]) * x[(size_t)t * ldx + k];
                if (epi == EPI_SILU_MUL)
                    u += (double)f16_val(w[(size_t)(r + N) * ldw + k]) * x[(size_t)t * ldx + k];
            }
            const double ref = epi == EPI_SILU_MUL ? a / (1.0 + exp(-a)) * u
                                                   : a + bias[(size_t)r] + (epi == EPI_RESIDUAL ? res[(size_t)t * N + r] : 0.0);
            mx = fmax(mx, fabs(ref));
            const double e = fabs(ref - (double)out[(size_t)t * N + r]);
            worst = hr_worse(worst, e);
        }
    static const char *names[] = { "store+bias", "residual+bias", "silu*mul" };
    CHECK(worst / mx <= 1e-5, "f16 GEMV %dx%d T=%d ldx %d %s: error %g of %g", N, K, T, ldx, names[epi], worst, mx);
    printf("f16 GEMV  %4d x %4d  ldx %4d  T %d  %-13s  max |emu - ref| / max %.1e\n", N, K, ldx, T, names[epi],
           worst / mx);
}

static void
check_rmsnorm_q8(int T, int dim)
{
    const int Kp = q4_kw(dim) * 8, nb = Kp / 32;
    std::vector<float> x((size_t)T * dim), w((size_t)dim), out((size_t)T * dim);
    for (auto &v : x)
        v = frand(-3.0f, 3.0f);
    for (auto &v : w)
        v = frand(0.5f, 1.5f);
    std::vector<int8_t> xq((size_t)T * Kp, 0x5a);
    std::vector<float2> xs((size_t)T * nb);
    hremu::launch(dim3((unsigned)T), dim3(256),
                  [&] { k_rmsnorm_q8(x.data(), w.data(), out.data(), dim, 1e-5f, Kp, xq.data(), xs.data()); });
    int bad = 0;
    double worst = 0.0;
    for (int t = 0; t < T; t++) {
        double ss = 0.0;
        for (int k = 0; k < dim; k++)
            ss += (double)x[(size_t)t * dim + k] * x[(size_t)t * dim + k];
        const double r = 1.0 / sqrt(ss / dim + 1e-5);
        for (int k = 0; k < dim; k++)
            worst = hr_worse(worst, fabs(x[(size_t)t * dim + k] * r * w[(size_t)k] - out[(size_t)t * dim + k]));
        const std::vector<double> xr = round_q8(out.data() + (size_t)t * dim, dim);
        for (int k = 0; k < dim; k++) {
            const double got = (double)xs[(size_t)t * nb + k / 32].x *
                               xq[(size_t)t * Kp + (k & ~7) + q8_pos(k & 7)];
            bad += !(fabs(got - xr[(size_t)k]) <= 1e-6 * fmax(1.0, fabs(xr[(size_t)k])));
        }
        for (int k = dim; k < Kp; k++)   // padding rounds to zero
            bad += xq[(size_t)t * Kp + (k & ~7) + q8_pos(k & 7)] != 0;
    }
    CHECK(worst <= 1e-5 * 8, "rmsnorm_q8 T=%d dim=%d: error %g", T, dim, worst);
    CHECK(bad == 0, "rmsnorm_q8 T=%d dim=%d: %d values rounded otherwise", T, dim, bad);
    printf("rmsnorm_q8  T %d  dim %4d  max |emu - ref| %.1e, %d rounded otherwise\n", T, dim, worst, bad);
}

/* k_rope_kv_wide: rotate-half RoPE of q and k in place (double reference),
 * k and v written to the FP16 caches at pos + t, nothing else touched. */
static void
check_rope_wide(int nh, int nkv, int hd, int pos, int T, int ctx, bool wide = true)
{
    const int half = hd / 2, q_dim = nh * hd, kv_dim = nkv * hd, ld = q_dim + 2 * kv_dim;
    std::vector<float> inv((size_t)half), qkv((size_t)T * ld);
    for (int i = 0; i < half; i++)
        inv[(size_t)i] = powf(10000.0f, -2.0f * (float)i / (float)hd);
    for (auto &v : qkv)
        v = frand(-2.0f, 2.0f);
    const std::vector<float> orig = qkv;
    std::vector<uint16_t> kc((size_t)ctx * kv_dim, 0x7e00), vc((size_t)ctx * kv_dim, 0x7e00);   // NaN: unwritten
    int step[2] = { pos, T };
    __half *hk = reinterpret_cast<__half *>(kc.data()), *hv = reinterpret_cast<__half *>(vc.data());
    if (wide)
        hremu::launch(dim3((unsigned)T, (unsigned)(nh + 2 * nkv)), dim3((unsigned)((half + 31) / 32 * 32)),
                      [&] { k_rope_kv_wide(qkv.data(), hk, hv, inv.data(), step, nh, nkv, hd); });
    else   // the default kernel (cuda-kernels.cu), held to the same checks
        hremu::launch(dim3((unsigned)T), dim3(128), [&] { k_rope_kv(qkv.data(), hk, hv, inv.data(), step, nh, nkv, hd); });
    double worst = 0.0;
    int bad = 0;
    for (int t = 0; t < T; t++) {
        const float *o = orig.data() + (size_t)t * ld;
        const float *r = qkv.data() + (size_t)t * ld;
        const int p = pos + t;
        for (int h = 0; h < nh + nkv; h++)
            for (int i = 0; i < half; i++) {
                const double a = (double)p * inv[(size_t)i], c = cos(a), sn = sin(a);
                const double x0 = o[(size_t)h * hd + i], x1 = o[(size_t)h * hd + i + half];
                const double y0 = x0 * c - x1 * sn, y1 = x1 * c + x0 * sn;
                worst = hr_worse(worst, fmax(fabs(y0 - r[(size_t)h * hd + i]), fabs(y1 - r[(size_t)h * hd + i + half])));
                if (h >= nh) {
                    const size_t at = (size_t)p * kv_dim + (size_t)(h - nh) * hd;
                    bad += kc[at + i] != f16_bits(r[(size_t)h * hd + i]);
                    bad += kc[at + i + half] != f16_bits(r[(size_t)h * hd + i + half]);
                }
            }
        for (int i = 0; i < kv_dim; i++) {
            bad += r[q_dim + kv_dim + i] != o[q_dim + kv_dim + i];   // v is not rotated
            bad += vc[(size_t)p * kv_dim + i] != f16_bits(o[q_dim + kv_dim + i]);
        }
    }
    for (int j = 0; j < ctx; j++)   // rows outside pos .. pos+T-1 untouched
        if (j < pos || j >= pos + T)
            for (int i = 0; i < kv_dim; i++)
                bad += kc[(size_t)j * kv_dim + i] != 0x7e00 || vc[(size_t)j * kv_dim + i] != 0x7e00;
    CHECK(worst <= 2e-4, "rope (wide) %d/%d hd %d pos %d T %d: error %g", nh, nkv, hd, pos, T, worst);
    CHECK(bad == 0, "rope (wide) %d/%d hd %d pos %d T %d: %d cache or v values wrong", nh, nkv, hd, pos, T, bad);
    printf("rope %s %2d/%d heads  hd %3d  pos %4d  T %2d  max |emu - ref| %.1e, %d cache values wrong\n",
           wide ? "wide" : "default", nh, nkv, hd, pos, T, worst, bad);
}

/* Random FP16 K and V caches of `cache` values and queries of `nq`, in [-2, 2). */
static void
attention_inputs(std::vector<uint16_t> &kc, std::vector<uint16_t> &vc, std::vector<float> &q, size_t cache, size_t nq)
{
    kc.resize(cache);
    vc.resize(cache);
    q.resize(nq);
    for (auto &v : kc)
        v = f16_bits(frand(-2.0f, 2.0f));
    for (auto &v : vc)
        v = f16_bits(frand(-2.0f, 2.0f));
    for (auto &v : q)
        v = frand(-2.0f, 2.0f);
}

/* max |ref - out|, infinite where out is NaN. */
static double
max_error(const std::vector<double> &ref, const std::vector<float> &out)
{
    double worst = 0.0;
    for (size_t i = 0; i < ref.size(); i++) {
        const double e = fabs(ref[i] - (double)out[i]);
        worst = hr_worse(worst, e);
    }
    return worst;
}

/* Exact causal attention over the FP16 cache, in double. */
static void
ref_attention(std::vector<double> &out, const float *q, int ldq, const uint16_t *kc, const uint16_t *vc, int pos,
              int T, int nh, int nkv, int hd, int window)
{
    const int kv_dim = nkv * hd, G = nh / nkv;
    out.assign((size_t)T * nh * hd, 0.0);
    for (int t = 0; t < T; t++) {
        const int p = pos + t, start = window > 0 && p - window + 1 > 0 ? p - window + 1 : 0;
        for (int h = 0; h < nh; h++) {
            const int kvh = h / G;
            std::vector<double> sc((size_t)p + 1);
            double mx = -INFINITY, sum = 0.0;
            for (int j = start; j <= p; j++) {
                double s = 0.0;
                for (int d = 0; d < hd; d++)
                    s += (double)q[(size_t)t * ldq + (size_t)h * hd + d] *
                         f16_val(kc[(size_t)j * kv_dim + (size_t)kvh * hd + d]);
                sc[(size_t)j] = s / sqrt((double)hd);
                mx = fmax(mx, sc[(size_t)j]);
            }
            for (int j = start; j <= p; j++)
                sum += sc[(size_t)j] = exp(sc[(size_t)j] - mx);
            for (int d = 0; d < hd; d++) {
                double a = 0.0;
                for (int j = start; j <= p; j++)
                    a += sc[(size_t)j] / sum * f16_val(vc[(size_t)j * kv_dim + (size_t)kvh * hd + d]);
                out[((size_t)t * nh + h) * hd + d] = a;
            }
        }
    }
}

static void
check_attention(int nh, int nkv, int hd, int pos, int T, int ctx, int window, int split_len)
{
    const int kv_dim = nkv * hd, ldq = (nh + 2 * nkv) * hd, max_splits = (ctx + split_len - 1) / split_len;
    std::vector<uint16_t> kc, vc;
    std::vector<float> q, part((size_t)T * nh * max_splits * (hd + 2), NAN);
    attention_inputs(kc, vc, q, (size_t)ctx * kv_dim, (size_t)T * ldq);
    int step[2] = { pos, T };
    const int G = nh / nkv, QT = ATT_TILE_MAX_G / G;
    hremu::launch(dim3((unsigned)nkv, (unsigned)max_splits, (unsigned)((T + QT - 1) / QT)), dim3(128), [&] {
        k_attn_tiled(q.data(), ldq, reinterpret_cast<const __half *>(kc.data()),
                     reinterpret_cast<const __half *>(vc.data()), part.data(), step, T, nh, nkv, hd, window,
                     split_len, max_splits);
    });
    // merged as k_attn_combine merges the splits up to the query's position
    std::vector<double> ref;
    ref_attention(ref, q.data(), ldq, kc.data(), vc.data(), pos, T, nh, nkv, hd, window);
    double worst = 0.0;
    int nan_read = 0;
    for (int t = 0; t < T; t++)
        for (int h = 0; h < nh; h++) {
            const int p = pos + t, n_splits = min(max_splits, p / split_len + 1);
            const float *base = part.data() + ((size_t)t * nh + h) * max_splits * (size_t)(hd + 2);
            float M = -INFINITY;
            for (int s = 0; s < n_splits; s++) {
                nan_read += std::isnan(base[(size_t)s * (hd + 2)]);
                M = fmaxf(M, base[(size_t)s * (hd + 2)]);
            }
            double L = 0.0;
            for (int s = 0; s < n_splits; s++) {
                const float ms = base[(size_t)s * (hd + 2)];
                if (ms != -INFINITY)
                    L += base[(size_t)s * (hd + 2) + 1] * exp((double)ms - M);
            }
            for (int d = 0; d < hd; d++) {
                double a = 0.0;
                for (int s = 0; s < n_splits; s++) {
                    const float ms = base[(size_t)s * (hd + 2)];
                    if (ms != -INFINITY)
                        a += base[(size_t)s * (hd + 2) + 2 + d] * exp((double)ms - M);
                }
                worst = hr_worse(worst, fabs(a / L - ref[((size_t)t * nh + h) * hd + d]));
            }
        }
    CHECK(nan_read == 0, "tiled attention: %d partials the combine reads were never written", nan_read);
    CHECK(worst <= 1e-4 * 2.0, "tiled attention heads %d/%d hd %d pos %d T %d window %d split %d: error %g", nh, nkv,
          hd, pos, T, window, split_len, worst);
    printf("attention %2d/%d heads  hd %3d  pos %4d  T %2d  window %3d  split %4d  max |emu - ref| %.1e\n", nh, nkv,
           hd, pos, T, window, split_len, worst);
}

/* C = op(A) op(B) + beta C, column-major as BLAS defines it, FP16 operands. */
static void
ref_gemm(const BlasArgs &g)
{
    for (int j = 0; j < g.n; j++)
        for (int i = 0; i < g.m; i++) {
            double acc = 0.0;
            for (int l = 0; l < g.k; l++) {
                const __half a = g.trans_a ? g.A[l + (size_t)i * g.lda] : g.A[i + (size_t)l * g.lda];
                const __half b = g.trans_b ? g.B[j + (size_t)l * g.ldb] : g.B[l + (size_t)j * g.ldb];
                acc += (double)__half2float(a) * __half2float(b);
            }
            float &c = g.C[i + (size_t)j * g.ldc];
            c = (float)(acc + (g.beta != 0.0f ? (double)g.beta * c : 0.0));
        }
}

static void
check_blas_route(int N, int K, int group, int T, bool residual, bool with_bias)
{
    Q4 m;
    q4_make(m, N, K, group);
    const int lda = m.kw * 8, ldh = f16_ldw(K), ldo = N + 3;   // out a column slice of a wider row
    std::vector<__half> wh((size_t)N * lda), xh((size_t)T * ldh);
    std::vector<float> x((size_t)T * K), bias((size_t)N), out((size_t)T * ldo), res((size_t)T * ldo);
    fill_uniform(x);
    fill_uniform(bias);
    fill_uniform(res);
    out = res;
    const size_t words = (size_t)N * m.kw;
    hremu::launch(dim3((unsigned)((words + 255) / 256)), dim3(256), [&] { k_dequant_q4(m.d, wh.data()); });
    int bad = 0;
    for (int n = 0; n < N; n++)
        for (int k = 0; k < K; k++) {
            const int g = k / group;
            const float v = f16_val(m.s[(size_t)n * m.ng + g]) *
                            (float)((int)m.q[(size_t)n * K + k] - (int)m.z[(size_t)n * m.ng + g]);
            __half_raw r = wh[(size_t)n * lda + k];
            bad += r.x != f16_bits(v);
        }
    CHECK(bad == 0, "dequant %dx%d g%d: %d weights differ from FP16(s * (q - z))", N, K, group, bad);
    hremu::launch(dim3((unsigned)((ldh + 255) / 256), (unsigned)T), dim3(256),
                  [&] { k_f32_to_f16(x.data(), K, K, ldh, xh.data()); });
    const BlasArgs g = blas_args(m.d, wh.data(), lda, xh.data(), ldh, T, out.data(), ldo,
                                 residual ? EPI_RESIDUAL : EPI_STORE);
    ref_gemm(g);
    if (with_bias)
        hremu::launch(dim3((unsigned)(((size_t)T * N + 255) / 256)), dim3(256),
                      [&] { k_add_bias(out.data(), ldo, T, N, bias.data()); });
    double worst = 0.0, mx = 1.0;
    int outside = 0;
    for (int t = 0; t < T; t++) {
        for (int n = 0; n < N; n++) {
            double a = 0.0;
            for (int k = 0; k < K; k++)
                a += m.w(n, k) * (double)x[(size_t)t * K + k];
            a += (with_bias ? bias[(size_t)n] : 0.0) + (residual ? res[(size_t)t * ldo + n] : 0.0);
            mx = fmax(mx, fabs(a));
            worst = hr_worse(worst, fabs(a - (double)out[(size_t)t * ldo + n]));
        }
        for (int n = N; n < ldo; n++)   // the columns past the slice are untouched
            outside += out[(size_t)t * ldo + n] != res[(size_t)t * ldo + n];
    }
    CHECK(outside == 0, "cuBLAS route: %d values outside the output slice written", outside);
    CHECK(worst / mx <= 4e-3, "cuBLAS route %dx%d g%d T=%d%s%s: error %g of %g", N, K, group, T,
          residual ? " residual" : "", with_bias ? " bias" : "", worst, mx);
    printf("cuBLAS route %4d x %4d  group %3d  T %2d%s%s  max |emu - ref| / max %.1e\n", N, K, group, T,
           residual ? "  residual" : "", with_bias ? "  bias" : "", worst / mx);
}

/* The draw's kernels (cuda-sample.cu) over a row of V logits: the penalty in
 * place (exactly the host's formula), then the passes of topk_passes: the
 * 64 best (value descending, lower id first on ties) exactly, the sum of
 * e^((v - max) * inv_t) within 1e-5, the not-finite flag. */
static void
check_sample(int V, float inv_t, float penalty, int n_seen, bool with_nan)
{
    std::vector<float> row((size_t)V);
    for (auto &v : row)
        v = (float)(int)frand(-400.0f, 400.0f) / 16.0f;   // coarse values: many ties
    if (with_nan)
        row[(size_t)V / 3] = NAN;
    std::vector<int32_t> seen((size_t)n_seen);
    std::vector<int32_t> all((size_t)V);
    std::iota(all.begin(), all.end(), 0);
    std::shuffle(all.begin(), all.end(), rng);
    for (int i = 0; i < n_seen; i++)
        seen[(size_t)i] = all[(size_t)i];
    std::vector<float> ref = row, dev = row;
    for (int i = 0; i < n_seen; i++) {
        float &x = ref[(size_t)seen[(size_t)i]];
        x = x > 0.0f ? x / penalty : x * penalty;
    }
    SampleParams prm = { inv_t, penalty, n_seen, 1 };
    const int g0 = topk_blocks(V);
    std::vector<float> cv0((size_t)g0 * TOPK_K), cv1((size_t)g0 * TOPK_K), stats((size_t)3 * g0);
    std::vector<uint32_t> ci0((size_t)g0 * TOPK_K), ci1((size_t)g0 * TOPK_K);
    float *cand_v[2] = { cv0.data(), cv1.data() };
    uint32_t *cand_i[2] = { ci0.data(), ci1.data() };
    TopkRes res;
    memset(&res, 0xff, sizeof res);
    hremu::launch(dim3(1), dim3(256), [&] { k_penalize(dev.data(), seen.data(), &prm, V); });
    int passes = 0;
    topk_passes(V, dev.data(), cand_v, cand_i,
                [&](int g, const float *vin, const uint32_t *iin, int n, int first, int last, int n_stats,
                    float *vout, uint32_t *iout) {
                    passes++;
                    hremu::launch(dim3((unsigned)g), dim3(TOPK_THREADS), [&] {
                        k_topk(vin, iin, n, first, last, n_stats, vout, iout, stats.data(), &prm, &res);
                    });
                });
    int bad = 0;
    for (int i = 0; i < V; i++)   // the penalised row, bit for bit (NaN stays NaN)
        bad += !(dev[(size_t)i] == ref[(size_t)i] || (std::isnan(dev[(size_t)i]) && std::isnan(ref[(size_t)i])));
    CHECK(bad == 0, "penalty: %d values differ from the host's", bad);
    std::vector<int> order((size_t)V);
    std::iota(order.begin(), order.end(), 0);
    auto key = [&](int i) { return std::isnan(ref[(size_t)i]) ? -INFINITY : ref[(size_t)i]; };
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return key(a) > key(b); });
    const int n = std::min(V, (int)TOPK_K);
    int wrong = 0;
    for (int i = 0; i < n; i++)
        wrong += res.ids[i] != (uint32_t)order[(size_t)i] || res.vals[i] != key(order[(size_t)i]);
    double sum = 0.0;
    const double mx = key(order[0]);
    for (int i = 0; i < V; i++)
        if (!std::isnan(ref[(size_t)i]))
            sum += exp(((double)ref[(size_t)i] - mx) * inv_t);
    CHECK(wrong == 0, "top-k V=%d: %d of the %d candidates differ from the sorted row", V, wrong, n);
    CHECK(res.bad == (with_nan ? 1 : 0), "top-k V=%d: not-finite flag %d", V, res.bad);
    if (inv_t > 0.0f)
        CHECK(fabs(res.sum - sum) <= 1e-5 * sum, "top-k V=%d: sum %g, expected %g", V, (double)res.sum, sum);
    printf("draw      V %6d  inv_t %.2f  penalty %.2f  seen %4d%s  %d passes  candidates %s, sum rel. error %.1e\n", V,
           inv_t, penalty, n_seen, with_nan ? "  NaN" : "", passes, wrong ? "WRONG" : "exact",
           inv_t > 0.0f ? fabs(res.sum - sum) / sum : 0.0);
}

/* k_attn_tc: the tensor-core prefill attention against exact attention over
 * the FP16 cache, within 2e-3 (Q and P rounded to FP16 for the products). */
static void
check_attention_tc(int nh, int nkv, int hd, int pos, int T, int ctx, int window)
{
    const int kv_dim = nkv * hd, ldq = (nh + 2 * nkv) * hd;
    std::vector<uint16_t> kc, vc;
    std::vector<float> q, out((size_t)T * nh * hd, NAN);
    attention_inputs(kc, vc, q, (size_t)ctx * kv_dim, (size_t)T * ldq);
    int step[2] = { pos, T };
    hremu::launch(dim3((unsigned)nh, (unsigned)((T + TC_Q - 1) / TC_Q)), dim3(TC_THREADS), [&] {
        const __half *k = reinterpret_cast<const __half *>(kc.data()), *v = reinterpret_cast<const __half *>(vc.data());
        if (hd == 64)
            k_attn_tc<64>(q.data(), ldq, k, v, out.data(), step, T, nh, nkv, window);
        else
            k_attn_tc<128>(q.data(), ldq, k, v, out.data(), step, T, nh, nkv, window);
    });
    std::vector<double> ref;
    ref_attention(ref, q.data(), ldq, kc.data(), vc.data(), pos, T, nh, nkv, hd, window);
    const double worst = max_error(ref, out);
    CHECK(worst <= 2e-3 * 2.0, "tc attention heads %d/%d hd %d pos %d T %d window %d: error %g", nh, nkv, hd, pos, T,
          window, worst);
    printf("tc attention %2d/%d heads  hd %3d  pos %4d  T %3d  window %3d  max |emu - ref| %.1e\n", nh, nkv, hd, pos, T,
           window, worst);
}

/* The default prefill GEMM (k_gemm_wmma, cuda-kernels.cu), which a device run
 * has proven (../shared/gpu/BASELINE.md): this holds the emulator's WMMA to a
 * kernel known to be right, before any new kernel relies on it. */
static void
check_gemm_wmma(int N, int K, int group, int T, bool residual)
{
    Q4 m;
    q4_make(m, N, K, group);
    std::vector<float> x((size_t)T * K), bias((size_t)N), out((size_t)T * N), res((size_t)T * N);
    fill_uniform(x);
    fill_uniform(bias);
    fill_uniform(res);
    out = res;
    hremu::launch(dim3((unsigned)((N + GN - 1) / GN), (unsigned)((T + GM - 1) / GM)), dim3(128), [&] {
        k_gemm_wmma<LIN_Q4>(m.d, x.data(), K, T, bias.data(), out.data(), N, residual ? EPI_RESIDUAL : EPI_STORE);
    });
    double worst = 0.0, mx = 1.0;
    for (int t = 0; t < T; t++)
        for (int n = 0; n < N; n++) {
            double a = bias[(size_t)n] + (residual ? res[(size_t)t * N + n] : 0.0);
            for (int k = 0; k < K; k++)
                a += m.w(n, k) * x[(size_t)t * K + k];
            mx = fmax(mx, fabs(a));
            worst = hr_worse(worst, fabs(a - (double)out[(size_t)t * N + n]));
        }
    CHECK(worst / mx <= 4e-3, "wmma GEMM %dx%d g%d T=%d: error %g of %g", N, K, group, T, worst, mx);
    printf("wmma GEMM %4d x %4d  group %3d  T %3d%s  max |emu - ref| / max %.1e\n", N, K, group, T,
           residual ? "  residual" : "", worst / mx);
}

/* The default decode GEMV (k_gemv, cuda-kernels.cu: FP32 activations) on the
 * 4-bit layout, each epilogue, against double: so an edit of the default
 * kernels made without a device is checked here too. */
static void
check_default_gemv(int N, int K, int group, int T, Epilogue epi)
{
    Q4 m;
    q4_make(m, epi == EPI_SILU_MUL ? 2 * N : N, K, group);
    std::vector<float> x((size_t)T * K), bias((size_t)N), out((size_t)T * N), res((size_t)T * N);
    fill_uniform(x);
    fill_uniform(bias);
    fill_uniform(res);
    out = res;
    const float *b = epi == EPI_SILU_MUL ? nullptr : bias.data();
    hremu::launch(dim3((unsigned)((N + 3) / 4), (unsigned)T), dim3(128), [&] {
        if (epi == EPI_STORE)
            k_gemv<LIN_Q4, EPI_STORE>(m.d, x.data(), K, b, out.data(), N, N);
        else if (epi == EPI_RESIDUAL)
            k_gemv<LIN_Q4, EPI_RESIDUAL>(m.d, x.data(), K, b, out.data(), N, N);
        else
            k_gemv<LIN_Q4, EPI_SILU_MUL>(m.d, x.data(), K, b, out.data(), N, N);
    });
    double worst = 0.0, mx = 1.0;
    for (int t = 0; t < T; t++)
        for (int r = 0; r < N; r++) {
            double a = 0.0, u = 0.0;
            for (int k = 0; k < K; k++) {
                a += m.w(r, k) * x[(size_t)t * K + k];
                if (epi == EPI_SILU_MUL)
                    u += m.w(r + N, k) * x[(size_t)t * K + k];
            }
            const double ref = epi == EPI_SILU_MUL ? a / (1.0 + exp(-a)) * u
                                                   : a + bias[(size_t)r] + (epi == EPI_RESIDUAL ? res[(size_t)t * N + r] : 0.0);
            mx = fmax(mx, fabs(ref));
            worst = hr_worse(worst, fabs(ref - (double)out[(size_t)t * N + r]));
        }
    CHECK(worst / mx <= 1e-5, "default GEMV %dx%d g%d T=%d epi %d: error %g of %g", N, K, group, T, (int)epi, worst, mx);
    printf("default GEMV %4d x %4d  group %3d  T %d  epi %d  max |emu - ref| / max %.1e\n", N, K, group, T, (int)epi,
           worst / mx);
}

/* The default attention (k_attn_partial + k_attn_combine) and argmax. */
static void
check_default_attention(int nh, int nkv, int hd, int pos, int T, int ctx, int window, int split_len)
{
    const int kv_dim = nkv * hd, ldq = (nh + 2 * nkv) * hd, max_splits = (ctx + split_len - 1) / split_len;
    std::vector<uint16_t> kc, vc;
    std::vector<float> q, part((size_t)T * nh * max_splits * (hd + 2), NAN), out((size_t)T * nh * hd, NAN);
    attention_inputs(kc, vc, q, (size_t)ctx * kv_dim, (size_t)T * ldq);
    int step[2] = { pos, T };
    const __half *hk = reinterpret_cast<const __half *>(kc.data()), *hv = reinterpret_cast<const __half *>(vc.data());
    hremu::launch(dim3((unsigned)nh, (unsigned)max_splits, (unsigned)T), dim3(128), [&] {
        k_attn_partial(q.data(), ldq, hk, hv, part.data(), step, nh, nkv, hd, window, split_len, max_splits);
    });
    hremu::launch(dim3((unsigned)nh, (unsigned)T), dim3(128),
                  [&] { k_attn_combine(part.data(), out.data(), step, nh, hd, split_len, max_splits); });
    std::vector<double> ref;
    ref_attention(ref, q.data(), ldq, kc.data(), vc.data(), pos, T, nh, nkv, hd, window);
    const double worst = max_error(ref, out);
    CHECK(worst <= 2e-4, "default attention %d/%d hd %d pos %d T %d: error %g", nh, nkv, hd, pos, T, worst);
    printf("default attention %2d/%d heads  hd %3d  pos %4d  T %2d  window %2d  max |emu - ref| %.1e\n", nh, nkv, hd,
           pos, T, window, worst);
}

static void
check_default_argmax(int n)
{
    std::vector<float> x((size_t)n);
    fill_uniform(x);
    x[(size_t)n / 3] = 5.0f;   // ties: the first index wins
    x[(size_t)n - 1] = 5.0f;
    int got = -1;
    hremu::launch(dim3(1), dim3(1024), [&] { k_argmax(x.data(), n, &got); });
    CHECK(got == n / 3, "default argmax n=%d: %d, expected %d", n, got, n / 3);
}

/* k_scale_quant (the AWQ search's candidates on the device, HEARTH_AWQ_DEVICE=1)
 * bit for bit against the CPU's arithmetic, cpu-awq.c's hr_awq_fake_quant_row
 * on v = t s: each group's range with 0, its
 * scale rounded up to FP16, its zero point, ((round(v / scale) + z) clamped
 * - z) * scale / s (- t), then FP16 (round to nearest even). Rows include a
 * group of zeros, one with no negative value and one of a single value. */
static void
check_scale_quant(int rows, int K, int group, int bits, bool delta)
{
    std::vector<float> t((size_t)rows * K), s((size_t)K);
    fill_uniform(t);
    for (int k = 0; k < K; k++)
        s[(size_t)k] = std::exp(frand(-4.0f, 4.0f));
    for (int i = 0; i < group; i++) {
        t[(size_t)i] = 0.0f;                                            // row 0, group 0: zeros
        t[(size_t)K + i] = std::fabs(t[(size_t)K + i]);                 // row 1: no negative value
        t[(size_t)2 * K + (K - group) + i] = 0.25f / s[(size_t)(K - group + i)];   // row 2's last: one value
    }
    const int ldw = K + 8;
    std::vector<__half> w((size_t)rows * ldw, __float2half_rn(-7.0f));
    hremu::launch(dim3((unsigned)rows), dim3(128), [&] {
        k_scale_quant(t.data(), K, s.data(), group, (float)((1 << bits) - 1), delta ? 1 : 0, w.data(), ldw);
    });
    int wrong = 0, pad = 0;
    std::vector<float> v((size_t)group);
    for (int n = 0; n < rows; n++) {
        const float *tr = &t[(size_t)n * K];
        for (int g0 = 0; g0 < K; g0 += group) {
            for (int i = 0; i < group; i++)
                v[(size_t)i] = tr[g0 + i] * s[(size_t)(g0 + i)];
            hr_awq_fake_quant_row(v.data(), group, group, bits, v.data());
            for (int i = 0; i < group; i++) {
                float o = v[(size_t)i] / s[(size_t)(g0 + i)];
                if (delta)
                    o = o - tr[g0 + i];
                const __half_raw got = w[(size_t)n * ldw + g0 + i];
                wrong += got.x != f16_bits(o);
            }
        }
        for (int k = K; k < ldw; k++)
            pad += __half2float(w[(size_t)n * ldw + k]) != -7.0f;
    }
    CHECK(wrong == 0, "scale_quant %dx%d g%d %d bits%s: %d of %d values differ from the CPU's", rows, K, group, bits,
          delta ? " delta" : "", wrong, rows * K);
    CHECK(pad == 0, "scale_quant: %d values written past the row", pad);
    printf("scale_quant %3dx%-4d g%-3d %d bits%-6s bit-identical to the CPU's arithmetic: %s\n", rows, K, group, bits,
           delta ? " delta" : "", wrong ? "no" : "yes");
}

/* k_clip_gram + k_clip_search (the AWQ clip search on the device) against
 * the direct form in double: per (row, group) every limit's error sum over
 * t of (x_g . (Q(clamp(w_g, m)) - w_g))^2; the device's limit must be one of
 * the step limits, bit for bit, and its error within 1e-4 of the least
 * (FP32 sums may break a near tie the other way). Rows carry an outlier so
 * that clipping pays; N is not a multiple of the block's 4 rows. */
static void
check_clip_search(int N, int K, int g, int nt, int bits)
{
    const int steps = 10, grid = 20, ng = K / g;
    const float qmax = (float)((1 << bits) - 1);
    std::vector<float> w((size_t)N * K), x((size_t)nt * K), C((size_t)K * g, NAN), lim((size_t)N * ng, NAN);
    fill_uniform(w);
    fill_uniform(x);
    for (int n = 0; n < N; n++)
        w[(size_t)n * K + (size_t)(n * 7 % K)] *= 6.0f;
    hremu::launch(dim3((unsigned)ng, (unsigned)g), dim3(128), [&] { k_clip_gram(x.data(), nt, (size_t)K, g, C.data()); });
    hremu::launch(dim3((unsigned)ng, (unsigned)((N + 3) / 4)), dim3(128), [&] {
        k_clip_search(w.data(), N, K, C.data(), g, qmax, steps, grid, lim.data());
    });
    int argmin_same = 0, not_a_limit = 0, clipped = 0;
    double worst = 0.0;
    std::vector<float> cw((size_t)g);
    for (int n = 0; n < N; n++) {
        for (int gi = 0; gi < ng; gi++) {
            const float *wr = &w[(size_t)n * K + (size_t)gi * g];
            float m0 = 0.0f;
            for (int i = 0; i < g; i++)
                m0 = fmaxf(m0, fabsf(wr[i]));
            double errs[16], best = INFINITY;
            int s_best = 0, s_dev = -1;
            for (int st = 0; st < steps; st++) {
                const float m = m0 * (1.0f - (float)st / (float)grid);
                for (int i = 0; i < g; i++)
                    cw[(size_t)i] = fminf(fmaxf(wr[i], -m), m);
                hr_awq_fake_quant_row(cw.data(), g, g, bits, cw.data());
                double e = 0.0;
                for (int t = 0; t < nt; t++) {
                    double dot = 0.0;
                    for (int i = 0; i < g; i++)
                        dot += (double)x[(size_t)t * K + (size_t)gi * g + i] * ((double)cw[(size_t)i] - wr[i]);
                    e += dot * dot;
                }
                errs[st] = e;
                if (e < best) {
                    best = e;
                    s_best = st;
                }
                if (lim[(size_t)n * ng + gi] == m && s_dev < 0)
                    s_dev = st;
            }
            if (s_dev < 0) {
                not_a_limit++;
                continue;
            }
            argmin_same += s_dev == s_best;
            clipped += s_best > 0;
            worst = hr_worse(worst, (errs[s_dev] - best) / std::max(best, 1e-30));
        }
    }
    CHECK(not_a_limit == 0, "clip search %dx%d g%d: %d limits are none of the steps'", N, K, g, not_a_limit);
    CHECK(worst <= 1e-4, "clip search %dx%d g%d: a chosen limit's error %.2e above the least", N, K, g, worst);
    CHECK(clipped > 0, "clip search %dx%d g%d: no group is clipped (the test shows nothing)", N, K, g);
    printf("clip search %3dx%-4d g%-3d %3d tokens: %d of %d limits the double reference's (%d clipped), worst "
           "error %.1e above the least\n", N, K, g, nt, argmin_same, N * ng, clipped, worst);
}

/* k_col_abs_sum and k_div_cols (the AWQ search's inputs kept on the
 * device): the column sums of |t| in double, rows in order, equal to the
 * host's bit for bit; t / s exact. */
static void
check_col_ops(int rows, int width)
{
    std::vector<float> t((size_t)rows * width), s((size_t)width), t0;
    fill_uniform(t);
    for (int k = 0; k < width; k++)
        s[(size_t)k] = std::exp(frand(-3.0f, 3.0f));
    t0 = t;
    std::vector<double> sum((size_t)width, -1.0);
    hremu::launch(dim3((unsigned)((width + 127) / 128)), dim3(128),
                  [&] { k_col_abs_sum(t.data(), rows, width, sum.data()); });
    hremu::launch(dim3((unsigned)rows), dim3(256), [&] { k_div_cols(t.data(), width, s.data()); });
    int bad_sum = 0, bad_div = 0;
    for (int k = 0; k < width; k++) {
        double ref = 0.0;
        for (int r = 0; r < rows; r++)
            ref += fabsf(t0[(size_t)r * width + k]);
        bad_sum += sum[(size_t)k] != ref;
        for (int r = 0; r < rows; r++)
            bad_div += t[(size_t)r * width + k] != t0[(size_t)r * width + k] / s[(size_t)k];
    }
    CHECK(bad_sum == 0 && bad_div == 0, "col ops %dx%d: %d sums, %d quotients differ", rows, width, bad_sum, bad_div);
    printf("col ops %4dx%-4d column |t| sums and t / s equal to the host's: %s\n", rows, width,
           bad_sum || bad_div ? "no" : "yes");
}

int
main()
{
    check_gemm_wmma(64, 128, 32, 20, false);
    check_gemm_wmma(72, 172, 172, 70, true);      // tails in every direction
    check_attention_tc(4, 2, 64, 0, 40, 64, 0);          // a prompt from the start: two query tiles, a tail
    check_attention_tc(2, 2, 128, 70, 33, 128, 0);       // after 70 cached tokens
    check_attention_tc(4, 1, 64, 10, 50, 64, 20);        // GQA 4, a sliding window
    check_attention_tc(2, 1, 128, 300, 16, 512, 0);
    check_gemv(64, 256, 128, 1, EPI_STORE);
    check_gemv(64, 256, 32, 3, EPI_RESIDUAL);
    check_gemv(40, 172, 172, 1, EPI_STORE);      // one group a row, K not a multiple of 32
    check_gemv(38, 192, 64, 2, EPI_RESIDUAL);    // rows not a multiple of 2 per warp or 8 per block
    check_gemv(24, 384, 96, 1, EPI_STORE);       // group 96: a division, not a shift
    check_gemv(48, 4096, 128, 1, EPI_SILU_MUL);  // 4 blocks of 32 a lane: one batch of 4 loads
    check_gemv(16, 11008, 128, 1, EPI_STORE);    // 344 blocks: batches with a partial tail
    check_gemv(20, 320, 64, 3, EPI_SILU_MUL);
    check_gemv_f16(64, 256, 1, 256, EPI_STORE);
    check_gemv_f16(37, 172, 3, 180, EPI_RESIDUAL);     // K % 8 != 0, x rows wider than K
    check_gemv_f16(16, 4100, 1, 4101, EPI_STORE);      // unaligned x rows: scalar loads
    check_gemv_f16(24, 2048, 2, 2048, EPI_SILU_MUL);
    check_rmsnorm_q8(1, 64);
    check_rmsnorm_q8(3, 172);
    check_rmsnorm_q8(2, 4096);
    check_default_gemv(40, 256, 128, 2, EPI_STORE);
    check_default_gemv(24, 172, 172, 1, EPI_RESIDUAL);
    check_default_gemv(16, 320, 64, 1, EPI_SILU_MUL);
    check_default_attention(8, 4, 8, 40, 3, 64, 0, 16);
    check_default_attention(8, 2, 64, 150, 2, 256, 40, 64);
    check_default_argmax(5000);
    check_scale_quant(5, 256, 32, 4, false);
    check_scale_quant(4, 384, 128, 4, true);
    check_scale_quant(3, 320, 64, 3, false);
    check_scale_quant(6, 80, 16, 4, true);      // groups narrower than a warp
    check_col_ops(300, 200);
    check_col_ops(7, 1030);
    check_clip_search(10, 256, 64, 40, 4);
    check_clip_search(5, 256, 128, 64, 4);
    check_clip_search(3, 96, 32, 17, 3);
    check_clip_search(2, 512, 256, 8, 4);         // the largest group the kernel takes
    check_rope_wide(32, 8, 128, 250, 3, 512, false);
    check_rope_wide(8, 4, 8, 0, 1, 64);
    check_rope_wide(8, 4, 8, 5, 20, 64);
    check_rope_wide(32, 8, 128, 250, 3, 512);
    check_rope_wide(4, 2, 256, 40, 2, 64);
    check_attention(8, 4, 8, 0, 1, 64, 0, 64);           // stories260K's heads, the first position
    check_attention(8, 4, 8, 40, 1, 64, 0, 64);
    check_attention(8, 4, 8, 0, 20, 64, 0, 8);           // prefill, 4 queries a block, splits of 8
    check_attention(8, 4, 8, 300, 12, 512, 0, 64);
    check_attention(8, 8, 64, 200, 1, 256, 0, 64);       // MHA, hd 64
    check_attention(32, 32, 128, 130, 9, 256, 0, 32);    // 8 queries a block, Llama-2's heads
    check_attention(32, 4, 128, 1000, 1, 1024, 0, 64);   // a GQA group of 8
    check_attention(32, 8, 128, 700, 6, 1024, 0, 512);   // splits of 8 tiles, 2 queries a block
    check_attention(4, 2, 256, 70, 5, 128, 0, 32);       // hd 256
    check_attention(8, 2, 64, 150, 3, 256, 40, 64);      // sliding window inside a tile
    check_attention(8, 4, 8, 100, 6, 256, 30, 16);
    check_attention(14, 2, 64, 63, 2, 128, 0, 64);       // G = 7: one query a block
    check_attention(8, 8, 80, 33, 10, 64, 0, 16);        // hd 80: idle threads in P.V
    check_sample(512, 1.0f / 0.7f, 1.3f, 40, false);    // stories260K's vocabulary: one pass
    check_sample(49152, 1.0f / 0.8f, 1.1f, 300, false);  // SmolLM2's: 48 -> 3 -> 1 blocks
    check_sample(5000, 0.0f, 1.0f, 0, false);            // greedy, no penalty: no sum
    check_sample(3000, 1.0f, 1.2f, 10, true);            // a NaN: flagged
    check_sample(40, 1.0f, 1.0f, 0, false);              // fewer logits than candidates
    check_blas_route(40, 256, 128, 9, false, true);
    check_blas_route(24, 172, 172, 16, true, false);   // K not a multiple of 8 or 32: padding never read
    check_blas_route(64, 96, 32, 3, true, true);
    if (failures)
        fprintf(stderr, "%d checks failed\n", failures);
    return failures ? 1 : 0;
}
