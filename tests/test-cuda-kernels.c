/* Every CUDA kernel against the CPU reference (cpu-kernels.h, or a scalar
 * reference written here where the CPU backend's is static), at several
 * shapes: stories260K's (dim 64, 8 heads / 4 KV heads, head_dim 8, hidden
 * 172, vocab 512), odd ones (K = 172, 100, rows 37), and a larger one.
 * SKIP (77) when there is no CUDA device.
 *
 * Tolerances (max |gpu - cpu| over a result, relative to max(1, max |cpu|)):
 *  - GEMV path, dense FP16 weights and AWQ: 1e-4 (both accumulate in FP32 on
 *    the same weights; only the summation order differs);
 *  - WMMA path: 4e-3 (x is rounded to FP16 in the tile loader, AWQ weights
 *    dequantized to FP16 as s*(q - z));
 *  - RMSNorm, RoPE, attention (FP32 math on FP16 cache values): 1e-4 (RoPE
 *    positions up to 300: sincosf vs sinf/cosf) — the KV cache written by
 *    rope_kv must equal the FP16 rounding of the CPU's rotated k and v
 *    within one FP16 ulp;
 *  - embedding and argmax: exact;
 *  - the opt-in paths: the q8 GEMV at 1e-4 against the CPU on the activations
 *    rounded as the device rounds them (hr_cuda_q8_gemv_host); cuBLAS at 4e-3
 *    (FP16 operands, as WMMA); the tiled attention at 1e-4, the tensor-core
 *    prefill attention at 4e-3; the fused
 *    RMSNorm's rounding exactly d * rne(x / d) per block of 32.
 */
#include <math.h>
#include <string.h>

#include <glib.h>

#include "cpu-kernels.h"
#include "cuda/hr-cuda.h"
#include "cuda/hr-cuda-kernels.h"
#include "hr-half.h"
#include "hr-test.h"

static const int awq_order[8] = { 0, 2, 4, 6, 1, 3, 5, 7 };
static GRand *rng;

static float
frand(float a, float b)
{
    return (float)g_rand_double_range(rng, a, b);
}

static float
rel_err(const float *gpu, const float *cpu, size_t n)
{
    float mx = 1.0f, d = 0.0f;
    for (size_t i = 0; i < n; i++) {
        mx = fmaxf(mx, fabsf(cpu[i]));
        float e = fabsf(gpu[i] - cpu[i]);
        if (!(e <= d))
            d = isnan(e) ? INFINITY : e;
    }
    return d / mx;
}

/* A random matrix in both forms: the host form for the CUDA API and the
 * CPU backend's (HrMat F16, or HrQMat for AWQ). */
typedef struct {
    HrCudaHostMat h;
    HrMat dense;
    HrQMat q;
    uint16_t *w16;
    int32_t *qweight, *qzeros;
    uint16_t *scales;
} TestMat;

