/* The sampler: greedy is argmax, filters keep what they should, draws follow
 * the distribution, and a seed reproduces a run. */
#include <math.h>
#include <string.h>

#include <glib.h>

#include "hr-test.h"
#include "sampler.h"

enum { V = 8 };

static int32_t
sample_once(const HrSamplerParams *p, const float *logits_in)
{
    float l[V];
    memcpy(l, logits_in, sizeof l);
    HrSampler *s = hr_sampler_new(p, V);
    int32_t t = hr_sampler_sample(s, l);
    hr_sampler_free(s);
    return t;
}

int
main(void)
{
    /* probabilities 0.4, 0.3, 0.2, 0.1 for tokens 3, 1, 6, 0; others ~0 */
    float logits[V];
    for (int i = 0; i < V; i++)
        logits[i] = -1e9f;
    logits[3] = logf(0.4f);
    logits[1] = logf(0.3f);
    logits[6] = logf(0.2f);
    logits[0] = logf(0.1f);

    HrSamplerParams p;
    hr_sampler_params_init(&p);
    HR_CHECK(sample_once(&p, logits) == 3, "greedy is argmax");

    /* Repetition penalty can flip the choice (HF semantics: divide positive
     * logits, multiply negative ones). */
    {
        float l[V] = { 0 };
        l[2] = 2.0f;
        l[5] = 1.5f;
        p.repetition_penalty = 2.0f;
        HrSampler *s = hr_sampler_new(&p, V);
        hr_sampler_accept(s, 2);
        HR_CHECK(hr_sampler_sample(s, l) == 5, "penalised token 2 should lose to 5");
        hr_sampler_free(s);
        p.repetition_penalty = 1.0f;
    }

    /* Frequencies with temperature 1 follow the distribution. */
    p.temperature = 1.0f;
    p.seed = 42;
    HrSampler *s = hr_sampler_new(&p, V);
    int counts[V] = { 0 };
    const int N = 40000;
    for (int i = 0; i < N; i++) {
        float l[V];
        memcpy(l, logits, sizeof l);
        counts[hr_sampler_sample(s, l)]++;
    }
    hr_sampler_free(s);
    const float expect[V] = { 0.1f, 0.3f, 0, 0.4f, 0, 0, 0.2f, 0 };
    for (int i = 0; i < V; i++) {
        float f = (float)counts[i] / N;
        HR_CHECK(fabsf(f - expect[i]) < 0.01f, "token %d frequency %.4f, expected %.2f", i, f, expect[i]);
    }

    /* top-k 2 keeps only tokens 3 and 1, in ratio 4:3. */
    p.top_k = 2;
    s = hr_sampler_new(&p, V);
    memset(counts, 0, sizeof counts);
    for (int i = 0; i < N; i++) {
        float l[V];
        memcpy(l, logits, sizeof l);
        counts[hr_sampler_sample(s, l)]++;
    }
    hr_sampler_free(s);
    HR_CHECK(counts[3] + counts[1] == N, "top-k leaked");
    HR_CHECK(fabsf((float)counts[3] / N - 4.0f / 7.0f) < 0.01f, "top-k ratio %d:%d", counts[3], counts[1]);
    p.top_k = 0;

    /* top-p 0.65: smallest prefix reaching 0.65 is {3, 1}. */
    p.top_p = 0.65f;
    for (uint64_t seed = 0; seed < 200; seed++) {
        p.seed = seed;
        int32_t t = sample_once(&p, logits);
        HR_CHECK(t == 3 || t == 1, "top-p drew %d", t);
    }
    p.top_p = 1.0f;

    /* min-p 0.6: keeps tokens with p >= 0.24, i.e. 3 and 1. */
    p.min_p = 0.6f;
    for (uint64_t seed = 0; seed < 200; seed++) {
        p.seed = seed;
        int32_t t = sample_once(&p, logits);
        HR_CHECK(t == 3 || t == 1, "min-p drew %d", t);
    }
    p.min_p = 0.0f;

    /* Low temperature concentrates on the argmax. */
    p.temperature = 0.01f;
    for (uint64_t seed = 0; seed < 50; seed++) {
        p.seed = seed;
        HR_CHECK(sample_once(&p, logits) == 3, "cold sampling should be greedy");
    }

    /* Same seed, same sequence; reset replays it; other seed differs. */
    p.temperature = 1.0f;
    p.seed = 7;
    int32_t a[64], b[64], c[64];
    HrSampler *s1 = hr_sampler_new(&p, V);
    for (int i = 0; i < 64; i++) {
        float l[V];
        memcpy(l, logits, sizeof l);
        a[i] = hr_sampler_sample(s1, l);
    }
    hr_sampler_reset(s1);
    for (int i = 0; i < 64; i++) {
        float l[V];
        memcpy(l, logits, sizeof l);
        b[i] = hr_sampler_sample(s1, l);
    }
    hr_sampler_free(s1);
    p.seed = 8;
    s1 = hr_sampler_new(&p, V);
    for (int i = 0; i < 64; i++) {
        float l[V];
        memcpy(l, logits, sizeof l);
        c[i] = hr_sampler_sample(s1, l);
    }
    hr_sampler_free(s1);
    HR_CHECK(memcmp(a, b, sizeof a) == 0, "reset did not replay the seed");
    HR_CHECK(memcmp(a, c, sizeof a) != 0, "different seeds gave the same 64 draws");
    return hr_test_result();
}
