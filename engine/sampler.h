/* sampler.h — turn logits into the next token.
 *
 * Order of operations, as transformers' logits processors apply them:
 * repetition penalty -> temperature -> top-k -> top-p -> min-p -> draw.
 * temperature <= 0 means greedy (argmax after the repetition penalty).
 */
#pragma once

#include <stdint.h>

typedef struct {
    float temperature;          /* 0 = greedy */
    int top_k;                  /* 0 = off */
    float top_p;                /* 1 = off */
    float min_p;                /* 0 = off */
    float repetition_penalty;   /* 1 = off; >1 discourages tokens already seen */
    uint64_t seed;
} HrSamplerParams;

typedef struct HrSampler HrSampler;

/* Defaults: greedy, no filtering, seed 0. */
void hr_sampler_params_init(HrSamplerParams *p);

HrSampler *hr_sampler_new(const HrSamplerParams *p, int vocab_size);
void hr_sampler_free(HrSampler *s);

/* Forget the history and reseed (same seed -> same draws). */
void hr_sampler_reset(HrSampler *s);

/* Record a token of the context (prompt or generated) for the repetition penalty. */
void hr_sampler_accept(HrSampler *s, int32_t token);

/* Pick the next token. logits[vocab_size] is used as scratch (modified). */
int32_t hr_sampler_sample(HrSampler *s, float *logits);
