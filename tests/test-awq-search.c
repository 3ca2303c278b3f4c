/* test-awq-search.c — the AWQ scale/clip search (quantize/awq.c):
 *  (a) folding the searched scales without quantization (the fold-only debug
 *      mode) leaves the FP function unchanged: logits within 1e-4 on the tiny
 *      fixtures (GQA, MHA with v->o, llama3 RoPE, Qwen2 biases), g = 32;
 *  (b) stories260K at g = 32 with the per-channel fallback (attention at
 *      g = 32, down_proj per output channel; gate/up, N = 172, stay FP16),
 *      part skipped without the asset: calibrate on text sampled from the
 *      FP model itself (16 x 128 tokens after BOS, temperature 0.8), then
 *      perplexity on 32 other sampled windows: FP, RTN and AWQ printed,
 *      AWQ <= RTN asserted. (With only the 64x64 attention linears
 *      quantized the AWQ/RTN gap is within the noise of such a small
 *      held-out set, so the test quantizes down_proj too.)
 *  (c) the search's CPU kernels (engine/cpu/cpu-awq.c) against plain
 *      double-precision loops: exp, SiLU*up, causal GQA attention (head
 *      sizes 8 and 64, a length that is no multiple of 16), the row
 *      reductions; the same bits on 1 and 2 threads; the fake quantizer
 *      of one row (vectorised) gives the bits of hr_rtn_quantize_bits;
 *  (d) the search through the backend's gemm op (the path of GPU backends:
 *      GEMM attention, the Gram matrix by gemm calls), forced on the CPU
 *      with HEARTH_AWQ_GEMM_OP, chooses the same ratios (printed losses to 3
 *      digits) as the CPU path, on GQA and MHA (v -> o) fixtures. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "awq-private.h"
#include "hr-awq-log.h"
#include "cpu-awq.h"
#include "cpu-kernels.h"
#include "hr-test.h"
#include "hr-half.h"
#include "model.h"
#include "quantize.h"

static HrModel *
load(const char *dir)
{
    HrModelOptions opt;
    hr_model_options_init(&opt);
    opt.kv_type = HR_KV_F32;
    opt.n_threads = 2;
    HrModel *m = NULL;
    HrError err = { 0 };
    HrStatus st = hr_model_load(dir, &opt, &m, &err);
    HR_CHECK(st == HR_OK, "loading %s: %s", dir, err.message);
    return m;
}

static void
on_log(const char *line, void *user)
{
    printf("  %s: %s\n", (const char *)user, line);
}

/* AWQ with groups of 32 on ns windows of L calibration tokens. */
static void
awq_options(HrQuantOptions *opt, const int32_t *tokens, int ns, int L)
{
    hr_quant_options_init(opt);
    opt->method = HR_QUANT_AWQ;
    opt->group_size = 32;
    opt->calib_tokens = tokens;
    opt->n_calib_tokens = (size_t)ns * L;
    opt->samples = ns;
    opt->seqlen = L;
}

static bool
quantize_bits(const char *in, const char *out, HrQuantMethod method, bool fold_only, bool per_channel,
              const int32_t *tokens, int ns, int L, const char *label, int fake_bits)
{
    HrQuantOptions opt;
    awq_options(&opt, tokens, ns, L);
    if (fake_bits) {
        opt.fake_quant = true;
        opt.bits = fake_bits;
    }
    opt.method = method;
    opt.per_channel_fallback = per_channel;
    opt.awq_fold_only = fold_only;
    opt.log = on_log;
    HrError err = { 0 };
    HrStatus st = hr_quantize_model(in, out, &opt, NULL, (void *)label, &err);
    HR_CHECK(st == HR_OK, "quantizing %s: %s", in, err.message);
    return st == HR_OK;
}

static bool
quantize(const char *in, const char *out, HrQuantMethod method, bool fold_only, bool per_channel, const int32_t *tokens,
         int ns, int L, const char *label)
{
    return quantize_bits(in, out, method, fold_only, per_channel, tokens, ns, L, label, 0);
}

