/* FP16/BF16 conversions: every half round-trips exactly, and FP32 -> FP16
 * rounds to nearest even across normal, subnormal, overflow and NaN. */
#include <math.h>

#include "hr-half.h"
#include "hr-test.h"

int
main(void)
{
    for (uint32_t h = 0; h < 65536; h++) {
        float f = hr_f16_to_f32((uint16_t)h);
        uint16_t back = hr_f32_to_f16(f);
        if (isnan(f))
            HR_CHECK((back & 0x7c00) == 0x7c00 && (back & 0x3ff), "NaN %04x -> %04x", h, back);
        else
            HR_CHECK(back == h, "%04x -> %g -> %04x", h, f, back);
        if (hr_test_failures > 10)
            return hr_test_result();
    }
    HR_CHECK(hr_f16_to_f32(0x3c00) == 1.0f && hr_f16_to_f32(0xc000) == -2.0f, "basic values");
    HR_CHECK(hr_f16_to_f32(0x0001) == ldexpf(1.0f, -24), "smallest subnormal");
    HR_CHECK(hr_f32_to_f16(65504.0f) == 0x7bff && hr_f32_to_f16(65520.0f) == 0x7c00, "overflow edge");
    HR_CHECK(hr_f32_to_f16(1.0f + ldexpf(1.0f, -11)) == 0x3c00, "tie rounds to even (down)");
    HR_CHECK(hr_f32_to_f16(1.0f + 3 * ldexpf(1.0f, -11)) == 0x3c02, "tie rounds to even (up)");
    HR_CHECK(hr_f32_to_f16(ldexpf(1.0f, -25)) == 0x0000, "half of smallest subnormal ties to 0");
    HR_CHECK(hr_f32_to_f16(ldexpf(1.5f, -25)) == 0x0001, "above the tie rounds up");
    HR_CHECK(hr_f32_to_bf16(1.0f) == 0x3f80 && hr_bf16_to_f32(0x3f80) == 1.0f, "bf16 basic");
    HR_CHECK(hr_f32_to_bf16(1.0f + ldexpf(1.0f, -8)) == 0x3f80, "bf16 tie to even");
    HR_CHECK(isnan(hr_bf16_to_f32(hr_f32_to_bf16(NAN))), "bf16 NaN");
    return hr_test_result();
}