static void
mat_make(TestMat *m, bool awq, int N, int K, int group)
{
    memset(m, 0, sizeof *m);
    m->h.awq = awq;
    m->h.rows = N;
    m->h.cols = K;
    if (!awq) {
        m->w16 = g_new(uint16_t, (size_t)N * K);
        for (size_t i = 0; i < (size_t)N * K; i++)
            m->w16[i] = hr_f32_to_f16(frand(-0.5f, 0.5f));
        m->h.w = m->w16;
        m->h.dtype = HR_DTYPE_F16;
        m->dense = (HrMat){ m->w16, HR_DTYPE_F16, N, K };
        return;
    }
    const int ng = K / group, w8 = N / 8;
    m->h.n_groups = ng;
    m->qweight = g_new0(int32_t, (size_t)K * w8);
    m->qzeros = g_new0(int32_t, (size_t)ng * w8);
    m->scales = g_new(uint16_t, (size_t)ng * N);
    m->q.rows = N;
    m->q.cols = K;
    m->q.group = group;
    m->q.n_groups = ng;
    m->q.q = g_new0(uint8_t, (size_t)N * (K / 2));
    m->q.scale = g_new(uint16_t, (size_t)N * ng);
    m->q.zero = g_new(uint8_t, (size_t)N * ng);
    for (int n = 0; n < N; n++) {
        int j = n / 8, i = 0;
        while (awq_order[i] != n % 8)
            i++;
        for (int k = 0; k < K; k++) {
            uint32_t q = (uint32_t)g_rand_int_range(rng, 0, 16);
            m->qweight[(size_t)k * w8 + j] = (int32_t)((uint32_t)m->qweight[(size_t)k * w8 + j] | (q << (4 * i)));
            m->q.q[(size_t)n * (K / 2) + k / 2] |= (uint8_t)(q << ((k & 1) ? 4 : 0));
        }
        for (int g = 0; g < ng; g++) {
            uint32_t z = (uint32_t)g_rand_int_range(rng, 0, 16);
            uint16_t s = hr_f32_to_f16(frand(0.005f, 0.05f));
            m->qzeros[(size_t)g * w8 + j] = (int32_t)((uint32_t)m->qzeros[(size_t)g * w8 + j] | (z << (4 * i)));
            m->scales[(size_t)g * N + n] = s;
            m->q.scale[(size_t)n * ng + g] = s;
            m->q.zero[(size_t)n * ng + g] = (uint8_t)z;
        }
    }
    m->h.qweight = m->qweight;
    m->h.qzeros = m->qzeros;
    m->h.scales = m->scales;
}

static void
mat_free(TestMat *m)
{
    g_free(m->w16);
    g_free(m->qweight);
    g_free(m->qzeros);
    g_free(m->scales);
    g_free(m->q.q);
    g_free(m->q.scale);
    g_free(m->q.zero);
}

static void
cpu_linear(const TestMat *m, float *out, const float *bias, const float *x, int T, const float *res)
{
    if (m->h.awq)
        hr_matmul_q4_impl(HR_MATMUL_SCALAR, NULL, out, &m->q, bias, x, T, res);
    else
        hr_matmul_impl(HR_MATMUL_SCALAR, NULL, out, &m->dense, bias, x, T, res);
}

static float *
rand_vec(size_t n, float a, float b)
{
    float *v = g_new(float, n);
    for (size_t i = 0; i < n; i++)
        v[i] = frand(a, b);
    return v;
}

static const char *path_name[] = { "auto", "gemv", "wmma", "q8", "cublas" };
enum { LAST_PATH = HR_CUDA_PATH_CUBLAS };

static float
path_tol(int path)
{
    return path == HR_CUDA_PATH_GEMV || path == HR_CUDA_PATH_Q8 ? 1e-4f : 4e-3f;
}

/* Whether the API can run the path here (cuBLAS opened at run time: a device
 * machine without libcublas skips that path, and says so once). */
static bool
path_runs(int path)
{
    static int blas = -1;
    if (path != HR_CUDA_PATH_CUBLAS)
        return true;
    if (blas < 0) {
        uint16_t w[8 * 8] = { 0 };
        float x[8] = { 0 }, out[8];
        HrCudaHostMat m = { .rows = 8, .cols = 8, .w = w, .dtype = HR_DTYPE_F16 };
        const HrCudaHostMat *mats[1] = { &m };
        char msg[256] = "";
        const int rc = hr_cuda_k_linear(mats, 1, NULL, x, 1, NULL, out, HR_CUDA_PATH_CUBLAS, msg, sizeof msg);
        blas = !(rc == -1 && strncmp(msg, "cuBLAS", 6) == 0);
        if (!blas)
            printf("the cuBLAS path is not checked: %s\n", msg);
    }
    return blas == 1;
}

/* The activations a path multiplies: x itself; for the int8 GEMV on an AWQ
 * matrix whose groups fall on blocks of 32, x rounded per block of 32 as the
 * device rounds it (hr_cuda_q8_gemv_host), so the comparison stays at the
 * FP32 summation-order tolerance. */
static const float *
path_x(const HrCudaHostMat *m, int path, const float *x, int T, int K, float *buf)
{
    if (path != HR_CUDA_PATH_Q8 || !m->awq)
        return x;
    float *tmp = g_new(float, (size_t)m->rows);
    for (int t = 0; t < T; t++)
        if (hr_cuda_q8_gemv_host(m, x + (size_t)t * K, buf + (size_t)t * K, tmp) != 0) {
            g_free(tmp);
            return x;
        }
    g_free(tmp);
    return buf;
}