/* n calibration ids in 3..252 from a linear congruential sequence seeded by r */
static void
random_tokens(int32_t *tokens, int n, guint32 r)
{
    for (int i = 0; i < n; i++) {
        r = r * 1664525u + 1013904223u;
        tokens[i] = (int32_t)(3 + (r >> 8) % 250);
    }
}

static void
fold_check(const char *fixture, const char *tmp)
{
    g_autofree char *in = g_build_filename(HEARTH_FIXTURES, "hf-tiny", fixture, "f32", NULL);
    g_autofree char *out = g_build_filename(tmp, fixture, NULL);
    enum { NS = 4, L = 32 };
    int32_t tokens[NS * L];
    random_tokens(tokens, NS * L, 12345);
    if (!quantize(in, out, HR_QUANT_AWQ, true, false, tokens, NS, L, fixture))
        return;
    HrModel *a = load(in), *b = load(out);
    if (!a || !b)
        return;
    int V = hr_model_config(a)->vocab_size;
    HrError err = { 0 };
    HR_CHECK(hr_model_eval_all(a, tokens, 24, &err) == HR_OK, "%s", err.message);
    HR_CHECK(hr_model_eval_all(b, tokens, 24, &err) == HR_OK, "%s", err.message);
    float *la = g_new(float, V), *lb = g_new(float, V);
    double worst = 0.0;
    for (int t = 0; t < 24; t++) {
        hr_model_logits_row(a, t, la, &err);
        hr_model_logits_row(b, t, lb, &err);
        for (int v = 0; v < V; v++)
            worst = hr_worse(worst, fabs((double)la[v] - lb[v]));
    }
    printf("%s: fold-only max |logit diff| %.3g\n", fixture, worst);
    HR_CHECK(worst <= 1e-4, "%s: folding changed the logits by %g", fixture, worst);
    g_free(la);
    g_free(lb);
    hr_model_free(a);
    hr_model_free(b);
}

/* The search's own FP forward is the model's: after the last layer its
 * hidden state (hr_awq_hidden), through the final norm, the lm_head and
 * Gemma 2's soft cap here, gives the engine's logits at every position of
 * each calibration window (HEARTH_CPU_EXACT: FP32 on both sides). What the
 * fold check cannot see: a block the search runs wrong (a norm, the
 * activation, RoPE's base or factors, the window, the cap) still folds
 * exactly, but scores its ratios on the wrong activations. */
