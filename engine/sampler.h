/* sampler.h — turn logits into the next token.
 *
 * Order of operations, as transformers' logits processors apply them:
 * repetition penalty -> temperature -> top-k -> top-p -> min-p -> draw.
 * temperature <= 0 means greedy (argmax after the repetition penalty).
 */
#pragma once

#include <stdbool.h>
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

/* ---- drawing from a device's candidates ----------------------------------------------
 *
 * A GPU backend can do the vocabulary-wide work of a draw where the logits
 * are (the repetition penalty, the largest HR_CANDIDATES_MAX logits in order,
 * the softmax's denominator), so that a few hundred bytes cross to the host
 * per token instead of the whole row. The draw itself stays here, on the
 * host, in the same code as hr_sampler_sample: from the same logits it picks
 * the same token (top-k up to HR_CANDIDATES_MAX exactly; with top-k off the
 * device's denominator rounds differently from the host's, within 1e-6).
 */
#define HR_CANDIDATES_MAX 64

/* What the device is asked to do for one step. */
typedef struct {
    float inv_t;              /* 1 / temperature; 0 = greedy (no denominator) */
    float penalty;            /* repetition penalty applied to logits[seen[i]] in place; 1 = none */
    const int32_t *seen;      /* the context's distinct tokens (the sampler's; valid until the next accept) */
    int n_seen;               /* 0 when penalty == 1 */
} HrSampleSpec;

/* What the device gives back. */
typedef struct {
    int n;                                /* min(HR_CANDIDATES_MAX, vocab) */
    int32_t ids[HR_CANDIDATES_MAX];       /* best first: logit descending, lower id first on ties */
    float vals[HR_CANDIDATES_MAX];        /* their logits, after the penalty */
    double sum;                           /* sum over the vocabulary of e^((l - vals[0]) * inv_t) (inv_t > 0) */
    bool finite;                          /* every logit was finite */
} HrCandidates;

/* The spec for this sampler's next draw; false when candidates can never
 * decide it (top-k above HR_CANDIDATES_MAX): then the host draws from the
 * whole row. */
bool hr_sampler_device_spec(const HrSampler *s, HrSampleSpec *spec);

/* Draw from the candidates of a step run with hr_sampler_device_spec's spec.
 * -1 when they cannot decide (the draw reaches past them, top-p's mass is
 * not inside them, or a logit was not finite): the random state is then
 * untouched, and the caller draws from the whole row with
 * hr_sampler_sample_penalized. */
int32_t hr_sampler_sample_candidates(HrSampler *s, const HrCandidates *c);

/* hr_sampler_sample over logits the device has already penalised. */
int32_t hr_sampler_sample_penalized(HrSampler *s, float *logits);
