#include "sampler.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "cpu-exp.h"
#include "cpu-kernels.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define SAMPLER_X86 1
#define SAMPLER_AVX512 __attribute__((target("avx512f,avx512vl,avx512dq,avx2,fma")))
#endif

struct HrSampler {
    HrSamplerParams p;
    int vocab;
    uint64_t rng;
    uint8_t *seen;      /* [vocab] tokens in the context */
    GArray *seen_ids;   /* int32: the same tokens, once each (the penalty visits only these) */
    int *idx;           /* [vocab] scratch for sorting */
    float *prob;        /* [vocab] the candidates' probabilities (no allocation per token) */
    float *val;         /* [vocab] the candidates' logits, in order */
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
    s->seen_ids = g_array_new(FALSE, FALSE, sizeof(int32_t));
    s->idx = g_new(int, vocab_size);
    s->prob = g_new(float, MAX(vocab_size, 1));
    s->val = g_new(float, MAX(vocab_size, 1));
    hr_sampler_reset(s);
    return s;
}

void
hr_sampler_free(HrSampler *s)
{
    if (!s)
        return;
    g_free(s->seen);
    g_array_unref(s->seen_ids);
    g_free(s->idx);
    g_free(s->prob);
    g_free(s->val);
    g_free(s);
}

void
hr_sampler_reset(HrSampler *s)
{
    s->rng = s->p.seed;
    for (guint i = 0; i < s->seen_ids->len; i++)
        s->seen[g_array_index(s->seen_ids, int32_t, i)] = 0;
    g_array_set_size(s->seen_ids, 0);
}

void
hr_sampler_accept(HrSampler *s, int32_t token)
{
    if (token >= 0 && token < s->vocab && !s->seen[token]) {
        s->seen[token] = 1;
        g_array_append_val(s->seen_ids, token);
    }
}

/* ---- whole-vocabulary passes (AVX-512 where the CPU has it) ------------------------- */

#ifdef SAMPLER_X86
SAMPLER_AVX512 static float
max_avx512(const float *x, int n)
{
    __m512 m = _mm512_set1_ps(-INFINITY);
    int i = 0;
    for (; i + 16 <= n; i += 16)
        m = _mm512_max_ps(m, _mm512_loadu_ps(x + i));
    float best = _mm512_reduce_max_ps(m);
    for (; i < n; i++)
        best = x[i] > best ? x[i] : best;
    return best;
}

/* sum_i e^((x[i] - max) * inv_t), e^r by hr_exp16 (cpu-exp.h; within 2 ulp
 * of expf; below e^-87 counts as 0, a term 1e-38 of the largest); blocks
 * of 1024 summed in FP32 lanes, the blocks in double. */
SAMPLER_AVX512 static double
exp_sum_avx512(const float *x, int n, float max, float inv_t)
{
    const __m512 vmax = _mm512_set1_ps(max), vt = _mm512_set1_ps(inv_t), lo = _mm512_set1_ps(-87.0f);
    double total = 0.0;
    int i = 0;
    while (i + 16 <= n) {
        __m512 acc = _mm512_setzero_ps();
        for (int end = MIN(n, i + 1024); i + 16 <= end; i += 16) {
            __m512 r = _mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(x + i), vmax), vt);
            __mmask16 live = _mm512_cmp_ps_mask(r, lo, _CMP_GE_OQ);
            /* clamped at -87: e^-87 is still a normal float (no denormal assists) */
            acc = _mm512_mask_add_ps(acc, live, acc, hr_exp16(_mm512_max_ps(r, lo)));
        }
        total += (double)_mm512_reduce_add_ps(acc);
    }
    for (; i < n; i++)
        total += expf((x[i] - max) * inv_t);
    return total;
}

/* The first index from `from` on whose value is above v (strictly), or n. */
SAMPLER_AVX512 static int
next_above_avx512(const float *x, int from, int n, float v)
{
    const __m512 vv = _mm512_set1_ps(v);
    int i = from;
    for (; i + 16 <= n; i += 16) {
        __mmask16 m = _mm512_cmp_ps_mask(_mm512_loadu_ps(x + i), vv, _CMP_GT_OQ);
        if (m)
            return i + __builtin_ctz(m);
    }
    for (; i < n; i++) {
        if (x[i] > v)
            return i;
    }
    return n;
}
#endif

