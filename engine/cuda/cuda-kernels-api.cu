// cuda-kernels-api.cu — hr-cuda-kernels.h: each kernel on host buffers.
#include "cuda-device.h"
#include "cuda-internal.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

extern "C" {
#include "hr-cuda-kernels.h"
}

using namespace hrcuda;

namespace {

// Device allocations of one call, freed together.
struct Pool {
    void *p[16];
    int n;
    cudaError_t e;
    Pool() : n(0), e(cudaSuccess) {}
    ~Pool()
    {
        for (int i = 0; i < n; i++)
            cudaFree(p[i]);
    }
    template <typename T>
    T *alloc(size_t count)
    {
        void *d = nullptr;
        if (e == cudaSuccess && n < 16)
            e = cudaMalloc(&d, count * sizeof(T) > 0 ? count * sizeof(T) : 1);
        if (e == cudaSuccess && d)
            p[n++] = d;
        return static_cast<T *>(d);
    }
    template <typename T>
    T *upload(const T *h, size_t count)
    {
        T *d = alloc<T>(count);
        if (e == cudaSuccess && h)
            e = cudaMemcpy(d, h, count * sizeof(T), cudaMemcpyHostToDevice);
        return d;
    }
    template <typename T>
    void download(T *h, const T *d, size_t count)
    {
        if (e == cudaSuccess)
            e = cudaMemcpy(h, d, count * sizeof(T), cudaMemcpyDeviceToHost);
    }
};

int
finish(Pool &pool, char *msg, size_t len, const char *what)
{
    if (pool.e == cudaSuccess)
        pool.e = cudaGetLastError();
    if (pool.e == cudaSuccess)
        pool.e = cudaDeviceSynchronize();
    if (pool.e != cudaSuccess) {
        if (msg && len)
            snprintf(msg, len, "%s: %s (CUDA error %d)", what, cudaGetErrorString(pool.e), (int)pool.e);
        cudaGetLastError();
        return (int)pool.e;
    }
    return 0;
}

int
bad(char *msg, size_t len, const char *what)
{
    if (msg && len)
        snprintf(msg, len, "%s", what);
    return -1;
}

// Stack mats into one device matrix in the backend's layout.
bool
make_linear(Pool &pool, const HrCudaHostMat *const *mats, int n, DLinear *d)
{
    memset(d, 0, sizeof *d);
    const HrCudaHostMat &m0 = *mats[0];
    for (int i = 0; i < n; i++) {
        if (mats[i]->awq != m0.awq || mats[i]->cols != m0.cols || (m0.awq && mats[i]->n_groups != m0.n_groups))
            return false;
        d->rows += mats[i]->rows;
    }
    d->cols = m0.cols;
    if (m0.awq) {
        d->kind = LIN_Q4;
        d->kw = q4_kw(d->cols);
        d->ng = m0.n_groups;
        d->group = d->cols / d->ng;
        uint32_t *hq = static_cast<uint32_t *>(malloc(4 * (size_t)d->rows * d->kw));
        uint32_t *hsz = static_cast<uint32_t *>(malloc(4 * (size_t)d->rows * d->ng));
        int off = 0;
        for (int i = 0; i < n; i++) {
            const HrCudaHostMat &m = *mats[i];
            repack_awq_rows(m.qweight, m.qzeros, m.scales, m.rows, m.cols, m.n_groups, 0, m.rows,
                            hq + (size_t)off * d->kw, hsz + (size_t)off * d->ng);
            off += m.rows;
        }
        d->q = pool.upload(hq, (size_t)d->rows * d->kw);
        d->sz = reinterpret_cast<__half2 *>(pool.upload(hsz, (size_t)d->rows * d->ng));
        free(hq);
        free(hsz);
    } else {
        d->kind = LIN_F16;
        d->ldw = f16_ldw(d->cols);
        uint16_t *hw = static_cast<uint16_t *>(malloc(2 * (size_t)d->rows * d->ldw));
        int off = 0;
        for (int i = 0; i < n; i++) {
            const HrCudaHostMat &m = *mats[i];
            convert_rows_f16(m.w, (int)m.dtype, m.cols, d->ldw, 0, m.rows, hw + (size_t)off * d->ldw);
            off += m.rows;
        }
        d->w = reinterpret_cast<__half *>(pool.upload(hw, (size_t)d->rows * d->ldw));
        free(hw);
    }
    return true;
}

// The launcher's path and workspace for an API path (the backend's LinWork
// for one matrix and T tokens); the cuBLAS library closed at the end.
struct ApiWork {
    LinWork wk;
    GemmPath path;
    ApiWork() : path(PATH_AUTO) { memset(&wk, 0, sizeof wk); }
    ~ApiWork() { blas_close(wk.blas); }
    ApiWork(const ApiWork &) = delete;
    ApiWork &operator=(const ApiWork &) = delete;
    // false with msg when the path cannot run here
    bool setup(Pool &pool, HrCudaPath p, const DLinear &d, int T, char *msg, size_t len)
    {
        switch (p) {
        case HR_CUDA_PATH_GEMV: path = PATH_GEMV; break;
        case HR_CUDA_PATH_WMMA: path = PATH_WMMA; break;
        case HR_CUDA_PATH_Q8: path = PATH_GEMV; break;
        case HR_CUDA_PATH_CUBLAS: path = PATH_CUBLAS; break;
        default: path = PATH_AUTO; break;
        }
        wk.fast_gemv = p == HR_CUDA_PATH_Q8;
        if (p == HR_CUDA_PATH_Q8 && d.kind == LIN_Q4) {
            const size_t kp = (size_t)d.kw * 8;
            wk.xq = pool.alloc<int8_t>((size_t)T * kp);
            wk.xs = pool.alloc<float2>((size_t)T * (kp / 32));
            wk.xq_rows = T;
        }
        if (p == HR_CUDA_PATH_CUBLAS) {
            wk.blas = blas_open(msg, len);
            if (!wk.blas)
                return false;
            const size_t ldh = (size_t)f16_ldw(d.cols);
            wk.xh = pool.alloc<__half>((size_t)T * ldh);
            wk.xh_halves = (size_t)T * ldh;
            if (d.kind == LIN_Q4) {
                wk.wh = pool.alloc<__half>((size_t)d.rows * d.kw * 8);
                wk.wh_halves = (size_t)d.rows * d.kw * 8;
            }
        }
        return true;
    }
};

}  // namespace