static void
forward_check(const char *fixture)
{
    g_autofree char *in = g_build_filename(HEARTH_FIXTURES, "hf-tiny", fixture, "f32", NULL);
    enum { NS = 2, L = 40 };
    int32_t tokens[NS * L];
    random_tokens(tokens, NS * L, 777);
    HrModelConfig cfg;
    HrTensorSet *ts = NULL;
    HrError err = { 0 };
    if (hr_model_config_load(in, &cfg, &err) != HR_OK || hr_tensor_set_open_dir(in, &ts, &err) != HR_OK) {
        HR_CHECK(false, "%s: %s", fixture, err.message);
        return;
    }
    HrQuantOptions opt;
    awq_options(&opt, tokens, NS, L);
    opt.awq_fold_only = true;
    HrAwqState *S = NULL;
    GHashTable *over = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    HrStatus st = hr_awq_begin(&cfg, ts, &opt, tokens, NS, L, NULL, &S, &err);
    while (st == HR_OK && hr_awq_next_layer(S) < cfg.n_layers)
        st = hr_awq_layer(S, over, &err);
    HrModel *m = st == HR_OK ? load(in) : NULL;
    HR_CHECK(st == HR_OK, "%s: the search: %s", fixture, err.message);
    if (m) {
        const int D = cfg.dim, V = cfg.vocab_size;
        const HrTensor *nt = hr_tensor_set_find(ts, "model.norm.weight");
        const HrTensor *ht = hr_tensor_set_find(ts, "lm_head.weight");
        if (!ht)
            ht = hr_tensor_set_find(ts, "model.embed_tokens.weight");
        float *norm = g_new(float, D), *head = g_new(float, (size_t)V * D), *h = g_new(float, D);
        float *ours = g_new(float, V), *theirs = g_new(float, V);
        HrMat nm = { nt->data, nt->dtype, 1, D }, hm = { ht->data, ht->dtype, V, D };
        hr_mat_row_f32(&nm, 0, norm, D);
        for (int i = 0; cfg.norm_plus_one && i < D; i++)
            norm[i] += 1.0f;
        for (int v = 0; v < V; v++)
            hr_mat_row_f32(&hm, v, head + (size_t)v * D, D);
        double worst = 0.0, range = 0.0;
        for (int s = 0; s < NS; s++) {
            HR_CHECK(hr_model_eval_all(m, tokens + s * L, L, &err) == HR_OK, "%s", err.message);
            for (int t = 0; t < L; t++) {
                hr_rmsnorm(h, hr_awq_hidden(S) + ((size_t)s * L + t) * D, norm, D, cfg.norm_eps);
                for (int v = 0; v < V; v++) {
                    double acc = 0.0;
                    for (int i = 0; i < D; i++)
                        acc += (double)h[i] * head[(size_t)v * D + i];
                    ours[v] = cfg.final_softcap > 0.0f ? cfg.final_softcap * tanhf((float)acc / cfg.final_softcap)
                                                       : (float)acc;
                }
                hr_model_logits_row(m, t, theirs, &err);
                for (int v = 0; v < V; v++) {
                    worst = hr_worse(worst, fabs((double)ours[v] - theirs[v]));
                    range = fmax(range, fabs((double)theirs[v]));
                }
            }
        }
        printf("%s: the search's forward against the engine's logits: max |diff| %.3g (max |logit| %.3g)\n", fixture,
               worst, range);
        HR_CHECK(worst <= 1e-4 * (1.0 + range), "%s: the search's forward is not the model's (max |logit diff| %g)",
                 fixture, worst);
        g_free(norm);
        g_free(head);
        g_free(h);
        g_free(ours);
        g_free(theirs);
        hr_model_free(m);
    }
    hr_awq_free(S);
    g_hash_table_unref(over);
    hr_tensor_set_free(ts);
}

/* Sample n tokens after BOS at temperature 0.8 (xorshift seeded by seed). */
static void
sample_text(HrModel *m, uint64_t seed, int32_t *out, int n)
{
    int V = hr_model_config(m)->vocab_size;
    float *lg = g_new(float, V);
    HrError err = { 0 };
    int32_t tok = 1;
    out[0] = tok;
    HR_CHECK(hr_model_eval(m, &tok, 1, &err) == HR_OK, "%s", err.message);
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
    for (int i = 1; i < n; i++) {
        hr_model_logits(m, lg, &err);
        float mx = -INFINITY;
        for (int v = 0; v < V; v++)
            mx = fmaxf(mx, lg[v]);
        double sum = 0.0;
        for (int v = 0; v < V; v++)
            sum += exp((lg[v] - mx) / 0.8);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        double u = (double)(x >> 11) / 9007199254740992.0 * sum, acc = 0.0;
        int pick = V - 1;
        for (int v = 0; v < V; v++) {
            acc += exp((lg[v] - mx) / 0.8);
            if (acc >= u) {
                pick = v;
                break;
            }
        }
        out[i] = pick;
        HR_CHECK(hr_model_append(m, &out[i], 1, &err) == HR_OK, "%s", err.message);
    }
    g_free(lg);
}

static double
perplexity(const char *dir, const int32_t *tokens, int ns, int L)
{
    HrModel *m = load(dir);
    if (!m)
        return NAN;
    int V = hr_model_config(m)->vocab_size;
    float *lg = g_new(float, V);
    HrError err = { 0 };
    double nll = 0.0;
    int count = 0;
    for (int s = 0; s < ns; s++) {
        const int32_t *t = tokens + (size_t)s * L;
        HR_CHECK(hr_model_eval_all(m, t, L, &err) == HR_OK, "%s", err.message);
        for (int i = 0; i + 1 < L; i++) {
            hr_model_logits_row(m, i, lg, &err);
            float mx = -INFINITY;
            for (int v = 0; v < V; v++)
                mx = fmaxf(mx, lg[v]);
            double sum = 0.0;
            for (int v = 0; v < V; v++)
                sum += exp((double)lg[v] - mx);
            nll += log(sum) + mx - lg[t[i + 1]];
            count++;
        }
    }
    g_free(lg);
    hr_model_free(m);
    return exp(nll / count);
}

