/* The CUDA backend (cuda-backend.cu) compiled for the host
 * (cuda-emu-names.h), and the device count its test asks for. */
#include "cuda-emu-names.h"

#include "cuda/cuda-backend.cu"

extern "C" int
hr_cuda_emu_device_count(int *count, char *msg, size_t msg_len)
{
    (void)msg;
    (void)msg_len;
    *count = 1;
    return 0;
}