static float
max_of(const float *x, int n)
{
#ifdef SAMPLER_X86
    if (hr_cpu_avx512())
        return max_avx512(x, n);
#endif
    float best = x[0];
    for (int i = 1; i < n; i++)
        best = x[i] > best ? x[i] : best;
    return best;
}

static double
exp_sum(const float *x, int n, float max, float inv_t)
{
#ifdef SAMPLER_X86
    if (hr_cpu_avx512())
        return exp_sum_avx512(x, n, max, inv_t);
#endif
    double total = 0.0;
    for (int i = 0; i < n; i++)
        total += expf((x[i] - max) * inv_t);
    return total;
}

/* The first index of the largest value (ties: the lowest id). */
static int32_t
argmax(const float *x, int n)
{
    const float m = max_of(x, n);
    for (int i = 0; i < n; i++) {
        if (x[i] == m)
            return i;
    }
    return 0; /* NaNs only */
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
        if (size == m && !before(v, i, idx[0])) {
#ifdef SAMPLER_X86
            /* nothing enters a full heap unless it beats the root's value
             * (a tie with a lower id never comes later): jump to the next */
            if (hr_cpu_avx512())
                i = next_above_avx512(v, i + 1, n, v[idx[0]]) - 1;
#endif
            continue;
        }
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

/* The candidates' probabilities, top-p's and min-p's cuts, and the draw:
 * vals[0..keep) are the candidates' logits in order (vals[0] = max), sum
 * the softmax's denominator. Returns the chosen candidate's index. */
static int
draw(HrSampler *s, const float *vals, int keep, float max, double sum, float inv_t)
{
    const HrSamplerParams *p = &s->p;
    float *prob = s->prob;
    for (int i = 0; i < keep; i++)
        prob[i] = (float)(expf((vals[i] - max) * inv_t) / sum);

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
    int choice = keep - 1;
    double cum = 0.0;
    for (int i = 0; i < keep; i++) {
        cum += prob[i];
        if (r < cum) {
            choice = i;
            break;
        }
    }
    return choice;
}

static bool
penalty_on(const HrSamplerParams *p)
{
    return p->repetition_penalty != 1.0f && p->repetition_penalty > 0.0f;
}

/* sum_i e^((vals[i] - max) * inv_t) over the first m candidates. */
static double
head_sum(const float *vals, int m, float max, float inv_t)
{
    double sum = 0.0;
    for (int i = 0; i < m; i++)
        sum += expf((vals[i] - max) * inv_t);
    return sum;
}

/* No filter: the candidate among the first m where the cumulative
 * probability passes r, or -1 when r lies beyond them. */
static int
walk(const float *vals, int m, float max, double sum, float inv_t, double r)
{
    double cum = 0.0;
    for (int i = 0; i < m; i++) {
        cum += (float)(expf((vals[i] - max) * inv_t) / sum);
        if (r < cum)
            return i;
    }
    return -1;
}

/* Without top-k: do the first m candidates hold everything top-p (its mass)
 * or min-p alone (the last of them already below the cut) can keep? */
static bool
covers(const HrSamplerParams *p, const float *vals, int m, float max, double sum, float inv_t)
{
    if (p->top_p < 1.0f && p->top_p > 0.0f)
        return head_sum(vals, m, max, inv_t) / sum >= p->top_p;
    return expf((vals[m - 1] - max) * inv_t) < p->min_p;
}

/* The m best candidates into s->idx, their logits into s->val. */
static void
best_m(HrSampler *s, const float *logits, int m)
{
    top_m(logits, s->vocab, m, s->idx);
    for (int i = 0; i < m; i++)
        s->val[i] = logits[s->idx[i]];
}

static int32_t
sample(HrSampler *s, float *logits, bool penalize)
{
    const int n = s->vocab;
    const HrSamplerParams *p = &s->p;

    if (penalize && penalty_on(p)) {
        for (guint j = 0; j < s->seen_ids->len; j++) {
            const int32_t i = g_array_index(s->seen_ids, int32_t, j);
            logits[i] = logits[i] > 0.0f ? logits[i] / p->repetition_penalty : logits[i] * p->repetition_penalty;
        }
    }
    if (!(p->temperature > 0.0f))
        return argmax(logits, n);

    /* The temperature divides inside the exponentials (e^((l - max) / T))
     * rather than in a pass over the vocabulary: the order is the same. */
    const float inv_t = 1.0f / p->temperature;

    /* Candidates in order, as many as the filters can keep: top-k's, or
     * (no top-k) enough to cover top_p's mass, found by doubling. The
     * softmax's denominator is over the top-k candidates, or the whole
     * vocabulary without top-k, as transformers computes it. */
    int keep = p->top_k > 0 && p->top_k < n ? p->top_k : n;
    const bool need_all = keep == n && !(p->top_p < 1.0f && p->top_p > 0.0f) && !(p->min_p > 0.0f);
    int m = keep < n ? keep : MIN(n, HR_CANDIDATES_MAX);
    best_m(s, logits, m);
    const float max = s->val[0];
    double sum;
    if (keep < n) {
        sum = head_sum(s->val, keep, max, inv_t); /* best_m gave exactly the top-k */
    } else {
        sum = exp_sum(logits, n, max, inv_t);
        if (need_all) {
            /* No filter: the draw walks the candidates in order until their
             * mass passes it, so only that prefix needs sorting (grown by
             * 4x as needed); the probabilities of the whole vocabulary sum
             * to 1, which stands for their total. */
            const double r = next_uniform(&s->rng);
            for (;;) {
                const int i = walk(s->val, m, max, sum, inv_t, r);
                if (i >= 0)
                    return s->idx[i];
                if (m == n)
                    return s->idx[n - 1];
                m = MIN(4 * m, n);
                best_m(s, logits, m);
            }
        }
        while (m < n && !covers(p, s->val, m, max, sum, inv_t)) {
            m = MIN(4 * m, n);
            best_m(s, logits, m);
        }
        keep = m;
    }
    return s->idx[draw(s, s->val, keep, max, sum, inv_t)];
}

int32_t
hr_sampler_sample(HrSampler *s, float *logits)
{
    return sample(s, logits, true);
}

int32_t
hr_sampler_sample_penalized(HrSampler *s, float *logits)
{
    return sample(s, logits, false);
}

bool
hr_sampler_device_spec(const HrSampler *s, HrSampleSpec *spec)
{
    const HrSamplerParams *p = &s->p;
    const bool greedy = !(p->temperature > 0.0f);
    if (!greedy && p->top_k > HR_CANDIDATES_MAX && p->top_k < s->vocab)
        return false;
    spec->inv_t = greedy ? 0.0f : 1.0f / p->temperature;
    spec->penalty = penalty_on(p) ? p->repetition_penalty : 1.0f;
    spec->seen = (const int32_t *)(const void *)s->seen_ids->data;
    spec->n_seen = penalty_on(p) ? (int)s->seen_ids->len : 0;
    return true;
}

/* The same decisions as sample() above, from the device's candidates: each
 * branch there that fits inside HR_CANDIDATES_MAX candidates is taken here
 * with the same helpers; the others answer -1. */
int32_t
hr_sampler_sample_candidates(HrSampler *s, const HrCandidates *c)
{
    const int n = s->vocab;
    const HrSamplerParams *p = &s->p;
    if (!c->finite || c->n < 1 || c->n != MIN(n, HR_CANDIDATES_MAX))
        return -1;
    if (!(p->temperature > 0.0f))
        return c->ids[0];
    const float inv_t = 1.0f / p->temperature;
    int keep = p->top_k > 0 && p->top_k < n ? p->top_k : n;
    const bool need_all = keep == n && !(p->top_p < 1.0f && p->top_p > 0.0f) && !(p->min_p > 0.0f);
    const float max = c->vals[0];
    double sum;
    if (keep < n) {
        if (keep > c->n)
            return -1;
        sum = head_sum(c->vals, keep, max, inv_t);
    } else {
        sum = c->sum;
        if (!(sum >= 1.0) || !isfinite(sum))
            return -1; /* the maximum's own term is 1 */
        if (need_all) {
            uint64_t rng = s->rng; /* committed only when the draw lands inside */
            int i = walk(c->vals, c->n, max, sum, inv_t, next_uniform(&rng));
            if (i < 0 && c->n == n)
                i = n - 1;
            if (i < 0)
                return -1;
            s->rng = rng;
            return c->ids[i];
        }
        if (c->n < n && !covers(p, c->vals, c->n, max, sum, inv_t))
            return -1;
        keep = c->n;
    }
    return c->ids[draw(s, c->vals, keep, max, sum, inv_t)];
}