/* A random reference model: calibrate on and evaluate against text the FP
 * model samples itself (the only text it "knows"); FP, RTN and AWQ at 4 and
 * fake 3 bits, g = 32. Returns AWQ-better-than-RTN at 4 and 3 bits. */
static void
random_model_ppl(const char *fixture, const char *tmp, int *wins, int *total)
{
    enum { NS = 32, NH = 32, L = 64 };
    g_autofree char *in = g_build_filename(HEARTH_FIXTURES, "hf-tiny", fixture, "f32", NULL);
    int32_t *calib = g_new(int32_t, NS * L), *held = g_new(int32_t, NH * L);
    HrModel *m = load(in);
    if (!m)
        return;
    for (int s = 0; s < NS; s++)
        sample_text(m, (uint64_t)s + 1, calib + (size_t)s * L, L);
    for (int s = 0; s < NH; s++)
        sample_text(m, (uint64_t)s + 1000, held + (size_t)s * L, L);
    hr_model_free(m);
    double p[5];
    const char *labels[5] = { "fp", "rtn", "awq", "rtn3", "awq3" };
    p[0] = perplexity(in, held, NH, L);
    for (int i = 1; i < 5; i++) {
        g_autofree char *out = g_strdup_printf("%s/%s-%s", tmp, fixture, labels[i]);
        quantize_bits(in, out, i % 2 ? HR_QUANT_RTN : HR_QUANT_AWQ, false, false, i % 2 ? NULL : calib, NS, L,
                      labels[i], i >= 3 ? 3 : 0);
        p[i] = perplexity(out, held, NH, L);
    }
    printf("%s g=32 self-sampled ppl: FP %.4f  RTN %.4f  AWQ %.4f | fake 3-bit RTN %.4f  AWQ %.4f\n", fixture, p[0],
           p[1], p[2], p[3], p[4]);
    *wins += (p[2] < p[1]) + (p[4] < p[3]);
    *total += 2;
    g_free(calib);
    g_free(held);
}

typedef struct {
    int calls, cancel_at_layer;
    double last_fraction;
    bool monotonic, saw_scale, saw_clip, saw_writing;
} StageLog;

static bool
on_stage(const HrQuantStage *st, void *user)
{
    StageLog *l = user;
    l->calls++;
    if (st->fraction + 1e-12 < l->last_fraction || st->fraction < 0.0 || st->fraction > 1.0)
        l->monotonic = false;
    l->last_fraction = st->fraction;
    l->saw_scale |= strcmp(st->step, "scale search") == 0;
    l->saw_clip |= strcmp(st->step, "clip search") == 0;
    l->saw_writing |= strcmp(st->step, "writing") == 0;
    return !(st->layer == l->cancel_at_layer && strcmp(st->step, "clip search") == 0);
}

/* The stage callback sees every step in order, and cancelling in the
 * middle of a layer stops the run with HR_ERR_CANCELLED and leaves no
 * output directory behind. */
