// cuda-blas.cu — prefill linears through cuBLAS (issue 18, route (a)): the
// 4-bit matrix is dequantized to an FP16 scratch by one streaming kernel
// (0.5 byte read, 2 written a weight), the activations rounded to FP16, and
// cublasGemmEx multiplies on the tensor cores with FP32 accumulation and an
// FP32 output, the residual added by beta = 1. Opt-in (HEARTH_CUDA_GEMM=cublas)
// until a device run has checked and measured it: written in a session
// without a GPU, compiled only.
//
// libcublas is opened with dlopen, not linked: Hearth runs on machines
// without the CUDA toolkit (cudart is linked statically), and only this
// route needs cuBLAS.
//
//  k_dequant_q4   grid ceil(rows*kw/256), block 256: one 32-bit word (8
//                 inputs) a thread -> 8 halves s*(q - z), one 16-byte store.
//  k_f32_to_f16   grid (ceil(ldh/256), T), block 256; zero past K.
//  k_add_bias     grid ceil(T*N/256), block 256.
#include "cuda-device.h"
#include "cuda-internal.h"

#include <cstdio>
// HEARTH_CUDA_EMU (tests/cuda-emu.h): the four cuBLAS functions are the
// emulator's, a reference GEMM on the host as BLAS defines it.
#include <cublas_api.h>
#include <dlfcn.h>

namespace hrcuda {

typedef cublasStatus_t (*CreateFn)(cublasHandle_t *);
typedef cublasStatus_t (*DestroyFn)(cublasHandle_t);
typedef cublasStatus_t (*SetStreamFn)(cublasHandle_t, cudaStream_t);
typedef cublasStatus_t (*GemmExFn)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int, const void *,
                                   const void *, cudaDataType, int, const void *, cudaDataType, int, const void *,
                                   void *, cudaDataType, int, cublasComputeType_t, cublasGemmAlgo_t);

struct Blas {
    void *lib;
    cublasHandle_t h;
    CreateFn create;
    DestroyFn destroy;
    SetStreamFn set_stream;
    GemmExFn gemm_ex;
};

Blas *
blas_open(char *msg, size_t msg_len)
{
#ifdef HEARTH_CUDA_EMU
    Blas *e = new Blas();
    e->lib = nullptr;
    e->create = hremu::cublas_create;
    e->destroy = hremu::cublas_destroy;
    e->set_stream = hremu::cublas_set_stream;
    e->gemm_ex = hremu::cublas_gemm_ex;
    if (e->create(&e->h) != CUBLAS_STATUS_SUCCESS) {   // (the emulator's fault injection)
        snprintf(msg, msg_len, "cuBLAS: cublasCreate failed");
        e->h = nullptr;
        blas_close(e);
        return nullptr;
    }
    return e;
#endif
    static const char *const names[] = { "libcublas.so.13", "libcublas.so.12", "libcublas.so" };
    void *lib = nullptr;
    for (const char *n : names)
        if ((lib = dlopen(n, RTLD_NOW | RTLD_LOCAL)))
            break;
    if (!lib) {
        const char *why = dlerror();
        snprintf(msg, msg_len, "cuBLAS is not installed (libcublas.so: %s)", why ? why : "not found");
        return nullptr;
    }
    Blas *b = new Blas();
    b->lib = lib;
    b->create = reinterpret_cast<CreateFn>(dlsym(lib, "cublasCreate_v2"));
    b->destroy = reinterpret_cast<DestroyFn>(dlsym(lib, "cublasDestroy_v2"));
    b->set_stream = reinterpret_cast<SetStreamFn>(dlsym(lib, "cublasSetStream_v2"));
    b->gemm_ex = reinterpret_cast<GemmExFn>(dlsym(lib, "cublasGemmEx"));
    cublasStatus_t st = CUBLAS_STATUS_NOT_INITIALIZED;
    if (b->create && b->destroy && b->set_stream && b->gemm_ex)
        st = b->create(&b->h);
    if (st != CUBLAS_STATUS_SUCCESS) {
        snprintf(msg, msg_len, "cuBLAS: %s", b->create ? "cublasCreate failed" : "a function is missing");
        b->h = nullptr;
        blas_close(b);
        return nullptr;
    }
    return b;
}

void
blas_close(Blas *b)
{
    if (!b)
        return;
    if (b->h)
        b->destroy(b->h);
    if (b->lib)
        dlclose(b->lib);
    delete b;
}