extern "C" int
hr_cuda_k_linear(const HrCudaHostMat *const *mats, int n, const float *bias, const float *x, int T,
                 const float *residual, float *out, HrCudaPath path, char *msg, size_t msg_len)
{
    if (n < 1 || n > 3 || T < 1)
        return bad(msg, msg_len, "linear: 1..3 matrices and T >= 1");
    Pool pool;
    DLinear d;
    if (!make_linear(pool, mats, n, &d))
        return bad(msg, msg_len, "linear: stacked matrices differ in format or shape");
    const int K = d.cols, R = d.rows;
    float *dx = pool.upload(x, (size_t)T * K);
    float *db = bias ? pool.upload(bias, (size_t)R) : nullptr;
    float *dout = pool.alloc<float>((size_t)T * R);
    ApiWork aw;
    if (!aw.setup(pool, path, d, T, msg, msg_len))
        return -1;
    if (pool.e == cudaSuccess) {
        if (residual)
            pool.e = cudaMemcpy(dout, residual, sizeof(float) * (size_t)T * R, cudaMemcpyHostToDevice);
        if (pool.e == cudaSuccess)
            launch_linear(d, dx, K, T, db, dout, R, residual ? EPI_RESIDUAL : EPI_STORE, aw.path, 0, &aw.wk);
    }
    pool.download(out, dout, (size_t)T * R);
    return finish(pool, msg, msg_len, "linear");
}