static void
stage_check(const char *tmp)
{
    g_autofree char *in = g_build_filename(HEARTH_FIXTURES, "hf-tiny", "llama-gqa-tied", "f32", NULL);
    enum { NS = 2, L = 32 };
    int32_t tokens[NS * L];
    for (int i = 0; i < NS * L; i++)
        tokens[i] = 3 + (i * 37) % 250;
    for (int cancel = 0; cancel < 2; cancel++) {
        HrQuantOptions opt;
        awq_options(&opt, tokens, NS, L);
        opt.stage = on_stage;
        StageLog log = { 0, cancel ? 1 : -2, 0.0, true, false, false, false };
        g_autofree char *out = g_strdup_printf("%s/stage-%d", tmp, cancel);
        HrError err = { 0 };
        HrStatus st = hr_quantize_model(in, out, &opt, NULL, &log, &err);
        if (cancel) {
            HR_CHECK(st == HR_ERR_CANCELLED, "cancel: status %d (%s)", st, err.message);
            HR_CHECK(!g_file_test(out, G_FILE_TEST_EXISTS), "cancel left %s behind", out);
        } else {
            HR_CHECK(st == HR_OK, "%s", err.message);
            HR_CHECK(log.monotonic, "stage fractions went backwards or out of [0, 1]");
            HR_CHECK(log.saw_scale && log.saw_clip && log.saw_writing, "steps missing: scale %d clip %d writing %d",
                     log.saw_scale, log.saw_clip, log.saw_writing);
            HR_CHECK(fabs(log.last_fraction - 1.0) < 1e-9, "last fraction %.3f", log.last_fraction);
            printf("stage callback: %d calls, last fraction %.3f\n", log.calls, log.last_fraction);
        }
    }
}

/* (c) the search's kernels against double-precision loops */
static void
attention_ref(const float *q, const float *k, const float *v, double *out, int nw, int L, int nh, int nkv, int hd,
              float scale)
{
    const int qd = nh * hd, kvd = nkv * hd;
    double *p = g_new(double, L);
    for (int w = 0; w < nw; w++)
        for (int h = 0; h < nh; h++)
            for (int t = 0; t < L; t++) {
                const float *qr = q + ((size_t)w * L + t) * qd + (size_t)h * hd;
                double mx = -INFINITY, sum = 0.0;
                for (int u = 0; u <= t; u++) {
                    const float *kr = k + ((size_t)w * L + u) * kvd + (size_t)(h / (nh / nkv)) * hd;
                    double d = 0.0;
                    for (int i = 0; i < hd; i++)
                        d += (double)qr[i] * kr[i];
                    p[u] = d * scale;
                    mx = fmax(mx, p[u]);
                }
                for (int u = 0; u <= t; u++)
                    sum += p[u] = exp(p[u] - mx);
                for (int i = 0; i < hd; i++) {
                    double a = 0.0;
                    for (int u = 0; u <= t; u++)
                        a += p[u] / sum * v[((size_t)w * L + u) * kvd + (size_t)(h / (nh / nkv)) * hd + i];
                    out[((size_t)w * L + t) * qd + (size_t)h * hd + i] = a;
                }
            }
    g_free(p);
}

