/* hr-cuda.h — C interface to the CUDA backend (compiled by nvcc). */
#pragma once

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Number of CUDA devices. Returns 0 and fills count on success; on any CUDA
 * error (no driver, no device) returns the CUDA error code, sets *count to 0
 * and writes the runtime's explanation into msg. */
int hr_cuda_device_count(int *count, char *msg, size_t msg_len);

/* One line per device: name, compute capability, memory. */
int hr_cuda_device_describe(int index, char *buf, size_t len);

/* c[i] = a[i] + b[i] on device 0 (host pointers; copies in and out).
 * Returns 0 or the CUDA error code, with its text in msg. */
int hr_cuda_vec_add(const float *a, const float *b, float *c, int n, char *msg, size_t msg_len);

/* CUDA runtime version the code was built against, e.g. 13000. */
int hr_cuda_runtime_version(void);

#ifdef __cplusplus
}
#endif