extern "C" int
hr_cuda_k_gate_up(const HrCudaHostMat *gate, const HrCudaHostMat *up, const float *x, int T, float *out,
                  HrCudaPath path, char *msg, size_t msg_len)
{
    if (T < 1 || gate->rows != up->rows)
        return bad(msg, msg_len, "gate_up: gate and up need the same shape");
    Pool pool;
    DLinear d;
    const HrCudaHostMat *mats[2] = { gate, up };
    if (!make_linear(pool, mats, 2, &d))
        return bad(msg, msg_len, "gate_up: gate and up differ in format");
    const int K = d.cols, H = gate->rows;
    float *dx = pool.upload(x, (size_t)T * K);
    float *dout = pool.alloc<float>((size_t)T * H);
    float *dgu = pool.alloc<float>((size_t)T * 2 * H);
    ApiWork aw;
    if (!aw.setup(pool, path, d, T, msg, msg_len))
        return -1;
    if (pool.e == cudaSuccess) {
        const bool gemv = path == HR_CUDA_PATH_GEMV || path == HR_CUDA_PATH_Q8 || (path == HR_CUDA_PATH_AUTO && T < 8);
        if (gemv) {
            launch_linear(d, dx, K, T, nullptr, dout, H, EPI_SILU_MUL, PATH_GEMV, 0, &aw.wk);
        } else {
            launch_linear(d, dx, K, T, nullptr, dgu, 2 * H, EPI_STORE, aw.path, 0, &aw.wk);
            launch_silu_mul(dgu, H, T, dout, 0);
        }
    }
    pool.download(out, dout, (size_t)T * H);
    return finish(pool, msg, msg_len, "gate_up");
}

extern "C" int
hr_cuda_k_rmsnorm(float *out, const float *x, const float *w, int T, int dim, float eps, char *msg, size_t msg_len)
{
    Pool pool;
    float *dx = pool.upload(x, (size_t)T * dim);
    float *dw = pool.upload(w, (size_t)dim);
    float *dout = pool.alloc<float>((size_t)T * dim);
    if (pool.e == cudaSuccess)
        launch_rmsnorm(dx, dw, dout, T, dim, eps, 0);
    pool.download(out, dout, (size_t)T * dim);
    return finish(pool, msg, msg_len, "rmsnorm");
}

extern "C" int
hr_cuda_k_rmsnorm_q8(float *out, float *xr, const float *x, const float *w, int T, int dim, float eps, char *msg,
                     size_t msg_len)
{
    Pool pool;
    const int kp = q4_kw(dim) * 8, nb = kp / 32;
    float *dx = pool.upload(x, (size_t)T * dim);
    float *dw = pool.upload(w, (size_t)dim);
    float *dout = pool.alloc<float>((size_t)T * dim);
    int8_t *dq = pool.alloc<int8_t>((size_t)T * kp);
    float2 *ds = pool.alloc<float2>((size_t)T * nb);
    if (pool.e == cudaSuccess)
        launch_rmsnorm_q8(dx, dw, dout, T, dim, eps, kp, dq, ds, 0);
    pool.download(out, dout, (size_t)T * dim);
    std::vector<int8_t> hq((size_t)T * kp);
    std::vector<float2> hs((size_t)T * nb);
    pool.download(hq.data(), dq, hq.size());
    pool.download(hs.data(), ds, hs.size());
    for (int t = 0; pool.e == cudaSuccess && t < T; t++)
        for (int k = 0; k < dim; k++)
            xr[(size_t)t * dim + k] = hs[(size_t)t * nb + k / 32].x *
                                      (float)hq[(size_t)t * kp + (k & ~7) + q8_pos(k & 7)];
    return finish(pool, msg, msg_len, "rmsnorm_q8");
}

extern "C" int
hr_cuda_k_embed(float *out, const void *table, HrDType dtype, int vocab, int dim, const int32_t *ids, int T, char *msg,
                size_t msg_len)
{
    for (int t = 0; t < T; t++)
        if (ids[t] < 0 || ids[t] >= vocab)
            return bad(msg, msg_len, "embed: id outside the vocabulary");
    Pool pool;
    const int ldw = f16_ldw(dim);
    uint16_t *h = static_cast<uint16_t *>(malloc(2 * (size_t)vocab * ldw));
    convert_rows_f16(table, (int)dtype, dim, ldw, 0, vocab, h);
    __half *dt = reinterpret_cast<__half *>(pool.upload(h, (size_t)vocab * ldw));
    free(h);
    int *di = pool.upload(reinterpret_cast<const int *>(ids), (size_t)T);
    float *dout = pool.alloc<float>((size_t)T * dim);
    if (pool.e == cudaSuccess)
        launch_embed(dt, ldw, di, T, dim, dout, 0);
    pool.download(out, dout, (size_t)T * dim);
    return finish(pool, msg, msg_len, "embed");
}

