/* awq-device.c — the AWQ search's block forward on a device, through the
 * op table the model runs on (engine/ops.h): one decoder layer's attention
 * (q|k|v with its bias, RoPE, causal attention, o_proj) and MLP (gate|up,
 * SiLU·mul, down_proj) as two node lists of the same ops as inference,
 * over weights whose values the search replaces for every ratio
 * (set_weight). Each calibration sample is a sequence of its own: its
 * tokens go in as steps at positions 0.., so the KV cache and the causal
 * mask are inference's. The outputs come back to the host, where awq.c
 * takes their loss against the reference.
 *
 * The device opens once per search with a one-layer model of the layer's
 * shapes, its weights taken from zeros in an in-memory F32 tensor set, so
 * each backend stores them dense (CUDA: FP16 rows, as AutoAWQ searches in
 * FP16 on the GPU; the CPU: FP32). */
#include "awq-device.h"

#include <string.h>

#include <glib.h>

#include "safetensors.h"

enum { W_Q, W_K, W_V, W_O, W_G, W_U, W_D, W_BIAS, W_N };

struct HrAwqDevice {
    const HrOps *ops;
    void *dev;
    HrOpsLimits lim;
    HrModelConfig cfg;
    int L;
    HrOpsWeight *w[W_N];
    HrOpsBuffer *x, *qkv, *q, *att, *hb, *out, *kc, *vc;
    void *attn, *mlp;
    int32_t *zeros;             /* the steps' token ids (no embedding runs) */
};

void
hr_awq_device_free(HrAwqDevice *d)
{
    if (!d)
        return;
    if (d->dev)
        d->ops->close(d->dev);
    g_free(d->zeros);
    g_free(d);
}

static HrStatus
add_f32(HrTensorSet *ts, const char *name, int64_t rows, int64_t cols, HrError *err)
{
    float *z = g_new0(float, (size_t)(rows * cols));
    hr_tensor_set_keep(ts, z, g_free);
    HrTensor t = { .name = name, .dtype = HR_DTYPE_F32, .n_dims = 2, .shape = { rows, cols }, .data = z,
                   .n_bytes = sizeof(float) * (size_t)(rows * cols), .file = "the AWQ search" };
    return hr_tensor_set_add_tensor(ts, &t, err);
}

HrStatus
hr_awq_device_open(const HrOps *ops, const HrModelConfig *cfg, int seqlen, HrAwqDevice **out, HrError *err)
{
    *out = NULL;
    if (!ops || ops->api_version != HR_OPS_API_VERSION || !ops->set_weight || !ops->write || !ops->read)
        return hr_error_set(err, HR_ERR_UNSUPPORTED, "awq: backend '%s' cannot run the search's block forward",
                            ops ? ops->name : "(none)");
    const int64_t D = cfg->dim, hd = cfg->head_dim, H = cfg->hidden_dim;
    const int64_t qd = cfg->n_heads * hd, kvd = cfg->n_kv_heads * hd;
    HrAwqDevice *d = g_new0(HrAwqDevice, 1);
    d->ops = ops;
    d->cfg = *cfg;
    d->cfg.n_layers = 1;
    d->L = seqlen;
    static const char *const names[] = { "l.q_proj", "l.k_proj", "l.v_proj", "l.o_proj",
                                         "l.gate_proj", "l.up_proj", "l.down_proj" };
    static const char *const tensors[] = { "l.q_proj.weight", "l.k_proj.weight", "l.v_proj.weight",
                                           "l.o_proj.weight", "l.gate_proj.weight", "l.up_proj.weight",
                                           "l.down_proj.weight" };
    const int64_t shape[][2] = { { qd, D }, { kvd, D }, { kvd, D }, { D, qd }, { H, D }, { H, D }, { D, H } };
    HrTensorSet *ts = hr_tensor_set_new();
    HrWeightSpec specs[W_N];
    int n = 0;
    HrStatus st = HR_OK;
    for (int i = 0; st == HR_OK && i < W_D + 1; i++) {
        st = add_f32(ts, tensors[i], shape[i][0], shape[i][1], err);
        specs[n] = (HrWeightSpec){ .role = HR_W_LINEAR, .layer = 0, .rows = shape[i][0], .cols = shape[i][1],
                                   .stack = i == W_K || i == W_V || i == W_U };
        g_strlcpy(specs[n].name, names[i], sizeof specs[n].name);
        n++;
    }
    if (cfg->qkv_bias) {
        specs[n] = (HrWeightSpec){ .role = HR_W_VECTOR, .layer = 0, .rows = qd + 2 * kvd, .cols = 1 };
        g_strlcpy(specs[n].name, "l.qkv_bias", sizeof specs[n].name);
        n++;
    }
    const HrBackendOptions bo = { .context_len = seqlen, .kv_type = HR_KV_F16, .n_threads = 0 };
    if (st == HR_OK)
        st = ops->open(&d->cfg, &bo, ts, specs, n, &d->dev, &d->lim, err);
    float *zb = g_new0(float, (size_t)(qd + 2 * kvd));
    for (int i = 0; st == HR_OK && i < n; i++)
        st = ops->weight(d->dev, ts, &specs[i], specs[i].role == HR_W_VECTOR ? zb : NULL, NULL, &d->w[i], err);
    g_free(zb);
    if (st == HR_OK)
        st = ops->weights_done(d->dev, err);
    /* Taken. The CPU backend still points into these zeros (a dense tensor
     * is used in place) until set_weight gives each weight its own values,
     * which every block forward below does before it runs. */
    hr_tensor_set_free(ts);
    if (st == HR_OK &&
        ((st = ops->kv_cache(d->dev, &d->kc, &d->vc, err)) || (st = ops->activation(d->dev, D, &d->x, err)) ||
         (st = ops->activation(d->dev, qd + 2 * kvd, &d->qkv, err)) ||
         (st = ops->activation(d->dev, qd, &d->q, err)) || (st = ops->activation(d->dev, qd, &d->att, err)) ||
         (st = ops->activation(d->dev, H, &d->hb, err)) || (st = ops->activation(d->dev, D, &d->out, err)))) {
    }
    if (st == HR_OK) {
        const HrNode attn[] = {
            { .op = HR_OP_LINEAR, .layer = 0, .src = d->x, .dst = d->qkv, .w = { d->w[W_Q], d->w[W_K], d->w[W_V] },
              .n_w = 3, .bias = cfg->qkv_bias ? d->w[W_BIAS] : NULL },
            { .op = HR_OP_ROPE_KV, .layer = 0, .src = d->qkv, .dst = d->q, .k_cache = d->kc, .v_cache = d->vc },
            { .op = HR_OP_ATTENTION, .layer = 0, .src = d->q, .dst = d->att, .k_cache = d->kc, .v_cache = d->vc },
            { .op = HR_OP_LINEAR, .layer = 0, .src = d->att, .dst = d->out, .w = { d->w[W_O] }, .n_w = 1 },
        };
        const HrNode mlp[] = {
            { .op = HR_OP_LINEAR, .layer = 0, .src = d->x, .dst = d->hb, .w = { d->w[W_G], d->w[W_U] }, .n_w = 2,
              .gate = true },
            { .op = HR_OP_LINEAR, .layer = 0, .src = d->hb, .dst = d->out, .w = { d->w[W_D] }, .n_w = 1 },
        };
        st = ops->compile(d->dev, attn, G_N_ELEMENTS(attn), d->lim.max_tokens, &d->attn, err);
        if (st == HR_OK)
            st = ops->compile(d->dev, mlp, G_N_ELEMENTS(mlp), d->lim.max_tokens, &d->mlp, err);
    }
    if (st != HR_OK) {
        hr_awq_device_free(d);
        return st;
    }
    d->zeros = g_new0(int32_t, (size_t)d->lim.max_tokens);
    *out = d;
    return HR_OK;
}