/* One linear at one shape, every path, with and without bias/residual. */
static void
check_linear(bool awq, int N, int K, int group, int T)
{
    TestMat m;
    mat_make(&m, awq, N, K, group);
    float *x = rand_vec((size_t)T * K, -1, 1), *bias = rand_vec((size_t)N, -1, 1), *res = rand_vec((size_t)T * N, -1, 1);
    float *ref = g_new(float, (size_t)T * N), *out = g_new(float, (size_t)T * N);
    const HrCudaHostMat *mats[1] = { &m.h };
    char msg[256];
    float *xb = g_new(float, (size_t)T * K);
    for (int path = 1; path <= LAST_PATH; path++) {
        if (!path_runs(path))
            continue;
        const float *xp = path_x(&m.h, path, x, T, K, xb);
        for (int v = 0; v < 2; v++) {
            const float *b = v ? bias : NULL, *r = v ? res : NULL;
            cpu_linear(&m, ref, b, xp, T, r);
            int rc = hr_cuda_k_linear(mats, 1, b, x, T, r, out, (HrCudaPath)path, msg, sizeof msg);
            HR_CHECK(rc == 0, "linear %s: %s", path_name[path], msg);
            float e = rel_err(out, ref, (size_t)T * N), tol = path_tol(path);
            HR_CHECK(e <= tol, "%s linear [%d, %d] g%d T=%d %s%s: error %g > %g", awq ? "awq" : "f16", N, K, group, T,
                     path_name[path], v ? " +bias +residual" : "", (double)e, (double)tol);
        }
    }
    g_free(x);
    g_free(xb);
    g_free(bias);
    g_free(res);
    g_free(ref);
    g_free(out);
    mat_free(&m);
}

/* q/k/v stacked into one launch, with the Qwen2 bias. */
static void
check_qkv(bool awq, int dim, int q_dim, int kv_dim, int group, int T)
{
    TestMat m[3];
    mat_make(&m[0], awq, q_dim, dim, group);
    mat_make(&m[1], awq, kv_dim, dim, group);
    mat_make(&m[2], awq, kv_dim, dim, group);
    const int R = q_dim + 2 * kv_dim;
    float *x = rand_vec((size_t)T * dim, -1, 1), *bias = rand_vec((size_t)R, -1, 1);
    float *ref = g_new(float, (size_t)T * R), *out = g_new(float, (size_t)T * R);
    float *part = g_new(float, (size_t)T * q_dim), *xb = g_new(float, (size_t)T * dim);
    const HrCudaHostMat *mats[3] = { &m[0].h, &m[1].h, &m[2].h };
    char msg[256];
    for (int path = 1; path <= LAST_PATH; path++) {
        if (!path_runs(path))
            continue;
        const float *xp = path_x(&m[0].h, path, x, T, dim, xb);
        int off = 0;
        for (int i = 0; i < 3; i++) {
            cpu_linear(&m[i], part, bias + off, xp, T, NULL);
            for (int t = 0; t < T; t++)
                memcpy(ref + (size_t)t * R + off, part + (size_t)t * m[i].h.rows, sizeof(float) * m[i].h.rows);
            off += m[i].h.rows;
        }
        int rc = hr_cuda_k_linear(mats, 3, bias, x, T, NULL, out, (HrCudaPath)path, msg, sizeof msg);
        HR_CHECK(rc == 0, "qkv %s: %s", path_name[path], msg);
        float e = rel_err(out, ref, (size_t)T * R), tol = path_tol(path);
        HR_CHECK(e <= tol, "%s qkv dim %d T=%d %s: error %g", awq ? "awq" : "f16", dim, T, path_name[path], (double)e);
    }
    for (int i = 0; i < 3; i++)
        mat_free(&m[i]);
    g_free(x);
    g_free(bias);
    g_free(ref);
    g_free(out);
    g_free(part);
    g_free(xb);
}

