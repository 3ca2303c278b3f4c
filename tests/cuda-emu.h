/* cuda-emu.h — just enough of CUDA's execution model on the host to run the
 * CUDA backend's kernel source (tests/test-cuda-emu.cpp), and with
 * tests/cuda-emu-runtime.cpp the backend itself (test-cuda-emu-model). A
 * launch runs the grid's blocks one after another; the block's threads are
 * fibers on the launching thread, each with its own stack, switched at
 * barriers: __syncthreads is a barrier over the block and a warp shuffle is
 * an exchange through memory between the 32 threads of a warp, with a warp
 * barrier on each side; __shared__ variables are static (one block at a
 * time uses them). The order of the threads between barriers and of the
 * blocks is HEARTH_CUDA_EMU_ORDER's (forward, reverse, shuffle:SEED; see
 * cuda-emu-runtime.cpp), so a barrier a kernel lacks shows in one order or
 * another. The kernels' own code runs unchanged: their indexing, masks,
 * byte orders and reductions are exercised, on host memory, under the
 * sanitizers of the build. What it cannot show: speed, the memory model of
 * a real GPU beyond those orders (a write another thread sees late, torn or
 * out of order), and warps that diverge around a shuffle (every kernel here
 * shuffles with all 32 lanes).
 *
 * Include before the kernel source, with HEARTH_CUDA_EMU defined (the .cu
 * files leave out their <<<...>>> launchers then). */
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <type_traits>
#include <vector>

#include <cuda_fp16.h>
#include <cuda_runtime.h>

/* __shared__ variables: statics in a section of their own, whose bytes the
 * runtime sets to 0xFF (NaN as float and half, -1 as int) before each block
 * runs, as a real block finds its shared memory in no known state: a kernel
 * that reads what no thread of the block wrote sees NaNs, not the last
 * block's values that happen to be right. */
#undef __shared__
#define __shared__ static __attribute__((section("hremu_shared")))
#define __launch_bounds__(...)

using std::max;
using std::min;

namespace hremu {
/* The emulated thread running now, and the launch's shape (one launch at a
 * time; every emulated thread runs as a fiber on the launching thread). */
inline uint3 t_thread, t_block;
inline dim3 g_block_dim, g_grid_dim;
inline int t_warp;
/* A warp's values in a shuffle, by thread, in two sets used in turn: a
 * thread writes the set of its exchange's parity, the warp barrier makes
 * every write visible, and the next exchange writes the other set, so a set
 * is not overwritten before the whole warp has passed the barrier after it. */
inline uint32_t g_lane_v[2][1024];
inline uint8_t g_lane_parity[1024], g_mma_parity[1024];

/* Fiber barriers (tests/cuda-emu-runtime.cpp): over the block, and over the
 * current thread's warp. */
void block_barrier();
void warp_barrier();

inline uint32_t
exchange(uint32_t v, int src_lane)
{
    const int tid = (int)t_thread.x, base = t_warp * 32;
    const int set = g_lane_parity[tid];
    g_lane_parity[tid] = (uint8_t)(set ^ 1);
    g_lane_v[set][tid] = v;
    warp_barrier();
    return g_lane_v[set][base + (src_lane & 31)];
}
}  // namespace hremu

#undef threadIdx
#undef blockIdx
#undef blockDim
#undef gridDim
#define threadIdx (hremu::t_thread)
#define blockIdx (hremu::t_block)
#define blockDim (hremu::g_block_dim)
#define gridDim (hremu::g_grid_dim)

inline void
__syncthreads()
{
    hremu::block_barrier();
}

inline float
__shfl_xor_sync(unsigned, float v, int o)
{
    uint32_t u;
    memcpy(&u, &v, 4);
    u = hremu::exchange(u, (int)(threadIdx.x & 31) ^ o);
    float r;
    memcpy(&r, &u, 4);
    return r;
}

inline int
__shfl_xor_sync(unsigned, int v, int o)
{
    return (int)hremu::exchange((uint32_t)v, (int)(threadIdx.x & 31) ^ o);
}

inline int
atomicOr(int *p, int v)
{
    return __atomic_fetch_or(p, v, __ATOMIC_SEQ_CST);
}

template <typename T>
inline T
__ldg(const T *p)
{
    return *p;
}

inline int
__float2int_rn(float x)
{
    return (int)nearbyintf(x);
}

inline void
__syncwarp(unsigned = 0xffffffffu)
{
    hremu::warp_barrier();
}

/* nvcuda::wmma for kernels that use it through the API only (fill, load,
 * store, mma; never a fragment's elements, whose mapping to threads is
 * unspecified): every thread of the warp holds the whole tile, mma_sync
 * multiplies it in FP32 once for the warp (products of halves are exact
 * there), and a store is written once by lane 0, then the warp waits for it. */
