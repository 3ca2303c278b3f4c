// cuda-sample.cu — the device part of a draw (engine/sampler.h, issue 17) on
// CUDA, as shaders/penalize.comp and shaders/topk.comp do it on Vulkan: the
// repetition penalty in place on the logits row, then the 64 best logits in
// order (value descending, the lower id first among equals) and the softmax's
// denominator, so ~520 bytes cross to the host instead of the row. Opt-in
// (HEARTH_DEVICE_SAMPLING=1) until a device run has checked it: written in a
// session without a GPU; tests/test-cuda-emu.cpp runs both kernels on the host.
//
//  k_penalize  grid 1, block 256: v[t] = v[t] > 0 ? v[t] / p : v[t] * p for
//              the distinct seen ids (no two threads touch one value).
//  k_topk      grid ceil(n / 1024), block 256: a block sorts 1,024 (value,
//              id) pairs in shared memory (bitonic) and keeps its 64 best.
//              The first pass reads the row (ids are the indices) and writes
//              per block its maximum m, sum of e^((v - m) * inv_t) and
//              whether a value was not finite; later passes reduce the
//              previous pass's pairs; the last (one block) writes TopkRes,
//              its sum combining the first pass's blocks.
#include "cuda-device.h"
#include "cuda-internal.h"

#include <cfloat>

