// cuda-probe.cu — device discovery and the smallest kernel that proves the
// CUDA build (nvcc, -gencode list, cudart) works end to end.
#include "hr-cuda.h"

#include <cstdio>
#include <cuda_runtime.h>

static int
fail(cudaError_t e, char *msg, size_t len, const char *what)
{
    if (msg && len)
        snprintf(msg, len, "%s: %s (CUDA error %d)", what, cudaGetErrorString(e), (int)e);
    return (int)e;
}

extern "C" int
hr_cuda_device_count(int *count, char *msg, size_t msg_len)
{
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        *count = 0;
        cudaGetLastError();  // clear the sticky error state
        return fail(e, msg, msg_len, "cudaGetDeviceCount");
    }
    *count = n;
    return 0;
}

extern "C" int
hr_cuda_device_describe(int index, char *buf, size_t len)
{
    cudaDeviceProp p;
    cudaError_t e = cudaGetDeviceProperties(&p, index);
    if (e != cudaSuccess)
        return fail(e, buf, len, "cudaGetDeviceProperties");
    snprintf(buf, len, "%s, compute capability %d.%d, %.1f GiB, %d SMs", p.name, p.major, p.minor,
             (double)p.totalGlobalMem / (1024.0 * 1024.0 * 1024.0), p.multiProcessorCount);
    return 0;
}

extern "C" int
hr_cuda_runtime_version(void)
{
    return CUDART_VERSION;
}

__global__ static void
vec_add_kernel(const float *__restrict__ a, const float *__restrict__ b, float *__restrict__ c, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        c[i] = a[i] + b[i];
}

extern "C" int
hr_cuda_vec_add(const float *a, const float *b, float *c, int n, char *msg, size_t msg_len)
{
    size_t bytes = (size_t)n * sizeof(float);
    float *da = nullptr, *db = nullptr, *dc = nullptr;
    cudaError_t e = cudaMalloc(&da, bytes);
    if (e == cudaSuccess) e = cudaMalloc(&db, bytes);
    if (e == cudaSuccess) e = cudaMalloc(&dc, bytes);
    if (e == cudaSuccess) e = cudaMemcpy(da, a, bytes, cudaMemcpyHostToDevice);
    if (e == cudaSuccess) e = cudaMemcpy(db, b, bytes, cudaMemcpyHostToDevice);
    if (e == cudaSuccess) {
        vec_add_kernel<<<(n + 255) / 256, 256>>>(da, db, dc, n);
        e = cudaGetLastError();
    }
    if (e == cudaSuccess) e = cudaMemcpy(c, dc, bytes, cudaMemcpyDeviceToHost);
    cudaFree(da);
    cudaFree(db);
    cudaFree(dc);
    return e == cudaSuccess ? 0 : fail(e, msg, msg_len, "vec_add");
}
