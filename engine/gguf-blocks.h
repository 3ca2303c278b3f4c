/* gguf-blocks.h — GGUF's block-quantized tensor formats, decoded.
 *
 * The layouts are ggml's (each block a fixed number of values and bytes):
 *   Q4_0  32 values, 18 bytes: FP16 d, 16 bytes of nibbles; v = d * (q - 8)
 *   Q4_1  32 values, 20 bytes: FP16 d, FP16 m, nibbles;      v = d * q + m
 *   Q5_0  32 values, 22 bytes: FP16 d, 32 high bits, nibbles; v = d * (q - 16)
 *   Q5_1  32 values, 24 bytes: FP16 d, m, high bits, nibbles; v = d * q + m
 *   Q8_0  32 values, 34 bytes: FP16 d, 32 int8;             v = d * q
 *   Q4_K 256 values, 144 bytes: FP16 d, dmin, 12 bytes of 6-bit sub-block
 *        scales and mins, 128 bytes of nibbles; per sub-block of 32
 *        v = (d * sc) * q - (dmin * m)
 *   Q5_K 256 values, 176 bytes: as Q4_K plus 32 bytes of fifth bits
 *   Q6_K 256 values, 210 bytes: 128 bytes low nibbles, 64 bytes high bit
 *        pairs, 16 int8 sub-block scales, FP16 d; v = d * sc * (q - 32)
 * In the 32-value formats value j < 16 of a block is the low nibble of byte
 * j and value j + 16 its high nibble; in the K formats each 64 values are
 * 32 bytes, low nibbles first. Products are computed in FP32 as ggml does. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

/* Whether hr_ggml_dequant() decodes type (a GGUF type number). */
bool hr_ggml_dequant_supported(uint32_t type);

/* dst[0..n) = the first n values at src (n a multiple of the type's block
 * size; the type supported). */
void hr_ggml_dequant(uint32_t type, const void *src, float *dst, int64_t n);

/* The 4-bit types (Q4_0, Q4_1, Q4_K) as groups of 32 values: for the n
 * values at src (a multiple of the block), nib[n/2] gets the nibbles with
 * value k in the low nibble of byte k/2 when k is even, the high one when
 * odd, and per group g the value is scale[g] * q + offset[g] with
 * scale/offset exactly ggml's FP32 factors. false for other types. */
bool hr_ggml_q4_groups(uint32_t type, const void *src, int64_t n, uint8_t *nib, float *scale, float *offset);

/* The types that are exactly int8 values times one scale per 32 (Q8_0,
 * Q5_0: q - 16; Q5_1, Q5_K: q - 16 plus an offset per 32, the file's
 * offset + 16 * scale, equal to ggml's value up to FP32 rounding) or per 16 (Q6_K:
 * q - 32, scale d * sc): for n values at src, q[n], scale[n / *per] and, for
 * the types with offsets, offset[n / 32] (value = scale * q + offset; offset
 * may be NULL for the others); *per = values per scale. false for other
 * types. */
bool hr_ggml_q8_groups(uint32_t type, const void *src, int64_t n, int8_t *q, float *scale, float *offset, int *per);

/* Values per scale hr_ggml_q8_groups() gives for type, 0 when it does not
 * take it. */
int hr_ggml_q8_per(uint32_t type);
/* Whether hr_ggml_q8_groups() gives type an offset per 32. */
bool hr_ggml_q8_has_offset(uint32_t type);

/* Q4_K as the file holds it, for n values at src (a multiple of 256): the
 * nibbles as hr_ggml_q4_groups() lays them out, per group of 32 the 6-bit
 * scale sc and min m, per 256 the FP16 bits of d and dmin; the values are
 * (d * sc) * q - (dmin * m). */
void hr_ggml_q4k_raw(const void *src, int64_t n, uint8_t *nib, uint8_t *sc, uint8_t *mn, uint16_t *d,
                     uint16_t *dmin);