__global__ void __launch_bounds__(256)
k_dequant_q4(DLinear w, __half *__restrict__ dst)
{
    const size_t i = (size_t)blockIdx.x * 256 + threadIdx.x;
    if (i >= (size_t)w.rows * w.kw)
        return;
    const int n = (int)(i / w.kw), wd = (int)(i % w.kw), k = wd * 8;
    const int g = w.ng == 1 ? 0 : min(k, w.cols - 1) / w.group;
    __half2 h[4];
    dq8_h(__ldg(w.q + i), w.sz[(size_t)n * w.ng + g], h);
    uint4 u;
    memcpy(&u, h, 16);
    *reinterpret_cast<uint4 *>(dst + (size_t)n * w.kw * 8 + k) = u;
}

__global__ void __launch_bounds__(256)
k_f32_to_f16(const float *__restrict__ x, int ldx, int K, int ldh, __half *__restrict__ xh)
{
    const int k = blockIdx.x * 256 + threadIdx.x, t = blockIdx.y;
    if (k < ldh)
        xh[(size_t)t * ldh + k] = __float2half_rn(k < K ? x[(size_t)t * ldx + k] : 0.0f);
}

__global__ void __launch_bounds__(256)
k_add_bias(float *out, int ldo, int T, int N, const float *__restrict__ bias)
{
    const size_t i = (size_t)blockIdx.x * 256 + threadIdx.x;
    if (i >= (size_t)T * N)
        return;
    out[(i / N) * ldo + i % N] += bias[i % N];
}

// cublasGemmEx's arguments for out [T, N] (row stride ldo) = x W^T: in
// cuBLAS's column-major view, out^T [N, T] (ld ldo) = op(A) op(B) with A the
// row-major W [N, lda] read as [lda, N] and transposed, B the row-major xh
// [T, ldh] read as [ldh, T]; the residual is beta = 1 on out.
BlasArgs
blas_args(const DLinear &w, const __half *W, int lda, const __half *xh, int ldh, int T, float *out, int ldo,
          Epilogue epi)
{
    BlasArgs a;
    a.trans_a = true;
    a.trans_b = false;
    a.m = w.rows;
    a.n = T;
    a.k = w.cols;
    a.A = W;
    a.lda = lda;
    a.B = xh;
    a.ldb = ldh;
    a.beta = epi == EPI_RESIDUAL ? 1.0f : 0.0f;
    a.C = out;
    a.ldc = ldo;
    return a;
}

bool
launch_linear_blas(const DLinear &w, const float *x, int ldx, int T, const float *bias, float *out, int ldo,
                   Epilogue epi, const LinWork &wk, cudaStream_t s)
{
    if (!wk.blas || epi == EPI_SILU_MUL)
        return false;
    const int N = w.rows, K = w.cols, ldh = f16_ldw(K);
    if (!wk.xh || (size_t)T * ldh > wk.xh_halves)
        return false;
    const __half *W;
    int lda;
    if (w.kind == LIN_Q4) {
        lda = w.kw * 8;
        if (!wk.wh || (size_t)N * lda > wk.wh_halves)
            return false;
        const size_t words = (size_t)N * w.kw;
        HR_LAUNCH((unsigned)((words + 255) / 256), 256, s, k_dequant_q4, w, wk.wh);
        W = wk.wh;
    } else {
        W = w.w;
        lda = w.ldw;
    }
    dim3 gx((unsigned)((ldh + 255) / 256), (unsigned)T);
    HR_LAUNCH(gx, 256, s, k_f32_to_f16, x, ldx, K, ldh, wk.xh);
    const BlasArgs g = blas_args(w, W, lda, wk.xh, ldh, T, out, ldo, epi);
    const float alpha = 1.0f;
    Blas *b = wk.blas;
    if (b->set_stream(b->h, s) != CUBLAS_STATUS_SUCCESS ||
        b->gemm_ex(b->h, g.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, g.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, g.m, g.n, g.k,
                   &alpha, g.A, CUDA_R_16F, g.lda, g.B, CUDA_R_16F, g.ldb, &g.beta, g.C, CUDA_R_32F, g.ldc,
                   CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT) != CUBLAS_STATUS_SUCCESS)
        return false;   // nothing written yet: the caller's fallback computes it all
    if (bias) {
        const size_t n = (size_t)T * N;
        HR_LAUNCH((unsigned)((n + 255) / 256), 256, s, k_add_bias, out, ldo, T, N, bias);
    }
    return true;
}

}  // namespace hrcuda