const char *
hr_awq_device_name(const HrAwqDevice *d)
{
    return d->ops->name;
}

/* out[T, D] = prog over x[T, D_in], a sample of L tokens at a time, each
 * in steps of the device's max_tokens at positions 0.. */
static HrStatus
run_samples(HrAwqDevice *d, void *prog, const float *x, int d_in, int T, float *out, HrError *err)
{
    const int L = d->L, D = d->cfg.dim, step = d->lim.max_tokens;
    HrStatus st = HR_OK;
    for (int s0 = 0; st == HR_OK && s0 < T; s0 += L) {
        for (int p = 0; st == HR_OK && p < L && s0 + p < T; p += step) {
            const int n = MIN(step, MIN(L - p, T - s0 - p));
            const size_t t = (size_t)(s0 + p);
            const HrStep s = { .tokens = d->zeros, .n = n, .pos = p, .logit_first = n };
            if ((st = d->ops->write(d->dev, d->x, x + t * (size_t)d_in, n, err)) == HR_OK &&
                (st = d->ops->run(d->dev, prog, &s, err)) == HR_OK)
                st = d->ops->read(d->dev, d->out, out + t * (size_t)D, n, err);
        }
    }
    return st;
}

HrStatus
hr_awq_device_attn(HrAwqDevice *d, const float *wq, const float *wk, const float *wv, const float *bias,
                   const float *wo, const float *x, int T, float *out, HrError *err)
{
    const HrOps *o = d->ops;
    HrStatus st;
    if ((st = o->set_weight(d->dev, d->w[W_Q], wq, err)) || (st = o->set_weight(d->dev, d->w[W_K], wk, err)) ||
        (st = o->set_weight(d->dev, d->w[W_V], wv, err)) || (st = o->set_weight(d->dev, d->w[W_O], wo, err)))
        return st;
    if (d->cfg.qkv_bias && (st = o->set_weight(d->dev, d->w[W_BIAS], bias, err)))
        return st;
    return run_samples(d, d->attn, x, d->cfg.dim, T, out, err);
}

HrStatus
hr_awq_device_mlp(HrAwqDevice *d, const float *wg, const float *wu, const float *wd, const float *x, int T,
                  float *out, HrError *err)
{
    const HrOps *o = d->ops;
    HrStatus st;
    if ((st = o->set_weight(d->dev, d->w[W_G], wg, err)) || (st = o->set_weight(d->dev, d->w[W_U], wu, err)) ||
        (st = o->set_weight(d->dev, d->w[W_D], wd, err)))
        return st;
    return run_samples(d, d->mlp, x, d->cfg.dim, T, out, err);
}
