#include "sampler.h"

#include <math.h>
#include <stdbool.h>
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

/* Candidate order: logit descending, lower id first on ties. */
static inline bool
before(const float *v, int a, int b)
{
    return v[a] > v[b] || (v[a] == v[b] && a < b);
}

static int
cmp_desc(const void *a, const void *b, void *user)
{
    const float *v = user;
    int x = *(const int *)a, y = *(const int *)b;
    return before(v, x, y) ? -1 : before(v, y, x) ? 1 : 0;
}

/* The m best candidates of n, in order, into idx[0..m): a min-heap of the
 * m best seen so far (its root the worst of them), so a large vocabulary
 * costs one comparison per token for nearly all tokens; then a sort of m.
 * The old full sort of the vocabulary took 4-18 ms a token at 32K-128K. */
static void
top_m(const float *v, int n, int m, int *idx)
{
    int size = 0;
    for (int i = 0; i < n; i++) {
        if (size == m && !before(v, i, idx[0]))
            continue;
        int pos;
        if (size < m) {
            pos = size++;
            while (pos > 0 && before(v, idx[(pos - 1) / 2], i)) { /* sift up: parent better -> swap */
                idx[pos] = idx[(pos - 1) / 2];
                pos = (pos - 1) / 2;
            }
        } else {
            pos = 0;
            for (;;) { /* sift down from the root */
                int c = 2 * pos + 1;
                if (c >= size)
                    break;
                if (c + 1 < size && before(v, idx[c], idx[c + 1]))
                    c++;                    /* the worse child */
                if (!before(v, i, idx[c]))
                    break;                  /* i is worse than both children: it goes here */
                idx[pos] = idx[c];
                pos = c;
            }
        }
        idx[pos] = i;
    }
    g_qsort_with_data(idx, size, sizeof(int), cmp_desc, (gpointer)v);
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

    /* Candidates in order, as many as the filters can keep: top-k's, or
     * (no top-k) enough to cover top_p's mass, found by doubling. The
     * softmax's denominator is over the top-k candidates, or the whole
     * vocabulary without top-k, as transformers computes it. */
    int keep = p->top_k > 0 && p->top_k < n ? p->top_k : n;
    const bool need_all = keep == n && !(p->top_p < 1.0f && p->top_p > 0.0f) && !(p->min_p > 0.0f);
    int m = need_all ? n : MIN(keep, 64);
    top_m(logits, n, m, s->idx);
    float max = logits[s->idx[0]];
    double sum = 0.0;
    if (keep < n) {
        m = keep; /* top_m gave exactly the top-k */
        for (int i = 0; i < keep; i++)
            sum += expf(logits[s->idx[i]] - max);
    } else {
        for (int i = 0; i < n; i++)
            sum += expf(logits[i] - max);
        const bool use_p = p->top_p < 1.0f && p->top_p > 0.0f;
        while (!need_all && m < n) {
            /* Enough candidates when they hold top_p's mass, or (min-p
             * alone) when the last of them is already below min-p. */
            bool enough;
            if (use_p) {
                double mass = 0.0;
                for (int i = 0; i < m; i++)
                    mass += expf(logits[s->idx[i]] - max);
                enough = mass / sum >= p->top_p;
            } else {
                enough = expf(logits[s->idx[m - 1]] - max) < p->min_p;
            }
            if (enough)
                break;
            m = MIN(4 * m, n);
            top_m(logits, n, m, s->idx);
        }
        keep = m;
    }
    float *prob = g_new(float, (size_t)MAX(keep, 1));
    for (int i = 0; i < keep; i++)
        prob[i] = (float)(expf(logits[s->idx[i]] - max) / sum);

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
        /* The candidates are sorted and reach past the threshold (or are all
         * of them), so the first one below it ends the list. */
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
