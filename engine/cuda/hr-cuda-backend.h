/* hr-cuda-backend.h — the CUDA backend's ops table (compiled by nvcc). */
#pragma once

#ifdef __cplusplus
extern "C" {
#endif

#include "backend.h"

extern const HrBackendOps hr_cuda_backend;

/* Greedy id of the last logits row of the last forward(), computed on the
 * device (one int comes back); -1 on error. */
int hr_cuda_backend_last_argmax(void *ctx);

/* Whether the decode step runs as a replayed CUDA graph (false when capture
 * failed or HEARTH_CUDA_GRAPH=0). */
int hr_cuda_backend_uses_graph(void *ctx);

#ifdef __cplusplus
}
#endif