static void
check_gate_up(bool awq, int dim, int H, int group, int T)
{
    TestMat g, u;
    mat_make(&g, awq, H, dim, group);
    mat_make(&u, awq, H, dim, group);
    float *x = rand_vec((size_t)T * dim, -1, 1);
    float *a = g_new(float, (size_t)T * H), *b = g_new(float, (size_t)T * H), *out = g_new(float, (size_t)T * H);
    float *xb = g_new(float, (size_t)T * dim);
    char msg[256];
    for (int path = 1; path <= LAST_PATH; path++) {
        if (!path_runs(path))
            continue;
        const float *xp = path_x(&g.h, path, x, T, dim, xb);
        cpu_linear(&g, a, NULL, xp, T, NULL);
        cpu_linear(&u, b, NULL, xp, T, NULL);
        for (size_t i = 0; i < (size_t)T * H; i++)
            a[i] = a[i] / (1.0f + expf(-a[i])) * b[i];
        int rc = hr_cuda_k_gate_up(&g.h, &u.h, x, T, out, (HrCudaPath)path, msg, sizeof msg);
        HR_CHECK(rc == 0, "gate_up %s: %s", path_name[path], msg);
        float e = rel_err(out, a, (size_t)T * H), tol = path_tol(path);
        HR_CHECK(e <= tol, "%s gate_up [%d, %d] T=%d %s: error %g", awq ? "awq" : "f16", H, dim, T, path_name[path],
                 (double)e);
    }
    mat_free(&g);
    mat_free(&u);
    g_free(xb);
    g_free(x);
    g_free(a);
    g_free(b);
    g_free(out);
}

static void
check_rmsnorm(int T, int dim)
{
    float *x = rand_vec((size_t)T * dim, -3, 3), *w = rand_vec((size_t)dim, 0.5f, 1.5f);
    float *ref = g_new(float, (size_t)T * dim), *out = g_new(float, (size_t)T * dim);
    for (int t = 0; t < T; t++)
        hr_rmsnorm(ref + (size_t)t * dim, x + (size_t)t * dim, w, dim, 1e-5f);
    char msg[256];
    HR_CHECK(hr_cuda_k_rmsnorm(out, x, w, T, dim, 1e-5f, msg, sizeof msg) == 0, "rmsnorm: %s", msg);
    float e = rel_err(out, ref, (size_t)T * dim);
    HR_CHECK(e <= 1e-5f, "rmsnorm T=%d dim=%d: error %g", T, dim, (double)e);
    /* the q8 path's fused norm: the same output, and its rounding of it per block of 32 */
    float *xr = g_new(float, (size_t)T * dim);
    HR_CHECK(hr_cuda_k_rmsnorm_q8(out, xr, x, w, T, dim, 1e-5f, msg, sizeof msg) == 0, "rmsnorm_q8: %s", msg);
    e = rel_err(out, ref, (size_t)T * dim);
    HR_CHECK(e <= 1e-5f, "rmsnorm_q8 T=%d dim=%d: error %g", T, dim, (double)e);
    int bad = 0;
    for (int t = 0; t < T; t++)
        for (int b = 0; b * 32 < dim; b++) {
            const float *o = out + (size_t)t * dim;
            float amax = 0.0f;
            for (int k = b * 32; k < dim && k < b * 32 + 32; k++)
                amax = fmaxf(amax, fabsf(o[k]));
            const float id = amax > 0.0f ? 127.0f / amax : 0.0f;
            for (int k = b * 32; k < dim && k < b * 32 + 32; k++) {
                const float expect = amax / 127.0f * nearbyintf(o[k] * id);
                bad += fabsf(xr[(size_t)t * dim + k] - expect) > 1e-6f * fmaxf(1.0f, amax);
            }
        }
    HR_CHECK(bad == 0, "rmsnorm_q8 T=%d dim=%d: %d values rounded otherwise than per block of 32", T, dim, bad);
    g_free(xr);
    g_free(x);
    g_free(w);
    g_free(ref);
    g_free(out);
}

