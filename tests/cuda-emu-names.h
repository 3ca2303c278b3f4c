/* cuda-emu-names.h — the CUDA backend's source compiled for the host
 * (tests/cuda-emu.h) under names of its own, so that a test program can link
 * it beside the engine library, which holds the nvcc-compiled backend. The C
 * side (tests/test-cuda-model.c built as test-cuda-emu-model) takes the same
 * names from its compile flags. */
#pragma once

#include "cuda-emu.h"

#define HEARTH_CUDA_EMU 1
#define hrcuda hrcuda_emu
#define hr_cuda_backend hr_cuda_emu_backend
#define hr_cuda_backend_last_argmax hr_cuda_emu_backend_last_argmax
#define hr_cuda_backend_uses_graph hr_cuda_emu_backend_uses_graph
