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

/* dir's config and tensors; false (a failed check, nothing left open) when
 * they do not load. */
bool hr_cmp_load(const char *dir, HrModelConfig *cfg, HrTensorSet **ts);

/* cpu and dev (their ops set, ctx NULL) created for the model with bopt;
 * false when one fails: a failed check naming the backend, whatever was
 * created destroyed and ts freed. */
bool hr_cmp_create(const char *label, const HrModelConfig *cfg, HrTensorSet *ts, const HrBackendOptions *bopt,
                   HrCmpRun *cpu, HrCmpRun *dev);

/* max |x - ref| over a row (NaN: infinite), relative to ref's range (a
 * flat row: 1); *diff, *range (when not NULL) get both parts. */
float hr_cmp_rel_diff(const float *ref, const float *x, int n, float *diff, float *range);

/* Index of the largest value; *gap = largest - second largest. */
int hr_cmp_argmax(const float *v, int n, float *gap);

/* Compare row `row` of the last forward() of both: max |dlogit| relative
 * to the CPU row's range within s->tol, and the greedy ids equal unless the
 * CPU's top two are closer than twice the difference (a near tie). */
void hr_cmp_row(HrCmpStats *s, HrCmpRun *cpu, HrCmpRun *dev, int row, const char *what);

/* forward() on both; false (and a recorded failure) if either fails. */
bool hr_cmp_forward(const HrCmpStats *s, HrCmpRun *cpu, HrCmpRun *dev, const int32_t *tok, int n, int pos, bool all);

/* The schedule both device tests run (tok: 400 ids in the vocabulary):
 * 1. prefill 20 tokens, every row; 2. prefill 8, then decode one token at
 * a time to 20 (the replayed step), checking device_argmax(ctx) (when not
 * NULL) against the argmax of the logits read back; 3. rewind to position
 * 5 with other tokens, then decode two more; 4. with long_run, prefill 300
 * tokens (every 13th row) and decode 5. */
void hr_cmp_schedule(HrCmpStats *s, HrCmpRun *cpu, HrCmpRun *dev, const int32_t *tok, int (*device_argmax)(void *ctx),
                     bool long_run);