static void
kernels_check(void)
{
    /* exp: within 2 ulp of libm's over the softmax/SiLU range, NaN kept,
     * 0 and inf at the ends */
    double worst = 0.0;
    for (int i = 0; i <= 200000; i++) {
        float x = -87.0f + 175.0f * (float)i / 200000.0f;
        double e = exp((double)x), r = fabs((double)hr_awq_exp_ref(x) - e) / e;
        worst = hr_worse(worst, r);
    }
    printf("kernels: exp max relative error %.3g\n", worst);
    HR_CHECK(worst < 2.5e-7, "exp: relative error %g", worst);
    HR_CHECK(isnan(hr_awq_exp_ref(NAN)) && hr_awq_exp_ref(-200.0f) == 0.0f && isinf(hr_awq_exp_ref(200.0f)),
             "exp: NaN/underflow/overflow");

    HrThreadPool *pools[2] = { hr_pool_new(1), hr_pool_new(2) };
    guint32 r = 99;
#define RNDF() (r = r * 1664525u + 1013904223u, ((float)(r >> 8) / 16777216.0f - 0.5f))
    /* fake quant of a row = quantize + dequantize, bit for bit (rows: random,
     * all zero, all positive, a constant, halves and integers) */
    enum { FK = 256, FR = 6 };
    float *fw = g_new(float, FR * FK), *fo = g_new(float, FK), *fd = g_new(float, FR * FK);
    for (int i = 0; i < FK; i++) {
        fw[i] = RNDF();
        fw[FK + i] = 0.0f;
        fw[2 * FK + i] = RNDF() + 0.6f;
        fw[3 * FK + i] = -0.3f;
        fw[4 * FK + i] = (float)(i % 31) * 0.5f - 7.0f;
        fw[5 * FK + i] = 1e3f * RNDF();
    }
    const int fg[3][2] = { { 32, 4 }, { 128, 4 }, { 64, 3 } };
    for (int c = 0; c < 3; c++) {
        const int g = fg[c][0], bits = fg[c][1], ng = FK / g;
        uint8_t *qT = g_new(uint8_t, FR * FK), *z = g_new(uint8_t, FR * ng);
        uint16_t *sc = g_new(uint16_t, FR * ng);
        hr_rtn_quantize_bits(fw, FR, FK, g, bits, qT, sc, z);
        for (int n = 0; n < FR; n++)
            for (int k = 0; k < FK; k++) {
                size_t gi = (size_t)(k / g) * FR + n;
                fd[n * FK + k] = ((float)qT[(size_t)k * FR + n] - (float)z[gi]) * hr_f16_to_f32(sc[gi]);
            }
        for (int n = 0; n < FR; n++) {
            hr_awq_fake_quant_row(fw + n * FK, FK, g, bits, fo);
            HR_CHECK(memcmp(fo, fd + n * FK, sizeof(float) * FK) == 0, "fake quant row %d g %d bits %d differs", n, g,
                     bits);
        }
        g_free(qT);
        g_free(z);
        g_free(sc);
    }
    g_free(fw);
    g_free(fo);
    g_free(fd);
    /* SiLU * up, odd length (a masked tail) */
    enum { NS = 1237 };
    float g[2][NS], u[NS];
    const guint32 r_silu = r;
    for (int i = 0; i < NS; i++) {
        g[0][i] = g[1][i] = 24.0f * RNDF();
        u[i] = RNDF();
    }
    double se = 0.0;
    for (int p = 0; p < 2; p++)
        hr_awq_silu_mul(pools[p], g[p], u, NS);
    r = r_silu;
    for (int i = 0; i < NS; i++) {
        double x = 24.0 * RNDF(), ui = RNDF(), want = x / (1.0 + exp(-x)) * ui;
        se = hr_worse(se, fabs(g[0][i] - want) / (fabs(want) + 1e-30));
    }
    HR_CHECK(se < 1e-6, "silu*up: relative error %g", se);
    HR_CHECK(memcmp(g[0], g[1], sizeof g[0]) == 0, "silu*up: 1 and 2 threads differ");
    /* the fused form with a subtrahend (the difference form's gate,up):
     * the same bits as the two steps */
    {
        float g2[NS], sub[NS];
        r = r_silu;
        for (int i = 0; i < NS; i++) {
            g2[i] = 24.0f * RNDF();
            (void)RNDF();
            sub[i] = g[0][i] * 0.75f;
        }
        hr_awq_silu_mul_sub(pools[1], g2, u, sub, NS);
        int bad = 0;
        for (int i = 0; i < NS; i++) {
            const float want = g[0][i] - sub[i];
            bad += memcmp(&g2[i], &want, sizeof want) != 0;
        }
        HR_CHECK(bad == 0, "silu*up - sub: %d of %d differ from the two steps", bad, NS);
    }

    /* attention: GQA (4 query heads on 2 KV heads), L = 37 */
    const int shapes[2][2] = { { 8, 37 }, { 64, 37 } };
    for (int si = 0; si < 2; si++) {
        const int hd = shapes[si][0], L = shapes[si][1], nw = 3, nh = 4, nkv = 2, qd = nh * hd, kvd = nkv * hd;
        const size_t T = (size_t)nw * L;
        float *q = g_new(float, T * qd), *k = g_new(float, T * kvd), *v = g_new(float, T * kvd);
        float *o[2] = { g_new(float, T * qd), g_new(float, T * qd) };
        double *ref = g_new(double, T * qd);
        for (size_t i = 0; i < T * qd; i++)
            q[i] = 4.0f * RNDF();
        for (size_t i = 0; i < T * kvd; i++) {
            k[i] = 4.0f * RNDF();
            v[i] = RNDF();
        }
        size_t ns = hr_awq_attention_scratch(nw, L, nkv, hd);
        float *kt = g_new(float, ns), *vt = g_new(float, ns);
        float scale = 1.0f / sqrtf((float)hd);
        for (int p = 0; p < 2; p++)
            hr_awq_attention(pools[p], q, k, v, o[p], nw, L, nh, nkv, hd, scale, kt, vt);
        attention_ref(q, k, v, ref, nw, L, nh, nkv, hd, scale);
        double err = 0.0;
        for (size_t i = 0; i < T * qd; i++)
            err = hr_worse(err, fabs(o[0][i] - ref[i]));
        printf("kernels: attention hd %d max |error| %.3g\n", hd, err);
        HR_CHECK(err < 2e-6, "attention hd %d: error %g", hd, err);
        HR_CHECK(memcmp(o[0], o[1], sizeof(float) * T * qd) == 0, "attention: 1 and 2 threads differ");
        /* reductions over the same data */
        double sd = 0.0, dt = 0.0;
        for (size_t i = 0; i < T * qd; i++) {
            sd += ((double)o[0][i] - q[i]) * ((double)o[0][i] - q[i]);
            dt += (double)o[0][i] * q[i];
        }
        double a1 = hr_awq_sq_diff(pools[0], o[0], q, T, (size_t)qd), a2 = hr_awq_sq_diff(pools[1], o[0], q, T, (size_t)qd);
        double d1 = hr_awq_dot(pools[0], o[0], q, T, (size_t)qd), d2 = hr_awq_dot(pools[1], o[0], q, T, (size_t)qd);
        HR_CHECK(fabs(a1 - sd) <= 1e-12 * sd && fabs(d1 - dt) <= 1e-12 * fabs(sd), "reductions: %g vs %g, %g vs %g",
                 a1, sd, d1, dt);
        HR_CHECK(a1 == a2 && d1 == d2, "reductions: 1 and 2 threads differ");
        g_free(q);
        g_free(k);
        g_free(v);
        g_free(o[0]);
        g_free(o[1]);
        g_free(ref);
        g_free(kt);
        g_free(vt);
    }
#undef RNDF
    hr_pool_free(pools[0]);
    hr_pool_free(pools[1]);
}

