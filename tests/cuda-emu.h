/* cuda-emu.h — just enough of CUDA's execution model on the host to run the
 * CUDA backend's kernel source (tests/test-cuda-emu.cpp). A launch runs the
 * grid's blocks one after another; the block's threads are real threads, so
 * __syncthreads is a barrier over the block and a warp shuffle is an
 * exchange through memory between the 32 threads of a warp (both with
 * pthread barriers); __shared__ variables are static (one block at a time
 * uses them). The kernels' own code runs unchanged: their indexing, masks,
 * byte orders and reductions are exercised, on host memory, under the
 * sanitizers of the build. What it cannot show: speed, the memory model of
 * a real GPU (races the barriers hide), and warps that diverge around a
 * shuffle (every kernel here shuffles with all 32 lanes).
 *
 * Include before the kernel source, with HEARTH_CUDA_EMU defined (the .cu
 * files leave out their <<<...>>> launchers then). */
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <pthread.h>
#include <thread>
#include <type_traits>
#include <vector>

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#undef __shared__
#define __shared__ static
#define __launch_bounds__(...)

using std::max;
using std::min;

namespace hremu {
inline thread_local uint3 t_thread, t_block;
inline dim3 g_block_dim, g_grid_dim;
inline thread_local int t_warp;
struct Warp {
    pthread_barrier_t bar;
    uint32_t v[32];
};
inline std::vector<Warp> *g_warps;
inline pthread_barrier_t g_block_bar;

inline uint32_t
exchange(uint32_t v, int src_lane)
{
    Warp &w = (*g_warps)[(size_t)t_warp];
    const int lane = (int)(t_thread.x & 31);
    w.v[lane] = v;
    pthread_barrier_wait(&w.bar);
    const uint32_t r = w.v[src_lane & 31];
    pthread_barrier_wait(&w.bar);
    return r;
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
    pthread_barrier_wait(&hremu::g_block_bar);
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

namespace hremu {
inline void
warp_sync()
{
    pthread_barrier_wait(&(*g_warps)[(size_t)t_warp].bar);
}
}  // namespace hremu

inline void
__syncwarp(unsigned = 0xffffffffu)
{
    hremu::warp_sync();
}

/* nvcuda::wmma for kernels that use it through the API only (fill, load,
 * store, mma; never a fragment's elements, whose mapping to threads is
 * unspecified): every thread of the warp holds the whole tile, mma_sync
 * multiplies it in FP32 (products of halves are exact there), and a store is
 * written once by lane 0, then the warp waits for it. */
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
    hremu::warp_sync();
}

template <int M, int N, int K, typename TA, typename LA, typename TB, typename LB, typename TC>
inline void
mma_sync(fragment<accumulator, M, N, K, TC> &d, const fragment<matrix_a, M, N, K, TA, LA> &a,
         const fragment<matrix_b, M, N, K, TB, LB> &b, const fragment<accumulator, M, N, K, TC> &c)
{
    float out[M][N];
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            float acc = c.v[i][j];
            for (int k = 0; k < K; k++)
                acc += a.v[i][k] * b.v[k][j];
            out[i][j] = acc;
        }
    memcpy(d.v, out, sizeof out);
}
}  // namespace wmma
}  // namespace nvcuda

namespace hremu {
/* Runs kernel() as grid x block; block.x a multiple of 32, block.y = block.z = 1. */
inline void
launch(dim3 grid, dim3 block, const std::function<void()> &kernel)
{
    const int nt = (int)block.x, nw = (nt + 31) / 32;
    g_block_dim = block;
    g_grid_dim = grid;
    std::vector<Warp> warps((size_t)nw);
    for (auto &w : warps)
        pthread_barrier_init(&w.bar, nullptr, 32);
    g_warps = &warps;
    pthread_barrier_init(&g_block_bar, nullptr, (unsigned)nt);
    std::vector<std::thread> threads;
    for (int tid = 0; tid < nt; tid++)
        threads.emplace_back([&, tid] {
            t_thread = make_uint3((unsigned)tid, 0, 0);
            t_warp = tid / 32;
            for (unsigned z = 0; z < grid.z; z++)
                for (unsigned y = 0; y < grid.y; y++)
                    for (unsigned x = 0; x < grid.x; x++) {
                        t_block = make_uint3(x, y, z);
                        kernel();
                        pthread_barrier_wait(&g_block_bar);   // the next block reuses __shared__
                    }
        });
    for (auto &t : threads)
        t.join();
    pthread_barrier_destroy(&g_block_bar);
    for (auto &w : warps)
        pthread_barrier_destroy(&w.bar);
    g_warps = nullptr;
}
}  // namespace hremu
