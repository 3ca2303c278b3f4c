/* vk-bench.h — what hearth-cli bench measures on a Vulkan device: its read
 * bandwidth (the decode roofline, also the backend's read_bandwidth op),
 * its FP32 multiply-add peak (the ceiling of the FP32 prefill GEMM), and one
 * linear timed alone — the decode GEMV or the prefill GEMM exactly as the
 * backend dispatches them (hr_vk_make_gemv on weights from hr_vk_pack_awq /
 * hr_vk_pack_f16).
 *
 * Timing uses GPU timestamps (vkCmdWriteTimestamp around the work, scaled by
 * timestampPeriod) when the queue has them, else the host's clock around
 * the submit and wait (HrVkTimer says which).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "vk-kernels.h"

/* ---- timing ---------------------------------------------------------------------- */
typedef struct HrVkTimer HrVkTimer;

/* A command buffer to record the work into, with a timestamp in front of
 * it (after a barrier that makes earlier uploads visible). */
HrStatus hr_vk_timer_new(HrVkContext *ctx, HrVkTimer **out, VkCommandBuffer *cb, HrError *err);
/* Closes the command buffer (timestamp, barrier to the host). */
HrStatus hr_vk_timer_end(HrVkTimer *t, HrError *err);
/* Submits the closed command buffer (again, each call), waits, and gives
 * the seconds between the two timestamps (or around submit and wait). */
HrStatus hr_vk_timer_run(HrVkTimer *t, double *seconds, HrError *err);
/* Whether the figures come from GPU timestamps. */
bool hr_vk_timer_gpu(const HrVkTimer *t);
void hr_vk_timer_free(HrVkTimer *t);

/* ---- roofline probes ------------------------------------------------------------- */
/* Bytes per second read_bw.comp reads: best of 5 timed passes over a
 * device-local buffer of min(512 MiB, the binding limit, half of the free
 * device memory) in 16-byte loads (a smaller buffer than 16 MiB is refused:
 * it would measure the cache). */
HrStatus hr_vk_read_bandwidth(HrVkContext *ctx, double *bytes_per_s, HrError *err);
/* FP32 FLOP/s of fma_peak.comp (independent vec4 FMA chains in registers),
 * best of 3. */
HrStatus hr_vk_fma_peak(HrVkContext *ctx, double *flops_per_s, HrError *err);

/* ---- one linear ------------------------------------------------------------------ */
typedef struct {
    int rows, cols;      /* the weight matrix [rows, cols] (out, in) */
    int tokens;          /* 1: the decode GEMV; more: the prefill path for a chunk of this many tokens */
    bool q4;             /* 4-bit AWQ groups (hr_vk_pack_awq) or FP16 (hr_vk_pack_f16) */
    int group;           /* q4: inputs per group (a multiple of 8 dividing cols, or cols) */
    size_t footprint;    /* bytes of weight copies the calls cycle through (0: one copy), so
                            the weights come from memory, not from a cache */
    double min_time;     /* seconds one repetition lasts at least */
    int reps;
} HrVkLinearBenchArgs;

typedef struct {
    size_t weight_bytes; /* one copy as the device holds and reads it (words + scale table) */
    int copies;
    long calls;          /* dispatches per repetition (one command buffer, barriers between) */
    bool gpu_timer;
    const char *kernel;  /* which path ran: "gemv", "gemv-nt" (several tokens a workgroup), "gemm" (with its
                            tile: "gemm 128x64", "gemm-coop 128x64/64x32" rows x tokens / a subgroup's part);
                            points into kernel_buf or at a literal */
    char kernel_buf[64];
} HrVkLinearBenchInfo;

/* Seconds per call of each repetition into sec_per_call[reps]. The output
 * of the last call is checked to be finite. Random weights (fixed seed per
 * shape) and activations in [-1, 1). */
HrStatus hr_vk_bench_linear(HrVkKernels *k, HrVkContext *ctx, const HrVkLinearBenchArgs *a, double *sec_per_call,
                            HrVkLinearBenchInfo *info, HrError *err);