namespace {

int
rope_api(bool wide, float *qkv, uint16_t *k_cache, uint16_t *v_cache, int ctx, const float *inv_freq, int pos, int T,
                  int n_heads, int n_kv, int hd, char *msg, size_t msg_len)
{
    if (pos < 0 || pos + T > ctx)
        return bad(msg, msg_len, "rope_kv: positions outside the cache");
    Pool pool;
    const size_t ld = (size_t)(n_heads + 2 * n_kv) * hd, cache = (size_t)ctx * n_kv * hd;
    int step[2] = { pos, T };
    int *dstep = pool.upload(step, 2);
    float *dqkv = pool.upload(qkv, (size_t)T * ld);
    uint16_t *dk = pool.upload(k_cache, cache), *dv = pool.upload(v_cache, cache);
    float *df = pool.upload(inv_freq, (size_t)hd / 2);
    if (pool.e == cudaSuccess)
        (wide ? launch_rope_kv_wide : launch_rope_kv)(dqkv, reinterpret_cast<__half *>(dk), reinterpret_cast<__half *>(dv), df, dstep, T, n_heads,
                       n_kv, hd, 0);
    pool.download(qkv, dqkv, (size_t)T * ld);
    pool.download(k_cache, dk, cache);
    pool.download(v_cache, dv, cache);
    return finish(pool, msg, msg_len, "rope_kv");
}

}  // namespace

extern "C" int
hr_cuda_k_rope_kv(float *qkv, uint16_t *k_cache, uint16_t *v_cache, int ctx, const float *inv_freq, int pos, int T,
                  int n_heads, int n_kv, int hd, char *msg, size_t msg_len)
{
    return rope_api(false, qkv, k_cache, v_cache, ctx, inv_freq, pos, T, n_heads, n_kv, hd, msg, msg_len);
}

extern "C" int
hr_cuda_k_rope_kv_wide(float *qkv, uint16_t *k_cache, uint16_t *v_cache, int ctx, const float *inv_freq, int pos,
                       int T, int n_heads, int n_kv, int hd, char *msg, size_t msg_len)
{
    return rope_api(true, qkv, k_cache, v_cache, ctx, inv_freq, pos, T, n_heads, n_kv, hd, msg, msg_len);
}

namespace {

// impl 0: default, 1: tiled, 2: tensor cores (prefill; split_len unused)
int
attention_api(int impl, float *out, const float *q, int ldq, const uint16_t *k_cache, const uint16_t *v_cache,
              int ctx, int pos, int T, int n_heads, int n_kv, int hd, int window, int split_len, char *msg,
              size_t msg_len)
{
    if (pos < 0 || pos + T > ctx || split_len < 1 || hd > 256 || n_kv < 1 || n_heads % n_kv ||
        (impl == 1 && !attention_tiled_ok(n_heads, n_kv, hd)) || (impl == 2 && !attention_tc_ok(n_heads, n_kv, hd)))
        return bad(msg, msg_len, "attention: bad arguments (or a shape the tiled kernel does not take)");
    Pool pool;
    const size_t cache = (size_t)ctx * n_kv * hd;
    const int max_splits = (ctx + split_len - 1) / split_len;
    int step[2] = { pos, T };
    int *dstep = pool.upload(step, 2);
    float *dq = pool.upload(q, (size_t)T * ldq);
    uint16_t *dk = pool.upload(k_cache, cache), *dv = pool.upload(v_cache, cache);
    float *dpart = pool.alloc<float>((size_t)T * n_heads * max_splits * (hd + 2));
    float *dout = pool.alloc<float>((size_t)T * n_heads * hd);
    const __half *hk = reinterpret_cast<__half *>(dk), *hv = reinterpret_cast<__half *>(dv);
    if (pool.e == cudaSuccess && impl == 2)
        launch_attention_tc(dq, ldq, hk, hv, dout, dstep, T, n_heads, n_kv, hd, window, 0);
    else if (pool.e == cudaSuccess && impl == 1)
        launch_attention_tiled(dq, ldq, hk, hv, dpart, dout, dstep, T, n_heads, n_kv, hd, window, split_len,
                               max_splits, 0);
    else if (pool.e == cudaSuccess)
        launch_attention(dq, ldq, hk, hv, dpart, dout, dstep, T, n_heads, n_kv, hd, window, split_len, max_splits, 0);
    pool.download(out, dout, (size_t)T * n_heads * hd);
    return finish(pool, msg, msg_len, impl == 2 ? "attention (tensor cores)" : impl == 1 ? "attention (tiled)" : "attention");
}

}  // namespace