static void
check_embed(int vocab, int dim, HrDType dt)
{
    size_t n = (size_t)vocab * dim;
    void *table = g_malloc(n * hr_dtype_size(dt));
    for (size_t i = 0; i < n; i++) {
        float f = frand(-1, 1);
        if (dt == HR_DTYPE_F32)
            ((float *)table)[i] = f;
        else
            ((uint16_t *)table)[i] = dt == HR_DTYPE_F16 ? hr_f32_to_f16(f) : hr_f32_to_bf16(f);
    }
    int32_t ids[7] = { 0, vocab - 1, 3, 3, vocab / 2, 1, 2 };
    float *out = g_new(float, 7 * (size_t)dim), *ref = g_new(float, (size_t)dim);
    char msg[256];
    HR_CHECK(hr_cuda_k_embed(out, table, dt, vocab, dim, ids, 7, msg, sizeof msg) == 0, "embed: %s", msg);
    HrMat m = { table, dt, vocab, dim };
    int bad = 0;
    for (int t = 0; t < 7; t++) {
        hr_mat_row_f32(&m, ids[t], ref, dim);
        for (int i = 0; i < dim; i++)   /* the device table is FP16 */
            bad += out[(size_t)t * dim + i] != hr_f16_to_f32(hr_f32_to_f16(ref[i]));
    }
    HR_CHECK(bad == 0, "embed %s vocab %d dim %d: %d wrong", hr_dtype_name(dt), vocab, dim, bad);
    g_free(table);
    g_free(out);
    g_free(ref);
}

static void
ref_rope(float *v, int n_heads, int hd, int pos, const float *inv_freq)
{
    int half = hd / 2;
    for (int i = 0; i < half; i++) {
        float a = (float)pos * inv_freq[i], cs = cosf(a), sn = sinf(a);
        for (int h = 0; h < n_heads; h++) {
            float *x = v + (size_t)h * hd, x0 = x[i], x1 = x[i + half];
            x[i] = x0 * cs - x1 * sn;
            x[i + half] = x1 * cs + x0 * sn;
        }
    }
}

static void
check_rope_kv(int n_heads, int n_kv, int hd, int pos, int T, int ctx, bool wide)
{
    HrModelConfig cfg = { 0 };
    cfg.head_dim = hd;
    cfg.rope_theta = 10000.0f;
    float *inv = g_new(float, hd / 2);
    hr_rope_inv_freq(&cfg, inv);
    const int q_dim = n_heads * hd, kv_dim = n_kv * hd, ld = q_dim + 2 * kv_dim;
    float *qkv = rand_vec((size_t)T * ld, -2, 2), *ref = g_memdup2(qkv, sizeof(float) * (size_t)T * ld);
    uint16_t *kc = g_new0(uint16_t, (size_t)ctx * kv_dim), *vc = g_new0(uint16_t, (size_t)ctx * kv_dim);
    char msg[256];
    HR_CHECK((wide ? hr_cuda_k_rope_kv_wide : hr_cuda_k_rope_kv)(qkv, kc, vc, ctx, inv, pos, T, n_heads, n_kv, hd, msg,
                                                                 sizeof msg) == 0, "rope: %s", msg);
    int bad_cache = 0;
    for (int t = 0; t < T; t++) {
        float *r = ref + (size_t)t * ld;
        ref_rope(r, n_heads + n_kv, hd, pos + t, inv);   /* k heads follow q heads */
        for (int i = 0; i < kv_dim; i++) {
            float k = hr_f16_to_f32(kc[(size_t)(pos + t) * kv_dim + i]), v = hr_f16_to_f32(vc[(size_t)(pos + t) * kv_dim + i]);
            bad_cache += fabsf(k - r[q_dim + i]) > 1e-3f * fmaxf(1.0f, fabsf(r[q_dim + i]));
            bad_cache += v != hr_f16_to_f32(hr_f32_to_f16(r[q_dim + kv_dim + i]));
        }
    }
    float e = rel_err(qkv, ref, (size_t)T * ld);
    HR_CHECK(e <= 1e-4f, "rope%s hd %d pos %d T %d: error %g", wide ? " (wide)" : "", hd, pos, T, (double)e);
    HR_CHECK(bad_cache == 0, "rope kv cache: %d wrong", bad_cache);
    g_free(inv);
    g_free(qkv);
    g_free(ref);
    g_free(kc);
    g_free(vc);
}

