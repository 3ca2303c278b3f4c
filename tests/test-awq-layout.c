/* test-awq-layout.c — engine/awq-layout.c against a nibble-at-a-time
 * reference written from the checkpoint format alone (quantize/README.md:
 * nibble i of qweight[k][j] is q[8j + order[i]][k]), on random packed
 * matrices: output row ranges that start and end mid-matrix, K with and
 * without a partial last word, the CPU/Vulkan slot order and CUDA's; and
 * that bytes past a row are left alone. */
#include <string.h>

#include "awq-layout.h"
#include "hr-test.h"

static const int order_ref[8] = { 0, 2, 4, 6, 1, 3, 5, 7 };

/* q[n][k] straight from the format. */
static unsigned
ref_q(const uint32_t *qw, int N, int n, int k)
{
    const int j = n / 8, c = n % 8;
    int i = 0;
    while (order_ref[i] != c)
        i++;
    return (qw[(size_t)k * (size_t)(N / 8) + (size_t)j] >> (4 * i)) & 15u;
}

static void
check_rows(int N, int K, int n0, int n1, const int *slot, guint32 seed)
{
    g_autoptr(GRand) s = g_rand_new_with_seed(seed);
    const size_t w8 = (size_t)N / 8;
    uint32_t *qw = g_new(uint32_t, (size_t)K * w8);
    for (size_t i = 0; i < (size_t)K * w8; i++)
        qw[i] = g_rand_int(s);
    /* A row of K / 2 bytes (the CPU's) without a slot order, whole words
     * with one; plus 8 guard bytes after the last row. */
    const size_t row_bytes = slot ? (size_t)(K + 7) / 8 * 4 : (size_t)(K + 1) / 2;
    const size_t total = (size_t)(n1 - n0) * row_bytes + 8;
    uint8_t *dst = g_malloc(total);
    memset(dst, 0xA5, total);
    hr_awq_unpack_rows(qw, N, K, n0, n1, slot, dst, row_bytes);
    int bad = 0;
    for (int n = n0; n < n1 && bad < 5; n++) {
        const uint8_t *row = dst + (size_t)(n - n0) * row_bytes;
        for (int k = 0; k < K && bad < 5; k++) {
            const int pos = slot ? 8 * (k / 8) + slot[k % 8] : k;
            const unsigned got = (row[pos / 2] >> (4 * (pos % 2))) & 15u;
            if (got != ref_q(qw, N, n, k)) {
                HR_CHECK(0, "N %d K %d rows [%d, %d) slot %s: q[%d][%d] = %u, expected %u", N, K, n0, n1,
                         slot ? "cuda" : "none", n, k, got, ref_q(qw, N, n, k));
                bad++;
            }
        }
        if (slot) /* inputs past K in the last word are 0 */
            for (int k = K; k < (K + 7) / 8 * 8; k++) {
                const int pos = 8 * (k / 8) + slot[k % 8];
                HR_CHECK(((row[pos / 2] >> (4 * (pos % 2))) & 15u) == 0, "N %d K %d: padding input %d not 0", N, K,
                         k);
            }
    }
    for (size_t i = total - 8; i < total; i++)
        HR_CHECK(dst[i] == 0xA5, "N %d K %d rows [%d, %d): wrote past the last row", N, K, n0, n1);
    g_free(dst);

    /* zeros and scales */
    const int ng = K % 4 == 0 ? 4 : 1;
    uint32_t *qz = g_new(uint32_t, (size_t)ng * w8);
    uint16_t *sc = g_new(uint16_t, (size_t)ng * (size_t)N);
    for (size_t i = 0; i < (size_t)ng * w8; i++)
        qz[i] = g_rand_int(s);
    for (size_t i = 0; i < (size_t)ng * (size_t)N; i++)
        sc[i] = (uint16_t)g_rand_int(s);
    uint8_t *z = g_new(uint8_t, (size_t)(n1 - n0) * (size_t)ng);
    uint16_t *sd = g_new(uint16_t, (size_t)(n1 - n0) * (size_t)ng);
    hr_awq_unpack_zeros(qz, N, ng, n0, n1, z);
    hr_awq_unpack_scales(sc, N, ng, n0, n1, sd);
    for (int n = n0; n < n1; n++)
        for (int g = 0; g < ng; g++) {
            const size_t i = (size_t)(n - n0) * (size_t)ng + (size_t)g;
            HR_CHECK(z[i] == ref_q(qz, N, n, g), "zero [%d][%d]", n, g);
            HR_CHECK(sd[i] == sc[(size_t)g * (size_t)N + (size_t)n], "scale [%d][%d]", n, g);
        }
    g_free(z);
    g_free(sd);
    g_free(qz);
    g_free(sc);
    g_free(qw);
}

int
main(void)
{
    static const int cuda_slot[8] = { 0, 4, 1, 5, 2, 6, 3, 7 };
    static const int shapes[][2] = {
        { 8, 2 }, { 8, 8 }, { 16, 6 }, { 64, 64 }, { 136, 172 }, { 256, 130 }, { 512, 128 }, { 1032, 256 },
    };
    guint32 seed = 1;
    for (size_t i = 0; i < G_N_ELEMENTS(shapes); i++) {
        const int N = shapes[i][0], K = shapes[i][1];
        for (int pass = 0; pass < 2; pass++) {
            const int *slot = pass ? cuda_slot : NULL;
            check_rows(N, K, 0, N, slot, seed++);
            if (N >= 24) {
                check_rows(N, K, 8, N - 8, slot, seed++);
                check_rows(N, K, N / 16 * 8, N, slot, seed++);
            }
        }
    }
    HR_CHECK(hr_awq_nibble[order_ref[3]] == 3 && hr_awq_order[hr_awq_nibble[5]] == 5, "order tables disagree");
    return hr_test_result();
}