extern "C" int
hr_cuda_k_attention(float *out, const float *q, int ldq, const uint16_t *k_cache, const uint16_t *v_cache, int ctx,
                    int pos, int T, int n_heads, int n_kv, int hd, int window, int split_len, char *msg,
                    size_t msg_len)
{
    return attention_api(0, out, q, ldq, k_cache, v_cache, ctx, pos, T, n_heads, n_kv, hd, window, split_len, msg,
                         msg_len);
}

extern "C" int
hr_cuda_k_attention_tiled(float *out, const float *q, int ldq, const uint16_t *k_cache, const uint16_t *v_cache,
                          int ctx, int pos, int T, int n_heads, int n_kv, int hd, int window, int split_len, char *msg,
                          size_t msg_len)
{
    return attention_api(1, out, q, ldq, k_cache, v_cache, ctx, pos, T, n_heads, n_kv, hd, window, split_len, msg,
                         msg_len);
}

extern "C" int
hr_cuda_k_attention_tc(float *out, const float *q, int ldq, const uint16_t *k_cache, const uint16_t *v_cache, int ctx,
                       int pos, int T, int n_heads, int n_kv, int hd, int window, char *msg, size_t msg_len)
{
    return attention_api(2, out, q, ldq, k_cache, v_cache, ctx, pos, T, n_heads, n_kv, hd, window, 1, msg, msg_len);
}

extern "C" int
hr_cuda_k_argmax(const float *x, int n, int *out, char *msg, size_t msg_len)
{
    Pool pool;
    float *dx = pool.upload(x, (size_t)n);
    int *dout = pool.alloc<int>(1);
    if (pool.e == cudaSuccess)
        launch_argmax(dx, n, dout, 0);
    pool.download(out, dout, 1);
    return finish(pool, msg, msg_len, "argmax");
}

extern "C" int
hr_cuda_q4_words(int cols)
{
    return q4_kw(cols);
}

extern "C" void
hr_cuda_awq_repack(const HrCudaHostMat *m, uint32_t *q, uint32_t *sz)
{
    repack_awq_rows(m->qweight, m->qzeros, m->scales, m->rows, m->cols, m->n_groups, 0, m->rows, q, sz);
}

extern "C" void
hr_cuda_awq_repack_layout(const HrCudaHostMat *m, int n_threads, uint32_t *q, uint32_t *sz)
{
    HrThreadPool *pool = hr_pool_new(n_threads);
    repack_awq_rows_layout(pool, m->qweight, m->qzeros, m->scales, m->rows, m->cols, m->n_groups, 0, m->rows, q,
                           sz);
    hr_pool_free(pool);
}

