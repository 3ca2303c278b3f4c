/* awq-layout.h — the one home of the AutoAWQ "GEMM" checkpoint layout and
 * the transposition every backend's repack is built on (issue 19).
 *
 * The checkpoint, per linear with K inputs, N outputs and ng groups:
 *   qweight int32 [K, N/8]   nibble i (bits 4i..4i+3) of word [k][j] holds
 *                            q[n = 8j + hr_awq_order[i]][k]
 *   qzeros  int32 [ng, N/8]  the zero points, packed the same way
 *   scales  fp16  [ng, N]    one scale per (group, output)
 *   w[n][k] = (q[n][k] - z[g][n]) * s[g][n],  g = k / (K / ng).
 *
 * The backends want rows instead: output n's K nibbles in words of 8
 * inputs, input k of a word in nibble slot[k % 8] (the CPU and Vulkan use
 * slot[e] = e, i.e. bytes with the even input in the low nibble; CUDA
 * interleaves them for its half2 unpacking). */
#ifndef HR_AWQ_LAYOUT_H
#define HR_AWQ_LAYOUT_H

#include <stddef.h>
#include <stdint.h>

/* Nibble i of a packed word holds column hr_awq_order[i] of its 8. */
extern const int hr_awq_order[8];   /* 0, 2, 4, 6, 1, 3, 5, 7 */
/* Column c of a packed word is in nibble hr_awq_nibble[c] (the inverse). */
extern const int hr_awq_nibble[8];  /* 0, 4, 1, 5, 2, 6, 3, 7 */

/* Nibble of output column c (0..7) in a packed word. */
static inline uint32_t
hr_awq_get(uint32_t packed, int c)
{
    return (packed >> (4 * hr_awq_nibble[c])) & 15u;
}

/* Output rows [n0, n1) (multiples of 8, n1 <= N) of qweight (K x N/8 int32,
 * any alignment) into dst: row n - n0 starts at dst + (n - n0) * row_bytes
 * and holds inputs 0..K-1 as words of 8 nibbles, input k in nibble
 * slot[k % 8] of word k / 8 (slot NULL: slot[e] = e). When K % 8 != 0 the
 * last word's missing inputs are 0 and only ceil((K % 8) / 2) of its bytes
 * are written when slot is NULL (so a row of K / 2 bytes is enough, as the
 * CPU's HrQMat has); with a slot order the whole word is written. row_bytes
 * must hold the row: >= K / 2 rounded up to whole words when slot != NULL.
 * Output rows are written whole; nothing else in dst is touched. */
void hr_awq_unpack_rows(const void *qweight, int N, int K, int n0, int n1, const int *slot, uint8_t *dst,
                        size_t row_bytes);

/* Zero points of rows [n0, n1) (multiples of 8): dst[(n - n0) * ng + g]. */
void hr_awq_unpack_zeros(const void *qzeros, int N, int ng, int n0, int n1, uint8_t *dst);

/* FP16 scale bits of rows [n0, n1): dst[(n - n0) * ng + g] (scales [ng, N]). */
void hr_awq_unpack_scales(const void *scales, int N, int ng, int n0, int n1, uint16_t *dst);

#endif
