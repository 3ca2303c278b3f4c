/* hr-backend-compare.h — a device backend against the CPU backend, logits
 * row by row, for the Vulkan and CUDA model tests. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "backend.h"

typedef struct {
    const HrBackendOps *ops;
    void *ctx;
} HrCmpRun;

typedef struct {
    const char *label;     /* model, in failure messages */
    const char *device;    /* "vulkan", "cuda" */
    float tol;             /* max |dlogit| / (max - min of the CPU row) */
    float worst_rel;       /* the largest seen */
    int rows, argmax_equal, argmax_checked;
    int vocab;
} HrCmpStats;

/* Index of the largest value; *gap = largest - second largest. */
int hr_cmp_argmax(const float *v, int n, float *gap);

/* Compare row `row` of the last forward() of both: max |dlogit| relative
 * to the CPU row's range within s->tol, and the greedy ids equal unless the
 * CPU's top two are closer than twice the difference (a near tie). */
void hr_cmp_row(HrCmpStats *s, HrCmpRun *cpu, HrCmpRun *dev, int row, const char *what);

/* forward() on both; false (and a recorded failure) if either fails. */
bool hr_cmp_forward(const HrCmpStats *s, HrCmpRun *cpu, HrCmpRun *dev, const int32_t *tok, int n, int pos, bool all);
