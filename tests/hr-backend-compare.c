/* hr-backend-compare.c — see hr-backend-compare.h. */
#include "hr-backend-compare.h"

#include <math.h>

#include <glib.h>

#include "hr-test.h"

bool
hr_cmp_load(const char *dir, HrModelConfig *cfg, HrTensorSet **ts)
{
    HrError err = { 0 };
    *ts = NULL;
    if (hr_model_config_load(dir, cfg, &err) == HR_OK && hr_tensor_set_open_dir(dir, ts, &err) == HR_OK)
        return true;
    HR_CHECK(false, "%s: %s", dir, err.message);
    hr_error_clear(&err);
    hr_tensor_set_free(*ts);
    *ts = NULL;
    return false;
}

bool
hr_cmp_create(const char *label, const HrModelConfig *cfg, HrTensorSet *ts, const HrBackendOptions *bopt,
              HrCmpRun *cpu, HrCmpRun *dev)
{
    HrError err = { 0 };
    HrCmpRun *runs[2] = { cpu, dev };
    for (int i = 0; i < 2; i++) {
        if (runs[i]->ops->create(cfg, ts, bopt, NULL, NULL, &runs[i]->ctx, &err) != HR_OK) {
            HR_CHECK(false, "%s: %s: %s", label, runs[i]->ops->name, err.message);
            hr_error_clear(&err);
            if (i == 1)
                cpu->ops->destroy(cpu->ctx);
            hr_tensor_set_free(ts);
            return false;
        }
    }
    return true;
}

int
hr_cmp_argmax(const float *v, int n, float *gap)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[best])
            best = i;
    float second = -INFINITY;
    for (int i = 0; i < n; i++)
        if (i != best && v[i] > second)
            second = v[i];
    *gap = v[best] - second;
    return best;
}

float
hr_cmp_rel_diff(const float *ref, const float *x, int n, float *diff_out, float *range_out)
{
    float mn = INFINITY, mx = -INFINITY, diff = 0.0f;
    for (int i = 0; i < n; i++) {
        mn = fminf(mn, ref[i]);
        mx = fmaxf(mx, ref[i]);
        float d = fabsf(ref[i] - x[i]);
        if (!(d <= diff))
            diff = isnan(d) ? INFINITY : d;
    }
    float range = mx - mn > 0 ? mx - mn : 1.0f;
    if (diff_out)
        *diff_out = diff;
    if (range_out)
        *range_out = range;
    return diff / range;
}

void
hr_cmp_row(HrCmpStats *s, HrCmpRun *cpu, HrCmpRun *dev, int row, const char *what)
{
    float *a = g_new(float, s->vocab), *b = g_new(float, s->vocab);
    HrError err = { 0 };
    HR_CHECK(cpu->ops->get_logits(cpu->ctx, row, a, &err) == HR_OK, "cpu logits: %s", err.message);
    HR_CHECK(dev->ops->get_logits(dev->ctx, row, b, &err) == HR_OK, "%s logits: %s", s->device, err.message);
    float diff, range;
    const float rel = hr_cmp_rel_diff(a, b, s->vocab, &diff, &range);
    if (rel > s->worst_rel)
        s->worst_rel = rel;
    s->rows++;
    HR_CHECK(rel <= s->tol, "%s: %s row %d: max |dlogit| %g = %g of the range %g (tolerance %g)", s->label, what, row,
             diff, rel, range, s->tol);
    float gap, gap2;
    int ia = hr_cmp_argmax(a, s->vocab, &gap), ib = hr_cmp_argmax(b, s->vocab, &gap2);
    s->argmax_equal += ia == ib;
    if (gap > 2 * diff) {
        s->argmax_checked++;
        HR_CHECK(ia == ib, "%s: %s row %d: greedy id %d (%s) != %d (cpu)", s->label, what, row, ib, s->device, ia);
    }
    g_free(a);
    g_free(b);
}

bool
hr_cmp_forward(const HrCmpStats *s, HrCmpRun *cpu, HrCmpRun *dev, const int32_t *tok, int n, int pos, bool all)
{
    HrError err = { 0 };
    HrStatus a = cpu->ops->forward(cpu->ctx, tok, n, pos, all, &err);
    HR_CHECK(a == HR_OK, "cpu forward: %s", err.message);
    HrStatus b = dev->ops->forward(dev->ctx, tok, n, pos, all, &err);
    HR_CHECK(b == HR_OK, "%s forward: %s", s->device, err.message);
    return a == HR_OK && b == HR_OK;
}

void
hr_cmp_schedule(HrCmpStats *s, HrCmpRun *cpu, HrCmpRun *dev, const int32_t *tok, int (*device_argmax)(void *ctx),
                bool long_run)
{
    const int n = 20;
    HrError err = { 0 };
    if (hr_cmp_forward(s, cpu, dev, tok, n, 0, true))
        for (int r = 0; r < n; r++)
            hr_cmp_row(s, cpu, dev, r, "prefill");
    if (hr_cmp_forward(s, cpu, dev, tok, 8, 0, false))
        hr_cmp_row(s, cpu, dev, -1, "prefill-8");
    for (int p = 8; p < n; p++) {
        if (!hr_cmp_forward(s, cpu, dev, tok + p, 1, p, false))
            break;
        hr_cmp_row(s, cpu, dev, -1, "decode");
        if (device_argmax) {
            float *b = g_new(float, s->vocab), gap;
            dev->ops->get_logits(dev->ctx, -1, b, &err);
            int host = hr_cmp_argmax(b, s->vocab, &gap);
            int d = device_argmax(dev->ctx);
            HR_CHECK(d == host, "%s: GPU argmax %d, argmax of the logits read back %d", s->label, d, host);
            g_free(b);
        }
    }
    int32_t other[3] = { tok[30], tok[31], tok[32] };
    if (hr_cmp_forward(s, cpu, dev, other, 3, 5, true))
        for (int r = 0; r < 3; r++)
            hr_cmp_row(s, cpu, dev, r, "rewind");
    for (int p = 8; p < 10; p++) {
        if (!hr_cmp_forward(s, cpu, dev, tok + 40 + p, 1, p, false))
            break;
        hr_cmp_row(s, cpu, dev, -1, "decode after rewind");
    }
    if (long_run) { /* several prefill chunks and attention splits */
        if (hr_cmp_forward(s, cpu, dev, tok, 300, 0, true))
            for (int r = 0; r < 300; r += 13)
                hr_cmp_row(s, cpu, dev, r, "long prefill");
        for (int p = 300; p < 305; p++) {
            if (!hr_cmp_forward(s, cpu, dev, tok + p, 1, p, false))
                break;
            hr_cmp_row(s, cpu, dev, -1, "long decode");
        }
    }
}
