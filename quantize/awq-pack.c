/* awq-pack.c — AutoAWQ "GEMM" nibble packing (awq/utils/packing_utils.py):
 * pack: packed |= q[:, 8j + ORDER[i]] << 4i; unpack shifts by 0,4,..,28 and
 * undoes the order with AWQ_REVERSE_ORDER = 0,4,1,5,2,6,3,7. The order
 * itself lives in engine/awq-layout.c with the rest of the layout. */
#include "quantize.h"

#include "awq-layout.h"

void
hr_awq_pack(const uint8_t *q, int rows, int cols, int32_t *packed)
{
    const int w8 = cols / 8;
    for (int r = 0; r < rows; r++) {
        for (int j = 0; j < w8; j++) {
            uint32_t p = 0;
            const uint8_t *src = q + (size_t)r * cols + (size_t)j * 8;
            for (int i = 0; i < 8; i++)
                p |= (uint32_t)(src[hr_awq_order[i]] & 15u) << (4 * i);
            packed[(size_t)r * w8 + j] = (int32_t)p;
        }
    }
}

void
hr_awq_unpack(const int32_t *packed, int rows, int cols, uint8_t *q)
{
    const int w8 = cols / 8;
    for (int r = 0; r < rows; r++) {
        for (int j = 0; j < w8; j++) {
            uint32_t p = (uint32_t)packed[(size_t)r * w8 + j];
            uint8_t *dst = q + (size_t)r * cols + (size_t)j * 8;
            for (int i = 0; i < 8; i++)
                dst[hr_awq_order[i]] = (uint8_t)((p >> (4 * i)) & 15u);
        }
    }
}
