/* awq-layout.c — see awq-layout.h.
 *
 * The transposition. Eight consecutive inputs k0..k0+7 of one packed column
 * j are eight words: an 8 x 8 matrix of nibbles M[t][p] (t: the input, p:
 * the nibble, which is output 8j + hr_awq_order[p]). What a row wants is
 * its transpose: for each p, one word holding the 8 inputs. Three rounds of
 * swapping blocks between word pairs transpose it (4 x 4 blocks of nibbles
 * between words t and t + 4, 2 x 2 blocks between t and t + 2, single
 * nibbles between t and t + 1): 24 masked shift/or steps for 64 nibbles,
 * instead of a shift, mask and scattered store per nibble. A slot order is
 * applied on the way in (word t goes to place slot[t] before transposing).
 *
 * Memory: a pass takes 16 packed columns (one 64-byte line of each input
 * row) and 128 inputs, and fills a tile of 128 output rows x 64 bytes in L1,
 * which is then copied out a whole line per row. The 16 columns are one GCC
 * vector, which the compiler turns into whatever SIMD the build targets. */
#include "awq-layout.h"

#include <string.h>

#include <glib.h>

const int hr_awq_order[8] = { 0, 2, 4, 6, 1, 3, 5, 7 };
const int hr_awq_nibble[8] = { 0, 4, 1, 5, 2, 6, 3, 7 };

#define LANES 16
#define TILE_K 128
#ifndef PREFETCH
#define PREFETCH 256
#endif
typedef uint32_t v16u __attribute__((vector_size(4 * LANES)));

static inline void
swap_blocks(v16u *a, v16u *b, int shift, uint32_t lo_mask)
{
    /* a keeps its low blocks and takes b's low blocks into its high ones;
     * b keeps its high blocks and takes a's high blocks into its low ones. */
    const v16u lo = { lo_mask, lo_mask, lo_mask, lo_mask, lo_mask, lo_mask, lo_mask, lo_mask,
                      lo_mask, lo_mask, lo_mask, lo_mask, lo_mask, lo_mask, lo_mask, lo_mask };
    v16u x = *a, y = *b;
    *a = (x & lo) | ((y & lo) << shift);
    *b = ((x >> shift) & lo) | (y & ~lo);
}

static inline void
transpose8(v16u m[8])
{
    for (int t = 0; t < 4; t++)
        swap_blocks(&m[t], &m[t + 4], 16, 0x0000ffffu);
    for (int t = 0; t < 8; t += 4)
        for (int u = t; u < t + 2; u++)
            swap_blocks(&m[u], &m[u + 2], 8, 0x00ff00ffu);
    for (int t = 0; t < 8; t += 2)
        swap_blocks(&m[t], &m[t + 1], 4, 0x0f0f0f0fu);
}

void
hr_awq_unpack_rows(const void *qweight, int N, int K, int n0, int n1, const int *slot, uint8_t *dst,
                   size_t row_bytes)
{
    static const int identity[8] = { 0, 1, 2, 3, 4, 5, 6, 7 };
    const int *pl = slot ? slot : identity;
    const size_t w8 = (size_t)(N / 8);
    const unsigned char *src = qweight;
    /* 128 rows x 128 inputs, one cache line per row, gathered here and
     * copied out whole: stored straight into rows K / 2 bytes apart, the
     * words of 128 rows land in a few cache sets and evict each other. */
    uint32_t tile[8 * LANES][TILE_K / 8];
    for (int kt = 0; kt < K; kt += TILE_K) {
        const int kw = MIN(TILE_K, K - kt);
        for (int j0 = n0 / 8; j0 < n1 / 8; j0 += LANES) {
            const int m = MIN(LANES, n1 / 8 - j0);
            for (int k0 = kt; k0 < kt + kw; k0 += 8) {
                const int kr = MIN(8, K - k0);
                v16u blk[8];
                memset(blk, 0, sizeof blk);
                if (m == LANES) /* a constant size: vector loads, not a call */
                    for (int t = 0; t < kr; t++) {
                        const unsigned char *p = src + 4 * ((size_t)(k0 + t) * w8 + (size_t)j0);
                        /* 128 rows are read side by side, more streams than
                         * the hardware prefetcher follows. */
                        __builtin_prefetch(p + PREFETCH);
                        memcpy(&blk[pl[t]], p, sizeof(v16u));
                    }
                else
                    for (int t = 0; t < kr; t++)
                        memcpy(&blk[pl[t]], src + 4 * ((size_t)(k0 + t) * w8 + (size_t)j0), 4 * (size_t)m);
                transpose8(blk);
                for (int c = 0; c < 8; c++) {
                    const v16u v = blk[hr_awq_nibble[c]];
                    for (int l = 0; l < m; l++)
                        tile[8 * l + c][(k0 - kt) / 8] = v[l];
                }
            }
            /* Bytes of this tile in a row: whole words, and of a last
             * partial word only what a row of K / 2 bytes holds (slot NULL). */
            const size_t nb = slot ? (size_t)(kw + 7) / 8 * 4 : (size_t)(kw + 1) / 2;
            uint8_t *out = dst + ((size_t)j0 * 8 - (size_t)n0) * row_bytes + (size_t)kt / 2;
            if (nb == sizeof tile[0])
                for (int r = 0; r < 8 * m; r++)
                    memcpy(out + (size_t)r * row_bytes, tile[r], sizeof tile[0]);
            else
                for (int r = 0; r < 8 * m; r++)
                    memcpy(out + (size_t)r * row_bytes, tile[r], nb);
        }
    }
}

void
hr_awq_unpack_zeros(const void *qzeros, int N, int ng, int n0, int n1, uint8_t *dst)
{
    const size_t w8 = (size_t)(N / 8);
    for (int g = 0; g < ng; g++) {
        for (int j = n0 / 8; j < n1 / 8; j++) {
            uint32_t p;
            memcpy(&p, (const char *)qzeros + 4 * ((size_t)g * w8 + (size_t)j), 4);
            for (int c = 0; c < 8; c++)
                dst[((size_t)j * 8 + (size_t)c - (size_t)n0) * (size_t)ng + (size_t)g] = (uint8_t)hr_awq_get(p, c);
        }
    }
}

void
hr_awq_unpack_scales(const void *scales, int N, int ng, int n0, int n1, uint16_t *dst)
{
    for (int g = 0; g < ng; g++) {
        const char *row = (const char *)scales + 2 * (size_t)g * (size_t)N;
        for (int n = n0; n < n1; n++)
            memcpy(&dst[(size_t)(n - n0) * (size_t)ng + (size_t)g], row + 2 * (size_t)n, 2);
    }
}