namespace hrcuda {

enum { TOPK_THREADS = 256 };
const uint32_t TOPK_NONE = 0xffffffffu;   // padding id: after every real value

__global__ void __launch_bounds__(256)
k_penalize(float *v, const int32_t *__restrict__ seen, const SampleParams *__restrict__ prm, int vocab)
{
    if (!prm->draw || prm->penalty == 1.0f)
        return;
    const float pen = prm->penalty;
    for (int i = threadIdx.x; i < prm->n_seen; i += blockDim.x) {
        const int t = seen[i];
        if (t >= 0 && t < vocab) {
            const float x = v[t];
            v[t] = x > 0.0f ? x / pen : x * pen;
        }
    }
}

__device__ __forceinline__ bool
topk_before(float va, uint32_t ia, float vb, uint32_t ib)
{
    return va > vb || (va == vb && ia < ib);
}

__global__ void __launch_bounds__(TOPK_THREADS)
k_topk(const float *__restrict__ vin, const uint32_t *__restrict__ iin, int n, int first, int last, int n_stats,
       float *__restrict__ vout, uint32_t *__restrict__ iout, float *stats, const SampleParams *__restrict__ prm,
       TopkRes *res)
{
    __shared__ float sv[TOPK_CH];
    __shared__ uint32_t si[TOPK_CH];
    __shared__ float red[TOPK_THREADS];
    __shared__ int sbad;
    if (!prm->draw)
        return;
    const int tid = threadIdx.x, g = blockIdx.x;
    if (tid == 0)
        sbad = 0;
    __syncthreads();
    bool bad = false;
    for (int j = tid; j < TOPK_CH; j += TOPK_THREADS) {
        const int i = g * TOPK_CH + j;
        float v = -INFINITY;
        uint32_t id = TOPK_NONE;
        if (i < n) {
            v = vin[i];
            id = first ? (uint32_t)i : iin[i];
            if (!isfinite(v)) {
                bad = bad || first;
                v = -INFINITY;
            }
        }
        sv[j] = v;
        si[j] = id;
    }
    if (bad)
        atomicOr(&sbad, 1);
    __syncthreads();
    for (int size = 2; size <= TOPK_CH; size <<= 1) {
        for (int stride = size >> 1; stride > 0; stride >>= 1) {
            for (int j = tid; j < TOPK_CH / 2; j += TOPK_THREADS) {
                const int lo = 2 * stride * (j / stride) + (j % stride), hi = lo + stride;
                const float a = sv[lo], b = sv[hi];
                const uint32_t ia = si[lo], ib = si[hi];
                // descending where bit `size` of lo is clear: the whole array at the end
                const bool swap = (lo & size) == 0 ? topk_before(b, ib, a, ia) : topk_before(a, ia, b, ib);
                if (swap) {
                    sv[lo] = b;
                    sv[hi] = a;
                    si[lo] = ib;
                    si[hi] = ia;
                }
            }
            __syncthreads();
        }
    }
    const float inv_t = prm->inv_t;
    if (first) {
        // this block's maximum and its sum of exponentials
        const float m = sv[0];
        float s = 0.0f;
        if (inv_t > 0.0f && si[0] != TOPK_NONE && m > -INFINITY)
            for (int j = tid; j < TOPK_CH; j += TOPK_THREADS)
                if (si[j] != TOPK_NONE && sv[j] > -INFINITY)
                    s += expf((sv[j] - m) * inv_t);
        red[tid] = s;
        __syncthreads();
        for (int r = TOPK_THREADS / 2; r > 0; r >>= 1) {
            if (tid < r)
                red[tid] += red[tid + r];
            __syncthreads();
        }
        if (tid == 0) {
            stats[3 * g] = m;
            stats[3 * g + 1] = red[0];
            stats[3 * g + 2] = (float)sbad;
        }
    }
    if (!last) {
        for (int j = tid; j < TOPK_K; j += TOPK_THREADS) {
            vout[g * TOPK_K + j] = sv[j];
            iout[g * TOPK_K + j] = si[j];
        }
        return;
    }
    // the final pass: this block holds the 64 best of the whole row
    __syncthreads();   // the first pass's stats of this same block (vocab <= 1024)
    for (int j = tid; j < TOPK_K; j += TOPK_THREADS) {
        res->ids[j] = si[j];
        res->vals[j] = sv[j];
    }
    if (tid == 0) {
        const float mx = sv[0];
        float sum = 0.0f;
        int nb = 0;
        for (int q = 0; q < n_stats; q++) {
            const float mg = stats[3 * q], sg = stats[3 * q + 1];
            if (sg > 0.0f)
                sum += sg * expf((mg - mx) * inv_t);
            if (stats[3 * q + 2] != 0.0f)
                nb = 1;
        }
        res->max = mx;
        res->sum = sum;
        res->bad = nb;
    }
}

int
topk_blocks(int vocab)
{
    return (vocab + TOPK_CH - 1) / TOPK_CH;
}

// The passes over a row of vocab logits: launch(blocks, vin, iin, n, first,
// last, n_stats, vout, iout) for each, the candidates ping-ponging between
// the two buffers (the first pass's blocks hold the most).
template <typename Launch>
void
topk_passes(int vocab, const float *logits, float *cand_v[2], uint32_t *cand_i[2], Launch launch)
{
    const int g0 = topk_blocks(vocab);
    const float *vin = logits;
    const uint32_t *iin = nullptr;
    int n = vocab, g = g0, first = 1;
    for (int level = 0;; level++) {
        const int last = g == 1;
        launch(g, vin, iin, n, first, last, g0, cand_v[level & 1], cand_i[level & 1]);
        if (last)
            break;
        vin = cand_v[level & 1];
        iin = cand_i[level & 1];
        n = g * TOPK_K;
        g = topk_blocks(n);
        first = 0;
    }
}

void
launch_sample(float *logits, int vocab, const int32_t *seen, const SampleParams *prm, float *cand_v[2],
              uint32_t *cand_i[2], float *stats, TopkRes *res, cudaStream_t s)
{
    HR_LAUNCH(1, 256, s, k_penalize, logits, seen, prm, vocab);
    topk_passes(vocab, logits, cand_v, cand_i,
                [&](int g, const float *vin, const uint32_t *iin, int n, int first, int last, int n_stats,
                    float *vout, uint32_t *iout) {
                    HR_LAUNCH(g, TOPK_THREADS, s, k_topk, vin, iin, n, first, last, n_stats, vout, iout, stats, prm, res);
                });
}

}  // namespace hrcuda