static void
gemm_op_check(const char *fixture, const char *tmp)
{
    GString *a = hr_awq_test_log(fixture, tmp, "cpu", "cpu", NULL);
    GString *b = hr_awq_test_log(fixture, tmp, "gemm-op", "cpu", "HEARTH_AWQ_GEMM_OP");
    if (a && b)
        HR_CHECK(strcmp(a->str, b->str) == 0, "%s: gemm-op path chose differently:\n%s---\n%s", fixture, a->str,
                 b->str);
    if (a)
        g_string_free(a, TRUE);
    if (b)
        g_string_free(b, TRUE);
}

int
main(void)
{
    kernels_check();
    static const char *const archs[] = { "llama-gqa-tied", "llama-linear-rope", "llama3-rope", "mistral", "qwen2-bias",
                                         "qwen3-qknorm", "gemma2", "gemma3", "phi3-longrope" };
    for (size_t i = 0; i < G_N_ELEMENTS(archs); i++)
        forward_check(archs[i]);
    g_autofree char *tmp = g_dir_make_tmp("hearth-awq-search-XXXXXX", NULL);
    HR_CHECK(tmp != NULL, "no temporary directory");
    fold_check("llama-gqa-tied", tmp);
    fold_check("llama-linear-rope", tmp);
    fold_check("llama3-rope", tmp);
    fold_check("qwen2-bias", tmp);
    fold_check("qwen3-qknorm", tmp);
    fold_check("gemma2", tmp);
    fold_check("gemma3", tmp);
    fold_check("phi3-longrope", tmp);
    stage_check(tmp);
    gemm_op_check("llama-gqa-tied", tmp);
    gemm_op_check("llama-linear-rope", tmp);
    gemm_op_check("gemma2", tmp);   /* the soft cap and the window in the GEMM path's softmax */
    gemm_op_check("gemma3", tmp);
    int wins = 0, total = 0;
    random_model_ppl("llama-gqa-tied", tmp, &wins, &total);
    random_model_ppl("llama3-rope", tmp, &wins, &total);
    random_model_ppl("mistral", tmp, &wins, &total);
    random_model_ppl("qwen2-bias", tmp, &wins, &total);
    random_model_ppl("qwen3-qknorm", tmp, &wins, &total);
    random_model_ppl("gemma2", tmp, &wins, &total);
    random_model_ppl("gemma3", tmp, &wins, &total);
    random_model_ppl("phi3-longrope", tmp, &wins, &total);
    printf("random models: AWQ better than RTN in %d of %d comparisons\n", wins, total);

    g_autofree char *assets = hr_test_assets_dir();
    g_autofree char *stories = assets ? g_build_filename(assets, "models", "stories260K", "hf_f32", NULL) : NULL;
    if (stories && g_file_test(stories, G_FILE_TEST_IS_DIR)) {
        enum { NS = 16, NH = 32, L = 128 };
        int32_t *calib = g_new(int32_t, NS * L), *held = g_new(int32_t, NH * L);
        HrModel *m = load(stories);
        for (int s = 0; s < NS; s++)
            sample_text(m, (uint64_t)s + 1, calib + (size_t)s * L, L);
        for (int s = 0; s < NH; s++)
            sample_text(m, (uint64_t)s + 1000, held + (size_t)s * L, L);
        hr_model_free(m);
        g_autofree char *rtn = g_build_filename(tmp, "stories-rtn", NULL);
        g_autofree char *awq = g_build_filename(tmp, "stories-awq", NULL);
        quantize(stories, rtn, HR_QUANT_RTN, false, true, NULL, 0, 0, "rtn");
        quantize(stories, awq, HR_QUANT_AWQ, false, true, calib, NS, L, "stories260K");
        double p_fp = perplexity(stories, held, NH, L);
        double p_rtn = perplexity(rtn, held, NH, L);
        double p_awq = perplexity(awq, held, NH, L);
        printf("stories260K g=32 (+ per-channel down_proj) held-out ppl: FP %.4f  RTN %.4f  AWQ %.4f\n", p_fp, p_rtn, p_awq);
        HR_CHECK(p_awq < p_rtn, "AWQ %.4f not better than RTN %.4f", p_awq, p_rtn);
        HR_CHECK(p_fp <= p_awq * 1.001, "FP %.4f worse than AWQ %.4f", p_fp, p_awq);
        /* fake 3-bit: the search and the written weights at 3 bits */
        g_autofree char *rtn3 = g_build_filename(tmp, "stories-rtn3", NULL);
        g_autofree char *awq3 = g_build_filename(tmp, "stories-awq3", NULL);
        quantize_bits(stories, rtn3, HR_QUANT_RTN, false, true, NULL, 0, 0, "rtn3", 3);
        quantize_bits(stories, awq3, HR_QUANT_AWQ, false, true, calib, NS, L, "stories260K 3-bit", 3);
        double p_rtn3 = perplexity(rtn3, held, NH, L);
        double p_awq3 = perplexity(awq3, held, NH, L);
        printf("stories260K fake 3-bit g=32 held-out ppl: RTN %.4f  AWQ %.4f\n", p_rtn3, p_awq3);
        HR_CHECK(p_awq3 < p_rtn3, "3-bit AWQ %.4f not better than RTN %.4f", p_awq3, p_rtn3);
        HR_CHECK(p_rtn3 > p_rtn, "3-bit RTN %.4f not worse than 4-bit %.4f", p_rtn3, p_rtn);
        g_free(calib);
        g_free(held);
    } else {
        printf("stories260K not found: part (b) skipped\n");
    }
    g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", tmp);
    HR_CHECK(system(cmd) == 0, "cleanup");
    return hr_test_result();
}
