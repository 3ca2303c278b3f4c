#include "sampler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

struct HrSampler {
    HrSamplerParams p;
    int vocab;
    uint64_t rng;
    uint8_t *seen;      /* [vocab] tokens in the context */
    int *idx;           /* [vocab] scratch for sorting */
};

void
hr_sampler_params_init(HrSamplerParams *p)
{
    p->temperature = 0.0f;
    p->top_k = 0;
    p->top_p = 1.0f;
    p->min_p = 0.0f;
    p->repetition_penalty = 1.0f;
    p->seed = 0;
}

/* splitmix64: a small, well-distributed, reproducible generator. */
static uint64_t
next_u64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double
next_uniform(uint64_t *state)
{
    return (double)(next_u64(state) >> 11) * (1.0 / 9007199254740992.0); /* [0, 1) */
}

HrSampler *
hr_sampler_new(const HrSamplerParams *p, int vocab_size)
{
    HrSampler *s = g_new0(HrSampler, 1);
    s->p = *p;
    s->vocab = vocab_size;
    s->seen = g_new0(uint8_t, vocab_size);
    s->idx = g_new(int, vocab_size);
    hr_sampler_reset(s);
    return s;
}

void
hr_sampler_free(HrSampler *s)
{
    if (!s)
        return;
    g_free(s->seen);
    g_free(s->idx);
    g_free(s);
}

void
hr_sampler_reset(HrSampler *s)
{
    s->rng = s->p.seed;
    memset(s->seen, 0, (size_t)s->vocab);
}

void
hr_sampler_accept(HrSampler *s, int32_t token)
{
    if (token >= 0 && token < s->vocab)
        s->seen[token] = 1;
}

static int32_t
argmax(const float *x, int n)
{
    int32_t best = 0;
    for (int i = 1; i < n; i++) {
        if (x[i] > x[best])
            best = i;
    }
    return best;
}

static int
cmp_desc(const void *a, const void *b, void *user)
{
    const float *v = user;
    float x = v[*(const int *)a], y = v[*(const int *)b];
    if (x > y)
        return -1;
    if (x < y)
        return 1;
    return *(const int *)a - *(const int *)b; /* stable on ties: lower id first */
}

int32_t
hr_sampler_sample(HrSampler *s, float *logits)
{
    const int n = s->vocab;
    const HrSamplerParams *p = &s->p;

    if (p->repetition_penalty != 1.0f && p->repetition_penalty > 0.0f) {
        for (int i = 0; i < n; i++) {
            if (s->seen[i])
                logits[i] = logits[i] > 0.0f ? logits[i] / p->repetition_penalty
                                             : logits[i] * p->repetition_penalty;
        }
    }
    if (!(p->temperature > 0.0f))
        return argmax(logits, n);

    for (int i = 0; i < n; i++)
        logits[i] /= p->temperature;

    /* Sort candidates by logit (descending). */
    for (int i = 0; i < n; i++)
        s->idx[i] = i;
    g_qsort_with_data(s->idx, n, sizeof(int), cmp_desc, logits);
    int keep = n;
    if (p->top_k > 0 && p->top_k < keep)
        keep = p->top_k;

    /* Softmax over the kept candidates (probabilities into a scratch array
     * ordered like idx). */
    float max = logits[s->idx[0]];
    double sum = 0.0;
    float *prob = g_new(float, keep);
    for (int i = 0; i < keep; i++) {
        prob[i] = expf(logits[s->idx[i]] - max);
        sum += prob[i];
    }
    for (int i = 0; i < keep; i++)
        prob[i] = (float)(prob[i] / sum);

    if (p->top_p < 1.0f && p->top_p > 0.0f) {
        /* Smallest prefix whose mass reaches top_p (always at least one). */
        double cum = 0.0;
        int k = 0;
        while (k < keep) {
            cum += prob[k++];
            if (cum >= p->top_p)
                break;
        }
        keep = k;
    }
    if (p->min_p > 0.0f) {
        float threshold = p->min_p * prob[0];
        int k = 1;
        while (k < keep && prob[k] >= threshold)
            k++;
        keep = k;
    }

    double total = 0.0;
    for (int i = 0; i < keep; i++)
        total += prob[i];
    double r = next_uniform(&s->rng) * total;
    int32_t choice = s->idx[keep - 1];
    double cum = 0.0;
    for (int i = 0; i < keep; i++) {
        cum += prob[i];
        if (r < cum) {
            choice = s->idx[i];
            break;
        }
    }
    g_free(prob);
    return choice;
}
