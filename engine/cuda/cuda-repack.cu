// cuda-repack.cu — host-side conversion of checkpoint tensors into the
// device layouts described in cuda-internal.h (runs once at load, into the
// pinned staging buffer).
#include "cuda-internal.h"

#include <cstring>

extern "C" {
#include "awq-layout.h"
#include "cpu-threads.h"
#include "gguf-blocks.h"
#include "gguf.h"
#include "hr-half.h"
#include "safetensors.h"
}

namespace hrcuda {

// AutoAWQ stores output column c of a group of 8 in nibble kAwqNibble[c]
// (its order is 0,2,4,6,1,3,5,7: nibble i holds column order[i]).
static const int kAwqNibble[8] = { 0, 4, 1, 5, 2, 6, 3, 7 };
// Our word: input e (0..7) of the 8 goes to slot kSlot[e].
static const int kSlot[8] = { 0, 4, 1, 5, 2, 6, 3, 7 };

static inline uint32_t
rd32(const void *base, size_t i)
{
    uint32_t v;
    memcpy(&v, static_cast<const char *>(base) + 4 * i, 4);
    return v;
}

static inline uint16_t
rd16(const void *base, size_t i)
{
    uint16_t v;
    memcpy(&v, static_cast<const char *>(base) + 2 * i, 2);
    return v;
}

void
repack_awq_rows(const void *qweight, const void *qzeros, const void *scales, int N, int K, int ng, int r0, int r1,
                uint32_t *q, uint32_t *sz)
{
    const int kw = q4_kw(K);
    const size_t w8 = (size_t)(N / 8);
    const int n_rows = r1 - r0;
    memset(q, 0, sizeof(uint32_t) * (size_t)n_rows * (size_t)kw);
    // k outer so the reads of qweight row k are sequential over the columns.
    for (int k = 0; k < K; k++) {
        const int word = k / 8, shift = 4 * kSlot[k % 8];
        for (int j = r0 / 8; j < r1 / 8; j++) {
            const uint32_t p = rd32(qweight, (size_t)k * w8 + (size_t)j);
            for (int c = 0; c < 8; c++) {
                const uint32_t nib = (p >> (4 * kAwqNibble[c])) & 15u;
                const size_t n = (size_t)j * 8 + (size_t)c - (size_t)r0;
                q[n * (size_t)kw + (size_t)word] |= nib << shift;
            }
        }
    }
    for (int g = 0; g < ng; g++) {
        for (int j = r0 / 8; j < r1 / 8; j++) {
            const uint32_t p = rd32(qzeros, (size_t)g * w8 + (size_t)j);
            for (int c = 0; c < 8; c++) {
                const int n = j * 8 + c;
                const uint16_t s = rd16(scales, (size_t)g * (size_t)N + (size_t)n);
                const uint16_t z = hr_f32_to_f16((float)((p >> (4 * kAwqNibble[c])) & 15u));
                sz[(size_t)(n - r0) * (size_t)ng + (size_t)g] = (uint32_t)s | ((uint32_t)z << 16);
            }
        }
    }
}

namespace {

struct LayoutJob {
    const void *qweight, *qzeros, *scales;
    int N, K, ng, r0, r1;
    uint32_t *q, *sz;
};

enum { LAYOUT_ROWS = 64 };   // rows per work item (a multiple of 8)

void
layout_range(void *arg, int start, int end)
{
    const LayoutJob *J = static_cast<const LayoutJob *>(arg);
    const int a = J->r0 + LAYOUT_ROWS * start;
    const int b = J->r0 + LAYOUT_ROWS * end < J->r1 ? J->r0 + LAYOUT_ROWS * end : J->r1;
    const int kw = q4_kw(J->K), used = (J->K + 7) / 8;
    uint32_t *q = J->q + (size_t)(a - J->r0) * (size_t)kw;
    for (int r = 0; r < b - a; r++)   // the padding words past the inputs
        memset(q + (size_t)r * (size_t)kw + used, 0, sizeof(uint32_t) * (size_t)(kw - used));
    hr_awq_unpack_rows(J->qweight, J->N, J->K, a, b, kSlot, reinterpret_cast<uint8_t *>(q), 4 * (size_t)kw);
    const size_t n = (size_t)(b - a) * (size_t)J->ng;
    uint8_t *z = static_cast<uint8_t *>(malloc(n));
    uint16_t *sc = static_cast<uint16_t *>(malloc(2 * n));
    hr_awq_unpack_zeros(J->qzeros, J->N, J->ng, a, b, z);
    hr_awq_unpack_scales(J->scales, J->N, J->ng, a, b, sc);
    uint32_t *sz = J->sz + (size_t)(a - J->r0) * (size_t)J->ng;
    for (size_t i = 0; i < n; i++)
        sz[i] = (uint32_t)sc[i] | ((uint32_t)hr_f32_to_f16((float)z[i]) << 16);
    free(z);
    free(sc);
}

}  // namespace

// GGUF Q4_0 rows: v = d * (q - 8) is the Q4 layout's s * (q - z) with s = d
// (an FP16 number in the file) and z = 8, exactly.
void
repack_q4_0_rows(const void *src, int K, int r0, int r1, uint32_t *q, uint32_t *sz)
{
    const size_t row_bytes = (size_t)(K / 32) * 18, ng = (size_t)(K / 32), kw = (size_t)q4_kw(K);
    uint8_t *nib = static_cast<uint8_t *>(malloc((size_t)K / 2));
    float *sc = static_cast<float *>(malloc(sizeof(float) * 2 * ng)), *of = sc + ng;
    const uint32_t z8 = (uint32_t)hr_f32_to_f16(8.0f) << 16;
    for (int r = r0; r < r1; r++) {
        uint32_t *qr = q + (size_t)(r - r0) * kw;
        memset(qr, 0, sizeof(uint32_t) * kw);
        hr_ggml_q4_groups(HR_GGML_Q4_0, static_cast<const uint8_t *>(src) + (size_t)r * row_bytes, K, nib, sc, of);
        for (int k = 0; k < K; k++) {
            const uint32_t v = (k & 1) ? nib[k / 2] >> 4 : nib[k / 2] & 15u;
            qr[k / 8] |= v << (4 * kSlot[k % 8]);
        }
        for (size_t g = 0; g < ng; g++) {
            sz[(size_t)(r - r0) * ng + g] = (uint32_t)hr_f32_to_f16(sc[g]) | z8;   // sc = d, an FP16 number
        }
    }
    free(nib);
    free(sc);
}

void
repack_awq_rows_layout(HrThreadPool *pool, const void *qweight, const void *qzeros, const void *scales, int N, int K,
                       int ng, int r0, int r1, uint32_t *q, uint32_t *sz)
{
    LayoutJob job = { qweight, qzeros, scales, N, K, ng, r0, r1, q, sz };
    hr_pool_run(pool, layout_range, &job, (r1 - r0 + LAYOUT_ROWS - 1) / LAYOUT_ROWS, 1);
}

void
convert_rows_f16(const void *src, int dtype, int K, int ldw, int r0, int r1, uint16_t *dst)
{
    for (int r = r0; r < r1; r++) {
        uint16_t *d = dst + (size_t)(r - r0) * (size_t)ldw;
        const size_t base = (size_t)r * (size_t)K;
        switch (dtype) {
        case HR_DTYPE_F16:
            memcpy(d, static_cast<const char *>(src) + 2 * base, 2 * (size_t)K);
            break;
        case HR_DTYPE_BF16:
            for (int k = 0; k < K; k++)
                d[k] = hr_f32_to_f16(hr_bf16_to_f32(rd16(src, base + (size_t)k)));
            break;
        default: {
            for (int k = 0; k < K; k++) {
                float f;
                memcpy(&f, static_cast<const char *>(src) + 4 * (base + (size_t)k), 4);
                d[k] = hr_f32_to_f16(f);
            }
            break;
        }
        }
        for (int k = K; k < ldw; k++)
            d[k] = 0;
    }
}

}  // namespace hrcuda
