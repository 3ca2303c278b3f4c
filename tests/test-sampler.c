/* The sampler: greedy is argmax, filters keep what they should, draws follow
 * the distribution, and a seed reproduces a run. */
#include <math.h>
#include <stdio.h>
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

/* The sampler as it was: the whole vocabulary sorted, then top-k, softmax,
 * top-p, min-p, draw. The fast one must draw the same tokens. */
static uint64_t
ref_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static int
ref_cmp(const void *a, const void *b, void *user)
{
    const float *v = user;
    int x = *(const int *)a, y = *(const int *)b;
    if (v[x] != v[y])
        return v[x] > v[y] ? -1 : 1;
    return x - y;
}

static int32_t
ref_sample(const HrSamplerParams *p, float *l, int n)
{
    for (int i = 0; i < n; i++)
        l[i] /= p->temperature;
    int *idx = g_new(int, n);
    for (int i = 0; i < n; i++)
        idx[i] = i;
    g_qsort_with_data(idx, n, sizeof(int), ref_cmp, l);
    int keep = p->top_k > 0 && p->top_k < n ? p->top_k : n;
    double sum = 0.0;
    float max = l[idx[0]];
    double *prob = g_new(double, keep);
    for (int i = 0; i < keep; i++)
        sum += (prob[i] = expf(l[idx[i]] - max));
    for (int i = 0; i < keep; i++)
        prob[i] /= sum;
    if (p->top_p < 1.0f) {
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
        int k = 1;
        while (k < keep && prob[k] >= p->min_p * prob[0])
            k++;
        keep = k;
    }
    double total = 0.0;
    for (int i = 0; i < keep; i++)
        total += prob[i];
    uint64_t rng = p->seed;
    double r = (double)(ref_next(&rng) >> 11) * (1.0 / 9007199254740992.0) * total, cum = 0.0;
    int32_t choice = idx[keep - 1];
    for (int i = 0; i < keep; i++) {
        cum += prob[i];
        if (r < cum) {
            choice = idx[i];
            break;
        }
    }
    g_free(idx);
    g_free(prob);
    return choice;
}

/* A large vocabulary (with ties; Llama-3's 128,256 tokens): the same draws
 * as the full sort, for the app's defaults, each filter alone, and top-k
 * above the 64 candidates a device returns. */
static void
check_large_vocab(void)
{
    enum { N = 128256 };
    static const struct { int top_k; float top_p, min_p; } cfgs[] = {
        { 40, 0.95f, 0.05f }, { 0, 0.9f, 0.0f }, { 0, 1.0f, 0.1f }, { 0, 1.0f, 0.0f }, { 5, 1.0f, 0.0f },
        { 0, 0.999f, 0.0f }, { 100, 1.0f, 0.0f }, { 1000, 0.95f, 0.05f },
    };
    GRand *rng = g_rand_new_with_seed(99);
    float *logits = g_new(float, N), *a = g_new(float, N), *b = g_new(float, N);
    for (int i = 0; i < N; i++)
        logits[i] = (float)(g_rand_int_range(rng, 0, 4000) / 400.0); /* many ties */
    int same = 0, total = 0;
    for (size_t c = 0; c < G_N_ELEMENTS(cfgs); c++) {
        for (uint64_t seed = 0; seed < 20; seed++) {
            HrSamplerParams p;
            hr_sampler_params_init(&p);
            p.temperature = 0.8f;
            p.top_k = cfgs[c].top_k;
            p.top_p = cfgs[c].top_p;
            p.min_p = cfgs[c].min_p;
            p.seed = seed;
            memcpy(a, logits, sizeof(float) * N);
            memcpy(b, logits, sizeof(float) * N);
            HrSampler *s = hr_sampler_new(&p, N);
            int32_t got = hr_sampler_sample(s, a), want = ref_sample(&p, b, N);
            hr_sampler_free(s);
            same += got == want;
            total++;
            HR_CHECK(got == want, "config %zu seed %d: drew %d, the full sort %d", c, (int)seed, got, want);
        }
    }
    printf("large vocabulary: %d of %d draws equal to the full sort\n", same, total);
    g_rand_free(rng);
    g_free(logits);
    g_free(a);
    g_free(b);
}

/* Draws from a device's candidates (hr_sampler_sample_candidates), made
 * here as a device makes them: the 64 best after the repetition penalty and
 * the denominator over the whole row. Each setting and seed: either the
 * candidates decide, and the token is the host's draw from the whole row;
 * or they answer -1 without touching the random state, and the whole-row
 * draw of hr_sampler_sample_penalized is the host's draw. */
