/* bench-sampler — the time hr_sampler_sample takes per token on a large
 * vocabulary, for the app's settings and the filters alone.
 *
 * The logits are Llama-3-sized (128,256 by default, or argv[1]) and shaped
 * like a language model's: most tokens around -2 with a spread of 2.5, a
 * few hundred plausible ones a few units above them and a handful of strong
 * candidates on top; they change a little every token (as a model's do) and
 * 300 tokens of context feed the repetition penalty. Each configuration
 * draws 500 tokens; the figure is the mean wall time of the call (the copy
 * of the logits it gets, like the engine's, is not counted). Prints figures
 * and asserts nothing; use a release build:
 *
 *   ./build-rel/tests/bench-sampler [VOCAB]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "sampler.h"

int
main(int argc, char **argv)
{
    const int V = argc > 1 ? atoi(argv[1]) : 128256;
    if (V < 64) {
        fprintf(stderr, "bench-sampler: the vocabulary must have at least 64 tokens\n");
        return 2;
    }
    static const struct {
        const char *what;
        float temp, top_p, min_p, rep;
        int top_k;
    } cfgs[] = {
        { "the app's defaults (temp 0.7, top-k 40, top-p 0.95, min-p 0.05, repeat 1.1)", 0.7f, 0.95f, 0.05f, 1.1f, 40 },
        { "temp 0.7, top-p 0.95", 0.7f, 0.95f, 0.0f, 1.0f, 0 },
        { "temp 0.7, top-p 0.95, repeat 1.1", 0.7f, 0.95f, 0.0f, 1.1f, 0 },
        { "temp 0.7, min-p 0.05", 0.7f, 1.0f, 0.05f, 1.0f, 0 },
        { "temp 1.0, no filter", 1.0f, 1.0f, 0.0f, 1.0f, 0 },
        { "greedy", 0.0f, 1.0f, 0.0f, 1.0f, 0 },
    };
    enum { DRAWS = 500 };
    GRand *rng = g_rand_new_with_seed(7);
    float *base = g_new(float, V), *work = g_new(float, V);
    for (int i = 0; i < V; i++)
        base[i] = (float)(g_rand_double_range(rng, -1.0, 1.0) + g_rand_double_range(rng, -1.0, 1.0) +
                          g_rand_double_range(rng, -1.0, 1.0)) * 2.5f - 2.0f;
    printf("vocabulary %d, %d draws per configuration\n", V, DRAWS);
    for (size_t c = 0; c < G_N_ELEMENTS(cfgs); c++) {
        HrSamplerParams p;
        hr_sampler_params_init(&p);
        p.temperature = cfgs[c].temp;
        p.top_k = cfgs[c].top_k;
        p.top_p = cfgs[c].top_p;
        p.min_p = cfgs[c].min_p;
        p.repetition_penalty = cfgs[c].rep;
        p.seed = 1;
        HrSampler *s = hr_sampler_new(&p, V);
        for (int i = 0; i < 300; i++)
            hr_sampler_accept(s, g_rand_int_range(rng, 0, V));
        double total = 0.0, worst = 0.0;
        for (int d = 0; d < DRAWS; d++) {
            /* this token's logits: the base, 300 plausible tokens lifted,
             * 5 strong ones on top */
            memcpy(work, base, sizeof(float) * (size_t)V);
            for (int i = 0; i < 300; i++)
                work[g_rand_int_range(rng, 0, V)] += (float)g_rand_double_range(rng, 4.0, 9.0);
            for (int i = 0; i < 5; i++)
                work[g_rand_int_range(rng, 0, V)] += (float)g_rand_double_range(rng, 10.0, 14.0);
            gint64 t0 = g_get_monotonic_time();
            int32_t tok = hr_sampler_sample(s, work);
            double dt = (double)(g_get_monotonic_time() - t0) / 1e3;
            total += dt;
            worst = MAX(worst, dt);
            hr_sampler_accept(s, tok);
        }
        printf("%-80s %.3f ms per token (worst %.3f)\n", cfgs[c].what, total / DRAWS, worst);
        hr_sampler_free(s);
    }
    g_free(base);
    g_free(work);
    g_rand_free(rng);
    return 0;
}