static void
ref_attention(float *out, const float *q, int ldq, const uint16_t *kc, const uint16_t *vc, int pos, int T, int nh,
              int nkv, int hd, int window)
{
    const int kv_dim = nkv * hd, group = nh / nkv;
    for (int t = 0; t < T; t++) {
        int p = pos + t, start = window > 0 && p - window + 1 > 0 ? p - window + 1 : 0;
        float *sc = g_new(float, (size_t)p + 1);
        for (int h = 0; h < nh; h++) {
            const float *qh = q + (size_t)t * ldq + (size_t)h * hd;
            int kvh = h / group;
            float mx = -INFINITY, sum = 0.0f;
            for (int j = start; j <= p; j++) {
                float s = 0.0f;
                for (int d = 0; d < hd; d++)
                    s += qh[d] * hr_f16_to_f32(kc[(size_t)j * kv_dim + (size_t)kvh * hd + d]);
                sc[j] = s / sqrtf((float)hd);
                mx = fmaxf(mx, sc[j]);
            }
            for (int j = start; j <= p; j++)
                sum += sc[j] = expf(sc[j] - mx);
            float *o = out + (size_t)t * nh * hd + (size_t)h * hd;
            for (int d = 0; d < hd; d++) {
                float a = 0.0f;
                for (int j = start; j <= p; j++)
                    a += sc[j] / sum * hr_f16_to_f32(vc[(size_t)j * kv_dim + (size_t)kvh * hd + d]);
                o[d] = a;
            }
        }
        g_free(sc);
    }
}

static void
check_attention(int nh, int nkv, int hd, int pos, int T, int ctx, int window, int split_len)
{
    const int kv_dim = nkv * hd, ldq = (nh + 2 * nkv) * hd;
    uint16_t *kc = g_new(uint16_t, (size_t)ctx * kv_dim), *vc = g_new(uint16_t, (size_t)ctx * kv_dim);
    for (size_t i = 0; i < (size_t)ctx * kv_dim; i++) {
        kc[i] = hr_f32_to_f16(frand(-2, 2));
        vc[i] = hr_f32_to_f16(frand(-2, 2));
    }
    float *q = rand_vec((size_t)T * ldq, -2, 2);
    float *ref = g_new(float, (size_t)T * nh * hd), *out = g_new(float, (size_t)T * nh * hd);
    ref_attention(ref, q, ldq, kc, vc, pos, T, nh, nkv, hd, window);
    char msg[256];
    HR_CHECK(hr_cuda_k_attention(out, q, ldq, kc, vc, ctx, pos, T, nh, nkv, hd, window, split_len, msg, sizeof msg) == 0,
             "attention: %s", msg);
    float e = rel_err(out, ref, (size_t)T * nh * hd);
    HR_CHECK(e <= 1e-4f, "attention heads %d/%d hd %d pos %d T %d window %d split %d: error %g", nh, nkv, hd, pos, T,
             window, split_len, (double)e);
    /* the tiled kernel (HEARTH_CUDA_ATTN=tiled) where it takes the shape */
    if (nh / nkv <= 8 && hd % 8 == 0) {
        memset(out, 0, sizeof(float) * (size_t)T * nh * hd);
        HR_CHECK(hr_cuda_k_attention_tiled(out, q, ldq, kc, vc, ctx, pos, T, nh, nkv, hd, window, split_len, msg,
                                           sizeof msg) == 0, "attention (tiled): %s", msg);
        e = rel_err(out, ref, (size_t)T * nh * hd);
        HR_CHECK(e <= 1e-4f, "tiled attention heads %d/%d hd %d pos %d T %d window %d split %d: error %g", nh, nkv, hd,
                 pos, T, window, split_len, (double)e);
    } else {
        HR_CHECK(hr_cuda_k_attention_tiled(out, q, ldq, kc, vc, ctx, pos, T, nh, nkv, hd, window, split_len, msg,
                                           sizeof msg) == -1, "the tiled attention took heads %d/%d hd %d", nh, nkv, hd);
    }
    /* the tensor-core prefill kernel where it takes the shape (FP16 Q and P: 4e-3) */
    if (hd == 64 || hd == 128) {
        memset(out, 0, sizeof(float) * (size_t)T * nh * hd);
        HR_CHECK(hr_cuda_k_attention_tc(out, q, ldq, kc, vc, ctx, pos, T, nh, nkv, hd, window, msg, sizeof msg) == 0,
                 "attention (tensor cores): %s", msg);
        e = rel_err(out, ref, (size_t)T * nh * hd);
        HR_CHECK(e <= 4e-3f, "tc attention heads %d/%d hd %d pos %d T %d window %d: error %g", nh, nkv, hd, pos, T,
                 window, (double)e);
    }
    g_free(kc);
    g_free(vc);
    g_free(q);
    g_free(ref);
    g_free(out);
}