static void
check_candidates(void)
{
    enum { N = 49152 };
    static const struct { float temp; int top_k; float top_p, min_p, rep; bool decides; } cfgs[] = {
        { 0.0f, 0, 1.0f, 0.0f, 1.0f, true }, { 0.0f, 0, 1.0f, 0.0f, 1.3f, true },
        { 0.7f, 40, 0.95f, 0.05f, 1.1f, true }, { 0.7f, 64, 1.0f, 0.0f, 1.0f, true },
        { 0.8f, 0, 0.9f, 0.0f, 1.0f, false }, { 0.9f, 0, 1.0f, 0.1f, 1.2f, false },
        { 1.0f, 0, 1.0f, 0.0f, 1.0f, false }, { 0.3f, 0, 0.5f, 0.0f, 1.0f, false },
    };
    GRand *rng = g_rand_new_with_seed(5);
    float *logits = g_new(float, N), *a = g_new(float, N), *b = g_new(float, N);
    for (int i = 0; i < N; i++)
        logits[i] = (float)(g_rand_int_range(rng, 0, 3000) / 300.0); /* ties */
    for (int i = 0; i < 40; i++)
        logits[g_rand_int_range(rng, 0, N)] += 6.0f;                /* a peaked head */
    int *idx = g_new(int, N);
    int decided = 0, total = 0;
    for (size_t c = 0; c < G_N_ELEMENTS(cfgs); c++) {
        for (uint64_t seed = 0; seed < 30; seed++) {
            HrSamplerParams p;
            hr_sampler_params_init(&p);
            p.temperature = cfgs[c].temp;
            p.top_k = cfgs[c].top_k;
            p.top_p = cfgs[c].top_p;
            p.min_p = cfgs[c].min_p;
            p.repetition_penalty = cfgs[c].rep;
            p.seed = seed;
            HrSampler *host = hr_sampler_new(&p, N), *dev = hr_sampler_new(&p, N);
            for (int i = 0; i < 200; i++) {
                hr_sampler_accept(host, (int32_t)(i * 97 % N));
                hr_sampler_accept(dev, (int32_t)(i * 97 % N));
            }
            HrSampleSpec spec;
            HR_CHECK(hr_sampler_device_spec(dev, &spec), "config %zu: no device spec", c);
            memcpy(a, logits, sizeof(float) * N);
            memcpy(b, logits, sizeof(float) * N);
            /* the device's part */
            for (int i = 0; i < spec.n_seen; i++) {
                float x = b[spec.seen[i]];
                b[spec.seen[i]] = x > 0.0f ? x / spec.penalty : x * spec.penalty;
            }
            for (int i = 0; i < N; i++)
                idx[i] = i;
            g_qsort_with_data(idx, N, sizeof(int), ref_cmp, b);
            HrCandidates cand = { .n = HR_CANDIDATES_MAX, .finite = true };
            for (int i = 0; i < HR_CANDIDATES_MAX; i++) {
                cand.ids[i] = idx[i];
                cand.vals[i] = b[idx[i]];
            }
            for (int i = 0; i < N && spec.inv_t > 0.0f; i++)
                cand.sum += exp(((double)b[i] - cand.vals[0]) * spec.inv_t);
            int32_t want = hr_sampler_sample(host, a);
            int32_t got = hr_sampler_sample_candidates(dev, &cand);
            total++;
            if (got >= 0)
                decided++;
            else
                HR_CHECK(!cfgs[c].decides, "config %zu seed %d: the candidates did not decide", c, (int)seed);
            if (got < 0)
                got = hr_sampler_sample_penalized(dev, b);
            HR_CHECK(got == want, "config %zu seed %d: drew %d, the host %d", c, (int)seed, got, want);
            hr_sampler_free(host);
            hr_sampler_free(dev);
        }
    }
    /* more than 64 kept: no spec */
    HrSamplerParams p;
    hr_sampler_params_init(&p);
    p.temperature = 0.7f;
    p.top_k = 65;
    HrSampler *s = hr_sampler_new(&p, N);
    HrSampleSpec spec;
    HR_CHECK(!hr_sampler_device_spec(s, &spec), "top-k 65 got a device spec");
    hr_sampler_free(s);
    /* a non-finite row never decides */
    p.top_k = 40;
    s = hr_sampler_new(&p, N);
    HrCandidates cand = { .n = HR_CANDIDATES_MAX, .finite = false };
    for (int i = 0; i < HR_CANDIDATES_MAX; i++)
        cand.ids[i] = i;
    HR_CHECK(hr_sampler_sample_candidates(s, &cand) == -1, "drew from a non-finite row");
    hr_sampler_free(s);
    printf("device candidates: %d of %d draws decided by them, every draw equal to the host's\n", decided, total);
    HR_CHECK(decided > total / 2 && decided < total, "%d of %d decided: the test misses one of the paths", decided,
             total);
    g_rand_free(rng);
    g_free(logits);
    g_free(a);
    g_free(b);
    g_free(idx);
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
    check_large_vocab();
    check_candidates();
    return hr_test_result();
}