namespace nvcuda {
namespace wmma {
struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
enum layout_t { mem_row_major, mem_col_major };

template <typename Use, int M, int N, int K, typename T, typename Layout = void>
struct fragment {
    static constexpr int R = std::is_same<Use, matrix_b>::value ? K : M;
    static constexpr int C = std::is_same<Use, matrix_a>::value ? K : N;
    float v[R][C];
};

template <typename Use, int M, int N, int K, typename T, typename L>
inline void
fill_fragment(fragment<Use, M, N, K, T, L> &f, float value)
{
    for (int i = 0; i < f.R; i++)
        for (int j = 0; j < f.C; j++)
            f.v[i][j] = value;
}

inline float
emu_f(const __half &h)
{
    return __half2float(h);
}

inline float
emu_f(float x)
{
    return x;
}

template <typename Use, int M, int N, int K, typename T, typename L, typename P>
inline void
load_matrix_sync(fragment<Use, M, N, K, T, L> &f, const P *p, unsigned ldm)
{
    // matrix_a [M][K], matrix_b [K][N]: element (r, c) at p[r*ldm + c] row-major, p[c*ldm + r] col-major
    const bool row = std::is_same<L, row_major>::value;
    for (int r = 0; r < f.R; r++)
        for (int c = 0; c < f.C; c++)
            f.v[r][c] = emu_f(row ? p[(size_t)r * ldm + c] : p[(size_t)c * ldm + r]);
}

template <int M, int N, int K, typename T>
inline void
load_matrix_sync(fragment<accumulator, M, N, K, T> &f, const float *p, unsigned ldm, layout_t l)
{
    for (int r = 0; r < M; r++)
        for (int c = 0; c < N; c++)
            f.v[r][c] = l == mem_row_major ? p[(size_t)r * ldm + c] : p[(size_t)c * ldm + r];
}

template <int M, int N, int K, typename T>
inline void
store_matrix_sync(float *p, const fragment<accumulator, M, N, K, T> &f, unsigned ldm, layout_t l)
{
    if ((hremu::t_thread.x & 31) == 0)
        for (int r = 0; r < M; r++)
            for (int c = 0; c < N; c++)
                (l == mem_row_major ? p[(size_t)r * ldm + c] : p[(size_t)c * ldm + r]) = f.v[r][c];
    hremu::warp_barrier();
}

template <int M, int N, int K, typename TA, typename LA, typename TB, typename LB, typename TC>
inline void
mma_sync(fragment<accumulator, M, N, K, TC> &d, const fragment<matrix_a, M, N, K, TA, LA> &a,
         const fragment<matrix_b, M, N, K, TB, LB> &b, const fragment<accumulator, M, N, K, TC> &c)
{
    /* The warp's fragments are equal (warp-collective loads), so lane 0
     * multiplies and the warp copies its product, through one of two buffers
     * used in turn (as the shuffles' exchange). */
    static_assert(M * N <= 256, "fragment size");
    static float out[2][32][256];
    const int tid = (int)hremu::t_thread.x, set = hremu::g_mma_parity[tid];
    hremu::g_mma_parity[tid] = (uint8_t)(set ^ 1);
    float *o = out[set][hremu::t_warp];
    if ((tid & 31) == 0)
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) {
                float acc = c.v[i][j];
                for (int k = 0; k < K; k++)
                    acc += a.v[i][k] * b.v[k][j];
                o[i * N + j] = acc;
            }
    hremu::warp_barrier();
    memcpy(d.v, o, sizeof(float) * M * N);
}
}  // namespace wmma
}  // namespace nvcuda

namespace hremu {
/* Runs kernel() as grid x block (block.x a multiple of 32, block.y = block.z
 * = 1), its threads as fibers on the calling thread
 * (tests/cuda-emu-runtime.cpp); returns when every block has run. */
void launch(dim3 grid, dim3 block, const std::function<void()> &kernel);
/* A launch on a stream: run now, or recorded into the graph the stream is
 * capturing (HR_LAUNCH in engine/cuda/cuda-internal.h). */
void launch_on(cudaStream_t s, dim3 grid, dim3 block, std::function<void()> kernel);

/* The emulated device's memory (cudaMemGetInfo; cudaMalloc fails with
 * cudaErrorMemoryAllocation past it). */
struct Stats {
    size_t total_bytes;       /* HEARTH_CUDA_EMU_MIB, default 2048 */
    size_t allocated_bytes;
};
Stats &stats();
}  // namespace hremu

/* cuBLAS's four functions that cuda-blas.cu opens, as a reference on the host
 * (column-major, FP16 A and B, FP32 C, FP32 compute). */
#include <cublas_api.h>
namespace hremu {
cublasStatus_t cublas_create(cublasHandle_t *h);
cublasStatus_t cublas_destroy(cublasHandle_t h);
cublasStatus_t cublas_set_stream(cublasHandle_t h, cudaStream_t s);
cublasStatus_t cublas_gemm_ex(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                              const void *alpha, const void *A, cudaDataType at, int lda, const void *B,
                              cudaDataType bt, int ldb, const void *beta, void *C, cudaDataType ct, int ldc,
                              cublasComputeType_t comp, cublasGemmAlgo_t algo);
}  // namespace hremu
