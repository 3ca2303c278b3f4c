/* The CUDA backend's kernel files compiled for the host (cuda-emu-names.h). */
#include "cuda-emu-names.h"

#include "cuda/cuda-blas.cu"
#include "cuda/cuda-decode.cu"
#include "cuda/cuda-kernels.cu"
#include "cuda/cuda-attn-tc.cu"
#include "cuda/cuda-sample.cu"
#include "cuda/cuda-repack.cu"