extern "C" int
hr_cuda_q8_gemv_host(const HrCudaHostMat *m, const float *x, float *xq_out, float *out)
{
    if (!m->awq || m->n_groups < 1 || m->cols % m->n_groups != 0)
        return -1;
    const int N = m->rows, K = m->cols, ng = m->n_groups, group = K / ng;
    if (ng > 1 && group % 32 != 0)
        return -1;
    const int kw = q4_kw(K), nb = kw / 4, Kp = kw * 8;
    std::vector<uint32_t> q((size_t)N * kw), sz((size_t)N * ng);
    repack_awq_rows(m->qweight, m->qzeros, m->scales, N, K, ng, 0, N, q.data(), sz.data());
    // x rounded per block of 32 as k_quant_q8 does, in the byte order of cuda-device.h
    std::vector<int8_t> xq((size_t)Kp, 0);
    std::vector<float2> xs((size_t)nb);
    for (int b = 0; b < nb; b++) {
        float amax = 0.0f;
        for (int i = 0; i < 32; i++) {
            const int k = b * 32 + i;
            amax = fmaxf(amax, k < K ? fabsf(x[k]) : 0.0f);
        }
        const float id = amax > 0.0f ? 127.0f / amax : 0.0f, d = amax / 127.0f;
        int sum = 0;
        for (int i = 0; i < 32; i++) {
            const int k = b * 32 + i;
            const int v = (int)nearbyintf((k < K ? x[k] : 0.0f) * id);
            sum += v;
            xq[(size_t)b * 32 + (i & ~7) + q8_pos(i & 7)] = (int8_t)v;
            if (k < K)
                xq_out[k] = d * (float)v;
        }
        xs[b] = make_float2(d, d * (float)sum);
    }
    for (int n = 0; n < N; n++) {
        float acc = 0.0f;
        for (int c = 0; c < nb; c++) {
            uint4 w, xa, xb;
            memcpy(&w, &q[(size_t)n * kw + 4 * (size_t)c], 16);
            memcpy(&xa, &xq[(size_t)c * 32], 16);
            memcpy(&xb, &xq[(size_t)c * 32 + 16], 16);
            const uint32_t e = sz[(size_t)n * ng + (ng == 1 ? 0 : c * 32 / group)];
            __half_raw sr, zr;
            sr.x = (unsigned short)(e & 0xffffu);
            zr.x = (unsigned short)(e >> 16);
            acc += q4q8_block(q4q8_dot32(w, xa, xb), xs[c], __half2float(__half(sr)), __half2float(__half(zr)));
        }
        out[n] = acc;
    }
    return 0;
}

// ---- benchmarks ------------------------------------------------------------------------

