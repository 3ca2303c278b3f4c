/* hr-test-cuda.h — the CUDA tests' device check. Inline, so that a test
 * built against the host emulator (-Dhr_cuda_device_count=
 * hr_cuda_emu_device_count in tests/meson.build) asks the emulator. */
#pragma once

#include "cuda/hr-cuda.h"
#include "hr-test.h"

/* Exits 77 (SKIP) with the runtime's reason when no CUDA device answers. */
static inline void
hr_test_need_cuda(void)
{
    int count = 0;
    char msg[256] = "";
    if (hr_cuda_device_count(&count, msg, sizeof msg) != 0 || count == 0)
        hr_test_skip("no CUDA device (%s)", msg[0] ? msg : "cudaGetDeviceCount found none");
}