static void
check_argmax(int n)
{
    float *x = rand_vec((size_t)n, -5, 5);
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best])
            best = i;
    int got = -1;
    char msg[256];
    HR_CHECK(hr_cuda_k_argmax(x, n, &got, msg, sizeof msg) == 0, "argmax: %s", msg);
    HR_CHECK(got == best, "argmax n=%d: %d, expected %d", n, got, best);
    x[n / 3] = 100.0f;   /* ties: the first index */
    x[n - 1] = 100.0f;
    HR_CHECK(hr_cuda_k_argmax(x, n, &got, msg, sizeof msg) == 0, "argmax: %s", msg);
    HR_CHECK(got == n / 3, "argmax tie n=%d: %d, expected %d", n, got, n / 3);
    g_free(x);
}

/* Host only, so it runs without a GPU too: the load-time repack into the
 * interleaved Q4 layout, decoded with the kernels' bit operations (mask
 * 0x000F000F after a shift of 4j, OR 0x6400 into each half, minus 1024),
 * gives back every nibble, scale and zero of the CPU's HrQMat, and the
 * padding past K is zero. */
static void
check_repack_host(int N, int K, int group)
{
    TestMat m;
    mat_make(&m, true, N, K, group);
    const int kw = hr_cuda_q4_words(K), ng = K / group;
    uint32_t *q = g_new(uint32_t, (size_t)N * kw), *sz = g_new(uint32_t, (size_t)N * ng);
    hr_cuda_awq_repack(&m.h, q, sz);
    int bad = 0;
    for (int n = 0; n < N; n++) {
        for (int k = 0; k < kw * 8; k++) {
            uint32_t w = q[(size_t)n * kw + k / 8];
            int e = k % 8, j = e / 2;
            uint32_t bits = ((w >> (4 * j)) & 0x000F000Fu) | 0x64006400u;
            float v = hr_f16_to_f32((uint16_t)(e % 2 == 0 ? bits & 0xffffu : bits >> 16)) - 1024.0f;
            uint8_t byte = k < K ? m.q.q[(size_t)n * (K / 2) + k / 2] : 0;
            float expect = (float)((k & 1) ? byte >> 4 : byte & 15);
            bad += v != expect;
        }
        for (int g = 0; g < ng; g++) {
            uint32_t u = sz[(size_t)n * ng + g];
            float s = hr_f16_to_f32((uint16_t)(u & 0xffffu)), z = hr_f16_to_f32((uint16_t)(u >> 16));
            bad += s != hr_f16_to_f32(m.q.scale[(size_t)n * ng + g]) || z != (float)m.q.zero[(size_t)n * ng + g];
        }
    }
    HR_CHECK(bad == 0, "repack [%d, %d] g%d: %d wrong values", N, K, group, bad);
    g_free(q);
    g_free(sz);
    mat_free(&m);
}