namespace {

// splitmix64: reproducible random bits for the benchmark's weights.
uint64_t
bench_bits(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

}  // namespace

extern "C" int
hr_cuda_bench_read_bandwidth(double *bytes_per_s, char *msg, size_t msg_len)
{
    *bytes_per_s = 0.0;
    size_t free_b = 0, total_b = 0;
    cudaError_t e = cudaMemGetInfo(&free_b, &total_b);
    size_t bytes = (size_t)512 << 20;
    if (e == cudaSuccess && bytes > free_b / 2)
        bytes = free_b / 2 / 16 * 16;
    if (e == cudaSuccess && bytes < ((size_t)16 << 20))
        return bad(msg, msg_len, "bandwidth probe: less than 32 MiB of device memory free");
    int dev = 0;
    cudaDeviceProp prop;
    if (e == cudaSuccess)
        e = cudaGetDevice(&dev);
    if (e == cudaSuccess)
        e = cudaGetDeviceProperties(&prop, dev);
    Pool pool;
    pool.e = e;
    uint4 *buf = pool.alloc<uint4>(bytes / 16);
    float *sink = pool.alloc<float>(1);
    if (pool.e == cudaSuccess)
        pool.e = cudaMemset(buf, 1, bytes);
    cudaEvent_t e0 = nullptr, e1 = nullptr;
    if (pool.e == cudaSuccess)
        pool.e = cudaEventCreate(&e0);
    if (pool.e == cudaSuccess)
        pool.e = cudaEventCreate(&e1);
    double best = 0.0;
    for (int pass = 0; pool.e == cudaSuccess && pass < 6; pass++) {
        cudaEventRecord(e0, 0);
        launch_read_sum(buf, bytes / 16, sink, prop.multiProcessorCount * 8, 0);
        cudaEventRecord(e1, 0);
        pool.e = cudaEventSynchronize(e1);
        float ms = 0.0f;
        if (pool.e == cudaSuccess)
            pool.e = cudaEventElapsedTime(&ms, e0, e1);
        if (pool.e == cudaSuccess && pass > 0 && ms > 0.0f)   // pass 0 warms up
            best = fmax(best, (double)bytes / ((double)ms / 1e3));
    }
    if (e0)
        cudaEventDestroy(e0);
    if (e1)
        cudaEventDestroy(e1);
    *bytes_per_s = best;
    return finish(pool, msg, msg_len, "bandwidth probe");
}

extern "C" int
hr_cuda_bench_linear(const HrCudaLinearBench *a, double *sec_per_call, HrCudaLinearBenchInfo *info, char *msg,
                     size_t msg_len)
{
    memset(info, 0, sizeof *info);
    if (a->rows < 1 || a->cols < 1 || a->tokens < 1 || a->reps < 1 || !(a->min_time >= 0))
        return bad(msg, msg_len, "CUDA bench: rows, cols, tokens and reps must be positive");
    if (a->q4 && (a->rows % 8 != 0 || a->group < 2 || a->cols % a->group != 0))
        return bad(msg, msg_len, "CUDA bench: a 4-bit matrix needs rows a multiple of 8 and a group that divides "
                                 "the columns");
    int dev = 0;
    cudaDeviceProp prop;
    cudaError_t e = cudaGetDevice(&dev);
    if (e == cudaSuccess)
        e = cudaGetDeviceProperties(&prop, dev);
    if (e != cudaSuccess) {
        snprintf(msg, msg_len, "CUDA bench: %s (CUDA error %d)", cudaGetErrorString(e), (int)e);
        return (int)e;
    }
    memcpy(info->device, prop.name, sizeof info->device - 1);   // prop.name is NUL-terminated within 256
    info->device[sizeof info->device - 1] = 0;
    const bool gemv = a->path == HR_CUDA_PATH_GEMV || a->path == HR_CUDA_PATH_Q8 ||
                      (a->path == HR_CUDA_PATH_AUTO && a->tokens < 8);
    info->kernel = a->path == HR_CUDA_PATH_CUBLAS ? "cublas"
                   : gemv ? (a->path == HR_CUDA_PATH_Q8 ? (a->q4 ? "gemv-q8" : "gemv-f16b") : "gemv")
                          : "wmma";

    // One copy in the device layout, made on the host from random checkpoint tensors.
    const int N = a->rows, K = a->cols;
    uint64_t rng = 20261205;
    DLinear tmpl;
    memset(&tmpl, 0, sizeof tmpl);
    tmpl.rows = N;
    tmpl.cols = K;
    void *host = nullptr;
    size_t wbytes = 0;
    if (a->q4) {
        const int ng = K / a->group;
        tmpl.kind = LIN_Q4;
        tmpl.kw = q4_kw(K);
        tmpl.ng = ng;
        tmpl.group = a->group;
        uint32_t *qw = static_cast<uint32_t *>(malloc(4 * (size_t)K * (size_t)(N / 8)));
        uint32_t *qz = static_cast<uint32_t *>(malloc(4 * (size_t)ng * (size_t)(N / 8)));
        uint16_t *sc = static_cast<uint16_t *>(malloc(2 * (size_t)ng * (size_t)N));
        for (size_t i = 0; i < (size_t)K * (size_t)(N / 8); i++)
            qw[i] = (uint32_t)bench_bits(&rng);
        for (size_t i = 0; i < (size_t)ng * (size_t)(N / 8); i++)
            qz[i] = (uint32_t)bench_bits(&rng);
        for (size_t i = 0; i < (size_t)ng * (size_t)N; i++)
            sc[i] = (uint16_t)(0x1c00 + bench_bits(&rng) % 0x0400);   // FP16 in [2^-8, 2^-7)
        wbytes = 4 * (size_t)N * (size_t)tmpl.kw + 4 * (size_t)N * (size_t)ng;
        host = malloc(wbytes);
        repack_awq_rows(qw, qz, sc, N, K, ng, 0, N, static_cast<uint32_t *>(host),
                        static_cast<uint32_t *>(host) + (size_t)N * tmpl.kw);
        free(qw);
        free(qz);
        free(sc);
    } else {
        tmpl.kind = LIN_F16;
        tmpl.ldw = f16_ldw(K);
        wbytes = 2 * (size_t)N * (size_t)tmpl.ldw;
        uint16_t *hw = static_cast<uint16_t *>(malloc(wbytes));
        for (size_t i = 0; i < (size_t)N * (size_t)tmpl.ldw; i++)
            hw[i] = (uint16_t)(0x2000 + bench_bits(&rng) % 0x0800) | (bench_bits(&rng) & 0x8000u);
        host = hw;
    }
    info->weight_bytes = wbytes;
    size_t free_b = 0, total_b = 0;
    e = cudaMemGetInfo(&free_b, &total_b);
    size_t copies = a->footprint / wbytes;
    if (copies > free_b / 2 / wbytes)
        copies = free_b / 2 / wbytes;
    if (copies < 1)
        copies = 1;
    if (copies > 1024)
        copies = 1024;
    info->copies = (int)copies;

    std::vector<void *> bufs;
    std::vector<DLinear> ds(copies, tmpl);
    for (size_t c = 0; e == cudaSuccess && c < copies; c++) {
        void *d = nullptr;
        e = cudaMalloc(&d, wbytes);
        if (e != cudaSuccess)
            break;
        bufs.push_back(d);
        e = cudaMemcpy(d, host, wbytes, cudaMemcpyHostToDevice);
        if (a->q4) {
            ds[c].q = static_cast<uint32_t *>(d);
            ds[c].sz = reinterpret_cast<__half2 *>(static_cast<uint32_t *>(d) + (size_t)N * tmpl.kw);
        } else {
            ds[c].w = static_cast<__half *>(d);
        }
    }
    free(host);
    Pool pool;
    pool.e = e;
    float *hx = static_cast<float *>(malloc(sizeof(float) * (size_t)a->tokens * (size_t)K));
    for (size_t i = 0; i < (size_t)a->tokens * (size_t)K; i++)
        hx[i] = (float)((double)(bench_bits(&rng) >> 11) / 9007199254740992.0 * 2.0 - 1.0);
    float *dx = pool.upload(hx, (size_t)a->tokens * (size_t)K);
    free(hx);
    float *dout = pool.alloc<float>((size_t)a->tokens * (size_t)N);
    ApiWork aw;
    if (!aw.setup(pool, a->path, tmpl, a->tokens, msg, msg_len)) {
        for (void *d : bufs)
            cudaFree(d);
        return -1;
    }
    const GemmPath path = aw.path;
    cudaEvent_t e0 = nullptr, e1 = nullptr;
    if (pool.e == cudaSuccess)
        pool.e = cudaEventCreate(&e0);
    if (pool.e == cudaSuccess)
        pool.e = cudaEventCreate(&e1);
    // `calls` launches over the copies between two events; ms out.
    auto timed = [&](long calls, float *ms) {
        cudaEventRecord(e0, 0);
        for (long i = 0; i < calls; i++)
            launch_linear(ds[(size_t)i % copies], dx, K, a->tokens, nullptr, dout, N, EPI_STORE, path, 0, &aw.wk);
        cudaEventRecord(e1, 0);
        pool.e = cudaEventSynchronize(e1);
        if (pool.e == cudaSuccess)
            pool.e = cudaGetLastError();
        if (pool.e == cudaSuccess)
            pool.e = cudaEventElapsedTime(ms, e0, e1);
    };
    // Warm-up over every copy, then size a rep from one timed pass (at least 4 calls).
    long calls = (long)(copies < 4 ? 4 : copies);
    float ms = 0.0f;
    for (int pass = 0; pool.e == cudaSuccess && pass < 2; pass++)
        timed(calls, &ms);
    if (pool.e == cudaSuccess && ms > 0.0f) {
        const double want = a->min_time / ((double)ms / 1e3 / (double)calls);
        if (want > (double)calls)
            calls = want > 1e6 ? 1000000 : (long)want;
    }
    info->calls = calls;
    for (int r = 0; pool.e == cudaSuccess && r < a->reps; r++) {
        timed(calls, &ms);
        sec_per_call[r] = (double)ms / 1e3 / (double)calls;
    }
    if (e0)
        cudaEventDestroy(e0);
    if (e1)
        cudaEventDestroy(e1);
    for (void *d : bufs)
        cudaFree(d);
    return finish(pool, msg, msg_len, "CUDA bench");
}