int
main(void)
{
    /* The CPU backend is the oracle here: FP32 activations, as the GPU has
     * (its int8-activation decode path is checked in test-matmul). */
    g_setenv("HEARTH_CPU_EXACT", "1", TRUE);
    rng = g_rand_new_with_seed(8);
    check_repack_host(64, 64, 32);
    check_repack_host(64, 172, 172);
    check_repack_host(24, 96, 32);
    check_repack_host(256, 512, 128);
    check_repack_host(8, 40, 8);

    int count = 0;
    char msg[256] = "";
    if (hr_cuda_device_count(&count, msg, sizeof msg) != 0 || count == 0) {
        g_rand_free(rng);
        if (hr_test_result() != 0)
            return hr_test_result();
        hr_test_skip("no CUDA device (%s); the host-side repack checks passed",
                     msg[0] ? msg : "cudaGetDeviceCount found none");
    }

    static const int Ts[] = { 1, 3, 8, 64, 70 };
    for (size_t i = 0; i < G_N_ELEMENTS(Ts); i++) {
        int T = Ts[i];
        /* stories260K: q/k/v/o [64, 64], gate/up [172, 64], down [64, 172], lm_head [512, 64] */
        check_linear(false, 64, 64, 0, T);
        check_linear(false, 172, 64, 0, T);
        check_linear(false, 64, 172, 0, T);
        check_linear(false, 512, 64, 0, T);
        check_linear(false, 37, 100, 0, T);
        check_linear(true, 64, 64, 32, T);
        check_linear(true, 64, 172, 172, T);   /* per-channel fallback: one group of 172 */
        check_linear(true, 32, 64, 64, T);
        check_linear(true, 256, 512, 128, T);
        check_linear(true, 24, 96, 32, T);
        check_qkv(false, 64, 64, 32, 0, T);
        check_qkv(true, 64, 64, 32, 32, T);
        check_gate_up(false, 64, 172, 0, T);
        check_gate_up(true, 64, 176, 32, T);
    }
    check_linear(true, 1024, 4096, 128, 1);
    check_linear(true, 1024, 4096, 128, 17);
    check_linear(false, 1000, 2048, 0, 1);
    check_linear(false, 1000, 2048, 0, 65);

    check_rmsnorm(1, 64);
    check_rmsnorm(5, 172);
    check_rmsnorm(3, 4096);
    check_embed(512, 64, HR_DTYPE_F16);
    check_embed(300, 37, HR_DTYPE_F32);
    check_embed(100, 64, HR_DTYPE_BF16);

    for (int wide = 0; wide < 2; wide++) {   /* wide: HEARTH_CUDA_ATTN=tiled's kernel */
        check_rope_kv(8, 4, 8, 0, 1, 64, wide);
        check_rope_kv(8, 4, 8, 5, 20, 64, wide);
        check_rope_kv(32, 8, 128, 250, 50, 512, wide);
        check_rope_kv(14, 2, 64, 100, 3, 128, wide);
    }

    /* decode (T = 1) and prefill chunks, single and many splits, GQA, window */
    check_attention(8, 4, 8, 0, 1, 64, 0, 128);
    check_attention(8, 4, 8, 40, 1, 64, 0, 16);
    check_attention(8, 4, 8, 0, 20, 64, 0, 8);
    check_attention(8, 4, 8, 300, 12, 512, 0, 64);
    check_attention(8, 8, 64, 200, 1, 256, 0, 128);
    check_attention(32, 8, 128, 1000, 1, 1024, 0, 128);
    check_attention(4, 2, 256, 70, 5, 128, 0, 32);
    check_attention(8, 4, 8, 100, 6, 256, 30, 16);   /* sliding window */
    /* the tiled kernel's cases: GQA groups of 8, several tiles a split, a window inside a tile */
    check_attention(32, 4, 128, 1000, 1, 1024, 0, 64);
    check_attention(32, 4, 128, 700, 12, 1024, 0, 512);
    check_attention(8, 2, 64, 150, 3, 256, 40, 64);
    check_attention(14, 2, 64, 63, 2, 128, 0, 64);
    check_attention(16, 1, 64, 5, 1, 64, 0, 64);      /* a group of 16: the tiled kernel refuses it */
    /* prefill-sized chunks for the tensor-core kernel */
    check_attention(32, 8, 128, 0, 100, 256, 0, 64);
    check_attention(8, 2, 64, 200, 64, 512, 0, 64);
    check_attention(8, 8, 64, 40, 37, 128, 24, 16);  /* sliding window */

    check_argmax(512);
    check_argmax(32000);
    check_argmax(7);

    g_rand_free(rng);
    return hr_test_result();
}
